/* test_store.c: unit tests for the blockstore interface through a fake store
 * that counts its calls: the wrappers, the DAG walk, GC, allocation failures. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

/* ------------------------------------------------------------ the fake
 *
 * A chained hash map from CID to block, allocated with plain malloc so that
 * injected allocation failures hit only the code under test. Every
 * operation counts its calls; `ops` is the fake's own copy of the table so a
 * test can take operations away.
 */
typedef struct entry {
	struct entry *next;
	cairn_cid cid;
	uint8_t *data;
	size_t len;
} entry;

#define NBUCKETS 64

typedef struct {
	unsigned get, get_size, has, put, put_many, del, iterate, flush, get_many, locate_many;
	unsigned identity; /* calls that carried an identity CID: must stay 0 */
} counts;

typedef struct {
	cairn_store base;
	cairn_store_ops ops;
	entry *buckets[NBUCKETS];
	size_t nblocks;
	counts calls;
	int *freed; /* incremented by free, if set */
	int fail_get; /* returned by get when non-zero */
} fake;

static fake *as_fake(cairn_store *s)
{
	return (fake *)s;
}

static entry **slot_of(fake *f, const cairn_cid *cid)
{
	entry **e = &f->buckets[cairn_cid_hash(cid) % NBUCKETS];

	while (*e && !cairn_cid_equal(&(*e)->cid, cid))
		e = &(*e)->next;
	return e;
}

static void note(fake *f, const cairn_cid *cid)
{
	if (cid->mh_code == CAIRN_MH_IDENTITY)
		f->calls.identity++;
}

static int fake_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	fake *f = as_fake(s);
	entry *e;

	f->calls.get++;
	note(f, cid);
	if (f->fail_get)
		return cairn_error_set(f->fail_get, "fake: get fails");
	if (!(e = *slot_of(f, cid)))
		return cairn_error_set(CAIRN_ENOTFOUND, "fake: not found");
	cairn_buf_clear(out);
	return cairn_buf_append(out, e->data, e->len);
}

static int fake_get_size(cairn_store *s, uint64_t *size_out, const cairn_cid *cid)
{
	fake *f = as_fake(s);
	entry *e;

	f->calls.get_size++;
	note(f, cid);
	if (!(e = *slot_of(f, cid)))
		return cairn_error_set(CAIRN_ENOTFOUND, "fake: not found");
	*size_out = e->len;
	return 0;
}

static int fake_has(cairn_store *s, const cairn_cid *cid)
{
	fake *f = as_fake(s);

	f->calls.has++;
	note(f, cid);
	return *slot_of(f, cid) != NULL;
}

static int insert(fake *f, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	entry **slot = slot_of(f, cid), *e;

	if (*slot)
		return 0;
	e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->cid = *cid;
	e->data = malloc(len ? len : 1);
	assert_non_null(e->data);
	if (len)
		memcpy(e->data, data, len);
	e->len = len;
	*slot = e;
	f->nblocks++;
	return 0;
}

static int fake_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	fake *f = as_fake(s);

	f->calls.put++;
	note(f, cid);
	return insert(f, cid, data, len);
}

static int fake_put_many(cairn_store *s, const cairn_block *blocks, size_t n)
{
	fake *f = as_fake(s);

	f->calls.put_many++;
	for (size_t i = 0; i < n; i++) {
		note(f, &blocks[i].cid);
		insert(f, &blocks[i].cid, blocks[i].data, blocks[i].len);
	}
	return 0;
}

static int fake_del(cairn_store *s, const cairn_cid *cid)
{
	fake *f = as_fake(s);
	entry **slot = slot_of(f, cid), *e = *slot;

	f->calls.del++;
	note(f, cid);
	if (!e)
		return cairn_error_set(CAIRN_ENOTFOUND, "fake: not found");
	*slot = e->next;
	free(e->data);
	free(e);
	f->nblocks--;
	return 0;
}

static int fake_iterate(cairn_store *s, cairn_store_iter_fn fn, void *payload)
{
	fake *f = as_fake(s);

	f->calls.iterate++;
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (entry *e = f->buckets[b]; e; e = e->next) {
			int rc = fn(&e->cid, payload);

			if (rc)
				return rc;
		}
	}
	return 0;
}

static int fake_flush(cairn_store *s, const cairn_cid *root)
{
	(void)root;
	as_fake(s)->calls.flush++;
	return 0;
}

static void fake_free(cairn_store *s)
{
	fake *f = as_fake(s);

	for (size_t b = 0; b < NBUCKETS; b++) {
		for (entry *e = f->buckets[b], *next; e; e = next) {
			next = e->next;
			free(e->data);
			free(e);
		}
	}
	if (f->freed)
		(*f->freed)++;
	free(f);
}

static int fake_get_many(cairn_store *s, const cairn_cid *const *cids, size_t n,
			 cairn_buf *scratch, cairn_store_block_fn fn, void *payload)
{
	fake *f = as_fake(s);

	(void)scratch;
	f->calls.get_many++;
	for (size_t i = 0; i < n; i++) {
		entry *e = *slot_of(f, cids[i]);
		int rc;

		note(f, cids[i]);
		if (!e)
			rc = fn(i, cairn_error_set(CAIRN_ENOTFOUND, "fake: not found"), NULL, 0, payload);
		else
			rc = fn(i, 0, e->data, e->len, payload);
		if (rc)
			return rc;
	}
	return 0;
}

/* The fake numbers its blocks by their first digest byte. */
#define FAKE_POSITIONS 256

static uint64_t fake_positions(cairn_store *s)
{
	(void)s;
	return FAKE_POSITIONS;
}

static int fake_locate_many(cairn_store *s, const cairn_cid *const *cids, size_t n, uint64_t *pos)
{
	fake *f = as_fake(s);

	f->calls.locate_many++;
	for (size_t i = 0; i < n; i++) {
		note(f, cids[i]);
		pos[i] = *slot_of(f, cids[i]) ? cids[i]->bytes[cids[i]->digest_off]
					       : CAIRN_STORE_NO_POSITION;
	}
	return 0;
}

static const cairn_store_ops fake_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "fake",
	.get = fake_get,
	.get_size = fake_get_size,
	.has = fake_has,
	.put = fake_put,
	.put_many = fake_put_many,
	.del = fake_del,
	.iterate = fake_iterate,
	.flush = fake_flush,
	.free = fake_free,
	.get_many = fake_get_many,
	.positions = fake_positions,
	.locate_many = fake_locate_many,
};

static fake *fake_new(void)
{
	fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ops = fake_ops;
	f->base.ops = &f->ops;
	return f;
}

static void reset_counts(fake *f)
{
	memset(&f->calls, 0, sizeof(f->calls));
}

static bool fake_holds(fake *f, const cairn_cid *cid)
{
	return *slot_of(f, cid) != NULL;
}

/* ------------------------------------------------------------- blocks */

typedef struct {
	cairn_cid cid;
	cairn_buf bytes;
} blk;

static void blk_free(blk *b)
{
	cairn_buf_free(&b->bytes);
}

static void raw_block(blk *b, const char *text)
{
	b->bytes = (cairn_buf)CAIRN_BUF_INIT;
	assert_int_equal(cairn_buf_puts(&b->bytes, text), 0);
	assert_int_equal(cairn_cid_compute(&b->cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					   b->bytes.data, b->bytes.len), 0);
}

static void identity_cid(cairn_cid *out, uint64_t codec, const uint8_t *p, size_t n)
{
	assert_int_equal(cairn_cid_from_digest(out, 1, codec, CAIRN_MH_IDENTITY, p, n), 0);
}

/* A DAG-CBOR block {"l": [links in order], "n": name}: the links come out
 * in list order, which is the order a walk must follow. */
static void cbor_block(blk *b, const char *name, const cairn_cid *const *links, size_t nlinks)
{
	cairn_node items[8], node;
	cairn_map_entry e[2];

	assert_true(nlinks <= 8);
	for (size_t i = 0; i < nlinks; i++) {
		items[i].kind = CAIRN_KIND_LINK;
		items[i].v.link = links[i];
	}
	e[0].key = (const uint8_t *)"l";
	e[0].key_len = 1;
	e[0].value.kind = CAIRN_KIND_LIST;
	e[0].value.v.list.items = items;
	e[0].value.v.list.len = nlinks;
	e[1].key = (const uint8_t *)"n";
	e[1].key_len = 1;
	e[1].value.kind = CAIRN_KIND_STRING;
	e[1].value.v.bytes.ptr = (const uint8_t *)name;
	e[1].value.v.bytes.len = strlen(name);
	node.kind = CAIRN_KIND_MAP;
	node.v.map.entries = e;
	node.v.map.len = 2;
	b->bytes = (cairn_buf)CAIRN_BUF_INIT;
	assert_int_equal(cairn_dagcbor_encode(&b->bytes, &node), 0);
	assert_int_equal(cairn_cid_compute(&b->cid, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256,
					   b->bytes.data, b->bytes.len), 0);
}

/* A DAG-PB block (CIDv0) whose links are named "0", "1", ... (sorted, as
 * the encoder requires) and whose Data is `data`. */
static void pb_block(blk *b, const char *data, const cairn_cid *const *links, size_t nlinks)
{
	static const char *names[] = {"0", "1", "2", "3", "4", "5", "6", "7"};
	cairn_map_entry le[8][2], e[2];
	cairn_node items[8], node;

	assert_true(nlinks <= 8);
	for (size_t i = 0; i < nlinks; i++) {
		le[i][0].key = (const uint8_t *)"Hash";
		le[i][0].key_len = 4;
		le[i][0].value.kind = CAIRN_KIND_LINK;
		le[i][0].value.v.link = links[i];
		le[i][1].key = (const uint8_t *)"Name";
		le[i][1].key_len = 4;
		le[i][1].value.kind = CAIRN_KIND_STRING;
		le[i][1].value.v.bytes.ptr = (const uint8_t *)names[i];
		le[i][1].value.v.bytes.len = 1;
		items[i].kind = CAIRN_KIND_MAP;
		items[i].v.map.entries = le[i];
		items[i].v.map.len = 2;
	}
	e[0].key = (const uint8_t *)"Data";
	e[0].key_len = 4;
	e[0].value.kind = CAIRN_KIND_BYTES;
	e[0].value.v.bytes.ptr = (const uint8_t *)data;
	e[0].value.v.bytes.len = strlen(data);
	e[1].key = (const uint8_t *)"Links";
	e[1].key_len = 5;
	e[1].value.kind = CAIRN_KIND_LIST;
	e[1].value.v.list.items = items;
	e[1].value.v.list.len = nlinks;
	node.kind = CAIRN_KIND_MAP;
	node.v.map.entries = e;
	node.v.map.len = 2;
	b->bytes = (cairn_buf)CAIRN_BUF_INIT;
	assert_int_equal(cairn_dagpb_encode(&b->bytes, &node), 0);
	assert_int_equal(cairn_cid_compute(&b->cid, 0, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256,
					   b->bytes.data, b->bytes.len), 0);
}

static void put_blk(fake *f, const blk *b)
{
	assert_int_equal(cairn_store_put(&f->base, &b->cid, b->bytes.data, b->bytes.len), 0);
}

/* ---------------------------------------------------------- the DAG
 *
 * A diamond of DAG-CBOR with a DAG-PB branch, raw leaves and an identity
 * link, plus two blocks nothing reaches:
 *
 *   root (cbor) -> a, b, id
 *   a (cbor)    -> c, leaf1
 *   b (cbor)    -> c, pb
 *   c (cbor)    -> leaf2
 *   pb (dag-pb) -> leaf1, leaf3
 *   id: an identity CID whose digest is a DAG-CBOR block linking to leaf3
 *   dead1 (cbor) -> leaf1;  dead2 (raw)
 *
 * Depth first, links in block order, each block once:
 *   root a c leaf2 leaf1 b pb leaf3 id
 * (id's own link, leaf3, is seen already).
 */
enum { ROOT, A, B, C, PB, LEAF1, LEAF2, LEAF3, DEAD1, DEAD2, NBLK };

typedef struct {
	blk b[NBLK];
	blk inner;      /* the block inlined in `id` */
	cairn_cid id;
} dag;

static void dag_build(dag *d)
{
	const cairn_cid *l[3];

	raw_block(&d->b[LEAF1], "leaf one");
	raw_block(&d->b[LEAF2], "leaf two");
	raw_block(&d->b[LEAF3], "leaf three");
	raw_block(&d->b[DEAD2], "dead raw");
	l[0] = &d->b[LEAF3].cid;
	cbor_block(&d->inner, "inline", l, 1);
	identity_cid(&d->id, CAIRN_CODEC_DAG_CBOR, d->inner.bytes.data, d->inner.bytes.len);
	l[0] = &d->b[LEAF2].cid;
	cbor_block(&d->b[C], "c", l, 1);
	l[0] = &d->b[LEAF1].cid;
	l[1] = &d->b[LEAF3].cid;
	pb_block(&d->b[PB], "pb data", l, 2);
	l[0] = &d->b[C].cid;
	l[1] = &d->b[LEAF1].cid;
	cbor_block(&d->b[A], "a", l, 2);
	l[0] = &d->b[C].cid;
	l[1] = &d->b[PB].cid;
	cbor_block(&d->b[B], "b", l, 2);
	l[0] = &d->b[A].cid;
	l[1] = &d->b[B].cid;
	l[2] = &d->id;
	cbor_block(&d->b[ROOT], "root", l, 3);
	l[0] = &d->b[LEAF1].cid;
	cbor_block(&d->b[DEAD1], "dead", l, 1);
}

static void dag_free(dag *d)
{
	for (int i = 0; i < NBLK; i++)
		blk_free(&d->b[i]);
	blk_free(&d->inner);
}

static fake *dag_store(const dag *d)
{
	fake *f = fake_new();

	for (int i = 0; i < NBLK; i++)
		put_blk(f, &d->b[i]);
	reset_counts(f);
	return f;
}

/* Records the CIDs a walk reaches. */
typedef struct {
	cairn_cid v[32];
	size_t n;
	size_t stop_after; /* 0: never */
} visits;

static int record(const cairn_cid *cid, void *payload)
{
	visits *vs = payload;

	assert_true(vs->n < 32);
	vs->v[vs->n++] = *cid;
	if (vs->stop_after && vs->n == vs->stop_after)
		return 42;
	return 0;
}

static int count(const cairn_cid *cid, void *payload)
{
	(void)cid;
	(*(size_t *)payload)++;
	return 0;
}

/* ----------------------------------------------------------- wrappers */

static void test_identity_not_passed_on(void **state)
{
	static const uint8_t payload[] = "inline bytes";
	fake *f = fake_new();
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_block blocks[1];
	uint64_t size = 0;
	cairn_cid id;

	(void)state;
	identity_cid(&id, CAIRN_CODEC_RAW, payload, sizeof(payload) - 1);
	assert_int_equal(cairn_buf_puts(&out, "old contents to be replaced"), 0);
	assert_int_equal(cairn_store_get(&f->base, &out, &id), 0);
	assert_int_equal(out.len, sizeof(payload) - 1);
	assert_memory_equal(out.data, payload, out.len);
	assert_int_equal(cairn_store_get_size(&f->base, &size, &id), 0);
	assert_int_equal(size, sizeof(payload) - 1);
	assert_int_equal(cairn_store_has(&f->base, &id), 1);
	assert_int_equal(cairn_store_put(&f->base, &id, payload, sizeof(payload) - 1), 0);
	assert_int_equal(cairn_store_del(&f->base, &id), 0);
	/* put_many without the implementation's own goes through put. */
	f->ops.put_many = NULL;
	blocks[0].cid = id;
	blocks[0].data = payload;
	blocks[0].len = sizeof(payload) - 1;
	assert_int_equal(cairn_store_put_many(&f->base, blocks, 1), 0);
	/* An empty identity digest is a block of zero bytes. */
	identity_cid(&id, CAIRN_CODEC_RAW, payload, 0);
	assert_int_equal(cairn_store_get(&f->base, &out, &id), 0);
	assert_int_equal(out.len, 0);

	assert_int_equal(f->calls.get, 0);
	assert_int_equal(f->calls.get_size, 0);
	assert_int_equal(f->calls.has, 0);
	assert_int_equal(f->calls.put, 0);
	assert_int_equal(f->calls.put_many, 0);
	assert_int_equal(f->calls.del, 0);
	assert_int_equal(f->calls.identity, 0);
	assert_int_equal(f->nblocks, 0);
	cairn_buf_free(&out);
	cairn_store_free(&f->base);
}

/* put_many with the implementation's own put_many: the identity blocks in
 * the batch must be left out before it is called, as the interface says
 * implementations never see them. */
static void test_put_many_drops_identity(void **state)
{
	static const uint8_t inl[] = "x";
	fake *f = fake_new();
	cairn_block blocks[3];
	blk r1, r2;

	(void)state;
	raw_block(&r1, "one");
	raw_block(&r2, "two");
	blocks[0] = (cairn_block){r1.cid, r1.bytes.data, r1.bytes.len};
	identity_cid(&blocks[1].cid, CAIRN_CODEC_RAW, inl, 1);
	blocks[1].data = inl;
	blocks[1].len = 1;
	blocks[2] = (cairn_block){r2.cid, r2.bytes.data, r2.bytes.len};
	assert_int_equal(cairn_store_put_many(&f->base, blocks, 3), 0);
	assert_int_equal(f->nblocks, 2);
	assert_true(fake_holds(f, &r1.cid));
	assert_true(fake_holds(f, &r2.cid));
	assert_int_equal(f->calls.identity, 0);
	blk_free(&r1);
	blk_free(&r2);
	cairn_store_free(&f->base);
}

static void test_put_many_fallback(void **state)
{
	static const uint8_t inl[] = "x";
	fake *f = fake_new();
	cairn_block blocks[3];
	blk r1, r2;

	(void)state;
	f->ops.put_many = NULL;
	raw_block(&r1, "one");
	raw_block(&r2, "two");
	blocks[0] = (cairn_block){r1.cid, r1.bytes.data, r1.bytes.len};
	identity_cid(&blocks[1].cid, CAIRN_CODEC_RAW, inl, 1);
	blocks[1].data = inl;
	blocks[1].len = 1;
	blocks[2] = (cairn_block){r2.cid, r2.bytes.data, r2.bytes.len};
	assert_int_equal(cairn_store_put_many(&f->base, blocks, 3), 0);
	assert_int_equal(f->calls.put, 2);
	assert_int_equal(f->calls.put_many, 0);
	assert_int_equal(f->calls.identity, 0);
	assert_int_equal(f->nblocks, 2);
	assert_int_equal(cairn_store_put_many(&f->base, blocks, 0), 0);
	assert_int_equal(f->calls.put, 2);

	/* Neither put_many nor put: unsupported, naming the store. */
	f->ops.put = NULL;
	assert_int_equal(cairn_store_put_many(&f->base, blocks, 3), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "fake"));
	blk_free(&r1);
	blk_free(&r2);
	cairn_store_free(&f->base);
}

/* get_many answers CID by CID in order, identity CIDs from themselves
 * (the store's get_many sees runs of the others), through the store's own
 * get_many when its table is of version 2, else through get. */
typedef struct {
	const cairn_cid *cids[5];
	const blk *want[5];      /* NULL: not found */
	size_t calls;
	size_t stop_at;
} many_seen;

static int many_check(size_t i, int rc, const uint8_t *data, size_t len, void *payload)
{
	many_seen *m = payload;

	assert_int_equal(i, m->calls);
	m->calls++;
	if (!m->want[i]) {
		assert_int_equal(rc, CAIRN_ENOTFOUND);
		assert_null(data);
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(len, m->want[i]->bytes.len);
		assert_memory_equal(data, m->want[i]->bytes.data, len);
	}
	return m->calls == m->stop_at ? 55 : 0;
}

/* locate_many: identity CIDs have no position and the store sees runs of
 * the others; a store without the operations (or of an older table)
 * numbers nothing. */
static void test_locate_many(void **state)
{
	static const uint8_t inl[] = "inline";
	fake *f = fake_new();
	blk r1, r2, gone;
	cairn_cid id;
	const cairn_cid *cids[5];
	uint64_t pos[5];

	(void)state;
	raw_block(&r1, "one");
	raw_block(&r2, "two");
	raw_block(&gone, "never put");
	identity_cid(&id, CAIRN_CODEC_RAW, inl, sizeof(inl) - 1);
	assert_int_equal(cairn_store_put(&f->base, &r1.cid, r1.bytes.data, r1.bytes.len), 0);
	assert_int_equal(cairn_store_put(&f->base, &r2.cid, r2.bytes.data, r2.bytes.len), 0);
	cids[0] = &r1.cid;
	cids[1] = &id;
	cids[2] = &r2.cid;
	cids[3] = &gone.cid;
	cids[4] = &r1.cid;

	reset_counts(f);
	assert_int_equal(cairn_store_positions(&f->base), FAKE_POSITIONS);
	assert_int_equal(cairn_store_locate_many(&f->base, cids, 5, pos), 0);
	assert_int_equal(f->calls.locate_many, 2); /* [r1], [r2, gone, r1] */
	assert_int_equal(f->calls.identity, 0);
	assert_int_equal(pos[0], r1.cid.bytes[r1.cid.digest_off]);
	assert_int_equal(pos[1], CAIRN_STORE_NO_POSITION);
	assert_int_equal(pos[2], r2.cid.bytes[r2.cid.digest_off]);
	assert_int_equal(pos[3], CAIRN_STORE_NO_POSITION);
	assert_int_equal(pos[4], pos[0]);
	assert_int_equal(cairn_store_locate_many(&f->base, cids, 0, pos), 0);

	for (int take = 0; take < 3; take++) {
		f->ops = fake_ops;
		if (take == 0)
			f->ops.version = 2;
		else if (take == 1)
			f->ops.positions = NULL;
		else
			f->ops.locate_many = NULL;
		reset_counts(f);
		assert_int_equal(cairn_store_positions(&f->base), 0);
		assert_int_equal(cairn_store_locate_many(&f->base, cids, 5, pos), 0);
		assert_int_equal(f->calls.locate_many, 0);
		for (size_t i = 0; i < 5; i++)
			assert_int_equal(pos[i], CAIRN_STORE_NO_POSITION);
	}
	blk_free(&r1);
	blk_free(&r2);
	blk_free(&gone);
	cairn_store_free(&f->base);
}

static void test_get_many(void **state)
{
	static const uint8_t inl[] = "inline";
	cairn_buf scratch = CAIRN_BUF_INIT;
	fake *f = fake_new();
	blk r1, r2, gone, id;
	many_seen m;

	(void)state;
	raw_block(&r1, "one");
	raw_block(&r2, "two");
	raw_block(&gone, "never put");
	identity_cid(&id.cid, CAIRN_CODEC_RAW, inl, sizeof(inl) - 1);
	id.bytes = (cairn_buf)CAIRN_BUF_INIT;
	assert_int_equal(cairn_buf_append(&id.bytes, inl, sizeof(inl) - 1), 0);
	assert_int_equal(cairn_store_put(&f->base, &r1.cid, r1.bytes.data, r1.bytes.len), 0);
	assert_int_equal(cairn_store_put(&f->base, &r2.cid, r2.bytes.data, r2.bytes.len), 0);
	m = (many_seen){{&r1.cid, &id.cid, &r2.cid, &gone.cid, &r1.cid},
			{&r1, &id, &r2, NULL, &r1}, 0, 0};

	reset_counts(f);
	assert_int_equal(cairn_store_get_many(&f->base, m.cids, 5, &scratch, many_check, &m), 0);
	assert_int_equal(m.calls, 5);
	assert_int_equal(f->calls.get_many, 2); /* [r1], [r2, gone, r1] */
	assert_int_equal(f->calls.get, 0);
	assert_int_equal(f->calls.identity, 0);

	/* A non-zero return stops it, and is returned. */
	m.calls = 0;
	m.stop_at = 3;
	assert_int_equal(cairn_store_get_many(&f->base, m.cids, 5, &scratch, many_check, &m), 55);
	assert_int_equal(m.calls, 3);

	/* Without the store's own: get after get. */
	m.calls = 0;
	m.stop_at = 0;
	reset_counts(f);
	f->ops.get_many = NULL;
	assert_int_equal(cairn_store_get_many(&f->base, m.cids, 5, &scratch, many_check, &m), 0);
	assert_int_equal(m.calls, 5);
	assert_int_equal(f->calls.get, 4);
	assert_int_equal(f->calls.identity, 0);

	/* A table of version 1 has no get_many field to read. */
	m.calls = 0;
	reset_counts(f);
	f->ops.get_many = fake_get_many;
	f->ops.version = 1;
	assert_int_equal(cairn_store_get_many(&f->base, m.cids, 5, &scratch, many_check, &m), 0);
	assert_int_equal(m.calls, 5);
	assert_int_equal(f->calls.get_many, 0);
	assert_int_equal(f->calls.get, 4);
	assert_int_equal(cairn_store_get_many(&f->base, m.cids, 0, &scratch, many_check, &m), 0);

	blk_free(&r1);
	blk_free(&r2);
	blk_free(&gone);
	cairn_buf_free(&id.bytes);
	cairn_buf_free(&scratch);
	cairn_store_free(&f->base);
}

static void test_get_size_fallback(void **state)
{
	fake *f = fake_new();
	uint64_t size = 0;
	blk r, missing;

	(void)state;
	raw_block(&r, "twelve bytes");
	raw_block(&missing, "never put");
	put_blk(f, &r);
	reset_counts(f);
	f->ops.get_size = NULL;
	assert_int_equal(cairn_store_get_size(&f->base, &size, &r.cid), 0);
	assert_int_equal(size, 12);
	assert_int_equal(f->calls.get, 1);
	size = 7;
	assert_int_equal(cairn_store_get_size(&f->base, &size, &missing.cid), CAIRN_ENOTFOUND);
	assert_int_equal(size, 7);
	assert_int_equal(f->calls.get, 2);

	/* With its own get_size, get is not touched. */
	f->ops.get_size = fake_get_size;
	reset_counts(f);
	assert_int_equal(cairn_store_get_size(&f->base, &size, &r.cid), 0);
	assert_int_equal(size, 12);
	assert_int_equal(f->calls.get, 0);
	assert_int_equal(f->calls.get_size, 1);
	blk_free(&r);
	blk_free(&missing);
	cairn_store_free(&f->base);
}

static void test_has_fallback(void **state)
{
	fake *f = fake_new();
	blk r, missing;

	(void)state;
	raw_block(&r, "present");
	raw_block(&missing, "absent");
	put_blk(f, &r);
	reset_counts(f);

	assert_int_equal(cairn_store_has(&f->base, &r.cid), 1);
	assert_int_equal(cairn_store_has(&f->base, &missing.cid), 0);
	assert_int_equal(f->calls.has, 2);
	assert_int_equal(f->calls.get_size, 0);

	f->ops.has = NULL;
	reset_counts(f);
	assert_int_equal(cairn_store_has(&f->base, &r.cid), 1);
	assert_int_equal(cairn_store_has(&f->base, &missing.cid), 0);
	assert_int_equal(f->calls.get_size, 2);
	assert_int_equal(f->calls.get, 0);

	f->ops.get_size = NULL;
	reset_counts(f);
	assert_int_equal(cairn_store_has(&f->base, &r.cid), 1);
	assert_int_equal(cairn_store_has(&f->base, &missing.cid), 0);
	assert_int_equal(f->calls.get, 2);

	/* A failure other than "not found" is passed on, not taken as absent. */
	f->fail_get = CAIRN_EIO;
	assert_int_equal(cairn_store_has(&f->base, &r.cid), CAIRN_EIO);
	f->fail_get = 0;

	f->ops.get = NULL;
	assert_int_equal(cairn_store_has(&f->base, &r.cid), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "fake"));
	blk_free(&r);
	blk_free(&missing);
	cairn_store_free(&f->base);
}

static int never(const cairn_cid *cid, void *payload)
{
	(void)cid;
	(void)payload;
	fail_msg("iterate called the callback of a store without iterate");
	return 0;
}

static void test_null_ops(void **state)
{
	cairn_store_ops ops = {CAIRN_STORE_OPS_VERSION, "bare", NULL, NULL, NULL, NULL, NULL, NULL,
			       NULL, NULL, fake_free};
	cairn_store_gc_stats st;
	cairn_buf out = CAIRN_BUF_INIT;
	uint64_t size;
	fake *f = fake_new();
	blk r;
	int freed = 0;

	(void)state;
	raw_block(&r, "x");
	f->ops = ops;
	f->freed = &freed;
	assert_string_equal(cairn_store_name(&f->base), "bare");
	assert_int_equal(cairn_store_get(&f->base, &out, &r.cid), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "bare"));
	assert_int_equal(cairn_store_get_size(&f->base, &size, &r.cid), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "bare"));
	assert_int_equal(cairn_store_has(&f->base, &r.cid), CAIRN_EUNSUPPORTED);
	assert_int_equal(cairn_store_put(&f->base, &r.cid, r.bytes.data, r.bytes.len),
			 CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "bare"));
	assert_int_equal(cairn_store_del(&f->base, &r.cid), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "bare"));
	assert_int_equal(cairn_store_iterate(&f->base, never, NULL), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "bare"));
	assert_int_equal(cairn_store_walk(&f->base, &r.cid, NULL, NULL), 0); /* raw: not fetched */
	assert_int_equal(cairn_store_gc(&st, &f->base, &r.cid, 1), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "bare"));
	assert_int_equal(st.deleted, 0);
	/* Nothing to make durable: flush succeeds. */
	assert_int_equal(cairn_store_flush(&f->base, NULL), 0);
	assert_int_equal(cairn_store_flush(&f->base, &r.cid), 0);

	f->ops.name = NULL;
	assert_string_equal(cairn_store_name(&f->base), "unnamed");
	cairn_store_free(&f->base);
	assert_int_equal(freed, 1);
	cairn_store_free(NULL);
	blk_free(&r);
	cairn_buf_free(&out);
}

static void test_calls_pass_through(void **state)
{
	fake *f = fake_new();
	cairn_buf out = CAIRN_BUF_INIT;
	size_t n = 0;
	blk r;

	(void)state;
	raw_block(&r, "through");
	put_blk(f, &r);
	assert_int_equal(f->calls.put, 1);
	assert_int_equal(cairn_store_get(&f->base, &out, &r.cid), 0);
	assert_int_equal(out.len, r.bytes.len);
	assert_memory_equal(out.data, r.bytes.data, out.len);
	assert_int_equal(cairn_store_flush(&f->base, &r.cid), 0);
	assert_int_equal(f->calls.flush, 1);
	assert_int_equal(cairn_store_iterate(&f->base, count, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(f->calls.iterate, 1);
	assert_int_equal(cairn_store_del(&f->base, &r.cid), 0);
	assert_int_equal(cairn_store_get(&f->base, &out, &r.cid), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_store_has(&f->base, &r.cid), 0);
	assert_int_equal(f->calls.get, 2);
	assert_int_equal(f->calls.del, 1);
	blk_free(&r);
	cairn_buf_free(&out);
	cairn_store_free(&f->base);
}

/* --------------------------------------------------------------- walk */

static void test_walk_order(void **state)
{
	dag d;
	fake *f;
	visits vs = {.n = 0};
	const cairn_cid *want[9];

	(void)state;
	dag_build(&d);
	f = dag_store(&d);
	want[0] = &d.b[ROOT].cid;
	want[1] = &d.b[A].cid;
	want[2] = &d.b[C].cid;
	want[3] = &d.b[LEAF2].cid;
	want[4] = &d.b[LEAF1].cid;
	want[5] = &d.b[B].cid;
	want[6] = &d.b[PB].cid;
	want[7] = &d.b[LEAF3].cid;
	want[8] = &d.id;
	assert_int_equal(cairn_store_walk(&f->base, &d.b[ROOT].cid, record, &vs), 0);
	assert_int_equal(vs.n, 9);
	for (size_t i = 0; i < 9; i++) {
		char got[CAIRN_CID_MAX_STRING], exp[CAIRN_CID_MAX_STRING];

		cairn_cid_to_string(got, &vs.v[i]);
		cairn_cid_to_string(exp, want[i]);
		if (!cairn_cid_equal(&vs.v[i], want[i]))
			fail_msg("visit %zu: got %s, want %s", i, got, exp);
	}
	/* Each block fetched once; raw leaves and the identity CID never. */
	assert_int_equal(f->calls.get, 5);
	assert_int_equal(f->calls.identity, 0);

	/* A raw root is reached without being fetched. */
	reset_counts(f);
	vs.n = 0;
	assert_int_equal(cairn_store_walk(&f->base, &d.b[LEAF1].cid, record, &vs), 0);
	assert_int_equal(vs.n, 1);
	assert_int_equal(f->calls.get, 0);

	/* A non-zero return from the callback stops the walk and comes back. */
	vs.n = 0;
	vs.stop_after = 3;
	assert_int_equal(cairn_store_walk(&f->base, &d.b[ROOT].cid, record, &vs), 42);
	assert_int_equal(vs.n, 3);

	/* No callback: just the walk. */
	assert_int_equal(cairn_store_walk(&f->base, &d.b[ROOT].cid, NULL, NULL), 0);
	cairn_store_free(&f->base);
	dag_free(&d);
}

static void test_walk_missing(void **state)
{
	char str[CAIRN_CID_MAX_STRING];
	dag d;
	fake *f;

	(void)state;
	dag_build(&d);
	f = dag_store(&d);
	assert_int_equal(cairn_store_del(&f->base, &d.b[C].cid), 0);
	assert_int_equal(cairn_store_walk(&f->base, &d.b[ROOT].cid, NULL, NULL), CAIRN_ENOTFOUND);
	cairn_cid_to_string(str, &d.b[C].cid);
	assert_non_null(strstr(cairn_error_last(), str));
	assert_non_null(strstr(cairn_error_last(), "fake"));

	/* A missing raw leaf is not fetched, so it is no error. */
	put_blk(f, &d.b[C]);
	assert_int_equal(cairn_store_del(&f->base, &d.b[LEAF2].cid), 0);
	assert_int_equal(cairn_store_walk(&f->base, &d.b[ROOT].cid, NULL, NULL), 0);

	/* Other failures of get are passed on as they are. */
	f->fail_get = CAIRN_EIO;
	assert_int_equal(cairn_store_walk(&f->base, &d.b[ROOT].cid, NULL, NULL), CAIRN_EIO);
	cairn_store_free(&f->base);
	dag_free(&d);
}

static void test_walk_corrupt_block(void **state)
{
	static const uint8_t junk[] = {0xa1, 0x61}; /* a map cut short */
	fake *f = fake_new();
	cairn_cid cid;

	(void)state;
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256, junk,
					   sizeof(junk)), 0);
	assert_int_equal(cairn_store_put(&f->base, &cid, junk, sizeof(junk)), 0);
	assert_int_equal(cairn_store_walk(&f->base, &cid, NULL, NULL), CAIRN_ECORRUPT);
	cairn_store_free(&f->base);
}

/* A chain far deeper than any C stack would allow if the walk recursed. */
static void test_walk_deep(void **state)
{
	enum { DEPTH = 20000 };
	fake *f = fake_new();
	blk prev, cur;
	const cairn_cid *l[1];
	size_t n = 0;

	(void)state;
	raw_block(&prev, "bottom");
	put_blk(f, &prev);
	for (int i = 0; i < DEPTH; i++) {
		l[0] = &prev.cid;
		cbor_block(&cur, "link", l, 1);
		put_blk(f, &cur);
		blk_free(&prev);
		prev = cur;
	}
	assert_int_equal(cairn_store_walk(&f->base, &prev.cid, count, &n),
			 0);
	assert_int_equal(n, DEPTH + 1);
	blk_free(&prev);
	cairn_store_free(&f->base);
}

/* ----------------------------------------------------------------- GC */

static const int live_blocks[] = {ROOT, A, B, C, PB, LEAF1, LEAF2, LEAF3};
#define NLIVE (sizeof(live_blocks) / sizeof(live_blocks[0]))

static void assert_live_held(fake *f, const dag *d)
{
	for (size_t i = 0; i < NLIVE; i++)
		assert_true(fake_holds(f, &d->b[live_blocks[i]].cid));
}

static void test_gc(void **state)
{
	cairn_store_gc_stats st;
	cairn_cid roots[2];
	dag d;
	fake *f;

	(void)state;
	dag_build(&d);
	f = dag_store(&d);
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[ROOT].cid, 1), 0);
	assert_int_equal(st.deleted, 2);
	assert_int_equal(st.deleted_bytes, d.b[DEAD1].bytes.len + d.b[DEAD2].bytes.len);
	assert_int_equal(f->nblocks, NLIVE);
	assert_live_held(f, &d);
	assert_false(fake_holds(f, &d.b[DEAD1].cid));
	assert_false(fake_holds(f, &d.b[DEAD2].cid));
	assert_int_equal(f->calls.del, 2);
	assert_int_equal(f->calls.flush, 1);
	assert_int_equal(f->calls.identity, 0);
	/* kept counts the blocks the store still holds: the identity CID the
	 * root links to is reachable but was never a block of the store. */
	assert_int_equal(st.kept, NLIVE);

	/* Again: nothing left to delete. */
	reset_counts(f);
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[ROOT].cid, 1), 0);
	assert_int_equal(st.deleted, 0);
	assert_int_equal(st.deleted_bytes, 0);
	assert_int_equal(st.kept, NLIVE);
	assert_int_equal(f->calls.del, 0);
	cairn_store_free(&f->base);

	/* Two roots, sharing blocks: only what neither reaches goes. */
	f = dag_store(&d);
	roots[0] = d.b[DEAD1].cid;
	roots[1] = d.b[ROOT].cid;
	assert_int_equal(cairn_store_gc(&st, &f->base, roots, 2), 0);
	assert_int_equal(st.deleted, 1);
	assert_int_equal(st.deleted_bytes, d.b[DEAD2].bytes.len);
	assert_int_equal(st.kept, NLIVE + 1);
	assert_true(fake_holds(f, &d.b[DEAD1].cid));
	assert_false(fake_holds(f, &d.b[DEAD2].cid));
	cairn_store_free(&f->base);

	/* A subtree as the root keeps just that subtree. */
	f = dag_store(&d);
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[B].cid, 1), 0);
	assert_int_equal(st.kept, 6); /* b c leaf2 pb leaf1 leaf3 */
	assert_int_equal(st.deleted, 4);
	assert_int_equal(f->nblocks, 6);
	assert_false(fake_holds(f, &d.b[ROOT].cid));
	assert_false(fake_holds(f, &d.b[A].cid));
	assert_true(fake_holds(f, &d.b[LEAF1].cid));
	cairn_store_free(&f->base);

	/* No roots: everything goes. */
	f = dag_store(&d);
	assert_int_equal(cairn_store_gc(&st, &f->base, NULL, 0), 0);
	assert_int_equal(st.deleted, NBLK);
	assert_int_equal(st.kept, 0);
	assert_int_equal(f->nblocks, 0);
	cairn_store_free(&f->base);
	dag_free(&d);
}

static void test_gc_refuses_when_missing(void **state)
{
	char str[CAIRN_CID_MAX_STRING];
	cairn_store_gc_stats st;
	dag d;
	fake *f;

	(void)state;
	dag_build(&d);
	f = dag_store(&d);
	assert_int_equal(cairn_store_del(&f->base, &d.b[PB].cid), 0);
	reset_counts(f);
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[ROOT].cid, 1), CAIRN_ENOTFOUND);
	cairn_cid_to_string(str, &d.b[PB].cid);
	assert_non_null(strstr(cairn_error_last(), str));
	assert_int_equal(st.deleted, 0);
	assert_int_equal(st.deleted_bytes, 0);
	assert_int_equal(f->calls.del, 0);
	assert_int_equal(f->nblocks, NBLK - 1);

	/* The root itself missing. */
	f->fail_get = 0;
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[PB].cid, 1), CAIRN_ENOTFOUND);
	assert_int_equal(f->calls.del, 0);
	assert_int_equal(f->nblocks, NBLK - 1);

	/* A failing read is no licence to delete either. */
	f->fail_get = CAIRN_EIO;
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[ROOT].cid, 1), CAIRN_EIO);
	assert_int_equal(f->calls.del, 0);
	assert_int_equal(f->nblocks, NBLK - 1);
	f->fail_get = 0;

	/* Without del (or iterate) there is no GC, and nothing is touched. */
	f->ops.del = NULL;
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[C].cid, 1), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "fake"));
	f->ops.del = fake_del;
	f->ops.iterate = NULL;
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[C].cid, 1), CAIRN_EUNSUPPORTED);
	assert_int_equal(f->nblocks, NBLK - 1);
	assert_int_equal(f->calls.del, 0);
	cairn_store_free(&f->base);
	dag_free(&d);
}

/* A raw leaf is never fetched by the walk, but GC promises to stop on any
 * block missing below a root (store.h): a store that lost a leaf is
 * damaged, and GC is where that should come out, as kubo's does. */
static void test_gc_missing_raw_leaf(void **state)
{
	cairn_store_gc_stats st;
	dag d;
	fake *f;

	(void)state;
	dag_build(&d);
	f = dag_store(&d);
	assert_int_equal(cairn_store_del(&f->base, &d.b[LEAF3].cid), 0);
	reset_counts(f);
	assert_int_equal(cairn_store_gc(&st, &f->base, &d.b[ROOT].cid, 1), CAIRN_ENOTFOUND);
	assert_int_equal(st.deleted, 0);
	assert_int_equal(f->calls.del, 0);
	assert_int_equal(f->nblocks, NBLK - 1);
	cairn_store_free(&f->base);
	dag_free(&d);
}

/* ------------------------------------------------ allocation failures */

/* Every wrapper, the walk and GC, one after the other; the first failure
 * is returned. */
static int scenario(fake *f, const dag *d)
{
	cairn_store_gc_stats st;
	cairn_buf out = CAIRN_BUF_INIT;
	uint64_t size;
	visits vs = {.n = 0};
	int rc;

	if ((rc = cairn_store_get(&f->base, &out, &d->id)))
		goto done;
	f->ops.get_size = NULL;
	rc = cairn_store_get_size(&f->base, &size, &d->b[ROOT].cid);
	f->ops.get_size = fake_get_size;
	if (rc)
		goto done;
	if ((rc = cairn_store_walk(&f->base, &d->b[ROOT].cid, record, &vs)))
		goto done;
	rc = cairn_store_gc(&st, &f->base, &d->b[ROOT].cid, 1);
done:
	cairn_buf_free(&out);
	return rc;
}

static void test_alloc_failure(void **state)
{
	dag d;

	(void)state;
	dag_build(&d);
	for (int sticky = 0; sticky < 2; sticky++) {
		int clean = 0;

		for (long n = 1; clean < 10; n++) {
			fake *f = dag_store(&d);
			int rc;

			assert_true(n < 100000);
			cairn_alloc_fail_after(n, sticky);
			rc = scenario(f, &d);
			cairn_alloc_fail_after(-1, false);
			if (rc && rc != CAIRN_ENOMEM)
				fail_msg("allocation %ld failing: %d (%s)", n, rc, cairn_error_last());
			clean = rc ? 0 : clean + 1;
			/* Whatever failed, nothing reachable is gone. */
			assert_live_held(f, &d);
			cairn_store_free(&f->base);
		}
	}
	dag_free(&d);
}

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_not_passed_on),
		cmocka_unit_test(test_put_many_drops_identity),
		cmocka_unit_test(test_put_many_fallback),
		cmocka_unit_test(test_get_many),
		cmocka_unit_test(test_locate_many),
		cmocka_unit_test(test_get_size_fallback),
		cmocka_unit_test(test_has_fallback),
		cmocka_unit_test(test_null_ops),
		cmocka_unit_test(test_calls_pass_through),
		cmocka_unit_test(test_walk_order),
		cmocka_unit_test(test_walk_missing),
		cmocka_unit_test(test_walk_corrupt_block),
		cmocka_unit_test(test_walk_deep),
		cmocka_unit_test(test_gc),
		cmocka_unit_test(test_gc_refuses_when_missing),
		cmocka_unit_test(test_gc_missing_raw_leaf),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
