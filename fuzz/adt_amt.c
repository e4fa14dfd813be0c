/* fuzz/adt_amt.c: AMT nodes from outside: a malformed root or child gives an
 * error, never a crash, through load, get, walks, diff, changes and flush.
 *
 * Input: one byte of settings (bit width, format), then blocks, each a
 * 2-byte big-endian length and its bytes; the first is the root. The store
 * answers every read with the next block in turn, whatever CID is asked
 * for, so the fuzzer reaches children without having to forge hashes.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

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

static int count_fn(uint64_t i, const uint8_t *v, size_t len, void *payload)
{
	uint64_t *last = payload;

	/* Ascending order, and every value one CBOR item. */
	CHECK(len > 0 && v != NULL);
	CHECK(*last == UINT64_MAX || i > *last);
	*last = i;
	return 0;
}

static int change_fn(const cairn_amt_change *ch, void *payload)
{
	(void)payload;
	CHECK(ch->type == CAIRN_ADT_ADD || ch->type == CAIRN_ADT_REMOVE || ch->type == CAIRN_ADT_MODIFY);
	CHECK((ch->before != NULL) == (ch->type != CAIRN_ADT_ADD));
	CHECK((ch->after != NULL) == (ch->type != CAIRN_ADT_REMOVE));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned widths[] = {3, 5, 6, 1, 2, 4, 8, 0};
	feed_store fs = {{&feed_ops}, {0}, {0}, 0, 0};
	cairn_amt_options o = CAIRN_AMT_OPTIONS_INIT;
	cairn_amt *a = NULL, *b = NULL, *e = NULL;
	uint64_t last = UINT64_MAX, first;
	const uint8_t *v;
	cairn_cid root, out;
	size_t off = 1, len;
	int rc;

	if (size < 1)
		return 0;
	o.bit_width = widths[data[0] & 7];
	o.format = (data[0] >> 3) % 3 == 0 ? CAIRN_AMT_DETECT
		   : (data[0] >> 3) % 3 == 1 ? CAIRN_AMT_V3 : CAIRN_AMT_LEGACY;
	if (o.format == CAIRN_AMT_LEGACY && o.bit_width && o.bit_width != 3)
		o.bit_width = 3;
	while (off + 2 <= size && fs.n < MAX_BLOCKS) {
		size_t n = (size_t)data[off] << 8 | data[off + 1];

		off += 2;
		if (n > size - off)
			n = size - off;
		fs.block[fs.n] = data + off;
		fs.len[fs.n++] = n;
		off += n;
	}
	cairn_cid_compute(&root, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_BLAKE2B_256, data, 1);
	rc = cairn_amt_load(&a, &fs.base, &root, &o);
	if (rc) {
		CHECK(a == NULL);
		CHECK(rc == CAIRN_ECORRUPT || rc == CAIRN_EINVAL || rc == CAIRN_ENOTFOUND ||
		      rc == CAIRN_ETOOBIG || rc == CAIRN_ENOMEM);
		return 0;
	}
	/* Walk it all: children come from the feed. */
	rc = cairn_amt_for_each(a, 0, count_fn, &last);
	CHECK(rc <= 0);
	rc = cairn_amt_first_index(&first, a);
	CHECK(rc <= 0);
	for (unsigned k = 0; k < 8; k++) {
		uint64_t i = k < 4 ? k : (uint64_t)1 << (k * 8);

		rc = cairn_amt_get(&v, &len, a, i);
		CHECK(rc <= 0);
		CHECK(rc || (v && len));
	}
	/* A diff with an empty AMT, and with itself loaded again. */
	fs.next = 0;
	if (!cairn_amt_new(&e, &fs.base, &(cairn_amt_options){cairn_amt_bit_width(a),
			   cairn_amt_get_format(a), CAIRN_MH_BLAKE2B_256})) {
		CHECK(cairn_amt_diff(e, a, change_fn, NULL) <= 0);
		CHECK(cairn_amt_diff(a, e, change_fn, NULL) <= 0);
	}
	fs.next = 0;
	if (!cairn_amt_load(&b, &fs.base, &root, &o)) {
		fs.next = 1;
		CHECK(cairn_amt_diff(a, b, change_fn, NULL) <= 0);
	}
	/* Changes over whatever was read, then a flush. */
	rc = cairn_amt_set(a, NULL, 5, (const uint8_t *)"\x05", 1);
	CHECK(rc <= 0);
	rc = cairn_amt_delete(a, 1);
	CHECK(rc <= 0);
	rc = cairn_amt_delete(a, 5);
	CHECK(rc <= 0);
	rc = cairn_amt_flush(&out, a);
	CHECK(rc <= 0);
	cairn_amt_evict(a);
	cairn_amt_free(a);
	cairn_amt_free(b);
	cairn_amt_free(e);
	return 0;
}
