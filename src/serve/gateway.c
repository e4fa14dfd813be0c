/* gateway.c: the trustless gateway (GET|HEAD /ipfs/{cid}[/path]): one block
 * as application/vnd.ipld.raw, or a CAR streamed as its blocks are read.
 *
 * A request is handled in two steps:
 *
 *   1. Resolution, before any status is sent: the path below the CID is
 *      walked through UnixFS directories (a plain directory's links by
 *      name; a HAMT shard by the murmur3-x64-64 hash of the name, one
 *      bucket per level, reading the child shards on the way), so a
 *      missing name is a 404 with a message, a malformed path or CID a 400.
 *      The CIDs of the blocks read on the way are kept (not the blocks:
 *      they are read again while streaming, so memory stays one block).
 *   2. The response: the terminal block (raw), or a CAR of the path's
 *      blocks, then the terminal entity per dag-scope:
 *        block   the terminal block;
 *        entity  a UnixFS file: the blocks of the file (only those
 *                covering entity-bytes=from:to when asked: each file node's
 *                blocksizes give its children's byte ranges); a plain
 *                directory: its node; a HAMT directory: its shard blocks
 *                (not the entries); anything else: the block;
 *        all     the whole DAG below it.
 *
 * A CAR is streamed: the header, then one block per callback from an
 * explicit stack of (CID, what to do with it) pushed in reverse so the walk
 * is depth first (order=dfs). dups=n (the default) sends each block once
 * (a cairn_cid_set); dups=y sends a block again each time the walk meets it.
 * Identity CIDs are never written as blocks (the spec forbids it); their
 * links are still followed. A block missing mid-stream cannot change the
 * status any more: the stream ends short, which the client's verification
 * catches, and it is logged.
 *
 * Blocks read from a local shard's file are not hashed again, raw or in a
 * CAR: they were when the shard was indexed. A remote shard's are, as its
 * source is read anew each time.
 *
 * Where the spec leaves a choice: order=unk is answered with order=dfs (a
 * valid unknown order, and the spec asks for an explicit one); a CAR
 * version other than 1 is 406; an entity-bytes range that starts past the
 * end of the file is 400 (the spec's SHOULD, the size being known from the
 * file's root block), one that resolves to nothing else (499:-1000 of a
 * 1 KB file) is answered as dag-scope=block; raw with a path answers the
 * terminal block; pathing through non-UnixFS codecs is 501.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cairn/unixfs.h"
#include "serve_i.h"

/* HAMT levels walked for one name: fanout 256 spends one byte of the
 * 64-bit hash per level, so 8 is the real bound; past 64 is hostile. */
#define HAMT_DEPTH_MAX 64

/* ------------------------------------------------------------ parsing */

int serve_path_parse(serve_path *out, const char *url)
{
	const char *p;

	memset(out, 0, sizeof(*out));
	if (strncmp(url, "/ipfs/", 6))
		return cairn_error_set(CAIRN_ECORRUPT, "the path does not start with /ipfs/");
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return cairn_error_set(CAIRN_ECORRUPT, "a bad %%-escape or a control byte in the path");
	p = url + 6;
	for (bool first = true;; first = false) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (!end && n == 0 && !first)
			break; /* a trailing '/' */
		if (n == 0)
			return cairn_error_set(CAIRN_ECORRUPT, first ? "no CID after /ipfs/"
							     : "an empty path segment");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return cairn_error_set(CAIRN_ECORRUPT, "a \".\" or \"..\" path segment");
		if (first) {
			out->cid = p;
			out->cid_len = n;
		} else {
			if (out->nseg == SERVE_PATH_MAX_SEGMENTS)
				return cairn_error_set(CAIRN_ETOOBIG, "more than %d path segments",
						       SERVE_PATH_MAX_SEGMENTS);
			out->seg[out->nseg] = p;
			out->seg_len[out->nseg++] = n;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* An optional '-' then 1 to 18 digits (no '+', no spaces): below 2^63. */
static bool parse_int(int64_t *out, const char *s, size_t n)
{
	bool neg = false;
	int64_t v = 0;

	if (n && s[0] == '-') {
		neg = true;
		s++;
		n--;
	}
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return true;
}

int serve_entity_bytes_parse(serve_range *out, const char *s)
{
	const char *colon = strchr(s, ':');

	memset(out, 0, sizeof(*out));
	if (!colon || !parse_int(&out->from, s, (size_t)(colon - s)))
		return cairn_error_set(CAIRN_EINVAL, "entity-bytes: want from:to (integers, negative from "
				       "the end, '*' for the end)");
	if (!strcmp(colon + 1, "*"))
		out->to_end = true;
	else if (!parse_int(&out->to, colon + 1, strlen(colon + 1)))
		return cairn_error_set(CAIRN_EINVAL, "entity-bytes: want from:to (integers, negative from "
				       "the end, '*' for the end)");
	if (!out->to_end && (out->from < 0) == (out->to < 0) && out->from > out->to)
		return cairn_error_set(CAIRN_EINVAL, "entity-bytes: from is after to");
	return 0;
}

/* The inclusive byte range [*lo, *hi] of a file of `size` bytes; false
 * when it holds nothing. */
static bool range_resolve(uint64_t *lo, uint64_t *hi, const serve_range *r, uint64_t size)
{
	int64_t s = size > INT64_MAX ? INT64_MAX : (int64_t)size, from, to;

	from = r->from < 0 ? s + r->from : r->from;
	if (from < 0)
		from = 0;
	to = r->to_end ? s - 1 : r->to < 0 ? s + r->to : r->to;
	if (to > s - 1)
		to = s - 1;
	if (s == 0 || to < 0 || from > to)
		return false;
	*lo = (uint64_t)from;
	*hi = (uint64_t)to;
	return true;
}

/* The headers every verifiable response carries. */
static void gateway_headers(struct MHD_Response *r, const char *roots, const char *type,
			    const char *etag, const char *filename)
{
	char disp[CAIRN_CID_MAX_STRING + 48];

	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", filename);
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "X-Ipfs-Roots", roots);
	MHD_add_response_header(r, "ETag", etag);
	MHD_add_response_header(r, "Cache-Control", "public, max-age=29030400, immutable");
	MHD_add_response_header(r, "Content-Disposition", disp);
	MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(r, "Access-Control-Expose-Headers",
				"Content-Length, Content-Type, ETag, X-Ipfs-Roots");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Vary", "Accept");
}

/* ------------------------------------------------- content negotiation */

enum fmt { FMT_NONE, FMT_RAW, FMT_CAR, FMT_BAD };
enum scope { SCOPE_ALL, SCOPE_ENTITY, SCOPE_BLOCK };

typedef struct request {
	enum fmt fmt;
	enum scope scope;
	bool dups;               /* dups=y */
	bool has_range;          /* entity-bytes */
	serve_range range;
	const char *refused;     /* a CAR variant asked for and not served (406) */
} request;

static bool span_is(const char *p, size_t n, const char *s)
{
	return n == strlen(s) && strncasecmp(p, s, n) == 0;
}

static void trim(const char **p, size_t *n)
{
	while (*n && (**p == ' ' || **p == '\t')) {
		(*p)++;
		(*n)--;
	}
	while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
		(*n)--;
	if (*n >= 2 && (*p)[0] == '"' && (*p)[*n - 1] == '"') {
		(*p)++;
		*n -= 2;
	}
}

/* The CAR parameters of one Accept entry (or query): false with *why when
 * the variant is one cairn does not write. */
static bool car_param(request *rq, const char *k, size_t kn, const char *v, size_t vn,
		      const char **why)
{
	if (span_is(k, kn, "version")) {
		if (!span_is(v, vn, "1")) {
			*why = "only CAR version 1 is served";
			return false;
		}
	} else if (span_is(k, kn, "order")) {
		if (!span_is(v, vn, "dfs") && !span_is(v, vn, "unk")) {
			*why = "CAR order must be dfs or unk";
			return false;
		}
	} else if (span_is(k, kn, "dups")) {
		if (span_is(v, vn, "y"))
			rq->dups = true;
		else if (span_is(v, vn, "n"))
			rq->dups = false;
		else {
			*why = "CAR dups must be y or n";
			return false;
		}
	}
	return true;
}

/* The Accept list: the acceptable entry of the highest q (the first among
 * equals) of the two verifiable types; a CAR entry asking for a variant
 * cairn does not write is not acceptable. */
static enum fmt accept_best(request *rq, const char *a, bool car_only)
{
	enum fmt best = FMT_NONE;
	int best_q = 0;
	bool best_dups = false;

	while (a && *a) {
		const char *end = strchr(a, ','), *semi, *why = NULL;
		request tmp = *rq;
		size_t n;
		enum fmt f = FMT_NONE;
		int q = 1000;
		bool ok = true;

		if (!end)
			end = a + strlen(a);
		semi = memchr(a, ';', (size_t)(end - a));
		n = (size_t)((semi ? semi : end) - a);
		trim(&a, &n);
		if (span_is(a, n, "application/vnd.ipld.raw") && !car_only)
			f = FMT_RAW;
		else if (span_is(a, n, "application/vnd.ipld.car"))
			f = FMT_CAR;
		tmp.dups = false;
		while (f != FMT_NONE && semi && semi < end) {
			const char *k = semi + 1, *next = memchr(k, ';', (size_t)(end - k)), *eq;
			const char *pend = next ? next : end, *v;
			size_t kn, vn;

			eq = memchr(k, '=', (size_t)(pend - k));
			kn = (size_t)((eq ? eq : pend) - k);
			v = eq ? eq + 1 : pend;
			vn = (size_t)(pend - v);
			trim(&k, &kn);
			trim(&v, &vn);
			if (span_is(k, kn, "q")) {
				double d = strtod(v, NULL);

				q = d <= 0 ? 0 : d >= 1 ? 1000 : (int)(d * 1000);
			} else if (f == FMT_CAR && !car_param(&tmp, k, kn, v, vn, &why)) {
				ok = false;
			}
			semi = next;
		}
		if (f != FMT_NONE && !ok)
			rq->refused = why;
		if (f != FMT_NONE && ok && q > best_q) {
			best = f;
			best_q = q;
			best_dups = tmp.dups;
		}
		a = *end ? end + 1 : end;
	}
	if (best == FMT_CAR)
		rq->dups = best_dups;
	return best;
}

/* ?format= first, then Accept; the car-* query parameters override the
 * Accept parameters. 0, or a status with *msg. */
static unsigned negotiate(request *rq, struct MHD_Connection *c, const char **msg)
{
	const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
	const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	const char *scope = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dag-scope");
	const char *eb = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "entity-bytes");
	static const char *const qp[] = {"car-version", "car-order", "car-dups"};
	const char *why = NULL;

	memset(rq, 0, sizeof(*rq));
	if (f) {
		if (!strcmp(f, "raw"))
			rq->fmt = FMT_RAW;
		else if (!strcmp(f, "car"))
			rq->fmt = FMT_CAR;
		else {
			*msg = "format must be raw or car\n";
			return MHD_HTTP_BAD_REQUEST;
		}
		/* the Accept's CAR parameters still apply to ?format=car */
		if (rq->fmt == FMT_CAR && a && accept_best(rq, a, true) == FMT_NONE && rq->refused) {
			*msg = rq->refused;
			return MHD_HTTP_NOT_ACCEPTABLE;
		}
	} else {
		rq->fmt = accept_best(rq, a, false);
		if (rq->fmt == FMT_NONE) {
			*msg = rq->refused ? rq->refused
					   : "only verifiable responses are served: ask for ?format=raw or "
					     "?format=car, or Accept: application/vnd.ipld.raw or "
					     "application/vnd.ipld.car";
			return MHD_HTTP_NOT_ACCEPTABLE;
		}
	}
	for (size_t i = 0; i < 3 && rq->fmt == FMT_CAR; i++) {
		const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, qp[i]);

		if (v && !car_param(rq, qp[i] + 4, strlen(qp[i] + 4), v, strlen(v), &why)) {
			*msg = why;
			return MHD_HTTP_NOT_ACCEPTABLE;
		}
	}
	if (!scope || !strcmp(scope, "all"))
		rq->scope = SCOPE_ALL;
	else if (!strcmp(scope, "entity"))
		rq->scope = SCOPE_ENTITY;
	else if (!strcmp(scope, "block"))
		rq->scope = SCOPE_BLOCK;
	else {
		*msg = "dag-scope must be all, entity or block";
		return MHD_HTTP_BAD_REQUEST;
	}
	if (eb && rq->fmt == FMT_CAR) {
		if (serve_entity_bytes_parse(&rq->range, eb)) {
			*msg = cairn_error_last();
			return MHD_HTTP_BAD_REQUEST;
		}
		rq->has_range = true;
		/* entity-bytes implies dag-scope=entity */
		rq->scope = SCOPE_ENTITY;
	}
	return 0;
}

/* --------------------------------------------------------------- DAG-PB */

/* A decoded DAG-PB node with its UnixFS Data (if it has one that parses). */
typedef struct pbnode {
	const cairn_node *links;
	size_t nlinks;
	cairn_unixfs_data d;
	bool unixfs;
} pbnode;

static int pb_decode(pbnode *out, cairn_arena *arena, const cairn_buf *b)
{
	const cairn_node *root = NULL, *links, *data;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = cairn_dagpb_decode((cairn_node **)&root, arena, b->data, b->len)))
		return rc;
	links = cairn_node_map_get(root, "Links");
	if (links && links->kind == CAIRN_KIND_LIST) {
		out->links = links->v.list.items;
		out->nlinks = links->v.list.len;
	}
	data = cairn_node_map_get(root, "Data");
	if (data && data->kind == CAIRN_KIND_BYTES &&
	    cairn_unixfs_data_decode(&out->d, arena, data->v.bytes.ptr, data->v.bytes.len) == 0)
		out->unixfs = true;
	else
		cairn_error_clear();
	return 0;
}

static const cairn_cid *pb_link(const pbnode *n, size_t i, const uint8_t **name, size_t *len)
{
	const cairn_node *h = cairn_node_map_get(&n->links[i], "Hash");
	const cairn_node *nm = cairn_node_map_get(&n->links[i], "Name");

	*name = nm && nm->kind == CAIRN_KIND_STRING ? nm->v.bytes.ptr : (const uint8_t *)"";
	*len = nm && nm->kind == CAIRN_KIND_STRING ? nm->v.bytes.len : 0;
	return h && h->kind == CAIRN_KIND_LINK ? h->v.link : NULL;
}

/* ------------------------------------------------------- HAMT hashing */

/* The bucket of `name` at HAMT level `depth` for 2^bits buckets: bits from
 * the top of the infinite hash, whose frame n > 0 hashes the name followed
 * by the byte n (as cairn's importer builds them; no real tree gets there). */
static int hamt_bucket(unsigned *out, const uint8_t *name, size_t len, unsigned depth,
		       unsigned bits)
{
	uint64_t pos = (uint64_t)depth * bits, frame = pos / 64, h;

	if (frame == 0) {
		h = cairn_unixfs_hamt_hash(name, len);
	} else {
		uint8_t buf[4097];

		if (frame > 255 || len > 4096)
			return cairn_error_set(CAIRN_ETOOBIG, "HAMT deeper than the hash allows");
		memcpy(buf, name, len);
		buf[len] = (uint8_t)frame;
		h = cairn_unixfs_hamt_hash(buf, len + 1);
	}
	*out = (unsigned)((h >> (64 - pos % 64 - bits)) & ((UINT64_C(1) << bits) - 1));
	return 0;
}

/* ---------------------------------------------------------- resolution */

typedef struct resolved {
	cairn_cid root, terminal;
	cairn_cid *path;          /* blocks read on the way, terminal excluded */
	size_t npath, cap;
	cairn_buf roots;          /* X-Ipfs-Roots: the root and each segment's CID */
	cairn_buf block;          /* the terminal's block, when read */
	bool have_block;
	unsigned status;          /* on failure: the HTTP status */
	char msg[512];
} resolved;

static void resolved_free(resolved *r)
{
	cairn_free(r->path);
	cairn_buf_free(&r->roots);
	cairn_buf_free(&r->block);
}

static int path_add(resolved *r, const cairn_cid *cid)
{
	if (r->npath == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		cairn_cid *n = cairn_realloc(r->path, cap * sizeof(*n));

		if (!n)
			return CAIRN_ENOMEM;
		r->path = n;
		r->cap = cap;
	}
	r->path[r->npath++] = *cid;
	return 0;
}

static int fail(resolved *r, unsigned status, int rc, const char *fmt, ...) CAIRN_PRINTF(4, 5);
static int fail(resolved *r, unsigned status, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->status = status;
	return rc;
}

/* Reads a block of the path into r->block; a missing one is a 404. */
static int fetch(resolved *r, cairn_server *srv, const cairn_cid *cid)
{
	char s[CAIRN_CID_MAX_STRING];
	int rc = cairn_dagstore_get_trusting_local(srv->ds, &r->block, cid, NULL);

	if (!rc)
		return 0;
	cairn_cid_to_string(s, cid);
	if (rc == CAIRN_ENOTFOUND)
		return fail(r, MHD_HTTP_NOT_FOUND, rc, "block %s: no shard holds it", s);
	cairn_log(CAIRN_LOG_ERROR, "serve: block %s: %s", s, cairn_error_last());
	return fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, rc, "block %s: %s", s, cairn_error_last());
}

/* Hex digits of fanout - 1: the width of a HAMT link's bucket prefix. */
static size_t prefix_width(uint64_t fanout)
{
	size_t w = 0;

	for (uint64_t v = fanout - 1; v; v >>= 4)
		w++;
	return w ? w : 1;
}

/* The entry `name` in the HAMT directory whose root node `n` (block
 * `cid`) was just read; the child shards read on the way join the path. */
static int hamt_find(resolved *r, cairn_server *srv, cairn_arena *arena, pbnode *n,
		     const cairn_cid *cid, const uint8_t *name, size_t len, const char *shown,
		     cairn_cid *out)
{
	uint64_t fanout = n->d.fanout;
	unsigned bits = 0;
	size_t width;
	char s[CAIRN_CID_MAX_STRING];
	int rc;

	cairn_cid_to_string(s, cid);
	if (!n->d.has_hash_type || n->d.hash_type != CAIRN_UNIXFS_HAMT_MURMUR3 || !n->d.has_fanout ||
	    fanout < 2 || fanout > 65536 || (fanout & (fanout - 1)))
		return fail(r, MHD_HTTP_NOT_IMPLEMENTED, CAIRN_EUNSUPPORTED,
			    "HAMT directory %s: only murmur3-x64-64 with a power-of-two fanout is served", s);
	while ((UINT64_C(1) << bits) < fanout)
		bits++;
	width = prefix_width(fanout);
	for (unsigned depth = 0; depth < HAMT_DEPTH_MAX; depth++) {
		char want[8];
		unsigned bucket = 0;
		const cairn_cid *child = NULL;

		if ((rc = hamt_bucket(&bucket, name, len, depth, bits)))
			return fail(r, MHD_HTTP_NOT_FOUND, rc, "no \"%s\" in %s", shown, s);
		snprintf(want, sizeof(want), "%0*X", (int)width, bucket);
		for (size_t i = 0; i < n->nlinks; i++) {
			const uint8_t *ln;
			size_t ll;
			const cairn_cid *lc = pb_link(n, i, &ln, &ll);

			if (!lc || ll < width || strncasecmp((const char *)ln, want, width))
				continue;
			if (ll == width) {
				child = lc;
				break;
			}
			if (ll - width == len && !memcmp(ln + width, name, len)) {
				*out = *lc;
				return 0;
			}
		}
		if (!child)
			return fail(r, MHD_HTTP_NOT_FOUND, CAIRN_ENOTFOUND, "no \"%s\" in directory %s",
				    shown, s);
		/* one level down: a shard of the same directory */
		if ((rc = path_add(r, child)))
			return fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, rc, "out of memory");
		if ((rc = fetch(r, srv, child)))
			return rc;
		cairn_arena_reset(arena);
		if (child->codec != CAIRN_CODEC_DAG_PB || pb_decode(n, arena, &r->block) || !n->unixfs ||
		    n->d.type != CAIRN_UNIXFS_HAMT_SHARD || n->d.fanout != fanout) {
			cairn_cid_to_string(s, child);
			return fail(r, MHD_HTTP_BAD_GATEWAY, CAIRN_ECORRUPT,
				    "HAMT shard %s is not a shard of the directory's fanout", s);
		}
	}
	return fail(r, MHD_HTTP_NOT_FOUND, CAIRN_ETOOBIG, "HAMT directory %s: more than %d levels",
		    s, HAMT_DEPTH_MAX);
}

static void roots_add(resolved *r, const cairn_cid *cid)
{
	char s[CAIRN_CID_MAX_STRING];

	cairn_cid_to_string(s, cid);
	if (r->roots.len)
		cairn_buf_putc(&r->roots, ',');
	cairn_buf_puts(&r->roots, s);
}

/* Walks the segments from the root. On failure r->status and r->msg say
 * what to answer. The terminal's block is in r->block when a segment was
 * walked (have_block). */
static int resolve(resolved *r, cairn_server *srv, const serve_path *sp)
{
	cairn_arena *arena = NULL;
	cairn_cid cur = r->root;
	int rc = 0;

	if (!sp->nseg)
		return 0;
	if ((rc = cairn_arena_new(&arena)))
		return fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, rc, "out of memory");
	for (unsigned i = 0; i < sp->nseg; i++) {
		char shown[256], s[CAIRN_CID_MAX_STRING];
		const uint8_t *name = (const uint8_t *)sp->seg[i];
		size_t len = sp->seg_len[i];
		cairn_cid next;
		pbnode n;
		bool found = false;

		snprintf(shown, sizeof(shown), "%.*s", (int)(len < 200 ? len : 200), sp->seg[i]);
		cairn_cid_to_string(s, &cur);
		if ((rc = path_add(r, &cur))) {
			rc = fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, rc, "out of memory");
			break;
		}
		if ((rc = fetch(r, srv, &cur)))
			break;
		if (cur.codec != CAIRN_CODEC_DAG_PB) {
			rc = cur.codec == CAIRN_CODEC_RAW
				? fail(r, MHD_HTTP_NOT_FOUND, CAIRN_ENOTFOUND,
				       "no \"%s\" under %s: a file, not a directory", shown, s)
				: fail(r, MHD_HTTP_NOT_IMPLEMENTED, CAIRN_EUNSUPPORTED,
				       "no pathing through %s (codec %s): only UnixFS directories", s,
				       cairn_codec_name(cur.codec) ? cairn_codec_name(cur.codec) : "?");
			break;
		}
		cairn_arena_reset(arena);
		if (pb_decode(&n, arena, &r->block) || !n.unixfs) {
			rc = fail(r, MHD_HTTP_BAD_GATEWAY, CAIRN_ECORRUPT,
				  "block %s on the path is not a UnixFS node", s);
			break;
		}
		if (n.d.type == CAIRN_UNIXFS_DIRECTORY) {
			for (size_t k = 0; k < n.nlinks; k++) {
				const uint8_t *ln;
				size_t ll;
				const cairn_cid *lc = pb_link(&n, k, &ln, &ll);

				if (lc && ll == len && !memcmp(ln, name, len)) {
					next = *lc;
					found = true;
					break;
				}
			}
			if (!found) {
				rc = fail(r, MHD_HTTP_NOT_FOUND, CAIRN_ENOTFOUND,
					  "no \"%s\" in directory %s", shown, s);
				break;
			}
		} else if (n.d.type == CAIRN_UNIXFS_HAMT_SHARD) {
			if ((rc = hamt_find(r, srv, arena, &n, &cur, name, len, shown, &next)))
				break;
		} else {
			rc = fail(r, MHD_HTTP_NOT_FOUND, CAIRN_ENOTFOUND,
				  "no \"%s\" under %s: a %s, not a directory", shown, s,
				  n.d.type == CAIRN_UNIXFS_SYMLINK ? "symbolic link" : "file");
			break;
		}
		cur = next;
		roots_add(r, &cur);
	}
	cairn_arena_free(arena);
	if (rc)
		return rc;
	r->terminal = cur;
	/* the terminal itself: a missing one is a 404 too */
	if ((rc = fetch(r, srv, &cur)))
		return rc;
	r->have_block = true;
	if (r->roots.err)
		return fail(r, MHD_HTTP_INTERNAL_SERVER_ERROR, CAIRN_ENOMEM, "out of memory");
	return 0;
}

/* ------------------------------------------------------------- blocks */

#define SMALL_BLOCK (16 * 1024)

/* A larger block is sent from a mapping of its shard's file, kept between
 * requests (filemap.c says why and why it is safe); NULL with *too_short
 * when the file ends before the block, NULL when it cannot be mapped. */
static struct MHD_Response *block_from_map(cairn_server *srv, const cairn_block_location *loc,
					   bool *too_short)
{
	const uint8_t *data;
	serve_mapping *m = serve_filemap_get(srv->maps, loc->fd, loc->offset, loc->length, &data,
					     too_short);
	struct MHD_Response *r;

	if (!m)
		return NULL;
	r = MHD_create_response_from_buffer_with_free_callback_cls(loc->length, (void *)data,
								   serve_mapping_put, m);
	if (!r)
		serve_mapping_put(m);
	else
		serve_metrics_bytes(srv, "ipfs", loc->length);
	return r;
}

/* A block sent from its shard's file, not hashed again (it was when its
 * shard was indexed). NULL with *rc 0 when it has no local file (a remote
 * shard) or that read failed: the caller reads it the ordinary way, which
 * tries every holder and words the failure. */
static struct MHD_Response *block_from_file(cairn_server *srv, const cairn_cid *cid, bool head,
					    int *rc)
{
	cairn_block_location loc;
	struct MHD_Response *r;
	bool too_short = false;

	if ((*rc = cairn_dagstore_locate(srv->ds, &loc, cid))) {
		if (*rc != CAIRN_ENOTFOUND)
			*rc = 0;
		return NULL;
	}
	if (head) {
		close(loc.fd);
		return MHD_create_response_from_callback(loc.length, 4096, serve_empty_reader, NULL,
							 NULL);
	}
	/* A small block is read here and sent from memory: MHD then writes the
	 * headers and the block in one send, where a file response costs a
	 * send and a sendfile (and two packets) for a kilobyte. */
	if (loc.length <= SMALL_BLOCK) {
		char *data = cairn_malloc(loc.length ? loc.length : 1);

		if (data && pread(loc.fd, data, loc.length, (off_t)loc.offset) == (ssize_t)loc.length) {
			close(loc.fd);
			if ((r = MHD_create_response_from_buffer_with_free_callback(loc.length, data,
										    cairn_free)))
				serve_metrics_bytes(srv, "ipfs", loc.length);
			else
				cairn_free(data);
			return r;
		}
		cairn_free(data);
		close(loc.fd);
		return NULL; /* a short read: the caller's read words it */
	}
	if ((r = block_from_map(srv, &loc, &too_short)) || too_short) {
		close(loc.fd);
		return r;
	}
	/* MHD owns the descriptor from here, and closes it */
	if (!(r = MHD_create_response_from_fd_at_offset64(loc.length, loc.fd, loc.offset)))
		close(loc.fd);
	else
		serve_metrics_bytes(srv, "ipfs", loc.length);
	return r;
}

static enum MHD_Result serve_raw(struct MHD_Connection *c, cairn_server *srv, resolved *rs,
				 const char *roots, bool head)
{
	struct MHD_Response *r = NULL;
	enum MHD_Result ret;
	char cid_str[CAIRN_CID_MAX_STRING], etag[CAIRN_CID_MAX_STRING + 8];
	char file[CAIRN_CID_MAX_STRING + 8];
	int rc = 0;

	cairn_cid_to_string(cid_str, &rs->terminal);
	if (!rs->have_block)
		r = block_from_file(srv, &rs->terminal, head, &rc);
	if (r || rc) {
		/* sent from the file, or not found */
	} else if (head && !rs->have_block) {
		uint64_t size;

		rc = cairn_dagstore_get_size(srv->ds, &size, &rs->terminal);
		if (!rc)
			r = MHD_create_response_from_callback(size, 4096, serve_empty_reader, NULL, NULL);
	} else {
		if (!rs->have_block)
			rc = cairn_dagstore_get_trusting_local(srv->ds, &rs->block, &rs->terminal, NULL);
		if (!rc && head) {
			r = MHD_create_response_from_callback(rs->block.len, 4096, serve_empty_reader,
							      NULL, NULL);
		} else if (!rc) {
			size_t len = rs->block.len;
			void *data = cairn_buf_detach(&rs->block, &len);

			r = MHD_create_response_from_buffer_with_free_callback(len, data, cairn_free);
			if (!r)
				cairn_free(data);
			else
				serve_metrics_bytes(srv, "ipfs", len);
		}
	}
	if (rc == CAIRN_ENOTFOUND)
		return serve_send_textf(c, MHD_HTTP_NOT_FOUND, "block %s: no shard holds it\n", cid_str);
	if (rc) {
		cairn_log(CAIRN_LOG_ERROR, "serve: block %s: %s", cid_str, cairn_error_last());
		return serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "block %s: %s\n", cid_str,
				  cairn_error_last());
	}
	if (!r)
		return MHD_NO;
	snprintf(etag, sizeof(etag), "\"%s.raw\"", cid_str);
	snprintf(file, sizeof(file), "%s.bin", cid_str);
	gateway_headers(r, roots, "application/vnd.ipld.raw", etag, file);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* --------------------------------------------------------------- CARs */

/* What the walk does with a block once it is written. */
enum kind {
	K_BLOCK,   /* nothing more: a block of the path, or dag-scope=block */
	K_ALL,     /* every link (dag-scope=all) */
	K_ENTITY,  /* decided by the block: a file, a HAMT directory, or nothing */
	K_FILE,    /* a node of a UnixFS file starting at byte `off` */
	K_HAMT,    /* a HAMT shard: its child shards, not its entries */
};

typedef struct item {
	cairn_cid cid;
	uint64_t off;
	uint8_t kind;
} item;

#define CAR_CHUNK (16 * 1024)

typedef struct car_stream {
	cairn_server *srv;
	cairn_dagstore *ds;
	cairn_cid_set seen;
	bool dups;
	item *stack;           /* to visit; the top is the last */
	size_t depth, cap;
	uint64_t lo, hi;       /* K_FILE: the bytes wanted, inclusive */
	cairn_arena *arena;
	/* what is being sent: pre[] (a section's length and CID), then block
	 * (the block, or the CAR header at first); one block held at a time */
	uint8_t pre[CAIRN_VARINT_MAX + CAIRN_CID_MAX_BYTES];
	size_t pre_len, pre_off;
	cairn_buf block;
	size_t block_off;
	char *ahead;           /* bytes made before the response began */
	size_t ahead_len, ahead_off;
	uint64_t sections;     /* read so far */
	bool failed;           /* a read failed after bytes went out: end */
	char root[CAIRN_CID_MAX_STRING];
} car_stream;

static void car_stream_free(void *cls)
{
	car_stream *s = cls;

	cairn_cid_set_free(&s->seen);
	cairn_free(s->stack);
	cairn_buf_free(&s->block);
	cairn_arena_free(s->arena);
	cairn_free(s->ahead);
	cairn_free(s);
}

static int push(car_stream *s, const cairn_cid *cid, enum kind kind, uint64_t off)
{
	if (s->depth == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		item *n = cairn_realloc(s->stack, cap * sizeof(*n));

		if (!n)
			return CAIRN_ENOMEM;
		s->stack = n;
		s->cap = cap;
	}
	s->stack[s->depth].cid = *cid;
	s->stack[s->depth].off = off;
	s->stack[s->depth].kind = (uint8_t)kind;
	s->depth++;
	return 0;
}

static int push_link(const cairn_cid *link, void *payload)
{
	car_stream *s = payload;

	if (!s->dups && cairn_cid_set_has(&s->seen, link))
		return 0;
	return push(s, link, K_ALL, 0);
}

/* The children of a UnixFS file node at byte `off` that hold wanted bytes. */
static int push_file(car_stream *s, const pbnode *n, uint64_t off)
{
	uint64_t at = off + (n->d.has_data ? n->d.data_len : 0);

	if (n->d.nblocksizes != n->nlinks) {
		/* not a well-formed file node: every child, as dag-scope=all */
		for (size_t i = 0; i < n->nlinks; i++) {
			const uint8_t *nm;
			size_t nl;
			const cairn_cid *lc = pb_link(n, i, &nm, &nl);
			int rc;

			if (lc && (rc = push(s, lc, K_ALL, 0)))
				return rc;
		}
		return 0;
	}
	for (size_t i = 0; i < n->nlinks; i++) {
		const uint8_t *nm;
		size_t nl;
		const cairn_cid *lc = pb_link(n, i, &nm, &nl);
		uint64_t size = n->d.blocksizes[i];
		int rc;

		/* [at, at + size) meets [lo, hi] */
		if (lc && size && at <= s->hi && at + size > s->lo && (rc = push(s, lc, K_FILE, at)))
			return rc;
		at += size;
	}
	return 0;
}

static int push_hamt(car_stream *s, const pbnode *n)
{
	size_t width = prefix_width(n->d.has_fanout && n->d.fanout >= 2 ? n->d.fanout : 256);

	for (size_t i = 0; i < n->nlinks; i++) {
		const uint8_t *nm;
		size_t nl;
		const cairn_cid *lc = pb_link(n, i, &nm, &nl);
		int rc;

		if (lc && nl == width && (rc = push(s, lc, K_HAMT, 0)))
			return rc;
	}
	return 0;
}

/* After a block is read: what the walk pushes for it. */
static int expand(car_stream *s, const item *it)
{
	pbnode n;
	int rc;

	if (it->kind == K_BLOCK)
		return 0;
	if (it->kind == K_ALL) {
		rc = cairn_block_links(it->cid.codec, s->block.data, s->block.len, push_link, s);
		if (rc == CAIRN_EUNSUPPORTED) {
			char str[CAIRN_CID_MAX_STRING];

			cairn_cid_to_string(str, &it->cid);
			cairn_log(CAIRN_LOG_WARN, "serve: car %s: block %s: codec not walkable, its "
				  "links (if any) left out", s->root, str);
			cairn_error_clear();
			return 0;
		}
		return rc;
	}
	if (it->cid.codec != CAIRN_CODEC_DAG_PB)
		return 0; /* raw leaves; non-UnixFS: the block is the entity */
	if (!s->arena && (rc = cairn_arena_new(&s->arena)))
		return rc;
	cairn_arena_reset(s->arena);
	if (pb_decode(&n, s->arena, &s->block) || !n.unixfs) {
		cairn_error_clear();
		return 0;
	}
	switch (n.d.type) {
	case CAIRN_UNIXFS_FILE:
	case CAIRN_UNIXFS_RAW:
		return it->kind == K_HAMT ? 0 : push_file(s, &n, it->kind == K_FILE ? it->off : 0);
	case CAIRN_UNIXFS_HAMT_SHARD:
		return it->kind == K_FILE ? 0 : push_hamt(s, &n);
	default:
		return 0; /* a plain directory, a symlink: the node is the entity */
	}
}

/* Reads the next block to write as a CAR section (s->pre and s->block) and
 * pushes what follows it. 1 when one was read, 0 at the end, negative on
 * failure. */
static int next_section(car_stream *s)
{
	for (;;) {
		item it;
		size_t base, n;
		int rc;

		if (!s->depth)
			return 0;
		it = s->stack[--s->depth];
		if (!s->dups && cairn_cid_set_has(&s->seen, &it.cid))
			continue;
		cairn_buf_clear(&s->block);
		s->block_off = 0;
		if ((rc = cairn_dagstore_get_trusting_local(s->ds, &s->block, &it.cid, NULL)))
			return rc;
		/* push in reverse so the first link pops first: children go on
		 * the stack in order, then the new part is reversed */
		base = s->depth;
		if ((rc = expand(s, &it)))
			return rc;
		for (size_t i = base, j = s->depth; i + 1 < j; i++, j--) {
			item t = s->stack[i];

			s->stack[i] = s->stack[j - 1];
			s->stack[j - 1] = t;
		}
		/* Remembered only when something may follow it: only the stack
		 * can bring a CID again. So a CAR of one block never makes the
		 * set (a calloc per request, on the gateway's busiest path). */
		if (!s->dups && s->depth && (rc = cairn_cid_set_add(&s->seen, &it.cid, NULL)))
			return rc;
		if (it.cid.mh_code == CAIRN_MH_IDENTITY) {
			/* never written: the data is in the CID (the spec's rule) */
			cairn_buf_clear(&s->block);
			continue;
		}
		n = cairn_varint_encode(s->pre, (uint64_t)it.cid.len + s->block.len);
		memcpy(s->pre + n, it.cid.bytes, it.cid.len);
		s->pre_len = n + it.cid.len;
		s->pre_off = 0;
		s->sections++;
		return 1;
	}
}

/* Fills `buf` with as many sections as fit, so a CAR of small blocks goes
 * out in few chunks and system calls rather than one or two a block. *out
 * is the bytes written; 0, or a negative code (from reading a section). */
static int car_fill(car_stream *s, char *buf, size_t max, size_t *out)
{
	size_t n = 0, k;
	int rc = 0;

	while (n < max) {
		if (s->pre_off == s->pre_len && s->block_off == s->block.len) {
			if ((rc = next_section(s)) <= 0)
				break;
			rc = 0;
		}
		k = s->pre_len - s->pre_off;
		if (k > max - n)
			k = max - n;
		memcpy(buf + n, s->pre + s->pre_off, k);
		s->pre_off += k;
		n += k;
		k = s->block.len - s->block_off;
		if (k > max - n)
			k = max - n;
		if (k)
			memcpy(buf + n, s->block.data + s->block_off, k);
		s->block_off += k;
		n += k;
	}
	*out = n;
	return rc;
}

static void car_cut(car_stream *s)
{
	cairn_log(CAIRN_LOG_ERROR, "serve: car %s: stream cut short: %s", s->root,
		  cairn_error_last());
	s->failed = true;
}

/* libmicrohttpd's reader: the bytes made ahead first, then the stream. */
static ssize_t car_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	car_stream *s = cls;
	size_t n = 0, k;

	(void)pos;
	if (s->ahead_off < s->ahead_len) {
		n = s->ahead_len - s->ahead_off < max ? s->ahead_len - s->ahead_off : max;
		memcpy(buf, s->ahead + s->ahead_off, n);
		s->ahead_off += n;
	}
	if (n < max && !s->failed) {
		if (car_fill(s, buf + n, max - n, &k) < 0)
			car_cut(s);
		n += k;
	}
	if (!n)
		return s->failed ? MHD_CONTENT_READER_END_WITH_ERROR
				 : MHD_CONTENT_READER_END_OF_STREAM;
	serve_metrics_bytes(s->srv, "ipfs", n);
	return (ssize_t)n;
}

/* Makes the CAR's first CAR_CHUNK bytes and its response: from a buffer,
 * with its length, when the whole CAR fits (a block, a small file: most
 * requests), else a stream that sends those bytes first. A root that cannot
 * be read is answered here, before anything went out (404 when no shard
 * holds it); a failure below it, as in the stream, cuts the CAR short.
 * Takes `s`; NULL with the error response queued in *ret. */
static struct MHD_Response *car_response(struct MHD_Connection *c, car_stream *s,
					 enum MHD_Result *ret)
{
	struct MHD_Response *r;
	char *first = cairn_malloc(CAR_CHUNK);
	size_t n = 0;
	int rc = first ? car_fill(s, first, CAR_CHUNK, &n) : CAIRN_ENOMEM;

	if (rc < 0 && !s->sections) {
		if (rc == CAIRN_ENOTFOUND)
			*ret = serve_send_textf(c, MHD_HTTP_NOT_FOUND,
						"block %s: no shard holds it\n", s->root);
		else if (rc == CAIRN_ENOMEM)
			*ret = MHD_NO;
		else
			*ret = serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "block %s: %s\n",
						s->root, cairn_error_last());
		cairn_free(first);
		car_stream_free(s);
		return NULL;
	}
	if (rc < 0)
		car_cut(s);
	if (!rc && n < CAR_CHUNK) {
		serve_metrics_bytes(s->srv, "ipfs", n);
		car_stream_free(s);
		if (!(r = MHD_create_response_from_buffer_with_free_callback(n, first, cairn_free)))
			cairn_free(first);
	} else {
		s->ahead = first;
		s->ahead_len = n;
		/* MHD zeroes a buffer of this size for every response: large
		 * enough to batch sections, small enough not to cost much */
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, CAR_CHUNK, car_reader, s,
						      car_stream_free);
		if (!r)
			car_stream_free(s);
	}
	*ret = MHD_NO;
	return r;
}

/* FNV-1a, for the ETag of a CAR that depends on more than the CID. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* The size of the file the terminal block starts, or false when it is not
 * a byte array (a directory, DAG-CBOR...). */
static bool file_size(uint64_t *out, const cairn_cid *cid, const cairn_buf *b)
{
	cairn_arena *arena;
	pbnode n;
	bool ok = false;

	if (cid->codec == CAIRN_CODEC_RAW) {
		*out = b->len;
		return true;
	}
	if (cid->codec != CAIRN_CODEC_DAG_PB || cairn_arena_new(&arena))
		return false;
	if (!pb_decode(&n, arena, b) && n.unixfs &&
	    (n.d.type == CAIRN_UNIXFS_FILE || n.d.type == CAIRN_UNIXFS_RAW)) {
		uint64_t sum = n.d.has_data ? n.d.data_len : 0;

		for (size_t i = 0; i < n.d.nblocksizes; i++)
			sum += n.d.blocksizes[i];
		*out = n.d.has_filesize ? n.d.filesize : sum;
		ok = true;
	}
	cairn_error_clear();
	cairn_arena_free(arena);
	return ok;
}

static enum MHD_Result serve_car(struct MHD_Connection *c, cairn_server *srv, resolved *rs,
				 const request *rq, const char *url, const char *roots, bool head)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	enum scope scope = rq->scope;
	car_stream *s;
	uint64_t lo = 0, hi = UINT64_MAX, h;
	char root_str[CAIRN_CID_MAX_STRING], etag[CAIRN_CID_MAX_STRING + 48];
	char file[CAIRN_CID_MAX_STRING + 8];
	const char *scope_name[] = {"all", "entity", "block"};
	int rc;

	cairn_cid_to_string(root_str, &rs->root);
	if (rq->has_range) {
		uint64_t size;

		if (!rs->have_block) {
			rc = cairn_dagstore_get_trusting_local(srv->ds, &rs->block, &rs->terminal, NULL);
			if (rc == CAIRN_ENOTFOUND)
				return serve_send_textf(c, MHD_HTTP_NOT_FOUND,
							"block %s: no shard holds it\n", root_str);
			if (rc)
				return serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "block %s: %s\n",
							root_str, cairn_error_last());
			rs->have_block = true;
		}
		if (file_size(&size, &rs->terminal, &rs->block)) {
			if (rq->range.from >= 0 && (uint64_t)rq->range.from >= size && size)
				return serve_send_textf(c, MHD_HTTP_BAD_REQUEST,
							"entity-bytes: starts past the end of the file "
							"(%llu bytes)\n", (unsigned long long)size);
			if (!range_resolve(&lo, &hi, &rq->range, size))
				scope = SCOPE_BLOCK; /* nothing wanted: the root tells why */
		}
	} else if (!rs->have_block && head) {
		/* a missing root is a 404 (a GET finds it so in car_response) */
		rc = cairn_dagstore_has(srv->ds, &rs->terminal);
		if (rc == 0)
			return serve_send_textf(c, MHD_HTTP_NOT_FOUND, "block %s: no shard holds it\n",
						root_str);
		if (rc < 0) {
			cairn_log(CAIRN_LOG_ERROR, "serve: car %s: %s", root_str, cairn_error_last());
			return serve_send_textf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "block %s: %s\n",
						root_str, cairn_error_last());
		}
	}
	/* ETag: "{root}.car" for the whole DAG of a bare CID as cairn writes it
	 * by default; anything else a hash of the path and the variant */
	if (rs->npath == 0 && scope == SCOPE_ALL && !rq->dups && !rq->has_range) {
		snprintf(etag, sizeof(etag), "\"%s.car\"", root_str);
	} else if (rs->npath == 0 && scope == SCOPE_BLOCK && !rq->dups && !rq->has_range) {
		snprintf(etag, sizeof(etag), "\"%s.car.block\"", root_str);
	} else {
		h = fnv(0xcbf29ce484222325ULL, url, strlen(url));
		h = fnv(h, scope_name[scope], strlen(scope_name[scope]));
		h = fnv(h, rq->dups ? "y" : "n", 1);
		h = fnv(h, &lo, sizeof(lo));
		h = fnv(h, &hi, sizeof(hi));
		snprintf(etag, sizeof(etag), "\"%s.car.%s.%016llx\"", root_str, scope_name[scope],
			 (unsigned long long)h);
	}
	if (head) {
		/* no length, and no chunked encoding either: libmicrohttpd 0.9.75
		 * would send the last chunk ("0\r\n\r\n") after a HEAD's headers */
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, serve_empty_reader, NULL, NULL);
		if (r)
			MHD_set_response_options(r, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END);
	} else {
		if (!(s = cairn_calloc(1, sizeof(*s))))
			return MHD_NO;
		s->srv = srv;
		s->ds = srv->ds;
		s->dups = rq->dups;
		s->lo = lo;
		s->hi = hi;
		snprintf(s->root, sizeof(s->root), "%s", root_str);
		rc = cairn_car_v1_header_encode(&s->block, &rs->root, 1);
		/* the terminal at the bottom, the path above it, the root on top */
		if (!rc)
			rc = push(s, &rs->terminal, scope == SCOPE_ALL ? K_ALL
						    : scope == SCOPE_ENTITY ? K_ENTITY : K_BLOCK, 0);
		for (size_t i = rs->npath; i-- > 0 && !rc;)
			rc = push(s, &rs->path[i], K_BLOCK, 0);
		if (rc) {
			car_stream_free(s);
			return MHD_NO;
		}
		if (!(r = car_response(c, s, &ret)))
			return ret;
	}
	if (!r)
		return MHD_NO;
	snprintf(file, sizeof(file), "%s.car", root_str);
	gateway_headers(r, roots, rq->dups ? "application/vnd.ipld.car; version=1; order=dfs; dups=y"
					   : "application/vnd.ipld.car; version=1; order=dfs; dups=n",
			etag, file);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ------------------------------------------------------------- routing */

enum MHD_Result serve_gateway(struct MHD_Connection *c, cairn_server *srv, const char *url,
			      bool head)
{
	const char *cc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cache-Control");
	resolved *rs;
	serve_path sp;
	request rq;
	const char *msg = NULL;
	unsigned status;
	enum MHD_Result ret;
	int rc;

	if ((rc = serve_path_parse(&sp, url)))
		return serve_send_textf(c, MHD_HTTP_BAD_REQUEST, "malformed path: %s\n", cairn_error_last());
	if (!(rs = cairn_calloc(1, sizeof(*rs))))
		return MHD_NO;
	if (sp.cid_len >= CAIRN_CID_MAX_STRING || cairn_cid_parse(&rs->root, sp.cid, sp.cid_len)) {
		ret = serve_send_textf(c, MHD_HTTP_BAD_REQUEST, "malformed CID: %s\n",
				       sp.cid_len >= CAIRN_CID_MAX_STRING ? "too long" : cairn_error_last());
		goto out;
	}
	if ((status = negotiate(&rq, c, &msg))) {
		ret = serve_send_textf(c, status, "%s\n", msg);
		goto out;
	}
	rs->terminal = rs->root;
	/* X-Ipfs-Roots starts with the CID as asked for (v0 stays v0) */
	cairn_buf_append(&rs->roots, sp.cid, sp.cid_len);
	if (resolve(rs, srv, &sp)) {
		if (rs->status == MHD_HTTP_NOT_FOUND && rs->npath <= 1 && cc &&
		    strstr(cc, "only-if-cached"))
			rs->status = MHD_HTTP_PRECONDITION_FAILED;
		ret = serve_send_textf(c, rs->status, "%s\n", rs->msg);
		goto out;
	}
	if (cc && strstr(cc, "only-if-cached") && !rs->have_block &&
	    cairn_dagstore_has(srv->ds, &rs->root) != 1) {
		ret = serve_send_text(c, MHD_HTTP_PRECONDITION_FAILED, "not in this gateway's store\n");
		goto out;
	}
	ret = rq.fmt == FMT_RAW ? serve_raw(c, srv, rs, (const char *)rs->roots.data, head)
				: serve_car(c, srv, rs, &rq, url, (const char *)rs->roots.data, head);
out:
	resolved_free(rs);
	cairn_free(rs);
	return ret;
}
