/* cairn/adt.h: Filecoin's two state structures, byte for byte as go-amt-ipld
 * and go-hamt-ipld write them: the AMT (array mapped trie) and the HAMT, with their diffs. */
#ifndef CAIRN_ADT_H
#define CAIRN_ADT_H

#include "cairn/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- common
 *
 * Values are opaque: one encoded CBOR item each (any DAG-CBOR value: an
 * integer, a byte string, a struct as a tuple, a CID), stored and compared as
 * bytes and written into the nodes verbatim, as cbor-gen's Deferred does.
 * set refuses bytes that are not exactly one well-formed CBOR item
 * (CAIRN_EINVAL). Nodes are DAG-CBOR blocks read from and put into a
 * cairn_store (borrowed: it must outlive the structure); their CIDs are
 * CIDv1 dag-cbor with blake2b-256, as Filecoin's, unless the options say
 * otherwise.
 *
 * Both structures keep the nodes they touch in memory, as the Go libraries
 * do: a node read once is decoded once. Changes stay in memory until
 * flush, which puts every changed node (children before parents, the root
 * last) and leaves the nodes cached; evict then drops every node that is
 * in the store, so memory goes back to one root node (call it after a flush
 * when the store is the memory store and its flush(root) is to free memory
 * too). Iteration and diff drop again the nodes they had to read, so a walk
 * over a structure much larger than memory stays within its depth.
 *
 * Pointers to values and keys handed out (get, iterators, callbacks) are
 * borrowed from the structure: valid until its next set, delete, evict or
 * free (for callbacks, during the call).
 *
 * Errors: CAIRN_ENOTFOUND for a missing index or key (no message worth
 * reading; nothing changed); CAIRN_ECORRUPT for a malformed node, naming the
 * node's CID and the byte offset; a store's own code (CAIRN_ENOTFOUND for a
 * missing node, with "node ... is not in the store") when reading or writing
 * a node fails; CAIRN_ENOMEM. A failed set or delete leaves the structure as
 * it was, except that a node that could not be read stays unread.
 * Not thread-safe: one thread at a time per structure, reads included
 * (reads fill the cache).
 */
typedef enum cairn_adt_change_type {
	CAIRN_ADT_ADD = 0,    /* in cur only: `after` is set */
	CAIRN_ADT_REMOVE = 1, /* in prev only: `before` is set */
	CAIRN_ADT_MODIFY = 2, /* in both with different bytes: both are set */
} cairn_adt_change_type;

/* "add", "remove", "modify". */
CAIRN_API const char *cairn_adt_change_name(cairn_adt_change_type type);

/* ------------------------------------------------------------------- AMT
 *
 * go-amt-ipld v3/v4 (v3 and v4 write the same bytes):
 *   root = [bitWidth, height, count, node]   node = [bmap, links, values]
 * bmap is 2^bitWidth bits (at least one byte), slot i in bit i%8 of byte
 * i/8; links are child CIDs (height > 0), values the items (height 0).
 * The legacy root of go-amt-ipld v0/v2, still used by the message and
 * receipt AMTs of every block header, is [height, count, node] with
 * bitWidth 3 and indexes below 2^63.
 *
 * The tree grows when an index needs it and collapses on delete, so a
 * root's CID depends only on the (index -> value bytes) it holds.
 * Loading refuses a root whose bitWidth differs from the configured one
 * (the stored value is not trusted), a height over 64 or one that could not
 * address the count, and any node whose shape does not match its height.
 */
typedef struct cairn_amt cairn_amt;

typedef enum cairn_amt_format {
	CAIRN_AMT_V3 = 0,  /* [bitWidth, height, count, node] */
	CAIRN_AMT_LEGACY,  /* [height, count, node], bitWidth 3 */
	CAIRN_AMT_DETECT,  /* load only: whichever the root is (tools) */
} cairn_amt_format;

/* Filecoin's widths: 3 (the default, deadlines, legacy), 5 (sectors,
 * events, deal proposals), 6 (deal states, precommit clean-up). */
#define CAIRN_AMT_MAX_BIT_WIDTH 13  /* 8192 slots: cbor-gen's array bound */
#define CAIRN_AMT_MAX_INDEX UINT64_C(0xfffffffffffffffe)        /* 2^64 - 2 */
#define CAIRN_AMT_LEGACY_MAX_INDEX UINT64_C(0x7fffffffffffffff) /* 2^63 - 1 */

typedef struct cairn_amt_options {
	/* 1..CAIRN_AMT_MAX_BIT_WIDTH; legacy needs 3. 0 with load takes the
	 * root's own (for tools that inspect unknown AMTs; state code knows
	 * the width of each AMT and must say it). */
	unsigned bit_width;
	cairn_amt_format format;
	uint64_t mh_code; /* multihash of the node CIDs; CAIRN_MH_BLAKE2B_256 */
} cairn_amt_options;
#define CAIRN_AMT_OPTIONS_INIT {3, CAIRN_AMT_V3, CAIRN_MH_BLAKE2B_256}

/* An empty AMT over `store`; `opts` NULL means CAIRN_AMT_OPTIONS_INIT.
 * CAIRN_EINVAL for a bad width or format. */
CAIRN_API int cairn_amt_new(cairn_amt **out, cairn_store *store, const cairn_amt_options *opts);
/* The AMT whose root block is `root` in `store`: the root is read and
 * checked now, other nodes when first needed. CAIRN_EINVAL when the root's
 * width or format is not the configured one (the message gives both). */
CAIRN_API int cairn_amt_load(cairn_amt **out, cairn_store *store, const cairn_cid *root,
			     const cairn_amt_options *opts);
/* Drops unflushed changes and every cached node; NULL is accepted. */
CAIRN_API void cairn_amt_free(cairn_amt *amt);

/* The count stored in the root (trusted on load, as Go's Len), the
 * height, the width and the format. */
CAIRN_API uint64_t cairn_amt_count(const cairn_amt *amt);
CAIRN_API unsigned cairn_amt_height(const cairn_amt *amt);
CAIRN_API unsigned cairn_amt_bit_width(const cairn_amt *amt);
CAIRN_API cairn_amt_format cairn_amt_get_format(const cairn_amt *amt);
/* The largest index this AMT accepts. */
CAIRN_API uint64_t cairn_amt_max_index(const cairn_amt *amt);

/* The value at `index` (borrowed, see above); CAIRN_ENOTFOUND if unset.
 * `val_out` and `len_out` may be NULL to test presence. */
CAIRN_API int cairn_amt_get(const uint8_t **val_out, size_t *len_out, cairn_amt *amt,
			    uint64_t index);
/* Sets `index` (up to cairn_amt_max_index, else CAIRN_EINVAL) to the CBOR
 * item val[0..len), copied. Setting CBOR null (0xf6) stores null; it is not
 * a delete. `added_out` (may be NULL) says whether the index was new. */
CAIRN_API int cairn_amt_set(cairn_amt *amt, bool *added_out, uint64_t index, const uint8_t *val,
			    size_t len);
/* Removes `index`; CAIRN_ENOTFOUND (nothing changed) if it was not set. */
CAIRN_API int cairn_amt_delete(cairn_amt *amt, uint64_t index);
/* Sets vals[i] at index first + i, as Go's BatchSet does from 0; the
 * values are n items concatenated in vals[0..len). On failure the indexes
 * before the bad one are set. */
CAIRN_API int cairn_amt_batch_set(cairn_amt *amt, uint64_t first, const uint8_t *vals, size_t len);
/* Deletes each index (in ascending order, whatever the order given);
 * `deleted_out` (may be NULL) gets how many were there. With `strict`, a
 * missing index is CAIRN_ENOTFOUND naming it, and the indexes before it
 * stay deleted, as in Go. */
CAIRN_API int cairn_amt_batch_delete(cairn_amt *amt, uint64_t *deleted_out, const uint64_t *indexes,
				     size_t n, bool strict);
/* The lowest index set; CAIRN_ENOTFOUND when empty. */
CAIRN_API int cairn_amt_first_index(uint64_t *index_out, cairn_amt *amt);

/* Puts every changed node and the root; `root_out` gets the root's CID.
 * Nodes stay cached. On failure nothing is lost: the changes not yet
 * written are still marked and a later flush writes them. */
CAIRN_API int cairn_amt_flush(cairn_cid *root_out, cairn_amt *amt);
/* Drops every cached node that is in the store (all of them after a
 * flush), keeping the changed ones. */
CAIRN_API void cairn_amt_evict(cairn_amt *amt);
/* Nodes decoded or created and held now, the root's included. */
CAIRN_API uint64_t cairn_amt_cached_nodes(const cairn_amt *amt);

/* Calls `fn` for each index from `start` up, in ascending order, with the
 * value (borrowed for the call). A non-zero return from `fn` stops the
 * walk and is returned. The AMT must not be changed from `fn`. */
typedef int (*cairn_amt_fn)(uint64_t index, const uint8_t *val, size_t len, void *payload);
CAIRN_API int cairn_amt_for_each(cairn_amt *amt, uint64_t start, cairn_amt_fn fn, void *payload);

/* The same as a cursor, for merging walks: next gives 1 and an entry, 0 at
 * the end, or a negative code. The value is borrowed until the next call.
 * The AMT must not change while a cursor is open. */
typedef struct cairn_amt_iter cairn_amt_iter;
CAIRN_API int cairn_amt_iter_new(cairn_amt_iter **out, cairn_amt *amt, uint64_t start);
CAIRN_API int cairn_amt_iter_next(cairn_amt_iter *it, uint64_t *index_out, const uint8_t **val_out,
				  size_t *len_out);
/* NULL is accepted. */
CAIRN_API void cairn_amt_iter_free(cairn_amt_iter *it);

/* One difference between two AMTs; the values are borrowed for the call. */
typedef struct cairn_amt_change {
	cairn_adt_change_type type;
	uint64_t index;
	const uint8_t *before; /* NULL for an add */
	size_t before_len;
	const uint8_t *after;  /* NULL for a remove */
	size_t after_len;
} cairn_amt_change;

typedef int (*cairn_amt_diff_fn)(const cairn_amt_change *change, void *payload);

/* Calls `fn` for each index whose value differs between `prev` and `cur`
 * (each over its own store), in ascending index order, as go-amt-ipld's
 * Diff. Subtrees whose CIDs are equal are skipped unread, so the cost is
 * in the changes, not the size; heights may differ. Either side may hold
 * unflushed changes (those subtrees are compared by content). CAIRN_EINVAL
 * if the widths differ. A non-zero return from `fn` stops and is returned.
 * Neither AMT may change from `fn`. */
CAIRN_API int cairn_amt_diff(cairn_amt *prev, cairn_amt *cur, cairn_amt_diff_fn fn, void *payload);

/* ------------------------------------------------------------------ HAMT
 *
 * go-hamt-ipld v3 with Filecoin's options: a node is
 *   [bitfield, [pointer...]]   pointer = child CID | [[key, value]...]
 * The bitfield is a big-endian integer without leading zero bytes (empty
 * for none) with bit i for slot i; pointers are in slot order; a bucket
 * holds 1 to 3 pairs sorted by key bytes. The slot at depth d is bits
 * [d*w, d*w + w) of SHA-256(key), most significant bit first. A fourth key
 * in a bucket moves the bucket into a child node; a delete that leaves a
 * child with no children and at most 3 pairs pulls them back up, so a root's
 * CID depends only on the pairs it holds. The root is a node: its CID is the
 * HAMT's. There is no count.
 */
typedef struct cairn_hamt cairn_hamt;

#define CAIRN_HAMT_MAX_BIT_WIDTH 8
#define CAIRN_HAMT_BUCKET_SIZE 3
#define CAIRN_HAMT_MAX_KEY (2u << 20) /* cbor-gen's bound on a key's bytes */

typedef struct cairn_hamt_options {
	unsigned bit_width; /* 1..CAIRN_HAMT_MAX_BIT_WIDTH; Filecoin: 5 */
	uint64_t mh_code;   /* multihash of the node CIDs; CAIRN_MH_BLAKE2B_256 */
} cairn_hamt_options;
#define CAIRN_HAMT_OPTIONS_INIT {5, CAIRN_MH_BLAKE2B_256}

/* An empty HAMT over `store`; `opts` NULL means CAIRN_HAMT_OPTIONS_INIT. */
CAIRN_API int cairn_hamt_new(cairn_hamt **out, cairn_store *store, const cairn_hamt_options *opts);
/* The HAMT whose root node is `root`: read and checked now (the bit width
 * is not stored: a node with more pointers than the width allows, or bits
 * past it, is CAIRN_ECORRUPT). */
CAIRN_API int cairn_hamt_load(cairn_hamt **out, cairn_store *store, const cairn_cid *root,
			      const cairn_hamt_options *opts);
/* NULL is accepted. */
CAIRN_API void cairn_hamt_free(cairn_hamt *hamt);
CAIRN_API unsigned cairn_hamt_bit_width(const cairn_hamt *hamt);

/* The value for key[0..klen) (borrowed); CAIRN_ENOTFOUND if absent. */
CAIRN_API int cairn_hamt_get(const uint8_t **val_out, size_t *len_out, cairn_hamt *hamt,
			     const uint8_t *key, size_t klen);
/* Sets a key (at most CAIRN_HAMT_MAX_KEY bytes) to one CBOR item, both
 * copied. `added_out` (may be NULL) says whether the key was new. */
CAIRN_API int cairn_hamt_set(cairn_hamt *hamt, bool *added_out, const uint8_t *key, size_t klen,
			     const uint8_t *val, size_t len);
/* CAIRN_ENOTFOUND (nothing changed) if the key was absent. */
CAIRN_API int cairn_hamt_delete(cairn_hamt *hamt, const uint8_t *key, size_t klen);
/* As for the AMT. */
CAIRN_API int cairn_hamt_flush(cairn_cid *root_out, cairn_hamt *hamt);
CAIRN_API void cairn_hamt_evict(cairn_hamt *hamt);
CAIRN_API uint64_t cairn_hamt_cached_nodes(const cairn_hamt *hamt);

/* Every pair, in the HAMT's order (slot order, depth first: the order of
 * the keys' hashes, not of the keys), as Go's ForEach. */
typedef int (*cairn_hamt_fn)(const uint8_t *key, size_t klen, const uint8_t *val, size_t len,
			     void *payload);
CAIRN_API int cairn_hamt_for_each(cairn_hamt *hamt, cairn_hamt_fn fn, void *payload);

typedef struct cairn_hamt_change {
	cairn_adt_change_type type;
	const uint8_t *key;
	size_t klen;
	const uint8_t *before;
	size_t before_len;
	const uint8_t *after;
	size_t after_len;
} cairn_hamt_change;

typedef int (*cairn_hamt_diff_fn)(const cairn_hamt_change *change, void *payload);

/* The keys whose values differ between `prev` and `cur`, skipping subtrees
 * with equal CIDs. Go's Diff gives its changes in no fixed order; here they
 * come slot by slot (hash order), and where a bucket meets a subtree, in
 * key order. CAIRN_EINVAL if the widths differ. */
CAIRN_API int cairn_hamt_diff(cairn_hamt *prev, cairn_hamt *cur, cairn_hamt_diff_fn fn,
			      void *payload);

#ifdef __cplusplus
}
#endif
#endif
