/* cairn/dagstore.h: the DAG store: every deal's piece a shard, indexed once,
 * any block found through one top-level multihash index and served from
 * the shard's CARv1 joined with its CARv2 index. */
#ifndef CAIRN_DAGSTORE_H
#define CAIRN_DAGSTORE_H

#include "cairn/db.h"
#include "cairn/mount.h"
#include "cairn/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Shard states, with the byte values filecoin-project/dagstore persists.
 *
 *   New --initialize--> Initializing --ok--> Available <--release-- Serving
 *                            |                  |  --acquire-->
 *                            +--fail--> Errored <--(bad index on acquire)
 *   Errored --recover--> Recovering --ok--> Available, --fail--> Errored
 *
 * What the original lacked, cairn does: a shard Initializing or Recovering
 * when the process died is resumed when the store next opens (its partial
 * index removed first); destroy removes the shard's index file and its
 * top-level entries; every failure is recorded on the shard with its
 * reason, never only logged; an index file missing or not matching its
 * recorded checksum moves the shard to Errored on acquire, and recovery
 * rebuilds it. Serving is Available with readers; it is not persisted.
 */
typedef enum cairn_shard_state {
	CAIRN_SHARD_NEW = 0x00,
	CAIRN_SHARD_INITIALIZING = 0x01,
	CAIRN_SHARD_AVAILABLE = 0x02,
	CAIRN_SHARD_SERVING = 0x03,
	CAIRN_SHARD_RECOVERING = 0x80,
	CAIRN_SHARD_ERRORED = 0xf0,
} cairn_shard_state;

/* "New", "Initializing", ...: dagstore's names (ShardStateNew...) without
 * the prefix. */
CAIRN_API const char *cairn_shard_state_name(cairn_shard_state state);

/* A snapshot of one shard. Strings are owned by the snapshot: free with
 * cairn_shard_info_clear. */
typedef struct cairn_shard_info {
	char *key;               /* opaque; the piece CID for deals */
	char *url;               /* the mount */
	char *error;             /* why it is Errored (NULL otherwise) */
	cairn_shard_state state;
	uint32_t id;             /* its id in the top-level index */
	unsigned refs;           /* open acquirers */
	uint64_t blocks;         /* sections indexed */
	uint64_t data_size;      /* CARv1 payload bytes walked */
	uint64_t index_size;     /* bytes of its CARv2 index file */
	uint8_t index_sha256[32];
	int64_t created_at;      /* unix seconds */
	int64_t updated_at;
	int64_t indexed_at;      /* 0: never */
} cairn_shard_info;

CAIRN_API void cairn_shard_info_clear(cairn_shard_info *info);

typedef struct cairn_dagstore cairn_dagstore;

typedef struct cairn_dagstore_options {
	unsigned max_open;        /* shard mounts open at once, for indexing,
				   * acquirers and top-level gets together
				   * (0: 64) */
	bool no_sync;             /* no fsync of index files and the top-level
				   * index (tests and benchmarks) */
	bool verify;              /* hash every block while indexing (default
				   * true through the INIT: a shard is Available
				   * only if its data is right) */
	uint64_t transient_budget;/* bytes of local copies of HTTP pieces from
				   * servers without ranges (0: 16 GiB) */
	/* Called with the mount registry (file and HTTP in it) before any
	 * shard is resumed, to add schemes of other parts (the sector part's
	 * sector:// and piece://); may be NULL. A failure fails the open. */
	int (*add_mounts)(cairn_mount_registry *reg, void *payload);
	void *add_mounts_payload;
} cairn_dagstore_options;
#define CAIRN_DAGSTORE_OPTIONS_INIT {0, false, true, 0, NULL, NULL}

/* Opens the DAG store kept in `dir` (index files, the top-level index,
 * transients; created if missing) with its shard registry in `db` (the
 * caller's, migrated here to the dagstore schema; it must outlive the
 * store). Shards found Initializing or Recovering are resumed before this
 * returns, each ending Available or Errored; index files and top-level
 * entries no shard owns (a crash during destroy) are removed.
 * Errors: those of the db, the top-level index (CAIRN_EEXISTS: another
 * process has the store open), CAIRN_EIO. Thread safety: every function
 * below may be called from any thread. */
CAIRN_API int cairn_dagstore_open(cairn_dagstore **out, cairn_db *db, const char *dir,
				  const cairn_dagstore_options *opts);
/* Waits for nothing: callers must have released their acquirers. NULL is
 * accepted. */
CAIRN_API void cairn_dagstore_close(cairn_dagstore *ds);
/* The registry that opens mounts (file:// and http(s):// registered): add
 * schemes before use. Borrowed. */
CAIRN_API cairn_mount_registry *cairn_dagstore_mounts(cairn_dagstore *ds);

/* ------------------------------------------------------------ registry */
typedef struct cairn_shard_spec {
	const char *key;
	const char *url;
} cairn_shard_spec;

/* Registers shards New, in one transaction: how a migration of many deals
 * goes fast. A key already registered with the same URL is skipped (so a
 * second run of an import changes nothing); with a different URL it is
 * CAIRN_EEXISTS and nothing is registered. `added_out` (may be NULL)
 * counts the new ones. CAIRN_EINVAL for an empty key or a string that is not
 * a URL; an unknown scheme shows at initialization (the shard Errored). */
CAIRN_API int cairn_dagstore_register(cairn_dagstore *ds, const cairn_shard_spec *specs,
				      size_t n, size_t *added_out);
/* Fills `out` (cairn_shard_info_clear it); CAIRN_ENOTFOUND for an unknown key. */
CAIRN_API int cairn_dagstore_info(cairn_shard_info *out, cairn_dagstore *ds, const char *key);
/* Calls `fn` for every shard in key order, with a snapshot valid for the
 * call. Non-zero from fn stops and is returned. */
typedef int (*cairn_shard_fn)(const cairn_shard_info *info, void *payload);
CAIRN_API int cairn_dagstore_list(cairn_dagstore *ds, cairn_shard_fn fn, void *payload);

/* ---------------------------------------------------------- lifecycle */

/* Fetches and indexes a New shard (or an Available one whose index is to
 * be rebuilt: CAIRN_EINVAL otherwise): reads its CARv1 through the mount
 * (a zero-length section ends the data, as in a padded piece), writes its
 * CARv2 index file and adds its blocks to the top-level index. Ends
 * Available, or Errored with the reason, which is also returned. */
CAIRN_API int cairn_dagstore_initialize(cairn_dagstore *ds, const char *key);

typedef struct cairn_dagstore_progress {
	uint64_t total;          /* shards to do */
	uint64_t done;           /* finished, either way */
	uint64_t failed;         /* of which Errored */
	uint64_t blocks;         /* indexed so far */
	const char *key;         /* the shard that just finished (or NULL) */
	int result;              /* its result */
} cairn_dagstore_progress;
typedef void (*cairn_dagstore_progress_fn)(const cairn_dagstore_progress *p, void *payload);

/* Initializes every New shard on `concurrency` threads (0: one per core),
 * calling `fn` (may be NULL) after each shard, from the worker's thread but
 * never two at once. A shard's failure does not stop the others: it is on
 * the shard. `out` (may be NULL) gets the final counts. Returns 0 unless
 * the run itself failed (out of memory, the database). */
CAIRN_API int cairn_dagstore_initialize_all(cairn_dagstore *ds, unsigned concurrency,
					    cairn_dagstore_progress_fn fn, void *payload,
					    cairn_dagstore_progress *out);
/* Rebuilds an Errored shard: Recovering, its index and top-level entries
 * dropped, fetched and indexed again. CAIRN_EINVAL if not Errored. */
CAIRN_API int cairn_dagstore_recover(cairn_dagstore *ds, const char *key);
/* Removes a shard with no acquirers (CAIRN_EINVAL otherwise): its top-level
 * entries, then its index file, then its row. A crash in between leaves a
 * shard the next open finds without top-level entries and marks Errored
 * (destroy it again, or recover it); an index file with no row is removed
 * by the next open. */
CAIRN_API int cairn_dagstore_destroy(cairn_dagstore *ds, const char *key);

typedef struct cairn_dagstore_gc_stats {
	uint64_t transients_removed;
	uint64_t bytes_freed;
	uint64_t orphans_removed; /* index files no shard owns */
} cairn_dagstore_gc_stats;
/* Removes transient copies no acquirer uses and orphan index files, and
 * merges the top-level index's runs (dropping destroyed shards' records). */
CAIRN_API int cairn_dagstore_gc(cairn_dagstore *ds, cairn_dagstore_gc_stats *out);

/* ------------------------------------------------------------- reading */

/* A read-only blockstore over an Available shard: its CARv1 through the
 * mount, its blocks found with its CARv2 index (mmapped), each block hashed
 * on read. A New shard is initialized first (lazy initialization). The
 * store counts as an acquirer until cairn_store_free. CAIRN_ENOTFOUND for
 * an unknown key; an Errored shard fails with its reason. */
CAIRN_API int cairn_dagstore_acquire(cairn_store **out, cairn_dagstore *ds, const char *key);

/* The shards holding a block (confirmed against each shard's own index),
 * in key order: calls `fn` for each. Returns the count, or a negative code. */
CAIRN_API int cairn_dagstore_lookup(cairn_dagstore *ds, const cairn_cid *cid, cairn_shard_fn fn,
				    void *payload);
/* A block through the top-level index: one lookup, one ranged read of its
 * section from the first Available shard that holds it, hashed against the
 * CID. `key_out` (may be NULL, else CAIRN_SHARD_KEY_MAX bytes) gets the
 * shard's key. CAIRN_ENOTFOUND when no shard has it. */
#define CAIRN_SHARD_KEY_MAX 256
CAIRN_API int cairn_dagstore_get(cairn_dagstore *ds, cairn_buf *out, const cairn_cid *cid,
				 char *key_out);
/* The same, except that a block read from a local shard's file is not
 * hashed again: it was when the shard was indexed (cairn_dagstore_locate
 * relies on that too). A remote shard's block is still hashed: its source
 * is read anew each time. For serving. */
CAIRN_API int cairn_dagstore_get_trusting_local(cairn_dagstore *ds, cairn_buf *out,
						const cairn_cid *cid, char *key_out);
/* The same for the size and for presence (1 or 0): the section is read to
 * confirm the CID (the top-level key is short) but not hashed. */
CAIRN_API int cairn_dagstore_get_size(cairn_dagstore *ds, uint64_t *size_out,
				      const cairn_cid *cid);
CAIRN_API int cairn_dagstore_has(cairn_dagstore *ds, const cairn_cid *cid);

/* Where a block's bytes lie in a local shard's file, to send them from
 * there (sendfile) rather than copy them: `fd` is a descriptor of the
 * caller's own (dup'ed: close it; the bytes stay readable even if the shard
 * is destroyed meanwhile). The block is not hashed again (it was when its
 * shard was indexed); the section's CID is checked against `cid`.
 * CAIRN_ENOTFOUND when no Available shard holds it, CAIRN_EUNSUPPORTED when
 * only remote shards do, or for an identity CID (use cairn_dagstore_get). */
typedef struct cairn_block_location {
	int fd;
	uint64_t offset;   /* of the block's bytes in the file */
	uint64_t length;
	char key[CAIRN_SHARD_KEY_MAX];
} cairn_block_location;
CAIRN_API int cairn_dagstore_locate(cairn_dagstore *ds, cairn_block_location *out,
				    const cairn_cid *cid);

/* ------------------------------------------------------------- quiesce */

/* Pauses every writer of the store's files, so they can be snapshotted
 * while it runs: waits until the writes under way reach a safe point and
 * holds new ones until cairn_dagstore_resume. What waits: registrations,
 * destroys, gc, and the write steps of an indexing (dropping the old
 * index at the start; the index file, the top-level entries and the row at
 * the end); the top-level index's merges stop (one under way is abandoned
 * and done again after resume). What goes on: gets, lookups, acquirers and
 * the reading of a shard being indexed (a large remote piece is not waited
 * for: its job waits before it writes). A read that finds a shard damaged
 * still marks it Errored: one row of the database, which a snapshot has
 * whole or not at all. Calls nest: writers resume after the last resume.
 * `timeout_ms` bounds the wait (0: 30 s).
 * Returns 0 (then resume must be called once), or CAIRN_ECANCELED when
 * the writes under way did not finish in time (nothing stays paused; the
 * message says what was in flight). Any thread. */
CAIRN_API int cairn_dagstore_quiesce(cairn_dagstore *ds, unsigned timeout_ms);
/* Lets the writers held by cairn_dagstore_quiesce go on. NULL is accepted. */
CAIRN_API void cairn_dagstore_resume(cairn_dagstore *ds);

#ifdef __cplusplus
}
#endif

#endif
