/* tlindex.h: the DAG store's top-level index (internal to libcairn): a map
 * from a block's multihash to every shard holding it, with the offset and size
 * of its section there, so has, get-size and get need one lookup.
 *
 * The design, the file formats and the measurements behind them are at the top
 * of tlindex.c. In short: an LSM of immutable sorted run files of 24-byte
 * records {key, shard, size, offset}, listed by an atomically replaced
 * MANIFEST; one writer, any number of readers, a background thread merging
 * runs; a removed shard is a tombstone until merges drop its records.
 *
 * Keys are 64 bits derived from the whole multihash (cairn_tlindex_key), so
 * two different multihashes share a key with probability 2^-64 per pair: a
 * lookup can return a hit that is not the block asked for. The caller must
 * confirm every hit against the block's real CID (the shard's own CARv2
 * index, or the section read at the offset); with n entries in the index, a
 * lookup returns such a false hit with probability about n / 2^64 (5e-10 at
 * ten billion entries). A false hit costs a wasted check, never a wrong
 * answer, and a true hit is never missed.
 *
 * Thread safety: cairn_tlindex_lookup, _stats, _shard_foreach, _has_shard and
 * _verify may be called from any number of threads at once, also while a
 * write or a merge runs; they see the index as of some moment between their
 * call and their return (a write is visible to them all at once). The writing
 * calls (_add_*, _remove_shard, _compact) may come from any thread, also
 * at once: adds sort and write their runs in parallel and take turns only to
 * commit. _close must be the last call, with nothing else in flight.
 */
#ifndef CAIRN_DAGSTORE_TLINDEX_H
#define CAIRN_DAGSTORE_TLINDEX_H

#include <time.h>

#include "cairn/base.h"

typedef struct cairn_tlindex cairn_tlindex;

typedef struct cairn_tlindex_options {
	bool read_only;      /* no writes, no merges, no cleanup; the directory
			      * may be shared with other read-only openers */
	bool no_sync;        /* skip every fsync: a crash of the machine (not of
			      * the process) may lose or damage the index. For
			      * tests, benchmarks and indexes that can be rebuilt */
	bool inline_merge;   /* no merge thread: the writing calls merge in the
			      * caller's thread before they return (deterministic;
			      * for tests and batch tools) */
	unsigned merge_ratio;/* merge the newest runs into the next older one once
			      * their sum is at least its size / merge_ratio:
			      * 1 keeps about log2(entries / run) runs, larger
			      * merges sooner (fewer runs, more rewriting); 0: 1 */
	unsigned max_runs;   /* a write waits for the merger while there are more
			      * runs than this (0: 24) */
	size_t sort_budget;  /* bytes of records sorted in memory at once by an
			      * add (twice this is allocated while it sorts); a
			      * larger shard is written as several runs listed in
			      * one manifest update (0: 256 MiB) */
	unsigned bloom_bits; /* bloom filter bits per entry in new runs (0: no
			      * filter; default 10: about 1% false positives).
			      * Filters of all runs but the largest are held in
			      * memory, 1.25 bytes per entry at 10 */
} cairn_tlindex_options;
#define CAIRN_TLINDEX_OPTIONS_INIT {false, false, false, 1, 24, 256u << 20, 10}

/* One block of a shard, as the caller gives it to an add. */
typedef struct cairn_tlindex_entry {
	const uint8_t *mh;   /* the multihash bytes as in a CID: code varint,
			      * length varint, digest. Borrowed for the call */
	size_t mh_len;
	uint64_t offset;     /* of the block's section in the shard (the CARv2
			      * index's offset, from the start of the payload) */
	uint32_t size;       /* of the block's data */
} cairn_tlindex_entry;

/* The entries of one shard, for cairn_tlindex_add_batch. */
typedef struct cairn_tlindex_shard {
	uint32_t id;
	const cairn_tlindex_entry *entries; /* borrowed for the call */
	size_t count;
} cairn_tlindex_shard;

/* One place a multihash is found. */
typedef struct cairn_tlindex_hit {
	uint32_t shard;
	uint32_t size;
	uint64_t offset;
} cairn_tlindex_hit;

typedef struct cairn_tlindex_stats {
	uint64_t entries;    /* in live shards */
	uint64_t shards;     /* live shards */
	uint64_t runs;       /* run files listed in the manifest */
	uint64_t records;    /* in those runs, dead ones (removed shards not yet
			      * merged away) included */
	uint64_t bytes;      /* of the run files and the manifest on disk */
	uint64_t tombstones; /* removed shards whose records are still in runs */
	uint64_t merges;     /* merges done since open */
	uint64_t merged_records; /* records those merges wrote */
} cairn_tlindex_stats;

/* The 64-bit key of a multihash: a fixed hash of all its bytes (code, length
 * and digest), stable across versions (it is stored on disk). Any bytes are
 * accepted; the adds and lookups check that they are a multihash. */
uint64_t cairn_tlindex_key(const uint8_t *mh, size_t mh_len);

/* Opens the index in `dir`, creating the directory and an empty index when
 * it has none (unless read_only). Writers take an exclusive lock on
 * dir/LOCK, readers a shared one. Opening a writer removes what a crash left
 * behind: run files the manifest does not list and temporary manifests.
 * `opts` may be NULL for CAIRN_TLINDEX_OPTIONS_INIT. On failure *out is NULL.
 * Errors: CAIRN_ECORRUPT (a damaged MANIFEST or run file; the message names
 * the file and byte offset), CAIRN_EEXISTS (another process holds the lock
 * in a conflicting mode), CAIRN_ENOTFOUND (read_only and no index there),
 * CAIRN_EIO, CAIRN_ENOMEM. */
int cairn_tlindex_open(cairn_tlindex **out, const char *dir, const cairn_tlindex_options *opts);

/* Stops the merge thread (a merge under way is abandoned: its partial file is
 * removed), unmaps and frees. Nothing written is lost: each write was durable
 * when it returned. NULL is accepted. */
void cairn_tlindex_close(cairn_tlindex *idx);

/* Adds one shard's entries, durable when this returns (one run file, one
 * manifest update), visible to lookups all at once. `count` may be 0 (the
 * shard is then known, with no entries). The same multihash may appear more
 * than once (a CAR may hold a block twice): each is kept.
 * Errors: CAIRN_EEXISTS (the shard is already in the index: remove it
 * first), CAIRN_EINVAL (an entry's bytes are not a multihash, a read-only
 * index, or a writer that failed earlier: see below), CAIRN_EIO, CAIRN_ENOMEM.
 * After a failure the index is as before the call. A failure while the
 * manifest was being replaced leaves it undecided which of the two is on
 * disk: the index then refuses every further write (CAIRN_EINVAL) until it
 * is closed and reopened, which reads what is on disk. Lookups go on. */
int cairn_tlindex_add_shard(cairn_tlindex *idx, uint32_t shard, const cairn_tlindex_entry *entries,
			    size_t count);

/* Adds several shards in one run file and one manifest update: how small
 * shards are added fast (each add costs three fsyncs). The shard ids must be
 * distinct. All or nothing; the errors of cairn_tlindex_add_shard. */
int cairn_tlindex_add_batch(cairn_tlindex *idx, const cairn_tlindex_shard *shards, size_t count);

/* Gives the next entry of a shard: returns 1 with *out filled (its mh
 * borrowed until the next call), 0 at the end, or a negative CAIRN_E* to
 * stop the add with that error. */
typedef int (*cairn_tlindex_next_fn)(cairn_tlindex_entry *out, void *payload);

/* Adds one shard whose entries come from `next` (e.g. a walk of its CARv2
 * index), with memory bounded by sort_budget whatever the shard's size: each
 * budget's worth is sorted and written as a run, and the runs are listed in
 * one manifest update at the end. An error from `next` is returned as is,
 * and nothing is added. Otherwise as cairn_tlindex_add_shard. */
int cairn_tlindex_add_shard_iter(cairn_tlindex *idx, uint32_t shard, cairn_tlindex_next_fn next,
				 void *payload);

/* Removes a shard: durable when this returns, and from then on no lookup
 * returns it. Its records stay in the run files until merges drop them (the
 * removal itself writes only the manifest). The id may be added again after.
 * Errors: CAIRN_ENOTFOUND (no such shard), CAIRN_EINVAL, CAIRN_EIO,
 * CAIRN_ENOMEM; as add for a failure while the manifest was replaced. */
int cairn_tlindex_remove_shard(cairn_tlindex *idx, uint32_t shard);

/* Whether `shard` is in the index (added and not removed). Returns 1 or 0. */
int cairn_tlindex_has_shard(cairn_tlindex *idx, uint32_t shard);

/* Finds the places of a multihash: writes up to `cap` hits into `hits` and
 * returns how many there are in all (0: none; `hits` may be NULL when cap is
 * 0). Removed shards are never returned. Hits come newest run first and, in a
 * run, by shard and then offset: the order can change when runs merge, so
 * sort them if you need one. The cost grows with the number of hits (a block
 * held by a million shards is a million records read), not with cap.
 * Every hit must be checked against the CID (see the top of this file).
 * Errors: CAIRN_EINVAL (mh is not a multihash). Never blocks on a writer. */
int cairn_tlindex_lookup(cairn_tlindex_hit *hits, size_t cap, cairn_tlindex *idx,
			 const uint8_t *mh, size_t mh_len);

/* The same for a precomputed key (cairn_tlindex_key). */
int cairn_tlindex_lookup_key(cairn_tlindex_hit *hits, size_t cap, cairn_tlindex *idx,
			     uint64_t key);

/* Fills `out`. Never fails. */
void cairn_tlindex_stats_get(cairn_tlindex_stats *out, cairn_tlindex *idx);

/* Merges every run into one, dropping the records of removed shards (their
 * tombstones go too); waits for a background merge under way first. For
 * tests and `cairn gc`: the background merges keep the run count down on
 * their own. Space: the new run is written before the old ones are removed,
 * so it needs as much free disk as the live records take.
 * Errors: CAIRN_ECORRUPT (a run file is damaged: named with the byte offset;
 * nothing changes), CAIRN_EINVAL (read-only or failed writer), CAIRN_EIO,
 * CAIRN_ENOMEM. */
int cairn_tlindex_compact(cairn_tlindex *idx);

/* Stops the background merges so the directory's files hold still (a
 * snapshot of the store): a merge under way is canceled (its partial run
 * removed; it is checked every CANCEL_EVERY records, milliseconds) and
 * waited for, and none starts until cairn_tlindex_resume, which wakes the
 * merge thread to do what was put off. Calls nest. Writes are not held:
 * the caller holds its own writers first (an add over max_runs would wait
 * for a merge forever). `deadline` (CLOCK_REALTIME; NULL: none) bounds
 * the wait: CAIRN_ECANCELED, and nothing stays paused. */
int cairn_tlindex_pause(cairn_tlindex *idx, const struct timespec *deadline);
void cairn_tlindex_resume(cairn_tlindex *idx);

/* Runs the merge policy in the caller's thread until it picks nothing: what
 * the merge thread does in the background, waited for (after a bulk load,
 * before measuring lookups, in tests). Errors as cairn_tlindex_compact. */
int cairn_tlindex_merge(cairn_tlindex *idx);

/* Reads every run file whole and checks its checksums and the order of its
 * records (what a lookup trusts without checking). CAIRN_ECORRUPT names
 * the file and byte offset of the first fault. Slow: reads everything. */
int cairn_tlindex_verify(cairn_tlindex *idx);

/* Calls `fn` for each entry of one shard: its key (the multihash itself is
 * not stored) and its hit. Non-zero from fn stops and is returned. Cost:
 * reads every run that holds the shard whole, which after merges is most of
 * the index: for tools, not for serving. CAIRN_ENOTFOUND for an unknown
 * shard. */
typedef int (*cairn_tlindex_entry_fn)(uint64_t key, const cairn_tlindex_hit *hit, void *payload);
int cairn_tlindex_shard_foreach(cairn_tlindex *idx, uint32_t shard, cairn_tlindex_entry_fn fn,
				void *payload);

#endif
