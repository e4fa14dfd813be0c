/* bench_db.c: insert rates of the metadata database: shard-registration-like
 * rows, all in one transaction against one transaction per row.
 *
 * The row is what a shard registration writes: a 64-character key in
 * random order (piece CIDs are hashes), a state, a path and a time, into a
 * table whose primary key is the key. Each run makes a fresh file with
 * cairn_db_open and a one-step migration, then times the inserts through
 * one cached statement from the first BEGIN to the last COMMIT (the close,
 * which checkpoints the log into the file, is timed apart). Runs:
 *   batched  NORMAL  n rows in one transaction
 *   per-row  NORMAL  n transactions of one row (the default sync level:
 *                    commits are not fsynced)
 *   per-row  FULL    f transactions of one row, each commit fsynced
 *                    (fewer rows: each costs a flush of the disk)
 * Each is repeated (-r, 3) and the median reported. Reference points:
 * Boost documents 400-500 shard registrations/s; cairn aims at 20,000/s
 * batched.
 *
 * usage: bench_db [-n rows] [-f full_rows] [-r repeat] [-d dir]
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "cairn/db.h"

#define MAX_REPEAT 15

static const cairn_db_migration steps[] = {
	{1, "CREATE TABLE shard (key TEXT PRIMARY KEY, state INTEGER NOT NULL,"
	    " path TEXT NOT NULL, created INTEGER NOT NULL);"},
};

static const char sql_put[] =
	"INSERT INTO shard (key, state, path, created) VALUES (?1, ?2, ?3, ?4)";

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Row i's key: 64 hex characters, in a random order. */
static void key_of(char out[65], uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;

	for (int w = 0; w < 4; w++)
		snprintf(out + 16 * w, 17, "%016" PRIx64, next_rand(&x));
}

static int put(cairn_db *db, uint64_t i)
{
	char key[65], path[64];
	cairn_db_stmt *st;
	int rc;

	key_of(key, i);
	snprintf(path, sizeof(path), "shards/%" PRIu64 ".car", i);
	if ((rc = cairn_db_prepare(&st, db, sql_put)))
		return rc;
	if (!(rc = cairn_db_bind_text(st, 1, key)) && !(rc = cairn_db_bind_int64(st, 2, 1)) &&
	    !(rc = cairn_db_bind_text(st, 3, path)) &&
	    !(rc = cairn_db_bind_int64(st, 4, 1700000000 + (int64_t)i)))
		rc = cairn_db_step(st);
	cairn_db_reset(st);
	return rc < 0 ? rc : 0;
}

typedef struct {
	double insert_s, close_s;
} result;

/* One run: a fresh database, `n` rows, one transaction or one per row. */
static int run(result *r, const char *dir, uint64_t n, bool batched, cairn_db_sync sync)
{
	cairn_db_options o = CAIRN_DB_OPTIONS_INIT;
	char path[PATH_MAX], side[PATH_MAX + 8];
	uint64_t t0, t1;
	cairn_db *db;
	int rc;

	snprintf(path, sizeof(path), "%s/bench-db-%d.db", dir, (int)getpid());
	remove(path);
	o.sync = sync;
	if ((rc = cairn_db_open(&db, path, &o)) ||
	    (rc = cairn_db_migrate(db, "bench", steps, 1)))
		goto out;
	t0 = cairn_time_ns();
	if (batched && (rc = cairn_db_begin(db)))
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		if (!batched && (rc = cairn_db_begin(db)))
			goto out;
		if ((rc = put(db, i))) {
			cairn_db_rollback(db);
			goto out;
		}
		if (!batched && (rc = cairn_db_commit(db)))
			goto out;
	}
	if (batched && (rc = cairn_db_commit(db)))
		goto out;
	t1 = cairn_time_ns();
	cairn_db_close(db);
	db = NULL;
	r->insert_s = (double)(t1 - t0) / 1e9;
	r->close_s = (double)(cairn_time_ns() - t1) / 1e9;
out:
	if (rc)
		fprintf(stderr, "bench_db: %s\n", cairn_error_last());
	cairn_db_close(db);
	remove(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	remove(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	remove(side);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		bool batched;
		cairn_db_sync sync;
		bool full_rows;
	} modes[] = {
		{"one transaction, NORMAL", true, CAIRN_DB_SYNC_NORMAL, false},
		{"one transaction per row, NORMAL", false, CAIRN_DB_SYNC_NORMAL, false},
		{"one transaction per row, FULL", false, CAIRN_DB_SYNC_FULL, true},
	};
	uint64_t n = 100000, nfull = 2000;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int repeat = 3, c;

	while ((c = getopt(argc, argv, "n:f:r:d:")) != -1) {
		switch (c) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'f': nfull = strtoull(optarg, NULL, 10); break;
		case 'r': repeat = atoi(optarg); break;
		case 'd': dir = optarg; break;
		default:
			fprintf(stderr, "usage: bench_db [-n rows] [-f full_rows] [-r repeat] [-d dir]\n");
			return 2;
		}
	}
	if (repeat < 1 || repeat > MAX_REPEAT || !n || !nfull) {
		fprintf(stderr, "bench_db: -r is 1..%d; -n and -f above 0\n", MAX_REPEAT);
		return 2;
	}
	printf("| mode | rows | insert s | rows/s | close s |\n|---|---:|---:|---:|---:|\n");
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		double ins[MAX_REPEAT], cls[MAX_REPEAT];
		uint64_t rows = modes[m].full_rows ? nfull : n;

		/* Run r of every mode would interleave better, but the
		 * modes differ by 100x: medians of each suffice. */
		for (int r = 0; r < repeat; r++) {
			result res;

			if (run(&res, dir, rows, modes[m].batched, modes[m].sync))
				return 1;
			ins[r] = res.insert_s;
			cls[r] = res.close_s;
		}
		qsort(ins, (size_t)repeat, sizeof(double), cmp_double);
		qsort(cls, (size_t)repeat, sizeof(double), cmp_double);
		printf("| %s | %" PRIu64 " | %.3f | %.0f | %.3f |\n", modes[m].name, rows,
		       ins[repeat / 2], (double)rows / ins[repeat / 2], cls[repeat / 2]);
		fflush(stdout);
	}
	return 0;
}
