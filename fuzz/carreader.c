/* carreader.c: fuzz target for the CAR reader: the input as a file (memfd), walked
 * with default and lenient options; section_read at each offset must agree with next(). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cairn.h"
#include "fuzz.h"

#define NAME "fuzz.car"

/* The codes a reader may give for bad bytes; anything else is a bug. */
static void check_failure(int rc)
{
	if (rc != CAIRN_ECORRUPT && rc != CAIRN_ETOOBIG && rc != CAIRN_EUNSUPPORTED &&
	    rc != CAIRN_EMISMATCH)
		abort();
	if (cairn_error_last_code() != rc || !strstr(cairn_error_last(), NAME))
		abort();
}

static void walk(int fd, uint64_t size, const cairn_car_options *opts)
{
	cairn_buf blk = CAIRN_BUF_INIT;
	cairn_car_reader *r = NULL;
	cairn_car_section s, t;
	uint64_t doff, dend, prev_end;
	int rc;

	rc = cairn_car_reader_open_fd(&r, fd, NAME, opts);
	if (rc) {
		if (r)
			abort();
		check_failure(rc);
		return;
	}
	doff = cairn_car_reader_data_offset(r);
	dend = cairn_car_reader_data_end(r);
	if (doff > dend || dend > size || cairn_car_reader_header_len(r) > dend - doff)
		abort();
	if (cairn_car_reader_version(r) == 1) {
		if (cairn_car_reader_v2_header(r) || doff != 0)
			abort();
	} else if (cairn_car_reader_version(r) == 2) {
		const cairn_car_v2_header *h = cairn_car_reader_v2_header(r);

		if (!h || h->data_offset != doff || h->data_offset + h->data_size != dend ||
		    doff < CAIRN_CAR_V2_PREFIX_LEN)
			abort();
	} else {
		abort();
	}
	if (cairn_car_reader_root_count(r) && !cairn_car_reader_roots(r))
		abort();
	prev_end = doff + cairn_car_reader_header_len(r);
	while ((rc = cairn_car_reader_next(r, &s, true)) == 1) {
		/* sections follow one another inside the payload */
		if (s.file_offset != prev_end || s.file_offset != doff + s.offset ||
		    s.length != s.cid_len + s.block_len || s.cid_len != s.cid.len ||
		    s.block_offset + s.block_len > dend || (s.block_len && !s.block))
			abort();
		prev_end = s.block_offset + s.block_len;
		if (!opts->trusted && cairn_cid_verify(&s.cid, s.block, (size_t)s.block_len))
			abort();
		/* the same section read on its own */
		rc = cairn_car_section_read(&t, &blk, fd, NAME, doff, dend, s.offset, opts);
		if (rc)
			abort();
		if (!cairn_cid_equal(&t.cid, &s.cid) || t.offset != s.offset ||
		    t.file_offset != s.file_offset || t.length != s.length || t.cid_len != s.cid_len ||
		    t.block_offset != s.block_offset || t.block_len != s.block_len ||
		    t.block != blk.data || (s.block_len && memcmp(t.block, s.block, (size_t)s.block_len)))
			abort();
	}
	if (rc < 0)
		check_failure(rc);
	else if (cairn_car_reader_next(r, &s, false) != 0) /* the end stays the end */
		abort();
	cairn_car_reader_free(r);
	cairn_buf_free(&blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;

	if (fd < 0 && (fd = memfd_create("carreader", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(fd, 0) < 0 || (size && cairn_file_pwrite_full(fd, data, size, 0, NAME)))
		abort();
	walk(fd, size, &opts);
	opts.zero_length_as_eof = true;
	opts.trusted = true;
	walk(fd, size, &opts);
	return 0;
}
