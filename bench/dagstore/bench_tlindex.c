/* bench_tlindex.c: the DAG store's top-level index measured: insertion rates,
 * a large build, bytes per entry, lookups warm and cold, and an LMDB
 * prototype of the same map to compare with.
 *
 * usage: bench_tlindex [options] MODE
 *   insert   add --total entries in shards of --shard-size, --batch shards per
 *            add (add_batch), fsync on, merges in the background; prints the
 *            rate of the adds (each durable when it returns) and the rate
 *            with a final compact (everything merged into one run).
 *   build    the same into --dir, without the final compact, and leave it
 *            there (for lookup): the build rate with the runs it leaves.
 *   settle   opens --dir and runs the merge policy until it is done (what
 *            the merge thread does after a bulk load); time and runs left.
 *   compact  opens --dir, merges every run into one; time and bytes/entry.
 *   lookup   opens --dir (made by build with the same --total and
 *            --shard-size) and looks up --count random present blocks (and
 *            as many absent ones) on --threads threads; prints lookups/s and
 *            p50/p99/p99.9 latency. --cold drops the page cache first (root)
 *            and times the open too.
 *   lmdb     the LMDB prototype: a dupsort/dupfixed database keyed by the same
 *            8-byte key, values {shard, size, offset}; each shard's entries
 *            sorted and put in one write transaction per add (the same
 *            batches); rate, bytes per entry, warm lookups, and the removal
 *            of one shard (a delete per entry).
 *
 * Blocks are synthetic: block b's multihash is sha2-256-shaped with a digest
 * drawn from b (nothing is hashed: the index hashes the multihash itself).
 * Shard s holds blocks s*shard_size .. (s+1)*shard_size - 1, so a present
 * block's shard and offset are known for checking every lookup.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"
#include "dagstore/tlindex.h"

#define MH_LEN 34

static struct {
	const char *dir;
	uint64_t total, shard_size, batch, count;
	unsigned threads;
	bool cold, keep, no_sync;
	unsigned ratio;
} cfg = {NULL, 10000000, 10000, 10, 1000000, 1, false, false, false, 1};

static double now_s(void)
{
	return (double)cairn_time_ns() / 1e9;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void block_mh(uint8_t mh[MH_LEN], uint64_t b)
{
	mh[0] = 0x12;
	mh[1] = 0x20;
	for (int i = 0; i < 4; i++) {
		uint64_t v = mix(b * 4 + (uint64_t)i);

		memcpy(mh + 2 + 8 * i, &v, 8);
	}
}

static uint64_t block_offset(uint64_t b)
{
	return (b % cfg.shard_size) * 262197 + 59;
}

static uint32_t block_size(uint64_t b)
{
	return 1024 + (uint32_t)(mix(b) % 262144);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static uint64_t dir_bytes(const char *dir)
{
	char cmd[PATH_MAX + 32];
	FILE *f;
	unsigned long long kb = 0;

	/* Allocated bytes, as du counts them. */
	snprintf(cmd, sizeof(cmd), "du -sk '%s'", dir);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%llu", &kb) != 1)
			kb = 0;
		pclose(f);
	}
	return (uint64_t)kb * 1024;
}

static void drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0 || write(fd, "3\n", 2) != 2) {
		fprintf(stderr, "bench_tlindex: cannot drop the page cache (needs root): %s\n",
			strerror(errno));
		exit(1);
	}
	close(fd);
}

static long peak_rss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

/* ------------------------------------------------------------- entries */

typedef struct {
	cairn_tlindex_entry *e;
	uint8_t (*mh)[MH_LEN];
	size_t n;
} shard_buf;

static void shard_fill(shard_buf *s, uint64_t shard)
{
	for (size_t i = 0; i < cfg.shard_size; i++) {
		uint64_t b = shard * cfg.shard_size + i;

		block_mh(s->mh[i], b);
		s->e[i].mh = s->mh[i];
		s->e[i].mh_len = MH_LEN;
		s->e[i].offset = block_offset(b);
		s->e[i].size = block_size(b);
	}
	s->n = cfg.shard_size;
}

/* Adds every shard; returns seconds spent in the adds. */
static double add_all(cairn_tlindex *idx, uint64_t nshards)
{
	shard_buf *bufs = calloc(cfg.batch, sizeof(*bufs));
	cairn_tlindex_shard *sh = calloc(cfg.batch, sizeof(*sh));
	double spent = 0;

	for (size_t i = 0; i < cfg.batch; i++) {
		bufs[i].e = malloc(cfg.shard_size * sizeof(*bufs[i].e));
		bufs[i].mh = malloc(cfg.shard_size * MH_LEN);
		if (!bufs[i].e || !bufs[i].mh) {
			fprintf(stderr, "bench_tlindex: out of memory\n");
			exit(1);
		}
	}
	for (uint64_t s = 0; s < nshards; s += cfg.batch) {
		size_t nb = nshards - s < cfg.batch ? (size_t)(nshards - s) : (size_t)cfg.batch;
		double t0;

		for (size_t i = 0; i < nb; i++) {
			shard_fill(&bufs[i], s + i);
			sh[i] = (cairn_tlindex_shard){(uint32_t)(s + i), bufs[i].e, bufs[i].n};
		}
		t0 = now_s();
		if (cairn_tlindex_add_batch(idx, sh, nb)) {
			fprintf(stderr, "bench_tlindex: add: %s\n", cairn_error_last());
			exit(1);
		}
		spent += now_s() - t0;
	}
	for (size_t i = 0; i < cfg.batch; i++) {
		free(bufs[i].e);
		free(bufs[i].mh);
	}
	free(bufs);
	free(sh);
	return spent;
}

static cairn_tlindex *open_index(bool fresh)
{
	cairn_tlindex_options o = CAIRN_TLINDEX_OPTIONS_INIT;
	cairn_tlindex *idx;

	if (fresh)
		nftw(cfg.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	o.no_sync = cfg.no_sync;
	o.merge_ratio = cfg.ratio;
	if (cairn_tlindex_open(&idx, cfg.dir, &o)) {
		fprintf(stderr, "bench_tlindex: open %s: %s\n", cfg.dir, cairn_error_last());
		exit(1);
	}
	return idx;
}

static void print_stats(const char *when, cairn_tlindex *idx)
{
	cairn_tlindex_stats st;

	cairn_tlindex_stats_get(&st, idx);
	printf("%s: runs %" PRIu64 ", records %" PRIu64 ", bytes %" PRIu64 " (%.2f B/entry), "
	       "merges %" PRIu64 ", merged records %" PRIu64 " (write amplification %.2f)\n",
	       when, st.runs, st.records, st.bytes, (double)st.bytes / (double)st.entries,
	       st.merges, st.merged_records,
	       (double)(st.merged_records + st.entries) / (double)st.entries);
}

static int mode_build(void)
{
	uint64_t nshards = (cfg.total + cfg.shard_size - 1) / cfg.shard_size;
	uint64_t n = nshards * cfg.shard_size;
	cairn_tlindex *idx = open_index(true);
	double t0 = now_s(), adds, all;

	adds = add_all(idx, nshards);
	all = now_s() - t0;
	print_stats("after adds", idx);
	t0 = now_s();
	cairn_tlindex_close(idx); /* waits for the merge under way, if any */
	printf("RESULT build shard_size=%" PRIu64 " batch=%" PRIu64 " entries=%" PRIu64
	       " adds_s=%.3f add_rate=%.0f close_s=%.3f rate_with_close=%.0f peak_rss_mib=%ld\n",
	       cfg.shard_size, cfg.batch, n, adds, (double)n / adds, now_s() - t0,
	       (double)n / (all + now_s() - t0), peak_rss_mib());
	return 0;
}

static int mode_settle(void)
{
	cairn_tlindex *idx = open_index(false);
	cairn_tlindex_stats st;
	double t0 = now_s(), secs;

	print_stats("before settle", idx);
	if (cairn_tlindex_merge(idx)) {
		fprintf(stderr, "bench_tlindex: merge: %s\n", cairn_error_last());
		return 1;
	}
	secs = now_s() - t0;
	print_stats("after settle", idx);
	cairn_tlindex_stats_get(&st, idx);
	printf("RESULT settle entries=%" PRIu64 " secs=%.3f runs=%" PRIu64 "\n", st.entries, secs,
	       st.runs);
	cairn_tlindex_close(idx);
	return 0;
}

static int mode_compact(void)
{
	cairn_tlindex *idx = open_index(false);
	cairn_tlindex_stats st;
	double t0 = now_s(), secs;

	print_stats("before compact", idx);
	if (cairn_tlindex_compact(idx)) {
		fprintf(stderr, "bench_tlindex: compact: %s\n", cairn_error_last());
		return 1;
	}
	secs = now_s() - t0;
	print_stats("after compact", idx);
	cairn_tlindex_stats_get(&st, idx);
	printf("RESULT compact entries=%" PRIu64 " secs=%.3f rate=%.0f bytes_per_entry=%.2f"
	       " du_bytes_per_entry=%.2f peak_rss_mib=%ld\n", st.entries, secs,
	       (double)st.entries / secs, (double)st.bytes / (double)st.entries,
	       (double)dir_bytes(cfg.dir) / (double)st.entries, peak_rss_mib());
	cairn_tlindex_close(idx);
	return 0;
}

static int mode_insert(bool keep)
{
	uint64_t nshards = (cfg.total + cfg.shard_size - 1) / cfg.shard_size;
	uint64_t n = nshards * cfg.shard_size;
	cairn_tlindex *idx = open_index(true);
	double t0 = now_s(), adds, all, tc;

	adds = add_all(idx, nshards);
	all = now_s() - t0;
	print_stats("after adds", idx);
	tc = now_s();
	if (cairn_tlindex_compact(idx)) {
		fprintf(stderr, "bench_tlindex: compact: %s\n", cairn_error_last());
		return 1;
	}
	tc = now_s() - tc;
	print_stats("after compact", idx);
	printf("RESULT insert shard_size=%" PRIu64 " batch=%" PRIu64 " entries=%" PRIu64
	       " adds_s=%.3f add_rate=%.0f wall_s=%.3f wall_rate=%.0f compact_s=%.3f settled_rate=%.0f"
	       " du_bytes_per_entry=%.2f peak_rss_mib=%ld\n",
	       cfg.shard_size, cfg.batch, n, adds, (double)n / adds, all, (double)n / all, tc,
	       (double)n / (all + tc), (double)dir_bytes(cfg.dir) / (double)n, peak_rss_mib());
	cairn_tlindex_close(idx);
	if (!keep)
		nftw(cfg.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* --------------------------------------------------------------- lookups */

typedef struct {
	cairn_tlindex *idx;
	uint64_t seed, count, nblocks;
	uint64_t *lat;           /* ns per lookup, present then absent */
	uint64_t errors;
	double secs;
} look_arg;

static void *look_main(void *p)
{
	look_arg *a = p;
	cairn_tlindex_hit hits[8];
	uint8_t mh[MH_LEN];
	uint64_t x = a->seed;
	double t0 = now_s();

	for (uint64_t i = 0; i < 2 * a->count; i++) {
		bool present = i < a->count;
		uint64_t b = mix(x++) % a->nblocks + (present ? 0 : a->nblocks);
		uint64_t s = cairn_time_ns();
		int n;

		block_mh(mh, b);
		n = cairn_tlindex_lookup(hits, 8, a->idx, mh, MH_LEN);
		a->lat[i] = cairn_time_ns() - s;
		if (present ? n != 1 || hits[0].shard != b / cfg.shard_size ||
				      hits[0].offset != block_offset(b) || hits[0].size != block_size(b)
			    : n != 0)
			a->errors++;
	}
	a->secs = now_s() - t0;
	return NULL;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1));

	return (double)v[i] / 1000.0;
}

static int mode_lookup(void)
{
	uint64_t nshards = (cfg.total + cfg.shard_size - 1) / cfg.shard_size;
	uint64_t nblocks = nshards * cfg.shard_size;
	look_arg *args = calloc(cfg.threads, sizeof(*args));
	pthread_t *th = calloc(cfg.threads, sizeof(*th));
	uint64_t per = cfg.count / cfg.threads, errors = 0;
	uint64_t *pres, *abs_;
	double open_s, t0, wall;
	cairn_tlindex *idx;
	cairn_tlindex_stats st;

	if (cfg.cold)
		drop_caches();
	t0 = now_s();
	{
		cairn_tlindex_options o = CAIRN_TLINDEX_OPTIONS_INIT;

		o.read_only = true;
		if (cairn_tlindex_open(&idx, cfg.dir, &o)) {
			fprintf(stderr, "bench_tlindex: open %s: %s\n", cfg.dir, cairn_error_last());
			return 1;
		}
	}
	open_s = now_s() - t0;
	cairn_tlindex_stats_get(&st, idx);
	if (st.entries != nblocks) {
		fprintf(stderr, "bench_tlindex: %s holds %" PRIu64 " entries, not %" PRIu64
			" (build it with the same --total and --shard-size)\n", cfg.dir, st.entries,
			nblocks);
		return 1;
	}
	t0 = now_s();
	for (unsigned t = 0; t < cfg.threads; t++) {
		args[t] = (look_arg){idx, 0x51ed27 + (uint64_t)t * 0x100000000ull, per, nblocks,
				     calloc(2 * per, sizeof(uint64_t)), 0, 0};
		pthread_create(&th[t], NULL, look_main, &args[t]);
	}
	for (unsigned t = 0; t < cfg.threads; t++)
		pthread_join(th[t], NULL);
	wall = now_s() - t0;
	pres = malloc(per * cfg.threads * sizeof(uint64_t));
	abs_ = malloc(per * cfg.threads * sizeof(uint64_t));
	for (unsigned t = 0; t < cfg.threads; t++) {
		memcpy(pres + t * per, args[t].lat, per * sizeof(uint64_t));
		memcpy(abs_ + t * per, args[t].lat + per, per * sizeof(uint64_t));
		errors += args[t].errors;
		free(args[t].lat);
	}
	qsort(pres, per * cfg.threads, sizeof(uint64_t), u64_cmp);
	qsort(abs_, per * cfg.threads, sizeof(uint64_t), u64_cmp);
	printf("RESULT lookup %s entries=%" PRIu64 " runs=%" PRIu64 " threads=%u lookups=%" PRIu64
	       " open_ms=%.1f rate=%.0f present_p50_us=%.2f present_p99_us=%.2f present_p999_us=%.2f"
	       " absent_p50_us=%.2f absent_p99_us=%.2f errors=%" PRIu64 " peak_rss_mib=%ld\n",
	       cfg.cold ? "cold" : "warm", nblocks, st.runs, cfg.threads, 2 * per * cfg.threads,
	       open_s * 1000, (double)(2 * per * cfg.threads) / wall, pct(pres, per * cfg.threads, 0.5),
	       pct(pres, per * cfg.threads, 0.99), pct(pres, per * cfg.threads, 0.999),
	       pct(abs_, per * cfg.threads, 0.5), pct(abs_, per * cfg.threads, 0.99), errors,
	       peak_rss_mib());
	free(pres);
	free(abs_);
	free(args);
	free(th);
	cairn_tlindex_close(idx);
	return errors ? 1 : 0;
}

/* ------------------------------------------------------------------ LMDB */

#define CK(x) do { int rc_ = (x); if (rc_) { fprintf(stderr, "bench_tlindex: %s: %s\n", #x, mdb_strerror(rc_)); exit(1); } } while (0)

typedef struct {
	uint64_t key;
	uint8_t val[16];  /* shard u32, size u32, offset u64: memcmp order is
			   * what LMDB sorts duplicates by */
} lrec;

static int lrec_cmp(const void *a, const void *b)
{
	const lrec *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return memcmp(x->val, y->val, 16);
}

static void lrec_fill(lrec *r, uint64_t b)
{
	uint8_t mh[MH_LEN];
	uint32_t shard = (uint32_t)(b / cfg.shard_size), size = block_size(b);
	uint64_t off = block_offset(b);

	block_mh(mh, b);
	r->key = cairn_tlindex_key(mh, MH_LEN);
	memcpy(r->val, &shard, 4);
	memcpy(r->val + 4, &size, 4);
	memcpy(r->val + 8, &off, 8);
}

static int mode_lmdb(void)
{
	uint64_t nshards = (cfg.total + cfg.shard_size - 1) / cfg.shard_size;
	uint64_t nblocks = nshards * cfg.shard_size;
	lrec *recs = malloc(cfg.batch * cfg.shard_size * sizeof(*recs));
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	double t0, ins, look, del;
	uint64_t errors = 0, lookups = cfg.count;

	nftw(cfg.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mkdir(cfg.dir, 0755);
	CK(mdb_env_create(&env));
	CK(mdb_env_set_mapsize(env, 64ull << 30));
	CK(mdb_env_open(env, cfg.dir, cfg.no_sync ? MDB_NOSYNC : 0, 0644));
	CK(mdb_txn_begin(env, NULL, 0, &txn));
	CK(mdb_dbi_open(txn, NULL, MDB_DUPSORT | MDB_DUPFIXED, &dbi));
	CK(mdb_txn_commit(txn));
	t0 = now_s();
	for (uint64_t s = 0; s < nshards; s += cfg.batch) {
		size_t nb = nshards - s < cfg.batch ? (size_t)(nshards - s) : (size_t)cfg.batch;
		size_t n = nb * cfg.shard_size;

		for (size_t i = 0; i < n; i++)
			lrec_fill(&recs[i], s * cfg.shard_size + i);
		qsort(recs, n, sizeof(*recs), lrec_cmp);
		CK(mdb_txn_begin(env, NULL, 0, &txn));
		for (size_t i = 0; i < n; i++) {
			MDB_val k = {8, &recs[i].key}, v = {16, recs[i].val};

			CK(mdb_put(txn, dbi, &k, &v, 0));
		}
		CK(mdb_txn_commit(txn));
	}
	ins = now_s() - t0;
	{
		char path[PATH_MAX];
		struct stat st;

		snprintf(path, sizeof(path), "%s/data.mdb", cfg.dir);
		stat(path, &st);
		printf("RESULT lmdb insert shard_size=%" PRIu64 " batch=%" PRIu64 " entries=%" PRIu64
		       " secs=%.3f rate=%.0f bytes_per_entry=%.2f du_bytes_per_entry=%.2f\n",
		       cfg.shard_size, cfg.batch, nblocks, ins, (double)nblocks / ins,
		       (double)st.st_size / (double)nblocks,
		       (double)dir_bytes(cfg.dir) / (double)nblocks);
	}
	/* Warm lookups: a read transaction reset and renewed per lookup (as the
	 * LMDB store does), a cursor to reach every duplicate. */
	{
		uint64_t x = 0x51ed27, *lat = malloc(lookups * sizeof(uint64_t));
		MDB_cursor *cur;

		CK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
		CK(mdb_cursor_open(txn, dbi, &cur));
		mdb_txn_reset(txn);
		t0 = now_s();
		for (uint64_t i = 0; i < lookups; i++) {
			uint64_t b = mix(x++) % nblocks, s = cairn_time_ns();
			lrec want;
			MDB_val k, v;
			size_t n = 0;
			bool ok = false;

			lrec_fill(&want, b);
			k.mv_size = 8;
			k.mv_data = &want.key;
			CK(mdb_txn_renew(txn));
			CK(mdb_cursor_renew(txn, cur));
			int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);

			while (!rc) {
				ok |= v.mv_size == 16 && !memcmp(v.mv_data, want.val, 16);
				n++;
				rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
			}
			mdb_txn_reset(txn);
			lat[i] = cairn_time_ns() - s;
			if (!ok || n != 1)
				errors++;
		}
		look = now_s() - t0;
		mdb_cursor_close(cur);
		mdb_txn_abort(txn);
		qsort(lat, lookups, sizeof(uint64_t), u64_cmp);
		printf("RESULT lmdb lookup warm entries=%" PRIu64 " lookups=%" PRIu64
		       " rate=%.0f p50_us=%.2f p99_us=%.2f errors=%" PRIu64 "\n",
		       nblocks, lookups, (double)lookups / look, pct(lat, lookups, 0.5),
		       pct(lat, lookups, 0.99), errors);
		free(lat);
	}
	/* Removing a shard: LMDB has no cheap way; one delete per entry (the
	 * entries known from the shard's own CARv2 index). */
	{
		uint64_t s = nshards / 2;

		for (size_t i = 0; i < cfg.shard_size; i++)
			lrec_fill(&recs[i], s * cfg.shard_size + i);
		qsort(recs, cfg.shard_size, sizeof(*recs), lrec_cmp);
		t0 = now_s();
		CK(mdb_txn_begin(env, NULL, 0, &txn));
		for (size_t i = 0; i < cfg.shard_size; i++) {
			MDB_val k = {8, &recs[i].key}, v = {16, recs[i].val};

			CK(mdb_del(txn, dbi, &k, &v));
		}
		CK(mdb_txn_commit(txn));
		del = now_s() - t0;
		printf("RESULT lmdb remove_shard entries=%" PRIu64 " secs=%.3f rate=%.0f\n",
		       cfg.shard_size, del, (double)cfg.shard_size / del);
	}
	mdb_env_close(env);
	free(recs);
	if (!cfg.keep)
		nftw(cfg.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return errors ? 1 : 0;
}

/* The same removal in the tlindex, for the comparison. */
static int mode_remove(void)
{
	cairn_tlindex *idx = open_index(false);
	uint64_t nshards = (cfg.total + cfg.shard_size - 1) / cfg.shard_size;
	double t0 = now_s();

	if (cairn_tlindex_remove_shard(idx, (uint32_t)(nshards / 2))) {
		fprintf(stderr, "bench_tlindex: remove: %s\n", cairn_error_last());
		return 1;
	}
	printf("RESULT remove_shard entries=%" PRIu64 " secs=%.6f\n", cfg.shard_size, now_s() - t0);
	cairn_tlindex_close(idx);
	return 0;
}

static void log_sink(cairn_log_level level, const char *msg, void *payload)
{
	(void)payload;
	fprintf(stderr, "bench_tlindex: %s: %s\n", cairn_log_level_name(level), msg);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_tlindex [--dir D] [--total N] [--shard-size N] [--batch N]\n"
		"                     [--count N] [--threads N] [--cold] [--keep] [--no-sync]\n"
		"                     [--ratio N] insert|build|settle|compact|lookup|lmdb|remove\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"total", required_argument, NULL, 't'},
		{"shard-size", required_argument, NULL, 's'},
		{"batch", required_argument, NULL, 'b'},
		{"count", required_argument, NULL, 'c'},
		{"threads", required_argument, NULL, 'j'},
		{"ratio", required_argument, NULL, 'r'},
		{"cold", no_argument, NULL, 'C'},
		{"keep", no_argument, NULL, 'k'},
		{"no-sync", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	static char defdir[PATH_MAX];
	int c;

	cairn_log_set_sink(log_sink, NULL);
	cairn_log_set_level(CAIRN_LOG_INFO);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': cfg.dir = optarg; break;
		case 't': cfg.total = strtoull(optarg, NULL, 0); break;
		case 's': cfg.shard_size = strtoull(optarg, NULL, 0); break;
		case 'b': cfg.batch = strtoull(optarg, NULL, 0); break;
		case 'c': cfg.count = strtoull(optarg, NULL, 0); break;
		case 'j': cfg.threads = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'r': cfg.ratio = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'C': cfg.cold = true; break;
		case 'k': cfg.keep = true; break;
		case 'n': cfg.no_sync = true; break;
		default: usage();
		}
	}
	if (optind + 1 != argc || !cfg.shard_size || !cfg.batch || !cfg.threads || !cfg.count)
		usage();
	if (!cfg.dir) {
		const char *t = getenv("TMPDIR");

		snprintf(defdir, sizeof(defdir), "%s/cairn-bench-tlindex", t ? t : "/tmp");
		cfg.dir = defdir;
	}
	if (!strcmp(argv[optind], "insert"))
		return mode_insert(cfg.keep);
	if (!strcmp(argv[optind], "build"))
		return mode_build();
	if (!strcmp(argv[optind], "compact"))
		return mode_compact();
	if (!strcmp(argv[optind], "settle"))
		return mode_settle();
	if (!strcmp(argv[optind], "lookup"))
		return mode_lookup();
	if (!strcmp(argv[optind], "lmdb"))
		return mode_lmdb();
	if (!strcmp(argv[optind], "remove"))
		return mode_remove();
	usage();
	return 2;
}
