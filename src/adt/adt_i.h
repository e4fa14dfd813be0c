/* adt_i.h: what the files of the adt part share (not public): a strict
 * reader and writer for the few CBOR shapes AMT and HAMT nodes are made of. */
#ifndef CAIRN_ADT_I_H
#define CAIRN_ADT_I_H

#include "cairn/adt.h"

/* The longest value (one CBOR item) a node may hold. Filecoin's largest are
 * a few KiB; a block over a few MiB would not travel between peers anyway. */
#define ADT_MAX_VALUE (16u << 20)
/* cbor-gen's bound on the links, values and pointers arrays of one node. */
#define ADT_MAX_ARRAY 8192

enum { ADT_MAJ_UINT = 0, ADT_MAJ_BYTES = 2, ADT_MAJ_ARRAY = 4, ADT_MAJ_TAG = 6 };

/* A cursor over one block. Errors are CAIRN_ECORRUPT, "at byte N: ...",
 * which the caller prefixes with the node's name. */
typedef struct adt_rd {
	const uint8_t *p;
	size_t len, off;
} adt_rd;

/* A head that must be `major`, in its shortest form (as cbor-gen requires:
 * "cbor input was not canonical"), not of indefinite length; `what` names
 * the field in the message.
 * For byte strings and arrays the length is checked against what remains
 * (each array item takes at least one byte). */
int cairn_adt__expect(adt_rd *r, unsigned major, uint64_t *arg, const char *what);
/* Skips one well-formed CBOR item: the shape of an opaque value, which is
 * then kept as bytes. Floats of any width and the simple values false,
 * true, null and undefined are accepted, as cbor-gen's Deferred does;
 * nesting is bounded by CAIRN_IPLD_MAX_DEPTH. */
int cairn_adt__skip(adt_rd *r);
/* A link: tag 42 around a byte string of 0x00 and a binary CID. */
int cairn_adt__link(adt_rd *r, cairn_cid *cid);
/* CAIRN_EINVAL unless p[0..len) is exactly one CBOR item (for set). */
int cairn_adt__check_value(const uint8_t *p, size_t len, const char *what);

void cairn_adt__put_head(cairn_buf *b, unsigned major, uint64_t arg);
void cairn_adt__put_link(cairn_buf *b, const cairn_cid *cid);

/* Reads a node's block, with "<what> <cid>: " in front of any failure. */
int cairn_adt__get(cairn_store *s, cairn_buf *out, const cairn_cid *cid, const char *what);
/* Hashes `b` into `cid_out` (dag-cbor, `mh_code`) and puts it. */
int cairn_adt__put(cairn_store *s, cairn_cid *cid_out, uint64_t mh_code, const cairn_buf *b,
		   const char *what);
/* Checks a multihash code for node CIDs (one cairn can compute). */
int cairn_adt__check_mh(uint64_t mh_code, const char *what);

/* Gives the current failure another code (CAIRN_EINVAL: bad bytes from the
 * caller; CAIRN_ECORRUPT: bad bytes in a node) with `prefix` in front,
 * keeping the message. */
int cairn_adt__recode(int code, const char *prefix);

/* Orders keys as Go's bytes.Compare. */
static inline int cairn_adt__key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

#endif
