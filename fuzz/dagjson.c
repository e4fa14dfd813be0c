/* fuzz/dagjson.c: the DAG-JSON decoder and its two encoders against each other;
 * any input that decodes but does not come back the same through them aborts. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

static bool same_bytes(const cairn_buf *a, const cairn_buf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_buf enc = CAIRN_BUF_INIT, enc2 = CAIRN_BUF_INIT, pretty = CAIRN_BUF_INIT;
	cairn_buf cbor = CAIRN_BUF_INIT;
	cairn_node *root = NULL, *again = NULL, *from_pretty = NULL, *from_cbor = NULL;
	cairn_arena *arena;
	int rc;

	if (cairn_arena_new(&arena))
		return 0;
	rc = cairn_dagjson_decode(&root, arena, data, size);
	if (rc) {
		/* Malformed input is reported as such, with the offset. */
		CHECK(rc == CAIRN_ECORRUPT || rc == CAIRN_ETOOBIG);
		CHECK(root == NULL);
		CHECK(!strncmp(cairn_error_last(), "dag-json: at byte ", 18));
		cairn_arena_free(arena);
		return 0;
	}

	/* Whatever decodes is representable: the decoder refuses the values
	 * the encoder would (a lone "/" key, bad UTF-8, duplicate keys). */
	CHECK(cairn_dagjson_encode(&enc, root) == 0);
	CHECK(cairn_dagjson_decode(&again, arena, enc.data, enc.len) == 0);
	CHECK(cairn_node_equal(root, again));
	CHECK(cairn_dagjson_encode(&enc2, again) == 0);
	CHECK(same_bytes(&enc, &enc2));

	CHECK(cairn_dagjson_encode_pretty(&pretty, root) == 0);
	CHECK(pretty.len && pretty.data[pretty.len - 1] == '\n');
	CHECK(cairn_dagjson_decode(&from_pretty, arena, pretty.data, pretty.len) == 0);
	CHECK(cairn_node_equal(root, from_pretty));

	/* Through DAG-CBOR and back: the same canonical bytes, though
	 * DAG-CBOR orders the keys of maps differently. */
	CHECK(cairn_dagcbor_encode(&cbor, root) == 0);
	CHECK(cairn_dagcbor_decode(&from_cbor, arena, cbor.data, cbor.len) == 0);
	cairn_buf_clear(&enc2);
	CHECK(cairn_dagjson_encode(&enc2, from_cbor) == 0);
	CHECK(same_bytes(&enc, &enc2));

	cairn_buf_free(&enc);
	cairn_buf_free(&enc2);
	cairn_buf_free(&pretty);
	cairn_buf_free(&cbor);
	cairn_arena_free(arena);
	return 0;
}
