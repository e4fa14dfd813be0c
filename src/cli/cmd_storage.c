/* cmd_storage.c: `cairn storage`: the storage paths that hold sectors, as
 * `lotus-miner storage` manages them: attach (and initialize), list with
 * space and reservations, detach, redeclare. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "repo.h"

typedef struct {
	cli_repo repo;
	cairn_sector_store *st;
} storage_ctx;

static int open_store(storage_ctx *c, cli_ctx *ctx, const cli_args *args)
{
	if (cli_repo_open(&c->repo, args))
		return cli_fail(ctx, ctx->path + strlen("cairn "));
	c->st = c->repo.sectors;
	return 0;
}

static void close_store(storage_ctx *c)
{
	cli_repo_close(&c->repo);
}

/* 1536 -> "1.5 KiB". */
static const char *human(char *buf, size_t cap, int64_t v)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)v;
	unsigned u = 0;

	if (v < 1024) {
		snprintf(buf, cap, "%" PRId64 " B", v);
		return buf;
	}
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", d, units[u]);
	return buf;
}

/* -------------------------------------------------------------- attach */

static int run_attach(cli_ctx *ctx, const cli_args *args)
{
	const char *w = cli_opt_value(args, "weight"), *ms = cli_opt_value(args, "max-storage");
	cairn_storage_init init = {10, cli_opt_flag(args, "seal"), cli_opt_flag(args, "store"), 0};
	bool do_init = cli_opt_flag(args, "init");
	char id[40];
	storage_ctx c;
	int rc;

	if (w) {
		char *end;
		unsigned long long v = strtoull(w, &end, 10);

		if (*w < '0' || *w > '9' || *end)
			return cli_usage_error(ctx, "--weight must be a whole number, not '%s'", w);
		init.weight = v;
	}
	if (ms && cairn_sector_size_parse(&init.max_storage, ms))
		return cli_usage_error(ctx, "--max-storage must be a byte count (e.g. 2TiB), not '%s'", ms);
	if (!do_init && (w || ms || init.can_seal || init.can_store))
		return cli_usage_error(ctx, "--seal, --store, --weight and --max-storage go with --init");
	if ((rc = open_store(&c, ctx, args)))
		return rc;
	if (cairn_sector_storage_attach(c.st, args->argv[0], do_init ? &init : NULL, id)) {
		rc = cli_fail(ctx, "storage attach");
		close_store(&c);
		return rc;
	}
	if (ctx->json) {
		fprintf(ctx->out, "{\"id\":\"%s\",\"path\":", id);
		cli_json_string(ctx->out, args->argv[0], strlen(args->argv[0]));
		fputs("}\n", ctx->out);
	} else {
		fprintf(ctx->out, "attached %s (id %s)\n", args->argv[0], id);
	}
	close_store(&c);
	return CLI_OK;
}

/* ---------------------------------------------------------------- list */

static int print_path(const cairn_storage_info *in, void *payload)
{
	cli_ctx *ctx = payload;
	char a[32], b[32], c[32], d[32], e[32];
	FILE *f = ctx->out;

	if (ctx->json) {
		fprintf(f, "{\"id\":\"%s\",\"path\":", in->error ? "" : in->id);
		cli_json_string(f, in->config_path, strlen(in->config_path));
		if (in->error) {
			fputs(",\"error\":", f);
			cli_json_string(f, in->error, strlen(in->error));
			fputs("}\n", f);
			return 0;
		}
		fprintf(f, ",\"can_seal\":%s,\"can_store\":%s,\"weight\":%" PRIu64 ",\"max_storage\":%" PRIu64
			   ",\"capacity\":%" PRId64 ",\"available\":%" PRId64 ",\"fs_available\":%" PRId64
			   ",\"reserved\":%" PRId64 ",\"used\":%" PRId64 ",\"unsealed\":%" PRIu64
			   ",\"sealed\":%" PRIu64 ",\"cache\":%" PRIu64 "}\n",
			in->can_seal ? "true" : "false", in->can_store ? "true" : "false", in->weight,
			in->max_storage, in->stat.capacity, in->stat.available, in->stat.fs_available,
			in->stat.reserved, in->stat.used, in->sectors[0], in->sectors[1], in->sectors[2]);
		return 0;
	}
	if (in->error) {
		fprintf(f, "%s:\n  error:      %s\n", in->config_path, in->error);
		return 0;
	}
	fprintf(f, "%s:\n  path:       %s\n  use:        %s%s%s\n  weight:     %" PRIu64 "\n", in->id,
		in->config_path, in->can_seal ? "seal" : "", in->can_seal && in->can_store ? ", " : "",
		in->can_store ? "store" : "", in->weight);
	fprintf(f, "  capacity:   %s, available %s, reserved %s", human(a, sizeof(a), in->stat.capacity),
		human(b, sizeof(b), in->stat.available), human(c, sizeof(c), in->stat.reserved));
	if (in->max_storage)
		fprintf(f, ", used %s of max %s", human(d, sizeof(d), in->stat.used),
			human(e, sizeof(e), in->stat.max));
	fprintf(f, "\n  sectors:    unsealed %" PRIu64 ", sealed %" PRIu64 ", cache %" PRIu64 "\n",
		in->sectors[0], in->sectors[1], in->sectors[2]);
	return 0;
}

static int run_list(cli_ctx *ctx, const cli_args *args)
{
	storage_ctx c;
	int rc;

	if ((rc = open_store(&c, ctx, args)))
		return rc;
	rc = cairn_sector_storage_list(c.st, print_path, ctx) ? cli_fail(ctx, "storage list") : CLI_OK;
	close_store(&c);
	return rc;
}

/* -------------------------------------------------------------- detach */

static int run_detach(cli_ctx *ctx, const cli_args *args)
{
	storage_ctx c;
	int rc;

	if ((rc = open_store(&c, ctx, args)))
		return rc;
	if (cairn_sector_storage_detach(c.st, args->argv[0])) {
		rc = cli_fail(ctx, "storage detach");
	} else {
		if (ctx->json)
			fputs("{\"detached\":true}\n", ctx->out);
		else
			fprintf(ctx->out, "detached %s (its files stay)\n", args->argv[0]);
		rc = CLI_OK;
	}
	close_store(&c);
	return rc;
}

/* ----------------------------------------------------------- redeclare */

static int run_redeclare(cli_ctx *ctx, const cli_args *args)
{
	uint64_t declared, dropped;
	storage_ctx c;
	int rc;

	if ((rc = open_store(&c, ctx, args)))
		return rc;
	if (cairn_sector_storage_redeclare(c.st, args->argc ? args->argv[0] : NULL,
					   cli_opt_flag(args, "drop-missing"), &declared, &dropped)) {
		rc = cli_fail(ctx, "storage redeclare");
	} else {
		if (ctx->json)
			fprintf(ctx->out, "{\"declared\":%" PRIu64 ",\"dropped\":%" PRIu64 "}\n", declared,
				dropped);
		else
			fprintf(ctx->out, "declared %" PRIu64 " sector files, dropped %" PRIu64 "\n", declared,
				dropped);
		rc = CLI_OK;
	}
	close_store(&c);
	return rc;
}

/* ------------------------------------------------------------- the table */

static const cli_opt repo_opts[] = {
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

static const cli_opt attach_opts[] = {
	CLI_OPT_REPO,
	{"init", 0, NULL, "initialize the path first: create it and write its sectorstore.json"},
	{"seal", 0, NULL, "(with --init) use the path for sealing: new sectors are written here"},
	{"store", 0, NULL, "(with --init) use the path for long-term storage"},
	{"weight", 0, "N", "(with --init) the path's weight, default 10 (0: read-only)"},
	{"max-storage", 0, "SIZE", "(with --init) the most sector data the path may hold, e.g. 2TiB"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt redeclare_opts[] = {
	CLI_OPT_REPO,
	{"drop-missing", 0, NULL, "drop index entries whose file is gone"},
	{NULL, 0, NULL, NULL},
};

static const cli_cmd attach_cmd = {
	.name = "attach",
	.summary = "Attach a storage path (with --init, create it first).",
	.usage = "PATH",
	.description = "A storage path holds sectors in unsealed/, sealed/ and cache/ and is\n"
		       "described by its sectorstore.json (a UUID, weight, whether it seals or\n"
		       "stores, a size limit), as Lotus writes it. Attaching lists it in the\n"
		       "store's storage.json (relative to the store when inside it) and declares\n"
		       "the sector files found in it. Example:\n"
		       "  cairn storage attach --init --seal --store /mnt/disk1",
	.opts = attach_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_attach,
};

static const cli_cmd list_cmd = {
	.name = "list",
	.summary = "List the storage paths with their space, reservations and sectors.",
	.description = "Capacity and available space come from the file system; available is\n"
		       "less what reservations of work in progress still need, and for a path\n"
		       "with a size limit, no more than the limit less what it uses.",
	.opts = repo_opts,
	.max_args = 0,
	.run = run_list,
};

static const cli_cmd detach_cmd = {
	.name = "detach",
	.summary = "Detach a storage path (by path or UUID); its files stay.",
	.usage = "PATH|ID",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_detach,
};

static const cli_cmd redeclare_cmd = {
	.name = "redeclare",
	.summary = "Scan storage paths again and declare the sector files they hold.",
	.usage = "[PATH|ID]",
	.opts = redeclare_opts,
	.min_args = 0,
	.max_args = 1,
	.run = run_redeclare,
};

static const cli_cmd *const storage_subs[] = {&attach_cmd, &detach_cmd, &list_cmd, &redeclare_cmd,
					      NULL};

const cli_cmd cli_storage_cmd = {
	.name = "storage",
	.summary = "Storage paths for sectors: attach, list, detach, redeclare.",
	.subs = storage_subs,
};
