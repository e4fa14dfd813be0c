/* dagjson.c: DAG-JSON, the JSON codec of IPLD, byte for byte as @ipld/dag-json
 * and go-ipld-prime write it: a decoder for any valid form, a canonical encoder.
 *
 * The rules (the DAG-JSON spec, and what the two references do where it is silent):
 *   - canonical output has no whitespace and map keys in bytewise order; the
 *     decoder accepts whitespace and keys in any order, but not a key twice,
 *     and keeps maps in bytewise order so a decoded tree is canonical
 *   - {"/":"<cid>"} is a link and {"/":{"bytes":"<base64>"}} bytes (standard
 *     alphabet, no padding); any other map whose only key is "/" is refused
 *     both ways, since a reader could not tell it from those two
 *   - strings are escaped as JSON.stringify does; a number with '.', 'e' or
 *     'E' is a float, any other an integer from -2^64 to 2^64-1
 *   - floats are written as JavaScript's Number.prototype.toString writes
 *     them, with ".0" added when that has no '.' or exponent (as cborg does)
 *     so that they read back as floats
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipld_i.h"

/* One pending map entry: where its key and value start, for messages. */
typedef struct {
	cairn_map_entry e;
	size_t key_off;
	size_t value_off;
} pending;

typedef struct {
	const uint8_t *p;
	size_t len;
	size_t off;
	unsigned depth;
	cairn_arena *arena;
	/* Scratch stacks shared by every level: a container's children pile up
	 * on top while it is parsed and move into the arena, sized exactly,
	 * when it closes. JSON gives no counts to allocate by. */
	cairn_node *nodes;
	size_t nodes_len, nodes_cap;
	pending *ents;
	size_t ents_len, ents_cap;
	cairn_buf scratch; /* number text for strtod, decoded base64 */
} parser;

/* Every decode error names the codec and the byte offset. */
#define fail_at(at, ...) cairn_ipld__corrupt("dag-json", at, __VA_ARGS__)

/* Names the byte at `at` for a message: 'x' when printable, else its value. */
static const char *describe(char *out, size_t n, const parser *c, size_t at)
{
	uint8_t ch;

	if (at >= c->len) {
		snprintf(out, n, "end of input");
		return out;
	}
	ch = c->p[at];
	if (ch > 0x20 && ch < 0x7f)
		snprintf(out, n, "'%c'", ch);
	else
		snprintf(out, n, "byte 0x%02x", ch);
	return out;
}

static int unexpected(const parser *c, size_t at, const char *wanted)
{
	char what[32];

	return fail_at(at, "expected %s, found %s", wanted, describe(what, sizeof(what), c, at));
}

static void skip_ws(parser *c)
{
	while (c->off < c->len) {
		uint8_t ch = c->p[c->off];

		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			break;
		c->off++;
	}
}

static bool is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

/* Makes room for one more element on a scratch stack. */
static int grow(void **v, size_t *cap, size_t len, size_t elem)
{
	size_t ncap;
	void *p;

	if (len < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / elem)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if (!(p = cairn_realloc(*v, ncap * elem)))
		return CAIRN_ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

/* ---------------------------------------------------------------- strings */

static int hex4(const parser *c, size_t at, uint32_t *out)
{
	uint32_t v = 0;

	for (size_t i = at; i < at + 4; i++) {
		uint8_t ch = i < c->len ? c->p[i] : 0;

		v <<= 4;
		if (is_digit(ch))
			v |= (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (uint32_t)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (uint32_t)(ch - 'A' + 10);
		else
			return fail_at(i, "\\u needs four hex digits");
	}
	*out = v;
	return 0;
}

static size_t put_utf8(uint8_t *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (uint8_t)(0xc0 | cp >> 6);
		d[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (uint8_t)(0xe0 | cp >> 12);
		d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (uint8_t)(0xf0 | cp >> 18);
	d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* Checks a run of unescaped bytes [a, b): no control characters (JSON
 * requires them escaped) and valid UTF-8. */
static int check_run(const parser *c, size_t a, size_t b)
{
	size_t ok;

	for (size_t i = a; i < b; i++)
		if (c->p[i] < 0x20)
			return fail_at(i, "control character 0x%02x in a string must be escaped", c->p[i]);
	ok = cairn_ipld__utf8_valid_prefix(c->p + a, b - a);
	if (ok != b - a)
		return fail_at(a + ok, "string is not valid UTF-8");
	return 0;
}

/* Decodes one escape at c->off (the backslash) into d; advances past it. */
static int unescape(parser *c, uint8_t *d, size_t *n)
{
	size_t at = c->off;
	uint32_t cp = 0, lo = 0;
	int rc;

	switch (c->p[at + 1]) {
	case '"': *d = '"'; break;
	case '\\': *d = '\\'; break;
	case '/': *d = '/'; break;
	case 'b': *d = '\b'; break;
	case 'f': *d = '\f'; break;
	case 'n': *d = '\n'; break;
	case 'r': *d = '\r'; break;
	case 't': *d = '\t'; break;
	case 'u':
		if ((rc = hex4(c, at + 2, &cp)))
			return rc;
		c->off = at + 6;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return fail_at(at, "lone low surrogate \\u%04x", cp);
		if (cp >= 0xd800 && cp <= 0xdbff) {
			/* UTF-8 cannot hold half a pair: it must be followed
			 * by its low half, and the two make one code point. */
			if (c->len - c->off < 6 || c->p[c->off] != '\\' || c->p[c->off + 1] != 'u')
				return fail_at(at, "lone high surrogate \\u%04x", cp);
			if ((rc = hex4(c, c->off + 2, &lo)))
				return rc;
			if (lo < 0xdc00 || lo > 0xdfff)
				return fail_at(at, "lone high surrogate \\u%04x", cp);
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			c->off += 6;
		}
		*n = put_utf8(d, cp);
		return 0;
	default: {
		char what[32];

		return fail_at(at, "bad escape \\%s", describe(what, sizeof(what), c, at + 1));
	}
	}
	c->off = at + 2;
	*n = 1;
	return 0;
}

/* Parses the string at c->off (its opening quote). Without escapes the
 * result points into the input; with them it is decoded into the arena. */
static int parse_string(parser *c, const uint8_t **out, size_t *out_len)
{
	size_t start = c->off, body = start + 1, end, i;
	uint8_t *d;
	size_t dn = 0;
	int rc;

	/* Find the closing quote first, so an escaped copy can be sized. */
	for (i = body; i < c->len; i++) {
		if (c->p[i] == '"')
			break;
		if (c->p[i] == '\\')
			i++;
	}
	if (i >= c->len)
		return fail_at(start, "string never ends");
	end = i;
	if (!memchr(c->p + body, '\\', end - body)) {
		if ((rc = check_run(c, body, end)))
			return rc;
		*out = c->p + body;
		*out_len = end - body;
		c->off = end + 1;
		return 0;
	}
	/* An escape is never shorter than what it stands for: \uXXXX is six
	 * bytes for at most three, a surrogate pair twelve for four. */
	if (!(d = cairn_arena_alloc(c->arena, end - body)))
		return CAIRN_ENOMEM;
	c->off = body;
	while (c->off < end) {
		size_t run = c->off, n = 0;

		while (c->off < end && c->p[c->off] != '\\')
			c->off++;
		if ((rc = check_run(c, run, c->off)))
			return rc;
		memcpy(d + dn, c->p + run, c->off - run);
		dn += c->off - run;
		if (c->off == end)
			break;
		/* The backslash is before `end`, so its next byte exists. */
		if ((rc = unescape(c, d + dn, &n)))
			return rc;
		dn += n;
		if (c->off > end)
			return fail_at(end, "string never ends");
	}
	*out = d;
	*out_len = dn;
	c->off = end + 1;
	return 0;
}

/* ---------------------------------------------------------------- numbers */

static int make_int(parser *c, size_t start, bool neg, size_t a, size_t b, cairn_node *out)
{
	uint64_t v = 0;
	bool over = false;

	for (size_t i = a; i < b; i++) {
		unsigned dgt = (unsigned)(c->p[i] - '0');

		if (v > (UINT64_MAX - dgt) / 10)
			over = true;
		v = v * 10 + dgt;
	}
	out->kind = CAIRN_KIND_INT;
	if (over) {
		/* -2^64 is the one value past 2^64-1 that the model holds. */
		static const char min[] = "18446744073709551616";

		if (neg && b - a == sizeof(min) - 1 && !memcmp(c->p + a, min, b - a)) {
			out->v.i.mag = UINT64_MAX;
			out->v.i.neg = true;
			return 0;
		}
		return fail_at(start, "integer out of range (-2^64 .. 2^64-1)");
	}
	/* "-0" is zero: the model has no negative zero for integers. */
	out->v.i.neg = neg && v;
	out->v.i.mag = out->v.i.neg ? v - 1 : v;
	return 0;
}

/* Reads the float through strtod in a form with no decimal point (the digits
 * and an adjusted exponent), so the C library's locale cannot change it. */
static int make_float(parser *c, size_t start, bool neg, size_t ia, size_t ib,
		      size_t fa, size_t fb, bool eneg, size_t ea, size_t eb, cairn_node *out)
{
	/* Past this the value is 0 or infinite whatever the digits: there are
	 * fewer digits than the input has bytes. */
	long long limit = (c->len < ((size_t)1 << 40) ? (long long)c->len : 1LL << 40) + 1000, e = 0;
	char *end;
	double d;

	for (size_t i = ea; i < eb && e <= limit; i++)
		e = e * 10 + (c->p[i] - '0');
	if (e > limit)
		e = limit;
	if (eneg)
		e = -e;
	e -= (long long)(fb - fa);
	cairn_buf_clear(&c->scratch);
	if (neg)
		cairn_buf_putc(&c->scratch, '-');
	cairn_buf_append(&c->scratch, c->p + ia, ib - ia);
	cairn_buf_append(&c->scratch, c->p + fa, fb - fa);
	if (cairn_buf_printf(&c->scratch, "e%lld", e))
		return c->scratch.err;
	d = strtod((const char *)c->scratch.data, &end);
	if (*end != '\0')
		return fail_at(start, "malformed number");
	if (isinf(d))
		return fail_at(start, "number out of range for a 64-bit float");
	out->kind = CAIRN_KIND_FLOAT;
	out->v.f = d;
	return 0;
}

/* The JSON number grammar, strictly: no '+', no leading zeros, digits on
 * both sides of a '.', digits after an exponent mark. */
static int parse_number(parser *c, cairn_node *out)
{
	size_t start = c->off, i = c->off, ia, ib, fa = 0, fb = 0, ea = 0, eb = 0;
	bool neg = false, eneg = false, is_float = false;

	if (c->p[i] == '-') {
		neg = true;
		i++;
	}
	ia = i;
	if (i >= c->len || !is_digit(c->p[i]))
		return unexpected(c, i, "a digit");
	if (c->p[i] == '0') {
		i++;
		if (i < c->len && is_digit(c->p[i]))
			return fail_at(ia, "numbers must not have leading zeros");
	} else {
		while (i < c->len && is_digit(c->p[i]))
			i++;
	}
	ib = i;
	if (i < c->len && c->p[i] == '.') {
		i++;
		if (i >= c->len || !is_digit(c->p[i]))
			return unexpected(c, i, "a digit after the decimal point");
		fa = i;
		while (i < c->len && is_digit(c->p[i]))
			i++;
		fb = i;
		is_float = true;
	}
	if (i < c->len && (c->p[i] == 'e' || c->p[i] == 'E')) {
		i++;
		if (i < c->len && (c->p[i] == '+' || c->p[i] == '-'))
			eneg = c->p[i++] == '-';
		if (i >= c->len || !is_digit(c->p[i]))
			return unexpected(c, i, "a digit in the exponent");
		ea = i;
		while (i < c->len && is_digit(c->p[i]))
			i++;
		eb = i;
		is_float = true;
	}
	c->off = i;
	if (!is_float)
		return make_int(c, start, neg, ia, ib, out);
	return make_float(c, start, neg, ia, ib, fa, fb, eneg, ea, eb, out);
}

/* ------------------------------------------------------------- containers */

static int parse_value(parser *c, cairn_node *out);

static int parse_list(parser *c, cairn_node *out)
{
	size_t start = c->off, base = c->nodes_len, n;
	cairn_node *items = NULL;
	int rc;

	c->off++;
	skip_ws(c);
	if (c->off < c->len && c->p[c->off] == ']') {
		c->off++;
	} else {
		for (;;) {
			cairn_node item;

			if ((rc = parse_value(c, &item)))
				return rc;
			if ((rc = grow((void **)&c->nodes, &c->nodes_cap, c->nodes_len, sizeof(*c->nodes))))
				return rc;
			c->nodes[c->nodes_len++] = item;
			skip_ws(c);
			if (c->off < c->len && c->p[c->off] == ',') {
				c->off++;
				continue;
			}
			if (c->off < c->len && c->p[c->off] == ']') {
				c->off++;
				break;
			}
			if (c->off >= c->len)
				return fail_at(start, "list never ends");
			return unexpected(c, c->off, "',' or ']'");
		}
	}
	n = c->nodes_len - base;
	if (n && !(items = cairn_arena_alloc(c->arena, n * sizeof(*items))))
		return CAIRN_ENOMEM;
	if (n)
		memcpy(items, c->nodes + base, n * sizeof(*items));
	c->nodes_len = base;
	out->kind = CAIRN_KIND_LIST;
	out->v.list.items = items;
	out->v.list.len = n;
	return 0;
}

static int pending_cmp(const pending *a, const pending *b)
{
	return cairn_ipld__key_cmp_bytes(a->e.key, a->e.key_len, b->e.key, b->e.key_len);
}

/* Stable, so of two equal keys the one written first stays first. */
static void sort_pending(pending *v, pending *tmp, size_t n)
{
	size_t mid = n / 2, i = 0, j = mid, k = 0;

	if (n < 2)
		return;
	sort_pending(v, tmp, mid);
	sort_pending(v + mid, tmp, n - mid);
	while (i < mid && j < n)
		tmp[k++] = pending_cmp(&v[j], &v[i]) < 0 ? v[j++] : v[i++];
	while (i < mid)
		tmp[k++] = v[i++];
	while (j < n)
		tmp[k++] = v[j++];
	memcpy(v, tmp, n * sizeof(*v));
}

static bool key_is(const cairn_map_entry *e, const char *s)
{
	size_t n = strlen(s);

	return e->key_len == n && !memcmp(e->key, s, n);
}

/* {"/": ...} as the only entry: a link or bytes, or an error. */
static int parse_slash(parser *c, size_t start, const pending *only, cairn_node *out)
{
	const cairn_node *v = &only->e.value;
	char msg[512];
	int rc;

	if (v->kind == CAIRN_KIND_STRING) {
		cairn_cid cid, *heap;

		if ((rc = cairn_cid_parse(&cid, (const char *)v->v.bytes.ptr, v->v.bytes.len))) {
			if (rc == CAIRN_ENOMEM)
				return rc;
			snprintf(msg, sizeof(msg), "%s", cairn_error_last());
			return fail_at(only->value_off, "link: %s", msg);
		}
		if (!(heap = cairn_arena_alloc(c->arena, sizeof(*heap))))
			return CAIRN_ENOMEM;
		cairn_cid_copy(heap, &cid);
		out->kind = CAIRN_KIND_LINK;
		out->v.link = heap;
		return 0;
	}
	if (v->kind == CAIRN_KIND_MAP && v->v.map.len == 1 && key_is(&v->v.map.entries[0], "bytes") &&
	    v->v.map.entries[0].value.kind == CAIRN_KIND_STRING) {
		const cairn_node *s = &v->v.map.entries[0].value;
		size_t n = s->v.bytes.len;
		uint8_t *d = NULL;

		/* Both references also read the padded form; accept it, as
		 * they do, when the padding is exactly what is missing. */
		if (n % 4 == 0 && n && s->v.bytes.ptr[n - 1] == '=')
			n -= 1 + (s->v.bytes.ptr[n - 2] == '=');
		cairn_buf_clear(&c->scratch);
		if ((rc = cairn_base_decode(&c->scratch, CAIRN_BASE64, (const char *)s->v.bytes.ptr, n))) {
			if (rc == CAIRN_ENOMEM)
				return rc;
			snprintf(msg, sizeof(msg), "%s", cairn_error_last());
			return fail_at(only->value_off, "bytes: %s", msg);
		}
		if (c->scratch.len && !(d = cairn_arena_alloc(c->arena, c->scratch.len)))
			return CAIRN_ENOMEM;
		if (c->scratch.len)
			memcpy(d, c->scratch.data, c->scratch.len);
		out->kind = CAIRN_KIND_BYTES;
		out->v.bytes.ptr = d;
		out->v.bytes.len = c->scratch.len;
		return 0;
	}
	return fail_at(start, "a map whose only key is \"/\" must be a link {\"/\":\"<cid>\"} "
		       "or bytes {\"/\":{\"bytes\":\"<base64>\"}}");
}

static int parse_map(parser *c, cairn_node *out)
{
	size_t start = c->off, base = c->ents_len, n;
	cairn_map_entry *entries = NULL;
	bool sorted = true;
	pending *v;
	int rc;

	c->off++;
	skip_ws(c);
	if (c->off < c->len && c->p[c->off] == '}') {
		c->off++;
	} else {
		for (;;) {
			pending ent;

			if (c->off >= c->len)
				return fail_at(start, "map never ends");
			if (c->p[c->off] != '"')
				return unexpected(c, c->off, "a string as map key");
			ent.key_off = c->off;
			if ((rc = parse_string(c, &ent.e.key, &ent.e.key_len)))
				return rc;
			skip_ws(c);
			if (c->off >= c->len || c->p[c->off] != ':')
				return unexpected(c, c->off, "':' after a map key");
			c->off++;
			skip_ws(c);
			ent.value_off = c->off;
			if ((rc = parse_value(c, &ent.e.value)))
				return rc;
			if ((rc = grow((void **)&c->ents, &c->ents_cap, c->ents_len, sizeof(*c->ents))))
				return rc;
			if (c->ents_len > base && pending_cmp(&c->ents[c->ents_len - 1], &ent) >= 0)
				sorted = false;
			c->ents[c->ents_len++] = ent;
			skip_ws(c);
			if (c->off < c->len && c->p[c->off] == ',') {
				c->off++;
				skip_ws(c);
				continue;
			}
			if (c->off < c->len && c->p[c->off] == '}') {
				c->off++;
				break;
			}
			if (c->off >= c->len)
				return fail_at(start, "map never ends");
			return unexpected(c, c->off, "',' or '}'");
		}
	}
	n = c->ents_len - base;
	v = n ? c->ents + base : NULL;
	if (!sorted) {
		pending *tmp = cairn_malloc(n * sizeof(*tmp));

		if (!tmp)
			return CAIRN_ENOMEM;
		sort_pending(v, tmp, n);
		cairn_free(tmp);
	}
	for (size_t i = 1; i < n; i++)
		if (!pending_cmp(&v[i - 1], &v[i]))
			return fail_at(v[i].key_off, "map key \"%.*s\" appears twice",
				       (int)(v[i].e.key_len > 64 ? 64 : v[i].e.key_len),
				       (const char *)v[i].e.key);
	if (n == 1 && key_is(&v[0].e, "/")) {
		rc = parse_slash(c, start, &v[0], out);
		c->ents_len = base;
		return rc;
	}
	if (n && !(entries = cairn_arena_alloc(c->arena, n * sizeof(*entries))))
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < n; i++)
		entries[i] = v[i].e;
	c->ents_len = base;
	out->kind = CAIRN_KIND_MAP;
	out->v.map.entries = entries;
	out->v.map.len = n;
	return 0;
}

static int literal(parser *c, const char *word, cairn_node *out, cairn_kind kind, bool b)
{
	size_t n = strlen(word);

	if (c->len - c->off < n || memcmp(c->p + c->off, word, n))
		return fail_at(c->off, "unknown literal (expected %s)", word);
	c->off += n;
	out->kind = kind;
	out->v.b = b;
	return 0;
}

static int parse_value(parser *c, cairn_node *out)
{
	size_t start;
	int rc;

	skip_ws(c);
	start = c->off;
	if (c->off >= c->len)
		return fail_at(c->off, "unexpected end of input, expected a value");
	switch (c->p[c->off]) {
	case '{':
	case '[':
		if (++c->depth > CAIRN_IPLD_MAX_DEPTH)
			return cairn_error_set(CAIRN_ETOOBIG, "dag-json: at byte %zu: nested deeper than %d",
					       start, CAIRN_IPLD_MAX_DEPTH);
		rc = c->p[c->off] == '{' ? parse_map(c, out) : parse_list(c, out);
		c->depth--;
		return rc;
	case '"':
		out->kind = CAIRN_KIND_STRING;
		return parse_string(c, &out->v.bytes.ptr, &out->v.bytes.len);
	case 't':
		return literal(c, "true", out, CAIRN_KIND_BOOL, true);
	case 'f':
		return literal(c, "false", out, CAIRN_KIND_BOOL, false);
	case 'n':
		return literal(c, "null", out, CAIRN_KIND_NULL, false);
	default:
		if (c->p[c->off] == '-' || is_digit(c->p[c->off]))
			return parse_number(c, out);
		return unexpected(c, c->off, "a value");
	}
}

int cairn_dagjson_decode(cairn_node **out, cairn_arena *arena, const uint8_t *p, size_t len)
{
	parser c = {.p = p, .len = len, .arena = arena};
	cairn_node *root;
	int rc;

	*out = NULL;
	if (!(root = cairn_arena_alloc(arena, sizeof(*root))))
		return CAIRN_ENOMEM;
	rc = parse_value(&c, root);
	if (!rc) {
		skip_ws(&c);
		if (c.off != c.len)
			rc = fail_at(c.off, "%zu bytes after the end of the value", c.len - c.off);
	}
	cairn_free(c.nodes);
	cairn_free(c.ents);
	cairn_buf_free(&c.scratch);
	if (!rc)
		*out = root;
	return rc;
}

/* ---------------------------------------------------------------- encoder */

static void put_string(cairn_buf *b, const uint8_t *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	cairn_buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = s[i];
		char esc[7] = "\\u00";
		size_t en = 2;

		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		cairn_buf_append(b, s + run, i - run);
		run = i + 1;
		switch (ch) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			en = 6;
		}
		cairn_buf_append(b, esc, en);
	}
	cairn_buf_append(b, s + run, n - run);
	cairn_buf_putc(b, '"');
}

static int put_text(cairn_buf *b, const uint8_t *s, size_t n, const char *what)
{
	if (cairn_ipld__utf8_valid_prefix(s, n) != n)
		return cairn_error_set(CAIRN_EINVAL, "dag-json: %s is not valid UTF-8", what);
	put_string(b, s, n);
	return 0;
}

static void put_int(cairn_buf *b, cairn_int v)
{
	if (!v.neg)
		cairn_buf_printf(b, "%llu", (unsigned long long)v.mag);
	else if (v.mag == UINT64_MAX)
		cairn_buf_puts(b, "-18446744073709551616");
	else
		cairn_buf_printf(b, "-%llu", (unsigned long long)v.mag + 1);
}

/* Does digits x 10^(exp - ndigits + 1) read back as `a`? */
static bool reads_back(const char *dig, int exp, double a)
{
	char s[48];

	snprintf(s, sizeof(s), "%se%d", dig, exp - (int)strlen(dig) + 1);
	return strtod(s, NULL) == a;
}

/* The fewest significant digits that read back as a (finite, > 0), and
 * among those the closest: what ECMAScript's Number::toString asks for.
 * printf rounds correctly, so the first precision whose rounding reads
 * back is the shortest. Returns the decimal exponent of the first digit. */
static int shortest(char dig[20], double a)
{
	for (int p = 1; p <= 17; p++) {
		char s[40], *e;
		int exp, i, k = 0;

		snprintf(s, sizeof(s), "%.*e", p - 1, a);
		/* Take the digits and skip whatever the locale uses as a
		 * decimal point, so the locale cannot change the output. */
		for (e = s; *e && *e != 'e'; e++)
			if (*e >= '0' && *e <= '9')
				dig[k++] = *e;
		dig[k] = '\0';
		exp = atoi(e + 1);
		if (reads_back(dig, exp, a))
			return exp;
		/* At a power of two the doubles below are twice as dense as
		 * those above, so the nearest p digits can fall short while
		 * the next p digits up still read back. */
		i = k - 1;
		while (i >= 0 && dig[i] == '9')
			dig[i--] = '0';
		if (i < 0) {
			dig[0] = '1';
			exp++;
		} else {
			dig[i]++;
		}
		if (reads_back(dig, exp, a))
			return exp;
	}
	/* Unreachable: 17 digits always read back. */
	snprintf(dig, 20, "0");
	return 0;
}

static void put_float(cairn_buf *b, double f)
{
	char dig[20];
	int exp, k, n;

	if (f == 0) {
		/* JavaScript prints -0 as "0"; keep the sign, which a float
		 * in the data model has, rather than lose it. */
		cairn_buf_puts(b, signbit(f) ? "-0.0" : "0.0");
		return;
	}
	if (f < 0)
		cairn_buf_putc(b, '-');
	exp = shortest(dig, fabs(f));
	k = (int)strlen(dig);
	while (k > 1 && dig[k - 1] == '0')
		dig[--k] = '\0';
	n = exp + 1; /* where the decimal point goes, counted from the first digit */
	if (k <= n && n <= 21) {
		cairn_buf_append(b, dig, (size_t)k);
		for (int i = k; i < n; i++)
			cairn_buf_putc(b, '0');
		cairn_buf_puts(b, ".0");
	} else if (0 < n && n <= 21) {
		cairn_buf_append(b, dig, (size_t)n);
		cairn_buf_putc(b, '.');
		cairn_buf_append(b, dig + n, (size_t)(k - n));
	} else if (-6 < n && n <= 0) {
		cairn_buf_puts(b, "0.");
		for (int i = n; i < 0; i++)
			cairn_buf_putc(b, '0');
		cairn_buf_append(b, dig, (size_t)k);
	} else {
		cairn_buf_putc(b, (uint8_t)dig[0]);
		if (k > 1) {
			cairn_buf_putc(b, '.');
			cairn_buf_append(b, dig + 1, (size_t)(k - 1));
		}
		cairn_buf_printf(b, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
	}
}

/* Pretty output follows JSON.stringify(value, null, 2): a newline and the
 * indent before each entry and before the closing bracket of a non-empty
 * container. `indent` < 0 means canonical output. */
static void newline(cairn_buf *b, int indent, unsigned depth)
{
	if (indent < 0)
		return;
	cairn_buf_putc(b, '\n');
	for (unsigned i = 0; i < depth * (unsigned)indent; i++)
		cairn_buf_putc(b, ' ');
}

static void open_slash(cairn_buf *b, int indent, unsigned depth)
{
	cairn_buf_putc(b, '{');
	newline(b, indent, depth + 1);
	cairn_buf_puts(b, indent < 0 ? "\"/\":" : "\"/\": ");
}

static void close_map(cairn_buf *b, int indent, unsigned depth)
{
	newline(b, indent, depth);
	cairn_buf_putc(b, '}');
}

static int encode(cairn_buf *b, const cairn_node *n, unsigned depth, int indent)
{
	unsigned levels = 0;
	int rc;

	/* `depth` counts the JSON objects and arrays around n, as the decoder
	 * does, so that what one writes the other reads. A link is an object
	 * in JSON and bytes are two. */
	if (n->kind == CAIRN_KIND_LIST || n->kind == CAIRN_KIND_MAP || n->kind == CAIRN_KIND_LINK)
		levels = 1;
	else if (n->kind == CAIRN_KIND_BYTES)
		levels = 2;
	if (depth + levels > CAIRN_IPLD_MAX_DEPTH)
		return cairn_error_set(CAIRN_ETOOBIG, "dag-json: value nested deeper than %d",
				       CAIRN_IPLD_MAX_DEPTH);
	switch (n->kind) {
	case CAIRN_KIND_NULL: cairn_buf_puts(b, "null"); break;
	case CAIRN_KIND_BOOL: cairn_buf_puts(b, n->v.b ? "true" : "false"); break;
	case CAIRN_KIND_INT: put_int(b, n->v.i); break;
	case CAIRN_KIND_FLOAT:
		if (isnan(n->v.f) || isinf(n->v.f))
			return cairn_error_set(CAIRN_EINVAL, "dag-json: NaN and infinities cannot be encoded");
		put_float(b, n->v.f);
		break;
	case CAIRN_KIND_STRING:
		if ((rc = put_text(b, n->v.bytes.ptr, n->v.bytes.len, "string")))
			return rc;
		break;
	case CAIRN_KIND_BYTES:
		open_slash(b, indent, depth);
		cairn_buf_putc(b, '{');
		newline(b, indent, depth + 2);
		cairn_buf_puts(b, indent < 0 ? "\"bytes\":\"" : "\"bytes\": \"");
		cairn_base_encode(b, CAIRN_BASE64, n->v.bytes.ptr, n->v.bytes.len);
		cairn_buf_putc(b, '"');
		close_map(b, indent, depth + 1);
		close_map(b, indent, depth);
		break;
	case CAIRN_KIND_LINK: {
		char s[CAIRN_CID_MAX_STRING];

		if ((rc = cairn_cid_to_string(s, n->v.link)) < 0)
			return rc;
		open_slash(b, indent, depth);
		cairn_buf_putc(b, '"');
		cairn_buf_append(b, s, (size_t)rc);
		cairn_buf_putc(b, '"');
		close_map(b, indent, depth);
		break;
	}
	case CAIRN_KIND_LIST:
		cairn_buf_putc(b, '[');
		for (size_t i = 0; i < n->v.list.len; i++) {
			if (i)
				cairn_buf_putc(b, ',');
			newline(b, indent, depth + 1);
			if ((rc = encode(b, &n->v.list.items[i], depth + 1, indent)))
				return rc;
		}
		if (n->v.list.len)
			newline(b, indent, depth);
		cairn_buf_putc(b, ']');
		break;
	case CAIRN_KIND_MAP: {
		const cairn_map_entry **sorted;
		size_t len = n->v.map.len;

		if (len == 1 && key_is(&n->v.map.entries[0], "/"))
			return cairn_error_set(CAIRN_EINVAL, "dag-json: a map whose only key is \"/\" "
					       "cannot be encoded (it would read back as a link or bytes)");
		sorted = cairn_malloc((len ? len : 1) * sizeof(*sorted));
		if (!sorted)
			return CAIRN_ENOMEM;
		if ((rc = cairn_ipld__sort_entries(sorted, n, false))) {
			cairn_free(sorted);
			return cairn_error_prefix("dag-json: ");
		}
		cairn_buf_putc(b, '{');
		rc = 0;
		for (size_t i = 0; i < len; i++) {
			if (i)
				cairn_buf_putc(b, ',');
			newline(b, indent, depth + 1);
			if ((rc = put_text(b, sorted[i]->key, sorted[i]->key_len, "map key")))
				break;
			cairn_buf_puts(b, indent < 0 ? ":" : ": ");
			if ((rc = encode(b, &sorted[i]->value, depth + 1, indent)))
				break;
		}
		cairn_free(sorted);
		if (rc)
			return rc;
		if (len)
			newline(b, indent, depth);
		cairn_buf_putc(b, '}');
		break;
	}
	default:
		return cairn_error_set(CAIRN_EINVAL, "dag-json: unknown node kind %d", (int)n->kind);
	}
	return b->err;
}

/* On failure `out` is cut back to what it held, so no half value is left. */
static int encode_top(cairn_buf *out, const cairn_node *node, int indent)
{
	size_t start = out->len;
	int rc = encode(out, node, 0, indent);

	if (!rc && indent >= 0)
		rc = cairn_buf_putc(out, '\n') ? out->err : 0;
	if (rc && out->data && !out->err) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}

int cairn_dagjson_encode(cairn_buf *out, const cairn_node *node)
{
	return encode_top(out, node, -1);
}

int cairn_dagjson_encode_pretty(cairn_buf *out, const cairn_node *node)
{
	return encode_top(out, node, 2);
}
