/* cidset.c: a set of CIDs by open addressing, shared by every walk, writer
 * and filter that must meet each block once. */
#include <string.h>

#include "cairn/ipld.h"

static bool same(const cairn_cid_set *set, const cairn_cid *a, const cairn_cid *b)
{
	return set->by_multihash ? cairn_cid_multihash_equal(a, b) : cairn_cid_equal(a, b);
}

/* cairn_cid_hash covers only the multihash, so it serves both kinds of set. */
static size_t find(const cairn_cid_set *set, const cairn_cid *cid, bool *found)
{
	size_t mask = set->cap - 1, i;

	for (i = cairn_cid_hash(cid) & mask; set->slots[i].len; i = (i + 1) & mask) {
		if (same(set, &set->slots[i], cid)) {
			*found = true;
			return i;
		}
	}
	*found = false;
	return i;
}

static int grow(cairn_cid_set *set)
{
	size_t cap = set->cap ? set->cap * 2 : 64;
	cairn_cid_set bigger = {cairn_calloc(cap, sizeof(cairn_cid)), cap, 0, set->by_multihash};
	bool found;

	if (!bigger.slots)
		return CAIRN_ENOMEM;
	for (size_t j = 0; j < set->cap; j++)
		if (set->slots[j].len)
			bigger.slots[find(&bigger, &set->slots[j], &found)] = set->slots[j];
	bigger.len = set->len;
	cairn_free(set->slots);
	*set = bigger;
	return 0;
}

int cairn_cid_set_add(cairn_cid_set *set, const cairn_cid *cid, bool *added_out)
{
	bool found;
	size_t i;
	int rc;

	if (added_out)
		*added_out = false;
	/* At most half full, so probes stay short. */
	if (set->len * 2 >= set->cap && (rc = grow(set)))
		return rc;
	i = find(set, cid, &found);
	if (found)
		return 0;
	set->slots[i] = *cid;
	set->len++;
	if (added_out)
		*added_out = true;
	return 0;
}

bool cairn_cid_set_has(const cairn_cid_set *set, const cairn_cid *cid)
{
	bool found = false;

	if (set->cap)
		find(set, cid, &found);
	return found;
}

void cairn_cid_set_free(cairn_cid_set *set)
{
	bool by_multihash = set->by_multihash;

	cairn_free(set->slots);
	memset(set, 0, sizeof(*set));
	set->by_multihash = by_multihash;
}
