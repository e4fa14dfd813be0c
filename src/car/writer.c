/* writer.c: streaming a CARv1, or a CARv2 whose index and header are written
 * at the end, through a buffer so each block is not its own write call.
 *
 * CARv2 order of writing, which makes a cut-short file recognisable: the
 * pragma and 40 zero bytes, the CARv1 (header, sections), the index, and
 * only then the real 40-byte header. A file whose header is still zero has
 * data_offset 0, which every reader refuses.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "car_i.h"

#define FLUSH_AT (1u << 20)
/* A block this large goes from the caller's buffer to the file with
 * pwritev, beside what is buffered, instead of being copied first. */
#define DIRECT_AT (64u << 10)
/* Writeback of what is written is started every this many bytes: finish
 * fsyncs, and a 3 GiB export left all to that fsync waited a second for
 * it at the end instead of writing while the blocks were read. */
#define WRITEBACK_AT (8u << 20)

struct cairn_car_writer {
	int fd;
	char *path;
	cairn_car_writer_options opts;
	cairn_car_index_builder *index;
	cairn_buf out;       /* bytes not yet written, which start at `flushed` */
	uint64_t flushed;    /* file offset where `out` begins */
	uint64_t synced;     /* writeback started up to here */
	uint64_t data_offset;
	size_t v1_header_len;
	cairn_buf new_header; /* set_roots: the CARv1 header finish writes */
	uint64_t count;
	bool failed;
	bool finished;
	cairn_cid_set seen;   /* skip_duplicates: the CIDs written */
};

static void start_writeback(cairn_car_writer *w)
{
	if (w->flushed - w->synced >= WRITEBACK_AT) {
		cairn_file_start_writeback(w->fd, w->synced, w->flushed - w->synced);
		w->synced = w->flushed;
	}
}

static int flush(cairn_car_writer *w)
{
	int rc;

	if (!w->out.len)
		return 0;
	rc = cairn_file_pwrite_full(w->fd, w->out.data, w->out.len, w->flushed, w->path);
	if (rc)
		return rc;
	w->flushed += w->out.len;
	cairn_buf_clear(&w->out);
	start_writeback(w);
	return 0;
}

/* Writes the buffer and then `data`, in one system call where it can. */
static int flush_with(cairn_car_writer *w, const uint8_t *data, size_t len)
{
	struct iovec iov[2] = {{w->out.data, w->out.len}, {(void *)data, len}};
	uint64_t at = w->flushed;
	int i = w->out.len ? 0 : 1;

	while (i < 2) {
		ssize_t n = pwritev(w->fd, iov + i, 2 - i, (off_t)at);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return cairn_error_set(CAIRN_EIO, "%s: write at byte %llu: %s", w->path,
					       (unsigned long long)at, strerror(errno));
		}
		at += (uint64_t)n;
		while (i < 2 && (size_t)n >= iov[i].iov_len) {
			n -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < 2) {
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	w->flushed = at;
	cairn_buf_clear(&w->out);
	start_writeback(w);
	return 0;
}

static uint64_t position(const cairn_car_writer *w)
{
	return w->flushed + w->out.len;
}

int cairn_car_writer_open(cairn_car_writer **out, const char *path, const cairn_cid *roots,
			  size_t nroots, const cairn_car_writer_options *opts)
{
	static const uint8_t zeros[CAIRN_CAR_V2_HEADER_LEN];
	cairn_car_writer *w;
	int rc;

	static const cairn_car_writer_options defaults = CAIRN_CAR_WRITER_OPTIONS_INIT;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->version != 1 && opts->version != 2)
		return cairn_error_set(CAIRN_EINVAL, "CAR writer: version must be 1 or 2");
	if (opts->version == 2 && opts->index_codec && opts->index_codec != CAIRN_CAR_INDEX_SORTED &&
	    opts->index_codec != CAIRN_CAR_INDEX_MH_SORTED)
		return cairn_error_set(CAIRN_EINVAL, "CAR writer: unknown index codec 0x%llx",
				       (unsigned long long)opts->index_codec);
	if (!(w = cairn_calloc(1, sizeof(*w))))
		return CAIRN_ENOMEM;
	w->opts = *opts;
	w->fd = -1;
	if (!(w->path = cairn_strndup(path, strlen(path)))) {
		cairn_free(w);
		return CAIRN_ENOMEM;
	}
	if (opts->version == 2 && opts->index_codec &&
	    (rc = cairn_car_index_builder_new(&w->index, opts->index_codec, opts->keep_identity)))
		goto fail;
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (opts->version == 2) {
		cairn_buf_append(&w->out, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN);
		cairn_buf_append(&w->out, zeros, sizeof(zeros));
		w->data_offset = CAIRN_CAR_V2_PREFIX_LEN;
	}
	w->v1_header_len = w->out.len;
	if ((rc = cairn_car_v1_header_encode(&w->out, roots, nroots)))
		goto fail;
	w->v1_header_len = w->out.len - w->v1_header_len;
	*out = w;
	return 0;
fail:
	cairn_car_writer_free(w);
	return rc;
}

int cairn_car_section_head(cairn_buf *out, const cairn_cid *cid, uint64_t block_len)
{
	uint8_t varint[CAIRN_VARINT_MAX];

	cairn_buf_append(out, varint, cairn_varint_encode(varint, (uint64_t)cid->len + block_len));
	return cairn_buf_append(out, cid->bytes, cid->len);
}

/* CAIRN_EINVAL, saying why, once the writer takes no more blocks. */
static int closed(const cairn_car_writer *w)
{
	if (!w->failed && !w->finished)
		return 0;
	return cairn_error_set(CAIRN_EINVAL, "%s: %s", w->path, w->finished
		? "the CAR is finished; no more blocks can be added"
		: "an earlier write failed; the CAR is unusable");
}

int cairn_car_writer_put(cairn_car_writer *w, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	uint64_t offset;
	int rc;

	if ((rc = closed(w)))
		return rc;
	if (cid->mh_code == CAIRN_MH_IDENTITY && !w->opts.keep_identity) {
		/* go-car leaves identity blocks out by default: the data is in the CID. */
		return 0;
	}
	if (!w->opts.trusted && (rc = cairn_cid_verify(cid, data, len)))
		return rc; /* the writer is still usable: nothing was written */
	if (w->opts.skip_duplicates) {
		bool added;

		if ((rc = cairn_cid_set_add(&w->seen, cid, &added)))
			goto fail;
		if (!added)
			return 0;
	}
	offset = position(w) - w->data_offset;
	cairn_car_section_head(&w->out, cid, len);
	if (len < DIRECT_AT)
		cairn_buf_append(&w->out, data, len);
	if ((rc = w->out.err))
		goto fail;
	if (len >= DIRECT_AT && (rc = flush_with(w, data, len)))
		goto fail;
	if (w->index && (rc = cairn_car_index_builder_add(w->index, cid, offset)))
		goto fail;
	w->count++;
	if (w->out.len >= FLUSH_AT && (rc = flush(w)))
		goto fail;
	return 0;
fail:
	w->failed = true;
	return rc;
}

int cairn_car_writer_put_sections(cairn_car_writer *w, const uint8_t *bytes, size_t len,
				  const cairn_cid *cids, const size_t *offsets, size_t n)
{
	uint64_t base;
	int rc;

	if ((rc = closed(w)))
		return rc;
	if (!w->opts.trusted || w->opts.skip_duplicates)
		return cairn_error_set(CAIRN_EINVAL,
			"%s: sections are taken whole only by a trusted writer that keeps duplicates",
			w->path);
	base = position(w) - w->data_offset;
	for (size_t i = 0; i < n && w->index; i++)
		if ((rc = cairn_car_index_builder_add(w->index, &cids[i], base + offsets[i])))
			goto fail;
	if (len && (rc = flush_with(w, bytes, len)))
		goto fail;
	w->count += n;
	return 0;
fail:
	w->failed = true;
	return rc;
}

int cairn_car_writer_set_roots(cairn_car_writer *w, const cairn_cid *roots, size_t nroots)
{
	int rc;

	cairn_buf_clear(&w->new_header);
	if ((rc = cairn_car_v1_header_encode(&w->new_header, roots, nroots)))
		return rc;
	if (w->new_header.len != w->v1_header_len) {
		cairn_buf_clear(&w->new_header);
		return cairn_error_set(CAIRN_EINVAL,
				       "%s: the new roots need a %zu-byte header, the one written has %zu",
				       w->path, w->new_header.len, w->v1_header_len);
	}
	return 0;
}

int cairn_car_writer_finish(cairn_car_writer *w)
{
	int rc;

	if (w->failed || w->finished)
		return cairn_error_set(CAIRN_EINVAL, "%s: %s", w->path, w->finished
			? "the CAR is already finished"
			: "an earlier write failed; the CAR is unusable");
	if (w->new_header.len) {
		/* The header is in the buffer still, or already on disk. */
		if (w->flushed <= w->data_offset)
			memcpy(w->out.data + (w->data_offset - w->flushed), w->new_header.data,
			       w->new_header.len);
		else if ((rc = cairn_file_pwrite_full(w->fd, w->new_header.data, w->new_header.len,
						      w->data_offset, w->path)))
			goto fail;
	}
	if (w->opts.version == 2) {
		cairn_car_v2_header h;
		uint8_t hdr[CAIRN_CAR_V2_HEADER_LEN];

		memset(&h, 0, sizeof(h));
		h.data_offset = w->data_offset;
		h.data_size = position(w) - w->data_offset;
		if (w->index) {
			h.index_offset = position(w);
			if ((rc = cairn_car_index_builder_encode(w->index, &w->out)))
				goto fail;
		}
		if (w->opts.keep_identity)
			h.characteristics[0] |= 0x80;
		if ((rc = flush(w)))
			goto fail;
		/* The data and index reach the disk before the header that
		 * declares them: a crash between leaves a file no reader takes
		 * for finished. */
		if ((rc = cairn_file_fsync(w->fd, w->path)))
			goto fail;
		cairn_car_v2_header_encode(hdr, &h);
		if ((rc = cairn_file_pwrite_full(w->fd, hdr, sizeof(hdr), CAIRN_CAR_PRAGMA_LEN, w->path)))
			goto fail;
	} else if ((rc = flush(w))) {
		goto fail;
	}
	if ((rc = cairn_file_fsync(w->fd, w->path)))
		goto fail;
	if (close(w->fd) < 0) {
		w->fd = -1;
		rc = cairn_error_set(CAIRN_EIO, "%s: close: %s", w->path, strerror(errno));
		goto fail;
	}
	w->fd = -1;
	w->finished = true;
	return 0;
fail:
	w->failed = true;
	return rc;
}

uint64_t cairn_car_writer_block_count(const cairn_car_writer *w)
{
	return w->count;
}

void cairn_car_writer_free(cairn_car_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	cairn_car_index_builder_free(w->index);
	cairn_buf_free(&w->out);
	cairn_buf_free(&w->new_header);
	cairn_cid_set_free(&w->seen);
	cairn_free(w->path);
	cairn_free(w);
}
