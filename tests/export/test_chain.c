/* test_chain.c: the ranged chain export (Lotus's export-range rules) on a
 * hand-built chain with a null round and on generated chains, against a
 * single-threaded reference walk of the same rules. */
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
#include <unistd.h>

#include "cairn.h"
#include "chaingen.h"

/* ------------------------------------------------------------ the store
 *
 * Built by one thread, then read by many: get takes no lock. Each entry
 * counts its gets, so "each block is read once" can be checked.
 */
typedef struct entry {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
	_Atomic unsigned reads;
} entry;

typedef struct {
	cairn_store base;
	entry *v;
	size_t n, cap;
	size_t *index; /* open addressing: entry number + 1 */
	size_t icap;
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
	entry *e = find((tstore *)s, cid);

	if (!e)
		return cairn_error_set(CAIRN_ENOTFOUND, "test store: not found");
	atomic_fetch_add(&e->reads, 1);
	cairn_buf_clear(out);
	return cairn_buf_append(out, e->data, e->len);
}

static int t_has(cairn_store *s, const cairn_cid *cid)
{
	return find((tstore *)s, cid) != NULL;
}

static void reindex(tstore *t)
{
	free(t->index);
	t->icap *= 2;
	t->index = calloc(t->icap, sizeof(size_t));
	assert_non_null(t->index);
	for (size_t k = 0; k < t->n; k++) {
		size_t i = cairn_cid_hash(&t->v[k].cid) & (t->icap - 1);

		while (t->index[i])
			i = (i + 1) & (t->icap - 1);
		t->index[i] = k + 1;
	}
}

static int t_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	tstore *t = (tstore *)s;
	entry *e;

	if (find(t, cid))
		return 0;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 1024;
		t->v = realloc(t->v, t->cap * sizeof(entry));
		assert_non_null(t->v);
	}
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->cid = *cid;
	e->len = len;
	e->data = malloc(len ? len : 1);
	assert_non_null(e->data);
	memcpy(e->data, data, len);
	if (t->n * 2 > t->icap)
		reindex(t);
	else {
		size_t i = cairn_cid_hash(cid) & (t->icap - 1);

		while (t->index[i])
			i = (i + 1) & (t->icap - 1);
		t->index[i] = t->n;
	}
	return 0;
}

static void t_free(cairn_store *s)
{
	tstore *t = (tstore *)s;

	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].data);
	free(t->v);
	free(t->index);
	free(t);
}

static const cairn_store_ops t_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "test",
	.get = t_get,
	.has = t_has,
	.put = t_put,
	.free = t_free,
};

static tstore *tstore_new(void)
{
	tstore *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->base.ops = &t_ops;
	t->icap = 1024;
	t->index = calloc(t->icap, sizeof(size_t));
	assert_non_null(t->index);
	return t;
}

static void reset_reads(tstore *t)
{
	for (size_t i = 0; i < t->n; i++)
		atomic_store(&t->v[i].reads, 0);
}

/* ------------------------------------------------- exporting to a set */

typedef struct collected {
	cairn_cid_set set;
	uint64_t blocks, dups;
} collected;

static int sink(const cairn_cid *cid, const uint8_t *data, size_t len, void *payload)
{
	collected *c = payload;
	bool added;

	(void)data;
	(void)len;
	assert_int_equal(cairn_cid_set_add(&c->set, cid, &added), 0);
	c->blocks++;
	c->dups += !added;
	return 0;
}

static int export_set(collected *out, tstore *t, const cairn_cid *head, size_t nhead,
		      const cairn_chain_range *range, unsigned workers)
{
	cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
	cairn_export *ex = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	opts.workers = workers;
	opts.sink = sink;
	opts.payload = out;
	opts.links = cairn_chain_range_links;
	opts.links_payload = (void *)range;
	opts.queue_len = 64; /* small, so the FIFO fills */
	assert_int_equal(cairn_export_new(&ex, &t->base, &opts), 0);
	rc = cairn_export_run(NULL, ex, head, nhead, NULL);
	cairn_export_free(ex);
	return rc;
}

/* ----------------------------------------------- the reference walk
 *
 * The rules as Lotus's processTask states them, one block at a time: a
 * queue of (CID, type), one seen-set for every type.
 */
enum { R_HEADER, R_DAG, R_RECEIPTS };

typedef struct rtask {
	cairn_cid cid;
	int type;
} rtask;

typedef struct rwalk {
	rtask *q;
	size_t head, n, cap;
	cairn_cid_set seen;
	int type; /* for the parent callback */
} rwalk;

static int rpush(const cairn_cid *cid, void *payload)
{
	rwalk *w = payload;
	bool added;

	if (cid->mh_code == CAIRN_MH_IDENTITY)
		return 0;
	if (cid->codec != CAIRN_CODEC_CBOR && cid->codec != CAIRN_CODEC_DAG_CBOR &&
	    cid->codec != CAIRN_CODEC_RAW)
		return 0;
	assert_int_equal(cairn_cid_set_add(&w->seen, cid, &added), 0);
	if (!added)
		return 0;
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->q = realloc(w->q, w->cap * sizeof(rtask));
		assert_non_null(w->q);
	}
	w->q[w->n].cid = *cid;
	w->q[w->n++].type = w->type;
	return 0;
}

/* The set of CIDs Lotus's rules export; `written` gets them. */
static void reference_walk(cairn_cid_set *written, tstore *t, const cairn_cid *head,
			   size_t nhead, const cairn_chain_range *range)
{
	rwalk w;
	cairn_buf b = CAIRN_BUF_INIT;

	memset(&w, 0, sizeof(w));
	memset(written, 0, sizeof(*written));
	w.type = R_HEADER;
	for (size_t i = 0; i < nhead; i++)
		rpush(&head[i], &w);
	while (w.head < w.n) {
		rtask task = w.q[w.head++];
		cairn_chain_header h;
		int rc = cairn_store_get(&t->base, &b, &task.cid);

		if (rc == CAIRN_ENOTFOUND && task.type == R_RECEIPTS)
			continue;
		assert_int_equal(rc, 0);
		assert_int_equal(cairn_cid_set_add(written, &task.cid, NULL), 0);
		if (task.cid.codec != CAIRN_CODEC_DAG_CBOR)
			continue;
		if (task.type != R_HEADER) {
			w.type = task.type;
			assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, b.data, b.len, rpush,
							   &w), 0);
			continue;
		}
		assert_int_equal(cairn_chain_header_decode(&h, b.data, b.len, NULL, NULL), 0);
		if (h.height == 0) {
			w.type = R_DAG;
			assert_int_equal(cairn_chain_header_decode(&h, b.data, b.len, rpush, &w), 0);
			rpush(&h.state_root, &w);
			continue;
		}
		w.type = R_HEADER;
		assert_int_equal(cairn_chain_header_decode(&h, b.data, b.len, rpush, &w), 0);
		if (range->tail >= h.height)
			continue;
		w.type = R_DAG;
		if (range->messages)
			rpush(&h.messages, &w);
		if (range->receipts) {
			w.type = R_RECEIPTS;
			rpush(&h.receipts, &w);
			w.type = R_DAG;
		}
		if (range->stateroots)
			rpush(&h.state_root, &w);
	}
	free(w.q);
	cairn_cid_set_free(&w.seen);
	cairn_buf_free(&b);
}

static bool same_set(const cairn_cid_set *a, const cairn_cid_set *b)
{
	if (a->len != b->len)
		return false;
	for (size_t i = 0; i < a->cap; i++)
		if (a->slots[i].len && !cairn_cid_set_has(b, &a->slots[i]))
			return false;
	return true;
}

/* ------------------------------------------------- the hand-built chain
 *
 *   P  <- g (0) <- a1, b1 (1) <- [null round at 2] <- c3 (3)
 *
 * g:  state S0 [5, L0, Info, dag-pb link, identity link], receipts Z, msgs E
 * a1: state S1 [5, L1, Info], receipts Z, msgs M1 (BLS m1)
 * b1: state S1, receipts Z, msgs E
 * c3: state S3 [5, L3, Info], receipts R3 (one receipt whose events root
 *     is missing from the store), msgs M3 (secp m3)
 * E is the TxMeta of two empty AMTs, both Z (the empty legacy AMT, also
 * the empty receipts); M1 = [X1, Z], M3 = [Z, X3].
 */
typedef struct hand {
	tstore *t;
	cairn_cid P, g, a1, b1, c3, S0, S1, S3, L0, L1, L3, Info, Z, E, M1, M3, X1, X3, m1, m3, R3;
} hand;

static void put_cbor(cairn_cid *out, tstore *t, cairn_buf *b, bool sha256)
{
	assert_int_equal(chaingen_put(out, &t->base, CAIRN_CODEC_DAG_CBOR, sha256, b), 0);
	cairn_buf_clear(b);
}

static void leaf(cairn_cid *out, tstore *t, const char *s)
{
	cairn_buf b = CAIRN_BUF_INIT;

	chaingen_put_head(&b, 3, strlen(s));
	assert_int_equal(cairn_buf_puts(&b, s), 0);
	put_cbor(out, t, &b, false);
	cairn_buf_free(&b);
}

static void state(cairn_cid *out, hand *h, const cairn_cid *l, bool odd_links)
{
	cairn_buf b = CAIRN_BUF_INIT;

	chaingen_put_head(&b, 4, odd_links ? 5 : 3);
	chaingen_put_head(&b, 0, 5);
	chaingen_put_link(&b, l);
	chaingen_put_link(&b, &h->Info);
	if (odd_links) {
		cairn_cid pb, id;

		assert_int_equal(cairn_cid_compute(&pb, 1, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256,
						   "x", 1), 0);
		assert_int_equal(cairn_cid_compute(&id, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_IDENTITY,
						   "\x80", 1), 0);
		chaingen_put_link(&b, &pb);
		chaingen_put_link(&b, &id);
	}
	put_cbor(out, h->t, &b, false);
	cairn_buf_free(&b);
}

static void message(cairn_cid *out, tstore *t, bool secp)
{
	cairn_buf b = CAIRN_BUF_INIT;
	static const uint8_t to[2] = {0, 100}, from[2] = {0, 101};

	if (secp)
		chaingen_put_head(&b, 4, 2);
	chaingen_put_head(&b, 4, 10);
	chaingen_put_head(&b, 0, 0);
	chaingen_put_bytes(&b, to, 2);
	chaingen_put_bytes(&b, from, 2);
	chaingen_put_head(&b, 0, secp);
	chaingen_put_bytes(&b, NULL, 0);
	chaingen_put_head(&b, 0, 1000);
	chaingen_put_bytes(&b, NULL, 0);
	chaingen_put_bytes(&b, NULL, 0);
	chaingen_put_head(&b, 0, 0);
	chaingen_put_bytes(&b, NULL, 0);
	if (secp) {
		uint8_t sig[66] = {1};

		chaingen_put_bytes(&b, sig, sizeof(sig));
	}
	put_cbor(out, t, &b, false);
	cairn_buf_free(&b);
}

/* The root of a legacy AMT whose only value (index 0) is a link. */
static void one_link_amt(cairn_cid *out, tstore *t, const cairn_cid *v)
{
	cairn_buf b = CAIRN_BUF_INIT;

	chaingen_put_link(&b, v);
	assert_int_equal(chaingen_put_legacy_amt(out, &t->base, b.data, b.len), 0);
	cairn_buf_free(&b);
}

static void txmeta(cairn_cid *out, tstore *t, const cairn_cid *bls, const cairn_cid *secp)
{
	cairn_buf b = CAIRN_BUF_INIT;

	chaingen_put_head(&b, 4, 2);
	chaingen_put_link(&b, bls);
	chaingen_put_link(&b, secp);
	put_cbor(out, t, &b, false);
	cairn_buf_free(&b);
}

static void header(cairn_cid *out, hand *h, const cairn_cid *parents, size_t n, int64_t height,
		   const cairn_cid *st, const cairn_cid *rc, const cairn_cid *msgs)
{
	chaingen_header hh = {parents, n, height, *st, *rc, *msgs, 1000, 1598306400 + 30 * (uint64_t)height,
			      (uint64_t)height * 77 + n};

	assert_int_equal(chaingen_put_header(out, NULL, &h->t->base, &hh), 0);
}

static void hand_build(hand *h)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid ev, parents[2];

	memset(h, 0, sizeof(*h));
	h->t = tstore_new();
	chaingen_put_head(&b, 3, 14);
	assert_int_equal(cairn_buf_puts(&b, "genesis ticket"), 0);
	put_cbor(&h->P, h->t, &b, true);
	chaingen_put_head(&b, 4, 0);
	put_cbor(&h->Info, h->t, &b, false);
	leaf(&h->L0, h->t, "state at 0");
	leaf(&h->L1, h->t, "state at 1");
	leaf(&h->L3, h->t, "state at 3");
	state(&h->S0, h, &h->L0, true);
	state(&h->S1, h, &h->L1, false);
	state(&h->S3, h, &h->L3, false);
	assert_int_equal(chaingen_put_legacy_amt(&h->Z, &h->t->base, NULL, 0), 0);
	txmeta(&h->E, h->t, &h->Z, &h->Z);
	message(&h->m1, h->t, false);
	message(&h->m3, h->t, true);
	one_link_amt(&h->X1, h->t, &h->m1);
	one_link_amt(&h->X3, h->t, &h->m3);
	txmeta(&h->M1, h->t, &h->X1, &h->Z);
	txmeta(&h->M3, h->t, &h->Z, &h->X3);
	/* One receipt [0, "", 100, events root]; the events AMT is absent. */
	assert_int_equal(cairn_cid_compute(&ev, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_BLAKE2B_256,
					   "absent", 6), 0);
	chaingen_put_head(&b, 4, 4);
	chaingen_put_head(&b, 0, 0);
	chaingen_put_bytes(&b, NULL, 0);
	chaingen_put_head(&b, 0, 100);
	chaingen_put_link(&b, &ev);
	assert_int_equal(chaingen_put_legacy_amt(&h->R3, &h->t->base, b.data, b.len), 0);
	cairn_buf_free(&b);
	header(&h->g, h, &h->P, 1, 0, &h->S0, &h->Z, &h->E);
	header(&h->a1, h, &h->g, 1, 1, &h->S1, &h->Z, &h->M1);
	header(&h->b1, h, &h->g, 1, 1, &h->S1, &h->Z, &h->E);
	parents[0] = h->a1;
	parents[1] = h->b1;
	header(&h->c3, h, parents, 2, 3, &h->S3, &h->R3, &h->M3);
}

static void expect_set(const collected *got, const cairn_cid *const *want, size_t n)
{
	assert_int_equal(got->dups, 0);
	for (size_t i = 0; i < n; i++)
		if (!cairn_cid_set_has(&got->set, want[i]))
			fail_msg("expected block %zu is not in the export", i);
	assert_int_equal(got->set.len, n);
	assert_int_equal(got->blocks, n);
}

static void test_hand_built(void **state_)
{
	hand h;
	collected got;
	(void)state_;

	hand_build(&h);
	/* The empty TxMeta is Lotus's (an empty block's Messages). */
	{
		char str[CAIRN_CID_MAX_STRING];

		assert_true(cairn_cid_to_string(str, &h.E) > 0);
		assert_string_equal(str, "bafy2bzacecmda75ovposbdateg7eyhwij65zklgyijgcjwynlklmqazpwlhba");
	}
	for (unsigned workers = 1; workers <= 4; workers += 3) {
		/* tail 1, everything: above it only c3 brings its messages,
		 * receipts (the missing events root skipped) and state. */
		{
			cairn_chain_range r = {1, true, true, true};
			const cairn_cid *want[] = {&h.c3, &h.a1, &h.b1, &h.g, &h.P, &h.S0, &h.L0,
						   &h.Info, &h.M3, &h.Z, &h.X3, &h.m3, &h.R3, &h.S3,
						   &h.L3};

			assert_int_equal(export_set(&got, h.t, &h.c3, 1, &r, workers), 0);
			expect_set(&got, want, sizeof(want) / sizeof(want[0]));
			cairn_cid_set_free(&got.set);
		}
		/* The tail at the head: headers, the genesis parent and state. */
		{
			cairn_chain_range r = {3, true, true, true};
			const cairn_cid *want[] = {&h.c3, &h.a1, &h.b1, &h.g, &h.P, &h.S0, &h.L0,
						   &h.Info};

			assert_int_equal(export_set(&got, h.t, &h.c3, 1, &r, workers), 0);
			expect_set(&got, want, sizeof(want) / sizeof(want[0]));
			cairn_cid_set_free(&got.set);
		}
		/* Messages only, from genesis: g's own messages are not taken. */
		{
			cairn_chain_range r = {0, true, false, false};
			const cairn_cid *want[] = {&h.c3, &h.a1, &h.b1, &h.g, &h.P, &h.S0, &h.L0,
						   &h.Info, &h.M1, &h.X1, &h.m1, &h.Z, &h.E, &h.M3,
						   &h.X3, &h.m3};

			assert_int_equal(export_set(&got, h.t, &h.c3, 1, &r, workers), 0);
			expect_set(&got, want, sizeof(want) / sizeof(want[0]));
			cairn_cid_set_free(&got.set);
		}
		/* State roots only from genesis: S1 once for a1 and b1. */
		{
			cairn_chain_range r = {0, false, false, true};
			const cairn_cid *want[] = {&h.c3, &h.a1, &h.b1, &h.g, &h.P, &h.S0, &h.L0,
						   &h.Info, &h.S1, &h.L1, &h.S3, &h.L3};

			assert_int_equal(export_set(&got, h.t, &h.c3, 1, &r, workers), 0);
			expect_set(&got, want, sizeof(want) / sizeof(want[0]));
			cairn_cid_set_free(&got.set);
		}
		/* A head of two blocks below the null round. */
		{
			cairn_chain_range r = {0, false, true, false};
			cairn_cid head[2] = {h.a1, h.b1};
			const cairn_cid *want[] = {&h.a1, &h.b1, &h.g, &h.P, &h.S0, &h.L0, &h.Info,
						   &h.Z};

			assert_int_equal(export_set(&got, h.t, head, 2, &r, workers), 0);
			expect_set(&got, want, sizeof(want) / sizeof(want[0]));
			cairn_cid_set_free(&got.set);
		}
	}
	/* A block missing outside the receipts fails the export. */
	{
		cairn_chain_range r = {0, true, true, true};
		tstore *t = h.t;
		entry *e = find(t, &h.L1);

		assert_non_null(e);
		e->cid.bytes[e->cid.len - 1] ^= 1; /* L1 is gone (its slot no longer matches) */
		assert_int_equal(export_set(&got, t, &h.c3, 1, &r, 2), CAIRN_ENOTFOUND);
		cairn_cid_set_free(&got.set);
		e->cid.bytes[e->cid.len - 1] ^= 1;
	}
	t_free(&h.t->base);
}

/* ------------------------------------------------ generated chains */

static tstore *generate(chaingen_result *res, int64_t epochs, uint64_t seed)
{
	chaingen_options o = CHAINGEN_OPTIONS_INIT;
	tstore *t = tstore_new();

	o.epochs = epochs;
	o.seed = seed;
	assert_int_equal(chaingen_run(res, &t->base, &o), 0);
	assert_true(res->nhead >= 1);
	assert_int_equal(res->height, epochs - 1);
	return t;
}

/* The tail at genesis with every flag: every block generated. */
static void test_genesis_tail_everything(void **state_)
{
	chaingen_result res;
	cairn_chain_range r = {0, true, true, true};
	tstore *t = generate(&res, 80, 7);
	(void)state_;

	assert_true(res.nulls > 0);
	for (unsigned workers = 1; workers <= 8; workers *= 8) {
		collected got;

		reset_reads(t);
		assert_int_equal(export_set(&got, t, res.head, res.nhead, &r, workers), 0);
		assert_int_equal(got.dups, 0);
		assert_int_equal(got.set.len, t->n);
		for (size_t i = 0; i < t->n; i++) {
			assert_true(cairn_cid_set_has(&got.set, &t->v[i].cid));
			assert_int_equal(atomic_load(&t->v[i].reads), 1);
		}
		cairn_cid_set_free(&got.set);
	}
	t_free(&t->base);
}

/* A few hundred epochs: the export's set is the reference walk's, for
 * several tails, flags and worker counts. */
static void test_reference(void **state_)
{
	chaingen_result res;
	tstore *t = generate(&res, 300, 42);
	const int64_t tails[] = {0, 1, 120, 250, 299};
	(void)state_;

	for (size_t ti = 0; ti < sizeof(tails) / sizeof(tails[0]); ti++) {
		for (unsigned flags = 0; flags < 8; flags += (ti % 2 ? 3 : 1)) {
			cairn_chain_range r = {tails[ti], flags & 1, (flags >> 1) & 1, (flags >> 2) & 1};
			cairn_cid_set want;

			reference_walk(&want, t, res.head, res.nhead, &r);
			for (unsigned workers = 1; workers <= 4; workers *= 2) {
				collected got;

				reset_reads(t);
				assert_int_equal(export_set(&got, t, res.head, res.nhead, &r, workers),
						 0);
				assert_int_equal(got.dups, 0);
				assert_int_equal(got.blocks, want.len);
				assert_true(same_set(&got.set, &want));
				for (size_t i = 0; i < t->n; i++)
					assert_true(atomic_load(&t->v[i].reads) <= 1);
				cairn_cid_set_free(&got.set);
			}
			cairn_cid_set_free(&want);
		}
	}
	t_free(&t->base);
}

/* The CAR: its roots are the head tipset's CIDs in order, no duplicates. */
static void test_car_roots(void **state_)
{
	chaingen_result res;
	cairn_chain_range r = {100, true, true, true};
	cairn_export_options opts = CAIRN_EXPORT_OPTIONS_INIT;
	cairn_export_stats st;
	cairn_car_reader *rd = NULL;
	cairn_car_section sec;
	cairn_cid_set seen = CAIRN_CID_SET_INIT;
	char dir[] = "/tmp/cairn-chain-XXXXXX", path[64];
	tstore *t;
	int64_t height;
	uint64_t n = 0;
	int rc;
	(void)state_;

	/* A seed whose head has two blocks or more. */
	for (uint64_t seed = 1;; seed++) {
		t = generate(&res, 200, seed);
		if (res.nhead > 1)
			break;
		t_free(&t->base);
	}
	assert_int_equal(cairn_chain_tipset_height(&height, &t->base, res.head, res.nhead), 0);
	assert_int_equal(height, 199);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.car", dir);
	opts.workers = 2;
	assert_int_equal(cairn_chain_export_range(&st, &t->base, res.head, res.nhead, &r, &opts, path),
			 0);
	assert_int_equal(cairn_car_reader_open(&rd, path, NULL), 0);
	assert_int_equal(cairn_car_reader_root_count(rd), res.nhead);
	for (size_t i = 0; i < res.nhead; i++)
		assert_true(cairn_cid_equal(&cairn_car_reader_roots(rd)[i], &res.head[i]));
	while ((rc = cairn_car_reader_next(rd, &sec, true)) == 1) {
		bool added;

		assert_int_equal(cairn_cid_set_add(&seen, &sec.cid, &added), 0);
		assert_true(added);
		n++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(n, st.blocks);
	cairn_car_reader_free(rd);
	cairn_cid_set_free(&seen);
	/* The tail above the head is refused; no file is made. */
	r.tail = 200;
	unlink(path);
	assert_int_equal(cairn_chain_export_range(NULL, &t->base, res.head, res.nhead, &r, &opts,
						  path), CAIRN_EINVAL);
	assert_int_equal(access(path, F_OK), -1);
	rmdir(dir);
	t_free(&t->base);
}

static void test_snapshot_name(void **state_)
{
	char name[128];
	(void)state_;

	assert_int_equal(cairn_chain_snapshot_name(name, sizeof(name), 100, 2000, 1700000000), 32);
	assert_string_equal(name, "snapshot_100_2000_1700000000.car");
	cairn_chain_snapshot_name(name, sizeof(name), 0, 0, 0);
	assert_string_equal(name, "snapshot_0_0_0.car");
}

/* A header that is not one: a clear error, nothing written. */
static void test_bad_header(void **state_)
{
	cairn_chain_header h;
	static const uint8_t not16[] = {0x83, 0x01, 0x02, 0x03};
	(void)state_;

	assert_int_equal(cairn_chain_header_decode(&h, not16, sizeof(not16), NULL, NULL),
			 CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "16 fields"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_built),
		cmocka_unit_test(test_genesis_tail_everything),
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_car_roots),
		cmocka_unit_test(test_snapshot_name),
		cmocka_unit_test(test_bad_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
