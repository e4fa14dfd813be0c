/* fuzz/adt_common.h: what the AMT and HAMT targets share: CHECK, and a store
 * fed from the input that answers every read with its next block.
 *
 * Input after the settings byte: blocks, each a 2-byte big-endian length and
 * its bytes; the first is the root. Whatever CID is asked for, the store
 * gives the next block in turn, so the fuzzer reaches children without
 * having to forge hashes. Included once, by one target's .c file.
 */
#ifndef CAIRN_FUZZ_ADT_COMMON_H
#define CAIRN_FUZZ_ADT_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

#define MAX_BLOCKS 64

typedef struct {
	cairn_store base;
	const uint8_t *block[MAX_BLOCKS];
	size_t len[MAX_BLOCKS], n, next;
} feed_store;

static int feed_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	feed_store *fs = (feed_store *)s;
	size_t k;

	(void)cid;
	if (!fs->n)
		return cairn_error_set(CAIRN_ENOTFOUND, "fuzz store: empty");
	k = fs->next++ % fs->n;
	cairn_buf_clear(out);
	return cairn_buf_append(out, fs->block[k], fs->len[k]);
}

/* Writes (set, flush) are dropped: the feed stays the input. */
static int feed_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	(void)s;
	(void)cid;
	(void)data;
	(void)len;
	return 0;
}

static void feed_free(cairn_store *s)
{
	(void)s;
}

static const cairn_store_ops feed_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "fuzz",
	.get = feed_get,
	.put = feed_put,
	.free = feed_free,
};

/* A change from a diff: a value before unless it was added, one after
 * unless it was removed. */
static inline void check_change(cairn_adt_change_type type, const uint8_t *before,
				const uint8_t *after)
{
	CHECK((before != NULL) == (type != CAIRN_ADT_ADD));
	CHECK((after != NULL) == (type != CAIRN_ADT_REMOVE));
}

/* Fills `fs` with the blocks of data[1..size) (size >= 1; a length past the
 * end is cut to what remains, past MAX_BLOCKS the rest is ignored) and sets
 * `root` to a CID for the loads to ask for: any will do, the store ignores
 * it. The blocks point into `data`. */
static inline void feed_init(feed_store *fs, cairn_cid *root, const uint8_t *data, size_t size)
{
	size_t off = 1;

	memset(fs, 0, sizeof(*fs));
	fs->base.ops = &feed_ops;
	while (off + 2 <= size && fs->n < MAX_BLOCKS) {
		size_t n = (size_t)data[off] << 8 | data[off + 1];

		off += 2;
		if (n > size - off)
			n = size - off;
		fs->block[fs->n] = data + off;
		fs->len[fs->n++] = n;
		off += n;
	}
	cairn_cid_compute(root, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_BLAKE2B_256, data, 1);
}

#endif
