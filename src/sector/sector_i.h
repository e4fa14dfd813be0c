/* sector_i.h: what the files of the sector part share (not public): the
 * store's state, the paths it has open, and helpers between files. */
#ifndef CAIRN_SECTOR_I_H
#define CAIRN_SECTOR_I_H

#include <limits.h>
#include <sys/types.h>

#include "cairn/sector.h"

/* Bookkeeping directories inside a storage path, left out of its usage. */
#define SECTOR_RESERVATIONS_DIR ".cairn-reservations"

typedef struct sector_path {
	char id[40];
	char *path;         /* absolute */
	char *config_path;  /* as written in storage.json */
	char *error;        /* could not be opened: why */
	uint64_t weight;
	uint64_t max_storage;
	bool can_seal;
	bool can_store;
	char *groups, *allow_to, *allow_types, *deny_types; /* comma lists */
	dev_t dev;
} sector_path;

struct cairn_sector_store {
	char *repo;          /* absolute */
	cairn_db *db;
	sector_path *paths;
	size_t n_paths;
};

/* The paths of storage.json, in order. */
int cairn_sector__config_load(cairn_sector_store *st);
/* Rewrites storage.json from st->paths (atomic replace). */
int cairn_sector__config_save(cairn_sector_store *st);
void cairn_sector__path_clear(sector_path *p);
/* The open path with this UUID, or NULL. */
sector_path *cairn_sector__path_by_id(cairn_sector_store *st, const char *id);
/* By UUID or by (absolute or relative) path. */
sector_path *cairn_sector__path_find(cairn_sector_store *st, const char *path_or_id);
/* statfs, reservations and usage of a path. */
int cairn_sector__path_stat(cairn_storage_stat *out, cairn_sector_store *st, sector_path *p);
/* The sealing (or storage) path with the most available * weight that has
 * room for `need` bytes; CAIRN_ENOTFOUND "no good path found". */
int cairn_sector__best_alloc(sector_path **out, cairn_sector_store *st, uint64_t need,
			     cairn_sector_path_type type);

/* Index (index.c). */
int cairn_sector__index_migrate(cairn_db *db);
int cairn_sector__index_put_path(cairn_sector_store *st, const sector_path *p,
				 const cairn_storage_stat *stat);
int cairn_sector__index_drop_path(cairn_sector_store *st, const char *id);
int cairn_sector__index_declare(cairn_sector_store *st, const char *storage_id,
				const cairn_sector_id *sid, unsigned ft, bool primary);
int cairn_sector__index_drop(cairn_sector_store *st, const char *storage_id,
			     const cairn_sector_id *sid, unsigned ft);
int cairn_sector__index_count(cairn_sector_store *st, const char *storage_id, uint64_t out[3]);
int cairn_sector__index_sector_create(cairn_sector_store *st, const cairn_sector_id *sid,
				      unsigned proof);
int cairn_sector__index_piece_add(cairn_sector_store *st, const cairn_sector_id *sid,
				  size_t index, const cairn_sector_piece *pc);
/* The storage ids holding one type of a sector, primary first, each
 * passed to fn until it returns non-zero (which is returned). */
int cairn_sector__index_locations(cairn_sector_store *st, const cairn_sector_id *sid, unsigned ft,
				  int (*fn)(const char *storage_id, bool primary, void *payload),
				  void *payload);
/* The first sector holding a piece (by CommP). CAIRN_ENOTFOUND. */
int cairn_sector__index_piece_find(cairn_sector_id *sid_out, cairn_sector_piece *out,
				   cairn_sector_store *st, const uint8_t commp[32]);

/* "<dir>/<type>/<name>" into a new string (cairn_free). */
char *cairn_sector__file_path(const char *dir, unsigned ft, const cairn_sector_id *sid);
/* mkdir -p. */
int cairn_sector__mkdirs(const char *path, unsigned mode);
/* Allocated bytes (st_blocks * 512) of a file or, recursively, a
 * directory; 0 when missing. Skips the bookkeeping directories. */
uint64_t cairn_sector__disk_usage(const char *path);

/* fr32 quads covering unpadded [off, off+n): padded offset of the first
 * quad and padded length. */
static inline void cairn_sector__quads(uint64_t *poff, uint64_t *plen, uint64_t off, uint64_t n)
{
	uint64_t q0 = off / 127, q1 = (off + n + 126) / 127;

	*poff = q0 * 128;
	*plen = (q1 - q0) * 128;
}

#endif
