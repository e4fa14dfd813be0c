/* test_index.c: unit tests for the CARv2 indexes: byte-exact reproduction of
 * go-car's fixtures, lookups in place, corrupt input, order checks and OOM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

static char dir[4096];

static int setup(void **state)
{
	const char *f = getenv("CAIRN_FIXTURES");

	(void)state;
	snprintf(dir, sizeof(dir), "%s/car", f && *f ? f : "/work/shared/fixtures");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

/* ---------------------------------------------------------------- helpers */

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void read_fixture(cairn_buf *out, const char *name)
{
	char path[4200];

	path_of(path, sizeof(path), name);
	cairn_buf_clear(out);
	if (cairn_file_read_all(out, path, 64u << 20))
		fail_msg("read %s: %s", path, cairn_error_last());
}

typedef struct {
	uint64_t offset;
	cairn_cid cid;
} section;

/* The rel_offset and CID of every line of expected/<car>.sections.tsv. */
static section *read_sections(const char *car, size_t *n_out)
{
	char path[4200], line[1024];
	section *v = NULL;
	size_t n = 0, cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/expected/%s.sections.tsv", dir, car);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *cid, *end;
		unsigned long long off;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		off = strtoull(line, &end, 10);
		cid = strrchr(line, '\t');
		assert_non_null(cid);
		cid++;
		cid[strcspn(cid, "\r\n")] = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		v[n].offset = off;
		if (cairn_cid_parse(&v[n].cid, cid, strlen(cid)))
			fail_msg("parse %s: %s", cid, cairn_error_last());
		n++;
	}
	fclose(f);
	*n_out = n;
	return v;
}

typedef struct {
	uint64_t code;
	uint32_t width;
	uint8_t digest[128];
	uint64_t offset;
} entry;

/* Every line of an entries tsv: mh_code ('-' is 0), width, digest hex, offset. */
static entry *read_entries(const char *file, size_t *n_out)
{
	char path[4200], line[1024];
	entry *v = NULL;
	size_t n = 0, cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/expected/%s", dir, file);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char code[32], hex[300];
		unsigned width;
		unsigned long long off;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		assert_int_equal(sscanf(line, "%31s %u %299s %llu", code, &width, hex, &off), 4);
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		v[n].code = strcmp(code, "-") ? strtoull(code, NULL, 16) : 0;
		v[n].width = width;
		assert_int_equal(strlen(hex), 2 * (width - 8));
		for (unsigned i = 0; i < width - 8; i++) {
			unsigned b;

			assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
			v[n].digest[i] = (uint8_t)b;
		}
		v[n].offset = off;
		n++;
	}
	fclose(f);
	*n_out = n;
	return v;
}

typedef struct {
	const entry *want;
	size_t n, seen;
} walk;

static int compare_entry(uint64_t code, const uint8_t *digest, size_t dlen, uint64_t offset,
			 void *payload)
{
	walk *w = payload;
	const entry *e;

	assert_true(w->seen < w->n);
	e = &w->want[w->seen++];
	assert_int_equal(code, e->code);
	assert_int_equal(dlen + 8, e->width);
	assert_memory_equal(digest, e->digest, dlen);
	assert_int_equal(offset, e->offset);
	return 0;
}

static void expect_entries(const cairn_car_index *idx, const char *tsv)
{
	size_t n;
	entry *want = read_entries(tsv, &n);
	walk w = {want, n, 0};

	assert_int_equal(cairn_car_index_count(idx), n);
	assert_int_equal(cairn_car_index_foreach(idx, compare_entry, &w), 0);
	assert_int_equal(w.seen, n);
	free(want);
}

/* Every section's CID resolves to (among others) its own offset; identity
 * CIDs only when `identity_indexed`. */
static void expect_finds(const cairn_car_index *idx, const char *car, bool identity_indexed)
{
	size_t n;
	section *s = read_sections(car, &n);

	for (size_t i = 0; i < n; i++) {
		uint64_t offs[8];
		int k = cairn_car_index_find(idx, &s[i].cid, offs, 8);
		bool hit = false;

		if (s[i].cid.mh_code == CAIRN_MH_IDENTITY && !identity_indexed) {
			assert_int_equal(k, 0);
			continue;
		}
		assert_true(k >= 1 && k <= 8);
		for (int j = 0; j < k; j++)
			hit |= offs[j] == s[i].offset;
		assert_true(hit);
	}
	free(s);
}

static void build(cairn_buf *out, uint64_t codec, bool keep_identity, const section *s, size_t n)
{
	cairn_car_index_builder *b;

	assert_int_equal(cairn_car_index_builder_new(&b, codec, keep_identity), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(cairn_car_index_builder_add(b, &s[i].cid, s[i].offset), 0);
	cairn_buf_clear(out);
	assert_int_equal(cairn_car_index_builder_encode(b, out), 0);
	cairn_car_index_builder_free(b);
}

static void expect_error(int rc, int code, const char *needle)
{
	if (rc != code)
		fail_msg("expected %d, got %d: %s", code, rc, cairn_error_last());
	if (needle && !strstr(cairn_error_last(), needle))
		fail_msg("message '%s' lacks '%s'", cairn_error_last(), needle);
}

/* Opens a copy of p[0..len) of exactly that size, so ASan sees any read past it. */
static int open_copy(cairn_car_index **out, const uint8_t *p, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, p, len);
	rc = cairn_car_index_open_bytes(out, copy, len, "t.idx");
	if (!rc) {
		/* touch everything while the bytes live */
		assert_int_equal(cairn_car_index_check(*out), 0);
		cairn_car_index_free(*out);
		*out = NULL;
	}
	free(copy);
	return rc;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void sha_cid(cairn_cid *cid, uint8_t seed)
{
	uint8_t d[32];

	for (int i = 0; i < 32; i++)
		d[i] = (uint8_t)(seed * 31 + i * 7);
	d[0] = seed;
	assert_int_equal(cairn_cid_from_digest(cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, d, 32), 0);
}

/* ---------------------------------------------------------------- tests */

static void test_reproduce_mh_sorted(void **state)
{
	cairn_buf want = CAIRN_BUF_INIT, got = CAIRN_BUF_INIT;
	cairn_car_index_builder *b;
	size_t n;
	section *s = read_sections("sample-v1.car", &n);

	(void)state;
	assert_int_equal(n, 1049);
	read_fixture(&want, "sample-multihash-index-sorted.carindex");
	build(&got, CAIRN_CAR_INDEX_MH_SORTED, false, s, n);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);

	/* Insertion order does not matter, and encode can be called twice. */
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_MH_SORTED, false), 0);
	for (size_t i = n; i-- > 0;)
		assert_int_equal(cairn_car_index_builder_add(b, &s[i].cid, s[i].offset), 0);
	assert_int_equal(cairn_car_index_builder_count(b), 1043);
	for (int k = 0; k < 2; k++) {
		cairn_buf_clear(&got);
		assert_int_equal(cairn_car_index_builder_encode(b, &got), 0);
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.data, want.data, want.len);
	}
	cairn_car_index_builder_free(b);
	cairn_buf_free(&want);
	cairn_buf_free(&got);
	free(s);
}

static void test_reproduce_sorted(void **state)
{
	cairn_buf want = CAIRN_BUF_INIT, got = CAIRN_BUF_INIT;
	size_t n;
	section *s = read_sections("sample-v1.car", &n);

	(void)state;
	read_fixture(&want, "sample-index.carindex");
	build(&got, CAIRN_CAR_INDEX_SORTED, true, s, n);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	cairn_buf_free(&want);
	cairn_buf_free(&got);
	free(s);
}

static void test_open_detached(void **state)
{
	char path[4200];
	cairn_car_index *idx;

	(void)state;
	path_of(path, sizeof(path), "sample-multihash-index-sorted.carindex");
	assert_int_equal(cairn_car_index_open(&idx, path, 0), 0);
	assert_int_equal(cairn_car_index_codec(idx), CAIRN_CAR_INDEX_MH_SORTED);
	assert_int_equal(cairn_car_index_check(idx), 0);
	expect_entries(idx, "sample-multihash-index-sorted.carindex.entries.tsv");
	expect_finds(idx, "sample-v1.car", false);
	cairn_car_index_free(idx);

	path_of(path, sizeof(path), "sample-index.carindex");
	assert_int_equal(cairn_car_index_open(&idx, path, 0), 0);
	assert_int_equal(cairn_car_index_codec(idx), CAIRN_CAR_INDEX_SORTED);
	assert_int_equal(cairn_car_index_check(idx), 0);
	expect_entries(idx, "sample-index.carindex.entries.tsv");
	expect_finds(idx, "sample-v1.car", true);
	cairn_car_index_free(idx);
}

static uint64_t index_offset_of(const char *car)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t off;

	read_fixture(&b, car);
	assert_true(b.len >= 51);
	off = le64(b.data + 43);
	cairn_buf_free(&b);
	return off;
}

static void test_open_embedded(void **state)
{
	static const char *cars[] = {"sample-unixfs-v2.car", "sample-rw-bs-v2.car"};
	char path[4200], tsv[256];
	cairn_car_index *idx;

	(void)state;
	for (size_t i = 0; i < sizeof(cars) / sizeof(cars[0]); i++) {
		path_of(path, sizeof(path), cars[i]);
		assert_int_equal(cairn_car_index_open(&idx, path, index_offset_of(cars[i])), 0);
		assert_int_equal(cairn_car_index_codec(idx), CAIRN_CAR_INDEX_MH_SORTED);
		assert_int_equal(cairn_car_index_check(idx), 0);
		snprintf(tsv, sizeof(tsv), "%s.index-entries.tsv", cars[i]);
		expect_entries(idx, tsv);
		expect_finds(idx, cars[i], false);
		cairn_car_index_free(idx);
	}

	/* The index go-car wraps sample-v1 with (offset 479958, not page-aligned). */
	path_of(path, sizeof(path), "sample-wrapped-v2.car");
	assert_int_equal(index_offset_of("sample-wrapped-v2.car"), 479958);
	assert_int_equal(cairn_car_index_open(&idx, path, 479958), 0);
	assert_int_equal(cairn_car_index_check(idx), 0);
	expect_entries(idx, "sample-multihash-index-sorted.carindex.entries.tsv");
	expect_finds(idx, "sample-wrapped-v2.car", false);
	cairn_car_index_free(idx);

	/* The spec's carv2-basic has a bare IndexSorted body with no codec
	 * varint: its first byte 0x01 reads as codec 1, as in go-car. */
	path_of(path, sizeof(path), "carv2-basic.car");
	assert_int_equal(index_offset_of("carv2-basic.car"), 499);
	expect_error(cairn_car_index_open(&idx, path, 499), CAIRN_EUNSUPPORTED, "at byte 499");
	assert_non_null(strstr(cairn_error_last(), "carv2-basic.car"));
	assert_null(idx);
}

/* The bare body in carv2-basic still reads once a codec varint is put in front. */
static void test_carv2_basic_legacy_body(void **state)
{
	cairn_buf car = CAIRN_BUF_INIT, fixed = CAIRN_BUF_INIT;
	cairn_car_index *idx;

	(void)state;
	read_fixture(&car, "carv2-basic.car");
	assert_int_equal(cairn_buf_append(&fixed, "\x80\x08", 2), 0);
	assert_int_equal(cairn_buf_append(&fixed, car.data + 499, car.len - 499), 0);
	assert_int_equal(cairn_car_index_open_bytes(&idx, fixed.data, fixed.len, "carv2-basic"), 0);
	assert_int_equal(cairn_car_index_check(idx), 0);
	expect_entries(idx, "carv2-basic.car.index-entries.tsv");
	expect_finds(idx, "carv2-basic.car", false);
	cairn_car_index_free(idx);
	cairn_buf_free(&car);
	cairn_buf_free(&fixed);
}

static void test_open_errors(void **state)
{
	char path[4200];
	cairn_car_index *idx = (cairn_car_index *)&idx;

	(void)state;
	expect_error(cairn_car_index_open(&idx, "/nonexistent/x.carindex", 0), CAIRN_EIO,
		     "/nonexistent/x.carindex");
	assert_null(idx);
	path_of(path, sizeof(path), "sample-unixfs-v2.car");
	expect_error(cairn_car_index_open(&idx, path, 486), CAIRN_ECORRUPT, "past the end");
	expect_error(cairn_car_index_open(&idx, path, 485), CAIRN_ECORRUPT, "at byte 485");
	/* an offset that is not the index start: the data payload's header */
	expect_error(cairn_car_index_open(&idx, path, 51), CAIRN_EUNSUPPORTED, "at byte 51");
	/* a directory cannot be mapped */
	expect_error(cairn_car_index_open(&idx, dir, 0), CAIRN_EIO, NULL);
	assert_null(idx);
}

static void test_find_missing(void **state)
{
	cairn_buf buf = CAIRN_BUF_INIT;
	cairn_car_index *idx;
	section s[3];
	cairn_cid other;
	uint64_t off = 77;

	(void)state;
	for (int i = 0; i < 3; i++) {
		sha_cid(&s[i].cid, (uint8_t)(10 * (i + 1)));
		s[i].offset = 100u * (unsigned)i;
	}
	build(&buf, CAIRN_CAR_INDEX_MH_SORTED, false, s, 3);
	assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, NULL), 0);
	sha_cid(&other, 15);
	assert_int_equal(cairn_car_index_find(idx, &other, &off, 1), 0);
	assert_int_equal(off, 77);
	sha_cid(&other, 255); /* after every entry */
	assert_int_equal(cairn_car_index_find(idx, &other, &off, 1), 0);
	sha_cid(&other, 0); /* before every entry */
	assert_int_equal(cairn_car_index_find(idx, &other, &off, 1), 0);
	/* the same digest under another hash code is another multihash */
	assert_int_equal(cairn_cid_from_digest(&other, 1, CAIRN_CODEC_RAW, CAIRN_MH_BLAKE2B_256,
					       s[1].cid.bytes + s[1].cid.digest_off, 32), 0);
	assert_int_equal(cairn_car_index_find(idx, &other, &off, 1), 0);
	/* another length: no bucket */
	assert_int_equal(cairn_cid_from_digest(&other, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					       s[1].cid.bytes + s[1].cid.digest_off, 20), 0);
	assert_int_equal(cairn_car_index_find(idx, &other, &off, 1), 0);
	/* the codec of the CID is not part of the key */
	assert_int_equal(cairn_cid_from_digest(&other, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256,
					       s[1].cid.bytes + s[1].cid.digest_off, 32), 0);
	assert_int_equal(cairn_car_index_find(idx, &other, &off, 1), 1);
	assert_int_equal(off, 100);
	/* counting only */
	assert_int_equal(cairn_car_index_find(idx, &s[2].cid, NULL, 0), 1);
	cairn_car_index_free(idx);

	/* IndexSorted compares the digest alone, as go-car does. */
	build(&buf, CAIRN_CAR_INDEX_SORTED, false, s, 3);
	assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, NULL), 0);
	assert_int_equal(cairn_cid_from_digest(&other, 1, CAIRN_CODEC_RAW, CAIRN_MH_BLAKE2B_256,
					       s[1].cid.bytes + s[1].cid.digest_off, 32), 0);
	assert_int_equal(cairn_car_index_find(idx, &other, &off, 1), 1);
	assert_int_equal(off, 100);
	cairn_car_index_free(idx);
	cairn_buf_free(&buf);
}

static int collect(uint64_t code, const uint8_t *digest, size_t dlen, uint64_t offset, void *payload)
{
	uint64_t *v = payload;

	(void)code;
	(void)digest;
	(void)dlen;
	v[1 + v[0]++] = offset;
	return 0;
}

static void test_duplicates(void **state)
{
	cairn_buf a = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT;
	cairn_car_index *idx;
	section s[6];
	uint64_t offs[8], seen[16] = {0};

	(void)state;
	sha_cid(&s[0].cid, 50);
	s[0].offset = 300;
	sha_cid(&s[1].cid, 40);
	s[1].offset = 5;
	s[2].cid = s[0].cid;
	s[2].offset = 100;
	sha_cid(&s[3].cid, 60);
	s[3].offset = 1;
	s[4].cid = s[0].cid;
	s[4].offset = 200;
	s[5].cid = s[0].cid; /* the very same entry twice is kept twice */
	s[5].offset = 100;
	build(&a, CAIRN_CAR_INDEX_MH_SORTED, false, s, 6);
	/* reversed insertion gives the same bytes */
	{
		section r[6];

		for (int i = 0; i < 6; i++)
			r[i] = s[5 - i];
		build(&b, CAIRN_CAR_INDEX_MH_SORTED, false, r, 6);
	}
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_int_equal(cairn_car_index_open_bytes(&idx, a.data, a.len, "dups"), 0);
	assert_int_equal(cairn_car_index_check(idx), 0);
	assert_int_equal(cairn_car_index_count(idx), 6);
	assert_int_equal(cairn_car_index_find(idx, &s[0].cid, offs, 8), 4);
	assert_int_equal(offs[0], 100);
	assert_int_equal(offs[1], 100);
	assert_int_equal(offs[2], 200);
	assert_int_equal(offs[3], 300);
	/* fewer slots than matches: the first ones, and the full count */
	memset(offs, 0, sizeof(offs));
	assert_int_equal(cairn_car_index_find(idx, &s[0].cid, offs, 2), 4);
	assert_int_equal(offs[0], 100);
	assert_int_equal(offs[1], 100);
	assert_int_equal(offs[2], 0);
	assert_int_equal(cairn_car_index_foreach(idx, collect, seen), 0);
	assert_int_equal(seen[0], 6);
	/* digests 40, 50 x4, 60 */
	assert_int_equal(seen[1], 5);
	assert_int_equal(seen[2], 100);
	assert_int_equal(seen[5], 300);
	assert_int_equal(seen[6], 1);
	cairn_car_index_free(idx);
	cairn_buf_free(&a);
	cairn_buf_free(&b);
}

/* Many duplicates and shared prefixes: the radix passes see equal keys and
 * the full comparison has to finish the order. */
static void test_sort_ties(void **state)
{
	enum { N = 5000 };
	cairn_car_index_builder *b;
	cairn_buf buf = CAIRN_BUF_INIT;
	cairn_car_index *idx;
	uint8_t d[32];
	cairn_cid cid;
	uint64_t *offs = malloc(N * sizeof(*offs));
	uint32_t x = 12345;

	(void)state;
	assert_non_null(offs);
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_SORTED, true), 0);
	for (unsigned i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		memset(d, 0xab, sizeof(d));
		/* digests share their first 30 bytes; 64 distinct ones */
		d[30] = (uint8_t)(x >> 24) & 0x3f;
		d[31] = 1;
		assert_int_equal(cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, d, 32), 0);
		assert_int_equal(cairn_car_index_builder_add(b, &cid, (x >> 8) & 0xffff), 0);
		/* and short identity digests, all of one length */
		d[0] = (uint8_t)(x >> 16) & 7;
		assert_int_equal(cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY, d, 3), 0);
		assert_int_equal(cairn_car_index_builder_add(b, &cid, N - i), 0);
	}
	assert_int_equal(cairn_car_index_builder_encode(b, &buf), 0);
	cairn_car_index_builder_free(b);
	assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, "ties"), 0);
	assert_int_equal(cairn_car_index_count(idx), 2 * N);
	assert_int_equal(cairn_car_index_check(idx), 0);
	/* every digest's offsets come out ascending, and all are there */
	{
		size_t total = 0;

		for (unsigned v = 0; v < 64; v++) {
			int k;

			memset(d, 0xab, sizeof(d));
			d[30] = (uint8_t)v;
			d[31] = 1;
			assert_int_equal(cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, d, 32), 0);
			k = cairn_car_index_find(idx, &cid, offs, N);
			for (int j = 1; j < k; j++)
				assert_true(offs[j - 1] <= offs[j]);
			total += (size_t)k;
		}
		assert_int_equal(total, N);
	}
	cairn_car_index_free(idx);
	cairn_buf_free(&buf);
	free(offs);
}

static void test_identity(void **state)
{
	cairn_car_index_builder *b;
	cairn_buf buf = CAIRN_BUF_INIT;
	cairn_car_index *idx;
	cairn_cid empty, fil, sha;
	uint64_t offs[4];
	static const uint8_t want[] = {
		0x81, 0x08, 0x01, 0, 0, 0,                    /* 1 code */
		0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0,        /* identity: 2 buckets */
		8, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0,           /* width 8, 1 entry */
		7, 0, 0, 0, 0, 0, 0, 0,                       /* empty digest @7 */
		11, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0,         /* width 11, 1 entry */
		'f', 'i', 'l', 9, 0, 0, 0, 0, 0, 0, 0,        /* "fil" @9 */
	};

	(void)state;
	assert_int_equal(cairn_cid_from_digest(&empty, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY, NULL, 0), 0);
	assert_int_equal(cairn_cid_from_digest(&fil, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					       (const uint8_t *)"fil", 3), 0);
	sha_cid(&sha, 1);

	/* dropped by default */
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_MH_SORTED, false), 0);
	assert_int_equal(cairn_car_index_builder_add(b, &fil, 9), 0);
	assert_int_equal(cairn_car_index_builder_add(b, &empty, 7), 0);
	assert_int_equal(cairn_car_index_builder_count(b), 0);
	assert_int_equal(cairn_car_index_builder_encode(b, &buf), 0);
	cairn_car_index_builder_free(b);
	assert_int_equal(buf.len, 6);
	assert_memory_equal(buf.data, "\x81\x08\0\0\0\0", 6);
	assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, NULL), 0);
	assert_int_equal(cairn_car_index_count(idx), 0);
	assert_int_equal(cairn_car_index_find(idx, &fil, offs, 4), 0);
	assert_int_equal(cairn_car_index_check(idx), 0);
	cairn_car_index_free(idx);

	/* kept on request, the empty digest in a bucket of width 8 */
	cairn_buf_clear(&buf);
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_MH_SORTED, true), 0);
	assert_int_equal(cairn_car_index_builder_add(b, &fil, 9), 0);
	assert_int_equal(cairn_car_index_builder_add(b, &empty, 7), 0);
	assert_int_equal(cairn_car_index_builder_count(b), 2);
	assert_int_equal(cairn_car_index_builder_encode(b, &buf), 0);
	cairn_car_index_builder_free(b);
	assert_int_equal(buf.len, sizeof(want));
	assert_memory_equal(buf.data, want, sizeof(want));
	assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, NULL), 0);
	assert_int_equal(cairn_car_index_find(idx, &empty, offs, 4), 1);
	assert_int_equal(offs[0], 7);
	assert_int_equal(cairn_car_index_find(idx, &fil, offs, 4), 1);
	assert_int_equal(offs[0], 9);
	assert_int_equal(cairn_car_index_find(idx, &sha, offs, 4), 0);
	cairn_car_index_free(idx);

	/* empty IndexSorted */
	cairn_buf_clear(&buf);
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_SORTED, false), 0);
	assert_int_equal(cairn_car_index_builder_encode(b, &buf), 0);
	cairn_car_index_builder_free(b);
	assert_int_equal(buf.len, 6);
	assert_memory_equal(buf.data, "\x80\x08\0\0\0\0", 6);
	cairn_buf_free(&buf);
}

static void test_builder_args(void **state)
{
	cairn_car_index_builder *b = (cairn_car_index_builder *)&b;
	cairn_cid bad;

	(void)state;
	expect_error(cairn_car_index_builder_new(&b, 0x0402, false), CAIRN_EUNSUPPORTED, "0x402");
	assert_null(b);
	expect_error(cairn_car_index_builder_new(&b, 0, false), CAIRN_EUNSUPPORTED, NULL);
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_SORTED, false), 0);
	sha_cid(&bad, 3);
	bad.digest_len = 200;
	expect_error(cairn_car_index_builder_add(b, &bad, 0), CAIRN_EINVAL, NULL);
	assert_int_equal(cairn_car_index_builder_count(b), 0);
	cairn_car_index_builder_free(b);
	cairn_car_index_builder_free(NULL);
	cairn_car_index_free(NULL);
}

/* A small valid index of both kinds: two codes, two widths. */
static void small_index(cairn_buf *out, uint64_t codec)
{
	section s[5];

	sha_cid(&s[0].cid, 9);
	sha_cid(&s[1].cid, 3);
	assert_int_equal(cairn_cid_from_digest(&s[2].cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_BLAKE2B_256,
					       (const uint8_t *)"0123456789abcdef0123456789abcdef", 32), 0);
	assert_int_equal(cairn_cid_from_digest(&s[3].cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					       (const uint8_t *)"0123456789abcdef", 16), 0);
	assert_int_equal(cairn_cid_from_digest(&s[4].cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					       (const uint8_t *)"id", 2), 0);
	for (int i = 0; i < 5; i++)
		s[i].offset = 1000u + (unsigned)i;
	build(out, codec, true, s, 5);
}

static void test_truncated_everywhere(void **state)
{
	static const uint64_t codecs[] = {CAIRN_CAR_INDEX_SORTED, CAIRN_CAR_INDEX_MH_SORTED};
	cairn_buf buf = CAIRN_BUF_INIT;
	cairn_car_index *idx = NULL;

	(void)state;
	for (size_t c = 0; c < 2; c++) {
		small_index(&buf, codecs[c]);
		assert_int_equal(open_copy(&idx, buf.data, buf.len), 0);
		for (size_t n = 0; n < buf.len; n++) {
			int rc = open_copy(&idx, buf.data, n);

			if (rc != CAIRN_ECORRUPT)
				fail_msg("prefix of %zu bytes: %d %s", n, rc, cairn_error_last());
			assert_non_null(strstr(cairn_error_last(), "t.idx: at byte "));
			assert_null(idx);
		}
		/* and one byte too many */
		assert_int_equal(cairn_buf_putc(&buf, 0), 0);
		expect_error(open_copy(&idx, buf.data, buf.len), CAIRN_ECORRUPT, "after the last bucket");
		cairn_buf_clear(&buf);
	}
	cairn_buf_free(&buf);
}

/* 0x0400 with one bucket: width, bytes, then `tail` bytes of entries. */
static size_t one_bucket(uint8_t *p, uint32_t width, uint64_t bytes, size_t tail)
{
	p[0] = 0x80;
	p[1] = 0x08;
	put_le32(p + 2, 1);
	put_le32(p + 6, width);
	put_le64(p + 10, bytes);
	memset(p + 18, 0x11, tail);
	return 18 + tail;
}

static void expect_corrupt(const uint8_t *p, size_t n, int code, const char *needle)
{
	cairn_car_index *idx = NULL;

	expect_error(open_copy(&idx, p, n), code, needle);
	assert_null(idx);
}

static void test_corrupt(void **state)
{
	uint8_t p[256];
	size_t n;

	(void)state;
	/* width 7: under the 8-byte offset */
	n = one_bucket(p, 7, 7, 7);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 6: bucket width 7 is under 8");
	n = one_bucket(p, 0, 0, 0);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 6: bucket width 0");
	n = one_bucket(p, (32u << 20) + 1, 0, 0);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "over the limit");
	/* width 8 is the empty digest: fine */
	n = one_bucket(p, 8, 16, 16);
	expect_corrupt(p, n, 0, NULL);
	/* length not a multiple of the width */
	n = one_bucket(p, 40, 60, 60);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 10: bucket length 60 is not a multiple of its width 40");
	/* length past the end, huge, negative */
	n = one_bucket(p, 40, 80, 40);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 10: bucket of 80 bytes runs past the end");
	n = one_bucket(p, 40, 0x7fffffffffffffd8ull, 40);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "runs past the end");
	n = one_bucket(p, 40, UINT64_MAX, 40);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 10: bucket length -1 is negative");
	/* huge and negative bucket counts, checked before any allocation */
	n = one_bucket(p, 40, 40, 40);
	put_le32(p + 2, 0x7fffffff);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 2: 2147483647 buckets cannot fit in the 52 bytes");
	put_le32(p + 2, 0x80000000u);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 2: bucket count -2147483648 is negative");
	/* two buckets declared, one there */
	put_le32(p + 2, 2);
	expect_corrupt(p, n, CAIRN_ECORRUPT, "at byte 58: index ends inside a bucket header");
	/* 0x0401 with huge, negative code counts and a huge inner count */
	p[1] = 0x08;
	p[0] = 0x81;
	put_le32(p + 2, 0x7fffffff);
	put_le64(p + 6, 0x12);
	put_le32(p + 14, 1);
	put_le32(p + 18, 40);
	put_le64(p + 22, 40);
	memset(p + 30, 0x22, 40);
	expect_corrupt(p, 70, CAIRN_ECORRUPT, "at byte 2: 2147483647 multihash codes cannot fit");
	put_le32(p + 2, 0xffffffffu);
	expect_corrupt(p, 70, CAIRN_ECORRUPT, "at byte 2: multihash code count -1 is negative");
	put_le32(p + 2, 1);
	expect_corrupt(p, 70, 0, NULL);
	put_le32(p + 14, 0x40000000);
	expect_corrupt(p, 70, CAIRN_ECORRUPT, "at byte 14: 1073741824 buckets cannot fit");
	/* unknown codecs: another multicodec, and a non-minimal varint */
	n = one_bucket(p, 40, 40, 40);
	p[0] = 0x82;
	expect_corrupt(p, n, CAIRN_EUNSUPPORTED, "at byte 0: index codec 0x402 is not supported");
	p[0] = 0x01;
	expect_corrupt(p, n, CAIRN_EUNSUPPORTED, "index codec 0x1");
	memcpy(p, "\x80\x88\x00", 3);
	expect_corrupt(p, 3, CAIRN_ECORRUPT, "not minimally encoded");
	expect_corrupt(p, 0, CAIRN_ECORRUPT, "t.idx: at byte 0: index codec: varint");
}

static void test_check_order(void **state)
{
	cairn_buf buf = CAIRN_BUF_INIT;
	cairn_car_index *idx;
	section s[3];
	uint8_t tmp[40];
	uint64_t off;
	char msg[128];

	(void)state;
	for (int i = 0; i < 3; i++) {
		sha_cid(&s[i].cid, (uint8_t)(i + 1));
		s[i].offset = (unsigned)i;
	}
	build(&buf, CAIRN_CAR_INDEX_MH_SORTED, false, s, 3);
	/* header: 2 + 4 + 8 + 4 + 12 = 30; swap entries 1 and 2 */
	assert_int_equal(buf.len, 30 + 3 * 40);
	memcpy(tmp, buf.data + 70, 40);
	memcpy(buf.data + 70, buf.data + 110, 40);
	memcpy(buf.data + 110, tmp, 40);
	assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, "swapped"), 0);
	expect_error(cairn_car_index_check(idx), CAIRN_ECORRUPT, "swapped: at byte 110: entry 2");
	cairn_car_index_free(idx);

	/* buckets out of width order: check refuses, lookups still work */
	{
		section t[2];

		t[0] = s[0];
		assert_int_equal(cairn_cid_from_digest(&t[1].cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
						       (const uint8_t *)"0123456789abcdef", 16), 0);
		t[1].offset = 9;
		build(&buf, CAIRN_CAR_INDEX_SORTED, false, t, 2);
		/* 2 + 4, bucket 24 at 6 (12 + 24), bucket 40 at 42 (12 + 40) */
		assert_int_equal(buf.len, 94);
		memcpy(tmp, buf.data + 6, 36);
		memmove(buf.data + 6, buf.data + 42, 52);
		memcpy(buf.data + 58, tmp, 36);
		assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, "widths"), 0);
		expect_error(cairn_car_index_check(idx), CAIRN_ECORRUPT,
			     "widths: at byte 58: bucket width 24 does not follow 40");
		assert_int_equal(cairn_car_index_find(idx, &t[0].cid, &off, 1), 1);
		assert_int_equal(off, 0);
		assert_int_equal(cairn_car_index_find(idx, &t[1].cid, &off, 1), 1);
		assert_int_equal(off, 9);
		cairn_car_index_free(idx);
	}

	/* codes out of order */
	{
		static const uint8_t two[] = {
			0x81, 0x08, 2, 0, 0, 0,
			0x20, 0xb2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0x12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,
			'x', 5, 0, 0, 0, 0, 0, 0, 0,
		};
		cairn_cid x;

		assert_int_equal(cairn_car_index_open_bytes(&idx, two, sizeof(two), "codes"), 0);
		snprintf(msg, sizeof(msg), "codes: at byte 18: multihash code 0x12 does not follow 0xb220");
		expect_error(cairn_car_index_check(idx), CAIRN_ECORRUPT, msg);
		assert_int_equal(cairn_cid_from_digest(&x, 1, CAIRN_CODEC_RAW, 0x12,
						       (const uint8_t *)"x", 1), 0);
		assert_int_equal(cairn_car_index_find(idx, &x, &off, 1), 1);
		assert_int_equal(off, 5);
		cairn_car_index_free(idx);
	}
	cairn_buf_free(&buf);
}

static int stop_at_third(uint64_t code, const uint8_t *digest, size_t dlen, uint64_t offset,
			 void *payload)
{
	int *n = payload;

	(void)code;
	(void)digest;
	(void)dlen;
	(void)offset;
	return ++*n == 3 ? 42 : 0;
}

static void test_foreach_stops(void **state)
{
	char path[4200];
	cairn_car_index *idx;
	int n = 0;

	(void)state;
	path_of(path, sizeof(path), "sample-index.carindex");
	assert_int_equal(cairn_car_index_open(&idx, path, 0), 0);
	assert_int_equal(cairn_car_index_foreach(idx, stop_at_third, &n), 42);
	assert_int_equal(n, 3);
	cairn_car_index_free(idx);
}

static void test_alloc_failures(void **state)
{
	cairn_buf want = CAIRN_BUF_INIT;
	size_t n;
	section *s = read_sections("sample-v1.car", &n);
	bool done = false;

	(void)state;
	read_fixture(&want, "sample-index.carindex");
	for (long k = 0; !done; k++) {
		cairn_car_index_builder *b = NULL;
		cairn_buf out = CAIRN_BUF_INIT;
		cairn_car_index *idx = NULL;
		int rc;

		assert_true(k < 1000);
		cairn_alloc_fail_after(k, true);
		rc = cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_SORTED, true);
		for (size_t i = 0; !rc && i < n; i++)
			rc = cairn_car_index_builder_add(b, &s[i].cid, s[i].offset);
		if (!rc && (rc = cairn_car_index_builder_encode(b, &out)))
			assert_int_equal(out.len, 0); /* a failed encode leaves it as it was */
		if (!rc)
			rc = cairn_car_index_open_bytes(&idx, out.data, out.len, "oom");
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			expect_error(rc, CAIRN_ENOMEM, "out of memory");
			assert_null(idx);
		} else {
			done = true;
			assert_int_equal(out.len, want.len);
			assert_memory_equal(out.data, want.data, want.len);
			assert_int_equal(cairn_car_index_count(idx), 1049);
		}
		cairn_car_index_free(idx);
		cairn_car_index_builder_free(b);
		cairn_buf_free(&out);
	}

	/* One failure, then the same call again: the builder is left as it was,
	 * so the bytes still come out right. */
	for (long k = 1; k < 40; k++) {
		cairn_car_index_builder *b = NULL;
		cairn_buf out = CAIRN_BUF_INIT;
		int rc;

		cairn_alloc_fail_after(k, false);
		while ((rc = cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_SORTED, true)))
			expect_error(rc, CAIRN_ENOMEM, NULL);
		for (size_t i = 0; i < n; i++)
			while ((rc = cairn_car_index_builder_add(b, &s[i].cid, s[i].offset)))
				expect_error(rc, CAIRN_ENOMEM, NULL);
		while ((rc = cairn_car_index_builder_encode(b, &out))) {
			expect_error(rc, CAIRN_ENOMEM, NULL);
			assert_int_equal(out.len, 0);
			cairn_buf_free(&out); /* clears the sticky error */
		}
		cairn_alloc_fail_after(-1, false);
		assert_int_equal(cairn_car_index_builder_count(b), 1049);
		assert_int_equal(out.len, want.len);
		assert_memory_equal(out.data, want.data, want.len);
		cairn_car_index_builder_free(b);
		cairn_buf_free(&out);
	}
	cairn_buf_free(&want);
	free(s);
}

/* cairn_car_index_build through the reader: the same bytes as go-car. */
static void test_build_from_car(void **state)
{
	static const struct { const char *car, *want; uint64_t codec; bool keep; } cases[] = {
		{"sample-v1.car", "sample-multihash-index-sorted.carindex", CAIRN_CAR_INDEX_MH_SORTED, false},
		{"sample-v1.car", "sample-index.carindex", CAIRN_CAR_INDEX_SORTED, true},
	};
	cairn_buf want = CAIRN_BUF_INIT, got = CAIRN_BUF_INIT, car = CAIRN_BUF_INIT;
	char path[4200];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cairn_car_reader *r;

		path_of(path, sizeof(path), cases[i].car);
		if (cairn_car_reader_open(&r, path, NULL))
			fail_msg("open %s: %s", path, cairn_error_last());
		read_fixture(&want, cases[i].want);
		cairn_buf_clear(&got);
		if (cairn_car_index_build(&got, r, cases[i].codec, cases[i].keep))
			fail_msg("build %s: %s", path, cairn_error_last());
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.data, want.data, want.len);
		cairn_car_reader_free(r);
	}
	/* the embedded index of sample-wrapped-v2 is what a build gives */
	{
		cairn_car_reader *r;
		uint64_t off = index_offset_of("sample-wrapped-v2.car");

		path_of(path, sizeof(path), "sample-wrapped-v2.car");
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		cairn_buf_clear(&got);
		assert_int_equal(cairn_car_index_build(&got, r, CAIRN_CAR_INDEX_MH_SORTED, false), 0);
		read_fixture(&car, "sample-wrapped-v2.car");
		assert_int_equal(got.len, car.len - off);
		assert_memory_equal(got.data, car.data + off, got.len);
		cairn_car_reader_free(r);
	}
	/* a reader error comes through */
	{
		cairn_car_reader *r;

		path_of(path, sizeof(path), "sample-v1-tailing-corrupt-section.car");
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		cairn_buf_clear(&got);
		assert_true(cairn_car_index_build(&got, r, CAIRN_CAR_INDEX_MH_SORTED, false) < 0);
		assert_int_equal(got.len, 0);
		cairn_car_reader_free(r);
	}
	cairn_buf_free(&want);
	cairn_buf_free(&got);
	cairn_buf_free(&car);
}

/* One million sha2-256 CIDs: a rate for the report, and a sorted result. */
static void test_million(void **state)
{
	enum { N = 1000000 };
	cairn_cid *cids = malloc((size_t)N * sizeof(*cids));
	cairn_car_index_builder *b;
	cairn_buf buf = CAIRN_BUF_INIT;
	cairn_car_index *idx;
	uint64_t x = 0x9e3779b97f4a7c15ull, t0, t1, off;
	uint8_t d[32];

	(void)state;
	assert_non_null(cids);
	for (size_t i = 0; i < N; i++) {
		for (int j = 0; j < 32; j += 8) {
			/* xorshift64*: a stand-in for hash output */
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			uint64_t v = x * 0x2545f4914f6cdd1dull;

			memcpy(d + j, &v, 8);
		}
		assert_int_equal(cairn_cid_from_digest(&cids[i], 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, d, 32), 0);
	}
	t0 = cairn_time_ns();
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_MH_SORTED, false), 0);
	for (size_t i = 0; i < N; i++)
		if (cairn_car_index_builder_add(b, &cids[i], 59 + 100 * (uint64_t)i))
			fail();
	assert_int_equal(cairn_car_index_builder_encode(b, &buf), 0);
	t1 = cairn_time_ns();
	cairn_car_index_builder_free(b);
	print_message("built an index of %d sha2-256 entries in %.1f ms: %.1f M entries/s\n", N,
		      (double)(t1 - t0) / 1e6, N / ((double)(t1 - t0) / 1e9) / 1e6);
	assert_int_equal(buf.len, 2 + 4 + 12 + 12 + (size_t)N * 40);
	assert_int_equal(cairn_car_index_open_bytes(&idx, buf.data, buf.len, "million"), 0);
	assert_int_equal(cairn_car_index_check(idx), 0);
	t0 = cairn_time_ns();
	for (size_t i = 0; i < N; i += 1)
		if (cairn_car_index_find(idx, &cids[i], &off, 1) != 1 || off != 59 + 100 * (uint64_t)i)
			fail_msg("entry %zu", i);
	t1 = cairn_time_ns();
	print_message("found all %d in %.1f ms: %.1f M lookups/s\n", N, (double)(t1 - t0) / 1e6,
		      N / ((double)(t1 - t0) / 1e9) / 1e6);
	cairn_car_index_free(idx);
	cairn_buf_free(&buf);
	free(cids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_reproduce_mh_sorted, teardown),
		cmocka_unit_test_teardown(test_reproduce_sorted, teardown),
		cmocka_unit_test_teardown(test_open_detached, teardown),
		cmocka_unit_test_teardown(test_open_embedded, teardown),
		cmocka_unit_test_teardown(test_carv2_basic_legacy_body, teardown),
		cmocka_unit_test_teardown(test_open_errors, teardown),
		cmocka_unit_test_teardown(test_find_missing, teardown),
		cmocka_unit_test_teardown(test_duplicates, teardown),
		cmocka_unit_test_teardown(test_sort_ties, teardown),
		cmocka_unit_test_teardown(test_identity, teardown),
		cmocka_unit_test_teardown(test_builder_args, teardown),
		cmocka_unit_test_teardown(test_truncated_everywhere, teardown),
		cmocka_unit_test_teardown(test_corrupt, teardown),
		cmocka_unit_test_teardown(test_check_order, teardown),
		cmocka_unit_test_teardown(test_foreach_stops, teardown),
		cmocka_unit_test_teardown(test_alloc_failures, teardown),
		cmocka_unit_test_teardown(test_build_from_car, teardown),
		cmocka_unit_test_teardown(test_million, teardown),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
