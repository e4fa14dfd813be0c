/* piece_cid.c: piece CIDs: v1 (fil-commitment-unsealed, CommP only) and v2
 * (FRC-0069: raw codec, digest = uvarint(padding) || height || CommP).
 *
 * Parsing v2 is strict where go-fil-commcid is (digest length, minimal
 * varint, padding under half the tree) except at height 2, the 128-byte
 * piece, where any padding up to 127 is accepted: @web3-storage/data-segment
 * writes those for payloads of 0..64 bytes, and cairn does too.
 */
#include <string.h>

#include "piece_i.h"

int cairn_piece_cid_v1(cairn_cid *out, const uint8_t commp[32])
{
	return cairn_cid_from_digest(out, 1, CAIRN_CODEC_FIL_COMMITMENT_UNSEALED,
				     CAIRN_MH_SHA2_256_TRUNC254_PADDED, commp, 32);
}

/* The payload bytes a tree of `height` holds: 127 per 128 padded. */
static uint64_t tree_payload(unsigned height)
{
	return ((UINT64_C(32) << height) / CAIRN_FR32_OUT_QUAD) * CAIRN_FR32_IN_QUAD;
}

int cairn_piece_cid_v2(cairn_cid *out, const cairn_piece_info *info)
{
	uint8_t digest[CAIRN_VARINT_MAX + 1 + 32];
	size_t n;

	if (info->height < 2 || info->height > CAIRN_PIECE__MAX_LEVEL)
		return cairn_error_set(CAIRN_EINVAL, "piece CID v2: height %u is outside 2..%d",
				       info->height, CAIRN_PIECE__MAX_LEVEL);
	if (info->padding > tree_payload(info->height))
		return cairn_error_set(CAIRN_EINVAL,
			"piece CID v2: padding of %llu bytes is more than a tree of height %u holds",
			(unsigned long long)info->padding, info->height);
	n = cairn_varint_encode(digest, info->padding);
	digest[n++] = (uint8_t)info->height;
	memcpy(digest + n, info->commp, 32);
	return cairn_cid_from_digest(out, 1, CAIRN_CODEC_RAW,
				     CAIRN_MH_FR32_SHA256_TRUNC254_PADBINTREE, digest, n + 32);
}

int cairn_piece_cid_decode(cairn_piece_info *out, const cairn_cid *cid)
{
	const uint8_t *d = cid->bytes + cid->digest_off;
	size_t dlen = cid->digest_len, used;
	uint64_t padding, half;
	unsigned height;

	memset(out, 0, sizeof(*out));
	if (cid->version == 1 && cid->codec == CAIRN_CODEC_FIL_COMMITMENT_UNSEALED &&
	    cid->mh_code == CAIRN_MH_SHA2_256_TRUNC254_PADDED) {
		if (dlen != 32)
			return cairn_error_set(CAIRN_ECORRUPT,
				"piece CID v1: at byte %u: digest of %zu bytes (a CommP is 32)",
				cid->digest_off, dlen);
		memcpy(out->commp, d, 32);
		return 0;
	}
	if (cid->version != 1 || cid->codec != CAIRN_CODEC_RAW ||
	    cid->mh_code != CAIRN_MH_FR32_SHA256_TRUNC254_PADBINTREE)
		return cairn_error_set(CAIRN_EINVAL,
			"not a piece CID (v1: fil-commitment-unsealed with sha2-256-trunc254-padded; "
			"v2: raw with fr32-sha256-trunc254-padbintree)");
	if (cairn_varint_decode(&padding, &used, d, dlen))
		return cairn_error_prefix("piece CID v2: padding at byte %u: ", cid->digest_off);
	if (dlen != used + 33)
		return cairn_error_set(CAIRN_ECORRUPT,
			"piece CID v2: at byte %u: digest of %zu bytes, expected %zu (padding, height, CommP)",
			cid->digest_off, dlen, used + 33);
	height = d[used];
	if (height < 2)
		return cairn_error_set(CAIRN_ECORRUPT,
			"piece CID v2: at byte %zu: height %u is under 2 (the smallest piece is 128 bytes)",
			cid->digest_off + used, height);
	if (height > CAIRN_PIECE__MAX_LEVEL)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"piece CID v2: at byte %zu: height %u means a piece over 2^63 bytes",
			cid->digest_off + used, height);
	/* Padding of half the tree or more means a smaller tree would do. */
	half = height == 2 ? tree_payload(2) + 1 : tree_payload(height) / 2;
	if (padding >= half)
		return cairn_error_set(CAIRN_ECORRUPT,
			"piece CID v2: at byte %u: padding of %llu bytes must be under %llu for height %u",
			cid->digest_off, (unsigned long long)padding, (unsigned long long)half, height);
	memcpy(out->commp, d + used + 1, 32);
	out->height = height;
	out->padding = padding;
	out->padded_size = UINT64_C(32) << height;
	out->payload_size = tree_payload(height) - padding;
	return 0;
}
