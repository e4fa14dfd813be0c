/* piece.c: GET|HEAD /piece/{pieceCid}: a whole piece, or one byte range of
 * it, read through the mount of the shard keyed by that piece CID.
 *
 * What bytes: the unpadded piece, as Boost's booster-http and Curio serve
 * it (Boost reads UnsealSectorAt(offset.Unpadded(), length.Unpadded()) and
 * hands it to Go's http.ServeContent): the payload (the deal's CAR, the
 * shard's mount) followed by zeros up to the piece's unpadded size,
 * padded_size / 128 * 127. A client that fr32-pads these bytes gets the
 * padded piece, whose CommP is the piece CID; `cairn piece commp` of the
 * body gives the same piece CID. The padded size comes from the CID for a
 * v2 piece CID, else from the payload size (the smallest piece holding
 * it). The piece's bytes are not hashed here: the key was registered as
 * the piece CID of that mount.
 *
 * Shards are keyed by the v1 piece CID string ("baga6ea4seaq...", as
 * `cairn dagstore import-deals` and Lotus name them); a v2 CID
 * ("bafkzcib...") is looked up under its v1 form, then as given.
 *
 * Headers as Boost sets them: Content-Type application/piece, ETag the
 * quoted piece CID, immutable Cache-Control, Accept-Ranges bytes.
 * Range: one range "bytes=a-b", "a-" or "-n" gives 206 with Content-Range;
 * a range starting past the end gives 416 with a Content-Range of "bytes *" + "/N".
 * Several ranges are answered with the whole piece (200): RFC 9110 lets a
 * server ignore Range, and a multipart body is work for no client that
 * exists (Go's ServeContent would build one). A malformed Range header is
 * ignored likewise.
 *
 * Bodies: a range that lies inside the payload of a local mount is sent
 * from the file's kept mapping (filemap.c), or by sendfile from a dup of
 * the mount's descriptor; otherwise a callback reads through the mount
 * and fills the zero tail. A mount is opened per request and closed with
 * the response (for a file: one open and fstat).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/piece.h"
#include "serve_i.h"

/* "bytes=a-b": one range, or WHOLE for anything else. */
serve_http_range serve_http_range_parse(uint64_t *from, uint64_t *to, const char *h,
					uint64_t size)
{
	uint64_t a = 0, b = 0;
	bool has_a = false, has_b = false;
	const char *p;

	if (!h)
		return SERVE_RANGE_WHOLE;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncmp(h, "bytes=", 6))
		return SERVE_RANGE_WHOLE;
	p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ','))
		return SERVE_RANGE_WHOLE; /* several ranges: the whole piece */
	for (; *p >= '0' && *p <= '9'; p++) {
		if (a > (UINT64_MAX - 9) / 10)
			return SERVE_RANGE_WHOLE;
		a = a * 10 + (uint64_t)(*p - '0');
		has_a = true;
	}
	if (*p++ != '-')
		return SERVE_RANGE_WHOLE;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (b > (UINT64_MAX - 9) / 10)
			return SERVE_RANGE_WHOLE;
		b = b * 10 + (uint64_t)(*p - '0');
		has_b = true;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p || (!has_a && !has_b))
		return SERVE_RANGE_WHOLE;
	if (!has_a) {
		/* the last b bytes */
		if (b == 0 || size == 0)
			return SERVE_RANGE_UNSATISFIABLE;
		*from = b >= size ? 0 : size - b;
		*to = size - 1;
		return SERVE_RANGE_ONE;
	}
	if (has_b && b < a)
		return SERVE_RANGE_WHOLE; /* invalid: ignored, as RFC 9110 says */
	if (a >= size)
		return SERVE_RANGE_UNSATISFIABLE;
	*from = a;
	*to = !has_b || b >= size ? size - 1 : b;
	return SERVE_RANGE_ONE;
}

typedef struct piece_body {
	cairn_server *srv;
	cairn_mount *m;
	uint64_t payload;      /* the mount's bytes; zeros after */
	uint64_t start;        /* the first byte of the body in the piece */
	char name[CAIRN_CID_MAX_STRING];
} piece_body;

static void body_free(void *cls)
{
	piece_body *b = cls;

	cairn_mount_close(b->m);
	cairn_free(b);
}

static ssize_t body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	piece_body *b = cls;
	uint64_t at = b->start + pos;
	size_t n = max, k = 0;

	if (at < b->payload) {
		k = b->payload - at < n ? (size_t)(b->payload - at) : n;
		if (cairn_mount_read_at(b->m, buf, k, at)) {
			cairn_log(CAIRN_LOG_ERROR, "serve: piece %s: read at %llu: %s", b->name,
				  (unsigned long long)at, cairn_error_last());
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	memset(buf + k, 0, n - k);
	serve_metrics_bytes(b->srv, "piece", n);
	return (ssize_t)n;
}

/* The shard's key for a piece CID: its v1 string, or the CID as given. */
static int find_shard(cairn_shard_info *info, cairn_server *srv, const cairn_cid *cid,
		      const char *given)
{
	char v1[CAIRN_CID_MAX_STRING];
	cairn_piece_info pi;
	cairn_cid c1;
	int rc;

	if ((rc = cairn_piece_cid_decode(&pi, cid)))
		return rc;
	cairn_piece_cid_v1(&c1, pi.commp);
	cairn_cid_to_string(v1, &c1);
	rc = cairn_dagstore_info(info, srv->ds, v1);
	if (rc == CAIRN_ENOTFOUND && strcmp(v1, given))
		rc = cairn_dagstore_info(info, srv->ds, given);
	return rc;
}

/* A range inside the payload of a local mount, sent from the file's kept
 * mapping (filemap.c: MHD sends a buffer in as few sends as the socket
 * takes, a file in 128 KiB sendfile turns), or by sendfile from a dup when
 * it cannot be mapped. NULL when the mount has no file, or the file is
 * shorter than the range: the caller reads through the mount, which says
 * what is wrong. */
static struct MHD_Response *from_local_file(cairn_server *srv, cairn_mount *m, uint64_t from,
					    uint64_t len)
{
	struct MHD_Response *r = NULL;
	serve_mapping *map;
	const uint8_t *data;
	bool too_short;
	int fd = cairn_mount_fd(m);

	if (fd < 0)
		return NULL;
	if ((map = serve_filemap_get(srv->maps, fd, from, len, &data, &too_short))) {
		if (!(r = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)data,
										  serve_mapping_put, map)))
			serve_mapping_put(map);
	} else if (!too_short && (fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) >= 0) {
		if (!(r = MHD_create_response_from_fd_at_offset64(len, fd, from)))
			close(fd);
	}
	if (r)
		serve_metrics_bytes(srv, "piece", len);
	return r;
}

enum MHD_Result serve_piece(struct MHD_Connection *c, cairn_server *srv, const char *url,
			    bool head)
{
	const char *given = url + strlen("/piece/");
	const char *range_h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
	cairn_shard_info info;
	cairn_piece_info pi, sz;
	cairn_mount *m = NULL;
	struct MHD_Response *r = NULL;
	enum MHD_Result ret;
	uint64_t payload, size, from = 0, to = 0;
	serve_http_range kind;
	unsigned status = MHD_HTTP_OK;
	char etag[CAIRN_CID_MAX_STRING + 4], crange[96];
	size_t n = strlen(given);
	cairn_cid cid;
	int rc;

	memset(&info, 0, sizeof(info));
	if (n == 0 || n >= CAIRN_CID_MAX_STRING || strchr(given, '/') ||
	    cairn_cid_parse(&cid, given, n))
		return serve_send_textf(c, MHD_HTTP_BAD_REQUEST, "malformed piece CID: %s\n",
					n == 0 ? "none after /piece/" : n >= CAIRN_CID_MAX_STRING ? "too long"
					: strchr(given, '/') ? "a path below it" : cairn_error_last());
	if (cairn_piece_cid_decode(&pi, &cid))
		return serve_send_textf(c, MHD_HTTP_BAD_REQUEST,
					"%s is not a piece CID (v1 baga..., v2 bafkzcib...): %s\n", given,
					cairn_error_last());
	rc = find_shard(&info, srv, &cid, given);
	if (rc == CAIRN_ENOTFOUND)
		return serve_send_textf(c, MHD_HTTP_NOT_FOUND, "piece %s: no shard has this key\n", given);
	if (rc)
		return serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "piece %s: %s\n", given,
					cairn_error_last());
	rc = cairn_mount_open(&m, cairn_dagstore_mounts(srv->ds), info.url, NULL);
	if (rc) {
		cairn_log(CAIRN_LOG_ERROR, "serve: piece %s: %s", given, cairn_error_last());
		ret = serve_send_textf(c, rc == CAIRN_ENOTFOUND ? MHD_HTTP_NOT_FOUND
						: MHD_HTTP_INTERNAL_SERVER_ERROR,
				       "piece %s: its data cannot be opened: %s\n", given, cairn_error_last());
		cairn_shard_info_clear(&info);
		return ret;
	}
	cairn_shard_info_clear(&info);
	payload = cairn_mount_size(m);
	if (cairn_piece_sizes(&sz, payload)) {
		ret = serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "piece %s: %s\n", given,
				       cairn_error_last());
		goto out;
	}
	if (pi.padded_size) { /* v2: the CID says how large the piece is */
		if (pi.padded_size < sz.padded_size) {
			ret = serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
					       "piece %s: its shard holds %llu bytes, more than the piece\n",
					       given, (unsigned long long)payload);
			goto out;
		}
		sz.padded_size = pi.padded_size;
	}
	size = sz.padded_size / 128 * 127;
	kind = serve_http_range_parse(&from, &to, range_h, size);
	if (kind == SERVE_RANGE_UNSATISFIABLE) {
		snprintf(crange, sizeof(crange), "bytes */%llu", (unsigned long long)size);
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_RANGE_NOT_SATISFIABLE;
	} else {
		if (kind == SERVE_RANGE_WHOLE) {
			from = 0;
			to = size - 1;
		} else {
			snprintf(crange, sizeof(crange), "bytes %llu-%llu/%llu", (unsigned long long)from,
				 (unsigned long long)to, (unsigned long long)size);
			status = MHD_HTTP_PARTIAL_CONTENT;
		}
		if (head) {
			r = MHD_create_response_from_callback(to - from + 1, 4096, serve_empty_reader, NULL,
							      NULL);
		} else if (to < payload && (r = from_local_file(srv, m, from, to - from + 1))) {
			/* inside the payload of a local file */
		} else {
			piece_body *b = cairn_calloc(1, sizeof(*b));

			if (!b)
				goto nomem;
			b->srv = srv;
			b->m = m;
			b->payload = payload;
			b->start = from;
			snprintf(b->name, sizeof(b->name), "%s", given);
			r = MHD_create_response_from_callback(to - from + 1, 256 * 1024, body_read, b,
							      body_free);
			if (!r) {
				cairn_free(b);
				goto nomem;
			}
			m = NULL; /* the body owns it */
		}
	}
	if (!r)
		goto nomem;
	snprintf(etag, sizeof(etag), "\"%s\"", given);
	MHD_add_response_header(r, "Content-Type", status == MHD_HTTP_RANGE_NOT_SATISFIABLE
						   ? "text/plain; charset=utf-8" : "application/piece");
	MHD_add_response_header(r, "ETag", etag);
	MHD_add_response_header(r, "Cache-Control", "public, max-age=29030400, immutable");
	MHD_add_response_header(r, "Accept-Ranges", "bytes");
	MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (status != MHD_HTTP_OK)
		MHD_add_response_header(r, "Content-Range", crange);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
out:
	cairn_mount_close(m);
	return ret;
nomem:
	cairn_mount_close(m);
	return MHD_NO;
}
