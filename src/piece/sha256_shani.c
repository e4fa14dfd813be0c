/* sha256_shani.c: SHA-256 of 64-byte tree nodes with the x86 SHA extensions,
 * four nodes interleaved, each truncated to 254 bits.
 *
 * Why four at a time: one SHA-256 block is a chain of 32 sha256rnds2, each
 * waiting for the last, so a single message leaves the SHA unit idle most
 * of the time; four independent chains keep it busy. Why it pays twice over
 * here: a 64-byte message is two blocks, and the second is always the same
 * padding block (0x80, zeros, bit length 512), so its message schedule plus
 * round constants is a table computed once, leaving only the rounds.
 *
 * Only this file is compiled for SHA-NI (a target attribute on each
 * function), so the rest of the build keeps the default flags; the caller
 * checks the CPU (cairn_piece__shani_usable) before calling in.
 */
#include "piece_i.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#define SHANI __attribute__((target("sha,sse4.1")))

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

/* W[t] + K[t] of the padding block of a 64-byte message. */
static uint32_t pad_wk[64];
static pthread_once_t pad_once = PTHREAD_ONCE_INIT;

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void pad_init(void)
{
	uint32_t w[64] = {0};

	w[0] = 0x80000000u; /* the 0x80 byte after the message */
	w[15] = 512;        /* message length in bits */
	for (int t = 16; t < 64; t++) {
		uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
		uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);

		w[t] = w[t - 16] + s0 + w[t - 7] + s1;
	}
	for (int t = 0; t < 64; t++)
		pad_wk[t] = w[t] + K[t];
}

/* The code below is written once for any number of lanes: EACH(X, ...)
 * expands X(lane, ...) for every lane. Everything is spelled out with
 * macros, not loops over arrays: compilers keep such arrays in memory,
 * which puts a store and a load into every step of the round chain. */
#define EACH4(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__)
#define EACH1(X, ...) X(0, __VA_ARGS__)

#define DECL(l, _) __m128i s0_##l, s1_##l, h0_##l, h1_##l, m0_##l, m1_##l, m2_##l, m3_##l;
#define LOAD(l, _) \
	m0_##l = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 64 * l)), bswap); \
	m1_##l = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 64 * l + 16)), bswap); \
	m2_##l = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 64 * l + 32)), bswap); \
	m3_##l = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 64 * l + 48)), bswap); \
	s0_##l = iv_abef; \
	s1_##l = iv_cdgh;
/* Four rounds: the low two words of x, then the high two. */
#define ROUNDS4(l, x) do { \
	__m128i x_ = (x); \
	s1_##l = _mm_sha256rnds2_epu32(s1_##l, s0_##l, x_); \
	s0_##l = _mm_sha256rnds2_epu32(s0_##l, s1_##l, _mm_shuffle_epi32(x_, 0x0e)); \
} while (0);
/* Rounds 4g..4g+3 of block 1 on message words held in `a`. */
#define R(l, a, g) ROUNDS4(l, _mm_add_epi32(a##_##l, _mm_loadu_si128((const __m128i *)&K[4 * (g)])))
/* The next four schedule words into `a` (words t-16..t-13), from b (t-12..),
 * c (t-8..) and d (t-4..t-1): W = msg2(msg1(a, b) + W[t-7..t-4], d). */
#define S(l, a, b, c, d, g) \
	a##_##l = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(a##_##l, b##_##l), \
		_mm_alignr_epi8(d##_##l, c##_##l, 4)), d##_##l); \
	R(l, a, g)
#define P(l, g) ROUNDS4(l, _mm_loadu_si128((const __m128i *)&pad_wk[4 * (g)]))
#define FEED1(l, _) h0_##l = s0_##l = _mm_add_epi32(s0_##l, iv_abef); \
	h1_##l = s1_##l = _mm_add_epi32(s1_##l, iv_cdgh);
#define STORE(l, _) { \
	__m128i a_ = _mm_shuffle_epi32(_mm_add_epi32(s0_##l, h0_##l), 0x1b); /* lanes A B E F */ \
	__m128i b_ = _mm_shuffle_epi32(_mm_add_epi32(s1_##l, h1_##l), 0xb1); /* lanes G H C D */ \
	_mm_storeu_si128((__m128i *)(out + 32 * l), \
		_mm_shuffle_epi8(_mm_blend_epi16(a_, b_, 0xf0), bswap)); \
	_mm_storeu_si128((__m128i *)(out + 32 * l + 16), \
		_mm_and_si128(_mm_shuffle_epi8(_mm_alignr_epi8(b_, a_, 8), bswap), top)); \
}

/* The body of a function hashing the nodes at in[64 l] into out[32 l] for
 * every lane of EACH. All inputs are loaded before any output is stored,
 * so out may be in. */
#define HASH_BODY(EACH) \
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL); \
	/* The initial state as sha256rnds2 wants it: ABEF and CDGH. */ \
	const __m128i iv_abef = _mm_set_epi32(0x6a09e667, (int)0xbb67ae85, 0x510e527f, (int)0x9b05688c); \
	const __m128i iv_cdgh = _mm_set_epi32(0x3c6ef372, (int)0xa54ff53a, 0x1f83d9ab, 0x5be0cd19); \
	const __m128i top = _mm_set_epi32(0x3fffffff, -1, -1, -1); /* out[31] &= 0x3f */ \
	EACH(DECL, _) \
	EACH(LOAD, _) \
	/* Block 1: the node. */ \
	EACH(R, m0, 0) EACH(R, m1, 1) EACH(R, m2, 2) EACH(R, m3, 3) \
	EACH(S, m0, m1, m2, m3, 4) EACH(S, m1, m2, m3, m0, 5) \
	EACH(S, m2, m3, m0, m1, 6) EACH(S, m3, m0, m1, m2, 7) \
	EACH(S, m0, m1, m2, m3, 8) EACH(S, m1, m2, m3, m0, 9) \
	EACH(S, m2, m3, m0, m1, 10) EACH(S, m3, m0, m1, m2, 11) \
	EACH(S, m0, m1, m2, m3, 12) EACH(S, m1, m2, m3, m0, 13) \
	EACH(S, m2, m3, m0, m1, 14) EACH(S, m3, m0, m1, m2, 15) \
	EACH(FEED1, _) \
	/* Block 2: the constant padding block, schedule from the table. */ \
	EACH(P, 0) EACH(P, 1) EACH(P, 2) EACH(P, 3) EACH(P, 4) EACH(P, 5) EACH(P, 6) EACH(P, 7) \
	EACH(P, 8) EACH(P, 9) EACH(P, 10) EACH(P, 11) EACH(P, 12) EACH(P, 13) EACH(P, 14) EACH(P, 15) \
	EACH(STORE, _)

static SHANI void hash4(uint8_t *out, const uint8_t *in)
{
	HASH_BODY(EACH4)
}

static SHANI void hash1(uint8_t *out, const uint8_t *in)
{
	HASH_BODY(EACH1)
}

static SHANI void hash_nodes(uint8_t *out, const uint8_t *in, size_t n)
{
	size_t i = 0;

	pthread_once(&pad_once, pad_init);
	/* Group j reads in[256 j, +256) and writes out[128 j, +128): in place,
	 * a write never reaches input not yet read. */
	for (; i + 4 <= n; i += 4)
		hash4(out + 32 * i, in + 64 * i);
	for (; i < n; i++)
		hash1(out + 32 * i, in + 64 * i);
}

const cairn_piece__hash_fn cairn_piece__hash_nodes_shani = hash_nodes;

/* cpuid rather than __builtin_cpu_supports("sha"), which older compilers
 * do not know: leaf 7 EBX bit 29 is SHA, leaf 1 ECX bit 19 is SSE4.1. */
bool cairn_piece__shani_usable(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19)))
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b >> 29) & 1;
}

#else

const cairn_piece__hash_fn cairn_piece__hash_nodes_shani = NULL;

bool cairn_piece__shani_usable(void)
{
	return false;
}

#endif
