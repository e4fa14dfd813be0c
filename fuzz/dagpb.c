/* fuzz/dagpb.c: the DAG-PB decoder, encoder and link scanner against each
 * other; any input that makes them disagree aborts. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"
#include "ipld/ipld_i.h"

typedef struct {
	const cairn_node *links; /* the decoded Links list, or NULL */
	size_t seen;
	bool mismatch;
} scan_state;

static int on_link(const cairn_cid *cid, void *payload)
{
	scan_state *s = payload;

	if (s->links) {
		const cairn_node *hash;

		if (s->seen >= s->links->v.list.len ||
		    !(hash = cairn_node_map_get(&s->links->v.list.items[s->seen], "Hash")) ||
		    hash->kind != CAIRN_KIND_LINK || !cairn_cid_equal(hash->v.link, cid))
			s->mismatch = true;
	}
	s->seen++;
	return 0;
}

/* Whether the links are in the order the encoder demands; decoding takes
 * any order, so this decides whether encoding may succeed. */
static bool links_sorted(const cairn_node *links)
{
	for (size_t i = 1; i < links->v.list.len; i++) {
		const cairn_node *a = cairn_node_map_get(&links->v.list.items[i - 1], "Name");
		const cairn_node *b = cairn_node_map_get(&links->v.list.items[i], "Name");
		size_t alen = a ? a->v.bytes.len : 0, blen = b ? b->v.bytes.len : 0;

		if (cairn_ipld__key_cmp_bytes(a ? a->v.bytes.ptr : NULL, alen,
					      b ? b->v.bytes.ptr : NULL, blen) > 0)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_buf enc = CAIRN_BUF_INIT, enc2 = CAIRN_BUF_INIT, cbor = CAIRN_BUF_INIT;
	scan_state scan = {NULL, 0, false};
	cairn_node *root = NULL, *again = NULL, *from_cbor = NULL;
	const cairn_node *links;
	cairn_arena *arena;
	int rc, src;

	if (cairn_arena_new(&arena))
		return 0;
	rc = cairn_dagpb_decode(&root, arena, data, size);
	if (rc) {
		/* Malformed input is reported as such, with the offset. */
		CHECK(rc == CAIRN_ECORRUPT && root == NULL);
		CHECK(!strncmp(cairn_error_last(), "dag-pb: at byte ", 16));
		/* The scanner validates exactly as decoding does. */
		CHECK(cairn_ipld__dagpb_links(data, size, on_link, &scan) == CAIRN_ECORRUPT);
		cairn_arena_free(arena);
		return 0;
	}

	CHECK(root->kind == CAIRN_KIND_MAP);
	links = cairn_node_map_get(root, "Links");
	CHECK(links && links->kind == CAIRN_KIND_LIST);
	scan.links = links;
	CHECK(cairn_ipld__dagpb_links(data, size, on_link, &scan) == 0);
	CHECK(!scan.mismatch && scan.seen == links->v.list.len);

	/* Every decoded tree is a valid form except for link order, which
	 * the decoder keeps as it found it and the encoder refuses unsorted. */
	rc = cairn_dagpb_encode(&enc, root);
	CHECK(links_sorted(links) ? rc == 0 : rc == CAIRN_EINVAL);
	if (rc == 0) {
		/* The encoding differs from the input only where the input
		 * used longer varints than needed, so it is never longer,
		 * and as long only when it is the same. */
		CHECK(enc.len <= size);
		CHECK(enc.len < size || !memcmp(enc.data, data, size));
		CHECK(cairn_dagpb_decode(&again, arena, enc.data, enc.len) == 0);
		CHECK(cairn_node_equal(root, again));
		CHECK(cairn_dagpb_encode(&enc2, again) == 0);
		CHECK(enc2.len == enc.len && (!enc.len || !memcmp(enc.data, enc2.data, enc.len)));
	}

	/* The same tree through DAG-CBOR comes back equal: the decoder builds
	 * maps in the order DAG-CBOR keeps. */
	src = cairn_dagcbor_encode(&cbor, root);
	CHECK(src == 0);
	CHECK(cairn_dagcbor_decode(&from_cbor, arena, cbor.data, cbor.len) == 0);
	CHECK(cairn_node_equal(root, from_cbor));

	cairn_buf_free(&enc);
	cairn_buf_free(&enc2);
	cairn_buf_free(&cbor);
	cairn_arena_free(arena);
	return 0;
}
