/* piece.c: pieces in sectors: AddPiece (alignment, zero fillers, fr32 into
 * the unsealed file, CommP on the way), ReadPiece (any unpadded range, read
 * straight from the file without any scheduler), CommD, check and move.
 *
 * Alignment (lotus storage/sealer/ffiwrapper GetRequiredPadding and the
 * sealing FSM's filler pieces): a piece of padded size P starts at the next
 * multiple of P after the pieces before it; the gap is zero pieces, one per
 * set bit of its size, smallest first. A zero piece is zeros, which is what
 * a hole reads as: fillers are punched (in case a crashed write left bytes
 * there) and marked written, never written. The zero fill at the end of a
 * piece past its payload is punched the same way, so a sector with small
 * pieces takes on disk only what its payloads take.
 *
 * Crash safety: the data is written and fsynced, then (when the caller
 * gave the CommP it expects) the CommP computed on the way is checked, then
 * the trailer marks it, then the piece's row commits (with the sector's,
 * for its first piece). The database is the record of which pieces a
 * sector has: a crash before the commit leaves bytes past the sector's last
 * piece, marked nowhere, that the next AddPiece punches or overwrites. So
 * bytes whose CommP was not checked are never marked nor listed: a check
 * that fails frees the range written (and a sector file made by this call
 * is removed), leaving the sector as it was, trailer and all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sector_i.h"

#define IO_CHUNK (4u << 20)          /* input read per step */
#define READ_QUADS 8192u             /* 1 MiB padded per read step */

/* ------------------------------------------------------ finding files */

typedef struct {
	cairn_sector_store *st;
	sector_path *found;
} find_ctx;

static int find_cb(const char *storage_id, bool primary, void *payload)
{
	find_ctx *c = payload;

	(void)primary;
	if ((c->found = cairn_sector__path_by_id(c->st, storage_id)))
		return 1;
	return 0;
}

int cairn_sector_find(cairn_buf *out, char *id_out, cairn_sector_store *st,
		      const cairn_sector_id *sid, unsigned ft)
{
	find_ctx c = {st, NULL};
	char name[CAIRN_SECTOR_NAME_MAX];
	int rc;

	if (!cairn_sector_ft_name(ft))
		return cairn_error_set(CAIRN_EINVAL, "find: one file type, not %#x", ft);
	if ((rc = cairn_sector__index_locations(st, sid, ft, find_cb, &c)) < 0)
		return rc;
	cairn_sector_name(name, sid);
	if (!c.found)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: no %s copy in any attached path", name,
				       cairn_sector_ft_name(ft));
	if (id_out)
		snprintf(id_out, 40, "%s", c.found->id);
	return cairn_buf_printf(out, "%s/%s/%s", c.found->path, cairn_sector_ft_name(ft), name);
}

/* ------------------------------------------------------------- AddPiece */

typedef struct {
	int fd;
	const char *path;
	uint64_t at;       /* next padded offset to write */
} pad_sink;

static int pad_write(void *payload, const uint8_t *p, size_t n)
{
	pad_sink *s = payload;
	int rc = cairn_file_pwrite_full(s->fd, p, n, s->at, s->path);

	s->at += n;
	return rc;
}

/* Streams `len` bytes of fd from `off` into the file at padded `at`,
 * hashing them on the way. */
static int write_piece(cairn_piece_info *info, int out_fd, const char *out_path, uint64_t at,
		       int fd, uint64_t off, uint64_t len, const char *what, unsigned threads)
{
	pad_sink sink = {out_fd, out_path, at};
	cairn_fr32_stream *fs = NULL;
	cairn_commp *c = NULL;
	uint8_t *buf = NULL;
	uint64_t done = 0;
	int rc;

	if ((rc = cairn_commp_new(&c, threads)) ||
	    (rc = cairn_fr32_stream_new(&fs, CAIRN_FR32_PAD, pad_write, &sink)))
		goto out;
	if (!(buf = cairn_malloc(IO_CHUNK))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	while (done < len) {
		size_t k = len - done < IO_CHUNK ? (size_t)(len - done) : IO_CHUNK;

		if ((rc = cairn_file_pread_full(fd, buf, k, off + done, what)) ||
		    (rc = cairn_commp_write(c, buf, k)) || (rc = cairn_fr32_stream_write(fs, buf, k)))
			goto out;
		done += k;
	}
	if (!(rc = cairn_fr32_stream_finish(fs, NULL)))
		rc = cairn_commp_finish(info, c);
out:
	cairn_free(buf);
	cairn_fr32_stream_free(fs);
	cairn_commp_free(c);
	return rc;
}

/* Punches [off, off+len) unless empty. */
static int punch(cairn_partialfile *pf, uint64_t off, uint64_t len)
{
	return len ? cairn_partialfile_free(pf, off, len) : 0;
}

/* The check failed: the bytes written over [from, end) are freed, or the
 * file made by this call removed with its declaration, so the sector is as
 * it was. Sets the message naming both CIDs and returns CAIRN_EMISMATCH. */
static int refuse(cairn_sector_store *st, cairn_partialfile **pf, const char *file,
		  const char *storage_id, const cairn_sector_id *sid, bool created, uint64_t from,
		  uint64_t end, const cairn_piece_info *got, const uint8_t *want, const char *what)
{
	char gs[CAIRN_CID_MAX_STRING], ws[CAIRN_CID_MAX_STRING];
	cairn_cid cid;
	int rc;

	if (created) {
		cairn_partialfile_close(*pf);
		*pf = NULL;
		if (unlink(file) < 0 && errno != ENOENT)
			return cairn_error_set(CAIRN_EIO, "%s: %s", file, strerror(errno));
		rc = cairn_sector__index_drop(st, storage_id, sid, CAIRN_SECTOR_UNSEALED);
	} else if (!(rc = cairn_partialfile_free(*pf, from, end - from))) {
		rc = cairn_partialfile_sync(*pf);
	}
	if (rc)
		return rc;
	cairn_piece_cid_v1(&cid, got->commp);
	cairn_cid_to_string(gs, &cid);
	cairn_piece_cid_v1(&cid, want);
	cairn_cid_to_string(ws, &cid);
	return cairn_error_set(CAIRN_EMISMATCH, "%s: the data's piece CID is %s (%llu bytes), not %s: "
			       "refused, nothing kept", what, gs, (unsigned long long)got->payload_size,
			       ws);
}

int cairn_sector_add_piece(cairn_sector_piece *out, cairn_sector_store *st,
			   const cairn_sector_id *sid, unsigned proof, int fd, uint64_t off,
			   uint64_t len, const char *what, unsigned threads)
{
	return cairn_sector_add_piece_checked(out, st, sid, proof, fd, off, len, what, threads, NULL);
}

int cairn_sector_add_piece_checked(cairn_sector_piece *out, cairn_sector_store *st,
				   const cairn_sector_id *sid, unsigned proof, int fd, uint64_t off,
				   uint64_t len, const char *what, unsigned threads,
				   const cairn_sector_add_check *check)
{
	char name[CAIRN_SECTOR_NAME_MAX], storage_id[40];
	cairn_sector_reservation *res = NULL;
	cairn_sector_lock *lock = NULL;
	cairn_partialfile *pf = NULL;
	cairn_sector_info si;
	cairn_sector_piece pc;
	cairn_buf file = CAIRN_BUF_INIT;
	bool is_new = false, created = false;
	uint64_t ssize, at, end;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&si, 0, sizeof(si));
	memset(&pc, 0, sizeof(pc));
	cairn_sector_name(name, sid);
	if (!what)
		what = "piece";
	if ((rc = cairn_sector_lock_take(&lock, st, sid, 0, CAIRN_SECTOR_UNSEALED, false)))
		return rc;
	rc = cairn_sector_get(&si, st, sid);
	if (rc == CAIRN_ENOTFOUND) {
		if (proof == UINT32_MAX) {
			rc = cairn_error_set(CAIRN_ENOTFOUND, "%s: no such sector (give its size to create it)",
					     name);
			goto out;
		}
		cairn_error_clear();
		if ((rc = cairn_sector_proof_size(&si.size, proof)))
			goto out;
		si.id = *sid;
		si.proof = proof;
		is_new = true;
	} else if (rc) {
		goto out;
	}
	ssize = si.size;
	if ((rc = cairn_piece_sizes(&pc.info, len)))
		goto out;
	if (pc.info.padded_size > ssize) {
		rc = cairn_error_set(CAIRN_ETOOBIG, "%s: a piece of %llu bytes (%llu padded) is larger "
				     "than the sector (%llu)", what, (unsigned long long)len,
				     (unsigned long long)pc.info.padded_size, (unsigned long long)ssize);
		goto out;
	}
	/* The next multiple of P: fillers fill [pieces_end, at). */
	at = (si.pieces_end + pc.info.padded_size - 1) / pc.info.padded_size * pc.info.padded_size;
	if (at > ssize - pc.info.padded_size) {
		rc = cairn_error_set(CAIRN_ETOOBIG,
			"%s: a piece of %llu padded bytes does not fit: %llu of %llu bytes are taken "
			"(it would start at %llu)", name, (unsigned long long)pc.info.padded_size,
			(unsigned long long)si.pieces_end, (unsigned long long)ssize,
			(unsigned long long)at);
		goto out;
	}
	pc.offset = at;
	end = at + pc.info.padded_size;

	rc = cairn_sector_find(&file, storage_id, st, sid, CAIRN_SECTOR_UNSEALED);
	if (rc == 0) {
		rc = cairn_partialfile_open(&pf, (const char *)file.data, ssize, true);
		if (rc)
			goto out;
	} else if (rc == CAIRN_ENOTFOUND && si.n_pieces == 0) {
		sector_path *p;
		char dir[PATH_MAX];

		cairn_error_clear();
		cairn_buf_clear(&file);
		/* A new unsealed file: a sealing path, its space reserved
		 * while it is written (FSOverheadSeal: the sector's size). */
		if ((rc = cairn_sector__best_alloc(&p, st,
				cairn_sector_space_use(CAIRN_SECTOR_UNSEALED, ssize, CAIRN_SECTOR_PATH_SEALING),
				CAIRN_SECTOR_PATH_SEALING)))
			goto out;
		snprintf(storage_id, sizeof(storage_id), "%s", p->id);
		if ((rc = cairn_sector_reserve(&res, st, p->id, sid, ssize, CAIRN_SECTOR_UNSEALED,
					       CAIRN_SECTOR_PATH_SEALING)))
			goto out;
		snprintf(dir, sizeof(dir), "%s/unsealed", p->path);
		if ((rc = cairn_sector__mkdirs(dir, 0755)))
			goto out;
		cairn_buf_printf(&file, "%s/%s", dir, name);
		if (file.err) {
			rc = file.err;
			goto out;
		}
		if ((rc = cairn_partialfile_create(&pf, (const char *)file.data, ssize)))
			goto out;
		created = true;
		if ((rc = cairn_file_fsync_dir(dir)) ||
		    (rc = cairn_sector__index_declare(st, p->id, sid, CAIRN_SECTOR_UNSEALED, true)))
			goto out;
	} else {
		if (rc == CAIRN_ENOTFOUND)
			rc = cairn_error_set(CAIRN_ENOTFOUND,
				"%s: has %zu pieces but no unsealed copy in any attached path", name,
				si.n_pieces);
		goto out;
	}

	/* Fillers and any leftovers of a crashed write become holes. */
	if ((rc = punch(pf, si.pieces_end, at - si.pieces_end)))
		goto out;
	if ((rc = write_piece(&pc.info, cairn_partialfile_fd(pf), (const char *)file.data, at, fd, off,
			      len, what, threads)))
		goto out;
	{
		uint64_t written = (len + 126) / 127 * 128;

		if (len == 0)
			written = 128;
		if ((rc = punch(pf, at + written, pc.info.padded_size - written)))
			goto out;
	}
	if ((rc = cairn_partialfile_sync(pf)))
		goto out;
	/* The unchecked window: the bytes are on disk, marked nowhere. */
	if (check && check->on_written)
		check->on_written(check->payload);
	if (check && check->commp && memcmp(pc.info.commp, check->commp, 32)) {
		rc = refuse(st, &pf, (const char *)file.data, storage_id, sid, created, si.pieces_end,
			    end, &pc.info, check->commp, what);
		goto out;
	}
	if ((rc = cairn_partialfile_mark_allocated(pf, si.pieces_end, end - si.pieces_end)) ||
	    (rc = cairn_partialfile_sync(pf)))
		goto out;

	if ((rc = cairn_db_begin(st->db)))
		goto out;
	if ((is_new && (rc = cairn_sector__index_sector_create(st, sid, si.proof))) ||
	    (rc = cairn_sector__index_piece_add(st, sid, si.n_pieces, &pc))) {
		cairn_db_rollback(st->db);
		goto out;
	}
	if ((rc = cairn_db_commit(st->db)))
		goto out;
	*out = pc;
out:
	cairn_partialfile_close(pf);
	cairn_sector_reservation_release(res);
	cairn_sector_lock_release(lock);
	cairn_sector_info_clear(&si);
	cairn_buf_free(&file);
	return rc;
}

/* ------------------------------------------------------------- ReadPiece */

struct cairn_sector_reader {
	int fd;
	cairn_sector_lock *lock;
	uint64_t piece_off;  /* padded, in the sector */
	uint64_t size;       /* unpadded bytes readable */
	char name[128];
};

typedef struct {
	cairn_sector_store *st;
	const cairn_sector_id *sid;
	uint64_t ssize, off, plen;
	int fd;
	int last_rc;
} open_ctx;

static int open_cb(const char *storage_id, bool primary, void *payload)
{
	open_ctx *c = payload;
	sector_path *p = cairn_sector__path_by_id(c->st, storage_id);
	cairn_partialfile *pf;
	char *path;
	int rc;

	(void)primary;
	if (!p)
		return 0;
	if (!(path = cairn_sector__file_path(p->path, CAIRN_SECTOR_UNSEALED, c->sid)))
		return CAIRN_ENOMEM;
	rc = cairn_partialfile_open(&pf, path, c->ssize, false);
	cairn_free(path);
	if (rc) {
		/* Another copy may do; this one's problem is logged. */
		cairn_log(CAIRN_LOG_WARN, "%s", cairn_error_last());
		c->last_rc = rc;
		return 0;
	}
	if (cairn_partialfile_has_allocated(pf, c->off, c->plen)) {
		c->fd = dup(cairn_partialfile_fd(pf));
		cairn_partialfile_close(pf);
		if (c->fd < 0)
			return cairn_error_set(CAIRN_EIO, "dup: %s", strerror(errno));
		return 1;
	}
	cairn_partialfile_close(pf);
	return 0;
}

int cairn_sector_reader_open(cairn_sector_reader **out, cairn_sector_store *st,
			     const cairn_sector_id *sid, uint64_t piece_off, uint64_t piece_size,
			     uint64_t size)
{
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_sector_reader *r = NULL;
	cairn_sector_info si;
	open_ctx c;
	uint64_t qoff, qlen;
	int rc;

	*out = NULL;
	cairn_sector_name(name, sid);
	if (piece_size < 128 || (piece_size & (piece_size - 1)) || piece_off % piece_size)
		return cairn_error_set(CAIRN_EINVAL,
			"%s: a piece of %llu bytes at %llu is not a padded piece (a power of two from "
			"128, at a multiple of its size)", name, (unsigned long long)piece_size,
			(unsigned long long)piece_off);
	if (size == UINT64_MAX)
		size = piece_size / 128 * 127;
	if (size > piece_size / 128 * 127)
		return cairn_error_set(CAIRN_EINVAL, "%s: %llu bytes do not fit a piece of %llu padded",
				       name, (unsigned long long)size, (unsigned long long)piece_size);
	if ((rc = cairn_sector_get(&si, st, sid)))
		return rc;
	c.ssize = si.size;
	cairn_sector_info_clear(&si);
	if (piece_off > c.ssize || piece_size > c.ssize - piece_off)
		return cairn_error_set(CAIRN_EINVAL, "%s: a piece at %llu of %llu bytes is past the sector's end",
				       name, (unsigned long long)piece_off, (unsigned long long)piece_size);
	if (!(r = cairn_calloc(1, sizeof(*r))))
		return CAIRN_ENOMEM;
	r->fd = -1;
	if ((rc = cairn_sector_lock_take(&r->lock, st, sid, CAIRN_SECTOR_UNSEALED, 0, true)))
		goto fail;
	cairn_sector__quads(&qoff, &qlen, 0, size);
	c.st = st;
	c.sid = sid;
	c.off = piece_off + qoff;
	c.plen = qlen ? qlen : 0;
	c.fd = -1;
	c.last_rc = 0;
	if ((rc = cairn_sector__index_locations(st, sid, CAIRN_SECTOR_UNSEALED, open_cb, &c)) < 0)
		goto fail;
	if (c.fd < 0) {
		rc = cairn_error_set(CAIRN_ENOTFOUND,
			"%s: no unsealed copy of the piece at %llu (%llu bytes): unsealing needs the "
			"proofs library", name, (unsigned long long)piece_off,
			(unsigned long long)piece_size);
		goto fail;
	}
	r->fd = c.fd;
	r->piece_off = piece_off;
	r->size = size;
	snprintf(r->name, sizeof(r->name), "%s piece at %llu", name, (unsigned long long)piece_off);
	*out = r;
	return 0;
fail:
	cairn_sector_reader_close(r);
	return rc;
}

int cairn_sector_reader_open_cid(cairn_sector_reader **out, cairn_sector_store *st,
				 const cairn_cid *piece_cid)
{
	cairn_piece_info dec;
	cairn_sector_piece pc;
	cairn_sector_id sid;
	int rc;

	*out = NULL;
	if ((rc = cairn_piece_cid_decode(&dec, piece_cid)) ||
	    (rc = cairn_sector__index_piece_find(&sid, &pc, st, dec.commp)))
		return rc;
	if (dec.padded_size && dec.padded_size != pc.info.padded_size)
		return cairn_error_set(CAIRN_ENOTFOUND,
				       "the piece CID says %llu padded bytes; the sector's piece has %llu",
				       (unsigned long long)dec.padded_size,
				       (unsigned long long)pc.info.padded_size);
	return cairn_sector_reader_open(out, st, &sid, pc.offset, pc.info.padded_size,
					pc.info.payload_size);
}

uint64_t cairn_sector_reader_size(const cairn_sector_reader *r)
{
	return r->size;
}

const char *cairn_sector_reader_name(const cairn_sector_reader *r)
{
	return r->name;
}

int cairn_sector_reader_read_at(cairn_sector_reader *r, void *buf, size_t n, uint64_t offset)
{
	uint8_t *tmp, *dst = buf;
	int rc = 0;

	if (offset > r->size || n > r->size - offset)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: unexpected end of data: %zu bytes at %llu of %llu",
				       r->name, n, (unsigned long long)offset, (unsigned long long)r->size);
	if (!n)
		return 0;
	if (!(tmp = cairn_malloc(READ_QUADS * 128)))
		return CAIRN_ENOMEM;
	while (n) {
		/* At most READ_QUADS quads per step, starting at the quad
		 * holding `offset`. */
		uint64_t q0 = offset / 127, skip = offset - q0 * 127;
		uint64_t want_quads = (skip + n + 126) / 127;
		size_t quads = want_quads < READ_QUADS ? (size_t)want_quads : READ_QUADS;
		size_t take = quads * 127 - (size_t)skip;

		if (take > n)
			take = n;
		if ((rc = cairn_file_pread_full(r->fd, tmp, quads * 128, r->piece_off + q0 * 128, r->name)))
			break;
		if ((rc = cairn_fr32_unpad(tmp, tmp, quads * 128))) {
			cairn_error_prefix("%s: padded bytes from %llu: ", r->name,
					   (unsigned long long)(r->piece_off + q0 * 128));
			break;
		}
		memcpy(dst, tmp + skip, take);
		dst += take;
		offset += take;
		n -= take;
	}
	cairn_free(tmp);
	return rc;
}

void cairn_sector_reader_close(cairn_sector_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	cairn_sector_lock_release(r->lock);
	cairn_free(r);
}

/* ----------------------------------------------------------------- CommD */

int cairn_sector_commd(uint8_t out[32], cairn_sector_store *st, const cairn_sector_id *sid)
{
	cairn_sector_info si;
	cairn_piece_info *infos;
	int rc;

	if ((rc = cairn_sector_get(&si, st, sid)))
		return rc;
	if (!(infos = cairn_calloc(si.n_pieces + 1, sizeof(*infos)))) {
		cairn_sector_info_clear(&si);
		return CAIRN_ENOMEM;
	}
	for (size_t i = 0; i < si.n_pieces; i++)
		infos[i] = si.pieces[i].info;
	rc = cairn_piece_commd(out, si.size, infos, si.n_pieces);
	cairn_free(infos);
	cairn_sector_info_clear(&si);
	return rc;
}

/* ----------------------------------------------------------------- check */

typedef struct {
	cairn_sector_store *st;
	const cairn_sector_info *si;
	unsigned ft;
	cairn_sector_problem_fn fn;
	void *payload;
	int problems;
	int held;   /* copies that exist */
	int rc;
} check_ctx;

static void report(check_ctx *c, const char *storage_id, const char *file, const char *what)
{
	cairn_sector_problem p = {c->si->id, c->ft, storage_id, file, what};

	c->problems++;
	if (c->fn && !c->rc)
		c->rc = c->fn(&p, c->payload);
}

static void check_cache(check_ctx *c, const char *storage_id, const char *dir, const char *rel)
{
	char f[PATH_MAX + 64], msg[160];
	struct stat sb;
	bool tree_r = false;
	struct dirent *e;
	DIR *d;

	snprintf(f, sizeof(f), "%s/p_aux", dir);
	if (stat(f, &sb) < 0)
		report(c, storage_id, rel, "p_aux missing");
	else if (sb.st_size != 64) {
		snprintf(msg, sizeof(msg), "p_aux is %lld bytes, not 64", (long long)sb.st_size);
		report(c, storage_id, rel, msg);
	}
	snprintf(f, sizeof(f), "%s/t_aux", dir);
	if (stat(f, &sb) < 0)
		report(c, storage_id, rel, "t_aux missing");
	else if (sb.st_size == 0)
		report(c, storage_id, rel, "t_aux is empty");
	if ((d = opendir(dir))) {
		while ((e = readdir(d)))
			if (!strncmp(e->d_name, "sc-02-data-tree-r-last", 22))
				tree_r = true;
		closedir(d);
	}
	if (!tree_r)
		report(c, storage_id, rel, "no sc-02-data-tree-r-last files");
}

static int check_cb(const char *storage_id, bool primary, void *payload)
{
	check_ctx *c = payload;
	sector_path *p = cairn_sector__path_by_id(c->st, storage_id);
	char name[CAIRN_SECTOR_NAME_MAX], rel[128], msg[200];
	struct stat sb;
	char *path;

	(void)primary;
	cairn_sector_name(name, &c->si->id);
	snprintf(rel, sizeof(rel), "%s/%s", cairn_sector_ft_name(c->ft), name);
	if (!p) {
		report(c, storage_id, rel, "the path holding it is not attached");
		return c->rc;
	}
	if (!(path = cairn_sector__file_path(p->path, c->ft, &c->si->id)))
		return CAIRN_ENOMEM;
	if (stat(path, &sb) < 0) {
		report(c, storage_id, rel, "missing");
	} else if (c->ft == CAIRN_SECTOR_UNSEALED) {
		cairn_partialfile *pf;

		if (cairn_partialfile_open(&pf, path, c->si->size, false)) {
			snprintf(msg, sizeof(msg), "%s", cairn_error_last());
			cairn_error_clear();
			report(c, storage_id, rel, msg);
		} else {
			c->held++;
			cairn_partialfile_close(pf);
		}
	} else if (c->ft == CAIRN_SECTOR_SEALED) {
		if ((uint64_t)sb.st_size != c->si->size) {
			snprintf(msg, sizeof(msg), "wrong size: %lld bytes, not %llu", (long long)sb.st_size,
				 (unsigned long long)c->si->size);
			report(c, storage_id, rel, msg);
		} else {
			c->held++;
		}
	} else {
		int before = c->problems;

		if (!S_ISDIR(sb.st_mode))
			report(c, storage_id, rel, "not a directory");
		else
			check_cache(c, storage_id, path, rel);
		if (c->problems == before)
			c->held++;
	}
	cairn_free(path);
	return c->rc;
}

static int check_one(check_ctx *c)
{
	int rc;

	for (unsigned i = 0; i < 3; i++) {
		c->ft = 1u << i;
		c->held = 0;
		if (!(c->si->types & c->ft) && !(c->ft == CAIRN_SECTOR_UNSEALED && c->si->n_pieces))
			continue;
		if ((rc = cairn_sector__index_locations(c->st, &c->si->id, c->ft, check_cb, c)) < 0)
			return rc;
		if (c->rc)
			return c->rc;
		if (c->ft == CAIRN_SECTOR_UNSEALED && c->si->n_pieces && !c->held &&
		    !(c->si->types & c->ft)) {
			char name[CAIRN_SECTOR_NAME_MAX], rel[128];

			cairn_sector_name(name, &c->si->id);
			snprintf(rel, sizeof(rel), "unsealed/%s", name);
			report(c, NULL, rel, "missing: the sector has pieces and no unsealed copy");
		}
	}
	return c->rc;
}

static int check_list_cb(const cairn_sector_info *info, void *payload)
{
	check_ctx *c = payload;

	c->si = info;
	return check_one(c);
}

int cairn_sector_check(cairn_sector_store *st, const cairn_sector_id *sid,
		       cairn_sector_problem_fn fn, void *payload)
{
	check_ctx c = {st, NULL, 0, fn, payload, 0, 0, 0};
	cairn_sector_info si;
	int rc;

	if (sid) {
		if ((rc = cairn_sector_get(&si, st, sid)))
			return rc;
		c.si = &si;
		rc = check_one(&c);
		cairn_sector_info_clear(&si);
	} else {
		rc = cairn_sector_list(st, check_list_cb, &c);
	}
	return rc < 0 ? rc : c.problems;
}

/* ------------------------------------------------------------------ move */

/* A sparse copy of a regular file: only its data extents are written. */
static int copy_file(const char *from, const char *to)
{
	int in = -1, out = -1, rc = 0;
	uint8_t *buf = NULL;
	struct stat sb;
	off_t pos = 0;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0 || fstat(in, &sb) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", from, strerror(errno));
		goto out;
	}
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", to, strerror(errno));
		goto out;
	}
	if (!(buf = cairn_malloc(IO_CHUNK))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	while (pos < sb.st_size) {
		off_t data = lseek(in, pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole remains */
			data = pos; /* no SEEK_DATA: copy everything */
			hole = sb.st_size;
		} else if ((hole = lseek(in, data, SEEK_HOLE)) < 0) {
			hole = sb.st_size;
		}
		for (pos = data; pos < hole;) {
			size_t k = (uint64_t)(hole - pos) < IO_CHUNK ? (size_t)(hole - pos) : IO_CHUNK;

			if ((rc = cairn_file_pread_full(in, buf, k, (uint64_t)pos, from)) ||
			    (rc = cairn_file_pwrite_full(out, buf, k, (uint64_t)pos, to)))
				goto out;
			pos += (off_t)k;
		}
	}
	if (ftruncate(out, sb.st_size) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: truncate: %s", to, strerror(errno));
		goto out;
	}
	rc = cairn_file_fsync(out, to);
out:
	cairn_free(buf);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* Removes a file or a flat directory (a cache). */
static int remove_tree(const char *path)
{
	struct dirent *e;
	DIR *d;

	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	if (!(d = opendir(path)))
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	while ((e = readdir(d))) {
		char f[PATH_MAX + 300];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
		unlink(f);
	}
	closedir(d);
	if (rmdir(path) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	return 0;
}

static int copy_tree(const char *from, const char *to, bool dir)
{
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (!dir)
		return copy_file(from, to);
	if (mkdir(to, 0755) < 0 && errno != EEXIST)
		return cairn_error_set(CAIRN_EIO, "%s: %s", to, strerror(errno));
	if (!(d = opendir(from)))
		return cairn_error_set(CAIRN_EIO, "%s: %s", from, strerror(errno));
	while (!rc && (e = readdir(d))) {
		char a[PATH_MAX + 300], b[PATH_MAX + 300];
		struct stat sb;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
		/* A cache holds regular files only; anything else is refused
		 * rather than followed. */
		if (lstat(a, &sb) < 0 || !S_ISREG(sb.st_mode))
			rc = cairn_error_set(CAIRN_EINVAL, "%s: not a regular file", a);
		else
			rc = copy_file(a, b);
	}
	closedir(d);
	return rc ? rc : cairn_file_fsync_dir(to);
}

int cairn_sector_move(cairn_sector_store *st, const cairn_sector_id *sid, unsigned ft,
		      const char *dest_id)
{
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_sector_lock *lock = NULL;
	cairn_sector_info si;
	sector_path *dest;
	int rc;

	cairn_sector_name(name, sid);
	if (!(dest = cairn_sector__path_find(st, dest_id)) || dest->error)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: not an attached storage path", dest_id);
	if (!dest->can_store)
		return cairn_error_set(CAIRN_EINVAL, "%s: not a storage path (attached without --store)",
				       dest->path);
	if ((rc = cairn_sector_get(&si, st, sid)))
		return rc;
	if ((rc = cairn_sector_lock_take(&lock, st, sid, 0, ft, false)))
		goto out;
	for (unsigned i = 0; i < 3 && !rc; i++) {
		unsigned t = 1u << i;
		char src_id[40], dir[PATH_MAX], tmpdir[PATH_MAX + 16];
		cairn_buf src = CAIRN_BUF_INIT;
		cairn_sector_reservation *res = NULL;
		char *to = NULL, *tmp = NULL;
		struct stat sb;

		if (!(ft & t))
			continue;
		if ((rc = cairn_sector_find(&src, src_id, st, sid, t))) {
			cairn_buf_free(&src);
			break;
		}
		if (!strcasecmp(src_id, dest->id)) {
			cairn_buf_free(&src);
			continue;
		}
		snprintf(dir, sizeof(dir), "%s/%s", dest->path, cairn_sector_ft_name(t));
		if ((rc = cairn_sector_reserve(&res, st, dest->id, sid, si.size, t, CAIRN_SECTOR_PATH_STORAGE)) ||
		    (rc = cairn_sector__mkdirs(dir, 0755)) || stat((const char *)src.data, &sb) < 0) {
			if (!rc)
				rc = cairn_error_set(CAIRN_EIO, "%s: %s", (const char *)src.data, strerror(errno));
			goto next;
		}
		if (!(to = cairn_sector__file_path(dest->path, t, sid))) {
			rc = CAIRN_ENOMEM;
			goto next;
		}
		if (sb.st_dev == dest->dev) {
			if (rename((const char *)src.data, to) < 0)
				rc = cairn_error_set(CAIRN_EIO, "%s: rename to %s: %s", (const char *)src.data, to,
						     strerror(errno));
		} else {
			/* Across disks: a copy under fetching/, then a rename. */
			snprintf(tmpdir, sizeof(tmpdir), "%s/fetching", dir);
			cairn_buf tb = CAIRN_BUF_INIT;

			cairn_buf_printf(&tb, "%s/%s", tmpdir, name);
			tmp = (char *)cairn_buf_detach(&tb, NULL);
			if (!tmp)
				rc = CAIRN_ENOMEM;
			else if (!(rc = cairn_sector__mkdirs(tmpdir, 0755)) && !(rc = remove_tree(tmp)) &&
				 !(rc = copy_tree((const char *)src.data, tmp, S_ISDIR(sb.st_mode))) &&
				 rename(tmp, to) < 0)
				rc = cairn_error_set(CAIRN_EIO, "%s: rename to %s: %s", tmp, to, strerror(errno));
		}
		if (!rc)
			rc = cairn_file_fsync_dir(dir);
		if (!rc && !(rc = cairn_sector__index_declare(st, dest->id, sid, t, true)) &&
		    !(rc = cairn_sector__index_drop(st, src_id, sid, t)) && sb.st_dev != dest->dev)
			rc = remove_tree((const char *)src.data);
	next:
		cairn_sector_reservation_release(res);
		cairn_free(to);
		cairn_free(tmp);
		cairn_buf_free(&src);
	}
out:
	cairn_sector_lock_release(lock);
	cairn_sector_info_clear(&si);
	return rc;
}
