/* cmd_dagstore.c: `cairn dagstore`: register, index, recover, destroy and
 * look into the shards of the DAG store, as `lotus-miner dagstore` does. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "repo.h"

/* import-deals registers this many shards per transaction: a kill loses at
 * most one batch, which the next run registers again. */
#define IMPORT_BATCH 10000
/* Through the daemon, a batch is also bounded by the size of its request
 * (the daemon takes 1 MiB at most). */
#define IMPORT_RPC_BYTES (512 * 1024)

static const cli_opt repo_opts[] = {
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

/* A shard as the daemon's Cairn.* methods give it, for print_info. */
static int info_from(cairn_shard_info *in, cli_daemon *d, const cairn_node *o)
{
	static const cairn_shard_state states[] = {
		CAIRN_SHARD_NEW, CAIRN_SHARD_INITIALIZING, CAIRN_SHARD_AVAILABLE,
		CAIRN_SHARD_SERVING, CAIRN_SHARD_RECOVERING, CAIRN_SHARD_ERRORED,
	};
	const char *state;

	memset(in, 0, sizeof(*in));
	if (!o || o->kind != CAIRN_KIND_MAP || !(in->key = (char *)cli_daemon_str(d, o, "Key")) ||
	    !(in->url = (char *)cli_daemon_str(d, o, "URL")) ||
	    !(state = cli_daemon_str(d, o, "State")))
		return cairn_error_set(CAIRN_EIO, "the daemon's shard info is not what cairn sends");
	in->error = (char *)cli_daemon_str(d, o, "Error");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (!strcmp(state, cairn_shard_state_name(states[i])))
			in->state = states[i];
	in->blocks = cli_daemon_uint(o, "Blocks");
	in->data_size = cli_daemon_uint(o, "DataSize");
	in->index_size = cli_daemon_uint(o, "IndexSize");
	in->refs = (unsigned)cli_daemon_uint(o, "Refs");
	in->indexed_at = (int64_t)cli_daemon_uint(o, "IndexedAt");
	return 0;
}

/* params: ["<a>"] */
static int call1(const cairn_node **res, cli_daemon *d, const char *method, const char *a)
{
	cairn_buf p = CAIRN_BUF_INIT;
	int rc;

	cairn_buf_putc(&p, '[');
	cli_daemon_json_str(&p, a);
	cairn_buf_putc(&p, ']');
	rc = p.err ? p.err : cli_daemon_call(res, d, method, (const char *)p.data);
	cairn_buf_free(&p);
	return rc;
}

/* A path becomes a file:// URL (absolute), so `register-shard K piece.car`
 * does what one means. */
static int to_url(cairn_buf *out, const char *arg)
{
	if (!*arg)
		return cairn_error_set(CAIRN_EINVAL, "an empty path or URL");
	if (strstr(arg, "://"))
		return cairn_buf_puts(out, arg) ? CAIRN_ENOMEM : 0;
	if (arg[0] != '/') {
		char cwd[4096];

		if (!getcwd(cwd, sizeof(cwd)))
			return cairn_error_set(CAIRN_EIO, "getcwd failed");
		cairn_buf b = {0};
		int rc;

		cairn_buf_printf(&b, "%s/%s", cwd, arg);
		cairn_buf_putc(&b, 0);
		rc = b.err ? b.err : cairn_mount_file_url(out, (const char *)b.data);
		cairn_buf_free(&b);
		return rc;
	}
	return cairn_mount_file_url(out, arg);
}

static void print_info(cli_ctx *ctx, const cairn_shard_info *in)
{
	if (ctx->json) {
		fputs("{\"key\":", ctx->out);
		cli_json_string(ctx->out, in->key, strlen(in->key));
		fputs(",\"url\":", ctx->out);
		cli_json_string(ctx->out, in->url, strlen(in->url));
		fprintf(ctx->out, ",\"state\":\"%s\",\"error\":", cairn_shard_state_name(in->state));
		if (in->error)
			cli_json_string(ctx->out, in->error, strlen(in->error));
		else
			fputs("null", ctx->out);
		fprintf(ctx->out, ",\"blocks\":%llu,\"data_size\":%llu,\"index_size\":%llu,"
			"\"refs\":%u,\"indexed_at\":%lld}\n", (unsigned long long)in->blocks,
			(unsigned long long)in->data_size, (unsigned long long)in->index_size,
			in->refs, (long long)in->indexed_at);
		return;
	}
	fprintf(ctx->out, "%-64s %-12s %s\n", in->key, cairn_shard_state_name(in->state),
		in->error ? in->error : "");
}

/* ------------------------------------------------------ register-shard */

static int print_register(cli_ctx *ctx, const char *key, bool added)
{
	if (ctx->json)
		fprintf(ctx->out, "{\"key\":\"%s\",\"added\":%s}\n", key, added ? "true" : "false");
	else
		fprintf(ctx->out, "%s: %s\n", key, added ? "registered" : "already registered");
	return CLI_OK;
}

static int do_register(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	cairn_buf url = {0};
	cairn_shard_spec spec;
	size_t added;
	int rc;

	if (to_url(&url, args->argv[1]) || cairn_buf_putc(&url, 0)) {
		cairn_buf_free(&url);
		return cli_fail(ctx, "dagstore register-shard");
	}
	spec.key = args->argv[0];
	spec.url = (const char *)url.data;
	rc = cairn_dagstore_register(r->dagstore, &spec, 1, &added);
	if (!rc && cli_opt_flag(args, "initialize"))
		rc = cairn_dagstore_initialize(r->dagstore, spec.key);
	cairn_buf_free(&url);
	if (rc)
		return cli_fail(ctx, "dagstore register-shard");
	return print_register(ctx, spec.key, added);
}

static int do_register_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_buf url = CAIRN_BUF_INIT, p = CAIRN_BUF_INIT;
	const cairn_node *res, *added;
	int rc;

	if (!(rc = to_url(&url, args->argv[1])) && !(rc = cairn_buf_putc(&url, 0))) {
		cairn_buf_putc(&p, '[');
		cli_daemon_json_str(&p, args->argv[0]);
		cairn_buf_putc(&p, ',');
		cli_daemon_json_str(&p, (const char *)url.data);
		cairn_buf_printf(&p, ",%s]", cli_opt_flag(args, "initialize") ? "true" : "false");
		rc = p.err ? p.err : cli_daemon_call(&res, d, "Cairn.DagstoreRegisterShard",
						     (const char *)p.data);
	}
	cairn_buf_free(&url);
	cairn_buf_free(&p);
	if (rc)
		return cli_fail(ctx, "dagstore register-shard");
	added = cairn_node_map_get(res, "Added");
	return print_register(ctx, args->argv[0], added && added->kind == CAIRN_KIND_BOOL && added->v.b);
}

static int run_register(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "dagstore register-shard", do_register, do_register_rpc);
}

static const cli_opt register_opts[] = {
	CLI_OPT_REPO,
	{"initialize", 'i', NULL, "index it now (default: on first acquire, or initialize-all)"},
	{NULL, 0, NULL, NULL},
};

static const cli_cmd register_cmd = {
	.name = "register-shard",
	.summary = "Register a shard: a key (the piece CID) and where its CAR is.",
	.usage = "KEY URL|PATH",
	.description = "The shard starts New and is indexed lazily, on first acquire, or by\n"
		       "initialize-shard / initialize-all. URL: file:///abs/path.car,\n"
		       "http(s)://host/piece.car (ranged reads), or a local path. Registering\n"
		       "a key again with the same URL changes nothing. Example:\n"
		       "  cairn dagstore register-shard baga6ea4seaq... /data/pieces/p1.car",
	.opts = register_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_register,
};

/* --------------------------------------- initialize, recover, destroy */

/* A command that does one thing to the shard named by its one argument:
 * `fn` on the store, or `method` through the daemon. */
typedef struct key_cmd {
	const char *what;
	int (*fn)(cairn_dagstore *ds, const char *key);
	const char *method;
	/* what it prints: `show`, else "KEY: <done>" ({"key":KEY,<json>}) */
	void (*show)(cli_ctx *ctx, cli_store *s, const char *key, const cairn_node *res);
	const char *done;
	const char *json;
} key_cmd;

static int run_key(cli_ctx *ctx, const cli_args *args, const key_cmd *kc)
{
	const char *key = args->argv[0];
	const cairn_node *res = NULL;
	cli_store s;
	int rc = CLI_OK;

	if (cli_store_open(&s, ctx, args, kc->what, CLI_STORE_OPEN))
		return CLI_FAILED;
	if (s.remote ? call1(&res, &s.d, kc->method, key) : kc->fn(s.r.dagstore, key))
		rc = cli_fail(ctx, kc->what);
	else if (kc->show)
		kc->show(ctx, &s, key, res);
	else if (ctx->json)
		fprintf(ctx->out, "{\"key\":\"%s\",%s}\n", key, kc->json);
	else
		fprintf(ctx->out, "%s: %s\n", key, kc->done);
	cli_store_close(&s);
	return rc;
}

/* The shard as initialize left it; nothing when it cannot be read. */
static void show_initialized(cli_ctx *ctx, cli_store *s, const char *key, const cairn_node *res)
{
	cairn_shard_info in;

	if (s->remote ? info_from(&in, &s->d, res) : cairn_dagstore_info(&in, s->r.dagstore, key))
		return;
	if (ctx->json)
		print_info(ctx, &in);
	else
		fprintf(ctx->out, "%s: Available, %llu blocks\n", in.key, (unsigned long long)in.blocks);
	if (!s->remote) /* from the daemon, the strings are in its arena */
		cairn_shard_info_clear(&in);
}

static const key_cmd initialize_key = {
	"dagstore initialize-shard", cairn_dagstore_initialize, "Cairn.DagstoreInitializeShard",
	show_initialized, NULL, NULL,
};
static const key_cmd recover_key = {
	"dagstore recover-shard", cairn_dagstore_recover, "Cairn.DagstoreRecoverShard",
	NULL, "Available", "\"state\":\"Available\"",
};
static const key_cmd destroy_key = {
	"dagstore destroy-shard", cairn_dagstore_destroy, "Cairn.DagstoreDestroyShard",
	NULL, "destroyed", "\"destroyed\":true",
};

static int run_initialize(cli_ctx *ctx, const cli_args *args)
{
	return run_key(ctx, args, &initialize_key);
}

static int run_recover(cli_ctx *ctx, const cli_args *args)
{
	return run_key(ctx, args, &recover_key);
}

static int run_destroy(cli_ctx *ctx, const cli_args *args)
{
	return run_key(ctx, args, &destroy_key);
}

static const cli_cmd initialize_cmd = {
	.name = "initialize-shard",
	.summary = "Fetch and index one shard now.",
	.usage = "KEY",
	.description = "Reads the shard's CAR through its mount, hashing every block, writes its\n"
		       "CARv2 index and adds its blocks to the top-level index. A shard that\n"
		       "fails ends Errored with the reason (see list-shards).",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_initialize,
};

static const cli_cmd recover_cmd = {
	.name = "recover-shard",
	.summary = "Rebuild an Errored shard's index.",
	.usage = "KEY",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_recover,
};

static const cli_cmd destroy_cmd = {
	.name = "destroy-shard",
	.summary = "Remove a shard, its index and its top-level entries.",
	.usage = "KEY",
	.description = "The shard's CAR itself is not touched.",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_destroy,
};

/* ------------------------------------------------------ initialize-all */

typedef struct all_state {
	cli_ctx *ctx;
	cairn_progress bar;
	uint64_t started_ns;
} all_state;

static void on_shard(const cairn_dagstore_progress *p, void *payload)
{
	all_state *st = payload;

	if (p->result) {
		/* The reason is on the shard; say it here too, as it happens. */
		if (st->bar.active)
			fputs("\r\033[K", stderr);
		fprintf(st->ctx->err, "%s: Errored: %s\n", p->key, cairn_error_last());
	}
	cairn_progress_update(&st->bar, p->done);
}

static int parse_concurrency(cli_ctx *ctx, const cli_args *args, unsigned *n)
{
	const char *conc = cli_opt_value(args, "concurrency");

	*n = 0;
	if (conc) {
		char *end;
		unsigned long v = strtoul(conc, &end, 10);

		if (!*conc || *end || v > 64)
			return cli_usage_error(ctx, "--concurrency must be 0 to 64 (0: one per core)");
		*n = (unsigned)v;
	}
	return CLI_OK;
}

static int all_summary(cli_ctx *ctx, const cairn_dagstore_progress *pp, uint64_t started_ns)
{
	cairn_dagstore_progress p = *pp;
	double secs = (double)(cairn_time_ns() - started_ns) / 1e9;

	if (ctx->json)
		fprintf(ctx->out, "{\"shards\":%llu,\"available\":%llu,\"errored\":%llu,"
			"\"blocks\":%llu,\"seconds\":%.3f}\n", (unsigned long long)p.total,
			(unsigned long long)(p.done - p.failed), (unsigned long long)p.failed,
			(unsigned long long)p.blocks, secs);
	else
		fprintf(ctx->out, "%llu shards: %llu Available, %llu Errored; %llu blocks, "
			"%.0f blocks/s\n", (unsigned long long)p.total,
			(unsigned long long)(p.done - p.failed), (unsigned long long)p.failed,
			(unsigned long long)p.blocks, secs > 0 ? (double)p.blocks / secs : 0.0);
	return p.failed ? CLI_FAILED : CLI_OK;
}

static int do_initialize_all(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	cairn_dagstore_progress p;
	all_state st = {ctx, {0}, cairn_time_ns()};
	unsigned n;
	int rc;

	if ((rc = parse_concurrency(ctx, args, &n)))
		return rc;
	cairn_progress_start(&st.bar, STDERR_FILENO, false, "shards", 0);
	if (cairn_dagstore_initialize_all(r->dagstore, n, on_shard, &st, &p)) {
		cairn_progress_finish(&st.bar);
		return cli_fail(ctx, "dagstore initialize-all");
	}
	cairn_progress_finish(&st.bar);
	return all_summary(ctx, &p, st.started_ns);
}

/* Through the daemon: one call that returns when every shard is done,
 * with the failures, printed then (no progress bar). */
static int do_initialize_all_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_dagstore_progress p = {0};
	uint64_t started = cairn_time_ns();
	const cairn_node *res, *fails;
	char params[32];
	unsigned n;
	int rc;

	if ((rc = parse_concurrency(ctx, args, &n)))
		return rc;
	snprintf(params, sizeof(params), "[%u]", n);
	if (cli_daemon_call(&res, d, "Cairn.DagstoreInitializeAll", params))
		return cli_fail(ctx, "dagstore initialize-all");
	fails = cairn_node_map_get(res, "Failures");
	for (size_t i = 0; fails && fails->kind == CAIRN_KIND_LIST && i < fails->v.list.len; i++) {
		const cairn_node *f = &fails->v.list.items[i];
		const char *key = cli_daemon_str(d, f, "Key"), *err = cli_daemon_str(d, f, "Error");

		fprintf(ctx->err, "%s: Errored: %s\n", key ? key : "?", err ? err : "");
	}
	p.total = cli_daemon_uint(res, "Total");
	p.done = cli_daemon_uint(res, "Done");
	p.failed = cli_daemon_uint(res, "Failed");
	p.blocks = cli_daemon_uint(res, "Blocks");
	return all_summary(ctx, &p, started);
}

static int run_initialize_all(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "dagstore initialize-all", do_initialize_all, do_initialize_all_rpc);
}

static const cli_opt all_opts[] = {
	CLI_OPT_REPO,
	{"concurrency", 'c', "N", "shards indexed at once (default: one per core)"},
	{NULL, 0, NULL, NULL},
};

static const cli_cmd initialize_all_cmd = {
	.name = "initialize-all",
	.summary = "Index every New shard, several at once.",
	.description = "Prints each failure as it happens (the shard ends Errored with the\n"
		       "reason) and a summary; exits 1 if any shard failed. Killed midway,\n"
		       "the next command that opens the store resumes the shards it was\n"
		       "indexing, and initialize-all takes up the rest.",
	.opts = all_opts,
	.max_args = 0,
	.run = run_initialize_all,
};

/* ---------------------------------------------------------- list, info */

static int list_one(const cairn_shard_info *in, void *payload)
{
	print_info(payload, in);
	return 0;
}

static void list_header(cli_ctx *ctx)
{
	if (!ctx->json)
		fprintf(ctx->out, "%-64s %-12s %s\n", "KEY", "STATE", "ERROR");
}

static int do_list(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	(void)args;
	list_header(ctx);
	if (cairn_dagstore_list(r->dagstore, list_one, ctx))
		return cli_fail(ctx, "dagstore list-shards");
	return CLI_OK;
}

static int do_list_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res;
	cairn_shard_info in;

	(void)args;
	if (cli_daemon_call(&res, d, "Cairn.DagstoreListShards", "[]"))
		return cli_fail(ctx, "dagstore list-shards");
	list_header(ctx);
	for (size_t i = 0; res->kind == CAIRN_KIND_LIST && i < res->v.list.len; i++) {
		if (info_from(&in, d, &res->v.list.items[i]))
			return cli_fail(ctx, "dagstore list-shards");
		print_info(ctx, &in);
	}
	return CLI_OK;
}

static int run_list(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "dagstore list-shards", do_list, do_list_rpc);
}

static const cli_cmd list_cmd = {
	.name = "list-shards",
	.summary = "List the shards with their states and errors.",
	.description = "With --json, one object per line (key, url, state, error, blocks,\n"
		       "data_size, index_size, refs, indexed_at).",
	.opts = repo_opts,
	.max_args = 0,
	.run = run_list,
};

/* ------------------------------------------------------------------ gc */

static int print_gc(cli_ctx *ctx, const cairn_dagstore_gc_stats *pgs)
{
	cairn_dagstore_gc_stats gs = *pgs;

	if (ctx->json)
		fprintf(ctx->out, "{\"transients_removed\":%llu,\"bytes_freed\":%llu,"
			"\"orphans_removed\":%llu}\n", (unsigned long long)gs.transients_removed,
			(unsigned long long)gs.bytes_freed, (unsigned long long)gs.orphans_removed);
	else
		fprintf(ctx->out, "removed %llu transients (%llu bytes) and %llu orphan index files\n",
			(unsigned long long)gs.transients_removed, (unsigned long long)gs.bytes_freed,
			(unsigned long long)gs.orphans_removed);
	return CLI_OK;
}

static int do_gc(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	cairn_dagstore_gc_stats gs;

	(void)args;
	if (cairn_dagstore_gc(r->dagstore, &gs))
		return cli_fail(ctx, "dagstore gc");
	return print_gc(ctx, &gs);
}

static int do_gc_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_dagstore_gc_stats gs;
	const cairn_node *res;

	(void)args;
	if (cli_daemon_call(&res, d, "Cairn.DagstoreGC", "[]"))
		return cli_fail(ctx, "dagstore gc");
	gs.transients_removed = cli_daemon_uint(res, "TransientsRemoved");
	gs.bytes_freed = cli_daemon_uint(res, "BytesFreed");
	gs.orphans_removed = cli_daemon_uint(res, "OrphansRemoved");
	return print_gc(ctx, &gs);
}

static int run_gc(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "dagstore gc", do_gc, do_gc_rpc);
}

static const cli_cmd gc_cmd = {
	.name = "gc",
	.summary = "Remove unused transient copies and orphan files; merge the top-level index.",
	.opts = repo_opts,
	.max_args = 0,
	.run = run_gc,
};

/* ------------------------------------------------ lookup-pieces, get-block */

static int parse_cid(cli_ctx *ctx, cairn_cid *cid, const char *s)
{
	if (cairn_cid_parse(cid, s, strlen(s)))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	return 0;
}

/* params: [{"/": "<cid>"}] */
static int call_cid(const cairn_node **res, cli_daemon *d, const char *method, const char *cid)
{
	char params[CAIRN_CID_MAX_STRING + 16];

	snprintf(params, sizeof(params), "[{\"/\":\"%s\"}]", cid);
	return cli_daemon_call(res, d, method, params);
}

/* After a lookup that printed `n` shards (negative: it failed). */
static int lookup_end(cli_ctx *ctx, const char *cid, int n)
{
	if (n < 0)
		return cli_fail(ctx, "dagstore lookup-pieces");
	if (!n) {
		fprintf(ctx->err, "cairn: dagstore lookup-pieces: no Available shard holds %s\n", cid);
		return CLI_FAILED;
	}
	return CLI_OK;
}

static int do_lookup(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	cairn_cid cid;

	if (parse_cid(ctx, &cid, args->argv[0]))
		return CLI_USAGE;
	return lookup_end(ctx, args->argv[0], cairn_dagstore_lookup(r->dagstore, &cid, list_one, ctx));
}

static int do_lookup_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res;
	cairn_shard_info in;
	cairn_cid cid;
	int n = 0;

	if (parse_cid(ctx, &cid, args->argv[0]))
		return CLI_USAGE;
	if (call_cid(&res, d, "Cairn.DagstoreLookupPieces", args->argv[0]))
		return lookup_end(ctx, args->argv[0], -1);
	for (size_t i = 0; res->kind == CAIRN_KIND_LIST && i < res->v.list.len; i++, n++) {
		if (info_from(&in, d, &res->v.list.items[i]))
			return lookup_end(ctx, args->argv[0], -1);
		print_info(ctx, &in);
	}
	return lookup_end(ctx, args->argv[0], n);
}

static int run_lookup(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "dagstore lookup-pieces", do_lookup, do_lookup_rpc);
}

static const cli_cmd lookup_cmd = {
	.name = "lookup-pieces",
	.summary = "The shards (pieces) holding a block, through the top-level index.",
	.usage = "CID",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_lookup,
};

/* Writes the block to --output or standard output; takes `b`. */
static int write_block(cli_ctx *ctx, const cli_args *args, cairn_buf *b, const char *key)
{
	const char *out = cli_opt_value(args, "output");
	FILE *f = ctx->out;
	int rc = CLI_OK;

	if (out && !(f = fopen(out, "wb"))) {
		cairn_buf_free(b);
		cairn_error_set(CAIRN_EIO, "%s: cannot create", out);
		return cli_fail(ctx, "dagstore get-block");
	}
	if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
		rc = CLI_FAILED;
	if (out && fclose(f))
		rc = CLI_FAILED;
	cairn_log(CAIRN_LOG_INFO, "%s: %zu bytes from shard %s", args->argv[0], b->len, key);
	cairn_buf_free(b);
	return rc;
}

static int do_get(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	char key[CAIRN_SHARD_KEY_MAX];
	cairn_buf b = {0};
	cairn_cid cid;

	if (parse_cid(ctx, &cid, args->argv[0]))
		return CLI_USAGE;
	if (cairn_dagstore_get(r->dagstore, &b, &cid, key)) {
		cairn_buf_free(&b);
		return cli_fail(ctx, "dagstore get-block");
	}
	return write_block(ctx, args, &b, key);
}

static int do_get_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const char *key, *data;
	const cairn_node *res;
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid cid;
	size_t n;

	if (parse_cid(ctx, &cid, args->argv[0]))
		return CLI_USAGE;
	if (call_cid(&res, d, "Cairn.DagstoreGetBlock", args->argv[0]))
		return cli_fail(ctx, "dagstore get-block");
	key = cli_daemon_str(d, res, "Key");
	data = cli_daemon_str(d, res, "Data");
	n = data ? strlen(data) : 0;
	while (n && data[n - 1] == '=')
		n--;
	if (!data || cairn_base_decode(&b, CAIRN_BASE64, data, n)) {
		cairn_buf_free(&b);
		cairn_error_set(CAIRN_EIO, "the daemon's block is not base64");
		return cli_fail(ctx, "dagstore get-block");
	}
	return write_block(ctx, args, &b, key ? key : "?");
}

static int run_get(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "dagstore get-block", do_get, do_get_rpc);
}

static const cli_opt get_opts[] = {
	CLI_OPT_REPO,
	{"output", 'o', "FILE", "write the block here (default: standard output)"},
	{NULL, 0, NULL, NULL},
};

static const cli_cmd get_cmd = {
	.name = "get-block",
	.summary = "A block's bytes, found through the top-level index and hashed.",
	.usage = "CID",
	.opts = get_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_get,
};

/* -------------------------------------------------------- import-deals */

/* One deal of a list: "KEY URL" per line (tab or spaces), or a JSON array of
 * objects with "key" (or "PieceCID", "piece_cid") and "url" (or "path"). */
typedef struct deal_list {
	char **keys;
	char **urls;
	size_t n, cap;
} deal_list;

static int deal_add(deal_list *l, const char *key, size_t klen, const char *url, size_t ulen)
{
	cairn_buf u = {0};
	char *k, *tmp;
	int rc;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 1024;
		char **a = cairn_realloc(l->keys, ncap * sizeof(char *));

		if (!a)
			return CAIRN_ENOMEM;
		l->keys = a;
		if (!(a = cairn_realloc(l->urls, ncap * sizeof(char *))))
			return CAIRN_ENOMEM;
		l->urls = a;
		l->cap = ncap;
	}
	if (!(tmp = cairn_strndup(url, ulen)))
		return CAIRN_ENOMEM;
	rc = to_url(&u, tmp);
	cairn_free(tmp);
	if (rc || cairn_buf_putc(&u, 0) || !(k = cairn_strndup(key, klen))) {
		cairn_buf_free(&u);
		return rc ? rc : CAIRN_ENOMEM;
	}
	l->keys[l->n] = k;
	l->urls[l->n] = (char *)cairn_buf_detach(&u, NULL);
	l->n++;
	return 0;
}

static void deal_list_free(deal_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		cairn_free(l->keys[i]);
		cairn_free(l->urls[i]);
	}
	cairn_free(l->keys);
	cairn_free(l->urls);
}

static const cairn_node *first_of(const cairn_node *map, const char *const *names)
{
	for (; *names; names++) {
		const cairn_node *v = cairn_node_map_get(map, *names);

		if (v)
			return v;
	}
	return NULL;
}

static int parse_json_deals(deal_list *l, const char *path, const cairn_buf *text)
{
	static const char *const key_names[] = {"key", "PieceCID", "piece_cid", "pieceCid", NULL};
	static const char *const url_names[] = {"url", "path", "URL", NULL};
	cairn_arena *arena;
	cairn_node *root;
	int rc;

	if ((rc = cairn_arena_new(&arena)))
		return rc;
	if ((rc = cairn_dagjson_decode(&root, arena, text->data, text->len))) {
		cairn_error_prefix("%s: ", path);
		goto out;
	}
	if (root->kind != CAIRN_KIND_LIST) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: expected a JSON array of deals", path);
		goto out;
	}
	for (size_t i = 0; i < root->v.list.len && !rc; i++) {
		const cairn_node *d = &root->v.list.items[i], *k = NULL, *u = NULL;
		char cid[CAIRN_CID_MAX_STRING];

		if (d->kind == CAIRN_KIND_MAP) {
			k = first_of(d, key_names);
			u = first_of(d, url_names);
		}
		if (!k || !u || u->kind != CAIRN_KIND_STRING ||
		    (k->kind != CAIRN_KIND_STRING && k->kind != CAIRN_KIND_LINK)) {
			rc = cairn_error_set(CAIRN_ECORRUPT,
					     "%s: deal %zu: needs a \"key\" (or \"PieceCID\") and a "
					     "\"url\" (or \"path\") string", path, i + 1);
			break;
		}
		if (k->kind == CAIRN_KIND_LINK) { /* {"/": "baga..."}, as Lotus prints CIDs */
			cairn_cid_to_string(cid, k->v.link);
			rc = deal_add(l, cid, strlen(cid), (const char *)u->v.bytes.ptr, u->v.bytes.len);
		} else {
			rc = deal_add(l, (const char *)k->v.bytes.ptr, k->v.bytes.len,
				      (const char *)u->v.bytes.ptr, u->v.bytes.len);
		}
	}
out:
	cairn_arena_free(arena);
	return rc;
}

static int parse_text_deals(deal_list *l, const char *path, const cairn_buf *text)
{
	const char *p = (const char *)text->data, *end = p + text->len;
	size_t line = 0;
	int rc = 0;

	while (p < end && !rc) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
		const char *k, *ke, *u, *ue;

		line++;
		for (k = p; k < e && (*k == ' ' || *k == '\t'); k++)
			;
		if (k == e || *k == '#' || (e - k == 1 && *k == '\r')) {
			p = e + 1;
			continue;
		}
		for (ke = k; ke < e && *ke != ' ' && *ke != '\t'; ke++)
			;
		for (u = ke; u < e && (*u == ' ' || *u == '\t'); u++)
			;
		for (ue = e; ue > u && (ue[-1] == '\r' || ue[-1] == ' ' || ue[-1] == '\t'); ue--)
			;
		if (u == ue)
			return cairn_error_set(CAIRN_ECORRUPT, "%s: line %zu: expected KEY URL", path,
					       line);
		rc = deal_add(l, k, (size_t)(ke - k), u, (size_t)(ue - u));
		p = e + 1;
	}
	return rc;
}

static int read_deals(deal_list *l, const char *path)
{
	cairn_buf text = {0};
	const uint8_t *p;
	int rc;

	if (!(rc = cairn_file_read_all(&text, path, (size_t)1 << 31))) {
		for (p = text.data; p < text.data + text.len && (*p == ' ' || *p == '\n' ||
								 *p == '\t' || *p == '\r'); p++)
			;
		rc = p < text.data + text.len && *p == '['
			? parse_json_deals(l, path, &text) : parse_text_deals(l, path, &text);
	}
	cairn_buf_free(&text);
	return rc;
}

static void print_import(cli_ctx *ctx, size_t n, size_t added)
{
	if (ctx->json)
		fprintf(ctx->out, "{\"deals\":%zu,\"registered\":%zu,\"already\":%zu}\n", n, added,
			n - added);
	else
		fprintf(ctx->out, "%zu deals: %zu registered, %zu already known\n", n, added,
			n - added);
}

static int do_import(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	const char *path = args->argv[0];
	deal_list l = {0};
	size_t added = 0, i;
	int rc;

	if ((rc = read_deals(&l, path)))
		goto fail;
	for (i = 0; i < l.n; i += IMPORT_BATCH) {
		size_t n = l.n - i < IMPORT_BATCH ? l.n - i : IMPORT_BATCH, got;
		cairn_shard_spec *specs = cairn_calloc(n, sizeof(*specs));

		if (!specs) {
			rc = CAIRN_ENOMEM;
			goto fail;
		}
		for (size_t j = 0; j < n; j++) {
			specs[j].key = l.keys[i + j];
			specs[j].url = l.urls[i + j];
		}
		rc = cairn_dagstore_register(r->dagstore, specs, n, &got);
		cairn_free(specs);
		if (rc)
			goto fail;
		added += got;
	}
	print_import(ctx, l.n, added);
	deal_list_free(&l);
	return CLI_OK;
fail:
	deal_list_free(&l);
	return cli_fail(ctx, "dagstore import-deals");
}

/* Through the daemon: batches of at most IMPORT_BATCH deals and
 * IMPORT_RPC_BYTES of request, each one transaction there. */
static int do_import_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	deal_list l = {0};
	cairn_buf p = CAIRN_BUF_INIT;
	const cairn_node *res;
	size_t added = 0, i = 0;
	int rc;

	if ((rc = read_deals(&l, args->argv[0])))
		goto fail;
	while (i < l.n) {
		size_t j;

		cairn_buf_clear(&p);
		cairn_buf_puts(&p, "[[");
		for (j = i; j < l.n && j - i < IMPORT_BATCH && p.len < IMPORT_RPC_BYTES; j++) {
			if (j > i)
				cairn_buf_putc(&p, ',');
			cairn_buf_puts(&p, "{\"Key\":");
			cli_daemon_json_str(&p, l.keys[j]);
			cairn_buf_puts(&p, ",\"URL\":");
			cli_daemon_json_str(&p, l.urls[j]);
			cairn_buf_putc(&p, '}');
		}
		cairn_buf_puts(&p, "]]");
		if ((rc = p.err) || (rc = cli_daemon_call(&res, d, "Cairn.DagstoreImportDeals",
							  (const char *)p.data)))
			goto fail;
		added += cli_daemon_uint(res, "Added");
		i = j;
	}
	print_import(ctx, l.n, added);
	deal_list_free(&l);
	cairn_buf_free(&p);
	return CLI_OK;
fail:
	deal_list_free(&l);
	cairn_buf_free(&p);
	return cli_fail(ctx, "dagstore import-deals");
}

static int run_import(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "dagstore import-deals", do_import, do_import_rpc);
}

static const cli_cmd import_cmd = {
	.name = "import-deals",
	.summary = "Register every deal of a list as a shard (the one-time migration).",
	.usage = "FILE",
	.description =
		"FILE is a JSON array of deals, each with \"key\" (or \"PieceCID\", as\n"
		"{\"/\": \"baga...\"} or a string) and \"url\" (or \"path\"), or text with\n"
		"one \"KEY URL\" per line (# starts a comment). Shards are registered New,\n"
		"10,000 per transaction; run it again after an interruption and it\n"
		"continues, a second complete run changes nothing. Then index them with\n"
		"`cairn dagstore initialize-all`. Lotus and Boost deal lists carry no\n"
		"location for the piece data (it is in sectors, which cairn's sector\n"
		"storage will mount): turn them into this form first.",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_import,
};

static const cli_cmd *const dagstore_subs[] = {
	&destroy_cmd, &gc_cmd, &get_cmd, &import_cmd, &initialize_all_cmd, &initialize_cmd,
	&list_cmd, &lookup_cmd, &recover_cmd, &register_cmd, NULL,
};

const cli_cmd cli_dagstore_cmd = {
	.name = "dagstore",
	.summary = "The DAG store: deal pieces as indexed shards, any block found by CID.",
	.description = "Every piece is a shard: registered with where its CAR is, indexed once\n"
		       "(a CARv2 index per shard, and one top-level index from multihash to\n"
		       "shards), then served. The store is --repo (default $CAIRN_PATH, else\n"
		       "~/.cairn); one process owns it at a time.",
	.subs = dagstore_subs,
};
