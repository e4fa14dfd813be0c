/* rpc.c: JSON-RPC 2.0 at /rpc/v0 as Lotus's miner answers it: the request
 * parser, the method table with each method's permission, the methods
 * over the DAG store, and the HTTP side (POST, bodies, worker threads).
 *
 * Wire format: go-jsonrpc's. Params are an array (by-name params are
 * refused), ids numbers or strings, an error the method returns has code 1
 * and its message, a wrong param count -32602 "wrong param count (method
 * 'M'): 2 != 1", an unknown method -32601 "method 'M' not found", a
 * permission missing code 1 "missing permission to invoke 'DagstoreGC'
 * (need 'admin')". Bodies and messages are parsed with the DAG-JSON
 * decoder (strict: UTF-8 checked, duplicate keys refused, nesting bounded
 * at 1024, numbers exact), which reads Lotus's CIDs ({"/": "bafy..."}) as
 * links; the only JSON it refuses that plain JSON allows is a map whose
 * sole key is "/" holding anything but a CID or bytes, which no method
 * takes.
 *
 * Threads: a method that can block (indexing a shard, a transaction, a GC,
 * see `slow` in the table) never runs on an MHD pool thread, which would
 * stall every gateway connection that thread serves: the connection is
 * suspended (MHD_suspend_connection), a detached worker thread runs the
 * call and resumes it with the answer. Quick reads (list, lookup, a block,
 * versions, tokens) run inline, as a gateway GET would. Worker and
 * WebSocket threads together are bounded (SERVE_RPC_MAX_THREADS); past
 * that a blocking call is answered -32000 "busy". Stopping the server
 * waits for the workers, so a shard being indexed finishes first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "rpc_i.h"

/* ------------------------------------------------------------ JSON out */

static void json_str(cairn_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	cairn_buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = (uint8_t)s[i];

		if (ch == '"' || ch == '\\') {
			cairn_buf_putc(b, '\\');
			cairn_buf_putc(b, ch);
		} else if (ch == '\n') {
			cairn_buf_puts(b, "\\n");
		} else if (ch == '\t') {
			cairn_buf_puts(b, "\\t");
		} else if (ch == '\r') {
			cairn_buf_puts(b, "\\r");
		} else if (ch < 0x20 || ch == 0x7f) {
			char esc[7] = "\\u00";

			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			esc[6] = 0;
			cairn_buf_puts(b, esc);
		} else {
			cairn_buf_putc(b, ch);
		}
	}
	cairn_buf_putc(b, '"');
}

static void json_cstr(cairn_buf *b, const char *s)
{
	if (s)
		json_str(b, s, strlen(s));
	else
		cairn_buf_puts(b, "null");
}

static void put_id(cairn_buf *b, const cairn_node *id)
{
	if (!id || cairn_dagjson_encode(b, id))
		cairn_buf_puts(b, "null");
}

void serve__rpc_error(cairn_buf *out, const cairn_node *id, int code, const char *msg)
{
	cairn_buf_puts(out, "{\"jsonrpc\":\"2.0\",\"id\":");
	put_id(out, id);
	cairn_buf_printf(out, ",\"error\":{\"code\":%d,\"message\":", code);
	json_cstr(out, msg);
	cairn_buf_puts(out, "}}");
}

/* ------------------------------------------------------------- parsing */

static bool str_eq(const cairn_node *n, const char *s)
{
	return n && n->kind == CAIRN_KIND_STRING && n->v.bytes.len == strlen(s) &&
	       !memcmp(n->v.bytes.ptr, s, n->v.bytes.len);
}

static const cairn_node empty_list = {.kind = CAIRN_KIND_LIST};

static void check_one(serve_rpc_req *r, const cairn_node *n, cairn_arena *arena)
{
	const cairn_node *m, *params, *id;
	char *name;

	memset(r, 0, sizeof(*r));
	r->params = &empty_list;
	if (n->kind != CAIRN_KIND_MAP) {
		r->err = RPC_INVALID_REQUEST;
		snprintf(r->msg, sizeof(r->msg), "a request must be a JSON object");
		return;
	}
	id = cairn_node_map_get(n, "id");
	if (id && id->kind != CAIRN_KIND_INT && id->kind != CAIRN_KIND_STRING &&
	    id->kind != CAIRN_KIND_NULL) {
		r->err = RPC_INVALID_REQUEST;
		snprintf(r->msg, sizeof(r->msg), "\"id\" must be a number, a string or null");
		return;
	}
	r->id = id;
	if (!str_eq(cairn_node_map_get(n, "jsonrpc"), "2.0")) {
		r->err = RPC_INVALID_REQUEST;
		snprintf(r->msg, sizeof(r->msg), "\"jsonrpc\" must be \"2.0\"");
		return;
	}
	m = cairn_node_map_get(n, "method");
	if (!m || m->kind != CAIRN_KIND_STRING || !m->v.bytes.len || m->v.bytes.len > 128 ||
	    memchr(m->v.bytes.ptr, 0, m->v.bytes.len)) {
		r->err = RPC_INVALID_REQUEST;
		snprintf(r->msg, sizeof(r->msg), "\"method\" must be a non-empty string of at most 128 bytes");
		return;
	}
	if (!(name = cairn_arena_alloc(arena, m->v.bytes.len + 1))) {
		r->err = RPC_INTERNAL_ERROR;
		snprintf(r->msg, sizeof(r->msg), "out of memory");
		return;
	}
	memcpy(name, m->v.bytes.ptr, m->v.bytes.len);
	name[m->v.bytes.len] = 0;
	r->method = name;
	params = cairn_node_map_get(n, "params");
	if (params && params->kind == CAIRN_KIND_LIST) {
		r->params = params;
	} else if (params && params->kind != CAIRN_KIND_NULL) {
		r->err = RPC_INVALID_PARAMS;
		snprintf(r->msg, sizeof(r->msg), "\"params\" must be an array (by-name params are not supported)");
	}
}

int serve__rpc_parse(serve_rpc_req **reqs_out, size_t *n_out, bool *batch_out,
		     cairn_arena *arena, const uint8_t *body, size_t len, char *msg, size_t msg_cap)
{
	cairn_node *root;
	serve_rpc_req *reqs;
	size_t n;
	int rc;

	*reqs_out = NULL;
	*n_out = 0;
	*batch_out = false;
	if ((rc = cairn_dagjson_decode(&root, arena, body, len))) {
		snprintf(msg, msg_cap, "parse error: %s", cairn_error_last());
		return rc == CAIRN_ENOMEM ? RPC_INTERNAL_ERROR : RPC_PARSE_ERROR;
	}
	if (root->kind == CAIRN_KIND_LIST) {
		n = root->v.list.len;
		if (!n || n > SERVE_RPC_MAX_BATCH) {
			snprintf(msg, msg_cap, "a batch holds 1 to %d requests", SERVE_RPC_MAX_BATCH);
			return RPC_INVALID_REQUEST;
		}
		*batch_out = true;
	} else {
		n = 1;
	}
	if (!(reqs = cairn_arena_alloc(arena, n * sizeof(*reqs)))) {
		snprintf(msg, msg_cap, "out of memory");
		return RPC_INTERNAL_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		check_one(&reqs[i], *batch_out ? &root->v.list.items[i] : root, arena);
	*reqs_out = reqs;
	*n_out = n;
	return 0;
}

/* ------------------------------------------------------------ the calls */

/* A method's view of its call. It appends its result (one JSON value) to
 * `result` and returns 0; or returns a negative CAIRN_E* with the message
 * set (answered with code 1), or CALL_EPARAMS with `msg` (-32602), or
 * CALL_STREAMED when it answered through the channel itself. */
typedef struct call {
	cairn_server *srv;
	const serve_rpc_req *req;
	const cairn_node *p;   /* the params list */
	cairn_arena *arena;
	serve_rpc_chan *ch;
	cairn_buf *result;
	const cairn_serve_method *ext;
	char msg[256];
} call;

enum { CALL_EPARAMS = 1, CALL_STREAMED = 2 };

static int bad_param(call *x, size_t i, const char *want)
{
	snprintf(x->msg, sizeof(x->msg), "param %zu of '%s': want %s", i + 1, x->req->method, want);
	return CALL_EPARAMS;
}

/* A string param, NUL-terminated in the arena. */
static int param_str(call *x, size_t i, const char **out)
{
	const cairn_node *n = &x->p->v.list.items[i];
	char *s;

	if (n->kind != CAIRN_KIND_STRING || memchr(n->v.bytes.ptr, 0, n->v.bytes.len))
		return bad_param(x, i, "a string");
	if (!(s = cairn_arena_alloc(x->arena, n->v.bytes.len + 1)))
		return CAIRN_ENOMEM;
	memcpy(s, n->v.bytes.ptr, n->v.bytes.len);
	s[n->v.bytes.len] = 0;
	*out = s;
	return 0;
}

/* A CID param: Lotus's {"/": "bafy..."} or a plain string. */
static int param_cid(call *x, size_t i, cairn_cid *out)
{
	const cairn_node *n = &x->p->v.list.items[i];

	if (n->kind == CAIRN_KIND_LINK) {
		*out = *n->v.link;
		return 0;
	}
	if (n->kind != CAIRN_KIND_STRING)
		return bad_param(x, i, "a CID ({\"/\": \"bafy...\"} or a string)");
	if (cairn_cid_parse(out, (const char *)n->v.bytes.ptr, n->v.bytes.len)) {
		snprintf(x->msg, sizeof(x->msg), "param %zu of '%s': %s", i + 1, x->req->method,
			 cairn_error_last());
		return CALL_EPARAMS;
	}
	return 0;
}

static int param_uint(call *x, size_t i, uint64_t max, uint64_t *out)
{
	const cairn_node *n = &x->p->v.list.items[i];

	if (n->kind != CAIRN_KIND_INT || n->v.i.neg || n->v.i.mag > max) {
		char want[64];

		snprintf(want, sizeof(want), "an integer from 0 to %llu", (unsigned long long)max);
		return bad_param(x, i, want);
	}
	*out = n->v.i.mag;
	return 0;
}

static const char *lotus_state(cairn_shard_state s)
{
	switch (s) {
	case CAIRN_SHARD_NEW: return "ShardStateNew";
	case CAIRN_SHARD_INITIALIZING: return "ShardStateInitializing";
	case CAIRN_SHARD_AVAILABLE: return "ShardStateAvailable";
	case CAIRN_SHARD_SERVING: return "ShardStateServing";
	case CAIRN_SHARD_RECOVERING: return "ShardStateRecovering";
	case CAIRN_SHARD_ERRORED: return "ShardStateErrored";
	}
	return "ShardStateUnknown";
}

/* Lotus's DagstoreShardInfo: {Key, State, Error} (Error "" when none). */
static void put_lotus_info(cairn_buf *b, const cairn_shard_info *in)
{
	cairn_buf_puts(b, "{\"Key\":");
	json_cstr(b, in->key);
	cairn_buf_printf(b, ",\"State\":\"%s\",\"Error\":", lotus_state(in->state));
	json_cstr(b, in->error ? in->error : "");
	cairn_buf_putc(b, '}');
}

/* cairn's: everything `cairn dagstore list-shards --json` prints. */
static void put_info(cairn_buf *b, const cairn_shard_info *in)
{
	cairn_buf_puts(b, "{\"Key\":");
	json_cstr(b, in->key);
	cairn_buf_puts(b, ",\"URL\":");
	json_cstr(b, in->url);
	cairn_buf_printf(b, ",\"State\":\"%s\",\"Error\":", cairn_shard_state_name(in->state));
	json_cstr(b, in->error);
	cairn_buf_printf(b, ",\"Blocks\":%llu,\"DataSize\":%llu,\"IndexSize\":%llu,\"Refs\":%u,"
			 "\"IndexedAt\":%lld}", (unsigned long long)in->blocks,
			 (unsigned long long)in->data_size, (unsigned long long)in->index_size,
			 in->refs, (long long)in->indexed_at);
}

typedef struct list_state {
	cairn_buf *b;
	bool lotus;
	size_t n;
} list_state;

static int list_one(const cairn_shard_info *in, void *payload)
{
	list_state *st = payload;

	if (st->n++)
		cairn_buf_putc(st->b, ',');
	if (st->lotus)
		put_lotus_info(st->b, in);
	else
		put_info(st->b, in);
	return st->b->err;
}

static int list_shards(call *x, bool lotus)
{
	list_state st = {x->result, lotus, 0};
	int rc;

	cairn_buf_putc(x->result, '[');
	if ((rc = cairn_dagstore_list(x->srv->ds, list_one, &st)))
		return rc;
	cairn_buf_putc(x->result, ']');
	return 0;
}

static int m_list_lotus(call *x) { return list_shards(x, true); }
static int m_list(call *x) { return list_shards(x, false); }

static int lookup(call *x, bool lotus)
{
	list_state st = {x->result, lotus, 0};
	cairn_cid cid;
	int rc;

	if ((rc = param_cid(x, 0, &cid)))
		return rc;
	cairn_buf_putc(x->result, '[');
	if ((rc = cairn_dagstore_lookup(x->srv->ds, &cid, list_one, &st)) < 0)
		return rc;
	cairn_buf_putc(x->result, ']');
	return 0;
}

static int m_lookup_lotus(call *x) { return lookup(x, true); }
static int m_lookup(call *x) { return lookup(x, false); }

static int m_info(call *x)
{
	cairn_shard_info in;
	const char *key;
	int rc;

	if ((rc = param_str(x, 0, &key)) || (rc = cairn_dagstore_info(&in, x->srv->ds, key)))
		return rc;
	put_info(x->result, &in);
	cairn_shard_info_clear(&in);
	return 0;
}

/* Lotus registers a piece by its CID and finds the data in its sectors;
 * cairn needs a URL. A key already registered is a no-op, as in Lotus. */
static int m_register_lotus(call *x)
{
	cairn_shard_info in;
	const char *key;
	int rc;

	if ((rc = param_str(x, 0, &key)))
		return rc;
	if ((rc = cairn_dagstore_info(&in, x->srv->ds, key)) == CAIRN_ENOTFOUND)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
				       "shard %s: cairn finds a piece's data by URL, not in sectors: "
				       "register it with Cairn.DagstoreRegisterShard [key, url]", key);
	if (rc)
		return rc;
	cairn_shard_info_clear(&in);
	cairn_buf_puts(x->result, "null");
	return 0;
}

static int m_register(call *x)
{
	cairn_shard_spec spec;
	size_t added = 0;
	bool init = false;
	int rc;

	if ((rc = param_str(x, 0, &spec.key)) || (rc = param_str(x, 1, &spec.url)))
		return rc;
	if (x->p->v.list.len > 2) {
		const cairn_node *n = &x->p->v.list.items[2];

		if (n->kind != CAIRN_KIND_BOOL)
			return bad_param(x, 2, "a boolean (initialize now)");
		init = n->v.b;
	}
	if ((rc = cairn_dagstore_register(x->srv->ds, &spec, 1, &added)))
		return rc;
	if (init && (rc = cairn_dagstore_initialize(x->srv->ds, spec.key)))
		return rc;
	cairn_buf_printf(x->result, "{\"Added\":%s}", added ? "true" : "false");
	return 0;
}

/* [[{"Key": k, "URL": u}, ...]]: registered in one transaction. */
static int m_import(call *x)
{
	const cairn_node *l = &x->p->v.list.items[0];
	cairn_shard_spec *specs;
	size_t added = 0;
	int rc = 0;

	if (l->kind != CAIRN_KIND_LIST || !l->v.list.len)
		return bad_param(x, 0, "a non-empty array of {\"Key\", \"URL\"}");
	if (!(specs = cairn_arena_alloc(x->arena, l->v.list.len * sizeof(*specs))))
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < l->v.list.len; i++) {
		const cairn_node *d = &l->v.list.items[i];
		const cairn_node *k = cairn_node_map_get(d, "Key"), *u = cairn_node_map_get(d, "URL");
		char *ks, *us;

		if (!k || !u || k->kind != CAIRN_KIND_STRING || u->kind != CAIRN_KIND_STRING ||
		    memchr(k->v.bytes.ptr, 0, k->v.bytes.len) || memchr(u->v.bytes.ptr, 0, u->v.bytes.len)) {
			snprintf(x->msg, sizeof(x->msg), "param 1 of '%s': deal %zu needs \"Key\" and \"URL\" strings",
				 x->req->method, i + 1);
			return CALL_EPARAMS;
		}
		ks = cairn_arena_alloc(x->arena, k->v.bytes.len + 1);
		us = cairn_arena_alloc(x->arena, u->v.bytes.len + 1);
		if (!ks || !us)
			return CAIRN_ENOMEM;
		memcpy(ks, k->v.bytes.ptr, k->v.bytes.len);
		ks[k->v.bytes.len] = 0;
		memcpy(us, u->v.bytes.ptr, u->v.bytes.len);
		us[u->v.bytes.len] = 0;
		specs[i].key = ks;
		specs[i].url = us;
	}
	if ((rc = cairn_dagstore_register(x->srv->ds, specs, l->v.list.len, &added)))
		return rc;
	cairn_buf_printf(x->result, "{\"Added\":%zu}", added);
	return 0;
}

static int state_of(cairn_server *srv, const char *key, cairn_shard_state *out)
{
	cairn_shard_info in;
	int rc;

	if ((rc = cairn_dagstore_info(&in, srv->ds, key)))
		return rc;
	*out = in.state;
	cairn_shard_info_clear(&in);
	return 0;
}

static int m_initialize_lotus(call *x)
{
	cairn_shard_state st;
	const char *key;
	int rc;

	if ((rc = param_str(x, 0, &key)) || (rc = state_of(x->srv, key, &st)))
		return rc;
	if (st != CAIRN_SHARD_NEW)
		return cairn_error_set(CAIRN_EINVAL, "cannot initialize shard; expected state "
				       "ShardStateNew, was: %s", lotus_state(st));
	if ((rc = cairn_dagstore_initialize(x->srv->ds, key)))
		return rc;
	cairn_buf_puts(x->result, "null");
	return 0;
}

static int m_initialize(call *x)
{
	const char *key;
	int rc;

	if ((rc = param_str(x, 0, &key)) || (rc = cairn_dagstore_initialize(x->srv->ds, key)))
		return rc;
	return m_info(x);
}

static int m_recover_lotus(call *x)
{
	cairn_shard_state st;
	const char *key;
	int rc;

	if ((rc = param_str(x, 0, &key)) || (rc = state_of(x->srv, key, &st)))
		return rc;
	if (st != CAIRN_SHARD_ERRORED)
		return cairn_error_set(CAIRN_EINVAL, "cannot recover shard; expected state "
				       "ShardStateErrored, was: %s", lotus_state(st));
	if ((rc = cairn_dagstore_recover(x->srv->ds, key)))
		return rc;
	cairn_buf_puts(x->result, "null");
	return 0;
}

static int m_recover(call *x)
{
	const char *key;
	int rc;

	if ((rc = param_str(x, 0, &key)) || (rc = cairn_dagstore_recover(x->srv->ds, key)))
		return rc;
	cairn_buf_puts(x->result, "null");
	return 0;
}

static int m_destroy(call *x)
{
	const char *key;
	int rc;

	if ((rc = param_str(x, 0, &key)) || (rc = cairn_dagstore_destroy(x->srv->ds, key)))
		return rc;
	cairn_buf_puts(x->result, "null");
	return 0;
}

/* Lotus answers []DagstoreShardResult, one per shard whose transient it
 * removed; cairn's GC counts transients without naming their shards, so
 * the list is empty (see Cairn.DagstoreGC for the counts). */
static int m_gc_lotus(call *x)
{
	cairn_dagstore_gc_stats gs;
	int rc;

	if ((rc = cairn_dagstore_gc(x->srv->ds, &gs)))
		return rc;
	cairn_buf_puts(x->result, "[]");
	return 0;
}

static int m_gc(call *x)
{
	cairn_dagstore_gc_stats gs;
	int rc;

	if ((rc = cairn_dagstore_gc(x->srv->ds, &gs)))
		return rc;
	cairn_buf_printf(x->result, "{\"TransientsRemoved\":%llu,\"BytesFreed\":%llu,"
			 "\"OrphansRemoved\":%llu}", (unsigned long long)gs.transients_removed,
			 (unsigned long long)gs.bytes_freed, (unsigned long long)gs.orphans_removed);
	return 0;
}

/* {"Key": shard, "Data": base64 with padding, as Go encodes []byte}. */
static int m_get_block(call *x)
{
	char key[CAIRN_SHARD_KEY_MAX];
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid cid;
	size_t start;
	int rc;

	if ((rc = param_cid(x, 0, &cid)))
		return rc;
	if ((rc = cairn_dagstore_get(x->srv->ds, &b, &cid, key))) {
		cairn_buf_free(&b);
		return rc;
	}
	cairn_buf_puts(x->result, "{\"Key\":");
	json_cstr(x->result, key);
	cairn_buf_puts(x->result, ",\"Data\":\"");
	start = x->result->len;
	cairn_base_encode(x->result, CAIRN_BASE64, b.data, b.len);
	while ((x->result->len - start) % 4)
		cairn_buf_putc(x->result, '=');
	cairn_buf_puts(x->result, "\"}");
	cairn_buf_free(&b);
	return 0;
}

/* Cairn.DagstoreInitializeAll [concurrency]: the library's run (the same
 * as `cairn dagstore initialize-all` without a daemon), answered when it
 * ends with the counts and each failure. */
typedef struct all_state {
	cairn_buf fails;
	size_t nfails;
	pthread_mutex_t mu;
} all_state;

static void on_shard(const cairn_dagstore_progress *p, void *payload)
{
	all_state *st = payload;

	if (!p->result || !p->key)
		return;
	/* the library never calls two at once; the lock is for the reader */
	pthread_mutex_lock(&st->mu);
	if (st->nfails++)
		cairn_buf_putc(&st->fails, ',');
	cairn_buf_puts(&st->fails, "{\"Key\":");
	json_cstr(&st->fails, p->key);
	cairn_buf_puts(&st->fails, ",\"Error\":");
	json_cstr(&st->fails, cairn_error_last());
	cairn_buf_putc(&st->fails, '}');
	pthread_mutex_unlock(&st->mu);
}

static int m_initialize_all(call *x)
{
	cairn_dagstore_progress p;
	all_state st = {CAIRN_BUF_INIT, 0, PTHREAD_MUTEX_INITIALIZER};
	uint64_t conc = 0;
	int rc;

	if (x->p->v.list.len && (rc = param_uint(x, 0, 64, &conc)))
		return rc;
	rc = cairn_dagstore_initialize_all(x->srv->ds, (unsigned)conc, on_shard, &st, &p);
	if (!rc)
		rc = st.fails.err;
	if (!rc) {
		cairn_buf_printf(x->result, "{\"Total\":%llu,\"Done\":%llu,\"Failed\":%llu,"
				 "\"Blocks\":%llu,\"Failures\":[", (unsigned long long)p.total,
				 (unsigned long long)p.done, (unsigned long long)p.failed,
				 (unsigned long long)p.blocks);
		if (st.fails.len)
			cairn_buf_append(x->result, st.fails.data, st.fails.len);
		cairn_buf_puts(x->result, "]}");
	}
	cairn_buf_free(&st.fails);
	return rc;
}

/* Filecoin.DagstoreInitializeAll [{MaxConcurrency, IncludeSealed}]: a
 * channel of DagstoreInitializeAllEvent, two per shard ("start" when its
 * indexing begins, "end" with Success and Error), Current counting from 1
 * in the order shards were listed, as Lotus's storminer.go sends them.
 * IncludeSealed is accepted and means nothing here (no sealed sectors).
 * MaxConcurrency 0 is one per core (Lotus: unlimited). A shard is started
 * only while the peer is there and the server is not stopping. */
typedef struct stream {
	call *x;
	uint64_t chan_id;
	char **keys;
	size_t total;
	size_t next;
	pthread_mutex_t mu;
} stream;

static void send_event(stream *s, const char *key, size_t current, bool end, int rc,
		       const char *err)
{
	cairn_buf b = CAIRN_BUF_INIT;

	cairn_buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"xrpc.ch.val\",\"params\":[%llu,"
			 "{\"Key\":", (unsigned long long)s->chan_id);
	json_cstr(&b, key);
	cairn_buf_printf(&b, ",\"Event\":\"%s\",\"Success\":%s,\"Error\":", end ? "end" : "start",
			 end && !rc ? "true" : "false");
	json_cstr(&b, end && rc ? err : "");
	cairn_buf_printf(&b, ",\"Total\":%zu,\"Current\":%zu}]}", s->total, current);
	if (!b.err)
		s->x->ch->send(s->x->ch, b.data, b.len);
	cairn_buf_free(&b);
}

static bool stopping(cairn_server *srv)
{
	bool s;

	pthread_mutex_lock(&srv->rpc->mu);
	s = srv->rpc->stopping;
	pthread_mutex_unlock(&srv->rpc->mu);
	return s;
}

static void *stream_worker(void *arg)
{
	stream *s = arg;

	for (;;) {
		size_t i;
		cairn_shard_state st;
		int rc;

		pthread_mutex_lock(&s->mu);
		i = s->next < s->total ? s->next++ : s->total;
		pthread_mutex_unlock(&s->mu);
		if (i == s->total || !s->x->ch->alive(s->x->ch) || stopping(s->x->srv))
			break;
		send_event(s, s->keys[i], i + 1, false, 0, NULL);
		/* Another client may have indexed it meanwhile: initialize
		 * would rebuild an Available shard, which is not asked here. */
		rc = state_of(s->x->srv, s->keys[i], &st);
		if (!rc && st != CAIRN_SHARD_NEW)
			rc = cairn_error_set(CAIRN_EINVAL, "cannot initialize shard; expected state "
					     "ShardStateNew, was: %s", lotus_state(st));
		if (!rc)
			rc = cairn_dagstore_initialize(s->x->srv->ds, s->keys[i]);
		send_event(s, s->keys[i], i + 1, true, rc, cairn_error_last());
	}
	return NULL;
}

typedef struct key_list {
	char **keys;
	size_t n, cap;
	int err;
} key_list;

static int collect_new(const cairn_shard_info *in, void *payload)
{
	key_list *l = payload;

	if (in->state != CAIRN_SHARD_NEW)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		char **k = cairn_realloc(l->keys, ncap * sizeof(*k));

		if (!k)
			return CAIRN_ENOMEM;
		l->keys = k;
		l->cap = ncap;
	}
	if (!(l->keys[l->n] = cairn_strndup(in->key, strlen(in->key))))
		return CAIRN_ENOMEM;
	l->n++;
	return 0;
}

static int m_initialize_all_lotus(call *x)
{
	const cairn_node *params = &x->p->v.list.items[0], *mc;
	key_list l = {0};
	stream s;
	pthread_t tids[64];
	unsigned nthreads = 0, conc = 0;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	if (params->kind != CAIRN_KIND_MAP)
		return bad_param(x, 0, "{\"MaxConcurrency\": n, \"IncludeSealed\": bool}");
	if ((mc = cairn_node_map_get(params, "MaxConcurrency"))) {
		if (mc->kind != CAIRN_KIND_INT || mc->v.i.neg)
			return bad_param(x, 0, "a MaxConcurrency of 0 or more");
		conc = mc->v.i.mag > 64 ? 64 : (unsigned)mc->v.i.mag;
	}
	if (!conc) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);

		conc = cores > 0 ? (cores > 64 ? 64 : (unsigned)cores) : 1;
	}
	if ((rc = cairn_dagstore_list(x->srv->ds, collect_new, &l)))
		goto out;
	memset(&s, 0, sizeof(s));
	s.x = x;
	s.keys = l.keys;
	s.total = l.n;
	s.chan_id = atomic_fetch_add(&x->ch->next_id, 1);
	pthread_mutex_init(&s.mu, NULL);
	/* The answer is the channel's id, before any value on it. */
	cairn_buf_puts(&b, "{\"jsonrpc\":\"2.0\",\"id\":");
	put_id(&b, x->req->id);
	cairn_buf_printf(&b, ",\"result\":%llu}", (unsigned long long)s.chan_id);
	if ((rc = b.err))
		goto out;
	x->ch->send(x->ch, b.data, b.len);
	if (conc > l.n)
		conc = (unsigned)l.n;
	/* This thread is a worker already; it runs one share itself. */
	for (unsigned i = 1; i < conc; i++)
		if (!pthread_create(&tids[nthreads], NULL, stream_worker, &s))
			nthreads++;
	stream_worker(&s);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&s.mu);
	cairn_buf_clear(&b);
	cairn_buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"xrpc.ch.close\",\"params\":[%llu]}",
			 (unsigned long long)s.chan_id);
	if (!b.err)
		x->ch->send(x->ch, b.data, b.len);
	rc = CALL_STREAMED;
out:
	for (size_t i = 0; i < l.n; i++)
		cairn_free(l.keys[i]);
	cairn_free(l.keys);
	cairn_buf_free(&b);
	return rc;
}

/* ------------------------------------------------------- auth and misc */

static int m_version(call *x)
{
	/* APIVersion: Lotus's MinerAPIVersion0, 1.5.0 (0x010500), so
	 * clients that check it accept cairn; BlockDelay: mainnet's 30 s. */
	cairn_buf_printf(x->result, "{\"Version\":\"cairn/%s\",\"APIVersion\":%u,\"BlockDelay\":30}",
			 CAIRN_VERSION, 0x010500u);
	return 0;
}

static int m_auth_verify(call *x)
{
	const char *token;
	unsigned perms;
	bool first = true;
	int rc;

	if ((rc = param_str(x, 0, &token)))
		return rc;
	if ((rc = cairn_serve_token_verify(&perms, x->srv->rpc->secret, token, strlen(token),
					   (int64_t)time(NULL))))
		return rc;
	cairn_buf_putc(x->result, '[');
	for (unsigned i = 0; i < 4; i++) {
		if (perms & (1u << i)) {
			cairn_buf_printf(x->result, "%s\"%s\"", first ? "" : ",",
					 cairn_perm_name((cairn_perm)(1u << i)));
			first = false;
		}
	}
	cairn_buf_putc(x->result, ']');
	return 0;
}

/* AuthNew [["read", "write", ...]] -> the token as Go's []byte: base64 of
 * its text (Lotus's CLI prints string(token)). */
static int m_auth_new(call *x)
{
	const cairn_node *l = &x->p->v.list.items[0];
	unsigned perms = 0;
	char *token;
	size_t start;
	int rc;

	if (l->kind != CAIRN_KIND_LIST || !l->v.list.len)
		return bad_param(x, 0, "a non-empty array of permissions");
	for (size_t i = 0; i < l->v.list.len; i++) {
		const cairn_node *n = &l->v.list.items[i];
		unsigned j;

		for (j = 0; j < 4; j++)
			if (str_eq(n, cairn_perm_name((cairn_perm)(1u << j))))
				break;
		if (j == 4)
			return bad_param(x, 0, "permissions among read, write, sign, admin");
		perms |= 1u << j;
	}
	if ((rc = cairn_serve_token_new(&token, x->srv->rpc->secret, perms, 0)))
		return rc;
	cairn_buf_putc(x->result, '"');
	start = x->result->len;
	cairn_base_encode(x->result, CAIRN_BASE64, (const uint8_t *)token, strlen(token));
	while ((x->result->len - start) % 4)
		cairn_buf_putc(x->result, '=');
	cairn_buf_putc(x->result, '"');
	cairn_free(token);
	return 0;
}

/* ---------------------------------------------------------- the table */

typedef struct method {
	const char *name;
	cairn_perm perm;
	unsigned min_params, max_params;
	bool slow;      /* may block: a worker thread */
	bool chan;      /* returns a channel: WebSocket only */
	int (*fn)(call *x);
	const cairn_serve_method *ext; /* the caller's method m_external runs */
} rpc_method;

/* Lotus's perm: tags (api/api_storage.go, api/api_common.go); cairn's own
 * follow the same rule: changing the store is write, registering or
 * destroying shards and GC admin, as Lotus's register and GC are. */
static const rpc_method methods[] = {
	{"Filecoin.AuthNew", CAIRN_PERM_ADMIN, 1, 1, false, false, m_auth_new},
	{"Filecoin.AuthVerify", CAIRN_PERM_READ, 1, 1, false, false, m_auth_verify},
	{"Filecoin.DagstoreGC", CAIRN_PERM_ADMIN, 0, 0, true, false, m_gc_lotus},
	{"Filecoin.DagstoreInitializeAll", CAIRN_PERM_WRITE, 1, 1, true, true, m_initialize_all_lotus},
	{"Filecoin.DagstoreInitializeShard", CAIRN_PERM_WRITE, 1, 1, true, false, m_initialize_lotus},
	{"Filecoin.DagstoreListShards", CAIRN_PERM_READ, 0, 0, false, false, m_list_lotus},
	{"Filecoin.DagstoreLookupPieces", CAIRN_PERM_ADMIN, 1, 1, false, false, m_lookup_lotus},
	{"Filecoin.DagstoreRecoverShard", CAIRN_PERM_WRITE, 1, 1, true, false, m_recover_lotus},
	{"Filecoin.DagstoreRegisterShard", CAIRN_PERM_ADMIN, 1, 1, false, false, m_register_lotus},
	{"Filecoin.Version", CAIRN_PERM_READ, 0, 0, false, false, m_version},
	{"Cairn.DagstoreDestroyShard", CAIRN_PERM_ADMIN, 1, 1, true, false, m_destroy},
	{"Cairn.DagstoreGC", CAIRN_PERM_ADMIN, 0, 0, true, false, m_gc},
	{"Cairn.DagstoreGetBlock", CAIRN_PERM_READ, 1, 1, false, false, m_get_block},
	{"Cairn.DagstoreImportDeals", CAIRN_PERM_ADMIN, 1, 1, true, false, m_import},
	{"Cairn.DagstoreInitializeAll", CAIRN_PERM_WRITE, 0, 1, true, false, m_initialize_all},
	{"Cairn.DagstoreInitializeShard", CAIRN_PERM_WRITE, 1, 1, true, false, m_initialize},
	{"Cairn.DagstoreListShards", CAIRN_PERM_READ, 0, 0, false, false, m_list},
	{"Cairn.DagstoreLookupPieces", CAIRN_PERM_ADMIN, 1, 1, false, false, m_lookup},
	{"Cairn.DagstoreRecoverShard", CAIRN_PERM_WRITE, 1, 1, true, false, m_recover},
	{"Cairn.DagstoreRegisterShard", CAIRN_PERM_ADMIN, 2, 3, true, false, m_register},
	{"Cairn.DagstoreShardInfo", CAIRN_PERM_READ, 1, 1, false, false, m_info},
};

/* A method of the caller's (cairn_serve_options.methods). */
static int m_external(call *x)
{
	return x->ext->fn(x->result, x->p, x->ext->payload);
}

static const rpc_method *find_method(const cairn_server *srv, const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(methods[i].name, name))
			return &methods[i];
	for (size_t i = 0; i < srv->rpc->n_ext; i++)
		if (!strcmp(srv->rpc->ext[i].name, name))
			return &srv->rpc->ext[i];
	return NULL;
}

bool serve__rpc_slow(const cairn_server *srv, const serve_rpc_req *req)
{
	const rpc_method *m = req->err ? NULL : find_method(srv, req->method);

	return m && m->slow;
}

void serve__rpc_exec(cairn_buf *out, cairn_server *srv, unsigned perms, const serve_rpc_req *req,
		     cairn_arena *arena, serve_rpc_chan *ch)
{
	const rpc_method *m;
	const char *dot;
	cairn_buf result = CAIRN_BUF_INIT;
	call x;
	char msg[300];
	size_t np;
	int rc;

	if (req->err) {
		serve__rpc_error(out, req->id, req->err, req->msg);
		return;
	}
	atomic_fetch_add(&srv->rpc->calls, 1);
	if (!(m = find_method(srv, req->method))) {
		snprintf(msg, sizeof(msg), "method '%s' not found", req->method);
		if (req->id)
			serve__rpc_error(out, req->id, RPC_METHOD_NOT_FOUND, msg);
		return;
	}
	dot = strchr(m->name, '.');
	cairn_log(CAIRN_LOG_INFO, "rpc: %s (perms %u)", m->name, perms);
	if (!(perms & m->perm)) {
		snprintf(msg, sizeof(msg), "missing permission to invoke '%s' (need '%s')",
			 dot ? dot + 1 : m->name, cairn_perm_name(m->perm));
		if (req->id)
			serve__rpc_error(out, req->id, RPC_METHOD_ERROR, msg);
		return;
	}
	np = req->params->v.list.len;
	if (np < m->min_params || np > m->max_params) {
		snprintf(msg, sizeof(msg), "wrong param count (method '%s'): %zu != %u", m->name, np,
			 np < m->min_params ? m->min_params : m->max_params);
		if (req->id)
			serve__rpc_error(out, req->id, RPC_INVALID_PARAMS, msg);
		return;
	}
	if (m->chan && (!ch || !req->id)) {
		snprintf(msg, sizeof(msg), "method '%s' not supported in this mode (no out channel "
			 "support): it streams its results over a WebSocket (GET /rpc/v0 with "
			 "Upgrade: websocket)", m->name);
		if (req->id)
			serve__rpc_error(out, req->id, RPC_METHOD_NOT_FOUND, msg);
		return;
	}
	memset(&x, 0, sizeof(x));
	x.srv = srv;
	x.req = req;
	x.p = req->params;
	x.arena = arena;
	x.ch = ch;
	x.ext = m->ext;
	x.result = &result;
	cairn_error_clear();
	rc = m->fn(&x);
	if (!rc && result.err)
		rc = result.err;
	if (rc == CALL_STREAMED || !req->id) {
		/* answered already, or a notification: nothing more */
	} else if (rc == CALL_EPARAMS) {
		serve__rpc_error(out, req->id, RPC_INVALID_PARAMS, x.msg);
	} else if (rc) {
		const char *why = rc == CAIRN_ENOMEM ? "out of memory" : cairn_error_last();

		/* go-jsonrpc's code 1 for an error the method returned, and
		 * cairn's code, so a cairn client can tell "not found". */
		cairn_buf_puts(out, "{\"jsonrpc\":\"2.0\",\"id\":");
		put_id(out, req->id);
		cairn_buf_printf(out, ",\"error\":{\"code\":%d,\"message\":", RPC_METHOD_ERROR);
		json_cstr(out, why && *why ? why : cairn_error_name(rc));
		cairn_buf_printf(out, ",\"data\":{\"cairn\":\"%s\"}}}", cairn_error_name(rc));
	} else {
		cairn_buf_puts(out, "{\"jsonrpc\":\"2.0\",\"id\":");
		put_id(out, req->id);
		cairn_buf_puts(out, ",\"result\":");
		cairn_buf_append(out, result.data, result.len);
		cairn_buf_putc(out, '}');
	}
	cairn_buf_free(&result);
}

/* ---------------------------------------------------------------- auth */

int serve__rpc_auth(unsigned *perms_out, cairn_server *srv, const char *auth,
		    const char *query_token)
{
	const char *token;

	*perms_out = CAIRN_PERM_READ;
	if (auth && *auth) {
		if (strncmp(auth, "Bearer ", 7))
			return cairn_error_set(CAIRN_ECORRUPT, "the Authorization header must be "
					       "\"Bearer <token>\"");
		token = auth + 7;
	} else if (query_token && *query_token) {
		token = query_token;
	} else {
		return 0;
	}
	return cairn_serve_token_verify(perms_out, srv->rpc->secret, token, strlen(token),
					(int64_t)time(NULL));
}

/* ------------------------------------------------------------ threads */

int serve__rpc_init(cairn_server *srv, const cairn_serve_options *o)
{
	serve_rpc_state *r = cairn_calloc(1, sizeof(*r));

	if (!r)
		return CAIRN_ENOMEM;
	if (o->jwt_secret) {
		memcpy(r->secret, o->jwt_secret, sizeof(r->secret));
		r->enabled = true;
	}
	for (const cairn_serve_method *e = o->methods; e && e->name; e++)
		r->n_ext++;
	if (r->n_ext && !(r->ext = cairn_calloc(r->n_ext, sizeof(*r->ext)))) {
		cairn_free(r);
		return CAIRN_ENOMEM;
	}
	for (size_t i = 0; i < r->n_ext; i++)
		r->ext[i] = (rpc_method){o->methods[i].name, o->methods[i].perm,
					 o->methods[i].min_params, o->methods[i].max_params,
					 true, false, m_external, &o->methods[i]};
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->idle, NULL);
	srv->rpc = r;
	return 0;
}

void serve__rpc_free(cairn_server *srv)
{
	if (!srv->rpc)
		return;
	pthread_mutex_destroy(&srv->rpc->mu);
	pthread_cond_destroy(&srv->rpc->idle);
	memset(srv->rpc->secret, 0, sizeof(srv->rpc->secret));
	cairn_free(srv->rpc->ext);
	cairn_free(srv->rpc);
	srv->rpc = NULL;
}

typedef struct spawn_arg {
	cairn_server *srv;
	void *(*fn)(void *);
	void *arg;
} spawn_arg;

static void *spawned(void *p)
{
	spawn_arg a = *(spawn_arg *)p;

	cairn_free(p);
	a.fn(a.arg);
	serve__rpc_thread_done(a.srv);
	return NULL;
}

int serve__rpc_spawn(cairn_server *srv, void *(*fn)(void *), void *arg)
{
	serve_rpc_state *r = srv->rpc;
	spawn_arg *a;
	pthread_attr_t attr;
	pthread_t t;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	if (r->stopping || r->threads >= SERVE_RPC_MAX_THREADS)
		rc = cairn_error_set(CAIRN_EEXISTS, "server busy: %u RPC threads at work, or stopping",
				     r->threads);
	else
		r->threads++;
	pthread_mutex_unlock(&r->mu);
	if (rc)
		return rc;
	if (!(a = cairn_malloc(sizeof(*a)))) {
		serve__rpc_thread_done(srv);
		return CAIRN_ENOMEM;
	}
	a->srv = srv;
	a->fn = fn;
	a->arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, spawned, a)) {
		cairn_free(a);
		serve__rpc_thread_done(srv);
		rc = cairn_error_set(CAIRN_EEXISTS, "server busy: cannot start a thread");
	}
	pthread_attr_destroy(&attr);
	return rc;
}

void serve__rpc_thread_done(cairn_server *srv)
{
	pthread_mutex_lock(&srv->rpc->mu);
	if (--srv->rpc->threads == 0)
		pthread_cond_broadcast(&srv->rpc->idle);
	pthread_mutex_unlock(&srv->rpc->mu);
}

/* ----------------------------------------------------------------- HTTP */

#define REQ_MAGIC SERVE_REQ_RPC

/* One POST /rpc/v0 across MHD's calls (in con_cls). */
typedef struct http_req {
	unsigned magic;
	cairn_server *srv;
	struct MHD_Connection *c;
	unsigned perms;
	cairn_buf body;
	bool too_big;
	bool answered;    /* a worker filled `out` */
	cairn_buf out;
} http_req;

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const cairn_buf *b)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (b->err)
		return serve_send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	r = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, int code,
				  const char *msg)
{
	cairn_buf b = CAIRN_BUF_INIT;
	enum MHD_Result ret;

	serve__rpc_error(&b, NULL, code, msg);
	ret = send_json(c, status, &b);
	cairn_buf_free(&b);
	return ret;
}

/* Runs every request of a body into `out`. */
static void run_body(cairn_buf *out, cairn_server *srv, unsigned perms, const cairn_buf *body)
{
	cairn_arena *arena;
	serve_rpc_req *reqs;
	size_t n, answered = 0;
	bool batch;
	char msg[300];
	int code;

	if (cairn_arena_new(&arena)) {
		serve__rpc_error(out, NULL, RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	code = serve__rpc_parse(&reqs, &n, &batch, arena, body->data, body->len, msg, sizeof(msg));
	if (code) {
		serve__rpc_error(out, NULL, code, msg);
		cairn_arena_free(arena);
		return;
	}
	if (batch)
		cairn_buf_putc(out, '[');
	for (size_t i = 0; i < n; i++) {
		cairn_buf one = CAIRN_BUF_INIT;

		serve__rpc_exec(&one, srv, perms, &reqs[i], arena, NULL);
		if (one.len) { /* nothing for a notification */
			if (answered++)
				cairn_buf_putc(out, ',');
			cairn_buf_append(out, one.data, one.len);
		}
		if (one.err)
			out->err = one.err;
		cairn_buf_free(&one);
	}
	if (batch)
		cairn_buf_putc(out, ']');
	cairn_arena_free(arena);
}

static bool body_slow(const cairn_server *srv, const cairn_buf *body)
{
	cairn_arena *arena;
	serve_rpc_req *reqs;
	size_t n;
	bool batch, slow = false;
	char msg[8];

	if (cairn_arena_new(&arena))
		return false;
	if (!serve__rpc_parse(&reqs, &n, &batch, arena, body->data, body->len, msg, sizeof(msg)))
		for (size_t i = 0; i < n && !slow; i++)
			slow = serve__rpc_slow(srv, &reqs[i]);
	cairn_arena_free(arena);
	return slow;
}

static void *http_worker(void *arg)
{
	http_req *q = arg;

	run_body(&q->out, q->srv, q->perms, &q->body);
	q->answered = true;
	MHD_resume_connection(q->c);
	return NULL;
}

static void req_free(http_req *q)
{
	cairn_buf_free(&q->body);
	cairn_buf_free(&q->out);
	cairn_free(q);
}

void serve_rpc_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	http_req *q = con_cls ? *con_cls : NULL;

	(void)cls;
	(void)c;
	(void)toe;
	/* the tag first: con_cls may hold serve.c's marker, a lone unsigned */
	if (q && *(const unsigned *)q == REQ_MAGIC) {
		req_free(q);
		*con_cls = NULL;
	}
}

enum MHD_Result serve_rpc(struct MHD_Connection *c, cairn_server *srv, const char *method,
			  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	http_req *q = *con_cls;

	if (!q) {
		const char *cl;
		unsigned perms;

		if (!srv->rpc || !srv->rpc->enabled)
			return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, RPC_INTERNAL_ERROR,
					  "JSON-RPC is off on this server (no token secret)");
		if (!strcmp(method, MHD_HTTP_METHOD_GET))
			return serve__ws_upgrade(c, srv, con_cls);
		if (strcmp(method, MHD_HTTP_METHOD_POST)) {
			struct MHD_Response *r;
			enum MHD_Result ret;
			static const char msg[] = "/rpc/v0 takes POST (JSON-RPC 2.0) or a WebSocket upgrade\n";

			r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
							    MHD_RESPMEM_PERSISTENT);
			if (!r)
				return MHD_NO;
			MHD_add_response_header(r, "Allow", "POST, GET");
			MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
			ret = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
			MHD_destroy_response(r);
			return ret;
		}
		/* The token before the body, as Lotus's auth handler does: a bad
		 * one is 401 and the body is never read. */
		if (serve__rpc_auth(&perms, srv,
				    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
				    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"))) {
			char msg[300];

			snprintf(msg, sizeof(msg), "JWT Verification failed: %s", cairn_error_last());
			cairn_log(CAIRN_LOG_INFO, "rpc: 401: %s", msg);
			return send_error(c, MHD_HTTP_UNAUTHORIZED, RPC_UNAUTHORIZED, msg);
		}
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > SERVE_RPC_MAX_BODY)
			return send_error(c, 413, RPC_INVALID_REQUEST,
					  "request body over 1 MiB");
		if (!(q = cairn_calloc(1, sizeof(*q))))
			return MHD_NO;
		q->magic = REQ_MAGIC;
		q->srv = srv;
		q->c = c;
		q->perms = perms;
		*con_cls = q;
		return MHD_YES;
	}
	if (q->magic != REQ_MAGIC)
		return MHD_NO;
	if (*upload_data_size) {
		/* A chunked body with no length: read on and drop past the
		 * bound, then answer 413 once it is all in. */
		if (!q->too_big && q->body.len + *upload_data_size > SERVE_RPC_MAX_BODY) {
			q->too_big = true;
			cairn_buf_free(&q->body);
		}
		if (!q->too_big && cairn_buf_append(&q->body, upload_data, *upload_data_size))
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (q->answered)
		return send_json(c, MHD_HTTP_OK, &q->out);
	if (q->too_big)
		return send_error(c, 413, RPC_INVALID_REQUEST,
				  "request body over 1 MiB");
	if (body_slow(srv, &q->body)) {
		MHD_suspend_connection(c);
		if (serve__rpc_spawn(srv, http_worker, q)) {
			MHD_resume_connection(c);
			cairn_buf_clear(&q->out);
			serve__rpc_error(&q->out, NULL, RPC_SERVER_BUSY, cairn_error_last());
			q->answered = true;
		}
		return MHD_YES;
	}
	run_body(&q->out, srv, q->perms, &q->body);
	return send_json(c, MHD_HTTP_OK, &q->out);
}

/* --------------------------------------------------------------- stop */

void serve__rpc_stop(cairn_server *srv)
{
	serve_rpc_state *r = srv->rpc;

	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_mutex_unlock(&r->mu);
	serve__ws_cut_all(srv);
	pthread_mutex_lock(&r->mu);
	while (r->threads)
		pthread_cond_wait(&r->idle, &r->mu);
	pthread_mutex_unlock(&r->mu);
}
