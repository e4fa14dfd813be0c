/* gateway.c: the trustless gateway (GET|HEAD /ipfs/{cid}): one block as
 * application/vnd.ipld.raw, or a CAR of the DAG streamed as it is read.
 *
 * A CAR is streamed: the header first, then one block per callback from
 * an explicit stack (links pushed in reverse so they pop in order: depth
 * first, as the spec's order=dfs asks), each CID once (a cairn_cid_set).
 * A block missing mid-stream cannot change the status any more: the stream
 * ends short, which the client's verification catches, and it is logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve_i.h"

/* The headers every verifiable response carries. */
static void gateway_headers(struct MHD_Response *r, const char *cid, const char *type,
			    const char *etag_suffix)
{
	char etag[CAIRN_CID_MAX_STRING + 32];

	snprintf(etag, sizeof(etag), "\"%s.%s\"", cid, etag_suffix);
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "X-Ipfs-Roots", cid);
	MHD_add_response_header(r, "ETag", etag);
	MHD_add_response_header(r, "Cache-Control", "public, max-age=29030400, immutable");
	MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Vary", "Accept");
}

/* Splits "/ipfs/{cid}[/]" after strict checks. Returns 0 with the CID's
 * span, CAIRN_ECORRUPT for a malformed path (the message says why),
 * CAIRN_EUNSUPPORTED for a path below the CID (pathing is not served yet). */
static int parse_ipfs_path(const char **cid_out, size_t *len_out, const char *url)
{
	const char *p = url + strlen("/ipfs/"), *slash;

	for (const char *q = url; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return cairn_error_set(CAIRN_ECORRUPT, "a bad %%-escape or a control byte in the path");
	/* every segment: not empty, not "." or ".." (a trailing '/' is allowed) */
	for (const char *seg = url + 1;;) {
		const char *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);

		if ((n == 0 && end) || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return cairn_error_set(CAIRN_ECORRUPT, "an empty, \".\" or \"..\" path segment");
		if (!end)
			break;
		seg = end + 1;
	}
	slash = strchr(p, '/');
	*cid_out = p;
	*len_out = slash ? (size_t)(slash - p) : strlen(p);
	if (*len_out == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "no CID after /ipfs/");
	if (slash && slash[1])
		return cairn_error_set(CAIRN_EUNSUPPORTED, "pathing below a CID is not served yet");
	return 0;
}

/* ------------------------------------------------- content negotiation */

enum fmt { FMT_NONE, FMT_RAW, FMT_CAR, FMT_BAD };

static bool media_is(const char *p, size_t n, const char *type)
{
	return n == strlen(type) && strncasecmp(p, type, n) == 0;
}

/* ?format= first; then the first of the two verifiable types the Accept
 * list names (q-values are not weighed: a client asks for one of them). */
static enum fmt negotiate(struct MHD_Connection *c)
{
	const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
	const char *a;

	if (f) {
		if (!strcmp(f, "raw"))
			return FMT_RAW;
		if (!strcmp(f, "car"))
			return FMT_CAR;
		return FMT_BAD;
	}
	a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	while (a && *a) {
		const char *end = strchr(a, ','), *semi;
		size_t n;

		if (!end)
			end = a + strlen(a);
		while (a < end && (*a == ' ' || *a == '\t'))
			a++;
		semi = memchr(a, ';', (size_t)(end - a));
		n = (size_t)((semi ? semi : end) - a);
		while (n && (a[n - 1] == ' ' || a[n - 1] == '\t'))
			n--;
		if (media_is(a, n, "application/vnd.ipld.raw"))
			return FMT_RAW;
		if (media_is(a, n, "application/vnd.ipld.car"))
			return FMT_CAR;
		a = *end ? end + 1 : end;
	}
	return FMT_NONE;
}

/* ------------------------------------------------------------- blocks */

static enum MHD_Result serve_raw(struct MHD_Connection *c, cairn_server *srv, const cairn_cid *cid,
				 const char *cid_str, bool head)
{
	struct MHD_Response *r = NULL;
	enum MHD_Result ret;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	if (head) {
		uint64_t size;

		rc = cairn_dagstore_get_size(srv->ds, &size, cid);
		if (!rc)
			r = MHD_create_response_from_callback(size, 4096, serve_empty_reader, NULL, NULL);
	} else {
		rc = cairn_dagstore_get(srv->ds, &b, cid, NULL);
		if (!rc) {
			size_t len = b.len;
			void *data = cairn_buf_detach(&b, &len);

			r = MHD_create_response_from_buffer_with_free_callback(len, data, cairn_free);
			if (!r)
				cairn_free(data);
		}
	}
	if (rc == CAIRN_ENOTFOUND)
		return serve_send_textf(c, MHD_HTTP_NOT_FOUND, "block %s: no shard holds it\n", cid_str);
	if (rc) {
		cairn_log(CAIRN_LOG_ERROR, "serve: block %s: %s", cid_str, cairn_error_last());
		cairn_buf_free(&b);
		return serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "block %s: %s\n", cid_str,
				  cairn_error_last());
	}
	if (!r)
		return MHD_NO;
	gateway_headers(r, cid_str, "application/vnd.ipld.raw", "raw");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* --------------------------------------------------------------- CARs */

typedef struct car_stream {
	cairn_dagstore *ds;
	cairn_cid_set seen;
	cairn_cid *stack;      /* to visit; the top is the last */
	size_t depth, cap;
	bool block_only;       /* dag-scope=block: the root alone */
	/* what is being sent: pre[] (a section's length and CID), then block
	 * (the block, or the CAR header at first); one block held at a time */
	uint8_t pre[CAIRN_VARINT_MAX + CAIRN_CID_MAX_BYTES];
	size_t pre_len, pre_off;
	cairn_buf block;
	size_t block_off;
	char root[CAIRN_CID_MAX_STRING];
} car_stream;

static void car_stream_free(void *cls)
{
	car_stream *s = cls;

	cairn_cid_set_free(&s->seen);
	cairn_free(s->stack);
	cairn_buf_free(&s->block);
	cairn_free(s);
}

static int push(car_stream *s, const cairn_cid *cid)
{
	if (s->depth == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		cairn_cid *n = cairn_realloc(s->stack, cap * sizeof(*n));

		if (!n)
			return CAIRN_ENOMEM;
		s->stack = n;
		s->cap = cap;
	}
	s->stack[s->depth++] = *cid;
	return 0;
}

static int push_link(const cairn_cid *link, void *payload)
{
	car_stream *s = payload;

	if (cairn_cid_set_has(&s->seen, link))
		return 0;
	return push(s, link);
}

/* Reads the next unseen block as a CAR section (s->pre and s->block) and
 * pushes its links. 1 when one was read, 0 at the end, negative on failure. */
static int next_section(car_stream *s)
{
	cairn_cid cid;
	bool added;
	size_t base, n;
	int rc;

	do {
		if (!s->depth)
			return 0;
		cid = s->stack[--s->depth];
		if ((rc = cairn_cid_set_add(&s->seen, &cid, &added)))
			return rc;
	} while (!added);
	cairn_buf_clear(&s->block);
	s->block_off = 0;
	if ((rc = cairn_dagstore_get(s->ds, &s->block, &cid, NULL)))
		return rc;
	n = cairn_varint_encode(s->pre, (uint64_t)cid.len + s->block.len);
	memcpy(s->pre + n, cid.bytes, cid.len);
	s->pre_len = n + cid.len;
	s->pre_off = 0;
	if (s->block_only)
		return 1;
	/* push in reverse so the first link pops first: links go on the stack
	 * in order, then the new part of the stack is reversed */
	base = s->depth;
	rc = cairn_block_links(cid.codec, s->block.data, s->block.len, push_link, s);
	if (rc == CAIRN_EUNSUPPORTED) {
		char str[CAIRN_CID_MAX_STRING];

		cairn_cid_to_string(str, &cid);
		cairn_log(CAIRN_LOG_WARN, "serve: car %s: block %s: codec not walkable, its links "
			  "(if any) left out", s->root, str);
		s->depth = base;
		return 1;
	}
	if (rc)
		return rc;
	for (size_t i = base, j = s->depth; i + 1 < j; i++, j--) {
		cairn_cid t = s->stack[i];

		s->stack[i] = s->stack[j - 1];
		s->stack[j - 1] = t;
	}
	return 1;
}

static ssize_t car_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	car_stream *s = cls;
	size_t n = 0, k;
	int rc;

	(void)pos;
	while (s->pre_off == s->pre_len && s->block_off == s->block.len) {
		rc = next_section(s);
		if (rc == 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (rc < 0) {
			cairn_log(CAIRN_LOG_ERROR, "serve: car %s: stream cut short: %s", s->root,
				  cairn_error_last());
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	k = s->pre_len - s->pre_off;
	if (k > max)
		k = max;
	memcpy(buf, s->pre + s->pre_off, k);
	s->pre_off += k;
	n = k;
	k = s->block.len - s->block_off;
	if (k > max - n)
		k = max - n;
	if (k)
		memcpy(buf + n, s->block.data + s->block_off, k);
	s->block_off += k;
	return (ssize_t)(n + k);
}

static enum MHD_Result serve_car(struct MHD_Connection *c, cairn_server *srv, const cairn_cid *cid,
				 const char *cid_str, bool head)
{
	const char *scope = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dag-scope");
	struct MHD_Response *r;
	enum MHD_Result ret;
	car_stream *s;
	bool block_only = false;
	int rc;

	if (scope && !strcmp(scope, "block"))
		block_only = true;
	else if (scope && !strcmp(scope, "entity"))
		return serve_send_text(c, MHD_HTTP_NOT_IMPLEMENTED, "dag-scope=entity is not served yet: "
				 "use dag-scope=all or dag-scope=block\n");
	else if (scope && strcmp(scope, "all"))
		return serve_send_text(c, MHD_HTTP_BAD_REQUEST, "dag-scope must be all, entity or block\n");
	/* a missing root is a 404 before anything is sent; below it, too late */
	rc = cairn_dagstore_has(srv->ds, cid);
	if (rc == 0)
		return serve_send_textf(c, MHD_HTTP_NOT_FOUND, "block %s: no shard holds it\n", cid_str);
	if (rc < 0) {
		cairn_log(CAIRN_LOG_ERROR, "serve: car %s: %s", cid_str, cairn_error_last());
		return serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "block %s: %s\n", cid_str,
				  cairn_error_last());
	}
	if (head) {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, serve_empty_reader, NULL, NULL);
	} else {
		if (!(s = cairn_calloc(1, sizeof(*s))))
			return MHD_NO;
		s->ds = srv->ds;
		s->block_only = block_only;
		snprintf(s->root, sizeof(s->root), "%s", cid_str);
		if (cairn_car_v1_header_encode(&s->block, cid, 1) || push(s, cid)) {
			car_stream_free(s);
			return MHD_NO;
		}
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, car_reader, s,
						      car_stream_free);
		if (!r) {
			car_stream_free(s);
			return MHD_NO;
		}
	}
	if (!r)
		return MHD_NO;
	gateway_headers(r, cid_str, "application/vnd.ipld.car; version=1; order=dfs; dups=n",
			block_only ? "car.block" : "car");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ------------------------------------------------------------- routing */

enum MHD_Result serve_gateway(struct MHD_Connection *c, cairn_server *srv, const char *url,
			      bool head)
{
	char cid_str[CAIRN_CID_MAX_STRING];
	const char *p = NULL;
	size_t n = 0;
	cairn_cid cid;
	enum fmt f;
	int rc;

	rc = parse_ipfs_path(&p, &n, url);
	if (rc == CAIRN_EUNSUPPORTED)
		return serve_send_text(c, MHD_HTTP_NOT_IMPLEMENTED,
				 "pathing below a CID is not served yet: ask for the CID itself\n");
	if (rc)
		return serve_send_textf(c, MHD_HTTP_BAD_REQUEST, "malformed path: %s\n", cairn_error_last());
	if (n >= CAIRN_CID_MAX_STRING || cairn_cid_parse(&cid, p, n))
		return serve_send_textf(c, MHD_HTTP_BAD_REQUEST, "malformed CID: %s\n",
				  n >= CAIRN_CID_MAX_STRING ? "too long" : cairn_error_last());
	/* answer with the CID as asked for (v0 stays v0) */
	memcpy(cid_str, p, n);
	cid_str[n] = 0;
	f = negotiate(c);
	if (f == FMT_BAD)
		return serve_send_text(c, MHD_HTTP_BAD_REQUEST, "format must be raw or car\n");
	if (f == FMT_NONE)
		return serve_send_text(c, MHD_HTTP_NOT_ACCEPTABLE,
				 "only verifiable responses are served: ask for ?format=raw or ?format=car, "
				 "or Accept: application/vnd.ipld.raw or application/vnd.ipld.car\n");
	return f == FMT_RAW ? serve_raw(c, srv, &cid, cid_str, head)
			    : serve_car(c, srv, &cid, cid_str, head);
}

