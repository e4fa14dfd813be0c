/* serve_i.h: what the files of the serve part share: the server, the
 * plain-text responses every route uses, and the routes. */
#ifndef CAIRN_SERVE_I_H
#define CAIRN_SERVE_I_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "cairn/serve.h"

/* What MHD's per-request pointer (con_cls) points to starts with one of
 * these, so that each completion hook frees only its own. */
enum { SERVE_REQ_SEEN = 1, SERVE_REQ_RPC = 0x72706331 /* "rpc1" */ };

struct cairn_server {
	struct MHD_Daemon *mhd;
	cairn_dagstore *ds;
	unsigned port;
	struct serve_rpc *rpc;     /* rpc.c: JSON-RPC, tokens, WebSockets */
	struct serve_filemap *maps; /* filemap.c: shard files mapped for blocks */
};

/* filemap.c: a mapping of the whole file open on `fd`, kept between
 * requests, with a reference for the caller, and *data pointing at `offset`.
 * NULL with *too_short when the file ends before offset + length (the
 * caller's ordinary read then words it), or NULL when mapping failed. The
 * bytes are only for the kernel to send: cairn must not read them (a file
 * cut short would raise SIGBUS). serve_mapping_put, an MHD free callback,
 * drops the reference. */
typedef struct serve_filemap serve_filemap;
typedef struct serve_mapping serve_mapping;
int serve_filemap_new(serve_filemap **out);
void serve_filemap_free(serve_filemap *fm);
serve_mapping *serve_filemap_get(serve_filemap *fm, int fd, uint64_t offset, uint64_t length,
				 const uint8_t **data, bool *too_short);
void serve_mapping_put(void *mapping);

/* serve.c: a text/plain response (with CORS and nosniff). */
enum MHD_Result serve_send_text(struct MHD_Connection *c, unsigned status, const char *msg);
enum MHD_Result serve_send_textf(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
	CAIRN_PRINTF(3, 4);
/* A body that sends nothing, for HEAD responses that state a length. */
ssize_t serve_empty_reader(void *cls, uint64_t pos, char *buf, size_t max);

/* metrics.c: response bytes as they are sent, by route ("ipfs", "piece"),
 * so streamed bodies are counted too. */
void serve_metrics_bytes(cairn_server *srv, const char *route, uint64_t n);

/* gateway.c: GET|HEAD /ipfs/{cid}[/path] (url is the decoded path). */
enum MHD_Result serve_gateway(struct MHD_Connection *c, cairn_server *srv, const char *url,
			      bool head);
/* piece.c: GET|HEAD /piece/{pieceCid}. */
enum MHD_Result serve_piece(struct MHD_Connection *c, cairn_server *srv, const char *url,
			    bool head);

/* gateway.c: the request parsers, apart so the fuzz target (fuzz/gateway_path.c)
 * reaches them. serve_path_parse splits a decoded "/ipfs/{cid}[/a/b...]" in
 * place (spans point into url; a trailing '/' is dropped): 0, or
 * CAIRN_ECORRUPT (a control byte or bad escape, an empty, "." or ".."
 * segment, no CID) or CAIRN_ETOOBIG (over SERVE_PATH_MAX_SEGMENTS), with
 * the message saying why. */
#define SERVE_PATH_MAX_SEGMENTS 64
typedef struct serve_path {
	const char *cid;
	size_t cid_len;
	const char *seg[SERVE_PATH_MAX_SEGMENTS];
	size_t seg_len[SERVE_PATH_MAX_SEGMENTS];
	unsigned nseg;
} serve_path;
int serve_path_parse(serve_path *out, const char *url);
/* entity-bytes=from:to: integers (negative: from the end) and '*' for the
 * end. 0, or CAIRN_EINVAL (malformed, or from after to). */
typedef struct serve_range {
	int64_t from, to;
	bool to_end;
} serve_range;
int serve_entity_bytes_parse(serve_range *out, const char *s);
/* piece.c: a Range header against a body of `size` bytes. */
typedef enum serve_http_range {
	SERVE_RANGE_WHOLE = 0,     /* none, not bytes=, malformed, or several:
				    * the whole body, 200 */
	SERVE_RANGE_ONE = 1,       /* [*from, *to] inclusive, 206 */
	SERVE_RANGE_UNSATISFIABLE = 2, /* 416 */
} serve_http_range;
serve_http_range serve_http_range_parse(uint64_t *from, uint64_t *to, const char *header,
					uint64_t size);

/* metrics.c: GET /metrics (Prometheus text format 0.0.4); the start of a
 * request (the first call of the access handler), and MHD's
 * request-completed hook, which records route, status and latency. The
 * counters are process-wide, as Go's default Prometheus registry is. */
enum MHD_Result serve_metrics(struct MHD_Connection *c, cairn_server *srv, bool head);
void serve_metrics_begin(struct MHD_Connection *c, const char *url);
void serve_metrics_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			     enum MHD_RequestTerminationCode toe);

/* rpc.c: POST /rpc/v0 (JSON-RPC over HTTP) and GET /rpc/v0 upgraded to a
 * WebSocket. `con_cls` carries the request body between MHD's calls. */
enum MHD_Result serve_rpc(struct MHD_Connection *c, cairn_server *srv, const char *method,
			  const char *upload_data, size_t *upload_data_size, void **con_cls);
/* MHD's request-completed hook: frees what serve_rpc left in con_cls. */
void serve_rpc_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe);

#endif
