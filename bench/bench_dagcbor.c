/* bench_dagcbor.c: DAG-CBOR blocks decoded per second over the blocks of a
 * CARv1 held in memory: decode plus link walk, the link scan, and hash checks. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/ipld.h"

#define MAX_THREADS 64

/* Views into the file: a parsed cairn_cid per block would be 184 bytes, more
 * than the block itself, and would swell the peak RSS being measured. */
typedef struct block {
	const uint8_t *cid;
	size_t cid_len;
	const uint8_t *p;
	size_t len;
} block;

typedef struct car {
	cairn_buf file;
	block *blocks;
	size_t nblocks;
	uint64_t block_bytes;
} car;

typedef enum mode {
	MODE_DECODE,   /* cairn_dagcbor_decode into an arena, then walk the tree */
	MODE_LINKS,    /* cairn_block_links: the scan that builds no tree */
	MODE_VERIFY,   /* cairn_cid_decode, cairn_cid_verify: re-hash each block */
	MODE_COUNT
} mode;

static const char *const mode_names[MODE_COUNT] = {"decode+walk", "links", "verify"};

typedef struct worker {
	pthread_t thread;
	const car *car;
	mode mode;
	size_t first, end;    /* the blocks [first, end) are this thread's */
	unsigned passes;
	uint64_t links;
	uint64_t cpu_ns;      /* this thread's CPU time for its passes */
	int rc;
} worker;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_dagcbor [--json] [--repeats N] [--min-seconds S] [--threads N,N]\n"
		"                     [--modes decode+walk,links,verify] FILE.car\n"
		"Loads the blocks of a CARv1 into memory and times, per mode, passes over all\n"
		"of them: each repeat runs whole passes for at least S seconds (default 0.5);\n"
		"prints the median, lowest and highest of N repeats (default 5).\n"
		"Rates are per CPU second of each thread, summed over the threads, so other\n"
		"load on the machine skews them less; the rates over wall time follow them.\n");
}

/* Splits a CARv1 into its blocks. The CAR reader is not in the library yet,
 * so this is the minimum: lengths and CIDs checked, hashes not (verify does). */
static int car_load(car *c, const char *path)
{
	const uint8_t *p;
	size_t len, off = 0, used, cap = 0;
	uint64_t n;
	cairn_node *hdr;
	cairn_arena *arena;
	int rc;

	if ((rc = cairn_file_read_all(&c->file, path, SIZE_MAX / 2)))
		return rc;
	p = c->file.data;
	len = c->file.len;
	if ((rc = cairn_varint_decode(&n, &used, p, len)))
		return cairn_error_prefix("%s: header length: ", path);
	if (n > len - used)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: header runs past the end", path);
	if ((rc = cairn_arena_new(&arena)))
		return rc;
	rc = cairn_dagcbor_decode(&hdr, arena, p + used, (size_t)n);
	if (!rc) {
		const cairn_node *v = cairn_node_map_get(hdr, "version");
		if (!v || v->kind != CAIRN_KIND_INT || v->v.i.neg || v->v.i.mag != 1)
			rc = cairn_error_set(CAIRN_EUNSUPPORTED, "%s: not a CARv1", path);
	}
	cairn_arena_free(arena);
	if (rc)
		return cairn_error_prefix("%s: header: ", path);
	off = used + (size_t)n;
	while (off < len) {
		size_t start = off;
		cairn_cid cid;
		block *b;

		if ((rc = cairn_varint_decode(&n, &used, p + off, len - off)))
			return cairn_error_prefix("%s: at byte %zu: section length: ", path, start);
		off += used;
		if (n == 0 || n > len - off)
			return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %zu: bad section length %llu",
					       path, start, (unsigned long long)n);
		if (c->nblocks == cap) {
			block *grown;

			cap = cap ? cap * 2 : 1024;
			if (!(grown = cairn_realloc(c->blocks, cap * sizeof(*grown))))
				return CAIRN_ENOMEM;
			c->blocks = grown;
		}
		b = &c->blocks[c->nblocks];
		if ((rc = cairn_cid_decode(&cid, &b->cid_len, p + off, (size_t)n)))
			return cairn_error_prefix("%s: at byte %zu: ", path, off);
		if (cid.codec != CAIRN_CODEC_DAG_CBOR)
			return cairn_error_set(CAIRN_EUNSUPPORTED, "%s: at byte %zu: block %zu is not DAG-CBOR",
					       path, off, c->nblocks);
		b->cid = p + off;
		b->p = p + off + b->cid_len;
		b->len = (size_t)n - b->cid_len;
		off += (size_t)n;
		c->nblocks++;
		c->block_bytes += b->len;
	}
	return 0;
}

static void car_free(car *c)
{
	cairn_free(c->blocks);
	cairn_buf_free(&c->file);
}

static uint64_t count_links(const cairn_node *n)
{
	uint64_t k = 0;

	switch (n->kind) {
	case CAIRN_KIND_LINK:
		return 1;
	case CAIRN_KIND_LIST:
		for (size_t i = 0; i < n->v.list.len; i++)
			k += count_links(&n->v.list.items[i]);
		return k;
	case CAIRN_KIND_MAP:
		for (size_t i = 0; i < n->v.map.len; i++)
			k += count_links(&n->v.map.entries[i].value);
		return k;
	default:
		return 0;
	}
}

static int on_link(const cairn_cid *link, void *payload)
{
	(void)link;
	++*(uint64_t *)payload;
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *run(void *arg)
{
	worker *w = arg;
	const block *blocks = w->car->blocks;
	cairn_arena *arena = NULL;
	uint64_t links = 0, c0 = cpu_ns();

	if (w->mode == MODE_DECODE && (w->rc = cairn_arena_new(&arena)))
		return NULL;
	for (unsigned pass = 0; pass < w->passes && !w->rc; pass++) {
		links = 0;
		for (size_t i = w->first; i < w->end; i++) {
			const block *b = &blocks[i];
			cairn_node *root;
			cairn_cid cid;

			switch (w->mode) {
			case MODE_DECODE:
				if ((w->rc = cairn_dagcbor_decode(&root, arena, b->p, b->len)))
					break;
				links += count_links(root);
				cairn_arena_reset(arena);
				break;
			case MODE_LINKS:
				w->rc = cairn_block_links(CAIRN_CODEC_DAG_CBOR, b->p, b->len,
							  on_link, &links);
				break;
			default:
				if (!(w->rc = cairn_cid_decode(&cid, NULL, b->cid, b->cid_len)))
					w->rc = cairn_cid_verify(&cid, b->p, b->len);
				break;
			}
			if (w->rc) {
				cairn_error_prefix("block %zu: ", i);
				fprintf(stderr, "bench_dagcbor: %s\n", cairn_error_last());
				break;
			}
		}
	}
	w->links = links;
	cairn_arena_free(arena);
	w->cpu_ns = cpu_ns() - c0;
	return NULL;
}

/* Runs `passes` passes over all blocks split across `nthreads`; gives the
 * rate in blocks per CPU second (summed over the threads) and per wall
 * second, and returns the wall time in seconds (negative on failure). */
static double timed_passes(const car *c, mode m, unsigned nthreads, unsigned passes,
			   uint64_t *links_out, double *rate_out, double *wall_rate_out)
{
	worker w[MAX_THREADS];
	uint64_t t0, t1;
	double rate = 0;
	int rc = 0;

	memset(w, 0, sizeof(w));
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].car = c;
		w[i].mode = m;
		w[i].first = c->nblocks * i / nthreads;
		w[i].end = c->nblocks * (i + 1) / nthreads;
		w[i].passes = passes;
	}
	t0 = cairn_time_ns();
	if (nthreads == 1) {
		run(&w[0]);
	} else {
		for (unsigned i = 0; i < nthreads; i++)
			if (pthread_create(&w[i].thread, NULL, run, &w[i])) {
				fprintf(stderr, "bench_dagcbor: pthread_create failed\n");
				exit(1);
			}
		for (unsigned i = 0; i < nthreads; i++)
			pthread_join(w[i].thread, NULL);
	}
	t1 = cairn_time_ns();
	*links_out = 0;
	for (unsigned i = 0; i < nthreads; i++) {
		if (w[i].rc)
			rc = -1;
		*links_out += w[i].links;
		if (w[i].cpu_ns)
			rate += (double)(w[i].end - w[i].first) * passes / ((double)w[i].cpu_ns / 1e9);
	}
	*rate_out = rate;
	*wall_rate_out = t1 > t0 ? (double)c->nblocks * passes / ((double)(t1 - t0) / 1e9) : 0;
	return rc ? -1.0 : (double)(t1 - t0) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts `x` and returns its median. */
static double median(double *x, unsigned n)
{
	qsort(x, n, sizeof(x[0]), cmp_double);
	return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

static int parse_uint_list(const char *s, unsigned *out, size_t *n, size_t max)
{
	*n = 0;
	while (*s) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(s, &end, 10);
		if (errno || end == s || v == 0 || v > MAX_THREADS || *n == max)
			return -1;
		out[(*n)++] = (unsigned)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return *n ? 0 : -1;
}

static int parse_modes(const char *s, bool *on)
{
	size_t n = 0;

	for (int m = 0; m < MODE_COUNT; m++)
		on[m] = false;
	while (*s) {
		size_t len = strcspn(s, ",");
		int m;

		for (m = 0; m < MODE_COUNT; m++)
			if (strlen(mode_names[m]) == len && !strncmp(s, mode_names[m], len))
				break;
		if (m == MODE_COUNT)
			return -1;
		on[m] = true;
		n++;
		s += len;
		if (*s == ',')
			s++;
	}
	return n ? 0 : -1;
}

int main(int argc, char **argv)
{
	unsigned threads[8] = {1, 2};
	size_t nthreads = 2;
	bool on[MODE_COUNT] = {true, true, true};
	unsigned repeats = 5;
	double min_seconds = 0.5;
	bool json = false;
	const char *path = NULL;
	car c;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		int bad = 0;

		if (!strcmp(a, "--json")) {
			json = true;
			continue;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (a[0] != '-' && !path) {
			path = a;
			continue;
		} else if (!v) {
			bad = 1;
		} else if (!strcmp(a, "--repeats")) {
			unsigned long r = strtoul(v, &end, 10);
			bad = *end || r < 1 || r > 1000;
			repeats = (unsigned)r;
		} else if (!strcmp(a, "--min-seconds")) {
			min_seconds = strtod(v, &end);
			bad = *end || !(min_seconds >= 0 && min_seconds < 3600);
		} else if (!strcmp(a, "--threads")) {
			bad = parse_uint_list(v, threads, &nthreads, 8);
		} else if (!strcmp(a, "--modes")) {
			bad = parse_modes(v, on);
		} else {
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "bench_dagcbor: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
		i++;
	}
	if (!path) {
		usage(stderr);
		return 2;
	}

	memset(&c, 0, sizeof(c));
	if ((rc = car_load(&c, path))) {
		fprintf(stderr, "bench_dagcbor: %s\n", cairn_error_last());
		car_free(&c);
		return 1;
	}
	if (!c.nblocks) {
		fprintf(stderr, "bench_dagcbor: %s: no blocks\n", path);
		car_free(&c);
		return 1;
	}

	if (!json)
		printf("%s: %zu blocks, %llu block bytes\n%-12s %7s %12s %12s %12s %8s %10s %14s\n",
		       path, c.nblocks, (unsigned long long)c.block_bytes, "mode", "threads",
		       "blocks/s", "min", "max", "MB/s", "links", "blocks/s wall");
	for (int m = 0; m < MODE_COUNT; m++) {
		if (!on[m])
			continue;
		for (size_t t = 0; t < nthreads; t++) {
			double rates[1000], walls[1000], s, med, wall;
			uint64_t links = 0;
			unsigned passes = 1;

			/* One untimed pass warms caches and the allocator, then sets
			 * how many passes make a repeat last min_seconds. */
			if ((s = timed_passes(&c, (mode)m, threads[t], 1, &links, &rates[0],
					      &walls[0])) < 0)
				return 1;
			if (s > 0 && s < min_seconds)
				passes = (unsigned)(min_seconds / s) + 1;
			for (unsigned r = 0; r < repeats; r++)
				if (timed_passes(&c, (mode)m, threads[t], passes, &links, &rates[r],
						 &walls[r]) < 0)
					return 1;
			med = median(rates, repeats);
			wall = median(walls, repeats);
			if (json)
				printf("{\"bench\":\"dagcbor\",\"impl\":\"cairn\",\"mode\":\"%s\","
				       "\"car\":\"%s\",\"blocks\":%zu,\"block_bytes\":%llu,"
				       "\"threads\":%u,\"repeats\":%u,\"passes\":%u,"
				       "\"blocks_per_s\":%.1f,\"blocks_per_s_min\":%.1f,"
				       "\"blocks_per_s_max\":%.1f,\"MBps\":%.2f,\"links\":%llu,"
				       "\"blocks_per_s_wall\":%.1f}\n",
				       mode_names[m], path, c.nblocks,
				       (unsigned long long)c.block_bytes, threads[t], repeats, passes,
				       med, rates[0], rates[repeats - 1],
				       med * (double)c.block_bytes / (double)c.nblocks / 1e6,
				       (unsigned long long)links, wall);
			else
				printf("%-12s %7u %12.0f %12.0f %12.0f %8.1f %10llu %14.0f\n",
				       mode_names[m], threads[t], med, rates[0], rates[repeats - 1],
				       med * (double)c.block_bytes / (double)c.nblocks / 1e6,
				       (unsigned long long)links, wall);
			fflush(stdout);
		}
	}
	car_free(&c);
	return 0;
}
