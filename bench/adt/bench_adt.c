/* bench_adt.c: AMT and HAMT rates (sets, flush, gets cold and warm) at
 * Filecoin's shapes, and AMT/HAMT diff time against the number of changes.
 *
 *   bench_adt amt  --n N [--bw 5]            sequential sets of uint(i) at 0..N-1
 *   bench_adt hamt --n N [--bw 5]            keys are ID addresses 00 || uvarint(i)
 *   bench_adt diff --n N --changes K,K,...   an AMT of N, K random values changed
 *   bench_adt hdiff --n N --changes K,...    the same for a HAMT
 * --store mem (a hash table, the default) or lmdb (--dir DIR, no fsync), so the
 * figures are the structure's and not the disk's unless asked. One JSON object
 * per measurement on stdout.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "adt/adt_test.h"

static double secs(uint64_t t0)
{
	return (double)(cairn_time_ns() - t0) / 1e9;
}

static uint64_t maxrss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_maxrss / 1024;
}

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "bench_adt: %s: %s\n", what, cairn_error_last());
	exit(1);
}

static cairn_store *open_store(const char *kind, const char *dir)
{
	cairn_store_lmdb_options lo = CAIRN_STORE_LMDB_OPTIONS_INIT;
	cairn_store *s;

	if (!strcmp(kind, "mem"))
		return &ts_new()->base;
	lo.no_sync = true;
	if (cairn_store_lmdb_open(&s, dir, &lo))
		die(dir);
	return s;
}

static size_t addr_key(uint8_t *k, uint64_t id)
{
	size_t n = 1;

	k[0] = 0; /* an ID address: protocol 0, then the uvarint */
	do {
		k[n++] = (uint8_t)((id & 0x7f) | (id >= 0x80 ? 0x80 : 0));
		id >>= 7;
	} while (id);
	return n;
}

/* ------------------------------------------------------------------ AMT */

static void bench_amt(cairn_store *s, uint64_t n, unsigned bw, uint64_t seed)
{
	cairn_amt_options o = {bw, CAIRN_AMT_V3, CAIRN_MH_BLAKE2B_256};
	cairn_amt *a;
	cairn_cid root;
	uint64_t t, rng = seed, gets = n < 1000000 ? n : 1000000;
	uint8_t v[9];
	double set_s, flush_s, cold_s, warm_s, upd_s, upd_flush_s;

	if (cairn_amt_new(&a, s, &o))
		die("amt");
	t = cairn_time_ns();
	for (uint64_t i = 0; i < n; i++)
		if (cairn_amt_set(a, NULL, i, v, cbor_uint(v, i)))
			die("set");
	set_s = secs(t);
	t = cairn_time_ns();
	if (cairn_amt_flush(&root, a) || cairn_store_flush(s, NULL))
		die("flush");
	flush_s = secs(t);
	cairn_amt_free(a);
	if (cairn_amt_load(&a, s, &root, &o))
		die("load");
	/* cold: every node comes from the store the first time */
	t = cairn_time_ns();
	for (uint64_t k = 0; k < gets; k++) {
		uint64_t i = rng_next(&rng) % n;

		if (cairn_amt_get(NULL, NULL, a, i))
			die("get");
	}
	cold_s = secs(t);
	/* warm: the same number again, now mostly cached */
	t = cairn_time_ns();
	for (uint64_t k = 0; k < gets; k++)
		if (cairn_amt_get(NULL, NULL, a, rng_next(&rng) % n))
			die("get");
	warm_s = secs(t);
	/* updates at random places in a loaded AMT, then their flush */
	cairn_amt_evict(a);
	t = cairn_time_ns();
	for (uint64_t k = 0; k < gets / 10; k++)
		if (cairn_amt_set(a, NULL, rng_next(&rng) % n, v, cbor_uint(v, k)))
			die("update");
	upd_s = secs(t);
	t = cairn_time_ns();
	if (cairn_amt_flush(&root, a) || cairn_store_flush(s, NULL))
		die("flush");
	upd_flush_s = secs(t);
	printf("{\"bench\":\"amt\",\"n\":%" PRIu64 ",\"bw\":%u,\"height\":%u,\"store\":\"%s\","
	       "\"sets_per_s\":%.0f,\"flush_s\":%.3f,\"gets\":%" PRIu64 ",\"cold_gets_per_s\":%.0f,"
	       "\"warm_gets_per_s\":%.0f,\"random_sets_per_s\":%.0f,\"random_flush_s\":%.3f,"
	       "\"maxrss_mib\":%" PRIu64 "}\n",
	       n, bw, cairn_amt_height(a), cairn_store_name(s), (double)n / set_s, flush_s, gets,
	       (double)gets / cold_s, (double)gets / warm_s, (double)(gets / 10) / upd_s, upd_flush_s,
	       maxrss_mib());
	fflush(stdout);
	cairn_amt_free(a);
}

/* ----------------------------------------------------------------- HAMT */

static void bench_hamt(cairn_store *s, uint64_t n, unsigned bw, uint64_t seed)
{
	cairn_hamt_options o = {bw, CAIRN_MH_BLAKE2B_256};
	cairn_hamt *h;
	cairn_cid root;
	uint64_t t, rng = seed, gets = n < 1000000 ? n : 1000000;
	uint8_t k[12], v[9];
	double set_s, flush_s, cold_s, warm_s;

	if (cairn_hamt_new(&h, s, &o))
		die("hamt");
	t = cairn_time_ns();
	for (uint64_t i = 0; i < n; i++)
		if (cairn_hamt_set(h, NULL, k, addr_key(k, 1000 + i), v, cbor_uint(v, i)))
			die("set");
	set_s = secs(t);
	t = cairn_time_ns();
	if (cairn_hamt_flush(&root, h) || cairn_store_flush(s, NULL))
		die("flush");
	flush_s = secs(t);
	cairn_hamt_free(h);
	if (cairn_hamt_load(&h, s, &root, &o))
		die("load");
	t = cairn_time_ns();
	for (uint64_t j = 0; j < gets; j++)
		if (cairn_hamt_get(NULL, NULL, h, k, addr_key(k, 1000 + rng_next(&rng) % n)))
			die("get");
	cold_s = secs(t);
	t = cairn_time_ns();
	for (uint64_t j = 0; j < gets; j++)
		if (cairn_hamt_get(NULL, NULL, h, k, addr_key(k, 1000 + rng_next(&rng) % n)))
			die("get");
	warm_s = secs(t);
	printf("{\"bench\":\"hamt\",\"n\":%" PRIu64 ",\"bw\":%u,\"store\":\"%s\",\"sets_per_s\":%.0f,"
	       "\"flush_s\":%.3f,\"gets\":%" PRIu64 ",\"cold_gets_per_s\":%.0f,"
	       "\"warm_gets_per_s\":%.0f,\"maxrss_mib\":%" PRIu64 "}\n",
	       n, bw, cairn_store_name(s), (double)n / set_s, flush_s, gets, (double)gets / cold_s,
	       (double)gets / warm_s, maxrss_mib());
	fflush(stdout);
	cairn_hamt_free(h);
}

/* ----------------------------------------------------------------- diff */

typedef struct {
	uint64_t n;
} counter;

static int count_amt(const cairn_amt_change *ch, void *payload)
{
	(void)ch;
	((counter *)payload)->n++;
	return 0;
}

static int count_hamt(const cairn_hamt_change *ch, void *payload)
{
	(void)ch;
	((counter *)payload)->n++;
	return 0;
}

/* Counts reads: the store under a thin wrapper. */
typedef struct {
	cairn_store base;
	cairn_store *s;
	uint64_t gets;
} counting;

static int c_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	counting *c = (counting *)s;

	c->gets++;
	return cairn_store_get(c->s, out, cid);
}

static void c_free(cairn_store *s)
{
	(void)s;
}

static const cairn_store_ops counting_ops = {
	.version = CAIRN_STORE_OPS_VERSION, .name = "counting", .get = c_get, .free = c_free,
};

static void bench_diff(cairn_store *s, uint64_t n, unsigned bw, const char *changes, bool hamt,
		       uint64_t seed)
{
	cairn_amt_options ao = {bw, CAIRN_AMT_V3, CAIRN_MH_BLAKE2B_256};
	cairn_hamt_options ho = {bw, CAIRN_MH_BLAKE2B_256};
	counting cs = {{&counting_ops}, s, 0};
	cairn_cid base;
	uint8_t k[12], v[9];
	uint64_t t, rng = seed;
	const char *p = changes;

	/* the base */
	t = cairn_time_ns();
	if (hamt) {
		cairn_hamt *h;

		if (cairn_hamt_new(&h, s, &ho))
			die("hamt");
		for (uint64_t i = 0; i < n; i++)
			if (cairn_hamt_set(h, NULL, k, addr_key(k, 1000 + i), v, cbor_uint(v, i)))
				die("set");
		if (cairn_hamt_flush(&base, h))
			die("flush");
		cairn_hamt_free(h);
	} else {
		cairn_amt *a;

		if (cairn_amt_new(&a, s, &ao))
			die("amt");
		for (uint64_t i = 0; i < n; i++)
			if (cairn_amt_set(a, NULL, i, v, cbor_uint(v, i)))
				die("set");
		if (cairn_amt_flush(&base, a))
			die("flush");
		cairn_amt_free(a);
	}
	if (cairn_store_flush(s, NULL))
		die("store flush");
	fprintf(stderr, "bench_adt: %s base of %" PRIu64 " built in %.1f s\n", hamt ? "hamt" : "amt",
		n, secs(t));
	while (*p) {
		uint64_t want = strtoull(p, (char **)&p, 10), reads;
		counter got = {0};
		cairn_cid cur;
		double dt;

		if (*p == ',')
			p++;
		/* `want` values changed at random places (a third removed,
		 * a third modified, a third added past the end) */
		if (hamt) {
			cairn_hamt *h, *x = NULL, *y = NULL;

			if (cairn_hamt_load(&h, s, &base, &ho))
				die("load");
			for (uint64_t j = 0; j < want; j++) {
				uint64_t r = rng_next(&rng), id = 1000 + r % n;

				if (j % 3 == 0)
					cairn_hamt_delete(h, k, addr_key(k, id));
				else if (j % 3 == 1 && cairn_hamt_set(h, NULL, k, addr_key(k, id), v,
								      cbor_uint(v, r >> 20)))
					die("set");
				else if (j % 3 == 2 && cairn_hamt_set(h, NULL, k, addr_key(k, 1000 + n + j),
								      v, cbor_uint(v, j)))
					die("set");
			}
			if (cairn_hamt_flush(&cur, h) || cairn_store_flush(s, NULL))
				die("flush");
			cairn_hamt_free(h);
			if (cairn_hamt_load(&x, &cs.base, &base, &ho) || cairn_hamt_load(&y, &cs.base, &cur, &ho))
				die("load");
			cs.gets = 0;
			t = cairn_time_ns();
			if (cairn_hamt_diff(x, y, count_hamt, &got))
				die("diff");
			dt = secs(t);
			reads = cs.gets;
			cairn_hamt_free(x);
			cairn_hamt_free(y);
		} else {
			cairn_amt *a, *x = NULL, *y = NULL;

			if (cairn_amt_load(&a, s, &base, &ao))
				die("load");
			for (uint64_t j = 0; j < want; j++) {
				uint64_t r = rng_next(&rng);

				if (j % 3 == 0)
					cairn_amt_delete(a, r % n);
				else if (j % 3 == 1 && cairn_amt_set(a, NULL, r % n, v, cbor_uint(v, r >> 20)))
					die("set");
				else if (j % 3 == 2 && cairn_amt_set(a, NULL, n + j, v, cbor_uint(v, j)))
					die("set");
			}
			if (cairn_amt_flush(&cur, a) || cairn_store_flush(s, NULL))
				die("flush");
			cairn_amt_free(a);
			if (cairn_amt_load(&x, &cs.base, &base, &ao) || cairn_amt_load(&y, &cs.base, &cur, &ao))
				die("load");
			cs.gets = 0;
			t = cairn_time_ns();
			if (cairn_amt_diff(x, y, count_amt, &got))
				die("diff");
			dt = secs(t);
			reads = cs.gets;
			cairn_amt_free(x);
			cairn_amt_free(y);
		}
		printf("{\"bench\":\"%s\",\"n\":%" PRIu64 ",\"bw\":%u,\"store\":\"%s\",\"changed\":%" PRIu64
		       ",\"changes\":%" PRIu64 ",\"diff_s\":%.6f,\"node_reads\":%" PRIu64 "}\n",
		       hamt ? "hamt_diff" : "amt_diff", n, bw, cairn_store_name(s), want, got.n, dt, reads);
		fflush(stdout);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_adt amt|hamt|diff|hdiff --n N [--bw W] [--changes K,K...]\n"
			"                 [--store mem|lmdb] [--dir DIR] [--seed S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode, *kind = "mem", *dir = NULL, *changes = "1,10,100,1000,10000";
	uint64_t n = 1000000, seed = 42;
	unsigned bw = 5;
	cairn_store *s;

	if (argc < 2)
		usage();
	mode = argv[1];
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--n"))
			n = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--bw"))
			bw = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--changes"))
			changes = argv[++i];
		else if (!strcmp(argv[i], "--store"))
			kind = argv[++i];
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[++i];
		else if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[++i], NULL, 10);
		else
			usage();
	}
	if (!n || (strcmp(kind, "mem") && !dir))
		usage();
	s = open_store(kind, dir);
	if (!strcmp(mode, "amt"))
		bench_amt(s, n, bw, seed);
	else if (!strcmp(mode, "hamt"))
		bench_hamt(s, n, bw, seed);
	else if (!strcmp(mode, "diff"))
		bench_diff(s, n, bw, changes, false, seed);
	else if (!strcmp(mode, "hdiff"))
		bench_diff(s, n, bw, changes, true, seed);
	else
		usage();
	cairn_store_free(s);
	return 0;
}
