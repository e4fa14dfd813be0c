/* test_export.c: the parallel DAG export against a single-threaded reference
 * walk, on generated DAGs with heavy sharing, through a store counting reads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

/* ------------------------------------------------------------ the store
 *
 * Read-only once built, so get is thread-safe with no lock; each entry
 * counts its gets, which is how "each block is read once" is checked.
 * Plain malloc, so injected allocation failures hit only the export.
 */
typedef struct entry {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
	_Atomic unsigned reads;
	unsigned first;      /* the store's get count at its first read */
} entry;

typedef struct {
	cairn_store base;
	entry *v;
	size_t n, cap;
	size_t *index; /* open addressing: entry number + 1 */
	size_t *dindex; /* the same, by digest: for the numbered store */
	size_t icap;
	_Atomic unsigned gets;
} tstore;

static entry *find(tstore *t, const cairn_cid *cid)
{
	for (size_t i = cairn_cid_hash(cid) & (t->icap - 1); t->index[i]; i = (i + 1) & (t->icap - 1))
		if (cairn_cid_equal(&t->v[t->index[i] - 1].cid, cid))
			return &t->v[t->index[i] - 1];
	return NULL;
}

static int t_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	tstore *t = (tstore *)s;
	entry *e = find(t, cid);

	unsigned seq = atomic_fetch_add(&t->gets, 1) + 1;

	if (!e)
		return cairn_error_set(CAIRN_ENOTFOUND, "test store: not found");
	if (atomic_fetch_add(&e->reads, 1) == 0)
		e->first = seq;
	cairn_buf_clear(out);
	return cairn_buf_append(out, e->data, e->len);
}

static int t_has(cairn_store *s, const cairn_cid *cid)
{
	return find((tstore *)s, cid) != NULL;
}

static void t_free(cairn_store *s)
{
	tstore *t = (tstore *)s;

	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].data);
	free(t->v);
	free(t->index);
	free(t->dindex);
	free(t);
}

/* The store numbered as the CAR store numbers its blocks: an entry's
 * position is its number, a CID's the first entry of its digest (so an
 * alias, the same digest under another codec, shares it). */
static uint64_t digest_hash(const cairn_cid *cid)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < cid->digest_len; i++)
		h = (h ^ cid->bytes[cid->digest_off + i]) * 1099511628211ull;
	return h;
}

static bool same_digest(const cairn_cid *a, const cairn_cid *b)
{
	return a->digest_len == b->digest_len &&
	       !memcmp(a->bytes + a->digest_off, b->bytes + b->digest_off, a->digest_len);
}

static uint64_t t_positions(cairn_store *s)
{
	return ((tstore *)s)->n;
}

static int t_locate_many(cairn_store *s, const cairn_cid *const *cids, size_t n, uint64_t *pos)
{
	tstore *t = (tstore *)s;

	for (size_t k = 0; k < n; k++) {
		pos[k] = CAIRN_STORE_NO_POSITION;
		assert_int_not_equal(cids[k]->mh_code, CAIRN_MH_IDENTITY);
		for (size_t i = digest_hash(cids[k]) & (t->icap - 1); t->dindex[i];
		     i = (i + 1) & (t->icap - 1)) {
			if (same_digest(&t->v[t->dindex[i] - 1].cid, cids[k])) {
				pos[k] = t->dindex[i] - 1;
				break;
			}
		}
	}
	return 0;
}

static const cairn_store_ops t_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "test",
	.get = t_get,
	.has = t_has,
	.free = t_free,
};

static const cairn_store_ops t_ops_numbered = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "test",
	.get = t_get,
	.has = t_has,
	.free = t_free,
	.positions = t_positions,
	.locate_many = t_locate_many,
};

/* ------------------------------------------------------------- the DAG */

typedef struct {
	tstore *t;
	cairn_cid *cids;      /* every CID made, identity ones too, by number */
	size_t ncids;
	cairn_cid roots[3];
	uint64_t rng;
} dag;

static uint64_t rnd(dag *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng;
}

static void put(dag *d, const cairn_cid *cid, const uint8_t *p, size_t len)
{
	tstore *t = d->t;

	if (cid->mh_code != CAIRN_MH_IDENTITY) {
		if (t->n == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 1024;
			t->v = realloc(t->v, t->cap * sizeof(entry));
			assert_non_null(t->v);
		}
		memset(&t->v[t->n], 0, sizeof(entry));
		t->v[t->n].cid = *cid;
		t->v[t->n].data = malloc(len + 1);
		memcpy(t->v[t->n].data, p, len);
		t->v[t->n].len = len;
		t->n++;
	}
	d->cids[d->ncids++] = *cid;
}

static void cbor_head(cairn_buf *b, uint8_t major, uint64_t v)
{
	if (v < 24) {
		cairn_buf_putc(b, (uint8_t)(major << 5 | v));
	} else if (v < 256) {
		cairn_buf_putc(b, (uint8_t)(major << 5 | 24));
		cairn_buf_putc(b, (uint8_t)v);
	} else if (v < 65536) {
		cairn_buf_putc(b, (uint8_t)(major << 5 | 25));
		cairn_buf_putc(b, (uint8_t)(v >> 8));
		cairn_buf_putc(b, (uint8_t)v);
	} else {
		cairn_buf_putc(b, (uint8_t)(major << 5 | 26));
		for (int i = 3; i >= 0; i--)
			cairn_buf_putc(b, (uint8_t)(v >> (8 * i)));
	}
}

static void cbor_link(cairn_buf *b, const cairn_cid *c)
{
	cairn_buf_putc(b, 0xd8);
	cairn_buf_putc(b, 42);
	cbor_head(b, 2, (uint64_t)c->len + 1);
	cairn_buf_putc(b, 0);
	cairn_buf_append(b, c->bytes, c->len);
}

static void dag_index(dag *d)
{
	d->t->icap = 64;
	while (d->t->icap < d->t->n * 2)
		d->t->icap *= 2;
	d->t->index = calloc(d->t->icap, sizeof(size_t));
	d->t->dindex = calloc(d->t->icap, sizeof(size_t));
	for (size_t i = 0; i < d->t->n; i++) {
		size_t j = cairn_cid_hash(&d->t->v[i].cid) & (d->t->icap - 1);

		while (d->t->index[j])
			j = (j + 1) & (d->t->icap - 1);
		d->t->index[j] = i + 1;
		for (j = digest_hash(&d->t->v[i].cid) & (d->t->icap - 1); d->t->dindex[j];
		     j = (j + 1) & (d->t->icap - 1))
			;
		d->t->dindex[j] = i + 1;
	}
}

/* `n` blocks: raw leaves, identity CIDs (raw, and DAG-CBOR holding a link),
 * and DAG-CBOR nodes [number, links...] linking to the 64 blocks before
 * them, and a third of the links into a hot set of 40, so some blocks have thousands of
 * parents. The last block, one in the middle and the last again are the
 * roots; blocks no root reaches stay in the store. */
static dag *dag_make(size_t n, uint64_t seed, unsigned fanout)
{
	dag *d = calloc(1, sizeof(*d));
	cairn_buf b = CAIRN_BUF_INIT;

	d->rng = seed * 2654435761u + 1;
	d->t = calloc(1, sizeof(tstore));
	d->t->base.ops = &t_ops;
	d->cids = malloc((2 * n + 1) * sizeof(cairn_cid));
	for (size_t i = 0; i < n; i++) {
		cairn_cid c;
		uint64_t kind = rnd(d) % 100;
		bool root = i == n - 1 || i == n / 2;

		cairn_buf_clear(&b);
		if (root) {
			kind = 99; /* the roots: wide DAG-CBOR nodes */
		}
		if (i < 8 || kind < 25) {
			size_t len = 8 + rnd(d) % 120;

			cairn_buf_printf(&b, "leaf %zu ", i);
			while (b.len < len)
				cairn_buf_putc(&b, (uint8_t)rnd(d));
			assert_int_equal(cairn_cid_compute(&c, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
							   b.data, b.len), 0);
		} else if (kind < 28) {
			cairn_buf_printf(&b, "id%zu", i);
			assert_int_equal(cairn_cid_compute(&c, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
							   b.data, b.len), 0);
		} else if (kind < 31) {
			/* An inlined DAG-CBOR block: its link must be followed. */
			cbor_head(&b, 4, 1);
			cbor_link(&b, &d->cids[rnd(d) % d->ncids]);
			assert_int_equal(cairn_cid_compute(&c, 1, CAIRN_CODEC_DAG_CBOR,
							   CAIRN_MH_IDENTITY, b.data, b.len), 0);
		} else {
			unsigned k = root ? 2 * fanout : 1 + (unsigned)(rnd(d) % fanout);

			cbor_head(&b, 4, k + 1);
			cbor_head(&b, 0, i);
			for (unsigned j = 0; j < k; j++) {
				size_t back = 1 + rnd(d) % (d->ncids < 64 ? d->ncids : 64);
				size_t to = rnd(d) % 3 == 0 ? rnd(d) % 40 : d->ncids - back;

				cbor_link(&b, &d->cids[to < d->ncids ? to : 0]);
			}
			assert_int_equal(cairn_cid_compute(&c, 1, CAIRN_CODEC_DAG_CBOR,
							   CAIRN_MH_BLAKE2B_256, b.data, b.len), 0);
		}
		assert_int_equal(b.err, 0);
		put(d, &c, b.data, b.len);
		if (i == n - 1)
			d->roots[0] = c;
		if (i == n / 2)
			d->roots[1] = c;
		if (c.codec == CAIRN_CODEC_RAW && c.mh_code != CAIRN_MH_IDENTITY && i % 5 == 0) {
			/* An alias: the same leaf as plain CBOR or JSON (codecs
			 * whose links are not followed), a block of its own
			 * under a CID of the same digest. With them the DAG has
			 * four classes of CID, one more than claims by position
			 * hold. */
			cairn_cid alias;

			assert_int_equal(cairn_cid_from_digest(&alias, 1,
							       i % 10 ? CAIRN_CODEC_JSON : CAIRN_CODEC_CBOR,
							       c.mh_code, c.bytes + c.digest_off,
							       c.digest_len), 0);
			put(d, &alias, b.data, b.len);
		}
	}
	cairn_buf_free(&b);
	dag_index(d);
	d->roots[2] = d->roots[0];
	return d;
}

/* A chain as gen_dag and Filecoin make them: a header per epoch,
 * [epoch, parent header, state root], and under each root a tree of its
 * own, fan-out 4 over three levels of DAG-CBOR nodes and raw leaves
 * (1 + 4 + 16 + 64 blocks). cids: each epoch's tree blocks, then its
 * header. */
#define CHAIN_TREE 85

static void chain_node(dag *d, cairn_cid *out, size_t e, unsigned level, unsigned at, cairn_buf *b)
{
	cairn_cid kids[4];

	if (level == 3) {
		cairn_buf_clear(b);
		cairn_buf_printf(b, "epoch %zu leaf %u", e, at);
		assert_int_equal(cairn_cid_compute(out, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
						   b->data, b->len), 0);
		put(d, out, b->data, b->len);
		return;
	}
	for (unsigned i = 0; i < 4; i++)
		chain_node(d, &kids[i], e, level + 1, at * 4 + i, b);
	cairn_buf_clear(b);
	cbor_head(b, 4, 6);
	cbor_head(b, 0, e);
	cbor_head(b, 0, level * 100 + at);
	for (unsigned i = 0; i < 4; i++)
		cbor_link(b, &kids[i]);
	assert_int_equal(cairn_cid_compute(out, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256,
					   b->data, b->len), 0);
	put(d, out, b->data, b->len);
}

static dag *chain_make(size_t epochs)
{
	dag *d = calloc(1, sizeof(*d));
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid header, root;

	d->t = calloc(1, sizeof(tstore));
	d->t->base.ops = &t_ops;
	d->cids = malloc(epochs * (CHAIN_TREE + 1) * sizeof(cairn_cid));
	for (size_t e = 0; e < epochs; e++) {
		chain_node(d, &root, e, 0, 0, &b);
		cairn_buf_clear(&b);
		cbor_head(&b, 4, e ? 3 : 2);
		cbor_head(&b, 0, e);
		if (e)
			cbor_link(&b, &header);
		cbor_link(&b, &root);
		assert_int_equal(cairn_cid_compute(&header, 1, CAIRN_CODEC_DAG_CBOR,
						   CAIRN_MH_SHA2_256, b.data, b.len), 0);
		put(d, &header, b.data, b.len);
		assert_int_equal(b.err, 0);
	}
	cairn_buf_free(&b);
	dag_index(d);
	d->roots[0] = header;
	return d;
}

static void dag_reset_reads(dag *d)
{
	for (size_t i = 0; i < d->t->n; i++)
		atomic_store(&d->t->v[i].reads, 0);
	atomic_store(&d->t->gets, 0);
}

static void dag_free(dag *d)
{
	t_free(&d->t->base);
	free(d->cids);
	free(d);
}

/* The reference: one thread, depth first, each CID once, by CID (an
 * alias, the same digest under another codec, is a block of its own; the
 * store's own walk, cairn_store_walk, matches by multihash). Identity CIDs
 * are followed but are not blocks to write. */
typedef struct {
	cairn_cid *v;
	size_t len, cap;
} ref_stack;

static int ref_push(const cairn_cid *cid, void *payload)
{
	ref_stack *st = payload;

	if (st->len == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 256;
		assert_non_null(st->v = realloc(st->v, st->cap * sizeof(cairn_cid)));
	}
	st->v[st->len++] = *cid;
	return 0;
}

static void reference_of(cairn_cid_set *out, dag *d, const cairn_cid *roots, size_t nroots)
{
	ref_stack st = {NULL, 0, 0};
	cairn_cid_set met = CAIRN_CID_SET_INIT;
	cairn_buf block = CAIRN_BUF_INIT;

	for (size_t i = nroots; i-- > 0;)
		ref_push(&roots[i], &st);
	while (st.len) {
		cairn_cid cid = st.v[--st.len];
		bool added;

		assert_int_equal(cairn_cid_set_add(&met, &cid, &added), 0);
		if (!added)
			continue;
		if (cid.mh_code != CAIRN_MH_IDENTITY)
			assert_int_equal(cairn_cid_set_add(out, &cid, NULL), 0);
		if (cid.codec != CAIRN_CODEC_DAG_CBOR && cid.codec != CAIRN_CODEC_DAG_PB)
			continue;
		assert_int_equal(cairn_store_get(&d->t->base, &block, &cid), 0);
		assert_int_equal(cairn_block_links(cid.codec, block.data, block.len, ref_push, &st),
				 0);
	}
	cairn_buf_free(&block);
	cairn_cid_set_free(&met);
	free(st.v);
	dag_reset_reads(d);
}

static void reference(cairn_cid_set *out, dag *d, size_t nroots)
{
	reference_of(out, d, d->roots, nroots);
}

/* ---------------------------------------------------------- checking */

static char tmpdir[256];

static void make_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-export-XXXXXX");
		assert_non_null(mkdtemp(tmpdir));
	}
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void path_of(char *out, size_t cap, const char *name)
{
	make_tmpdir();
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Reads the CAR back (hashing every block) and checks it holds exactly
 * `want`, each once, no identity CID, the given roots in the header, and
 * that each block in it was read from the store exactly once and nothing
 * else was read. */
static void check_car(const char *path, const cairn_cid_set *want, dag *d, const cairn_cid *roots,
		      size_t nroots)
{
	cairn_car_reader *r;
	cairn_car_section sec;
	cairn_cid_set got = CAIRN_CID_SET_INIT;
	size_t count = 0;
	int rc;

	assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
	assert_int_equal(cairn_car_reader_root_count(r), nroots);
	for (size_t i = 0; i < nroots; i++)
		assert_true(cairn_cid_equal(&cairn_car_reader_roots(r)[i], &roots[i]));
	while ((rc = cairn_car_reader_next(r, &sec, true)) == 1) {
		bool added;

		assert_int_not_equal(sec.cid.mh_code, CAIRN_MH_IDENTITY);
		assert_int_equal(cairn_cid_set_add(&got, &sec.cid, &added), 0);
		assert_true(added); /* no duplicate */
		assert_true(cairn_cid_set_has(want, &sec.cid));
		count++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(count, want->len);
	cairn_car_reader_free(r);
	for (size_t i = 0; i < d->t->n; i++) {
		unsigned reads = atomic_load(&d->t->v[i].reads);

		assert_int_equal(reads, cairn_cid_set_has(&got, &d->t->v[i].cid) ? 1 : 0);
	}
	assert_int_equal(atomic_load(&d->t->gets), count);
	cairn_cid_set_free(&got);
}

static uint64_t seed_from_env(void)
{
	const char *s = getenv("CAIRN_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL);

	printf("# seed %llu (CAIRN_TEST_SEED to repeat)\n", (unsigned long long)seed);
	return seed;
}

static uint64_t seed;

/* ------------------------------------------------------------- tests */

/* Over the store numbered (claims by position, aliases in the seen-set)
 * and not (every claim in the seen-set), with and without spills. */
static void test_matches_reference(void **state)
{
	static const unsigned workers[] = {1, 2, 3, 8};
	static const uint64_t memory[] = {0, 16 << 10};
	dag *d = dag_make(6000, seed, 12);
	cairn_cid_set want = CAIRN_CID_SET_INIT;
	char path[512], partial[600];

	(void)state;
	reference(&want, d, 3);
	printf("# %zu of %zu blocks reached\n", want.len, d->t->n);
	assert_true(want.len > 1000);
	assert_true(want.len < d->t->n); /* some blocks are not reached */
	path_of(path, sizeof(path), "ref.car");
	snprintf(partial, sizeof(partial), "%s.partial", path);
	for (int numbered = 0; numbered < 2; numbered++) {
		d->t->base.ops = numbered ? &t_ops_numbered : &t_ops;
		for (size_t wi = 0; wi < 4; wi++) {
			for (size_t mi = 0; mi < 2; mi++) {
				for (unsigned version = 1; version <= 2; version++) {
					cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
					cairn_export_stats st;
					cairn_export *ex;

					opts.workers = workers[wi];
					opts.memory = memory[mi];
					opts.car_version = version;
					opts.queue_len = mi ? 16 : 0; /* a tiny FIFO overflows */
					assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), 0);
					assert_int_equal(cairn_export_run(&st, ex, d->roots, 3, path), 0);
					cairn_export_free(ex);
					if (getenv("CAIRN_EXPORT_VERBOSE"))
						printf("# %u workers, memory %llu, v%u, numbered %d: %llu"
						       " blocks in %llu us, %llu runs, %llu by position\n",
						       opts.workers, (unsigned long long)opts.memory, version,
						       numbered, (unsigned long long)st.blocks,
						       (unsigned long long)st.elapsed_ns / 1000,
						       (unsigned long long)st.spills,
						       (unsigned long long)st.by_position);
					check_car(path, &want, d, d->roots, 3);
					assert_false(exists(partial));
					assert_int_equal(st.blocks, want.len);
					assert_int_equal(st.reads, want.len);
					assert_int_equal(st.seen, want.len);
					assert_true(st.identity > 0);
					if (numbered) {
						/* Most by position; the aliases met second not. */
						assert_true(st.by_position > want.len / 2);
						assert_true(st.by_position < want.len);
					} else {
						assert_int_equal(st.by_position, 0);
						if (memory[mi])
							assert_true(st.spills > 0); /* the spill path ran */
					}
					dag_reset_reads(d);
					unlink(path);
				}
			}
		}
	}
	d->t->base.ops = &t_ops;
	cairn_cid_set_free(&want);
	dag_free(d);
}

typedef struct {
	cairn_cid_set set;
	pthread_mutex_t lock;
	unsigned dups;
	_Atomic unsigned calls;
	unsigned stop_at;
} sink_state;

static int sink(const cairn_cid *cid, const uint8_t *data, size_t len, void *payload)
{
	sink_state *s = payload;
	bool added;

	assert_int_equal(cairn_cid_verify(cid, data, len), 0);
	pthread_mutex_lock(&s->lock);
	assert_int_equal(cairn_cid_set_add(&s->set, cid, &added), 0);
	s->dups += !added;
	pthread_mutex_unlock(&s->lock);
	if (s->stop_at && atomic_fetch_add(&s->calls, 1) + 1 == s->stop_at)
		return 7;
	return 0;
}

static void test_sink_and_many_roots(void **state)
{
	dag *d = dag_make(3000, seed + 1, 6);
	cairn_cid_set want = CAIRN_CID_SET_INIT;
	cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
	sink_state s = {CAIRN_CID_SET_INIT, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	cairn_cid *roots = malloc(500 * sizeof(cairn_cid));
	cairn_export *ex;

	(void)state;
	/* 500 roots, many repeated and many below others. */
	for (size_t i = 0; i < 500; i++)
		roots[i] = d->t->v[(size_t)(rnd(d) % d->t->n)].cid;
	reference_of(&want, d, roots, 500);
	opts.workers = 4;
	opts.sink = sink;
	opts.payload = &s;
	opts.queue_len = 32;
	assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), 0);
	assert_int_equal(cairn_export_run(NULL, ex, roots, 500, NULL), 0);
	cairn_export_free(ex);
	assert_int_equal(s.dups, 0);
	assert_int_equal(s.set.len, want.len);
	for (size_t i = 0; i < d->t->n; i++)
		assert_int_equal(atomic_load(&d->t->v[i].reads),
				 cairn_cid_set_has(&want, &d->t->v[i].cid) ? 1 : 0);
	/* A sink that stops stops the export with its code in the message. */
	cairn_cid_set_free(&s.set);
	s.stop_at = 100;
	assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), 0);
	assert_int_equal(cairn_export_run(NULL, ex, roots, 500, NULL), CAIRN_ERROR);
	assert_non_null(strstr(cairn_error_last(), "sink stopped (7)"));
	cairn_export_free(ex);
	cairn_cid_set_free(&s.set);
	cairn_cid_set_free(&want);
	free(roots);
	dag_free(d);
}

typedef struct {
	cairn_cid_set *seen;
	cairn_cid *next;
	size_t n;
} bfs;

static int add_next(const cairn_cid *l, void *payload)
{
	bfs *c = payload;
	bool added;

	assert_int_equal(cairn_cid_set_add(c->seen, l, &added), 0);
	if (added)
		c->next[c->n++] = *l;
	return 0;
}

/* The reference with a depth limit: breadth first, so each block is met at
 * its shortest distance from a root. */
static void reference_depth(cairn_cid_set *out, dag *d, const cairn_cid *roots, size_t nroots,
			    int max_depth)
{
	cairn_cid *cur = malloc((d->ncids + nroots) * sizeof(cairn_cid));
	cairn_cid_set seen = CAIRN_CID_SET_INIT;
	cairn_buf b = CAIRN_BUF_INIT;
	bfs c = {&seen, malloc((d->ncids + nroots) * sizeof(cairn_cid)), 0};
	size_t ncur;

	for (size_t i = 0; i < nroots; i++)
		add_next(&roots[i], &c);
	for (int level = 0; c.n; level++) {
		memcpy(cur, c.next, c.n * sizeof(cairn_cid));
		ncur = c.n;
		c.n = 0;
		for (size_t i = 0; i < ncur; i++) {
			if (cur[i].mh_code != CAIRN_MH_IDENTITY)
				assert_int_equal(cairn_cid_set_add(out, &cur[i], NULL), 0);
			if (level == max_depth || cur[i].codec != CAIRN_CODEC_DAG_CBOR)
				continue;
			assert_int_equal(cairn_store_get(&d->t->base, &b, &cur[i]), 0);
			assert_int_equal(cairn_block_links(cur[i].codec, b.data, b.len, add_next, &c), 0);
		}
	}
	dag_reset_reads(d);
	cairn_buf_free(&b);
	cairn_cid_set_free(&seen);
	free(cur);
	free(c.next);
}

/* With one worker the walk is depth first (in groups of the stack's top),
 * so what waits on its stack is bounded by the depth of the trees, not by
 * the length of the chain above them: when a header is read, the trees of
 * the epochs three and more above it are read already. A walk in FIFO
 * order would read the headers first. */
static void test_depth_first(void **state)
{
	enum { EPOCHS = 2000 };
	cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
	dag *d = chain_make(EPOCHS);
	cairn_export_stats st;
	cairn_export *ex;
	unsigned behind = 0;
	char path[512];

	(void)state;
	make_tmpdir();
	snprintf(path, sizeof(path), "%s/chain.car", tmpdir);
	opts.workers = 1;
	assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), 0);
	assert_int_equal(cairn_export_run(&st, ex, d->roots, 1, path), 0);
	cairn_export_free(ex);
	assert_int_equal(st.blocks, EPOCHS * (CHAIN_TREE + 1));
	for (size_t e = 0; e + 3 < EPOCHS; e++) {
		unsigned header = find(d->t, &d->cids[e * (CHAIN_TREE + 1) + CHAIN_TREE])->first;

		for (size_t k = 0; k < CHAIN_TREE; k++)
			if (find(d->t, &d->cids[(e + 3) * (CHAIN_TREE + 1) + k])->first > header)
				behind++;
	}
	if (behind)
		fail_msg("%u tree blocks read after a header two epochs below them", behind);
	unlink(path);
	dag_free(d);
}

static void test_depth_limit(void **state)
{
	dag *d = dag_make(4000, seed + 2, 8);

	(void)state;
	for (int depth = 0; depth <= 4; depth++) {
		cairn_cid_set want = CAIRN_CID_SET_INIT;

		reference_depth(&want, d, d->roots, 2, depth);
		for (unsigned workers = 1; workers <= 4; workers += 3) {
			cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
			sink_state s = {CAIRN_CID_SET_INIT, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
			cairn_export *ex;

			opts.workers = workers;
			opts.max_depth = depth;
			opts.sink = sink;
			opts.payload = &s;
			opts.queue_len = 16;
			assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), 0);
			assert_int_equal(cairn_export_run(NULL, ex, d->roots, 2, NULL), 0);
			cairn_export_free(ex);
			assert_int_equal(s.dups, 0);
			assert_int_equal(s.set.len, want.len);
			for (size_t i = 0; i < d->t->n; i++)
				assert_int_equal(cairn_cid_set_has(&s.set, &d->t->v[i].cid),
						 cairn_cid_set_has(&want, &d->t->v[i].cid));
			cairn_cid_set_free(&s.set);
			dag_reset_reads(d);
		}
		if (depth == 0)
			assert_int_equal(want.len, 2);
		cairn_cid_set_free(&want);
	}
	dag_free(d);
}

static void test_codecs(void **state)
{
	dag *d = dag_make(500, seed + 3, 4);
	static const uint64_t raw_only[] = {CAIRN_CODEC_RAW};
	static const uint64_t bad[] = {0x300001};
	cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
	sink_state s = {CAIRN_CID_SET_INIT, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	cairn_export *ex;

	(void)state;
	opts.sink = sink;
	opts.payload = &s;
	opts.codecs = raw_only;
	opts.ncodecs = 1;
	assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), 0);
	assert_int_equal(cairn_export_run(NULL, ex, d->roots, 3, NULL), 0);
	cairn_export_free(ex);
	assert_int_equal(s.set.len, 2); /* DAG-CBOR links not followed */
	cairn_cid_set_free(&s.set);
	opts.codecs = bad;
	assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), CAIRN_EUNSUPPORTED);
	assert_null(ex);
	opts.codecs = NULL;
	opts.car_version = 3;
	assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), CAIRN_EINVAL);
	dag_free(d);
}

static void test_missing_block(void **state)
{
	dag *d = dag_make(2000, seed + 4, 6);
	cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
	cairn_export *ex;
	char path[512], partial[600];

	(void)state;
	/* Take the hot set, which every root reaches, out of the index (and
	 * with it whatever sat behind it in the probe chains). */
	for (size_t i = 0; i < d->t->icap; i++)
		if (d->t->index[i] && d->t->index[i] <= 20)
			d->t->index[i] = 0;
	path_of(path, sizeof(path), "missing.car");
	snprintf(partial, sizeof(partial), "%s.partial", path);
	for (unsigned workers = 1; workers <= 4; workers++) {
		opts.workers = workers;
		assert_int_equal(cairn_export_new(&ex, &d->t->base, &opts), 0);
		assert_int_equal(cairn_export_run(NULL, ex, d->roots, 3, path), CAIRN_ENOTFOUND);
		assert_non_null(strstr(cairn_error_last(), "is not in the test store"));
		cairn_export_free(ex);
		assert_false(exists(path));
		assert_false(exists(partial));
	}
	dag_free(d);
}

/* ------------------------------------------------------ cancellation */

typedef struct {
	cairn_export *ex;
	unsigned delay_us;
} canceller;

static void *cancel_later(void *arg)
{
	canceller *c = arg;

	if (c->delay_us)
		usleep(c->delay_us);
	cairn_export_cancel(c->ex);
	return NULL;
}

static unsigned iterations(unsigned dflt)
{
	const char *s = getenv("CAIRN_EXPORT_CANCEL_ITERATIONS");

	return s ? (unsigned)strtoul(s, NULL, 10) : dflt;
}

/* Cancel at a random moment, over and over: run returns promptly, every
 * thread ends (ASan and the harness find leaks and hangs), and the output
 * is all or nothing. */
static void test_cancel_random(void **state)
{
	dag *d = dag_make(20000, seed + 5, 10);
	cairn_cid_set want = CAIRN_CID_SET_INIT;
	unsigned n = iterations(200), cancelled = 0, finished = 0;
	char path[512], partial[600];
	uint64_t rng = seed | 1;

	(void)state;
	reference(&want, d, 3);
	path_of(path, sizeof(path), "cancel.car");
	snprintf(partial, sizeof(partial), "%s.partial", path);
	for (unsigned it = 0; it < n; it++) {
		cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
		canceller c;
		pthread_t th;
		uint64_t t0;
		int rc;

		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		opts.workers = 1 + (unsigned)(rng % 4);
		opts.memory = rng % 3 == 0 ? 32 << 10 : 0;
		opts.queue_len = rng % 5 == 0 ? 16 : 0;
		assert_int_equal(cairn_export_new(&c.ex, &d->t->base, &opts), 0);
		/* From before the start to past the end (a run takes 5 to 50 ms,
		 * most of it the final fsync). */
		c.delay_us = (unsigned)((rng >> 8) % 40000);
		assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
		t0 = cairn_time_ns();
		rc = cairn_export_run(NULL, c.ex, d->roots, 3, path);
		if (getenv("CAIRN_EXPORT_VERBOSE"))
			printf("# %u workers, cancel at %u us: %d after %llu us\n", opts.workers,
			       c.delay_us, rc, (unsigned long long)(cairn_time_ns() - t0) / 1000);
		/* Promptly: never more than the run itself plus a second. */
		assert_true(cairn_time_ns() - t0 < 20000000000ull);
		pthread_join(th, NULL);
		cairn_export_free(c.ex);
		assert_false(exists(partial));
		if (rc == CAIRN_ECANCELED) {
			assert_false(exists(path));
			cancelled++;
		} else {
			assert_int_equal(rc, 0);
			check_car(path, &want, d, d->roots, 3);
			unlink(path);
			finished++;
		}
		dag_reset_reads(d);
	}
	printf("# %u cancelled, %u finished\n", cancelled, finished);
	if (n >= 20)
		assert_true(cancelled > 0);
	cairn_cid_set_free(&want);
	dag_free(d);
}

/* Every allocation in turn fails: the export fails cleanly (no file, no
 * leak) or, when the failed allocation did not matter, succeeds. */
static void test_alloc_failure(void **state)
{
	dag *d = dag_make(600, seed + 6, 6);
	cairn_cid_set want = CAIRN_CID_SET_INIT;
	char path[512], partial[600];
	unsigned ok = 0;

	(void)state;
	reference(&want, d, 3);
	path_of(path, sizeof(path), "alloc.car");
	snprintf(partial, sizeof(partial), "%s.partial", path);
	for (long n = 1; n < 400; n++) {
		cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
		cairn_export *ex = NULL;
		int rc;

		opts.workers = 1 + (unsigned)(n % 3);
		opts.memory = 8 << 10;
		cairn_alloc_fail_after(n, false);
		rc = cairn_export_new(&ex, &d->t->base, &opts);
		if (!rc) {
			rc = cairn_export_run(NULL, ex, d->roots, 3, path);
			cairn_export_free(ex);
		}
		cairn_alloc_fail_after(-1, false);
		assert_false(exists(partial));
		if (rc) {
			assert_false(exists(path));
		} else {
			check_car(path, &want, d, d->roots, 3);
			unlink(path);
			ok++;
		}
		dag_reset_reads(d);
	}
	assert_true(ok > 0);
	cairn_cid_set_free(&want);
	dag_free(d);
}

/* ---------------------------------------------------------- seen-set */

typedef struct {
	cairn_seenset *set;
	const cairn_cid *cids;
	size_t n;
	unsigned start;
	unsigned added;
	int rc;
	bool many;      /* by cairn_seenset_add_many, in groups */
} adder;

/* Groups of 37 CIDs with the group's first CID again at its end: that one
 * can never be new (the first took it, or another thread did). */
static void add_groups(adder *a)
{
	enum { G = 37 };
	const cairn_cid *group[G + 1];
	uint8_t fresh[G + 1];

	for (size_t i = 0; i < a->n; i += G) {
		size_t k = a->n - i < G ? a->n - i : G;

		for (size_t j = 0; j < k; j++)
			group[j] = &a->cids[(i + j + a->start) % a->n];
		group[k] = group[0];
		if ((a->rc = cairn_seenset_add_many(a->set, group, k + 1, fresh)))
			return;
		if (fresh[k]) {
			a->rc = -1000; /* a CID new twice */
			return;
		}
		for (size_t j = 0; j < k; j++)
			a->added += fresh[j];
	}
}

static void *add_all(void *arg)
{
	adder *a = arg;

	if (a->many) {
		add_groups(a);
		return NULL;
	}
	for (size_t i = 0; i < a->n; i++) {
		int rc = cairn_seenset_add(a->set, &a->cids[(i + a->start) % a->n]);

		if (rc < 0) {
			a->rc = rc;
			break;
		}
		a->added += (unsigned)rc;
	}
	return NULL;
}

/* Four threads add the same CIDs, two one at a time and two in groups:
 * each is new to exactly one of them. With a budget small enough that most
 * of the set is on disk (`spills`), or large enough that the tables only
 * grow, replaced again and again under lookups that read them unlocked. */
static void check_seenset_exact(uint64_t budget, bool spills)
{
	enum { N = 60000, T = 4 };
	cairn_cid *cids = malloc((N + 1000) * sizeof(cairn_cid));
	adder a[T];
	pthread_t th[T];
	cairn_seenset *set;
	cairn_seenset_stats st;
	unsigned total = 0;

	for (size_t i = 0; i < N + 1000; i++) {
		uint32_t v = (uint32_t)i;

		/* Long (sha2-512) CIDs too, which stay in memory. */
		if (i % 97) {
			assert_int_equal(cairn_cid_compute(&cids[i], 1, CAIRN_CODEC_RAW,
							   CAIRN_MH_SHA2_256, &v, sizeof(v)), 0);
		} else {
			uint8_t digest[64];

			memset(digest, 0, sizeof(digest));
			memcpy(digest, &v, sizeof(v));
			assert_int_equal(cairn_cid_from_digest(&cids[i], 1, CAIRN_CODEC_RAW, 0x13,
							       digest, 64), 0);
		}
	}
	assert_int_equal(cairn_seenset_new(&set, budget, NULL), 0);
	for (unsigned t = 0; t < T; t++) {
		a[t] = (adder){set, cids, N, t * (N / T), 0, 0, t % 2 == 1};
		assert_int_equal(pthread_create(&th[t], NULL, add_all, &a[t]), 0);
	}
	for (unsigned t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(a[t].rc, 0);
		total += a[t].added;
	}
	assert_int_equal(total, N);
	for (size_t i = 0; i < N + 1000; i++)
		assert_int_equal(cairn_seenset_has(set, &cids[i]), i < N ? 1 : 0);
	cairn_seenset_stats_get(&st, set);
	assert_int_equal(st.count, N);
	if (spills) {
		assert_true(st.spilled > N / 2);
		assert_true(st.runs > 10);
		/* Within the budget but for the long CIDs (1 in 97 here, kept
		 * beside the tables, never spilled) and, at 64 KiB, the runs'
		 * filters and indexes, which outgrow such a budget. */
		if (st.memory >= (budget < (1u << 20) ? 1u << 20 : budget + budget / 4))
			fail_msg("memory %llu", (unsigned long long)st.memory);
	} else {
		assert_int_equal(st.spilled, 0);
		assert_int_equal(st.runs, 0);
	}
	cairn_seenset_free(set);
	free(cids);
}

static void test_seenset_exact(void **state)
{
	(void)state;
	check_seenset_exact(64 << 10, true);
	check_seenset_exact(1 << 20, true); /* tables that shrink for a cache */
	check_seenset_exact(256u << 20, false);
}

/* A CID found on disk once is found in the shard's cache after: asking
 * again costs no disk lookup. */
static void test_seenset_found_cache(void **state)
{
	enum { N = 40000 };
	cairn_cid *cids = malloc(N * sizeof(cairn_cid));
	cairn_seenset_stats before, after;
	cairn_seenset *set;

	(void)state;
	assert_non_null(cids);
	assert_int_equal(cairn_seenset_new(&set, 1 << 20, NULL), 0);
	for (size_t i = 0; i < N; i++) {
		uint32_t v = (uint32_t)i;

		assert_int_equal(cairn_cid_compute(&cids[i], 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
						   &v, sizeof(v)), 0);
		assert_int_equal(cairn_seenset_add(set, &cids[i]), 1);
	}
	cairn_seenset_stats_get(&before, set);
	assert_true(before.spilled > N / 2);
	for (int k = 0; k < 100; k++)
		for (size_t i = 0; i < 10; i++)
			assert_int_equal(cairn_seenset_add(set, &cids[i]), 0);
	cairn_seenset_stats_get(&after, set);
	/* The first CIDs were spilled at their shards' first spills: one disk
	 * lookup each at most, then the cache. */
	assert_true(after.disk_checks - before.disk_checks <= 10);
	assert_true(after.disk_checks - before.disk_checks >= 1);
	assert_int_equal(after.count, N);
	assert_true(after.memory < 1u << 20);
	cairn_seenset_free(set);
	free(cids);
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
		cmocka_unit_test(test_seenset_exact),
		cmocka_unit_test(test_seenset_found_cache),
		cmocka_unit_test(test_matches_reference),
		cmocka_unit_test(test_sink_and_many_roots),
		cmocka_unit_test(test_depth_first),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_codecs),
		cmocka_unit_test(test_missing_block),
		cmocka_unit_test(test_cancel_random),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
	};
	int rc;

	seed = seed_from_env();
	rc = cmocka_run_group_tests_name("export", tests, NULL, NULL);
	if (tmpdir[0])
		rmdir(tmpdir);
	return rc;
}
