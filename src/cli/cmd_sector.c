/* cmd_sector.c: `cairn sector`: pieces into sectors and back: add-piece,
 * read-piece, commd, check, list and move, on the store's storage paths;
 * through the daemon when one owns the store (its Cairn.Sector* methods,
 * here too). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "repo.h"

/* Reads are streamed a chunk at a time; through the daemon, a chunk is
 * one Cairn.SectorReadPiece call (its bytes in base64: 5.6 MB of JSON). */
#define READ_CHUNK (4u << 20)

static const char *what(const cli_ctx *ctx)
{
	return ctx->path + strlen("cairn ");
}

static int parse_sector(cli_ctx *ctx, cairn_sector_id *out, const char *s)
{
	if (cairn_sector_name_parse(out, s))
		return cli_usage_error(ctx, "'%s' is not a sector name (s-t0<miner>-<number>, e.g. s-t01000-1)",
				       s);
	return 0;
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

/* Params of the daemon's methods: a string (NUL-terminated copy, freed by
 * the caller; NULL for another kind or no memory), a sector name, a count. */
static char *param_str(const cairn_node *n)
{
	return n->kind == CAIRN_KIND_STRING ? cairn_strndup((const char *)n->v.bytes.ptr, n->v.bytes.len)
					    : NULL;
}

static int param_sector(cairn_sector_id *out, const cairn_node *n)
{
	char name[CAIRN_SECTOR_NAME_MAX];

	if (n->kind != CAIRN_KIND_STRING || n->v.bytes.len >= sizeof(name))
		return cairn_error_set(CAIRN_EINVAL, "params: a sector name must be a string");
	memcpy(name, n->v.bytes.ptr, n->v.bytes.len);
	name[n->v.bytes.len] = 0;
	if (cairn_sector_name_parse(out, name))
		return cairn_error_set(CAIRN_EINVAL, "params: '%s' is not a sector name", name);
	return 0;
}

static int param_u64(uint64_t *out, const cairn_node *n, const char *name)
{
	if (n->kind != CAIRN_KIND_INT || n->v.i.neg)
		return cairn_error_set(CAIRN_EINVAL, "params: %s must be a count", name);
	*out = n->v.i.mag;
	return 0;
}

/* Calls `method` with [sector, rest...]: `rest` is the JSON of the params
 * after it, each led by ',' ("" for none). */
static int call_sector(const cairn_node **res, cli_daemon *d, const char *method, const char *name,
		       const char *rest)
{
	cairn_buf p = CAIRN_BUF_INIT;
	int rc;

	cairn_buf_putc(&p, '[');
	cli_daemon_json_str(&p, name);
	cairn_buf_printf(&p, "%s]", rest);
	rc = p.err ? p.err : cli_daemon_call(res, d, method, (const char *)p.data);
	cairn_buf_free(&p);
	return rc;
}

/* ----------------------------------------------------------- add-piece */

static void print_piece(cli_ctx *ctx, const cairn_sector_piece *pc, const char *sector)
{
	char v2[CAIRN_CID_MAX_STRING], v1[CAIRN_CID_MAX_STRING];
	cairn_cid cid;

	cairn_piece_cid_v2(&cid, &pc->info);
	cairn_cid_to_string(v2, &cid);
	cairn_piece_cid_v1(&cid, pc->info.commp);
	cairn_cid_to_string(v1, &cid);
	if (ctx->json) {
		fprintf(ctx->out, "{\"sector\":\"%s\",\"piece_cid\":\"%s\",\"piece_cid_v1\":\"%s\","
			"\"offset\":%" PRIu64 ",\"padded_piece_size\":%" PRIu64 ",\"payload_size\":%" PRIu64
			"}\n", sector, v2, v1, pc->offset, pc->info.padded_size, pc->info.payload_size);
		return;
	}
	fprintf(ctx->out, "piece CID:     %s\npiece CID v1:  %s\nsector:        %s\noffset:        %" PRIu64
		"\npadded size:   %" PRIu64 "\npayload size:  %" PRIu64 "\n", v2, v1, sector, pc->offset,
		pc->info.padded_size, pc->info.payload_size);
}

typedef struct add_args {
	cairn_sector_id sid;
	unsigned proof;   /* UINT32_MAX: no --size, refuse a new sector */
	uint64_t threads;
} add_args;

/* The arguments, or CLI_USAGE with the message printed. */
static int add_parse(add_args *out, cli_ctx *ctx, const cli_args *args)
{
	const char *size_s = cli_opt_value(args, "size"), *t = cli_opt_value(args, "threads");
	int rc;

	out->proof = UINT32_MAX;
	out->threads = 0;
	if ((rc = parse_sector(ctx, &out->sid, args->argv[0])))
		return rc;
	if (size_s) {
		uint64_t size;

		if (cairn_sector_size_parse(&size, size_s) || cairn_sector_proof_for_size(&out->proof, size))
			return cli_usage_error(ctx, "--size must be a sector size (2KiB, 8MiB, 512MiB, 32GiB or "
					       "64GiB), not '%s'", size_s);
	}
	if (t && (parse_u64(&out->threads, t) || out->threads > 1024))
		return cli_usage_error(ctx, "--threads must be a number from 0 to 1024, not '%s'", t);
	if (!strcmp(args->argv[1], "-"))
		return cli_usage_error(ctx, "the piece must be a file: its size decides where it goes in the sector");
	return 0;
}

/* Opens the piece's file, which must be a regular file: the padded size,
 * hence the place in the sector, comes from its size and must be known
 * before the first byte. */
static int open_piece(int *fd_out, uint64_t *size_out, const char *file)
{
	struct stat sb;
	int fd;

	*fd_out = -1;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", file, strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return cairn_error_set(CAIRN_EINVAL, "%s: not a regular file (the piece's size must be known)",
				       file);
	}
	*fd_out = fd;
	*size_out = (uint64_t)sb.st_size;
	return 0;
}

static int add_file(cairn_sector_piece *out, cairn_sector_store *st, const add_args *a,
		    const char *file)
{
	uint64_t size = 0;
	int fd, rc;

	if ((rc = open_piece(&fd, &size, file)))
		return rc;
	rc = cairn_sector_add_piece(out, st, &a->sid, a->proof, fd, 0, size, file, (unsigned)a->threads);
	close(fd);
	return rc;
}

static int do_add(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	cairn_sector_piece pc;
	add_args a;

	if (add_parse(&a, ctx, args))
		return CLI_USAGE;
	if (add_file(&pc, r->sectors, &a, args->argv[1]))
		return cli_fail(ctx, what(ctx));
	print_piece(ctx, &pc, args->argv[0]);
	return CLI_OK;
}

static int do_add_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_buf p = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
	const cairn_node *res = NULL;
	cairn_sector_piece pc;
	const char *cid_s;
	cairn_cid cid;
	add_args a;
	int rc;

	if (add_parse(&a, ctx, args))
		return CLI_USAGE;
	if ((rc = cli_storage_abs_path(&path, args->argv[1], false)))
		return cli_fail(ctx, what(ctx));
	cairn_buf_putc(&p, ',');
	cli_daemon_json_str(&p, (const char *)path.data);
	if (a.proof == UINT32_MAX)
		cairn_buf_printf(&p, ",null,%" PRIu64, a.threads);
	else
		cairn_buf_printf(&p, ",%u,%" PRIu64, a.proof, a.threads);
	rc = p.err || path.err ? CAIRN_ENOMEM
			       : call_sector(&res, d, "Cairn.SectorAddPiece", args->argv[0],
					     (const char *)p.data);
	cairn_buf_free(&p);
	cairn_buf_free(&path);
	memset(&pc, 0, sizeof(pc));
	if (!rc && (!(cid_s = cli_daemon_str(d, res, "PieceCID")) ||
		    cairn_cid_parse(&cid, cid_s, strlen(cid_s)) || cairn_piece_cid_decode(&pc.info, &cid)))
		rc = cairn_error_set(CAIRN_EIO, "the daemon's piece is not what cairn sends");
	if (rc)
		return cli_fail(ctx, what(ctx));
	pc.offset = cli_daemon_uint(res, "Offset");
	print_piece(ctx, &pc, args->argv[0]);
	return CLI_OK;
}

/* params: [sector, path (absolute), proof or null (no new sector),
 * threads?] -> {"Sector", "PieceCID" (v2, which carries the sizes),
 * "Offset", "PaddedSize", "PayloadSize"}. */
int cli_sector_rpc_add_piece(cairn_buf *result, const cairn_node *params, void *payload)
{
	const cairn_node *p = params->v.list.items;
	size_t n = params->v.list.len;
	char v2[CAIRN_CID_MAX_STRING], name[CAIRN_SECTOR_NAME_MAX];
	add_args a = {.proof = UINT32_MAX};
	cli_repo *r = payload;
	cairn_sector_piece pc;
	uint64_t proof = 0;
	cairn_cid cid;
	char *path;
	int rc;

	if ((rc = param_sector(&a.sid, &p[0])) ||
	    (n > 2 && p[2].kind != CAIRN_KIND_NULL && (rc = param_u64(&proof, &p[2], "proof"))) ||
	    (n > 3 && (rc = param_u64(&a.threads, &p[3], "threads"))))
		return rc;
	if (n > 2 && p[2].kind != CAIRN_KIND_NULL)
		a.proof = proof < UINT32_MAX ? (unsigned)proof : UINT32_MAX - 1;
	if (a.threads > 1024)
		return cairn_error_set(CAIRN_EINVAL, "params: threads must be 0 to 1024");
	if (!(path = param_str(&p[1])) || path[0] != '/') {
		cairn_free(path);
		return cairn_error_set(CAIRN_EINVAL, "params: the path must be absolute");
	}
	cli_storage_rpc_enter(false);
	rc = add_file(&pc, r->sectors, &a, path);
	cli_storage_rpc_leave();
	cairn_free(path);
	if (rc)
		return rc;
	cairn_sector_name(name, &a.sid);
	cairn_piece_cid_v2(&cid, &pc.info);
	cairn_cid_to_string(v2, &cid);
	cairn_buf_printf(result, "{\"Sector\":\"%s\",\"PieceCID\":\"%s\",\"Offset\":%" PRIu64
			 ",\"PaddedSize\":%" PRIu64 ",\"PayloadSize\":%" PRIu64 "}", name, v2, pc.offset,
			 pc.info.padded_size, pc.info.payload_size);
	return result->err;
}

static int run_add_piece(cli_ctx *ctx, const cli_args *args)
{
	uint64_t size = 0;
	add_args a;
	int fd, rc;

	if ((rc = add_parse(&a, ctx, args)))
		return rc;
	/* the file is checked here, before any store or daemon */
	if (open_piece(&fd, &size, args->argv[1]))
		return cli_fail(ctx, what(ctx));
	close(fd);
	return cli_with_store(ctx, args, what(ctx), do_add, do_add_rpc);
}

/* ---------------------------------------------------------- read-piece */

typedef struct read_args {
	cairn_cid cid;
	uint64_t off, len;  /* len UINT64_MAX: to the end */
	const char *out;    /* NULL or "-": standard output */
} read_args;

/* The arguments, or CLI_USAGE with the message printed. */
static int read_parse(read_args *out, cli_ctx *ctx, const cli_args *args)
{
	const char *o = cli_opt_value(args, "offset"), *l = cli_opt_value(args, "length");

	out->off = 0;
	out->len = UINT64_MAX;
	out->out = cli_opt_value(args, "output");
	if (o && parse_u64(&out->off, o))
		return cli_usage_error(ctx, "--offset must be a byte count, not '%s'", o);
	if (l && parse_u64(&out->len, l))
		return cli_usage_error(ctx, "--length must be a byte count, not '%s'", l);
	if (cairn_cid_parse(&out->cid, args->argv[0], strlen(args->argv[0])))
		return cli_usage_error(ctx, "'%s' is not a piece CID", args->argv[0]);
	if ((!out->out || !strcmp(out->out, "-")) && isatty(fileno(ctx->out)))
		return cli_usage_error(ctx, "the output is binary: give --output, or redirect standard output");
	return 0;
}

/* *len cut to what the piece of `size` bytes has from `off`. */
static int clip_range(uint64_t *len, uint64_t off, uint64_t size)
{
	if (off > size)
		return cairn_error_set(CAIRN_EINVAL, "--offset %" PRIu64 " is past the piece's %" PRIu64
				       " bytes", off, size);
	if (*len > size - off)
		*len = size - off;
	return 0;
}

/* --output FILE (created), else a copy of standard output's descriptor. */
static int open_output(int *fd_out, cli_ctx *ctx, const char *out)
{
	int fd;

	if (!out || !strcmp(out, "-")) {
		fflush(ctx->out);
		fd = dup(fileno(ctx->out));
	} else {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", out ? out : "standard output", strerror(errno));
	*fd_out = fd;
	return 0;
}

static int do_read(cli_ctx *ctx, const cli_args *args, cli_repo *repo)
{
	cairn_sector_reader *r = NULL;
	const char *name;
	uint8_t *buf = NULL;
	read_args a;
	int fd = -1, rc;

	if (read_parse(&a, ctx, args))
		return CLI_USAGE;
	name = a.out ? a.out : "standard output";
	if (cairn_sector_reader_open_cid(&r, repo->sectors, &a.cid) ||
	    clip_range(&a.len, a.off, cairn_sector_reader_size(r)) || open_output(&fd, ctx, a.out) ||
	    !(buf = cairn_malloc(READ_CHUNK)))
		goto fail;
	/* Streamed: memory is one chunk whatever the range. */
	while (a.len) {
		size_t k = a.len < READ_CHUNK ? (size_t)a.len : READ_CHUNK;

		if (cairn_sector_reader_read_at(r, buf, k, a.off) || cairn_file_write_full(fd, buf, k, name))
			goto fail;
		a.off += k;
		a.len -= k;
	}
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	if (fd >= 0)
		close(fd);
	cairn_free(buf);
	cairn_sector_reader_close(r);
	return rc;
}

/* A chunk at a time, one call each: memory is one chunk whatever the
 * range, on both sides (the results go with the arena after each). */
static int do_read_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_buf b = CAIRN_BUF_INIT;
	const char *name, *data;
	read_args a;
	bool first = true;
	int fd = -1, rc = 0;

	if (read_parse(&a, ctx, args))
		return CLI_USAGE;
	name = a.out ? a.out : "standard output";
	while (!rc && (first || a.len)) {
		uint64_t k = a.len < READ_CHUNK ? a.len : READ_CHUNK, size;
		const cairn_node *res = NULL;
		char rest[64];
		size_t n;

		snprintf(rest, sizeof(rest), ",%" PRIu64 ",%" PRIu64, a.off, k);
		if ((rc = call_sector(&res, d, "Cairn.SectorReadPiece", args->argv[0], rest)))
			break;
		size = cli_daemon_uint(res, "Size");
		data = cli_daemon_str(d, res, "Data");
		n = data ? strlen(data) : 0;
		while (n && data[n - 1] == '=')
			n--;
		cairn_buf_clear(&b);
		if (!data || cairn_base_decode(&b, CAIRN_BASE64, data, n)) {
			rc = cairn_error_set(CAIRN_EIO, "the daemon's piece bytes are not base64");
			break;
		}
		if (first && (rc = clip_range(&a.len, a.off, size)))
			break;
		if (b.len != (k < a.len ? k : a.len)) {
			rc = cairn_error_set(CAIRN_EIO, "the daemon sent %zu bytes at %" PRIu64 ", not %" PRIu64,
					     b.len, a.off, k < a.len ? k : a.len);
			break;
		}
		if ((first && (rc = open_output(&fd, ctx, a.out))) ||
		    (b.len && (rc = cairn_file_write_full(fd, b.data, b.len, name))))
			break;
		first = false;
		a.off += b.len;
		a.len -= b.len;
		cairn_arena_reset(d->arena);
	}
	if (fd >= 0)
		close(fd);
	cairn_buf_free(&b);
	return rc ? cli_fail(ctx, what(ctx)) : CLI_OK;
}

/* params: [pieceCid, offset?, length? (at most 4 MiB)] -> {"Size": the
 * payload's bytes, "Data": the range's bytes, base64 with padding as Go
 * encodes []byte; cut at the end of the payload}. Larger ranges take
 * several calls. */
int cli_sector_rpc_read_piece(cairn_buf *result, const cairn_node *params, void *payload)
{
	const cairn_node *p = params->v.list.items;
	size_t n = params->v.list.len, start;
	uint64_t off = 0, len = READ_CHUNK, size = 0;
	cairn_sector_reader *rd = NULL;
	cli_repo *r = payload;
	uint8_t *buf = NULL;
	cairn_cid cid;
	int rc;

	if (p[0].kind != CAIRN_KIND_STRING || cairn_cid_parse(&cid, (const char *)p[0].v.bytes.ptr,
							       p[0].v.bytes.len))
		return cairn_error_set(CAIRN_EINVAL, "params: [pieceCid, offset?, length?]");
	if ((n > 1 && (rc = param_u64(&off, &p[1], "offset"))) ||
	    (n > 2 && (rc = param_u64(&len, &p[2], "length"))))
		return rc;
	if (len > READ_CHUNK)
		return cairn_error_set(CAIRN_ETOOBIG, "params: at most %u bytes a call, not %" PRIu64,
				       READ_CHUNK, len);
	cli_storage_rpc_enter(false);
	if (!(rc = cairn_sector_reader_open_cid(&rd, r->sectors, &cid)) &&
	    !(rc = clip_range(&len, off, size = cairn_sector_reader_size(rd)))) {
		if (len && !(buf = cairn_malloc((size_t)len)))
			rc = CAIRN_ENOMEM;
		else if (len)
			rc = cairn_sector_reader_read_at(rd, buf, (size_t)len, off);
	}
	cairn_sector_reader_close(rd);
	cli_storage_rpc_leave();
	if (!rc) {
		cairn_buf_printf(result, "{\"Size\":%" PRIu64 ",\"Data\":\"", size);
		start = result->len;
		cairn_base_encode(result, CAIRN_BASE64, buf, (size_t)len);
		while ((result->len - start) % 4)
			cairn_buf_putc(result, '=');
		cairn_buf_puts(result, "\"}");
		rc = result->err;
	}
	cairn_free(buf);
	return rc;
}

static int run_read_piece(cli_ctx *ctx, const cli_args *args)
{
	read_args a;
	int rc;

	if ((rc = read_parse(&a, ctx, args)))
		return rc;
	return cli_with_store(ctx, args, what(ctx), do_read, do_read_rpc);
}

/* --------------------------------------------------------------- commd */

static void print_commd(cli_ctx *ctx, const char *sector, const char *commd)
{
	if (ctx->json)
		fprintf(ctx->out, "{\"sector\":\"%s\",\"commd\":\"%s\"}\n", sector, commd);
	else
		fprintf(ctx->out, "%s\n", commd);
}

static int sector_commd(char out[CAIRN_CID_MAX_STRING], cairn_sector_store *st,
			const cairn_sector_id *sid)
{
	uint8_t commd[32];
	cairn_cid cid;
	int rc;

	if ((rc = cairn_sector_commd(commd, st, sid)))
		return rc;
	cairn_piece_cid_v1(&cid, commd);
	cairn_cid_to_string(out, &cid);
	return 0;
}

static int do_commd(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_sector_id sid;

	cairn_sector_name_parse(&sid, args->argv[0]);
	if (sector_commd(s, r->sectors, &sid))
		return cli_fail(ctx, what(ctx));
	print_commd(ctx, args->argv[0], s);
	return CLI_OK;
}

static int do_commd_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res = NULL;
	const char *s = NULL;
	int rc;

	if (!(rc = call_sector(&res, d, "Cairn.SectorCommd", args->argv[0], "")) &&
	    !(s = cli_daemon_str(d, res, "CommD")))
		rc = cairn_error_set(CAIRN_EIO, "the daemon's answer has no CommD");
	if (rc)
		return cli_fail(ctx, what(ctx));
	print_commd(ctx, args->argv[0], s);
	return CLI_OK;
}

/* params: [sector] -> {"CommD": piece CID v1}. */
int cli_sector_rpc_commd(cairn_buf *result, const cairn_node *params, void *payload)
{
	char s[CAIRN_CID_MAX_STRING];
	cli_repo *r = payload;
	cairn_sector_id sid;
	int rc;

	if ((rc = param_sector(&sid, &params->v.list.items[0])))
		return rc;
	cli_storage_rpc_enter(false);
	rc = sector_commd(s, r->sectors, &sid);
	cli_storage_rpc_leave();
	if (rc)
		return rc;
	cairn_buf_printf(result, "{\"CommD\":\"%s\"}", s);
	return result->err;
}

static int run_commd(cli_ctx *ctx, const cli_args *args)
{
	cairn_sector_id sid;
	int rc;

	if ((rc = parse_sector(ctx, &sid, args->argv[0])))
		return rc;
	return cli_with_store(ctx, args, what(ctx), do_commd, do_commd_rpc);
}

/* --------------------------------------------------------------- check */

static int print_problem(const cairn_sector_problem *p, void *payload)
{
	cli_ctx *ctx = payload;
	char name[CAIRN_SECTOR_NAME_MAX];

	cairn_sector_name(name, &p->id);
	if (ctx->json) {
		fprintf(ctx->out, "{\"sector\":\"%s\",\"type\":\"%s\",\"storage_id\":", name,
			cairn_sector_ft_name(p->ft));
		if (p->storage_id)
			fprintf(ctx->out, "\"%s\"", p->storage_id);
		else
			fputs("null", ctx->out);
		fputs(",\"file\":", ctx->out);
		cli_json_string(ctx->out, p->file, strlen(p->file));
		fputs(",\"problem\":", ctx->out);
		cli_json_string(ctx->out, p->what, strlen(p->what));
		fputs("}\n", ctx->out);
	} else {
		fprintf(ctx->out, "%s: %s: %s\n", name, p->file, p->what);
	}
	return 0;
}

/* Checks the sectors named in `names` (every sector for none), each
 * problem to fn; the number of problems or a negative code. */
static int check_sectors(cairn_sector_store *st, char *const *names, size_t n,
			 cairn_sector_problem_fn fn, void *payload)
{
	int problems = 0;

	if (!n)
		return cairn_sector_check(st, NULL, fn, payload);
	for (size_t i = 0; i < n && problems >= 0; i++) {
		cairn_sector_id sid;
		int k;

		if (cairn_sector_name_parse(&sid, names[i]))
			return cairn_error_set(CAIRN_EINVAL, "'%s' is not a sector name", names[i]);
		k = cairn_sector_check(st, &sid, fn, payload);
		problems = k < 0 ? k : problems + k;
	}
	return problems;
}

static int check_done(cli_ctx *ctx, int problems)
{
	if (problems < 0)
		return cli_fail(ctx, what(ctx));
	if (problems > 0) {
		if (!ctx->json)
			fprintf(ctx->err, "cairn: sector check: %d problem%s\n", problems,
				problems == 1 ? "" : "s");
		return CLI_FAILED;
	}
	if (!ctx->json)
		fprintf(ctx->out, "all sector files present with their sizes\n");
	return CLI_OK;
}

static int do_check(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	return check_done(ctx, check_sectors(r->sectors, args->argv, (size_t)args->argc, print_problem, ctx));
}

static int do_check_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_buf p = CAIRN_BUF_INIT;
	const cairn_node *res = NULL;
	int rc;

	cairn_buf_puts(&p, "[[");
	for (int i = 0; i < args->argc; i++) {
		if (i)
			cairn_buf_putc(&p, ',');
		cli_daemon_json_str(&p, args->argv[i]);
	}
	cairn_buf_puts(&p, "]]");
	rc = p.err ? p.err : cli_daemon_call(&res, d, "Cairn.SectorCheck", (const char *)p.data);
	cairn_buf_free(&p);
	if (!rc && res->kind != CAIRN_KIND_LIST)
		rc = cairn_error_set(CAIRN_EIO, "the daemon's problems are not a list");
	for (size_t i = 0; !rc && i < res->v.list.len; i++) {
		const cairn_node *o = &res->v.list.items[i];
		const char *sector = cli_daemon_str(d, o, "Sector"), *type = cli_daemon_str(d, o, "Type");
		cairn_sector_problem pr = {.storage_id = cli_daemon_str(d, o, "StorageID"),
					   .file = cli_daemon_str(d, o, "File"),
					   .what = cli_daemon_str(d, o, "Problem")};

		if (!sector || !type || !pr.file || !pr.what || cairn_sector_name_parse(&pr.id, sector) ||
		    cairn_sector_ft_parse(&pr.ft, type))
			rc = cairn_error_set(CAIRN_EIO, "the daemon's problem is not what cairn sends");
		else
			print_problem(&pr, ctx);
	}
	if (rc)
		return cli_fail(ctx, what(ctx));
	return check_done(ctx, (int)res->v.list.len);
}

static int problem_rpc_row(const cairn_sector_problem *p, void *payload)
{
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_buf *b = payload;

	if (b->len && b->data[b->len - 1] == '}')
		cairn_buf_putc(b, ',');
	cairn_sector_name(name, &p->id);
	cairn_buf_printf(b, "{\"Sector\":\"%s\",\"Type\":\"%s\",\"StorageID\":", name,
			 cairn_sector_ft_name(p->ft));
	if (p->storage_id)
		cli_daemon_json_str(b, p->storage_id);
	else
		cairn_buf_puts(b, "null");
	cairn_buf_puts(b, ",\"File\":");
	cli_daemon_json_str(b, p->file);
	cairn_buf_puts(b, ",\"Problem\":");
	cli_daemon_json_str(b, p->what);
	cairn_buf_putc(b, '}');
	return b->err;
}

/* params: [[sector...]?] (none: every sector) -> [{"Sector", "Type",
 * "StorageID" (or null), "File", "Problem"}]: no problem, an empty list. */
int cli_sector_rpc_check(cairn_buf *result, const cairn_node *params, void *payload)
{
	const cairn_node *l = params->v.list.len ? &params->v.list.items[0] : NULL;
	size_t n = l && l->kind == CAIRN_KIND_LIST ? l->v.list.len : 0;
	cli_repo *r = payload;
	char **names = NULL;
	int rc = 0;

	if (l && l->kind != CAIRN_KIND_LIST && l->kind != CAIRN_KIND_NULL)
		return cairn_error_set(CAIRN_EINVAL, "params: [[sector...]?]");
	if (n && !(names = cairn_calloc(n, sizeof(*names))))
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++)
		if (!(names[i] = param_str(&l->v.list.items[i])))
			rc = cairn_error_set(CAIRN_EINVAL, "params: sector %zu is not a string", i);
	if (!rc) {
		cairn_buf_putc(result, '[');
		cli_storage_rpc_enter(false);
		rc = check_sectors(r->sectors, names, n, problem_rpc_row, result);
		cli_storage_rpc_leave();
		rc = rc < 0 ? rc : result->err;
		cairn_buf_putc(result, ']');
	}
	for (size_t i = 0; i < n; i++)
		cairn_free(names[i]);
	cairn_free(names);
	return rc ? rc : result->err;
}

static int run_check(cli_ctx *ctx, const cli_args *args)
{
	for (int i = 0; i < args->argc; i++) {
		cairn_sector_id sid;
		int rc;

		if ((rc = parse_sector(ctx, &sid, args->argv[i])))
			return rc;
	}
	return cli_with_store(ctx, args, what(ctx), do_check, do_check_rpc);
}

/* ---------------------------------------------------------------- list */

static int print_sector(const cairn_sector_info *in, void *payload)
{
	cli_ctx *ctx = payload;
	char name[CAIRN_SECTOR_NAME_MAX];

	cairn_sector_name(name, &in->id);
	if (ctx->json) {
		fprintf(ctx->out, "{\"sector\":\"%s\",\"proof\":%u,\"size\":%" PRIu64 ",\"pieces\":%zu,"
			"\"used\":%" PRIu64 ",\"types\":[", name, in->proof, in->size, in->n_pieces,
			in->pieces_end);
		for (unsigned i = 0, first = 1; i < 3; i++)
			if (in->types & (1u << i)) {
				fprintf(ctx->out, "%s\"%s\"", first ? "" : ",", cairn_sector_ft_name(1u << i));
				first = 0;
			}
		fputs("]}\n", ctx->out);
		return 0;
	}
	fprintf(ctx->out, "%-24s size %-12" PRIu64 " pieces %-4zu used %-12" PRIu64 " files:", name,
		in->size, in->n_pieces, in->pieces_end);
	for (unsigned i = 0; i < 3; i++)
		if (in->types & (1u << i))
			fprintf(ctx->out, " %s", cairn_sector_ft_name(1u << i));
	fputc('\n', ctx->out);
	return 0;
}

static int do_list(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	(void)args;
	return cairn_sector_list(r->sectors, print_sector, ctx) ? cli_fail(ctx, what(ctx)) : CLI_OK;
}

static int do_list_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	const cairn_node *res = NULL;
	int rc = 0;

	(void)args;
	if (cli_daemon_call(&res, d, "Cairn.SectorList", "[]"))
		return cli_fail(ctx, what(ctx));
	if (res->kind != CAIRN_KIND_LIST)
		rc = cairn_error_set(CAIRN_EIO, "the daemon's sector list is not a list");
	for (size_t i = 0; !rc && i < res->v.list.len; i++) {
		const cairn_node *o = &res->v.list.items[i];
		const char *name = cli_daemon_str(d, o, "Sector");
		cairn_sector_info in = {.proof = (unsigned)cli_daemon_uint(o, "Proof"),
					.size = cli_daemon_uint(o, "Size"),
					.pieces_end = cli_daemon_uint(o, "Used"),
					.n_pieces = (size_t)cli_daemon_uint(o, "Pieces"),
					.types = (unsigned)cli_daemon_uint(o, "Types")};

		if (!name || cairn_sector_name_parse(&in.id, name))
			rc = cairn_error_set(CAIRN_EIO, "the daemon's sector is not what cairn sends");
		else
			print_sector(&in, ctx);
	}
	return rc ? cli_fail(ctx, what(ctx)) : CLI_OK;
}

static int sector_rpc_row(const cairn_sector_info *in, void *payload)
{
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_buf *b = payload;

	if (b->len && b->data[b->len - 1] == '}')
		cairn_buf_putc(b, ',');
	cairn_sector_name(name, &in->id);
	cairn_buf_printf(b, "{\"Sector\":\"%s\",\"Proof\":%u,\"Size\":%" PRIu64 ",\"Pieces\":%zu,"
			 "\"Used\":%" PRIu64 ",\"Types\":%u}", name, in->proof, in->size, in->n_pieces,
			 in->pieces_end, in->types);
	return b->err;
}

/* params: [] -> [{"Sector", "Proof", "Size", "Pieces" (a count), "Used"
 * (padded bytes), "Types" (bits: 1 unsealed, 2 sealed, 4 cache)}]. */
int cli_sector_rpc_list(cairn_buf *result, const cairn_node *params, void *payload)
{
	cli_repo *r = payload;
	int rc;

	(void)params;
	cairn_buf_putc(result, '[');
	cli_storage_rpc_enter(false);
	rc = cairn_sector_list(r->sectors, sector_rpc_row, result);
	cli_storage_rpc_leave();
	if (rc)
		return rc;
	cairn_buf_putc(result, ']');
	return result->err;
}

static int run_list(cli_ctx *ctx, const cli_args *args)
{
	return cli_with_store(ctx, args, what(ctx), do_list, do_list_rpc);
}

/* ---------------------------------------------------------------- move */

static void print_move(cli_ctx *ctx, const char *sector, const char *dest)
{
	if (ctx->json)
		fprintf(ctx->out, "{\"sector\":\"%s\",\"moved\":true}\n", sector);
	else
		fprintf(ctx->out, "moved %s to %s\n", sector, dest);
}

/* Moves the files of types `ft` (all: the types the sector has). */
static int move_sector(cairn_sector_store *st, const cairn_sector_id *sid, bool all, unsigned ft,
		       const char *dest)
{
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_sector_info si;
	int rc;

	if (all) {
		if ((rc = cairn_sector_get(&si, st, sid)))
			return rc;
		ft = si.types;
		cairn_sector_info_clear(&si);
	}
	if (!ft) {
		cairn_sector_name(name, sid);
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: no files to move", name);
	}
	return cairn_sector_move(st, sid, ft, dest);
}

/* The arguments, or CLI_USAGE with the message printed. */
static int move_parse(cairn_sector_id *sid, unsigned *ft, cli_ctx *ctx, const cli_args *args)
{
	const char *types = cli_opt_value(args, "type");
	int rc;

	*ft = 0;
	if ((rc = parse_sector(ctx, sid, args->argv[0])))
		return rc;
	if (types && cairn_sector_ft_parse(ft, types))
		return cli_usage_error(ctx, "--type must be unsealed, sealed and/or cache, not '%s'", types);
	return 0;
}

static int do_move(cli_ctx *ctx, const cli_args *args, cli_repo *r)
{
	cairn_sector_id sid;
	unsigned ft;

	if (move_parse(&sid, &ft, ctx, args))
		return CLI_USAGE;
	if (move_sector(r->sectors, &sid, !cli_opt_value(args, "type"), ft, args->argv[1]))
		return cli_fail(ctx, what(ctx));
	print_move(ctx, args->argv[0], args->argv[1]);
	return CLI_OK;
}

static int do_move_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d)
{
	cairn_buf p = CAIRN_BUF_INIT, dest = CAIRN_BUF_INIT;
	const cairn_node *res = NULL;
	cairn_sector_id sid;
	unsigned ft;
	int rc;

	if (move_parse(&sid, &ft, ctx, args))
		return CLI_USAGE;
	if ((rc = cli_storage_abs_path(&dest, args->argv[1], true)))
		return cli_fail(ctx, what(ctx));
	cairn_buf_putc(&p, ',');
	cli_daemon_json_str(&p, (const char *)dest.data);
	if (cli_opt_value(args, "type"))
		cairn_buf_printf(&p, ",%u", ft);
	else
		cairn_buf_puts(&p, ",null");
	rc = p.err || dest.err ? CAIRN_ENOMEM
			       : call_sector(&res, d, "Cairn.SectorMove", args->argv[0], (const char *)p.data);
	cairn_buf_free(&p);
	cairn_buf_free(&dest);
	if (rc)
		return cli_fail(ctx, what(ctx));
	print_move(ctx, args->argv[0], args->argv[1]);
	return CLI_OK;
}

/* params: [sector, destination (absolute path or UUID), types (bits) or
 * null (the types the sector has)] -> null. */
int cli_sector_rpc_move(cairn_buf *result, const cairn_node *params, void *payload)
{
	const cairn_node *p = params->v.list.items;
	bool all = params->v.list.len < 3 || p[2].kind == CAIRN_KIND_NULL;
	cli_repo *r = payload;
	cairn_sector_id sid;
	uint64_t ft = 0;
	char *dest;
	int rc;

	if ((rc = param_sector(&sid, &p[0])) || (!all && (rc = param_u64(&ft, &p[2], "types"))))
		return rc;
	if (ft > CAIRN_SECTOR_FT_ALL)
		return cairn_error_set(CAIRN_EINVAL, "params: types must be bits of 7");
	if (!(dest = param_str(&p[1])))
		return cairn_error_set(CAIRN_EINVAL, "params: the destination must be a path or UUID");
	cli_storage_rpc_enter(false);
	rc = move_sector(r->sectors, &sid, all, (unsigned)ft, dest);
	cli_storage_rpc_leave();
	cairn_free(dest);
	if (rc)
		return rc;
	cairn_buf_puts(result, "null");
	return result->err;
}

static int run_move(cli_ctx *ctx, const cli_args *args)
{
	cairn_sector_id sid;
	unsigned ft;
	int rc;

	if ((rc = move_parse(&sid, &ft, ctx, args)))
		return rc;
	return cli_with_store(ctx, args, what(ctx), do_move, do_move_rpc);
}

/* ------------------------------------------------------------- the table */

static const cli_opt repo_opts[] = {
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

static const cli_opt add_opts[] = {
	CLI_OPT_REPO,
	{"size", 's', "SIZE", "the sector's size, to create it: 2KiB, 8MiB, 512MiB, 32GiB or 64GiB"},
	{"threads", 't', "N", "hash on N threads (default 0: one per core)"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt read_opts[] = {
	CLI_OPT_REPO,
	{"offset", 0, "N", "start at payload byte N (default 0)"},
	{"length", 0, "N", "read N bytes (default: to the end of the payload)"},
	{"output", 'o', "FILE", "write to FILE (default: standard output)"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt move_opts[] = {
	CLI_OPT_REPO,
	{"type", 0, "TYPES", "which files: unsealed, sealed, cache, joined by ',' (default: all it has)"},
	{NULL, 0, NULL, NULL},
};

static const cli_cmd add_cmd = {
	.name = "add-piece",
	.summary = "Add a file as a piece to a sector's unsealed copy; print its piece CID.",
	.usage = "SECTOR FILE|CAR",
	.description = "The file's bytes are the payload (a CAR is not parsed). The piece goes\n"
		       "where Filecoin puts it: at the next multiple of its padded size, zero\n"
		       "filler pieces before it. Its bytes are fr32-padded into the sector's\n"
		       "unsealed file and its CommP computed on the way. A new sector needs\n"
		       "--size; its unsealed file goes to the sealing path with the most room.\n"
		       "Example:\n"
		       "  cairn sector add-piece --size 32GiB s-t01000-1 deal.car",
	.opts = add_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_add_piece,
};

static const cli_cmd read_cmd = {
	.name = "read-piece",
	.summary = "Read a piece's payload (or a byte range of it) out of its sector.",
	.usage = "PIECE-CID",
	.description = "Reads the unsealed copy, unpadding on the fly, straight from the file\n"
		       "(no scheduler). A sector with no unsealed copy fails: unsealing needs the\n"
		       "proofs library. Example:\n"
		       "  cairn sector read-piece --offset 1000 --length 100 baga6ea4seaq...",
	.opts = read_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_read_piece,
};

static const cli_cmd commd_cmd = {
	.name = "commd",
	.summary = "Print the unsealed-sector commitment (CommD) of a sector.",
	.usage = "SECTOR",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_commd,
};

static const cli_cmd check_cmd = {
	.name = "check",
	.summary = "Report missing or wrong-sized sector files.",
	.usage = "[SECTOR...]",
	.description = "Each declared file must be there with its size: an unsealed file with a\n"
		       "valid trailer, a sealed file of the sector's size, a cache with p_aux\n"
		       "(64 bytes), t_aux and its tree-r-last files; a sector with pieces must\n"
		       "have an unsealed copy. Exit status 1 when any problem is found.",
	.opts = repo_opts,
	.min_args = 0,
	.max_args = -1,
	.run = run_check,
};

static const cli_cmd list_cmd = {
	.name = "list",
	.summary = "List the sectors with their sizes, pieces and files.",
	.opts = repo_opts,
	.max_args = 0,
	.run = run_list,
};

static const cli_cmd move_cmd = {
	.name = "move",
	.summary = "Move a sector's files to another storage path.",
	.usage = "SECTOR PATH|ID",
	.description = "A rename on one file system; across disks a sparse copy under the\n"
		       "destination's fetching/ folder, fsynced, renamed into place, then the\n"
		       "source removed. The destination must be a storage path (--store).",
	.opts = move_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_move,
};

static const cli_cmd *const sector_subs[] = {&add_cmd, &check_cmd, &commd_cmd, &list_cmd, &move_cmd,
					     &read_cmd, NULL};

const cli_cmd cli_sector_cmd = {
	.name = "sector",
	.summary = "Sectors: add pieces, read them back, CommD, check, move.",
	.subs = sector_subs,
};
