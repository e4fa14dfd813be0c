/* dagcbor.c: strict DAG-CBOR. One parser serves two uses: building a tree in
 * an arena, and scanning a block for its links without allocating.
 *
 * What strict means here (the DAG-CBOR spec, go-ipld-prime and @ipld/dag-cbor):
 *   - integers, lengths and tags in their shortest form; no indefinite lengths
 *   - map keys are text strings, in length-first then bytewise order, unique
 *   - tag 42 only, wrapping a byte string of 0x00 followed by a binary CID
 *   - floats only as 64-bit, never NaN or an infinity
 *   - simple values false, true and null only (no undefined)
 *   - exactly one item fills the block
 * Text strings are not checked for UTF-8: Filecoin's early state holds Go
 * strings of raw bytes (HAMT keys), which go-ipld-prime and cbor-gen read and
 * write (ipld/specs#363). DAG-JSON, which cannot carry them, refuses them.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ipld_i.h"

typedef struct {
	const uint8_t *p;
	size_t len;
	size_t off;
	unsigned depth;
	cairn_arena *arena;   /* NULL when only scanning */
	cairn_link_fn link_fn;
	cairn_link_bytes_fn link_bytes_fn; /* scanning for the CIDs' bytes */
	void *payload;
} cursor;


/* Every decode error names the codec and the byte offset. */
#define fail_at(at, ...) cairn_ipld__corrupt("dag-cbor", at, __VA_ARGS__)

/* Reads an item head: major type and its argument, checking minimal form. */
static int read_head(cursor *c, unsigned *major, uint64_t *arg, unsigned *info_out)
{
	size_t start = c->off, n;
	unsigned info;
	uint64_t v = 0;

	if (c->off >= c->len)
		return fail_at(start, "unexpected end of data");
	*major = c->p[c->off] >> 5;
	info = c->p[c->off] & 0x1f;
	c->off++;
	*info_out = info;
	if (info < 24) {
		*arg = info;
		return 0;
	}
	if (info > 27)
		return fail_at(start, info == 31 ? "indefinite-length items are not allowed"
						  : "reserved additional information %u", info);
	n = (size_t)1 << (info - 24);
	if (c->len - c->off < n)
		return fail_at(start, "unexpected end of data inside an item head");
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | c->p[c->off + i];
	c->off += n;
	*arg = v;
	/* Floats (major 7, info 25..27) carry bits, not a number: no minimality. */
	if (*major == 7)
		return 0;
	if ((info == 24 && v < 24) || (info == 25 && v <= 0xff) ||
	    (info == 26 && v <= 0xffff) || (info == 27 && v <= 0xffffffffull))
		return fail_at(start, "%s not in its shortest form",
			    *major <= 1 ? "integer" : *major == 6 ? "tag" : "length");
	return 0;
}

static void *alloc(cursor *c, size_t n)
{
	return cairn_arena_alloc(c->arena, n);
}

/* The bytes of a string of `len`, checked against what remains. */
static int take(cursor *c, size_t start, uint64_t len, const uint8_t **out)
{
	if (len > c->len - c->off)
		return fail_at(start, "length %llu runs past the end of the block (%zu bytes remain)",
			    (unsigned long long)len, c->len - c->off);
	*out = c->p + c->off;
	c->off += (size_t)len;
	return 0;
}

static int parse_item(cursor *c, cairn_node *out);

static int parse_link(cursor *c, size_t start, cairn_node *out)
{
	const uint8_t *bytes = NULL;
	unsigned major, info;
	uint64_t len;
	cairn_cid cid, *heap;
	int rc;

	if ((rc = read_head(c, &major, &len, &info)))
		return rc;
	if (major != 2)
		return fail_at(start, "tag 42 must wrap a byte string");
	if ((rc = take(c, start, len, &bytes)))
		return rc;
	if (len < 1 || bytes[0] != 0x00)
		return fail_at(start, "a link must start with the identity multibase prefix 0x00");
	if (c->link_bytes_fn) {
		rc = c->link_bytes_fn(bytes + 1, (size_t)len - 1, c->payload);
		return rc < 0 && rc != CAIRN_ENOMEM
			       ? cairn_error_prefix("dag-cbor: at byte %zu: link: ", start)
			       : rc;
	}
	if (cairn_cid_decode(&cid, NULL, bytes + 1, (size_t)len - 1))
		return cairn_error_prefix("dag-cbor: at byte %zu: link: ", start);
	if (c->link_fn && (rc = c->link_fn(&cid, c->payload)))
		return rc;
	if (!out)
		return 0;
	heap = alloc(c, sizeof(*heap));
	if (!heap)
		return CAIRN_ENOMEM;
	cairn_cid_copy(heap, &cid);
	out->kind = CAIRN_KIND_LINK;
	out->v.link = heap;
	return 0;
}

static int parse_map(cursor *c, size_t start, uint64_t count, cairn_node *out)
{
	cairn_map_entry *entries = NULL;
	const uint8_t *prev = NULL;
	size_t prev_len = 0;
	int rc;

	/* Each entry needs at least two bytes: bound before allocating. */
	if (count > (c->len - c->off) / 2)
		return fail_at(start, "map of %llu entries cannot fit in the %zu bytes that remain",
			    (unsigned long long)count, c->len - c->off);
	if (out && count && !(entries = alloc(c, (size_t)count * sizeof(*entries))))
		return CAIRN_ENOMEM;
	for (uint64_t i = 0; i < count; i++) {
		size_t kstart = c->off;
		const uint8_t *key = NULL;
		unsigned major = 0, info = 0;
		uint64_t klen = 0;

		if ((rc = read_head(c, &major, &klen, &info)))
			return rc;
		if (major != 3)
			return fail_at(kstart, "map keys must be strings");
		if ((rc = take(c, kstart, klen, &key)))
			return rc;
		if (prev) {
			int cmp = cairn_ipld__key_cmp_cbor(prev, prev_len, key, (size_t)klen);
			if (cmp == 0)
				return fail_at(kstart, "map key \"%.*s\" appears twice",
					    (int)(klen > 64 ? 64 : klen), (const char *)key);
			if (cmp > 0)
				return fail_at(kstart, "map key \"%.*s\" is out of canonical order",
					    (int)(klen > 64 ? 64 : klen), (const char *)key);
		}
		prev = key;
		prev_len = (size_t)klen;
		if (out) {
			entries[i].key = key;
			entries[i].key_len = (size_t)klen;
		}
		if ((rc = parse_item(c, out ? &entries[i].value : NULL)))
			return rc;
	}
	if (out) {
		out->kind = CAIRN_KIND_MAP;
		out->v.map.entries = entries;
		out->v.map.len = (size_t)count;
	}
	return 0;
}

static int parse_item(cursor *c, cairn_node *out)
{
	size_t start = c->off;
	unsigned major = 0, info = 0;
	uint64_t arg = 0;
	int rc;

	if ((rc = read_head(c, &major, &arg, &info)))
		return rc;
	switch (major) {
	case 0:
	case 1:
		if (out) {
			out->kind = CAIRN_KIND_INT;
			out->v.i.mag = arg;
			out->v.i.neg = major == 1;
		}
		return 0;
	case 2:
	case 3: {
		const uint8_t *bytes = NULL;

		if ((rc = take(c, start, arg, &bytes)))
			return rc;
		if (out) {
			out->kind = major == 2 ? CAIRN_KIND_BYTES : CAIRN_KIND_STRING;
			out->v.bytes.ptr = bytes;
			out->v.bytes.len = (size_t)arg;
		}
		return 0;
	}
	case 4: {
		cairn_node *items = NULL;

		if (arg > c->len - c->off)
			return fail_at(start, "list of %llu items cannot fit in the %zu bytes that remain",
				    (unsigned long long)arg, c->len - c->off);
		if (++c->depth > CAIRN_IPLD_MAX_DEPTH)
			return cairn_error_set(CAIRN_ETOOBIG, "dag-cbor: at byte %zu: nested deeper than %d",
					       start, CAIRN_IPLD_MAX_DEPTH);
		if (out && arg && !(items = alloc(c, (size_t)arg * sizeof(*items))))
			return CAIRN_ENOMEM;
		for (uint64_t i = 0; i < arg; i++)
			if ((rc = parse_item(c, out ? &items[i] : NULL)))
				return rc;
		c->depth--;
		if (out) {
			out->kind = CAIRN_KIND_LIST;
			out->v.list.items = items;
			out->v.list.len = (size_t)arg;
		}
		return 0;
	}
	case 5:
		if (++c->depth > CAIRN_IPLD_MAX_DEPTH)
			return cairn_error_set(CAIRN_ETOOBIG, "dag-cbor: at byte %zu: nested deeper than %d",
					       start, CAIRN_IPLD_MAX_DEPTH);
		if ((rc = parse_map(c, start, arg, out)))
			return rc;
		c->depth--;
		return 0;
	case 6:
		if (arg != 42)
			return fail_at(start, "tag %llu is not allowed (only 42, for links)",
				    (unsigned long long)arg);
		return parse_link(c, start, out);
	default: /* 7 */
		switch (info) {
		case 20:
		case 21:
			if (out) {
				out->kind = CAIRN_KIND_BOOL;
				out->v.b = info == 21;
			}
			return 0;
		case 22:
			if (out)
				out->kind = CAIRN_KIND_NULL;
			return 0;
		case 27: {
			double d;

			memcpy(&d, &arg, sizeof(d));
			if (isnan(d) || isinf(d))
				return fail_at(start, "NaN and infinities are not allowed");
			if (out) {
				out->kind = CAIRN_KIND_FLOAT;
				out->v.f = d;
			}
			return 0;
		}
		case 25:
		case 26:
			return fail_at(start, "floats must be encoded in 64 bits");
		case 23:
			return fail_at(start, "undefined is not allowed");
		default:
			return fail_at(start, "simple value %u is not allowed", info < 24 ? info : (unsigned)arg);
		}
	}
}

static int parse_block(cursor *c, cairn_node *out)
{
	int rc = parse_item(c, out);

	if (rc)
		return rc;
	if (c->off != c->len)
		return fail_at(c->off, "%zu bytes after the end of the value", c->len - c->off);
	return 0;
}

int cairn_dagcbor_decode(cairn_node **out, cairn_arena *arena, const uint8_t *p, size_t len)
{
	cursor c = {p, len, 0, 0, arena, NULL, NULL};
	cairn_node *root;
	int rc;

	*out = NULL;
	if (!(root = cairn_arena_alloc(arena, sizeof(*root))))
		return CAIRN_ENOMEM;
	if ((rc = parse_block(&c, root)))
		return rc;
	*out = root;
	return 0;
}

int cairn_ipld__dagcbor_links(const uint8_t *p, size_t len, cairn_link_fn fn, void *payload)
{
	cursor c = {p, len, 0, 0, NULL, fn, NULL, payload};

	return parse_block(&c, NULL);
}

int cairn_ipld__dagcbor_link_bytes(const uint8_t *p, size_t len, cairn_link_bytes_fn fn,
				   void *payload)
{
	cursor c = {p, len, 0, 0, NULL, NULL, fn, payload};

	return parse_block(&c, NULL);
}

/* ---------------------------------------------------------------- encoder */

static void put_head(cairn_buf *b, unsigned major, uint64_t v)
{
	uint8_t h[9];
	size_t n;

	major <<= 5;
	if (v < 24) {
		h[0] = (uint8_t)(major | v);
		n = 1;
	} else if (v <= 0xff) {
		h[0] = (uint8_t)(major | 24);
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = (uint8_t)(major | 25);
		h[1] = (uint8_t)(v >> 8);
		h[2] = (uint8_t)v;
		n = 3;
	} else if (v <= 0xffffffffull) {
		h[0] = (uint8_t)(major | 26);
		for (int i = 0; i < 4; i++)
			h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		n = 5;
	} else {
		h[0] = (uint8_t)(major | 27);
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		n = 9;
	}
	cairn_buf_append(b, h, n);
}

static int encode(cairn_buf *b, const cairn_node *n, unsigned depth)
{
	int rc;

	/* `depth` counts the lists and maps around n, as the decoder does:
	 * what one encodes the other must accept. */
	if ((n->kind == CAIRN_KIND_LIST || n->kind == CAIRN_KIND_MAP) && depth + 1 > CAIRN_IPLD_MAX_DEPTH)
		return cairn_error_set(CAIRN_ETOOBIG, "dag-cbor: value nested deeper than %d",
				       CAIRN_IPLD_MAX_DEPTH);
	switch (n->kind) {
	case CAIRN_KIND_NULL: cairn_buf_putc(b, 0xf6); break;
	case CAIRN_KIND_BOOL: cairn_buf_putc(b, n->v.b ? 0xf5 : 0xf4); break;
	case CAIRN_KIND_INT: put_head(b, n->v.i.neg ? 1 : 0, n->v.i.mag); break;
	case CAIRN_KIND_FLOAT: {
		uint64_t bits;
		uint8_t h[9];

		if (isnan(n->v.f) || isinf(n->v.f))
			return cairn_error_set(CAIRN_EINVAL, "dag-cbor: NaN and infinities cannot be encoded");
		memcpy(&bits, &n->v.f, sizeof(bits));
		h[0] = 0xfb;
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
		cairn_buf_append(b, h, 9);
		break;
	}
	case CAIRN_KIND_STRING:
	case CAIRN_KIND_BYTES:
		put_head(b, n->kind == CAIRN_KIND_STRING ? 3 : 2, n->v.bytes.len);
		cairn_buf_append(b, n->v.bytes.ptr, n->v.bytes.len);
		break;
	case CAIRN_KIND_LIST:
		put_head(b, 4, n->v.list.len);
		for (size_t i = 0; i < n->v.list.len; i++)
			if ((rc = encode(b, &n->v.list.items[i], depth + 1)))
				return rc;
		break;
	case CAIRN_KIND_MAP: {
		const cairn_map_entry **sorted;
		size_t len = n->v.map.len;

		sorted = cairn_malloc((len ? len : 1) * sizeof(*sorted));
		if (!sorted)
			return CAIRN_ENOMEM;
		if ((rc = cairn_ipld__sort_entries(sorted, n, true))) {
			cairn_free(sorted);
			return cairn_error_prefix("dag-cbor: ");
		}
		put_head(b, 5, len);
		for (size_t i = 0; i < len; i++) {
			put_head(b, 3, sorted[i]->key_len);
			cairn_buf_append(b, sorted[i]->key, sorted[i]->key_len);
			if ((rc = encode(b, &sorted[i]->value, depth + 1)))
				break;
		}
		cairn_free(sorted);
		if (rc)
			return rc;
		break;
	}
	case CAIRN_KIND_LINK: {
		const cairn_cid *cid = n->v.link;

		cairn_buf_append(b, "\xd8\x2a", 2);
		put_head(b, 2, (uint64_t)cid->len + 1);
		cairn_buf_putc(b, 0x00);
		cairn_buf_append(b, cid->bytes, cid->len);
		break;
	}
	default:
		return cairn_error_set(CAIRN_EINVAL, "dag-cbor: unknown node kind %d", (int)n->kind);
	}
	return b->err;
}

int cairn_dagcbor_encode(cairn_buf *out, const cairn_node *node)
{
	return encode(out, node, 0);
}
