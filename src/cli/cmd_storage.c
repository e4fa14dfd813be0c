/* cmd_storage.c: `cairn storage`: the storage paths that hold sectors, as
 * `lotus-miner storage` manages them: attach (and initialize), list with
 * space and reservations, detach, redeclare; through the daemon when one
 * owns the store (its Cairn.Storage* methods, here too). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "repo.h"

/* The daemon's threads share one sector store: attach, detach and
 * redeclare change its list of paths and run alone (cairn/sector.h), the
 * other Cairn.Sector* and Cairn.Storage* calls beside each other. */
static pthread_rwlock_t rpc_lock = PTHREAD_RWLOCK_INITIALIZER;

void cli_storage_rpc_enter(bool alone)
{
	if (alone)
		pthread_rwlock_wrlock(&rpc_lock);
	else
		pthread_rwlock_rdlock(&rpc_lock);
}

void cli_storage_rpc_leave(void)
{
	pthread_rwlock_unlock(&rpc_lock);
}

/* A path for the daemon, whose working directory is not this one: `arg`
 * made absolute. With `or_id`, only when it names something here (else it
 * is a UUID, or a path as storage.json spells it, sent as it is). */
int cli_storage_abs_path(cairn_buf *out, const char *arg, bool or_id)
{
	char cwd[4096];

	if (arg[0] == '/' || !*arg || (or_id && access(arg, F_OK) < 0))
		return cairn_buf_puts(out, arg) ? CAIRN_ENOMEM : 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return cairn_error_set(CAIRN_EIO, "getcwd: %s", strerror(errno));
	return cairn_buf_printf(out, "%s/%s", cwd, arg) ? CAIRN_ENOMEM : 0;
}

/* A NUL-terminated copy of a string param (NULL for another kind or no
 * memory: the caller says which param). */
static char *param_str(const cairn_node *n)
{
	return n->kind == CAIRN_KIND_STRING ? cairn_strndup((const char *)n->v.bytes.ptr, n->v.bytes.len)
					    : NULL;
}

static int64_t get_i64(const cairn_node *obj, const char *key)
{
	const cairn_node *n = cairn_node_map_get(obj, key);

	if (!n || n->kind != CAIRN_KIND_INT)
		return 0;
	return n->v.i.neg ? -1 - (int64_t)(n->v.i.mag & INT64_MAX) : (int64_t)(n->v.i.mag & INT64_MAX);
}

static bool get_bool(const cairn_node *obj, const char *key)
{
	const cairn_node *n = cairn_node_map_get(obj, key);

	return n && n->kind == CAIRN_KIND_BOOL && n->v.b;
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

typedef struct attach_args {
	cairn_storage_init init;
	bool do_init;
} attach_args;

static void print_attach(cli_ctx *ctx, const char *path, const char *id)
{
	if (ctx->json) {
		fprintf(ctx->out, "{\"id\":\"%s\",\"path\":", id);
		cli_json_string(ctx->out, path, strlen(path));
		fputs("}\n", ctx->out);
	} else {
		fprintf(ctx->out, "attached %s (id %s)\n", path, id);
	}
}

/* The options, or CLI_USAGE with the message printed. */
static int attach_parse(attach_args *out, cli_ctx *ctx, const cli_args *args)
{
	const char *w = cli_opt_value(args, "weight"), *ms = cli_opt_value(args, "max-storage");

	out->init = (cairn_storage_init){10, cli_opt_flag(args, "seal"), cli_opt_flag(args, "store"), 0};
	out->do_init = cli_opt_flag(args, "init");
	if (w) {
		char *end;
		unsigned long long v = strtoull(w, &end, 10);

		if (*w < '0' || *w > '9' || *end)
			return cli_usage_error(ctx, "--weight must be a whole number, not '%s'", w);
		out->init.weight = v;
	}
	if (ms && cairn_sector_size_parse(&out->init.max_storage, ms))
		return cli_usage_error(ctx, "--max-storage must be a byte count (e.g. 2TiB), not '%s'", ms);
	if (!out->do_init && (w || ms || out->init.can_seal || out->init.can_store))
		return cli_usage_error(ctx, "--seal, --store, --weight and --max-storage go with --init");
	return 0;
}

static int do_attach(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	attach_args a;
	char id[40];

	if (attach_parse(&a, ctx, args))
		return CLI_USAGE;
	if (cairn_sector_storage_attach(r->sectors, args->argv[0], a.do_init ? &a.init : NULL, id))
		return cli_fail(ctx, "storage attach");
	print_attach(ctx, args->argv[0], id);
	return CLI_OK;
}

static int do_attach_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_buf p = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
	const cairn_node *res = NULL;
	const char *id = NULL;
	attach_args a;
	int rc;

	if (attach_parse(&a, ctx, args))
		return CLI_USAGE;
	if ((rc = cli_storage_abs_path(&path, args->argv[0], false)))
		return cli_fail(ctx, "storage attach");
	cairn_buf_putc(&p, '[');
	cli_daemon_json_str(&p, (const char *)path.data);
	if (a.do_init)
		cairn_buf_printf(&p, ",{\"Weight\":%" PRIu64 ",\"CanSeal\":%s,\"CanStore\":%s,"
				 "\"MaxStorage\":%" PRIu64 "}]", a.init.weight,
				 a.init.can_seal ? "true" : "false", a.init.can_store ? "true" : "false",
				 a.init.max_storage);
	else
		cairn_buf_puts(&p, ",null]");
	rc = p.err ? p.err : cli_daemon_call(&res, d, "Cairn.StorageAttach", (const char *)p.data);
	cairn_buf_free(&p);
	cairn_buf_free(&path);
	if (!rc && (!(id = cli_daemon_str(d, res, "ID")) || strlen(id) >= 40))
		rc = cairn_error_set(CAIRN_EIO, "the daemon's answer has no storage ID");
	if (rc)
		return cli_fail(ctx, "storage attach");
	print_attach(ctx, args->argv[0], id);
	return CLI_OK;
}

/* params: [path (absolute), {Weight, CanSeal, CanStore, MaxStorage} or
 * null (attach without --init)] -> {"ID"}. */
int cli_storage_rpc_attach(cairn_buf *result, const cairn_node *params, void *payload)
{
	static const char *const keys[] = {"Weight", "CanSeal", "CanStore", "MaxStorage"};
	const cairn_node *p = params->v.list.items, *in = params->v.list.len > 1 ? &p[1] : NULL, *v;
	cairn_storage_init init = {10, false, false, 0};
	cli_repo *r = payload;
	char id[40], *path;
	int rc;

	if (in && in->kind != CAIRN_KIND_MAP && in->kind != CAIRN_KIND_NULL)
		return cairn_error_set(CAIRN_EINVAL, "params: [path, {Weight, CanSeal, CanStore, "
				       "MaxStorage}?]");
	for (size_t i = 0; in && in->kind == CAIRN_KIND_MAP && i < 4; i++) {
		if (!(v = cairn_node_map_get(in, keys[i])))
			continue;
		if (i == 0 || i == 3) {
			if (v->kind != CAIRN_KIND_INT || v->v.i.neg)
				return cairn_error_set(CAIRN_EINVAL, "params: %s must be a count", keys[i]);
			*(i ? &init.max_storage : &init.weight) = v->v.i.mag;
		} else {
			if (v->kind != CAIRN_KIND_BOOL)
				return cairn_error_set(CAIRN_EINVAL, "params: %s must be true or false",
						       keys[i]);
			*(i == 1 ? &init.can_seal : &init.can_store) = v->v.b;
		}
	}
	if (!(path = param_str(&p[0])) || path[0] != '/') {
		cairn_free(path);
		return cairn_error_set(CAIRN_EINVAL, "params: the path must be absolute");
	}
	cli_storage_rpc_enter(true);
	rc = cairn_sector_storage_attach(r->sectors, path, in && in->kind == CAIRN_KIND_MAP ? &init : NULL,
					 id);
	cli_storage_rpc_leave();
	cairn_free(path);
	if (rc)
		return rc;
	cairn_buf_printf(result, "{\"ID\":\"%s\"}", id);
	return result->err;
}

static int run_attach(cli_ctx *ctx, const cli_args *args)
{
	attach_args a;

	/* usage errors before any store or daemon */
	if (attach_parse(&a, ctx, args))
		return CLI_USAGE;
	return cli_with_store(ctx, args, "storage attach", do_attach, do_attach_rpc);
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

static int do_list(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	(void)args;
	return cairn_sector_storage_list(r->sectors, print_path, ctx) ? cli_fail(ctx, "storage list") : CLI_OK;
}

/* A path from the daemon's list, its strings in d->arena. */
static int path_from(cairn_storage_info *out, cli_daemon *d, const cairn_node *o)
{
	const cairn_node *s = cairn_node_map_get(o, "Sectors");
	const char *id = cli_daemon_str(d, o, "ID");

	memset(out, 0, sizeof(*out));
	if (!o || o->kind != CAIRN_KIND_MAP || !id || strlen(id) >= sizeof(out->id) ||
	    !(out->path = cli_daemon_str(d, o, "Path")) ||
	    !(out->config_path = cli_daemon_str(d, o, "ConfigPath")) || !s ||
	    s->kind != CAIRN_KIND_LIST || s->v.list.len != 3)
		return cairn_error_set(CAIRN_EIO, "the daemon's storage path is not what cairn sends");
	snprintf(out->id, sizeof(out->id), "%s", id);
	out->error = cli_daemon_str(d, o, "Error");
	out->weight = cli_daemon_uint(o, "Weight");
	out->max_storage = cli_daemon_uint(o, "MaxStorage");
	out->can_seal = get_bool(o, "CanSeal");
	out->can_store = get_bool(o, "CanStore");
	out->stat.capacity = get_i64(o, "Capacity");
	out->stat.available = get_i64(o, "Available");
	out->stat.fs_available = get_i64(o, "FSAvailable");
	out->stat.reserved = get_i64(o, "Reserved");
	out->stat.max = get_i64(o, "Max");
	out->stat.used = get_i64(o, "Used");
	for (size_t i = 0; i < 3; i++) {
		const cairn_node *n = &s->v.list.items[i];

		out->sectors[i] = n->kind == CAIRN_KIND_INT && !n->v.i.neg ? n->v.i.mag : 0;
	}
	return 0;
}

static int do_list_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res = NULL;
	cairn_storage_info in;
	int rc = 0;

	(void)args;
	if (cli_daemon_call(&res, d, "Cairn.StorageList", "[]"))
		return cli_fail(ctx, "storage list");
	if (res->kind != CAIRN_KIND_LIST)
		rc = cairn_error_set(CAIRN_EIO, "the daemon's storage list is not a list");
	for (size_t i = 0; !rc && i < res->v.list.len; i++)
		if (!(rc = path_from(&in, d, &res->v.list.items[i])))
			print_path(&in, ctx);
	return rc ? cli_fail(ctx, "storage list") : CLI_OK;
}

static int path_rpc_row(const cairn_storage_info *in, void *payload)
{
	cairn_buf *b = payload;

	if (b->len && b->data[b->len - 1] == '}')
		cairn_buf_putc(b, ',');
	cairn_buf_printf(b, "{\"ID\":\"%s\",\"Path\":", in->id);
	cli_daemon_json_str(b, in->path ? in->path : "");
	cairn_buf_puts(b, ",\"ConfigPath\":");
	cli_daemon_json_str(b, in->config_path);
	cairn_buf_puts(b, ",\"Error\":");
	if (in->error)
		cli_daemon_json_str(b, in->error);
	else
		cairn_buf_puts(b, "null");
	cairn_buf_printf(b, ",\"CanSeal\":%s,\"CanStore\":%s,\"Weight\":%" PRIu64 ",\"MaxStorage\":%"
			 PRIu64 ",\"Capacity\":%" PRId64 ",\"Available\":%" PRId64 ",\"FSAvailable\":%"
			 PRId64 ",\"Reserved\":%" PRId64 ",\"Max\":%" PRId64 ",\"Used\":%" PRId64
			 ",\"Sectors\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]}",
			 in->can_seal ? "true" : "false", in->can_store ? "true" : "false", in->weight,
			 in->max_storage, in->stat.capacity, in->stat.available, in->stat.fs_available,
			 in->stat.reserved, in->stat.max, in->stat.used, in->sectors[0], in->sectors[1],
			 in->sectors[2]);
	return b->err;
}

/* params: [] -> [{"ID", "Path", "ConfigPath", "Error", "CanSeal",
 * "CanStore", "Weight", "MaxStorage", Lotus's FsStat ("Capacity",
 * "Available", "FSAvailable", "Reserved", "Max", "Used"), "Sectors":
 * [unsealed, sealed, cache]}]. */
int cli_storage_rpc_list(cairn_buf *result, const cairn_node *params, void *payload)
{
	cli_repo *r = payload;
	int rc;

	(void)params;
	cairn_buf_putc(result, '[');
	cli_storage_rpc_enter(false);
	rc = cairn_sector_storage_list(r->sectors, path_rpc_row, result);
	cli_storage_rpc_leave();
	if (rc)
		return rc;
	cairn_buf_putc(result, ']');
	return result->err;
}

static int run_list(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "storage list", do_list, do_list_rpc);
}

/* -------------------------------------------------------------- detach */

static void print_detach(cli_ctx *ctx, const char *path)
{
	if (ctx->json)
		fputs("{\"detached\":true}\n", ctx->out);
	else
		fprintf(ctx->out, "detached %s (its files stay)\n", path);
}

static int do_detach(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	if (cairn_sector_storage_detach(r->sectors, args->argv[0]))
		return cli_fail(ctx, "storage detach");
	print_detach(ctx, args->argv[0]);
	return CLI_OK;
}

/* Calls `method` with [PATH|ID (NULL: null), rest...]: `rest` is the
 * JSON of the params after it ("" for none). */
static int call_path(const cairn_node **res, cli_daemon *d, const char *method, const char *arg,
		     const char *rest)
{
	cairn_buf p = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
	int rc;

	if (arg && (rc = cli_storage_abs_path(&path, arg, true)))
		return rc;
	cairn_buf_putc(&p, '[');
	if (arg)
		cli_daemon_json_str(&p, (const char *)path.data);
	else
		cairn_buf_puts(&p, "null");
	cairn_buf_printf(&p, "%s]", rest);
	rc = p.err || path.err ? CAIRN_ENOMEM : cli_daemon_call(res, d, method, (const char *)p.data);
	cairn_buf_free(&p);
	cairn_buf_free(&path);
	return rc;
}

static int do_detach_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res;

	if (call_path(&res, d, "Cairn.StorageDetach", args->argv[0], ""))
		return cli_fail(ctx, "storage detach");
	print_detach(ctx, args->argv[0]);
	return CLI_OK;
}

/* params: [path (absolute) or UUID] -> null. */
int cli_storage_rpc_detach(cairn_buf *result, const cairn_node *params, void *payload)
{
	cli_repo *r = payload;
	char *path;
	int rc;

	if (!(path = param_str(&params->v.list.items[0])))
		return cairn_error_set(CAIRN_EINVAL, "params: [path or UUID]");
	cli_storage_rpc_enter(true);
	rc = cairn_sector_storage_detach(r->sectors, path);
	cli_storage_rpc_leave();
	cairn_free(path);
	if (rc)
		return rc;
	cairn_buf_puts(result, "null");
	return result->err;
}

static int run_detach(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "storage detach", do_detach, do_detach_rpc);
}

/* ----------------------------------------------------------- redeclare */

static void print_redeclare(cli_ctx *ctx, uint64_t declared, uint64_t dropped)
{
	if (ctx->json)
		fprintf(ctx->out, "{\"declared\":%" PRIu64 ",\"dropped\":%" PRIu64 "}\n", declared, dropped);
	else
		fprintf(ctx->out, "declared %" PRIu64 " sector files, dropped %" PRIu64 "\n", declared,
			dropped);
}

static int do_redeclare(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	uint64_t declared = 0, dropped = 0;

	if (cairn_sector_storage_redeclare(r->sectors, args->argc ? args->argv[0] : NULL,
					   cli_opt_flag(args, "drop-missing"), &declared, &dropped))
		return cli_fail(ctx, "storage redeclare");
	print_redeclare(ctx, declared, dropped);
	return CLI_OK;
}

static int do_redeclare_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res;

	if (call_path(&res, d, "Cairn.StorageRedeclare", args->argc ? args->argv[0] : NULL,
		      cli_opt_flag(args, "drop-missing") ? ",true" : ",false"))
		return cli_fail(ctx, "storage redeclare");
	print_redeclare(ctx, cli_daemon_uint(res, "Declared"), cli_daemon_uint(res, "Dropped"));
	return CLI_OK;
}

/* params: [path (absolute), UUID or null (every path), dropMissing?] ->
 * {"Declared", "Dropped"}. */
int cli_storage_rpc_redeclare(cairn_buf *result, const cairn_node *params, void *payload)
{
	const cairn_node *p = params->v.list.items;
	size_t n = params->v.list.len;
	uint64_t declared = 0, dropped = 0;
	cli_repo *r = payload;
	char *path = NULL;
	int rc;

	if ((n > 0 && p[0].kind != CAIRN_KIND_NULL && !(path = param_str(&p[0]))) ||
	    (n > 1 && p[1].kind != CAIRN_KIND_BOOL))
		return cairn_error_set(CAIRN_EINVAL, "params: [path, UUID or null, dropMissing?]");
	cli_storage_rpc_enter(true);
	rc = cairn_sector_storage_redeclare(r->sectors, path, n > 1 && p[1].v.b, &declared, &dropped);
	cli_storage_rpc_leave();
	cairn_free(path);
	if (rc)
		return rc;
	cairn_buf_printf(result, "{\"Declared\":%" PRIu64 ",\"Dropped\":%" PRIu64 "}", declared, dropped);
	return result->err;
}

static int run_redeclare(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "storage redeclare", do_redeclare, do_redeclare_rpc);
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
