/* partialfile.c: fuzz target for the partial file's trailer: the input is
 * the bytes after a sector's data (RLE+ then its u32 length) of a 2 KiB
 * sector. Whatever opens must re-encode to a trailer that opens to the
 * same runs, all within the sector; a failure is CAIRN_ECORRUPT naming
 * the file. The RLE+ decoder also runs on the raw input. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "fuzz.h"

#define SSIZE 2048u

static void check_runs(const cairn_run *runs, size_t n, uint64_t max)
{
	for (size_t i = 0; i < n; i++) {
		if (!runs[i].len || runs[i].off + runs[i].len > max)
			abort();
		if (i && runs[i].off <= runs[i - 1].off + runs[i - 1].len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	cairn_partialfile *pf;
	cairn_run *runs = NULL, *again = NULL;
	size_t n = 0, n2 = 0;
	cairn_buf b = CAIRN_BUF_INIT;
	int fd, rc;

	/* The decoder alone: a round trip through the minimal encoding. */
	rc = cairn_rleplus_decode(&runs, &n, data, size, UINT64_C(1) << 40);
	if (rc) {
		if (rc != CAIRN_ECORRUPT || !strstr(cairn_error_last(), "at byte"))
			abort();
	} else {
		check_runs(runs, n, UINT64_C(1) << 40);
		if (cairn_rleplus_encode(&b, runs, n) ||
		    cairn_rleplus_decode(&again, &n2, b.data, b.len, UINT64_C(1) << 40) || n2 != n ||
		    (n && memcmp(runs, again, n * sizeof(*runs))))
			abort();
		/* The minimal form is never longer than what decoded. */
		if (b.len > size)
			abort();
	}
	cairn_free(runs);
	cairn_free(again);
	cairn_buf_free(&b);

	/* The whole file: a sector of zeros, then the input as the trailer. */
	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/cairn-fuzz-partialfile-%ld", (long)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	if (ftruncate(fd, SSIZE) < 0 || (size && pwrite(fd, data, size, SSIZE) != (ssize_t)size)) {
		close(fd);
		return 0;
	}
	close(fd);
	rc = cairn_partialfile_open(&pf, path, SSIZE, false);
	if (rc) {
		if ((rc != CAIRN_ECORRUPT && rc != CAIRN_ETOOBIG) || !strstr(cairn_error_last(), path))
			abort();
	} else {
		const cairn_run *r = cairn_partialfile_allocated(pf, &n);

		check_runs(r, n, SSIZE);
		for (size_t i = 0; i < n; i++)
			if (!cairn_partialfile_has_allocated(pf, r[i].off, r[i].len))
				abort();
		cairn_partialfile_close(pf);
	}
	unlink(path);
	return 0;
}
