/* tlindex_i.h: what tlindex.c and tlrun.c share (not public): the record, the
 * run file (written, mapped, searched, read in order) and the hash. */
#ifndef CAIRN_DAGSTORE_TLINDEX_I_H
#define CAIRN_DAGSTORE_TLINDEX_I_H

#include <stdatomic.h>

#include "dagstore/tlindex.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tlindex maps its little-endian records in place: little-endian hosts only"
#endif

#define TL_PAGE 4096u          /* file page: the unit of a cold read */
#define TL_REC 24u             /* one record */
#define TL_PER_PAGE 170u       /* records in a page: 170 x 24 = 4080 */
#define TL_PAGE_COUNT_AT 4080u /* u32 records in the page, u32 zero */
#define TL_PAGE_SUM_AT 4088u   /* u64 checksum of bytes [0, 4088) */
#define TL_HEADER_LEN 128u     /* used bytes of the header page */
#define TL_HEADER_SUM_AT 120u  /* u64 checksum of bytes [0, 120) */
#define TL_BLOOM_BLOCK 32u     /* a bloom block: 8 x u32, one bit set in each */
#define TL_SHARD_LEN 16u       /* one shard table entry */

/* A record as it lies in a run file (little-endian, 8-byte aligned). */
typedef struct tl_rec {
	uint64_t key;
	uint32_t shard;
	uint32_t size;
	uint64_t offset;
} tl_rec;
_Static_assert(sizeof(tl_rec) == TL_REC, "a record is 24 bytes");

/* A shard table entry: how many records of `shard` a run holds. */
typedef struct tl_shard_count {
	uint32_t shard;
	uint32_t zero;
	uint64_t count;
} tl_shard_count;
_Static_assert(sizeof(tl_shard_count) == TL_SHARD_LEN, "a table entry is 16 bytes");

/* A mapped run file. Immutable once opened; shared by the versions that list
 * it (refs), unmapped when the last lets go. */
typedef struct tl_run {
	atomic_long refs;
	uint64_t number;
	uint64_t seq;
	uint64_t count;          /* records */
	uint64_t npages;
	uint64_t min_key, max_key; /* min > max when count is 0 */
	uint64_t file_bytes;
	const uint8_t *map;
	size_t map_len;
	uint64_t *fences;        /* heap: the first key of each page */
	const tl_shard_count *shards; /* in the map, ascending by shard */
	uint64_t nshards;
	uint64_t bloom_blocks;   /* 0: the run has no bloom filter */
	uint64_t bloom_at;       /* its offset in the file */
	uint64_t bloom_sum;      /* its checksum, from the header */
	_Atomic(uint32_t *) bloom; /* heap copy, loaded by run_load_bloom */
	char *path;
} tl_run;

/* Split-block bloom filter (as Parquet's): the key's high half picks a
 * 32-byte block, its low half one bit in each of the block's 8 words. */
static inline bool tl_bloom_has(const uint32_t *bloom, uint64_t nblocks, uint64_t key)
{
	static const uint32_t salt[8] = {0x47b6137bu, 0x44974d91u, 0x8824ad5bu, 0xa2b7289du,
					 0x705495c7u, 0x2df1424bu, 0x9efc4947u, 0x5c6bfb31u};
	const uint32_t *blk = bloom + 8 * (((key >> 32) * nblocks) >> 32);
	uint32_t h = (uint32_t)key;
	uint32_t miss = 0;

	for (int i = 0; i < 8; i++)
		miss |= ~blk[i] & (1u << ((h * salt[i]) >> 27));
	return miss == 0;
}

static inline const tl_rec *tl_run_rec(const tl_run *r, uint64_t i)
{
	return (const tl_rec *)(const void *)(r->map + TL_PAGE + (i / TL_PER_PAGE) * TL_PAGE +
					      (i % TL_PER_PAGE) * TL_REC);
}

/* (key, shard, offset) order: the order of records in a run. */
static inline int tl_rec_cmp(const tl_rec *a, const tl_rec *b)
{
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->shard != b->shard)
		return a->shard < b->shard ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return a->size < b->size ? -1 : a->size > b->size;
}

/* XXH64 of p[0..n) with `seed`: the key of a multihash (seed 0) and every
 * checksum in the files. */
uint64_t cairn_tlindex__hash(const void *p, size_t n, uint64_t seed);

/* Sorts n records by tl_rec_cmp; `scratch` has room for n. */
void cairn_tlindex__sort(tl_rec *recs, size_t n, tl_rec *scratch);

/* "<dir>/<16 hex digits>.run" into out (PATH_MAX). */
int cairn_tlindex__run_path(char *out, const char *dir, uint64_t number);

/* ----------------------------------------------------------- run writer */

typedef struct tl_writer tl_writer;

/* Creates the run file (O_EXCL). `sync`: fsync at finish, and start
 * writeback as it goes. The bloom filter gets `bloom_bits` bits for each of
 * `expect` records (0: no filter); more records than expected only raise
 * its false-positive rate. */
int cairn_tlindex__writer_open(tl_writer **out, const char *dir, uint64_t number, uint64_t seq,
			       bool sync, uint64_t expect, unsigned bloom_bits);
/* Appends records, which must come in tl_rec_cmp order (not checked). */
int cairn_tlindex__writer_add(tl_writer *w, const tl_rec *recs, size_t n);
/* Writes the fences, the shard table and the header; fsyncs; closes. The
 * table must be ascending by shard and its counts must add up to the
 * records written. Does not free w: cairn_tlindex__writer_free does. */
int cairn_tlindex__writer_finish(tl_writer *w, const tl_shard_count *shards, size_t nshards);
/* Whether a test hook stopped the writer (its file must then stay). */
bool cairn_tlindex__writer_crashed(const tl_writer *w);
/* Frees; with `remove`, closes and removes the file too (unless a test hook
 * stopped the writer). NULL is accepted. */
void cairn_tlindex__writer_free(tl_writer *w, bool remove);
uint64_t cairn_tlindex__writer_count(const tl_writer *w);

/* ---------------------------------------------------------------- runs */

/* Maps and checks a run file: header, sizes, fences and shard table (their
 * checksums and order), not the record pages (cairn_tlindex__run_check).
 * `seq`/`count` are what the manifest says, checked against the header.
 * CAIRN_ECORRUPT names the file and byte offset; CAIRN_ENOTFOUND if it is
 * missing. The run starts with one reference. */
int cairn_tlindex__run_open(tl_run **out, const char *dir, uint64_t number, uint64_t seq,
			    uint64_t count);
void cairn_tlindex__run_ref(tl_run *r);
/* Reads the run's bloom filter into the heap (checking its checksum), once;
 * lookups then skip the run for keys it does not hold. 0 if it has none. */
int cairn_tlindex__run_load_bloom(tl_run *r);
void cairn_tlindex__run_unref(tl_run *r);

/* The index of the first record whose key is >= key (count if none). */
uint64_t cairn_tlindex__run_lower_bound(const tl_run *r, uint64_t key);

/* Whether the run's shard table lists `shard`; its count in *count. */
bool cairn_tlindex__run_has_shard(const tl_run *r, uint32_t shard, uint64_t *count);

/* Reads a run's records in order, checking each page's checksum and count
 * and the order of the records, with the pages ahead asked for in large
 * reads. */
typedef struct tl_cursor {
	const tl_run *run;
	uint64_t i;          /* index of `rec` */
	uint64_t ahead;      /* pages up to here were asked for */
	const tl_rec *page;  /* the current page's records (checked) */
	unsigned in_page;    /* records in it */
	bool started;
	tl_rec rec;          /* the current record, valid while !done */
	bool done;
} tl_cursor;

/* Positions on the first record (done if there is none). */
int cairn_tlindex__cursor_start(tl_cursor *c, const tl_run *r);
/* Moves to the next record; CAIRN_ECORRUPT names the file and offset. */
int cairn_tlindex__cursor_next(tl_cursor *c);

/* Reads the whole run through a cursor; CAIRN_ECORRUPT at the first fault. */
int cairn_tlindex__run_check(const tl_run *r);

/* ---------------------------------------------------------- test hooks */

/* Called at named points of a write ("run-partial", "run-synced",
 * "manifest-tmp", "manifest-renamed", "merge-synced", "merge-committed");
 * a non-zero return stops the write there as if the process had died: the
 * call returns CAIRN_EIO, files stay as they are, and the index refuses
 * further writes. NULL (the default) does nothing. Not thread-safe: set it
 * before the index is used. */
extern int (*cairn_tlindex__hook)(const char *point);

/* Which runs (oldest first; sizes in records, dead records in `dead`) the
 * merge policy would merge: [*first, *last], or false for none. */
bool cairn_tlindex__pick(size_t *first, size_t *last, const uint64_t *size, const uint64_t *dead,
			 size_t n, unsigned ratio, unsigned max_runs);

#endif
