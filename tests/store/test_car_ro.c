/* test_car_ro.c: unit tests for the read-only CAR blockstore against the CAR
 * fixtures: every index source, lookups, iteration, tampering, threads, OOM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"

static char cars[PATH_MAX];   /* $CAIRN_FIXTURES/car */
static char tmpdir[PATH_MAX]; /* removed with everything in it at the end */

/* ---------------------------------------------------------------- helpers */

/* One line of expected/<car>.sections.tsv. */
typedef struct {
	uint64_t rel, abs, len, block_len;
	uint32_t cid_len;
	char hash_ok;
	char str[CAIRN_CID_MAX_STRING];
	cairn_cid cid;
} row;

typedef struct {
	row *rows;
	size_t n;
} table;

static void load_table(table *t, const char *car)
{
	char path[PATH_MAX + 64], *line, *save = NULL;
	cairn_buf b = CAIRN_BUF_INIT;
	size_t cap = 0;

	snprintf(path, sizeof(path), "%s/expected/%s.sections.tsv", cars, car);
	assert_int_equal(cairn_file_read_all(&b, path, 1 << 24), 0);
	t->rows = NULL;
	t->n = 0;
	for (line = strtok_r((char *)b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		row *w;

		if (line[0] == '#' || !line[0])
			continue;
		if (t->n == cap) {
			cap = cap ? cap * 2 : 64;
			t->rows = realloc(t->rows, cap * sizeof(*t->rows));
			assert_non_null(t->rows);
		}
		w = &t->rows[t->n++];
		if (sscanf(line, "%" SCNu64 "\t%" SCNu64 "\t%" SCNu64 "\t%" SCNu32 "\t%" SCNu64 "\t%c\t%320s",
			   &w->rel, &w->abs, &w->len, &w->cid_len, &w->block_len, &w->hash_ok, w->str) != 7)
			fail_msg("%s: bad line: %s", path, line);
		assert_int_equal(cairn_cid_parse(&w->cid, w->str, strlen(w->str)), 0);
	}
	cairn_buf_free(&b);
}

static void free_table(table *t)
{
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
}

static void fixture(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", cars, name);
}

static void temp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

/* The block of a section as the CAR reader reads it, trusted: the bytes on
 * disk, whatever they hash to. */
typedef struct {
	cairn_car_reader *r;
	cairn_car_options opts;
} ref;

static void ref_open(ref *rf, const char *path)
{
	rf->opts = (cairn_car_options)CAIRN_CAR_OPTIONS_INIT;
	rf->opts.trusted = true;
	rf->opts.zero_length_as_eof = true;
	assert_int_equal(cairn_car_reader_open(&rf->r, path, &rf->opts), 0);
}

static void ref_block(ref *rf, cairn_buf *out, uint64_t rel)
{
	cairn_car_section sec;

	assert_int_equal(cairn_car_section_read(&sec, out, cairn_car_reader_fd(rf->r), "ref",
						cairn_car_reader_data_offset(rf->r),
						cairn_car_reader_data_end(rf->r), rel, &rf->opts), 0);
}

static void ref_close(ref *rf)
{
	cairn_car_reader_free(rf->r);
}

static void copy_file(const char *from, const char *to)
{
	cairn_buf b = CAIRN_BUF_INIT;

	assert_int_equal(cairn_file_read_all(&b, from, 1 << 24), 0);
	assert_int_equal(cairn_file_replace_atomic(to, b.data, b.len, 0644), 0);
	cairn_buf_free(&b);
}

/* Flips one byte of the file at `off`. */
static void flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

/* A CID the store cannot hold: the same as `in` with one digest byte
 * changed. */
static void absent_cid(cairn_cid *out, const cairn_cid *in)
{
	*out = *in;
	out->bytes[out->digest_off] ^= 0xff;
}

typedef struct {
	const table *t;
	size_t n;
	bool bad;
} order;

static int check_order(const cairn_cid *cid, void *payload)
{
	order *o = payload;

	if (o->n >= o->t->n || !cairn_cid_equal(cid, &o->t->rows[o->n].cid))
		o->bad = true;
	o->n++;
	return 0;
}

static int stop_at_three(const cairn_cid *cid, void *payload)
{
	(void)cid;
	return ++*(int *)payload == 3 ? 77 : 0;
}

/* get_many over cids[] answers as get does, CID by CID and in order, and
 * stops at a non-zero return of its callback. */
typedef struct {
	cairn_store *s;
	const cairn_cid *cids;
	size_t next;
	size_t stop_at;          /* return 77 after this many; 0: never */
	cairn_buf want;
} many_check;

static int many_block(size_t i, int rc, const uint8_t *data, size_t len, void *payload)
{
	many_check *m = payload;

	assert_int_equal(i, m->next);
	m->next++;
	if (rc)
		assert_true(cairn_error_last()[0] != '\0');
	assert_int_equal(rc, cairn_store_get(m->s, &m->want, &m->cids[i]));
	if (!rc) {
		assert_int_equal(len, m->want.len);
		if (len)
			assert_memory_equal(data, m->want.data, len);
	}
	return m->next == m->stop_at ? 77 : 0;
}

static void check_get_many(cairn_store *s, const cairn_cid *cids, size_t n)
{
	const cairn_cid **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	cairn_buf scratch = CAIRN_BUF_INIT;
	many_check m = {s, cids, 0, 0, CAIRN_BUF_INIT};

	assert_non_null(ptrs);
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &cids[i];
	assert_int_equal(cairn_store_get_many(s, ptrs, n, &scratch, many_block, &m), 0);
	assert_int_equal(m.next, n);
	if (n > 20) {
		m.next = 0;
		m.stop_at = 19; /* inside the second group of the CAR store's lookups */
		assert_int_equal(cairn_store_get_many(s, ptrs, n, &scratch, many_block, &m), 77);
		assert_int_equal(m.next, 19);
	}
	cairn_buf_free(&m.want);
	cairn_buf_free(&scratch);
	free(ptrs);
}

/* The CIDs of a table, each followed by one not in the CAR every third. */
static cairn_cid *mixed_cids(const table *t, size_t *n_out)
{
	cairn_cid *v = calloc(t->n * 2 + 1, sizeof(*v));
	size_t n = 0;

	assert_non_null(v);
	for (size_t i = 0; i < t->n; i++) {
		v[n++] = t->rows[i].cid;
		if (i % 3 == 0 && t->rows[i].cid.mh_code != CAIRN_MH_IDENTITY)
			absent_cid(&v[n++], &t->rows[i].cid);
	}
	*n_out = n;
	return v;
}

/* ------------------------------------------------------ every fixture */

typedef struct {
	const char *car;
	const char *index; /* detached, or NULL */
	bool zero_eof;
} source;

static const source sources[] = {
	{"sample-wrapped-v2.car", NULL, false},  /* embedded MultihashIndexSorted */
	{"sample-v1.car", "sample-multihash-index-sorted.carindex", false},
	{"sample-v1.car", "sample-index.carindex", false}, /* IndexSorted, digest only */
	{"sample-v1.car", NULL, false},          /* built on open */
	{"sample-v2-indexless.car", NULL, false},
	{"sample-v2-indexless.car", "sample-multihash-index-sorted.carindex", false},
	{"sample-v1-noidentity.car", NULL, false},
	{"sample-v1-with-zero-len-section.car", NULL, true},
	{"sample-v1-with-zero-len-section2.car", NULL, true},
	{"sample-rw-bs-v2.car", NULL, false},
	{"sample-unixfs-v2.car", NULL, false},
	{"carv1-basic.car", NULL, false},
	{"simple-unixfs.car", NULL, false},
	{"simple-unixfs-missing-blocks.car", NULL, false},
	{"wikipedia-cryptographic-hash-function.car", NULL, false},
};

static void check_source(const source *src, bool no_mmap)
{
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	cairn_store *s;
	table t;
	ref rf;
	order o;
	int stops = 0;

	fixture(path, sizeof(path), src->car);
	if (src->index)
		fixture(ipath, sizeof(ipath), src->index);
	opts.zero_length_as_eof = src->zero_eof;
	opts.no_mmap = no_mmap;
	if (cairn_store_car_open(&s, path, src->index ? ipath : NULL, &opts))
		fail_msg("%s (index %s): %s", src->car, src->index ? src->index : "-",
			 cairn_error_last());
	assert_string_equal(cairn_store_name(s), "car");
	load_table(&t, src->car);
	ref_open(&rf, path);
	for (size_t i = 0; i < t.n; i++) {
		const row *w = &t.rows[i];
		uint64_t size = 0;

		if (cairn_store_get(s, &got, &w->cid))
			fail_msg("%s: get %s: %s", src->car, w->str, cairn_error_last());
		ref_block(&rf, &want, w->rel);
		assert_int_equal(got.len, w->block_len);
		assert_memory_equal(got.data, want.data, got.len);
		assert_int_equal(cairn_store_has(s, &w->cid), 1);
		assert_int_equal(cairn_store_get_size(s, &size, &w->cid), 0);
		assert_int_equal(size, w->block_len);
	}
	/* Batched, with absent CIDs among them: as get, one by one. */
	{
		size_t n;
		cairn_cid *mixed = mixed_cids(&t, &n);

		check_get_many(s, mixed, n);
		free(mixed);
	}
	/* Iteration is in file order, identity sections included. */
	o = (order){&t, 0, false};
	assert_int_equal(cairn_store_iterate(s, check_order, &o), 0);
	assert_false(o.bad);
	assert_int_equal(o.n, t.n);
	assert_int_equal(cairn_store_iterate(s, stop_at_three, &stops), 77);
	assert_int_equal(stops, 3);

	/* What is not there. */
	for (size_t i = 0; i < t.n; i++) {
		cairn_cid none;
		uint64_t size = 5;

		if (t.rows[i].cid.mh_code == CAIRN_MH_IDENTITY)
			continue;
		absent_cid(&none, &t.rows[i].cid);
		assert_int_equal(cairn_store_get(s, &got, &none), CAIRN_ENOTFOUND);
		assert_non_null(strstr(cairn_error_last(), src->car));
		assert_int_equal(cairn_store_has(s, &none), 0);
		assert_int_equal(cairn_store_get_size(s, &size, &none), CAIRN_ENOTFOUND);
		assert_int_equal(size, 5);
		break;
	}

	/* Read-only. */
	assert_int_equal(cairn_store_put(s, &t.rows[0].cid, want.data, want.len), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "car"));
	assert_int_equal(cairn_store_del(s, &t.rows[0].cid), CAIRN_EUNSUPPORTED);
	assert_int_equal(cairn_store_flush(s, NULL), 0);

	ref_close(&rf);
	free_table(&t);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
	cairn_store_free(s);
}

static void test_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		check_source(&sources[i], false);
		check_source(&sources[i], true);
	}
}

/* A CIDv0 finds the block its CIDv1 (dag-pb) names and back, and a raw
 * CID with the same multihash finds it too: matching is by multihash. */
static void test_cid_versions(void **state)
{
	static const struct {
		const char *car;
		const char *index;
	} cases[] = {
		{"simple-unixfs.car", NULL},          /* CIDv0 blocks */
		{"sample-unixfs-v2.car", NULL},       /* CIDv1 blocks, embedded index */
		{"carv1-basic.car", NULL},            /* both */
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char path[PATH_MAX + 64];
		cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
		cairn_store *s;
		size_t tried = 0;
		table t;

		fixture(path, sizeof(path), cases[c].car);
		assert_int_equal(cairn_store_car_open(&s, path, NULL, NULL), 0);
		load_table(&t, cases[c].car);
		for (size_t i = 0; i < t.n; i++) {
			const row *w = &t.rows[i];
			cairn_cid other, raw;
			uint64_t size;

			if (w->cid.codec != CAIRN_CODEC_DAG_PB || w->cid.mh_code != CAIRN_MH_SHA2_256)
				continue;
			assert_int_equal(cairn_store_get(s, &want, &w->cid), 0);
			assert_int_equal(cairn_cid_convert(&other, &w->cid, w->cid.version ? 0 : 1), 0);
			assert_false(cairn_cid_equal(&other, &w->cid));
			assert_int_equal(cairn_store_get(s, &got, &other), 0);
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.data, want.data, got.len);
			assert_int_equal(cairn_store_has(s, &other), 1);
			assert_int_equal(cairn_store_get_size(s, &size, &other), 0);
			assert_int_equal(size, want.len);
			assert_int_equal(cairn_cid_from_digest(&raw, 1, CAIRN_CODEC_RAW, w->cid.mh_code,
							       w->cid.bytes + w->cid.digest_off,
							       w->cid.digest_len), 0);
			assert_int_equal(cairn_store_get(s, &got, &raw), 0);
			assert_int_equal(got.len, want.len);
			tried++;
		}
		assert_true(tried > 0);
		free_table(&t);
		cairn_buf_free(&got);
		cairn_buf_free(&want);
		cairn_store_free(s);
	}
}

/* Identity CIDs are answered by the wrapper from the CID itself, whether or
 * not the CAR holds a section for them (sample-v1 does, -noidentity not). */
static void test_identity(void **state)
{
	static const char *names[] = {"sample-v1.car", "sample-v1-noidentity.car"};
	table t;

	(void)state;
	load_table(&t, "sample-v1.car");
	for (size_t c = 0; c < 2; c++) {
		char path[PATH_MAX + 64];
		cairn_buf got = CAIRN_BUF_INIT;
		cairn_store *s;
		size_t n = 0;

		fixture(path, sizeof(path), names[c]);
		assert_int_equal(cairn_store_car_open(&s, path, NULL, NULL), 0);
		for (size_t i = 0; i < t.n; i++) {
			const cairn_cid *cid = &t.rows[i].cid;

			if (cid->mh_code != CAIRN_MH_IDENTITY)
				continue;
			assert_int_equal(cairn_store_get(s, &got, cid), 0);
			assert_int_equal(got.len, cid->digest_len);
			assert_memory_equal(got.data, cid->bytes + cid->digest_off, got.len);
			assert_int_equal(cairn_store_has(s, cid), 1);
			n++;
		}
		assert_int_equal(n, 6);
		cairn_buf_free(&got);
		cairn_store_free(s);
	}
	free_table(&t);
}

/* ------------------------------------------------------------ tampering */

static void check_tampered(const char *car)
{
	char src[PATH_MAX + 64], path[PATH_MAX + 64], at[32];
	cairn_car_options trusted = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	cairn_store *s, *ts;
	uint64_t size, block_at;
	const row *w;
	table t;
	ref rf;

	fixture(src, sizeof(src), car);
	temp_path(path, sizeof(path), car);
	copy_file(src, path);
	load_table(&t, car);
	w = &t.rows[t.n / 2];
	assert_int_not_equal(w->cid.mh_code, CAIRN_MH_IDENTITY);
	block_at = w->abs + cairn_varint_size(w->len) + w->cid_len + w->block_len / 2;
	flip_byte(path, block_at);

	/* The index (embedded, or built on open without hashing) still finds
	 * the section; get refuses it, naming the section's offset. */
	assert_int_equal(cairn_store_car_open(&s, path, NULL, NULL), 0);
	assert_int_equal(cairn_store_get(s, &got, &w->cid), CAIRN_EMISMATCH);
	snprintf(at, sizeof(at), "byte %" PRIu64, w->abs);
	if (!strstr(cairn_error_last(), at) || !strstr(cairn_error_last(), path))
		fail_msg("message does not name %s and %s: %s", path, at, cairn_error_last());
	assert_int_equal(got.len, 0);
	/* has and get_size read only the head. */
	assert_int_equal(cairn_store_has(s, &w->cid), 1);
	assert_int_equal(cairn_store_get_size(s, &size, &w->cid), 0);
	assert_int_equal(size, w->block_len);
	/* The blocks around it are fine. */
	assert_int_equal(cairn_store_get(s, &got, &t.rows[t.n / 2 + 1].cid), 0);
	/* Batched: the mismatch is that block's answer, the others are got. */
	{
		size_t n;
		cairn_cid *mixed = mixed_cids(&t, &n);

		check_get_many(s, mixed, n);
		free(mixed);
	}

	/* Trusted: the bytes as they are on disk. */
	trusted.trusted = true;
	assert_int_equal(cairn_store_car_open(&ts, path, NULL, &trusted), 0);
	assert_int_equal(cairn_store_get(ts, &got, &w->cid), 0);
	ref_open(&rf, path);
	ref_block(&rf, &want, w->rel);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, got.len);
	assert_int_not_equal(cairn_cid_verify(&w->cid, got.data, got.len), 0);
	ref_close(&rf);

	cairn_store_free(ts);
	cairn_store_free(s);
	free_table(&t);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
	unlink(path);
}

static void test_tampered(void **state)
{
	(void)state;
	check_tampered("sample-v1.car");
	check_tampered("sample-wrapped-v2.car");
	check_tampered("carv1-basic.car");
}

/* A CID in the section changed: the index (built from the original) no
 * longer points at a section holding that CID, so the block is simply not
 * there; never another block's bytes. */
static void test_tampered_cid(void **state)
{
	char src[PATH_MAX + 64], path[PATH_MAX + 64];
	cairn_buf got = CAIRN_BUF_INIT;
	cairn_car_options trusted = CAIRN_CAR_OPTIONS_INIT;
	cairn_store *s;
	const row *w;
	table t;
	int rc;

	(void)state;
	fixture(src, sizeof(src), "sample-wrapped-v2.car");
	temp_path(path, sizeof(path), "cid-flipped.car");
	copy_file(src, path);
	load_table(&t, "sample-wrapped-v2.car");
	w = &t.rows[100];
	/* The last byte of the CID: a digest byte. */
	flip_byte(path, w->abs + cairn_varint_size(w->len) + w->cid_len - 1);
	trusted.trusted = true;
	assert_int_equal(cairn_store_car_open(&s, path, NULL, &trusted), 0);
	rc = cairn_store_get(s, &got, &w->cid);
	assert_int_equal(rc, CAIRN_ENOTFOUND);
	assert_int_equal(cairn_store_has(s, &w->cid), 0);
	cairn_store_free(s);
	free_table(&t);
	cairn_buf_free(&got);
	unlink(path);
}

/* --------------------------------------------------- a wrong index
 *
 * An index made for another CAR points at offsets that hold other sections,
 * the middle of blocks, or nothing at all. Whatever it says, a get returns
 * the right bytes or a clean error, never another block.
 */
static void check_wrong_index(const char *car, const char *index, bool trust)
{
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	size_t right = 0, errors = 0;
	cairn_store *s;
	table t;
	ref rf;

	fixture(path, sizeof(path), car);
	fixture(ipath, sizeof(ipath), index);
	opts.trusted = trust;
	assert_int_equal(cairn_store_car_open(&s, path, ipath, &opts), 0);
	load_table(&t, car);
	ref_open(&rf, path);
	for (size_t i = 0; i < t.n; i++) {
		const row *w = &t.rows[i];
		uint64_t size;
		int rc = cairn_store_get(s, &got, &w->cid), has;

		if (rc == 0) {
			ref_block(&rf, &want, w->rel);
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.data, want.data, got.len);
			right++;
		} else if (rc == CAIRN_ENOTFOUND || rc == CAIRN_ECORRUPT || rc == CAIRN_ETOOBIG ||
			   rc == CAIRN_EMISMATCH || rc == CAIRN_EUNSUPPORTED) {
			assert_int_equal(got.len, 0);
			errors++;
		} else {
			fail_msg("%s with %s: get %s: %d %s", car, index, w->str, rc, cairn_error_last());
		}
		has = cairn_store_has(s, &w->cid);
		assert_true(has == 0 || has == 1 || has == CAIRN_ECORRUPT || has == CAIRN_ETOOBIG ||
			    has == CAIRN_EUNSUPPORTED);
		if (has == 1 && !trust && w->cid.mh_code != CAIRN_MH_IDENTITY)
			assert_int_equal(rc, 0); /* a section with that CID is there */
		rc = cairn_store_get_size(s, &size, &w->cid);
		if (rc == 0)
			assert_int_equal(size, w->block_len);
	}
	assert_int_equal(right + errors, t.n);
	ref_close(&rf);
	free_table(&t);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
	cairn_store_free(s);
}

/* Another CAR's CIDs through its index: the offsets run past this small
 * CAR's data or land in the middle of it. */
static void check_foreign_cids(const char *car, const char *index, const char *other)
{
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
	cairn_buf got = CAIRN_BUF_INIT;
	cairn_store *s;
	table t;

	fixture(path, sizeof(path), car);
	fixture(ipath, sizeof(ipath), index);
	assert_int_equal(cairn_store_car_open(&s, path, ipath, NULL), 0);
	load_table(&t, other);
	for (size_t i = 0; i < t.n; i++) {
		int rc;

		if (t.rows[i].cid.mh_code == CAIRN_MH_IDENTITY)
			continue;
		rc = cairn_store_get(s, &got, &t.rows[i].cid);
		if (rc != CAIRN_ENOTFOUND && rc != CAIRN_ECORRUPT && rc != CAIRN_ETOOBIG &&
		    rc != CAIRN_EUNSUPPORTED)
			fail_msg("%s with %s: get %s: %d %s", car, index, t.rows[i].str, rc,
				 cairn_error_last());
		assert_int_equal(got.len, 0);
	}
	free_table(&t);
	cairn_buf_free(&got);
	cairn_store_free(s);
}

static void test_wrong_index(void **state)
{
	(void)state;
	check_foreign_cids("carv1-basic.car", "sample-index.carindex", "sample-v1.car");
	check_foreign_cids("simple-unixfs.car", "sample-multihash-index-sorted.carindex",
			   "sample-v1.car");
	for (int trust = 0; trust < 2; trust++) {
		check_wrong_index("sample-v1-noidentity.car", "sample-index.carindex", trust);
		check_wrong_index("sample-v1-noidentity.car", "sample-multihash-index-sorted.carindex",
				  trust);
		/* Offsets far past the end of a small CAR's data. */
		check_wrong_index("carv1-basic.car", "sample-index.carindex", trust);
		/* Offsets relative to a CARv1's start, used on the same payload at 51:
		 * every one lands 51 bytes early. */
		check_wrong_index("sample-wrapped-v2.car", "sample-index.carindex", trust);
	}
}

/* ------------------------------------------------- CARs made by hand */

/* Appends a section: length varint, CID, block. */
static void put_section(cairn_buf *car, cairn_car_index_builder *b, const cairn_cid *cid,
			const void *data, size_t len)
{
	uint8_t v[CAIRN_VARINT_MAX];
	size_t n = cairn_varint_encode(v, cid->len + len);

	if (b)
		assert_int_equal(cairn_car_index_builder_add(b, cid, car->len), 0);
	assert_int_equal(cairn_buf_append(car, v, n), 0);
	assert_int_equal(cairn_buf_append(car, cid->bytes, cid->len), 0);
	assert_int_equal(cairn_buf_append(car, data, len), 0);
}

static void write_file(const char *path, const cairn_buf *b)
{
	assert_int_equal(cairn_file_replace_atomic(path, b->data, b->len, 0644), 0);
}

/* IndexSorted keys entries by digest alone: a blake2b-256 block and a
 * sha2-256 block whose digests are the same bytes (forged here: the blocks
 * do not hash) share one key, and only the CID in the section tells them
 * apart. The index lists the blake2b section first. */
static void test_index_sorted_same_digest(void **state)
{
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
	static const uint8_t blake_block[] = "the blake2b block";
	static const uint8_t sha_block[] = "the sha2-256 block, longer";
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf car = CAIRN_BUF_INIT, idx = CAIRN_BUF_INIT, got = CAIRN_BUF_INIT;
	cairn_car_index_builder *b;
	cairn_cid blake, sha, root;
	uint8_t digest[32];
	uint64_t size;
	cairn_store *s;

	(void)state;
	memset(digest, 0xab, sizeof(digest));
	assert_int_equal(cairn_cid_from_digest(&blake, 1, CAIRN_CODEC_RAW, CAIRN_MH_BLAKE2B_256,
					       digest, 32), 0);
	assert_int_equal(cairn_cid_from_digest(&sha, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, digest,
					       32), 0);
	root = sha;
	assert_int_equal(cairn_car_v1_header_encode(&car, &root, 1), 0);
	assert_int_equal(cairn_car_index_builder_new(&b, CAIRN_CAR_INDEX_SORTED, false), 0);
	put_section(&car, b, &blake, blake_block, sizeof(blake_block));
	put_section(&car, b, &sha, sha_block, sizeof(sha_block));
	assert_int_equal(cairn_car_index_builder_encode(b, &idx), 0);
	cairn_car_index_builder_free(b);
	temp_path(path, sizeof(path), "same-digest.car");
	temp_path(ipath, sizeof(ipath), "same-digest.carindex");
	write_file(path, &car);
	write_file(ipath, &idx);

	opts.trusted = true;
	assert_int_equal(cairn_store_car_open(&s, path, ipath, &opts), 0);
	assert_int_equal(cairn_store_get(s, &got, &sha), 0);
	assert_int_equal(got.len, sizeof(sha_block));
	assert_memory_equal(got.data, sha_block, got.len);
	assert_int_equal(cairn_store_get_size(s, &size, &sha), 0);
	assert_int_equal(size, sizeof(sha_block));
	assert_int_equal(cairn_store_get(s, &got, &blake), 0);
	assert_int_equal(got.len, sizeof(blake_block));
	assert_memory_equal(got.data, blake_block, got.len);
	assert_int_equal(cairn_store_get_size(s, &size, &blake), 0);
	assert_int_equal(size, sizeof(blake_block));
	cairn_store_free(s);

	/* Hashed: each is refused for its own bytes, never served the other's. */
	assert_int_equal(cairn_store_car_open(&s, path, ipath, NULL), 0);
	assert_int_equal(cairn_store_get(s, &got, &sha), CAIRN_EMISMATCH);
	assert_int_equal(got.len, 0);
	assert_int_equal(cairn_store_has(s, &sha), 1);
	cairn_store_free(s);
	cairn_buf_free(&car);
	cairn_buf_free(&idx);
	cairn_buf_free(&got);
}

/* A CAR large enough for the store's radix tables over its index (one per
 * multihash code: sha2-256 raw leaves, blake2b-256 dag-cbor nodes), in each
 * index format and with none: every block is found with its bytes, hashed;
 * a CID one digest byte away (the first byte: another slot; the last: the
 * same slot) is not; a block written twice and blocks longer than one read
 * are served whole. */
#define RADIX_BLOCKS 20000

static void radix_block(cairn_cid *cid, uint8_t *data, size_t *len, unsigned i)
{
	bool leaf = i % 2;
	uint64_t mh = leaf ? CAIRN_MH_SHA2_256 : CAIRN_MH_BLAKE2B_256;
	uint8_t digest[64];
	int n;

	/* Every 997th block is longer than the store's first read. */
	*len = (size_t)snprintf((char *)data, 64, "radix block %u", i);
	if (i % 997 == 0) {
		for (size_t k = *len; k < 3000; k++)
			data[k] = (uint8_t)(k * 7 + i);
		*len = 3000;
	}
	n = cairn_multihash_sum(digest, mh, data, *len);
	assert_true(n > 0);
	assert_int_equal(cairn_cid_from_digest(cid, 1, leaf ? CAIRN_CODEC_RAW : CAIRN_CODEC_DAG_CBOR,
					       mh, digest, (size_t)n), 0);
}

/* The radix CAR's positions: one per index entry (the block written twice
 * has two, and is given the first); each block its own, the same for an
 * alias (its digest under another codec); none for a digest not in the
 * CAR or an identity CID. */
static void check_positions(cairn_store *s)
{
	uint64_t n = cairn_store_positions(s), *pos, extra[3];
	const cairn_cid *cids[RADIX_BLOCKS], *more[3];
	cairn_cid *all = calloc(RADIX_BLOCKS, sizeof(*all)), alias, off, id;
	uint8_t *taken, data[3000];
	size_t len;

	assert_int_equal(n, RADIX_BLOCKS + 1);
	assert_non_null(all);
	assert_non_null(pos = calloc(RADIX_BLOCKS, sizeof(*pos)));
	assert_non_null(taken = calloc((size_t)n, 1));
	for (unsigned i = 0; i < RADIX_BLOCKS; i++) {
		radix_block(&all[i], data, &len, i);
		cids[i] = &all[i];
	}
	assert_int_equal(cairn_store_locate_many(s, cids, RADIX_BLOCKS, pos), 0);
	for (unsigned i = 0; i < RADIX_BLOCKS; i++) {
		assert_true(pos[i] < n);
		assert_int_equal(taken[pos[i]], 0);
		taken[pos[i]] = 1;
	}
	assert_int_equal(cairn_cid_from_digest(&alias, 1, CAIRN_CODEC_CBOR, all[4242].mh_code,
					       all[4242].bytes + all[4242].digest_off,
					       all[4242].digest_len), 0);
	off = all[7];
	off.bytes[off.digest_off + off.digest_len - 1] ^= 1;
	assert_int_equal(cairn_cid_compute(&id, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					   (const uint8_t *)"id", 2), 0);
	more[0] = &alias;
	more[1] = &off;
	more[2] = &id;
	assert_int_equal(cairn_store_locate_many(s, more, 3, extra), 0);
	assert_int_equal(extra[0], pos[4242]);
	assert_int_equal(extra[1], CAIRN_STORE_NO_POSITION);
	assert_int_equal(extra[2], CAIRN_STORE_NO_POSITION);

	/* get_many_at answers as get: with the right positions, with none,
	 * and with wrong ones (another block's, one past the end). */
	{
		cairn_buf scratch = CAIRN_BUF_INIT;
		many_check m = {s, all, 0, 0, CAIRN_BUF_INIT};

		for (unsigned i = 0; i < RADIX_BLOCKS; i++) {
			if (i % 7 == 1)
				pos[i] = CAIRN_STORE_NO_POSITION;
			else if (i % 7 == 2)
				pos[i] = pos[(i * 31) % RADIX_BLOCKS];
			else if (i % 7 == 3)
				pos[i] = n + i;
		}
		assert_int_equal(cairn_store_get_many_at(s, cids, pos, RADIX_BLOCKS, &scratch,
							 many_block, &m), 0);
		assert_int_equal(m.next, RADIX_BLOCKS);
		m.next = 0;
		m.stop_at = 19;
		assert_int_equal(cairn_store_get_many_at(s, cids, pos, RADIX_BLOCKS, &scratch,
							 many_block, &m), 77);
		assert_int_equal(m.next, 19);
		/* A CID not in the CAR, at a position of one that is. */
		cairn_buf_free(&m.want);
		m = (many_check){s, &off, 0, 0, CAIRN_BUF_INIT};
		assert_int_equal(cairn_store_get_many_at(s, more + 1, pos, 1, &scratch, many_block,
							 &m), 0);
		assert_int_equal(m.next, 1);
		cairn_buf_free(&m.want);
		cairn_buf_free(&scratch);
	}
	free(taken);
	free(pos);
	free(all);
}

/* The file pages this process has mapped (kB), or -1 where /proc cannot
 * tell. */
static long rss_file_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssFile: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* `detached`: also write the index to this file and open the store with it. */
static void check_radix_car(const char *path, unsigned version, uint64_t index_codec,
			    bool no_mmap, const char *detached)
{
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_cid *all;
	cairn_car_writer_options wo = CAIRN_CAR_WRITER_OPTIONS_INIT;
	cairn_buf got = CAIRN_BUF_INIT;
	cairn_car_writer *w;
	cairn_cid cid, other;
	uint8_t data[3000];
	size_t len, size_dummy;
	uint64_t size;
	cairn_store *s;
	long rss_before;
	/* With no_mmap an index in a file is read with pread but by locates
	 * (positions); one built on open is in memory and read in place. */
	bool pread_index = no_mmap && (version == 2 || detached);

	wo.version = version;
	wo.index_codec = index_codec;
	radix_block(&cid, data, &len, 0);
	assert_int_equal(cairn_car_writer_open(&w, path, &cid, 1, &wo), 0);
	for (unsigned i = 0; i < RADIX_BLOCKS; i++) {
		radix_block(&cid, data, &len, i);
		assert_int_equal(cairn_car_writer_put(w, &cid, data, len), 0);
	}
	/* Written twice: two index entries for one digest. */
	radix_block(&cid, data, &len, 4242);
	assert_int_equal(cairn_car_writer_put(w, &cid, data, len), 0);
	assert_int_equal(cairn_car_writer_finish(w), 0);
	cairn_car_writer_free(w);

	if (detached) {
		cairn_car_reader *r;
		cairn_buf idx = CAIRN_BUF_INIT;

		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		assert_int_equal(cairn_car_index_build(&idx, r, CAIRN_CAR_INDEX_MH_SORTED, false), 0);
		cairn_car_reader_free(r);
		write_file(detached, &idx);
		cairn_buf_free(&idx);
	}
	opts.no_mmap = no_mmap;
	rss_before = rss_file_kb();
	assert_int_equal(cairn_store_car_open(&s, path, detached, &opts), 0);
	/* Batched through the tables' staged lookups: every block, with a
	 * CID one first or last digest byte away after each tenth. */
	assert_non_null(all = calloc(RADIX_BLOCKS * 2, sizeof(*all)));
	len = 0;
	for (unsigned i = 0; i < RADIX_BLOCKS; i++) {
		radix_block(&all[len], data, &size_dummy, i);
		if (i % 10 == 0) {
			all[len + 1] = all[len];
			all[len + 1].bytes[all[len].digest_off + (i % 20 ? 0 : all[len].digest_len - 1)] ^= 1;
			len++;
		}
		len++;
	}
	check_get_many(s, all, len);
	free(all);
	if (!pread_index)
		check_positions(s);
	for (unsigned i = 0; i < RADIX_BLOCKS; i++) {
		radix_block(&cid, data, &len, i);
		assert_int_equal(cairn_store_get(s, &got, &cid), 0);
		assert_int_equal(got.len, len);
		assert_memory_equal(got.data, data, len);
		assert_int_equal(cairn_store_get_size(s, &size, &cid), 0);
		assert_int_equal(size, len);
		assert_int_equal(cairn_store_has(s, &cid), 1);
		absent_cid(&other, &cid);
		assert_int_equal(cairn_store_has(s, &other), 0);
		assert_int_equal(cairn_store_get(s, &got, &other), CAIRN_ENOTFOUND);
		assert_int_equal(got.len, 0);
		other = cid;
		other.bytes[cid.digest_off + cid.digest_len - 1] ^= 0x01;
		assert_int_equal(cairn_store_has(s, &other), 0);
		assert_int_equal(cairn_store_get_size(s, &size, &other), CAIRN_ENOTFOUND);
	}
	/* Every block got, and the index (800 kB) neither mapped in nor left
	 * in memory: only the pages the store itself touched stay. */
	if (pread_index && rss_before >= 0)
		assert_true(rss_file_kb() - rss_before < 200);
	/* Positions, and gets through them, read the index in place. */
	if (pread_index)
		check_positions(s);
	/* A detached index cut short under an open store: the entries past the
	 * cut are an error naming the index file, not a crash (the mapping,
	 * which would fault, is not read). */
	if (pread_index && detached) {
		int errors = 0;

		assert_int_equal(truncate(detached, 400 * 1024), 0);
		for (unsigned i = 0; i < RADIX_BLOCKS; i++) {
			int rc;

			radix_block(&cid, data, &len, i);
			if ((rc = cairn_store_get(s, &got, &cid)) == 0)
				continue;
			assert_int_equal(rc, CAIRN_ECORRUPT);
			assert_non_null(strstr(cairn_error_last(), detached));
			assert_non_null(strstr(cairn_error_last(), "unexpected end of file"));
			errors++;
		}
		assert_true(errors > RADIX_BLOCKS / 4 && errors < RADIX_BLOCKS);
	}
	cairn_store_free(s);
	cairn_buf_free(&got);
}

static void test_radix_lookup(void **state)
{
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];

	(void)state;
	temp_path(path, sizeof(path), "radix-mh.car");
	check_radix_car(path, 2, CAIRN_CAR_INDEX_MH_SORTED, false, NULL);
	check_radix_car(path, 2, CAIRN_CAR_INDEX_MH_SORTED, true, NULL);
	temp_path(path, sizeof(path), "radix-sorted.car");
	check_radix_car(path, 2, CAIRN_CAR_INDEX_SORTED, false, NULL);
	check_radix_car(path, 2, CAIRN_CAR_INDEX_SORTED, true, NULL);
	temp_path(path, sizeof(path), "radix-v1.car");
	check_radix_car(path, 1, 0, false, NULL);
	check_radix_car(path, 1, 0, true, NULL);
	temp_path(ipath, sizeof(ipath), "radix-v1.carindex");
	check_radix_car(path, 1, 0, true, ipath);
	check_radix_car(path, 1, 0, false, ipath);
}

/* Whether this process maps `path` with the huge-page advice ("hg" in
 * its VmFlags): the mapping at file offset 0 (the payload) when
 * `payload`, else the one past it (the index). -1: no such mapping, or
 * /proc cannot tell. */
static int advised_huge(const char *path, bool payload)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[PATH_MAX + 256];
	bool in = false;
	int v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off;
		char perms[8];
		int name_at = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off, &name_at) == 4 &&
		    name_at) {
			char *name = line + name_at;

			name[strcspn(name, "\n")] = '\0';
			in = !strcmp(name, path) && (off == 0) == payload;
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			v = strstr(line, " hg") != NULL;
			in = false;
		}
	}
	fclose(f);
	return v;
}

/* The mapped index always asks for huge pages; the mapped blocks only
 * with opts.huge_pages (a server's random gets would read 2 MiB each). */
static void test_huge_pages_advice(void **state)
{
	char path[PATH_MAX + 64];
	cairn_car_writer_options wo = CAIRN_CAR_WRITER_OPTIONS_INIT;
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf got = CAIRN_BUF_INIT;
	cairn_car_writer *w;
	cairn_store *s;
	cairn_cid cid;
	uint8_t data[3000];
	size_t len;

	(void)state;
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK)) {
		print_message("no transparent huge pages here: the advice is not checked\n");
		return;
	}
	temp_path(path, sizeof(path), "huge.car");
	radix_block(&cid, data, &len, 0);
	assert_int_equal(cairn_car_writer_open(&w, path, &cid, 1, &wo), 0);
	for (unsigned i = 0; i < 2000; i++) {
		radix_block(&cid, data, &len, i);
		assert_int_equal(cairn_car_writer_put(w, &cid, data, len), 0);
	}
	assert_int_equal(cairn_car_writer_finish(w), 0);
	cairn_car_writer_free(w);
	for (int huge = 0; huge < 2; huge++) {
		opts.huge_pages = huge;
		assert_int_equal(cairn_store_car_open(&s, path, NULL, &opts), 0);
		assert_int_equal(advised_huge(path, false), 1);
		assert_int_equal(advised_huge(path, true), huge);
		radix_block(&cid, data, &len, 1999);
		assert_int_equal(cairn_store_get(s, &got, &cid), 0);
		assert_memory_equal(got.data, data, len);
		cairn_store_free(s);
		assert_int_equal(advised_huge(path, true), -1);
	}
	cairn_buf_free(&got);
	unlink(path);
}

/* Digests that bunch up (forged, the CAR read trusted): sixty radix slots
 * of twenty entries each (a table packed in bytes a line, tried once,
 * could not count them), the rest spread out; every block is found. */
static void test_radix_bunched(void **state)
{
	char path[PATH_MAX + 64];
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf car = CAIRN_BUF_INIT, got = CAIRN_BUF_INIT;
	const unsigned n = 5000; /* 2^13 slots */
	cairn_cid *cids;
	cairn_store *s;

	(void)state;
	assert_non_null(cids = calloc(n, sizeof(*cids)));
	for (unsigned i = 0; i < n; i++) {
		uint32_t slot = i < 1200 ? i / 20 : 60 + (i - 1200) * 2;
		uint32_t top = slot << 19 | ((i * 7u) & 0x7ffff);
		uint8_t digest[32];

		for (size_t k = 0; k < sizeof(digest); k++)
			digest[k] = (uint8_t)(i >> (k % 4 * 8));
		digest[0] = (uint8_t)(top >> 24);
		digest[1] = (uint8_t)(top >> 16);
		digest[2] = (uint8_t)(top >> 8);
		digest[3] = (uint8_t)top;
		assert_int_equal(cairn_cid_from_digest(&cids[i], 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
						       digest, sizeof(digest)), 0);
	}
	assert_int_equal(cairn_car_v1_header_encode(&car, &cids[0], 1), 0);
	for (unsigned i = 0; i < n; i++)
		put_section(&car, NULL, &cids[i], &i, sizeof(i));
	temp_path(path, sizeof(path), "bunched.car");
	write_file(path, &car);
	opts.trusted = true;
	assert_int_equal(cairn_store_car_open(&s, path, NULL, &opts), 0);
	for (unsigned i = 0; i < n; i++) {
		if (cairn_store_get(s, &got, &cids[i]))
			fail_msg("block %u: %s", i, cairn_error_last());
		assert_int_equal(got.len, sizeof(i));
		assert_memory_equal(got.data, &i, sizeof(i));
	}
	check_get_many(s, cids, n);
	cairn_store_free(s);
	cairn_buf_free(&car);
	cairn_buf_free(&got);
	free(cids);
}

/* A radix table only over entries in order, which the pass that builds
 * it checks: with two entries of a detached index swapped, the store
 * numbers nothing (no table); in order, every entry. */
static void test_radix_unsorted(void **state)
{
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
	cairn_buf car = CAIRN_BUF_INIT, idx = CAIRN_BUF_INIT;
	const unsigned n = 5000;
	cairn_car_reader *r;
	cairn_cid cid[2];
	cairn_store *s;

	(void)state;
	for (unsigned i = 0; i < n; i++) {
		cairn_cid c;

		assert_int_equal(cairn_cid_compute(&c, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
						   (const uint8_t *)&i, sizeof(i)), 0);
		if (i == 0)
			assert_int_equal(cairn_car_v1_header_encode(&car, &c, 1), 0);
		if (i == 100 || i == 4000)
			cid[i == 4000] = c;
		put_section(&car, NULL, &c, &i, sizeof(i));
	}
	temp_path(path, sizeof(path), "unsorted.car");
	write_file(path, &car);
	assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
	assert_int_equal(cairn_car_index_build(&idx, r, CAIRN_CAR_INDEX_MH_SORTED, false), 0);
	cairn_car_reader_free(r);
	temp_path(ipath, sizeof(ipath), "unsorted.carindex");
	write_file(ipath, &idx);
	assert_int_equal(cairn_store_car_open(&s, path, ipath, NULL), 0);
	assert_int_equal(cairn_store_positions(s), n);
	cairn_store_free(s);
	{
		uint8_t *a = memmem(idx.data, idx.len, cid[0].bytes + cid[0].digest_off, 32);
		uint8_t *b = memmem(idx.data, idx.len, cid[1].bytes + cid[1].digest_off, 32);
		uint8_t tmp[40];

		assert_non_null(a);
		assert_non_null(b);
		memcpy(tmp, a, 40);
		memcpy(a, b, 40);
		memcpy(b, tmp, 40);
	}
	write_file(ipath, &idx);
	assert_int_equal(cairn_store_car_open(&s, path, ipath, NULL), 0);
	assert_int_equal(cairn_store_positions(s), 0);
	cairn_store_free(s);
	cairn_buf_free(&car);
	cairn_buf_free(&idx);
}

/* An empty block, a block written twice, a CAR of nothing but its header. */
static void test_edge_cars(void **state)
{
	char path[PATH_MAX + 64];
	cairn_buf car = CAIRN_BUF_INIT, got = CAIRN_BUF_INIT;
	cairn_cid empty, twice;
	uint64_t size = 9;
	cairn_store *s;
	int n = 0;

	(void)state;
	assert_int_equal(cairn_cid_compute(&empty, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, "", 0), 0);
	assert_int_equal(cairn_cid_compute(&twice, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, "twice", 5),
			 0);
	assert_int_equal(cairn_car_v1_header_encode(&car, &empty, 1), 0);
	put_section(&car, NULL, &twice, "twice", 5);
	put_section(&car, NULL, &empty, "", 0);
	/* More copies than a lookup keeps on its stack. */
	for (int i = 0; i < 11; i++)
		put_section(&car, NULL, &twice, "twice", 5);
	temp_path(path, sizeof(path), "edges.car");
	write_file(path, &car);
	assert_int_equal(cairn_store_car_open(&s, path, NULL, NULL), 0);
	cairn_alloc_fail_after(1, false);
	assert_int_equal(cairn_store_get(s, &got, &twice), CAIRN_ENOMEM);
	cairn_alloc_fail_after(-1, false);
	assert_int_equal(cairn_store_get(s, &got, &empty), 0);
	assert_int_equal(got.len, 0);
	assert_int_equal(cairn_store_get_size(s, &size, &empty), 0);
	assert_int_equal(size, 0);
	assert_int_equal(cairn_store_get(s, &got, &twice), 0);
	assert_int_equal(got.len, 5);
	assert_memory_equal(got.data, "twice", 5);
	assert_int_equal(cairn_store_iterate(s, stop_at_three, &(int){0}), 77);
	cairn_store_free(s);

	/* The first copy spoilt: get, and get_many (which probes the section
	 * the index names first before any lookup), go on to the good one. */
	cairn_buf_clear(&car);
	assert_int_equal(cairn_car_v1_header_encode(&car, &empty, 1), 0);
	put_section(&car, NULL, &twice, "twicX", 5);
	put_section(&car, NULL, &twice, "twice", 5);
	write_file(path, &car);
	assert_int_equal(cairn_store_car_open(&s, path, NULL, NULL), 0);
	assert_int_equal(cairn_store_get(s, &got, &twice), 0);
	assert_memory_equal(got.data, "twice", 5);
	check_get_many(s, &twice, 1);
	cairn_store_free(s);

	/* Only a header: an empty index, an empty iteration, nothing found. */
	cairn_buf_clear(&car);
	assert_int_equal(cairn_car_v1_header_encode(&car, &empty, 1), 0);
	write_file(path, &car);
	assert_int_equal(cairn_store_car_open(&s, path, NULL, NULL), 0);
	assert_int_equal(cairn_store_get(s, &got, &empty), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_store_has(s, &twice), 0);
	assert_int_equal(cairn_store_iterate(s, stop_at_three, &n), 0);
	assert_int_equal(n, 0);
	cairn_store_free(s);
	cairn_buf_free(&car);
	cairn_buf_free(&got);
}

/* ---------------------------------------------------------- open errors */

static void test_open_errors(void **state)
{
	static const char *bad[] = {
		"badheaderlength.car", "badsectionlength.car", "sample-corrupt-pragma.car",
		"sample-rootless-v42.car", "sample-v2-corrupt-data-and-index.car",
		"sample-v1-tailing-corrupt-section.car",
		/* Its index has no codec varint: refused rather than guessed at. */
		"carv2-basic.car",
		/* Zero padding, without zero_length_as_eof. */
		"sample-v1-with-zero-len-section.car",
	};
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
	cairn_store *s = (cairn_store *)1;
	int rc;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fixture(path, sizeof(path), bad[i]);
		rc = cairn_store_car_open(&s, path, NULL, NULL);
		if (rc == 0)
			fail_msg("%s opened", bad[i]);
		assert_true(rc == CAIRN_ECORRUPT || rc == CAIRN_ETOOBIG || rc == CAIRN_EUNSUPPORTED);
		assert_null(s);
		assert_non_null(strstr(cairn_error_last(), bad[i]));
	}
	fixture(path, sizeof(path), "no-such.car");
	assert_int_equal(cairn_store_car_open(&s, path, NULL, NULL), CAIRN_ENOTFOUND);
	assert_null(s);
	/* A detached index that is missing, or is not an index. */
	fixture(path, sizeof(path), "sample-v1.car");
	fixture(ipath, sizeof(ipath), "no-such.carindex");
	assert_int_not_equal(cairn_store_car_open(&s, path, ipath, NULL), 0);
	assert_null(s);
	fixture(ipath, sizeof(ipath), "carv1-basic.car");
	rc = cairn_store_car_open(&s, path, ipath, NULL);
	assert_true(rc == CAIRN_ECORRUPT || rc == CAIRN_EUNSUPPORTED); /* not a known index codec */
	assert_null(s);
	assert_int_equal(cairn_store_car_open(&s, NULL, NULL, NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_store_car_open(NULL, path, NULL, NULL), CAIRN_EINVAL);
	cairn_store_free(NULL);
}

/* A limit below a section's size: the open builds no index over it, and
 * an existing index leads to a clean CAIRN_ETOOBIG on get. */
static void test_section_limit(void **state)
{
	char path[PATH_MAX + 64];
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_buf got = CAIRN_BUF_INIT;
	cairn_store *s;
	table t;

	(void)state;
	opts.max_section_size = 100;
	fixture(path, sizeof(path), "sample-v1.car");
	assert_int_equal(cairn_store_car_open(&s, path, NULL, &opts), CAIRN_ETOOBIG);
	fixture(path, sizeof(path), "sample-wrapped-v2.car");
	assert_int_equal(cairn_store_car_open(&s, path, NULL, &opts), 0);
	load_table(&t, "sample-wrapped-v2.car");
	assert_true(t.rows[0].len > 100);
	assert_int_equal(cairn_store_get(s, &got, &t.rows[0].cid), CAIRN_ETOOBIG);
	free_table(&t);
	cairn_buf_free(&got);
	cairn_store_free(s);
}

/* ------------------------------------------------------ concurrent readers */

enum { THREADS = 4, ROUNDS = 6 };

typedef struct {
	cairn_store *s;
	const table *t;
	const cairn_buf *blocks; /* the expected bytes, by row */
	int id;
	size_t done;
	char failure[512];
} worker;

static void *reader_thread(void *arg)
{
	worker *wk = arg;
	cairn_buf got = CAIRN_BUF_INIT;

	for (int round = 0; round < ROUNDS && !wk->failure[0]; round++) {
		/* Each thread starts at a different row, so they do not move in step. */
		for (size_t k = 0; k < wk->t->n && !wk->failure[0]; k++) {
			size_t i = (k + (size_t)wk->id * wk->t->n / THREADS) % wk->t->n;
			const row *w = &wk->t->rows[i];
			uint64_t size = 0;
			int rc;

			if ((rc = cairn_store_get(wk->s, &got, &w->cid)))
				snprintf(wk->failure, sizeof(wk->failure), "get %s: %d %s", w->str, rc,
					 cairn_error_last());
			else if (got.len != wk->blocks[i].len ||
				 memcmp(got.data, wk->blocks[i].data, got.len))
				snprintf(wk->failure, sizeof(wk->failure), "get %s: wrong bytes", w->str);
			else if (cairn_store_has(wk->s, &w->cid) != 1)
				snprintf(wk->failure, sizeof(wk->failure), "has %s", w->str);
			else if (cairn_store_get_size(wk->s, &size, &w->cid) || size != w->block_len)
				snprintf(wk->failure, sizeof(wk->failure), "get_size %s", w->str);
			wk->done++;
		}
	}
	cairn_buf_free(&got);
	return NULL;
}

static void *iterate_thread(void *arg)
{
	worker *wk = arg;

	for (int round = 0; round < ROUNDS && !wk->failure[0]; round++) {
		order o = {wk->t, 0, false};
		int rc = cairn_store_iterate(wk->s, check_order, &o);

		if (rc || o.bad || o.n != wk->t->n)
			snprintf(wk->failure, sizeof(wk->failure), "iterate: %d (%s)", rc,
				 cairn_error_last());
		wk->done++;
	}
	return NULL;
}

static void check_concurrent(const char *car, const char *index)
{
	char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
	pthread_t th[THREADS + 1];
	worker wk[THREADS + 1];
	cairn_buf *blocks;
	cairn_store *s;
	table t;
	ref rf;

	fixture(path, sizeof(path), car);
	if (index)
		fixture(ipath, sizeof(ipath), index);
	assert_int_equal(cairn_store_car_open(&s, path, index ? ipath : NULL, NULL), 0);
	load_table(&t, car);
	blocks = calloc(t.n, sizeof(*blocks));
	assert_non_null(blocks);
	ref_open(&rf, path);
	for (size_t i = 0; i < t.n; i++)
		ref_block(&rf, &blocks[i], t.rows[i].rel);
	ref_close(&rf);
	for (int i = 0; i <= THREADS; i++) {
		wk[i] = (worker){s, &t, blocks, i, 0, ""};
		assert_int_equal(pthread_create(&th[i], NULL, i < THREADS ? reader_thread : iterate_thread,
						&wk[i]), 0);
	}
	for (int i = 0; i <= THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i <= THREADS; i++) {
		if (wk[i].failure[0])
			fail_msg("%s thread %d: %s", car, i, wk[i].failure);
		assert_int_equal(wk[i].done, i < THREADS ? ROUNDS * t.n : ROUNDS);
	}
	for (size_t i = 0; i < t.n; i++)
		cairn_buf_free(&blocks[i]);
	free(blocks);
	free_table(&t);
	cairn_store_free(s);
}

static void test_concurrent(void **state)
{
	(void)state;
	check_concurrent("sample-v1.car", NULL);
	check_concurrent("sample-v1.car", "sample-index.carindex");
	check_concurrent("sample-wrapped-v2.car", NULL);
}

/* ------------------------------------------------ allocation failures */

static void test_alloc_failure(void **state)
{
	static const source cases[] = {
		{"carv1-basic.car", NULL, false},
		{"sample-unixfs-v2.car", NULL, false},
		{"sample-rw-bs-v2.car", NULL, false},
		{"sample-v2-indexless.car", "sample-multihash-index-sorted.carindex", false},
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char path[PATH_MAX + 64], ipath[PATH_MAX + 64];
		table t;

		fixture(path, sizeof(path), cases[c].car);
		if (cases[c].index)
			fixture(ipath, sizeof(ipath), cases[c].index);
		load_table(&t, cases[c].car);
		for (int sticky = 0; sticky < 2; sticky++) {
			int clean = 0;

			for (long n = 1; clean < 5; n++) {
				cairn_buf got = CAIRN_BUF_INIT;
				cairn_store *s = NULL;
				int rc;

				assert_true(n < 10000);
				cairn_alloc_fail_after(n, sticky);
				rc = cairn_store_car_open(&s, path, cases[c].index ? ipath : NULL, NULL);
				for (size_t i = 0; !rc && i < t.n; i++)
					rc = cairn_store_get(s, &got, &t.rows[i].cid);
				if (!rc)
					rc = cairn_store_iterate(s, stop_at_three, &(int){0}) == 77 ?
						0 : cairn_error_last_code();
				cairn_alloc_fail_after(-1, false);
				if (rc && rc != CAIRN_ENOMEM)
					fail_msg("%s: allocation %ld failing: %d (%s)", cases[c].car, n, rc,
						 cairn_error_last());
				clean = rc ? 0 : clean + 1;
				cairn_buf_free(&got);
				cairn_store_free(s);
			}
		}
		free_table(&t);
	}
}

/* ---------------------------------------------------------------- main */

static int rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[PATH_MAX + 300];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	return rmdir(tmpdir);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-store-car-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return rm_tmpdir();
}

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

int main(void)
{
	const char *env = getenv("CAIRN_FIXTURES");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_cid_versions),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_tampered_cid),
		cmocka_unit_test(test_wrong_index),
		cmocka_unit_test(test_index_sorted_same_digest),
		cmocka_unit_test(test_radix_lookup),
		cmocka_unit_test(test_huge_pages_advice),
		cmocka_unit_test(test_radix_bunched),
		cmocka_unit_test(test_radix_unsorted),
		cmocka_unit_test_teardown(test_edge_cars, teardown),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_section_limit),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
	};

	if (!env || !*env) {
		fprintf(stderr, "CAIRN_FIXTURES is not set\n");
		return 1;
	}
	snprintf(cars, sizeof(cars), "%s/car", env);
	return cmocka_run_group_tests_name("store/car", tests, group_setup, group_teardown);
}
