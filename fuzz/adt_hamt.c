/* fuzz/adt_hamt.c: HAMT nodes from outside: a malformed root or child gives
 * an error, never a crash, through load, get, walks, diff, changes and flush.
 *
 * Input: one byte of settings (the bit width), then blocks, each a 2-byte
 * big-endian length and its bytes; the first is the root. The store answers
 * every read with the next block in turn, whatever CID is asked for.
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

typedef struct {
	const uint8_t *key;
	size_t klen;
	bool have;
} first_pair;

static int pair_fn(const uint8_t *k, size_t klen, const uint8_t *v, size_t len, void *payload)
{
	first_pair *f = payload;

	CHECK(v && len > 0);
	CHECK(k || !klen);
	if (!f->have) {
		f->have = true;
		f->klen = klen;
	}
	return 0;
}

static int change_fn(const cairn_hamt_change *ch, void *payload)
{
	(void)payload;
	CHECK((ch->before != NULL) == (ch->type != CAIRN_ADT_ADD));
	CHECK((ch->after != NULL) == (ch->type != CAIRN_ADT_REMOVE));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned widths[] = {5, 8, 1, 2, 3, 4, 6, 7};
	feed_store fs = {{&feed_ops}, {0}, {0}, 0, 0};
	cairn_hamt_options o = CAIRN_HAMT_OPTIONS_INIT;
	cairn_hamt *h = NULL, *g = NULL, *e = NULL;
	first_pair fp = {NULL, 0, false};
	const uint8_t *v;
	cairn_cid root, out;
	size_t off = 1, len;
	int rc;

	if (size < 1)
		return 0;
	o.bit_width = widths[data[0] & 7];
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
	rc = cairn_hamt_load(&h, &fs.base, &root, &o);
	if (rc) {
		CHECK(h == NULL);
		CHECK(rc == CAIRN_ECORRUPT || rc == CAIRN_ENOTFOUND || rc == CAIRN_ETOOBIG ||
		      rc == CAIRN_ENOMEM);
		return 0;
	}
	CHECK(cairn_hamt_for_each(h, pair_fn, &fp) <= 0);
	for (unsigned k = 0; k < 6; k++) {
		static const char *const keys[] = {"", "a", "foo", "0", "\x00\xe8\x07", "key-1"};

		rc = cairn_hamt_get(&v, &len, h, (const uint8_t *)keys[k], strlen(keys[k]));
		CHECK(rc <= 0);
		CHECK(rc || (v && len));
	}
	fs.next = 0;
	if (!cairn_hamt_new(&e, &fs.base, &o)) {
		CHECK(cairn_hamt_diff(e, h, change_fn, NULL) <= 0);
		CHECK(cairn_hamt_diff(h, e, change_fn, NULL) <= 0);
	}
	fs.next = 0;
	if (!cairn_hamt_load(&g, &fs.base, &root, &o)) {
		fs.next = 1;
		CHECK(cairn_hamt_diff(h, g, change_fn, NULL) <= 0);
	}
	for (unsigned k = 0; k < 5; k++) {
		uint8_t key[2] = {(uint8_t)k, 0x42};

		CHECK(cairn_hamt_set(h, NULL, key, 2, (const uint8_t *)"\x01", 1) <= 0);
	}
	for (unsigned k = 0; k < 5; k++) {
		uint8_t key[2] = {(uint8_t)k, 0x42};

		CHECK(cairn_hamt_delete(h, key, 2) <= 0);
	}
	CHECK(cairn_hamt_flush(&out, h) <= 0);
	cairn_hamt_evict(h);
	cairn_hamt_free(h);
	cairn_hamt_free(g);
	cairn_hamt_free(e);
	return 0;
}
