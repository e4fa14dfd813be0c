/* bench_cid.c: CIDs computed per second (cairn_cid_compute, raw codec) at
 * several block sizes and hashes, on one thread and on several at once. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/ipld.h"

#define MAX_LIST 16
#define MAX_THREADS 64

typedef struct worker {
	pthread_t thread;
	pthread_barrier_t *start;
	uint64_t mh_code;
	size_t size;
	uint64_t duration_ns;
	uint8_t *buf;
	uint64_t count;       /* CIDs computed in the timed loop */
	uint64_t elapsed_ns;
	uint8_t check;        /* folds the digests so no call can be skipped */
	int rc;
} worker;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_cid [--json] [--seconds S] [--sizes N,N,...] [--threads N,N,...]\n"
		"                 [--hashes sha2-256,blake2b-256]\n"
		"Times cairn_cid_compute (CIDv1, raw codec) over one block per thread, for S\n"
		"seconds (default 1) per measurement. Defaults: sizes 200,1024,16384,1048576;\n"
		"threads 1,2; hashes sha2-256,blake2b-256. MB = 10^6 bytes.\n");
}

static int parse_list(const char *s, uint64_t *out, size_t *n, bool hashes)
{
	char tmp[256], *tok, *save = NULL;

	if (strlen(s) >= sizeof(tmp))
		return -1;
	strcpy(tmp, s);
	*n = 0;
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;

		if (*n == MAX_LIST)
			return -1;
		if (hashes) {
			if (cairn_multihash_from_name(&out[*n], tok))
				return -1;
		} else {
			errno = 0;
			out[*n] = strtoull(tok, &end, 10);
			if (errno || *end || out[*n] == 0)
				return -1;
		}
		(*n)++;
	}
	return *n ? 0 : -1;
}

/* Deterministic filler: the content does not change the cost of a hash. */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static void *run(void *arg)
{
	worker *w = arg;
	/* Read the clock about once a millisecond, not once a hash: at 200
	 * bytes a clock read would cost a tenth of the hash. */
	uint64_t batch = (1u << 20) / w->size + 1, t0, t, n = 0;
	cairn_cid cid;

	pthread_barrier_wait(w->start);
	t0 = cairn_time_ns();
	do {
		for (uint64_t i = 0; i < batch; i++) {
			if ((w->rc = cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, w->mh_code,
						       w->buf, w->size)))
				return NULL;
			w->check ^= cid.bytes[cid.len - 1];
		}
		n += batch;
		t = cairn_time_ns();
	} while (t - t0 < w->duration_ns);
	w->count = n;
	w->elapsed_ns = t - t0;
	return NULL;
}

/* Runs `nthreads` workers for `seconds` each and returns the aggregate
 * rate in CIDs per second (each thread's count over its own time). */
static int measure(double *rate_out, uint8_t *check, uint64_t mh_code, size_t size,
		   unsigned nthreads, double seconds)
{
	worker w[MAX_THREADS];
	pthread_barrier_t start;
	double rate = 0;
	unsigned started = 0;
	int rc = 0;

	memset(w, 0, sizeof(w));
	if (pthread_barrier_init(&start, NULL, nthreads)) {
		fprintf(stderr, "bench_cid: pthread_barrier_init failed\n");
		return -1;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].start = &start;
		w[i].mh_code = mh_code;
		w[i].size = size;
		w[i].duration_ns = (uint64_t)(seconds * 1e9);
		/* Each thread hashes its own buffer, aligned as openssl speed's are. */
		if (posix_memalign((void **)&w[i].buf, 64, size)) {
			fprintf(stderr, "bench_cid: out of memory\n");
			rc = -1;
			break;
		}
		fill(w[i].buf, size, i + 1);
	}
	for (unsigned i = 0; !rc && i < nthreads; i++) {
		if (pthread_create(&w[i].thread, NULL, run, &w[i])) {
			fprintf(stderr, "bench_cid: pthread_create failed\n");
			rc = -1;
			break;
		}
		started++;
	}
	if (rc && started) {
		/* The started threads wait at the barrier for the ones that never
		 * came: there is no clean way out, so stop here. */
		exit(1);
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].rc) {
			fprintf(stderr, "bench_cid: %s\n", cairn_error_last());
			rc = -1;
		}
		if (w[i].elapsed_ns)
			rate += (double)w[i].count / ((double)w[i].elapsed_ns / 1e9);
		*check ^= w[i].check;
	}
	for (unsigned i = 0; i < nthreads; i++)
		free(w[i].buf);
	pthread_barrier_destroy(&start);
	*rate_out = rate;
	return rc;
}

int main(int argc, char **argv)
{
	uint64_t sizes[MAX_LIST] = {200, 1024, 16384, 1048576};
	uint64_t threads[MAX_LIST] = {1, 2};
	uint64_t hashes[MAX_LIST] = {CAIRN_MH_SHA2_256, CAIRN_MH_BLAKE2B_256};
	size_t nsizes = 4, nthreads = 2, nhashes = 2;
	double seconds = 1.0;
	bool json = false;
	uint8_t check = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (!strcmp(a, "--json")) {
			json = true;
			continue;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!v) {
			bad = 1;
		} else if (!strcmp(a, "--seconds")) {
			char *end;
			seconds = strtod(v, &end);
			bad = *end || !(seconds > 0 && seconds < 3600);
		} else if (!strcmp(a, "--sizes")) {
			bad = parse_list(v, sizes, &nsizes, false);
		} else if (!strcmp(a, "--threads")) {
			bad = parse_list(v, threads, &nthreads, false);
			for (size_t k = 0; !bad && k < nthreads; k++)
				bad = threads[k] > MAX_THREADS;
		} else if (!strcmp(a, "--hashes")) {
			bad = parse_list(v, hashes, &nhashes, true);
		} else {
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "bench_cid: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
		i++;
	}

	if (!json)
		printf("%-12s %9s %7s %14s %10s\n", "hash", "size", "threads", "CIDs/s", "MB/s");
	for (size_t h = 0; h < nhashes; h++) {
		for (size_t s = 0; s < nsizes; s++) {
			for (size_t t = 0; t < nthreads; t++) {
				const char *name = cairn_multihash_name(hashes[h]);
				double rate;

				if (measure(&rate, &check, hashes[h], (size_t)sizes[s],
					    (unsigned)threads[t], seconds))
					return 1;
				if (json)
					printf("{\"bench\":\"cid\",\"hash\":\"%s\",\"size\":%llu,"
					       "\"threads\":%llu,\"seconds\":%g,\"cids_per_s\":%.1f,"
					       "\"MBps\":%.2f}\n",
					       name, (unsigned long long)sizes[s],
					       (unsigned long long)threads[t], seconds, rate,
					       rate * (double)sizes[s] / 1e6);
				else
					printf("%-12s %9llu %7llu %14.0f %10.1f\n", name,
					       (unsigned long long)sizes[s],
					       (unsigned long long)threads[t], rate,
					       rate * (double)sizes[s] / 1e6);
				fflush(stdout);
			}
		}
	}
	/* Printed so the digests count as used; not part of the results. */
	fprintf(stderr, "bench_cid: check %02x\n", check);
	return 0;
}
