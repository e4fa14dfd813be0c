/* car_tool.c: a small helper for the interop test (run.sh): rewrites a CAR as CARv1
 * or CARv2 with cairn's writer, or writes a detached index with cairn_car_index_build. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: car_tool write-v1 IN.car OUT.car [--keep-identity]\n"
		"       car_tool write-v2 IN.car OUT.car [--keep-identity] [--codec=mh|sorted|none]\n"
		"       car_tool index IN.car OUT.idx [--keep-identity] [--codec=mh|sorted]\n");
	return 2;
}

static int fail(const char *what)
{
	fprintf(stderr, "car_tool: %s: %s\n", what, cairn_error_last());
	return 1;
}

/* Every block of `r`, in order, through a writer with `opts`. */
static int rewrite(cairn_car_reader *r, const char *out, const cairn_car_writer_options *opts)
{
	cairn_car_writer *w;
	cairn_car_section s;
	int rc;

	if (cairn_car_writer_open(&w, out, cairn_car_reader_roots(r), cairn_car_reader_root_count(r), opts))
		return fail("open output");
	while ((rc = cairn_car_reader_next(r, &s, true)) == 1) {
		if (cairn_car_writer_put(w, &s.cid, s.block, (size_t)s.block_len)) {
			cairn_car_writer_free(w);
			return fail("put");
		}
	}
	if (rc < 0) {
		cairn_car_writer_free(w);
		return fail("read");
	}
	if (cairn_car_writer_finish(w)) {
		cairn_car_writer_free(w);
		return fail("finish");
	}
	cairn_car_writer_free(w);
	return 0;
}

int main(int argc, char **argv)
{
	cairn_car_writer_options opts = {1, CAIRN_CAR_INDEX_MH_SORTED, false, false};
	cairn_car_reader *r;
	const char *cmd, *in, *out;
	int rc;

	if (argc < 4)
		return usage();
	cmd = argv[1];
	in = argv[2];
	out = argv[3];
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--keep-identity"))
			opts.keep_identity = true;
		else if (!strcmp(argv[i], "--codec=mh"))
			opts.index_codec = CAIRN_CAR_INDEX_MH_SORTED;
		else if (!strcmp(argv[i], "--codec=sorted"))
			opts.index_codec = CAIRN_CAR_INDEX_SORTED;
		else if (!strcmp(argv[i], "--codec=none"))
			opts.index_codec = 0;
		else
			return usage();
	}
	if (strcmp(cmd, "write-v1") && strcmp(cmd, "write-v2") && strcmp(cmd, "index"))
		return usage();
	if (cairn_car_reader_open(&r, in, NULL))
		return fail("open input");
	if (!strcmp(cmd, "index")) {
		cairn_buf idx = CAIRN_BUF_INIT;

		if (!opts.index_codec) {
			cairn_car_reader_free(r);
			return usage();
		}
		rc = cairn_car_index_build(&idx, r, opts.index_codec, opts.keep_identity);
		if (!rc)
			rc = cairn_file_replace_atomic(out, idx.data, idx.len, 0644);
		cairn_buf_free(&idx);
		cairn_car_reader_free(r);
		return rc ? fail("index") : 0;
	}
	opts.version = !strcmp(cmd, "write-v2") ? 2 : 1;
	rc = rewrite(r, out, &opts);
	cairn_car_reader_free(r);
	return rc;
}
