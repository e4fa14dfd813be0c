/* file.c: full-length read and write loops and the steps of a crash-safe write
 * (temporary file, fsync, rename, fsync of the directory). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/base.h"

#define NAME(w) ((w) ? (w) : "file")

int cairn_file_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *what)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cairn_error_set(CAIRN_EIO, "%s: read at byte %llu: %s", NAME(what),
					       (unsigned long long)(off + done), strerror(errno));
		}
		if (r == 0)
			return cairn_error_set(CAIRN_ECORRUPT,
				"%s: at byte %llu: unexpected end of file (wanted %zu more bytes)",
				NAME(what), (unsigned long long)(off + done), n - done);
		done += (size_t)r;
	}
	return 0;
}

int cairn_file_pwrite_full(int fd, const void *buf, size_t n, uint64_t off, const char *what)
{
	const uint8_t *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t r = pwrite(fd, p + done, n - done, (off_t)(off + done));

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cairn_error_set(CAIRN_EIO, "%s: write at byte %llu: %s", NAME(what),
					       (unsigned long long)(off + done), strerror(errno));
		}
		done += (size_t)r;
	}
	return 0;
}

int cairn_file_write_full(int fd, const void *buf, size_t n, const char *what)
{
	const uint8_t *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, p + done, n - done);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return cairn_error_set(CAIRN_EIO, "%s: write: %s", NAME(what), strerror(errno));
		}
		done += (size_t)r;
	}
	return 0;
}

int cairn_file_fsync(int fd, const char *what)
{
	while (fsync(fd) < 0) {
		if (errno != EINTR)
			return cairn_error_set(CAIRN_EIO, "%s: fsync: %s", NAME(what), strerror(errno));
	}
	return 0;
}

int cairn_file_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: open directory: %s", dir, strerror(errno));
	rc = cairn_file_fsync(fd, dir);
	close(fd);
	return rc;
}

void cairn_file_start_writeback(int fd, uint64_t off, uint64_t len)
{
#ifdef __linux__
	sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
#else
	(void)fd, (void)off, (void)len;
#endif
}

int cairn_file_read_all(cairn_buf *out, const char *path, size_t max)
{
	bool is_stdin = !strcmp(path, "-");
	int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	const char *name = is_stdin ? "standard input" : path;
	int rc = 0;

	if (fd < 0)
		return cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: %s",
				       path, strerror(errno));
	for (;;) {
		ssize_t r;

		if ((rc = cairn_buf_reserve(out, 65536)))
			break;
		r = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = cairn_error_set(CAIRN_EIO, "%s: read: %s", name, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		out->data[out->len] = '\0';
		if (out->len > max) {
			rc = cairn_error_set(CAIRN_ETOOBIG, "%s: larger than the limit of %zu bytes",
					     name, max);
			break;
		}
	}
	if (!is_stdin)
		close(fd);
	return rc;
}

int cairn_file_replace_atomic(const char *path, const void *data, size_t n, unsigned mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *slash;
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", path);
	/* Messages name `path`, the file the caller knows, not the temporary. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: create %s: %s", path, tmp, strerror(errno));
	rc = cairn_file_write_full(fd, data, n, path);
	if (!rc)
		rc = cairn_file_fsync(fd, path);
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: rename into place: %s", path, strerror(errno));
	if (rc) {
		unlink(tmp);
		return rc;
	}
	slash = strrchr(path, '/');
	if (!slash)
		return cairn_file_fsync_dir(".");
	if (slash == path)
		return cairn_file_fsync_dir("/");
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	return cairn_file_fsync_dir(dir);
}
