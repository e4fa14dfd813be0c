/* car.c: CAR sections read through a mount: the DAG store's indexing pass
 * over any shard (local or remote), and single-section reads for lookups.
 *
 * The same layout, checks and messages as src/car/reader.c (which reads a
 * descriptor), rebuilt on the public API because a mount is not a
 * descriptor: window reads go to cairn_mount_read_at, which never comes
 * back short, so every read is clamped to the bytes there are. After the
 * headers, reads stop at the payload's end, so a CARv2's index (often a
 * tenth of the file) is never fetched over the network.
 *
 * Offsets: a section's `offset` is that of its length varint from the
 * start of the CARv1 payload (what a CARv2 index and go-car store);
 * `file_offset` and `block_offset` are from the start of the mount.
 */
#include <string.h>

#include "mount_i.h"

#define WINDOW_LOCAL (1u << 20)
#define WINDOW_REMOTE (4u << 20)
/* After a skipped block this large, a local refill reads a head's worth,
 * not a window of block bytes (as the descriptor reader does). */
#define HEAD_READ (4u << 10)
#define SKIP_BIG (64u << 10)
/* What the first read takes: the headers of nearly every CAR, and no more,
 * so the index of a small CARv2 is not fetched with its header. */
#define HEADER_READ (4u << 10)
#define SECTION_HEAD_MAX (CAIRN_VARINT_MAX + CAIRN_CID_MAX_BYTES)
#define SECTION_READ 512

static const cairn_car_options default_opts = CAIRN_CAR_OPTIONS_INIT;

struct cairn_mount_car {
	cairn_mount *m;
	const char *name;
	cairn_car_options opts;
	unsigned version;
	cairn_car_v2_header v2;
	cairn_cid *roots;
	size_t nroots;
	uint64_t file_size;
	uint64_t limit;        /* reads stop here: the size, then the payload's end */
	uint64_t data_offset;
	uint64_t data_end;
	uint64_t header_len;
	uint64_t pos;
	uint8_t *win;
	size_t win_cap, win_len;
	uint64_t win_start;
	size_t window;         /* the least a refill reads */
	size_t read_min;
	bool local;
	uint64_t bytes_read;
};

/* Makes bytes [off, off + n) available; *avail may be less than n only at
 * the limit. */
static int window(cairn_mount_car *r, uint64_t off, size_t n, const uint8_t **out, size_t *avail)
{
	size_t want;
	int rc;

	if (off >= r->win_start && off - r->win_start <= r->win_len &&
	    n <= r->win_len - (off - r->win_start)) {
		*out = r->win + (off - r->win_start);
		*avail = n;
		return 0;
	}
	want = n + SECTION_HEAD_MAX > r->read_min ? n + SECTION_HEAD_MAX : r->read_min;
	if (want > r->win_cap) {
		uint8_t *p = cairn_realloc(r->win, want);

		if (!p)
			return CAIRN_ENOMEM;
		r->win = p;
		r->win_cap = want;
	}
	if (off >= r->limit)
		want = 0;
	else if (want > r->limit - off)
		want = (size_t)(r->limit - off);
	r->win_len = 0;
	if (want && (rc = cairn_mount_read_at(r->m, r->win, want, off)))
		return rc;
	r->bytes_read += want;
	r->win_start = off;
	r->win_len = want;
	*out = r->win;
	*avail = want < n ? want : n;
	return 0;
}

static int need(cairn_mount_car *r, uint64_t off, size_t n, const uint8_t **out, const char *what)
{
	size_t avail;
	int rc = window(r, off, n, out, &avail);

	if (rc)
		return rc;
	if (avail < n)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: unexpected end of file in %s (%zu of %zu bytes)", r->name,
			(unsigned long long)(off + avail), what, avail, n);
	return 0;
}

/* The CAR header block: {"roots": [...], "version": 1} or the CARv2
 * pragma {"version": 2}. */
static int parse_header(cairn_mount_car *r, unsigned *version, const uint8_t *p, size_t len,
			uint64_t at)
{
	const cairn_node *v, *roots;
	cairn_arena *arena;
	cairn_node *root;
	int rc;

	if ((rc = cairn_arena_new(&arena)))
		return rc;
	if ((rc = cairn_dagcbor_decode(&root, arena, p, len))) {
		cairn_error_prefix("%s: header at byte %llu: ", r->name, (unsigned long long)at);
		goto out;
	}
	v = cairn_node_map_get(root, "version");
	if (!v || v->kind != CAIRN_KIND_INT || v->v.i.neg) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: header at byte %llu: no version number",
				     r->name, (unsigned long long)at);
		goto out;
	}
	if (v->v.i.mag != 1 && v->v.i.mag != 2) {
		rc = cairn_error_set(CAIRN_EUNSUPPORTED, "%s: header at byte %llu: invalid car version: %llu",
				     r->name, (unsigned long long)at, (unsigned long long)v->v.i.mag);
		goto out;
	}
	*version = (unsigned)v->v.i.mag;
	if (*version == 2) {
		if (root->v.map.len != 1)
			rc = cairn_error_set(CAIRN_ECORRUPT,
				"%s: header at byte %llu: CARv2 pragma has fields besides version", r->name,
				(unsigned long long)at);
		goto out;
	}
	roots = cairn_node_map_get(root, "roots");
	if (!roots || roots->kind != CAIRN_KIND_LIST) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: header at byte %llu: no roots list", r->name,
				     (unsigned long long)at);
		goto out;
	}
	cairn_free(r->roots);
	r->roots = NULL;
	r->nroots = 0;
	if (roots->v.list.len && !(r->roots = cairn_malloc(roots->v.list.len * sizeof(*r->roots)))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < roots->v.list.len; i++) {
		if (roots->v.list.items[i].kind != CAIRN_KIND_LINK) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: header at byte %llu: root %zu is not a CID",
					     r->name, (unsigned long long)at, i);
			goto out;
		}
		r->roots[i] = *roots->v.list.items[i].v.link;
	}
	r->nroots = roots->v.list.len;
out:
	cairn_arena_free(arena);
	return rc;
}

static int read_v1_header(cairn_mount_car *r, uint64_t off, unsigned *version, uint64_t *len_out)
{
	const uint8_t *p;
	size_t avail, used;
	uint64_t len;
	int rc;

	if ((rc = window(r, off, CAIRN_VARINT_MAX, &p, &avail)))
		return rc;
	if (avail == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: empty file, no CAR header",
				       r->name, (unsigned long long)off);
	if (cairn_varint_decode(&len, &used, p, avail))
		return cairn_error_prefix("%s: header length at byte %llu: ", r->name,
					  (unsigned long long)off);
	if (len == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: invalid CAR header (zero length)",
				       r->name, (unsigned long long)off);
	if (len > r->opts.max_header_size)
		return cairn_error_set(CAIRN_ETOOBIG,
			"%s: at byte %llu: header of %llu bytes is over the limit of %llu", r->name,
			(unsigned long long)off, (unsigned long long)len,
			(unsigned long long)r->opts.max_header_size);
	if (len > r->file_size - off - used)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: header of %llu bytes runs past the end of the file (%llu bytes)",
			r->name, (unsigned long long)off, (unsigned long long)len,
			(unsigned long long)r->file_size);
	if ((rc = need(r, off + used, (size_t)len, &p, "the header")))
		return rc;
	if ((rc = parse_header(r, version, p, (size_t)len, off + used)))
		return rc;
	*len_out = used + len;
	return 0;
}

static int open_headers(cairn_mount_car *r)
{
	const uint8_t *p;
	unsigned version;
	uint64_t len;
	int rc;

	if ((rc = read_v1_header(r, 0, &version, &len)))
		return rc;
	r->version = version;
	if (version == 1) {
		r->data_offset = 0;
		r->data_end = r->file_size;
		r->header_len = len;
		r->pos = len;
		return 0;
	}
	if (len != CAIRN_CAR_PRAGMA_LEN || (rc = need(r, 0, CAIRN_CAR_V2_PREFIX_LEN, &p, "the CARv2 header")))
		return rc ? rc : cairn_error_set(CAIRN_ECORRUPT, "%s: at byte 0: malformed CARv2 pragma", r->name);
	if (memcmp(p, cairn_car_pragma, CAIRN_CAR_PRAGMA_LEN))
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte 0: malformed CARv2 pragma", r->name);
	if ((rc = cairn_car_v2_header_decode(&r->v2, p + CAIRN_CAR_PRAGMA_LEN)))
		return cairn_error_prefix("%s: CARv2 header ", r->name);
	if (r->v2.data_offset > r->file_size || r->v2.data_size > r->file_size - r->v2.data_offset)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte 27: data payload [%llu, +%llu) runs past the end of the file (%llu bytes)",
			r->name, (unsigned long long)r->v2.data_offset,
			(unsigned long long)r->v2.data_size, (unsigned long long)r->file_size);
	if (r->v2.index_offset > r->file_size)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte 43: index offset %llu is past the end of the file",
				       r->name, (unsigned long long)r->v2.index_offset);
	r->data_offset = r->v2.data_offset;
	r->data_end = r->v2.data_offset + r->v2.data_size;
	if ((rc = read_v1_header(r, r->data_offset, &version, &len)))
		return rc;
	if (version != 1)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: the CARv1 inside a CARv2 has version %u",
				       r->name, (unsigned long long)r->data_offset, version);
	if (len > r->v2.data_size)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: CARv1 header is larger than the data payload",
				       r->name, (unsigned long long)r->data_offset);
	r->header_len = len;
	r->pos = r->data_offset + len;
	return 0;
}

int cairn_mount_car_open(cairn_mount_car **out, cairn_mount *m, const cairn_car_options *opts,
			 size_t window_size)
{
	cairn_mount_car *r;
	int rc;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "mount car: NULL argument");
	*out = NULL;
	if (!m)
		return cairn_error_set(CAIRN_EINVAL, "mount car: NULL argument");
	if (!(r = cairn_calloc(1, sizeof(*r))))
		return CAIRN_ENOMEM;
	r->m = m;
	r->name = cairn_mount_name(m);
	r->opts = opts ? *opts : default_opts;
	r->local = cairn_mount_get_kind(m) == CAIRN_MOUNT_LOCAL;
	r->window = window_size ? window_size : r->local ? WINDOW_LOCAL : WINDOW_REMOTE;
	r->read_min = HEADER_READ;
	r->file_size = cairn_mount_size(m);
	r->limit = r->file_size;
	if ((rc = open_headers(r))) {
		cairn_mount_car_free(r);
		return rc;
	}
	/* From here on nothing past the payload is needed. */
	r->limit = r->data_end;
	r->read_min = r->window;
	*out = r;
	return 0;
}

void cairn_mount_car_free(cairn_mount_car *r)
{
	if (!r)
		return;
	cairn_free(r->roots);
	cairn_free(r->win);
	cairn_free(r);
}

unsigned cairn_mount_car_version(const cairn_mount_car *r) { return r->version; }
const cairn_car_v2_header *cairn_mount_car_v2_header(const cairn_mount_car *r)
{
	return r->version == 2 ? &r->v2 : NULL;
}
size_t cairn_mount_car_root_count(const cairn_mount_car *r) { return r->nroots; }
const cairn_cid *cairn_mount_car_roots(const cairn_mount_car *r) { return r->roots; }
uint64_t cairn_mount_car_data_offset(const cairn_mount_car *r) { return r->data_offset; }
uint64_t cairn_mount_car_data_end(const cairn_mount_car *r) { return r->data_end; }
uint64_t cairn_mount_car_header_len(const cairn_mount_car *r) { return r->header_len; }
uint64_t cairn_mount_car_bytes_read(const cairn_mount_car *r) { return r->bytes_read; }

/* A section's length varint and CID at `at`, checked against the payload's
 * end, with the messages of the descriptor reader. */
static int parse_head(cairn_car_section *s, size_t *head_len, const uint8_t *p, size_t avail,
		      uint64_t at, uint64_t data_offset, uint64_t data_end, const char *name,
		      const cairn_car_options *opts)
{
	uint64_t len;
	size_t used, cid_len;

	if (cairn_varint_decode(&len, &used, p, avail))
		return cairn_error_prefix("%s: section length at byte %llu: ", name, (unsigned long long)at);
	if (len == 0)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: zero-length section (null padding; a Filecoin piece? read it with zero-length sections as the end)",
			name, (unsigned long long)at);
	if (len > opts->max_section_size)
		return cairn_error_set(CAIRN_ETOOBIG,
			"%s: at byte %llu: section of %llu bytes is over the limit of %llu", name,
			(unsigned long long)at, (unsigned long long)len,
			(unsigned long long)opts->max_section_size);
	if (len > data_end - at - used)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: section of %llu bytes runs past the end of the data (%llu bytes remain)",
			name, (unsigned long long)at, (unsigned long long)len,
			(unsigned long long)(data_end - at - used));
	if (cairn_cid_decode(&s->cid, &cid_len, p + used, avail - used < len ? avail - used : (size_t)len))
		return cairn_error_prefix("%s: section at byte %llu: ", name, (unsigned long long)at);
	s->offset = at - data_offset;
	s->file_offset = at;
	s->length = len;
	s->cid_len = (uint32_t)cid_len;
	s->block_offset = at + used + cid_len;
	s->block_len = len - cid_len;
	s->block = NULL;
	*head_len = used + cid_len;
	return 0;
}

static int verify(const cairn_car_section *s, const char *name)
{
	int rc = cairn_cid_verify(&s->cid, s->block, (size_t)s->block_len);

	if (rc)
		cairn_error_prefix("%s: section at byte %llu: ", name, (unsigned long long)s->file_offset);
	return rc;
}

int cairn_mount_car_next(cairn_mount_car *r, cairn_car_section *out, bool want_block)
{
	const uint8_t *p;
	size_t avail, head;
	int rc;

	if (r->pos >= r->data_end)
		return 0;
	if ((rc = window(r, r->pos, SECTION_HEAD_MAX, &p, &avail)))
		return rc;
	if (avail > r->data_end - r->pos)
		avail = (size_t)(r->data_end - r->pos);
	if (avail && p[0] == 0 && r->opts.zero_length_as_eof) {
		r->pos = r->data_end;
		return 0;
	}
	if ((rc = parse_head(out, &head, p, avail, r->pos, r->data_offset, r->data_end, r->name,
			     &r->opts)))
		return rc;
	if (want_block || !r->opts.trusted) {
		r->read_min = r->window;
		if ((rc = need(r, out->block_offset, (size_t)out->block_len, &p, "a block")))
			return rc;
		out->block = p;
		if (!r->opts.trusted && (rc = verify(out, r->name)))
			return rc;
		if (!want_block)
			out->block = NULL;
	} else if (r->local) {
		r->read_min = out->block_len >= SKIP_BIG ? HEAD_READ : r->window;
	}
	r->pos = out->block_offset + out->block_len;
	return 1;
}

int cairn_mount_car_foreach(cairn_mount *m, const cairn_car_options *opts,
			    cairn_car_section_fn fn, void *payload)
{
	cairn_mount_car *r;
	cairn_car_section s;
	bool want;
	int rc;

	if (!fn)
		return cairn_error_set(CAIRN_EINVAL, "mount car: NULL argument");
	if ((rc = cairn_mount_car_open(&r, m, opts, 0)))
		return rc;
	want = !r->opts.trusted;
	while ((rc = cairn_mount_car_next(r, &s, want)) == 1)
		if ((rc = fn(&s, payload)))
			break;
	cairn_mount_car_free(r);
	return rc;
}

int cairn_mount_car_section_read(cairn_car_section *out, cairn_buf *block, cairn_mount *m,
				 uint64_t data_offset, uint64_t data_end, uint64_t offset,
				 const cairn_car_options *opts)
{
	uint8_t head[SECTION_READ];
	const char *name;
	uint64_t at;
	size_t avail, used, have;
	int rc;

	if (!out || !block || !m)
		return cairn_error_set(CAIRN_EINVAL, "mount car: NULL argument");
	name = cairn_mount_name(m);
	if (!opts)
		opts = &default_opts;
	if (data_offset > data_end || data_end > cairn_mount_size(m))
		return cairn_error_set(CAIRN_EINVAL,
			"%s: payload [%llu, %llu) is not inside the mount (%llu bytes)", name,
			(unsigned long long)data_offset, (unsigned long long)data_end,
			(unsigned long long)cairn_mount_size(m));
	if (offset >= data_end - data_offset)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: offset %llu is past the end of the data",
				       name, (unsigned long long)offset);
	at = data_offset + offset;
	/* The head and a small block in one read: one round trip over HTTP. */
	avail = data_end - at < sizeof(head) ? (size_t)(data_end - at) : sizeof(head);
	if ((rc = cairn_mount_read_at(m, head, avail, at)))
		return rc;
	if ((rc = parse_head(out, &used, head, avail, at, data_offset, data_end, name, opts)))
		return rc;
	cairn_buf_clear(block);
	if ((rc = cairn_buf_reserve(block, (size_t)out->block_len)))
		return rc;
	have = avail - used < out->block_len ? avail - used : (size_t)out->block_len;
	if (have)
		memcpy(block->data, head + used, have);
	if (have < out->block_len &&
	    (rc = cairn_mount_read_at(m, block->data + have, (size_t)out->block_len - have,
				      out->block_offset + have)))
		return rc;
	block->len = (size_t)out->block_len;
	block->data[block->len] = '\0';
	out->block = block->data;
	if (!opts->trusted && (rc = verify(out, name)))
		return rc;
	return 0;
}
