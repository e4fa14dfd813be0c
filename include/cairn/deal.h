/* cairn/deal.h: the inbound deal flow: a deal's data staged and checked
 * against its piece CID, added to an open sector, and served as a DAG-store
 * shard mounted from the sector, each step recorded so a crash resumes it. */
#ifndef CAIRN_DEAL_H
#define CAIRN_DEAL_H

#include "cairn/dagstore.h"
#include "cairn/sector.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A deal's steps, in order, as the `deals` table records them:
 *   Staging --data whole, sizes known--> Staged --in a sector, CommP ==
 *   piece CID--> Added --shard registered (piece://P)--> Registered
 *   --indexed, staged copy removed--> Available
 * The CommP is computed once, by add-piece while it pads the data into the
 * sector, and checked before the piece is kept. A CommP that differs from
 * the piece CID removes the deal (its row and staged bytes) and leaves the
 * sector as it was: nothing is left of it. */
typedef enum cairn_deal_state {
	CAIRN_DEAL_STAGING = 0,
	CAIRN_DEAL_STAGED = 1,
	CAIRN_DEAL_ADDED = 2,
	CAIRN_DEAL_REGISTERED = 3,
	CAIRN_DEAL_AVAILABLE = 4,
} cairn_deal_state;

/* "Staging", "Staged", "Added", "Registered", "Available"; NULL otherwise. */
CAIRN_API const char *cairn_deal_state_name(cairn_deal_state state);

/* One deal. Strings are owned: cairn_deal_info_clear. */
typedef struct cairn_deal_info {
	char piece_cid[CAIRN_CID_MAX_STRING]; /* v1 ("baga6ea4seaq..."): the shard key */
	cairn_deal_state state;
	char *source;            /* the path or URL given ("-": stdin) */
	uint64_t payload_size;   /* known from Staged on (0 before) */
	uint64_t padded_size;
	bool in_sector;          /* from Added on; a sector may be chosen before */
	cairn_sector_id sector;
	uint64_t offset;         /* padded offset in the sector */
	int64_t created_at;      /* unix seconds */
	int64_t updated_at;
} cairn_deal_info;
CAIRN_API void cairn_deal_info_clear(cairn_deal_info *info);

/* The deals of one store: its metadata database (the `deal` part's
 * migrations: tables deals and deal_markers), sector store, DAG store and
 * `<repo>/staging/`. Imports run one at a time (a mutex), so two never pick
 * the same place in a sector; list may run beside them. */
typedef struct cairn_deals cairn_deals;

/* Opens the deals of the repo at `repo`; db, st and ds are borrowed and
 * must outlive it (ds with the sector mounts registered). On the first
 * open that finds sectors holding pieces, every piece is registered as a
 * New shard (key its v1 piece CID, URL piece://<it>) unless it has one,
 * and the marker "pieces-registered" is written, so this happens once.
 * Errors: the db's, CAIRN_EIO (staging/ cannot be made). */
CAIRN_API int cairn_deals_open(cairn_deals **out, const char *repo, cairn_db *db,
			       cairn_sector_store *st, cairn_dagstore *ds);
/* NULL is accepted. No import may be running. */
CAIRN_API void cairn_deals_close(cairn_deals *d);

/* Called after each step is recorded, with the step's name: "staging"
 * (after each checkpoint of staged bytes), "staged", "chosen" (the sector
 * recorded, nothing written to it yet), "written" (the piece's bytes in the
 * sector's file, its CommP not yet checked, nothing marking them), "added",
 * "registered", "indexed", "available". Tests kill the process here. */
typedef void (*cairn_deal_step_fn)(const char *step, void *payload);

typedef struct cairn_deal_import_options {
	uint64_t miner;          /* the miner actor id of new sectors; 0: 1000 */
	uint64_t sector_size;    /* of a new sector; 0: CAIRN_DEAL_SECTOR_SIZE */
	unsigned threads;        /* CommP and add-piece threads; 0: one per core */
	int fd;                  /* read for source "-" (a pipe is fine) */
	cairn_deal_step_fn on_step; /* may be NULL */
	void *step_payload;
} cairn_deal_import_options;
#define CAIRN_DEAL_SECTOR_SIZE (UINT64_C(32) << 30)
#define CAIRN_DEAL_IMPORT_OPTIONS_INIT {0, 0, 0, -1, NULL, NULL}

/* Imports the deal of piece `piece_cid` (v1, or v2 whose size is checked
 * too) from `source`: an absolute path, an http(s) URL (through the DAG
 * store's mount registry: ranged reads, retries), or "-" for opts->fd.
 *
 * Where the bytes are staged: the piece is the CAR's exact bytes (its
 * CommP is over them), so they are kept as they come, not parsed into a
 * CARv2 store, whose header and index would change them. A local file
 * (or an HTTP source the mount copied whole into a transient) is read in
 * place; other sources stream into <repo>/staging/<piece CID>.car,
 * fsynced every 64 MiB with the length safe on disk recorded, so a crash
 * resumes from there (a new stdin is read past that length).
 *
 * The sector: the lowest-numbered unsealed sector of the miner of the
 * given size where the piece fits by the alignment rule, else a new one
 * (the next number); the choice is recorded before anything is written.
 * When the store has no sealing path, <repo>/storage is attached (seal and
 * store) first. Importing a deal again resumes it from its last recorded
 * step; an Available one is returned as it is. `out` (may be NULL) gets
 * the deal.
 * Errors: CAIRN_EMISMATCH (the data's piece CID is another: both named,
 * nothing kept), CAIRN_ENOTFOUND (no such file or URL), CAIRN_ETOOBIG
 * (larger than a sector), others from the parts below. */
CAIRN_API int cairn_deal_import(cairn_deal_info *out, cairn_deals *d, const cairn_cid *piece_cid,
				const char *source, const cairn_deal_import_options *opts);

/* Calls fn for every deal, oldest first, with a snapshot valid for the
 * call; non-zero from fn stops and is returned. */
typedef int (*cairn_deal_fn)(const cairn_deal_info *info, void *payload);
CAIRN_API int cairn_deal_list(cairn_deals *d, cairn_deal_fn fn, void *payload);

#ifdef __cplusplus
}
#endif
#endif
