/* fuzz/unixfs_data.c: the UnixFS Data message decoder against its encoder:
 * whatever decodes must encode, decode again to the same fields, and encode
 * again to the same bytes (the encoder's form is canonical); any input that
 * breaks this aborts. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

static bool same(const cairn_unixfs_data *a, const cairn_unixfs_data *b)
{
	if (a->type != b->type || a->has_data != b->has_data || a->data_len != b->data_len ||
	    (a->data_len && memcmp(a->data, b->data, a->data_len)) ||
	    a->has_filesize != b->has_filesize || a->filesize != b->filesize ||
	    a->nblocksizes != b->nblocksizes ||
	    (a->nblocksizes &&
	     memcmp(a->blocksizes, b->blocksizes, a->nblocksizes * sizeof(*a->blocksizes))) ||
	    a->has_hash_type != b->has_hash_type || a->hash_type != b->hash_type ||
	    a->has_fanout != b->has_fanout || a->fanout != b->fanout ||
	    a->has_mode != b->has_mode || a->mode != b->mode ||
	    a->has_mtime != b->has_mtime || a->mtime_secs != b->mtime_secs ||
	    a->mtime_nsecs != b->mtime_nsecs)
		return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_buf enc = CAIRN_BUF_INIT, enc2 = CAIRN_BUF_INIT;
	cairn_unixfs_data d, again;
	cairn_arena *arena;
	int rc;

	if (cairn_arena_new(&arena))
		return 0;
	rc = cairn_unixfs_data_decode(&d, arena, data, size);
	/* Refusals are CAIRN_ECORRUPT (or out of memory), never anything else. */
	CHECK(rc == 0 || rc == CAIRN_ECORRUPT || rc == CAIRN_ENOMEM);
	if (rc == 0) {
		CHECK(d.type <= CAIRN_UNIXFS_HAMT_SHARD);
		CHECK(!d.has_data || (d.data >= data && d.data + d.data_len <= data + size));
		rc = cairn_unixfs_data_encode(&enc, &d);
		CHECK(rc == 0 || rc == CAIRN_ENOMEM);
		if (rc == 0) {
			rc = cairn_unixfs_data_decode(&again, arena, enc.data, enc.len);
			CHECK(rc == 0 || rc == CAIRN_ENOMEM);
			if (rc == 0) {
				CHECK(same(&d, &again));
				CHECK(cairn_unixfs_data_encode(&enc2, &again) == 0 || enc2.err);
				CHECK(enc2.err || (enc2.len == enc.len &&
						   !memcmp(enc2.data, enc.data, enc.len)));
			}
		}
	}
	cairn_buf_free(&enc);
	cairn_buf_free(&enc2);
	cairn_arena_free(arena);
	return 0;
}
