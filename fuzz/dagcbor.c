/* dagcbor.c: fuzz target for DAG-CBOR: the strict decoder accepts only the
 * canonical form, so what decodes re-encodes byte for byte; both scanners agree. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

static int count_link(const cairn_cid *cid, void *payload)
{
	if (cid->len == 0 || cid->len > CAIRN_CID_MAX_BYTES)
		abort();
	(*(size_t *)payload)++;
	return 0;
}

/* The scan that hands over a link's bytes, decoded here as the export does. */
static int count_link_bytes(const uint8_t *bytes, size_t len, void *payload)
{
	cairn_cid cid;
	int rc = cairn_cid_decode(&cid, NULL, bytes, len);

	return rc ? rc : count_link(&cid, payload);
}

static size_t tree_links(const cairn_node *n)
{
	size_t count = 0;

	switch (n->kind) {
	case CAIRN_KIND_LINK:
		return 1;
	case CAIRN_KIND_LIST:
		for (size_t i = 0; i < n->v.list.len; i++)
			count += tree_links(&n->v.list.items[i]);
		return count;
	case CAIRN_KIND_MAP:
		for (size_t i = 0; i < n->v.map.len; i++)
			count += tree_links(&n->v.map.entries[i].value);
		return count;
	default:
		return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_arena *arena;
	cairn_node *node = NULL;
	size_t scanned = 0, scanned_bytes = 0;
	int rc, links_rc, bytes_rc;

	if (cairn_arena_new(&arena))
		abort();
	rc = cairn_dagcbor_decode(&node, arena, data, size);
	links_rc = cairn_block_links(CAIRN_CODEC_DAG_CBOR, data, size, count_link, &scanned);
	bytes_rc = cairn_block_link_bytes(CAIRN_CODEC_DAG_CBOR, data, size, count_link_bytes,
					  &scanned_bytes);
	/* one parser behind all three: the same verdict and the same code */
	if (rc != links_rc || rc != bytes_rc || (!rc && scanned != scanned_bytes))
		abort();
	if (rc) {
		if (node || (rc != CAIRN_ECORRUPT && rc != CAIRN_ETOOBIG && rc != CAIRN_EUNSUPPORTED))
			abort();
	} else {
		cairn_buf b = CAIRN_BUF_INIT;

		if (!node)
			abort();
		if (cairn_dagcbor_encode(&b, node))
			abort();
		if (b.len != size || (size && memcmp(b.data, data, size)))
			abort();
		if (tree_links(node) != scanned)
			abort();
		if (!cairn_node_equal(node, node))
			abort();
		cairn_buf_free(&b);
	}
	cairn_arena_free(arena);
	return 0;
}
