/* io.c: what commands share besides parsing: output files that appear
 * whole or not at all, and byte sizes as people write them. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"

int cli_out_open(cli_ctx *ctx, cli_out *o, const char *path, bool stream)
{
	struct stat st;

	memset(o, 0, sizeof(*o));
	o->path = path;
	o->fd = -1;
	if (stream && !strcmp(path, "-")) {
		fflush(ctx->out);
		o->fd = fileno(ctx->out);
		o->path = "standard output";
		o->in_place = true;
		return 0;
	}
	/* A device or a pipe (/dev/null, a FIFO) is written as it is: a rename
	 * would replace it with a regular file. */
	if (stream && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if ((o->fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
			return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
		o->in_place = o->own_fd = true;
		return 0;
	}
	if (snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(o->tmp)) {
		o->tmp[0] = '\0'; /* so cli_out_abort unlinks nothing */
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", path);
	}
	if ((o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		o->tmp[0] = '\0';
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	}
	o->own_fd = true;
	return 0;
}

const char *cli_out_release(cli_out *o)
{
	if (o->own_fd)
		close(o->fd);
	o->fd = -1;
	o->own_fd = false;
	return o->tmp;
}

int cli_out_commit(cli_out *o)
{
	char dir[PATH_MAX];
	const char *slash;
	int rc = 0;

	if (o->own_fd) {
		if (!o->in_place)
			rc = cairn_file_fsync(o->fd, o->path);
		if (close(o->fd) < 0 && !rc)
			rc = cairn_error_set(CAIRN_EIO, "%s: close: %s", o->path, strerror(errno));
		o->fd = -1;
		o->own_fd = false;
	}
	if (rc || o->in_place)
		return rc;
	if (rename(o->tmp, o->path) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: rename into place: %s", o->path, strerror(errno));
	o->tmp[0] = '\0';
	if (!(slash = strrchr(o->path, '/')))
		return cairn_file_fsync_dir(".");
	snprintf(dir, sizeof(dir), "%.*s", slash == o->path ? 1 : (int)(slash - o->path), o->path);
	return cairn_file_fsync_dir(dir);
}

void cli_out_abort(cli_out *o)
{
	if (o->own_fd)
		close(o->fd);
	o->fd = -1;
	o->own_fd = false;
	if (o->tmp[0])
		unlink(o->tmp);
	o->tmp[0] = '\0';
}

int cli_out_write_file(const char *path, const void *data, size_t n)
{
	cli_out o;
	int rc;

	if (!(rc = cli_out_open(NULL, &o, path, false)) &&
	    !(rc = cairn_file_write_full(o.fd, data, n, path)))
		rc = cli_out_commit(&o);
	if (rc)
		cli_out_abort(&o);
	return rc;
}

int cli_parse_size(uint64_t *out, const char *s)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {{"", 0}, {"kib", 10}, {"mib", 20}, {"gib", 30}, {"tib", 40}};
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return CAIRN_EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return CAIRN_EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcasecmp(end, units[i].suffix)) {
			if (v > (UINT64_MAX >> units[i].shift))
				return CAIRN_EINVAL;
			*out = (uint64_t)v << units[i].shift;
			return 0;
		}
	}
	return CAIRN_EINVAL;
}
