/* tlrun.c: the top-level index's run files: sorted records in checksummed
 * pages, written once, mapped for lookups and read in order for merges.
 *
 * Layout (all integers little-endian; N records, P = ceil(N / 170) pages,
 * S shard table entries):
 *
 *   offset             size      what
 *   0                  4096      header page (fields below, then zeros)
 *   4096 + 4096 p      4096      record page p: up to 170 records of 24 bytes
 *                                {u64 key, u32 shard, u32 size, u64 offset},
 *                                zeros to 4080, u32 records in the page,
 *                                u32 zero, u64 XXH64(bytes [0, 4088), seed p)
 *   4096 + 4096 P      8 P       fences: the key of each page's first record
 *   G = that + 8 P     32 B      bloom filter: B blocks of 8 x u32 (B may be 0)
 *   F = G + 32 B       16 S      shard table {u32 shard, u32 zero, u64
 *                                records}, ascending by shard
 *   F + 16 S                     end of file
 *
 *   header: 0 magic "CAIRNTLR" | 8 u32 version 1 | 12 u32 record size 24 |
 *   16 u64 run number (= the file name) | 24 u64 seq | 32 u64 N | 40 u64 min
 *   key | 48 u64 max key | 56 u64 P | 64 u64 S | 72 u64 file size | 80 u64
 *   XXH64 of the fences (seed: run number) | 88 u64 XXH64 of the shard table
 *   (seed: run number) | 96 u32 170 | 100 u32 4096 | 104 u64 B | 112 u64
 *   XXH64 of the bloom filter (seed: run number) | 120 u64 XXH64 of bytes
 *   [0, 120) (seed 0).
 *
 * Records are in (key, shard, offset) order. Pages are whole file pages so a
 * cold lookup reads one page: the fences are copied to the heap at open
 * (8 bytes per 170 records: 4.7 MB for 100 million), searched there, and
 * only the record page is touched in the map. Fences and shard table are
 * checked at open; record pages only when read in order (merge, verify),
 * since checking a page costs more than searching it; the bloom filter when
 * it is read into the heap (not for the largest run of an index: every key
 * is likely there, so a filter saves little and would cost 1.25 bytes of
 * memory per entry).
 *
 * Bloom filter: split-block (Parquet's), 10 bits per record by default:
 * 8 bits set in one 32-byte block per key, taken from the key itself (it is
 * a hash already), about 1% false positives. A lookup probes the filter of
 * every run but the largest before its fences: one cache line (or nothing
 * read from disk) instead of a page for a run without the key. A lookup on a damaged
 * page can miss or return a wrong hit (which the caller's CID check
 * catches), never read outside the map.
 *
 * The header is written last, after the pages, fences and table; the file is
 * fsynced before the manifest lists it, so a listed run is whole. A file cut
 * short or never finished has a zero (or short) header and fails at open,
 * but is never opened anyway: only the manifest's runs are.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dagstore/tlindex_i.h"

#define OUT_PAGES 256u             /* the writer's buffer: 1 MiB */
#define WRITEBACK (64u << 20)      /* start writeback every 64 MiB */
#define AHEAD_PAGES 2048u          /* a cursor asks for 8 MiB ahead */

int (*cairn_tlindex__hook)(const char *point);

/* ---------------------------------------------------------------- XXH64 */

#define P1 11400714785074694791ull
#define P2 14029467366897019727ull
#define P3 1609587929392839161ull
#define P4 9650029242287828579ull
#define P5 2870177450012600261ull

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline void wr64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline uint64_t xround(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	return rotl(acc, 31) * P1;
}

static inline uint64_t xmerge(uint64_t acc, uint64_t v)
{
	acc ^= xround(0, v);
	return acc * P1 + P4;
}

uint64_t cairn_tlindex__hash(const void *in, size_t n, uint64_t seed)
{
	const uint8_t *p = in, *end = p + n;
	uint64_t h;

	if (n >= 32) {
		const uint8_t *limit = end - 32;
		uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;

		do {
			v1 = xround(v1, rd64(p));
			v2 = xround(v2, rd64(p + 8));
			v3 = xround(v3, rd64(p + 16));
			v4 = xround(v4, rd64(p + 24));
			p += 32;
		} while (p <= limit);
		h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
		h = xmerge(h, v1);
		h = xmerge(h, v2);
		h = xmerge(h, v3);
		h = xmerge(h, v4);
	} else {
		h = seed + P5;
	}
	h += (uint64_t)n;
	while (end - p >= 8) {
		h ^= xround(0, rd64(p));
		h = rotl(h, 27) * P1 + P4;
		p += 8;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)rd32(p) * P1;
		h = rotl(h, 23) * P2 + P3;
		p += 4;
	}
	while (p < end) {
		h ^= (uint64_t)*p++ * P5;
		h = rotl(h, 11) * P1;
	}
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

uint64_t cairn_tlindex_key(const uint8_t *mh, size_t mh_len)
{
	return cairn_tlindex__hash(mh, mh_len, 0);
}

/* ----------------------------------------------------------------- sort */

static void isort(tl_rec *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		tl_rec t = a[i];
		size_t j = i;

		while (j > 0 && tl_rec_cmp(&a[j - 1], &t) > 0) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = t;
	}
}

static int qcmp(const void *a, const void *b)
{
	return tl_rec_cmp(a, b);
}

/* Keys are hashes, so one pass scattering by the top bits into about n / 8
 * buckets leaves buckets of a few records, each finished by insertion sort:
 * 45 ns a record for a million (qsort: 150). A bucket that is large anyway
 * (many copies of one block, or keys made to collide) goes to qsort, which
 * is O(n log n) whatever the input. */
void cairn_tlindex__sort(tl_rec *a, size_t n, tl_rec *tmp)
{
	unsigned bits = 0;
	size_t *start;

	if (n <= 32) {
		isort(a, n);
		return;
	}
	while (bits < 20 && ((size_t)8 << bits) < n)
		bits++;
	start = cairn_calloc(((size_t)1 << bits) + 1, sizeof(*start));
	if (!start) {
		/* Slower but needs nothing: the records are sorted either way. */
		cairn_error_clear();
		qsort(a, n, sizeof(*a), qcmp);
		return;
	}
	unsigned shift = 64 - bits;
	size_t nb = (size_t)1 << bits;

	for (size_t i = 0; i < n; i++)
		start[(a[i].key >> shift) + 1]++;
	for (size_t b = 0; b < nb; b++)
		start[b + 1] += start[b];
	for (size_t i = 0; i < n; i++)
		tmp[start[a[i].key >> shift]++] = a[i];
	/* start[b] is now the end of bucket b. */
	for (size_t b = 0, from = 0; b < nb; b++) {
		size_t len = start[b] - from;

		if (len <= 32)
			isort(tmp + from, len);
		else
			qsort(tmp + from, len, sizeof(*tmp), qcmp);
		from = start[b];
	}
	memcpy(a, tmp, n * sizeof(*a));
	cairn_free(start);
}

/* --------------------------------------------------------------- writer */

struct tl_writer {
	int fd;
	char path[PATH_MAX];
	uint64_t number, seq;
	bool sync;
	bool crashed;        /* a test hook stopped it: leave the file */
	uint8_t *buf;        /* OUT_PAGES pages */
	size_t full;         /* sealed pages in buf */
	unsigned in_page;    /* records in buf + full * TL_PAGE */
	uint64_t count, npages;
	uint64_t min, max;
	uint64_t *fences;
	size_t fences_cap;
	uint64_t off;        /* file offset of buf */
	uint64_t synced;     /* writeback started up to here */
	uint32_t *bloom;     /* bloom_blocks x 8 words */
	uint64_t bloom_blocks;
};

int cairn_tlindex__run_path(char *out, const char *dir, uint64_t number)
{
	if (snprintf(out, PATH_MAX, "%s/%016llx.run", dir, (unsigned long long)number) >= PATH_MAX)
		return cairn_error_set(CAIRN_EINVAL, "tlindex %s: path too long", dir);
	return 0;
}

int cairn_tlindex__writer_open(tl_writer **out, const char *dir, uint64_t number, uint64_t seq,
			       bool sync, uint64_t expect, unsigned bloom_bits)
{
	tl_writer *w;
	int rc;

	*out = NULL;
	w = cairn_calloc(1, sizeof(*w));
	if (!w)
		return CAIRN_ENOMEM;
	w->fd = -1;
	w->number = number;
	w->seq = seq;
	w->sync = sync;
	w->min = UINT64_MAX;
	w->off = w->synced = TL_PAGE;
	if ((rc = cairn_tlindex__run_path(w->path, dir, number)))
		goto fail;
	w->buf = cairn_malloc((size_t)OUT_PAGES * TL_PAGE);
	if (!w->buf) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	if (bloom_bits && expect) {
		uint64_t nb = (expect * bloom_bits + 255) / 256;

		w->bloom_blocks = nb < UINT32_MAX ? nb : UINT32_MAX;
		w->bloom = cairn_calloc((size_t)w->bloom_blocks, TL_BLOOM_BLOCK);
		if (!w->bloom) {
			rc = CAIRN_ENOMEM;
			goto fail;
		}
	}
	w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: create: %s", w->path, strerror(errno));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	cairn_free(w->bloom);
	cairn_free(w->buf);
	cairn_free(w);
	return rc;
}

static void bloom_add(uint32_t *bloom, uint64_t nblocks, uint64_t key)
{
	static const uint32_t salt[8] = {0x47b6137bu, 0x44974d91u, 0x8824ad5bu, 0xa2b7289du,
					 0x705495c7u, 0x2df1424bu, 0x9efc4947u, 0x5c6bfb31u};
	uint32_t *blk = bloom + 8 * (((key >> 32) * nblocks) >> 32);
	uint32_t h = (uint32_t)key;

	for (int i = 0; i < 8; i++)
		blk[i] |= 1u << ((h * salt[i]) >> 27);
}

uint64_t cairn_tlindex__writer_count(const tl_writer *w)
{
	return w->count;
}

static void seal_page(uint8_t *pg, unsigned n, uint64_t index)
{
	memset(pg + (size_t)n * TL_REC, 0, TL_PAGE_COUNT_AT - (size_t)n * TL_REC);
	wr32(pg + TL_PAGE_COUNT_AT, n);
	wr32(pg + TL_PAGE_COUNT_AT + 4, 0);
	wr64(pg + TL_PAGE_SUM_AT, cairn_tlindex__hash(pg, TL_PAGE_SUM_AT, index));
}

static int flush_buf(tl_writer *w)
{
	size_t n = w->full * TL_PAGE;
	int rc;

	if (!n)
		return 0;
	if ((rc = cairn_file_pwrite_full(w->fd, w->buf, n, w->off, w->path)))
		return rc;
	w->off += n;
	w->full = 0;
	/* Start writing back what is done so the fsync at the end has little
	 * left and the page cache does not fill with a merge's dirty pages. */
	if (w->sync && w->off - w->synced >= WRITEBACK) {
		cairn_file_start_writeback(w->fd, w->synced, w->off - w->synced);
		w->synced = w->off;
	}
	return 0;
}

int cairn_tlindex__writer_add(tl_writer *w, const tl_rec *recs, size_t n)
{
	while (n) {
		uint8_t *pg = w->buf + w->full * TL_PAGE;
		size_t take = TL_PER_PAGE - w->in_page;
		int rc;

		if (take > n)
			take = n;
		if (w->in_page == 0) {
			if (w->npages == w->fences_cap) {
				size_t cap = w->fences_cap ? w->fences_cap * 2 : 64;
				uint64_t *f = cairn_realloc(w->fences, cap * sizeof(*f));

				if (!f)
					return CAIRN_ENOMEM;
				w->fences = f;
				w->fences_cap = cap;
			}
			w->fences[w->npages++] = recs[0].key;
			if (w->count == 0)
				w->min = recs[0].key;
		}
		memcpy(pg + (size_t)w->in_page * TL_REC, recs, take * TL_REC);
		if (w->bloom)
			for (size_t i = 0; i < take; i++)
				bloom_add(w->bloom, w->bloom_blocks, recs[i].key);
		w->in_page += (unsigned)take;
		w->count += take;
		w->max = recs[take - 1].key;
		recs += take;
		n -= take;
		if (w->in_page == TL_PER_PAGE) {
			seal_page(pg, TL_PER_PAGE, w->npages - 1);
			w->in_page = 0;
			if (++w->full == OUT_PAGES && (rc = flush_buf(w)))
				return rc;
		}
	}
	return 0;
}

int cairn_tlindex__writer_finish(tl_writer *w, const tl_shard_count *shards, size_t nshards)
{
	uint8_t head[TL_PAGE];
	size_t fbytes = w->npages * 8, tbytes = nshards * TL_SHARD_LEN;
	size_t bbytes = (size_t)w->bloom_blocks * TL_BLOOM_BLOCK;
	int rc;

	if (w->in_page) {
		seal_page(w->buf + w->full * TL_PAGE, w->in_page, w->npages - 1);
		w->in_page = 0;
		w->full++;
	}
	if ((rc = flush_buf(w)))
		return rc;
	if (fbytes && (rc = cairn_file_pwrite_full(w->fd, w->fences, fbytes, w->off, w->path)))
		return rc;
	if (bbytes && (rc = cairn_file_pwrite_full(w->fd, w->bloom, bbytes, w->off + fbytes, w->path)))
		return rc;
	if (tbytes && (rc = cairn_file_pwrite_full(w->fd, shards, tbytes, w->off + fbytes + bbytes,
						   w->path)))
		return rc;
	if (cairn_tlindex__hook && cairn_tlindex__hook("run-partial")) {
		w->crashed = true;
		return cairn_error_set(CAIRN_EIO, "%s: simulated crash at run-partial", w->path);
	}
	memset(head, 0, sizeof(head));
	memcpy(head, "CAIRNTLR", 8);
	wr32(head + 8, 1);
	wr32(head + 12, TL_REC);
	wr64(head + 16, w->number);
	wr64(head + 24, w->seq);
	wr64(head + 32, w->count);
	wr64(head + 40, w->count ? w->min : UINT64_MAX);
	wr64(head + 48, w->count ? w->max : 0);
	wr64(head + 56, w->npages);
	wr64(head + 64, nshards);
	wr64(head + 72, w->off + fbytes + bbytes + tbytes);
	wr64(head + 80, cairn_tlindex__hash(w->fences, fbytes, w->number));
	wr64(head + 88, cairn_tlindex__hash(shards, tbytes, w->number));
	wr32(head + 96, TL_PER_PAGE);
	wr32(head + 100, TL_PAGE);
	wr64(head + 104, w->bloom_blocks);
	wr64(head + 112, cairn_tlindex__hash(w->bloom, bbytes, w->number));
	wr64(head + TL_HEADER_SUM_AT, cairn_tlindex__hash(head, TL_HEADER_SUM_AT, 0));
	if ((rc = cairn_file_pwrite_full(w->fd, head, sizeof(head), 0, w->path)))
		return rc;
	if (w->sync && (rc = cairn_file_fsync(w->fd, w->path)))
		return rc;
	if (close(w->fd) < 0) {
		w->fd = -1;
		return cairn_error_set(CAIRN_EIO, "%s: close: %s", w->path, strerror(errno));
	}
	w->fd = -1;
	return 0;
}

bool cairn_tlindex__writer_crashed(const tl_writer *w)
{
	return w->crashed;
}

void cairn_tlindex__writer_free(tl_writer *w, bool remove)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (remove && !w->crashed)
		unlink(w->path);
	cairn_free(w->fences);
	cairn_free(w->bloom);
	cairn_free(w->buf);
	cairn_free(w);
}

/* ----------------------------------------------------------------- runs */

static int corrupt(const char *path, uint64_t at, const char *what)
{
	return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: %s", path, (unsigned long long)at,
			       what);
}

static void run_free(tl_run *r)
{
	if (!r)
		return;
	if (r->map)
		munmap((void *)r->map, r->map_len);
	cairn_free(atomic_load(&r->bloom));
	cairn_free(r->fences);
	cairn_free(r->path);
	cairn_free(r);
}

/* Checks the header, sizes, fences and shard table of a mapped run. */
static int run_parse(tl_run *r, uint64_t number, uint64_t seq, uint64_t count)
{
	const uint8_t *h = r->map;
	const char *path = r->path;
	uint64_t npages, nshards, nbloom, fbytes, bbytes, tbytes, fend, foff, size = r->map_len;

	if (size < TL_PAGE)
		return corrupt(path, size, "file too short for a run header");
	if (memcmp(h, "CAIRNTLR", 8))
		return corrupt(path, 0, "not a run file (bad magic)");
	if (cairn_tlindex__hash(h, TL_HEADER_SUM_AT, 0) != rd64(h + TL_HEADER_SUM_AT))
		return corrupt(path, TL_HEADER_SUM_AT, "header checksum mismatch");
	if (rd32(h + 8) != 1)
		return corrupt(path, 8, "unsupported run format version");
	if (rd32(h + 12) != TL_REC || rd32(h + 96) != TL_PER_PAGE || rd32(h + 100) != TL_PAGE)
		return corrupt(path, 12, "unsupported record or page size");
	if (rd64(h + 16) != number)
		return corrupt(path, 16, "run number does not match the file name");
	if (rd64(h + 24) != seq)
		return corrupt(path, 24, "sequence number does not match the manifest");
	r->count = rd64(h + 32);
	if (r->count != count)
		return corrupt(path, 32, "record count does not match the manifest");
	r->min_key = rd64(h + 40);
	r->max_key = rd64(h + 48);
	npages = rd64(h + 56);
	nshards = rd64(h + 64);
	/* Bound everything by the file's size before multiplying. */
	if (npages > (size - TL_PAGE) / TL_PAGE || npages != (r->count + TL_PER_PAGE - 1) / TL_PER_PAGE)
		return corrupt(path, 56, "page count does not match the records or the file size");
	fbytes = npages * 8;
	foff = TL_PAGE + npages * TL_PAGE;
	fend = foff + fbytes;
	nbloom = rd64(h + 104);
	if (fend > size || nbloom >= UINT32_MAX || nbloom > (size - fend) / TL_BLOOM_BLOCK)
		return corrupt(path, 104, "bloom filter does not fit the file");
	bbytes = nbloom * TL_BLOOM_BLOCK;
	if (nshards > (size - fend - bbytes) / TL_SHARD_LEN)
		return corrupt(path, 64, "shard table does not fit the file");
	tbytes = nshards * TL_SHARD_LEN;
	if (rd64(h + 72) != size || fend + bbytes + tbytes != size)
		return corrupt(path, 72, "file size does not match the header");
	if (cairn_tlindex__hash(r->map + foff, fbytes, number) != rd64(h + 80))
		return corrupt(path, foff, "fence checksum mismatch");
	r->bloom_blocks = nbloom;
	r->bloom_at = fend;
	r->bloom_sum = rd64(h + 112);
	fend += bbytes; /* from here: where the table starts */
	if (cairn_tlindex__hash(r->map + fend, tbytes, number) != rd64(h + 88))
		return corrupt(path, fend, "shard table checksum mismatch");
	r->npages = npages;
	r->nshards = nshards;
	r->shards = (const tl_shard_count *)(const void *)(r->map + fend);
	r->fences = cairn_malloc(fbytes ? fbytes : 1);
	if (!r->fences)
		return CAIRN_ENOMEM;
	memcpy(r->fences, r->map + foff, fbytes);
	for (uint64_t p = 1; p < npages; p++)
		if (r->fences[p] < r->fences[p - 1])
			return corrupt(path, foff + p * 8, "fences out of order");
	if (npages && (r->fences[0] != r->min_key || r->fences[npages - 1] > r->max_key))
		return corrupt(path, 40, "key range does not match the fences");
	uint64_t sum = 0;

	for (uint64_t i = 0; i < nshards; i++) {
		if (i && r->shards[i].shard <= r->shards[i - 1].shard)
			return corrupt(path, fend + i * TL_SHARD_LEN, "shard table out of order");
		if (r->shards[i].count > r->count - sum)
			return corrupt(path, fend + i * TL_SHARD_LEN,
				       "shard table counts more records than the run has");
		sum += r->shards[i].count;
	}
	if (sum != r->count)
		return corrupt(path, fend, "shard table counts fewer records than the run has");
	r->file_bytes = size;
	return 0;
}

int cairn_tlindex__run_open(tl_run **out, const char *dir, uint64_t number, uint64_t seq,
			    uint64_t count)
{
	char path[PATH_MAX];
	struct stat st;
	tl_run *r;
	void *map;
	int fd, rc;

	*out = NULL;
	if ((rc = cairn_tlindex__run_path(path, dir, number)))
		return rc;
	r = cairn_calloc(1, sizeof(*r));
	if (!r)
		return CAIRN_ENOMEM;
	atomic_init(&r->refs, 1);
	atomic_init(&r->bloom, NULL);
	r->number = number;
	r->seq = seq;
	r->path = cairn_strndup(path, strlen(path));
	if (!r->path) {
		cairn_free(r);
		return CAIRN_ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: open: %s",
				     path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: stat: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	if ((uint64_t)st.st_size < TL_PAGE) {
		close(fd);
		rc = corrupt(path, (uint64_t)st.st_size, "file too short for a run header");
		goto fail;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		rc = cairn_error_set(errno == ENOMEM ? CAIRN_ENOMEM : CAIRN_EIO, "%s: mmap: %s", path,
				     strerror(errno));
		goto fail;
	}
	r->map = map;
	r->map_len = (size_t)st.st_size;
	if ((rc = run_parse(r, number, seq, count)))
		goto fail;
	/* Lookups touch one page each: no readahead around it. */
	if (r->npages)
		madvise((void *)(r->map + TL_PAGE), r->npages * TL_PAGE, MADV_RANDOM);
	*out = r;
	return 0;
fail:
	run_free(r);
	return rc;
}

int cairn_tlindex__run_load_bloom(tl_run *r)
{
	size_t n = (size_t)r->bloom_blocks * TL_BLOOM_BLOCK;
	uint32_t *b;

	if (!r->bloom_blocks || atomic_load_explicit(&r->bloom, memory_order_acquire))
		return 0;
	b = cairn_malloc(n);
	if (!b)
		return CAIRN_ENOMEM;
	memcpy(b, r->map + r->bloom_at, n);
	if (cairn_tlindex__hash(b, n, r->number) != r->bloom_sum) {
		cairn_free(b);
		return corrupt(r->path, r->bloom_at, "bloom filter checksum mismatch");
	}
	/* Callers are serialized (wlock); readers see NULL or the whole filter. */
	atomic_store_explicit(&r->bloom, b, memory_order_release);
	return 0;
}

void cairn_tlindex__run_ref(tl_run *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void cairn_tlindex__run_unref(tl_run *r)
{
	if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		run_free(r);
}

bool cairn_tlindex__run_has_shard(const tl_run *r, uint32_t shard, uint64_t *count)
{
	uint64_t lo = 0, hi = r->nshards;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (r->shards[mid].shard < shard)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nshards && r->shards[lo].shard == shard) {
		if (count)
			*count = r->shards[lo].count;
		return true;
	}
	return false;
}

/* The first i in [0, n] with f[i] >= k, f ascending. Keys are hashes, so
 * interpolation puts the first probe within a few dozen fences of the
 * answer (the rank of a key among n uniform ones is off by sqrt(n) at
 * most, a few standard deviations); galloping from there brackets it and a
 * binary search finishes. Any input (a damaged file) ends in O(log n). */
static uint64_t fence_search(const uint64_t *f, uint64_t n, uint64_t k)
{
	uint64_t lo = 0, hi = n, g, step;

	if (n == 0 || k <= f[0])
		return 0;
	if (k > f[n - 1])
		return n;
	/* f[0] < k <= f[n - 1]: the answer is in [1, n - 1]. */
	g = (uint64_t)((double)(k - f[0]) / (double)(f[n - 1] - f[0]) * (double)(n - 1));
	if (g < 1)
		g = 1;
	if (g > n - 1)
		g = n - 1;
	lo = 1;
	hi = n - 1;
	if (f[g] >= k) {
		hi = g;
		for (step = 4; hi - lo > step && f[hi - step] >= k; step *= 2)
			hi -= step;
		if (hi - lo > step)
			lo = hi - step + 1;
	} else {
		lo = g + 1;
		for (step = 4; hi - lo > step && f[lo + step - 1] < k; step *= 2)
			lo += step;
		if (hi - lo > step)
			hi = lo + step - 1;
	}
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (f[mid] >= k)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

uint64_t cairn_tlindex__run_lower_bound(const tl_run *r, uint64_t key)
{
	uint64_t q = fence_search(r->fences, r->npages, key), p, lo, hi, n;
	const tl_rec *pg;

	if (q == 0)
		return 0;
	/* Page q - 1 starts below key; the first record >= key is in it or is
	 * the first of page q. */
	p = q - 1;
	pg = tl_run_rec(r, p * TL_PER_PAGE);
	n = r->count - p * TL_PER_PAGE;
	if (n > TL_PER_PAGE)
		n = TL_PER_PAGE;
	lo = 0;
	hi = n;
	/* Interpolate between this page's first key and the next page's (or
	 * the run's last): a guess a few records off, bracketed by walking to
	 * it, so the search touches one or two cache lines, not eight. */
	if (n > 8) {
		uint64_t a = pg[0].key, z = q < r->npages ? r->fences[q] : r->max_key, g;

		if (key > a && z > a) {
			g = (uint64_t)((double)(key - a) / (double)(z - a) * (double)n);
			if (g >= n)
				g = n - 1;
			if (pg[g].key >= key) {
				hi = g;
				while (hi > 0 && hi - lo > 4 && pg[hi - 4].key >= key)
					hi -= 4;
				if (hi >= 4 && hi - 4 >= lo)
					lo = hi - 4;
			} else {
				lo = g + 1;
				while (lo + 4 < hi && pg[lo + 3].key < key)
					lo += 4;
				if (lo + 4 < hi)
					hi = lo + 4;
			}
		}
	}
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (pg[mid].key >= key)
			hi = mid;
		else
			lo = mid + 1;
	}
	return p * TL_PER_PAGE + lo;
}

/* --------------------------------------------------------------- cursor */

static int load_page(tl_cursor *c, uint64_t p)
{
	const tl_run *r = c->run;
	const uint8_t *pg = r->map + TL_PAGE + p * TL_PAGE;
	uint64_t want = r->count - p * TL_PER_PAGE;
	uint64_t at = TL_PAGE + p * TL_PAGE;

	if (want > TL_PER_PAGE)
		want = TL_PER_PAGE;
	if (p >= c->ahead) {
		/* The map is set for random access (no readahead); ask for the
		 * next stretch in one go. */
		uint64_t end = p + AHEAD_PAGES < r->npages ? p + AHEAD_PAGES : r->npages;
		long ps = sysconf(_SC_PAGESIZE);
		uintptr_t a = (uintptr_t)pg & ~((uintptr_t)(ps > 0 ? ps : 4096) - 1);

		madvise((void *)a, (size_t)(r->map + TL_PAGE + end * TL_PAGE - (const uint8_t *)a),
			MADV_WILLNEED);
		c->ahead = end - AHEAD_PAGES / 2 > p ? end - AHEAD_PAGES / 2 : end;
	}
	if (rd32(pg + TL_PAGE_COUNT_AT) != want || rd32(pg + TL_PAGE_COUNT_AT + 4) != 0)
		return corrupt(r->path, at + TL_PAGE_COUNT_AT, "page record count is wrong");
	if (cairn_tlindex__hash(pg, TL_PAGE_SUM_AT, p) != rd64(pg + TL_PAGE_SUM_AT))
		return corrupt(r->path, at, "page checksum mismatch");
	c->page = (const tl_rec *)(const void *)pg;
	c->in_page = (unsigned)want;
	return 0;
}

int cairn_tlindex__cursor_start(tl_cursor *c, const tl_run *r)
{
	memset(c, 0, sizeof(*c));
	c->run = r;
	if (r->count == 0) {
		c->done = true;
		return 0;
	}
	c->started = true;
	int rc = load_page(c, 0);

	if (rc)
		return rc;
	c->rec = c->page[0];
	if (c->rec.key != r->fences[0])
		return corrupt(r->path, TL_PAGE, "first record does not match its fence");
	return 0;
}

int cairn_tlindex__cursor_next(tl_cursor *c)
{
	const tl_run *r = c->run;
	uint64_t i = c->i + 1;
	unsigned slot = (unsigned)(i % TL_PER_PAGE);
	int rc;

	if (c->done)
		return 0;
	if (i >= r->count) {
		c->done = true;
		return 0;
	}
	if (slot == 0) {
		if ((rc = load_page(c, i / TL_PER_PAGE)))
			return rc;
		if (c->page[0].key != r->fences[i / TL_PER_PAGE])
			return corrupt(r->path, TL_PAGE + (i / TL_PER_PAGE) * TL_PAGE,
				       "first record does not match its fence");
	}
	if (tl_rec_cmp(&c->rec, &c->page[slot]) > 0)
		return corrupt(r->path, TL_PAGE + (i / TL_PER_PAGE) * TL_PAGE + slot * TL_REC,
			       "records out of order");
	c->rec = c->page[slot];
	c->i = i;
	return 0;
}

int cairn_tlindex__run_check(const tl_run *r)
{
	tl_cursor c;
	int rc = cairn_tlindex__cursor_start(&c, r);

	while (!rc && !c.done)
		rc = cairn_tlindex__cursor_next(&c);
	if (!rc && r->count && c.rec.key != r->max_key)
		rc = corrupt(r->path, 48, "max key does not match the last record");
	if (!rc && cairn_tlindex__hash(r->map + r->bloom_at, r->bloom_blocks * TL_BLOOM_BLOCK,
				       r->number) != r->bloom_sum)
		rc = corrupt(r->path, r->bloom_at, "bloom filter checksum mismatch");
	return rc;
}
