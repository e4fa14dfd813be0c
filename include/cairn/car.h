/* cairn/car.h: CAR archives: the CARv1 reader and writer, the CARv2 header,
 * and the two CARv2 index formats, built, written and read from an mmap. */
#ifndef CAIRN_CAR_H
#define CAIRN_CAR_H

#include "cairn/ipld.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- options
 *
 * Bounds and checks for reading, as go-car names them. Start from
 * CAIRN_CAR_OPTIONS_INIT and change what you need.
 */
typedef struct cairn_car_options {
	uint64_t max_header_size;  /* CARv1 header; default 32 MiB */
	uint64_t max_section_size; /* one section (CID + block); default 8 MiB */
	bool trusted;              /* skip hashing blocks against their CIDs */
	bool zero_length_as_eof;   /* a section length of 0 ends the data (Filecoin
				    * pieces are zero-padded after their CAR) */
	bool no_mmap;              /* the read-only CAR store: read blocks, and the
				    * index for lookups by CID, with pread, not
				    * from a mapping (see cairn_store_car_open) */
	bool huge_pages;           /* the read-only CAR store, mapped: the caller
				    * reads most of the blocks (an export), so
				    * those read from disk may come in 2 MiB
				    * folios (see cairn_store_car_open) */
} cairn_car_options;
#define CAIRN_CAR_OPTIONS_INIT {32u << 20, 8u << 20, false, false, false, false}

/* ----------------------------------------------------------- CARv2 header
 *
 *   offset 0   11 B  pragma 0a a1 67 "version" 02
 *   offset 11  16 B  characteristics (bit 7 of byte 11: fully indexed)
 *   offset 27   8 B  data_offset  (uint64 LE, from byte 0 to the CARv1)
 *   offset 35   8 B  data_size    (uint64 LE)
 *   offset 43   8 B  index_offset (uint64 LE, 0 = no index; the index runs to EOF)
 */
#define CAIRN_CAR_PRAGMA_LEN 11
#define CAIRN_CAR_V2_HEADER_LEN 40
#define CAIRN_CAR_V2_PREFIX_LEN (CAIRN_CAR_PRAGMA_LEN + CAIRN_CAR_V2_HEADER_LEN)

typedef struct cairn_car_v2_header {
	uint8_t characteristics[16];
	uint64_t data_offset;
	uint64_t data_size;
	uint64_t index_offset;
} cairn_car_v2_header;

CAIRN_API extern const uint8_t cairn_car_pragma[CAIRN_CAR_PRAGMA_LEN];
CAIRN_API bool cairn_car_v2_fully_indexed(const cairn_car_v2_header *h);
/* Parses the 40 bytes after the pragma; CAIRN_ECORRUPT for offsets that
 * cannot be (data_offset below 51, data_size 0, index inside the data). */
CAIRN_API int cairn_car_v2_header_decode(cairn_car_v2_header *out, const uint8_t in[CAIRN_CAR_V2_HEADER_LEN]);
CAIRN_API void cairn_car_v2_header_encode(uint8_t out[CAIRN_CAR_V2_HEADER_LEN], const cairn_car_v2_header *h);

/* CARv1 header: the DAG-CBOR map {"roots": [links], "version": 1} with its
 * length varint in front. Appends to `out`. */
CAIRN_API int cairn_car_v1_header_encode(cairn_buf *out, const cairn_cid *roots, size_t nroots);

/* ---------------------------------------------------------------- reader
 *
 * Reads a CARv1, or the CARv1 inside a CARv2, section by section with pread
 * through a window that grows only to the largest section, so memory stays
 * flat whatever the file size. Not safe for concurrent use; open one reader
 * per thread.
 */
typedef struct cairn_car_reader cairn_car_reader;

typedef struct cairn_car_section {
	cairn_cid cid;
	uint64_t offset;       /* of the length varint, from the start of the CARv1
				* payload: the value a CARv2 index stores */
	uint64_t file_offset;  /* the same, from the start of the file */
	uint64_t length;       /* the varint's value: CID bytes plus block bytes */
	uint32_t cid_len;
	uint64_t block_offset; /* of the block bytes, from the start of the file */
	uint64_t block_len;
	const uint8_t *block;  /* the block bytes: borrowed, valid until the next
				* call on the reader; NULL if not asked for */
} cairn_car_section;

/* Opens `path` and reads its headers. CAIRN_ECORRUPT (naming the file and
 * byte offset) for a malformed header, CAIRN_EUNSUPPORTED for a CAR version
 * other than 1 or 2, CAIRN_ETOOBIG for a header over the bound. `opts` may
 * be NULL for the defaults. */
CAIRN_API int cairn_car_reader_open(cairn_car_reader **out, const char *path,
				    const cairn_car_options *opts);
/* The same over an open descriptor (borrowed; not closed by the reader).
 * `name` is used in messages. */
CAIRN_API int cairn_car_reader_open_fd(cairn_car_reader **out, int fd, const char *name,
				       const cairn_car_options *opts);
/* Where a reader's bytes come from when they are not a descriptor: a mount
 * (a remote piece, a sector). `read_at` fills all of [off, off + n) or fails
 * with the error set, and is never asked for bytes past `size`; it must be
 * thread-safe for cairn_car_verify and cairn_car_section_read_source. The
 * struct is copied; `ctx` must outlive the reader. */
typedef struct cairn_car_source {
	int (*read_at)(void *ctx, void *buf, size_t n, uint64_t off);
	void *ctx;
	uint64_t size;
	const char *name;   /* for messages (copied) */
	size_t window;      /* the least a refill reads (0: 1 MiB) */
	bool remote;        /* each read is a round trip: the headers come in a
			     * small first read, and a large block skipped is
			     * read through rather than jumped over */
} cairn_car_source;

/* The same over a source. After the headers, nothing past the payload's end
 * is read (a CARv2's index is not fetched). */
CAIRN_API int cairn_car_reader_open_source(cairn_car_reader **out, const cairn_car_source *src,
					   const cairn_car_options *opts);
CAIRN_API void cairn_car_reader_free(cairn_car_reader *r);

/* 1 or 2. */
CAIRN_API unsigned cairn_car_reader_version(const cairn_car_reader *r);
/* The CARv2 header, or NULL for a CARv1. Borrowed from the reader. */
CAIRN_API const cairn_car_v2_header *cairn_car_reader_v2_header(const cairn_car_reader *r);
CAIRN_API size_t cairn_car_reader_root_count(const cairn_car_reader *r);
/* Borrowed from the reader. */
CAIRN_API const cairn_cid *cairn_car_reader_roots(const cairn_car_reader *r);
/* Where the CARv1 payload starts in the file (0 for a CARv1), the length of
 * its header (varint included), and the payload's end (data_offset +
 * data_size for a CARv2, the file size for a CARv1). */
CAIRN_API uint64_t cairn_car_reader_data_offset(const cairn_car_reader *r);
CAIRN_API uint64_t cairn_car_reader_header_len(const cairn_car_reader *r);
CAIRN_API uint64_t cairn_car_reader_data_end(const cairn_car_reader *r);
/* The descriptor read, or -1 for a source. */
CAIRN_API int cairn_car_reader_fd(const cairn_car_reader *r);
/* Bytes read so far (windows, headers and blocks). */
CAIRN_API uint64_t cairn_car_reader_bytes_read(const cairn_car_reader *r);

/* Reads the next section. Returns 1 with `out` filled, 0 at the end of the
 * data, or a negative code: CAIRN_ECORRUPT (truncated or malformed section,
 * a zero-length section unless zero_length_as_eof, the message naming file
 * and offset), CAIRN_ETOOBIG (over max_section_size), CAIRN_EMISMATCH (the
 * block does not hash to its CID; not in trusted mode). With `want_block`
 * false and the reader trusted, the block is skipped without being read. */
CAIRN_API int cairn_car_reader_next(cairn_car_reader *r, cairn_car_section *out, bool want_block);
/* Moves to the section at `offset` (relative to the payload, as indexes
 * store it). */
CAIRN_API int cairn_car_reader_seek(cairn_car_reader *r, uint64_t offset);

/* Reads one section at `offset` (relative to the payload) with pread, into
 * `block` (grown as needed); the same checks as _next. Safe to call from
 * several threads on one fd. */
CAIRN_API int cairn_car_section_read(cairn_car_section *out, cairn_buf *block, int fd,
				     const char *name, uint64_t data_offset, uint64_t data_end,
				     uint64_t offset, const cairn_car_options *opts);
/* The section's head alone at `offset` (its CID, where its block is and how
 * long), in one pread; the block is not read, so not hashed either: for
 * serving a block from the file without a copy (out->block is NULL). */
CAIRN_API int cairn_car_section_head_read(cairn_car_section *out, int fd, const char *name,
					  uint64_t data_offset, uint64_t data_end, uint64_t offset,
					  const cairn_car_options *opts);
/* The same as cairn_car_section_read over a source: two reads at most (the head with a small block,
 * then the rest of a larger one). */
CAIRN_API int cairn_car_section_read_source(cairn_car_section *out, cairn_buf *block,
					    const cairn_car_source *src, uint64_t data_offset,
					    uint64_t data_end, uint64_t offset,
					    const cairn_car_options *opts);

/* --------------------------------------------------------------- verify */
typedef struct cairn_car_stats {
	uint64_t blocks;       /* sections read */
	uint64_t block_bytes;  /* their block bytes */
	uint64_t data_bytes;   /* payload bytes walked, headers and CIDs included */
} cairn_car_stats;

/* Called for each section in file order, on the caller's thread, as it is
 * read (before its hash is checked; `block` is NULL). Non-zero stops. */
typedef int (*cairn_car_section_fn)(const cairn_car_section *s, void *payload);

/* Reads every section from where `r` stands to the end and hashes each block
 * against its CID on `threads` threads, the caller's among them (0: one per
 * core), reading on while what was read is hashed. Stops at the first failure
 * in file order, whose message names the file and the section's offset; `out`
 * counts the sections before it. Memory: 2 x threads + 2 chunks of 384 KiB,
 * and per thread a buffer as large as the largest block over 64 KiB.
 * `progress` may be NULL; it is advanced by payload bytes. `fn` may be NULL. */
CAIRN_API int cairn_car_verify(cairn_car_stats *out, cairn_car_reader *r, unsigned threads,
			       cairn_progress *progress, cairn_car_section_fn fn, void *payload);

/* ---------------------------------------------------------------- writer
 *
 * Streams a CARv1, or a CARv2 whose index is written by _finish. The 40-byte
 * CARv2 header is written last, after the index, so a file cut short is
 * never mistaken for a finished one.
 */
typedef struct cairn_car_writer cairn_car_writer;

typedef struct cairn_car_writer_options {
	unsigned version;          /* 1 or 2 */
	uint64_t index_codec;      /* CARv2: CAIRN_CAR_INDEX_MH_SORTED (the
				    * default in the INIT), CAIRN_CAR_INDEX_SORTED,
				    * or 0 for none */
	bool keep_identity;        /* write and index identity-CID blocks (sets the
				    * fully-indexed bit); default: left out, as go-car */
	bool skip_duplicates;      /* a CID put twice is written once */
	bool trusted;              /* the caller computed each CID from its data:
				    * skip the re-hash in put */
} cairn_car_writer_options;
#define CAIRN_CAR_WRITER_OPTIONS_INIT {2, CAIRN_CAR_INDEX_MH_SORTED, false, false}

/* Creates or truncates `path`. The roots are written in the header. `opts`
 * may be NULL for CAIRN_CAR_WRITER_OPTIONS_INIT (a CARv2 with a
 * MultihashIndexSorted index). */
CAIRN_API int cairn_car_writer_open(cairn_car_writer **out, const char *path,
				    const cairn_cid *roots, size_t nroots,
				    const cairn_car_writer_options *opts);
/* Appends one block. Fails with CAIRN_EMISMATCH if the data does not hash to
 * the CID (a writer never makes a CAR a reader would refuse). After any
 * failure the writer refuses further work. */
CAIRN_API int cairn_car_writer_put(cairn_car_writer *w, const cairn_cid *cid,
				   const uint8_t *data, size_t len);
/* Appends to `out` what precedes a block in its CAR section: the varint
 * of the CID's and the block's length, then the CID's bytes. */
CAIRN_API int cairn_car_section_head(cairn_buf *out, const cairn_cid *cid, uint64_t block_len);
/* Appends n sections the caller encoded (cairn_car_section_head, then the
 * block), back to back in bytes[0..len):
 * each the varint of its CID's and block's length, the CID's bytes, the
 * block; cids[i]'s starts at offsets[i]. The bytes are written as they are,
 * with one write, not copied into the writer's buffer (an export's blocks
 * were copied twice on their way). Only for a writer opened trusted and
 * without skip_duplicates (else CAIRN_EINVAL): nothing is checked, not even
 * identity CIDs are left out. */
CAIRN_API int cairn_car_writer_put_sections(cairn_car_writer *w, const uint8_t *bytes,
					    size_t len, const cairn_cid *cids,
					    const size_t *offsets, size_t n);
/* Replaces the roots written at open, for a writer that learns its root
 * last (a UnixFS import): open with a placeholder of the same encoded
 * length, as ipfs-car does. CAIRN_EINVAL if the new CARv1 header's length
 * differs; the header is rewritten in place by finish. */
CAIRN_API int cairn_car_writer_set_roots(cairn_car_writer *w, const cairn_cid *roots,
					 size_t nroots);
/* Writes the index and the header (CARv2), fsyncs and closes. */
CAIRN_API int cairn_car_writer_finish(cairn_car_writer *w);
/* Frees; a writer not finished leaves its file as it is. NULL is accepted. */
CAIRN_API void cairn_car_writer_free(cairn_car_writer *w);
CAIRN_API uint64_t cairn_car_writer_block_count(const cairn_car_writer *w);

/* ---------------------------------------------------------------- indexes
 *
 * An index maps a multihash digest to the offsets (relative to the CARv1
 * payload) of the sections holding it. On disk: varint(codec) then the body.
 *
 * 0x0400 IndexSorted: int32 LE nbuckets; per bucket, by width ascending:
 *   uint32 LE width (digest length + 8), int64 LE bytes (count x width),
 *   entries digest|uint64 LE offset sorted by digest.
 * 0x0401 MultihashIndexSorted: int32 LE ncodes; per code, ascending:
 *   uint64 LE multihash code, then an IndexSorted body.
 *
 * Entries with equal digests are ordered by offset, so cairn's output is
 * deterministic where go-car's sort leaves it unspecified.
 */
enum {
	CAIRN_CAR_INDEX_SORTED = 0x0400,
	CAIRN_CAR_INDEX_MH_SORTED = 0x0401,
};

typedef struct cairn_car_index_builder cairn_car_index_builder;

CAIRN_API int cairn_car_index_builder_new(cairn_car_index_builder **out, uint64_t codec,
					  bool keep_identity);
/* Records one section. Identity CIDs are dropped unless keep_identity. */
CAIRN_API int cairn_car_index_builder_add(cairn_car_index_builder *b, const cairn_cid *cid,
					  uint64_t offset);
CAIRN_API uint64_t cairn_car_index_builder_count(const cairn_car_index_builder *b);
/* Sorts and appends the encoded index (codec varint included) to `out`. */
CAIRN_API int cairn_car_index_builder_encode(cairn_car_index_builder *b, cairn_buf *out);
CAIRN_API void cairn_car_index_builder_free(cairn_car_index_builder *b);

/* Builds the index of a CAR's payload in one pass (the reader is left at
 * the end). */
CAIRN_API int cairn_car_index_build(cairn_buf *out, cairn_car_reader *r, uint64_t codec,
				    bool keep_identity);

/* An index read in place from an mmap: nothing is copied to the heap.
 * Opening checks the structure (every count fits the bytes that remain);
 * cairn_car_index_check also checks the order of the entries. */
typedef struct cairn_car_index cairn_car_index;

/* Maps `path` and reads the index that starts at `offset` (0 for a
 * detached index file, index_offset for a CARv2). */
CAIRN_API int cairn_car_index_open(cairn_car_index **out, const char *path, uint64_t offset);
/* The same over bytes the caller keeps alive. */
CAIRN_API int cairn_car_index_open_bytes(cairn_car_index **out, const uint8_t *p, size_t len,
					 const char *name);
CAIRN_API void cairn_car_index_free(cairn_car_index *idx);
CAIRN_API uint64_t cairn_car_index_codec(const cairn_car_index *idx);
CAIRN_API uint64_t cairn_car_index_count(const cairn_car_index *idx);
/* CAIRN_ECORRUPT if entries are out of order (binary search would miss them). */
CAIRN_API int cairn_car_index_check(const cairn_car_index *idx);
/* For an index cairn_car_index_open mapped: the offset in its file of `p`,
 * a byte of the index (as foreach hands out), so a caller can read entries
 * with pread instead of through the mapping. UINT64_MAX for an index over
 * bytes in memory. */
CAIRN_API uint64_t cairn_car_index_file_offset(const cairn_car_index *idx, const uint8_t *p);
/* Drops the pages of the index's mapping from the process's memory: they
 * are read from the file (the page cache) again when next touched. For a
 * caller that reads the entries with pread, or passed over them once, and
 * wants its RSS to stay its own. Nothing for an index over bytes in memory. */
CAIRN_API void cairn_car_index_release(const cairn_car_index *idx);

/* Finds the sections for a CID's multihash: writes up to `max` offsets and
 * returns how many there are in all (0: not there). For IndexSorted only
 * the digest is compared, as go-car does. Thread-safe. */
CAIRN_API int cairn_car_index_find(const cairn_car_index *idx, const cairn_cid *cid,
				   uint64_t *offsets, size_t max);

typedef int (*cairn_car_index_fn)(uint64_t mh_code, const uint8_t *digest, size_t digest_len,
				  uint64_t offset, void *payload);
/* Calls `fn` for every entry in on-disk order; mh_code is 0 for IndexSorted. */
CAIRN_API int cairn_car_index_foreach(const cairn_car_index *idx, cairn_car_index_fn fn,
				      void *payload);
typedef int (*cairn_car_index_bucket_fn)(uint64_t mh_code, const uint8_t *entries,
					 size_t digest_len, uint64_t count, void *payload);
/* Calls `fn` for every bucket in on-disk order, with its `count` entries
 * (each the digest, then the uint64 LE offset) laid out from `entries`,
 * without reading them: for a caller that goes through them once itself. */
CAIRN_API int cairn_car_index_foreach_bucket(const cairn_car_index *idx,
					     cairn_car_index_bucket_fn fn, void *payload);

#ifdef __cplusplus
}
#endif
#endif
