/* adt_test.h: what the AMT and HAMT tests share: a blockstore in memory that
 * counts its calls and can be told to fail, CBOR value makers, a seeded PRNG. */
#ifndef CAIRN_TESTS_ADT_TEST_H
#define CAIRN_TESTS_ADT_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

/* ------------------------------------------------------- a test store
 *
 * An open-addressing table of CID -> bytes on plain malloc (so allocation
 * failures injected into cairn never land here). Counts gets and puts;
 * `fail_gets`/`fail_puts` > 0 make that many calls from now on fail after
 * `fail_after` more succeed.
 */
typedef struct {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
	bool used;
} tblock;

typedef struct {
	cairn_store base;
	tblock *v;
	size_t cap, len;
	unsigned long gets, puts, put_bytes;
	long fail_get_after, fail_put_after; /* -1: never */
} tstore;

static inline tblock *ts_find(tstore *ts, const cairn_cid *cid)
{
	size_t mask = ts->cap - 1;

	if (!ts->cap)
		return NULL;
	for (size_t i = cairn_cid_hash(cid) & mask; ts->v[i].used; i = (i + 1) & mask)
		if (cairn_cid_multihash_equal(&ts->v[i].cid, cid))
			return &ts->v[i];
	return NULL;
}

static inline int ts_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	tstore *ts = (tstore *)s;
	tblock *b;

	ts->gets++;
	if (ts->fail_get_after >= 0 && ts->fail_get_after-- == 0) {
		ts->fail_get_after = 0;
		return cairn_error_set(CAIRN_EIO, "test store: injected read failure");
	}
	if (!(b = ts_find(ts, cid)))
		return cairn_error_set(CAIRN_ENOTFOUND, "test store: not found");
	cairn_buf_clear(out);
	return cairn_buf_append(out, b->data, b->len);
}

static inline int ts_has(cairn_store *s, const cairn_cid *cid)
{
	return ts_find((tstore *)s, cid) != NULL;
}

static inline void ts_grow(tstore *ts)
{
	size_t cap = ts->cap ? ts->cap * 2 : 1024;
	tblock *v = calloc(cap, sizeof(*v));

	if (!v)
		abort();
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

static inline int ts_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	tstore *ts = (tstore *)s;
	size_t i;

	ts->puts++;
	ts->put_bytes += len;
	if (ts->fail_put_after >= 0 && ts->fail_put_after-- == 0) {
		ts->fail_put_after = 0;
		return cairn_error_set(CAIRN_EIO, "test store: injected write failure");
	}
	if (ts_find(ts, cid))
		return 0;
	if ((ts->len + 1) * 2 > ts->cap)
		ts_grow(ts);
	for (i = cairn_cid_hash(cid) & (ts->cap - 1); ts->v[i].used; i = (i + 1) & (ts->cap - 1))
		;
	ts->v[i].cid = *cid;
	ts->v[i].data = malloc(len ? len : 1);
	if (!ts->v[i].data)
		abort();
	memcpy(ts->v[i].data, data, len);
	ts->v[i].len = len;
	ts->v[i].used = true;
	ts->len++;
	return 0;
}

static inline int ts_iterate(cairn_store *s, cairn_store_iter_fn fn, void *payload)
{
	tstore *ts = (tstore *)s;
	int rc;

	for (size_t i = 0; i < ts->cap; i++)
		if (ts->v[i].used && (rc = fn(&ts->v[i].cid, payload)))
			return rc;
	return 0;
}

static inline void ts_free(cairn_store *s)
{
	tstore *ts = (tstore *)s;

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
	.iterate = ts_iterate,
	.free = ts_free,
};

static inline tstore *ts_new(void)
{
	tstore *ts = calloc(1, sizeof(*ts));

	if (!ts)
		abort();
	ts->base.ops = &ts_ops;
	ts->fail_get_after = ts->fail_put_after = -1;
	return ts;
}

/* ------------------------------------------------------------- values */

/* CBOR byte string of s (cbor-gen's []byte, Rust's BytesDe). */
static inline size_t cbor_bytes(uint8_t *out, const void *s, size_t n)
{
	size_t h;

	if (n < 24) {
		out[0] = (uint8_t)(0x40 | n);
		h = 1;
	} else {
		out[0] = 0x58;
		out[1] = (uint8_t)n;
		h = 2;
	}
	memcpy(out + h, s, n);
	return h + n;
}

/* CBOR unsigned integer. */
static inline size_t cbor_uint(uint8_t *out, uint64_t v)
{
	size_t n;

	if (v < 24) {
		out[0] = (uint8_t)v;
		return 1;
	}
	n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
	out[0] = (uint8_t)(n == 1 ? 0x18 : n == 2 ? 0x19 : n == 4 ? 0x1a : 0x1b);
	for (size_t i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return 1 + n;
}

static inline const char *cid_str(const cairn_cid *cid)
{
	static char buf[4][CAIRN_CID_MAX_STRING];
	static unsigned k;
	char *s = buf[k++ % 4];

	cairn_cid_to_string(s, cid);
	return s;
}

/* ---------------------------------------------------------------- PRNG */

static inline uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: small, seeded, the same on every platform */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The seed from $CAIRN_TEST_SEED, else the clock; printed so a failure can
 * be replayed. */
static inline uint64_t test_seed(const char *what)
{
	const char *env = getenv("CAIRN_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : cairn_time_ns();

	printf("%s: seed %llu (CAIRN_TEST_SEED=%llu replays it)\n", what, (unsigned long long)seed,
	       (unsigned long long)seed);
	fflush(stdout);
	return seed;
}

#endif
