/* fr32.c: fr32 padding (127 bytes -> four 254-bit nodes in 128 bytes) and
 * unpadding, one quad at a time on 64-bit words, whole buffers and streams.
 *
 * Bit layout: the 127 input bytes are one little-endian 1016-bit number;
 * node k (k = 0..3) holds its bits [254 k, 254 k + 254) as a little-endian
 * 256-bit number whose top two bits are zero. Node k starts at bit 254 k,
 * that is in 64-bit word 4 k - 1 at bit 64 - 2 k for k > 0 (bits 62, 60, 58),
 * so each node word is two input words joined by one shift: no bit loops.
 * This equals Lotus's per-byte shifts by 2, 4 and 6 (fr32/fr32.go).
 */
#include <string.h>

#include "piece_i.h"

#define TOP2 UINT64_C(0x3fffffffffffffff) /* a node's last word without its top bits */

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline void store64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	memcpy(p, &v, 8);
}

/* Spelled out word by word rather than looped over arrays: gcc -O2 keeps
 * such arrays in memory, which made padding six times slower. */
#define L(i) uint64_t w##i = load64(in + 8 * (i))
/* Output word from input words lo and lo + 1, shifted by r. */
#define J(lo, hi, r) (((lo) >> (r)) | ((hi) << (64 - (r))))

void cairn_piece__fr32_pad_quad(uint8_t out[128], const uint8_t in[127])
{
	/* All loads first, so that out may overlap in. Word 15 has 7 bytes:
	 * read bytes 119..126 and drop byte 119. */
	L(0); L(1); L(2); L(3); L(4); L(5); L(6); L(7);
	L(8); L(9); L(10); L(11); L(12); L(13); L(14);
	uint64_t w15 = load64(in + 119) >> 8;

	/* Node 0: bits 0..253. */
	store64(out + 0, w0);
	store64(out + 8, w1);
	store64(out + 16, w2);
	store64(out + 24, w3 & TOP2);
	/* Node 1: from bit 254 = word 3 bit 62. */
	store64(out + 32, J(w3, w4, 62));
	store64(out + 40, J(w4, w5, 62));
	store64(out + 48, J(w5, w6, 62));
	store64(out + 56, J(w6, w7, 62) & TOP2);
	/* Node 2: from bit 508 = word 7 bit 60. */
	store64(out + 64, J(w7, w8, 60));
	store64(out + 72, J(w8, w9, 60));
	store64(out + 80, J(w9, w10, 60));
	store64(out + 88, J(w10, w11, 60) & TOP2);
	/* Node 3: from bit 762 = word 11 bit 58. */
	store64(out + 96, J(w11, w12, 58));
	store64(out + 104, J(w12, w13, 58));
	store64(out + 112, J(w13, w14, 58));
	store64(out + 120, J(w14, w15, 58) & TOP2);
}

int cairn_piece__fr32_unpad_quad(uint8_t out[127], const uint8_t in[128])
{
	uint64_t o15;
	uint8_t last[8];

	L(0); L(1); L(2); L(3); L(4); L(5); L(6); L(7);
	L(8); L(9); L(10); L(11); L(12); L(13); L(14); L(15);
	if ((w3 | w7 | w11 | w15) >> 62)
		return w3 >> 62 ? 0 : w7 >> 62 ? 1 : w11 >> 62 ? 2 : 3;
	/* Node k goes back to bit 254 k: its words shift up by 2k bits, the
	 * overflow of each into the next output word. */
	store64(out + 0, w0);
	store64(out + 8, w1);
	store64(out + 16, w2);
	store64(out + 24, w3 | w4 << 62);
	store64(out + 32, w4 >> 2 | w5 << 62);
	store64(out + 40, w5 >> 2 | w6 << 62);
	store64(out + 48, w6 >> 2 | w7 << 62);
	store64(out + 56, w7 >> 2 | w8 << 60);
	store64(out + 64, w8 >> 4 | w9 << 60);
	store64(out + 72, w9 >> 4 | w10 << 60);
	store64(out + 80, w10 >> 4 | w11 << 60);
	store64(out + 88, w11 >> 4 | w12 << 58);
	store64(out + 96, w12 >> 6 | w13 << 58);
	store64(out + 104, w13 >> 6 | w14 << 58);
	store64(out + 112, w14 >> 6 | w15 << 58);
	o15 = w15 >> 6;
	store64(last, o15);
	memcpy(out + 120, last, 7);
	return -1;
}

#undef L
#undef J

int cairn_fr32_pad(uint8_t *out, const uint8_t *in, size_t n)
{
	size_t q;

	if (n % CAIRN_FR32_IN_QUAD)
		return cairn_error_set(CAIRN_EINVAL, "fr32 pad: %zu bytes is not a multiple of 127", n);
	/* Backwards: quad q's output [128 q, +128) only covers input of quads
	 * >= q, already consumed, so out == in works. */
	for (q = n / CAIRN_FR32_IN_QUAD; q-- > 0;)
		cairn_piece__fr32_pad_quad(out + q * CAIRN_FR32_OUT_QUAD, in + q * CAIRN_FR32_IN_QUAD);
	return 0;
}

int cairn_fr32_unpad(uint8_t *out, const uint8_t *in, size_t n)
{
	size_t q, nq;

	if (n % CAIRN_FR32_OUT_QUAD)
		return cairn_error_set(CAIRN_EINVAL, "fr32 unpad: %zu bytes is not a multiple of 128", n);
	/* Forwards: quad q's output [127 q, +127) ends before its input does. */
	nq = n / CAIRN_FR32_OUT_QUAD;
	for (q = 0; q < nq; q++) {
		int bad = cairn_piece__fr32_unpad_quad(out + q * CAIRN_FR32_IN_QUAD,
						       in + q * CAIRN_FR32_OUT_QUAD);
		if (bad >= 0)
			return cairn_error_set(CAIRN_ECORRUPT,
				"fr32 unpad: at byte %zu: node has its top two bits set (not fr32-padded data)",
				q * CAIRN_FR32_OUT_QUAD + (size_t)bad * 32 + 31);
	}
	return 0;
}

/* -------------------------------------------------------------- streams */

/* Output is gathered into this many quads before each call of the sink. */
#define STREAM_QUADS 2048

struct cairn_fr32_stream {
	cairn_fr32_dir dir;
	cairn_fr32_sink sink;
	void *payload;
	int err;            /* sticky */
	bool finished;
	size_t in_quad;     /* 127 (pad) or 128 (unpad) */
	size_t out_quad;
	uint8_t stash[CAIRN_FR32_OUT_QUAD]; /* a partial input quad */
	size_t stash_len;
	uint64_t in_total;  /* input bytes consumed, for error offsets */
	uint64_t out_total;
	size_t out_len;
	uint8_t out[STREAM_QUADS * CAIRN_FR32_OUT_QUAD];
};

int cairn_fr32_stream_new(cairn_fr32_stream **out, cairn_fr32_dir dir, cairn_fr32_sink sink,
			  void *payload)
{
	cairn_fr32_stream *s;

	*out = NULL;
	if (!sink || (dir != CAIRN_FR32_PAD && dir != CAIRN_FR32_UNPAD))
		return cairn_error_set(CAIRN_EINVAL, "fr32 stream: a sink and a direction are required");
	if (!(s = cairn_calloc(1, sizeof(*s))))
		return CAIRN_ENOMEM;
	s->dir = dir;
	s->sink = sink;
	s->payload = payload;
	s->in_quad = dir == CAIRN_FR32_PAD ? CAIRN_FR32_IN_QUAD : CAIRN_FR32_OUT_QUAD;
	s->out_quad = dir == CAIRN_FR32_PAD ? CAIRN_FR32_OUT_QUAD : CAIRN_FR32_IN_QUAD;
	*out = s;
	return 0;
}

static int flush(cairn_fr32_stream *s)
{
	int rc;

	if (!s->out_len)
		return 0;
	rc = s->sink(s->payload, s->out, s->out_len);
	if (rc < 0)
		return s->err = rc;
	s->out_total += s->out_len;
	s->out_len = 0;
	return 0;
}

/* Converts one whole input quad into the output buffer; `at` is its stream
 * offset for messages. */
static int one_quad(cairn_fr32_stream *s, const uint8_t *q)
{
	int rc;

	if (s->out_len + s->out_quad > sizeof(s->out) && (rc = flush(s)))
		return rc;
	if (s->dir == CAIRN_FR32_PAD) {
		cairn_piece__fr32_pad_quad(s->out + s->out_len, q);
	} else {
		int bad = cairn_piece__fr32_unpad_quad(s->out + s->out_len, q);

		if (bad >= 0)
			return s->err = cairn_error_set(CAIRN_ECORRUPT,
				"fr32 unpad: at byte %llu: node has its top two bits set (not fr32-padded data)",
				(unsigned long long)(s->in_total + (uint64_t)bad * 32 + 31));
	}
	s->out_len += s->out_quad;
	s->in_total += s->in_quad;
	return 0;
}

static int stream_refuses(const cairn_fr32_stream *s)
{
	if (s->err) {
		cairn_error_set(s->err, "fr32 stream: refused after an earlier error");
		return s->err;
	}
	if (s->finished)
		return cairn_error_set(CAIRN_EINVAL, "fr32 stream: already finished");
	return 0;
}

int cairn_fr32_stream_write(cairn_fr32_stream *s, const void *p, size_t n)
{
	const uint8_t *b = p;
	int rc;

	if ((rc = stream_refuses(s)))
		return rc;
	if (s->stash_len) {
		size_t k = s->in_quad - s->stash_len;

		if (k > n)
			k = n;
		memcpy(s->stash + s->stash_len, b, k);
		s->stash_len += k;
		b += k;
		n -= k;
		if (s->stash_len < s->in_quad)
			return 0;
		if ((rc = one_quad(s, s->stash)))
			return rc;
		s->stash_len = 0;
	}
	while (n >= s->in_quad) {
		if ((rc = one_quad(s, b)))
			return rc;
		b += s->in_quad;
		n -= s->in_quad;
	}
	if (n) {
		memcpy(s->stash, b, n);
		s->stash_len = n;
	}
	return 0;
}

int cairn_fr32_stream_finish(cairn_fr32_stream *s, uint64_t *out_total)
{
	int rc;

	if ((rc = stream_refuses(s)))
		return rc;
	s->finished = true;
	if (s->stash_len) {
		if (s->dir == CAIRN_FR32_UNPAD)
			return s->err = cairn_error_set(CAIRN_ECORRUPT,
				"fr32 unpad: at byte %llu: truncated: %zu bytes after the last whole 128-byte quad",
				(unsigned long long)s->in_total, s->stash_len);
		memset(s->stash + s->stash_len, 0, s->in_quad - s->stash_len);
		if ((rc = one_quad(s, s->stash)))
			return rc;
		s->stash_len = 0;
	}
	if ((rc = flush(s)))
		return rc;
	if (out_total)
		*out_total = s->out_total;
	return 0;
}

void cairn_fr32_stream_free(cairn_fr32_stream *s)
{
	cairn_free(s);
}
