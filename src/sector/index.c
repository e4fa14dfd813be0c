/* index.c: the sector index in the metadata database: Curio's storage_path
 * and sector_location tables (which path holds which file of which
 * sector), and the sectors with their pieces.
 *
 * The two Curio tables keep Curio's columns (harmonydb 20230712, 20240401)
 * so the multi-machine work can share them; two differences: timestamps are
 * unix seconds (INTEGER), as everywhere in cairn's SQLite, and storage_path
 * has local_path, the path as storage.json names it. The lock columns
 * (read_ts, read_refs, write_ts, write_lock_owner) are kept but unused on
 * one machine: locks are flocks (lock.c), which die with their holder.
 * sectors and sector_pieces stand for Curio's sectors_sdr_pipeline and
 * sectors_sdr_initial_pieces, reduced to what AddPiece needs.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sector_i.h"

static const cairn_db_migration migrations[] = {
	{1, "CREATE TABLE storage_path ("
	    " storage_id TEXT PRIMARY KEY,"
	    " urls TEXT NOT NULL DEFAULT '',"
	    " weight INTEGER NOT NULL DEFAULT 0,"
	    " max_storage INTEGER NOT NULL DEFAULT 0,"
	    " can_seal INTEGER NOT NULL DEFAULT 0,"
	    " can_store INTEGER NOT NULL DEFAULT 0,"
	    " groups TEXT NOT NULL DEFAULT '',"
	    " allow_to TEXT NOT NULL DEFAULT '',"
	    " allow_types TEXT NOT NULL DEFAULT '',"
	    " deny_types TEXT NOT NULL DEFAULT '',"
	    " capacity INTEGER NOT NULL DEFAULT 0,"
	    " available INTEGER NOT NULL DEFAULT 0,"
	    " fs_available INTEGER NOT NULL DEFAULT 0,"
	    " reserved INTEGER NOT NULL DEFAULT 0,"
	    " used INTEGER NOT NULL DEFAULT 0,"
	    " last_heartbeat INTEGER,"
	    " heartbeat_err TEXT,"
	    " allow_miners TEXT NOT NULL DEFAULT '',"
	    " deny_miners TEXT NOT NULL DEFAULT '',"
	    " local_path TEXT NOT NULL DEFAULT '');"
	    "CREATE TABLE sector_location ("
	    " miner_id INTEGER NOT NULL,"
	    " sector_num INTEGER NOT NULL,"
	    " sector_filetype INTEGER NOT NULL,"
	    " storage_id TEXT NOT NULL,"
	    " is_primary INTEGER NOT NULL DEFAULT 0,"
	    " read_ts INTEGER,"
	    " read_refs INTEGER NOT NULL DEFAULT 0,"
	    " write_ts INTEGER,"
	    " write_lock_owner TEXT,"
	    " PRIMARY KEY (miner_id, sector_num, sector_filetype, storage_id));"
	    "CREATE INDEX sector_location_storage ON sector_location(storage_id);"
	    "CREATE TABLE sectors ("
	    " miner_id INTEGER NOT NULL,"
	    " sector_num INTEGER NOT NULL,"
	    " reg_seal_proof INTEGER NOT NULL,"
	    " created_at INTEGER NOT NULL,"
	    " PRIMARY KEY (miner_id, sector_num));"
	    "CREATE TABLE sector_pieces ("
	    " miner_id INTEGER NOT NULL,"
	    " sector_num INTEGER NOT NULL,"
	    " piece_index INTEGER NOT NULL,"
	    " piece_cid TEXT NOT NULL,"       /* v1: baga6ea4seaq... */
	    " piece_size INTEGER NOT NULL,"   /* padded */
	    " raw_size INTEGER NOT NULL,"     /* payload bytes */
	    " piece_offset INTEGER NOT NULL," /* padded, in the sector */
	    " created_at INTEGER NOT NULL,"
	    " PRIMARY KEY (miner_id, sector_num, piece_index),"
	    " FOREIGN KEY (miner_id, sector_num) REFERENCES sectors(miner_id, sector_num));"
	    "CREATE INDEX sector_pieces_cid ON sector_pieces(piece_cid);"},
};

int cairn_sector__index_migrate(cairn_db *db)
{
	return cairn_db_migrate(db, "sector", migrations, sizeof(migrations) / sizeof(migrations[0]));
}

/* Runs one statement to its end. */
static int run(cairn_db_stmt *st)
{
	int rc;

	while ((rc = cairn_db_step(st)) > 0)
		;
	cairn_db_reset(st);
	return rc;
}

int cairn_sector__index_put_path(cairn_sector_store *st, const sector_path *p,
				 const cairn_storage_stat *s)
{
	static const char sql[] =
		"INSERT INTO storage_path (storage_id, weight, max_storage, can_seal, can_store, groups,"
		" allow_to, allow_types, deny_types, capacity, available, fs_available, reserved, used,"
		" last_heartbeat, local_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
		" ?13, ?14, ?15, ?16) ON CONFLICT (storage_id) DO UPDATE SET weight = ?2,"
		" max_storage = ?3, can_seal = ?4, can_store = ?5, groups = ?6, allow_to = ?7,"
		" allow_types = ?8, deny_types = ?9, capacity = ?10, available = ?11,"
		" fs_available = ?12, reserved = ?13, used = ?14, last_heartbeat = ?15,"
		" heartbeat_err = NULL, local_path = ?16";
	cairn_db_stmt *q;
	int rc;

	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(q, 1, p->id)) ||
	    (rc = cairn_db_bind_int64(q, 2, (int64_t)p->weight)) ||
	    (rc = cairn_db_bind_int64(q, 3, (int64_t)p->max_storage)) ||
	    (rc = cairn_db_bind_int64(q, 4, p->can_seal)) ||
	    (rc = cairn_db_bind_int64(q, 5, p->can_store)) ||
	    (rc = cairn_db_bind_text(q, 6, p->groups ? p->groups : "")) ||
	    (rc = cairn_db_bind_text(q, 7, p->allow_to ? p->allow_to : "")) ||
	    (rc = cairn_db_bind_text(q, 8, p->allow_types ? p->allow_types : "")) ||
	    (rc = cairn_db_bind_text(q, 9, p->deny_types ? p->deny_types : "")) ||
	    (rc = cairn_db_bind_int64(q, 10, s->capacity)) ||
	    (rc = cairn_db_bind_int64(q, 11, s->available)) ||
	    (rc = cairn_db_bind_int64(q, 12, s->fs_available)) ||
	    (rc = cairn_db_bind_int64(q, 13, s->reserved)) ||
	    (rc = cairn_db_bind_int64(q, 14, s->used)) ||
	    (rc = cairn_db_bind_int64(q, 15, (int64_t)time(NULL))) ||
	    (rc = cairn_db_bind_text(q, 16, p->config_path))) {
		cairn_db_reset(q);
		return rc;
	}
	return run(q);
}

int cairn_sector__index_drop_path(cairn_sector_store *st, const char *id)
{
	static const char del_loc[] = "DELETE FROM sector_location WHERE storage_id = ?1";
	static const char del_path[] = "DELETE FROM storage_path WHERE storage_id = ?1";
	cairn_db_stmt *q;
	int rc;

	if ((rc = cairn_db_begin(st->db)))
		return rc;
	if (!(rc = cairn_db_prepare(&q, st->db, del_loc))) {
		rc = cairn_db_bind_text(q, 1, id);
		rc = rc ? (cairn_db_reset(q), rc) : run(q);
	}
	if (!rc && !(rc = cairn_db_prepare(&q, st->db, del_path))) {
		rc = cairn_db_bind_text(q, 1, id);
		rc = rc ? (cairn_db_reset(q), rc) : run(q);
	}
	if (rc) {
		cairn_db_rollback(st->db);
		return rc;
	}
	return cairn_db_commit(st->db);
}

static int bind_loc(cairn_db_stmt *q, const char *storage_id, const cairn_sector_id *sid,
		    unsigned ft)
{
	int rc;

	if ((rc = cairn_db_bind_int64(q, 1, (int64_t)sid->miner)) ||
	    (rc = cairn_db_bind_int64(q, 2, (int64_t)sid->number)) ||
	    (rc = cairn_db_bind_int64(q, 3, ft)) || (rc = cairn_db_bind_text(q, 4, storage_id)))
		cairn_db_reset(q);
	return rc;
}

int cairn_sector__index_declare(cairn_sector_store *st, const char *storage_id,
				const cairn_sector_id *sid, unsigned ft, bool primary)
{
	/* Curio's Declare: a copy once primary stays primary. */
	static const char sql[] =
		"INSERT INTO sector_location (miner_id, sector_num, sector_filetype, storage_id,"
		" is_primary) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (miner_id, sector_num,"
		" sector_filetype, storage_id) DO UPDATE SET is_primary = CASE WHEN is_primary = 0"
		" AND ?5 THEN 1 ELSE is_primary END";
	cairn_db_stmt *q;
	int rc;

	if (sid->miner > INT64_MAX || sid->number > INT64_MAX)
		return cairn_error_set(CAIRN_EINVAL, "sector number out of range");
	if ((rc = cairn_db_prepare(&q, st->db, sql)) || (rc = bind_loc(q, storage_id, sid, ft)))
		return rc;
	if ((rc = cairn_db_bind_int64(q, 5, primary))) {
		cairn_db_reset(q);
		return rc;
	}
	return run(q);
}

int cairn_sector__index_drop(cairn_sector_store *st, const char *storage_id,
			     const cairn_sector_id *sid, unsigned ft)
{
	static const char sql[] =
		"DELETE FROM sector_location WHERE miner_id = ?1 AND sector_num = ?2 AND"
		" sector_filetype = ?3 AND storage_id = ?4";
	cairn_db_stmt *q;
	int rc;

	if ((rc = cairn_db_prepare(&q, st->db, sql)) || (rc = bind_loc(q, storage_id, sid, ft)))
		return rc;
	return run(q);
}

int cairn_sector__index_count(cairn_sector_store *st, const char *storage_id, uint64_t out[3])
{
	static const char sql[] =
		"SELECT sector_filetype, COUNT(*) FROM sector_location WHERE storage_id = ?1"
		" GROUP BY sector_filetype";
	cairn_db_stmt *q;
	int rc;

	out[0] = out[1] = out[2] = 0;
	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_text(q, 1, storage_id))) {
		cairn_db_reset(q);
		return rc;
	}
	while ((rc = cairn_db_step(q)) > 0) {
		int64_t ft = cairn_db_column_int64(q, 0);

		for (unsigned i = 0; i < 3; i++)
			if (ft == (1 << i))
				out[i] = (uint64_t)cairn_db_column_int64(q, 1);
	}
	cairn_db_reset(q);
	return rc;
}

/* ------------------------------------------------------------- sectors */

int cairn_sector__index_sector_create(cairn_sector_store *st, const cairn_sector_id *sid,
				      unsigned proof)
{
	static const char sql[] =
		"INSERT INTO sectors (miner_id, sector_num, reg_seal_proof, created_at)"
		" VALUES (?1, ?2, ?3, ?4)";
	cairn_db_stmt *q;
	int rc;

	if (sid->miner > INT64_MAX || sid->number > INT64_MAX)
		return cairn_error_set(CAIRN_EINVAL, "sector number out of range");
	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_int64(q, 1, (int64_t)sid->miner)) ||
	    (rc = cairn_db_bind_int64(q, 2, (int64_t)sid->number)) ||
	    (rc = cairn_db_bind_int64(q, 3, proof)) ||
	    (rc = cairn_db_bind_int64(q, 4, (int64_t)time(NULL)))) {
		cairn_db_reset(q);
		return rc;
	}
	return run(q);
}

int cairn_sector__index_piece_add(cairn_sector_store *st, const cairn_sector_id *sid,
				  size_t index, const cairn_sector_piece *pc)
{
	static const char sql[] =
		"INSERT INTO sector_pieces (miner_id, sector_num, piece_index, piece_cid, piece_size,"
		" raw_size, piece_offset, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	char s[CAIRN_CID_MAX_STRING];
	cairn_db_stmt *q;
	cairn_cid cid;
	int rc;

	cairn_piece_cid_v1(&cid, pc->info.commp);
	cairn_cid_to_string(s, &cid);
	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_int64(q, 1, (int64_t)sid->miner)) ||
	    (rc = cairn_db_bind_int64(q, 2, (int64_t)sid->number)) ||
	    (rc = cairn_db_bind_int64(q, 3, (int64_t)index)) || (rc = cairn_db_bind_text(q, 4, s)) ||
	    (rc = cairn_db_bind_int64(q, 5, (int64_t)pc->info.padded_size)) ||
	    (rc = cairn_db_bind_int64(q, 6, (int64_t)pc->info.payload_size)) ||
	    (rc = cairn_db_bind_int64(q, 7, (int64_t)pc->offset)) ||
	    (rc = cairn_db_bind_int64(q, 8, (int64_t)time(NULL)))) {
		cairn_db_reset(q);
		return rc;
	}
	return run(q);
}

/* A piece row into `out` from columns cid, padded, raw, offset at `col`. */
static int read_piece(cairn_sector_piece *out, cairn_db_stmt *q, int col)
{
	const char *s = cairn_db_column_text(q, col);
	cairn_piece_info dec;
	cairn_cid cid;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s || (rc = cairn_cid_parse(&cid, s, strlen(s))) || (rc = cairn_piece_cid_decode(&dec, &cid)))
		return cairn_error_set(CAIRN_ECORRUPT, "sector_pieces: a bad piece CID '%s'",
				       s ? s : "(null)");
	memcpy(out->info.commp, dec.commp, 32);
	if ((rc = cairn_piece_sizes(&out->info, (uint64_t)cairn_db_column_int64(q, col + 2))))
		return rc;
	out->info.padded_size = (uint64_t)cairn_db_column_int64(q, col + 1);
	out->offset = (uint64_t)cairn_db_column_int64(q, col + 3);
	/* A payload may be zero-filled past what the size formula picks
	 * (a piece padded to a bigger size on purpose): height and padding
	 * follow the padded size recorded. */
	{
		unsigned h = 0;

		while (h < 63 && (UINT64_C(32) << h) < out->info.padded_size)
			h++;
		out->info.height = h;
		out->info.padding = out->info.padded_size / 128 * 127 - out->info.payload_size;
	}
	return 0;
}

static int load_sector(cairn_sector_info *out, cairn_sector_store *st, int64_t miner, int64_t num,
		       unsigned proof)
{
	static const char pieces_sql[] =
		"SELECT piece_cid, piece_size, raw_size, piece_offset FROM sector_pieces"
		" WHERE miner_id = ?1 AND sector_num = ?2 ORDER BY piece_index";
	static const char types_sql[] =
		"SELECT DISTINCT sector_filetype FROM sector_location WHERE miner_id = ?1 AND sector_num = ?2";
	cairn_db_stmt *q;
	size_t cap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	out->id.miner = (uint64_t)miner;
	out->id.number = (uint64_t)num;
	out->proof = proof;
	if ((rc = cairn_sector_proof_size(&out->size, proof)))
		return cairn_error_prefix("sector s-t0%lld-%lld: ", (long long)miner, (long long)num);
	if ((rc = cairn_db_prepare(&q, st->db, pieces_sql)))
		return rc;
	if ((rc = cairn_db_bind_int64(q, 1, miner)) || (rc = cairn_db_bind_int64(q, 2, num))) {
		cairn_db_reset(q);
		return rc;
	}
	while ((rc = cairn_db_step(q)) > 0) {
		if (out->n_pieces == cap) {
			size_t nc = cap ? cap * 2 : 8;
			cairn_sector_piece *g = cairn_realloc(out->pieces, nc * sizeof(*g));

			if (!g) {
				rc = CAIRN_ENOMEM;
				break;
			}
			out->pieces = g;
			cap = nc;
		}
		if ((rc = read_piece(&out->pieces[out->n_pieces], q, 0)))
			break;
		cairn_sector_piece *pc = &out->pieces[out->n_pieces++];
		if (pc->offset + pc->info.padded_size > out->pieces_end)
			out->pieces_end = pc->offset + pc->info.padded_size;
	}
	cairn_db_reset(q);
	if (rc < 0)
		return rc;
	if ((rc = cairn_db_prepare(&q, st->db, types_sql)))
		return rc;
	if ((rc = cairn_db_bind_int64(q, 1, miner)) || (rc = cairn_db_bind_int64(q, 2, num))) {
		cairn_db_reset(q);
		return rc;
	}
	while ((rc = cairn_db_step(q)) > 0)
		out->types |= (unsigned)cairn_db_column_int64(q, 0) & CAIRN_SECTOR_FT_ALL;
	cairn_db_reset(q);
	return rc < 0 ? rc : 0;
}

void cairn_sector_info_clear(cairn_sector_info *info)
{
	if (!info)
		return;
	cairn_free(info->pieces);
	memset(info, 0, sizeof(*info));
}

int cairn_sector_get(cairn_sector_info *out, cairn_sector_store *st, const cairn_sector_id *sid)
{
	static const char sql[] =
		"SELECT reg_seal_proof FROM sectors WHERE miner_id = ?1 AND sector_num = ?2";
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_db_stmt *q;
	int64_t proof = -1;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sid->miner > INT64_MAX || sid->number > INT64_MAX)
		return cairn_error_set(CAIRN_EINVAL, "sector number out of range");
	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	if (!(rc = cairn_db_bind_int64(q, 1, (int64_t)sid->miner)) &&
	    !(rc = cairn_db_bind_int64(q, 2, (int64_t)sid->number)) && (rc = cairn_db_step(q)) > 0)
		proof = cairn_db_column_int64(q, 0);
	cairn_db_reset(q);
	if (rc < 0)
		return rc;
	cairn_sector_name(name, sid);
	if (proof < 0)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: no such sector", name);
	if (proof > 9)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: seal proof %lld in the index", name,
				       (long long)proof);
	if ((rc = load_sector(out, st, (int64_t)sid->miner, (int64_t)sid->number, (unsigned)proof)))
		cairn_sector_info_clear(out);
	return rc;
}

int cairn_sector_list(cairn_sector_store *st, cairn_sector_fn fn, void *payload)
{
	static const char sql[] =
		"SELECT miner_id, sector_num FROM sectors ORDER BY miner_id, sector_num";
	cairn_db_stmt *q;
	cairn_sector_id *ids = NULL;
	size_t n = 0, cap = 0;
	int rc;

	/* Ids first, then each sector: fn may call back into the index. */
	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	while ((rc = cairn_db_step(q)) > 0) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			cairn_sector_id *g = cairn_realloc(ids, nc * sizeof(*g));

			if (!g) {
				rc = CAIRN_ENOMEM;
				break;
			}
			ids = g;
			cap = nc;
		}
		ids[n].miner = (uint64_t)cairn_db_column_int64(q, 0);
		ids[n++].number = (uint64_t)cairn_db_column_int64(q, 1);
	}
	cairn_db_reset(q);
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		cairn_sector_info info;

		if ((rc = cairn_sector_get(&info, st, &ids[i])))
			break;
		rc = fn(&info, payload);
		cairn_sector_info_clear(&info);
		if (rc)
			break;
	}
	cairn_free(ids);
	return rc;
}

/* The storage ids holding a type of a sector, primary first; each
 * passed to fn until it returns non-zero (returned). */
int cairn_sector__index_locations(cairn_sector_store *st, const cairn_sector_id *sid, unsigned ft,
				  int (*fn)(const char *storage_id, bool primary, void *payload),
				  void *payload)
{
	static const char sql[] =
		"SELECT storage_id, is_primary FROM sector_location WHERE miner_id = ?1 AND"
		" sector_num = ?2 AND sector_filetype = ?3 ORDER BY is_primary DESC, storage_id";
	char (*ids)[40] = NULL;
	bool *prim = NULL;
	size_t n = 0;
	cairn_db_stmt *q;
	int rc;

	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	if ((rc = cairn_db_bind_int64(q, 1, (int64_t)sid->miner)) ||
	    (rc = cairn_db_bind_int64(q, 2, (int64_t)sid->number)) ||
	    (rc = cairn_db_bind_int64(q, 3, ft))) {
		cairn_db_reset(q);
		return rc;
	}
	while ((rc = cairn_db_step(q)) > 0) {
		const char *id = cairn_db_column_text(q, 0);
		void *g = cairn_realloc(ids, (n + 1) * sizeof(*ids));

		if (!g) {
			rc = CAIRN_ENOMEM;
			break;
		}
		ids = g;
		if (!(g = cairn_realloc(prim, (n + 1) * sizeof(*prim)))) {
			rc = CAIRN_ENOMEM;
			break;
		}
		prim = g;
		snprintf(ids[n], 40, "%s", id ? id : "");
		prim[n++] = cairn_db_column_int64(q, 1) != 0;
	}
	cairn_db_reset(q);
	for (size_t i = 0; rc >= 0 && i < n; i++)
		if ((rc = fn(ids[i], prim[i], payload)))
			break;
	cairn_free(ids);
	cairn_free(prim);
	return rc;
}

int cairn_sector__index_piece_find(cairn_sector_id *sid_out, cairn_sector_piece *out,
				   cairn_sector_store *st, const uint8_t commp[32])
{
	static const char sql[] =
		"SELECT miner_id, sector_num, piece_cid, piece_size, raw_size, piece_offset"
		" FROM sector_pieces WHERE piece_cid = ?1 ORDER BY miner_id, sector_num, piece_index";
	char s[CAIRN_CID_MAX_STRING];
	cairn_db_stmt *q;
	cairn_cid cid;
	int rc;

	cairn_piece_cid_v1(&cid, commp);
	cairn_cid_to_string(s, &cid);
	if ((rc = cairn_db_prepare(&q, st->db, sql)))
		return rc;
	if (!(rc = cairn_db_bind_text(q, 1, s)) && (rc = cairn_db_step(q)) > 0) {
		sid_out->miner = (uint64_t)cairn_db_column_int64(q, 0);
		sid_out->number = (uint64_t)cairn_db_column_int64(q, 1);
		rc = read_piece(out, q, 2);
		if (!rc)
			rc = 1;
	}
	cairn_db_reset(q);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return cairn_error_set(CAIRN_ENOTFOUND, "piece %s is in no sector", s);
	return 0;
}
