/* test_carrw.c: unit tests for the read-write CAR store: put/get while
 * writing, dedup, roots in the room, finalize, the torn-tail matrix, failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

static char tmpdir[256];     /* removed with everything in it at the end */

/* ---------------------------------------------------------------- helpers */

typedef struct {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
} blk;

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A raw block of `len` bytes, different for every seed. */
static void make_block(blk *b, uint64_t seed, size_t len)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	b->len = len;
	b->data = malloc(len ? len : 1);
	assert_non_null(b->data);
	for (size_t i = 0; i < len; i++)
		b->data[i] = (uint8_t)next_rand(&x);
	assert_int_equal(cairn_cid_compute(&b->cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, b->data, len), 0);
}

static void free_blocks(blk *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(b[i].data);
}

static void tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static cairn_carrw_options options(cairn_sync_policy sync, uint32_t room)
{
	cairn_carrw_options o = CAIRN_CARRW_OPTIONS_INIT;

	o.sync = sync;
	o.root_room = room;
	return o;
}

static cairn_store *open_rw(const char *path, cairn_carrw_resume *rep, const cairn_cid *roots,
			    size_t nroots, const cairn_carrw_options *o)
{
	cairn_store *s = NULL;

	if (cairn_store_carrw_open(&s, rep, path, roots, nroots, o))
		fail_msg("open %s: %s", path, cairn_error_last());
	assert_string_equal(cairn_store_name(s), "car-rw");
	return s;
}

static void put_ok(cairn_store *s, const blk *b)
{
	if (cairn_store_put(s, &b->cid, b->data, b->len))
		fail_msg("put: %s", cairn_error_last());
}

static void expect_block(cairn_store *s, const blk *b)
{
	cairn_buf out = CAIRN_BUF_INIT;
	uint64_t size = 0;

	assert_int_equal(cairn_store_has(s, &b->cid), 1);
	if (cairn_store_get(s, &out, &b->cid))
		fail_msg("get: %s", cairn_error_last());
	assert_int_equal(out.len, b->len);
	if (b->len)
		assert_memory_equal(out.data, b->data, b->len);
	assert_int_equal(cairn_store_get_size(s, &size, &b->cid), 0);
	assert_int_equal(size, b->len);
	cairn_buf_free(&out);
}

static void expect_missing(cairn_store *s, const blk *b)
{
	cairn_buf out = CAIRN_BUF_INIT;

	assert_int_equal(cairn_store_has(s, &b->cid), 0);
	assert_int_equal(cairn_store_get(s, &out, &b->cid), CAIRN_ENOTFOUND);
	cairn_buf_free(&out);
}

static void file_bytes(cairn_buf *out, const char *path)
{
	cairn_buf_clear(out);
	assert_int_equal(cairn_file_read_all(out, path, 1 << 26), 0);
}

static void write_bytes(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(cairn_file_write_full(fd, p, n, path), 0);
	close(fd);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* The bytes a section takes: varint, CID, block. */
static uint64_t section_len(const blk *b)
{
	return cairn_varint_size(b->cid.len + b->len) + b->cid.len + b->len;
}

/* The finalized CAR at `path` holds exactly `want` in order with `roots`:
 * read back by the reader, hashed by cairn_car_verify, every block found by
 * the index at its section's offset. */
static void verify_car(const char *path, blk *const *want, size_t n, const cairn_cid *roots,
		       size_t nroots, uint32_t room)
{
	const cairn_car_v2_header *h;
	cairn_car_reader *r;
	cairn_car_section sec;
	cairn_car_stats st;
	cairn_car_index *idx;
	uint64_t *offsets = calloc(n + 1, sizeof(*offsets));
	int rc;

	assert_non_null(offsets);
	if (cairn_car_reader_open(&r, path, NULL))
		fail_msg("%s: %s", path, cairn_error_last());
	assert_int_equal(cairn_car_reader_version(r), 2);
	assert_non_null(h = cairn_car_reader_v2_header(r));
	assert_int_equal(cairn_car_reader_root_count(r), nroots);
	for (size_t i = 0; i < nroots; i++)
		assert_true(cairn_cid_equal(&cairn_car_reader_roots(r)[i], &roots[i]));
	/* The CARv1 header ends where the room does. */
	assert_int_equal(h->data_offset + cairn_car_reader_header_len(r),
			 CAIRN_CAR_V2_PREFIX_LEN + room);
	for (size_t i = 0; i < n; i++) {
		if ((rc = cairn_car_reader_next(r, &sec, true)) != 1)
			fail_msg("%s: section %zu: %d %s", path, i, rc, cairn_error_last());
		assert_true(cairn_cid_equal(&sec.cid, &want[i]->cid));
		assert_int_equal(sec.block_len, want[i]->len);
		if (want[i]->len)
			assert_memory_equal(sec.block, want[i]->data, want[i]->len);
		offsets[i] = sec.offset;
	}
	assert_int_equal(cairn_car_reader_next(r, &sec, false), 0);
	cairn_car_reader_free(r);

	assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
	if (cairn_car_verify(&st, r, 1, NULL, NULL, NULL))
		fail_msg("verify %s: %s", path, cairn_error_last());
	assert_int_equal(st.blocks, n);
	h = cairn_car_reader_v2_header(r);
	assert_true(h->index_offset != 0);
	if (cairn_car_index_open(&idx, path, h->index_offset))
		fail_msg("index %s: %s", path, cairn_error_last());
	assert_int_equal(cairn_car_index_check(idx), 0);
	assert_int_equal(cairn_car_index_count(idx), n);
	for (size_t i = 0; i < n; i++) {
		uint64_t off[2];

		assert_int_equal(cairn_car_index_find(idx, &want[i]->cid, off, 2), 1);
		assert_int_equal(off[0], offsets[i]);
	}
	cairn_car_index_free(idx);
	cairn_car_reader_free(r);
	free(offsets);
}

typedef struct {
	cairn_cid cids[256];
	size_t n;
} cid_list;

static int collect(const cairn_cid *cid, void *payload)
{
	cid_list *l = payload;

	assert_true(l->n < 256);
	l->cids[l->n++] = *cid;
	return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_put_get_has(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_FLUSH, 256);
	blk b[60], other;
	cairn_cid v1pb;
	cid_list seen = {.n = 0};
	cairn_store *s;

	(void)state;
	tmp_path(path, sizeof(path), "putget.car");
	unlink(path);
	for (size_t i = 0; i < 60; i++)
		make_block(&b[i], i, i % 10 == 9 ? 300000 + i : 1 + i * 37);
	make_block(&other, 999, 10);
	s = open_rw(path, NULL, NULL, 0, &o);
	/* Interleaved: some blocks are read from the buffer, some from the file. */
	for (size_t i = 0; i < 60; i++) {
		put_ok(s, &b[i]);
		expect_block(s, &b[i]);
		expect_block(s, &b[i / 2]);
	}
	for (size_t i = 0; i < 60; i++)
		expect_block(s, &b[i]);
	expect_missing(s, &other);
	/* Matching is by multihash: the same digest under dag-pb finds it. */
	assert_int_equal(cairn_cid_from_digest(&v1pb, 1, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256,
					       b[3].cid.bytes + b[3].cid.digest_off, 32), 0);
	assert_int_equal(cairn_store_has(s, &v1pb), 1);
	assert_int_equal(cairn_store_iterate(s, collect, &seen), 0);
	assert_int_equal(seen.n, 60);
	for (size_t i = 0; i < 60; i++)
		assert_true(cairn_cid_equal(&seen.cids[i], &b[i].cid));
	assert_int_equal(cairn_store_del(s, &b[0].cid), CAIRN_EUNSUPPORTED);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	cairn_store_free(s);
	free_blocks(b, 60);
	free_blocks(&other, 1);
}

static void test_dedup(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_NONE, 256);
	blk b[3];
	blk *want[3];
	cairn_cid pb;
	cairn_block many[4];
	cairn_store *s;
	uint64_t before;

	(void)state;
	tmp_path(path, sizeof(path), "dedup.car");
	unlink(path);
	for (size_t i = 0; i < 3; i++) {
		make_block(&b[i], 100 + i, 50 + i);
		want[i] = &b[i];
	}
	s = open_rw(path, NULL, NULL, 0, &o);
	put_ok(s, &b[0]);
	put_ok(s, &b[0]);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	before = file_size(path);
	/* The same multihash as dag-pb, and as CIDv0: not written again. */
	assert_int_equal(cairn_cid_from_digest(&pb, 1, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256,
					       b[0].cid.bytes + b[0].cid.digest_off, 32), 0);
	assert_int_equal(cairn_store_put(s, &pb, b[0].data, b[0].len), 0);
	assert_int_equal(cairn_cid_convert(&pb, &pb, 0), 0);
	assert_int_equal(cairn_store_put(s, &pb, b[0].data, b[0].len), 0);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	assert_int_equal(file_size(path), before);
	/* Duplicates inside one batch, and against what is there. */
	many[0] = (cairn_block){b[1].cid, b[1].data, b[1].len};
	many[1] = (cairn_block){b[1].cid, b[1].data, b[1].len};
	many[2] = (cairn_block){b[0].cid, b[0].data, b[0].len};
	many[3] = (cairn_block){b[2].cid, b[2].data, b[2].len};
	assert_int_equal(cairn_store_put_many(s, many, 4), 0);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 3, NULL, 0, 256);
	free_blocks(b, 3);
}

static void finalize_roundtrip(uint64_t codec)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_FLUSH, 300);
	blk b[30], extra;
	blk *want[30];
	cairn_cid roots[2];
	cairn_carrw_resume rep;
	cairn_store *s;

	o.index_codec = codec;
	tmp_path(path, sizeof(path), "final.car");
	unlink(path);
	for (size_t i = 0; i < 30; i++) {
		make_block(&b[i], 200 + i, (i * 7919) % 5000);
		want[i] = &b[i];
	}
	make_block(&extra, 299, 5);
	roots[0] = b[0].cid;
	roots[1] = b[29].cid;
	s = open_rw(path, NULL, roots, 2, &o);
	for (size_t i = 0; i < 30; i++)
		put_ok(s, &b[i]);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	/* Read-only now, still readable. */
	assert_int_equal(cairn_store_put(s, &extra.cid, extra.data, extra.len), CAIRN_EEXISTS);
	assert_int_equal(cairn_store_carrw_set_roots(s, roots, 1), CAIRN_EEXISTS);
	assert_int_equal(cairn_store_carrw_finalize(s), CAIRN_EEXISTS);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	for (size_t i = 0; i < 30; i++)
		expect_block(s, &b[i]);
	cairn_store_free(s);
	verify_car(path, want, 30, roots, 2, 300);

	/* A finalized file reopens read-only, whatever root_room is asked. */
	o.root_room = 1000;
	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, 30);
	assert_int_equal(rep.cut_bytes, 0);
	for (size_t i = 0; i < 30; i++)
		expect_block(s, &b[i]);
	expect_missing(s, &extra);
	assert_int_equal(cairn_store_put(s, &extra.cid, extra.data, extra.len), CAIRN_EEXISTS);
	assert_int_equal(cairn_store_carrw_finalize(s), CAIRN_EEXISTS);
	cairn_store_free(s);
	s = open_rw(path, NULL, roots, 2, &o);
	cairn_store_free(s);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, roots, 1, &o), CAIRN_EINVAL);
	assert_null(s);
	verify_car(path, want, 30, roots, 2, 300);
	free_blocks(b, 30);
	free_blocks(&extra, 1);
}

static void test_finalize_mh_sorted(void **state)
{
	(void)state;
	finalize_roundtrip(CAIRN_CAR_INDEX_MH_SORTED);
}

static void test_finalize_sorted(void **state)
{
	(void)state;
	finalize_roundtrip(CAIRN_CAR_INDEX_SORTED);
}

/* The most roots of `b` whose header fits `room`. */
static size_t roots_that_fit(const cairn_cid *roots, size_t max, uint32_t room)
{
	size_t k = 0;

	for (;;) {
		cairn_buf h = CAIRN_BUF_INIT;
		size_t len;

		if (k + 1 > max)
			return k;
		assert_int_equal(cairn_car_v1_header_encode(&h, roots, k + 1), 0);
		len = h.len;
		cairn_buf_free(&h);
		if (len > room)
			return k;
		k++;
	}
}

static void test_set_roots(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_EVERY_PUT, 256);
	cairn_cid roots[16];
	blk b[16];
	blk *want[16];
	cairn_buf h = CAIRN_BUF_INIT;
	cairn_carrw_resume rep;
	cairn_store *s;
	size_t k;

	(void)state;
	tmp_path(path, sizeof(path), "roots.car");
	unlink(path);
	for (size_t i = 0; i < 16; i++) {
		make_block(&b[i], 300 + i, 20 + i);
		roots[i] = b[i].cid;
		want[i] = &b[i];
	}
	k = roots_that_fit(roots, 16, 256);
	assert_true(k >= 3 && k < 16);
	s = open_rw(path, NULL, NULL, 0, &o);
	for (size_t i = 0; i < 16; i++)
		put_ok(s, &b[i]);
	/* Growing within the room, up to the last root that fits. */
	for (size_t n = 0; n <= k; n++)
		assert_int_equal(cairn_store_carrw_set_roots(s, roots, n), 0);
	assert_int_equal(cairn_store_carrw_set_roots(s, roots, k + 1), CAIRN_ETOOBIG);
	assert_non_null(strstr(cairn_error_last(), "root_room is 256"));
	/* Refused without harm: still usable, roots unchanged. */
	put_ok(s, &b[0]);
	assert_int_equal(cairn_store_carrw_set_roots(s, roots, 2), 0);
	cairn_store_free(s);

	/* The roots survive a reopen; NULL keeps them, new ones replace them. */
	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, 16);
	assert_int_equal(rep.cut_bytes, 0);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 16, roots, 2, 256);

	unlink(path);
	s = open_rw(path, NULL, roots, 1, &o);
	for (size_t i = 0; i < 16; i++)
		put_ok(s, &b[i]);
	cairn_store_free(s);
	s = open_rw(path, &rep, roots + 3, 3, &o);
	assert_int_equal(rep.blocks, 16);
	cairn_store_free(s);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, roots, k + 1, &o), CAIRN_ETOOBIG);
	assert_null(s);
	s = open_rw(path, &rep, roots + 3, 3, &o);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 16, roots + 3, 3, 256);

	/* A room exactly the size of the header with k roots. */
	assert_int_equal(cairn_car_v1_header_encode(&h, roots, k), 0);
	o.root_room = (uint32_t)h.len;
	unlink(path);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, roots, k + 1, &o), CAIRN_ETOOBIG);
	assert_int_equal(access(path, F_OK), -1);
	s = open_rw(path, NULL, roots, k, &o);
	put_ok(s, &b[0]);
	assert_int_equal(cairn_store_carrw_set_roots(s, roots, k + 1), CAIRN_ETOOBIG);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 1, roots, k, (uint32_t)h.len);

	/* Too small for even an empty header. */
	o.root_room = 10;
	unlink(path);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_ETOOBIG);
	cairn_buf_free(&h);
	free_blocks(b, 16);
}

static void test_zero_and_one_block(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_FLUSH, 256);
	cairn_carrw_resume rep;
	cairn_store *s;
	blk b;
	blk *want[1] = {&b};

	(void)state;
	make_block(&b, 400, 0); /* an empty block, too */
	tmp_path(path, sizeof(path), "zero.car");
	unlink(path);
	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, 0);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 0, NULL, 0, 256);

	tmp_path(path, sizeof(path), "one.car");
	unlink(path);
	s = open_rw(path, NULL, &b.cid, 1, &o);
	put_ok(s, &b);
	expect_block(s, &b);
	cairn_store_free(s);
	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, 1);
	expect_block(s, &b);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 1, &b.cid, 1, 256);
	free_blocks(&b, 1);
}

/* ------------------------------------------------------------- torn tails */

#define NMAT 47

/* 40 small blocks, a few larger ones (one with a 3-byte length varint), then
 * the last two: 91 bytes (a section of 127, the largest 1-byte varint) and
 * 1000 bytes (a 2-byte varint). Written with SYNC_EVERY_PUT. */
static void write_matrix_file(const char *path, blk *b, uint64_t *ends, uint32_t room,
			      size_t last_len)
{
	cairn_carrw_options o = options(CAIRN_SYNC_EVERY_PUT, room);
	uint64_t at = CAIRN_CAR_V2_PREFIX_LEN + room;
	cairn_store *s;

	for (size_t i = 0; i < NMAT; i++) {
		size_t len = i < 40 ? 1 + (i * 53) % 200 : i == 40 ? 5000 : i == 41 ? 70000 :
			     i == 42 ? 16000 : i == 43 ? 130 : i == 44 ? 3 : i == 45 ? 91 : last_len;

		make_block(&b[i], 500 + i, len);
	}
	unlink(path);
	s = open_rw(path, NULL, &b[0].cid, 1, &o);
	for (size_t i = 0; i < NMAT; i++) {
		put_ok(s, &b[i]);
		at += section_len(&b[i]);
		ends[i] = at;
		assert_int_equal(file_size(path), at);
	}
	cairn_store_free(s);
}

/* Reopens the file, which should now hold exactly the first `keep` blocks,
 * appends two new blocks and the first one lost, finalizes and verifies. */
static void resume_and_finish(const char *path, blk *b, size_t keep, uint64_t cut_at,
			      uint64_t size, blk *fresh, uint32_t room)
{
	cairn_carrw_options o = options(CAIRN_SYNC_NONE, room);
	blk *want[NMAT + 3];
	cairn_carrw_resume rep;
	cairn_store *s;
	size_t n = 0;

	s = open_rw(path, &rep, NULL, 0, &o);
	if (rep.blocks != keep || rep.cut_at != cut_at || rep.cut_bytes != size - cut_at)
		fail_msg("%s cut at %llu: kept %llu cut %llu at %llu; want %zu at %llu", path,
			 (unsigned long long)size, (unsigned long long)rep.blocks,
			 (unsigned long long)rep.cut_bytes, (unsigned long long)rep.cut_at, keep,
			 (unsigned long long)cut_at);
	assert_int_equal(file_size(path), cut_at);
	for (size_t i = 0; i < NMAT; i++) {
		if (i < keep)
			want[n++] = &b[i];
		assert_int_equal(cairn_store_has(s, &b[i].cid), i < keep);
	}
	if (keep)
		expect_block(s, &b[keep - 1]);
	put_ok(s, &fresh[0]);
	want[n++] = &fresh[0];
	if (keep < NMAT) {
		put_ok(s, &b[keep]);
		want[n++] = &b[keep];
	}
	put_ok(s, &fresh[1]);
	want[n++] = &fresh[1];
	if (cairn_store_carrw_finalize(s))
		fail_msg("finalize: %s", cairn_error_last());
	cairn_store_free(s);
	verify_car(path, want, n, &b[0].cid, 1, room);
}

static void test_torn_tail_matrix(void **state)
{
	char orig[PATH_MAX], path[PATH_MAX];
	blk b[NMAT], fresh[2];
	uint64_t ends[NMAT], from;
	cairn_buf bytes = CAIRN_BUF_INIT;
	size_t cuts = 0;

	(void)state;
	tmp_path(orig, sizeof(orig), "matrix.car");
	tmp_path(path, sizeof(path), "matrix-cut.car");
	write_matrix_file(orig, b, ends, 256, 1000);
	make_block(&fresh[0], 600, 77);
	make_block(&fresh[1], 601, 4000);
	file_bytes(&bytes, orig);
	assert_int_equal(bytes.len, ends[NMAT - 1]);
	assert_int_equal(section_len(&b[NMAT - 2]), 1 + 127);
	assert_int_equal(cairn_varint_size(b[NMAT - 1].cid.len + b[NMAT - 1].len), 2);
	/* Every cut from the start of the second-last section to the end. */
	from = ends[NMAT - 3];
	for (uint64_t cut = from; cut <= bytes.len; cut++, cuts++) {
		size_t keep = 0;

		while (keep < NMAT && ends[keep] <= cut)
			keep++;
		write_bytes(path, bytes.data, (size_t)cut);
		resume_and_finish(path, b, keep, keep ? ends[keep - 1] : 0, cut, fresh, 256);
	}
	assert_int_equal(cuts, 128 + 1038 + 1);
	/* A cut inside each earlier section, and at the sections' start. */
	for (size_t i = 0; i < NMAT - 2; i++) {
		uint64_t start = i ? ends[i - 1] : CAIRN_CAR_V2_PREFIX_LEN + 256;

		write_bytes(path, bytes.data, (size_t)(start + (ends[i] - start) / 2));
		resume_and_finish(path, b, i, start, start + (ends[i] - start) / 2, fresh, 256);
	}
	write_bytes(path, bytes.data, CAIRN_CAR_V2_PREFIX_LEN + 256);
	resume_and_finish(path, b, 0, CAIRN_CAR_V2_PREFIX_LEN + 256, CAIRN_CAR_V2_PREFIX_LEN + 256,
			  fresh, 256);
	cairn_buf_free(&bytes);
	free_blocks(b, NMAT);
	free_blocks(fresh, 2);
}

/* Flipping any byte of the last section's length, CID or block makes the
 * resume cut at that section. */
static void test_flipped_bytes(void **state)
{
	char orig[PATH_MAX], path[PATH_MAX];
	blk b[NMAT], fresh[2];
	uint64_t ends[NMAT], start;
	cairn_buf bytes = CAIRN_BUF_INIT;
	size_t head, flips = 0;

	(void)state;
	tmp_path(orig, sizeof(orig), "flip.car");
	tmp_path(path, sizeof(path), "flip-cut.car");
	/* The last block 20000 bytes: a 3-byte length varint. */
	write_matrix_file(orig, b, ends, 256, 20000);
	make_block(&fresh[0], 700, 1);
	make_block(&fresh[1], 701, 100);
	file_bytes(&bytes, orig);
	start = ends[NMAT - 2];
	head = cairn_varint_size(b[NMAT - 1].cid.len + b[NMAT - 1].len) + b[NMAT - 1].cid.len;
	assert_int_equal(head, 3 + 36);
	for (uint64_t at = start; at < bytes.len; at++) {
		uint64_t k = at - start;

		if (k >= head && k != head + 1 && k != head + 10000 && at != bytes.len - 1)
			continue;
		bytes.data[at] ^= 0xff;
		write_bytes(path, bytes.data, bytes.len);
		bytes.data[at] ^= 0xff;
		resume_and_finish(path, b, NMAT - 1, start, bytes.len, fresh, 256);
		flips++;
	}
	assert_int_equal(flips, head + 3);
	/* A flip in the middle of the file cuts there: what follows is lost. */
	bytes.data[ends[20] + 40] ^= 0x01;
	write_bytes(path, bytes.data, bytes.len);
	resume_and_finish(path, b, 21, ends[20], bytes.len, fresh, 256);
	cairn_buf_free(&bytes);
	free_blocks(b, NMAT);
	free_blocks(fresh, 2);
}

static void test_garbage_after(void **state)
{
	static const size_t lens[] = {1, 2, 9, 40, 100, 1000, 70000};
	char orig[PATH_MAX], path[PATH_MAX];
	blk b[NMAT], fresh[2];
	uint64_t ends[NMAT];
	cairn_buf bytes = CAIRN_BUF_INIT;

	(void)state;
	tmp_path(orig, sizeof(orig), "garbage.car");
	tmp_path(path, sizeof(path), "garbage-cut.car");
	write_matrix_file(orig, b, ends, 256, 1000);
	make_block(&fresh[0], 800, 10);
	make_block(&fresh[1], 801, 11);
	file_bytes(&bytes, orig);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int kind = 0; kind < 3; kind++) {
			cairn_buf g = CAIRN_BUF_INIT;
			uint64_t x = 12345 + i;

			cairn_buf_append(&g, bytes.data, bytes.len);
			for (size_t j = 0; j < lens[i]; j++)
				cairn_buf_putc(&g, kind == 0 ? 0 : kind == 1 ? (uint8_t)next_rand(&x)
					       : bytes.data[ends[5] + j % 50]);
			write_bytes(path, g.data, g.len);
			resume_and_finish(path, b, NMAT, bytes.len, g.len, fresh, 256);
			cairn_buf_free(&g);
		}
	}
	/* An index left by a finalize cut short before its header: cut too. */
	{
		cairn_carrw_options o = options(CAIRN_SYNC_NONE, 256);
		static const uint8_t zeros[CAIRN_CAR_V2_HEADER_LEN];
		cairn_store *s;
		int fd;

		write_bytes(path, bytes.data, bytes.len);
		s = open_rw(path, NULL, NULL, 0, &o);
		assert_int_equal(cairn_store_carrw_finalize(s), 0);
		cairn_store_free(s);
		assert_true(file_size(path) > bytes.len);
		fd = open(path, O_WRONLY);
		assert_int_equal(cairn_file_pwrite_full(fd, zeros, sizeof(zeros), CAIRN_CAR_PRAGMA_LEN, path), 0);
		close(fd);
		resume_and_finish(path, b, NMAT, bytes.len, file_size(path), fresh, 256);
	}
	cairn_buf_free(&bytes);
	free_blocks(b, NMAT);
	free_blocks(fresh, 2);
}

static void test_room_mismatch_and_damage(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_FLUSH, 256);
	blk b[3];
	blk *want[3] = {&b[0], &b[1], &b[2]};
	cairn_buf h = CAIRN_BUF_INIT;
	cairn_carrw_resume rep;
	cairn_store *s;
	int fd;

	(void)state;
	tmp_path(path, sizeof(path), "room.car");
	unlink(path);
	for (size_t i = 0; i < 3; i++)
		make_block(&b[i], 900 + i, 100 * i + 1);
	s = open_rw(path, NULL, &b[0].cid, 1, &o);
	for (size_t i = 0; i < 3; i++)
		put_ok(s, &b[i]);
	cairn_store_free(s);
	o.root_room = 512;
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "root_room 256"));
	o.root_room = 100;
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "root_room 256"));
	o.root_room = 256;

	/* A torn room (its CBOR map head): refused without roots, rewritten
	 * with them. */
	assert_int_equal(cairn_car_v1_header_encode(&h, &b[0].cid, 1), 0);
	fd = open(path, O_WRONLY);
	assert_int_equal(cairn_file_pwrite_full(fd, "\x7f\x7f\x7f", 3,
						CAIRN_CAR_V2_PREFIX_LEN + 256 - h.len + 1, path), 0);
	close(fd);
	cairn_buf_free(&h);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_ECORRUPT);
	s = open_rw(path, &rep, &b[1].cid, 1, &o);
	assert_int_equal(rep.blocks, 3);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 3, &b[1].cid, 1, 256);

	/* Not a CAR at all. */
	write_bytes(path, (const uint8_t *)"hello, this is not a CAR file at all, not even close to it.", 60);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_ECORRUPT);
	/* An empty file is taken as new. */
	write_bytes(path, (const uint8_t *)"", 0);
	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, 0);
	put_ok(s, &b[2]);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want + 2, 1, NULL, 0, 256);
	free_blocks(b, 3);
}

static void test_bad_arguments(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_NONE, 256);
	static const cairn_store_ops fake_ops = {CAIRN_STORE_OPS_VERSION, "fake", NULL, NULL, NULL,
						 NULL, NULL, NULL, NULL, NULL, NULL};
	cairn_store fake = {&fake_ops}, *s = NULL;
	cairn_cid trunc;
	blk b;
	uint8_t big[200];

	(void)state;
	tmp_path(path, sizeof(path), "args.car");
	unlink(path);
	make_block(&b, 1000, 100);
	o.sync = (cairn_sync_policy)7;
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_EINVAL);
	o = options(CAIRN_SYNC_NONE, 256);
	o.index_codec = 0x0402;
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_EINVAL);
	o = options(CAIRN_SYNC_NONE, 64u << 20);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), CAIRN_EINVAL);
	o = options(CAIRN_SYNC_NONE, 256);
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 2, &o), CAIRN_EINVAL);
	assert_null(s);
	assert_int_equal(access(path, F_OK), -1);

	o.max_section_size = 36 + 150;
	s = open_rw(path, NULL, NULL, 0, &o);
	memset(big, 7, sizeof(big));
	assert_int_equal(cairn_cid_compute(&trunc, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, big, 200), 0);
	assert_int_equal(cairn_store_put(s, &trunc, big, 200), CAIRN_ETOOBIG);
	/* A truncated digest cannot be checked by a resume: refused. */
	assert_int_equal(cairn_cid_from_digest(&trunc, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					       b.cid.bytes + b.cid.digest_off, 20), 0);
	assert_int_equal(cairn_store_put(s, &trunc, b.data, b.len), CAIRN_EUNSUPPORTED);
	assert_int_equal(cairn_cid_from_digest(&trunc, 1, CAIRN_CODEC_RAW, 0x13,
					       b.cid.bytes + b.cid.digest_off, 32), 0);
	assert_int_equal(cairn_store_put(s, &trunc, b.data, b.len), CAIRN_EUNSUPPORTED);
	/* Still usable after refusals that changed nothing. */
	put_ok(s, &b);
	expect_block(s, &b);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);

	/* The carrw calls on another kind of store. */
	assert_int_equal(cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o), 0);
	assert_int_equal(cairn_store_carrw_set_roots(s, NULL, 1), CAIRN_EINVAL);
	cairn_store_free(s);
	assert_int_equal(cairn_store_carrw_finalize(&fake), CAIRN_EINVAL);
	assert_int_equal(cairn_store_carrw_set_roots(&fake, NULL, 0), CAIRN_EINVAL);
	free_blocks(&b, 1);
}

/* Thousands of blocks: the map grows several times while writing and while
 * resuming, and every block stays found, once. */
static void test_many_blocks(void **state)
{
	enum { N = 5000 };
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_NONE, 256);
	cairn_carrw_resume rep;
	blk *b = calloc(N, sizeof(*b));
	blk **want = calloc(N, sizeof(*want));
	cairn_block *many = calloc(N, sizeof(*many));
	cairn_store *s;
	uint64_t size;

	(void)state;
	assert_non_null(b);
	assert_non_null(want);
	assert_non_null(many);
	tmp_path(path, sizeof(path), "many.car");
	unlink(path);
	for (size_t i = 0; i < N; i++) {
		make_block(&b[i], 2000 + i, 8 + i % 97);
		want[i] = &b[i];
		many[i] = (cairn_block){b[i].cid, b[i].data, b[i].len};
	}
	s = open_rw(path, NULL, NULL, 0, &o);
	for (size_t i = 0; i < N / 2; i++)
		put_ok(s, &b[i]);
	/* The rest in one batch, with the first half again in it. */
	assert_int_equal(cairn_store_put_many(s, many, N), 0);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	size = file_size(path);
	assert_int_equal(cairn_store_put_many(s, many, N), 0);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	assert_int_equal(file_size(path), size);
	for (size_t i = 0; i < N; i += 7)
		expect_block(s, &b[i]);
	cairn_store_free(s);
	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, N);
	assert_int_equal(rep.cut_bytes, 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(cairn_store_has(s, &b[i].cid), 1);
	assert_int_equal(cairn_store_put_many(s, many, N), 0);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	assert_int_equal(file_size(path) > size, 1);
	verify_car(path, want, N, NULL, 0, 256);
	/* Read-only, the map built from the finished file. */
	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, N);
	for (size_t i = 0; i < N; i += 3)
		expect_block(s, &b[i]);
	cairn_store_free(s);
	free_blocks(b, N);
	free(b);
	free(want);
	free(many);
}

static int stop_at_three(const cairn_cid *cid, void *payload)
{
	size_t *n = payload;

	(void)cid;
	return ++*n == 3 ? 42 : 0;
}

/* A batch with a block it refuses writes none of it; iterate stops when
 * asked; identity blocks are written only with keep_identity, and checked. */
static void test_batch_iterate_identity(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_EVERY_PUT, 256);
	cairn_block many[3];
	cairn_cid id;
	blk b[3];
	blk idb = {.data = (uint8_t *)"fil/1/cron", .len = 10};
	blk *want[4] = {&b[0], &idb, &b[1], &b[2]};
	uint8_t big[300];
	size_t n = 0;
	cairn_store *s;
	uint64_t size;

	(void)state;
	tmp_path(path, sizeof(path), "batch.car");
	unlink(path);
	for (size_t i = 0; i < 3; i++)
		make_block(&b[i], 3000 + i, 40);
	memset(big, 1, sizeof(big));
	o.max_section_size = 200;
	o.keep_identity = true;
	s = open_rw(path, NULL, NULL, 0, &o);
	put_ok(s, &b[0]);
	size = file_size(path);
	many[0] = (cairn_block){b[1].cid, b[1].data, b[1].len};
	many[1] = (cairn_block){b[2].cid, big, sizeof(big)};
	many[2] = (cairn_block){b[2].cid, b[2].data, b[2].len};
	assert_int_equal(cairn_store_put_many(s, many, 3), CAIRN_ETOOBIG);
	assert_int_equal(file_size(path), size);
	expect_missing(s, &b[1]);
	/* Identity: the wrappers answer it; the store's own put writes it. */
	assert_int_equal(cairn_cid_compute(&id, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY, idb.data, idb.len), 0);
	idb.cid = id;
	assert_int_equal(cairn_store_put(s, &id, idb.data, idb.len), 0);
	assert_int_equal(file_size(path), size);
	assert_int_equal(s->ops->put(s, &id, (const uint8_t *)"fil/1/crom", 10), CAIRN_EMISMATCH);
	assert_int_equal(s->ops->put(s, &id, idb.data, idb.len), 0);
	assert_true(file_size(path) > size);
	many[1] = many[2];
	assert_int_equal(cairn_store_put_many(s, many, 2), 0);
	assert_int_equal(cairn_store_iterate(s, stop_at_three, &n), 42);
	assert_int_equal(n, 3);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	{
		/* Fully indexed: the identity block is in the index too. */
		cairn_car_reader *r;

		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		assert_true(cairn_car_v2_fully_indexed(cairn_car_reader_v2_header(r)));
		cairn_car_reader_free(r);
	}
	verify_car(path, want, 4, NULL, 0, 256);
	free_blocks(b, 3);
}

/* ---------------------------------------------------------------- failures */

static void test_alloc_failure_in_put(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_EVERY_PUT, 256);
	blk b[40];
	blk *want[40];
	bool any = false;

	(void)state;
	tmp_path(path, sizeof(path), "oom-put.car");
	for (size_t i = 0; i < 40; i++) {
		make_block(&b[i], 1100 + i, 1 + i * 101);
		want[i] = &b[i];
	}
	for (long n = 1; n < 40; n++) {
		cairn_carrw_resume rep;
		cairn_store *s;
		size_t ok = 0;
		int rc = 0;

		unlink(path);
		s = open_rw(path, NULL, NULL, 0, &o);
		cairn_alloc_fail_after(n, false);
		for (; ok < 40; ok++)
			if ((rc = cairn_store_put(s, &b[ok].cid, b[ok].data, b[ok].len)))
				break;
		cairn_alloc_fail_after(-1, false);
		if (!rc) {
			cairn_store_free(s);
			continue;
		}
		any = true;
		assert_int_equal(rc, CAIRN_ENOMEM);
		/* Refused until reopened, though memory is back. */
		assert_int_equal(cairn_store_put(s, &b[ok].cid, b[ok].data, b[ok].len), CAIRN_EIO);
		assert_non_null(strstr(cairn_error_last(), "reopen"));
		assert_int_equal(cairn_store_flush(s, NULL), CAIRN_EIO);
		assert_int_equal(cairn_store_carrw_set_roots(s, NULL, 0), CAIRN_EIO);
		assert_int_equal(cairn_store_carrw_finalize(s), CAIRN_EIO);
		for (size_t i = 0; i < ok; i++)
			expect_block(s, &b[i]);
		cairn_store_free(s);
		/* Every put that returned is on file. */
		s = open_rw(path, &rep, NULL, 0, &o);
		assert_int_equal(rep.blocks, ok);
		for (size_t i = ok; i < 40; i++)
			put_ok(s, &b[i]);
		assert_int_equal(cairn_store_carrw_finalize(s), 0);
		cairn_store_free(s);
		verify_car(path, want, 40, NULL, 0, 256);
	}
	assert_true(any);
	free_blocks(b, 40);
}

/* Open (create and resume) and finalize with the nth allocation failing:
 * a clean error, no leak, and the file still resumes. */
static void test_alloc_failure_elsewhere(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_NONE, 256);
	blk b[10];
	blk *want[10];

	(void)state;
	tmp_path(path, sizeof(path), "oom-open.car");
	for (size_t i = 0; i < 10; i++) {
		make_block(&b[i], 1200 + i, 10 + i * 1000);
		want[i] = &b[i];
	}
	for (long n = 1; n < 200; n++) {
		cairn_store *s = NULL;
		int rc;

		unlink(path);
		cairn_alloc_fail_after(n, false);
		rc = cairn_store_carrw_open(&s, NULL, path, &b[0].cid, 1, &o);
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
			assert_null(s);
			continue;
		}
		for (size_t i = 0; i < 10; i++)
			put_ok(s, &b[i]);
		cairn_store_free(s);
		/* Resume under failure. */
		cairn_alloc_fail_after(n, false);
		rc = cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o);
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
			s = open_rw(path, NULL, NULL, 0, &o);
		}
		/* Finalize under failure. */
		cairn_alloc_fail_after(n, false);
		rc = cairn_store_carrw_finalize(s);
		cairn_alloc_fail_after(-1, false);
		cairn_store_free(s);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
			s = open_rw(path, NULL, NULL, 0, &o);
			assert_int_equal(cairn_store_carrw_finalize(s), 0);
			cairn_store_free(s);
		}
		verify_car(path, want, 10, &b[0].cid, 1, 256);
		if (n > 60)
			break;
	}
	free_blocks(b, 10);
}

/* A real write failure: the file size limit (RLIMIT_FSIZE) makes a write
 * stop part-way (EFBIG), leaving a torn section on file. */
static void test_write_failure(void **state)
{
	char path[PATH_MAX];
	cairn_carrw_options o = options(CAIRN_SYNC_EVERY_PUT, 256);
	struct rlimit old, lim;
	cairn_carrw_resume rep;
	blk b[30];
	blk *want[30];
	cairn_store *s;
	size_t ok;
	int rc = 0;

	(void)state;
	tmp_path(path, sizeof(path), "eio.car");
	unlink(path);
	for (size_t i = 0; i < 30; i++) {
		make_block(&b[i], 1300 + i, 1000);
		want[i] = &b[i];
	}
	s = open_rw(path, NULL, NULL, 0, &o);
	for (size_t i = 0; i < 5; i++)
		put_ok(s, &b[i]);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)(file_size(path) + 5500);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (ok = 5; ok < 30; ok++)
		if ((rc = cairn_store_put(s, &b[ok].cid, b[ok].data, b[ok].len)))
			break;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rc, CAIRN_EIO);
	assert_int_equal(ok, 10);
	assert_non_null(strstr(cairn_error_last(), "write at byte"));
	/* Refused until reopened, though the limit is gone. */
	assert_int_equal(cairn_store_put(s, &b[ok].cid, b[ok].data, b[ok].len), CAIRN_EIO);
	assert_int_equal(cairn_store_put(s, &b[29].cid, b[29].data, b[29].len), CAIRN_EIO);
	assert_int_equal(cairn_store_flush(s, NULL), CAIRN_EIO);
	assert_int_equal(cairn_store_carrw_finalize(s), CAIRN_EIO);
	for (size_t i = 0; i < ok; i++)
		expect_block(s, &b[i]);
	cairn_store_free(s);
	assert_true(file_size(path) > CAIRN_CAR_V2_PREFIX_LEN + 256 + 10 * section_len(&b[0]));

	s = open_rw(path, &rep, NULL, 0, &o);
	assert_int_equal(rep.blocks, 10);
	assert_true(rep.cut_bytes > 0);
	for (size_t i = 10; i < 30; i++)
		put_ok(s, &b[i]);
	assert_int_equal(cairn_store_carrw_finalize(s), 0);
	cairn_store_free(s);
	verify_car(path, want, 30, NULL, 0, 256);
	free_blocks(b, 30);
}

/* ------------------------------------------------------------------ main */

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-carrw-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	(void)state;
	cairn_alloc_fail_after(-1, false);
	while (d && (e = readdir(d))) {
		char p[PATH_MAX + 256];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	return rmdir(tmpdir);
}

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_has),
		cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_finalize_mh_sorted),
		cmocka_unit_test(test_finalize_sorted),
		cmocka_unit_test(test_set_roots),
		cmocka_unit_test(test_zero_and_one_block),
		cmocka_unit_test(test_torn_tail_matrix),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_garbage_after),
		cmocka_unit_test(test_room_mismatch_and_damage),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_many_blocks),
		cmocka_unit_test(test_batch_iterate_identity),
		cmocka_unit_test_teardown(test_alloc_failure_in_put, teardown),
		cmocka_unit_test_teardown(test_alloc_failure_elsewhere, teardown),
		cmocka_unit_test(test_write_failure),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
