/* bench_piece.c: in-memory rates of the piece part's inner loops: fr32 pad and
 * unpad, SHA-256 of tree nodes on each backend, and CommP by thread count.
 *
 * usage: bench_piece [MiB]   (payload size, default 256; prints one JSON
 * object per measurement, the median of 5 runs, times in thread CPU seconds
 * for the single-thread loops so that other load on the machine counts less)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "piece/piece_i.h"

#define RUNS 5

static double now(clockid_t clk)
{
	struct timespec t;

	clock_gettime(clk, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v)
{
	qsort(v, RUNS, sizeof(double), cmp_double);
	return v[RUNS / 2];
}

static void report(const char *what, double bytes, double secs)
{
	printf("{\"bench\":\"%s\",\"MBps\":%.0f,\"s\":%.4f}\n", what, bytes / secs / 1e6, secs);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	size_t quads = (mib << 20) / 127, n = quads * 127, leaves = 1 << 15;
	uint8_t *in = malloc(quads * 128), *out = malloc(quads * 128), *nodes = malloc(32 * leaves);
	double t[RUNS];
	cairn_piece_info info;

	if (!in || !out || !nodes)
		return 1;
	for (size_t i = 0; i < quads * 128; i++)
		in[i] = (uint8_t)(i * 2654435761u >> 13);
	memset(out, 0, quads * 128);
	for (int r = 0; r < RUNS; r++) {
		double a = now(CLOCK_THREAD_CPUTIME_ID);

		cairn_fr32_pad(out, in, n);
		t[r] = now(CLOCK_THREAD_CPUTIME_ID) - a;
	}
	report("fr32 pad (1 thread, payload bytes)", (double)n, median(t));
	for (int r = 0; r < RUNS; r++) {
		double a = now(CLOCK_THREAD_CPUTIME_ID);

		if (cairn_fr32_unpad(in, out, quads * 128))
			return 1;
		t[r] = now(CLOCK_THREAD_CPUTIME_ID) - a;
	}
	report("fr32 unpad (1 thread, payload bytes)", (double)n, median(t));

	/* A 1 MiB subtree (2^15 leaves) reduced to its root, per backend: the
	 * rate is in padded bytes of leaves. */
	{
		static const struct {
			cairn_piece__sha_backend b;
			const char *name;
		} backends[] = {
			{CAIRN_PIECE__SHA_OPENSSL, "tree of 1 MiB: OpenSSL (1 thread, padded bytes)"},
			{CAIRN_PIECE__SHA_SHANI, "tree of 1 MiB: SHA-NI x4 (1 thread, padded bytes)"},
			{CAIRN_PIECE__SHA_AVX512, "tree of 1 MiB: AVX-512 x16 (1 thread, padded bytes)"},
		};
		for (size_t k = 0; k < sizeof(backends) / sizeof(backends[0]); k++) {
			if (cairn_piece__sha_select(backends[k].b) != backends[k].b)
				continue;
			for (int r = 0; r < RUNS; r++) {
				double a;

				memcpy(nodes, in, 32 * leaves);
				a = now(CLOCK_THREAD_CPUTIME_ID);
				for (int i = 0; i < 16; i++)
					cairn_piece__reduce(nodes, leaves);
				t[r] = (now(CLOCK_THREAD_CPUTIME_ID) - a) / 16;
			}
			report(backends[k].name, 32.0 * (double)leaves, median(t));
		}
		cairn_piece__sha_select(CAIRN_PIECE__SHA_AUTO);
	}

	/* CommP of the payload in memory, by thread count (wall time). */
	for (unsigned th = 1; th <= 2; th++) {
		char name[64];

		for (int r = 0; r < RUNS; r++) {
			double a = now(CLOCK_MONOTONIC);

			if (cairn_commp_sum(&info, in, n, th))
				return 1;
			t[r] = now(CLOCK_MONOTONIC) - a;
		}
		snprintf(name, sizeof(name), "commp in memory (%u thread%s, wall)", th, th > 1 ? "s" : "");
		report(name, (double)n, median(t));
	}
	free(in);
	free(out);
	free(nodes);
	return 0;
}
