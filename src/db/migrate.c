/* migrate.c: schema versions per part: the schema_version table and the
 * upgrade of a part through its numbered steps, one transaction per step.
 *
 * Why one transaction per step, with the version bump inside it: the step
 * and the record that it ran commit together, so after a crash or a
 * failing step the part is exactly at the old version or the new one, and
 * the next open carries on from there. (SQLite's DDL is transactional, as
 * PostgreSQL's is, so CREATE and ALTER roll back with the rest.) A step
 * that has to rebuild a table with foreign keys pointing at it should do
 * so with PRAGMA defer_foreign_keys = ON, as foreign keys are on.
 *
 * The version is read first without a transaction, so opening a database
 * that is up to date writes nothing (and works read-only); then, for each
 * step, again under the write lock, so two processes migrating at once
 * apply each step once: the second one finds the first one's version.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/db_i.h"

/* Under the lock: the version of `part`, 0 without a row or a table. */
static int read_version(unsigned *out, cairn_db *db, const char *part)
{
	cairn_db_stmt *st;
	int64_t v = 0;
	int rc;

	*out = 0;
	if ((rc = cairn_db_prepare(&st, db, db->ops->sql_version_exists)))
		return rc;
	rc = cairn_db_step(st);
	cairn_db_reset(st);
	if (rc <= 0)
		return rc;
	if ((rc = cairn_db_prepare(&st, db, db->ops->sql_version_get)))
		return rc;
	if (!(rc = cairn_db_bind_text(st, 1, part)) && (rc = cairn_db_step(st)) > 0)
		v = cairn_db_column_int64(st, 0);
	cairn_db_reset(st);
	if (rc < 0)
		return rc;
	if (v < 0 || v > (int64_t)UINT32_MAX)
		return cairn_error_set(CAIRN_ECORRUPT,
			"db %s: schema_version: part \"%s\" has version %lld, out of range",
			db->path, part, (long long)v);
	*out = (unsigned)v;
	return 0;
}

static int write_version(cairn_db *db, const char *part, unsigned version)
{
	cairn_db_stmt *st;
	int rc;

	if ((rc = cairn_db_prepare(&st, db, db->ops->sql_version_set)))
		return rc;
	if (!(rc = cairn_db_bind_text(st, 1, part)) && !(rc = cairn_db_bind_int64(st, 2, version)) &&
	    !(rc = cairn_db_bind_int64(st, 3, (int64_t)time(NULL))))
		rc = cairn_db_step(st);
	cairn_db_reset(st);
	return rc < 0 ? rc : 0;
}

static int too_new(cairn_db *db, const char *part, unsigned have, size_t known)
{
	return cairn_error_set(CAIRN_EUNSUPPORTED,
		"db %s: part \"%s\" is at schema version %u, but this cairn knows versions up to "
		"%zu: the database was written by a newer cairn; upgrade cairn to use it",
		db->path, part, have, known);
}

static int check_steps(const char *part, const cairn_db_migration *steps, size_t n)
{
	if (!part || !*part)
		return cairn_error_set(CAIRN_EINVAL, "db: migrate: no part name");
	if (n > UINT32_MAX || (n && !steps))
		return cairn_error_set(CAIRN_EINVAL, "db: migrate %s: no steps", part);
	for (size_t i = 0; i < n; i++) {
		if (steps[i].version != i + 1)
			return cairn_error_set(CAIRN_EINVAL,
				"db: migrate %s: steps must be numbered 1..%zu in order, but step %zu "
				"has version %u", part, n, i + 1, steps[i].version);
		if (!steps[i].sql)
			return cairn_error_set(CAIRN_EINVAL, "db: migrate %s: step %u has no SQL",
					       part, steps[i].version);
	}
	return 0;
}

/* One step in its transaction: 1 when applied, 0 when another connection
 * had already brought the part to n, or a negative code. */
static int apply_next(cairn_db *db, const char *part, const cairn_db_migration *steps, size_t n,
		      unsigned *cur)
{
	char what[96], saved[1024];
	int rc;

	if ((rc = cairn_db_begin(db)))
		return rc;
	if ((rc = db->ops->exec(db, db->ops->sql_version_table, "create schema_version")) ||
	    (rc = read_version(cur, db, part)))
		goto fail;
	if (*cur > n) {
		rc = too_new(db, part, *cur, n);
		goto fail;
	}
	if (*cur == n) {
		rc = cairn_db_commit(db);
		return rc < 0 ? rc : 0;
	}
	snprintf(what, sizeof(what), "migrate \"%s\" to version %u", part, *cur + 1);
	if ((rc = db->ops->exec(db, steps[*cur].sql, what)) ||
	    (rc = write_version(db, part, *cur + 1)))
		goto fail;
	if ((rc = cairn_db_commit(db))) {
		cairn_error_prefix("db: %s: ", what);
		return rc;
	}
	(*cur)++;
	cairn_log(CAIRN_LOG_INFO, "db %s: part \"%s\" now at schema version %u", db->path, part,
		  *cur);
	return 1;
fail:
	/* The step's message is the one reported; a rollback that fails
	 * (SQLite then closes the transaction itself) is only logged. */
	snprintf(saved, sizeof(saved), "%s", cairn_error_last());
	if (cairn_db_rollback(db)) {
		cairn_log(CAIRN_LOG_WARN, "db %s: rollback of a failed migration: %s", db->path,
			  cairn_error_last());
		cairn_error_set(rc, "%s", saved);
	}
	return rc;
}

int cairn_db_migrate(cairn_db *db, const char *part, const cairn_db_migration *steps, size_t n)
{
	unsigned cur;
	int rc;

	if (!db)
		return cairn_error_set(CAIRN_EINVAL, "db: migrate: no database");
	if ((rc = check_steps(part, steps, n)))
		return rc;
	cairn_db__lock(db);
	if (db->txn_open) {
		cairn_db__unlock(db);
		return cairn_error_set(CAIRN_EINVAL,
			"db %s: migrate %s: a transaction is open: migrate runs its own", db->path, part);
	}
	rc = read_version(&cur, db, part);
	if (!rc && cur > n)
		rc = too_new(db, part, cur, n);
	while (!rc && cur < n)
		if ((rc = apply_next(db, part, steps, n, &cur)) > 0)
			rc = 0;
	cairn_db__unlock(db);
	return rc;
}

int cairn_db_schema_version(unsigned *version_out, cairn_db *db, const char *part)
{
	int rc;

	if (!version_out)
		return cairn_error_set(CAIRN_EINVAL, "db: schema version: no place for the result");
	*version_out = 0;
	if (!db || !part || !*part)
		return cairn_error_set(CAIRN_EINVAL, "db: schema version: no database or no part");
	cairn_db__lock(db);
	rc = read_version(version_out, db, part);
	cairn_db__unlock(db);
	return rc;
}
