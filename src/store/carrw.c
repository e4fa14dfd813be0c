/* carrw.c: the read-write CAR store: a CARv2 written as blocks stream in,
 * readable while it grows, resumed after a crash, finalized with its index.
 *
 * ---------------------------------------------------------------- layout
 *
 * R = opts->root_room, S = 51 + R (where the sections start, fixed for the
 * life of the file), h = length of the CARv1 header (varint included),
 * T = the tail (end of the last section). Offsets are from byte 0.
 *
 *   offset   size    what
 *   0        11      pragma 0a a1 67 "version" 02
 *   11       40      CARv2 header: zero while writing, written at finalize
 *   51       R - h   zero padding
 *   S - h    h       CARv1 header: varint | DAG-CBOR {roots, version: 1}
 *   S        ...     sections: varint(len) | CID | block, appended
 *   T        ...     index (finalize only), to the end of the file
 *
 * At finalize: data_offset = S - h, data_size = T - (S - h), index_offset =
 * T, and the index offsets are relative to data_offset. Changing the roots
 * rewrites the room and so moves data_offset, never the sections.
 *
 * ----------------------------------------------------------------- states
 *
 *   WRITING --finalize--> FINALIZED (read-only: put, set_roots -> EEXISTS)
 *   WRITING --any failure inside a put, flush, set_roots or finalize-->
 *           FAILED (put, flush, set_roots, finalize -> EIO; get, has and
 *           iterate still answer for what was accepted) --free, reopen-->
 *           WRITING, resumed from what is on disk.
 * A failure that changes nothing (a bad argument, a block over the size
 * limit, a hash cairn cannot check) is returned and the store stays usable.
 * Out of memory in the middle of a put counts as a failure: the map, the
 * index and the file would otherwise have to be rolled back in step, and
 * the resume already rebuilds all three from the file exactly.
 *
 * ------------------------------------------------------------- invariants
 *
 * - The file at `path` always starts with a whole prefix (pragma, zero
 *   header, room): it is created as `path`.carrw-tmp, fsynced, then linked
 *   into place (renamed over an empty file), the directory fsynced.
 * - Sections are only appended; a section is either wholly in the write
 *   buffer or wholly handed to the kernel, never split between the two.
 * - Every block of the map is in the file (or the buffer) at the recorded
 *   offset; every section is in the map once per multihash.
 * - The 40-byte header is written only after the sections and the index are
 *   fsynced, so a file with a non-zero header is complete; a crash before
 *   leaves a zero header and a tail the resume cuts off (the index bytes do
 *   not parse as a section that hashes).
 *
 * ----------------------------------------------------------------- resume
 *
 * Opening an existing file with a zero header resumes it. The CARv1 header
 * is found as the first non-zero byte after byte 51 (the padding is zero
 * and a header's length varint never starts with 0): it must parse, re-encode
 * to the same bytes and end exactly at S, so a file made with another
 * root_room is told apart (CAIRN_EINVAL naming the room it was made with).
 * The sections from S are then read with the reader's checks (length
 * against the end of the file, CID, zero length, the block hashed against
 * its CID); the first that fails is where the tail was torn, and the file
 * is truncated there. What is cut is logged. Two failures do not cut: an
 * I/O error (the bytes may be fine), and a section over max_section_size
 * that lies wholly inside the file (likely written with a larger limit;
 * reopen with it).
 * A room that does not parse (a torn set_roots) is accepted only if roots
 * are given and a good section starts at S (or the file ends there).
 * A put whose multihash cairn cannot compute is refused up front, so that
 * every section on file can be checked by a resume. Blocks are not hashed
 * on put (callers verify, as the store interface says): a block that does
 * not match its CID would be where a later resume cuts, losing what follows.
 * Opening a finalized file maps its sections without hashing them and
 * serves them read-only; its roots cannot change.
 *
 * -------------------------------------------------------------- matching
 *
 * By multihash, as go-car's blockstore does by default and as the CARv2
 * index does: a CID put twice, or under another codec or CID version, is
 * written once, and get/has with any CID of that multihash find it.
 * Identity CIDs are answered by the store wrappers; one put here directly
 * is written only with keep_identity (and must hold its own digest).
 *
 * ----------------------------------------------------------------- memory
 *
 * Per block: an entry (24 bytes), its CID (36 for sha2-256), 8-byte table
 * slots at 3/8 to 3/4 load (11 to 21), and the index builder's record
 * (digest + 8): about 110 bytes, 0.6 GB for 5.4 million 200-byte blocks.
 * The write buffer is 1 MiB.
 *
 * ------------------------------------------------------------ fsync policy
 *
 *   NONE       nothing until finalize.
 *   FLUSH      fdatasync at cairn_store_flush, then finalize.
 *   EVERY_PUT  fdatasync before put / put_many / set_roots return.
 *   finalize   always: write buffer, index; fsync; header; fsync.
 *   create     always: the prefix is fsynced, linked, the directory fsynced.
 *   resume     a cut is fsynced before anything is appended after it; the
 *              first sync after a resume is a real one even if nothing new
 *              was put (a killed writer's pages may not be on disk yet).
 * Small sections are gathered in a 1 MiB buffer; a section that would fill
 * it goes out with the buffer in one pwritev, without being copied.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cairn/store.h"

#define FLUSH_AT (1u << 20)
/* How many blocks ahead put_many asks for the map's slot. */
#define PREFETCH 8
/* A room is read and written whole; more than this is not a root list. */
#define ROOM_MAX (16u << 20)
#define SECTIONS(s) ((uint64_t)CAIRN_CAR_V2_PREFIX_LEN + (s)->opts.root_room)

/* One block, in file order: 24 bytes. */
typedef struct {
	uint64_t at;        /* file offset of the section's length varint */
	uint64_t key;       /* where its CID bytes start in `cids` */
	uint32_t block_len;
	uint8_t cid_len;
	uint8_t mh_off;     /* where the multihash starts in the CID */
	uint8_t head;       /* varint + CID: the block starts at at + head */
	uint8_t pad;
} entry;

/* The map from multihash to entry is an open-addressing table of 8-byte
 * slots, 0 free, else the hash's top 16 bits over the entry's number + 1.
 * An ingest's put then costs one cache miss (the probe; the insert writes
 * the same line) and appends to arrays written in order. With 32-byte slots
 * holding the entries themselves, the probe and the insert were two misses
 * in a table four times larger: 750 ns a 200-byte put against 500 now
 * (5.4 million of them; bench/store/bench_carrw.c). */
#define SLOT_INDEX(v) ((v) & 0xffffffffffffull)
#define SLOT_TAG(h) ((h) >> 48)

typedef struct {
	cairn_store base;
	int fd;
	char *path;
	cairn_carrw_options opts;
	uint32_t header_len;      /* h: the CARv1 header at the end of the room */
	bool finalized, failed;
	bool dirty;               /* written since the last fdatasync */
	uint64_t failed_at;       /* the tail when it failed, for messages */
	cairn_buf out;            /* sections not yet written; they start at `flushed` */
	uint64_t flushed;
	uint64_t *table;          /* `cap` slots, a power of two */
	size_t cap;
	entry *entries;           /* `count` of them, in file order */
	size_t count, entries_cap;
	cairn_buf cids;           /* the CIDs' bytes, back to back, in file order */
	cairn_car_index_builder *index; /* offsets relative to S until finalize */
	uint64_t ok_code;         /* the last multihash found computable */
	uint8_t ok_len;
	bool ok_valid;
} carrw;

static const cairn_store_ops carrw_ops;

static uint64_t tail(const carrw *s)
{
	return s->flushed + s->out.len;
}

/* ------------------------------------------------------------ failures */

static int fail(carrw *s, int rc)
{
	if (!s->failed) {
		s->failed = true;
		s->failed_at = tail(s);
	}
	return rc;
}

static int refuse(const carrw *s, const char *what)
{
	if (s->finalized)
		return cairn_error_set(CAIRN_EEXISTS, "%s: %s: the CAR is finalized and read-only",
				       s->path, what);
	return cairn_error_set(CAIRN_EIO,
		"%s: %s refused: an earlier write failed (near byte %llu); reopen the store to "
		"resume from what is on disk", s->path, what, (unsigned long long)s->failed_at);
}

/* ------------------------------------------------------------------ map */

/* A hash of the multihash, from its bytes (the table is rebuilt from the
 * entries' bytes when it grows; cairn_cid_hash wants a decoded CID and
 * reads every byte). A cryptographic digest is uniform already: its first
 * and last eight bytes, mixed. An identity "digest" is not: all of it. */
static uint64_t mh_hash(const uint8_t *p, size_t n)
{
	uint64_t h, a, b;

	if (n >= 16 && p[0] != CAIRN_MH_IDENTITY) {
		memcpy(&a, p, 8);
		memcpy(&b, p + n - 8, 8);
		h = a ^ (b * 0x9e3779b97f4a7c15ull) ^ n;
	} else {
		h = 0xcbf29ce484222325ull;
		for (size_t i = 0; i < n; i++)
			h = (h ^ p[i]) * 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static uint64_t cid_hash(const cairn_cid *cid)
{
	return mh_hash(cid->bytes + cid->mh_off, (size_t)cid->len - cid->mh_off);
}

static uint64_t entry_hash(const carrw *s, const entry *e)
{
	return mh_hash(s->cids.data + e->key + e->mh_off, (size_t)e->cid_len - e->mh_off);
}

/* The entry for the CID's multihash, or NULL with *pos at the free slot
 * where it would go (valid until the table grows). */
static entry *lookup(const carrw *s, const cairn_cid *cid, size_t *pos)
{
	uint64_t h = cid_hash(cid), v;
	size_t mask = s->cap - 1, i, n = (size_t)cid->len - cid->mh_off;

	*pos = 0;
	if (!s->cap)
		return NULL;
	for (i = h & mask; (v = s->table[i]); i = (i + 1) & mask) {
		entry *e = &s->entries[SLOT_INDEX(v) - 1];

		if (v >> 48 == SLOT_TAG(h) && (size_t)e->cid_len - e->mh_off == n &&
		    !memcmp(s->cids.data + e->key + e->mh_off, cid->bytes + cid->mh_off, n))
			return e;
	}
	*pos = i;
	return NULL;
}

static entry *find(const carrw *s, const cairn_cid *cid)
{
	size_t pos;

	return lookup(s, cid, &pos);
}

/* Makes room for one more entry (and its CID bytes), so a lookup then an
 * insert cannot fail between them. The table stays at most 3/4 full. */
static int reserve(carrw *s)
{
	if ((s->count + 1) * 4 > s->cap * 3) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *t;

		if (cap > SIZE_MAX / sizeof(*t))
			return cairn_error_set(CAIRN_ENOMEM, "%s: block map: size overflow", s->path);
		if (!(t = cairn_calloc(cap, sizeof(*t))))
			return CAIRN_ENOMEM;
		/* Re-placed from the entries, read in order. */
		for (size_t j = 0; j < s->count; j++) {
			uint64_t h = entry_hash(s, &s->entries[j]);
			size_t i;

			for (i = h & (cap - 1); t[i]; i = (i + 1) & (cap - 1))
				;
			t[i] = SLOT_TAG(h) << 48 | (j + 1);
		}
		cairn_free(s->table);
		s->table = t;
		s->cap = cap;
	}
	if (s->count == s->entries_cap) {
		size_t cap = s->entries_cap ? s->entries_cap * 2 : 1024;
		entry *e;

		if (cap > SIZE_MAX / sizeof(*e) || !(e = cairn_realloc(s->entries, cap * sizeof(*e))))
			return cap > SIZE_MAX / sizeof(*e) ? cairn_error_set(CAIRN_ENOMEM, "size overflow")
							   : CAIRN_ENOMEM;
		s->entries = e;
		s->entries_cap = cap;
	}
	return cairn_buf_reserve(&s->cids, CAIRN_CID_MAX_BYTES);
}

/* After reserve() and a lookup that gave `pos`: cannot fail. */
static void insert(carrw *s, size_t pos, const cairn_cid *cid, uint64_t at, size_t head,
		   uint64_t block_len)
{
	entry *e = &s->entries[s->count];

	e->at = at;
	e->key = s->cids.len;
	e->block_len = (uint32_t)block_len;
	e->cid_len = (uint8_t)cid->len;
	e->mh_off = cid->mh_off;
	e->head = (uint8_t)head;
	e->pad = 0;
	cairn_buf_append(&s->cids, cid->bytes, cid->len);
	s->count++;
	s->table[pos] = SLOT_TAG(cid_hash(cid)) << 48 | s->count;
}

/* ------------------------------------------------------------- writing */

static int write_iov(carrw *s, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t k = pwritev(s->fd, iov, n, (off_t)off);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return cairn_error_set(CAIRN_EIO, "%s: write at byte %llu: %s", s->path,
					       (unsigned long long)off, strerror(errno));
		}
		off += (uint64_t)k;
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

/* Hands the buffer to the kernel. The buffer is kept on failure, so get
 * still finds its blocks; the store is FAILED by then. */
static int write_out(carrw *s)
{
	struct iovec iov = {s->out.data, s->out.len};
	int rc;

	if (!s->out.len)
		return 0;
	if ((rc = write_iov(s, &iov, 1, s->flushed)))
		return fail(s, rc);
	s->flushed += s->out.len;
	cairn_buf_clear(&s->out);
	return 0;
}

static int datasync(carrw *s)
{
	if (!s->dirty)
		return 0;
	while (fdatasync(s->fd) < 0) {
		/* Linux may drop the dirty pages after a failed fsync: a retry
		 * would succeed and lie, so the store fails for good. */
		if (errno != EINTR)
			return fail(s, cairn_error_set(CAIRN_EIO, "%s: fdatasync: %s", s->path,
						       strerror(errno)));
	}
	s->dirty = false;
	return 0;
}

static int sync_all(carrw *s)
{
	int rc = write_out(s);

	return rc ? rc : datasync(s);
}

/* A put changes nothing unless these pass: the section fits the limit, and
 * a resume will be able to hash the block. Blocks are not hashed here (the
 * caller verified them, as the store interface says); one that does not
 * match its CID would be where a resume cuts. */
static int check_put(carrw *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	uint8_t digest[CAIRN_MH_DIGEST_MAX];
	int n;

	if (len > UINT32_MAX || (uint64_t)cid->len + len > s->opts.max_section_size)
		return cairn_error_set(CAIRN_ETOOBIG,
			"%s: a block of %zu bytes is over the section limit of %llu bytes", s->path,
			len, (unsigned long long)s->opts.max_section_size);
	if (cid->mh_code == CAIRN_MH_IDENTITY) {
		/* Checking costs a compare: a wrong one would be where a
		 * resume cuts, losing every block after it. */
		if (len != cid->digest_len || (len && memcmp(data, cid->bytes + cid->digest_off, len)))
			return cairn_error_set(CAIRN_EMISMATCH,
				"%s: an identity CID whose digest is not its block", s->path);
		return 0;
	}
	if (s->ok_valid && cid->mh_code == s->ok_code && cid->digest_len == s->ok_len)
		return 0;
	if ((n = cairn_multihash_sum(digest, cid->mh_code, "", 0)) < 0)
		return cairn_error_prefix("%s: block refused, a resume could not check it: ", s->path);
	if ((size_t)n != cid->digest_len)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"%s: block refused: its %s digest has %u bytes, not %d, so a resume could "
			"not check it", s->path,
			cairn_multihash_name(cid->mh_code) ? cairn_multihash_name(cid->mh_code) : "",
			cid->digest_len, n);
	s->ok_code = cid->mh_code;
	s->ok_len = cid->digest_len;
	s->ok_valid = true;
	return 0;
}

/* Appends one checked, new block whose lookup gave `pos` (after reserve):
 * the index entry, then the bytes, then the map entry, which cannot fail. */
static int append(carrw *s, size_t pos, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	uint8_t varint[CAIRN_VARINT_MAX];
	size_t vlen = cairn_varint_encode(varint, (uint64_t)cid->len + len);
	size_t sec = vlen + cid->len + len;
	uint64_t at = tail(s);
	int rc;

	s->dirty = true;
	if (s->index && (rc = cairn_car_index_builder_add(s->index, cid, at - SECTIONS(s))))
		return fail(s, rc);
	if (s->out.len + sec >= FLUSH_AT) {
		struct iovec iov[4] = {
			{s->out.data, s->out.len},
			{varint, vlen},
			{(void *)cid->bytes, cid->len},
			{(void *)data, len},
		};

		if ((rc = write_iov(s, iov, 4, s->flushed)))
			return fail(s, rc);
		s->flushed += s->out.len + sec;
		cairn_buf_clear(&s->out);
	} else {
		if ((rc = cairn_buf_reserve(&s->out, sec)))
			return fail(s, rc);
		cairn_buf_append(&s->out, varint, vlen);
		cairn_buf_append(&s->out, cid->bytes, cid->len);
		cairn_buf_append(&s->out, data, len);
	}
	insert(s, pos, cid, at, vlen + cid->len, len);
	return 0;
}

/* Identity blocks are normally answered by the wrappers and never get here;
 * a direct call writes them only with keep_identity, as go-car does. */
static bool skip_identity(const carrw *s, const cairn_cid *cid)
{
	return cid->mh_code == CAIRN_MH_IDENTITY && !s->opts.keep_identity;
}

static int carrw_put_many(cairn_store *st, const cairn_block *blocks, size_t n)
{
	carrw *s = (carrw *)st;
	int rc;

	if (s->finalized || s->failed)
		return refuse(s, "put");
	/* Check all first, so a refused block leaves none of the batch written. */
	for (size_t i = 0; i < n; i++)
		if (!skip_identity(s, &blocks[i].cid) &&
		    (rc = check_put(s, &blocks[i].cid, blocks[i].data, blocks[i].len)))
			return rc;
	for (size_t i = 0; i < n; i++) {
		const cairn_block *b = &blocks[i];
		size_t pos;

		/* The probe is a cache miss per block: ask for the slot of a
		 * block a few ahead while this one is written. */
		if (i + PREFETCH < n && s->cap)
			__builtin_prefetch(&s->table[cid_hash(&blocks[i + PREFETCH].cid) & (s->cap - 1)]);
		if (skip_identity(s, &b->cid))
			continue;
		if ((rc = reserve(s)))
			return fail(s, rc);
		if (lookup(s, &b->cid, &pos))
			continue;
		if ((rc = append(s, pos, &b->cid, b->data, b->len)))
			return rc;
	}
	return s->opts.sync == CAIRN_SYNC_EVERY_PUT ? sync_all(s) : 0;
}

static int carrw_put(cairn_store *st, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	carrw *s = (carrw *)st;
	size_t pos;
	int rc;

	if (s->finalized || s->failed)
		return refuse(s, "put");
	if (skip_identity(s, cid))
		return 0;
	if ((rc = check_put(s, cid, data, len)))
		return rc;
	if ((rc = reserve(s)))
		return fail(s, rc);
	if (!lookup(s, cid, &pos) && (rc = append(s, pos, cid, data, len)))
		return rc;
	return s->opts.sync == CAIRN_SYNC_EVERY_PUT ? sync_all(s) : 0;
}

/* ------------------------------------------------------------- reading */

static int carrw_get(cairn_store *st, cairn_buf *out, const cairn_cid *cid)
{
	carrw *s = (carrw *)st;
	const entry *e = find(s, cid);
	uint64_t off;
	int rc;

	if (!e)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: block not found", s->path);
	cairn_buf_clear(out);
	if ((rc = cairn_buf_reserve(out, e->block_len)))
		return rc;
	off = e->at + e->head;
	if (e->at >= s->flushed) {
		memcpy(out->data, s->out.data + (off - s->flushed), e->block_len);
	} else if ((rc = cairn_file_pread_full(s->fd, out->data, e->block_len, off, s->path))) {
		return rc;
	}
	out->len = e->block_len;
	out->data[out->len] = '\0';
	return 0;
}

static int carrw_get_size(cairn_store *st, uint64_t *size_out, const cairn_cid *cid)
{
	carrw *s = (carrw *)st;
	const entry *e = find(s, cid);

	if (!e)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: block not found", s->path);
	*size_out = e->block_len;
	return 0;
}

static int carrw_has(cairn_store *st, const cairn_cid *cid)
{
	return find((carrw *)st, cid) != NULL;
}

/* In file order. `fn` may put: the arrays are re-read at each step, and the
 * walk stops at the blocks there when it started. */
static int carrw_iterate(cairn_store *st, cairn_store_iter_fn fn, void *payload)
{
	carrw *s = (carrw *)st;
	size_t end = s->count;
	int rc;

	for (size_t i = 0; i < end; i++) {
		const entry *e = &s->entries[i];
		cairn_cid cid;

		if (cairn_cid_decode(&cid, NULL, s->cids.data + e->key, e->cid_len))
			return cairn_error_set(CAIRN_ERROR, "%s: block map damaged at entry %zu",
					       s->path, i);
		if ((rc = fn(&cid, payload)))
			return rc;
	}
	return 0;
}

static int carrw_flush(cairn_store *st, const cairn_cid *root)
{
	carrw *s = (carrw *)st;

	(void)root; /* everything: the file has one order */
	if (s->finalized)
		return 0;
	if (s->failed)
		return refuse(s, "flush");
	return s->opts.sync == CAIRN_SYNC_NONE ? write_out(s) : sync_all(s);
}

static void carrw_free(cairn_store *st)
{
	carrw *s = (carrw *)st;

	/* Left unfinished: hand what is buffered to the kernel (not fsynced),
	 * so a later open resumes with it. After a failure, write nothing. */
	if (s->fd >= 0 && !s->finalized && !s->failed)
		write_out(s);
	if (s->fd >= 0)
		close(s->fd);
	cairn_car_index_builder_free(s->index);
	cairn_buf_free(&s->out);
	cairn_buf_free(&s->cids);
	cairn_free(s->table);
	cairn_free(s->entries);
	cairn_free(s->path);
	cairn_free(s);
}

static const cairn_store_ops carrw_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "car-rw",
	.get = carrw_get,
	.get_size = carrw_get_size,
	.has = carrw_has,
	.put = carrw_put,
	.put_many = carrw_put_many,
	.del = NULL,
	.iterate = carrw_iterate,
	.flush = carrw_flush,
	.free = carrw_free,
};

/* ---------------------------------------------------------------- room */

/* The CARv1 header for `roots`, checked against the room. */
static int encode_header(cairn_buf *out, const carrw *s, const cairn_cid *roots, size_t nroots)
{
	int rc;

	cairn_buf_clear(out);
	if ((rc = cairn_car_v1_header_encode(out, roots, nroots)))
		return rc;
	if (out->len > s->opts.root_room)
		return cairn_error_set(CAIRN_ETOOBIG,
			"%s: the CARv1 header for %zu root%s takes %zu bytes; root_room is %u", s->path,
			nroots, nroots == 1 ? "" : "s", out->len, s->opts.root_room);
	return 0;
}

/* The whole room: zeros, then the header ending at S. */
static int write_room(carrw *s, const cairn_buf *hdr)
{
	uint8_t *room = cairn_calloc(1, s->opts.root_room);
	int rc;

	if (!room)
		return CAIRN_ENOMEM; /* nothing written: still usable */
	memcpy(room + s->opts.root_room - hdr->len, hdr->data, hdr->len);
	rc = cairn_file_pwrite_full(s->fd, room, s->opts.root_room, CAIRN_CAR_V2_PREFIX_LEN, s->path);
	cairn_free(room);
	if (rc)
		return fail(s, rc);
	s->dirty = true;
	s->header_len = (uint32_t)hdr->len;
	return s->opts.sync == CAIRN_SYNC_EVERY_PUT ? datasync(s) : 0;
}

static bool is_carrw(const cairn_store *st)
{
	return st && st->ops == &carrw_ops;
}

int cairn_store_carrw_set_roots(cairn_store *st, const cairn_cid *roots, size_t nroots)
{
	cairn_buf hdr = CAIRN_BUF_INIT;
	carrw *s = (carrw *)st;
	int rc;

	if (!is_carrw(st) || (nroots && !roots))
		return cairn_error_set(CAIRN_EINVAL, "set roots: not a read-write CAR store, or no roots");
	if (s->finalized || s->failed)
		return refuse(s, "set roots");
	if (!(rc = encode_header(&hdr, s, roots, nroots)))
		rc = write_room(s, &hdr);
	cairn_buf_free(&hdr);
	return rc;
}

/* ------------------------------------------------------------ finalize */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Adds `delta` to every offset of an index just encoded (see car.h for the
 * two layouts): the builder was fed offsets from S, which stays put when
 * the roots change, and the index wants them from data_offset = S - h.
 * The bytes are our own; a walk that does not land on the end means the
 * builder and this disagree, which is a bug, reported, never written. */
static int shift_index(uint8_t *p, size_t len, uint64_t codec, uint64_t delta, const char *path)
{
	size_t pos = cairn_varint_size(codec), groups = 1;

	if (codec == CAIRN_CAR_INDEX_MH_SORTED) {
		if (pos + 4 > len)
			goto bad;
		groups = le32(p + pos);
		pos += 4;
	}
	for (size_t g = 0; g < groups; g++) {
		uint32_t nb;

		if (codec == CAIRN_CAR_INDEX_MH_SORTED)
			pos += 8;
		if (pos + 4 > len)
			goto bad;
		nb = le32(p + pos);
		pos += 4;
		for (uint32_t b = 0; b < nb; b++) {
			uint32_t width;
			uint64_t bytes;

			if (pos + 12 > len)
				goto bad;
			width = le32(p + pos);
			bytes = le64(p + pos + 4);
			pos += 12;
			if (width < 8 || bytes > len - pos || bytes % width)
				goto bad;
			for (uint64_t e = 0; e < bytes; e += width) {
				uint8_t *o = p + pos + e + width - 8;

				put_le64(o, le64(o) + delta);
			}
			pos += (size_t)bytes;
		}
	}
	if (pos == len)
		return 0;
bad:
	return cairn_error_set(CAIRN_ERROR, "%s: internal error: the index encoding is not what "
			       "the offset shift expects (at index byte %zu)", path, pos);
}

int cairn_store_carrw_finalize(cairn_store *st)
{
	uint8_t raw[CAIRN_CAR_V2_HEADER_LEN];
	cairn_buf idx = CAIRN_BUF_INIT;
	carrw *s = (carrw *)st;
	cairn_car_v2_header h;
	int rc;

	if (!is_carrw(st))
		return cairn_error_set(CAIRN_EINVAL, "finalize: not a read-write CAR store");
	if (s->finalized || s->failed)
		return refuse(s, "finalize");
	if ((rc = write_out(s)))
		return rc;
	memset(&h, 0, sizeof(h));
	h.data_offset = SECTIONS(s) - s->header_len;
	h.data_size = s->flushed - h.data_offset;
	if (s->opts.keep_identity)
		h.characteristics[0] |= 0x80; /* fully indexed */
	if (s->index) {
		h.index_offset = s->flushed;
		if ((rc = cairn_car_index_builder_encode(s->index, &idx)) ||
		    (rc = shift_index(idx.data, idx.len, s->opts.index_codec, s->header_len, s->path)) ||
		    (rc = cairn_file_pwrite_full(s->fd, idx.data, idx.len, h.index_offset, s->path)))
			goto out;
	}
	/* Data and index on disk before the header that declares them: a
	 * crash between leaves a zero header, and a resume cuts the index. */
	if ((rc = cairn_file_fsync(s->fd, s->path)))
		goto out;
	cairn_car_v2_header_encode(raw, &h);
	if ((rc = cairn_file_pwrite_full(s->fd, raw, sizeof(raw), CAIRN_CAR_PRAGMA_LEN, s->path)) ||
	    (rc = cairn_file_fsync(s->fd, s->path)))
		goto out;
	s->finalized = true;
out:
	cairn_buf_free(&idx);
	return rc ? fail(s, rc) : 0;
}

/* ---------------------------------------------------------------- open */

static int dir_of(char *out, size_t n, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return snprintf(out, n, ".") < (int)n ? 0 : -1;
	if (slash == path)
		return snprintf(out, n, "/") < (int)n ? 0 : -1;
	return snprintf(out, n, "%.*s", (int)(slash - path), path) < (int)n ? 0 : -1;
}

/* A new file: the prefix goes to a temporary name, is fsynced, and is linked
 * into place (renamed over an empty file), so `path` never holds half a
 * prefix. `replace` is set when `path` exists and is empty. */
static int create(carrw *s, const cairn_buf *hdr, bool replace)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	uint8_t *prefix;
	uint64_t n = SECTIONS(s);
	int fd, rc, sys;

	if (snprintf(tmp, sizeof(tmp), "%s.carrw-tmp", s->path) >= (int)sizeof(tmp) ||
	    dir_of(dir, sizeof(dir), s->path))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", s->path);
	if (!(prefix = cairn_calloc(1, (size_t)n)))
		return CAIRN_ENOMEM;
	memcpy(prefix, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN);
	memcpy(prefix + n - hdr->len, hdr->data, hdr->len);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((rc = cairn_file_pwrite_full(fd, prefix, (size_t)n, 0, tmp)) ||
	    (rc = cairn_file_fsync(fd, tmp)))
		goto out;
	/* link(2) does not replace a file someone made meanwhile; where the
	 * file system has no hard links, rename(2) does the job. */
	if (replace) {
		sys = rename(tmp, s->path);
	} else if ((sys = link(tmp, s->path)) && (errno == EPERM || errno == EOPNOTSUPP)) {
		replace = true;
		sys = rename(tmp, s->path);
	}
	if (sys) {
		rc = cairn_error_set(errno == EEXIST ? CAIRN_EEXISTS : CAIRN_EIO, "%s: %s",
				     s->path, errno == EEXIST ? "created by someone else meanwhile"
							      : strerror(errno));
		goto out;
	}
	if (!replace)
		unlink(tmp);
	if ((rc = cairn_file_fsync_dir(dir)))
		goto out;
	s->fd = fd;
	fd = -1;
	s->flushed = n;
	s->header_len = (uint32_t)hdr->len;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	cairn_free(prefix);
	return rc;
}

/* Parses a CARv1 header block into its roots (caller frees) without the
 * car part's internals: the DAG-CBOR map {roots: [links], version: 1}. */
static int parse_header(cairn_cid **roots_out, size_t *nroots_out, const uint8_t *p, size_t len,
			const char *path, uint64_t at)
{
	const cairn_node *v, *list;
	cairn_arena *arena;
	cairn_node *root;
	cairn_cid *cids = NULL;
	int rc;

	*roots_out = NULL;
	*nroots_out = 0;
	if ((rc = cairn_arena_new(&arena)))
		return rc;
	if ((rc = cairn_dagcbor_decode(&root, arena, p, len))) {
		cairn_error_prefix("%s: CARv1 header at byte %llu: ", path, (unsigned long long)at);
		goto out;
	}
	v = cairn_node_map_get(root, "version");
	list = cairn_node_map_get(root, "roots");
	if (!v || v->kind != CAIRN_KIND_INT || v->v.i.neg || v->v.i.mag != 1 || !list ||
	    list->kind != CAIRN_KIND_LIST || root->v.map.len != 2) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: not a CARv1 header {roots, version: 1}",
				     path, (unsigned long long)at);
		goto out;
	}
	if (list->v.list.len && !(cids = cairn_malloc(list->v.list.len * sizeof(*cids)))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < list->v.list.len; i++) {
		if (list->v.list.items[i].kind != CAIRN_KIND_LINK) {
			cairn_free(cids);
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: root %zu is not a CID",
					     path, (unsigned long long)at, i);
			goto out;
		}
		cids[i] = *list->v.list.items[i].v.link;
	}
	*roots_out = cids;
	*nroots_out = list->v.list.len;
out:
	cairn_arena_free(arena);
	return rc;
}

/* Finds the CARv1 header of an unfinished file: the first non-zero byte
 * after byte 51. Sets *end to where it ends (S if the file was made with
 * this root_room) and `hdr` to its bytes. CAIRN_ECORRUPT if there is none
 * or it does not parse and re-encode to itself. */
static int find_header(carrw *s, cairn_buf *hdr, uint64_t *end, uint64_t size)
{
	uint8_t chunk[4096], head[CAIRN_VARINT_MAX];
	uint64_t at = CAIRN_CAR_V2_PREFIX_LEN, len;
	cairn_cid *roots = NULL;
	size_t nroots, used, i = 0, got = 0;
	int rc;

	for (;;) {
		if (at >= size || at - CAIRN_CAR_V2_PREFIX_LEN >= ROOM_MAX)
			return cairn_error_set(CAIRN_ECORRUPT,
				"%s: bytes 51 to %llu are zero: no CARv1 header in the root room", s->path,
				(unsigned long long)at);
		got = size - at < sizeof(chunk) ? (size_t)(size - at) : sizeof(chunk);
		if ((rc = cairn_file_pread_full(s->fd, chunk, got, at, s->path)))
			return rc;
		for (i = 0; i < got && !chunk[i]; i++)
			;
		if (i < got)
			break;
		at += got;
	}
	at += i;
	got = size - at < sizeof(head) ? (size_t)(size - at) : sizeof(head);
	if ((rc = cairn_file_pread_full(s->fd, head, got, at, s->path)))
		return rc;
	if (cairn_varint_decode(&len, &used, head, got))
		return cairn_error_prefix("%s: CARv1 header length at byte %llu: ", s->path,
					  (unsigned long long)at);
	if (len > ROOM_MAX || len > size - at - used)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: a CARv1 header of %llu bytes does not fit the file", s->path,
			(unsigned long long)at, (unsigned long long)len);
	cairn_buf_clear(hdr);
	if ((rc = cairn_buf_reserve(hdr, used + (size_t)len)))
		return rc;
	if ((rc = cairn_file_pread_full(s->fd, hdr->data, used + (size_t)len, at, s->path)))
		return rc;
	hdr->len = used + (size_t)len;
	if ((rc = parse_header(&roots, &nroots, hdr->data + used, (size_t)len, s->path, at)))
		return rc;
	{
		/* Canonical, as cairn writes it: anything else is damage. */
		cairn_buf again = CAIRN_BUF_INIT;

		rc = cairn_car_v1_header_encode(&again, roots, nroots);
		if (!rc && (again.len != hdr->len || memcmp(again.data, hdr->data, hdr->len)))
			rc = cairn_error_set(CAIRN_ECORRUPT,
				"%s: at byte %llu: the CARv1 header is not in canonical form", s->path,
				(unsigned long long)at);
		cairn_buf_free(&again);
	}
	cairn_free(roots);
	*end = at + hdr->len;
	return rc;
}

/* On ETOOBIG from the reader: is it a section over max_section_size that
 * lies wholly inside the file (refuse: it was likely written with a larger
 * limit), rather than a length torn or garbled past the end (cut)? */
static bool whole_but_oversized(const carrw *s, uint64_t at, uint64_t size)
{
	uint8_t head[CAIRN_VARINT_MAX];
	size_t got = size - at < sizeof(head) ? (size_t)(size - at) : sizeof(head), used;
	uint64_t len;

	if (cairn_file_pread_full(s->fd, head, got, at, s->path) ||
	    cairn_varint_decode(&len, &used, head, got))
		return false;
	return len > s->opts.max_section_size && len <= size - at - used;
}

/* Reads the sections from S, keeping each good one; stops at the first
 * torn or garbled one. `*cut` gets its offset (the file size if clean). */
static int scan_sections(carrw *s, uint64_t size, uint64_t *cut, bool *first_bad)
{
	cairn_car_options ro = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf block = CAIRN_BUF_INIT;
	uint64_t start = SECTIONS(s), at = start;
	cairn_car_section sec;
	size_t pos;
	int rc = 0;

	ro.max_section_size = s->opts.max_section_size;
	*first_bad = false;
	posix_fadvise(s->fd, (off_t)start, 0, POSIX_FADV_SEQUENTIAL);
	while (at < size) {
		rc = cairn_car_section_read(&sec, &block, s->fd, s->path, start, size, at - start, &ro);
		if (rc == CAIRN_EIO || rc == CAIRN_ENOMEM)
			goto out;
		if (rc == CAIRN_ETOOBIG && whole_but_oversized(s, at, size)) {
			cairn_error_prefix("not cutting: reopen with the max_section_size it was "
					   "written with, if larger: ");
			goto out;
		}
		if (rc) {
			cairn_log(CAIRN_LOG_WARN, "%s: resume: cutting %llu bytes at byte %llu: %s",
				  s->path, (unsigned long long)(size - at), (unsigned long long)at,
				  cairn_error_last());
			*first_bad = at == start;
			rc = 0;
			break;
		}
		if ((rc = reserve(s)))
			goto out;
		if (!lookup(s, &sec.cid, &pos))
			insert(s, pos, &sec.cid, at, (size_t)(sec.block_offset - at), sec.block_len);
		if (s->index && (rc = cairn_car_index_builder_add(s->index, &sec.cid, at - start)))
			goto out;
		at = sec.block_offset + sec.block_len;
	}
	*cut = at;
out:
	cairn_buf_free(&block);
	return rc;
}

static int resume(carrw *s, cairn_carrw_resume *report, const cairn_cid *roots, size_t nroots,
		  uint64_t size)
{
	cairn_buf hdr = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	uint64_t end = 0, cut = 0;
	bool room_bad = false, first_bad;
	int rc;

	/* The new roots must fit before anything is touched. */
	if (roots && (rc = encode_header(&want, s, roots, nroots)))
		goto out;
	if ((rc = find_header(s, &hdr, &end, size))) {
		if (rc != CAIRN_ECORRUPT || !roots)
			goto out;
		/* A torn room: the new roots replace it, if the sections show
		 * where S is. */
		room_bad = true;
	} else if (end != SECTIONS(s)) {
		rc = cairn_error_set(CAIRN_EINVAL,
			"%s: the file was made with root_room %llu (its CARv1 header ends at byte %llu); "
			"resume it with that root_room, not %u", s->path,
			(unsigned long long)(end - CAIRN_CAR_V2_PREFIX_LEN), (unsigned long long)end,
			s->opts.root_room);
		goto out;
	}
	if (size < SECTIONS(s)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: %llu bytes: shorter than its root room", s->path,
				     (unsigned long long)size);
		goto out;
	}
	if ((rc = scan_sections(s, size, &cut, &first_bad)))
		goto out;
	if (room_bad && first_bad) {
		rc = cairn_error_set(CAIRN_ECORRUPT,
			"%s: neither the root room nor the first section at byte %llu can be read: not "
			"resuming (was it made with another root_room?)", s->path,
			(unsigned long long)SECTIONS(s));
		goto out;
	}
	if (cut < size) {
		if (ftruncate(s->fd, (off_t)cut) < 0) {
			rc = cairn_error_set(CAIRN_EIO, "%s: truncate at byte %llu: %s", s->path,
					     (unsigned long long)cut, strerror(errno));
			goto out;
		}
		/* The cut reaches the disk before new sections land on it (a
		 * full fsync: the size is what changed). */
		if ((rc = cairn_file_fsync(s->fd, s->path)))
			goto out;
	}
	s->flushed = cut;
	s->header_len = (uint32_t)hdr.len;
	/* What the killed writer left in the page cache may not be on disk:
	 * the first sync after a resume is a real one. */
	s->dirty = true;
	if (roots && (room_bad || want.len != hdr.len || memcmp(want.data, hdr.data, hdr.len)))
		rc = write_room(s, &want);
	if (report) {
		report->blocks = s->count;
		report->cut_bytes = size - cut;
		report->cut_at = cut;
	}
out:
	cairn_buf_free(&hdr);
	cairn_buf_free(&want);
	return rc;
}

static bool same_roots(const cairn_cid *a, size_t na, const cairn_cid *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!cairn_cid_equal(&a[i], &b[i]))
			return false;
	return true;
}

/* A finalized file: read-only, its sections mapped without hashing (it was
 * checked when written; cairn_car_verify checks it again). */
static int open_finalized(carrw *s, cairn_carrw_resume *report, const cairn_cid *roots,
			  size_t nroots)
{
	cairn_car_options ro = CAIRN_CAR_OPTIONS_INIT;
	cairn_car_reader *r;
	cairn_car_section sec;
	int rc;

	ro.max_section_size = s->opts.max_section_size;
	ro.trusted = true;
	if ((rc = cairn_car_reader_open_fd(&r, s->fd, s->path, &ro)))
		return rc;
	if (roots && !same_roots(roots, nroots, cairn_car_reader_roots(r), cairn_car_reader_root_count(r))) {
		rc = cairn_error_set(CAIRN_EINVAL, "%s: the CAR is finalized: its roots cannot change",
				     s->path);
		goto out;
	}
	while ((rc = cairn_car_reader_next(r, &sec, false)) == 1) {
		size_t pos;

		if ((rc = reserve(s)))
			goto out;
		if (!lookup(s, &sec.cid, &pos))
			insert(s, pos, &sec.cid, sec.file_offset,
			       (size_t)(sec.block_offset - sec.file_offset), sec.block_len);
	}
	if (rc)
		goto out;
	s->flushed = cairn_car_reader_data_end(r);
	s->header_len = (uint32_t)cairn_car_reader_header_len(r);
	s->finalized = true;
	if (report) {
		report->blocks = s->count;
		report->cut_bytes = 0;
		report->cut_at = s->flushed;
	}
out:
	cairn_car_reader_free(r);
	return rc;
}

static int check_options(const cairn_carrw_options *o)
{
	if (o->root_room > ROOM_MAX)
		return cairn_error_set(CAIRN_EINVAL, "read-write CAR: root_room %u is over %u bytes",
				       o->root_room, ROOM_MAX);
	if (o->sync != CAIRN_SYNC_NONE && o->sync != CAIRN_SYNC_FLUSH && o->sync != CAIRN_SYNC_EVERY_PUT)
		return cairn_error_set(CAIRN_EINVAL, "read-write CAR: unknown sync policy %d", (int)o->sync);
	if (o->index_codec && o->index_codec != CAIRN_CAR_INDEX_SORTED &&
	    o->index_codec != CAIRN_CAR_INDEX_MH_SORTED)
		return cairn_error_set(CAIRN_EINVAL, "read-write CAR: unknown index codec 0x%llx",
				       (unsigned long long)o->index_codec);
	/* The map keeps block lengths in 32 bits. */
	if (o->max_section_size < 2 || o->max_section_size > UINT32_MAX)
		return cairn_error_set(CAIRN_EINVAL, "read-write CAR: max_section_size %llu is not in "
				       "2 .. 2^32-1", (unsigned long long)o->max_section_size);
	return 0;
}

int cairn_store_carrw_open(cairn_store **out, cairn_carrw_resume *resume_out, const char *path,
			   const cairn_cid *roots, size_t nroots, const cairn_carrw_options *opts)
{
	static const cairn_carrw_options defaults = CAIRN_CARRW_OPTIONS_INIT;
	uint8_t prefix[CAIRN_CAR_V2_PREFIX_LEN];
	static const uint8_t zeros[CAIRN_CAR_V2_HEADER_LEN];
	cairn_buf hdr = CAIRN_BUF_INIT;
	bool readonly = false;
	struct stat st;
	carrw *s;
	int rc;

	*out = NULL;
	if (resume_out)
		memset(resume_out, 0, sizeof(*resume_out));
	if (!opts)
		opts = &defaults;
	if (!path || (nroots && !roots))
		return cairn_error_set(CAIRN_EINVAL, "read-write CAR: no path, or no roots");
	if ((rc = check_options(opts)))
		return rc;
	if (!(s = cairn_calloc(1, sizeof(*s))))
		return CAIRN_ENOMEM;
	s->base.ops = &carrw_ops;
	s->fd = -1;
	s->opts = *opts;
	if (!(s->path = cairn_strndup(path, strlen(path)))) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	if (opts->index_codec &&
	    (rc = cairn_car_index_builder_new(&s->index, opts->index_codec, opts->keep_identity)))
		goto fail;
	s->fd = open(path, O_RDWR | O_CLOEXEC);
	/* A finalized CAR may be read-only on disk; an unfinished one then
	 * fails below, when it would be written. */
	if (s->fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
		s->fd = open(path, O_RDONLY | O_CLOEXEC);
		readonly = true;
	}
	if (s->fd < 0 && errno != ENOENT) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (s->fd >= 0 && fstat(s->fd, &st) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (s->fd < 0 || st.st_size == 0) {
		bool replace = s->fd >= 0;

		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		if ((rc = encode_header(&hdr, s, roots, nroots)) || (rc = create(s, &hdr, replace)))
			goto fail;
		if (resume_out)
			resume_out->cut_at = s->flushed;
	} else {
		if ((uint64_t)st.st_size < sizeof(prefix) ||
		    (rc = cairn_file_pread_full(s->fd, prefix, sizeof(prefix), 0, path)) ||
		    memcmp(prefix, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN)) {
			if (!rc)
				rc = cairn_error_set(CAIRN_ECORRUPT, "%s: at byte 0: not a CARv2 file (no pragma)",
						     path);
			goto fail;
		}
		if (!memcmp(prefix + CAIRN_CAR_PRAGMA_LEN, zeros, sizeof(zeros)))
			rc = readonly ? cairn_error_set(CAIRN_EIO, "%s: unfinished, and not writable: "
							"cannot resume it", path)
				      : resume(s, resume_out, roots, nroots, (uint64_t)st.st_size);
		else
			rc = open_finalized(s, resume_out, roots, nroots);
		if (rc)
			goto fail;
	}
	cairn_buf_free(&hdr);
	*out = &s->base;
	return 0;
fail:
	cairn_buf_free(&hdr);
	s->failed = true; /* free writes nothing */
	carrw_free(&s->base);
	return rc;
}
