/* verify.c: hashing every block of a CAR against its CID on all cores; the
 * caller's thread parses the sections and hashes too.
 *
 * The caller preads the payload in chunks of CHUNK bytes, each into a buffer
 * of its own, and queues every chunk, with the sections it holds, as a job;
 * a section too large to sit in a chunk is queued by its offset, and the
 * thread that hashes it preads it into a buffer of its own. The threads take
 * jobs oldest first; the caller takes one whenever all buffers are out. So
 * no more than `threads` threads ever run, and blocks are hashed from a few
 * MiB of buffers that stay in the caches: hashing 16 MiB batches after
 * reading them ran at two thirds of the speed here, the bytes having left
 * the caches in between.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "car_i.h"

/* One pread, and one job: some thousand small sections. */
#define CHUNK (256u << 10)
/* After a section read on its own, the next chunk reads this much first:
 * its head, without the bytes of another large block. */
#define HEAD_READ (4u << 10)
/* A section that runs past its chunk's end is read on its own from this
 * block size on; a smaller one starts the next chunk (read again, at most
 * this much per chunk). */
#define BIG (64u << 10)
/* Sections per chunk at most; tiny sections end a chunk early. */
#define CHUNK_ITEMS 4096u
#define MAX_THREADS 64

typedef struct {
	uint32_t sec;       /* where the section starts in the chunk */
	uint32_t block;     /* where its block starts (past the chunk if `own`);
			     * the CID's digest ends there */
	uint64_t len;       /* block bytes */
	uint64_t mh_code;
	uint8_t cid_len;
	uint8_t digest_len;
	bool own;           /* read on its own by the thread hashing it */
} item;

typedef struct job {
	struct job *next;   /* in the queue, or the free list */
	uint8_t *buf;       /* CHUNK bytes */
	uint64_t start;     /* file offset of buf[0] */
	size_t have;        /* bytes read into buf */
	bool eof;           /* no more to read: the payload's or the file's end */
	item *items;        /* CHUNK_ITEMS */
	size_t nitems;
	uint64_t seq;       /* sections before its first */
	uint64_t bytes;     /* block bytes before its first */
} job;

typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t work;  /* a job was queued, or stopping */
	pthread_cond_t done;  /* a job was finished */
	job *head, *tail;     /* queued, oldest first */
	job *free;
	size_t running;       /* queued or being hashed */
	bool stop;
	/* The first failure in file order among the jobs: */
	uint64_t bad_seq;     /* UINT64_MAX if none */
	uint64_t bad_bytes;
	int bad_rc;
	char bad_msg[512];
	const cairn_car_reader *r;
} shared;

/* A thread's buffer for the sections read on their own. */
typedef struct {
	uint8_t *p;
	size_t cap;
} own_buf;

/* Keeps a failure if it comes first in file order. The message is per
 * thread: it is kept for the caller's thread. */
static void fail(shared *sh, const job *j, size_t i, int rc, const char *msg)
{
	uint64_t bytes = j->bytes;

	for (size_t k = 0; k < i; k++)
		bytes += j->items[k].len;
	pthread_mutex_lock(&sh->lock);
	if (j->seq + i < sh->bad_seq) {
		sh->bad_seq = j->seq + i;
		sh->bad_bytes = bytes;
		sh->bad_rc = rc;
		snprintf(sh->bad_msg, sizeof(sh->bad_msg), "%s", msg);
	}
	pthread_mutex_unlock(&sh->lock);
}

/* Preads a section's block into the thread's buffer, as the reader would
 * have read it; 0 or a failure already recorded. */
static int read_own(shared *sh, const job *j, size_t i, own_buf *ob)
{
	const cairn_car_reader *r = sh->r;
	const item *it = &j->items[i];
	uint64_t at = j->start + it->block;
	size_t n = (size_t)it->len, got = 0;
	char msg[512];
	int rc;

	if (n > ob->cap) {
		uint8_t *p = cairn_realloc(ob->p, n);

		if (!p) {
			fail(sh, j, i, CAIRN_ENOMEM, "out of memory");
			return CAIRN_ENOMEM;
		}
		ob->p = p;
		ob->cap = n;
	}
	if ((rc = cairn_car__read_at(r, ob->p, n, at, &got))) {
		snprintf(msg, sizeof(msg), "%s", cairn_error_last());
		fail(sh, j, i, rc, msg);
		return rc;
	}
	if (got < n) {
		/* The file shrank under us. */
		snprintf(msg, sizeof(msg),
			 "%s: at byte %llu: unexpected end of file in a block (%zu of %zu bytes)",
			 r->name, (unsigned long long)(at + got), got, n);
		fail(sh, j, i, CAIRN_ECORRUPT, msg);
		return CAIRN_ECORRUPT;
	}
	return 0;
}

static void run(shared *sh, const job *j, own_buf *ob)
{
	for (size_t i = 0; i < j->nitems; i++) {
		const item *it = &j->items[i];
		const uint8_t *cid_end = j->buf + it->block, *block = cid_end;
		uint8_t digest[CAIRN_MH_DIGEST_MAX];
		char msg[512];
		cairn_cid cid;
		size_t used;
		int len, rc;

		if (it->own) {
			if (read_own(sh, j, i, ob))
				return;
			block = ob->p;
		}
		len = cairn_multihash_sum(digest, it->mh_code, block, (size_t)it->len);
		if (len == it->digest_len && !memcmp(digest, cid_end - len, (size_t)len))
			continue;
		/* Failed (or a hash cairn does not have): the CID is decoded again
		 * so that cairn_cid_verify words the error as the reader does. */
		rc = cairn_cid_decode(&cid, &used, cid_end - it->cid_len, it->cid_len);
		if (!rc)
			rc = cairn_cid_verify(&cid, block, (size_t)it->len);
		if (rc) {
			snprintf(msg, sizeof(msg), "%s: section at byte %llu: %s", sh->r->name,
				 (unsigned long long)(j->start + it->sec), cairn_error_last());
			fail(sh, j, i, rc, msg);
			return;
		}
	}
}

/* Under the lock: the oldest job, if any; jobs after a failure are only
 * returned to the free list, nothing in them could come first. */
static job *take(shared *sh)
{
	while (sh->head) {
		job *j = sh->head;

		if (!(sh->head = j->next))
			sh->tail = NULL;
		if (j->seq <= sh->bad_seq)
			return j;
		j->next = sh->free;
		sh->free = j;
		sh->running--;
		pthread_cond_signal(&sh->done);
	}
	return NULL;
}

/* Runs a job taken under the lock, and returns with the lock held. */
static void run_locked(shared *sh, job *j, own_buf *ob)
{
	pthread_mutex_unlock(&sh->lock);
	run(sh, j, ob);
	pthread_mutex_lock(&sh->lock);
	j->next = sh->free;
	sh->free = j;
	sh->running--;
	pthread_cond_signal(&sh->done);
}

static void worker(void *arg)
{
	shared *sh = arg;
	own_buf ob = {NULL, 0};
	job *j;

	pthread_mutex_lock(&sh->lock);
	while (!sh->stop) {
		if ((j = take(sh)))
			run_locked(sh, j, &ob);
		else
			pthread_cond_wait(&sh->work, &sh->lock);
	}
	pthread_mutex_unlock(&sh->lock);
	cairn_free(ob.p);
}

/* Reads into the chunk until it holds `upto` bytes, or the payload or the
 * file ends (j->eof). */
static int load(const cairn_car_reader *r, job *j, size_t upto)
{
	while (j->have < upto && !j->eof) {
		uint64_t at = j->start + j->have;
		size_t want = upto - j->have, k;
		int rc;

		if (want >= r->data_end - at) {
			want = (size_t)(r->data_end - at);
			if (!want) {
				j->eof = true;
				break;
			}
		}
		if ((rc = cairn_car__read_at(r, j->buf + j->have, want, at, &k)))
			return rc;
		if (k < want)
			j->eof = true; /* the file shrank under us: short */
		j->have += k;
	}
	return 0;
}

/* Parses sections from the reader's position into the chunk `j` until it
 * is full, or the data ends (*more false). Section by section, as
 * cairn_car_reader_next does, with its messages; `fn` is called for each.
 * *own is set when the chunk ended with a section read on its own; *walked
 * is where the last section ends. */
static int fill(job *j, cairn_car_reader *r, bool *more, bool *own, uint64_t *bytes,
		uint64_t *walked, cairn_car_section_fn fn, void *payload)
{
	size_t off = 0;
	int rc;

	j->start = r->pos;
	j->have = 0;
	j->eof = false;
	j->nitems = 0;
	if ((rc = load(r, j, *own ? HEAD_READ : CHUNK)))
		return rc;
	*own = false;
	while (j->nitems < CHUNK_ITEMS) {
		uint64_t at = j->start + off;
		size_t head, h, avail, end;
		cairn_car_section sec;
		item *it;

		if (at >= r->data_end) {
			*more = false;
			break;
		}
		h = r->data_end - at < CAIRN_CAR__SECTION_HEAD_MAX ? (size_t)(r->data_end - at)
								     : CAIRN_CAR__SECTION_HEAD_MAX;
		if (off + h > j->have) {
			if (off + h > CHUNK)
				break; /* the next chunk starts with it */
			if ((rc = load(r, j, CHUNK)))
				return rc;
		}
		avail = j->have - off < h ? j->have - off : h;
		if (avail && j->buf[off] == 0 && r->opts.zero_length_as_eof) {
			r->pos = r->data_end;
			*more = false;
			break;
		}
		if ((rc = cairn_car__parse_head(&sec, &head, j->buf + off, avail, at, r->data_offset,
						r->data_end, r->name, &r->opts)))
			return rc;
		end = off + head;
		if (sec.block_len > CHUNK - end) {
			if (sec.block_len < BIG)
				break; /* small: the next chunk starts with it */
			*own = true;
		} else {
			end += (size_t)sec.block_len;
			if (end > j->have && (rc = load(r, j, CHUNK)))
				return rc;
			if (end > j->have) {
				size_t got = j->have - off - head;

				return cairn_error_set(CAIRN_ECORRUPT,
					"%s: at byte %llu: unexpected end of file in %s (%zu of %zu bytes)",
					r->name, (unsigned long long)(sec.block_offset + got), "a block", got,
					(size_t)sec.block_len);
			}
		}
		if (fn && (rc = fn(&sec, payload)))
			return rc;
		it = &j->items[j->nitems++];
		it->sec = (uint32_t)off;
		it->block = (uint32_t)(off + head);
		it->len = sec.block_len;
		it->mh_code = sec.cid.mh_code;
		it->cid_len = (uint8_t)sec.cid_len;
		it->digest_len = sec.cid.digest_len;
		it->own = *own;
		*bytes += sec.block_len;
		*walked = r->pos = sec.block_offset + sec.block_len;
		if (*own)
			break;
		off = end;
	}
	return 0;
}

int cairn_car_verify(cairn_car_stats *out, cairn_car_reader *r, unsigned threads,
		     cairn_progress *progress, cairn_car_section_fn fn, void *payload)
{
	job *jobs = NULL;
	own_buf ob = {NULL, 0};
	cairn_pool *pool = NULL;
	shared sh;
	uint64_t seq = 0, bytes = 0, walked = 0;
	char read_msg[512] = "";
	size_t njobs;
	bool more = true, own = false;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	memset(&sh, 0, sizeof(sh));
	pthread_mutex_init(&sh.lock, NULL);
	pthread_cond_init(&sh.work, NULL);
	pthread_cond_init(&sh.done, NULL);
	sh.bad_seq = UINT64_MAX;
	sh.r = r;
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	/* Enough chunks that every thread has one while the caller reads. */
	njobs = 2 * (size_t)threads + 2;
	if (!(jobs = cairn_calloc(njobs, sizeof(*jobs)))) {
		rc = CAIRN_ENOMEM;
		goto done;
	}
	for (size_t k = 0; k < njobs; k++) {
		if (!(jobs[k].buf = cairn_malloc(CHUNK)) ||
		    !(jobs[k].items = cairn_malloc(CHUNK_ITEMS * sizeof(item)))) {
			rc = CAIRN_ENOMEM;
			goto done;
		}
		jobs[k].next = sh.free;
		sh.free = &jobs[k];
	}
	/* The caller hashes too: `threads` in all. */
	if (threads > 1) {
		if ((rc = cairn_pool_new(&pool, threads - 1)))
			goto done;
		for (unsigned k = 0; k < threads - 1; k++)
			if ((rc = cairn_pool_submit(pool, worker, &sh)))
				goto done;
	}
	while (more) {
		job *j;

		pthread_mutex_lock(&sh.lock);
		while (!sh.free) {
			if ((j = take(&sh)))
				run_locked(&sh, j, &ob);
			else
				pthread_cond_wait(&sh.done, &sh.lock);
		}
		j = sh.free;
		sh.free = j->next;
		more = sh.bad_seq == UINT64_MAX; /* past a failure nothing counts */
		pthread_mutex_unlock(&sh.lock);
		if (!more) {
			pthread_mutex_lock(&sh.lock);
			j->next = sh.free;
			sh.free = j;
			pthread_mutex_unlock(&sh.lock);
			break;
		}
		j->seq = seq;
		j->bytes = bytes;
		rc = fill(j, r, &more, &own, &bytes, &walked, fn, payload);
		seq += j->nitems;
		pthread_mutex_lock(&sh.lock);
		if (j->nitems) {
			j->next = NULL;
			if (sh.tail)
				sh.tail->next = j;
			else
				sh.head = j;
			sh.tail = j;
			sh.running++;
			pthread_cond_signal(&sh.work);
		} else {
			j->next = sh.free;
			sh.free = j;
		}
		pthread_mutex_unlock(&sh.lock);
		if (rc) {
			/* Hashing on this thread would overwrite the message. */
			snprintf(read_msg, sizeof(read_msg), "%s", cairn_error_last());
			break;
		}
		if (j->nitems) {
			out->data_bytes = walked - r->data_offset;
			if (progress)
				cairn_progress_update(progress, out->data_bytes);
		}
	}
	/* The blocks read before a failure are hashed first: the first failure
	 * in file order is the one reported. */
	pthread_mutex_lock(&sh.lock);
	while (sh.running) {
		job *j = take(&sh);

		if (j)
			run_locked(&sh, j, &ob);
		else if (sh.running)
			pthread_cond_wait(&sh.done, &sh.lock);
	}
	pthread_mutex_unlock(&sh.lock);
	if (sh.bad_seq != UINT64_MAX && (!rc || sh.bad_seq < seq)) {
		out->blocks = sh.bad_seq;
		out->block_bytes = sh.bad_bytes;
		rc = cairn_error_set(sh.bad_rc, "%s", sh.bad_msg);
	} else {
		out->blocks = seq;
		out->block_bytes = bytes;
		if (rc)
			cairn_error_set(rc, "%s", read_msg);
	}
done:
	if (pool) {
		pthread_mutex_lock(&sh.lock);
		sh.stop = true;
		pthread_cond_broadcast(&sh.work);
		pthread_mutex_unlock(&sh.lock);
		cairn_pool_free(pool);
	}
	if (jobs) {
		for (size_t k = 0; k < njobs; k++) {
			cairn_free(jobs[k].buf);
			cairn_free(jobs[k].items);
		}
		cairn_free(jobs);
	}
	cairn_free(ob.p);
	pthread_mutex_destroy(&sh.lock);
	pthread_cond_destroy(&sh.work);
	pthread_cond_destroy(&sh.done);
	return rc;
}
