/* test_multibase.c: unit tests for base16, base32, base58btc and base64:
 * RFC 4648 vectors, prefixes, case rules and the canonical-form checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

typedef struct {
	const char *in;
	const char *b16, *b32, *b64;
} rfc_vector;

/* RFC 4648 section 10, lower case and without padding as multibase writes them */
static const rfc_vector rfc[] = {
	{"", "", "", ""},
	{"f", "66", "my", "Zg"},
	{"fo", "666f", "mzxq", "Zm8"},
	{"foo", "666f6f", "mzxw6", "Zm9v"},
	{"foob", "666f6f62", "mzxw6yq", "Zm9vYg"},
	{"fooba", "666f6f6261", "mzxw6ytb", "Zm9vYmE"},
	{"foobar", "666f6f626172", "mzxw6ytboi", "Zm9vYmFy"},
};

static void check_encode(cairn_multibase base, const void *p, size_t n, const char *want)
{
	cairn_buf b = CAIRN_BUF_INIT;

	assert_int_equal(cairn_base_encode(&b, base, p, n), 0);
	assert_non_null(b.data);
	assert_string_equal((const char *)b.data, want);
	assert_int_equal(b.len, strlen(want));
	cairn_buf_free(&b);
}

static void check_decode(cairn_multibase base, const char *s, const void *want, size_t n)
{
	cairn_buf b = CAIRN_BUF_INIT;

	assert_int_equal(cairn_base_decode(&b, base, s, strlen(s)), 0);
	assert_int_equal(b.len, n);
	if (n)
		assert_memory_equal(b.data, want, n);
	cairn_buf_free(&b);
}

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
		const rfc_vector *v = &rfc[i];
		size_t n = strlen(v->in);

		check_encode(CAIRN_BASE16, v->in, n, v->b16);
		check_encode(CAIRN_BASE32, v->in, n, v->b32);
		check_encode(CAIRN_BASE64, v->in, n, v->b64);
		check_encode(CAIRN_BASE64URL, v->in, n, v->b64);
		check_decode(CAIRN_BASE16, v->b16, v->in, n);
		check_decode(CAIRN_BASE32, v->b32, v->in, n);
		check_decode(CAIRN_BASE64, v->b64, v->in, n);
		check_decode(CAIRN_BASE64URL, v->b64, v->in, n);
	}
}

static void test_base64_alphabets(void **state)
{
	const uint8_t p[] = {0xfb, 0xff, 0xbf};

	(void)state;
	check_encode(CAIRN_BASE64, p, sizeof(p), "+/+/");
	check_encode(CAIRN_BASE64URL, p, sizeof(p), "-_-_");
	check_decode(CAIRN_BASE64, "+/+/", p, sizeof(p));
	check_decode(CAIRN_BASE64URL, "-_-_", p, sizeof(p));
	{
		cairn_buf b = CAIRN_BUF_INIT;

		assert_int_equal(cairn_base_decode(&b, CAIRN_BASE64, "-_-_", 4), CAIRN_ECORRUPT);
		cairn_buf_free(&b);
		assert_int_equal(cairn_base_decode(&b, CAIRN_BASE64URL, "+/+/", 4), CAIRN_ECORRUPT);
		cairn_buf_free(&b);
		/* padding is not part of the multibase forms */
		assert_int_equal(cairn_base_decode(&b, CAIRN_BASE64, "Zg==", 4), CAIRN_ECORRUPT);
		cairn_buf_free(&b);
	}
}

static void test_base58_vectors(void **state)
{
	const uint8_t zeros2[] = {0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd};
	const uint8_t zeros3[] = {0x00, 0x00, 0x00, 0x28, 0x7f, 0xb4, 0xcd};
	const uint8_t one_zero[] = {0x00};
	const uint8_t three_zeros[] = {0x00, 0x00, 0x00};
	const uint8_t small[] = {0x00, 0x00, 0x01};
	const uint8_t b57[] = {57};
	const uint8_t b58[] = {58};
	const uint8_t b256[] = {0x01, 0x00};

	(void)state;
	check_encode(CAIRN_BASE58BTC, "hello world", 11, "StV1DL6CwTryKyV");
	check_decode(CAIRN_BASE58BTC, "StV1DL6CwTryKyV", "hello world", 11);
	/* one '1' per leading zero byte (Bitcoin's vector 000000287fb4cd) */
	check_encode(CAIRN_BASE58BTC, zeros3, sizeof(zeros3), "111233QC4");
	check_decode(CAIRN_BASE58BTC, "111233QC4", zeros3, sizeof(zeros3));
	check_encode(CAIRN_BASE58BTC, zeros2, sizeof(zeros2), "11233QC4");
	check_decode(CAIRN_BASE58BTC, "11233QC4", zeros2, sizeof(zeros2));
	check_encode(CAIRN_BASE58BTC, "", 0, "");
	check_decode(CAIRN_BASE58BTC, "", "", 0);
	check_encode(CAIRN_BASE58BTC, one_zero, 1, "1");
	check_decode(CAIRN_BASE58BTC, "1", one_zero, 1);
	check_encode(CAIRN_BASE58BTC, three_zeros, 3, "111");
	check_decode(CAIRN_BASE58BTC, "111", three_zeros, 3);
	check_encode(CAIRN_BASE58BTC, small, 3, "112");
	check_encode(CAIRN_BASE58BTC, b57, 1, "z");
	check_encode(CAIRN_BASE58BTC, b58, 1, "21");
	check_decode(CAIRN_BASE58BTC, "21", b58, 1);
	/* 256 = 4 * 58 + 24 */
	check_encode(CAIRN_BASE58BTC, b256, 2, "5R");
	check_decode(CAIRN_BASE58BTC, "5R", b256, 2);
}

static void test_base58_rejects(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t *big;

	(void)state;
	/* 0, O, I and l are left out of the alphabet */
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE58BTC, "Stv0", 4), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at character 3"));
	cairn_buf_free(&b);
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE58BTC, "1O", 2), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at character 1"));
	cairn_buf_free(&b);
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE58BTC, "l", 1), CAIRN_ECORRUPT);
	cairn_buf_free(&b);
	/* quadratic work is bounded */
	big = calloc(1, 5000);
	assert_non_null(big);
	big[0] = 1;
	assert_int_equal(cairn_base_encode(&b, CAIRN_BASE58BTC, big, 5000), CAIRN_ETOOBIG);
	cairn_buf_free(&b);
	free(big);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static const cairn_multibase all_bases[] = {
	CAIRN_BASE16, CAIRN_BASE32, CAIRN_BASE58BTC, CAIRN_BASE64, CAIRN_BASE64URL,
};

static void test_random_round_trips(void **state)
{
	uint64_t seed = 42;

	(void)state;
	for (int iter = 0; iter < 2000; iter++) {
		uint8_t p[80];
		size_t n = next_rand(&seed) % sizeof(p);
		size_t lead = next_rand(&seed) % 4;

		for (size_t i = 0; i < n; i++)
			p[i] = i < lead ? 0 : (uint8_t)next_rand(&seed);
		for (size_t k = 0; k < sizeof(all_bases) / sizeof(all_bases[0]); k++) {
			cairn_buf enc = CAIRN_BUF_INIT, dec = CAIRN_BUF_INIT;
			cairn_multibase got = CAIRN_BASE16;

			assert_int_equal(cairn_multibase_encode(&enc, all_bases[k], p, n), 0);
			assert_int_equal(enc.data[0], (uint8_t)all_bases[k]);
			assert_int_equal(strlen((const char *)enc.data), enc.len);
			assert_int_equal(cairn_multibase_decode(&dec, &got, (const char *)enc.data,
								enc.len), 0);
			assert_int_equal(got, all_bases[k]);
			assert_int_equal(dec.len, n);
			if (n)
				assert_memory_equal(dec.data, p, n);
			cairn_buf_free(&enc);
			cairn_buf_free(&dec);
		}
	}
}

static void test_multibase_prefixes(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_multibase base = CAIRN_BASE64;

	(void)state;
	assert_int_equal(cairn_multibase_encode(&b, CAIRN_BASE32, (const uint8_t *)"foobar", 6), 0);
	assert_string_equal((const char *)b.data, "bmzxw6ytboi");
	cairn_buf_free(&b);
	assert_int_equal(cairn_multibase_encode(&b, CAIRN_BASE16, (const uint8_t *)"foo", 3), 0);
	assert_string_equal((const char *)b.data, "f666f6f");
	cairn_buf_free(&b);
	assert_int_equal(cairn_multibase_encode(&b, CAIRN_BASE58BTC,
						(const uint8_t *)"hello world", 11), 0);
	assert_string_equal((const char *)b.data, "zStV1DL6CwTryKyV");
	cairn_buf_free(&b);
	assert_int_equal(cairn_multibase_encode(&b, CAIRN_BASE64, (const uint8_t *)"foob", 4), 0);
	assert_string_equal((const char *)b.data, "mZm9vYg");
	cairn_buf_free(&b);
	assert_int_equal(cairn_multibase_encode(&b, CAIRN_BASE64URL, (const uint8_t *)"", 0), 0);
	assert_string_equal((const char *)b.data, "u");
	cairn_buf_free(&b);

	/* the prefix alone is the empty byte string */
	assert_int_equal(cairn_multibase_decode(&b, &base, "b", 1), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(base, CAIRN_BASE32);
	cairn_buf_free(&b);
	assert_int_equal(cairn_multibase_decode(&b, NULL, "zStV1DL6CwTryKyV", 16), 0);
	assert_int_equal(b.len, 11);
	assert_memory_equal(b.data, "hello world", 11);
	cairn_buf_free(&b);
}

static void test_upper_case_prefixes(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_multibase base = CAIRN_BASE64;

	(void)state;
	assert_int_equal(cairn_multibase_decode(&b, &base, "BMZXW6YTBOI", 11), 0);
	assert_int_equal(base, CAIRN_BASE32);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data, "foobar", 6);
	cairn_buf_free(&b);
	base = CAIRN_BASE64;
	assert_int_equal(cairn_multibase_decode(&b, &base, "F666F6F", 7), 0);
	assert_int_equal(base, CAIRN_BASE16);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "foo", 3);
	cairn_buf_free(&b);
}

static void expect_multibase_error(const char *s, int code, const char *needle)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_multibase base = CAIRN_BASE64URL;
	int rc;

	cairn_error_clear();
	rc = cairn_multibase_decode(&b, &base, s, strlen(s));
	cairn_buf_free(&b);
	if (rc != code)
		fail_msg("'%s': %d, not %d (%s)", s, rc, code, cairn_error_last());
	assert_int_equal(cairn_error_last_code(), code);
	/* base_out is untouched on failure */
	if (code)
		assert_int_equal(base, CAIRN_BASE64URL);
	if (needle && !strstr(cairn_error_last(), needle))
		fail_msg("'%s': message \"%s\" lacks \"%s\"", s, cairn_error_last(), needle);
}

static void test_mixed_case_rejected(void **state)
{
	(void)state;
	expect_multibase_error("BMZXw6YTBOI", CAIRN_ECORRUPT, "at character 4");
	expect_multibase_error("bmzxW6ytboi", CAIRN_ECORRUPT, "at character 4");
	expect_multibase_error("F666f6F", CAIRN_ECORRUPT, "at character 4");
	expect_multibase_error("f666F6f", CAIRN_ECORRUPT, "at character 4");
}

static void test_bad_character(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	/* without a prefix, offsets count from the start of the text */
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE32, "mzx1", 4), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at character 3"));
	cairn_buf_free(&b);
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE16, "66g6", 4), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at character 2"));
	cairn_buf_free(&b);
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE64, "Zm9v Y", 6), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at character 4"));
	cairn_buf_free(&b);
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE32, "my\0a", 4), CAIRN_ECORRUPT);
	cairn_buf_free(&b);
	/* through the prefix, still refused */
	expect_multibase_error("bmzx1", CAIRN_ECORRUPT, "'1' is not in the alphabet");
	expect_multibase_error("zStV0", CAIRN_ECORRUPT, "'0' is not in the alphabet");
	expect_multibase_error("mZm9v!", CAIRN_ECORRUPT, "'!' is not in the alphabet");
}

static void test_bad_character_offset_with_prefix(void **state)
{
	(void)state;
	/* Offsets count in the string the caller passed, as the case errors of
	 * the same function do ("bmzxW6" names character 4): "bmzx1" has its
	 * '1' at character 4, not 3. */
	expect_multibase_error("bmzx1", CAIRN_ECORRUPT, "at character 4");
	expect_multibase_error("zStV0", CAIRN_ECORRUPT, "at character 4");
	expect_multibase_error("f66g6", CAIRN_ECORRUPT, "at character 3");
}

static void test_non_canonical_tails(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	/* one base32 symbol is 5 bits: not a byte */
	expect_multibase_error("ba", CAIRN_ECORRUPT, "canonical");
	/* "ab": 10 bits, one byte plus the 2 bits 01 that must be zero */
	expect_multibase_error("bab", CAIRN_ECORRUPT, "canonical");
	/* "my" is "f"; "mz" sets a trailing bit */
	expect_multibase_error("bmz", CAIRN_ECORRUPT, "canonical");
	/* base32 lengths 3 and 6 (mod 8) are never produced */
	expect_multibase_error("bmzx", CAIRN_ECORRUPT, "canonical");
	expect_multibase_error("bmzxw6y", CAIRN_ECORRUPT, "canonical");
	expect_multibase_error("bmzxw6yq", 0, NULL);
	expect_multibase_error("bmzxw6yt", CAIRN_ECORRUPT, "canonical");
	expect_multibase_error("bmzxw6ytb", 0, NULL);
	expect_multibase_error("bmzxw6ytbo", CAIRN_ECORRUPT, "canonical");
	/* odd base16 */
	expect_multibase_error("f666", CAIRN_ECORRUPT, "canonical");
	/* base64: one symbol, and "Zm9" whose last 2 bits are not zero */
	expect_multibase_error("mZ", CAIRN_ECORRUPT, "canonical");
	expect_multibase_error("mZm9", CAIRN_ECORRUPT, "canonical");
	expect_multibase_error("uZh", CAIRN_ECORRUPT, "canonical");
	expect_multibase_error("mZm9vY", CAIRN_ECORRUPT, "canonical");
	/* the same through cairn_base_decode */
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE32, "mz", 2), CAIRN_ECORRUPT);
	cairn_buf_free(&b);
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE32, "my", 2), 0);
	cairn_buf_free(&b);
}

static void test_unknown_prefix(void **state)
{
	(void)state;
	expect_multibase_error("x1234", CAIRN_EUNSUPPORTED, "at character 0");
	expect_multibase_error("Zabc", CAIRN_EUNSUPPORTED, NULL);
	expect_multibase_error("Mabc", CAIRN_EUNSUPPORTED, NULL);
	expect_multibase_error("QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY",
			       CAIRN_EUNSUPPORTED, NULL);
	expect_multibase_error("", CAIRN_ECORRUPT, NULL);
}

static void test_unknown_base(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	assert_int_equal(cairn_base_encode(&b, (cairn_multibase)'q', (const uint8_t *)"a", 1),
			 CAIRN_EINVAL);
	cairn_buf_free(&b);
	assert_int_equal(cairn_base_decode(&b, (cairn_multibase)'q', "a", 1), CAIRN_EINVAL);
	cairn_buf_free(&b);
}

static void test_names(void **state)
{
	cairn_multibase base = CAIRN_BASE16;

	(void)state;
	assert_int_equal(cairn_multibase_from_name(&base, "base32"), 0);
	assert_int_equal(base, CAIRN_BASE32);
	assert_int_equal(cairn_multibase_from_name(&base, "base58btc"), 0);
	assert_int_equal(base, CAIRN_BASE58BTC);
	assert_int_equal(cairn_multibase_from_name(&base, "base58"), 0);
	assert_int_equal(base, CAIRN_BASE58BTC);
	assert_int_equal(cairn_multibase_from_name(&base, "base64url"), 0);
	assert_int_equal(base, CAIRN_BASE64URL);
	assert_int_equal(cairn_multibase_from_name(&base, "f"), 0);
	assert_int_equal(base, CAIRN_BASE16);
	assert_int_equal(cairn_multibase_from_name(&base, "m"), 0);
	assert_int_equal(base, CAIRN_BASE64);
	assert_int_equal(cairn_multibase_from_name(&base, "base36"), CAIRN_EINVAL);
	assert_int_equal(cairn_multibase_from_name(&base, ""), CAIRN_EINVAL);
	assert_int_equal(base, CAIRN_BASE64);
	assert_string_equal(cairn_multibase_name(CAIRN_BASE16), "base16");
	assert_string_equal(cairn_multibase_name(CAIRN_BASE32), "base32");
	assert_string_equal(cairn_multibase_name(CAIRN_BASE58BTC), "base58btc");
	assert_string_equal(cairn_multibase_name(CAIRN_BASE64), "base64");
	assert_string_equal(cairn_multibase_name(CAIRN_BASE64URL), "base64url");
	assert_string_equal(cairn_multibase_name((cairn_multibase)'x'), "unknown");
}

static void test_decode_appends(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	assert_int_equal(cairn_buf_puts(&b, "xy"), 0);
	assert_int_equal(cairn_base_decode(&b, CAIRN_BASE16, "666f6f", 6), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "xyfoo", 5);
	assert_int_equal(cairn_base_encode(&b, CAIRN_BASE32, (const uint8_t *)"f", 1), 0);
	assert_string_equal((const char *)b.data, "xyfoomy");
	cairn_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_base64_alphabets),
		cmocka_unit_test(test_base58_vectors),
		cmocka_unit_test(test_base58_rejects),
		cmocka_unit_test(test_random_round_trips),
		cmocka_unit_test(test_multibase_prefixes),
		cmocka_unit_test(test_upper_case_prefixes),
		cmocka_unit_test(test_mixed_case_rejected),
		cmocka_unit_test(test_bad_character),
		cmocka_unit_test(test_bad_character_offset_with_prefix),
		cmocka_unit_test(test_non_canonical_tails),
		cmocka_unit_test(test_unknown_prefix),
		cmocka_unit_test(test_unknown_base),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_decode_appends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
