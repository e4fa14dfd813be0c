/* test_hamt.c: the HAMT against ref-fvm's vectors (wire-compatible with
 * go-hamt-ipld v3), malformed nodes, failures, and random operation sequences. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <unistd.h>

#include "adt/adt_test.h"

static cairn_hamt *hamt_new(tstore *ts, unsigned bw)
{
	cairn_hamt_options o = CAIRN_HAMT_OPTIONS_INIT;
	cairn_hamt *h;

	o.bit_width = bw;
	assert_int_equal(cairn_hamt_new(&h, &ts->base, &o), 0);
	return h;
}

/* Keys are the string's bytes; values the string as a CBOR byte string
 * (ref-fvm's tests use BytesKey for both). */
static void set_str(cairn_hamt *h, const char *k, const char *v)
{
	uint8_t b[300];

	assert_int_equal(cairn_hamt_set(h, NULL, (const uint8_t *)k, strlen(k), b,
					cbor_bytes(b, v, strlen(v))), 0);
}

static void assert_get_str(cairn_hamt *h, const char *k, const char *v)
{
	const uint8_t *got;
	uint8_t want[300];
	size_t len, n = cbor_bytes(want, v, strlen(v));

	assert_int_equal(cairn_hamt_get(&got, &len, h, (const uint8_t *)k, strlen(k)), 0);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
}

static cairn_cid flush(cairn_hamt *h)
{
	cairn_cid c;

	assert_int_equal(cairn_hamt_flush(&c, h), 0);
	return c;
}

static void assert_root(cairn_hamt *h, const char *want)
{
	cairn_cid c = flush(h);

	if (strcmp(cid_str(&c), want))
		fail_msg("root %s, want %s", cid_str(&c), want);
}

/* --------------------------------------------------------------- vectors
 * All [ext]: ref-fvm ipld/hamt/tests/hamt_tests.rs (SHA-256, blake2b-256
 * CIDs), which go-hamt-ipld v3 with Filecoin's options writes alike. */

static void test_vectors(void **state)
{
	tstore *ts = ts_new();
	cairn_hamt *h = hamt_new(ts, 5);
	char k[16];

	(void)state;
	assert_root(h, "bafy2bzaceamp42wmmgr2g2ymg46euououzfyck7szknvfacqscohrvaikwfay");
	{
		cairn_cid c = flush(h);
		tblock *b = ts_find(ts, &c);

		assert_int_equal(b->len, 3);
		assert_memory_equal(b->data, "\x82\x40\x80", 3);
	}
	cairn_hamt_free(h);

	h = hamt_new(ts, 8);
	set_str(h, "favorite-animal", "owl bear");
	assert_get_str(h, "favorite-animal", "owl bear");
	assert_root(h, "bafy2bzaced2tgnlsq4n2ioe6ldy75fw3vlrrkyfv4bq6didbwoob2552zvpuk");
	cairn_hamt_free(h);

	h = hamt_new(ts, 8);
	{
		uint8_t v[16];

		assert_int_equal(cairn_hamt_set(h, NULL, (const uint8_t *)"", 1, v,
						cbor_bytes(v, "Test data", 9)), 0);
	}
	assert_root(h, "bafy2bzaceb2hikcc6tfuuuuehjstbiq356oruwx6ejyse77zupq445unranv6");
	cairn_hamt_free(h);

	h = hamt_new(ts, 8);
	set_str(h, "foo", "cat dog bear");
	set_str(h, "bar", "cat dog");
	set_str(h, "baz", "cat");
	assert_root(h, "bafy2bzacebql36crv4odvxzstx2ubaczmawy2tlljxezvorcsoqeyyojxkrom");
	assert_int_equal(cairn_hamt_delete(h, (const uint8_t *)"foo", 3), 0);
	assert_int_equal(cairn_hamt_delete(h, (const uint8_t *)"foo", 3), CAIRN_ENOTFOUND);
	assert_root(h, "bafy2bzaced7up7wkm7cirieh5bs4iyula5inrprihmjzozmku3ywvekzzmlyi");
	cairn_hamt_free(h);

	/* bit width 5: 200 keys, 30 blocks; 400; and back to 200 by deletes */
	{
		cairn_cid c200, c;
		unsigned long before;
		tstore *t2 = ts_new();
		cairn_hamt *g = hamt_new(t2, 5), *r;
		cairn_hamt_options o = CAIRN_HAMT_OPTIONS_INIT;

		for (int i = 0; i < 200; i++) {
			snprintf(k, sizeof(k), "%d", i);
			set_str(g, k, k);
		}
		before = t2->len;
		c200 = flush(g);
		assert_string_equal(cid_str(&c200),
				    "bafy2bzaceczhz54xmmz3xqnbmvxfbaty3qprr6dq7xh5vzwqbirlsnbd36z7a");
		assert_int_equal(t2->len - before, 30);
		for (int i = 200; i < 400; i++) {
			snprintf(k, sizeof(k), "%d", i);
			set_str(g, k, k);
		}
		assert_root(g, "bafy2bzacecxcp736xkl2mcyjlors3tug6vdlbispbzxvb75xlrhthiw2xwxvw");
		c = flush(g);
		assert_int_equal(cairn_hamt_load(&r, &t2->base, &c, &o), 0);
		for (int i = 0; i < 400; i++) {
			snprintf(k, sizeof(k), "%d", i);
			assert_get_str(r, k, k);
		}
		for (int i = 200; i < 400; i++) {
			snprintf(k, sizeof(k), "%d", i);
			assert_int_equal(cairn_hamt_delete(r, (const uint8_t *)k, strlen(k)), 0);
		}
		c = flush(r);
		assert_true(cairn_cid_equal(&c, &c200));
		cairn_hamt_free(r);
		cairn_hamt_free(g);
		ts_free(&t2->base);
	}

	/* bit width 1: deep trees */
	h = hamt_new(ts, 1);
	for (int i = 0; i < 30; i++) {
		snprintf(k, sizeof(k), "%d", i);
		set_str(h, k, "filler");
	}
	assert_root(h, "bafy2bzacebjilcrsqa4uyxuh36gllup4rlgnvwgeywdm5yqq2ks4jrsj756qq");
	cairn_hamt_free(h);
	ts_free(&ts->base);
}

/* ---------------------------------------------------------- load checks */

static cairn_cid put_raw(tstore *ts, const uint8_t *b, size_t n)
{
	cairn_cid c;

	assert_int_equal(cairn_cid_compute(&c, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_BLAKE2B_256, b, n), 0);
	assert_int_equal(ts_put(&ts->base, &c, b, n), 0);
	return c;
}

static size_t unhex(uint8_t *out, const char *hex)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v;

		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static void test_malformed(void **state)
{
	static const struct {
		const char *hex, *msg;
	} roots[] = {
		{"824080", ""},
		{"8240", "a node of 2 items but 1 bytes remain"},
		{"83408080", "2 fields"},
		{"82410180", "bitfield has 1 bits set but there are 0 pointers"},
		{"8242000180", "starts with a zero byte"},
		{"824501000000008180", "a bitfield of 5 bytes"},
		{"8241018180", "a bucket of 0 pairs"},
		{"824101818482410000824101008241020082410300", "a bucket of 4 pairs"},
		{"8241018182824102008241010000", "not in ascending order"},
		{"82410181818241010000", "bytes after the root"},
		{"824101818182410100", ""},
		{"8241018101", "a pointer is a link or a bucket"},
		{"824101818183410100", "a pair has 2 fields"},
		{"82410181818261610a", "a key must be a byte string"},
		{"8241018181824101", "unexpected end"},
	};
	tstore *ts = ts_new();
	int bad = 0;

	(void)state;
	for (size_t k = 0; k < sizeof(roots) / sizeof(roots[0]); k++) {
		uint8_t b[256];
		size_t n = unhex(b, roots[k].hex);
		cairn_cid c = put_raw(ts, b, n);
		cairn_hamt *h = NULL;
		int rc = cairn_hamt_load(&h, &ts->base, &c, NULL);

		if (!*roots[k].msg) {
			assert_int_equal(rc, 0);
			cairn_hamt_free(h);
			continue;
		}
		if (rc != CAIRN_ECORRUPT || !strstr(cairn_error_last(), roots[k].msg)) {
			print_error("root %s: rc %d, '%s', want '%s'\n", roots[k].hex, rc,
				    cairn_error_last(), roots[k].msg);
			bad++;
		}
		assert_null(h);
	}
	assert_int_equal(bad, 0);
	/* A child that should have been a bucket is refused when read. */
	{
		uint8_t child[64], root[128];
		size_t n = unhex(child, "824101818182410100"), m;
		cairn_cid c = put_raw(ts, child, n);
		cairn_hamt *h;

		m = unhex(root, "82410181d82a5827");
		root[m++] = 0;
		memcpy(root + m, c.bytes, c.len);
		m += c.len;
		c = put_raw(ts, root, m);
		assert_int_equal(cairn_hamt_load(&h, &ts->base, &c, NULL), 0);
		assert_int_equal(cairn_hamt_for_each(h, NULL, NULL), CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "should be a bucket in its parent"));
		assert_int_equal(cairn_hamt_cached_nodes(h), 1);
		cairn_hamt_free(h);
	}
	ts_free(&ts->base);
}

/* --------------------------------------------------------- api, failures */

static int count_pairs(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *payload)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(size_t *)payload)++;
	return 0;
}

static void test_api(void **state)
{
	tstore *ts = ts_new();
	cairn_hamt *h = hamt_new(ts, 5), *g;
	cairn_hamt_options o = CAIRN_HAMT_OPTIONS_INIT;
	const uint8_t *v;
	size_t len, n = 0;
	bool added;
	cairn_cid c, c2;
	char k[16];

	(void)state;
	assert_int_equal(cairn_hamt_set(h, NULL, (const uint8_t *)"a", 1, (const uint8_t *)"\x41", 1),
			 CAIRN_EINVAL);
	assert_int_equal(cairn_hamt_get(&v, &len, h, (const uint8_t *)"a", 1), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_hamt_set(h, &added, (const uint8_t *)"a", 1, (const uint8_t *)"\x01", 1), 0);
	assert_true(added);
	assert_int_equal(cairn_hamt_set(h, &added, (const uint8_t *)"a", 1, (const uint8_t *)"\x02", 1), 0);
	assert_false(added);
	assert_int_equal(cairn_hamt_get(&v, &len, h, (const uint8_t *)"a", 1), 0);
	assert_int_equal(v[0], 2);
	/* an empty key is a key */
	assert_int_equal(cairn_hamt_set(h, &added, NULL, 0, (const uint8_t *)"\xf6", 1), 0);
	assert_true(added);
	assert_int_equal(cairn_hamt_get(NULL, NULL, h, NULL, 0), 0);
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		set_str(h, k, k);
	}
	assert_int_equal(cairn_hamt_for_each(h, count_pairs, &n), 0);
	assert_int_equal(n, 502);
	c = flush(h);
	n = ts->puts;
	c2 = flush(h);
	assert_int_equal(ts->puts, n);
	assert_true(cairn_cid_equal(&c, &c2));
	assert_true(cairn_hamt_cached_nodes(h) > 1);
	cairn_hamt_evict(h);
	assert_int_equal(cairn_hamt_cached_nodes(h), 1);
	assert_get_str(h, "key-77", "key-77");
	/* the same value again changes nothing */
	set_str(h, "key-77", "key-77");
	c2 = flush(h);
	assert_int_equal(ts->puts, n);
	/* a reload walks, and keeps nothing it read */
	assert_int_equal(cairn_hamt_load(&g, &ts->base, &c, &o), 0);
	n = 0;
	assert_int_equal(cairn_hamt_for_each(g, count_pairs, &n), 0);
	assert_int_equal(n, 502);
	assert_int_equal(cairn_hamt_cached_nodes(g), 1);
	cairn_hamt_free(g);
	/* widths must match to diff, and be in range */
	o.bit_width = 6;
	assert_int_equal(cairn_hamt_load(&g, &ts->base, &c, &o), 0);
	assert_int_equal(cairn_hamt_diff(h, g, NULL, NULL), CAIRN_EINVAL);
	cairn_hamt_free(g);
	o.bit_width = 9;
	assert_int_equal(cairn_hamt_new(&g, &ts->base, &o), CAIRN_EINVAL);
	cairn_hamt_free(h);
	cairn_hamt_free(NULL);
	ts_free(&ts->base);
}

static void test_failures(void **state)
{
	tstore *ts = ts_new();
	cairn_hamt *h = hamt_new(ts, 5), *g;
	cairn_cid c, want, got;
	char k[16];

	(void)state;
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "%d", i);
		set_str(h, k, k);
	}
	c = flush(h);
	assert_int_equal(cairn_hamt_load(&g, &ts->base, &c, NULL), 0);
	set_str(g, "new key", "v");
	assert_int_equal(cairn_hamt_delete(g, (const uint8_t *)"17", 2), 0);
	want = flush(g);
	cairn_hamt_free(g);

	for (long n = 1;; n++) {
		uint8_t v[8];
		size_t vl = cbor_bytes(v, "v", 1);
		int rc;

		assert_int_equal(cairn_hamt_load(&g, &ts->base, &c, NULL), 0);
		cairn_alloc_fail_after(n, false);
		rc = cairn_hamt_set(g, NULL, (const uint8_t *)"new key", 7, v, vl);
		if (!rc)
			rc = cairn_hamt_delete(g, (const uint8_t *)"17", 2);
		if (!rc) {
			cairn_cid x;

			rc = cairn_hamt_flush(&x, g);
		}
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
			if (cairn_hamt_get(NULL, NULL, g, (const uint8_t *)"new key", 7))
				set_str(g, "new key", "v");
			rc = cairn_hamt_delete(g, (const uint8_t *)"17", 2);
			assert_true(rc == 0 || rc == CAIRN_ENOTFOUND);
			got = flush(g);
			if (!cairn_cid_equal(&got, &want))
				fail_msg("allocation %ld failing: %s, want %s", n, cid_str(&got),
					 cid_str(&want));
			cairn_hamt_free(g);
			continue;
		}
		got = flush(g);
		assert_true(cairn_cid_equal(&got, &want));
		cairn_hamt_free(g);
		break;
	}
	/* a failed write loses nothing */
	assert_int_equal(cairn_hamt_load(&g, &ts->base, &c, NULL), 0);
	set_str(g, "new key", "v");
	assert_int_equal(cairn_hamt_delete(g, (const uint8_t *)"17", 2), 0);
	ts->fail_put_after = 0;
	assert_int_equal(cairn_hamt_flush(&got, g), CAIRN_EIO);
	ts->fail_put_after = -1;
	got = flush(g);
	assert_true(cairn_cid_equal(&got, &want));
	cairn_hamt_free(g);
	cairn_hamt_free(h);
	ts_free(&ts->base);
}

/* ----------------------------------------------------------- properties */

typedef struct {
	uint8_t k[12], v[10];
	uint8_t klen, vlen;
} pair;

typedef struct {
	pair *p;
	size_t n;
} model;

static int pair_cmp(const void *x, const void *y)
{
	const pair *a = x, *b = y;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->k, b->k, n);

	return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

static pair *model_find(model *m, const uint8_t *k, size_t klen)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->p[i].klen == klen && !memcmp(m->p[i].k, k, klen))
			return &m->p[i];
	return NULL;
}

/* A change as reported: its key copied (keys are borrowed for the call);
 * values are checked by length only, after the call. */
typedef struct {
	cairn_hamt_change ch;
	uint8_t key[12];
} change;

typedef struct {
	change *v;
	size_t n, cap;
} change_list;

static int collect(const cairn_hamt_change *ch, void *payload)
{
	change_list *l = payload;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	assert_true(ch->klen <= sizeof(l->v[0].key));
	l->v[l->n].ch = *ch;
	memcpy(l->v[l->n].key, ch->key, ch->klen);
	l->n++;
	return 0;
}

static int change_cmp(const void *x, const void *y)
{
	const change *a = x, *b = y;
	size_t n = a->ch.klen < b->ch.klen ? a->ch.klen : b->ch.klen;
	int c = memcmp(a->key, b->key, n);

	return c ? c : (a->ch.klen > b->ch.klen) - (a->ch.klen < b->ch.klen);
}

/* Compares the diff, sorted by key (its own order is the hash order), with
 * the naive one. */
static bool diff_matches(change_list *l, model *prev, model *cur)
{
	size_t i = 0, j = 0, k = 0;

	qsort(l->v, l->n, sizeof(*l->v), change_cmp);
	qsort(prev->p, prev->n, sizeof(pair), pair_cmp);
	qsort(cur->p, cur->n, sizeof(pair), pair_cmp);
	while (i < prev->n || j < cur->n) {
		int c = i == prev->n ? 1 : j == cur->n ? -1 : pair_cmp(&prev->p[i], &cur->p[j]);
		const cairn_hamt_change *ch = k < l->n ? &l->v[k].ch : NULL;
		cairn_adt_change_type t;
		const pair *e;

		if (c < 0) {
			t = CAIRN_ADT_REMOVE;
			e = &prev->p[i++];
		} else if (c > 0) {
			t = CAIRN_ADT_ADD;
			e = &cur->p[j++];
		} else {
			const pair *a = &prev->p[i++];

			e = &cur->p[j++];
			if (a->vlen == e->vlen && !memcmp(a->v, e->v, a->vlen))
				continue;
			t = CAIRN_ADT_MODIFY;
			if (ch && ch->before_len != a->vlen)
				return false;
		}
		if (!ch || ch->type != t || ch->klen != e->klen || memcmp(l->v[k].key, e->k, e->klen))
			return false;
		if (t != CAIRN_ADT_REMOVE && ch->after_len != e->vlen)
			return false;
		if (t == CAIRN_ADT_REMOVE && ch->before_len != e->vlen)
			return false;
		k++;
	}
	return k == l->n;
}

typedef struct {
	model *m;
	bool bad;
	size_t seen;
} walk_check;

static int check_pair(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *payload)
{
	walk_check *w = payload;
	pair *p = model_find(w->m, k, kl);

	if (!p || p->vlen != vl || memcmp(p->v, v, vl))
		w->bad = true;
	w->seen++;
	return 0;
}

static int put_block(const cairn_cid *cid, void *payload)
{
	cairn_store **pair2 = payload;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_store_get(pair2[0], &b, cid);

	if (!rc)
		rc = cairn_store_put(pair2[1], cid, b.data, b.len);
	cairn_buf_free(&b);
	return rc;
}

static void test_properties(void **state)
{
	uint64_t seed = test_seed("hamt properties"), rng = seed;
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "/tmp/cairn-test-hamt-%d.car", (int)getpid());
	for (int round = 0; round < 100; round++) {
		static const unsigned widths[] = {1, 2, 3, 5, 5, 8};
		unsigned bw = widths[rng_next(&rng) % 6];
		unsigned keyspace = 1 + (unsigned)(rng_next(&rng) % 600);
		cairn_hamt_options o = {bw, CAIRN_MH_BLAKE2B_256};
		tstore *ts = ts_new();
		cairn_hamt *h = hamt_new(ts, bw), *g, *p;
		model m = {calloc(700, sizeof(pair)), 0}, prev = {calloc(700, sizeof(pair)), 0};
		unsigned ops = 10 + (unsigned)(rng_next(&rng) % 500);
		cairn_cid root, prev_root, fresh;
		change_list l = {NULL, 0, 0};
		walk_check w;

		for (unsigned k = 0; k < ops; k++) {
			uint64_t r = rng_next(&rng);
			pair e;

			e.klen = (uint8_t)snprintf((char *)e.k, sizeof(e.k), "k%u",
						   (unsigned)(r % keyspace));
			if (r % 7 == 0)
				e.klen = 0; /* the empty key, now and then */
			if (m.n && (r >> 20) % 5 < 2) {
				pair *x = model_find(&m, e.k, e.klen);

				assert_int_equal(cairn_hamt_delete(h, e.k, e.klen),
						 x ? 0 : CAIRN_ENOTFOUND);
				if (x)
					*x = m.p[--m.n];
			} else {
				pair *x;
				bool added;

				e.vlen = (uint8_t)cbor_uint(e.v, (r >> 24) % 5 ? (r >> 30) % 10 : r >> 10);
				assert_int_equal(cairn_hamt_set(h, &added, e.k, e.klen, e.v, e.vlen), 0);
				x = model_find(&m, e.k, e.klen);
				assert_int_equal(added, x == NULL);
				if (x)
					*x = e;
				else
					m.p[m.n++] = e;
			}
			if (r % 41 == 0) {
				assert_int_equal(cairn_hamt_flush(&root, h), 0);
				if (r % 2)
					cairn_hamt_evict(h);
			}
			if (r % 67 == 0) {
				assert_int_equal(cairn_hamt_flush(&root, h), 0);
				cairn_hamt_free(h);
				assert_int_equal(cairn_hamt_load(&h, &ts->base, &root, &o), 0);
			}
			if (k == ops / 2) {
				assert_int_equal(cairn_hamt_flush(&prev_root, h), 0);
				memcpy(prev.p, m.p, m.n * sizeof(pair));
				prev.n = m.n;
			}
		}
		w = (walk_check){&m, false, 0};
		assert_int_equal(cairn_hamt_for_each(h, check_pair, &w), 0);
		assert_false(w.bad);
		assert_int_equal(w.seen, m.n);
		assert_int_equal(cairn_hamt_flush(&root, h), 0);

		/* Only the pairs decide the root. */
		g = hamt_new(ts, bw);
		for (size_t k = m.n; k-- > 0;)
			assert_int_equal(cairn_hamt_set(g, NULL, m.p[k].k, m.p[k].klen, m.p[k].v,
							m.p[k].vlen), 0);
		assert_int_equal(cairn_hamt_flush(&fresh, g), 0);
		if (!cairn_cid_equal(&fresh, &root))
			fail_msg("round %d (bw %u, %zu pairs): %s after the operations, %s fresh",
				 round, bw, m.n, cid_str(&root), cid_str(&fresh));
		cairn_hamt_free(g);

		/* The diff is the naive one. */
		assert_int_equal(cairn_hamt_load(&p, &ts->base, &prev_root, &o), 0);
		assert_int_equal(cairn_hamt_diff(p, h, collect, &l), 0);
		if (!diff_matches(&l, &prev, &m))
			fail_msg("round %d (bw %u): the diff differs from the naive diff", round, bw);
		assert_int_equal(cairn_hamt_cached_nodes(p), 1);
		l.n = 0;
		cairn_hamt_evict(h);
		assert_int_equal(cairn_hamt_diff(h, p, collect, &l), 0);
		if (!diff_matches(&l, &m, &prev))
			fail_msg("round %d (bw %u): the reverse diff differs", round, bw);
		cairn_hamt_free(p);

		if (round % 5 == 0) {
			cairn_carrw_options co = CAIRN_CARRW_OPTIONS_INIT;
			cairn_store *rw, *ro, *pr[2];
			cairn_cid again;

			unlink(path);
			co.sync = CAIRN_SYNC_NONE;
			assert_int_equal(cairn_store_carrw_open(&rw, NULL, path, &root, 1, &co), 0);
			pr[0] = &ts->base;
			pr[1] = rw;
			assert_int_equal(cairn_store_walk(&ts->base, &root, put_block, pr), 0);
			assert_int_equal(cairn_store_carrw_finalize(rw), 0);
			cairn_store_free(rw);
			assert_int_equal(cairn_store_car_open(&ro, path, NULL, NULL), 0);
			assert_int_equal(cairn_hamt_load(&g, ro, &root, &o), 0);
			w = (walk_check){&m, false, 0};
			assert_int_equal(cairn_hamt_for_each(g, check_pair, &w), 0);
			assert_false(w.bad);
			assert_int_equal(w.seen, m.n);
			assert_int_equal(cairn_hamt_flush(&again, g), 0);
			assert_true(cairn_cid_equal(&again, &root));
			cairn_hamt_free(g);
			cairn_store_free(ro);
		}
		free(l.v);
		cairn_hamt_free(h);
		free(m.p);
		free(prev.p);
		ts_free(&ts->base);
	}
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_properties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
