/* cmd_adt.c: `cairn adt amt|hamt get|ls|diff`: Filecoin's AMTs and HAMTs in a
 * CAR or the store, their values printed as DAG-JSON, for debugging state. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "repo.h"

#define OPT_FROM {"from", 'f', "CAR", "read from this CAR instead of the store (a CARv1 is indexed on open)"}

static const char *what(const cli_ctx *ctx)
{
	return ctx->path + strlen("cairn ");
}

/* The store a command reads: the CAR of --from, or the repo's blocks. */
static int open_source(cairn_store **out, const cli_args *args)
{
	const char *from = cli_opt_value(args, "from");
	char repo[4096];

	if (from)
		return cairn_store_car_open(out, from, NULL, NULL);
	if (cli_repo_path(repo, sizeof(repo), args))
		return -1;
	return cli_repo_blocks_open(out, repo, false);
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

static int parse_cid(cli_ctx *ctx, cairn_cid *cid, const char *s)
{
	if (cairn_cid_parse(cid, s, strlen(s)))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	return CLI_OK;
}

/* Appends a value (one DAG-CBOR item) as canonical DAG-JSON. */
static int value_json(cairn_buf *out, const uint8_t *v, size_t len)
{
	cairn_arena *arena;
	cairn_node *node;
	int rc;

	if ((rc = cairn_arena_new(&arena)))
		return rc;
	if (!(rc = cairn_dagcbor_decode(&node, arena, v, len)))
		rc = cairn_dagjson_encode(out, node);
	else
		cairn_error_prefix("the value is not DAG-CBOR: ");
	cairn_arena_free(arena);
	return rc;
}

/* A key as DAG-JSON bytes: {"/":{"bytes":"..."}}. */
static int key_json(cairn_buf *out, const uint8_t *k, size_t klen)
{
	cairn_node n = {.kind = CAIRN_KIND_BYTES};

	n.v.bytes.ptr = k;
	n.v.bytes.len = klen;
	return cairn_dagjson_encode(out, &n);
}

static void put_hex(cairn_buf *out, const uint8_t *k, size_t klen)
{
	if (!klen)
		cairn_buf_puts(out, "\"\"");
	for (size_t i = 0; i < klen; i++)
		cairn_buf_printf(out, "%02x", k[i]);
}

static int emit(cli_ctx *ctx, cairn_buf *line)
{
	if (line->err)
		return line->err;
	cairn_buf_putc(line, '\n');
	if (fwrite(line->data, 1, line->len, ctx->out) != line->len)
		return cairn_error_set(CAIRN_EIO, "standard output: %s", strerror(errno));
	cairn_buf_clear(line);
	return 0;
}

/* ------------------------------------------------------------- commands
 *
 * Every command parses its ROOT (and ROOT2) and --bit-width, then its own
 * arguments, opens the source, loads each root and runs its body; any
 * failure after the arguments is "cairn: adt ...: <message>", exit 1. An
 * adt_spec says what differs between commands; run_adt does the rest.
 */

#define OPT_AMT_BIT_WIDTH {"bit-width", 'w', "N", "the AMT's bit width, checked against the root (default: the root's)"}
#define OPT_HAMT_BIT_WIDTH {"bit-width", 'w', "N", "the HAMT's bit width (default 5, as Filecoin's; it is not stored)"}

/* One run of a command; also the payload of the walk and diff callbacks. */
typedef struct adt_job {
	cli_ctx *ctx;
	const cli_args *args;
	cairn_amt_options amt_o;
	cairn_hamt_options hamt_o;
	cairn_amt *amt[2];     /* ROOT's structure and, for diff, ROOT2's */
	cairn_hamt *hamt[2];
	cairn_buf line;        /* the line being written */
	cairn_buf key;         /* hamt get: KEY's bytes; else a key's text for messages */
	uint64_t index;        /* amt get: INDEX; amt ls: --start */
	uint64_t left;         /* amt ls: lines still to print (--limit) */
} adt_job;

typedef struct adt_spec {
	bool amt;              /* an AMT, else a HAMT */
	int nroots;            /* ROOT, or ROOT ROOT2 */
	/* The command's own arguments, before the source is opened: CLI_OK, a
	 * usage status to return, or a negative code to fail with. May be NULL. */
	int (*prepare)(adt_job *j);
	/* On the loaded structures: 0, or non-zero to fail with the message set. */
	int (*body)(adt_job *j);
} adt_spec;

static int parse_bit_width(adt_job *j, bool amt)
{
	const char *bw = cli_opt_value(j->args, "bit-width");
	int max = amt ? CAIRN_AMT_MAX_BIT_WIDTH : CAIRN_HAMT_MAX_BIT_WIDTH;
	uint64_t v;

	/* An AMT's root holds its width and format: 0 and DETECT take them. */
	j->amt_o = (cairn_amt_options)CAIRN_AMT_OPTIONS_INIT;
	j->amt_o.format = CAIRN_AMT_DETECT;
	j->amt_o.bit_width = 0;
	j->hamt_o = (cairn_hamt_options)CAIRN_HAMT_OPTIONS_INIT;
	if (!bw)
		return CLI_OK;
	if (parse_u64(&v, bw) || v < 1 || v > (uint64_t)max)
		return cli_usage_error(j->ctx, "--bit-width must be 1 to %d, not '%s'", max, bw);
	if (amt)
		j->amt_o.bit_width = (unsigned)v;
	else
		j->hamt_o.bit_width = (unsigned)v;
	return CLI_OK;
}

static int run_adt(cli_ctx *ctx, const cli_args *args, const adt_spec *spec)
{
	adt_job j = {.ctx = ctx, .args = args, .line = CAIRN_BUF_INIT, .key = CAIRN_BUF_INIT,
		     .left = UINT64_MAX};
	cairn_store *s = NULL;
	cairn_cid root[2];
	int rc;

	for (int i = 0; i < spec->nroots; i++)
		if ((rc = parse_cid(ctx, &root[i], args->argv[i])))
			return rc;
	if ((rc = parse_bit_width(&j, spec->amt)))
		return rc;
	if (spec->prepare && (rc = spec->prepare(&j)) > 0)
		goto out;
	if (rc < 0 || open_source(&s, args))
		goto fail;
	for (int i = 0; i < spec->nroots; i++)
		if (spec->amt ? cairn_amt_load(&j.amt[i], s, &root[i], &j.amt_o)
			     : cairn_hamt_load(&j.hamt[i], s, &root[i], &j.hamt_o))
			goto fail;
	if (spec->body(&j))
		goto fail;
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	cairn_buf_free(&j.line);
	cairn_buf_free(&j.key);
	for (int i = 0; i < 2; i++) {
		cairn_amt_free(j.amt[i]);
		cairn_hamt_free(j.hamt[i]);
	}
	cairn_store_free(s);
	return rc;
}

static const char *const diff_marks[] = {"+", "-", "~"};

/* One change as a line; `key` is already in j->key (text or JSON). */
static int diff_line(adt_job *j, cairn_adt_change_type type, const uint8_t *before,
		     size_t before_len, const uint8_t *after, size_t after_len, bool amt)
{
	cairn_buf *b = &j->line;
	int rc = 0;

	if (j->ctx->json) {
		cairn_buf_printf(b, "{\"type\":\"%s\",\"%s\":", cairn_adt_change_name(type),
				 amt ? "index" : "key");
		cairn_buf_append(b, j->key.data, j->key.len);
		if (before) {
			cairn_buf_puts(b, ",\"before\":");
			rc = value_json(b, before, before_len);
		}
		if (!rc && after) {
			cairn_buf_puts(b, ",\"after\":");
			rc = value_json(b, after, after_len);
		}
		cairn_buf_putc(b, '}');
	} else {
		cairn_buf_printf(b, "%s ", diff_marks[type]);
		cairn_buf_append(b, j->key.data, j->key.len);
		cairn_buf_putc(b, '\t');
		if (before)
			rc = value_json(b, before, before_len);
		if (!rc && before && after)
			cairn_buf_puts(b, " -> ");
		if (!rc && after)
			rc = value_json(b, after, after_len);
	}
	if (rc)
		return cairn_error_prefix("%s %.*s: ", amt ? "index" : "key", (int)j->key.len,
					  (const char *)j->key.data);
	return emit(j->ctx, b);
}

/* ------------------------------------------------------------------- AMT */

static const cli_opt amt_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	OPT_AMT_BIT_WIDTH,
	{NULL, 0, NULL, NULL},
};

static const cli_opt amt_ls_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	OPT_AMT_BIT_WIDTH,
	{"start", 's', "INDEX", "list from this index up"},
	{"limit", 'n', "N", "list at most N entries"},
	{NULL, 0, NULL, NULL},
};

static int amt_get_args(adt_job *j)
{
	if (parse_u64(&j->index, j->args->argv[1]))
		return cli_usage_error(j->ctx, "INDEX must be a whole number, not '%s'",
				       j->args->argv[1]);
	return CLI_OK;
}

static int amt_get(adt_job *j)
{
	unsigned long long index = j->index;
	const uint8_t *v;
	size_t len;
	int rc;

	if ((rc = cairn_amt_get(&v, &len, j->amt[0], j->index))) {
		if (rc == CAIRN_ENOTFOUND)
			cairn_error_set(rc, "index %llu is not set", index);
		return rc;
	}
	if (j->ctx->json)
		cairn_buf_printf(&j->line, "{\"index\":%llu,\"value\":", index);
	if ((rc = value_json(&j->line, v, len))) {
		cairn_error_prefix("index %llu: ", index);
		return rc;
	}
	if (j->ctx->json)
		cairn_buf_putc(&j->line, '}');
	return emit(j->ctx, &j->line);
}

static int amt_ls_args(adt_job *j)
{
	const char *start_s = cli_opt_value(j->args, "start");
	const char *limit_s = cli_opt_value(j->args, "limit");

	if (start_s && parse_u64(&j->index, start_s))
		return cli_usage_error(j->ctx, "--start must be a whole number, not '%s'", start_s);
	if (limit_s && parse_u64(&j->left, limit_s))
		return cli_usage_error(j->ctx, "--limit must be a whole number, not '%s'", limit_s);
	return CLI_OK;
}

static int amt_ls_one(uint64_t i, const uint8_t *v, size_t len, void *payload)
{
	adt_job *j = payload;
	int rc;

	if (!j->left)
		return 1; /* the limit: stop, not an error */
	j->left--;
	cairn_buf_printf(&j->line, j->ctx->json ? "{\"index\":%llu,\"value\":" : "%llu\t",
			 (unsigned long long)i);
	if ((rc = value_json(&j->line, v, len)))
		return cairn_error_prefix("index %llu: ", (unsigned long long)i);
	if (j->ctx->json)
		cairn_buf_putc(&j->line, '}');
	return emit(j->ctx, &j->line);
}

static int amt_ls(adt_job *j)
{
	return cairn_amt_for_each(j->amt[0], j->index, amt_ls_one, j) < 0;
}

static int amt_diff_one(const cairn_amt_change *ch, void *payload)
{
	adt_job *j = payload;

	cairn_buf_clear(&j->key);
	cairn_buf_printf(&j->key, "%llu", (unsigned long long)ch->index);
	return diff_line(j, ch->type, ch->before, ch->before_len, ch->after, ch->after_len, true);
}

static int amt_diff(adt_job *j)
{
	return cairn_amt_diff(j->amt[0], j->amt[1], amt_diff_one, j);
}

static const adt_spec amt_get_spec = {.amt = true, .nroots = 1, .prepare = amt_get_args, .body = amt_get};
static const adt_spec amt_ls_spec = {.amt = true, .nroots = 1, .prepare = amt_ls_args, .body = amt_ls};
static const adt_spec amt_diff_spec = {.amt = true, .nroots = 2, .body = amt_diff};

static int run_amt_get(cli_ctx *ctx, const cli_args *args)
{
	return run_adt(ctx, args, &amt_get_spec);
}

static int run_amt_ls(cli_ctx *ctx, const cli_args *args)
{
	return run_adt(ctx, args, &amt_ls_spec);
}

static int run_amt_diff(cli_ctx *ctx, const cli_args *args)
{
	return run_adt(ctx, args, &amt_diff_spec);
}

/* ------------------------------------------------------------------ HAMT */

static const cli_opt hamt_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	OPT_HAMT_BIT_WIDTH,
	{NULL, 0, NULL, NULL},
};

static const cli_opt hamt_get_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	OPT_HAMT_BIT_WIDTH,
	{"hex", 'x', NULL, "KEY is hexadecimal (an address: 00 and the varint of an ID)"},
	{NULL, 0, NULL, NULL},
};

/* KEY into j->key: its UTF-8 bytes, or with --hex the bytes it spells. */
static int hamt_get_args(adt_job *j)
{
	const char *key_s = j->args->argv[1];

	if (!cli_opt_flag(j->args, "hex"))
		cairn_buf_append(&j->key, key_s, strlen(key_s));
	else if (cairn_base_decode(&j->key, CAIRN_BASE16, key_s, strlen(key_s)))
		return cli_usage_error(j->ctx, "KEY: %s", cairn_error_last());
	return j->key.err;
}

static int hamt_get(adt_job *j)
{
	const char *key_s = j->args->argv[1];
	const uint8_t *v;
	size_t len;
	int rc;

	if ((rc = cairn_hamt_get(&v, &len, j->hamt[0], j->key.data, j->key.len))) {
		if (rc == CAIRN_ENOTFOUND)
			cairn_error_set(rc, "key '%s' is not set", key_s);
		return rc;
	}
	if (j->ctx->json) {
		cairn_buf_puts(&j->line, "{\"key\":");
		key_json(&j->line, j->key.data, j->key.len);
		cairn_buf_puts(&j->line, ",\"value\":");
	}
	if ((rc = value_json(&j->line, v, len))) {
		cairn_error_prefix("key '%s': ", key_s);
		return rc;
	}
	if (j->ctx->json)
		cairn_buf_putc(&j->line, '}');
	return emit(j->ctx, &j->line);
}

static int hamt_ls_one(const uint8_t *k, size_t klen, const uint8_t *v, size_t len, void *payload)
{
	adt_job *j = payload;
	cairn_buf *b = &j->line;

	if (j->ctx->json) {
		cairn_buf_puts(b, "{\"key\":");
		key_json(b, k, klen);
		cairn_buf_puts(b, ",\"value\":");
	} else {
		put_hex(b, k, klen);
		cairn_buf_putc(b, '\t');
	}
	if (value_json(b, v, len)) {
		cairn_buf_clear(&j->key);
		put_hex(&j->key, k, klen);
		return cairn_error_prefix("key %.*s: ", (int)j->key.len, (const char *)j->key.data);
	}
	if (j->ctx->json)
		cairn_buf_putc(b, '}');
	return emit(j->ctx, b);
}

static int hamt_ls(adt_job *j)
{
	return cairn_hamt_for_each(j->hamt[0], hamt_ls_one, j);
}

static int hamt_diff_one(const cairn_hamt_change *ch, void *payload)
{
	adt_job *j = payload;

	cairn_buf_clear(&j->key);
	if (j->ctx->json)
		key_json(&j->key, ch->key, ch->klen);
	else
		put_hex(&j->key, ch->key, ch->klen);
	return diff_line(j, ch->type, ch->before, ch->before_len, ch->after, ch->after_len, false);
}

static int hamt_diff(adt_job *j)
{
	return cairn_hamt_diff(j->hamt[0], j->hamt[1], hamt_diff_one, j);
}

static const adt_spec hamt_get_spec = {.nroots = 1, .prepare = hamt_get_args, .body = hamt_get};
static const adt_spec hamt_ls_spec = {.nroots = 1, .body = hamt_ls};
static const adt_spec hamt_diff_spec = {.nroots = 2, .body = hamt_diff};

static int run_hamt_get(cli_ctx *ctx, const cli_args *args)
{
	return run_adt(ctx, args, &hamt_get_spec);
}

static int run_hamt_ls(cli_ctx *ctx, const cli_args *args)
{
	return run_adt(ctx, args, &hamt_ls_spec);
}

static int run_hamt_diff(cli_ctx *ctx, const cli_args *args)
{
	return run_adt(ctx, args, &hamt_diff_spec);
}

/* --------------------------------------------------------------- tables */

static const cli_cmd amt_get_cmd = {
	.name = "get",
	.summary = "Print the value at an index of an AMT as DAG-JSON.",
	.usage = "ROOT INDEX",
	.description = "ROOT is the AMT's root block (either format: go-amt-ipld v3/v4, or the\n"
		       "legacy root of message and receipt AMTs). Example:\n"
		       "  cairn adt amt get --from chain.car bafy2bzace... 12",
	.opts = amt_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_amt_get,
};

static const cli_cmd amt_ls_cmd = {
	.name = "ls",
	.summary = "List an AMT's indexes and values, in order.",
	.usage = "ROOT",
	.description = "Each line is INDEX, a tab and the value as DAG-JSON (with --json, one\n"
		       "object per line).",
	.opts = amt_ls_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_amt_ls,
};

static const cli_cmd amt_diff_cmd = {
	.name = "diff",
	.summary = "Print what changed from one AMT to another, by index.",
	.usage = "ROOT ROOT2",
	.description = "Each line is '+' (added), '-' (removed) or '~' (modified), the index, a\n"
		       "tab, and the value as DAG-JSON (for '~', BEFORE -> AFTER), in index\n"
		       "order. Subtrees the two share are not read. Both must have the same\n"
		       "bit width (either format: a legacy root diffs with a v3 one).",
	.opts = amt_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_amt_diff,
};

static const cli_cmd hamt_get_cmd = {
	.name = "get",
	.summary = "Print the value of a key in a HAMT as DAG-JSON.",
	.usage = "ROOT KEY",
	.description = "KEY is taken as bytes (its UTF-8), or as hexadecimal with --hex; the\n"
		       "actor table's keys are addresses, e.g. f01000 is 00e807:\n"
		       "  cairn adt hamt get --from state.car --hex bafy2bzace... 00e807",
	.opts = hamt_get_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_hamt_get,
};

static const cli_cmd hamt_ls_cmd = {
	.name = "ls",
	.summary = "List a HAMT's keys and values.",
	.usage = "ROOT",
	.description = "Each line is the key in hexadecimal, a tab and the value as DAG-JSON\n"
		       "(with --json, one object per line, the key as DAG-JSON bytes). The\n"
		       "order is the HAMT's: by the keys' hashes.",
	.opts = hamt_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_hamt_ls,
};

static const cli_cmd hamt_diff_cmd = {
	.name = "diff",
	.summary = "Print what changed from one HAMT to another, by key.",
	.usage = "ROOT ROOT2",
	.description = "Each line is '+' (added), '-' (removed) or '~' (modified), the key in\n"
		       "hexadecimal, a tab, and the value as DAG-JSON (for '~', BEFORE -> AFTER),\n"
		       "in the order of the keys' hashes. Subtrees the two share are not read.",
	.opts = hamt_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_hamt_diff,
};

static const cli_cmd *const amt_subs[] = {&amt_diff_cmd, &amt_get_cmd, &amt_ls_cmd, NULL};
static const cli_cmd *const hamt_subs[] = {&hamt_diff_cmd, &hamt_get_cmd, &hamt_ls_cmd, NULL};

static const cli_cmd amt_cmd = {
	.name = "amt",
	.summary = "Read Filecoin AMTs (arrays): get, ls, diff.",
	.subs = amt_subs,
};

static const cli_cmd hamt_cmd = {
	.name = "hamt",
	.summary = "Read Filecoin HAMTs (maps, SHA-256 keys): get, ls, diff.",
	.subs = hamt_subs,
};

static const cli_cmd *const adt_subs[] = {&amt_cmd, &hamt_cmd, NULL};

const cli_cmd cli_adt_cmd = {
	.name = "adt",
	.summary = "Inspect Filecoin state structures (AMT, HAMT) as DAG-JSON.",
	.subs = adt_subs,
};
