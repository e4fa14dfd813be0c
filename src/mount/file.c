/* file.c: file mounts: a local file opened once and read with pread, which
 * needs no lock, so any number of threads read one descriptor at once. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount_i.h"

typedef struct {
	cairn_mount base;
	int fd;
	char *path;
	uint64_t size;
} file_mount;

/* The path a file URL (or a bare absolute path) names, decoded. */
static int url_path(char **out, const char *url)
{
	const char *p = url;
	int rc;

	*out = NULL;
	if (cairn_mount__scheme_len(url)) {
		if (strncasecmp(url, "file:", 5))
			return cairn_error_set(CAIRN_EINVAL, "%s: not a file URL", url);
		p = url + 5;
		if (p[0] == '/' && p[1] == '/') {
			/* file://host/path: only an empty host or localhost is us. */
			const char *host = p + 2, *slash = strchr(host, '/');
			size_t hlen = slash ? (size_t)(slash - host) : strlen(host);

			if (!slash)
				return cairn_error_set(CAIRN_EINVAL, "%s: a file URL needs a path", url);
			if (hlen && !(hlen == 9 && !strncasecmp(host, "localhost", 9)))
				return cairn_error_set(CAIRN_EUNSUPPORTED,
					"%s: file URLs on another host (%.*s) are not supported", url,
					(int)hlen, host);
			p = slash;
		}
		if (strpbrk(p, "?#"))
			return cairn_error_set(CAIRN_EINVAL,
				"%s: a file URL cannot have a query or fragment (escape '?' as %%3F, '#' as %%23)",
				url);
		if ((rc = cairn_mount__unescape(out, p, strlen(p))))
			return cairn_error_prefix("%s: ", url);
	} else if (!(*out = cairn_strndup(url, strlen(url)))) {
		return CAIRN_ENOMEM;
	}
	if ((*out)[0] != '/') {
		cairn_free(*out);
		*out = NULL;
		return cairn_error_set(CAIRN_EINVAL, "%s: a file mount needs an absolute path", url);
	}
	return 0;
}

static int file_open(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *opts);

static uint64_t file_size(cairn_mount *m)
{
	return ((file_mount *)m)->size;
}

static int file_read_at(cairn_mount *m, void *buf, size_t n, uint64_t offset)
{
	file_mount *fm = (file_mount *)m;

	/* A file cut shorter since open reads short: "unexpected end of
	 * file" (CAIRN_ECORRUPT) naming the path and offset. */
	return cairn_file_pread_full(fm->fd, buf, n, offset, fm->path);
}

static int file_stat(cairn_mount *m, cairn_mount_status *out)
{
	file_mount *fm = (file_mount *)m;
	struct stat st;

	memset(out, 0, sizeof(*out));
	out->kind = CAIRN_MOUNT_LOCAL;
	if (stat(fm->path, &st) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return cairn_error_set(CAIRN_EIO, "%s: %s", fm->path, strerror(errno));
	}
	out->exists = true;
	out->ready = true;
	out->random = true;
	out->size = (uint64_t)st.st_size;
	return 0;
}

static int file_fd(cairn_mount *m)
{
	return ((file_mount *)m)->fd;
}

static void file_close(cairn_mount *m)
{
	file_mount *fm = (file_mount *)m;

	close(fm->fd);
	cairn_free(fm->path);
	cairn_free(fm);
}

const cairn_mount_ops cairn_mount_file_ops = {
	.version = CAIRN_MOUNT_OPS_VERSION,
	.name = "file",
	.open = file_open,
	.size = file_size,
	.read_at = file_read_at,
	.stat = file_stat,
	.fd = file_fd,
	.close = file_close,
};

static int file_open(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *opts)
{
	file_mount *fm;
	struct stat st;
	char *path;
	int fd, rc;

	(void)ctx;
	(void)opts; /* a local file never needs a transient copy */
	*out = NULL;
	if ((rc = url_path(&path, url)))
		return rc;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = cairn_error_set(errno == ENOENT || errno == ENOTDIR ? CAIRN_ENOTFOUND : CAIRN_EIO,
				     "%s: %s", path, strerror(errno));
		cairn_free(path);
		return rc;
	}
	if (fstat(fd, &st) < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = cairn_error_set(CAIRN_EINVAL, "%s: not a regular file", path);
	if (rc) {
		close(fd);
		cairn_free(path);
		return rc;
	}
	if (!(fm = cairn_calloc(1, sizeof(*fm)))) {
		close(fd);
		cairn_free(path);
		return CAIRN_ENOMEM;
	}
	fm->base.ops = &cairn_mount_file_ops;
	fm->base.name = path;
	fm->base.kind = CAIRN_MOUNT_LOCAL;
	fm->fd = fd;
	fm->path = path;
	fm->size = (uint64_t)st.st_size;
	*out = &fm->base;
	return 0;
}
