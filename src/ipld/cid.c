/* cid.c: CIDs as fixed-size values: binary and string forms, computing one
 * from bytes, verifying bytes against one, and converting between versions.
 *
 * Binary layout kept in cairn_cid.bytes:
 *   v0: 0x12 0x20 <32-byte sha2-256 digest>          (codec dag-pb implied)
 *   v1: varint(1) varint(codec) varint(mh code) varint(digest len) <digest>
 */
#include <string.h>

#include "cairn/ipld.h"
#include "ipld_i.h"

int cairn_cid_from_digest(cairn_cid *out, unsigned version, uint64_t codec,
			  uint64_t mh_code, const uint8_t *digest, size_t digest_len)
{
	size_t n = 0;

	memset(out, 0, offsetof(cairn_cid, bytes));
	if (digest_len > CAIRN_MH_DIGEST_MAX)
		return cairn_error_set(CAIRN_ETOOBIG, "CID: digest of %zu bytes is over the limit of %d",
				       digest_len, CAIRN_MH_DIGEST_MAX);
	if (version == 0) {
		if (codec != CAIRN_CODEC_DAG_PB || mh_code != CAIRN_MH_SHA2_256 || digest_len != 32)
			return cairn_error_set(CAIRN_EINVAL,
				"a CIDv0 must be dag-pb with a 32-byte sha2-256 digest");
	} else if (version == 1) {
		if (codec >> 63 || mh_code >> 63)
			return cairn_error_set(CAIRN_EINVAL, "CID: codec or hash code over 2^63");
		n += cairn_varint_encode(out->bytes + n, 1);
		n += cairn_varint_encode(out->bytes + n, codec);
	} else {
		return cairn_error_set(CAIRN_EINVAL, "CID: version %u does not exist", version);
	}
	out->mh_off = (uint8_t)n;
	n += cairn_varint_encode(out->bytes + n, mh_code);
	n += cairn_varint_encode(out->bytes + n, digest_len);
	out->digest_off = (uint8_t)n;
	if (digest_len)
		memcpy(out->bytes + n, digest, digest_len);
	n += digest_len;
	out->len = (uint16_t)n;
	out->version = (uint8_t)version;
	out->codec = codec;
	out->mh_code = mh_code;
	out->digest_len = (uint8_t)digest_len;
	return 0;
}

/* A CIDv1's longest form: version, codec and hash code of up to nine
 * varint bytes each (under 2^63), the digest length in two. */
_Static_assert(1 + 9 + 9 + 2 + CAIRN_MH_DIGEST_MAX <= CAIRN_CID_MAX_BYTES,
	       "a decoded CID fits in cairn_cid");

int cairn_cid_decode(cairn_cid *out, size_t *used_out, const uint8_t *p, size_t len)
{
	const uint8_t *digest;
	uint64_t version = 0, codec = CAIRN_CODEC_DAG_PB, mh_code;
	size_t off = 0, used, digest_len, mh_off;
	int rc;

	if (len >= 2 && p[0] == 0x12 && p[1] == 0x20) {
		/* v0: a bare sha2-256 multihash. */
		if (len < 34)
			return cairn_error_set(CAIRN_ECORRUPT,
				"CID: at byte %zu: CIDv0 truncated (%zu of 34 bytes)", len, len);
		rc = cairn_cid_from_digest(out, 0, codec, CAIRN_MH_SHA2_256, p + 2, 32);
		if (!rc && used_out)
			*used_out = 34;
		if (!rc && !used_out && len != 34)
			return cairn_error_set(CAIRN_ECORRUPT, "CID: at byte 34: %zu extra bytes after the CID",
					       len - 34);
		return rc;
	}
	/* The CIDs most DAGs are made of, CIDv1 with a one-byte codec and a
	 * sha2-256 or blake2b-256 digest, known by their first bytes: a link
	 * scan decodes tens of millions. The same fields as the varints below
	 * would give (0xa0 0xe4 0x02 is blake2b-256's code, 0xb220). */
	if (len >= 36 && p[0] == 1 && p[1] < 0x80) {
		if (p[2] == 0x12 && p[3] == 0x20) {
			mh_code = CAIRN_MH_SHA2_256;
			digest = p + 4;
			off = 36;
		} else if (len >= 38 && p[2] == 0xa0 && p[3] == 0xe4 && p[4] == 0x02 &&
			   p[5] == 0x20) {
			mh_code = CAIRN_MH_BLAKE2B_256;
			digest = p + 6;
			off = 38;
		}
		if (off) {
			codec = p[1];
			mh_off = 2;
			digest_len = 32;
			goto decoded;
		}
	}
	if (cairn_varint_decode_short(&version, &used, p, len))
		return cairn_error_prefix("CID version: ");
	if (version != 1)
		return cairn_error_set(version == 0 ? CAIRN_ECORRUPT : CAIRN_EUNSUPPORTED,
			"CID: at byte 0: version %llu is not a valid CID version (expected 1, or a CIDv0 multihash)",
			(unsigned long long)version);
	off += used;
	if (cairn_varint_decode_short(&codec, &used, p + off, len - off))
		return cairn_error_prefix("CID codec at byte %zu: ", off);
	off += used;
	mh_off = off;
	if (cairn_multihash_decode(&mh_code, &digest, &digest_len, &used, p + off, len - off))
		return cairn_error_prefix("CID at byte %zu: ", off);
	off += used;
	if (codec >> 63 || mh_code >> 63)
		return cairn_error_set(CAIRN_EINVAL, "CID: codec or hash code over 2^63");
decoded:
	if (!used_out && off != len)
		return cairn_error_set(CAIRN_ECORRUPT, "CID: at byte %zu: %zu extra bytes after the CID",
				       off, len - off);
	/* The bytes are what cairn_cid_from_digest would write (varints are
	 * minimal, the digest bounded: see the assertion above), so they are copied
	 * instead of encoded again: a DAG's links are most of what is decoded. */
	memset(out, 0, offsetof(cairn_cid, bytes));
	memcpy(out->bytes, p, off);
	out->len = (uint16_t)off;
	out->version = 1;
	out->mh_off = (uint8_t)mh_off;
	out->digest_off = (uint8_t)(digest - p);
	out->digest_len = (uint8_t)digest_len;
	out->codec = codec;
	out->mh_code = mh_code;
	if (used_out)
		*used_out = off;
	return 0;
}

int cairn_cid_parse(cairn_cid *out, const char *s, size_t n)
{
	cairn_buf raw = CAIRN_BUF_INIT;
	int rc;

	if (n >= 2 && s[0] == 'Q' && s[1] == 'm') {
		/* "Qm" is how every base58btc sha2-256 multihash starts; no
		 * multibase prefix is 'Q', so this can only be a v0 CID. */
		if (n != 46)
			return cairn_error_set(CAIRN_ECORRUPT,
				"'%.*s': a CIDv0 is 46 characters, not %zu", (int)(n > 100 ? 100 : n), s, n);
		rc = cairn_base_decode(&raw, CAIRN_BASE58BTC, s, n);
		if (!rc && (raw.len != 34 || raw.data[0] != 0x12 || raw.data[1] != 0x20))
			rc = cairn_error_set(CAIRN_ECORRUPT, "CID: not a sha2-256 CIDv0");
	} else {
		rc = cairn_multibase_decode(&raw, NULL, s, n);
		if (!rc && raw.len >= 1 && raw.data[0] == 0x12)
			rc = cairn_error_set(CAIRN_ECORRUPT,
				"CID: a CIDv0 must be written in base58btc without a prefix");
	}
	if (!rc)
		rc = cairn_cid_decode(out, NULL, raw.data, raw.len);
	cairn_buf_free(&raw);
	if (rc)
		cairn_error_prefix("'%.*s': ", (int)(n > 100 ? 100 : n), s);
	return rc;
}

int cairn_cid_format(char *out, const cairn_cid *cid, cairn_multibase base)
{
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	if (cid->version == 0) {
		if (base != CAIRN_BASE58BTC)
			return cairn_error_set(CAIRN_EINVAL,
				"a CIDv0 has only the base58btc form (convert it to v1 first)");
		rc = cairn_base_encode(&b, base, cid->bytes, cid->len);
	} else {
		rc = cairn_multibase_encode(&b, base, cid->bytes, cid->len);
	}
	if (!rc && b.len >= CAIRN_CID_MAX_STRING)
		rc = cairn_error_set(CAIRN_ETOOBIG, "CID string too long");
	if (!rc) {
		memcpy(out, b.data, b.len + 1);
		rc = (int)b.len;
	}
	cairn_buf_free(&b);
	return rc;
}

int cairn_cid_to_string(char *out, const cairn_cid *cid)
{
	return cairn_cid_format(out, cid, cid->version == 0 ? CAIRN_BASE58BTC : CAIRN_BASE32);
}

int cairn_cid_compute(cairn_cid *out, unsigned version, uint64_t codec, uint64_t mh_code,
		      const void *data, size_t n)
{
	uint8_t digest[CAIRN_MH_DIGEST_MAX];
	int len = cairn_multihash_sum(digest, mh_code, data, n);

	if (len < 0)
		return len;
	return cairn_cid_from_digest(out, version, codec, mh_code, digest, (size_t)len);
}

int cairn_cid_verify(const cairn_cid *cid, const void *data, size_t n)
{
	uint8_t digest[CAIRN_MH_DIGEST_MAX];
	int len = cairn_multihash_sum(digest, cid->mh_code, data, n);

	if (len < 0)
		return len;
	if ((size_t)len != cid->digest_len ||
	    (len && memcmp(digest, cid->bytes + cid->digest_off, (size_t)len))) {
		char s[CAIRN_CID_MAX_STRING];
		if (cairn_cid_to_string(s, cid) < 0)
			strcpy(s, "(unprintable)");
		return cairn_error_set(CAIRN_EMISMATCH, "block does not hash to its CID %s", s);
	}
	return 0;
}

int cairn_cid_convert(cairn_cid *out, const cairn_cid *in, unsigned version)
{
	cairn_cid tmp;
	int rc = cairn_cid_from_digest(&tmp, version, in->codec, in->mh_code,
				       in->bytes + in->digest_off, in->digest_len);

	if (rc)
		return rc;
	memcpy(out, &tmp, sizeof(tmp));
	return 0;
}

int cairn_cid_cmp(const cairn_cid *a, const cairn_cid *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->bytes, b->bytes, n);

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

bool cairn_cid_equal(const cairn_cid *a, const cairn_cid *b)
{
	return a->len == b->len && !memcmp(a->bytes, b->bytes, a->len);
}

bool cairn_cid_multihash_equal(const cairn_cid *a, const cairn_cid *b)
{
	size_t na = (size_t)a->len - a->mh_off, nb = (size_t)b->len - b->mh_off;

	return na == nb && !memcmp(a->bytes + a->mh_off, b->bytes + b->mh_off, na);
}

uint64_t cairn_cid_hash(const cairn_cid *cid)
{
	/* FNV-1a then a final mix: digests of cryptographic hashes are already
	 * uniform, but identity digests are not. */
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = cid->mh_off; i < cid->len; i++)
		h = (h ^ cid->bytes[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}
