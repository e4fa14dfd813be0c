/* fuzz/adt_hamt.c: HAMT nodes from outside: a malformed root or child gives
 * an error, never a crash, through load, get, walks, diff, changes and flush.
 *
 * Input: one byte of settings (the bit width), then the blocks the store
 * feeds, as adt_common.h reads them.
 */
#include "adt_common.h"

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
	check_change(ch->type, ch->before, ch->after);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned widths[] = {5, 8, 1, 2, 3, 4, 6, 7};
	cairn_hamt_options o = CAIRN_HAMT_OPTIONS_INIT;
	cairn_hamt *h = NULL, *g = NULL, *e = NULL;
	first_pair fp = {NULL, 0, false};
	feed_store fs;
	const uint8_t *v;
	cairn_cid root, out;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	o.bit_width = widths[data[0] & 7];
	feed_init(&fs, &root, data, size);
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
