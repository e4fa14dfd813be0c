/* deal.c: the inbound deal flow: stage a deal's bytes, add them to an open
 * sector checking their CommP on the way, register and index the shard, each
 * step a row update in `deals` so that a kill -9 anywhere resumes where it
 * stopped.
 *
 * The data is read and hashed once: add-piece computes the CommP while it
 * fr32-pads into the unsealed file and checks it against the piece CID
 * before anything marks the piece (cairn_sector_add_piece_checked). A
 * separate pass first would read and hash 1 GiB twice (3.65 s against
 * 2.70 s for dd of the same file); overlapping the two passes would still
 * spend both cores on hashing twice.
 *
 * Steps and what a crash after each leaves (the row's state is the last
 * step recorded; every step is idempotent from it):
 *   Staging     row inserted; staged bytes up to `staged_bytes` are fsynced.
 *               Resume: truncate the staged file to staged_bytes, read the
 *               source on from there.
 *   Staged      the data whole; payload size known, CommP not yet checked.
 *               Resume: choose a sector.
 *   (chosen)    miner_id/sector_num recorded, state still Staged: adding,
 *               unchecked. add-piece writes past the sector's last piece
 *               and marks the range (trailer, then index) only once the
 *               CommP matched ("written" is the step inside that window).
 *               Resume: if the sector lists a piece with this CommP (the
 *               crash came after add-piece committed, so it was checked),
 *               adopt its offset; else add again, which punches or
 *               overwrites whatever an unfinished add left there (unmarked,
 *               so never read), and on a mismatch frees it.
 *   Added       offset recorded. Resume: register.
 *   Registered  shard New (or Initializing: the DAG store resumes it on
 *               open). Resume: initialize (recover if Errored).
 *   Available   shard indexed, staged copy removed (unlinked before the
 *               state changes, so a crash between leaves nothing to find).
 * A CommP that is not the piece CID (or a payload size not the v2 CID's)
 * deletes the row and the staged file, and leaves the sector as it was. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn/deal.h"

/* Staged bytes are fsynced and their length recorded this often: a crash
 * loses at most this much to fetch again. */
#define CHECKPOINT_BYTES (64u << 20)
#define CHUNK (4u << 20)
#define DEFAULT_MINER 1000

struct cairn_deals {
	char *repo;
	char *staging;
	cairn_db *db;
	cairn_sector_store *st;
	cairn_dagstore *ds;
	pthread_mutex_t mu; /* one import at a time */
};

static const cairn_db_migration migrations[] = {
	{1, "CREATE TABLE deals ("
	    " piece_cid TEXT PRIMARY KEY,"
	    " state INTEGER NOT NULL,"
	    " source TEXT NOT NULL,"
	    " staged TEXT,"                     /* under the repo; NULL: read in place */
	    " staged_bytes INTEGER NOT NULL DEFAULT 0,"
	    " payload_size INTEGER NOT NULL DEFAULT 0,"
	    " padded_size INTEGER NOT NULL DEFAULT 0,"
	    " miner_id INTEGER,"
	    " sector_num INTEGER,"
	    " sector_offset INTEGER,"
	    " created_at INTEGER NOT NULL,"
	    " updated_at INTEGER NOT NULL);"
	    "CREATE TABLE deal_markers (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);"},
};

static const char *const state_names[] = {"Staging", "Staged", "Added", "Registered", "Available"};

const char *cairn_deal_state_name(cairn_deal_state state)
{
	return (unsigned)state < 5 ? state_names[state] : NULL;
}

void cairn_deal_info_clear(cairn_deal_info *info)
{
	if (!info)
		return;
	cairn_free(info->source);
	memset(info, 0, sizeof(*info));
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int run(cairn_db_stmt *s)
{
	int rc;

	while ((rc = cairn_db_step(s)) > 0)
		;
	cairn_db_reset(s);
	return rc;
}

/* ---------------------------------------------------------------- rows */

#define ROW_COLS "piece_cid, state, source, staged, staged_bytes, payload_size, padded_size," \
		 " miner_id, sector_num, sector_offset, created_at, updated_at"

typedef struct deal_row {
	cairn_deal_info info;
	char *staged;       /* relative to the repo; NULL: in place */
	uint64_t staged_bytes;
	bool chosen;        /* a sector recorded (state Staged or later) */
} deal_row;

static void row_clear(deal_row *r)
{
	cairn_deal_info_clear(&r->info);
	cairn_free(r->staged);
	r->staged = NULL;
}

static int row_read(deal_row *r, cairn_db_stmt *s)
{
	const char *t;

	memset(r, 0, sizeof(*r));
	t = cairn_db_column_text(s, 0);
	snprintf(r->info.piece_cid, sizeof(r->info.piece_cid), "%s", t ? t : "");
	r->info.state = (cairn_deal_state)cairn_db_column_int64(s, 1);
	t = cairn_db_column_text(s, 2);
	if (!(r->info.source = cairn_strndup(t ? t : "", strlen(t ? t : ""))))
		return CAIRN_ENOMEM;
	if ((t = cairn_db_column_text(s, 3)) && !(r->staged = cairn_strndup(t, strlen(t))))
		return CAIRN_ENOMEM;
	r->staged_bytes = (uint64_t)cairn_db_column_int64(s, 4);
	r->info.payload_size = (uint64_t)cairn_db_column_int64(s, 5);
	r->info.padded_size = (uint64_t)cairn_db_column_int64(s, 6);
	r->chosen = !cairn_db_column_is_null(s, 8);
	r->info.sector.miner = (uint64_t)cairn_db_column_int64(s, 7);
	r->info.sector.number = (uint64_t)cairn_db_column_int64(s, 8);
	r->info.in_sector = !cairn_db_column_is_null(s, 9);
	r->info.offset = (uint64_t)cairn_db_column_int64(s, 9);
	r->info.created_at = cairn_db_column_int64(s, 10);
	r->info.updated_at = cairn_db_column_int64(s, 11);
	return 0;
}

/* 1 with *r filled, 0 when there is no such deal. */
static int row_get(deal_row *r, cairn_deals *d, const char *key)
{
	static const char sql[] = "SELECT " ROW_COLS " FROM deals WHERE piece_cid = ?1";
	cairn_db_stmt *s;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if (!(rc = cairn_db_bind_text(s, 1, key)) && (rc = cairn_db_step(s)) > 0)
		rc = row_read(r, s) ? CAIRN_ENOMEM : 1;
	cairn_db_reset(s);
	if (rc < 0)
		row_clear(r);
	return rc;
}

static int row_insert(cairn_deals *d, const char *key, const char *source)
{
	static const char sql[] =
		"INSERT INTO deals (piece_cid, state, source, created_at, updated_at)"
		" VALUES (?1, 0, ?2, ?3, ?3)";
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(s, 1, key)) || (rc = cairn_db_bind_text(s, 2, source)) ||
	    (rc = cairn_db_bind_int64(s, 3, now_s()))) {
		cairn_db_reset(s);
		return rc;
	}
	return run(s);
}

/* The source may change between runs (the same bytes from elsewhere). */
static int row_set_source(cairn_deals *d, const char *key, const char *source)
{
	static const char sql[] = "UPDATE deals SET source = ?2 WHERE piece_cid = ?1";
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(s, 1, key)) || (rc = cairn_db_bind_text(s, 2, source))) {
		cairn_db_reset(s);
		return rc;
	}
	return run(s);
}

static int row_staging(cairn_deals *d, const char *key, const char *staged, uint64_t bytes)
{
	static const char sql[] =
		"UPDATE deals SET staged = ?2, staged_bytes = ?3, updated_at = ?4 WHERE piece_cid = ?1";
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(s, 1, key)) || (rc = cairn_db_bind_text(s, 2, staged)) ||
	    (rc = cairn_db_bind_int64(s, 3, (int64_t)bytes)) ||
	    (rc = cairn_db_bind_int64(s, 4, now_s()))) {
		cairn_db_reset(s);
		return rc;
	}
	return run(s);
}

static int row_staged(cairn_deals *d, const char *key, const cairn_piece_info *pi)
{
	static const char sql[] =
		"UPDATE deals SET state = 1, payload_size = ?2, padded_size = ?3, updated_at = ?4"
		" WHERE piece_cid = ?1";
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(s, 1, key)) ||
	    (rc = cairn_db_bind_int64(s, 2, (int64_t)pi->payload_size)) ||
	    (rc = cairn_db_bind_int64(s, 3, (int64_t)pi->padded_size)) ||
	    (rc = cairn_db_bind_int64(s, 4, now_s()))) {
		cairn_db_reset(s);
		return rc;
	}
	return run(s);
}

/* The sector chosen (offset NULL) or the piece placed in it (state Added). */
static int row_sector(cairn_deals *d, const char *key, const cairn_sector_id *sid,
		      const uint64_t *offset)
{
	static const char sql[] =
		"UPDATE deals SET miner_id = ?2, sector_num = ?3, sector_offset = ?4,"
		" state = CASE WHEN ?4 IS NULL THEN state ELSE 2 END, updated_at = ?5"
		" WHERE piece_cid = ?1";
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(s, 1, key)) ||
	    (rc = cairn_db_bind_int64(s, 2, (int64_t)sid->miner)) ||
	    (rc = cairn_db_bind_int64(s, 3, (int64_t)sid->number)) ||
	    (rc = offset ? cairn_db_bind_int64(s, 4, (int64_t)*offset) : cairn_db_bind_null(s, 4)) ||
	    (rc = cairn_db_bind_int64(s, 5, now_s()))) {
		cairn_db_reset(s);
		return rc;
	}
	return run(s);
}

static int row_state(cairn_deals *d, const char *key, cairn_deal_state state)
{
	static const char sql[] = "UPDATE deals SET state = ?2, updated_at = ?3 WHERE piece_cid = ?1";
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(s, 1, key)) || (rc = cairn_db_bind_int64(s, 2, state)) ||
	    (rc = cairn_db_bind_int64(s, 3, now_s()))) {
		cairn_db_reset(s);
		return rc;
	}
	return run(s);
}

static int row_delete(cairn_deals *d, const char *key)
{
	static const char sql[] = "DELETE FROM deals WHERE piece_cid = ?1";
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(s, 1, key))) {
		cairn_db_reset(s);
		return rc;
	}
	return run(s);
}

int cairn_deal_list(cairn_deals *d, cairn_deal_fn fn, void *payload)
{
	static const char sql[] = "SELECT " ROW_COLS " FROM deals ORDER BY created_at, rowid";
	cairn_db_stmt *s;
	deal_row *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;

	/* Rows are copied out first: fn may call into the db. */
	if ((rc = cairn_db_prepare(&s, d->db, sql)))
		return rc;
	while ((rc = cairn_db_step(s)) > 0) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			deal_row *nr = cairn_realloc(rows, nc * sizeof(*rows));

			if (!nr) {
				rc = CAIRN_ENOMEM;
				break;
			}
			rows = nr;
			cap = nc;
		}
		if (row_read(&rows[n], s)) {
			row_clear(&rows[n]);
			rc = CAIRN_ENOMEM;
			break;
		}
		n++;
	}
	cairn_db_reset(s);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = fn(&rows[i].info, payload);
		row_clear(&rows[i]);
	}
	cairn_free(rows);
	return rc;
}

/* ------------------------------------------------- first-start registry */

typedef struct reg_state {
	cairn_deals *d;
	uint64_t pieces, added;
	int rc;
} reg_state;

static int reg_sector(const cairn_sector_info *in, void *payload)
{
	reg_state *r = payload;

	for (size_t i = 0; i < in->n_pieces; i++) {
		char key[CAIRN_CID_MAX_STRING], url[CAIRN_CID_MAX_STRING + 16];
		cairn_shard_spec spec;
		cairn_cid cid;
		size_t added = 0;
		int rc;

		cairn_piece_cid_v1(&cid, in->pieces[i].info.commp);
		cairn_cid_to_string(key, &cid);
		snprintf(url, sizeof(url), "piece://%s", key);
		spec.key = key;
		spec.url = url;
		r->pieces++;
		rc = cairn_dagstore_register(r->d->ds, &spec, 1, &added);
		if (rc == CAIRN_EEXISTS) {
			/* registered already from elsewhere (a CAR file): leave it */
			cairn_log(CAIRN_LOG_INFO, "deal: piece %s has a shard already: %s", key,
				  cairn_error_last());
			cairn_error_clear();
			continue;
		}
		if (rc)
			return rc;
		r->added += added;
	}
	return 0;
}

/* Once per store: the pieces of sectors made before this flow (or by
 * `cairn sector add-piece`) become shards, as the seed registers every
 * existing deal on first start. Until some sector holds a piece there is
 * nothing to do and no marker is written. */
static int register_existing(cairn_deals *d)
{
	static const char get[] = "SELECT 1 FROM deal_markers WHERE name = 'pieces-registered'";
	static const char put[] =
		"INSERT OR IGNORE INTO deal_markers (name, created_at) VALUES ('pieces-registered', ?1)";
	reg_state r = {d, 0, 0, 0};
	cairn_db_stmt *s;
	int rc;

	if ((rc = cairn_db_prepare(&s, d->db, get)))
		return rc;
	rc = cairn_db_step(s);
	cairn_db_reset(s);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if ((rc = cairn_sector_list(d->st, reg_sector, &r)))
		return rc;
	if (!r.pieces)
		return 0;
	if ((rc = cairn_db_prepare(&s, d->db, put)))
		return rc;
	if ((rc = cairn_db_bind_int64(s, 1, now_s()))) {
		cairn_db_reset(s);
		return rc;
	}
	if ((rc = run(s)))
		return rc;
	cairn_log(CAIRN_LOG_INFO, "deal: first start: %" PRIu64 " pieces in sectors, %" PRIu64
		  " shards registered", r.pieces, r.added);
	return 0;
}

int cairn_deals_open(cairn_deals **out, const char *repo, cairn_db *db, cairn_sector_store *st,
		     cairn_dagstore *ds)
{
	cairn_deals *d;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	*out = NULL;
	if (!repo || !db || !st || !ds)
		return cairn_error_set(CAIRN_EINVAL, "cairn_deals_open: a NULL argument");
	if ((rc = cairn_db_migrate(db, "deal", migrations, sizeof(migrations) / sizeof(migrations[0]))))
		return rc;
	if (!(d = cairn_calloc(1, sizeof(*d))))
		return CAIRN_ENOMEM;
	d->db = db;
	d->st = st;
	d->ds = ds;
	pthread_mutex_init(&d->mu, NULL);
	cairn_buf_printf(&b, "%s/staging", repo);
	if (b.err || !(d->repo = cairn_strndup(repo, strlen(repo)))) {
		cairn_buf_free(&b);
		cairn_deals_close(d);
		return CAIRN_ENOMEM;
	}
	d->staging = (char *)cairn_buf_detach(&b, NULL);
	if (mkdir(d->staging, 0700) < 0 && errno != EEXIST) {
		rc = cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", d->staging, strerror(errno));
		cairn_deals_close(d);
		return rc;
	}
	if ((rc = register_existing(d))) {
		cairn_deals_close(d);
		return rc;
	}
	*out = d;
	return 0;
}

void cairn_deals_close(cairn_deals *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->mu);
	cairn_free(d->repo);
	cairn_free(d->staging);
	cairn_free(d);
}

/* ------------------------------------------------------------- staging */

static void step(const cairn_deal_import_options *o, const char *name)
{
	if (o->on_step)
		o->on_step(name, o->step_payload);
}

/* Reads exactly n bytes (fewer only at the end of the stream: *got). */
static int read_full(int fd, uint8_t *p, size_t n, size_t *got)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, p + done, n - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cairn_error_set(CAIRN_EIO, "reading the deal's data: %s", strerror(errno));
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n, uint64_t off, const char *path)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return cairn_error_set(CAIRN_EIO, "%s: write at %" PRIu64 ": %s", path, off,
					       strerror(errno));
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* The source of the bytes: a mount (path or URL) or a descriptor. */
typedef struct deal_src {
	cairn_mount *m;
	int fd;          /* "-" */
	uint64_t size;   /* UINT64_MAX for a stream */
} deal_src;

static int source_open(deal_src *src, cairn_deals *d, const char *name,
		       const cairn_deal_import_options *o)
{
	memset(src, 0, sizeof(*src));
	src->fd = -1;
	src->size = UINT64_MAX;
	if (!strcmp(name, "-")) {
		if (o->fd < 0)
			return cairn_error_set(CAIRN_EINVAL, "source '-' but no descriptor to read");
		src->fd = o->fd;
		return 0;
	}
	if (name[0] != '/' && !strstr(name, "://"))
		return cairn_error_set(CAIRN_EINVAL, "%s: a path must be absolute (or give a URL)", name);
	if (cairn_mount_open(&src->m, cairn_dagstore_mounts(d->ds), name, NULL))
		return cairn_error_prefix("deal source: ");
	src->size = cairn_mount_size(src->m);
	return 0;
}

/* Stages a stream into `path`, resuming after `have` bytes already there;
 * *size_out gets the length staged. Nothing is hashed here: add-piece does. */
static int stage_stream(uint64_t *size_out, cairn_deals *d, const char *key, const char *rel,
			deal_src *src, uint64_t have, const cairn_deal_import_options *o)
{
	char path[4200];
	uint8_t *buf = NULL;
	uint64_t off = 0, synced;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", d->repo, rel);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	/* Bytes past the recorded length may be a torn tail: cut them. */
	if (ftruncate(fd, (off_t)have) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: truncate: %s", path, strerror(errno));
		goto out;
	}
	if (!(buf = cairn_malloc(CHUNK))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	/* A new stdin holds the whole deal again: skip what is staged. */
	while (src->fd >= 0 && off < have) {
		size_t want = have - off < CHUNK ? (size_t)(have - off) : CHUNK, got = 0;

		if ((rc = read_full(src->fd, buf, want, &got)))
			goto out;
		if (got < want) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "stdin ends at byte %" PRIu64 ", before the %"
					     PRIu64 " bytes already staged", off + got, have);
			goto out;
		}
		off += got;
	}
	off = synced = have;
	for (;;) {
		size_t got = 0;

		if (src->m) {
			uint64_t left = src->size - off;

			got = left < CHUNK ? (size_t)left : CHUNK;
			if (got && (rc = cairn_mount_read_at(src->m, buf, got, off)))
				goto out;
		} else if ((rc = read_full(src->fd, buf, CHUNK, &got))) {
			goto out;
		}
		if (!got)
			break;
		if ((rc = write_full(fd, buf, got, off, path)))
			goto out;
		off += got;
		/* the first chunk is checkpointed too, so small deals resume */
		if (off - synced >= CHECKPOINT_BYTES || synced == have) {
			if (fdatasync(fd) < 0) {
				rc = cairn_error_set(CAIRN_EIO, "%s: fsync: %s", path, strerror(errno));
				goto out;
			}
			if ((rc = row_staging(d, key, rel, off)))
				goto out;
			synced = off;
			step(o, "staging");
		}
	}
	if (fdatasync(fd) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	if (!(rc = row_staging(d, key, rel, off)))
		*size_out = off;
out:
	cairn_free(buf);
	close(fd);
	return rc;
}

/* The deal is refused: its row and staged bytes go. Keeps the message. */
static int drop(cairn_deals *d, const char *key, const char *staged, int why)
{
	char path[4200];
	int rc;

	if (staged) {
		snprintf(path, sizeof(path), "%s/%s", d->repo, staged);
		unlink(path);
	}
	return (rc = row_delete(d, key)) ? rc : why;
}

/* The payload size is not the v2 piece CID's: the data is hashed (this
 * failure only) so the refusal names both CIDs. */
static int size_mismatch(int fd, uint64_t size, const char *what, const char *want,
			 unsigned threads)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_piece_info got;
	cairn_commp *c = NULL;
	cairn_cid cid;
	int rc;

	if (!(rc = cairn_commp_new(&c, threads)) && !(rc = cairn_commp_write_file(c, fd, 0, size, what)))
		rc = cairn_commp_finish(&got, c);
	cairn_commp_free(c);
	if (rc)
		return rc;
	cairn_piece_cid_v1(&cid, got.commp);
	cairn_cid_to_string(s, &cid);
	return cairn_error_set(CAIRN_EMISMATCH,
			       "the data's piece CID is %s (%" PRIu64 " bytes), not %s as given with "
			       "--piece-cid: refused, nothing kept", s, got.payload_size, want);
}

/* Staging -> Staged: the bytes whole (staged, or in place) and their
 * sizes known; the CommP is checked by add-piece. */
static int do_stage(cairn_deals *d, deal_row *r, const cairn_piece_info *want,
		    const cairn_deal_import_options *o)
{
	const char *key = r->info.piece_cid;
	uint64_t ssize = o->sector_size ? o->sector_size : CAIRN_DEAL_SECTOR_SIZE;
	char rel[CAIRN_CID_MAX_STRING + 32];
	cairn_piece_info got;
	uint64_t size = 0;
	deal_src src;
	int rc;

	snprintf(rel, sizeof(rel), "staging/%s.car", key);
	if ((rc = source_open(&src, d, r->info.source, o)))
		return rc;
	if (src.m && cairn_mount_fd(src.m) >= 0) {
		/* a local file (or a whole transient copy): read in place by
		 * add-piece, nothing staged */
		size = src.size;
		if (r->staged) {
			/* staged from a stream before, now given in place */
			char path[4200];

			snprintf(path, sizeof(path), "%s/%s", d->repo, r->staged);
			unlink(path);
			cairn_free(r->staged);
			r->staged = NULL;
			rc = row_staging(d, key, NULL, 0);
		}
	} else {
		rc = stage_stream(&size, d, key, rel, &src, r->staged ? r->staged_bytes : 0, o);
		if (!rc && !r->staged && !(r->staged = cairn_strndup(rel, strlen(rel))))
			rc = CAIRN_ENOMEM;
	}
	if (rc || (rc = cairn_piece_sizes(&got, size)))
		goto out;
	if (want->payload_size && want->payload_size != got.payload_size) {
		char path[4200];
		int fd = -1;

		if (r->staged) {
			snprintf(path, sizeof(path), "%s/%s", d->repo, r->staged);
			fd = open(path, O_RDONLY | O_CLOEXEC);
		} else {
			snprintf(path, sizeof(path), "%s", cairn_mount_name(src.m));
			fd = dup(cairn_mount_fd(src.m));
		}
		if (fd < 0) {
			rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
			goto out;
		}
		rc = size_mismatch(fd, size, path, key, o->threads);
		close(fd);
		if (rc == CAIRN_EMISMATCH)
			rc = drop(d, key, r->staged, rc);
		goto out;
	}
	if (got.padded_size > ssize) {
		/* it fits no sector of this size: refused before anything is kept */
		rc = drop(d, key, r->staged, cairn_error_set(CAIRN_ETOOBIG,
			"the piece (%" PRIu64 " bytes padded) does not fit a sector of %" PRIu64
			" bytes: give a larger --sector-size", got.padded_size, ssize));
		goto out;
	}
	if ((rc = row_staged(d, key, &got)))
		goto out;
	r->info.state = CAIRN_DEAL_STAGED;
	r->info.payload_size = got.payload_size;
	r->info.padded_size = got.padded_size;
	step(o, "staged");
out:
	cairn_mount_close(src.m);
	return rc;
}

/* -------------------------------------------------------------- sectors */

typedef struct pick {
	uint64_t miner, size, padded;
	bool found;
	cairn_sector_id sid;
	uint64_t max_number;
} pick;

static uint64_t place(uint64_t end, uint64_t padded)
{
	return (end + padded - 1) / padded * padded;
}

static int pick_sector(const cairn_sector_info *in, void *payload)
{
	pick *p = payload;

	if (in->id.miner != p->miner)
		return 0;
	if (in->id.number > p->max_number)
		p->max_number = in->id.number;
	if (p->found || in->size != p->size || (in->types & CAIRN_SECTOR_SEALED))
		return 0;
	if (place(in->pieces_end, p->padded) + p->padded <= in->size) {
		p->found = true;
		p->sid = in->id;
	}
	return 0;
}

typedef struct seal_paths {
	unsigned n;
} seal_paths;

static int count_seal(const cairn_storage_info *in, void *payload)
{
	seal_paths *s = payload;

	if (!in->error && in->can_seal)
		s->n++;
	return 0;
}

/* A new user's store has no storage path: <repo>/storage becomes one. */
static int ensure_path(cairn_deals *d)
{
	cairn_storage_init init = {10, true, true, 0};
	seal_paths sp = {0};
	char path[4200];
	int rc;

	if ((rc = cairn_sector_storage_list(d->st, count_seal, &sp)) || sp.n)
		return rc;
	snprintf(path, sizeof(path), "%s/storage", d->repo);
	rc = cairn_sector_storage_attach(d->st, path, &init, NULL);
	if (rc == CAIRN_EEXISTS) {
		/* made by a run killed before it was listed: attach it as it is */
		cairn_error_clear();
		rc = cairn_sector_storage_attach(d->st, path, NULL, NULL);
	}
	return rc;
}

/* 1 with *off_out when the sector lists a piece with this CommP. */
static int find_piece(uint64_t *off_out, cairn_deals *d, const cairn_sector_id *sid,
		      const cairn_piece_info *want)
{
	cairn_sector_info in;
	int rc;

	rc = cairn_sector_get(&in, d->st, sid);
	if (rc == CAIRN_ENOTFOUND) {
		cairn_error_clear();
		return 0;
	}
	if (rc)
		return rc;
	rc = 0;
	for (size_t i = 0; i < in.n_pieces && !rc; i++)
		if (!memcmp(in.pieces[i].info.commp, want->commp, 32)) {
			*off_out = in.pieces[i].offset;
			rc = 1;
		}
	cairn_sector_info_clear(&in);
	return rc;
}

static void written(void *payload)
{
	step(payload, "written");
}

/* Staged -> Added. */
static int do_add(cairn_deals *d, deal_row *r, const cairn_piece_info *want,
		  const cairn_deal_import_options *o)
{
	const char *key = r->info.piece_cid;
	uint64_t ssize = o->sector_size ? o->sector_size : CAIRN_DEAL_SECTOR_SIZE;
	unsigned proof;
	cairn_sector_add_check check = {want->commp, written, (void *)o};
	cairn_sector_piece pc;
	cairn_sector_id sid;
	uint64_t off = 0;
	deal_src src = {NULL, -1, 0};
	char path[4200];
	int fd = -1, rc;

	if ((rc = cairn_sector_proof_for_size(&proof, ssize)))
		return rc;
	if (r->info.padded_size > ssize)
		return cairn_error_set(CAIRN_ETOOBIG, "the piece (%" PRIu64 " bytes padded) does not fit a "
				       "sector of %" PRIu64 " bytes: give a larger --sector-size",
				       r->info.padded_size, ssize);
	if (r->chosen) {
		sid = r->info.sector;
		/* the crash came after add-piece committed (checked): adopt it;
		 * else it stopped in the unchecked window or before, and the add
		 * below overwrites or frees what it left */
		if ((rc = find_piece(&off, d, &sid, want)) < 0)
			return rc;
		if (rc)
			goto added;
	} else {
		pick p = {o->miner ? o->miner : DEFAULT_MINER, ssize, r->info.padded_size, false,
			  {0, 0}, 0};

		if ((rc = ensure_path(d)) || (rc = cairn_sector_list(d->st, pick_sector, &p)))
			return rc;
		sid = p.found ? p.sid : (cairn_sector_id){p.miner, p.max_number + 1};
		if ((rc = row_sector(d, key, &sid, NULL)))
			return rc;
		step(o, "chosen");
	}
	/* the bytes: the staged copy, or the source in place */
	if (r->staged) {
		snprintf(path, sizeof(path), "%s/%s", d->repo, r->staged);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	} else {
		if ((rc = source_open(&src, d, r->info.source, o)))
			return rc;
		snprintf(path, sizeof(path), "%s", cairn_mount_name(src.m));
		if ((fd = cairn_mount_fd(src.m)) < 0 || (fd = dup(fd)) < 0) {
			cairn_mount_close(src.m);
			return cairn_error_set(CAIRN_EIO, "%s: not readable in place any more", path);
		}
		cairn_mount_close(src.m);
	}
	rc = cairn_sector_add_piece_checked(&pc, d->st, &sid, proof, fd, 0, r->info.payload_size,
					    path, o->threads, &check);
	close(fd);
	if (rc == CAIRN_EMISMATCH)
		/* the sector is as it was; nothing of the deal is kept */
		return drop(d, key, r->staged, rc);
	if (rc)
		return rc;
	off = pc.offset;
added:
	if ((rc = row_sector(d, key, &sid, &off)))
		return rc;
	r->info.state = CAIRN_DEAL_ADDED;
	r->info.in_sector = true;
	r->info.sector = sid;
	r->info.offset = off;
	step(o, "added");
	return 0;
}

/* Added -> Registered -> Available. */
static int do_shard(cairn_deals *d, deal_row *r, const cairn_deal_import_options *o)
{
	const char *key = r->info.piece_cid;
	char url[CAIRN_CID_MAX_STRING + 16];
	cairn_shard_spec spec = {key, url};
	cairn_shard_info si;
	int rc;

	if (r->info.state == CAIRN_DEAL_ADDED) {
		snprintf(url, sizeof(url), "piece://%s", key);
		if ((rc = cairn_dagstore_register(d->ds, &spec, 1, NULL)) ||
		    (rc = row_state(d, key, CAIRN_DEAL_REGISTERED)))
			return rc;
		r->info.state = CAIRN_DEAL_REGISTERED;
		step(o, "registered");
	}
	if ((rc = cairn_dagstore_info(&si, d->ds, key)))
		return rc;
	if (si.state == CAIRN_SHARD_NEW)
		rc = cairn_dagstore_initialize(d->ds, key);
	else if (si.state == CAIRN_SHARD_ERRORED)
		rc = cairn_dagstore_recover(d->ds, key);
	cairn_shard_info_clear(&si);
	if (rc)
		return rc;
	step(o, "indexed");
	if (r->staged) {
		char path[4200];

		snprintf(path, sizeof(path), "%s/%s", d->repo, r->staged);
		if (unlink(path) < 0 && errno != ENOENT)
			return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
		cairn_file_fsync_dir(d->staging);
	}
	if ((rc = row_state(d, key, CAIRN_DEAL_AVAILABLE)))
		return rc;
	r->info.state = CAIRN_DEAL_AVAILABLE;
	step(o, "available");
	return 0;
}

static int import_locked(cairn_deal_info *out, cairn_deals *d, const cairn_cid *piece_cid,
			 const char *source, const cairn_deal_import_options *o)
{
	char key[CAIRN_CID_MAX_STRING];
	cairn_piece_info want;
	cairn_cid v1;
	deal_row r;
	int rc;

	if ((rc = cairn_piece_cid_decode(&want, piece_cid)))
		return cairn_error_prefix("--piece-cid: ");
	cairn_piece_cid_v1(&v1, want.commp);
	cairn_cid_to_string(key, &v1);
	if ((rc = row_get(&r, d, key)) < 0)
		return rc;
	if (!rc) {
		if ((rc = row_insert(d, key, source)) || (rc = row_get(&r, d, key)) < 0)
			return rc;
		if (!rc)
			return cairn_error_set(CAIRN_ERROR, "deal %s: its row vanished", key);
	} else if (r.info.state < CAIRN_DEAL_AVAILABLE && strcmp(r.info.source, source)) {
		/* the same bytes from another place (a new path, or stdin) */
		char *s = cairn_strndup(source, strlen(source));

		if (!s || (rc = row_set_source(d, key, source))) {
			cairn_free(s);
			row_clear(&r);
			return s ? rc : CAIRN_ENOMEM;
		}
		cairn_free(r.info.source);
		r.info.source = s;
	}
	rc = 0;
	if (r.info.state == CAIRN_DEAL_STAGING) {
		rc = do_stage(d, &r, &want, o);
		/* a source that failed before a byte was staged leaves no deal */
		if (rc && r.info.state == CAIRN_DEAL_STAGING && !r.staged && !r.staged_bytes) {
			deal_row now;

			if (row_get(&now, d, key) > 0 && !now.staged)
				row_delete(d, key);
			row_clear(&now);
		}
	}
	if (!rc && r.info.state == CAIRN_DEAL_STAGED)
		rc = do_add(d, &r, &want, o);
	if (!rc && r.info.state < CAIRN_DEAL_AVAILABLE)
		rc = do_shard(d, &r, o);
	if (!rc && out) {
		*out = r.info;
		memset(&r.info, 0, sizeof(r.info));
	}
	row_clear(&r);
	return rc;
}

int cairn_deal_import(cairn_deal_info *out, cairn_deals *d, const cairn_cid *piece_cid,
		      const char *source, const cairn_deal_import_options *opts)
{
	cairn_deal_import_options def = CAIRN_DEAL_IMPORT_OPTIONS_INIT;
	int rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!d || !piece_cid || !source || !*source)
		return cairn_error_set(CAIRN_EINVAL, "cairn_deal_import: a NULL or empty argument");
	pthread_mutex_lock(&d->mu);
	rc = import_locked(out, d, piece_cid, source, opts ? opts : &def);
	pthread_mutex_unlock(&d->mu);
	return rc;
}
