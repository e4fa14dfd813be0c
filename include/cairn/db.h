/* cairn/db.h: the metadata database of a cairn store: one connection (SQLite
 * now, a PostgreSQL backend later), schema migrations per part, statements. */
#ifndef CAIRN_DB_H
#define CAIRN_DB_H

#include "cairn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- overview
 *
 * A cairn_db is one connection to one database. Parts keep their SQL as
 * static strings beside their code, and their schema as a numbered list of
 * migration steps applied by cairn_db_migrate. Every function returns 0
 * (or 1 for a row from cairn_db_step) or a negative CAIRN_E*; the message
 * (cairn_error_last()) names the database file, the operation, a head of
 * the SQL and the database's own message.
 *
 * Errors of the database mapped to codes (every function below may return
 * these, beside the ones it lists):
 *   CAIRN_EEXISTS   a UNIQUE or PRIMARY KEY constraint failed
 *   CAIRN_EINVAL    another constraint failed (NOT NULL, CHECK, FOREIGN
 *                   KEY), or a bad argument or parameter index
 *   CAIRN_EIO       the file could not be read or written, the disk is
 *                   full, or "database is locked by another process": a
 *                   write lock was not granted within the busy timeout
 *   CAIRN_ECORRUPT  the file is not a database or is damaged (named)
 *   CAIRN_ENOMEM    out of memory
 *   CAIRN_ETOOBIG   a string or blob over the database's limit
 *   CAIRN_ERROR     an SQL error (a syntax error, no such table, ...)
 *
 * Threads. A cairn_db may be shared by threads: it holds a (recursive)
 * mutex, and a thread holds the connection
 *   - for the length of a call to cairn_db_exec, cairn_db_migrate and
 *     cairn_db_schema_version;
 *   - from cairn_db_prepare until cairn_db_reset of that statement;
 *   - from cairn_db_begin until cairn_db_commit or cairn_db_rollback.
 * Other threads' calls wait meanwhile (no timeout: a wait in the process is
 * a mutex hand-off, not SQLite's sleeping busy handler), so a
 * transaction or a statement belongs to the thread that began it and no
 * other thread's statements fall into it. Never wait on another thread that
 * uses the same cairn_db while holding it. Reads are serialized too; a part
 * that needs parallel reads opens a second cairn_db on the same file (WAL:
 * readers run beside the one writer). Connections contend only through the
 * file lock, with the busy timeout. Lock order: a part with a mutex of its
 * own takes the database first (begin or prepare, then its mutex), or
 * calls no cairn_db function while holding its mutex.
 */
typedef struct cairn_db cairn_db;
typedef struct cairn_db_stmt cairn_db_stmt;

/* -------------------------------------------------------- open and close */

/* When a commit reaches the disk. The journal is always WAL. */
typedef enum cairn_db_sync {
	/* The default. A commit is appended to the write-ahead log without an
	 * fsync; the log is fsynced before each checkpoint copies it into the
	 * database. A crash of the process loses nothing committed; a crash of
	 * the machine (power) may roll back the last commits, but never leaves
	 * half a transaction or a damaged file. An fsync per commit would cap
	 * single-row transactions at the disk's flush rate (a few hundred per
	 * second: bench/db/bench_db.c). */
	CAIRN_DB_SYNC_NORMAL = 0,
	/* An fsync of the log at every commit: durable when commit returns. */
	CAIRN_DB_SYNC_FULL,
	/* No fsync at all: a machine crash may damage the file. Tests and
	 * scratch databases only. */
	CAIRN_DB_SYNC_OFF,
} cairn_db_sync;

typedef struct cairn_db_options {
	/* How long a write (cairn_db_begin, or a statement outside a
	 * transaction) waits for another connection's write lock before it
	 * fails with CAIRN_EIO; 0 fails at once. Default 5000 ms. */
	unsigned busy_timeout_ms;
	cairn_db_sync sync;
	/* Opens an existing file for reading only: no WAL switch, and any
	 * write fails with CAIRN_EIO. */
	bool read_only;
} cairn_db_options;
#define CAIRN_DB_OPTIONS_INIT {5000, CAIRN_DB_SYNC_NORMAL, false}

/* Opens the SQLite database at `path`, creating the file if it is missing
 * (unless read_only), and sets WAL journaling, the sync level, the busy
 * timeout and foreign keys on. ":memory:" opens a private in-memory
 * database (tests). `opts` may be NULL for the defaults.
 * `*out` is owned by the caller (cairn_db_close); NULL on failure.
 * Returns 0, CAIRN_EIO (cannot open or create, or locked past the busy
 * timeout), CAIRN_ECORRUPT (not a database: the message names the file),
 * CAIRN_EUNSUPPORTED (a postgres:// URL: that backend is not built yet),
 * CAIRN_EINVAL (empty path) or CAIRN_ENOMEM.
 * Thread safety: any thread; the new cairn_db is the caller's. */
CAIRN_API int cairn_db_open(cairn_db **out, const char *path, const cairn_db_options *opts);

/* Finalizes every statement (a statement still held is finalized too: a
 * caller bug, logged), rolls back an open transaction and closes the
 * connection. NULL is accepted. No other thread may use `db` during or after. */
CAIRN_API void cairn_db_close(cairn_db *db);

/* The backend's name, "sqlite"; a part whose SQL differs between backends
 * picks its statements and migrations by it. Static string. */
CAIRN_API const char *cairn_db_backend(const cairn_db *db);
/* The path given to cairn_db_open. Borrowed: lives as long as `db`. */
CAIRN_API const char *cairn_db_path(const cairn_db *db);

/* ------------------------------------------------------------ migrations
 *
 * Each part owns a schema version, kept in the table
 *   schema_version(part TEXT PRIMARY KEY, version INTEGER NOT NULL,
 *                  updated_at INTEGER)   -- unix seconds
 * and a list of steps: step k (version k) takes the part's schema from
 * version k - 1 to k. A part's list only ever grows; a released step is
 * never edited (databases in the field have run it).
 */
typedef struct cairn_db_migration {
	unsigned version; /* 1, 2, ... in order */
	const char *sql;  /* one or more statements, run as a script */
} cairn_db_migration;

/* Brings `part` to version n: applies every step whose version is above
 * the part's current one (0 when it has none), in order, each in its own
 * transaction together with the new version in schema_version, so a crash
 * or a failing step leaves the part at the old version or the new one,
 * never half; the database stays usable after a failure. The version is
 * read again under the write lock, so two processes migrating at once
 * apply each step once. A database already at version n is not written.
 * Step SQL runs with foreign keys on.
 * Returns 0; CAIRN_EINVAL when steps are not numbered 1..n in order, have
 * a NULL sql, or `part` is empty, or inside a transaction;
 * CAIRN_EUNSUPPORTED when the database's version for `part` is above n (it
 * was written by a newer cairn: the message says to upgrade); a failed
 * step's own code (the message names the part and the version).
 * Thread safety: holds the connection for the whole call. */
CAIRN_API int cairn_db_migrate(cairn_db *db, const char *part,
			       const cairn_db_migration *steps, size_t n);

/* The current schema version of `part`: 0 when it has none.
 * Returns 0, or CAIRN_ECORRUPT for a stored version out of range. */
CAIRN_API int cairn_db_schema_version(unsigned *version_out, cairn_db *db, const char *part);

/* ------------------------------------------------------------ statements */

/* Runs `sql`, one or more statements separated by ';' (a schema script):
 * rows they return are dropped. Holds the connection for the call. */
CAIRN_API int cairn_db_exec(cairn_db *db, const char *sql);

/* Checks out the prepared statement for `sql` (exactly one statement) to
 * the calling thread, which holds the connection until cairn_db_reset.
 * Statements are cached per connection keyed by the address of `sql`: a
 * part keeps its SQL in static strings, and the second prepare of the same
 * string is a lookup (same cairn_db_stmt, already compiled). A cache hit
 * also compares the text, so a string built at a reused address is not
 * mistaken for another; SQL built at run time is still better run once.
 * The cache holds at most 256 statements; past that, and when the cached
 * statement for `sql` is already checked out (nested use of one string),
 * a statement of its own is compiled and finalized at reset.
 * `*out` is borrowed from `db` until cairn_db_reset(*out); NULL on failure.
 * Returns 0, CAIRN_ERROR (SQL error), CAIRN_EINVAL (empty SQL or more than
 * one statement: use cairn_db_exec), CAIRN_ENOMEM. */
CAIRN_API int cairn_db_prepare(cairn_db_stmt **out, cairn_db *db, const char *sql);

/* Parameters are numbered from 1 (`?1` or the first `?`), as in SQL.
 * Text and blobs are copied: the caller's bytes need not outlive the call.
 * A NULL text binds SQL NULL; a NULL blob with len 0 binds an empty blob.
 * Return 0, CAIRN_EINVAL (no such parameter, or a statement not checked
 * out), CAIRN_ETOOBIG, CAIRN_ENOMEM. */
CAIRN_API int cairn_db_bind_int64(cairn_db_stmt *st, int idx, int64_t v);
CAIRN_API int cairn_db_bind_text(cairn_db_stmt *st, int idx, const char *s);
CAIRN_API int cairn_db_bind_blob(cairn_db_stmt *st, int idx, const void *p, size_t len);
CAIRN_API int cairn_db_bind_null(cairn_db_stmt *st, int idx);

/* Runs the statement to its next row: 1 when a row is ready for the
 * column functions, 0 when done, or a negative code (the table at the top:
 * CAIRN_EEXISTS for a duplicate key, CAIRN_EIO when locked, ...). A failed
 * statement inside a transaction usually undoes only itself and the
 * transaction stays open for the caller to commit or roll back; after some
 * errors (out of memory, an I/O error, a full disk) SQLite rolls back the
 * whole transaction, the message says so, and every later step, exec and
 * commit in it fail with CAIRN_EIO ("the transaction is no longer open")
 * until cairn_db_rollback, rather than commit what follows on its own. */
CAIRN_API int cairn_db_step(cairn_db_stmt *st);

/* Columns of the current row, numbered from 0. Values convert as SQL
 * does (a NULL reads as 0, "" or no bytes). Pointers are borrowed: valid
 * until the next cairn_db_step or cairn_db_reset of `st`. */
CAIRN_API int64_t cairn_db_column_int64(cairn_db_stmt *st, int col);
/* NUL-terminated; NULL for SQL NULL. */
CAIRN_API const char *cairn_db_column_text(cairn_db_stmt *st, int col);
/* `*len_out` gets the length; NULL (and 0) for SQL NULL or an empty blob. */
CAIRN_API const uint8_t *cairn_db_column_blob(cairn_db_stmt *st, int col, size_t *len_out);
CAIRN_API bool cairn_db_column_is_null(cairn_db_stmt *st, int col);

/* Rows inserted, updated or deleted by the statement's last step, and the
 * rowid of the last row inserted on the connection. Call them before
 * cairn_db_reset, while the statement is held. */
CAIRN_API int64_t cairn_db_changes(const cairn_db_stmt *st);
CAIRN_API int64_t cairn_db_last_insert_id(const cairn_db_stmt *st);

/* Resets `st`, clears its parameters, gives it back to the cache and
 * releases the connection. `st` must not be used after (prepare again).
 * Call it after every prepare, whatever step returned. NULL is accepted. */
CAIRN_API void cairn_db_reset(cairn_db_stmt *st);

/* ---------------------------------------------------------- transactions
 *
 * cairn_db_begin takes the database's write lock at once (BEGIN IMMEDIATE
 * in SQLite), waiting up to the busy timeout for another connection's;
 * then the calling thread holds the connection until commit or rollback.
 * Transactions do not nest.
 */
/* Returns 0, CAIRN_EIO ("database is locked by another process" after the
 * busy timeout), CAIRN_EINVAL (this thread already has one open). */
CAIRN_API int cairn_db_begin(cairn_db *db);
/* Ends the transaction either way: a commit that fails is rolled back and
 * its code returned (CAIRN_EIO, also when SQLite had already rolled it
 * back; CAIRN_EINVAL for a deferred foreign-key violation). CAIRN_EINVAL
 * without a transaction. */
CAIRN_API int cairn_db_commit(cairn_db *db);
/* Returns 0, or CAIRN_EINVAL without a transaction. */
CAIRN_API int cairn_db_rollback(cairn_db *db);

#ifdef __cplusplus
}
#endif
#endif
