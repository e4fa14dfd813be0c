/* import.c: files and directories into UnixFS DAGs with the CIDs of
 * ipfs-car (@ipld/unixfs) and of kubo's defaults (ipfs-unixfs-importer,
 * profile unixfs-v0-2015).
 *
 * Files. A fixed-size chunker feeds a balanced layout built level by level:
 * every `width` links at one level become a node one level up, as soon as a
 * further dag_link shows the level will not be the top. At the end each level,
 * bottom up, is packed into one more node unless it is the top and holds a
 * single link, which is then the root; a file of one chunk is its leaf.
 * Both references build exactly this shape. Chunks are read in batches;
 * the blocks of one batch are hashed on the pool while the main thread
 * hands the previous batch to `put` and reads the next, so memory is two
 * batches whatever the file size.
 *
 * Directories. The tree is listed first (names only), then imported depth
 * first, children in byte order of their names. A directory is one DAG-PB
 * node with its links sorted by name, or past the profile's threshold a
 * HAMT of fanout 256 keyed by murmur3-x64-64 of the name, as go-unixfs
 * lays it out: a slot holds an entry ("XX" + name) or, when several names
 * share the slot's hash prefix, a child shard ("XX") one byte deeper.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/unixfs.h"

/* Room around a chunk so a DAG-PB leaf is built in place around it. */
#define LEAF_HEADROOM 32
#define LEAF_TAILROOM 16
#define BATCH_BYTES (8u << 20)
#define BATCH_CHUNKS_MAX 64   /* tiny chunks: bound the buffers, not the bytes */
#define MAX_LEVELS 16
#define HAMT_FANOUT 256
#define KUBO_SHARD_BYTES 262144

void cairn_unixfs_params_init(cairn_unixfs_params *p, cairn_unixfs_profile profile)
{
	memset(p, 0, sizeof(*p));
	p->naming = profile;
	if (profile == CAIRN_UNIXFS_PROFILE_KUBO) {
		p->chunk_size = 256 * 1024;
		p->width = 174;
		p->cid_version = 0;
		p->raw_leaves = false;
		p->wrap = false;
		p->shard_rule = CAIRN_UNIXFS_SHARD_LINK_BYTES;
		p->shard_threshold = KUBO_SHARD_BYTES;
	} else {
		p->chunk_size = 1024 * 1024;
		p->width = 1024;
		p->cid_version = 1;
		p->raw_leaves = true;
		p->wrap = true;
		p->shard_rule = CAIRN_UNIXFS_SHARD_ENTRIES;
		p->shard_threshold = 1000;
	}
}

/* ------------------------------------------------------------ emitting */

typedef struct dag_link {
	cairn_cid cid;
	uint64_t tsize;   /* the DAG below, block included */
	uint64_t size;    /* file content below */
} dag_link;

typedef struct importer {
	const cairn_unixfs_params *p;
	cairn_unixfs_put_fn put;
	void *payload;
	cairn_unixfs_progress_fn progress;
	void *progress_payload;
	cairn_pool *pool;
	cairn_buf enc;       /* the node being encoded */
	cairn_buf data;      /* its UnixFS Data message */
	cairn_unixfs_import_result *res;
	uint64_t read_total;
	/* Reused by every file: allocating 16 MiB of chunk buffers and the
	 * layout's levels per file made many small files slow. */
	struct batch *batches;   /* two */
	size_t per;              /* chunks per batch */
	struct layout *layout;
} importer;

static int emit(importer *im, dag_link *out, uint64_t codec, const uint8_t *p, size_t n,
		uint64_t children_tsize, uint64_t size)
{
	unsigned version = codec == CAIRN_CODEC_DAG_PB ? im->p->cid_version : 1;
	int rc;

	if ((rc = cairn_cid_compute(&out->cid, version, codec, CAIRN_MH_SHA2_256, p, n)))
		return rc;
	out->tsize = n + children_tsize;
	out->size = size;
	im->res->blocks++;
	return im->put(im->payload, &out->cid, p, n);
}

static void pb_varint(cairn_buf *b, uint64_t v)
{
	uint8_t tmp[CAIRN_VARINT_MAX];

	cairn_buf_append(b, tmp, cairn_varint_encode(tmp, v));
}

/* One PBLink (field 2 of PBNode): Hash, Name (always, "" for file parts,
 * as every reference writes it), Tsize. */
static void pb_link(cairn_buf *b, const cairn_cid *cid, const char *name, size_t name_len,
		    uint64_t tsize)
{
	size_t len = 1 + cairn_varint_size(cid->len) + cid->len + 1 +
		     cairn_varint_size(name_len) + name_len + 1 + cairn_varint_size(tsize);

	cairn_buf_putc(b, 0x12);
	pb_varint(b, len);
	cairn_buf_putc(b, 0x0a);
	pb_varint(b, cid->len);
	cairn_buf_append(b, cid->bytes, cid->len);
	cairn_buf_putc(b, 0x12);
	pb_varint(b, name_len);
	cairn_buf_append(b, name, name_len);
	cairn_buf_putc(b, 0x18);
	pb_varint(b, tsize);
}

/* Ends a PBNode whose links are in im->enc: the Data field. */
static void pb_data(importer *im, const cairn_unixfs_data *d)
{
	cairn_buf_clear(&im->data);
	cairn_unixfs_data_encode(&im->data, d);
	cairn_buf_putc(&im->enc, 0x0a);
	pb_varint(&im->enc, im->data.len);
	cairn_buf_append(&im->enc, im->data.data, im->data.len);
}

/* ------------------------------------------------------------- files */

typedef struct layout {
	dag_link *level[MAX_LEVELS];
	size_t count[MAX_LEVELS];
	unsigned levels;     /* levels in use */
	uint64_t leaves;
	dag_link first_leaf;
} layout;

static int file_node(importer *im, dag_link *out, const dag_link *kids, size_t n)
{
	uint64_t sizes_on_stack[256], *sizes = sizes_on_stack;
	uint64_t total = 0, tsize = 0;
	cairn_unixfs_data d;
	int rc;

	if (n > 256 && !(sizes = cairn_malloc(n * sizeof(*sizes))))
		return CAIRN_ENOMEM;
	cairn_buf_clear(&im->enc);
	for (size_t i = 0; i < n; i++) {
		pb_link(&im->enc, &kids[i].cid, "", 0, kids[i].tsize);
		sizes[i] = kids[i].size;
		total += kids[i].size;
		tsize += kids[i].tsize;
	}
	memset(&d, 0, sizeof(d));
	d.type = CAIRN_UNIXFS_FILE;
	d.has_filesize = true;
	d.filesize = total;
	d.blocksizes = sizes;
	d.nblocksizes = n;
	pb_data(im, &d);
	if (sizes != sizes_on_stack)
		cairn_free(sizes);
	if ((rc = im->enc.err))
		return rc;
	return emit(im, out, CAIRN_CODEC_DAG_PB, im->enc.data, im->enc.len, tsize, total);
}

/* Adds a dag_link at `lv`, first packing the `width` links already there into
 * a node one level up: a further dag_link proves they are not the top. */
static int layout_push(importer *im, layout *l, unsigned lv, const dag_link *ln)
{
	unsigned width = im->p->width;
	int rc;

	if (lv >= MAX_LEVELS)
		return cairn_error_set(CAIRN_ETOOBIG, "unixfs: file too large for the layout");
	if (!l->level[lv] && !(l->level[lv] = cairn_malloc(width * sizeof(dag_link))))
		return CAIRN_ENOMEM;
	if (lv + 1 > l->levels)
		l->levels = lv + 1;
	if (l->count[lv] == width) {
		dag_link node;

		if ((rc = file_node(im, &node, l->level[lv], width)) ||
		    (rc = layout_push(im, l, lv + 1, &node)))
			return rc;
		l->count[lv] = 0;
	}
	l->level[lv][l->count[lv]++] = *ln;
	return 0;
}

static int layout_close(importer *im, layout *l, dag_link *root)
{
	int rc;

	if (l->leaves == 1) {
		*root = l->first_leaf;
		return 0;
	}
	for (unsigned lv = 0; lv < l->levels; lv++) {
		dag_link node;

		if (lv > 0 && lv + 1 == l->levels && l->count[lv] == 1) {
			*root = l->level[lv][0];
			return 0;
		}
		if ((rc = file_node(im, &node, l->level[lv], l->count[lv])))
			return rc;
		l->count[lv] = 0;
		if (lv + 1 == l->levels) {
			*root = node;
			return 0;
		}
		if ((rc = layout_push(im, l, lv + 1, &node)))
			return rc;
	}
	return cairn_error_set(CAIRN_ERROR, "unixfs: layout left without a root");
}

static void layout_free(layout *l)
{
	for (unsigned i = 0; i < MAX_LEVELS; i++)
		cairn_free(l->level[i]);
}

typedef struct chunk {
	uint8_t *buf;        /* LEAF_HEADROOM + chunk_size + LEAF_TAILROOM */
	size_t n;            /* content bytes, at buf + LEAF_HEADROOM */
	const uint8_t *block;
	size_t block_len;
	bool dag_pb;
	uint8_t digest[32];
} chunk;

/* Wraps the content as a UnixFS File leaf in place: PBNode{Data:
 * Data{Type: File, Data: content (if any), filesize}}. */
static void leaf_wrap(chunk *c)
{
	uint8_t *content = c->buf + LEAF_HEADROOM, *p, tail[1 + CAIRN_VARINT_MAX];
	uint8_t head[8 + 3 * CAIRN_VARINT_MAX];
	size_t inner, h = 0, t = 0;

	tail[t++] = 0x18;
	t += cairn_varint_encode(tail + t, c->n);
	inner = 2 + t + (c->n ? 1 + cairn_varint_size(c->n) + c->n : 0);
	head[h++] = 0x0a;
	h += cairn_varint_encode(head + h, inner);
	head[h++] = 0x08;
	head[h++] = 0x02;
	if (c->n) {
		head[h++] = 0x12;
		h += cairn_varint_encode(head + h, c->n);
	}
	p = content - h;
	memcpy(p, head, h);
	memcpy(content + c->n, tail, t);
	c->block = p;
	c->block_len = h + c->n + t;
}

static void hash_chunk(void *arg)
{
	chunk *c = arg;

	if (c->dag_pb)
		leaf_wrap(c);
	else {
		c->block = c->buf + LEAF_HEADROOM;
		c->block_len = c->n;
	}
	cairn_multihash_sum(c->digest, CAIRN_MH_SHA2_256, c->block, c->block_len);
}

typedef struct batch {
	chunk *chunks;
	size_t n;
} batch;

/* Fills the batch from fd; sets *eof when the file ends. `chunks` counts
 * the chunks of this file so far: only an empty file yields an empty
 * chunk, its one leaf, as both references do. */
static int read_batch(importer *im, batch *b, size_t cap, int fd, const char *name, bool *eof,
		      uint64_t *chunks)
{
	size_t size = im->p->chunk_size;

	b->n = 0;
	while (b->n < cap && !*eof) {
		chunk *c = &b->chunks[b->n];
		uint8_t *dst = c->buf + LEAF_HEADROOM;
		size_t got = 0;

		while (got < size) {
			ssize_t r = read(fd, dst + got, size - got);

			if (r < 0) {
				if (errno == EINTR)
					continue;
				return cairn_error_set(CAIRN_EIO, "%s: read at byte %llu: %s", name,
						       (unsigned long long)(im->read_total + got),
						       strerror(errno));
			}
			if (r == 0) {
				*eof = true;
				break;
			}
			got += (size_t)r;
		}
		im->read_total += got;
		if (got == 0 && *chunks > 0)
			break;
		c->n = got;
		c->dag_pb = !im->p->raw_leaves;
		b->n++;
		(*chunks)++;
	}
	return 0;
}

static int emit_batch(importer *im, layout *l, batch *b)
{
	int rc;

	for (size_t i = 0; i < b->n; i++) {
		chunk *c = &b->chunks[i];
		dag_link ln;
		uint64_t codec = c->dag_pb ? CAIRN_CODEC_DAG_PB : CAIRN_CODEC_RAW;
		unsigned version = c->dag_pb ? im->p->cid_version : 1;

		if ((rc = cairn_cid_from_digest(&ln.cid, version, codec, CAIRN_MH_SHA2_256,
						c->digest, 32)))
			return rc;
		ln.tsize = c->block_len;
		ln.size = c->n;
		im->res->blocks++;
		im->res->bytes += c->n;
		if ((rc = im->put(im->payload, &ln.cid, c->block, c->block_len)))
			return rc;
		if (++l->leaves == 1)
			l->first_leaf = ln;
		if ((rc = layout_push(im, l, 0, &ln)))
			return rc;
	}
	if (im->progress)
		im->progress(im->progress_payload, im->res->bytes);
	return 0;
}

/* The two batches and the layout, made on the first file. */
static int importer_buffers(importer *im)
{
	size_t per = im->p->chunk_size < BATCH_BYTES ? BATCH_BYTES / im->p->chunk_size : 1;

	if (im->batches)
		return 0;
	if (per > BATCH_CHUNKS_MAX)
		per = BATCH_CHUNKS_MAX;
	if (per < 2 * cairn_pool_size(im->pool))
		per = 2 * cairn_pool_size(im->pool);
	if (!(im->layout = cairn_calloc(1, sizeof(layout))) ||
	    !(im->batches = cairn_calloc(2, sizeof(batch))))
		return CAIRN_ENOMEM;
	im->per = per;
	for (unsigned k = 0; k < 2; k++) {
		if (!(im->batches[k].chunks = cairn_calloc(per, sizeof(chunk))))
			return CAIRN_ENOMEM;
		for (size_t i = 0; i < per; i++) {
			im->batches[k].chunks[i].buf = cairn_malloc(LEAF_HEADROOM + im->p->chunk_size +
								    LEAF_TAILROOM);
			if (!im->batches[k].chunks[i].buf)
				return CAIRN_ENOMEM;
		}
	}
	return 0;
}

static void importer_buffers_free(importer *im)
{
	for (unsigned k = 0; im->batches && k < 2; k++) {
		for (size_t i = 0; im->batches[k].chunks && i < im->per; i++)
			cairn_free(im->batches[k].chunks[i].buf);
		cairn_free(im->batches[k].chunks);
	}
	cairn_free(im->batches);
	if (im->layout)
		layout_free(im->layout);
	cairn_free(im->layout);
}

static int import_file(importer *im, dag_link *out, int fd, const char *name)
{
	batch *b;
	layout *l;
	bool eof = false;
	unsigned cur = 0;
	uint64_t chunks = 0;
	size_t per;
	int rc;

	if ((rc = importer_buffers(im)))
		return rc;
	b = im->batches;
	l = im->layout;
	per = im->per;
	/* Keep the levels' arrays; forget their links. */
	memset(l->count, 0, sizeof(l->count));
	l->levels = 0;
	l->leaves = 0;
	im->read_total = 0;
	b[0].n = b[1].n = 0;
	if ((rc = read_batch(im, &b[0], per, fd, name, &eof, &chunks)))
		return rc;
	for (size_t i = 0; i < b[0].n; i++)
		cairn_pool_submit(im->pool, hash_chunk, &b[0].chunks[i]);
	for (;;) {
		batch *now = &b[cur], *next = &b[cur ^ 1];

		next->n = 0;
		if (!eof && (rc = read_batch(im, next, per, fd, name, &eof, &chunks))) {
			cairn_pool_wait(im->pool);
			return rc;
		}
		cairn_pool_wait(im->pool);
		for (size_t i = 0; i < next->n; i++)
			cairn_pool_submit(im->pool, hash_chunk, &next->chunks[i]);
		if ((rc = emit_batch(im, l, now))) {
			cairn_pool_wait(im->pool);
			return rc;
		}
		if (!next->n)
			break;
		cur ^= 1;
	}
	if ((rc = layout_close(im, l, out)))
		return rc;
	im->res->files++;
	return 0;
}

/* -------------------------------------------------------- directories */

typedef struct entry {
	char *name;          /* the dag_link name */
	char *path;          /* on disk (files, and directories for kubo) */
	bool is_dir;
	struct entry **kids;
	size_t nkids, cap;
} entry;

typedef struct named_link {
	const char *name;
	size_t name_len;
	dag_link ln;
	bool is_dir;
	bool childless;      /* a directory with no entries (kubo's size rule) */
	uint8_t hash[8];     /* murmur3 frame 0 of the name, for HAMTs */
} named_link;

static void entry_free(entry *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nkids; i++)
		entry_free(e->kids[i]);
	cairn_free(e->kids);
	cairn_free(e->name);
	cairn_free(e->path);
	cairn_free(e);
}

static entry *entry_new(const char *name, size_t name_len, const char *path, bool is_dir)
{
	entry *e = cairn_calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->is_dir = is_dir;
	if (!(e->name = cairn_strndup(name, name_len)) ||
	    (path && !(e->path = cairn_strndup(path, strlen(path))))) {
		entry_free(e);
		return NULL;
	}
	return e;
}

static int entry_add(entry *dir, entry *kid)
{
	if (dir->nkids == dir->cap) {
		size_t ncap = dir->cap ? dir->cap * 2 : 8;
		entry **n = cairn_realloc(dir->kids, ncap * sizeof(*n));

		if (!n) {
			entry_free(kid);
			return CAIRN_ENOMEM;
		}
		dir->kids = n;
		dir->cap = ncap;
	}
	dir->kids[dir->nkids++] = kid;
	return 0;
}

static entry *entry_find(entry *dir, const char *name, size_t len)
{
	for (size_t i = dir->nkids; i-- > 0;)
		if (!strncmp(dir->kids[i]->name, name, len) && !dir->kids[i]->name[len])
			return dir->kids[i];
	return NULL;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp((*(entry *const *)a)->name, (*(entry *const *)b)->name);
}

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const named_link *)a)->name, ((const named_link *)b)->name);
}

/* murmur3 x64 128 (seed 0), first half: what go-unixfs and both JS
 * references take as the 64-bit HAMT hash, big-endian (public, for the
 * gateway's pathing through HAMT directories). */
static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t load64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t cairn_unixfs_hamt_hash(const void *p, size_t len)
{
	const uint8_t *data = p;
	const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
	uint64_t h1 = 0, h2 = 0, k1, k2;
	size_t nblocks = len / 16, i;
	const uint8_t *tail = data + nblocks * 16;

	for (i = 0; i < nblocks; i++) {
		k1 = load64le(data + i * 16);
		k2 = load64le(data + i * 16 + 8);
		k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
		h1 = rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
		k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
		h2 = rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
	}
	k1 = k2 = 0;
	switch (len & 15) {
	case 15: k2 ^= (uint64_t)tail[14] << 48; /* fall through */
	case 14: k2 ^= (uint64_t)tail[13] << 40; /* fall through */
	case 13: k2 ^= (uint64_t)tail[12] << 32; /* fall through */
	case 12: k2 ^= (uint64_t)tail[11] << 24; /* fall through */
	case 11: k2 ^= (uint64_t)tail[10] << 16; /* fall through */
	case 10: k2 ^= (uint64_t)tail[9] << 8;   /* fall through */
	case 9:  k2 ^= (uint64_t)tail[8];
		k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
		/* fall through */
	case 8: k1 ^= (uint64_t)tail[7] << 56; /* fall through */
	case 7: k1 ^= (uint64_t)tail[6] << 48; /* fall through */
	case 6: k1 ^= (uint64_t)tail[5] << 40; /* fall through */
	case 5: k1 ^= (uint64_t)tail[4] << 32; /* fall through */
	case 4: k1 ^= (uint64_t)tail[3] << 24; /* fall through */
	case 3: k1 ^= (uint64_t)tail[2] << 16; /* fall through */
	case 2: k1 ^= (uint64_t)tail[1] << 8;  /* fall through */
	case 1: k1 ^= (uint64_t)tail[0];
		k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
	}
	h1 ^= len;
	h2 ^= len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	return h1 + h2;
}

/* The hash as the 8 bytes the slots are taken from, most significant first. */
static void murmur3_x64_64(uint8_t out[8], const uint8_t *data, size_t len)
{
	uint64_t h = cairn_unixfs_hamt_hash(data, len);

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(h >> (56 - 8 * i));
}

/* The slot of `name` at `depth`: byte `depth` of the infinite hash, whose
 * frame n > 0 is the hash of the name followed by the byte n. */
static int hamt_slot(const named_link *nl, unsigned depth, unsigned *slot)
{
	unsigned frame = depth / 8;
	uint8_t h[8];

	if (frame == 0) {
		*slot = nl->hash[depth];
		return 0;
	}
	if (frame > 255 || nl->name_len > 4096)
		return cairn_error_set(CAIRN_ETOOBIG, "unixfs: HAMT deeper than the hash allows");
	{
		uint8_t buf[4097];

		memcpy(buf, nl->name, nl->name_len);
		buf[nl->name_len] = (uint8_t)frame;
		murmur3_x64_64(h, buf, nl->name_len + 1);
	}
	*slot = h[depth % 8];
	return 0;
}

typedef struct slotted {
	named_link *nl;
	unsigned slot;
} slotted;

static int cmp_slotted(const void *a, const void *b)
{
	const slotted *x = a, *y = b;

	if (x->slot != y->slot)
		return x->slot < y->slot ? -1 : 1;
	return strcmp(x->nl->name, y->nl->name);
}

/* One shard over links[0..n), all sharing the hash prefix of `depth`
 * bytes; children shards are emitted first. */
static int hamt_shard(importer *im, dag_link *out, named_link *links, size_t n, unsigned depth)
{
	slotted *s = cairn_malloc(n * sizeof(*s));
	uint8_t bitfield[HAMT_FANOUT / 8];
	cairn_buf enc = {0};
	uint64_t tsize = 0;
	cairn_unixfs_data d;
	size_t i, j, first;
	int rc = 0;

	if (!s)
		return CAIRN_ENOMEM;
	if (depth > 64) {
		rc = cairn_error_set(CAIRN_ETOOBIG, "unixfs: HAMT deeper than 64 levels");
		goto out;
	}
	for (i = 0; i < n; i++) {
		s[i].nl = &links[i];
		if ((rc = hamt_slot(&links[i], depth, &s[i].slot)))
			goto out;
	}
	if (n > 1)
		qsort(s, n, sizeof(*s), cmp_slotted);
	memset(bitfield, 0, sizeof(bitfield));
	for (i = 0; i < n; i = j) {
		char prefix[3];

		for (j = i + 1; j < n && s[j].slot == s[i].slot; j++)
			;
		bitfield[sizeof(bitfield) - 1 - s[i].slot / 8] |= (uint8_t)(1u << (s[i].slot % 8));
		snprintf(prefix, sizeof(prefix), "%02X", s[i].slot);
		if (j - i == 1) {
			named_link *nl = s[i].nl;
			char *name = cairn_malloc(2 + nl->name_len);

			if (!name) {
				rc = CAIRN_ENOMEM;
				goto out;
			}
			memcpy(name, prefix, 2);
			memcpy(name + 2, nl->name, nl->name_len);
			pb_link(&enc, &nl->ln.cid, name, 2 + nl->name_len, nl->ln.tsize);
			cairn_free(name);
			tsize += nl->ln.tsize;
		} else {
			named_link *sub = cairn_malloc((j - i) * sizeof(*sub));
			dag_link child;

			if (!sub) {
				rc = CAIRN_ENOMEM;
				goto out;
			}
			for (first = i; first < j; first++)
				sub[first - i] = *s[first].nl;
			rc = hamt_shard(im, &child, sub, j - i, depth + 1);
			cairn_free(sub);
			if (rc)
				goto out;
			pb_link(&enc, &child.cid, prefix, 2, child.tsize);
			tsize += child.tsize;
		}
	}
	memset(&d, 0, sizeof(d));
	d.type = CAIRN_UNIXFS_HAMT_SHARD;
	for (i = 0; i < sizeof(bitfield) && !bitfield[i]; i++)
		;
	d.has_data = i < sizeof(bitfield);
	d.data = bitfield + i;
	d.data_len = sizeof(bitfield) - i;
	d.has_hash_type = true;
	d.hash_type = CAIRN_UNIXFS_HAMT_MURMUR3;
	d.has_fanout = true;
	d.fanout = HAMT_FANOUT;
	cairn_buf_clear(&im->enc);
	if (enc.len)
		cairn_buf_append(&im->enc, enc.data, enc.len);
	pb_data(im, &d);
	if ((rc = enc.err ? enc.err : im->enc.err))
		goto out;
	rc = emit(im, out, CAIRN_CODEC_DAG_PB, im->enc.data, im->enc.len, tsize, 0);
out:
	cairn_buf_free(&enc);
	cairn_free(s);
	return rc;
}

static bool should_shard(const importer *im, const named_link *links, size_t n)
{
	uint64_t bytes = 0;

	if (im->p->shard_rule == CAIRN_UNIXFS_SHARD_ENTRIES)
		return n > im->p->shard_threshold;
	/* ipfs-unixfs-importer's estimate: name and CID bytes of the links it
	 * has CIDs for when it checks, which are the files and the directories
	 * given with no entries below them. */
	for (size_t i = 0; i < n; i++)
		if (!links[i].is_dir || links[i].childless)
			bytes += links[i].name_len + links[i].ln.cid.len;
	return bytes > im->p->shard_threshold;
}

static int import_entry(importer *im, dag_link *out, entry *e);

static int import_dir(importer *im, dag_link *out, entry *dir)
{
	named_link *links = NULL;
	uint64_t tsize = 0;
	size_t n = dir->nkids;
	int rc = 0;

	if (n > 1)
		qsort(dir->kids, n, sizeof(*dir->kids), cmp_entry);
	if (n && !(links = cairn_calloc(n, sizeof(*links))))
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		entry *kid = dir->kids[i];

		if ((rc = import_entry(im, &links[i].ln, kid)))
			goto out;
		links[i].name = kid->name;
		links[i].name_len = strlen(kid->name);
		links[i].is_dir = kid->is_dir;
		links[i].childless = kid->is_dir && kid->nkids == 0;
		murmur3_x64_64(links[i].hash, (const uint8_t *)kid->name, links[i].name_len);
	}
	im->res->dirs++;
	if (should_shard(im, links, n)) {
		rc = hamt_shard(im, out, links, n, 0);
		goto out;
	}
	if (n > 1)
		qsort(links, n, sizeof(*links), cmp_named);
	cairn_buf_clear(&im->enc);
	for (size_t i = 0; i < n; i++) {
		pb_link(&im->enc, &links[i].ln.cid, links[i].name, links[i].name_len,
			links[i].ln.tsize);
		tsize += links[i].ln.tsize;
	}
	{
		cairn_unixfs_data d;

		memset(&d, 0, sizeof(d));
		d.type = CAIRN_UNIXFS_DIRECTORY;
		pb_data(im, &d);
	}
	if ((rc = im->enc.err))
		goto out;
	rc = emit(im, out, CAIRN_CODEC_DAG_PB, im->enc.data, im->enc.len, tsize, 0);
out:
	cairn_free(links);
	return rc;
}

static int import_path_file(importer *im, dag_link *out, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = import_file(im, out, fd, path);
	close(fd);
	return rc;
}

static int import_entry(importer *im, dag_link *out, entry *e)
{
	if (e->is_dir)
		return import_dir(im, out, e);
	return import_path_file(im, out, e->path);
}

/* ------------------------------------------------------------ listing */

static bool hidden_name(const importer *im, const char *name)
{
	return !im->p->hidden && name[0] == '.';
}

/* Lists the directory at `path` into `dir` (kubo: the tree as it is, each
 * directory an entry) or, for ipfs-car, appends the files found to `files`
 * (paths only: ipfs-car knows only files). */
typedef struct path_list {
	char **v;
	size_t n, cap;
} path_list;

static int path_list_add(path_list *l, const char *p)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		char **v = cairn_realloc(l->v, ncap * sizeof(*v));

		if (!v)
			return CAIRN_ENOMEM;
		l->v = v;
		l->cap = ncap;
	}
	if (!(l->v[l->n] = cairn_strndup(p, strlen(p))))
		return CAIRN_ENOMEM;
	l->n++;
	return 0;
}

static void path_list_free(path_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		cairn_free(l->v[i]);
	cairn_free(l->v);
}

static int list_dir(importer *im, const char *path, entry *dir, path_list *files, unsigned depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > 256)
		return cairn_error_set(CAIRN_ETOOBIG, "%s: directories nested too deep", path);
	if (!(d = opendir(path)))
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	while ((errno = 0, de = readdir(d))) {
		char sub[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    hidden_name(im, de->d_name))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= sizeof(sub)) {
			rc = cairn_error_set(CAIRN_ETOOBIG, "%s/%s: path too long", path, de->d_name);
			break;
		}
		if (lstat(sub, &st) < 0) {
			rc = cairn_error_set(CAIRN_EIO, "%s: %s", sub, strerror(errno));
			break;
		}
		if (S_ISREG(st.st_mode)) {
			if (files)
				rc = path_list_add(files, sub);
			else {
				entry *e = entry_new(de->d_name, strlen(de->d_name), sub, false);

				rc = e ? entry_add(dir, e) : CAIRN_ENOMEM;
			}
		} else if (S_ISDIR(st.st_mode)) {
			entry *e = NULL;

			if (!files) {
				if (!(e = entry_new(de->d_name, strlen(de->d_name), sub, true)) ||
				    (rc = entry_add(dir, e))) {
					rc = rc ? rc : CAIRN_ENOMEM;
					break;
				}
			}
			rc = list_dir(im, sub, e, files, depth + 1);
		} else {
			cairn_log(CAIRN_LOG_INFO, "%s: skipped: not a regular file or directory", sub);
		}
		if (rc)
			break;
	}
	if (!rc && errno)
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	closedir(d);
	return rc;
}

/* `path` made absolute and lexically clean, as node's path.resolve does. */
static int resolve(char *out, size_t cap, const char *path)
{
	char buf[PATH_MAX * 2], *save = NULL, *tok;
	size_t len = 0;

	if (path[0] == '/')
		snprintf(buf, sizeof(buf), "%s", path);
	else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			return cairn_error_set(CAIRN_EIO, "getcwd: %s", strerror(errno));
		snprintf(buf, sizeof(buf), "%s/%s", cwd, path);
	}
	out[0] = 0;
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..")) {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			out[len] = 0;
			continue;
		}
		if (len + 1 + strlen(tok) + 1 > cap)
			return cairn_error_set(CAIRN_ETOOBIG, "%s: path too long", path);
		out[len++] = '/';
		strcpy(out + len, tok);
		len += strlen(tok);
	}
	if (!len)
		strcpy(out, "/");
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s && s[1] ? s + 1 : path;
}

/* ipfs-car: every file below the inputs, named relative to the deepest
 * directory holding them all (files-from-path), placed in a tree. */
static int ipfs_car_tree(importer *im, entry **root_out, const char *const *paths, size_t n,
			 char **single_file)
{
	path_list files = {0};
	entry *root = NULL;
	size_t common = 0;
	int rc = 0;

	*root_out = NULL;
	*single_file = NULL;
	for (size_t i = 0; i < n && !rc; i++) {
		char abs[PATH_MAX];
		struct stat st;

		if ((rc = resolve(abs, sizeof(abs), paths[i])))
			break;
		if (stat(abs, &st) < 0) {
			rc = cairn_error_set(CAIRN_EIO, "%s: %s", paths[i], strerror(errno));
			break;
		}
		if (hidden_name(im, base_name(abs)))
			continue;
		if (S_ISREG(st.st_mode))
			rc = path_list_add(&files, abs);
		else if (S_ISDIR(st.st_mode))
			rc = list_dir(im, abs, NULL, &files, 0);
		else
			cairn_log(CAIRN_LOG_INFO, "%s: skipped: not a regular file or directory",
				  paths[i]);
	}
	if (rc)
		goto out;
	/* The common parent: the longest run of whole directory components
	 * every file's directory shares (lengths exclude the final '/'). */
	for (size_t i = 0; i < files.n; i++) {
		const char *f = files.v[i], *first = files.v[0];
		size_t dirlen = (size_t)(strrchr(f, '/') - f), m = 0, lim;

		if (i == 0) {
			common = dirlen;
			continue;
		}
		lim = common < dirlen ? common : dirlen;
		while (m < lim && f[m] == first[m])
			m++;
		if (m == lim && (m == common || first[m] == '/') && (m == dirlen || f[m] == '/'))
			common = m;
		else {
			while (m > 0 && first[m] != '/')
				m--;
			common = m;
		}
	}
	if (files.n == 1 && !im->p->wrap) {
		*single_file = files.v[0];
		files.v[0] = NULL;
		goto out;
	}
	if (!(root = entry_new("", 0, NULL, true))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < files.n && !rc; i++) {
		const char *rel = files.v[i] + common + 1;
		entry *dir = root;

		for (;;) {
			const char *slash = strchr(rel, '/');

			if (!slash) {
				entry *e = entry_new(rel, strlen(rel), files.v[i], false);

				if (!e) {
					rc = CAIRN_ENOMEM;
					break;
				}
				if (entry_find(dir, rel, strlen(rel))) {
					entry_free(e);
					rc = cairn_error_set(CAIRN_EEXISTS, "%s: named twice", files.v[i]);
					break;
				}
				rc = entry_add(dir, e);
				break;
			}
			entry *sub = entry_find(dir, rel, (size_t)(slash - rel));

			if (!sub) {
				if (!(sub = entry_new(rel, (size_t)(slash - rel), NULL, true))) {
					rc = CAIRN_ENOMEM;
					break;
				}
				if ((rc = entry_add(dir, sub)))
					break;
			} else if (!sub->is_dir) {
				rc = cairn_error_set(CAIRN_EEXISTS,
						     "%s: \"%.*s\" is both a file and a directory",
						     files.v[i], (int)(slash - rel), rel);
				break;
			}
			dir = sub;
			rel = slash + 1;
		}
	}
out:
	path_list_free(&files);
	if (rc)
		entry_free(root);
	else
		*root_out = root;
	return rc;
}

/* kubo: each input as itself; several inputs, or `wrap`, in a directory
 * named by their base names. */
static int kubo_tree(importer *im, entry **root_out, const char *const *paths, size_t n)
{
	entry *wrapper = NULL, *root = NULL;
	int rc = 0;

	*root_out = NULL;
	if ((n > 1 || im->p->wrap) && !(wrapper = entry_new("", 0, NULL, true)))
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *name = base_name(paths[i]);
		struct stat st;
		entry *e;

		if (stat(paths[i], &st) < 0) {
			rc = cairn_error_set(CAIRN_EIO, "%s: %s", paths[i], strerror(errno));
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			rc = cairn_error_set(CAIRN_EINVAL, "%s: not a regular file or directory",
					     paths[i]);
			break;
		}
		if (!(e = entry_new(name, strlen(name), paths[i], S_ISDIR(st.st_mode)))) {
			rc = CAIRN_ENOMEM;
			break;
		}
		if (e->is_dir && (rc = list_dir(im, paths[i], e, NULL, 0))) {
			entry_free(e);
			break;
		}
		if (!wrapper) {
			root = e;
			break;
		}
		if (entry_find(wrapper, e->name, strlen(e->name))) {
			rc = cairn_error_set(CAIRN_EEXISTS, "%s: a second input named \"%s\"",
					     paths[i], e->name);
			entry_free(e);
			break;
		}
		if ((rc = entry_add(wrapper, e)))
			break;
	}
	if (rc) {
		entry_free(wrapper);
		return rc;
	}
	*root_out = wrapper ? wrapper : root;
	return 0;
}

/* ---------------------------------------------------------------- API */

static int importer_init(importer *im, cairn_unixfs_import_result *res,
			 const cairn_unixfs_params *p, cairn_unixfs_put_fn put, void *payload)
{
	memset(im, 0, sizeof(*im));
	memset(res, 0, sizeof(*res));
	if (!p->chunk_size || p->chunk_size > (64u << 20))
		return cairn_error_set(CAIRN_EINVAL, "unixfs: chunk size must be 1 byte to 64 MiB");
	if (p->width < 2 || p->width > (1u << 16))
		return cairn_error_set(CAIRN_EINVAL, "unixfs: width must be 2 to 65536");
	if (p->cid_version > 1)
		return cairn_error_set(CAIRN_EINVAL, "unixfs: CID version must be 0 or 1");
	im->p = p;
	im->put = put;
	im->payload = payload;
	im->res = res;
	return cairn_pool_new(&im->pool, p->threads);
}

static void importer_free(importer *im)
{
	cairn_pool_free(im->pool);
	importer_buffers_free(im);
	cairn_buf_free(&im->enc);
	cairn_buf_free(&im->data);
}

int cairn_unixfs_import_fd(cairn_unixfs_import_result *out, const cairn_unixfs_params *params,
			   int fd, const char *name, cairn_unixfs_put_fn put, void *payload)
{
	importer im;
	dag_link root;
	int rc;

	if ((rc = importer_init(&im, out, params, put, payload)))
		return rc;
	if (!(rc = import_file(&im, &root, fd, name ? name : "input"))) {
		out->root = root.cid;
		out->tsize = root.tsize;
	}
	importer_free(&im);
	return rc;
}

int cairn_unixfs_import(cairn_unixfs_import_result *out, const cairn_unixfs_params *params,
			const char *const *paths, size_t npaths, cairn_unixfs_put_fn put,
			void *payload, cairn_unixfs_progress_fn progress, void *progress_payload)
{
	entry *tree = NULL;
	char *single = NULL;
	importer im;
	dag_link root;
	int rc;

	if (!npaths)
		return cairn_error_set(CAIRN_EINVAL, "unixfs: nothing to import");
	if ((rc = importer_init(&im, out, params, put, payload)))
		return rc;
	im.progress = progress;
	im.progress_payload = progress_payload;
	if (params->naming == CAIRN_UNIXFS_PROFILE_KUBO)
		rc = kubo_tree(&im, &tree, paths, npaths);
	else
		rc = ipfs_car_tree(&im, &tree, paths, npaths, &single);
	if (!rc)
		rc = single ? import_path_file(&im, &root, single) : import_entry(&im, &root, tree);
	if (!rc) {
		out->root = root.cid;
		out->tsize = root.tsize;
	}
	entry_free(tree);
	cairn_free(single);
	importer_free(&im);
	return rc;
}
