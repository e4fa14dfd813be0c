/* test_import.c: the UnixFS importer: balanced layouts of every depth
 * against vectors from ipfs-unixfs-importer (tiny chunks and widths so deep
 * trees stay small), the profiles' parameters, blocks children first,
 * directories flat and sharded, and failures from the block sink. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

/* Generated with ipfs-unixfs-importer 17.1.1: content byte i = i*7 mod 251,
 * fixedSize({chunkSize}), balanced({maxChildrenPerNode: width}), raw
 * leaves with CIDv1 or DAG-PB leaves with CIDv0. */
static const struct {
	uint32_t chunk, width;
	size_t len;
	bool raw;
	const char *cid;
} vectors[] = {
	{3, 2, 0, false, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"},
	{3, 2, 0, true, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
	{3, 2, 1, false, "QmS9JArPwa55ePgDnyg6TzX24mYTS1b1vLqWNebyVotKxQ"},
	{3, 2, 1, true, "bafkreidogqfzz75tpkmjzjke425xqcrmpcib2p5tg44hnbirumdbpl5adu"},
	{3, 2, 3, false, "QmYvDEAjePf8agTFZo7x7L9m64DeqoudqFfCihGDpPcXbW"},
	{3, 2, 3, true, "bafkreiftmhiptkjyuk5u7pojyio4lkczpcaedmaebem5rkarygeidbhu34"},
	{3, 2, 4, false, "QmYz5mhoGJZWCozJEbCG3v73dsQYEcr1JJCrmZ8Z14hNUF"},
	{3, 2, 4, true, "bafybeibyz3fabxshhfcpuu6rthnckphlz77inklalnllf6naclrpwz5ud4"},
	{3, 2, 6, false, "QmXfDQfontf2U9gkagchsqhyqiRKH21YqQz2bF536GFA83"},
	{3, 2, 6, true, "bafybeibu6zf6chyw2hzk5wv56ljgkhtv5qthaykbsh2ef7qn2tccu5lbii"},
	{3, 2, 7, false, "QmSed4PfbSmzbqe8vZxv3Ho1L139Cm7uo7LEwRik9yKAhy"},
	{3, 2, 7, true, "bafybeiarfownlaj3y5kehzjxaq6q34tc4ksb7ec57wl4elkaf7ow742oiu"},
	{3, 2, 12, false, "QmVrU28tLKbvWWrWdZzxiuD67gJ74gJujdokabv49rqRN3"},
	{3, 2, 12, true, "bafybeif2s6zdwiexg3p565mp5hnxq3hdfijccgpkv2e4wbltod4wxgirqq"},
	{3, 2, 13, false, "QmVNksWtEBmjZsuYmgeBNGnhx33GXzRKRjjThtyPFPuFSn"},
	{3, 2, 13, true, "bafybeie6nfwz6ax5qtpj3hy3qrjkmozew7xdcdo65nzvatyljde3hn6m2a"},
	{3, 2, 27, false, "QmY9tRbgkmwZENsQFLgUN8FYstrKybfS9aVYmfky19TqG8"},
	{3, 2, 27, true, "bafybeifefotbuyekeadt3zhp5bwqhfbbipdvxvfqzkrhm3ouwfa7lz4t4m"},
	{3, 2, 28, false, "QmX1Yzaj3XeJbUJbZcC4UaoN8yyC2CVr5a5Y5b7C6uahdb"},
	{3, 2, 28, true, "bafybeiapimpcdjjuxjrcrm2wumcctkthogc4sxlc3z2fuilqobkvzkmehi"},
	{3, 2, 100, false, "QmfFSrrXpt5xZXatMeQjPweM7x51hbzXGuWzhoq7cDjjw5"},
	{3, 2, 100, true, "bafybeidijorkvtafhq3xv3i6mw6zxsl3nxhjhijllmw5twuqpzwgj6pyfq"},
	{3, 3, 0, false, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"},
	{3, 3, 0, true, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
	{3, 3, 1, false, "QmS9JArPwa55ePgDnyg6TzX24mYTS1b1vLqWNebyVotKxQ"},
	{3, 3, 1, true, "bafkreidogqfzz75tpkmjzjke425xqcrmpcib2p5tg44hnbirumdbpl5adu"},
	{3, 3, 3, false, "QmYvDEAjePf8agTFZo7x7L9m64DeqoudqFfCihGDpPcXbW"},
	{3, 3, 3, true, "bafkreiftmhiptkjyuk5u7pojyio4lkczpcaedmaebem5rkarygeidbhu34"},
	{3, 3, 4, false, "QmYz5mhoGJZWCozJEbCG3v73dsQYEcr1JJCrmZ8Z14hNUF"},
	{3, 3, 4, true, "bafybeibyz3fabxshhfcpuu6rthnckphlz77inklalnllf6naclrpwz5ud4"},
	{3, 3, 6, false, "QmXfDQfontf2U9gkagchsqhyqiRKH21YqQz2bF536GFA83"},
	{3, 3, 6, true, "bafybeibu6zf6chyw2hzk5wv56ljgkhtv5qthaykbsh2ef7qn2tccu5lbii"},
	{3, 3, 7, false, "Qmcm86jZN6YfZ15B6XZoW3LYJqmTv4fRh3q1i9ZwEDQ8WL"},
	{3, 3, 7, true, "bafybeidqh5tffibocv65ziexvbvcwqtzzlh2j43ko6hdh4fsgzp7bcw2vm"},
	{3, 3, 12, false, "QmcyxQR3ZxcnJ5uNftEjV4mWEidQZ6zo9MSuaFZoNhKr6r"},
	{3, 3, 12, true, "bafybeiao5acthjhdvr4wrbentkocbgryswh2x75ldi3nbzdike5zpo3s6q"},
	{3, 3, 13, false, "QmXgac57W94xfDiJdkagXAvkymZakbhNyAXJ4g4fy2JQEN"},
	{3, 3, 13, true, "bafybeicyuu3r5qbevd2cluqeys22tqlzjiekxo4fzjgonjwahz26k56fyu"},
	{3, 3, 27, false, "QmYbqMbqzZX2bmJTCoPVPN57veyY67iSzgXCMXJDJfHK3k"},
	{3, 3, 27, true, "bafybeia4c4tfbohng6tecyqeb2256jmud4poiasvxamxufwcwqxqy2z32q"},
	{3, 3, 28, false, "QmTbHishBNgkKmEGsj4t6qcQxRNfVANjqgXKbhJv2NsLMu"},
	{3, 3, 28, true, "bafybeifssnyv4jwclqpi2ztkxfr7fwm7txuccn5erndmk335exobmlwwte"},
	{3, 3, 100, false, "QmUer3r6XCRqbkoVgccC4Uf4dVyygsV1t8LnNnZZeNyuNF"},
	{3, 3, 100, true, "bafybeigqtyhbbmuny5lgpf7x3kb3kgglbs5dg4spfjcd2ms5ckl4uj2eje"},
	{5, 4, 0, false, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"},
	{5, 4, 0, true, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
	{5, 4, 1, false, "QmS9JArPwa55ePgDnyg6TzX24mYTS1b1vLqWNebyVotKxQ"},
	{5, 4, 1, true, "bafkreidogqfzz75tpkmjzjke425xqcrmpcib2p5tg44hnbirumdbpl5adu"},
	{5, 4, 3, false, "QmYvDEAjePf8agTFZo7x7L9m64DeqoudqFfCihGDpPcXbW"},
	{5, 4, 3, true, "bafkreiftmhiptkjyuk5u7pojyio4lkczpcaedmaebem5rkarygeidbhu34"},
	{5, 4, 4, false, "QmQVZJjdepxEr1ioeZNULbW5YSBUxmrbSAdnpKnAFPN2Wa"},
	{5, 4, 4, true, "bafkreidocrmqqymbl27lw5xizjdamin5b5qoutyvkdw36mxgmtjq26qe7u"},
	{5, 4, 6, false, "QmeuSnMeYGsfQXcHTW3rSoriPo6qUnb4rnoak59QDm3Juz"},
	{5, 4, 6, true, "bafybeickcjalkb6wev7fxu54qkf2fubeeapo4gvbm2z4pxoxz5dukhhf5y"},
	{5, 4, 7, false, "QmNmxZ2jFMvSbzZ6ds62Y3M5FpveBSpSfL7xrbVZoxsEYr"},
	{5, 4, 7, true, "bafybeiabrrmcdvjbyz54bkokv2lejpqozmt32ksenpr4mksg3hktp4264y"},
	{5, 4, 12, false, "Qme9vkh6RYXrohqyo7mWwoa1odhpeXsoykLuCC8EzRHPov"},
	{5, 4, 12, true, "bafybeiernolpioqqu7efc3gu72uj3subnykes3nxraruahr7ju2aaqgmqi"},
	{5, 4, 13, false, "QmfYsLgHWVLZJhN8LJThf7NQvvbtmrSgyaSncfjwd8q27i"},
	{5, 4, 13, true, "bafybeiay75eg2jiuvdyduds4lkiltoj7cxc7y5prvk33dobqxogt5vkvy4"},
	{5, 4, 27, false, "QmPFif5AHj2YZr9bKw5243eApjj2HDYbDkVGm1aaNtkBQ9"},
	{5, 4, 27, true, "bafybeigzv5vv7ehk5h4xufkofekupchrhr34cs545dty6vmokgiwa32xwe"},
	{5, 4, 28, false, "QmUxL8N9WzkVYKyFsUxK4p7udtPitrHRTvC6JhVncCVL6b"},
	{5, 4, 28, true, "bafybeibcdtkq4ffaeagxp3unwsrfylinvvcgrma44wvbil7d6t33wplkgm"},
	{5, 4, 100, false, "QmQ6xcVfECSPHeq4ndLnBkSqx9ufwcaabbcrhG89XfpkpE"},
	{5, 4, 100, true, "bafybeiafgrd7j3p3bjj2zqzblncp7e2bgd2a736oknkrqyfn4vmd7tzsvi"},
};

typedef struct sink {
	cairn_cid_set seen;
	size_t blocks;
	bool children_first;
	long fail_at;          /* fail the nth put (1-based); 0 never */
} sink;

/* Every link of a DAG-PB block must point at a block already put. */
static int links_seen(const cairn_cid *link, void *payload)
{
	sink *s = payload;

	if (!cairn_cid_set_has(&s->seen, link))
		s->children_first = false;
	return 0;
}

static int put(void *payload, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	sink *s = payload;

	if (s->fail_at && (long)s->blocks + 1 == s->fail_at)
		return cairn_error_set(CAIRN_EIO, "sink: injected failure");
	assert_int_equal(cairn_cid_verify(cid, data, len), 0);
	assert_int_equal(cairn_block_links(cid->codec, data, len, links_seen, s), 0);
	assert_int_equal(cairn_cid_set_add(&s->seen, cid, NULL), 0);
	s->blocks++;
	return 0;
}

static int import_bytes(cairn_unixfs_import_result *res, const cairn_unixfs_params *p,
			const uint8_t *data, size_t len, sink *s)
{
	char path[] = "/tmp/cairn-test-import-XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	rc = cairn_unixfs_import_fd(res, p, fd, "test", put, s);
	close(fd);
	return rc;
}

static void test_layout_vectors(void **state)
{
	uint8_t data[128];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)((i * 7) % 251);
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		cairn_unixfs_import_result res;
		cairn_unixfs_params p;
		char got[CAIRN_CID_MAX_STRING];
		sink s = {.children_first = true};

		cairn_unixfs_params_init(&p, vectors[i].raw ? CAIRN_UNIXFS_PROFILE_IPFS_CAR
							    : CAIRN_UNIXFS_PROFILE_KUBO);
		p.chunk_size = vectors[i].chunk;
		p.width = vectors[i].width;
		p.threads = 2;
		assert_int_equal(import_bytes(&res, &p, data, vectors[i].len, &s), 0);
		cairn_cid_to_string(got, &res.root);
		if (strcmp(got, vectors[i].cid))
			fail_msg("chunk %u width %u len %zu raw %d: got %s, want %s",
				 vectors[i].chunk, vectors[i].width, vectors[i].len, vectors[i].raw,
				 got, vectors[i].cid);
		assert_true(s.children_first);
		assert_int_equal(res.bytes, vectors[i].len);
		assert_int_equal(res.blocks, s.blocks);
		cairn_cid_set_free(&s.seen);
	}
}

static void test_profiles(void **state)
{
	cairn_unixfs_params p;

	(void)state;
	cairn_unixfs_params_init(&p, CAIRN_UNIXFS_PROFILE_IPFS_CAR);
	assert_int_equal(p.chunk_size, 1 << 20);
	assert_int_equal(p.width, 1024);
	assert_int_equal(p.cid_version, 1);
	assert_true(p.raw_leaves);
	assert_true(p.wrap);
	cairn_unixfs_params_init(&p, CAIRN_UNIXFS_PROFILE_KUBO);
	assert_int_equal(p.chunk_size, 256 << 10);
	assert_int_equal(p.width, 174);
	assert_int_equal(p.cid_version, 0);
	assert_false(p.raw_leaves);
	assert_false(p.wrap);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A tree checked against ipfs-car 3.1.0 and the v0-2015 importer:
 * d/a.txt "hello\n", d/sub/b.txt "x\n", d/sub/empty.txt "", d/.hid,
 * d/none/ (empty). */
static void make_tree(char *root)
{
	char p[512];

	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/d", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d/sub", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d/none", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d/a.txt", root);
	write_file(p, "hello\n");
	snprintf(p, sizeof(p), "%s/d/sub/b.txt", root);
	write_file(p, "x\n");
	snprintf(p, sizeof(p), "%s/d/sub/empty.txt", root);
	write_file(p, "");
	snprintf(p, sizeof(p), "%s/d/.hid", root);
	write_file(p, "h\n");
}

static void check_tree(const char *dir, cairn_unixfs_profile profile, bool hidden,
		       const char *want)
{
	cairn_unixfs_import_result res;
	cairn_unixfs_params p;
	char got[CAIRN_CID_MAX_STRING];
	const char *paths[1] = {dir};
	sink s = {.children_first = true};

	cairn_unixfs_params_init(&p, profile);
	p.hidden = hidden;
	assert_int_equal(cairn_unixfs_import(&res, &p, paths, 1, put, &s, NULL, NULL), 0);
	cairn_cid_to_string(got, &res.root);
	if (strcmp(got, want))
		fail_msg("%s profile %d hidden %d: got %s, want %s", dir, profile, hidden, got, want);
	assert_true(s.children_first);
	cairn_cid_set_free(&s.seen);
}

static void test_tree(void **state)
{
	char root[] = "/tmp/cairn-test-tree-XXXXXX", d[512], cmd[600];

	(void)state;
	make_tree(root);
	snprintf(d, sizeof(d), "%s/d", root);
	check_tree(d, CAIRN_UNIXFS_PROFILE_IPFS_CAR, false,
		   "bafybeid5bylv4gzbv7rllqtzd23tbgwlndlbzeqb7hyixm5jxu7jilci4m");
	check_tree(d, CAIRN_UNIXFS_PROFILE_KUBO, false,
		   "QmeTKzBxHiqv1ipqs15BeLvpUtJi8AWYkYqBVqQPNtzeJC");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static void test_sink_failure_stops(void **state)
{
	cairn_unixfs_import_result res;
	cairn_unixfs_params p;
	uint8_t data[100] = {0};
	sink s = {.fail_at = 3};

	(void)state;
	cairn_unixfs_params_init(&p, CAIRN_UNIXFS_PROFILE_IPFS_CAR);
	p.chunk_size = 10;
	assert_int_equal(import_bytes(&res, &p, data, sizeof(data), &s), CAIRN_EIO);
	assert_int_equal(s.blocks, 2);
	cairn_cid_set_free(&s.seen);
}

static void test_bad_params(void **state)
{
	cairn_unixfs_import_result res;
	cairn_unixfs_params p;
	sink s = {0};

	(void)state;
	cairn_unixfs_params_init(&p, CAIRN_UNIXFS_PROFILE_IPFS_CAR);
	p.width = 1;
	assert_int_equal(import_bytes(&res, &p, (const uint8_t *)"x", 1, &s), CAIRN_EINVAL);
	cairn_unixfs_params_init(&p, CAIRN_UNIXFS_PROFILE_IPFS_CAR);
	p.chunk_size = 0;
	assert_int_equal(import_bytes(&res, &p, (const uint8_t *)"x", 1, &s), CAIRN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_vectors),
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_sink_failure_stops),
		cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
