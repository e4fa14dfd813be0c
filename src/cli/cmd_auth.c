/* cmd_auth.c: `cairn auth`: JSON-RPC tokens for `cairn serve`, as Lotus's
 * `lotus auth create-token` and `api-info` make them. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "daemon.h"
#include "repo.h"

/* The token as Filecoin.AuthNew gives it (base64 of its text, Go's []byte),
 * from the daemon when one owns the store, else signed here with the
 * store's secret (the same one the daemon uses). *out: cairn_free. */
static int make_token(char **out, const cli_args *args, unsigned perms)
{
	uint8_t secret[CAIRN_SERVE_SECRET_SIZE];
	char repo[4096];
	cli_daemon d;
	int rc;

	*out = NULL;
	if ((rc = cli_daemon_find(&d, args)) < 0)
		return rc;
	if (rc > 0) {
		cairn_buf p = CAIRN_BUF_INIT, tok = CAIRN_BUF_INIT;
		const cairn_node *res;
		bool first = true;

		cairn_buf_puts(&p, "[[");
		for (unsigned i = 0; i < 4; i++) {
			if (perms & (1u << i)) {
				cairn_buf_printf(&p, "%s\"%s\"", first ? "" : ",",
						 cairn_perm_name((cairn_perm)(1u << i)));
				first = false;
			}
		}
		cairn_buf_puts(&p, "]]");
		rc = p.err ? p.err : cli_daemon_call(&res, &d, "Filecoin.AuthNew", (const char *)p.data);
		if (!rc) {
			size_t n = res->kind == CAIRN_KIND_STRING ? res->v.bytes.len : 0;

			while (n && res->v.bytes.ptr[n - 1] == '=')
				n--;
			if (res->kind != CAIRN_KIND_STRING ||
			    cairn_base_decode(&tok, CAIRN_BASE64, (const char *)res->v.bytes.ptr, n) ||
			    cairn_buf_putc(&tok, 0))
				rc = cairn_error_set(CAIRN_EIO, "the daemon's token is not base64");
			else
				*out = (char *)cairn_buf_detach(&tok, NULL);
		}
		cairn_buf_free(&p);
		cairn_buf_free(&tok);
		cli_daemon_close(&d);
		return rc;
	}
	if ((rc = cli_repo_path(repo, sizeof(repo), args)))
		return rc;
	if (mkdir(repo, 0700) < 0 && errno != EEXIST)
		return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", repo, strerror(errno));
	if ((rc = cli_repo_secret(secret, repo)))
		return rc;
	rc = cairn_serve_token_new(out, secret, perms, 0);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

static int perm_opt(cli_ctx *ctx, const cli_args *args, unsigned *perms)
{
	const char *p = cli_opt_value(args, "perm");

	if (!p)
		return cli_usage_error(ctx, "--perm is required: read, write, sign or admin");
	if (cairn_perm_parse(perms, p))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	return CLI_OK;
}

static int run_create_token(cli_ctx *ctx, const cli_args *args)
{
	unsigned perms;
	char *token;
	int rc;

	if ((rc = perm_opt(ctx, args, &perms)))
		return rc;
	if (make_token(&token, args, perms))
		return cli_fail(ctx, "auth create-token");
	if (ctx->json) {
		fputs("{\"token\":", ctx->out);
		cli_json_string(ctx->out, token, strlen(token));
		fputs("}\n", ctx->out);
	} else {
		fprintf(ctx->out, "%s\n", token);
	}
	cairn_free(token);
	return CLI_OK;
}

static int run_api_info(cli_ctx *ctx, const cli_args *args)
{
	char repo[4096], path[4200];
	cairn_buf api = CAIRN_BUF_INIT;
	unsigned perms;
	char *token = NULL;
	int rc;

	if ((rc = perm_opt(ctx, args, &perms)))
		return rc;
	if (cli_repo_path(repo, sizeof(repo), args))
		return cli_fail(ctx, "auth api-info");
	snprintf(path, sizeof(path), "%s/api", repo);
	if (cairn_file_read_all(&api, path, 4096) == CAIRN_ENOTFOUND) {
		cairn_buf_free(&api);
		cairn_error_set(CAIRN_ENOTFOUND, "no daemon serves %s (no api file: start `cairn serve`)",
				repo);
		return cli_fail(ctx, "auth api-info");
	}
	while (api.len && (api.data[api.len - 1] == '\n' || api.data[api.len - 1] == '\r'))
		api.len--;
	if (api.err || cairn_buf_putc(&api, 0) || make_token(&token, args, perms)) {
		cairn_buf_free(&api);
		return cli_fail(ctx, "auth api-info");
	}
	if (ctx->json) {
		fputs("{\"CAIRN_API_INFO\":\"", ctx->out);
		fprintf(ctx->out, "%s:%s\"}\n", token, (const char *)api.data);
	} else {
		fprintf(ctx->out, "CAIRN_API_INFO=%s:%s\n", token, (const char *)api.data);
	}
	cairn_free(token);
	cairn_buf_free(&api);
	return CLI_OK;
}

static const cli_opt auth_opts[] = {
	CLI_OPT_REPO,
	{"perm", 'p', "PERM", "read, write, sign or admin (each includes the ones before it)"},
	{NULL, 0, NULL, NULL},
};

static const cli_cmd create_token_cmd = {
	.name = "create-token",
	.summary = "Print a JSON-RPC token for `cairn serve` with a permission.",
	.description = "An HS256 JWT as Lotus makes them ({\"Allow\": [\"read\", ...]}), signed\n"
		       "with the store's secret ($REPO/keystore/jwt-secret, made on first use):\n"
		       "through the running daemon (Filecoin.AuthNew, with its admin token from\n"
		       "$REPO/token) when there is one, else here. Send it as\n"
		       "\"Authorization: Bearer TOKEN\" (or ?token=TOKEN on a WebSocket). Example:\n"
		       "  curl -H \"Authorization: Bearer $(cairn auth create-token --perm write)\" \\\n"
		       "    -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Filecoin.DagstoreListShards\","
		       "\"params\":[]}' \\\n"
		       "    http://127.0.0.1:8080/rpc/v0",
	.opts = auth_opts,
	.max_args = 0,
	.run = run_create_token,
};

static const cli_cmd api_info_cmd = {
	.name = "api-info",
	.summary = "Print CAIRN_API_INFO=TOKEN:MULTIADDR for the running daemon.",
	.description = "As Lotus's FULLNODE_API_INFO: with it set, cairn commands go to that\n"
		       "daemon (on this machine or another) rather than to the store.",
	.opts = auth_opts,
	.max_args = 0,
	.run = run_api_info,
};

static const cli_cmd *const auth_subs[] = {&api_info_cmd, &create_token_cmd, NULL};

const cli_cmd cli_auth_cmd = {
	.name = "auth",
	.summary = "Tokens for the JSON-RPC API of `cairn serve`.",
	.description = "Permissions as Lotus's: read, write, sign, admin. A request without a\n"
		       "token may read; each method needs its permission.",
	.subs = auth_subs,
};
