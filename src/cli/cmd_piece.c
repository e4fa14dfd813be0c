/* cmd_piece.c: `cairn piece`: Filecoin pieces: CommP and piece CIDs of files,
 * fr32 pad and unpad, and the CommD of a sector from its pieces.
 *
 * Every command streams: files are read in 4 MiB pieces, so memory stays
 * flat whatever their size. Files written go to a temporary name beside the
 * output and are renamed into place only when complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"

#define READ_CHUNK (4u << 20)
/* Below this a progress bar would only flash on the screen. */
#define PROGRESS_MIN (64ull << 20)
/* File bytes handed to the hasher between progress updates. */
#define PROGRESS_STEP (64ull << 20)

static const char *what(const cli_ctx *ctx)
{
	return ctx->path + strlen("cairn ");
}

static int fail(cli_ctx *ctx)
{
	return cli_fail(ctx, what(ctx));
}

static int parse_threads(cli_ctx *ctx, const cli_args *args, unsigned *out)
{
	const char *t = cli_opt_value(args, "threads");
	char *end;
	unsigned long v;

	*out = 0;
	if (!t)
		return 0;
	v = strtoul(t, &end, 10);
	if (*t < '0' || *t > '9' || *end || v > 1024)
		return cli_usage_error(ctx, "--threads must be a number from 0 to 1024, not '%s'", t);
	*out = (unsigned)v;
	return 0;
}

/* --------------------------------------------------------- input files */

typedef struct {
	int fd;
	const char *name;  /* for messages */
	uint64_t start;    /* the descriptor's offset when opened (stdin may be past 0) */
	uint64_t size;     /* bytes from there to the end; 0 when unknown (a pipe) */
} in_file;

static int in_open(in_file *f, const char *path)
{
	struct stat st;

	f->name = path;
	f->size = 0;
	if (!strcmp(path, "-")) {
		f->fd = STDIN_FILENO;
		f->name = "standard input";
	} else if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	}
	f->start = 0;
	if (fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t at = lseek(f->fd, 0, SEEK_CUR);

		f->start = at > 0 ? (uint64_t)at : 0;
		f->size = (uint64_t)st.st_size > f->start ? (uint64_t)st.st_size - f->start : 0;
	} else if (fstat(f->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		return cairn_error_set(CAIRN_EINVAL, "%s: is a directory", path);
	}
#ifdef POSIX_FADV_SEQUENTIAL
	if (f->size)
		posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	return 0;
}

static void in_close(in_file *f)
{
	if (f->fd > STDIN_FILENO)
		close(f->fd);
	f->fd = -1;
}

/* Reads up to n bytes; returns the count (0 at the end) or a negative code. */
static ssize_t in_read(in_file *f, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(f->fd, buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cairn_error_set(CAIRN_EIO, "%s: read: %s", f->name, strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* --------------------------------------------------------------- commp */

typedef struct {
	const char *file;
	cairn_piece_info info;
} commp_result;

/* A regular file is read by the hashing threads themselves, in steps that
 * let the progress bar move; what follows its size at the start (a file
 * still growing), and a pipe, are read here straight into the hasher's
 * buffers. Either way the payload is never copied. */
static int commp_file(commp_result *res, const char *path, unsigned threads)
{
	cairn_commp *c = NULL;
	cairn_progress p = {.active = false};
	in_file f = {.fd = -1};
	uint64_t done = 0;
	int rc;

	res->file = path;
	if ((rc = in_open(&f, path)) || (rc = cairn_commp_new(&c, threads)))
		goto out;
	cairn_progress_start(&p, STDERR_FILENO, false, path, f.size);
	if (f.size < PROGRESS_MIN)
		p.active = false;
	while (done < f.size) {
		uint64_t k = f.size - done < PROGRESS_STEP ? f.size - done : PROGRESS_STEP;

		if ((rc = cairn_commp_write_file(c, f.fd, f.start + done, k, f.name)))
			goto out;
		done += k;
		cairn_progress_update(&p, done);
	}
	if (f.size && lseek(f.fd, (off_t)(f.start + f.size), SEEK_SET) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: seek: %s", f.name, strerror(errno));
		goto out;
	}
	for (;;) {
		uint8_t *buf;
		size_t room;
		ssize_t n;

		if ((rc = cairn_commp_buffer(&buf, &room, c))) {
			cairn_error_prefix("%s: ", f.name);
			goto out;
		}
		if ((n = in_read(&f, buf, room)) < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = cairn_commp_commit(c, (size_t)n)))
			goto out;
		done += (uint64_t)n;
		cairn_progress_update(&p, done);
	}
	rc = cairn_commp_finish(&res->info, c);
out:
	/* Ends the bar's line, so that a message starts on its own. */
	if (p.active)
		cairn_progress_finish(&p);
	cairn_commp_free(c);
	in_close(&f);
	return rc;
}

static void print_commp(cli_ctx *ctx, const commp_result *r, bool several, bool first)
{
	char v2[CAIRN_CID_MAX_STRING], v1[CAIRN_CID_MAX_STRING], hex[65];
	cairn_cid cid;
	FILE *f = ctx->out;

	cairn_piece_cid_v2(&cid, &r->info);
	cairn_cid_to_string(v2, &cid);
	cairn_piece_cid_v1(&cid, r->info.commp);
	cairn_cid_to_string(v1, &cid);
	if (ctx->json) {
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", r->info.commp[i]);
		fputs("{\"file\":", f);
		cli_json_string(f, r->file, strlen(r->file));
		fprintf(f, ",\"piece_cid\":\"%s\",\"piece_cid_v1\":\"%s\",\"commp_hex\":\"%s\","
			   "\"payload_size\":%llu,\"padded_piece_size\":%llu,\"height\":%u,\"padding\":%llu}\n",
			v2, v1, hex, (unsigned long long)r->info.payload_size,
			(unsigned long long)r->info.padded_size, r->info.height,
			(unsigned long long)r->info.padding);
		return;
	}
	if (several)
		fprintf(f, "%sfile:          %s\n", first ? "" : "\n", r->file);
	fprintf(f, "piece CID:     %s\npiece CID v1:  %s\npadded size:   %llu\npayload size:  %llu\n",
		v2, v1, (unsigned long long)r->info.padded_size,
		(unsigned long long)r->info.payload_size);
}

static int run_commp(cli_ctx *ctx, const cli_args *args)
{
	unsigned threads;
	int ret = CLI_OK, rc, printed = 0;

	if ((rc = parse_threads(ctx, args, &threads)))
		return rc;
	/* One file failing does not stop the others; the status says so. */
	for (int i = 0; i < args->argc; i++) {
		commp_result r;

		if (commp_file(&r, args->argv[i], threads)) {
			ret = fail(ctx);
			continue;
		}
		print_commp(ctx, &r, args->argc > 1, printed++ == 0);
		fflush(ctx->out);
	}
	return ret;
}

/* ----------------------------------------------------------- pad, unpad */

typedef struct {
	cli_out *o;
	uint64_t limit;   /* bytes to keep; UINT64_MAX for all */
	uint64_t written;
} sink_state;

static int sink_write(void *payload, const uint8_t *p, size_t n)
{
	sink_state *s = payload;
	uint64_t room = s->limit - s->written;

	if (n > room)
		n = (size_t)room;
	if (!n)
		return 0;
	s->written += n;
	return cairn_file_write_full(s->o->fd, p, n, s->o->path);
}

static int write_zeros(cli_out *o, uint64_t n, uint8_t *buf)
{
	memset(buf, 0, READ_CHUNK);
	while (n) {
		size_t k = n < READ_CHUNK ? (size_t)n : READ_CHUNK;
		int rc = cairn_file_write_full(o->fd, buf, k, o->path);

		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

/* Streams IN through fr32 into OUT. `in_limit` stops reading early (unpad
 * --size); `out_limit` cuts the output. */
static int fr32_copy(cairn_fr32_dir dir, const char *in_path, cli_out *o, uint64_t in_limit,
		     uint64_t out_limit, uint64_t *in_total, uint64_t *out_total, uint8_t *buf)
{
	cairn_fr32_stream *s = NULL;
	sink_state st = {o, out_limit, 0};
	in_file f = {.fd = -1};
	cairn_progress p = {.active = false};
	uint64_t done = 0;
	int rc;

	if ((rc = in_open(&f, in_path)) || (rc = cairn_fr32_stream_new(&s, dir, sink_write, &st)))
		goto out;
	cairn_progress_start(&p, STDERR_FILENO, false, in_path, f.size);
	if (f.size < PROGRESS_MIN || o->in_place)
		p.active = false;
	while (done < in_limit) {
		size_t want = in_limit - done < READ_CHUNK ? (size_t)(in_limit - done) : READ_CHUNK;
		ssize_t n = in_read(&f, buf, want);

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		if ((rc = cairn_fr32_stream_write(s, buf, (size_t)n)))
			goto named;
		done += (uint64_t)n;
		cairn_progress_update(&p, done);
	}
	if ((rc = cairn_fr32_stream_finish(s, NULL)))
		goto named;
	*in_total = done;
	*out_total = st.written;
	goto out;
named:
	/* The stream's own messages ("fr32 unpad: at byte N") need the file. */
	if (rc == CAIRN_ECORRUPT)
		cairn_error_prefix("%s: ", f.name);
out:
	if (p.active)
		cairn_progress_finish(&p);
	cairn_fr32_stream_free(s);
	in_close(&f);
	return rc;
}

static int check_out_tty(cli_ctx *ctx, const char *out)
{
	if (!strcmp(out, "-") && isatty(fileno(ctx->out)))
		return cli_usage_error(ctx, "the output is binary: give OUT, or redirect standard output");
	return 0;
}

static int run_pad(cli_ctx *ctx, const cli_args *args)
{
	const char *in = args->argv[0], *out = args->argv[1];
	bool full = cli_opt_flag(args, "full");
	cli_out o = {.fd = -1};
	uint64_t nin, nout;
	uint8_t *buf = NULL;
	cairn_piece_info sizes;
	int rc;

	if ((rc = check_out_tty(ctx, out)))
		return rc;
	if (!(buf = cairn_malloc(READ_CHUNK)) || cli_out_open(ctx, &o, out, true))
		goto fail;
	if (fr32_copy(CAIRN_FR32_PAD, in, &o, UINT64_MAX, UINT64_MAX, &nin, &nout, buf))
		goto fail;
	/* --full: the rest of the piece is zeros, padded or not. */
	if (full && (cairn_piece_sizes(&sizes, nin) || write_zeros(&o, sizes.padded_size - nout, buf)))
		goto fail;
	if (cli_out_commit(&o))
		goto fail;
	cairn_free(buf);
	return CLI_OK;
fail:
	rc = fail(ctx);
	cli_out_abort(&o);
	cairn_free(buf);
	return rc;
}

static int run_unpad(cli_ctx *ctx, const cli_args *args)
{
	const char *in = args->argv[0], *out = args->argv[1], *size_s = cli_opt_value(args, "size");
	uint64_t size = UINT64_MAX, in_limit = UINT64_MAX, nin, nout;
	cli_out o = {.fd = -1};
	uint8_t *buf = NULL;
	int rc;

	if (size_s) {
		if (cli_parse_size(&size, size_s) || size > CAIRN_PIECE_MAX_PAYLOAD)
			return cli_usage_error(ctx, "--size must be a byte count (e.g. 1016 or 2MiB), not '%s'",
					       size_s);
		/* Only the quads that hold those bytes are read. */
		in_limit = (size + CAIRN_FR32_IN_QUAD - 1) / CAIRN_FR32_IN_QUAD * CAIRN_FR32_OUT_QUAD;
	}
	if ((rc = check_out_tty(ctx, out)))
		return rc;
	if (!(buf = cairn_malloc(READ_CHUNK)) || cli_out_open(ctx, &o, out, true))
		goto fail;
	if (fr32_copy(CAIRN_FR32_UNPAD, in, &o, in_limit, size, &nin, &nout, buf))
		goto fail;
	if (size != UINT64_MAX && nout < size) {
		cairn_error_set(CAIRN_EINVAL, "%s: holds %llu bytes unpadded, --size asks for %llu",
				strcmp(in, "-") ? in : "standard input", (unsigned long long)nout,
				(unsigned long long)size);
		goto fail;
	}
	if (cli_out_commit(&o))
		goto fail;
	cairn_free(buf);
	return CLI_OK;
fail:
	rc = fail(ctx);
	cli_out_abort(&o);
	cairn_free(buf);
	return rc;
}

/* --------------------------------------------------------------- commd */

/* "CIDv2" or "CIDv1:PADDEDSIZE". */
static int parse_piece(cairn_piece_info *out, const char *s)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	cairn_cid cid;
	uint64_t size;
	int rc;

	if ((rc = cairn_cid_parse(&cid, s, n)) || (rc = cairn_piece_cid_decode(out, &cid)))
		return cairn_error_prefix("piece '%s': ", s);
	if (colon) {
		if (cli_parse_size(&size, colon + 1))
			return cairn_error_set(CAIRN_EINVAL, "piece '%s': bad size after ':'", s);
		if (out->padded_size && out->padded_size != size)
			return cairn_error_set(CAIRN_EINVAL,
				"piece '%s': the CID says %llu bytes, not %llu", s,
				(unsigned long long)out->padded_size, (unsigned long long)size);
		out->padded_size = size;
	} else if (!out->padded_size) {
		return cairn_error_set(CAIRN_EINVAL,
			"piece '%s': a v1 piece CID does not carry its size: write CID:PADDEDSIZE", s);
	}
	return 0;
}

static int run_commd(cli_ctx *ctx, const cli_args *args)
{
	const char *ss = cli_opt_value(args, "sector-size");
	cairn_piece_info *pieces;
	uint64_t sector;
	uint8_t commd[32];
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid cid;
	int ret = CLI_OK;

	if (!ss)
		return cli_usage_error(ctx, "--sector-size is required (e.g. 32GiB)");
	if (cli_parse_size(&sector, ss))
		return cli_usage_error(ctx, "--sector-size must be a byte count (e.g. 32GiB), not '%s'", ss);
	if (!(pieces = cairn_calloc((size_t)args->argc + 1, sizeof(*pieces))))
		return fail(ctx);
	for (int i = 0; i < args->argc; i++)
		if (parse_piece(&pieces[i], args->argv[i]))
			goto fail;
	if (cairn_piece_commd(commd, sector, pieces, (size_t)args->argc))
		goto fail;
	cairn_piece_cid_v1(&cid, commd);
	cairn_cid_to_string(s, &cid);
	if (ctx->json)
		fprintf(ctx->out, "{\"commd\":\"%s\",\"sector_size\":%llu,\"pieces\":%d}\n", s,
			(unsigned long long)sector, args->argc);
	else
		fprintf(ctx->out, "%s\n", s);
	goto out;
fail:
	ret = fail(ctx);
out:
	cairn_free(pieces);
	return ret;
}

/* ------------------------------------------------------------- the table */

static const cli_opt commp_opts[] = {
	{"threads", 't', "N", "hash on N threads (default 0: one per core)"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt pad_opts[] = {
	{"full", 0, NULL, "fill with zeros to the padded piece size (a power of two), as in a sector"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt unpad_opts[] = {
	{"size", 's', "N", "write only the first N bytes (the payload size); reads no further"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt commd_opts[] = {
	{"sector-size", 0, "SIZE", "the sector size, e.g. 32GiB or 34359738368 (required)"},
	{NULL, 0, NULL, NULL},
};

static const cli_cmd commp_cmd = {
	.name = "commp",
	.summary = "Compute the piece commitment (CommP) and piece CIDs of files.",
	.usage = "FILE|CAR...",
	.description = "The payload is the file's bytes as they are; for a CAR that is what Lotus\n"
		       "and Boost commit to in a deal, so no CAR parsing happens. The payload is\n"
		       "zero-filled to a multiple of 127 bytes, fr32-padded and zero-filled to a\n"
		       "power of two (the padded size). Prints the piece CID v2 (FRC-0069,\n"
		       "bafkzcib...), the v1 CommP CID (baga6ea4seaq...), the padded size and\n"
		       "the payload size; with --json one object per file. A payload under 127\n"
		       "bytes makes a 128-byte piece, as @web3-storage/data-segment computes.\n"
		       "\"-\" reads standard input. Example:\n"
		       "  cairn piece commp deal.car",
	.opts = commp_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_commp,
};

static const cli_cmd commd_cmd = {
	.name = "commd",
	.summary = "Compute the unsealed-sector commitment (CommD) from its pieces.",
	.usage = "PIECE...",
	.description = "PIECE is a piece CID v2 (it carries its size) or a v1 CID with its padded\n"
		       "size after a colon, in sector order. Pieces are aligned to their own size\n"
		       "and the sector is filled with zero pieces, as Lotus's GenerateUnsealedCID\n"
		       "does. No piece gives the empty sector. Prints the CommD as a v1 CID.\n"
		       "Example:\n"
		       "  cairn piece commd --sector-size 32GiB baga6ea4seaq...:1GiB bafkzcib...",
	.opts = commd_opts,
	.min_args = 0,
	.max_args = -1,
	.run = run_commd,
};

static const cli_cmd pad_cmd = {
	.name = "pad",
	.summary = "fr32-pad a file: every 127 bytes become 128.",
	.usage = "IN OUT",
	.description = "The last partial 127 bytes are zero-filled first, as a piece's payload\n"
		       "is. With --full the output is the whole piece as it lies in a sector.\n"
		       "\"-\" is standard input or output. Example:\n"
		       "  cairn piece pad --full deal.car deal.piece",
	.opts = pad_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_pad,
};

static const cli_cmd unpad_cmd = {
	.name = "unpad",
	.summary = "Undo fr32 padding: every 128 bytes become 127.",
	.usage = "IN OUT",
	.description = "IN must be whole 128-byte quads whose 32-byte nodes all have their top\n"
		       "two bits clear; anything else fails, naming the byte. --size cuts the\n"
		       "output to the payload size (the rest is zero fill). \"-\" is standard input\n"
		       "or output. Example:\n"
		       "  cairn piece unpad --size 1016 deal.piece deal.car",
	.opts = unpad_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_unpad,
};

static const cli_cmd *const piece_subs[] = {&commd_cmd, &commp_cmd, &pad_cmd, &unpad_cmd, NULL};

const cli_cmd cli_piece_cmd = {
	.name = "piece",
	.summary = "Filecoin pieces: fr32 padding and piece commitments (CommP).",
	.subs = piece_subs,
};
