/* bench_dagstore.c: the DAG store's benchmark helper, driven by
 * bench/dagstore/dagstore-bench.sh.
 *
 *   bench_dagstore gen DIR SHARDS BLOCKS SIZE
 *       Writes DIR/shard-00000.car ... : CARv1 files of BLOCKS raw blocks of
 *       SIZE bytes each (sha2-256 CIDv1), every block distinct (its first 16
 *       bytes are the shard and block numbers, the rest a xorshift stream).
 *   bench_dagstore register REPO N
 *       Registers N shards in one cairn_dagstore_register call (a store laid
 *       out as the CLI's: REPO/cairn.db, REPO/dagstore) and prints the time.
 *   bench_dagstore init REPO CONCURRENCY [no-sync] [no-verify]
 *       cairn_dagstore_initialize_all over the shards registered in REPO.
 *   bench_dagstore tlinsert DIR OUT [no-sync]
 *       The top-level index alone: for each CAR of DIR (in name order),
 *       reads its sections (untimed) and adds them with
 *       cairn_tlindex_add_shard_iter into a fresh index at OUT (timed), as
 *       initialization does.
 * Each prints one line "key=value ..." for the script to parse.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "dagstore/tlindex.h"

static int die(const char *what)
{
	fprintf(stderr, "bench_dagstore: %s: %s\n", what, cairn_error_last());
	return 1;
}

static double secs_since(uint64_t t0)
{
	return (double)(cairn_time_ns() - t0) / 1e9;
}

/* ----------------------------------------------------------------- gen */

static int gen(const char *dir, unsigned shards, unsigned blocks, unsigned size)
{
	cairn_car_writer_options o = CAIRN_CAR_WRITER_OPTIONS_INIT;
	uint8_t *data = malloc(size < 16 ? 16 : size);
	uint64_t x = 0x2545f4914f6cdd1dull, total = 0;
	uint64_t t0 = cairn_time_ns();

	if (!data || size < 16)
		return fprintf(stderr, "bench_dagstore: SIZE must be at least 16\n"), 1;
	mkdir(dir, 0755);
	o.version = 1;
	o.index_codec = 0;
	o.trusted = true;
	for (unsigned s = 0; s < shards; s++) {
		char path[4096];
		cairn_car_writer *w = NULL;
		cairn_cid cid, root;

		snprintf(path, sizeof(path), "%s/shard-%05u.car", dir, s);
		for (unsigned b = 0; b < blocks; b++) {
			uint64_t sb[2] = {s, b};

			memcpy(data, sb, 16);
			for (unsigned i = 16; i < size; i += 8) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				memcpy(data + i, &x, size - i < 8 ? size - i : 8);
			}
			if (cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, data, size))
				return die("cid");
			if (!w) {
				root = cid;
				if (cairn_car_writer_open(&w, path, &root, 1, &o))
					return die(path);
			}
			if (cairn_car_writer_put(w, &cid, data, size))
				return die(path);
		}
		if (w && cairn_car_writer_finish(w))
			return die(path);
		cairn_car_writer_free(w);
		total += blocks;
	}
	free(data);
	printf("shards=%u blocks=%" PRIu64 " seconds=%.3f\n", shards, total, secs_since(t0));
	return 0;
}

/* ------------------------------------------------------------- the store */

typedef struct store {
	cairn_db *db;
	cairn_dagstore *ds;
} store;

static int store_open(store *st, const char *repo, const cairn_dagstore_options *o)
{
	char path[4096];

	mkdir(repo, 0700);
	snprintf(path, sizeof(path), "%s/cairn.db", repo);
	if (cairn_db_open(&st->db, path, NULL))
		return die(path);
	snprintf(path, sizeof(path), "%s/dagstore", repo);
	if (cairn_dagstore_open(&st->ds, st->db, path, o))
		return die(path);
	return 0;
}

static void store_close(store *st)
{
	cairn_dagstore_close(st->ds);
	cairn_db_close(st->db);
}

static int reg(const char *repo, size_t n)
{
	cairn_shard_spec *specs = calloc(n, sizeof(*specs));
	char *keys = malloc(n * 80), *urls = malloc(n * 80);
	store st;
	size_t added = 0;
	uint64_t t0;
	double secs;

	if (!specs || !keys || !urls)
		return fprintf(stderr, "bench_dagstore: out of memory\n"), 1;
	for (size_t i = 0; i < n; i++) {
		/* Keys shaped like piece CIDs, in random order. */
		uint64_t h = (i + 1) * 0x9e3779b97f4a7c15ull;

		snprintf(keys + i * 80, 80, "baga6ea4seaq%016" PRIx64 "%016" PRIx64, h, h ^ 0xabcdef);
		snprintf(urls + i * 80, 80, "file:///data/pieces/%zu.car", i);
		specs[i].key = keys + i * 80;
		specs[i].url = urls + i * 80;
	}
	if (store_open(&st, repo, NULL))
		return 1;
	t0 = cairn_time_ns();
	if (cairn_dagstore_register(st.ds, specs, n, &added))
		return die("register");
	secs = secs_since(t0);
	store_close(&st);
	printf("shards=%zu added=%zu seconds=%.3f per_second=%.0f\n", n, added, secs,
	       secs > 0 ? (double)added / secs : 0.0);
	free(specs);
	free(keys);
	free(urls);
	return 0;
}

static int init(const char *repo, unsigned conc, bool no_sync, bool no_verify)
{
	cairn_dagstore_options o = CAIRN_DAGSTORE_OPTIONS_INIT;
	cairn_dagstore_progress p;
	store st;
	uint64_t t0;
	double secs;

	o.no_sync = no_sync;
	o.verify = !no_verify;
	if (store_open(&st, repo, &o))
		return 1;
	t0 = cairn_time_ns();
	if (cairn_dagstore_initialize_all(st.ds, conc, NULL, NULL, &p))
		return die("initialize_all");
	secs = secs_since(t0);
	store_close(&st);
	printf("shards=%" PRIu64 " failed=%" PRIu64 " blocks=%" PRIu64
	       " seconds=%.3f blocks_per_second=%.0f\n", p.total, p.failed, p.blocks, secs,
	       secs > 0 ? (double)p.blocks / secs : 0.0);
	return p.failed ? 1 : 0;
}

/* ------------------------------------------------------------ tlinsert */

typedef struct entries {
	cairn_buf mh;          /* multihashes, back to back */
	uint64_t *offset;
	uint32_t *size;
	uint8_t *len;
	size_t n, cap, cursor, mh_pos;
} entries;

static int next_entry(cairn_tlindex_entry *out, void *payload)
{
	entries *e = payload;

	if (e->cursor == e->n)
		return 0;
	out->mh = e->mh.data + e->mh_pos;
	out->mh_len = e->len[e->cursor];
	out->offset = e->offset[e->cursor];
	out->size = e->size[e->cursor];
	e->mh_pos += e->len[e->cursor];
	e->cursor++;
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int tlinsert(const char *dir, const char *out, bool no_sync)
{
	cairn_tlindex_options to = CAIRN_TLINDEX_OPTIONS_INIT;
	cairn_tlindex *tl;
	static char *names[100000];
	size_t nn = 0;
	uint64_t total = 0, add_ns = 0, t_all;
	entries e = {0};
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return fprintf(stderr, "bench_dagstore: %s: cannot open\n", dir), 1;
	while ((de = readdir(d)) && nn < 100000) {
		size_t l = strlen(de->d_name);

		if (l > 4 && !strcmp(de->d_name + l - 4, ".car"))
			names[nn++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof(*names), cmp_str);
	to.no_sync = no_sync;
	if (cairn_tlindex_open(&tl, out, &to))
		return die(out);
	t_all = cairn_time_ns();
	for (size_t i = 0; i < nn; i++) {
		cairn_car_options co = CAIRN_CAR_OPTIONS_INIT;
		cairn_car_reader *r;
		cairn_car_section s;
		char path[4096];
		uint64_t t0;
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		co.trusted = true;
		if (cairn_car_reader_open(&r, path, &co))
			return die(path);
		e.n = e.cursor = e.mh_pos = 0;
		cairn_buf_clear(&e.mh);
		while ((rc = cairn_car_reader_next(r, &s, false)) == 1) {
			size_t ml = (size_t)(s.cid.len - s.cid.mh_off);

			if (e.n == e.cap) {
				e.cap = e.cap ? e.cap * 2 : 1 << 16;
				e.offset = realloc(e.offset, e.cap * sizeof(*e.offset));
				e.size = realloc(e.size, e.cap * sizeof(*e.size));
				e.len = realloc(e.len, e.cap);
				if (!e.offset || !e.size || !e.len)
					return fprintf(stderr, "bench_dagstore: out of memory\n"), 1;
			}
			e.offset[e.n] = s.offset;
			e.size[e.n] = (uint32_t)s.block_len;
			e.len[e.n] = (uint8_t)ml;
			cairn_buf_append(&e.mh, s.cid.bytes + s.cid.mh_off, ml);
			e.n++;
		}
		cairn_car_reader_free(r);
		if (rc < 0)
			return die(path);
		t0 = cairn_time_ns();
		if (cairn_tlindex_add_shard_iter(tl, (uint32_t)(i + 1), next_entry, &e))
			return die("add");
		add_ns += cairn_time_ns() - t0;
		total += e.n;
		free(names[i]);
	}
	cairn_tlindex_close(tl);
	printf("shards=%zu entries=%" PRIu64 " add_seconds=%.3f entries_per_second=%.0f "
	       "wall_seconds=%.3f\n", nn, total, (double)add_ns / 1e9,
	       add_ns ? (double)total / ((double)add_ns / 1e9) : 0.0, secs_since(t_all));
	cairn_buf_free(&e.mh);
	free(e.offset);
	free(e.size);
	free(e.len);
	return 0;
}

int main(int argc, char **argv)
{
	bool no_sync = false, no_verify = false;

	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "no-sync"))
			no_sync = true;
		else if (!strcmp(argv[i], "no-verify"))
			no_verify = true;
	}
	if (argc == 6 && !strcmp(argv[1], "gen"))
		return gen(argv[2], (unsigned)strtoul(argv[3], NULL, 10),
			   (unsigned)strtoul(argv[4], NULL, 10), (unsigned)strtoul(argv[5], NULL, 10));
	if (argc == 4 && !strcmp(argv[1], "register"))
		return reg(argv[2], (size_t)strtoull(argv[3], NULL, 10));
	if (argc >= 4 && !strcmp(argv[1], "init"))
		return init(argv[2], (unsigned)strtoul(argv[3], NULL, 10), no_sync, no_verify);
	if (argc >= 4 && !strcmp(argv[1], "tlinsert"))
		return tlinsert(argv[2], argv[3], no_sync);
	fprintf(stderr, "usage: bench_dagstore gen DIR SHARDS BLOCKS SIZE\n"
			"       bench_dagstore register REPO N\n"
			"       bench_dagstore init REPO CONCURRENCY [no-sync] [no-verify]\n"
			"       bench_dagstore tlinsert DIR OUT [no-sync]\n");
	return 2;
}
