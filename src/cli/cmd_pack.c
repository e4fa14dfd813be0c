/* cmd_pack.c: `cairn pack`: files and directories into a CAR, with the
 * CIDs ipfs-car or kubo would give them. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"

static const cli_opt pack_opts[] = {
	{"output", 'o', "OUT.car", "the CAR to write (required)"},
	{"profile", 'p', "NAME", "ipfs-car (default) or kubo: whose CIDs to give"},
	{"wrap", 0, NULL, "put the inputs in a directory (ipfs-car's default)"},
	{"no-wrap", 0, NULL, "a single file is its own root (kubo's default)"},
	{"hidden", 'H', NULL, "include files and directories whose names start with '.'"},
	{"car-version", 0, "1|2", "1 (default, as ipfs-car) or 2 with a MultihashIndexSorted index"},
	{"chunk-size", 0, "BYTES", "fixed chunk size (default: the profile's)"},
	{"threads", 'j', "N", "hashing threads (default: one per core)"},
	{NULL, 0, NULL, NULL},
};

typedef struct pack_state {
	cairn_car_writer *w;
	cairn_progress progress;
} pack_state;

static int put_block(void *payload, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	pack_state *st = payload;

	return cairn_car_writer_put(st->w, cid, data, len);
}

static void on_progress(void *payload, uint64_t bytes)
{
	cairn_progress_update(&((pack_state *)payload)->progress, bytes);
}

static int parse_u32(uint32_t *out, const char *s, uint32_t min, uint32_t max)
{
	char *end;
	unsigned long long v;

	v = strtoull(s, &end, 10);
	if (!*s || *end || v < min || v > max)
		return CAIRN_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int run_pack(cli_ctx *ctx, const cli_args *args)
{
	const char *out = cli_opt_value(args, "output");
	const char *profile = cli_opt_value(args, "profile");
	const char *version = cli_opt_value(args, "car-version");
	const char *chunk = cli_opt_value(args, "chunk-size");
	const char *threads = cli_opt_value(args, "threads");
	cairn_car_writer_options wopts = CAIRN_CAR_WRITER_OPTIONS_INIT;
	cairn_unixfs_import_result res;
	cairn_unixfs_params params;
	cairn_unixfs_profile prof = CAIRN_UNIXFS_PROFILE_IPFS_CAR;
	pack_state st = {0};
	cairn_cid placeholder;
	char root[CAIRN_CID_MAX_STRING];
	uint8_t zero[32] = {0};
	uint32_t n;
	int rc;

	if (!out)
		return cli_usage_error(ctx, "--output OUT.car is required");
	if (profile && !strcmp(profile, "kubo"))
		prof = CAIRN_UNIXFS_PROFILE_KUBO;
	else if (profile && strcmp(profile, "ipfs-car"))
		return cli_usage_error(ctx, "unknown profile \"%s\" (ipfs-car or kubo)", profile);
	cairn_unixfs_params_init(&params, prof);
	if (cli_opt_flag(args, "wrap") && cli_opt_flag(args, "no-wrap"))
		return cli_usage_error(ctx, "--wrap and --no-wrap together");
	if (cli_opt_flag(args, "wrap"))
		params.wrap = true;
	if (cli_opt_flag(args, "no-wrap"))
		params.wrap = false;
	params.hidden = cli_opt_flag(args, "hidden");
	if (chunk && parse_u32(&params.chunk_size, chunk, 1, 64u << 20))
		return cli_usage_error(ctx, "--chunk-size must be 1 to 67108864 bytes");
	if (threads) {
		if (parse_u32(&n, threads, 1, 256))
			return cli_usage_error(ctx, "--threads must be 1 to 256");
		params.threads = n;
	}
	wopts.version = 1;
	if (version) {
		if (strcmp(version, "1") && strcmp(version, "2"))
			return cli_usage_error(ctx, "--car-version must be 1 or 2");
		wopts.version = (unsigned)(version[0] - '0');
	}
	wopts.trusted = true;
	wopts.skip_duplicates = true;
	/* The root comes last; the header holds a placeholder of the same
	 * length until then, as ipfs-car does. */
	if (cairn_cid_from_digest(&placeholder, params.cid_version, CAIRN_CODEC_DAG_PB,
				  CAIRN_MH_SHA2_256, zero, sizeof(zero)) ||
	    cairn_car_writer_open(&st.w, out, &placeholder, 1, &wopts))
		return cli_fail(ctx, "pack");
	cairn_progress_start(&st.progress, STDERR_FILENO, false, "pack", 0);
	rc = cairn_unixfs_import(&res, &params, (const char *const *)args->argv,
				 (size_t)args->argc, put_block, &st, on_progress, &st);
	cairn_progress_finish(&st.progress);
	if (rc || cairn_car_writer_set_roots(st.w, &res.root, 1) ||
	    cairn_car_writer_finish(st.w)) {
		cairn_car_writer_free(st.w);
		unlink(out);
		return cli_fail(ctx, "pack");
	}
	cairn_car_writer_free(st.w);
	cairn_cid_to_string(root, &res.root);
	if (ctx->json) {
		fprintf(ctx->out, "{\"root\":\"%s\",\"files\":%llu,\"dirs\":%llu,\"bytes\":%llu,"
			"\"blocks\":%llu,\"car\":", root, (unsigned long long)res.files,
			(unsigned long long)res.dirs, (unsigned long long)res.bytes,
			(unsigned long long)res.blocks);
		cli_json_string(ctx->out, out, strlen(out));
		fputs("}\n", ctx->out);
	} else {
		fprintf(ctx->out, "%s\n", root);
	}
	return CLI_OK;
}

const cli_cmd cli_pack_cmd = {
	.name = "pack",
	.summary = "Pack files and directories into a CAR (UnixFS), with ipfs-car's or kubo's CIDs.",
	.usage = "PATH...",
	.description =
		"Chunks each file, builds the UnixFS DAG and writes its blocks to OUT.car,\n"
		"children before parents, the root last and in the header. Prints the\n"
		"root CID. Memory stays flat whatever the size of the files.\n"
		"\n"
		"Profiles give exactly the CIDs of the tools people compare with:\n"
		"  ipfs-car  `ipfs-car pack`: 1 MiB chunks, raw leaves, CIDv1, 1024 links\n"
		"            per node; the inputs wrapped in a directory (--no-wrap: a\n"
		"            single file is the root); only files count, so empty\n"
		"            directories are left out, and names are relative to the\n"
		"            directory holding all the files; HAMT past 1,000 entries.\n"
		"  kubo      `ipfs add -r` defaults: 256 KiB chunks, DAG-PB leaves, CIDv0,\n"
		"            174 links per node; a directory argument is the root itself\n"
		"            (--wrap puts the inputs in one), empty directories kept;\n"
		"            HAMT once a directory's names and CIDs pass 256 KiB.\n"
		"Both skip names starting with '.' unless --hidden, and skip symbolic\n"
		"links and special files.\n"
		"\n"
		"Examples:\n"
		"  cairn pack photos/ -o photos.car\n"
		"  cairn pack --no-wrap movie.mp4 -o movie.car\n"
		"  cairn pack --profile kubo --car-version 2 site/ -o site.car",
	.opts = pack_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_pack,
};
