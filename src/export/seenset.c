/* seenset.c: the export's exact concurrent CID set: sharded hash tables in
 * memory, spilling sorted runs to an unlinked temporary file past a budget.
 *
 * Design.
 * - 64 shards, chosen by the top bits of the CID's hash, each with its own
 *   lock, an open-addressing table, and the runs it has spilled. The table
 *   is two arrays: the 64-bit hashes (0 marks a free slot), probed
 *   linearly, eight to a cache line, and beside them 40-byte keys (the
 *   length and up to 39 bytes of CID: every sha2-256 and blake2b-256 CID
 *   fits), touched only when a hash matches. A table of a million CIDs is
 *   far larger than the caches, so this is what a lookup costs: one miss
 *   in the hashes, not one per probe. A CID longer than a slot (a sha2-512 digest)
 *   goes to a small exact cairn_cid_set beside the table, which never
 *   spills: such CIDs are rare, and their bytes are counted.
 * - Check-and-add takes the shard's lock and keeps it through the table,
 *   every run's filter and any disk lookups, and the insert: two threads
 *   adding one CID are serialized on one lock, so exactly one sees it new.
 *   That is the property the export's "each block once" rests on. Before
 *   the lock, the table is read without it (seen_unlocked): in a DAG of
 *   shared structure most links lead to blocks already seen, and a "yes"
 *   found there needs no lock; the lock's line moving between cores for
 *   every lookup was a fifth of the export's time. Writers store the key,
 *   then publish the hash (release); a grown table's predecessor is kept,
 *   its pages given back, until the set is freed.
 * - A table grows fourfold up to its share of 3/4 of the budget (the
 *   rest is for the runs' filters and sparse indexes). When it is full to
 *   3/4 the shard spills: the slots are compacted, sorted by (hash, length,
 *   bytes) and written as one run at the end of the shared file, with a
 *   Bloom filter (10 to 20 bits per CID, 7 probes: under 1% false
 *   positives) and the hash of every 64th slot kept in memory; then the
 *   table is emptied. Runs are never changed after they are written.
 * - A lookup that misses the table asks each run's filter. A "no" is
 *   certain (Bloom filters have no false negatives), so a new CID almost
 *   never touches the disk; a "maybe" is settled exactly: the sparse index
 *   names the 64-slot block where the hash would be, and one pread of 3 KiB
 *   (two if equal hashes straddle blocks) finds it or not.
 * - A CID found on disk is kept in a cache of the shard, asked before the
 *   filters: a DAG's shared nodes are asked for again and again. At its
 *   first spill a shard's table gives half its memory to that cache
 *   (make_cache), so the budget holds.
 * - The file is read with pread, not mapped, so its pages stay in the page
 *   cache and out of the process's RSS, which is what the budget bounds.
 * - A failed spill (no memory, a failed write) leaves the table as it was
 *   and fails that add; the set stays exact.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cairn/export.h"

#define SHARD_BITS 6
#define NSHARDS (1u << SHARD_BITS)
#define KEY_MAX 39
#define SPARSE 64    /* slots per sparse-index entry: one 3 KiB read */
#define PROBES 7
#define MIN_CAP 16

#define KEY_WORDS 5

/* A CID as the table keeps it: its length, its bytes, zeros to the end,
 * in words (read and written whole, so a lookup without the lock reads
 * each word as it was or as it is, never torn). */
typedef struct key {
	uint64_t w[KEY_WORDS];
} key;

/* A run's record on disk. */
typedef struct slot {
	uint64_t h;
	key k;
} slot;

/* A shard's table. Replaced whole when it grows: a lookup without the lock
 * may still be reading the one it replaced, so that one's memory is given
 * back to the system (madvise, its pages then read as zeros: not found)
 * but stays allocated until the set is freed. */
typedef struct table {
	size_t cap;
	uint64_t *hashes;    /* 0: free; stored after the key, with release */
	key *keys;
	struct table *retired;
} table;

typedef struct run {
	uint64_t off;     /* byte offset of the first slot in the file */
	uint64_t n;       /* slots */
	uint64_t *sparse; /* hash of slot i * SPARSE */
	uint64_t *bloom;
	uint64_t bloom_mask; /* bits - 1; bits a power of two */
} run;

/* Every lookup reads the table pointer (without the lock) and an add
 * writes the lock's line; were they on one line, each lock taken on one
 * core would cost the other core's next lookup a miss before it could even
 * ask for its slot. So the fields written only when the table is replaced
 * come first, and 64 bytes of padding keep them off the lock's line, and
 * the lock off the next shard's. */
typedef struct shard {
	table *table;        /* NULL until the first add */
	run *runs;
	size_t nruns;
	char pad0[64];
	pthread_mutex_t lock;
	size_t len;
	size_t max_cap;      /* the set's, halved at the first spill */
	slot *found;         /* CIDs found on disk lately; NULL until a spill */
	size_t found_mask;
	cairn_cid_set big;   /* CIDs longer than KEY_MAX */
	uint64_t spilled;
	uint64_t disk_checks;
	char pad1[64];
} shard;

struct cairn_seenset {
	shard shards[NSHARDS];
	size_t max_cap;      /* slots a table may grow to */
	char *dir;
	pthread_mutex_t file_lock;
	int fd;              /* -1 until the first spill */
	_Atomic uint64_t file_end;
	_Atomic uint64_t memory;
};

static uint64_t mix(uint64_t h)
{
	h ^= h >> 31;
	h *= 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	return h;
}

/* By hash, then by the key's bytes (length first): an order, which is all
 * a run needs. */
static int cmp_slot(const void *a, const void *b)
{
	const slot *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return memcmp(&x->k, &y->k, sizeof(key));
}

static void key_pack(key *k, const cairn_cid *cid)
{
	uint8_t b[sizeof(key)] = {0};

	b[0] = (uint8_t)cid->len;
	memcpy(b + 1, cid->bytes, cid->len);
	memcpy(k, b, sizeof(key));
}

static bool key_equal(const key *a, const key *b)
{
	uint64_t d = 0;

	for (unsigned i = 0; i < KEY_WORDS; i++)
		d |= __atomic_load_n(&a->w[i], __ATOMIC_RELAXED) ^ b->w[i];
	return !d;
}

static void key_store(key *dst, const key *src)
{
	for (unsigned i = 0; i < KEY_WORDS; i++)
		__atomic_store_n(&dst->w[i], src->w[i], __ATOMIC_RELAXED);
}

static void table_free(table *t)
{
	while (t) {
		table *next = t->retired;

		cairn_free(t->hashes);
		cairn_free(t->keys);
		cairn_free(t);
		t = next;
	}
}

int cairn_seenset_new(cairn_seenset **out, uint64_t memory, const char *dir)
{
	cairn_seenset *set;
	uint64_t per;
	const char *tmp = getenv("TMPDIR");

	*out = NULL;
	if (!memory)
		memory = 256ull << 20;
	if (!dir)
		dir = tmp && *tmp ? tmp : "/tmp";
	if (!(set = cairn_calloc(1, sizeof(*set))))
		return CAIRN_ENOMEM;
	if (!(set->dir = cairn_strndup(dir, strlen(dir)))) {
		cairn_free(set);
		return CAIRN_ENOMEM;
	}
	per = memory / 4 * 3 / NSHARDS / (sizeof(uint64_t) + sizeof(key));
	set->max_cap = MIN_CAP;
	while ((uint64_t)set->max_cap * 2 <= per)
		set->max_cap *= 2;
	for (unsigned i = 0; i < NSHARDS; i++)
		set->shards[i].max_cap = set->max_cap;
	set->fd = -1;
	pthread_mutex_init(&set->file_lock, NULL);
	for (unsigned i = 0; i < NSHARDS; i++)
		pthread_mutex_init(&set->shards[i].lock, NULL);
	*out = set;
	return 0;
}

void cairn_seenset_free(cairn_seenset *set)
{
	if (!set)
		return;
	for (unsigned i = 0; i < NSHARDS; i++) {
		shard *sh = &set->shards[i];

		for (size_t r = 0; r < sh->nruns; r++) {
			cairn_free(sh->runs[r].sparse);
			cairn_free(sh->runs[r].bloom);
		}
		cairn_free(sh->runs);
		cairn_free(sh->found);
		table_free(sh->table);
		cairn_cid_set_free(&sh->big);
		pthread_mutex_destroy(&sh->lock);
	}
	if (set->fd >= 0)
		close(set->fd);
	pthread_mutex_destroy(&set->file_lock);
	cairn_free(set->dir);
	cairn_free(set);
}

/* The file is made at the first spill and unlinked at once, so nothing is
 * left behind by a crash, a kill or a cancelled export. */
static int open_file(cairn_seenset *set)
{
	char path[4096];
	int rc = 0;

	pthread_mutex_lock(&set->file_lock);
	if (set->fd < 0) {
		if ((size_t)snprintf(path, sizeof(path), "%s/cairn-seen-XXXXXX", set->dir) >=
		    sizeof(path)) {
			rc = cairn_error_set(CAIRN_EINVAL, "seen-set: directory name too long");
		} else if ((set->fd = mkstemp(path)) < 0) {
			rc = cairn_error_set(CAIRN_EIO, "seen-set: cannot create a file in %s: %s",
					     set->dir, strerror(errno));
		} else {
			unlink(path);
		}
	}
	pthread_mutex_unlock(&set->file_lock);
	return rc;
}

static void bloom_set(run *r, uint64_t h)
{
	uint64_t a = mix(h), b = (h >> 32) | 1;

	for (unsigned i = 0; i < PROBES; i++, a += b)
		r->bloom[(a & r->bloom_mask) >> 6] |= 1ull << (a & 63);
}

static bool bloom_maybe(const run *r, uint64_t h)
{
	uint64_t a = mix(h), b = (h >> 32) | 1;

	for (unsigned i = 0; i < PROBES; i++, a += b)
		if (!(r->bloom[(a & r->bloom_mask) >> 6] & (1ull << (a & 63))))
			return false;
	return true;
}

static void make_cache(cairn_seenset *set, shard *sh);

/* Sorts the table into a run on disk; called with the shard locked. */
static int spill(cairn_seenset *set, shard *sh)
{
	table *t = sh->table;
	run r = {0};
	uint64_t bits = 64, bytes;
	size_t n = 0, i;
	slot *v;
	int rc;

	if ((rc = open_file(set)))
		return rc;
	/* The records are built beside the table (1/64 of the budget, for
	 * the time of the spill), so a failure leaves the table as it was. */
	if (!(v = cairn_malloc(sh->len * sizeof(slot))))
		return CAIRN_ENOMEM;
	for (i = 0; i < t->cap; i++) {
		if (!t->hashes[i])
			continue;
		v[n].h = t->hashes[i];
		v[n].k = t->keys[i];
		n++;
	}
	if (n > 1)
		qsort(v, n, sizeof(slot), cmp_slot);
	while (bits < (uint64_t)n * 10)
		bits *= 2;
	r.n = n;
	r.bloom_mask = bits - 1;
	r.bloom = cairn_calloc(bits / 64, sizeof(uint64_t));
	r.sparse = cairn_malloc(((n + SPARSE - 1) / SPARSE) * sizeof(uint64_t));
	if (!r.bloom || !r.sparse) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	bytes = (uint64_t)n * sizeof(slot);
	r.off = atomic_fetch_add(&set->file_end, bytes);
	if ((rc = cairn_file_pwrite_full(set->fd, v, (size_t)bytes, r.off, "seen-set spill")))
		goto fail;
	for (i = 0; i < n; i++) {
		bloom_set(&r, v[i].h);
		if (i % SPARSE == 0)
			r.sparse[i / SPARSE] = v[i].h;
	}
	{
		run *runs = cairn_realloc(sh->runs, (sh->nruns + 1) * sizeof(run));

		if (!runs) {
			rc = CAIRN_ENOMEM;
			goto fail;
		}
		sh->runs = runs;
	}
	sh->runs[sh->nruns++] = r;
	sh->spilled += n;
	/* Emptied a word at a time: lookups without the lock read it now.
	 * One that still finds a CID spilled here finds it rightly seen. */
	for (i = 0; i < t->cap; i++)
		__atomic_store_n(&t->hashes[i], 0, __ATOMIC_RELAXED);
	sh->len = 0;
	cairn_free(v);
	if (!sh->found)
		make_cache(set, sh);
	atomic_fetch_add(&set->memory, bits / 8 + ((n + SPARSE - 1) / SPARSE) * sizeof(uint64_t));
	return 0;
fail:
	/* The space taken in the file is lost; the table is intact. */
	cairn_free(v);
	cairn_free(r.bloom);
	cairn_free(r.sparse);
	return rc;
}

/* 1 if the run holds the CID, 0 if not: the block of the sparse index where
 * the hash would start, read on while hashes are not past it. */
static int run_find(cairn_seenset *set, shard *sh, const run *r, uint64_t h, const key *k)
{
	slot buf[SPARSE];
	size_t nblocks = (size_t)((r->n + SPARSE - 1) / SPARSE), lo = 0, hi = nblocks, b;
	int rc;

	sh->disk_checks++;
	/* The last block whose first hash is below h; equal hashes may begin
	 * at the end of the block before the one that starts with h. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->sparse[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	b = lo ? lo - 1 : 0;
	for (; b < nblocks; b++) {
		size_t first = b * SPARSE;
		size_t cnt = (size_t)(r->n - first < SPARSE ? r->n - first : SPARSE);

		if (r->sparse[b] > h)
			return 0;
		if ((rc = cairn_file_pread_full(set->fd, buf, cnt * sizeof(slot),
						r->off + first * sizeof(slot), "seen-set run")))
			return rc;
		for (size_t i = 0; i < cnt; i++) {
			if (buf[i].h > h)
				return 0;
			if (buf[i].h == h && !memcmp(&buf[i].k, k, sizeof(key)))
				return 1;
		}
	}
	return 0;
}

/* madvise over the whole pages inside p[0..n); only advice, so a failure
 * is harmless. */
static void advise_pages(void *p, size_t n, int advice)
{
	uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
	uintptr_t end = ((uintptr_t)p + n) & ~(uintptr_t)4095;

	if (end > start)
		madvise((void *)start, end - start, advice);
}

/* Lookups land anywhere in tables of many megabytes: with 4 KiB pages
 * nearly each one is a TLB miss as well as a cache miss. Transparent huge
 * pages (asked for, as most systems give them only on request) halve that.
 * calloc's large blocks are fresh mappings not yet touched, so the advice
 * holds from the first fault; it is only advice, and failure is harmless. */
static void want_huge(void *p, size_t n)
{
	if (n >= (4u << 20))
		advise_pages(p, n, MADV_HUGEPAGE);
}

/* Gives back the whole pages inside p[0..n): a lookup reading them later
 * reads zeros. */
static void release_pages(void *p, size_t n)
{
	advise_pages(p, n, MADV_DONTNEED);
}

/* Puts a table of `cap` slots in place of the shard's, with its CIDs. */
static int replace_table(cairn_seenset *set, shard *sh, size_t cap)
{
	table *old = sh->table, *t = cairn_calloc(1, sizeof(*t));
	size_t old_cap = old ? old->cap : 0;

	if (!t || !(t->hashes = cairn_calloc(cap, sizeof(uint64_t))) ||
	    !(t->keys = cairn_malloc(cap * sizeof(key)))) {
		table_free(t);
		return CAIRN_ENOMEM;
	}
	t->cap = cap;
	want_huge(t->hashes, cap * sizeof(uint64_t));
	want_huge(t->keys, cap * sizeof(key));
	for (size_t i = 0; i < old_cap; i++) {
		size_t j;

		if (!old->hashes[i])
			continue;
		for (j = old->hashes[i] & (cap - 1); t->hashes[j]; j = (j + 1) & (cap - 1))
			;
		t->hashes[j] = old->hashes[i];
		t->keys[j] = old->keys[i];
	}
	if (cap > old_cap)
		atomic_fetch_add(&set->memory, (cap - old_cap) * (sizeof(uint64_t) + sizeof(key)));
	else
		atomic_fetch_sub(&set->memory, (old_cap - cap) * (sizeof(uint64_t) + sizeof(key)));
	__atomic_store_n(&sh->table, t, __ATOMIC_RELEASE);
	if (old) {
		release_pages(old->hashes, old_cap * sizeof(uint64_t));
		release_pages(old->keys, old_cap * sizeof(key));
		t->retired = old;
	}
	return 0;
}

/* By four times, not two: every table is fresh memory the kernel clears
 * and every CID in it is copied into the next, and with doubling that was
 * a sixth of an export's time (10M blocks in 1 GiB: 14.0 s, 12.35 s by
 * four, 11.3 s with the tables made full-size at once). A table is then
 * 3/16 to 3/4 full instead of 3/8 to 3/4, within the same budget. */
static int grow(cairn_seenset *set, shard *sh)
{
	size_t cap = sh->table ? sh->table->cap * 4 : MIN_CAP;

	return replace_table(set, sh, cap < sh->max_cap ? cap : sh->max_cap);
}

/* At a shard's first spill its table, now empty, gives half its memory to
 * the cache of CIDs found on disk: past that point a DAG's shared nodes
 * are mostly on disk, and each one asked for again was a disk lookup (on
 * the bench's 10M-block DAG with 128 MiB, a cache of a quarter of the
 * budget took them from 8.5 M to 3.0 M), while a smaller table only
 * spills more often. Without the memory it stays as it was. */
static void make_cache(cairn_seenset *set, shard *sh)
{
	size_t half = sh->table->cap / 2;
	slot *found;

	if (half < MIN_CAP || !(found = cairn_calloc(half, sizeof(slot)))) {
		cairn_error_clear();
		return;
	}
	if (replace_table(set, sh, half)) {
		cairn_error_clear();
		cairn_free(found);
		return;
	}
	sh->found = found;
	sh->found_mask = half - 1;
	sh->max_cap = half;
	atomic_fetch_add(&set->memory, half * sizeof(slot));
}

static uint64_t key_hash(const cairn_cid *cid)
{
	return cairn_cid_hash(cid) | 1; /* never 0, the free mark */
}

/* A DAG's shared nodes are asked for again and again, and once spilled
 * each ask was a disk lookup: a CID found on disk goes into a small cache
 * of the shard (one slot per hash, the last one found wins), which is
 * asked first. Under the shard's lock. */
static bool found_has(const shard *sh, uint64_t h, const key *k)
{
	const slot *f;

	if (!sh->found)
		return false;
	f = &sh->found[h & sh->found_mask];
	return f->h == h && !memcmp(&f->k, k, sizeof(key));
}

static void found_put(shard *sh, uint64_t h, const key *k)
{
	slot *f;

	if (!sh->found)
		return;
	f = &sh->found[h & sh->found_mask];
	f->h = h;
	f->k = *k;
}

/* The common case without the lock: most links lead to blocks already
 * seen, and their CIDs are in the table. Only a "yes" is taken from here:
 * the table may be one just replaced (its pages given back read as zeros)
 * or being emptied by a spill, so a "no" is settled under the lock. A
 * "yes" is right because a CID once in the set is never taken out (a spill
 * only moves it to a run); the key is read a word at a time, each as it
 * was or as it is, and the hash checked again after it. */
static bool seen_unlocked(shard *sh, uint64_t h, const key *k)
{
	const table *t = __atomic_load_n(&sh->table, __ATOMIC_ACQUIRE);
	size_t i;
	uint64_t v;

	if (!t)
		return false;
	for (i = h & (t->cap - 1); (v = __atomic_load_n(&t->hashes[i], __ATOMIC_ACQUIRE));
	     i = (i + 1) & (t->cap - 1)) {
		if (v == h && key_equal(&t->keys[i], k) &&
		    __atomic_load_n(&t->hashes[i], __ATOMIC_ACQUIRE) == h)
			return true;
	}
	return false;
}

/* Asks for the lines a lookup of hash `h` will read first: the slot's
 * hash and its key (a prefetch never faults, whatever the table is by
 * then). */
static void prefetch(cairn_seenset *set, uint64_t h)
{
	shard *sh = &set->shards[h >> (64 - SHARD_BITS)];
	const table *t = __atomic_load_n(&sh->table, __ATOMIC_ACQUIRE);
	size_t i;

	if (!t)
		return;
	i = h & (t->cap - 1);
	__builtin_prefetch(&t->hashes[i]);
	__builtin_prefetch(&t->keys[i]);
	__builtin_prefetch((const char *)&t->keys[i] + sizeof(key) - 1);
}

/* The one path for has and add, under the shard's lock: 1 if the CID (of
 * hash `h`) was there, 0 if not (and, with `add`, it is now), or a
 * negative code. */
static int lookup(cairn_seenset *set, const cairn_cid *cid, uint64_t h, bool add)
{
	shard *sh = &set->shards[h >> (64 - SHARD_BITS)];
	table *t;
	size_t i;
	key k;
	int rc = 0;

	if (cid->len <= KEY_MAX) {
		key_pack(&k, cid);
		if (seen_unlocked(sh, h, &k))
			return 1;
	}
	pthread_mutex_lock(&sh->lock);
	if (cid->len > KEY_MAX) {
		bool added = false;

		if (!add) {
			rc = cairn_cid_set_has(&sh->big, cid);
		} else if (!(rc = cairn_cid_set_add(&sh->big, cid, &added))) {
			rc = !added;
			if (added)
				atomic_fetch_add(&set->memory, sizeof(cairn_cid) * 2);
		}
		goto out;
	}
	/* Again under the lock: another thread may have added it since. */
	if ((t = sh->table)) {
		for (i = h & (t->cap - 1); t->hashes[i]; i = (i + 1) & (t->cap - 1))
			if (t->hashes[i] == h && key_equal(&t->keys[i], &k)) {
				rc = 1;
				goto out;
			}
	}
	if (found_has(sh, h, &k)) {
		rc = 1;
		goto out;
	}
	for (size_t r = 0; r < sh->nruns; r++) {
		if (bloom_maybe(&sh->runs[r], h) && (rc = run_find(set, sh, &sh->runs[r], h, &k))) {
			if (rc == 1)
				found_put(sh, h, &k);
			goto out; /* 1: there; < 0: failed */
		}
	}
	if (!add)
		goto out;
	/* At most 3/4 full, so probes stay short: grow while the budget
	 * allows, else spill and start an empty table. */
	if (!t || (sh->len + 1) * 4 > t->cap * 3) {
		if (!t || t->cap < sh->max_cap)
			rc = grow(set, sh);
		else
			rc = spill(set, sh);
		if (rc)
			goto out;
		t = sh->table;
	}
	for (i = h & (t->cap - 1); t->hashes[i]; i = (i + 1) & (t->cap - 1))
		;
	/* The key first, then the hash that makes it visible. */
	key_store(&t->keys[i], &k);
	__atomic_store_n(&t->hashes[i], h, __ATOMIC_RELEASE);
	sh->len++;
out:
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

int cairn_seenset_add(cairn_seenset *set, const cairn_cid *cid)
{
	int rc = lookup(set, cid, key_hash(cid), true);

	return rc < 0 ? rc : !rc;
}

/* In groups of ADD_GROUP: each group's lines are all asked for, then the
 * lookups run. A table far larger than the caches costs one or two misses
 * per lookup; overlapped, a block's links cost about one miss together. */
#define ADD_GROUP 16

int cairn_seenset_add_many(cairn_seenset *set, const cairn_cid *const *cids, size_t n,
			   uint8_t *new)
{
	uint64_t h[ADD_GROUP];

	for (size_t at = 0; at < n; at += ADD_GROUP) {
		size_t k = n - at < ADD_GROUP ? n - at : ADD_GROUP;

		for (size_t i = 0; i < k; i++) {
			h[i] = key_hash(cids[at + i]);
			prefetch(set, h[i]);
		}
		for (size_t i = 0; i < k; i++) {
			int rc = lookup(set, cids[at + i], h[i], true);

			if (rc < 0)
				return rc;
			new[at + i] = !rc;
		}
	}
	return 0;
}

int cairn_seenset_has(cairn_seenset *set, const cairn_cid *cid)
{
	return lookup(set, cid, key_hash(cid), false);
}

void cairn_seenset_stats_get(cairn_seenset_stats *out, cairn_seenset *set)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < NSHARDS; i++) {
		shard *sh = &set->shards[i];

		pthread_mutex_lock(&sh->lock);
		out->count += sh->len + sh->spilled + sh->big.len;
		out->spilled += sh->spilled;
		out->runs += sh->nruns;
		out->disk_checks += sh->disk_checks;
		pthread_mutex_unlock(&sh->lock);
	}
	out->memory = atomic_load(&set->memory);
}
