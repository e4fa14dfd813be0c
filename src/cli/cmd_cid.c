/* cmd_cid.c: `cairn cid inspect` and `cairn cid convert`: what a CID is made
 * of, and the same CID in another version or base. */
#include <string.h>

#include "commands.h"

static void print_hex(FILE *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static const char *name_or_hex(const char *name, uint64_t code, char *buf, size_t cap)
{
	if (name)
		return name;
	snprintf(buf, cap, "0x%llx", (unsigned long long)code);
	return buf;
}

static int inspect_one(cli_ctx *ctx, const char *s)
{
	char str[CAIRN_CID_MAX_STRING], cbuf[32], hbuf[32], paint[96];
	const char *codec, *hash;
	cairn_cid cid;

	if (cairn_cid_parse(&cid, s, strlen(s)))
		return cli_fail(ctx, "cid inspect");
	cairn_cid_to_string(str, &cid);
	codec = name_or_hex(cairn_codec_name(cid.codec), cid.codec, cbuf, sizeof(cbuf));
	hash = name_or_hex(cairn_multihash_name(cid.mh_code), cid.mh_code, hbuf, sizeof(hbuf));
	if (ctx->json) {
		fputs("{\"cid\":", ctx->out);
		cli_json_string(ctx->out, str, strlen(str));
		fprintf(ctx->out, ",\"version\":%u,\"codec\":", cid.version);
		cli_json_string(ctx->out, codec, strlen(codec));
		fprintf(ctx->out, ",\"codec_code\":%llu,\"multihash\":", (unsigned long long)cid.codec);
		cli_json_string(ctx->out, hash, strlen(hash));
		fprintf(ctx->out, ",\"multihash_code\":%llu,\"digest_length\":%u,\"digest\":\"",
			(unsigned long long)cid.mh_code, cid.digest_len);
		print_hex(ctx->out, cid.bytes + cid.digest_off, cid.digest_len);
		fputs("\"}\n", ctx->out);
		return CLI_OK;
	}
	fprintf(ctx->out, "%-10s %s\n", "cid:", cli_paint(ctx, "1", str, paint, sizeof(paint)));
	fprintf(ctx->out, "%-10s %u\n", "version:", cid.version);
	fprintf(ctx->out, "%-10s %s (0x%llx)\n", "codec:", codec, (unsigned long long)cid.codec);
	fprintf(ctx->out, "%-10s %s (0x%llx)\n", "multihash:", hash, (unsigned long long)cid.mh_code);
	fprintf(ctx->out, "%-10s ", "digest:");
	print_hex(ctx->out, cid.bytes + cid.digest_off, cid.digest_len);
	fprintf(ctx->out, " (%u bytes)\n", cid.digest_len);
	return CLI_OK;
}

static int run_inspect(cli_ctx *ctx, const cli_args *args)
{
	int rc = CLI_OK;

	for (int i = 0; i < args->argc; i++) {
		if (i && !ctx->json)
			fputc('\n', ctx->out);
		if (inspect_one(ctx, args->argv[i]))
			rc = CLI_FAILED;
	}
	return rc;
}

static const cli_opt convert_opts[] = {
	{"base", 'b', "BASE", "base16, base32, base58btc, base64 or base64url (default: base32 for v1)"},
	{"cid-version", 0, "N", "0 or 1 (default 1; 0 needs dag-pb and sha2-256)"},
	{NULL, 0, NULL, NULL},
};

static int run_convert(cli_ctx *ctx, const cli_args *args)
{
	const char *base_name = cli_opt_value(args, "base");
	const char *version_s = cli_opt_value(args, "cid-version");
	cairn_multibase base = CAIRN_BASE32;
	int rc = CLI_OK, version = -1;

	if (base_name && cairn_multibase_from_name(&base, base_name))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (version_s) {
		if (strcmp(version_s, "0") && strcmp(version_s, "1"))
			return cli_usage_error(ctx, "--cid-version must be 0 or 1, not '%s'", version_s);
		version = version_s[0] - '0';
	}
	for (int i = 0; i < args->argc; i++) {
		const char *in = args->argv[i];
		char str[CAIRN_CID_MAX_STRING];
		cairn_cid cid;
		int v;

		if (cairn_cid_parse(&cid, in, strlen(in))) {
			rc = cli_fail(ctx, "cid convert");
			continue;
		}
		/* Converting means to the current form, v1, unless asked for v0;
		 * a v0 has only one form, base58btc. */
		v = version >= 0 ? version : 1;
		if (!base_name)
			base = v == 0 ? CAIRN_BASE58BTC : CAIRN_BASE32;
		if (cairn_cid_convert(&cid, &cid, (unsigned)v) || cairn_cid_format(str, &cid, base) < 0) {
			cairn_error_prefix("%s: ", in);
			rc = cli_fail(ctx, "cid convert");
			continue;
		}
		if (ctx->json) {
			fputs("{\"input\":", ctx->out);
			cli_json_string(ctx->out, in, strlen(in));
			fputs(",\"cid\":", ctx->out);
			cli_json_string(ctx->out, str, strlen(str));
			fputs("}\n", ctx->out);
		} else {
			fprintf(ctx->out, "%s\n", str);
		}
	}
	return rc;
}

static const cli_cmd inspect_cmd = {
	.name = "inspect",
	.summary = "Show the version, codec, multihash and digest of CIDs.",
	.usage = "CID...",
	.description = "CIDs may be v0 (Qm...) or v1 in base16, base32, base58btc, base64 or\n"
		       "base64url. With --json, one object per CID, one per line.",
	.min_args = 1,
	.max_args = -1,
	.run = run_inspect,
};

static const cli_cmd convert_cmd = {
	.name = "convert",
	.summary = "Print CIDs in another version or base.",
	.usage = "CID...",
	.description = "Examples:\n"
		       "  cairn cid convert QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY\n"
		       "  cairn cid convert --cid-version 0 bafybei...\n"
		       "  cairn cid convert --base base58btc bafkrei...",
	.opts = convert_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_convert,
};

static const cli_cmd *const cid_subs[] = {&convert_cmd, &inspect_cmd, NULL};

const cli_cmd cli_cid_cmd = {
	.name = "cid",
	.summary = "Inspect and convert CIDs.",
	.subs = cid_subs,
};
