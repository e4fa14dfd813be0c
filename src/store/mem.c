/* mem.c: the memory store, a write buffer with a byte budget over a backing
 * store, so a migration can build state larger than RAM and persist a root.
 *
 * Why: Filecoin migrations held all new state in memory and wrote it at the
 * end (specs-actors#1460; nv22 needed 160 GB, go-state-types#338 was killed
 * at 170 GB). The remedy proposed there is this store: flush(root) writes
 * every block below a root to the backing store and evicts it; Lotus's
 * Autobatch adds the other half, writing on its own once a size is passed.
 *
 * Layout. One allocation per block: the entry head (48 bytes), the CID's
 * bytes, the block's bytes. Entries sit in a chained hash table (one
 * pointer per slot, load at most 1) and on a list in order of insertion.
 * A 200-byte dag-cbor block with a 38-byte CID costs 304 bytes of heap (286
 * asked, malloc's 8-byte head, rounded to 16) and 8 to 16 of table: 320,
 * 60% over the block, as bench_memstore measures; a 1 MiB block, 1 MiB and
 * 4 KiB at most.
 *
 * Accounting. held_bytes is what the store has taken from malloc: for each
 * entry its usable size plus the 8-byte chunk head glibc keeps before it,
 * and the hash table. The budget bounds held_bytes: after every put it is
 * at most the budget. (Not counted: the store itself and its batch of 128
 * block descriptors, 26 KB, fixed; and whatever the backing store buffers:
 * LMDB keeps a write transaction's dirty pages in memory until it commits,
 * and its mapped file pages count in RSS too. bench_memstore measures it:
 * over a backing store that keeps nothing, a 64 MiB budget building 1 GiB
 * peaked at 68.6 MiB RSS, 2.9 of them the process before it started.)
 *
 * Eviction. A put that would pass the budget first writes the oldest blocks
 * to the backing store, in batches through put_many, and frees them,
 * until held_bytes is at most half the budget (less if the new block needs
 * more): half, so that a run of puts pays one write per half a budget of
 * blocks, not one per put. Oldest first is also what keeps flush(root)
 * complete, see below. A block whose cost alone passes the budget is
 * written straight through (after the blocks below it held in memory).
 *
 * flush(root). Two passes over the blocks reachable from root through
 * blocks held in memory, with no allocation but the backing store's: the
 * first marks them and counts, for each, its parents among them; the second
 * takes them parents first (Kahn's order) and the writes go in the reverse,
 * children before parents and root last. So a backing store never holds a
 * parent whose children it lacks, even when a write fails halfway or the
 * process dies, and Has(root) means the whole DAG is there (Lotus trusts
 * its migration cache by Has(newRoot)). Each batch is evicted once written:
 * after a failed write what is held is every parent of what is held, so a
 * second flush(root) descends to all of it and completes the job.
 *
 * A block that is not held ends the descent: it was written already, with
 * what is below it, or it was in the backing store all along (the old state
 * a migration's new state links to). That holds when blocks are put after
 * the blocks they link to, as every builder does (a parent's bytes hold its
 * children's CIDs; go-amt-ipld's Flush puts children first, then the root),
 * because eviction takes the oldest first, and because a block written
 * straight through takes its held descendants with it. A caller putting
 * parents first (copying a CAR in file order) uses flush(NULL) instead.
 * flush(root) checks that every link leaving memory is in the backing store
 * (one has() per such link, except identity CIDs and the Filecoin piece
 * commitments, which are not blocks, as Lotus's vm.Copy skips them) and
 * fails with CAIRN_ENOTFOUND naming the missing block and its parent before
 * writing anything: once flush(root) succeeds, the DAG is whole.
 *
 * free drops every block still held and writes nothing: a
 * store is made durable by flush, whose failure the caller sees, never by a
 * free that could not report it; and what a migration leaves unflushed is
 * its garbage (superseded AMT nodes) or the state of a run that failed.
 * Lotus merges a premigration's results only on success for that reason.
 *
 * del forgets a held block and never touches the backing store, which may
 * hold the same block for other DAGs (content addressing shares unchanged
 * subtrees between the old state and the new). iterate lists the held
 * blocks, oldest first, each once; to list everything, flush(NULL) and then
 * iterate the backing store. get, get_size and has look in memory, then in
 * the backing store. Not thread-safe: one thread at a time, gets included.
 */
#include <malloc.h>
#include <string.h>

#include "cairn/store.h"

/* A put_many to the backing store takes at most 128 blocks (one call
 * instead of 128) and 4 MiB: a batch is freed as soon as it is written, so
 * the blocks and the backing store's copy of them (LMDB's dirty pages) are
 * not both in RSS for long. Building 1 GiB of 1 MiB blocks with a 64 MiB
 * budget over LMDB peaked at 148 MiB RSS with 32 MiB batches, 104 with 4. */
#define BATCH 128
#define BATCH_BYTES (4u << 20)
/* Evict down to this share of the budget (percent). */
#define LOW_WATER_PCT 50
/* Slots of a new hash table, and the fewest it shrinks to. */
#define TABLE_MIN 64
/* glibc keeps the chunk's size field in the 8 bytes before the pointer. */
#define CHUNK_HEAD sizeof(size_t)
/* Past this a block may be mmapped by glibc (its threshold starts at 128
 * KiB), which costs whole pages. */
#define MMAP_MAYBE (64u << 10)
#define PAGE 4096u

enum {
	F_MARK = 1,    /* reached by the flush(root) under way */
	/* Bits 2-3: how to read the block's links; 0 for none (raw, others). */
	F_KIND_SHIFT = 2,
	F_KIND_MASK = 3 << 2,
};

enum { KIND_NONE, KIND_DAG_CBOR, KIND_DAG_PB, KIND_DAG_JSON };
static const uint64_t kind_codec[] = {0, CAIRN_CODEC_DAG_CBOR, CAIRN_CODEC_DAG_PB,
				      CAIRN_CODEC_DAG_JSON};

typedef struct entry entry;
struct entry {
	entry *hnext;         /* hash chain */
	entry *older, *newer; /* insertion order */
	entry *work;          /* flush(root): the stack, then the write order */
	uint32_t hash;
	uint32_t len;         /* block bytes */
	uint32_t indeg;       /* flush(root): parents reached, not yet taken */
	uint8_t cid_len;
	uint8_t flags;
	uint8_t bytes[];      /* CID, then block */
};

typedef struct mem_store {
	cairn_store base;
	cairn_store *backing;
	uint64_t budget, low_water;
	entry **table;
	size_t cap, count;
	entry *oldest, *newest;
	/* A put_many batch: descriptors and the entries they came from. */
	cairn_block *batch;
	entry **batch_entries;
	cairn_store_mem_stats st;
} mem_store;

static const cairn_store_ops mem_ops;

/* ---------------------------------------------------------------- helpers */

static unsigned codec_kind(uint64_t codec)
{
	switch (codec) {
	case CAIRN_CODEC_DAG_CBOR:
		return KIND_DAG_CBOR;
	case CAIRN_CODEC_DAG_PB:
		return KIND_DAG_PB;
	case CAIRN_CODEC_DAG_JSON:
		return KIND_DAG_JSON;
	default:
		return KIND_NONE;
	}
}

static uint32_t cid_hash(const cairn_cid *cid)
{
	return (uint32_t)cairn_cid_hash(cid);
}

static const uint8_t *entry_data(const entry *e)
{
	return e->bytes + e->cid_len;
}

static int entry_cid(cairn_cid *out, const entry *e)
{
	return cairn_cid_decode(out, NULL, e->bytes, e->cid_len);
}

static uint64_t entry_charge(entry *e)
{
	return (uint64_t)malloc_usable_size(e) + CHUNK_HEAD;
}

/* What an allocation of n bytes will cost, from above, before making it:
 * a heap chunk is n plus its head rounded to 16 bytes (32 at least), an
 * mmapped one that plus 8 more rounded to the page. 0 when n is absurd. */
static uint64_t charge_estimate(size_t n)
{
	uint64_t heap, mapped;

	if (n > SIZE_MAX / 2)
		return 0;
	heap = ((uint64_t)n + CHUNK_HEAD + 15) & ~(uint64_t)15;
	if (heap < 32)
		heap = 32;
	if (n < MMAP_MAYBE)
		return heap;
	mapped = (heap + CHUNK_HEAD + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	return mapped > heap ? mapped : heap;
}

static char *cid_str(char *out, const cairn_cid *cid)
{
	if (cairn_cid_to_string(out, cid) < 0)
		strcpy(out, "(unprintable CID)");
	return out;
}

static char *entry_str(char *out, const entry *e)
{
	cairn_cid cid;

	if (entry_cid(&cid, e))
		return strcpy(out, "(unparsable CID)");
	return cid_str(out, &cid);
}

/* ------------------------------------------------------------------ table */

static entry *lookup(const mem_store *ms, const cairn_cid *cid)
{
	uint32_t h;

	if (!ms->cap)
		return NULL;
	h = cid_hash(cid);
	for (entry *e = ms->table[h & (ms->cap - 1)]; e; e = e->hnext)
		if (e->hash == h && e->cid_len == cid->len && !memcmp(e->bytes, cid->bytes, cid->len))
			return e;
	return NULL;
}

/* Moves the entries into a table of `cap` slots. A failed allocation keeps
 * the old table: chains grow longer, nothing breaks, so a put never fails
 * for the table's sake. */
static void table_resize(mem_store *ms, size_t cap)
{
	entry **t = cairn_calloc(cap, sizeof(*t));

	if (!t) {
		cairn_error_clear();
		return;
	}
	for (size_t i = 0; i < ms->cap; i++) {
		for (entry *e = ms->table[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = t[e->hash & (cap - 1)];
			t[e->hash & (cap - 1)] = e;
		}
	}
	cairn_free(ms->table);
	ms->st.held_bytes -= (uint64_t)ms->cap * sizeof(*t);
	ms->st.held_bytes += (uint64_t)cap * sizeof(*t);
	ms->table = t;
	ms->cap = cap;
}

/* What inserting one more entry will add to the table. */
static uint64_t table_growth(const mem_store *ms)
{
	if (!ms->cap)
		return TABLE_MIN * sizeof(entry *);
	return ms->count + 1 > ms->cap ? ms->cap * sizeof(entry *) : 0;
}

/* After evictions: an empty store holds nothing, a sparse table halves
 * until it is at least a quarter full. */
static void table_shrink(mem_store *ms)
{
	size_t cap = ms->cap;

	if (!ms->count) {
		cairn_free(ms->table);
		ms->st.held_bytes -= (uint64_t)ms->cap * sizeof(entry *);
		ms->table = NULL;
		ms->cap = 0;
		return;
	}
	while (cap > TABLE_MIN && ms->count < cap / 8)
		cap /= 2;
	if (cap != ms->cap)
		table_resize(ms, cap);
}

/* The table exists (put made it). */
static void insert(mem_store *ms, entry *e)
{
	if (ms->count + 1 > ms->cap)
		table_resize(ms, ms->cap * 2);
	e->hnext = ms->table[e->hash & (ms->cap - 1)];
	ms->table[e->hash & (ms->cap - 1)] = e;
	e->older = ms->newest;
	e->newer = NULL;
	if (ms->newest)
		ms->newest->newer = e;
	else
		ms->oldest = e;
	ms->newest = e;
	ms->count++;
	ms->st.held_blocks++;
	ms->st.held_bytes += entry_charge(e);
}

/* Unlinks and frees one entry; the caller shrinks the table after a run. */
static void evict(mem_store *ms, entry *e)
{
	entry **p = &ms->table[e->hash & (ms->cap - 1)];

	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		ms->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		ms->newest = e->older;
	ms->count--;
	ms->st.held_blocks--;
	ms->st.held_bytes -= entry_charge(e);
	ms->st.evicted_blocks++;
	ms->st.evicted_bytes += e->len;
	cairn_free(e);
}

/* ----------------------------------------------------------------- writes */

static int batch_add(mem_store *ms, size_t i, entry *e)
{
	int rc = entry_cid(&ms->batch[i].cid, e);

	if (rc)
		return rc;
	ms->batch[i].data = entry_data(e);
	ms->batch[i].len = e->len;
	ms->batch_entries[i] = e;
	return 0;
}

/* Writes the batch, then evicts its entries. */
static int batch_write(mem_store *ms, size_t n)
{
	int rc;

	if (!n)
		return 0;
	if ((rc = cairn_store_put_many(ms->backing, ms->batch, n)))
		return cairn_error_prefix("memory store: writing %zu blocks to the %s store: ", n,
					  cairn_store_name(ms->backing));
	for (size_t i = 0; i < n; i++) {
		ms->st.flushed_blocks++;
		ms->st.flushed_bytes += ms->batch_entries[i]->len;
		evict(ms, ms->batch_entries[i]);
	}
	return 0;
}

/* Writes the oldest blocks and evicts them until held_bytes <= target. */
static int evict_to(mem_store *ms, uint64_t target)
{
	int rc = 0;

	while (ms->st.held_bytes > target && ms->oldest) {
		uint64_t drop = 0, bytes = 0;
		size_t n = 0;

		for (entry *e = ms->oldest; e && n < BATCH && bytes < BATCH_BYTES; e = e->newer) {
			if ((rc = batch_add(ms, n++, e)))
				goto out;
			bytes += e->len;
			drop += entry_charge(e);
			if (ms->st.held_bytes - drop <= target)
				break;
		}
		if ((rc = batch_write(ms, n)))
			goto out;
	}
out:
	table_shrink(ms);
	return rc;
}

/* ------------------------------------------------------------ flush(root) */

typedef struct walk {
	mem_store *ms;
	entry *stack;        /* through entry.work */
	entry *parent;       /* whose links are being read (NULL: the seed) */
	const cairn_cid *seed_cid;
	size_t reached;      /* entries marked */
	bool check;          /* a link that is nowhere is an error */
	bool fn_failed;      /* the error is reach's own, not the decoder's */
} walk;

static int scan(walk *w, entry *e, uint64_t codec, const uint8_t *data, size_t len,
		cairn_link_fn fn)
{
	int rc;

	w->parent = e;
	if (e) {
		unsigned kind = (e->flags & F_KIND_MASK) >> F_KIND_SHIFT;

		if (kind == KIND_NONE)
			return 0;
		codec = kind_codec[kind];
		data = entry_data(e);
		len = e->len;
	}
	if (codec_kind(codec) == KIND_NONE)
		return 0;
	w->fn_failed = false;
	if ((rc = cairn_block_links(codec, data, len, fn, w)) && !w->fn_failed && rc != CAIRN_ENOMEM) {
		char str[CAIRN_CID_MAX_STRING];

		return cairn_error_prefix("memory store: links of %s: ",
					  e ? entry_str(str, e) : cid_str(str, w->seed_cid));
	}
	return rc;
}

/* Links whose target is no block anyone stores. */
static bool not_a_block(const cairn_cid *cid)
{
	return cid->mh_code == CAIRN_MH_IDENTITY ||
	       cid->codec == CAIRN_CODEC_FIL_COMMITMENT_UNSEALED ||
	       cid->codec == CAIRN_CODEC_FIL_COMMITMENT_SEALED;
}

/* Pass 1: mark what is held below, count parents, check the rest is there. */
static int reach(const cairn_cid *cid, void *payload)
{
	walk *w = payload;
	char a[CAIRN_CID_MAX_STRING], b[CAIRN_CID_MAX_STRING];
	entry *e;
	int rc;

	if (not_a_block(cid))
		return 0;
	if ((e = lookup(w->ms, cid))) {
		e->indeg++;
		if (!(e->flags & F_MARK)) {
			e->flags |= F_MARK;
			e->work = w->stack;
			w->stack = e;
			w->reached++;
		}
		return 0;
	}
	if (!w->check)
		return 0;
	if ((rc = cairn_store_has(w->ms->backing, cid)) == 1)
		return 0;
	w->fn_failed = true;
	if (rc < 0)
		return cairn_error_prefix("memory store: looking for %s in the %s store: ",
					  cid_str(a, cid), cairn_store_name(w->ms->backing));
	return cairn_error_set(CAIRN_ENOTFOUND,
			       "memory store: block %s, linked from %s, is neither in memory nor in "
			       "the %s store", cid_str(a, cid),
			       w->parent ? entry_str(b, w->parent) : cid_str(b, w->seed_cid),
			       cairn_store_name(w->ms->backing));
}

/* Pass 2: a block is taken once all its parents are. */
static int release(const cairn_cid *cid, void *payload)
{
	walk *w = payload;
	entry *e;

	if (cid->mh_code == CAIRN_MH_IDENTITY || !(e = lookup(w->ms, cid)))
		return 0;
	if (--e->indeg == 0) {
		e->work = w->stack;
		w->stack = e;
	}
	return 0;
}

/* After a failed flush(root): forget the marks, wherever it stopped. */
static void unmark_all(mem_store *ms)
{
	for (entry *e = ms->oldest; e; e = e->newer) {
		e->flags &= (uint8_t)~F_MARK;
		e->indeg = 0;
		e->work = NULL;
	}
}

/* Writes the held blocks below `root` (held), or below the links of a
 * block that is not held (seed: its CID and bytes), children first, and
 * evicts them as they are written. */
static int flush_below(mem_store *ms, entry *root, const cairn_cid *seed_cid, const uint8_t *data,
		       size_t len, bool check)
{
	walk w = {ms, NULL, NULL, seed_cid, 0, check, false};
	entry *order = NULL, *e;
	size_t taken = 0, n = 0;
	int rc = 0;

	if (root) {
		root->flags |= F_MARK;
		root->work = NULL;
		w.stack = root;
		w.reached = 1;
	} else if ((rc = scan(&w, NULL, seed_cid->codec, data, len, reach))) {
		goto fail;
	}
	while (w.stack) {
		e = w.stack;
		w.stack = e->work;
		e->work = NULL;
		if ((rc = scan(&w, e, 0, NULL, 0, reach)))
			goto fail;
	}

	if (root) {
		if (!root->indeg) {
			w.stack = root;
			root->work = NULL;
		}
	} else if ((rc = scan(&w, NULL, seed_cid->codec, data, len, release))) {
		goto fail;
	}
	while (w.stack) {
		e = w.stack;
		w.stack = e->work;
		e->work = order;
		order = e;
		taken++;
		if ((rc = scan(&w, e, 0, NULL, 0, release)))
			goto fail;
	}
	if (taken != w.reached) {
		/* Only bytes put under a CID they do not hash to can link in a
		 * circle; stores do not hash what is put. */
		char str[CAIRN_CID_MAX_STRING];

		rc = cairn_error_set(CAIRN_ECORRUPT,
				     "memory store: the blocks held below %s link in a circle (bytes "
				     "put under a CID they do not hash to)",
				     root ? entry_str(str, root) : cid_str(str, seed_cid));
		goto fail;
	}

	/* Children first, so each batch may go as soon as it is written: what
	 * a failure leaves held is closed upward (every parent of a held block
	 * is held), and what it leaves written is closed downward. */
	for (e = order; e;) {
		uint64_t bytes = 0;

		for (n = 0; e && n < BATCH && bytes < BATCH_BYTES; e = e->work) {
			if ((rc = batch_add(ms, n++, e)))
				goto fail;
			bytes += e->len;
		}
		if ((rc = batch_write(ms, n)))
			goto fail;
	}
	table_shrink(ms);
	return 0;
fail:
	unmark_all(ms);
	table_shrink(ms);
	return rc;
}

/* -------------------------------------------------------------------- ops */

static int mem_get(cairn_store *s, cairn_buf *out, const cairn_cid *cid)
{
	mem_store *ms = (mem_store *)s;
	entry *e = lookup(ms, cid);

	if (!e)
		return cairn_store_get(ms->backing, out, cid);
	cairn_buf_clear(out);
	return cairn_buf_append(out, entry_data(e), e->len);
}

static int mem_get_size(cairn_store *s, uint64_t *size_out, const cairn_cid *cid)
{
	mem_store *ms = (mem_store *)s;
	entry *e = lookup(ms, cid);

	if (!e)
		return cairn_store_get_size(ms->backing, size_out, cid);
	*size_out = e->len;
	return 0;
}

static int mem_has(cairn_store *s, const cairn_cid *cid)
{
	mem_store *ms = (mem_store *)s;

	return lookup(ms, cid) ? 1 : cairn_store_has(ms->backing, cid);
}

/* A block too big to hold: what it links to that is held goes first, so
 * that the backing store never has a parent without its children. */
static int write_through(mem_store *ms, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	int rc = 0;

	if (ms->count && codec_kind(cid->codec) != KIND_NONE)
		rc = flush_below(ms, NULL, cid, data, len, false);
	if (!rc && (rc = cairn_store_put(ms->backing, cid, data, len))) {
		char str[CAIRN_CID_MAX_STRING];

		return cairn_error_prefix("memory store: writing %s (%zu bytes, over the budget) to "
					  "the %s store: ", cid_str(str, cid), len,
					  cairn_store_name(ms->backing));
	}
	if (rc)
		return rc;
	ms->st.put_blocks++;
	ms->st.put_bytes += len;
	ms->st.flushed_blocks++;
	ms->st.flushed_bytes += len;
	return 0;
}

static int mem_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	mem_store *ms = (mem_store *)s;
	size_t size = sizeof(entry) + cid->len + len;
	uint64_t cost, need;
	entry *e;
	int rc;

	if (lookup(ms, cid))
		return 0;
	cost = charge_estimate(size);
	/* Over the budget even in an empty store, whose table is the least. */
	if (len > UINT32_MAX || !cost || cost + TABLE_MIN * sizeof(entry *) > ms->budget)
		return write_through(ms, cid, data, len);
	need = cost + table_growth(ms);
	if (ms->st.held_bytes + need > ms->budget) {
		uint64_t target = need > ms->budget ? 0 : ms->budget - need;

		ms->st.auto_flushes++;
		if ((rc = evict_to(ms, target < ms->low_water ? target : ms->low_water)))
			return rc;
	}
	if (!ms->cap) {
		table_resize(ms, TABLE_MIN);
		if (!ms->cap)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	if (!(e = cairn_malloc(size))) {
		table_shrink(ms);
		return CAIRN_ENOMEM;
	}
	memset(e, 0, sizeof(*e));
	e->hash = cid_hash(cid);
	e->len = (uint32_t)len;
	e->cid_len = (uint8_t)cid->len;
	e->flags = (uint8_t)(codec_kind(cid->codec) << F_KIND_SHIFT);
	memcpy(e->bytes, cid->bytes, cid->len);
	if (len)
		memcpy(e->bytes + cid->len, data, len);
	insert(ms, e);
	ms->st.put_blocks++;
	ms->st.put_bytes += len;
	/* An allocator that costs more than the estimate (not glibc's): the
	 * budget still holds, at one more write. */
	if (ms->st.held_bytes > ms->budget) {
		ms->st.auto_flushes++;
		return evict_to(ms, ms->budget);
	}
	return 0;
}

static int mem_put_many(cairn_store *s, const cairn_block *blocks, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++)
		if ((rc = cairn_store_put(s, &blocks[i].cid, blocks[i].data, blocks[i].len)))
			return rc;
	return 0;
}

static int mem_del(cairn_store *s, const cairn_cid *cid)
{
	mem_store *ms = (mem_store *)s;
	entry *e = lookup(ms, cid);

	if (!e) {
		char str[CAIRN_CID_MAX_STRING];

		return cairn_error_set(CAIRN_ENOTFOUND,
				       "memory store: %s is not held in memory (del does not reach "
				       "the backing store)", cid_str(str, cid));
	}
	evict(ms, e);
	table_shrink(ms);
	return 0;
}

static int mem_iterate(cairn_store *s, cairn_store_iter_fn fn, void *payload)
{
	mem_store *ms = (mem_store *)s;
	int rc;

	/* `next` is read first so that fn may del the block it is given; it
	 * must not put or flush (that may evict any block). */
	for (entry *e = ms->oldest, *next; e; e = next) {
		cairn_cid cid;

		next = e->newer;
		if ((rc = entry_cid(&cid, e)) || (rc = fn(&cid, payload)))
			return rc;
	}
	return 0;
}

static int mem_flush(cairn_store *s, const cairn_cid *root)
{
	mem_store *ms = (mem_store *)s;
	char str[CAIRN_CID_MAX_STRING];
	entry *e;
	int rc;

	if (!root) {
		if ((rc = evict_to(ms, 0)))
			return rc;
		return cairn_store_flush(ms->backing, NULL);
	}
	if (root->mh_code == CAIRN_MH_IDENTITY) {
		/* The block is the digest: only what it links to is stored. */
		rc = flush_below(ms, NULL, root, root->bytes + root->digest_off, root->digest_len,
				 true);
	} else if ((e = lookup(ms, root))) {
		rc = flush_below(ms, e, NULL, NULL, 0, true);
	} else if ((rc = cairn_store_has(ms->backing, root)) == 0) {
		return cairn_error_set(CAIRN_ENOTFOUND,
				       "memory store: flush: root %s is neither in memory nor in the "
				       "%s store", cid_str(str, root), cairn_store_name(ms->backing));
	} else if (rc == 1) {
		rc = 0;
	}
	if (rc < 0)
		return rc;
	return cairn_store_flush(ms->backing, root);
}

static void mem_free(cairn_store *s)
{
	mem_store *ms = (mem_store *)s;
	uint64_t blocks = 0, bytes = 0;

	for (entry *e = ms->oldest, *next; e; e = next) {
		next = e->newer;
		blocks++;
		bytes += e->len;
		cairn_free(e);
	}
	if (blocks)
		cairn_log(CAIRN_LOG_DEBUG,
			  "memory store: freed with %llu blocks (%llu bytes) never written: dropped",
			  (unsigned long long)blocks, (unsigned long long)bytes);
	cairn_free(ms->table);
	cairn_free(ms->batch);
	cairn_free(ms->batch_entries);
	cairn_free(ms);
}

static const cairn_store_ops mem_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "memory",
	.get = mem_get,
	.get_size = mem_get_size,
	.has = mem_has,
	.put = mem_put,
	.put_many = mem_put_many,
	.del = mem_del,
	.iterate = mem_iterate,
	.flush = mem_flush,
	.free = mem_free,
};

int cairn_store_mem_open(cairn_store **out, cairn_store *backing, uint64_t budget)
{
	mem_store *ms;

	*out = NULL;
	if (!backing)
		return cairn_error_set(CAIRN_EINVAL, "memory store: a backing store is required");
	if (!(ms = cairn_calloc(1, sizeof(*ms))))
		return CAIRN_ENOMEM;
	ms->base.ops = &mem_ops;
	ms->backing = backing;
	ms->budget = budget;
	ms->low_water = budget / 100 * LOW_WATER_PCT + budget % 100 * LOW_WATER_PCT / 100;
	if (!(ms->batch = cairn_malloc(BATCH * sizeof(*ms->batch))) ||
	    !(ms->batch_entries = cairn_malloc(BATCH * sizeof(*ms->batch_entries)))) {
		cairn_free(ms->batch);
		cairn_free(ms);
		return CAIRN_ENOMEM;
	}
	*out = &ms->base;
	return 0;
}

void cairn_store_mem_stats_get(cairn_store_mem_stats *out, cairn_store *s)
{
	if (s && s->ops == &mem_ops)
		*out = ((mem_store *)s)->st;
	else
		memset(out, 0, sizeof(*out));
}
