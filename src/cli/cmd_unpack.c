/* cmd_unpack.c: `cairn unpack`: a CAR of UnixFS back into files and
 * directories, every block hashed against its CID on the way. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"

/* Below this a progress bar would only flash on the screen. */
#define PROGRESS_MIN (64ull << 20)

static const cli_opt unpack_opts[] = {
	{"output", 'o', "PATH", "where to write the root (default: ./<root CID>)"},
	{"root", 0, "CID", "the DAG to unpack (default: the CAR's only root)"},
	{"force", 'f', NULL, "replace an existing PATH (see above)"},
	{"threads", 'j', "N", "threads hashing and writing blocks (default: one per core)"},
	{NULL, 0, NULL, NULL},
};

static void print_cid(FILE *f, const cairn_cid *cid)
{
	char s[CAIRN_CID_MAX_STRING];

	cairn_cid_to_string(s, cid);
	fputs(s, f);
}

/* The root asked for, or the CAR's only one. Several roots without --root
 * is a usage error listing them. */
static int pick_root(cli_ctx *ctx, cairn_cid *root, const char *car_path, const char *root_s)
{
	const cairn_cid *roots;
	cairn_car_reader *r;
	size_t n;
	int ret = CLI_OK;

	if (root_s) {
		if (cairn_cid_parse(root, root_s, strlen(root_s)))
			return cli_usage_error(ctx, "--root: %s", cairn_error_last());
		return CLI_OK;
	}
	if (cairn_car_reader_open(&r, car_path, NULL))
		return cli_fail(ctx, "unpack");
	roots = cairn_car_reader_roots(r);
	n = cairn_car_reader_root_count(r);
	if (n == 1) {
		*root = roots[0];
	} else if (n == 0) {
		ret = cli_usage_error(ctx, "%s names no root: choose the DAG with --root CID", car_path);
	} else {
		fprintf(ctx->err, "%s: %s names %zu roots; choose one with --root:\n", ctx->path,
			car_path, n);
		for (size_t i = 0; i < n; i++) {
			fputs("  ", ctx->err);
			print_cid(ctx->err, &roots[i]);
			fputc('\n', ctx->err);
		}
		fprintf(ctx->err, "Run '%s --help' for usage.\n", ctx->path);
		ret = CLI_USAGE;
	}
	cairn_car_reader_free(r);
	return ret;
}

static void on_progress(void *payload, uint64_t bytes)
{
	cairn_progress_update(payload, bytes);
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static int run_unpack(cli_ctx *ctx, const cli_args *args)
{
	const char *car_path = args->argv[0], *out_s = cli_opt_value(args, "output");
	const char *threads_s = cli_opt_value(args, "threads");
	cairn_car_options co = CAIRN_CAR_OPTIONS_INIT;
	cairn_unixfs_export_options eo = {0, false, NULL, NULL};
	cairn_unixfs_export_result res;
	char root_str[CAIRN_CID_MAX_STRING];
	cairn_store *store = NULL;
	cairn_progress p;
	struct stat st;
	const char *dest;
	cairn_cid root;
	int ret, rc;

	if (threads_s) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(threads_s, &end, 10);
		if (errno || end == threads_s || *end || v > 256 || threads_s[0] == '-')
			return cli_usage_error(ctx, "--threads '%s': a number from 0 to 256 expected",
					       threads_s);
		eo.threads = (unsigned)v;
	}
	eo.overwrite = cli_opt_flag(args, "force");
	if ((ret = pick_root(ctx, &root, car_path, cli_opt_value(args, "root"))))
		return ret;
	cairn_cid_to_string(root_str, &root);
	dest = out_s ? out_s : root_str;
	if (!*dest)
		return cli_usage_error(ctx, "--output: an empty path");

	/* The exporter hashes every block itself, so the store does not. */
	co.trusted = true;
	if (cairn_store_car_open(&store, car_path, NULL, &co))
		return cli_fail(ctx, "unpack");
	cairn_progress_start(&p, STDERR_FILENO, false, "unpack", 0);
	if (stat(car_path, &st) < 0 || (uint64_t)st.st_size < PROGRESS_MIN)
		p.active = false;
	eo.progress = on_progress;
	eo.progress_payload = &p;
	rc = cairn_unixfs_export(&res, store, &root, dest, &eo);
	if (p.active)
		cairn_progress_finish(&p);
	cairn_store_free(store);
	if (rc) {
		if (rc == CAIRN_EEXISTS && !eo.overwrite) {
			char msg[1024];

			/* Copied: setting the message replaces what it reads. */
			snprintf(msg, sizeof(msg), "%s", cairn_error_last());
			cairn_error_set(rc, "%s (--force replaces it)", msg);
		}
		return cli_fail(ctx, "unpack");
	}
	if (ctx->json) {
		fputs("{\"root\":\"", ctx->out);
		fputs(root_str, ctx->out);
		fputs("\",\"path\":", ctx->out);
		cli_json_string(ctx->out, dest, strlen(dest));
		fprintf(ctx->out, ",\"files\":%llu,\"dirs\":%llu,\"bytes\":%llu,\"blocks\":%llu}\n",
			(unsigned long long)res.files, (unsigned long long)res.dirs,
			(unsigned long long)res.bytes, (unsigned long long)res.blocks);
	} else {
		fprintf(ctx->out, "%s -> %s: %llu %s, %llu %s, %llu %s (%llu %s verified)\n", root_str,
			dest, (unsigned long long)res.files, plural(res.files, "file", "files"),
			(unsigned long long)res.dirs, plural(res.dirs, "directory", "directories"),
			(unsigned long long)res.bytes, plural(res.bytes, "byte", "bytes"),
			(unsigned long long)res.blocks, plural(res.blocks, "block", "blocks"));
	}
	return CLI_OK;
}

const cli_cmd cli_unpack_cmd = {
	.name = "unpack",
	.summary = "A CAR of UnixFS back into files and directories.",
	.usage = "IN.car",
	.description =
		"Writes the UnixFS DAG under the root to PATH: a file root becomes the file\n"
		"PATH, a directory root (plain or HAMT-sharded) the directory PATH. The root\n"
		"is the CAR's only root, or --root (a CAR naming several roots needs it).\n"
		"PATH defaults to ./<root CID>.\n"
		"\n"
		"Every block is hashed against its CID before use; file content is written\n"
		"at its offset as blocks arrive, by several threads, so memory stays small\n"
		"whatever the file size. A block that does not hash, a missing block, or a\n"
		"file whose sizes do not add up fails the command.\n"
		"\n"
		"Safety: an entry named \"\", \".\" or \"..\", or holding '/' or NUL, is\n"
		"refused, naming the directory and the entry. Nothing is written through a\n"
		"symbolic link. A symbolic link is created only if its target stays inside\n"
		"PATH: relative, with \"..\" only at its start and no more of them than the\n"
		"directories above the link; any other link fails the command. UnixFS\n"
		"metadata nodes are refused; modes and times are not applied.\n"
		"\n"
		"An existing PATH is refused unless --force: then a file is replaced, and\n"
		"into an existing directory the tree is merged (files replaced, nothing\n"
		"else removed). On failure, a PATH that did not exist before is removed.\n"
		"Prints the root, PATH and the totals. Examples:\n"
		"  cairn unpack site.car -o site\n"
		"  cairn unpack --root bafybei... --force -o out all.car",
	.opts = unpack_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_unpack,
};
