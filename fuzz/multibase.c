/* multibase.c: fuzz target for multibase: decoded text re-encodes to itself
 * (the decoder accepts only canonical forms), and any bytes survive a round trip. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

static const cairn_multibase bases[] = {
	CAIRN_BASE16, CAIRN_BASE32, CAIRN_BASE58BTC, CAIRN_BASE64, CAIRN_BASE64URL,
};

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static void text_round_trip(const char *s, size_t n)
{
	cairn_buf dec = CAIRN_BUF_INIT, enc = CAIRN_BUF_INIT;
	cairn_multibase base = (cairn_multibase)0;
	int rc = cairn_multibase_decode(&dec, &base, s, n);

	if (rc) {
		if (rc != CAIRN_ECORRUPT && rc != CAIRN_EUNSUPPORTED && rc != CAIRN_ETOOBIG)
			abort();
		if (rc != cairn_error_last_code())
			abort();
		goto done;
	}
	if (n == 0 || dec.err)
		abort();
	if (cairn_multibase_encode(&enc, base, dec.data, dec.len))
		abort();
	if (enc.len != n)
		abort();
	if (s[0] == 'B' || s[0] == 'F') {
		/* the upper-case forms: equal once the encoding is upper-cased */
		for (size_t i = 0; i < n; i++)
			if (upper((char)enc.data[i]) != s[i])
				abort();
	} else if (memcmp(enc.data, s, n)) {
		abort();
	}
done:
	cairn_buf_free(&dec);
	cairn_buf_free(&enc);
}

static void bytes_round_trip(const uint8_t *p, size_t n)
{
	for (size_t k = 0; k < sizeof(bases) / sizeof(bases[0]); k++) {
		cairn_buf enc = CAIRN_BUF_INIT, dec = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;
		cairn_multibase base = (cairn_multibase)0;
		int rc = cairn_multibase_encode(&enc, bases[k], p, n);

		if (rc) {
			/* only base58 has a size bound */
			if (bases[k] != CAIRN_BASE58BTC || rc != CAIRN_ETOOBIG)
				abort();
			cairn_buf_free(&enc);
			continue;
		}
		if (enc.len < 1 || enc.data[0] != (uint8_t)bases[k] || enc.data[enc.len] != 0)
			abort();
		if (strlen((const char *)enc.data) != enc.len)
			abort();
		if (cairn_multibase_decode(&dec, &base, (const char *)enc.data, enc.len))
			abort();
		if (base != bases[k] || dec.len != n || (n && memcmp(dec.data, p, n)))
			abort();
		/* without the prefix, the same */
		if (cairn_base_encode(&plain, bases[k], p, n))
			abort();
		if (plain.len + 1 != enc.len || memcmp(plain.data, enc.data + 1, plain.len))
			abort();
		cairn_buf_free(&enc);
		cairn_buf_free(&dec);
		cairn_buf_free(&plain);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	text_round_trip((const char *)data, size);
	bytes_round_trip(data, size);
	return 0;
}
