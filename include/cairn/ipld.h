/* cairn/ipld.h: multihashes, CIDs, the IPLD data model and the codecs
 * DAG-CBOR, DAG-JSON, DAG-PB and raw, with link iteration over any block. */
#ifndef CAIRN_IPLD_H
#define CAIRN_IPLD_H

#include <string.h>

#include "cairn/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ multicodec */
enum {
	CAIRN_CODEC_IDENTITY = 0x00,
	CAIRN_CODEC_CBOR = 0x51,
	CAIRN_CODEC_RAW = 0x55,
	CAIRN_CODEC_DAG_PB = 0x70,
	CAIRN_CODEC_DAG_CBOR = 0x71,
	CAIRN_CODEC_LIBP2P_KEY = 0x72,
	CAIRN_CODEC_DAG_JSON = 0x0129,
	CAIRN_CODEC_JSON = 0x0200,
	CAIRN_CODEC_FIL_COMMITMENT_UNSEALED = 0xf101,
	CAIRN_CODEC_FIL_COMMITMENT_SEALED = 0xf102,
};

/* The multicodec table name ("dag-cbor"), or NULL if cairn does not know it. */
CAIRN_API const char *cairn_codec_name(uint64_t code);
/* A name from the table, or a number ("0x71", "113"); CAIRN_EINVAL otherwise. */
CAIRN_API int cairn_codec_from_name(uint64_t *out, const char *name);

/* ------------------------------------------------------------ multihash */
enum {
	CAIRN_MH_IDENTITY = 0x00,
	CAIRN_MH_SHA2_256 = 0x12,
	CAIRN_MH_BLAKE2B_256 = 0xb220,
	/* Filecoin piece commitments (computed by the piece part, not here). */
	CAIRN_MH_SHA2_256_TRUNC254_PADDED = 0x1012,
};

/* Identity "digests" longer than this are refused, as boxo's verifcid does:
 * a CID must stay small enough to sit in an index. */
#define CAIRN_MH_IDENTITY_MAX 128
#define CAIRN_MH_DIGEST_MAX CAIRN_MH_IDENTITY_MAX

CAIRN_API const char *cairn_multihash_name(uint64_t code);
CAIRN_API int cairn_multihash_from_name(uint64_t *out, const char *name);
/* Hashes p[0..n) with `code` into `digest` (room for CAIRN_MH_DIGEST_MAX)
 * and returns the digest length, or CAIRN_EUNSUPPORTED for a hash cairn
 * cannot compute, CAIRN_ETOOBIG for an identity input over the limit. */
CAIRN_API int cairn_multihash_sum(uint8_t *digest, uint64_t code,
				  const void *p, size_t n);
/* Parses a multihash (code varint, length varint, digest) at the start of
 * p[0..len). The digest is borrowed from p. */
CAIRN_API int cairn_multihash_decode(uint64_t *code_out, const uint8_t **digest_out,
				     size_t *digest_len_out, size_t *used_out,
				     const uint8_t *p, size_t len);

/* ------------------------------------------------------------------ CID
 *
 * A CID is a value: a fixed-size struct holding its binary form, so it can
 * be copied, stored in arrays and compared without allocation.
 *   v0: the binary form is the multihash (sha2-256, 32 bytes), codec dag-pb.
 *   v1: varint(1) varint(codec) multihash.
 */
#define CAIRN_CID_MAX_BYTES 160
/* Room for the longest string form (base16 of the longest CID, plus NUL). */
#define CAIRN_CID_MAX_STRING (2 * CAIRN_CID_MAX_BYTES + 2)

typedef struct cairn_cid {
	uint64_t codec;
	uint64_t mh_code;
	uint16_t len;        /* bytes used in `bytes` */
	uint8_t version;     /* 0 or 1 */
	uint8_t mh_off;      /* where the multihash starts in `bytes` */
	uint8_t digest_off;  /* where the digest starts in `bytes` */
	uint8_t digest_len;
	uint8_t bytes[CAIRN_CID_MAX_BYTES];
} cairn_cid;

/* Parses a binary CID at the start of p[0..len); `used_out` gets its length
 * (pass NULL to require that it fills p exactly). CAIRN_ECORRUPT with the
 * byte offset for malformed input. */
CAIRN_API int cairn_cid_decode(cairn_cid *out, size_t *used_out,
			       const uint8_t *p, size_t len);
/* Parses a CID string: base58btc "Qm…" for v0; for v1 any multibase in
 * cairn_multibase_decode. */
CAIRN_API int cairn_cid_parse(cairn_cid *out, const char *s, size_t n);
/* Writes the string form into `out` (CAIRN_CID_MAX_STRING bytes) and returns
 * its length. v0 is always base58btc without a prefix; CAIRN_EINVAL if
 * another base is asked for a v0 CID. */
CAIRN_API int cairn_cid_format(char *out, const cairn_cid *cid, cairn_multibase base);
/* The default string form: base58btc for v0, base32 for v1. */
CAIRN_API int cairn_cid_to_string(char *out, const cairn_cid *cid);
/* Builds a CID from a multihash given as code and digest. v0 requires
 * dag-pb and a 32-byte sha2-256 digest. */
CAIRN_API int cairn_cid_from_digest(cairn_cid *out, unsigned version, uint64_t codec,
				    uint64_t mh_code, const uint8_t *digest,
				    size_t digest_len);
/* Hashes `data` and builds the CID. */
CAIRN_API int cairn_cid_compute(cairn_cid *out, unsigned version, uint64_t codec,
				uint64_t mh_code, const void *data, size_t n);
/* CAIRN_EMISMATCH when data does not hash to `cid`; CAIRN_EUNSUPPORTED
 * when cairn cannot compute its hash. */
CAIRN_API int cairn_cid_verify(const cairn_cid *cid, const void *data, size_t n);
/* The same multihash and codec as another version. */
CAIRN_API int cairn_cid_convert(cairn_cid *out, const cairn_cid *in, unsigned version);
/* Copies only the used part of a CID: most of the struct is room, and
 * copying all of it cost a link scan a tenth of its time. The rest of
 * `dst->bytes` is left as it was. */
static inline void cairn_cid_copy(cairn_cid *dst, const cairn_cid *src)
{
	memcpy(dst, src, offsetof(cairn_cid, bytes) + src->len);
}
/* Orders by binary form (as go-cid's KeyString does). */
CAIRN_API int cairn_cid_cmp(const cairn_cid *a, const cairn_cid *b);
CAIRN_API bool cairn_cid_equal(const cairn_cid *a, const cairn_cid *b);
/* The same multihash (whatever the version and codec): how blockstores
 * match blocks, so a CIDv0 finds the CIDv1 block. */
CAIRN_API bool cairn_cid_multihash_equal(const cairn_cid *a, const cairn_cid *b);
/* A well-mixed 64-bit hash for hash tables, taken from the multihash only,
 * so it serves both cairn_cid_equal and cairn_cid_multihash_equal. */
CAIRN_API uint64_t cairn_cid_hash(const cairn_cid *cid);

/* ------------------------------------------------------------- CID sets
 *
 * A set of CIDs (open addressing, no allocation per member) for "each block
 * once": walks, writers that skip duplicates, filters. With `by_multihash`
 * two CIDs are the same member when their multihashes are equal, as
 * blockstores match blocks; otherwise the whole CID must be equal.
 * Zero-initialize (or CAIRN_CID_SET_INIT), free with cairn_cid_set_free.
 */
typedef struct cairn_cid_set {
	cairn_cid *slots; /* a slot with len 0 is free */
	size_t cap, len;
	bool by_multihash;
} cairn_cid_set;
#define CAIRN_CID_SET_INIT {NULL, 0, 0, false}

/* Adds `cid`; `added_out` (may be NULL) says whether it was new. */
CAIRN_API int cairn_cid_set_add(cairn_cid_set *set, const cairn_cid *cid, bool *added_out);
CAIRN_API bool cairn_cid_set_has(const cairn_cid_set *set, const cairn_cid *cid);
/* Frees the slots and leaves an empty set (keeping by_multihash). */
CAIRN_API void cairn_cid_set_free(cairn_cid_set *set);

/* ---------------------------------------------------------------- arena
 *
 * Decoded values are trees of nodes allocated from an arena and freed all
 * at once with it. Nothing in a tree is freed on its own.
 */
typedef struct cairn_arena cairn_arena;
CAIRN_API int cairn_arena_new(cairn_arena **out);
/* Aligned to 16 bytes; NULL (with CAIRN_ENOMEM set) on failure. */
CAIRN_API void *cairn_arena_alloc(cairn_arena *a, size_t n);
/* Frees every chunk but keeps the first, for reuse in a loop. */
CAIRN_API void cairn_arena_reset(cairn_arena *a);
CAIRN_API void cairn_arena_free(cairn_arena *a);

/* -------------------------------------------------------- the data model */
typedef enum cairn_kind {
	CAIRN_KIND_NULL = 0,
	CAIRN_KIND_BOOL,
	CAIRN_KIND_INT,
	CAIRN_KIND_FLOAT,
	CAIRN_KIND_STRING,
	CAIRN_KIND_BYTES,
	CAIRN_KIND_LIST,
	CAIRN_KIND_MAP,
	CAIRN_KIND_LINK,
} cairn_kind;

typedef struct cairn_node cairn_node;
typedef struct cairn_map_entry cairn_map_entry;

/* Integers cover CBOR's whole range, -2^64 .. 2^64-1:
 * the value is `neg ? -1 - mag : mag`. */
typedef struct cairn_int {
	uint64_t mag;
	bool neg;
} cairn_int;

struct cairn_node {
	cairn_kind kind;
	union {
		bool b;
		cairn_int i;
		double f;
		struct { const uint8_t *ptr; size_t len; } bytes; /* STRING (UTF-8) and BYTES */
		struct { cairn_node *items; size_t len; } list;
		struct { cairn_map_entry *entries; size_t len; } map;
		const cairn_cid *link;
	} v;
};

struct cairn_map_entry {
	const uint8_t *key; /* UTF-8, not NUL-terminated */
	size_t key_len;
	cairn_node value;
};

/* Looks up a map key; NULL when absent or when `map` is not a map. */
CAIRN_API const cairn_node *cairn_node_map_get(const cairn_node *map, const char *key);
CAIRN_API const char *cairn_kind_name(cairn_kind kind);
/* Deep equality of two values (floats compare by bits). */
CAIRN_API bool cairn_node_equal(const cairn_node *a, const cairn_node *b);

/* ------------------------------------------------------------- codecs
 *
 * Decoders are strict: they accept exactly the canonical form of their
 * codec and fail with CAIRN_ECORRUPT, naming the byte offset, on anything
 * else. Decoded trees borrow from `p` (strings and bytes point into it
 * where they can) and from the arena: both must outlive the tree.
 * Nesting is limited to CAIRN_IPLD_MAX_DEPTH (CAIRN_ETOOBIG past it).
 * Encoders append to `out` and refuse values the codec cannot represent
 * (CAIRN_EINVAL with a message).
 */
#define CAIRN_IPLD_MAX_DEPTH 1024

CAIRN_API int cairn_dagcbor_decode(cairn_node **out, cairn_arena *arena,
				   const uint8_t *p, size_t len);
CAIRN_API int cairn_dagcbor_encode(cairn_buf *out, const cairn_node *node);

CAIRN_API int cairn_dagjson_decode(cairn_node **out, cairn_arena *arena,
				   const uint8_t *p, size_t len);
/* Canonical DAG-JSON: no whitespace, map keys sorted by their bytes. */
CAIRN_API int cairn_dagjson_encode(cairn_buf *out, const cairn_node *node);
/* The same, indented by two spaces per level with a space after each colon
 * and a final newline: for people, not for hashing. */
CAIRN_API int cairn_dagjson_encode_pretty(cairn_buf *out, const cairn_node *node);

/* DAG-PB decodes to the data model form the spec gives:
 *   {"Data": bytes (if present), "Links": [{"Hash": link, "Name": string
 *   (if present), "Tsize": int (if present)}, ...]}
 * and encodes from it, refusing other shapes and unsorted links.
 * Like go-codec-dagpb, the decoder refuses Data before Links; like both
 * peers it reads protobuf varints longer than needed (such a block does not
 * re-encode to its own bytes). Tsize keeps all 64 bits. */
CAIRN_API int cairn_dagpb_decode(cairn_node **out, cairn_arena *arena,
				 const uint8_t *p, size_t len);
CAIRN_API int cairn_dagpb_encode(cairn_buf *out, const cairn_node *node);

/* The raw codec: a node of kind BYTES borrowing p. */
CAIRN_API int cairn_raw_decode(cairn_node **out, cairn_arena *arena,
			       const uint8_t *p, size_t len);

/* Decodes / encodes with the codec named by its multicodec code;
 * CAIRN_EUNSUPPORTED for any other codec. */
CAIRN_API int cairn_ipld_decode(cairn_node **out, cairn_arena *arena, uint64_t codec,
				const uint8_t *p, size_t len);
CAIRN_API int cairn_ipld_encode(cairn_buf *out, uint64_t codec, const cairn_node *node);

/* -------------------------------------------------------------- links
 *
 * Calls `fn` for each link in a block, in the order they appear, without
 * building a tree (DAG-CBOR and DAG-PB are scanned in place; raw has none).
 * A non-zero return from `fn` stops the walk and is returned. The block is
 * validated as it is scanned: CAIRN_ECORRUPT for malformed bytes.
 */
typedef int (*cairn_link_fn)(const cairn_cid *link, void *payload);
CAIRN_API int cairn_block_links(uint64_t codec, const uint8_t *p, size_t len,
				cairn_link_fn fn, void *payload);
/* As cairn_block_links, for a caller that decodes each CID itself, into
 * storage of its own (a walk's stack: decoded here and copied there, a
 * link cost a scan a tenth more): `fn` gets a link's binary CID, checked
 * only as far as the codec frames it. An error `fn` returns (but
 * CAIRN_ENOMEM) gets the link's place in the block prefixed to its
 * message. */
typedef int (*cairn_link_bytes_fn)(const uint8_t *cid, size_t len, void *payload);
CAIRN_API int cairn_block_link_bytes(uint64_t codec, const uint8_t *p, size_t len,
				     cairn_link_bytes_fn fn, void *payload);

#ifdef __cplusplus
}
#endif
#endif
