/* sha256_node.c: SHA-256 of many independent 64-byte tree nodes, truncated to
 * 254 bits: the backend choice, the OpenSSL path, and the zero subtrees.
 *
 * The backend is chosen once per process. Wide levels of a subtree (16 or
 * more nodes out) go to AVX-512 where the CPU has it; single nodes and
 * short runs to SHA-NI (four at a time) where the CPU has it, else OpenSSL
 * (which uses SHA-NI too, but one message at a time). CAIRN_NO_SHANI=1
 * forces OpenSSL for everything; CAIRN_NO_AVX512=1 leaves AVX-512 out.
 */
/* The low-level SHA256 call is deprecated in OpenSSL 3 in favour of EVP, whose
 * per-call setup costs more than hashing 64 bytes (see ipld/multihash.c). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "piece_i.h"

void cairn_piece__hash_nodes_openssl(uint8_t *out, const uint8_t *in, size_t n)
{
	uint8_t d[32];

	/* Through a local digest: out may be in, and node i's output at 32 i
	 * must not clobber its own input at 64 i before it is read (it cannot,
	 * since SHA256 reads all 64 bytes first, but say so by construction). */
	/* SHA256_Init/Update/Final, not SHA256(): in OpenSSL 3 the one-shot
	 * call fetches an EVP method every time, ten times the cost here. */
	for (size_t i = 0; i < n; i++) {
		SHA256_CTX ctx;

		SHA256_Init(&ctx);
		SHA256_Update(&ctx, in + 64 * i, 64);
		SHA256_Final(d, &ctx);
		d[31] &= 0x3f;
		memcpy(out + 32 * i, d, 32);
	}
}

static cairn_piece__hash_fn narrow_fn;  /* single nodes and short runs */
static cairn_piece__reduce_fn wide_fn;  /* NULL: none */
static cairn_piece__sha_backend backend;
static pthread_once_t backend_once = PTHREAD_ONCE_INIT;

static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && !strcmp(v, "1");
}

static void use(cairn_piece__sha_backend b)
{
	narrow_fn = cairn_piece__hash_nodes_openssl;
	wide_fn = NULL;
	backend = CAIRN_PIECE__SHA_OPENSSL;
	if (b == CAIRN_PIECE__SHA_OPENSSL)
		return;
	if (cairn_piece__shani_usable()) {
		narrow_fn = cairn_piece__hash_nodes_shani;
		backend = CAIRN_PIECE__SHA_SHANI;
	}
	if (b == CAIRN_PIECE__SHA_AVX512 && cairn_piece__avx512_usable()) {
		wide_fn = cairn_piece__reduce_avx512;
		backend = CAIRN_PIECE__SHA_AVX512;
	}
}

static void choose(void)
{
	if (env_set("CAIRN_NO_SHANI"))
		use(CAIRN_PIECE__SHA_OPENSSL);
	else if (env_set("CAIRN_NO_AVX512"))
		use(CAIRN_PIECE__SHA_SHANI);
	else
		use(CAIRN_PIECE__SHA_AVX512);
}

cairn_piece__sha_backend cairn_piece__sha_current(void)
{
	pthread_once(&backend_once, choose);
	return backend;
}

cairn_piece__sha_backend cairn_piece__sha_select(cairn_piece__sha_backend b)
{
	pthread_once(&backend_once, choose);
	if (b == CAIRN_PIECE__SHA_AUTO)
		choose();
	else
		use(b);
	return backend;
}

void cairn_piece__hash_nodes(uint8_t *out, const uint8_t *in, size_t n)
{
	pthread_once(&backend_once, choose);
	narrow_fn(out, in, n);
}

void cairn_piece__reduce(uint8_t *p, size_t leaves)
{
	pthread_once(&backend_once, choose);
	if (wide_fn && leaves >= 32) {
		wide_fn(p, leaves);
		leaves = 16;
	}
	for (; leaves > 1; leaves /= 2)
		narrow_fn(p, p, leaves / 2);
}

/* ------------------------------------------------------ zero subtrees */

static uint8_t zero_table[CAIRN_PIECE__MAX_LEVEL + 1][32];
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static void zero_init(void)
{
	uint8_t pair[64];

	/* Always OpenSSL: the table must not depend on the backend under test. */
	memset(zero_table[0], 0, 32);
	for (int i = 1; i <= CAIRN_PIECE__MAX_LEVEL; i++) {
		memcpy(pair, zero_table[i - 1], 32);
		memcpy(pair + 32, zero_table[i - 1], 32);
		cairn_piece__hash_nodes_openssl(zero_table[i], pair, 1);
	}
}

const uint8_t (*cairn_piece__zero_table(void))[32]
{
	pthread_once(&zero_once, zero_init);
	return (const uint8_t (*)[32])zero_table;
}

int cairn_piece_zero_commp(uint8_t out[32], uint64_t padded_size)
{
	int level;

	if (padded_size < 32 || padded_size & (padded_size - 1) || padded_size > (UINT64_C(1) << 63))
		return cairn_error_set(CAIRN_EINVAL,
			"zero piece: size %llu is not a power of two from 32 to 2^63",
			(unsigned long long)padded_size);
	level = 63 - __builtin_clzll(padded_size) - 5;
	memcpy(out, cairn_piece__zero_table()[level], 32);
	return 0;
}
