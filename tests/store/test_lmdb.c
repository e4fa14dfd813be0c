/* test_lmdb.c: unit tests for the LMDB blockstore: the operations, multihash
 * keys, batch visibility and durability, GC, threads, a full map, OOM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

static char tmpdir[PATH_MAX]; /* removed with everything in it at the end */

/* ---------------------------------------------------------------- helpers */

static void dir_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static cairn_store *open_store(const char *dir, const cairn_store_lmdb_options *opts)
{
	cairn_store *s = NULL;

	if (cairn_store_lmdb_open(&s, dir, opts))
		fail_msg("open %s: %s", dir, cairn_error_last());
	assert_string_equal(cairn_store_name(s), "lmdb");
	return s;
}

/* Options for tests that do not crash the machine: no fsync. */
static cairn_store_lmdb_options fast_opts(void)
{
	cairn_store_lmdb_options o = CAIRN_STORE_LMDB_OPTIONS_INIT;

	o.no_sync = true;
	o.map_size = 1ull << 30;
	return o;
}

typedef struct {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
} blk;

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A raw block of `len` bytes drawn from `seed`. */
static void rand_block(blk *b, uint64_t seed, size_t len)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	b->data = malloc(len ? len : 1);
	assert_non_null(b->data);
	for (size_t i = 0; i < len; i++)
		b->data[i] = (uint8_t)(next_rand(&x) >> 24);
	/* Distinct seeds give distinct blocks, short ones too. */
	for (size_t i = 0; i < len && i < 8; i++)
		b->data[i] = (uint8_t)(seed >> (8 * i));
	b->len = len;
	assert_int_equal(cairn_cid_compute(&b->cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, b->data, len), 0);
}

static void text_block(blk *b, const char *text)
{
	b->len = strlen(text);
	b->data = malloc(b->len + 1);
	assert_non_null(b->data);
	memcpy(b->data, text, b->len + 1);
	assert_int_equal(cairn_cid_compute(&b->cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, b->data, b->len), 0);
}

/* A DAG-CBOR block {"l": [links], "n": name}. */
static void cbor_block(blk *b, const char *name, const cairn_cid *const *links, size_t nlinks)
{
	cairn_buf out = CAIRN_BUF_INIT;
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
	assert_int_equal(cairn_dagcbor_encode(&out, &node), 0);
	b->data = cairn_buf_detach(&out, &b->len);
	assert_non_null(b->data);
	assert_int_equal(cairn_cid_compute(&b->cid, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256,
					   b->data, b->len), 0);
}

static void blk_free(blk *b)
{
	/* cbor_block's bytes come from cairn_buf_detach, the others from malloc:
	 * both end in free() (cairn_free is free). */
	cairn_free(b->data);
	b->data = NULL;
}

static void put_blk(cairn_store *s, const blk *b)
{
	if (cairn_store_put(s, &b->cid, b->data, b->len))
		fail_msg("put: %s", cairn_error_last());
}

static void expect_block(cairn_store *s, const blk *b)
{
	cairn_buf got = CAIRN_BUF_INIT;
	uint64_t size = 0;

	if (cairn_store_get(s, &got, &b->cid))
		fail_msg("get: %s", cairn_error_last());
	assert_int_equal(got.len, b->len);
	if (b->len)
		assert_memory_equal(got.data, b->data, b->len);
	assert_int_equal(cairn_store_has(s, &b->cid), 1);
	assert_int_equal(cairn_store_get_size(s, &size, &b->cid), 0);
	assert_int_equal(size, b->len);
	cairn_buf_free(&got);
}

static void expect_absent(cairn_store *s, const cairn_cid *cid)
{
	cairn_buf got = CAIRN_BUF_INIT;
	uint64_t size;

	assert_int_equal(cairn_store_has(s, cid), 0);
	assert_int_equal(cairn_store_get(s, &got, cid), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_store_get_size(s, &size, cid), CAIRN_ENOTFOUND);
	cairn_buf_free(&got);
}

/* Collects what iterate gives. */
typedef struct {
	cairn_cid *v;
	size_t n, cap;
} cid_list;

static int collect(const cairn_cid *cid, void *payload)
{
	cid_list *l = payload;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n++] = *cid;
	return 0;
}

static bool list_has(const cid_list *l, const cairn_cid *cid)
{
	for (size_t i = 0; i < l->n; i++)
		if (cairn_cid_equal(&l->v[i], cid))
			return true;
	return false;
}

static void list_of(cid_list *l, cairn_store *s)
{
	memset(l, 0, sizeof(*l));
	if (cairn_store_iterate(s, collect, l))
		fail_msg("iterate: %s", cairn_error_last());
}

static size_t count_blocks(cairn_store *s)
{
	cid_list l;
	size_t n;

	list_of(&l, s);
	n = l.n;
	free(l.v);
	return n;
}

/* ---------------------------------------------------------- operations */

static void test_operations(void **state)
{
	char dir[PATH_MAX + 64];
	blk a, b, empty, missing;
	cairn_store *s;
	struct stat st;
	cid_list l;

	(void)state;
	/* Nested directories that do not exist yet are created, private. */
	dir_path(dir, sizeof(dir), "ops/x/y");
	s = open_store(dir, NULL);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	text_block(&a, "block a");
	rand_block(&b, 2, 3000); /* past half a page: an overflow page */
	text_block(&empty, "");
	text_block(&missing, "never put");
	expect_absent(s, &a.cid);
	put_blk(s, &a);
	put_blk(s, &b);
	put_blk(s, &empty);
	put_blk(s, &a); /* again: nothing changes */
	expect_block(s, &a);
	expect_block(s, &b);
	expect_block(s, &empty);
	expect_absent(s, &missing.cid);
	assert_int_equal(cairn_store_del(s, &missing.cid), CAIRN_ENOTFOUND);
	assert_non_null(strstr(cairn_error_last(), "is not there"));

	list_of(&l, s);
	assert_int_equal(l.n, 3);
	assert_true(list_has(&l, &a.cid) && list_has(&l, &b.cid) && list_has(&l, &empty.cid));
	free(l.v);

	assert_int_equal(cairn_store_del(s, &a.cid), 0);
	expect_absent(s, &a.cid);
	assert_int_equal(cairn_store_del(s, &a.cid), CAIRN_ENOTFOUND);
	assert_int_equal(count_blocks(s), 2);
	/* put_many, with an identity CID the store never sees. */
	{
		cairn_block many[2];
		cairn_cid id;

		assert_int_equal(cairn_cid_from_digest(&id, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
						       (const uint8_t *)"hi", 2), 0);
		many[0] = (cairn_block){a.cid, a.data, a.len};
		many[1] = (cairn_block){id, (const uint8_t *)"hi", 2};
		assert_int_equal(cairn_store_put_many(s, many, 2), 0);
		assert_int_equal(cairn_store_put_many(s, many, 0), 0);
		expect_block(s, &a);
		assert_int_equal(count_blocks(s), 3);
	}
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	assert_int_equal(cairn_store_flush(s, &a.cid), 0);
	cairn_store_free(s);
	cairn_store_free(NULL);
	blk_free(&a);
	blk_free(&b);
	blk_free(&empty);
	blk_free(&missing);
}

/* A CIDv0 and a CIDv1 of the same multihash are one block; iterate gives
 * the CID it was first put with. */
static void test_multihash_keys(void **state)
{
	char dir[PATH_MAX + 64];
	cairn_cid v0, v1pb, v1raw;
	cairn_store *s;
	blk b;
	cid_list l;

	(void)state;
	dir_path(dir, sizeof(dir), "mh");
	s = open_store(dir, NULL);
	text_block(&b, "bytes under two names");
	assert_int_equal(cairn_cid_compute(&v0, 0, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256, b.data, b.len), 0);
	assert_int_equal(cairn_cid_convert(&v1pb, &v0, 1), 0);
	v1raw = b.cid;
	assert_int_equal(cairn_store_put(s, &v0, b.data, b.len), 0);
	assert_int_equal(cairn_store_has(s, &v1pb), 1);
	assert_int_equal(cairn_store_has(s, &v1raw), 1);
	b.cid = v1pb;
	expect_block(s, &b);
	b.cid = v1raw;
	expect_block(s, &b);
	assert_int_equal(cairn_store_put(s, &v1raw, b.data, b.len), 0);
	list_of(&l, s);
	assert_int_equal(l.n, 1);
	assert_true(cairn_cid_equal(&l.v[0], &v0));
	free(l.v);
	/* Deleting by another name deletes the block. */
	assert_int_equal(cairn_store_del(s, &v1raw), 0);
	assert_int_equal(cairn_store_has(s, &v0), 0);
	/* A v1 put first stays v1, across a reopen. */
	assert_int_equal(cairn_store_put(s, &v1pb, b.data, b.len), 0);
	assert_int_equal(cairn_store_put(s, &v0, b.data, b.len), 0);
	cairn_store_free(s);
	s = open_store(dir, NULL);
	list_of(&l, s);
	assert_int_equal(l.n, 1);
	assert_true(cairn_cid_equal(&l.v[0], &v1pb));
	free(l.v);
	cairn_store_free(s);
	blk_free(&b);
}

/* ------------------------------------------------ batches and threads */

typedef struct {
	cairn_store *s;
	const blk *b;
	int has, put, flush;
} other_args;

static void *other_thread(void *p)
{
	other_args *a = p;

	a->has = cairn_store_has(a->s, &a->b->cid);
	a->put = cairn_store_put(a->s, &a->b->cid, a->b->data, a->b->len);
	a->flush = cairn_store_flush(a->s, NULL);
	return NULL;
}

static other_args run_other(cairn_store *s, const blk *b)
{
	other_args a = {s, b, 0, 0, 0};
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, other_thread, &a), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	return a;
}

/* The batch is seen by the thread that put before any flush; other threads
 * see it when it commits, and cannot write into it. */
static void test_batch_visibility(void **state)
{
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	cairn_store *s;
	other_args r;
	blk a, b;

	(void)state;
	dir_path(dir, sizeof(dir), "batch");
	s = open_store(dir, &o);
	text_block(&a, "in the batch");
	text_block(&b, "from the other thread");
	put_blk(s, &a);
	expect_block(s, &a);
	r = run_other(s, &a);
	assert_int_equal(r.has, 0);            /* not committed yet */
	assert_int_equal(r.put, CAIRN_EINVAL); /* the batch is ours */
	assert_int_equal(r.flush, CAIRN_EINVAL);
	assert_int_equal(count_blocks(s), 1);  /* iterate commits our batch */
	r = run_other(s, &a);
	assert_int_equal(r.has, 1);
	assert_int_equal(r.put, 0);
	assert_int_equal(r.flush, 0);
	/* After a flush any thread may put, and its flush commits. */
	put_blk(s, &a);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	r = run_other(s, &b);
	assert_int_equal(r.has, 0);
	assert_int_equal(r.put, 0);
	assert_int_equal(r.flush, 0);
	expect_block(s, &b);
	cairn_store_free(s);
	blk_free(&a);
	blk_free(&b);
}

/* Durable after flush, and after free without a flush (free commits). */
static void test_reopen(void **state)
{
	enum { N = 500 };
	char dir[PATH_MAX + 64];
	cairn_store *s;
	blk b[N];

	(void)state;
	dir_path(dir, sizeof(dir), "reopen");
	for (int i = 0; i < N; i++)
		rand_block(&b[i], (uint64_t)i, 50 + (size_t)i * 7);
	s = open_store(dir, NULL); /* with fsync */
	for (int i = 0; i < N / 2; i++)
		put_blk(s, &b[i]);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	cairn_store_free(s);
	s = open_store(dir, NULL);
	for (int i = 0; i < N / 2; i++)
		expect_block(s, &b[i]);
	for (int i = N / 2; i < N; i++)
		put_blk(s, &b[i]);
	cairn_store_free(s); /* no flush */
	s = open_store(dir, NULL);
	assert_int_equal(count_blocks(s), N);
	for (int i = 0; i < N; i++)
		expect_block(s, &b[i]);
	cairn_store_free(s);
	for (int i = 0; i < N; i++)
		blk_free(&b[i]);
}

/* 20,000 small blocks over many batches, and 4 MiB blocks. */
static void test_many_and_large(void **state)
{
	enum { N = 20000, BIG = 4 };
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	cairn_store *s;
	blk *b = calloc(N, sizeof(*b)), big[BIG];
	cid_list l;

	(void)state;
	assert_non_null(b);
	dir_path(dir, sizeof(dir), "many");
	o.batch_bytes = 256 << 10; /* a few dozen commits */
	s = open_store(dir, &o);
	for (int i = 0; i < N; i++) {
		rand_block(&b[i], 1000 + (uint64_t)i, 8 + (size_t)(i % 400));
		put_blk(s, &b[i]);
	}
	for (int i = 0; i < BIG; i++) {
		rand_block(&big[i], 99 + (uint64_t)i, (4u << 20) - (size_t)i);
		put_blk(s, &big[i]);
	}
	for (int i = 0; i < N; i += 7)
		expect_block(s, &b[i]);
	for (int i = 0; i < BIG; i++)
		expect_block(s, &big[i]);
	cairn_store_free(s);
	s = open_store(dir, &o);
	list_of(&l, s);
	assert_int_equal(l.n, N + BIG);
	/* In multihash order, each once. */
	for (size_t i = 1; i < l.n; i++) {
		const cairn_cid *p = &l.v[i - 1], *q = &l.v[i];
		size_t np = (size_t)p->len - p->mh_off, nq = (size_t)q->len - q->mh_off;
		int c = memcmp(p->bytes + p->mh_off, q->bytes + q->mh_off, np < nq ? np : nq);

		assert_true(c < 0 || (c == 0 && np < nq));
	}
	free(l.v);
	for (int i = 0; i < N; i++)
		expect_block(s, &b[i]);
	for (int i = 0; i < BIG; i++)
		expect_block(s, &big[i]);
	cairn_store_free(s);
	for (int i = 0; i < N; i++)
		blk_free(&b[i]);
	for (int i = 0; i < BIG; i++)
		blk_free(&big[i]);
	free(b);
}

/* The callback sees a snapshot and may change the store under it. */
typedef struct {
	cairn_store *s;
	const blk *add;
	size_t seen;
} modify_args;

static int modify(const cairn_cid *cid, void *payload)
{
	modify_args *m = payload;

	m->seen++;
	assert_int_equal(cairn_store_del(m->s, cid), 0);
	assert_int_equal(cairn_store_put(m->s, &m->add[m->seen - 1].cid, m->add[m->seen - 1].data,
					 m->add[m->seen - 1].len), 0);
	return m->seen == 50 ? 7 : 0;
}

static void test_iterate_modify(void **state)
{
	enum { N = 100 };
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	blk b[N], add[N];
	cairn_store *s;
	modify_args m;

	(void)state;
	dir_path(dir, sizeof(dir), "itermod");
	s = open_store(dir, &o);
	for (int i = 0; i < N; i++) {
		rand_block(&b[i], 5000 + (uint64_t)i, 100);
		rand_block(&add[i], 7000 + (uint64_t)i, 100);
		put_blk(s, &b[i]);
	}
	m = (modify_args){s, add, 0};
	/* Stopped by the callback after 50: its code comes back. */
	assert_int_equal(cairn_store_iterate(s, modify, &m), 7);
	assert_int_equal(m.seen, 50);
	assert_int_equal(count_blocks(s), N);
	for (int i = 0; i < 50; i++)
		expect_block(s, &add[i]);
	cairn_store_free(s);
	for (int i = 0; i < N; i++) {
		blk_free(&b[i]);
		blk_free(&add[i]);
	}
}

/* ------------------------------------------------------------------- GC */

/* Two DAGs sharing a leaf:
 *   r1 -> x1, y1, shared;  x1 -> l1, l2;  y1 -> l2, l3
 *   r2 -> x2, shared;      x2 -> l4, l5
 */
enum { R1, X1, Y1, L1, L2, L3, SHARED, R2, X2, L4, L5, NDAG };
static const int in_dag1[] = {R1, X1, Y1, L1, L2, L3, SHARED};

typedef struct {
	blk b[NDAG];
} dags;

static void dags_build(dags *d)
{
	const cairn_cid *l[3];

	text_block(&d->b[L1], "leaf 1");
	text_block(&d->b[L2], "leaf 2");
	text_block(&d->b[L3], "leaf 3");
	text_block(&d->b[L4], "leaf 4, of the second DAG");
	text_block(&d->b[L5], "leaf 5, of the second DAG");
	text_block(&d->b[SHARED], "shared leaf");
	l[0] = &d->b[L1].cid;
	l[1] = &d->b[L2].cid;
	cbor_block(&d->b[X1], "x1", l, 2);
	l[0] = &d->b[L2].cid;
	l[1] = &d->b[L3].cid;
	cbor_block(&d->b[Y1], "y1", l, 2);
	l[0] = &d->b[X1].cid;
	l[1] = &d->b[Y1].cid;
	l[2] = &d->b[SHARED].cid;
	cbor_block(&d->b[R1], "r1", l, 3);
	l[0] = &d->b[L4].cid;
	l[1] = &d->b[L5].cid;
	cbor_block(&d->b[X2], "x2", l, 2);
	l[0] = &d->b[X2].cid;
	l[1] = &d->b[SHARED].cid;
	cbor_block(&d->b[R2], "r2", l, 2);
}

static void dags_free(dags *d)
{
	for (int i = 0; i < NDAG; i++)
		blk_free(&d->b[i]);
}

static void test_gc(void **state)
{
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	cairn_store_gc_stats st;
	uint64_t dead_bytes = 0;
	cairn_store *s;
	cid_list l, walked;
	dags d;

	(void)state;
	dir_path(dir, sizeof(dir), "gc");
	dags_build(&d);
	s = open_store(dir, &o);
	for (int i = 0; i < NDAG; i++)
		put_blk(s, &d.b[i]);
	/* Unflushed: the owner's gc sees the whole batch. */
	if (cairn_store_gc(&st, s, &d.b[R1].cid, 1))
		fail_msg("gc: %s", cairn_error_last());
	for (int i = 0; i < NDAG; i++) {
		bool live = false;

		for (size_t j = 0; j < sizeof(in_dag1) / sizeof(in_dag1[0]); j++)
			live |= in_dag1[j] == i;
		if (!live)
			dead_bytes += d.b[i].len;
	}
	assert_int_equal(st.kept, 7);
	assert_int_equal(st.deleted, NDAG - 7);
	assert_int_equal(st.deleted_bytes, dead_bytes);
	cairn_store_free(s);

	s = open_store(dir, &o);
	list_of(&l, s);
	assert_int_equal(l.n, 7);
	for (size_t j = 0; j < 7; j++)
		assert_true(list_has(&l, &d.b[in_dag1[j]].cid));
	memset(&walked, 0, sizeof(walked));
	assert_int_equal(cairn_store_walk(s, &d.b[R1].cid, collect, &walked), 0);
	assert_int_equal(walked.n, 7);
	assert_int_equal(cairn_store_walk(s, &d.b[R2].cid, NULL, NULL), CAIRN_ENOTFOUND);
	/* Again with both roots gone: everything goes. */
	assert_int_equal(cairn_store_gc(&st, s, NULL, 0), 0);
	assert_int_equal(st.kept, 0);
	assert_int_equal(st.deleted, 7);
	assert_int_equal(count_blocks(s), 0);
	free(l.v);
	free(walked.v);
	cairn_store_free(s);
	dags_free(&d);
}

/* A block missing below a root: nothing is deleted. */
static void test_gc_missing(void **state)
{
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	cairn_store_gc_stats st;
	cairn_cid roots[2];
	cairn_store *s;
	dags d;

	(void)state;
	dir_path(dir, sizeof(dir), "gcmissing");
	dags_build(&d);
	s = open_store(dir, &o);
	for (int i = 0; i < NDAG; i++)
		if (i != Y1)
			put_blk(s, &d.b[i]);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	roots[0] = d.b[R2].cid;
	roots[1] = d.b[R1].cid;
	assert_int_equal(cairn_store_gc(&st, s, roots, 2), CAIRN_ENOTFOUND);
	assert_int_equal(st.deleted, 0);
	cairn_store_free(s);
	s = open_store(dir, &o);
	assert_int_equal(count_blocks(s), NDAG - 1);
	cairn_store_free(s);
	dags_free(&d);
}

/* The store matches by multihash: a block put under one CID and linked
 * under another (CIDv0 and CIDv1, or another codec) is reachable, and GC
 * must keep it. */
static void test_gc_other_name(void **state)
{
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	cairn_store_gc_stats st;
	const cairn_cid *l[1];
	cairn_cid v0;
	cairn_store *s;
	blk leaf, root;

	(void)state;
	dir_path(dir, sizeof(dir), "gcname");
	s = open_store(dir, &o);
	text_block(&leaf, "linked as raw, put as dag-pb v0");
	l[0] = &leaf.cid;
	cbor_block(&root, "root", l, 1);
	assert_int_equal(cairn_cid_compute(&v0, 0, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256, leaf.data,
					   leaf.len), 0);
	assert_int_equal(cairn_store_put(s, &v0, leaf.data, leaf.len), 0);
	put_blk(s, &root);
	assert_int_equal(cairn_store_gc(&st, s, &root.cid, 1), 0);
	/* GC matches blocks by multihash, as the store does. */
	assert_int_equal(st.deleted, 0);
	expect_block(s, &leaf);
	cairn_store_free(s);
	blk_free(&leaf);
	blk_free(&root);
}

/* --------------------------------------------------- concurrent readers */

enum { NREAD = 3000, NTHREADS = 4 };

typedef struct {
	cairn_store *s;
	const blk *b;
	unsigned seed;
	int bad;
} reader_args;

static void *reader(void *p)
{
	reader_args *a = p;
	cairn_buf got = CAIRN_BUF_INIT;
	uint64_t x = a->seed;

	for (int round = 0; round < 3 * NREAD; round++) {
		const blk *b = &a->b[next_rand(&x) % NREAD];
		uint64_t size = 0;

		if (cairn_store_get(a->s, &got, &b->cid) || got.len != b->len ||
		    memcmp(got.data, b->data, b->len) || cairn_store_has(a->s, &b->cid) != 1 ||
		    cairn_store_get_size(a->s, &size, &b->cid) || size != b->len)
			a->bad++;
	}
	cairn_buf_free(&got);
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	reader_args args[NTHREADS];
	pthread_t t[NTHREADS];
	cairn_store *s;
	blk *b = calloc(NREAD, sizeof(*b));

	(void)state;
	assert_non_null(b);
	dir_path(dir, sizeof(dir), "readers");
	s = open_store(dir, &o);
	for (int i = 0; i < NREAD; i++) {
		rand_block(&b[i], 30000 + (uint64_t)i, 10 + (size_t)(i * 37) % 5000);
		put_blk(s, &b[i]);
	}
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	for (int i = 0; i < NTHREADS; i++) {
		args[i] = (reader_args){s, b, 17u + (unsigned)i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].bad, 0);
	}
	cairn_store_free(s);
	for (int i = 0; i < NREAD; i++)
		blk_free(&b[i]);
	free(b);
}

/* ------------------------------------------------------------- full map */

/* Puts blocks from `from` until the map is full; returns how many fit. The
 * put that does not fit fails alone: nothing put before it is dropped. */
static size_t fill(cairn_store *s, const blk *b, size_t from, size_t nblocks)
{
	size_t ok = from;
	int rc = 0;

	while (ok < nblocks && !(rc = cairn_store_put(s, &b[ok].cid, b[ok].data, b[ok].len)))
		ok++;
	assert_int_equal(rc, CAIRN_ETOOBIG);
	assert_non_null(strstr(cairn_error_last(), "map_size"));
	if (strstr(cairn_error_last(), "dropped"))
		fail_msg("%s", cairn_error_last());
	for (size_t i = from; i < ok; i++)
		expect_block(s, &b[i]);
	expect_absent(s, &b[ok].cid);
	return ok - from;
}

/* Fills a tiny map, then frees it by deleting and by GC, and fills it
 * again: every put that succeeds is kept, the store stays usable. */
static void fill_map(const char *name, size_t block_len, size_t nblocks)
{
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	blk *b = calloc(nblocks, sizeof(*b));
	cairn_store_gc_stats st;
	size_t ok, again;
	cairn_store *s;

	assert_non_null(b);
	dir_path(dir, sizeof(dir), name);
	o.map_size = 1 << 20;
	o.batch_bytes = 64 << 20; /* so everything would sit in one batch */
	s = open_store(dir, &o);
	for (size_t i = 0; i < nblocks; i++)
		rand_block(&b[i], 90000 + i, block_len);
	ok = fill(s, b, 0, nblocks);
	assert_true(ok > 0);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	/* Deletes work in a full map; then the failed block fits. */
	for (size_t i = 0; i < ok / 2; i++)
		assert_int_equal(cairn_store_del(s, &b[i].cid), 0);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	put_blk(s, &b[ok]);
	assert_int_equal(cairn_store_flush(s, NULL), 0);
	cairn_store_free(s);
	s = open_store(dir, &o);
	assert_int_equal(count_blocks(s), ok - ok / 2 + 1);
	for (size_t i = ok / 2; i <= ok; i++)
		expect_block(s, &b[i]);
	/* Full again, emptied by GC, full again: about as much fits. */
	for (int round = 0; round < 3; round++) {
		again = fill(s, b, ok + 1, nblocks);
		assert_int_equal(cairn_store_gc(&st, s, NULL, 0), 0);
		assert_int_equal(count_blocks(s), 0);
		again = fill(s, b, 0, nblocks);
		assert_true(again * 10 >= ok * 9);
		assert_int_equal(cairn_store_gc(&st, s, NULL, 0), 0);
		assert_int_equal(st.deleted, again);
		put_blk(s, &b[ok]);
	}
	cairn_store_free(s);
	/* A larger map takes everything. */
	o.map_size = 64 << 20;
	s = open_store(dir, &o);
	for (size_t i = 0; i < nblocks; i++)
		put_blk(s, &b[i]);
	cairn_store_free(s);
	s = open_store(dir, &o);
	assert_int_equal(count_blocks(s), nblocks);
	cairn_store_free(s);
	for (size_t i = 0; i < nblocks; i++)
		blk_free(&b[i]);
	free(b);
}

static void test_map_full(void **state)
{
	(void)state;
	fill_map("full-small", 200, 8000);
	fill_map("full-large", 100000, 40);
}

/* ------------------------------------------------------- errors and OOM */

static void test_open_errors(void **state)
{
	char file[PATH_MAX + 64], dir[PATH_MAX + 128];
	cairn_store *s = (cairn_store *)1;
	FILE *f;

	(void)state;
	assert_int_equal(cairn_store_lmdb_open(&s, "", NULL), CAIRN_EINVAL);
	assert_null(s);
	dir_path(file, sizeof(file), "a-file");
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(cairn_store_lmdb_open(&s, file, NULL), CAIRN_EIO);
	assert_non_null(strstr(cairn_error_last(), file));
	snprintf(dir, sizeof(dir), "%s/below", file);
	assert_int_equal(cairn_store_lmdb_open(&s, dir, NULL), CAIRN_EIO);
	assert_non_null(strstr(cairn_error_last(), "cannot create"));
	assert_null(s);
	/* Not an LMDB file. */
	dir_path(dir, sizeof(dir), "garbage");
	assert_int_equal(mkdir(dir, 0700), 0);
	dir_path(file, sizeof(file), "garbage/data.mdb");
	f = fopen(file, "w");
	assert_non_null(f);
	for (int i = 0; i < 20000; i++)
		fputc(i * 7, f);
	fclose(f);
	assert_int_equal(cairn_store_lmdb_open(&s, dir, NULL), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), dir));
	assert_null(s);
}

/* Every cairn allocation in open, get, iterate and gc may fail: the call
 * returns CAIRN_ENOMEM, nothing leaks, and the store still works. */
static void test_alloc_failure(void **state)
{
	cairn_store_lmdb_options o = fast_opts();
	char dir[PATH_MAX + 64];
	cairn_store_gc_stats st;
	long n;
	dags d;

	(void)state;
	dags_build(&d);
	dir_path(dir, sizeof(dir), "oom");
	for (n = 1; n < 500; n++) {
		cairn_buf got = CAIRN_BUF_INIT;
		cairn_store *s = NULL;
		int rc;

		cairn_alloc_fail_after(n, false);
		rc = cairn_store_lmdb_open(&s, dir, &o);
		for (int i = 0; !rc && i < NDAG; i++)
			rc = cairn_store_put(s, &d.b[i].cid, d.b[i].data, d.b[i].len);
		if (!rc)
			rc = cairn_store_get(s, &got, &d.b[R1].cid);
		if (!rc)
			rc = cairn_store_gc(&st, s, &d.b[R1].cid, 1);
		cairn_alloc_fail_after(-1, false);
		if (rc && rc != CAIRN_ENOMEM)
			fail_msg("allocation %ld failing: %d (%s)", n, rc, cairn_error_last());
		if (s) {
			/* Whatever failed, the store answers. */
			cairn_buf_clear(&got);
			assert_int_equal(cairn_store_put(s, &d.b[R1].cid, d.b[R1].data, d.b[R1].len), 0);
			assert_int_equal(cairn_store_get(s, &got, &d.b[R1].cid), 0);
			assert_int_equal(got.len, d.b[R1].len);
		}
		cairn_buf_free(&got);
		cairn_store_free(s);
		rm_tree(dir);
		if (!rc)
			break;
	}
	assert_true(n > 2 && n < 500);
	dags_free(&d);
}

/* ------------------------------------------------------------------- main */

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-lmdb-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	rm_tree(tmpdir);
	return access(tmpdir, F_OK) == 0 ? -1 : 0;
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
		cmocka_unit_test(test_operations),
		cmocka_unit_test(test_multihash_keys),
		cmocka_unit_test(test_batch_visibility),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_many_and_large),
		cmocka_unit_test(test_iterate_modify),
		cmocka_unit_test(test_gc),
		cmocka_unit_test(test_gc_missing),
		cmocka_unit_test(test_gc_other_name),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_map_full),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
