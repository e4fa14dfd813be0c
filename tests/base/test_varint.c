/* test_varint.c: unit tests for multiformats unsigned varints: the known
 * vectors, random round trips, and every way a strict decoder must refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cairn.h"

typedef struct {
	uint64_t value;
	size_t len;
	uint8_t bytes[CAIRN_VARINT_MAX];
} vector;

static const vector vectors[] = {
	{0, 1, {0x00}},
	{1, 1, {0x01}},
	{127, 1, {0x7f}},
	{128, 2, {0x80, 0x01}},
	{255, 2, {0xff, 0x01}},
	{300, 2, {0xac, 0x02}},
	{16383, 2, {0xff, 0x7f}},
	{16384, 3, {0x80, 0x80, 0x01}},
	{0x1fffff, 3, {0xff, 0xff, 0x7f}},
	{(1ull << 56) - 1, 8, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	{1ull << 56, 9, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
	{(1ull << 63) - 1, 9, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
};

static void test_known_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const vector *v = &vectors[i];
		uint8_t out[CAIRN_VARINT_MAX];
		uint64_t value = 12345;
		size_t used = 0;

		assert_int_equal(cairn_varint_size(v->value), v->len);
		assert_int_equal(cairn_varint_encode(out, v->value), v->len);
		assert_memory_equal(out, v->bytes, v->len);
		assert_int_equal(cairn_varint_decode(&value, &used, v->bytes, v->len), 0);
		assert_true(value == v->value);
		assert_int_equal(used, v->len);
	}
}

static void test_decode_stops_at_end_of_varint(void **state)
{
	const uint8_t p[] = {0xac, 0x02, 0xff, 0xff};
	uint64_t value = 0;
	size_t used = 0;

	(void)state;
	assert_int_equal(cairn_varint_decode(&value, &used, p, sizeof(p)), 0);
	assert_int_equal(value, 300);
	assert_int_equal(used, 2);
	/* used_out may be NULL */
	value = 0;
	assert_int_equal(cairn_varint_decode(&value, NULL, p, sizeof(p)), 0);
	assert_int_equal(value, 300);
}

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*: deterministic, so a failure reproduces */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void test_random_round_trip(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int i = 0; i < 100000; i++) {
		uint64_t r = next_rand(&seed);
		/* spread the values over every length, not just 9-byte ones */
		uint64_t v = (r >> 1) >> (r % 63);
		uint8_t out[CAIRN_VARINT_MAX];
		uint64_t back = 0;
		size_t n, used = 0;

		n = cairn_varint_encode(out, v);
		assert_true(n >= 1 && n <= CAIRN_VARINT_MAX);
		assert_int_equal(n, cairn_varint_size(v));
		assert_int_equal(cairn_varint_decode(&back, &used, out, n), 0);
		assert_true(back == v);
		assert_int_equal(used, n);
		/* the last byte ends it, every other byte continues it */
		for (size_t k = 0; k + 1 < n; k++)
			assert_true(out[k] & 0x80);
		assert_false(out[n - 1] & 0x80);
	}
}

static void test_encode_refuses_2_63(void **state)
{
	uint8_t out[CAIRN_VARINT_MAX];

	(void)state;
	assert_int_equal(cairn_varint_encode(out, 1ull << 63), 0);
	assert_int_equal(cairn_varint_encode(out, UINT64_MAX), 0);
	assert_int_equal(cairn_varint_size(1ull << 63), 0);
	assert_int_equal(cairn_varint_size(UINT64_MAX), 0);
}

/* Decodes p and expects CAIRN_ECORRUPT with "at byte <at>" in the message. */
static void expect_corrupt(const uint8_t *p, size_t len, const char *at)
{
	uint64_t value = 777;
	size_t used = 888;

	cairn_error_clear();
	assert_int_equal(cairn_varint_decode(&value, &used, p, len), CAIRN_ECORRUPT);
	assert_int_equal(cairn_error_last_code(), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "varint"));
	if (!strstr(cairn_error_last(), at))
		fail_msg("message \"%s\" does not name \"%s\"", cairn_error_last(), at);
	/* a failed decode leaves the outputs alone */
	assert_int_equal(value, 777);
	assert_int_equal(used, 888);
}

static void test_truncated(void **state)
{
	const uint8_t one[] = {0x80};
	const uint8_t three[] = {0xff, 0xff, 0x80};

	(void)state;
	expect_corrupt(one, 0, "at byte 0");
	expect_corrupt(one, 1, "at byte 1");
	expect_corrupt(three, 3, "at byte 3");
	assert_non_null(strstr(cairn_error_last(), "truncated"));
}

static void test_not_minimal(void **state)
{
	const uint8_t a[] = {0x80, 0x00};
	const uint8_t b[] = {0x81, 0x00};
	const uint8_t c[] = {0xff, 0x80, 0x00};
	const uint8_t d[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};

	(void)state;
	expect_corrupt(a, sizeof(a), "at byte 1");
	assert_non_null(strstr(cairn_error_last(), "minimal"));
	expect_corrupt(b, sizeof(b), "at byte 1");
	expect_corrupt(c, sizeof(c), "at byte 2");
	expect_corrupt(d, sizeof(d), "at byte 8");
}

static void test_too_long(void **state)
{
	/* ten bytes: 2^63 needs one more byte than the spec allows */
	const uint8_t ten[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
	const uint8_t ten_ff[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	/* nine bytes, the ninth with its continuation bit set */
	const uint8_t nine_cont[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

	(void)state;
	expect_corrupt(ten, sizeof(ten), "at byte");
	expect_corrupt(ten_ff, sizeof(ten_ff), "at byte");
	expect_corrupt(nine_cont, sizeof(nine_cont), "at byte");
}

/* The inline decoder gives the library's answer for every one-, two- and
 * three-byte input, whole or cut short (65,536 + 256 + 16.7 M inputs
 * would be slow: the third byte takes a few values that matter). */
static void test_short_matches(void **state)
{
	static const uint8_t thirds[] = {0x00, 0x01, 0x7f, 0x80, 0xff};

	(void)state;
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			for (size_t t = 0; t < sizeof(thirds); t++) {
				uint8_t p[3] = {(uint8_t)a, (uint8_t)b, thirds[t]};

				for (size_t len = 0; len <= 3; len++) {
					uint64_t v1 = 7, v2 = 7;
					size_t u1 = 9, u2 = 9;
					int r1 = cairn_varint_decode(&v1, &u1, p, len);
					int r2 = cairn_varint_decode_short(&v2, &u2, p, len);

					assert_int_equal(r1, r2);
					if (!r1) {
						assert_int_equal(v1, v2);
						assert_int_equal(u1, u2);
					}
				}
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_decode_stops_at_end_of_varint),
		cmocka_unit_test(test_random_round_trip),
		cmocka_unit_test(test_encode_refuses_2_63),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_not_minimal),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_short_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
