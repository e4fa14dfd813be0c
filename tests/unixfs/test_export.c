/* test_export.c: the UnixFS exporter on DAGs built by hand: files over
 * leaves and nested nodes, directories, HAMT shards, symbolic links, and
 * the hostile cases (names that leave the directory, sizes that do not add
 * up, blocks that do not hash or are missing, deep DAGs, bad shards). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

static char tmpdir[256]; /* removed with everything in it at the end */

/* ------------------------------------------------------------- building */

typedef struct {
	cairn_cid cid;
	uint8_t *data;
	size_t len;
} blk;

/* The blocks of a hand-built DAG, written to a CAR by car_write. */
typedef struct {
	blk *b;
	size_t n, cap;
} dag;

typedef struct {
	const char *name;  /* NULL: no Name field */
	size_t name_len;   /* 0: strlen(name) */
	cairn_cid cid;
} tlink;

static void dag_free(dag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->b[i].data);
	free(d->b);
	memset(d, 0, sizeof(*d));
}

static cairn_cid dag_put(dag *d, unsigned version, uint64_t codec, const void *p, size_t n)
{
	blk *b;

	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 16;
		d->b = realloc(d->b, d->cap * sizeof(*d->b));
		assert_non_null(d->b);
	}
	b = &d->b[d->n++];
	assert_int_equal(cairn_cid_compute(&b->cid, version, codec, CAIRN_MH_SHA2_256, p, n), 0);
	b->data = malloc(n ? n : 1);
	assert_non_null(b->data);
	if (n)
		memcpy(b->data, p, n);
	b->len = n;
	return b->cid;
}

static cairn_cid put_raw(dag *d, const void *p, size_t n)
{
	return dag_put(d, 1, CAIRN_CODEC_RAW, p, n);
}

/* A dag-pb node: the Data message `u` and the links (names in sorted order). */
static cairn_cid put_pb(dag *d, const cairn_unixfs_data *u, const tlink *links, size_t n)
{
	cairn_buf data = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	cairn_node *items = calloc(n + 1, sizeof(*items));
	cairn_map_entry *ents = calloc(2 * n + 1, sizeof(*ents)), top[2];
	cairn_node root;
	cairn_cid cid;

	assert_non_null(items);
	assert_non_null(ents);
	assert_int_equal(cairn_unixfs_data_encode(&data, u), 0);
	for (size_t i = 0; i < n; i++) {
		cairn_map_entry *e = &ents[2 * i];
		size_t k = 0;

		e[k].key = (const uint8_t *)"Hash";
		e[k].key_len = 4;
		e[k].value.kind = CAIRN_KIND_LINK;
		e[k++].value.v.link = &links[i].cid;
		if (links[i].name) {
			e[k].key = (const uint8_t *)"Name";
			e[k].key_len = 4;
			e[k].value.kind = CAIRN_KIND_STRING;
			e[k].value.v.bytes.ptr = (const uint8_t *)links[i].name;
			e[k++].value.v.bytes.len =
				links[i].name_len ? links[i].name_len : strlen(links[i].name);
		}
		items[i].kind = CAIRN_KIND_MAP;
		items[i].v.map.entries = e;
		items[i].v.map.len = k;
	}
	top[0].key = (const uint8_t *)"Data";
	top[0].key_len = 4;
	top[0].value.kind = CAIRN_KIND_BYTES;
	top[0].value.v.bytes.ptr = data.data;
	top[0].value.v.bytes.len = data.len;
	top[1].key = (const uint8_t *)"Links";
	top[1].key_len = 5;
	top[1].value.kind = CAIRN_KIND_LIST;
	top[1].value.v.list.items = items;
	top[1].value.v.list.len = n;
	root.kind = CAIRN_KIND_MAP;
	root.v.map.entries = top;
	root.v.map.len = 2;
	assert_int_equal(cairn_dagpb_encode(&out, &root), 0);
	cid = dag_put(d, 1, CAIRN_CODEC_DAG_PB, out.data, out.len);
	cairn_buf_free(&out);
	cairn_buf_free(&data);
	free(items);
	free(ents);
	return cid;
}

static cairn_unixfs_data udata(cairn_unixfs_type type)
{
	cairn_unixfs_data u;

	memset(&u, 0, sizeof(u));
	u.type = type;
	return u;
}

/* A File node: own bytes `p` (may be NULL) and children of the given sizes. */
static cairn_cid put_file(dag *d, const void *p, size_t n, const tlink *kids, uint64_t *sizes,
			  size_t nkids)
{
	cairn_unixfs_data u = udata(CAIRN_UNIXFS_FILE);

	u.has_data = p != NULL;
	u.data = p;
	u.data_len = n;
	u.has_filesize = true;
	u.filesize = n;
	for (size_t i = 0; i < nkids; i++)
		u.filesize += sizes[i];
	u.blocksizes = sizes;
	u.nblocksizes = nkids;
	return put_pb(d, &u, kids, nkids);
}

static cairn_cid put_dir(dag *d, const tlink *links, size_t n)
{
	cairn_unixfs_data u = udata(CAIRN_UNIXFS_DIRECTORY);

	return put_pb(d, &u, links, n);
}

static cairn_cid put_shard(dag *d, uint64_t fanout, const tlink *links, size_t n)
{
	cairn_unixfs_data u = udata(CAIRN_UNIXFS_HAMT_SHARD);
	static const uint8_t bitfield[1] = {0};

	u.has_data = true;
	u.data = bitfield;
	u.data_len = 1;
	u.has_hash_type = true;
	u.hash_type = CAIRN_UNIXFS_HAMT_MURMUR3;
	u.has_fanout = true;
	u.fanout = fanout;
	return put_pb(d, &u, links, n);
}

static cairn_cid put_symlink(dag *d, const char *target)
{
	cairn_unixfs_data u = udata(CAIRN_UNIXFS_SYMLINK);

	u.has_data = true;
	u.data = (const uint8_t *)target;
	u.data_len = strlen(target);
	return put_pb(d, &u, NULL, 0);
}

static void tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

/* Writes every block but those in `skip` (a CID to leave out, or NULL). */
static void car_write(const char *path, const dag *d, const cairn_cid *root,
		      const cairn_cid *skip, unsigned version)
{
	cairn_car_writer_options o = CAIRN_CAR_WRITER_OPTIONS_INIT;
	cairn_car_writer *w;

	o.version = version;
	o.skip_duplicates = true;
	assert_int_equal(cairn_car_writer_open(&w, path, root, 1, &o), 0);
	for (size_t i = 0; i < d->n; i++) {
		if (skip && cairn_cid_equal(skip, &d->b[i].cid))
			continue;
		assert_int_equal(cairn_car_writer_put(w, &d->b[i].cid, d->b[i].data, d->b[i].len), 0);
	}
	assert_int_equal(cairn_car_writer_finish(w), 0);
	cairn_car_writer_free(w);
}

static void rm_rf(const char *path)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Exports `root` from a CAR of `d` to tmpdir/out (removed first). */
static int export_dag(cairn_unixfs_export_result *res, const dag *d, const cairn_cid *root,
		      unsigned threads, bool overwrite, char *dest, size_t dest_n)
{
	cairn_unixfs_export_options o = {threads, overwrite, NULL, NULL};
	char car[PATH_MAX];
	cairn_car_options co = CAIRN_CAR_OPTIONS_INIT;
	cairn_store *s;
	int rc;

	tmp_path(car, sizeof(car), "t.car");
	tmp_path(dest, dest_n, "out");
	car_write(car, d, root, NULL, 2);
	co.trusted = true;
	assert_int_equal(cairn_store_car_open(&s, car, NULL, &co), 0);
	rc = cairn_unixfs_export(res, s, root, dest, &o);
	cairn_store_free(s);
	return rc;
}

static void check_file(const char *path, const void *want, size_t n)
{
	cairn_buf b = CAIRN_BUF_INIT;

	assert_int_equal(cairn_file_read_all(&b, path, 1 << 26), 0);
	assert_int_equal(b.len, n);
	if (n)
		assert_memory_equal(b.data, want, n);
	cairn_buf_free(&b);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (uint8_t)(x >> 24);
	}
}

/* Expects failure `code` with a message holding every string given. */
static void expect_fail(int rc, int code, ...)
{
	const char *msg = cairn_error_last(), *s;
	va_list ap;

	if (rc != code)
		fail_msg("expected %d, got %d: %s", code, rc, msg);
	if (getenv("CAIRN_TEST_SHOW_ERRORS"))
		print_message("%s\n", msg);
	va_start(ap, code);
	while ((s = va_arg(ap, const char *))) {
		if (!strstr(msg, s))
			fail_msg("message \"%s\" lacks \"%s\"", msg, s);
	}
	va_end(ap);
}

/* --------------------------------------------------------------- files */

static void test_raw_root(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	uint8_t buf[1000];
	dag d = {0};
	cairn_cid root;

	(void)state;
	fill(buf, sizeof(buf), 1);
	root = put_raw(&d, buf, sizeof(buf));
	assert_int_equal(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), 0);
	check_file(dest, buf, sizeof(buf));
	assert_int_equal(res.files, 1);
	assert_int_equal(res.dirs, 0);
	assert_int_equal(res.bytes, sizeof(buf));
	assert_int_equal(res.blocks, 1);
	rm_rf(dest);
	/* An empty raw block is an empty file. */
	root = put_raw(&d, "", 0);
	assert_int_equal(export_dag(&res, &d, &root, 2, false, dest, sizeof(dest)), 0);
	check_file(dest, "", 0);
	rm_rf(dest);
	dag_free(&d);
}

/* A file of own Data, raw leaves, a dag-pb leaf, and an inner node with
 * its own Data over more leaves: each piece must land at its offset. */
static void build_tree_file(dag *d, cairn_cid *root, uint8_t *want, size_t *len)
{
	uint8_t *p = want;
	cairn_cid inner_kids[3];
	uint64_t inner_sizes[3] = {300, 0, 7000}, sizes[4];
	tlink kids[4], ik[3];
	cairn_unixfs_data leaf = udata(CAIRN_UNIXFS_RAW);

	fill(want, 100000, 7);
	/* Root's own Data: 50 bytes. */
	p += 50;
	/* Child 0: a raw leaf of 4096. */
	kids[0] = (tlink){"", 0, put_raw(d, p, 4096)};
	sizes[0] = 4096;
	p += 4096;
	/* Child 1: a dag-pb Raw leaf of 1000 (as old go-ipfs made). */
	leaf.has_data = true;
	leaf.data = p;
	leaf.data_len = 1000;
	leaf.has_filesize = true;
	leaf.filesize = 1000;
	kids[1] = (tlink){"", 0, put_pb(d, &leaf, NULL, 0)};
	sizes[1] = 1000;
	p += 1000;
	/* Child 2: an inner File node, own Data 20, then leaves 300, 0, 7000. */
	{
		const uint8_t *own = p;

		p += 20;
		for (int i = 0; i < 3; i++) {
			inner_kids[i] = put_raw(d, p, inner_sizes[i]);
			ik[i] = (tlink){"", 0, inner_kids[i]};
			p += inner_sizes[i];
		}
		kids[2] = (tlink){"", 0, put_file(d, own, 20, ik, inner_sizes, 3)};
		sizes[2] = 20 + 300 + 7000;
	}
	/* Child 3: a raw leaf of 33. */
	kids[3] = (tlink){"", 0, put_raw(d, p, 33)};
	sizes[3] = 33;
	p += 33;
	*root = put_file(d, want, 50, kids, sizes, 4);
	*len = (size_t)(p - want);
}

static void test_file_offsets(void **state)
{
	static uint8_t want[100000];
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid root;
	dag d = {0};
	size_t len;

	(void)state;
	build_tree_file(&d, &root, want, &len);
	for (unsigned threads = 1; threads <= 4; threads++) {
		assert_int_equal(export_dag(&res, &d, &root, threads, false, dest, sizeof(dest)), 0);
		check_file(dest, want, len);
		assert_int_equal(res.bytes, len);
		assert_int_equal(res.files, 1);
		assert_int_equal(res.blocks, 8);
		rm_rf(dest);
	}
	dag_free(&d);
}

/* A big file over many leaves, several levels, on 4 threads: the pieces
 * written out of order by the workers must still make the file. */
static void test_file_wide(void **state)
{
	enum { LEAF = 4096, WIDTH = 50, MID = 8 };
	static uint8_t want[LEAF * WIDTH * MID];
	uint64_t sizes[WIDTH], msizes[MID];
	tlink kids[WIDTH], mids[MID];
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid root;
	dag d = {0};

	(void)state;
	fill(want, sizeof(want), 3);
	for (int m = 0; m < MID; m++) {
		for (int i = 0; i < WIDTH; i++) {
			kids[i] = (tlink){"", 0, put_raw(&d, want + (m * WIDTH + i) * LEAF, LEAF)};
			sizes[i] = LEAF;
		}
		mids[m] = (tlink){"", 0, put_file(&d, NULL, 0, kids, sizes, WIDTH)};
		msizes[m] = (uint64_t)LEAF * WIDTH;
	}
	root = put_file(&d, NULL, 0, mids, msizes, MID);
	assert_int_equal(export_dag(&res, &d, &root, 4, false, dest, sizeof(dest)), 0);
	check_file(dest, want, sizeof(want));
	assert_int_equal(res.blocks, 1 + MID + MID * WIDTH);
	rm_rf(dest);
	dag_free(&d);
}

static void test_identity_leaf(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid id, root;
	uint64_t sizes[2] = {5, 3};
	tlink kids[2];
	dag d = {0};

	(void)state;
	assert_int_equal(cairn_cid_compute(&id, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY, "hello", 5), 0);
	kids[0] = (tlink){"", 0, id};
	kids[1] = (tlink){"", 0, put_raw(&d, "abc", 3)};
	root = put_file(&d, NULL, 0, kids, sizes, 2);
	assert_int_equal(export_dag(&res, &d, &root, 2, false, dest, sizeof(dest)), 0);
	check_file(dest, "helloabc", 8);
	rm_rf(dest);
	dag_free(&d);
}

typedef struct {
	uint64_t last;
	bool went_back;
} progress_seen;

/* Called from the workers: no cmocka assertion here. */
static void progress_cb(void *payload, uint64_t bytes)
{
	progress_seen *p = payload;

	if (bytes < p->last)
		p->went_back = true;
	p->last = bytes;
}

static void test_progress_and_mem_store(void **state)
{
	static uint8_t want[100000];
	cairn_unixfs_export_options o = {4, false, progress_cb, NULL};
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_store *mem, *empty_backing;
	progress_seen last = {0, false};
	cairn_cid root;
	dag d = {0};
	size_t len;

	(void)state;
	build_tree_file(&d, &root, want, &len);
	/* The memory store is not thread-safe: the exporter locks around get. */
	{
		char car[PATH_MAX];
		dag none = {0};

		tmp_path(car, sizeof(car), "empty.car");
		car_write(car, &none, &root, NULL, 2);
		assert_int_equal(cairn_store_car_open(&empty_backing, car, NULL, NULL), 0);
	}
	assert_int_equal(cairn_store_mem_open(&mem, empty_backing, 1 << 30), 0);
	for (size_t i = 0; i < d.n; i++)
		assert_int_equal(cairn_store_put(mem, &d.b[i].cid, d.b[i].data, d.b[i].len), 0);
	tmp_path(dest, sizeof(dest), "out");
	o.progress_payload = &last;
	assert_int_equal(cairn_unixfs_export(&res, mem, &root, dest, &o), 0);
	check_file(dest, want, len);
	assert_int_equal(last.last, len);
	assert_false(last.went_back);
	rm_rf(dest);
	cairn_store_free(mem);
	cairn_store_free(empty_backing);
	dag_free(&d);
}

/* --------------------------------------------------------- directories */

static void test_directories(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX], p[PATH_MAX + 64], target[256];
	cairn_cid sub, shard, child, root, big;
	uint8_t data[3000];
	tlink l[6];
	dag d = {0};
	ssize_t n;

	(void)state;
	fill(data, sizeof(data), 9);
	{
		uint64_t sz[2] = {1000, 2000};
		tlink k[2] = {{"", 0, put_raw(&d, data, 1000)}, {"", 0, put_raw(&d, data + 1000, 2000)}};

		big = put_file(&d, NULL, 0, k, sz, 2);
	}
	/* sub: a file, an empty directory and a link to ../top.txt. */
	l[0] = (tlink){"big.bin", 0, big};
	l[1] = (tlink){"empty", 0, put_dir(&d, NULL, 0)};
	l[2] = (tlink){"up", 0, put_symlink(&d, "../top.txt")};
	sub = put_dir(&d, l, 3);
	/* A HAMT of fanout 256: a child shard "05" holding two entries. */
	l[0] = (tlink){"0Bdeep one", 0, put_raw(&d, "deep", 4)};
	l[1] = (tlink){"C1deep two", 0, put_raw(&d, "two", 3)};
	child = put_shard(&d, 256, l, 2);
	l[0] = (tlink){"05", 0, child};
	l[1] = (tlink){"7Ahello.txt", 0, put_raw(&d, "hello", 5)};
	l[2] = (tlink){"FFz", 0, put_raw(&d, "", 0)};
	shard = put_shard(&d, 256, l, 3);
	/* The root: names sorted bytewise. */
	l[0] = (tlink){"link", 0, put_symlink(&d, "sub/big.bin")};
	l[1] = (tlink){"sharded", 0, shard};
	l[2] = (tlink){"sub", 0, sub};
	l[3] = (tlink){"top.txt", 0, put_raw(&d, "top\n", 4)};
	l[4] = (tlink){"\xc3\xbc \xe2\x9c\x93", 0, put_raw(&d, "utf8", 4)};
	root = put_dir(&d, l, 5);
	for (unsigned threads = 1; threads <= 3; threads += 2) {
		assert_int_equal(export_dag(&res, &d, &root, threads, false, dest, sizeof(dest)), 0);
		assert_int_equal(res.files, 7);
		assert_int_equal(res.dirs, 4);
		snprintf(p, sizeof(p), "%s/sub/big.bin", dest);
		check_file(p, data, sizeof(data));
		snprintf(p, sizeof(p), "%s/top.txt", dest);
		check_file(p, "top\n", 4);
		snprintf(p, sizeof(p), "%s/sharded/deep one", dest);
		check_file(p, "deep", 4);
		snprintf(p, sizeof(p), "%s/sharded/deep two", dest);
		check_file(p, "two", 3);
		snprintf(p, sizeof(p), "%s/sharded/hello.txt", dest);
		check_file(p, "hello", 5);
		snprintf(p, sizeof(p), "%s/sharded/z", dest);
		check_file(p, "", 0);
		snprintf(p, sizeof(p), "%s/\xc3\xbc \xe2\x9c\x93", dest);
		check_file(p, "utf8", 4);
		snprintf(p, sizeof(p), "%s/sub/empty", dest);
		assert_true(exists(p));
		snprintf(p, sizeof(p), "%s/sub/up", dest);
		n = readlink(p, target, sizeof(target));
		assert_int_equal(n, 10);
		assert_memory_equal(target, "../top.txt", 10);
		snprintf(p, sizeof(p), "%s/link", dest);
		check_file(p, data, sizeof(data)); /* through the link */
		rm_rf(dest);
	}
	dag_free(&d);
}

/* ------------------------------------------------------- hostile names */

static void check_bad_name(const char *name, size_t len, const char *why)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid root, inner;
	tlink l[2];
	dag d = {0};

	/* In a sub-directory, so the message must name "out/inner". */
	l[0] = (tlink){name, len, put_raw(&d, "x", 1)};
	inner = put_dir(&d, l, 1);
	l[0] = (tlink){"inner", 0, inner};
	root = put_dir(&d, l, 1);
	expect_fail(export_dag(&res, &d, &root, 2, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "out/inner: entry", why, (char *)NULL);
	/* Nothing is left behind. */
	assert_false(exists(dest));
	dag_free(&d);
}

static void test_bad_names(void **state)
{
	(void)state;
	check_bad_name("..", 0, "\"..\" is refused");
	check_bad_name(".", 0, "\".\" is refused");
	check_bad_name("", 0, "empty name");
	check_bad_name(NULL, 0, "empty name");
	check_bad_name("a/b", 0, "\"a/b\" is refused: a name cannot hold '/'");
	check_bad_name("../../etc/passwd", 0, "cannot hold '/'");
	check_bad_name("a\0b", 3, "\"a\\x00b\" is refused: a name cannot hold a NUL");
}

static void test_bad_name_in_shard(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid root;
	tlink l[1];
	dag d = {0};

	(void)state;
	l[0] = (tlink){"1F..", 0, put_raw(&d, "x", 1)};
	root = put_shard(&d, 256, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "out: entry \"..\" is refused", (char *)NULL);
	assert_false(exists(dest));
	dag_free(&d);
}

static void test_duplicate_names(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid root;
	tlink l[2];
	dag d = {0};

	(void)state;
	l[0] = (tlink){"a", 0, put_raw(&d, "1", 1)};
	l[1] = (tlink){"a", 0, put_dir(&d, NULL, 0)};
	root = put_dir(&d, l, 2);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "out/a: the directory lists this name twice", (char *)NULL);
	assert_false(exists(dest));
	dag_free(&d);
}

/* ------------------------------------------------------ hostile files */

static void test_bad_sizes(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX], s[CAIRN_CID_MAX_STRING];
	cairn_unixfs_data u;
	uint64_t sizes[2] = {3, 3};
	cairn_cid root, leaf;
	tlink k[2];
	dag d = {0};

	(void)state;
	leaf = put_raw(&d, "abc", 3);
	k[0] = k[1] = (tlink){"", 0, leaf};
	/* Two links, one blocksize. */
	u = udata(CAIRN_UNIXFS_FILE);
	u.has_filesize = true;
	u.filesize = 3;
	u.blocksizes = sizes;
	u.nblocksizes = 1;
	root = put_pb(&d, &u, k, 2);
	cairn_cid_to_string(s, &root);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT, s,
		    "2 links but 1 blocksizes", (char *)NULL);
	assert_false(exists(dest));
	/* filesize says 7, the blocksizes 6. */
	u.nblocksizes = 2;
	u.filesize = 7;
	root = put_pb(&d, &u, k, 2);
	cairn_cid_to_string(s, &root);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT, s,
		    "filesize 7, but Data and blocksizes hold 6 bytes", (char *)NULL);
	/* A raw leaf shorter than its blocksize. */
	sizes[1] = 4;
	u.filesize = 7;
	root = put_pb(&d, &u, k, 2);
	cairn_cid_to_string(s, &leaf);
	expect_fail(export_dag(&res, &d, &root, 2, false, dest, sizeof(dest)), CAIRN_ECORRUPT, s,
		    "raw leaf of 3 bytes, but its parent's blocksizes say 4", (char *)NULL);
	assert_false(exists(dest));
	/* An inner node holding other than its parent says. */
	{
		uint64_t in_sizes[1] = {3}, out_sizes[1] = {5};
		tlink ik[1] = {{"", 0, leaf}};
		cairn_cid inner = put_file(&d, NULL, 0, ik, in_sizes, 1);
		tlink ok[1] = {{"", 0, inner}};

		root = put_file(&d, NULL, 0, ok, out_sizes, 1);
		cairn_cid_to_string(s, &inner);
		expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)),
			    CAIRN_ECORRUPT, s, "holds 3 bytes, but its parent's blocksizes say 5",
			    (char *)NULL);
	}
	/* Blocksizes past 2^63. */
	{
		uint64_t huge[2] = {1ull << 62, 1ull << 62};

		u.filesize = 0;
		u.has_filesize = false;
		u.blocksizes = huge;
		root = put_pb(&d, &u, k, 2);
		expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)),
			    CAIRN_ECORRUPT, "more than 2^63", (char *)NULL);
	}
	assert_false(exists(dest));
	dag_free(&d);
}

static void test_wrong_types(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	uint64_t sizes[1] = {0};
	cairn_cid root, cbor;
	cairn_unixfs_data u;
	tlink k[1];
	dag d = {0};

	(void)state;
	/* A directory inside a file. */
	k[0] = (tlink){"", 0, put_dir(&d, NULL, 0)};
	root = put_file(&d, NULL, 0, k, sizes, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "a file's DAG holds a node of UnixFS type 1", (char *)NULL);
	/* A dag-cbor block as an entry. */
	cbor = dag_put(&d, 1, CAIRN_CODEC_DAG_CBOR, "\xa0", 1);
	k[0] = (tlink){"x", 0, cbor};
	root = put_dir(&d, k, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_EUNSUPPORTED,
		    "out/x: block", "codec 0x71", (char *)NULL);
	/* Metadata. */
	u = udata(CAIRN_UNIXFS_METADATA);
	root = put_pb(&d, &u, NULL, 0);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_EUNSUPPORTED,
		    "Metadata", (char *)NULL);
	/* A symbolic link as the root. */
	root = put_symlink(&d, "x");
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_EUNSUPPORTED,
		    "the root is a symbolic link", (char *)NULL);
	/* A dag-pb node without Data. */
	{
		static const uint8_t empty_pb[1] = {0};
		cairn_cid nodata = dag_put(&d, 1, CAIRN_CODEC_DAG_PB, empty_pb, 0);

		expect_fail(export_dag(&res, &d, &nodata, 1, false, dest, sizeof(dest)),
			    CAIRN_ECORRUPT, "without Data", (char *)NULL);
	}
	/* Data that is not a UnixFS message. */
	{
		static const uint8_t junk_pb[] = {0x0a, 0x02, 0xff, 0xff};
		cairn_cid junk = dag_put(&d, 1, CAIRN_CODEC_DAG_PB, junk_pb, sizeof(junk_pb));

		expect_fail(export_dag(&res, &d, &junk, 1, false, dest, sizeof(dest)),
			    CAIRN_ECORRUPT, "unixfs data", (char *)NULL);
	}
	assert_false(exists(dest));
	dag_free(&d);
}

/* A block changed in the CAR after it was written: the exporter hashes. */
static void test_bad_hash(void **state)
{
	cairn_unixfs_export_result res;
	cairn_unixfs_export_options o = {2, false, NULL, NULL};
	cairn_car_options co = CAIRN_CAR_OPTIONS_INIT;
	char car[PATH_MAX], dest[PATH_MAX];
	static const char marker[] = "the block that will be changed";
	cairn_buf b = CAIRN_BUF_INIT;
	uint64_t sizes[2] = {sizeof(marker), 4};
	cairn_cid root, leaf;
	cairn_store *s;
	tlink k[2];
	dag d = {0};
	uint8_t *at;
	int fd;

	(void)state;
	leaf = put_raw(&d, marker, sizeof(marker));
	k[0] = (tlink){"", 0, leaf};
	k[1] = (tlink){"", 0, put_raw(&d, "tail", 4)};
	root = put_file(&d, NULL, 0, k, sizes, 2);
	tmp_path(car, sizeof(car), "bad.car");
	tmp_path(dest, sizeof(dest), "out");
	for (unsigned version = 1; version <= 2; version++) {
		car_write(car, &d, &root, NULL, version);
		assert_int_equal(cairn_file_read_all(&b, car, 1 << 20), 0);
		at = memmem(b.data, b.len, marker, sizeof(marker));
		assert_non_null(at);
		at[4] ^= 0x20;
		fd = open(car, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(cairn_file_pwrite_full(fd, b.data, b.len, 0, car), 0);
		close(fd);
		cairn_buf_free(&b);
		co.trusted = true;
		assert_int_equal(cairn_store_car_open(&s, car, NULL, &co), 0);
		{
			char str[CAIRN_CID_MAX_STRING];

			cairn_cid_to_string(str, &leaf);
			expect_fail(cairn_unixfs_export(&res, s, &root, dest, &o), CAIRN_EMISMATCH,
				    "out: block does not hash to its CID", str, (char *)NULL);
		}
		cairn_store_free(s);
		assert_false(exists(dest));
	}
	dag_free(&d);
}

static void test_missing_block(void **state)
{
	cairn_unixfs_export_result res;
	cairn_unixfs_export_options o = {1, false, NULL, NULL};
	char car[PATH_MAX], dest[PATH_MAX], str[CAIRN_CID_MAX_STRING];
	cairn_cid root, gone;
	cairn_store *s;
	tlink l[2];
	dag d = {0};

	(void)state;
	gone = put_raw(&d, "gone", 4);
	l[0] = (tlink){"a", 0, put_raw(&d, "here", 4)};
	l[1] = (tlink){"b", 0, gone};
	root = put_dir(&d, l, 2);
	tmp_path(car, sizeof(car), "missing.car");
	tmp_path(dest, sizeof(dest), "out");
	car_write(car, &d, &root, &gone, 2);
	assert_int_equal(cairn_store_car_open(&s, car, NULL, NULL), 0);
	cairn_cid_to_string(str, &gone);
	expect_fail(cairn_unixfs_export(&res, s, &root, dest, &o), CAIRN_ENOTFOUND, "out/b:", str,
		    "is not in this CAR", (char *)NULL);
	assert_false(exists(dest));
	/* The root itself missing. */
	expect_fail(cairn_unixfs_export(&res, s, &gone, dest, &o), CAIRN_ENOTFOUND, str,
		    (char *)NULL);
	assert_false(exists(dest));
	cairn_store_free(s);
	dag_free(&d);
}

static void test_deep_file(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	uint64_t sizes[1] = {1};
	cairn_cid cur;
	dag d = {0};

	(void)state;
	cur = put_raw(&d, "x", 1);
	for (int i = 0; i < 64; i++) {
		tlink k[1] = {{"", 0, cur}};

		cur = put_file(&d, NULL, 0, k, sizes, 1);
	}
	/* 64 levels below the root node: the limit, accepted. */
	assert_int_equal(export_dag(&res, &d, &cur, 2, false, dest, sizeof(dest)), 0);
	check_file(dest, "x", 1);
	rm_rf(dest);
	{
		tlink k[1] = {{"", 0, cur}};

		cur = put_file(&d, NULL, 0, k, sizes, 1);
	}
	expect_fail(export_dag(&res, &d, &cur, 2, false, dest, sizeof(dest)), CAIRN_ETOOBIG,
		    "more than 64 levels deep", (char *)NULL);
	assert_false(exists(dest));
	dag_free(&d);
}

static void test_deep_dirs(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid cur;
	dag d = {0};

	(void)state;
	cur = put_dir(&d, NULL, 0);
	for (int i = 0; i < 257; i++) {
		tlink l[1] = {{"d", 0, cur}};

		cur = put_dir(&d, l, 1);
	}
	expect_fail(export_dag(&res, &d, &cur, 2, false, dest, sizeof(dest)), CAIRN_ETOOBIG,
		    "nested more than 256 deep", (char *)NULL);
	assert_false(exists(dest));
	dag_free(&d);
}

/* ------------------------------------------------------------- shards */

static void test_bad_shards(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_unixfs_data u;
	cairn_cid root, x;
	tlink l[2];
	dag d = {0};

	(void)state;
	x = put_raw(&d, "x", 1);
	/* Not hex. */
	l[0] = (tlink){"ZZname", 0, x};
	root = put_shard(&d, 256, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "HAMT link \"ZZname\" does not start with a 2-digit hex bucket", (char *)NULL);
	/* Too short. */
	l[0] = (tlink){"A", 0, x};
	root = put_shard(&d, 256, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "HAMT link \"A\"", (char *)NULL);
	/* A bucket past the fanout (128: 00..7F). */
	l[0] = (tlink){"90name", 0, x};
	root = put_shard(&d, 128, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "below the fanout 128", (char *)NULL);
	/* Fanout not a power of two. */
	l[0] = (tlink){"01name", 0, x};
	root = put_shard(&d, 100, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "HAMT fanout 100", (char *)NULL);
	/* Another hash. */
	u = udata(CAIRN_UNIXFS_HAMT_SHARD);
	u.has_hash_type = true;
	u.hash_type = 0x12;
	u.has_fanout = true;
	u.fanout = 256;
	root = put_pb(&d, &u, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_EUNSUPPORTED,
		    "HAMT hash type 0x12", (char *)NULL);
	/* A child shard of another fanout. */
	l[0] = (tlink){"01", 0, put_shard(&d, 16, NULL, 0)};
	root = put_shard(&d, 256, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "HAMT fanout 16 below a shard of fanout 256", (char *)NULL);
	/* A child "shard" that is a directory. */
	l[0] = (tlink){"01", 0, put_dir(&d, NULL, 0)};
	root = put_shard(&d, 256, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "a HAMT shard links to a node of UnixFS type 1", (char *)NULL);
	/* A raw block as a child shard. */
	l[0] = (tlink){"01", 0, x};
	root = put_shard(&d, 256, l, 1);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "links to a block of codec 0x55", (char *)NULL);
	assert_false(exists(dest));
	/* Shards 65 levels deep. */
	root = put_shard(&d, 16, NULL, 0);
	for (int i = 0; i < 65; i++) {
		l[0] = (tlink){"3", 0, root};
		root = put_shard(&d, 16, l, 1);
	}
	expect_fail(export_dag(&res, &d, &root, 2, false, dest, sizeof(dest)), CAIRN_ETOOBIG,
		    "HAMT is more than 64 levels deep", (char *)NULL);
	assert_false(exists(dest));
	dag_free(&d);
}

/* ------------------------------------------------------ symbolic links */

static void check_symlink(const char *target, bool in_sub, const char *why)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX];
	cairn_cid root;
	tlink l[1];
	dag d = {0};
	int rc;

	l[0] = (tlink){"ln", 0, put_symlink(&d, target)};
	root = put_dir(&d, l, 1);
	if (in_sub) {
		l[0] = (tlink){"sub", 0, root};
		root = put_dir(&d, l, 1);
	}
	rc = export_dag(&res, &d, &root, 1, false, dest, sizeof(dest));
	if (why) {
		expect_fail(rc, CAIRN_EUNSUPPORTED, "symbolic link to", why, (char *)NULL);
		assert_false(exists(dest));
	} else {
		assert_int_equal(rc, 0);
		rm_rf(dest);
	}
	dag_free(&d);
}

static void test_symlinks(void **state)
{
	(void)state;
	check_symlink("file", false, NULL);
	check_symlink("./a/./b/", false, NULL);
	check_symlink("../x", true, NULL);
	check_symlink("../../x", true, "leads out of the output directory");
	check_symlink("../x", false, "leads out of the output directory");
	check_symlink("/etc/passwd", true, "is absolute");
	check_symlink("a/../../x", true, "has \"..\" after a name");
	check_symlink("a/../b", false, "has \"..\" after a name");
	check_symlink("", false, "is empty");
}

/* --------------------------------------------------------- overwriting */

static void test_overwrite(void **state)
{
	cairn_unixfs_export_result res;
	char dest[PATH_MAX], p[PATH_MAX + 64], outside[PATH_MAX];
	cairn_cid root, file_root;
	tlink l[2];
	dag d = {0};
	int fd;

	(void)state;
	l[0] = (tlink){"a.txt", 0, put_raw(&d, "new", 3)};
	l[1] = (tlink){"sub", 0, put_dir(&d, (tlink[]){{"b", 0, put_raw(&d, "bb", 2)}}, 1)};
	root = put_dir(&d, l, 2);
	file_root = put_raw(&d, "file", 4);
	tmp_path(dest, sizeof(dest), "out");
	tmp_path(outside, sizeof(outside), "outside");
	/* An existing directory with an old file, an unrelated file, and
	 * "sub" as a symbolic link to a directory elsewhere. */
	rm_rf(dest);
	assert_int_equal(mkdir(dest, 0777), 0);
	assert_int_equal(mkdir(outside, 0777), 0);
	snprintf(p, sizeof(p), "%s/a.txt", dest);
	assert_int_equal(cairn_file_replace_atomic(p, "old content", 11, 0644), 0);
	snprintf(p, sizeof(p), "%s/keep", dest);
	assert_int_equal(cairn_file_replace_atomic(p, "keep", 4, 0644), 0);
	snprintf(p, sizeof(p), "%s/sub", dest);
	assert_int_equal(symlink(outside, p), 0);

	/* Refused without overwrite, and left alone. */
	{
		char car[PATH_MAX];
		cairn_store *s;
		cairn_unixfs_export_options o = {1, false, NULL, NULL};

		tmp_path(car, sizeof(car), "ow.car");
		car_write(car, &d, &root, NULL, 2);
		assert_int_equal(cairn_store_car_open(&s, car, NULL, NULL), 0);
		expect_fail(cairn_unixfs_export(&res, s, &root, dest, &o), CAIRN_EEXISTS,
			    "out: already exists", (char *)NULL);
		snprintf(p, sizeof(p), "%s/keep", dest);
		assert_true(exists(p));
		/* Merged with overwrite: replaced, kept, and the link replaced
		 * by a directory, not followed. */
		o.overwrite = true;
		o.threads = 2;
		assert_int_equal(cairn_unixfs_export(&res, s, &root, dest, &o), 0);
		snprintf(p, sizeof(p), "%s/a.txt", dest);
		check_file(p, "new", 3);
		snprintf(p, sizeof(p), "%s/keep", dest);
		check_file(p, "keep", 4);
		snprintf(p, sizeof(p), "%s/sub/b", dest);
		check_file(p, "bb", 2);
		snprintf(p, sizeof(p), "%s/b", outside);
		assert_false(exists(p));
		/* A file root over a directory: refused even so. */
		expect_fail(cairn_unixfs_export(&res, s, &file_root, dest, &o), CAIRN_EEXISTS,
			    "exists and is a directory", (char *)NULL);
		snprintf(p, sizeof(p), "%s/keep", dest);
		assert_true(exists(p));
		/* A file root over a file, and over a symbolic link, which is
		 * replaced rather than followed. */
		rm_rf(dest);
		fd = open(dest, O_WRONLY | O_CREAT, 0644);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(cairn_unixfs_export(&res, s, &file_root, dest, &o), 0);
		check_file(dest, "file", 4);
		rm_rf(dest);
		snprintf(p, sizeof(p), "%s/target", outside);
		assert_int_equal(symlink(p, dest), 0);
		assert_int_equal(cairn_unixfs_export(&res, s, &file_root, dest, &o), 0);
		check_file(dest, "file", 4);
		assert_false(exists(p));
		/* A directory root over a file. */
		assert_int_equal(cairn_unixfs_export(&res, s, &root, dest, &o), 0);
		snprintf(p, sizeof(p), "%s/sub/b", dest);
		check_file(p, "bb", 2);
		/* A failure while merging leaves the existing directory. */
		cairn_store_free(s);
	}
	rm_rf(dest);
	rm_rf(outside);
	dag_free(&d);
}

/* ------------------------------------------------------- out of memory */

static void test_alloc_failures(void **state)
{
	static uint8_t want[100000];
	cairn_unixfs_export_options o = {1, false, NULL, NULL};
	cairn_unixfs_export_result res;
	char car[PATH_MAX], dest[PATH_MAX];
	cairn_cid root, file, dir;
	cairn_store *s;
	tlink l[2];
	dag d = {0};
	size_t len;
	int rc = -1;

	(void)state;
	build_tree_file(&d, &file, want, &len);
	l[0] = (tlink){"f", 0, file};
	l[1] = (tlink){"g", 0, put_raw(&d, "g", 1)};
	dir = put_dir(&d, l, 2);
	l[0] = (tlink){"02d", 0, dir};
	root = put_shard(&d, 256, l, 1);
	tmp_path(car, sizeof(car), "oom.car");
	tmp_path(dest, sizeof(dest), "out");
	car_write(car, &d, &root, NULL, 2);
	assert_int_equal(cairn_store_car_open(&s, car, NULL, NULL), 0);
	for (unsigned threads = 1; threads <= 2; threads++) {
		o.threads = threads;
		for (long n = 1; n < 1000; n++) {
			cairn_alloc_fail_after(n, false);
			rc = cairn_unixfs_export(&res, s, &root, dest, &o);
			cairn_alloc_fail_after(-1, false);
			if (rc == 0)
				break;
			assert_int_equal(rc, CAIRN_ENOMEM);
			assert_false(exists(dest));
		}
		assert_int_equal(rc, 0);
		{
			char p[PATH_MAX + 16];

			snprintf(p, sizeof(p), "%s/d/f", dest);
			check_file(p, want, len);
		}
		rm_rf(dest);
	}
	cairn_store_free(s);
	dag_free(&d);
}

/* Defaults (NULL options: one thread per core), a lowercase bucket prefix,
 * a link replacing a file when merging, and a destination that cannot be
 * made. */
static void test_misc(void **state)
{
	cairn_unixfs_export_result res;
	char car[PATH_MAX], dest[PATH_MAX], p[PATH_MAX + 16], target[16];
	cairn_cid root, raw;
	cairn_store *s;
	tlink l[2];
	dag d = {0};

	(void)state;
	raw = put_raw(&d, "q\"uote", 6);
	l[0] = (tlink){"0bq\"uote", 0, raw};
	l[1] = (tlink){"ff", 0, put_shard(&d, 256, (tlink[]){{"a0ln", 0, put_symlink(&d, "q\"uote")}}, 1)};
	root = put_shard(&d, 256, l, 2);
	tmp_path(car, sizeof(car), "misc.car");
	tmp_path(dest, sizeof(dest), "out");
	car_write(car, &d, &root, NULL, 1);
	assert_int_equal(cairn_store_car_open(&s, car, NULL, NULL), 0);
	assert_int_equal(cairn_unixfs_export(&res, s, &root, dest, NULL), 0);
	snprintf(p, sizeof(p), "%s/q\"uote", dest);
	check_file(p, "q\"uote", 6);
	/* Merging: the link "ln" replaces a file of that name. */
	{
		cairn_unixfs_export_options o = {0, true, NULL, NULL};

		snprintf(p, sizeof(p), "%s/ln", dest);
		assert_int_equal(unlink(p), 0);
		assert_int_equal(cairn_file_replace_atomic(p, "file", 4, 0644), 0);
		assert_int_equal(cairn_unixfs_export(&res, s, &root, dest, &o), 0);
		assert_int_equal(readlink(p, target, sizeof(target)), 6);
	}
	rm_rf(dest);
	/* A destination whose parent does not exist. */
	snprintf(p, sizeof(p), "%s/no/such/dir", tmpdir);
	expect_fail(cairn_unixfs_export(&res, s, &root, p, NULL), CAIRN_EIO,
		    "no/such/dir: cannot create the directory", (char *)NULL);
	expect_fail(cairn_unixfs_export(&res, s, &raw, p, NULL), CAIRN_EIO,
		    "no/such/dir: cannot create", (char *)NULL);
	/* A name with a quote is escaped in messages. */
	l[0] = (tlink){"a\"/b", 0, raw};
	root = put_dir(&d, l, 1);
	cairn_store_free(s);
	expect_fail(export_dag(&res, &d, &root, 1, false, dest, sizeof(dest)), CAIRN_ECORRUPT,
		    "entry \"a\\\"/b\" is refused", (char *)NULL);
	dag_free(&d);
}

static void test_bad_args(void **state)
{
	cairn_unixfs_export_result res;
	cairn_cid root;

	(void)state;
	assert_int_equal(cairn_cid_compute(&root, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, "", 0), 0);
	assert_int_equal(cairn_unixfs_export(&res, NULL, &root, "x", NULL), CAIRN_EINVAL);
}

/* ---------------------------------------------------------------- main */

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-export-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_root),
		cmocka_unit_test(test_file_offsets),
		cmocka_unit_test(test_file_wide),
		cmocka_unit_test(test_identity_leaf),
		cmocka_unit_test(test_progress_and_mem_store),
		cmocka_unit_test(test_directories),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_bad_name_in_shard),
		cmocka_unit_test(test_duplicate_names),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_bad_hash),
		cmocka_unit_test(test_missing_block),
		cmocka_unit_test(test_deep_file),
		cmocka_unit_test(test_deep_dirs),
		cmocka_unit_test(test_bad_shards),
		cmocka_unit_test(test_symlinks),
		cmocka_unit_test(test_overwrite),
		cmocka_unit_test(test_alloc_failures),
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
