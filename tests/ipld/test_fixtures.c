/* test_fixtures.c: the IPLD codec fixtures (ipld/codec-fixtures): every block
 * decodes, re-encodes to every codec present for it, and gives the CID in its
 * file name; every negative fixture fails. */
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

static char fixtures[4096];

static const struct {
	const char *ext;
	uint64_t codec;
} codecs[] = {
	{"dag-cbor", CAIRN_CODEC_DAG_CBOR},
	{"dag-json", CAIRN_CODEC_DAG_JSON},
	{"dag-pb", CAIRN_CODEC_DAG_PB},
};
#define NCODECS 3

typedef struct {
	char cid[NCODECS][128]; /* file name without extension, "" if absent */
	cairn_buf bytes[NCODECS];
} fixture;

static void load_fixture(fixture *f, const char *dir)
{
	struct dirent *d;
	DIR *dh = opendir(dir);

	assert_non_null(dh);
	memset(f, 0, sizeof(*f));
	while ((d = readdir(dh))) {
		const char *dot = strrchr(d->d_name, '.');
		char path[16384];

		if (d->d_name[0] == '.' || !dot)
			continue;
		for (int c = 0; c < NCODECS; c++) {
			if (strcmp(dot + 1, codecs[c].ext))
				continue;
			snprintf(f->cid[c], sizeof(f->cid[c]), "%.*s", (int)(dot - d->d_name), d->d_name);
			snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
			assert_int_equal(cairn_file_read_all(&f->bytes[c], path, 1 << 24), 0);
		}
	}
	closedir(dh);
}

static unsigned checked_decodes, checked_encodes;

static void check_fixture(const char *name, const char *dir)
{
	fixture f;

	load_fixture(&f, dir);
	for (int from = 0; from < NCODECS; from++) {
		cairn_arena *arena;
		cairn_node *root;
		cairn_cid cid;
		char str[CAIRN_CID_MAX_STRING];
		int rc;

		if (!f.cid[from][0])
			continue;
		/* The file name is the CID of the file's bytes. */
		assert_int_equal(cairn_cid_compute(&cid, 1, codecs[from].codec, CAIRN_MH_SHA2_256,
						   f.bytes[from].data, f.bytes[from].len), 0);
		assert_true(cairn_cid_to_string(str, &cid) > 0);
		if (strcmp(str, f.cid[from]))
			fail_msg("%s: CID of %s bytes is %s, file says %s", name, codecs[from].ext, str,
				 f.cid[from]);
		assert_int_equal(cairn_arena_new(&arena), 0);
		rc = cairn_ipld_decode(&root, arena, codecs[from].codec, f.bytes[from].data,
				       f.bytes[from].len);
		if (rc)
			fail_msg("%s: decoding %s failed: %s", name, codecs[from].ext, cairn_error_last());
		checked_decodes++;
		for (int to = 0; to < NCODECS; to++) {
			cairn_buf out = CAIRN_BUF_INIT;

			if (!f.cid[to][0])
				continue;
			rc = cairn_ipld_encode(&out, codecs[to].codec, root);
			if (rc)
				fail_msg("%s: %s -> %s failed: %s", name, codecs[from].ext, codecs[to].ext,
					 cairn_error_last());
			assert_int_equal(cairn_cid_compute(&cid, 1, codecs[to].codec, CAIRN_MH_SHA2_256,
							   out.data, out.len), 0);
			cairn_cid_to_string(str, &cid);
			if (strcmp(str, f.cid[to]))
				fail_msg("%s: %s -> %s gives %s, expected %s (%zu bytes: %.*s)", name,
					 codecs[from].ext, codecs[to].ext, str, f.cid[to], out.len,
					 (int)(out.len > 200 ? 200 : out.len), (const char *)out.data);
			checked_encodes++;
			cairn_buf_free(&out);
		}
		cairn_arena_free(arena);
	}
	for (int c = 0; c < NCODECS; c++)
		cairn_buf_free(&f.bytes[c]);
}

static void test_positive(void **state)
{
	char dir[8192];
	struct dirent *d;
	DIR *dh;
	unsigned n = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/codec/fixtures", fixtures);
	dh = opendir(dir);
	assert_non_null(dh);
	while ((d = readdir(dh))) {
		char sub[8192 + 256];

		if (d->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, d->d_name);
		check_fixture(d->d_name, sub);
		n++;
	}
	closedir(dh);
	/* 100 fixtures upstream at the pinned commit; guard against a silent
	 * empty directory. */
	assert_true(n >= 100);
	print_message("%u fixtures: %u decodes, %u encodes\n", n, checked_decodes, checked_encodes);
}

/* Reads a negative-fixture file (a JSON array of cases) with cairn's own
 * DAG-JSON decoder. */
static cairn_node *load_cases(cairn_arena *arena, cairn_buf *text, const char *rel)
{
	char path[8192];
	cairn_node *root;

	snprintf(path, sizeof(path), "%s/codec/negative-fixtures/%s", fixtures, rel);
	assert_int_equal(cairn_file_read_all(text, path, 1 << 24), 0);
	if (cairn_dagjson_decode(&root, arena, text->data, text->len))
		fail_msg("%s: %s", rel, cairn_error_last());
	assert_int_equal(root->kind, CAIRN_KIND_LIST);
	assert_true(root->v.list.len > 0);
	return root;
}

static void check_decode_failures(const char *rel, uint64_t codec)
{
	cairn_buf text = CAIRN_BUF_INIT;
	cairn_arena *arena;
	cairn_node *cases;

	assert_int_equal(cairn_arena_new(&arena), 0);
	cases = load_cases(arena, &text, rel);
	for (size_t i = 0; i < cases->v.list.len; i++) {
		const cairn_node *c = &cases->v.list.items[i];
		const cairn_node *hex = cairn_node_map_get(c, "hex");
		const cairn_node *name = cairn_node_map_get(c, "name");
		cairn_buf bytes = CAIRN_BUF_INIT;
		cairn_arena *scratch;
		cairn_node *root;
		int rc;

		assert_non_null(hex);
		assert_int_equal(cairn_base_decode(&bytes, CAIRN_BASE16, (const char *)hex->v.bytes.ptr,
						   hex->v.bytes.len), 0);
		assert_int_equal(cairn_arena_new(&scratch), 0);
		rc = cairn_ipld_decode(&root, scratch, codec, bytes.data, bytes.len);
		if (rc == 0)
			fail_msg("%s: '%.*s' decoded but must fail", rel, (int)name->v.bytes.len,
				 (const char *)name->v.bytes.ptr);
		assert_int_equal(rc, CAIRN_ECORRUPT);
		/* The message must say where. */
		assert_non_null(strstr(cairn_error_last(), "at byte"));
		cairn_arena_free(scratch);
		cairn_buf_free(&bytes);
	}
	cairn_arena_free(arena);
	cairn_buf_free(&text);
}

static void test_negative_dagcbor_decode(void **state)
{
	(void)state;
	check_decode_failures("dag-cbor/decode/duplicate-keys.json", CAIRN_CODEC_DAG_CBOR);
}

static void test_negative_dagjson_decode(void **state)
{
	(void)state;
	check_decode_failures("dag-json/decode/duplicate-keys.json", CAIRN_CODEC_DAG_JSON);
}

static void test_negative_dagpb_decode(void **state)
{
	(void)state;
	check_decode_failures("dag-pb/decode/edges.json", CAIRN_CODEC_DAG_PB);
}

static void check_encode_failures(const char *rel)
{
	cairn_buf text = CAIRN_BUF_INIT;
	cairn_arena *arena;
	cairn_node *cases;

	assert_int_equal(cairn_arena_new(&arena), 0);
	cases = load_cases(arena, &text, rel);
	for (size_t i = 0; i < cases->v.list.len; i++) {
		const cairn_node *c = &cases->v.list.items[i];
		const cairn_node *value = cairn_node_map_get(c, "dag-json");
		const cairn_node *name = cairn_node_map_get(c, "name");
		cairn_buf out = CAIRN_BUF_INIT;
		int rc;

		assert_non_null(value);
		rc = cairn_dagpb_encode(&out, value);
		if (rc == 0)
			fail_msg("%s: '%.*s' encoded but must fail", rel, (int)name->v.bytes.len,
				 (const char *)name->v.bytes.ptr);
		assert_int_equal(rc, CAIRN_EINVAL);
		cairn_buf_free(&out);
	}
	cairn_arena_free(arena);
	cairn_buf_free(&text);
}

static void test_negative_dagpb_encode(void **state)
{
	(void)state;
	check_encode_failures("dag-pb/encode/basic-datamodel-kinds.json");
	check_encode_failures("dag-pb/encode/invalid-forms.json");
}

/* fixtures.car holds every valid block: each section's bytes must hash to
 * its CID. A CARv1 is walked by hand here; the car part tests it properly. */
static void test_fixtures_car(void **state)
{
	cairn_buf car = CAIRN_BUF_INIT;
	char path[8192];
	uint64_t len;
	size_t used, off = 0, blocks = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/codec/fixtures.car", fixtures);
	assert_int_equal(cairn_file_read_all(&car, path, 1 << 26), 0);
	assert_int_equal(cairn_varint_decode(&len, &used, car.data, car.len), 0);
	off = used + (size_t)len;
	while (off < car.len) {
		cairn_cid cid;
		size_t cid_len;

		assert_int_equal(cairn_varint_decode(&len, &used, car.data + off, car.len - off), 0);
		off += used;
		assert_true(len <= car.len - off);
		assert_int_equal(cairn_cid_decode(&cid, &cid_len, car.data + off, (size_t)len), 0);
		assert_int_equal(cairn_cid_verify(&cid, car.data + off + cid_len, (size_t)len - cid_len), 0);
		off += (size_t)len;
		blocks++;
	}
	assert_true(blocks >= 200);
	cairn_buf_free(&car);
}

int main(void)
{
	const char *env = getenv("CAIRN_FIXTURES");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_positive),
		cmocka_unit_test(test_negative_dagcbor_decode),
		cmocka_unit_test(test_negative_dagjson_decode),
		cmocka_unit_test(test_negative_dagpb_decode),
		cmocka_unit_test(test_negative_dagpb_encode),
		cmocka_unit_test(test_fixtures_car),
	};

	snprintf(fixtures, sizeof(fixtures), "%s", env ? env : "../shared/fixtures");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
