/* cairn/store.h: the blockstore interface every higher part reads and writes
 * blocks through, and its implementations: CAR read-only and read-write,
 * a persistent store, and a memory store with a budget that flushes below a root. */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include "cairn/car.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ interface
 *
 * A store is a table of operations (versioned, so it can grow) and the
 * implementation's state; an implementation embeds `cairn_store` as its
 * first member. `free` is required; any other operation may be NULL, and
 * the cairn_store_* wrappers then answer CAIRN_EUNSUPPORTED (or, for
 * put_many and get_size, fall back on put and get).
 *
 * "Not found" is CAIRN_ENOTFOUND, never a failure: a layered store tries
 * the next one. Identity CIDs are answered by the wrappers from the CID
 * itself (has: yes, get: the digest, put: nothing to store), as go-car's
 * stores do, so implementations never see them.
 *
 * Stores do not hash what is put: a caller holding bytes from outside
 * verifies them first (cairn_cid_verify). Thread safety is stated by each
 * implementation.
 */
#define CAIRN_STORE_OPS_VERSION 3
/* What cairn_store_locate_many gives a CID its store does not number. */
#define CAIRN_STORE_NO_POSITION UINT64_MAX

typedef struct cairn_store cairn_store;

typedef struct cairn_block {
	cairn_cid cid;
	const uint8_t *data;
	size_t len;
} cairn_block;

/* Called for each block's CID; non-zero stops the iteration and is returned. */
typedef int (*cairn_store_iter_fn)(const cairn_cid *cid, void *payload);
/* Called by cairn_store_get_many for each CID in turn: `rc` 0 with the
 * block in data[0..len) (valid only during the call), or the error get
 * would have returned (its message set). Non-zero stops get_many and is
 * returned. */
typedef int (*cairn_store_block_fn)(size_t i, int rc, const uint8_t *data, size_t len,
				    void *payload);

typedef struct cairn_store_ops {
	unsigned version; /* CAIRN_STORE_OPS_VERSION */
	const char *name; /* "car", "car-rw", "lmdb", "memory", ... */
	/* Replaces the contents of `out` with the block. */
	int (*get)(cairn_store *s, cairn_buf *out, const cairn_cid *cid);
	int (*get_size)(cairn_store *s, uint64_t *size_out, const cairn_cid *cid);
	/* 1 if present, 0 if not, or a negative code. */
	int (*has)(cairn_store *s, const cairn_cid *cid);
	int (*put)(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len);
	int (*put_many)(cairn_store *s, const cairn_block *blocks, size_t n);
	int (*del)(cairn_store *s, const cairn_cid *cid);
	int (*iterate)(cairn_store *s, cairn_store_iter_fn fn, void *payload);
	/* Makes what was put durable (or, for the memory store, written to its
	 * backing store): everything, or with `root` only the blocks below it. */
	int (*flush)(cairn_store *s, const cairn_cid *root);
	void (*free)(cairn_store *s);
	/* Version 2. Gets `n` blocks, calling `fn` for each in order; may use
	 * `scratch` for bytes it copies. NULL: one get after another. */
	int (*get_many)(cairn_store *s, const cairn_cid *const *cids, size_t n,
			cairn_buf *scratch, cairn_store_block_fn fn, void *payload);
	/* Version 3, both or neither (see cairn_store_locate_many). */
	uint64_t (*positions)(cairn_store *s);
	int (*locate_many)(cairn_store *s, const cairn_cid *const *cids, size_t n,
			   uint64_t *pos);
	/* Version 3, optional: get_many with each CID's position (or
	 * CAIRN_STORE_NO_POSITION), to skip the lookups. */
	int (*get_many_at)(cairn_store *s, const cairn_cid *const *cids, const uint64_t *pos,
			   size_t n, cairn_buf *scratch, cairn_store_block_fn fn, void *payload);
} cairn_store_ops;

struct cairn_store {
	const cairn_store_ops *ops;
};

CAIRN_API int cairn_store_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid);
/* Gets `n` blocks, as cairn_store_get each, calling `fn` with each in order
 * (identity CIDs included). A store that can overlaps the lookups' memory
 * accesses (the CAR store: a block costs a few cache misses, in its index
 * and its data, and a batch has them all outstanding at once). `scratch`
 * holds copied bytes between calls, so a loop of get_many does not
 * allocate. 0, or the first non-zero return of `fn`. */
CAIRN_API int cairn_store_get_many(cairn_store *s, const cairn_cid *const *cids, size_t n,
				   cairn_buf *scratch, cairn_store_block_fn fn, void *payload);
/* A numbering of the store's blocks, for walks that mark what they have
 * seen in an array instead of a set of CIDs. cairn_store_positions is how
 * many positions there are (0: the store numbers nothing). locate_many
 * gives each of `n` CIDs the position of its block in [0, positions), or
 * CAIRN_STORE_NO_POSITION when the store does not number it (absent,
 * identity, or indexed otherwise); a store that can overlaps the lookups'
 * misses, as get_many does. A position stands for one digest: CIDs that
 * differ only in version, codec or multihash code may share it, and a
 * caller tells them apart. Always the same answer for the same CID. */
CAIRN_API uint64_t cairn_store_positions(cairn_store *s);
/* cairn_store_get_many, where pos[i] is the position locate_many gave
 * cids[i] (or CAIRN_STORE_NO_POSITION): a store may read the block there
 * without looking it up again. The same answers as get_many. */
CAIRN_API int cairn_store_get_many_at(cairn_store *s, const cairn_cid *const *cids,
				      const uint64_t *pos, size_t n, cairn_buf *scratch,
				      cairn_store_block_fn fn, void *payload);
CAIRN_API int cairn_store_locate_many(cairn_store *s, const cairn_cid *const *cids, size_t n,
				      uint64_t *pos);
CAIRN_API int cairn_store_get_size(cairn_store *s, uint64_t *size_out, const cairn_cid *cid);
CAIRN_API int cairn_store_has(cairn_store *s, const cairn_cid *cid);
CAIRN_API int cairn_store_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len);
CAIRN_API int cairn_store_put_many(cairn_store *s, const cairn_block *blocks, size_t n);
CAIRN_API int cairn_store_del(cairn_store *s, const cairn_cid *cid);
CAIRN_API int cairn_store_iterate(cairn_store *s, cairn_store_iter_fn fn, void *payload);
CAIRN_API int cairn_store_flush(cairn_store *s, const cairn_cid *root);
/* NULL is accepted. */
CAIRN_API void cairn_store_free(cairn_store *s);
CAIRN_API const char *cairn_store_name(const cairn_store *s);

/* Walks the DAG below `root` in `s` depth first (each block once), calling
 * `fn` for each CID reached; links of codecs cairn cannot decode are not
 * followed. A missing block is CAIRN_ENOTFOUND naming it. */
CAIRN_API int cairn_store_walk(cairn_store *s, const cairn_cid *root, cairn_store_iter_fn fn,
			       void *payload);

/* ------------------------------------------------------- CAR, read-only
 *
 * A CARv2 with its index, or a CARv1 (or an indexless CARv2) with a
 * detached index file, or, with `index_path` NULL and no embedded index,
 * an index built in memory on open. Blocks are read at the indexed
 * offsets from a read-only mapping of the file (with `opts->no_mmap`, or
 * where it cannot be mapped, with pread) and hashed unless
 * `opts->trusted`. The pages read count in the process's RSS (as file
 * pages: the page cache's, shared and reclaimable), and, as with the
 * mapped index, the file must not shrink while the store is open: a page
 * past its new end faults (SIGBUS). With `opts->no_mmap` an index in a
 * file is read with pread too (its pages leave the RSS after the open
 * pass), but for locate_many, which reads it in place: a walk that
 * numbers blocks by position has the index in memory, one that keeps
 * its own set of CIDs does not. The mapped index asks for huge pages
 * (lookups read it at random); the mapped blocks do with
 * `opts->huge_pages`, for a caller that reads most of them: blocks read
 * from disk then come in 2 MiB folios, a TLB entry each, where a get
 * here and there would read 2 MiB for one block. Safe for concurrent
 * readers. Matching is by multihash (a CIDv0 finds the CIDv1 block), as
 * go-car's default. Iterates in file order. No put, no del.
 * A detached index wins over an embedded one; a corrupt embedded index
 * fails the open (as in go-car: rebuild it with `cairn car index`).
 * get_size and has read only the section head and do not hash; get does.
 */
CAIRN_API int cairn_store_car_open(cairn_store **out, const char *path, const char *index_path,
				   const cairn_car_options *opts);

/* ------------------------------------------------------ CAR, read-write
 *
 * A CARv2 written as blocks stream in, readable (get, has) while writing,
 * each CID written once. On-disk order: pragma, 40-byte header (zero until
 * finalized), `root_room` bytes for the CARv1 header, the sections, and at
 * finalize the index then the header. The CARv1 header sits at the end of
 * the room so roots can be set or changed until finalize, within the room.
 *
 * Opening a file that exists and is not finalized resumes it: the sections
 * are read back, and a torn tail (a section cut at any byte, a garbled
 * length or CID, a block that does not hash) is cut off at the last good
 * section, so the file holds every block whose put completed before the
 * crash (with CAIRN_SYNC_EVERY_PUT; with the other policies, every block
 * before the last flush). A finalized file opens for reading only: puts
 * fail with CAIRN_EEXISTS.
 *
 * Blocks match (and are written once) by multihash, like the index. A put
 * whose hash cairn cannot compute is CAIRN_EUNSUPPORTED (resume must be
 * able to check every section). index_codec 0 writes no index.
 * After a failed write the store refuses all further puts (CAIRN_EIO)
 * until it is reopened, which resumes from what is on disk.
 * Not thread-safe for puts; get/has may run concurrently with each other
 * but not with put.
 */
typedef enum cairn_sync_policy {
	CAIRN_SYNC_NONE = 0,  /* durable at finalize only */
	CAIRN_SYNC_FLUSH,     /* durable at cairn_store_flush and finalize */
	CAIRN_SYNC_EVERY_PUT, /* each put is durable when it returns */
} cairn_sync_policy;

typedef struct cairn_carrw_options {
	uint32_t root_room;         /* bytes kept for the CARv1 header; default 256 */
	cairn_sync_policy sync;     /* default CAIRN_SYNC_FLUSH */
	uint64_t index_codec;       /* default CAIRN_CAR_INDEX_MH_SORTED */
	bool keep_identity;         /* write identity-CID blocks too */
	uint64_t max_section_size;  /* as in cairn_car_options; default 8 MiB */
} cairn_carrw_options;
#define CAIRN_CARRW_OPTIONS_INIT {256, CAIRN_SYNC_FLUSH, CAIRN_CAR_INDEX_MH_SORTED, false, 8u << 20}

typedef struct cairn_carrw_resume {
	uint64_t blocks;      /* sections kept */
	uint64_t cut_bytes;   /* bytes of torn tail removed (0: clean) */
	uint64_t cut_at;      /* file offset where the tail was cut */
} cairn_carrw_resume;

/* Creates `path`, or resumes it if it exists and is unfinished (`resume_out`
 * may be NULL; it says what was kept and cut). Resuming requires the same
 * root_room; the roots given replace those on file (NULL, 0 keeps them). */
CAIRN_API int cairn_store_carrw_open(cairn_store **out, cairn_carrw_resume *resume_out,
				     const char *path, const cairn_cid *roots, size_t nroots,
				     const cairn_carrw_options *opts);
/* CAIRN_ETOOBIG if the new header does not fit in root_room. */
CAIRN_API int cairn_store_carrw_set_roots(cairn_store *s, const cairn_cid *roots, size_t nroots);
/* Writes the index and then the header, fsyncs; the store stays open for
 * reading (puts now fail). */
CAIRN_API int cairn_store_carrw_finalize(cairn_store *s);

/* ----------------------------------------------------------- persistent
 *
 * Blocks in an LMDB environment in directory `dir` (created if absent),
 * keyed by multihash, with the CID's prefix kept in the value so iterate
 * gives back the CID a block was first put with. Puts are batched into one
 * write transaction until flush, iterate, free or `batch_bytes` (0: commit
 * every put), when they become durable. LMDB's writer lock belongs to a
 * thread: put, del and flush come from the thread that owns the open batch
 * (others get CAIRN_EINVAL until it commits). That thread reads its own
 * batch; other threads read what is committed. Safe for concurrent readers.
 * A put that does not fit the map fails alone (CAIRN_ETOOBIG); a small
 * reserve past map_size lets deletes (and GC) free a full map. del of a
 * missing block is CAIRN_ENOTFOUND. iterate walks a snapshot.
 */
typedef struct cairn_store_lmdb_options {
	uint64_t map_size;     /* the most the store may hold; default 64 GiB (sparse) */
	uint64_t batch_bytes;  /* commit the write batch past this; default 64 MiB */
	bool no_sync;          /* leave durability to the OS (tests, benchmarks) */
} cairn_store_lmdb_options;
#define CAIRN_STORE_LMDB_OPTIONS_INIT {64ull << 30, 64u << 20, false}

CAIRN_API int cairn_store_lmdb_open(cairn_store **out, const char *dir,
				    const cairn_store_lmdb_options *opts);

typedef struct cairn_store_gc_stats {
	uint64_t kept, deleted, deleted_bytes;
} cairn_store_gc_stats;

/* Deletes every block not reachable from `roots` (a mark by walking links,
 * then a sweep by iterating). Needs iterate and del. A block missing below
 * a root stops it with CAIRN_ENOTFOUND before anything is deleted. */
CAIRN_API int cairn_store_gc(cairn_store_gc_stats *out, cairn_store *s, const cairn_cid *roots,
			     size_t nroots);

/* --------------------------------------------------------------- memory
 *
 * New blocks are held in memory up to `budget` bytes over a backing store
 * (borrowed; it must outlive this one). The budget counts what the blocks
 * really cost in the heap (malloc's usable size and chunk head, and the hash
 * table): `held_bytes` is that charge; the other *_bytes stats are block
 * bytes.
 *
 * flush(root) writes every block below root still in memory to the backing
 * store, children before parents and root last, then evicts them; a block
 * not in memory ends the descent. Before writing anything it checks that
 * every link leaving memory is in the backing store (identity CIDs and piece
 * commitments excepted) and fails with CAIRN_ENOTFOUND, naming the block and
 * its parent, if one is nowhere. It is complete when blocks are put after the
 * blocks they link to (as AMT/HAMT flushes, importers and migrations build);
 * a caller putting parents first uses flush(NULL), which writes and evicts
 * everything in put order. When a put would pass the budget the store writes
 * its oldest blocks and evicts them down to half the budget, so a structure
 * larger than memory can be built; a block larger than the budget is written
 * straight through.
 *
 * get and has look in memory, then in the backing store. iterate lists only
 * the blocks in memory (oldest first); del removes from memory only (old and
 * new state share blocks in the backing store). free drops what was not
 * flushed: a migration that did not finish has nothing worth keeping.
 * Not thread-safe.
 */
typedef struct cairn_store_mem_stats {
	uint64_t held_blocks, held_bytes;       /* in memory now */
	uint64_t put_blocks, put_bytes;         /* accepted by put */
	uint64_t flushed_blocks, flushed_bytes; /* written to the backing store */
	uint64_t evicted_blocks, evicted_bytes; /* dropped from memory */
	uint64_t auto_flushes;                  /* flushes forced by the budget */
} cairn_store_mem_stats;

CAIRN_API int cairn_store_mem_open(cairn_store **out, cairn_store *backing, uint64_t budget);
CAIRN_API void cairn_store_mem_stats_get(cairn_store_mem_stats *out, cairn_store *s);

#ifdef __cplusplus
}
#endif
#endif
