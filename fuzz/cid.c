/* cid.c: fuzz target for CIDs: a binary CID is the prefix it consumed, and its
 * string forms parse back to it; strings are parsed as the command line does. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

static void check_string_round_trip(const cairn_cid *cid, cairn_multibase base)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid back;
	int n = cairn_cid_format(s, cid, base);

	if (n <= 0 || (size_t)n != strlen(s) || n >= CAIRN_CID_MAX_STRING)
		abort();
	if (cairn_cid_parse(&back, s, (size_t)n))
		abort();
	if (!cairn_cid_equal(&back, cid) || cairn_cid_cmp(&back, cid) ||
	    cairn_cid_hash(&back) != cairn_cid_hash(cid))
		abort();
	if (back.version != cid->version || back.codec != cid->codec ||
	    back.mh_code != cid->mh_code || back.digest_len != cid->digest_len ||
	    back.digest_off != cid->digest_off || back.mh_off != cid->mh_off)
		abort();
}

static void check_cid(const cairn_cid *cid)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid other, back;

	if (cid->len > CAIRN_CID_MAX_BYTES || cid->version > 1 ||
	    cid->digest_off + cid->digest_len != cid->len || cid->mh_off >= cid->digest_off)
		abort();
	if (cid->version == 0) {
		if (cid->len != 34 || cid->codec != CAIRN_CODEC_DAG_PB ||
		    cid->mh_code != CAIRN_MH_SHA2_256)
			abort();
		check_string_round_trip(cid, CAIRN_BASE58BTC);
		if (cairn_cid_format(s, cid, CAIRN_BASE32) != CAIRN_EINVAL)
			abort();
		/* v0 -> v1 -> v0 */
		if (cairn_cid_convert(&other, cid, 1) || other.version != 1)
			abort();
		check_string_round_trip(&other, CAIRN_BASE32);
		if (cairn_cid_convert(&back, &other, 0) || !cairn_cid_equal(&back, cid))
			abort();
	} else {
		check_string_round_trip(cid, CAIRN_BASE32);
		check_string_round_trip(cid, CAIRN_BASE58BTC);
		check_string_round_trip(cid, CAIRN_BASE16);
		check_string_round_trip(cid, CAIRN_BASE64URL);
		if (cairn_cid_convert(&other, cid, 1) || !cairn_cid_equal(&other, cid))
			abort();
		/* a v0 form exists exactly for dag-pb with a 32-byte sha2-256 */
		{
			bool v0able = cid->codec == CAIRN_CODEC_DAG_PB &&
				      cid->mh_code == CAIRN_MH_SHA2_256 && cid->digest_len == 32;
			int rc = cairn_cid_convert(&other, cid, 0);

			if (v0able != (rc == 0))
				abort();
			if (!rc) {
				if (cairn_cid_convert(&back, &other, 1) || !cairn_cid_equal(&back, cid))
					abort();
			}
		}
	}
	if (cairn_cid_to_string(s, cid) <= 0)
		abort();
	if (!cairn_cid_equal(cid, cid) || cairn_cid_cmp(cid, cid))
		abort();
	/* encoded again from its fields, by another path than decode's (which
	 * knows the commonest prefixes by their bytes): the same CID */
	if (cairn_cid_from_digest(&other, cid->version, cid->codec, cid->mh_code,
				  cid->bytes + cid->digest_off, cid->digest_len) ||
	    other.len != cid->len || memcmp(other.bytes, cid->bytes, cid->len) ||
	    other.mh_off != cid->mh_off || other.digest_off != cid->digest_off)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_cid cid, exact;
	size_t used = 0;
	int rc;

	/* binary */
	rc = cairn_cid_decode(&cid, &used, data, size);
	if (!rc) {
		if (used == 0 || used > size || used != cid.len || memcmp(cid.bytes, data, used))
			abort();
		check_cid(&cid);
		/* without used_out it must fill the input exactly */
		rc = cairn_cid_decode(&exact, NULL, data, size);
		if ((rc == 0) != (used == size))
			abort();
		if (!rc && !cairn_cid_equal(&exact, &cid))
			abort();
		/* the exact prefix decodes alone */
		if (cairn_cid_decode(&exact, NULL, data, used) || !cairn_cid_equal(&exact, &cid))
			abort();
	} else if (rc != CAIRN_ECORRUPT && rc != CAIRN_EUNSUPPORTED && rc != CAIRN_ETOOBIG) {
		abort();
	}

	/* string */
	rc = cairn_cid_parse(&cid, (const char *)data, size);
	if (!rc) {
		check_cid(&cid);
		if (cairn_cid_decode(&exact, NULL, cid.bytes, cid.len) || !cairn_cid_equal(&exact, &cid))
			abort();
	} else if (rc != CAIRN_ECORRUPT && rc != CAIRN_EUNSUPPORTED && rc != CAIRN_ETOOBIG) {
		abort();
	}
	return 0;
}
