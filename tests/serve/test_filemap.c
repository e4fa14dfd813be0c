/* test_filemap.c: the gateway's kept mappings of shard files (filemap.c):
 * the bytes at the block's offset, one mapping per file while it is kept,
 * a block past the end refused, a file that grew mapped again, deleted
 * files and the least recently used dropped past the limit, and a file cut
 * short under a mapping failing send with EFAULT, not SIGBUS. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "serve/serve_i.h"

#define FILES 70 /* past filemap.c's 64 */

static char dir[] = "/tmp/cairn-filemap-XXXXXX";

static void path_of(char *out, size_t n, unsigned i)
{
	snprintf(out, n, "%s/f%u", dir, i);
}

/* A file of `size` bytes, byte k being (k * 7 + i) & 0xff; its descriptor. */
static int make(unsigned i, size_t size)
{
	char path[256];
	uint8_t *b = malloc(size);
	int fd;

	assert_non_null(b);
	for (size_t k = 0; k < size; k++)
		b[k] = (uint8_t)(k * 7 + i);
	path_of(path, sizeof(path), i);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, size), (ssize_t)size);
	free(b);
	return fd;
}

/* Lines of /proc/self/maps naming file i. */
static int mapped(unsigned i)
{
	char path[256], line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	assert_non_null(f);
	path_of(path, sizeof(path), i);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, path))
			n++;
	fclose(f);
	return n;
}

static void test_bytes_and_sharing(void **state)
{
	serve_filemap *fm;
	serve_mapping *a, *b;
	const uint8_t *p, *q;
	bool short_;
	int fd = make(0, 100000);

	(void)state;
	assert_int_equal(serve_filemap_new(&fm), 0);
	a = serve_filemap_get(fm, fd, 5000, 20000, &p, &short_);
	assert_non_null(a);
	assert_false(short_);
	for (size_t k = 0; k < 20000; k++)
		assert_int_equal(p[k], (uint8_t)((5000 + k) * 7));
	/* the same file again: the same mapping, not a second one */
	b = serve_filemap_get(fm, fd, 99000, 1000, &q, &short_);
	assert_ptr_equal(a, b);
	assert_ptr_equal(q, p - 5000 + 99000);
	assert_int_equal(mapped(0), 1);
	serve_mapping_put(a);
	serve_mapping_put(b);
	/* kept after its responses are done */
	assert_int_equal(mapped(0), 1);
	/* a block past the end: refused, nothing mapped */
	assert_null(serve_filemap_get(fm, fd, 99000, 1001, &q, &short_));
	assert_true(short_);
	assert_null(serve_filemap_get(fm, fd, 200000, 1, &q, &short_));
	assert_true(short_);
	serve_filemap_free(fm);
	assert_int_equal(mapped(0), 0);
	close(fd);
}

static void test_grown_file(void **state)
{
	serve_filemap *fm;
	serve_mapping *a, *b;
	const uint8_t *p, *q;
	bool short_;
	int fd = make(1, 50000);
	uint8_t more[50000];

	(void)state;
	assert_int_equal(serve_filemap_new(&fm), 0);
	a = serve_filemap_get(fm, fd, 0, 50000, &p, &short_);
	assert_non_null(a);
	for (size_t k = 0; k < sizeof(more); k++)
		more[k] = (uint8_t)((50000 + k) * 7 + 1);
	assert_int_equal(pwrite(fd, more, sizeof(more), 50000), (ssize_t)sizeof(more));
	/* past the first mapping: the file is mapped again, whole */
	b = serve_filemap_get(fm, fd, 90000, 10000, &q, &short_);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	for (size_t k = 0; k < 10000; k++)
		assert_int_equal(q[k], (uint8_t)((90000 + k) * 7 + 1));
	/* the old one lives on for the response that holds it */
	assert_int_equal(p[49999], (uint8_t)(49999 * 7 + 1));
	assert_int_equal(mapped(1), 2);
	serve_mapping_put(a);
	assert_int_equal(mapped(1), 1);
	serve_mapping_put(b);
	serve_filemap_free(fm);
	close(fd);
}

static void test_limit_and_deleted(void **state)
{
	serve_filemap *fm;
	serve_mapping *held[FILES];
	const uint8_t *p;
	bool short_;
	int fds[FILES], total = 0;
	char path[256];

	(void)state;
	assert_int_equal(serve_filemap_new(&fm), 0);
	for (unsigned i = 0; i < FILES; i++) {
		fds[i] = make(10 + i, 8192);
		held[i] = serve_filemap_get(fm, fds[i], 0, 8192, &p, &short_);
		assert_non_null(held[i]);
		assert_int_equal(p[100], (uint8_t)(100 * 7 + 10 + i));
	}
	/* all in use: every one mapped, past the limit */
	for (unsigned i = 0; i < FILES; i++)
		total += mapped(10 + i);
	assert_int_equal(total, FILES);
	for (unsigned i = 0; i < FILES; i++)
		serve_mapping_put(held[i]);
	/* done with: only the 64 listed stay */
	total = 0;
	for (unsigned i = 0; i < FILES; i++)
		total += mapped(10 + i);
	assert_int_equal(total, 64);
	/* the first 64 are the ones listed: a file mapped while the list was
	 * full of files in use went with its response */
	assert_int_equal(mapped(10 + FILES - 1), 0);
	/* a deleted file is dropped when another file is mapped */
	assert_int_equal(mapped(10), 1);
	path_of(path, sizeof(path), 10);
	assert_int_equal(unlink(path), 0);
	close(fds[0]);
	{
		int fd = make(200, 4096);
		serve_mapping *m = serve_filemap_get(fm, fd, 0, 4096, &p, &short_);

		assert_non_null(m);
		serve_mapping_put(m);
		close(fd);
	}
	assert_int_equal(mapped(10), 0);
	assert_int_equal(mapped(200), 1);
	serve_filemap_free(fm);
	for (unsigned i = 1; i < FILES; i++)
		close(fds[i]);
}

/* The kernel reads the mapping in send; a file cut short makes that send
 * fail, and the process lives on. */
static void test_cut_short(void **state)
{
	serve_filemap *fm;
	serve_mapping *m;
	const uint8_t *p;
	bool short_;
	int fd = make(2, 1 << 20), sv[2];

	(void)state;
	assert_int_equal(serve_filemap_new(&fm), 0);
	m = serve_filemap_get(fm, fd, 4096, 65536, &p, &short_);
	assert_non_null(m);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	errno = 0;
	assert_int_equal(send(sv[0], p, 65536, MSG_DONTWAIT | MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EFAULT);
	close(sv[0]);
	close(sv[1]);
	serve_mapping_put(m);
	serve_filemap_free(fm);
	close(fd);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes_and_sharing),
		cmocka_unit_test(test_grown_file),
		cmocka_unit_test(test_limit_and_deleted),
		cmocka_unit_test(test_cut_short),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
