/* cmd_chain.c: `cairn chain`: Filecoin chains in a CAR or the store;
 * export-range writes Lotus's ranged export of one, each block once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "daemon.h" /* cli_daemon_json_str */
#include "repo.h"

/* Cairn.ChainExportRange [[head CID...], tail height, config?]: Lotus's
 * ChainExportRangeInternal. The CAR is written on this side, in the store
 * directory under Lotus's name; the result gives its path. config:
 * {"NumWorkers", "IncludeMessages", "IncludeReceipts", "IncludeStateRoots"}.
 * One at a time: the block store (LMDB) is opened once in a process. */
int cli_chain_rpc_export_range(cairn_buf *result, const cairn_node *params, void *payload)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static const char *const flags[3] = {"IncludeMessages", "IncludeReceipts",
					     "IncludeStateRoots"};
	cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
	cairn_chain_range range = CAIRN_CHAIN_RANGE_INIT;
	const cairn_node *p = params->v.list.items, *cfg, *v;
	size_t np = params->v.list.len, nhead = 0;
	bool *want[3] = {&range.messages, &range.receipts, &range.stateroots};
	cli_repo *r = payload;
	cairn_export_stats st;
	cairn_store *store = NULL;
	cairn_cid head[64];
	int64_t height = 0;
	char name[128], path[4300];
	int rc;

	if (p[0].kind != CAIRN_KIND_LIST || !p[0].v.list.len || p[0].v.list.len > 64 ||
	    p[1].kind != CAIRN_KIND_INT || p[1].v.i.neg || p[1].v.i.mag > INT64_MAX ||
	    (np > 2 && p[2].kind != CAIRN_KIND_MAP && p[2].kind != CAIRN_KIND_NULL))
		return cairn_error_set(CAIRN_EINVAL, "params: [[headCid...], tailHeight, {NumWorkers, "
				       "IncludeMessages, IncludeReceipts, IncludeStateRoots}?]");
	for (size_t i = 0; i < p[0].v.list.len; i++, nhead++) {
		const cairn_node *c = &p[0].v.list.items[i];

		if (c->kind == CAIRN_KIND_LINK)
			head[nhead] = *c->v.link;
		else if (c->kind != CAIRN_KIND_STRING ||
			 cairn_cid_parse(&head[nhead], (const char *)c->v.bytes.ptr, c->v.bytes.len))
			return cairn_error_set(CAIRN_EINVAL, "params: head block %zu is not a CID", i);
	}
	range.tail = (int64_t)p[1].v.i.mag;
	cfg = np > 2 ? &p[2] : NULL;
	opts.workers = 1;
	if ((v = cairn_node_map_get(cfg, "NumWorkers")) &&
	    (v->kind != CAIRN_KIND_INT || v->v.i.neg || v->v.i.mag < 1 || v->v.i.mag > 256))
		return cairn_error_set(CAIRN_EINVAL, "params: NumWorkers must be 1 to 256");
	if (v)
		opts.workers = (unsigned)v->v.i.mag;
	for (int i = 0; i < 3; i++) {
		if ((v = cairn_node_map_get(cfg, flags[i])) && v->kind != CAIRN_KIND_BOOL)
			return cairn_error_set(CAIRN_EINVAL, "params: %s must be true or false",
					       flags[i]);
		*want[i] = v && v->v.b;
	}
	pthread_mutex_lock(&lock);
	if (!(rc = cli_repo_blocks_open(&store, r->path, false)) &&
	    !(rc = cairn_chain_tipset_height(&height, store, head, nhead))) {
		cairn_chain_snapshot_name(name, sizeof(name), range.tail, height, (int64_t)time(NULL));
		snprintf(path, sizeof(path), "%s/%s", r->path, name);
		rc = cairn_chain_export_range(&st, store, head, nhead, &range, &opts, path);
	}
	cairn_store_free(store);
	pthread_mutex_unlock(&lock);
	if (rc)
		return rc;
	cairn_buf_puts(result, "{\"Path\":");
	cli_daemon_json_str(result, path);
	cairn_buf_printf(result, ",\"Head\":%lld,\"Tail\":%lld,\"Blocks\":%llu,\"Bytes\":%llu}",
			 (long long)height, (long long)range.tail, (unsigned long long)st.blocks,
			 (unsigned long long)st.bytes);
	return result->err;
}

static const cli_opt export_range_opts[] = {
	{"head", 0, "CID[,CID...]", "the head tipset's blocks, in tipset order (required)"},
	{"tail", 0, "HEIGHT", "messages, receipts and state only above this height (default 0)"},
	{"messages", 0, NULL, "include the blocks' messages"},
	{"receipts", 0, NULL, "include the parent message receipts"},
	{"stateroots", 0, NULL, "include the parent state trees, complete"},
	{"workers", 'j', "N", "worker threads reading blocks (default 1, as Lotus)"},
	{"output", 'o', "OUT.car", "the CAR (default snapshot_<tail>_<head>_<unix time>.car)"},
	{"from", 'f', "CAR", "read the blocks from this CAR"},
	CLI_OPT_REPO,
	{"memory", 'm', "SIZE", "memory for the CIDs seen: two bits per block of an indexed CAR, the rest a set that spills to disk (default 256MiB)"},
	{"seen-by-cid", 0, NULL, "keep every CID seen in the spilling set, not as two bits per block (slower; to test the set)"},
	{"trusted", 0, NULL, "with --from: do not hash the blocks read against their CIDs"},
	{"no-mmap", 0, NULL, "with --from: read the CAR with pread, not from a mapping (slower; its pages then stay out of the RSS)"},
	{NULL, 0, NULL, NULL},
};

/* "CID,CID..." into at most `cap` CIDs. */
static int parse_head(cli_ctx *ctx, cairn_cid *head, size_t *n, size_t cap, const char *s)
{
	*n = 0;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);

		if (*n == cap)
			return cli_usage_error(ctx, "--head: %zu blocks at most", cap);
		if (cairn_cid_parse(&head[*n], s, len))
			return cli_usage_error(ctx, "--head: bad CID '%.*s': %s", (int)len, s,
					       cairn_error_last());
		(*n)++;
		s += len + (comma ? 1 : 0);
	}
	if (!*n)
		return cli_usage_error(ctx, "--head: a tipset of one or more block CIDs");
	return 0;
}

static int run_export_range(cli_ctx *ctx, const cli_args *args)
{
	const char *head_s = cli_opt_value(args, "head");
	const char *tail_s = cli_opt_value(args, "tail");
	const char *out = cli_opt_value(args, "output");
	cli_export_job job = {.what = "chain export-range", .opts = CAIRN_EXPORT_OPTIONS_INIT};
	cairn_chain_range range = CAIRN_CHAIN_RANGE_INIT;
	cairn_cid head[64];
	size_t nhead = 0;
	int64_t height = 0;
	char name[128], *end;
	int rc, status = CLI_OK;

	if (!head_s)
		return cli_usage_error(ctx, "--head CID[,CID...] is required");
	if ((rc = parse_head(ctx, head, &nhead, sizeof(head) / sizeof(head[0]), head_s)))
		return rc;
	if (tail_s) {
		long long v = strtoll(tail_s, &end, 10);

		if (!*tail_s || *end || v < 0)
			return cli_usage_error(ctx, "--tail must be a height (0 or more)");
		range.tail = v;
	}
	range.messages = cli_opt_flag(args, "messages");
	range.receipts = cli_opt_flag(args, "receipts");
	range.stateroots = cli_opt_flag(args, "stateroots");
	job.opts.workers = 1; /* as Lotus, not one per core as `cairn export` */
	if ((rc = cli_export_limits(ctx, &job.opts, args)) || (rc = cli_export_source_check(ctx, args)))
		return rc;
	if (cli_export_source_open(&job.store, args) ||
	    cairn_chain_tipset_height(&height, job.store, head, nhead)) {
		status = cli_fail(ctx, job.what);
		goto out;
	}
	if (range.tail > height) {
		status = cli_usage_error(ctx, "--tail %lld is above the head's height %lld",
					 (long long)range.tail, (long long)height);
		goto out;
	}
	if (!out) {
		cairn_chain_snapshot_name(name, sizeof(name), range.tail, height, (int64_t)time(NULL));
		out = name;
	}
	job.opts.links = cairn_chain_range_links;
	job.opts.links_payload = &range;
	cli_export_progress_start(&job.ui, &job.opts, "export-range", false);
	if ((status = cli_export_run(ctx, &job, head, nhead, out)))
		goto out;
	if (ctx->json) {
		fprintf(ctx->out, "{\"car\":");
		cli_json_string(ctx->out, out, strlen(out));
		fprintf(ctx->out, ",\"head\":%lld,\"tail\":%lld,\"blocks\":%llu,\"bytes\":%llu}\n",
			(long long)height, (long long)range.tail, (unsigned long long)job.stats.blocks,
			(unsigned long long)job.stats.bytes);
	} else {
		fprintf(ctx->out, "%s: %llu blocks, %llu bytes\n", out,
			(unsigned long long)job.stats.blocks, (unsigned long long)job.stats.bytes);
	}
out:
	cli_export_job_free(&job);
	return status;
}

static const cli_cmd export_range_cmd = {
	.name = "export-range",
	.summary = "Export a range of a Filecoin chain into a CAR, as lotus chain export-range.",
	.usage = "--head CID[,CID...] [--tail HEIGHT]",
	.description =
		"Walks the chain in the blocks of a CAR (--from) or of the store (--repo,\n"
		"$CAIRN_PATH) from the head tipset's headers down to genesis, with Lotus's\n"
		"rules: every header down to genesis; for blocks above the tail height,\n"
		"their messages (--messages), parent receipts (--receipts) and parent\n"
		"state tree (--stateroots), each walked completely; genesis's parent and\n"
		"state always. Links go only to CBOR, DAG-CBOR and raw blocks, never to\n"
		"identity CIDs; a block missing below the receipts is skipped.\n"
		"\n"
		"The CAR's roots are the head's blocks in the order given; it holds every\n"
		"block once, in the order the workers met them. It is written to\n"
		"OUT.car.partial and renamed when complete: on Ctrl-C or any failure there\n"
		"is no OUT.car. By default OUT.car is snapshot_<tail>_<head>_<unix time>.car\n"
		"in the current directory, Lotus's name.\n"
		"\n"
		"Examples:\n"
		"  cairn chain export-range --from chain.car --head bafy... --tail 1000 \\\n"
		"      --messages --receipts --stateroots --workers 2\n"
		"  cairn chain export-range --head bafy...,bafy... -o headers.car",
	.opts = export_range_opts,
	.min_args = 0,
	.max_args = 0,
	.run = run_export_range,
};

static const cli_cmd *const chain_subs[] = {&export_range_cmd, NULL};

const cli_cmd cli_chain_cmd = {
	.name = "chain",
	.summary = "Filecoin chains: export a range of one into a CAR.",
	.subs = chain_subs,
};
