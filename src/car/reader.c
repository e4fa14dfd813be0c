/* reader.c: reading a CARv1, or the CARv1 inside a CARv2, one section at a
 * time through a pread window, so memory stays flat on any file size. The
 * bytes come from a descriptor or from a source (a mount: an HTTP piece, a
 * sector), through the same window and the same checks.
 *
 * Layout read (offsets absolute in the file):
 *   CARv1: [varint hdr_len | header] [varint len | CID | block]*   to EOF
 *   CARv2: pragma(11) header(40) ... [CARv1 at data_offset, data_size bytes]
 * The window holds file bytes [win_start, win_start + win_len); it grows
 * only to the largest section asked for (bounded by max_section_size).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "car_i.h"

/* Most sections are far smaller; reading ahead this much turns thousands of
 * small preads into one. */
#define WINDOW_MIN (1u << 20)
/* What a refill reads after a skipped block at least SKIP_BIG long: the next
 * head, and a little more, rather than a window of block bytes to pass over
 * (an index of 1 MiB chunks would read the whole file to find its heads). */
#define HEAD_READ (4u << 10)
#define SKIP_BIG (64u << 10)
/* What a remote source's first read takes: the headers of nearly every
 * CAR, and no more, so the index of a small CARv2 is not fetched with its
 * header. */
#define HEADER_READ (4u << 10)
#define SECTION_HEAD_MAX CAIRN_CAR__SECTION_HEAD_MAX
/* What cairn_car_section_read reads first: a head and a small block. */
#define SECTION_READ 512

static const cairn_car_options default_opts = CAIRN_CAR_OPTIONS_INIT;

int cairn_car__read_at(const cairn_car_reader *r, void *buf, size_t n, uint64_t off, size_t *got)
{
	int rc;

	*got = 0;
	if (r->src.read_at) {
		if (off >= r->src.size)
			return 0;
		if (n > r->src.size - off)
			n = (size_t)(r->src.size - off);
		if (n && (rc = r->src.read_at(r->src.ctx, buf, n, off)))
			return rc;
		*got = n;
		return 0;
	}
	while (*got < n) {
		ssize_t k = pread(r->fd, (uint8_t *)buf + *got, n - *got, (off_t)(off + *got));

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return cairn_error_set(CAIRN_EIO, "%s: read at byte %llu: %s", r->name,
					       (unsigned long long)(off + *got), strerror(errno));
		}
		if (k == 0)
			break; /* the file shrank under us: short */
		*got += (size_t)k;
	}
	return 0;
}

/* Makes bytes [off, off + n) available and returns them; *avail is less
 * than n only at the limit (the end of the file, then of the payload). */
static int window(cairn_car_reader *r, uint64_t off, size_t n, const uint8_t **out,
		  size_t *avail)
{
	size_t want, got = 0;
	int rc;

	if (off >= r->win_start && off + n <= r->win_start + r->win_len) {
		*out = r->win + (off - r->win_start);
		*avail = n;
		return 0;
	}
	/* A head's worth past the range: after a block, the next section's head
	 * is then already there, and a file of large sections is read once
	 * rather than once for the heads and again for the blocks. */
	want = n + SECTION_HEAD_MAX > r->read_min ? n + SECTION_HEAD_MAX : r->read_min;
	if (want > r->win_cap) {
		uint8_t *p = cairn_realloc(r->win, want);
		if (!p)
			return CAIRN_ENOMEM;
		r->win = p;
		r->win_cap = want;
	}
	if (off >= r->limit)
		want = 0;
	else if (want > r->limit - off)
		want = (size_t)(r->limit - off);
	r->win_len = 0;
	if ((rc = cairn_car__read_at(r, r->win, want, off, &got)))
		return rc;
	r->bytes_read += got;
	r->win_start = off;
	r->win_len = got;
	*out = r->win;
	*avail = got < n ? got : n;
	return 0;
}

static int need(cairn_car_reader *r, uint64_t off, size_t n, const uint8_t **out, const char *what)
{
	size_t avail;
	int rc = window(r, off, n, out, &avail);

	if (rc)
		return rc;
	if (avail < n)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: unexpected end of file in %s (%zu of %zu bytes)", r->name,
			(unsigned long long)(off + avail), what, avail, n);
	return 0;
}

/* Reads a CARv1 header at `off`: varint length, then the DAG-CBOR block. */
static int read_v1_header(cairn_car_reader *r, uint64_t off, unsigned *version,
			  uint64_t *len_out)
{
	const uint8_t *p;
	size_t avail, used;
	uint64_t len;
	int rc;

	if ((rc = window(r, off, CAIRN_VARINT_MAX, &p, &avail)))
		return rc;
	if (avail == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: empty file, no CAR header",
				       r->name, (unsigned long long)off);
	if (cairn_varint_decode(&len, &used, p, avail))
		return cairn_error_prefix("%s: header length at byte %llu: ", r->name,
					  (unsigned long long)off);
	if (len == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: invalid CAR header (zero length)",
				       r->name, (unsigned long long)off);
	if (len > r->opts.max_header_size)
		return cairn_error_set(CAIRN_ETOOBIG,
			"%s: at byte %llu: header of %llu bytes is over the limit of %llu", r->name,
			(unsigned long long)off, (unsigned long long)len,
			(unsigned long long)r->opts.max_header_size);
	if (len > r->file_size - off - used)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: header of %llu bytes runs past the end of the file (%llu bytes)",
			r->name, (unsigned long long)off, (unsigned long long)len,
			(unsigned long long)r->file_size);
	if ((rc = need(r, off + used, (size_t)len, &p, "the header")))
		return rc;
	cairn_free(r->roots);
	r->roots = NULL;
	if ((rc = cairn_car__header_parse(version, &r->roots, &r->nroots, p, (size_t)len, r->name,
					  off + used)))
		return rc;
	*len_out = used + len;
	return 0;
}

static int open_headers(cairn_car_reader *r)
{
	const uint8_t *p;
	unsigned version;
	uint64_t len;
	int rc;

	if ((rc = read_v1_header(r, 0, &version, &len)))
		return rc;
	r->version = version;
	if (version == 1) {
		r->data_offset = 0;
		r->data_end = r->file_size;
		r->header_len = len;
		r->pos = len;
		return 0;
	}
	if (len != CAIRN_CAR_PRAGMA_LEN || (rc = need(r, 0, CAIRN_CAR_V2_PREFIX_LEN, &p, "the CARv2 header")))
		return rc ? rc : cairn_error_set(CAIRN_ECORRUPT, "%s: at byte 0: malformed CARv2 pragma", r->name);
	if (memcmp(p, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN))
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte 0: malformed CARv2 pragma", r->name);
	if ((rc = cairn_car_v2_header_decode(&r->v2, p + CAIRN_CAR_PRAGMA_LEN)))
		return cairn_error_prefix("%s: CARv2 header ", r->name);
	if (r->v2.data_offset > r->file_size || r->v2.data_size > r->file_size - r->v2.data_offset)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte 27: data payload [%llu, +%llu) runs past the end of the file (%llu bytes)",
			r->name, (unsigned long long)r->v2.data_offset,
			(unsigned long long)r->v2.data_size, (unsigned long long)r->file_size);
	if (r->v2.index_offset > r->file_size)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte 43: index offset %llu is past the end of the file",
				       r->name, (unsigned long long)r->v2.index_offset);
	r->data_offset = r->v2.data_offset;
	r->data_end = r->v2.data_offset + r->v2.data_size;
	if ((rc = read_v1_header(r, r->data_offset, &version, &len)))
		return rc;
	if (version != 1)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: the CARv1 inside a CARv2 has version %u",
				       r->name, (unsigned long long)r->data_offset, version);
	if (len > r->v2.data_size)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: CARv1 header is larger than the data payload",
				       r->name, (unsigned long long)r->data_offset);
	r->header_len = len;
	r->pos = r->data_offset + len;
	return 0;
}

/* Allocates a reader of `size` bytes named `name` and reads its headers;
 * the caller has set fd or src in `proto`. */
static int open_reader(cairn_car_reader **out, const cairn_car_reader *proto, const char *name,
		       const cairn_car_options *opts)
{
	cairn_car_reader *r;
	int rc;

	if (!(r = cairn_calloc(1, sizeof(*r))))
		return CAIRN_ENOMEM;
	*r = *proto;
	r->opts = opts ? *opts : default_opts;
	r->limit = r->file_size;
	if (!r->window)
		r->window = WINDOW_MIN;
	r->read_min = r->src.remote ? HEADER_READ : r->window;
	if (!(r->name = cairn_strndup(name, strlen(name)))) {
		cairn_free(r);
		return CAIRN_ENOMEM;
	}
	if ((rc = open_headers(r))) {
		cairn_car_reader_free(r);
		return rc;
	}
	/* From here on nothing past the payload is needed. */
	r->limit = r->data_end;
	r->read_min = r->window;
	*out = r;
	return 0;
}

int cairn_car_reader_open_fd(cairn_car_reader **out, int fd, const char *name,
			     const cairn_car_options *opts)
{
	cairn_car_reader proto = {0};
	struct stat st;

	*out = NULL;
	if (!name)
		name = "CAR";
	if (fstat(fd, &st) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", name, strerror(errno));
	proto.fd = fd;
	proto.file_size = (uint64_t)st.st_size;
	return open_reader(out, &proto, name, opts);
}

int cairn_car_reader_open_source(cairn_car_reader **out, const cairn_car_source *src,
				 const cairn_car_options *opts)
{
	cairn_car_reader proto = {0};

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "car reader: NULL argument");
	*out = NULL;
	if (!src || !src->read_at)
		return cairn_error_set(CAIRN_EINVAL, "car reader: a source without read_at");
	proto.fd = -1;
	proto.src = *src;
	proto.file_size = src->size;
	proto.window = src->window;
	return open_reader(out, &proto, src->name ? src->name : "CAR", opts);
}

int cairn_car_reader_open(cairn_car_reader **out, const char *path, const cairn_car_options *opts)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	*out = NULL;
	if (fd < 0)
		return cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: %s", path,
				       strerror(errno));
	/* Sequential reading: let the kernel read ahead further. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((rc = cairn_car_reader_open_fd(out, fd, path, opts))) {
		close(fd);
		return rc;
	}
	(*out)->own_fd = true;
	return 0;
}

void cairn_car_reader_free(cairn_car_reader *r)
{
	if (!r)
		return;
	if (r->own_fd)
		close(r->fd);
	cairn_free(r->roots);
	cairn_free(r->win);
	cairn_free(r->name);
	cairn_free(r);
}

unsigned cairn_car_reader_version(const cairn_car_reader *r) { return r->version; }
const cairn_car_v2_header *cairn_car_reader_v2_header(const cairn_car_reader *r)
{
	return r->version == 2 ? &r->v2 : NULL;
}
size_t cairn_car_reader_root_count(const cairn_car_reader *r) { return r->nroots; }
const cairn_cid *cairn_car_reader_roots(const cairn_car_reader *r) { return r->roots; }
uint64_t cairn_car_reader_data_offset(const cairn_car_reader *r) { return r->data_offset; }
uint64_t cairn_car_reader_header_len(const cairn_car_reader *r) { return r->header_len; }
uint64_t cairn_car_reader_data_end(const cairn_car_reader *r) { return r->data_end; }
int cairn_car_reader_fd(const cairn_car_reader *r) { return r->fd; }
uint64_t cairn_car_reader_bytes_read(const cairn_car_reader *r) { return r->bytes_read; }

int cairn_car_reader_seek(cairn_car_reader *r, uint64_t offset)
{
	if (offset > r->data_end - r->data_offset)
		return cairn_error_set(CAIRN_EINVAL, "%s: offset %llu is past the end of the data",
				       r->name, (unsigned long long)offset);
	r->pos = r->data_offset + offset;
	return 0;
}

/* The CID at the start of a section. Nearly every CID in a CAR is a CIDv1
 * whose codec, hash code and digest length are one byte each (dag-cbor,
 * dag-pb or raw over sha2-256): those are taken as they stand, one-byte
 * varints being minimal, so the bytes are the ones cairn_cid_decode would
 * re-encode. Anything else, valid or not, goes the full way, which also
 * words the errors. */
static int decode_cid(cairn_cid *cid, size_t *used, const uint8_t *p, size_t n)
{
	if (n >= 4 && p[0] == 1 && (p[1] | p[2] | p[3]) < 0x80 && (size_t)p[3] + 4 <= n &&
	    (p[2] != CAIRN_MH_SHA2_256 || p[3] == 32)) {
		size_t len = (size_t)p[3] + 4;

		memset(cid, 0, offsetof(cairn_cid, bytes));
		cid->codec = p[1];
		cid->mh_code = p[2];
		cid->len = (uint16_t)len;
		cid->version = 1;
		cid->mh_off = 2;
		cid->digest_off = 4;
		cid->digest_len = p[3];
		/* A constant length is a few moves; a variable one became rep
		 * movsq, whose start-up cost was most of this function's time. */
		if (len == 36)
			memcpy(cid->bytes, p, 36);
		else
			memcpy(cid->bytes, p, len);
		*used = len;
		return 0;
	}
	return cairn_cid_decode(cid, used, p, n);
}

int cairn_car__parse_head(cairn_car_section *s, size_t *head_len, const uint8_t *p, size_t avail,
			  uint64_t at, uint64_t data_offset, uint64_t data_end, const char *name,
			  const cairn_car_options *opts)
{
	uint64_t len;
	size_t used, cid_len;

	/* A one-byte length is most sections of small blocks. */
	if (avail && p[0] < 0x80 && p[0]) {
		len = p[0];
		used = 1;
	} else if (cairn_varint_decode(&len, &used, p, avail)) {
		return cairn_error_prefix("%s: section length at byte %llu: ", name, (unsigned long long)at);
	}
	if (len == 0)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: zero-length section (null padding; a Filecoin piece? read it with zero-length sections as the end)",
			name, (unsigned long long)at);
	if (len > opts->max_section_size)
		return cairn_error_set(CAIRN_ETOOBIG,
			"%s: at byte %llu: section of %llu bytes is over the limit of %llu", name,
			(unsigned long long)at, (unsigned long long)len,
			(unsigned long long)opts->max_section_size);
	if (len > data_end - at - used)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: section of %llu bytes runs past the end of the data (%llu bytes remain)",
			name, (unsigned long long)at, (unsigned long long)len,
			(unsigned long long)(data_end - at - used));
	if (decode_cid(&s->cid, &cid_len, p + used, avail - used < len ? avail - used : (size_t)len))
		return cairn_error_prefix("%s: section at byte %llu: ", name, (unsigned long long)at);
	s->offset = at - data_offset;
	s->file_offset = at;
	s->length = len;
	s->cid_len = (uint32_t)cid_len;
	s->block_offset = at + used + cid_len;
	s->block_len = len - cid_len;
	s->block = NULL;
	*head_len = used + cid_len;
	return 0;
}

static int verify(const cairn_car_section *s, const char *name)
{
	int rc = cairn_cid_verify(&s->cid, s->block, (size_t)s->block_len);

	if (rc)
		cairn_error_prefix("%s: section at byte %llu: ", name, (unsigned long long)s->file_offset);
	return rc;
}

int cairn_car_reader_next(cairn_car_reader *r, cairn_car_section *out, bool want_block)
{
	const uint8_t *p;
	size_t avail, head;
	int rc;

	if (r->pos >= r->data_end)
		return 0;
	if ((rc = window(r, r->pos, SECTION_HEAD_MAX, &p, &avail)))
		return rc;
	if (avail > r->data_end - r->pos)
		avail = (size_t)(r->data_end - r->pos);
	if (avail && p[0] == 0 && r->opts.zero_length_as_eof) {
		r->pos = r->data_end;
		return 0;
	}
	if ((rc = cairn_car__parse_head(out, &head, p, avail, r->pos, r->data_offset, r->data_end,
					r->name, &r->opts)))
		return rc;
	if (want_block || !r->opts.trusted) {
		r->read_min = r->window;
		if ((rc = need(r, out->block_offset, (size_t)out->block_len, &p, "a block")))
			return rc;
		out->block = p;
		if (!r->opts.trusted && (rc = verify(out, r->name)))
			return rc;
		if (!want_block)
			out->block = NULL;
	} else if (!r->src.remote) {
		r->read_min = out->block_len >= SKIP_BIG ? HEAD_READ : r->window;
	}
	r->pos = out->block_offset + out->block_len;
	return 1;
}

/* One section at payload offset `offset`, the head and, for a small block,
 * the block too in one read: a lookup is then one system call (on a cold
 * cache one page read; over HTTP one round trip) rather than two. `r` holds
 * only the fd or the source and the name. With `block` NULL, the head alone
 * (the block neither read nor hashed). */
static int section_read(cairn_car_section *out, cairn_buf *block, const cairn_car_reader *r,
			uint64_t data_offset, uint64_t data_end, uint64_t offset,
			const cairn_car_options *opts)
{
	uint8_t head[SECTION_READ];
	uint64_t at = data_offset + offset;
	size_t used, have, want, avail, rest;
	int rc;

	if (!opts)
		opts = &default_opts;
	if (data_offset > data_end || offset >= data_end - data_offset)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: offset %llu is past the end of the data",
				       r->name, (unsigned long long)offset);
	want = data_end - at < sizeof(head) ? (size_t)(data_end - at) : sizeof(head);
	if ((rc = cairn_car__read_at(r, head, want, at, &avail)))
		return rc;
	if ((rc = cairn_car__parse_head(out, &used, head, avail, at, data_offset, data_end,
					r->name, opts)))
		return rc;
	if (!block)
		return 0;
	cairn_buf_clear(block);
	if ((rc = cairn_buf_reserve(block, (size_t)out->block_len)))
		return rc;
	have = avail - used < out->block_len ? avail - used : (size_t)out->block_len;
	if (have)
		memcpy(block->data, head + used, have);
	if (have < out->block_len) {
		want = (size_t)out->block_len - have;
		if ((rc = cairn_car__read_at(r, block->data + have, want, out->block_offset + have,
					     &rest)))
			return rc;
		if (rest < want)
			return cairn_error_set(CAIRN_ECORRUPT,
				"%s: at byte %llu: unexpected end of file in a block (%zu of %zu bytes)",
				r->name, (unsigned long long)(out->block_offset + have + rest), rest,
				want);
	}
	block->len = (size_t)out->block_len;
	block->data[block->len] = '\0';
	out->block = block->data;
	if (!opts->trusted && (rc = verify(out, r->name)))
		return rc;
	return 0;
}

int cairn_car_section_read(cairn_car_section *out, cairn_buf *block, int fd, const char *name,
			   uint64_t data_offset, uint64_t data_end, uint64_t offset,
			   const cairn_car_options *opts)
{
	cairn_car_reader r = {0};

	r.fd = fd;
	r.name = (char *)name;
	return section_read(out, block, &r, data_offset, data_end, offset, opts);
}

int cairn_car_section_head_read(cairn_car_section *out, int fd, const char *name,
				uint64_t data_offset, uint64_t data_end, uint64_t offset,
				const cairn_car_options *opts)
{
	cairn_car_reader r = {0};

	r.fd = fd;
	r.name = (char *)name;
	return section_read(out, NULL, &r, data_offset, data_end, offset, opts);
}

int cairn_car_section_read_source(cairn_car_section *out, cairn_buf *block,
				  const cairn_car_source *src, uint64_t data_offset,
				  uint64_t data_end, uint64_t offset, const cairn_car_options *opts)
{
	cairn_car_reader r = {0};

	if (!out || !block || !src || !src->read_at)
		return cairn_error_set(CAIRN_EINVAL, "car section read: NULL argument");
	r.fd = -1;
	r.src = *src;
	r.name = (char *)(src->name ? src->name : "CAR");
	if (data_offset > data_end || data_end > src->size)
		return cairn_error_set(CAIRN_EINVAL,
			"%s: payload [%llu, %llu) is not inside the source (%llu bytes)", r.name,
			(unsigned long long)data_offset, (unsigned long long)data_end,
			(unsigned long long)src->size);
	return section_read(out, block, &r, data_offset, data_end, offset, opts);
}
