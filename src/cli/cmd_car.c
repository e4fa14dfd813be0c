/* cmd_car.c: `cairn car`: inspect, verify, list and take apart CAR archives,
 * and make new ones (index, filter, concat, get-dag, create), as go-car's `car`.
 *
 * Files written go to a temporary name beside the output and are renamed
 * into place only when complete, so a failed or interrupted command never
 * leaves a half-written CAR under the name asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"

/* Below this a progress bar would only flash on the screen. */
#define PROGRESS_MIN (64ull << 20)
/* go-car's bound on one section: no block a peer sends is larger. */
#define BLOCK_FILE_MAX (8u << 20)
#define COPY_CHUNK (1u << 20)

#define OPT_ZERO_EOF {"zero-length-as-eof", 0, NULL, \
	"a section length of 0 ends the data (as in zero-padded Filecoin pieces)"}
#define OPT_KEEP_IDENTITY {"keep-identity", 0, NULL, \
	"keep blocks with identity CIDs (left out by default, as in go-car: the CID holds the data)"}

/* "car inspect": the command path without "cairn ", for messages. */
static const char *what(const cli_ctx *ctx)
{
	return ctx->path + strlen("cairn ");
}

static int fail(cli_ctx *ctx)
{
	return cli_fail(ctx, what(ctx));
}

static void warn(cli_ctx *ctx, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static void warn(cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fprintf(ctx->err, "cairn: %s: warning: ", what(ctx));
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	fputc('\n', ctx->err);
}

static int open_car(cairn_car_reader **r, const char *path, bool trusted, bool zero_eof)
{
	cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;

	o.trusted = trusted;
	o.zero_length_as_eof = zero_eof;
	return cairn_car_reader_open(r, path, &o);
}

static uint64_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) < 0 ? 0 : (uint64_t)st.st_size;
}

/* A bar on stderr for work over large files only; `quiet` when it would
 * share the terminal with the command's own output. */
static void progress_begin(cairn_progress *p, const char *label, uint64_t total, bool quiet)
{
	cairn_progress_start(p, STDERR_FILENO, false, label, total);
	if (total < PROGRESS_MIN || quiet)
		p->active = false;
}

static const char *code_str(const char *name, uint64_t code, char *buf, size_t cap)
{
	if (name)
		return name;
	snprintf(buf, cap, "0x%llx", (unsigned long long)code);
	return buf;
}

static const char *index_codec_name(uint64_t codec)
{
	switch (codec) {
	case CAIRN_CAR_INDEX_SORTED: return "car-index-sorted";
	case CAIRN_CAR_INDEX_MH_SORTED: return "car-multihash-index-sorted";
	default: return NULL;
	}
}

static void print_cid(FILE *f, const cairn_cid *cid)
{
	char s[CAIRN_CID_MAX_STRING];

	cairn_cid_to_string(s, cid);
	fputs(s, f);
}

static void json_cid(FILE *f, const cairn_cid *cid)
{
	fputc('"', f);
	print_cid(f, cid);
	fputc('"', f);
}

static void json_roots(FILE *f, const cairn_cid *roots, size_t n)
{
	fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		json_cid(f, &roots[i]);
	}
	fputc(']', f);
}

static int parse_version(cli_ctx *ctx, const cli_args *args, unsigned def, unsigned *out)
{
	const char *v = cli_opt_value(args, "version");

	*out = def;
	if (!v)
		return 0;
	if (strcmp(v, "1") && strcmp(v, "2"))
		return cli_usage_error(ctx, "--version must be 1 or 2, not '%s'", v);
	*out = (unsigned)(v[0] - '0');
	return 0;
}

/* A growable array of CIDs, for roots and the get-dag walk. */
typedef struct {
	cairn_cid *v;
	size_t len, cap;
} cid_list;

static int cid_list_push(cid_list *l, const cairn_cid *cid)
{
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		cairn_cid *t = cairn_realloc(l->v, cap * sizeof(*t));

		if (!t)
			return CAIRN_ENOMEM;
		l->v = t;
		l->cap = cap;
	}
	l->v[l->len++] = *cid;
	return 0;
}

static void cid_list_free(cid_list *l)
{
	cairn_free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Parses "CID[,CID...]" into `out`. */
static int parse_cid_list(cid_list *out, const char *s)
{
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);
		cairn_cid cid;
		int rc;

		if (n && ((rc = cairn_cid_parse(&cid, s, n)) || (rc = cid_list_push(out, &cid))))
			return rc;
		s += n + (comma ? 1 : 0);
	}
	return 0;
}

/* Copies file bytes [off, off + n) of `in` to the end of `out`. */
static int copy_range(int in, const char *in_name, uint64_t off, uint64_t n, int out,
		      const char *out_name, cairn_progress *p, uint64_t progress_base)
{
	uint8_t *buf = cairn_malloc(COPY_CHUNK);
	uint64_t done = 0;
	int rc = 0;

	if (!buf)
		return CAIRN_ENOMEM;
	while (done < n && !rc) {
		size_t k = n - done < COPY_CHUNK ? (size_t)(n - done) : COPY_CHUNK;

		if (!(rc = cairn_file_pread_full(in, buf, k, off + done, in_name)))
			rc = cairn_file_write_full(out, buf, k, out_name);
		done += k;
		if (p)
			cairn_progress_update(p, progress_base + done);
	}
	cairn_free(buf);
	return rc;
}

/* ------------------------------------------------------------- inspect */

typedef struct {
	uint64_t code, count;
} code_count;

typedef struct {
	code_count *v;
	size_t len, cap;
} counts;

/* Counts one more of `code`, keeping the table sorted by code (go-car
 * prints them in that order). */
static int counts_add(counts *c, uint64_t code)
{
	size_t i;

	for (i = 0; i < c->len && c->v[i].code < code; i++)
		;
	if (i < c->len && c->v[i].code == code) {
		c->v[i].count++;
		return 0;
	}
	if (c->len == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		code_count *t = cairn_realloc(c->v, cap * sizeof(*t));

		if (!t)
			return CAIRN_ENOMEM;
		c->v = t;
		c->cap = cap;
	}
	memmove(c->v + i + 1, c->v + i, (c->len - i) * sizeof(*c->v));
	c->v[i].code = code;
	c->v[i].count = 1;
	c->len++;
	return 0;
}

typedef struct {
	uint64_t blocks;
	uint64_t blk_min, blk_max, blk_total;
	uint64_t cid_min, cid_max, cid_total;
	counts codecs, hashes;
	bool *root_seen;
	size_t roots_found;
} car_stats;

static void print_counts(cli_ctx *ctx, const counts *c, const char *(*name)(uint64_t))
{
	for (size_t i = 0; i < c->len; i++) {
		char buf[32];

		fprintf(ctx->out, "\t%s: %llu\n", code_str(name(c->v[i].code), c->v[i].code, buf, sizeof(buf)),
			(unsigned long long)c->v[i].count);
	}
}

static void json_counts(cli_ctx *ctx, const counts *c, const char *(*name)(uint64_t))
{
	fputc('{', ctx->out);
	for (size_t i = 0; i < c->len; i++) {
		char buf[32];
		const char *s = code_str(name(c->v[i].code), c->v[i].code, buf, sizeof(buf));

		if (i)
			fputc(',', ctx->out);
		cli_json_string(ctx->out, s, strlen(s));
		fprintf(ctx->out, ":%llu", (unsigned long long)c->v[i].count);
	}
	fputc('}', ctx->out);
}

/* The codec varint at the start of a CARv2's index: all go-car's inspect
 * reads of it. */
static int read_index_codec(uint64_t *codec, int fd, const char *path, uint64_t off, uint64_t size)
{
	uint8_t b[CAIRN_VARINT_MAX];
	size_t n = size - off < sizeof(b) ? (size_t)(size - off) : sizeof(b), used;
	int rc;

	if ((rc = cairn_file_pread_full(fd, b, n, off, path)))
		return rc;
	if ((rc = cairn_varint_decode(codec, &used, b, n)))
		return cairn_error_prefix("%s: index codec at byte %llu: ", path, (unsigned long long)off);
	return 0;
}

static void print_inspect(cli_ctx *ctx, const cairn_car_reader *r, const car_stats *st,
			  const char *index_type)
{
	const cairn_car_v2_header *h = cairn_car_reader_v2_header(r);
	const cairn_cid *roots = cairn_car_reader_roots(r);
	size_t nroots = cairn_car_reader_root_count(r);
	uint64_t n = st->blocks ? st->blocks : 1;
	FILE *f = ctx->out;

	fprintf(f, "Version: %u\n", cairn_car_reader_version(r));
	if (h) {
		fputs("Characteristics: ", f);
		for (int i = 0; i < 16; i++)
			fprintf(f, "%02x", h->characteristics[i]);
		fprintf(f, "\nData offset: %llu\nData (payload) length: %llu\nIndex offset: %llu\nIndex type: %s\n",
			(unsigned long long)h->data_offset, (unsigned long long)h->data_size,
			(unsigned long long)h->index_offset, index_type);
	}
	fputs("Roots:", f);
	if (nroots == 0)
		fputs(" (none)", f);
	for (size_t i = 0; i < nroots; i++) {
		fputs(nroots == 1 ? " " : "\n\t", f);
		print_cid(f, &roots[i]);
	}
	fprintf(f, "\nRoot blocks present in data: %s\n", st->roots_found == nroots ? "Yes" : "No");
	fprintf(f, "Block count: %llu\n", (unsigned long long)st->blocks);
	fprintf(f, "Min / average / max block length (bytes): %llu / %llu / %llu\n",
		(unsigned long long)st->blk_min, (unsigned long long)(st->blk_total / n),
		(unsigned long long)st->blk_max);
	fprintf(f, "Min / average / max CID length (bytes): %llu / %llu / %llu\n",
		(unsigned long long)st->cid_min, (unsigned long long)(st->cid_total / n),
		(unsigned long long)st->cid_max);
	fputs("Block count per codec:\n", f);
	print_counts(ctx, &st->codecs, cairn_codec_name);
	fputs("CID count per multihash:\n", f);
	print_counts(ctx, &st->hashes, cairn_multihash_name);
}

static void json_inspect(cli_ctx *ctx, const cairn_car_reader *r, const car_stats *st,
			 const char *index_type)
{
	const cairn_car_v2_header *h = cairn_car_reader_v2_header(r);
	uint64_t n = st->blocks ? st->blocks : 1;
	FILE *f = ctx->out;

	fprintf(f, "{\"version\":%u", cairn_car_reader_version(r));
	if (h) {
		fputs(",\"characteristics\":\"", f);
		for (int i = 0; i < 16; i++)
			fprintf(f, "%02x", h->characteristics[i]);
		fprintf(f, "\",\"fully_indexed\":%s,\"data_offset\":%llu,\"data_size\":%llu,\"index_offset\":%llu,\"index_type\":",
			cairn_car_v2_fully_indexed(h) ? "true" : "false",
			(unsigned long long)h->data_offset, (unsigned long long)h->data_size,
			(unsigned long long)h->index_offset);
		if (h->index_offset)
			cli_json_string(f, index_type, strlen(index_type));
		else
			fputs("null", f);
	}
	fputs(",\"roots\":", f);
	json_roots(f, cairn_car_reader_roots(r), cairn_car_reader_root_count(r));
	fprintf(f, ",\"roots_present\":%s,\"block_count\":%llu", st->roots_found ==
		cairn_car_reader_root_count(r) ? "true" : "false", (unsigned long long)st->blocks);
	fprintf(f, ",\"block_length\":{\"min\":%llu,\"average\":%llu,\"max\":%llu}",
		(unsigned long long)st->blk_min, (unsigned long long)(st->blk_total / n),
		(unsigned long long)st->blk_max);
	fprintf(f, ",\"cid_length\":{\"min\":%llu,\"average\":%llu,\"max\":%llu}",
		(unsigned long long)st->cid_min, (unsigned long long)(st->cid_total / n),
		(unsigned long long)st->cid_max);
	fputs(",\"codecs\":", f);
	json_counts(ctx, &st->codecs, cairn_codec_name);
	fputs(",\"multihashes\":", f);
	json_counts(ctx, &st->hashes, cairn_multihash_name);
	fputs("}\n", f);
}

static const cli_opt inspect_opts[] = {
	{"full", 0, NULL, "also hash every block against its CID"},
	{NULL, 0, NULL, NULL},
};

static int run_inspect(cli_ctx *ctx, const cli_args *args)
{
	const char *path = args->argv[0];
	bool full = cli_opt_flag(args, "full");
	cairn_car_reader *r = NULL;
	const cairn_car_v2_header *h;
	const cairn_cid *roots;
	cairn_car_section s;
	cairn_progress p;
	car_stats st;
	char type_buf[48];
	const char *index_type = "(none)";
	size_t nroots;
	uint64_t size;
	int rc, ret = CLI_FAILED;

	memset(&st, 0, sizeof(st));
	/* As go-car's inspect: zero padding after the data ends it. */
	if (open_car(&r, path, !full, true))
		goto fail;
	size = file_size(cairn_car_reader_fd(r));
	roots = cairn_car_reader_roots(r);
	nroots = cairn_car_reader_root_count(r);
	if (!(st.root_seen = cairn_calloc(nroots + 1, sizeof(bool))))
		goto fail;
	progress_begin(&p, "inspect", cairn_car_reader_data_end(r), false);
	while ((rc = cairn_car_reader_next(r, &s, false)) == 1) {
		if (!st.blocks || s.block_len < st.blk_min)
			st.blk_min = s.block_len;
		if (!st.blocks || s.cid_len < st.cid_min)
			st.cid_min = s.cid_len;
		if (s.block_len > st.blk_max)
			st.blk_max = s.block_len;
		if (s.cid_len > st.cid_max)
			st.cid_max = s.cid_len;
		st.blk_total += s.block_len;
		st.cid_total += s.cid_len;
		st.blocks++;
		if ((rc = counts_add(&st.codecs, s.cid.codec)) || (rc = counts_add(&st.hashes, s.cid.mh_code)))
			break;
		/* A root listed twice counts once for each listing, as go-car. */
		for (size_t i = 0; i < nroots && st.roots_found < nroots; i++) {
			if (!st.root_seen[i] && cairn_cid_equal(&roots[i], &s.cid)) {
				st.root_seen[i] = true;
				st.roots_found++;
			}
		}
		cairn_progress_update(&p, s.block_offset + s.block_len);
	}
	cairn_progress_finish(&p);
	if (rc < 0)
		goto fail;
	h = cairn_car_reader_v2_header(r);
	if (h && h->index_offset) {
		uint64_t codec;

		if (read_index_codec(&codec, cairn_car_reader_fd(r), path, h->index_offset, size))
			goto fail;
		index_type = index_codec_name(codec);
		if (!index_type) {
			snprintf(type_buf, sizeof(type_buf), "unknown (0x%llx)", (unsigned long long)codec);
			index_type = type_buf;
		}
	}
	if (ctx->json)
		json_inspect(ctx, r, &st, index_type);
	else
		print_inspect(ctx, r, &st, index_type);
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
out:
	cairn_free(st.root_seen);
	cairn_free(st.codecs.v);
	cairn_free(st.hashes.v);
	cairn_car_reader_free(r);
	return ret;
}

/* -------------------------------------------------------------- verify */

/* What verify keeps of each section to check the index entries against:
 * 24 bytes, so a CAR of millions of blocks costs tens of megabytes. */
typedef struct {
	uint64_t offset;      /* relative to the payload, as the index stores it */
	uint64_t digest_hash;
	uint64_t mh_code;
} vsection;

typedef struct {
	vsection *v;
	uint8_t *hit;
	size_t len, cap;
	const char *path;
	uint64_t index_offset;
	bool by_code;         /* MultihashIndexSorted: the code is stored too */
	uint64_t entries;
} vcheck;

static uint64_t digest_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ (uint64_t)n;
}

static int vcheck_add(vcheck *c, const cairn_car_section *s)
{
	if (c->len == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		vsection *t = cairn_realloc(c->v, cap * sizeof(*t));

		if (!t)
			return CAIRN_ENOMEM;
		c->v = t;
		c->cap = cap;
	}
	c->v[c->len].offset = s->offset;
	c->v[c->len].digest_hash = digest_hash(s->cid.bytes + s->cid.digest_off, s->cid.digest_len);
	c->v[c->len].mh_code = s->cid.mh_code;
	c->len++;
	return 0;
}

/* Every index entry must name the start of a section holding that digest,
 * and no section may be named twice. */
static int vcheck_entry(uint64_t mh_code, const uint8_t *digest, size_t digest_len, uint64_t offset,
			void *payload)
{
	vcheck *c = payload;
	size_t lo = 0, hi = c->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->v[mid].offset < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	c->entries++;
	if (lo == c->len || c->v[lo].offset != offset)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: index at byte %llu: an entry points at payload offset %llu, where no section starts",
			c->path, (unsigned long long)c->index_offset, (unsigned long long)offset);
	if (c->v[lo].digest_hash != digest_hash(digest, digest_len) ||
	    (c->by_code && c->v[lo].mh_code != mh_code))
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: index at byte %llu: the entry for payload offset %llu has a digest that is not the block's there",
			c->path, (unsigned long long)c->index_offset, (unsigned long long)offset);
	if (c->hit[lo])
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: index at byte %llu: two entries point at payload offset %llu",
			c->path, (unsigned long long)c->index_offset, (unsigned long long)offset);
	c->hit[lo] = 1;
	return 0;
}

/* Whether the index lists the section at `offset` under its CID. */
static int index_has(const cairn_car_index *idx, const cairn_cid *cid, uint64_t offset, bool *found)
{
	uint64_t small[16], *offs = small;
	int n = cairn_car_index_find(idx, cid, small, 16);

	*found = false;
	if (n < 0)
		return n;
	if (n > 16) {
		if (!(offs = cairn_calloc((size_t)n, sizeof(*offs))))
			return CAIRN_ENOMEM;
		n = cairn_car_index_find(idx, cid, offs, (size_t)n);
	}
	for (int i = 0; i < n && !*found; i++)
		*found = offs[i] == offset;
	if (offs != small)
		cairn_free(offs);
	return 0;
}

/* What `car verify` checks of each section as it passes. */
typedef struct {
	const char *path;
	const cairn_cid *roots;
	size_t nroots, found;
	bool *root_seen;
	const cairn_car_index *idx;
	vcheck *vc;
	uint64_t index_offset;
	bool fully;
} verify_state;

static int verify_section(const cairn_car_section *s, void *payload)
{
	verify_state *vs = payload;
	bool in_index = false;
	int rc;

	for (size_t i = 0; i < vs->nroots && vs->found < vs->nroots; i++) {
		if (!vs->root_seen[i] && cairn_cid_equal(&vs->roots[i], &s->cid)) {
			vs->root_seen[i] = true;
			vs->found++;
		}
	}
	if (!vs->idx)
		return 0;
	if ((rc = vcheck_add(vs->vc, s)))
		return rc;
	/* Identity blocks are indexed only in a fully-indexed CAR (go-car's
	 * StoreIdentityCIDs). */
	if (s->cid.mh_code == CAIRN_MH_IDENTITY && !vs->fully)
		return 0;
	if ((rc = index_has(vs->idx, &s->cid, s->offset, &in_index)))
		return rc;
	if (!in_index) {
		char str[CAIRN_CID_MAX_STRING];

		cairn_cid_to_string(str, &s->cid);
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: index at byte %llu: block %s (section at byte %llu) is not in the index",
			vs->path, (unsigned long long)vs->index_offset, str,
			(unsigned long long)s->file_offset);
	}
	return 0;
}

static const cli_opt verify_opts[] = {
	OPT_ZERO_EOF,
	{NULL, 0, NULL, NULL},
};

static int run_verify(cli_ctx *ctx, const cli_args *args)
{
	const char *path = args->argv[0];
	bool zero_eof = cli_opt_flag(args, "zero-length-as-eof");
	cairn_car_reader *r = NULL;
	cairn_car_index *idx = NULL;
	const cairn_car_v2_header *h;
	const cairn_cid *roots;
	cairn_car_stats stats;
	cairn_progress p;
	verify_state vs;
	vcheck vc;
	bool *root_seen = NULL;
	size_t nroots;
	uint64_t size, blocks = 0;
	int rc, ret = CLI_FAILED;

	memset(&vc, 0, sizeof(vc));
	memset(&vs, 0, sizeof(vs));
	memset(&p, 0, sizeof(p));
	if (open_car(&r, path, false, zero_eof))
		goto fail;
	size = file_size(cairn_car_reader_fd(r));
	roots = cairn_car_reader_roots(r);
	nroots = cairn_car_reader_root_count(r);
	h = cairn_car_reader_v2_header(r);
	if (!nroots) {
		/* The CARv1 spec requires a root; go-car's verify refuses none. */
		cairn_error_set(CAIRN_ECORRUPT, "%s: the header lists no roots (a CAR needs at least one)", path);
		goto fail;
	}
	if (h && !h->index_offset && size > h->data_offset + h->data_size) {
		cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: %llu bytes follow the data, but the header says there is no index",
			path, (unsigned long long)(h->data_offset + h->data_size),
			(unsigned long long)(size - h->data_offset - h->data_size));
		goto fail;
	}
	if (h && h->index_offset) {
		if (cairn_car_index_open(&idx, path, h->index_offset) || cairn_car_index_check(idx))
			goto fail;
		vc.path = path;
		vc.index_offset = h->index_offset;
		vc.by_code = cairn_car_index_codec(idx) == CAIRN_CAR_INDEX_MH_SORTED;
	}
	if (!(root_seen = cairn_calloc(nroots, sizeof(bool))))
		goto fail;
	vs.path = path;
	vs.roots = roots;
	vs.nroots = nroots;
	vs.root_seen = root_seen;
	vs.idx = idx;
	vs.vc = idx ? &vc : NULL;
	vs.index_offset = h ? h->index_offset : 0;
	vs.fully = h && cairn_car_v2_fully_indexed(h);
	/* One pass: blocks hashed on all cores while each section is checked
	 * against the roots and the index as it is read. */
	progress_begin(&p, "verify", cairn_car_reader_data_end(r) - cairn_car_reader_data_offset(r),
		       false);
	rc = cairn_car_verify(&stats, r, 0, &p, verify_section, &vs);
	cairn_progress_finish(&p);
	if (rc)
		goto fail;
	blocks = stats.blocks;
	for (size_t i = 0; i < nroots; i++) {
		if (!root_seen[i]) {
			char str[CAIRN_CID_MAX_STRING];

			cairn_cid_to_string(str, &roots[i]);
			cairn_error_set(CAIRN_ECORRUPT, "%s: root %s is not one of the blocks", path, str);
			goto fail;
		}
	}
	if (idx) {
		if (!(vc.hit = cairn_calloc(vc.len + 1, 1)))
			goto fail;
		if (cairn_car_index_foreach(idx, vcheck_entry, &vc))
			goto fail;
	}
	if (ctx->json) {
		fprintf(ctx->out, "{\"ok\":true,\"blocks\":%llu,\"bytes\":%llu,\"index_entries\":",
			(unsigned long long)blocks, (unsigned long long)size);
		if (idx)
			fprintf(ctx->out, "%llu}\n", (unsigned long long)vc.entries);
		else
			fputs("null}\n", ctx->out);
	} else {
		fprintf(ctx->out, "ok: %llu block%s, %llu bytes", (unsigned long long)blocks,
			blocks == 1 ? "" : "s", (unsigned long long)size);
		if (idx)
			fprintf(ctx->out, ", %llu index entr%s", (unsigned long long)vc.entries,
				vc.entries == 1 ? "y" : "ies");
		fputc('\n', ctx->out);
	}
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
out:
	cairn_free(root_seen);
	cairn_free(vc.v);
	cairn_free(vc.hit);
	cairn_car_index_free(idx);
	cairn_car_reader_free(r);
	return ret;
}

/* ------------------------------------------------------------------ ls */

static const cli_opt ls_opts[] = {
	{"verbose", 'v', NULL, "also the codec, block size and the section's byte offset in the file"},
	OPT_ZERO_EOF,
	{NULL, 0, NULL, NULL},
};

static int run_ls(cli_ctx *ctx, const cli_args *args)
{
	const char *path = args->argv[0];
	bool verbose = cli_opt_flag(args, "verbose");
	cairn_car_reader *r = NULL;
	cairn_car_section s;
	cairn_progress p;
	int rc;

	if (open_car(&r, path, false, cli_opt_flag(args, "zero-length-as-eof")))
		return fail(ctx);
	progress_begin(&p, "ls", cairn_car_reader_data_end(r), isatty(fileno(ctx->out)));
	while ((rc = cairn_car_reader_next(r, &s, false)) == 1) {
		char buf[32];
		const char *codec = code_str(cairn_codec_name(s.cid.codec), s.cid.codec, buf, sizeof(buf));

		if (ctx->json) {
			fputs("{\"cid\":", ctx->out);
			json_cid(ctx->out, &s.cid);
			fputs(",\"codec\":", ctx->out);
			cli_json_string(ctx->out, codec, strlen(codec));
			fprintf(ctx->out, ",\"size\":%llu,\"offset\":%llu}\n", (unsigned long long)s.block_len,
				(unsigned long long)s.file_offset);
		} else if (verbose) {
			print_cid(ctx->out, &s.cid);
			fprintf(ctx->out, "\t%s\t%llu\t%llu\n", codec, (unsigned long long)s.block_len,
				(unsigned long long)s.file_offset);
		} else {
			print_cid(ctx->out, &s.cid);
			fputc('\n', ctx->out);
		}
		cairn_progress_update(&p, s.block_offset + s.block_len);
	}
	cairn_progress_finish(&p);
	cairn_car_reader_free(r);
	return rc < 0 ? fail(ctx) : CLI_OK;
}

/* ---------------------------------------------------------------- root */

static int run_root(cli_ctx *ctx, const cli_args *args)
{
	cairn_car_reader *r;
	const cairn_cid *roots;
	size_t n;

	if (open_car(&r, args->argv[0], true, false))
		return fail(ctx);
	roots = cairn_car_reader_roots(r);
	n = cairn_car_reader_root_count(r);
	if (ctx->json) {
		fputs("{\"roots\":", ctx->out);
		json_roots(ctx->out, roots, n);
		fputs("}\n", ctx->out);
	} else {
		for (size_t i = 0; i < n; i++) {
			print_cid(ctx->out, &roots[i]);
			fputc('\n', ctx->out);
		}
	}
	cairn_car_reader_free(r);
	return CLI_OK;
}

/* ------------------------------------------------- finding blocks in a CAR */

/* A CAR opened for lookups by CID: through its CARv2 index, an index built
 * in memory, or a scan. Blocks found are always hashed against their CIDs. */
typedef struct {
	const char *path;
	cairn_car_reader *r;   /* trusted: scanning only reads CIDs */
	cairn_car_index *idx;
	cairn_buf idx_bytes;
	cairn_car_options opts;
} car_src;

static int src_open(cli_ctx *ctx, car_src *src, const char *path, bool zero_eof, bool build_index)
{
	const cairn_car_v2_header *h;
	int rc;

	memset(src, 0, sizeof(*src));
	src->path = path;
	src->opts = (cairn_car_options)CAIRN_CAR_OPTIONS_INIT;
	src->opts.zero_length_as_eof = zero_eof;
	if ((rc = open_car(&src->r, path, true, zero_eof)))
		return rc;
	h = cairn_car_reader_v2_header(src->r);
	if (h && h->index_offset) {
		if (!cairn_car_index_open(&src->idx, path, h->index_offset))
			return 0;
		warn(ctx, "%s; reading the data instead", cairn_error_last());
	}
	if (!build_index)
		return 0;
	if ((rc = cairn_car_index_build(&src->idx_bytes, src->r, CAIRN_CAR_INDEX_MH_SORTED, true)))
		return rc;
	return cairn_car_index_open_bytes(&src->idx, src->idx_bytes.data, src->idx_bytes.len, path);
}

static void src_close(car_src *src)
{
	cairn_car_index_free(src->idx);
	cairn_buf_free(&src->idx_bytes);
	cairn_car_reader_free(src->r);
}

static int src_read(car_src *src, cairn_car_section *sec, cairn_buf *block, uint64_t offset)
{
	return cairn_car_section_read(sec, block, cairn_car_reader_fd(src->r), src->path,
				      cairn_car_reader_data_offset(src->r),
				      cairn_car_reader_data_end(src->r), offset, &src->opts);
}

/* Finds a block by multihash. Returns 1 with `block` filled and `at` set
 * to its section's file offset, 0 if the CAR does not hold it, or an error. */
static int src_get(car_src *src, const cairn_cid *cid, cairn_buf *block, uint64_t *at)
{
	cairn_car_section sec;
	int rc;

	if (src->idx) {
		uint64_t small[16], *offs = small;
		int n = cairn_car_index_find(src->idx, cid, small, 16);

		if (n > 16) {
			if (!(offs = cairn_calloc((size_t)n, sizeof(*offs))))
				return CAIRN_ENOMEM;
			n = cairn_car_index_find(src->idx, cid, offs, (size_t)n);
		}
		rc = 0;
		/* An IndexSorted entry matches on the digest alone, and an index
		 * may be wrong: only the CID in the section itself counts. */
		for (int i = 0; i < n && !rc; i++) {
			if ((rc = src_read(src, &sec, block, offs[i])) == 0)
				rc = cairn_cid_multihash_equal(&sec.cid, cid) ? 1 : 0;
			*at = sec.file_offset;
		}
		if (offs != small)
			cairn_free(offs);
		return n < 0 ? n : rc;
	}
	if ((rc = cairn_car_reader_seek(src->r, cairn_car_reader_header_len(src->r))))
		return rc;
	while ((rc = cairn_car_reader_next(src->r, &sec, false)) == 1) {
		if (cairn_cid_multihash_equal(&sec.cid, cid)) {
			*at = sec.file_offset;
			return (rc = src_read(src, &sec, block, sec.offset)) ? rc : 1;
		}
	}
	return rc;
}

/* The bytes of the block `cid` names: for an identity CID its digest (go-car's
 * blockstores answer those without looking, and its writers leave them out
 * of CARs), else the block found through `src`, in `block`. Returns 1 with
 * *data and *len set, 0 if the CAR does not hold it, or an error. */
static int src_block(car_src *src, const cairn_cid *cid, cairn_buf *block, const uint8_t **data,
		     size_t *len, uint64_t *at)
{
	int rc;

	*at = 0;
	if (cid->mh_code == CAIRN_MH_IDENTITY) {
		*data = cid->bytes + cid->digest_off;
		*len = cid->digest_len;
		return 1;
	}
	if ((rc = src_get(src, cid, block, at)) != 1)
		return rc;
	*data = block->data;
	*len = block->len;
	return 1;
}

static void not_found(const cairn_cid *cid, const char *path)
{
	char str[CAIRN_CID_MAX_STRING];

	cairn_cid_to_string(str, cid);
	cairn_error_set(CAIRN_ENOTFOUND, "block %s not found in %s", str, path);
}

/* ----------------------------------------------------------- get-block */

static const cli_opt get_block_opts[] = {
	OPT_ZERO_EOF,
	{NULL, 0, NULL, NULL},
};

static int run_get_block(cli_ctx *ctx, const cli_args *args)
{
	const char *path = args->argv[0], *cid_s = args->argv[1];
	const char *out = args->argc > 2 ? args->argv[2] : NULL;
	cairn_buf block = CAIRN_BUF_INIT;
	const uint8_t *data = NULL;
	size_t len = 0;
	uint64_t at;
	car_src src;
	cairn_cid cid;
	int rc, ret = CLI_FAILED;

	if (cairn_cid_parse(&cid, cid_s, strlen(cid_s)))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (src_open(ctx, &src, path, cli_opt_flag(args, "zero-length-as-eof"), false))
		goto fail;
	if ((rc = src_block(&src, &cid, &block, &data, &len, &at)) < 0)
		goto fail;
	if (rc == 0) {
		not_found(&cid, path);
		goto fail;
	}
	if (out && strcmp(out, "-")) {
		if (cli_out_write_file(out, data, len))
			goto fail;
	} else if (fwrite(data, 1, len, ctx->out) != len || fflush(ctx->out)) {
		cairn_error_set(CAIRN_EIO, "standard output: %s", strerror(errno));
		goto fail;
	}
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
out:
	src_close(&src);
	cairn_buf_free(&block);
	return ret;
}

/* ------------------------------------------------------------- get-dag */

static int collect_link(const cairn_cid *link, void *payload)
{
	return cid_list_push(payload, link);
}

static int block_links(uint64_t codec, const uint8_t *p, size_t len, cid_list *links)
{
	links->len = 0;
	return cairn_block_links(codec, p, len, collect_link, links);
}

static const cli_opt get_dag_opts[] = {
	{"version", 0, "N", "CAR version to write: 1, or 2 with an index (default 2)"},
	{"strict", 0, NULL, "fail when a linked block is not in the CAR (default: skip it, with a warning)"},
	OPT_KEEP_IDENTITY,
	OPT_ZERO_EOF,
	{NULL, 0, NULL, NULL},
};

static int run_get_dag(cli_ctx *ctx, const cli_args *args)
{
	const char *path = args->argv[0], *out_path = args->argv[args->argc - 1];
	cairn_car_writer_options wo = {2, CAIRN_CAR_INDEX_MH_SORTED, false, false};
	bool strict = cli_opt_flag(args, "strict");
	cairn_car_writer *w = NULL;
	cairn_buf block = CAIRN_BUF_INIT;
	cid_list stack = {0}, links = {0};
	cairn_cid_set seen = {0};
	cli_out o = {.fd = -1};
	uint64_t missing = 0, unfollowed = 0;
	char str[CAIRN_CID_MAX_STRING];
	car_src src;
	cairn_cid root;
	int rc, ret = CLI_FAILED;

	memset(&root, 0, sizeof(root));
	if (parse_version(ctx, args, 2, &wo.version))
		return CLI_USAGE;
	wo.keep_identity = cli_opt_flag(args, "keep-identity");
	if (args->argc == 3 && cairn_cid_parse(&root, args->argv[1], strlen(args->argv[1])))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	memset(&src, 0, sizeof(src));
	if (src_open(ctx, &src, path, cli_opt_flag(args, "zero-length-as-eof"), true))
		goto fail;
	src.opts.trusted = true; /* the writer hashes every block it is given */
	if (args->argc == 2) {
		/* No ROOT: the CAR's own, when it names exactly one. */
		if (cairn_car_reader_root_count(src.r) != 1) {
			ret = cli_usage_error(ctx, "%s has %zu roots: give the ROOT to start from", path,
					      cairn_car_reader_root_count(src.r));
			goto out;
		}
		root = cairn_car_reader_roots(src.r)[0];
	}
	cairn_cid_to_string(str, &root);
	if (cli_out_open(NULL, &o, out_path, false) || cairn_car_writer_open(&w, cli_out_release(&o), &root, 1, &wo) ||
	    cid_list_push(&stack, &root))
		goto fail;
	/* Depth first, links in block order, each block once: the order of
	 * go-car's ExploreAllRecursively walk. */
	while (stack.len) {
		cairn_cid c = stack.v[--stack.len];
		const uint8_t *data = NULL;
		size_t len = 0;
		uint64_t at = 0;
		bool added;

		if (cairn_cid_set_add(&seen, &c, &added))
			goto fail;
		if (!added)
			continue;
		if ((rc = src_block(&src, &c, &block, &data, &len, &at)) < 0)
			goto fail;
		if (rc == 0) {
			if (strict || cairn_cid_equal(&c, &root)) {
				not_found(&c, path);
				goto fail;
			}
			missing++;
			continue;
		}
		if (cairn_car_writer_put(w, &c, data, len)) {
			cairn_error_prefix("%s: section at byte %llu: ", path, (unsigned long long)at);
			goto fail;
		}
		rc = block_links(c.codec, data, len, &links);
		if (rc == CAIRN_EUNSUPPORTED) {
			unfollowed++;
			continue;
		}
		if (rc) {
			char s[CAIRN_CID_MAX_STRING];

			cairn_cid_to_string(s, &c);
			cairn_error_prefix("%s: block %s: ", path, s);
			goto fail;
		}
		for (size_t i = links.len; i > 0; i--)
			if (cid_list_push(&stack, &links.v[i - 1]))
				goto fail;
	}
	if (cairn_car_writer_finish(w) || cli_out_commit(&o))
		goto fail;
	if (missing)
		warn(ctx, "%llu linked blocks are not in %s and were left out (--strict to fail)",
		     (unsigned long long)missing, path);
	if (unfollowed)
		warn(ctx, "the links of %llu blocks of codecs cairn cannot read were not followed",
		     (unsigned long long)unfollowed);
	if (ctx->json) {
		fputs("{\"out\":", ctx->out);
		cli_json_string(ctx->out, out_path, strlen(out_path));
		fprintf(ctx->out, ",\"root\":\"%s\",\"blocks\":%llu,\"missing\":%llu}\n", str,
			(unsigned long long)cairn_car_writer_block_count(w), (unsigned long long)missing);
	}
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
	cli_out_abort(&o);
out:
	cairn_car_writer_free(w);
	src_close(&src);
	cairn_buf_free(&block);
	cid_list_free(&stack);
	cid_list_free(&links);
	cairn_cid_set_free(&seen);
	return ret;
}

/* --------------------------------------------------------------- index */

static int parse_index_codec(uint64_t *out, const char *s)
{
	static const struct {
		const char *name;
		uint64_t codec;
	} names[] = {
		{"car-multihash-index-sorted", CAIRN_CAR_INDEX_MH_SORTED},
		{"multihash-sorted", CAIRN_CAR_INDEX_MH_SORTED},
		{"car-index-sorted", CAIRN_CAR_INDEX_SORTED},
		{"sorted", CAIRN_CAR_INDEX_SORTED},
		{"none", 0},
	};
	char *end;
	unsigned long long v;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i].name)) {
			*out = names[i].codec;
			return 0;
		}
	}
	errno = 0;
	v = strtoull(s, &end, 0);
	if (s[0] >= '0' && s[0] <= '9' && !errno && !*end &&
	    (v == CAIRN_CAR_INDEX_SORTED || v == CAIRN_CAR_INDEX_MH_SORTED)) {
		*out = v;
		return 0;
	}
	return cairn_error_set(CAIRN_EINVAL,
		"unknown index codec '%s' (use car-multihash-index-sorted (0x0401), car-index-sorted (0x0400) or none)", s);
}

static const cli_opt index_opts[] = {
	{"codec", 'c', "CODEC", "car-multihash-index-sorted or 0x0401 (default), car-index-sorted or 0x0400, or none"},
	{"detached", 0, NULL, "write the index alone (go-car's `car index create`)"},
	{"keep-identity", 0, NULL, "index identity CIDs too, and mark the CARv2 fully indexed"},
	{"verify", 0, NULL, "also hash every block against its CID (by default only the CIDs are read)"},
	OPT_ZERO_EOF,
	{NULL, 0, NULL, NULL},
};

static int run_index(cli_ctx *ctx, const cli_args *args)
{
	const char *in = args->argv[0], *out_path = args->argv[1];
	const char *codec_s = cli_opt_value(args, "codec");
	bool detached = cli_opt_flag(args, "detached"), keep_identity = cli_opt_flag(args, "keep-identity");
	cairn_car_index_builder *b = NULL;
	cairn_car_reader *r = NULL;
	cairn_buf idx = CAIRN_BUF_INIT;
	cairn_car_section s;
	cairn_car_v2_header h;
	cairn_progress p;
	cli_out o = {.fd = -1};
	uint64_t codec = CAIRN_CAR_INDEX_MH_SORTED, start, end;
	uint8_t prefix[CAIRN_CAR_V2_PREFIX_LEN];
	int rc, ret = CLI_FAILED;

	if (codec_s && parse_index_codec(&codec, codec_s))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (detached && !codec)
		return cli_usage_error(ctx, "--detached needs an index codec, not none");
	memset(&p, 0, sizeof(p));
	/* Trusted unless --verify: an index maps CIDs to offsets, and go-car
	 * builds it without hashing too. */
	if (open_car(&r, in, !cli_opt_flag(args, "verify"), cli_opt_flag(args, "zero-length-as-eof")))
		goto fail;
	start = cairn_car_reader_data_offset(r);
	end = start + cairn_car_reader_header_len(r);
	if (codec && cairn_car_index_builder_new(&b, codec, keep_identity))
		goto fail;
	progress_begin(&p, "index", 2 * (cairn_car_reader_data_end(r) - start), false);
	while ((rc = cairn_car_reader_next(r, &s, false)) == 1) {
		if (b && (rc = cairn_car_index_builder_add(b, &s.cid, s.offset)))
			break;
		end = s.block_offset + s.block_len;
		cairn_progress_update(&p, end - start);
	}
	if (rc < 0 || (b && cairn_car_index_builder_encode(b, &idx)))
		goto fail_progress;
	if (detached) {
		cairn_progress_finish(&p);
		if (cli_out_write_file(out_path, idx.data, idx.len))
			goto fail;
		goto done;
	}
	/* The CARv1 is copied byte for byte up to the end of its last section
	 * (zero padding after it, with --zero-length-as-eof, is left out), as
	 * go-car's WrapV1 does: pragma, header, data, index. */
	memset(&h, 0, sizeof(h));
	h.data_offset = CAIRN_CAR_V2_PREFIX_LEN;
	h.data_size = end - start;
	h.index_offset = codec ? h.data_offset + h.data_size : 0;
	if (codec && keep_identity)
		h.characteristics[0] |= 0x80;
	memcpy(prefix, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN);
	cairn_car_v2_header_encode(prefix + CAIRN_CAR_PRAGMA_LEN, &h);
	if (cli_out_open(NULL, &o, out_path, false) || cairn_file_write_full(o.fd, prefix, sizeof(prefix), out_path) ||
	    copy_range(cairn_car_reader_fd(r), in, start, h.data_size, o.fd, out_path, &p, h.data_size) ||
	    cairn_file_write_full(o.fd, idx.data, idx.len, out_path))
		goto fail_progress;
	cairn_progress_finish(&p);
	if (cli_out_commit(&o))
		goto fail;
done:
	if (ctx->json) {
		fputs("{\"out\":", ctx->out);
		cli_json_string(ctx->out, out_path, strlen(out_path));
		fprintf(ctx->out, ",\"index_codec\":");
		if (codec)
			fprintf(ctx->out, "\"%s\"", index_codec_name(codec));
		else
			fputs("null", ctx->out);
		fprintf(ctx->out, ",\"entries\":%llu,\"index_bytes\":%zu}\n",
			(unsigned long long)(b ? cairn_car_index_builder_count(b) : 0), idx.len);
	}
	ret = CLI_OK;
	goto out;
fail_progress:
	cairn_progress_finish(&p);
fail:
	ret = fail(ctx);
	cli_out_abort(&o);
out:
	cairn_car_index_builder_free(b);
	cairn_buf_free(&idx);
	cairn_car_reader_free(r);
	return ret;
}

/* -------------------------------------------------------- detach-index */

static int run_detach_index(cli_ctx *ctx, const cli_args *args)
{
	const char *in = args->argv[0], *out_path = args->argc > 1 ? args->argv[1] : NULL;
	const cairn_car_v2_header *h;
	cairn_car_reader *r = NULL;
	cli_out o = {.fd = -1};
	uint64_t size;
	int ret = CLI_FAILED, fd;

	if (open_car(&r, in, true, false))
		goto fail;
	h = cairn_car_reader_v2_header(r);
	if (!h || !h->index_offset) {
		cairn_error_set(CAIRN_ENOTFOUND, "%s: %s", in, h ? "the CARv2 header says there is no index (index offset 0)"
			: "a CARv1 has no index (make one with `cairn car index --detached`)");
		goto fail;
	}
	size = file_size(cairn_car_reader_fd(r));
	/* Copied as it is, like go-car: an index is judged where it is used. */
	if (out_path && strcmp(out_path, "-")) {
		if (cli_out_open(NULL, &o, out_path, false))
			goto fail;
		fd = o.fd;
	} else if (isatty(fileno(ctx->out))) {
		ret = cli_usage_error(ctx, "an index is binary: give OUT, or redirect standard output");
		goto out;
	} else {
		fflush(ctx->out);
		fd = fileno(ctx->out);
		out_path = "standard output";
	}
	if (copy_range(cairn_car_reader_fd(r), in, h->index_offset, size - h->index_offset, fd,
		       out_path, NULL, 0))
		goto fail;
	if (o.fd >= 0 && cli_out_commit(&o))
		goto fail;
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
	cli_out_abort(&o);
out:
	cairn_car_reader_free(r);
	return ret;
}

/* -------------------------------------------------------------- filter */

/* Reads CIDs, one a line (blank lines and #-comments skipped), from `path`
 * ("-": standard input) into `set`. */
static int read_cid_file(cairn_cid_set *set, const char *path)
{
	cairn_buf b = CAIRN_BUF_INIT;
	const char *name = strcmp(path, "-") ? path : "standard input";
	size_t line = 0;
	int rc;

	if ((rc = cairn_file_read_all(&b, path, 1u << 30)))
		goto out;
	for (size_t i = 0; i < b.len;) {
		const char *s = (const char *)b.data + i, *nl = memchr(s, '\n', b.len - i);
		size_t n = nl ? (size_t)(nl - s) : b.len - i;
		cairn_cid cid;
		bool added;

		i += n + 1;
		line++;
		while (n && (s[0] == ' ' || s[0] == '\t')) {
			s++;
			n--;
		}
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
			n--;
		if (!n || s[0] == '#')
			continue;
		if ((rc = cairn_cid_parse(&cid, s, n))) {
			cairn_error_prefix("%s: line %zu: ", name, line);
			goto out;
		}
		if ((rc = cairn_cid_set_add(set, &cid, &added)))
			goto out;
	}
out:
	cairn_buf_free(&b);
	return rc;
}

static const cli_opt filter_opts[] = {
	{"cid-file", 0, "FILE", "read the CIDs from FILE, one a line (- for standard input)"},
	{"inverse", 0, NULL, "drop the listed CIDs and keep the rest"},
	{"version", 0, "N", "CAR version to write: 1, or 2 with an index (default 2)"},
	OPT_KEEP_IDENTITY,
	OPT_ZERO_EOF,
	{NULL, 0, NULL, NULL},
};

static int run_filter(cli_ctx *ctx, const cli_args *args)
{
	const char *in = args->argv[0], *out_path = args->argv[1];
	const char *cid_file = cli_opt_value(args, "cid-file");
	bool inverse = cli_opt_flag(args, "inverse");
	cairn_car_writer_options wo = {2, CAIRN_CAR_INDEX_MH_SORTED, false, false};
	cairn_car_writer *w = NULL;
	cairn_car_reader *r = NULL;
	cid_list roots = {0};
	cairn_cid_set set = {0};
	cairn_car_section s;
	cli_out o = {.fd = -1};
	uint64_t total = 0;
	int rc, ret = CLI_FAILED;

	if (parse_version(ctx, args, 2, &wo.version))
		return CLI_USAGE;
	wo.keep_identity = cli_opt_flag(args, "keep-identity");
	for (int i = 2; i < args->argc; i++) {
		cairn_cid cid;
		bool added;

		if (cairn_cid_parse(&cid, args->argv[i], strlen(args->argv[i]))) {
			ret = cli_usage_error(ctx, "%s", cairn_error_last());
			goto out;
		}
		if (cairn_cid_set_add(&set, &cid, &added))
			goto fail;
	}
	if (!cid_file && args->argc == 2) {
		/* As go-car: the CIDs come on standard input, unless that is a
		 * person at a terminal who has not been told to type them. */
		if (isatty(STDIN_FILENO)) {
			ret = cli_usage_error(ctx, "give the CIDs to keep as arguments, with --cid-file, or on standard input");
			goto out;
		}
		cid_file = "-";
	}
	if (cid_file && read_cid_file(&set, cid_file))
		goto fail;
	/* Trusted: the writer hashes every block it keeps. */
	if (open_car(&r, in, true, cli_opt_flag(args, "zero-length-as-eof")))
		goto fail;
	/* A root stays if its CID passes the filter, as in go-car. */
	for (size_t i = 0; i < cairn_car_reader_root_count(r); i++) {
		const cairn_cid *root = &cairn_car_reader_roots(r)[i];

		if (cairn_cid_set_has(&set, root) != inverse && cid_list_push(&roots, root))
			goto fail;
	}
	if (!roots.len)
		warn(ctx, "no roots defined after filtering");
	if (cli_out_open(NULL, &o, out_path, false) ||
	    cairn_car_writer_open(&w, cli_out_release(&o), roots.v, roots.len, &wo))
		goto fail;
	while ((rc = cairn_car_reader_next(r, &s, true)) == 1) {
		total++;
		if (cairn_cid_set_has(&set, &s.cid) == inverse)
			continue;
		if ((rc = cairn_car_writer_put(w, &s.cid, s.block, (size_t)s.block_len))) {
			cairn_error_prefix("%s: section at byte %llu: ", in, (unsigned long long)s.file_offset);
			break;
		}
	}
	if (rc < 0 || cairn_car_writer_finish(w) || cli_out_commit(&o))
		goto fail;
	if (ctx->json) {
		fputs("{\"out\":", ctx->out);
		cli_json_string(ctx->out, out_path, strlen(out_path));
		fputs(",\"roots\":", ctx->out);
		json_roots(ctx->out, roots.v, roots.len);
		fprintf(ctx->out, ",\"blocks\":%llu,\"of\":%llu}\n",
			(unsigned long long)cairn_car_writer_block_count(w), (unsigned long long)total);
	}
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
	cli_out_abort(&o);
out:
	cairn_car_writer_free(w);
	cairn_car_reader_free(r);
	cid_list_free(&roots);
	cairn_cid_set_free(&set);
	return ret;
}

/* -------------------------------------------------------------- concat */

static const cli_opt concat_opts[] = {
	{"version", 0, "N", "CAR version to write: 1 (default, as go-car), or 2 with an index"},
	OPT_KEEP_IDENTITY,
	OPT_ZERO_EOF,
	{NULL, 0, NULL, NULL},
};

static int run_concat(cli_ctx *ctx, const cli_args *args)
{
	const char *out_path = args->argv[0];
	cairn_car_writer_options wo = {1, CAIRN_CAR_INDEX_MH_SORTED, false, true};
	bool zero_eof = cli_opt_flag(args, "zero-length-as-eof");
	int nin = args->argc - 1, rc, ret = CLI_FAILED;
	cairn_car_reader **rs = NULL;
	cairn_car_writer *w = NULL;
	cid_list roots = {0};
	cairn_cid_set root_set = {0};
	cairn_car_section s;
	cli_out o = {.fd = -1};

	if (parse_version(ctx, args, 1, &wo.version))
		return CLI_USAGE;
	wo.keep_identity = cli_opt_flag(args, "keep-identity");
	if (!(rs = cairn_calloc((size_t)nin, sizeof(*rs))))
		goto fail;
	/* Every header first: the roots of all go in the new header. */
	for (int i = 0; i < nin; i++) {
		if (open_car(&rs[i], args->argv[i + 1], true, zero_eof))
			goto fail;
		for (size_t j = 0; j < cairn_car_reader_root_count(rs[i]); j++) {
			const cairn_cid *root = &cairn_car_reader_roots(rs[i])[j];
			bool added;

			if (cairn_cid_set_add(&root_set, root, &added) || (added && cid_list_push(&roots, root)))
				goto fail;
		}
	}
	if (cli_out_open(NULL, &o, out_path, false) ||
	    cairn_car_writer_open(&w, cli_out_release(&o), roots.v, roots.len, &wo))
		goto fail;
	for (int i = 0; i < nin; i++) {
		while ((rc = cairn_car_reader_next(rs[i], &s, true)) == 1) {
			if ((rc = cairn_car_writer_put(w, &s.cid, s.block, (size_t)s.block_len))) {
				cairn_error_prefix("%s: section at byte %llu: ", args->argv[i + 1],
						   (unsigned long long)s.file_offset);
				break;
			}
		}
		if (rc < 0)
			goto fail;
	}
	if (cairn_car_writer_finish(w) || cli_out_commit(&o))
		goto fail;
	if (ctx->json) {
		fputs("{\"out\":", ctx->out);
		cli_json_string(ctx->out, out_path, strlen(out_path));
		fputs(",\"roots\":", ctx->out);
		json_roots(ctx->out, roots.v, roots.len);
		fprintf(ctx->out, ",\"blocks\":%llu}\n", (unsigned long long)cairn_car_writer_block_count(w));
	}
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
	cli_out_abort(&o);
out:
	cairn_car_writer_free(w);
	for (int i = 0; rs && i < nin; i++)
		cairn_car_reader_free(rs[i]);
	cairn_free(rs);
	cid_list_free(&roots);
	cairn_cid_set_free(&root_set);
	return ret;
}

/* -------------------------------------------------------------- create */

/* A file named "<cid>" or "<cid>.<ext>" (as `cairn car get-block` or an
 * export leaves them) is that block. */
static bool cid_from_file_name(cairn_cid *out, const char *path)
{
	const char *base = strrchr(path, '/'), *dot;
	int rc;

	base = base ? base + 1 : path;
	dot = strchr(base, '.');
	rc = cairn_cid_parse(out, base, dot ? (size_t)(dot - base) : strlen(base));
	cairn_error_clear();
	return rc == 0;
}

static const cli_opt create_opts[] = {
	{"root", 0, "CID[,CID...]", "the roots to name in the header (default: the first file's block)"},
	{"codec", 'c', "CODEC", "codec of files not named by their CID: raw (default), dag-cbor, dag-pb, dag-json..."},
	{"hash", 0, "HASH", "hash for files not named by their CID: sha2-256 (default) or blake2b-256"},
	{"version", 0, "N", "CAR version to write: 1, or 2 with an index (default 2)"},
	OPT_KEEP_IDENTITY,
	{NULL, 0, NULL, NULL},
};

static int run_create(cli_ctx *ctx, const cli_args *args)
{
	const char *out_path = args->argv[0], *root_s = cli_opt_value(args, "root");
	const char *codec_s = cli_opt_value(args, "codec"), *hash_s = cli_opt_value(args, "hash");
	cairn_car_writer_options wo = {2, CAIRN_CAR_INDEX_MH_SORTED, false, true};
	uint64_t codec = CAIRN_CODEC_RAW, mh = CAIRN_MH_SHA2_256;
	int nfiles = args->argc - 1, ret = CLI_FAILED;
	cairn_car_writer *w = NULL;
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid *cids = NULL;
	cid_list roots = {0};
	cli_out o = {.fd = -1};

	if (parse_version(ctx, args, 2, &wo.version))
		return CLI_USAGE;
	wo.keep_identity = cli_opt_flag(args, "keep-identity");
	if (codec_s && cairn_codec_from_name(&codec, codec_s))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (hash_s && cairn_multihash_from_name(&mh, hash_s))
		return cli_usage_error(ctx, "%s", cairn_error_last());
	if (root_s) {
		int rc = parse_cid_list(&roots, root_s);

		if (rc || !roots.len) {
			ret = cli_usage_error(ctx, "--root: %s", rc ? cairn_error_last() : "no CID given");
			goto out;
		}
	}
	if (!(cids = cairn_calloc((size_t)nfiles, sizeof(*cids))))
		goto fail;
	/* The CIDs first, so the header can name the roots before any block. */
	for (int i = 0; i < nfiles; i++) {
		const char *path = args->argv[i + 1];

		cairn_buf_clear(&b);
		if (cairn_file_read_all(&b, path, BLOCK_FILE_MAX)) {
			if (cairn_error_last_code() == CAIRN_ETOOBIG)
				cairn_error_prefix("blocks are at most %u bytes: ", BLOCK_FILE_MAX);
			goto fail;
		}
		if (cid_from_file_name(&cids[i], path))
			continue;
		if (codec == CAIRN_CODEC_DAG_CBOR || codec == CAIRN_CODEC_DAG_PB ||
		    codec == CAIRN_CODEC_DAG_JSON) {
			/* Never name bytes no reader would accept as this codec. */
			cairn_arena *arena;
			cairn_node *node;
			int rc;

			if (cairn_arena_new(&arena))
				goto fail;
			rc = cairn_ipld_decode(&node, arena, codec, b.data, b.len);
			cairn_arena_free(arena);
			if (rc) {
				cairn_error_prefix("%s: not a valid %s block: ", path, cairn_codec_name(codec));
				goto fail;
			}
		}
		if (cairn_cid_compute(&cids[i], 1, codec, mh, b.data, b.len)) {
			cairn_error_prefix("%s: ", path);
			goto fail;
		}
	}
	if (!roots.len && cid_list_push(&roots, &cids[0]))
		goto fail;
	if (cli_out_open(NULL, &o, out_path, false) ||
	    cairn_car_writer_open(&w, cli_out_release(&o), roots.v, roots.len, &wo))
		goto fail;
	for (int i = 0; i < nfiles; i++) {
		const char *path = args->argv[i + 1];

		cairn_buf_clear(&b);
		if (cairn_file_read_all(&b, path, BLOCK_FILE_MAX))
			goto fail;
		if (cairn_car_writer_put(w, &cids[i], b.data, b.len)) {
			cairn_error_prefix("%s: ", path);
			goto fail;
		}
	}
	if (cairn_car_writer_finish(w) || cli_out_commit(&o))
		goto fail;
	for (size_t i = 0; i < roots.len; i++) {
		bool present = false;

		for (int j = 0; j < nfiles && !present; j++)
			present = cairn_cid_equal(&roots.v[i], &cids[j]);
		if (!present) {
			char str[CAIRN_CID_MAX_STRING];

			cairn_cid_to_string(str, &roots.v[i]);
			warn(ctx, "root %s is not one of the blocks", str);
		}
	}
	if (ctx->json) {
		fputs("{\"out\":", ctx->out);
		cli_json_string(ctx->out, out_path, strlen(out_path));
		fputs(",\"roots\":", ctx->out);
		json_roots(ctx->out, roots.v, roots.len);
		fputs(",\"blocks\":[", ctx->out);
		for (int i = 0; i < nfiles; i++) {
			fputs(i ? "," : "", ctx->out);
			json_cid(ctx->out, &cids[i]);
		}
		fputs("]}\n", ctx->out);
	} else {
		for (size_t i = 0; i < roots.len; i++) {
			print_cid(ctx->out, &roots.v[i]);
			fputc('\n', ctx->out);
		}
	}
	ret = CLI_OK;
	goto out;
fail:
	ret = fail(ctx);
	cli_out_abort(&o);
out:
	cairn_car_writer_free(w);
	cairn_buf_free(&b);
	cairn_free(cids);
	cid_list_free(&roots);
	return ret;
}

/* ------------------------------------------------------------- the table */

static const cli_cmd concat_cmd = {
	.name = "concat",
	.summary = "Join the blocks of several CARs into one.",
	.usage = "OUT IN...",
	.description = "The new CAR names the roots of all inputs and holds each block once, in\n"
		       "the order met. Example:\n"
		       "  cairn car concat all.car part1.car part2.car",
	.opts = concat_opts,
	.min_args = 2,
	.max_args = -1,
	.run = run_concat,
};

static const cli_cmd create_cmd = {
	.name = "create",
	.summary = "Make a CAR from block files.",
	.usage = "OUT FILE...",
	.description = "A file named by a CID (\"<cid>\" or \"<cid>.<ext>\") is that block and is\n"
		       "checked against it; any other file is hashed as --codec with --hash\n"
		       "(CIDv1). Prints the roots. Examples:\n"
		       "  cairn car create out.car bafkrei....block\n"
		       "  cairn car create --codec dag-cbor --root bafyrei... out.car *.cbor",
	.opts = create_opts,
	.min_args = 2,
	.max_args = -1,
	.run = run_create,
};

static const cli_cmd detach_index_cmd = {
	.name = "detach-index",
	.summary = "Copy the index out of a CARv2.",
	.usage = "IN [OUT]",
	.description = "The bytes from the header's index offset to the end of the file, as they\n"
		       "are, to OUT or standard output. Example:\n"
		       "  cairn car detach-index deal.car deal.car.idx",
	.min_args = 1,
	.max_args = 2,
	.run = run_detach_index,
};

static const cli_cmd filter_cmd = {
	.name = "filter",
	.summary = "Copy a CAR keeping (or dropping) the blocks listed.",
	.usage = "IN OUT [CID...]",
	.description = "The CIDs come as arguments, from --cid-file, or on standard input, and\n"
		       "match exactly (version and codec too). A root stays in the header if it\n"
		       "passes the filter; a warning says when none does. Example:\n"
		       "  cairn car filter --inverse --cid-file bad.txt in.car clean.car",
	.opts = filter_opts,
	.min_args = 2,
	.max_args = -1,
	.run = run_filter,
};

static const cli_cmd get_block_cmd = {
	.name = "get-block",
	.summary = "Write one block's bytes.",
	.usage = "FILE CID [OUT]",
	.description = "Looks the block up through the CARv2 index if there is one, else reads\n"
		       "the CAR through, and hashes it before writing it to OUT or standard\n"
		       "output. Blocks match by multihash, as in go-car (a CIDv0 finds the same\n"
		       "dag-pb block under CIDv1); an identity CID is its own data. Example:\n"
		       "  cairn car get-block deal.car bafy2bzace... > block.bin",
	.opts = get_block_opts,
	.min_args = 2,
	.max_args = 3,
	.run = run_get_block,
};

static const cli_cmd get_dag_cmd = {
	.name = "get-dag",
	.summary = "Copy the DAG under a root into a new CAR.",
	.usage = "FILE [ROOT] OUT",
	.description = "Follows the links of dag-pb, dag-cbor and dag-json blocks depth first,\n"
		       "writing each block once with ROOT (default: the CAR's only root) as the\n"
		       "new CAR's root. Linked blocks missing from FILE are left out with a\n"
		       "warning, as go-car does, or fail the command with --strict. Example:\n"
		       "  cairn car get-dag chain.car bafy2bzacea... state.car",
	.opts = get_dag_opts,
	.min_args = 2,
	.max_args = 3,
	.run = run_get_dag,
};

static const cli_cmd index_cmd = {
	.name = "index",
	.summary = "Wrap a CAR into an indexed CARv2, or write its index alone.",
	.usage = "IN OUT",
	.description = "The CARv1 (or the data of a CARv2) is copied byte for byte after a new\n"
		       "CARv2 header, and the index appended, as go-car's `car index` does.\n"
		       "With --detached only the index is written (`car index create`).\n"
		       "Blocks are not hashed unless --verify. Examples:\n"
		       "  cairn car index deal.car deal-v2.car\n"
		       "  cairn car index --detached --codec car-index-sorted deal.car deal.idx",
	.opts = index_opts,
	.min_args = 2,
	.max_args = 2,
	.run = run_index,
};

static const cli_cmd inspect_cmd = {
	.name = "inspect",
	.summary = "Summarise a CAR: header, roots, block and CID statistics.",
	.usage = "FILE",
	.description = "Prints what go-car's `car inspect` does, in the same format. Blocks are\n"
		       "hashed only with --full (use `cairn car verify` for a full check);\n"
		       "a zero section length ends the data, as in go-car. Example:\n"
		       "  cairn car inspect --full deal.car",
	.opts = inspect_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_inspect,
};

static const cli_cmd ls_cmd = {
	.name = "ls",
	.summary = "List the CIDs of a CAR's blocks in file order.",
	.usage = "FILE",
	.description = "Blocks are hashed as they are read. With --verbose each line is CID,\n"
		       "codec, block size and the section's byte offset in the file, separated\n"
		       "by tabs; with --json one object per line. Example:\n"
		       "  cairn car ls -v deal.car | sort -t$'\\t' -k3 -n | tail",
	.opts = ls_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_ls,
};

static const cli_cmd list_cmd = {
	.name = "list",
	.summary = "Same as ls.",
	.usage = "FILE",
	.description = "See `cairn car ls --help`.",
	.opts = ls_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_ls,
};

static const cli_cmd root_cmd = {
	.name = "root",
	.summary = "Print the roots of a CAR, one a line.",
	.usage = "FILE",
	.description = "A CAR without roots prints nothing. Example:\n"
		       "  cairn car root deal.car",
	.min_args = 1,
	.max_args = 1,
	.run = run_root,
};

static const cli_cmd verify_cmd = {
	.name = "verify",
	.summary = "Check a CAR completely: headers, roots, every block's hash, the index.",
	.usage = "FILE",
	.description = "Checks what go-car's `car verify` does: at least one root, every root\n"
		       "a block of the CAR, every block hashing to its CID, a CARv2's header\n"
		       "consistent with the file. A CARv2 index must list every block at its\n"
		       "offset and nothing else. Prints \"ok: N blocks, B bytes\" or the error,\n"
		       "and exits 1 on failure. Example:\n"
		       "  cairn car verify deal.car && echo fine",
	.opts = verify_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_verify,
};

static const cli_cmd *const car_subs[] = {
	&concat_cmd, &create_cmd, &detach_index_cmd, &filter_cmd, &get_block_cmd, &get_dag_cmd,
	&index_cmd, &inspect_cmd, &list_cmd, &ls_cmd, &root_cmd, &verify_cmd, NULL,
};

const cli_cmd cli_car_cmd = {
	.name = "car",
	.summary = "Inspect, verify, index and take apart CAR archives.",
	.subs = car_subs,
};
