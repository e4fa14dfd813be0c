/* ws.c: JSON-RPC over a WebSocket (RFC 6455) at GET /rpc/v0, as
 * go-jsonrpc speaks it: the handshake through MHD's upgrade, the framer,
 * and one reader thread per connection.
 *
 * Frames: a client's frames must be masked; reserved bits, unknown
 * opcodes, fragmented or oversized (over 125 bytes) control frames and
 * lengths not in their shortest form are protocol errors (close 1002). A
 * frame's payload and a whole message, fragments joined, are bounded by
 * SERVE_RPC_MAX_BODY (close 1009). Text messages are requests; binary ones
 * are refused (1003). Pings are answered with pongs.
 *
 * Threads: MHD hands the upgraded socket to serve's upgrade callback on a
 * pool thread, which must not block; a reader thread (counted with the
 * workers in SERVE_RPC_MAX_THREADS, at most SERVE_WS_MAX_CONNS of them)
 * owns the socket from then on. Quick requests run on it; blocking ones
 * and channel methods on worker threads of their own, so a long
 * DagstoreInitializeAll streams while the same socket keeps answering.
 * Writers share one lock per connection; the socket has a 30 s send
 * timeout, so a peer that stops reading fails the writes instead of
 * holding the lock. The connection is freed, and its socket handed back to
 * MHD to close, when the reader and every job on it are done.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "rpc_i.h"

/* An idle connection (no frame in, no job running) is closed after this. */
#define WS_IDLE_S 300

/* -------------------------------------------------------------- framing */

int serve__ws_next(serve_ws_reader *r, uint8_t *p, size_t n, size_t *used,
		   const uint8_t **payload, size_t *plen)
{
	uint64_t max = r->max ? r->max : SERVE_RPC_MAX_BODY, len;
	size_t hl = 2;
	unsigned op;
	bool fin;
	uint8_t *mask, *data;

	*used = 0;
	*payload = NULL;
	*plen = 0;
	if (n < 2)
		return 0;
	fin = p[0] & 0x80;
	op = p[0] & 0x0f;
	if (p[0] & 0x70) {
		r->close_code = 1002;
		return cairn_error_set(CAIRN_ECORRUPT, "websocket: reserved bits set");
	}
	if (!(p[1] & 0x80)) {
		r->close_code = 1002;
		return cairn_error_set(CAIRN_ECORRUPT, "websocket: a client frame must be masked");
	}
	if (op != WS_CONT && op != WS_TEXT && op != WS_BINARY && op != WS_CLOSE && op != WS_PING &&
	    op != WS_PONG) {
		r->close_code = 1002;
		return cairn_error_set(CAIRN_ECORRUPT, "websocket: unknown opcode %u", op);
	}
	len = p[1] & 0x7f;
	if (len == 126) {
		if (n < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		hl = 4;
		if (len < 126) {
			r->close_code = 1002;
			return cairn_error_set(CAIRN_ECORRUPT, "websocket: length not in its shortest form");
		}
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		hl = 10;
		if (len >> 63 || len < 65536) {
			r->close_code = 1002;
			return cairn_error_set(CAIRN_ECORRUPT, "websocket: length not in its shortest form");
		}
	}
	if (op >= WS_CLOSE && (!fin || len > 125)) {
		r->close_code = 1002;
		return cairn_error_set(CAIRN_ECORRUPT, "websocket: a control frame must be whole and "
				       "at most 125 bytes");
	}
	if (len > max) {
		r->close_code = 1009;
		return cairn_error_set(CAIRN_ETOOBIG, "websocket: a frame of %llu bytes (at most %llu)",
				       (unsigned long long)len, (unsigned long long)max);
	}
	if (n - hl < 4 || n - hl - 4 < len)
		return 0;
	mask = p + hl;
	data = mask + 4;
	for (uint64_t i = 0; i < len; i++)
		data[i] ^= mask[i & 3];
	*used = hl + 4 + (size_t)len;
	if (op >= WS_CLOSE) {
		*payload = data;
		*plen = (size_t)len;
		return (int)op;
	}
	if (op == WS_CONT && !r->msg_op) {
		r->close_code = 1002;
		return cairn_error_set(CAIRN_ECORRUPT, "websocket: a continuation with no message");
	}
	if (op != WS_CONT && r->msg_op) {
		r->close_code = 1002;
		return cairn_error_set(CAIRN_ECORRUPT, "websocket: a new message inside a fragmented one");
	}
	if (op != WS_CONT && fin) { /* the common case: whole, no copy */
		*payload = data;
		*plen = (size_t)len;
		return (int)op;
	}
	if (op != WS_CONT) {
		r->msg_op = op;
		cairn_buf_clear(&r->msg);
	}
	if (r->msg.len + len > max) {
		r->close_code = 1009;
		return cairn_error_set(CAIRN_ETOOBIG, "websocket: a message over %llu bytes",
				       (unsigned long long)max);
	}
	if (cairn_buf_append(&r->msg, data, (size_t)len)) {
		r->close_code = 1011;
		return CAIRN_ENOMEM;
	}
	if (!fin)
		return WS_CONT;
	op = r->msg_op;
	r->msg_op = 0;
	*payload = r->msg.data ? r->msg.data : data;
	*plen = r->msg.len;
	return (int)op;
}

void serve__ws_reader_free(serve_ws_reader *r)
{
	cairn_buf_free(&r->msg);
	r->msg_op = 0;
}

size_t serve__ws_header(uint8_t hdr[10], unsigned opcode, uint64_t len)
{
	hdr[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		hdr[1] = (uint8_t)len;
		return 2;
	}
	if (len < 65536) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

/* ----------------------------------------------------------- connection */

struct serve_ws_conn {
	serve_rpc_chan chan;      /* first: the channel methods' sink */
	cairn_server *srv;
	MHD_socket sock;
	struct MHD_UpgradeResponseHandle *urh;
	unsigned perms;
	pthread_mutex_t wmu;      /* one frame written at a time */
	atomic_bool dead;
	atomic_uint refs;         /* the reader and each job */
	serve_ws_conn *next, *prev;
	uint8_t *in;              /* bytes read, not yet framed */
	size_t in_len, in_cap;
};

static int send_all(serve_ws_conn *w, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = send(w->sock, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int send_frame(serve_ws_conn *w, unsigned op, const uint8_t *p, size_t n)
{
	uint8_t hdr[10];
	size_t hl = serve__ws_header(hdr, op, n);
	int rc = -1;

	if (atomic_load(&w->dead))
		return -1;
	pthread_mutex_lock(&w->wmu);
	if (!send_all(w, hdr, hl) && (!n || !send_all(w, p, n)))
		rc = 0;
	pthread_mutex_unlock(&w->wmu);
	if (rc)
		atomic_store(&w->dead, true);
	return rc;
}

static int chan_send(serve_rpc_chan *ch, const uint8_t *msg, size_t len)
{
	return send_frame((serve_ws_conn *)ch, WS_TEXT, msg, len);
}

static bool chan_alive(serve_rpc_chan *ch)
{
	return !atomic_load(&((serve_ws_conn *)ch)->dead);
}

static void send_close(serve_ws_conn *w, unsigned code)
{
	uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	send_frame(w, WS_CLOSE, b, code ? 2 : 0);
}

static void conn_release(serve_ws_conn *w)
{
	serve_rpc_state *r = w->srv->rpc;

	if (atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	pthread_mutex_lock(&r->mu);
	if (w->prev)
		w->prev->next = w->next;
	else
		r->ws_list = w->next;
	if (w->next)
		w->next->prev = w->prev;
	r->ws_count--;
	pthread_mutex_unlock(&r->mu);
	MHD_upgrade_action(w->urh, MHD_UPGRADE_ACTION_CLOSE);
	pthread_mutex_destroy(&w->wmu);
	cairn_free(w->in);
	cairn_free(w);
}

void serve__ws_cut_all(cairn_server *srv)
{
	serve_rpc_state *r = srv->rpc;

	pthread_mutex_lock(&r->mu);
	for (serve_ws_conn *w = r->ws_list; w; w = w->next) {
		atomic_store(&w->dead, true);
		shutdown(w->sock, SHUT_RDWR);
	}
	pthread_mutex_unlock(&r->mu);
}

/* A blocking request (or a channel method): on a worker thread. */
typedef struct ws_job {
	serve_ws_conn *w;
	uint8_t *msg;
	size_t len;
} ws_job;

static void run_message(serve_ws_conn *w, const uint8_t *msg, size_t len)
{
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_arena *arena;
	serve_rpc_req *reqs;
	size_t n, answered = 0;
	bool batch;
	char emsg[300];
	int code;

	if (cairn_arena_new(&arena))
		return;
	code = serve__rpc_parse(&reqs, &n, &batch, arena, msg, len, emsg, sizeof(emsg));
	if (code) {
		serve__rpc_error(&out, NULL, code, emsg);
	} else {
		if (batch)
			cairn_buf_putc(&out, '[');
		for (size_t i = 0; i < n; i++) {
			cairn_buf one = CAIRN_BUF_INIT;

			serve__rpc_exec(&one, w->srv, w->perms, &reqs[i], arena, &w->chan);
			if (one.len) {
				if (answered++)
					cairn_buf_putc(&out, ',');
				cairn_buf_append(&out, one.data, one.len);
			}
			cairn_buf_free(&one);
		}
		if (batch)
			cairn_buf_putc(&out, ']');
		if (!answered)
			cairn_buf_clear(&out);
	}
	if (out.len && !out.err)
		send_frame(w, WS_TEXT, out.data, out.len);
	cairn_buf_free(&out);
	cairn_arena_free(arena);
}

static void *job_main(void *arg)
{
	ws_job *j = arg;

	run_message(j->w, j->msg, j->len);
	conn_release(j->w);
	cairn_free(j->msg);
	cairn_free(j);
	return NULL;
}

static bool message_slow(const cairn_server *srv, const uint8_t *msg, size_t len)
{
	cairn_arena *arena;
	serve_rpc_req *reqs;
	size_t n;
	bool batch, slow = false;
	char emsg[8];

	if (cairn_arena_new(&arena))
		return false;
	if (!serve__rpc_parse(&reqs, &n, &batch, arena, msg, len, emsg, sizeof(emsg)))
		for (size_t i = 0; i < n && !slow; i++)
			slow = serve__rpc_slow(srv, &reqs[i]);
	cairn_arena_free(arena);
	return slow;
}

static void on_text(serve_ws_conn *w, const uint8_t *msg, size_t len)
{
	ws_job *j;

	if (!message_slow(w->srv, msg, len)) {
		run_message(w, msg, len);
		return;
	}
	if (!(j = cairn_calloc(1, sizeof(*j))) || !(j->msg = cairn_malloc(len ? len : 1))) {
		cairn_free(j);
		return;
	}
	memcpy(j->msg, msg, len);
	j->len = len;
	j->w = w;
	atomic_fetch_add(&w->refs, 1);
	if (serve__rpc_spawn(w->srv, job_main, j)) {
		cairn_buf out = CAIRN_BUF_INIT;

		conn_release(w); /* the reader still holds one: never the last */
		serve__rpc_error(&out, NULL, RPC_SERVER_BUSY, cairn_error_last());
		if (!out.err)
			send_frame(w, WS_TEXT, out.data, out.len);
		cairn_buf_free(&out);
		cairn_free(j->msg);
		cairn_free(j);
	}
}

/* Frames every whole frame in w->in; returns false when the connection
 * is to end. */
static bool drain(serve_ws_conn *w, serve_ws_reader *rd)
{
	for (;;) {
		const uint8_t *payload;
		size_t used, plen;
		int op = serve__ws_next(rd, w->in, w->in_len, &used, &payload, &plen);

		if (op < 0) {
			cairn_log(CAIRN_LOG_INFO, "rpc: %s", cairn_error_last());
			send_close(w, rd->close_code);
			return false;
		}
		if (!used)
			return true;
		switch (op) {
		case WS_TEXT:
			on_text(w, payload, plen);
			break;
		case WS_BINARY:
			send_close(w, 1003);
			return false;
		case WS_PING:
			send_frame(w, WS_PONG, payload, plen);
			break;
		case WS_CLOSE:
			/* echo the peer's code, as RFC 6455 5.5.1 asks */
			send_close(w, plen >= 2 ? (unsigned)(payload[0] << 8 | payload[1]) : 1000);
			return false;
		default: /* WS_PONG, WS_CONT */
			break;
		}
		memmove(w->in, w->in + used, w->in_len - used);
		w->in_len -= used;
	}
}

static bool stopping_now(cairn_server *srv)
{
	bool st;

	pthread_mutex_lock(&srv->rpc->mu);
	st = srv->rpc->stopping;
	pthread_mutex_unlock(&srv->rpc->mu);
	return st;
}

static void *reader_main(void *arg)
{
	serve_ws_conn *w = arg;
	serve_ws_reader rd = {0};
	time_t last = time(NULL);

	rd.max = SERVE_RPC_MAX_BODY;
	while (!atomic_load(&w->dead) && drain(w, &rd)) {
		struct pollfd pfd = {w->sock, POLLIN, 0};
		ssize_t k;
		int pr;

		if (w->in_len == w->in_cap) {
			size_t ncap = w->in_cap * 2;
			uint8_t *n;

			/* drain() refuses frames over the bound, so a full
			 * buffer below it only means a large frame coming */
			if (ncap > SERVE_RPC_MAX_BODY + 16)
				ncap = SERVE_RPC_MAX_BODY + 16;
			if (ncap == w->in_cap || !(n = cairn_realloc(w->in, ncap)))
				break;
			w->in = n;
			w->in_cap = ncap;
		}
		pr = poll(&pfd, 1, 1000);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0) {
			if (time(NULL) - last > WS_IDLE_S && atomic_load(&w->refs) == 1) {
				send_close(w, 1001);
				break;
			}
			continue;
		}
		k = recv(w->sock, w->in + w->in_len, w->in_cap - w->in_len, 0);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			break;
		w->in_len += (size_t)k;
		last = time(NULL);
	}
	/* Half-close and read what the peer still sends (its close frame,
	 * the rest of a refused message) for up to 2 s: closing with unread
	 * bytes would reset the connection and lose our close frame. */
	shutdown(w->sock, SHUT_WR);
	for (int i = 0; i < 20 && !stopping_now(w->srv); i++) {
		struct pollfd pfd = {w->sock, POLLIN, 0};
		uint8_t sink[4096];

		if (poll(&pfd, 1, 100) > 0 && recv(w->sock, sink, sizeof(sink), 0) <= 0)
			break;
	}
	atomic_store(&w->dead, true);
	shutdown(w->sock, SHUT_RDWR);
	serve__ws_reader_free(&rd);
	conn_release(w);
	return NULL;
}

/* MHD's upgrade callback, on a pool thread: must not block. */
static void upgraded(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in,
		     size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	cairn_server *srv = cls;
	serve_rpc_state *r = srv->rpc;
	const unsigned *perms = con_cls;
	serve_ws_conn *w;
	struct timeval tv = {30, 0};
	int fl;

	(void)c;
	if (!(w = cairn_calloc(1, sizeof(*w)))) {
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	w->in_cap = extra_in_size > 65536 ? extra_in_size : 65536;
	if (!(w->in = cairn_malloc(w->in_cap))) {
		cairn_free(w);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	memcpy(w->in, extra_in, extra_in_size);
	w->in_len = extra_in_size;
	w->chan.send = chan_send;
	w->chan.alive = chan_alive;
	atomic_init(&w->chan.next_id, 1);
	w->srv = srv;
	w->sock = sock;
	w->urh = urh;
	w->perms = perms ? perms[1] : CAIRN_PERM_READ;
	pthread_mutex_init(&w->wmu, NULL);
	atomic_init(&w->dead, false);
	atomic_init(&w->refs, 1);
	/* blocking I/O on the reader's own thread, with a send timeout */
	if ((fl = fcntl(sock, F_GETFL)) >= 0)
		fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_mutex_lock(&r->mu);
	w->next = r->ws_list;
	if (w->next)
		w->next->prev = w;
	r->ws_list = w;
	r->ws_count++;
	pthread_mutex_unlock(&r->mu);
	if (serve__rpc_spawn(srv, reader_main, w)) {
		cairn_log(CAIRN_LOG_WARN, "rpc: websocket refused: %s", cairn_error_last());
		conn_release(w);
	}
}

/* The permissions of an upgraded connection travel in con_cls to the
 * upgrade callback: a static tag per permission set, so nothing is
 * allocated that a dropped handshake would leak. [0] is a marker unlike
 * rpc.c's, [1] the permissions. */
#define TAG(p) {0x77737331u, p}
static const unsigned ws_tags[16][2] = {
	TAG(0), TAG(1), TAG(2), TAG(3), TAG(4), TAG(5), TAG(6), TAG(7),
	TAG(8), TAG(9), TAG(10), TAG(11), TAG(12), TAG(13), TAG(14), TAG(15),
};

/* Whether a comma-separated header holds `token` (any case). */
static bool has_token(const char *h, const char *token)
{
	size_t n = strlen(token);

	while (h && *h) {
		while (*h == ' ' || *h == '\t' || *h == ',')
			h++;
		if (!strncasecmp(h, token, n) && (!h[n] || h[n] == ',' || h[n] == ' ' || h[n] == '\t'))
			return true;
		h = strchr(h, ',');
	}
	return false;
}

static enum MHD_Result plain(struct MHD_Connection *c, unsigned status, const char *msg,
			     const char *hname, const char *hval)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	if (hname)
		MHD_add_response_header(r, hname, hval);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result serve__ws_upgrade(struct MHD_Connection *c, cairn_server *srv, void **con_cls)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	const char *up = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Upgrade");
	const char *conn = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection");
	const char *ver = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	cairn_buf kb = CAIRN_BUF_INIT, acc = CAIRN_BUF_INIT;
	unsigned char sha[EVP_MAX_MD_SIZE];
	unsigned shalen = 0, perms, count;
	char cat[128];
	size_t kn;
	struct MHD_Response *r;
	enum MHD_Result ret;
	bool key_ok;

	if (!has_token(up, "websocket") || !has_token(conn, "upgrade"))
		return plain(c, MHD_HTTP_METHOD_NOT_ALLOWED, "/rpc/v0 takes POST (JSON-RPC 2.0) or a "
			     "WebSocket upgrade\n", "Allow", "POST, GET");
	if (!ver || strcmp(ver, "13"))
		return plain(c, 426, "WebSocket version 13 only\n", "Sec-WebSocket-Version", "13");
	kn = key ? strlen(key) : 0;
	key_ok = kn == 24 && !strcmp(key + 22, "==") &&
		 !cairn_base_decode(&kb, CAIRN_BASE64, key, 22) && kb.len == 16;
	cairn_buf_free(&kb);
	if (!key_ok)
		return plain(c, MHD_HTTP_BAD_REQUEST, "Sec-WebSocket-Key must be 16 bytes in base64\n",
			     NULL, NULL);
	if (serve__rpc_auth(&perms, srv, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
			    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"))) {
		char msg[300];

		snprintf(msg, sizeof(msg), "JWT Verification failed: %s\n", cairn_error_last());
		cairn_log(CAIRN_LOG_INFO, "rpc: 401: %s", msg);
		return plain(c, MHD_HTTP_UNAUTHORIZED, msg, NULL, NULL);
	}
	pthread_mutex_lock(&srv->rpc->mu);
	count = srv->rpc->ws_count;
	pthread_mutex_unlock(&srv->rpc->mu);
	if (count >= SERVE_WS_MAX_CONNS)
		return plain(c, MHD_HTTP_SERVICE_UNAVAILABLE, "too many websockets open\n", NULL, NULL);
	snprintf(cat, sizeof(cat), "%s%s", key, guid);
	if (!EVP_Digest(cat, strlen(cat), sha, &shalen, EVP_sha1(), NULL) || shalen != 20)
		return MHD_NO;
	cairn_base_encode(&acc, CAIRN_BASE64, sha, 20);
	cairn_buf_putc(&acc, '=');
	if (acc.err || !(r = MHD_create_response_for_upgrade(upgraded, srv))) {
		cairn_buf_free(&acc);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
	MHD_add_response_header(r, "Sec-WebSocket-Accept", (const char *)acc.data);
	cairn_buf_free(&acc);
	*con_cls = (void *)ws_tags[perms & 15];
	ret = MHD_queue_response(c, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	return ret;
}
