/* test_dagjson.c: the DAG-JSON codec against the codec fixtures (both ways and
 * across to DAG-CBOR) and against the edge cases of JSON that the fixtures miss. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

static char fixtures[4096];

/* ---------------------------------------------------------------- helpers */

typedef struct {
	cairn_arena *arena;
	cairn_node *root;
	int rc;
} decoded;

static decoded decode_n(const void *p, size_t n)
{
	decoded d = {NULL, NULL, 0};

	assert_int_equal(cairn_arena_new(&d.arena), 0);
	d.rc = cairn_dagjson_decode(&d.root, d.arena, p, n);
	if (d.rc)
		assert_null(d.root);
	return d;
}

static decoded decode_s(const char *s)
{
	return decode_n(s, strlen(s));
}

static void release(decoded *d)
{
	cairn_arena_free(d->arena);
	d->arena = NULL;
}

/* Decodes `in`, which must succeed, and checks its canonical encoding. */
static void check_canon(const char *in, const char *want)
{
	decoded d = decode_s(in);
	cairn_buf out = CAIRN_BUF_INIT;

	if (d.rc)
		fail_msg("decoding %s failed: %s", in, cairn_error_last());
	assert_int_equal(cairn_dagjson_encode(&out, d.root), 0);
	if (strcmp((const char *)out.data, want))
		fail_msg("%s encodes as %s, want %s", in, (const char *)out.data, want);
	cairn_buf_free(&out);
	release(&d);
}

/* Decoding `in` must fail with `code`, and the message must name `at`. */
static void check_bad_n(const char *in, size_t n, int code, const char *at)
{
	decoded d = decode_n(in, n);

	if (d.rc != code)
		fail_msg("decoding '%.*s' gave %d (%s), want %d", (int)n, in, d.rc,
			 d.rc ? cairn_error_last() : "ok", code);
	if (!strstr(cairn_error_last(), at))
		fail_msg("decoding '%.*s': message \"%s\" does not say \"%s\"", (int)n, in,
			 cairn_error_last(), at);
	assert_non_null(strstr(cairn_error_last(), "dag-json: "));
	release(&d);
}

static void check_bad(const char *in, const char *at)
{
	check_bad_n(in, strlen(in), CAIRN_ECORRUPT, at);
}

static void encode_expect(const cairn_node *n, const char *want)
{
	cairn_buf out = CAIRN_BUF_INIT;

	if (cairn_dagjson_encode(&out, n))
		fail_msg("encoding failed: %s", cairn_error_last());
	if (strcmp((const char *)out.data, want))
		fail_msg("encoded as %s, want %s", (const char *)out.data, want);
	cairn_buf_free(&out);
}

static bool read_file(cairn_buf *b, const char *dir, const char *name)
{
	char path[16384];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return cairn_file_read_all(b, path, 1 << 24) == 0;
}

static bool bytes_equal(const cairn_buf *a, const cairn_buf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

/* --------------------------------------------------------------- fixtures */

/* Finds the .dag-json and .dag-cbor files of one fixture directory;
 * `json_cid` gets the json file's name without its extension. */
static void load_pair(const char *dir, char *json_cid, size_t cid_size, cairn_buf *json,
		      cairn_buf *cbor)
{
	struct dirent *e;
	DIR *dh = opendir(dir);
	bool have_json = false, have_cbor = false;

	assert_non_null(dh);
	while ((e = readdir(dh))) {
		const char *dot = strrchr(e->d_name, '.');

		if (e->d_name[0] == '.' || !dot)
			continue;
		if (!strcmp(dot, ".dag-json")) {
			snprintf(json_cid, cid_size, "%.*s", (int)(dot - e->d_name), e->d_name);
			assert_true(read_file(json, dir, e->d_name));
			have_json = true;
		} else if (!strcmp(dot, ".dag-cbor")) {
			assert_true(read_file(cbor, dir, e->d_name));
			have_cbor = true;
		}
	}
	closedir(dh);
	if (!have_json || !have_cbor)
		fail_msg("%s: missing a .dag-json or .dag-cbor file", dir);
}

static void check_fixture(const char *name, const char *dir)
{
	cairn_buf json = CAIRN_BUF_INIT, cbor = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	char cid_name[256], str[CAIRN_CID_MAX_STRING];
	cairn_node *from_json, *from_cbor;
	cairn_arena *arena;
	cairn_cid cid;

	load_pair(dir, cid_name, sizeof(cid_name), &json, &cbor);
	assert_int_equal(cairn_arena_new(&arena), 0);

	/* The file name is the CID of its bytes. */
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_DAG_JSON, CAIRN_MH_SHA2_256,
					   json.data, json.len), 0);
	assert_true(cairn_cid_to_string(str, &cid) > 0);
	if (strcmp(str, cid_name))
		fail_msg("%s: CID of the dag-json bytes is %s, file says %s", name, str, cid_name);

	/* dag-json -> dag-json gives the same bytes. */
	if (cairn_dagjson_decode(&from_json, arena, json.data, json.len))
		fail_msg("%s: decode failed: %s", name, cairn_error_last());
	assert_int_equal(cairn_dagjson_encode(&out, from_json), 0);
	if (!bytes_equal(&out, &json))
		fail_msg("%s: re-encoded as %.*s", name, (int)(out.len > 300 ? 300 : out.len),
			 (const char *)out.data);
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_DAG_JSON, CAIRN_MH_SHA2_256,
					   out.data, out.len), 0);
	assert_true(cairn_cid_to_string(str, &cid) > 0);
	assert_string_equal(str, cid_name);

	/* dag-cbor -> dag-json gives the same bytes. */
	cairn_buf_clear(&out);
	if (cairn_dagcbor_decode(&from_cbor, arena, cbor.data, cbor.len))
		fail_msg("%s: dag-cbor decode failed: %s", name, cairn_error_last());
	assert_int_equal(cairn_dagjson_encode(&out, from_cbor), 0);
	if (!bytes_equal(&out, &json))
		fail_msg("%s: dag-cbor -> dag-json gives %.*s", name,
			 (int)(out.len > 300 ? 300 : out.len), (const char *)out.data);

	/* dag-json -> dag-cbor gives the dag-cbor bytes. */
	cairn_buf_clear(&out);
	assert_int_equal(cairn_dagcbor_encode(&out, from_json), 0);
	if (!bytes_equal(&out, &cbor))
		fail_msg("%s: dag-json -> dag-cbor differs", name);

	cairn_buf_free(&json);
	cairn_buf_free(&cbor);
	cairn_buf_free(&out);
	cairn_arena_free(arena);
}

static void test_fixtures(void **state)
{
	char dir[8192], sub[16384];
	struct dirent *e;
	unsigned n = 0;
	DIR *dh;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/codec/fixtures", fixtures);
	dh = opendir(dir);
	assert_non_null(dh);
	while ((e = readdir(dh))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		check_fixture(e->d_name, sub);
		n++;
	}
	closedir(dh);
	/* 128 fixtures at the pinned commit: catch a missing directory. */
	assert_true(n >= 100);
}

/* The negative fixture file is JSON itself: read it with the codec under test,
 * then every "hex" entry must fail to decode. */
static void test_negative_fixtures(void **state)
{
	cairn_buf file = CAIRN_BUF_INIT;
	char dir[8192];
	decoded list;
	size_t i;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/codec/negative-fixtures/dag-json/decode", fixtures);
	assert_true(read_file(&file, dir, "duplicate-keys.json"));
	list = decode_n(file.data, file.len);
	assert_int_equal(list.rc, 0);
	assert_int_equal(list.root->kind, CAIRN_KIND_LIST);
	assert_true(list.root->v.list.len >= 1);
	for (i = 0; i < list.root->v.list.len; i++) {
		const cairn_node *hex = cairn_node_map_get(&list.root->v.list.items[i], "hex");
		cairn_buf raw = CAIRN_BUF_INIT;
		decoded d;

		assert_non_null(hex);
		assert_int_equal(hex->kind, CAIRN_KIND_STRING);
		assert_int_equal(cairn_base_decode(&raw, CAIRN_BASE16, (const char *)hex->v.bytes.ptr,
						   hex->v.bytes.len), 0);
		d = decode_n(raw.data, raw.len);
		assert_int_equal(d.rc, CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "appears twice"));
		release(&d);
		cairn_buf_free(&raw);
	}
	release(&list);
	cairn_buf_free(&file);
}

/* ---------------------------------------------------------------- strings */

static void test_string_escapes_decode(void **state)
{
	static const char want[] = "a\"b\\c/d\b\f\n\r\t\x01\x1f\xc3\xa9\xe4\xb8\xad\x7f";
	const char *in = "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u001F\\u00e9\\u4E2D\x7f\"";
	decoded d = decode_s(in);

	(void)state;
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->kind, CAIRN_KIND_STRING);
	assert_int_equal(d.root->v.bytes.len, sizeof(want) - 1);
	assert_memory_equal(d.root->v.bytes.ptr, want, sizeof(want) - 1);
	/* With escapes the string is a decoded copy, not the input. */
	assert_true(d.root->v.bytes.ptr < (const uint8_t *)in ||
		    d.root->v.bytes.ptr >= (const uint8_t *)in + strlen(in));
	release(&d);

	/* \u0000 is a NUL inside the string, not its end. */
	d = decode_s("\"a\\u0000b\"");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->v.bytes.len, 3);
	assert_memory_equal(d.root->v.bytes.ptr, "a\0b", 3);
	release(&d);
}

static void test_string_borrows_input(void **state)
{
	const char *in = "[\"plain \xc4\x8c\", \"\"]";
	decoded d = decode_s(in);

	(void)state;
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->v.list.len, 2);
	assert_ptr_equal(d.root->v.list.items[0].v.bytes.ptr, (const uint8_t *)in + 2);
	assert_int_equal(d.root->v.list.items[0].v.bytes.len, 8);
	assert_int_equal(d.root->v.list.items[1].v.bytes.len, 0);
	release(&d);
}

static void test_string_escapes_encode(void **state)
{
	/* What JSON.stringify gives for U+0000..U+001F, '"', '\\', '/', DEL,
	 * 'é' and U+2028: only the first 34 are escaped. */
	static const char want[] =
		"\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
		"\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
		"\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\/\x7f\xc3\xa9\xe2\x80\xa8\"";
	uint8_t s[64];
	size_t n = 0;
	cairn_node node;

	(void)state;
	for (int c = 0; c < 32; c++)
		s[n++] = (uint8_t)c;
	memcpy(s + n, "\"\\/\x7f\xc3\xa9\xe2\x80\xa8", 9);
	n += 9;
	node.kind = CAIRN_KIND_STRING;
	node.v.bytes.ptr = s;
	node.v.bytes.len = n;
	encode_expect(&node, want);

	/* And it reads back as the same string. */
	decoded d = decode_s(want);
	assert_int_equal(d.rc, 0);
	assert_true(cairn_node_equal(d.root, &node));
	release(&d);
}

static void test_surrogates(void **state)
{
	decoded d;

	(void)state;
	d = decode_s("\"\\ud83d\\ude00\"");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->v.bytes.len, 4);
	assert_memory_equal(d.root->v.bytes.ptr, "\xf0\x9f\x98\x80", 4);
	release(&d);
	d = decode_s("\"x\\uD800\\uDC00\\uDBFF\\uDFFF\"");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->v.bytes.len, 9);
	assert_memory_equal(d.root->v.bytes.ptr, "x\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 9);
	release(&d);
	/* The pair is written raw on the way out. */
	check_canon("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");

	check_bad("\"\\ud83d\"", "at byte 1: lone high surrogate");
	check_bad("\"\\ud83dx\"", "at byte 1: lone high surrogate");
	check_bad("\"\\ud83d\\u0041\"", "at byte 1: lone high surrogate");
	check_bad("\"\\ud83d\\ud83d\"", "at byte 1: lone high surrogate");
	check_bad("\"ab\\ude00\"", "at byte 3: lone low surrogate");
	check_bad("\"\\ud83d\\ude0\"", "at byte 12: \\u needs four hex digits");
	/* A surrogate written raw in UTF-8 is invalid UTF-8. */
	check_bad("\"\xed\xa0\xbd\"", "at byte 1: string is not valid UTF-8");
}

static void test_string_errors(void **state)
{
	(void)state;
	check_bad("\"abc", "at byte 0: string never ends");
	check_bad("\"abc\\\"", "at byte 0: string never ends");
	check_bad("\"a\x01\"", "at byte 2: control character 0x01");
	check_bad("\"a\tb\"", "at byte 2: control character 0x09");
	check_bad("\"\xff\"", "at byte 1: string is not valid UTF-8");
	check_bad("\"ab\xc3\"", "at byte 3: string is not valid UTF-8");
	check_bad("\"\\x\"", "at byte 1: bad escape \\'x'");
	check_bad("\"\\u12g4\"", "at byte 5: \\u needs four hex digits");
	check_bad("\"\\u12\"", "at byte 5");
	check_bad("\"\\n\xc0\x80\"", "at byte 3: string is not valid UTF-8");
	check_bad("{\"a\xff\":1}", "at byte 3: string is not valid UTF-8");
}

/* --------------------------------------------------------------- integers */

static void check_int(const char *in, uint64_t mag, bool neg, const char *canon)
{
	decoded d = decode_s(in);

	if (d.rc)
		fail_msg("%s: %s", in, cairn_error_last());
	assert_int_equal(d.root->kind, CAIRN_KIND_INT);
	assert_true(d.root->v.i.mag == mag);
	assert_int_equal(d.root->v.i.neg, neg);
	encode_expect(d.root, canon);
	release(&d);
}

static void test_ints(void **state)
{
	(void)state;
	check_int("0", 0, false, "0");
	check_int("-0", 0, false, "0");
	check_int("1", 1, false, "1");
	check_int("-1", 0, true, "-1");
	check_int("9007199254740993", 9007199254740993ull, false, "9007199254740993");
	check_int("9223372036854775807", INT64_MAX, false, "9223372036854775807");
	check_int("9223372036854775808", 9223372036854775808ull, false, "9223372036854775808");
	check_int("-9223372036854775808", 9223372036854775807ull, true, "-9223372036854775808");
	check_int("-9223372036854775809", 9223372036854775808ull, true, "-9223372036854775809");
	check_int("18446744073709551615", UINT64_MAX, false, "18446744073709551615");
	check_int("-18446744073709551615", UINT64_MAX - 1, true, "-18446744073709551615");
	check_int("-18446744073709551616", UINT64_MAX, true, "-18446744073709551616");
	check_int(" \t\r\n42\n", 42, false, "42");

	/* One past either end. */
	check_bad("18446744073709551616", "at byte 0: integer out of range");
	check_bad("-18446744073709551617", "at byte 0: integer out of range");
	check_bad("[1,99999999999999999999999]", "at byte 3: integer out of range");
	check_bad("-184467440737095516160", "at byte 0: integer out of range");
}

static void test_int_cbor_agrees(void **state)
{
	/* The extremes go through DAG-CBOR unchanged. */
	static const char *const in[] = {"-18446744073709551616", "18446744073709551615", "-1", "0"};

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		cairn_buf cbor = CAIRN_BUF_INIT;
		decoded d = decode_s(in[i]);
		cairn_node *back;

		assert_int_equal(d.rc, 0);
		assert_int_equal(cairn_dagcbor_encode(&cbor, d.root), 0);
		assert_int_equal(cairn_dagcbor_decode(&back, d.arena, cbor.data, cbor.len), 0);
		assert_true(cairn_node_equal(d.root, back));
		encode_expect(back, in[i]);
		cairn_buf_free(&cbor);
		release(&d);
	}
}

/* ----------------------------------------------------------------- floats */

static void check_float_out(double f, const char *want)
{
	cairn_node n;
	decoded d;

	n.kind = CAIRN_KIND_FLOAT;
	n.v.f = f;
	encode_expect(&n, want);
	/* What is written reads back as the same double, and as a float. */
	d = decode_s(want);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->kind, CAIRN_KIND_FLOAT);
	assert_memory_equal(&d.root->v.f, &f, sizeof(f));
	release(&d);
}

static double from_bits(uint64_t bits)
{
	double f;

	memcpy(&f, &bits, sizeof(f));
	return f;
}

static void test_float_format(void **state)
{
	(void)state;
	/* The fixtures' values. */
	check_float_out(0.5, "0.5");
	check_float_out(-0.5, "-0.5");
	check_float_out(1.1, "1.1");
	check_float_out(-1.1, "-1.1");
	check_float_out(1.1111111111111112, "1.1111111111111112");
	check_float_out(0.9999999999999999, "0.9999999999999999");
	check_float_out(82497.63712086187, "82497.63712086187");
	check_float_out(8.940696716308594e-8, "8.940696716308594e-8");
	check_float_out(-1e-323, "-1e-323");
	/* Number.prototype.toString's switch points: plain from 1e-6 up to
	 * below 1e21, exponent form (with an explicit '+') outside. */
	check_float_out(1e-6, "0.000001");
	check_float_out(1.5e-6, "0.0000015");
	check_float_out(1e-7, "1e-7");
	check_float_out(1.5e-7, "1.5e-7");
	check_float_out(1e20, "100000000000000000000.0");
	check_float_out(123e18, "123000000000000000000.0");
	check_float_out(1e21, "1e+21");
	check_float_out(1.5e300, "1.5e+300");
	check_float_out(DBL_MAX, "1.7976931348623157e+308");
	check_float_out(5e-324, "5e-324");
	check_float_out(DBL_MIN, "2.2250738585072014e-308");
	check_float_out(0.1, "0.1");
	check_float_out(0.1 + 0.2, "0.30000000000000004");
	check_float_out(1.0 / 3, "0.3333333333333333");
	check_float_out(123.456, "123.456");
	/* Integral floats keep a ".0" (as cborg adds) so they read back as
	 * floats, not integers. */
	check_float_out(1.0, "1.0");
	check_float_out(-2.0, "-2.0");
	check_float_out(9007199254740992.0, "9007199254740992.0");
	check_float_out(0.0, "0.0");
	check_float_out(-0.0, "-0.0");
	/* A power of two where the nearest 16 digits do not read back but the
	 * next 16 up do (7.120236347223044e-307 is another double). */
	check_float_out(from_bits(0x0060000000000000ull), "7.120236347223045e-307");
	check_float_out(from_bits(0x8060000000000000ull), "-7.120236347223045e-307");
}

static void test_float_refused(void **state)
{
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_node n;

	(void)state;
	n.kind = CAIRN_KIND_FLOAT;
	n.v.f = NAN;
	assert_int_equal(cairn_dagjson_encode(&out, &n), CAIRN_EINVAL);
	n.v.f = INFINITY;
	assert_int_equal(cairn_dagjson_encode(&out, &n), CAIRN_EINVAL);
	n.v.f = -INFINITY;
	assert_int_equal(cairn_dagjson_encode_pretty(&out, &n), CAIRN_EINVAL);
	assert_int_equal(out.len, 0);
	cairn_buf_free(&out);
}

static void check_float_in(const char *in, double want, const char *canon)
{
	decoded d = decode_s(in);

	if (d.rc)
		fail_msg("%s: %s", in, cairn_error_last());
	assert_int_equal(d.root->kind, CAIRN_KIND_FLOAT);
	if (memcmp(&d.root->v.f, &want, sizeof(want)))
		fail_msg("%s reads as %.17g, want %.17g", in, d.root->v.f, want);
	encode_expect(d.root, canon);
	release(&d);
}

static void test_float_parse(void **state)
{
	(void)state;
	check_float_in("1.5", 1.5, "1.5");
	check_float_in("1E3", 1000.0, "1000.0");
	check_float_in("1e+3", 1000.0, "1000.0");
	check_float_in("-1.25e-2", -0.0125, "-0.0125");
	check_float_in("0.0", 0.0, "0.0");
	check_float_in("-0.0", -0.0, "-0.0");
	check_float_in("0e0", 0.0, "0.0");
	check_float_in("1e-400", 0.0, "0.0");
	check_float_in("0.1000000000000000055511151231257827", 0.1, "0.1");
	check_float_in("100000000000000000000000e-23", 1.0, "1.0");
	check_float_in("0.00000000000000000000000000000000000000001e41", 1.0, "1.0");
	check_float_in("1e00000000000000000000000000000000000000001", 10.0, "10.0");
	check_float_in("2.4703282292062328e-324", 5e-324, "5e-324");
	check_float_in("1.7976931348623157e308", DBL_MAX, "1.7976931348623157e+308");

	check_bad("1e400", "at byte 0: number out of range");
	check_bad("-1e99999999999999999999", "at byte 0: number out of range");
	check_bad("1.7976931348623159e308", "at byte 0: number out of range");
}

/* ------------------------------------------------------------------ maps */

static void test_map_order(void **state)
{
	decoded d;

	(void)state;
	/* Keys are read in any order and kept in bytewise order... */
	d = decode_s("{\"b\":1,\"a\":2,\"aa\":3}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->v.map.len, 3);
	assert_memory_equal(d.root->v.map.entries[0].key, "a", 1);
	assert_memory_equal(d.root->v.map.entries[1].key, "aa", 2);
	assert_memory_equal(d.root->v.map.entries[2].key, "b", 1);
	release(&d);
	/* ...which is not DAG-CBOR's length-first order. */
	check_canon("{\"b\":1,\"aa\":2}", "{\"aa\":2,\"b\":1}");
	check_canon("{ \"z\" : [ ] , \"\" : { } }", "{\"\":{},\"z\":[]}");
	check_canon("{\"\xc3\xa9\":1,\"z\":2,\"Z\":3}", "{\"Z\":3,\"z\":2,\"\xc3\xa9\":1}");

	check_bad("{\"a\":1,\"a\":2}", "at byte 7: map key \"a\" appears twice");
	check_bad("{\"b\":1,\"a\":2,\"b\":3}", "at byte 13: map key \"b\" appears twice");
	/* The same key spelled differently is still the same key. */
	check_bad("{\"a\":1,\"\\u0061\":2}", "at byte 7: map key \"a\" appears twice");
}

static void test_map_encode_refusals(void **state)
{
	cairn_map_entry e[2];
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_node map;
	uint8_t bad[] = {'a', 0xff};

	(void)state;
	memset(e, 0, sizeof(e));
	e[0].key = (const uint8_t *)"k";
	e[0].key_len = 1;
	e[0].value.kind = CAIRN_KIND_NULL;
	e[1] = e[0];
	map.kind = CAIRN_KIND_MAP;
	map.v.map.entries = e;
	map.v.map.len = 2;
	assert_int_equal(cairn_buf_puts(&out, "kept"), 0);
	assert_int_equal(cairn_dagjson_encode(&out, &map), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "dag-json: "));
	/* A failed encoding leaves the buffer as it was. */
	assert_int_equal(out.len, 4);
	assert_string_equal((const char *)out.data, "kept");

	e[1].key = bad;
	e[1].key_len = 2;
	assert_int_equal(cairn_dagjson_encode(&out, &map), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "not valid UTF-8"));

	/* A lone "/" key would read back as a link or bytes. */
	e[0].key = (const uint8_t *)"/";
	map.v.map.len = 1;
	assert_int_equal(cairn_dagjson_encode(&out, &map), CAIRN_EINVAL);
	assert_int_equal(cairn_dagjson_encode_pretty(&out, &map), CAIRN_EINVAL);
	assert_int_equal(out.len, 4);
	cairn_buf_free(&out);

	/* With another key it is an ordinary map, both ways. */
	check_canon("{\"x\":true,\"/\":\"QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY\"}",
		    "{\"/\":\"QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY\",\"x\":true}");
	check_canon("{\"/\":{\"bytes\":\"oQ\"},\"a\":1}", "{\"/\":{\"bytes\":\"oQ\"},\"a\":1}");
}

/* ------------------------------------------------------- links and bytes */

static void test_links(void **state)
{
	static const char *const v0 = "QmQg1v4o9xdT3Q14wh4S7dxZkDjyZ9ssFzFzyep1YrVJBY";
	static const char *const v1 = "bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae";
	char in[512], want[512], str[CAIRN_CID_MAX_STRING];
	cairn_cid cid;
	decoded d;

	(void)state;
	snprintf(in, sizeof(in), "{ \"/\" : \"%s\" }", v0);
	d = decode_s(in);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->kind, CAIRN_KIND_LINK);
	assert_int_equal(d.root->v.link->version, 0);
	assert_true(cairn_cid_to_string(str, d.root->v.link) > 0);
	assert_string_equal(str, v0);
	snprintf(want, sizeof(want), "{\"/\":\"%s\"}", v0);
	encode_expect(d.root, want);
	release(&d);

	snprintf(in, sizeof(in), "[{\"/\":\"%s\"}]", v1);
	d = decode_s(in);
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->v.list.items[0].kind, CAIRN_KIND_LINK);
	assert_int_equal(cairn_cid_parse(&cid, v1, strlen(v1)), 0);
	assert_true(cairn_cid_equal(d.root->v.list.items[0].v.link, &cid));
	encode_expect(d.root, in);
	release(&d);

	/* Another multibase reads, and is written back in base32. */
	assert_int_equal(cairn_cid_parse(&cid, v1, strlen(v1)), 0);
	{
		char hex[CAIRN_CID_MAX_STRING];

		assert_true(cairn_cid_format(hex, &cid, CAIRN_BASE16) > 0);
		snprintf(in, sizeof(in), "{\"/\":\"%s\"}", hex);
		snprintf(want, sizeof(want), "{\"/\":\"%s\"}", v1);
		check_canon(in, want);
	}

	check_bad("{\"/\":\"notacid\"}", "at byte 5: link: ");
	check_bad("{\"/\":\"\"}", "at byte 5: link: ");
	check_bad("{\"/\": 1}", "at byte 0: a map whose only key is \"/\"");
	check_bad("[{\"/\":[]}]", "at byte 1: a map whose only key is \"/\"");
	check_bad("{\"/\":{\"byte\":\"oQ\"}}", "at byte 0: a map whose only key");
	check_bad("{\"/\":{\"bytes\":\"oQ\",\"x\":1}}", "at byte 0: a map whose only key");
}

static void test_bytes(void **state)
{
	decoded d;

	(void)state;
	d = decode_s("{\"/\":{\"bytes\":\"AAECAwT/\"}}");
	assert_int_equal(d.rc, 0);
	assert_int_equal(d.root->kind, CAIRN_KIND_BYTES);
	assert_int_equal(d.root->v.bytes.len, 6);
	assert_memory_equal(d.root->v.bytes.ptr, "\x00\x01\x02\x03\x04\xff", 6);
	encode_expect(d.root, "{\"/\":{\"bytes\":\"AAECAwT/\"}}");
	release(&d);

	check_canon("{\"/\":{\"bytes\":\"\"}}", "{\"/\":{\"bytes\":\"\"}}");
	check_canon("{ \"/\" : { \"bytes\" : \"oQ\" } }", "{\"/\":{\"bytes\":\"oQ\"}}");
	/* The padded form reads too (both references accept it). */
	check_canon("{\"/\":{\"bytes\":\"oQ==\"}}", "{\"/\":{\"bytes\":\"oQ\"}}");
	check_canon("{\"/\":{\"bytes\":\"YTE=\"}}", "{\"/\":{\"bytes\":\"YTE\"}}");

	check_bad("{\"/\":{\"bytes\":\"!!\"}}", "at byte 5: bytes: ");
	check_bad("{\"/\":{\"bytes\":\"oR\"}}", "at byte 5: bytes: ");
	check_bad("{\"/\":{\"bytes\":\"o\"}}", "at byte 5: bytes: ");
	check_bad("{\"/\":{\"bytes\":\"oQ=\"}}", "at byte 5: bytes: ");
	check_bad("{\"/\":{\"bytes\":\"-_8\"}}", "at byte 5: bytes: ");
	check_bad("{\"/\":{\"bytes\":1}}", "at byte 0: a map whose only key");
}

/* ------------------------------------------------------------ structure */

static void test_syntax_errors(void **state)
{
	(void)state;
	check_bad("", "at byte 0: unexpected end of input");
	check_bad("   ", "at byte 3: unexpected end of input");
	check_bad("[", "at byte 1: unexpected end of input");
	check_bad("[1", "at byte 0: list never ends");
	check_bad("[1,]", "at byte 3: expected a value, found ']'");
	check_bad("[,1]", "at byte 1: expected a value, found ','");
	check_bad("[1 2]", "at byte 3: expected ',' or ']', found '2'");
	check_bad("{", "at byte 0: map never ends");
	check_bad("{\"a\":1", "at byte 0: map never ends");
	check_bad("{\"a\" 1}", "at byte 5: expected ':' after a map key");
	check_bad("{\"a\":1,}", "at byte 7: expected a string as map key, found '}'");
	check_bad("{1:2}", "at byte 1: expected a string as map key");
	check_bad("{\"a\":1]", "at byte 6: expected ',' or '}'");
	check_bad("{'a':1}", "at byte 1: expected a string as map key, found '''");
	check_bad("01", "at byte 0: numbers must not have leading zeros");
	check_bad("-01", "at byte 1: numbers must not have leading zeros");
	check_bad("-", "at byte 1: expected a digit, found end of input");
	check_bad("-a", "at byte 1: expected a digit, found 'a'");
	check_bad("+1", "at byte 0: expected a value, found '+'");
	check_bad(".5", "at byte 0: expected a value");
	check_bad("1.", "at byte 2: expected a digit after the decimal point");
	check_bad("1.e5", "at byte 2: expected a digit after the decimal point");
	check_bad("1e", "at byte 2: expected a digit in the exponent");
	check_bad("1e+", "at byte 3: expected a digit in the exponent");
	check_bad("1.5.3", "at byte 3: 2 bytes after the end of the value");
	check_bad("tru", "at byte 0: unknown literal (expected true)");
	check_bad("nul", "at byte 0: unknown literal (expected null)");
	check_bad("True", "at byte 0: expected a value, found 'T'");
	check_bad("truex", "at byte 4: 1 bytes after the end of the value");
	check_bad("NaN", "at byte 0: expected a value, found 'N'");
	check_bad("Infinity", "at byte 0");
	check_bad("-Infinity", "at byte 1: expected a digit");
	check_bad("[1] x", "at byte 4: 1 bytes after the end of the value");
	check_bad("1 2", "at byte 2");
	check_bad("\xef\xbb\xbf" "1", "at byte 0: expected a value, found byte 0xef");
	check_bad("[1,\f2]", "at byte 3: expected a value, found byte 0x0c");
	check_bad_n("[1,\0]", 5, CAIRN_ECORRUPT, "at byte 3: expected a value, found byte 0x00");
	check_bad_n("1\0", 2, CAIRN_ECORRUPT, "at byte 1");
}

static void test_whitespace(void **state)
{
	(void)state;
	check_canon(" \t\r\n[ 1 ,\n\t2 , { \"a\" :\r\n null } , true,false ] \n",
		    "[1,2,{\"a\":null},true,false]");
	check_canon("\"\"", "\"\"");
	check_canon("[]", "[]");
	check_canon("{}", "{}");
	check_canon("[[],{},[[]]]", "[[],{},[[]]]");
}

static void test_depth(void **state)
{
	size_t n = CAIRN_IPLD_MAX_DEPTH + 1;
	char *s = malloc(6 * n + 2);
	cairn_node *chain = calloc(n + 1, sizeof(*chain));
	cairn_buf out = CAIRN_BUF_INIT;
	decoded d;

	(void)state;
	assert_non_null(s);
	assert_non_null(chain);
	memset(s, '[', n);
	memset(s + n, ']', n);
	/* CAIRN_IPLD_MAX_DEPTH levels decode; one more is too deep. */
	d = decode_n(s + 1, 2 * (n - 1));
	assert_int_equal(d.rc, 0);
	assert_int_equal(cairn_dagjson_encode(&out, d.root), 0);
	assert_int_equal(out.len, 2 * (n - 1));
	release(&d);
	check_bad_n(s, 2 * n, CAIRN_ETOOBIG, "at byte 1024: nested deeper than 1024");

	/* Maps count the same. */
	for (size_t i = 0; i < n; i++)
		memcpy(s + 5 * i, "{\"a\":", 5);
	s[5 * n] = '1';
	memset(s + 5 * n + 1, '}', n);
	check_bad_n(s, 6 * n + 1, CAIRN_ETOOBIG, "at byte 5120: nested deeper than 1024");
	d = decode_n(s + 5, 6 * n + 1 - 6);
	assert_int_equal(d.rc, 0);
	release(&d);

	/* The encoder refuses what the decoder would: trees built by hand
	 * may nest deeper. chain[i] is n + 1 - i lists deep. */
	for (size_t i = 0; i <= n; i++) {
		chain[i].kind = CAIRN_KIND_LIST;
		chain[i].v.list.items = i < n ? &chain[i + 1] : NULL;
		chain[i].v.list.len = i < n ? 1 : 0;
	}
	cairn_buf_clear(&out);
	assert_int_equal(cairn_dagjson_encode(&out, &chain[1]), CAIRN_ETOOBIG);
	assert_int_equal(out.len, 0);
	assert_int_equal(cairn_dagjson_encode(&out, &chain[2]), 0);
	assert_int_equal(out.len, 2 * CAIRN_IPLD_MAX_DEPTH);
	d = decode_n(out.data, out.len);
	assert_int_equal(d.rc, 0);
	release(&d);

	/* In JSON a link is one more level and bytes two. */
	chain[n].kind = CAIRN_KIND_BYTES;
	chain[n].v.bytes.ptr = (const uint8_t *)"\x01";
	chain[n].v.bytes.len = 1;
	assert_int_equal(cairn_dagjson_encode(&out, &chain[2]), CAIRN_ETOOBIG);
	assert_int_equal(cairn_dagjson_encode_pretty(&out, &chain[2]), CAIRN_ETOOBIG);
	cairn_buf_clear(&out);
	assert_int_equal(cairn_dagjson_encode(&out, &chain[3]), 0);
	d = decode_n(out.data, out.len);
	assert_int_equal(d.rc, 0);
	release(&d);
	{
		cairn_cid cid;

		assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, "", 0), 0);
		chain[n].kind = CAIRN_KIND_LINK;
		chain[n].v.link = &cid;
		cairn_buf_clear(&out);
		assert_int_equal(cairn_dagjson_encode(&out, &chain[1]), CAIRN_ETOOBIG);
		assert_int_equal(cairn_dagjson_encode(&out, &chain[2]), 0);
		d = decode_n(out.data, out.len);
		assert_int_equal(d.rc, 0);
		release(&d);
	}
	free(chain);
	free(s);
	cairn_buf_free(&out);
}

/* ----------------------------------------------------------------- pretty */

static void test_pretty(void **state)
{
	/* JSON.stringify(value, null, 2) plus a newline, for the same value. */
	static const char want[] =
		"{\n"
		"  \"a\": [\n"
		"    1,\n"
		"    2.5,\n"
		"    {\n"
		"      \"/\": \"bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae\"\n"
		"    }\n"
		"  ],\n"
		"  \"b\": {},\n"
		"  \"c\": [],\n"
		"  \"d\": {\n"
		"    \"/\": {\n"
		"      \"bytes\": \"AQI\"\n"
		"    }\n"
		"  },\n"
		"  \"e\": \"x\\n\"\n"
		"}\n";
	static const char in[] =
		"{\"e\":\"x\\n\",\"d\":{\"/\":{\"bytes\":\"AQI\"}},\"c\":[],\"b\":{},"
		"\"a\":[1,2.5,{\"/\":\"bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae\"}]}";
	cairn_buf out = CAIRN_BUF_INIT;
	decoded d = decode_s(in), back;

	(void)state;
	assert_int_equal(d.rc, 0);
	assert_int_equal(cairn_dagjson_encode_pretty(&out, d.root), 0);
	assert_string_equal((const char *)out.data, want);
	/* Pretty output is DAG-JSON too, if not canonical. */
	back = decode_n(out.data, out.len);
	assert_int_equal(back.rc, 0);
	assert_true(cairn_node_equal(d.root, back.root));
	release(&back);

	cairn_buf_clear(&out);
	assert_int_equal(cairn_dagjson_encode_pretty(&out, &d.root->v.map.entries[0].value.v.list.items[1]), 0);
	assert_string_equal((const char *)out.data, "2.5\n");
	cairn_buf_clear(&out);
	assert_int_equal(cairn_dagjson_encode_pretty(&out, &d.root->v.map.entries[2].value), 0);
	assert_string_equal((const char *)out.data, "[]\n");
	cairn_buf_free(&out);
	release(&d);
}

/* ------------------------------------------------------ allocation failure */

/* Decodes `input` and encodes it both ways with the nth allocation failing,
 * for every n until none fails: each run either succeeds with the canonical
 * bytes `want` or fails with CAIRN_ENOMEM, and leaks nothing (ASan). */
static void run_with_failures(const cairn_buf *input, const cairn_buf *want, bool sticky)
{
	bool reached_end = false;
	long n;

	for (n = 1; n < 100000 && !reached_end; n++) {
		cairn_buf out = CAIRN_BUF_INIT, pretty = CAIRN_BUF_INIT;
		cairn_arena *arena = NULL;
		cairn_node *root = NULL;
		int rc;

		cairn_alloc_fail_after(n, sticky);
		rc = cairn_arena_new(&arena);
		if (!rc)
			rc = cairn_dagjson_decode(&root, arena, input->data, input->len);
		if (!rc)
			rc = cairn_dagjson_encode(&out, root);
		if (!rc)
			rc = cairn_dagjson_encode_pretty(&pretty, root);
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
		} else {
			/* Nothing failed, so every allocation was reached. */
			assert_true(bytes_equal(&out, want));
			assert_true(pretty.len > 0);
			reached_end = true;
		}
		cairn_buf_free(&out);
		cairn_buf_free(&pretty);
		cairn_arena_free(arena);
	}
	assert_true(reached_end);
	assert_true(n > 3);
}

static void test_alloc_failure(void **state)
{
	static const char *const names[] = {"map-with_complex_entries", "cid-arrayof", "array-mixed",
					    "string-long-8bit", "bytes-long-8bit"};
	static const char odd[] = "{\"z\":[1.5,\"\\u00e9\\n\"],\"a\":{\"/\":{\"bytes\":\"oQ==\"}}}";
	static const char odd_canon[] = "{\"a\":{\"/\":{\"bytes\":\"oQ\"}},\"z\":[1.5,\"\xc3\xa9\\n\"]}";
	cairn_buf in = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	char dir[8192];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cairn_buf json = CAIRN_BUF_INIT, cbor = CAIRN_BUF_INIT;
		char cid[256];

		snprintf(dir, sizeof(dir), "%s/codec/fixtures/%s", fixtures, names[i]);
		load_pair(dir, cid, sizeof(cid), &json, &cbor);
		run_with_failures(&json, &json, false);
		run_with_failures(&json, &json, true);
		cairn_buf_free(&json);
		cairn_buf_free(&cbor);
	}
	/* Escapes, an unsorted map and padded bytes take other paths. */
	assert_int_equal(cairn_buf_puts(&in, odd), 0);
	assert_int_equal(cairn_buf_puts(&want, odd_canon), 0);
	run_with_failures(&in, &want, false);
	run_with_failures(&in, &want, true);
	cairn_buf_free(&in);
	cairn_buf_free(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_negative_fixtures),
		cmocka_unit_test(test_string_escapes_decode),
		cmocka_unit_test(test_string_borrows_input),
		cmocka_unit_test(test_string_escapes_encode),
		cmocka_unit_test(test_surrogates),
		cmocka_unit_test(test_string_errors),
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_int_cbor_agrees),
		cmocka_unit_test(test_float_format),
		cmocka_unit_test(test_float_refused),
		cmocka_unit_test(test_float_parse),
		cmocka_unit_test(test_map_order),
		cmocka_unit_test(test_map_encode_refusals),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_pretty),
		cmocka_unit_test(test_alloc_failure),
	};
	const char *env = getenv("CAIRN_FIXTURES");

	snprintf(fixtures, sizeof(fixtures), "%s", env ? env : "../shared/fixtures");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
