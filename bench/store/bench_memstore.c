/* bench_memstore.c: the memory store building a DAG many times its budget over
 * LMDB, as a migration does: peak RSS against the budget, put rate, flush(root).
 *
 * Two shapes: "big", 1 MiB raw leaves under dag-cbor parents of 128 links
 * (a file import); "small", ~200-byte dag-cbor nodes, leaves and parents of
 * 4 links (AMT and HAMT nodes of Filecoin state). Built bottom-up and
 * streamed: each block is put as soon as it is made and only the CIDs of
 * unfinished parents are kept, so what the process holds is the store's.
 *
 * Memory is read three ways: getrusage's ru_maxrss (peak of everything,
 * including the LMDB file pages mapped in, which the kernel can drop), and
 * RssAnon and VmRSS sampled from /proc/self/status while building (peak of
 * the heap: the store's blocks, and LMDB's dirty pages of the open write
 * batch). Run under /usr/bin/time -v for the figure DESIGN.md asks for.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cairn/store.h"

#define FANOUT_MAX 256
#define DEPTH_MAX 32

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_memstore [--shape big|small] [--budget MiB] [--dag MiB] [--nodes N]\n"
		"                      [--backing lmdb|null] [--dir DIR] [--lmdb-batch MiB]\n"
		"                      [--check] [--json]\n"
		"Builds a DAG bottom-up through a memory store with the budget over an LMDB\n"
		"store in a new directory under DIR (default .), flushes the root, and reports\n"
		"the put rate and peak memory against the budget. --backing null keeps nothing\n"
		"(the memory store's own RSS); --check then counts the blocks in LMDB and walks\n"
		"the DAG (after the figures: it maps the whole file in).\n"
		"  big:   --dag MiB of 1 MiB raw leaves under dag-cbor parents of 128 links\n"
		"         (default 1024)\n"
		"  small: --nodes ~200-byte dag-cbor nodes, parents of 4 links (default 3000000)\n"
		"Defaults: budget 64 MiB, LMDB write batch 16 MiB (its dirty pages are heap).\n"
		"MB = 10^6 bytes.\n");
}

/* ------------------------------------------------------------- memory */

typedef struct {
	uint64_t rss, anon, file; /* KiB, the highest seen */
} mem_peak;

static void mem_sample(mem_peak *p)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	uint64_t v;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %" SCNu64, &v) == 1 && v > p->rss)
			p->rss = v;
		else if (sscanf(line, "RssAnon: %" SCNu64, &v) == 1 && v > p->anon)
			p->anon = v;
		else if (sscanf(line, "RssFile: %" SCNu64, &v) == 1 && v > p->file)
			p->file = v;
	}
	fclose(f);
}

static uint64_t maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_maxrss;
}

/* ------------------------------------------------------------- the DAG */

typedef struct {
	cairn_store *s;
	size_t fanout;
	size_t pad;          /* filler bytes in a parent */
	cairn_cid level[DEPTH_MAX][FANOUT_MAX];
	size_t n[DEPTH_MAX];
	cairn_buf node;
	uint64_t seed;
	uint64_t blocks, bytes, put_ns;
	uint64_t sample_every;
	mem_peak peak;
} builder;

static uint64_t rng(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v = rng(&seed);
		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] = (uint8_t)rng(&seed);
}

static void cbor_head(cairn_buf *b, unsigned major, uint64_t v)
{
	uint8_t m = (uint8_t)(major << 5);

	if (v < 24) {
		cairn_buf_putc(b, m | (uint8_t)v);
	} else if (v < 0x100) {
		cairn_buf_putc(b, m | 24);
		cairn_buf_putc(b, (uint8_t)v);
	} else if (v < 0x10000) {
		cairn_buf_putc(b, m | 25);
		cairn_buf_putc(b, (uint8_t)(v >> 8));
		cairn_buf_putc(b, (uint8_t)v);
	} else {
		cairn_buf_putc(b, m | 26);
		for (int i = 3; i >= 0; i--)
			cairn_buf_putc(b, (uint8_t)(v >> (8 * i)));
	}
}

/* [bytes(pad), [links...]], as the unit tests make them. */
static int encode_node(cairn_buf *b, const cairn_cid *links, size_t n, size_t pad, uint64_t seed)
{
	cairn_buf_clear(b);
	cairn_buf_putc(b, 0x82);
	cbor_head(b, 2, pad);
	if (cairn_buf_reserve(b, pad))
		return b->err;
	fill(b->data + b->len, pad, seed);
	b->len += pad;
	cbor_head(b, 4, n);
	for (size_t i = 0; i < n; i++) {
		cairn_buf_putc(b, 0xd8);
		cairn_buf_putc(b, 0x2a);
		cbor_head(b, 2, links[i].len + 1u);
		cairn_buf_putc(b, 0);
		cairn_buf_append(b, links[i].bytes, links[i].len);
	}
	return b->err;
}

static int put(builder *bd, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	uint64_t t;
	int rc;

	/* Before a put that evicts the store is at its fullest; after it,
	 * LMDB's write batch may be: sampled on both sides. */
	if ((bd->blocks + 1) % bd->sample_every == 0)
		mem_sample(&bd->peak);
	t = cairn_time_ns();
	rc = cairn_store_put(bd->s, cid, data, len);

	bd->put_ns += cairn_time_ns() - t;
	if (rc) {
		fprintf(stderr, "bench_memstore: put: %s\n", cairn_error_last());
		return rc;
	}
	bd->blocks++;
	bd->bytes += len;
	if (bd->blocks % bd->sample_every == 0)
		mem_sample(&bd->peak);
	return 0;
}

static int add(builder *bd, unsigned k, const cairn_cid *cid);

/* Makes the parent of level k's links and adds it one level up. */
static int close_level(builder *bd, unsigned k)
{
	cairn_cid cid;
	int rc;

	if (k + 1 >= DEPTH_MAX)
		return cairn_error_set(CAIRN_ETOOBIG, "DAG too deep");
	if ((rc = encode_node(&bd->node, bd->level[k], bd->n[k], bd->pad, bd->seed++)) ||
	    (rc = cairn_cid_compute(&cid, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_BLAKE2B_256,
				    bd->node.data, bd->node.len)) ||
	    (rc = put(bd, &cid, bd->node.data, bd->node.len)))
		return rc;
	bd->n[k] = 0;
	return add(bd, k + 1, &cid);
}

static int add(builder *bd, unsigned k, const cairn_cid *cid)
{
	bd->level[k][bd->n[k]++] = *cid;
	return bd->n[k] == bd->fanout ? close_level(bd, k) : 0;
}

/* Closes the unfinished parents, lowest first; the last CID is the root. */
static int finish(builder *bd, cairn_cid *root)
{
	int rc;

	for (unsigned k = 0; k < DEPTH_MAX; k++) {
		bool higher = false;

		for (unsigned j = k + 1; j < DEPTH_MAX; j++)
			higher |= bd->n[j] > 0;
		if (!bd->n[k])
			continue;
		if (!higher && bd->n[k] == 1) {
			*root = bd->level[k][0];
			return 0;
		}
		if ((rc = close_level(bd, k)))
			return rc;
	}
	return cairn_error_set(CAIRN_EINVAL, "empty DAG");
}

/* ------------------------------------------------------- a null backing
 *
 * Takes every block and keeps none (has answers yes, so flush(root)'s
 * check passes): what is left in RSS is the memory store's own. */
static int null_put(cairn_store *s, const cairn_cid *cid, const uint8_t *data, size_t len)
{
	(void)s;
	(void)cid;
	(void)data;
	(void)len;
	return 0;
}

static int null_has(cairn_store *s, const cairn_cid *cid)
{
	(void)s;
	(void)cid;
	return 1;
}

static void null_free(cairn_store *s)
{
	(void)s;
}

static const cairn_store_ops null_ops = {
	.version = CAIRN_STORE_OPS_VERSION,
	.name = "null",
	.has = null_has,
	.put = null_put,
	.free = null_free,
};

static cairn_store null_store = {&null_ops};

static int count_one(const cairn_cid *cid, void *payload)
{
	(void)cid;
	(*(uint64_t *)payload)++;
	return 0;
}

/* ------------------------------------------------------------------ main */

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *shape = "big", *parent = ".";
	uint64_t budget_mib = 64, dag_mib = 1024, nodes = 3000000, batch_mib = 16;
	bool json = false, check = false, use_lmdb = true;
	cairn_store_lmdb_options lopts = CAIRN_STORE_LMDB_OPTIONS_INIT;
	cairn_store *lm = NULL, *s = NULL;
	cairn_store_mem_stats st;
	builder *bd;
	cairn_cid root;
	char dir[4096], cmd[4200];
	uint8_t *leaf = NULL;
	uint64_t base_kib, t0, t_build, t_flush, stored = 0, reached = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = true;
			continue;
		} else if (!strcmp(a, "--check")) {
			check = true;
			continue;
		} else if (!v) {
			bad = 1;
		} else if (!strcmp(a, "--shape")) {
			shape = v;
			bad = strcmp(v, "big") && strcmp(v, "small");
		} else if (!strcmp(a, "--budget")) {
			bad = parse_u64(v, &budget_mib);
		} else if (!strcmp(a, "--dag")) {
			bad = parse_u64(v, &dag_mib) || !dag_mib;
		} else if (!strcmp(a, "--nodes")) {
			bad = parse_u64(v, &nodes) || nodes < 2;
		} else if (!strcmp(a, "--backing")) {
			use_lmdb = !strcmp(v, "lmdb");
			bad = !use_lmdb && strcmp(v, "null");
		} else if (!strcmp(a, "--dir")) {
			parent = v;
		} else if (!strcmp(a, "--lmdb-batch")) {
			bad = parse_u64(v, &batch_mib) || !batch_mib;
		} else {
			bad = 1;
		}
		if (bad) {
			usage(stderr);
			return 2;
		}
		i++;
	}

	base_kib = maxrss_kib();
	snprintf(dir, sizeof(dir), "%s/bench-memstore-XXXXXX", parent);
	if (!mkdtemp(dir)) {
		fprintf(stderr, "bench_memstore: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	lopts.map_size = 64ull << 30;
	lopts.batch_bytes = batch_mib << 20;
	lopts.no_sync = true;
	if (!(bd = calloc(1, sizeof(*bd)))) {
		fprintf(stderr, "bench_memstore: out of memory\n");
		return 1;
	}
	if (!use_lmdb)
		lm = &null_store;
	if ((use_lmdb && (rc = cairn_store_lmdb_open(&lm, dir, &lopts))) ||
	    (rc = cairn_store_mem_open(&s, lm, budget_mib << 20))) {
		fprintf(stderr, "bench_memstore: %s\n", cairn_error_last());
		goto out;
	}
	bd->s = s;
	bd->seed = 1;
	t0 = cairn_time_ns();
	if (!strcmp(shape, "big")) {
		const size_t leaf_len = 1u << 20;

		bd->fanout = 128;
		bd->pad = 16;
		bd->sample_every = 1;
		if (!(leaf = malloc(leaf_len))) {
			rc = CAIRN_ENOMEM;
			goto out;
		}
		for (uint64_t i = 0; i < dag_mib && !rc; i++) {
			cairn_cid cid;

			fill(leaf, leaf_len, i * 7919 + 1);
			if (!(rc = cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, leaf,
						     leaf_len)) &&
			    !(rc = put(bd, &cid, leaf, leaf_len)))
				rc = add(bd, 0, &cid);
		}
	} else {
		/* Three leaves in four: a tree of fan-out 4 has a third as many
		 * parents as leaves. 196 filler bytes make a 200-byte leaf; a
		 * parent's 4 links of 41 bytes and 32 filler bytes, 200 bytes. */
		uint64_t leaves = nodes / 4 * 3;

		bd->fanout = 4;
		bd->pad = 32;
		bd->sample_every = 4096;
		for (uint64_t i = 0; i < leaves && !rc; i++) {
			cairn_cid cid;

			if (!(rc = encode_node(&bd->node, NULL, 0, 196, i * 7919 + 1)) &&
			    !(rc = cairn_cid_compute(&cid, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_BLAKE2B_256,
						     bd->node.data, bd->node.len)) &&
			    !(rc = put(bd, &cid, bd->node.data, bd->node.len)))
				rc = add(bd, 0, &cid);
		}
	}
	if (!rc)
		rc = finish(bd, &root);
	mem_sample(&bd->peak);
	t_build = cairn_time_ns() - t0;
	if (rc) {
		fprintf(stderr, "bench_memstore: building: %s\n", cairn_error_last());
		goto out;
	}
	cairn_store_mem_stats_get(&st, s);
	t0 = cairn_time_ns();
	if ((rc = cairn_store_flush(s, &root))) {
		fprintf(stderr, "bench_memstore: flush: %s\n", cairn_error_last());
		goto out;
	}
	t_flush = cairn_time_ns() - t0;
	mem_sample(&bd->peak);

	{
		uint64_t peak_kib = maxrss_kib();
		cairn_store_mem_stats end;
		double put_s = (double)bd->put_ns / 1e9, build_s = (double)t_build / 1e9;

		cairn_store_mem_stats_get(&end, s);
		if (end.flushed_blocks != bd->blocks || end.held_blocks || end.put_blocks != bd->blocks) {
			fprintf(stderr, "bench_memstore: %" PRIu64 " blocks put, %" PRIu64 " flushed, %"
				PRIu64 " still held\n", bd->blocks, end.flushed_blocks, end.held_blocks);
			rc = 1;
			goto out;
		}
		/* After the figures are taken: it maps the whole file in. The walk
		 * keeps every CID (184 bytes each), so it is for the big shape. */
		if (check && use_lmdb &&
		    ((rc = cairn_store_iterate(lm, count_one, &stored)) ||
		     (!strcmp(shape, "big") && (rc = cairn_store_walk(lm, &root, count_one, &reached))))) {
			fprintf(stderr, "bench_memstore: check: %s\n", cairn_error_last());
			goto out;
		}
		if (check && use_lmdb && (stored != bd->blocks || (reached && reached != bd->blocks))) {
			fprintf(stderr, "bench_memstore: LMDB holds %" PRIu64 " blocks (%" PRIu64
				" reached from the root), %" PRIu64 " were put\n",
				stored, reached, bd->blocks);
			rc = 1;
			goto out;
		}
		if (json) {
			printf("{\"shape\":\"%s\",\"backing\":\"%s\",\"budget_mib\":%" PRIu64 ",\"lmdb_batch_mib\":%" PRIu64
			       ",\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"put_seconds\":%.3f,"
			       "\"build_seconds\":%.3f,\"flush_seconds\":%.3f,\"put_mb_s\":%.1f,"
			       "\"put_blocks_s\":%.0f,\"auto_flushes\":%" PRIu64 ",\"held_at_end_mib\":%.1f,"
			       "\"baseline_rss_mib\":%.1f,\"maxrss_mib\":%.1f,\"peak_anon_mib\":%.1f,"
			       "\"peak_file_mib\":%.1f}\n",
			       shape, lm->ops->name, budget_mib, batch_mib, bd->blocks, bd->bytes, put_s, build_s,
			       (double)t_flush / 1e9, (double)bd->bytes / 1e6 / put_s,
			       (double)bd->blocks / put_s, end.auto_flushes,
			       (double)st.held_bytes / 1048576, (double)base_kib / 1024,
			       (double)peak_kib / 1024, (double)bd->peak.anon / 1024,
			       (double)bd->peak.file / 1024);
		} else {
			printf("shape %s: %" PRIu64 " blocks, %.1f MiB, budget %" PRIu64 " MiB over %s",
			       shape, bd->blocks, (double)bd->bytes / 1048576, budget_mib, lm->ops->name);
			if (use_lmdb)
				printf(" (write batch %" PRIu64 " MiB)", batch_mib);
			printf("\n");
			printf("  put:   %.2f s in put (%.1f MB/s, %.0f blocks/s); build %.2f s wall\n",
			       put_s, (double)bd->bytes / 1e6 / put_s, (double)bd->blocks / put_s,
			       build_s);
			printf("  auto flushes %" PRIu64 ", held before flush(root) %.1f MiB in %" PRIu64
			       " blocks\n", end.auto_flushes, (double)st.held_bytes / 1048576,
			       st.held_blocks);
			printf("  flush(root): %.3f s", (double)t_flush / 1e9);
			if (check && use_lmdb)
				printf("; checked: LMDB holds all %" PRIu64 " blocks", stored);
			printf("\n");
			printf("  memory: baseline %.1f MiB; peak RSS (ru_maxrss) %.1f MiB; peak "
			       "RssAnon %.1f MiB, RssFile %.1f MiB (sampled)\n",
			       (double)base_kib / 1024, (double)peak_kib / 1024,
			       (double)bd->peak.anon / 1024, (double)bd->peak.file / 1024);
		}
	}
out:
	cairn_store_free(s);
	if (use_lmdb)
		cairn_store_free(lm);
	cairn_buf_free(&bd->node);
	free(bd);
	free(leaf);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_memstore: could not remove %s\n", dir);
	return rc ? 1 : 0;
}
