/* test_dagcbor.c: unit tests for strict DAG-CBOR, the arena and the data
 * model: hand-written vectors, every codec fixture, links and failure paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

/* Huge requests must come back as NULL, not abort the test under ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

static const char *fixtures(void)
{
	const char *f = getenv("CAIRN_FIXTURES");

	return f && *f ? f : "/work/shared/fixtures";
}

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

/* "a2 61 61 01" -> bytes; spaces are ignored. Returns the length. */
static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = 0;

	while (*hex) {
		unsigned v;

		if (*hex == ' ') {
			hex++;
			continue;
		}
		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

/* Decodes p and expects success; the re-encoding must give p back. */
static cairn_node *decode_ok(cairn_arena *arena, const uint8_t *p, size_t len)
{
	cairn_node *node = NULL;
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_dagcbor_decode(&node, arena, p, len);

	if (rc)
		fail_msg("decode failed: %d %s", rc, cairn_error_last());
	assert_non_null(node);
	assert_int_equal(cairn_dagcbor_encode(&b, node), 0);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.data, p, len);
	cairn_buf_free(&b);
	/* the link scanner accepts what the decoder accepts */
	assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, p, len, NULL, NULL), 0);
	return node;
}

static cairn_node *decode_hex_ok(cairn_arena *arena, uint8_t *keep, size_t cap, const char *hex)
{
	size_t n = unhex(keep, cap, hex);

	return decode_ok(arena, keep, n);
}

/* A cairn_block_link_bytes callback that decodes each CID as the export
 * does: its errors are the scan's. */
static int decode_link(const uint8_t *cid, size_t len, void *payload)
{
	cairn_cid c;

	(void)payload;
	return cairn_cid_decode(&c, NULL, cid, len);
}

/* Decodes p and expects `code`, with `needle` (if any) in the message. */
static void expect_error(const uint8_t *p, size_t len, int code, const char *needle)
{
	cairn_arena *arena = NULL;
	cairn_node *node = (cairn_node *)&arena;
	char msg[1024];
	int rc, last, links_rc, bytes_rc;

	assert_int_equal(cairn_arena_new(&arena), 0);
	cairn_error_clear();
	rc = cairn_dagcbor_decode(&node, arena, p, len);
	last = cairn_error_last_code();
	snprintf(msg, sizeof(msg), "%s", cairn_error_last());
	/* the link scanner refuses it the same way */
	links_rc = cairn_block_links(CAIRN_CODEC_DAG_CBOR, p, len, NULL, NULL);
	/* and so does the scan that hands over the CIDs' bytes, once they
	 * are decoded (a bad CID is the decoder's error, at the link's byte) */
	bytes_rc = cairn_block_link_bytes(CAIRN_CODEC_DAG_CBOR, p, len, decode_link, NULL);
	if (bytes_rc && needle && strstr(msg, "link: ") && !strstr(cairn_error_last(), "link: "))
		fail_msg("the link-bytes scan's message \"%s\" does not place the link",
			 cairn_error_last());
	cairn_arena_free(arena);
	if (rc != code)
		fail_msg("decode gave %d, not %d: %s", rc, code, msg);
	assert_null(node);
	assert_int_equal(last, code);
	if (needle && !strstr(msg, needle))
		fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
	assert_int_equal(links_rc, code);
	assert_int_equal(bytes_rc, code);
}

static void expect_hex_error(const char *hex, int code, const char *needle)
{
	uint8_t buf[256];
	size_t n = unhex(buf, sizeof(buf), hex);
	/* an exact-size copy, so ASan sees any read past the end */
	uint8_t *p = malloc(n ? n : 1);

	assert_non_null(p);
	memcpy(p, buf, n);
	expect_error(p, n, code, needle);
	free(p);
}

/* ---------------------------------------------------------------- scalars */

static void check_int(const char *hex, uint64_t mag, bool neg)
{
	uint8_t buf[16], enc_expect[16];
	cairn_arena *arena;
	cairn_node *node, manual;
	cairn_buf b = CAIRN_BUF_INIT;
	size_t n;

	assert_int_equal(cairn_arena_new(&arena), 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), hex);
	assert_int_equal(node->kind, CAIRN_KIND_INT);
	assert_true(node->v.i.mag == mag);
	assert_int_equal(node->v.i.neg, neg);
	/* a node built by hand encodes to the same head */
	manual.kind = CAIRN_KIND_INT;
	manual.v.i.mag = mag;
	manual.v.i.neg = neg;
	assert_int_equal(cairn_dagcbor_encode(&b, &manual), 0);
	n = unhex(enc_expect, sizeof(enc_expect), hex);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, enc_expect, n);
	cairn_buf_free(&b);
	cairn_arena_free(arena);
}

static void test_int_boundaries(void **state)
{
	(void)state;
	check_int("00", 0, false);
	check_int("17", 23, false);
	check_int("18 18", 24, false);
	check_int("18 ff", 255, false);
	check_int("19 01 00", 256, false);
	check_int("19 ff ff", 65535, false);
	check_int("1a 00 01 00 00", 65536, false);
	check_int("1a ff ff ff ff", 0xffffffffull, false);
	check_int("1b 00 00 00 01 00 00 00 00", 0x100000000ull, false);
	check_int("1b ff ff ff ff ff ff ff ff", UINT64_MAX, false);
	/* negatives: the value is -1 - mag */
	check_int("20", 0, true);
	check_int("37", 23, true);
	check_int("38 18", 24, true);
	check_int("38 ff", 255, true);
	check_int("39 01 00", 256, true);
	check_int("3a 00 01 00 00", 65536, true);
	check_int("3b 00 00 00 01 00 00 00 00", 0x100000000ull, true);
	check_int("3b ff ff ff ff ff ff ff ff", UINT64_MAX, true);
}

static void test_non_minimal_heads(void **state)
{
	(void)state;
	expect_hex_error("18 17", CAIRN_ECORRUPT, "shortest");
	expect_hex_error("18 00", CAIRN_ECORRUPT, "at byte 0");
	expect_hex_error("19 00 ff", CAIRN_ECORRUPT, "shortest");
	expect_hex_error("1a 00 00 ff ff", CAIRN_ECORRUPT, "shortest");
	expect_hex_error("1b 00 00 00 00 ff ff ff ff", CAIRN_ECORRUPT, "shortest");
	expect_hex_error("38 00", CAIRN_ECORRUPT, "shortest");
	expect_hex_error("3b 00 00 00 00 00 00 00 01", CAIRN_ECORRUPT, "shortest");
	/* lengths of strings, bytes, lists and maps, and tags */
	expect_hex_error("78 01 61", CAIRN_ECORRUPT, "length");
	expect_hex_error("58 00", CAIRN_ECORRUPT, "length");
	expect_hex_error("98 01 01", CAIRN_ECORRUPT, "length");
	expect_hex_error("b8 00", CAIRN_ECORRUPT, "length");
	expect_hex_error("d9 00 2a 58 00", CAIRN_ECORRUPT, "tag");
	/* nested: the offset is the item's own */
	expect_hex_error("82 01 18 01", CAIRN_ECORRUPT, "at byte 2");
	/* reserved additional information */
	expect_hex_error("1c", CAIRN_ECORRUPT, "reserved");
	expect_hex_error("1d", CAIRN_ECORRUPT, NULL);
	expect_hex_error("5e", CAIRN_ECORRUPT, NULL);
	/* truncated heads */
	expect_hex_error("19 01", CAIRN_ECORRUPT, "end of data");
	expect_hex_error("1b 01 02 03 04 05 06 07", CAIRN_ECORRUPT, NULL);
	expect_hex_error("", CAIRN_ECORRUPT, "at byte 0");
}

static void test_indefinite_lengths(void **state)
{
	(void)state;
	expect_hex_error("9f ff", CAIRN_ECORRUPT, "indefinite");
	expect_hex_error("9f 01 ff", CAIRN_ECORRUPT, "indefinite");
	expect_hex_error("bf ff", CAIRN_ECORRUPT, "indefinite");
	expect_hex_error("5f 41 61 ff", CAIRN_ECORRUPT, "indefinite");
	expect_hex_error("7f 61 61 ff", CAIRN_ECORRUPT, "indefinite");
	expect_hex_error("ff", CAIRN_ECORRUPT, NULL);
	expect_hex_error("81 ff", CAIRN_ECORRUPT, "at byte 1");
}

static void test_floats(void **state)
{
	uint8_t buf[16];
	cairn_arena *arena;
	cairn_node *node;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), "fb 3f f8 00 00 00 00 00 00");
	assert_int_equal(node->kind, CAIRN_KIND_FLOAT);
	assert_true(node->v.f == 1.5);
	node = decode_hex_ok(arena, buf, sizeof(buf), "fb c0 10 66 66 66 66 66 66");
	assert_true(node->v.f == -4.1);
	/* 1.0 is still 64 bits: no shortest float form in DAG-CBOR */
	node = decode_hex_ok(arena, buf, sizeof(buf), "fb 3f f0 00 00 00 00 00 00");
	assert_true(node->v.f == 1.0);
	/* negative zero keeps its sign through a round trip */
	node = decode_hex_ok(arena, buf, sizeof(buf), "fb 80 00 00 00 00 00 00 00");
	assert_true(node->v.f == 0.0 && signbit(node->v.f));
	/* the smallest subnormal and the largest finite value */
	node = decode_hex_ok(arena, buf, sizeof(buf), "fb 00 00 00 00 00 00 00 01");
	node = decode_hex_ok(arena, buf, sizeof(buf), "fb 7f ef ff ff ff ff ff ff");
	assert_true(node->v.f == 1.7976931348623157e308);
	cairn_arena_free(arena);

	expect_hex_error("f9 3e 00", CAIRN_ECORRUPT, "64 bits");
	expect_hex_error("fa 3f c0 00 00", CAIRN_ECORRUPT, "64 bits");
	expect_hex_error("f9 00 00", CAIRN_ECORRUPT, NULL);
	expect_hex_error("fb 7f f8 00 00 00 00 00 00", CAIRN_ECORRUPT, "NaN");
	expect_hex_error("fb 7f f0 00 00 00 00 00 01", CAIRN_ECORRUPT, "NaN");
	expect_hex_error("fb ff f8 00 00 00 00 00 00", CAIRN_ECORRUPT, "NaN");
	expect_hex_error("fb 7f f0 00 00 00 00 00 00", CAIRN_ECORRUPT, "infinit");
	expect_hex_error("fb ff f0 00 00 00 00 00 00", CAIRN_ECORRUPT, "infinit");
	expect_hex_error("fb 3f f8 00 00", CAIRN_ECORRUPT, NULL);
}

static void test_simple_values(void **state)
{
	uint8_t buf[16];
	cairn_arena *arena;
	cairn_node *node;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), "f4");
	assert_int_equal(node->kind, CAIRN_KIND_BOOL);
	assert_false(node->v.b);
	node = decode_hex_ok(arena, buf, sizeof(buf), "f5");
	assert_int_equal(node->kind, CAIRN_KIND_BOOL);
	assert_true(node->v.b);
	node = decode_hex_ok(arena, buf, sizeof(buf), "f6");
	assert_int_equal(node->kind, CAIRN_KIND_NULL);
	cairn_arena_free(arena);

	expect_hex_error("f7", CAIRN_ECORRUPT, "undefined");
	expect_hex_error("f0", CAIRN_ECORRUPT, "simple value");
	expect_hex_error("e0", CAIRN_ECORRUPT, "simple value");
	expect_hex_error("f8 20", CAIRN_ECORRUPT, "simple value");
	expect_hex_error("f8 14", CAIRN_ECORRUPT, NULL);
	expect_hex_error("f8 ff", CAIRN_ECORRUPT, NULL);
	expect_hex_error("f8", CAIRN_ECORRUPT, NULL);
}

static void test_strings(void **state)
{
	uint8_t buf[64];
	cairn_arena *arena;
	cairn_node *node;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), "60");
	assert_int_equal(node->kind, CAIRN_KIND_STRING);
	assert_int_equal(node->v.bytes.len, 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), "63 61 62 63");
	assert_int_equal(node->v.bytes.len, 3);
	assert_memory_equal(node->v.bytes.ptr, "abc", 3);
	/* the string borrows from the input */
	assert_ptr_equal(node->v.bytes.ptr, buf + 1);
	node = decode_hex_ok(arena, buf, sizeof(buf), "62 c3 a9");
	node = decode_hex_ok(arena, buf, sizeof(buf), "64 f0 9f 98 80");
	node = decode_hex_ok(arena, buf, sizeof(buf), "63 ef bf bf");
	node = decode_hex_ok(arena, buf, sizeof(buf), "64 f4 8f bf bf");
	node = decode_hex_ok(arena, buf, sizeof(buf), "61 00");
	node = decode_hex_ok(arena, buf, sizeof(buf), "43 00 ff 80");
	assert_int_equal(node->kind, CAIRN_KIND_BYTES);
	assert_int_equal(node->v.bytes.len, 3);
	cairn_arena_free(arena);

	expect_hex_error("63 61 62", CAIRN_ECORRUPT, "runs past");
	expect_hex_error("43 01 02", CAIRN_ECORRUPT, "runs past");
	/* a length far past the end, without reading or allocating it */
	expect_hex_error("5b 00 00 01 00 00 00 00 00", CAIRN_ECORRUPT, "runs past");
	expect_hex_error("7b ff ff ff ff ff ff ff ff 61", CAIRN_ECORRUPT, NULL);
}

/* Filecoin's early state (HAMT keys as Go strings of address bytes) holds
 * text strings that are not UTF-8; go-ipld-prime and cbor-gen read and write
 * them, so cairn does too (ipld/specs#363), and they round-trip exactly. */
static void test_non_utf8_strings_round_trip(void **state)
{
	static const char *const cases[] = {
		"61 ff", "61 80", "62 c0 af", "63 e0 80 af", "63 ed a0 80",
		"64 f4 90 80 80", "64 f8 88 80 80", "61 c3", "63 61 e2 82",
		"a1 61 ff 02", "a2 61 80 01 61 ff 02", "82 61 ff 61 fe",
	};
	uint8_t buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cairn_arena *arena;
		cairn_buf out = CAIRN_BUF_INIT;
		cairn_node *node;
		size_t n = unhex(buf, sizeof(buf), cases[i]);

		assert_int_equal(cairn_arena_new(&arena), 0);
		if (cairn_dagcbor_decode(&node, arena, buf, n))
			fail_msg("%s: %s", cases[i], cairn_error_last());
		assert_int_equal(cairn_dagcbor_encode(&out, node), 0);
		assert_int_equal(out.len, n);
		assert_memory_equal(out.data, buf, n);
		assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, buf, n, NULL, NULL), 0);
		cairn_buf_free(&out);
		cairn_arena_free(arena);
	}
}

/* ------------------------------------------------------ lists and maps */

static void test_lists_and_maps(void **state)
{
	uint8_t buf[64];
	cairn_arena *arena;
	cairn_node *node;
	const cairn_node *v;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), "80");
	assert_int_equal(node->kind, CAIRN_KIND_LIST);
	assert_int_equal(node->v.list.len, 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), "a0");
	assert_int_equal(node->kind, CAIRN_KIND_MAP);
	assert_int_equal(node->v.map.len, 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), "83 01 82 02 03 f6");
	assert_int_equal(node->v.list.len, 3);
	assert_int_equal(node->v.list.items[1].kind, CAIRN_KIND_LIST);
	assert_int_equal(node->v.list.items[1].v.list.items[1].v.i.mag, 3);
	assert_int_equal(node->v.list.items[2].kind, CAIRN_KIND_NULL);

	node = decode_hex_ok(arena, buf, sizeof(buf), "a2 61 61 01 61 62 82 f5 f4");
	assert_int_equal(node->v.map.len, 2);
	v = cairn_node_map_get(node, "b");
	assert_non_null(v);
	assert_int_equal(v->kind, CAIRN_KIND_LIST);
	assert_true(v->v.list.items[0].v.b);
	v = cairn_node_map_get(node, "a");
	assert_non_null(v);
	assert_int_equal(v->v.i.mag, 1);
	assert_null(cairn_node_map_get(node, "c"));
	assert_null(cairn_node_map_get(node, ""));
	assert_null(cairn_node_map_get(&node->v.map.entries[0].value, "a"));
	assert_null(cairn_node_map_get(NULL, "a"));
	/* length first: "b" before "aa" */
	node = decode_hex_ok(arena, buf, sizeof(buf), "a3 60 00 61 62 01 62 61 61 02");
	assert_int_equal(node->v.map.entries[0].key_len, 0);
	assert_non_null(cairn_node_map_get(node, ""));
	cairn_arena_free(arena);

	/* byte order inside one length */
	expect_hex_error("a2 61 62 01 61 61 02", CAIRN_ECORRUPT, "order");
	/* bytewise order but not length first */
	expect_hex_error("a2 62 61 61 01 61 62 02", CAIRN_ECORRUPT, "\"b\" is out of canonical order");
	expect_hex_error("a2 61 61 01 61 61 02", CAIRN_ECORRUPT, "appears twice");
	expect_hex_error("a2 61 61 01 61 61", CAIRN_ECORRUPT, NULL);
	/* keys are text strings */
	expect_hex_error("a1 01 02", CAIRN_ECORRUPT, "keys must be strings");
	expect_hex_error("a1 41 61 02", CAIRN_ECORRUPT, "keys must be strings");
	/* counts past the end */
	expect_hex_error("82 01", CAIRN_ECORRUPT, NULL);
	expect_hex_error("a1 61 61", CAIRN_ECORRUPT, NULL);
}

static void test_huge_counts(void **state)
{
	(void)state;
	/* 2^40 items: refused from the count alone, before any allocation.
	 * The allocation limit makes a huge arena allocation fail the test. */
	cairn_alloc_fail_after(3, true);
	expect_hex_error("9b 00 00 01 00 00 00 00 00 01 02 03", CAIRN_ECORRUPT, "cannot fit");
	cairn_alloc_fail_after(-1, false);
	expect_hex_error("9b 00 00 01 00 00 00 00 00", CAIRN_ECORRUPT, "cannot fit");
	expect_hex_error("9b ff ff ff ff ff ff ff ff 00", CAIRN_ECORRUPT, "cannot fit");
	expect_hex_error("bb 00 00 01 00 00 00 00 00 61 61 01", CAIRN_ECORRUPT, "cannot fit");
	expect_hex_error("ba ff ff ff ff", CAIRN_ECORRUPT, "cannot fit");
	expect_hex_error("83 01 02", CAIRN_ECORRUPT, NULL);
}

static void test_depth_limit(void **state)
{
	size_t deep = 100000;
	uint8_t *p = malloc(deep + 1);
	cairn_arena *arena;
	cairn_node *node = NULL;

	(void)state;
	assert_non_null(p);
	/* exactly the limit: 1024 nested lists */
	memset(p, 0x81, CAIRN_IPLD_MAX_DEPTH - 1);
	p[CAIRN_IPLD_MAX_DEPTH - 1] = 0x80;
	assert_int_equal(cairn_arena_new(&arena), 0);
	decode_ok(arena, p, CAIRN_IPLD_MAX_DEPTH);
	cairn_arena_free(arena);
	/* 1024 lists holding a scalar: still within the limit */
	memset(p, 0x81, CAIRN_IPLD_MAX_DEPTH);
	p[CAIRN_IPLD_MAX_DEPTH] = 0x01;
	assert_int_equal(cairn_arena_new(&arena), 0);
	decode_ok(arena, p, CAIRN_IPLD_MAX_DEPTH + 1);
	cairn_arena_free(arena);
	/* one more list: 1025 */
	memset(p, 0x81, CAIRN_IPLD_MAX_DEPTH);
	p[CAIRN_IPLD_MAX_DEPTH] = 0x80;
	expect_error(p, CAIRN_IPLD_MAX_DEPTH + 1, CAIRN_ETOOBIG, "deeper");
	/* far deeper: refused at the limit, no stack overflow */
	memset(p, 0x81, deep);
	p[deep] = 0x80;
	expect_error(p, deep + 1, CAIRN_ETOOBIG, "deeper");
	/* maps nest too: {"a": {"a": ... }} */
	for (size_t i = 0; i + 3 <= deep; i += 3) {
		p[i] = 0xa1;
		p[i + 1] = 0x61;
		p[i + 2] = 0x61;
	}
	expect_error(p, deep - deep % 3, CAIRN_ETOOBIG, "deeper");
	/* and a mix of both */
	for (size_t i = 0; i + 4 <= deep; i += 4) {
		p[i] = 0x81;
		p[i + 1] = 0xa1;
		p[i + 2] = 0x60;
		p[i + 3] = 0x81;
	}
	expect_error(p, deep, CAIRN_ETOOBIG, NULL);
	(void)node;
	free(p);
}

/* ------------------------------------------------------------------ tags */

#define LINK_HEX "d8 2a 58 25 00 01 55 12 20 b9 4d 27 b9 93 4d 3e 08 a5 2e 52 d7 da 7d " \
		 "ab fa c4 84 ef e3 7a 53 80 ee 90 88 f7 ac e2 ef cd e9"

static void test_links(void **state)
{
	uint8_t buf[128];
	cairn_arena *arena;
	cairn_node *node;
	cairn_cid want;

	(void)state;
	assert_int_equal(cairn_cid_parse(&want, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
					 59), 0);
	assert_int_equal(cairn_arena_new(&arena), 0);
	node = decode_hex_ok(arena, buf, sizeof(buf), LINK_HEX);
	assert_int_equal(node->kind, CAIRN_KIND_LINK);
	assert_true(cairn_cid_equal(node->v.link, &want));
	assert_true(node->v.link->codec == CAIRN_CODEC_RAW);
	/* a v0 link */
	node = decode_hex_ok(arena, buf, sizeof(buf),
			     "d8 2a 58 23 00 12 20 22 ad 63 1c 69 ee 98 30 95 b5 b8 ac d0 29 ff 94 af "
			     "f1 dc 6c 48 83 78 78 58 9a 92 b9 0d fe a3 17");
	assert_int_equal(node->kind, CAIRN_KIND_LINK);
	assert_int_equal(node->v.link->version, 0);
	cairn_arena_free(arena);

	/* tags other than 42 */
	expect_hex_error("c0 60", CAIRN_ECORRUPT, "tag 0");
	expect_hex_error("c1 01", CAIRN_ECORRUPT, "tag 1");
	expect_hex_error("d8 2b 41 00", CAIRN_ECORRUPT, "tag 43");
	expect_hex_error("d9 d9 f7 01", CAIRN_ECORRUPT, "tag 55799");
	/* 42 around something else than bytes */
	expect_hex_error("d8 2a 60", CAIRN_ECORRUPT, "byte string");
	expect_hex_error("d8 2a 01", CAIRN_ECORRUPT, "byte string");
	expect_hex_error("d8 2a", CAIRN_ECORRUPT, NULL);
	/* without the 0x00 prefix, or empty */
	expect_hex_error("d8 2a 58 24 01 55 12 20 b9 4d 27 b9 93 4d 3e 08 a5 2e 52 d7 da 7d "
			 "ab fa c4 84 ef e3 7a 53 80 ee 90 88 f7 ac e2 ef cd e9",
			 CAIRN_ECORRUPT, "0x00");
	expect_hex_error("d8 2a 40", CAIRN_ECORRUPT, "0x00");
	expect_hex_error("d8 2a 41 00", CAIRN_ECORRUPT, "link");
	/* a bad CID inside */
	expect_hex_error("d8 2a 44 00 01 55 12", CAIRN_ECORRUPT, "link");
	expect_hex_error("d8 2a 45 00 00 55 00 00", CAIRN_ECORRUPT, "link");
	/* one byte too many inside the link */
	expect_hex_error("d8 2a 58 26 00 01 55 12 20 b9 4d 27 b9 93 4d 3e 08 a5 2e 52 d7 da 7d "
			 "ab fa c4 84 ef e3 7a 53 80 ee 90 88 f7 ac e2 ef cd e9 00",
			 CAIRN_ECORRUPT, "link");
}

static void test_trailing_bytes(void **state)
{
	(void)state;
	expect_hex_error("01 00", CAIRN_ECORRUPT, "at byte 1");
	expect_hex_error("80 80", CAIRN_ECORRUPT, "after the end");
	expect_hex_error("a0 ff", CAIRN_ECORRUPT, "at byte 1");
	expect_hex_error("f6 f6 f6", CAIRN_ECORRUPT, "2 bytes");
}

static void test_truncations_of_a_valid_block(void **state)
{
	uint8_t buf[256];
	size_t n = unhex(buf, sizeof(buf),
			 "a4 61 61 83 01 fb 3f f8 00 00 00 00 00 00 f5 61 62 43 01 02 03 "
			 "62 63 63 " LINK_HEX " 63 64 64 64 a1 60 39 01 00");
	cairn_arena *arena;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	decode_ok(arena, buf, n);
	cairn_arena_free(arena);
	for (size_t k = 0; k < n; k++) {
		uint8_t *p = malloc(k ? k : 1);

		assert_non_null(p);
		memcpy(p, buf, k);
		expect_error(p, k, CAIRN_ECORRUPT, NULL);
		free(p);
	}
}

static void test_negative_fixtures(void **state)
{
	char path[4096];
	DIR *d;
	struct dirent *e;
	int count = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/codec/negative-fixtures/dag-cbor/decode", fixtures());
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char file[8192];
		cairn_buf text = CAIRN_BUF_INIT;
		const char *s;

		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		assert_int_equal(cairn_file_read_all(&text, file, 1 << 20), 0);
		/* every "hex": "..." value in the file must be refused */
		for (s = (const char *)text.data; (s = strstr(s, "\"hex\"")); ) {
			const char *q = strchr(s + 5, '"'), *end;
			char hex[1024];

			assert_non_null(q);
			end = strchr(q + 1, '"');
			assert_non_null(end);
			assert_true((size_t)(end - q - 1) < sizeof(hex));
			memcpy(hex, q + 1, (size_t)(end - q - 1));
			hex[end - q - 1] = '\0';
			expect_hex_error(hex, CAIRN_ECORRUPT, NULL);
			count++;
			s = end;
		}
		cairn_buf_free(&text);
	}
	closedir(d);
	assert_true(count >= 1);
}

static void test_duplicate_keys_fixture(void **state)
{
	(void)state;
	/* codec/negative-fixtures/dag-cbor/decode/duplicate-keys.json */
	expect_hex_error("a3636261720363666f6f0163666f6f02", CAIRN_ECORRUPT, "map key \"foo\"");
	expect_hex_error("a3636261720363666f6f0163666f6f02", CAIRN_ECORRUPT, "twice");
}

/* ---------------------------------------------------------------- encoder */

static cairn_node str_node(const char *s)
{
	cairn_node n;

	n.kind = CAIRN_KIND_STRING;
	n.v.bytes.ptr = (const uint8_t *)s;
	n.v.bytes.len = strlen(s);
	return n;
}

static cairn_node int_node(uint64_t v)
{
	cairn_node n;

	n.kind = CAIRN_KIND_INT;
	n.v.i.mag = v;
	n.v.i.neg = false;
	return n;
}

static void expect_encoding(const cairn_node *node, const char *hex)
{
	uint8_t want[256];
	size_t n = unhex(want, sizeof(want), hex);
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_dagcbor_encode(&b, node);

	if (rc)
		fail_msg("encode: %d %s", rc, cairn_error_last());
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	cairn_buf_free(&b);
}

static void test_encoder_sorts_maps(void **state)
{
	cairn_map_entry entries[5];
	cairn_node map, back_node, *back = &back_node;
	const char *keys[] = {"bb", "a", "c", "aaa", "ab"};
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_arena *arena;

	(void)state;
	for (int i = 0; i < 5; i++) {
		entries[i].key = (const uint8_t *)keys[i];
		entries[i].key_len = strlen(keys[i]);
		entries[i].value = int_node((uint64_t)i);
	}
	map.kind = CAIRN_KIND_MAP;
	map.v.map.entries = entries;
	map.v.map.len = 5;
	/* a, c, ab, bb, aaa */
	expect_encoding(&map, "a5 61 61 01 61 63 02 62 61 62 04 62 62 62 00 63 61 61 61 03");
	/* the caller's entries are left in their order */
	assert_memory_equal(entries[0].key, "bb", 2);
	/* and the result decodes to the sorted map */
	assert_int_equal(cairn_dagcbor_encode(&b, &map), 0);
	assert_int_equal(cairn_arena_new(&arena), 0);
	assert_int_equal(cairn_dagcbor_decode(&back, arena, b.data, b.len), 0);
	assert_int_equal(back->v.map.len, 5);
	assert_memory_equal(back->v.map.entries[2].key, "ab", 2);
	assert_int_equal(cairn_node_map_get(back, "aaa")->v.i.mag, 3);
	cairn_arena_free(arena);
	cairn_buf_free(&b);

	/* the encoder appends after what is in the buffer */
	assert_int_equal(cairn_buf_puts(&b, "xx"), 0);
	map.v.map.len = 1;
	assert_int_equal(cairn_dagcbor_encode(&b, &map), 0);
	assert_int_equal(b.len, 2 + 5);
	assert_memory_equal(b.data, "xx\xa1\x62\x62\x62\x00", 7);
	cairn_buf_free(&b);
}

static void test_encoder_refusals(void **state)
{
	cairn_map_entry entries[3];
	cairn_node map, f, s, list;
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	entries[0].key = (const uint8_t *)"k";
	entries[0].key_len = 1;
	entries[0].value = int_node(1);
	entries[1].key = (const uint8_t *)"x";
	entries[1].key_len = 1;
	entries[1].value = int_node(2);
	entries[2].key = (const uint8_t *)"k";
	entries[2].key_len = 1;
	entries[2].value = int_node(3);
	map.kind = CAIRN_KIND_MAP;
	map.v.map.entries = entries;
	map.v.map.len = 3;
	cairn_error_clear();
	assert_int_equal(cairn_dagcbor_encode(&b, &map), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "\"k\""));
	cairn_buf_free(&b);

	f.kind = CAIRN_KIND_FLOAT;
	f.v.f = NAN;
	assert_int_equal(cairn_dagcbor_encode(&b, &f), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "NaN"));
	cairn_buf_free(&b);
	f.v.f = INFINITY;
	assert_int_equal(cairn_dagcbor_encode(&b, &f), CAIRN_EINVAL);
	cairn_buf_free(&b);
	f.v.f = -INFINITY;
	assert_int_equal(cairn_dagcbor_encode(&b, &f), CAIRN_EINVAL);
	cairn_buf_free(&b);
	/* inside a list too */
	list.kind = CAIRN_KIND_LIST;
	list.v.list.items = &f;
	list.v.list.len = 1;
	assert_int_equal(cairn_dagcbor_encode(&b, &list), CAIRN_EINVAL);
	cairn_buf_free(&b);

	s.kind = (cairn_kind)99;
	assert_int_equal(cairn_dagcbor_encode(&b, &s), CAIRN_EINVAL);
	cairn_buf_free(&b);
}

static void test_encoder_writes_non_utf8_key(void **state)
{
	cairn_map_entry e;
	cairn_node map;
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	/* what the decoder reads (see test_non_utf8_strings_round_trip) the
	 * encoder writes back unchanged */
	e.key = (const uint8_t *)"\xff";
	e.key_len = 1;
	e.value = int_node(1);
	map.kind = CAIRN_KIND_MAP;
	map.v.map.entries = &e;
	map.v.map.len = 1;
	assert_int_equal(cairn_dagcbor_encode(&b, &map), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "\xa1\x61\xff\x01", 4);
	cairn_buf_free(&b);
}

static void test_encoder_depth_matches_decoder(void **state)
{
	enum { LISTS = CAIRN_IPLD_MAX_DEPTH + 1 };
	cairn_node *nodes = calloc(LISTS, sizeof(*nodes));
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	(void)state;
	assert_non_null(nodes);
	/* 1025 nested lists, which the decoder refuses (test_depth_limit) */
	for (int i = 0; i < LISTS; i++) {
		nodes[i].kind = CAIRN_KIND_LIST;
		nodes[i].v.list.items = i + 1 < LISTS ? &nodes[i + 1] : NULL;
		nodes[i].v.list.len = i + 1 < LISTS ? 1 : 0;
	}
	/* 1024 of them encode, and decode back */
	rc = cairn_dagcbor_encode(&b, &nodes[1]);
	assert_int_equal(rc, 0);
	assert_int_equal(b.len, CAIRN_IPLD_MAX_DEPTH);
	{
		cairn_arena *arena;

		assert_int_equal(cairn_arena_new(&arena), 0);
		decode_ok(arena, b.data, b.len);
		cairn_arena_free(arena);
	}
	cairn_buf_free(&b);
	/* the encoder must not write what its own decoder refuses */
	rc = cairn_dagcbor_encode(&b, &nodes[0]);
	cairn_buf_free(&b);
	free(nodes);
	assert_int_equal(rc, CAIRN_ETOOBIG);
}

static void test_encoder_scalars_and_links(void **state)
{
	cairn_node n;
	cairn_cid cid;

	(void)state;
	n.kind = CAIRN_KIND_NULL;
	expect_encoding(&n, "f6");
	n.kind = CAIRN_KIND_BOOL;
	n.v.b = true;
	expect_encoding(&n, "f5");
	n.v.b = false;
	expect_encoding(&n, "f4");
	n.kind = CAIRN_KIND_FLOAT;
	n.v.f = 1.5;
	expect_encoding(&n, "fb 3f f8 00 00 00 00 00 00");
	n.v.f = -0.0;
	expect_encoding(&n, "fb 80 00 00 00 00 00 00 00");
	n.kind = CAIRN_KIND_BYTES;
	n.v.bytes.ptr = (const uint8_t *)"\x00\xff";
	n.v.bytes.len = 2;
	expect_encoding(&n, "42 00 ff");
	n.v.bytes.ptr = NULL;
	n.v.bytes.len = 0;
	expect_encoding(&n, "40");
	n = str_node("Hello world!");
	expect_encoding(&n, "6c 48 65 6c 6c 6f 20 77 6f 72 6c 64 21");
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					   "hello world", 11), 0);
	n.kind = CAIRN_KIND_LINK;
	n.v.link = &cid;
	expect_encoding(&n, LINK_HEX);
}

/* --------------------------------------------------------------- fixtures */

typedef struct {
	cairn_cid links[64];
	size_t count;
	size_t stop_after; /* 0: never stop */
} link_list;

static int collect(const cairn_cid *cid, void *payload)
{
	link_list *l = payload;

	if (l->count < 64)
		l->links[l->count] = *cid;
	l->count++;
	return l->stop_after && l->count == l->stop_after ? 42 : 0;
}

static int collect_bytes(const uint8_t *cid, size_t len, void *payload)
{
	cairn_cid c;
	int rc = cairn_cid_decode(&c, NULL, cid, len);

	return rc ? rc : collect(&c, payload);
}

static void walk_tree(const cairn_node *n, link_list *l)
{
	switch (n->kind) {
	case CAIRN_KIND_LINK:
		collect(n->v.link, l);
		break;
	case CAIRN_KIND_LIST:
		for (size_t i = 0; i < n->v.list.len; i++)
			walk_tree(&n->v.list.items[i], l);
		break;
	case CAIRN_KIND_MAP:
		for (size_t i = 0; i < n->v.map.len; i++)
			walk_tree(&n->v.map.entries[i].value, l);
		break;
	default:
		break;
	}
}

typedef void (*fixture_fn)(const char *path, const char *cid_string, void *ctx);

/* Calls fn for every codec/fixtures/<dir>/<cid>.dag-cbor; returns the count. */
static int each_fixture(fixture_fn fn, void *ctx)
{
	char path[4096];
	DIR *top;
	struct dirent *e;
	int count = 0;

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
			char file[12288], name[256];
			size_t len = strlen(f->d_name);

			if (len < 9 || strcmp(f->d_name + len - 9, ".dag-cbor"))
				continue;
			snprintf(file, sizeof(file), "%s/%s", sub, f->d_name);
			snprintf(name, sizeof(name), "%.*s", (int)(len - 9), f->d_name);
			fn(file, name, ctx);
			count++;
		}
		closedir(d);
	}
	closedir(top);
	return count;
}

static void check_fixture(const char *path, const char *cid_string, void *ctx)
{
	cairn_buf data = CAIRN_BUF_INIT, enc = CAIRN_BUF_INIT;
	char s[CAIRN_CID_MAX_STRING];
	cairn_arena *arena;
	cairn_node *node = NULL;
	cairn_cid cid;
	link_list scanned, walked;
	int rc;

	(void)ctx;
	assert_int_equal(cairn_file_read_all(&data, path, 1 << 24), 0);
	assert_int_equal(cairn_arena_new(&arena), 0);
	rc = cairn_dagcbor_decode(&node, arena, data.data, data.len);
	if (rc)
		fail_msg("%s: %s", path, cairn_error_last());
	assert_int_equal(cairn_dagcbor_encode(&enc, node), 0);
	if (enc.len != data.len || memcmp(enc.data, data.data, data.len))
		fail_msg("%s: re-encoding differs", path);
	assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256,
					   enc.data, enc.len), 0);
	assert_true(cairn_cid_to_string(s, &cid) > 0);
	if (strcmp(s, cid_string))
		fail_msg("%s: CID %s", path, s);
	assert_int_equal(cairn_cid_verify(&cid, data.data, data.len), 0);
	/* the scanner finds the same links as the tree, in the same order */
	memset(&scanned, 0, sizeof(scanned));
	memset(&walked, 0, sizeof(walked));
	assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, data.data, data.len,
					   collect, &scanned), 0);
	walk_tree(node, &walked);
	assert_int_equal(scanned.count, walked.count);
	for (size_t i = 0; i < scanned.count && i < 64; i++)
		assert_true(cairn_cid_equal(&scanned.links[i], &walked.links[i]));
	/* so does the scan that hands over the CIDs' bytes */
	memset(&walked, 0, sizeof(walked));
	assert_int_equal(cairn_block_link_bytes(CAIRN_CODEC_DAG_CBOR, data.data, data.len,
						collect_bytes, &walked), 0);
	assert_int_equal(scanned.count, walked.count);
	for (size_t i = 0; i < scanned.count && i < 64; i++)
		assert_true(cairn_cid_equal(&scanned.links[i], &walked.links[i]));
	/* the generic entry point agrees */
	{
		cairn_node *again = NULL;

		assert_int_equal(cairn_ipld_decode(&again, arena, CAIRN_CODEC_DAG_CBOR,
						   data.data, data.len), 0);
		assert_true(cairn_node_equal(again, node));
	}
	cairn_arena_free(arena);
	cairn_buf_free(&enc);
	cairn_buf_free(&data);
}

static void test_all_fixtures(void **state)
{
	(void)state;
	assert_int_equal(each_fixture(check_fixture, NULL), 128);
}

static void read_fixture_dir(cairn_buf *out, const char *dir)
{
	char path[4096];
	DIR *d;
	struct dirent *e;
	bool found = false;

	snprintf(path, sizeof(path), "%s/codec/fixtures/%s", fixtures(), dir);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len > 9 && !strcmp(e->d_name + len - 9, ".dag-cbor")) {
			char file[8192];

			snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
			assert_int_equal(cairn_file_read_all(out, file, 1 << 24), 0);
			found = true;
			break;
		}
	}
	closedir(d);
	assert_true(found);
}

static void test_arrayof_links(void **state)
{
	cairn_buf data = CAIRN_BUF_INIT;
	cairn_arena *arena;
	cairn_node *node = NULL;
	link_list scanned, stopped;
	cairn_cid first;

	(void)state;
	read_fixture_dir(&data, "cid-arrayof");
	memset(&scanned, 0, sizeof(scanned));
	assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, data.data, data.len,
					   collect, &scanned), 0);
	assert_int_equal(scanned.count, 16);
	assert_int_equal(cairn_arena_new(&arena), 0);
	assert_int_equal(cairn_dagcbor_decode(&node, arena, data.data, data.len), 0);
	assert_int_equal(node->kind, CAIRN_KIND_LIST);
	assert_int_equal(node->v.list.len, 16);
	for (size_t i = 0; i < 16; i++) {
		assert_int_equal(node->v.list.items[i].kind, CAIRN_KIND_LINK);
		assert_true(cairn_cid_equal(node->v.list.items[i].v.link, &scanned.links[i]));
	}
	/* the first is the dag-cbor CID zdpuAtX7..., as the fixture shows */
	assert_int_equal(cairn_cid_parse(&first, "zdpuAtX7ZibcWdSKQwiDCkPjWwRvtcKCPku9H7LhgA4qJW4Wk",
					 49), 0);
	assert_true(cairn_cid_equal(&scanned.links[0], &first));

	/* a non-zero return stops the walk and comes back unchanged */
	memset(&stopped, 0, sizeof(stopped));
	stopped.stop_after = 3;
	assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, data.data, data.len,
					   collect, &stopped), 42);
	assert_int_equal(stopped.count, 3);
	for (size_t i = 0; i < 3; i++)
		assert_true(cairn_cid_equal(&stopped.links[i], &scanned.links[i]));
	memset(&stopped, 0, sizeof(stopped));
	stopped.stop_after = 1;
	assert_int_equal(cairn_block_links(CAIRN_CODEC_DAG_CBOR, data.data, data.len,
					   collect, &stopped), 42);
	assert_int_equal(stopped.count, 1);

	/* the bytes scan stops the same way */
	memset(&stopped, 0, sizeof(stopped));
	stopped.stop_after = 3;
	assert_int_equal(cairn_block_link_bytes(CAIRN_CODEC_DAG_CBOR, data.data, data.len,
						collect_bytes, &stopped), 42);
	assert_int_equal(stopped.count, 3);
	/* and checks alone without a callback */
	assert_int_equal(cairn_block_link_bytes(CAIRN_CODEC_DAG_CBOR, data.data, data.len,
						NULL, NULL), 0);
	assert_int_equal(cairn_block_link_bytes(CAIRN_CODEC_RAW, data.data, data.len,
						NULL, NULL), 0);

	/* raw blocks have no links */
	memset(&stopped, 0, sizeof(stopped));
	assert_int_equal(cairn_block_links(CAIRN_CODEC_RAW, data.data, data.len,
					   collect, &stopped), 0);
	assert_int_equal(stopped.count, 0);
	/* an unknown codec is not supported */
	assert_int_equal(cairn_block_links(0x300000, data.data, data.len, collect, &stopped),
			 CAIRN_EUNSUPPORTED);
	cairn_arena_free(arena);
	cairn_buf_free(&data);
}

static void oom_fixture(const char *path, const char *cid_string, void *ctx)
{
	cairn_buf data = CAIRN_BUF_INIT, ref = CAIRN_BUF_INIT;
	int *iterations = ctx;
	bool done = false;

	(void)cid_string;
	assert_int_equal(cairn_file_read_all(&data, path, 1 << 24), 0);
	{
		cairn_arena *arena;
		cairn_node *node;

		assert_int_equal(cairn_arena_new(&arena), 0);
		assert_int_equal(cairn_dagcbor_decode(&node, arena, data.data, data.len), 0);
		assert_int_equal(cairn_dagcbor_encode(&ref, node), 0);
		cairn_arena_free(arena);
	}
	/* fail the nth allocation and every one after it, for growing n, until
	 * a run needs fewer than n */
	for (long n = 1; !done && n < 10000; n++) {
		cairn_arena *arena = NULL;
		cairn_node *node = NULL;
		cairn_buf enc = CAIRN_BUF_INIT;
		int rc;

		cairn_alloc_fail_after(n, true);
		rc = cairn_arena_new(&arena);
		if (!rc)
			rc = cairn_dagcbor_decode(&node, arena, data.data, data.len);
		if (!rc) {
			rc = cairn_dagcbor_encode(&enc, node);
			if (!rc) {
				assert_int_equal(enc.len, ref.len);
				assert_memory_equal(enc.data, ref.data, ref.len);
				done = true;
			}
		} else {
			assert_null(node);
		}
		cairn_alloc_fail_after(-1, false);
		if (rc && rc != CAIRN_ENOMEM)
			fail_msg("%s: with allocation %ld failing: %d %s", path, n, rc,
				 cairn_error_last());
		cairn_buf_free(&enc);
		cairn_arena_free(arena);
		(*iterations)++;
	}
	assert_true(done);
	cairn_buf_free(&ref);
	cairn_buf_free(&data);
}

static void test_allocation_failures(void **state)
{
	int iterations = 0;

	(void)state;
	assert_int_equal(each_fixture(oom_fixture, &iterations), 128);
	assert_true(iterations > 128 * 2);
}

/* ------------------------------------------------------ arena and nodes */

static void test_arena(void **state)
{
	cairn_arena *arena = NULL;
	uint8_t *prev = NULL;

	(void)state;
	cairn_arena_free(NULL);
	assert_int_equal(cairn_arena_new(&arena), 0);
	for (size_t i = 0; i < 5000; i++) {
		size_t n = i % 97;
		uint8_t *p = cairn_arena_alloc(arena, n);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xcd, n);
		if (prev)
			assert_ptr_not_equal(p, prev);
		prev = p;
	}
	/* bigger than a chunk */
	prev = cairn_arena_alloc(arena, 1 << 20);
	assert_non_null(prev);
	memset(prev, 1, 1 << 20);
	cairn_arena_reset(arena);
	prev = cairn_arena_alloc(arena, 100);
	assert_non_null(prev);
	memset(prev, 2, 100);
	cairn_arena_reset(arena);
	cairn_arena_reset(arena);
	cairn_arena_free(arena);

	/* an arena that never allocated */
	assert_int_equal(cairn_arena_new(&arena), 0);
	cairn_arena_reset(arena);
	cairn_arena_free(arena);

	cairn_alloc_fail_after(1, false);
	assert_int_equal(cairn_arena_new(&arena), CAIRN_ENOMEM);
	assert_null(arena);
	assert_int_equal(cairn_arena_new(&arena), 0);
	cairn_alloc_fail_after(1, false);
	assert_null(cairn_arena_alloc(arena, 10));
	assert_int_equal(cairn_error_last_code(), CAIRN_ENOMEM);
	assert_non_null(cairn_arena_alloc(arena, 10));
	cairn_arena_free(arena);
}

static void test_arena_refuses_impossible_sizes(void **state)
{
	cairn_arena *arena = NULL;
	void *p, *q;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	p = cairn_arena_alloc(arena, SIZE_MAX - 100);
	/* rounding SIZE_MAX up to 16 must not wrap around to a tiny block */
	q = cairn_arena_alloc(arena, SIZE_MAX);
	cairn_arena_free(arena);
	assert_null(p);
	assert_null(q);
}

static void test_node_helpers(void **state)
{
	cairn_node a, b;
	cairn_arena *arena;
	cairn_node *x, *y;
	uint8_t bx[64], by[64];

	(void)state;
	assert_string_equal(cairn_kind_name(CAIRN_KIND_NULL), "null");
	assert_string_equal(cairn_kind_name(CAIRN_KIND_MAP), "map");
	assert_string_equal(cairn_kind_name(CAIRN_KIND_LINK), "link");
	assert_string_equal(cairn_kind_name((cairn_kind)42), "unknown");

	a.kind = b.kind = CAIRN_KIND_FLOAT;
	a.v.f = 0.0;
	b.v.f = -0.0;
	assert_false(cairn_node_equal(&a, &b));
	b.v.f = 0.0;
	assert_true(cairn_node_equal(&a, &b));
	a = int_node(5);
	b = int_node(5);
	assert_true(cairn_node_equal(&a, &b));
	b.v.i.neg = true;
	assert_false(cairn_node_equal(&a, &b));
	a = str_node("x");
	b.kind = CAIRN_KIND_BYTES;
	b.v.bytes = a.v.bytes;
	assert_false(cairn_node_equal(&a, &b));

	assert_int_equal(cairn_arena_new(&arena), 0);
	x = decode_hex_ok(arena, bx, sizeof(bx), "a2 61 61 82 01 02 61 62 f6");
	y = decode_hex_ok(arena, by, sizeof(by), "a2 61 61 82 01 02 61 62 f6");
	assert_true(cairn_node_equal(x, y));
	y = decode_hex_ok(arena, by, sizeof(by), "a2 61 61 82 01 03 61 62 f6");
	assert_false(cairn_node_equal(x, y));
	y = decode_hex_ok(arena, by, sizeof(by), "a2 61 61 82 01 02 61 63 f6");
	assert_false(cairn_node_equal(x, y));
	y = decode_hex_ok(arena, by, sizeof(by), "a1 61 61 82 01 02");
	assert_false(cairn_node_equal(x, y));
	cairn_arena_free(arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int_boundaries),
		cmocka_unit_test(test_non_minimal_heads),
		cmocka_unit_test(test_indefinite_lengths),
		cmocka_unit_test(test_floats),
		cmocka_unit_test(test_simple_values),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_non_utf8_strings_round_trip),
		cmocka_unit_test(test_lists_and_maps),
		cmocka_unit_test_teardown(test_huge_counts, teardown),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_truncations_of_a_valid_block),
		cmocka_unit_test(test_negative_fixtures),
		cmocka_unit_test(test_duplicate_keys_fixture),
		cmocka_unit_test(test_encoder_sorts_maps),
		cmocka_unit_test(test_encoder_refusals),
		cmocka_unit_test(test_encoder_writes_non_utf8_key),
		cmocka_unit_test(test_encoder_depth_matches_decoder),
		cmocka_unit_test(test_encoder_scalars_and_links),
		cmocka_unit_test(test_all_fixtures),
		cmocka_unit_test(test_arrayof_links),
		cmocka_unit_test_teardown(test_allocation_failures, teardown),
		cmocka_unit_test_teardown(test_arena, teardown),
		cmocka_unit_test(test_arena_refuses_impossible_sizes),
		cmocka_unit_test(test_node_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
