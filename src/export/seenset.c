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
 *   That is the property the export's "each block once" rests on.
 * - A table grows by doubling up to its share of 3/4 of the budget (the
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

/* A run's record on disk. */
typedef struct slot {
	uint64_t h;
	uint8_t len;
	uint8_t b[KEY_MAX];
} slot;

typedef struct key {
	uint8_t len;
	uint8_t b[KEY_MAX];
} key;

typedef struct run {
	uint64_t off;     /* byte offset of the first slot in the file */
	uint64_t n;       /* slots */
	uint64_t *sparse; /* hash of slot i * SPARSE */
	uint64_t *bloom;
	uint64_t bloom_mask; /* bits - 1; bits a power of two */
} run;

/* Every lookup reads the table's fields (prefetch reads them without the
 * lock) and writes the lock's line; were they on one line, each lock taken
 * on one core would cost the other core's next lookup a miss before it
 * could even ask for its slot. So the fields written only when the table
 * is replaced come first, and 64 bytes of padding keep them off the lock's
 * line, and the lock off the next shard's. */
typedef struct shard {
	uint64_t *hashes;    /* 0: free */
	key *keys;
	size_t cap;
	run *runs;
	size_t nruns;
	char pad0[64];
	pthread_mutex_t lock;
	size_t len;
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

static int cmp_slot(const void *a, const void *b)
{
	const slot *x = a, *y = b;

	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->b, y->b, x->len);
}

static bool slot_is(const slot *s, uint64_t h, const cairn_cid *cid)
{
	return s->h == h && s->len == cid->len && !memcmp(s->b, cid->bytes, cid->len);
}

static bool key_is(const key *k, const cairn_cid *cid)
{
	return k->len == cid->len && !memcmp(k->b, cid->bytes, cid->len);
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
		cairn_free(sh->hashes);
		cairn_free(sh->keys);
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

/* Sorts the table into a run on disk; called with the shard locked. */
static int spill(cairn_seenset *set, shard *sh)
{
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
	for (i = 0; i < sh->cap; i++) {
		if (!sh->hashes[i])
			continue;
		v[n].h = sh->hashes[i];
		v[n].len = sh->keys[i].len;
		memcpy(v[n].b, sh->keys[i].b, KEY_MAX);
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
	memset(sh->hashes, 0, sh->cap * sizeof(uint64_t));
	sh->len = 0;
	cairn_free(v);
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
static int run_find(cairn_seenset *set, shard *sh, const run *r, uint64_t h,
		    const cairn_cid *cid)
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
			if (slot_is(&buf[i], h, cid))
				return 1;
		}
	}
	return 0;
}

/* Lookups land anywhere in tables of many megabytes: with 4 KiB pages
 * nearly each one is a TLB miss as well as a cache miss. Transparent huge
 * pages (asked for, as most systems give them only on request) halve that.
 * calloc's large blocks are fresh mappings not yet touched, so the advice
 * holds from the first fault; it is only advice, and failure is harmless. */
static void want_huge(void *p, size_t n)
{
	uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
	uintptr_t end = ((uintptr_t)p + n) & ~(uintptr_t)4095;

	if (n >= (4u << 20) && end > start)
		madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static int grow(cairn_seenset *set, shard *sh)
{
	size_t cap = sh->cap ? sh->cap * 2 : MIN_CAP;
	uint64_t *hashes = cairn_calloc(cap, sizeof(uint64_t));
	key *keys = cairn_malloc(cap * sizeof(key));

	if (!hashes || !keys) {
		cairn_free(hashes);
		cairn_free(keys);
		return CAIRN_ENOMEM;
	}
	want_huge(hashes, cap * sizeof(uint64_t));
	want_huge(keys, cap * sizeof(key));
	for (size_t i = 0; i < sh->cap; i++) {
		size_t j;

		if (!sh->hashes[i])
			continue;
		for (j = sh->hashes[i] & (cap - 1); hashes[j]; j = (j + 1) & (cap - 1))
			;
		hashes[j] = sh->hashes[i];
		keys[j] = sh->keys[i];
	}
	cairn_free(sh->hashes);
	cairn_free(sh->keys);
	atomic_fetch_add(&set->memory, (cap - sh->cap) * (sizeof(uint64_t) + sizeof(key)));
	__atomic_store_n(&sh->hashes, hashes, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->keys, keys, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->cap, cap, __ATOMIC_RELAXED);
	return 0;
}

static uint64_t key_hash(const cairn_cid *cid)
{
	return cairn_cid_hash(cid) | 1; /* never 0, the free mark */
}

/* The one path for has and add, under the shard's lock: 1 if the CID (of
 * hash `h`) was there, 0 if not (and, with `add`, it is now), or a
 * negative code. */
static int lookup(cairn_seenset *set, const cairn_cid *cid, uint64_t h, bool add)
{
	shard *sh = &set->shards[h >> (64 - SHARD_BITS)];
	size_t i;
	int rc = 0;

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
	if (sh->cap) {
		/* A hit reads the key beside the hash, almost always in the first
		 * slot probed: ask for both lines at once, so their two cache
		 * misses overlap instead of following one another. A miss
		 * inserts near there, so the key's line is wanted then too. */
		i = h & (sh->cap - 1);
		__builtin_prefetch(&sh->keys[i]);
		__builtin_prefetch((const char *)&sh->keys[i] + sizeof(key) - 1);
		for (; sh->hashes[i]; i = (i + 1) & (sh->cap - 1))
			if (sh->hashes[i] == h && key_is(&sh->keys[i], cid)) {
				rc = 1;
				goto out;
			}
	}
	for (size_t r = 0; r < sh->nruns; r++) {
		if (bloom_maybe(&sh->runs[r], h) && (rc = run_find(set, sh, &sh->runs[r], h, cid)))
			goto out; /* 1: there; < 0: failed */
	}
	if (!add)
		goto out;
	/* At most 3/4 full, so probes stay short: grow while the budget
	 * allows, else spill and start an empty table. */
	if (!sh->cap || (sh->len + 1) * 4 > sh->cap * 3) {
		if (sh->cap < set->max_cap)
			rc = grow(set, sh);
		else
			rc = spill(set, sh);
		if (rc)
			goto out;
	}
	for (i = h & (sh->cap - 1); sh->hashes[i]; i = (i + 1) & (sh->cap - 1))
		;
	sh->hashes[i] = h;
	sh->keys[i].len = (uint8_t)cid->len;
	memcpy(sh->keys[i].b, cid->bytes, cid->len);
	memset(sh->keys[i].b + cid->len, 0, KEY_MAX - cid->len);
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

/* Asks for the lines a lookup of hash `h` will read first: the slot's
 * hash and its key. Read without the shard's lock, so a table being
 * replaced may be prefetched instead: harmless, a prefetch never faults
 * and the lookup itself reads under the lock. */
static void prefetch(cairn_seenset *set, uint64_t h)
{
	shard *sh = &set->shards[h >> (64 - SHARD_BITS)];
	size_t cap = __atomic_load_n(&sh->cap, __ATOMIC_RELAXED);
	uint64_t *hashes = __atomic_load_n(&sh->hashes, __ATOMIC_RELAXED);
	key *keys = __atomic_load_n(&sh->keys, __ATOMIC_RELAXED);

	/* The lock's line too, for writing: taking it then finds it here. */
	__builtin_prefetch(&sh->lock, 1);
	if (!cap || !hashes || !keys)
		return;
	__builtin_prefetch(&hashes[h & (cap - 1)]);
	__builtin_prefetch(&keys[h & (cap - 1)]);
	__builtin_prefetch((const char *)&keys[h & (cap - 1)] + sizeof(key) - 1);
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
