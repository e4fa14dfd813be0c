/* multicodec.c: the names of the codecs and hash functions cairn knows, from
 * the multicodec table, for CLI flags and human-readable output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/ipld.h"

typedef struct {
	uint64_t code;
	const char *name;
} entry;

static const entry codecs[] = {
	{CAIRN_CODEC_IDENTITY, "identity"},
	{CAIRN_CODEC_CBOR, "cbor"},
	{CAIRN_CODEC_RAW, "raw"},
	{CAIRN_CODEC_DAG_PB, "dag-pb"},
	{CAIRN_CODEC_DAG_CBOR, "dag-cbor"},
	{CAIRN_CODEC_LIBP2P_KEY, "libp2p-key"},
	{0x78, "git-raw"},
	{0x85, "dag-jose"},
	{0x90, "eth-block"},
	{0x93, "eth-tx"},
	{0xb0, "bitcoin-block"},
	{CAIRN_CODEC_DAG_JSON, "dag-json"},
	{CAIRN_CODEC_JSON, "json"},
	{CAIRN_CODEC_FIL_COMMITMENT_UNSEALED, "fil-commitment-unsealed"},
	{CAIRN_CODEC_FIL_COMMITMENT_SEALED, "fil-commitment-sealed"},
};

static const entry hashes[] = {
	{CAIRN_MH_IDENTITY, "identity"},
	{0x11, "sha1"},
	{CAIRN_MH_SHA2_256, "sha2-256"},
	{0x13, "sha2-512"},
	{0x16, "sha3-256"},
	{0x1b, "keccak-256"},
	{0xb240, "blake2b-512"},
	{CAIRN_MH_BLAKE2B_256, "blake2b-256"},
	{0x1e, "blake3"},
	{0x1d, "murmur3-x64-64"},
	{CAIRN_MH_SHA2_256_TRUNC254_PADDED, "sha2-256-trunc254-padded"},
	{0xb401, "poseidon-bls12_381-a2-fc1"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *find_name(const entry *t, size_t n, uint64_t code)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].code == code)
			return t[i].name;
	return NULL;
}

static int find_code(uint64_t *out, const entry *t, size_t n, const char *name, const char *what)
{
	char *end;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!strcmp(t[i].name, name)) {
			*out = t[i].code;
			return 0;
		}
	}
	if (name[0] >= '0' && name[0] <= '9') {
		unsigned long long v;

		errno = 0;
		v = strtoull(name, &end, 0);
		if (!errno && *end == '\0' && v < (1ull << 63)) {
			*out = v;
			return 0;
		}
	}
	return cairn_error_set(CAIRN_EINVAL, "unknown %s '%s'", what, name);
}

const char *cairn_codec_name(uint64_t code)
{
	return find_name(codecs, COUNT(codecs), code);
}

int cairn_codec_from_name(uint64_t *out, const char *name)
{
	return find_code(out, codecs, COUNT(codecs), name, "codec");
}

const char *cairn_multihash_name(uint64_t code)
{
	return find_name(hashes, COUNT(hashes), code);
}

int cairn_multihash_from_name(uint64_t *out, const char *name)
{
	return find_code(out, hashes, COUNT(hashes), name, "hash function");
}
