/* links.c: the links of a block of any supported codec, in order, without
 * building a tree where the codec allows it. */
#include "ipld_i.h"


static int walk(const cairn_node *n, cairn_link_fn fn, void *payload)
{
	int rc = 0;

	switch (n->kind) {
	case CAIRN_KIND_LINK:
		return fn(n->v.link, payload);
	case CAIRN_KIND_LIST:
		for (size_t i = 0; i < n->v.list.len && !rc; i++)
			rc = walk(&n->v.list.items[i], fn, payload);
		return rc;
	case CAIRN_KIND_MAP:
		for (size_t i = 0; i < n->v.map.len && !rc; i++)
			rc = walk(&n->v.map.entries[i].value, fn, payload);
		return rc;
	default:
		return 0;
	}
}

int cairn_block_links(uint64_t codec, const uint8_t *p, size_t len, cairn_link_fn fn, void *payload)
{
	cairn_arena *arena;
	cairn_node *root;
	int rc;

	switch (codec) {
	case CAIRN_CODEC_RAW:
		return 0;
	case CAIRN_CODEC_DAG_CBOR:
		return cairn_ipld__dagcbor_links(p, len, fn, payload);
	case CAIRN_CODEC_DAG_PB:
		return cairn_ipld__dagpb_links(p, len, fn, payload);
	default:
		/* DAG-JSON has no in-place scanner: links need the whole text
		 * parsed anyway to tell {"/": ...} from an ordinary map. */
		if ((rc = cairn_arena_new(&arena)))
			return rc;
		rc = cairn_ipld_decode(&root, arena, codec, p, len);
		if (!rc)
			rc = walk(root, fn, payload);
		cairn_arena_free(arena);
		return rc;
	}
}

typedef struct {
	cairn_link_bytes_fn fn;
	void *payload;
} bytes_ctx;

static int link_bytes(const cairn_cid *link, void *payload)
{
	bytes_ctx *b = payload;

	return b->fn(link->bytes, link->len, b->payload);
}

/* DAG-CBOR hands over a link's bytes where it finds them; the others
 * decode their links anyway (DAG-PB to check its form, DAG-JSON from
 * text), and give the bytes of what they decoded. */
int cairn_block_link_bytes(uint64_t codec, const uint8_t *p, size_t len, cairn_link_bytes_fn fn,
			   void *payload)
{
	bytes_ctx b = {fn, payload};

	if (codec == CAIRN_CODEC_DAG_CBOR)
		return cairn_ipld__dagcbor_link_bytes(p, len, fn, payload);
	return cairn_block_links(codec, p, len, fn ? link_bytes : NULL, &b);
}
