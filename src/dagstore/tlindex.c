/* tlindex.c: the DAG store's top-level index: multihash -> {shard, section
 * offset, block size} for every shard holding the block, in one lookup.
 *
 * ----------------------------------------------------------------- design
 *
 * An LSM of immutable sorted run files (layout in tlrun.c) listed by a
 * MANIFEST that is replaced atomically. Each record is 24 bytes: a 64-bit
 * key (XXH64 of the whole multihash), the shard id, the block's size and its
 * section's offset. An add sorts the shard's records in memory and writes
 * them as one run (several shards at once with add_batch); a merge thread
 * merges runs so their number stays near log2 of (entries / run size); a
 * lookup skips the runs whose bloom filter says no (every run but the
 * largest has one), searches the others' fences (in memory) and reads one
 * 4 KiB page of each; a removal writes a tombstone into the manifest, and
 * merges drop the shard's records. Why, measured: see DESIGN NUMBERS at the
 * end of this comment.
 *
 * Keys. 64 bits of a hash of the whole multihash (code, length, digest): any
 * hash function, identity and truncated digests included, gives uniformly
 * spread keys, which interpolation search relies on; a sha2-256 block and a
 * blake2b block with equal digests get different keys. Two multihashes share
 * a key with probability 2^-64, so with n entries a lookup returns a hit for
 * another block with probability n / 2^64 (5e-10 at 10^10 entries); the
 * caller confirms every hit against the CID (the shard's CARv2 index or the
 * section read at the offset holds it), so a false hit costs a wasted read
 * and never a wrong answer. Records with equal keys are all kept.
 *
 * ---------------------------------------------------------- MANIFEST layout
 *
 *   offset   size       what (little-endian)
 *   0        8          magic "CAIRNTLM"
 *   8        4          format version 1
 *   12       4          zero
 *   16       8          next run number
 *   24       8          sequence counter (last seq given out)
 *   32       8          R: runs
 *   40       8          T: tombstones
 *   48       24 R       runs, newest first: u64 number, u64 seq, u64 records
 *   48+24R   16 T       tombstones by shard: u32 shard, u32 zero, u64 seq
 *   end - 8  8          XXH64 of everything before (seed 0)
 *
 * Files in the directory: MANIFEST, MANIFEST.tmp (while it is replaced),
 * LOCK (flock: one writer, or readers), <16 hex digits>.run.
 *
 * ------------------------------------------------------ sequence numbers
 *
 * Every new run and every removal takes the next number of one counter. A
 * tombstone {shard, t} hides the shard's records in runs whose seq is below
 * t: those written before the removal. A merge's output takes the largest
 * seq of its inputs and drops the records of every tombstone newer than
 * their input at the start of the merge; a removal made while the merge
 * runs has a larger seq than all its inputs, so it still hides the output.
 * A shard added again after a removal lands in a run newer than the
 * tombstone and is seen. A tombstone is dropped once no run older than it
 * lists its shard. Each shard has at most one tombstone (the newest).
 *
 * ------------------------------------------------------------ crash safety
 *
 *   add:    write run file(s) (created O_EXCL, header last), fsync each;
 *           write MANIFEST.tmp, fsync; rename onto MANIFEST; fsync the dir.
 *   remove: only the manifest steps.
 *   merge:  write the output run, fsync; the manifest steps; unlink inputs.
 * A crash before the rename leaves the old manifest, whose runs are all
 * whole; run files it does not list and MANIFEST.tmp are removed when a
 * writer next opens. A crash after the rename leaves the new state plus
 * orphans (merged inputs), removed the same way. A failure of the directory
 * fsync after the rename leaves it undecided which manifest survives a
 * power cut, so the index then refuses writes until reopened (the in-memory
 * state is the new one; a reopen reads what is really there).
 *
 * ------------------------------------------------------------ concurrency
 *
 * Readers see an immutable version {runs, tombstones, counts}. A lookup
 * reads it inside an RCU-like read section (read_enter: two atomic adds on
 * a counter line of the reader's own stripe, no lock, nothing shared
 * written); a writer publishing a new version turns the epoch and waits for
 * the old epoch's sections to end before dropping its reference. Long
 * readers (verify, shard_foreach) take a reference instead. A run file is
 * unmapped when the last version listing it goes. `wlock` guards the
 * writer's state and is held only for short steps: an add claims its shard
 * ids (in `adding`, so a second add of one id fails at once), sorts and
 * writes its runs without the lock (adds from several threads sort and
 * fsync in parallel), then takes it to commit; a merge takes it to pick its
 * inputs and to commit its output; removals are commits. Commits are
 * serialized, and each writes the manifest from the state current under
 * the lock, so none loses another's runs. `mlock` allows one merge at a
 * time (the merge thread's or compact's). Lock order: mlock, wlock.
 * Merged inputs are unlinked as soon as the new manifest is durable; readers
 * still holding a version keep their mapping (unlink leaves a mapping be).
 *
 * Back-pressure: past max_runs runs a writer waits for the merge thread.
 *
 * Pause (a snapshot of the store while it runs): merges are canceled and
 * put off until resume, so no file of the directory changes; the DAG store
 * holds its own writers first.
 *
 * ------------------------------------------------------------ merge policy
 *
 * Runs in age order, sizes in records (cairn_tlindex__pick):
 *  1. a run of which half or more is dead (removed shards) is rewritten;
 *  2. else the newest runs are merged with each older run no larger than
 *     merge_ratio x their sum (ratio 1: a binary counter, about log2 runs,
 *     each record written about log2(N / run size) times);
 *  3. else, past max_runs / 2 runs, the two adjacent runs with the smallest
 *     sum (sizes that shrink with age never meet rule 2).
 *
 * ---------------------------------------------------------- DESIGN NUMBERS
 *
 * bench/dagstore/tlindex.sh, release build, 2 cores shared with other jobs
 * (load average 2 to 7), fsync on, background merges:
 *  - LMDB, the obvious alternative (already a dependency), as a dupsort/
 *    dupfixed database keyed by the same 8-byte key, 10^7 entries in
 *    batches of 10^5 sorted entries: 0.17 M inserts/s (random B-tree
 *    inserts; Boost's LevelDB did ~0.06 M/s), 105 bytes/entry, 0.47 M warm
 *    lookups/s (p99 3.2 us), and removing a shard is a delete per entry
 *    (0.16 s for 10^4). This index at the same size: 3.2 M inserts/s, 24.1
 *    bytes/entry, 1.24 M lookups/s (p99 1.3 us), removal a tombstone (1 ms
 *    for a shard of 10^6).
 *  - Inserts, 10^7 entries: 2.4 to 2.9 M entries/s for shards of 100 (1000
 *    to a call), 10^4 (10 to a call) and 10^6; 0.02 M/s for shards of 100
 *    one to a call (three fsyncs each: batch small shards). 10^8 entries in
 *    shards of 10^6: 5.3 M/s, 8 runs left; compact to one run 7.7 s.
 *  - 10^8 entries: 24.1 bytes/entry on disk in one run (records 24, pages'
 *    checksums 0.09, fences 0.05), 0.05 bytes/entry of memory (fences), plus
 *    1.25 bytes/entry for bloom filters of the runs but the largest.
 *    Warm lookups: 0.81 M/s on one thread (p50 1.0 us, p99 3.9 us), 1.03 M/s
 *    on two; with 8 runs 0.56 M/s (p50 1.6 us). Cold (page cache dropped):
 *    7.3 k/s on one thread, 13 k/s on two, p50 110 us (one 4 KiB read),
 *    p99 0.4 to 0.6 ms; open 27 ms.
 *  - Merges run at 13 to 17 M records/s, each record written about log2 of
 *    (entries / run size) times, so under a sustained 5 M/s the merge thread
 *    lags and runs pile up to max_runs (then adds wait); bloom filters make
 *    the extra runs cheap to skip (10^7 entries, p50 of a lookup: 10 runs
 *    without them 4.4x that of one run, 11 runs with them 1.4x).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/ipld.h"
#include "dagstore/tlindex_i.h"

#define MANIFEST_HEAD 48u
#define MANIFEST_RUN 24u
#define MANIFEST_TOMB 16u
#define MANIFEST_MAX (1u << 30)
#define CANCEL_EVERY 65536u     /* records a merge writes between checks */

typedef struct tl_tomb {
	uint32_t shard;
	uint32_t zero;
	uint64_t seq;
} tl_tomb;

/* What readers see: immutable once published. */
typedef struct tl_version {
	atomic_long refs;
	size_t nruns;
	tl_run **runs;           /* newest (highest seq) first */
	uint8_t *filtered;       /* per run: a tombstone hides some of it */
	size_t ntombs;
	tl_tomb *tombs;          /* ascending by shard */
	uint64_t entries, shards, records, bytes;
} tl_version;

/* Live shards and their entry counts: the writer's, under wlock. Open
 * addressing with linear probing; tag = shard + 1, 0 = free. */
typedef struct {
	uint64_t tag;
	uint64_t count;
} map_slot;

typedef struct {
	map_slot *slots;
	size_t cap, len;
} shard_map;

/* Readers in flight, per epoch parity, in stripes a thread keeps to (one
 * cache line of counters each: readers on two cores touch different
 * lines). 128 bytes a stripe, so two never share a line however the
 * struct is aligned. */
#define READ_STRIPES 16
typedef struct {
	atomic_long n[2];
	char pad[128 - 2 * sizeof(atomic_long)];
} read_stripe;

struct cairn_tlindex {
	char *dir;
	cairn_tlindex_options opts;
	int lock_fd;

	_Atomic(tl_version *) cur; /* what readers see; replaced by publish */
	atomic_uint epoch;       /* readers' epoch (its parity picks a counter) */
	read_stripe stripes[READ_STRIPES];

	pthread_mutex_t wlock;   /* the writer's state below */
	pthread_cond_t wcond;    /* a merge finished (writers over max_runs wait) */
	pthread_cond_t mcond;    /* work for the merge thread */
	bool failed;             /* refuse writes until reopened */
	bool crashed;            /* a test hook simulated a crash */
	uint64_t next_run, seq;
	uint64_t entries;
	shard_map live;
	shard_map adding;        /* shards of adds under way */
	bool merge_wanted, stop;
	int merge_error;
	unsigned paused;         /* pauses not yet resumed: no merge starts */

	pthread_mutex_t mlock;   /* one merge at a time */
	pthread_t merger;
	bool merger_running;
	atomic_bool cancel;
	atomic_ullong merges, merged_records;
};

/* ------------------------------------------------------------- helpers */

static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline void st64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline void st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static int hook(cairn_tlindex *idx, const char *point)
{
	if (!cairn_tlindex__hook || !cairn_tlindex__hook(point))
		return 0;
	idx->crashed = idx->failed = true;
	return cairn_error_set(CAIRN_EIO, "tlindex %s: simulated crash at %s", idx->dir, point);
}

static int writable(const cairn_tlindex *idx)
{
	if (idx->opts.read_only)
		return cairn_error_set(CAIRN_EINVAL, "tlindex %s: opened read-only", idx->dir);
	if (idx->failed)
		return cairn_error_set(CAIRN_EINVAL,
				       "tlindex %s: a write failed earlier; close and reopen the index",
				       idx->dir);
	return 0;
}

static int check_mh(const uint8_t *mh, size_t len)
{
	uint64_t code;
	const uint8_t *digest;
	size_t dlen, used;

	if (!mh || cairn_multihash_decode(&code, &digest, &dlen, &used, mh, len) || used != len)
		return CAIRN_EINVAL;
	return 0;
}

/* ----------------------------------------------------------- shard map */

static size_t map_home(uint32_t shard, size_t cap)
{
	uint64_t h = ((uint64_t)shard + 1) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

static map_slot *map_find(const shard_map *m, uint32_t shard)
{
	if (!m->cap)
		return NULL;
	for (size_t i = map_home(shard, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->slots[i].tag == (uint64_t)shard + 1)
			return &m->slots[i];
		if (!m->slots[i].tag)
			return NULL;
	}
}

/* Makes room for `more` inserts at under half load, so map_put never fails. */
static int map_reserve(shard_map *m, size_t more)
{
	size_t cap = m->cap ? m->cap : 64;
	map_slot *slots;

	while ((m->len + more) * 2 > cap)
		cap *= 2;
	if (cap == m->cap)
		return 0;
	slots = cairn_calloc(cap, sizeof(*slots));
	if (!slots)
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].tag)
			continue;
		size_t j = map_home((uint32_t)(m->slots[i].tag - 1), cap);

		while (slots[j].tag)
			j = (j + 1) & (cap - 1);
		slots[j] = m->slots[i];
	}
	cairn_free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

/* Adds `count` to the shard's entry (creating it); room must be reserved. */
static void map_add(shard_map *m, uint32_t shard, uint64_t count)
{
	size_t i = map_home(shard, m->cap);

	while (m->slots[i].tag && m->slots[i].tag != (uint64_t)shard + 1)
		i = (i + 1) & (m->cap - 1);
	if (!m->slots[i].tag) {
		m->slots[i].tag = (uint64_t)shard + 1;
		m->slots[i].count = 0;
		m->len++;
	}
	m->slots[i].count += count;
}

static void map_del(shard_map *m, map_slot *s)
{
	size_t i = (size_t)(s - m->slots), j = i;

	/* Backward shift: move later members of the cluster into the hole
	 * when their home is not between the hole and them. */
	for (;;) {
		j = (j + 1) & (m->cap - 1);
		if (!m->slots[j].tag)
			break;
		size_t home = map_home((uint32_t)(m->slots[j].tag - 1), m->cap);

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].tag = 0;
	m->len--;
}

/* ------------------------------------------------------------- versions */

static const tl_tomb *tomb_find(const tl_tomb *t, size_t n, uint32_t shard)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t[mid].shard < shard)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && t[lo].shard == shard ? &t[lo] : NULL;
}

/* Whether the shard's records in run `r` are hidden by a removal. */
static bool is_dead(const tl_tomb *tombs, size_t ntombs, uint32_t shard, const tl_run *r)
{
	const tl_tomb *t = tomb_find(tombs, ntombs, shard);

	return t && t->seq > r->seq;
}

/* Records of `r` hidden by tombstones. */
static uint64_t dead_records(const tl_run *r, const tl_tomb *tombs, size_t ntombs)
{
	uint64_t dead = 0, c;

	for (size_t i = 0; i < ntombs; i++)
		if (tombs[i].seq > r->seq && cairn_tlindex__run_has_shard(r, tombs[i].shard, &c))
			dead += c;
	return dead;
}

static void version_free(tl_version *v)
{
	for (size_t i = 0; i < v->nruns; i++)
		cairn_tlindex__run_unref(v->runs[i]);
	cairn_free(v->runs);
	cairn_free(v->filtered);
	cairn_free(v->tombs);
	cairn_free(v);
}

static void version_release(tl_version *v)
{
	if (v && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
		version_free(v);
}

/* A read-side section (RCU-like): the caller may use idx->cur, as loaded
 * after entering, until read_exit, without a reference. publish waits for
 * the sections of the old epoch to end before it lets the old version go.
 * Entering is two atomic adds on a line of the thread's own stripe and two
 * loads of read-mostly lines: no lock, nothing two readers write in common. */
static atomic_long *read_enter(cairn_tlindex *idx)
{
	static atomic_uint next_stripe;
	static _Thread_local unsigned stripe = UINT_MAX;
	read_stripe *st;

	if (stripe == UINT_MAX)
		stripe = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) %
			 READ_STRIPES;
	st = &idx->stripes[stripe];
	for (;;) {
		unsigned e = atomic_load(&idx->epoch) & 1;

		atomic_fetch_add(&st->n[e], 1);
		if ((atomic_load(&idx->epoch) & 1) == e)
			return &st->n[e];
		atomic_fetch_sub(&st->n[e], 1); /* the epoch turned: again */
	}
}

static void read_exit(atomic_long *c)
{
	atomic_fetch_sub_explicit(c, 1, memory_order_release);
}

/* A reference to the current version, for readers that take long (verify,
 * shard_foreach) and must not hold up publish. */
static tl_version *version_acquire(cairn_tlindex *idx)
{
	atomic_long *c = read_enter(idx);
	tl_version *v = atomic_load(&idx->cur);

	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	read_exit(c);
	return v;
}

static int run_seq_desc(const void *a, const void *b)
{
	const tl_run *x = *(tl_run *const *)a, *y = *(tl_run *const *)b;

	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* A new version (one reference) over `runs` (sorted here, newest first; each
 * gets a reference) and a copy of the tombstones. */
static int version_new(tl_version **out, tl_run *const *runs, size_t nruns, const tl_tomb *tombs,
		       size_t ntombs, uint64_t entries, uint64_t shards, uint64_t manifest_bytes)
{
	tl_version *v = cairn_calloc(1, sizeof(*v));

	*out = NULL;
	if (!v)
		return CAIRN_ENOMEM;
	v->runs = cairn_malloc((nruns ? nruns : 1) * sizeof(*v->runs));
	v->filtered = cairn_calloc(nruns ? nruns : 1, 1);
	v->tombs = cairn_malloc((ntombs ? ntombs : 1) * sizeof(*v->tombs));
	if (!v->runs || !v->filtered || !v->tombs) {
		cairn_free(v->runs);
		cairn_free(v->filtered);
		cairn_free(v->tombs);
		cairn_free(v);
		return CAIRN_ENOMEM;
	}
	atomic_init(&v->refs, 1);
	memcpy(v->runs, runs, nruns * sizeof(*runs));
	qsort(v->runs, nruns, sizeof(*v->runs), run_seq_desc);
	if (ntombs)
		memcpy(v->tombs, tombs, ntombs * sizeof(*tombs));
	v->nruns = nruns;
	v->ntombs = ntombs;
	/* Bloom filters in memory for every run but the largest (most keys
	 * looked up are in it; its filter would be half the memory). A filter
	 * that cannot be read only makes lookups of that run slower. */
	for (size_t i = 0, big = 0; i < nruns; i++) {
		if (i == 0)
			for (size_t j = 1; j < nruns; j++)
				if (v->runs[j]->count > v->runs[big]->count)
					big = j;
		if (i != big && cairn_tlindex__run_load_bloom(v->runs[i]))
			cairn_error_clear();
	}
	v->entries = entries;
	v->shards = shards;
	v->bytes = manifest_bytes;
	for (size_t i = 0; i < nruns; i++) {
		cairn_tlindex__run_ref(v->runs[i]);
		v->records += v->runs[i]->count;
		v->bytes += v->runs[i]->file_bytes;
		/* A tombstone hides records only in runs that list its shard
		 * (with a count of 0 for a shard that has no records). */
		for (size_t t = 0; !v->filtered[i] && t < ntombs; t++)
			if (tombs[t].seq > v->runs[i]->seq &&
			    cairn_tlindex__run_has_shard(v->runs[i], tombs[t].shard, NULL))
				v->filtered[i] = 1;
	}
	*out = v;
	return 0;
}

/* Makes `v` what readers see (call with wlock held): swaps it in, turns the
 * epoch, waits for the read sections of the old epoch (lookups: micro-
 * seconds, a cold one a disk read) and drops the reference to the old one. */
static void publish(cairn_tlindex *idx, tl_version *v)
{
	tl_version *old = atomic_exchange(&idx->cur, v);
	unsigned e = atomic_fetch_add(&idx->epoch, 1) & 1;

	for (unsigned i = 0; i < READ_STRIPES; i++)
		while (atomic_load(&idx->stripes[i].n[e]) != 0)
			sched_yield();
	version_release(old);
}

/* ------------------------------------------------------------- manifest */

static int manifest_encode(cairn_buf *out, uint64_t next_run, uint64_t seq, tl_run *const *runs,
			   size_t nruns, const tl_tomb *tombs, size_t ntombs)
{
	size_t n = MANIFEST_HEAD + nruns * MANIFEST_RUN + ntombs * MANIFEST_TOMB + 8;
	uint8_t *p;
	int rc;

	cairn_buf_clear(out);
	if ((rc = cairn_buf_reserve(out, n)))
		return rc;
	p = out->data;
	memset(p, 0, n);
	memcpy(p, "CAIRNTLM", 8);
	st32(p + 8, 1);
	st64(p + 16, next_run);
	st64(p + 24, seq);
	st64(p + 32, nruns);
	st64(p + 40, ntombs);
	p += MANIFEST_HEAD;
	for (size_t i = 0; i < nruns; i++, p += MANIFEST_RUN) {
		st64(p, runs[i]->number);
		st64(p + 8, runs[i]->seq);
		st64(p + 16, runs[i]->count);
	}
	for (size_t i = 0; i < ntombs; i++, p += MANIFEST_TOMB) {
		st32(p, tombs[i].shard);
		st64(p + 8, tombs[i].seq);
	}
	st64(p, cairn_tlindex__hash(out->data, n - 8, 0));
	out->len = n;
	return 0;
}

typedef struct {
	uint64_t next_run, seq;
	size_t nruns, ntombs;
	const uint8_t *runs;     /* MANIFEST_RUN each, in the buffer */
	tl_tomb *tombs;          /* allocated */
} manifest;

static int mcorrupt(const char *path, uint64_t at, const char *what)
{
	return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: %s", path, (unsigned long long)at,
			       what);
}

static int manifest_decode(manifest *m, const uint8_t *p, size_t n, const char *path)
{
	uint64_t nruns, ntombs;

	memset(m, 0, sizeof(*m));
	if (n < MANIFEST_HEAD + 8)
		return mcorrupt(path, n, "file too short for a manifest");
	if (memcmp(p, "CAIRNTLM", 8))
		return mcorrupt(path, 0, "not a tlindex manifest (bad magic)");
	if (ld32(p + 8) != 1 || ld32(p + 12) != 0)
		return mcorrupt(path, 8, "unsupported manifest version");
	nruns = ld64(p + 32);
	ntombs = ld64(p + 40);
	if (nruns > (n - MANIFEST_HEAD - 8) / MANIFEST_RUN ||
	    ntombs > (n - MANIFEST_HEAD - 8 - nruns * MANIFEST_RUN) / MANIFEST_TOMB ||
	    MANIFEST_HEAD + nruns * MANIFEST_RUN + ntombs * MANIFEST_TOMB + 8 != n)
		return mcorrupt(path, 32, "run and tombstone counts do not match the file size");
	if (cairn_tlindex__hash(p, n - 8, 0) != ld64(p + n - 8))
		return mcorrupt(path, n - 8, "checksum mismatch");
	m->next_run = ld64(p + 16);
	m->seq = ld64(p + 24);
	m->nruns = (size_t)nruns;
	m->ntombs = (size_t)ntombs;
	m->runs = p + MANIFEST_HEAD;
	for (size_t i = 0; i < m->nruns; i++) {
		const uint8_t *r = m->runs + i * MANIFEST_RUN;
		uint64_t at = MANIFEST_HEAD + i * MANIFEST_RUN;

		if (ld64(r) >= m->next_run || ld64(r + 8) > m->seq)
			return mcorrupt(path, at, "run number or seq beyond the counters");
		if (i && ld64(r + 8) >= ld64(r + 8 - MANIFEST_RUN))
			return mcorrupt(path, at + 8, "runs not newest first");
	}
	m->tombs = cairn_malloc((m->ntombs ? m->ntombs : 1) * sizeof(*m->tombs));
	if (!m->tombs)
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < m->ntombs; i++) {
		const uint8_t *t = m->runs + m->nruns * MANIFEST_RUN + i * MANIFEST_TOMB;
		uint64_t at = MANIFEST_HEAD + nruns * MANIFEST_RUN + i * MANIFEST_TOMB;

		m->tombs[i].shard = ld32(t);
		m->tombs[i].zero = 0;
		m->tombs[i].seq = ld64(t + 8);
		if (ld32(t + 4) || m->tombs[i].seq == 0 || m->tombs[i].seq > m->seq ||
		    (i && m->tombs[i].shard <= m->tombs[i - 1].shard)) {
			cairn_free(m->tombs);
			m->tombs = NULL;
			return mcorrupt(path, at, "bad tombstone (order or seq)");
		}
	}
	return 0;
}

/* Replaces MANIFEST with p[0..n): temporary file, fsync, rename, fsync of
 * the directory. *renamed says whether the rename happened (after it, a
 * failure leaves it undecided which file a power cut keeps). */
static int manifest_write(cairn_tlindex *idx, const uint8_t *p, size_t n, bool *renamed)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	bool sync = !idx->opts.no_sync;
	int fd, rc;

	*renamed = false;
	snprintf(path, sizeof(path), "%s/MANIFEST", idx->dir);
	snprintf(tmp, sizeof(tmp), "%s/MANIFEST.tmp", idx->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: create: %s", tmp, strerror(errno));
	rc = cairn_file_write_full(fd, p, n, tmp);
	if (!rc && sync)
		rc = cairn_file_fsync(fd, tmp);
	if (close(fd) < 0 && !rc)
		rc = cairn_error_set(CAIRN_EIO, "%s: close: %s", tmp, strerror(errno));
	if (!rc && (rc = hook(idx, "manifest-tmp")))
		return rc;
	if (!rc && rename(tmp, path) < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: rename into place: %s", path, strerror(errno));
	if (rc) {
		unlink(tmp);
		return rc;
	}
	*renamed = true;
	if ((rc = hook(idx, "manifest-renamed")))
		return rc;
	if (sync && (rc = cairn_file_fsync_dir(idx->dir)))
		return rc;
	return 0;
}

/* Makes {runs, tombs} the index's state: the manifest first, then the version
 * readers see. A failure before the manifest's rename changes nothing; one
 * after it publishes the new state and marks the index failed. */
static int commit(cairn_tlindex *idx, tl_run *const *runs, size_t nruns, const tl_tomb *tombs,
		  size_t ntombs, uint64_t entries, uint64_t shards)
{
	cairn_buf m = CAIRN_BUF_INIT;
	tl_version *v = NULL;
	bool renamed;
	int rc;

	if ((rc = version_new(&v, runs, nruns, tombs, ntombs, entries, shards, 0)))
		return rc;
	if ((rc = manifest_encode(&m, idx->next_run, idx->seq, v->runs, nruns, tombs, ntombs))) {
		cairn_buf_free(&m);
		version_release(v);
		return rc;
	}
	v->bytes += m.len;
	rc = manifest_write(idx, m.data, m.len, &renamed);
	cairn_buf_free(&m);
	if (rc && (!renamed || idx->crashed)) {
		version_release(v);
		return rc;
	}
	publish(idx, v);
	if (rc) {
		idx->failed = true;
		return cairn_error_prefix("tlindex %s: the manifest may not be durable; reopen: ",
					  idx->dir);
	}
	return 0;
}

/* Tombstones some run older than them still lists. */
static size_t prune_tombs(tl_tomb *out, const tl_tomb *tombs, size_t ntombs, tl_run *const *runs,
			  size_t nruns)
{
	size_t n = 0;

	for (size_t i = 0; i < ntombs; i++)
		for (size_t r = 0; r < nruns; r++)
			if (runs[r]->seq < tombs[i].seq &&
			    cairn_tlindex__run_has_shard(runs[r], tombs[i].shard, NULL)) {
				out[n++] = tombs[i];
				break;
			}
	return n;
}

/* --------------------------------------------------------------- policy */

bool cairn_tlindex__pick(size_t *first, size_t *last, const uint64_t *size, const uint64_t *dead,
			 size_t n, unsigned ratio, unsigned max_runs)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (dead[i] && dead[i] * 2 >= size[i]) {
			*first = *last = i;
			return true;
		}
	if (n >= 2) {
		uint64_t sum = size[n - 1];
		size_t j = n - 1;

		for (size_t i = n - 1; i-- > 0;) {
			if (size[i] > (uint64_t)ratio * sum)
				break;
			sum += size[i];
			j = i;
		}
		if (j < n - 1) {
			*first = j;
			*last = n - 1;
			return true;
		}
	}
	if (n >= 2 && n > (max_runs / 2 > 2 ? max_runs / 2 : 2)) {
		size_t best = 0;

		for (size_t i = 1; i + 1 < n; i++)
			if (size[i] + size[i + 1] < size[best] + size[best + 1])
				best = i;
		*first = best;
		*last = best + 1;
		return true;
	}
	return false;
}

/* ---------------------------------------------------------------- merge */

typedef struct {
	tl_run *run;
	tl_cursor c;
	uint32_t *drop;          /* shards whose records are dropped, ascending */
	size_t ndrop;
	uint64_t kept, expect;   /* records written, and what the table says */
} merge_in;

static bool dropped(const merge_in *m, uint32_t shard)
{
	size_t lo = 0, hi = m->ndrop;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->drop[mid] < shard)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->ndrop && m->drop[lo] == shard;
}

static int shard_cmp(const void *a, const void *b)
{
	const tl_shard_count *x = a, *y = b;

	return x->shard < y->shard ? -1 : x->shard > y->shard;
}

static bool heap_less(const merge_in *a, const merge_in *b)
{
	return tl_rec_cmp(&a->c.rec, &b->c.rec) < 0;
}

static void sift_down(merge_in **h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < n && heap_less(h[l], h[m]))
			m = l;
		if (l + 1 < n && heap_less(h[l + 1], h[m]))
			m = l + 1;
		if (m == i)
			return;
		merge_in *t = h[i];

		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* Merges `in` into run `number` (NULL in *out when nothing is left),
 * dropping the records the tombstones of `v` hide. */
static int merge_runs(tl_run **out, cairn_tlindex *idx, tl_run *const *in, size_t nin,
		      const tl_version *v, uint64_t number, unsigned bloom_bits)
{
	merge_in *m = cairn_calloc(nin, sizeof(*m));
	merge_in **heap = cairn_calloc(nin, sizeof(*heap));
	tl_shard_count *tab = NULL;
	size_t ntab = 0, tabcap = 0, nheap = 0, nbuf = 0;
	tl_rec buf[256];
	tl_writer *w = NULL;
	uint64_t seq = 0, total = 0, since = 0;
	int rc = 0;

	*out = NULL;
	if (!m || !heap) {
		rc = CAIRN_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < nin; i++) {
		tl_run *r = in[i];

		m[i].run = r;
		m[i].expect = r->count;
		seq = r->seq > seq ? r->seq : seq;
		tabcap += r->nshards;
		for (size_t t = 0; t < v->ntombs; t++) {
			uint64_t c;

			if (v->tombs[t].seq <= r->seq ||
			    !cairn_tlindex__run_has_shard(r, v->tombs[t].shard, &c))
				continue;
			if (!m[i].drop && !(m[i].drop = cairn_malloc(v->ntombs * sizeof(uint32_t)))) {
				rc = CAIRN_ENOMEM;
				goto done;
			}
			m[i].drop[m[i].ndrop++] = v->tombs[t].shard;
			m[i].expect -= c;
		}
	}
	/* The output's shard table: the inputs' kept shards, counts summed. */
	tab = cairn_malloc((tabcap ? tabcap : 1) * sizeof(*tab));
	if (!tab) {
		rc = CAIRN_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < nin; i++)
		for (uint64_t s = 0; s < in[i]->nshards; s++)
			if (!dropped(&m[i], in[i]->shards[s].shard))
				tab[ntab++] = in[i]->shards[s];
	qsort(tab, ntab, sizeof(*tab), shard_cmp);
	if (ntab) {
		size_t k = 0;

		for (size_t i = 1; i < ntab; i++) {
			if (tab[i].shard == tab[k].shard)
				tab[k].count += tab[i].count;
			else
				tab[++k] = tab[i];
		}
		ntab = k + 1;
	}
	for (size_t i = 0; i < ntab; i++)
		total += tab[i].count;
	if (ntab == 0)
		goto done; /* nothing left: the inputs just go */
	if ((rc = cairn_tlindex__writer_open(&w, idx->dir, number, seq, !idx->opts.no_sync, total,
					     bloom_bits)))
		goto done;
	for (size_t i = 0; i < nin; i++) {
		if ((rc = cairn_tlindex__cursor_start(&m[i].c, m[i].run)))
			goto done;
		if (!m[i].c.done)
			heap[nheap++] = &m[i];
	}
	for (size_t i = nheap / 2; i-- > 0;)
		sift_down(heap, nheap, i);
	while (nheap) {
		merge_in *top = heap[0];

		if (!top->ndrop || !dropped(top, top->c.rec.shard)) {
			buf[nbuf++] = top->c.rec;
			top->kept++;
			if (nbuf == sizeof(buf) / sizeof(buf[0])) {
				if ((rc = cairn_tlindex__writer_add(w, buf, nbuf)))
					goto done;
				nbuf = 0;
			}
		}
		if ((rc = cairn_tlindex__cursor_next(&top->c)))
			goto done;
		if (top->c.done)
			heap[0] = heap[--nheap];
		sift_down(heap, nheap, 0);
		if (++since == CANCEL_EVERY) {
			since = 0;
			if (atomic_load_explicit(&idx->cancel, memory_order_relaxed)) {
				rc = cairn_error_set(CAIRN_ECANCELED, "tlindex %s: merge canceled",
						     idx->dir);
				goto done;
			}
		}
	}
	if (nbuf && (rc = cairn_tlindex__writer_add(w, buf, nbuf)))
		goto done;
	for (size_t i = 0; i < nin; i++)
		if (m[i].kept != m[i].expect) {
			rc = cairn_error_set(CAIRN_ECORRUPT,
				"%s: at byte %llu: the shard table does not match the records (%llu kept, %llu expected)",
				m[i].run->path,
				(unsigned long long)(m[i].run->file_bytes - m[i].run->nshards * TL_SHARD_LEN),
				(unsigned long long)m[i].kept, (unsigned long long)m[i].expect);
			goto done;
		}
	if ((rc = cairn_tlindex__writer_finish(w, tab, ntab)))
		goto done;
	cairn_tlindex__writer_free(w, false);
	w = NULL;
	if ((rc = cairn_tlindex__run_open(out, idx->dir, number, seq, total))) {
		char path[PATH_MAX];

		if (!cairn_tlindex__run_path(path, idx->dir, number))
			unlink(path);
	}
done:
	if (w && cairn_tlindex__writer_crashed(w))
		idx->crashed = idx->failed = true;
	cairn_tlindex__writer_free(w, true);
	if (m)
		for (size_t i = 0; i < nin; i++)
			cairn_free(m[i].drop);
	cairn_free(m);
	cairn_free(heap);
	cairn_free(tab);
	return rc;
}

static uint64_t largest_count(const tl_version *v)
{
	uint64_t m = 0;

	for (size_t i = 0; i < v->nruns; i++)
		if (v->runs[i]->count > m)
			m = v->runs[i]->count;
	return m;
}

/* Whether the merge of `in` makes the largest run of the version: its bloom
 * filter would never be read (see version_new), so none is built. */
static bool largest_after(const tl_version *v, tl_run *const *in, size_t nin)
{
	uint64_t out = 0, other = 0;

	for (size_t i = 0; i < nin; i++)
		out += in[i]->count;
	for (size_t i = 0; i < v->nruns; i++) {
		bool merged = false;

		for (size_t j = 0; j < nin; j++)
			merged |= v->runs[i] == in[j];
		if (!merged && v->runs[i]->count > other)
			other = v->runs[i]->count;
	}
	return out >= other;
}

static void remove_run_file(const tl_run *r)
{
	unlink(r->path);
}

/* One merge: of every run (`all`) or of what the policy picks. Call with
 * mlock held. *did says whether anything changed. */
static int merge_once(cairn_tlindex *idx, bool all, bool *did)
{
	tl_version *v, *cur;
	tl_run **in = NULL, **keep = NULL, *out = NULL;
	tl_tomb *tombs = NULL;
	uint64_t *size = NULL, *dead = NULL, number;
	size_t n, first = 0, last = 0, nin, nkeep = 0;
	unsigned bloom_bits;
	bool go;
	int rc = 0;

	*did = false;
	pthread_mutex_lock(&idx->wlock);
	if ((rc = writable(idx))) {
		pthread_mutex_unlock(&idx->wlock);
		return rc;
	}
	if (idx->paused) {
		/* Put off: the last resume wakes the merge thread. */
		pthread_mutex_unlock(&idx->wlock);
		return 0;
	}
	v = idx->cur;
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	n = v->nruns;
	if (all) {
		go = n >= 2 || (n == 1 && (v->filtered[0] || v->ntombs));
		first = 0;
		last = n ? n - 1 : 0;
	} else {
		size = cairn_malloc((n ? n : 1) * sizeof(*size));
		dead = cairn_malloc((n ? n : 1) * sizeof(*dead));
		if (!size || !dead) {
			rc = CAIRN_ENOMEM;
			go = false;
		} else {
			for (size_t i = 0; i < n; i++) { /* age order: oldest first */
				const tl_run *r = v->runs[n - 1 - i];

				size[i] = r->count;
				dead[i] = v->filtered[n - 1 - i] ?
					dead_records(r, v->tombs, v->ntombs) : 0;
			}
			go = cairn_tlindex__pick(&first, &last, size, dead, n, idx->opts.merge_ratio,
						 idx->opts.max_runs);
		}
	}
	if (!go) {
		pthread_mutex_unlock(&idx->wlock);
		goto done;
	}
	nin = last - first + 1;
	in = cairn_malloc(nin * sizeof(*in));
	if (!in) {
		rc = CAIRN_ENOMEM;
		pthread_mutex_unlock(&idx->wlock);
		goto done;
	}
	for (size_t i = 0; i < nin; i++)
		in[i] = v->runs[n - 1 - (first + i)];
	number = idx->next_run++;
	bloom_bits = largest_after(v, in, nin) ? 0 : idx->opts.bloom_bits;
	pthread_mutex_unlock(&idx->wlock);

	rc = merge_runs(&out, idx, in, nin, v, number, bloom_bits);

	pthread_mutex_lock(&idx->wlock);
	if (!rc && out)
		rc = hook(idx, "merge-synced");
	if (rc)
		goto unlock;
	cur = idx->cur;
	keep = cairn_malloc((cur->nruns + 1) * sizeof(*keep));
	tombs = cairn_malloc((cur->ntombs ? cur->ntombs : 1) * sizeof(*tombs));
	if (!keep || !tombs) {
		rc = CAIRN_ENOMEM;
		goto unlock;
	}
	for (size_t i = 0; i < cur->nruns; i++) {
		bool merged = false;

		for (size_t j = 0; j < nin; j++)
			merged |= cur->runs[i] == in[j];
		if (!merged)
			keep[nkeep++] = cur->runs[i];
	}
	/* Only merges remove runs, one at a time: every input is still there. */
	if (nkeep + nin != cur->nruns) {
		rc = cairn_error_set(CAIRN_ERROR, "tlindex %s: merged runs vanished (a bug)", idx->dir);
		goto unlock;
	}
	if (out)
		keep[nkeep++] = out;
	size_t ntombs = prune_tombs(tombs, cur->tombs, cur->ntombs, keep, nkeep);

	if ((rc = commit(idx, keep, nkeep, tombs, ntombs, idx->entries, idx->live.len)))
		goto unlock;
	if ((rc = hook(idx, "merge-committed")))
		goto unlock;
	for (size_t i = 0; i < nin; i++)
		remove_run_file(in[i]);
	atomic_fetch_add(&idx->merges, 1);
	atomic_fetch_add(&idx->merged_records, out ? out->count : 0);
	*did = true;
	pthread_cond_broadcast(&idx->wcond);
unlock:
	if (rc && out && !idx->failed)
		remove_run_file(out); /* nothing points at it */
	pthread_mutex_unlock(&idx->wlock);
done:
	cairn_tlindex__run_unref(out);
	version_release(v);
	cairn_free(in);
	cairn_free(keep);
	cairn_free(tombs);
	cairn_free(size);
	cairn_free(dead);
	return rc;
}

static void note_merge_error(cairn_tlindex *idx, int rc)
{
	if (rc && rc != CAIRN_ECANCELED) {
		if (!idx->merge_error && !idx->failed)
			cairn_log(CAIRN_LOG_ERROR, "tlindex %s: merge failed: %s", idx->dir,
				  cairn_error_last());
		idx->merge_error = rc;
	} else if (!rc) {
		idx->merge_error = 0;
	}
}

static void merge_policy_loop(cairn_tlindex *idx, int *rc_out)
{
	bool did;
	int rc;

	pthread_mutex_lock(&idx->mlock);
	do
		rc = merge_once(idx, false, &did);
	while (!rc && did && !atomic_load(&idx->cancel));
	pthread_mutex_unlock(&idx->mlock);
	*rc_out = rc;
}

static void *merger_main(void *arg)
{
	cairn_tlindex *idx = arg;

	pthread_mutex_lock(&idx->wlock);
	for (;;) {
		int rc;

		while (!idx->stop && !idx->merge_wanted)
			pthread_cond_wait(&idx->mcond, &idx->wlock);
		if (idx->stop)
			break;
		idx->merge_wanted = false;
		pthread_mutex_unlock(&idx->wlock);
		merge_policy_loop(idx, &rc);
		pthread_mutex_lock(&idx->wlock);
		note_merge_error(idx, rc);
		pthread_cond_broadcast(&idx->wcond);
	}
	pthread_mutex_unlock(&idx->wlock);
	return NULL;
}

/* After a write: wake the merge thread (call with wlock held). */
static void kick(cairn_tlindex *idx)
{
	idx->merge_wanted = true;
	pthread_cond_signal(&idx->mcond);
}

/* After a write, without wlock: the inline merges. */
static void merge_inline(cairn_tlindex *idx)
{
	int rc;

	if (!idx->opts.inline_merge)
		return;
	merge_policy_loop(idx, &rc);
	pthread_mutex_lock(&idx->wlock);
	note_merge_error(idx, rc);
	pthread_mutex_unlock(&idx->wlock);
}

int cairn_tlindex_merge(cairn_tlindex *idx)
{
	int rc;

	if (!idx)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: merge: no index");
	if ((rc = writable(idx)))
		return rc;
	merge_policy_loop(idx, &rc);
	return rc;
}

int cairn_tlindex_compact(cairn_tlindex *idx)
{
	bool did;
	int rc;

	if (!idx)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: no index");
	if (idx->opts.read_only)
		return writable(idx);
	pthread_mutex_lock(&idx->mlock);
	rc = merge_once(idx, true, &did);
	pthread_mutex_unlock(&idx->mlock);
	return rc;
}

/* A snapshot of the store clones this directory file by file: a merge
 * committing meanwhile would unlink runs the cloned MANIFEST lists. mlock
 * is held for the whole of a merge, so once pause has had it, none runs,
 * and the next one sees `paused` and does nothing. */
int cairn_tlindex_pause(cairn_tlindex *idx, const struct timespec *deadline)
{
	int e;

	pthread_mutex_lock(&idx->wlock);
	idx->paused++;
	pthread_mutex_unlock(&idx->wlock);
	atomic_store(&idx->cancel, true);
	e = deadline ? pthread_mutex_timedlock(&idx->mlock, deadline)
		     : pthread_mutex_lock(&idx->mlock);
	atomic_store(&idx->cancel, false);
	if (e) {
		pthread_mutex_lock(&idx->wlock);
		idx->paused--;
		pthread_mutex_unlock(&idx->wlock);
		return cairn_error_set(CAIRN_ECANCELED, "tlindex %s: a merge did not stop in time: %s",
				       idx->dir, strerror(e));
	}
	pthread_mutex_unlock(&idx->mlock);
	return 0;
}

void cairn_tlindex_resume(cairn_tlindex *idx)
{
	pthread_mutex_lock(&idx->wlock);
	if (idx->paused && !--idx->paused && idx->merger_running)
		kick(idx); /* the merge canceled or put off by the pause */
	pthread_mutex_unlock(&idx->wlock);
}

/* ------------------------------------------------------------------ add */

typedef struct {
	cairn_tlindex *idx;
	size_t max;              /* records per run */
	tl_rec *recs, *scratch;
	size_t n, cap, scratch_cap;
	tl_shard_count *tab;     /* the shards of the records in recs */
	size_t ntab, tabcap;
	tl_run **pending;        /* runs written, not yet in the manifest */
	size_t npending, pendcap;
	uint32_t shard;          /* the shard being added */
	uint64_t shard_n;
	uint64_t total;
	size_t hint;             /* records expected, when known */
} builder;

static int tab_push(builder *b, uint32_t shard)
{
	if (b->ntab == b->tabcap) {
		size_t cap = b->tabcap ? b->tabcap * 2 : 16;
		tl_shard_count *t = cairn_realloc(b->tab, cap * sizeof(*t));

		if (!t)
			return CAIRN_ENOMEM;
		b->tab = t;
		b->tabcap = cap;
	}
	b->tab[b->ntab].shard = shard;
	b->tab[b->ntab].zero = 0;
	b->tab[b->ntab].count = 0;
	b->ntab++;
	return 0;
}

/* Sorts the buffered records and writes them as a pending run. */
static int flush_run(builder *b)
{
	cairn_tlindex *idx = b->idx;
	tl_writer *w = NULL;
	tl_run *r;
	uint64_t number, seq;
	unsigned bloom_bits;
	int rc;

	if (b->n == 0 && b->ntab == 0)
		return 0;
	if (b->npending == b->pendcap) {
		size_t cap = b->pendcap ? b->pendcap * 2 : 4;
		tl_run **p = cairn_realloc(b->pending, cap * sizeof(*p));

		if (!p)
			return CAIRN_ENOMEM;
		b->pending = p;
		b->pendcap = cap;
	}
	if (b->scratch_cap < b->n) {
		cairn_free(b->scratch);
		b->scratch = cairn_malloc(b->n * sizeof(*b->scratch));
		b->scratch_cap = b->scratch ? b->n : 0;
		if (!b->scratch)
			return CAIRN_ENOMEM;
	}
	cairn_tlindex__sort(b->recs, b->n, b->scratch);
	qsort(b->tab, b->ntab, sizeof(*b->tab), shard_cmp);
	pthread_mutex_lock(&idx->wlock);
	number = idx->next_run++;
	seq = ++idx->seq;
	bloom_bits = b->n > largest_count(idx->cur) ? 0 : idx->opts.bloom_bits;
	pthread_mutex_unlock(&idx->wlock);
	if ((rc = cairn_tlindex__writer_open(&w, idx->dir, number, seq, !idx->opts.no_sync, b->n,
					     bloom_bits)))
		return rc;
	rc = cairn_tlindex__writer_add(w, b->recs, b->n);
	if (!rc)
		rc = cairn_tlindex__writer_finish(w, b->tab, b->ntab);
	pthread_mutex_lock(&idx->wlock);
	if (rc && cairn_tlindex__writer_crashed(w))
		idx->crashed = idx->failed = true;
	if (!rc)
		rc = hook(idx, "run-synced");
	pthread_mutex_unlock(&idx->wlock);
	cairn_tlindex__writer_free(w, rc != 0);
	if (rc)
		return rc;
	if ((rc = cairn_tlindex__run_open(&r, idx->dir, number, seq, b->n))) {
		char path[PATH_MAX];

		if (!cairn_tlindex__run_path(path, idx->dir, number))
			unlink(path);
		return rc;
	}
	b->pending[b->npending++] = r;
	b->n = 0;
	b->ntab = 0;
	return 0;
}

static int begin_shard(builder *b, uint32_t shard)
{
	b->shard = shard;
	b->shard_n = 0;
	return 0;
}

static int push_entry(builder *b, const cairn_tlindex_entry *e)
{
	int rc;

	if (check_mh(e->mh, e->mh_len))
		return cairn_error_set(CAIRN_EINVAL,
				       "tlindex %s: shard %u: entry %llu is not a multihash",
				       b->idx->dir, b->shard, (unsigned long long)b->shard_n);
	if (b->n == b->cap) {
		if (b->cap == b->max) {
			if ((rc = flush_run(b)))
				return rc;
		} else {
			size_t cap = b->cap ? b->cap * 2 : b->hint ? b->hint : 1024;
			tl_rec *p;

			if (cap > b->max)
				cap = b->max;
			if (!(p = cairn_realloc(b->recs, cap * sizeof(*p))))
				return CAIRN_ENOMEM;
			b->recs = p;
			b->cap = cap;
		}
	}
	if ((b->ntab == 0 || b->tab[b->ntab - 1].shard != b->shard) && (rc = tab_push(b, b->shard)))
		return rc;
	b->tab[b->ntab - 1].count++;
	b->recs[b->n].key = cairn_tlindex__hash(e->mh, e->mh_len, 0);
	b->recs[b->n].shard = b->shard;
	b->recs[b->n].size = e->size;
	b->recs[b->n].offset = e->offset;
	b->n++;
	b->shard_n++;
	b->total++;
	return 0;
}

/* A shard with no entries is still listed (count 0), so it is known. */
static int end_shard(builder *b)
{
	return b->shard_n ? 0 : tab_push(b, b->shard);
}

static void builder_free(builder *b, bool remove)
{
	for (size_t i = 0; i < b->npending; i++) {
		if (remove)
			remove_run_file(b->pending[i]);
		cairn_tlindex__run_unref(b->pending[i]);
	}
	cairn_free(b->pending);
	cairn_free(b->recs);
	cairn_free(b->scratch);
	cairn_free(b->tab);
}

/* Claims `ids` for an add: they must be neither live nor being added. Waits
 * first while there are too many runs. The sorting and writing then run
 * without wlock, so merges commit and other adds go on meanwhile. */
static int add_begin(cairn_tlindex *idx, const uint32_t *ids, size_t n)
{
	int rc;

	pthread_mutex_lock(&idx->wlock);
	while (!(rc = writable(idx)) && idx->merger_running && !idx->merge_error &&
	       idx->cur->nruns > idx->opts.max_runs) {
		kick(idx);
		pthread_cond_wait(&idx->wcond, &idx->wlock);
	}
	for (size_t i = 0; i < n && !rc; i++)
		if (map_find(&idx->live, ids[i]) || map_find(&idx->adding, ids[i]))
			rc = cairn_error_set(CAIRN_EEXISTS,
					     "tlindex %s: shard %u is already in the index",
					     idx->dir, ids[i]);
	if (!rc && !(rc = map_reserve(&idx->adding, n)))
		for (size_t i = 0; i < n; i++)
			map_add(&idx->adding, ids[i], 0);
	pthread_mutex_unlock(&idx->wlock);
	return rc;
}

static void builder_init(builder *b, cairn_tlindex *idx, uint64_t hint)
{
	memset(b, 0, sizeof(*b));
	b->idx = idx;
	b->max = idx->opts.sort_budget / TL_REC;
	if (b->max < TL_PER_PAGE)
		b->max = TL_PER_PAGE;
	b->hint = hint < b->max ? (size_t)hint : b->max;
}

/* Lists the pending runs in the manifest and the shards as live (wlock). */
static int add_commit(cairn_tlindex *idx, builder *b, const uint32_t *ids, const uint64_t *counts,
		      size_t nids)
{
	tl_version *cur = idx->cur;
	tl_run **runs;
	int rc;

	if ((rc = writable(idx)) || (rc = map_reserve(&idx->live, nids)))
		return rc;
	runs = cairn_malloc((cur->nruns + b->npending) * sizeof(*runs) + 1);
	if (!runs)
		return CAIRN_ENOMEM;
	memcpy(runs, cur->runs, cur->nruns * sizeof(*runs));
	memcpy(runs + cur->nruns, b->pending, b->npending * sizeof(*runs));
	rc = commit(idx, runs, cur->nruns + b->npending, cur->tombs, cur->ntombs,
		    idx->entries + b->total, idx->live.len + nids);
	cairn_free(runs);
	if (rc)
		return rc;
	for (size_t i = 0; i < nids; i++)
		map_add(&idx->live, ids[i], counts[i]);
	idx->entries += b->total;
	return 0;
}

/* Ends an add begun by add_begin: writes the last run, commits (unless `rc`
 * says the add already failed), releases the ids, cleans up. */
static int add_end(cairn_tlindex *idx, builder *b, const uint32_t *ids, const uint64_t *counts,
		   size_t nids, int rc)
{
	if (!rc)
		rc = flush_run(b);
	pthread_mutex_lock(&idx->wlock);
	if (!rc)
		rc = add_commit(idx, b, ids, counts, nids);
	for (size_t i = 0; i < nids; i++) {
		map_slot *s = map_find(&idx->adding, ids[i]);

		if (s)
			map_del(&idx->adding, s);
	}
	/* After a failure the pending runs go, unless the manifest may list
	 * them (a failure after its rename) or a simulated crash left them. */
	builder_free(b, rc && !idx->failed);
	if (!rc)
		kick(idx);
	pthread_mutex_unlock(&idx->wlock);
	if (!rc)
		merge_inline(idx);
	return rc;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int cairn_tlindex_add_batch(cairn_tlindex *idx, const cairn_tlindex_shard *shards, size_t count)
{
	uint32_t *ids = NULL;
	uint64_t *counts = NULL, total = 0;
	builder b;
	int rc = 0;

	if (!idx || (count && !shards))
		return cairn_error_set(CAIRN_EINVAL, "tlindex: add: no index or no shards");
	if (count == 0)
		return 0;
	for (size_t i = 0; i < count; i++) {
		if (shards[i].count && !shards[i].entries)
			return cairn_error_set(CAIRN_EINVAL, "tlindex %s: shard %u: no entries array",
					       idx->dir, shards[i].id);
		total += shards[i].count;
	}
	ids = cairn_malloc(count * sizeof(*ids));
	counts = cairn_malloc(count * sizeof(*counts));
	if (!ids || !counts) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++)
		ids[i] = shards[i].id;
	qsort(ids, count, sizeof(*ids), u32_cmp);
	for (size_t i = 1; i < count; i++)
		if (ids[i] == ids[i - 1]) {
			rc = cairn_error_set(CAIRN_EINVAL, "tlindex %s: shard %u twice in one batch",
					     idx->dir, ids[i]);
			goto out;
		}
	for (size_t i = 0; i < count; i++) {
		ids[i] = shards[i].id;
		counts[i] = shards[i].count;
	}
	if ((rc = add_begin(idx, ids, count)))
		goto out;
	builder_init(&b, idx, total);
	for (size_t i = 0; i < count && !rc; i++) {
		begin_shard(&b, shards[i].id);
		for (size_t j = 0; j < shards[i].count && !rc; j++)
			rc = push_entry(&b, &shards[i].entries[j]);
		if (!rc)
			rc = end_shard(&b);
	}
	rc = add_end(idx, &b, ids, counts, count, rc);
out:
	cairn_free(ids);
	cairn_free(counts);
	return rc;
}

int cairn_tlindex_add_shard(cairn_tlindex *idx, uint32_t shard, const cairn_tlindex_entry *entries,
			    size_t count)
{
	cairn_tlindex_shard s = {shard, entries, count};

	return cairn_tlindex_add_batch(idx, &s, 1);
}

int cairn_tlindex_add_shard_iter(cairn_tlindex *idx, uint32_t shard, cairn_tlindex_next_fn next,
				 void *payload)
{
	cairn_tlindex_entry e;
	uint64_t n;
	builder b;
	int rc;

	if (!idx || !next)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: add: no index or no iterator");
	if ((rc = add_begin(idx, &shard, 1)))
		return rc;
	builder_init(&b, idx, 0);
	begin_shard(&b, shard);
	for (;;) {
		memset(&e, 0, sizeof(e));
		rc = next(&e, payload);
		if (rc <= 0)
			break;
		if ((rc = push_entry(&b, &e)))
			break;
	}
	if (!rc)
		rc = end_shard(&b);
	n = b.shard_n;
	return add_end(idx, &b, &shard, &n, 1, rc);
}

/* --------------------------------------------------------------- remove */

int cairn_tlindex_remove_shard(cairn_tlindex *idx, uint32_t shard)
{
	tl_version *cur;
	tl_tomb *tombs;
	map_slot *s;
	size_t n = 0;
	bool placed = false;
	int rc;

	if (!idx)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: remove: no index");
	pthread_mutex_lock(&idx->wlock);
	if ((rc = writable(idx)))
		goto out;
	if (!(s = map_find(&idx->live, shard))) {
		rc = cairn_error_set(CAIRN_ENOTFOUND, "tlindex %s: shard %u is not in the index",
				     idx->dir, shard);
		goto out;
	}
	cur = idx->cur;
	tombs = cairn_malloc((cur->ntombs + 1) * sizeof(*tombs));
	if (!tombs) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cur->ntombs; i++) {
		if (!placed && cur->tombs[i].shard >= shard) {
			tombs[n].shard = shard;
			tombs[n].zero = 0;
			tombs[n++].seq = idx->seq + 1;
			placed = true;
			if (cur->tombs[i].shard == shard)
				continue; /* the newer one replaces it */
		}
		tombs[n++] = cur->tombs[i];
	}
	if (!placed) {
		tombs[n].shard = shard;
		tombs[n].zero = 0;
		tombs[n++].seq = idx->seq + 1;
	}
	idx->seq++;
	rc = commit(idx, cur->runs, cur->nruns, tombs, n, idx->entries - s->count,
		    idx->live.len - 1);
	cairn_free(tombs);
	if (!rc) {
		idx->entries -= s->count;
		map_del(&idx->live, s);
		kick(idx);
	}
out:
	pthread_mutex_unlock(&idx->wlock);
	if (!rc)
		merge_inline(idx);
	return rc;
}

/* ---------------------------------------------------------------- reads */

int cairn_tlindex_lookup_key(cairn_tlindex_hit *hits, size_t cap, cairn_tlindex *idx,
			     uint64_t key)
{
	const tl_version *v;
	atomic_long *section;
	uint64_t total = 0;

	if (!idx || (cap && !hits))
		return cairn_error_set(CAIRN_EINVAL, "tlindex: lookup: no index or no hits array");
	section = read_enter(idx);
	v = atomic_load(&idx->cur);
	for (size_t ri = 0; ri < v->nruns; ri++) {
		const tl_run *r = v->runs[ri];

		const uint32_t *bloom = atomic_load_explicit(&r->bloom, memory_order_acquire);

		if (key < r->min_key || key > r->max_key ||
		    (bloom && !tl_bloom_has(bloom, r->bloom_blocks, key)))
			continue;
		for (uint64_t i = cairn_tlindex__run_lower_bound(r, key); i < r->count; i++) {
			const tl_rec *rec = tl_run_rec(r, i);

			if (rec->key != key)
				break;
			if (v->filtered[ri] && is_dead(v->tombs, v->ntombs, rec->shard, r))
				continue;
			if (total < cap) {
				hits[total].shard = rec->shard;
				hits[total].size = rec->size;
				hits[total].offset = rec->offset;
			}
			total++;
		}
	}
	read_exit(section);
	return total > INT_MAX ? INT_MAX : (int)total;
}

int cairn_tlindex_lookup(cairn_tlindex_hit *hits, size_t cap, cairn_tlindex *idx,
			 const uint8_t *mh, size_t mh_len)
{
	if (check_mh(mh, mh_len))
		return cairn_error_set(CAIRN_EINVAL, "tlindex: lookup: not a multihash");
	return cairn_tlindex_lookup_key(hits, cap, idx, cairn_tlindex__hash(mh, mh_len, 0));
}

int cairn_tlindex_has_shard(cairn_tlindex *idx, uint32_t shard)
{
	tl_version *v;
	int found = 0;

	if (!idx)
		return 0;
	v = version_acquire(idx);
	for (size_t i = 0; i < v->nruns && !found; i++)
		if (cairn_tlindex__run_has_shard(v->runs[i], shard, NULL) &&
		    !is_dead(v->tombs, v->ntombs, shard, v->runs[i]))
			found = 1;
	version_release(v);
	return found;
}

void cairn_tlindex_stats_get(cairn_tlindex_stats *out, cairn_tlindex *idx)
{
	tl_version *v;

	memset(out, 0, sizeof(*out));
	if (!idx)
		return;
	v = version_acquire(idx);
	out->entries = v->entries;
	out->shards = v->shards;
	out->runs = v->nruns;
	out->records = v->records;
	out->bytes = v->bytes;
	out->tombstones = v->ntombs;
	version_release(v);
	out->merges = atomic_load(&idx->merges);
	out->merged_records = atomic_load(&idx->merged_records);
}

int cairn_tlindex_verify(cairn_tlindex *idx)
{
	tl_version *v;
	int rc = 0;

	if (!idx)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: verify: no index");
	v = version_acquire(idx);
	for (size_t i = 0; i < v->nruns && !rc; i++)
		rc = cairn_tlindex__run_check(v->runs[i]);
	version_release(v);
	return rc;
}

int cairn_tlindex_shard_foreach(cairn_tlindex *idx, uint32_t shard, cairn_tlindex_entry_fn fn,
				void *payload)
{
	tl_version *v;
	bool found = false;
	int rc = 0;

	if (!idx || !fn)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: shard_foreach: no index or no callback");
	v = version_acquire(idx);
	for (size_t i = 0; i < v->nruns && !rc; i++) {
		const tl_run *r = v->runs[i];
		uint64_t c;
		tl_cursor cur;

		if (!cairn_tlindex__run_has_shard(r, shard, &c) ||
		    is_dead(v->tombs, v->ntombs, shard, r))
			continue;
		found = true;
		if (!c)
			continue;
		for (rc = cairn_tlindex__cursor_start(&cur, r); !rc && !cur.done;
		     rc = cairn_tlindex__cursor_next(&cur)) {
			if (cur.rec.shard != shard)
				continue;
			cairn_tlindex_hit hit = {cur.rec.shard, cur.rec.size, cur.rec.offset};

			if ((rc = fn(cur.rec.key, &hit, payload)))
				break;
		}
	}
	version_release(v);
	if (!rc && !found)
		rc = cairn_error_set(CAIRN_ENOTFOUND, "tlindex %s: shard %u is not in the index",
				     idx->dir, shard);
	return rc;
}

/* ----------------------------------------------------------- open/close */

static int take_lock(cairn_tlindex *idx)
{
	char path[PATH_MAX];
	bool ro = idx->opts.read_only;

	snprintf(path, sizeof(path), "%s/LOCK", idx->dir);
	idx->lock_fd = open(path, ro ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (idx->lock_fd < 0) {
		if (ro && errno == ENOENT)
			return 0; /* made by a writer; a reader of a copy may lack it */
		return cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: open: %s",
				       path, strerror(errno));
	}
	while (flock(idx->lock_fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK)
			return cairn_error_set(CAIRN_EEXISTS,
					       "tlindex %s: in use by another %s (LOCK is held)",
					       idx->dir, ro ? "writer" : "writer or reader");
		return cairn_error_set(CAIRN_EIO, "%s: flock: %s", path, strerror(errno));
	}
	return 0;
}

static bool run_name(const char *name, uint64_t *number)
{
	unsigned long long n;
	char tail[8];

	if (strlen(name) != 20 || sscanf(name, "%16llx%7s", &n, tail) != 2 || strcmp(tail, ".run"))
		return false;
	for (int i = 0; i < 16; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	*number = n;
	return true;
}

/* Removes run files the manifest does not list and a temporary manifest:
 * what a crash left. */
static void remove_orphans(cairn_tlindex *idx, const manifest *m)
{
	DIR *d = opendir(idx->dir);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d))) {
		uint64_t number;
		bool listed = false;

		if (!strcmp(e->d_name, "MANIFEST.tmp")) {
			snprintf(path, sizeof(path), "%s/%s", idx->dir, e->d_name);
			unlink(path);
			continue;
		}
		if (!run_name(e->d_name, &number))
			continue;
		for (size_t i = 0; i < m->nruns && !listed; i++)
			listed = ld64(m->runs + i * MANIFEST_RUN) == number;
		if (!listed) {
			snprintf(path, sizeof(path), "%s/%s", idx->dir, e->d_name);
			cairn_log(CAIRN_LOG_INFO, "tlindex %s: removing %s, left by a crash",
				  idx->dir, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

static bool has_run_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t number;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d)))
		found = run_name(e->d_name, &number);
	closedir(d);
	return found;
}

static int load(cairn_tlindex *idx)
{
	char path[PATH_MAX];
	cairn_buf buf = CAIRN_BUF_INIT;
	manifest m;
	tl_run **runs = NULL;
	size_t nopen = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/MANIFEST", idx->dir);
	rc = cairn_file_read_all(&buf, path, MANIFEST_MAX);
	if (rc == CAIRN_ENOTFOUND && !idx->opts.read_only) {
		/* A new index: an empty manifest; but never over run files, which
		 * an empty manifest would make orphans to delete. */
		bool renamed;

		if (has_run_files(idx->dir)) {
			rc = cairn_error_set(CAIRN_ECORRUPT,
				"%s: at byte 0: missing, but the directory holds run files; restore it or empty the directory",
				path);
			goto done;
		}
		cairn_error_clear();
		idx->next_run = 1;
		idx->seq = 0;
		if ((rc = manifest_encode(&buf, 1, 0, NULL, 0, NULL, 0)) ||
		    (rc = manifest_write(idx, buf.data, buf.len, &renamed)))
			goto done;
	} else if (rc == CAIRN_ENOTFOUND) {
		rc = cairn_error_set(CAIRN_ENOTFOUND, "tlindex %s: no index here (no MANIFEST)",
				     idx->dir);
		goto done;
	} else if (rc) {
		goto done;
	}
	if ((rc = manifest_decode(&m, buf.data, buf.len, path)))
		goto done;
	idx->next_run = m.next_run;
	idx->seq = m.seq;
	runs = cairn_calloc(m.nruns ? m.nruns : 1, sizeof(*runs));
	if (!runs) {
		rc = CAIRN_ENOMEM;
		goto free_m;
	}
	for (; nopen < m.nruns; nopen++) {
		const uint8_t *e = m.runs + nopen * MANIFEST_RUN;

		rc = cairn_tlindex__run_open(&runs[nopen], idx->dir, ld64(e), ld64(e + 8),
					     ld64(e + 16));
		if (rc == CAIRN_ENOTFOUND)
			rc = cairn_error_set(CAIRN_ECORRUPT,
				"%s: at byte %llu: lists run %016llx, which is missing (%s)", path,
				(unsigned long long)(MANIFEST_HEAD + nopen * MANIFEST_RUN),
				(unsigned long long)ld64(e), cairn_error_last());
		if (rc)
			goto free_m;
	}
	/* The live shards: listed by a run no tombstone hides. */
	for (size_t i = 0; i < m.nruns; i++) {
		const tl_run *r = runs[i];

		if ((rc = map_reserve(&idx->live, (size_t)r->nshards)))
			goto free_m;
		for (uint64_t s = 0; s < r->nshards; s++) {
			if (is_dead(m.tombs, m.ntombs, r->shards[s].shard, r))
				continue;
			map_add(&idx->live, r->shards[s].shard, r->shards[s].count);
			idx->entries += r->shards[s].count;
		}
	}
	if (!idx->opts.read_only)
		remove_orphans(idx, &m);
	{
		tl_version *v;

		rc = version_new(&v, runs, m.nruns, m.tombs, m.ntombs, idx->entries, idx->live.len,
				 buf.len);
		if (!rc)
			atomic_store(&idx->cur, v);
	}
free_m:
	for (size_t i = 0; i < nopen; i++)
		cairn_tlindex__run_unref(runs[i]);
	cairn_free(runs);
	cairn_free(m.tombs);
done:
	cairn_buf_free(&buf);
	return rc;
}

int cairn_tlindex_open(cairn_tlindex **out, const char *dir, const cairn_tlindex_options *opts)
{
	cairn_tlindex_options defaults = CAIRN_TLINDEX_OPTIONS_INIT;
	cairn_tlindex *idx;
	size_t len;
	int rc;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: open: no output");
	*out = NULL;
	if (!dir || !*dir)
		return cairn_error_set(CAIRN_EINVAL, "tlindex: open: no directory");
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len > PATH_MAX - 32)
		return cairn_error_set(CAIRN_EINVAL, "tlindex %s: path too long", dir);
	idx = cairn_calloc(1, sizeof(*idx));
	if (!idx)
		return CAIRN_ENOMEM;
	idx->lock_fd = -1;
	idx->opts = opts ? *opts : defaults;
	if (!idx->opts.merge_ratio)
		idx->opts.merge_ratio = 1;
	if (!idx->opts.max_runs)
		idx->opts.max_runs = defaults.max_runs;
	if (!idx->opts.sort_budget)
		idx->opts.sort_budget = defaults.sort_budget;
	if (idx->opts.bloom_bits > 64)
		idx->opts.bloom_bits = 64;
	atomic_init(&idx->cur, NULL);
	atomic_init(&idx->epoch, 0);
	for (unsigned i = 0; i < READ_STRIPES; i++) {
		atomic_init(&idx->stripes[i].n[0], 0);
		atomic_init(&idx->stripes[i].n[1], 0);
	}
	pthread_mutex_init(&idx->wlock, NULL);
	pthread_mutex_init(&idx->mlock, NULL);
	pthread_cond_init(&idx->wcond, NULL);
	pthread_cond_init(&idx->mcond, NULL);
	atomic_init(&idx->cancel, false);
	atomic_init(&idx->merges, 0);
	atomic_init(&idx->merged_records, 0);
	idx->dir = cairn_strndup(dir, len);
	if (!idx->dir) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	if (!idx->opts.read_only && mkdir(idx->dir, 0755) < 0 && errno != EEXIST) {
		rc = cairn_error_set(CAIRN_EIO, "tlindex %s: mkdir: %s", idx->dir, strerror(errno));
		goto fail;
	}
	if ((rc = take_lock(idx)) || (rc = load(idx)))
		goto fail;
	if (!idx->opts.read_only && !idx->opts.inline_merge) {
		if (pthread_create(&idx->merger, NULL, merger_main, idx)) {
			rc = cairn_error_set(CAIRN_ERROR, "tlindex %s: cannot start the merge thread",
					     idx->dir);
			goto fail;
		}
		idx->merger_running = true;
		pthread_mutex_lock(&idx->wlock);
		kick(idx); /* a merge the last session did not get to */
		pthread_mutex_unlock(&idx->wlock);
	}
	*out = idx;
	return 0;
fail:
	cairn_tlindex_close(idx);
	return rc;
}

void cairn_tlindex_close(cairn_tlindex *idx)
{
	if (!idx)
		return;
	if (idx->merger_running) {
		atomic_store(&idx->cancel, true);
		pthread_mutex_lock(&idx->wlock);
		idx->stop = true;
		pthread_cond_signal(&idx->mcond);
		pthread_mutex_unlock(&idx->wlock);
		pthread_join(idx->merger, NULL);
	}
	version_release(idx->cur);
	cairn_free(idx->live.slots);
	cairn_free(idx->adding.slots);
	if (idx->lock_fd >= 0)
		close(idx->lock_fd);
	pthread_mutex_destroy(&idx->wlock);
	pthread_mutex_destroy(&idx->mlock);
	pthread_cond_destroy(&idx->wcond);
	pthread_cond_destroy(&idx->mcond);
	cairn_free(idx->dir);
	cairn_free(idx);
}
