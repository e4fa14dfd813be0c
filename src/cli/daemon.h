/* daemon.h: the running `cairn serve` that owns a store, found as Lotus's
 * command line finds its daemon (the api and token files), and called
 * over JSON-RPC so commands go through it instead of opening the store. */
#ifndef CAIRN_CLI_DAEMON_H
#define CAIRN_CLI_DAEMON_H

#include "cmd.h"
#include "repo.h"

typedef struct cli_daemon {
	char url[600];       /* http://127.0.0.1:1234/rpc/v0 */
	char *token;         /* NULL: none (the daemon grants read only) */
	cairn_arena *arena;  /* results live here until cli_daemon_close */
	long next_id;
} cli_daemon;

/* Looks for a daemon: $CAIRN_API_INFO ("TOKEN:MULTIADDR", as Lotus's
 * FULLNODE_API_INFO) if set; else the store's lock held by another
 * process and its api file present, with $REPO/token when readable.
 * Returns 1 with *out to use, 0 when no daemon runs (the command opens the
 * store itself: a stale api file left by a killed daemon, whose lock is
 * free, is ignored), or a negative code (an api file or CAIRN_API_INFO
 * that is not a multiaddr cairn can reach). */
int cli_daemon_find(cli_daemon *out, const cli_args *args);
/* Calls `method` with `params` (the JSON text of an array) and points
 * *result at the decoded result (in d->arena). A JSON-RPC error becomes
 * the return code with the daemon's message as cairn's message (so the
 * command prints what it would have printed without a daemon); CAIRN_EIO
 * when the daemon cannot be reached or refuses the token. */
int cli_daemon_call(const cairn_node **result, cli_daemon *d, const char *method,
		    const char *params);
void cli_daemon_close(cli_daemon *d);

/* ------------------------------------------ through the daemon, or not
 *
 * Every command that works on the store goes through the daemon when one
 * owns it (cli_daemon_find) and opens the store itself otherwise; both
 * ways print the same. */

typedef enum {
	CLI_STORE_OPEN, /* cli_repo_open: the lock held, every part opened */
	CLI_STORE_PATH, /* only r.path: for what reads or copies the folder
			 * without owning it (snapshots) */
} cli_store_mode;

typedef struct cli_store {
	bool remote;   /* true: use d; false: use r */
	cli_daemon d;
	cli_repo r;
} cli_store;

/* Finds the daemon, else opens the store as `mode` says. On failure prints
 * "cairn: <what>: <message>" and returns CLI_FAILED, with nothing to
 * close; else 0, and cli_store_close must follow. */
int cli_store_open(cli_store *s, cli_ctx *ctx, const cli_args *args, const char *what,
		   cli_store_mode mode);
void cli_store_close(cli_store *s);

typedef int (*cli_local_fn)(cli_ctx *ctx, const cli_args *args, cli_repo *r);
typedef int (*cli_remote_fn)(cli_ctx *ctx, const cli_args *args, cli_daemon *d);

/* cli_store_open (CLI_STORE_OPEN), then `remote` or `local`, then
 * cli_store_close: the exit status is theirs, or CLI_FAILED when neither
 * could start. */
int cli_with_store(cli_ctx *ctx, const cli_args *args, const char *what, cli_local_fn local,
		   cli_remote_fn remote);

/* Appends `s` as a JSON string literal. */
void cli_daemon_json_str(cairn_buf *b, const char *s);
/* A string member of a result object, NUL-terminated in d->arena (NULL if
 * absent, null or not a string). */
const char *cli_daemon_str(cli_daemon *d, const cairn_node *obj, const char *key);
/* An unsigned integer member (0 if absent). */
uint64_t cli_daemon_uint(const cairn_node *obj, const char *key);

#endif
