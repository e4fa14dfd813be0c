/* cairn/piece.h: Filecoin pieces: fr32 padding, piece commitments (CommP),
 * piece CIDs v1 and v2, and the unsealed-sector commitment CommD. */
#ifndef CAIRN_PIECE_H
#define CAIRN_PIECE_H

#include "cairn/ipld.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ fr32
 *
 * fr32 padding makes bytes fit the BLS12-381 scalar field: 127 input bytes,
 * read as a little-endian bit stream, become four 32-byte nodes of 254 data
 * bits each, with the top two bits of every node zero (128 bytes out).
 * Unpadding drops those bits again, and refuses a node whose top bits are
 * set: such bytes never came from padding.
 */
#define CAIRN_FR32_IN_QUAD 127   /* payload bytes per quad */
#define CAIRN_FR32_OUT_QUAD 128  /* padded bytes per quad (four nodes) */

/* Pads n bytes (a multiple of 127) from `in` into `out`, which has room for
 * n / 127 * 128 bytes. `out` may be `in` itself (the buffer must then hold
 * the padded size); no other overlap is allowed. Errors: CAIRN_EINVAL when
 * n is not a multiple of 127. Thread-safe (no shared state). */
CAIRN_API int cairn_fr32_pad(uint8_t *out, const uint8_t *in, size_t n);

/* Unpads n bytes (a multiple of 128) from `in` into `out` (n / 128 * 127
 * bytes). `out` may be `in` itself. Errors: CAIRN_EINVAL when n is not a
 * multiple of 128; CAIRN_ECORRUPT when a node has either of its top two
 * bits set, naming the offset (from `in`) of the byte holding them; `out`
 * then holds the quads before the bad one. Thread-safe. */
CAIRN_API int cairn_fr32_unpad(uint8_t *out, const uint8_t *in, size_t n);

/* A streaming pad or unpad: writes of any size in, whole output buffers out
 * through a sink, in order. Memory is fixed (about 256 KiB) whatever the
 * input. One stream is used by one thread at a time. */
typedef enum cairn_fr32_dir {
	CAIRN_FR32_PAD = 0,
	CAIRN_FR32_UNPAD = 1,
} cairn_fr32_dir;

/* Receives output: `p` (n bytes) is borrowed for the call only. A negative
 * return (a CAIRN_E* code, message set) stops the stream: the write or
 * finish that called it returns that code, and so does every call after. */
typedef int (*cairn_fr32_sink)(void *payload, const uint8_t *p, size_t n);

typedef struct cairn_fr32_stream cairn_fr32_stream;

/* Creates a stream; free it with cairn_fr32_stream_free. On failure *out is
 * NULL. Errors: CAIRN_ENOMEM, CAIRN_EINVAL (no sink, unknown direction). */
CAIRN_API int cairn_fr32_stream_new(cairn_fr32_stream **out, cairn_fr32_dir dir,
				    cairn_fr32_sink sink, void *payload);
/* Feeds n bytes. Errors: the sink's code; for an unpad stream
 * CAIRN_ECORRUPT naming the stream offset of the first byte with bad top
 * bits. After an error the stream refuses further work with the same code. */
CAIRN_API int cairn_fr32_stream_write(cairn_fr32_stream *s, const void *p, size_t n);
/* Ends the stream and flushes its output. A pad stream zero-fills the last
 * quad to 127 bytes first (as a piece's payload is zero-filled); an unpad
 * stream fails with CAIRN_ECORRUPT ("truncated") when bytes short of a whole
 * 128-byte quad are left. `out_total` (may be NULL) gets the bytes the sink
 * received in all. Nothing may be written after. */
CAIRN_API int cairn_fr32_stream_finish(cairn_fr32_stream *s, uint64_t *out_total);
/* Frees the stream; NULL is accepted. */
CAIRN_API void cairn_fr32_stream_free(cairn_fr32_stream *s);

/* ------------------------------------------------------------ piece info
 *
 * A piece is a payload, zero-filled to a multiple of 127 bytes, fr32-padded
 * and zero-filled again to a power of two (the padded piece size,
 * 128 * 2^k bytes). Its commitment, CommP, is the root of the binary Merkle
 * tree over its 32-byte nodes with node = SHA-256(left || right), top two
 * bits of the last byte cleared (sha2-256-trunc254-padded).
 *
 * Small payloads: every payload of 0 to 127 bytes makes a 128-byte piece
 * (height 2, padding 127 - size), as @web3-storage/data-segment computes;
 * go-fil-commp-hashhash refuses payloads under 65 bytes and go-fil-commcid
 * refuses payloads under 127 bytes, so a piece CID v2 for under 65 bytes is
 * one the Go tools will not parse (cairn parses it back).
 */
typedef struct cairn_piece_info {
	uint8_t commp[32];     /* the tree root */
	uint64_t payload_size; /* payload bytes before any padding */
	uint64_t padded_size;  /* 128 * 2^k: the piece's size in a sector */
	unsigned height;       /* log2(padded_size) - 5: the tree's height */
	uint64_t padding;      /* zero bytes added to the payload before fr32:
				* padded_size / 128 * 127 - payload_size */
} cairn_piece_info;

/* The largest payload cairn handles: the padded size must fit in 63 bits. */
#define CAIRN_PIECE_MAX_PAYLOAD ((UINT64_C(1) << 63) / 128 * 127)

/* Fills the size fields of `out` (payload_size, padded_size, height,
 * padding) for a payload of `payload_size` bytes; commp is left alone.
 * Errors: CAIRN_ETOOBIG over CAIRN_PIECE_MAX_PAYLOAD. Thread-safe. */
CAIRN_API int cairn_piece_sizes(cairn_piece_info *out, uint64_t payload_size);

/* -------------------------------------------------------------- CommP
 *
 * A streaming hasher: write the payload in pieces of any size, then finish.
 * Memory is a stack of one pending node per tree level and fixed batch
 * buffers (1 MiB per batch slot; 2 * 2 * nthreads slots when threaded),
 * never proportional to the input. Zero fill is never hashed: the roots of
 * zero subtrees come from a table.
 *
 * SHA-256 runs sixteen nodes at a time on AVX-512 and four at a time on the
 * SHA extensions (x86-64 SHA-NI) where the CPU has them, else through
 * OpenSSL. For tests and comparisons, set before the first hash:
 * CAIRN_NO_SHANI=1 forces OpenSSL for every node, CAIRN_NO_AVX512=1 leaves
 * AVX-512 out. Inputs of several MiB are hashed on a thread pool the
 * hasher starts on first need, while the caller goes on writing the next
 * batch.
 *
 * A hasher is used by one thread at a time; different hashers are
 * independent.
 */
typedef struct cairn_commp cairn_commp;

/* Creates a hasher that hashes on `nthreads` threads (0: one per online
 * core; 1: only in the caller's thread). Free it with cairn_commp_free.
 * Errors: CAIRN_ENOMEM, CAIRN_EINVAL (over 1024 threads). */
CAIRN_API int cairn_commp_new(cairn_commp **out, unsigned nthreads);
/* Adds n payload bytes. Errors: CAIRN_ETOOBIG past CAIRN_PIECE_MAX_PAYLOAD,
 * CAIRN_EINVAL after finish, or the sticky error of a failed file read
 * (cairn_commp_write_file). */
CAIRN_API int cairn_commp_write(cairn_commp *c, const void *p, size_t n);
/* Writing without a copy: the hasher lends the free space of its current
 * batch buffer (at least 1 byte, at most about 1 MiB) in *buf_out and
 * *len_out; put up to that many payload bytes there (read() straight into
 * it) and call cairn_commp_commit with how many. The buffer is the
 * hasher's, valid until the next call on it. Errors: as cairn_commp_write;
 * commit also CAIRN_EINVAL for more bytes than were lent. On error
 * *buf_out is NULL. */
CAIRN_API int cairn_commp_buffer(uint8_t **buf_out, size_t *len_out, cairn_commp *c);
CAIRN_API int cairn_commp_commit(cairn_commp *c, size_t n);
/* Adds `len` bytes of the file `fd` from byte `off` as payload, read with
 * pread by the hashing threads themselves: each reads the 1 MiB it hashes,
 * so reading is spread over the cores and lands in their caches (the
 * fastest way to hash a file). The descriptor's offset does not move.
 * `fd` must stay open and `what` (the file's name in messages; may be
 * NULL) valid until finish. Errors: CAIRN_EIO (a read failed),
 * CAIRN_ECORRUPT (the file ends before off + len), as cairn_commp_write
 * otherwise. A read that fails on a hashing thread is reported by this
 * call or a later one (write, finish); the hasher then refuses all work. */
CAIRN_API int cairn_commp_write_file(cairn_commp *c, int fd, uint64_t off, uint64_t len,
				     const char *what);
/* Completes the tree and fills `out` (commp and sizes). The hasher can then
 * only be freed (CAIRN_EINVAL if finish is called twice). Errors: also the
 * sticky error of a failed file read. */
CAIRN_API int cairn_commp_finish(cairn_piece_info *out, cairn_commp *c);
/* Frees the hasher and stops its threads; NULL is accepted. */
CAIRN_API void cairn_commp_free(cairn_commp *c);
/* One call for a payload in memory: new (with `nthreads` as there), write,
 * finish, free. Errors: as those. */
CAIRN_API int cairn_commp_sum(cairn_piece_info *out, const void *p, size_t n,
			      unsigned nthreads);

/* The CommP of a piece of zeros of `padded_size` bytes (a power of two,
 * 32 up to 2^63): the table of zero subtrees. Errors: CAIRN_EINVAL for any
 * other size. Thread-safe. */
CAIRN_API int cairn_piece_zero_commp(uint8_t out[32], uint64_t padded_size);

/* ----------------------------------------------------------- piece CIDs
 *
 * v1: CIDv1, codec fil-commitment-unsealed (0xf101), multihash
 *     sha2-256-trunc254-padded (0x1012), digest = CommP ("baga6ea4seaq...").
 *     It does not carry the size.
 * v2 (FRC-0069): CIDv1, codec raw (0x55), multihash
 *     fr32-sha256-trunc254-padbintree (0x1011), digest =
 *     uvarint(padding) || height (1 byte) || CommP ("bafkzcib...").
 */
enum {
	CAIRN_MH_FR32_SHA256_TRUNC254_PADBINTREE = 0x1011,
};

/* Builds the v1 piece CID of a CommP. Cannot fail for a 32-byte commp
 * (returns 0). Thread-safe. */
CAIRN_API int cairn_piece_cid_v1(cairn_cid *out, const uint8_t commp[32]);
/* Builds the v2 piece CID from info->commp, info->height and info->padding
 * (the other fields are not read; cairn_piece_sizes fills these).
 * Errors: CAIRN_EINVAL when the height is outside 2..58 or the padding is
 * more than the tree holds. Thread-safe. */
CAIRN_API int cairn_piece_cid_v2(cairn_cid *out, const cairn_piece_info *info);
/* Reads a piece CID back. A v2 fills every field of `out`; a v1 fills
 * commp and sets the sizes to 0 (a v1 does not carry them).
 * Errors: CAIRN_EINVAL when `cid` is not a piece CID (another codec or
 * hash); CAIRN_ECORRUPT for a malformed digest: a wrong length, a
 * non-minimal padding varint, a height under 2, or a padding of half the
 * tree or more (a smaller tree would hold the payload; for height 2 any
 * padding up to 127 is accepted, as data-segment writes for payloads under
 * 65 bytes); CAIRN_EUNSUPPORTED for a height over 58 (sizes past 2^63).
 * Thread-safe. */
CAIRN_API int cairn_piece_cid_decode(cairn_piece_info *out, const cairn_cid *cid);

/* --------------------------------------------------------------- CommD
 *
 * The commitment of an unsealed sector from its pieces, in sector order
 * (as Lotus's GenerateUnsealedCID, go-commp-utils PieceAggregateCommP and
 * rust-fil-proofs compute it): each piece is aligned to its own size with
 * zero pieces in front, and the sector is filled with zero pieces to
 * `sector_size`. Only `commp` and `padded_size` of each piece are read;
 * each padded_size must be a power of two from 128 to sector_size.
 * n = 0 gives the empty sector's CommD.
 * Errors: CAIRN_EINVAL for a sector size that is not a power of two from
 * 128 to 2^63, a bad piece size (naming the piece's index), or pieces that
 * do not fit the sector. Thread-safe.
 */
CAIRN_API int cairn_piece_commd(uint8_t out[32], uint64_t sector_size,
				const cairn_piece_info *pieces, size_t n);

#ifdef __cplusplus
}
#endif

#endif
