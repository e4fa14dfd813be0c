/* mkfixture.c: writes the CAR the `cairn adt` golden cases read (two AMTs a
 * diff apart, a legacy AMT, two HAMTs), and prints the roots. Run by hand:
 *   build/tests/adt_mkfixture tests/cli/cases/adt-amt/state.car */
#include <stdio.h>
#include <string.h>

#include "adt/adt_test.h"

static int copy_block(const cairn_cid *cid, void *payload)
{
	cairn_store **pair = payload;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_store_get(pair[0], &b, cid);

	if (!rc)
		rc = cairn_store_put(pair[1], cid, b.data, b.len);
	cairn_buf_free(&b);
	return rc;
}

static int die(const char *what)
{
	fprintf(stderr, "mkfixture: %s: %s\n", what, cairn_error_last());
	return 1;
}

static int amt_bytes(cairn_amt *a, uint64_t i, const char *s)
{
	uint8_t v[64];

	return cairn_amt_set(a, NULL, i, v, cbor_bytes(v, s, strlen(s)));
}

int main(int argc, char **argv)
{
	cairn_amt_options legacy = {3, CAIRN_AMT_LEGACY, CAIRN_MH_BLAKE2B_256};
	cairn_carrw_options co = CAIRN_CARRW_OPTIONS_INIT;
	tstore *ts = ts_new();
	cairn_amt *a, *l;
	cairn_hamt *h;
	cairn_cid roots[5];
	cairn_store *rw, *pair[2];
	/* values: a string, an integer, a map with a link (the AMT's root),
	 * a list; the address 00e807 is f01000 */
	static const uint8_t v_int[] = {0x19, 0x03, 0xe8};
	static const uint8_t v_map[] = {0xa2, 0x64, 'c', 'o', 'd', 'e', 0x63, 'a', 'c', 't',
					0x65, 'n', 'o', 'n', 'c', 'e', 0x07};
	static const uint8_t v_list[] = {0x83, 0x01, 0x02, 0xf6};

	if (argc != 2) {
		fprintf(stderr, "usage: adt_mkfixture OUT.car\n");
		return 2;
	}
	/* roots[0]: vector A7; roots[1]: 2 deleted, 11 changed, 100 and 600 added */
	if (cairn_amt_new(&a, &ts->base, NULL) || amt_bytes(a, 2, "foo") || amt_bytes(a, 11, "bar") ||
	    amt_bytes(a, 79, "baz") || cairn_amt_flush(&roots[0], a))
		return die("amt");
	if (cairn_amt_delete(a, 2) || amt_bytes(a, 11, "BAR") || amt_bytes(a, 100, "new") ||
	    cairn_amt_set(a, NULL, 600, v_list, sizeof(v_list)) || cairn_amt_flush(&roots[1], a))
		return die("amt 2");
	/* roots[2]: vector A6, legacy */
	if (cairn_amt_new(&l, &ts->base, &legacy) || amt_bytes(l, 2, "foo") ||
	    cairn_amt_flush(&roots[2], l))
		return die("legacy amt");
	/* roots[3], roots[4]: a HAMT before and after */
	if (cairn_hamt_new(&h, &ts->base, NULL) ||
	    cairn_hamt_set(h, NULL, (const uint8_t *)"\x00\xe8\x07", 3, v_map, sizeof(v_map)) ||
	    cairn_hamt_set(h, NULL, (const uint8_t *)"alice", 5, v_int, sizeof(v_int)) ||
	    cairn_hamt_set(h, NULL, (const uint8_t *)"bob", 3, (const uint8_t *)"\x02", 1) ||
	    cairn_hamt_flush(&roots[3], h))
		return die("hamt");
	if (cairn_hamt_delete(h, (const uint8_t *)"bob", 3) ||
	    cairn_hamt_set(h, NULL, (const uint8_t *)"alice", 5, (const uint8_t *)"\x03", 1) ||
	    cairn_hamt_set(h, NULL, (const uint8_t *)"carol", 5, v_list, sizeof(v_list)) ||
	    cairn_hamt_flush(&roots[4], h))
		return die("hamt 2");
	co.sync = CAIRN_SYNC_NONE;
	co.root_room = 512;
	if (cairn_store_carrw_open(&rw, NULL, argv[1], roots, 5, &co))
		return die(argv[1]);
	pair[0] = &ts->base;
	pair[1] = rw;
	for (int k = 0; k < 5; k++)
		if (cairn_store_walk(&ts->base, &roots[k], copy_block, pair))
			return die("walk");
	if (cairn_store_carrw_finalize(rw))
		return die("finalize");
	cairn_store_free(rw);
	for (int k = 0; k < 5; k++)
		printf("%s\n", cid_str(&roots[k]));
	cairn_amt_free(a);
	cairn_amt_free(l);
	cairn_hamt_free(h);
	ts_free(&ts->base);
	return 0;
}
