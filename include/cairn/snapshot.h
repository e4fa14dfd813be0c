/* cairn/snapshot.h: copy-on-write snapshots of a store directory, clones
 * that open as stores of their own, and rollback by an atomic swap. */
#ifndef CAIRN_SNAPSHOT_H
#define CAIRN_SNAPSHOT_H

#include "cairn/base.h"
#include "cairn/db.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- overview
 *
 * A store is a directory; its snapshots live beside it, on the same
 * filesystem, in `<store>.snapshots/NAME`. A snapshot holds the store's
 * files as they were at one instant plus `snapshot.manifest`, written last,
 * which lists every file with its size, mode and the method that made it:
 *   reflink   ioctl(FICLONE): the extents are shared, nothing is copied
 *             (btrfs, XFS with reflink=1); microseconds per file.
 *   hardlink  the same inode, for files cairn writes once and never opens
 *             for writing again (shard indexes dagstore/indexes/N.idx and
 *             top-level index runs dagstore/toplevel/N.run), made
 *             read-only (0444), where FICLONE is not supported.
 *   copy      the data extents copied (copy_file_range over SEEK_DATA /
 *             SEEK_HOLE), so a sparse file stays sparse.
 * A snapshot is made in a temporary directory, synced (one syncfs, then the
 * directories), and published by one rename: a crash leaves no snapshot or
 * a whole one. Leftover temporary directories are removed at the start of
 * the next snapshot operation.
 *
 * Not in a snapshot: `lock`, `api`, `token` (a running daemon's), the
 * database's `-shm` and LMDB's `lock.mdb` (rebuilt at open), temporary
 * files (`*.tmp`, `*.partial`), and directories on other filesystems
 * (mount points inside the store: left out with a warning).
 *
 * The store's lock. Whoever opens a store holds `<store>/lock` (flock,
 * exclusive), `cairn serve` for as long as it runs. A snapshot is taken
 * either by a process that takes that lock itself (the store is closed), or
 * by the owner, from inside (options.lock_held), which pauses its writers
 * through the quiesce/resume callbacks. Restore always takes the lock
 * itself, so it is refused while anyone has the store open. Snapshots can
 * be listed and cloned while the store runs. Operations on one store's
 * snapshots take turns on `<store>.snapshots/.lock`.
 *
 * Errors: every function returns 0 or a negative CAIRN_E*, the message
 * naming the file and what to do. Common to all:
 *   CAIRN_EINVAL    a bad name (letters, digits, '.', '_', '-'; not
 *                   starting with '.'; at most 100 bytes) or argument
 *   CAIRN_ENOTFOUND no such store (no `version` file) or snapshot
 *   CAIRN_EIO       a system call failed (ENOSPC included): nothing
 *                   partial is left behind
 * Threads: the functions may run on any thread; two operations on the
 * snapshots of one store wait for each other (the .lock above).
 *
 * Fault hook (tests): with CAIRN_SNAPSHOT_CRASH_AT=<step> in the
 * environment the process kills itself (SIGKILL) at that step; the steps
 * are listed in src/snapshot/snapshot.c.
 */

#define CAIRN_SNAPSHOT_NAME_MAX 100

typedef enum cairn_snapshot_method {
	CAIRN_SNAPSHOT_REFLINK = 0,
	CAIRN_SNAPSHOT_HARDLINK,
	CAIRN_SNAPSHOT_COPY,
} cairn_snapshot_method;
#define CAIRN_SNAPSHOT_METHODS 3

/* "reflink", "hardlink", "copy". Static string. */
CAIRN_API const char *cairn_snapshot_method_name(cairn_snapshot_method method);

typedef struct cairn_snapshot_options {
	/* Never share extents: no FICLONE and no copy_file_range (which
	 * shares on btrfs and XFS); every byte is read and written. A kill
	 * switch for a filesystem whose cloning is not trusted. */
	bool no_reflink;
	/* Never hard-link sealed files: they are cloned or copied too. */
	bool no_hardlink;
	/* create: a rolling snapshot; after it is published, rolling
	 * snapshots beyond the `keep` newest are removed. Snapshots made
	 * without keep are never removed by it. 0: not rolling. */
	unsigned keep;
	/* create: the caller owns the store (holds its lock, has its database
	 * open): the lock is not taken, writers are paused through quiesce.
	 * Ignored by restore, which always takes the lock. */
	bool lock_held;
	/* Checkpointed (PRAGMA wal_checkpoint(TRUNCATE)) while writers are
	 * paused, unless `checkpoint` is set. A database that is not SQLite
	 * (PostgreSQL) is refused: CAIRN_EUNSUPPORTED. Borrowed. */
	cairn_db *db;
	/* Optional. quiesce pauses every writer of the store and returns 0 or
	 * a CAIRN_E* (then nothing is snapshotted); resume is called once
	 * after every successful quiesce, whatever happens between.
	 * checkpoint runs while paused, before any file is cloned. */
	int (*quiesce)(void *payload);
	void (*resume)(void *payload);
	int (*checkpoint)(void *payload);
	void *payload;
} cairn_snapshot_options;
#define CAIRN_SNAPSHOT_OPTIONS_INIT {false, false, 0, false, NULL, NULL, NULL, NULL, NULL}

/* What an operation did. `bytes_by` are file sizes (apparent) by method;
 * `bytes_copied` the data bytes actually copied (holes and shared extents
 * not counted). */
typedef struct cairn_snapshot_report {
	char name[CAIRN_SNAPSHOT_NAME_MAX + 1];
	char path[4096];          /* the snapshot, the clone, or the store */
	char fs[16];              /* filesystem of the destination: "btrfs" ... */
	uint64_t files;
	uint64_t dirs;
	uint64_t files_by[CAIRN_SNAPSHOT_METHODS];
	uint64_t bytes_by[CAIRN_SNAPSHOT_METHODS];
	uint64_t bytes_copied;
	uint64_t skipped;         /* mount points and special files left out */
	uint64_t pause_ns;        /* writers paused (create): quiesce to resume */
	uint64_t sync_ns;         /* syncfs and directory fsyncs */
	uint64_t total_ns;
	unsigned pruned;          /* rolling snapshots removed (create --keep) */
} cairn_snapshot_report;

/* One snapshot as cairn_snapshot_list sees it. */
typedef struct cairn_snapshot_info {
	char name[CAIRN_SNAPSHOT_NAME_MAX + 1];
	bool complete;            /* the manifest is whole; false: damaged */
	bool rolling;
	int64_t created;          /* unix seconds */
	uint64_t files;
	uint64_t bytes;           /* sum of file sizes */
	uint64_t files_by[CAIRN_SNAPSHOT_METHODS];
	uint64_t pause_ns;
} cairn_snapshot_info;

/* Writes `<store>.snapshots` into buf. CAIRN_EINVAL when it does not fit. */
CAIRN_API int cairn_snapshot_dir(char *buf, size_t cap, const char *store);

/* Snapshots `store` as `name` (NULL: the UTC time, "20260903-101112", with
 * "-2", "-3"... when taken) and fills `report_out` (may be NULL).
 * Order: the store's lock (unless opts->lock_held); quiesce; checkpoint;
 * every file cloned into <store>.snapshots/.tmp-NAME; resume; manifest;
 * syncfs and directory fsyncs; rename to NAME; fsync; rolling prune.
 * Returns 0; CAIRN_EEXISTS when the snapshot exists or the store is in use
 * by another process (cairn_snapshot_store_holder tells which); CAIRN_EIO
 * (ENOSPC: the message says so; nothing is left); CAIRN_EUNSUPPORTED for a
 * PostgreSQL database; a callback's own code. */
CAIRN_API int cairn_snapshot_create(cairn_snapshot_report *report_out, const char *store,
				    const char *name, const cairn_snapshot_options *opts);

/* Every snapshot of `store`, sorted by creation time then name. `*list_out`
 * is the caller's (cairn_snapshot_list_free); NULL with n 0 when there are
 * none. Takes no lock: works while the store runs. */
CAIRN_API int cairn_snapshot_list(cairn_snapshot_info **list_out, size_t *n_out, const char *store);
CAIRN_API void cairn_snapshot_list_free(cairn_snapshot_info *list);

/* Removes a snapshot: renamed out of sight first (atomic), then deleted.
 * Returns 0 or CAIRN_ENOTFOUND. */
CAIRN_API int cairn_snapshot_remove(const char *store, const char *name);

/* Makes `dest` (which must not exist) a store of its own from snapshot
 * `name`: the same files, cloned the same way, without the manifest, so it
 * opens with --repo dest with no re-indexing or re-hashing. Built in a
 * temporary sibling and renamed into place. On another filesystem FICLONE
 * and hard links fail (EXDEV) and the files are copied.
 * Returns 0, CAIRN_EEXISTS (dest exists), CAIRN_ENOTFOUND. */
CAIRN_API int cairn_snapshot_clone(cairn_snapshot_report *report_out, const char *store,
				   const char *name, const char *dest,
				   const cairn_snapshot_options *opts);

/* An ephemeral clone: made in <store>.snapshots/.ephemeral-NAME-PID and
 * removed by cairn_snapshot_ephemeral_free, or, when the process dies
 * first, by the next snapshot operation on the store (a marker file held
 * with flock says it is in use). */
typedef struct cairn_snapshot_ephemeral cairn_snapshot_ephemeral;
CAIRN_API int cairn_snapshot_clone_ephemeral(cairn_snapshot_ephemeral **out,
					     cairn_snapshot_report *report_out,
					     const char *store, const char *name,
					     const cairn_snapshot_options *opts);
/* The clone's directory. Borrowed: lives as long as `e`. */
CAIRN_API const char *cairn_snapshot_ephemeral_path(const cairn_snapshot_ephemeral *e);
/* Removes the clone and frees `e`; NULL is accepted. Returns 0 or CAIRN_EIO. */
CAIRN_API int cairn_snapshot_ephemeral_free(cairn_snapshot_ephemeral *e);

/* Rolls `store` back to snapshot `name`: takes the store's lock (refused
 * while anyone holds it), clones the snapshot into a temporary directory,
 * syncs it, and swaps it with the live store in one
 * renameat2(RENAME_EXCHANGE), so there is always a whole live store; the
 * old contents are then deleted and the snapshot stays. `report_out` may be
 * NULL. Returns 0; CAIRN_EEXISTS (the store is in use); CAIRN_ENOTFOUND;
 * CAIRN_ECORRUPT (the snapshot's manifest is damaged); CAIRN_EUNSUPPORTED
 * (a mount point inside the store, or the snapshots on another
 * filesystem). */
CAIRN_API int cairn_snapshot_restore(cairn_snapshot_report *report_out, const char *store,
				     const char *name, const cairn_snapshot_options *opts);

/* Who holds the store's lock: `*pid_out` gets its process id (0 when the
 * lock is free, -1 when held by a process that cannot be named).
 * Returns 0 or CAIRN_ENOTFOUND (no store). */
CAIRN_API int cairn_snapshot_store_holder(long *pid_out, const char *store);

#ifdef __cplusplus
}
#endif
#endif
