/* bench_carrw.c: ingest rate of the read-write CAR store against the plain
 * sequential write speed of the same bytes on the same file system.
 *
 * For each block size, N MiB of blocks (windows into one random buffer,
 * distinct, their sha2-256 digests computed before any clock starts; the CID
 * is rebuilt from the digest inside the timed loop, as a caller holding it
 * would) go through a fresh store with SYNC_NONE and with SYNC_FLUSH (one
 * cairn_store_flush after the last put), by put, and with SYNC_NONE by
 * put_many in batches of 256. Two times per run:
 *   puts     open, every put returned (the bytes handed to the kernel)
 *   durable  the same through finalize: index written, fsync, header, fsync
 * Against, on a file of the CAR's size written from the same buffer:
 *   write    write(2) of 1 MiB chunks, from offset 0 or from the CAR's
 *            first section's offset (see seq_write)
 *   +fsync   the same through fsync
 *   dd       dd if=/dev/zero bs=1M conv=fdatasync, as its own figure says
 * Rates are MB/s (10^6 bytes) of the CAR file's bytes, the median of the
 * runs, interleaved in a rotating order after one warm-up of each, so
 * that the page cache's slow turns fall on all of them alike. The target:
 * puts >= 80% of write, durable >= 80% of write+fsync, each against the
 * faster of the two ways of writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

#define MAX_REPEAT 15
#define MAX_SIZES 8
#define CHUNK (1u << 20)
/* Blocks per put_many in the batched ingest. */
#define BATCH 256

typedef struct {
	size_t n, len;
	uint8_t *pool;
	size_t pool_len;
	uint8_t (*digest)[32];
} workload;

static size_t offset_of(const workload *w, size_t i)
{
	return (i * 8) % (w->pool_len - w->len + 1);
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int workload_make(workload *w, size_t n, size_t len)
{
	uint64_t x = 0x2545f4914f6cdd1dull;

	w->n = n;
	w->len = len;
	/* Room for n distinct windows 8 bytes apart, and at least 4 MiB so
	 * the sequential writer has whole chunks to take. */
	w->pool_len = len + (n * 8 > (4u << 20) ? n * 8 : (4u << 20));
	w->pool = malloc(w->pool_len);
	w->digest = malloc(n * sizeof(*w->digest));
	if (!w->pool || !w->digest)
		return -1;
	for (size_t i = 0; i < w->pool_len; i++)
		w->pool[i] = (uint8_t)(next_rand(&x) >> 32);
	for (size_t i = 0; i < n; i++)
		if (cairn_multihash_sum(w->digest[i], CAIRN_MH_SHA2_256, w->pool + offset_of(w, i), len) != 32)
			return -1;
	return 0;
}

static void workload_free(workload *w)
{
	free(w->pool);
	free(w->digest);
}

static double secs(uint64_t from, uint64_t to)
{
	return (double)(to - from) / 1e9;
}

/* One ingest, by put (batch 0) or put_many: fills puts_s and durable_s,
 * and the file's size. */
static int ingest(const workload *w, const char *path, cairn_sync_policy sync, size_t batch,
		  double *puts_s, double *durable_s, uint64_t *bytes)
{
	cairn_carrw_options o = CAIRN_CARRW_OPTIONS_INIT;
	cairn_block many[BATCH];
	cairn_store *s;
	struct stat st;
	uint64_t t0, t1, t2;
	int rc;

	o.sync = sync;
	unlink(path);
	t0 = cairn_time_ns();
	if ((rc = cairn_store_carrw_open(&s, NULL, path, NULL, 0, &o)))
		return rc;
	for (size_t i = 0; i < w->n && !batch; i++) {
		cairn_cid cid;

		cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, w->digest[i], 32);
		if ((rc = cairn_store_put(s, &cid, w->pool + offset_of(w, i), w->len)))
			goto out;
	}
	for (size_t i = 0; i < w->n && batch; i += batch) {
		size_t k = w->n - i < batch ? w->n - i : batch;

		for (size_t j = 0; j < k; j++) {
			cairn_cid_from_digest(&many[j].cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
					      w->digest[i + j], 32);
			many[j].data = w->pool + offset_of(w, i + j);
			many[j].len = w->len;
		}
		if ((rc = cairn_store_put_many(s, many, k)))
			goto out;
	}
	t1 = cairn_time_ns();
	if (sync == CAIRN_SYNC_FLUSH && (rc = cairn_store_flush(s, NULL)))
		goto out;
	if ((rc = cairn_store_carrw_finalize(s)))
		goto out;
	t2 = cairn_time_ns();
	*puts_s = secs(t0, t1);
	*durable_s = secs(t0, t2);
	if (stat(path, &st) < 0)
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	*bytes = (uint64_t)st.st_size;
out:
	cairn_store_free(s);
	unlink(path);
	return rc;
}

/* write(2) of `bytes` in 1 MiB chunks from the pool, then fsync; after a
 * first write of `lead` bytes when not 0, so the chunks sit at the file
 * offsets of the CAR's sections (a CAR's sections start 51 + root_room
 * bytes in). The two differ here more than one would think: on the
 * virtual machine these figures come from, chunks aligned to 1 MiB were
 * copied into the page cache several times slower than the same chunks
 * off by 307 bytes (large folios there, it seems, on memory the host has
 * to hand over afresh). */
static int seq_write(const workload *w, const char *path, uint64_t bytes, size_t lead,
		     double *write_s, double *fsync_s)
{
	uint64_t t0, t1, done = 0;
	size_t k = 0;
	int fd, rc = 0;

	unlink(path);
	t0 = cairn_time_ns();
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	if (lead && (rc = cairn_file_write_full(fd, w->pool, lead, path)))
		goto out;
	done = lead;
	while (done < bytes) {
		size_t n = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
		/* Sources 8 bytes apart, as the ingest's blocks are: the copy
		 * runs at the speed of where it reads from, and a source that
		 * walks megabytes of memory would make write(2) look slower. */
		size_t at = (k++ * 8) % (w->pool_len - CHUNK + 1);

		if ((rc = cairn_file_write_full(fd, w->pool + at, n, path)))
			goto out;
		done += n;
	}
	t1 = cairn_time_ns();
	if ((rc = cairn_file_fsync(fd, path)))
		goto out;
	*write_s = secs(t0, t1);
	*fsync_s = secs(t0, cairn_time_ns());
out:
	close(fd);
	unlink(path);
	return rc;
}

/* dd's own figure: bytes over its own seconds, from its last line
 * ("N bytes (...) copied, S s, R MB/s"). 0 if dd is not there. */
static double dd_rate(const char *path, uint64_t bytes)
{
	char cmd[PATH_MAX + 128], line[512], last[512] = "";
	unsigned long long n = 0;
	double s = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s' bs=1M count=%llu conv=fdatasync 2>&1",
		 path, (unsigned long long)((bytes + CHUNK - 1) / CHUNK));
	if (!(p = popen(cmd, "r")))
		return 0;
	while (fgets(line, sizeof(line), p))
		strcpy(last, line);
	pclose(p);
	unlink(path);
	if (sscanf(last, "%llu bytes", &n) != 1)
		return 0;
	{
		const char *c = strstr(last, "copied, ");

		if (!c || sscanf(c + 8, "%lf", &s) != 1 || s <= 0)
			return 0;
	}
	return (double)n / s / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_carrw [--dir DIR] [--mib N] [--sizes B,B,...] [--repeat R] [--verbose]\n"
		"Ingest rate of the read-write CAR store (put with SYNC_NONE and SYNC_FLUSH, one\n"
		"flush at the end; put_many x256 with SYNC_NONE) against write(2) of the same\n"
		"bytes in 1 MiB chunks (from offset 0 and from the CAR's) and dd\n"
		"conv=fdatasync, in DIR (default $TMPDIR or /tmp). N MiB of blocks per size\n"
		"(default 1024); sizes default 1048576,200; median of R runs (default 3).\n"
		"--verbose prints every run on stderr.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"mib", required_argument, NULL, 'm'},
		{"sizes", required_argument, NULL, 's'},
		{"repeat", required_argument, NULL, 'r'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	size_t sizes[MAX_SIZES] = {1u << 20, 200}, nsizes = 2;
	unsigned long long mib = 1024;
	int repeat = 3, verbose = 0, c;
	char car[PATH_MAX], seq[PATH_MAX], dd[PATH_MAX];

	while ((c = getopt_long(argc, argv, "d:m:s:r:vh", longopts, NULL)) != -1) {
		char *end, *tok, *save = NULL;

		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'm':
			mib = strtoull(optarg, &end, 10);
			if (*end || !mib)
				goto bad;
			break;
		case 's':
			nsizes = 0;
			for (tok = strtok_r(optarg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (nsizes == MAX_SIZES)
					goto bad;
				sizes[nsizes] = strtoull(tok, &end, 10);
				if (*end || !sizes[nsizes])
					goto bad;
				nsizes++;
			}
			if (!nsizes)
				goto bad;
			break;
		case 'r':
			repeat = atoi(optarg);
			if (repeat < 1 || repeat > MAX_REPEAT)
				goto bad;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	snprintf(car, sizeof(car), "%s/bench-carrw.car", dir);
	snprintf(seq, sizeof(seq), "%s/bench-carrw.seq", dir);
	snprintf(dd, sizeof(dd), "%s/bench-carrw.dd", dir);

	printf("| blocks | store | puts MB/s | durable MB/s | write MB/s | write+fsync MB/s | "
	       "write at CAR offsets MB/s | +fsync MB/s | dd fdatasync MB/s | puts / write | "
	       "durable / write+fsync |\n");
	printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t z = 0; z < nsizes; z++) {
		/* The runs: the first time (puts, write) and the second (durable,
		 * +fsync) of each. */
		enum { NONE, FLUSH, MANY, WRITE, WRITE_CAR, DD, KINDS };
		static const char *const names[KINDS] = {
			"put, SYNC_NONE", "put, SYNC_FLUSH", "put_many x" "256" ", SYNC_NONE",
			"write", "write at CAR offsets", "dd",
		};
		double t1[KINDS][MAX_REPEAT], t2[KINDS][MAX_REPEAT];
		size_t n = (size_t)((mib << 20) / sizes[z]);
		size_t lead = CAIRN_CAR_V2_PREFIX_LEN + ((cairn_carrw_options)CAIRN_CARRW_OPTIONS_INIT).root_room;
		uint64_t bytes = 0, b2;
		workload w;

		if (!n || workload_make(&w, n, sizes[z])) {
			fprintf(stderr, "bench_carrw: cannot make %zu blocks of %zu bytes\n", n, sizes[z]);
			return 1;
		}
		/* The CAR's size first (and a warm-up of each way of writing). */
		if (ingest(&w, car, CAIRN_SYNC_NONE, 0, &t1[0][0], &t2[0][0], &bytes) ||
		    seq_write(&w, seq, bytes, 0, &t1[WRITE][0], &t2[WRITE][0]) ||
		    seq_write(&w, seq, bytes, lead, &t1[WRITE][0], &t2[WRITE][0])) {
			fprintf(stderr, "bench_carrw: %s\n", cairn_error_last());
			return 1;
		}
		/* Each run takes them in another order: on a virtual machine the
		 * page cache is fast or slow by turns, and a fixed order would
		 * give one of them the slow turns every time. */
		for (int r = 0; r < repeat; r++) {
			for (int k = 0; k < KINDS; k++) {
				int m = (k + r) % KINDS, rc = 0;
				double mb = (double)bytes / 1e6;

				if (m <= MANY)
					rc = ingest(&w, car, m == FLUSH ? CAIRN_SYNC_FLUSH : CAIRN_SYNC_NONE,
						    m == MANY ? BATCH : 0, &t1[m][r], &t2[m][r], &b2);
				else if (m != DD)
					rc = seq_write(&w, seq, bytes, m == WRITE_CAR ? lead : 0, &t1[m][r],
						       &t2[m][r]);
				else
					t1[m][r] = t2[m][r] = dd_rate(dd, bytes);
				if (rc) {
					fprintf(stderr, "bench_carrw: %s\n", cairn_error_last());
					return 1;
				}
				if (verbose && m != DD)
					fprintf(stderr, "%zu B run %d: %s: %.0f, then %.0f MB/s\n", sizes[z], r,
						names[m], mb / t1[m][r], mb / t2[m][r]);
				else if (verbose)
					fprintf(stderr, "%zu B run %d: dd %.0f MB/s\n", sizes[z], r, t1[m][r]);
			}
		}
		{
			double mb = (double)bytes / 1e6, rate1[KINDS], rate2[KINDS], best1, best2;

			for (int m = 0; m < DD; m++) {
				rate1[m] = mb / median(t1[m], repeat);
				rate2[m] = mb / median(t2[m], repeat);
			}
			rate1[DD] = median(t1[DD], repeat);
			/* Against the faster of the two plain writes. */
			best1 = rate1[WRITE] > rate1[WRITE_CAR] ? rate1[WRITE] : rate1[WRITE_CAR];
			best2 = rate2[WRITE] > rate2[WRITE_CAR] ? rate2[WRITE] : rate2[WRITE_CAR];
			for (int m = 0; m <= MANY; m++)
				printf("| %zu x %zu B | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | "
				       "%.0f%% | %.0f%% |\n", n, sizes[z], names[m], rate1[m], rate2[m],
				       rate1[WRITE], rate2[WRITE], rate1[WRITE_CAR], rate2[WRITE_CAR],
				       rate1[DD], 100 * rate1[m] / best1, 100 * rate2[m] / best2);
		}
		fflush(stdout);
		workload_free(&w);
	}
	return 0;
bad:
	usage(stderr);
	return 2;
}
