/* test_transient.c: the transient store (src/mount/transient.c) with a fake
 * download: budget and LRU eviction, copies in use never deleted, failed and
 * concurrent downloads, unknown sizes, the directory lock, restart. */
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
#include "mount/mount_i.h"

static char root[256];
static int case_no;

#define MIB (1ull << 20)

static const char *new_dir(char *out, size_t n)
{
	snprintf(out, n, "%s/case-%d", root, ++case_no);
	return out;
}

/* A key per letter: "aaaa…" (32 digits). */
static const char *key(char c, char *buf)
{
	memset(buf, c, 32);
	buf[32] = '\0';
	return buf;
}

typedef struct {
	uint64_t size;       /* bytes to "download" */
	bool unknown;        /* grow the reservation as it goes */
	bool sparse;         /* ftruncate instead of writing (large sizes) */
	int fail;            /* return this after writing half */
	useconds_t delay;
	int calls;
	pthread_mutex_t mu;
} fake_src;

static int fake_fill(int fd, cairn_mount__tstore *ts, cairn_mount__transient *t,
		     uint64_t *size_out, void *payload)
{
	fake_src *f = payload;
	uint8_t buf[4096];
	uint64_t done = 0;
	int rc;

	pthread_mutex_lock(&f->mu);
	f->calls++;
	pthread_mutex_unlock(&f->mu);
	if (f->delay)
		usleep(f->delay);
	if (f->sparse) {
		if (f->unknown && (rc = cairn_mount__tstore_grow(ts, t, f->size, "fake")))
			return rc;
		assert_int_equal(ftruncate(fd, (off_t)f->size), 0);
		*size_out = f->size;
		return 0;
	}
	while (done < f->size) {
		size_t n = f->size - done < sizeof(buf) ? (size_t)(f->size - done) : sizeof(buf);

		if (f->fail && done >= f->size / 2)
			return cairn_error_set(f->fail, "fake: failed at byte %llu", (unsigned long long)done);
		if (f->unknown && (rc = cairn_mount__tstore_grow(ts, t, done + n, "fake")))
			return rc;
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(done + i);
		assert_int_equal(cairn_file_pwrite_full(fd, buf, n, done, "fake"), 0);
		done += n;
	}
	*size_out = done;
	return 0;
}

static fake_src src(uint64_t size)
{
	fake_src f = {.size = size};

	pthread_mutex_init(&f.mu, NULL);
	return f;
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), s = strlen(suffix);

		if (l > s && !strcmp(e->d_name + l - s, suffix))
			n++;
	}
	closedir(d);
	return n;
}

static bool exists(const char *dir, const char *k, const char *suffix)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s%s", dir, k, suffix);
	return access(p, F_OK) == 0;
}

static cairn_mount_http_stats stats(cairn_mount__tstore *ts)
{
	cairn_mount_http_stats s;

	memset(&s, 0, sizeof(s));
	cairn_mount__tstore_stats(ts, &s);
	return s;
}

#define ACQ(t, fd, ts, k, size, f) cairn_mount__tstore_acquire(&(t), &(fd), ts, k, size, "src", fake_fill, f)

static void test_basic(void **state)
{
	char dir[300], k[33], dir2[400];
	cairn_mount__tstore *ts, *ts2;
	cairn_mount__transient *t, *t2;
	fake_src f = src(10000);
	int fd, fd2;
	uint8_t b[16];

	(void)state;
	snprintf(dir2, sizeof(dir2), "%s/deep/er/", new_dir(dir, sizeof(dir)));
	/* Created with its parents; a trailing slash is fine. */
	assert_int_equal(cairn_mount__tstore_open(&ts, dir2, 0), 0);
	snprintf(dir2, sizeof(dir2), "%s/deep/er", dir);
	/* One client per directory. */
	assert_int_equal(cairn_mount__tstore_open(&ts2, dir2, 0), CAIRN_EEXISTS);
	assert_non_null(strstr(cairn_error_last(), "in use"));

	assert_int_equal(ACQ(t, fd, ts, key('a', k), 10000, &f), 0);
	assert_int_equal(f.calls, 1);
	assert_int_equal(cairn_mount__transient_size(t), 10000);
	assert_true(exists(dir2, k, ".complete"));
	assert_false(exists(dir2, k, ".partial"));
	assert_int_equal(cairn_file_pread_full(fd, b, 16, 300, "t"), 0);
	assert_int_equal(b[0], (uint8_t)300);
	assert_non_null(strstr(cairn_mount__transient_path(t), k));

	/* A second user of the same key: no second download. */
	assert_int_equal(ACQ(t2, fd2, ts, k, 10000, &f), 0);
	assert_ptr_equal(t, t2);
	assert_int_equal(f.calls, 1);
	assert_int_equal(stats(ts).transients, 1);
	assert_int_equal(stats(ts).transients_in_use, 1);
	assert_int_equal(stats(ts).transient_bytes, 10000);
	assert_int_equal(stats(ts).downloads, 1);
	/* In use: gc leaves it. */
	assert_int_equal(cairn_mount__tstore_gc(ts, NULL, NULL), 0);
	cairn_mount__tstore_release(ts, t, fd);
	assert_int_equal(cairn_mount__tstore_gc(ts, NULL, NULL), 0);
	cairn_mount__tstore_release(ts, t2, fd2);
	assert_int_equal(stats(ts).transients_in_use, 0);
	{
		uint64_t freed;

		assert_int_equal(cairn_mount__tstore_gc(ts, NULL, &freed), 1);
		assert_int_equal(freed, 10000);
	}
	assert_false(exists(dir2, k, ".complete"));
	assert_int_equal(stats(ts).transient_bytes, 0);
	assert_int_equal(ACQ(t, fd, ts, "not-a-key", 1, &f), CAIRN_EINVAL);
	cairn_mount__tstore_free(ts);
	/* The lock goes with the store. */
	assert_int_equal(cairn_mount__tstore_open(&ts2, dir2, 0), 0);
	cairn_mount__tstore_free(ts2);
}

static void test_budget(void **state)
{
	char dir[300], ka[33], kb[33], kc[33], kd[33];
	cairn_mount__tstore *ts;
	cairn_mount__transient *ta, *tb, *tc;
	fake_src f6 = src(600), f2000 = src(2000);
	int fa, fb, fc;

	(void)state;
	assert_int_equal(cairn_mount__tstore_open(&ts, new_dir(dir, sizeof(dir)), 1000), 0);
	key('a', ka);
	key('b', kb);
	key('c', kc);
	key('d', kd);
	assert_int_equal(ACQ(ta, fa, ts, ka, 600, &f6), 0);
	cairn_mount__tstore_release(ts, ta, fa);
	/* B needs room: A is unused, so it goes. */
	assert_int_equal(ACQ(tb, fb, ts, kb, 600, &f6), 0);
	assert_false(exists(dir, ka, ".complete"));
	assert_true(exists(dir, kb, ".complete"));
	assert_int_equal(stats(ts).evictions, 1);
	/* C needs room, but B is in use: refused, nothing left behind. */
	assert_int_equal(ACQ(tc, fc, ts, kc, 600, &f6), CAIRN_ETOOBIG);
	assert_non_null(strstr(cairn_error_last(), "src: a transient copy needs 600 bytes and only 400"));
	assert_false(exists(dir, kc, ".partial"));
	assert_false(exists(dir, kc, ".complete"));
	assert_true(exists(dir, kb, ".complete"));
	assert_int_equal(f6.calls, 2);
	/* Over the whole budget: refused before anything. */
	assert_int_equal(ACQ(tc, fc, ts, kd, 2000, &f2000), CAIRN_ETOOBIG);
	assert_non_null(strstr(cairn_error_last(), "over the transients budget of 1000 bytes"));
	assert_int_equal(f2000.calls, 0);
	assert_int_equal(stats(ts).transient_bytes, 600);
	cairn_mount__tstore_release(ts, tb, fb);
	/* Now C fits, evicting B. */
	assert_int_equal(ACQ(tc, fc, ts, kc, 600, &f6), 0);
	assert_false(exists(dir, kb, ".complete"));
	cairn_mount__tstore_release(ts, tc, fc);
	assert_int_equal(count_files(dir, ".complete"), 1);
	assert_int_equal(count_files(dir, ".partial"), 0);
	cairn_mount__tstore_free(ts);
}

static void test_lru(void **state)
{
	char dir[300], k[4][33];
	cairn_mount__tstore *ts;
	cairn_mount__transient *t;
	fake_src f = src(300);
	int fd;

	(void)state;
	assert_int_equal(cairn_mount__tstore_open(&ts, new_dir(dir, sizeof(dir)), 1000), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ACQ(t, fd, ts, key((char)('a' + i), k[i]), 300, &f), 0);
		cairn_mount__tstore_release(ts, t, fd);
		usleep(2000);
	}
	/* Read A again: B is now the least recently used. */
	assert_int_equal(ACQ(t, fd, ts, k[0], 300, &f), 0);
	cairn_mount__tstore_touch(t);
	cairn_mount__tstore_release(ts, t, fd);
	assert_int_equal(ACQ(t, fd, ts, key('d', k[3]), 300, &f), 0);
	cairn_mount__tstore_release(ts, t, fd);
	assert_true(exists(dir, k[0], ".complete"));
	assert_false(exists(dir, k[1], ".complete"));
	assert_true(exists(dir, k[2], ".complete"));
	assert_true(exists(dir, k[3], ".complete"));
	cairn_mount__tstore_free(ts);

	/* After a restart the order comes from the mtimes set at release:
	 * with a smaller budget, the oldest (C) goes. */
	assert_int_equal(cairn_mount__tstore_open(&ts, dir, 650), 0);
	assert_false(exists(dir, k[2], ".complete"));
	assert_true(exists(dir, k[0], ".complete"));
	assert_true(exists(dir, k[3], ".complete"));
	assert_int_equal(stats(ts).transients, 2);
	assert_int_equal(stats(ts).transient_bytes, 600);
	cairn_mount__tstore_free(ts);
}

static void test_failures(void **state)
{
	char dir[300], k[33];
	cairn_mount__tstore *ts;
	cairn_mount__transient *t;
	fake_src bad = src(10000), good = src(10000), short_src = src(5000);
	int fd;

	(void)state;
	assert_int_equal(cairn_mount__tstore_open(&ts, new_dir(dir, sizeof(dir)), 20000), 0);
	key('e', k);
	bad.fail = CAIRN_EIO;
	assert_int_equal(ACQ(t, fd, ts, k, 10000, &bad), CAIRN_EIO);
	assert_null(t);
	assert_int_equal(fd, -1);
	assert_int_equal(count_files(dir, ".partial"), 0);
	assert_int_equal(stats(ts).transient_bytes, 0);
	/* Fewer bytes than the size announced. */
	assert_int_equal(ACQ(t, fd, ts, k, 10000, &short_src), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "ended after 5000 bytes of 10000"));
	assert_int_equal(count_files(dir, ".partial") + count_files(dir, ".complete"), 0);
	/* The next open tries again. */
	assert_int_equal(ACQ(t, fd, ts, k, 10000, &good), 0);
	cairn_mount__tstore_release(ts, t, fd);
	/* The source changed size: the old copy is replaced... */
	good.size = 12000;
	assert_int_equal(ACQ(t, fd, ts, k, 12000, &good), 0);
	assert_int_equal(good.calls, 2);
	assert_int_equal(cairn_mount__transient_size(t), 12000);
	/* ...unless in use. */
	assert_int_equal(cairn_mount__tstore_acquire(&(cairn_mount__transient *){NULL}, &(int){0}, ts, k,
						     100, "src", fake_fill, &good), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "in use"));
	cairn_mount__tstore_release(ts, t, fd);
	/* Deleted behind our back: fetched again. */
	{
		char p[400];

		snprintf(p, sizeof(p), "%s/%s.complete", dir, k);
		assert_int_equal(unlink(p), 0);
	}
	assert_int_equal(ACQ(t, fd, ts, k, 12000, &good), 0);
	assert_int_equal(good.calls, 3);
	cairn_mount__tstore_release(ts, t, fd);
	assert_int_equal(stats(ts).transient_bytes, 12000);
	cairn_mount__tstore_free(ts);
}

static void test_unknown_size(void **state)
{
	char dir[300], ka[33], kb[33];
	cairn_mount__tstore *ts;
	cairn_mount__transient *ta, *tb;
	fake_src small = src(10), big = src(60 * MIB), huge = src(160 * MIB), mid = src(100 * MIB);
	int fa, fb;

	(void)state;
	small.unknown = big.unknown = huge.unknown = mid.unknown = true;
	big.sparse = huge.sparse = mid.sparse = true;
	assert_int_equal(cairn_mount__tstore_open(&ts, new_dir(dir, sizeof(dir)), 150 * MIB), 0);
	key('a', ka);
	key('b', kb);
	/* Reserves a step, keeps what it used. */
	assert_int_equal(ACQ(ta, fa, ts, ka, UINT64_MAX, &small), 0);
	assert_int_equal(cairn_mount__transient_size(ta), 10);
	assert_int_equal(stats(ts).transient_bytes, 10);
	cairn_mount__tstore_release(ts, ta, fa);
	/* Grows past a step: fine within the budget. */
	assert_int_equal(ACQ(tb, fb, ts, kb, UINT64_MAX, &mid), 0);
	assert_int_equal(stats(ts).transient_bytes, 100 * MIB + 10);
	cairn_mount__tstore_release(ts, tb, fb);
	/* Grows past the budget: evicts what it can, then fails, gives all back. */
	assert_int_equal(ACQ(ta, fa, ts, key('c', ka), UINT64_MAX, &huge), CAIRN_ETOOBIG);
	assert_int_equal(count_files(dir, ".partial"), 0);
	assert_int_equal(stats(ts).transient_bytes, 0);
	/* A copy in use leaves no room for a first step. */
	assert_int_equal(ACQ(ta, fa, ts, key('d', ka), 100 * MIB, &mid), 0);
	assert_int_equal(ACQ(tb, fb, ts, key('e', kb), UINT64_MAX, &big), CAIRN_ETOOBIG);
	cairn_mount__tstore_release(ts, ta, fa);
	assert_int_equal(ACQ(tb, fb, ts, kb, UINT64_MAX, &big), 0);
	cairn_mount__tstore_release(ts, tb, fb);
	cairn_mount__tstore_free(ts);
}

static void test_restart(void **state)
{
	char dir[300], k[33], p[400];
	cairn_mount__tstore *ts;
	cairn_mount__transient *t;
	fake_src f = src(777);
	int fd;

	(void)state;
	assert_int_equal(cairn_mount__tstore_open(&ts, new_dir(dir, sizeof(dir)), 0), 0);
	assert_int_equal(ACQ(t, fd, ts, key('f', k), 777, &f), 0);
	cairn_mount__tstore_release(ts, t, fd);
	cairn_mount__tstore_free(ts);
	/* A crash mid-download leaves a .partial; others' files are left. */
	snprintf(p, sizeof(p), "%s/%s.partial", dir, key('9', k));
	assert_int_equal(cairn_file_replace_atomic(p, "x", 1, 0644), 0);
	snprintf(p, sizeof(p), "%s/notes.txt", dir);
	assert_int_equal(cairn_file_replace_atomic(p, "x", 1, 0644), 0);
	assert_int_equal(cairn_mount__tstore_open(&ts, dir, 0), 0);
	assert_int_equal(count_files(dir, ".partial"), 0);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(stats(ts).transients, 1);
	assert_int_equal(stats(ts).transient_bytes, 777);
	/* Adopted: no download. */
	assert_int_equal(ACQ(t, fd, ts, key('f', k), 777, &f), 0);
	assert_int_equal(f.calls, 1);
	cairn_mount__tstore_release(ts, t, fd);
	cairn_mount__tstore_free(ts);
	/* A file where the directory should be. */
	assert_int_equal(cairn_mount__tstore_open(&ts, p, 0), CAIRN_EIO);
}

#define THREADS 8

typedef struct {
	cairn_mount__tstore *ts;
	fake_src *f;
	cairn_mount__transient *t;
	int fd, rc;
} racer;

static void *race(void *p)
{
	racer *r = p;
	char k[33];

	r->rc = cairn_mount__tstore_acquire(&r->t, &r->fd, r->ts, key('7', k), 50000, "src", fake_fill,
					    r->f);
	return NULL;
}

static void test_concurrent(void **state)
{
	char dir[300];
	cairn_mount__tstore *ts;
	fake_src f = src(50000);
	pthread_t th[THREADS];
	racer r[THREADS];

	(void)state;
	f.delay = 50000;
	assert_int_equal(cairn_mount__tstore_open(&ts, new_dir(dir, sizeof(dir)), 0), 0);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (racer){ts, &f, NULL, -1, -1};
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(f.calls, 1);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(r[i].rc, 0);
		assert_ptr_equal(r[i].t, r[0].t);
	}
	assert_int_equal(stats(ts).transients_in_use, 1);
	for (int i = 0; i < THREADS; i++)
		cairn_mount__tstore_release(ts, r[i].t, r[i].fd);
	assert_int_equal(stats(ts).transients_in_use, 0);
	cairn_mount__tstore_free(ts);
}

static int rm_rf(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/cairn-test-mount-transient-XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return rm_rf(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_lru),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_unknown_size),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests_name("mount/transient", tests, group_setup, group_teardown);
}
