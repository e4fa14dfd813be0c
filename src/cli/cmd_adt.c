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

/* ------------------------------------------------------------------- AMT */

static const cli_opt amt_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	{"bit-width", 'w', "N", "the AMT's bit width, checked against the root (default: the root's)"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt amt_ls_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	{"bit-width", 'w', "N", "the AMT's bit width, checked against the root (default: the root's)"},
	{"start", 's', "INDEX", "list from this index up"},
	{"limit", 'n', "N", "list at most N entries"},
	{NULL, 0, NULL, NULL},
};

static int amt_options(cli_ctx *ctx, const cli_args *args, cairn_amt_options *o)
{
	const char *bw = cli_opt_value(args, "bit-width");
	uint64_t v;

	*o = (cairn_amt_options)CAIRN_AMT_OPTIONS_INIT;
	o->format = CAIRN_AMT_DETECT;
	o->bit_width = 0;
	if (bw) {
		if (parse_u64(&v, bw) || v < 1 || v > CAIRN_AMT_MAX_BIT_WIDTH)
			return cli_usage_error(ctx, "--bit-width must be 1 to %d, not '%s'",
					       CAIRN_AMT_MAX_BIT_WIDTH, bw);
		o->bit_width = (unsigned)v;
	}
	return CLI_OK;
}

static int run_amt_get(cli_ctx *ctx, const cli_args *args)
{
	cairn_buf line = CAIRN_BUF_INIT;
	cairn_store *s = NULL;
	cairn_amt *a = NULL;
	cairn_amt_options o;
	const uint8_t *v;
	uint64_t index;
	cairn_cid root;
	size_t len;
	int rc;

	if ((rc = parse_cid(ctx, &root, args->argv[0])) || (rc = amt_options(ctx, args, &o)))
		return rc;
	if (parse_u64(&index, args->argv[1]))
		return cli_usage_error(ctx, "INDEX must be a whole number, not '%s'", args->argv[1]);
	if (open_source(&s, args) || cairn_amt_load(&a, s, &root, &o))
		goto fail;
	if ((rc = cairn_amt_get(&v, &len, a, index))) {
		if (rc == CAIRN_ENOTFOUND)
			cairn_error_set(rc, "index %llu is not set", (unsigned long long)index);
		goto fail;
	}
	if (ctx->json)
		cairn_buf_printf(&line, "{\"index\":%llu,\"value\":", (unsigned long long)index);
	if (value_json(&line, v, len)) {
		cairn_error_prefix("index %llu: ", (unsigned long long)index);
		goto fail;
	}
	if (ctx->json)
		cairn_buf_putc(&line, '}');
	if (emit(ctx, &line))
		goto fail;
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	cairn_buf_free(&line);
	cairn_amt_free(a);
	cairn_store_free(s);
	return rc;
}

typedef struct {
	cli_ctx *ctx;
	cairn_buf line;
	uint64_t left;
} amt_ls_state;

static int amt_ls_one(uint64_t i, const uint8_t *v, size_t len, void *payload)
{
	amt_ls_state *st = payload;
	int rc;

	if (!st->left)
		return 1; /* the limit: stop, not an error */
	st->left--;
	cairn_buf_printf(&st->line, st->ctx->json ? "{\"index\":%llu,\"value\":" : "%llu\t",
			 (unsigned long long)i);
	if ((rc = value_json(&st->line, v, len)))
		return cairn_error_prefix("index %llu: ", (unsigned long long)i);
	if (st->ctx->json)
		cairn_buf_putc(&st->line, '}');
	return emit(st->ctx, &st->line);
}

static int run_amt_ls(cli_ctx *ctx, const cli_args *args)
{
	const char *start_s = cli_opt_value(args, "start"), *limit_s = cli_opt_value(args, "limit");
	amt_ls_state st = {ctx, CAIRN_BUF_INIT, UINT64_MAX};
	uint64_t start = 0;
	cairn_store *s = NULL;
	cairn_amt *a = NULL;
	cairn_amt_options o;
	cairn_cid root;
	int rc;

	if ((rc = parse_cid(ctx, &root, args->argv[0])) || (rc = amt_options(ctx, args, &o)))
		return rc;
	if (start_s && parse_u64(&start, start_s))
		return cli_usage_error(ctx, "--start must be a whole number, not '%s'", start_s);
	if (limit_s && parse_u64(&st.left, limit_s))
		return cli_usage_error(ctx, "--limit must be a whole number, not '%s'", limit_s);
	if (open_source(&s, args) || cairn_amt_load(&a, s, &root, &o))
		goto fail;
	rc = cairn_amt_for_each(a, start, amt_ls_one, &st);
	if (rc < 0)
		goto fail;
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	cairn_buf_free(&st.line);
	cairn_amt_free(a);
	cairn_store_free(s);
	return rc;
}

typedef struct {
	cli_ctx *ctx;
	cairn_buf line;
	cairn_buf key; /* the key's text for messages */
} diff_state;

static const char *const diff_marks[] = {"+", "-", "~"};

/* One change as a line; `key` is already in st->key (text or JSON). */
static int diff_line(diff_state *st, cairn_adt_change_type type, const uint8_t *before,
		     size_t before_len, const uint8_t *after, size_t after_len, bool amt)
{
	cairn_buf *b = &st->line;
	int rc = 0;

	if (st->ctx->json) {
		cairn_buf_printf(b, "{\"type\":\"%s\",\"%s\":", cairn_adt_change_name(type),
				 amt ? "index" : "key");
		cairn_buf_append(b, st->key.data, st->key.len);
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
		cairn_buf_append(b, st->key.data, st->key.len);
		cairn_buf_putc(b, '\t');
		if (before)
			rc = value_json(b, before, before_len);
		if (!rc && before && after)
			cairn_buf_puts(b, " -> ");
		if (!rc && after)
			rc = value_json(b, after, after_len);
	}
	if (rc)
		return cairn_error_prefix("%s %.*s: ", amt ? "index" : "key", (int)st->key.len,
					  (const char *)st->key.data);
	return emit(st->ctx, b);
}

static int amt_diff_one(const cairn_amt_change *ch, void *payload)
{
	diff_state *st = payload;

	cairn_buf_clear(&st->key);
	cairn_buf_printf(&st->key, "%llu", (unsigned long long)ch->index);
	return diff_line(st, ch->type, ch->before, ch->before_len, ch->after, ch->after_len, true);
}

static int run_amt_diff(cli_ctx *ctx, const cli_args *args)
{
	diff_state st = {ctx, CAIRN_BUF_INIT, CAIRN_BUF_INIT};
	cairn_amt *a = NULL, *b = NULL;
	cairn_store *s = NULL;
	cairn_amt_options o;
	cairn_cid r1, r2;
	int rc;

	if ((rc = parse_cid(ctx, &r1, args->argv[0])) || (rc = parse_cid(ctx, &r2, args->argv[1])) ||
	    (rc = amt_options(ctx, args, &o)))
		return rc;
	if (open_source(&s, args) || cairn_amt_load(&a, s, &r1, &o) || cairn_amt_load(&b, s, &r2, &o))
		goto fail;
	if (cairn_amt_diff(a, b, amt_diff_one, &st))
		goto fail;
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	cairn_buf_free(&st.line);
	cairn_buf_free(&st.key);
	cairn_amt_free(a);
	cairn_amt_free(b);
	cairn_store_free(s);
	return rc;
}

/* ------------------------------------------------------------------ HAMT */

static const cli_opt hamt_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	{"bit-width", 'w', "N", "the HAMT's bit width (default 5, as Filecoin's; it is not stored)"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt hamt_get_opts[] = {
	OPT_FROM,
	CLI_OPT_REPO,
	{"bit-width", 'w', "N", "the HAMT's bit width (default 5, as Filecoin's; it is not stored)"},
	{"hex", 'x', NULL, "KEY is hexadecimal (an address: 00 and the varint of an ID)"},
	{NULL, 0, NULL, NULL},
};

static int hamt_options(cli_ctx *ctx, const cli_args *args, cairn_hamt_options *o)
{
	const char *bw = cli_opt_value(args, "bit-width");
	uint64_t v;

	*o = (cairn_hamt_options)CAIRN_HAMT_OPTIONS_INIT;
	if (bw) {
		if (parse_u64(&v, bw) || v < 1 || v > CAIRN_HAMT_MAX_BIT_WIDTH)
			return cli_usage_error(ctx, "--bit-width must be 1 to %d, not '%s'",
					       CAIRN_HAMT_MAX_BIT_WIDTH, bw);
		o->bit_width = (unsigned)v;
	}
	return CLI_OK;
}

static int run_hamt_get(cli_ctx *ctx, const cli_args *args)
{
	const char *key_s = args->argv[1];
	cairn_buf line = CAIRN_BUF_INIT, key = CAIRN_BUF_INIT;
	cairn_hamt_options o;
	cairn_store *s = NULL;
	cairn_hamt *h = NULL;
	const uint8_t *v;
	cairn_cid root;
	size_t len;
	int rc;

	if ((rc = parse_cid(ctx, &root, args->argv[0])) || (rc = hamt_options(ctx, args, &o)))
		return rc;
	if (cli_opt_flag(args, "hex")) {
		if (cairn_base_decode(&key, CAIRN_BASE16, key_s, strlen(key_s))) {
			rc = cli_usage_error(ctx, "KEY: %s", cairn_error_last());
			cairn_buf_free(&key);
			return rc;
		}
	} else {
		cairn_buf_append(&key, key_s, strlen(key_s));
	}
	if (key.err)
		goto fail;
	if (open_source(&s, args) || cairn_hamt_load(&h, s, &root, &o))
		goto fail;
	if ((rc = cairn_hamt_get(&v, &len, h, key.data, key.len))) {
		if (rc == CAIRN_ENOTFOUND)
			cairn_error_set(rc, "key '%s' is not set", key_s);
		goto fail;
	}
	if (ctx->json) {
		cairn_buf_puts(&line, "{\"key\":");
		key_json(&line, key.data, key.len);
		cairn_buf_puts(&line, ",\"value\":");
	}
	if (value_json(&line, v, len)) {
		cairn_error_prefix("key '%s': ", key_s);
		goto fail;
	}
	if (ctx->json)
		cairn_buf_putc(&line, '}');
	if (emit(ctx, &line))
		goto fail;
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	cairn_buf_free(&line);
	cairn_buf_free(&key);
	cairn_hamt_free(h);
	cairn_store_free(s);
	return rc;
}

static int hamt_ls_one(const uint8_t *k, size_t klen, const uint8_t *v, size_t len, void *payload)
{
	diff_state *st = payload;
	cairn_buf *b = &st->line;

	if (st->ctx->json) {
		cairn_buf_puts(b, "{\"key\":");
		key_json(b, k, klen);
		cairn_buf_puts(b, ",\"value\":");
	} else {
		put_hex(b, k, klen);
		cairn_buf_putc(b, '\t');
	}
	if (value_json(b, v, len)) {
		cairn_buf_clear(&st->key);
		put_hex(&st->key, k, klen);
		return cairn_error_prefix("key %.*s: ", (int)st->key.len, (const char *)st->key.data);
	}
	if (st->ctx->json)
		cairn_buf_putc(b, '}');
	return emit(st->ctx, b);
}

static int run_hamt_ls(cli_ctx *ctx, const cli_args *args)
{
	diff_state st = {ctx, CAIRN_BUF_INIT, CAIRN_BUF_INIT};
	cairn_hamt_options o;
	cairn_store *s = NULL;
	cairn_hamt *h = NULL;
	cairn_cid root;
	int rc;

	if ((rc = parse_cid(ctx, &root, args->argv[0])) || (rc = hamt_options(ctx, args, &o)))
		return rc;
	if (open_source(&s, args) || cairn_hamt_load(&h, s, &root, &o) ||
	    cairn_hamt_for_each(h, hamt_ls_one, &st))
		goto fail;
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	cairn_buf_free(&st.line);
	cairn_buf_free(&st.key);
	cairn_hamt_free(h);
	cairn_store_free(s);
	return rc;
}

static int hamt_diff_one(const cairn_hamt_change *ch, void *payload)
{
	diff_state *st = payload;

	cairn_buf_clear(&st->key);
	if (st->ctx->json)
		key_json(&st->key, ch->key, ch->klen);
	else
		put_hex(&st->key, ch->key, ch->klen);
	return diff_line(st, ch->type, ch->before, ch->before_len, ch->after, ch->after_len, false);
}

static int run_hamt_diff(cli_ctx *ctx, const cli_args *args)
{
	diff_state st = {ctx, CAIRN_BUF_INIT, CAIRN_BUF_INIT};
	cairn_hamt *a = NULL, *b = NULL;
	cairn_hamt_options o;
	cairn_store *s = NULL;
	cairn_cid r1, r2;
	int rc;

	if ((rc = parse_cid(ctx, &r1, args->argv[0])) || (rc = parse_cid(ctx, &r2, args->argv[1])) ||
	    (rc = hamt_options(ctx, args, &o)))
		return rc;
	if (open_source(&s, args) || cairn_hamt_load(&a, s, &r1, &o) ||
	    cairn_hamt_load(&b, s, &r2, &o) || cairn_hamt_diff(a, b, hamt_diff_one, &st))
		goto fail;
	rc = CLI_OK;
	goto out;
fail:
	rc = cli_fail(ctx, what(ctx));
out:
	cairn_buf_free(&st.line);
	cairn_buf_free(&st.key);
	cairn_hamt_free(a);
	cairn_hamt_free(b);
	cairn_store_free(s);
	return rc;
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
