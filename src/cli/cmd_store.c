/* cmd_store.c: `cairn store gc`: delete every block of the store that no
 * root reaches. */
#include <string.h>

#include "commands.h"
#include "repo.h"

static const cli_opt gc_opts[] = {
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

static int run_gc(cli_ctx *ctx, const cli_args *args)
{
	cairn_store_gc_stats st;
	cairn_store *s = NULL;
	cairn_cid *roots;
	char repo[4096];
	int rc = CLI_FAILED;

	if (!(roots = cairn_calloc((size_t)args->argc, sizeof(*roots))))
		return cli_fail(ctx, "store gc");
	for (int i = 0; i < args->argc; i++) {
		if (cairn_cid_parse(&roots[i], args->argv[i], strlen(args->argv[i]))) {
			cairn_free(roots);
			return cli_usage_error(ctx, "%s", cairn_error_last());
		}
	}
	if (cli_repo_path(repo, sizeof(repo), args) || cli_repo_blocks_open(&s, repo, false) ||
	    cairn_store_gc(&st, s, roots, (size_t)args->argc)) {
		rc = cli_fail(ctx, "store gc");
		goto out;
	}
	if (ctx->json)
		fprintf(ctx->out, "{\"kept\":%llu,\"deleted\":%llu,\"deleted_bytes\":%llu}\n",
			(unsigned long long)st.kept, (unsigned long long)st.deleted,
			(unsigned long long)st.deleted_bytes);
	else
		fprintf(ctx->out, "kept %llu blocks, deleted %llu (%llu bytes)\n",
			(unsigned long long)st.kept, (unsigned long long)st.deleted,
			(unsigned long long)st.deleted_bytes);
	rc = CLI_OK;
out:
	cairn_store_free(s);
	cairn_free(roots);
	return rc;
}

static const cli_cmd gc_cmd = {
	.name = "gc",
	.summary = "Delete every block that none of the roots reaches.",
	.usage = "ROOT...",
	.description = "Walks the DAG below each root (dag-cbor, dag-pb and dag-json links), then\n"
		       "deletes every other block. If a block below a root is missing, nothing\n"
		       "is deleted. Example:\n"
		       "  cairn store gc bafyrei... bafybei...",
	.opts = gc_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_gc,
};

static const cli_cmd *const store_subs[] = {&gc_cmd, NULL};

const cli_cmd cli_store_cmd = {
	.name = "store",
	.summary = "Manage the block store ($CAIRN_PATH, default ~/.cairn).",
	.subs = store_subs,
};
