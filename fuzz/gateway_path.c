/* fuzz/gateway_path.c: the gateway's request parsers (serve_path_parse, the
 * entity-bytes and Range parsers) on any string: what a path parses to must
 * rebuild the path, segments are never empty, "." or ".." and never hold a
 * '/' or a control byte; a range is always inside the body; anything else
 * is an error code, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_i.h"

#include "fuzz.h"

static void check_path(const char *url)
{
	serve_path sp;
	char *re;
	size_t n = 0, len = strlen(url);
	int rc = serve_path_parse(&sp, url);

	if (rc) {
		CHECK(rc == CAIRN_ECORRUPT || rc == CAIRN_ETOOBIG);
		return;
	}
	CHECK(sp.cid_len > 0 && sp.nseg <= SERVE_PATH_MAX_SEGMENTS);
	CHECK(sp.cid >= url && sp.cid + sp.cid_len <= url + len);
	re = malloc(len + 2);
	CHECK(re);
	memcpy(re, "/ipfs/", 6);
	n = 6;
	memcpy(re + n, sp.cid, sp.cid_len);
	n += sp.cid_len;
	for (unsigned i = 0; i < sp.nseg; i++) {
		const char *s = sp.seg[i];
		size_t l = sp.seg_len[i];

		CHECK(l > 0 && !(l == 1 && s[0] == '.') && !(l == 2 && s[0] == '.' && s[1] == '.'));
		for (size_t k = 0; k < l; k++)
			CHECK(s[k] != '/' && (unsigned char)s[k] >= 0x20 && s[k] != 0x7f);
		re[n++] = '/';
		memcpy(re + n, s, l);
		n += l;
	}
	/* the same path, but for one trailing '/' */
	CHECK(n == len || (n + 1 == len && url[len - 1] == '/'));
	CHECK(!memcmp(re, url, n));
	free(re);
}

static void check_ranges(const char *s, uint64_t size)
{
	serve_range r;
	uint64_t from = 0, to = 0;
	serve_http_range k;

	if (!serve_entity_bytes_parse(&r, s))
		CHECK(r.to_end || (r.from < 0) != (r.to < 0) || r.from <= r.to);
	k = serve_http_range_parse(&from, &to, s, size);
	CHECK(k == SERVE_RANGE_WHOLE || k == SERVE_RANGE_ONE || k == SERVE_RANGE_UNSATISFIABLE);
	if (k == SERVE_RANGE_ONE)
		CHECK(from <= to && to < size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0; /* a C string, as MHD hands the decoded path over */
	check_path(s);
	check_ranges(s, size * 997);
	check_ranges(s, 0);
	free(s);
	cairn_error_clear();
	return 0;
}
