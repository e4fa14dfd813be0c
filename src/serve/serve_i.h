/* serve_i.h: what the files of the serve part share: the server, the
 * plain-text responses every route uses, and the routes. */
#ifndef CAIRN_SERVE_I_H
#define CAIRN_SERVE_I_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "cairn/serve.h"

struct cairn_server {
	struct MHD_Daemon *mhd;
	cairn_dagstore *ds;
	unsigned port;
};

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

#endif
