/* cmd_deal.c: `cairn deal`: import a deal's data into a sector and a shard
 * (resumable), list the deals; through the daemon when one owns the store. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "repo.h"

/* Test hook: CAIRN_DEAL_CRASH_AT=<step> kills the process (SIGKILL, as a
 * crash) right after that step is recorded, in whichever process runs the
 * import (the daemon's too). */
static void crash_hook(const char *step, void *payload)
{
	const char *at = getenv("CAIRN_DEAL_CRASH_AT");

	(void)payload;
	if (at && !strcmp(at, step))
		raise(SIGKILL);
}

static int parse_u64(uint64_t *out, const char *s)
{
	char *end;

	if (*s < '0' || *s > '9')
		return CAIRN_EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? CAIRN_EINVAL : 0;
}

/* The deal as JSON: the daemon's result ("PieceCID", ...) or the command's
 * --json output ("piece_cid", ...), from one table of names. */
static void deal_json(cairn_buf *b, const cairn_deal_info *in, bool rpc)
{
	char sector[CAIRN_SECTOR_NAME_MAX];

	cairn_buf_printf(b, "{\"%s\":", rpc ? "PieceCID" : "piece_cid");
	cli_daemon_json_str(b, in->piece_cid);
	cairn_buf_printf(b, ",\"%s\":\"%s\",\"%s\":", rpc ? "State" : "state",
			 cairn_deal_state_name(in->state), rpc ? "Source" : "source");
	cli_daemon_json_str(b, in->source ? in->source : "");
	cairn_buf_printf(b, ",\"%s\":%" PRIu64 ",\"%s\":%" PRIu64 ",\"%s\":",
			 rpc ? "PayloadSize" : "payload_size", in->payload_size,
			 rpc ? "PaddedSize" : "padded_size", in->padded_size, rpc ? "Sector" : "sector");
	if (in->in_sector) {
		cairn_sector_name(sector, &in->sector);
		cairn_buf_printf(b, "\"%s\",\"%s\":%" PRIu64, sector, rpc ? "Offset" : "offset",
				 in->offset);
	} else {
		cairn_buf_printf(b, "null,\"%s\":null", rpc ? "Offset" : "offset");
	}
	cairn_buf_printf(b, ",\"%s\":%" PRId64 ",\"%s\":%" PRId64 "}",
			 rpc ? "CreatedAt" : "created_at", in->created_at,
			 rpc ? "UpdatedAt" : "updated_at", in->updated_at);
}

/* A deal from the daemon's result, its strings in d->arena. */
static int deal_from(cairn_deal_info *out, cli_daemon *d, const cairn_node *o)
{
	static const cairn_deal_state states[] = {
		CAIRN_DEAL_STAGING, CAIRN_DEAL_STAGED, CAIRN_DEAL_ADDED, CAIRN_DEAL_REGISTERED,
		CAIRN_DEAL_AVAILABLE,
	};
	const char *cid, *state, *sector;

	memset(out, 0, sizeof(*out));
	if (!o || o->kind != CAIRN_KIND_MAP || !(cid = cli_daemon_str(d, o, "PieceCID")) ||
	    !(state = cli_daemon_str(d, o, "State")) ||
	    strlen(cid) >= sizeof(out->piece_cid))
		return cairn_error_set(CAIRN_EIO, "the daemon's deal is not what cairn sends");
	snprintf(out->piece_cid, sizeof(out->piece_cid), "%s", cid);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (!strcmp(state, cairn_deal_state_name(states[i])))
			out->state = states[i];
	out->source = (char *)cli_daemon_str(d, o, "Source");
	out->payload_size = cli_daemon_uint(o, "PayloadSize");
	out->padded_size = cli_daemon_uint(o, "PaddedSize");
	if ((sector = cli_daemon_str(d, o, "Sector")) && !cairn_sector_name_parse(&out->sector, sector))
		out->in_sector = true;
	out->offset = cli_daemon_uint(o, "Offset");
	out->created_at = (int64_t)cli_daemon_uint(o, "CreatedAt");
	out->updated_at = (int64_t)cli_daemon_uint(o, "UpdatedAt");
	return 0;
}

/* The deal as import shows it, or (`row`) as a line of the list. */
static void print_deal(cli_ctx *ctx, const cairn_deal_info *in, bool row)
{
	char sector[CAIRN_SECTOR_NAME_MAX] = "-";
	cairn_buf b = CAIRN_BUF_INIT;

	if (ctx->json) {
		deal_json(&b, in, false);
		if (!b.err)
			fprintf(ctx->out, "%s\n", (const char *)b.data);
		cairn_buf_free(&b);
		return;
	}
	if (in->in_sector)
		cairn_sector_name(sector, &in->sector);
	if (row)
		fprintf(ctx->out, "%-64s %-10s %-16s %12" PRIu64 " %12" PRIu64 "\n", in->piece_cid,
			cairn_deal_state_name(in->state), sector, in->offset, in->payload_size);
	else
		fprintf(ctx->out, "piece CID:     %s\nstate:         %s\nsector:        %s\n"
			"offset:        %" PRIu64 "\npadded size:   %" PRIu64 "\npayload size:  %" PRIu64
			"\n", in->piece_cid, cairn_deal_state_name(in->state), sector, in->offset,
			in->padded_size, in->payload_size);
}

/* -------------------------------------------------------------- import */

typedef struct import_args {
	cairn_cid cid;
	const char *source;
	cairn_deal_import_options o;
} import_args;

static int import_run(cairn_deal_info *out, cairn_deals *deals, import_args *a)
{
	a->o.on_step = crash_hook;
	return cairn_deal_import(out, deals, &a->cid, a->source, &a->o);
}

/* params: [pieceCid, source, sectorSize, miner]: the source an absolute
 * path or a URL the daemon reads itself. */
int cli_deal_rpc_import(cairn_buf *result, const cairn_node *params, void *payload)
{
	cli_repo *r = payload;
	const cairn_node *p = params->v.list.items;
	size_t n = params->v.list.len;
	import_args a = {.o = CAIRN_DEAL_IMPORT_OPTIONS_INIT};
	cairn_deal_info in;
	char *cid = NULL, *src = NULL;
	int rc;

	if (p[0].kind != CAIRN_KIND_STRING || p[1].kind != CAIRN_KIND_STRING ||
	    (n > 2 && p[2].kind != CAIRN_KIND_INT) || (n > 3 && p[3].kind != CAIRN_KIND_INT))
		return cairn_error_set(CAIRN_EINVAL, "params: [pieceCid, source, sectorSize?, miner?]");
	if (!(cid = cairn_strndup((const char *)p[0].v.bytes.ptr, p[0].v.bytes.len)) ||
	    !(src = cairn_strndup((const char *)p[1].v.bytes.ptr, p[1].v.bytes.len))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	if (!strcmp(src, "-")) {
		rc = cairn_error_set(CAIRN_EINVAL, "the daemon cannot read this command's stdin");
		goto out;
	}
	if ((rc = cairn_cid_parse(&a.cid, cid, strlen(cid)))) {
		cairn_error_prefix("--piece-cid: ");
		goto out;
	}
	a.source = src;
	a.o.sector_size = n > 2 ? p[2].v.i.mag : 0;
	a.o.miner = n > 3 ? p[3].v.i.mag : 0;
	if (!(rc = import_run(&in, r->deals, &a))) {
		deal_json(result, &in, true);
		rc = result->err;
		cairn_deal_info_clear(&in);
	}
out:
	cairn_free(cid);
	cairn_free(src);
	return rc;
}

static int deal_rpc_row(const cairn_deal_info *in, void *payload)
{
	cairn_buf *b = payload;

	if (b->len && b->data[b->len - 1] == '}')
		cairn_buf_putc(b, ',');
	deal_json(b, in, true);
	return b->err;
}

int cli_deal_rpc_list(cairn_buf *result, const cairn_node *params, void *payload)
{
	cli_repo *r = payload;
	int rc;

	(void)params;
	cairn_buf_putc(result, '[');
	if ((rc = cairn_deal_list(r->deals, deal_rpc_row, result)))
		return rc;
	cairn_buf_putc(result, ']');
	return result->err;
}

static int import_local(cli_ctx *ctx, cli_repo *r, import_args *a)
{
	cairn_deal_info in;

	a->o.fd = STDIN_FILENO;
	if (import_run(&in, r->deals, a))
		return cli_fail(ctx, "deal import");
	print_deal(ctx, &in, false);
	cairn_deal_info_clear(&in);
	return CLI_OK;
}

/* The daemon reads the file or URL itself. */
static int import_remote(cli_ctx *ctx, cli_daemon *d, const char *pc, const import_args *a)
{
	cairn_buf p = CAIRN_BUF_INIT;
	const cairn_node *res;
	cairn_deal_info in;
	int rc;

	if (!strcmp(a->source, "-")) {
		/* the daemon reads the data itself: it has no way to this stdin */
		cairn_error_set(CAIRN_EINVAL, "`cairn serve` owns the store and cannot read this "
				"command's stdin: save the data to a file and import that");
		return cli_fail(ctx, "deal import");
	}
	cairn_buf_putc(&p, '[');
	cli_daemon_json_str(&p, pc);
	cairn_buf_putc(&p, ',');
	cli_daemon_json_str(&p, a->source);
	cairn_buf_printf(&p, ",%" PRIu64 ",%" PRIu64 "]", a->o.sector_size, a->o.miner);
	rc = p.err ? p.err : cli_daemon_call(&res, d, "Cairn.DealImport", (const char *)p.data);
	cairn_buf_free(&p);
	if (!rc && !(rc = deal_from(&in, d, res)))
		print_deal(ctx, &in, false);
	return rc ? cli_fail(ctx, "deal import") : CLI_OK;
}

static int run_import(cli_ctx *ctx, const cli_args *args)
{
	const char *pc = cli_opt_value(args, "piece-cid"), *ss = cli_opt_value(args, "sector-size");
	const char *mi = cli_opt_value(args, "miner"), *t = cli_opt_value(args, "threads");
	const char *arg = args->argv[0];
	import_args a = {.o = CAIRN_DEAL_IMPORT_OPTIONS_INIT};
	cairn_buf src = CAIRN_BUF_INIT;
	uint64_t threads = 0;
	unsigned proof;
	cli_store s;
	int rc;

	if (!pc)
		return cli_usage_error(ctx, "--piece-cid is required: the piece CID the deal was made for "
				       "(`cairn piece commp FILE` gives it)");
	if (cairn_cid_parse(&a.cid, pc, strlen(pc)))
		return cli_usage_error(ctx, "--piece-cid: '%s' is not a CID", pc);
	if (ss && (cairn_sector_size_parse(&a.o.sector_size, ss) ||
		   cairn_sector_proof_for_size(&proof, a.o.sector_size)))
		return cli_usage_error(ctx, "--sector-size must be a sector size (2KiB, 8MiB, 512MiB, 32GiB "
				       "or 64GiB), not '%s'", ss);
	if (mi && (parse_u64(&a.o.miner, mi) || !a.o.miner))
		return cli_usage_error(ctx, "--miner must be a miner actor id (1000 for t01000), not '%s'", mi);
	if (t && (parse_u64(&threads, t) || threads > 1024))
		return cli_usage_error(ctx, "--threads must be a number from 0 to 1024, not '%s'", t);
	a.o.threads = (unsigned)threads;
	/* a path becomes absolute: the deal records it, and the daemon reads it */
	if (!strcmp(arg, "-") || strstr(arg, "://") || arg[0] == '/') {
		cairn_buf_puts(&src, arg);
	} else {
		char cwd[4096];

		if (!getcwd(cwd, sizeof(cwd))) {
			cairn_error_set(CAIRN_EIO, "getcwd: %s", strerror(errno));
			return cli_fail(ctx, "deal import");
		}
		cairn_buf_printf(&src, "%s/%s", cwd, arg);
	}
	if (src.err)
		return cli_fail(ctx, "deal import");
	a.source = (const char *)src.data;
	if (cli_store_open(&s, ctx, args, "deal import", CLI_STORE_OPEN)) {
		cairn_buf_free(&src);
		return CLI_FAILED;
	}
	rc = s.remote ? import_remote(ctx, &s.d, pc, &a) : import_local(ctx, &s.r, &a);
	cli_store_close(&s);
	cairn_buf_free(&src);
	return rc;
}

/* ---------------------------------------------------------------- list */

static int list_row(const cairn_deal_info *in, void *payload)
{
	print_deal(payload, in, true);
	return 0;
}

static void list_header(cli_ctx *ctx)
{
	if (!ctx->json)
		fprintf(ctx->out, "%-64s %-10s %-16s %12s %12s\n", "PIECE CID", "STATE", "SECTOR", "OFFSET",
			"PAYLOAD");
}

static int list_local(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	(void)args;
	list_header(ctx);
	return cairn_deal_list(r->deals, list_row, ctx) ? cli_fail(ctx, "deal list") : CLI_OK;
}

static int list_remote(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res = NULL;
	cairn_deal_info in;
	int rc = 0;

	(void)args;
	if (cli_daemon_call(&res, d, "Cairn.DealList", "[]") || res->kind != CAIRN_KIND_LIST) {
		if (res && res->kind != CAIRN_KIND_LIST)
			cairn_error_set(CAIRN_EIO, "the daemon's deal list is not a list");
		return cli_fail(ctx, "deal list");
	}
	list_header(ctx);
	for (size_t i = 0; i < res->v.list.len && !rc; i++)
		if (!(rc = deal_from(&in, d, &res->v.list.items[i])))
			print_deal(ctx, &in, true);
	return rc ? cli_fail(ctx, "deal list") : CLI_OK;
}

static int run_list(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, "deal list", list_local, list_remote);
}

static const cli_opt import_opts[] = {
	CLI_OPT_REPO,
	{"piece-cid", 'p', "CID", "the deal's piece CID (v1 baga... or v2 bafkzcib...): required"},
	{"sector-size", 's', "SIZE", "the size of a new sector (2KiB, 8MiB, 512MiB, 32GiB, 64GiB; "
	 "default 32GiB)"},
	{"miner", 'm', "ID", "the miner actor id of new sectors (default 1000: s-t01000-N)"},
	{"threads", 't', "N", "CommP and add-piece threads (default 0: one per core)"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt list_opts[] = {
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

static const cli_cmd import_cmd = {
	.name = "import",
	.summary = "Import a deal's data: check its piece CID, add it to a sector, index its shard.",
	.usage = "FILE|URL|-",
	.description = "The data (a CAR: a file, an http(s) URL, or - for stdin) must have the\n"
		       "piece CID given, else it is refused and nothing is kept. A file is read in\n"
		       "place; a URL or stdin is staged in $REPO/staging/ first. The piece goes into\n"
		       "the first unsealed sector with room (else a new one; a store with no\n"
		       "storage path gets $REPO/storage), becomes the shard piece://<piece CID>\n"
		       "in the DAG store, indexed, and is served by /piece/ and /ipfs/. Each step\n"
		       "is recorded: after a crash, the same command resumes it. Through a running\n"
		       "`cairn serve`, the daemon reads the file or URL (not stdin). Example:\n"
		       "  cairn deal import --piece-cid baga6ea4seaq... deal.car",
	.opts = import_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_import,
};

static const cli_cmd list_cmd = {
	.name = "list",
	.summary = "List the deals with their state, sector and offset.",
	.description = "States, in order: Staging, Staged, Added, Registered, Available. A deal\n"
		       "short of Available was interrupted: import it again to finish it.",
	.opts = list_opts,
	.max_args = 0,
	.run = run_list,
};

static const cli_cmd *const deal_subs[] = {&import_cmd, &list_cmd, NULL};

const cli_cmd cli_deal_cmd = {
	.name = "deal",
	.summary = "Deals: import a deal's data into a sector and a shard; list them.",
	.subs = deal_subs,
};
