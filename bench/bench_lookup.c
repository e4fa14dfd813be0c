/* bench_lookup.c: point lookups per second on a CARv2: a CID found in its
 * index (read in place from an mmap), then its section read with pread. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/car.h"

#define MAX_THREADS 64
#define MAX_REPEATS 100

/* The CIDs to look up are drawn from the index itself, so each is there. A
 * pointer per entry into the mapped index (8 bytes, not a 184-byte
 * cairn_cid) keeps the program's own memory small beside the index. */
typedef struct {
	uint64_t code;
	uint32_t dlen;
	uint64_t first; /* entries [first, next run's first) */
} run;

typedef struct {
	const uint8_t **digest;
	uint64_t n, cap;
	run *runs;
	size_t nruns, runs_cap;
} entries;

/* A key drawn ahead of a cold run, so that drawing it reads no index page. */
typedef struct {
	uint64_t code;
	uint32_t dlen;
	uint8_t digest[CAIRN_MH_DIGEST_MAX];
} key;

typedef struct {
	const char *path;
	int fd;
	uint64_t data_offset, data_end;
	const cairn_car_index *idx;
	const entries *e;
	const key *keys;       /* NULL: draw from `e` as it goes */
	uint64_t codec;        /* for the CIDs built from digests */
	bool trusted;
} target;

typedef struct {
	pthread_t thread;
	const target *t;
	uint64_t first, count; /* keys [first, first + count), or this many draws */
	uint64_t seed;
	uint64_t cpu_ns;
	uint64_t bytes;
	int rc;
} worker;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_lookup [--json] [--lookups N] [--cold-lookups N] [--repeats N]\n"
		"                    [--threads N,N] [--cache warm,cold] FILE.car\n"
		"Point lookups in a CARv2 with an index: cairn_car_index_find, then\n"
		"cairn_car_section_read, trusted (no hash) and untrusted (block hashed\n"
		"against its CID), for CIDs drawn at random from the index.\n"
		"warm: the file read whole first; N lookups (default 1000000) per repeat.\n"
		"cold: the page cache dropped before each repeat (echo 3 >\n"
		"/proc/sys/vm/drop_caches, or posix_fadvise DONTNEED on the file if that\n"
		"is not permitted), the index mapped again, then N lookups (default 5000).\n"
		"Prints the median of the repeats (default 3), lookups per second of wall\n"
		"time and per CPU second (summed over the threads).\n");
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
	/* splitmix64: enough to spread lookups over the index. */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int collect(uint64_t code, const uint8_t *digest, size_t dlen, uint64_t offset, void *payload)
{
	entries *e = payload;

	(void)offset;
	if (!e->nruns || e->runs[e->nruns - 1].code != code || e->runs[e->nruns - 1].dlen != dlen) {
		if (e->nruns == e->runs_cap) {
			size_t cap = e->runs_cap ? 2 * e->runs_cap : 8;
			run *p = realloc(e->runs, cap * sizeof(*p));

			if (!p)
				return CAIRN_ENOMEM;
			e->runs = p;
			e->runs_cap = cap;
		}
		e->runs[e->nruns++] = (run){code, (uint32_t)dlen, e->n};
	}
	if (e->n == e->cap) {
		uint64_t cap = e->cap ? 2 * e->cap : 1024;
		const uint8_t **p = realloc(e->digest, cap * sizeof(*p));

		if (!p)
			return CAIRN_ENOMEM;
		e->digest = p;
		e->cap = cap;
	}
	e->digest[e->n++] = digest;
	return 0;
}

static void draw(const entries *e, uint64_t *seed, uint64_t *code, uint32_t *dlen,
		 const uint8_t **digest)
{
	uint64_t i = next_rand(seed) % e->n;
	size_t lo = 0, hi = e->nruns;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->runs[mid].first <= i)
			lo = mid;
		else
			hi = mid;
	}
	*code = e->runs[lo].code;
	*dlen = e->runs[lo].dlen;
	*digest = e->digest[i];
}

static int lookup(const target *t, cairn_buf *block, uint64_t code, uint32_t dlen,
		  const uint8_t *digest, uint64_t *bytes)
{
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	cairn_car_section s;
	cairn_cid cid;
	uint64_t off;
	int rc, n;

	opts.trusted = t->trusted;
	if ((rc = cairn_cid_from_digest(&cid, 1, t->codec, code, digest, dlen)))
		return rc;
	if ((n = cairn_car_index_find(t->idx, &cid, &off, 1)) < 0)
		return n;
	if (n == 0)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: a CID from the index was not found", t->path);
	if ((rc = cairn_car_section_read(&s, block, t->fd, t->path, t->data_offset, t->data_end, off,
					 &opts)))
		return rc;
	/* The section is the one asked for (the index could be wrong). */
	if (s.cid.mh_code != code || s.cid.digest_len != dlen ||
	    memcmp(s.cid.bytes + s.cid.digest_off, digest, dlen))
		return cairn_error_set(CAIRN_ECORRUPT, "%s: the index points at another block",
				       t->path);
	*bytes += s.block_len;
	return 0;
}

static void *work(void *arg)
{
	worker *w = arg;
	const target *t = w->t;
	cairn_buf block = CAIRN_BUF_INIT;
	uint64_t c0 = thread_cpu_ns();

	w->rc = 0;
	for (uint64_t i = 0; i < w->count && !w->rc; i++) {
		if (t->keys) {
			const key *k = &t->keys[w->first + i];

			w->rc = lookup(t, &block, k->code, k->dlen, k->digest, &w->bytes);
		} else {
			const uint8_t *digest;
			uint64_t code;
			uint32_t dlen;

			draw(t->e, &w->seed, &code, &dlen, &digest);
			w->rc = lookup(t, &block, code, dlen, digest, &w->bytes);
		}
	}
	if (w->rc)
		fprintf(stderr, "bench_lookup: %s\n", cairn_error_last());
	w->cpu_ns = thread_cpu_ns() - c0;
	cairn_buf_free(&block);
	return NULL;
}

/* N lookups on `threads` threads; wall and summed CPU seconds. */
static int timed(const target *t, unsigned threads, uint64_t n, uint64_t seed, double *wall,
		 double *cpu)
{
	worker w[MAX_THREADS];
	uint64_t t0 = cairn_time_ns(), cpu_ns = 0;
	int rc = 0;

	for (unsigned i = 0; i < threads; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].t = t;
		w[i].first = n * i / threads;
		w[i].count = n * (i + 1) / threads - w[i].first;
		w[i].seed = seed * 1000003u + i;
		if (pthread_create(&w[i].thread, NULL, work, &w[i])) {
			fprintf(stderr, "bench_lookup: pthread_create failed\n");
			threads = i;
			rc = -1;
			break;
		}
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		cpu_ns += w[i].cpu_ns;
		if (w[i].rc)
			rc = -1;
	}
	*wall = (double)(cairn_time_ns() - t0) / 1e9;
	*cpu = (double)cpu_ns / 1e9;
	return rc;
}

/* Empties the page cache: all of it if we may, else this file's pages. */
static const char *drop_cache(const char *path)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

	sync();
	if (fd >= 0) {
		ssize_t k = write(fd, "3\n", 2);

		close(fd);
		if (k == 2)
			return "drop_caches";
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	return "fadvise";
}

static int read_whole(int fd)
{
	static uint8_t buf[1 << 20];
	uint64_t off = 0;
	ssize_t k;

	while ((k = pread(fd, buf, sizeof(buf), (off_t)off)) > 0)
		off += (uint64_t)k;
	return k < 0 ? -1 : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int parse_uint_list(const char *s, unsigned *out, size_t *n, size_t max)
{
	*n = 0;
	while (*s) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v < 1 || v > MAX_THREADS || *n == max)
			return -1;
		out[(*n)++] = (unsigned)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return *n ? 0 : -1;
}

int main(int argc, char **argv)
{
	unsigned threads[8] = {1, 2};
	size_t nthreads = 2;
	uint64_t warm_n = 1000000, cold_n = 5000;
	unsigned repeats = 3;
	bool json = false, do_warm = true, do_cold = true;
	const char *path = NULL;
	const cairn_car_v2_header *h;
	cairn_car_reader *r = NULL;
	cairn_car_index *idx = NULL;
	entries e;
	key *keys = NULL;
	target t;
	int rc = 1;

	memset(&e, 0, sizeof(e));
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
		} else if (!strcmp(a, "--lookups") || !strcmp(a, "--cold-lookups")) {
			unsigned long long n = strtoull(v, &end, 10);

			bad = *end || n < 1 || n > (1ull << 40);
			*(a[2] == 'l' ? &warm_n : &cold_n) = n;
		} else if (!strcmp(a, "--repeats")) {
			unsigned long n = strtoul(v, &end, 10);

			bad = *end || n < 1 || n > MAX_REPEATS;
			repeats = (unsigned)n;
		} else if (!strcmp(a, "--threads")) {
			bad = parse_uint_list(v, threads, &nthreads, 8);
		} else if (!strcmp(a, "--cache")) {
			do_warm = strstr(v, "warm") != NULL;
			do_cold = strstr(v, "cold") != NULL;
			bad = !do_warm && !do_cold;
		} else {
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "bench_lookup: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
		i++;
	}
	if (!path) {
		usage(stderr);
		return 2;
	}

	memset(&t, 0, sizeof(t));
	t.path = path;
	t.e = &e;
	if (cairn_car_reader_open(&r, path, NULL))
		goto fail;
	if (!(h = cairn_car_reader_v2_header(r)) || !h->index_offset) {
		fprintf(stderr, "bench_lookup: %s: not a CARv2 with an index (make one with `cairn car index`)\n",
			path);
		goto out;
	}
	t.data_offset = cairn_car_reader_data_offset(r);
	t.data_end = cairn_car_reader_data_end(r);
	/* The codec does not matter to the index (it holds multihashes); that
	 * of the first root stands for all. */
	t.codec = cairn_car_reader_root_count(r) ? cairn_car_reader_roots(r)[0].codec
						  : CAIRN_CODEC_RAW;
	if ((t.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "bench_lookup: %s: %s\n", path, strerror(errno));
		goto out;
	}
	/* Lookups read one section each: the kernel reading ahead around it
	 * would only fill the cache with other sections. */
	posix_fadvise(t.fd, 0, 0, POSIX_FADV_RANDOM);
	if (cairn_car_index_open(&idx, path, h->index_offset) ||
	    cairn_car_index_foreach(idx, collect, &e))
		goto fail;
	if (!e.n) {
		fprintf(stderr, "bench_lookup: %s: the index is empty\n", path);
		goto out;
	}
	if (!json)
		printf("%s: %llu index entries\n%-6s %7s %-9s %12s %12s %12s %14s %8s\n", path,
		       (unsigned long long)e.n, "cache", "threads", "hash", "lookups/s", "min",
		       "max", "per CPU-s", "lookups");
	for (int cold = 0; cold < 2; cold++) {
		uint64_t n = cold ? cold_n : warm_n;
		const char *how = "";

		if (cold ? !do_cold : !do_warm)
			continue;
		if (cold) {
			/* Keys drawn now, so that no index page is read for them. */
			uint64_t seed = 7;

			if (!(keys = calloc(n, sizeof(*keys))))
				goto fail;
			for (uint64_t i = 0; i < n; i++) {
				const uint8_t *d;

				draw(&e, &seed, &keys[i].code, &keys[i].dlen, &d);
				memcpy(keys[i].digest, d, keys[i].dlen);
			}
			t.keys = keys;
		} else if (read_whole(t.fd)) {
			fprintf(stderr, "bench_lookup: %s: %s\n", path, strerror(errno));
			goto out;
		}
		for (int trusted = 1; trusted >= 0; trusted--) {
			t.trusted = trusted;
			for (size_t ti = 0; ti < nthreads; ti++) {
				double rates[MAX_REPEATS], cpu_rates[MAX_REPEATS], walls[MAX_REPEATS];

				for (unsigned rep = 0; rep < repeats; rep++) {
					double wall, cpu;

					if (cold) {
						/* The index is mapped again after the drop:
						 * pages still mapped are not dropped. */
						cairn_car_index_free(idx);
						idx = NULL;
						how = drop_cache(path);
						if (cairn_car_index_open(&idx, path, h->index_offset))
							goto fail;
					}
					t.idx = idx;
					if (timed(&t, threads[ti], n, 1 + rep, &wall, &cpu))
						goto out;
					rates[rep] = (double)n / wall;
					cpu_rates[rep] = cpu > 0 ? (double)n / cpu : 0;
					walls[rep] = wall;
				}
				qsort(rates, repeats, sizeof(double), cmp_double);
				qsort(cpu_rates, repeats, sizeof(double), cmp_double);
				qsort(walls, repeats, sizeof(double), cmp_double);
				if (json)
					printf("{\"bench\":\"lookup\",\"impl\":\"cairn\",\"car\":\"%s\","
					       "\"entries\":%llu,\"cache\":\"%s\",\"drop\":\"%s\","
					       "\"threads\":%u,\"trusted\":%s,\"lookups\":%llu,"
					       "\"repeats\":%u,\"per_s\":%.1f,\"per_s_min\":%.1f,"
					       "\"per_s_max\":%.1f,\"per_cpu_s\":%.1f,\"wall_s\":%.4f}\n",
					       path, (unsigned long long)e.n, cold ? "cold" : "warm", how,
					       threads[ti], trusted ? "true" : "false",
					       (unsigned long long)n, repeats, rates[repeats / 2], rates[0],
					       rates[repeats - 1], cpu_rates[repeats / 2],
					       walls[repeats / 2]);
				else
					printf("%-6s %7u %-9s %12.0f %12.0f %12.0f %14.0f %8llu\n",
					       cold ? "cold" : "warm", threads[ti],
					       trusted ? "trusted" : "untrusted", rates[repeats / 2],
					       rates[0], rates[repeats - 1], cpu_rates[repeats / 2],
					       (unsigned long long)n);
				fflush(stdout);
			}
		}
		t.keys = NULL;
		free(keys);
		keys = NULL;
	}
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "bench_lookup: %s\n", cairn_error_last());
out:
	free(keys);
	free(e.digest);
	free(e.runs);
	cairn_car_index_free(idx);
	if (t.fd > 0)
		close(t.fd);
	cairn_car_reader_free(r);
	return rc;
}
