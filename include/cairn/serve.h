/* cairn/serve.h: `cairn serve`: the DAG store over HTTP, as a trustless
 * gateway (blocks and CARs, verifiable by the client) plus /healthz. */
#ifndef CAIRN_SERVE_H
#define CAIRN_SERVE_H

#include "cairn/dagstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cairn_server cairn_server;

typedef struct cairn_serve_options {
	const char *listen;        /* "ADDR:PORT" or "[V6ADDR]:PORT"; NULL:
				    * "127.0.0.1:8080"; port 0 picks a free one */
	unsigned threads;          /* MHD's thread pool (0: one per core) */
	unsigned max_connections;  /* open at once (0: 1024); more are refused */
	unsigned timeout_s;        /* idle seconds before a connection is
				    * closed (0: 30), so slow clients go */
} cairn_serve_options;
#define CAIRN_SERVE_OPTIONS_INIT {NULL, 0, 0, 0}

/* Starts serving `ds` (borrowed: it must outlive the server) on its own
 * threads and returns at once. Routes:
 *   GET|HEAD /ipfs/{cid}  ?format=raw or Accept application/vnd.ipld.raw:
 *                         the block; ?format=car or application/vnd.ipld.car:
 *                         a CARv1 of the DAG, depth first, each block once,
 *                         streamed (dag-scope=all|block)
 *   GET /healthz          200 "ok"
 * On failure *out is NULL. Errors: CAIRN_EINVAL (a bad listen address),
 * CAIRN_EIO (the address cannot be bound). */
CAIRN_API int cairn_serve_start(cairn_server **out, cairn_dagstore *ds,
				const cairn_serve_options *opts);
/* The port it listens on (the one picked when 0 was asked). */
CAIRN_API unsigned cairn_serve_port(const cairn_server *srv);
/* Stops accepting, closes every connection (streams in progress are cut)
 * and waits for the threads. NULL is accepted. */
CAIRN_API void cairn_serve_stop(cairn_server *srv);

#ifdef __cplusplus
}
#endif

#endif
