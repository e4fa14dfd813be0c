/* test_cid.c: unit tests for CIDs and the multihash and multicodec tables:
 * string and binary forms, versions, hashing, verification and ordering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

#define HELLO_V0 "QmaozNR7DZHQK1ZcU9p7QdrshMvXqWK6gpu5rmrkPdT3L4"
#define HELLO_RAW "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
#define HELLO_BLAKE "bafk2bzaceaswza5ss4iu2ia3galz6pyo6dfm5f4dmiw2lf2de22dmf4k533ba"
#define FIXTURE_V0 "QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY"
#define FIXTURE_V1 "bafybeibcvvrry2potayjlnnyvtict74uv7y5y3ciqn4hqwe2sk4q37vdc4"

static const char *fixtures(void)
{
	const char *f = getenv("CAIRN_FIXTURES");

	return f && *f ? f : "/work/shared/fixtures";
}

static void parse_ok(cairn_cid *cid, const char *s)
{
	int rc = cairn_cid_parse(cid, s, strlen(s));

	if (rc)
		fail_msg("parse '%s': %d %s", s, rc, cairn_error_last());
}

/* Parses s, formats it in the base its prefix names, and expects s again. */
static void round_trip_string(const char *s)
{
	char out[CAIRN_CID_MAX_STRING];
	cairn_cid cid, back;
	int n;

	parse_ok(&cid, s);
	if (s[0] == 'Q') {
		assert_int_equal(cid.version, 0);
		n = cairn_cid_to_string(out, &cid);
	} else {
		cairn_multibase base = (cairn_multibase)s[0];

		assert_int_equal(cid.version, 1);
		n = cairn_cid_format(out, &cid, base);
	}
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
	assert_string_equal(out, s);
	/* the binary form decodes to the same value */
	assert_int_equal(cairn_cid_decode(&back, NULL, cid.bytes, cid.len), 0);
	assert_true(cairn_cid_equal(&cid, &back));
	assert_true(back.codec == cid.codec);
	assert_true(back.mh_code == cid.mh_code);
	assert_int_equal(back.digest_len, cid.digest_len);
}

static void test_fixture_cid_names(void **state)
{
	char path[4096];
	DIR *d;
	struct dirent *e;
	int count = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/codec/fixtures", fixtures());
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		const char *name = e->d_name;

		if (strncmp(name, "cid-", 4) || !strcmp(name, "cid-arrayof") ||
		    !strcmp(name, "cid-mapof"))
			continue;
		round_trip_string(name + 4);
		count++;
	}
	closedir(d);
	/* 3 v0, 10 base32, 3 base58btc */
	assert_int_equal(count, 16);
}

static void test_fixture_file_names(void **state)
{
	char path[4096];
	DIR *top;
	struct dirent *e;
	int count = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/codec/fixtures", fixtures());
	top = opendir(path);
	assert_non_null(top);
	while ((e = readdir(top))) {
		char sub[8192];
		DIR *d;
		struct dirent *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (!(d = opendir(sub)))
			continue;
		while ((f = readdir(d))) {
			char name[256];
			char *dot;

			if (f->d_name[0] == '.')
				continue;
			snprintf(name, sizeof(name), "%s", f->d_name);
			if (!(dot = strrchr(name, '.')))
				continue;
			*dot = '\0';
			round_trip_string(name);
			count++;
		}
		closedir(d);
	}
	closedir(top);
	assert_true(count > 200);
}

static void test_known_layout(void **state)
{
	cairn_cid cid;

	(void)state;
	parse_ok(&cid, FIXTURE_V0);
	assert_int_equal(cid.version, 0);
	assert_true(cid.codec == CAIRN_CODEC_DAG_PB);
	assert_true(cid.mh_code == CAIRN_MH_SHA2_256);
	assert_int_equal(cid.len, 34);
	assert_int_equal(cid.mh_off, 0);
	assert_int_equal(cid.digest_off, 2);
	assert_int_equal(cid.digest_len, 32);
	assert_int_equal(cid.bytes[0], 0x12);
	assert_int_equal(cid.bytes[1], 0x20);
	assert_int_equal(cid.bytes[2], 0x22);
	assert_int_equal(cid.bytes[33], 0x17);

	parse_ok(&cid, "zdpuAtX7ZibcWdSKQwiDCkPjWwRvtcKCPku9H7LhgA4qJW4Wk");
	assert_int_equal(cid.version, 1);
	assert_true(cid.codec == CAIRN_CODEC_DAG_CBOR);
	assert_true(cid.mh_code == CAIRN_MH_SHA2_256);
	assert_int_equal(cid.len, 36);
	assert_int_equal(cid.mh_off, 2);
	assert_int_equal(cid.digest_off, 4);

	/* git-raw with sha1: not computable here, but parsed */
	parse_ok(&cid, "z8mWaJ1dZ9fH5EetPuRsj8jj26pXsgpsr");
	assert_true(cid.codec == 0x78);
	assert_true(cid.mh_code == 0x11);
	assert_int_equal(cid.digest_len, 20);
	assert_int_equal(cid.len, 24);

	/* a two-byte codec varint (bitcoin-block) with dbl-sha2-256 */
	parse_ok(&cid, "bagyacvradn6dsgl6sw2jwoh7s3d37hq5wsu7g22wtdwnmaaaaaaaaaaaaaaa");
	assert_true(cid.codec == 0xb0);
	assert_true(cid.mh_code == 0x56);
	assert_int_equal(cid.mh_off, 3);
	assert_int_equal(cid.digest_off, 5);
	assert_int_equal(cid.digest_len, 32);
	assert_int_equal(cid.len, 37);
	/* a two-byte hash varint */
	parse_ok(&cid, HELLO_BLAKE);
	assert_true(cid.mh_code == 0xb220);
	assert_int_equal(cid.mh_off, 2);
	assert_int_equal(cid.digest_off, 6);
}

static void test_v0_v1_conversion(void **state)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid v0, v1, back, parsed;

	(void)state;
	parse_ok(&v0, FIXTURE_V0);
	assert_int_equal(cairn_cid_convert(&v1, &v0, 1), 0);
	assert_int_equal(v1.version, 1);
	assert_true(v1.codec == CAIRN_CODEC_DAG_PB);
	assert_int_equal(v1.len, 36);
	assert_memory_equal(v1.bytes + v1.digest_off, v0.bytes + v0.digest_off, 32);
	assert_int_equal(cairn_cid_to_string(s, &v1), (int)strlen(FIXTURE_V1));
	assert_string_equal(s, FIXTURE_V1);
	parse_ok(&parsed, FIXTURE_V1);
	assert_true(cairn_cid_equal(&parsed, &v1));
	assert_false(cairn_cid_equal(&v0, &v1));

	assert_int_equal(cairn_cid_convert(&back, &v1, 0), 0);
	assert_true(cairn_cid_equal(&back, &v0));
	assert_int_equal(cairn_cid_to_string(s, &back), 46);
	assert_string_equal(s, FIXTURE_V0);

	/* to the same version is a copy; in place works */
	assert_int_equal(cairn_cid_convert(&v1, &v1, 1), 0);
	assert_true(cairn_cid_equal(&v1, &parsed));

	/* only dag-pb with sha2-256 has a v0 form */
	parse_ok(&v1, HELLO_RAW);
	memset(&back, 0x5a, sizeof(back));
	assert_int_equal(cairn_cid_convert(&back, &v1, 0), CAIRN_EINVAL);
	parse_ok(&v1, "bafybeiaysi4s6lnjev27ln5icwm6tueaw2vdykrtjkwiphwekaywqhcjze");
	assert_int_equal(cairn_cid_convert(&back, &v1, 0), 0);
	assert_int_equal(back.version, 0);
	assert_int_equal(cairn_cid_convert(&back, &v1, 2), CAIRN_EINVAL);
}

static void test_compute_and_verify(void **state)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid cid;

	(void)state;
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					   "hello world", 11), 0);
	assert_int_equal(cairn_cid_to_string(s, &cid), (int)strlen(HELLO_RAW));
	assert_string_equal(s, HELLO_RAW);
	assert_int_equal(cairn_cid_verify(&cid, "hello world", 11), 0);
	cairn_error_clear();
	assert_int_equal(cairn_cid_verify(&cid, "hello worle", 11), CAIRN_EMISMATCH);
	assert_int_equal(cairn_error_last_code(), CAIRN_EMISMATCH);
	assert_non_null(strstr(cairn_error_last(), HELLO_RAW));
	assert_int_equal(cairn_cid_verify(&cid, "hello world", 10), CAIRN_EMISMATCH);
	assert_int_equal(cairn_cid_verify(&cid, "", 0), CAIRN_EMISMATCH);

	assert_int_equal(cairn_cid_compute(&cid, 0, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256,
					   "hello world", 11), 0);
	assert_int_equal(cairn_cid_to_string(s, &cid), 46);
	assert_string_equal(s, HELLO_V0);
	assert_int_equal(cairn_cid_verify(&cid, "hello world", 11), 0);
	assert_int_equal(cairn_cid_verify(&cid, "Hello world", 11), CAIRN_EMISMATCH);
	assert_non_null(strstr(cairn_error_last(), HELLO_V0));
	/* v0 needs dag-pb and sha2-256 */
	assert_int_equal(cairn_cid_compute(&cid, 0, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					   "x", 1), CAIRN_EINVAL);
	assert_int_equal(cairn_cid_compute(&cid, 0, CAIRN_CODEC_DAG_PB, CAIRN_MH_BLAKE2B_256,
					   "x", 1), CAIRN_EINVAL);
}

static void test_blake2b(void **state)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid cid, parsed;
	uint8_t digest[CAIRN_MH_DIGEST_MAX];

	(void)state;
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_BLAKE2B_256,
					   "hello world", 11), 0);
	assert_true(cid.mh_code == CAIRN_MH_BLAKE2B_256);
	assert_int_equal(cid.digest_len, 32);
	assert_int_equal(cid.len, 38);
	assert_int_equal(cairn_cid_to_string(s, &cid), (int)strlen(HELLO_BLAKE));
	assert_string_equal(s, HELLO_BLAKE);
	parse_ok(&parsed, HELLO_BLAKE);
	assert_true(cairn_cid_equal(&parsed, &cid));
	assert_int_equal(cairn_cid_verify(&cid, "hello world", 11), 0);
	assert_int_equal(cairn_cid_verify(&cid, "hello world!", 12), CAIRN_EMISMATCH);
	/* the same data under sha2-256 is a different CID */
	assert_int_equal(cairn_cid_compute(&parsed, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					   "hello world", 11), 0);
	assert_false(cairn_cid_equal(&parsed, &cid));
	/* known BLAKE2b-256 of the empty string */
	assert_int_equal(cairn_multihash_sum(digest, CAIRN_MH_BLAKE2B_256, "", 0), 32);
	assert_int_equal(digest[0], 0x0e);
	assert_int_equal(digest[1], 0x57);
	assert_int_equal(digest[31], 0xa8);
	assert_int_equal(cairn_multihash_sum(digest, CAIRN_MH_SHA2_256, "", 0), 32);
	assert_int_equal(digest[0], 0xe3);
	assert_int_equal(digest[1], 0xb0);
	assert_int_equal(digest[31], 0x55);
}

static void test_verify_unsupported_hash(void **state)
{
	cairn_cid cid;
	uint8_t digest[CAIRN_MH_DIGEST_MAX];

	(void)state;
	parse_ok(&cid, "z8mWaJ1dZ9fH5EetPuRsj8jj26pXsgpsr");
	assert_int_equal(cairn_cid_verify(&cid, "x", 1), CAIRN_EUNSUPPORTED);
	assert_non_null(strstr(cairn_error_last(), "sha1"));
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, 0x11, "x", 1),
			 CAIRN_EUNSUPPORTED);
	assert_int_equal(cairn_multihash_sum(digest, 0x999999, "x", 1), CAIRN_EUNSUPPORTED);
	/* computed elsewhere (the piece part) */
	assert_int_equal(cairn_multihash_sum(digest, CAIRN_MH_SHA2_256_TRUNC254_PADDED, "x", 1),
			 CAIRN_EUNSUPPORTED);
}

static void test_identity(void **state)
{
	const uint8_t want[] = {0x00, 0x01, 0x02, 0x03, 0x04};
	char s[CAIRN_CID_MAX_STRING];
	uint8_t big[CAIRN_MH_IDENTITY_MAX + 1];
	cairn_cid cid, computed, back;
	int n;

	(void)state;
	parse_ok(&cid, "bafkqabiaaebagba");
	assert_int_equal(cid.version, 1);
	assert_true(cid.codec == CAIRN_CODEC_RAW);
	assert_true(cid.mh_code == CAIRN_MH_IDENTITY);
	assert_int_equal(cid.digest_len, 5);
	assert_memory_equal(cid.bytes + cid.digest_off, want, sizeof(want));
	assert_int_equal(cairn_cid_verify(&cid, want, sizeof(want)), 0);
	assert_int_equal(cairn_cid_verify(&cid, want, 4), CAIRN_EMISMATCH);
	assert_int_equal(cairn_cid_compute(&computed, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					   want, sizeof(want)), 0);
	assert_true(cairn_cid_equal(&computed, &cid));
	assert_int_equal(cairn_cid_hash(&computed), cairn_cid_hash(&cid));

	/* an empty identity digest is allowed */
	assert_int_equal(cairn_cid_compute(&computed, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					   "", 0), 0);
	assert_int_equal(computed.digest_len, 0);
	n = cairn_cid_to_string(s, &computed);
	assert_int_equal(n, strlen(s));
	parse_ok(&back, s);
	assert_true(cairn_cid_equal(&back, &computed));

	/* 128 bytes is the limit, 129 is refused everywhere */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	assert_int_equal(cairn_cid_compute(&computed, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					   big, CAIRN_MH_IDENTITY_MAX), 0);
	assert_int_equal(computed.digest_len, CAIRN_MH_IDENTITY_MAX);
	n = cairn_cid_to_string(s, &computed);
	assert_int_equal(n, strlen(s));
	parse_ok(&back, s);
	assert_true(cairn_cid_equal(&back, &computed));
	assert_int_equal(cairn_cid_verify(&back, big, CAIRN_MH_IDENTITY_MAX), 0);
	assert_int_equal(cairn_cid_verify(&back, big, sizeof(big)), CAIRN_ETOOBIG);

	assert_int_equal(cairn_cid_compute(&computed, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					   big, sizeof(big)), CAIRN_ETOOBIG);
	assert_int_equal(cairn_cid_from_digest(&computed, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY,
					       big, sizeof(big)), CAIRN_ETOOBIG);
	{
		/* 01 55 00 81 01 <129 bytes> */
		uint8_t bin[5 + sizeof(big)] = {0x01, 0x55, 0x00, 0x81, 0x01};

		memcpy(bin + 5, big, sizeof(big));
		assert_int_equal(cairn_cid_decode(&back, NULL, bin, sizeof(bin)), CAIRN_ETOOBIG);
		/* and at the limit it decodes */
		bin[3] = 0x80;
		assert_int_equal(cairn_cid_decode(&back, NULL, bin, sizeof(bin) - 1), 0);
		assert_int_equal(back.digest_len, 128);
	}
}

static void expect_decode_fails(const uint8_t *p, size_t len, int code)
{
	cairn_cid cid;
	size_t used = 12345;

	cairn_error_clear();
	assert_int_equal(cairn_cid_decode(&cid, &used, p, len), code);
	assert_int_equal(cairn_error_last_code(), code);
	assert_int_equal(used, 12345);
	assert_int_equal(cairn_cid_decode(&cid, NULL, p, len), code);
	assert_true(strcmp(cairn_error_last(), "no error") != 0);
}

static void test_binary_truncated_and_garbage(void **state)
{
	cairn_cid v0, v1;
	const uint8_t zero[] = {0x00, 0x55, 0x12, 0x00};
	const uint8_t two[] = {0x02, 0x55, 0x12, 0x00};
	const uint8_t cont[] = {0x80};
	const uint8_t nonmin[] = {0x81, 0x00, 0x55, 0x00, 0x00};
	const uint8_t short_sha[] = {0x01, 0x55, 0x12, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	const uint8_t len_over[] = {0x01, 0x55, 0x00, 0x05, 1, 2, 3};

	(void)state;
	parse_ok(&v0, FIXTURE_V0);
	parse_ok(&v1, HELLO_BLAKE);
	for (size_t n = 0; n < v0.len; n++)
		expect_decode_fails(v0.bytes, n, n < 2 ? (n == 1 ? CAIRN_EUNSUPPORTED : CAIRN_ECORRUPT)
						       : CAIRN_ECORRUPT);
	for (size_t n = 0; n < v1.len; n++)
		expect_decode_fails(v1.bytes, n, CAIRN_ECORRUPT);
	expect_decode_fails(zero, sizeof(zero), CAIRN_ECORRUPT);
	expect_decode_fails(two, sizeof(two), CAIRN_EUNSUPPORTED);
	expect_decode_fails(cont, sizeof(cont), CAIRN_ECORRUPT);
	expect_decode_fails(nonmin, sizeof(nonmin), CAIRN_ECORRUPT);
	expect_decode_fails(short_sha, sizeof(short_sha), CAIRN_ECORRUPT);
	expect_decode_fails(len_over, sizeof(len_over), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at byte"));
}

static void test_binary_extra_bytes(void **state)
{
	const char *strs[] = {FIXTURE_V0, HELLO_RAW, "bafkqabiaaebagba", HELLO_BLAKE};

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		uint8_t buf[CAIRN_CID_MAX_BYTES + 4];
		cairn_cid cid, got;
		size_t used = 0;

		parse_ok(&cid, strs[i]);
		memcpy(buf, cid.bytes, cid.len);
		buf[cid.len] = 0x01;
		buf[cid.len + 1] = 0x55;
		/* exact length works either way */
		assert_int_equal(cairn_cid_decode(&got, NULL, buf, cid.len), 0);
		assert_true(cairn_cid_equal(&got, &cid));
		/* with extra bytes: refused without used_out, measured with it */
		cairn_error_clear();
		assert_int_equal(cairn_cid_decode(&got, NULL, buf, cid.len + 2u), CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "extra"));
		if (!strstr(cairn_error_last(), cid.len == 34 ? "at byte 34" : "at byte"))
			fail_msg("%s", cairn_error_last());
		memset(&got, 0, sizeof(got));
		assert_int_equal(cairn_cid_decode(&got, &used, buf, cid.len + 2u), 0);
		assert_int_equal(used, cid.len);
		assert_true(cairn_cid_equal(&got, &cid));
		assert_int_equal(cairn_cid_cmp(&got, &cid), 0);
	}
}

/* cairn_cid_decode knows the commonest CIDs by their first bytes: every
 * field as cairn_cid_from_digest sets it, for one-byte codecs (the fast
 * path) and two-byte ones (the varints), for both digests it knows and a
 * hash it does not. */
static void test_decode_common_prefixes(void **state)
{
	const uint64_t codecs[] = {0x00, CAIRN_CODEC_RAW, CAIRN_CODEC_DAG_CBOR, 0x7f, 0x80, 0x0129};
	const uint64_t hashes[] = {CAIRN_MH_SHA2_256, CAIRN_MH_BLAKE2B_256, 0xb260};
	uint8_t digest[32];

	(void)state;
	for (size_t i = 0; i < sizeof(digest); i++)
		digest[i] = (uint8_t)(i * 37 + 1);
	for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
		for (size_t h = 0; h < sizeof(hashes) / sizeof(hashes[0]); h++) {
			cairn_cid want, got;
			size_t used = 0;

			assert_int_equal(cairn_cid_from_digest(&want, 1, codecs[c], hashes[h], digest, 32), 0);
			memset(&got, 0xee, sizeof(got));
			assert_int_equal(cairn_cid_decode(&got, &used, want.bytes, want.len), 0);
			assert_int_equal(used, want.len);
			assert_int_equal(got.len, want.len);
			assert_memory_equal(got.bytes, want.bytes, want.len);
			assert_int_equal(got.version, 1);
			assert_int_equal(got.codec, codecs[c]);
			assert_int_equal(got.mh_code, hashes[h]);
			assert_int_equal(got.mh_off, want.mh_off);
			assert_int_equal(got.digest_off, want.digest_off);
			assert_int_equal(got.digest_len, 32);
			assert_memory_equal(got.bytes + got.digest_off, digest, 32);
			assert_true(cairn_cid_equal(&got, &want));
			/* one byte short: refused, as by the varints */
			expect_decode_fails(want.bytes, want.len - 1u, CAIRN_ECORRUPT);
		}
	}
}

static void expect_parse_fails(const char *s, int code)
{
	cairn_cid cid;

	int rc;

	cairn_error_clear();
	rc = cairn_cid_parse(&cid, s, strlen(s));
	if (rc != code)
		fail_msg("'%s': %d, not %d (%s)", s, rc, code, cairn_error_last());
	assert_int_equal(cairn_error_last_code(), code);
}

static void test_parse_rejects(void **state)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid v0, v1;
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	/* a v0 string must not carry a multibase prefix */
	expect_parse_fails("z" FIXTURE_V0, CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "base58btc"));
	parse_ok(&v0, FIXTURE_V0);
	assert_int_equal(cairn_multibase_encode(&b, CAIRN_BASE32, v0.bytes, v0.len), 0);
	expect_parse_fails((const char *)b.data, CAIRN_ECORRUPT);
	cairn_buf_free(&b);
	/* ... and a v0 has no other string form */
	assert_int_equal(cairn_cid_format(s, &v0, CAIRN_BASE32), CAIRN_EINVAL);
	assert_int_equal(cairn_cid_format(s, &v0, CAIRN_BASE16), CAIRN_EINVAL);

	/* bad characters, wrong lengths */
	expect_parse_fails("QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJB0", CAIRN_ECORRUPT);
	/* no multibase prefix is 'Q': a "Qm" string is a v0 of the wrong length */
	expect_parse_fails("QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJB", CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "46"));
	expect_parse_fails("QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBYY", CAIRN_ECORRUPT);
	expect_parse_fails("Qm", CAIRN_ECORRUPT);
	expect_parse_fails("Q", CAIRN_EUNSUPPORTED);
	/* a Qm string of the right length that is not 34 bytes */
	expect_parse_fails("Qmzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", CAIRN_ECORRUPT);
	expect_parse_fails("", CAIRN_ECORRUPT);
	expect_parse_fails("b", CAIRN_ECORRUPT);
	expect_parse_fails("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5", CAIRN_ECORRUPT);
	expect_parse_fails("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5ea",
			   CAIRN_ECORRUPT);
	expect_parse_fails("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5E",
			   CAIRN_ECORRUPT);
	expect_parse_fails("Bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
			   CAIRN_ECORRUPT);
	expect_parse_fails("xafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
			   CAIRN_EUNSUPPORTED);
	/* the message names the string */
	assert_non_null(strstr(cairn_error_last(), "xafkrei"));

	/* upper-case base32 is the same CID */
	parse_ok(&v1, "BAFKREIFZJUT3TE2NHYEKKLSS27NH3K72YSCO7Y32KOAO5EEI66WOF36N5E");
	parse_ok(&v0, HELLO_RAW);
	assert_true(cairn_cid_equal(&v0, &v1));
}

static void test_other_bases(void **state)
{
	static const struct {
		cairn_multibase base;
		const char *s;
	} forms[] = {
		{CAIRN_BASE16, "f01551220b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"},
		{CAIRN_BASE64, "mAVUSILlNJ7mTTT4IpS5S19p9q/rEhO/jelOA7pCI96zi783p"},
		{CAIRN_BASE64URL, "uAVUSILlNJ7mTTT4IpS5S19p9q_rEhO_jelOA7pCI96zi783p"},
		{CAIRN_BASE58BTC, "zb2rhj7crUKTQYRGCRATFaQ6YFLTde2YzdqbbhAASkL9uRDXn"},
		{CAIRN_BASE32, HELLO_RAW},
	};
	cairn_cid cid, back;

	(void)state;
	parse_ok(&cid, HELLO_RAW);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char s[CAIRN_CID_MAX_STRING];

		assert_int_equal(cairn_cid_format(s, &cid, forms[i].base), (int)strlen(forms[i].s));
		assert_string_equal(s, forms[i].s);
		parse_ok(&back, s);
		assert_true(cairn_cid_equal(&back, &cid));
	}
	{
		char s[CAIRN_CID_MAX_STRING];

		assert_int_equal(cairn_cid_format(s, &cid, (cairn_multibase)'x'), CAIRN_EINVAL);
	}
}

static void test_from_digest(void **state)
{
	uint8_t digest[32] = {1, 2, 3};
	char s[CAIRN_CID_MAX_STRING];
	cairn_cid cid, back;

	(void)state;
	assert_int_equal(cairn_cid_from_digest(&cid, 2, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					       digest, 32), CAIRN_EINVAL);
	assert_int_equal(cairn_cid_from_digest(&cid, 0, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256,
					       digest, 31), CAIRN_EINVAL);
	assert_int_equal(cairn_cid_from_digest(&cid, 1, 1ull << 63, CAIRN_MH_SHA2_256,
					       digest, 32), CAIRN_EINVAL);
	assert_int_equal(cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW, 1ull << 63,
					       digest, 32), CAIRN_EINVAL);
	/* the biggest CID: 9-byte codec and hash varints, 128-byte digest */
	{
		uint8_t big[CAIRN_MH_DIGEST_MAX];

		memset(big, 0xab, sizeof(big));
		assert_int_equal(cairn_cid_from_digest(&cid, 1, (1ull << 63) - 1, (1ull << 63) - 1,
						       big, sizeof(big)), 0);
		assert_int_equal(cid.len, 1 + 9 + 9 + 2 + 128);
		assert_true(cid.len <= CAIRN_CID_MAX_BYTES);
		assert_int_equal(cairn_cid_format(s, &cid, CAIRN_BASE16), 1 + 2 * cid.len);
		parse_ok(&back, s);
		assert_true(cairn_cid_equal(&back, &cid));
		assert_true(back.codec == (1ull << 63) - 1);
		int n = cairn_cid_format(s, &cid, CAIRN_BASE58BTC);

		assert_int_equal(n, strlen(s));
		parse_ok(&back, s);
		assert_true(cairn_cid_equal(&back, &cid));
	}
}

static void test_cmp_equal_hash(void **state)
{
	static const char *const strs[] = {
		FIXTURE_V0, FIXTURE_V1, HELLO_V0, HELLO_RAW, HELLO_BLAKE, "bafkqabiaaebagba",
		"bafkqaaa", "z8mWaJ1dZ9fH5EetPuRsj8jj26pXsgpsr",
		"zdpuAtX7ZibcWdSKQwiDCkPjWwRvtcKCPku9H7LhgA4qJW4Wk",
	};
	enum { N = sizeof(strs) / sizeof(strs[0]) };
	cairn_cid cids[N], again;

	(void)state;
	for (size_t i = 0; i < N; i++)
		parse_ok(&cids[i], strs[i]);
	for (size_t i = 0; i < N; i++) {
		/* a copy made another way is equal, orders as equal, hashes the same */
		parse_ok(&again, strs[i]);
		assert_true(cairn_cid_equal(&cids[i], &again));
		assert_int_equal(cairn_cid_cmp(&cids[i], &again), 0);
		assert_true(cairn_cid_hash(&cids[i]) == cairn_cid_hash(&again));
		for (size_t j = 0; j < N; j++) {
			int c = cairn_cid_cmp(&cids[i], &cids[j]), r = cairn_cid_cmp(&cids[j], &cids[i]);
			size_t n = cids[i].len < cids[j].len ? cids[i].len : cids[j].len;
			int m = memcmp(cids[i].bytes, cids[j].bytes, n);

			if (!m)
				m = cids[i].len < cids[j].len ? -1 : cids[i].len > cids[j].len;
			assert_int_equal(c < 0, m < 0);
			assert_int_equal(c > 0, m > 0);
			assert_int_equal(c < 0, r > 0);
			assert_int_equal(c == 0, i == j);
			assert_int_equal(cairn_cid_equal(&cids[i], &cids[j]), i == j);
			/* The hash is of the multihash, so a CIDv0 and its CIDv1
			 * (or another codec over the same bytes) hash alike. */
			if (cairn_cid_multihash_equal(&cids[i], &cids[j]))
				assert_true(cairn_cid_hash(&cids[i]) == cairn_cid_hash(&cids[j]));
			else
				assert_true(cairn_cid_hash(&cids[i]) != cairn_cid_hash(&cids[j]));
		}
	}
	/* a CID that is a prefix of another sorts first */
	{
		cairn_cid a, b;

		assert_int_equal(cairn_cid_compute(&a, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY, "ab", 2), 0);
		assert_int_equal(cairn_cid_compute(&b, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY, "ab", 2), 0);
		b.bytes[b.len++] = 0; /* not a valid CID, but cmp orders bytes */
		assert_true(cairn_cid_cmp(&a, &b) < 0);
		assert_true(cairn_cid_cmp(&b, &a) > 0);
		assert_false(cairn_cid_equal(&a, &b));
	}
}

static void test_multihash_decode(void **state)
{
	const uint8_t mh[] = {0x00, 0x03, 'a', 'b', 'c', 0xff};
	const uint8_t *digest = NULL;
	uint64_t code = 99;
	size_t dlen = 0, used = 0;

	(void)state;
	assert_int_equal(cairn_multihash_decode(&code, &digest, &dlen, &used, mh, sizeof(mh)), 0);
	assert_true(code == CAIRN_MH_IDENTITY);
	assert_ptr_equal(digest, mh + 2);
	assert_int_equal(dlen, 3);
	assert_int_equal(used, 5);
	assert_int_equal(cairn_multihash_decode(&code, &digest, &dlen, &used, mh, 4), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "at byte 2"));
	assert_int_equal(cairn_multihash_decode(&code, &digest, &dlen, &used, mh, 1), CAIRN_ECORRUPT);
	assert_int_equal(cairn_multihash_decode(&code, &digest, &dlen, &used, mh, 0), CAIRN_ECORRUPT);
}

static void test_names(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_string_equal(cairn_codec_name(CAIRN_CODEC_DAG_CBOR), "dag-cbor");
	assert_string_equal(cairn_codec_name(CAIRN_CODEC_DAG_PB), "dag-pb");
	assert_string_equal(cairn_codec_name(CAIRN_CODEC_RAW), "raw");
	assert_string_equal(cairn_codec_name(CAIRN_CODEC_DAG_JSON), "dag-json");
	assert_null(cairn_codec_name(0x123456));
	assert_int_equal(cairn_codec_from_name(&v, "dag-cbor"), 0);
	assert_true(v == 0x71);
	assert_int_equal(cairn_codec_from_name(&v, "0x55"), 0);
	assert_true(v == 0x55);
	assert_int_equal(cairn_codec_from_name(&v, "112"), 0);
	assert_true(v == 0x70);
	assert_int_equal(cairn_codec_from_name(&v, "fil-commitment-unsealed"), 0);
	assert_true(v == 0xf101);
	v = 7;
	assert_int_equal(cairn_codec_from_name(&v, "dag-cbr"), CAIRN_EINVAL);
	assert_int_equal(cairn_codec_from_name(&v, "0x71z"), CAIRN_EINVAL);
	assert_int_equal(cairn_codec_from_name(&v, "0x8000000000000000"), CAIRN_EINVAL);
	assert_int_equal(cairn_codec_from_name(&v, "99999999999999999999999"), CAIRN_EINVAL);
	assert_int_equal(cairn_codec_from_name(&v, ""), CAIRN_EINVAL);
	assert_true(v == 7);

	assert_string_equal(cairn_multihash_name(CAIRN_MH_SHA2_256), "sha2-256");
	assert_string_equal(cairn_multihash_name(CAIRN_MH_BLAKE2B_256), "blake2b-256");
	assert_string_equal(cairn_multihash_name(CAIRN_MH_IDENTITY), "identity");
	assert_null(cairn_multihash_name(0x777777));
	assert_int_equal(cairn_multihash_from_name(&v, "blake2b-256"), 0);
	assert_true(v == 0xb220);
	assert_int_equal(cairn_multihash_from_name(&v, "sha2-256"), 0);
	assert_true(v == 0x12);
	assert_int_equal(cairn_multihash_from_name(&v, "md5"), CAIRN_EINVAL);
}

/* The shared CID set: whole-CID and multihash membership, growth, free. */
static void test_cid_set(void **state)
{
	cairn_cid_set whole = CAIRN_CID_SET_INIT, by_mh = CAIRN_CID_SET_INIT;
	cairn_cid v0, v1, other;
	bool added;

	(void)state;
	by_mh.by_multihash = true;
	assert_int_equal(cairn_cid_compute(&v0, 0, CAIRN_CODEC_DAG_PB, CAIRN_MH_SHA2_256, "x", 1), 0);
	assert_int_equal(cairn_cid_convert(&v1, &v0, 1), 0);
	assert_false(cairn_cid_set_has(&whole, &v0));
	assert_int_equal(cairn_cid_set_add(&whole, &v0, &added), 0);
	assert_true(added);
	assert_int_equal(cairn_cid_set_add(&whole, &v0, &added), 0);
	assert_false(added);
	/* a CIDv1 of the same block is another member of a whole-CID set ... */
	assert_false(cairn_cid_set_has(&whole, &v1));
	/* ... and the same member of a multihash set */
	assert_int_equal(cairn_cid_set_add(&by_mh, &v0, &added), 0);
	assert_true(cairn_cid_set_has(&by_mh, &v1));
	assert_int_equal(cairn_cid_set_add(&by_mh, &v1, &added), 0);
	assert_false(added);
	/* growth keeps every member */
	for (unsigned i = 0; i < 5000; i++) {
		assert_int_equal(cairn_cid_compute(&other, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, &i, sizeof(i)), 0);
		assert_int_equal(cairn_cid_set_add(&whole, &other, &added), 0);
		assert_true(added);
	}
	assert_int_equal(whole.len, 5001);
	for (unsigned i = 0; i < 5000; i++) {
		assert_int_equal(cairn_cid_compute(&other, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, &i, sizeof(i)), 0);
		assert_true(cairn_cid_set_has(&whole, &other));
	}
	assert_true(cairn_cid_set_has(&whole, &v0));
	/* allocation failure leaves the set as it was */
	cairn_cid_set_free(&whole);
	cairn_alloc_fail_after(1, false);
	assert_int_equal(cairn_cid_set_add(&whole, &v0, &added), CAIRN_ENOMEM);
	assert_false(added);
	assert_int_equal(whole.len, 0);
	cairn_cid_set_free(&whole);
	cairn_cid_set_free(&by_mh);
	assert_true(by_mh.by_multihash);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_cid_names),
		cmocka_unit_test(test_fixture_file_names),
		cmocka_unit_test(test_known_layout),
		cmocka_unit_test(test_v0_v1_conversion),
		cmocka_unit_test(test_compute_and_verify),
		cmocka_unit_test(test_blake2b),
		cmocka_unit_test(test_verify_unsupported_hash),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_binary_truncated_and_garbage),
		cmocka_unit_test(test_binary_extra_bytes),
		cmocka_unit_test(test_decode_common_prefixes),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_other_bases),
		cmocka_unit_test(test_from_digest),
		cmocka_unit_test(test_cmp_equal_hash),
		cmocka_unit_test(test_cid_set),
		cmocka_unit_test(test_multihash_decode),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
