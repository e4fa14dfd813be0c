/* test_file.c: unit tests for the file helpers: full-length pread/pwrite,
 * short reads as corruption, read_all with its limit, and atomic replace. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

typedef struct {
	char dir[PATH_MAX];
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/cairn-test-file-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[PATH_MAX + 256];

		if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void path_in(char *out, size_t cap, const fixture *f, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", f->dir, name);

	assert_true(n > 0 && (size_t)n < cap);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(cairn_file_write_full(fd, p, n, path), 0);
	close(fd);
}

static void test_pread_pwrite_full(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX];
	uint8_t out[5000], in[5000];
	int fd;

	path_in(path, sizeof(path), f, "rw");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 31 + 7);
	assert_int_equal(cairn_file_pwrite_full(fd, out, sizeof(out), 0, "rw"), 0);
	/* past the end: the hole reads as zeros */
	assert_int_equal(cairn_file_pwrite_full(fd, out, 100, 100000, "rw"), 0);
	assert_int_equal(cairn_file_fsync(fd, "rw"), 0);

	memset(in, 0xee, sizeof(in));
	assert_int_equal(cairn_file_pread_full(fd, in, sizeof(in), 0, "rw"), 0);
	assert_memory_equal(in, out, sizeof(out));
	assert_int_equal(cairn_file_pread_full(fd, in, 100, 100000, "rw"), 0);
	assert_memory_equal(in, out, 100);
	assert_int_equal(cairn_file_pread_full(fd, in, 10, 50000, "rw"), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(in[i], 0);
	/* a zero-length read at the very end is fine */
	assert_int_equal(cairn_file_pread_full(fd, in, 0, 100100, "rw"), 0);
	assert_int_equal(cairn_file_pread_full(fd, in, 1, 100099, "rw"), 0);
	assert_int_equal(in[0], out[99]);
	close(fd);
}

static void test_short_read_is_corrupt(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX];
	uint8_t data[100] = {1, 2, 3}, in[50];
	int fd;

	path_in(path, sizeof(path), f, "short");
	write_file(path, data, sizeof(data));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	cairn_error_clear();
	assert_int_equal(cairn_file_pread_full(fd, in, sizeof(in), 80, "short.bin"), CAIRN_ECORRUPT);
	assert_int_equal(cairn_error_last_code(), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "short.bin"));
	assert_non_null(strstr(cairn_error_last(), "at byte 100"));
	/* reading from past the end names that offset */
	assert_int_equal(cairn_file_pread_full(fd, in, 1, 5000, NULL), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at byte 5000"));
	close(fd);
}

static void test_bad_fd_is_eio(void **state)
{
	uint8_t b[4] = {0};

	(void)state;
	assert_int_equal(cairn_file_pread_full(-1, b, sizeof(b), 0, "x"), CAIRN_EIO);
	assert_int_equal(cairn_file_pwrite_full(-1, b, sizeof(b), 0, "x"), CAIRN_EIO);
	assert_int_equal(cairn_file_write_full(-1, b, sizeof(b), "x"), CAIRN_EIO);
	assert_int_equal(cairn_file_fsync(-1, "x"), CAIRN_EIO);
	assert_non_null(strstr(cairn_error_last(), "x: fsync"));
	assert_int_equal(cairn_file_fsync_dir("/nonexistent/cairn/dir"), CAIRN_EIO);
}

static void test_write_full_pipe(void **state)
{
	int fds[2];
	char buf[32] = {0};

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(cairn_file_write_full(fds[1], "through a pipe", 14, "pipe"), 0);
	close(fds[1]);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 14);
	assert_string_equal(buf, "through a pipe");
	close(fds[0]);
}

static void test_read_all(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX];
	size_t n = 200000;
	uint8_t *data = malloc(n);
	cairn_buf b = CAIRN_BUF_INIT;

	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	path_in(path, sizeof(path), f, "all");
	write_file(path, data, n);

	assert_int_equal(cairn_file_read_all(&b, path, n), 0);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, data, n);
	assert_int_equal(b.data[n], 0);
	cairn_buf_free(&b);

	/* one byte over the limit */
	cairn_error_clear();
	assert_int_equal(cairn_file_read_all(&b, path, n - 1), CAIRN_ETOOBIG);
	assert_int_equal(cairn_error_last_code(), CAIRN_ETOOBIG);
	assert_non_null(strstr(cairn_error_last(), path));
	cairn_buf_free(&b);
	assert_int_equal(cairn_file_read_all(&b, path, 10), CAIRN_ETOOBIG);
	cairn_buf_free(&b);

	/* an empty file */
	path_in(path, sizeof(path), f, "empty");
	write_file(path, "", 0);
	assert_int_equal(cairn_file_read_all(&b, path, 0), 0);
	assert_int_equal(b.len, 0);
	cairn_buf_free(&b);

	path_in(path, sizeof(path), f, "missing");
	assert_int_equal(cairn_file_read_all(&b, path, 100), CAIRN_ENOTFOUND);
	assert_non_null(strstr(cairn_error_last(), "missing"));
	cairn_buf_free(&b);
	/* a directory cannot be read */
	assert_int_equal(cairn_file_read_all(&b, f->dir, 100), CAIRN_EIO);
	cairn_buf_free(&b);
	free(data);
}

static void test_replace_atomic(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX];
	cairn_buf b = CAIRN_BUF_INIT;
	struct stat st;
	mode_t old_mask = umask(022);

	path_in(path, sizeof(path), f, "config.json");
	/* creates a file that is not there */
	assert_int_equal(cairn_file_replace_atomic(path, "first", 5, 0644), 0);
	assert_int_equal(cairn_file_read_all(&b, path, 1000), 0);
	assert_string_equal((const char *)b.data, "first");
	cairn_buf_free(&b);
	assert_int_equal(count_entries(f->dir), 1);

	/* replaces the content whole, shorter than before */
	assert_int_equal(cairn_file_replace_atomic(path, "2nd", 3, 0600), 0);
	assert_int_equal(cairn_file_read_all(&b, path, 1000), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "2nd", 3);
	cairn_buf_free(&b);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* and leaves no temporary file behind */
	assert_int_equal(count_entries(f->dir), 1);

	/* empty content */
	assert_int_equal(cairn_file_replace_atomic(path, "", 0, 0644), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(count_entries(f->dir), 1);
	umask(old_mask);
}

static void test_replace_atomic_relative(void **state)
{
	fixture *f = *state;
	cairn_buf b = CAIRN_BUF_INIT;
	int here = open(".", O_RDONLY | O_DIRECTORY);

	assert_true(here >= 0);
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(cairn_file_replace_atomic("plain", "xyz", 3, 0644), 0);
	assert_int_equal(cairn_file_read_all(&b, "plain", 100), 0);
	assert_string_equal((const char *)b.data, "xyz");
	cairn_buf_free(&b);
	assert_int_equal(fchdir(here), 0);
	close(here);
	assert_int_equal(count_entries(f->dir), 1);
}

static void test_replace_atomic_fails_cleanly(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX];

	/* a directory that does not exist */
	path_in(path, sizeof(path), f, "nodir/file");
	assert_int_equal(cairn_file_replace_atomic(path, "x", 1, 0644), CAIRN_EIO);
	assert_int_equal(count_entries(f->dir), 0);
	/* the target is a non-empty directory: rename fails, the temporary goes */
	path_in(path, sizeof(path), f, "sub");
	assert_int_equal(mkdir(path, 0755), 0);
	{
		char inner[PATH_MAX + 8];

		snprintf(inner, sizeof(inner), "%s/in", path);
		write_file(inner, "i", 1);
		assert_int_equal(cairn_file_replace_atomic(path, "x", 1, 0644), CAIRN_EIO);
		assert_non_null(strstr(cairn_error_last(), "rename"));
		assert_int_equal(count_entries(f->dir), 1);
		unlink(inner);
	}
	rmdir(path);
	assert_int_equal(count_entries(f->dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pread_pwrite_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_read_is_corrupt, setup, teardown),
		cmocka_unit_test(test_bad_fd_is_eio),
		cmocka_unit_test(test_write_full_pipe),
		cmocka_unit_test_setup_teardown(test_read_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_atomic_relative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_atomic_fails_cleanly, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
