/* db_i.h: the db part's internals: the connection and statement structs,
 * and the table of operations a backend (SQLite now, PostgreSQL later) fills. */
#ifndef CAIRN_DB_I_H
#define CAIRN_DB_I_H

#include <pthread.h>

#include "cairn/db.h"

/* A value crossing the backend boundary: a parameter, or a column read as
 * the kind asked for. Text is NUL-terminated; `len` excludes the NUL. */
typedef enum { DB_NULL, DB_INT64, DB_TEXT, DB_BLOB } db_kind;

typedef struct {
	db_kind kind;
	int64_t i;
	const void *p;
	size_t len;
} db_value;

/* A backend. Each operation is called with the connection held (db.c's
 * mutex), sets the cairn message on failure and returns a CAIRN_E* code.
 * The db part's own SQL is here too, in the backend's dialect. */
typedef struct cairn_db_ops {
	const char *name;
	const char *sql_begin;          /* takes the write lock at once */
	const char *sql_commit;
	const char *sql_rollback;
	const char *sql_version_table;  /* CREATE TABLE IF NOT EXISTS schema_version */
	const char *sql_version_exists; /* a row when the table exists */
	const char *sql_version_get;    /* ?1 part -> version */
	const char *sql_version_set;    /* ?1 part, ?2 version, ?3 unix seconds: upsert */

	/* Sets db->conn from db->path and db->opts; on failure leaves it NULL. */
	int (*open)(cairn_db *db);
	void (*close)(cairn_db *db);
	/* Runs a script; `what` names it in messages. */
	int (*exec)(cairn_db *db, const char *sql, const char *what);
	/* Exactly one statement, else CAIRN_EINVAL. */
	int (*prepare)(void **h_out, cairn_db *db, const char *sql);
	void (*finalize)(void *h);
	int (*bind)(cairn_db_stmt *st, int idx, const db_value *v);
	/* 1 row, 0 done, or a negative code. */
	int (*step)(cairn_db_stmt *st);
	/* The column converted to `want`; pointers borrowed from the row. */
	void (*column)(db_value *out, cairn_db_stmt *st, int col, db_kind want);
	/* Also clears the parameters. */
	void (*reset)(cairn_db_stmt *st);
	int64_t (*changes)(const cairn_db_stmt *st);
	int64_t (*last_insert_id)(const cairn_db_stmt *st);
	/* Whether the connection is inside a transaction (the backend may have
	 * rolled one back by itself after some errors). */
	bool (*in_txn)(cairn_db *db);
} cairn_db_ops;

struct cairn_db_stmt {
	cairn_db *db;
	void *h;            /* the backend's statement */
	const char *key;    /* the caller's SQL pointer: the cache key */
	char *sql;          /* a copy: checks a cache hit, names it in messages */
	bool cached;        /* in the cache; else finalized at reset */
	bool in_use;        /* checked out: between prepare and reset */
	cairn_db_stmt *prev, *next; /* every live statement, for close */
};

struct cairn_db {
	const cairn_db_ops *ops;
	void *conn;
	char *path;
	cairn_db_options opts;
	pthread_mutex_t lock; /* recursive: see the thread notes in db.c */
	unsigned depth;       /* under `lock`: how many holds its owner has */
	uintptr_t owner;      /* under `lock`: the holding thread's token */
	bool txn_open;        /* under `lock`: a cairn_db_begin is open */

	/* The statement cache: open addressing on the SQL pointer. */
	cairn_db_stmt **slots;
	size_t nslots, ncached;
	cairn_db_stmt *all;
};

extern const cairn_db_ops cairn_db__sqlite_ops;

/* A head of `sql` for messages: its first 60 characters on one line. */
void cairn_db__sql_head(char *out, size_t n, const char *sql);

void cairn_db__lock(cairn_db *db);
void cairn_db__unlock(cairn_db *db);

#endif
