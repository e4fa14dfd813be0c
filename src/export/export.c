/* export.c: the parallel DAG export: worker threads reading blocks and
 * scanning their links, an exact seen-set, one writer thread into a CAR.
 *
 * Design notes.
 *
 * Each block once. A CID is claimed (an atomic check-and-add: two bits per
 * position where the store numbers its blocks, else the seen-set,
 * seenset.c; see claim_cids) when a link to it is found, before it is queued;
 * only the thread whose add found it new queues it. So every CID is queued
 * once, read from the store once by the worker that takes it, and that
 * worker's bytes travel to the writer in a batch: the block read to scan its
 * links is the block written, and nothing is read twice (Lotus read a block
 * again for each parent that reached it before its check). Roots are claimed
 * the same way, so a root given twice, or below another root, is written once.
 * Identity CIDs are not claimed, read or written: their links (an inlined
 * DAG-CBOR block may have some) are scanned from the CID itself. A block's
 * links are claimed together once its scan is over (they wait on the
 * worker's own stack, seen by no one else): the seen-set's tables are far
 * larger than the caches, and asking for all their lines before reading
 * any makes the misses overlap, which was half of the export's time. The
 * reads are grouped the same way: a worker takes up to GROUP items off its
 * stack and gets them with one cairn_store_get_many (the CAR store then
 * overlaps their index and data misses, and hands out mapped bytes), and
 * the group's links are claimed together.
 *
 * Work distribution, and why a full FIFO cannot deadlock. There is one
 * shared bounded FIFO (a ring of `queue_len` CIDs) and, per worker, a local
 * stack. A worker pushes the links it claims onto its own stack and works
 * from it depth first; it gives work to the FIFO only when it can do so
 * without waiting: when another worker is idle (half of its stack, the
 * oldest half, which is nearest the roots and so holds the most work), or
 * when its stack passes LOCAL_SOFT (as much as the FIFO has room for). It
 * takes from the FIFO only when its stack is empty. So a push never blocks:
 * a worker that finds the FIFO full keeps the work and does it itself, and
 * no cycle of waits can form. Memory for the stacks is bounded by the DAG's
 * depth times its fan-out (depth first), plus the FIFO.
 *
 * Termination. `busy` counts the workers not waiting for the FIFO. A worker
 * whose stack is empty takes the FIFO's lock; if the FIFO is empty and it
 * is the only busy worker, no work exists anywhere (every other worker is
 * waiting with an empty stack, and only a busy worker can create work), so
 * it sets `done` and wakes the rest. Otherwise it waits, and is woken by any
 * push into the FIFO.
 *
 * A depth limit needs shortest paths: a block first met through a long path
 * must not have its links cut when a shorter path exists. With a limit the
 * walk goes level by level: every claimed link goes into the FIFO (which
 * then grows; its bound would otherwise drop work), a worker takes only
 * items of the current level, and the level moves on when no worker is busy
 * with it. Items enter the FIFO in level order (all of level n are pushed
 * while level n-1 is processed), so the head is always the next level.
 *
 * A links callback (opts.links) takes the place of the codec filter and the
 * scan: it names the links to follow and gives each a tag, which travels
 * with the item to the callback of that link's block (the ranged chain
 * export, chain.c, tags headers apart from what hangs below them). A block
 * missing from the store is offered to it too, and it may let it be.
 *
 * Writing. Workers fill batches (up to 1024 blocks or 1 MiB). Into a CAR,
 * a batch holds the CAR's sections (each block after its length and CID),
 * and the worker that filled it writes it, under car_lock, with one write
 * (cairn_car_writer_put_sections, trusted: the store answered for the
 * bytes): the bytes leave from the cache of the core that read them. (A
 * writer thread copying them once more into its own buffer, read from
 * the other core's, cost 6% of a 10M-block export.) To a sink, batches are
 * queued to the one writer thread (each hand-off wakes it, and with 256
 * blocks a batch the wake-ups were a quarter of the export's system time);
 * there are 2 x workers + 2 batches, so a slow sink makes workers wait for
 * a free batch (bounded memory).
 *
 * Cancellation and failure. Any thread that fails records the first error
 * and sets `stop`; cairn_export_cancel only sets `cancel` (so it is safe in
 * a signal handler). Every loop checks both at each block; every wait is on
 * a condition variable that stop broadcasts; the thread in cairn_export_run
 * waits in 20 ms slices, turning `cancel` into a stop with broadcasts and
 * calling progress. Then it joins every thread and frees everything. The
 * CAR is written to "<path>.partial" and only renamed to `path` after
 * finish fsynced it; any failure or cancellation unlinks the partial file.
 * So the output is a complete CAR at `path` or nothing: a CARv1 header has
 * no field to say "incomplete" that readers would heed, and a file that
 * readers would take for whole is worse than none.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/export.h"

#define DEFAULT_QUEUE 4096
#define DEFAULT_MEMORY (256ull << 20) /* as the seen-set's */
#define LOCAL_SOFT 4096
#define TAKE_MAX 64
#define BATCH_BLOCKS 1024
#define BATCH_BYTES (1u << 20)
#define TICK_NS 20000000L
#define SPIN_CHECKS 4000    /* about 20-50 us of pause instructions */

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

typedef struct item {
	uint64_t pos;           /* its block's position, when claimed by one */
	uint32_t depth;
	uint32_t tag;           /* for the links callback; the roots' is 0 */
	cairn_cid cid;          /* last: item_copy copies only its used part */
} item;

/* Items are copied with their CID's used bytes only (a CID is a tenth of
 * its struct): every link found passes through here. */
static inline void item_copy(item *dst, const item *src)
{
	memcpy(dst, src, offsetof(item, cid) + offsetof(cairn_cid, bytes) + src->cid.len);
}

/* Blocks on their way to the writer. For a CAR, `data` holds them as the
 * CAR's sections (each block after its length and CID), written with one
 * write; for a sink, the blocks alone. */
typedef struct batch {
	struct batch *next;
	size_t n;
	cairn_cid cids[BATCH_BLOCKS];
	size_t sections[BATCH_BLOCKS]; /* where each block's section starts in `data` */
	size_t blocks[BATCH_BLOCKS];   /* and where its block does */
	cairn_buf data;
} batch;

/* Each on cache lines of its own (see the allocation): a worker writes its
 * stack's length and its counters for every link, and a line shared with
 * the next worker's would bounce between the cores (an export of 10 M
 * blocks took 9% longer with the array at one heap address than another). */
typedef struct worker {
	_Alignas(64) cairn_export *ex;
	pthread_t thread;
	bool started;
	item *stack;
	size_t len, cap;
	batch *batch;           /* being filled; NULL until the first block */
	cairn_buf block;
	uint32_t depth;         /* of the links being scanned */
	uint32_t tag;           /* theirs when no links callback sets one */
	_Atomic uint64_t reads, links, identity, by_position;
} worker;

/* A CID's class: what a position (one digest) does not say of it. */
typedef struct {
	uint64_t codec, mh_code;
	uint8_t version;
} cid_class;

#define MAX_CLASSES 255

struct cairn_export {
	cairn_store *store;
	cairn_export_options opts;
	cairn_seenset *seen;
	/* Claims by position, when the store numbers its blocks (see
	 * claim_cids): two bits per position, 0 or the class of the CID that
	 * claimed it. NULL: every claim is in the seen-set. */
	uint64_t *owner;
	uint64_t npositions;
	pthread_mutex_t class_lock;
	_Atomic unsigned nclasses;
	cid_class classes[MAX_CLASSES];
	bool ran;
	bool depth_mode;

	_Atomic bool cancel;    /* asked for: set by cairn_export_cancel only */
	_Atomic bool stop;      /* every thread stops at its next check */
	pthread_mutex_t err_lock;
	int err_code;
	char err_msg[1024];

	/* The FIFO, under qlock. */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	item *ring;
	size_t qcap, qhead, qlen;   /* qcap a power of two */
	unsigned busy;
	_Atomic unsigned waiting;
	_Atomic uint64_t wakes;     /* counts every wake-up of qcond (see take) */
	uint32_t level;
	bool done;

	/* The writer's queue, under wlock. */
	pthread_mutex_t wlock;
	pthread_cond_t wfree;       /* a batch came back */
	pthread_cond_t wfull;       /* a batch was queued, or the workers ended */
	pthread_cond_t wdone;       /* the writer ended */
	batch *free_list, *full_head, *full_tail;
	size_t nbatches;
	unsigned workers_left;
	bool writer_done;
	pthread_mutex_t get_lock;   /* serialize_gets */
	pthread_mutex_t car_lock;   /* a worker writing its batch to car */

	cairn_car_writer *car;
	_Atomic uint64_t blocks, bytes;
	unsigned nworkers;
	worker *workers;
	uint64_t started_ns;
};

static bool stopped(cairn_export *ex)
{
	return atomic_load_explicit(&ex->stop, memory_order_relaxed) ||
	       atomic_load_explicit(&ex->cancel, memory_order_relaxed);
}

/* Records the first failure (the message is per thread, so it is copied)
 * and stops every thread: broadcasts wake whoever waits. */
static void fail(cairn_export *ex, int code)
{
	pthread_mutex_lock(&ex->err_lock);
	if (!ex->err_code) {
		ex->err_code = code;
		snprintf(ex->err_msg, sizeof(ex->err_msg), "%s",
			 code == CAIRN_ECANCELED ? "export: cancelled" : cairn_error_last());
	}
	pthread_mutex_unlock(&ex->err_lock);
	atomic_store(&ex->stop, true);
	pthread_mutex_lock(&ex->qlock);
	atomic_fetch_add(&ex->wakes, 1);
	pthread_cond_broadcast(&ex->qcond);
	pthread_mutex_unlock(&ex->qlock);
	pthread_mutex_lock(&ex->wlock);
	pthread_cond_broadcast(&ex->wfree);
	pthread_cond_broadcast(&ex->wfull);
	pthread_cond_broadcast(&ex->wdone);
	pthread_mutex_unlock(&ex->wlock);
}

/* A worker that meets a stop returns this; the error is already recorded
 * (or it is the cancel flag, which run turns into one). */
static int halted(cairn_export *ex)
{
	if (atomic_load(&ex->cancel) && !atomic_load(&ex->stop))
		fail(ex, CAIRN_ECANCELED);
	return CAIRN_ECANCELED;
}

/* ------------------------------------------------------------ the FIFO */

static int ring_grow(cairn_export *ex)
{
	size_t cap = ex->qcap * 2;
	item *ring = cairn_malloc(cap * sizeof(item));

	if (!ring)
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < ex->qlen; i++)
		ring[i] = ex->ring[(ex->qhead + i) & (ex->qcap - 1)];
	cairn_free(ex->ring);
	ex->ring = ring;
	ex->qcap = cap;
	ex->qhead = 0;
	return 0;
}

/* Appends up to `n` items and returns how many fit (all of them, growing
 * the ring, when `grow`). Called with qlock held. */
static size_t ring_push(cairn_export *ex, const item *v, size_t n, bool grow, int *rc)
{
	size_t k = 0;

	*rc = 0;
	while (k < n) {
		if (ex->qlen == ex->qcap && (!grow || (*rc = ring_grow(ex))))
			break;
		item_copy(&ex->ring[(ex->qhead + ex->qlen) & (ex->qcap - 1)], &v[k++]);
		ex->qlen++;
	}
	return k;
}

/* Moves the `n` oldest items of the worker's stack into the FIFO, as many
 * as fit without waiting. */
static int give(worker *w, size_t n, bool grow)
{
	cairn_export *ex = w->ex;
	size_t k;
	int rc;

	pthread_mutex_lock(&ex->qlock);
	k = ring_push(ex, w->stack, n, grow, &rc);
	if (k && atomic_load_explicit(&ex->waiting, memory_order_relaxed)) {
		atomic_fetch_add(&ex->wakes, 1);
		pthread_cond_broadcast(&ex->qcond);
	}
	pthread_mutex_unlock(&ex->qlock);
	if (k) {
		memmove(w->stack, w->stack + k, (w->len - k) * sizeof(item));
		w->len -= k;
	}
	return rc;
}

/* Moves the items above `from` on the worker's stack into the FIFO, which
 * grows to take them all (depth mode). */
static int give_top(worker *w, size_t from)
{
	cairn_export *ex = w->ex;
	int rc;

	pthread_mutex_lock(&ex->qlock);
	ring_push(ex, w->stack + from, w->len - from, true, &rc);
	if (atomic_load_explicit(&ex->waiting, memory_order_relaxed)) {
		atomic_fetch_add(&ex->wakes, 1);
		pthread_cond_broadcast(&ex->qcond);
	}
	pthread_mutex_unlock(&ex->qlock);
	w->len = from;
	return rc;
}

static void queue_batch(worker *w);

/* Waits (qlock held, counted as waiting) for a wake-up of qcond. On a DAG
 * whose links are mostly seen already, a worker's stack runs dry often and
 * another refills it within microseconds: sleeping and being woken cost
 * more than that, so it spins first, lock released, while no wake-up came.
 * Only a worker about to sleep hands its batch to the writer thread (which
 * must not wait on a batch held by a sleeping worker): queued at every dry
 * stack, tiny batches made the writer's lock the export's busiest, with a
 * sixth of its time in futex calls. */
static void wait_for_work(worker *w)
{
	cairn_export *ex = w->ex;
	uint64_t seen = atomic_load(&ex->wakes);

	pthread_mutex_unlock(&ex->qlock);
	for (unsigned i = 0; i < SPIN_CHECKS && atomic_load_explicit(&ex->wakes,
			memory_order_relaxed) == seen && !stopped(ex); i++)
		spin_pause();
	if (atomic_load(&ex->wakes) == seen && !ex->car)
		queue_batch(w);
	pthread_mutex_lock(&ex->qlock);
	if (atomic_load(&ex->wakes) == seen && !stopped(ex))
		pthread_cond_wait(&ex->qcond, &ex->qlock);
}

/* Fills the empty stack from the FIFO: 0 with work, 1 when the whole
 * export is done, or a negative code when stopped. */
static int take(worker *w)
{
	cairn_export *ex = w->ex;

	pthread_mutex_lock(&ex->qlock);
	for (;;) {
		size_t k = 0, want;

		if (stopped(ex)) {
			pthread_mutex_unlock(&ex->qlock);
			return halted(ex);
		}
		if (ex->done) {
			pthread_mutex_unlock(&ex->qlock);
			return 1;
		}
		if (ex->qlen && ex->depth_mode && ex->ring[ex->qhead].depth != ex->level &&
		    ex->busy == 1)
			ex->level = ex->ring[ex->qhead].depth; /* the last level is finished */
		if (ex->qlen && (!ex->depth_mode || ex->ring[ex->qhead].depth == ex->level)) {
			/* A share, not everything, so the others get some too. */
			want = ex->qlen / ex->nworkers;
			want = want < 1 ? 1 : want > TAKE_MAX ? TAKE_MAX : want;
			while (k < want && ex->qlen &&
			       (!ex->depth_mode || ex->ring[ex->qhead].depth == ex->level)) {
				item_copy(&w->stack[w->len++], &ex->ring[ex->qhead]);
				ex->qhead = (ex->qhead + 1) & (ex->qcap - 1);
				ex->qlen--;
				k++;
			}
			if (ex->qlen && atomic_load_explicit(&ex->waiting, memory_order_relaxed)) {
				atomic_fetch_add(&ex->wakes, 1);
				pthread_cond_signal(&ex->qcond);
			}
			pthread_mutex_unlock(&ex->qlock);
			/* Popped oldest first; the stack works from its end. */
			for (size_t a = w->len - k, b = w->len; a + 1 < b; a++, b--) {
				item t = w->stack[a];
				w->stack[a] = w->stack[b - 1];
				w->stack[b - 1] = t;
			}
			return 0;
		}
		if (!ex->qlen && ex->busy == 1) {
			ex->done = true;
			atomic_fetch_add(&ex->wakes, 1);
			pthread_cond_broadcast(&ex->qcond);
			pthread_mutex_unlock(&ex->qlock);
			return 1;
		}
		/* Another worker is busy: it may yet make work, or finish the
		 * level. Whoever goes idle last, or pushes, wakes us. */
		ex->busy--;
		atomic_fetch_add(&ex->waiting, 1);
		wait_for_work(w);
		atomic_fetch_sub(&ex->waiting, 1);
		ex->busy++;
	}
}

/* --------------------------------------------------------- the writer */

/* Hands the worker's batch, if it holds blocks, to the writer. */
static void queue_batch(worker *w)
{
	cairn_export *ex = w->ex;
	batch *b = w->batch;

	if (!b || !b->n)
		return;
	pthread_mutex_lock(&ex->wlock);
	b->next = NULL;
	if (ex->full_tail)
		ex->full_tail->next = b;
	else
		ex->full_head = b;
	ex->full_tail = b;
	pthread_cond_signal(&ex->wfull);
	pthread_mutex_unlock(&ex->wlock);
	w->batch = NULL;
}

static int write_batch(cairn_export *ex, const batch *b);

/* Writes the worker's batch into the CAR and empties it. */
static int write_own(worker *w)
{
	cairn_export *ex = w->ex;
	batch *b = w->batch;
	int rc;

	if (!b || !b->n)
		return 0;
	pthread_mutex_lock(&ex->car_lock);
	rc = write_batch(ex, b);
	pthread_mutex_unlock(&ex->car_lock);
	b->n = 0;
	cairn_buf_clear(&b->data);
	return rc;
}

/* Sends the worker's batch on, and gives it an empty one: the same one,
 * written, for a CAR; for a sink, a free one, waiting while all are in
 * use: this is where a slow sink holds the workers back. */
static int flush_batch(worker *w)
{
	cairn_export *ex = w->ex;
	batch *b;

	if (ex->car && w->batch)
		return write_own(w);
	queue_batch(w);
	b = w->batch;
	pthread_mutex_lock(&ex->wlock);
	while (!b && !ex->free_list && !stopped(ex))
		pthread_cond_wait(&ex->wfree, &ex->wlock);
	if (!b && ex->free_list) {
		b = ex->free_list;
		ex->free_list = b->next;
	}
	pthread_mutex_unlock(&ex->wlock);
	if (!b)
		return halted(ex);
	w->batch = b;
	return 0;
}

static int write_batch(cairn_export *ex, const batch *b)
{
	uint64_t bytes = 0;
	int rc = 0;

	for (size_t i = 0; i < b->n && !rc; i++) {
		size_t end = i + 1 < b->n ? b->sections[i + 1] : b->data.len;

		if (!ex->car &&
		    (rc = ex->opts.sink(&b->cids[i], b->data.data + b->blocks[i], end - b->blocks[i],
					ex->opts.payload)) > 0)
			rc = cairn_error_set(CAIRN_ERROR, "export: the block sink stopped (%d)", rc);
		bytes += end - b->blocks[i];
	}
	if (!rc && ex->car)
		rc = cairn_car_writer_put_sections(ex->car, b->data.data, b->data.len, b->cids,
						   b->sections, b->n);
	if (!rc) {
		atomic_fetch_add_explicit(&ex->blocks, b->n, memory_order_relaxed);
		atomic_fetch_add_explicit(&ex->bytes, bytes, memory_order_relaxed);
	}
	return rc;
}

static void *writer_main(void *arg)
{
	cairn_export *ex = arg;
	int rc;

	pthread_mutex_lock(&ex->wlock);
	for (;;) {
		batch *b;

		while (!ex->full_head && ex->workers_left && !stopped(ex))
			pthread_cond_wait(&ex->wfull, &ex->wlock);
		if (stopped(ex)) {
			/* A cancel seen first here must still wake the workers. */
			pthread_mutex_unlock(&ex->wlock);
			halted(ex);
			pthread_mutex_lock(&ex->wlock);
			break;
		}
		if (!ex->full_head)
			break; /* every worker ended and all is written */
		b = ex->full_head;
		if (!(ex->full_head = b->next))
			ex->full_tail = NULL;
		pthread_mutex_unlock(&ex->wlock);
		rc = write_batch(ex, b);
		pthread_mutex_lock(&ex->wlock);
		b->n = 0;
		cairn_buf_clear(&b->data);
		b->next = ex->free_list;
		ex->free_list = b;
		pthread_cond_signal(&ex->wfree);
		if (rc) {
			pthread_mutex_unlock(&ex->wlock);
			fail(ex, rc);
			pthread_mutex_lock(&ex->wlock);
			break;
		}
	}
	ex->writer_done = true;
	pthread_cond_broadcast(&ex->wdone);
	pthread_mutex_unlock(&ex->wlock);
	return NULL;
}

/* ---------------------------------------------------------- the workers */

static bool follows(const cairn_export *ex, uint64_t codec)
{
	if (!ex->opts.codecs)
		return codec == CAIRN_CODEC_DAG_PB || codec == CAIRN_CODEC_DAG_CBOR ||
		       codec == CAIRN_CODEC_DAG_JSON;
	for (size_t i = 0; i < ex->opts.ncodecs; i++)
		if (ex->opts.codecs[i] == codec)
			return true;
	return false;
}

/* Adds one to a worker's counter. Only its worker writes it (progress
 * reads it from another thread), so a load and a store do, without the
 * locked add an atomic increment costs once per link. */
static inline void count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* The next item of the stack, its place made; its CID is the caller's to
 * set, and only then is it pushed (w->len++). */
static item *stack_next(worker *w)
{
	item *it;

	if (w->len == w->cap) {
		size_t cap = w->cap * 2;
		item *p = cairn_realloc(w->stack, cap * sizeof(item));

		if (!p)
			return NULL;
		w->stack = p;
		w->cap = cap;
	}
	it = &w->stack[w->len];
	it->pos = CAIRN_STORE_NO_POSITION;
	it->depth = w->depth;
	it->tag = w->tag;
	return it;
}

/* A link found by the scan goes on the stack at once, unclaimed; claim()
 * settles all of a block's links together when the scan is over. */
static int on_link(const cairn_cid *link, void *payload)
{
	worker *w = payload;
	item *it = stack_next(w);

	if (!it)
		return CAIRN_ENOMEM;
	cairn_cid_copy(&it->cid, link);
	w->len++;
	count(&w->links);
	return 0;
}

/* on_link for a scan that gives the CIDs' bytes: decoded straight onto
 * the stack. */
static int on_link_bytes(const uint8_t *cid, size_t len, void *payload)
{
	worker *w = payload;
	item *it = stack_next(w);
	int rc;

	if (!it)
		return CAIRN_ENOMEM;
	if ((rc = cairn_cid_decode(&it->cid, NULL, cid, len)))
		return rc;
	w->len++;
	count(&w->links);
	return 0;
}

#define CLAIM_GROUP 64

/* The class number (1 to MAX_CLASSES) of `cid`, added on first sight; 0
 * when the table is full (such CIDs are claimed in the seen-set). A
 * number, once given, is never changed, so a CID always has the same one
 * or always none. */
static uint8_t class_of(cairn_export *ex, const cairn_cid *cid)
{
	unsigned n = atomic_load_explicit(&ex->nclasses, memory_order_acquire);
	uint8_t found = 0;

	for (unsigned i = 0; i < n; i++) {
		const cid_class *c = &ex->classes[i];

		if (c->codec == cid->codec && c->mh_code == cid->mh_code &&
		    c->version == cid->version)
			return (uint8_t)(i + 1);
	}
	pthread_mutex_lock(&ex->class_lock);
	n = atomic_load_explicit(&ex->nclasses, memory_order_relaxed);
	for (unsigned i = 0; i < n && !found; i++) {
		const cid_class *c = &ex->classes[i];

		if (c->codec == cid->codec && c->mh_code == cid->mh_code &&
		    c->version == cid->version)
			found = (uint8_t)(i + 1);
	}
	if (!found && n < MAX_CLASSES) {
		ex->classes[n].codec = cid->codec;
		ex->classes[n].mh_code = cid->mh_code;
		ex->classes[n].version = cid->version;
		atomic_store_explicit(&ex->nclasses, n + 1, memory_order_release);
		found = (uint8_t)(n + 1);
	}
	pthread_mutex_unlock(&ex->class_lock);
	return found;
}

/* Classes 1 to OWNER_CLASSES fit in a position's two bits. */
#define OWNER_CLASSES 3

/* Claims position `pos` for class `c` (1 to OWNER_CLASSES): 1 if this call
 * set it, 0 if it held `c` already, -1 if it holds another class. */
static int owner_claim(cairn_export *ex, uint64_t pos, uint8_t c)
{
	uint64_t *word = &ex->owner[pos / 32], shift = (pos % 32) * 2;
	uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);

	for (;;) {
		unsigned cur = (unsigned)(v >> shift) & 3;

		if (cur)
			return cur == c ? 0 : -1;
		if (__atomic_compare_exchange_n(word, &v, v | (uint64_t)c << shift, true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return 1;
	}
}

/* Claims `k` CIDs (none identity): fresh[i] is 1 for each one this call
 * claimed, 0 for one claimed before; pos[i] is its position, if the store
 * gave one (the read then skips the lookup). Where the store numbers
 * blocks, a CID is claimed by its position: two bits per position, set
 * once (by a compare-and-swap) to the class of the first CID claimed
 * there, of the first three classes met (a DAG has one to three: dag-pb
 * and raw, dag-cbor and raw...). The position names the digest, the class
 * the rest of the CID, so bits holding this CID's class mean this very
 * CID was claimed. A CID the store does not number, of a fourth class, or
 * whose position another class holds (the same block linked as CIDv0 and
 * CIDv1, say), goes to the seen-set; bits never change once set, so each
 * CID always takes the same path and is claimed once. This takes the
 * seen-set's hash table, its growth and its locks out of the common case:
 * a quarter of a byte per block instead of 48 bytes per CID (2.5 MB for
 * 10 M blocks, near the size of a core's cache), and the index lookup
 * the read would make anyway. */
static int claim_cids(cairn_export *ex, const cairn_cid *const *cids, size_t k, uint8_t *fresh,
		      uint64_t *pos, _Atomic uint64_t *by_position)
{
	const cairn_cid *rest[CLAIM_GROUP];
	uint8_t rest_fresh[CLAIM_GROUP], at[CLAIM_GROUP];
	uint64_t claimed = 0;
	size_t m = 0;
	int rc;

	if (!ex->owner) {
		for (size_t i = 0; i < k; i++)
			pos[i] = CAIRN_STORE_NO_POSITION;
		return cairn_seenset_add_many(ex->seen, cids, k, fresh);
	}
	if ((rc = cairn_store_locate_many(ex->store, cids, k, pos)))
		return rc;
	for (size_t i = 0; i < k; i++)
		if (pos[i] < ex->npositions)
			__builtin_prefetch(&ex->owner[pos[i] / 32]);
	for (size_t i = 0; i < k; i++) {
		uint8_t c = pos[i] < ex->npositions ? class_of(ex, cids[i]) : 0;

		if (c && c <= OWNER_CLASSES && (rc = owner_claim(ex, pos[i], c)) >= 0) {
			fresh[i] = (uint8_t)rc;
			claimed += (uint64_t)rc;
			continue;
		}
		rest[m] = cids[i];
		at[m++] = (uint8_t)i;
	}
	if (claimed)
		atomic_fetch_add_explicit(by_position, claimed, memory_order_relaxed);
	if (m && (rc = cairn_seenset_add_many(ex->seen, rest, m, rest_fresh)))
		return rc;
	for (size_t j = 0; j < m; j++)
		fresh[at[j]] = rest_fresh[j];
	return 0;
}

/* Claims the links pushed above `from` in the seen-set, in one batch (its
 * cache misses overlap), and keeps on the stack, in order, only those this
 * worker claimed: each CID is claimed by one worker, once. Identity CIDs are
 * not claimed (they are never read or written) and stay. */
static int claim(worker *w, size_t from)
{
	const cairn_cid *cids[CLAIM_GROUP];
	uint64_t pos[CLAIM_GROUP];
	uint8_t fresh[CLAIM_GROUP];
	size_t at = from, kept = from;
	int rc;

	while (at < w->len) {
		size_t k = 0, end = at;

		for (; end < w->len && k < CLAIM_GROUP; end++)
			if (w->stack[end].cid.mh_code != CAIRN_MH_IDENTITY)
				cids[k++] = &w->stack[end].cid;
		if (k && (rc = claim_cids(w->ex, cids, k, fresh, pos, &w->by_position))) {
			w->len = kept; /* what is left was never claimed */
			return rc;
		}
		for (size_t i = at, j = 0; i < end; i++) {
			if (w->stack[i].cid.mh_code != CAIRN_MH_IDENTITY) {
				if (!fresh[j]) {
					j++;
					continue;
				}
				w->stack[i].pos = pos[j++];
			}
			if (kept != i)
				item_copy(&w->stack[kept], &w->stack[i]);
			kept++;
		}
		at = end;
	}
	w->len = kept;
	return 0;
}

/* The emit of a links callback: on_link with the callback's tag. */
static int emit_link(const cairn_cid *link, uint32_t tag, void *ctx)
{
	worker *w = ctx;

	w->tag = tag;
	return on_link(link, w);
}

static int block_missing(int rc, const cairn_cid *cid, cairn_store *s)
{
	char str[CAIRN_CID_MAX_STRING];

	if (rc != CAIRN_ENOTFOUND)
		return rc;
	if (cairn_cid_to_string(str, cid) < 0)
		strcpy(str, "(unprintable CID)");
	return cairn_error_set(CAIRN_ENOTFOUND, "export: block %s is not in the %s store", str,
			       cairn_store_name(s));
}

/* Takes one claimed block as the store gave it (`rc` its get's result;
 * for an identity CID, the CID's own data): hands it to the batch and
 * pushes its links, unclaimed, onto the stack. */
static int process(worker *w, const item *it, int rc, const uint8_t *data, size_t len)
{
	cairn_export *ex = w->ex;
	batch *b;

	if (it->cid.mh_code != CAIRN_MH_IDENTITY) {
		count(&w->reads);
		if (rc == CAIRN_ENOTFOUND && ex->opts.links)
			return ex->opts.links(&it->cid, it->tag, NULL, 0, emit_link, w,
					      ex->opts.links_payload) ?
				       block_missing(rc, &it->cid, ex->store) :
				       0; /* the callback lets this one be missing */
		if (rc)
			return block_missing(rc, &it->cid, ex->store);
		b = w->batch;
		if (!b || b->n == BATCH_BLOCKS || (b->n && b->data.len + len > BATCH_BYTES)) {
			if ((rc = flush_batch(w)))
				return rc;
			b = w->batch;
		}
		b->sections[b->n] = b->data.len;
		if (ex->car)
			cairn_car_section_head(&b->data, &it->cid, len);
		b->blocks[b->n] = b->data.len;
		if ((rc = cairn_buf_append(&b->data, data, len)))
			return rc;
		cairn_cid_copy(&b->cids[b->n++], &it->cid);
	} else {
		count(&w->identity);
	}
	if (ex->opts.max_depth >= 0 && it->depth >= (uint32_t)ex->opts.max_depth)
		return 0;
	w->depth = it->depth + 1;
	w->tag = it->tag;
	if (ex->opts.links) {
		rc = ex->opts.links(&it->cid, it->tag, data, len, emit_link, w,
				    ex->opts.links_payload);
		if (rc > 0)
			return cairn_error_set(CAIRN_ERROR, "export: the links callback stopped (%d)", rc);
	} else if (!follows(ex, it->cid.codec))
		return 0;
	else
		rc = cairn_block_link_bytes(it->cid.codec, data, len, on_link_bytes, w);
	if (rc && rc != CAIRN_ENOMEM && rc != CAIRN_EIO) {
		char str[CAIRN_CID_MAX_STRING];

		if (cairn_cid_to_string(str, &it->cid) < 0)
			strcpy(str, "(unprintable CID)");
		return cairn_error_prefix("export: block %s: ", str);
	}
	return rc;
}

/* A worker takes up to GROUP items off its stack at a time and gets their
 * blocks in one cairn_store_get_many, whose lookups overlap their cache
 * misses; the links of the whole group are claimed together after. */
#define GROUP 16

typedef struct {
	worker *w;
	const item *items;
} group_ctx;

static int on_block(size_t i, int rc, const uint8_t *data, size_t len, void *payload)
{
	group_ctx *g = payload;

	return process(g->w, &g->items[i], rc, data, len);
}

/* Gets and scans the blocks of `items` (none an identity CID), then claims
 * the links they pushed above `from`. */
static int process_group(worker *w, const item *items, size_t n, size_t from)
{
	cairn_export *ex = w->ex;
	const cairn_cid *cids[GROUP];
	uint64_t pos[GROUP];
	group_ctx g = {w, items};
	int rc;

	for (size_t i = 0; i < n; i++) {
		cids[i] = &items[i].cid;
		pos[i] = items[i].pos;
	}
	if (ex->opts.serialize_gets)
		pthread_mutex_lock(&ex->get_lock);
	rc = cairn_store_get_many_at(ex->store, cids, pos, n, &w->block, on_block, &g);
	if (ex->opts.serialize_gets)
		pthread_mutex_unlock(&ex->get_lock);
	return rc ? rc : claim(w, from);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	cairn_export *ex = w->ex;
	int rc = 0;

	for (;;) {
		item group[GROUP];
		size_t mark, n = 0;

		if (stopped(ex)) {
			rc = halted(ex);
			break;
		}
		if (!w->len && (rc = take(w)))
			break;
		/* The top of the stack, up to an identity CID (that is scanned
		 * alone, from itself), kept in stack order: scanned bottom first,
		 * the top item's links end on top, and the walk stays depth
		 * first. (Taken top first, a chain's next header was expanded
		 * with the state root beside it, and every epoch left its tree's
		 * pending links behind on the stack: 150 MiB more on the bench's
		 * 111,442-epoch DAG with one worker.) */
		while (n < GROUP && n < w->len &&
		       w->stack[w->len - 1 - n].cid.mh_code != CAIRN_MH_IDENTITY)
			n++;
		w->len -= n;
		for (size_t i = 0; i < n; i++)
			item_copy(&group[i], &w->stack[w->len + i]);
		if (!n) {
			group[n++] = w->stack[--w->len];
			mark = w->len;
			rc = process(w, &group[0], 0, group[0].cid.bytes + group[0].cid.digest_off,
				     group[0].cid.digest_len);
			rc = rc ? rc : claim(w, mark);
		} else {
			mark = w->len;
			rc = process_group(w, group, n, mark);
		}
		if (rc)
			break;
		if (ex->depth_mode) {
			/* Level by level: the links just claimed go to the FIFO,
			 * behind this level; the items of this level taken from
			 * it stay here. */
			if (w->len > mark && (rc = give_top(w, mark)))
				break;
		} else if (w->len > 1 && atomic_load_explicit(&ex->waiting, memory_order_relaxed)) {
			give(w, w->len / 2, false);
		} else if (w->len > LOCAL_SOFT) {
			give(w, w->len - LOCAL_SOFT, false);
		}
	}
	if (rc < 0) {
		if (!stopped(ex))
			fail(ex, rc);
	} else if (ex->car) {
		if ((rc = write_own(w)) < 0 && !stopped(ex))
			fail(ex, rc); /* done: the last blocks go out */
	} else {
		queue_batch(w);
	}
	pthread_mutex_lock(&ex->wlock);
	if (w->batch) {
		w->batch->n = 0;
		cairn_buf_clear(&w->batch->data);
		w->batch->next = ex->free_list;
		ex->free_list = w->batch;
		w->batch = NULL;
	}
	if (--ex->workers_left == 0)
		pthread_cond_broadcast(&ex->wfull);
	pthread_mutex_unlock(&ex->wlock);
	return NULL;
}

/* ------------------------------------------------------------- the API */

int cairn_export_new(cairn_export **out, cairn_store *store, const cairn_export_options *opts)
{
	static const cairn_export_options defaults = CAIRN_EXPORT_OPTIONS_INIT;
	cairn_export *ex;
	uint64_t memory;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (!store)
		return cairn_error_set(CAIRN_EINVAL, "export: no store");
	if (opts->car_version != 1 && opts->car_version != 2)
		return cairn_error_set(CAIRN_EINVAL, "export: CAR version must be 1 or 2, not %u",
				       opts->car_version);
	if (opts->workers > 256)
		return cairn_error_set(CAIRN_EINVAL, "export: %u workers is too many (256 at most)",
				       opts->workers);
	if (opts->max_depth < -1)
		return cairn_error_set(CAIRN_EINVAL, "export: max_depth %d (-1 for no limit)",
				       (int)opts->max_depth);
	for (size_t i = 0; opts->codecs && i < opts->ncodecs; i++) {
		uint64_t c = opts->codecs[i];

		if (c != CAIRN_CODEC_DAG_PB && c != CAIRN_CODEC_DAG_CBOR &&
		    c != CAIRN_CODEC_DAG_JSON && c != CAIRN_CODEC_RAW)
			return cairn_error_set(CAIRN_EUNSUPPORTED,
					       "export: cannot follow links of codec 0x%llx",
					       (unsigned long long)c);
	}
	if (!(ex = cairn_calloc(1, sizeof(*ex))))
		return CAIRN_ENOMEM;
	ex->store = store;
	ex->opts = *opts;
	if (!ex->opts.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		ex->opts.workers = n > 0 ? (unsigned)(n > 256 ? 256 : n) : 1;
	}
	if (!ex->opts.queue_len)
		ex->opts.queue_len = DEFAULT_QUEUE;
	ex->depth_mode = opts->max_depth >= 0;
	ex->nworkers = ex->opts.workers;
	for (ex->qcap = 16; ex->qcap < ex->opts.queue_len && ex->qcap < (1u << 24); ex->qcap *= 2)
		;
	pthread_mutex_init(&ex->err_lock, NULL);
	pthread_mutex_init(&ex->qlock, NULL);
	pthread_cond_init(&ex->qcond, NULL);
	pthread_mutex_init(&ex->wlock, NULL);
	pthread_cond_init(&ex->wfree, NULL);
	pthread_cond_init(&ex->wfull, NULL);
	pthread_cond_init(&ex->wdone, NULL);
	pthread_mutex_init(&ex->get_lock, NULL);
	pthread_mutex_init(&ex->car_lock, NULL);
	pthread_mutex_init(&ex->class_lock, NULL);
	ex->nbatches = 2 * (size_t)ex->nworkers + 2;
	if (!(ex->ring = cairn_malloc(ex->qcap * sizeof(item))) ||
	    !(ex->workers = cairn_calloc_aligned(ex->nworkers, sizeof(worker), 64))) {
		cairn_export_free(ex);
		return CAIRN_ENOMEM;
	}
	for (size_t i = 0; i < ex->nbatches; i++) {
		batch *b = cairn_calloc(1, sizeof(*b));

		if (!b) {
			cairn_export_free(ex);
			return CAIRN_ENOMEM;
		}
		/* `next` chains the free list; `all` is rebuilt at free. */
		b->next = ex->free_list;
		ex->free_list = b;
	}
	for (unsigned i = 0; i < ex->nworkers; i++) {
		worker *w = &ex->workers[i];

		w->ex = ex;
		w->cap = TAKE_MAX * 4;
		if (!(w->stack = cairn_malloc(w->cap * sizeof(item)))) {
			cairn_export_free(ex);
			return CAIRN_ENOMEM;
		}
	}
	/* Two bits per position, out of the budget, when that is at most half. */
	memory = opts->memory ? opts->memory : DEFAULT_MEMORY;
	ex->npositions = opts->seen_by_cid ? 0 : cairn_store_positions(store);
	if (ex->npositions && (ex->npositions + 31) / 32 * 8 <= memory / 2 &&
	    (ex->owner = cairn_calloc((size_t)((ex->npositions + 31) / 32), 8)))
		memory -= (ex->npositions + 31) / 32 * 8;
	else
		ex->npositions = 0;
	cairn_error_clear();
	if ((rc = cairn_seenset_new(&ex->seen, memory, opts->spill_dir))) {
		cairn_export_free(ex);
		return rc;
	}
	*out = ex;
	return 0;
}

void cairn_export_cancel(cairn_export *ex)
{
	if (ex)
		atomic_store(&ex->cancel, true);
}

static void stats_fill(cairn_export_stats *st, cairn_export *ex)
{
	cairn_seenset_stats ss;

	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < ex->nworkers; i++) {
		st->reads += atomic_load_explicit(&ex->workers[i].reads, memory_order_relaxed);
		st->links += atomic_load_explicit(&ex->workers[i].links, memory_order_relaxed);
		st->identity += atomic_load_explicit(&ex->workers[i].identity, memory_order_relaxed);
		st->by_position +=
			atomic_load_explicit(&ex->workers[i].by_position, memory_order_relaxed);
	}
	st->blocks = atomic_load_explicit(&ex->blocks, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&ex->bytes, memory_order_relaxed);
	cairn_seenset_stats_get(&ss, ex->seen);
	st->seen = ss.count + st->by_position;
	st->seen_spilled = ss.spilled;
	st->spills = ss.runs;
	st->disk_checks = ss.disk_checks;
	st->elapsed_ns = cairn_time_ns() - ex->started_ns;
}

/* Claims the roots and queues them (the ring grows for a long list). */
static int queue_roots(cairn_export *ex, const cairn_cid *roots, size_t nroots)
{
	int rc = 0;

	for (size_t i = 0; i < nroots && !rc; i++) {
		item it = {CAIRN_STORE_NO_POSITION, 0, 0, roots[i]};
		const cairn_cid *cid = &roots[i];
		uint8_t fresh = 1;

		if (cid->mh_code != CAIRN_MH_IDENTITY &&
		    ((rc = claim_cids(ex, &cid, 1, &fresh, &it.pos, &ex->workers[0].by_position)) ||
		     !fresh))
			continue;
		ring_push(ex, &it, 1, true, &rc);
	}
	return rc;
}

int cairn_export_run(cairn_export_stats *stats_out, cairn_export *ex, const cairn_cid *roots,
		     size_t nroots, const char *path)
{
	cairn_car_writer_options wopts = CAIRN_CAR_WRITER_OPTIONS_INIT;
	char *partial = NULL;
	uint64_t last;
	pthread_t writer;
	bool writer_started = false;
	size_t plen;
	int rc = 0;

	if (stats_out)
		memset(stats_out, 0, sizeof(*stats_out));
	if (!ex || (!roots && nroots))
		return cairn_error_set(CAIRN_EINVAL, "export: invalid argument");
	if (ex->ran)
		return cairn_error_set(CAIRN_EINVAL, "export: an export object runs once");
	if (!path && !ex->opts.sink)
		return cairn_error_set(CAIRN_EINVAL, "export: neither a path nor a block sink");
	ex->ran = true;
	ex->started_ns = cairn_time_ns();
	if (path) {
		plen = strlen(path);
		if (!(partial = cairn_malloc(plen + sizeof(".partial"))))
			return CAIRN_ENOMEM;
		memcpy(partial, path, plen);
		memcpy(partial + plen, ".partial", sizeof(".partial"));
		wopts.version = ex->opts.car_version;
		wopts.trusted = true;
		if ((rc = cairn_car_writer_open(&ex->car, partial, roots, nroots, &wopts))) {
			unlink(partial); /* the writer may have made it before failing */
			cairn_free(partial);
			return rc;
		}
	}
	if ((rc = queue_roots(ex, roots, nroots)))
		goto out;
	ex->busy = ex->nworkers;
	ex->workers_left = ex->nworkers;
	if (pthread_create(&writer, NULL, writer_main, ex)) {
		rc = cairn_error_set(CAIRN_ERROR, "export: cannot start the writer thread");
		goto out;
	}
	writer_started = true;
	for (unsigned i = 0; i < ex->nworkers; i++) {
		if (pthread_create(&ex->workers[i].thread, NULL, worker_main, &ex->workers[i])) {
			/* Those started see the stop; the others never count. */
			cairn_error_set(CAIRN_ERROR, "export: cannot start worker thread %u", i);
			pthread_mutex_lock(&ex->qlock);
			ex->busy -= ex->nworkers - i;
			pthread_mutex_unlock(&ex->qlock);
			pthread_mutex_lock(&ex->wlock);
			ex->workers_left -= ex->nworkers - i;
			pthread_mutex_unlock(&ex->wlock);
			fail(ex, CAIRN_ERROR);
			break;
		}
		ex->workers[i].started = true;
	}
	/* Wait for the writer, which ends last, in slices: a cancel asked
	 * from a signal handler becomes a stop here, with its broadcasts. */
	last = cairn_time_ns();
	pthread_mutex_lock(&ex->wlock);
	while (!ex->writer_done) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ex->wdone, &ex->wlock, &ts);
		if (ex->writer_done)
			break;
		pthread_mutex_unlock(&ex->wlock);
		if (atomic_load(&ex->cancel) && !atomic_load(&ex->stop))
			fail(ex, CAIRN_ECANCELED);
		if (ex->opts.progress && cairn_time_ns() - last >= 5 * (uint64_t)TICK_NS) {
			cairn_export_stats st;

			stats_fill(&st, ex);
			ex->opts.progress(&st, false, ex->opts.payload);
			last = cairn_time_ns();
		}
		pthread_mutex_lock(&ex->wlock);
	}
	pthread_mutex_unlock(&ex->wlock);
	if (atomic_load(&ex->cancel) && !atomic_load(&ex->stop))
		fail(ex, CAIRN_ECANCELED);
out:
	for (unsigned i = 0; i < ex->nworkers; i++)
		if (ex->workers[i].started)
			pthread_join(ex->workers[i].thread, NULL);
	if (writer_started)
		pthread_join(writer, NULL);
	/* A cancel that came after the last block still cancels. */
	if (!rc && atomic_load(&ex->cancel) && !ex->err_code)
		fail(ex, CAIRN_ECANCELED);
	if (!rc && ex->err_code)
		rc = cairn_error_set(ex->err_code, "%s", ex->err_msg);
	if (!rc && ex->car && (rc = cairn_car_writer_finish(ex->car)) == 0) {
		if (rename(partial, path) < 0) {
			rc = cairn_error_set(CAIRN_EIO, "export: rename %s to %s: %s", partial, path,
					     strerror(errno));
		} else {
			char *slash = strrchr(path, '/');
			char dir[4096];

			if (!slash)
				snprintf(dir, sizeof(dir), ".");
			else
				snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) + (slash == path),
					 path);
			rc = cairn_file_fsync_dir(dir);
		}
	}
	if (ex->car) {
		cairn_car_writer_free(ex->car);
		ex->car = NULL;
		if (rc)
			unlink(partial);
	}
	cairn_free(partial);
	if (stats_out || ex->opts.progress) {
		cairn_export_stats st;

		stats_fill(&st, ex);
		if (ex->opts.progress)
			ex->opts.progress(&st, true, ex->opts.payload);
		if (stats_out)
			*stats_out = st;
	}
	return rc;
}

void cairn_export_free(cairn_export *ex)
{
	if (!ex)
		return;
	for (unsigned i = 0; ex->workers && i < ex->nworkers; i++) {
		worker *w = &ex->workers[i];

		cairn_free(w->stack);
		cairn_buf_free(&w->block);
		if (w->batch) {
			w->batch->next = ex->free_list;
			ex->free_list = w->batch;
		}
	}
	/* Every batch is back on the free list or left on the full queue
	 * by a stop. */
	for (batch *b = ex->full_head, *next; b; b = next) {
		next = b->next;
		b->next = ex->free_list;
		ex->free_list = b;
	}
	while (ex->free_list) {
		batch *b = ex->free_list;

		ex->free_list = b->next;
		cairn_buf_free(&b->data);
		cairn_free(b);
	}
	cairn_free(ex->workers);
	cairn_free(ex->ring);
	cairn_seenset_free(ex->seen);
	cairn_free(ex->owner);
	pthread_mutex_destroy(&ex->class_lock);
	cairn_car_writer_free(ex->car);
	pthread_mutex_destroy(&ex->err_lock);
	pthread_mutex_destroy(&ex->qlock);
	pthread_cond_destroy(&ex->qcond);
	pthread_mutex_destroy(&ex->wlock);
	pthread_cond_destroy(&ex->wfree);
	pthread_cond_destroy(&ex->wfull);
	pthread_cond_destroy(&ex->wdone);
	pthread_mutex_destroy(&ex->get_lock);
	pthread_mutex_destroy(&ex->car_lock);
	cairn_free(ex);
}
