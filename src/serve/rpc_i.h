/* rpc_i.h: what the JSON-RPC files of the serve part share: the parsed
 * request, the method runner, worker threads, the WebSocket framer. */
#ifndef CAIRN_SERVE_RPC_I_H
#define CAIRN_SERVE_RPC_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "serve_i.h"

/* A request body (HTTP) or message (WebSocket) over 1 MiB is refused
 * (413, or close code 1009): the largest useful one, an import of a few
 * thousand deals, is a few hundred KiB, and the CLI sends bigger ones in
 * batches. */
#define SERVE_RPC_MAX_BODY ((size_t)1 << 20)
/* A batch holds at most this many requests. */
#define SERVE_RPC_MAX_BATCH 100
/* Threads of the RPC side alive at once: workers for blocking calls plus
 * one reader per WebSocket. Past it a blocking call is answered "busy"
 * and an upgrade 503, so a flood of RPC cannot exhaust memory or threads. */
#define SERVE_RPC_MAX_THREADS 128
#define SERVE_WS_MAX_CONNS 64

/* JSON-RPC 2.0's codes, and go-jsonrpc's 1 for an error the method
 * itself returned. */
enum {
	RPC_PARSE_ERROR = -32700,
	RPC_INVALID_REQUEST = -32600,
	RPC_METHOD_NOT_FOUND = -32601,
	RPC_INVALID_PARAMS = -32602,
	RPC_INTERNAL_ERROR = -32603,
	RPC_SERVER_BUSY = -32000,
	RPC_UNAUTHORIZED = -32001,
	RPC_METHOD_ERROR = 1,
};

/* One request of a body, as parsed (pointing into the arena and the body). */
typedef struct serve_rpc_req {
	const cairn_node *id;     /* NULL: a notification, not answered */
	const char *method;       /* NUL-terminated, in the arena */
	const cairn_node *params; /* a list (empty when absent) */
	int err;                  /* non-zero: invalid; answer this code */
	char msg[200];            /* ... with this message */
} serve_rpc_req;

/* Parses a body: one request, or a batch (a non-empty array of at most
 * SERVE_RPC_MAX_BATCH). Returns 0 with the requests (each may be invalid
 * on its own: see .err), or RPC_PARSE_ERROR / RPC_INVALID_REQUEST with a
 * message in `msg` for the body as a whole. The fuzz target's entry. */
int serve__rpc_parse(serve_rpc_req **reqs_out, size_t *n_out, bool *batch_out,
		     cairn_arena *arena, const uint8_t *body, size_t len, char *msg,
		     size_t msg_cap);

/* Where a channel's values go: a WebSocket. `send` writes one whole text
 * message and fails once the peer is gone; `alive` says whether it is. */
typedef struct serve_rpc_chan serve_rpc_chan;
struct serve_rpc_chan {
	int (*send)(serve_rpc_chan *ch, const uint8_t *msg, size_t len);
	bool (*alive)(serve_rpc_chan *ch);
	atomic_uint_fast64_t next_id;
};

/* True when the request may block for long (indexing, a transaction, a
 * GC): it then runs on a worker thread, never on an MHD pool thread. */
bool serve__rpc_slow(const cairn_server *srv, const serve_rpc_req *req);
/* Runs one request with the caller's permissions and appends its
 * response object to `out` (nothing for a notification, or for a channel
 * method, which answers through `ch`). `ch` NULL: plain HTTP, where a
 * channel method is refused as go-jsonrpc refuses it. */
void serve__rpc_exec(cairn_buf *out, cairn_server *srv, unsigned perms,
		     const serve_rpc_req *req, cairn_arena *arena, serve_rpc_chan *ch);
/* Appends an error response with id `id` (NULL: null). */
void serve__rpc_error(cairn_buf *out, const cairn_node *id, int code, const char *msg);

/* The permissions of a request's credentials: `auth` is the Authorization
 * header's value or NULL, `query_token` the ?token= value or NULL. No
 * credentials: read. Returns 0, or a cairn code with the reason as the
 * message (the caller answers 401). */
int serve__rpc_auth(unsigned *perms_out, cairn_server *srv, const char *auth,
		    const char *query_token);

/* -------------------------------------------------------- worker threads */

/* The RPC side's state in the server. */
typedef struct serve_ws_conn serve_ws_conn;
typedef struct serve_rpc {
	uint8_t secret[CAIRN_SERVE_SECRET_SIZE];
	bool enabled;
	pthread_mutex_t mu;
	pthread_cond_t idle;      /* threads reached 0 */
	unsigned threads;         /* workers and WebSocket readers alive */
	unsigned ws_count;
	bool stopping;
	serve_ws_conn *ws_list;   /* open WebSockets, cut at stop */
	atomic_uint_fast64_t calls; /* requests run, for the log and tests */
	struct method *ext;       /* the caller's methods (options.methods) */
	size_t n_ext;
} serve_rpc_state;

int serve__rpc_init(cairn_server *srv, const cairn_serve_options *o);
/* Stops new work, cuts every WebSocket and waits for every RPC thread
 * (a worker in the middle of indexing a shard finishes it first). */
void serve__rpc_stop(cairn_server *srv);
void serve__rpc_free(cairn_server *srv);
/* Runs fn(arg) on a detached thread counted in rpc->threads; CAIRN_EEXISTS
 * ("busy") past SERVE_RPC_MAX_THREADS or when stopping. */
int serve__rpc_spawn(cairn_server *srv, void *(*fn)(void *), void *arg);
/* The end of a thread started by serve__rpc_spawn. */
void serve__rpc_thread_done(cairn_server *srv);

/* ------------------------------------------------------------ WebSocket */

/* RFC 6455 frames as the server reads them. */
enum {
	WS_CONT = 0x0,
	WS_TEXT = 0x1,
	WS_BINARY = 0x2,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xa,
};

/* Reassembles client messages from frames. Zero-initialize; `max` bounds
 * a frame's payload and a whole message (0: SERVE_RPC_MAX_BODY). */
typedef struct serve_ws_reader {
	uint64_t max;
	cairn_buf msg;            /* the fragments of the message so far */
	unsigned msg_op;          /* its opcode; 0: no message under way */
	unsigned close_code;      /* after an error: the close code to send */
} serve_ws_reader;

/* Takes one frame from p[0..n) (unmasking it in place) and says what it
 * was: 0 when p does not yet hold a whole frame (*used 0), WS_TEXT or
 * WS_BINARY when a message is complete (*payload, *plen: it, valid until
 * the next call), WS_CONT for a fragment kept, WS_PING / WS_PONG /
 * WS_CLOSE with their payload. Negative on a protocol error (unmasked,
 * reserved bits, an unknown opcode, a control frame fragmented or over
 * 125 bytes, a length not in its shortest form, over the bound), with
 * r->close_code set (1002, or 1009 for too big). */
int serve__ws_next(serve_ws_reader *r, uint8_t *p, size_t n, size_t *used,
		   const uint8_t **payload, size_t *plen);
void serve__ws_reader_free(serve_ws_reader *r);
/* Writes a server frame's header (FIN set, unmasked) into hdr (up to 10
 * bytes) and returns its length. */
size_t serve__ws_header(uint8_t hdr[10], unsigned opcode, uint64_t len);

/* GET /rpc/v0 with Upgrade: websocket: checks the handshake and the
 * credentials, answers 101 and hands the socket to a reader thread (the
 * permissions travel in *con_cls). */
enum MHD_Result serve__ws_upgrade(struct MHD_Connection *c, cairn_server *srv, void **con_cls);
/* Shuts every open WebSocket down (their readers then end). */
void serve__ws_cut_all(cairn_server *srv);

#endif
