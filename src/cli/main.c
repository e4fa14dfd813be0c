/* main.c: the `cairn` command: the table of command groups and the entry
 * point. Each group lives in its own cmd_<group>.c. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static int run_version(cli_ctx *ctx, const cli_args *args)
{
	(void)args;
	if (ctx->json)
		fprintf(ctx->out, "{\"version\":\"%s\"}\n", CAIRN_VERSION);
	else
		fprintf(ctx->out, "cairn %s\n", CAIRN_VERSION);
	return CLI_OK;
}

static const cli_cmd version_cmd = {
	.name = "version",
	.summary = "Print the version of cairn.",
	.max_args = 0,
	.run = run_version,
};

static const cli_cmd *const groups[] = {
	&cli_adt_cmd,
	&cli_auth_cmd,
	&cli_chain_cmd,
	&cli_block_cmd,
	&cli_car_cmd,
	&cli_cid_cmd,
	&cli_dagstore_cmd,
	&cli_deal_cmd,
	&cli_export_cmd,
	&cli_pack_cmd,
	&cli_piece_cmd,
	&cli_sector_cmd,
	&cli_serve_cmd,
	&cli_snapshot_cmd,
	&cli_storage_cmd,
	&cli_store_cmd,
	&cli_unpack_cmd,
	&version_cmd,
	NULL,
};

static const cli_cmd root = {
	.name = "cairn",
	.summary = "cairn: a data plane for content-addressed storage.",
	.description =
		"CIDs, blocks and CAR archives; UnixFS and pieces; the DAG store, sectors\n"
		"and deals, served by `cairn serve`; state structures, exports and\n"
		"snapshots. The store is $CAIRN_PATH (default ~/.cairn); while `cairn\n"
		"serve` runs, commands that need it go through the daemon.",
	.subs = groups,
};

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("cairn %s\n", CAIRN_VERSION);
		return CLI_OK;
	}
	return cli_main(&root, argc, argv, stdout, stderr);
}
