/* transient.c: local copies of remote content in one directory, under a byte
 * budget, evicted least recently read first and never while a mount reads one.
 *
 * Layout: <dir>/<key>.partial while downloading, <dir>/<key>.complete once
 * done, <dir>/.lock held with flock by the one process using the directory.
 * A copy becomes complete by fsync, rename, fsync of the directory, so a
 * crash leaves a .partial (deleted at the next open) or a whole .complete,
 * never a torn one under the complete name.
 *
 * Accounting: `used` is the sum of complete sizes plus the reservations of
 * downloads in progress. A download reserves its whole size before it
 * starts (or 64 MiB steps as it goes, when the server gave no size); a
 * reservation that does not fit evicts unused complete copies, oldest
 * `last_access` first, and fails with CAIRN_ETOOBIG when none is left to
 * evict. So the directory never holds more than the budget, whatever the
 * order of opens, and a failed download gives its reservation back.
 *
 * Entries in use (refs > 0) or downloading are never deleted; a mount keeps
 * a pointer to its entry until release, which is safe because an entry is
 * freed only when unused. last_access is written without the lock (every
 * read touches it); eviction reads it under the lock, and a stale value
 * only changes which unused copy goes first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mount_i.h"

/* The reservation step for a download of unknown size: small against the
 * shards (GiBs) and large enough that the lock is taken rarely. */
#define GROW_STEP (64ull << 20)
#define KEY_LEN 32

typedef enum { T_DOWNLOADING, T_COMPLETE } tstate;

struct cairn_mount__transient {
	cairn_mount__transient *next;
	char key[KEY_LEN + 1];
	char *path;               /* <dir>/<key>.complete */
	tstate state;
	uint64_t size;            /* complete: its bytes; downloading: reserved */
	unsigned refs;
	_Atomic uint64_t last_access; /* ns since the epoch */
};

struct cairn_mount__tstore {
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* a download finished or failed */
	char *dir;
	int lock_fd;
	uint64_t max;             /* 0: no limit */
	uint64_t used;
	cairn_mount__transient *list;
	uint64_t downloads, evictions;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *path_of(const cairn_mount__tstore *ts, const char *key, const char *suffix)
{
	size_t n = strlen(ts->dir) + 1 + strlen(key) + strlen(suffix) + 1;
	char *p = cairn_malloc(n);

	if (p)
		snprintf(p, n, "%s/%s%s", ts->dir, key, suffix);
	return p;
}

static bool is_key(const char *s, size_t n)
{
	if (n != KEY_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void free_entry(cairn_mount__transient *t)
{
	cairn_free(t->path);
	cairn_free(t);
}

static cairn_mount__transient *find(cairn_mount__tstore *ts, const char *key)
{
	for (cairn_mount__transient *t = ts->list; t; t = t->next)
		if (!strcmp(t->key, key))
			return t;
	return NULL;
}

static void unlink_entry(cairn_mount__tstore *ts, cairn_mount__transient *t)
{
	for (cairn_mount__transient **pp = &ts->list; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	ts->used -= t->size;
}

/* Deletes an unused complete copy: file first, then the entry. Locked. */
static void drop(cairn_mount__tstore *ts, cairn_mount__transient *t, const char *why)
{
	if (unlink(t->path) < 0 && errno != ENOENT)
		cairn_log(CAIRN_LOG_WARN, "transients: %s: %s", t->path, strerror(errno));
	cairn_log(CAIRN_LOG_INFO, "transients: deleted %s (%llu bytes): %s", t->path,
		  (unsigned long long)t->size, why);
	unlink_entry(ts, t);
	free_entry(t);
}

/* The unused complete copy read least recently, or NULL. Locked. */
static cairn_mount__transient *lru(cairn_mount__tstore *ts)
{
	cairn_mount__transient *best = NULL;

	for (cairn_mount__transient *t = ts->list; t; t = t->next)
		if (t->state == T_COMPLETE && t->refs == 0 &&
		    (!best || atomic_load_explicit(&t->last_access, memory_order_relaxed) <
				      atomic_load_explicit(&best->last_access, memory_order_relaxed)))
			best = t;
	return best;
}

/* Makes room for `need` more bytes, evicting as needed. Locked. */
static int reserve(cairn_mount__tstore *ts, uint64_t need, const char *what)
{
	if (ts->max) {
		if (need > ts->max)
			return cairn_error_set(CAIRN_ETOOBIG,
				"%s: a transient copy needs %llu bytes, over the transients budget of %llu bytes",
				what, (unsigned long long)need, (unsigned long long)ts->max);
		while (ts->used + need > ts->max) {
			cairn_mount__transient *t = lru(ts);

			if (!t)
				return cairn_error_set(CAIRN_ETOOBIG,
					"%s: a transient copy needs %llu bytes and only %llu of the transients budget of %llu bytes are free (the rest is held by open mounts and downloads)",
					what, (unsigned long long)need,
					(unsigned long long)(ts->max - ts->used),
					(unsigned long long)ts->max);
			drop(ts, t, "evicted to make room");
			ts->evictions++;
		}
	}
	ts->used += need;
	return 0;
}

/* mkdir -p */
static int make_dir(const char *dir)
{
	char *p = cairn_strndup(dir, strlen(dir));
	int rc = 0;

	if (!p)
		return CAIRN_ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			rc = cairn_error_set(CAIRN_EIO, "transients directory %s: %s", p, strerror(errno));
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	cairn_free(p);
	return rc;
}

/* Deletes .partial leftovers and adopts .complete copies. */
static int scan(cairn_mount__tstore *ts)
{
	DIR *d = opendir(ts->dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return cairn_error_set(CAIRN_EIO, "transients directory %s: %s", ts->dir, strerror(errno));
	while (!rc && (e = readdir(d))) {
		const char *dot = strchr(e->d_name, '.');
		size_t klen = dot ? (size_t)(dot - e->d_name) : 0;
		cairn_mount__transient *t;
		struct stat st;
		char *p;

		if (!dot || !is_key(e->d_name, klen))
			continue; /* not ours: leave it */
		if (!strcmp(dot, ".partial")) {
			if (!(p = path_of(ts, "", e->d_name))) {
				rc = CAIRN_ENOMEM;
				break;
			}
			cairn_log(CAIRN_LOG_INFO, "transients: deleting %s, left by an interrupted download", p);
			unlink(p);
			cairn_free(p);
			continue;
		}
		if (strcmp(dot, ".complete"))
			continue;
		if (!(t = cairn_calloc(1, sizeof(*t)))) {
			rc = CAIRN_ENOMEM;
			break;
		}
		memcpy(t->key, e->d_name, KEY_LEN);
		if (!(t->path = path_of(ts, t->key, ".complete"))) {
			free_entry(t);
			rc = CAIRN_ENOMEM;
			break;
		}
		if (stat(t->path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free_entry(t);
			continue;
		}
		t->state = T_COMPLETE;
		t->size = (uint64_t)st.st_size;
		atomic_store(&t->last_access,
			     (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
		t->next = ts->list;
		ts->list = t;
		ts->used += t->size;
	}
	closedir(d);
	if (rc)
		return rc;
	/* A smaller budget than last time: the oldest go. */
	while (ts->max && ts->used > ts->max) {
		ts->evictions++;
		drop(ts, lru(ts), "over the transients budget at start");
	}
	return 0;
}

void cairn_mount__tstore_free(cairn_mount__tstore *ts)
{
	if (!ts)
		return;
	while (ts->list) {
		cairn_mount__transient *t = ts->list;

		ts->list = t->next;
		free_entry(t);
	}
	if (ts->lock_fd >= 0)
		close(ts->lock_fd);
	pthread_mutex_destroy(&ts->mu);
	pthread_cond_destroy(&ts->cv);
	cairn_free(ts->dir);
	cairn_free(ts);
}

int cairn_mount__tstore_open(cairn_mount__tstore **out, const char *dir, uint64_t max_bytes)
{
	cairn_mount__tstore *ts;
	char *lock;
	int rc;

	*out = NULL;
	if (!dir[0])
		return cairn_error_set(CAIRN_EINVAL, "transients directory: empty path");
	if (!(ts = cairn_calloc(1, sizeof(*ts))))
		return CAIRN_ENOMEM;
	ts->lock_fd = -1;
	ts->max = max_bytes;
	pthread_mutex_init(&ts->mu, NULL);
	pthread_cond_init(&ts->cv, NULL);
	if (!(ts->dir = cairn_strndup(dir, strlen(dir)))) {
		cairn_mount__tstore_free(ts);
		return CAIRN_ENOMEM;
	}
	/* "a/b/" and "a/b" name the same directory; paths are built with '/'. */
	for (size_t n = strlen(ts->dir); n > 1 && ts->dir[n - 1] == '/'; n--)
		ts->dir[n - 1] = '\0';
	if ((rc = make_dir(ts->dir)) || !(lock = path_of(ts, ".lock", ""))) {
		cairn_mount__tstore_free(ts);
		return rc ? rc : CAIRN_ENOMEM;
	}
	ts->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (ts->lock_fd < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", lock, strerror(errno));
	else if (flock(ts->lock_fd, LOCK_EX | LOCK_NB) < 0)
		rc = cairn_error_set(errno == EWOULDBLOCK ? CAIRN_EEXISTS : CAIRN_EIO,
				     "transients directory %s: %s", ts->dir,
				     errno == EWOULDBLOCK ? "in use by another client or process" :
							    strerror(errno));
	cairn_free(lock);
	if (rc || (rc = scan(ts))) {
		cairn_mount__tstore_free(ts);
		return rc;
	}
	*out = ts;
	return 0;
}

/* Fills a new transient for `key`; on success it is complete, in use, and
 * open in *fd_out. Called unlocked, with the entry DOWNLOADING. */
static int fill_new(int *fd_out, cairn_mount__tstore *ts, cairn_mount__transient *t,
		    uint64_t size, const char *what, cairn_mount__fill_fn fill, void *payload)
{
	char *partial = path_of(ts, t->key, ".partial");
	uint64_t got = 0;
	bool renamed = false;
	int fd = -1, rc = 0;

	if (!partial)
		return CAIRN_ENOMEM;
	fd = open(partial, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", partial, strerror(errno));
	if (!rc)
		rc = fill(fd, ts, t, &got, payload);
	if (!rc && size != UINT64_MAX && got != size)
		rc = cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: the download ended after %llu bytes of %llu", what,
			(unsigned long long)got, (unsigned long long)got, (unsigned long long)size);
	if (!rc)
		rc = cairn_file_fsync(fd, partial);
	if (fd >= 0)
		close(fd);
	fd = -1;
	if (!rc) {
		if (rename(partial, t->path) < 0)
			rc = cairn_error_set(CAIRN_EIO, "%s: rename to %s: %s", partial, t->path,
					     strerror(errno));
		else
			renamed = true;
	}
	if (!rc)
		rc = cairn_file_fsync_dir(ts->dir);
	if (!rc && (fd = open(t->path, O_RDONLY | O_CLOEXEC)) < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", t->path, strerror(errno));
	if (rc) {
		unlink(renamed ? t->path : partial);
		cairn_free(partial);
		return rc;
	}
	cairn_free(partial);
	pthread_mutex_lock(&ts->mu);
	/* Give back what was reserved past the real size. */
	ts->used = ts->used - t->size + got;
	t->size = got;
	t->state = T_COMPLETE;
	t->refs = 1;
	ts->downloads++;
	cairn_mount__tstore_touch(t);
	pthread_cond_broadcast(&ts->cv);
	pthread_mutex_unlock(&ts->mu);
	cairn_log(CAIRN_LOG_INFO, "transients: %s copied to %s (%llu bytes)", what, t->path,
		  (unsigned long long)got);
	*fd_out = fd;
	return 0;
}

int cairn_mount__tstore_acquire(cairn_mount__transient **out, int *fd_out,
				cairn_mount__tstore *ts, const char *key, uint64_t size,
				const char *what, cairn_mount__fill_fn fill, void *payload)
{
	cairn_mount__transient *t;
	uint64_t size_first;
	int rc, fd;

	*out = NULL;
	*fd_out = -1;
	if (!is_key(key, strlen(key)))
		return cairn_error_set(CAIRN_EINVAL, "transients: bad key \"%s\"", key);
	pthread_mutex_lock(&ts->mu);
	for (;;) {
		if (!(t = find(ts, key)))
			break;
		if (t->state == T_DOWNLOADING) {
			/* Another open is fetching it: wait, then look again
			 * (it may have failed, and then this open tries). */
			pthread_cond_wait(&ts->cv, &ts->mu);
			continue;
		}
		if (size != UINT64_MAX && t->size != size) {
			if (t->refs) {
				pthread_mutex_unlock(&ts->mu);
				return cairn_error_set(CAIRN_ECORRUPT,
					"%s: the source has %llu bytes now, and a transient copy of %llu bytes is in use",
					what, (unsigned long long)size, (unsigned long long)t->size);
			}
			drop(ts, t, "the source changed size");
			continue;
		}
		if ((fd = open(t->path, O_RDONLY | O_CLOEXEC)) < 0) {
			if (errno == ENOENT && t->refs == 0) {
				/* Deleted behind our back: fetch it again. */
				drop(ts, t, "the file is gone");
				continue;
			}
			rc = cairn_error_set(CAIRN_EIO, "%s: %s", t->path, strerror(errno));
			pthread_mutex_unlock(&ts->mu);
			return rc;
		}
		t->refs++;
		cairn_mount__tstore_touch(t);
		pthread_mutex_unlock(&ts->mu);
		*out = t;
		*fd_out = fd;
		return 0;
	}
	/* Not there: reserve and fetch. */
	if (!(t = cairn_calloc(1, sizeof(*t)))) {
		pthread_mutex_unlock(&ts->mu);
		return CAIRN_ENOMEM;
	}
	memcpy(t->key, key, KEY_LEN + 1);
	if (!(t->path = path_of(ts, key, ".complete"))) {
		pthread_mutex_unlock(&ts->mu);
		free_entry(t);
		return CAIRN_ENOMEM;
	}
	/* Unknown size: a first step, no more than the whole budget. */
	if (size == UINT64_MAX)
		size_first = ts->max && ts->max < GROW_STEP ? ts->max : GROW_STEP;
	else
		size_first = size;
	if ((rc = reserve(ts, size_first, what))) {
		pthread_mutex_unlock(&ts->mu);
		free_entry(t);
		return rc;
	}
	t->state = T_DOWNLOADING;
	t->size = size_first;
	t->next = ts->list;
	ts->list = t;
	pthread_mutex_unlock(&ts->mu);

	if ((rc = fill_new(&fd, ts, t, size, what, fill, payload))) {
		pthread_mutex_lock(&ts->mu);
		unlink_entry(ts, t);
		pthread_cond_broadcast(&ts->cv);
		pthread_mutex_unlock(&ts->mu);
		free_entry(t);
		return rc;
	}
	*out = t;
	*fd_out = fd;
	return 0;
}

int cairn_mount__tstore_grow(cairn_mount__tstore *ts, cairn_mount__transient *t, uint64_t total,
			     const char *what)
{
	uint64_t want;
	int rc = 0;

	pthread_mutex_lock(&ts->mu);
	if (total > t->size) {
		want = total > UINT64_MAX - GROW_STEP ? total : (total + GROW_STEP - 1) / GROW_STEP * GROW_STEP;
		if (ts->max && want > ts->max)
			want = total;
		if (!(rc = reserve(ts, want - t->size, what)))
			t->size = want;
		else if (rc == CAIRN_ETOOBIG)
			rc = cairn_error_set(CAIRN_ETOOBIG,
				"%s: a transient copy of at least %llu bytes (the server gave no size) does not fit in the transients budget of %llu bytes (%llu are held by open mounts and other downloads)",
				what, (unsigned long long)total, (unsigned long long)ts->max,
				(unsigned long long)(ts->used - t->size));
	}
	pthread_mutex_unlock(&ts->mu);
	return rc;
}

void cairn_mount__tstore_touch(cairn_mount__transient *t)
{
	atomic_store_explicit(&t->last_access, now_ns(), memory_order_relaxed);
}

void cairn_mount__tstore_release(cairn_mount__tstore *ts, cairn_mount__transient *t, int fd)
{
	uint64_t now = now_ns();
	/* The mtime carries the LRU order over a restart: set from our clock,
	 * since the kernel's own stamps are only as fine as a tick. */
	struct timespec times[2] = {{0, UTIME_OMIT},
				    {(time_t)(now / 1000000000u), (long)(now % 1000000000u)}};

	futimens(fd, times);
	close(fd);
	pthread_mutex_lock(&ts->mu);
	t->refs--;
	atomic_store_explicit(&t->last_access, now, memory_order_relaxed);
	pthread_mutex_unlock(&ts->mu);
}

const char *cairn_mount__transient_path(const cairn_mount__transient *t)
{
	return t->path;
}

uint64_t cairn_mount__transient_size(const cairn_mount__transient *t)
{
	return t->size;
}

int cairn_mount__tstore_gc(cairn_mount__tstore *ts, const char *key, uint64_t *freed_out)
{
	uint64_t freed = 0;
	int n = 0;
	cairn_mount__transient *t;

	pthread_mutex_lock(&ts->mu);
	if (key) {
		/* one copy: dropped if unused, as the whole-store pass would */
		t = find(ts, key);
		if (t && t->state == T_COMPLETE && t->refs == 0) {
			freed = t->size;
			n = 1;
			ts->evictions++;
			drop(ts, t, "dropped for a fresh copy");
		}
	}
	while (!key && (t = lru(ts))) {
		freed += t->size;
		n++;
		ts->evictions++;
		drop(ts, t, "garbage-collected");
	}
	pthread_mutex_unlock(&ts->mu);
	if (freed_out)
		*freed_out = freed;
	return n;
}

void cairn_mount__tstore_stats(cairn_mount__tstore *ts, cairn_mount_http_stats *out)
{
	pthread_mutex_lock(&ts->mu);
	out->downloads = ts->downloads;
	out->evictions = ts->evictions;
	out->transient_bytes = ts->used;
	out->transients = out->transients_in_use = 0;
	for (cairn_mount__transient *t = ts->list; t; t = t->next) {
		if (t->state != T_COMPLETE)
			continue;
		out->transients++;
		out->transients_in_use += t->refs > 0;
	}
	pthread_mutex_unlock(&ts->mu);
}
