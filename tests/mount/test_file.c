/* test_file.c: unit tests for the mount registry and wrappers (with a fake
 * mount that counts calls) and for file mounts: URLs, sizes, reads at every
 * boundary, missing files, stat, concurrent readers, allocation failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"
#include "cairn/mount.h"

static char tmpdir[256];

/* ---------------------------------------------------------------- helpers */

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)((i * 131 + (i >> 8) * 7 + 3) & 0xff);
}

static void make_file(char *path, size_t n, const char *name, uint64_t size)
{
	uint8_t *p = malloc(size ? size : 1);

	assert_non_null(p);
	for (uint64_t i = 0; i < size; i++)
		p[i] = pattern(i);
	snprintf(path, n, "%s/%s", tmpdir, name);
	assert_int_equal(cairn_file_replace_atomic(path, p, size, 0644), 0);
	free(p);
}

static cairn_mount_registry *file_registry(void)
{
	cairn_mount_registry *reg;

	assert_int_equal(cairn_mount_registry_new(&reg), 0);
	assert_int_equal(cairn_mount_registry_add(reg, "file", &cairn_mount_file_ops, NULL), 0);
	return reg;
}

static void url_of(char *out, size_t n, const char *path)
{
	cairn_buf b = CAIRN_BUF_INIT;

	assert_int_equal(cairn_mount_file_url(&b, path), 0);
	snprintf(out, n, "%s", (char *)b.data);
	cairn_buf_free(&b);
}

#define assert_error(expr, code, needle)                                                    \
	do {                                                                                \
		int rc_ = (expr);                                                           \
		if (rc_ != (code) || !strstr(cairn_error_last(), (needle)))                 \
			fail_msg("%s: got %d (%s), wanted %d with \"%s\"", #expr, rc_,     \
				 cairn_error_last(), (code), (needle));                     \
	} while (0)

/* ------------------------------------------------------------ a fake mount */

typedef struct {
	cairn_mount base;
	uint64_t size;
	int *reads; /* calls that reached read_at */
} fake_mount;

static const cairn_mount_ops fake_ops;

typedef struct {
	int opens, reads, closes;
	const char *last_url;
} fake_ctx;

static uint64_t fake_size(cairn_mount *m) { return ((fake_mount *)m)->size; }

static int fake_read(cairn_mount *m, void *buf, size_t n, uint64_t off)
{
	fake_mount *fm = (fake_mount *)m;

	/* The wrapper must have checked bounds. */
	assert_true(n > 0 && off + n <= fm->size);
	(*fm->reads)++;
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = pattern(off + i);
	return 0;
}

static fake_ctx *close_ctx;

static void fake_close(cairn_mount *m)
{
	close_ctx->closes++;
	free(m);
}

static int fake_open(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *opts)
{
	fake_ctx *fc = ctx;
	fake_mount *fm;

	(void)opts;
	fc->opens++;
	fc->last_url = url;
	if (strstr(url, "missing"))
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: no such fake", url);
	fm = calloc(1, sizeof(*fm));
	fm->base.ops = &fake_ops;
	fm->base.name = "fake";
	fm->base.kind = CAIRN_MOUNT_REMOTE;
	fm->size = 1000;
	fm->reads = &fc->reads;
	close_ctx = fc;
	*out = &fm->base;
	return 0;
}

static const cairn_mount_ops fake_ops = {
	.version = CAIRN_MOUNT_OPS_VERSION,
	.name = "fake",
	.open = fake_open,
	.size = fake_size,
	.read_at = fake_read,
	.close = fake_close,
};

/* ------------------------------------------------------------------ tests */

static void test_registry(void **state)
{
	cairn_mount_registry *reg;
	cairn_mount_ops v2 = fake_ops, partial = fake_ops;
	fake_ctx fc = {0};
	cairn_mount *m = (cairn_mount *)1;
	cairn_mount_status st;
	uint8_t buf[16];

	(void)state;
	assert_int_equal(cairn_mount_registry_new(&reg), 0);
	/* Nothing registered: every scheme is unknown, and named. */
	assert_error(cairn_mount_open(&m, reg, "s3://bucket/x.car", NULL), CAIRN_EUNSUPPORTED, "s3://");
	assert_null(m);
	assert_error(cairn_mount_open(&m, reg, "/abs/x.car", NULL), CAIRN_EUNSUPPORTED, "file://");
	assert_error(cairn_mount_open(&m, reg, "rel/x.car", NULL), CAIRN_EINVAL, "absolute path");
	assert_error(cairn_mount_open(&m, reg, "", NULL), CAIRN_EINVAL, "neither");

	/* Bad tables and schemes. */
	v2.version = CAIRN_MOUNT_OPS_VERSION + 1;
	assert_error(cairn_mount_registry_add(reg, "fake", &v2, &fc), CAIRN_EUNSUPPORTED, "version");
	partial.read_at = NULL;
	assert_error(cairn_mount_registry_add(reg, "fake", &partial, &fc), CAIRN_EINVAL, "required");
	assert_error(cairn_mount_registry_add(reg, "1abc", &fake_ops, &fc), CAIRN_EINVAL, "scheme");
	assert_error(cairn_mount_registry_add(reg, "a b", &fake_ops, &fc), CAIRN_EINVAL, "scheme");
	assert_error(cairn_mount_registry_add(reg, "", &fake_ops, &fc), CAIRN_EINVAL, "scheme");

	assert_int_equal(cairn_mount_registry_add(reg, "fake+v1", &fake_ops, &fc), 0);
	assert_error(cairn_mount_registry_add(reg, "FAKE+v1", &fake_ops, &fc), CAIRN_EEXISTS, "already");

	/* Schemes match without regard to case; the URL reaches open whole. */
	assert_int_equal(cairn_mount_open(&m, reg, "Fake+V1://x/y", NULL), 0);
	assert_int_equal(fc.opens, 1);
	assert_string_equal(fc.last_url, "Fake+V1://x/y");
	assert_int_equal(cairn_mount_size(m), 1000);
	assert_string_equal(cairn_mount_name(m), "fake");
	assert_int_equal(cairn_mount_get_kind(m), CAIRN_MOUNT_REMOTE);
	assert_int_equal(cairn_mount_fd(m), -1);

	/* Bounds are the wrapper's: read_at never sees a bad range. */
	assert_int_equal(cairn_mount_read_at(m, buf, 16, 984), 0);
	assert_int_equal(buf[15], pattern(999));
	assert_int_equal(cairn_mount_read_at(m, buf, 0, 1000), 0);
	assert_int_equal(fc.reads, 1);
	assert_error(cairn_mount_read_at(m, buf, 16, 985), CAIRN_ECORRUPT, "fake: at byte 985: unexpected end of data");
	assert_error(cairn_mount_read_at(m, buf, 0, 1001), CAIRN_ECORRUPT, "at byte 1001");
	assert_error(cairn_mount_read_at(m, buf, 2, UINT64_MAX), CAIRN_ECORRUPT, "unexpected end");
	assert_error(cairn_mount_read_at(m, NULL, 2, 0), CAIRN_EINVAL, "NULL");
	assert_int_equal(fc.reads, 1);

	/* No stat operation: answered from open. */
	assert_int_equal(cairn_mount_stat(m, &st), 0);
	assert_true(st.exists && st.ready && st.random && !st.transient);
	assert_int_equal(st.size, 1000);
	assert_int_equal(st.kind, CAIRN_MOUNT_REMOTE);

	/* The registry may go before its mounts; a borrowed ctx is left alone. */
	cairn_mount_registry_free(reg);
	assert_int_equal(cairn_mount_read_at(m, buf, 1, 0), 0);
	cairn_mount_close(m);
	assert_int_equal(fc.closes, 1);
	cairn_mount_close(NULL);
	cairn_mount_registry_free(NULL);

	/* stat_url: a missing source is exists = false, not an error. */
	assert_int_equal(cairn_mount_registry_new(&reg), 0);
	assert_int_equal(cairn_mount_registry_add(reg, "fake", &fake_ops, &fc), 0);
	memset(&st, 0xff, sizeof(st));
	assert_int_equal(cairn_mount_stat_url(&st, reg, "fake://missing"), 0);
	assert_false(st.exists);
	assert_int_equal(cairn_mount_stat_url(&st, reg, "fake://there"), 0);
	assert_true(st.exists);
	assert_int_equal(fc.closes, 2);
	assert_error(cairn_mount_stat_url(&st, reg, "nope://x"), CAIRN_EUNSUPPORTED, "nope://");
	cairn_mount_registry_free(reg);
}

static void test_default_registry(void **state)
{
	cairn_mount_registry *reg;
	cairn_mount *m;
	char path[PATH_MAX];

	(void)state;
	make_file(path, sizeof(path), "default.bin", 10);
	assert_int_equal(cairn_mount_registry_new_default(&reg, NULL), 0);
	assert_int_equal(cairn_mount_open(&m, reg, path, NULL), 0);
	assert_int_equal(cairn_mount_size(m), 10);
	cairn_mount_close(m);
	/* http and https are there: a refused connection is an I/O error,
	 * not an unknown scheme. (Port 1 on loopback: nothing listens.) */
	{
		cairn_mount_http_options o = CAIRN_MOUNT_HTTP_OPTIONS_INIT;
		cairn_mount_registry *r2;

		o.retries = 0;
		assert_int_equal(cairn_mount_registry_new_default(&r2, &o), 0);
		assert_error(cairn_mount_open(&m, r2, "http://127.0.0.1:1/x.car", NULL), CAIRN_EIO,
			     "http://127.0.0.1:1/x.car");
		assert_error(cairn_mount_open(&m, r2, "HTTPS://127.0.0.1:1/x.car", NULL), CAIRN_EIO,
			     "127.0.0.1:1");
		cairn_mount_registry_free(r2);
	}
	cairn_mount_registry_free(reg);
}

static void test_sizes(void **state)
{
	static const uint64_t sizes[] = {0, 1, 4095, 4096, 4097, (1u << 20) + 3};
	cairn_mount_registry *reg = file_registry();

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char name[64], path[PATH_MAX], url[PATH_MAX + 32], alt[PATH_MAX + 32],
			alt2[PATH_MAX + 32];
		const char *forms[4];
		cairn_mount *m;

		snprintf(name, sizeof(name), "size-%llu.bin", (unsigned long long)sizes[i]);
		make_file(path, sizeof(path), name, sizes[i]);
		url_of(url, sizeof(url), path);
		snprintf(alt, sizeof(alt), "file://localhost%s", path);
		forms[0] = path;
		forms[1] = url;
		forms[2] = alt;
		snprintf(alt2, sizeof(alt2), "file:%s", path); /* RFC 8089's short form */
		forms[3] = alt2;
		for (size_t f = 0; f < 4; f++) {
			assert_int_equal(cairn_mount_open(&m, reg, forms[f], NULL), 0);
			assert_int_equal(cairn_mount_size(m), sizes[i]);
			assert_string_equal(cairn_mount_name(m), path);
			assert_int_equal(cairn_mount_get_kind(m), CAIRN_MOUNT_LOCAL);
			assert_true(cairn_mount_fd(m) >= 0);
			cairn_mount_close(m);
		}
	}
	cairn_mount_registry_free(reg);
}

static void test_boundaries(void **state)
{
	static const uint64_t offs[] = {0, 1, 2, 4094, 4095, 4096, 4097, 8191, 8192, 8193, 8194};
	static const size_t lens[] = {0, 1, 2, 4095, 4096, 4097, 8193};
	const uint64_t size = 8193;
	cairn_mount_registry *reg = file_registry();
	char path[PATH_MAX];
	uint8_t *buf = malloc(16384);
	cairn_mount *m;

	(void)state;
	make_file(path, sizeof(path), "bounds.bin", size);
	assert_int_equal(cairn_mount_open(&m, reg, path, NULL), 0);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			uint64_t off = offs[i];
			size_t n = lens[j];
			int rc = cairn_mount_read_at(m, buf, n, off);

			if (off <= size && n <= size - off) {
				assert_int_equal(rc, 0);
				for (size_t k = 0; k < n; k++)
					if (buf[k] != pattern(off + k))
						fail_msg("byte %llu differs", (unsigned long long)(off + k));
			} else {
				char want[64];

				snprintf(want, sizeof(want), "at byte %llu", (unsigned long long)off);
				assert_int_equal(rc, CAIRN_ECORRUPT);
				assert_non_null(strstr(cairn_error_last(), path));
				assert_non_null(strstr(cairn_error_last(), want));
			}
		}
	}
	cairn_mount_close(m);
	cairn_mount_registry_free(reg);
	free(buf);
}

static void test_missing_and_bad(void **state)
{
	cairn_mount_registry *reg = file_registry();
	char path[PATH_MAX + 64], url[PATH_MAX + 128];
	cairn_mount *m = (cairn_mount *)1;

	(void)state;
	snprintf(path, sizeof(path), "%s/no-such.car", tmpdir);
	assert_error(cairn_mount_open(&m, reg, path, NULL), CAIRN_ENOTFOUND, path);
	assert_null(m);
	url_of(url, sizeof(url), path);
	assert_error(cairn_mount_open(&m, reg, url, NULL), CAIRN_ENOTFOUND, "no-such.car");
	snprintf(path, sizeof(path), "%s/no-dir/x.car", tmpdir);
	assert_error(cairn_mount_open(&m, reg, path, NULL), CAIRN_ENOTFOUND, "no-dir");
	/* A directory is not a shard. */
	assert_error(cairn_mount_open(&m, reg, tmpdir, NULL), CAIRN_EINVAL, "not a regular file");
	/* URLs that are not ours or malformed. */
	assert_error(cairn_mount_open(&m, reg, "file://example.com/x.car", NULL), CAIRN_EUNSUPPORTED,
		     "another host (example.com)");
	assert_error(cairn_mount_open(&m, reg, "file://", NULL), CAIRN_EINVAL, "needs a path");
	assert_error(cairn_mount_open(&m, reg, "file:relative.car", NULL), CAIRN_EINVAL, "absolute");
	assert_error(cairn_mount_open(&m, reg, "file:///x.car?y", NULL), CAIRN_EINVAL, "%3F");
	assert_error(cairn_mount_open(&m, reg, "file:///x%2", NULL), CAIRN_EINVAL, "percent-escape");
	assert_error(cairn_mount_open(&m, reg, "file:///x%zz.car", NULL), CAIRN_EINVAL, "percent-escape");
	assert_error(cairn_mount_open(&m, reg, "file:///x%00.car", NULL), CAIRN_EINVAL, "NUL");
	assert_error(cairn_mount_open(&m, reg, "/x.car", &(cairn_mount_options){(cairn_mount_fetch)7}),
		     CAIRN_EINVAL, "fetch policy");
	assert_error(cairn_mount_open(NULL, reg, "/x.car", NULL), CAIRN_EINVAL, "NULL");
	cairn_mount_registry_free(reg);
}

static void test_escaped_names(void **state)
{
	cairn_mount_registry *reg = file_registry();
	char path[PATH_MAX], url[PATH_MAX * 3];
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_mount *m;

	(void)state;
	make_file(path, sizeof(path), "a b#c?d%e\xc3\xa9.car", 77);
	url_of(url, sizeof(url), path);
	assert_non_null(strstr(url, "a%20b%23c%3Fd%25e%C3%A9.car"));
	assert_int_equal(strncmp(url, "file:///", 8), 0);
	assert_int_equal(cairn_mount_open(&m, reg, url, NULL), 0);
	assert_int_equal(cairn_mount_size(m), 77);
	assert_string_equal(cairn_mount_name(m), path);
	cairn_mount_close(m);
	/* lower-case escapes decode the same */
	for (char *p = url; *p; p++)
		if (p[0] == '%' && p[1] == 'C')
			p[1] = 'c';
	assert_int_equal(cairn_mount_open(&m, reg, url, NULL), 0);
	cairn_mount_close(m);
	assert_error(cairn_mount_file_url(&b, "rel/x"), CAIRN_EINVAL, "absolute");
	cairn_buf_free(&b);
	cairn_mount_registry_free(reg);
}

static void test_stat_and_shrink(void **state)
{
	cairn_mount_registry *reg = file_registry();
	char path[PATH_MAX];
	cairn_mount_status st;
	uint8_t buf[100];
	cairn_mount *m;

	(void)state;
	make_file(path, sizeof(path), "shrink.bin", 10000);
	assert_int_equal(cairn_mount_open(&m, reg, path, NULL), 0);
	assert_int_equal(cairn_mount_stat(m, &st), 0);
	assert_true(st.exists && st.ready && st.random && !st.transient);
	assert_int_equal(st.kind, CAIRN_MOUNT_LOCAL);
	assert_int_equal(st.size, 10000);

	/* Cut short under the mount: a read past the new end names the file
	 * and the offset where the bytes ran out; the size stays as at open. */
	assert_int_equal(truncate(path, 9950), 0);
	assert_int_equal(cairn_mount_stat(m, &st), 0);
	assert_int_equal(st.size, 9950);
	assert_int_equal(cairn_mount_size(m), 10000);
	assert_int_equal(cairn_mount_read_at(m, buf, 50, 9900), 0);
	assert_error(cairn_mount_read_at(m, buf, 100, 9900), CAIRN_ECORRUPT, "at byte 9950: unexpected end of file");

	/* Deleted: stat says so; the open descriptor still reads. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(cairn_mount_stat(m, &st), 0);
	assert_false(st.exists);
	assert_int_equal(cairn_mount_read_at(m, buf, 10, 0), 0);
	assert_int_equal(buf[9], pattern(9));
	cairn_mount_close(m);

	assert_int_equal(cairn_mount_stat_url(&st, reg, path), 0);
	assert_false(st.exists);
	make_file(path, sizeof(path), "shrink.bin", 5);
	assert_int_equal(cairn_mount_stat_url(&st, reg, path), 0);
	assert_true(st.exists);
	assert_int_equal(st.size, 5);
	cairn_mount_registry_free(reg);
}

#define THREADS 8
#define READS 2000

typedef struct {
	cairn_mount *m;
	uint64_t size;
	unsigned seed;
	int bad;
} reader_arg;

static void *reader(void *p)
{
	reader_arg *a = p;
	uint8_t buf[9000];

	for (int i = 0; i < READS; i++) {
		uint64_t off = (uint64_t)rand_r(&a->seed) % a->size;
		size_t n = (size_t)rand_r(&a->seed) % sizeof(buf);

		if (n > a->size - off)
			n = (size_t)(a->size - off);
		if (cairn_mount_read_at(a->m, buf, n, off)) {
			a->bad++;
			continue;
		}
		for (size_t k = 0; k < n; k++)
			if (buf[k] != pattern(off + k)) {
				a->bad++;
				break;
			}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	cairn_mount_registry *reg = file_registry();
	pthread_t t[THREADS];
	reader_arg args[THREADS];
	char path[PATH_MAX];
	cairn_mount *m;

	(void)state;
	make_file(path, sizeof(path), "threads.bin", 3u << 20);
	assert_int_equal(cairn_mount_open(&m, reg, path, NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (reader_arg){m, cairn_mount_size(m), (unsigned)i * 7919u + 1, 0};
		assert_int_equal(pthread_create(&t[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	cairn_mount_close(m);
	cairn_mount_registry_free(reg);
}

static void test_alloc_failure(void **state)
{
	char path[PATH_MAX];
	int ok = 0;

	(void)state;
	make_file(path, sizeof(path), "oom.bin", 100);
	for (long n = 1; n < 50 && !ok; n++) {
		cairn_mount_registry *reg = NULL;
		cairn_mount *m = NULL;
		int rc;

		cairn_alloc_fail_after(n, false);
		rc = cairn_mount_registry_new(&reg);
		if (!rc)
			rc = cairn_mount_registry_add(reg, "file", &cairn_mount_file_ops, NULL);
		if (!rc)
			rc = cairn_mount_open(&m, reg, path, NULL);
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
			assert_null(m);
		} else {
			assert_int_equal(cairn_mount_size(m), 100);
			ok = 1;
		}
		cairn_mount_close(m);
		cairn_mount_registry_free(reg);
	}
	assert_true(ok);
}

/* ------------------------------------------------------------------ main */

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
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-mount-file-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return rm_tmpdir();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_default_registry),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_missing_and_bad),
		cmocka_unit_test(test_escaped_names),
		cmocka_unit_test(test_stat_and_shrink),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_alloc_failure),
	};

	return cmocka_run_group_tests_name("mount/file", tests, group_setup, group_teardown);
}
