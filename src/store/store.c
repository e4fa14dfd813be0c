/* store.c: the wrappers every caller uses over a store's table of operations
 * (identity CIDs, fallbacks for optional operations), the DAG walk, and GC. */
#include <string.h>

#include "cairn/store.h"

static int unsupported(const cairn_store *s, const char *op)
{
	return cairn_error_set(CAIRN_EUNSUPPORTED, "%s store: %s is not supported",
			       cairn_store_name(s), op);
}

/* Bad arguments are the caller's bug, reported, never a crash. */
#define CHECK_ARGS(cond)                                                                 \
	do {                                                                             \
		if (!(cond))                                                             \
			return cairn_error_set(CAIRN_EINVAL, "%s: invalid argument (%s)", \
					       __func__, #cond);                         \
	} while (0)

const char *cairn_store_name(const cairn_store *s)
{
	return s->ops->name ? s->ops->name : "unnamed";
}

int cairn_store_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	CHECK_ARGS(s && s->ops && out && cid);
	if (cid->mh_code == CAIRN_MH_IDENTITY) {
		cairn_buf_clear(out);
		return cairn_buf_append(out, cid->bytes + cid->digest_off, cid->digest_len);
	}
	if (!s->ops->get)
		return unsupported(s, "get");
	return s->ops->get(s, out, cid);
}

/* A run of non-identity CIDs handed to the store's get_many: its indices
 * are the run's, fn is told the caller's. */
typedef struct {
	cairn_store_block_fn fn;
	void *payload;
	size_t base;
} run_ctx;

static int run_block(size_t i, int rc, const uint8_t *data, size_t len, void *payload)
{
	run_ctx *r = payload;

	return r->fn(r->base + i, rc, data, len, r->payload);
}

static bool numbers(const cairn_store *s)
{
	return s->ops->version >= 3 && s->ops->positions && s->ops->locate_many;
}

/* Both get_many wrappers: runs of non-identity CIDs to the store's own
 * get_many_at (with positions) or get_many, if it has them; identity CIDs
 * and the rest one get at a time. */
static int get_many(cairn_store *s, const cairn_cid *const *cids, const uint64_t *pos, size_t n,
		    cairn_buf *scratch, cairn_store_block_fn fn, void *payload)
{
	bool at = pos && numbers(s) && s->ops->get_many_at;
	bool batched = at || (s->ops->version >= 2 && s->ops->get_many);
	size_t i = 0;
	int rc;

	while (i < n) {
		const cairn_cid *cid = cids[i];
		size_t end = i + 1;
		int got;

		if (batched && cid->mh_code != CAIRN_MH_IDENTITY) {
			run_ctx r = {fn, payload, i};

			while (end < n && cids[end]->mh_code != CAIRN_MH_IDENTITY)
				end++;
			rc = at ? s->ops->get_many_at(s, cids + i, pos + i, end - i, scratch,
						      run_block, &r)
				: s->ops->get_many(s, cids + i, end - i, scratch, run_block, &r);
			if (rc)
				return rc;
		} else {
			got = cairn_store_get(s, scratch, cid);
			if ((rc = fn(i, got, got ? NULL : scratch->data, got ? 0 : scratch->len,
				     payload)))
				return rc;
		}
		i = end;
	}
	return 0;
}

int cairn_store_get_many(cairn_store *s, const cairn_cid *const *cids, size_t n,
			 cairn_buf *scratch, cairn_store_block_fn fn, void *payload)
{
	CHECK_ARGS(s && s->ops && (cids || !n) && scratch && fn);
	return get_many(s, cids, NULL, n, scratch, fn, payload);
}

int cairn_store_get_many_at(cairn_store *s, const cairn_cid *const *cids, const uint64_t *pos,
			    size_t n, cairn_buf *scratch, cairn_store_block_fn fn, void *payload)
{
	CHECK_ARGS(s && s->ops && (cids || !n) && (pos || !n) && scratch && fn);
	return get_many(s, cids, pos, n, scratch, fn, payload);
}

uint64_t cairn_store_positions(cairn_store *s)
{
	return s && s->ops && numbers(s) ? s->ops->positions(s) : 0;
}

int cairn_store_locate_many(cairn_store *s, const cairn_cid *const *cids, size_t n,
			    uint64_t *pos)
{
	size_t i = 0;
	int rc;

	CHECK_ARGS(s && s->ops && (cids || !n) && (pos || !n));
	while (i < n) {
		size_t end = i + 1;

		if (numbers(s) && cids[i]->mh_code != CAIRN_MH_IDENTITY) {
			while (end < n && cids[end]->mh_code != CAIRN_MH_IDENTITY)
				end++;
			if ((rc = s->ops->locate_many(s, cids + i, end - i, pos + i)))
				return rc;
		} else {
			pos[i] = CAIRN_STORE_NO_POSITION;
		}
		i = end;
	}
	return 0;
}

int cairn_store_get_size(cairn_store *s, uint64_t *size_out, const cairn_cid *cid)
{
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	CHECK_ARGS(s && s->ops && size_out && cid);
	if (cid->mh_code == CAIRN_MH_IDENTITY) {
		*size_out = cid->digest_len;
		return 0;
	}
	if (s->ops->get_size)
		return s->ops->get_size(s, size_out, cid);
	if ((rc = cairn_store_get(s, &b, cid)) == 0)
		*size_out = b.len;
	cairn_buf_free(&b);
	return rc;
}

int cairn_store_has(cairn_store *s, const cairn_cid *cid)
{
	uint64_t size;
	int rc;

	CHECK_ARGS(s && s->ops && cid);
	if (cid->mh_code == CAIRN_MH_IDENTITY)
		return 1;
	if (s->ops->has)
		return s->ops->has(s, cid);
	rc = cairn_store_get_size(s, &size, cid);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	return rc ? rc : 1;
}

int cairn_store_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	CHECK_ARGS(s && s->ops && cid && (data || !len));
	if (cid->mh_code == CAIRN_MH_IDENTITY)
		return 0;
	if (!s->ops->put)
		return unsupported(s, "put");
	return s->ops->put(s, cid, data, len);
}

int cairn_store_put_many(cairn_store *s, const cairn_block *blocks, size_t n)
{
	int rc;

	CHECK_ARGS(s && s->ops && (blocks || !n));
	if (s->ops->put_many) {
		/* Runs between identity blocks, which the implementation never sees. */
		size_t start = 0;

		for (size_t i = 0; i <= n; i++) {
			if (i < n && blocks[i].cid.mh_code != CAIRN_MH_IDENTITY)
				continue;
			if (i > start && (rc = s->ops->put_many(s, blocks + start, i - start)))
				return rc;
			start = i + 1;
		}
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = cairn_store_put(s, &blocks[i].cid, blocks[i].data, blocks[i].len)))
			return rc;
	return 0;
}

int cairn_store_del(cairn_store *s, const cairn_cid *cid)
{
	CHECK_ARGS(s && s->ops && cid);
	if (cid->mh_code == CAIRN_MH_IDENTITY)
		return 0;
	if (!s->ops->del)
		return unsupported(s, "del");
	return s->ops->del(s, cid);
}

int cairn_store_iterate(cairn_store *s, cairn_store_iter_fn fn, void *payload)
{
	CHECK_ARGS(s && s->ops && fn);
	if (!s->ops->iterate)
		return unsupported(s, "iterate");
	return s->ops->iterate(s, fn, payload);
}

int cairn_store_flush(cairn_store *s, const cairn_cid *root)
{
	CHECK_ARGS(s && s->ops);
	/* A store with nothing to make durable has no flush. */
	return s->ops->flush ? s->ops->flush(s, root) : 0;
}

void cairn_store_free(cairn_store *s)
{
	if (s)
		s->ops->free(s);
}

/* ------------------------------------------------------------------ walk */

typedef struct {
	cairn_cid *v;
	size_t len, cap;
} cid_stack;

static int push(const cairn_cid *cid, void *payload)
{
	cid_stack *st = payload;

	if (st->len == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 64;
		cairn_cid *p = cairn_realloc(st->v, cap * sizeof(*p));

		if (!p)
			return CAIRN_ENOMEM;
		st->v = p;
		st->cap = cap;
	}
	st->v[st->len++] = *cid;
	return 0;
}

/* Depth first with an explicit stack (DAGs can be deep); `seen` may be
 * shared across several roots. */
static int walk(cairn_store *s, cairn_cid_set *seen, const cairn_cid *root, cairn_store_iter_fn fn,
		void *payload)
{
	cid_stack stack = {NULL, 0, 0};
	cairn_buf block = CAIRN_BUF_INIT;
	int rc = push(root, &stack);

	while (!rc && stack.len) {
		cairn_cid cid = stack.v[--stack.len];
		size_t mark = stack.len;
		bool added;

		if ((rc = cairn_cid_set_add(seen, &cid, &added)) || !added)
			continue;
		if (fn && (rc = fn(&cid, payload)))
			break;
		if (cid.codec != CAIRN_CODEC_DAG_CBOR && cid.codec != CAIRN_CODEC_DAG_PB &&
		    cid.codec != CAIRN_CODEC_DAG_JSON)
			continue; /* raw, or a codec whose links cairn cannot read */
		if ((rc = cairn_store_get(s, &block, &cid))) {
			if (rc == CAIRN_ENOTFOUND) {
				char str[CAIRN_CID_MAX_STRING];
				cairn_cid_to_string(str, &cid);
				rc = cairn_error_set(CAIRN_ENOTFOUND, "%s store: block %s is not there",
						     cairn_store_name(s), str);
			}
			break;
		}
		if ((rc = cairn_block_links(cid.codec, block.data, block.len, push, &stack)))
			break;
		/* Reverse the children just pushed, so the walk visits links in
		 * their order in the block, as go-car's traversal does. */
		for (size_t a = mark, b = stack.len; a + 1 < b; a++, b--) {
			cairn_cid t = stack.v[a];
			stack.v[a] = stack.v[b - 1];
			stack.v[b - 1] = t;
		}
	}
	cairn_free(stack.v);
	cairn_buf_free(&block);
	return rc;
}

int cairn_store_walk(cairn_store *s, const cairn_cid *root, cairn_store_iter_fn fn, void *payload)
{
	/* By multihash, as stores match blocks. */
	cairn_cid_set seen = {NULL, 0, 0, true};
	int rc = walk(s, &seen, root, fn, payload);

	cairn_cid_set_free(&seen);
	return rc;
}

/* -------------------------------------------------------------------- GC */

typedef struct {
	const cairn_cid_set *live;
	cid_stack dead;
	uint64_t kept;
} sweep;

static int collect_dead(const cairn_cid *cid, void *payload)
{
	sweep *sw = payload;

	if (cairn_cid_set_has(sw->live, cid)) {
		sw->kept++;
		return 0;
	}
	return push(cid, &sw->dead);
}

static int leaf_present(const cairn_cid *cid, void *payload)
{
	cairn_store *s = payload;
	char str[CAIRN_CID_MAX_STRING];
	int rc;

	if (cid->mh_code == CAIRN_MH_IDENTITY || cid->codec == CAIRN_CODEC_DAG_CBOR ||
	    cid->codec == CAIRN_CODEC_DAG_PB || cid->codec == CAIRN_CODEC_DAG_JSON)
		return 0;
	if ((rc = cairn_store_has(s, cid)) != 0)
		return rc < 0 ? rc : 0;
	cairn_cid_to_string(str, cid);
	return cairn_error_set(CAIRN_ENOTFOUND, "%s store: block %s is not there",
			       cairn_store_name(s), str);
}

int cairn_store_gc(cairn_store_gc_stats *out, cairn_store *s, const cairn_cid *roots, size_t nroots)
{
	/* By multihash, as stores match blocks: otherwise GC would delete a
	 * block put under a CIDv0 and linked under its CIDv1. */
	cairn_cid_set live = {NULL, 0, 0, true};
	sweep sw = {&live, {NULL, 0, 0}, 0};
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!s->ops->iterate || !s->ops->del)
		return unsupported(s, "garbage collection (iterate and del)");
	for (size_t i = 0; i < nroots && !rc; i++)
		rc = walk(s, &live, &roots[i], leaf_present, s);
	/* Deleting while iterating is not safe in every store: collect the
	 * dead first, then delete. */
	if (!rc)
		rc = cairn_store_iterate(s, collect_dead, &sw);
	for (size_t i = 0; i < sw.dead.len && !rc; i++) {
		uint64_t size = 0;

		if ((rc = cairn_store_get_size(s, &size, &sw.dead.v[i])))
			break;
		if ((rc = cairn_store_del(s, &sw.dead.v[i])))
			break;
		out->deleted++;
		out->deleted_bytes += size;
	}
	if (!rc)
		rc = cairn_store_flush(s, NULL);
	out->kept = sw.kept;
	cairn_cid_set_free(&live);
	cairn_free(sw.dead.v);
	return rc;
}
