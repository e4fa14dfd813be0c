/* sqlite.c: the SQLite backend of the db part: the connection's settings,
 * statements, and SQLite's result codes as cairn's.
 *
 * Settings, and why:
 *   journal_mode = WAL    readers never block the writer or each other, a
 *                         commit is one append to the log, and a torn
 *                         write of the log is detected by its checksums
 *                         and ignored at recovery. Needs shared memory:
 *                         not on a network file system.
 *   synchronous = NORMAL  (the default; cairn_db_options.sync) a commit is
 *                         not fsynced, the log is before each checkpoint
 *                         (every 1000 pages by default). Atomic and never
 *                         damaged on any crash; a power loss may roll back
 *                         the last commits, a crash of the process loses
 *                         nothing. FULL fsyncs each commit, which bounds a
 *                         one-row transaction by the disk's flush latency.
 *                         Set explicitly: Debian builds SQLite with
 *                         DEFAULT_WAL_SYNCHRONOUS=2 (FULL).
 *   busy_timeout          how long a write waits for another connection's
 *                         lock, in SQLite's busy handler.
 *   foreign_keys = ON     SQLite leaves them off by default, per connection.
 *   extended result codes to tell a UNIQUE failure (CAIRN_EEXISTS) from
 *                         NOT NULL or CHECK (CAIRN_EINVAL).
 *
 * SQLite allocates with its own allocator, not cairn_malloc: the allocator
 * is process-wide (sqlite3_config) and must be set before any use of
 * SQLite in the process, which a library cannot claim. Its SQLITE_NOMEM is
 * CAIRN_ENOMEM.
 *
 * The path: SQLite is built with URI names on, so a relative path starting
 * "file:" is opened as "./file:..." to stay a path.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db/db_i.h"

static sqlite3 *conn_of(const cairn_db *db)
{
	return db->conn;
}

static sqlite3_stmt *h_of(const cairn_db_stmt *st)
{
	return st->h;
}

/* ---------------------------------------------------------------- errors */

static int code_of(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_ROWID:
		return CAIRN_EEXISTS;
	default:
		break;
	}
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return CAIRN_EINVAL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return CAIRN_ECORRUPT;
	case SQLITE_NOMEM:
		return CAIRN_ENOMEM;
	case SQLITE_TOOBIG:
		return CAIRN_ETOOBIG;
	case SQLITE_INTERRUPT:
		return CAIRN_ECANCELED;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_PROTOCOL:
	case SQLITE_NOLFS:
	case SQLITE_AUTH:
		return CAIRN_EIO;
	default:
		return CAIRN_ERROR; /* SQLITE_ERROR: SQL errors; SQLITE_SCHEMA ... */
	}
}

/* SQLite's `rc` as a cairn code, the message naming the file and `what`. */
static int fail(const cairn_db *db, int rc, const char *what)
{
	sqlite3 *c = conn_of(db);
	const char *msg = c ? sqlite3_errmsg(c) : sqlite3_errstr(rc);
	int code = code_of(rc);

	if ((rc & 0xff) == SQLITE_BUSY)
		return cairn_error_set(code,
			"db %s: %s: database is locked by another process (waited %u ms): %s",
			db->path, what, db->opts.busy_timeout_ms, msg);
	if (code == CAIRN_ECORRUPT)
		return cairn_error_set(code, "db %s: %s: the file is damaged or not a database: %s",
				       db->path, what, msg);
	return cairn_error_set(code, "db %s: %s: %s", db->path, what, msg);
}

/* As fail, `what` being the operation and the head of the statement. */
static int fail_stmt(const cairn_db_stmt *st, int rc, const char *op)
{
	char head[64], what[96];

	cairn_db__sql_head(head, sizeof(head), st->sql);
	snprintf(what, sizeof(what), "%s \"%s\"", op, head);
	return fail(st->db, rc, what);
}

/* ------------------------------------------------------------ connection */

static int pragma_journal_wal(cairn_db *db)
{
	static const char sql[] = "PRAGMA journal_mode = WAL";
	sqlite3_stmt *h = NULL;
	const char *mode;
	int rc;

	if ((rc = sqlite3_prepare_v2(conn_of(db), sql, -1, &h, NULL)) ||
	    (rc = sqlite3_step(h)) != SQLITE_ROW) {
		rc = fail(db, rc, "set the WAL journal");
		sqlite3_finalize(h);
		return rc;
	}
	mode = (const char *)sqlite3_column_text(h, 0);
	/* An in-memory database keeps its "memory" journal. */
	if (!mode || (strcmp(mode, "wal") && strcmp(db->path, ":memory:"))) {
		rc = cairn_error_set(CAIRN_EIO,
			"db %s: cannot use a WAL journal here (the journal is \"%s\"): is it on a "
			"network file system?", db->path, mode ? mode : "?");
		sqlite3_finalize(h);
		return rc;
	}
	sqlite3_finalize(h);
	return 0;
}

static int sq_exec(cairn_db *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(conn_of(db), sql, NULL, NULL, NULL);

	return rc ? fail(db, rc, what) : 0;
}

static int sq_open(cairn_db *db)
{
	static const char *const sync_sql[] = {
		[CAIRN_DB_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
		[CAIRN_DB_SYNC_FULL] = "PRAGMA synchronous = FULL",
		[CAIRN_DB_SYNC_OFF] = "PRAGMA synchronous = OFF",
	};
	int flags = SQLITE_OPEN_NOMUTEX;
	char *dotted = NULL;
	const char *name = db->path;
	sqlite3 *c = NULL;
	int rc;

#ifdef SQLITE_OPEN_EXRESCODE
	flags |= SQLITE_OPEN_EXRESCODE;
#endif
	flags |= db->opts.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (!strncmp(name, "file:", 5)) {
		size_t n = strlen(name);

		if (!(dotted = cairn_malloc(n + 3)))
			return CAIRN_ENOMEM;
		memcpy(dotted, "./", 2);
		memcpy(dotted + 2, name, n + 1);
		name = dotted;
	}
	rc = sqlite3_open_v2(name, &c, flags, NULL);
	cairn_free(dotted);
	/* Even a failed open may give a handle, holding the message. */
	db->conn = c;
	if (rc)
		return fail(db, rc, db->opts.read_only ? "open for reading" : "open or create");
	sqlite3_extended_result_codes(c, 1);
	sqlite3_busy_timeout(c, db->opts.busy_timeout_ms > (unsigned)INT32_MAX ?
				INT32_MAX : (int)db->opts.busy_timeout_ms);
	/* The sync level first: switching a new file to WAL writes it. */
	if ((rc = sq_exec(db, sync_sql[db->opts.sync], "set synchronous")))
		return rc;
	/* The first read of the file: a file that is not a database fails here. */
	if (db->opts.read_only)
		rc = sq_exec(db, "SELECT count(*) FROM sqlite_master", "read the schema");
	else
		rc = pragma_journal_wal(db);
	if (rc || (rc = sq_exec(db, "PRAGMA foreign_keys = ON", "turn foreign keys on")))
		return rc;
	return 0;
}

static void sq_close(cairn_db *db)
{
	int rc = sqlite3_close_v2(conn_of(db));

	if (rc)
		cairn_log(CAIRN_LOG_WARN, "db %s: close: %s", db->path, sqlite3_errstr(rc));
	db->conn = NULL;
}

static bool sq_in_txn(cairn_db *db)
{
	return !sqlite3_get_autocommit(conn_of(db));
}

/* ------------------------------------------------------------ statements */

static int sq_prepare(void **h_out, cairn_db *db, const char *sql)
{
	sqlite3_stmt *h = NULL;
	const char *tail = NULL;
	char head[64], what[96];
	int rc;

	*h_out = NULL;
	cairn_db__sql_head(head, sizeof(head), sql);
	snprintf(what, sizeof(what), "prepare \"%s\"", head);
	/* PERSISTENT: cached statements live as long as the connection. */
	rc = sqlite3_prepare_v3(conn_of(db), sql, -1, SQLITE_PREPARE_PERSISTENT, &h, &tail);
	if (rc)
		return fail(db, rc, what);
	if (!h)
		return cairn_error_set(CAIRN_EINVAL, "db %s: %s: no statement in the SQL", db->path,
				       what);
	while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r'))
		tail++;
	if (tail && *tail) {
		sqlite3_finalize(h);
		return cairn_error_set(CAIRN_EINVAL,
			"db %s: %s: more than one statement: run scripts with cairn_db_exec",
			db->path, what);
	}
	*h_out = h;
	return 0;
}

static void sq_finalize(void *h)
{
	sqlite3_finalize(h);
}

static int sq_bind(cairn_db_stmt *st, int idx, const db_value *v)
{
	sqlite3_stmt *h = h_of(st);
	int rc;

	if (idx < 1 || idx > sqlite3_bind_parameter_count(h))
		return cairn_error_set(CAIRN_EINVAL,
			"db %s: bind: no parameter %d (the statement has %d)", st->db->path, idx,
			sqlite3_bind_parameter_count(h));
	switch (v->kind) {
	case DB_INT64:
		rc = sqlite3_bind_int64(h, idx, v->i);
		break;
	case DB_TEXT:
		rc = sqlite3_bind_text64(h, idx, v->p, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
		break;
	case DB_BLOB:
		/* bind_blob of a NULL pointer would bind SQL NULL. */
		rc = v->len ? sqlite3_bind_blob64(h, idx, v->p, v->len, SQLITE_TRANSIENT)
			    : sqlite3_bind_zeroblob(h, idx, 0);
		break;
	default:
		rc = sqlite3_bind_null(h, idx);
		break;
	}
	return rc ? fail_stmt(st, rc, "bind") : 0;
}

static int sq_step(cairn_db_stmt *st)
{
	int rc = sqlite3_step(h_of(st));

	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return fail_stmt(st, rc, "step");
}

static void sq_column(db_value *out, cairn_db_stmt *st, int col, db_kind want)
{
	sqlite3_stmt *h = h_of(st);

	/* No row, or no such column: SQLite leaves that undefined. */
	if (col >= sqlite3_data_count(h) || sqlite3_column_type(h, col) == SQLITE_NULL)
		return;
	out->kind = want;
	switch (want) {
	case DB_INT64:
		out->i = sqlite3_column_int64(h, col);
		break;
	case DB_TEXT:
		out->p = sqlite3_column_text(h, col);
		out->len = (size_t)sqlite3_column_bytes(h, col);
		if (!out->p) /* out of memory converting */
			out->kind = DB_NULL;
		break;
	case DB_BLOB:
		out->p = sqlite3_column_blob(h, col);
		out->len = out->p ? (size_t)sqlite3_column_bytes(h, col) : 0;
		break;
	default:
		out->kind = DB_INT64; /* anything but NULL: the caller asks only that */
		break;
	}
}

static void sq_reset(cairn_db_stmt *st)
{
	sqlite3_reset(h_of(st));
	sqlite3_clear_bindings(h_of(st));
}

static int64_t sq_changes(const cairn_db_stmt *st)
{
	return sqlite3_changes64(conn_of(st->db));
}

static int64_t sq_last_insert_id(const cairn_db_stmt *st)
{
	return sqlite3_last_insert_rowid(conn_of(st->db));
}

const cairn_db_ops cairn_db__sqlite_ops = {
	.name = "sqlite",
	.sql_begin = "BEGIN IMMEDIATE",
	.sql_commit = "COMMIT",
	.sql_rollback = "ROLLBACK",
	.sql_version_table =
		"CREATE TABLE IF NOT EXISTS schema_version ("
		" part TEXT PRIMARY KEY,"
		" version INTEGER NOT NULL,"
		" updated_at INTEGER)",
	.sql_version_exists =
		"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
	.sql_version_get = "SELECT version FROM schema_version WHERE part = ?1",
	.sql_version_set =
		"INSERT INTO schema_version (part, version, updated_at) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (part) DO UPDATE SET version = excluded.version,"
		" updated_at = excluded.updated_at",
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.bind = sq_bind,
	.step = sq_step,
	.column = sq_column,
	.reset = sq_reset,
	.changes = sq_changes,
	.last_insert_id = sq_last_insert_id,
	.in_txn = sq_in_txn,
};
