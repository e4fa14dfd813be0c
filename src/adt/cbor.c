/* cbor.c: the CBOR that AMT and HAMT nodes are made of, read strictly and
 * written canonically, so a node that decodes re-encodes to its own bytes. */
#include <stdio.h>
#include <string.h>

#include "adt_i.h"

#define corrupt(at, ...) cairn_error_set(CAIRN_ECORRUPT, "at byte " at, __VA_ARGS__)

static int head_any(adt_rd *r, unsigned *major, unsigned *info_out, uint64_t *arg)
{
	size_t start = r->off, n;
	unsigned info;
	uint64_t v = 0;

	if (r->off >= r->len)
		return corrupt("%zu: unexpected end of data", start);
	*major = r->p[r->off] >> 5;
	info = r->p[r->off] & 0x1f;
	*info_out = info;
	r->off++;
	if (info < 24) {
		*arg = info;
		return 0;
	}
	if (info > 27)
		return corrupt("%zu: %s", start, info == 31 ? "indefinite-length items are not allowed"
						       : "reserved additional information");
	n = (size_t)1 << (info - 24);
	if (r->len - r->off < n)
		return corrupt("%zu: unexpected end of data inside an item head", start);
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | r->p[r->off + i];
	r->off += n;
	*arg = v;
	/* Major 7 keeps floats in these bytes: any value is its own. */
	if (*major != 7 && ((info == 24 && v < 24) || (info == 25 && v <= 0xff) ||
			    (info == 26 && v <= 0xffff) || (info == 27 && v <= 0xffffffffu)))
		return corrupt("%zu: integer or length not in its shortest form", start);
	return 0;
}

static const char *const major_names[] = {"an unsigned integer", "a negative integer",
	"a byte string", "a text string", "an array", "a map", "a tag", "a float or simple value"};

int cairn_adt__expect(adt_rd *r, unsigned major, uint64_t *arg, const char *what)
{
	size_t start = r->off;
	unsigned m = 0, info = 0;
	int rc;

	if ((rc = head_any(r, &m, &info, arg)))
		return rc;
	if (m != major)
		return corrupt("%zu: %s must be %s, not %s", start, what, major_names[major],
			       major_names[m]);
	if ((major == ADT_MAJ_BYTES || major == ADT_MAJ_ARRAY) && *arg > r->len - r->off)
		return corrupt("%zu: %s of %llu %s but %zu bytes remain", start, what,
			       (unsigned long long)*arg, major == ADT_MAJ_BYTES ? "bytes" : "items",
			       r->len - r->off);
	return 0;
}

static int skip(adt_rd *r, unsigned depth)
{
	size_t start = r->off;
	unsigned major = 0, info = 0;
	uint64_t arg = 0;
	int rc;

	if (depth > CAIRN_IPLD_MAX_DEPTH)
		return cairn_error_set(CAIRN_ETOOBIG, "at byte %zu: nested deeper than %d", start,
				       CAIRN_IPLD_MAX_DEPTH);
	if ((rc = head_any(r, &major, &info, &arg)))
		return rc;
	switch (major) {
	case 0:
	case 1:
		return 0;
	case 2:
	case 3:
		if (arg > r->len - r->off)
			return corrupt("%zu: string of %llu bytes but %zu remain", start,
				       (unsigned long long)arg, r->len - r->off);
		r->off += (size_t)arg;
		return 0;
	case 4:
	case 5:
		/* Each item takes at least a byte: a count past what remains is
		 * caught here, not after a long loop. */
		if (arg > r->len - r->off)
			return corrupt("%zu: %llu items but %zu bytes remain", start,
				       (unsigned long long)arg, r->len - r->off);
		for (uint64_t i = 0; i < (major == 5 ? 2 : 1) * arg; i++)
			if ((rc = skip(r, depth + 1)))
				return rc;
		return 0;
	case 6:
		return skip(r, depth + 1);
	default:
		if (info < 24 && arg >= 20)
			return 0; /* false, true, null, undefined */
		if (info >= 25)
			return 0; /* a float of 16, 32 or 64 bits */
		return corrupt("%zu: simple value %llu is not allowed", start, (unsigned long long)arg);
	}
}

int cairn_adt__skip(adt_rd *r)
{
	return skip(r, 0);
}

int cairn_adt__link(adt_rd *r, cairn_cid *cid)
{
	size_t start = r->off;
	uint64_t arg = 0;
	int rc;

	if ((rc = cairn_adt__expect(r, ADT_MAJ_TAG, &arg, "a link")))
		return rc;
	if (arg != 42)
		return corrupt("%zu: a link must be tag 42, not tag %llu", start, (unsigned long long)arg);
	if ((rc = cairn_adt__expect(r, ADT_MAJ_BYTES, &arg, "a link's bytes")))
		return rc;
	if (arg < 2 || r->p[r->off] != 0)
		return corrupt("%zu: a link's bytes must be 0x00 and a binary CID", r->off);
	if (cairn_cid_decode(cid, NULL, r->p + r->off + 1, (size_t)arg - 1)) {
		char prefix[48];

		/* Whatever the CID's fault (a version or a digest cairn does
		 * not take), in a node it is corruption. */
		snprintf(prefix, sizeof(prefix), "at byte %zu: ", r->off + 1);
		return cairn_adt__recode(CAIRN_ECORRUPT, prefix);
	}
	r->off += (size_t)arg;
	return 0;
}

int cairn_adt__check_value(const uint8_t *p, size_t len, const char *what)
{
	adt_rd r = {p, len, 0};

	if (!p || !len)
		return cairn_error_set(CAIRN_EINVAL, "%s: a value is one CBOR item, not nothing", what);
	if (len > ADT_MAX_VALUE)
		return cairn_error_set(CAIRN_ETOOBIG, "%s: a value of %zu bytes is over the bound of %u",
				       what, len, ADT_MAX_VALUE);
	if (cairn_adt__skip(&r)) {
		char prefix[128];

		snprintf(prefix, sizeof(prefix), "%s: the value is not one CBOR item: ", what);
		return cairn_adt__recode(CAIRN_EINVAL, prefix);
	}
	if (r.off != len)
		return cairn_error_set(CAIRN_EINVAL, "%s: the value is not one CBOR item: "
				       "%zu bytes follow the first", what, len - r.off);
	return 0;
}

void cairn_adt__put_head(cairn_buf *b, unsigned major, uint64_t arg)
{
	uint8_t h[9];
	size_t n;

	if (arg < 24) {
		h[0] = (uint8_t)(major << 5 | arg);
		n = 1;
	} else if (arg <= 0xff) {
		h[0] = (uint8_t)(major << 5 | 24);
		h[1] = (uint8_t)arg;
		n = 2;
	} else if (arg <= 0xffff) {
		h[0] = (uint8_t)(major << 5 | 25);
		n = 3;
	} else if (arg <= 0xffffffffu) {
		h[0] = (uint8_t)(major << 5 | 26);
		n = 5;
	} else {
		h[0] = (uint8_t)(major << 5 | 27);
		n = 9;
	}
	for (size_t i = 1; n > 2 && i < n; i++)
		h[i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
	cairn_buf_append(b, h, n);
}

void cairn_adt__put_link(cairn_buf *b, const cairn_cid *cid)
{
	cairn_adt__put_head(b, ADT_MAJ_TAG, 42);
	cairn_adt__put_head(b, ADT_MAJ_BYTES, (uint64_t)cid->len + 1);
	cairn_buf_putc(b, 0);
	cairn_buf_append(b, cid->bytes, cid->len);
}

int cairn_adt__recode(int code, const char *prefix)
{
	char m[1024];

	/* The message is copied out first: formatting it into itself would
	 * read and write the same buffer. */
	snprintf(m, sizeof(m), "%s", cairn_error_last());
	return cairn_error_set(code, "%s%s", prefix, m);
}

int cairn_adt__get(cairn_store *s, cairn_buf *out, const cairn_cid *cid, const char *what)
{
	char str[CAIRN_CID_MAX_STRING];
	int rc;

	if ((rc = cairn_store_get(s, out, cid))) {
		cairn_cid_to_string(str, cid);
		if (rc == CAIRN_ENOTFOUND)
			return cairn_error_set(rc, "%s %s is not in the %s store", what, str,
					       cairn_store_name(s));
		return cairn_error_prefix("%s %s: ", what, str);
	}
	return 0;
}

int cairn_adt__put(cairn_store *s, cairn_cid *cid_out, uint64_t mh_code, const cairn_buf *b,
		   const char *what)
{
	char str[CAIRN_CID_MAX_STRING];
	int rc;

	if (b->err)
		return b->err;
	if ((rc = cairn_cid_compute(cid_out, 1, CAIRN_CODEC_DAG_CBOR, mh_code, b->data, b->len)))
		return cairn_error_prefix("%s: ", what);
	if ((rc = cairn_store_put(s, cid_out, b->data, b->len))) {
		cairn_cid_to_string(str, cid_out);
		return cairn_error_prefix("%s %s: writing to the %s store: ", what, str,
					  cairn_store_name(s));
	}
	return 0;
}

int cairn_adt__check_mh(uint64_t mh_code, const char *what)
{
	/* Identity would inline nodes into their parents' CIDs, which
	 * Filecoin never does (abi.CIDInlineLimit is -1). */
	if (mh_code != CAIRN_MH_BLAKE2B_256 && mh_code != CAIRN_MH_SHA2_256)
		return cairn_error_set(CAIRN_EINVAL, "%s: node CIDs hash with blake2b-256 or "
				       "sha2-256, not 0x%llx", what, (unsigned long long)mh_code);
	return 0;
}
