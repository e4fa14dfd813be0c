/* sha256_avx512.c: reducing a run of tree nodes with SHA-256 on AVX-512, 16
 * nodes per instruction, the nodes kept transposed between levels.
 *
 * Why: on this project's machines (Sapphire Rapids) sha256rnds2 issues once
 * per ~2 cycles, so SHA-NI tops out near 55 ns per node however many lanes
 * are interleaved, while sixteen 32-bit lanes of plain vector code (rotates
 * and three-input logic in one instruction each) cost about half that.
 *
 * Layout: a "group" is 16 nodes stored transposed, as 8 vectors of 16
 * words (word w of node i at vector w, lane i), host-endian words of the
 * big-endian hash: 512 bytes, the same room as the 16 nodes. Level 0 reads
 * ordinary 64-byte messages and transposes them (with a byte swap); each
 * further level takes the even lanes of two groups as the left halves and
 * the odd lanes as the right halves (two permutes per word), so nothing is
 * transposed again until the last group, which goes back to bytes. A
 * message's second block is the constant padding block, whose W + K is a
 * table. Groups are reduced in place: group g is written at 512 g after
 * groups 2g and 2g+1 (at 1024 g) have been read.
 */
#include "piece_i.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw")))

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t IV[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* W[t] + K[t] of the padding block of a 64-byte message. */
static uint32_t pad_wk[64];
static pthread_once_t pad_once = PTHREAD_ONCE_INIT;

static uint32_t ror32(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void pad_init(void)
{
	uint32_t w[64] = {0};

	w[0] = 0x80000000u;
	w[15] = 512;
	for (int t = 16; t < 64; t++)
		w[t] = w[t - 16] + (ror32(w[t - 15], 7) ^ ror32(w[t - 15], 18) ^ (w[t - 15] >> 3)) +
		       w[t - 7] + (ror32(w[t - 2], 17) ^ ror32(w[t - 2], 19) ^ (w[t - 2] >> 10));
	for (int t = 0; t < 64; t++)
		pad_wk[t] = w[t] + K[t];
}

#define ADD(a, b) _mm512_add_epi32((a), (b))
#define ROR(x, n) _mm512_ror_epi32((x), (n))
#define XOR3(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0x96)
#define CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xca)
#define MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xe8)
#define BCAST(p) _mm512_set1_epi32((int)(p))

/* One round; the caller rotates the names instead of moving values. */
#define RND(a, b, c, d, e, f, g, h, kw) do { \
	__m512i t1_ = ADD(ADD(h, XOR3(ROR(e, 6), ROR(e, 11), ROR(e, 25))), ADD(CH(e, f, g), (kw))); \
	__m512i t2_ = ADD(XOR3(ROR(a, 2), ROR(a, 13), ROR(a, 22)), MAJ(a, b, c)); \
	d = ADD(d, t1_); \
	h = ADD(t1_, t2_); \
} while (0)

/* The schedule in a ring of 16: W[t] from W[t-16], W[t-15], W[t-7], W[t-2]. */
#define SCHED(t) \
	w[(t) & 15] = ADD(ADD(w[(t) & 15], XOR3(ROR(w[((t) - 15) & 15], 7), ROR(w[((t) - 15) & 15], 18), \
		_mm512_srli_epi32(w[((t) - 15) & 15], 3))), ADD(w[((t) - 7) & 15], \
		XOR3(ROR(w[((t) - 2) & 15], 17), ROR(w[((t) - 2) & 15], 19), _mm512_srli_epi32(w[((t) - 2) & 15], 10))))

/* Block 1, rounds t..t+7: the message words (scheduled from round 16 on). */
#define KW1(t) ((t) >= 16 ? (SCHED(t), ADD(w[(t) & 15], BCAST(K[t]))) : ADD(w[(t) & 15], BCAST(K[t])))
#define R8_1(t) \
	RND(a, b, c, d, e, f, g, h, KW1((t) + 0)); RND(h, a, b, c, d, e, f, g, KW1((t) + 1)); \
	RND(g, h, a, b, c, d, e, f, KW1((t) + 2)); RND(f, g, h, a, b, c, d, e, KW1((t) + 3)); \
	RND(e, f, g, h, a, b, c, d, KW1((t) + 4)); RND(d, e, f, g, h, a, b, c, KW1((t) + 5)); \
	RND(c, d, e, f, g, h, a, b, KW1((t) + 6)); RND(b, c, d, e, f, g, h, a, KW1((t) + 7))
/* Block 2, rounds t..t+7: the padding block, W + K from the table. */
#define R8_2(t) \
	RND(a, b, c, d, e, f, g, h, BCAST(pad_wk[(t) + 0])); RND(h, a, b, c, d, e, f, g, BCAST(pad_wk[(t) + 1])); \
	RND(g, h, a, b, c, d, e, f, BCAST(pad_wk[(t) + 2])); RND(f, g, h, a, b, c, d, e, BCAST(pad_wk[(t) + 3])); \
	RND(e, f, g, h, a, b, c, d, BCAST(pad_wk[(t) + 4])); RND(d, e, f, g, h, a, b, c, BCAST(pad_wk[(t) + 5])); \
	RND(c, d, e, f, g, h, a, b, BCAST(pad_wk[(t) + 6])); RND(b, c, d, e, f, g, h, a, BCAST(pad_wk[(t) + 7]))

/* The truncated SHA-256 of 16 messages given as 16 word vectors, into 8
 * word vectors. `w` is used up as the schedule ring. */
static inline __attribute__((always_inline)) AVX512
void sha16(__m512i out[8], __m512i w[16])
{
	__m512i a = BCAST(IV[0]), b = BCAST(IV[1]), c = BCAST(IV[2]), d = BCAST(IV[3]);
	__m512i e = BCAST(IV[4]), f = BCAST(IV[5]), g = BCAST(IV[6]), h = BCAST(IV[7]);
	__m512i a1, b1, c1, d1, e1, f1, g1, h1;

	R8_1(0); R8_1(8); R8_1(16); R8_1(24); R8_1(32); R8_1(40); R8_1(48); R8_1(56);
	a1 = a = ADD(a, BCAST(IV[0])); b1 = b = ADD(b, BCAST(IV[1]));
	c1 = c = ADD(c, BCAST(IV[2])); d1 = d = ADD(d, BCAST(IV[3]));
	e1 = e = ADD(e, BCAST(IV[4])); f1 = f = ADD(f, BCAST(IV[5]));
	g1 = g = ADD(g, BCAST(IV[6])); h1 = h = ADD(h, BCAST(IV[7]));
	R8_2(0); R8_2(8); R8_2(16); R8_2(24); R8_2(32); R8_2(40); R8_2(48); R8_2(56);
	out[0] = ADD(a, a1); out[1] = ADD(b, b1); out[2] = ADD(c, c1); out[3] = ADD(d, d1);
	out[4] = ADD(e, e1); out[5] = ADD(f, f1); out[6] = ADD(g, g1);
	/* out[31] &= 0x3f: the low byte of the big-endian last word. */
	out[7] = _mm512_and_si512(ADD(h, h1), BCAST(0xffffff3fu));
}

/* Level 0: 16 ordinary 64-byte messages at `in` into one group at `out`. */
static AVX512 void leaves16(uint8_t *out, const uint8_t *in)
{
	const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
	__m512i r[16], t[16], w[16], o[8];
	int i, j;

	for (i = 0; i < 16; i++)
		r[i] = _mm512_shuffle_epi8(_mm512_loadu_si512((const void *)(in + 64 * i)), bswap);
	/* Transpose 16 x 16 words: pairs of rows, then quads, then 128-bit
	 * lanes. After the second step t[4q + j] holds, in lane k, word
	 * 4k + j of nodes 4q..4q+3. */
	for (i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
	}
	for (i = 0; i < 16; i += 4) {
		r[i + 0] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	for (j = 0; j < 4; j++) {
		__m512i e0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44);
		__m512i e1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xee);
		__m512i f0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
		__m512i f1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xee);

		w[j] = _mm512_shuffle_i32x4(e0, f0, 0x88);
		w[4 + j] = _mm512_shuffle_i32x4(e0, f0, 0xdd);
		w[8 + j] = _mm512_shuffle_i32x4(e1, f1, 0x88);
		w[12 + j] = _mm512_shuffle_i32x4(e1, f1, 0xdd);
	}
	sha16(o, w);
	for (i = 0; i < 8; i++)
		_mm512_storeu_si512((void *)(out + 64 * i), o[i]);
}

/* A further level: groups at in and in + 512 (32 nodes) into one group. */
static AVX512 void pairs16(uint8_t *out, const uint8_t *in)
{
	const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
	const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
	__m512i w[16], o[8];
	int i;

	for (i = 0; i < 8; i++) {
		__m512i lo = _mm512_loadu_si512((const void *)(in + 64 * i));
		__m512i hi = _mm512_loadu_si512((const void *)(in + 512 + 64 * i));

		w[i] = _mm512_permutex2var_epi32(lo, even, hi);
		w[8 + i] = _mm512_permutex2var_epi32(lo, odd, hi);
	}
	sha16(o, w);
	for (i = 0; i < 8; i++)
		_mm512_storeu_si512((void *)(out + 64 * i), o[i]);
}

/* Reduces `leaves` (a power of two, at least 32) nodes at p until 16 are
 * left, as ordinary 32-byte nodes at p. */
static AVX512 void reduce(uint8_t *p, size_t leaves)
{
	uint32_t words[8][16];
	size_t groups = leaves / 32, g;

	pthread_once(&pad_once, pad_init);
	for (g = 0; g < groups; g++)
		leaves16(p + 512 * g, p + 1024 * g);
	for (; groups > 1; groups /= 2)
		for (g = 0; g < groups / 2; g++)
			pairs16(p + 512 * g, p + 1024 * g);
	/* The last group back to bytes: big-endian words, node by node. */
	memcpy(words, p, sizeof(words));
	for (int i = 0; i < 16; i++)
		for (int w = 0; w < 8; w++) {
			uint32_t v = words[w][i];
			uint8_t *q = p + 32 * i + 4 * w;

			q[0] = (uint8_t)(v >> 24);
			q[1] = (uint8_t)(v >> 16);
			q[2] = (uint8_t)(v >> 8);
			q[3] = (uint8_t)v;
		}
}

const cairn_piece__reduce_fn cairn_piece__reduce_avx512 = reduce;

/* AVX-512 F and BW in the CPU (leaf 7 EBX bits 16 and 30), and the OS
 * saving the opmask and zmm state (XCR0 bits 1, 2, 5, 6, 7). */
bool cairn_piece__avx512_usable(void)
{
	unsigned a, b, c, d, lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
		return false;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	(void)hi;
	if ((lo & 0xe6) != 0xe6)
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b >> 16 & 1) && (b >> 30 & 1);
}

#else

const cairn_piece__reduce_fn cairn_piece__reduce_avx512 = NULL;

bool cairn_piece__avx512_usable(void)
{
	return false;
}

#endif
