/* gen_chain.c: writes a CARv2 (with its index) holding a Filecoin-shaped
 * chain from genesis (tests/export/chaingen.c) and prints its head.
 *
 *   gen_chain OUT.car EPOCHS [SEED]
 *
 * Prints "CID[,CID...] HEIGHT TIPSETS HEADERS MESSAGES NULLS": the head
 * tipset's key, its height, and what was made. The CAR's roots are the
 * head's blocks.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cairn.h"
#include "chaingen.h"

int main(int argc, char **argv)
{
	cairn_carrw_options co = CAIRN_CARRW_OPTIONS_INIT;
	chaingen_options o = CHAINGEN_OPTIONS_INIT;
	chaingen_result res;
	cairn_carrw_resume resume;
	cairn_store *store = NULL;
	char str[CAIRN_CID_MAX_STRING];
	int rc;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: gen_chain OUT.car EPOCHS [SEED]\n");
		return 2;
	}
	o.epochs = strtoll(argv[2], NULL, 10);
	o.seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
	co.sync = CAIRN_SYNC_NONE;
	remove(argv[1]);
	if ((rc = cairn_store_carrw_open(&store, &resume, argv[1], NULL, 0, &co)) ||
	    (rc = chaingen_run(&res, store, &o)) ||
	    (rc = cairn_store_carrw_set_roots(store, res.head, res.nhead)) ||
	    (rc = cairn_store_carrw_finalize(store))) {
		fprintf(stderr, "gen_chain: %s\n", cairn_error_last());
		cairn_store_free(store);
		return 1;
	}
	for (size_t i = 0; i < res.nhead; i++) {
		cairn_cid_to_string(str, &res.head[i]);
		printf("%s%s", i ? "," : "", str);
	}
	printf(" %lld %llu %llu %llu %llu\n", (long long)res.height,
	       (unsigned long long)res.tipsets, (unsigned long long)res.headers,
	       (unsigned long long)res.messages, (unsigned long long)res.nulls);
	cairn_store_free(store);
	return 0;
}
