/* cairn/unixfs.h: files and directories as UnixFS DAGs. The importer turns
 * a tree on disk into blocks with exactly the CIDs of ipfs-car or kubo; the
 * exporter turns a DAG back into files, verifying every block, in memory
 * that does not grow with the file. */
#ifndef CAIRN_UNIXFS_H
#define CAIRN_UNIXFS_H

#include "cairn/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------ the Data message
 *
 * UnixFS keeps its metadata in a protobuf message (unixfs.proto) held in
 * the Data field of a DAG-PB node.
 */
typedef enum cairn_unixfs_type {
	CAIRN_UNIXFS_RAW = 0,
	CAIRN_UNIXFS_DIRECTORY = 1,
	CAIRN_UNIXFS_FILE = 2,
	CAIRN_UNIXFS_METADATA = 3,
	CAIRN_UNIXFS_SYMLINK = 4,
	CAIRN_UNIXFS_HAMT_SHARD = 5,
} cairn_unixfs_type;

/* The murmur3-x64-64 multihash code HAMT shards declare (hashType). */
#define CAIRN_UNIXFS_HAMT_MURMUR3 0x22
/* That hash of `len` bytes: murmur3 x64 128 with seed 0, its first half,
 * read big-endian, as go-unixfs and the JS importers key HAMT entries (a
 * name's slot at each level is the next bits from the top). */
CAIRN_API uint64_t cairn_unixfs_hamt_hash(const void *data, size_t len);

typedef struct cairn_unixfs_data {
	cairn_unixfs_type type;
	const uint8_t *data;    /* borrowed from the decoded bytes */
	size_t data_len;
	bool has_data;
	bool has_filesize;
	bool has_hash_type;
	bool has_fanout;
	bool has_mode;
	bool has_mtime;
	uint64_t filesize;
	uint64_t *blocksizes;   /* decode: from the arena; encode: the caller's */
	size_t nblocksizes;
	uint64_t hash_type;
	uint64_t fanout;
	uint32_t mode;
	int64_t mtime_secs;
	uint32_t mtime_nsecs;   /* 0 when absent */
} cairn_unixfs_data;

/* Decodes a Data message. Fields come in any order, blocksizes packed or
 * not, as proto2 readers must accept; unknown fields are skipped; a
 * missing Type, a truncated field or a type past HAMTShard is
 * CAIRN_ECORRUPT naming the byte offset. */
CAIRN_API int cairn_unixfs_data_decode(cairn_unixfs_data *out, cairn_arena *arena,
				       const uint8_t *p, size_t len);
/* Appends the message, fields in number order, blocksizes unpacked, only
 * the fields marked present (and Type always): the bytes the reference
 * encoders write. */
CAIRN_API int cairn_unixfs_data_encode(cairn_buf *out, const cairn_unixfs_data *d);

/* ------------------------------------------------------------- importer */
typedef enum cairn_unixfs_profile {
	/* ipfs-car 3 (and the importer's unixfs-v1-2025 profile): 1 MiB
	 * chunks, raw leaves, CIDv1, balanced width 1024, a wrapping
	 * directory, HAMT shards past 1,000 entries, files only (empty
	 * directories are left out). */
	CAIRN_UNIXFS_PROFILE_IPFS_CAR = 0,
	/* kubo's `ipfs add` (the importer's unixfs-v0-2015 profile): 256 KiB
	 * chunks, DAG-PB leaves, CIDv0, balanced width 174, no wrapping
	 * directory, HAMT shards once the links' names and CIDs pass 256 KiB,
	 * empty directories kept. */
	CAIRN_UNIXFS_PROFILE_KUBO = 1,
} cairn_unixfs_profile;

typedef enum cairn_unixfs_shard_rule {
	CAIRN_UNIXFS_SHARD_ENTRIES = 0,    /* more than `shard_threshold` entries */
	CAIRN_UNIXFS_SHARD_LINK_BYTES = 1, /* Σ(name bytes + CID bytes) > threshold */
} cairn_unixfs_shard_rule;

typedef struct cairn_unixfs_params {
	/* Whose rules turn input paths into a tree (see cairn_unixfs_import):
	 * ipfs-car's (files only) or kubo's (directories as they are). */
	cairn_unixfs_profile naming;
	uint32_t chunk_size;      /* fixed-size chunker, bytes */
	uint32_t width;           /* most links per file node (balanced layout) */
	unsigned cid_version;     /* 0 or 1 */
	bool raw_leaves;          /* leaves as raw blocks, else UnixFS File nodes */
	bool wrap;                /* put the inputs in a directory */
	bool hidden;              /* include names starting with '.' */
	cairn_unixfs_shard_rule shard_rule;
	uint64_t shard_threshold;
	unsigned threads;         /* hashing threads; 0 = one per core */
} cairn_unixfs_params;

/* Fills `p` with a profile's settings (threads 0). */
CAIRN_API void cairn_unixfs_params_init(cairn_unixfs_params *p, cairn_unixfs_profile profile);

/* Where the importer sends each block, in the order a reader of the CAR
 * would want: children before parents, the root last. The CID was computed
 * from the data by the importer. Non-zero stops the import and is returned. */
typedef int (*cairn_unixfs_put_fn)(void *payload, const cairn_cid *cid,
				   const uint8_t *data, size_t len);

/* Progress callback: bytes of file content read so far. May be NULL. */
typedef void (*cairn_unixfs_progress_fn)(void *payload, uint64_t bytes);

typedef struct cairn_unixfs_import_result {
	cairn_cid root;
	uint64_t tsize;          /* cumulative DAG size, as in the parent's link */
	uint64_t files;
	uint64_t dirs;
	uint64_t bytes;          /* file content */
	uint64_t blocks;
} cairn_unixfs_import_result;

/* Imports the files and directories at `paths` as the profile's reference
 * tool would given the same arguments:
 *   - one regular file without `wrap`: the file's DAG;
 *   - otherwise a directory holding the inputs, named as the reference
 *     names them (ipfs-car: paths relative to their common parent; kubo:
 *     one directory argument is itself the root, without `wrap`).
 * Symbolic links and special files are skipped (with a log line), as
 * ipfs-car skips them. Memory is bounded by the chunk size times the
 * threads, plus one entry per directory entry being built. */
CAIRN_API int cairn_unixfs_import(cairn_unixfs_import_result *out,
				  const cairn_unixfs_params *params,
				  const char *const *paths, size_t npaths,
				  cairn_unixfs_put_fn put, void *payload,
				  cairn_unixfs_progress_fn progress, void *progress_payload);

/* Imports the bytes read from `fd` to its end as one file. */
CAIRN_API int cairn_unixfs_import_fd(cairn_unixfs_import_result *out,
				     const cairn_unixfs_params *params, int fd, const char *name,
				     cairn_unixfs_put_fn put, void *payload);

/* ------------------------------------------------------------- exporter */
typedef struct cairn_unixfs_export_options {
	unsigned threads;        /* hashing and writing threads; 0 = one per core */
	bool overwrite;          /* replace an existing output file */
	cairn_unixfs_progress_fn progress;
	void *progress_payload;
} cairn_unixfs_export_options;

typedef struct cairn_unixfs_export_result {
	uint64_t files;
	uint64_t dirs;
	uint64_t bytes;          /* file content written */
	uint64_t blocks;         /* blocks read and verified */
} cairn_unixfs_export_result;

/* Writes the UnixFS DAG below `root`, read from `store`, to `dest`: a file
 * for a file root (raw block, File node), a directory for a directory or
 * HAMT shard root. Every block is hashed against its CID before use
 * (CAIRN_EMISMATCH); a missing block is CAIRN_ENOTFOUND. File content is
 * written with pwrite at its offset as blocks arrive, on `threads` workers,
 * so memory does not grow with the file. An entry name that is empty, ".",
 * "..", or holds '/' or NUL is refused (CAIRN_ECORRUPT naming the directory
 * and the name), as is a file whose blocksizes do not add up. Entries are
 * created relative to their directory's descriptor, never through a link.
 * Symlinks are made only when their target is relative and stays inside the
 * tree; others, a symlink root and Metadata nodes are CAIRN_EUNSUPPORTED.
 * Past 64 levels of a file or a HAMT, or 256 nested directories:
 * CAIRN_ETOOBIG. An existing `dest` is CAIRN_EEXISTS unless `overwrite`,
 * which replaces files and links and merges into directories; on failure a
 * `dest` that did not exist before is removed. The store must allow
 * concurrent get (the CAR stores do), or it is locked around; `progress` is
 * called from the workers, one at a time. */
CAIRN_API int cairn_unixfs_export(cairn_unixfs_export_result *out, cairn_store *store,
				  const cairn_cid *root, const char *dest,
				  const cairn_unixfs_export_options *opts);

#ifdef __cplusplus
}
#endif

#endif
