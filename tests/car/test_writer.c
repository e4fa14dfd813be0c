/* test_writer.c: unit tests for the CAR writer and the header encoders: go-car's
 * fixtures reproduced byte for byte, CARv1/v2 round trips, bad puts, dedup, OOM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

static char cars[PATH_MAX];   /* $CAIRN_FIXTURES/car */
static char tmpdir[PATH_MAX]; /* removed with everything in it at the end */

/* ---------------------------------------------------------------- helpers */

typedef struct {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
	uint64_t offset; /* in the source payload */
} block;

/* What a CAR holds: its roots and its blocks in order. */
typedef struct {
	cairn_cid roots[4];
	size_t nroots;
	block *blocks;
	size_t n;
} car_content;

static void fixture_path(char *out, size_t n, const char *car)
{
	snprintf(out, n, "%s/%s", cars, car);
}

static void tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static void load_file(cairn_buf *out, const char *path)
{
	cairn_buf_clear(out);
	assert_int_equal(cairn_file_read_all(out, path, 1 << 24), 0);
}

static void read_car(car_content *c, const char *path)
{
	cairn_car_reader *r;
	cairn_car_section s;
	size_t cap = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	if (cairn_car_reader_open(&r, path, NULL))
		fail_msg("%s", cairn_error_last());
	c->nroots = cairn_car_reader_root_count(r);
	assert_true(c->nroots <= 4);
	memcpy(c->roots, cairn_car_reader_roots(r), c->nroots * sizeof(cairn_cid));
	while ((rc = cairn_car_reader_next(r, &s, true)) == 1) {
		block *b;

		if (c->n == cap) {
			cap = cap ? cap * 2 : 64;
			c->blocks = realloc(c->blocks, cap * sizeof(*c->blocks));
			assert_non_null(c->blocks);
		}
		b = &c->blocks[c->n++];
		b->cid = s.cid;
		b->len = (size_t)s.block_len;
		b->offset = s.offset;
		b->data = malloc(b->len ? b->len : 1);
		assert_non_null(b->data);
		memcpy(b->data, s.block, b->len);
	}
	if (rc)
		fail_msg("%s", cairn_error_last());
	cairn_car_reader_free(r);
}

static void free_content(car_content *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->blocks[i].data);
	free(c->blocks);
	memset(c, 0, sizeof(*c));
}

static bool is_identity(const block *b)
{
	return b->cid.mh_code == CAIRN_MH_IDENTITY;
}

/* Writes the blocks of `c` (or `roots` if given) to `path`; returns the
 * block count the writer reports. */
static uint64_t write_car(const char *path, const car_content *c, const cairn_cid *roots, size_t nroots,
			  const cairn_car_writer_options *opts)
{
	cairn_car_writer *w;
	uint64_t n;

	if (!roots) {
		roots = c->roots;
		nroots = c->nroots;
	}
	if (cairn_car_writer_open(&w, path, roots, nroots, opts))
		fail_msg("%s: %s", path, cairn_error_last());
	for (size_t i = 0; i < c->n; i++)
		if (cairn_car_writer_put(w, &c->blocks[i].cid, c->blocks[i].data, c->blocks[i].len))
			fail_msg("%s: put %zu: %s", path, i, cairn_error_last());
	n = cairn_car_writer_block_count(w);
	if (cairn_car_writer_finish(w))
		fail_msg("%s: finish: %s", path, cairn_error_last());
	cairn_car_writer_free(w);
	return n;
}

/* `got` holds the blocks of `want`, identity ones only if `identity`, in
 * the same order, and the same roots. */
static void expect_content(const car_content *got, const car_content *want, bool identity)
{
	size_t j = 0;

	assert_int_equal(got->nroots, want->nroots);
	for (size_t i = 0; i < want->nroots; i++)
		assert_true(cairn_cid_equal(&got->roots[i], &want->roots[i]));
	for (size_t i = 0; i < want->n; i++) {
		const block *b = &want->blocks[i];

		if (is_identity(b) && !identity)
			continue;
		assert_true(j < got->n);
		assert_true(cairn_cid_equal(&got->blocks[j].cid, &b->cid));
		assert_int_equal(got->blocks[j].len, b->len);
		assert_memory_equal(got->blocks[j].data, b->data, b->len);
		j++;
	}
	assert_int_equal(j, got->n);
}

static size_t count_identity(const car_content *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += is_identity(&c->blocks[i]);
	return n;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void from_hex(cairn_buf *out, const char *hex)
{
	cairn_buf_clear(out);
	assert_int_equal(cairn_base_decode(out, CAIRN_BASE16, hex, strlen(hex)), 0);
}

/* Every block of `c` is in the index at its offset in the file at `path`,
 * as many times as it is there; identity ones only if `identity`. */
static void expect_index(const char *path, uint64_t index_offset, uint64_t codec, const car_content *c,
			 bool identity)
{
	cairn_car_index *idx;
	uint64_t want = 0;

	if (cairn_car_index_open(&idx, path, index_offset))
		fail_msg("%s: %s", path, cairn_error_last());
	assert_int_equal(cairn_car_index_codec(idx), codec);
	assert_int_equal(cairn_car_index_check(idx), 0);
	for (size_t i = 0; i < c->n; i++) {
		const block *b = &c->blocks[i];
		uint64_t offs[8];
		int n;
		bool found = false;

		if (is_identity(b) && !identity) {
			assert_int_equal(cairn_car_index_find(idx, &b->cid, offs, 8), 0);
			continue;
		}
		want++;
		n = cairn_car_index_find(idx, &b->cid, offs, 8);
		assert_true(n >= 1 && n <= 8);
		for (int k = 0; k < n; k++)
			found |= offs[k] == b->offset;
		assert_true(found);
	}
	assert_int_equal(cairn_car_index_count(idx), want);
	cairn_car_index_free(idx);
}

/* ------------------------------------------------------------------ tests */

static void test_v1_header_encode(void **state)
{
	static const struct {
		const char *car;
		uint64_t at;  /* where the CARv1 header starts */
		size_t len;   /* its length, varint included */
	} vec[] = {
		{"sample-v1.car", 0, 61},
		{"carv1-basic.car", 0, 100},
		{"simple-unixfs.car", 0, 57},
		{"sample-rw-bs-v2.car", 1464, 142},
		{"carv2-basic.car", 51, 57},
	};
	cairn_buf out = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT, file = CAIRN_BUF_INIT;

	(void)state;
	/* {roots: [], version: 1} */
	from_hex(&want, "11a265726f6f7473806776657273696f6e01");
	assert_int_equal(cairn_car_v1_header_encode(&out, NULL, 0), 0);
	assert_int_equal(out.len, 18);
	assert_memory_equal(out.data, want.data, 18);
	for (size_t k = 0; k < sizeof(vec) / sizeof(vec[0]); k++) {
		char path[PATH_MAX + 64];
		cairn_car_reader *r;

		fixture_path(path, sizeof(path), vec[k].car);
		load_file(&file, path);
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		/* appends after what is there */
		cairn_buf_clear(&out);
		assert_int_equal(cairn_buf_puts(&out, "xy"), 0);
		assert_int_equal(cairn_car_v1_header_encode(&out, cairn_car_reader_roots(r),
							    cairn_car_reader_root_count(r)),
				 0);
		cairn_car_reader_free(r);
		assert_int_equal(out.len, 2 + vec[k].len);
		assert_memory_equal(out.data, "xy", 2);
		assert_memory_equal(out.data + 2, file.data + vec[k].at, vec[k].len);
	}
	/* the 61 bytes of sample-v1.car, from the root's string */
	{
		const char *root = "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy";
		cairn_cid cid;

		from_hex(&want, "3ca265726f6f747381d82a5827000171a0e40220");
		assert_int_equal(cairn_cid_parse(&cid, root, strlen(root)), 0);
		cairn_buf_clear(&out);
		assert_int_equal(cairn_car_v1_header_encode(&out, &cid, 1), 0);
		assert_int_equal(out.len, 61);
		assert_memory_equal(out.data, want.data, want.len);
		assert_memory_equal(out.data + want.len, cid.bytes + 6, 32);
		assert_memory_equal(out.data + 52, "\x67version\x01", 9);
	}
	cairn_buf_free(&out);
	cairn_buf_free(&want);
	cairn_buf_free(&file);
}

static void test_v2_header(void **state)
{
	cairn_buf file = CAIRN_BUF_INIT;
	char path[PATH_MAX + 64];
	cairn_car_v2_header h, back;
	uint8_t enc[CAIRN_CAR_V2_HEADER_LEN];

	(void)state;
	/* sample-wrapped-v2.car: {0, 51, 479907, 479958} (summary.json) */
	fixture_path(path, sizeof(path), "sample-wrapped-v2.car");
	load_file(&file, path);
	assert_memory_equal(file.data, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN);
	assert_int_equal(cairn_car_v2_header_decode(&h, file.data + CAIRN_CAR_PRAGMA_LEN), 0);
	assert_int_equal(h.data_offset, 51);
	assert_int_equal(h.data_size, 479907);
	assert_int_equal(h.index_offset, 479958);
	assert_false(cairn_car_v2_fully_indexed(&h));
	cairn_car_v2_header_encode(enc, &h);
	assert_memory_equal(enc, file.data + CAIRN_CAR_PRAGMA_LEN, sizeof(enc));

	/* round trips, the fully-indexed bit included */
	{
		static const cairn_car_v2_header vec[] = {
			{{0x80}, 51, 1, 0},
			{{0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff}, 1464, 273, 1737},
			{{0}, 51, 65, 116},
			{{0}, 51, 65, 51 + 65},          /* index right after the data */
			{{0}, 4096, (1ull << 40), (1ull << 41)},
		};

		for (size_t k = 0; k < sizeof(vec) / sizeof(vec[0]); k++) {
			cairn_car_v2_header_encode(enc, &vec[k]);
			assert_int_equal(le64(enc + 16), vec[k].data_offset);
			assert_int_equal(le64(enc + 24), vec[k].data_size);
			assert_int_equal(le64(enc + 32), vec[k].index_offset);
			assert_memory_equal(enc, vec[k].characteristics, 16);
			assert_int_equal(cairn_car_v2_header_decode(&back, enc), 0);
			assert_memory_equal(&back.characteristics, &vec[k].characteristics, 16);
			assert_int_equal(back.data_offset, vec[k].data_offset);
			assert_int_equal(back.data_size, vec[k].data_size);
			assert_int_equal(back.index_offset, vec[k].index_offset);
			assert_int_equal(cairn_car_v2_fully_indexed(&back), (vec[k].characteristics[0] & 0x80) != 0);
		}
	}
	/* car.md's worked example: 3300.. 4100.. 7400.. */
	{
		cairn_buf hex = CAIRN_BUF_INIT;

		from_hex(&hex, "00000000000000000000000000000000330000000000000041000000000000007400000000000000");
		assert_int_equal(cairn_car_v2_header_decode(&back, hex.data), 0);
		assert_int_equal(back.data_offset, 51);
		assert_int_equal(back.data_size, 65);
		assert_int_equal(back.index_offset, 116);
		cairn_buf_free(&hex);
	}
	/* rejections */
	{
		static const cairn_car_v2_header bad[] = {
			{{0}, 0, 65, 0},          /* an unfinished writer's header */
			{{0}, 50, 65, 0},         /* data_offset < 51 */
			{{0}, 51, 0, 0},          /* data_size 0 */
			{{0}, 51, 65, 115},       /* index inside the data */
			{{0}, 51, 65, 51},
			{{0}, 51, 65, 1},
			{{0}, UINT64_MAX - 1361, 479907, 478545}, /* sample-v2-corrupt-data-and-index */
		};

		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			cairn_car_v2_header_encode(enc, &bad[k]);
			if (cairn_car_v2_header_decode(&back, enc) != CAIRN_ECORRUPT)
				fail_msg("bad header %zu accepted", k);
		}
	}
	cairn_buf_free(&file);
}

/* CARv1 from sample-v1.car and carv1-basic.car: read back the same; byte
 * for byte the fixtures, identity blocks kept or left out. */
static void test_write_v1(void **state)
{
	static const struct {
		const char *src;
		bool keep_identity;
		const char *same_as; /* the fixture the output equals */
	} vec[] = {
		{"sample-v1.car", true, "sample-v1.car"},
		{"sample-v1.car", false, "sample-v1-noidentity.car"},
		{"carv1-basic.car", false, "carv1-basic.car"},
		{"carv1-basic.car", true, "carv1-basic.car"},
		{"simple-unixfs.car", false, "simple-unixfs.car"},
		{"sample-wrapped-v2.car", true, "sample-v1.car"},
	};
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < sizeof(vec) / sizeof(vec[0]); k++) {
		cairn_car_writer_options opts = {1, 0, vec[k].keep_identity, false};
		char src[PATH_MAX + 64], out[PATH_MAX + 64], same[PATH_MAX + 64];
		car_content in, back;
		uint64_t n;

		fixture_path(src, sizeof(src), vec[k].src);
		fixture_path(same, sizeof(same), vec[k].same_as);
		tmp_path(out, sizeof(out), "out-v1.car");
		read_car(&in, src);
		n = write_car(out, &in, NULL, 0, &opts);
		assert_int_equal(n, in.n - (vec[k].keep_identity ? 0 : count_identity(&in)));
		read_car(&back, out);
		expect_content(&back, &in, vec[k].keep_identity);
		load_file(&got, out);
		load_file(&want, same);
		if (got.len != want.len || memcmp(got.data, want.data, got.len))
			fail_msg("%s (keep_identity %d) written as CARv1 is not %s (%zu vs %zu bytes)",
				 vec[k].src, vec[k].keep_identity, vec[k].same_as, got.len, want.len);
		free_content(&in);
		free_content(&back);
		unlink(out);
	}
	cairn_buf_free(&got);
	cairn_buf_free(&want);
}

/* go-car's TestBlockstore: sample-v1-noidentity's blocks under sample-v1's
 * root give sample-v1-noidentity.car exactly. */
static void test_v1_noidentity_exact(void **state)
{
	cairn_car_writer_options opts = {1, 0, false, false};
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	char src[PATH_MAX + 64], root_src[PATH_MAX + 64], out[PATH_MAX + 64];
	car_content in, v1;

	(void)state;
	fixture_path(src, sizeof(src), "sample-v1-noidentity.car");
	fixture_path(root_src, sizeof(root_src), "sample-v1.car");
	tmp_path(out, sizeof(out), "noidentity.car");
	read_car(&in, src);
	read_car(&v1, root_src);
	assert_int_equal(in.n, 1043);
	assert_int_equal(write_car(out, &in, v1.roots, v1.nroots, &opts), 1043);
	load_file(&got, out);
	load_file(&want, src);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, got.len);
	unlink(out);
	free_content(&in);
	free_content(&v1);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
}

/* Sections encoded by the caller and put whole: the same file, byte for
 * byte, as the same blocks put one at a time, for a CARv1 and for a CARv2
 * with each index codec (so the index gets every section's offset), in
 * batches of uneven sizes with single puts between them. A writer that is
 * not trusted, or skips duplicates, refuses them and stays usable. */
static void test_put_sections(void **state)
{
	static const uint64_t codecs[] = {CAIRN_CAR_INDEX_MH_SORTED, CAIRN_CAR_INDEX_SORTED, 0};
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT, sections = CAIRN_BUF_INIT;
	char src[PATH_MAX + 64], a[PATH_MAX + 64], b[PATH_MAX + 64];
	size_t *offsets;
	car_content in;

	(void)state;
	fixture_path(src, sizeof(src), "sample-v1-noidentity.car");
	tmp_path(a, sizeof(a), "one-by-one.car");
	tmp_path(b, sizeof(b), "sections.car");
	read_car(&in, src);
	assert_non_null(offsets = malloc(in.n * sizeof(*offsets)));
	for (size_t v = 0; v < 4; v++) {
		cairn_car_writer_options opts = {v ? 2 : 1, v ? codecs[v - 1] : 0, false, false};
		cairn_car_writer *w;
		size_t i = 0, batch = 1;

		opts.trusted = true;
		write_car(a, &in, NULL, 0, &opts);
		assert_int_equal(cairn_car_writer_open(&w, b, in.roots, in.nroots, &opts), 0);
		while (i < in.n) {
			size_t end = i + batch < in.n ? i + batch : in.n;
			cairn_cid cids[64];

			assert_true(end - i <= 64);
			cairn_buf_clear(&sections);
			for (size_t j = i; j < end; j++) {
				uint8_t head[CAIRN_VARINT_MAX];
				const block *bl = &in.blocks[j];

				offsets[j - i] = sections.len;
				cids[j - i] = bl->cid;
				cairn_buf_append(&sections, head,
						 cairn_varint_encode(head, bl->cid.len + bl->len));
				cairn_buf_append(&sections, bl->cid.bytes, bl->cid.len);
				cairn_buf_append(&sections, bl->data, bl->len);
			}
			assert_int_equal(cairn_car_writer_put_sections(w, sections.data, sections.len,
								       cids, offsets, end - i), 0);
			i = end;
			if (i < in.n) {
				assert_int_equal(cairn_car_writer_put(w, &in.blocks[i].cid,
								      in.blocks[i].data,
								      in.blocks[i].len), 0);
				i++;
			}
			batch = batch * 3 % 61 + 1;
		}
		assert_int_equal(cairn_car_writer_block_count(w), in.n);
		assert_int_equal(cairn_car_writer_finish(w), 0);
		cairn_car_writer_free(w);
		load_file(&got, b);
		load_file(&want, a);
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.data, want.data, got.len);
	}
	for (int untrusted = 0; untrusted < 2; untrusted++) {
		cairn_car_writer_options opts = {1, 0, false, !untrusted};
		cairn_car_writer *w;

		opts.trusted = !untrusted;
		assert_int_equal(cairn_car_writer_open(&w, b, in.roots, in.nroots, &opts), 0);
		offsets[0] = 0;
		assert_int_equal(cairn_car_writer_put_sections(w, (const uint8_t *)"x", 1,
							       &in.blocks[0].cid, offsets, 1),
				 CAIRN_EINVAL);
		assert_int_equal(cairn_car_writer_put(w, &in.blocks[0].cid, in.blocks[0].data,
						      in.blocks[0].len), 0);
		assert_int_equal(cairn_car_writer_finish(w), 0);
		cairn_car_writer_free(w);
	}
	unlink(a);
	unlink(b);
	free(offsets);
	free_content(&in);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
	cairn_buf_free(&sections);
}

/* CARv2 with each index codec and none, from two sources: the header, the
 * payload read back, the index finding every block. */
static void test_write_v2(void **state)
{
	static const uint64_t codecs[] = {CAIRN_CAR_INDEX_MH_SORTED, CAIRN_CAR_INDEX_SORTED, 0};
	static const char *srcs[] = {"sample-v1.car", "carv1-basic.car"};
	cairn_buf file = CAIRN_BUF_INIT;

	(void)state;
	for (size_t s = 0; s < 2; s++) {
		for (size_t c = 0; c < 3; c++) {
			for (int keep = 0; keep < 2; keep++) {
				cairn_car_writer_options opts = {2, codecs[c], keep, false};
				char src[PATH_MAX + 64], out[PATH_MAX + 64];
				cairn_car_v2_header hc, *h = &hc;
				car_content in, back;
				cairn_car_reader *r;

				fixture_path(src, sizeof(src), srcs[s]);
				tmp_path(out, sizeof(out), "out-v2.car");
				read_car(&in, src);
				assert_int_equal(write_car(out, &in, NULL, 0, &opts),
						 in.n - (keep ? 0 : count_identity(&in)));
				load_file(&file, out);
				assert_memory_equal(file.data, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN);
				assert_int_equal(cairn_car_reader_open(&r, out, NULL), 0);
				assert_int_equal(cairn_car_reader_version(r), 2);
				assert_non_null(cairn_car_reader_v2_header(r));
				hc = *cairn_car_reader_v2_header(r);
				assert_int_equal(h->data_offset, 51);
				assert_int_equal(cairn_car_v2_fully_indexed(h), keep);
				for (int i = 1; i < 16; i++)
					assert_int_equal(h->characteristics[i], 0);
				assert_int_equal(h->characteristics[0], keep ? 0x80 : 0);
				if (codecs[c]) {
					assert_int_equal(h->index_offset, h->data_offset + h->data_size);
					assert_true(h->index_offset < file.len);
				} else {
					assert_int_equal(h->index_offset, 0);
					assert_int_equal(h->data_offset + h->data_size, file.len);
				}
				cairn_car_reader_free(r);
				read_car(&back, out);
				expect_content(&back, &in, keep);
				if (codecs[c])
					expect_index(out, h->index_offset, codecs[c], &back, keep);
				free_content(&in);
				free_content(&back);
				unlink(out);
			}
		}
	}
	cairn_buf_free(&file);
}

/* The fixture index of sample-v1 with its offsets moved to where the same
 * blocks sit in sample-v1-noidentity (the six identity sections gone):
 * the same order, since entries sort by digest. */
static void noidentity_index(cairn_buf *out)
{
	char path[PATH_MAX + 64];
	car_content v1, noid;
	size_t pos;

	fixture_path(path, sizeof(path), "sample-multihash-index-sorted.carindex");
	load_file(out, path);
	fixture_path(path, sizeof(path), "sample-v1.car");
	read_car(&v1, path);
	fixture_path(path, sizeof(path), "sample-v1-noidentity.car");
	read_car(&noid, path);
	/* 81 08 | ncodes 1 | code 0xb220 | nbuckets 1 | width 40 | bytes 41720 */
	assert_int_equal(out->len, 2 + 4 + 8 + 4 + 4 + 8 + 1043 * 40);
	assert_int_equal(le64(out->data + 22), 1043 * 40);
	for (pos = 30; pos < out->len; pos += 40) {
		uint64_t off = le64(out->data + pos + 32);
		size_t i, j = 0;

		for (i = 0; i < v1.n && v1.blocks[i].offset != off; i++)
			j += !is_identity(&v1.blocks[i]);
		assert_true(i < v1.n);
		assert_true(cairn_cid_equal(&v1.blocks[i].cid, &noid.blocks[j].cid));
		assert_memory_equal(out->data + pos, v1.blocks[i].cid.bytes + v1.blocks[i].cid.digest_off, 32);
		put_le64(out->data + pos + 32, noid.blocks[j].offset);
	}
	free_content(&v1);
	free_content(&noid);
}

/* A CARv2 as go-car's read-write blockstore writes it from sample-v1.car:
 * its payload is sample-v1-noidentity.car, its index go's index of that
 * payload. With the identity blocks kept and IndexSorted, the payload is
 * sample-v1.car and the index is sample-index.carindex exactly. */
static void test_v2_matches_go(void **state)
{
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT, idx = CAIRN_BUF_INIT;
	char src[PATH_MAX + 64], out[PATH_MAX + 64], path[PATH_MAX + 64];
	car_content in;
	cairn_car_v2_header h;

	(void)state;
	fixture_path(src, sizeof(src), "sample-v1.car");
	tmp_path(out, sizeof(out), "go-v2.car");
	read_car(&in, src);

	/* default options: identity left out, MultihashIndexSorted */
	{
		cairn_car_writer_options opts = {2, CAIRN_CAR_INDEX_MH_SORTED, false, false};

		write_car(out, &in, NULL, 0, &opts);
		load_file(&got, out);
		assert_int_equal(cairn_car_v2_header_decode(&h, got.data + CAIRN_CAR_PRAGMA_LEN), 0);
		fixture_path(path, sizeof(path), "sample-v1-noidentity.car");
		load_file(&want, path);
		assert_int_equal(h.data_offset, 51);
		assert_int_equal(h.data_size, want.len);
		assert_memory_equal(got.data + 51, want.data, want.len);
		assert_int_equal(h.index_offset, 51 + want.len);
		assert_false(cairn_car_v2_fully_indexed(&h));
		noidentity_index(&idx);
		assert_int_equal(got.len - h.index_offset, idx.len);
		assert_memory_equal(got.data + h.index_offset, idx.data, idx.len);
	}
	/* identity kept, IndexSorted: every byte from go-car's fixtures */
	{
		cairn_car_writer_options opts = {2, CAIRN_CAR_INDEX_SORTED, true, false};

		write_car(out, &in, NULL, 0, &opts);
		load_file(&got, out);
		assert_int_equal(cairn_car_v2_header_decode(&h, got.data + CAIRN_CAR_PRAGMA_LEN), 0);
		load_file(&want, src);
		assert_true(cairn_car_v2_fully_indexed(&h));
		assert_int_equal(h.data_size, want.len);
		assert_memory_equal(got.data + 51, want.data, want.len);
		fixture_path(path, sizeof(path), "sample-index.carindex");
		load_file(&idx, path);
		assert_int_equal(got.len - h.index_offset, idx.len);
		assert_memory_equal(got.data + h.index_offset, idx.data, idx.len);
	}
	/* identity kept, MultihashIndexSorted: the identity buckets of
	 * sample-index.carindex under code 0, then the fixture's 0xb220 group */
	{
		cairn_car_writer_options opts = {2, CAIRN_CAR_INDEX_MH_SORTED, true, false};
		cairn_buf sorted = CAIRN_BUF_INIT, mh = CAIRN_BUF_INIT;
		static const uint8_t head[] = {0x81, 0x08, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0};
		/* IndexSorted: 80 08 | 5 buckets | widths 18, 19, 20, 21 of 36, 38, 20, 21 bytes */
		size_t identity_bytes = 4 * 12 + 36 + 38 + 20 + 21;

		write_car(out, &in, NULL, 0, &opts);
		load_file(&got, out);
		assert_int_equal(cairn_car_v2_header_decode(&h, got.data + CAIRN_CAR_PRAGMA_LEN), 0);
		assert_true(cairn_car_v2_fully_indexed(&h));
		assert_memory_equal(got.data + 51, want.data, want.len);
		fixture_path(path, sizeof(path), "sample-index.carindex");
		load_file(&sorted, path);
		fixture_path(path, sizeof(path), "sample-multihash-index-sorted.carindex");
		load_file(&mh, path);
		cairn_buf_clear(&idx);
		cairn_buf_append(&idx, head, sizeof(head));
		cairn_buf_append(&idx, sorted.data + 6, identity_bytes);
		cairn_buf_append(&idx, mh.data + 6, mh.len - 6);
		assert_int_equal(idx.err, 0);
		assert_int_equal(got.len - h.index_offset, idx.len);
		assert_memory_equal(got.data + h.index_offset, idx.data, idx.len);
		cairn_buf_free(&sorted);
		cairn_buf_free(&mh);
	}
	unlink(out);
	free_content(&in);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
	cairn_buf_free(&idx);
}

/* A put whose data does not hash to its CID is refused, and nothing of it
 * reaches the file: the writer goes on as if it never came. */
static void test_put_mismatch(void **state)
{
	char src[PATH_MAX + 64], out[PATH_MAX + 64], ref[PATH_MAX + 64];
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	car_content in;

	(void)state;
	fixture_path(src, sizeof(src), "carv1-basic.car");
	tmp_path(out, sizeof(out), "mismatch.car");
	tmp_path(ref, sizeof(ref), "reference.car");
	read_car(&in, src);
	for (unsigned version = 1; version <= 2; version++) {
		cairn_car_writer_options opts = {version, version == 2 ? CAIRN_CAR_INDEX_MH_SORTED : 0, false, false};
		cairn_car_writer *w;

		assert_int_equal(cairn_car_writer_open(&w, out, in.roots, in.nroots, &opts), 0);
		for (size_t i = 0; i < in.n; i++) {
			block *b = &in.blocks[i];
			uint8_t *bad = malloc(b->len + 1);

			assert_non_null(bad);
			memcpy(bad, b->data, b->len);
			bad[b->len / 2] ^= 0x40;
			assert_int_equal(cairn_car_writer_put(w, &b->cid, bad, b->len), CAIRN_EMISMATCH);
			assert_int_equal(cairn_error_last_code(), CAIRN_EMISMATCH);
			/* one byte more is a mismatch too */
			bad[b->len / 2] ^= 0x40;
			bad[b->len] = 0;
			assert_int_equal(cairn_car_writer_put(w, &b->cid, bad, b->len + 1), CAIRN_EMISMATCH);
			free(bad);
			assert_int_equal(cairn_car_writer_block_count(w), i);
			assert_int_equal(cairn_car_writer_put(w, &b->cid, b->data, b->len), 0);
			assert_int_equal(cairn_car_writer_block_count(w), i + 1);
		}
		assert_int_equal(cairn_car_writer_finish(w), 0);
		cairn_car_writer_free(w);
		/* the same bytes as without the bad puts */
		write_car(ref, &in, NULL, 0, &opts);
		load_file(&got, out);
		load_file(&want, ref);
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.data, want.data, got.len);
	}
	unlink(out);
	unlink(ref);
	free_content(&in);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
}

/* Each block put twice: once with skip_duplicates, twice without (and the
 * index then holds both offsets, the lower first). */
static void test_duplicates(void **state)
{
	char src[PATH_MAX + 64], out[PATH_MAX + 64], ref[PATH_MAX + 64];
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	car_content in, back;

	(void)state;
	fixture_path(src, sizeof(src), "sample-v1.car");
	tmp_path(out, sizeof(out), "dups.car");
	tmp_path(ref, sizeof(ref), "nodups.car");
	read_car(&in, src);
	for (unsigned version = 1; version <= 2; version++) {
		for (int skip = 0; skip < 2; skip++) {
			cairn_car_writer_options opts = {version, version == 2 ? CAIRN_CAR_INDEX_MH_SORTED : 0, true,
							 skip};
			cairn_car_writer *w;

			assert_int_equal(cairn_car_writer_open(&w, out, in.roots, in.nroots, &opts), 0);
			for (int pass = 0; pass < 2; pass++)
				for (size_t i = 0; i < in.n; i++)
					assert_int_equal(cairn_car_writer_put(w, &in.blocks[i].cid, in.blocks[i].data,
									      in.blocks[i].len),
							 0);
			assert_int_equal(cairn_car_writer_block_count(w), skip ? in.n : 2 * in.n);
			assert_int_equal(cairn_car_writer_finish(w), 0);
			cairn_car_writer_free(w);
			read_car(&back, out);
			assert_int_equal(back.n, skip ? in.n : 2 * in.n);
			for (size_t i = 0; i < back.n; i++)
				assert_true(cairn_cid_equal(&back.blocks[i].cid, &in.blocks[i % in.n].cid));
			if (skip) {
				/* exactly what one put each writes */
				write_car(ref, &in, NULL, 0, &opts);
				load_file(&got, out);
				load_file(&want, ref);
				assert_int_equal(got.len, want.len);
				assert_memory_equal(got.data, want.data, got.len);
			} else if (version == 2) {
				cairn_car_reader *r;
				cairn_car_index *idx;

				assert_int_equal(cairn_car_reader_open(&r, out, NULL), 0);
				assert_int_equal(cairn_car_index_open(&idx, out,
								      cairn_car_reader_v2_header(r)->index_offset),
						 0);
				cairn_car_reader_free(r);
				assert_int_equal(cairn_car_index_count(idx), 2 * in.n);
				for (size_t i = 0; i < in.n; i++) {
					uint64_t offs[4];

					assert_int_equal(cairn_car_index_find(idx, &in.blocks[i].cid, offs, 4), 2);
					assert_int_equal(offs[0], back.blocks[i].offset);
					assert_int_equal(offs[1], back.blocks[i + in.n].offset);
				}
				cairn_car_index_free(idx);
			}
			free_content(&back);
		}
	}
	unlink(out);
	unlink(ref);
	free_content(&in);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
}

/* Blocks larger than the writer's buffer, and an empty block. */
static void test_large_and_empty_blocks(void **state)
{
	static const size_t sizes[] = {0, 1, (3u << 20) + 7, 100, (1u << 20), 5};
	cairn_car_writer_options opts = {2, CAIRN_CAR_INDEX_SORTED, false, false};
	char out[PATH_MAX + 64];
	cairn_car_writer *w;
	car_content back, want;
	cairn_cid root;

	(void)state;
	tmp_path(out, sizeof(out), "large.car");
	memset(&want, 0, sizeof(want));
	want.blocks = calloc(6, sizeof(*want.blocks));
	assert_non_null(want.blocks);
	for (size_t i = 0; i < 6; i++) {
		block *b = &want.blocks[i];

		b->len = sizes[i];
		b->data = malloc(b->len + 1);
		assert_non_null(b->data);
		for (size_t j = 0; j < b->len; j++)
			b->data[j] = (uint8_t)(j * 31 + i);
		assert_int_equal(cairn_cid_compute(&b->cid, 1, CAIRN_CODEC_RAW, i & 1 ? CAIRN_MH_BLAKE2B_256 : CAIRN_MH_SHA2_256,
						   b->data, b->len),
				 0);
		want.n++;
	}
	root = want.blocks[2].cid;
	want.roots[0] = root;
	want.nroots = 1;
	assert_int_equal(cairn_car_writer_open(&w, out, &root, 1, &opts), 0);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(cairn_car_writer_put(w, &want.blocks[i].cid, want.blocks[i].data, want.blocks[i].len), 0);
	assert_int_equal(cairn_car_writer_finish(w), 0);
	cairn_car_writer_free(w);
	read_car(&back, out);
	expect_content(&back, &want, false);
	{
		cairn_car_reader *r;

		assert_int_equal(cairn_car_reader_open(&r, out, NULL), 0);
		expect_index(out, cairn_car_reader_v2_header(r)->index_offset, CAIRN_CAR_INDEX_SORTED, &back, false);
		cairn_car_reader_free(r);
	}
	free_content(&back);
	free_content(&want);
	unlink(out);
}

/* The CARv2 header is written last: a writer freed before finish leaves a
 * file that no reader takes for a CAR, whether its buffer reached the file
 * (sample-v1's blocks three times, over 1 MiB) or not (carv1-basic's). */
static void test_unfinished_v2(void **state)
{
	static const struct {
		const char *src;
		int times;
		long long byte;
	} vec[] = {
		{"carv1-basic.car", 1, -1},
		{"sample-v1.car", 3, 27},
	};
	cairn_car_writer_options opts = {2, CAIRN_CAR_INDEX_MH_SORTED, false, false};

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		char src[PATH_MAX + 64], out[PATH_MAX + 64];
		cairn_car_writer *w;
		cairn_car_reader *r;
		car_content in;
		struct stat st;

		fixture_path(src, sizeof(src), vec[k].src);
		tmp_path(out, sizeof(out), "unfinished.car");
		read_car(&in, src);
		assert_int_equal(cairn_car_writer_open(&w, out, in.roots, in.nroots, &opts), 0);
		for (int t = 0; t < vec[k].times; t++)
			for (size_t i = 0; i < in.n; i++)
				assert_int_equal(cairn_car_writer_put(w, &in.blocks[i].cid, in.blocks[i].data,
								      in.blocks[i].len),
						 0);
		cairn_car_writer_free(w);
		assert_int_equal(stat(out, &st), 0);
		if (vec[k].byte >= 0)
			assert_true(st.st_size > (1 << 20));
		assert_int_equal(cairn_car_reader_open(&r, out, NULL), CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "unfinished.car"));
		if (vec[k].byte >= 0) {
			char want[32];

			snprintf(want, sizeof(want), "byte %lld:", vec[k].byte);
			assert_non_null(strstr(cairn_error_last(), want));
		}
		unlink(out);
		free_content(&in);
	}
}

static void test_writer_errors(void **state)
{
	cairn_car_writer_options bad_version = {3, 0, false, false};
	cairn_car_writer_options zero = {0, 0, false, false};
	cairn_car_writer_options bad_codec = {2, 0x0402, false, false};
	cairn_car_writer_options ok = {1, 0, false, false};
	char out[PATH_MAX + 64];
	cairn_car_writer *w = (cairn_car_writer *)out;

	(void)state;
	tmp_path(out, sizeof(out), "never.car");
	assert_int_equal(cairn_car_writer_open(&w, out, NULL, 0, &bad_version), CAIRN_EINVAL);
	assert_null(w);
	assert_int_equal(cairn_car_writer_open(&w, out, NULL, 0, &zero), CAIRN_EINVAL);
	assert_int_equal(cairn_car_writer_open(&w, out, NULL, 0, &bad_codec), CAIRN_EINVAL);
	assert_int_equal(access(out, F_OK), -1);
	/* NULL options are the defaults: a CARv2 with a 0x0401 index; and a
	 * finished writer takes no more blocks. */
	assert_int_equal(cairn_car_writer_open(&w, out, NULL, 0, NULL), 0);
	assert_int_equal(cairn_car_writer_finish(w), 0);
	{
		cairn_cid id;
		assert_int_equal(cairn_cid_compute(&id, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, "x", 1), 0);
		assert_int_equal(cairn_car_writer_put(w, &id, (const uint8_t *)"x", 1), CAIRN_EINVAL);
		assert_non_null(strstr(cairn_error_last(), "finished"));
	}
	assert_int_equal(cairn_car_writer_finish(w), CAIRN_EINVAL);
	cairn_car_writer_free(w);
	{
		cairn_car_reader *r;
		assert_int_equal(cairn_car_reader_open(&r, out, NULL), 0);
		assert_int_equal(cairn_car_reader_version(r), 2);
		assert_int_equal(cairn_car_reader_v2_header(r)->index_offset, 51 + 18);
		cairn_car_reader_free(r);
	}
	unlink(out);
	tmp_path(out, sizeof(out), "no-such-dir/x.car");
	assert_int_equal(cairn_car_writer_open(&w, out, NULL, 0, &ok), CAIRN_EIO);
	assert_non_null(strstr(cairn_error_last(), "no-such-dir/x.car"));
	assert_null(w);
	cairn_car_writer_free(NULL);
	/* no roots, no blocks: the 18-byte header alone */
	{
		cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;

		tmp_path(out, sizeof(out), "empty.car");
		assert_int_equal(cairn_car_writer_open(&w, out, NULL, 0, &ok), 0);
		assert_int_equal(cairn_car_writer_block_count(w), 0);
		assert_int_equal(cairn_car_writer_finish(w), 0);
		cairn_car_writer_free(w);
		load_file(&got, out);
		from_hex(&want, "11a265726f6f7473806776657273696f6e01");
		assert_int_equal(got.len, 18);
		assert_memory_equal(got.data, want.data, 18);
		unlink(out);
		cairn_buf_free(&got);
		cairn_buf_free(&want);
	}
}

/* Every allocation of open, put and finish can fail: CAIRN_ENOMEM, and a
 * writer that failed refuses the rest; nothing leaks. */
static void test_alloc_failure(void **state)
{
	char src[PATH_MAX + 64], out[PATH_MAX + 64], ref[PATH_MAX + 64];
	cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	car_content in;

	(void)state;
	fixture_path(src, sizeof(src), "carv1-basic.car");
	tmp_path(out, sizeof(out), "oom.car");
	tmp_path(ref, sizeof(ref), "oom-ref.car");
	read_car(&in, src);
	for (unsigned version = 1; version <= 2; version++) {
		cairn_car_writer_options opts = {version, version == 2 ? CAIRN_CAR_INDEX_MH_SORTED : 0, false, true};
		long n;

		write_car(ref, &in, NULL, 0, &opts);
		load_file(&want, ref);
		for (n = 1; n < 400; n++) {
			cairn_car_writer *w = NULL;
			int rc;

			cairn_alloc_fail_after(n, false);
			rc = cairn_car_writer_open(&w, out, in.roots, in.nroots, &opts);
			for (size_t i = 0; !rc && i < in.n; i++)
				rc = cairn_car_writer_put(w, &in.blocks[i].cid, in.blocks[i].data, in.blocks[i].len);
			if (!rc)
				rc = cairn_car_writer_finish(w);
			cairn_alloc_fail_after(-1, false);
			if (rc) {
				if (rc != CAIRN_ENOMEM)
					fail_msg("v%u, allocation %ld failing: %d (%s)", version, n, rc,
						 cairn_error_last());
				if (w) {
					/* refused from now on */
					assert_int_equal(cairn_car_writer_put(w, &in.blocks[0].cid, in.blocks[0].data,
									      in.blocks[0].len),
							 CAIRN_EINVAL);
					assert_int_equal(cairn_car_writer_finish(w), CAIRN_EINVAL);
				}
				cairn_car_writer_free(w);
				continue;
			}
			cairn_car_writer_free(w);
			load_file(&got, out);
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.data, want.data, got.len);
			break;
		}
		assert_true(n > 2 && n < 400);
	}
	unlink(out);
	unlink(ref);
	free_content(&in);
	cairn_buf_free(&got);
	cairn_buf_free(&want);
}

/* ------------------------------------------------------------------- main */

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-car-writer-XXXXXX");
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
	const char *env = getenv("CAIRN_FIXTURES");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_header_encode),
		cmocka_unit_test(test_v2_header),
		cmocka_unit_test(test_write_v1),
		cmocka_unit_test(test_v1_noidentity_exact),
		cmocka_unit_test(test_write_v2),
		cmocka_unit_test(test_put_sections),
		cmocka_unit_test(test_v2_matches_go),
		cmocka_unit_test(test_put_mismatch),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_large_and_empty_blocks),
		cmocka_unit_test(test_unfinished_v2),
		cmocka_unit_test(test_writer_errors),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
	};

	if (!env || !*env) {
		fprintf(stderr, "test_writer: set CAIRN_FIXTURES to the shared fixtures folder\n");
		return 77; /* skipped */
	}
	snprintf(cars, sizeof(cars), "%s/car", env);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
