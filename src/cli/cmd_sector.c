/* cmd_sector.c: `cairn sector`: pieces into sectors and back: add-piece,
 * read-piece, commd, check, list and move, on the store's storage paths. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "repo.h"

#define READ_CHUNK (4u << 20)

typedef struct {
	cli_repo repo;
	cairn_sector_store *st;
} sector_ctx;

static const char *what(const cli_ctx *ctx)
{
	return ctx->path + strlen("cairn ");
}

static int open_store(sector_ctx *c, cli_ctx *ctx, const cli_args *args)
{
	if (cli_repo_open(&c->repo, args))
		return cli_fail(ctx, what(ctx));
	c->st = c->repo.sectors;
	return 0;
}

static void close_store(sector_ctx *c)
{
	cli_repo_close(&c->repo);
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

static int run_add_piece(cli_ctx *ctx, const cli_args *args)
{
	const char *size_s = cli_opt_value(args, "size"), *t = cli_opt_value(args, "threads");
	const char *file = args->argv[1];
	unsigned proof = UINT32_MAX;
	cairn_sector_piece pc;
	cairn_sector_id sid;
	sector_ctx c;
	struct stat sb;
	uint64_t threads = 0;
	int fd, rc;

	if ((rc = parse_sector(ctx, &sid, args->argv[0])))
		return rc;
	if (size_s) {
		uint64_t size;

		if (cairn_sector_size_parse(&size, size_s) || cairn_sector_proof_for_size(&proof, size))
			return cli_usage_error(ctx, "--size must be a sector size (2KiB, 8MiB, 512MiB, 32GiB or "
					       "64GiB), not '%s'", size_s);
	}
	if (t && (parse_u64(&threads, t) || threads > 1024))
		return cli_usage_error(ctx, "--threads must be a number from 0 to 1024, not '%s'", t);
	if (!strcmp(file, "-"))
		return cli_usage_error(ctx, "the piece must be a file: its size decides where it goes in the sector");
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		cairn_error_set(CAIRN_EIO, "%s: %s", file, strerror(errno));
		return cli_fail(ctx, what(ctx));
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		/* The padded size, hence the place in the sector, comes from
		 * the size: it must be known before the first byte. */
		cairn_error_set(CAIRN_EINVAL, "%s: not a regular file (the piece's size must be known)",
				file);
		return cli_fail(ctx, what(ctx));
	}
	if ((rc = open_store(&c, ctx, args))) {
		close(fd);
		return rc;
	}
	if (cairn_sector_add_piece(&pc, c.st, &sid, proof, fd, 0, (uint64_t)sb.st_size, file,
				   (unsigned)threads))
		rc = cli_fail(ctx, what(ctx));
	else
		print_piece(ctx, &pc, args->argv[0]);
	close(fd);
	close_store(&c);
	return rc;
}

/* ---------------------------------------------------------- read-piece */

static int run_read_piece(cli_ctx *ctx, const cli_args *args)
{
	const char *o = cli_opt_value(args, "offset"), *l = cli_opt_value(args, "length");
	const char *out = cli_opt_value(args, "output");
	cairn_sector_reader *r = NULL;
	uint64_t off = 0, len = UINT64_MAX, size;
	uint8_t *buf = NULL;
	cairn_cid cid;
	sector_ctx c;
	int fd = -1, rc;

	if (o && parse_u64(&off, o))
		return cli_usage_error(ctx, "--offset must be a byte count, not '%s'", o);
	if (l && parse_u64(&len, l))
		return cli_usage_error(ctx, "--length must be a byte count, not '%s'", l);
	if (cairn_cid_parse(&cid, args->argv[0], strlen(args->argv[0])))
		return cli_usage_error(ctx, "'%s' is not a piece CID", args->argv[0]);
	if ((!out || !strcmp(out, "-")) && isatty(fileno(ctx->out)))
		return cli_usage_error(ctx, "the output is binary: give --output, or redirect standard output");
	if ((rc = open_store(&c, ctx, args)))
		return rc;
	if (cairn_sector_reader_open_cid(&r, c.st, &cid))
		goto fail;
	size = cairn_sector_reader_size(r);
	if (off > size) {
		cairn_error_set(CAIRN_EINVAL, "--offset %" PRIu64 " is past the piece's %" PRIu64 " bytes",
				off, size);
		goto fail;
	}
	if (len > size - off)
		len = size - off;
	if (!out || !strcmp(out, "-")) {
		fflush(ctx->out);
		fd = dup(fileno(ctx->out));
	} else {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		cairn_error_set(CAIRN_EIO, "%s: %s", out ? out : "standard output", strerror(errno));
		goto fail;
	}
	if (!(buf = cairn_malloc(READ_CHUNK)))
		goto fail;
	/* Streamed: memory is one chunk whatever the range. */
	while (len) {
		size_t k = len < READ_CHUNK ? (size_t)len : READ_CHUNK;

		if (cairn_sector_reader_read_at(r, buf, k, off) ||
		    cairn_file_write_full(fd, buf, k, out ? out : "standard output"))
			goto fail;
		off += k;
		len -= k;
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
	close_store(&c);
	return rc;
}

/* --------------------------------------------------------------- commd */

static int run_commd(cli_ctx *ctx, const cli_args *args)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_sector_id sid;
	uint8_t commd[32];
	cairn_cid cid;
	sector_ctx c;
	int rc;

	if ((rc = parse_sector(ctx, &sid, args->argv[0])) || (rc = open_store(&c, ctx, args)))
		return rc;
	if (cairn_sector_commd(commd, c.st, &sid)) {
		rc = cli_fail(ctx, what(ctx));
	} else {
		cairn_piece_cid_v1(&cid, commd);
		cairn_cid_to_string(s, &cid);
		if (ctx->json)
			fprintf(ctx->out, "{\"sector\":\"%s\",\"commd\":\"%s\"}\n", args->argv[0], s);
		else
			fprintf(ctx->out, "%s\n", s);
	}
	close_store(&c);
	return rc;
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

static int run_check(cli_ctx *ctx, const cli_args *args)
{
	sector_ctx c;
	int rc, problems = 0;

	for (int i = 0; i < args->argc; i++) {
		cairn_sector_id sid;

		if ((rc = parse_sector(ctx, &sid, args->argv[i])))
			return rc;
	}
	if ((rc = open_store(&c, ctx, args)))
		return rc;
	if (!args->argc) {
		problems = cairn_sector_check(c.st, NULL, print_problem, ctx);
	} else {
		for (int i = 0; i < args->argc && problems >= 0; i++) {
			cairn_sector_id sid;
			int n;

			cairn_sector_name_parse(&sid, args->argv[i]);
			n = cairn_sector_check(c.st, &sid, print_problem, ctx);
			problems = n < 0 ? n : problems + n;
		}
	}
	if (problems < 0)
		rc = cli_fail(ctx, what(ctx));
	else if (problems > 0) {
		if (!ctx->json)
			fprintf(ctx->err, "cairn: sector check: %d problem%s\n", problems,
				problems == 1 ? "" : "s");
		rc = CLI_FAILED;
	} else {
		if (!ctx->json)
			fprintf(ctx->out, "all sector files present with their sizes\n");
		rc = CLI_OK;
	}
	close_store(&c);
	return rc;
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

static int run_list(cli_ctx *ctx, const cli_args *args)
{
	sector_ctx c;
	int rc;

	if ((rc = open_store(&c, ctx, args)))
		return rc;
	rc = cairn_sector_list(c.st, print_sector, ctx) ? cli_fail(ctx, what(ctx)) : CLI_OK;
	close_store(&c);
	return rc;
}

/* ---------------------------------------------------------------- move */

static int run_move(cli_ctx *ctx, const cli_args *args)
{
	const char *types = cli_opt_value(args, "type");
	unsigned ft = CAIRN_SECTOR_FT_ALL;
	cairn_sector_info si;
	cairn_sector_id sid;
	sector_ctx c;
	int rc;

	if ((rc = parse_sector(ctx, &sid, args->argv[0])))
		return rc;
	if (types && cairn_sector_ft_parse(&ft, types))
		return cli_usage_error(ctx, "--type must be unsealed, sealed and/or cache, not '%s'", types);
	if ((rc = open_store(&c, ctx, args)))
		return rc;
	/* Without --type: the types the sector has. */
	if (!types) {
		if (cairn_sector_get(&si, c.st, &sid)) {
			rc = cli_fail(ctx, what(ctx));
			close_store(&c);
			return rc;
		}
		ft = si.types;
		cairn_sector_info_clear(&si);
	}
	if (!ft || cairn_sector_move(c.st, &sid, ft, args->argv[1])) {
		if (!ft)
			cairn_error_set(CAIRN_ENOTFOUND, "%s: no files to move", args->argv[0]);
		rc = cli_fail(ctx, what(ctx));
	} else {
		if (ctx->json)
			fprintf(ctx->out, "{\"sector\":\"%s\",\"moved\":true}\n", args->argv[0]);
		else
			fprintf(ctx->out, "moved %s to %s\n", args->argv[0], args->argv[1]);
	}
	close_store(&c);
	return rc;
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
