/* test_mem.c: unit tests for the memory store over a backing store: flush(root)
 * writes exactly the DAG below root, children first; budgets hold; failures heal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

/* ------------------------------------------------------- a backing store
 *
 * An open-addressing table of CID -> bytes on plain malloc (so allocation
 * failures injected into cairn do not land here), which records the order
 * of first writes and can be told to fail the Nth put.
 */
typedef struct {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
	uint64_t seq;   /* order of the first put, from 1 */
	unsigned puts;  /* how many times it was put */
	bool used;
} tblock;

typedef struct {
	cairn_store base;
	tblock *v;
	size_t cap, len;
	uint64_t seq;
	unsigned put_many_calls, flushes, flush_roots;
	size_t max_batch_bytes;
	long fail_after; /* puts that succeed before each one fails; -1: none */
} test_store;

static tblock *ts_find(test_store *ts, const cairn_cid *cid)
{
	size_t mask = ts->cap - 1;

	if (!ts->cap)
		return NULL;
	for (size_t i = cairn_cid_hash(cid) & mask; ts->v[i].used; i = (i + 1) & mask)
		if (cairn_cid_equal(&ts->v[i].cid, cid))
			return &ts->v[i];
	return NULL;
}

static int ts_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	tblock *b = ts_find((test_store *)s, cid);

	if (!b)
		return cairn_error_set(CAIRN_ENOTFOUND, "test store: not found");
	cairn_buf_clear(out);
	return cairn_buf_append(out, b->data, b->len);
}

static int ts_has(cairn_store *s, const cairn_cid *cid)
{
	return ts_find((test_store *)s, cid) != NULL;
}

static void ts_grow(test_store *ts)
{
	size_t cap = ts->cap ? ts->cap * 2 : 1024;
	tblock *v = calloc(cap, sizeof(*v));

	assert_non_null(v);
	for (size_t j = 0; j < ts->cap; j++) {
		size_t i;

		if (!ts->v[j].used)
			continue;
		for (i = cairn_cid_hash(&ts->v[j].cid) & (cap - 1); v[i].used; i = (i + 1) & (cap - 1))
			;
		v[i] = ts->v[j];
	}
	free(ts->v);
	ts->v = v;
	ts->cap = cap;
}

static int ts_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	test_store *ts = (test_store *)s;
	tblock *b;
	size_t i;

	if (ts->fail_after == 0)
		return cairn_error_set(CAIRN_EIO, "test store: injected write failure");
	if (ts->fail_after > 0)
		ts->fail_after--;
	if ((b = ts_find(ts, cid))) {
		b->puts++;
		return 0;
	}
	if ((ts->len + 1) * 2 > ts->cap)
		ts_grow(ts);
	for (i = cairn_cid_hash(cid) & (ts->cap - 1); ts->v[i].used; i = (i + 1) & (ts->cap - 1))
		;
	b = &ts->v[i];
	b->used = true;
	b->cid = *cid;
	b->data = malloc(len ? len : 1);
	assert_non_null(b->data);
	memcpy(b->data, data, len);
	b->len = len;
	b->seq = ++ts->seq;
	b->puts = 1;
	ts->len++;
	return 0;
}

static int ts_put_many(cairn_store *s, const cairn_block *blocks, size_t n)
{
	test_store *ts = (test_store *)s;
	size_t bytes = 0;
	int rc;

	ts->put_many_calls++;
	for (size_t i = 0; i < n; i++)
		bytes += blocks[i].len;
	if (bytes > ts->max_batch_bytes)
		ts->max_batch_bytes = bytes;
	for (size_t i = 0; i < n; i++)
		if ((rc = ts_put(s, &blocks[i].cid, blocks[i].data, blocks[i].len)))
			return rc;
	return 0;
}

static int ts_iterate(cairn_store *s, cairn_store_iter_fn fn, void *payload)
{
	test_store *ts = (test_store *)s;
	int rc;

	for (size_t i = 0; i < ts->cap; i++)
		if (ts->v[i].used && (rc = fn(&ts->v[i].cid, payload)))
			return rc;
	return 0;
}

static int ts_flush(cairn_store *s, const cairn_cid *root)
{
	test_store *ts = (test_store *)s;

	ts->flushes++;
	ts->flush_roots += root != NULL;
	return 0;
}

static void ts_free(cairn_store *s)
{
	test_store *ts = (test_store *)s;

	for (size_t i = 0; i < ts->cap; i++)
		free(ts->v[i].data);
	free(ts->v);
	free(ts);
}

static const cairn_store_ops ts_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "test",
	.get = ts_get,
	.has = ts_has,
	.put = ts_put,
	.put_many = ts_put_many,
	.iterate = ts_iterate,
	.flush = ts_flush,
	.free = ts_free,
};

static test_store *ts_new(void)
{
	test_store *ts = calloc(1, sizeof(*ts));

	assert_non_null(ts);
	ts->base.ops = &ts_ops;
	ts->fail_after = -1;
	return ts;
}

/* ------------------------------------------------------------- DAG blocks */

typedef struct {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
} blk;

typedef struct {
	blk *v;
	size_t len, cap;
} blist;

static void blist_free(blist *l)
{
	for (size_t i = 0; i < l->len; i++)
		free(l->v[i].data);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static blk *blist_add(blist *l, const cairn_cid *cid, uint8_t *data, size_t len)
{
	if (l->len == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->len] = (blk){*cid, data, len};
	return &l->v[l->len++];
}

static const blk *blist_find(const blist *l, const cairn_cid *cid)
{
	for (size_t i = 0; i < l->len; i++)
		if (cairn_cid_equal(&l->v[i].cid, cid))
			return &l->v[i];
	return NULL;
}

static uint64_t rng(uint64_t *x)
{
	/* splitmix64 */
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static blk make_raw(uint64_t seed, size_t len)
{
	blk b;

	b.data = malloc(len ? len : 1);
	assert_non_null(b.data);
	for (size_t i = 0; i < len; i++)
		b.data[i] = (uint8_t)rng(&seed);
	b.len = len;
	assert_int_equal(cairn_cid_compute(&b.cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, b.data, len),
			 0);
	return b;
}

static void cbor_head(cairn_buf *b, unsigned major, uint64_t v)
{
	uint8_t m = (uint8_t)(major << 5);

	if (v < 24) {
		cairn_buf_putc(b, m | (uint8_t)v);
	} else if (v < 0x100) {
		cairn_buf_putc(b, m | 24);
		cairn_buf_putc(b, (uint8_t)v);
	} else if (v < 0x10000) {
		cairn_buf_putc(b, m | 25);
		cairn_buf_putc(b, (uint8_t)(v >> 8));
		cairn_buf_putc(b, (uint8_t)v);
	} else {
		assert_true(v <= UINT32_MAX);
		cairn_buf_putc(b, m | 26);
		for (int i = 3; i >= 0; i--)
			cairn_buf_putc(b, (uint8_t)(v >> (8 * i)));
	}
}

/* A dag-cbor node [bytes(pad), [links...]], blake2b-256 as Filecoin's are;
 * `as` set: the CID to claim instead of the one the bytes hash to. */
static blk make_node_as(const cairn_cid *links, size_t n, size_t pad, uint64_t seed,
			const cairn_cid *as)
{
	cairn_buf b = CAIRN_BUF_INIT;
	blk out;

	cairn_buf_putc(&b, 0x82);
	cbor_head(&b, 2, pad);
	for (size_t i = 0; i < pad; i++)
		cairn_buf_putc(&b, (uint8_t)rng(&seed));
	cbor_head(&b, 4, n);
	for (size_t i = 0; i < n; i++) {
		cairn_buf_putc(&b, 0xd8);
		cairn_buf_putc(&b, 0x2a);
		cbor_head(&b, 2, links[i].len + 1u);
		cairn_buf_putc(&b, 0);
		cairn_buf_append(&b, links[i].bytes, links[i].len);
	}
	assert_int_equal(b.err, 0);
	out.data = cairn_buf_detach(&b, &out.len);
	if (as)
		out.cid = *as;
	else
		assert_int_equal(cairn_cid_compute(&out.cid, 1, CAIRN_CODEC_DAG_CBOR,
						   CAIRN_MH_BLAKE2B_256, out.data, out.len), 0);
	return out;
}

static blk make_node(const cairn_cid *links, size_t n, size_t pad, uint64_t seed)
{
	return make_node_as(links, n, pad, seed, NULL);
}

/* The data are malloc'd by make_raw, cairn_malloc'd by make_node: both
 * end in free() (cairn_free is free). */

static void put_ok(cairn_store *s, const blk *b)
{
	int rc = cairn_store_put(s, &b->cid, b->data, b->len);

	if (rc)
		fail_msg("put: %d %s", rc, cairn_error_last());
}

static cairn_store_mem_stats stats(cairn_store *s)
{
	cairn_store_mem_stats st;

	cairn_store_mem_stats_get(&st, s);
	return st;
}

/* Builds, bottom-up as a migration does, a tree of `nleaves` raw leaves of
 * lo..hi bytes under dag-cbor parents of `fanout` links; each block is put
 * into `s` (when not NULL) as soon as it is made, and after every put the
 * store's held bytes are checked against `budget`. Returns the root. */
static cairn_cid build_tree(cairn_store *s, blist *all, uint64_t seed, size_t nleaves, size_t lo,
			    size_t hi, size_t fanout, uint64_t budget)
{
	cairn_cid *level = malloc(nleaves * sizeof(*level)), root;
	size_t n = nleaves;

	assert_non_null(level);
	for (size_t i = 0; i < nleaves; i++) {
		uint64_t x = seed + i;
		blk b = make_raw(seed * 1000003 + i, lo + (size_t)(rng(&x) % (hi - lo + 1)));

		if (s) {
			put_ok(s, &b);
			assert_true(stats(s).held_bytes <= budget);
		}
		level[i] = b.cid;
		blist_add(all, &b.cid, b.data, b.len);
	}
	while (n > 1) {
		size_t m = 0;

		for (size_t i = 0; i < n; i += fanout) {
			size_t k = n - i < fanout ? n - i : fanout;
			blk b = make_node(&level[i], k, 64, seed ^ (n << 20) ^ i);

			if (s) {
				put_ok(s, &b);
				assert_true(stats(s).held_bytes <= budget);
			}
			level[m++] = b.cid;
			blist_add(all, &b.cid, b.data, b.len);
		}
		n = m;
	}
	root = level[0];
	free(level);
	return root;
}

/* Every block of the DAG below root in `s`, walked, is the one made. */
typedef struct {
	cairn_store *s;
	const blist *want;
	size_t seen;
	cairn_buf buf;
} check_ctx;

static int check_block(const cairn_cid *cid, void *payload)
{
	check_ctx *c = payload;
	const blk *w = blist_find(c->want, cid);

	assert_non_null(w);
	assert_int_equal(cairn_store_get(c->s, &c->buf, cid), 0);
	assert_int_equal(c->buf.len, w->len);
	assert_memory_equal(c->buf.data, w->data, w->len);
	c->seen++;
	return 0;
}

static size_t check_dag(cairn_store *s, const cairn_cid *root, const blist *want)
{
	check_ctx c = {s, want, 0, CAIRN_BUF_INIT};
	int rc = cairn_store_walk(s, root, check_block, &c);

	if (rc)
		fail_msg("walk: %s", cairn_error_last());
	cairn_buf_free(&c.buf);
	return c.seen;
}

/* Children before parents: every block in the backing store written after
 * every block it links to, and none missing. */
typedef struct {
	test_store *ts;
	const tblock *parent;
} order_ctx;

static int check_child(const cairn_cid *cid, void *payload)
{
	order_ctx *o = payload;
	const tblock *c = ts_find(o->ts, cid);

	if (cid->mh_code == CAIRN_MH_IDENTITY || cid->codec == CAIRN_CODEC_FIL_COMMITMENT_SEALED)
		return 0;
	if (!c)
		fail_msg("backing store: a parent without its child");
	assert_true(c->seq < o->parent->seq);
	return 0;
}

static void check_closed(test_store *ts)
{
	for (size_t i = 0; i < ts->cap; i++) {
		order_ctx o = {ts, &ts->v[i]};

		if (ts->v[i].used && ts->v[i].cid.codec == CAIRN_CODEC_DAG_CBOR)
			assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, ts->v[i].data,
							   ts->v[i].len, check_child, &o), 0);
	}
}

/* The blocks held in memory, through iterate. */
static int count_one(const cairn_cid *cid, void *payload)
{
	(void)cid;
	(*(size_t *)payload)++;
	return 0;
}

static size_t held_count(cairn_store *s)
{
	size_t n = 0;

	assert_int_equal(cairn_store_iterate(s, count_one, &n), 0);
	return n;
}

typedef struct {
	const cairn_cid *cid;
	bool found;
} find_ctx;

static int find_one(const cairn_cid *cid, void *payload)
{
	find_ctx *f = payload;

	if (cairn_cid_equal(cid, f->cid))
		f->found = true;
	return 0;
}

static bool held(cairn_store *s, const cairn_cid *cid)
{
	find_ctx f = {cid, false};

	assert_int_equal(cairn_store_iterate(s, find_one, &f), 0);
	return f.found;
}

static void stats_consistent(cairn_store *s, uint64_t through)
{
	cairn_store_mem_stats st = stats(s);

	assert_int_equal(st.held_blocks, held_count(s));
	assert_int_equal(st.put_blocks, st.held_blocks + st.evicted_blocks + through);
	assert_true(st.flushed_blocks <= st.put_blocks);
}

/* ------------------------------------------------------------------ tests */

static void test_put_get_has(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	cairn_buf buf = CAIRN_BUF_INIT;
	blk a = make_raw(1, 100), b = make_raw(2, 0), c = make_raw(3, 50);
	cairn_cid id;
	uint64_t size;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, NULL, 1 << 20), CAIRN_EINVAL);
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 1 << 20), 0);
	assert_string_equal(cairn_store_name(s), "memory");
	put_ok(s, &a);
	put_ok(s, &b);
	put_ok(s, &a); /* held already: nothing */
	assert_int_equal(cairn_store_has(s, &a.cid), 1);
	assert_int_equal(cairn_store_has(s, &b.cid), 1);
	assert_int_equal(cairn_store_has(s, &c.cid), 0);
	assert_int_equal(cairn_store_get(s, &buf, &a.cid), 0);
	assert_int_equal(buf.len, 100);
	assert_memory_equal(buf.data, a.data, 100);
	assert_int_equal(cairn_store_get(s, &buf, &b.cid), 0);
	assert_int_equal(buf.len, 0);
	assert_int_equal(cairn_store_get_size(s, &size, &a.cid), 0);
	assert_int_equal(size, 100);
	assert_int_equal(cairn_store_get(s, &buf, &c.cid), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_store_get_size(s, &size, &c.cid), CAIRN_ENOTFOUND);
	assert_int_equal(ts->len, 0); /* nothing written under the budget */

	/* A block only the backing store has is found through it. */
	assert_int_equal(ts_put(&ts->base, &c.cid, c.data, c.len), 0);
	assert_int_equal(cairn_store_has(s, &c.cid), 1);
	assert_int_equal(cairn_store_get(s, &buf, &c.cid), 0);
	assert_memory_equal(buf.data, c.data, 50);
	assert_int_equal(cairn_store_get_size(s, &size, &c.cid), 0);
	assert_int_equal(size, 50);
	assert_false(held(s, &c.cid));

	/* Identity CIDs never reach the store. */
	assert_int_equal(cairn_cid_from_digest(&id, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					       (const uint8_t *)"hi", 2), 0);
	assert_int_equal(cairn_store_put(s, &id, (const uint8_t *)"hi", 2), 0);
	assert_int_equal(cairn_store_has(s, &id), 1);

	cairn_store_mem_stats st = stats(s);
	assert_int_equal(st.put_blocks, 2);
	assert_int_equal(st.put_bytes, 100);
	assert_int_equal(st.held_blocks, 2);
	assert_true(st.held_bytes >= 100 + 2 * (48 + 36));
	assert_int_equal(st.flushed_blocks, 0);
	assert_int_equal(st.auto_flushes, 0);

	/* stats of a store that is not a memory store: zeros. */
	cairn_store_mem_stats_get(&st, &ts->base);
	assert_int_equal(st.put_blocks, 0);

	cairn_store_free(s);
	cairn_store_free(&ts->base);
	cairn_buf_free(&buf);
	free(a.data);
	free(b.data);
	free(c.data);
}

/* flush(root) writes the DAG below root, children first and root last, and
 * evicts it; another DAG and a shared block stay as they should. */
static void test_flush_root(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blist a = {0}, b = {0};
	cairn_cid ra, rb, links[3];
	blk shared = make_raw(99, 300), rootb;
	size_t n;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 64 << 20), 0);
	put_ok(s, &shared);
	ra = build_tree(s, &a, 10, 40, 10, 400, 4, 64 << 20);
	/* B: its own tree plus a root that links the shared leaf and a leaf of A. */
	rb = build_tree(s, &b, 20, 25, 10, 400, 5, 64 << 20);
	links[0] = rb;
	links[1] = shared.cid;
	links[2] = a.v[0].cid;
	rootb = make_node(links, 3, 10, 7);
	put_ok(s, &rootb);
	n = held_count(s);
	assert_int_equal(n, 1 + a.len + b.len + 1);

	assert_int_equal(cairn_store_flush(s, &ra), 0);
	assert_int_equal(ts->len, a.len);
	assert_int_equal(check_dag(&ts->base, &ra, &a), a.len);
	check_closed(ts);
	assert_int_equal(ts_find(ts, &ra)->seq, ts->seq); /* root last */
	assert_int_equal(ts->flushes, 1);
	assert_int_equal(ts->flush_roots, 1);
	for (size_t i = 0; i < a.len; i++)
		assert_false(held(s, &a.v[i].cid));
	for (size_t i = 0; i < b.len; i++)
		assert_true(held(s, &b.v[i].cid));
	assert_true(held(s, &shared.cid));
	assert_true(held(s, &rootb.cid));
	cairn_store_mem_stats st = stats(s);
	assert_int_equal(st.held_blocks, n - a.len);
	assert_int_equal(st.flushed_blocks, a.len);
	assert_int_equal(st.evicted_blocks, a.len);
	stats_consistent(s, 0);
	/* Still readable, now from the backing store. */
	assert_int_equal(check_dag(s, &ra, &a), a.len);

	/* Flushing it again finds the root in the backing store: nothing to do. */
	assert_int_equal(cairn_store_flush(s, &ra), 0);
	assert_int_equal(ts->len, a.len);

	/* B's root links into A (written) and to the shared leaf (held). */
	assert_int_equal(cairn_store_flush(s, &rootb.cid), 0);
	assert_int_equal(held_count(s), 0);
	assert_int_equal(stats(s).held_bytes, 0);
	assert_int_equal(ts->len, a.len + b.len + 2);
	check_closed(ts);
	blist_add(&b, &shared.cid, shared.data, shared.len);
	blist_add(&b, &rootb.cid, rootb.data, rootb.len);
	for (size_t i = 0; i < a.len; i++)
		blist_add(&b, &a.v[i].cid, a.v[i].data, a.v[i].len);
	assert_int_equal(check_dag(&ts->base, &rootb.cid, &b), b.len - a.len + 1);
	for (size_t i = 0; i < ts->cap; i++)
		if (ts->v[i].used)
			assert_int_equal(ts->v[i].puts, 1); /* each block written once */
	stats_consistent(s, 0);

	cairn_store_free(s);
	cairn_store_free(&ts->base);
	a.len = 0; /* their bytes are in b now */
	free(a.v);
	blist_free(&b);
}

static void test_flush_null(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blist a = {0};
	cairn_cid root;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 64 << 20), 0);
	root = build_tree(s, &a, 5, 100, 1, 1000, 8, 64 << 20);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	assert_int_equal(ts->len, a.len);
	assert_int_equal(ts->flushes, 1);
	assert_int_equal(ts->flush_roots, 0);
	/* In order of insertion, in batches of 128. */
	for (size_t i = 0; i < a.len; i++)
		assert_int_equal(ts_find(ts, &a.v[i].cid)->seq, i + 1);
	assert_int_equal(ts->put_many_calls, (a.len + 127) / 128);
	cairn_store_mem_stats st = stats(s);
	assert_int_equal(st.held_blocks, 0);
	assert_int_equal(st.held_bytes, 0);
	assert_int_equal(st.flushed_blocks, a.len);
	assert_int_equal(st.flushed_bytes, st.put_bytes);
	assert_int_equal(st.evicted_blocks, a.len);
	assert_int_equal(check_dag(s, &root, &a), a.len);
	/* Empty: a flush is only the backing store's. */
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	assert_int_equal(ts->flushes, 2);
	cairn_store_free(s);
	cairn_store_free(&ts->base);
	blist_free(&a);
}

/* A link to nowhere stops flush(root) before anything is written; links
 * that are not blocks (piece commitments, identity) are passed over. */
static void test_flush_missing(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blk child = make_raw(1, 10), other = make_raw(2, 10), parent, top, solo;
	cairn_cid links[4], missing_root;
	char str[CAIRN_CID_MAX_STRING];
	uint8_t digest[32] = {1, 2, 3};

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 1 << 20), 0);
	links[0] = child.cid;
	assert_int_equal(cairn_cid_from_digest(&links[1], 1, CAIRN_CODEC_FIL_COMMITMENT_SEALED,
					       0x920b /* poseidon-bls12_381-a2-fc1 */, digest, 32), 0);
	assert_int_equal(cairn_cid_from_digest(&links[2], 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					       digest, 3), 0);
	links[3] = other.cid;
	parent = make_node(links, 3, 5, 1);
	put_ok(s, &parent);
	top = make_node(&parent.cid, 1, 5, 2);
	put_ok(s, &top);
	assert_int_equal(cairn_store_flush(s, &top.cid), CAIRN_ENOTFOUND);
	cairn_cid_to_string(str, &child.cid);
	assert_non_null(strstr(cairn_error_last(), str));
	cairn_cid_to_string(str, &parent.cid);
	assert_non_null(strstr(cairn_error_last(), str));
	assert_int_equal(ts->len, 0);
	assert_int_equal(held_count(s), 2);

	/* Once the child is there, in memory or in the backing store, it works. */
	put_ok(s, &child);
	assert_int_equal(cairn_store_flush(s, &top.cid), 0);
	assert_int_equal(ts->len, 3);
	check_closed(ts);
	assert_int_equal(held_count(s), 0);

	/* A root that is nowhere; one only in the backing store. */
	missing_root = other.cid;
	assert_int_equal(cairn_store_flush(s, &missing_root), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_store_flush(s, &child.cid), 0);

	/* A parent whose child only the backing store has. */
	assert_int_equal(ts_put(&ts->base, &other.cid, other.data, other.len), 0);
	solo = make_node(&links[3], 1, 1, 3);
	put_ok(s, &solo);
	assert_int_equal(cairn_store_flush(s, &solo.cid), 0);
	assert_int_equal(ts->len, 5);

	cairn_store_free(s);
	cairn_store_free(&ts->base);
	free(child.data);
	free(other.data);
	free(parent.data);
	free(top.data);
	free(solo.data);
}

/* An identity root holds its links in the CID: they are flushed. */
static void test_flush_identity_root(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blk leaf = make_raw(4, 64), node, inl;
	cairn_cid idroot;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 1 << 20), 0);
	put_ok(s, &leaf);
	node = make_node(&leaf.cid, 1, 3, 4);
	put_ok(s, &node);
	inl = make_node(&node.cid, 1, 0, 0);
	assert_int_equal(cairn_cid_from_digest(&idroot, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_IDENTITY,
					       inl.data, inl.len), 0);
	assert_int_equal(cairn_store_flush(s, &idroot), 0);
	assert_int_equal(ts->len, 2);
	check_closed(ts);
	assert_int_equal(held_count(s), 0);
	cairn_store_free(s);
	cairn_store_free(&ts->base);
	free(leaf.data);
	free(node.data);
	free(inl.data);
}

/* A DAG eight times the budget: built with automatic flushes, held bytes
 * never over the budget, whole in the backing store after flush(root). */
static void test_dag_over_budget(void **state)
{
	const uint64_t budget = 1 << 20;
	test_store *ts = ts_new();
	cairn_store *s;
	blist all = {0};
	cairn_buf buf = CAIRN_BUF_INIT;
	cairn_cid root;
	uint64_t total = 0;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, budget), 0);
	/* 1024 leaves of 1..16 KiB (8 MiB), fan-out 16: 64 + 4 + 1 parents. */
	root = build_tree(s, &all, 77, 1024, 1024, 16384, 16, budget);
	for (size_t i = 0; i < all.len; i++)
		total += all.v[i].len;
	assert_true(total > 8 * budget - budget / 2);
	cairn_store_mem_stats st = stats(s);
	assert_true(st.auto_flushes >= 8);
	assert_true(st.flushed_blocks > 0);
	assert_int_equal(st.put_blocks, all.len);
	assert_int_equal(st.put_bytes, total);
	assert_int_equal(st.put_blocks, st.flushed_blocks + st.held_blocks);
	assert_int_equal(st.evicted_blocks, st.flushed_blocks);
	assert_true(st.held_bytes <= budget);
	/* Batches of 4 MiB at most (the last block may pass it). */
	assert_true(ts->max_batch_bytes <= (4 << 20) + 16384);
	assert_true(ts->max_batch_bytes >= (256 << 10));
	/* Evictions went down to half the budget, so there is room. */
	assert_true(st.held_bytes > budget / 4);
	stats_consistent(s, 0);
	/* What was evicted reads back through the backing store. */
	assert_int_equal(cairn_store_get(s, &buf, &all.v[0].cid), 0);
	assert_memory_equal(buf.data, all.v[0].data, all.v[0].len);

	assert_int_equal(cairn_store_flush(s, &root), 0);
	st = stats(s);
	assert_int_equal(st.held_blocks, 0);
	assert_int_equal(st.held_bytes, 0);
	assert_int_equal(st.flushed_blocks, all.len);
	assert_int_equal(st.flushed_bytes, total);
	assert_int_equal(st.evicted_blocks, all.len);
	assert_int_equal(ts->len, all.len);
	assert_int_equal(check_dag(&ts->base, &root, &all), all.len);
	check_closed(ts);
	assert_int_equal(ts_find(ts, &root)->seq, ts->seq);
	for (size_t i = 0; i < ts->cap; i++)
		if (ts->v[i].used)
			assert_int_equal(ts->v[i].puts, 1);

	cairn_store_free(s);
	cairn_store_free(&ts->base);
	cairn_buf_free(&buf);
	blist_free(&all);
}

/* Small blocks: the per-block cost (entry head, CID, malloc's chunk head,
 * the table) is charged, so 64 KiB holds a few hundred 40-byte blocks, not
 * 1600. */
typedef struct {
	cairn_store *s;
	uint64_t floor; /* what the held blocks cost at the least */
} cost_ctx;

static int add_cost(const cairn_cid *cid, void *payload)
{
	cost_ctx *c = payload;
	uint64_t size;

	assert_int_equal(cairn_store_get_size(c->s, &size, cid), 0);
	c->floor += size + 48 + cid->len + 8;
	return 0;
}

static void test_small_blocks_charged(void **state)
{
	const uint64_t budget = 64 << 10;
	test_store *ts = ts_new();
	cairn_store *s;
	blist all = {0};
	cairn_cid root;
	cost_ctx c;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, budget), 0);
	root = build_tree(s, &all, 3, 5000, 40, 40, 4, budget);
	cairn_store_mem_stats st = stats(s);
	c = (cost_ctx){s, 0};
	assert_int_equal(cairn_store_iterate(s, add_cost, &c), 0);
	assert_true(c.floor + st.held_blocks * sizeof(void *) <= st.held_bytes);
	assert_true(st.held_bytes <= budget);
	assert_true(st.held_bytes > budget / 4);
	assert_true(st.held_blocks < budget / (40 + 48 + 36 + 8));
	assert_true(st.auto_flushes > 10);
	assert_int_equal(cairn_store_flush(s, &root), 0);
	assert_int_equal(ts->len, all.len);
	assert_int_equal(check_dag(&ts->base, &root, &all), all.len);
	check_closed(ts);
	cairn_store_free(s);
	cairn_store_free(&ts->base);
	blist_free(&all);
}

/* A block over the budget goes straight through, after the held blocks it
 * links to. */
static void test_oversized(void **state)
{
	const uint64_t budget = 64 << 10;
	test_store *ts = ts_new();
	cairn_store *s;
	blk kids[3], big, huge = make_raw(9, 200 << 10), top;
	cairn_cid links[3];
	cairn_buf buf = CAIRN_BUF_INIT;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, budget), 0);
	for (int i = 0; i < 3; i++) {
		kids[i] = make_raw(30 + (uint64_t)i, 1000);
		put_ok(s, &kids[i]);
		links[i] = kids[i].cid;
	}
	big = make_node(links, 3, 100 << 10, 5);
	put_ok(s, &big);
	assert_true(stats(s).held_bytes <= budget);
	assert_int_equal(ts->len, 4);
	check_closed(ts);
	assert_int_equal(ts_find(ts, &big.cid)->seq, 4);
	assert_int_equal(held_count(s), 0);
	put_ok(s, &huge);
	assert_int_equal(ts->len, 5);
	assert_int_equal(cairn_store_get(s, &buf, &huge.cid), 0);
	assert_int_equal(buf.len, huge.len);
	cairn_store_mem_stats st = stats(s);
	assert_int_equal(st.put_blocks, 5);
	assert_int_equal(st.flushed_blocks, 5);
	assert_int_equal(st.evicted_blocks, 3);
	assert_int_equal(st.held_blocks, 0);
	stats_consistent(s, 2);

	/* flush(root) above it stops at it. */
	links[0] = big.cid;
	links[1] = huge.cid;
	top = make_node(links, 2, 0, 6);
	put_ok(s, &top);
	assert_int_equal(cairn_store_flush(s, &top.cid), 0);
	assert_int_equal(ts->len, 6);

	/* A zero budget writes everything through. */
	cairn_store_free(s);
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 0), 0);
	put_ok(s, &kids[0]);
	assert_int_equal(stats(s).held_blocks, 0);
	assert_int_equal(stats(s).flushed_blocks, 1);

	cairn_store_free(s);
	cairn_store_free(&ts->base);
	cairn_buf_free(&buf);
	for (int i = 0; i < 3; i++)
		free(kids[i].data);
	free(big.data);
	free(huge.data);
	free(top.data);
}

/* free drops what was not flushed: nothing reaches the backing store. */
static void test_free_drops(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blist a = {0}, b = {0};
	cairn_cid ra;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 64 << 20), 0);
	ra = build_tree(s, &a, 1, 50, 10, 100, 4, 64 << 20);
	build_tree(s, &b, 2, 50, 10, 100, 4, 64 << 20);
	assert_int_equal(cairn_store_flush(s, &ra), 0);
	assert_int_equal(ts->len, a.len);
	cairn_store_free(s); /* b is dropped */
	assert_int_equal(ts->len, a.len);
	assert_int_equal(ts->flushes, 1);
	for (size_t i = 0; i < b.len; i++)
		assert_null(ts_find(ts, &b.v[i].cid));
	cairn_store_free(NULL);
	cairn_store_free(&ts->base);
	blist_free(&a);
	blist_free(&b);
}

typedef struct {
	cairn_store *s;
	size_t n;
	cairn_cid first;
} del_ctx;

static int del_each(const cairn_cid *cid, void *payload)
{
	del_ctx *d = payload;

	if (!d->n++)
		d->first = *cid;
	return cairn_store_del(d->s, cid);
}

static int stop_at_two(const cairn_cid *cid, void *payload)
{
	(void)cid;
	return ++*(size_t *)payload == 2 ? 42 : 0;
}

/* del forgets a held block and never reaches the backing store; iterate
 * lists the held blocks once each, oldest first. */
static void test_del_iterate(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blk x = make_raw(1, 10), y = make_raw(2, 10), z = make_raw(3, 10);
	del_ctx d;
	size_t n = 0;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 1 << 20), 0);
	put_ok(s, &x);
	put_ok(s, &y);
	put_ok(s, &z);
	assert_int_equal(cairn_store_iterate(s, stop_at_two, &n), 42);
	assert_int_equal(cairn_store_del(s, &y.cid), 0);
	assert_int_equal(cairn_store_has(s, &y.cid), 0);
	assert_int_equal(cairn_store_del(s, &y.cid), CAIRN_ENOTFOUND);
	assert_int_equal(held_count(s), 2);
	cairn_store_mem_stats st = stats(s);
	assert_int_equal(st.evicted_blocks, 1);
	assert_int_equal(st.flushed_blocks, 0);
	stats_consistent(s, 0);

	/* Written and evicted: del does not reach the backing store. */
	assert_int_equal(cairn_store_flush(s, &x.cid), 0);
	assert_int_equal(cairn_store_del(s, &x.cid), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_store_has(s, &x.cid), 1);

	/* iterate's callback may del the block it is given (a GC sweep). */
	put_ok(s, &y);
	d = (del_ctx){s, 0, {0}};
	assert_int_equal(cairn_store_iterate(s, del_each, &d), 0);
	assert_int_equal(d.n, 2);
	assert_true(cairn_cid_equal(&d.first, &z.cid));
	assert_int_equal(held_count(s), 0);
	assert_int_equal(stats(s).held_bytes, 0);
	assert_int_equal(ts->len, 1);

	cairn_store_free(s);
	cairn_store_free(&ts->base);
	free(x.data);
	free(y.data);
	free(z.data);
}

/* A backing store that fails: flush(root) reports it, keeps every block,
 * never leaves a parent in the backing store without its children, and a
 * second flush finishes; an automatic flush that fails fails the put. */
static void test_backing_failure(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blist all = {0};
	cairn_cid root;
	blk extra;
	size_t n;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 64 << 20), 0);
	root = build_tree(s, &all, 8, 300, 10, 200, 3, 64 << 20);
	n = held_count(s);
	ts->fail_after = 200;
	assert_int_equal(cairn_store_flush(s, &root), CAIRN_EIO);
	assert_non_null(strstr(cairn_error_last(), "injected"));
	/* A batch of 128 written, then 72 of the next before the failure. */
	assert_int_equal(ts->len, 200);
	check_closed(ts); /* children first: any prefix is closed */
	/* The batch written is evicted; the rest, every parent of it, held. */
	assert_int_equal(held_count(s), n - 128);
	assert_null(ts_find(ts, &root));
	ts->fail_after = -1;
	assert_int_equal(cairn_store_flush(s, &root), 0);
	assert_int_equal(ts->len, all.len);
	check_closed(ts);
	/* The batch that went through is not written again; the one that
	 * failed halfway is, whole. */
	n = 0;
	for (size_t i = 0; i < ts->cap; i++) {
		if (ts->v[i].used) {
			assert_true(ts->v[i].puts <= 2);
			n += ts->v[i].puts == 2;
		}
	}
	assert_int_equal(n, 72);
	assert_int_equal(held_count(s), 0);
	assert_int_equal(stats(s).flushed_blocks, all.len);
	cairn_store_free(s);
	blist_free(&all);
	cairn_store_free(&ts->base);

	/* Automatic flush failing. */
	ts = ts_new();
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 256 << 10), 0);
	for (uint64_t i = 0;; i++) {
		blk b = make_raw(1000 + i, 20 << 10);
		int rc;

		if (i == 8)
			ts->fail_after = 1;
		rc = cairn_store_put(s, &b.cid, b.data, b.len);
		if (rc) {
			assert_int_equal(rc, CAIRN_EIO);
			assert_int_equal(cairn_store_has(s, &b.cid), 0);
			free(b.data);
			break;
		}
		blist_add(&all, &b.cid, b.data, b.len);
		assert_true(i < 20);
	}
	stats_consistent(s, 0);
	ts->fail_after = -1;
	extra = make_node(&all.v[0].cid, 1, 0, 0);
	put_ok(s, &extra);
	assert_true(stats(s).held_bytes <= 256 << 10);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	assert_int_equal(ts->len, all.len + 1);
	for (size_t i = 0; i < all.len; i++)
		assert_non_null(ts_find(ts, &all.v[i].cid));
	check_closed(ts);
	cairn_store_free(s);
	cairn_store_free(&ts->base);
	blist_free(&all);
	free(extra.data);
}

/* Bytes put under CIDs they do not hash to may link in a circle: flush(root)
 * says so, and the store stays usable. */
static void test_cycle(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	blk a0 = make_node(NULL, 0, 1, 1), b0 = make_node(NULL, 0, 2, 2), a, b, c;

	(void)state;
	/* a claims a0's CID and links b; b claims b0's and links a. */
	a = make_node_as(&b0.cid, 1, 1, 1, &a0.cid);
	b = make_node_as(&a0.cid, 1, 2, 2, &b0.cid);
	c = make_node(&a.cid, 1, 3, 3);
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 1 << 20), 0);
	put_ok(s, &a);
	put_ok(s, &b);
	put_ok(s, &c);
	assert_int_equal(cairn_store_flush(s, &c.cid), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "circle"));
	assert_int_equal(cairn_store_flush(s, &a.cid), CAIRN_ECORRUPT);
	assert_int_equal(ts->len, 0);
	assert_int_equal(held_count(s), 3);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	assert_int_equal(ts->len, 3);
	cairn_store_free(s);
	cairn_store_free(&ts->base);
	free(a0.data);
	free(b0.data);
	free(a.data);
	free(b.data);
	free(c.data);
}

/* A corrupt dag-cbor block below the root: CAIRN_ECORRUPT naming it. */
static void test_corrupt_block(void **state)
{
	test_store *ts = ts_new();
	cairn_store *s;
	static const uint8_t bad[] = {0x82, 0x41};
	cairn_cid cid;
	blk top;
	char str[CAIRN_CID_MAX_STRING];

	(void)state;
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256, bad,
					   sizeof(bad)), 0);
	top = make_node(&cid, 1, 0, 0);
	assert_int_equal(cairn_store_mem_open(&s, &ts->base, 1 << 20), 0);
	assert_int_equal(cairn_store_put(s, &cid, bad, sizeof(bad)), 0);
	put_ok(s, &top);
	assert_int_equal(cairn_store_flush(s, &top.cid), CAIRN_ECORRUPT);
	cairn_cid_to_string(str, &cid);
	assert_non_null(strstr(cairn_error_last(), str));
	assert_int_equal(held_count(s), 2);
	assert_int_equal(ts->len, 0);
	cairn_store_free(s);
	cairn_store_free(&ts->base);
	free(top.data);
}

/* Every allocation can fail: CAIRN_ENOMEM, nothing leaks or crashes, and
 * what was flushed is whole. */
static int run_with_failures(long n, bool sticky)
{
	test_store *ts = ts_new();
	cairn_store *s = NULL;
	blist all = {0};
	cairn_cid root = {0};
	int rc;

	/* The blocks first, outside the injection. */
	build_tree(NULL, &all, 4, 60, 100, 3000, 4, 0);
	root = all.v[all.len - 1].cid;
	cairn_alloc_fail_after(n, sticky);
	rc = cairn_store_mem_open(&s, &ts->base, 32 << 10);
	for (size_t i = 0; !rc && i < all.len; i++)
		rc = cairn_store_put(s, &all.v[i].cid, all.v[i].data, all.v[i].len);
	if (!rc) {
		cairn_buf buf = CAIRN_BUF_INIT;

		rc = cairn_store_get(s, &buf, &all.v[0].cid);
		cairn_buf_free(&buf);
	}
	if (!rc)
		rc = cairn_store_flush(s, &root);
	cairn_alloc_fail_after(-1, false);
	if (rc)
		assert_int_equal(rc, CAIRN_ENOMEM);
	else
		assert_int_equal(check_dag(&ts->base, &root, &all), all.len);
	check_closed(ts);
	if (s) {
		stats_consistent(s, 0);
		assert_true(stats(s).held_bytes <= 32 << 10);
		/* Without failures it finishes. */
		for (size_t i = 0; i < all.len; i++)
			put_ok(s, &all.v[i]);
		assert_int_equal(cairn_store_flush(s, &root), 0);
		assert_int_equal(check_dag(&ts->base, &root, &all), all.len);
	}
	cairn_store_free(s);
	cairn_store_free(&ts->base);
	blist_free(&all);
	return rc;
}

static void test_alloc_failure(void **state)
{
	long n, failed = 0;

	(void)state;
	for (n = 0; n < 400; n++) {
		failed += run_with_failures(n, true) != 0;
		if (run_with_failures(n, false) == 0 && n > 0)
			break;
	}
	/* Every allocation of the run was made to fail once, then none. */
	assert_true(n > 20 && n < 400);
	assert_true(failed >= n);
}

/* A memory store over a memory store: flush(root) reaches the bottom. */
static void test_nested(void **state)
{
	test_store *ts = ts_new();
	cairn_store *inner, *outer;
	blist all = {0};
	cairn_cid root;

	(void)state;
	assert_int_equal(cairn_store_mem_open(&inner, &ts->base, 256 << 10), 0);
	assert_int_equal(cairn_store_mem_open(&outer, inner, 128 << 10), 0);
	root = build_tree(outer, &all, 6, 200, 100, 4000, 8, 128 << 10);
	assert_true(stats(inner).held_bytes <= 256 << 10);
	assert_true(stats(inner).put_blocks > 0);
	assert_int_equal(cairn_store_flush(outer, &root), 0);
	assert_int_equal(stats(outer).held_blocks, 0);
	assert_int_equal(stats(inner).held_blocks, 0);
	assert_int_equal(ts->len, all.len);
	assert_int_equal(check_dag(&ts->base, &root, &all), all.len);
	check_closed(ts);
	cairn_store_free(outer);
	cairn_store_free(inner);
	cairn_store_free(&ts->base);
	blist_free(&all);
}

/* Over the persistent store: the whole DAG is there after flush(root), and
 * still there after the LMDB environment is closed and opened again. */
static void test_lmdb_backing(void **state)
{
	const uint64_t budget = 1 << 20;
	char dir[] = "/tmp/cairn-test-mem-XXXXXX";
	cairn_store_lmdb_options opts = CAIRN_STORE_LMDB_OPTIONS_INIT;
	cairn_store *lm, *s;
	blist all = {0};
	cairn_cid root;
	char cmd[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	opts.map_size = 1ull << 30;
	opts.batch_bytes = 256 << 10;
	opts.no_sync = true;
	if (cairn_store_lmdb_open(&lm, dir, &opts))
		fail_msg("lmdb: %s", cairn_error_last());
	assert_int_equal(cairn_store_mem_open(&s, lm, budget), 0);
	root = build_tree(s, &all, 55, 1024, 1024, 16384, 16, budget);
	assert_true(stats(s).auto_flushes >= 8);
	assert_int_equal(cairn_store_flush(s, &root), 0);
	assert_int_equal(stats(s).held_blocks, 0);
	assert_int_equal(stats(s).flushed_blocks, all.len);
	assert_int_equal(check_dag(lm, &root, &all), all.len);
	cairn_store_free(s);
	cairn_store_free(lm);

	if (cairn_store_lmdb_open(&lm, dir, &opts))
		fail_msg("lmdb: %s", cairn_error_last());
	assert_int_equal(check_dag(lm, &root, &all), all.len);
	assert_int_equal(held_count(lm), all.len);
	cairn_store_free(lm);
	blist_free(&all);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------- main */

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_has),
		cmocka_unit_test(test_flush_root),
		cmocka_unit_test(test_flush_null),
		cmocka_unit_test(test_flush_missing),
		cmocka_unit_test(test_flush_identity_root),
		cmocka_unit_test(test_dag_over_budget),
		cmocka_unit_test(test_small_blocks_charged),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_free_drops),
		cmocka_unit_test(test_del_iterate),
		cmocka_unit_test(test_backing_failure),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_corrupt_block),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_lmdb_backing),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
