/* cairn/export.h: parallel export of a DAG into a CAR: from one or more
 * roots over any blockstore, every block exactly once, in bounded memory. */
#ifndef CAIRN_EXPORT_H
#define CAIRN_EXPORT_H

#include "cairn/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- export
 *
 * N worker threads take CIDs from a bounded FIFO, read each block from the
 * store once, scan its links and claim each new one in a seen-set; one
 * writer thread appends the blocks to the CAR. The seen-set is exact (a
 * CID is never taken for seen when it is not, so no block is lost) and
 * spills sorted runs to a temporary file past `memory` bytes. Blocks are in
 * the order the workers met them, not depth-first order; the CAR's header
 * holds the roots given, in their order. Identity CIDs are followed (their
 * data is the CID) but not written, as go-car does.
 *
 * The CAR is written to "<path>.partial" and renamed to `path` when it is
 * complete and fsynced. On cancellation or any failure the partial file is
 * removed: there is either a complete CAR at `path` or nothing new there
 * (a file that was at `path` before is left as it was).
 *
 * The store's get is called from several threads at once: CAR read-only,
 * LMDB, and read-write CAR (while nothing is put) allow it; for others
 * (the memory store) set `serialize_gets`.
 */
typedef struct cairn_export cairn_export;

typedef struct cairn_export_stats {
	uint64_t blocks;         /* written to the CAR */
	uint64_t bytes;          /* block bytes written */
	uint64_t reads;          /* store gets (identity CIDs are not read) */
	uint64_t links;          /* links scanned */
	uint64_t identity;       /* identity CIDs met (followed, not written) */
	uint64_t seen;           /* CIDs claimed (by position and in the seen-set) */
	uint64_t by_position;    /* of which claimed by the store's positions */
	uint64_t seen_spilled;   /* of which on disk */
	uint64_t spills;         /* sorted runs written */
	uint64_t disk_checks;    /* lookups the filters could not settle */
	uint64_t elapsed_ns;
} cairn_export_stats;

/* Called on the thread running cairn_export_run about ten times a second
 * and once at the end (`done` true). */
typedef void (*cairn_export_progress_fn)(const cairn_export_stats *stats, bool done,
					 void *payload);
/* With `path` NULL, blocks go here instead of to a CAR, one at a time on
 * the writer thread; non-zero stops the export and is returned. */
typedef int (*cairn_export_block_fn)(const cairn_cid *cid, const uint8_t *data, size_t len,
				     void *payload);
/* Claims `link` and queues it with `tag` (the tag its block's links
 * callback will see): for a links callback to call. 0, or a negative code
 * to return at once (the export stops). Identity CIDs are queued unclaimed. */
typedef int (*cairn_export_emit_fn)(const cairn_cid *link, uint32_t tag, void *ctx);
/* Chooses the links to follow out of a block, in place of the codec filter
 * and cairn_block_links: called on a worker thread, for every block read
 * (identity CIDs included), with the tag it was queued with (the roots'
 * is 0); it calls `emit` for each link to follow, with the tag that link is
 * to carry. A negative return stops the export and is returned (a
 * positive one as CAIRN_ERROR). When a block is not in the store it is
 * called with `data` NULL: 0 skips the block (it is not written), non-zero
 * fails as a missing block does. */
typedef int (*cairn_export_links_fn)(const cairn_cid *cid, uint32_t tag, const uint8_t *data,
				     size_t len, cairn_export_emit_fn emit, void *ctx,
				     void *payload);

typedef struct cairn_export_options {
	unsigned workers;          /* 0: one per online core */
	uint64_t memory;           /* for what has been seen, in bytes; 0: 256 MiB.
				    * A store that numbers its blocks (a CAR with
				    * an index) takes two bits per block of it when
				    * that is at most half; the seen-set the rest */
	const char *spill_dir;     /* the seen-set's temporary file; NULL: $TMPDIR or /tmp */
	int32_t max_depth;         /* follow links this many levels below the roots:
				    * 0 the roots alone, 1 their children...; -1 no
				    * limit. With a limit a block is in when its
				    * shortest path from a root is short enough: the
				    * walk goes level by level, and the FIFO then
				    * holds a whole level (it is not bounded) */
	const uint64_t *codecs;    /* follow links only out of blocks of these codecs;
				    * NULL: every codec cairn scans (dag-pb, dag-cbor, dag-json) */
	size_t ncodecs;
	unsigned car_version;      /* 1 (default, as Lotus writes) or 2 with an index */
	size_t queue_len;          /* the FIFO's bound, in CIDs; 0: 4096 */
	bool serialize_gets;       /* the store's get is not thread-safe */
	cairn_export_progress_fn progress;
	cairn_export_block_fn sink;
	void *payload;             /* for progress and sink */
	cairn_export_links_fn links; /* the links to follow; NULL: all of them
				    * (as `codecs` says); called from several
				    * threads at once */
	void *links_payload;
	bool seen_by_cid;          /* claim every CID in the seen-set, even where
				    * the store numbers its blocks (for tests and
				    * benchmarks of the seen-set) */
} cairn_export_options;
#define CAIRN_EXPORT_OPTIONS_INIT {0, 0, NULL, -1, NULL, 0, 1, 0, false, NULL, NULL, NULL, NULL, NULL, false}

/* Prepares an export over `store` (borrowed: it must outlive the export).
 * `opts` may be NULL for the defaults; it is copied, but `codecs`,
 * `spill_dir` and `payload` are borrowed. CAIRN_EINVAL for bad options. */
CAIRN_API int cairn_export_new(cairn_export **out, cairn_store *store,
			       const cairn_export_options *opts);
/* Exports the DAG below `roots` into a CAR at `path` (or to opts->sink when
 * `path` is NULL) and blocks until it is done. Once per export object.
 * Returns 0, or CAIRN_ECANCELED, CAIRN_ENOTFOUND (a block is missing: the
 * message names it), CAIRN_ECORRUPT (a block
 * that does not decode), CAIRN_EIO; with no CAR at `path` on any failure.
 * `stats_out` may be NULL; it is filled on failure too. */
CAIRN_API int cairn_export_run(cairn_export_stats *stats_out, cairn_export *ex,
			       const cairn_cid *roots, size_t nroots, const char *path);
/* Asks a running (or not yet started) export to stop: every thread stops at
 * its next block or wait, and run returns CAIRN_ECANCELED within
 * milliseconds. Safe from any thread and from a signal handler (it only
 * sets a flag). */
CAIRN_API void cairn_export_cancel(cairn_export *ex);
/* Frees; NULL is accepted. Not while run is running. */
CAIRN_API void cairn_export_free(cairn_export *ex);

/* --------------------------------------------------------- the seen-set
 *
 * The exact concurrent CID set the export claims blocks with, public for
 * tests and for other walks. CIDs (compared by their whole binary form) sit
 * in sharded hash tables under one lock per shard; past `memory` bytes a
 * shard is sorted and written as a run to an unlinked temporary file in
 * `dir`, with a Bloom filter and a sparse index of the run kept in memory.
 * Check-and-add holds the CID's shard lock through the memory table, the
 * filters and any disk lookups, so it is atomic per CID. Thread-safe.
 */
typedef struct cairn_seenset cairn_seenset;

typedef struct cairn_seenset_stats {
	uint64_t count;          /* CIDs in the set */
	uint64_t spilled;        /* of which in runs on disk */
	uint64_t runs;
	uint64_t disk_checks;    /* lookups that had to read a run */
	uint64_t memory;         /* bytes held: tables, filters, sparse indexes */
} cairn_seenset_stats;

/* `memory` 0: 256 MiB; `dir` NULL: $TMPDIR or /tmp (the file is created
 * only at the first spill). */
CAIRN_API int cairn_seenset_new(cairn_seenset **out, uint64_t memory, const char *dir);
/* Adds `cid`: 1 if it was new, 0 if it was there, or a negative code
 * (CAIRN_ENOMEM, CAIRN_EIO from a spill or a disk lookup). */
CAIRN_API int cairn_seenset_add(cairn_seenset *set, const cairn_cid *cid);
/* Adds `n` CIDs, as cairn_seenset_add each, in order: new[i] is 1 if
 * cids[i] was new (a CID given twice is new the first time only). Faster
 * than one call each: every table line is asked for before the first is
 * read, so the cache misses overlap. 0, or a negative code (the CIDs
 * before the failing one are added, new[] says which). */
CAIRN_API int cairn_seenset_add_many(cairn_seenset *set, const cairn_cid *const *cids, size_t n,
				     uint8_t *new);
/* 1 if present, 0 if not, or a negative code. */
CAIRN_API int cairn_seenset_has(cairn_seenset *set, const cairn_cid *cid);
CAIRN_API void cairn_seenset_stats_get(cairn_seenset_stats *out, cairn_seenset *set);
CAIRN_API void cairn_seenset_free(cairn_seenset *set);

/* ------------------------------------------------- ranged chain export
 *
 * Lotus's `chain export-range` (chain/store/snapshot.go, walkScheduler's
 * processTask since lotus#10145) as a links callback for the export above:
 * the roots are the head tipset's block headers, and
 *   - a header's Parents are followed as headers, down to genesis;
 *   - above the tail (height > tail) its Messages (--messages),
 *     ParentMessageReceipts (--receipts) and ParentStateRoot (--stateroots)
 *     are followed, and every block below those completely;
 *   - genesis (height 0) has its Parents and ParentStateRoot followed
 *     completely whatever the flags;
 *   - only links of codecs CBOR, DAG-CBOR and raw are followed, never
 *     identity CIDs; only DAG-CBOR blocks have links;
 *   - a block missing below the receipts is skipped (event AMTs may be
 *     absent), any other missing block fails the export.
 */
typedef struct cairn_chain_range {
	int64_t tail;              /* height; messages, receipts, state above it */
	bool messages, receipts, stateroots;
} cairn_chain_range;
#define CAIRN_CHAIN_RANGE_INIT {0, false, false, false}

/* What the walk reads of a BlockHeader (the 16-field tuple of lotus
 * chain/types/blockheader.go). */
typedef struct cairn_chain_header {
	int64_t height;
	size_t nparents;
	cairn_cid state_root;      /* ParentStateRoot */
	cairn_cid receipts;        /* ParentMessageReceipts */
	cairn_cid messages;        /* Messages: the TxMeta [bls AMT, secpk AMT] */
	uint64_t timestamp;
} cairn_chain_header;

/* Decodes a header, calling `parent_fn` (may be NULL) for each parent in
 * order; a non-zero return from it stops and is returned. CAIRN_ECORRUPT
 * for bytes that are not a 16-field header ("chain: block header: at byte
 * N: ..."). Thread-safe. */
CAIRN_API int cairn_chain_header_decode(cairn_chain_header *out, const uint8_t *p, size_t len,
					cairn_link_fn parent_fn, void *payload);

/* The links callback: set opts.links to it and opts.links_payload to a
 * cairn_chain_range (borrowed for the export), and run the export with the
 * head tipset's CIDs as roots, which become the CAR's roots. Thread-safe;
 * the tags it gives are its own (the roots' 0 is a header). */
CAIRN_API int cairn_chain_range_links(const cairn_cid *cid, uint32_t tag, const uint8_t *data,
				      size_t len, cairn_export_emit_fn emit, void *ctx,
				      void *payload);

/* The height of the tipset `head` (its blocks read from `store`):
 * CAIRN_EINVAL when the blocks do not share one height or there are none,
 * CAIRN_ENOTFOUND when one is missing, CAIRN_ECORRUPT for one that is not a
 * header. */
CAIRN_API int cairn_chain_tipset_height(int64_t *height_out, cairn_store *store,
					const cairn_cid *head, size_t nhead);

/* Lotus's name for a ranged export, "snapshot_<tail>_<head>_<unix time>.car",
 * into out[0..cap); the length, as snprintf. */
CAIRN_API int cairn_chain_snapshot_name(char *out, size_t cap, int64_t tail, int64_t head,
					int64_t unix_time);

/* Runs a ranged export in one call: the head's height is checked against
 * range->tail (CAIRN_EINVAL when the tail is above it), `opts` (may be
 * NULL) gets the links callback, and the CAR goes to `path`. As
 * cairn_export_run otherwise. */
CAIRN_API int cairn_chain_export_range(cairn_export_stats *stats_out, cairn_store *store,
				       const cairn_cid *head, size_t nhead,
				       const cairn_chain_range *range,
				       const cairn_export_options *opts, const char *path);

#ifdef __cplusplus
}
#endif
#endif
