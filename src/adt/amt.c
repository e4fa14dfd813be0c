/* amt.c: the AMT of go-amt-ipld v3/v4 (and the legacy v0/v2 root), built,
 * read, walked and diffed over a blockstore with a cache of decoded nodes.
 *
 * FORMAT (DAG-CBOR, as internal/cbor_gen.go writes it)
 *   root  = [bitWidth, height, count, node]   (legacy: [height, count, node])
 *   node  = [bmap: bytes(max(1, 2^bw / 8)), links: [CID...], values: [Any...]]
 *   Slot i of a node is bit i%8 of bmap byte i/8. At height h a node's slot i
 *   covers indexes [i * W^h, (i+1) * W^h) below the node's own offset, with
 *   W = 2^bw; leaves (height 0) hold values, the others links, never both.
 *   Only the root may be empty (both arrays empty, bmap zero), and only at
 *   height 0. Links are dag-cbor CIDs; values are written verbatim.
 *
 * INVARIANTS (what makes a root's CID a function of its contents)
 *   - the height is the least that holds the largest index: Set grows by
 *     pushing the root down into slot 0 of a new root; Delete unlinks nodes
 *     that become empty and then, while the root has only slot 0, makes that
 *     child the root (go-amt-ipld's collapse);
 *   - an empty AMT is the empty leaf at height 0.
 *
 * MEMORY. Every node, read or not, is an amt_node: a node not yet read is a
 * stub holding its CID (what its parent links to). Reading fills it in:
 * an interior node gets an array of W child stubs, a leaf keeps the block it
 * was read from as its value buffer, each slot an offset and a length into
 * it (no copy per value; a set appends to the buffer, which is compacted
 * when half of it is dead). A node changed since it was read or written is
 * dirty, and so is each of its ancestors, so flush visits only dirty paths.
 * Evict turns clean nodes back into stubs. Walks (iteration, diff) turn
 * back into stubs the nodes they had to read, once past them.
 *
 * Index arithmetic: W^h saturates at 2^64 - 1 (as Go's nodesForHeight).
 * A node read from outside with a slot that could only hold indexes past
 * the maximum is refused, so offsets computed while walking never wrap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adt_i.h"

enum { N_LOADED = 1, N_HAS_CID = 2, N_DIRTY = 4 };

typedef struct amt_leaf {
	uint8_t *data;
	uint32_t used, cap, dead;
	uint32_t slot[]; /* W offsets, then W lengths (0: no value) */
} amt_leaf;

typedef struct amt_node amt_node;
struct amt_node {
	amt_node **kids;  /* interior, read: W slots */
	amt_leaf *leaf;   /* leaf, read: NULL while it has no value */
	uint32_t n;       /* slots in use */
	uint8_t flags;
	cairn_cid cid;    /* N_HAS_CID: what it was read from or written as */
};

struct cairn_amt {
	cairn_store *store;
	unsigned bw, height;
	uint32_t width;
	cairn_amt_format format;
	uint64_t mh_code;
	uint64_t count;
	uint64_t max_index;
	amt_node *root;
	cairn_cid root_cid; /* valid while !dirty */
	bool dirty;
	/* A delete could not read the node a collapse needed; the next flush
	 * (or change) tries again, so no root is written uncollapsed. */
	bool collapse_pending;
	uint64_t cached;    /* nodes read or created, the root included */
	cairn_buf scratch;  /* encoding, and blocks being read */
};

#define LOFF(a, l, i) ((l)->slot[i])
#define LLEN(a, l, i) ((l)->slot[(a)->width + (i)])

/* W^h, saturating. */
static uint64_t nfh(unsigned bw, unsigned h)
{
	uint64_t bits = (uint64_t)bw * h;

	return bits >= 64 ? UINT64_MAX : (uint64_t)1 << bits;
}

static size_t bmap_bytes(unsigned bw)
{
	return bw <= 3 ? 1 : (size_t)1 << (bw - 3);
}

static const char *fmt_name(cairn_amt_format f)
{
	return f == CAIRN_AMT_LEGACY ? "legacy [height, count, node]" : "[bitWidth, height, count, node]";
}

/* ---------------------------------------------------------------- nodes */

static amt_node *node_new(cairn_amt *a, uint8_t flags)
{
	amt_node *nd = cairn_calloc(1, sizeof(*nd));

	if (nd) {
		nd->flags = flags;
		if (flags & N_LOADED)
			a->cached++;
	}
	return nd;
}

/* Frees what reading or building the node made, leaving a stub (or,
 * without a CID, an empty node). */
static void node_unload(cairn_amt *a, amt_node *nd);

static void node_free(cairn_amt *a, amt_node *nd)
{
	if (!nd)
		return;
	node_unload(a, nd);
	cairn_free(nd);
}

/* Frees a node's contents, whether or not it was fully read. */
static void node_release(cairn_amt *a, amt_node *nd)
{
	if (nd->kids) {
		for (uint32_t i = 0; i < a->width; i++)
			node_free(a, nd->kids[i]);
		cairn_free(nd->kids);
		nd->kids = NULL;
	}
	if (nd->leaf) {
		cairn_free(nd->leaf->data);
		cairn_free(nd->leaf);
		nd->leaf = NULL;
	}
}

static void node_unload(cairn_amt *a, amt_node *nd)
{
	node_release(a, nd);
	if (nd->flags & N_LOADED)
		a->cached--;
	nd->n = 0;
	nd->flags &= (uint8_t)~(N_LOADED | N_DIRTY);
}

static amt_leaf *leaf_new(cairn_amt *a)
{
	return cairn_calloc(1, sizeof(amt_leaf) + 2 * (size_t)a->width * sizeof(uint32_t));
}

static int kids_alloc(cairn_amt *a, amt_node *nd)
{
	if (!nd->kids && !(nd->kids = cairn_calloc(a->width, sizeof(*nd->kids))))
		return CAIRN_ENOMEM;
	return 0;
}

/* The first slot at height h (> 0) that could hold no index at all: a
 * slot i is usable while i * W^h <= max_index. */
static uint64_t usable_slots(const cairn_amt *a, unsigned h)
{
	uint64_t per = nfh(a->bw, h), n = per == UINT64_MAX ? 1 : a->max_index / per + 1;

	return n < a->width ? n : a->width;
}

/* Decodes `node` = [bmap, links, values] from r into nd (empty, not
 * loaded). `block` is the buffer r reads; a leaf takes it over (on success,
 * `block` is left empty). */
static int node_decode(cairn_amt *a, amt_node *nd, adt_rd *r, cairn_buf *block, unsigned h,
		       bool is_root)
{
	size_t nb = bmap_bytes(a->bw), bstart, vstart;
	uint64_t arg = 0, nlinks = 0, nvals = 0;
	uint32_t bits = 0;
	const uint8_t *bmap;
	int rc;

	if ((rc = cairn_adt__expect(r, ADT_MAJ_ARRAY, &arg, "a node")))
		return rc;
	if (arg != 3)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a node has 3 fields, not %llu",
				       r->off - 1, (unsigned long long)arg);
	bstart = r->off;
	if ((rc = cairn_adt__expect(r, ADT_MAJ_BYTES, &arg, "the bitmap")))
		return rc;
	if (arg != nb)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: the bitmap of bit width %u is %zu "
				       "bytes, not %llu", bstart, a->bw, nb, (unsigned long long)arg);
	bmap = r->p + r->off;
	r->off += nb;
	for (uint32_t i = 0; i < nb * 8; i++) {
		if (!(bmap[i / 8] >> (i % 8) & 1))
			continue;
		if (i >= a->width)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: bitmap bit %u is past the "
					       "node's %u slots", bstart + 1 + i / 8, i, a->width);
		bits++;
	}
	if ((rc = cairn_adt__expect(r, ADT_MAJ_ARRAY, &nlinks, "the links")))
		return rc;
	if (nlinks > a->width)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: %llu links for %u slots",
				       r->off, (unsigned long long)nlinks, a->width);
	if (nlinks && h == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a node at height 0 with links",
				       r->off);
	if (nlinks) {
		uint64_t usable = usable_slots(a, h);
		uint32_t k = 0;

		if (nlinks != bits)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: the bitmap has %u bits "
					       "set but there are %llu links", bstart, bits,
					       (unsigned long long)nlinks);
		if ((rc = kids_alloc(a, nd)))
			return rc;
		for (uint32_t i = 0; i < a->width; i++) {
			amt_node *kid;
			size_t at = r->off;

			if (!(bmap[i / 8] >> (i % 8) & 1))
				continue;
			if (i >= usable)
				return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: slot %u at height "
						       "%u is past the largest index", bstart, i, h);
			if (!(kid = node_new(a, 0)))
				return CAIRN_ENOMEM;
			nd->kids[i] = kid;
			if ((rc = cairn_adt__link(r, &kid->cid)))
				return rc;
			if (kid->cid.codec != CAIRN_CODEC_DAG_CBOR)
				return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: links to AMT "
						       "nodes must be dag-cbor", at);
			kid->flags = N_HAS_CID;
			k++;
		}
		nd->n = k;
	}
	if ((rc = cairn_adt__expect(r, ADT_MAJ_ARRAY, &nvals, "the values")))
		return rc;
	vstart = r->off;
	if (nvals && nlinks)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: a node with both links and "
				       "values", vstart - 1);
	if (nvals && h > 0)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: values in a node at height %u",
				       vstart - 1, h);
	if (nvals) {
		uint32_t k = 0;

		if (nvals != bits)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: the bitmap has %u bits "
					       "set but there are %llu values", bstart, bits,
					       (unsigned long long)nvals);
		if (block->len > UINT32_MAX)
			return cairn_error_set(CAIRN_ETOOBIG, "a leaf of %zu bytes", block->len);
		if (!(nd->leaf = leaf_new(a)))
			return CAIRN_ENOMEM;
		for (uint32_t i = 0; i < a->width; i++) {
			size_t at = r->off;

			if (!(bmap[i / 8] >> (i % 8) & 1))
				continue;
			if ((rc = cairn_adt__skip(r)))
				return rc;
			LOFF(a, nd->leaf, i) = (uint32_t)at;
			LLEN(a, nd->leaf, i) = (uint32_t)(r->off - at);
			k++;
		}
		nd->n = k;
	}
	if (!nlinks && !nvals) {
		if (bits)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: the bitmap has %u bits "
					       "set but the node is empty", bstart, bits);
		if (!is_root || h > 0)
			return cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: an empty node%s", bstart,
					       is_root ? " at a height above 0" : " below the root");
	}
	if (nd->leaf) {
		/* The leaf keeps the whole block: values are read in place. */
		size_t len;

		nd->leaf->data = cairn_buf_detach(block, &len);
		nd->leaf->used = nd->leaf->cap = (uint32_t)len;
		nd->leaf->dead = (uint32_t)len;
		for (uint32_t i = 0; i < a->width; i++)
			nd->leaf->dead -= LLEN(a, nd->leaf, i);
	}
	if (!(nd->flags & N_LOADED)) {
		nd->flags |= N_LOADED;
		a->cached++;
	}
	return 0;
}

/* Reads a stub's block and fills it in. On failure the stub stays a stub. */
static int node_load(cairn_amt *a, amt_node *nd, unsigned h)
{
	char str[CAIRN_CID_MAX_STRING];
	adt_rd r;
	int rc;

	if (nd->flags & N_LOADED)
		return 0;
	if ((rc = cairn_adt__get(a->store, &a->scratch, &nd->cid, "amt node")))
		return rc;
	r = (adt_rd){a->scratch.data, a->scratch.len, 0};
	rc = node_decode(a, nd, &r, &a->scratch, h, false);
	if (!rc && r.off != r.len)
		rc = cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: %zu bytes after the node", r.off,
				     r.len - r.off);
	if (rc) {
		node_release(a, nd);
		if (nd->flags & N_LOADED)
			a->cached--;
		nd->n = 0;
		nd->flags = N_HAS_CID;
		cairn_cid_to_string(str, &nd->cid);
		return cairn_error_prefix("amt node %s: ", str);
	}
	return 0;
}

/* ---------------------------------------------------------------- leaves */

/* Makes room for `len` more bytes, compacting when half the buffer is dead. */
static int leaf_reserve(cairn_amt *a, amt_leaf *l, size_t len)
{
	size_t live = (size_t)l->used - l->dead, cap;
	uint8_t *data;

	if ((size_t)l->cap - l->used >= len)
		return 0;
	cap = live + len;
	if (cap > UINT32_MAX / 2)
		return cairn_error_set(CAIRN_ETOOBIG, "amt: a leaf's values would pass 2 GiB");
	cap = cap < 64 ? 64 : cap * 2;
	if (l->dead > live) {
		/* Copy the live values into a new buffer, in slot order. */
		uint32_t off = 0;

		if (!(data = cairn_malloc(cap)))
			return CAIRN_ENOMEM;
		for (uint32_t i = 0; i < a->width; i++) {
			uint32_t n = LLEN(a, l, i);

			if (!n)
				continue;
			memcpy(data + off, l->data + LOFF(a, l, i), n);
			LOFF(a, l, i) = off;
			off += n;
		}
		cairn_free(l->data);
		l->data = data;
		l->used = off;
		l->dead = 0;
	} else {
		cap = (size_t)l->used + len;
		cap = cap < 64 ? 64 : cap + cap / 2;
		if (cap > UINT32_MAX)
			return cairn_error_set(CAIRN_ETOOBIG, "amt: a leaf's values would pass 4 GiB");
		if (!(data = cairn_realloc(l->data, cap)))
			return CAIRN_ENOMEM;
		l->data = data;
	}
	l->cap = (uint32_t)cap;
	return 0;
}

/* ------------------------------------------------------------ set, get */

/* `changed_out`: whether anything changed (a value set to its own bytes
 * changes nothing, and leaves the path clean). */
static int node_set(cairn_amt *a, amt_node *nd, unsigned h, uint64_t i, const uint8_t *val,
		    size_t len, bool *added, bool *changed)
{
	amt_node *kid;
	uint64_t per;
	bool created = false;
	int rc;

	if (h == 0) {
		amt_leaf *l = nd->leaf;
		uint32_t old;

		if (!l && !(l = nd->leaf = leaf_new(a)))
			return CAIRN_ENOMEM;
		old = LLEN(a, l, i);
		if (old == len && !memcmp(l->data + LOFF(a, l, i), val, len))
			return 0;
		if ((rc = leaf_reserve(a, l, len))) {
			if (!nd->n) {
				cairn_free(l->data);
				cairn_free(l);
				nd->leaf = NULL;
			}
			return rc;
		}
		memcpy(l->data + l->used, val, len);
		if (old) {
			l->dead += old;
		} else {
			nd->n++;
			*added = true;
		}
		LOFF(a, l, i) = l->used;
		LLEN(a, l, i) = (uint32_t)len;
		l->used += (uint32_t)len;
		*changed = true;
		return 0;
	}
	per = nfh(a->bw, h);
	if ((rc = kids_alloc(a, nd)))
		return rc;
	if (!(kid = nd->kids[i / per])) {
		if (!(kid = node_new(a, N_LOADED)))
			return CAIRN_ENOMEM;
		created = true;
	} else if ((rc = node_load(a, kid, h - 1))) {
		return rc;
	}
	if ((rc = node_set(a, kid, h - 1, i % per, val, len, added, changed))) {
		if (created)
			node_free(a, kid);
		return rc;
	}
	if (created) {
		nd->kids[i / per] = kid;
		nd->n++;
	}
	if (*changed)
		kid->flags |= N_DIRTY;
	return 0;
}

static int check_index(const cairn_amt *a, uint64_t i)
{
	if (i > a->max_index)
		return cairn_error_set(CAIRN_EINVAL, "amt: index %llu is past the largest, %llu",
				       (unsigned long long)i, (unsigned long long)a->max_index);
	return 0;
}

static int try_collapse(cairn_amt *a);

int cairn_amt_set(cairn_amt *a, bool *added_out, uint64_t i, const uint8_t *val, size_t len)
{
	unsigned h = a->height, grow = 0;
	amt_node *old_root = a->root;
	uint8_t old_flags = a->root->flags;
	bool added = false, changed = false;
	int rc;

	if (added_out)
		*added_out = false;
	if ((rc = check_index(a, i)) || (rc = cairn_adt__check_value(val, len, "amt set")))
		return rc;
	if (a->collapse_pending && (rc = try_collapse(a)))
		return rc;
	while (i >= nfh(a->bw, h + 1)) {
		h++;
		grow++;
	}
	if (grow && a->root->n) {
		/* Push the root down into slot 0 of `grow` new nodes, all made
		 * before anything changes, so a failure leaves it as it was. */
		amt_node *ups[64];

		for (unsigned k = 0; k < grow; k++) {
			if (!(ups[k] = node_new(a, N_LOADED | N_DIRTY)) || kids_alloc(a, ups[k])) {
				for (unsigned j = 0; j <= k; j++)
					node_free(a, ups[j]);
				return CAIRN_ENOMEM;
			}
		}
		for (unsigned k = 0; k < grow; k++) {
			ups[k]->kids[0] = k ? ups[k - 1] : a->root;
			ups[k]->n = 1;
		}
		a->root->flags |= N_DIRTY;
		a->root = ups[grow - 1];
	} else if (grow && a->root->leaf) {
		/* An empty leaf becomes an empty interior root. */
		cairn_free(a->root->leaf->data);
		cairn_free(a->root->leaf);
		a->root->leaf = NULL;
	}
	a->height = h;
	rc = node_set(a, a->root, h, i, val, len, &added, &changed);
	if (rc) {
		/* Undo the growth: the old root is back at its height. */
		if (grow && old_root->n) {
			while (a->root != old_root) {
				amt_node *next = a->root->kids[0];

				a->root->kids[0] = NULL;
				node_free(a, a->root);
				a->root = next;
			}
			old_root->flags = old_flags;
		} else if (grow && old_root->kids) {
			cairn_free(old_root->kids);
			old_root->kids = NULL;
		}
		a->height -= grow;
		return rc;
	}
	if (added) {
		a->count++;
		if (added_out)
			*added_out = true;
	}
	if (changed || grow)
		a->dirty = true;
	return 0;
}

int cairn_amt_get(const uint8_t **val_out, size_t *len_out, cairn_amt *a, uint64_t i)
{
	amt_node *nd = a->root;
	int rc;

	if (val_out)
		*val_out = NULL;
	if (len_out)
		*len_out = 0;
	if ((rc = check_index(a, i)))
		return rc;
	if (i >= nfh(a->bw, a->height + 1))
		return CAIRN_ENOTFOUND;
	for (unsigned h = a->height; h > 0; h--) {
		uint64_t per = nfh(a->bw, h);

		if (!nd->kids || !(nd = nd->kids[i / per]))
			return CAIRN_ENOTFOUND;
		if ((rc = node_load(a, nd, h - 1)))
			return rc;
		i %= per;
	}
	if (!nd->leaf || !LLEN(a, nd->leaf, i))
		return CAIRN_ENOTFOUND;
	if (val_out)
		*val_out = nd->leaf->data + LOFF(a, nd->leaf, i);
	if (len_out)
		*len_out = LLEN(a, nd->leaf, i);
	return 0;
}

/* --------------------------------------------------------------- delete */

static int node_delete(cairn_amt *a, amt_node *nd, unsigned h, uint64_t i)
{
	amt_node *kid;
	uint64_t per;
	int rc;

	if (h == 0) {
		amt_leaf *l = nd->leaf;

		if (!l || !LLEN(a, l, i))
			return CAIRN_ENOTFOUND;
		l->dead += LLEN(a, l, i);
		LLEN(a, l, i) = 0;
		if (!--nd->n) {
			cairn_free(l->data);
			cairn_free(l);
			nd->leaf = NULL;
		}
		return 0;
	}
	per = nfh(a->bw, h);
	if (!nd->kids || !(kid = nd->kids[i / per]))
		return CAIRN_ENOTFOUND;
	if ((rc = node_load(a, kid, h - 1)) || (rc = node_delete(a, kid, h - 1, i % per)))
		return rc;
	if (!kid->n) {
		/* Empty children are unlinked, all the way up. */
		node_free(a, kid);
		nd->kids[i / per] = NULL;
		if (!--nd->n) {
			cairn_free(nd->kids);
			nd->kids = NULL;
		}
	} else {
		kid->flags |= N_DIRTY;
	}
	return 0;
}

/* While the root has only slot 0, that child becomes the root. */
static int try_collapse(cairn_amt *a)
{
	int rc;

	a->collapse_pending = false;
	while (a->height > 0) {
		amt_node *kid, *old = a->root;

		if (!old->n) {
			/* Nothing left: the empty leaf at height 0. */
			cairn_free(old->kids);
			old->kids = NULL;
			a->height = 0;
			break;
		}
		if (old->n != 1 || !old->kids[0])
			break;
		kid = old->kids[0];
		if ((rc = node_load(a, kid, a->height - 1))) {
			a->collapse_pending = true;
			return cairn_error_prefix("amt: collapsing the root: ");
		}
		old->kids[0] = NULL;
		node_free(a, old);
		kid->flags &= (uint8_t)~N_HAS_CID;
		a->root = kid;
		a->height--;
	}
	return 0;
}

int cairn_amt_delete(cairn_amt *a, uint64_t i)
{
	int rc;

	if ((rc = check_index(a, i)))
		return rc;
	if (a->collapse_pending && (rc = try_collapse(a)))
		return rc;
	if (i >= nfh(a->bw, a->height + 1))
		return CAIRN_ENOTFOUND;
	if ((rc = node_delete(a, a->root, a->height, i)))
		return rc;
	/* The count is trusted, as Go's; it does not wrap on a lying root. */
	if (a->count)
		a->count--;
	a->dirty = true;
	/* The value is gone whatever happens next: a collapse that cannot
	 * read its node is left for the next flush, which reports it. */
	if (try_collapse(a))
		cairn_error_clear();
	return 0;
}

int cairn_amt_batch_set(cairn_amt *a, uint64_t first, const uint8_t *vals, size_t len)
{
	adt_rd r = {vals, len, 0};
	uint64_t i = first;
	int rc;

	while (r.off < r.len) {
		size_t at = r.off;

		if ((rc = cairn_adt__skip(&r))) {
			char prefix[64];

			snprintf(prefix, sizeof(prefix), "amt batch set: value %llu: ",
				 (unsigned long long)(i - first));
			return cairn_adt__recode(CAIRN_EINVAL, prefix);
		}
		if ((rc = cairn_amt_set(a, NULL, i, vals + at, r.off - at)))
			return rc;
		i++;
	}
	return 0;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

int cairn_amt_batch_delete(cairn_amt *a, uint64_t *deleted_out, const uint64_t *idx, size_t n,
			   bool strict)
{
	uint64_t *sorted = NULL, deleted = 0;
	const uint64_t *v = idx;
	int rc = 0;

	if (deleted_out)
		*deleted_out = 0;
	for (size_t k = 1; k < n; k++) {
		if (idx[k - 1] > idx[k]) {
			/* Sorted on a copy, as Go: the caller's array is untouched. */
			if (!(sorted = cairn_malloc(n * sizeof(*sorted))))
				return CAIRN_ENOMEM;
			memcpy(sorted, idx, n * sizeof(*sorted));
			qsort(sorted, n, sizeof(*sorted), cmp_u64);
			v = sorted;
			break;
		}
	}
	for (size_t k = 0; k < n; k++) {
		rc = cairn_amt_delete(a, v[k]);
		if (rc == CAIRN_ENOTFOUND) {
			rc = 0;
			if (strict) {
				rc = cairn_error_set(CAIRN_ENOTFOUND, "amt batch delete: no index %llu",
						     (unsigned long long)v[k]);
				break;
			}
			continue;
		}
		if (rc)
			break;
		deleted++;
	}
	cairn_free(sorted);
	if (deleted_out)
		*deleted_out = deleted;
	return rc;
}

int cairn_amt_first_index(uint64_t *out, cairn_amt *a)
{
	amt_node *nd = a->root;
	uint64_t off = 0;
	int rc;

	*out = 0;
	for (unsigned h = a->height; h > 0; h--) {
		uint32_t s = 0;

		while (nd->kids && s < a->width && !nd->kids[s])
			s++;
		if (!nd->kids || s == a->width)
			return CAIRN_ENOTFOUND;
		off += s * nfh(a->bw, h);
		nd = nd->kids[s];
		if ((rc = node_load(a, nd, h - 1)))
			return rc;
	}
	for (uint32_t s = 0; nd->leaf && s < a->width; s++) {
		if (LLEN(a, nd->leaf, s)) {
			*out = off + s;
			return 0;
		}
	}
	return CAIRN_ENOTFOUND;
}

/* ---------------------------------------------------------------- flush */

static void node_encode(cairn_amt *a, cairn_buf *b, const amt_node *nd, unsigned h)
{
	size_t nb = bmap_bytes(a->bw), at;

	cairn_adt__put_head(b, ADT_MAJ_ARRAY, 3);
	cairn_adt__put_head(b, ADT_MAJ_BYTES, nb);
	at = b->len;
	for (size_t k = 0; k < nb; k++)
		cairn_buf_putc(b, 0);
	if (h > 0) {
		cairn_adt__put_head(b, ADT_MAJ_ARRAY, nd->n);
		for (uint32_t i = 0; nd->kids && i < a->width; i++) {
			if (!nd->kids[i])
				continue;
			if (!b->err)
				b->data[at + i / 8] |= (uint8_t)(1u << (i % 8));
			cairn_adt__put_link(b, &nd->kids[i]->cid);
		}
		cairn_adt__put_head(b, ADT_MAJ_ARRAY, 0);
		return;
	}
	cairn_adt__put_head(b, ADT_MAJ_ARRAY, 0);
	cairn_adt__put_head(b, ADT_MAJ_ARRAY, nd->n);
	for (uint32_t i = 0; nd->leaf && i < a->width; i++) {
		uint32_t n = LLEN(a, nd->leaf, i);

		if (!n)
			continue;
		if (!b->err)
			b->data[at + i / 8] |= (uint8_t)(1u << (i % 8));
		cairn_buf_append(b, nd->leaf->data + LOFF(a, nd->leaf, i), n);
	}
}

/* Writes the dirty children of nd, deepest first. A child stays dirty
 * until its block is put, so a failed flush loses nothing. */
static int flush_kids(cairn_amt *a, amt_node *nd, unsigned h)
{
	int rc;

	for (uint32_t i = 0; h > 0 && nd->kids && i < a->width; i++) {
		amt_node *kid = nd->kids[i];

		if (!kid || !(kid->flags & N_DIRTY))
			continue;
		if ((rc = flush_kids(a, kid, h - 1)))
			return rc;
		cairn_buf_clear(&a->scratch);
		node_encode(a, &a->scratch, kid, h - 1);
		if ((rc = cairn_adt__put(a->store, &kid->cid, a->mh_code, &a->scratch, "amt node")))
			return rc;
		kid->flags = (uint8_t)((kid->flags | N_HAS_CID) & ~N_DIRTY);
	}
	return 0;
}

int cairn_amt_flush(cairn_cid *root_out, cairn_amt *a)
{
	cairn_buf *b = &a->scratch;
	int rc;

	if (a->collapse_pending && (rc = try_collapse(a)))
		return rc;
	if (!a->dirty) {
		*root_out = a->root_cid;
		return 0;
	}
	if ((rc = flush_kids(a, a->root, a->height)))
		return rc;
	cairn_buf_clear(b);
	if (a->format == CAIRN_AMT_LEGACY) {
		cairn_adt__put_head(b, ADT_MAJ_ARRAY, 3);
	} else {
		cairn_adt__put_head(b, ADT_MAJ_ARRAY, 4);
		cairn_adt__put_head(b, ADT_MAJ_UINT, a->bw);
	}
	cairn_adt__put_head(b, ADT_MAJ_UINT, a->height);
	cairn_adt__put_head(b, ADT_MAJ_UINT, a->count);
	node_encode(a, b, a->root, a->height);
	if ((rc = cairn_adt__put(a->store, &a->root_cid, a->mh_code, b, "amt root")))
		return rc;
	a->dirty = false;
	a->root->flags &= (uint8_t)~N_DIRTY;
	*root_out = a->root_cid;
	return 0;
}

static void evict(cairn_amt *a, amt_node *nd)
{
	for (uint32_t i = 0; nd->kids && i < a->width; i++) {
		amt_node *kid = nd->kids[i];

		if (!kid || !(kid->flags & N_LOADED))
			continue;
		if ((kid->flags & N_HAS_CID) && !(kid->flags & N_DIRTY))
			node_unload(a, kid);
		else
			evict(a, kid);
	}
}

void cairn_amt_evict(cairn_amt *a)
{
	evict(a, a->root);
	if (!a->dirty)
		cairn_buf_free(&a->scratch);
}

uint64_t cairn_amt_cached_nodes(const cairn_amt *a)
{
	return a->cached;
}

/* ------------------------------------------------------ new, load, free */

static int check_options(cairn_amt_options *o, const cairn_amt_options *in, bool load)
{
	*o = (cairn_amt_options)CAIRN_AMT_OPTIONS_INIT;
	if (in)
		*o = *in;
	if (o->format > CAIRN_AMT_DETECT || (o->format == CAIRN_AMT_DETECT && !load))
		return cairn_error_set(CAIRN_EINVAL, "amt: format %d is not one a new AMT can have",
				       (int)o->format);
	if ((o->bit_width == 0 && !load) || o->bit_width > CAIRN_AMT_MAX_BIT_WIDTH)
		return cairn_error_set(CAIRN_EINVAL, "amt: bit width %u is not in 1..%d", o->bit_width,
				       CAIRN_AMT_MAX_BIT_WIDTH);
	if (o->format == CAIRN_AMT_LEGACY && o->bit_width && o->bit_width != 3)
		return cairn_error_set(CAIRN_EINVAL, "amt: the legacy format has bit width 3, not %u",
				       o->bit_width);
	return cairn_adt__check_mh(o->mh_code, "amt");
}

static cairn_amt *amt_alloc(cairn_store *store, const cairn_amt_options *o, cairn_amt_format f,
			    unsigned bw)
{
	cairn_amt *a = cairn_calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->store = store;
	a->format = f;
	a->bw = bw;
	a->width = 1u << bw;
	a->mh_code = o->mh_code;
	a->max_index = f == CAIRN_AMT_LEGACY ? CAIRN_AMT_LEGACY_MAX_INDEX : CAIRN_AMT_MAX_INDEX;
	if (!(a->root = node_new(a, N_LOADED))) {
		cairn_free(a);
		return NULL;
	}
	return a;
}

int cairn_amt_new(cairn_amt **out, cairn_store *store, const cairn_amt_options *opts)
{
	cairn_amt_options o;
	int rc;

	*out = NULL;
	if (!store)
		return cairn_error_set(CAIRN_EINVAL, "amt: a store is required");
	if ((rc = check_options(&o, opts, false)))
		return rc;
	if (!(*out = amt_alloc(store, &o, o.format, o.format == CAIRN_AMT_LEGACY ? 3 : o.bit_width)))
		return CAIRN_ENOMEM;
	(*out)->dirty = true;
	return 0;
}

int cairn_amt_load(cairn_amt **out, cairn_store *store, const cairn_cid *root,
		   const cairn_amt_options *opts)
{
	char str[CAIRN_CID_MAX_STRING];
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t fields = 0, bw = 3, height = 0, count = 0;
	cairn_amt_format f;
	cairn_amt_options o;
	cairn_amt *a = NULL;
	adt_rd r;
	int rc;

	*out = NULL;
	if (!store || !root)
		return cairn_error_set(CAIRN_EINVAL, "amt: a store and a root are required");
	if ((rc = check_options(&o, opts, true)))
		return rc;
	cairn_cid_to_string(str, root);
	if ((rc = cairn_adt__get(store, &b, root, "amt root")))
		return rc;
	r = (adt_rd){b.data, b.len, 0};
	if ((rc = cairn_adt__expect(&r, ADT_MAJ_ARRAY, &fields, "the root")))
		goto corrupt;
	if (fields != 3 && fields != 4) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "at byte 0: a root has 4 fields (or 3, legacy), "
				     "not %llu", (unsigned long long)fields);
		goto corrupt;
	}
	f = fields == 3 ? CAIRN_AMT_LEGACY : CAIRN_AMT_V3;
	if (o.format != CAIRN_AMT_DETECT && o.format != f) {
		rc = cairn_error_set(CAIRN_EINVAL, "amt root %s: the root is %s, but %s was asked for",
				     str, fmt_name(f), fmt_name(o.format));
		goto out;
	}
	if (f == CAIRN_AMT_V3 && (rc = cairn_adt__expect(&r, ADT_MAJ_UINT, &bw, "the bit width")))
		goto corrupt;
	if ((rc = cairn_adt__expect(&r, ADT_MAJ_UINT, &height, "the height")) ||
	    (rc = cairn_adt__expect(&r, ADT_MAJ_UINT, &count, "the count")))
		goto corrupt;
	/* Checked against the configuration, never trusted (go-amt-ipld). */
	if (o.bit_width && bw != o.bit_width) {
		rc = cairn_error_set(CAIRN_EINVAL, "amt root %s: bit width %llu, but %u was asked for",
				     str, (unsigned long long)bw, o.bit_width);
		goto out;
	}
	if (bw < 1 || bw > CAIRN_AMT_MAX_BIT_WIDTH) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "at byte 1: bit width %llu is not in 1..%d",
				     (unsigned long long)bw, CAIRN_AMT_MAX_BIT_WIDTH);
		goto corrupt;
	}
	if (height > (f == CAIRN_AMT_LEGACY ? 20 : 64) ||
	    (nfh((unsigned)bw, (unsigned)height + 1) == UINT64_MAX &&
	     nfh((unsigned)bw, (unsigned)height) == UINT64_MAX)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: height %llu is out of bounds for "
				     "bit width %llu", r.off - 1, (unsigned long long)height,
				     (unsigned long long)bw);
		goto corrupt;
	}
	if (count > nfh((unsigned)bw, (unsigned)height + 1)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "count %llu does not fit in height %llu",
				     (unsigned long long)count, (unsigned long long)height);
		goto corrupt;
	}
	if (!(a = amt_alloc(store, &o, f, (unsigned)bw))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	a->height = (unsigned)height;
	a->count = count;
	if ((rc = node_decode(a, a->root, &r, &b, a->height, true)))
		goto corrupt;
	if (r.off != r.len) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "at byte %zu: %zu bytes after the root", r.off,
				     r.len - r.off);
		goto corrupt;
	}
	a->root_cid = *root;
	*out = a;
	a = NULL;
	goto out;
corrupt:
	cairn_error_prefix("amt root %s: ", str);
out:
	cairn_amt_free(a);
	cairn_buf_free(&b);
	return rc;
}

void cairn_amt_free(cairn_amt *a)
{
	if (!a)
		return;
	node_free(a, a->root);
	cairn_buf_free(&a->scratch);
	cairn_free(a);
}

uint64_t cairn_amt_count(const cairn_amt *a)
{
	return a->count;
}

unsigned cairn_amt_height(const cairn_amt *a)
{
	return a->height;
}

unsigned cairn_amt_bit_width(const cairn_amt *a)
{
	return a->bw;
}

cairn_amt_format cairn_amt_get_format(const cairn_amt *a)
{
	return a->format;
}

uint64_t cairn_amt_max_index(const cairn_amt *a)
{
	return a->max_index;
}

const char *cairn_adt_change_name(cairn_adt_change_type type)
{
	switch (type) {
	case CAIRN_ADT_ADD:
		return "add";
	case CAIRN_ADT_REMOVE:
		return "remove";
	case CAIRN_ADT_MODIFY:
		return "modify";
	}
	return "unknown";
}

/* ---------------------------------------------------------------- walks */

/* Reads a child for a walk; `read_here` says whether the walk must turn it
 * back into a stub when done with it. */
static int walk_load(cairn_amt *a, amt_node *nd, unsigned h, bool *read_here)
{
	*read_here = !(nd->flags & N_LOADED);
	return node_load(a, nd, h);
}

static void walk_done(cairn_amt *a, amt_node *nd, bool read_here)
{
	if (read_here && !(nd->flags & N_DIRTY))
		node_unload(a, nd);
}

struct cairn_amt_iter {
	cairn_amt *amt;
	uint64_t start;
	unsigned depth;
	struct {
		amt_node *nd;
		uint64_t off;
		uint32_t slot;
		bool read_here;
	} fr[66];
};

int cairn_amt_iter_new(cairn_amt_iter **out, cairn_amt *a, uint64_t start)
{
	cairn_amt_iter *it;

	*out = NULL;
	if (!(it = cairn_calloc(1, sizeof(*it))))
		return CAIRN_ENOMEM;
	it->amt = a;
	it->start = start;
	it->depth = 1;
	it->fr[0].nd = a->root;
	*out = it;
	return 0;
}

int cairn_amt_iter_next(cairn_amt_iter *it, uint64_t *index_out, const uint8_t **val_out,
			size_t *len_out)
{
	cairn_amt *a = it->amt;
	int rc;

	while (it->depth) {
		unsigned d = it->depth - 1, h = a->height - d;
		amt_node *nd = it->fr[d].nd;
		uint64_t off = it->fr[d].off;
		uint32_t s = it->fr[d].slot;

		if (h == 0) {
			for (; nd->leaf && s < a->width; s++) {
				uint32_t n = LLEN(a, nd->leaf, s);

				if (!n || off + s < it->start)
					continue;
				it->fr[d].slot = s + 1;
				*index_out = off + s;
				*val_out = nd->leaf->data + LOFF(a, nd->leaf, s);
				*len_out = n;
				return 1;
			}
		} else {
			uint64_t per = nfh(a->bw, h);

			for (; nd->kids && s < a->width; s++) {
				amt_node *kid = nd->kids[s];
				uint64_t koff, last;
				bool read_here;

				if (!kid)
					continue;
				/* A subtree ending before start is skipped unread; the
				 * sums cannot wrap (see the top of the file). */
				koff = off + s * per;
				last = koff + (per - 1);
				if (last < it->start)
					continue;
				if ((rc = walk_load(a, kid, h - 1, &read_here)))
					return rc;
				it->fr[d].slot = s + 1;
				it->fr[d + 1].nd = kid;
				it->fr[d + 1].off = koff;
				it->fr[d + 1].slot = 0;
				it->fr[d + 1].read_here = read_here;
				it->depth++;
				break;
			}
			if (nd->kids && s < a->width)
				continue;
		}
		/* This node is done. */
		if (d > 0)
			walk_done(a, nd, it->fr[d].read_here);
		it->fr[d].slot = a->width;
		it->depth--;
	}
	return 0;
}

void cairn_amt_iter_free(cairn_amt_iter *it)
{
	if (!it)
		return;
	/* Nodes still open were read for the cursor: drop them again. */
	while (it->depth > 1) {
		it->depth--;
		walk_done(it->amt, it->fr[it->depth].nd, it->fr[it->depth].read_here);
	}
	cairn_free(it);
}

int cairn_amt_for_each(cairn_amt *a, uint64_t start, cairn_amt_fn fn, void *payload)
{
	cairn_amt_iter *it;
	const uint8_t *val;
	uint64_t i;
	size_t len;
	int rc;

	if ((rc = cairn_amt_iter_new(&it, a, start)))
		return rc;
	while ((rc = cairn_amt_iter_next(it, &i, &val, &len)) == 1)
		if ((rc = fn(i, val, len, payload)))
			break;
	cairn_amt_iter_free(it);
	return rc;
}

/* ----------------------------------------------------------------- diff
 *
 * go-amt-ipld's diffNode, with the pruning of equal CIDs (#76) and one
 * correction: where the taller tree has no slot 0, everything in the
 * shorter one is removed (Go's loop never visits it and reports nothing).
 */
typedef struct {
	cairn_amt_diff_fn fn;
	void *payload;
} diff_ctx;

/* Every value below nd (at height h, offset off) as an add or a remove. */
static int emit_all(cairn_amt *a, diff_ctx *d, amt_node *nd, unsigned h, uint64_t off,
		    cairn_adt_change_type type)
{
	int rc;

	if (h == 0) {
		for (uint32_t s = 0; nd->leaf && s < a->width; s++) {
			uint32_t n = LLEN(a, nd->leaf, s);
			const uint8_t *v = nd->leaf->data + LOFF(a, nd->leaf, s);
			cairn_amt_change ch = {type, off + s, NULL, 0, NULL, 0};

			if (!n)
				continue;
			if (type == CAIRN_ADT_ADD) {
				ch.after = v;
				ch.after_len = n;
			} else {
				ch.before = v;
				ch.before_len = n;
			}
			if ((rc = d->fn(&ch, d->payload)))
				return rc;
		}
		return 0;
	}
	for (uint32_t s = 0; nd->kids && s < a->width; s++) {
		amt_node *kid = nd->kids[s];
		bool read_here;

		if (!kid)
			continue;
		if ((rc = walk_load(a, kid, h - 1, &read_here)))
			return rc;
		rc = emit_all(a, d, kid, h - 1, off + s * nfh(a->bw, h), type);
		walk_done(a, kid, read_here);
		if (rc)
			return rc;
	}
	return 0;
}

static bool same_cid(const amt_node *p, const amt_node *c)
{
	return (p->flags & N_HAS_CID) && (c->flags & N_HAS_CID) && !(p->flags & N_DIRTY) &&
	       !(c->flags & N_DIRTY) && cairn_cid_equal(&p->cid, &c->cid);
}

static int diff_node(cairn_amt *pa, cairn_amt *ca, diff_ctx *d, amt_node *p, unsigned ph,
		     amt_node *c, unsigned ch, uint64_t off)
{
	uint32_t w = pa->width;
	int rc;

	if (ph == 0 && ch == 0) {
		for (uint32_t s = 0; s < w; s++) {
			uint32_t pn = p->leaf ? LLEN(pa, p->leaf, s) : 0;
			uint32_t cn = c->leaf ? LLEN(ca, c->leaf, s) : 0;
			cairn_amt_change x = {CAIRN_ADT_MODIFY, off + s, NULL, pn, NULL, cn};

			if (!pn && !cn)
				continue;
			if (pn)
				x.before = p->leaf->data + LOFF(pa, p->leaf, s);
			if (cn)
				x.after = c->leaf->data + LOFF(ca, c->leaf, s);
			if (!pn)
				x.type = CAIRN_ADT_ADD;
			else if (!cn)
				x.type = CAIRN_ADT_REMOVE;
			else if (pn == cn && !memcmp(x.before, x.after, pn))
				continue;
			if ((rc = d->fn(&x, d->payload)))
				return rc;
		}
		return 0;
	}
	if (ph != ch) {
		/* Walk the taller side: its slot 0 holds everything the shorter
		 * side can; its other slots are only on its side. */
		bool cur_taller = ch > ph, shorter_done = false;
		cairn_amt *ta = cur_taller ? ca : pa;
		amt_node *tall = cur_taller ? c : p, *shorter = cur_taller ? p : c;
		unsigned th = cur_taller ? ch : ph, sh = cur_taller ? ph : ch;
		uint64_t per = nfh(ta->bw, th);

		for (uint32_t s = 0; tall->kids && s < w; s++) {
			amt_node *kid = tall->kids[s];
			bool read_here;

			if (!kid)
				continue;
			if (s > 0 && !shorter_done) {
				shorter_done = true;
				if ((rc = emit_all(cur_taller ? pa : ca, d, shorter, sh, off,
						   cur_taller ? CAIRN_ADT_REMOVE : CAIRN_ADT_ADD)))
					return rc;
			}
			if ((rc = walk_load(ta, kid, th - 1, &read_here)))
				return rc;
			if (s == 0) {
				shorter_done = true;
				rc = cur_taller ? diff_node(pa, ca, d, p, ph, kid, th - 1, off)
						: diff_node(pa, ca, d, kid, th - 1, c, ch, off);
			} else {
				rc = emit_all(ta, d, kid, th - 1, off + s * per,
					      cur_taller ? CAIRN_ADT_ADD : CAIRN_ADT_REMOVE);
			}
			walk_done(ta, kid, read_here);
			if (rc)
				return rc;
		}
		if (!shorter_done)
			return emit_all(cur_taller ? pa : ca, d, shorter, sh, off,
					cur_taller ? CAIRN_ADT_REMOVE : CAIRN_ADT_ADD);
		return 0;
	}
	for (uint32_t s = 0; s < w; s++) {
		amt_node *pk = p->kids ? p->kids[s] : NULL, *ck = c->kids ? c->kids[s] : NULL;
		uint64_t koff = off + s * nfh(pa->bw, ph);
		bool pr = false, cr = false;

		if (!pk && !ck)
			continue;
		if (pk && ck && same_cid(pk, ck))
			continue; /* the same subtree: nothing below differs */
		if (pk && (rc = walk_load(pa, pk, ph - 1, &pr)))
			return rc;
		if (ck && (rc = walk_load(ca, ck, ch - 1, &cr))) {
			if (pk)
				walk_done(pa, pk, pr);
			return rc;
		}
		if (!ck)
			rc = emit_all(pa, d, pk, ph - 1, koff, CAIRN_ADT_REMOVE);
		else if (!pk)
			rc = emit_all(ca, d, ck, ch - 1, koff, CAIRN_ADT_ADD);
		else
			rc = diff_node(pa, ca, d, pk, ph - 1, ck, ch - 1, koff);
		if (pk)
			walk_done(pa, pk, pr);
		if (ck)
			walk_done(ca, ck, cr);
		if (rc)
			return rc;
	}
	return 0;
}

int cairn_amt_diff(cairn_amt *prev, cairn_amt *cur, cairn_amt_diff_fn fn, void *payload)
{
	diff_ctx d = {fn, payload};

	if (prev->bw != cur->bw)
		return cairn_error_set(CAIRN_EINVAL, "amt diff: bit widths differ (prev %u, cur %u)",
				       prev->bw, cur->bw);
	if (prev == cur || (!prev->dirty && !cur->dirty &&
			    cairn_cid_equal(&prev->root_cid, &cur->root_cid)))
		return 0;
	return diff_node(prev, cur, &d, prev->root, prev->height, cur->root, cur->height, 0);
}
