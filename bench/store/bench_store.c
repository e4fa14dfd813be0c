/* bench_store.c: put and get rates and peak RSS of the blockstores, and of a
 * SQLite prototype, the obvious alternative to LMDB for the persistent store.
 *
 * Each run of a store runs in a child process, so its peak RSS (as
 * wait4 reports it, the figure /usr/bin/time -v prints) is its own. That
 * counts the pages of a file mapped for reading (LMDB, SQLite's mmap), which
 * the kernel can take back at will, so the peak of anonymous memory (heap:
 * write batches, caches) is sampled too, every 2 ms. A run:
 * open a fresh store, put every block in order and flush and close (the
 * put time covers all of it: what it takes for the blocks to be durable),
 * reopen, get every block once in a random order (warm: the blocks are in
 * the page cache after the puts). Each run is a child of its own, and run
 * r of every store comes before run r + 1 of any, so a change in the load
 * of the machine does not fall on one store. Rates are the median of the
 * runs, RSS the largest.
 *
 * Blocks are windows into one random buffer (distinct content, no time
 * spent making it), CIDv1 raw sha2-256 hashed before the clock starts.
 *
 * The SQLite prototype (built when CAIRN_BENCH_SQLITE is defined, linked
 * with sqlite3) mirrors the LMDB store: a table keyed by multihash with the
 * CID prefix beside the block, WAL, synchronous=FULL (a commit is durable,
 * as LMDB's), puts batched into transactions of 64 MiB as LMDB's, an mmap
 * as large as LMDB's for reads. Two layouts: WITHOUT ROWID (the row in the
 * key's B-tree) and a rowid table with a unique index on the key (the usual
 * advice for large blobs).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CAIRN_BENCH_SQLITE
#include <sqlite3.h>
#endif

#include "cairn.h"

#define MAX_REPEAT 15
#define BATCH_BYTES (64u << 20)

/* ----------------------------------------------------------- the blocks */

typedef struct {
	size_t n, len;
	uint8_t *pool;     /* random bytes; block i starts at offset_of(i) */
	size_t pool_len;
	uint8_t (*digest)[32];
	uint32_t *order;   /* a permutation for the gets */
} workload;

static size_t offset_of(const workload *w, size_t i)
{
	/* Distinct windows of random bytes are distinct blocks. */
	return (i * 8) % (w->pool_len - w->len + 1);
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int workload_make(workload *w, size_t n, size_t len)
{
	uint64_t x = 0x2545f4914f6cdd1dull;

	w->n = n;
	w->len = len;
	/* Room for n distinct windows, 8 bytes apart, or at least 2 MiB. */
	w->pool_len = len + (n * 8 > (2u << 20) ? n * 8 : (2u << 20));
	w->pool = malloc(w->pool_len);
	w->digest = malloc(n * sizeof(*w->digest));
	w->order = malloc(n * sizeof(*w->order));
	if (!w->pool || !w->digest || !w->order)
		return -1;
	for (size_t i = 0; i < w->pool_len; i++)
		w->pool[i] = (uint8_t)(next_rand(&x) >> 32);
	for (size_t i = 0; i < n; i++) {
		if (cairn_multihash_sum(w->digest[i], CAIRN_MH_SHA2_256, w->pool + offset_of(w, i), len) != 32)
			return -1;
		w->order[i] = (uint32_t)i;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = next_rand(&x) % (i + 1);
		uint32_t t = w->order[i];

		w->order[i] = w->order[j];
		w->order[j] = t;
	}
	return 0;
}

static void cid_of(cairn_cid *cid, const workload *w, size_t i)
{
	cairn_cid_from_digest(cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, w->digest[i], 32);
}

/* -------------------------------------------------------------- the stores
 *
 * Each kind opens (creating or reopening) at a path, puts, flushes, gets
 * and closes; `phase` tells open whether this is the put or the get half.
 */

typedef struct kind kind;

typedef struct {
	const kind *k;
	char path[PATH_MAX];
	cairn_store *store;      /* the cairn stores */
	cairn_store *backing;    /* memory: the LMDB store under it */
	void *impl;              /* the SQLite prototype */
} handle;

struct kind {
	const char *name;
	const char *desc;
	bool persistent;         /* closed after the puts and reopened for the gets */
	int (*open)(handle *h, bool for_get);
	int (*put)(handle *h, const cairn_cid *cid, const uint8_t *p, size_t n);
	int (*flush)(handle *h);
	int (*get)(handle *h, cairn_buf *out, const cairn_cid *cid);
	void (*close)(handle *h);
};

static int store_put(handle *h, const cairn_cid *cid, const uint8_t *p, size_t n)
{
	return cairn_store_put(h->store, cid, p, n);
}

static int store_flush(handle *h)
{
	return cairn_store_flush(h->store, NULL);
}

static int store_get(handle *h, cairn_buf *out, const cairn_cid *cid)
{
	return cairn_store_get(h->store, out, cid);
}

static void store_close(handle *h)
{
	cairn_store_free(h->store);
	cairn_store_free(h->backing);
	h->store = h->backing = NULL;
}

/* LMDB, with the defaults: fsync at each commit, 64 MiB batches. */
static int lmdb_open(handle *h, bool for_get)
{
	(void)for_get;
	return cairn_store_lmdb_open(&h->store, h->path, NULL);
}

/* The memory store over an LMDB store, with a budget above the data: puts
 * and gets in memory (flush would be the LMDB store's puts). */
static int mem_open(handle *h, bool for_get)
{
	cairn_store_lmdb_options o = CAIRN_STORE_LMDB_OPTIONS_INIT;
	int rc;

	(void)for_get;
	o.no_sync = true;
	if ((rc = cairn_store_lmdb_open(&h->backing, h->path, &o)))
		return rc;
	return cairn_store_mem_open(&h->store, h->backing, 64ull << 30);
}

static int mem_flush(handle *h)
{
	(void)h;
	return 0;
}

/* Puts through the read-write CAR store, finalized at flush; gets through
 * the read-only CAR store on the finished file (trusted: no hashing, as
 * the other stores do not hash either). */
static int car_open(handle *h, bool for_get)
{
	cairn_car_options ro = CAIRN_CAR_OPTIONS_INIT;
	char file[PATH_MAX + 16];

	snprintf(file, sizeof(file), "%s.car", h->path);
	if (for_get) {
		ro.trusted = true;
		return cairn_store_car_open(&h->store, file, NULL, &ro);
	}
	return cairn_store_carrw_open(&h->store, NULL, file, NULL, 0, NULL);
}

static int car_flush(handle *h)
{
	return cairn_store_carrw_finalize(h->store);
}

#ifdef CAIRN_BENCH_SQLITE
/* ---------------------------------------------------- SQLite prototype */

typedef struct {
	sqlite3 *db;
	sqlite3_stmt *ins, *sel;
	uint64_t batch;  /* bytes in the open transaction */
	bool in_txn;
	bool rowid;
} sq;

static int sq_fail(sq *q, const char *what)
{
	return cairn_error_set(CAIRN_EIO, "sqlite: %s: %s", what, q->db ? sqlite3_errmsg(q->db) : "?");
}

static int sq_exec(sq *q, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(q->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		int rc = cairn_error_set(CAIRN_EIO, "sqlite: %s: %s", sql, err ? err : "?");

		sqlite3_free(err);
		return rc;
	}
	return 0;
}

static int sq_open_kind(handle *h, bool rowid)
{
	static const char *const pragmas =
		"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA mmap_size=68719476736;"
		"PRAGMA cache_size=-65536;";
	char file[PATH_MAX + 16];
	sq *q = calloc(1, sizeof(*q));
	int rc;

	if (!q)
		return CAIRN_ENOMEM;
	h->impl = q;
	q->rowid = rowid;
	mkdir(h->path, 0700);
	snprintf(file, sizeof(file), "%s/blocks.sqlite", h->path);
	if (sqlite3_open(file, &q->db) != SQLITE_OK)
		return sq_fail(q, "open");
	if ((rc = sq_exec(q, pragmas)))
		return rc;
	if ((rc = sq_exec(q, rowid ? "CREATE TABLE IF NOT EXISTS blocks (id INTEGER PRIMARY KEY, "
				     "key BLOB NOT NULL UNIQUE, prefix BLOB NOT NULL, value BLOB NOT NULL)"
				   : "CREATE TABLE IF NOT EXISTS blocks (key BLOB PRIMARY KEY, "
				     "prefix BLOB NOT NULL, value BLOB NOT NULL) WITHOUT ROWID")))
		return rc;
	if (sqlite3_prepare_v2(q->db, "INSERT OR IGNORE INTO blocks (key, prefix, value) VALUES (?, ?, ?)",
			       -1, &q->ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "SELECT value FROM blocks WHERE key = ?", -1, &q->sel, NULL) != SQLITE_OK)
		return sq_fail(q, "prepare");
	return 0;
}

static int sq_open(handle *h, bool for_get)
{
	(void)for_get;
	return sq_open_kind(h, false);
}

static int sq_open_rowid(handle *h, bool for_get)
{
	(void)for_get;
	return sq_open_kind(h, true);
}

static int sq_commit(sq *q)
{
	int rc;

	if (!q->in_txn)
		return 0;
	q->in_txn = false;
	q->batch = 0;
	return (rc = sq_exec(q, "COMMIT")) ? rc : 0;
}

static int sq_put(handle *h, const cairn_cid *cid, const uint8_t *p, size_t n)
{
	sq *q = h->impl;
	int rc;

	if (!q->in_txn) {
		if ((rc = sq_exec(q, "BEGIN")))
			return rc;
		q->in_txn = true;
	}
	sqlite3_bind_blob(q->ins, 1, cid->bytes + cid->mh_off, cid->len - cid->mh_off, SQLITE_STATIC);
	sqlite3_bind_blob(q->ins, 2, cid->bytes, cid->mh_off, SQLITE_STATIC);
	sqlite3_bind_blob(q->ins, 3, p, (int)n, SQLITE_STATIC);
	rc = sqlite3_step(q->ins);
	sqlite3_reset(q->ins);
	if (rc != SQLITE_DONE)
		return sq_fail(q, "insert");
	q->batch += n + cid->len;
	return q->batch >= BATCH_BYTES ? sq_commit(q) : 0;
}

static int sq_flush(handle *h)
{
	return sq_commit(h->impl);
}

static int sq_get(handle *h, cairn_buf *out, const cairn_cid *cid)
{
	sq *q = h->impl;
	int rc;

	sqlite3_bind_blob(q->sel, 1, cid->bytes + cid->mh_off, cid->len - cid->mh_off, SQLITE_STATIC);
	rc = sqlite3_step(q->sel);
	if (rc == SQLITE_ROW) {
		cairn_buf_clear(out);
		rc = cairn_buf_append(out, sqlite3_column_blob(q->sel, 0),
				      (size_t)sqlite3_column_bytes(q->sel, 0));
	} else {
		rc = rc == SQLITE_DONE ? CAIRN_ENOTFOUND : sq_fail(q, "select");
	}
	sqlite3_reset(q->sel);
	return rc;
}

static void sq_close(handle *h)
{
	sq *q = h->impl;

	if (!q)
		return;
	sq_commit(q);
	sqlite3_finalize(q->ins);
	sqlite3_finalize(q->sel);
	sqlite3_close(q->db);
	free(q);
	h->impl = NULL;
}
#endif

static const kind kinds[] = {
	{"lmdb", "LMDB store (fsync at commit, 64 MiB batches)", true,
	 lmdb_open, store_put, store_flush, store_get, store_close},
#ifdef CAIRN_BENCH_SQLITE
	{"sqlite", "SQLite WITHOUT ROWID, WAL, synchronous=FULL, 64 MiB transactions", true,
	 sq_open, sq_put, sq_flush, sq_get, sq_close},
	{"sqlite-rowid", "SQLite rowid table + unique key index, otherwise the same", true,
	 sq_open_rowid, sq_put, sq_flush, sq_get, sq_close},
#endif
	{"memory", "memory store over LMDB, budget above the data (no flush)", false,
	 mem_open, store_put, mem_flush, store_get, store_close},
	{"car", "put: read-write CAR store + finalize; get: read-only CAR store", true,
	 car_open, store_put, car_flush, store_get, store_close},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* ------------------------------------------------------------- measuring */

typedef struct {
	int rc;
	char err[512];
	double put_s[MAX_REPEAT], get_s[MAX_REPEAT];
	uint64_t disk_bytes;
	long anon_kib;  /* peak RssAnon seen by the sampler */
	int runs;
} result;

/* ------------------------------------------------ the anonymous-RSS sampler */

static atomic_bool sampling;
static atomic_long anon_peak_kib;

static long rss_anon_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void *sampler(void *arg)
{
	struct timespec ts = {0, 2000000};

	(void)arg;
	while (atomic_load(&sampling)) {
		long v = rss_anon_kib();

		if (v > atomic_load(&anon_peak_kib))
			atomic_store(&anon_peak_kib, v);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t disk_total;

static int du_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		disk_total += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* Bytes allocated on disk (a sparse LMDB map counts what is written). */
static uint64_t disk_usage(const char *path)
{
	char car[PATH_MAX + 16];
	struct stat st;

	disk_total = 0;
	nftw(path, du_entry, 16, FTW_PHYS);
	snprintf(car, sizeof(car), "%s.car", path);
	if (!stat(car, &st))
		disk_total += (uint64_t)st.st_blocks * 512;
	return disk_total;
}

static int one_run(result *r, const kind *k, const workload *w, const char *base, int run)
{
	cairn_buf got = CAIRN_BUF_INIT;
	char car[PATH_MAX + 16];
	handle h;
	uint64_t t0;
	int rc;

	memset(&h, 0, sizeof(h));
	h.k = k;
	snprintf(h.path, sizeof(h.path), "%s/%s-%d", base, k->name, run);
	snprintf(car, sizeof(car), "%s.car", h.path);
	rm_tree(h.path);
	unlink(car);
	if ((rc = k->open(&h, false)))
		goto out;
	t0 = cairn_time_ns();
	for (size_t i = 0; i < w->n; i++) {
		cairn_cid cid;

		cid_of(&cid, w, i);
		if ((rc = k->put(&h, &cid, w->pool + offset_of(w, i), w->len)))
			goto out;
	}
	if ((rc = k->flush(&h)))
		goto out;
	if (k->persistent)
		k->close(&h);
	r->put_s[run] = (double)(cairn_time_ns() - t0) / 1e9;
	r->disk_bytes = disk_usage(h.path);
	if (k->persistent && (rc = k->open(&h, true)))
		goto out;
	t0 = cairn_time_ns();
	for (size_t j = 0; j < w->n; j++) {
		size_t i = w->order[j];
		cairn_cid cid;

		cid_of(&cid, w, i);
		if ((rc = k->get(&h, &got, &cid)))
			goto out;
		if (got.len != w->len || memcmp(got.data, w->pool + offset_of(w, i), 8)) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: block %zu came back wrong", k->name, i);
			goto out;
		}
	}
	r->get_s[run] = (double)(cairn_time_ns() - t0) / 1e9;
out:
	k->close(&h);
	cairn_buf_free(&got);
	rm_tree(h.path);
	unlink(car);
	return rc;
}

/* In a child: the workload is made there, so its RSS is the child's only.
 * One run (`k` NULL: none, to measure the bench alone). */
static void child(int fd, const kind *k, size_t n, size_t len, const char *base)
{
	result r;
	workload w;
	ssize_t wr;
	pthread_t t;

	memset(&r, 0, sizeof(r));
	atomic_store(&sampling, true);
	if (pthread_create(&t, NULL, sampler, NULL))
		atomic_store(&sampling, false);
	if (workload_make(&w, n, len)) {
		r.rc = CAIRN_ENOMEM;
		snprintf(r.err, sizeof(r.err), "cannot make the blocks");
	}
	if (k && !r.rc) {
		if ((r.rc = one_run(&r, k, &w, base, 0)))
			snprintf(r.err, sizeof(r.err), "%s", cairn_error_last());
		else
			r.runs = 1;
	}
	if (atomic_exchange(&sampling, false))
		pthread_join(t, NULL);
	r.anon_kib = atomic_load(&anon_peak_kib);
	wr = write(fd, &r, sizeof(r));
	_exit(wr == (ssize_t)sizeof(r) ? 0 : 1);
}

static int measure(result *r, long *rss_kib, const kind *k, size_t n, size_t len, const char *base)
{
	struct rusage ru;
	int fds[2], status;
	pid_t pid;
	size_t got = 0;

	if (pipe(fds))
		return -1;
	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		close(fds[0]);
		child(fds[1], k, n, len, base);
	}
	close(fds[1]);
	while (got < sizeof(*r)) {
		ssize_t m = read(fds[0], (char *)r + got, sizeof(*r) - got);

		if (m <= 0)
			break;
		got += (size_t)m;
	}
	close(fds[0]);
	if (wait4(pid, &status, 0, &ru) < 0 || got != sizeof(*r))
		return -1;
	*rss_kib = ru.ru_maxrss;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double t[MAX_REPEAT];

	memcpy(t, v, (size_t)n * sizeof(*v));
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_store [--stores a,b,...] [--small N] [--small-size B] [--large N]\n"
		"                   [--large-size B] [--repeat R] [--dir DIR]\n"
		"Put and get rates of each store (median of R runs, default 3) and the peak RSS\n"
		"of the process that ran it, as a Markdown table. Workloads: N small blocks of\n"
		"B bytes (default 200000 of 200) and N large ones (default 1024 of 1 MiB).\n"
		"Stores: lmdb%s, memory, car (all by default). DIR (default $TMPDIR or /tmp)\n"
		"holds the stores while they run. MB = 10^6 bytes.\n",
#ifdef CAIRN_BENCH_SQLITE
		", sqlite, sqlite-rowid"
#else
		" (sqlite: build with CAIRN_BENCH_SQLITE)"
#endif
		);
}

static bool selected(const char *list, const char *name)
{
	size_t n = strlen(name);

	if (!list)
		return true;
	for (const char *p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"stores", required_argument, NULL, 's'},
		{"small", required_argument, NULL, 'n'},
		{"small-size", required_argument, NULL, 'b'},
		{"large", required_argument, NULL, 'N'},
		{"large-size", required_argument, NULL, 'B'},
		{"repeat", required_argument, NULL, 'r'},
		{"dir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	size_t sizes[2][2] = {{200000, 200}, {1024, 1u << 20}};
	const char *stores = NULL, *dir = getenv("TMPDIR");
	char base[PATH_MAX];
	int repeat = 3, c, failed = 0;
	long base_rss[2];
	result base_r[2];

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': stores = optarg; break;
		case 'n': sizes[0][0] = strtoul(optarg, NULL, 10); break;
		case 'b': sizes[0][1] = strtoul(optarg, NULL, 10); break;
		case 'N': sizes[1][0] = strtoul(optarg, NULL, 10); break;
		case 'B': sizes[1][1] = strtoul(optarg, NULL, 10); break;
		case 'r': repeat = atoi(optarg); break;
		case 'd': dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (repeat < 1 || repeat > MAX_REPEAT || !sizes[0][0] || !sizes[1][0] || sizes[0][1] < 8 ||
	    sizes[1][1] < 8) {
		usage(stderr);
		return 2;
	}
	snprintf(base, sizeof(base), "%s/cairn-bench-store-XXXXXX", dir && *dir ? dir : "/tmp");
	if (!mkdtemp(base)) {
		fprintf(stderr, "bench_store: %s: %s\n", base, strerror(errno));
		return 1;
	}
	/* The process alone, with the blocks made: the floor under every row. */
	for (int s = 0; s < 2; s++) {
		if (measure(&base_r[s], &base_rss[s], NULL, sizes[s][0], sizes[s][1], base)) {
			fprintf(stderr, "bench_store: cannot run a child\n");
			return 1;
		}
	}
	printf("| store | blocks | put blocks/s | put MB/s | get blocks/s | get MB/s | peak RSS MiB | peak anon MiB | on disk MiB |\n");
	printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int s = 0; s < 2; s++) {
		size_t n = sizes[s][0], len = sizes[s][1];
		/* Run r of every store, then run r + 1: a change in the load of
		 * the machine falls on all stores, not on one. */
		static result runs[NKINDS];
		static long rss[NKINDS];
		static bool bad[NKINDS];

		memset(runs, 0, sizeof(runs));
		memset(rss, 0, sizeof(rss));
		memset(bad, 0, sizeof(bad));
		for (int run = 0; run < repeat; run++) {
			for (size_t k = 0; k < NKINDS; k++) {
				long kib;
				result r;

				if (!selected(stores, kinds[k].name) || bad[k])
					continue;
				fprintf(stderr, "bench_store: %s, %zu blocks of %zu bytes, run %d...\n",
					kinds[k].name, n, len, run + 1);
				if (measure(&r, &kib, &kinds[k], n, len, base) || r.rc) {
					fprintf(stderr, "bench_store: %s: %s\n", kinds[k].name,
						r.rc ? r.err : "the child died");
					bad[k] = true;
					failed = 1;
					continue;
				}
				runs[k].put_s[runs[k].runs] = r.put_s[0];
				runs[k].get_s[runs[k].runs] = r.get_s[0];
				runs[k].runs++;
				runs[k].disk_bytes = r.disk_bytes;
				if (r.anon_kib > runs[k].anon_kib)
					runs[k].anon_kib = r.anon_kib;
				if (kib > rss[k])
					rss[k] = kib;
			}
		}
		printf("| (the bench alone) | %zu x %zu B | | | | | %.0f | %.0f | |\n", n, len,
		       base_rss[s] / 1024.0, base_r[s].anon_kib / 1024.0);
		for (size_t k = 0; k < NKINDS; k++) {
			double put, get;

			if (!selected(stores, kinds[k].name) || bad[k])
				continue;
			put = median(runs[k].put_s, runs[k].runs);
			get = median(runs[k].get_s, runs[k].runs);
			printf("| %s | %zu x %zu B | %.0f | %.1f | %.0f | %.1f | %.0f | %.0f | %.0f |\n",
			       kinds[k].name, n, len, n / put, n * (double)len / put / 1e6, n / get,
			       n * (double)len / get / 1e6, rss[k] / 1024.0, runs[k].anon_kib / 1024.0,
			       runs[k].disk_bytes / 1048576.0);
		}
		fflush(stdout);
	}
	printf("\n");
	for (size_t k = 0; k < NKINDS; k++)
		if (selected(stores, kinds[k].name))
			printf("- %s: %s\n", kinds[k].name, kinds[k].desc);
	rm_tree(base);
	return failed;
}
