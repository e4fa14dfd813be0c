/* node.c: lookups, equality and UTF-8 checking over the IPLD data model,
 * shared by every codec. */
#include <stdio.h>
#include <string.h>

#include "ipld_i.h"

const char *cairn_kind_name(cairn_kind kind)
{
	static const char *const names[] = {"null", "bool", "int", "float", "string",
					    "bytes", "list", "map", "link"};

	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

const cairn_node *cairn_node_map_get(const cairn_node *map, const char *key)
{
	size_t i, n;

	if (!map || map->kind != CAIRN_KIND_MAP)
		return NULL;
	n = strlen(key);
	for (i = 0; i < map->v.map.len; i++) {
		const cairn_map_entry *e = &map->v.map.entries[i];
		if (e->key_len == n && !memcmp(e->key, key, n))
			return &e->value;
	}
	return NULL;
}

bool cairn_node_equal(const cairn_node *a, const cairn_node *b)
{
	size_t i;

	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case CAIRN_KIND_NULL: return true;
	case CAIRN_KIND_BOOL: return a->v.b == b->v.b;
	case CAIRN_KIND_INT: return a->v.i.mag == b->v.i.mag && a->v.i.neg == b->v.i.neg;
	case CAIRN_KIND_FLOAT: return !memcmp(&a->v.f, &b->v.f, sizeof(double));
	case CAIRN_KIND_STRING:
	case CAIRN_KIND_BYTES:
		return a->v.bytes.len == b->v.bytes.len &&
		       (!a->v.bytes.len || !memcmp(a->v.bytes.ptr, b->v.bytes.ptr, a->v.bytes.len));
	case CAIRN_KIND_LIST:
		if (a->v.list.len != b->v.list.len)
			return false;
		for (i = 0; i < a->v.list.len; i++)
			if (!cairn_node_equal(&a->v.list.items[i], &b->v.list.items[i]))
				return false;
		return true;
	case CAIRN_KIND_MAP:
		if (a->v.map.len != b->v.map.len)
			return false;
		for (i = 0; i < a->v.map.len; i++) {
			const cairn_map_entry *x = &a->v.map.entries[i], *y = &b->v.map.entries[i];
			if (x->key_len != y->key_len || (x->key_len && memcmp(x->key, y->key, x->key_len)) ||
			    !cairn_node_equal(&x->value, &y->value))
				return false;
		}
		return true;
	case CAIRN_KIND_LINK: return cairn_cid_equal(a->v.link, b->v.link);
	}
	return false;
}

size_t cairn_ipld__utf8_valid_prefix(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t need;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			need = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			need = 2, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			need = 3, cp = c & 0x07, min = 0x10000;
		else
			return i;
		if (n - i <= need)
			return i;
		for (size_t k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += need + 1;
	}
	return n;
}

typedef struct {
	const cairn_map_entry **v;
	bool cbor;
} sort_ctx;

static int entry_cmp(const cairn_map_entry *a, const cairn_map_entry *b, bool cbor)
{
	return cbor ? cairn_ipld__key_cmp_cbor(a->key, a->key_len, b->key, b->key_len)
		    : cairn_ipld__key_cmp_bytes(a->key, a->key_len, b->key, b->key_len);
}

/* Merge sort: stable, O(n log n), no qsort_r portability trouble. */
static void merge_sort(const cairn_map_entry **v, const cairn_map_entry **tmp, size_t n, bool cbor)
{
	size_t mid = n / 2, i = 0, j = mid, k = 0;

	if (n < 2)
		return;
	merge_sort(v, tmp, mid, cbor);
	merge_sort(v + mid, tmp, n - mid, cbor);
	while (i < mid && j < n)
		tmp[k++] = entry_cmp(v[j], v[i], cbor) < 0 ? v[j++] : v[i++];
	while (i < mid)
		tmp[k++] = v[i++];
	while (j < n)
		tmp[k++] = v[j++];
	memcpy(v, tmp, n * sizeof(*v));
}

int cairn_ipld__sort_entries(const cairn_map_entry **out, const cairn_node *map, bool cbor_order)
{
	size_t n = map->v.map.len, i;
	const cairn_map_entry **tmp;
	bool sorted = true;

	for (i = 0; i < n; i++) {
		out[i] = &map->v.map.entries[i];
		if (i && entry_cmp(out[i - 1], out[i], cbor_order) >= 0)
			sorted = false;
	}
	if (!sorted) {
		tmp = cairn_malloc(n * sizeof(*tmp));
		if (!tmp)
			return CAIRN_ENOMEM;
		merge_sort(out, tmp, n, cbor_order);
		cairn_free(tmp);
	}
	for (i = 1; i < n; i++)
		if (!entry_cmp(out[i - 1], out[i], cbor_order))
			return cairn_error_set(CAIRN_EINVAL, "map has the key \"%.*s\" twice",
					       (int)(out[i]->key_len > 64 ? 64 : out[i]->key_len),
					       (const char *)out[i]->key);
	return 0;
}

int cairn_ipld__corrupt(const char *codec, size_t at, const char *fmt, ...)
{
	char what[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %zu: %s", codec, at, what);
}
