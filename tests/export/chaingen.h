/* chaingen.h: a generator of Filecoin-shaped chains for the ranged export's
 * tests and benchmark: real header layout, legacy message and receipt AMTs,
 * state trees of HAMTs and AMTs that share most structure between epochs. */
#ifndef CAIRN_TESTS_CHAINGEN_H
#define CAIRN_TESTS_CHAINGEN_H

#include "cairn.h"

#define CHAINGEN_MAX_BLOCKS 8

typedef struct chaingen_options {
	uint64_t seed;
	int64_t epochs;          /* heights 0 .. epochs - 1; the last is never null */
	unsigned max_blocks;     /* blocks per tipset: 1 .. max (CHAINGEN_MAX_BLOCKS) */
	unsigned null_one_in;    /* about 1 epoch in N is a null round; 0: none */
	unsigned accounts;       /* account actors (at least 2) */
	unsigned miners;         /* miner actors, each with a sectors AMT (at least 1) */
	unsigned max_messages;   /* per block: 0 .. max */
	unsigned events_one_in;  /* about 1 receipt in N has an events AMT; 0: none */
} chaingen_options;
#define CHAINGEN_OPTIONS_INIT {1, 100, 3, 10, 48, 4, 4, 8}

typedef struct chaingen_result {
	cairn_cid head[CHAINGEN_MAX_BLOCKS]; /* the head tipset, in ticket order */
	size_t nhead;
	int64_t height;          /* the head's */
	uint64_t tipsets, headers, messages, nulls;
} chaingen_result;

/* Generates a chain from genesis into `store` (puts only, and gets of the
 * nodes its AMTs and HAMT dropped). 0 or a store's error. */
int chaingen_run(chaingen_result *out, cairn_store *store, const chaingen_options *opts);

/* ---------------------------------------------- pieces, for hand-built chains */

/* Hashes b (blake2b-256, or sha2-256 when `sha256`) and puts it. */
int chaingen_put(cairn_cid *out, cairn_store *store, uint64_t codec, bool sha256,
		 const cairn_buf *b);

typedef struct chaingen_header {
	const cairn_cid *parents;
	size_t nparents;
	int64_t height;
	cairn_cid state_root, receipts, messages;
	uint64_t miner;          /* ID address */
	uint64_t timestamp;
	uint64_t seed;           /* for the ticket, proofs and signatures */
} chaingen_header;

/* A 16-field BlockHeader; `ticket_key` (may be NULL) gets blake2b-256 of
 * its ticket's VRF proof, the tipset sort key (32 bytes). */
int chaingen_put_header(cairn_cid *out, uint8_t *ticket_key, cairn_store *store,
			const chaingen_header *h);
/* A TxMeta [bls AMT root, secpk AMT root] of legacy AMTs of these links. */
int chaingen_put_txmeta(cairn_cid *out, cairn_store *store, const cairn_cid *bls, size_t nbls,
			const cairn_cid *secp, size_t nsecp);
/* A legacy AMT of n pre-encoded CBOR values concatenated in vals. */
int chaingen_put_legacy_amt(cairn_cid *out, cairn_store *store, const uint8_t *vals, size_t len);

void chaingen_put_head(cairn_buf *b, unsigned major, uint64_t arg);
void chaingen_put_link(cairn_buf *b, const cairn_cid *cid);
void chaingen_put_bytes(cairn_buf *b, const uint8_t *p, size_t n);

#endif
