/* cairn/sector.h: sector storage on one machine, in Lotus's layout: storage
 * paths with their sectorstore.json, space reservations, sector files and
 * their locks, the unsealed partial-file format, AddPiece and ReadPiece. */
#ifndef CAIRN_SECTOR_H
#define CAIRN_SECTOR_H

#include "cairn/db.h"
#include "cairn/mount.h"
#include "cairn/piece.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------ names and sizes
 *
 * A sector is (miner actor id, sector number); its files are named
 * "s-t0<miner>-<number>" (always "t0", as Lotus writes them on every network)
 * under "<path>/<type>/": unsealed and sealed are files, cache a directory.
 */
typedef struct cairn_sector_id {
	uint64_t miner;
	uint64_t number;
} cairn_sector_id;

/* Lotus's SectorFileType bits. */
typedef enum cairn_sector_ft {
	CAIRN_SECTOR_UNSEALED = 1,
	CAIRN_SECTOR_SEALED = 2,
	CAIRN_SECTOR_CACHE = 4,
} cairn_sector_ft;
#define CAIRN_SECTOR_FT_ALL 7u

/* Long enough for "s-t0" and two 20-digit numbers. */
#define CAIRN_SECTOR_NAME_MAX 48

/* Writes "s-t0<miner>-<number>" into out (CAIRN_SECTOR_NAME_MAX bytes). */
CAIRN_API void cairn_sector_name(char out[CAIRN_SECTOR_NAME_MAX], const cairn_sector_id *id);
/* Parses a sector name (exactly that form, decimal without leading zeros or
 * signs). CAIRN_EINVAL otherwise. */
CAIRN_API int cairn_sector_name_parse(cairn_sector_id *out, const char *name);

/* "unsealed", "sealed", "cache" for one bit; NULL for anything else. */
CAIRN_API const char *cairn_sector_ft_name(unsigned ft);
/* One name or several joined by ',' ("unsealed,cache") into bits;
 * CAIRN_EINVAL for an unknown name. */
CAIRN_API int cairn_sector_ft_parse(unsigned *out, const char *s);

/* RegisteredSealProof: V1 is 0..4 and V1_1 5..9 for 2 KiB, 8 MiB, 512 MiB,
 * 32 GiB and 64 GiB. CAIRN_EINVAL for another proof or size. */
CAIRN_API int cairn_sector_proof_size(uint64_t *size_out, unsigned proof);
CAIRN_API int cairn_sector_proof_for_size(unsigned *proof_out, uint64_t size);  /* V1_1 */

/* A byte count: digits with an optional binary suffix ("KiB", "MiB", "GiB",
 * "TiB", "PiB", case-insensitive). CAIRN_EINVAL for anything else or an
 * overflow. */
CAIRN_API int cairn_sector_size_parse(uint64_t *out, const char *s);

/* Space a sector's files of types `ft` take in a path, by Lotus's overhead
 * tables (storiface FSOverheadSeal / FsOverheadFinalized, tenths of the
 * sector size): sealing reserves unsealed 10, sealed 10, cache 141 (the
 * 11 layers, tree D and trees C and R while sealing); a finalized sector
 * takes unsealed 10, sealed 10, cache 1 (LH). */
typedef enum cairn_sector_path_type {
	CAIRN_SECTOR_PATH_SEALING = 0,
	CAIRN_SECTOR_PATH_STORAGE = 1,
} cairn_sector_path_type;
CAIRN_API uint64_t cairn_sector_space_use(unsigned ft, uint64_t sector_size,
					  cairn_sector_path_type type);

/* --------------------------------------------------------------- RLE+
 *
 * The bitfield encoding of go-bitfield, which the partial file's trailer
 * uses: bits packed LSB first; a 2-bit version 00; one bit for the value of
 * the first run; then each run's length: "1" for 1, "01" + 4 bits for 2..15,
 * "00" + an unsigned LEB128 varint (bytes of 8 bits) for 16 and more.
 * A set is a sorted list of disjoint, non-adjacent runs of set bits.
 */
typedef struct cairn_run {
	uint64_t off;
	uint64_t len;
} cairn_run;

/* Appends the minimal encoding of the set (runs sorted, disjoint, not
 * touching, len > 0: CAIRN_EINVAL otherwise). No run gives zero bytes. */
CAIRN_API int cairn_rleplus_encode(cairn_buf *out, const cairn_run *runs, size_t n);
/* Decodes p[0..len) as go-bitfield reads it (a run of length 0, or the end
 * of the bits, ends it; a trailing zero byte, a bad version, a varint over
 * 64 bits or with a zero last byte are refused). Every set bit must be
 * below `max_bits`. `*runs_out` (cairn_free) gets the set runs, merged.
 * CAIRN_ECORRUPT names the byte offset. */
CAIRN_API int cairn_rleplus_decode(cairn_run **runs_out, size_t *n_out, const uint8_t *p,
				   size_t len, uint64_t max_bits);

/* ------------------------------------------------------- partial files
 *
 * Lotus's unsealed sector file:
 *   [0, S)            the sector's data, fr32-padded (S = sector size)
 *   [S, S + T)        RLE+ of the padded byte offsets holding data
 *   [S + T, S + T + 4) T as a little-endian uint32
 * Offsets and sizes below are padded bytes. The file is sparse: nothing is
 * preallocated, and freeing punches holes (PUNCH_HOLE | KEEP_SIZE).
 * A partial file is used by one thread at a time for writes; reads of its
 * descriptor with pread may run beside them.
 */
typedef struct cairn_partialfile cairn_partialfile;

/* The largest trailer read: 64 MiB (Lotus warns past 1 MiB). */
#define CAIRN_PARTIALFILE_MAX_TRAILER (64u << 20)

/* Creates (or truncates) `path` as an empty partial file of a sector of
 * `sector_size` bytes (a power of two from 256). */
CAIRN_API int cairn_partialfile_create(cairn_partialfile **out, const char *path,
				       uint64_t sector_size);
/* Opens and checks an existing one: size >= S + 4, the trailer length
 * consistent with the size, the RLE+ valid and within S. CAIRN_ENOTFOUND
 * for a missing file, CAIRN_ECORRUPT naming the file and byte offset. */
CAIRN_API int cairn_partialfile_open(cairn_partialfile **out, const char *path,
				     uint64_t sector_size, bool writable);
/* Syncs nothing more; NULL is accepted. */
CAIRN_API void cairn_partialfile_close(cairn_partialfile *pf);
/* The descriptor (borrowed): data at padded offset o is at file offset o. */
CAIRN_API int cairn_partialfile_fd(const cairn_partialfile *pf);
CAIRN_API uint64_t cairn_partialfile_sector_size(const cairn_partialfile *pf);
/* Marks [off, off+size) as holding data and rewrites the trailer (and
 * truncates the file after it). */
CAIRN_API int cairn_partialfile_mark_allocated(cairn_partialfile *pf, uint64_t off, uint64_t size);
/* Punches a hole over [off, off+size) (fallocate PUNCH_HOLE | KEEP_SIZE; a
 * file system without holes gets zeros written), unmarks it and rewrites
 * the trailer. Ranges need not be aligned. */
CAIRN_API int cairn_partialfile_free(cairn_partialfile *pf, uint64_t off, uint64_t size);
/* True when every byte of [off, off+size) is marked. */
CAIRN_API bool cairn_partialfile_has_allocated(const cairn_partialfile *pf, uint64_t off,
					       uint64_t size);
/* The marked runs (borrowed until the next change). */
CAIRN_API const cairn_run *cairn_partialfile_allocated(const cairn_partialfile *pf, size_t *n_out);
/* fsync of the file. */
CAIRN_API int cairn_partialfile_sync(cairn_partialfile *pf);

/* ------------------------------------------------------ the sector store
 *
 * The sector storage of one cairn store: `<repo>/storage.json` lists the
 * storage paths (Lotus's format; paths inside the repo stored relative to
 * it, so the store can be moved or cloned), each path holding its own
 * `sectorstore.json`; the index of which path holds which file of which
 * sector, the sectors and their pieces are in the metadata database (tables
 * storage_path and sector_location in Curio's shape; sectors;
 * sector_pieces). Locks and reservations are files under flock, so they
 * hold across processes and vanish with a process that dies.
 * Threads: every call may run beside others on one store (the database
 * serializes) except attach, detach and redeclare, which change the list of
 * paths and must run alone.
 */
typedef struct cairn_sector_store cairn_sector_store;

/* Opens the sector storage of the repo at `repo` with its index in `db`
 * (migrated here; it must outlive the store). Paths in storage.json are
 * opened: a missing or unreadable one is logged and left out of `list`
 * (with its error) rather than failing the store. */
CAIRN_API int cairn_sector_store_open(cairn_sector_store **out, const char *repo, cairn_db *db);
/* NULL is accepted. Reservations and locks must have been released. */
CAIRN_API void cairn_sector_store_close(cairn_sector_store *st);

/* ----------------------------------------------------- storage paths */
typedef struct cairn_storage_init {
	uint64_t weight;      /* Lotus's default 10; 0 = read-only */
	bool can_seal;
	bool can_store;
	uint64_t max_storage; /* 0 = unlimited */
} cairn_storage_init;

typedef struct cairn_storage_stat {
	int64_t capacity;     /* statfs: blocks * block size */
	int64_t available;    /* what can still be allocated: free space (or
			       * max_storage - used) minus reservations */
	int64_t fs_available; /* statfs: blocks available to us */
	int64_t reserved;     /* reservations not yet on disk */
	int64_t max;          /* max_storage */
	int64_t used;         /* bytes allocated under the path (st_blocks),
			       * counted only with max_storage, as Lotus does */
} cairn_storage_stat;

typedef struct cairn_storage_info {
	char id[40];          /* the path's UUID */
	const char *path;     /* absolute */
	const char *config_path; /* as in storage.json */
	uint64_t weight;
	uint64_t max_storage;
	bool can_seal;
	bool can_store;
	const char *error;    /* the path could not be opened (the rest unset
			       * but path); NULL when fine */
	cairn_storage_stat stat;
	uint64_t sectors[3];  /* declared files of each type, by bit order */
} cairn_storage_info;

/* Attaches `path`: with `init`, creates it (mkdir -p) and writes its
 * sectorstore.json first (CAIRN_EEXISTS if there is one; CAIRN_EINVAL
 * unless it can seal or store); then reads it, lists it in storage.json,
 * records it in the index and declares the sector files found in it
 * (every entry of unsealed/, sealed/, cache/ but fetching/ must be a
 * sector name: CAIRN_ECORRUPT otherwise). `id_out` (may be NULL, 40 bytes)
 * gets its UUID. CAIRN_EEXISTS when attached already. */
CAIRN_API int cairn_sector_storage_attach(cairn_sector_store *st, const char *path,
					  const cairn_storage_init *init, char *id_out);
/* Detaches a path given by path or UUID: out of storage.json and the
 * index (its sector_location rows too); its files stay. CAIRN_ENOTFOUND. */
CAIRN_API int cairn_sector_storage_detach(cairn_sector_store *st, const char *path_or_id);
/* Scans a path (or every path, for NULL) again and declares what it holds;
 * with `drop_missing`, locations whose file is gone are dropped.
 * `declared_out`/`dropped_out` may be NULL. */
CAIRN_API int cairn_sector_storage_redeclare(cairn_sector_store *st, const char *path_or_id,
					     bool drop_missing, uint64_t *declared_out,
					     uint64_t *dropped_out);
/* Calls fn for every path in storage.json order, with a snapshot valid for
 * the call (stat taken now, also written to the index). */
typedef int (*cairn_storage_fn)(const cairn_storage_info *info, void *payload);
CAIRN_API int cairn_sector_storage_list(cairn_sector_store *st, cairn_storage_fn fn, void *payload);

/* -------------------------------------------------------- reservations
 *
 * Space for files about to be written: the overhead of each type in `ft`
 * for a sector of `sector_size` in path `storage_id`, all or nothing. The
 * check against the path's available space and the reservation are one
 * step under the path's lock, so processes reserving at once never
 * overfill it. A reservation counts what its files do not yet take on
 * disk, and goes when released or when its process dies (it is a file
 * under flock). CAIRN_ETOOBIG: not enough space (the message says how
 * much is needed and available); CAIRN_ENOTFOUND: no such path.
 */
typedef struct cairn_sector_reservation cairn_sector_reservation;
CAIRN_API int cairn_sector_reserve(cairn_sector_reservation **out, cairn_sector_store *st,
				   const char *storage_id, const cairn_sector_id *sid,
				   uint64_t sector_size, unsigned ft, cairn_sector_path_type type);
/* NULL is accepted. */
CAIRN_API void cairn_sector_reservation_release(cairn_sector_reservation *r);

/* ---------------------------------------------------------------- locks
 *
 * Read and write locks per sector and file type: flock on
 * `<repo>/sectors/locks/<name>.<type>`, shared for reading, exclusive for
 * writing, taken in type order so two lockers never deadlock; they hold
 * across processes and threads and die with their holder.
 */
typedef struct cairn_sector_lock cairn_sector_lock;
/* With `wait` false, CAIRN_EEXISTS when a conflicting lock is held. */
CAIRN_API int cairn_sector_lock_take(cairn_sector_lock **out, cairn_sector_store *st,
				     const cairn_sector_id *sid, unsigned read_ft,
				     unsigned write_ft, bool wait);
/* NULL is accepted. */
CAIRN_API void cairn_sector_lock_release(cairn_sector_lock *l);

/* -------------------------------------------------------------- sectors */
typedef struct cairn_sector_piece {
	cairn_piece_info info;   /* commp, sizes (payload_size = raw bytes) */
	uint64_t offset;         /* padded offset in the sector */
} cairn_sector_piece;

typedef struct cairn_sector_info {
	cairn_sector_id id;
	unsigned proof;          /* RegisteredSealProof */
	uint64_t size;           /* sector size */
	uint64_t pieces_end;     /* padded bytes taken by pieces and fillers */
	size_t n_pieces;
	cairn_sector_piece *pieces; /* owned: cairn_sector_info_clear */
	unsigned types;          /* file types declared somewhere */
} cairn_sector_info;
CAIRN_API void cairn_sector_info_clear(cairn_sector_info *info);

/* The sector, its pieces and its types. CAIRN_ENOTFOUND. */
CAIRN_API int cairn_sector_get(cairn_sector_info *out, cairn_sector_store *st,
			       const cairn_sector_id *sid);
/* Every sector in (miner, number) order. */
typedef int (*cairn_sector_fn)(const cairn_sector_info *info, void *payload);
CAIRN_API int cairn_sector_list(cairn_sector_store *st, cairn_sector_fn fn, void *payload);

/* The path of the file of one type (one bit) of a sector in the first
 * path that holds it (primary first), appended to `out`, and that path's
 * UUID in `id_out` (40 bytes, may be NULL). CAIRN_ENOTFOUND. */
CAIRN_API int cairn_sector_find(cairn_buf *out, char *id_out, cairn_sector_store *st,
				const cairn_sector_id *sid, unsigned ft);

/* Adds a piece of `len` payload bytes read from `fd` at `off` with pread
 * (the padded size, hence the place, depends on `len`: it must be known), as
 * Lotus's AddPiece with the sealing FSM's filler pieces: a piece of padded
 * size P goes at the next multiple of P after the sector's pieces, the gap
 * filled with zero pieces (holes in the file, marked written); the payload
 * fr32-padded into the unsealed file and its CommP computed on the way on
 * `threads` threads (0: one per core). A new sector is created with
 * `proof` (ignored for an existing one; UINT32_MAX refuses a new sector),
 * its unsealed file in the sealing path with the most available space
 * times weight, with the space reserved while it is written. Holds the
 * write lock on the unsealed file. `out` gets the piece and its offset.
 * CAIRN_ETOOBIG when the piece does not fit the sector; CAIRN_ENOTFOUND
 * for a new sector without a proof; CAIRN_EEXISTS when another process
 * writes it. */
CAIRN_API int cairn_sector_add_piece(cairn_sector_piece *out, cairn_sector_store *st,
				     const cairn_sector_id *sid, unsigned proof, int fd,
				     uint64_t off, uint64_t len, const char *what,
				     unsigned threads);

/* What add-piece checks before the piece is kept. */
typedef struct cairn_sector_add_check {
	const uint8_t *commp;    /* 32 bytes: the CommP the payload must have; NULL: any */
	/* Called once the bytes are written and fsynced, before the check
	 * (nothing marks them yet: a crash here leaves the sector as it was,
	 * bytes past its pieces that the next add-piece overwrites); may be
	 * NULL. Tests crash here. */
	void (*on_written)(void *payload);
	void *payload;
} cairn_sector_add_check;

/* As cairn_sector_add_piece, with the CommP computed while padding checked
 * against check->commp (check may be NULL) before anything marks the piece,
 * so the data is read and hashed once. On a mismatch the range written is
 * freed (punched, the trailer as before) and a sector file this call made
 * is removed with its index entry: the sector and its index are as before.
 * Errors: as cairn_sector_add_piece, and CAIRN_EMISMATCH (both piece CIDs
 * named). */
CAIRN_API int cairn_sector_add_piece_checked(cairn_sector_piece *out, cairn_sector_store *st,
					     const cairn_sector_id *sid, unsigned proof, int fd,
					     uint64_t off, uint64_t len, const char *what,
					     unsigned threads, const cairn_sector_add_check *check);

/* Reading a piece's payload (unpadded bytes) out of the unsealed copy of
 * its sector, unpadding on the fly, without any scheduler. */
typedef struct cairn_sector_reader cairn_sector_reader;
/* Opens the piece at padded offset `piece_off` of padded size `piece_size`
 * in sector `sid`, `size` unpadded bytes long (UINT64_MAX: the whole
 * piece, piece_size / 128 * 127). Holds a read lock on the unsealed file until
 * closed. CAIRN_ENOTFOUND ("no unsealed copy") when no path holds the
 * sector's unsealed file or the file lacks part of the range. */
CAIRN_API int cairn_sector_reader_open(cairn_sector_reader **out, cairn_sector_store *st,
				       const cairn_sector_id *sid, uint64_t piece_off,
				       uint64_t piece_size, uint64_t size);
/* The same for a piece found by its CID (v1 or v2) in the index; the size
 * is its payload size. */
CAIRN_API int cairn_sector_reader_open_cid(cairn_sector_reader **out, cairn_sector_store *st,
					   const cairn_cid *piece_cid);
CAIRN_API uint64_t cairn_sector_reader_size(const cairn_sector_reader *r);
/* Reads exactly n unpadded bytes at `offset`; thread-safe (pread).
 * CAIRN_ECORRUPT past the end or for bytes that are not fr32 padding. */
CAIRN_API int cairn_sector_reader_read_at(cairn_sector_reader *r, void *buf, size_t n,
					  uint64_t offset);
/* Name for messages, e.g. "s-t01000-1 piece at 2048". Borrowed. */
CAIRN_API const char *cairn_sector_reader_name(const cairn_sector_reader *r);
/* NULL is accepted. */
CAIRN_API void cairn_sector_reader_close(cairn_sector_reader *r);

/* The CommD of a sector from its pieces (cairn_piece_commd). */
CAIRN_API int cairn_sector_commd(uint8_t out[32], cairn_sector_store *st,
				 const cairn_sector_id *sid);

/* One problem found by cairn_sector_check. */
typedef struct cairn_sector_problem {
	cairn_sector_id id;
	unsigned ft;              /* the type it concerns */
	const char *storage_id;   /* the path (NULL when none holds it) */
	const char *file;         /* the file (relative to the path) */
	const char *what;         /* "missing", "wrong size: ...", ... */
} cairn_sector_problem;
typedef int (*cairn_sector_problem_fn)(const cairn_sector_problem *p, void *payload);
/* Checks the files of one sector (NULL: every sector): each declared file
 * exists with the right size (unsealed: S + trailer, its trailer valid;
 * sealed: S; cache: p_aux of 64 bytes, t_aux, tree-r-last files), and a
 * sector with pieces has an unsealed copy. Returns the number of problems
 * (each passed to fn, which may be NULL). */
CAIRN_API int cairn_sector_check(cairn_sector_store *st, const cairn_sector_id *sid,
				 cairn_sector_problem_fn fn, void *payload);

/* Moves the files of types `ft` of a sector to the path `dest_id` (which
 * must be able to store): a rename on one file system, else a sparse copy
 * under <dest>/<type>/fetching/, fsynced and renamed into place, then the
 * index updated and the source removed. Holds the write locks. */
CAIRN_API int cairn_sector_move(cairn_sector_store *st, const cairn_sector_id *sid,
				unsigned ft, const char *dest_id);

/* ----------------------------------------------------------- the mount
 *
 * Shards read out of unsealed sectors, for the DAG store:
 *   sector://<miner>/<number>/<offset>/<size>   a piece at padded offset
 *       and padded size, read to its end
 *   piece://<piece CID>                         a piece found in the index,
 *       read to its payload size
 * A piece with no unsealed copy fails to open with CAIRN_ENOTFOUND, "no
 * unsealed copy" (unsealing needs the proofs library), so its shard is
 * Errored with that message. The store must outlive the registry.
 */
CAIRN_API extern const cairn_mount_ops cairn_sector_mount_ops;
/* Registers "sector" and "piece" with `st` as their context. */
CAIRN_API int cairn_sector_mount_register(cairn_mount_registry *reg, cairn_sector_store *st);

#ifdef __cplusplus
}
#endif
#endif
