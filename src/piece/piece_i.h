/* piece_i.h: what the files of the piece part share (not public): hashing
 * many 64-byte nodes at once, the zero-subtree table, quad-level fr32. */
#ifndef CAIRN_PIECE_I_H
#define CAIRN_PIECE_I_H

#include "cairn/piece.h"

/* Tree levels: a leaf is level 0, a padded size of 2^63 is level 58. */
#define CAIRN_PIECE__MAX_LEVEL 58

/* out[i] = SHA-256(in[64 i .. 64 i + 64)) with byte 31 & 0x3f, for n nodes
 * (out has 32 n bytes). `out` may equal `in` (the tree is reduced in
 * place): every implementation reads a node's input before writing any
 * output at or past it. Goes to the backend chosen once per process. */
void cairn_piece__hash_nodes(uint8_t *out, const uint8_t *in, size_t n);

/* Reduces `leaves` nodes (a power of two, at least 1) at p, in place, to
 * their root at p[0..32): the widest backend for the wide levels, then
 * cairn_piece__hash_nodes. */
void cairn_piece__reduce(uint8_t *p, size_t leaves);

typedef void (*cairn_piece__hash_fn)(uint8_t *out, const uint8_t *in, size_t n);
/* Reduces `leaves` (a power of two, at least 32) nodes at p in place until
 * 16 are left, written back as ordinary nodes at p. */
typedef void (*cairn_piece__reduce_fn)(uint8_t *p, size_t leaves);

/* The backends. SHA-NI and AVX-512 are NULL when not compiled in; call
 * them only when their _usable() says the CPU (and OS) has them. */
void cairn_piece__hash_nodes_openssl(uint8_t *out, const uint8_t *in, size_t n);
extern const cairn_piece__hash_fn cairn_piece__hash_nodes_shani;
bool cairn_piece__shani_usable(void);
extern const cairn_piece__reduce_fn cairn_piece__reduce_avx512;
bool cairn_piece__avx512_usable(void);

typedef enum {
	/* The best the machine has, less what CAIRN_NO_SHANI=1 (OpenSSL only)
	 * or CAIRN_NO_AVX512=1 (no AVX-512) turn off. */
	CAIRN_PIECE__SHA_AUTO = 0,
	CAIRN_PIECE__SHA_OPENSSL,  /* OpenSSL for every node */
	CAIRN_PIECE__SHA_SHANI,    /* SHA-NI, four nodes at a time */
	CAIRN_PIECE__SHA_AVX512,   /* AVX-512 for wide levels, SHA-NI (or OpenSSL) for the rest */
} cairn_piece__sha_backend;

/* Test hook: selects a backend for every hash from now on (one the CPU
 * lacks falls back to the next best: AVX512 -> SHANI -> OPENSSL). Not
 * thread-safe: call while nothing hashes. Returns the backend now in use. */
cairn_piece__sha_backend cairn_piece__sha_select(cairn_piece__sha_backend b);
/* The backend in use (choosing it on first call). */
cairn_piece__sha_backend cairn_piece__sha_current(void);

/* The roots of all-zero subtrees: [0] is a zero leaf, [i] = H([i-1]||[i-1]).
 * Computed once, then read-only. */
const uint8_t (*cairn_piece__zero_table(void))[32];

/* One quad: 127 bytes -> 128, and back. Pad reads all of `in` before it
 * writes, so out == in (and out == in - k for backward passes) is safe;
 * unpad the same. Unpad returns the index (0..3) of the first node with
 * top bits set, or -1. */
void cairn_piece__fr32_pad_quad(uint8_t out[128], const uint8_t in[127]);
int cairn_piece__fr32_unpad_quad(uint8_t out[127], const uint8_t in[128]);

#endif
