/* index.c: the CARv2 index formats IndexSorted (0x0400) and MultihashIndexSorted
 * (0x0401), built from compact records and read in place from an mmap.
 *
 * The builder keeps one group per (multihash code, digest length), code 0 for
 * IndexSorted, whose records are already in their on-disk form (digest then
 * uint64 LE offset). Encoding scatters them into the output by their first
 * digest byte, then sorts each part in cache by radix on small keys.
 * The reader keeps only a table of bucket descriptors pointing into the bytes;
 * a mapped file must not shrink while open (its pages would fault, SIGBUS).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/car.h"

/* go-car's bound on a bucket's width, to roughly match go-cid's maximum. */
#define WIDTH_MAX (32u << 20)
/* A bucket header is uint32 width + int64 length; a code group adds a
 * uint64 code and an int32 bucket count. */
#define BUCKET_HEAD 12
#define CODE_HEAD 12

static inline uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

static inline void store_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static bool codec_known(uint64_t codec)
{
	return codec == CAIRN_CAR_INDEX_SORTED || codec == CAIRN_CAR_INDEX_MH_SORTED;
}

/* ---------------------------------------------------------------- builder */

typedef struct {
	uint64_t code;  /* always 0 for IndexSorted: its buckets group by width alone */
	uint32_t dlen;
	uint32_t width; /* dlen + 8 */
	uint8_t *rec;   /* n records of `width` bytes: digest | uint64 LE offset */
	size_t n, cap;
	uint32_t first[256]; /* records by the first byte of their digest */
} group;

struct cairn_car_index_builder {
	uint64_t codec;
	bool keep_identity;
	group *groups;  /* sorted by (code, dlen): the order they are written in */
	size_t ngroups, cap;
	size_t last;    /* the group used last: a CAR is mostly one kind of CID */
	uint64_t count;
};

int cairn_car_index_builder_new(cairn_car_index_builder **out, uint64_t codec, bool keep_identity)
{
	cairn_car_index_builder *b;

	*out = NULL;
	if (!codec_known(codec))
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"index codec 0x%llx is not supported (0x0400 car-index-sorted or "
			"0x0401 car-multihash-index-sorted)", (unsigned long long)codec);
	if (!(b = cairn_calloc(1, sizeof(*b))))
		return CAIRN_ENOMEM;
	b->codec = codec;
	b->keep_identity = keep_identity;
	*out = b;
	return 0;
}

/* Finds or inserts the group for (code, dlen), keeping the array sorted;
 * groups are few, so inserting by moving the tail is cheap. */
static int group_for(cairn_car_index_builder *b, uint64_t code, uint32_t dlen, group **out)
{
	size_t lo = 0, hi = b->ngroups;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const group *g = &b->groups[mid];

		if (g->code < code || (g->code == code && g->dlen < dlen))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < b->ngroups && b->groups[lo].code == code && b->groups[lo].dlen == dlen) {
		b->last = lo;
		*out = &b->groups[lo];
		return 0;
	}
	if (b->ngroups == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4;
		group *g;

		if (cap > SIZE_MAX / sizeof(*g))
			return cairn_error_set(CAIRN_ENOMEM, "index builder: too many groups");
		if (!(g = cairn_realloc(b->groups, cap * sizeof(*g))))
			return CAIRN_ENOMEM;
		b->groups = g;
		b->cap = cap;
	}
	memmove(&b->groups[lo + 1], &b->groups[lo], (b->ngroups - lo) * sizeof(group));
	memset(&b->groups[lo], 0, sizeof(group));
	b->groups[lo].code = code;
	b->groups[lo].dlen = dlen;
	b->groups[lo].width = dlen + 8;
	b->ngroups++;
	b->last = lo;
	*out = &b->groups[lo];
	return 0;
}

static int group_grow(group *g)
{
	size_t cap = g->cap ? g->cap * 2 : 64;
	uint8_t *p;

	/* Encoding sorts 32-bit record numbers: one group holds under 2^32. */
	if (g->n >= UINT32_MAX)
		return cairn_error_set(CAIRN_ETOOBIG,
			"index builder: over %lu digests of one hash and length", (unsigned long)UINT32_MAX);
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	if (cap > SIZE_MAX / g->width)
		return cairn_error_set(CAIRN_ENOMEM, "index builder: size overflow");
	if (!(p = cairn_realloc(g->rec, cap * g->width)))
		return CAIRN_ENOMEM;
	g->rec = p;
	g->cap = cap;
	return 0;
}

int cairn_car_index_builder_add(cairn_car_index_builder *b, const cairn_cid *cid, uint64_t offset)
{
	const uint8_t *digest;
	uint32_t dlen;
	uint64_t code;
	group *g;
	uint8_t *p;
	int rc;

	if (!b || !cid)
		return cairn_error_set(CAIRN_EINVAL, "index builder: NULL argument");
	if (cid->mh_code == CAIRN_MH_IDENTITY && !b->keep_identity)
		return 0;
	if (cid->len > CAIRN_CID_MAX_BYTES || (size_t)cid->digest_off + cid->digest_len > cid->len)
		return cairn_error_set(CAIRN_EINVAL, "index builder: malformed CID value");
	digest = cid->bytes + cid->digest_off;
	dlen = cid->digest_len;
	code = b->codec == CAIRN_CAR_INDEX_MH_SORTED ? cid->mh_code : 0;
	g = b->ngroups ? &b->groups[b->last] : NULL;
	if (!g || g->code != code || g->dlen != dlen) {
		if ((rc = group_for(b, code, dlen, &g)))
			return rc;
	}
	if (g->n == g->cap && (rc = group_grow(g))) {
		/* A group just made must not stay behind empty: encoding would
		 * write it as a bucket of no entries. */
		if (!g->n) {
			b->ngroups--;
			memmove(g, g + 1, (b->ngroups - b->last) * sizeof(*g));
			b->last = 0;
		}
		return rc;
	}
	p = g->rec + g->n * g->width;
	/* A constant size lets the compiler copy sha2-256 and blake2b-256
	 * digests with two vector moves. */
	if (dlen == 32)
		memcpy(p, digest, 32);
	else if (dlen)
		memcpy(p, digest, dlen);
	store_le64(p + dlen, offset);
	g->first[dlen ? digest[0] : 0]++;
	g->n++;
	b->count++;
	return 0;
}

uint64_t cairn_car_index_builder_count(const cairn_car_index_builder *b)
{
	return b ? b->count : 0;
}

void cairn_car_index_builder_free(cairn_car_index_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->ngroups; i++)
		cairn_free(b->groups[i].rec);
	cairn_free(b->groups);
	cairn_free(b);
}

/* Records being sorted: `width` bytes each from `base`, the digest first. */
typedef struct {
	const uint8_t *base;
	size_t width, dlen;
} recs;

/* Orders records i and j by digest, then by offset: the tie-break go-car
 * leaves to an unstable sort. Equal on both means equal bytes. */
static inline int rec_cmp(const recs *r, uint64_t i, uint64_t j)
{
	const uint8_t *a = r->base + i * r->width, *b = r->base + j * r->width;
	int c = r->dlen ? memcmp(a, b, r->dlen) : 0;
	uint64_t oa, ob;

	if (c)
		return c;
	oa = load_le64(a + r->dlen);
	ob = load_le64(b + r->dlen);
	return oa < ob ? -1 : oa > ob;
}

#define KEY_INDEX(k) ((k) & 0xffffffffu)

/* Merge sort of sort keys by full record comparison, for the runs the radix
 * passes could not tell apart (and for small sets). `scratch` holds n/2. */
static void merge_sort(const recs *r, uint64_t *v, uint64_t *scratch, size_t n)
{
	size_t h, i, j, k;

	if (n <= 16) {
		for (i = 1; i < n; i++) {
			uint64_t x = v[i];

			for (j = i; j > 0 && rec_cmp(r, KEY_INDEX(v[j - 1]), KEY_INDEX(x)) > 0; j--)
				v[j] = v[j - 1];
			v[j] = x;
		}
		return;
	}
	h = n / 2;
	merge_sort(r, v, scratch, h);
	merge_sort(r, v + h, scratch, n - h);
	if (rec_cmp(r, KEY_INDEX(v[h - 1]), KEY_INDEX(v[h])) <= 0)
		return;
	memcpy(scratch, v, h * sizeof(*v));
	for (i = 0, j = h, k = 0; i < h && j < n;)
		v[k++] = rec_cmp(r, KEY_INDEX(v[j]), KEY_INDEX(scratch[i])) < 0 ? v[j++] : scratch[i++];
	while (i < h)
		v[k++] = scratch[i++];
}

/* Writes the n records at r->base to `dst` sorted by (digest, offset); the
 * first `skip` digest bytes are known to be equal in all of them.
 *
 * Each record gets a 64-bit key: the next four digest bytes, big-endian, over
 * the record's number. An LSD radix sort on those four bytes does nearly all
 * the work for hash digests; runs whose bytes agree are then finished by full
 * comparison. `a` and `tmp` hold n keys each. */
static void sort_records(const recs *r, size_t n, size_t skip, uint64_t *a, uint64_t *tmp,
			 uint8_t *dst)
{
	uint32_t cnt[4][256];
	size_t width = r->width, i;
	uint64_t *src = a, *out = tmp;

	if (n <= 32) {
		for (i = 0; i < n; i++)
			a[i] = i;
		merge_sort(r, a, tmp, n);
	} else {
		memset(cnt, 0, sizeof(cnt));
		for (i = 0; i < n; i++) {
			const uint8_t *d = r->base + i * width + skip;
			uint32_t pre;
			uint64_t key;

			if (r->dlen >= skip + 4) {
				pre = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
			} else {
				uint8_t pad[4] = {0};

				memcpy(pad, d, r->dlen - skip);
				pre = (uint32_t)pad[0] << 24 | (uint32_t)pad[1] << 16 |
				      (uint32_t)pad[2] << 8 | pad[3];
			}
			key = (uint64_t)pre << 32 | i;
			a[i] = key;
			cnt[0][pre & 0xff]++;
			cnt[1][(pre >> 8) & 0xff]++;
			cnt[2][(pre >> 16) & 0xff]++;
			cnt[3][pre >> 24]++;
		}
		for (unsigned k = 0; k < 4; k++) {
			unsigned shift = 32 + 8 * k;
			size_t pos[256], sum = 0;
			uint64_t *t;

			/* Digests that share this byte (identity digests, a common
			 * prefix) need no pass. */
			if (cnt[k][(src[0] >> shift) & 0xff] == n)
				continue;
			for (unsigned d = 0; d < 256; d++) {
				pos[d] = sum;
				sum += cnt[k][d];
			}
			for (i = 0; i < n; i++) {
				uint64_t v = src[i];

				out[pos[(v >> shift) & 0xff]++] = v;
			}
			t = src;
			src = out;
			out = t;
		}
		for (i = 0; i < n;) {
			size_t j = i + 1;
			uint64_t hi = src[i] >> 32;

			while (j < n && src[j] >> 32 == hi)
				j++;
			if (j - i > 1)
				merge_sort(r, src + i, out, j - i);
			i = j;
		}
	}
	if (width == 40) {
		for (i = 0; i < n; i++, dst += 40)
			memcpy(dst, r->base + KEY_INDEX(src[i]) * 40, 40);
	} else {
		for (i = 0; i < n; i++, dst += width)
			memcpy(dst, r->base + KEY_INDEX(src[i]) * width, width);
	}
}

/* How the group will be sorted, and the scratch that takes. Spread groups
 * are first split on the digest's first byte (counted as records were
 * added), so each part is sorted in cache; the rest are sorted whole. */
static bool group_split(const group *g, size_t *keys_need, size_t *recs_need)
{
	size_t most = 0;

	for (unsigned d = 0; d < 256; d++)
		if (g->first[d] > most)
			most = g->first[d];
	if (g->n <= 256 || g->dlen == 0 || most == g->n) {
		*keys_need = g->n;
		*recs_need = 0;
		return false;
	}
	*keys_need = most;
	*recs_need = most * g->width;
	return true;
}

static void emit_group(const group *g, uint64_t *keys, size_t nkeys, uint8_t *scratch, uint8_t *dst)
{
	size_t start[256], pos[256], width = g->width, sum = 0, dn, rn;
	recs r = {g->rec, width, g->dlen};

	if (!group_split(g, &dn, &rn)) {
		sort_records(&r, g->n, 0, keys, keys + nkeys, dst);
		return;
	}
	for (unsigned d = 0; d < 256; d++) {
		start[d] = pos[d] = sum;
		sum += g->first[d];
	}
	if (width == 40) {
		for (size_t i = 0; i < g->n; i++) {
			const uint8_t *p = g->rec + i * 40;

			memcpy(dst + pos[p[0]]++ * 40, p, 40);
		}
	} else {
		for (size_t i = 0; i < g->n; i++) {
			const uint8_t *p = g->rec + i * width;

			memcpy(dst + pos[p[0]]++ * width, p, width);
		}
	}
	r.base = scratch;
	for (unsigned d = 0; d < 256; d++) {
		size_t c = g->first[d];
		uint8_t *part = dst + start[d] * width;

		if (c < 2)
			continue;
		memcpy(scratch, part, c * width);
		sort_records(&r, c, 1, keys, keys + nkeys, part);
	}
}

int cairn_car_index_builder_encode(cairn_car_index_builder *b, cairn_buf *out)
{
	bool mh = b->codec == CAIRN_CAR_INDEX_MH_SORTED;
	uint8_t varint[CAIRN_VARINT_MAX];
	size_t vlen = cairn_varint_encode(varint, b->codec);
	uint64_t size = vlen + 4, ncodes = 0;
	size_t nkeys = 0, nrecs = 0, i;
	uint64_t *keys = NULL;
	uint8_t *p;
	int rc;

	if (out->err)
		return out->err;
	for (i = 0; i < b->ngroups; i++) {
		const group *g = &b->groups[i];
		size_t kn, rn;

		if (mh && (i == 0 || b->groups[i - 1].code != g->code))
			ncodes++;
		size += BUCKET_HEAD + (uint64_t)g->n * g->width;
		group_split(g, &kn, &rn);
		if (kn > nkeys)
			nkeys = kn;
		if (rn > nrecs)
			nrecs = rn;
	}
	size += ncodes * CODE_HEAD;
	if (b->ngroups > INT32_MAX)
		return cairn_error_set(CAIRN_ETOOBIG, "index builder: %zu buckets are over the format's limit",
				       b->ngroups);
	if (size > SIZE_MAX / 2)
		return cairn_error_set(CAIRN_ENOMEM, "index builder: index of %llu bytes is too large",
				       (unsigned long long)size);
	if (nkeys > SIZE_MAX / (4 * sizeof(*keys)))
		return cairn_error_set(CAIRN_ENOMEM, "index builder: size overflow");
	/* Scratch before the output, so a failure leaves `out` as it was. */
	if ((nkeys || nrecs) && !(keys = cairn_malloc(2 * nkeys * sizeof(*keys) + nrecs)))
		return CAIRN_ENOMEM;
	if ((rc = cairn_buf_reserve(out, (size_t)size))) {
		cairn_free(keys);
		return rc;
	}
	p = out->data + out->len;
	memcpy(p, varint, vlen);
	p += vlen;
	store_le32(p, (uint32_t)(mh ? ncodes : b->ngroups));
	p += 4;
	for (i = 0; i < b->ngroups; i++) {
		const group *g = &b->groups[i];

		if (mh && (i == 0 || b->groups[i - 1].code != g->code)) {
			size_t j = i;

			while (j < b->ngroups && b->groups[j].code == g->code)
				j++;
			store_le64(p, g->code);
			store_le32(p + 8, (uint32_t)(j - i));
			p += CODE_HEAD;
		}
		store_le32(p, g->width);
		/* go-car stores the bucket's length in bytes, not its count. */
		store_le64(p + 4, (uint64_t)g->n * g->width);
		p += BUCKET_HEAD;
		emit_group(g, keys, nkeys, (uint8_t *)(keys + 2 * nkeys), p);
		p += g->n * g->width;
	}
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	cairn_free(keys);
	return 0;
}

/* ---------------------------------------------------------------- reader */

typedef struct {
	const uint8_t *p; /* the first entry */
	uint64_t code;    /* 0 for IndexSorted */
	uint64_t count;
	uint64_t at;      /* of the bucket header, from the start of the index */
	uint32_t width;
	uint32_t pad;
} bucket;

/* A multihash code group (one, code 0, for IndexSorted): its buckets are
 * buckets[first .. first+n). Kept so _check can name where order breaks. */
typedef struct {
	uint64_t code;
	uint64_t at;
	size_t first, n;
} code_group;

struct cairn_car_index {
	const uint8_t *p; /* the index bytes, codec varint first */
	size_t len;
	void *map;        /* the mapping, when cairn_car_index_open made one */
	size_t map_len;
	uint64_t base;    /* file offset of p[0], so messages name file offsets */
	uint64_t codec;
	uint64_t count;
	bucket *buckets;
	size_t nbuckets;
	code_group *groups;
	size_t ngroups;
	bool ordered;     /* buckets strictly ascend by (code, width): binary search them */
	char *name;
};

typedef struct {
	const uint8_t *p;
	size_t len;
	uint64_t base;
	const char *name;
	/* NULL on the first pass, which only validates and counts. */
	bucket *buckets;
	code_group *groups;
	size_t nbuckets, ngroups;
	uint64_t count;
} parser;

static int corrupt(const parser *ps, uint64_t at, const char *fmt, ...) CAIRN_PRINTF(3, 4);

static int corrupt(const parser *ps, uint64_t at, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: %s", ps->name,
			       (unsigned long long)(ps->base + at), what);
}

/* One IndexSorted body at *off: int32 count, then buckets. */
static int parse_sorted(parser *ps, size_t *off, uint64_t code)
{
	size_t o = *off;
	int32_t nb;

	if (ps->len - o < 4)
		return corrupt(ps, o, "index ends inside a bucket count (%zu of 4 bytes)", ps->len - o);
	nb = (int32_t)load_le32(ps->p + o);
	if (nb < 0)
		return corrupt(ps, o, "bucket count %d is negative", (int)nb);
	o += 4;
	/* Bound the count by the bytes left before trusting it. */
	if ((uint64_t)nb > (ps->len - o) / BUCKET_HEAD)
		return corrupt(ps, o - 4, "%d buckets cannot fit in the %zu bytes that remain",
			       (int)nb, ps->len - o);
	for (int32_t i = 0; i < nb; i++) {
		size_t at = o;
		uint32_t width;
		uint64_t bytes;

		if (ps->len - o < BUCKET_HEAD)
			return corrupt(ps, at, "index ends inside a bucket header (%zu of %d bytes)",
				       ps->len - o, BUCKET_HEAD);
		width = load_le32(ps->p + o);
		bytes = load_le64(ps->p + o + 4);
		if (width < 8)
			return corrupt(ps, at, "bucket width %u is under 8 (a digest's length plus "
				       "its 8-byte offset)", width);
		if (width > WIDTH_MAX)
			return corrupt(ps, at, "bucket width %u is over the limit of %u", width, WIDTH_MAX);
		if (bytes >> 63)
			return corrupt(ps, at + 4, "bucket length %lld is negative", (long long)bytes);
		o += BUCKET_HEAD;
		if (bytes > ps->len - o)
			return corrupt(ps, at + 4, "bucket of %llu bytes runs past the end of the index "
				       "(%zu bytes remain)", (unsigned long long)bytes, ps->len - o);
		if (bytes % width)
			return corrupt(ps, at + 4, "bucket length %llu is not a multiple of its width %u",
				       (unsigned long long)bytes, width);
		if (ps->buckets) {
			bucket *bk = &ps->buckets[ps->nbuckets];

			bk->p = ps->p + o;
			bk->code = code;
			bk->count = bytes / width;
			bk->at = at;
			bk->width = width;
			bk->pad = 0;
		}
		ps->nbuckets++;
		ps->count += bytes / width;
		o += (size_t)bytes;
	}
	*off = o;
	return 0;
}

static int parse(parser *ps, uint64_t *codec_out)
{
	uint64_t codec;
	size_t off, used;
	int rc;

	ps->nbuckets = ps->ngroups = 0;
	ps->count = 0;
	if (cairn_varint_decode(&codec, &used, ps->p, ps->len))
		return cairn_error_prefix("%s: at byte %llu: index codec: ", ps->name,
					  (unsigned long long)ps->base);
	if (!codec_known(codec))
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"%s: at byte %llu: index codec 0x%llx is not supported (0x0400 car-index-sorted "
			"or 0x0401 car-multihash-index-sorted)", ps->name,
			(unsigned long long)ps->base, (unsigned long long)codec);
	*codec_out = codec;
	off = used;
	if (codec == CAIRN_CAR_INDEX_SORTED) {
		if (ps->groups) {
			ps->groups[0].code = 0;
			ps->groups[0].at = off;
			ps->groups[0].first = 0;
		}
		ps->ngroups = 1;
		if ((rc = parse_sorted(ps, &off, 0)))
			return rc;
		if (ps->groups)
			ps->groups[0].n = ps->nbuckets;
	} else {
		int32_t nc;

		if (ps->len - off < 4)
			return corrupt(ps, off, "index ends inside the multihash code count (%zu of 4 bytes)",
				       ps->len - off);
		nc = (int32_t)load_le32(ps->p + off);
		if (nc < 0)
			return corrupt(ps, off, "multihash code count %d is negative", (int)nc);
		off += 4;
		if ((uint64_t)nc > (ps->len - off) / CODE_HEAD)
			return corrupt(ps, off - 4, "%d multihash codes cannot fit in the %zu bytes that remain",
				       (int)nc, ps->len - off);
		for (int32_t i = 0; i < nc; i++) {
			size_t at = off, first = ps->nbuckets;
			uint64_t code;

			if (ps->len - off < 8)
				return corrupt(ps, at, "index ends inside a multihash code (%zu of 8 bytes)",
					       ps->len - off);
			code = load_le64(ps->p + off);
			off += 8;
			if ((rc = parse_sorted(ps, &off, code)))
				return rc;
			if (ps->groups) {
				code_group *g = &ps->groups[ps->ngroups];

				g->code = code;
				g->at = at;
				g->first = first;
				g->n = ps->nbuckets - first;
			}
			ps->ngroups++;
		}
	}
	/* go-car never writes past its last bucket, and in a CARv2 the index runs
	 * to the end of the file: bytes left over mean a count is wrong. */
	if (off != ps->len)
		return corrupt(ps, off, "%zu bytes after the last bucket", ps->len - off);
	return 0;
}

static int index_from(cairn_car_index **out, const uint8_t *p, size_t len, uint64_t base,
		      const char *name)
{
	parser ps = {p, len, base, name, NULL, NULL, 0, 0, 0};
	cairn_car_index *idx;
	uint64_t codec = 0;
	size_t nlen = strlen(name), need;
	int rc;

	if ((rc = parse(&ps, &codec)))
		return rc;
	if (ps.nbuckets > SIZE_MAX / 128 || ps.ngroups > SIZE_MAX / 128 || nlen > SIZE_MAX / 4)
		return cairn_error_set(CAIRN_ENOMEM, "%s: index tables too large", name);
	/* One allocation: the struct, the two tables, the name. The first pass
	 * bounded the table sizes by the input's length. */
	need = sizeof(*idx) + ps.nbuckets * sizeof(bucket) + ps.ngroups * sizeof(code_group) + nlen + 1;
	if (!(idx = cairn_malloc(need)))
		return CAIRN_ENOMEM;
	memset(idx, 0, sizeof(*idx));
	idx->buckets = (bucket *)(idx + 1);
	idx->groups = (code_group *)(idx->buckets + ps.nbuckets);
	idx->name = (char *)(idx->groups + ps.ngroups);
	memcpy(idx->name, name, nlen + 1);
	ps.buckets = idx->buckets;
	ps.groups = idx->groups;
	if ((rc = parse(&ps, &codec))) {
		cairn_free(idx);
		return rc;
	}
	idx->p = p;
	idx->len = len;
	idx->base = base;
	idx->codec = codec;
	idx->count = ps.count;
	idx->nbuckets = ps.nbuckets;
	idx->ngroups = ps.ngroups;
	idx->ordered = true;
	for (size_t i = 1; i < idx->nbuckets; i++) {
		const bucket *a = &idx->buckets[i - 1], *b = &idx->buckets[i];

		if (a->code > b->code || (a->code == b->code && a->width >= b->width))
			idx->ordered = false;
	}
	*out = idx;
	return 0;
}

int cairn_car_index_open_bytes(cairn_car_index **out, const uint8_t *p, size_t len, const char *name)
{
	*out = NULL;
	if (!p && len)
		return cairn_error_set(CAIRN_EINVAL, "index: NULL bytes");
	return index_from(out, p, len, 0, name ? name : "index");
}

int cairn_car_index_open(cairn_car_index **out, const char *path, uint64_t offset)
{
	struct stat st;
	uint64_t size, start;
	size_t map_len;
	long page;
	void *map;
	int fd, rc;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	size = (uint64_t)st.st_size;
	if (offset > size) {
		close(fd);
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: the index offset %llu is past the end of the file (%llu bytes)", path,
			(unsigned long long)offset, (unsigned long long)size);
	}
	if (offset == size) {
		/* Nothing to map; the parser names the missing codec. */
		close(fd);
		return index_from(out, (const uint8_t *)"", 0, offset, path);
	}
	page = sysconf(_SC_PAGESIZE);
	start = offset - offset % (uint64_t)(page > 0 ? page : 4096);
	if (size - start > SIZE_MAX) {
		close(fd);
		return cairn_error_set(CAIRN_ETOOBIG, "%s: index too large to map", path);
	}
	map_len = (size_t)(size - start);
	map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, (off_t)start);
	rc = errno;
	close(fd);
	if (map == MAP_FAILED)
		return cairn_error_set(CAIRN_EIO, "%s: mmap: %s", path, strerror(rc));
	/* Lookups read the index at random (an export, once per link), and in
	 * 4 KiB pages a 400 MB index misses the TLB nearly every time. Advised,
	 * the kernel reads it from disk into 2 MiB folios and maps each with
	 * one entry; pages already cached stay as they are. */
	(void)madvise(map, map_len, MADV_HUGEPAGE);
	rc = index_from(out, (const uint8_t *)map + (offset - start), (size_t)(size - offset),
			offset, path);
	if (rc) {
		munmap(map, map_len);
		return rc;
	}
	(*out)->map = map;
	(*out)->map_len = map_len;
	return 0;
}

void cairn_car_index_free(cairn_car_index *idx)
{
	if (!idx)
		return;
	if (idx->map)
		munmap(idx->map, idx->map_len);
	cairn_free(idx);
}

uint64_t cairn_car_index_file_offset(const cairn_car_index *idx, const uint8_t *p)
{
	return idx->map ? idx->base + (uint64_t)(p - idx->p) : UINT64_MAX;
}

/* The mapping is private and never written, so its pages are the file's:
 * MADV_DONTNEED only unmaps them, and the next touch maps them again. */
void cairn_car_index_release(const cairn_car_index *idx)
{
	if (idx->map)
		(void)madvise(idx->map, idx->map_len, MADV_DONTNEED);
}

uint64_t cairn_car_index_codec(const cairn_car_index *idx)
{
	return idx->codec;
}

uint64_t cairn_car_index_count(const cairn_car_index *idx)
{
	return idx->count;
}

int cairn_car_index_check(const cairn_car_index *idx)
{
	parser ps = {idx->p, idx->len, idx->base, idx->name, NULL, NULL, 0, 0, 0};

	for (size_t gi = 0; gi < idx->ngroups; gi++) {
		const code_group *g = &idx->groups[gi];

		if (gi && g->code <= idx->groups[gi - 1].code)
			return corrupt(&ps, g->at, "multihash code 0x%llx does not follow 0x%llx in "
				       "ascending order", (unsigned long long)g->code,
				       (unsigned long long)idx->groups[gi - 1].code);
		for (size_t bi = g->first; bi < g->first + g->n; bi++) {
			const bucket *b = &idx->buckets[bi];
			size_t dlen = b->width - 8;

			if (bi > g->first && b->width <= idx->buckets[bi - 1].width)
				return corrupt(&ps, b->at, "bucket width %u does not follow %u in ascending "
					       "order", b->width, idx->buckets[bi - 1].width);
			if (!dlen)
				continue;
			for (uint64_t i = 1; i < b->count; i++) {
				const uint8_t *e = b->p + i * b->width;

				if (memcmp(e - b->width, e, dlen) > 0)
					return corrupt(&ps, (uint64_t)(e - idx->p),
						       "entry %llu of the bucket of width %u sorts before "
						       "the entry before it", (unsigned long long)i, b->width);
			}
		}
	}
	return 0;
}

#define ENTRY_CMP(b, i, d, n) memcmp((b)->p + (i) * (b)->width, (d), (n))

/* The entries equal to `digest` in a bucket: a lower bound, then a gallop
 * over the equal ones, so a digest stored a million times costs no more to
 * count than one, and a digest stored once costs one more comparison. */
static uint64_t find_in(const bucket *b, const uint8_t *digest, size_t dlen,
			uint64_t *offsets, size_t max, size_t *written)
{
	uint64_t lo = 0, hi = b->count, first, step = 1;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (ENTRY_CMP(b, mid, digest, dlen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == b->count || ENTRY_CMP(b, lo, digest, dlen))
		return 0;
	/* Equal from `first` through lo; find the first entry past them. */
	first = lo;
	while (step < b->count - first && !ENTRY_CMP(b, first + step, digest, dlen)) {
		lo = first + step;
		step *= 2;
	}
	hi = step < b->count - first ? first + step : b->count;
	lo++;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (!ENTRY_CMP(b, mid, digest, dlen))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (uint64_t i = first; i < lo && *written < max; i++)
		offsets[(*written)++] = load_le64(b->p + i * b->width + dlen);
	return lo - first;
}

int cairn_car_index_find(const cairn_car_index *idx, const cairn_cid *cid, uint64_t *offsets,
			 size_t max)
{
	uint64_t code = idx->codec == CAIRN_CAR_INDEX_MH_SORTED ? cid->mh_code : 0;
	const uint8_t *digest = cid->bytes + cid->digest_off;
	size_t dlen = cid->digest_len, written = 0;
	uint32_t width = (uint32_t)dlen + 8;
	uint64_t total = 0;

	if (!offsets)
		max = 0;
	if (idx->ordered) {
		size_t lo = 0, hi = idx->nbuckets;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const bucket *b = &idx->buckets[mid];

			if (b->code < code || (b->code == code && b->width < width))
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < idx->nbuckets && idx->buckets[lo].code == code && idx->buckets[lo].width == width)
			total = find_in(&idx->buckets[lo], digest, dlen, offsets, max, &written);
	} else {
		/* Out-of-order tables are legal for go-car's reader; look at all. */
		for (size_t i = 0; i < idx->nbuckets; i++) {
			const bucket *b = &idx->buckets[i];

			if (b->code == code && b->width == width)
				total += find_in(b, digest, dlen, offsets, max, &written);
		}
	}
	return total > INT_MAX ? INT_MAX : (int)total;
}

int cairn_car_index_foreach(const cairn_car_index *idx, cairn_car_index_fn fn, void *payload)
{
	for (size_t bi = 0; bi < idx->nbuckets; bi++) {
		const bucket *b = &idx->buckets[bi];
		size_t dlen = b->width - 8;

		for (uint64_t i = 0; i < b->count; i++) {
			const uint8_t *e = b->p + i * b->width;
			int rc = fn(b->code, e, dlen, load_le64(e + dlen), payload);

			if (rc)
				return rc;
		}
	}
	return 0;
}

int cairn_car_index_foreach_bucket(const cairn_car_index *idx, cairn_car_index_bucket_fn fn,
				   void *payload)
{
	for (size_t bi = 0; bi < idx->nbuckets; bi++) {
		const bucket *b = &idx->buckets[bi];
		int rc = fn(b->code, b->p, b->width - 8, b->count, payload);

		if (rc)
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------ from a CAR's data */

int cairn_car_index_build(cairn_buf *out, cairn_car_reader *r, uint64_t codec, bool keep_identity)
{
	cairn_car_index_builder *b;
	cairn_car_section sec;
	int rc;

	if ((rc = cairn_car_index_builder_new(&b, codec, keep_identity)))
		return rc;
	while ((rc = cairn_car_reader_next(r, &sec, false)) == 1) {
		if ((rc = cairn_car_index_builder_add(b, &sec.cid, sec.offset)))
			break;
	}
	if (!rc)
		rc = cairn_car_index_builder_encode(b, out);
	cairn_car_index_builder_free(b);
	return rc;
}
