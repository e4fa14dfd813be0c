/* cmd_block.c: `cairn block hash|inspect|get|put|has|stat`: the CID of a
 * file's bytes, a block shown as DAG-JSON, and blocks in a CAR or the store. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "repo.h"

/* go-car's default bound on one section; a block larger than this is not
 * one any IPFS or Filecoin peer would send. */
#define BLOCK_MAX (8u << 20)

static int read_block(cli_ctx *ctx, cairn_buf *out, const char *path)
{
	(void)ctx;
	if (cairn_file_read_all(out, path, BLOCK_MAX)) {
		if (cairn_error_last_code() == CAIRN_ETOOBIG)
			cairn_error_prefix("blocks are at most %u bytes: ", BLOCK_MAX);
		return -1;
	}
	return 0;
}

/* Decodes to check that the bytes are a valid block of the codec; codecs
 * cairn cannot decode are hashed as given. */
static int check_codec(uint64_t codec, const cairn_buf *b, const char *path)
{
	cairn_arena *arena;
	cairn_node *root;
	int rc;

	if (codec != CAIRN_CODEC_DAG_CBOR && codec != CAIRN_CODEC_DAG_JSON &&
	    codec != CAIRN_CODEC_DAG_PB)
		return 0;
	if ((rc = cairn_arena_new(&arena)))
		return rc;
	rc = cairn_ipld_decode(&root, arena, codec, b->data, b->len);
	cairn_arena_free(arena);
	if (rc)
		cairn_error_prefix("%s: not a valid %s block (use --no-check to hash it anyway): ",
				   path, cairn_codec_name(codec));
	return rc;
}

static const cli_opt hash_opts[] = {
	{"codec", 'c', "CODEC", "codec of the bytes: raw, dag-cbor, dag-json, dag-pb, or a number (default raw)"},
	{"hash", 0, "HASH", "sha2-256, blake2b-256 or identity (default sha2-256)"},
	{"cid-version", 0, "N", "0 or 1 (default 1; 0 needs dag-pb and sha2-256)"},
	{"base", 'b', "BASE", "base of the printed CID (default base32; base58btc for v0)"},
	{"no-check", 0, NULL, "do not check that the bytes decode under the codec"},
	{NULL, 0, NULL, NULL},
};

/* How `hash` and `put` turn a file into a block. */
typedef struct {
	uint64_t codec, mh;
	unsigned version;
	cairn_multibase base;
	bool check;
} hash_params;

static int parse_hash_params(cli_ctx *ctx, const cli_args *args, hash_params *hp)
{
	const char *codec_s = cli_opt_value(args, "codec"), *hash_s = cli_opt_value(args, "hash");
	const char *version_s = cli_opt_value(args, "cid-version"), *base_s = cli_opt_value(args, "base");

	hp->codec = CAIRN_CODEC_RAW;
	hp->mh = CAIRN_MH_SHA2_256;
	hp->version = 1;
	hp->base = CAIRN_BASE32;
	hp->check = !cli_opt_flag(args, "no-check");
	if (codec_s && cairn_codec_from_name(&hp->codec, codec_s))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (hash_s && cairn_multihash_from_name(&hp->mh, hash_s))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (base_s && cairn_multibase_from_name(&hp->base, base_s))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (version_s) {
		if (strcmp(version_s, "0") && strcmp(version_s, "1"))
			return cli_usage_error(ctx, "--cid-version must be 0 or 1, not '%s'", version_s);
		hp->version = (unsigned)(version_s[0] - '0');
	}
	if (hp->version == 0 && !base_s)
		hp->base = CAIRN_BASE58BTC;
	return CLI_OK;
}

/* Reads `path` into `b` and computes its CID; the message is set on failure. */
static int hash_file(const hash_params *hp, const char *path, cairn_buf *b, cairn_cid *cid)
{
	if (read_block(NULL, b, path) || (hp->check && check_codec(hp->codec, b, path)) ||
	    cairn_cid_compute(cid, hp->version, hp->codec, hp->mh, b->data, b->len))
		return -1;
	return 0;
}

static int run_hash(cli_ctx *ctx, const cli_args *args)
{
	hash_params hp;
	int rc = CLI_OK;

	if ((rc = parse_hash_params(ctx, args, &hp)))
		return rc;
	for (int i = 0; i < args->argc; i++) {
		const char *path = args->argv[i];
		cairn_buf b = CAIRN_BUF_INIT;
		char str[CAIRN_CID_MAX_STRING];
		cairn_cid cid;

		if (hash_file(&hp, path, &b, &cid) || cairn_cid_format(str, &cid, hp.base) < 0) {
			rc = cli_fail(ctx, "block hash");
			cairn_buf_free(&b);
			continue;
		}
		if (ctx->json) {
			fputs("{\"file\":", ctx->out);
			cli_json_string(ctx->out, path, strlen(path));
			fputs(",\"cid\":", ctx->out);
			cli_json_string(ctx->out, str, strlen(str));
			fprintf(ctx->out, ",\"size\":%zu}\n", b.len);
		} else if (args->argc > 1) {
			fprintf(ctx->out, "%s  %s\n", str, path);
		} else {
			fprintf(ctx->out, "%s\n", str);
		}
		cairn_buf_free(&b);
	}
	return rc;
}

static const struct {
	const char *ext;
	uint64_t codec;
} extensions[] = {
	{".dag-cbor", CAIRN_CODEC_DAG_CBOR}, {".cbor", CAIRN_CODEC_DAG_CBOR},
	{".dag-json", CAIRN_CODEC_DAG_JSON}, {".dag-pb", CAIRN_CODEC_DAG_PB},
	{".pb", CAIRN_CODEC_DAG_PB}, {".raw", CAIRN_CODEC_RAW}, {".bin", CAIRN_CODEC_RAW},
};

static bool codec_from_extension(uint64_t *out, const char *path)
{
	size_t n = strlen(path);

	for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
		size_t e = strlen(extensions[i].ext);
		if (n > e && !strcmp(path + n - e, extensions[i].ext)) {
			*out = extensions[i].codec;
			return true;
		}
	}
	return false;
}

typedef struct {
	FILE *out;
	bool json;
	size_t count;
} link_printer;

static int print_link(const cairn_cid *link, void *payload)
{
	link_printer *lp = payload;
	char str[CAIRN_CID_MAX_STRING];

	cairn_cid_to_string(str, link);
	if (lp->json)
		fprintf(lp->out, "%s\"%s\"", lp->count ? "," : "", str);
	else
		fprintf(lp->out, "%s\n", str);
	lp->count++;
	return 0;
}

static const cli_opt inspect_opts[] = {
	{"codec", 'c', "CODEC", "codec of the block (default: from --cid, else the file extension)"},
	{"cid", 0, "CID", "the block's CID: its codec is used and the bytes are verified against it"},
	{"pretty", 'p', NULL, "indent the DAG-JSON for reading (not the canonical bytes)"},
	{"links", 'l', NULL, "print only the block's links, one CID per line"},
	{NULL, 0, NULL, NULL},
};

static int run_inspect(cli_ctx *ctx, const cli_args *args)
{
	const char *codec_s = cli_opt_value(args, "codec"), *cid_s = cli_opt_value(args, "cid");
	const char *path = args->argv[0];
	cairn_buf b = CAIRN_BUF_INIT, json = CAIRN_BUF_INIT;
	cairn_arena *arena = NULL;
	cairn_node *root;
	cairn_cid cid;
	uint64_t codec;
	bool have_codec = false;
	int rc = CLI_FAILED;

	if (codec_s) {
		if (cairn_codec_from_name(&codec, codec_s))
			return cli_usage_error(ctx, "%s", cairn_error_last());
		have_codec = true;
	}
	if (cid_s) {
		if (cairn_cid_parse(&cid, cid_s, strlen(cid_s)))
			return cli_usage_error(ctx, "--cid: %s", cairn_error_last());
		if (have_codec && codec != cid.codec)
			return cli_usage_error(ctx, "--codec %s contradicts the codec of --cid", codec_s);
		codec = cid.codec;
		have_codec = true;
	}
	if (!have_codec && !(have_codec = codec_from_extension(&codec, path)))
		return cli_usage_error(ctx, "cannot tell the codec of '%s': give --codec or --cid", path);
	if (read_block(ctx, &b, path))
		goto fail;
	if (cid_s && cairn_cid_verify(&cid, b.data, b.len)) {
		cairn_error_prefix("%s: ", path);
		goto fail;
	}
	if (cli_opt_flag(args, "links")) {
		link_printer lp = {ctx->out, ctx->json, 0};

		if (ctx->json)
			fputc('[', ctx->out);
		if (cairn_block_links(codec, b.data, b.len, print_link, &lp)) {
			cairn_error_prefix("%s: ", path);
			goto fail;
		}
		if (ctx->json)
			fputs("]\n", ctx->out);
		rc = CLI_OK;
		goto out;
	}
	if (cairn_arena_new(&arena))
		goto fail;
	if (cairn_ipld_decode(&root, arena, codec, b.data, b.len)) {
		cairn_error_prefix("%s: ", path);
		goto fail;
	}
	if (ctx->json) {
		char str[CAIRN_CID_MAX_STRING];
		link_printer lp = {ctx->out, true, 0};

		if (!cid_s && cairn_cid_compute(&cid, 1, codec, CAIRN_MH_SHA2_256, b.data, b.len))
			goto fail;
		if (cairn_dagjson_encode(&json, root))
			goto fail;
		cairn_cid_to_string(str, &cid);
		fprintf(ctx->out, "{\"cid\":\"%s\",\"codec\":\"%s\",\"size\":%zu,\"links\":[", str,
			cairn_codec_name(codec), b.len);
		if (cairn_block_links(codec, b.data, b.len, print_link, &lp))
			goto fail;
		fputs("],\"value\":", ctx->out);
		fwrite(json.data, 1, json.len, ctx->out);
		fputs("}\n", ctx->out);
		rc = CLI_OK;
		goto out;
	}
	if (cli_opt_flag(args, "pretty") ? cairn_dagjson_encode_pretty(&json, root)
					 : cairn_dagjson_encode(&json, root))
		goto fail;
	fwrite(json.data, 1, json.len, ctx->out);
	/* The canonical form is printed exactly, so it can be hashed; only a
	 * terminal gets a newline after it. */
	if (!cli_opt_flag(args, "pretty") && isatty(fileno(ctx->out)))
		fputc('\n', ctx->out);
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, "block inspect");
out:
	cairn_arena_free(arena);
	cairn_buf_free(&json);
	cairn_buf_free(&b);
	return rc;
}

/* -------------------------------------------- blocks in a CAR or the store */

#define OPT_FROM {"from", 'f', "CAR", "read from this CAR instead of the store (a CARv1 is indexed on open)"}
#define OPT_INDEX {"index", 0, "IDX", "a detached index for the CAR given with --from"}

/* The store a command reads: the CAR of --from, or the repo's blocks. */
static int open_source(cairn_store **out, const cli_args *args, bool create)
{
	const char *from = cli_opt_value(args, "from");
	char repo[4096];

	if (from)
		return cairn_store_car_open(out, from, cli_opt_value(args, "index"), NULL);
	if (cli_opt_value(args, "index"))
		return cairn_error_set(CAIRN_EINVAL, "--index goes with --from CAR");
	if (cli_repo_path(repo, sizeof(repo), args))
		return -1;
	return cli_repo_blocks_open(out, repo, create);
}

static int parse_cid_arg(cli_ctx *ctx, cairn_cid *cid, const char *s)
{
	if (cairn_cid_parse(cid, s, strlen(s)))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	return CLI_OK;
}

static const cli_opt get_opts[] = {
	OPT_FROM,
	OPT_INDEX,
	CLI_OPT_REPO,
	{"output", 'o', "FILE", "write the block to FILE instead of standard output"},
	{NULL, 0, NULL, NULL},
};

static int run_get(cli_ctx *ctx, const cli_args *args)
{
	const char *out_path = cli_opt_value(args, "output");
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_store *s = NULL;
	cairn_cid cid;
	int rc;

	if ((rc = parse_cid_arg(ctx, &cid, args->argv[0])))
		return rc;
	if (open_source(&s, args, false) || cairn_store_get(s, &b, &cid))
		goto fail;
	if (out_path && strcmp(out_path, "-")) {
		if (cairn_file_replace_atomic(out_path, b.data, b.len, 0644))
			goto fail;
	} else if (fwrite(b.data, 1, b.len, ctx->out) != b.len || fflush(ctx->out)) {
		cairn_error_set(CAIRN_EIO, "standard output: %s", strerror(errno));
		goto fail;
	}
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, "block get");
out:
	cairn_store_free(s);
	cairn_buf_free(&b);
	return rc;
}

static const cli_opt put_opts[] = {
	{"codec", 'c', "CODEC", "codec of the bytes: raw, dag-cbor, dag-json, dag-pb, or a number (default raw)"},
	{"hash", 0, "HASH", "sha2-256, blake2b-256 or identity (default sha2-256)"},
	{"cid-version", 0, "N", "0 or 1 (default 1; 0 needs dag-pb and sha2-256)"},
	{"base", 'b', "BASE", "base of the printed CID (default base32; base58btc for v0)"},
	{"no-check", 0, NULL, "do not check that the bytes decode under the codec"},
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

static int run_put(cli_ctx *ctx, const cli_args *args)
{
	cairn_store *s = NULL;
	hash_params hp;
	int rc;

	if ((rc = parse_hash_params(ctx, args, &hp)))
		return rc;
	if (open_source(&s, args, true))
		return cli_fail(ctx, "block put");
	for (int i = 0; i < args->argc && rc == CLI_OK; i++) {
		const char *path = args->argv[i];
		cairn_buf b = CAIRN_BUF_INIT;
		char str[CAIRN_CID_MAX_STRING];
		cairn_cid cid;

		if (hash_file(&hp, path, &b, &cid) || cairn_store_put(s, &cid, b.data, b.len) ||
		    cairn_cid_format(str, &cid, hp.base) < 0) {
			rc = cli_fail(ctx, "block put");
		} else if (ctx->json) {
			fputs("{\"file\":", ctx->out);
			cli_json_string(ctx->out, path, strlen(path));
			fprintf(ctx->out, ",\"cid\":\"%s\",\"size\":%zu}\n", str, b.len);
		} else {
			fprintf(ctx->out, "%s\n", str);
		}
		cairn_buf_free(&b);
	}
	/* The blocks count as stored only once this returns. */
	if (cairn_store_flush(s, NULL) && rc == CLI_OK)
		rc = cli_fail(ctx, "block put");
	cairn_store_free(s);
	return rc;
}

static const cli_opt has_opts[] = {
	OPT_FROM,
	OPT_INDEX,
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

static int run_has(cli_ctx *ctx, const cli_args *args)
{
	cairn_store *s = NULL;
	int rc = CLI_OK;
	bool all = true;

	for (int i = 0; i < args->argc; i++) {
		cairn_cid cid;
		if ((rc = parse_cid_arg(ctx, &cid, args->argv[i])))
			return rc;
	}
	if (open_source(&s, args, false))
		return cli_fail(ctx, "block has");
	for (int i = 0; i < args->argc; i++) {
		cairn_cid cid;
		int has;

		cairn_cid_parse(&cid, args->argv[i], strlen(args->argv[i]));
		if ((has = cairn_store_has(s, &cid)) < 0) {
			rc = cli_fail(ctx, "block has");
			break;
		}
		all = all && has;
		if (ctx->json)
			fprintf(ctx->out, "{\"cid\":\"%s\",\"has\":%s}\n", args->argv[i], has ? "true" : "false");
		else if (args->argc > 1)
			fprintf(ctx->out, "%s\t%s\n", args->argv[i], has ? "yes" : "no");
		else
			fprintf(ctx->out, "%s\n", has ? "yes" : "no");
	}
	cairn_store_free(s);
	/* Like grep: the exit status says whether everything asked for is there. */
	return rc ? rc : all ? CLI_OK : CLI_FAILED;
}

static int run_stat(cli_ctx *ctx, const cli_args *args)
{
	cairn_store *s = NULL;
	int rc = CLI_OK;

	for (int i = 0; i < args->argc; i++) {
		cairn_cid cid;
		if ((rc = parse_cid_arg(ctx, &cid, args->argv[i])))
			return rc;
	}
	if (open_source(&s, args, false))
		return cli_fail(ctx, "block stat");
	for (int i = 0; i < args->argc; i++) {
		char str[CAIRN_CID_MAX_STRING], cbuf[32];
		const char *codec;
		uint64_t size;
		cairn_cid cid;

		cairn_cid_parse(&cid, args->argv[i], strlen(args->argv[i]));
		if (cairn_store_get_size(s, &size, &cid)) {
			rc = cli_fail(ctx, "block stat");
			continue;
		}
		cairn_cid_to_string(str, &cid);
		codec = cairn_codec_name(cid.codec);
		if (!codec) {
			snprintf(cbuf, sizeof(cbuf), "0x%llx", (unsigned long long)cid.codec);
			codec = cbuf;
		}
		if (ctx->json)
			fprintf(ctx->out, "{\"cid\":\"%s\",\"codec\":\"%s\",\"size\":%llu}\n", str, codec,
				(unsigned long long)size);
		else
			fprintf(ctx->out, "%s\t%s\t%llu\n", str, codec, (unsigned long long)size);
	}
	cairn_store_free(s);
	return rc;
}

static const cli_cmd get_cmd = {
	.name = "get",
	.summary = "Write a block's bytes, from the store or a CAR.",
	.usage = "CID",
	.description = "Blocks match by multihash (a CIDv0 finds the CIDv1 block). Examples:\n"
		       "  cairn block get bafkrei... > block.bin\n"
		       "  cairn block get --from deal.car bafy2bzace... -o block.bin",
	.opts = get_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_get,
};

static const cli_cmd put_cmd = {
	.name = "put",
	.summary = "Add files to the store as blocks; print their CIDs.",
	.usage = "FILE...",
	.description = "Each file is one block, hashed as --codec with --hash (FILE may be - for\n"
		       "standard input). The blocks are durable when the command returns.\n"
		       "Example:\n"
		       "  cairn block put --codec dag-cbor header.cbor",
	.opts = put_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_put,
};

static const cli_cmd has_cmd = {
	.name = "has",
	.summary = "Say whether the store (or a CAR) holds blocks.",
	.usage = "CID...",
	.description = "Prints yes or no for each; the exit status is 0 only if all are there.",
	.opts = has_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_has,
};

static const cli_cmd stat_cmd = {
	.name = "stat",
	.summary = "Print the codec and size of blocks in the store (or a CAR).",
	.usage = "CID...",
	.opts = has_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_stat,
};

static const cli_cmd hash_cmd = {
	.name = "hash",
	.summary = "Print the CID of each file's bytes as a block of a codec.",
	.usage = "FILE...",
	.description = "FILE may be - for standard input. The bytes are checked to be a valid\n"
		       "block of the codec first (dag-cbor, dag-json, dag-pb), so the CID never\n"
		       "names bytes no reader would accept. Examples:\n"
		       "  cairn block hash photo.jpg\n"
		       "  cairn block hash --codec dag-cbor header.cbor",
	.opts = hash_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_hash,
};

static const cli_cmd inspect_cmd = {
	.name = "inspect",
	.summary = "Print a block as DAG-JSON, or its links.",
	.usage = "FILE",
	.description = "Without --pretty the output is exactly the canonical DAG-JSON encoding of\n"
		       "the block (hash it with `cairn block hash --codec dag-json -`). The codec\n"
		       "comes from --codec, --cid, or the extension (.dag-cbor, .dag-json,\n"
		       ".dag-pb, .raw).",
	.opts = inspect_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_inspect,
};

static const cli_cmd *const block_subs[] = {&get_cmd, &has_cmd, &hash_cmd, &inspect_cmd,
					      &put_cmd, &stat_cmd, NULL};

const cli_cmd cli_block_cmd = {
	.name = "block",
	.summary = "Hash, inspect, store and fetch IPLD blocks.",
	.subs = block_subs,
};
