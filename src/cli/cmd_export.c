/* cmd_export.c: `cairn export`: the DAG below one or more roots, from a CAR
 * or the store's blocks, into a CAR with every block once, on N workers. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "repo.h"

static const cli_opt export_opts[] = {
	{"root", 0, "CID[,CID...]", "the roots (also taken as arguments)"},
	{"output", 'o', "OUT.car", "the CAR to write (required); complete, or not there at all"},
	{"from", 'f', "CAR", "read the blocks from this CAR (CARv2 index, or one built on open)"},
	CLI_OPT_REPO,
	{"workers", 'j', "N", "worker threads reading blocks and scanning links (default: one per core)"},
	{"memory", 'm', "SIZE", "memory for the CIDs seen: two bits per block of an indexed CAR, the rest a set that spills to disk (default 256MiB)"},
	{"seen-by-cid", 0, NULL, "keep every CID seen in the spilling set, not as two bits per block (slower; to test the set)"},
	{"spill-dir", 0, "DIR", "where the set spills (default $TMPDIR, else /tmp)"},
	{"depth", 'd', "N", "follow links only N levels below the roots (0: the roots alone)"},
	{"codecs", 0, "LIST", "follow links only out of blocks of these codecs (default dag-pb,dag-cbor,dag-json)"},
	{"car-version", 0, "1|2", "1 (default, as Lotus writes) or 2 with a MultihashIndexSorted index"},
	{"trusted", 0, NULL, "with --from: do not hash the blocks read against their CIDs"},
	{"no-mmap", 0, NULL, "with --from: read the CAR with pread, not from a mapping (slower; its pages then stay out of the RSS, and with --seen-by-cid its index too)"},
	{NULL, 0, NULL, NULL},
};

/* --------------------------------------------- shared with export-range */

int cli_export_limits(cli_ctx *ctx, cairn_export_options *opts, const cli_args *args)
{
	const char *workers = cli_opt_value(args, "workers");
	const char *memory = cli_opt_value(args, "memory");
	char *end;

	if (workers) {
		unsigned long v = strtoul(workers, &end, 10);

		if (!*workers || *end || v < 1 || v > 256)
			return cli_usage_error(ctx, "--workers must be 1 to 256");
		opts->workers = (unsigned)v;
	}
	if (memory && (cli_parse_size(&opts->memory, memory) || opts->memory < (64u << 10)))
		return cli_usage_error(ctx, "--memory must be a size of 64KiB or more (e.g. 512MiB), not '%s'",
				       memory);
	opts->seen_by_cid = cli_opt_flag(args, "seen-by-cid");
	return CLI_OK;
}

int cli_export_source_check(cli_ctx *ctx, const cli_args *args)
{
	const char *from = cli_opt_value(args, "from");

	if (from && cli_opt_value(args, "repo"))
		return cli_usage_error(ctx, "--from and --repo together: read from one or the other");
	if (cli_opt_flag(args, "trusted") && !from)
		return cli_usage_error(ctx, "--trusted goes with --from CAR");
	if (cli_opt_flag(args, "no-mmap") && !from)
		return cli_usage_error(ctx, "--no-mmap goes with --from CAR");
	return CLI_OK;
}

int cli_export_source_open(cairn_store **out, const cli_args *args)
{
	const char *from = cli_opt_value(args, "from");
	cairn_car_options copts = CAIRN_CAR_OPTIONS_INIT;
	char repo[4096];
	int rc;

	if (from) {
		copts.trusted = cli_opt_flag(args, "trusted");
		copts.no_mmap = cli_opt_flag(args, "no-mmap");
		copts.huge_pages = true; /* a walk reads most of the CAR */
		return cairn_store_car_open(out, from, NULL, &copts);
	}
	if ((rc = cli_repo_path(repo, sizeof(repo), args)))
		return rc;
	return cli_repo_blocks_open(out, repo, false);
}

static void human_bytes(char *out, size_t cap, uint64_t n)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void on_progress(const cairn_export_stats *st, bool done, void *payload)
{
	cli_export_ui *ui = payload;
	char bytes[32];

	(void)done;
	/* The bar holds a pointer to the label: rewriting it relabels the bar. */
	if (ui->bytes) {
		human_bytes(bytes, sizeof(bytes), st->bytes);
		snprintf(ui->label, sizeof(ui->label), "%s [%s] blocks", ui->name, bytes);
	}
	cairn_progress_update(&ui->progress, st->blocks);
}

void cli_export_progress_start(cli_export_ui *ui, cairn_export_options *opts, const char *name,
			       bool bytes)
{
	memset(ui, 0, sizeof(*ui));
	ui->name = name;
	ui->bytes = bytes;
	if (bytes)
		snprintf(ui->label, sizeof(ui->label), "%s [0 B] blocks", name);
	else
		snprintf(ui->label, sizeof(ui->label), "%s blocks", name);
	cairn_progress_start(&ui->progress, STDERR_FILENO, false, ui->label, 0);
	opts->progress = on_progress;
	opts->payload = ui;
}

/* The export SIGINT and SIGTERM cancel; the handler only sets its flag. */
static cairn_export *volatile running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		cairn_export_cancel(running);
}

int cli_export_run(cli_ctx *ctx, cli_export_job *job, const cairn_cid *roots, size_t nroots,
		   const char *path)
{
	struct sigaction sa, old_int, old_term;
	cairn_export *ex = NULL;
	int rc, status = CLI_OK;

	if (cairn_export_new(&ex, job->store, &job->opts))
		return cli_fail(ctx, job->what);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	running = ex;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	rc = cairn_export_run(&job->stats, ex, roots, nroots, path);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	running = NULL;
	cairn_progress_finish(&job->ui.progress);
	if (rc)
		status = cli_fail(ctx, path);
	cairn_export_free(ex);
	return status;
}

void cli_export_job_free(cli_export_job *job)
{
	cairn_store_free(job->store);
	job->store = NULL;
}

/* ---------------------------------------------------------------- export */

static int add_roots(cli_ctx *ctx, cairn_cid **roots, size_t *n, size_t *cap, const char *s,
		     size_t len)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		cairn_cid *p = cairn_realloc(*roots, c * sizeof(cairn_cid));

		if (!p)
			return cli_fail(ctx, "export");
		*roots = p;
		*cap = c;
	}
	if (cairn_cid_parse(&(*roots)[*n], s, len))
		return cli_usage_error(ctx, "bad root CID '%.*s': %s", (int)len, s, cairn_error_last());
	(*n)++;
	return 0;
}

static int parse_codecs(cli_ctx *ctx, uint64_t *codecs, size_t *n, const char *list)
{
	const char *p = list;

	*n = 0;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char name[64];

		if (!len || len >= sizeof(name) || *n == 16)
			return cli_usage_error(ctx, "--codecs: a comma-separated list of codec names");
		memcpy(name, p, len);
		name[len] = '\0';
		if (cairn_codec_from_name(&codecs[*n], name))
			return cli_usage_error(ctx, "--codecs: unknown codec '%s'", name);
		if (codecs[*n] != CAIRN_CODEC_DAG_PB && codecs[*n] != CAIRN_CODEC_DAG_CBOR &&
		    codecs[*n] != CAIRN_CODEC_DAG_JSON && codecs[*n] != CAIRN_CODEC_RAW)
			return cli_usage_error(ctx, "--codecs: cairn cannot read the links of %s "
					       "(dag-pb, dag-cbor, dag-json or raw)", name);
		(*n)++;
		p += len + (comma ? 1 : 0);
	}
	if (!*n)
		return cli_usage_error(ctx, "--codecs: a comma-separated list of codec names");
	return 0;
}

static int run_export(cli_ctx *ctx, const cli_args *args)
{
	const char *out = cli_opt_value(args, "output");
	const char *root_s = cli_opt_value(args, "root");
	const char *depth = cli_opt_value(args, "depth");
	const char *codecs_s = cli_opt_value(args, "codecs");
	const char *version = cli_opt_value(args, "car-version");
	cli_export_job job = {.what = "export", .opts = CAIRN_EXPORT_OPTIONS_INIT};
	cairn_cid *roots = NULL;
	uint64_t codecs[16];
	size_t nroots = 0, cap = 0, ncodecs;
	char *end;
	int rc, status = CLI_OK;

	if (!out)
		return cli_usage_error(ctx, "--output OUT.car is required");
	if ((rc = cli_export_source_check(ctx, args)) || (rc = cli_export_limits(ctx, &job.opts, args)))
		return rc;
	if (depth) {
		unsigned long v = strtoul(depth, &end, 10);

		if (!*depth || *end || v > 1000000000ul)
			return cli_usage_error(ctx, "--depth must be a number of levels");
		job.opts.max_depth = (int32_t)v;
	}
	if (codecs_s) {
		if ((rc = parse_codecs(ctx, codecs, &ncodecs, codecs_s)))
			return rc;
		job.opts.codecs = codecs;
		job.opts.ncodecs = ncodecs;
	}
	if (version) {
		if (strcmp(version, "1") && strcmp(version, "2"))
			return cli_usage_error(ctx, "--car-version must be 1 or 2");
		job.opts.car_version = (unsigned)(version[0] - '0');
	}
	job.opts.spill_dir = cli_opt_value(args, "spill-dir");
	for (const char *p = root_s; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if ((status = add_roots(ctx, &roots, &nroots, &cap, p, len)))
			goto out;
		p += len + (comma ? 1 : 0);
	}
	for (int i = 0; i < args->argc; i++)
		if ((status = add_roots(ctx, &roots, &nroots, &cap, args->argv[i],
					strlen(args->argv[i]))))
			goto out;
	if (!nroots) {
		status = cli_usage_error(ctx, "no roots: give --root CID or CID arguments");
		goto out;
	}
	if (cli_export_source_open(&job.store, args)) {
		status = cli_fail(ctx, job.what);
		goto out;
	}
	cli_export_progress_start(&job.ui, &job.opts, "export", true);
	if ((status = cli_export_run(ctx, &job, roots, nroots, out)))
		goto out;
	if (ctx->json) {
		fprintf(ctx->out, "{\"car\":");
		cli_json_string(ctx->out, out, strlen(out));
		fprintf(ctx->out, ",\"roots\":%zu,\"blocks\":%llu,\"bytes\":%llu,\"identity\":%llu,"
			"\"links\":%llu,\"reads\":%llu,\"by_position\":%llu,\"seen_spilled\":%llu,"
			"\"spills\":%llu,\"disk_checks\":%llu}\n", nroots,
			(unsigned long long)job.stats.blocks,
			(unsigned long long)job.stats.bytes, (unsigned long long)job.stats.identity,
			(unsigned long long)job.stats.links, (unsigned long long)job.stats.reads,
			(unsigned long long)job.stats.by_position,
			(unsigned long long)job.stats.seen_spilled,
			(unsigned long long)job.stats.spills,
			(unsigned long long)job.stats.disk_checks);
	} else {
		fprintf(ctx->out, "%llu blocks, %llu bytes\n", (unsigned long long)job.stats.blocks,
			(unsigned long long)job.stats.bytes);
	}
out:
	cli_export_job_free(&job);
	cairn_free(roots);
	return status;
}

const cli_cmd cli_export_cmd = {
	.name = "export",
	.summary = "Export the DAG below one or more roots into a CAR, each block once, in parallel.",
	.usage = "[CID...]",
	.description =
		"Walks the DAG below the roots in the blocks of a CAR (--from) or of the\n"
		"store (--repo, $CAIRN_PATH), on --workers threads, and writes every block\n"
		"reached exactly once into OUT.car, whose header names the roots in the\n"
		"order given. Identity CIDs are followed but not written. Blocks are in\n"
		"the order the workers met them, not depth-first order.\n"
		"\n"
		"Memory stays bounded: what has been seen takes --memory bytes. From an\n"
		"indexed CAR (a CARv2, or a CARv1 indexed on open) that is two bits per\n"
		"block; the CIDs it cannot number go to a set that spills sorted runs\n"
		"to an unlinked file (--spill-dir) past the budget, so a DAG of any\n"
		"size can be exported. The CAR is written to OUT.car.partial and renamed\n"
		"when complete and synced: on Ctrl-C or any failure there is no OUT.car,\n"
		"and a file that was there before is left as it was.\n"
		"\n"
		"Prints the blocks and bytes written (--json: with the links scanned, the\n"
		"blocks read, those claimed by position, and the seen-set's CIDs spilled,\n"
		"runs and disk lookups).\n"
		"\n"
		"Examples:\n"
		"  cairn export --from deal.car --root bafy... -o dag.car\n"
		"  cairn export bafy... bafy... --workers 2 --memory 128MiB -o out.car\n"
		"  cairn export --from chain.car --depth 1 --root bafy... -o top.car",
	.opts = export_opts,
	.min_args = 0,
	.max_args = -1,
	.run = run_export,
};
