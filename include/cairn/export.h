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
	uint64_t seen;           /* CIDs in the seen-set */
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

typedef struct cairn_export_options {
	unsigned workers;          /* 0: one per online core */
	uint64_t memory;           /* seen-set budget in bytes; 0: 256 MiB */
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
} cairn_export_options;
#define CAIRN_EXPORT_OPTIONS_INIT {0, 0, NULL, -1, NULL, 0, 1, 0, false, NULL, NULL, NULL}

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
/* 1 if present, 0 if not, or a negative code. */
CAIRN_API int cairn_seenset_has(cairn_seenset *set, const cairn_cid *cid);
CAIRN_API void cairn_seenset_stats_get(cairn_seenset_stats *out, cairn_seenset *set);
CAIRN_API void cairn_seenset_free(cairn_seenset *set);

#ifdef __cplusplus
}
#endif
#endif
