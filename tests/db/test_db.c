/* test_db.c: unit tests for the metadata database: open and settings,
 * migrations of a fake part, statements and their cache, errors, locks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "cairn/db.h"

static char tmpdir[512]; /* removed with everything in it at the end */

/* ---------------------------------------------------------------- helpers */

static void db_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static cairn_db *open_db(const char *path, const cairn_db_options *opts)
{
	cairn_db *db = NULL;

	if (cairn_db_open(&db, path, opts))
		fail_msg("open %s: %s", path, cairn_error_last());
	assert_non_null(db);
	return db;
}

/* A fresh database file in tmpdir (any old one removed first). */
static cairn_db *fresh_db(char *path, size_t n, const char *name)
{
	char side[PATH_MAX + 8];

	db_path(path, n, name);
	remove(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	remove(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	remove(side);
	return open_db(path, NULL);
}

static void exec_ok(cairn_db *db, const char *sql)
{
	if (cairn_db_exec(db, sql))
		fail_msg("exec %s: %s", sql, cairn_error_last());
}

/* The one integer a query returns. */
static int64_t query_int(cairn_db *db, const char *sql)
{
	cairn_db_stmt *st;
	int64_t v;

	if (cairn_db_prepare(&st, db, sql))
		fail_msg("prepare %s: %s", sql, cairn_error_last());
	if (cairn_db_step(st) != 1)
		fail_msg("step %s: %s", sql, cairn_error_last());
	v = cairn_db_column_int64(st, 0);
	cairn_db_reset(st);
	return v;
}

static unsigned version_of(cairn_db *db, const char *part)
{
	unsigned v = 99;

	assert_int_equal(cairn_db_schema_version(&v, db, part), 0);
	return v;
}

static bool has_table(cairn_db *db, const char *name)
{
	static const char sql[] = "SELECT count(*) FROM sqlite_master WHERE name = ?1";
	cairn_db_stmt *st;
	int64_t n;

	assert_int_equal(cairn_db_prepare(&st, db, sql), 0);
	assert_int_equal(cairn_db_bind_text(st, 1, name), 0);
	assert_int_equal(cairn_db_step(st), 1);
	n = cairn_db_column_int64(st, 0);
	cairn_db_reset(st);
	return n > 0;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* Whether another thread gets the connection within 5 s: every call must
 * release what it took, whatever it returned. */
static void *use_db(void *arg)
{
	cairn_db *db = arg;

	return (void *)(intptr_t)cairn_db_exec(db, "SELECT 1");
}

static void assert_released(cairn_db *db)
{
	struct timespec deadline;
	pthread_t t;
	void *ret;

	assert_int_equal(pthread_create(&t, NULL, use_db, db), 0);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	if (pthread_timedjoin_np(t, &ret, &deadline))
		fail_msg("the connection is still held by this thread");
	assert_int_equal((intptr_t)ret, 0);
}

/* ----------------------------------------------------------- a fake part
 *
 * "shards" in three versions: a table, then a column and an index, then a
 * second table filled from the first.
 */
static const cairn_db_migration shard_steps[] = {
	{1, "CREATE TABLE shard (key TEXT PRIMARY KEY, state INTEGER NOT NULL);"},
	{2, "ALTER TABLE shard ADD COLUMN path TEXT NOT NULL DEFAULT '';\n"
	    "CREATE INDEX shard_state ON shard (state);"},
	{3, "CREATE TABLE shard_log (id INTEGER PRIMARY KEY,\n"
	    "  key TEXT NOT NULL REFERENCES shard (key) ON DELETE CASCADE,\n"
	    "  at INTEGER NOT NULL);\n"
	    "INSERT INTO shard_log (key, at) SELECT key, 0 FROM shard;"},
};
#define NSTEPS (sizeof(shard_steps) / sizeof(shard_steps[0]))

static const char sql_put_v1[] = "INSERT INTO shard (key, state) VALUES (?1, ?2)";
static const char sql_put_v2[] = "INSERT INTO shard (key, state, path) VALUES (?1, ?2, ?3)";

static int put_shard(cairn_db *db, const char *key, int64_t state, const char *path)
{
	cairn_db_stmt *st;
	int rc;

	if ((rc = cairn_db_prepare(&st, db, path ? sql_put_v2 : sql_put_v1)))
		return rc;
	if (!(rc = cairn_db_bind_text(st, 1, key)) && !(rc = cairn_db_bind_int64(st, 2, state)) &&
	    (!path || !(rc = cairn_db_bind_text(st, 3, path))))
		rc = cairn_db_step(st);
	cairn_db_reset(st);
	return rc;
}

/* ------------------------------------------------------------ open/close */

static void test_open_settings(void **state)
{
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "settings.db");
	assert_string_equal(cairn_db_backend(db), "sqlite");
	assert_string_equal(cairn_db_path(db), path);
	{
		cairn_db_stmt *st;

		assert_int_equal(cairn_db_prepare(&st, db, "PRAGMA journal_mode"), 0);
		assert_int_equal(cairn_db_step(st), 1);
		assert_string_equal(cairn_db_column_text(st, 0), "wal");
		cairn_db_reset(st);
	}
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(db, "PRAGMA busy_timeout"), 5000);
	cairn_db_close(db);
	cairn_db_close(NULL);

	/* Options. */
	{
		cairn_db_options o = CAIRN_DB_OPTIONS_INIT;

		o.sync = CAIRN_DB_SYNC_FULL;
		o.busy_timeout_ms = 250;
		db = open_db(path, &o);
		assert_int_equal(query_int(db, "PRAGMA synchronous"), 2);
		assert_int_equal(query_int(db, "PRAGMA busy_timeout"), 250);
		cairn_db_close(db);
		o.sync = CAIRN_DB_SYNC_OFF;
		db = open_db(path, &o);
		assert_int_equal(query_int(db, "PRAGMA synchronous"), 0);
		cairn_db_close(db);
		o.sync = (cairn_db_sync)7;
		assert_int_equal(cairn_db_open(&db, path, &o), CAIRN_EINVAL);
		assert_null(db);
	}
}

static void test_open_close_reopen(void **state)
{
	char path[PATH_MAX];
	cairn_db *db;
	struct stat sb;

	(void)state;
	db = fresh_db(path, sizeof(path), "reopen.db");
	assert_int_equal(stat(path, &sb), 0); /* created */
	exec_ok(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)");
	exec_ok(db, "INSERT INTO t VALUES (1, 'one'); INSERT INTO t VALUES (2, 'two')");
	cairn_db_close(db);

	db = open_db(path, NULL);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 2);
	exec_ok(db, "INSERT INTO t VALUES (3, 'three')");
	cairn_db_close(db);
	db = open_db(path, NULL);
	assert_int_equal(query_int(db, "SELECT sum(k) FROM t"), 6);
	cairn_db_close(db);

	/* In memory: a private database, gone at close. */
	db = open_db(":memory:", NULL);
	exec_ok(db, "CREATE TABLE t (k)");
	cairn_db_close(db);
	db = open_db(":memory:", NULL);
	assert_false(has_table(db, "t"));
	cairn_db_close(db);
}

static void test_open_errors(void **state)
{
	cairn_db_options ro = CAIRN_DB_OPTIONS_INIT;
	char path[PATH_MAX];
	cairn_db *db = (cairn_db *)1;

	(void)state;
	assert_int_equal(cairn_db_open(&db, "", NULL), CAIRN_EINVAL);
	assert_null(db);
	assert_int_equal(cairn_db_open(&db, NULL, NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_db_open(NULL, "x.db", NULL), CAIRN_EINVAL);

	assert_int_equal(cairn_db_open(&db, "postgres://db.example/cairn", NULL),
			 CAIRN_EUNSUPPORTED);
	assert_null(db);
	assert_contains(cairn_error_last(), "PostgreSQL");

	db_path(path, sizeof(path), "no/such/dir/x.db");
	assert_int_equal(cairn_db_open(&db, path, NULL), CAIRN_EIO);
	assert_null(db);
	assert_contains(cairn_error_last(), path);

	/* Read-only does not create. */
	db_path(path, sizeof(path), "missing.db");
	ro.read_only = true;
	assert_int_equal(cairn_db_open(&db, path, &ro), CAIRN_EIO);
	assert_null(db);
	assert_contains(cairn_error_last(), path);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_read_only(void **state)
{
	cairn_db_options ro = CAIRN_DB_OPTIONS_INIT;
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "ro.db");
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(put_shard(db, "a", 1, "p"), 0);
	cairn_db_close(db);

	ro.read_only = true;
	db = open_db(path, &ro);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), 1);
	/* Up to date: migrate reads and writes nothing. */
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(put_shard(db, "b", 1, "p"), CAIRN_EIO);
	assert_contains(cairn_error_last(), "readonly");
	/* SQLite grants BEGIN IMMEDIATE; the first write fails. */
	assert_int_equal(cairn_db_begin(db), 0);
	assert_int_equal(put_shard(db, "b", 1, "p"), CAIRN_EIO);
	assert_int_equal(cairn_db_rollback(db), 0);
	assert_released(db);
	cairn_db_close(db);
}

/* A relative path starting "file:" is a file name, not a URI. */
static void test_file_colon_path(void **state)
{
	char cwd[PATH_MAX], path[PATH_MAX];
	cairn_db *db;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	db = open_db("file:odd.db?mode=memory", NULL);
	exec_ok(db, "CREATE TABLE t (k)");
	cairn_db_close(db);
	db_path(path, sizeof(path), "file:odd.db?mode=memory");
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(chdir(cwd), 0);
}

/* ------------------------------------------------------------ migrations */

static void test_migrate_from_empty(void **state)
{
	char path[PATH_MAX];
	cairn_db *db;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	db = fresh_db(path, sizeof(path), "empty.db");
	assert_int_equal(version_of(db, "shards"), 0);
	assert_false(has_table(db, "schema_version")); /* reading made nothing */
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(version_of(db, "shards"), 3);
	assert_true(has_table(db, "shard"));
	assert_true(has_table(db, "shard_state"));
	assert_true(has_table(db, "shard_log"));
	assert_true(query_int(db, "SELECT updated_at FROM schema_version WHERE part = 'shards'") >=
		    now);
	/* Again: nothing to do. */
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(version_of(db, "shards"), 3);
	/* Parts are independent. */
	assert_int_equal(version_of(db, "other"), 0);
	assert_int_equal(cairn_db_migrate(db, "other", shard_steps, 0), 0);
	assert_int_equal(cairn_db_migrate(db, "other", NULL, 0), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version"), 1);
	cairn_db_close(db);

	db = open_db(path, NULL);
	assert_int_equal(version_of(db, "shards"), 3);
	cairn_db_close(db);
}

/* Builds a database at version `from` with data, then opens it with the
 * whole list: every later step runs and the data stays. */
static void upgrade_from(unsigned from)
{
	char path[PATH_MAX], name[32];
	cairn_db *db;

	snprintf(name, sizeof(name), "upgrade-%u.db", from);
	db = fresh_db(path, sizeof(path), name);
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, from), 0);
	assert_int_equal(version_of(db, "shards"), from);
	if (from >= 1)
		assert_int_equal(put_shard(db, "k1", 1, NULL), 0);
	if (from >= 2)
		assert_int_equal(put_shard(db, "k2", 2, "/p/2"), 0);
	cairn_db_close(db);

	db = open_db(path, NULL);
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(version_of(db, "shards"), 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), from >= 2 ? 2 : from);
	if (from >= 1)
		assert_int_equal(query_int(db, "SELECT count(*) FROM shard WHERE key = 'k1' "
					       "AND state = 1 AND path = ''"), 1);
	if (from >= 2)
		assert_int_equal(query_int(db, "SELECT count(*) FROM shard WHERE key = 'k2' "
					       "AND path = '/p/2'"), 1);
	/* Step 3 copied into the log every shard there when it ran. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard_log"), from == 3 ? 0 : from);
	assert_int_equal(put_shard(db, "k3", 3, "/p/3"), 0);
	cairn_db_close(db);
}

static void test_upgrade_from_every_version(void **state)
{
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	for (unsigned from = 0; from <= NSTEPS; from++)
		upgrade_from(from);

	/* One database through every version in turn: v1, reopen at v2,
	 * reopen with the whole list. */
	db = fresh_db(path, sizeof(path), "stepwise.db");
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, 1), 0);
	assert_int_equal(put_shard(db, "a", 1, NULL), 0);
	cairn_db_close(db);
	db = open_db(path, NULL);
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, 2), 0);
	assert_int_equal(version_of(db, "shards"), 2);
	assert_int_equal(put_shard(db, "b", 2, "/b"), 0);
	cairn_db_close(db);
	db = open_db(path, NULL);
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(version_of(db, "shards"), 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard_log"), 2);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard WHERE path = '/b'"), 1);
	cairn_db_close(db);
}

static void test_failing_step_rolls_back(void **state)
{
	static const cairn_db_migration bad[] = {
		{1, "CREATE TABLE shard (key TEXT PRIMARY KEY, state INTEGER NOT NULL);"},
		/* The first statement works, the second fails: neither stays. */
		{2, "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1);"},
	};
	static const cairn_db_migration dup[] = {
		{1, "CREATE TABLE shard (key TEXT PRIMARY KEY, state INTEGER NOT NULL);"},
		{2, "CREATE TABLE half (x); INSERT INTO shard VALUES ('a', 1);"},
	};
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "failing.db");
	assert_int_equal(cairn_db_migrate(db, "shards", bad, 2), CAIRN_ERROR);
	assert_contains(cairn_error_last(), "\"shards\" to version 2");
	assert_contains(cairn_error_last(), "no_such_table");
	assert_contains(cairn_error_last(), path);
	/* Step 1 committed on its own; step 2 left nothing. */
	assert_int_equal(version_of(db, "shards"), 1);
	assert_false(has_table(db, "half"));
	assert_released(db);

	/* Still usable: writes, and a failure keeps its own code. */
	assert_int_equal(put_shard(db, "a", 1, NULL), 0);
	assert_int_equal(cairn_db_migrate(db, "shards", dup, 2), CAIRN_EEXISTS);
	assert_int_equal(version_of(db, "shards"), 1);
	assert_false(has_table(db, "half"));
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), 1);

	/* The fixed list carries on from version 1. */
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(version_of(db, "shards"), 3);
	cairn_db_close(db);

	/* And after a reopen. */
	db = open_db(path, NULL);
	assert_int_equal(version_of(db, "shards"), 3);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard_log"), 1);
	cairn_db_close(db);
}

static void test_newer_version_refused(void **state)
{
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "newer.db");
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	cairn_db_close(db);

	db = open_db(path, NULL);
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, 2), CAIRN_EUNSUPPORTED);
	assert_contains(cairn_error_last(), "upgrade cairn");
	assert_contains(cairn_error_last(), "version 3");
	assert_contains(cairn_error_last(), path);
	assert_int_equal(version_of(db, "shards"), 3);
	assert_released(db);
	cairn_db_close(db);

	/* A version out of range in the table is damage. */
	db = open_db(path, NULL);
	exec_ok(db, "UPDATE schema_version SET version = -4 WHERE part = 'shards'");
	{
		unsigned v = 9;

		assert_int_equal(cairn_db_schema_version(&v, db, "shards"), CAIRN_ECORRUPT);
		assert_int_equal(v, 0);
	}
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), CAIRN_ECORRUPT);
	cairn_db_close(db);
}

static void test_steps_checked(void **state)
{
	static const cairn_db_migration gap[] = {{1, "CREATE TABLE a (x)"}, {3, "CREATE TABLE b (x)"}};
	static const cairn_db_migration late[] = {{2, "CREATE TABLE a (x)"}};
	static const cairn_db_migration zero[] = {{0, "CREATE TABLE a (x)"}};
	static const cairn_db_migration dup[] = {{1, "CREATE TABLE a (x)"}, {1, "CREATE TABLE b (x)"}};
	static const cairn_db_migration nosql[] = {{1, "CREATE TABLE a (x)"}, {2, NULL}};
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "steps.db");
	assert_int_equal(cairn_db_migrate(db, "p", gap, 2), CAIRN_EINVAL);
	assert_contains(cairn_error_last(), "step 2 has version 3");
	assert_int_equal(cairn_db_migrate(db, "p", late, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_db_migrate(db, "p", zero, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_db_migrate(db, "p", dup, 2), CAIRN_EINVAL);
	assert_int_equal(cairn_db_migrate(db, "p", nosql, 2), CAIRN_EINVAL);
	assert_int_equal(cairn_db_migrate(db, "p", NULL, 2), CAIRN_EINVAL);
	assert_int_equal(cairn_db_migrate(db, "", shard_steps, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_db_migrate(db, NULL, shard_steps, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_db_migrate(NULL, "p", shard_steps, 1), CAIRN_EINVAL);
	/* Nothing ran, not even step 1 of the list with a gap. */
	assert_false(has_table(db, "a"));
	assert_false(has_table(db, "schema_version"));

	/* Not inside a caller's transaction. */
	assert_int_equal(cairn_db_begin(db), 0);
	assert_int_equal(cairn_db_migrate(db, "p", shard_steps, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_db_rollback(db), 0);
	assert_released(db);
	cairn_db_close(db);
}

/* ------------------------------------------------------------ statements */

static void test_stmt_cache(void **state)
{
	static const char sql[] = "SELECT k FROM t WHERE k >= ?1 ORDER BY k";
	char copy[sizeof(sql)], buf[128];
	cairn_db_stmt *a, *b, *c;
	cairn_db *db;

	(void)state;
	db = open_db(":memory:", NULL);
	exec_ok(db, "CREATE TABLE t (k INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)");

	assert_int_equal(cairn_db_prepare(&a, db, sql), 0);
	cairn_db_reset(a);
	assert_int_equal(cairn_db_prepare(&b, db, sql), 0);
	assert_ptr_equal(a, b); /* same pointer: the same statement */
	cairn_db_reset(b);

	/* The same text at another address is another entry. */
	memcpy(copy, sql, sizeof(sql));
	assert_int_equal(cairn_db_prepare(&c, db, copy), 0);
	assert_ptr_not_equal(c, a);
	cairn_db_reset(c);

	/* Reset clears the parameters: unbound is NULL, and k >= NULL is no row. */
	assert_int_equal(cairn_db_prepare(&a, db, sql), 0);
	assert_int_equal(cairn_db_bind_int64(a, 1, 2), 0);
	assert_int_equal(cairn_db_step(a), 1);
	assert_int_equal(cairn_db_column_int64(a, 0), 2);
	cairn_db_reset(a);
	assert_int_equal(cairn_db_prepare(&a, db, sql), 0);
	assert_int_equal(cairn_db_step(a), 0);
	cairn_db_reset(a);

	/* Nested use of one string: the inner gets a statement of its own. */
	assert_int_equal(cairn_db_prepare(&a, db, sql), 0);
	assert_int_equal(cairn_db_bind_int64(a, 1, 1), 0);
	{
		int64_t outer = 0, inner = 0;
		int rc;

		while ((rc = cairn_db_step(a)) == 1) {
			outer += cairn_db_column_int64(a, 0);
			assert_int_equal(cairn_db_prepare(&b, db, sql), 0);
			assert_ptr_not_equal(b, a);
			assert_int_equal(cairn_db_bind_int64(b, 1, 3), 0);
			while (cairn_db_step(b) == 1)
				inner += cairn_db_column_int64(b, 0);
			cairn_db_reset(b);
		}
		assert_int_equal(rc, 0);
		assert_int_equal(outer, 6);
		assert_int_equal(inner, 9);
	}
	cairn_db_reset(a);
	/* ... and the cached one is still the cached one. */
	assert_int_equal(cairn_db_prepare(&b, db, sql), 0);
	assert_ptr_equal(a, b);
	cairn_db_reset(b);

	/* A buffer reused for other SQL is not mistaken for the old. */
	snprintf(buf, sizeof(buf), "SELECT 11");
	assert_int_equal(query_int(db, buf), 11);
	snprintf(buf, sizeof(buf), "SELECT 22");
	assert_int_equal(query_int(db, buf), 22);
	/* ... also while the old one is checked out. */
	snprintf(buf, sizeof(buf), "SELECT 33");
	assert_int_equal(cairn_db_prepare(&a, db, buf), 0);
	snprintf(buf, sizeof(buf), "SELECT 44");
	assert_int_equal(query_int(db, buf), 44);
	assert_int_equal(cairn_db_step(a), 1);
	assert_int_equal(cairn_db_column_int64(a, 0), 33);
	cairn_db_reset(a);
	assert_int_equal(query_int(db, buf), 44);

	/* Many strings: the cache grows, then past its bound statements are
	 * transient; all of them work. */
	{
		static char many[600][32];

		for (int round = 0; round < 2; round++)
			for (int i = 0; i < 600; i++) {
				snprintf(many[i], sizeof(many[i]), "SELECT %d", i);
				assert_int_equal(query_int(db, many[i]), i);
			}
	}
	assert_released(db);
	cairn_db_close(db);
}

static void test_bind_and_columns(void **state)
{
	static const char ins[] = "INSERT INTO v (i, t, b) VALUES (?1, ?2, ?3)";
	static const char sel[] = "SELECT i, t, b FROM v WHERE rowid = ?1";
	static const uint8_t bytes[] = {0, 1, 2, 0xff, 0};
	cairn_db_stmt *st;
	cairn_db *db;
	size_t len = 99;
	int64_t id;

	(void)state;
	db = open_db(":memory:", NULL);
	exec_ok(db, "CREATE TABLE v (i INTEGER, t TEXT, b BLOB)");

	assert_int_equal(cairn_db_prepare(&st, db, ins), 0);
	assert_int_equal(cairn_db_bind_int64(st, 1, INT64_MIN), 0);
	assert_int_equal(cairn_db_bind_text(st, 2, "héllo"), 0);
	assert_int_equal(cairn_db_bind_blob(st, 3, bytes, sizeof(bytes)), 0);
	assert_int_equal(cairn_db_step(st), 0);
	assert_int_equal(cairn_db_changes(st), 1);
	id = cairn_db_last_insert_id(st);
	assert_true(id > 0);
	cairn_db_reset(st);

	assert_int_equal(cairn_db_prepare(&st, db, sel), 0);
	assert_int_equal(cairn_db_bind_int64(st, 1, id), 0);
	assert_int_equal(cairn_db_step(st), 1);
	assert_int_equal(cairn_db_column_int64(st, 0), INT64_MIN);
	assert_string_equal(cairn_db_column_text(st, 1), "héllo");
	assert_memory_equal(cairn_db_column_blob(st, 2, &len), bytes, sizeof(bytes));
	assert_int_equal(len, sizeof(bytes));
	assert_false(cairn_db_column_is_null(st, 2));
	/* No such column: nothing, not a crash. */
	assert_true(cairn_db_column_is_null(st, 3));
	assert_null(cairn_db_column_text(st, 7));
	assert_int_equal(cairn_db_column_int64(st, -1), 0);
	assert_int_equal(cairn_db_step(st), 0);
	/* No row any more. */
	assert_null(cairn_db_column_text(st, 1));
	cairn_db_reset(st);

	/* NULLs and empties. */
	assert_int_equal(cairn_db_prepare(&st, db, ins), 0);
	assert_int_equal(cairn_db_bind_null(st, 1), 0);
	assert_int_equal(cairn_db_bind_text(st, 2, NULL), 0);
	assert_int_equal(cairn_db_bind_blob(st, 3, NULL, 0), 0);
	assert_int_equal(cairn_db_step(st), 0);
	id = cairn_db_last_insert_id(st);
	cairn_db_reset(st);
	assert_int_equal(cairn_db_prepare(&st, db, sel), 0);
	assert_int_equal(cairn_db_bind_int64(st, 1, id), 0);
	assert_int_equal(cairn_db_step(st), 1);
	assert_true(cairn_db_column_is_null(st, 0));
	assert_int_equal(cairn_db_column_int64(st, 0), 0);
	assert_true(cairn_db_column_is_null(st, 1));
	assert_null(cairn_db_column_text(st, 1));
	assert_false(cairn_db_column_is_null(st, 2)); /* an empty blob is not NULL */
	len = 99;
	assert_null(cairn_db_column_blob(st, 2, &len));
	assert_int_equal(len, 0);
	cairn_db_reset(st);

	/* Bad parameters. */
	assert_int_equal(cairn_db_prepare(&st, db, ins), 0);
	assert_int_equal(cairn_db_bind_int64(st, 0, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_db_bind_int64(st, 4, 1), CAIRN_EINVAL);
	assert_contains(cairn_error_last(), "no parameter 4");
	assert_int_equal(cairn_db_bind_blob(st, 3, NULL, 5), CAIRN_EINVAL);
	cairn_db_reset(st);
	/* A statement given back is not to be used. */
	assert_int_equal(cairn_db_bind_int64(st, 1, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_db_step(st), CAIRN_EINVAL);
	assert_int_equal(cairn_db_step(NULL), CAIRN_EINVAL);
	cairn_db_reset(st); /* twice: nothing */
	cairn_db_reset(NULL);

	/* changes counts an UPDATE's rows. */
	assert_int_equal(cairn_db_prepare(&st, db, "UPDATE v SET i = 5"), 0);
	assert_int_equal(cairn_db_step(st), 0);
	assert_int_equal(cairn_db_changes(st), 2);
	cairn_db_reset(st);
	assert_released(db);
	cairn_db_close(db);
}

static void test_prepare_errors(void **state)
{
	cairn_db_stmt *st = (cairn_db_stmt *)1;
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "prepare.db");
	assert_int_equal(cairn_db_prepare(&st, db, "SELEKT 1"), CAIRN_ERROR);
	assert_null(st);
	assert_contains(cairn_error_last(), path);
	assert_contains(cairn_error_last(), "SELEKT 1");
	assert_contains(cairn_error_last(), "syntax error");
	assert_int_equal(cairn_db_prepare(&st, db, "SELECT * FROM no_such"), CAIRN_ERROR);
	assert_contains(cairn_error_last(), "no such table");
	assert_int_equal(cairn_db_prepare(&st, db, "SELECT 1; SELECT 2"), CAIRN_EINVAL);
	assert_contains(cairn_error_last(), "more than one statement");
	assert_int_equal(cairn_db_prepare(&st, db, "  -- nothing\n"), CAIRN_EINVAL);
	assert_int_equal(cairn_db_prepare(&st, db, NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_db_prepare(NULL, db, "SELECT 1"), CAIRN_EINVAL);
	/* A trailing semicolon is fine. */
	assert_int_equal(query_int(db, "SELECT 7;  \n"), 7);
	/* Long SQL is cut in messages. */
	assert_int_equal(cairn_db_prepare(&st, db,
		"SELECT aaaaaaaaaa, bbbbbbbbbb,\n\n    cccccccccc, dddddddddd, eeeeeeeeee, ffffffffff, "
		"gggggggggg FROM nowhere"), CAIRN_ERROR);
	assert_contains(cairn_error_last(), "\"SELECT aaaaaaaaaa, bbbbbbbbbb, cccccccccc,");
	assert_contains(cairn_error_last(), "...\"");
	assert_int_equal(cairn_db_exec(db, "CREATE TABLE t (x); SELEKT"), CAIRN_ERROR);
	assert_int_equal(cairn_db_exec(db, NULL), CAIRN_EINVAL);
	assert_released(db);
	cairn_db_close(db);
}

static void test_constraints(void **state)
{
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "constraint.db");
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	assert_int_equal(put_shard(db, "a", 1, "/a"), 0);
	assert_int_equal(put_shard(db, "a", 2, "/a"), CAIRN_EEXISTS);
	assert_contains(cairn_error_last(), "UNIQUE constraint failed: shard.key");
	assert_contains(cairn_error_last(), path);
	/* Other constraints are bad arguments, not duplicates. */
	assert_int_equal(cairn_db_exec(db, "INSERT INTO shard (key, state) VALUES ('b', NULL)"),
			 CAIRN_EINVAL);
	assert_contains(cairn_error_last(), "NOT NULL");
	assert_int_equal(cairn_db_exec(db, "INSERT INTO shard_log (key, at) VALUES ('zz', 1)"),
			 CAIRN_EINVAL);
	assert_contains(cairn_error_last(), "FOREIGN KEY");
	/* Rowid tables: a duplicate INTEGER PRIMARY KEY. */
	assert_int_equal(cairn_db_exec(db, "INSERT INTO shard_log (id, key, at) VALUES (50, 'a', 1);"
					   "INSERT INTO shard_log (id, key, at) VALUES (50, 'a', 2)"),
			 CAIRN_EEXISTS);
	/* Foreign keys cascade. */
	exec_ok(db, "DELETE FROM shard WHERE key = 'a'");
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard_log"), 0);
	cairn_db_close(db);
}

/* ---------------------------------------------------------- transactions */

static void test_transactions(void **state)
{
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "txn.db");
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);

	assert_int_equal(cairn_db_begin(db), 0);
	assert_int_equal(put_shard(db, "a", 1, "/a"), 0);
	assert_int_equal(cairn_db_begin(db), CAIRN_EINVAL); /* no nesting */
	assert_int_equal(put_shard(db, "b", 1, "/b"), 0);
	assert_int_equal(cairn_db_rollback(db), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), 0);

	/* A failed statement undoes itself; the rest commits. */
	assert_int_equal(cairn_db_begin(db), 0);
	assert_int_equal(put_shard(db, "a", 1, "/a"), 0);
	assert_int_equal(put_shard(db, "a", 1, "/a"), CAIRN_EEXISTS);
	assert_int_equal(put_shard(db, "b", 1, "/b"), 0);
	assert_int_equal(cairn_db_commit(db), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), 2);

	assert_int_equal(cairn_db_commit(db), CAIRN_EINVAL);
	assert_contains(cairn_error_last(), "no transaction");
	assert_int_equal(cairn_db_rollback(db), CAIRN_EINVAL);
	assert_int_equal(cairn_db_begin(NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_db_commit(NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_db_rollback(NULL), CAIRN_EINVAL);

	/* A commit that fails (a deferred foreign key) rolls back and ends it. */
	exec_ok(db, "CREATE TABLE child (k TEXT REFERENCES shard (key) DEFERRABLE INITIALLY DEFERRED)");
	assert_int_equal(cairn_db_begin(db), 0);
	assert_int_equal(put_shard(db, "c", 1, "/c"), 0);
	exec_ok(db, "INSERT INTO child VALUES ('nope')");
	assert_int_equal(cairn_db_commit(db), CAIRN_EINVAL);
	assert_contains(cairn_error_last(), "FOREIGN KEY");
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard WHERE key = 'c'"), 0);
	assert_int_equal(cairn_db_rollback(db), CAIRN_EINVAL); /* already over */
	assert_released(db);

	/* Closing with a transaction open rolls it back. */
	assert_int_equal(cairn_db_begin(db), 0);
	assert_int_equal(put_shard(db, "d", 1, "/d"), 0);
	cairn_db_close(db);
	db = open_db(path, NULL);
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), 2);
	cairn_db_close(db);
}

typedef struct {
	char path[PATH_MAX];
	cairn_db *db;
	int rc;
	uint64_t ns;
} busy_arg;

static void *busy_begin(void *p)
{
	busy_arg *a = p;
	uint64_t t0 = cairn_time_ns();

	a->rc = cairn_db_begin(a->db);
	a->ns = cairn_time_ns() - t0;
	/* The transaction is this thread's: it ends it. */
	if (!a->rc)
		a->rc = cairn_db_commit(a->db);
	return NULL;
}

/* Two connections on one file: the second writer waits out the busy
 * timeout on BEGIN IMMEDIATE, then gets "locked by another process". */
static void test_busy_second_writer(void **state)
{
	cairn_db_options o = CAIRN_DB_OPTIONS_INIT;
	char path[PATH_MAX];
	cairn_db *a, *b;
	uint64_t t0, ns;
	int rc;

	(void)state;
	a = fresh_db(path, sizeof(path), "busy.db");
	assert_int_equal(cairn_db_migrate(a, "shards", shard_steps, NSTEPS), 0);
	o.busy_timeout_ms = 300;
	b = open_db(path, &o);

	assert_int_equal(cairn_db_begin(a), 0);
	assert_int_equal(put_shard(a, "a", 1, "/a"), 0);
	t0 = cairn_time_ns();
	rc = cairn_db_begin(b);
	ns = cairn_time_ns() - t0;
	assert_int_equal(rc, CAIRN_EIO);
	assert_contains(cairn_error_last(), "database is locked by another process");
	assert_contains(cairn_error_last(), path);
	assert_true(ns >= 250 * 1000000ull);
	/* A write outside a transaction waits and fails the same way. */
	assert_int_equal(put_shard(b, "b", 1, "/b"), CAIRN_EIO);
	/* Readers are not blocked (WAL) and see the last commit. */
	assert_int_equal(query_int(b, "SELECT count(*) FROM shard"), 0);
	assert_released(b);
	assert_int_equal(cairn_db_commit(a), 0);

	/* Once the first commits, the second gets its turn. */
	assert_int_equal(cairn_db_begin(b), 0);
	assert_int_equal(put_shard(b, "b", 1, "/b"), 0);
	assert_int_equal(cairn_db_commit(b), 0);
	assert_int_equal(query_int(a, "SELECT count(*) FROM shard"), 2);

	/* A writer that is released within the timeout goes through. */
	{
		busy_arg arg = {.db = b};
		pthread_t t;

		assert_int_equal(cairn_db_begin(a), 0);
		assert_int_equal(pthread_create(&t, NULL, busy_begin, &arg), 0);
		usleep(50 * 1000);
		assert_int_equal(cairn_db_commit(a), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(arg.rc, 0);
	}
	cairn_db_close(b);
	cairn_db_close(a);
}

/* Threads sharing one cairn_db: each transaction is its thread's alone. */
typedef struct {
	cairn_db *db;
	int id;
	int failures;
} worker_arg;

#define WORKERS 4
#define ROUNDS 200

static void *worker(void *p)
{
	static const char count_sql[] = "SELECT count(*) FROM shard WHERE state = ?1";
	worker_arg *a = p;
	char key[32];

	for (int i = 0; i < ROUNDS; i++) {
		cairn_db_stmt *st;
		int64_t before = -1, after = -1;

		snprintf(key, sizeof(key), "w%d-%d", a->id, i);
		if (cairn_db_begin(a->db)) {
			a->failures++;
			continue;
		}
		if (!cairn_db_prepare(&st, a->db, count_sql)) {
			cairn_db_bind_int64(st, 1, a->id);
			if (cairn_db_step(st) == 1)
				before = cairn_db_column_int64(st, 0);
			cairn_db_reset(st);
		}
		if (put_shard(a->db, key, a->id, "/x"))
			a->failures++;
		if (!cairn_db_prepare(&st, a->db, count_sql)) {
			cairn_db_bind_int64(st, 1, a->id);
			if (cairn_db_step(st) == 1)
				after = cairn_db_column_int64(st, 0);
			cairn_db_reset(st);
		}
		/* Nobody else's rows fall into this transaction. */
		if (before != i || after != i + 1)
			a->failures++;
		if (i % 3 == 2) {
			/* Rolled back: put it again outside a transaction. */
			if (cairn_db_rollback(a->db) || put_shard(a->db, key, a->id, "/x"))
				a->failures++;
		} else if (cairn_db_commit(a->db)) {
			a->failures++;
		}
	}
	return NULL;
}

static void test_threads_share_db(void **state)
{
	worker_arg args[WORKERS];
	pthread_t t[WORKERS];
	char path[PATH_MAX];
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "threads.db");
	assert_int_equal(cairn_db_migrate(db, "shards", shard_steps, NSTEPS), 0);
	for (int i = 0; i < WORKERS; i++) {
		args[i] = (worker_arg){db, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(query_int(db, "SELECT count(*) FROM shard"), WORKERS * ROUNDS);
	cairn_db_close(db);
}

/* ---------------------------------------------------------- damaged files */

static void write_garbage(const char *path, off_t off, size_t n)
{
	uint8_t buf[4096];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	assert_true(fd >= 0);
	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);

		for (size_t i = 0; i < k; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[i] = (uint8_t)x;
		}
		assert_int_equal(pwrite(fd, buf, k, off), (ssize_t)k);
		off += (off_t)k;
		n -= k;
	}
	close(fd);
}

static void test_corrupt_file(void **state)
{
	cairn_db_options ro = CAIRN_DB_OPTIONS_INIT;
	char path[PATH_MAX];
	cairn_db *db = (cairn_db *)1;

	(void)state;
	db_path(path, sizeof(path), "garbage.db");
	write_garbage(path, 0, 8192);
	assert_int_equal(cairn_db_open(&db, path, NULL), CAIRN_ECORRUPT);
	assert_null(db);
	assert_contains(cairn_error_last(), path);
	assert_contains(cairn_error_last(), "not a database");
	ro.read_only = true;
	assert_int_equal(cairn_db_open(&db, path, &ro), CAIRN_ECORRUPT);
	assert_contains(cairn_error_last(), path);

	/* A good header over damaged pages: found when they are read. */
	{
		cairn_db_stmt *st;
		int rc;

		db = fresh_db(path, sizeof(path), "damaged.db");
		exec_ok(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
		exec_ok(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
			    "WHERE i < 2000) INSERT INTO t SELECT i, randomblob(100) FROM n");
		cairn_db_close(db); /* the last close checkpoints the log into the file */
		write_garbage(path, 4096, 16 * 4096);
		db = open_db(path, NULL);
		assert_int_equal(cairn_db_prepare(&st, db, "SELECT sum(length(v)) FROM t"), 0);
		rc = cairn_db_step(st);
		cairn_db_reset(st);
		assert_int_equal(rc, CAIRN_ECORRUPT);
		assert_contains(cairn_error_last(), path);
		assert_contains(cairn_error_last(), "damaged");
		assert_released(db);
		cairn_db_close(db);
	}
}

/* ------------------------------------------------------------- failures */

/* Open, migrate, fill the statement cache past its first size, write and
 * read: 0 or the code of the first failure. */
static int scenario(const char *path)
{
	static char sqls[40][32];
	cairn_db_options o = CAIRN_DB_OPTIONS_INIT;
	cairn_db *db;
	int rc;

	o.sync = CAIRN_DB_SYNC_OFF; /* hundreds of runs: no fsync at each close */
	if ((rc = cairn_db_open(&db, path, &o)))
		return rc;
	if ((rc = cairn_db_migrate(db, "shards", shard_steps, NSTEPS)))
		goto out;
	if ((rc = cairn_db_begin(db)))
		goto out;
	for (int i = 0; i < 40 && !rc; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		rc = put_shard(db, key, i, "/p");
	}
	if (rc) {
		cairn_db_rollback(db);
		goto out;
	}
	if ((rc = cairn_db_commit(db)))
		goto out;
	for (int i = 0; i < 40 && !rc; i++) {
		cairn_db_stmt *st;

		snprintf(sqls[i], sizeof(sqls[i]), "SELECT count(*) + %d FROM shard", i);
		if ((rc = cairn_db_prepare(&st, db, sqls[i])))
			break;
		rc = cairn_db_step(st);
		if (rc == 1)
			rc = cairn_db_column_int64(st, 0) == 40 + i ? 0 : CAIRN_ERROR;
		cairn_db_reset(st);
	}
out:
	cairn_db_close(db);
	return rc;
}

static void remove_db(const char *path)
{
	char side[PATH_MAX + 8];

	remove(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	remove(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	remove(side);
}

static void test_alloc_failure(void **state)
{
	char path[PATH_MAX];
	int failed = 0;

	(void)state;
	db_path(path, sizeof(path), "alloc.db");
	for (long n = 1; n < 500; n++) {
		int rc;

		remove_db(path);
		cairn_alloc_fail_after(n, false);
		rc = scenario(path);
		cairn_alloc_fail_after(-1, false);
		if (!rc)
			break; /* the nth allocation never came */
		if (rc != CAIRN_ENOMEM)
			fail_msg("allocation %ld failing: %s", n, cairn_error_last());
		failed++;
	}
	assert_true(failed >= 50);
	remove_db(path);
	assert_int_equal(scenario(path), 0);
}

/* SQLite's own allocator, failing on demand (installed in main). */
static sqlite3_mem_methods real_mem;
static _Atomic long sqlite_countdown = -1;

static void *fail_malloc(int n)
{
	if (sqlite_countdown >= 0 && sqlite_countdown-- == 0)
		return NULL;
	return real_mem.xMalloc(n);
}

static void *fail_realloc(void *p, int n)
{
	if (sqlite_countdown >= 0 && sqlite_countdown-- == 0)
		return NULL;
	return real_mem.xRealloc(p, n);
}

static void test_sqlite_out_of_memory(void **state)
{
	char path[PATH_MAX];
	int nomem = 0;

	(void)state;
	db_path(path, sizeof(path), "sqlite-oom.db");
	for (long n = 0; n < 20000; n += 1 + n / 64) {
		int rc;

		remove_db(path);
		sqlite_countdown = n;
		rc = scenario(path);
		if (sqlite_countdown >= 0) {
			sqlite_countdown = -1;
			assert_int_equal(rc, 0);
			break; /* done before the nth allocation */
		}
		/* Some failures SQLite absorbs (a cache it does without). */
		if (rc == CAIRN_ENOMEM)
			nomem++;
		else if (rc)
			fail_msg("SQLite allocation %ld failing: %d %s", n, rc, cairn_error_last());
	}
	assert_true(nomem >= 50);
	remove_db(path);
	assert_int_equal(scenario(path), 0);
}

/* A transaction SQLite rolls back by itself (out of memory in a one-row
 * insert does that) is not continued statement by statement: what follows
 * is refused, and the commit fails having committed nothing. So after the
 * commit the table holds every row whose insert succeeded, or none. */
static void test_transaction_lost(void **state)
{
	static const char ins[] = "INSERT INTO t (v) VALUES (randomblob(3000))";
	char path[PATH_MAX];
	int lost = 0;
	cairn_db *db;

	(void)state;
	db = fresh_db(path, sizeof(path), "lost.db");
	exec_ok(db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");

	/* Ended by SQL run through exec. */
	assert_int_equal(cairn_db_begin(db), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM t"), 0);
	exec_ok(db, "ROLLBACK");
	assert_int_equal(cairn_db_exec(db, ins), CAIRN_EIO);
	assert_contains(cairn_error_last(), "no longer open");
	assert_int_equal(cairn_db_commit(db), CAIRN_EIO);
	assert_released(db);

	/* Rolled back by SQLite. */
	exec_ok(db, "PRAGMA cache_size = 8"); /* spill pages: more allocations */
	for (long n = 0; n < 5000; n += 1 + n / 32) {
		int64_t before = query_int(db, "SELECT count(*) FROM t"), ok = 0;
		bool fired;
		int rc;

		assert_int_equal(cairn_db_begin(db), 0);
		sqlite_countdown = n;
		for (int i = 0; i < 20; i++) {
			cairn_db_stmt *st;

			if (cairn_db_prepare(&st, db, ins))
				continue;
			if (!cairn_db_step(st))
				ok++;
			cairn_db_reset(st);
		}
		fired = sqlite_countdown < 0;
		sqlite_countdown = -1;
		rc = cairn_db_commit(db);
		if (rc) {
			assert_int_equal(query_int(db, "SELECT count(*) FROM t"), before);
			lost += rc == CAIRN_EIO && strstr(cairn_error_last(), "no longer open");
		} else {
			assert_int_equal(query_int(db, "SELECT count(*) FROM t"), before + ok);
		}
		if (!fired)
			break;
	}
	assert_true(lost > 0);
	assert_released(db);
	cairn_db_close(db);
}

/* A statement never reset: close finalizes it and says so. */
static void capture(cairn_log_level level, const char *msg, void *payload)
{
	(void)level;
	snprintf(payload, 256, "%s", msg);
}

static void test_close_with_held_statement(void **state)
{
	char logged[256] = "";
	cairn_db_stmt *st;
	cairn_db *db;

	(void)state;
	cairn_log_set_sink(capture, logged);
	db = open_db(":memory:", NULL);
	assert_int_equal(cairn_db_prepare(&st, db, "SELECT 1"), 0);
	assert_int_equal(cairn_db_step(st), 1);
	assert_int_equal(cairn_db_begin(db), 0);
	cairn_db_close(db);
	cairn_log_set_sink(NULL, NULL);
	assert_contains(logged, "not reset");
	assert_contains(logged, "SELECT 1");
}

/* ------------------------------------------------------------------ main */

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/cairn-test-db-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	sqlite_countdown = -1;
	cairn_log_set_sink(NULL, NULL);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_settings),
		cmocka_unit_test(test_open_close_reopen),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_file_colon_path),
		cmocka_unit_test(test_migrate_from_empty),
		cmocka_unit_test(test_upgrade_from_every_version),
		cmocka_unit_test(test_failing_step_rolls_back),
		cmocka_unit_test(test_newer_version_refused),
		cmocka_unit_test(test_steps_checked),
		cmocka_unit_test(test_stmt_cache),
		cmocka_unit_test(test_bind_and_columns),
		cmocka_unit_test(test_prepare_errors),
		cmocka_unit_test(test_constraints),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_busy_second_writer),
		cmocka_unit_test(test_threads_share_db),
		cmocka_unit_test(test_corrupt_file),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
		cmocka_unit_test_teardown(test_sqlite_out_of_memory, teardown),
		cmocka_unit_test_teardown(test_transaction_lost, teardown),
		cmocka_unit_test_teardown(test_close_with_held_statement, teardown),
	};
	sqlite3_mem_methods mem;

	/* Before any use of SQLite: its allocator, able to fail on demand. */
	if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real_mem) != SQLITE_OK)
		return 1;
	mem = real_mem;
	mem.xMalloc = fail_malloc;
	mem.xRealloc = fail_realloc;
	if (sqlite3_config(SQLITE_CONFIG_MALLOC, &mem) != SQLITE_OK)
		return 1;
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
