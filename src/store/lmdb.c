/* lmdb.c: the persistent blockstore: blocks in an LMDB environment, keyed by
 * multihash, with puts batched into one write transaction until flush.
 *
 * Why LMDB: a B+tree in one memory-mapped file, readers that never block
 * each other or the writer and reach a block without a copy, one writer,
 * crash safety by copy-on-write pages and a switch of meta page. Against a
 * SQLite table keyed by multihash (WAL, the same batches; bench_store.c)
 * it put 1.3 to 2.3 times and got 1.4 to 3.9 times as fast as the better
 * of two table layouts, with 200-byte and with 1 MiB blocks, in each of
 * four runs: docs/BENCHMARKS.md.
 *
 * Key and value. The key is the CID's multihash (code, length, digest), so
 * a CIDv0 and a CIDv1 of the same bytes are one block, as go-car's and
 * boxo's blockstores match. The value is the rest of the CID (its version
 * and codec prefix, `cid.bytes[0..mh_off)`: 0 bytes for v0, 2 to 4 for a
 * v1) after one byte giving its length, then the block:
 *     value = prefix_len(1) prefix(prefix_len) block
 * so iterate gives back the CID the block was put with, and a lookup is one
 * mdb_get on the multihash. The other layout, key = multihash || prefix,
 * needs a cursor seek per lookup: 13% fewer gets per second for 200-byte
 * blocks, the same puts, and one block twice under two codecs. A put of a
 * multihash already there is a no-op (MDB_NOOVERWRITE): the bytes are the
 * same, and the CID first put is the one iterate gives.
 *
 * The write batch. LMDB allows one write transaction per environment, and
 * its lock belongs to the thread that began it (a robust mutex: only that
 * thread can release it). Puts go into a write transaction kept open
 * across calls and committed when the bytes put into it pass `batch_bytes`
 * (0: at every put), at flush, at iterate and at free. So the batch belongs
 * to the thread that opened it: put, put_many, del and flush from another
 * thread while it is open fail with CAIRN_EINVAL rather than wait on a lock
 * that thread may never release; once it is committed any thread may open
 * the next. A thread that put must flush before it ends. The batch's dirty
 * pages are in memory until the commit: for small blocks about 1.5 times
 * their bytes (a 48 MB batch of 200-byte blocks took 72 MiB); past 128Ki
 * dirty pages (512 MiB) LMDB writes some out early.
 *
 * Visibility. The batch's owner reads inside its write transaction, so its
 * get or has right after a put sees the block (LMDB reads a write
 * transaction's dirty pages). Every other thread reads in a read-only
 * transaction and sees what was committed: a batch becomes visible to
 * them when it commits, all at once. Read transactions are reset and kept
 * in a pool (MDB_NOTLS ties LMDB's reader slot to the transaction, not the
 * thread), so a get is a renew, one mdb_get, one copy and a reset, without
 * LMDB's reader-table lock. iterate commits the caller's batch and walks a
 * read snapshot, so its callback may get, put and delete; the iteration
 * does not see those changes.
 *
 * Durability. A commit fsyncs (fdatasync of the data, then of the meta
 * page) unless `no_sync`, which opens with MDB_NOSYNC: commits reach the
 * page cache only, so a crash of the process loses nothing committed, but a
 * crash of the machine may lose the last commits, and on a file system
 * that reorders writes may leave the file unusable. For tests, benchmarks
 * and scratch stores that can be rebuilt. Not MDB_WRITEMAP, though it put
 * 1 MiB blocks 1.2 to 4 times as fast: LMDB then sizes the file to the
 * whole map (sparse, but 64 GiB to any tool that copies it), a full disk
 * becomes a SIGBUS in a page fault instead of an error from pwrite, and a
 * stray pointer can write into the store.
 *
 * The map. `map_size` bounds what puts may fill; the file is sparse and
 * grows as pages are used. A write transaction that runs out of map fails
 * with MDB_MAP_FULL and can only be aborted, losing its whole batch; so
 * before each operation we bound what the batch could need (every leaf it
 * touches copied, its large blocks' overflow pages, the commit's own
 * pages) and, when that might not fit, commit the batch first and let the
 * operation commit alone. A put that does not fit then fails by itself
 * with CAIRN_ETOOBIG and nothing acknowledged before it is lost. Near the
 * end of the map every put is its own commit (slow: a warning is logged
 * once). LMDB's map is a little larger than map_size, a reserve only
 * deletes may use: a put that, alone, had to grow the file into it is
 * taken back and refused, so a full store can always be emptied by GC,
 * after which puts fit again. Reopening with a larger map_size is free.
 *
 * Other processes. LMDB's lock file lets several processes open the
 * directory: their readers run beside ours, and their writes wait for our
 * batch to commit (mdb_txn_begin blocks on the writer lock), as ours wait
 * for theirs. A batch left open stalls other writers: flush when done.
 *
 * Errors name the directory and the operation, with LMDB's message:
 * CAIRN_ETOOBIG for a full map, CAIRN_ECORRUPT for a file that is not an
 * LMDB environment or is damaged, CAIRN_ENOMEM, and CAIRN_EIO for the rest.
 * del of a block that is not there is CAIRN_ENOTFOUND.
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/store.h"

/* Pages kept free at the end of the map for what a commit itself writes:
 * the free-page list, the branch pages above it, the meta page. */
#define COMMIT_SLACK_PAGES 32
/* LMDB's map is larger than map_size by a reserve only deletes may use
 * (LMDB copies a page to change it, so a full map refuses deletes too):
 * a full store can always be cleaned by GC. */
#define DEL_RESERVE_PAGES 64
#define DEL_RESERVE_SHARE 256 /* and 1/256 of the map, for batches of deletes */

typedef struct {
	cairn_store base;
	MDB_env *env;
	MDB_dbi dbi;
	char *dir;
	cairn_store_lmdb_options opts;
	uint64_t psize;         /* LMDB's page size */
	uint64_t put_pages;     /* map_size in pages: what puts may fill */
	uint64_t map_pages;     /* LMDB's map: that and the reserve for deletes */
	uint64_t node_max;      /* a leaf node past this goes to overflow pages */

	/* The write batch; every field is touched only by its owner. */
	_Atomic uintptr_t owner; /* thread token of the owner, 0 when none */
	MDB_txn *txn;
	uint64_t batch_blocks;  /* blocks put (and dels) in it, to report losses */
	uint64_t batch_bytes;   /* key, value and block bytes put in it */
	uint64_t batch_ops;     /* puts and dels: each may copy a leaf */
	uint64_t batch_ov_pages;/* overflow pages of its large blocks */
	uint64_t committed_pages; /* pages in the file at the last commit */
	bool warned_full;

	/* Reset read transactions for reuse; at most LMDB's reader slots. */
	pthread_mutex_t pool_lock;
	MDB_txn **pool;
	size_t pool_len, pool_cap;
} lmdb_store;

static lmdb_store *as_lmdb(cairn_store *s)
{
	return (lmdb_store *)s;
}

/* A token unique to each live thread: the address of a thread-local. */
static uintptr_t self_token(void)
{
	static _Thread_local char token;

	return (uintptr_t)&token;
}

static bool owns_batch(lmdb_store *s)
{
	return atomic_load_explicit(&s->owner, memory_order_relaxed) == self_token();
}

/* ----------------------------------------------------------------- errors */

static int code_of(int rc)
{
	switch (rc) {
	case MDB_MAP_FULL:
		return CAIRN_ETOOBIG;
	case ENOMEM:
		return CAIRN_ENOMEM;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return CAIRN_ECORRUPT;
	default:
		return CAIRN_EIO;
	}
}

/* An LMDB failure as a cairn code, with the directory, the operation, and
 * for a batch that had to be dropped, how much was lost. */
static int fail(const lmdb_store *s, int rc, const char *op, uint64_t lost)
{
	char tail[96] = "";

	if (lost)
		snprintf(tail, sizeof(tail), "; the %llu blocks put or deleted since the last commit were dropped",
			 (unsigned long long)lost);
	if (rc == MDB_MAP_FULL)
		return cairn_error_set(CAIRN_ETOOBIG,
			"lmdb store %s: %s: the map is full (map_size %llu bytes): reopen with a larger map_size%s",
			s->dir, op, (unsigned long long)(s->put_pages * s->psize), tail);
	return cairn_error_set(code_of(rc), "lmdb store %s: %s: %s%s", s->dir, op, mdb_strerror(rc),
			       tail);
}

static int not_found(const lmdb_store *s, const cairn_cid *cid)
{
	char str[CAIRN_CID_MAX_STRING];

	cairn_cid_to_string(str, cid);
	return cairn_error_set(CAIRN_ENOTFOUND, "lmdb store %s: block %s is not there", s->dir, str);
}

/* ------------------------------------------------------------- the batch */

static void refresh_pages(lmdb_store *s)
{
	MDB_envinfo info;

	/* The last page in use, free pages included: an overestimate, which
	 * only makes the map check commit a little early. */
	if (!mdb_env_info(s->env, &info))
		s->committed_pages = (uint64_t)info.me_last_pgno + 1;
}

static void batch_reset(lmdb_store *s)
{
	s->txn = NULL;
	s->batch_blocks = s->batch_bytes = s->batch_ops = s->batch_ov_pages = 0;
	atomic_store(&s->owner, 0);
}

/* Opens a batch for the calling thread, or finds its own open. */
static int batch_begin(lmdb_store *s, const char *op)
{
	uintptr_t none = 0, me = self_token();
	int rc;

	if (atomic_load_explicit(&s->owner, memory_order_relaxed) == me)
		return 0;
	if (!atomic_compare_exchange_strong(&s->owner, &none, me))
		return cairn_error_set(CAIRN_EINVAL,
			"lmdb store %s: %s: another thread has a write batch open; puts, del and flush "
			"must come from that thread until it flushes", s->dir, op);
	/* Waits here while another process writes. */
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &s->txn))) {
		batch_reset(s);
		return fail(s, rc, op, 0);
	}
	return 0;
}

/* `own` of the batch's blocks belong to the calling operation, which
 * fails with it: they are not counted as dropped. */
static int batch_commit(lmdb_store *s, const char *op, uint64_t own)
{
	uint64_t n = s->batch_blocks - own;
	int rc;

	if (!s->txn)
		return 0;
	/* The handle is gone after commit, whatever it returns. */
	rc = mdb_txn_commit(s->txn);
	batch_reset(s);
	if (rc)
		return fail(s, rc, op, n);
	refresh_pages(s);
	return 0;
}

/* A failed put or del leaves LMDB's transaction unusable: drop it. */
static int batch_abort(lmdb_store *s, int rc, const char *op)
{
	uint64_t n = s->batch_blocks;

	mdb_txn_abort(s->txn);
	batch_reset(s);
	return fail(s, rc, op, n);
}

/* Pages a value of `vlen` bytes takes outside its leaf (LMDB's OVPAGES), or
 * 0 when the node fits in a leaf (LMDB's me_nodemax: half a page less the
 * page header, even). */
static uint64_t overflow_pages(const lmdb_store *s, size_t klen, size_t vlen)
{
	if (8 + klen + vlen <= s->node_max)
		return 0;
	return (16 - 1 + vlen) / s->psize + 1;
}

/* How many pages the batch may have taken beyond the committed file, with
 * `ops` operations, `bytes` of them and `ov` overflow pages: every
 * operation may copy a leaf and split it (2 pages), but never more leaves
 * than the tree holds plus the new data spread at a quarter-page fill; the
 * commit then records every replaced page in the free list (8 bytes each). */
static uint64_t batch_pages(const lmdb_store *s, uint64_t ops, uint64_t bytes, uint64_t ov)
{
	uint64_t leaves = 2 * ops, cap = s->committed_pages + 4 * (bytes / s->psize) + 16;
	uint64_t touched = (leaves < cap ? leaves : cap) + ov;

	return touched + touched * 8 / s->psize + COMMIT_SLACK_PAGES;
}

/* Whether the batch with one more operation of klen + vlen bytes surely
 * fits in `limit` pages. */
static bool fits(const lmdb_store *s, size_t klen, size_t vlen, uint64_t limit)
{
	uint64_t ov = overflow_pages(s, klen, vlen);

	return s->committed_pages + batch_pages(s, s->batch_ops + 1, s->batch_bytes + klen + vlen,
						s->batch_ov_pages + ov) <= limit;
}

/* Opens the batch for one more operation and says whether it must commit
 * on its own. When the batch with it might not fit in the map, the batch
 * is committed first and the operation is `alone`: its caller commits it
 * before returning, so a full map fails that call and loses nothing put
 * before it. Near the end of the map every put is then its own commit. */
static int begin_op(lmdb_store *s, size_t klen, size_t vlen, uint64_t limit, bool *alone,
		    const char *op)
{
	int rc;

	/* Claimed before its state is looked at: the batch may be another's. */
	if ((rc = batch_begin(s, op)))
		return rc;
	*alone = !fits(s, klen, vlen, limit);
	if (!*alone)
		return 0;
	if (!s->warned_full) {
		s->warned_full = true;
		cairn_log(CAIRN_LOG_WARN,
			  "lmdb store %s: near the end of the map (map_size %llu bytes): every put is now "
			  "its own commit; reopen with a larger map_size", s->dir,
			  (unsigned long long)(s->put_pages * s->psize));
	}
	if (s->batch_blocks && (rc = batch_commit(s, op, 0)))
		return rc;
	return batch_begin(s, op);
}

static void key_of(MDB_val *key, const cairn_cid *cid)
{
	key->mv_size = (size_t)cid->len - cid->mh_off;
	key->mv_data = (void *)(cid->bytes + cid->mh_off);
}

/* Takes back a put that, committed alone, took fresh pages from the
 * deletes' reserve: the map is full for puts. */
static int undo_put(lmdb_store *s, const MDB_val *key, const char *op)
{
	/* If this fails the block stays: stored, though the put still fails. */
	if (!batch_begin(s, op)) {
		if (mdb_del(s->txn, s->dbi, (MDB_val *)key, NULL)) {
			mdb_txn_abort(s->txn);
			batch_reset(s);
		} else {
			batch_commit(s, op, 0);
		}
	}
	return fail(s, MDB_MAP_FULL, op, 0);
}

/* One put into the batch (opened here if need be). */
static int put_one(lmdb_store *s, const cairn_cid *cid, const uint8_t *data, size_t len,
		   const char *op)
{
	size_t head = 1 + (size_t)cid->mh_off;
	uint64_t before;
	MDB_val key, val;
	bool alone;
	uint8_t *p;
	int rc;

	key_of(&key, cid);
	if ((rc = begin_op(s, key.mv_size, head + len, s->put_pages, &alone, op)))
		return rc;
	before = s->committed_pages;
	val.mv_size = head + len;
	val.mv_data = NULL;
	/* RESERVE: LMDB gives us the space, so the block is copied once. */
	rc = mdb_put(s->txn, s->dbi, &key, &val, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc == MDB_KEYEXIST)
		return 0; /* val is the stored block: not ours to write */
	if (rc)
		return batch_abort(s, rc, op);
	p = val.mv_data;
	p[0] = cid->mh_off;
	memcpy(p + 1, cid->bytes, cid->mh_off);
	if (len)
		memcpy(p + head, data, len);
	s->batch_blocks++;
	s->batch_ops++;
	s->batch_bytes += key.mv_size + val.mv_size;
	s->batch_ov_pages += overflow_pages(s, key.mv_size, val.mv_size);
	if (!alone)
		return 0;
	if ((rc = batch_commit(s, op, 1)))
		return rc;
	/* LMDB grows the file only when no free pages will do. */
	if (s->committed_pages > s->put_pages && s->committed_pages > before)
		return undo_put(s, &key, op);
	return 0;
}

static int commit_if_full(lmdb_store *s, const char *op)
{
	if (!owns_batch(s) || s->batch_bytes < s->opts.batch_bytes)
		return 0;
	return batch_commit(s, op, 0);
}

/* ----------------------------------------------------------------- reads */

/* The transaction to read in: the batch for its owner, else a pooled
 * read-only one. `pooled` says which, for read_end. */
static int read_begin(lmdb_store *s, MDB_txn **txn, bool *pooled, const char *op)
{
	MDB_txn *t = NULL;
	int rc;

	if (owns_batch(s)) {
		*txn = s->txn;
		*pooled = false;
		return 0;
	}
	pthread_mutex_lock(&s->pool_lock);
	if (s->pool_len)
		t = s->pool[--s->pool_len];
	pthread_mutex_unlock(&s->pool_lock);
	rc = t ? mdb_txn_renew(t) : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t);
	if (rc) {
		if (t)
			mdb_txn_abort(t);
		return fail(s, rc, op, 0);
	}
	*txn = t;
	*pooled = true;
	return 0;
}

static void read_end(lmdb_store *s, MDB_txn *t, bool pooled)
{
	if (!pooled)
		return;
	mdb_txn_reset(t);
	pthread_mutex_lock(&s->pool_lock);
	if (s->pool_len < s->pool_cap) {
		s->pool[s->pool_len++] = t;
		t = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (t)
		mdb_txn_abort(t);
}

static int malformed(const lmdb_store *s, const MDB_val *key, const MDB_val *val)
{
	char hex[2 * 8 + 1] = "";
	const uint8_t *k = key->mv_data;

	for (size_t i = 0; i < key->mv_size && i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
	return cairn_error_set(CAIRN_ECORRUPT,
		"lmdb store %s: the value under key %s... (%zu bytes) is malformed", s->dir, hex,
		val->mv_size);
}

/* The block inside a stored value, after its CID prefix. */
static int block_of(const lmdb_store *s, const MDB_val *key, const MDB_val *val,
		    const uint8_t **p, size_t *n)
{
	const uint8_t *v = val->mv_data;

	if (val->mv_size < 1 || v[0] > val->mv_size - 1)
		return malformed(s, key, val);
	*p = v + 1 + v[0];
	*n = val->mv_size - 1 - v[0];
	return 0;
}

/* 0 with `val` set, CAIRN_ENOTFOUND (no message yet), or a failure. */
static int lookup(lmdb_store *s, MDB_txn *txn, const MDB_val *key, MDB_val *val, const char *op)
{
	int rc = mdb_get(txn, s->dbi, (MDB_val *)key, val);

	if (rc == MDB_NOTFOUND)
		return CAIRN_ENOTFOUND;
	return rc ? fail(s, rc, op, 0) : 0;
}

static int lmdb_get(cairn_store *base, cairn_buf *out, const cairn_cid *cid)
{
	lmdb_store *s = as_lmdb(base);
	const uint8_t *p = NULL;
	MDB_txn *txn = NULL;
	MDB_val key, val;
	bool pooled = false;
	size_t n = 0;
	int rc;

	if ((rc = read_begin(s, &txn, &pooled, "get")))
		return rc;
	key_of(&key, cid);
	if (!(rc = lookup(s, txn, &key, &val, "get")) && !(rc = block_of(s, &key, &val, &p, &n))) {
		cairn_buf_clear(out);
		rc = cairn_buf_append(out, p, n);
	}
	read_end(s, txn, pooled);
	return rc == CAIRN_ENOTFOUND ? not_found(s, cid) : rc;
}

static int lmdb_get_size(cairn_store *base, uint64_t *size_out, const cairn_cid *cid)
{
	lmdb_store *s = as_lmdb(base);
	const uint8_t *p = NULL;
	MDB_txn *txn = NULL;
	MDB_val key, val;
	bool pooled = false;
	size_t n = 0;
	int rc;

	if ((rc = read_begin(s, &txn, &pooled, "get_size")))
		return rc;
	key_of(&key, cid);
	if (!(rc = lookup(s, txn, &key, &val, "get_size")) && !(rc = block_of(s, &key, &val, &p, &n)))
		*size_out = n;
	read_end(s, txn, pooled);
	return rc == CAIRN_ENOTFOUND ? not_found(s, cid) : rc;
}

static int lmdb_has(cairn_store *base, const cairn_cid *cid)
{
	lmdb_store *s = as_lmdb(base);
	MDB_txn *txn = NULL;
	MDB_val key, val;
	bool pooled = false;
	int rc;

	if ((rc = read_begin(s, &txn, &pooled, "has")))
		return rc;
	key_of(&key, cid);
	rc = lookup(s, txn, &key, &val, "has");
	read_end(s, txn, pooled);
	return rc == CAIRN_ENOTFOUND ? 0 : rc ? rc : 1;
}

/* ---------------------------------------------------------------- writes */

static int lmdb_put(cairn_store *base, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	lmdb_store *s = as_lmdb(base);
	int rc;

	if ((rc = put_one(s, cid, data, len, "put")))
		return rc;
	return commit_if_full(s, "put");
}

/* All into the open batch, committed at the end only if past batch_bytes
 * (or earlier if the map might not hold it). */
static int lmdb_put_many(cairn_store *base, const cairn_block *blocks, size_t n)
{
	lmdb_store *s = as_lmdb(base);
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (blocks[i].cid.mh_code == CAIRN_MH_IDENTITY)
			continue;
		if ((rc = put_one(s, &blocks[i].cid, blocks[i].data, blocks[i].len, "put_many")))
			return rc;
	}
	return commit_if_full(s, "put_many");
}

/* In the batch like a put; a block that is not there is CAIRN_ENOTFOUND
 * and leaves the batch as it was. */
static int lmdb_del(cairn_store *base, const cairn_cid *cid)
{
	lmdb_store *s = as_lmdb(base);
	MDB_val key;
	bool alone;
	int rc;

	key_of(&key, cid);
	if ((rc = begin_op(s, key.mv_size, 0, s->map_pages, &alone, "del")))
		return rc;
	rc = mdb_del(s->txn, s->dbi, &key, NULL);
	if (rc == MDB_NOTFOUND)
		return not_found(s, cid);
	if (rc)
		return batch_abort(s, rc, "del");
	s->batch_blocks++;
	s->batch_ops++;
	return alone ? batch_commit(s, "del", 1) : 0;
}

/* The whole store in key (multihash) order. An open batch of the calling
 * thread is committed first, so the iteration sees it; then a read
 * snapshot is walked, so the callback may get, put and delete: its changes
 * are not seen by this iteration (and a long one keeps LMDB from reusing
 * the pages they free until it ends). */
static int lmdb_iterate(cairn_store *base, cairn_store_iter_fn fn, void *payload)
{
	lmdb_store *s = as_lmdb(base);
	uint8_t bytes[CAIRN_CID_MAX_BYTES];
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	MDB_val key, val;
	bool pooled = false;
	int rc = 0, mrc;

	if (owns_batch(s) && (rc = batch_commit(s, "iterate", 0)))
		return rc;
	if ((rc = read_begin(s, &txn, &pooled, "iterate")))
		return rc;
	if ((mrc = mdb_cursor_open(txn, s->dbi, &cur))) {
		read_end(s, txn, pooled);
		return fail(s, mrc, "iterate", 0);
	}
	for (mrc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); !mrc;
	     mrc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const uint8_t *v = val.mv_data;
		cairn_cid cid;
		size_t n;

		if (val.mv_size < 1 || v[0] > val.mv_size - 1 ||
		    v[0] + key.mv_size > CAIRN_CID_MAX_BYTES) {
			rc = malformed(s, &key, &val);
			break;
		}
		n = v[0];
		memcpy(bytes, v + 1, n);
		memcpy(bytes + n, key.mv_data, key.mv_size);
		if ((rc = cairn_cid_decode(&cid, NULL, bytes, n + key.mv_size))) {
			cairn_error_prefix("lmdb store %s: a stored CID: ", s->dir);
			break;
		}
		if ((rc = fn(&cid, payload)))
			break;
	}
	if (!rc && mrc != MDB_NOTFOUND)
		rc = fail(s, mrc, "iterate", 0);
	mdb_cursor_close(cur);
	read_end(s, txn, pooled);
	return rc;
}

/* Commits the batch: every block put becomes durable (unless no_sync) and
 * visible to every thread. `root` does not narrow it: what is put here is
 * already on its way to disk. */
static int lmdb_flush(cairn_store *base, const cairn_cid *root)
{
	lmdb_store *s = as_lmdb(base);
	uintptr_t owner = atomic_load(&s->owner);

	(void)root;
	if (!owner)
		return 0;
	if (owner != self_token())
		return cairn_error_set(CAIRN_EINVAL,
			"lmdb store %s: flush: another thread has a write batch open; it must flush it",
			s->dir);
	return batch_commit(s, "flush", 0);
}

static void lmdb_free(cairn_store *base)
{
	lmdb_store *s = as_lmdb(base);

	if (s->txn) {
		/* Committing from another thread works but cannot release the
		 * owner's writer lock; LMDB clears it when the environment is
		 * closed by its last user. */
		if (!owns_batch(s))
			cairn_log(CAIRN_LOG_WARN, "lmdb store %s: closed by a thread that does not own its write batch",
				  s->dir);
		if (batch_commit(s, "close", 0))
			cairn_log(CAIRN_LOG_ERROR, "%s", cairn_error_last());
	}
	for (size_t i = 0; i < s->pool_len; i++)
		mdb_txn_abort(s->pool[i]);
	if (s->env)
		mdb_env_close(s->env);
	pthread_mutex_destroy(&s->pool_lock);
	cairn_free(s->pool);
	cairn_free(s->dir);
	cairn_free(s);
}

static const cairn_store_ops lmdb_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "lmdb",
	.get = lmdb_get,
	.get_size = lmdb_get_size,
	.has = lmdb_has,
	.put = lmdb_put,
	.put_many = lmdb_put_many,
	.del = lmdb_del,
	.iterate = lmdb_iterate,
	.flush = lmdb_flush,
	.free = lmdb_free,
};

/* ------------------------------------------------------------------ open */

/* mkdir -p, with 0700 for what it creates: the store is private. */
static int make_dirs(const char *dir)
{
	char *p = cairn_strndup(dir, strlen(dir));
	int rc = 0;

	if (!p)
		return CAIRN_ENOMEM;
	for (char *c = p + 1; !rc; c++) {
		char saved = *c;

		if (saved && saved != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			rc = cairn_error_set(CAIRN_EIO, "lmdb store %s: cannot create %s: %s", dir, p,
					     strerror(errno));
		*c = saved;
		if (!saved)
			break;
	}
	cairn_free(p);
	return rc;
}

static int open_env(lmdb_store *s)
{
	unsigned flags = MDB_NOTLS | (s->opts.no_sync ? MDB_NOSYNC : 0), readers;
	long os_page = sysconf(_SC_PAGESIZE);
	uint64_t map = s->opts.map_size;
	MDB_txn *txn = NULL;
	MDB_stat st;
	int rc;

	/* LMDB wants the map a multiple of the OS page (which is its page). */
	if (os_page <= 0)
		os_page = 4096;
	map = (map + (uint64_t)os_page - 1) / (uint64_t)os_page * (uint64_t)os_page;
	s->put_pages = map / (uint64_t)os_page;
	map += (DEL_RESERVE_PAGES + s->put_pages / DEL_RESERVE_SHARE) * (uint64_t)os_page;
	if ((rc = mdb_env_create(&s->env)))
		return fail(s, rc, "create environment", 0);
	if ((rc = mdb_env_set_mapsize(s->env, (size_t)map)))
		return fail(s, rc, "set map size", 0);
	if ((rc = mdb_env_open(s->env, s->dir, flags, 0600)))
		return fail(s, rc, "open", 0);
	/* Reader slots left by processes that died holding them. */
	mdb_reader_check(s->env, NULL);
	/* The main database needs no write lock to open. */
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)))
		return fail(s, rc, "open", 0);
	if ((rc = mdb_dbi_open(txn, NULL, 0, &s->dbi))) {
		mdb_txn_abort(txn);
		return fail(s, rc, "open database", 0);
	}
	if ((rc = mdb_txn_commit(txn)))
		return fail(s, rc, "open", 0);
	mdb_env_stat(s->env, &st);
	s->psize = st.ms_psize;
	s->node_max = ((s->psize - 16) / 2) & ~(uint64_t)1;
	{
		MDB_envinfo info;

		mdb_env_info(s->env, &info);
		/* The map LMDB took: larger than asked when the file is. */
		s->map_pages = (uint64_t)info.me_mapsize / s->psize;
		s->put_pages = s->put_pages * (uint64_t)os_page / s->psize;
	}
	refresh_pages(s);
	if ((rc = mdb_env_get_maxreaders(s->env, &readers)))
		return fail(s, rc, "open", 0);
	s->pool_cap = readers;
	if (!(s->pool = cairn_calloc(readers, sizeof(*s->pool))))
		return CAIRN_ENOMEM;
	return 0;
}

int cairn_store_lmdb_open(cairn_store **out, const char *dir, const cairn_store_lmdb_options *opts)
{
	static const cairn_store_lmdb_options defaults = CAIRN_STORE_LMDB_OPTIONS_INIT;
	lmdb_store *s;
	int rc;

	*out = NULL;
	if (!dir || !*dir)
		return cairn_error_set(CAIRN_EINVAL, "lmdb store: no directory given");
	if (!(s = cairn_calloc(1, sizeof(*s))))
		return CAIRN_ENOMEM;
	s->base.ops = &lmdb_ops;
	s->opts = opts ? *opts : defaults;
	if (!s->opts.map_size)
		s->opts.map_size = defaults.map_size;
	pthread_mutex_init(&s->pool_lock, NULL);
	if (!(s->dir = cairn_strndup(dir, strlen(dir))))
		rc = CAIRN_ENOMEM;
	else if (!(rc = make_dirs(dir)))
		rc = open_env(s);
	if (rc) {
		lmdb_free(&s->base);
		return rc;
	}
	*out = &s->base;
	return 0;
}
