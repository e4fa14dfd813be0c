/* bench_cid.c: CIDs computed per second (cairn_cid_compute, raw codec) at
 * several block sizes and hashes, on one thread and on several at once. */
/* The bare SHA256_* calls are deprecated in OpenSSL 3 but are what cairn
 * uses (src/ipld/multihash.c): timing them alone shows what the CID costs. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/ipld.h"

#define MAX_LIST 16
#define MAX_THREADS 64

/* What is timed per block. */
typedef enum impl {
	IMPL_CAIRN,   /* cairn_cid_compute: hash and CID */
	IMPL_BARE,    /* the hash library's own call alone, as cairn makes it */
	IMPL_EVP,     /* EVP_Digest with a digest fetched once (sha2-256 only),
		       * as openssl speed -evp times it */
	IMPL_COUNT
} impl;

static const char *const impl_names[IMPL_COUNT] = {"cairn", "bare", "evp"};

typedef struct worker {
	pthread_t thread;
	pthread_barrier_t *start;
	impl impl;
	EVP_MD *md;           /* IMPL_EVP */
	uint64_t mh_code;
	size_t size;
	uint64_t duration_ns;
	uint8_t *buf;
	uint64_t count;       /* CIDs computed in the timed loop */
	uint64_t elapsed_ns;  /* wall time of the loop */
	uint64_t cpu_ns;      /* this thread's CPU time in the loop */
	uint8_t check;        /* folds the digests so no call can be skipped */
	int rc;
} worker;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_cid [--json] [--seconds S] [--sizes N,N,...] [--threads N,N,...]\n"
		"                 [--hashes sha2-256,blake2b-256] [--impls cairn,bare,evp]\n"
		"Times cairn_cid_compute (CIDv1, raw codec) over one block per thread, for S\n"
		"seconds (default 1) per measurement. Defaults: sizes 200,1024,16384,1048576;\n"
		"threads 1,2; hashes sha2-256,blake2b-256; impls cairn. MB = 10^6 bytes.\n"
		"--impls bare times the hash library's call alone (SHA256_Init/Update/Final,\n"
		"crypto_generichash), evp EVP_Digest with a fetched SHA2-256 as openssl speed\n"
		"-evp does (sha2-256 only): references for what the CID layer costs.\n"
		"Rates are per CPU second of each thread, summed over the threads (as openssl\n"
		"speed divides by CPU time), so other load on the machine skews them less;\n"
		"the rates over wall time are printed beside them.\n");
}

static int parse_impls(const char *s, bool *on)
{
	size_t n = 0;

	for (int m = 0; m < IMPL_COUNT; m++)
		on[m] = false;
	while (*s) {
		size_t len = strcspn(s, ",");
		int m;

		for (m = 0; m < IMPL_COUNT; m++)
			if (strlen(impl_names[m]) == len && !strncmp(s, impl_names[m], len))
				break;
		if (m == IMPL_COUNT)
			return -1;
		on[m] = true;
		n++;
		s += len;
		if (*s == ',')
			s++;
	}
	return n ? 0 : -1;
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

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One block through the implementation being timed; folds a digest byte
 * into w->check. */
static inline int once(worker *w)
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	cairn_cid cid;
	int rc;

	switch (w->impl) {
	case IMPL_CAIRN:
		if ((rc = cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, w->mh_code, w->buf, w->size)))
			return rc;
		w->check ^= cid.bytes[cid.len - 1];
		return 0;
	case IMPL_BARE:
		if (w->mh_code == CAIRN_MH_SHA2_256) {
			SHA256_CTX ctx;

			SHA256_Init(&ctx);
			SHA256_Update(&ctx, w->buf, w->size);
			SHA256_Final(digest, &ctx);
		} else {
			crypto_generichash(digest, 32, w->buf, w->size, NULL, 0);
		}
		w->check ^= digest[31];
		return 0;
	default:
		if (!EVP_Digest(w->buf, w->size, digest, NULL, w->md, NULL))
			return cairn_error_set(CAIRN_ERROR, "EVP_Digest failed");
		w->check ^= digest[31];
		return 0;
	}
}

static void *run(void *arg)
{
	worker *w = arg;
	/* Read the clock about once a millisecond, not once a hash: at 200
	 * bytes a clock read would cost a tenth of the hash. */
	uint64_t batch = (1u << 20) / w->size + 1, t0, t, c0, n = 0;

	pthread_barrier_wait(w->start);
	t0 = cairn_time_ns();
	c0 = cpu_ns();
	do {
		for (uint64_t i = 0; i < batch; i++)
			if ((w->rc = once(w)))
				return NULL;
		n += batch;
		t = cairn_time_ns();
	} while (t - t0 < w->duration_ns);
	w->cpu_ns = cpu_ns() - c0;
	w->count = n;
	w->elapsed_ns = t - t0;
	return NULL;
}

/* Runs `nthreads` workers for `seconds` each and gives the aggregate rates
 * in CIDs per second: the sums of each thread's count over its CPU time and
 * over its wall time. */
static int measure(double *rate_out, double *wall_rate_out, uint8_t *check, impl im,
		   EVP_MD *md, uint64_t mh_code, size_t size, unsigned nthreads, double seconds)
{
	worker w[MAX_THREADS];
	pthread_barrier_t start;
	double rate = 0, wall_rate = 0;
	unsigned started = 0;
	int rc = 0;

	memset(w, 0, sizeof(w));
	if (pthread_barrier_init(&start, NULL, nthreads)) {
		fprintf(stderr, "bench_cid: pthread_barrier_init failed\n");
		return -1;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].start = &start;
		w[i].impl = im;
		w[i].md = md;
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
		if (w[i].cpu_ns)
			rate += (double)w[i].count / ((double)w[i].cpu_ns / 1e9);
		if (w[i].elapsed_ns)
			wall_rate += (double)w[i].count / ((double)w[i].elapsed_ns / 1e9);
		*check ^= w[i].check;
	}
	for (unsigned i = 0; i < nthreads; i++)
		free(w[i].buf);
	pthread_barrier_destroy(&start);
	*rate_out = rate;
	*wall_rate_out = wall_rate;
	return rc;
}

int main(int argc, char **argv)
{
	uint64_t sizes[MAX_LIST] = {200, 1024, 16384, 1048576};
	uint64_t threads[MAX_LIST] = {1, 2};
	uint64_t hashes[MAX_LIST] = {CAIRN_MH_SHA2_256, CAIRN_MH_BLAKE2B_256};
	size_t nsizes = 4, nthreads = 2, nhashes = 2;
	bool impls[IMPL_COUNT] = {true, false, false};
	double seconds = 1.0;
	bool json = false;
	uint8_t check = 0;
	EVP_MD *md = NULL;

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
		} else if (!strcmp(a, "--impls")) {
			bad = parse_impls(v, impls);
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

	if (impls[IMPL_EVP] && !(md = EVP_MD_fetch(NULL, "SHA2-256", NULL))) {
		fprintf(stderr, "bench_cid: EVP_MD_fetch(SHA2-256) failed\n");
		return 1;
	}
	if (!json)
		printf("%-12s %-6s %9s %7s %14s %10s %14s\n", "hash", "impl", "size", "threads",
		       "per s", "MB/s", "per s (wall)");
	for (size_t h = 0; h < nhashes; h++) {
		for (size_t s = 0; s < nsizes; s++) {
			for (int m = 0; m < IMPL_COUNT; m++) {
				/* bare exists for the hashes cairn computes; evp for sha2-256. */
				if (!impls[m] || (m == IMPL_EVP && hashes[h] != CAIRN_MH_SHA2_256) ||
				    (m == IMPL_BARE && hashes[h] != CAIRN_MH_SHA2_256 &&
				     hashes[h] != CAIRN_MH_BLAKE2B_256))
					continue;
				for (size_t t = 0; t < nthreads; t++) {
					const char *name = cairn_multihash_name(hashes[h]);
					double rate, wall;

					if (measure(&rate, &wall, &check, (impl)m, md, hashes[h],
						    (size_t)sizes[s], (unsigned)threads[t], seconds)) {
						EVP_MD_free(md);
						return 1;
					}
					if (json)
						printf("{\"bench\":\"cid\",\"impl\":\"%s\",\"hash\":\"%s\","
						       "\"size\":%llu,\"threads\":%llu,\"seconds\":%g,"
						       "\"cids_per_s\":%.1f,\"MBps\":%.2f,"
						       "\"cids_per_s_wall\":%.1f,\"MBps_wall\":%.2f}\n",
						       impl_names[m], name, (unsigned long long)sizes[s],
						       (unsigned long long)threads[t], seconds, rate,
						       rate * (double)sizes[s] / 1e6, wall,
						       wall * (double)sizes[s] / 1e6);
					else
						printf("%-12s %-6s %9llu %7llu %14.0f %10.1f %14.0f\n",
						       name, impl_names[m], (unsigned long long)sizes[s],
						       (unsigned long long)threads[t], rate,
						       rate * (double)sizes[s] / 1e6, wall);
					fflush(stdout);
				}
			}
		}
	}
	EVP_MD_free(md);
	/* Printed so the digests count as used; not part of the results. */
	fprintf(stderr, "bench_cid: check %02x\n", check);
	return 0;
}
