/* cairn/serve.h: `cairn serve`: the DAG store over HTTP, as a trustless
 * gateway (blocks and CARs, verifiable by the client) plus /healthz. */
#ifndef CAIRN_SERVE_H
#define CAIRN_SERVE_H

#include "cairn/dagstore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cairn_server cairn_server;
typedef struct cairn_serve_method cairn_serve_method;

typedef struct cairn_serve_options {
	const char *listen;        /* "ADDR:PORT" or "[V6ADDR]:PORT"; NULL:
				    * "127.0.0.1:8080"; port 0 picks a free one */
	unsigned threads;          /* MHD's thread pool (0: one per core) */
	unsigned max_connections;  /* open at once (0: 1024); more are refused */
	unsigned timeout_s;        /* idle seconds before a connection is
				    * closed (0: 30), so slow clients go */
	const uint8_t *jwt_secret; /* CAIRN_SERVE_SECRET_SIZE bytes signing the
				    * JSON-RPC tokens (copied); NULL: /rpc/v0
				    * answers 503 */
	const cairn_serve_method *methods; /* the caller's own JSON-RPC
				    * methods, ended by one with a NULL name;
				    * borrowed until stop; may be NULL */
} cairn_serve_options;
#define CAIRN_SERVE_OPTIONS_INIT {NULL, 0, 0, 0, NULL, NULL}

/* Starts serving `ds` (borrowed: it must outlive the server) on its own
 * threads and returns at once. Routes:
 *   GET|HEAD /ipfs/{cid}  ?format=raw or Accept application/vnd.ipld.raw:
 *                         the block; ?format=car or application/vnd.ipld.car:
 *                         a CARv1 of the DAG, depth first, each block once,
 *                         streamed (dag-scope=all|block)
 *   GET /healthz          200 "ok"
 *   POST /rpc/v0          JSON-RPC 2.0 (Lotus's Filecoin.Dagstore*, Auth*,
 *                         Version, and cairn's Cairn.*), with a token
 *   GET /rpc/v0 (upgrade) the same over a WebSocket, where methods that
 *                         return a channel stream (go-jsonrpc's xrpc.ch.val)
 * On failure *out is NULL. Errors: CAIRN_EINVAL (a bad listen address),
 * CAIRN_EIO (the address cannot be bound). */
CAIRN_API int cairn_serve_start(cairn_server **out, cairn_dagstore *ds,
				const cairn_serve_options *opts);
/* The port it listens on (the one picked when 0 was asked). */
CAIRN_API unsigned cairn_serve_port(const cairn_server *srv);
/* Stops accepting, closes every connection (streams in progress are cut)
 * and waits for the threads. NULL is accepted. */
CAIRN_API void cairn_serve_stop(cairn_server *srv);

/* ------------------------------------------------------ JSON-RPC tokens
 *
 * As Lotus: HS256 JWTs whose payload is {"Allow": ["read", ...]} (and
 * optionally "exp", unix seconds), signed with a 32-byte secret kept in
 * the store. A method needs one permission and a token must list it (a
 * token listing only "admin" cannot read, as in go-jsonrpc/auth); a
 * request without a token has "read".
 */
#define CAIRN_SERVE_SECRET_SIZE 32
typedef enum cairn_perm {
	CAIRN_PERM_READ = 1,
	CAIRN_PERM_WRITE = 2,
	CAIRN_PERM_SIGN = 4,
	CAIRN_PERM_ADMIN = 8,
} cairn_perm;
#define CAIRN_PERM_ALL 15

/* A JSON-RPC method of the caller's (the command's Cairn.Deal*, say: the
 * parts the server does not know), run on a worker thread of its own, so
 * it may block. `params` is the request's params list in the data model
 * (borrowed for the call); the method appends its result to `result` as
 * JSON ("null" when there is none) and returns 0, or a cairn code with the
 * message set, which the client gets as the error. */
struct cairn_serve_method {
	const char *name;            /* "Cairn.DealImport" */
	cairn_perm perm;             /* the permission it needs */
	unsigned min_params, max_params;
	int (*fn)(cairn_buf *result, const cairn_node *params, void *payload);
	void *payload;
};

/* "read", "write", "sign", "admin" (NULL for anything else). */
CAIRN_API const char *cairn_perm_name(cairn_perm perm);
/* The permissions `cairn auth create-token --perm NAME` grants: NAME and
 * every level below it, as Lotus's create-token does ("write" is read and
 * write). CAIRN_EINVAL for an unknown name. */
CAIRN_API int cairn_perm_parse(unsigned *perms_out, const char *name);

/* Reads the secret at `path`, creating it (32 random bytes, mode 0600,
 * fsynced; the parent folder must exist) if there is none. Two processes
 * creating it at once end with the same secret (the loser reads the
 * winner's). Errors: CAIRN_EIO, CAIRN_ECORRUPT (not 32 bytes). */
CAIRN_API int cairn_serve_secret_load(uint8_t secret_out[CAIRN_SERVE_SECRET_SIZE],
				      const char *path);
/* A token granting `perms` (CAIRN_PERM_* bits), expiring at `exp` (unix
 * seconds; 0: never). *out is NUL-terminated; free with cairn_free. */
CAIRN_API int cairn_serve_token_new(char **out, const uint8_t *secret, unsigned perms,
				    int64_t exp);
/* Checks a token's signature (in constant time), form and expiry against
 * `now` (unix seconds) and gives its permissions. CAIRN_ECORRUPT for a
 * malformed token or one not signed with `secret` (the message says
 * which), CAIRN_EINVAL for an expired one. */
CAIRN_API int cairn_serve_token_verify(unsigned *perms_out, const uint8_t *secret,
				       const char *token, size_t len, int64_t now);

/* --------------------------------------------------------- config file
 *
 * `cairn serve --config FILE` (default $CAIRN_PATH/config.json when it
 * exists): one JSON object whose "serve" member (or the object itself, when
 * it has no "serve") holds
 *   "listen": "127.0.0.1:8080", "threads": 2, "max_connections": 1024,
 *   "timeout_s": 30
 * Flags given on the command line override the file. An unknown key, a
 * value of the wrong type or out of range is an error naming the key and
 * the file, so a typo is never silently ignored.
 */
typedef struct cairn_serve_config {
	char *listen;              /* owned; NULL when the file has none */
	unsigned threads;          /* 0 when the file has none */
	unsigned max_connections;
	unsigned timeout_s;
} cairn_serve_config;

/* Reads `path` into `out` (zeroed first; free with cairn_serve_config_clear,
 * also after a failure). Errors: CAIRN_ENOTFOUND (no such file),
 * CAIRN_ECORRUPT (not JSON, not an object, an unknown key, a bad value: the
 * message names the file and key), CAIRN_EIO. */
CAIRN_API int cairn_serve_config_load(cairn_serve_config *out, const char *path);
/* Copies the values the file set into `opts` where `opts` has none
 * (listen NULL, numbers 0), so flags set before win; `opts->listen` then
 * borrows from `cfg`. */
CAIRN_API void cairn_serve_config_apply(const cairn_serve_config *cfg, cairn_serve_options *opts);
/* Frees what load allocated; NULL is accepted. */
CAIRN_API void cairn_serve_config_clear(cairn_serve_config *cfg);

#ifdef __cplusplus
}
#endif

#endif
