/* dagpb.c: DAG-PB, the protobuf codec under UnixFS: a strict decoder to the
 * data model form, an encoder from it, and a link scanner that builds nothing.
 *
 * The wire form (the DAG-PB spec, @ipld/dag-pb, go-codec-dagpb):
 *   PBNode: Links (field 2, repeated PBLink) then Data (field 1, bytes)
 *   PBLink: Hash (1, bytes: a binary CID), Name (2, string), Tsize (3, varint)
 * What strict means here:
 *   - only those fields, with their wire types; PBLink fields in order and
 *     each at most once; Hash required and a whole CID; Name valid UTF-8
 *   - Data at most once and after every link. @ipld/dag-pb also takes a
 *     Data that comes before all the links; go-codec-dagpb and cairn refuse
 *     it, so a decoded block re-encodes to the same bytes.
 *   - varints at most 10 bytes and below 2^64. Like both peers we take
 *     varints that are not in their shortest form: protobuf allows them and
 *     the peers read such blocks, so refusing would strand data they accept.
 *     The encoder always writes the shortest form, so such a block does not
 *     re-encode to its own bytes.
 *   - Tsize keeps all 64 bits (the JavaScript peer rounds past 2^53 and
 *     refuses to encode past it; go-codec-dagpb keeps 63).
 * The encoder takes the data model form exactly as @ipld/dag-pb's validate()
 * does, with its messages, and never sorts: unsorted links are an error.
 */
#include <stdio.h>
#include <string.h>

#include "ipld_i.h"

/* A protobuf varint is at most 10 bytes: 64 bits in groups of 7. */
#define PB_VARINT_MAX 10

/* Keys of the data model form, in DAG-CBOR order. */
#define K_DATA ((const uint8_t *)"Data")
#define K_LINKS ((const uint8_t *)"Links")
#define K_HASH ((const uint8_t *)"Hash")
#define K_NAME ((const uint8_t *)"Name")
#define K_TSIZE ((const uint8_t *)"Tsize")

typedef struct {
	cairn_cid cid;
	const uint8_t *name;
	size_t name_len;
	uint64_t tsize;
	bool has_name;
	bool has_tsize;
} pb_link;

/* Called for each link once it has been read whole; non-zero stops. */
typedef int (*link_visit)(const pb_link *link, void *ctx);

typedef struct {
	const uint8_t *data;
	size_t data_len;
	bool has_data;
} pb_node;

/* Every decode error names the codec and the byte offset. */
#define fail_at(at, ...) cairn_ipld__corrupt("dag-pb", at, __VA_ARGS__)

/* Reads a varint at *off that must end before `end` (the end of the block
 * or of the link holding it). */
static int read_varint(const uint8_t *p, size_t *off, size_t end, const char *within,
		       uint64_t *out)
{
	size_t start = *off;
	uint64_t v = 0;

	for (unsigned i = 0;; i++) {
		uint8_t b;

		if (end - start <= i)
			return fail_at(start, "varint runs past the end of the %s", within);
		b = p[start + i];
		/* The tenth byte holds bit 63 alone: anything more (a value
		 * bit or a continuation) is past 64 bits. Both peers wrap or
		 * round such values silently; refusing is the only sound
		 * choice. */
		if (i == PB_VARINT_MAX - 1 && b > 1)
			return fail_at(start, "varint overflows 64 bits");
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (b < 0x80) {
			*off = start + i + 1;
			*out = v;
			return 0;
		}
	}
}

static int read_key(const uint8_t *p, size_t *off, size_t end, const char *within,
		    uint64_t *field, unsigned *wire)
{
	uint64_t key = 0; /* gcc -O3 cannot see read_varint always sets it */
	int rc;

	if ((rc = read_varint(p, off, end, within, &key)))
		return rc;
	*field = key >> 3;
	*wire = (unsigned)(key & 7);
	return 0;
}

/* A length-delimited value: its length, then that many bytes, all of them
 * before `end`. `at` is where the field began, for the message. */
static int read_bytes(const uint8_t *p, size_t *off, size_t end, const char *within,
		      size_t at, const uint8_t **body, size_t *body_len)
{
	uint64_t n = 0;
	int rc;

	if ((rc = read_varint(p, off, end, within, &n)))
		return rc;
	if (n > end - *off)
		return fail_at(at, "length %llu runs past the end of the %s (%zu bytes remain)",
			       (unsigned long long)n, within, end - *off);
	*body = p + *off;
	*body_len = (size_t)n;
	*off += (size_t)n;
	return 0;
}

static const char *const link_field_names[] = {"", "Hash", "Name", "Tsize"};

/* One PBLink, p[start..end); `at` is where its Links field began. */
static int parse_link(const uint8_t *p, size_t start, size_t end, size_t at, pb_link *l)
{
	size_t off = start;
	uint64_t last = 0; /* the last field read: they must come in order */
	bool has_hash = false;

	l->name = NULL;
	l->name_len = 0;
	l->tsize = 0;
	l->has_name = l->has_tsize = false;
	while (off < end) {
		size_t fat = off, blen = 0;
		const uint8_t *body = NULL;
		uint64_t field;
		unsigned wire, want;
		int rc;

		if ((rc = read_key(p, &off, end, "link", &field, &wire)))
			return rc;
		if (field < 1 || field > 3)
			return fail_at(fat, "unknown link field %llu (expected 1, 2 or 3)",
				       (unsigned long long)field);
		if (field == last)
			return fail_at(fat, "duplicate %s in link", link_field_names[field]);
		if (field < last)
			return fail_at(fat, "link field %s after %s (order: Hash, Name, Tsize)",
				       link_field_names[field], link_field_names[last]);
		want = field == 3 ? 0 : 2;
		if (wire != want)
			return fail_at(fat, "wrong wire type %u for link %s (expected %u)",
				       wire, link_field_names[field], want);
		last = field;
		if (field == 3) {
			if ((rc = read_varint(p, &off, end, "link", &l->tsize)))
				return rc;
			l->has_tsize = true;
			continue;
		}
		if ((rc = read_bytes(p, &off, end, "link", fat, &body, &blen)))
			return rc;
		if (field == 1) {
			if (cairn_cid_decode(&l->cid, NULL, body, blen)) {
				char why[200];

				/* Copied: fail_at replaces the message it reads. */
				snprintf(why, sizeof(why), "%s", cairn_error_last());
				return fail_at(fat, "Invalid Hash field found in link, "
					       "expected CID (%s)", why);
			}
			has_hash = true;
		} else {
			size_t valid = cairn_ipld__utf8_valid_prefix(body, blen);

			if (valid != blen)
				return fail_at((size_t)(body - p) + valid,
					       "link Name is not valid UTF-8");
			l->name = body;
			l->name_len = blen;
			l->has_name = true;
		}
	}
	if (!has_hash)
		return fail_at(at, "Invalid Hash field found in link, expected CID "
				   "(the link has no Hash)");
	return 0;
}

/* The whole block: each link goes to `visit` as soon as it is read, so the
 * scanner reports links in order without storing them. */
static int parse_node(const uint8_t *p, size_t len, link_visit visit, void *ctx, pb_node *node)
{
	size_t off = 0;
	bool has_data = false, has_links = false;

	node->data = NULL;
	node->data_len = 0;
	node->has_data = false;
	while (off < len) {
		size_t at = off, blen = 0;
		const uint8_t *body = NULL;
		uint64_t field;
		unsigned wire;
		pb_link link;
		int rc;

		if ((rc = read_key(p, &off, len, "block", &field, &wire)))
			return rc;
		if (field != 1 && field != 2)
			return fail_at(at, "unknown field %llu (expected 1 Data or 2 Links)",
				       (unsigned long long)field);
		if (wire != 2)
			return fail_at(at, "wrong wire type %u for %s (expected 2)",
				       wire, field == 1 ? "Data" : "Links");
		if (field == 1 && has_data)
			return fail_at(at, "duplicate Data section");
		if (field == 2 && has_data)
			return fail_at(at, has_links ? "duplicate Links section (Links after Data)"
						     : "Links after Data (Links must come first)");
		if ((rc = read_bytes(p, &off, len, "block", at, &body, &blen)))
			return rc;
		if (field == 1) {
			node->data = body;
			node->data_len = blen;
			node->has_data = has_data = true;
			continue;
		}
		has_links = true;
		if ((rc = parse_link(p, (size_t)(body - p), off, at, &link)))
			return rc;
		if (visit && (rc = visit(&link, ctx)))
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- decoder */

static int count_link(const pb_link *link, void *ctx)
{
	(void)link;
	(*(size_t *)ctx)++;
	return 0;
}

typedef struct {
	cairn_node *items;
	cairn_map_entry *entries; /* three per link */
	cairn_cid *cids;
	size_t count, next;
} fill_ctx;

static void set_entry(cairn_map_entry *e, const uint8_t *key, size_t key_len)
{
	e->key = key;
	e->key_len = key_len;
}

static int fill_link(const pb_link *l, void *ctx)
{
	fill_ctx *f = ctx;
	cairn_map_entry *e;
	cairn_cid *cid;
	size_t n = 0;

	/* The first pass counted these same links: never more. */
	if (f->next >= f->count)
		return cairn_error_set(CAIRN_ERROR, "dag-pb: internal error: link count changed");
	e = &f->entries[3 * f->next];
	cid = &f->cids[f->next];
	cairn_cid_copy(cid, &l->cid);
	set_entry(&e[n], K_HASH, 4);
	e[n].value.kind = CAIRN_KIND_LINK;
	e[n++].value.v.link = cid;
	if (l->has_name) {
		set_entry(&e[n], K_NAME, 4);
		e[n].value.kind = CAIRN_KIND_STRING;
		e[n].value.v.bytes.ptr = l->name;
		e[n++].value.v.bytes.len = l->name_len;
	}
	if (l->has_tsize) {
		set_entry(&e[n], K_TSIZE, 5);
		e[n].value.kind = CAIRN_KIND_INT;
		e[n].value.v.i.mag = l->tsize;
		e[n++].value.v.i.neg = false;
	}
	f->items[f->next].kind = CAIRN_KIND_MAP;
	f->items[f->next].v.map.entries = e;
	f->items[f->next].v.map.len = n;
	f->next++;
	return 0;
}

int cairn_dagpb_decode(cairn_node **out, cairn_arena *arena, const uint8_t *p, size_t len)
{
	fill_ctx f = {NULL, NULL, NULL, 0, 0};
	cairn_map_entry *top;
	cairn_node *root;
	pb_node node;
	size_t n = 0;
	int rc;

	*out = NULL;
	/* Two passes: the first validates and counts the links, so the second
	 * fills arrays of the right size instead of growing them in an arena
	 * that cannot give memory back. Reading a block is cheap next to
	 * hashing it. */
	if ((rc = parse_node(p, len, count_link, &f.count, &node)))
		return rc;
	/* Each link takes 36 bytes or more of the block, so this only bites
	 * on 32-bit builds, but the products below must not wrap. */
	if (f.count > SIZE_MAX / (3 * sizeof(cairn_map_entry) + sizeof(cairn_cid)))
		return cairn_error_set(CAIRN_ETOOBIG, "dag-pb: %zu links are too many", f.count);
	if (!(root = cairn_arena_alloc(arena, sizeof(*root))) ||
	    !(top = cairn_arena_alloc(arena, 2 * sizeof(*top))))
		return CAIRN_ENOMEM;
	if (f.count &&
	    (!(f.items = cairn_arena_alloc(arena, f.count * sizeof(*f.items))) ||
	     !(f.entries = cairn_arena_alloc(arena, 3 * f.count * sizeof(*f.entries))) ||
	     !(f.cids = cairn_arena_alloc(arena, f.count * sizeof(*f.cids)))))
		return CAIRN_ENOMEM;
	if ((rc = parse_node(p, len, fill_link, &f, &node)))
		return rc;
	if (node.has_data) {
		set_entry(&top[n], K_DATA, 4);
		top[n].value.kind = CAIRN_KIND_BYTES;
		top[n].value.v.bytes.ptr = node.data;
		top[n++].value.v.bytes.len = node.data_len;
	}
	/* Links is always there, even empty: the spec's data model form. */
	set_entry(&top[n], K_LINKS, 5);
	top[n].value.kind = CAIRN_KIND_LIST;
	top[n].value.v.list.items = f.items;
	top[n++].value.v.list.len = f.count;
	root->kind = CAIRN_KIND_MAP;
	root->v.map.entries = top;
	root->v.map.len = n;
	*out = root;
	return 0;
}

typedef struct {
	cairn_link_fn fn;
	void *payload;
} scan_ctx;

static int scan_link(const pb_link *link, void *ctx)
{
	scan_ctx *s = ctx;

	return s->fn(&link->cid, s->payload);
}

int cairn_ipld__dagpb_links(const uint8_t *p, size_t len, cairn_link_fn fn, void *payload)
{
	scan_ctx s = {fn, payload};
	pb_node node;

	return parse_node(p, len, scan_link, &s, &node);
}

/* ---------------------------------------------------------------- encoder */

/* The messages are @ipld/dag-pb's, so errors read the same in both. */
static int form_error(const char *what)
{
	return cairn_error_set(CAIRN_EINVAL, "dag-pb: invalid DAG-PB form (%s)", what);
}

static int link_error(size_t i, const char *what)
{
	return cairn_error_set(CAIRN_EINVAL, "dag-pb: Links[%zu]: invalid DAG-PB form (%s)",
			       i, what);
}

static bool key_is(const cairn_map_entry *e, const uint8_t *key, size_t n)
{
	return e->key_len == n && !memcmp(e->key, key, n);
}

/* A link of the form, checked. */
typedef struct {
	const cairn_cid *hash;
	const uint8_t *name; /* may be NULL when empty or absent */
	size_t name_len;
	uint64_t tsize;
	bool has_name;
	bool has_tsize;
} form_link;

static int check_link(const cairn_node *n, size_t i, form_link *l)
{
	const cairn_node *hash = NULL, *name = NULL, *tsize = NULL;

	if (n->kind != CAIRN_KIND_MAP)
		return link_error(i, "bad link");
	for (size_t k = 0; k < n->v.map.len; k++) {
		const cairn_map_entry *e = &n->v.map.entries[k];
		const cairn_node **slot;

		if (key_is(e, K_HASH, 4))
			slot = &hash;
		else if (key_is(e, K_NAME, 4))
			slot = &name;
		else if (key_is(e, K_TSIZE, 5))
			slot = &tsize;
		else
			return link_error(i, "extraneous properties on link");
		/* A JavaScript object cannot hold a key twice; a hand-built
		 * map can, and which value would win is anyone's guess. */
		if (*slot)
			return link_error(i, "duplicate key on link");
		*slot = &e->value;
	}
	if (!hash)
		return link_error(i, "link must have a Hash");
	if (hash->kind != CAIRN_KIND_LINK)
		return link_error(i, "link Hash must be a CID");
	if (name && name->kind != CAIRN_KIND_STRING)
		return link_error(i, "link Name must be a string");
	if (name && cairn_ipld__utf8_valid_prefix(name->v.bytes.ptr, name->v.bytes.len) !=
			    name->v.bytes.len)
		return link_error(i, "link Name must be valid UTF-8");
	if (tsize && tsize->kind != CAIRN_KIND_INT)
		return link_error(i, "link Tsize must be an integer");
	if (tsize && tsize->v.i.neg)
		return link_error(i, "link Tsize cannot be negative");
	l->hash = hash->v.link;
	l->has_name = name != NULL;
	l->name = name ? name->v.bytes.ptr : NULL;
	l->name_len = name ? name->v.bytes.len : 0;
	l->has_tsize = tsize != NULL;
	l->tsize = tsize ? tsize->v.i.mag : 0;
	return 0;
}

static size_t uvarint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void put_uvarint(cairn_buf *b, uint64_t v)
{
	uint8_t tmp[PB_VARINT_MAX];
	size_t n = 0;

	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	cairn_buf_append(b, tmp, n);
}

/* The bytes of a PBLink message, without its own key and length. */
static size_t link_size(const form_link *l)
{
	size_t n = 1 + uvarint_size(l->hash->len) + l->hash->len;

	if (l->has_name)
		n += 1 + uvarint_size(l->name_len) + l->name_len;
	if (l->has_tsize)
		n += 1 + uvarint_size(l->tsize);
	return n;
}

/* Sizes come from values in memory, but a Name can be shared by many links:
 * add with a check rather than trust the sum. */
static int add_size(size_t *total, size_t n)
{
	if (n > SIZE_MAX - *total)
		return cairn_error_set(CAIRN_ETOOBIG,
				       "dag-pb: encoding would exceed the address space");
	*total += n;
	return 0;
}

int cairn_dagpb_encode(cairn_buf *out, const cairn_node *node)
{
	const cairn_node *data = NULL, *links = NULL;
	const uint8_t *prev_name = NULL;
	size_t prev_len = 0, total = 0;
	int rc;

	/* Everything is checked before anything is written, so a refused
	 * value leaves `out` as it was. The order of the checks is
	 * validate()'s, so the same value gets the same message. */
	if (node->kind != CAIRN_KIND_MAP)
		return cairn_error_set(CAIRN_EINVAL,
				       "dag-pb: invalid DAG-PB form (a node must be a map, not %s)",
				       cairn_kind_name(node->kind));
	for (size_t k = 0; k < node->v.map.len; k++) {
		const cairn_map_entry *e = &node->v.map.entries[k];
		const cairn_node **slot;

		if (key_is(e, K_DATA, 4))
			slot = &data;
		else if (key_is(e, K_LINKS, 5))
			slot = &links;
		else
			return form_error("extraneous properties");
		if (*slot)
			return form_error("duplicate key");
		*slot = &e->value;
	}
	if (data && data->kind != CAIRN_KIND_BYTES)
		return form_error("Data must be bytes");
	if (!links || links->kind != CAIRN_KIND_LIST)
		return form_error("Links must be a list");
	for (size_t i = 0; i < links->v.list.len; i++) {
		form_link l;
		size_t n;

		if ((rc = check_link(&links->v.list.items[i], i, &l)))
			return rc;
		/* An absent Name sorts as the empty one; equal names keep their
		 * order, as the spec's stable sort leaves them. */
		if (i && cairn_ipld__key_cmp_bytes(l.name, l.name_len, prev_name, prev_len) < 0)
			return link_error(i, "links must be sorted by Name bytes");
		prev_name = l.name;
		prev_len = l.name_len;
		n = link_size(&l);
		if ((rc = add_size(&total, 1 + uvarint_size(n))) || (rc = add_size(&total, n)))
			return rc;
	}
	if (data && ((rc = add_size(&total, 1 + uvarint_size(data->v.bytes.len))) ||
		     (rc = add_size(&total, data->v.bytes.len))))
		return rc;

	/* One reservation: the appends below then cannot fail half-way. */
	if ((rc = cairn_buf_reserve(out, total)))
		return rc;
	for (size_t i = 0; i < links->v.list.len; i++) {
		form_link l;

		(void)check_link(&links->v.list.items[i], i, &l); /* passed above */
		cairn_buf_putc(out, 0x12); /* field 2, length-delimited */
		put_uvarint(out, link_size(&l));
		cairn_buf_putc(out, 0x0a); /* Hash: field 1, length-delimited */
		put_uvarint(out, l.hash->len);
		cairn_buf_append(out, l.hash->bytes, l.hash->len);
		if (l.has_name) {
			cairn_buf_putc(out, 0x12); /* Name: field 2, length-delimited */
			put_uvarint(out, l.name_len);
			cairn_buf_append(out, l.name, l.name_len);
		}
		if (l.has_tsize) {
			cairn_buf_putc(out, 0x18); /* Tsize: field 3, varint */
			put_uvarint(out, l.tsize);
		}
	}
	if (data) {
		cairn_buf_putc(out, 0x0a); /* field 1, length-delimited */
		put_uvarint(out, data->v.bytes.len);
		cairn_buf_append(out, data->v.bytes.ptr, data->v.bytes.len);
	}
	return out->err;
}
