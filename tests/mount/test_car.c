/* test_car.c: CAR sections read through a mount must be what the descriptor
 * reader (src/car/reader.c) reads: the same sections, offsets, blocks, final
 * codes and messages, on every fixture, with every option and window size;
 * plus what a remote mount must not read (a CARv2's index, skipped blocks). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "cairn/mount.h"

static char cars[PATH_MAX];
static char tmpdir[256];

/* ------------------------------------------------ a remote-looking mount
 *
 * Wraps a file mount, claims to be remote, and records the furthest byte
 * read and the bytes read, so tests can see what would go over the wire. */
typedef struct {
	cairn_mount base;
	cairn_mount *inner;
	uint64_t max_end, bytes, reads;
} spy_mount;

static uint64_t spy_size(cairn_mount *m) { return cairn_mount_size(((spy_mount *)m)->inner); }

static int spy_read(cairn_mount *m, void *buf, size_t n, uint64_t off)
{
	spy_mount *s = (spy_mount *)m;

	if (off + n > s->max_end)
		s->max_end = off + n;
	s->bytes += n;
	s->reads++;
	return cairn_mount_read_at(s->inner, buf, n, off);
}

static void spy_close(cairn_mount *m)
{
	cairn_mount_close(((spy_mount *)m)->inner);
	free(m);
}

static const cairn_mount_ops spy_ops = {
	.version = CAIRN_MOUNT_OPS_VERSION,
	.name = "spy",
	.size = spy_size,
	.read_at = spy_read,
	.close = spy_close,
};

static spy_mount *spy_open(const char *path)
{
	spy_mount *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	{
		cairn_mount_registry *reg;

		assert_int_equal(cairn_mount_registry_new(&reg), 0);
		assert_int_equal(cairn_mount_registry_add(reg, "file", &cairn_mount_file_ops, NULL), 0);
		assert_int_equal(cairn_mount_open(&s->inner, reg, path, NULL), 0);
		cairn_mount_registry_free(reg);
	}
	s->base.ops = &spy_ops;
	s->base.name = cairn_mount_name(s->inner);
	s->base.kind = CAIRN_MOUNT_REMOTE;
	return s;
}

/* ---------------------------------------------------------------- compare */

typedef struct {
	cairn_car_section s;
	uint8_t *block;
} rec;

typedef struct {
	int open_rc, end_rc;
	char open_msg[1100], end_msg[1100];
	unsigned version;
	uint64_t data_offset, data_end, header_len;
	size_t nroots;
	cairn_cid roots[4];
	rec *recs;
	size_t n, cap;
} run;

static void record(run *r, const cairn_car_section *s)
{
	rec *w;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->recs = realloc(r->recs, r->cap * sizeof(*r->recs));
		assert_non_null(r->recs);
	}
	w = &r->recs[r->n++];
	w->s = *s;
	w->block = NULL;
	if (s->block) {
		w->block = malloc(s->block_len + 1);
		memcpy(w->block, s->block, s->block_len);
	}
	w->s.block = NULL;
}

static void run_free(run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->recs[i].block);
	free(r->recs);
	memset(r, 0, sizeof(*r));
}

static void ref_run(run *out, const char *path, const cairn_car_options *o, bool want)
{
	cairn_car_reader *r;
	cairn_car_section s;
	int rc;

	memset(out, 0, sizeof(*out));
	out->open_rc = cairn_car_reader_open(&r, path, o);
	snprintf(out->open_msg, sizeof(out->open_msg), "%s", out->open_rc ? cairn_error_last() : "");
	if (out->open_rc)
		return;
	out->version = cairn_car_reader_version(r);
	out->data_offset = cairn_car_reader_data_offset(r);
	out->data_end = cairn_car_reader_data_end(r);
	out->header_len = cairn_car_reader_header_len(r);
	out->nroots = cairn_car_reader_root_count(r);
	for (size_t i = 0; i < out->nroots && i < 4; i++)
		out->roots[i] = cairn_car_reader_roots(r)[i];
	while ((rc = cairn_car_reader_next(r, &s, want)) == 1)
		record(out, &s);
	out->end_rc = rc;
	snprintf(out->end_msg, sizeof(out->end_msg), "%s", rc ? cairn_error_last() : "");
	cairn_car_reader_free(r);
}

static void mount_run(run *out, cairn_mount *m, const cairn_car_options *o, bool want, size_t window)
{
	cairn_car_reader *r;
	cairn_car_section s;
	int rc;

	memset(out, 0, sizeof(*out));
	out->open_rc = cairn_mount_car_open(&r, m, o, window);
	snprintf(out->open_msg, sizeof(out->open_msg), "%s", out->open_rc ? cairn_error_last() : "");
	if (out->open_rc)
		return;
	out->version = cairn_car_reader_version(r);
	out->data_offset = cairn_car_reader_data_offset(r);
	out->data_end = cairn_car_reader_data_end(r);
	out->header_len = cairn_car_reader_header_len(r);
	out->nroots = cairn_car_reader_root_count(r);
	for (size_t i = 0; i < out->nroots && i < 4; i++)
		out->roots[i] = cairn_car_reader_roots(r)[i];
	if (out->version == 2)
		assert_non_null(cairn_car_reader_v2_header(r));
	else
		assert_null(cairn_car_reader_v2_header(r));
	while ((rc = cairn_car_reader_next(r, &s, want)) == 1)
		record(out, &s);
	out->end_rc = rc;
	snprintf(out->end_msg, sizeof(out->end_msg), "%s", rc ? cairn_error_last() : "");
	cairn_car_reader_free(r);
}

static void same(const run *a, const run *b, const char *what)
{
	if (a->open_rc != b->open_rc || strcmp(a->open_msg, b->open_msg))
		fail_msg("%s: open: %d \"%s\" vs %d \"%s\"", what, a->open_rc, a->open_msg, b->open_rc,
			 b->open_msg);
	if (a->open_rc)
		return;
	assert_int_equal(a->version, b->version);
	assert_int_equal(a->data_offset, b->data_offset);
	assert_int_equal(a->data_end, b->data_end);
	assert_int_equal(a->header_len, b->header_len);
	assert_int_equal(a->nroots, b->nroots);
	for (size_t i = 0; i < a->nroots && i < 4; i++)
		assert_true(cairn_cid_equal(&a->roots[i], &b->roots[i]));
	if (a->n != b->n)
		fail_msg("%s: %zu sections vs %zu", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		const cairn_car_section *x = &a->recs[i].s, *y = &b->recs[i].s;

		if (!cairn_cid_equal(&x->cid, &y->cid) || x->offset != y->offset ||
		    x->file_offset != y->file_offset || x->length != y->length ||
		    x->cid_len != y->cid_len || x->block_offset != y->block_offset ||
		    x->block_len != y->block_len)
			fail_msg("%s: section %zu differs", what, i);
		assert_int_equal(!a->recs[i].block, !b->recs[i].block);
		if (a->recs[i].block)
			assert_memory_equal(a->recs[i].block, b->recs[i].block, x->block_len);
	}
	if (a->end_rc != b->end_rc || strcmp(a->end_msg, b->end_msg))
		fail_msg("%s: end: %d \"%s\" vs %d \"%s\"", what, a->end_rc, a->end_msg, b->end_rc,
			 b->end_msg);
}

static cairn_mount *open_file(const char *path)
{
	cairn_mount_registry *reg;
	cairn_mount *m;

	assert_int_equal(cairn_mount_registry_new(&reg), 0);
	assert_int_equal(cairn_mount_registry_add(reg, "file", &cairn_mount_file_ops, NULL), 0);
	assert_int_equal(cairn_mount_open(&m, reg, path, NULL), 0);
	cairn_mount_registry_free(reg);
	return m;
}

/* Every option the reader has, windows from tiny (a refill at every step)
 * to the default; `quick` tries fewer windows (for the many damaged copies,
 * and so the sanitizer build stays within its time). */
static void compare_all(const char *path, bool quick)
{
	static const size_t windows[] = {0, 1, 37, 4096};
	size_t nwin = quick ? 2 : sizeof(windows) / sizeof(windows[0]);
	cairn_mount *m = open_file(path);
	spy_mount *spy = spy_open(path);

	for (int trusted = 0; trusted < 2; trusted++)
		for (int zero = 0; zero < 2; zero++)
			for (int want = 0; want < 2; want++) {
				cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;
				run ref, got;

				o.trusted = trusted;
				o.zero_length_as_eof = zero;
				ref_run(&ref, path, &o, want);
				for (size_t w = 0; w < nwin; w++) {
					char what[PATH_MAX + 400];

					snprintf(what, sizeof(what), "%s trusted=%d zero=%d want=%d window=%zu",
						 path, trusted, zero, want, windows[w]);
					mount_run(&got, m, &o, want, windows[w]);
					same(&ref, &got, what);
					run_free(&got);
					/* The remote path differs only in its reads. */
					if (w % 2)
						continue;
					mount_run(&got, &spy->base, &o, want, windows[w]);
					same(&ref, &got, what);
					run_free(&got);
				}
				run_free(&ref);
			}
	cairn_mount_close(m);
	cairn_mount_close(&spy->base);
}

static bool is_car(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && !strcmp(name + n - 4, ".car");
}

static void test_fixtures(void **state)
{
	DIR *d = opendir(cars);
	struct dirent *e;
	int count = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[PATH_MAX + 256];

		if (!is_car(e->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", cars, e->d_name);
		compare_all(path, false);
		count++;
	}
	closedir(d);
	assert_true(count >= 15);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	assert_int_equal(cairn_file_replace_atomic(path, p, n, 0644), 0);
}

static void read_fixture(cairn_buf *b, const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", cars, name);
	assert_int_equal(cairn_file_read_all(b, path, 1 << 24), 0);
}

/* Cut-down and damaged copies: every prefix of a small CAR, a flipped byte
 * in every position of its first sections; a Filecoin piece (a CARv1 and
 * zero padding). */
static void test_damaged(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;
	char path[300];

	(void)state;
	read_fixture(&b, "carv2-basic.car");
	snprintf(path, sizeof(path), "%s/cut.car", tmpdir);
	for (size_t n = 0; n <= b.len; n += (n < 130 ? 1 : 17)) {
		write_file(path, b.data, n);
		compare_all(path, true);
	}
	for (size_t i = 0; i < 260 && i < b.len; i += 4) {
		b.data[i] ^= 0x5a;
		write_file(path, b.data, b.len);
		compare_all(path, true);
		b.data[i] ^= 0x5a;
	}
	cairn_buf_clear(&b);
	read_fixture(&b, "carv1-basic.car");
	{
		size_t len = b.len;

		for (size_t pad = 1; pad < 4000; pad = pad * 3 + 1) {
			uint8_t *p = calloc(1, len + pad);

			memcpy(p, b.data, len);
			write_file(path, p, len + pad);
			compare_all(path, true);
			free(p);
		}
	}
	cairn_buf_free(&b);
}

/* A remote mount reads nothing past the payload (a CARv2's index stays on
 * the server) and, trusted and without blocks, skips blocks larger than the
 * window instead of reading them. */
static void test_remote_reads(void **state)
{
	char path[PATH_MAX + 64];
	cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;
	cairn_car_reader *r;
	cairn_car_section s;
	spy_mount *spy;
	uint64_t data_end, block_bytes = 0, sections = 0;
	int rc;

	(void)state;
	snprintf(path, sizeof(path), "%s/sample-wrapped-v2.car", cars);
	spy = spy_open(path);
	assert_int_equal(cairn_mount_car_open(&r, &spy->base, NULL, 0), 0);
	assert_int_equal(cairn_car_reader_version(r), 2);
	data_end = cairn_car_reader_data_end(r);
	assert_true(data_end < cairn_mount_size(&spy->base));
	while ((rc = cairn_car_reader_next(r, &s, true)) == 1)
		;
	assert_int_equal(rc, 0);
	assert_true(spy->max_end <= data_end);
	assert_int_equal(cairn_car_reader_bytes_read(r), spy->bytes);
	/* One 4 MiB window holds this whole CAR: two reads (headers, payload). */
	assert_true(spy->reads <= 2);
	cairn_car_reader_free(r);
	cairn_mount_close(&spy->base);

	/* Trusted, no blocks, a window smaller than the blocks: only heads. */
	snprintf(path, sizeof(path), "%s/sample-v1.car", cars);
	spy = spy_open(path);
	o.trusted = true;
	assert_int_equal(cairn_mount_car_open(&r, &spy->base, &o, 64), 0);
	while ((rc = cairn_car_reader_next(r, &s, false)) == 1) {
		if (s.block_len > 200)
			block_bytes += s.block_len;
		sections++;
	}
	assert_int_equal(rc, 0);
	assert_true(sections > 100);
	if (spy->bytes >= cairn_mount_size(&spy->base) - block_bytes + sections * 300)
		fail_msg("read %llu bytes of %llu, %llu in %llu sections of over 200 bytes",
			 (unsigned long long)spy->bytes, (unsigned long long)cairn_mount_size(&spy->base),
			 (unsigned long long)block_bytes, (unsigned long long)sections);
	cairn_car_reader_free(r);
	cairn_mount_close(&spy->base);
}

typedef struct {
	uint64_t n, stop_at;
} counter;

static int count_fn(const cairn_car_section *s, void *payload)
{
	counter *c = payload;

	(void)s;
	return ++c->n == c->stop_at ? 42 : 0;
}

static void test_foreach(void **state)
{
	char path[PATH_MAX + 64];
	cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;
	counter c = {0, 0};
	run ref;
	cairn_mount *m;

	(void)state;
	snprintf(path, sizeof(path), "%s/sample-v1-with-zero-len-section.car", cars);
	m = open_file(path);
	o.zero_length_as_eof = true;
	ref_run(&ref, path, &o, false);
	assert_int_equal(ref.end_rc, 0);
	assert_int_equal(cairn_mount_car_foreach(m, &o, count_fn, &c), 0);
	assert_int_equal(c.n, ref.n);
	c = (counter){0, 3};
	assert_int_equal(cairn_mount_car_foreach(m, &o, count_fn, &c), 42);
	assert_int_equal(c.n, 3);
	/* Without the option the zero-length section is an error. */
	o.zero_length_as_eof = false;
	c = (counter){0, 0};
	assert_int_equal(cairn_mount_car_foreach(m, &o, count_fn, &c), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "zero-length section"));
	assert_int_equal(cairn_mount_car_foreach(m, &o, NULL, NULL), CAIRN_EINVAL);
	run_free(&ref);
	cairn_mount_close(m);
}

/* Point reads: the same as cairn_car_section_read at every section, and at
 * offsets that are not sections. */
static void test_section_read(void **state)
{
	static const char *const names[] = {"sample-v1.car", "sample-wrapped-v2.car", "carv2-basic.car",
					    "sample-v1-tailing-corrupt-section.car"};

	(void)state;
	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		char path[PATH_MAX + 64];
		cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;
		cairn_buf a = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT;
		cairn_car_reader *cr;
		cairn_mount *m;
		uint64_t doff, dend;
		run ref;

		snprintf(path, sizeof(path), "%s/%s", cars, names[f]);
		o.trusted = true;
		ref_run(&ref, path, &o, false);
		assert_int_equal(cairn_car_reader_open(&cr, path, NULL), 0);
		doff = cairn_car_reader_data_offset(cr);
		dend = cairn_car_reader_data_end(cr);
		m = open_file(path);
		for (int trusted = 0; trusted < 2; trusted++) {
			o.trusted = trusted;
			for (size_t i = 0; i < ref.n + 40; i++) {
				uint64_t off = i < ref.n ? ref.recs[i].s.offset : (uint64_t)(i - ref.n) * 7919 % (dend - doff + 20);
				cairn_car_section x, y;
				int ra, rb;
				char ma[1100];

				ra = cairn_car_section_read(&x, &a, cairn_car_reader_fd(cr), path, doff, dend, off, &o);
				snprintf(ma, sizeof(ma), "%s", ra ? cairn_error_last() : "");
				rb = cairn_mount_car_section_read(&y, &b, m, doff, dend, off, &o);
				if (ra != rb || (ra && strcmp(ma, cairn_error_last())))
					fail_msg("%s at %llu: %d \"%s\" vs %d \"%s\"", path, (unsigned long long)off, ra, ma,
						 rb, cairn_error_last());
				if (ra)
					continue;
				assert_true(cairn_cid_equal(&x.cid, &y.cid));
				assert_int_equal(x.block_offset, y.block_offset);
				assert_int_equal(x.block_len, y.block_len);
				assert_int_equal(x.offset, y.offset);
				assert_memory_equal(a.data, b.data, a.len);
				assert_int_equal(a.len, b.len);
			}
		}
		assert_int_equal(cairn_mount_car_section_read(&(cairn_car_section){0}, &b, m, dend, doff, 0, &o),
				 CAIRN_EINVAL);
		cairn_buf_free(&a);
		cairn_buf_free(&b);
		cairn_car_reader_free(cr);
		cairn_mount_close(m);
		run_free(&ref);
	}
}

static void test_alloc_failure(void **state)
{
	char path[PATH_MAX + 64];
	int ok = 0;
	cairn_mount *m;

	(void)state;
	snprintf(path, sizeof(path), "%s/carv1-basic.car", cars);
	m = open_file(path);
	for (long n = 1; n < 100 && !ok; n++) {
		cairn_car_reader *r = NULL;
		cairn_car_section s;
		int rc;

		cairn_alloc_fail_after(n, false);
		if (!(rc = cairn_mount_car_open(&r, m, NULL, 0)))
			while ((rc = cairn_car_reader_next(r, &s, true)) == 1)
				;
		cairn_alloc_fail_after(-1, false);
		if (rc)
			assert_int_equal(rc, CAIRN_ENOMEM);
		else
			ok = 1;
		cairn_car_reader_free(r);
	}
	assert_true(ok);
	cairn_mount_close(m);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-mount-car-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char p[300];

	(void)state;
	snprintf(p, sizeof(p), "%s/cut.car", tmpdir);
	unlink(p);
	return rmdir(tmpdir);
}

int main(void)
{
	const char *env = getenv("CAIRN_FIXTURES");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_remote_reads),
		cmocka_unit_test(test_foreach),
		cmocka_unit_test(test_section_read),
		cmocka_unit_test(test_alloc_failure),
	};

	if (!env || !*env) {
		fprintf(stderr, "CAIRN_FIXTURES is not set\n");
		return 1;
	}
	snprintf(cars, sizeof(cars), "%s/car", env);
	return cmocka_run_group_tests_name("mount/car", tests, group_setup, group_teardown);
}
