/* test_sector.c: unit tests for sector storage on real files: the RLE+ and
 * partial-file vectors of the research notes, allocation after random
 * writes, holes seen in st_blocks, add-piece of mixed sizes against a plain
 * Merkle tree, add-piece refusing a wrong CommP (and a kill in its
 * unchecked window), reads of random ranges, reservations from several processes
 * (never overfilling; a killed process's reservation gone), locks, moves,
 * check and the sector:// and piece:// mounts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define OPENSSL_SUPPRESS_DEPRECATED
#include <dirent.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cairn.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

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

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/cairn-sector-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------ RLE+ */

static void check_rle(const cairn_run *runs, size_t n, const uint8_t *want, size_t want_len)
{
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_run *back;
	size_t nb;

	assert_int_equal(cairn_rleplus_encode(&b, runs, n), 0);
	assert_int_equal(b.len, want_len);
	if (want_len)
		assert_memory_equal(b.data, want, want_len);
	assert_int_equal(cairn_rleplus_decode(&back, &nb, want, want_len, UINT64_C(1) << 40), 0);
	assert_int_equal(nb, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(back[i].off, runs[i].off);
		assert_int_equal(back[i].len, runs[i].len);
	}
	cairn_free(back);
	cairn_buf_free(&b);
}

static void test_rleplus_vectors(void **state)
{
	(void)state;
	/* go-bitfield rle/rleplus_test.go TestDecode: {0,2,4,5,6,11..27}. */
	const cairn_run r1[] = {{0, 1}, {2, 1}, {4, 3}, {11, 17}};
	const uint8_t v1[] = {0x7c, 0x47, 0x22, 0x02};
	const cairn_run full2k[] = {{0, 2048}}, half[] = {{0, 1024}}, upper[] = {{1024, 1024}},
			first128[] = {{0, 128}}, full32g[] = {{0, 32 * GiB}};
	const uint8_t v2[] = {0x04, 0x10, 0x02}, v3[] = {0x04, 0x10, 0x01},
		      v4[] = {0x00, 0x10, 0x01, 0x40, 0x04}, v5[] = {0x04, 0x30},
		      v6[] = {0x04, 0x10, 0x10, 0x10, 0x10, 0x30};
	cairn_run *out;
	size_t n;

	check_rle(r1, 4, v1, sizeof(v1));
	check_rle(NULL, 0, NULL, 0);
	check_rle(full2k, 1, v2, sizeof(v2));
	check_rle(half, 1, v3, sizeof(v3));
	check_rle(upper, 1, v4, sizeof(v4));
	check_rle(first128, 1, v5, sizeof(v5));
	check_rle(full32g, 1, v6, sizeof(v6));

	/* Refusals: a trailing zero byte, version 1, bits past the limit,
	 * runs that touch. */
	{
		const uint8_t trailing[] = {0x04, 0x10, 0x02, 0x00}, version[] = {0x05, 0x10, 0x02};
		const cairn_run touching[] = {{0, 2}, {2, 2}};
		cairn_buf b = CAIRN_BUF_INIT;

		assert_int_equal(cairn_rleplus_decode(&out, &n, trailing, 4, 4096), CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "at byte 3"));
		assert_int_equal(cairn_rleplus_decode(&out, &n, version, 3, 4096), CAIRN_ECORRUPT);
		assert_int_equal(cairn_rleplus_decode(&out, &n, v2, 3, 2047), CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "past the limit"));
		assert_int_equal(cairn_rleplus_encode(&b, touching, 2), CAIRN_EINVAL);
		cairn_buf_free(&b);
	}
}

/* ---------------------------------------------------------- partial file */

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void test_partialfile_vectors(void **state)
{
	char *dir = tmpdir(), path[256];
	cairn_partialfile *pf;
	uint8_t tail[7];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/s-t01-1", dir);
	assert_int_equal(cairn_partialfile_create(&pf, path, 2048), 0);
	/* A fresh file: the sector and an empty trailer's length. */
	assert_int_equal(file_size(path), 2052);
	assert_false(cairn_partialfile_has_allocated(pf, 0, 128));
	assert_int_equal(cairn_partialfile_mark_allocated(pf, 0, 2048), 0);
	cairn_partialfile_close(pf);
	/* A fully written 2 KiB sector: tail 04 10 02 03 00 00 00, 2055 bytes. */
	assert_int_equal(file_size(path), 2055);
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, tail, 7, 2048), 7);
	close(fd);
	assert_memory_equal(tail, "\x04\x10\x02\x03\x00\x00\x00", 7);
	assert_int_equal(cairn_partialfile_open(&pf, path, 2048, true), 0);
	assert_true(cairn_partialfile_has_allocated(pf, 0, 2048));
	/* Freeing the upper half rewrites a longer trailer, then back. */
	assert_int_equal(cairn_partialfile_free(pf, 1024, 1024), 0);
	assert_false(cairn_partialfile_has_allocated(pf, 1000, 100));
	assert_true(cairn_partialfile_has_allocated(pf, 0, 1024));
	cairn_partialfile_close(pf);
	assert_int_equal(file_size(path), 2048 + 3 + 4);

	/* The same file cut short, or with a lying length: refused by name. */
	assert_int_equal(truncate(path, 2054), 0);
	assert_int_equal(cairn_partialfile_open(&pf, path, 2048, false), CAIRN_ECORRUPT);
	assert_non_null(strstr(cairn_error_last(), "inconsistent length"));
	assert_non_null(strstr(cairn_error_last(), path));
	assert_int_equal(truncate(path, 100), 0);
	assert_int_equal(cairn_partialfile_open(&pf, path, 2048, false), CAIRN_ECORRUPT);
	assert_int_equal(cairn_partialfile_open(&pf, "/nonexistent/x", 2048, false), CAIRN_ENOTFOUND);
	rm_rf(dir);
	free(dir);
}

static void test_partialfile_random(void **state)
{
	const uint64_t ssize = 64 * KiB;
	char *dir = tmpdir(), path[256];
	uint8_t *model = calloc(ssize, 1);
	cairn_partialfile *pf;

	(void)state;
	snprintf(path, sizeof(path), "%s/s-t01-2", dir);
	assert_int_equal(cairn_partialfile_create(&pf, path, ssize), 0);
	for (int i = 0; i < 400; i++) {
		uint64_t off = rnd() % ssize, len = 1 + rnd() % 4096;

		if (len > ssize - off)
			len = ssize - off;
		if (rnd() % 3) {
			assert_int_equal(cairn_partialfile_mark_allocated(pf, off, len), 0);
			memset(model + off, 1, len);
		} else {
			assert_int_equal(cairn_partialfile_free(pf, off, len), 0);
			memset(model + off, 0, len);
		}
		if (i % 50 == 49) {
			/* Reopen: the trailer says the same as the model. */
			size_t n;
			const cairn_run *runs;
			uint64_t at = 0;

			cairn_partialfile_close(pf);
			assert_int_equal(cairn_partialfile_open(&pf, path, ssize, true), 0);
			runs = cairn_partialfile_allocated(pf, &n);
			for (size_t k = 0; k < n; k++) {
				for (; at < runs[k].off; at++)
					assert_int_equal(model[at], 0);
				for (; at < runs[k].off + runs[k].len; at++)
					assert_int_equal(model[at], 1);
			}
			for (; at < ssize; at++)
				assert_int_equal(model[at], 0);
		}
		{
			uint64_t qo = rnd() % ssize, ql = 1 + rnd() % 512;
			bool all = true;

			if (ql > ssize - qo)
				ql = ssize - qo;
			for (uint64_t k = qo; k < qo + ql; k++)
				all = all && model[k];
			assert_int_equal(cairn_partialfile_has_allocated(pf, qo, ql), all);
		}
	}
	cairn_partialfile_close(pf);
	free(model);
	rm_rf(dir);
	free(dir);
}

static uint64_t blocks(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

static void test_partialfile_holes(void **state)
{
	const uint64_t ssize = 8 * MiB;
	char *dir = tmpdir(), path[256], cmd[400];
	uint8_t *data = malloc(4 * MiB), *back = malloc(MiB);
	cairn_partialfile *pf;
	uint64_t before, after;
	FILE *du;
	unsigned long kb = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/s-t01-3", dir);
	assert_int_equal(cairn_partialfile_create(&pf, path, ssize), 0);
	/* Nothing preallocated: a fresh 8 MiB sector takes next to nothing. */
	assert_true(blocks(path) <= 64 * KiB);
	fill_random(data, 4 * MiB);
	assert_int_equal(cairn_file_pwrite_full(cairn_partialfile_fd(pf), data, 4 * MiB, 0, path), 0);
	assert_int_equal(cairn_partialfile_mark_allocated(pf, 0, 4 * MiB), 0);
	assert_int_equal(cairn_partialfile_sync(pf), 0);
	before = blocks(path);
	assert_true(before >= 4 * MiB);
	assert_int_equal(cairn_partialfile_free(pf, MiB, 2 * MiB), 0);
	assert_int_equal(cairn_partialfile_sync(pf), 0);
	after = blocks(path);
	/* The hole is real: two MiB fewer allocated, as du sees it too. */
	assert_true(after + 2 * MiB <= before);
	snprintf(cmd, sizeof(cmd), "du -k '%s'", path);
	du = popen(cmd, "r");
	assert_non_null(du);
	assert_int_equal(fscanf(du, "%lu", &kb), 1);
	pclose(du);
	assert_true(kb * 1024 <= 2 * MiB + 256 * KiB);
	/* It reads as zeros; the size is kept. */
	assert_int_equal(cairn_file_pread_full(cairn_partialfile_fd(pf), back, MiB, MiB + 4096, path), 0);
	for (size_t i = 0; i < MiB; i++)
		assert_int_equal(back[i], 0);
	assert_true(file_size(path) >= ssize + 4);
	assert_false(cairn_partialfile_has_allocated(pf, MiB, 128));
	assert_true(cairn_partialfile_has_allocated(pf, 3 * MiB, MiB));
	cairn_partialfile_close(pf);
	free(data);
	free(back);
	rm_rf(dir);
	free(dir);
}

/* ---------------------------------------------------------------- names */

static void test_names_sizes(void **state)
{
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_sector_id id = {1000, 42}, back;
	uint64_t size;
	unsigned proof, ft;

	(void)state;
	cairn_sector_name(name, &id);
	assert_string_equal(name, "s-t01000-42");
	assert_int_equal(cairn_sector_name_parse(&back, name), 0);
	assert_int_equal(back.miner, 1000);
	assert_int_equal(back.number, 42);
	assert_int_equal(cairn_sector_name_parse(&back, "s-t01000-042"), CAIRN_EINVAL);
	assert_int_equal(cairn_sector_name_parse(&back, "s-t1000-1"), CAIRN_EINVAL);
	assert_int_equal(cairn_sector_name_parse(&back, "s-t01000-1x"), CAIRN_EINVAL);
	assert_int_equal(cairn_sector_name_parse(&back, "s-t099999999999999999999-1"), CAIRN_EINVAL);
	assert_int_equal(cairn_sector_proof_size(&size, 8), 0);
	assert_int_equal(size, 32 * GiB);
	assert_int_equal(cairn_sector_proof_size(&size, 0), 0);
	assert_int_equal(size, 2048);
	assert_int_equal(cairn_sector_proof_for_size(&proof, 64 * GiB), 0);
	assert_int_equal(proof, 9);
	assert_int_equal(cairn_sector_proof_for_size(&proof, 4096), CAIRN_EINVAL);
	assert_int_equal(cairn_sector_size_parse(&size, "512MiB"), 0);
	assert_int_equal(size, 512 * MiB);
	assert_int_equal(cairn_sector_size_parse(&size, "2kib"), 0);
	assert_int_equal(size, 2048);
	assert_int_equal(cairn_sector_size_parse(&size, "2 KiB"), CAIRN_EINVAL);
	assert_int_equal(cairn_sector_ft_parse(&ft, "unsealed,cache"), 0);
	assert_int_equal(ft, CAIRN_SECTOR_UNSEALED | CAIRN_SECTOR_CACHE);
	assert_int_equal(cairn_sector_ft_parse(&ft, "update"), CAIRN_EINVAL);
	/* lotus#3124: sealed + cache while sealing a 32 GiB sector reserve
	 * 15.1 times its size, 483.2 GiB. */
	assert_int_equal(cairn_sector_space_use(CAIRN_SECTOR_SEALED | CAIRN_SECTOR_CACHE, 32 * GiB,
						CAIRN_SECTOR_PATH_SEALING), 151 * 32 * GiB / 10);
	assert_int_equal(cairn_sector_space_use(CAIRN_SECTOR_FT_ALL, 32 * GiB, CAIRN_SECTOR_PATH_STORAGE),
			 21 * 32 * GiB / 10);
}

/* ---------------------------------------------------------------- store */

typedef struct {
	char *dir;
	char repo[200];
	cairn_db *db;
	cairn_sector_store *st;
} fixture;

static void fx_open(fixture *f)
{
	char db[600];

	snprintf(db, sizeof(db), "%s/cairn.db", f->repo);
	assert_int_equal(cairn_db_open(&f->db, db, NULL), 0);
	assert_int_equal(cairn_sector_store_open(&f->st, f->repo, f->db), 0);
}

static void fx_close(fixture *f)
{
	cairn_sector_store_close(f->st);
	cairn_db_close(f->db);
	f->st = NULL;
	f->db = NULL;
}

static void fx_new(fixture *f)
{
	f->dir = tmpdir();
	snprintf(f->repo, sizeof(f->repo), "%s/repo", f->dir);
	assert_int_equal(mkdir(f->repo, 0755), 0);
	fx_open(f);
}

static void fx_free(fixture *f)
{
	fx_close(f);
	rm_rf(f->dir);
	free(f->dir);
}

static char *read_text(const char *path)
{
	cairn_buf b = CAIRN_BUF_INIT;

	assert_int_equal(cairn_file_read_all(&b, path, 1 << 20), 0);
	cairn_buf_putc(&b, 0);
	return (char *)b.data;
}

static int count_cb(const cairn_storage_info *info, void *payload)
{
	cairn_storage_info *out = payload;

	*out = *info;
	out->path = NULL;
	out->config_path = NULL;
	out->error = NULL;
	return 0;
}

static void test_attach(void **state)
{
	cairn_storage_init init = {10, true, false, 0};
	char path[600], id[40], id2[40], file[800], *text, want[600];
	cairn_storage_info info;
	fixture f;

	(void)state;
	fx_new(&f);
	snprintf(path, sizeof(path), "%s/seal", f.repo);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, &init, id), 0);
	/* sectorstore.json exactly as lotus-miner storage attach --init. */
	snprintf(file, sizeof(file), "%s/sectorstore.json", path);
	text = read_text(file);
	snprintf(want, sizeof(want),
		 "{\n  \"ID\": \"%s\",\n  \"Weight\": 10,\n  \"CanSeal\": true,\n  \"CanStore\": false,\n"
		 "  \"MaxStorage\": 0,\n  \"Groups\": null,\n  \"AllowTo\": null,\n  \"AllowTypes\": null,\n"
		 "  \"DenyTypes\": null,\n  \"AllowMiners\": null,\n  \"DenyMiners\": null\n}", id);
	assert_string_equal(text, want);
	cairn_free(text);
	/* storage.json: inside the store, relative to it. */
	snprintf(file, sizeof(file), "%s/storage.json", f.repo);
	text = read_text(file);
	assert_string_equal(text, "{\n  \"StoragePaths\": [\n    {\n      \"Path\": \"seal\"\n    }\n  ]\n}");
	cairn_free(text);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, NULL, NULL), CAIRN_EEXISTS);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, &init, NULL), CAIRN_EEXISTS);
	/* A path outside the store stays absolute; a hand-written
	 * sectorstore.json in Lotus's older form (no lists) reads. */
	snprintf(path, sizeof(path), "%s/outside", f.dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(file, sizeof(file), "%s/sectorstore.json", path);
	text = "{\"ID\":\"8ca4f9e6-1ee1-4097-b043-51d8bdb46ce1\",\"Weight\":5,\"CanSeal\":false,"
	       "\"CanStore\":true,\"MaxStorage\":1073741824}";
	assert_int_equal(cairn_file_replace_atomic(file, text, strlen(text), 0644), 0);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, NULL, id2), 0);
	assert_string_equal(id2, "8ca4f9e6-1ee1-4097-b043-51d8bdb46ce1");
	/* Moving the store: reopen from a renamed directory. */
	fx_close(&f);
	{
		char moved[200];

		snprintf(moved, sizeof(moved), "%s/moved", f.dir);
		assert_int_equal(rename(f.repo, moved), 0);
		snprintf(f.repo, sizeof(f.repo), "%s", moved);
	}
	fx_open(&f);
	memset(&info, 0, sizeof(info));
	assert_int_equal(cairn_sector_storage_list(f.st, count_cb, &info), 0);
	assert_string_equal(info.id, id2);
	assert_true(info.can_store);
	assert_int_equal(info.max_storage, GiB);
	assert_true(info.stat.available <= (int64_t)GiB);
	assert_int_equal(cairn_sector_storage_detach(f.st, id), 0);
	assert_int_equal(cairn_sector_storage_detach(f.st, id), CAIRN_ENOTFOUND);
	snprintf(file, sizeof(file), "%s/storage.json", f.repo);
	text = read_text(file);
	assert_non_null(strstr(text, "/outside"));
	assert_null(strstr(text, "seal"));
	cairn_free(text);
	fx_free(&f);
}

/* A plain binary Merkle tree over 32-byte nodes (trunc254). */
static void plain_root(uint8_t out[32], const uint8_t *data, uint64_t n)
{
	uint64_t nodes = n / 32;
	uint8_t *level = malloc(n);

	memcpy(level, data, n);
	while (nodes > 1) {
		for (uint64_t i = 0; i < nodes / 2; i++) {
			SHA256(level + 64 * i, 64, level + 32 * i);
			level[32 * i + 31] &= 0x3f;
		}
		nodes /= 2;
	}
	memcpy(out, level, 32);
	free(level);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(cairn_file_write_full(fd, p, n, path), 0);
	close(fd);
}

static void test_add_read(void **state)
{
	const uint64_t ssize = 8 * MiB;
	/* Mixed sizes: fillers of many sizes between them. */
	static const size_t sizes[] = {1000, 100, 5000, 127 * 1024, 300000, 65, 0, 2 * 1024 * 1024 / 128 * 127};
	const size_t np = sizeof(sizes) / sizeof(sizes[0]);
	cairn_storage_init init = {10, true, true, 0};
	uint8_t *payload[8], *sector = calloc(ssize, 1), commd[32], want[32], fileroot[32];
	cairn_sector_piece pcs[8];
	cairn_sector_id sid = {1000, 7};
	char path[600], file[800];
	uint64_t end = 0;
	fixture f;
	int fd;

	(void)state;
	fx_new(&f);
	snprintf(path, sizeof(path), "%s/seal", f.repo);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, &init, NULL), 0);
	/* A new sector needs a proof. */
	write_file("/tmp/cairn-sector-piece.tmp", (const uint8_t *)"x", 1);
	fd = open("/tmp/cairn-sector-piece.tmp", O_RDONLY);
	assert_int_equal(cairn_sector_add_piece(&pcs[0], f.st, &sid, UINT32_MAX, fd, 0, 1, NULL, 1),
			 CAIRN_ENOTFOUND);
	close(fd);
	for (size_t i = 0; i < np; i++) {
		unsigned proof;
		cairn_piece_info ref;

		payload[i] = malloc(sizes[i] + 1);
		fill_random(payload[i], sizes[i]);
		write_file("/tmp/cairn-sector-piece.tmp", payload[i], sizes[i]);
		fd = open("/tmp/cairn-sector-piece.tmp", O_RDONLY);
		assert_int_equal(cairn_sector_proof_for_size(&proof, ssize), 0);
		assert_int_equal(cairn_sector_add_piece(&pcs[i], f.st, &sid, proof, fd, 0, sizes[i], NULL,
							i % 2 ? 2 : 1), 0);
		close(fd);
		/* CommP as the piece part computes it on its own. */
		assert_int_equal(cairn_commp_sum(&ref, payload[i], sizes[i], 1), 0);
		assert_memory_equal(ref.commp, pcs[i].info.commp, 32);
		/* Aligned to its size, after the one before. */
		assert_int_equal(pcs[i].offset % pcs[i].info.padded_size, 0);
		assert_true(pcs[i].offset >= end);
		assert_true(pcs[i].offset - end < pcs[i].info.padded_size);
		end = pcs[i].offset + pcs[i].info.padded_size;
		/* The reference sector: each payload padded at its offset. */
		{
			size_t q = (sizes[i] + 126) / 127 * 127;
			uint8_t *in = calloc(q + 127, 1);

			memcpy(in, payload[i], sizes[i]);
			assert_int_equal(cairn_fr32_pad(sector + pcs[i].offset, in, q), 0);
			free(in);
		}
	}
	/* CommD from the index = the root of the reference sector = the
	 * root of the file's data region. */
	assert_int_equal(cairn_sector_commd(commd, f.st, &sid), 0);
	plain_root(want, sector, ssize);
	assert_memory_equal(commd, want, 32);
	{
		cairn_buf b = CAIRN_BUF_INIT;
		uint8_t *disk = malloc(ssize);

		assert_int_equal(cairn_sector_find(&b, NULL, f.st, &sid, CAIRN_SECTOR_UNSEALED), 0);
		snprintf(file, sizeof(file), "%s", (const char *)b.data);
		cairn_buf_free(&b);
		fd = open(file, O_RDONLY);
		assert_int_equal(cairn_file_pread_full(fd, disk, ssize, 0, file), 0);
		close(fd);
		plain_root(fileroot, disk, ssize);
		assert_memory_equal(fileroot, want, 32);
		free(disk);
		/* Sparse: fillers and zero tails are holes. */
		assert_true(blocks(file) < ssize / 2);
	}
	/* Random ranges of every piece read back equal, by CID and by place. */
	for (size_t i = 0; i < np; i++) {
		cairn_sector_reader *r;
		cairn_cid cid;

		assert_int_equal(cairn_piece_cid_v2(&cid, &pcs[i].info), 0);
		assert_int_equal(cairn_sector_reader_open_cid(&r, f.st, &cid), 0);
		assert_int_equal(cairn_sector_reader_size(r), sizes[i]);
		for (int k = 0; k < 30 && sizes[i]; k++) {
			uint64_t off = rnd() % sizes[i], len = 1 + rnd() % (sizes[i] - off);
			uint8_t *buf = malloc(len);

			assert_int_equal(cairn_sector_reader_read_at(r, buf, len, off), 0);
			assert_memory_equal(buf, payload[i] + off, len);
			free(buf);
		}
		{
			uint8_t one;

			assert_int_equal(cairn_sector_reader_read_at(r, &one, 1, sizes[i]), CAIRN_ECORRUPT);
		}
		cairn_sector_reader_close(r);
		assert_int_equal(cairn_sector_reader_open(&r, f.st, &sid, pcs[i].offset,
							  pcs[i].info.padded_size, UINT64_MAX), 0);
		assert_int_equal(cairn_sector_reader_size(r), pcs[i].info.padded_size / 128 * 127);
		cairn_sector_reader_close(r);
	}
	/* A piece that does not fit what is left. */
	{
		uint8_t *big = calloc(4 * MiB, 1);

		write_file("/tmp/cairn-sector-piece.tmp", big, 4 * MiB);
		fd = open("/tmp/cairn-sector-piece.tmp", O_RDONLY);
		assert_int_equal(cairn_sector_add_piece(&pcs[0], f.st, &sid, 0, fd, 0, 4 * MiB, NULL, 1),
				 CAIRN_ETOOBIG);
		close(fd);
		free(big);
	}
	assert_int_equal(cairn_sector_check(f.st, NULL, NULL, NULL), 0);

	/* The mounts: sector:// by place, piece:// by CID, then gone. */
	{
		cairn_mount_registry *reg;
		cairn_mount *m;
		char url[400], s[CAIRN_CID_MAX_STRING];
		uint8_t *buf = malloc(sizes[2]);
		cairn_cid cid;

		assert_int_equal(cairn_mount_registry_new(&reg), 0);
		assert_int_equal(cairn_sector_mount_register(reg, f.st), 0);
		snprintf(url, sizeof(url), "sector://1000/7/%llu/%llu", (unsigned long long)pcs[2].offset,
			 (unsigned long long)pcs[2].info.padded_size);
		assert_int_equal(cairn_mount_open(&m, reg, url, NULL), 0);
		assert_int_equal(cairn_mount_size(m), pcs[2].info.padded_size / 128 * 127);
		assert_int_equal(cairn_mount_read_at(m, buf, sizes[2], 0), 0);
		assert_memory_equal(buf, payload[2], sizes[2]);
		cairn_mount_close(m);
		cairn_piece_cid_v1(&cid, pcs[2].info.commp);
		cairn_cid_to_string(s, &cid);
		snprintf(url, sizeof(url), "piece://%s", s);
		assert_int_equal(cairn_mount_open(&m, reg, url, NULL), 0);
		assert_int_equal(cairn_mount_size(m), sizes[2]);
		assert_int_equal(cairn_mount_read_at(m, buf, sizes[2], 0), 0);
		assert_memory_equal(buf, payload[2], sizes[2]);
		cairn_mount_close(m);
		assert_int_equal(cairn_mount_open(&m, reg, "sector://1000/7/3/128", NULL), CAIRN_EINVAL);
		/* No unsealed copy: the message the shard will carry. */
		assert_int_equal(unlink(file), 0);
		assert_int_equal(cairn_mount_open(&m, reg, url, NULL), CAIRN_ENOTFOUND);
		assert_non_null(strstr(cairn_error_last(), "no unsealed copy"));
		assert_int_equal(cairn_sector_check(f.st, &sid, NULL, NULL), 1);
		cairn_mount_registry_free(reg);
		free(buf);
	}
	for (size_t i = 0; i < np; i++)
		free(payload[i]);
	free(sector);
	unlink("/tmp/cairn-sector-piece.tmp");
	fx_free(&f);
}

/* The whole unsealed file (data and trailer) into *out. */
static size_t slurp(uint8_t **out, const char *file)
{
	struct stat sb;
	int fd = open(file, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	*out = malloc((size_t)sb.st_size + 1);
	assert_int_equal(cairn_file_pread_full(fd, *out, (size_t)sb.st_size, 0, file), 0);
	close(fd);
	return (size_t)sb.st_size;
}

static int n_written;

static void count_written(void *payload)
{
	(void)payload;
	n_written++;
}

static void die_written(void *payload)
{
	(void)payload;
	raise(SIGKILL);
}

/* add-piece with the CommP checked: a mismatch leaves a new sector
 * nonexistent and an existing one byte for byte as it was (trailer too);
 * a crash in the unchecked window marks nothing, and the add then done
 * again lands at the same place. */
static void test_add_checked(void **state)
{
	const uint64_t ssize = 8 * MiB;
	cairn_storage_init init = {10, true, true, 0};
	static const size_t sizes[] = {1000, 5000};
	uint8_t *payload[2], *before, *after;
	cairn_piece_info ref[2];
	cairn_sector_add_check check = {NULL, count_written, NULL};
	cairn_sector_piece pc;
	cairn_sector_info si;
	cairn_sector_id sid = {1000, 9};
	cairn_buf b = CAIRN_BUF_INIT;
	char path[600], file[800];
	size_t nb, na;
	unsigned proof;
	fixture f;
	pid_t pid;
	int fd, status;

	(void)state;
	fx_new(&f);
	snprintf(path, sizeof(path), "%s/seal", f.repo);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, &init, NULL), 0);
	assert_int_equal(cairn_sector_proof_for_size(&proof, ssize), 0);
	for (int i = 0; i < 2; i++) {
		payload[i] = malloc(sizes[i]);
		fill_random(payload[i], sizes[i]);
		assert_int_equal(cairn_commp_sum(&ref[i], payload[i], sizes[i], 1), 0);
	}
	/* A new sector and the wrong CommP: no sector, no file, no entry. */
	write_file("/tmp/cairn-sector-checked.tmp", payload[0], sizes[0]);
	fd = open("/tmp/cairn-sector-checked.tmp", O_RDONLY);
	check.commp = ref[1].commp;
	assert_int_equal(cairn_sector_add_piece_checked(&pc, f.st, &sid, proof, fd, 0, sizes[0],
							NULL, 1, &check), CAIRN_EMISMATCH);
	assert_int_equal(n_written, 1);
	assert_int_equal(cairn_sector_get(&si, f.st, &sid), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_sector_find(&b, NULL, f.st, &sid, CAIRN_SECTOR_UNSEALED),
			 CAIRN_ENOTFOUND);
	cairn_buf_clear(&b);
	/* The right one: kept. */
	check.commp = ref[0].commp;
	assert_int_equal(cairn_sector_add_piece_checked(&pc, f.st, &sid, proof, fd, 0, sizes[0],
							NULL, 1, &check), 0);
	assert_int_equal(n_written, 2);
	assert_memory_equal(pc.info.commp, ref[0].commp, 32);
	close(fd);
	assert_int_equal(cairn_sector_find(&b, NULL, f.st, &sid, CAIRN_SECTOR_UNSEALED), 0);
	snprintf(file, sizeof(file), "%s", (const char *)b.data);
	cairn_buf_free(&b);
	/* An existing sector and the wrong CommP (a filler gap before it):
	 * every byte as before, the trailer too, one piece listed. */
	nb = slurp(&before, file);
	write_file("/tmp/cairn-sector-checked.tmp", payload[1], sizes[1]);
	fd = open("/tmp/cairn-sector-checked.tmp", O_RDONLY);
	check.commp = ref[0].commp;
	assert_int_equal(cairn_sector_add_piece_checked(&pc, f.st, &sid, proof, fd, 0, sizes[1],
							NULL, 1, &check), CAIRN_EMISMATCH);
	assert_non_null(strstr(cairn_error_last(), "refused, nothing kept"));
	na = slurp(&after, file);
	assert_int_equal(na, nb);
	assert_memory_equal(after, before, nb);
	free(after);
	assert_int_equal(cairn_sector_get(&si, f.st, &sid), 0);
	assert_int_equal(si.n_pieces, 1);
	cairn_sector_info_clear(&si);
	/* A crash in the unchecked window: the trailer as before, nothing
	 * listed; the add done again goes to the same place and reads back. */
	check.commp = ref[1].commp;
	check.on_written = die_written;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cairn_sector_add_piece_checked(&pc, f.st, &sid, proof, fd, 0, sizes[1], NULL, 1,
					       &check);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	na = slurp(&after, file);
	assert_int_equal(na, nb);
	assert_memory_equal(after + ssize, before + ssize, nb - ssize);
	free(after);
	assert_int_equal(cairn_sector_get(&si, f.st, &sid), 0);
	assert_int_equal(si.n_pieces, 1);
	cairn_sector_info_clear(&si);
	check.on_written = NULL;
	assert_int_equal(cairn_sector_add_piece_checked(&pc, f.st, &sid, proof, fd, 0, sizes[1],
							NULL, 1, &check), 0);
	close(fd);
	assert_int_equal(pc.offset, 8192);
	{
		cairn_sector_reader *r;
		uint8_t *buf = malloc(sizes[1]);

		assert_int_equal(cairn_sector_reader_open(&r, f.st, &sid, pc.offset,
							  pc.info.padded_size, sizes[1]), 0);
		assert_int_equal(cairn_sector_reader_read_at(r, buf, sizes[1], 0), 0);
		assert_memory_equal(buf, payload[1], sizes[1]);
		cairn_sector_reader_close(r);
		free(buf);
	}
	assert_int_equal(cairn_sector_check(f.st, NULL, NULL, NULL), 0);
	free(before);
	for (int i = 0; i < 2; i++)
		free(payload[i]);
	unlink("/tmp/cairn-sector-checked.tmp");
	fx_free(&f);
}

static void test_move_and_lock(void **state)
{
	cairn_storage_init seal = {10, true, false, 0}, store = {10, false, true, 0};
	cairn_sector_id sid = {5, 1};
	cairn_sector_lock *l1, *l2;
	cairn_sector_piece pc;
	cairn_sector_reader *r;
	char path[600], id2[40], got[40];
	uint8_t data[3000], back[3000];
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid cid;
	fixture f;
	int fd;

	(void)state;
	fx_new(&f);
	snprintf(path, sizeof(path), "%s/seal", f.repo);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, &seal, NULL), 0);
	snprintf(path, sizeof(path), "%s/store", f.repo);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, &store, id2), 0);
	fill_random(data, sizeof(data));
	write_file("/tmp/cairn-sector-move.tmp", data, sizeof(data));
	fd = open("/tmp/cairn-sector-move.tmp", O_RDONLY);
	assert_int_equal(cairn_sector_add_piece(&pc, f.st, &sid, 6, fd, 0, sizeof(data), NULL, 1), 0);
	close(fd);
	unlink("/tmp/cairn-sector-move.tmp");

	/* Locks: readers share, a writer waits for none of them. */
	assert_int_equal(cairn_sector_lock_take(&l1, f.st, &sid, CAIRN_SECTOR_UNSEALED, 0, false), 0);
	assert_int_equal(cairn_sector_lock_take(&l2, f.st, &sid, CAIRN_SECTOR_UNSEALED, 0, false), 0);
	cairn_sector_lock_release(l2);
	assert_int_equal(cairn_sector_lock_take(&l2, f.st, &sid, 0, CAIRN_SECTOR_UNSEALED, false),
			 CAIRN_EEXISTS);
	assert_int_equal(cairn_sector_move(f.st, &sid, CAIRN_SECTOR_UNSEALED, id2), CAIRN_EEXISTS);
	/* Another type is free. */
	assert_int_equal(cairn_sector_lock_take(&l2, f.st, &sid, 0, CAIRN_SECTOR_SEALED, false), 0);
	cairn_sector_lock_release(l2);
	cairn_sector_lock_release(l1);

	assert_int_equal(cairn_sector_move(f.st, &sid, CAIRN_SECTOR_UNSEALED, id2), 0);
	assert_int_equal(cairn_sector_find(&b, got, f.st, &sid, CAIRN_SECTOR_UNSEALED), 0);
	assert_string_equal(got, id2);
	assert_non_null(strstr((const char *)b.data, "/store/unsealed/s-t05-1"));
	cairn_buf_free(&b);
	cairn_piece_cid_v2(&cid, &pc.info);
	assert_int_equal(cairn_sector_reader_open_cid(&r, f.st, &cid), 0);
	assert_int_equal(cairn_sector_reader_read_at(r, back, sizeof(back), 0), 0);
	assert_memory_equal(back, data, sizeof(data));
	cairn_sector_reader_close(r);
	/* A sealing-only path cannot take it back. */
	snprintf(path, sizeof(path), "%s/seal", f.repo);
	assert_int_equal(cairn_sector_move(f.st, &sid, CAIRN_SECTOR_UNSEALED, path), CAIRN_EINVAL);
	/* Redeclare finds the file where it is; drop-missing forgets gone ones. */
	{
		uint64_t declared, dropped;

		assert_int_equal(cairn_sector_storage_redeclare(f.st, NULL, true, &declared, &dropped), 0);
		assert_int_equal(declared, 1);
		assert_int_equal(dropped, 0);
	}
	fx_free(&f);
}

/* ---------------------------------------------------------- reservations */

static int64_t reserved_now(fixture *f)
{
	cairn_storage_info info;

	memset(&info, 0, sizeof(info));
	assert_int_equal(cairn_sector_storage_list(f->st, count_cb, &info), 0);
	return info.stat.reserved;
}

static void test_reservations(void **state)
{
	const uint64_t ssize = 512 * MiB;
	enum { CHILDREN = 6, TRIES = 3 };
	cairn_storage_init init = {10, true, true, 10 * 512 * MiB + 64 * KiB};
	char path[600], id[40];
	struct statvfs vfs;
	int go[2], done[2], rel[2], total = 0;
	pid_t pids[CHILDREN];
	fixture f;

	(void)state;
	fx_new(&f);
	snprintf(path, sizeof(path), "%s/p", f.repo);
	assert_int_equal(cairn_sector_storage_attach(f.st, path, &init, id), 0);
	assert_int_equal(statvfs(path, &vfs), 0);
	if ((uint64_t)vfs.f_bavail * vfs.f_frsize < 6 * GiB) {
		fx_free(&f);
		skip();
	}
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(done), 0);
	assert_int_equal(pipe(rel), 0);
	for (int c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			/* Each child its own connection and store: other processes. */
			cairn_sector_reservation *res[TRIES];
			fixture cf = f;
			char b;
			int got = 0;

			close(go[1]);
			close(rel[1]);
			cf.db = NULL;
			cf.st = NULL;
			fx_open(&cf);
			if (read(go[0], &b, 1) != 1)
				_exit(100);
			for (int t = 0; t < TRIES; t++) {
				cairn_sector_id sid = {1, (uint64_t)(c * TRIES + t)};
				int rc = cairn_sector_reserve(&res[got], cf.st, id, &sid, ssize,
							      CAIRN_SECTOR_UNSEALED, CAIRN_SECTOR_PATH_SEALING);

				if (rc == 0)
					got++;
				else if (rc != CAIRN_ETOOBIG) {
					fprintf(stderr, "child %d: %s\n", c, cairn_error_last());
					_exit(101);
				}
			}
			/* Hold them until every child has tried (rel closes). */
			if (write(done[1], &b, 1) != 1 || read(rel[0], &b, 1) != 0)
				_exit(102);
			for (int t = 0; t < got; t++)
				cairn_sector_reservation_release(res[t]);
			_exit(got);
		}
	}
	/* Start them together. */
	for (int c = 0; c < CHILDREN; c++)
		assert_int_equal(write(go[1], "g", 1), 1);
	for (int c = 0; c < CHILDREN; c++) {
		char b;

		assert_int_equal(read(done[0], &b, 1), 1);
	}
	/* All holding: ten reservations of 512 MiB fill the 5 GiB limit. */
	assert_int_equal(reserved_now(&f), (int64_t)(10 * ssize));
	close(rel[1]);
	for (int c = 0; c < CHILDREN; c++) {
		int status;

		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status));
		assert_true(WEXITSTATUS(status) <= TRIES);
		total += WEXITSTATUS(status);
	}
	assert_int_equal(total, 10);
	assert_int_equal(reserved_now(&f), 0);

	/* A killed process's reservation disappears with it. */
	{
		int ready[2];
		pid_t pid;
		char b;

		assert_int_equal(pipe(ready), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			cairn_sector_reservation *res;
			cairn_sector_id sid = {1, 99};
			fixture cf = f;

			cf.db = NULL;
			cf.st = NULL;
			fx_open(&cf);
			if (cairn_sector_reserve(&res, cf.st, id, &sid, ssize, CAIRN_SECTOR_UNSEALED,
						 CAIRN_SECTOR_PATH_SEALING))
				_exit(1);
			if (write(ready[1], "r", 1) != 1)
				_exit(2);
			for (;;)
				pause();
		}
		assert_int_equal(read(ready[0], &b, 1), 1);
		assert_int_equal(reserved_now(&f), (int64_t)ssize);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, NULL, 0), pid);
		assert_int_equal(reserved_now(&f), 0);
		close(ready[0]);
		close(ready[1]);
	}
	/* A reservation shrinks as its file fills. */
	{
		cairn_sector_reservation *res;
		cairn_sector_id sid = {1, 200};
		char file[800];
		uint8_t *chunk = calloc(MiB, 1);
		int fd;

		assert_int_equal(cairn_sector_reserve(&res, f.st, id, &sid, ssize, CAIRN_SECTOR_UNSEALED,
						      CAIRN_SECTOR_PATH_SEALING), 0);
		snprintf(file, sizeof(file), "%s/unsealed/s-t01-200", path);
		fd = open(file, O_WRONLY | O_CREAT, 0644);
		memset(chunk, 7, MiB);
		for (int i = 0; i < 4; i++)
			assert_int_equal(cairn_file_pwrite_full(fd, chunk, MiB, (uint64_t)i * MiB, file), 0);
		fsync(fd);
		close(fd);
		assert_true(reserved_now(&f) <= (int64_t)(ssize - 4 * MiB));
		cairn_sector_reservation_release(res);
		unlink(file);
		free(chunk);
	}
	close(go[0]);
	close(go[1]);
	close(rel[0]);
	close(done[0]);
	close(done[1]);
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rleplus_vectors),
		cmocka_unit_test(test_partialfile_vectors),
		cmocka_unit_test(test_partialfile_random),
		cmocka_unit_test(test_partialfile_holes),
		cmocka_unit_test(test_names_sizes),
		cmocka_unit_test(test_attach),
		cmocka_unit_test(test_add_read),
		cmocka_unit_test(test_add_checked),
		cmocka_unit_test(test_move_and_lock),
		cmocka_unit_test(test_reservations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
