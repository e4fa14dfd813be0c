/* test_tlindex.c: unit tests for the DAG store's top-level index: adds,
 * lookups, removals, reopen, merges against an in-memory model, simulated
 * crashes, damaged files, readers during merges, locks, out of memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cairn.h"
#include "dagstore/tlindex_i.h"

static char tmpdir[PATH_MAX];

/* ---------------------------------------------------------------- helpers */

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

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/cairn-tli-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(tmpdir));
	cairn_tlindex__hook = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cairn_tlindex__hook = NULL;
	cairn_alloc_fail_after(-1, false);
	rm_tree(tmpdir);
	return 0;
}

static void ipath(char *out, const char *name)
{
	if (snprintf(out, PATH_MAX, "%s/%s", tmpdir, name) >= PATH_MAX)
		fail_msg("path too long");
}

static cairn_tlindex_options fast_opts(void)
{
	cairn_tlindex_options o = CAIRN_TLINDEX_OPTIONS_INIT;

	o.no_sync = true;
	o.inline_merge = true;
	return o;
}

static cairn_tlindex *open_idx(const char *dir, const cairn_tlindex_options *o)
{
	cairn_tlindex *idx = NULL;

	if (cairn_tlindex_open(&idx, dir, o))
		fail_msg("open %s: %s", dir, cairn_error_last());
	return idx;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Block b's multihash: sha2-256-shaped, digest drawn from b. */
#define MH_LEN 34
static void block_mh(uint8_t mh[MH_LEN], uint64_t b)
{
	uint64_t x = b * 0x9e3779b97f4a7c15ull + 0x1234567;

	mh[0] = 0x12;
	mh[1] = 0x20;
	for (int i = 0; i < 4; i++) {
		uint64_t v = next_rand(&x);

		memcpy(mh + 2 + 8 * i, &v, 8);
	}
}

/* Entries with their multihash bytes beside them. */
typedef struct {
	cairn_tlindex_entry *e;
	uint8_t (*mh)[MH_LEN];
	uint64_t *block;
	size_t n;
} entries;

static void entries_make(entries *es, size_t n)
{
	es->e = calloc(n ? n : 1, sizeof(*es->e));
	es->mh = calloc(n ? n : 1, MH_LEN);
	es->block = calloc(n ? n : 1, sizeof(*es->block));
	es->n = n;
	assert_true(es->e && es->mh && es->block);
}

static void entries_set(entries *es, size_t i, uint64_t block, uint64_t offset, uint32_t size)
{
	block_mh(es->mh[i], block);
	es->block[i] = block;
	es->e[i].mh = es->mh[i];
	es->e[i].mh_len = MH_LEN;
	es->e[i].offset = offset;
	es->e[i].size = size;
}

static void entries_free(entries *es)
{
	free(es->e);
	free(es->mh);
	free(es->block);
	memset(es, 0, sizeof(*es));
}

static int hit_cmp(const void *a, const void *b)
{
	const cairn_tlindex_hit *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

static int lookup_block(cairn_tlindex_hit *hits, size_t cap, cairn_tlindex *idx, uint64_t block)
{
	uint8_t mh[MH_LEN];
	int n;

	block_mh(mh, block);
	n = cairn_tlindex_lookup(hits, cap, idx, mh, sizeof(mh));
	if (n < 0)
		fail_msg("lookup: %s", cairn_error_last());
	if ((size_t)n <= cap)
		qsort(hits, (size_t)n, sizeof(*hits), hit_cmp);
	return n;
}

static size_t count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0, sl = strlen(suffix);

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l >= sl && !strcmp(e->d_name + l - sl, suffix))
			n++;
	}
	closedir(d);
	return n;
}

/* -------------------------------------------------------------- the model
 *
 * Every live entry, by shard; lookups answered by brute force. */

typedef struct {
	uint32_t shard;
	uint64_t block, offset;
	uint32_t size;
} m_entry;

typedef struct {
	m_entry *e;
	size_t n, cap;
	uint32_t *shards;      /* live shard ids */
	size_t nshards, shards_cap;
} model;

static void model_add(model *m, uint32_t shard, const entries *es)
{
	if (m->nshards == m->shards_cap) {
		m->shards_cap = m->shards_cap ? m->shards_cap * 2 : 64;
		m->shards = realloc(m->shards, m->shards_cap * sizeof(*m->shards));
	}
	m->shards[m->nshards++] = shard;
	for (size_t i = 0; i < es->n; i++) {
		if (m->n == m->cap) {
			m->cap = m->cap ? m->cap * 2 : 1024;
			m->e = realloc(m->e, m->cap * sizeof(*m->e));
		}
		m->e[m->n].shard = shard;
		m->e[m->n].block = es->block[i];
		m->e[m->n].offset = es->e[i].offset;
		m->e[m->n].size = es->e[i].size;
		m->n++;
	}
}

static void model_remove(model *m, uint32_t shard)
{
	size_t k = 0;

	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].shard != shard)
			m->e[k++] = m->e[i];
	m->n = k;
	k = 0;
	for (size_t i = 0; i < m->nshards; i++)
		if (m->shards[i] != shard)
			m->shards[k++] = m->shards[i];
	m->nshards = k;
}

static bool model_has(const model *m, uint32_t shard)
{
	for (size_t i = 0; i < m->nshards; i++)
		if (m->shards[i] == shard)
			return true;
	return false;
}

static void model_free(model *m)
{
	free(m->e);
	free(m->shards);
	memset(m, 0, sizeof(*m));
}

static int m_entry_cmp(const void *a, const void *b)
{
	const m_entry *x = a, *y = b;

	if (x->block != y->block)
		return x->block < y->block ? -1 : 1;
	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

/* Compares the index's hits for `block` with the model's, e[0..n). */
#define MAX_HITS 4096
static void check_block(cairn_tlindex *idx, uint64_t block, const m_entry *e, size_t n)
{
	static cairn_tlindex_hit got[MAX_HITS];
	int k = lookup_block(got, MAX_HITS, idx, block);

	assert_true(n < MAX_HITS);
	if ((size_t)k != n)
		fail_msg("block %llu: %d hits, the model has %zu", (unsigned long long)block, k, n);
	for (size_t i = 0; i < n; i++)
		if (got[i].shard != e[i].shard || got[i].offset != e[i].offset ||
		    got[i].size != e[i].size)
			fail_msg("block %llu: hit %zu: shard %u offset %llu, want shard %u offset %llu",
				 (unsigned long long)block, i, got[i].shard,
				 (unsigned long long)got[i].offset, e[i].shard,
				 (unsigned long long)e[i].offset);
}

static void check_all(cairn_tlindex *idx, const model *m, uint64_t nblocks, uint64_t *rng)
{
	cairn_tlindex_stats st;
	m_entry *e = malloc((m->n + 1) * sizeof(*e));

	/* Every block the model holds (grouped by sorting), and a sample of
	 * the rest. */
	memcpy(e, m->e, m->n * sizeof(*e));
	qsort(e, m->n, sizeof(*e), m_entry_cmp);
	for (size_t i = 0, j; i < m->n; i = j) {
		for (j = i + 1; j < m->n && e[j].block == e[i].block; j++)
			;
		check_block(idx, e[i].block, e + i, j - i);
	}
	for (int i = 0; i < 200; i++) {
		uint64_t b = next_rand(rng) % (nblocks * 2);
		size_t lo = 0, hi = m->n, j;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (e[mid].block < b)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (j = lo; j < m->n && e[j].block == b; j++)
			;
		check_block(idx, b, e + lo, j - lo);
	}
	free(e);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.entries, m->n);
	assert_int_equal(st.shards, m->nshards);
	for (size_t i = 0; i < m->nshards; i++)
		assert_int_equal(cairn_tlindex_has_shard(idx, m->shards[i]), 1);
}

/* ------------------------------------------------------------------ tests */

static void test_hash_vectors(void **state)
{
	uint8_t buf[100];

	(void)state;
	/* XXH64: the values of the reference libxxhash 0.8.1. */
	assert_true(cairn_tlindex__hash("", 0, 0) == 0xef46db3751d8e999ull);
	assert_true(cairn_tlindex__hash("abc", 3, 0) == 0x44bc2cf5ad770999ull);
	for (int i = 0; i < 100; i++)
		buf[i] = (uint8_t)i;
	assert_true(cairn_tlindex__hash(buf, 100, 0) == 0x6ac1e58032166597ull);
	assert_true(cairn_tlindex__hash(buf, 37, 7) == 0x69e0c889396afaf7ull);
	assert_true(cairn_tlindex_key(buf, 100) == cairn_tlindex__hash(buf, 100, 0));
}

static void test_sort(void **state)
{
	size_t sizes[] = {0, 1, 2, 31, 32, 33, 100, 1000, 100000};
	uint64_t x = 42;

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		tl_rec *a = calloc(n + 1, sizeof(*a)), *b = calloc(n + 1, sizeof(*b)),
		       *t = calloc(n + 1, sizeof(*t));

		for (size_t i = 0; i < n; i++) {
			uint64_t r = next_rand(&x);

			/* A third share a few keys: equal keys order by shard, offset. */
			a[i].key = i % 3 == 0 ? r % 5 : r;
			a[i].shard = (uint32_t)(next_rand(&x) % 7);
			a[i].offset = next_rand(&x) % 11;
			a[i].size = (uint32_t)i;
		}
		memcpy(b, a, n * sizeof(*a));
		cairn_tlindex__sort(a, n, t);
		for (size_t i = 1; i < n; i++)
			assert_true(tl_rec_cmp(&a[i - 1], &a[i]) <= 0);
		/* The same multiset: sorted b equals a. */
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && tl_rec_cmp(&b[j - 1], &b[j]) > 0 && n <= 1000; j--) {
				tl_rec tmp = b[j];

				b[j] = b[j - 1];
				b[j - 1] = tmp;
			}
		if (n <= 1000)
			assert_memory_equal(a, b, n * sizeof(*a));
		free(a);
		free(b);
		free(t);
	}
	/* All keys equal (a block a million times): still sorted, no quadratic
	 * time. */
	{
		size_t n = 200000;
		tl_rec *a = calloc(n, sizeof(*a)), *t = calloc(n, sizeof(*t));

		for (size_t i = 0; i < n; i++) {
			a[i].key = 7;
			a[i].offset = n - i;
		}
		cairn_tlindex__sort(a, n, t);
		for (size_t i = 1; i < n; i++)
			assert_true(a[i - 1].offset < a[i].offset);
		free(a);
		free(t);
	}
}

static void flip_byte(const char *path, uint64_t at, uint8_t mask);


/* A run's bloom filter: no false negatives, about 1% false positives. */
static void test_bloom(void **state)
{
	size_t n = 100000, fp = 0;
	tl_rec *r = calloc(n, sizeof(*r)), *t = calloc(n, sizeof(*t));
	tl_shard_count sc = {1, 0, 0};
	tl_writer *w;
	tl_run *run;
	uint64_t x = 77;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		r[i].key = next_rand(&x);
		r[i].shard = 1;
	}
	cairn_tlindex__sort(r, n, t);
	sc.count = n;
	assert_int_equal(cairn_tlindex__writer_open(&w, tmpdir, 5, 1, false, n, 10), 0);
	assert_int_equal(cairn_tlindex__writer_add(w, r, n), 0);
	assert_int_equal(cairn_tlindex__writer_finish(w, &sc, 1), 0);
	cairn_tlindex__writer_free(w, false);
	assert_int_equal(cairn_tlindex__run_open(&run, tmpdir, 5, 1, n), 0);
	assert_int_equal(cairn_tlindex__run_check(run), 0);
	assert_int_equal(cairn_tlindex__run_load_bloom(run), 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(tl_bloom_has(run->bloom, run->bloom_blocks, r[i].key));
		assert_int_equal(cairn_tlindex__run_lower_bound(run, r[i].key), i);
	}
	for (size_t i = 0; i < n; i++)
		fp += tl_bloom_has(run->bloom, run->bloom_blocks, next_rand(&x));
	print_message("bloom: %.2f%% false positives at 10 bits per key\n", 100.0 * (double)fp / (double)n);
	assert_true(fp < n / 50);
	cairn_tlindex__run_unref(run);
	/* A damaged filter: not loaded (lookups go on without it); check
	 * names it. */
	{
		char path[PATH_MAX];

		assert_int_equal(cairn_tlindex__run_path(path, tmpdir, 5), 0);
		assert_int_equal(cairn_tlindex__run_open(&run, tmpdir, 5, 1, n), 0);
		flip_byte(path, run->bloom_at + 77, 2);
		assert_int_equal(cairn_tlindex__run_load_bloom(run), CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "bloom filter checksum"));
		assert_null(run->bloom);
		assert_int_equal(cairn_tlindex__run_check(run), CAIRN_ECORRUPT);
		assert_int_equal(cairn_tlindex__run_lower_bound(run, r[7].key), 7);
		cairn_tlindex__run_unref(run);
	}
	free(r);
	free(t);
}

static void test_basic(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	cairn_tlindex_hit hits[4];
	cairn_tlindex_stats st;
	entries es;
	uint8_t bad[3] = {0x12, 0x20, 0x01};

	(void)state;
	idx = open_idx(tmpdir, &o);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.runs, 0);
	assert_int_equal(lookup_block(hits, 4, idx, 1), 0);

	entries_make(&es, 1000);
	for (size_t i = 0; i < es.n; i++)
		entries_set(&es, i, i, 100 + i * 1000, (uint32_t)(500 + i));
	assert_int_equal(cairn_tlindex_add_shard(idx, 7, es.e, es.n), 0);
	for (size_t i = 0; i < es.n; i++) {
		assert_int_equal(lookup_block(hits, 4, idx, i), 1);
		assert_int_equal(hits[0].shard, 7);
		assert_int_equal(hits[0].offset, 100 + i * 1000);
		assert_int_equal(hits[0].size, 500 + i);
	}
	assert_int_equal(lookup_block(hits, 4, idx, 5000), 0);
	/* Without room, the count alone. */
	assert_int_equal(lookup_block(NULL, 0, idx, 3), 1);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.entries, 1000);
	assert_int_equal(st.shards, 1);
	assert_int_equal(st.runs, 1);
	assert_true(st.bytes >= 1000 * 24);
	assert_int_equal(cairn_tlindex_has_shard(idx, 7), 1);
	assert_int_equal(cairn_tlindex_has_shard(idx, 8), 0);

	assert_int_equal(cairn_tlindex_add_shard(idx, 7, es.e, es.n), CAIRN_EEXISTS);
	assert_int_equal(cairn_tlindex_lookup(hits, 4, idx, bad, sizeof(bad)), CAIRN_EINVAL);
	es.e[3].mh_len = 5;
	assert_int_equal(cairn_tlindex_add_shard(idx, 9, es.e, es.n), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "entry 3"));
	assert_int_equal(cairn_tlindex_has_shard(idx, 9), 0);
	assert_int_equal(count_files(tmpdir, ".run"), 1);
	es.e[3].mh_len = MH_LEN;

	assert_int_equal(cairn_tlindex_remove_shard(idx, 7), 0);
	assert_int_equal(lookup_block(hits, 4, idx, 3), 0);
	assert_int_equal(cairn_tlindex_has_shard(idx, 7), 0);
	assert_int_equal(cairn_tlindex_remove_shard(idx, 7), CAIRN_ENOTFOUND);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.shards, 0);

	/* Added again after removal: seen again. */
	assert_int_equal(cairn_tlindex_add_shard(idx, 7, es.e, 10), 0);
	assert_int_equal(lookup_block(hits, 4, idx, 3), 1);
	assert_int_equal(lookup_block(hits, 4, idx, 30), 0);
	assert_int_equal(cairn_tlindex_compact(idx), 0);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.runs, 1);
	assert_int_equal(st.records, 10);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(lookup_block(hits, 4, idx, 3), 1);
	assert_int_equal(cairn_tlindex_verify(idx), 0);
	cairn_tlindex_close(idx);
	assert_int_equal(count_files(tmpdir, ".run"), 1);
	entries_free(&es);
}

static void test_many_shards(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	cairn_tlindex_hit hits[64];
	entries es;

	(void)state;
	idx = open_idx(tmpdir, &o);
	/* Block 99999 is in every shard; blocks s*100+i only in shard s. */
	for (uint32_t s = 1; s <= 20; s++) {
		entries_make(&es, 11);
		for (size_t i = 0; i < 10; i++)
			entries_set(&es, i, s * 100 + i, i * 10, 1);
		entries_set(&es, 10, 99999, 5000 + s, 77);
		assert_int_equal(cairn_tlindex_add_shard(idx, s, es.e, es.n), 0);
		entries_free(&es);
	}
	assert_int_equal(lookup_block(hits, 64, idx, 99999), 20);
	for (uint32_t s = 1; s <= 20; s++) {
		assert_int_equal(hits[s - 1].shard, s);
		assert_int_equal(hits[s - 1].offset, 5000 + s);
	}
	/* Room for 3: all 20 counted, 3 written. */
	memset(hits, 0xff, sizeof(hits));
	assert_int_equal(lookup_block(hits, 3, idx, 99999), 20);
	assert_int_equal(hits[3].shard, 0xffffffffu);
	for (uint32_t s = 2; s <= 20; s += 3)
		assert_int_equal(cairn_tlindex_remove_shard(idx, s), 0);
	assert_int_equal(lookup_block(hits, 64, idx, 99999), 13);
	for (int i = 0; i < 13; i++)
		assert_true(hits[i].shard % 3 != 2);
	assert_int_equal(lookup_block(hits, 64, idx, 205), 0);
	assert_int_equal(lookup_block(hits, 64, idx, 305), 1);
	cairn_tlindex_close(idx);

	/* Reopen keeps everything. */
	idx = open_idx(tmpdir, &o);
	assert_int_equal(lookup_block(hits, 64, idx, 99999), 13);
	assert_int_equal(lookup_block(hits, 64, idx, 205), 0);
	assert_int_equal(lookup_block(hits, 64, idx, 305), 1);
	assert_int_equal(cairn_tlindex_has_shard(idx, 5), 0);
	assert_int_equal(cairn_tlindex_has_shard(idx, 4), 1);
	assert_int_equal(cairn_tlindex_compact(idx), 0);
	assert_int_equal(lookup_block(hits, 64, idx, 99999), 13);
	cairn_tlindex_close(idx);
}

static void test_batch_and_empty(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	cairn_tlindex_hit hits[8];
	cairn_tlindex_shard sh[3];
	cairn_tlindex_stats st;
	entries a, b;

	(void)state;
	idx = open_idx(tmpdir, &o);
	entries_make(&a, 50);
	entries_make(&b, 70);
	for (size_t i = 0; i < 50; i++)
		entries_set(&a, i, i, i, 1);
	for (size_t i = 0; i < 70; i++)
		entries_set(&b, i, 25 + i, 1000 + i, 2);
	sh[0] = (cairn_tlindex_shard){1, a.e, a.n};
	sh[1] = (cairn_tlindex_shard){2, NULL, 0}; /* an empty shard */
	sh[2] = (cairn_tlindex_shard){3, b.e, b.n};
	assert_int_equal(cairn_tlindex_add_batch(idx, sh, 3), 0);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.runs, 1);
	assert_int_equal(st.shards, 3);
	assert_int_equal(st.entries, 120);
	assert_int_equal(cairn_tlindex_has_shard(idx, 2), 1);
	assert_int_equal(lookup_block(hits, 8, idx, 30), 2);
	/* Ids must be distinct and new; nothing is added otherwise. */
	sh[1].id = 3;
	assert_int_equal(cairn_tlindex_add_batch(idx, sh + 1, 2), CAIRN_EINVAL);
	sh[1].id = 9;
	sh[2].id = 1;
	assert_int_equal(cairn_tlindex_add_batch(idx, sh + 1, 2), CAIRN_EEXISTS);
	assert_int_equal(cairn_tlindex_has_shard(idx, 9), 0);
	assert_int_equal(cairn_tlindex_add_batch(idx, sh, 0), 0);
	assert_int_equal(cairn_tlindex_add_shard(idx, 2, NULL, 0), CAIRN_EEXISTS);
	assert_int_equal(cairn_tlindex_remove_shard(idx, 2), 0);
	assert_int_equal(cairn_tlindex_has_shard(idx, 2), 0);
	assert_int_equal(cairn_tlindex_add_shard(idx, 2, NULL, 0), 0);
	assert_int_equal(cairn_tlindex_has_shard(idx, 2), 1);
	cairn_tlindex_close(idx);
	idx = open_idx(tmpdir, &o);
	assert_int_equal(cairn_tlindex_has_shard(idx, 2), 1);
	assert_int_equal(cairn_tlindex_compact(idx), 0);
	assert_int_equal(cairn_tlindex_has_shard(idx, 2), 1);
	assert_int_equal(cairn_tlindex_remove_shard(idx, 2), 0);
	assert_int_equal(cairn_tlindex_compact(idx), 0);
	assert_int_equal(cairn_tlindex_has_shard(idx, 2), 0);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.shards, 2);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(lookup_block(hits, 8, idx, 30), 2);
	cairn_tlindex_close(idx);
	entries_free(&a);
	entries_free(&b);
}

/* An iterator over an entries array; fails at `fail_at` if set. */
typedef struct {
	const entries *es;
	size_t i, fail_at;
} iter_state;

static int iter_next(cairn_tlindex_entry *out, void *payload)
{
	iter_state *s = payload;

	if (s->fail_at && s->i == s->fail_at)
		return cairn_error_set(CAIRN_ECANCELED, "stop");
	if (s->i == s->es->n)
		return 0;
	*out = s->es->e[s->i++];
	return 1;
}

static int collect(uint64_t key, const cairn_tlindex_hit *hit, void *payload)
{
	uint64_t *sum = payload;

	sum[0]++;
	sum[1] += hit->offset;
	sum[2] ^= key;
	return 0;
}

static void test_iter_and_foreach(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	cairn_tlindex_hit hits[4];
	cairn_tlindex_stats st;
	iter_state it;
	entries es;
	uint64_t sum[3] = {0}, want_off = 0, want_x = 0;

	(void)state;
	o.sort_budget = 24 * 1000; /* 1000 records a run: the shard spans runs */
	idx = open_idx(tmpdir, &o);
	entries_make(&es, 4500);
	for (size_t i = 0; i < es.n; i++) {
		entries_set(&es, i, i, i * 3, 9);
		want_off += i * 3;
		want_x ^= cairn_tlindex_key(es.mh[i], MH_LEN);
	}
	it = (iter_state){&es, 0, 2500};
	assert_int_equal(cairn_tlindex_add_shard_iter(idx, 5, iter_next, &it), CAIRN_ECANCELED);
	assert_int_equal(cairn_tlindex_has_shard(idx, 5), 0);
	assert_int_equal(count_files(tmpdir, ".run"), 0);
	it = (iter_state){&es, 0, 0};
	assert_int_equal(cairn_tlindex_add_shard_iter(idx, 5, iter_next, &it), 0);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.entries, 4500);
	for (size_t i = 0; i < es.n; i += 7) {
		assert_int_equal(lookup_block(hits, 4, idx, i), 1);
		assert_int_equal(hits[0].offset, i * 3);
	}
	assert_int_equal(cairn_tlindex_shard_foreach(idx, 5, collect, sum), 0);
	assert_int_equal(sum[0], 4500);
	assert_int_equal(sum[1], want_off);
	assert_true(sum[2] == want_x);
	assert_int_equal(cairn_tlindex_shard_foreach(idx, 6, collect, sum), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_tlindex_compact(idx), 0);
	memset(sum, 0, sizeof(sum));
	assert_int_equal(cairn_tlindex_shard_foreach(idx, 5, collect, sum), 0);
	assert_int_equal(sum[0], 4500);
	cairn_tlindex_close(idx);
	entries_free(&es);
}

/* Random adds (single, batch, iterator), removals, re-adds, compactions and
 * reopens, checked against the model after every round. */
static void model_rounds(const cairn_tlindex_options *o, uint64_t seed, int rounds)
{
	cairn_tlindex *idx = open_idx(tmpdir, o);
	model m = {0};
	uint64_t x = seed, nblocks = 20000, total = 0;
	uint32_t next_shard = 1;
	uint32_t removed[256];
	size_t nremoved = 0;

	for (int round = 0; round < rounds; round++) {
		int ops = 1 + (int)(next_rand(&x) % 6);

		for (int op = 0; op < ops; op++) {
			uint64_t what = next_rand(&x) % 10;

			if (what < 5 || m.nshards < 3) {
				/* Add 1 to 4 shards; sometimes a removed id again. */
				size_t ns = what < 3 ? 1 : 1 + next_rand(&x) % 4;
				cairn_tlindex_shard sh[4];
				entries es[4];

				for (size_t s = 0; s < ns; s++) {
					size_t n = next_rand(&x) % 4 == 0 ? next_rand(&x) % 3 :
						   next_rand(&x) % 1500;
					uint32_t id;

					if (nremoved && next_rand(&x) % 4 == 0)
						id = removed[--nremoved];
					else
						id = next_shard++;
					entries_make(&es[s], n);
					for (size_t i = 0; i < n; i++) {
						/* Blocks shared across shards, and some twice in one. */
						uint64_t b = next_rand(&x) % 3 == 0 ?
							     next_rand(&x) % 300 :
							     next_rand(&x) % nblocks;

						entries_set(&es[s], i, b, next_rand(&x) % (1ull << 40),
							    (uint32_t)next_rand(&x));
					}
					sh[s] = (cairn_tlindex_shard){id, es[s].e, es[s].n};
				}
				if (ns == 1 && next_rand(&x) % 2) {
					iter_state it = {&es[0], 0, 0};

					assert_int_equal(cairn_tlindex_add_shard_iter(idx, sh[0].id,
							 iter_next, &it), 0);
				} else if (ns == 1) {
					assert_int_equal(cairn_tlindex_add_shard(idx, sh[0].id,
							 sh[0].entries, sh[0].count), 0);
				} else if (cairn_tlindex_add_batch(idx, sh, ns)) {
					fail_msg("add_batch: %s", cairn_error_last());
				}
				for (size_t s = 0; s < ns; s++) {
					model_add(&m, sh[s].id, &es[s]);
					total += es[s].n;
					entries_free(&es[s]);
				}
			} else if (what < 8) {
				uint32_t id = m.shards[next_rand(&x) % m.nshards];

				if (cairn_tlindex_remove_shard(idx, id))
					fail_msg("remove %u: %s", id, cairn_error_last());
				model_remove(&m, id);
				assert_false(model_has(&m, id));
				assert_int_equal(cairn_tlindex_has_shard(idx, id), 0);
				if (nremoved < 256)
					removed[nremoved++] = id;
			} else if (what == 8) {
				if (cairn_tlindex_compact(idx))
					fail_msg("compact: %s", cairn_error_last());
			} else {
				cairn_tlindex_close(idx);
				idx = open_idx(tmpdir, o);
			}
		}
		check_all(idx, &m, nblocks, &x);
	}
	assert_int_equal(cairn_tlindex_verify(idx), 0);
	assert_true(total > 20000);
	cairn_tlindex_close(idx);
	/* Only what the manifest lists is left. */
	idx = open_idx(tmpdir, o);
	{
		cairn_tlindex_stats st;

		cairn_tlindex_stats_get(&st, idx);
		cairn_tlindex_close(idx);
		assert_int_equal(count_files(tmpdir, ".run"), st.runs);
	}
	model_free(&m);
}

static void test_model_inline(void **state)
{
	cairn_tlindex_options o = fast_opts();

	(void)state;
	o.sort_budget = 24 * 700; /* several runs per large shard */
	model_rounds(&o, 0x1234, 60);
}

static void test_model_background(void **state)
{
	cairn_tlindex_options o = fast_opts();

	(void)state;
	o.inline_merge = false;
	o.max_runs = 6;
	model_rounds(&o, 0x98765, 60);
}

static void test_model_ratio(void **state)
{
	cairn_tlindex_options o = fast_opts();

	(void)state;
	o.merge_ratio = 4;
	o.no_sync = false; /* the fsync paths too */
	o.bloom_bits = 0;  /* and runs without bloom filters */
	model_rounds(&o, 0x55, 25);
}

static void test_policy(void **state)
{
	size_t f, l;
	uint64_t none[8] = {0};

	(void)state;
	{
		uint64_t s[] = {100};
		assert_false(cairn_tlindex__pick(&f, &l, s, none, 1, 1, 24));
	}
	{	/* 1, 1: a binary counter merges them */
		uint64_t s[] = {1, 1};
		assert_true(cairn_tlindex__pick(&f, &l, s, none, 2, 1, 24));
		assert_int_equal(f, 0);
		assert_int_equal(l, 1);
	}
	{	/* 4, 2, 1, 1: all four (1+1 >= 2, 1+1+2 >= 4) */
		uint64_t s[] = {4, 2, 1, 1};
		assert_true(cairn_tlindex__pick(&f, &l, s, none, 4, 1, 24));
		assert_int_equal(f, 0);
		assert_int_equal(l, 3);
	}
	{	/* 1000, 10, 1: nothing at ratio 1; 10 and 1 at ratio 10 */
		uint64_t s[] = {1000, 10, 1};
		assert_false(cairn_tlindex__pick(&f, &l, s, none, 3, 1, 24));
		assert_true(cairn_tlindex__pick(&f, &l, s, none, 3, 10, 24));
		assert_int_equal(f, 1);
		assert_int_equal(l, 2);
		s[0] = 100; /* 100 <= 10 x 11: all three */
		assert_true(cairn_tlindex__pick(&f, &l, s, none, 3, 10, 24));
		assert_int_equal(f, 0);
		assert_int_equal(l, 2);
	}
	{	/* half dead: rewritten alone */
		uint64_t s[] = {100, 10, 1}, d[] = {0, 5, 0};
		assert_true(cairn_tlindex__pick(&f, &l, s, d, 3, 1, 24));
		assert_int_equal(f, 1);
		assert_int_equal(l, 1);
	}
	{	/* shrinking sizes past max_runs / 2: the smallest adjacent pair */
		uint64_t s[] = {1000, 500, 200, 90, 40, 20, 9, 4};
		assert_false(cairn_tlindex__pick(&f, &l, s, none, 8, 1, 24));
		assert_true(cairn_tlindex__pick(&f, &l, s, none, 8, 1, 8));
		assert_int_equal(f, 6);
		assert_int_equal(l, 7);
	}
}

/* Adds shard `shard` holding blocks first .. first + n - 1. */
static void add_range(cairn_tlindex *idx, uint32_t shard, uint64_t first, size_t n, int *rc)
{
	entries es;

	entries_make(&es, n);
	for (size_t i = 0; i < n; i++)
		entries_set(&es, i, first + i, i, 1);
	*rc = cairn_tlindex_add_shard(idx, shard, es.e, es.n);
	entries_free(&es);
}

/* Equal adds with ratio 1 keep popcount(adds) runs, as a binary counter;
 * cairn_tlindex_merge gets the merge thread's work done on demand. */
static void test_run_count(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	cairn_tlindex_stats st;
	int rc;

	(void)state;
	idx = open_idx(tmpdir, &o);
	for (uint32_t k = 1; k <= 40; k++) {
		add_range(idx, k, (uint64_t)k * 1000, 200, &rc);
		assert_int_equal(rc, 0);
		cairn_tlindex_stats_get(&st, idx);
		assert_int_equal(st.runs, (uint64_t)__builtin_popcount(k));
	}
	assert_int_equal(st.merges, 20); /* one for each even count */
	cairn_tlindex_close(idx);
	o.inline_merge = false;
	o.max_runs = 64;
	idx = open_idx(tmpdir, &o);
	assert_int_equal(cairn_tlindex_merge(idx), 0);
	cairn_tlindex_stats_get(&st, idx);
	assert_true(st.runs <= 2);
	assert_int_equal(st.entries, 40 * 200);
	cairn_tlindex_close(idx);
}

/* ------------------------------------------------------------- crashes */

static const char *crash_at;
static int crash_hook(const char *point)
{
	return crash_at && !strcmp(point, crash_at);
}

static int exit_hook(const char *point)
{
	if (crash_at && !strcmp(point, crash_at))
		_exit(0);
	return 0;
}


/* Shards 1 and 2 added in one run (blocks 0..299, 1000..1199), shard 2
 * removed: a run with a tombstone, which compact rewrites. */
static cairn_tlindex *crash_base(const cairn_tlindex_options *o)
{
	cairn_tlindex *idx = open_idx(tmpdir, o);
	cairn_tlindex_shard sh[2];
	entries a, b;

	entries_make(&a, 300);
	entries_make(&b, 200);
	for (size_t i = 0; i < 300; i++)
		entries_set(&a, i, i, i, 1);
	for (size_t i = 0; i < 200; i++)
		entries_set(&b, i, 1000 + i, i, 1);
	sh[0] = (cairn_tlindex_shard){1, a.e, a.n};
	sh[1] = (cairn_tlindex_shard){2, b.e, b.n};
	assert_int_equal(cairn_tlindex_add_batch(idx, sh, 2), 0);
	assert_int_equal(cairn_tlindex_remove_shard(idx, 2), 0);
	entries_free(&a);
	entries_free(&b);
	return idx;
}

static void check_after_crash(const cairn_tlindex_options *o, bool new_shard, bool removed1)
{
	cairn_tlindex *idx = open_idx(tmpdir, o);
	cairn_tlindex_hit hits[4];
	cairn_tlindex_stats st;

	assert_int_equal(lookup_block(hits, 4, idx, 5), removed1 ? 0 : 1);
	assert_int_equal(lookup_block(hits, 4, idx, 1005), 0);
	assert_int_equal(lookup_block(hits, 4, idx, 2005), new_shard ? 1 : 0);
	assert_int_equal(cairn_tlindex_has_shard(idx, 3), new_shard);
	cairn_tlindex_stats_get(&st, idx);
	assert_int_equal(st.entries, (removed1 ? 0 : 300) + (new_shard ? 100 : 0));
	assert_int_equal(cairn_tlindex_verify(idx), 0);
	/* Orphans and the temporary manifest are gone; writes work. */
	assert_int_equal(count_files(tmpdir, ".run"), st.runs);
	assert_int_equal(count_files(tmpdir, ".tmp"), 0);
	{
		int rc;

		add_range(idx, 4, 5000, 10, &rc);
		assert_int_equal(rc, 0);
	}
	cairn_tlindex_close(idx);
}

static void test_crash_points(void **state)
{
	static const struct {
		const char *point;
		int op;       /* 0 add shard 3, 1 remove shard 1, 2 compact */
		bool after;   /* the new state survives */
	} cases[] = {
		{"run-partial", 0, false},   {"run-synced", 0, false},
		{"manifest-tmp", 0, false},  {"manifest-renamed", 0, true},
		{"manifest-tmp", 1, false},  {"manifest-renamed", 1, true},
		{"merge-synced", 2, false},  {"manifest-tmp", 2, false},
		{"manifest-renamed", 2, true}, {"merge-committed", 2, true},
	};
	cairn_tlindex_options o = fast_opts();

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		cairn_tlindex *idx;
		int rc = 0;

		rm_tree(tmpdir);
		assert_int_equal(mkdir(tmpdir, 0700), 0);
		idx = crash_base(&o);
		crash_at = cases[c].point;
		cairn_tlindex__hook = crash_hook;
		if (cases[c].op == 0)
			add_range(idx, 3, 2000, 100, &rc);
		else if (cases[c].op == 1)
			rc = cairn_tlindex_remove_shard(idx, 1);
		else
			rc = cairn_tlindex_compact(idx);
		cairn_tlindex__hook = NULL;
		if (rc != CAIRN_EIO)
			fail_msg("case %zu (%s): rc %d: %s", c, cases[c].point, rc, cairn_error_last());
		assert_non_null(strstr(cairn_error_last(), "simulated crash"));
		/* The index refuses writes now; reads go on. */
		add_range(idx, 9, 9000, 5, &rc);
		assert_int_equal(rc, CAIRN_EINVAL);
		assert_int_equal(cairn_tlindex_remove_shard(idx, 1), CAIRN_EINVAL);
		cairn_tlindex_close(idx);
		check_after_crash(&o, cases[c].op == 0 && cases[c].after,
				  cases[c].op == 1 && cases[c].after);
	}
}

/* A real crash: the child process dies at the point; the parent reopens. */
static void test_crash_fork(void **state)
{
	static const char *points[] = {"run-partial", "run-synced", "manifest-tmp",
				       "manifest-renamed"};
	cairn_tlindex_options o = fast_opts();

	(void)state;
	o.no_sync = false;
	for (size_t c = 0; c < 4; c++) {
		cairn_tlindex *idx;
		pid_t pid;
		int status;

		rm_tree(tmpdir);
		assert_int_equal(mkdir(tmpdir, 0700), 0);
		idx = crash_base(&o);
		cairn_tlindex_close(idx);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int rc;

			idx = NULL;
			if (cairn_tlindex_open(&idx, tmpdir, &o))
				_exit(2);
			crash_at = points[c];
			cairn_tlindex__hook = exit_hook;
			add_range(idx, 3, 2000, 100, &rc);
			_exit(3); /* the hook should have ended us */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		check_after_crash(&o, c == 3, false);
	}
}

/* --------------------------------------------------------- damaged files */

static void flip_byte(const char *path, uint64_t at, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)at), 1);
	b ^= mask;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)at), 1);
	close(fd);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void copy_file(const char *from, const char *to)
{
	cairn_buf b = CAIRN_BUF_INIT;

	assert_int_equal(cairn_file_read_all(&b, from, 1u << 30), 0);
	assert_int_equal(cairn_file_replace_atomic(to, b.data, b.len, 0644), 0);
	cairn_buf_free(&b);
}

/* The one run file of a compacted index. */
static void only_run(char *out)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	out[0] = '\0';
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".run"))
			ipath(out, e->d_name);
	closedir(d);
	assert_true(out[0]);
}

static void expect_open_corrupt(const cairn_tlindex_options *o, const char *name, const char *at)
{
	cairn_tlindex *idx = NULL;
	int rc = cairn_tlindex_open(&idx, tmpdir, o);

	if (rc != CAIRN_ECORRUPT)
		fail_msg("open: rc %d (%s), want ECORRUPT", rc, cairn_error_last());
	assert_null(idx);
	assert_non_null(strstr(cairn_error_last(), name));
	if (at)
		assert_non_null(strstr(cairn_error_last(), at));
}

static void test_corrupt_manifest(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	char man[PATH_MAX], save[PATH_MAX];
	uint64_t n;
	int rc;

	(void)state;
	idx = open_idx(tmpdir, &o);
	add_range(idx, 1, 0, 100, &rc);
	add_range(idx, 2, 100, 100, &rc);
	assert_int_equal(cairn_tlindex_remove_shard(idx, 1), 0);
	cairn_tlindex_close(idx);
	ipath(man, "MANIFEST");
	if (snprintf(save, sizeof(save), "%s.save", man) >= (int)sizeof(save))
		fail_msg("path too long");
	copy_file(man, save);
	n = file_size(man);
	/* Every byte flipped: ECORRUPT naming the manifest, never a crash. */
	for (uint64_t at = 0; at < n; at++) {
		flip_byte(man, at, 0x40);
		expect_open_corrupt(&o, "MANIFEST", "at byte");
		copy_file(save, man);
	}
	/* Cut short, and empty. */
	assert_int_equal(truncate(man, (off_t)(n - 3)), 0);
	expect_open_corrupt(&o, "MANIFEST", "at byte");
	assert_int_equal(truncate(man, 0), 0);
	expect_open_corrupt(&o, "MANIFEST", "at byte 0");
	copy_file(save, man);
	idx = open_idx(tmpdir, &o);
	cairn_tlindex_close(idx);
	/* No manifest beside run files: refused, the runs kept. */
	unlink(man);
	expect_open_corrupt(&o, "MANIFEST", "holds run files");
	assert_int_equal(count_files(tmpdir, ".run"), 1);
	copy_file(save, man);
	/* A listed run that is missing. */
	{
		char run[PATH_MAX];

		only_run(run);
		unlink(run);
		expect_open_corrupt(&o, "MANIFEST", "missing");
	}
	unlink(save);
}

static void test_corrupt_run(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	char run[PATH_MAX], save[PATH_MAX];
	uint64_t n, x = 99;
	int rc;

	(void)state;
	idx = open_idx(tmpdir, &o);
	add_range(idx, 1, 0, 1000, &rc);
	add_range(idx, 2, 5000, 500, &rc);
	assert_int_equal(cairn_tlindex_compact(idx), 0);
	cairn_tlindex_close(idx);
	only_run(run);
	ipath(save, "save");
	copy_file(run, save);
	n = file_size(run);

	/* The header, fences and table are checked at open. */
	flip_byte(run, 40, 1);
	expect_open_corrupt(&o, run, "at byte 120");
	copy_file(save, run);
	flip_byte(run, n - 20, 1); /* in the shard table */
	expect_open_corrupt(&o, run, "shard table checksum");
	copy_file(save, run);
	flip_byte(run, TL_PAGE + 9 * TL_PAGE + 13, 1); /* in the fences (9 pages) */
	expect_open_corrupt(&o, run, "fence checksum");
	copy_file(save, run);
	assert_int_equal(truncate(run, (off_t)(n - 1)), 0);
	expect_open_corrupt(&o, run, "at byte");
	assert_int_equal(truncate(run, 100), 0);
	expect_open_corrupt(&o, run, "too short");
	copy_file(save, run);

	/* A record page: open and lookups work (not checked there); verify and
	 * compact find it, name the page, and change nothing. */
	flip_byte(run, TL_PAGE + 3 * TL_PAGE + 100, 0x10);
	idx = open_idx(tmpdir, &o);
	rc = cairn_tlindex_verify(idx);
	assert_int_equal(rc, CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), run));
	assert_non_null(strstr(cairn_error_last(), "at byte 16384: page checksum"));
	assert_int_equal(cairn_tlindex_remove_shard(idx, 2), 0);
	rc = cairn_tlindex_compact(idx);
	assert_int_equal(rc, CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at byte 16384"));
	assert_int_equal(count_files(tmpdir, ".run"), 1);
	{
		cairn_tlindex_hit hits[4];

		assert_int_equal(lookup_block(hits, 4, idx, 999), 1);
		assert_int_equal(lookup_block(hits, 4, idx, 5001), 0);
	}
	cairn_tlindex_close(idx);
	copy_file(save, run);

	/* Random single-byte damage anywhere: open and verify either pass or
	 * say ECORRUPT; lookups never crash (ASan watches). */
	for (int i = 0; i < 300; i++) {
		uint64_t at = next_rand(&x) % n;
		cairn_tlindex *j = NULL;

		flip_byte(run, at, (uint8_t)(1u << (next_rand(&x) % 8)));
		rc = cairn_tlindex_open(&j, tmpdir, &o);
		if (rc) {
			assert_int_equal(rc, CAIRN_ECORRUPT);
		} else {
			cairn_tlindex_hit hits[4];

			rc = cairn_tlindex_verify(j);
			assert_true(rc == 0 || rc == CAIRN_ECORRUPT);
			for (uint64_t b = 0; b < 1000; b += 13)
				lookup_block(hits, 4, j, b);
			cairn_tlindex_close(j);
		}
		copy_file(save, run);
	}
	unlink(save);
}

/* ---------------------------------------------------------- concurrency */

typedef struct {
	cairn_tlindex *idx;
	atomic_bool *stop;
	uint64_t lookups;
	int errors;
} reader_arg;

/* Shards 1..10 hold blocks s*10000 + i (i < 2000) at offset i, and block 7
 * at offset s; they are never removed while the readers run. */
static void *reader_main(void *p)
{
	reader_arg *a = p;
	uint64_t x = (uint64_t)(uintptr_t)p | 1;
	static _Thread_local cairn_tlindex_hit hits[1024];

	while (!atomic_load(a->stop)) {
		uint32_t s = 1 + (uint32_t)(next_rand(&x) % 10);
		uint64_t i = next_rand(&x) % 2000;
		int n = lookup_block(hits, 1024, a->idx, s * 10000 + i);

		if (n != 1 || hits[0].shard != s || hits[0].offset != i)
			a->errors++;
		/* Block 7: the stable shards, plus whatever churn shards hold it. */
		n = lookup_block(hits, 1024, a->idx, 7);
		int stable = 0;

		if (n > 1024)
			a->errors++;
		for (int k = 0; k < n && k < 1024; k++)
			if (hits[k].shard >= 1 && hits[k].shard <= 10) {
				stable++;
				if (hits[k].offset != hits[k].shard)
					a->errors++;
			}
		if (stable != 10)
			a->errors++;
		a->lookups++;
	}
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	pthread_t th[2];
	reader_arg args[2];
	atomic_bool stop;
	entries es;
	uint64_t x = 5;

	(void)state;
	o.inline_merge = false; /* the merge thread */
	o.max_runs = 8;
	idx = open_idx(tmpdir, &o);
	for (uint32_t s = 1; s <= 10; s++) {
		entries_make(&es, 2001);
		for (size_t i = 0; i < 2000; i++)
			entries_set(&es, i, s * 10000 + i, i, 1);
		entries_set(&es, 2000, 7, s, 1);
		assert_int_equal(cairn_tlindex_add_shard(idx, s, es.e, es.n), 0);
		entries_free(&es);
	}
	atomic_init(&stop, false);
	for (int t = 0; t < 2; t++) {
		args[t] = (reader_arg){idx, &stop, 0, 0};
		assert_int_equal(pthread_create(&th[t], NULL, reader_main, &args[t]), 0);
	}
	/* Churn: shards 100.. come and go (some hold block 7), compactions. */
	for (uint32_t round = 0; round < 150; round++) {
		uint32_t id = 100 + round;
		size_t n = 1 + next_rand(&x) % 3000;

		entries_make(&es, n);
		for (size_t i = 0; i < n; i++)
			entries_set(&es, i, i == 0 ? 7 : 1000000 + next_rand(&x) % 100000, i, 1);
		assert_int_equal(cairn_tlindex_add_shard(idx, id, es.e, es.n), 0);
		entries_free(&es);
		if (round % 3 == 0)
			assert_int_equal(cairn_tlindex_remove_shard(idx, 100 + round / 2), 0);
		if (round % 40 == 39)
			assert_int_equal(cairn_tlindex_compact(idx), 0);
	}
	atomic_store(&stop, true);
	for (int t = 0; t < 2; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(args[t].errors, 0);
		assert_true(args[t].lookups > 100);
	}
	{
		cairn_tlindex_stats st;

		cairn_tlindex_stats_get(&st, idx);
		assert_true(st.merges > 0);
	}
	assert_int_equal(cairn_tlindex_verify(idx), 0);
	cairn_tlindex_close(idx);
}

/* Adds from two threads at once (they sort and write in parallel), both
 * racing for one id, with the merge thread running. */
typedef struct {
	cairn_tlindex *idx;
	uint32_t base;
	int rc_race;
	int errors;
} writer_arg;

static void *writer_main(void *p)
{
	writer_arg *a = p;
	entries es;

	for (uint32_t k = 0; k < 40; k++) {
		uint32_t id = a->base + k;

		entries_make(&es, 1500);
		for (size_t i = 0; i < es.n; i++)
			entries_set(&es, i, (uint64_t)id * 100000 + i, i, id);
		if (cairn_tlindex_add_shard(a->idx, id, es.e, es.n))
			a->errors++;
		if (k == 20)
			a->rc_race = cairn_tlindex_add_shard(a->idx, 7777, es.e, 10);
		if (k % 4 == 3 && cairn_tlindex_remove_shard(a->idx, id - 2))
			a->errors++;
		entries_free(&es);
	}
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	cairn_tlindex_hit hits[4];
	cairn_tlindex_stats st;
	writer_arg a[2];
	pthread_t th[2];
	uint64_t live = 0;

	(void)state;
	o.inline_merge = false;
	o.max_runs = 6;
	o.sort_budget = 24 * 1000;
	idx = open_idx(tmpdir, &o);
	for (int t = 0; t < 2; t++) {
		a[t] = (writer_arg){idx, 1000 + 1000 * (uint32_t)t, 0, 0};
		assert_int_equal(pthread_create(&th[t], NULL, writer_main, &a[t]), 0);
	}
	for (int t = 0; t < 2; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(a[t].errors, 0);
	}
	/* Exactly one of the two adds of 7777 won. */
	assert_true((a[0].rc_race == 0) != (a[1].rc_race == 0));
	assert_int_equal(a[0].rc_race + a[1].rc_race, CAIRN_EEXISTS);
	for (int round = 0; round < 2; round++) {
		for (uint32_t t = 0; t < 2; t++)
			for (uint32_t k = 0; k < 40; k++) {
				uint32_t id = 1000 + 1000 * t + k;
				bool gone = k % 4 == 1;
				uint64_t b = (uint64_t)id * 100000 + (k * 37) % 1500;

				assert_int_equal(cairn_tlindex_has_shard(idx, id), !gone);
				assert_int_equal(lookup_block(hits, 4, idx, b), gone ? 0 : 1);
				if (!gone) {
					assert_int_equal(hits[0].shard, id);
					live += 1500;
				}
			}
		cairn_tlindex_stats_get(&st, idx);
		assert_int_equal(st.entries, live / (round + 1) + 10);
		cairn_tlindex_close(idx);
		idx = open_idx(tmpdir, &o);
		assert_int_equal(cairn_tlindex_compact(idx), 0);
	}
	assert_int_equal(cairn_tlindex_verify(idx), 0);
	cairn_tlindex_close(idx);
	assert_int_equal(count_files(tmpdir, ".run"), 1);
}

/* ---------------------------------------------------------------- locks */

static void test_locks(void **state)
{
	cairn_tlindex_options o = fast_opts(), ro = fast_opts();
	cairn_tlindex *w, *r1 = NULL, *r2 = NULL, *x = NULL;
	char sub[PATH_MAX];
	int rc;

	(void)state;
	ro.read_only = true;
	ipath(sub, "none");
	assert_int_equal(cairn_tlindex_open(&x, sub, &ro), CAIRN_ENOTFOUND);
	w = open_idx(tmpdir, &o);
	add_range(w, 1, 0, 10, &rc);
	assert_int_equal(cairn_tlindex_open(&x, tmpdir, &o), CAIRN_EEXISTS);
	assert_int_equal(cairn_tlindex_open(&x, tmpdir, &ro), CAIRN_EEXISTS);
	cairn_tlindex_close(w);
	r1 = open_idx(tmpdir, &ro);
	r2 = open_idx(tmpdir, &ro);
	assert_int_equal(cairn_tlindex_open(&x, tmpdir, &o), CAIRN_EEXISTS);
	{
		cairn_tlindex_hit hits[2];

		assert_int_equal(lookup_block(hits, 2, r2, 3), 1);
	}
	add_range(r1, 2, 0, 10, &rc);
	assert_int_equal(rc, CAIRN_EINVAL);
	assert_int_equal(cairn_tlindex_remove_shard(r1, 1), CAIRN_EINVAL);
	assert_int_equal(cairn_tlindex_compact(r1), CAIRN_EINVAL);
	cairn_tlindex_close(r1);
	cairn_tlindex_close(r2);
	cairn_tlindex_close(NULL);
	assert_int_equal(cairn_tlindex_open(NULL, tmpdir, &o), CAIRN_EINVAL);
	assert_int_equal(cairn_tlindex_open(&x, "", &o), CAIRN_EINVAL);
}

/* -------------------------------------------------------- out of memory */

static void test_oom(void **state)
{
	cairn_tlindex_options o = fast_opts();
	cairn_tlindex *idx;
	cairn_tlindex_hit hits[4];
	int rc, fails = 0;

	(void)state;
	o.sort_budget = 24 * 300;
	idx = open_idx(tmpdir, &o);
	add_range(idx, 1, 0, 500, &rc);
	assert_int_equal(rc, 0);
	/* An add (several runs, then inline merges) with the nth allocation
	 * failing: either it is all there or none of it is. */
	for (long n = 1; n < 400; n++) {
		entries es;

		entries_make(&es, 1000);
		for (size_t i = 0; i < es.n; i++)
			entries_set(&es, i, 10000 + i, i, 1);
		cairn_alloc_fail_after(n, false);
		rc = cairn_tlindex_add_shard(idx, 2, es.e, es.n);
		cairn_alloc_fail_after(-1, false);
		entries_free(&es);
		if (rc == CAIRN_ENOMEM) {
			fails++;
			assert_int_equal(cairn_tlindex_has_shard(idx, 2), 0);
			assert_int_equal(lookup_block(hits, 4, idx, 10005), 0);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(lookup_block(hits, 4, idx, 10005), 1);
			cairn_alloc_fail_after(n, false);
			rc = cairn_tlindex_remove_shard(idx, 2);
			cairn_alloc_fail_after(-1, false);
			if (rc) {
				assert_int_equal(rc, CAIRN_ENOMEM);
				assert_int_equal(cairn_tlindex_remove_shard(idx, 2), 0);
			}
			cairn_alloc_fail_after(n, false);
			rc = cairn_tlindex_compact(idx);
			cairn_alloc_fail_after(-1, false);
			assert_true(rc == 0 || rc == CAIRN_ENOMEM);
		}
		assert_int_equal(lookup_block(hits, 4, idx, 5), 1);
	}
	assert_true(fails > 10);
	cairn_tlindex_close(idx);
	/* Open with failures. */
	for (long n = 1; n < 60; n++) {
		cairn_tlindex *j = NULL;

		cairn_alloc_fail_after(n, false);
		rc = cairn_tlindex_open(&j, tmpdir, &o);
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
			assert_null(j);
		} else {
			assert_int_equal(lookup_block(hits, 4, j, 5), 1);
			cairn_tlindex_close(j);
		}
	}
	idx = open_idx(tmpdir, &o);
	assert_int_equal(cairn_tlindex_verify(idx), 0);
	{
		cairn_tlindex_stats st;

		cairn_tlindex_stats_get(&st, idx);
		cairn_tlindex_close(idx);
		assert_int_equal(count_files(tmpdir, ".run"), st.runs);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_vectors),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_policy),
		cmocka_unit_test_setup_teardown(test_run_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bloom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_shards, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iter_and_foreach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_inline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_background, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_ratio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_fork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
