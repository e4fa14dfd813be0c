/* filemap.c: read-only mappings of shard files, kept between requests and
 * shared by the responses that send blocks from them.
 *
 * Why keep them. libmicrohttpd sends a file response in 128 KiB sendfile
 * calls, one turn of its event loop each (a constant of the library), which
 * held 1 MiB blocks to 45% of nginx's rate; from a buffer it sends as much
 * as the socket takes. Mapping each block for its response and unmapping it
 * after cost a tenth of the server's time in page-table work and TLB
 * shootdowns between the pool's threads; a mapping of the whole file, kept,
 * is faulted in once.
 *
 * Why it is safe. cairn never reads the mapped bytes: only the kernel does,
 * in send. A file cut short under a mapping makes that send fail (EFAULT:
 * the connection closes short of its Content-Length) where a read by
 * cairn would raise SIGBUS. A block beyond the file's size when it is
 * asked for is refused here, and the caller's ordinary read words it.
 *
 * Lifetimes. A mapping holds a reference for the cache and one for each
 * response using it; it is unmapped when the last goes. The cache keeps
 * MAX_FILES files, dropping the least recently used one that no response
 * uses; a file that grew past its mapping is mapped again; and files that
 * were deleted (their shard destroyed or moved) are dropped whenever a new
 * file is mapped, so a kept mapping never holds a deleted file's space for
 * long. Each mapping keeps a descriptor of its file for that check.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve_i.h"

#define MAX_FILES 64

struct serve_mapping {
	serve_filemap *fm;
	dev_t dev;
	ino_t ino;
	int fd;           /* of the mapped file, for fstat */
	uint8_t *base;
	size_t len;       /* the file's size when it was mapped */
	unsigned refs;    /* the cache's (while listed) and the responses' */
	uint64_t used;    /* the cache's clock at the last use */
};

struct serve_filemap {
	pthread_mutex_t lock;
	serve_mapping *files[MAX_FILES];
	unsigned n;
	uint64_t clock;
};

int serve_filemap_new(serve_filemap **out)
{
	serve_filemap *fm = cairn_calloc(1, sizeof(*fm));

	if (!fm)
		return CAIRN_ENOMEM;
	pthread_mutex_init(&fm->lock, NULL);
	*out = fm;
	return 0;
}

static void unmap(serve_mapping *m)
{
	munmap(m->base, m->len);
	close(m->fd);
	cairn_free(m);
}

/* Drops a reference; the caller holds the lock. Returns the mapping to
 * unmap (after unlocking) when that was the last, else NULL. */
static serve_mapping *unref(serve_mapping *m)
{
	return --m->refs ? NULL : m;
}

void serve_mapping_put(void *cls)
{
	serve_mapping *m = cls;
	serve_filemap *fm = m->fm;

	pthread_mutex_lock(&fm->lock);
	m = unref(m);
	pthread_mutex_unlock(&fm->lock);
	if (m)
		unmap(m);
}

/* Takes the cache's entry `i` out of the list; the caller holds the lock
 * and unmaps what this returns once it has unlocked. */
static serve_mapping *unlist(serve_filemap *fm, unsigned i)
{
	serve_mapping *m = fm->files[i];

	fm->files[i] = fm->files[--fm->n];
	return unref(m);
}

void serve_filemap_free(serve_filemap *fm)
{
	if (!fm)
		return;
	/* MHD has stopped: every response, and its reference, is gone */
	while (fm->n) {
		serve_mapping *m = unlist(fm, 0);

		if (m)
			unmap(m);
	}
	pthread_mutex_destroy(&fm->lock);
	cairn_free(fm);
}

/* The listed mapping of (dev, ino) that covers `end`, with a reference
 * taken; the caller holds the lock. One that is too short is unlisted into
 * *stale (the file grew since). */
static serve_mapping *find(serve_filemap *fm, const struct stat *st, uint64_t end,
			   serve_mapping **stale)
{
	for (unsigned i = 0; i < fm->n; i++) {
		serve_mapping *m = fm->files[i];

		if (m->dev != st->st_dev || m->ino != st->st_ino)
			continue;
		if (m->len < end) {
			*stale = unlist(fm, i);
			return NULL;
		}
		m->refs++;
		m->used = ++fm->clock;
		return m;
	}
	return NULL;
}

/* Lists `m`, making room first: files deleted since they were mapped go,
 * then, if the list is still full, the least recently used file that no
 * response uses. When every listed file is in use, `m` is not listed and
 * goes with its response. The caller holds the lock; what was unlisted is
 * put in drop[] for the caller to unmap. */
static void list(serve_filemap *fm, serve_mapping *m, serve_mapping **drop, unsigned *ndrop)
{
	struct stat st;
	unsigned i = 0, lru = MAX_FILES;

	while (i < fm->n) {
		if (fstat(fm->files[i]->fd, &st) == 0 && st.st_nlink == 0) {
			serve_mapping *gone = unlist(fm, i);

			if (gone)
				drop[(*ndrop)++] = gone;
			continue;
		}
		i++;
	}
	if (fm->n == MAX_FILES) {
		for (i = 0; i < fm->n; i++)
			if (fm->files[i]->refs == 1 &&
			    (lru == MAX_FILES || fm->files[i]->used < fm->files[lru]->used))
				lru = i;
		if (lru == MAX_FILES)
			return;
		drop[(*ndrop)++] = unlist(fm, lru);
	}
	m->refs++;
	m->used = ++fm->clock;
	fm->files[fm->n++] = m;
}

serve_mapping *serve_filemap_get(serve_filemap *fm, int fd, uint64_t offset, uint64_t length,
				 const uint8_t **data, bool *too_short)
{
	serve_mapping *m, *stale = NULL, *drop[MAX_FILES + 1];
	unsigned ndrop = 0;
	struct stat st;

	*too_short = false;
	if (fstat(fd, &st) || (uint64_t)st.st_size < offset ||
	    (uint64_t)st.st_size - offset < length) {
		*too_short = true;
		return NULL;
	}
	if ((uint64_t)st.st_size > SIZE_MAX)
		return NULL;
	pthread_mutex_lock(&fm->lock);
	m = find(fm, &st, offset + length, &stale);
	pthread_mutex_unlock(&fm->lock);
	if (stale)
		unmap(stale);
	stale = NULL;
	if (m)
		goto found;

	/* Mapped outside the lock: the other threads' blocks go on meanwhile. */
	if (!(m = cairn_calloc(1, sizeof(*m))))
		return NULL;
	m->fm = fm;
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	m->len = (size_t)st.st_size;
	m->refs = 1; /* the caller's */
	if ((m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		cairn_free(m);
		return NULL;
	}
	m->base = mmap(NULL, m->len, PROT_READ, MAP_SHARED, fd, 0);
	if (m->base == MAP_FAILED) {
		close(m->fd);
		cairn_free(m);
		return NULL;
	}
	pthread_mutex_lock(&fm->lock);
	{
		/* another thread may have mapped the same file meanwhile */
		serve_mapping *other = find(fm, &st, offset + length, &stale);

		if (other) {
			drop[ndrop++] = m;
			m = other;
		} else {
			list(fm, m, drop, &ndrop);
		}
	}
	pthread_mutex_unlock(&fm->lock);
	if (stale)
		unmap(stale);
	for (unsigned i = 0; i < ndrop; i++)
		unmap(drop[i]);
found:
	*data = m->base + offset;
	return m;
}
