/* test_fr32.c: unit tests for fr32 padding: the vectors of the research notes
 * (§3.1), a bit-by-bit reference on random data, round trips whole and
 * streamed at every split, in place, and unpadding refused on bad bits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

/* A reproducible generator (xorshift64*), so a failure can be replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd() >> 56);
}

/* The definition, one bit at a time: input bit i (LSB first) goes to output
 * bit i + 2 * (i / 254). */
static void ref_pad(uint8_t *out, const uint8_t *in, size_t n)
{
	memset(out, 0, n / 127 * 128);
	for (size_t i = 0; i < n * 8; i++) {
		size_t o = i + 2 * (i / 254);

		if (in[i / 8] >> (i % 8) & 1)
			out[o / 8] |= (uint8_t)(1u << (o % 8));
	}
}

/* "b×n" runs as the notes write them. */
static size_t runs(uint8_t *out, const char *spec)
{
	size_t n = 0;

	while (*spec) {
		char *end;
		unsigned long b = strtoul(spec, &end, 16), k = 1;

		if (*end == 'x') {
			k = strtoul(end + 1, &end, 10);
		}
		for (unsigned long i = 0; i < k; i++)
			out[n++] = (uint8_t)b;
		spec = end;
		while (*spec == ' ')
			spec++;
	}
	return n;
}

static void test_vectors(void **state)
{
	static const struct {
		uint8_t byte;
		const char *out;
	} v[] = {
		{0xff, "ffx31 3f ffx31 3f ffx31 3f ffx31 3f"},
		{0x01, "01x32 04x32 10x32 40x31 00"},
		{0x80, "80x31 00 02x32 08x32 20x32"},
		{0x3c, "3cx32 f0x31 30 c3x31 03 0fx32"},
		{0x00, "00x128"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t in[127], want[160], got[128], back[127];

		memset(in, v[i].byte, sizeof(in));
		assert_int_equal(runs(want, v[i].out), 128);
		assert_int_equal(cairn_fr32_pad(got, in, 127), 0);
		assert_memory_equal(got, want, 128);
		assert_int_equal(cairn_fr32_unpad(back, got, 128), 0);
		assert_memory_equal(back, in, 127);
	}
}

static void test_reference_random(void **state)
{
	uint8_t in[127 * 9], want[128 * 9], got[128 * 9];

	(void)state;
	for (int r = 0; r < 200; r++) {
		size_t n = 127 * (1 + rnd() % 9);

		fill_random(in, n);
		ref_pad(want, in, n);
		assert_int_equal(cairn_fr32_pad(got, in, n), 0);
		assert_memory_equal(got, want, n / 127 * 128);
	}
}

static void test_round_trip_sizes(void **state)
{
	(void)state;
	for (int r = 0; r < 50; r++) {
		size_t quads = (size_t)(rnd() % 3000);
		size_t n = quads * 127;
		uint8_t *in = malloc(n + 1), *pad = malloc(quads * 128 + 1), *back = malloc(n + 1);

		fill_random(in, n);
		assert_int_equal(cairn_fr32_pad(pad, in, n), 0);
		for (size_t q = 0; q < quads; q++)
			for (int k = 0; k < 4; k++)
				assert_int_equal(pad[128 * q + 32 * k + 31] >> 6, 0);
		assert_int_equal(cairn_fr32_unpad(back, pad, quads * 128), 0);
		assert_memory_equal(back, in, n);
		free(in);
		free(pad);
		free(back);
	}
}

static void test_in_place(void **state)
{
	size_t quads = 1000, n = quads * 127;
	uint8_t *in = malloc(n), *buf = malloc(quads * 128), *want = malloc(quads * 128);

	(void)state;
	fill_random(in, n);
	assert_int_equal(cairn_fr32_pad(want, in, n), 0);
	memcpy(buf, in, n);
	assert_int_equal(cairn_fr32_pad(buf, buf, n), 0);
	assert_memory_equal(buf, want, quads * 128);
	assert_int_equal(cairn_fr32_unpad(buf, buf, quads * 128), 0);
	assert_memory_equal(buf, in, n);
	free(in);
	free(buf);
	free(want);
}

static void test_bad_sizes(void **state)
{
	uint8_t b[256] = {0};

	(void)state;
	assert_int_equal(cairn_fr32_pad(b, b, 126), CAIRN_EINVAL);
	assert_int_equal(cairn_fr32_unpad(b, b, 127), CAIRN_EINVAL);
	assert_int_equal(cairn_fr32_pad(b, b, 0), 0);
	assert_int_equal(cairn_fr32_unpad(b, b, 0), 0);
}

static void test_unpad_invalid(void **state)
{
	uint8_t pad[128 * 3], out[127 * 3];

	(void)state;
	/* Each node of each quad, each of the two top bits. */
	for (int q = 0; q < 3; q++) {
		for (int k = 0; k < 4; k++) {
			for (int bit = 6; bit < 8; bit++) {
				char want[64];
				size_t at = (size_t)(128 * q + 32 * k + 31);

				memset(pad, 0, sizeof(pad));
				pad[at] = (uint8_t)(1u << bit);
				assert_int_equal(cairn_fr32_unpad(out, pad, sizeof(pad)), CAIRN_ECORRUPT);
				snprintf(want, sizeof(want), "at byte %zu:", at);
				assert_non_null(strstr(cairn_error_last(), want));
			}
		}
	}
}

/* ------------------------------------------------------------ streams */

typedef struct {
	uint8_t *p;
	size_t len, cap;
	int fail_after; /* calls before the sink fails; < 0 never */
	int calls;
} sink_buf;

static int sink(void *payload, const uint8_t *p, size_t n)
{
	sink_buf *s = payload;

	if (s->fail_after >= 0 && s->calls++ >= s->fail_after)
		return cairn_error_set(CAIRN_EIO, "test sink: disk full");
	assert_true(s->len + n <= s->cap);
	memcpy(s->p + s->len, p, n);
	s->len += n;
	return 0;
}

/* Streams `in` through `dir` in writes cut at the given sizes (cycled). */
static int stream(sink_buf *out, cairn_fr32_dir dir, const uint8_t *in, size_t n,
		  const size_t *cuts, size_t ncuts, uint64_t *total)
{
	cairn_fr32_stream *s;
	size_t off = 0, i = 0;
	int rc;

	assert_int_equal(cairn_fr32_stream_new(&s, dir, sink, out), 0);
	while (off < n) {
		size_t k = cuts[i++ % ncuts];

		if (k > n - off)
			k = n - off;
		if ((rc = cairn_fr32_stream_write(s, in + off, k))) {
			cairn_fr32_stream_free(s);
			return rc;
		}
		off += k;
	}
	rc = cairn_fr32_stream_finish(s, total);
	cairn_fr32_stream_free(s);
	return rc;
}

static void test_stream_every_split(void **state)
{
	/* 3 quads and a partial one: every first cut, then the rest. */
	size_t n = 127 * 3 + 50, padded = 128 * 4;
	uint8_t in[127 * 4], want[128 * 4], got[128 * 4], back[127 * 4];
	uint64_t total;

	(void)state;
	fill_random(in, n);
	memset(in + n, 0, sizeof(in) - n);
	assert_int_equal(cairn_fr32_pad(want, in, sizeof(in)), 0);
	for (size_t cut = 1; cut <= n; cut++) {
		size_t cuts[2] = {cut, n};
		sink_buf o = {got, 0, sizeof(got), -1, 0};

		assert_int_equal(stream(&o, CAIRN_FR32_PAD, in, n, cuts, 2, &total), 0);
		assert_int_equal(total, padded);
		assert_memory_equal(got, want, padded);
	}
	for (size_t cut = 1; cut <= padded; cut++) {
		size_t cuts[2] = {cut, padded};
		sink_buf o = {back, 0, sizeof(back), -1, 0};

		assert_int_equal(stream(&o, CAIRN_FR32_UNPAD, want, padded, cuts, 2, &total), 0);
		assert_int_equal(total, 127 * 4);
		assert_memory_equal(back, in, 127 * 4);
	}
}

static void test_stream_large_random_cuts(void **state)
{
	size_t n = 5 * 1000 * 1000 + 17, quads = (n + 126) / 127;
	uint8_t *in = calloc(quads, 127), *want = malloc(quads * 128), *got = malloc(quads * 128);
	uint8_t *back = malloc(quads * 127);
	size_t cuts[64];
	uint64_t total;

	(void)state;
	fill_random(in, n);
	assert_int_equal(cairn_fr32_pad(want, in, quads * 127), 0);
	for (int i = 0; i < 64; i++)
		cuts[i] = 1 + rnd() % (i % 2 ? 300 : 700000);
	{
		sink_buf o = {got, 0, quads * 128, -1, 0};

		assert_int_equal(stream(&o, CAIRN_FR32_PAD, in, n, cuts, 64, &total), 0);
		assert_int_equal(total, quads * 128);
		assert_memory_equal(got, want, quads * 128);
	}
	{
		sink_buf o = {back, 0, quads * 127, -1, 0};

		assert_int_equal(stream(&o, CAIRN_FR32_UNPAD, want, quads * 128, cuts, 64, &total), 0);
		assert_memory_equal(back, in, quads * 127);
	}
	free(in);
	free(want);
	free(got);
	free(back);
}

static void test_stream_errors(void **state)
{
	uint8_t pad[128 * 5] = {0}, out[128 * 5];
	size_t cuts[1] = {77};
	cairn_fr32_stream *s;

	(void)state;
	/* A bad node in quad 3, found through cut writes: the stream offset. */
	pad[128 * 3 + 32 * 2 + 31] = 0x80;
	{
		sink_buf o = {out, 0, sizeof(out), -1, 0};

		assert_int_equal(stream(&o, CAIRN_FR32_UNPAD, pad, sizeof(pad), cuts, 1, NULL),
				 CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "at byte 479:"));
	}
	/* Truncated padded input. */
	pad[128 * 3 + 32 * 2 + 31] = 0;
	{
		sink_buf o = {out, 0, sizeof(out), -1, 0};

		assert_int_equal(stream(&o, CAIRN_FR32_UNPAD, pad, 300, cuts, 1, NULL), CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "truncated"));
	}
	/* The sink's error comes back, and sticks. */
	{
		static uint8_t big[127 * 5000];
		sink_buf o = {NULL, 0, 0, 0, 0};

		assert_int_equal(cairn_fr32_stream_new(&s, CAIRN_FR32_PAD, sink, &o), 0);
		assert_int_equal(cairn_fr32_stream_write(s, big, sizeof(big)), CAIRN_EIO);
		assert_int_equal(cairn_fr32_stream_write(s, big, 1), CAIRN_EIO);
		assert_int_equal(cairn_fr32_stream_finish(s, NULL), CAIRN_EIO);
		cairn_fr32_stream_free(s);
	}
	/* Finish twice, write after finish; an empty stream writes nothing. */
	{
		sink_buf o = {out, 0, sizeof(out), -1, 0};
		uint64_t total = 99;

		assert_int_equal(cairn_fr32_stream_new(&s, CAIRN_FR32_PAD, sink, &o), 0);
		assert_int_equal(cairn_fr32_stream_finish(s, &total), 0);
		assert_int_equal(total, 0);
		assert_int_equal(cairn_fr32_stream_finish(s, NULL), CAIRN_EINVAL);
		assert_int_equal(cairn_fr32_stream_write(s, out, 1), CAIRN_EINVAL);
		cairn_fr32_stream_free(s);
	}
	assert_int_equal(cairn_fr32_stream_new(&s, CAIRN_FR32_PAD, NULL, NULL), CAIRN_EINVAL);
	assert_null(s);
	assert_int_equal(cairn_fr32_stream_new(&s, (cairn_fr32_dir)7, sink, NULL), CAIRN_EINVAL);
	cairn_fr32_stream_free(NULL);
	cairn_alloc_fail_after(1, false);
	assert_int_equal(cairn_fr32_stream_new(&s, CAIRN_FR32_PAD, sink, NULL), CAIRN_ENOMEM);
	assert_null(s);
	cairn_alloc_fail_after(-1, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_reference_random),
		cmocka_unit_test(test_round_trip_sizes),
		cmocka_unit_test(test_in_place),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_unpad_invalid),
		cmocka_unit_test(test_stream_every_split),
		cmocka_unit_test(test_stream_large_random_cuts),
		cmocka_unit_test(test_stream_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
