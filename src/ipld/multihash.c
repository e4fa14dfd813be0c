/* multihash.c: computing and parsing multihashes. SHA-256 goes through
 * OpenSSL (which uses the SHA-NI instructions), BLAKE2b-256 through libsodium. */
/* The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP,
 * but EVP fetches and allocates per digest, which on 200-byte blocks costs
 * more than the hash (measured in bench/). They still use SHA-NI. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <sodium.h>
#include <string.h>

#include "cairn/ipld.h"
#include "ipld_i.h"

int cairn_multihash_sum(uint8_t *digest, uint64_t code, const void *p, size_t n)
{
	switch (code) {
	case CAIRN_MH_SHA2_256:
	{
		SHA256_CTX ctx;
		SHA256_Init(&ctx);
		SHA256_Update(&ctx, p, n);
		SHA256_Final(digest, &ctx);
		return 32;
	}
	case CAIRN_MH_BLAKE2B_256:
		crypto_generichash(digest, 32, p, n, NULL, 0);
		return 32;
	case CAIRN_MH_IDENTITY:
		if (n > CAIRN_MH_IDENTITY_MAX)
			return cairn_error_set(CAIRN_ETOOBIG,
				"identity multihash: %zu bytes is over the limit of %d", n,
				CAIRN_MH_IDENTITY_MAX);
		if (n)
			memcpy(digest, p, n);
		return (int)n;
	default: {
		const char *name = cairn_multihash_name(code);
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"multihash: cannot compute %s (0x%llx)", name ? name : "an unknown hash",
			(unsigned long long)code);
	}
	}
}

int cairn_multihash_decode(uint64_t *code_out, const uint8_t **digest_out,
			   size_t *digest_len_out, size_t *used_out,
			   const uint8_t *p, size_t len)
{
	uint64_t code, dlen;
	size_t a, b;

	if (cairn_varint_decode_short(&code, &a, p, len))
		return cairn_error_prefix("multihash code: ");
	if (cairn_varint_decode_short(&dlen, &b, p + a, len - a))
		return cairn_error_prefix("multihash length at byte %zu: ", a);
	if (dlen > len - a - b)
		return cairn_error_set(CAIRN_ECORRUPT,
			"multihash: at byte %zu: digest of %llu bytes but only %zu remain",
			a + b, (unsigned long long)dlen, len - a - b);
	if (dlen > CAIRN_MH_DIGEST_MAX)
		return cairn_error_set(CAIRN_ETOOBIG,
			"multihash: at byte %zu: digest of %llu bytes is over the limit of %d",
			a + b, (unsigned long long)dlen, CAIRN_MH_DIGEST_MAX);
	/* A known hash has one digest size; a wrong one is a corrupt CID. */
	if ((code == CAIRN_MH_SHA2_256 || code == CAIRN_MH_BLAKE2B_256) && dlen != 32)
		return cairn_error_set(CAIRN_ECORRUPT,
			"multihash: at byte %zu: %s digest must be 32 bytes, not %llu", a + b,
			cairn_multihash_name(code), (unsigned long long)dlen);
	*code_out = code;
	*digest_out = p + a + b;
	*digest_len_out = (size_t)dlen;
	*used_out = a + b + (size_t)dlen;
	return 0;
}
