/* dagstore.c: shards, their states, indexing, acquirers and reads through
 * the top-level index.
 *
 * Layout of a DAG store directory:
 *   indexes/<id>.idx    each shard's CARv2 index (MultihashIndexSorted),
 *                       written to a temporary name, fsynced and renamed
 *   toplevel/           the top-level index (tlindex.c)
 *   transients/         local copies of HTTP pieces from servers without ranges
 * The registry is the `dagstore_shards` table of the caller's database.
 *
 * The registry is loaded into memory at open and every change is written
 * to the database before it is made visible in memory, so a crash loses
 * nothing a caller was told. One mutex guards the in-memory shards; the long
 * work (fetching, indexing, reading) runs outside it, a shard marked busy
 * so no two initializations of one shard overlap.
 *
 * Order of initialization, each step safe to crash after: the row says
 * Initializing; stale top-level entries and index file of the shard go;
 * the CARv1 is read through the mount (zero-length section = end, as in a
 * padded piece), blocks hashed unless told otherwise; the index file is
 * written and renamed into place; the top-level entries are added (durable
 * on return); the row says Available with the index's checksum. Open
 * resumes any shard it finds Initializing or Recovering.
 *
 * Quiesce (a snapshot while the store runs): every step that writes the
 * store's files or rows is a write step, counted under the lock; quiesce
 * stops new ones, waits (bounded) for those under way, then pauses the
 * top-level index's merges. Steps are short: an indexing job is a step only
 * where it writes (dropping the old index at the start; the index file, the
 * top-level entries and the row at the end), not while it fetches and reads
 * the piece, which for a large remote piece takes minutes; quiesce would
 * otherwise wait for it or have to abandon it. A snapshot then holds that
 * shard Initializing, and a clone opened from it indexes it again. gc is
 * one step, its compaction included (seconds on a large index: the wait is
 * bounded, and the error says so). Not steps: a read that finds a shard
 * damaged and marks it Errored (one row, in the database's log, which a
 * snapshot has whole or not at all; waiting there could deadlock with a
 * destroy waiting for that reader), and transient copies of HTTP pieces
 * (written as .partial, which snapshots leave out, then renamed). Steps
 * never nest: a step that waited for a quiesce while holding another would
 * wait for itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cairn/dagstore.h"
#include "tlindex.h"

#define DEFAULT_MAX_OPEN 64
#define DEFAULT_TRANSIENT_BUDGET (16ull << 30)
#define MAX_HITS 16

static const cairn_db_migration migrations[] = {
	{1, "CREATE TABLE dagstore_shards ("
	    " id INTEGER PRIMARY KEY,"
	    " key TEXT NOT NULL UNIQUE,"
	    " url TEXT NOT NULL,"
	    " state INTEGER NOT NULL,"
	    " error TEXT,"
	    " blocks INTEGER NOT NULL DEFAULT 0,"
	    " data_offset INTEGER NOT NULL DEFAULT 0,"
	    " data_end INTEGER NOT NULL DEFAULT 0,"
	    " index_size INTEGER NOT NULL DEFAULT 0,"
	    " index_sha256 BLOB,"
	    " created_at INTEGER NOT NULL,"
	    " updated_at INTEGER NOT NULL,"
	    " indexed_at INTEGER NOT NULL DEFAULT 0);"
	    "CREATE INDEX dagstore_shards_state ON dagstore_shards(state);"},
};

typedef struct shard {
	uint32_t id;
	char *key;
	char *url;
	char *error;
	cairn_shard_state state;  /* as persisted: never Serving */
	unsigned refs;
	bool busy;                /* an initialization runs */
	unsigned pins;            /* top-level reads and lookups using it now */
	uint64_t blocks;
	uint64_t data_offset;
	uint64_t data_end;
	uint64_t index_size;
	uint8_t index_sha256[32];
	int64_t created_at;
	int64_t updated_at;
	int64_t indexed_at;
	cairn_car_index *index;   /* mapped while acquired or cached */
	bool index_checked;       /* checksum verified since open */
	cairn_mount *mount;       /* cached for top-level reads */
	unsigned mount_users;
	uint64_t mount_used;      /* tick of the last use, for eviction */
} shard;

struct cairn_dagstore {
	cairn_db *db;
	char *dir;
	cairn_dagstore_options opts;
	cairn_tlindex *tl;
	cairn_mount_registry *mounts;
	cairn_mount_http *http;
	pthread_mutex_t lock;
	pthread_cond_t slots;
	pthread_cond_t gate;      /* write steps and quiesce wait for each other */
	unsigned writing[4];      /* write steps under way, by kind (W_*) */
	unsigned quiesced;        /* quiesce calls not yet resumed */
	unsigned open_now;        /* mounts open: indexing, acquirers, cache */
	uint64_t tick;
	shard **by_key;           /* sorted by key */
	size_t n, cap;
	shard **by_id;            /* indexed by id; NULL where none */
	size_t id_cap;
};

const char *cairn_shard_state_name(cairn_shard_state state)
{
	switch (state) {
	case CAIRN_SHARD_NEW: return "New";
	case CAIRN_SHARD_INITIALIZING: return "Initializing";
	case CAIRN_SHARD_AVAILABLE: return "Available";
	case CAIRN_SHARD_SERVING: return "Serving";
	case CAIRN_SHARD_RECOVERING: return "Recovering";
	case CAIRN_SHARD_ERRORED: return "Errored";
	}
	return "Unknown";
}

void cairn_shard_info_clear(cairn_shard_info *info)
{
	cairn_free(info->key);
	cairn_free(info->url);
	cairn_free(info->error);
	memset(info, 0, sizeof(*info));
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static char *dup_str(const char *s)
{
	return s ? cairn_strndup(s, strlen(s)) : NULL;
}

static void shard_free(shard *sh)
{
	if (!sh)
		return;
	cairn_car_index_free(sh->index);
	cairn_mount_close(sh->mount);
	cairn_free(sh->key);
	cairn_free(sh->url);
	cairn_free(sh->error);
	cairn_free(sh);
}

static void index_path(char *out, size_t cap, const cairn_dagstore *ds, uint32_t id)
{
	snprintf(out, cap, "%s/indexes/%u.idx", ds->dir, id);
}

/* ------------------------------------------------------ in-memory table */

static int cmp_key(const void *a, const void *b)
{
	return strcmp((*(shard *const *)a)->key, (*(shard *const *)b)->key);
}

static shard *find_key(const cairn_dagstore *ds, const char *key)
{
	size_t lo = 0, hi = ds->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ds->by_key[mid]->key, key);

		if (!c)
			return ds->by_key[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static shard *find_id(const cairn_dagstore *ds, uint32_t id)
{
	return id < ds->id_cap ? ds->by_id[id] : NULL;
}

/* Adds to both tables; the caller sorts by_key after a batch. */
static int table_add(cairn_dagstore *ds, shard *sh)
{
	if (ds->n == ds->cap) {
		size_t ncap = ds->cap ? ds->cap * 2 : 64;
		shard **v = cairn_realloc(ds->by_key, ncap * sizeof(*v));

		if (!v)
			return CAIRN_ENOMEM;
		ds->by_key = v;
		ds->cap = ncap;
	}
	if (sh->id >= ds->id_cap) {
		size_t ncap = ds->id_cap ? ds->id_cap : 64;
		shard **v;

		while (ncap <= sh->id)
			ncap *= 2;
		if (!(v = cairn_realloc(ds->by_id, ncap * sizeof(*v))))
			return CAIRN_ENOMEM;
		memset(v + ds->id_cap, 0, (ncap - ds->id_cap) * sizeof(*v));
		ds->by_id = v;
		ds->id_cap = ncap;
	}
	ds->by_key[ds->n++] = sh;
	ds->by_id[sh->id] = sh;
	return 0;
}

static void table_remove(cairn_dagstore *ds, shard *sh)
{
	for (size_t i = 0; i < ds->n; i++) {
		if (ds->by_key[i] == sh) {
			memmove(ds->by_key + i, ds->by_key + i + 1, (ds->n - i - 1) * sizeof(shard *));
			ds->n--;
			break;
		}
	}
	ds->by_id[sh->id] = NULL;
}

static void snapshot(cairn_shard_info *out, const shard *sh)
{
	memset(out, 0, sizeof(*out));
	out->key = dup_str(sh->key);
	out->url = dup_str(sh->url);
	out->error = dup_str(sh->error);
	out->state = sh->state == CAIRN_SHARD_AVAILABLE && sh->refs ? CAIRN_SHARD_SERVING
								    : sh->state;
	out->id = sh->id;
	out->refs = sh->refs;
	out->blocks = sh->blocks;
	out->data_size = sh->data_end - sh->data_offset;
	out->index_size = sh->index_size;
	memcpy(out->index_sha256, sh->index_sha256, 32);
	out->created_at = sh->created_at;
	out->updated_at = sh->updated_at;
	out->indexed_at = sh->indexed_at;
}

/* -------------------------------------------------------------- the db */

static const char sql_load[] =
	"SELECT id, key, url, state, error, blocks, data_offset, data_end, index_size,"
	" index_sha256, created_at, updated_at, indexed_at FROM dagstore_shards";

static int load(cairn_dagstore *ds)
{
	cairn_db_stmt *st;
	int rc;

	if ((rc = cairn_db_prepare(&st, ds->db, sql_load)))
		return rc;
	while ((rc = cairn_db_step(st)) == 1) {
		shard *sh = cairn_calloc(1, sizeof(*sh));
		const uint8_t *sha;
		size_t sha_len = 0;

		if (!sh) {
			rc = CAIRN_ENOMEM;
			break;
		}
		sh->id = (uint32_t)cairn_db_column_int64(st, 0);
		sh->key = dup_str(cairn_db_column_text(st, 1));
		sh->url = dup_str(cairn_db_column_text(st, 2));
		sh->state = (cairn_shard_state)cairn_db_column_int64(st, 3);
		if (!cairn_db_column_is_null(st, 4))
			sh->error = dup_str(cairn_db_column_text(st, 4));
		sh->blocks = (uint64_t)cairn_db_column_int64(st, 5);
		sh->data_offset = (uint64_t)cairn_db_column_int64(st, 6);
		sh->data_end = (uint64_t)cairn_db_column_int64(st, 7);
		sh->index_size = (uint64_t)cairn_db_column_int64(st, 8);
		sha = cairn_db_column_blob(st, 9, &sha_len);
		if (sha && sha_len == 32)
			memcpy(sh->index_sha256, sha, 32);
		sh->created_at = cairn_db_column_int64(st, 10);
		sh->updated_at = cairn_db_column_int64(st, 11);
		sh->indexed_at = cairn_db_column_int64(st, 12);
		if (!sh->key || !sh->url || (rc = table_add(ds, sh))) {
			shard_free(sh);
			rc = rc ? rc : CAIRN_ENOMEM;
			break;
		}
	}
	cairn_db_reset(st);
	if (rc < 0)
		return rc;
	if (ds->n > 1)
		qsort(ds->by_key, ds->n, sizeof(*ds->by_key), cmp_key);
	return 0;
}

static const char sql_state[] =
	"UPDATE dagstore_shards SET state = ?, error = ?, updated_at = ? WHERE id = ?";

/* Persists a new state (and error, or NULL) and then shows it in memory.
 * Called without the lock held. */
static int set_state(cairn_dagstore *ds, shard *sh, cairn_shard_state state, const char *error)
{
	cairn_db_stmt *st;
	int64_t t = now_s();
	char *err_copy = NULL;
	int rc;

	if (error && !(err_copy = dup_str(error)))
		return CAIRN_ENOMEM;
	if ((rc = cairn_db_prepare(&st, ds->db, sql_state))) {
		cairn_free(err_copy);
		return rc;
	}
	cairn_db_bind_int64(st, 1, state);
	if (error)
		cairn_db_bind_text(st, 2, error);
	else
		cairn_db_bind_null(st, 2);
	cairn_db_bind_int64(st, 3, t);
	cairn_db_bind_int64(st, 4, sh->id);
	rc = cairn_db_step(st);
	cairn_db_reset(st);
	if (rc < 0) {
		cairn_free(err_copy);
		return rc;
	}
	pthread_mutex_lock(&ds->lock);
	sh->state = state;
	cairn_free(sh->error);
	sh->error = err_copy;
	sh->updated_at = t;
	pthread_mutex_unlock(&ds->lock);
	return 0;
}

static const char sql_available[] =
	"UPDATE dagstore_shards SET state = ?, error = NULL, blocks = ?, data_offset = ?,"
	" data_end = ?, index_size = ?, index_sha256 = ?, indexed_at = ?, updated_at = ?"
	" WHERE id = ?";

/* ------------------------------------------------------------ quiesce */

enum { W_INDEX, W_REGISTER, W_DESTROY, W_GC };
static const char *const write_kinds[] = {"indexing", "register", "destroy", "gc"};

static unsigned writing_now(const cairn_dagstore *ds)
{
	return ds->writing[W_INDEX] + ds->writing[W_REGISTER] + ds->writing[W_DESTROY] +
	       ds->writing[W_GC];
}

/* Starts a write step: waits while the store is quiesced. Lock not held. */
static void write_begin(cairn_dagstore *ds, int kind)
{
	pthread_mutex_lock(&ds->lock);
	while (ds->quiesced)
		pthread_cond_wait(&ds->gate, &ds->lock);
	ds->writing[kind]++;
	pthread_mutex_unlock(&ds->lock);
}

static void write_end(cairn_dagstore *ds, int kind)
{
	pthread_mutex_lock(&ds->lock);
	ds->writing[kind]--;
	if (!writing_now(ds))
		pthread_cond_broadcast(&ds->gate);
	pthread_mutex_unlock(&ds->lock);
}

static void unquiesce(cairn_dagstore *ds)
{
	pthread_mutex_lock(&ds->lock);
	if (ds->quiesced && !--ds->quiesced)
		pthread_cond_broadcast(&ds->gate);
	pthread_mutex_unlock(&ds->lock);
}

int cairn_dagstore_quiesce(cairn_dagstore *ds, unsigned timeout_ms)
{
	struct timespec deadline;
	char what[128] = "";
	size_t len = 0;
	int e = 0, rc;

	if (!ds)
		return cairn_error_set(CAIRN_EINVAL, "dagstore: quiesce: no store");
	if (!timeout_ms)
		timeout_ms = 30000;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ds->lock);
	ds->quiesced++;
	while (writing_now(ds) && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&ds->gate, &ds->lock, &deadline);
	if (writing_now(ds)) {
		for (int k = W_INDEX; k <= W_GC; k++)
			if (ds->writing[k] && len < sizeof(what))
				len += (size_t)snprintf(what + len, sizeof(what) - len, "%s%u %s",
							len ? ", " : "", ds->writing[k], write_kinds[k]);
		if (!--ds->quiesced)
			pthread_cond_broadcast(&ds->gate);
		pthread_mutex_unlock(&ds->lock);
		return cairn_error_set(CAIRN_ECANCELED, "dagstore %s: writes under way (%s) did not "
				       "reach a safe point in %u ms: try again when they are done",
				       ds->dir, what, timeout_ms);
	}
	pthread_mutex_unlock(&ds->lock);
	if ((rc = cairn_tlindex_pause(ds->tl, &deadline))) {
		unquiesce(ds);
		return cairn_error_prefix("dagstore %s: ", ds->dir), rc;
	}
	return 0;
}

void cairn_dagstore_resume(cairn_dagstore *ds)
{
	if (!ds)
		return;
	cairn_tlindex_resume(ds->tl);
	unquiesce(ds);
}

/* ------------------------------------------------------------ mounts */

/* Waits for a slot under the bound on open mounts, evicting an idle cached
 * mount when that frees one. Lock held. */
static void slot_take(cairn_dagstore *ds)
{
	while (ds->open_now >= ds->opts.max_open) {
		shard *victim = NULL;

		for (size_t i = 0; i < ds->n; i++) {
			shard *sh = ds->by_key[i];

			if (sh->mount && !sh->mount_users &&
			    (!victim || sh->mount_used < victim->mount_used))
				victim = sh;
		}
		if (victim) {
			cairn_mount_close(victim->mount);
			victim->mount = NULL;
			ds->open_now--;
			break;
		}
		pthread_cond_wait(&ds->slots, &ds->lock);
	}
	ds->open_now++;
}

static void slot_give(cairn_dagstore *ds)
{
	ds->open_now--;
	/* Broadcast: the condition also wakes acquirers waiting for a shard's
	 * indexing and destroys waiting for readers; a signal could wake one
	 * of those instead of a waiter for a slot. */
	pthread_cond_broadcast(&ds->slots);
}

/* Opens a shard's mount in a slot of its own (indexing, acquirers). */
static bool is_remote(const shard *sh)
{
	return !strncasecmp(sh->url, "http://", 7) || !strncasecmp(sh->url, "https://", 8);
}

static int mount_open(cairn_mount **out, cairn_dagstore *ds, const shard *sh)
{
	cairn_mount_options mo = CAIRN_MOUNT_OPTIONS_INIT;
	int rc;

	pthread_mutex_lock(&ds->lock);
	slot_take(ds);
	pthread_mutex_unlock(&ds->lock);
	if ((rc = cairn_mount_open(out, ds->mounts, sh->url, &mo))) {
		pthread_mutex_lock(&ds->lock);
		slot_give(ds);
		pthread_mutex_unlock(&ds->lock);
		return cairn_error_prefix("shard %s: ", sh->key), rc;
	}
	return 0;
}

static void mount_close(cairn_dagstore *ds, cairn_mount *m)
{
	if (!m)
		return;
	cairn_mount_close(m);
	pthread_mutex_lock(&ds->lock);
	slot_give(ds);
	pthread_mutex_unlock(&ds->lock);
}

/* The shard's cached mount for top-level reads, opened on first use; the
 * caller gives it back with cached_mount_put. */
static int cached_mount_get(cairn_mount **out, cairn_dagstore *ds, shard *sh)
{
	cairn_mount_options mo = CAIRN_MOUNT_OPTIONS_INIT;
	cairn_mount *m = NULL;
	int rc;

	pthread_mutex_lock(&ds->lock);
	if (sh->mount) {
		sh->mount_users++;
		sh->mount_used = ++ds->tick;
		*out = sh->mount;
		pthread_mutex_unlock(&ds->lock);
		return 0;
	}
	slot_take(ds);
	pthread_mutex_unlock(&ds->lock);
	rc = cairn_mount_open(&m, ds->mounts, sh->url, &mo);
	pthread_mutex_lock(&ds->lock);
	if (rc) {
		slot_give(ds);
		pthread_mutex_unlock(&ds->lock);
		return rc;
	}
	if (sh->mount) {
		/* Another thread opened it meanwhile: keep theirs. */
		cairn_mount_close(m);
		slot_give(ds);
	} else {
		sh->mount = m;
	}
	sh->mount_users++;
	sh->mount_used = ++ds->tick;
	*out = sh->mount;
	pthread_mutex_unlock(&ds->lock);
	return 0;
}

static void cached_mount_put(cairn_dagstore *ds, shard *sh)
{
	pthread_mutex_lock(&ds->lock);
	sh->mount_users--;
	pthread_cond_broadcast(&ds->slots);
	pthread_mutex_unlock(&ds->lock);
}

/* Waits until no top-level read or lookup uses the shard (it is busy: no
 * new ones start). Lock held. */
static void wait_unpinned(cairn_dagstore *ds, shard *sh)
{
	while (sh->pins)
		pthread_cond_wait(&ds->slots, &ds->lock);
}

/* Drops a shard's cached mount and index (before its data or index
 * changes). Lock held; the shard has no users. */
static void drop_cached(cairn_dagstore *ds, shard *sh)
{
	if (sh->mount && !sh->mount_users) {
		cairn_mount_close(sh->mount);
		sh->mount = NULL;
		slot_give(ds);
	}
	if (!sh->refs) {
		cairn_car_index_free(sh->index);
		sh->index = NULL;
		sh->index_checked = false;
	}
}

/* ------------------------------------------------------------ indexing */

typedef struct index_job {
	cairn_dagstore *ds;
	shard *sh;
	cairn_car_index_builder *builder;
	cairn_buf entries;       /* {u64 offset, u32 size, u8 mh_len, mh} packed */
	uint64_t blocks;
	size_t cursor;           /* for the tlindex iterator */
} index_job;

static int on_section(const cairn_car_section *s, void *payload)
{
	index_job *job = payload;
	const cairn_cid *cid = &s->cid;
	uint8_t mh_len = (uint8_t)(cid->len - cid->mh_off);
	uint8_t head[13];
	int rc;

	if ((rc = cairn_car_index_builder_add(job->builder, cid, s->offset)))
		return rc;
	job->blocks++;
	if (cid->mh_code == CAIRN_MH_IDENTITY)
		return 0; /* the data is in the CID: nothing to find */
	if (s->block_len > UINT32_MAX)
		return cairn_error_set(CAIRN_ETOOBIG, "block at offset %llu is over 4 GiB",
				       (unsigned long long)s->offset);
	memcpy(head, &s->offset, 8);
	{
		uint32_t size = (uint32_t)s->block_len;

		memcpy(head + 8, &size, 4);
	}
	head[12] = mh_len;
	cairn_buf_append(&job->entries, head, sizeof(head));
	cairn_buf_append(&job->entries, cid->bytes + cid->mh_off, mh_len);
	return job->entries.err;
}

static int next_entry(cairn_tlindex_entry *out, void *payload)
{
	index_job *job = payload;
	const uint8_t *p;
	uint32_t size;

	if (job->cursor >= job->entries.len)
		return 0;
	p = job->entries.data + job->cursor;
	memcpy(&out->offset, p, 8);
	memcpy(&size, p + 8, 4);
	out->size = size;
	out->mh_len = p[12];
	out->mh = p + 13;
	job->cursor += 13 + p[12];
	return 1;
}

/* Writes the index file: temporary name, fsync, rename, fsync of the
 * directory. Returns its checksum in `sha`. */
static int write_index(cairn_dagstore *ds, uint32_t id, const cairn_buf *idx, uint8_t sha[32])
{
	char path[4096], tmp[4200], dir[4096];
	int fd, rc;

	index_path(path, sizeof(path), ds, id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(dir, sizeof(dir), "%s/indexes", ds->dir);
	SHA256(idx->data, idx->len, sha);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", tmp, strerror(errno));
	rc = cairn_file_write_full(fd, idx->data, idx->len, tmp);
	if (!rc && !ds->opts.no_sync)
		rc = cairn_file_fsync(fd, tmp);
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: rename: %s", path, strerror(errno));
	if (!rc && !ds->opts.no_sync)
		rc = cairn_file_fsync_dir(dir);
	if (rc)
		unlink(tmp);
	return rc;
}

/* Removes what an earlier, unfinished or replaced indexing left. */
static int drop_index(cairn_dagstore *ds, shard *sh)
{
	char path[4096];
	int rc;

	if (cairn_tlindex_has_shard(ds->tl, sh->id) == 1 &&
	    (rc = cairn_tlindex_remove_shard(ds->tl, sh->id)) && rc != CAIRN_ENOTFOUND)
		return rc;
	index_path(path, sizeof(path), ds, sh->id);
	if (unlink(path) < 0 && errno != ENOENT)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

/* Fetches and indexes; the shard is busy and in `during` (Initializing or
 * Recovering). Ends Available or Errored. */
static int index_shard(cairn_dagstore *ds, shard *sh, cairn_shard_state during)
{
	cairn_car_options copts = CAIRN_CAR_OPTIONS_INIT;
	index_job job = {ds, sh, NULL, {0}, 0, 0};
	cairn_car_reader *r = NULL;
	cairn_mount *m = NULL;
	cairn_buf idx = {0};
	uint8_t sha[32];
	uint64_t data_offset = 0, data_end = 0;
	cairn_db_stmt *st;
	bool writing = true;
	int rc, n;

	write_begin(ds, W_INDEX);
	if ((rc = set_state(ds, sh, during, NULL))) {
		write_end(ds, W_INDEX);
		return rc;
	}
	pthread_mutex_lock(&ds->lock);
	wait_unpinned(ds, sh);
	drop_cached(ds, sh);
	pthread_mutex_unlock(&ds->lock);
	if ((rc = drop_index(ds, sh)))
		goto fail;
	/* A transient copy of an HTTP piece is reused by URL, whatever the
	 * server holds now: a recovery must fetch again. */
	if (during == CAIRN_SHARD_RECOVERING && is_remote(sh))
		cairn_mount_http_gc(ds->http, sh->url, NULL);
	/* Fetching and reading write nothing of the store's but a transient
	 * copy (a .partial until whole): a quiesce need not wait for them. */
	write_end(ds, W_INDEX);
	writing = false;
	copts.trusted = !ds->opts.verify;
	copts.zero_length_as_eof = true;
	if ((rc = mount_open(&m, ds, sh)) ||
	    (rc = cairn_car_index_builder_new(&job.builder, CAIRN_CAR_INDEX_MH_SORTED, false)) ||
	    (rc = cairn_mount_car_open(&r, m, &copts, 0)))
		goto fail;
	data_offset = cairn_car_reader_data_offset(r);
	data_end = data_offset;
	for (;;) {
		cairn_car_section s;

		if ((n = cairn_car_reader_next(r, &s, false)) < 0) {
			rc = n;
			goto fail;
		}
		if (!n)
			break;
		if ((rc = on_section(&s, &job)))
			goto fail;
		/* Where the data ends: before the padding of a piece. */
		data_end = s.block_offset + s.block_len;
	}
	cairn_car_reader_free(r);
	r = NULL;
	mount_close(ds, m);
	m = NULL;
	if ((rc = cairn_car_index_builder_encode(job.builder, &idx)))
		goto fail;
	write_begin(ds, W_INDEX);
	writing = true;
	if ((rc = write_index(ds, sh->id, &idx, sha)) ||
	    (rc = cairn_tlindex_add_shard_iter(ds->tl, sh->id, next_entry, &job)))
		goto fail;
	if ((rc = cairn_db_prepare(&st, ds->db, sql_available)))
		goto fail;
	cairn_db_bind_int64(st, 1, CAIRN_SHARD_AVAILABLE);
	cairn_db_bind_int64(st, 2, (int64_t)job.blocks);
	cairn_db_bind_int64(st, 3, (int64_t)data_offset);
	cairn_db_bind_int64(st, 4, (int64_t)data_end);
	cairn_db_bind_int64(st, 5, (int64_t)idx.len);
	cairn_db_bind_blob(st, 6, sha, 32);
	cairn_db_bind_int64(st, 7, now_s());
	cairn_db_bind_int64(st, 8, now_s());
	cairn_db_bind_int64(st, 9, sh->id);
	rc = cairn_db_step(st);
	cairn_db_reset(st);
	if (rc < 0)
		goto fail;
	pthread_mutex_lock(&ds->lock);
	sh->state = CAIRN_SHARD_AVAILABLE;
	cairn_free(sh->error);
	sh->error = NULL;
	sh->blocks = job.blocks;
	sh->data_offset = data_offset;
	sh->data_end = data_end;
	sh->index_size = idx.len;
	memcpy(sh->index_sha256, sha, 32);
	sh->indexed_at = sh->updated_at = now_s();
	pthread_mutex_unlock(&ds->lock);
	rc = 0;
	goto out;
fail:
	{
		/* The reason goes on the shard; the same code is returned. */
		char reason[1024];

		snprintf(reason, sizeof(reason), "%s", cairn_error_last());
		cairn_car_reader_free(r);
		r = NULL;
		mount_close(ds, m);
		m = NULL;
		if (!writing) {
			write_begin(ds, W_INDEX);
			writing = true;
		}
		drop_index(ds, sh);
		set_state(ds, sh, CAIRN_SHARD_ERRORED, reason);
		cairn_error_set(rc, "%s", reason);
	}
out:
	if (writing)
		write_end(ds, W_INDEX);
	cairn_car_index_builder_free(job.builder);
	cairn_buf_free(&job.entries);
	cairn_buf_free(&idx);
	return rc;
}

/* Marks a shard busy if it is in one of the states allowed; returns it. */
static int claim(shard **out, cairn_dagstore *ds, const char *key, unsigned allowed_mask,
		 const char *verb)
{
	shard *sh;
	int rc = 0;

	pthread_mutex_lock(&ds->lock);
	if (!(sh = find_key(ds, key)))
		rc = cairn_error_set(CAIRN_ENOTFOUND, "no shard with key %s", key);
	else if (sh->busy)
		rc = cairn_error_set(CAIRN_EINVAL, "shard %s: already being indexed", key);
	else if (!(allowed_mask & (1u << (sh->state == CAIRN_SHARD_RECOVERING ? 4 :
					 sh->state == CAIRN_SHARD_ERRORED ? 5 : sh->state))))
		rc = cairn_error_set(CAIRN_EINVAL, "shard %s is %s: cannot %s it", key,
				     cairn_shard_state_name(sh->state), verb);
	else if (sh->refs)
		rc = cairn_error_set(CAIRN_EINVAL, "shard %s has %u acquirers: release them first",
				     key, sh->refs);
	else
		sh->busy = true;
	pthread_mutex_unlock(&ds->lock);
	*out = sh;
	return rc;
}

#define M_NEW (1u << 0)
#define M_INITIALIZING (1u << 1)
#define M_AVAILABLE (1u << 2)
#define M_RECOVERING (1u << 4)
#define M_ERRORED (1u << 5)

static void unbusy(cairn_dagstore *ds, shard *sh)
{
	pthread_mutex_lock(&ds->lock);
	sh->busy = false;
	pthread_cond_broadcast(&ds->slots);
	pthread_mutex_unlock(&ds->lock);
}

int cairn_dagstore_initialize(cairn_dagstore *ds, const char *key)
{
	shard *sh;
	int rc;

	if ((rc = claim(&sh, ds, key, M_NEW | M_AVAILABLE, "initialize")))
		return rc;
	rc = index_shard(ds, sh, CAIRN_SHARD_INITIALIZING);
	unbusy(ds, sh);
	return rc;
}

int cairn_dagstore_recover(cairn_dagstore *ds, const char *key)
{
	shard *sh;
	int rc;

	if ((rc = claim(&sh, ds, key, M_ERRORED, "recover")))
		return rc;
	rc = index_shard(ds, sh, CAIRN_SHARD_RECOVERING);
	unbusy(ds, sh);
	return rc;
}

typedef struct all_job {
	cairn_dagstore *ds;
	pthread_mutex_t lock;    /* the progress below and the callback */
	shard **todo;
	size_t n, next;
	cairn_dagstore_progress p;
	cairn_dagstore_progress_fn fn;
	void *payload;
	cairn_shard_state during;
} all_job;

static void *all_worker(void *arg)
{
	all_job *job = arg;

	for (;;) {
		shard *sh;
		int rc;

		pthread_mutex_lock(&job->lock);
		if (job->next == job->n) {
			pthread_mutex_unlock(&job->lock);
			return NULL;
		}
		sh = job->todo[job->next++];
		pthread_mutex_unlock(&job->lock);
		rc = index_shard(job->ds, sh, job->during);
		unbusy(job->ds, sh);
		pthread_mutex_lock(&job->lock);
		job->p.done++;
		if (rc)
			job->p.failed++;
		job->p.blocks += rc ? 0 : sh->blocks;
		job->p.key = sh->key;
		job->p.result = rc;
		if (job->fn)
			job->fn(&job->p, job->payload);
		pthread_mutex_unlock(&job->lock);
	}
}

/* Runs index_shard over `todo` (already claimed) on `threads` threads. */
static int run_all(cairn_dagstore *ds, shard **todo, size_t n, unsigned threads,
		   cairn_shard_state during, cairn_dagstore_progress_fn fn, void *payload,
		   cairn_dagstore_progress *out)
{
	all_job job;
	pthread_t tids[64];
	unsigned started = 0;

	memset(&job, 0, sizeof(job));
	job.ds = ds;
	job.todo = todo;
	job.n = n;
	job.p.total = n;
	job.fn = fn;
	job.payload = payload;
	job.during = during;
	pthread_mutex_init(&job.lock, NULL);
	if (!threads) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		threads = c > 0 ? (unsigned)c : 1;
	}
	if (threads > 64)
		threads = 64;
	if (threads > n)
		threads = (unsigned)(n ? n : 1);
	for (unsigned i = 1; i < threads; i++)
		if (!pthread_create(&tids[started], NULL, all_worker, &job))
			started++;
	all_worker(&job);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&job.lock);
	if (out) {
		*out = job.p;
		out->key = NULL;
	}
	return 0;
}

/* Claims every shard in one of `mask`'s states. */
static int claim_all(shard ***out, size_t *n_out, cairn_dagstore *ds, unsigned mask)
{
	shard **todo;
	size_t n = 0;

	pthread_mutex_lock(&ds->lock);
	if (!(todo = cairn_malloc((ds->n ? ds->n : 1) * sizeof(*todo)))) {
		pthread_mutex_unlock(&ds->lock);
		return CAIRN_ENOMEM;
	}
	for (size_t i = 0; i < ds->n; i++) {
		shard *sh = ds->by_key[i];
		unsigned bit = sh->state == CAIRN_SHARD_RECOVERING ? M_RECOVERING :
			       sh->state == CAIRN_SHARD_ERRORED ? M_ERRORED : 1u << sh->state;

		if ((mask & bit) && !sh->busy && !sh->refs) {
			sh->busy = true;
			todo[n++] = sh;
		}
	}
	pthread_mutex_unlock(&ds->lock);
	*out = todo;
	*n_out = n;
	return 0;
}

int cairn_dagstore_initialize_all(cairn_dagstore *ds, unsigned concurrency,
				  cairn_dagstore_progress_fn fn, void *payload,
				  cairn_dagstore_progress *out)
{
	shard **todo;
	size_t n;
	int rc;

	if ((rc = claim_all(&todo, &n, ds, M_NEW)))
		return rc;
	rc = run_all(ds, todo, n, concurrency, CAIRN_SHARD_INITIALIZING, fn, payload, out);
	cairn_free(todo);
	return rc;
}

/* ---------------------------------------------------------- registry */

static const char sql_insert[] =
	"INSERT INTO dagstore_shards (key, url, state, created_at, updated_at)"
	" VALUES (?, ?, 0, ?, ?)";

static int cmp_spec_key(const void *a, const void *b)
{
	const cairn_shard_spec *x = *(const cairn_shard_spec *const *)a;
	const cairn_shard_spec *y = *(const cairn_shard_spec *const *)b;
	int c = strcmp(x->key, y->key);

	/* Equal keys in the order given: the first is the one registered. */
	return c ? c : (x < y ? -1 : x > y);
}

/* Marks in `repeat` the specs whose key an earlier spec of the batch has
 * with the same URL; CAIRN_EEXISTS when the URLs differ. Sorts pointers
 * rather than scanning the batch for each spec: a migration registers
 * 100,000 shards in one batch. */
static int batch_repeats(const cairn_shard_spec *specs, size_t n, bool *repeat)
{
	const cairn_shard_spec **by = cairn_malloc(n * sizeof(*by));
	int rc = 0;

	if (!by)
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < n; i++)
		by[i] = &specs[i];
	qsort(by, n, sizeof(*by), cmp_spec_key);
	for (size_t i = 1; i < n && !rc; i++) {
		if (strcmp(by[i]->key, by[i - 1]->key))
			continue;
		if (strcmp(by[i]->url, by[i - 1]->url))
			rc = cairn_error_set(CAIRN_EEXISTS, "shard %s is given twice, with %s and %s",
					     by[i]->key, by[i - 1]->url, by[i]->url);
		repeat[by[i] - specs] = true;
	}
	cairn_free(by);
	return rc;
}

int cairn_dagstore_register(cairn_dagstore *ds, const cairn_shard_spec *specs, size_t n,
			    size_t *added_out)
{
	shard **fresh = NULL;
	bool *repeat = NULL;
	size_t added = 0;
	int64_t t = now_s();
	int rc = 0;

	if (added_out)
		*added_out = 0;
	for (size_t i = 0; i < n; i++) {
		if (!specs[i].key || !*specs[i].key || strlen(specs[i].key) >= CAIRN_SHARD_KEY_MAX)
			return cairn_error_set(CAIRN_EINVAL, "shard %zu: the key must be 1 to %d bytes",
					       i + 1, CAIRN_SHARD_KEY_MAX - 1);
		if (!specs[i].url || !strstr(specs[i].url, "://"))
			return cairn_error_set(CAIRN_EINVAL,
					       "shard %s: \"%s\" is not a mount URL (file:///path, "
					       "http://host/path)", specs[i].key,
					       specs[i].url ? specs[i].url : "");
	}
	if (!n)
		return 0;
	write_begin(ds, W_REGISTER);
	if (!(fresh = cairn_calloc(n, sizeof(*fresh))) ||
	    !(repeat = cairn_calloc(n, sizeof(*repeat)))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	if ((rc = batch_repeats(specs, n, repeat)) || (rc = cairn_db_begin(ds->db)))
		goto out;
	pthread_mutex_lock(&ds->lock);
	for (size_t i = 0; i < n && !rc; i++) {
		shard *old;
		cairn_db_stmt *st;

		if (repeat[i])
			continue;
		if ((old = find_key(ds, specs[i].key))) {
			if (strcmp(old->url, specs[i].url))
				rc = cairn_error_set(CAIRN_EEXISTS,
						     "shard %s is already registered with %s",
						     specs[i].key, old->url);
			continue;
		}
		if ((rc = cairn_db_prepare(&st, ds->db, sql_insert)))
			break;
		cairn_db_bind_text(st, 1, specs[i].key);
		cairn_db_bind_text(st, 2, specs[i].url);
		cairn_db_bind_int64(st, 3, t);
		cairn_db_bind_int64(st, 4, t);
		rc = cairn_db_step(st);
		if (rc >= 0) {
			int64_t id = cairn_db_last_insert_id(st);
			shard *sh = cairn_calloc(1, sizeof(*sh));

			rc = 0;
			if (!sh || id <= 0 || id > (int64_t)UINT32_MAX) {
				cairn_free(sh);
				rc = sh ? cairn_error_set(CAIRN_ETOOBIG, "shard ids exhausted")
					: CAIRN_ENOMEM;
			} else {
				sh->id = (uint32_t)id;
				sh->key = dup_str(specs[i].key);
				sh->url = dup_str(specs[i].url);
				sh->created_at = sh->updated_at = t;
				fresh[added++] = sh;
				if (!sh->key || !sh->url)
					rc = CAIRN_ENOMEM;
			}
		}
		cairn_db_reset(st);
	}
	if (rc) {
		pthread_mutex_unlock(&ds->lock);
		cairn_db_rollback(ds->db);
		goto out;
	}
	if ((rc = cairn_db_commit(ds->db))) {
		pthread_mutex_unlock(&ds->lock);
		goto out;
	}
	for (size_t i = 0; i < added; i++) {
		if ((rc = table_add(ds, fresh[i])))
			break; /* in the db: the next open loads them */
		fresh[i] = NULL;
	}
	if (ds->n > 1)
		qsort(ds->by_key, ds->n, sizeof(*ds->by_key), cmp_key);
	pthread_mutex_unlock(&ds->lock);
	if (added_out)
		*added_out = rc ? 0 : added;
out:
	write_end(ds, W_REGISTER);
	for (size_t i = 0; fresh && i < added; i++)
		shard_free(fresh[i]);
	cairn_free(fresh);
	cairn_free(repeat);
	return rc;
}

int cairn_dagstore_info(cairn_shard_info *out, cairn_dagstore *ds, const char *key)
{
	shard *sh;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ds->lock);
	if ((sh = find_key(ds, key)))
		snapshot(out, sh);
	pthread_mutex_unlock(&ds->lock);
	if (!sh)
		return cairn_error_set(CAIRN_ENOTFOUND, "no shard with key %s", key);
	return out->key && out->url ? 0 : CAIRN_ENOMEM;
}

int cairn_dagstore_list(cairn_dagstore *ds, cairn_shard_fn fn, void *payload)
{
	cairn_shard_info *all;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&ds->lock);
	n = ds->n;
	if (!(all = cairn_calloc(n ? n : 1, sizeof(*all)))) {
		pthread_mutex_unlock(&ds->lock);
		return CAIRN_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		snapshot(&all[i], ds->by_key[i]);
	pthread_mutex_unlock(&ds->lock);
	for (size_t i = 0; i < n && !rc; i++)
		rc = fn(&all[i], payload);
	for (size_t i = 0; i < n; i++)
		cairn_shard_info_clear(&all[i]);
	cairn_free(all);
	return rc;
}

int cairn_dagstore_destroy(cairn_dagstore *ds, const char *key)
{
	static const char sql_delete[] = "DELETE FROM dagstore_shards WHERE id = ?";
	cairn_db_stmt *st;
	shard *sh;
	int rc;

	/* The step first, then the claim: a destroy held by a quiesce does
	 * not keep the shard busy meanwhile. */
	write_begin(ds, W_DESTROY);
	if ((rc = claim(&sh, ds, key, M_NEW | M_AVAILABLE | M_ERRORED | M_INITIALIZING |
			M_RECOVERING, "destroy"))) {
		write_end(ds, W_DESTROY);
		return rc;
	}
	pthread_mutex_lock(&ds->lock);
	wait_unpinned(ds, sh);
	drop_cached(ds, sh);
	if (sh->mount) {
		pthread_mutex_unlock(&ds->lock);
		rc = cairn_error_set(CAIRN_EINVAL, "shard %s is being read: try again", key);
		goto fail;
	}
	pthread_mutex_unlock(&ds->lock);
	if ((rc = drop_index(ds, sh)) || (rc = cairn_db_prepare(&st, ds->db, sql_delete)))
		goto fail;
	cairn_db_bind_int64(st, 1, sh->id);
	rc = cairn_db_step(st);
	cairn_db_reset(st);
	if (rc < 0)
		goto fail;
	pthread_mutex_lock(&ds->lock);
	table_remove(ds, sh);
	/* Acquirers waiting for the busy shard look it up again: gone. */
	pthread_cond_broadcast(&ds->slots);
	pthread_mutex_unlock(&ds->lock);
	write_end(ds, W_DESTROY);
	shard_free(sh);
	return 0;
fail:
	unbusy(ds, sh);
	write_end(ds, W_DESTROY);
	return rc;
}

/* ------------------------------------------------------------ reading */

/* Maps the shard's index and, the first time since open, checks it against
 * the recorded size and checksum: a missing or damaged index sends the
 * shard to Errored, which recovery repairs. Lock not held. */
static int shard_index(cairn_car_index **out, cairn_dagstore *ds, shard *sh)
{
	char path[4096];
	cairn_car_index *idx = NULL;
	cairn_buf bytes = {0};
	uint8_t sha[32];
	int rc;

	pthread_mutex_lock(&ds->lock);
	if (sh->index && sh->index_checked) {
		*out = sh->index;
		pthread_mutex_unlock(&ds->lock);
		return 0;
	}
	pthread_mutex_unlock(&ds->lock);
	index_path(path, sizeof(path), ds, sh->id);
	rc = cairn_file_read_all(&bytes, path, SIZE_MAX);
	if (!rc) {
		SHA256(bytes.data, bytes.len, sha);
		if (bytes.len != sh->index_size || memcmp(sha, sh->index_sha256, 32))
			rc = cairn_error_set(CAIRN_ECORRUPT,
					     "%s: the index does not match its checksum "
					     "(run `cairn dagstore recover-shard %s`)", path, sh->key);
	}
	cairn_buf_free(&bytes);
	if (!rc)
		rc = cairn_car_index_open(&idx, path, 0);
	if (rc) {
		char reason[1024];

		snprintf(reason, sizeof(reason), "index: %s", cairn_error_last());
		set_state(ds, sh, CAIRN_SHARD_ERRORED, reason);
		return cairn_error_set(rc, "shard %s: %s", sh->key, reason);
	}
	pthread_mutex_lock(&ds->lock);
	if (sh->index) {
		cairn_car_index_free(idx);
	} else {
		sh->index = idx;
	}
	sh->index_checked = true;
	*out = sh->index;
	pthread_mutex_unlock(&ds->lock);
	return 0;
}

typedef struct shard_store {
	cairn_store base;
	cairn_dagstore *ds;
	shard *sh;
	cairn_mount *m;
	cairn_car_index *idx;
	cairn_car_options copts;
} shard_store;

static int ss_find(shard_store *s, uint64_t *offset, const cairn_cid *cid)
{
	int n = cairn_car_index_find(s->idx, cid, offset, 1);

	if (n < 0)
		return n;
	return n ? 0 : CAIRN_ENOTFOUND;
}

static int ss_read(shard_store *s, cairn_buf *out, const cairn_cid *cid, bool verify)
{
	cairn_car_options o = s->copts;
	cairn_car_section sec;
	uint64_t off;
	int rc;

	if ((rc = ss_find(s, &off, cid)))
		return rc;
	o.trusted = !verify;
	if ((rc = cairn_mount_car_section_read(&sec, out, s->m, s->sh->data_offset,
					       s->sh->data_end, off, &o)))
		return rc;
	if (!cairn_cid_multihash_equal(&sec.cid, cid))
		return cairn_error_set(CAIRN_ECORRUPT, "shard %s: offset %llu holds another block",
				       s->sh->key, (unsigned long long)off);
	return 0;
}

static int ss_get(cairn_store *base, cairn_buf *out, const cairn_cid *cid)
{
	return ss_read((shard_store *)base, out, cid, true);
}

static int ss_get_size(cairn_store *base, uint64_t *size_out, const cairn_cid *cid)
{
	cairn_buf b = {0};
	int rc = ss_read((shard_store *)base, &b, cid, false);

	if (!rc)
		*size_out = b.len;
	cairn_buf_free(&b);
	return rc;
}

static int ss_has(cairn_store *base, const cairn_cid *cid)
{
	uint64_t off;
	int rc = ss_find((shard_store *)base, &off, cid);

	return rc == CAIRN_ENOTFOUND ? 0 : rc ? rc : 1;
}

static void ss_free(cairn_store *base)
{
	shard_store *s = (shard_store *)base;
	cairn_dagstore *ds = s->ds;

	mount_close(ds, s->m);
	pthread_mutex_lock(&ds->lock);
	s->sh->refs--;
	pthread_cond_broadcast(&ds->slots);
	pthread_mutex_unlock(&ds->lock);
	cairn_free(s);
}

static const cairn_store_ops shard_store_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "dagstore-shard",
	.get = ss_get,
	.get_size = ss_get_size,
	.has = ss_has,
	.free = ss_free,
};

int cairn_dagstore_acquire(cairn_store **out, cairn_dagstore *ds, const char *key)
{
	shard_store *s;
	shard *sh;
	int rc;

	*out = NULL;
	if (!(s = cairn_calloc(1, sizeof(*s))))
		return CAIRN_ENOMEM;
	/* The state is looked at and the reference taken under the lock, so a
	 * destroy or an indexing cannot come in between. */
	for (;;) {
		pthread_mutex_lock(&ds->lock);
		if (!(sh = find_key(ds, key))) {
			pthread_mutex_unlock(&ds->lock);
			cairn_free(s);
			return cairn_error_set(CAIRN_ENOTFOUND, "no shard with key %s", key);
		}
		if (sh->busy) {
			/* Being indexed: wait for the outcome. */
			pthread_cond_wait(&ds->slots, &ds->lock);
			pthread_mutex_unlock(&ds->lock);
			continue;
		}
		if (sh->state == CAIRN_SHARD_NEW) {
			/* Lazy initialization: the first acquirer indexes. */
			pthread_mutex_unlock(&ds->lock);
			rc = cairn_dagstore_initialize(ds, key);
			if (rc && rc != CAIRN_EINVAL) {
				cairn_free(s);
				return rc;
			}
			continue;
		}
		if (sh->state == CAIRN_SHARD_ERRORED) {
			rc = cairn_error_set(CAIRN_EINVAL, "shard %s is Errored: %s (run `cairn "
					     "dagstore recover-shard %s`)", key,
					     sh->error ? sh->error : "", key);
			pthread_mutex_unlock(&ds->lock);
			cairn_free(s);
			return rc;
		}
		if (sh->state != CAIRN_SHARD_AVAILABLE) {
			rc = cairn_error_set(CAIRN_EINVAL, "shard %s is %s", key,
					     cairn_shard_state_name(sh->state));
			pthread_mutex_unlock(&ds->lock);
			cairn_free(s);
			return rc;
		}
		sh->refs++;
		pthread_mutex_unlock(&ds->lock);
		break;
	}
	s->base.ops = &shard_store_ops;
	s->ds = ds;
	s->sh = sh;
	s->copts = (cairn_car_options)CAIRN_CAR_OPTIONS_INIT;
	s->copts.zero_length_as_eof = true;
	if ((rc = shard_index(&s->idx, ds, sh)) || (rc = mount_open(&s->m, ds, sh))) {
		pthread_mutex_lock(&ds->lock);
		sh->refs--;
		pthread_mutex_unlock(&ds->lock);
		cairn_free(s);
		return rc;
	}
	*out = &s->base;
	return 0;
}

static int cmp_hit(const void *a, const void *b)
{
	const cairn_tlindex_hit *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every hit for a CID, in shard order; identity CIDs have none. `*hits`
 * starts as `stack` (MAX_HITS long) and is allocated when more shards hold
 * the block: free it with hits_free. Returns the count or a negative code. */
static int tl_hits(cairn_tlindex_hit **hits, cairn_tlindex_hit *stack, const cairn_dagstore *ds,
		   const cairn_cid *cid)
{
	const uint8_t *mh = cid->bytes + cid->mh_off;
	size_t mh_len = (size_t)(cid->len - cid->mh_off);
	int n;

	*hits = stack;
	if (cid->mh_code == CAIRN_MH_IDENTITY)
		return 0;
	n = cairn_tlindex_lookup(stack, MAX_HITS, ds->tl, mh, mh_len);
	if (n > MAX_HITS) {
		/* A block many shards hold: every one of them counts. */
		size_t cap = (size_t)n;

		if (!(*hits = cairn_malloc(cap * sizeof(**hits)))) {
			*hits = stack;
			return CAIRN_ENOMEM;
		}
		n = cairn_tlindex_lookup(*hits, cap, ds->tl, mh, mh_len);
		if (n > (int)cap)
			n = (int)cap; /* more were added meanwhile */
	}
	if (n > 1)
		qsort(*hits, (size_t)n, sizeof(**hits), cmp_hit);
	return n;
}

static void hits_free(cairn_tlindex_hit *hits, cairn_tlindex_hit *stack)
{
	if (hits != stack)
		cairn_free(hits);
}

/* An Available shard, not being indexed, held for a top-level read or a
 * lookup: destroy, re-indexing and gc wait for (or skip) pinned shards, so
 * the shard, its cached mount and its index stay valid until unpin. */
static shard *pin(cairn_dagstore *ds, uint32_t id)
{
	shard *sh;

	pthread_mutex_lock(&ds->lock);
	sh = find_id(ds, id);
	if (sh && (sh->busy || sh->state != CAIRN_SHARD_AVAILABLE))
		sh = NULL;
	if (sh)
		sh->pins++;
	pthread_mutex_unlock(&ds->lock);
	return sh;
}

static void unpin(cairn_dagstore *ds, shard *sh)
{
	pthread_mutex_lock(&ds->lock);
	if (!--sh->pins)
		pthread_cond_broadcast(&ds->slots);
	pthread_mutex_unlock(&ds->lock);
}

/* A shard whose bytes no longer read back as they were indexed goes to
 * Errored, as dagstore does on a failed acquire: lookups skip it from then
 * on, and `recover-shard` brings it back. A remote mount's failure may be a
 * passing network fault, so there only corruption counts. The state is
 * checked first so that a recovery under way is not overwritten. */
static void read_failed(cairn_dagstore *ds, shard *sh, int rc)
{
	char reason[1024];
	bool available;

	if (rc == CAIRN_ENOMEM || (is_remote(sh) && rc != CAIRN_ECORRUPT))
		return;
	pthread_mutex_lock(&ds->lock);
	available = sh->state == CAIRN_SHARD_AVAILABLE && !sh->busy;
	pthread_mutex_unlock(&ds->lock);
	if (!available)
		return;
	snprintf(reason, sizeof(reason), "%s", cairn_error_last());
	cairn_log(CAIRN_LOG_WARN, "dagstore: shard %s: a read failed, so it is Errored until "
		  "recovered: %s", sh->key, reason);
	set_state(ds, sh, CAIRN_SHARD_ERRORED, reason);
	cairn_error_set(rc, "%s", reason);
}

/* Reads the block at a hit, checking it is the CID's. */
/* How read_hit hashes what it reads. */
enum hashing {
	HASH_NONE,   /* only the section's CID is checked (sizes, presence) */
	HASH_REMOTE, /* a local file's block was hashed when it was indexed */
	HASH_ALL,
};

static int read_hit(cairn_dagstore *ds, cairn_buf *out, const cairn_cid *cid,
		    const cairn_tlindex_hit *hit, enum hashing hashing, char *key_out)
{
	cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;
	cairn_car_section sec;
	cairn_mount *m;
	shard *sh;
	int rc;

	if (!(sh = pin(ds, hit->shard)))
		return CAIRN_ENOTFOUND;
	if ((rc = cached_mount_get(&m, ds, sh))) {
		read_failed(ds, sh, rc);
		unpin(ds, sh);
		return rc;
	}
	o.trusted = hashing == HASH_NONE || (hashing == HASH_REMOTE && cairn_mount_fd(m) >= 0);
	o.zero_length_as_eof = true;
	rc = cairn_mount_car_section_read(&sec, out, m, sh->data_offset, sh->data_end,
					  hit->offset, &o);
	cached_mount_put(ds, sh);
	if (rc)
		read_failed(ds, sh, rc);
	else if (!cairn_cid_multihash_equal(&sec.cid, cid))
		rc = CAIRN_ENOTFOUND; /* a short-key collision: not this block */
	if (!rc && key_out)
		snprintf(key_out, CAIRN_SHARD_KEY_MAX, "%s", sh->key);
	unpin(ds, sh);
	return rc;
}

/* The block at a hit as a place in the shard's file, if it has one. */
static int locate_hit(cairn_dagstore *ds, cairn_block_location *out, const cairn_cid *cid,
		      const cairn_tlindex_hit *hit)
{
	cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;
	cairn_car_section sec;
	cairn_mount *m;
	shard *sh;
	int rc, fd;

	if (!(sh = pin(ds, hit->shard)))
		return CAIRN_ENOTFOUND;
	if ((rc = cached_mount_get(&m, ds, sh))) {
		read_failed(ds, sh, rc);
		unpin(ds, sh);
		return rc;
	}
	if ((fd = cairn_mount_fd(m)) < 0) {
		rc = cairn_error_set(CAIRN_EUNSUPPORTED, "shard %s is remote: its blocks have no "
				     "local file", sh->key);
	} else {
		rc = cairn_car_section_head_read(&sec, fd, cairn_mount_name(m), sh->data_offset,
						 sh->data_end, hit->offset, &o);
		if (rc)
			read_failed(ds, sh, rc);
		else if (!cairn_cid_multihash_equal(&sec.cid, cid))
			rc = CAIRN_ENOTFOUND; /* a short-key collision: not this block */
		else if ((out->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
			rc = cairn_error_set(CAIRN_EIO, "shard %s: dup: %s", sh->key, strerror(errno));
	}
	cached_mount_put(ds, sh);
	if (!rc) {
		out->offset = sec.block_offset;
		out->length = sec.block_len;
		snprintf(out->key, sizeof(out->key), "%s", sh->key);
	}
	unpin(ds, sh);
	return rc;
}

int cairn_dagstore_locate(cairn_dagstore *ds, cairn_block_location *out, const cairn_cid *cid)
{
	cairn_tlindex_hit stack[MAX_HITS], *hits;
	int n, rc = CAIRN_ENOTFOUND;

	out->fd = -1;
	if (cid->mh_code == CAIRN_MH_IDENTITY)
		return cairn_error_set(CAIRN_EUNSUPPORTED, "an identity CID has no block to locate");
	if ((n = tl_hits(&hits, stack, ds, cid)) < 0)
		return n;
	for (int i = 0; i < n; i++) {
		int r = locate_hit(ds, out, cid, &hits[i]);

		if (!r) {
			hits_free(hits, stack);
			return 0;
		}
		/* a local holder's failure is the one to report over "remote" */
		if (r != CAIRN_ENOTFOUND && (rc == CAIRN_ENOTFOUND || rc == CAIRN_EUNSUPPORTED))
			rc = r;
	}
	hits_free(hits, stack);
	if (rc == CAIRN_ENOTFOUND) {
		char s[CAIRN_CID_MAX_STRING];

		cairn_cid_to_string(s, cid);
		return cairn_error_set(CAIRN_ENOTFOUND, "no Available shard holds %s", s);
	}
	return rc;
}

static int get(cairn_dagstore *ds, cairn_buf *out, const cairn_cid *cid, enum hashing hashing,
	       char *key_out)
{
	cairn_tlindex_hit stack[MAX_HITS], *hits;
	int n, rc = CAIRN_ENOTFOUND;

	if (cid->mh_code == CAIRN_MH_IDENTITY) {
		cairn_buf_clear(out);
		return cairn_buf_append(out, cid->bytes + cid->digest_off, cid->digest_len);
	}
	if ((n = tl_hits(&hits, stack, ds, cid)) < 0)
		return n;
	for (int i = 0; i < n; i++) {
		/* A shard that cannot be read (its file gone, a network error)
		 * does not hide the others that hold the block. */
		int r = read_hit(ds, out, cid, &hits[i], hashing, key_out);

		if (!r) {
			hits_free(hits, stack);
			return 0;
		}
		if (r != CAIRN_ENOTFOUND && rc == CAIRN_ENOTFOUND)
			rc = r;
	}
	hits_free(hits, stack);
	if (rc == CAIRN_ENOTFOUND) {
		char s[CAIRN_CID_MAX_STRING];

		cairn_cid_to_string(s, cid);
		return cairn_error_set(CAIRN_ENOTFOUND, "no Available shard holds %s", s);
	}
	return rc;
}

int cairn_dagstore_get(cairn_dagstore *ds, cairn_buf *out, const cairn_cid *cid, char *key_out)
{
	return get(ds, out, cid, HASH_ALL, key_out);
}

int cairn_dagstore_get_trusting_local(cairn_dagstore *ds, cairn_buf *out, const cairn_cid *cid,
				      char *key_out)
{
	return get(ds, out, cid, HASH_REMOTE, key_out);
}

int cairn_dagstore_get_size(cairn_dagstore *ds, uint64_t *size_out, const cairn_cid *cid)
{
	cairn_tlindex_hit stack[MAX_HITS], *hits;
	int n, err = CAIRN_ENOTFOUND;

	if (cid->mh_code == CAIRN_MH_IDENTITY) {
		*size_out = cid->digest_len;
		return 0;
	}
	if ((n = tl_hits(&hits, stack, ds, cid)) < 0)
		return n;
	for (int i = 0; i < n; i++) {
		cairn_buf b = {0};
		int rc = read_hit(ds, &b, cid, &hits[i], HASH_NONE, NULL);

		cairn_buf_free(&b);
		if (!rc) {
			*size_out = hits[i].size;
			hits_free(hits, stack);
			return 0;
		}
		if (rc != CAIRN_ENOTFOUND && err == CAIRN_ENOTFOUND)
			err = rc; /* another shard may still have it */
	}
	hits_free(hits, stack);
	if (err != CAIRN_ENOTFOUND)
		return err;
	return cairn_error_set(CAIRN_ENOTFOUND, "no Available shard holds the block");
}

int cairn_dagstore_has(cairn_dagstore *ds, const cairn_cid *cid)
{
	uint64_t size;
	int rc = cairn_dagstore_get_size(ds, &size, cid);

	if (rc == CAIRN_ENOTFOUND) {
		cairn_error_clear();
		return 0;
	}
	return rc ? rc : 1;
}

int cairn_dagstore_lookup(cairn_dagstore *ds, const cairn_cid *cid, cairn_shard_fn fn,
			  void *payload)
{
	cairn_tlindex_hit stack_hits[MAX_HITS], *hits;
	shard *stack_found[MAX_HITS], **found = stack_found;
	int n, count = 0, rc = 0;

	if ((n = tl_hits(&hits, stack_hits, ds, cid)) < 0)
		return n;
	if (n > MAX_HITS && !(found = cairn_malloc((size_t)n * sizeof(*found)))) {
		found = stack_found;
		rc = CAIRN_ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		cairn_car_index *idx;
		uint64_t off;
		shard *sh;

		if (i > 0 && hits[i].shard == hits[i - 1].shard)
			continue;
		if (!(sh = pin(ds, hits[i].shard)))
			continue;
		/* Confirmed by the shard's own index: the top-level key is short.
		 * A shard whose index is missing or damaged is now Errored with
		 * the reason: the others still answer. */
		if ((rc = shard_index(&idx, ds, sh))) {
			unpin(ds, sh);
			if (rc == CAIRN_ENOMEM)
				goto out;
			rc = 0;
			continue;
		}
		if ((rc = cairn_car_index_find(idx, cid, &off, 1)) < 0) {
			unpin(ds, sh);
			goto out;
		}
		if (rc > 0)
			found[count++] = sh; /* stays pinned until its snapshot */
		else
			unpin(ds, sh);
		rc = 0;
	}
	/* Key order (keys are fixed while pinned). */
	if (count > 1)
		qsort(found, (size_t)count, sizeof(*found), cmp_key);
	for (int i = 0; i < count; i++) {
		cairn_shard_info info;

		pthread_mutex_lock(&ds->lock);
		snapshot(&info, found[i]);
		pthread_mutex_unlock(&ds->lock);
		if (!rc && fn)
			rc = fn(&info, payload);
		cairn_shard_info_clear(&info);
	}
out:
	for (int i = 0; i < count; i++)
		unpin(ds, found[i]);
	hits_free(hits, stack_hits);
	if (found != stack_found)
		cairn_free(found);
	return rc ? rc : count;
}

/* ----------------------------------------------------------- open, gc */

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

/* Index files no shard owns, and temporary ones: what a crash left. */
static int remove_orphans(cairn_dagstore *ds, uint64_t *removed)
{
	char dir[4096];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/indexes", ds->dir);
	if (!(d = opendir(dir)))
		return cairn_error_set(CAIRN_EIO, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		char *end, path[4400];
		unsigned long id;
		bool keep;

		if (de->d_name[0] == '.')
			continue;
		id = strtoul(de->d_name, &end, 10);
		pthread_mutex_lock(&ds->lock);
		keep = !strcmp(end, ".idx") && find_id(ds, (uint32_t)id);
		pthread_mutex_unlock(&ds->lock);
		if (keep)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0 && removed)
			(*removed)++;
	}
	closedir(d);
	return 0;
}

cairn_mount_registry *cairn_dagstore_mounts(cairn_dagstore *ds)
{
	return ds->mounts;
}

int cairn_dagstore_open(cairn_dagstore **out, cairn_db *db, const char *dir,
			const cairn_dagstore_options *opts)
{
	static const cairn_dagstore_options defaults = CAIRN_DAGSTORE_OPTIONS_INIT;
	cairn_tlindex_options tlo = CAIRN_TLINDEX_OPTIONS_INIT;
	cairn_mount_http_options ho;
	cairn_dagstore *ds;
	char path[4096];
	shard **todo = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!(ds = cairn_calloc(1, sizeof(*ds))))
		return CAIRN_ENOMEM;
	ds->db = db;
	ds->opts = opts ? *opts : defaults;
	if (!ds->opts.max_open)
		ds->opts.max_open = DEFAULT_MAX_OPEN;
	if (!ds->opts.transient_budget)
		ds->opts.transient_budget = DEFAULT_TRANSIENT_BUDGET;
	pthread_mutex_init(&ds->lock, NULL);
	pthread_cond_init(&ds->slots, NULL);
	pthread_cond_init(&ds->gate, NULL);
	if (!(ds->dir = dup_str(dir))) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/indexes", dir);
	if ((rc = make_dir(dir)) || (rc = make_dir(path)))
		goto fail;
	snprintf(path, sizeof(path), "%s/transients", dir);
	if ((rc = make_dir(path)))
		goto fail;
	if ((rc = cairn_db_migrate(db, "dagstore", migrations,
				   sizeof(migrations) / sizeof(migrations[0]))) ||
	    (rc = load(ds)))
		goto fail;
	tlo.no_sync = ds->opts.no_sync;
	snprintf(path, sizeof(path), "%s/toplevel", dir);
	if ((rc = cairn_tlindex_open(&ds->tl, path, &tlo)))
		goto fail;
	if ((rc = cairn_mount_registry_new(&ds->mounts)) ||
	    (rc = cairn_mount_registry_add(ds->mounts, "file", &cairn_mount_file_ops, NULL)))
		goto fail;
	ho = (cairn_mount_http_options)CAIRN_MOUNT_HTTP_OPTIONS_INIT;
	snprintf(path, sizeof(path), "%s/transients", dir);
	ho.transients_dir = path;
	ho.transients_max_bytes = ds->opts.transient_budget;
	if ((rc = cairn_mount_http_new(&ds->http, &ho)) ||
	    (rc = cairn_mount_http_register(ds->http, ds->mounts)))
		goto fail;
	if (ds->opts.add_mounts &&
	    (rc = ds->opts.add_mounts(ds->mounts, ds->opts.add_mounts_payload)))
		goto fail;
	if ((rc = remove_orphans(ds, NULL)))
		goto fail;
	/* Available shards must have their top-level entries: a crash during
	 * destroy can leave one without. */
	for (size_t i = 0; i < ds->n; i++) {
		shard *sh = ds->by_key[i];

		if (sh->state == CAIRN_SHARD_AVAILABLE && cairn_tlindex_has_shard(ds->tl, sh->id) != 1)
			set_state(ds, sh, CAIRN_SHARD_ERRORED,
				  "its top-level index entries are missing (a crash during destroy?): "
				  "recover or destroy it");
	}
	/* Resume what a crash interrupted. */
	if ((rc = claim_all(&todo, &n, ds, M_INITIALIZING | M_RECOVERING)))
		goto fail;
	if (n) {
		shard **init = cairn_malloc(n * sizeof(*init)), **rec = cairn_malloc(n * sizeof(*rec));
		size_t ni = 0, nr = 0;

		if (!init || !rec) {
			cairn_free(init);
			cairn_free(rec);
			cairn_free(todo);
			rc = CAIRN_ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			if (todo[i]->state == CAIRN_SHARD_RECOVERING)
				rec[nr++] = todo[i];
			else
				init[ni++] = todo[i];
		}
		cairn_log(CAIRN_LOG_INFO, "dagstore: resuming %zu shards interrupted by a crash", n);
		run_all(ds, init, ni, 0, CAIRN_SHARD_INITIALIZING, NULL, NULL, NULL);
		run_all(ds, rec, nr, 0, CAIRN_SHARD_RECOVERING, NULL, NULL, NULL);
		cairn_free(init);
		cairn_free(rec);
	}
	cairn_free(todo);
	*out = ds;
	return 0;
fail:
	cairn_dagstore_close(ds);
	return rc;
}

int cairn_dagstore_gc(cairn_dagstore *ds, cairn_dagstore_gc_stats *out)
{
	uint64_t freed = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	write_begin(ds, W_GC);
	pthread_mutex_lock(&ds->lock);
	for (size_t i = 0; i < ds->n; i++)
		if (!ds->by_key[i]->refs && !ds->by_key[i]->busy && !ds->by_key[i]->pins)
			drop_cached(ds, ds->by_key[i]);
	pthread_mutex_unlock(&ds->lock);
	if ((rc = cairn_mount_http_gc(ds->http, NULL, &freed)) < 0)
		goto out;
	out->bytes_freed = freed;
	out->transients_removed = (uint64_t)rc;
	if (!(rc = remove_orphans(ds, &out->orphans_removed)))
		rc = cairn_tlindex_compact(ds->tl);
out:
	write_end(ds, W_GC);
	return rc;
}

void cairn_dagstore_close(cairn_dagstore *ds)
{
	if (!ds)
		return;
	for (size_t i = 0; i < ds->n; i++)
		shard_free(ds->by_key[i]);
	cairn_free(ds->by_key);
	cairn_free(ds->by_id);
	cairn_tlindex_close(ds->tl);
	cairn_mount_http_free(ds->http);
	cairn_mount_registry_free(ds->mounts);
	pthread_mutex_destroy(&ds->lock);
	pthread_cond_destroy(&ds->slots);
	pthread_cond_destroy(&ds->gate);
	cairn_free(ds->dir);
	cairn_free(ds);
}
