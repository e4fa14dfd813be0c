/* cmd_serve.c: `cairn serve`: the store's DAG store over HTTP until SIGINT
 * or SIGTERM, holding the store's lock and announcing itself in $REPO/api. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "repo.h"

/* The api file holds one multiaddr, as Lotus's does
 * ("/ip4/127.0.0.1/tcp/8080/http"), with the port actually bound. */
static int write_api(char *path, size_t cap, const cli_repo *r, const char *listen, unsigned port)
{
	char host[64], line[160];
	const char *colon;
	bool v6 = listen[0] == '[';
	size_t hn;
	int n;

	if (v6) {
		colon = strchr(listen, ']');
		hn = colon ? (size_t)(colon - listen - 1) : 0;
		memcpy(host, listen + 1, hn < sizeof(host) ? hn : 0);
	} else {
		colon = strrchr(listen, ':');
		hn = colon ? (size_t)(colon - listen) : 0;
		memcpy(host, listen, hn < sizeof(host) ? hn : 0);
	}
	host[hn < sizeof(host) ? hn : 0] = 0;
	n = snprintf(line, sizeof(line), "/%s/%s/tcp/%u/http\n", v6 ? "ip6" : "ip4", host, port);
	if (n < 0 || (size_t)n >= sizeof(line))
		return cairn_error_set(CAIRN_EINVAL, "listen address too long");
	if ((size_t)snprintf(path, cap, "%s/api", r->path) >= cap)
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", r->path);
	return cairn_file_replace_atomic(path, line, (size_t)n, 0644);
}

/* --config FILE (which must exist), else $REPO/config.json when present. */
static int load_config(cairn_serve_config *cfg, const cli_repo *r, const char *path)
{
	char def[4200];
	int rc;

	if (path)
		return cairn_serve_config_load(cfg, path);
	if ((size_t)snprintf(def, sizeof(def), "%s/config.json", r->path) >= sizeof(def))
		return 0;
	rc = cairn_serve_config_load(cfg, def);
	if (rc == CAIRN_ENOTFOUND) {
		cairn_error_clear();
		return 0;
	}
	return rc;
}

/* The store's own JSON-RPC methods; run_serve sets each payload to its
 * cli_repo. */
static cairn_serve_method methods[] = {
	{"Cairn.ChainExportRange", CAIRN_PERM_ADMIN, 2, 3, cli_chain_rpc_export_range, NULL},
	{"Cairn.DealImport", CAIRN_PERM_ADMIN, 2, 4, cli_deal_rpc_import, NULL},
	{"Cairn.DealList", CAIRN_PERM_READ, 0, 0, cli_deal_rpc_list, NULL},
	{"Cairn.SectorAddPiece", CAIRN_PERM_ADMIN, 2, 4, cli_sector_rpc_add_piece, NULL},
	{"Cairn.SectorCheck", CAIRN_PERM_READ, 0, 1, cli_sector_rpc_check, NULL},
	{"Cairn.SectorCommd", CAIRN_PERM_READ, 1, 1, cli_sector_rpc_commd, NULL},
	{"Cairn.SectorList", CAIRN_PERM_READ, 0, 0, cli_sector_rpc_list, NULL},
	{"Cairn.SectorMove", CAIRN_PERM_ADMIN, 2, 3, cli_sector_rpc_move, NULL},
	{"Cairn.SectorReadPiece", CAIRN_PERM_READ, 1, 3, cli_sector_rpc_read_piece, NULL},
	{"Cairn.SnapshotCreate", CAIRN_PERM_ADMIN, 0, 3, cli_snapshot_rpc_create, NULL},
	{"Cairn.SnapshotList", CAIRN_PERM_READ, 0, 0, cli_snapshot_rpc_list, NULL},
	{"Cairn.StorageAttach", CAIRN_PERM_ADMIN, 1, 2, cli_storage_rpc_attach, NULL},
	{"Cairn.StorageDetach", CAIRN_PERM_ADMIN, 1, 1, cli_storage_rpc_detach, NULL},
	{"Cairn.StorageList", CAIRN_PERM_READ, 0, 0, cli_storage_rpc_list, NULL},
	{"Cairn.StorageRedeclare", CAIRN_PERM_ADMIN, 0, 2, cli_storage_rpc_redeclare, NULL},
	{NULL, 0, 0, 0, NULL, NULL},
};

/* The methods that change the store outside the DAG store: each call runs
 * inside cli_repo_write_begin/end, so a snapshot waits for it. */
static const char *const store_writers[] = {
	"Cairn.DealImport", "Cairn.SectorAddPiece", "Cairn.SectorMove",
	"Cairn.StorageAttach", "Cairn.StorageDetach", "Cairn.StorageRedeclare", NULL,
};

typedef struct writer_call {
	int (*fn)(cairn_buf *result, const cairn_node *params, void *payload);
	cli_repo *r;
} writer_call;

static writer_call writer_calls[sizeof(methods) / sizeof(methods[0])];

static int as_writer(cairn_buf *result, const cairn_node *params, void *payload)
{
	writer_call *w = payload;
	int rc;

	cli_repo_write_begin(w->r);
	rc = w->fn(result, params, w->r);
	cli_repo_write_end(w->r);
	return rc;
}

/* Points every method at the open store, the writers through as_writer. */
static void bind_methods(cli_repo *r)
{
	for (size_t i = 0; methods[i].name; i++) {
		methods[i].payload = r;
		for (const char *const *w = store_writers; *w; w++) {
			if (strcmp(*w, methods[i].name))
				continue;
			if (methods[i].fn != as_writer)
				writer_calls[i].fn = methods[i].fn;
			writer_calls[i].r = r;
			methods[i].fn = as_writer;
			methods[i].payload = &writer_calls[i];
		}
	}
}

static int run_serve(cli_ctx *ctx, const cli_args *args)
{
	cairn_serve_options so = CAIRN_SERVE_OPTIONS_INIT;
	const char *listen = cli_opt_value(args, "listen");
	cairn_server *srv = NULL;
	char api[4200], token[4200];
	uint8_t secret[CAIRN_SERVE_SECRET_SIZE];
	sigset_t set, old;
	cairn_serve_config cfg = {0};
	cli_repo r;
	int sig = 0, rc;

	so.listen = listen;
	/* SIGINT and SIGTERM are blocked before any thread starts (the DAG
	 * store's, then MHD's), so every thread inherits the mask and this
	 * one takes them in sigwait. A thread started before it would take a
	 * SIGTERM itself, by the default action: the daemon killed, its api
	 * file left. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	if (cli_repo_open(&r, args)) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return cli_fail(ctx, "serve");
	}
	bind_methods(&r);
	so.methods = methods;
	/* the config file under the flags: --config, else $REPO/config.json if any */
	if (load_config(&cfg, &r, cli_opt_value(args, "config"))) {
		rc = cli_fail(ctx, "serve");
		goto out;
	}
	cairn_serve_config_apply(&cfg, &so);
	listen = so.listen = so.listen ? so.listen : "127.0.0.1:8080";
	/* JSON-RPC: the store's token secret (made on first use) */
	if (cli_repo_secret(secret, r.path)) {
		rc = cli_fail(ctx, "serve");
		goto out;
	}
	so.jwt_secret = secret;
	if (cairn_serve_start(&srv, r.dagstore, &so)) {
		rc = cli_fail(ctx, "serve");
		goto out;
	}
	/* an admin token for the commands that go through this daemon, written
	 * before the api file that tells them to: a command seeing the api
	 * file finds the token too, never a moment of read-only calls */
	if (cli_repo_token_write(token, sizeof(token), r.path, secret)) {
		rc = cli_fail(ctx, "serve");
		goto out;
	}
	if (write_api(api, sizeof(api), &r, listen, cairn_serve_port(srv))) {
		rc = cli_fail(ctx, "serve");
		unlink(token);
		goto out;
	}
	fprintf(ctx->err, "cairn serve: %s on port %u (store %s; api file %s)\n", listen,
		cairn_serve_port(srv), r.path, api);
	fflush(ctx->err);
	while (sigwait(&set, &sig) != 0)
		;
	fprintf(ctx->err, "cairn serve: %s: stopping\n", strsignal(sig));
	if (unlink(api) < 0 && errno != ENOENT)
		fprintf(ctx->err, "cairn serve: %s: %s\n", api, strerror(errno));
	if (unlink(token) < 0 && errno != ENOENT)
		fprintf(ctx->err, "cairn serve: %s: %s\n", token, strerror(errno));
	rc = CLI_OK;
out:
	cairn_serve_stop(srv);
	cli_repo_close(&r);
	cairn_serve_config_clear(&cfg);
	explicit_bzero(secret, sizeof(secret));
	/* last: a second signal during the shutdown only ends a process
	 * that has already cleaned up */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static const cli_opt serve_opts[] = {
	CLI_OPT_REPO,
	{"listen", 'l', "ADDR:PORT", "where to listen (default 127.0.0.1:8080; port 0: a free one)"},
	{"config", 0, "FILE", "a JSON config file (default $REPO/config.json if it exists; flags win)"},
	{NULL, 0, NULL, NULL},
};

const cli_cmd cli_serve_cmd = {
	.name = "serve",
	.summary = "Serve the DAG store's blocks and CARs over HTTP (trustless gateway).",
	.description = "Holds the store (other commands on it fail until it stops) and writes its\n"
		       "address to $REPO/api as a multiaddr (/ip4/127.0.0.1/tcp/8080/http).\n"
		       "Routes: GET|HEAD /ipfs/{cid}?format=raw (or Accept:\n"
		       "application/vnd.ipld.raw): one block; ?format=car (or Accept:\n"
		       "application/vnd.ipld.car): a CARv1 of the DAG, depth first, each block once\n"
		       "(dag-scope=all, or block); GET /healthz. Stops on SIGINT or SIGTERM and\n"
		       "removes the api file. Example:\n"
		       "  cairn serve --listen 127.0.0.1:8080 &\n"
		       "  curl -s 'http://127.0.0.1:8080/ipfs/bafy...?format=car' > dag.car",
	.opts = serve_opts,
	.min_args = 0,
	.max_args = 0,
	.run = run_serve,
};
