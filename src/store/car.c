/* car.c: the read-only CAR blockstore: a block is found through the CAR's
 * index (embedded, detached, or built on open) and read from a mapping of
 * the file (or with pread, when not mapped).
 *
 * After open nothing in the store changes: the descriptor, the mapping, the
 * bounds of the payload and the index (an mmap, or bytes held in `idx_bytes`) are only
 * read, and every lookup keeps its buffers on the caller's stack or in the
 * caller's `out`. That is what makes it safe for any number of concurrent
 * readers without a lock.
 *
 * A lookup asks the index for the offsets of the CID's multihash, then reads
 * the section head (length varint and CID) at each, in index order, until
 * one holds the same multihash. The index is not trusted: an IndexSorted
 * matches on the digest alone, and a detached index may belong to another
 * CAR, so only the CID in the section itself decides. A section that is not
 * the one asked for is passed over without reading its block.
 *
 * Costs, per get (a 10M-block CAR, 400 MB of index): a binary search of
 * the index misses the cache at about a dozen of its 23 steps, and each
 * read is a system call. So a get reads the head and a small block in one
 * pread (GET_WINDOW), and each large bucket of the index (one per
 * multihash code and digest length: in practice one or two hold it all)
 * gets a radix table at open, built in one pass over the mapped entries:
 * the first `bits` bits of a digest name a range of at most a few
 * entries (half to one a slot on average), and the lookup reads those
 * (one cache line, sometimes two) instead of searching. A table is 4 to
 * 8 bytes per entry (an eighth of that with no_mmap), 64 MiB at most (for
 * 10M entries; with four entries a slot, an eighth of that, an export's
 * locates read a line more each and took 7% longer), in huge pages
 * (cairn_malloc_huge: 4% off an export's time). It is
 * built only over entries that are contiguous and sorted, as they are in
 * every index cairn or go-car writes; any other index, and any CID
 * outside the tables, is looked up by cairn_car_index_find, which gives
 * the same answers.
 *
 * Then the read. A pread per block was a quarter of an export's time (the
 * system call and the kernel's copy), so the payload is mapped and a get
 * copies the block out of the mapping; get_many goes further, handing out
 * the mapped bytes themselves, and overlapping the misses of a group of
 * lookups (see car_get_many). The mapping's pages are the page cache's:
 * they count in the RSS of the process as file pages, and are not its own
 * memory. With opts.no_mmap, or a file that cannot be mapped, blocks are
 * read with pread: one call for the head and a small block (GET_WINDOW),
 * a second for the rest of a larger one.
 *
 * With opts.no_mmap an index in a file is read with pread as well (a
 * slot's entries in one call; see run_entries), and the open pass drops
 * its pages from memory as it goes: a caller who asked for no mapping
 * asked for a small RSS, and a 10M-block CAR's mapped index is 390 MiB
 * of it. Only locate_many still reads the index in place (a call per
 * link would cost more than the walk), so a walk by positions brings it
 * back into memory, and a walk by its own set of CIDs does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cairn/store.h"

/* A length varint plus the longest CID cairn accepts: enough to hold any
 * section head, so one pread reads it. */
#define HEAD_MAX (CAIRN_VARINT_MAX + CAIRN_CID_MAX_BYTES)
/* Offsets per multihash that fit on the stack; a CAR holds more copies of
 * one block only when written carelessly, and then we allocate. */
#define SMALL_OFFSETS 8
/* What a get reads at an indexed offset: the head and, for most blocks
 * (IPLD nodes are mostly under a few hundred bytes), the whole block, so
 * it costs one pread; a larger block is read on with a second. */
#define GET_WINDOW 1024
/* Below this many entries a binary search stays in the cache: no table. */
#define RADIX_MIN 4096
#define RADIX_MAX_BITS 24
/* A range longer than this (a digest stored many times) is left to
 * cairn_car_index_find, which counts equal entries by galloping. */
#define RADIX_SCAN_MAX 32
/* Runs of entries the open pass keeps track of; more and there is no
 * table (an index of many small buckets gains little from one). */
#define RADIX_MAX_RUNS 64
/* Tables kept: one per multihash code and digest length in use (a DAG of
 * sha2-256 leaves under blake2b-256 nodes has two). */
#define RADIX_TABLES 4
/* Entries read with pread are at most this wide (a 64-byte digest and its
 * offset), so a slot's RADIX_SCAN_MAX of them fit on the stack. */
#define READ_ENTRY_MAX 72
/* With no_mmap, the open pass drops the index's pages from memory after
 * this many entries (40 MiB of sha2-256 entries). */
#define RELEASE_EVERY ((uint64_t)1 << 20)

/* A run of index entries of one multihash code and digest length,
 * contiguous in the index's bytes (one bucket, or several in a row). */
typedef struct {
	const uint8_t *p;   /* first entry: digest, then uint64 LE offset */
	uint64_t code;      /* 0 for IndexSorted, as cairn_car_index_find */
	size_t dlen;
	uint64_t n;
} entry_run;

/* The radix table over one run (see the top of the file). */
typedef struct {
	entry_run run;
	uint64_t base;      /* the position of the run's first entry */
	uint64_t file_off;  /* with index_fd: where the run's entries are in that file */
	unsigned bits;
	uint32_t *starts;   /* 2^bits + 1 entries: the first entry whose
			     * prefix is at least i; NULL: no table */
} radix;

typedef struct {
	cairn_store base;
	int fd;
	char *path;
	cairn_car_options opts;
	uint64_t data_offset;  /* where the CARv1 payload starts in the file */
	uint64_t data_end;     /* and where it ends */
	cairn_car_index *idx;
	cairn_buf idx_bytes;   /* the index built on open; idx points into it */
	int index_fd;          /* >= 0 (no_mmap, an index in a file): the tables'
				* entries are read with pread from it; -1: in place */
	const char *index_name; /* that file's name, for messages */
	radix rx[RADIX_TABLES]; /* in order of size; unused ones have no starts */
	uint64_t positions;    /* entries under the radix tables, numbered in order */
	const uint8_t *map;    /* the whole file, read-only, when mapped */
	size_t map_len;
} car_store;

/* A section head as read at an indexed offset. */
typedef struct {
	cairn_cid cid;
	uint64_t file_offset;  /* of the length varint */
	uint64_t block_offset; /* of the block bytes, in the file */
	uint64_t block_len;
	const uint8_t *win;    /* the bytes read from file_offset on */
	size_t win_len;
} head;

static const cairn_car_options default_opts = CAIRN_CAR_OPTIONS_INIT;

/* Reads and checks the head of the section at payload offset `offset`,
 * reading up to `cap` bytes into `buf` (at least HEAD_MAX): the same bounds
 * as the reader's (a zero, oversized or overrunning length is refused), so
 * an index from another CAR can only produce errors. */
static int read_head(head *h, const car_store *cs, uint64_t offset, uint8_t *buf, size_t cap)
{
	const uint8_t *p = buf;
	uint64_t at, len, room;
	size_t want, used, cid_len;
	int rc;

	if (offset >= cs->data_end - cs->data_offset)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: the index points at offset %llu, past the end of the data (%llu bytes)",
			cs->path, (unsigned long long)offset,
			(unsigned long long)(cs->data_end - cs->data_offset));
	at = cs->data_offset + offset;
	room = cs->data_end - at;
	if (cs->map) {
		/* The rest of the data is the window: a block is never read on. */
		p = cs->map + at;
		want = (size_t)room;
	} else {
		want = room < cap ? (size_t)room : cap;
		if ((rc = cairn_file_pread_full(cs->fd, buf, want, at, cs->path)))
			return rc;
	}
	if (cairn_varint_decode_short(&len, &used, p, want))
		return cairn_error_prefix("%s: section length at byte %llu: ", cs->path,
					  (unsigned long long)at);
	if (len == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: zero-length section",
				       cs->path, (unsigned long long)at);
	if (len > cs->opts.max_section_size)
		return cairn_error_set(CAIRN_ETOOBIG,
			"%s: at byte %llu: section of %llu bytes is over the limit of %llu", cs->path,
			(unsigned long long)at, (unsigned long long)len,
			(unsigned long long)cs->opts.max_section_size);
	if (len > room - used)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: section of %llu bytes runs past the end of the data (%llu bytes remain)",
			cs->path, (unsigned long long)at, (unsigned long long)len,
			(unsigned long long)(room - used));
	if (cairn_cid_decode(&h->cid, &cid_len, p + used,
			     want - used < len ? want - used : (size_t)len))
		return cairn_error_prefix("%s: section at byte %llu: ", cs->path,
					  (unsigned long long)at);
	h->file_offset = at;
	h->block_offset = at + used + cid_len;
	h->block_len = len - cid_len;
	h->win = p;
	h->win_len = want;
	return 0;
}

/* Looks at one indexed offset: 1 if the section there holds `cid`'s
 * multihash (and, for get, its block is in `out`), 0 if it holds another,
 * or an error. */
typedef int (*probe_fn)(const car_store *cs, const head *h, void *ctx);

/* Reading can fail for reasons of this offset (a corrupt section, a CID
 * of a version or hash cairn does not know, a block that does not hash) or
 * of the whole machine (memory, I/O); only the first kind lets the next
 * offset be tried. */
static bool offset_error(int rc)
{
	return rc == CAIRN_ECORRUPT || rc == CAIRN_ETOOBIG || rc == CAIRN_EMISMATCH ||
	       rc == CAIRN_EUNSUPPORTED;
}

static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* The radix table of `cid`'s multihash code and digest length, if any. */
static const radix *radix_of(const car_store *cs, const cairn_cid *cid)
{
	uint64_t code = cairn_car_index_codec(cs->idx) == CAIRN_CAR_INDEX_MH_SORTED ? cid->mh_code : 0;

	for (size_t t = 0; t < RADIX_TABLES && cs->rx[t].starts; t++)
		if (cs->rx[t].run.code == code && cs->rx[t].run.dlen == cid->digest_len)
			return &cs->rx[t];
	return NULL;
}

static inline uint32_t radix_slot(const radix *rx, const cairn_cid *cid)
{
	return load_be32(cid->bytes + cid->digest_off) >> (32 - rx->bits);
}

/* Orders an index entry's digest against `digest`: the first eight bytes
 * as a number, the rest by memcmp only when those are equal (most entries
 * of a slot differ early, as do neighbours in an index). */
static inline int digest_cmp(const uint8_t *e, const uint8_t *digest, size_t dlen)
{
	if (dlen >= 8) {
		uint64_t x, y;

		memcpy(&x, e, 8);
		memcpy(&y, digest, 8);
		if (x != y) {
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			x = __builtin_bswap64(x);
			y = __builtin_bswap64(y);
#endif
			return x < y ? -1 : 1;
		}
		return memcmp(e + 8, digest + 8, dlen - 8);
	}
	return memcmp(e, digest, dlen);
}

/* The entries [lo, hi) of `rx`'s run, at most RADIX_SCAN_MAX: in place,
 * or read into `buf` (RADIX_SCAN_MAX * READ_ENTRY_MAX bytes) when the
 * store reads its index with pread. NULL: the read failed (error set). */
static const uint8_t *run_entries(const car_store *cs, const radix *rx, uint32_t lo, uint32_t hi,
				  uint8_t *buf)
{
	size_t width = rx->run.dlen + 8;

	if (cs->index_fd < 0 || hi == lo)
		return rx->run.p + (size_t)lo * width;
	if (cairn_file_pread_full(cs->index_fd, buf, (size_t)(hi - lo) * width,
				  rx->file_off + (uint64_t)lo * width, cs->index_name))
		return NULL;
	return buf;
}

/* cairn_car_index_find through the radix table when `cid` is in its run:
 * the same count and offsets, in the same (index) order. */
static int find(const car_store *cs, const cairn_cid *cid, uint64_t *offsets, size_t max)
{
	const uint8_t *digest = cid->bytes + cid->digest_off;
	const radix *rx = radix_of(cs, cid);
	uint8_t buf[RADIX_SCAN_MAX * READ_ENTRY_MAX];
	const uint8_t *entries;
	size_t width, written = 0;
	uint32_t q, lo, hi;
	int total = 0;

	if (!rx)
		return cairn_car_index_find(cs->idx, cid, offsets, max);
	width = rx->run.dlen + 8;
	q = radix_slot(rx, cid);
	lo = rx->starts[q];
	hi = rx->starts[q + 1];
	if (hi - lo > RADIX_SCAN_MAX)
		return cairn_car_index_find(cs->idx, cid, offsets, max);
	if (!(entries = run_entries(cs, rx, lo, hi, buf)))
		return cairn_error_last_code();
	for (uint32_t i = lo; i < hi; i++) {
		const uint8_t *e = entries + (size_t)(i - lo) * width;
		int c = digest_cmp(e, digest, rx->run.dlen);

		if (c > 0)
			break;
		if (c)
			continue;
		if (written < max)
			offsets[written++] = load_le64(e + rx->run.dlen);
		total++;
	}
	return total;
}

/* The section at payload offset `off`: `probe`'s answer if it holds
 * `cid`'s multihash, 0 if another, or an error. */
static int probe_at(const car_store *cs, const cairn_cid *cid, uint64_t off, uint8_t *buf,
		    size_t window, probe_fn probe, void *ctx)
{
	head h;
	int rc;

	if ((rc = read_head(&h, cs, off, buf, window)) == 0)
		rc = cairn_cid_multihash_equal(&h.cid, cid) ? probe(cs, &h, ctx) : 0;
	return rc;
}

/* Tries every offset the index gives for `cid` until `probe` finds it,
 * reading up to `window` bytes at each (HEAD_MAX to GET_WINDOW). Returns 1
 * if found, 0 if not (nothing set), or the first offset's error with its
 * message when no offset held the block. */
static int lookup(const car_store *cs, const cairn_cid *cid, size_t window, probe_fn probe,
		  void *ctx)
{
	uint64_t small[SMALL_OFFSETS], *offs = small;
	uint8_t buf[GET_WINDOW];
	char msg[512];
	int n, rc = 0, first = 0;

	n = find(cs, cid, small, SMALL_OFFSETS);
	if (n > SMALL_OFFSETS) {
		int m;

		if (!(offs = cairn_calloc((size_t)n, sizeof(*offs))))
			return CAIRN_ENOMEM;
		/* The index does not change, so the count is the same. */
		m = find(cs, cid, offs, (size_t)n);
		n = m < n ? m : n;
	}
	for (int i = 0; i < n; i++) {
		rc = probe_at(cs, cid, offs[i], buf, window, probe, ctx);
		if (rc == 1 || (rc < 0 && !offset_error(rc)))
			break;
		if (rc < 0 && !first) {
			first = rc;
			snprintf(msg, sizeof(msg), "%s", cairn_error_last());
		}
		rc = 0;
	}
	if (offs != small)
		cairn_free(offs);
	if (n < 0)
		return n;
	if (rc == 0 && first)
		return cairn_error_set(first, "%s", msg);
	return rc;
}

static int not_found(const car_store *cs, const cairn_cid *cid)
{
	char str[CAIRN_CID_MAX_STRING];

	if (cairn_cid_to_string(str, cid) < 0)
		strcpy(str, "(unprintable CID)");
	return cairn_error_set(CAIRN_ENOTFOUND, "%s: block %s is not in this CAR", cs->path, str);
}

static int probe_get(const car_store *cs, const head *h, void *ctx)
{
	cairn_buf *out = ctx;
	/* The block's bytes already read with the head, and where the rest
	 * starts: read_head bounded block_len by the payload, so this fits. */
	size_t have = (size_t)(h->file_offset + h->win_len - h->block_offset);
	int rc;

	if (have > h->block_len)
		have = (size_t)h->block_len;
	cairn_buf_clear(out);
	if ((rc = cairn_buf_reserve(out, (size_t)h->block_len)))
		return rc;
	memcpy(out->data, h->win + (h->block_offset - h->file_offset), have);
	if (have < h->block_len &&
	    (rc = cairn_file_pread_full(cs->fd, out->data + have, (size_t)h->block_len - have,
					h->block_offset + have, cs->path)))
		return rc;
	out->len = (size_t)h->block_len;
	out->data[out->len] = '\0';
	if (!cs->opts.trusted && (rc = cairn_cid_verify(&h->cid, out->data, out->len)))
		return cairn_error_prefix("%s: section at byte %llu: ", cs->path,
					  (unsigned long long)h->file_offset);
	return 1;
}

static int car_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	const car_store *cs = (const car_store *)s;
	int rc = lookup(cs, cid, GET_WINDOW, probe_get, out);

	if (rc == 1)
		return 0;
	/* Whatever a failed probe left in `out` is not the block. */
	cairn_buf_clear(out);
	return rc ? rc : not_found(cs, cid);
}

/* get_many's probe: the block where it lies in the mapping, or read into
 * the scratch buffer as get reads it. */
typedef struct {
	cairn_buf *scratch;
	const uint8_t *data;
	size_t len;
} view;

static int probe_view(const car_store *cs, const head *h, void *ctx)
{
	view *v = ctx;
	int rc;

	if (!cs->map) {
		if ((rc = probe_get(cs, h, v->scratch)) == 1) {
			v->data = v->scratch->data;
			v->len = v->scratch->len;
		}
		return rc;
	}
	v->data = h->win + (h->block_offset - h->file_offset);
	v->len = (size_t)h->block_len;
	if (!cs->opts.trusted && (rc = cairn_cid_verify(&h->cid, v->data, v->len)))
		return cairn_error_prefix("%s: section at byte %llu: ", cs->path,
					  (unsigned long long)h->file_offset);
	return 1;
}

/* Asks for the lines of p[0..len) (a prefetch never faults). */
static inline void prefetch_range(const uint8_t *p, size_t len)
{
	for (size_t o = 0; o < len; o += 64)
		__builtin_prefetch(p + o);
	__builtin_prefetch(p + len - 1);
}

/* A get costs three or four cache misses one after another (the radix
 * slot, the index entries it names, the section; and the TLB's walks for
 * each), and they are most of its time. A group of lookups goes through
 * those steps together, each step asking for the lines the next one
 * reads, so a group's misses are outstanding at once. Then each block is
 * got as get does, from lines already in the cache. */
#define GET_GROUP 16
/* Of a section, what is asked for: the head and a typical IPLD node. */
#define SECTION_PREFETCH 384

/* The entries [lo, hi) of radix slot `q` (its line read now), and their
 * lines asked for when the slot is short enough to be searched. */
static void slot_entries(const radix *rx, uint32_t q, uint32_t *lo, uint32_t *hi)
{
	size_t width = rx->run.dlen + 8;

	*lo = rx->starts[q];
	*hi = rx->starts[q + 1];
	if (*hi > *lo && *hi - *lo <= RADIX_SCAN_MAX)
		prefetch_range(rx->run.p + (size_t)*lo * width, (size_t)(*hi - *lo) * width);
}

/* The first two steps of a group's lookups, each asking for the lines the
 * next one reads: the radix slots, then the index entries they name.
 * rx[i] is the CID's table (radix_of), NULL to pass it over. */
static void prefetch_index(const cairn_cid *const *cids, size_t m, const radix **rx, uint32_t *q)
{
	for (size_t i = 0; i < m; i++) {
		if (rx[i]) {
			q[i] = radix_slot(rx[i], cids[i]);
			__builtin_prefetch(&rx[i]->starts[q[i]]);
		}
	}
	for (size_t i = 0; i < m; i++) {
		uint32_t lo, hi;

		if (rx[i])
			slot_entries(rx[i], q[i], &lo, &hi);
	}
}

/* The index entry at `pos`, a position car_locate_many gave; NULL for
 * one outside the tables. */
static const uint8_t *position_entry(const car_store *cs, uint64_t pos, size_t *dlen)
{
	for (size_t t = 0; t < RADIX_TABLES && cs->rx[t].starts; t++) {
		const radix *rx = &cs->rx[t];

		if (pos - rx->base < rx->run.n) {
			*dlen = rx->run.dlen;
			return rx->run.p + (size_t)(pos - rx->base) * (rx->run.dlen + 8);
		}
	}
	return NULL;
}

/* One group of get_many: each CID's index entry is found through its
 * position when the caller gave one (the radix slot and the search
 * skipped), else through the radix table or the index's search; the
 * entries' lines, then the sections', are asked for before any is read,
 * and the section found first is probed first. A section that does not
 * hold the CID (a wrong position, an index that lies, a block stored
 * twice and the first copy bad) is looked up as get does, so the answers
 * are get's. Unmapped, a section is read with pread (into `buf`), found
 * through its position or by get's lookup. */
static int get_group(const car_store *cs, const cairn_cid *const *cids, const uint64_t *pos,
		     size_t m, size_t base, cairn_buf *scratch, cairn_store_block_fn fn,
		     void *payload)
{
	uint64_t room = cs->data_end - cs->data_offset, off[GET_GROUP];
	uint8_t buf[GET_WINDOW];
	const uint8_t *entry[GET_GROUP];
	size_t dlen[GET_GROUP], nrx = 0;
	bool known[GET_GROUP];      /* off[i] read: the section to probe first */
	const radix *rx[GET_GROUP];
	uint32_t q[GET_GROUP];
	int rc;

	for (size_t i = 0; i < m; i++) {
		entry[i] = NULL;
		rx[i] = NULL;
		known[i] = false;
		if (pos && pos[i] != CAIRN_STORE_NO_POSITION &&
		    (entry[i] = position_entry(cs, pos[i], &dlen[i])))
			__builtin_prefetch(entry[i] + dlen[i]);
		else if (cs->map && (rx[i] = radix_of(cs, cids[i])) != NULL)
			nrx++;
	}
	if (nrx && cs->index_fd < 0)
		prefetch_index(cids, m, rx, q);
	for (size_t i = 0; i < m; i++) {
		if (entry[i])
			off[i] = load_le64(entry[i] + dlen[i]);
		else if (!cs->map || find(cs, cids[i], &off[i], 1) < 1)
			continue;
		known[i] = true;
		if (off[i] < room && cs->map)
			prefetch_range(cs->map + cs->data_offset + off[i],
				       room - off[i] < SECTION_PREFETCH ? (size_t)(room - off[i])
									  : SECTION_PREFETCH);
	}
	for (size_t i = 0; i < m; i++) {
		view v = {scratch, NULL, 0};

		rc = known[i] ? probe_at(cs, cids[i], off[i], buf, GET_WINDOW, probe_view, &v) : 0;
		if (rc != 1)
			rc = lookup(cs, cids[i], GET_WINDOW, probe_view, &v);
		if (rc == 0)
			rc = not_found(cs, cids[i]);
		if ((rc = fn(base + i, rc < 0 ? rc : 0, v.data, v.len, payload)))
			return rc;
	}
	return 0;
}

static int car_get_many_at(cairn_store *s, const cairn_cid *const *cids, const uint64_t *pos,
			   size_t n, cairn_buf *scratch, cairn_store_block_fn fn, void *payload)
{
	int rc;

	for (size_t at = 0; at < n; at += GET_GROUP) {
		size_t m = n - at < GET_GROUP ? n - at : GET_GROUP;

		if ((rc = get_group((const car_store *)s, cids + at, pos ? pos + at : NULL, m, at,
				    scratch, fn, payload)))
			return rc;
	}
	return 0;
}

static int car_get_many(cairn_store *s, const cairn_cid *const *cids, size_t n,
			cairn_buf *scratch, cairn_store_block_fn fn, void *payload)
{
	return car_get_many_at(s, cids, NULL, n, scratch, fn, payload);
}

/* Positions are the entries under the radix tables, table after table:
 * a CID's is its digest's first entry in its table's run. Only the index
 * is read, so a CID of the right digest but another codec or version
 * shares the position (the caller tells them apart), and a digest that
 * is not in the CAR has none. CIDs outside the tables have none either.
 * Locates read the index in place, also with no_mmap (a pread each would
 * cost more than the walk): a caller that numbers blocks by position has
 * the index in memory, one that keeps its own set of CIDs does not. */
static uint64_t car_positions(cairn_store *s)
{
	return ((const car_store *)s)->positions;
}

/* A software pipeline over the CIDs, LOCATE_AHEAD apart: the radix slot
 * of CID i + 2 * LOCATE_AHEAD is asked for, the entries of CID i +
 * LOCATE_AHEAD (its slot read by now), and CID i compared (its entries
 * read by now), so the misses stay outstanding all along instead of in
 * bursts that drain. */
#define LOCATE_AHEAD 16
#define LOCATE_RING 64 /* > 2 * LOCATE_AHEAD, a power of two */

static int car_locate_many(cairn_store *s, const cairn_cid *const *cids, size_t n, uint64_t *pos)
{
	const car_store *cs = (const car_store *)s;
	const radix *rx[LOCATE_RING];
	uint32_t q[LOCATE_RING], lo[LOCATE_RING], hi[LOCATE_RING];

	for (size_t i = 0; i < n + 2 * LOCATE_AHEAD; i++) {
		size_t r = i % LOCATE_RING;

		if (i < n && (rx[r] = radix_of(cs, cids[i]))) {
			q[r] = radix_slot(rx[r], cids[i]);
			__builtin_prefetch(&rx[r]->starts[q[r]]);
		}
		if (i >= LOCATE_AHEAD && i - LOCATE_AHEAD < n) {
			size_t j = (i - LOCATE_AHEAD) % LOCATE_RING;

			if (rx[j])
				slot_entries(rx[j], q[j], &lo[j], &hi[j]);
		}
		if (i >= 2 * LOCATE_AHEAD) {
			size_t k = i - 2 * LOCATE_AHEAD, j = k % LOCATE_RING;
			const cairn_cid *cid = cids[k];

			pos[k] = CAIRN_STORE_NO_POSITION;
			if (!rx[j] || hi[j] - lo[j] > RADIX_SCAN_MAX)
				continue;
			for (uint32_t e = lo[j]; e < hi[j]; e++) {
				int c = digest_cmp(rx[j]->run.p + (size_t)e * (rx[j]->run.dlen + 8),
						   cid->bytes + cid->digest_off, rx[j]->run.dlen);

				if (c == 0)
					pos[k] = rx[j]->base + e;
				if (c >= 0)
					break;
			}
		}
	}
	return 0;
}

/* The size is the section's length less its CID: the block is not read,
 * so it is not hashed either (a tampered block has a size, and get then
 * refuses it). */
static int probe_size(const car_store *cs, const head *h, void *ctx)
{
	(void)cs;
	*(uint64_t *)ctx = h->block_len;
	return 1;
}

static int car_get_size(cairn_store *s, uint64_t *size_out, const cairn_cid *cid)
{
	const car_store *cs = (const car_store *)s;
	uint64_t size = 0;
	int rc = lookup(cs, cid, HEAD_MAX, probe_size, &size);

	if (rc == 1) {
		*size_out = size;
		return 0;
	}
	return rc ? rc : not_found(cs, cid);
}

static int probe_has(const car_store *cs, const head *h, void *ctx)
{
	(void)cs;
	(void)h;
	(void)ctx;
	return 1;
}

static int car_has(cairn_store *s, const cairn_cid *cid)
{
	return lookup((const car_store *)s, cid, HEAD_MAX, probe_has, NULL);
}

/* File order, with a reader of its own over the shared descriptor (pread
 * only), so iterating does not disturb concurrent gets. Trusted: only the
 * CIDs are wanted, and the blocks are skipped without being read. */
static int car_iterate(cairn_store *s, cairn_store_iter_fn fn, void *payload)
{
	const car_store *cs = (const car_store *)s;
	cairn_car_options scan = cs->opts;
	cairn_car_reader *r;
	cairn_car_section sec;
	int rc;

	scan.trusted = true;
	if ((rc = cairn_car_reader_open_fd(&r, cs->fd, cs->path, &scan)))
		return rc;
	while ((rc = cairn_car_reader_next(r, &sec, false)) == 1) {
		if ((rc = fn(&sec.cid, payload)))
			break;
	}
	cairn_car_reader_free(r);
	return rc;
}

static void car_free(cairn_store *s)
{
	car_store *cs = (car_store *)s;

	for (size_t t = 0; t < RADIX_TABLES; t++)
		cairn_free(cs->rx[t].starts);
	cairn_car_index_free(cs->idx);
	cairn_buf_free(&cs->idx_bytes);
	if (cs->map)
		munmap((void *)cs->map, cs->map_len);
	if (cs->index_fd >= 0 && cs->index_fd != cs->fd)
		close(cs->index_fd);
	if (cs->index_name != cs->path)
		cairn_free((char *)cs->index_name);
	if (cs->fd >= 0)
		close(cs->fd);
	cairn_free(cs->path);
	cairn_free(cs);
}

static const cairn_store_ops car_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "car",
	.get = car_get,
	.get_size = car_get_size,
	.has = car_has,
	.iterate = car_iterate,
	.free = car_free,
	.get_many = car_get_many,
	.positions = car_positions,
	.locate_many = car_locate_many,
	.get_many_at = car_get_many_at,
};

/* Which index: the detached file when the caller names one (it wins over an
 * embedded index: the caller asked for it), else the CARv2's own, else one
 * built now from a trusted scan (the blocks are hashed on get, not here).
 * A corrupt embedded index fails the open, as in go-car, rather than being
 * quietly replaced. */
static int open_index(car_store *cs, cairn_car_reader *r, const char *index_path)
{
	const cairn_car_v2_header *h = cairn_car_reader_v2_header(r);
	int rc;

	if (index_path)
		return cairn_car_index_open(&cs->idx, index_path, 0);
	if (h && h->index_offset)
		return cairn_car_index_open(&cs->idx, cs->path, h->index_offset);
	if ((rc = cairn_car_index_build(&cs->idx_bytes, r, CAIRN_CAR_INDEX_MH_SORTED, false)))
		return rc;
	return cairn_car_index_open_bytes(&cs->idx, cs->idx_bytes.data, cs->idx_bytes.len, cs->path);
}

/* With no_mmap, an index read from a file is read with pread from then on
 * (see run_entries): from the CAR's descriptor, or the detached index's. */
static int open_index_fd(car_store *cs, const char *index_path)
{
	if (!cs->opts.no_mmap || cs->idx_bytes.data)
		return 0;
	if (!index_path) {
		cs->index_fd = cs->fd;
		cs->index_name = cs->path;
		return 0;
	}
	if (!(cs->index_name = cairn_strndup(index_path, strlen(index_path))))
		return CAIRN_ENOMEM;
	if ((cs->index_fd = open(index_path, O_RDONLY | O_CLOEXEC)) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", index_path, strerror(errno));
	return 0;
}

/* The index's runs of contiguous entries, from its buckets' heads alone:
 * the entries are read once, by radix_build. */
typedef struct {
	entry_run runs[RADIX_MAX_RUNS];
	size_t nruns;
	bool too_many;
} run_scan;

static int scan_bucket(uint64_t mh_code, const uint8_t *entries, size_t digest_len,
		       uint64_t count, void *payload)
{
	run_scan *sc = payload;
	entry_run *r = sc->nruns ? &sc->runs[sc->nruns - 1] : NULL;

	if (!count)
		return 0;
	if (r && r->code == mh_code && r->dlen == digest_len &&
	    entries == r->p + r->n * (digest_len + 8)) {
		r->n += count;
		return 0;
	}
	if (sc->nruns == RADIX_MAX_RUNS) {
		sc->too_many = true;
		return 1;
	}
	sc->runs[sc->nruns++] = (entry_run){entries, mh_code, digest_len, count};
	return 0;
}

/* Builds the radix table of one run into `rx`, of about `per_slot`
 * entries a slot (a power of two), checking as it goes that the run is
 * in order; false when it cannot be (entries out of order, or no memory:
 * then the run is searched, which is only slower). */
static bool radix_build(radix *rx, const entry_run *best, unsigned per_slot,
			const cairn_car_index *release)
{
	uint32_t *starts;
	unsigned bits = 0;
	size_t width, slots, next = 0;

	while (bits < RADIX_MAX_BITS && (best->n / per_slot >> bits))
		bits++;
	slots = (size_t)1 << bits;
	if (!(starts = cairn_malloc_huge((slots + 1) * sizeof(*starts)))) {
		cairn_error_clear();
		return false;
	}
	/* Each entry starts the slots after the last one's, up to its own. */
	width = best->dlen + 8;
	for (uint64_t j = 0; j < best->n; j++) {
		const uint8_t *e = best->p + j * width;
		size_t q = load_be32(e) >> (32 - bits);

		if (j && digest_cmp(e - width, e, best->dlen) > 0) {
			cairn_free(starts);
			return false;
		}
		while (next <= q)
			starts[next++] = (uint32_t)j;
		if (release && (j + 1) % RELEASE_EVERY == 0)
			cairn_car_index_release(release);
	}
	while (next <= slots)
		starts[next++] = (uint32_t)best->n;
	rx->run = *best;
	rx->bits = bits;
	rx->starts = starts;
	return true;
}

/* Builds radix tables, of half to one entry a slot (with no_mmap, four to
 * eight: an eighth of the memory, as reads by pread cost far more than a
 * locate's extra line, and a caller who asked for no mapping asked for a
 * small RSS), over the index's largest runs (at most RADIX_TABLES)
 * that are sorted and the only run of their code and digest length (else
 * a CID of that kind could have entries outside the table's run). They are
 * only a shortcut: a CID without a table is looked up by searching. */
static void build_radix(car_store *cs)
{
	const cairn_car_index *release = cs->index_fd >= 0 ? cs->idx : NULL;
	run_scan sc;
	size_t ntables = 0;

	memset(&sc, 0, sizeof(sc));
	if (cairn_car_index_count(cs->idx) < RADIX_MIN ||
	    cairn_car_index_foreach_bucket(cs->idx, scan_bucket, &sc) || sc.too_many)
		return;
	while (ntables < RADIX_TABLES) {
		entry_run *best = NULL;
		bool alone = true;

		for (size_t i = 0; i < sc.nruns; i++) {
			if (sc.runs[i].n && (!best || sc.runs[i].n > best->n))
				best = &sc.runs[i];
		}
		if (!best || best->n < RADIX_MIN)
			return;
		for (size_t i = 0; i < sc.nruns; i++) {
			if (&sc.runs[i] != best && sc.runs[i].code == best->code &&
			    sc.runs[i].dlen == best->dlen)
				alone = false;
		}
		if (alone && best->n < UINT32_MAX && best->dlen >= 4 &&
		    (!release || best->dlen + 8 <= READ_ENTRY_MAX) &&
		    radix_build(&cs->rx[ntables], best, cs->opts.no_mmap ? 8 : 1, release)) {
			cs->rx[ntables].base = cs->positions;
			cs->rx[ntables].file_off = cairn_car_index_file_offset(cs->idx, best->p);
			cs->positions += best->n;
			ntables++;
		}
		best->n = 0; /* considered */
	}
}

/* Maps the file up to the end of the payload, for reads without a system
 * call each; where it cannot be mapped, gets read with pread. With
 * opts.huge_pages the mapping asks for huge pages: a block read from disk
 * then comes with the rest of its 2 MiB folio, which a caller reading most
 * of the CAR (an export: 14% faster over 10 M blocks) reads anyway, and a
 * server getting a block here and there would read for nothing. */
static void map_payload(car_store *cs)
{
	void *p;

	if (cs->opts.no_mmap || cs->data_end > SIZE_MAX)
		return;
	p = mmap(NULL, (size_t)cs->data_end, PROT_READ, MAP_SHARED, cs->fd, 0);
	if (p == MAP_FAILED)
		return;
	if (cs->opts.huge_pages)
		(void)madvise(p, (size_t)cs->data_end, MADV_HUGEPAGE);
	cs->map = p;
	cs->map_len = (size_t)cs->data_end;
}

int cairn_store_car_open(cairn_store **out, const char *path, const char *index_path,
			 const cairn_car_options *opts)
{
	cairn_car_options scan;
	cairn_car_reader *r = NULL;
	car_store *cs;
	int rc;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "car store: NULL output");
	*out = NULL;
	if (!path)
		return cairn_error_set(CAIRN_EINVAL, "car store: NULL path");
	if (!(cs = cairn_calloc(1, sizeof(*cs))))
		return CAIRN_ENOMEM;
	cs->base.ops = &car_ops;
	cs->fd = -1;
	cs->index_fd = -1;
	cs->opts = opts ? *opts : default_opts;
	if (!(cs->path = cairn_strndup(path, strlen(path)))) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	if ((cs->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: %s", path,
				     strerror(errno));
		goto fail;
	}
	scan = cs->opts;
	scan.trusted = true;
	if ((rc = cairn_car_reader_open_fd(&r, cs->fd, path, &scan)))
		goto fail;
	cs->data_offset = cairn_car_reader_data_offset(r);
	cs->data_end = cairn_car_reader_data_end(r);
	if ((rc = open_index(cs, r, index_path)) || (rc = open_index_fd(cs, index_path)))
		goto fail;
	build_radix(cs);
	if (cs->index_fd >= 0)
		cairn_car_index_release(cs->idx);
	map_payload(cs);
	cairn_car_reader_free(r);
	*out = &cs->base;
	return 0;
fail:
	cairn_car_reader_free(r);
	car_free(&cs->base);
	return rc;
}
