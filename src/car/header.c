/* header.c: the CARv1 header ({roots, version} in DAG-CBOR) and the CARv2
 * pragma and 40-byte header, encoded and checked. */
#include <string.h>

#include "car_i.h"

const uint8_t cairn_car_pragma[CAIRN_CAR_PRAGMA_LEN] = {
	0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02,
};

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

bool cairn_car_v2_fully_indexed(const cairn_car_v2_header *h)
{
	return (h->characteristics[0] & 0x80) != 0;
}

int cairn_car_v2_header_decode(cairn_car_v2_header *out, const uint8_t in[CAIRN_CAR_V2_HEADER_LEN])
{
	cairn_car_v2_header h;

	memcpy(h.characteristics, in, 16);
	h.data_offset = get_le64(in + 16);
	h.data_size = get_le64(in + 24);
	h.index_offset = get_le64(in + 32);
	/* The same checks as go-car's Header.ReadFrom, plus the index not
	 * starting inside the data: signed overflow in go, a clear error here. */
	if (h.data_offset < CAIRN_CAR_V2_PREFIX_LEN || h.data_offset >> 62)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte 27: invalid data payload offset %llu",
				       (unsigned long long)h.data_offset);
	if (h.data_size == 0 || h.data_size >> 62)
		return cairn_error_set(CAIRN_ECORRUPT, "at byte 35: invalid data payload size %llu",
				       (unsigned long long)h.data_size);
	if (h.index_offset && h.index_offset < h.data_offset + h.data_size)
		return cairn_error_set(CAIRN_ECORRUPT,
			"at byte 43: index offset %llu is inside the data payload (which ends at %llu)",
			(unsigned long long)h.index_offset,
			(unsigned long long)(h.data_offset + h.data_size));
	*out = h;
	return 0;
}

void cairn_car_v2_header_encode(uint8_t out[CAIRN_CAR_V2_HEADER_LEN], const cairn_car_v2_header *h)
{
	memcpy(out, h->characteristics, 16);
	put_le64(out + 16, h->data_offset);
	put_le64(out + 24, h->data_size);
	put_le64(out + 32, h->index_offset);
}

int cairn_car_v1_header_encode(cairn_buf *out, const cairn_cid *roots, size_t nroots)
{
	cairn_buf body = CAIRN_BUF_INIT;
	cairn_map_entry entries[2];
	cairn_node map, *items = NULL;
	uint8_t varint[CAIRN_VARINT_MAX];
	int rc;

	if (nroots && !(items = cairn_calloc(nroots, sizeof(*items))))
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < nroots; i++) {
		items[i].kind = CAIRN_KIND_LINK;
		items[i].v.link = &roots[i];
	}
	entries[0] = (cairn_map_entry){(const uint8_t *)"roots", 5, {.kind = CAIRN_KIND_LIST}};
	entries[0].value.v.list.items = items;
	entries[0].value.v.list.len = nroots;
	entries[1] = (cairn_map_entry){(const uint8_t *)"version", 7, {.kind = CAIRN_KIND_INT}};
	entries[1].value.v.i.mag = 1;
	map.kind = CAIRN_KIND_MAP;
	map.v.map.entries = entries;
	map.v.map.len = 2;
	rc = cairn_dagcbor_encode(&body, &map);
	if (!rc) {
		cairn_buf_append(out, varint, cairn_varint_encode(varint, body.len));
		rc = cairn_buf_append(out, body.data, body.len);
	}
	cairn_free(items);
	cairn_buf_free(&body);
	return rc;
}

int cairn_car__header_parse(unsigned *version, cairn_cid **roots_out, size_t *nroots_out,
			    const uint8_t *p, size_t len, const char *name, uint64_t at)
{
	const cairn_node *v, *roots;
	cairn_arena *arena;
	cairn_node *root;
	cairn_cid *cids = NULL;
	int rc;

	*roots_out = NULL;
	*nroots_out = 0;
	if ((rc = cairn_arena_new(&arena)))
		return rc;
	if ((rc = cairn_dagcbor_decode(&root, arena, p, len))) {
		cairn_error_prefix("%s: header at byte %llu: ", name, (unsigned long long)at);
		goto out;
	}
	v = cairn_node_map_get(root, "version");
	if (!v || v->kind != CAIRN_KIND_INT || v->v.i.neg) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: header at byte %llu: no version number",
				     name, (unsigned long long)at);
		goto out;
	}
	if (v->v.i.mag != 1 && v->v.i.mag != 2) {
		rc = cairn_error_set(CAIRN_EUNSUPPORTED, "%s: header at byte %llu: invalid car version: %llu",
				     name, (unsigned long long)at, (unsigned long long)v->v.i.mag);
		goto out;
	}
	*version = (unsigned)v->v.i.mag;
	roots = cairn_node_map_get(root, "roots");
	if (*version == 2) {
		/* The pragma is exactly {"version": 2}; js-car refuses roots in it. */
		if (root->v.map.len != 1)
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: header at byte %llu: CARv2 pragma has fields besides version",
					     name, (unsigned long long)at);
		goto out;
	}
	if (!roots || roots->kind != CAIRN_KIND_LIST) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: header at byte %llu: no roots list", name,
				     (unsigned long long)at);
		goto out;
	}
	if (roots->v.list.len && !(cids = cairn_malloc(roots->v.list.len * sizeof(*cids)))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < roots->v.list.len; i++) {
		if (roots->v.list.items[i].kind != CAIRN_KIND_LINK) {
			cairn_free(cids);
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: header at byte %llu: root %zu is not a CID",
					     name, (unsigned long long)at, i);
			goto out;
		}
		cids[i] = *roots->v.list.items[i].v.link;
	}
	*roots_out = cids;
	*nroots_out = roots->v.list.len;
out:
	cairn_arena_free(arena);
	return rc;
}
