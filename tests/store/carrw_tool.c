/* carrw_tool.c: drives the read-write CAR store for the kill -9 test: ingests
 * blocks with SYNC_EVERY_PUT printing each CID once put returns, resumes and
 * finalizes what a killed run left, and checks a CID list against a CAR.
 *
 *   carrw_tool ingest PATH (--seed N [--count N] | --car SRC)
 *   carrw_tool resume PATH (--seed N | --car SRC)
 *   carrw_tool check PATH CIDFILE
 *
 * ingest opens PATH (creating or resuming it) and puts the blocks of the
 * source in order; a block already there is skipped by the store, and its
 * CID printed all the same. The root is the source's first block (--seed)
 * or the CAR's roots. resume opens PATH, reports what was kept and cut on
 * stderr, puts the root blocks back if the kill came before them, and
 * finalizes. check exits 1 unless every whole line of CIDFILE names a block
 * of the finalized CAR that its index finds too.
 * Exit status: 0 fine, 1 failed, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"

/* --------------------------------------------------------------- sources */

typedef struct {
	uint64_t seed;           /* pseudo-random blocks, or */
	uint64_t count;
	const char *car;         /* the blocks of a CAR */
	cairn_car_reader *r;
	uint64_t next;
	uint8_t *buf;
	size_t cap;
} source;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Block i of a seed: mostly small, one in eight up to 256 KiB, so kills
 * land inside large sections as well as between small ones. */
static int seed_block(source *src, uint64_t i, cairn_block *out)
{
	uint64_t x = mix(src->seed ^ mix(i));
	size_t len = (x & 7) == 0 ? (size_t)(x >> 8) % (256u << 10) : (size_t)(x >> 8) % 3000;

	if (len + 8 > src->cap) {
		uint8_t *p = realloc(src->buf, len + 8);

		if (!p)
			return CAIRN_ENOMEM;
		src->buf = p;
		src->cap = len + 8;
	}
	for (size_t k = 0; k < len; k += 8) {
		uint64_t v = mix(x + k);

		memcpy(src->buf + k, &v, 8);
	}
	/* The index makes every block distinct, even empty ones. */
	if (len < 8)
		len = 8;
	memcpy(src->buf, &i, 8);
	out->data = src->buf;
	out->len = len;
	return cairn_cid_compute(&out->cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, out->data, len);
}

/* 1 with the next block, 0 at the end, or a negative code. */
static int source_next(source *src, cairn_block *out)
{
	cairn_car_section sec;
	int rc;

	if (!src->car) {
		if (src->next >= src->count)
			return 0;
		rc = seed_block(src, src->next++, out);
		return rc ? rc : 1;
	}
	if ((rc = cairn_car_reader_next(src->r, &sec, true)) != 1)
		return rc;
	out->cid = sec.cid;
	out->data = sec.block;
	out->len = (size_t)sec.block_len;
	return 1;
}

/* The roots the store is made with: block 0 of a seed, or the CAR's. */
static int source_roots(source *src, cairn_cid **roots, size_t *n)
{
	cairn_block b;
	int rc;

	if (src->car) {
		*n = cairn_car_reader_root_count(src->r);
		*roots = malloc((*n ? *n : 1) * sizeof(**roots));
		if (!*roots)
			return CAIRN_ENOMEM;
		memcpy(*roots, cairn_car_reader_roots(src->r), *n * sizeof(**roots));
		return 0;
	}
	if ((rc = seed_block(src, 0, &b)))
		return rc;
	if (!(*roots = malloc(sizeof(**roots))))
		return CAIRN_ENOMEM;
	**roots = b.cid;
	*n = 1;
	return 0;
}

/* Puts each root that is missing, taking its bytes from the source. */
static int put_missing_roots(cairn_store *s, source *src, const cairn_cid *roots, size_t n)
{
	size_t missing = 0;
	cairn_block b;
	int rc;

	for (size_t i = 0; i < n; i++)
		missing += cairn_store_has(s, &roots[i]) == 0;
	while (missing && (rc = source_next(src, &b)) == 1) {
		for (size_t i = 0; i < n; i++) {
			if (!cairn_cid_equal(&b.cid, &roots[i]) || cairn_store_has(s, &roots[i]))
				continue;
			if ((rc = cairn_store_put(s, &b.cid, b.data, b.len)))
				return rc;
			missing--;
		}
	}
	return missing ? cairn_error_set(CAIRN_ENOTFOUND, "a root is not in the source") : 0;
}

/* ------------------------------------------------------------------ modes */

static int die(const char *what)
{
	fprintf(stderr, "carrw_tool: %s: %s\n", what, cairn_error_last());
	return 1;
}

static int ingest(const char *path, source *src)
{
	cairn_carrw_options o = CAIRN_CARRW_OPTIONS_INIT;
	cairn_carrw_resume rep;
	cairn_cid *roots = NULL;
	cairn_store *s;
	cairn_block b;
	size_t n;
	int rc;

	o.sync = CAIRN_SYNC_EVERY_PUT;
	o.root_room = 1024;
	if (source_roots(src, &roots, &n))
		return die("roots");
	/* Resuming keeps the roots on file (NULL), as a restarted job would. */
	if (cairn_store_carrw_open(&s, &rep, path, access(path, F_OK) ? roots : NULL,
				   access(path, F_OK) ? n : 0, &o)) {
		free(roots);
		return die(path);
	}
	free(roots);
	fprintf(stderr, "carrw_tool: %s: resumed %llu blocks, cut %llu bytes at byte %llu\n", path,
		(unsigned long long)rep.blocks, (unsigned long long)rep.cut_bytes,
		(unsigned long long)rep.cut_at);
	while ((rc = source_next(src, &b)) == 1) {
		char line[CAIRN_CID_MAX_STRING + 1];
		int len;

		if ((rc = cairn_store_put(s, &b.cid, b.data, b.len)))
			break;
		/* One write(2) per line after put returned: a kill leaves whole
		 * lines, at most a partial last one, which check ignores. */
		len = cairn_cid_to_string(line, &b.cid);
		line[len++] = '\n';
		if (write(STDOUT_FILENO, line, (size_t)len) != len) {
			rc = cairn_error_set(CAIRN_EIO, "stdout: %s", strerror(errno));
			break;
		}
	}
	if (rc < 0) {
		cairn_store_free(s);
		return die("ingest");
	}
	cairn_store_free(s);
	return 0;
}

static int resume(const char *path, source *src)
{
	cairn_carrw_options o = CAIRN_CARRW_OPTIONS_INIT;
	cairn_carrw_resume rep;
	cairn_cid *roots = NULL;
	cairn_store *s;
	size_t n;
	int rc;

	o.sync = CAIRN_SYNC_EVERY_PUT;
	o.root_room = 1024;
	if (source_roots(src, &roots, &n))
		return die("roots");
	/* A kill before the file was linked into place leaves none: make it. */
	if (cairn_store_carrw_open(&s, &rep, path, access(path, F_OK) ? roots : NULL,
				   access(path, F_OK) ? n : 0, &o)) {
		free(roots);
		return die(path);
	}
	fprintf(stderr, "carrw_tool: %s: resumed %llu blocks, cut %llu bytes at byte %llu\n", path,
		(unsigned long long)rep.blocks, (unsigned long long)rep.cut_bytes,
		(unsigned long long)rep.cut_at);
	rc = put_missing_roots(s, src, roots, n);
	free(roots);
	if (rc == CAIRN_EEXISTS)
		rc = 0; /* finalized already: the roots were checked then */
	else if (!rc)
		rc = cairn_store_carrw_finalize(s);
	if (rc == CAIRN_EEXISTS)
		rc = 0;
	cairn_store_free(s);
	return rc ? die("resume") : 0;
}

static int cmp_cid(const void *a, const void *b)
{
	return cairn_cid_cmp(a, b);
}

static int check(const char *path, const char *list)
{
	cairn_buf text = CAIRN_BUF_INIT;
	cairn_car_reader *r = NULL;
	cairn_car_index *idx = NULL;
	cairn_car_section sec;
	cairn_cid *cids = NULL;
	size_t n = 0, cap = 0, lines = 0, bad = 0;
	int rc;

	if (cairn_file_read_all(&text, list, SIZE_MAX / 2))
		return die(list);
	if (cairn_car_reader_open(&r, path, NULL))
		return die(path);
	if (!cairn_car_reader_v2_header(r) || !cairn_car_reader_v2_header(r)->index_offset) {
		fprintf(stderr, "carrw_tool: %s: not a finalized CARv2 with an index\n", path);
		return 1;
	}
	if (cairn_car_index_open(&idx, path, cairn_car_reader_v2_header(r)->index_offset))
		return die(path);
	while ((rc = cairn_car_reader_next(r, &sec, false)) == 1) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if (!(cids = realloc(cids, cap * sizeof(*cids))))
				return 1;
		}
		cids[n++] = sec.cid;
	}
	if (rc)
		return die(path);
	qsort(cids, n, sizeof(*cids), cmp_cid);
	for (size_t at = 0; at < text.len;) {
		char *nl = memchr(text.data + at, '\n', text.len - at);
		size_t len;
		cairn_cid cid;
		uint64_t off;

		if (!nl)
			break; /* the line the kill cut short */
		len = (size_t)(nl - (char *)text.data) - at;
		lines++;
		if (cairn_cid_parse(&cid, (char *)text.data + at, len)) {
			fprintf(stderr, "carrw_tool: %s: line %zu: %s\n", list, lines, cairn_error_last());
			bad++;
		} else if (!bsearch(&cid, cids, n, sizeof(*cids), cmp_cid) ||
			   cairn_car_index_find(idx, &cid, &off, 1) < 1) {
			fprintf(stderr, "carrw_tool: %s: %.*s (line %zu) was put but is not in the CAR\n",
				path, (int)len, (char *)text.data + at, lines);
			bad++;
		}
		at += len + 1;
	}
	fprintf(stderr, "carrw_tool: %s: %zu blocks; %zu CIDs listed, %zu missing\n", path, n, lines, bad);
	cairn_car_index_free(idx);
	cairn_car_reader_free(r);
	cairn_buf_free(&text);
	free(cids);
	return bad ? 1 : 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: carrw_tool ingest PATH (--seed N [--count N] | --car SRC)\n"
			"       carrw_tool resume PATH (--seed N | --car SRC)\n"
			"       carrw_tool check PATH CIDFILE\n");
	return 2;
}

int main(int argc, char **argv)
{
	source src;
	int rc;

	memset(&src, 0, sizeof(src));
	src.count = UINT64_MAX;
	if (argc < 4)
		return usage();
	if (!strcmp(argv[1], "check"))
		return argc == 4 ? check(argv[2], argv[3]) : usage();
	for (int i = 3; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--seed"))
			src.seed = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--count"))
			src.count = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--car"))
			src.car = argv[++i];
		else
			return usage();
	}
	if (src.car && cairn_car_reader_open(&src.r, src.car, NULL))
		return die(src.car);
	if (!strcmp(argv[1], "ingest"))
		rc = ingest(argv[2], &src);
	else if (!strcmp(argv[1], "resume"))
		rc = resume(argv[2], &src);
	else
		rc = usage();
	cairn_car_reader_free(src.r);
	free(src.buf);
	return rc;
}
