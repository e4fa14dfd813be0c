/* db.c: the metadata database's connection: open and close, the statement
 * cache, the statement and transaction calls, over a backend's operations.
 *
 * Layers. This file is the part of the db part that every backend shares:
 * argument checks, the lock, the statement cache and the transaction
 * state. What differs between databases (the calls, the error codes, the
 * db part's own SQL) is a table of operations in db_i.h; sqlite.c fills it.
 * A PostgreSQL backend would fill a second table over libpq and be chosen
 * by a postgres:// path, leaving this file and every part's calls as they
 * are; parts whose SQL differs pick it by cairn_db_backend().
 *
 * Threads. One connection per cairn_db, one recursive mutex around it.
 * SQLite allows a single writer per database, so several connections in
 * one process would only queue on the file lock, and SQLite's busy
 * handler waits by sleeping (1, 2, 5, 10 ... 100 ms), which costs a
 * waiting writer far more than a mutex hand-off. The mutex is held by a
 * thread from prepare to reset and from begin to commit or rollback,
 * because the connection's state between those calls (the row being read,
 * the open transaction, the changes count) is the holding thread's: a
 * mutex taken per call would let another thread's insert fall into this
 * thread's transaction. Recursive, so the holder may prepare a second
 * statement while it reads the first, and begin, exec and migrate may use
 * statements inside. The connection is opened without SQLite's own mutex
 * (SQLITE_OPEN_NOMUTEX): ours already serializes every use.
 *
 * The statement cache. Parts keep SQL in static strings, so the string's
 * address is a key as good as its text and cheaper: open addressing on the
 * pointer, grown at 3/4 full, at most CACHE_MAX statements. A hit compares
 * the text with the copy kept at prepare (a string built at an address
 * used before by other SQL gets its own statement, the stale one is
 * finalized). A statement is checked out (in_use) from prepare to reset;
 * a prepare of a string whose statement is checked out (the same query
 * nested in its own loop) compiles a transient statement, finalized at
 * reset, as is everything past CACHE_MAX.
 *
 * Failures. A failed prepare releases the lock and leaves nothing checked
 * out. A failed step leaves the statement checked out: the caller resets
 * it. A failed commit rolls back, so after commit or rollback returns, no
 * transaction is open and the lock is released. A transaction SQLite has
 * rolled back by itself (after out of memory, an I/O error, a full disk)
 * is refused from then on (txn_lost): otherwise each later statement would
 * commit alone, and the caller's commit would find half its work stored.
 */
#include <stdio.h>
#include <string.h>

#include "db/db_i.h"

#define CACHE_MAX 256
#define CACHE_MIN_SLOTS 16

/* ------------------------------------------------------------------ lock */

/* A token unique to each live thread: the address of a thread-local. */
static uintptr_t self_token(void)
{
	static _Thread_local char token;

	return (uintptr_t)&token;
}

void cairn_db__lock(cairn_db *db)
{
	pthread_mutex_lock(&db->lock);
	db->depth++;
	db->owner = self_token();
}

void cairn_db__unlock(cairn_db *db)
{
	if (!--db->depth)
		db->owner = 0;
	pthread_mutex_unlock(&db->lock);
}

void cairn_db__sql_head(char *out, size_t n, const char *sql)
{
	const char *p = sql;
	size_t j = 0;
	bool space = false;

	if (!n)
		return;
	/* Whitespace runs become one space, so a multi-line statement reads
	 * as one line in the message. */
	for (; *p && j + 4 < n && j < 60; p++) {
		if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
			space = j > 0;
			continue;
		}
		if (space)
			out[j++] = ' ';
		space = false;
		out[j++] = *p;
	}
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	if (*p && j + 4 <= n) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

/* ------------------------------------------------------------ open/close */

static bool is_postgres(const char *path)
{
	return !strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13);
}

int cairn_db_open(cairn_db **out, const char *path, const cairn_db_options *opts)
{
	cairn_db_options defaults = CAIRN_DB_OPTIONS_INIT;
	pthread_mutexattr_t attr;
	cairn_db *db;
	int rc;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "db: open: no place for the result");
	*out = NULL;
	if (!path || !*path)
		return cairn_error_set(CAIRN_EINVAL, "db: open: empty path");
	if (is_postgres(path))
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"db %s: the PostgreSQL backend is not built yet: use a SQLite file path", path);
	if (opts && (unsigned)opts->sync > CAIRN_DB_SYNC_OFF)
		return cairn_error_set(CAIRN_EINVAL, "db %s: open: unknown sync level %d", path,
				       (int)opts->sync);
	if (!(db = cairn_calloc(1, sizeof(*db))))
		return CAIRN_ENOMEM;
	if (!(db->path = cairn_strndup(path, strlen(path)))) {
		cairn_free(db);
		return CAIRN_ENOMEM;
	}
	db->opts = opts ? *opts : defaults;
	db->ops = &cairn_db__sqlite_ops;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init(&db->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rc) {
		cairn_free(db->path);
		cairn_free(db);
		return cairn_error_set(CAIRN_ENOMEM, "db %s: open: cannot make a mutex", path);
	}
	if ((rc = db->ops->open(db))) {
		cairn_db_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

static void stmt_unlink(cairn_db_stmt *st)
{
	cairn_db *db = st->db;

	if (st->prev)
		st->prev->next = st->next;
	else
		db->all = st->next;
	if (st->next)
		st->next->prev = st->prev;
}

static void stmt_free(cairn_db_stmt *st)
{
	stmt_unlink(st);
	st->db->ops->finalize(st->h);
	cairn_free(st->sql);
	cairn_free(st);
}

void cairn_db_close(cairn_db *db)
{
	if (!db)
		return;
	while (db->all) {
		if (db->all->in_use) {
			char head[64];

			cairn_db__sql_head(head, sizeof(head), db->all->sql);
			cairn_log(CAIRN_LOG_WARN, "db %s: closed with a statement not reset: %s",
				  db->path, head);
		}
		stmt_free(db->all);
	}
	/* Closing rolls back a transaction left open. */
	if (db->conn)
		db->ops->close(db);
	/* Holds left by this thread (a statement not reset, a transaction
	 * not ended) are released, so the mutex is destroyed unlocked. */
	while (db->depth && db->owner == self_token())
		cairn_db__unlock(db);
	pthread_mutex_destroy(&db->lock);
	cairn_free(db->slots);
	cairn_free(db->path);
	cairn_free(db);
}

const char *cairn_db_backend(const cairn_db *db)
{
	return db ? db->ops->name : "";
}

const char *cairn_db_path(const cairn_db *db)
{
	return db ? db->path : "";
}

/* --------------------------------------------------------------- cache */

static size_t slot_of(const cairn_db *db, const char *key)
{
	uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;

	/* nslots is a power of two; the high bits are the best mixed. */
	return (size_t)(h >> 32) & (db->nslots - 1);
}

/* The slot holding `key`, or the empty one where it would go. */
static cairn_db_stmt **cache_find(cairn_db *db, const char *key)
{
	size_t i = slot_of(db, key);

	while (db->slots[i] && db->slots[i]->key != key)
		i = (i + 1) & (db->nslots - 1);
	return &db->slots[i];
}

/* Room for one more entry; on failure the cache is as it was. */
static int cache_reserve(cairn_db *db)
{
	cairn_db_stmt **old = db->slots;
	size_t n = db->nslots, want = n ? n * 2 : CACHE_MIN_SLOTS;

	if (n && (db->ncached + 1) * 4 <= n * 3)
		return 0;
	if (!(db->slots = cairn_calloc(want, sizeof(*db->slots)))) {
		db->slots = old;
		return CAIRN_ENOMEM;
	}
	db->nslots = want;
	for (size_t i = 0; i < n; i++)
		if (old[i])
			*cache_find(db, old[i]->key) = old[i];
	cairn_free(old);
	return 0;
}

/* A new statement for `sql`, in the list of all, not yet cached. */
static int stmt_new(cairn_db_stmt **out, cairn_db *db, const char *sql)
{
	cairn_db_stmt *st;
	int rc;

	if (!(st = cairn_calloc(1, sizeof(*st))))
		return CAIRN_ENOMEM;
	if (!(st->sql = cairn_strndup(sql, strlen(sql)))) {
		cairn_free(st);
		return CAIRN_ENOMEM;
	}
	if ((rc = db->ops->prepare(&st->h, db, sql))) {
		cairn_free(st->sql);
		cairn_free(st);
		return rc;
	}
	st->db = db;
	st->key = sql;
	st->next = db->all;
	if (db->all)
		db->all->prev = st;
	db->all = st;
	*out = st;
	return 0;
}

/* Under the lock: the statement for `sql`, checked out. On failure the
 * cache is as it was. */
static int checkout(cairn_db_stmt **out, cairn_db *db, const char *sql)
{
	cairn_db_stmt **slot, *old, *st;
	int rc;

	if (!db->nslots && (rc = cache_reserve(db)))
		return rc;
	slot = cache_find(db, sql);
	old = *slot;
	if (old && !strcmp(old->sql, sql)) {
		if (!old->in_use) {
			old->in_use = true;
			*out = old;
			return 0;
		}
		slot = NULL; /* nested use of one string: a transient one */
	} else if (old) {
		/* The address now holds other SQL: the new statement takes the
		 * stale one's slot (same key), so nothing is deleted from the
		 * open addressing. */
	} else if (db->ncached >= CACHE_MAX) {
		slot = NULL;
	} else {
		if ((rc = cache_reserve(db)))
			return rc;
		slot = cache_find(db, sql); /* the table may have moved */
	}
	if ((rc = stmt_new(&st, db, sql)))
		return rc;
	if (slot) {
		if (!old)
			db->ncached++;
		else if (old->in_use)
			old->cached = false; /* its holder finalizes it at reset */
		else
			stmt_free(old);
		st->cached = true;
		*slot = st;
	}
	st->in_use = true;
	*out = st;
	return 0;
}

int cairn_db_prepare(cairn_db_stmt **out, cairn_db *db, const char *sql)
{
	int rc;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "db: prepare: no place for the result");
	*out = NULL;
	if (!db || !sql)
		return cairn_error_set(CAIRN_EINVAL, "db: prepare: no database or no SQL");
	cairn_db__lock(db);
	if ((rc = checkout(out, db, sql))) {
		*out = NULL;
		cairn_db__unlock(db);
		return rc;
	}
	/* The lock stays held until cairn_db_reset. */
	return 0;
}

void cairn_db_reset(cairn_db_stmt *st)
{
	cairn_db *db;

	if (!st || !st->in_use)
		return;
	db = st->db;
	db->ops->reset(st);
	st->in_use = false;
	if (!st->cached)
		stmt_free(st);
	cairn_db__unlock(db);
}

/* ------------------------------------------------------------ statements */

static int not_held(const cairn_db_stmt *st, const char *op)
{
	if (!st)
		return cairn_error_set(CAIRN_EINVAL, "db: %s: no statement", op);
	return cairn_error_set(CAIRN_EINVAL, "db %s: %s: the statement is not checked out "
			       "(used after cairn_db_reset?)", st->db->path, op);
}

static int bind(cairn_db_stmt *st, int idx, const db_value *v)
{
	if (!st || !st->in_use)
		return not_held(st, "bind");
	return st->db->ops->bind(st, idx, v);
}

int cairn_db_bind_int64(cairn_db_stmt *st, int idx, int64_t v)
{
	db_value x = {DB_INT64, v, NULL, 0};

	return bind(st, idx, &x);
}

int cairn_db_bind_text(cairn_db_stmt *st, int idx, const char *s)
{
	db_value x = {s ? DB_TEXT : DB_NULL, 0, s, s ? strlen(s) : 0};

	return bind(st, idx, &x);
}

int cairn_db_bind_blob(cairn_db_stmt *st, int idx, const void *p, size_t len)
{
	db_value x = {DB_BLOB, 0, p, len};

	if (!p && len)
		return cairn_error_set(CAIRN_EINVAL, "db: bind: a NULL blob of %zu bytes", len);
	return bind(st, idx, &x);
}

int cairn_db_bind_null(cairn_db_stmt *st, int idx)
{
	db_value x = {DB_NULL, 0, NULL, 0};

	return bind(st, idx, &x);
}

/* Under the lock: whether cairn_db_begin's transaction has ended behind
 * its back. SQLite rolls a transaction back by itself after some errors
 * (a full disk, an I/O error, out of memory), and SQL run through
 * cairn_db_exec can end it; statements after that would each commit on
 * their own, so they are refused until the caller rolls back. */
static bool txn_lost(cairn_db *db)
{
	return db->txn_open && !db->ops->in_txn(db);
}

static int lost(cairn_db *db, const char *op)
{
	return cairn_error_set(CAIRN_EIO,
		"db %s: %s: the transaction is no longer open: SQLite rolled it back after an "
		"error (or SQL run through cairn_db_exec ended it); nothing in it was committed "
		"by cairn_db_commit", db->path, op);
}

int cairn_db_step(cairn_db_stmt *st)
{
	cairn_db *db;
	int rc;

	if (!st || !st->in_use)
		return not_held(st, "step");
	db = st->db;
	if (txn_lost(db))
		return lost(db, "step");
	rc = db->ops->step(st);
	if (rc < 0 && txn_lost(db)) {
		char saved[1024];

		snprintf(saved, sizeof(saved), "%s", cairn_error_last());
		cairn_error_set(rc, "%s; the whole transaction was rolled back", saved);
	}
	return rc;
}

static db_value column(cairn_db_stmt *st, int col, db_kind want)
{
	db_value v = {DB_NULL, 0, NULL, 0};

	if (st && st->in_use && col >= 0)
		st->db->ops->column(&v, st, col, want);
	return v;
}

int64_t cairn_db_column_int64(cairn_db_stmt *st, int col)
{
	return column(st, col, DB_INT64).i;
}

const char *cairn_db_column_text(cairn_db_stmt *st, int col)
{
	db_value v = column(st, col, DB_TEXT);

	return v.kind == DB_NULL ? NULL : v.p;
}

const uint8_t *cairn_db_column_blob(cairn_db_stmt *st, int col, size_t *len_out)
{
	db_value v = column(st, col, DB_BLOB);

	if (len_out)
		*len_out = v.len;
	return v.len ? v.p : NULL;
}

bool cairn_db_column_is_null(cairn_db_stmt *st, int col)
{
	return column(st, col, DB_NULL).kind == DB_NULL;
}

int64_t cairn_db_changes(const cairn_db_stmt *st)
{
	return st && st->in_use ? st->db->ops->changes(st) : 0;
}

int64_t cairn_db_last_insert_id(const cairn_db_stmt *st)
{
	return st && st->in_use ? st->db->ops->last_insert_id(st) : 0;
}

int cairn_db_exec(cairn_db *db, const char *sql)
{
	int rc;

	if (!db || !sql)
		return cairn_error_set(CAIRN_EINVAL, "db: exec: no database or no SQL");
	cairn_db__lock(db);
	rc = txn_lost(db) ? lost(db, "exec") : db->ops->exec(db, sql, "exec");
	cairn_db__unlock(db);
	return rc;
}

/* ---------------------------------------------------------- transactions */

/* One of the db part's own statements, run to its end. */
static int run(cairn_db *db, const char *sql)
{
	cairn_db_stmt *st;
	int rc;

	if ((rc = cairn_db_prepare(&st, db, sql)))
		return rc;
	while ((rc = cairn_db_step(st)) > 0)
		;
	cairn_db_reset(st);
	return rc;
}

int cairn_db_begin(cairn_db *db)
{
	int rc;

	if (!db)
		return cairn_error_set(CAIRN_EINVAL, "db: begin: no database");
	cairn_db__lock(db);
	if (db->txn_open) {
		cairn_db__unlock(db);
		return cairn_error_set(CAIRN_EINVAL,
			"db %s: begin: this thread already has a transaction open (they do not nest)",
			db->path);
	}
	if ((rc = run(db, db->ops->sql_begin))) {
		cairn_db__unlock(db);
		return rc;
	}
	db->txn_open = true;
	/* The lock stays held until commit or rollback. */
	return 0;
}

/* Under the lock, with a transaction: rolls it back and releases both
 * holds. The backend may have rolled back already (some errors do). */
static int end_rollback(cairn_db *db)
{
	int rc = 0;

	if (db->ops->in_txn(db))
		rc = run(db, db->ops->sql_rollback);
	db->txn_open = false;
	cairn_db__unlock(db); /* this call's */
	cairn_db__unlock(db); /* begin's */
	return rc;
}

static int no_txn(cairn_db *db, const char *op)
{
	cairn_db__unlock(db);
	return cairn_error_set(CAIRN_EINVAL, "db %s: %s: no transaction is open", db->path, op);
}

int cairn_db_commit(cairn_db *db)
{
	int rc;

	if (!db)
		return cairn_error_set(CAIRN_EINVAL, "db: commit: no database");
	cairn_db__lock(db);
	if (!db->txn_open)
		return no_txn(db, "commit");
	if (txn_lost(db)) {
		rc = lost(db, "commit");
		db->txn_open = false;
		cairn_db__unlock(db);
		cairn_db__unlock(db);
		return rc;
	}
	if ((rc = run(db, db->ops->sql_commit))) {
		/* The message is the commit's; a failing rollback is logged. */
		if (db->ops->in_txn(db) && run(db, db->ops->sql_rollback))
			cairn_log(CAIRN_LOG_WARN, "db %s: rollback after a failed commit failed",
				  db->path);
		db->txn_open = false;
		cairn_db__unlock(db);
		cairn_db__unlock(db);
		return rc;
	}
	db->txn_open = false;
	cairn_db__unlock(db);
	cairn_db__unlock(db);
	return 0;
}

int cairn_db_rollback(cairn_db *db)
{
	if (!db)
		return cairn_error_set(CAIRN_EINVAL, "db: rollback: no database");
	cairn_db__lock(db);
	if (!db->txn_open)
		return no_txn(db, "rollback");
	return end_rollback(db);
}
