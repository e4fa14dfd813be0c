/* partialfile.c: the unsealed sector file in Lotus's format: the sector's
 * fr32-padded bytes, then the RLE+ of the padded offsets written, then that
 * trailer's length, so a reader knows which ranges hold data.
 *
 * Layout (lotus storage/sealer/partialfile/partialfile.go):
 *   offset      size  what
 *   0           S     data, at its padded offset; holes where nothing is
 *   S           T     RLE+ bitfield, one bit per padded byte
 *   S + T       4     T, little-endian uint32
 * The file's size is exactly S + T + 4: the trailer is rewritten in place
 * and the file truncated after it, so a shorter trailer leaves no stale
 * bytes. Open checks the size, the length and the bitfield before trusting
 * any of it.
 *
 * Sparseness: Lotus fallocated all S bytes at creation and "freed" ranges
 * with FALLOC_FL_PUNCH_HOLE alone, which Linux refuses (EOPNOTSUPP: punching
 * needs KEEP_SIZE) and Lotus ignored, so files never shrank. Here nothing is
 * preallocated (space is a reservation's job, paths.c), holes are punched
 * with PUNCH_HOLE | KEEP_SIZE, and a failure is an error, except on a file
 * system that has no holes at all, where the range is overwritten with
 * zeros so that it reads as zeros as a hole would.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sector_i.h"
#include "sector_runs.h"

struct cairn_partialfile {
	int fd;
	char *path;
	uint64_t ssize;
	uint64_t tlen;   /* trailer bytes now on disk */
	cairn_runs alloc;
	bool writable;
};

static int check_ssize(const char *path, uint64_t ssize)
{
	if (ssize < 256 || (ssize & (ssize - 1)) || ssize > (UINT64_C(1) << 62))
		return cairn_error_set(CAIRN_EINVAL, "%s: %llu is not a sector size (a power of two)",
				       path, (unsigned long long)ssize);
	return 0;
}

static int new_pf(cairn_partialfile **out, const char *path, int fd, uint64_t ssize, bool writable)
{
	cairn_partialfile *pf = cairn_calloc(1, sizeof(*pf));

	if (!pf || !(pf->path = cairn_strndup(path, strlen(path)))) {
		cairn_free(pf);
		close(fd);
		return CAIRN_ENOMEM;
	}
	pf->fd = fd;
	pf->ssize = ssize;
	pf->writable = writable;
	*out = pf;
	return 0;
}

static int write_trailer(cairn_partialfile *pf)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t len4[4];
	int rc;

	if ((rc = cairn_rleplus_encode(&b, pf->alloc.v, pf->alloc.n)))
		goto out;
	if (b.len > CAIRN_PARTIALFILE_MAX_TRAILER) {
		rc = cairn_error_set(CAIRN_ETOOBIG, "%s: the trailer would be %zu bytes", pf->path, b.len);
		goto out;
	}
	for (int i = 0; i < 4; i++)
		len4[i] = (uint8_t)(b.len >> (8 * i));
	if ((rc = cairn_file_pwrite_full(pf->fd, b.data, b.len, pf->ssize, pf->path)) ||
	    (rc = cairn_file_pwrite_full(pf->fd, len4, 4, pf->ssize + b.len, pf->path)))
		goto out;
	if (ftruncate(pf->fd, (off_t)(pf->ssize + b.len + 4)) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: truncate after the trailer: %s", pf->path,
				     strerror(errno));
		goto out;
	}
	pf->tlen = b.len;
out:
	cairn_buf_free(&b);
	return rc;
}

int cairn_partialfile_create(cairn_partialfile **out, const char *path, uint64_t ssize)
{
	cairn_partialfile *pf;
	int fd, rc;

	*out = NULL;
	if ((rc = check_ssize(path, ssize)))
		return rc;
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: create: %s", path, strerror(errno));
	if ((rc = new_pf(&pf, path, fd, ssize, true)))
		return rc;
	if ((rc = write_trailer(pf))) {
		cairn_partialfile_close(pf);
		unlink(path);
		return rc;
	}
	*out = pf;
	return 0;
}

int cairn_partialfile_open(cairn_partialfile **out, const char *path, uint64_t ssize, bool writable)
{
	cairn_partialfile *pf = NULL;
	struct stat st;
	uint8_t len4[4], *trailer = NULL;
	uint64_t size, tlen;
	cairn_run *runs;
	size_t n;
	int fd, rc;

	*out = NULL;
	if ((rc = check_ssize(path, ssize)))
		return rc;
	if ((fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)) < 0)
		return cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: %s", path,
				       strerror(errno));
	if ((rc = new_pf(&pf, path, fd, ssize, writable)))
		return rc;
	if (fstat(fd, &st) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	size = (uint64_t)st.st_size;
	if (size < ssize + 4) {
		rc = cairn_error_set(CAIRN_ECORRUPT,
			"%s: %llu bytes, shorter than the sector (%llu) and the trailer's length",
			path, (unsigned long long)size, (unsigned long long)ssize);
		goto fail;
	}
	if ((rc = cairn_file_pread_full(fd, len4, 4, size - 4, path)))
		goto fail;
	tlen = (uint64_t)len4[0] | (uint64_t)len4[1] << 8 | (uint64_t)len4[2] << 16 |
	       (uint64_t)len4[3] << 24;
	if (tlen + 4 + ssize != size) {
		rc = cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: inconsistent length: a trailer of %llu bytes does not fit a "
			"file of %llu bytes for a sector of %llu", path, (unsigned long long)(size - 4),
			(unsigned long long)tlen, (unsigned long long)size, (unsigned long long)ssize);
		goto fail;
	}
	if (tlen > CAIRN_PARTIALFILE_MAX_TRAILER) {
		rc = cairn_error_set(CAIRN_ETOOBIG, "%s: at byte %llu: a trailer of %llu bytes (at most %u)",
				     path, (unsigned long long)ssize, (unsigned long long)tlen,
				     CAIRN_PARTIALFILE_MAX_TRAILER);
		goto fail;
	}
	if (tlen && !(trailer = cairn_malloc((size_t)tlen))) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	if ((rc = cairn_file_pread_full(fd, trailer, (size_t)tlen, ssize, path)))
		goto fail;
	if ((rc = cairn_rleplus_decode(&runs, &n, trailer, (size_t)tlen, ssize))) {
		cairn_error_prefix("%s: trailer at byte %llu: ", path, (unsigned long long)ssize);
		goto fail;
	}
	pf->alloc.v = runs;
	pf->alloc.n = pf->alloc.cap = n;
	pf->tlen = tlen;
	cairn_free(trailer);
	*out = pf;
	return 0;
fail:
	cairn_free(trailer);
	cairn_partialfile_close(pf);
	return rc;
}

void cairn_partialfile_close(cairn_partialfile *pf)
{
	if (!pf)
		return;
	close(pf->fd);
	cairn_free(pf->alloc.v);
	cairn_free(pf->path);
	cairn_free(pf);
}

int cairn_partialfile_fd(const cairn_partialfile *pf)
{
	return pf->fd;
}

uint64_t cairn_partialfile_sector_size(const cairn_partialfile *pf)
{
	return pf->ssize;
}

static int check_range(const cairn_partialfile *pf, uint64_t off, uint64_t size, const char *op)
{
	if (!pf->writable)
		return cairn_error_set(CAIRN_EINVAL, "%s: opened read-only", pf->path);
	if (off > pf->ssize || size > pf->ssize - off)
		return cairn_error_set(CAIRN_EINVAL, "%s: %s [%llu, +%llu) runs past the sector (%llu)",
				       pf->path, op, (unsigned long long)off, (unsigned long long)size,
				       (unsigned long long)pf->ssize);
	return 0;
}

int cairn_partialfile_mark_allocated(cairn_partialfile *pf, uint64_t off, uint64_t size)
{
	int rc;

	if ((rc = check_range(pf, off, size, "mark")) ||
	    (rc = cairn_sector__runs_add(&pf->alloc, off, size)))
		return rc;
	return write_trailer(pf);
}

/* Zeros over [off, off+size), for file systems without holes. */
static int write_zeros(cairn_partialfile *pf, uint64_t off, uint64_t size)
{
	static const uint8_t zeros[65536];

	while (size) {
		size_t k = size < sizeof(zeros) ? (size_t)size : sizeof(zeros);
		int rc = cairn_file_pwrite_full(pf->fd, zeros, k, off, pf->path);

		if (rc)
			return rc;
		off += k;
		size -= k;
	}
	return 0;
}

int cairn_partialfile_free(cairn_partialfile *pf, uint64_t off, uint64_t size)
{
	int rc;

	if ((rc = check_range(pf, off, size, "free")))
		return rc;
	if (size && fallocate(pf->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)size) < 0) {
		if (errno != EOPNOTSUPP && errno != ENOSYS)
			return cairn_error_set(CAIRN_EIO, "%s: punching a hole at byte %llu (%llu bytes): %s",
					       pf->path, (unsigned long long)off,
					       (unsigned long long)size, strerror(errno));
		cairn_log(CAIRN_LOG_WARN, "%s: the file system cannot punch holes (%s): writing zeros",
			  pf->path, strerror(errno));
		if ((rc = write_zeros(pf, off, size)))
			return rc;
	}
	if ((rc = cairn_sector__runs_sub(&pf->alloc, off, size)))
		return rc;
	return write_trailer(pf);
}

bool cairn_partialfile_has_allocated(const cairn_partialfile *pf, uint64_t off, uint64_t size)
{
	if (off > pf->ssize || size > pf->ssize - off)
		return false;
	return cairn_sector__runs_covers(&pf->alloc, off, size);
}

const cairn_run *cairn_partialfile_allocated(const cairn_partialfile *pf, size_t *n_out)
{
	*n_out = pf->alloc.n;
	return pf->alloc.v;
}

int cairn_partialfile_sync(cairn_partialfile *pf)
{
	return cairn_file_fsync(pf->fd, pf->path);
}
