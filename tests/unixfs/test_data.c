/* test_data.c: the UnixFS Data message: the bytes the reference encoders
 * write for the nodes cairn makes, decoding of what other writers may send
 * (packed blocksizes, unknown fields), and refusal of broken messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cairn.h"

static void check_encoding(const cairn_unixfs_data *d, const uint8_t *want, size_t n)
{
	cairn_buf b = {0};

	assert_int_equal(cairn_unixfs_data_encode(&b, d), 0);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	cairn_buf_free(&b);
}

static void test_encode_reference_bytes(void **state)
{
	cairn_unixfs_data d;
	uint64_t sizes[2] = {262144, 10};

	(void)state;
	/* A flat directory: just the type. */
	memset(&d, 0, sizeof(d));
	d.type = CAIRN_UNIXFS_DIRECTORY;
	check_encoding(&d, (const uint8_t[]){0x08, 0x01}, 2);
	/* kubo's empty file: type and filesize 0, no Data. */
	d.type = CAIRN_UNIXFS_FILE;
	d.has_filesize = true;
	check_encoding(&d, (const uint8_t[]){0x08, 0x02, 0x18, 0x00}, 4);
	/* A file node over two leaves: filesize then blocksizes, unpacked. */
	d.filesize = 262154;
	d.blocksizes = sizes;
	d.nblocksizes = 2;
	check_encoding(&d, (const uint8_t[]){0x08, 0x02, 0x18, 0x8a, 0x80, 0x10,
					     0x20, 0x80, 0x80, 0x10, 0x20, 0x0a}, 12);
	/* A HAMT shard: bitfield as Data, hashType, fanout. */
	memset(&d, 0, sizeof(d));
	d.type = CAIRN_UNIXFS_HAMT_SHARD;
	d.has_data = true;
	d.data = (const uint8_t *)"\x01\x02";
	d.data_len = 2;
	d.has_hash_type = true;
	d.hash_type = CAIRN_UNIXFS_HAMT_MURMUR3;
	d.has_fanout = true;
	d.fanout = 256;
	check_encoding(&d, (const uint8_t[]){0x08, 0x05, 0x12, 0x02, 0x01, 0x02,
					     0x28, 0x22, 0x30, 0x80, 0x02}, 11);
}

static void test_round_trip_all_fields(void **state)
{
	cairn_unixfs_data d, e;
	uint64_t sizes[3] = {1, 1u << 20, 1ull << 40};
	cairn_arena *arena;
	cairn_buf b = {0};

	(void)state;
	memset(&d, 0, sizeof(d));
	d.type = CAIRN_UNIXFS_FILE;
	d.has_data = true;
	d.data = (const uint8_t *)"hello";
	d.data_len = 5;
	d.has_filesize = true;
	d.filesize = 5 + 1 + (1u << 20) + (1ull << 40);
	d.blocksizes = sizes;
	d.nblocksizes = 3;
	d.has_mode = true;
	d.mode = 0755;
	d.has_mtime = true;
	d.mtime_secs = 1700000000;
	d.mtime_nsecs = 123456789;
	assert_int_equal(cairn_unixfs_data_encode(&b, &d), 0);
	assert_int_equal(cairn_arena_new(&arena), 0);
	assert_int_equal(cairn_unixfs_data_decode(&e, arena, b.data, b.len), 0);
	assert_int_equal(e.type, CAIRN_UNIXFS_FILE);
	assert_true(e.has_data);
	assert_int_equal(e.data_len, 5);
	assert_memory_equal(e.data, "hello", 5);
	assert_int_equal(e.filesize, d.filesize);
	assert_int_equal(e.nblocksizes, 3);
	assert_memory_equal(e.blocksizes, sizes, sizeof(sizes));
	assert_true(e.has_mode);
	assert_int_equal(e.mode, 0755);
	assert_true(e.has_mtime);
	assert_int_equal(e.mtime_secs, 1700000000);
	assert_int_equal(e.mtime_nsecs, 123456789);
	assert_false(e.has_fanout);
	cairn_arena_free(arena);
	cairn_buf_free(&b);
}

static void test_decode_packed_and_unknown(void **state)
{
	/* Type file, packed blocksizes [3, 300], an unknown field 15 (varint)
	 * and an unknown length-delimited field 16. */
	static const uint8_t msg[] = {0x08, 0x02, 0x22, 0x03, 0x03, 0xac, 0x02,
				      0x78, 0x05, 0x82, 0x01, 0x01, 0xff};
	cairn_unixfs_data d;
	cairn_arena *arena;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	assert_int_equal(cairn_unixfs_data_decode(&d, arena, msg, sizeof(msg)), 0);
	assert_int_equal(d.nblocksizes, 2);
	assert_int_equal(d.blocksizes[0], 3);
	assert_int_equal(d.blocksizes[1], 300);
	cairn_arena_free(arena);
}

static void test_decode_refuses(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[8];
		size_t len;
	} bad[] = {
		{"no type", {0x18, 0x00}, 2},
		{"type 6", {0x08, 0x06}, 2},
		{"truncated varint", {0x08, 0x82}, 2},
		{"data past the end", {0x08, 0x02, 0x12, 0x05, 0x01}, 5},
		{"type as bytes", {0x0a, 0x01, 0x02}, 3},
		{"wire type 7", {0x08, 0x02, 0x4f}, 3},
		{"truncated mtime nsecs", {0x08, 0x02, 0x42, 0x02, 0x15, 0x00}, 6},
	};
	cairn_arena *arena;

	(void)state;
	assert_int_equal(cairn_arena_new(&arena), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_unixfs_data d;
		int rc = cairn_unixfs_data_decode(&d, arena, bad[i].bytes, bad[i].len);

		if (rc != CAIRN_ECORRUPT)
			fail_msg("%s: got %d", bad[i].what, rc);
	}
	cairn_arena_free(arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_reference_bytes),
		cmocka_unit_test(test_round_trip_all_fields),
		cmocka_unit_test(test_decode_packed_and_unknown),
		cmocka_unit_test(test_decode_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
