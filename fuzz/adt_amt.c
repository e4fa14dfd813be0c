/* fuzz/adt_amt.c: AMT nodes from outside: a malformed root or child gives an
 * error, never a crash, through load, get, walks, diff, changes and flush.
 *
 * Input: one byte of settings (bit width, format), then the blocks the
 * store feeds, as adt_common.h reads them.
 */
#include "adt_common.h"

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
	check_change(ch->type, ch->before, ch->after);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned widths[] = {3, 5, 6, 1, 2, 4, 8, 0};
	cairn_amt_options o = CAIRN_AMT_OPTIONS_INIT;
	cairn_amt *a = NULL, *b = NULL, *e = NULL;
	uint64_t last = UINT64_MAX, first;
	feed_store fs;
	const uint8_t *v;
	cairn_cid root, out;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	o.bit_width = widths[data[0] & 7];
	o.format = (data[0] >> 3) % 3 == 0 ? CAIRN_AMT_DETECT
		   : (data[0] >> 3) % 3 == 1 ? CAIRN_AMT_V3 : CAIRN_AMT_LEGACY;
	if (o.format == CAIRN_AMT_LEGACY && o.bit_width && o.bit_width != 3)
		o.bit_width = 3;
	feed_init(&fs, &root, data, size);
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
