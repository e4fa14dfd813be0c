/* test_reader.c: unit tests for the CAR reader against every fixture and its
 * expected/ tables: sections, headers, corrupt files, bounds, trust, seek, cuts, verify, OOM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"

static char cars[PATH_MAX];   /* $CAIRN_FIXTURES/car */
static char tmpdir[PATH_MAX]; /* removed with everything in it at the end */
/* Set while a test reads a copy with a changed block: hash_ok no longer holds. */
static bool tampered;

/* ---------------------------------------------------------------- helpers */

/* One line of expected/<car>.sections.tsv. */
typedef struct {
	uint64_t rel, abs, len, block_len;
	uint32_t cid_len;
	char hash_ok;
	char cid[CAIRN_CID_MAX_STRING];
} row;

typedef struct {
	row *rows;
	size_t n;
} table;

static void load_table(table *t, const char *car)
{
	char path[PATH_MAX + 64], *line, *save = NULL;
	cairn_buf b = CAIRN_BUF_INIT;
	size_t cap = 0;

	snprintf(path, sizeof(path), "%s/expected/%s.sections.tsv", cars, car);
	assert_int_equal(cairn_file_read_all(&b, path, 1 << 24), 0);
	t->rows = NULL;
	t->n = 0;
	for (line = strtok_r((char *)b.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		row *w;

		if (line[0] == '#' || !line[0])
			continue;
		if (t->n == cap) {
			cap = cap ? cap * 2 : 64;
			t->rows = realloc(t->rows, cap * sizeof(*t->rows));
			assert_non_null(t->rows);
		}
		w = &t->rows[t->n++];
		if (sscanf(line, "%" SCNu64 "\t%" SCNu64 "\t%" SCNu64 "\t%" SCNu32 "\t%" SCNu64 "\t%c\t%320s",
			   &w->rel, &w->abs, &w->len, &w->cid_len, &w->block_len, &w->hash_ok, w->cid) != 7)
			fail_msg("%s: bad line: %s", path, line);
		assert_int_equal(w->len, (uint64_t)w->cid_len + w->block_len);
	}
	cairn_buf_free(&b);
}

static void free_table(table *t)
{
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
}

static void fixture_path(char *out, size_t n, const char *car)
{
	snprintf(out, n, "%s/%s", cars, car);
}

static void load_file(cairn_buf *out, const char *path)
{
	cairn_buf_clear(out);
	assert_int_equal(cairn_file_read_all(out, path, 1 << 24), 0);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(cairn_file_write_full(fd, p, n, path), 0);
	assert_int_equal(close(fd), 0);
}

static void tmp_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static void from_hex(cairn_buf *out, const char *hex)
{
	cairn_buf clean = CAIRN_BUF_INIT;

	for (const char *p = hex; *p; p++)
		if (*p != ' ')
			assert_int_equal(cairn_buf_putc(&clean, (uint8_t)*p), 0);
	cairn_buf_clear(out);
	assert_int_equal(cairn_base_decode(out, CAIRN_BASE16, (const char *)clean.data, clean.len), 0);
	cairn_buf_free(&clean);
}

/* The last message names `file` and, when byte >= 0, "byte <byte>" exactly
 * (not a longer number); with byte < 0 any "byte <digits>" will do. */
static void assert_msg(const char *file, long long byte)
{
	const char *msg = cairn_error_last(), *p;
	char want[64];
	bool found = false;

	if (!strstr(msg, file))
		fail_msg("message does not name %s: \"%s\"", file, msg);
	if (byte >= 0)
		snprintf(want, sizeof(want), "byte %lld", byte);
	else
		snprintf(want, sizeof(want), "byte ");
	for (p = strstr(msg, want); p && !found; p = strstr(p + 1, want)) {
		const char *after = p + strlen(want);

		found = byte >= 0 ? !(*after >= '0' && *after <= '9') : (*after >= '0' && *after <= '9');
	}
	if (!found)
		fail_msg("message does not name %s: \"%s\"", byte >= 0 ? want : "a byte offset", msg);
}

/* Checks one section against its row of the table and the file's bytes. */
static void check_section(const cairn_car_section *s, const row *w, const cairn_buf *file,
			  bool want_block, const char *car, size_t i)
{
	char str[CAIRN_CID_MAX_STRING];
	uint64_t block_at = w->abs + cairn_varint_size(w->len) + w->cid_len;

	if (s->offset != w->rel || s->file_offset != w->abs || s->length != w->len ||
	    s->cid_len != w->cid_len || s->block_len != w->block_len || s->block_offset != block_at)
		fail_msg("%s section %zu: got rel %" PRIu64 " abs %" PRIu64 " len %" PRIu64
			 " cid_len %" PRIu32 " block_len %" PRIu64 " block_offset %" PRIu64
			 ", want %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRIu64 " %" PRIu64,
			 car, i, s->offset, s->file_offset, s->length, s->cid_len, s->block_len,
			 s->block_offset, w->rel, w->abs, w->len, w->cid_len, w->block_len, block_at);
	assert_true(cairn_cid_to_string(str, &s->cid) > 0);
	if (strcmp(str, w->cid))
		fail_msg("%s section %zu: CID %s, want %s", car, i, str, w->cid);
	assert_int_equal(s->cid.len, w->cid_len);
	assert_true(block_at + w->block_len <= file->len);
	assert_memory_equal(s->cid.bytes, file->data + w->abs + cairn_varint_size(w->len), w->cid_len);
	if (want_block) {
		assert_non_null(s->block);
		if (w->block_len)
			assert_memory_equal(s->block, file->data + block_at, w->block_len);
		/* the tsv's hash_ok column, recomputed on what was read */
		if (!tampered)
			assert_int_equal(cairn_cid_verify(&s->cid, s->block, (size_t)s->block_len),
					 w->hash_ok == 'y' ? 0 : CAIRN_EMISMATCH);
	} else {
		assert_null(s->block);
	}
}

/* Reads sections until next() stops, checking each against rows[from..];
 * returns next()'s last result and counts the sections. */
static int walk(cairn_car_reader *r, const table *t, size_t from, const cairn_buf *file,
		bool want_block, const char *car, size_t *count)
{
	cairn_car_section s;
	size_t i = from;
	int rc;

	while ((rc = cairn_car_reader_next(r, &s, want_block)) == 1) {
		if (i >= t->n)
			fail_msg("%s: section %zu is past the %zu of the table", car, i, t->n);
		check_section(&s, &t->rows[i], file, want_block, car, i);
		i++;
	}
	*count = i - from;
	return rc;
}

static uint64_t section_end(const row *w)
{
	return w->abs + cairn_varint_size(w->len) + w->len;
}

/* ---------------------------------------------------------------- fixtures
 *
 * Header values from expected/summary.json: "version", "roots",
 * "carv1_header_len_incl_varint", "v2" {data_offset, data_size,
 * index_offset} (characteristics are all zero there), "blocks" and
 * "stopped_at" (where the walk ends, absolute).
 */
typedef struct {
	const char *name;
	unsigned version;
	uint64_t header_len;
	const char *roots[3];
	uint64_t data_offset, data_size, index_offset;
	uint64_t blocks;
	uint64_t stopped_at;
	bool zero_eof; /* needs zero_length_as_eof */
} valid_car;

#define SAMPLE_ROOT "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy"

static const valid_car valid[] = {
	{"sample-v1.car", 1, 61, {SAMPLE_ROOT}, 0, 0, 0, 1049, 479907, false},
	{"sample-v1-noidentity.car", 1, 61, {SAMPLE_ROOT}, 0, 0, 0, 1043, 479743, false},
	{"sample-v1-with-zero-len-section.car", 1, 61, {SAMPLE_ROOT}, 0, 0, 0, 1049, 479907, true},
	{"sample-v1-with-zero-len-section2.car", 1, 61,
	 {"bafykbzaceapvx4wxbe3bfc5neit43wl22pruy2ysk7wv763iuyyxcffj3te56"}, 0, 0, 0, 20, 20819, true},
	{"carv1-basic.car", 1, 100,
	 {"bafyreihyrpefhacm6kkp4ql6j6udakdit7g3dmkzfriqfykhjw6cad5lrm",
	  "bafyreidj5idub6mapiupjwjsyyxhyhedxycv4vihfsicm2vt46o7morwlm"}, 0, 0, 0, 8, 715, false},
	{"simple-unixfs.car", 1, 57, {"QmPLPpnptHc1DMhJAWNYMTqBTqqRQNy5WsY7F9pZgsBfMT"}, 0, 0, 0, 22, 1933,
	 false},
	{"simple-unixfs-missing-blocks.car", 1, 57, {"QmPLPpnptHc1DMhJAWNYMTqBTqqRQNy5WsY7F9pZgsBfMT"}, 0, 0,
	 0, 17, 1620, false},
	{"wikipedia-cryptographic-hash-function.car", 1, 59,
	 {"bafybeiaysi4s6lnjev27ln5icwm6tueaw2vdykrtjkwiphwekaywqhcjze"}, 0, 0, 0, 5, 161731, false},
	{"sample-wrapped-v2.car", 2, 61, {SAMPLE_ROOT}, 51, 479907, 479958, 1049, 479958, false},
	{"sample-v2-indexless.car", 2, 61, {SAMPLE_ROOT}, 51, 479907, 0, 1049, 479958, false},
	{"sample-rw-bs-v2.car", 2, 142,
	 {"bafkreifuosuzujyf4i6psbneqtwg2fhplc2wxptc5euspa2gn3bwhnihfu",
	  "bafkreifc4hca3inognou377hfhvu2xfchn2ltzi7yu27jkaeujqqqdbjju",
	  "bafkreig5lvr4l6b4fr3un4xvzeyt3scevgsqjgrhlnwxw2unwbn5ro276u"}, 1464, 273, 1737, 3, 1737, false},
	{"sample-unixfs-v2.car", 2, 59, {"bafybeiakgrehdxxgy5kca72znt6jllrj2sqkehtqeojfuxlbeuqg3vfkwq"}, 51,
	 284, 335, 3, 335, false},
	{"carv2-basic.car", 2, 57, {"QmfEoLyB5NndqeKieExd1rtJzTduQUPEV8TwAYcUiy3H5Z"}, 51, 448, 499, 5, 499,
	 false},
};
#define NVALID (sizeof(valid) / sizeof(valid[0]))

/* The negative fixtures: what opening or walking them must give (cairn's
 * codes for the defects SOURCES.md names; offsets from summary.json). */
typedef struct {
	const char *name;
	bool open_fails;
	int code;
	long long byte;       /* the offset the message names; -1: any */
	size_t good;          /* sections read (and checked) before the failure */
	const char *text;     /* also in the message, or NULL */
} corrupt_car;

static const corrupt_car corrupt[] = {
	/* varint e0e0e0e0a706 = 216830324832 > 32 MiB */
	{"badheaderlength.car", true, CAIRN_ETOOBIG, 0, 0, NULL},
	/* header {roots:[],version:1} (18 B) then the same varint as a section length */
	{"badsectionlength.car", false, CAIRN_ETOOBIG, 18, 0, NULL},
	/* header length 18, only 15 bytes follow */
	{"sample-corrupt-pragma.car", true, CAIRN_ECORRUPT, 0, 0, NULL},
	/* data_offset 0xfffffffffffffaae */
	{"sample-v2-corrupt-data-and-index.car", true, CAIRN_ECORRUPT, 27, 0, NULL},
	/* the 1049th section (len 387 at 479518) is cut 13 bytes short */
	{"sample-v1-tailing-corrupt-section.car", false, CAIRN_ECORRUPT, 479518, 1048, NULL},
	/* zero padding without zero_length_as_eof */
	{"sample-v1-with-zero-len-section.car", false, CAIRN_ECORRUPT, 479907, 1049, NULL},
	{"sample-v1-with-zero-len-section2.car", false, CAIRN_ECORRUPT, 20819, 20, NULL},
	/* {version: 42}: go says "invalid car version: 42" */
	{"sample-rootless-v42.car", true, CAIRN_EUNSUPPORTED, -1, 0, "invalid car version: 42"},
};
#define NCORRUPT (sizeof(corrupt) / sizeof(corrupt[0]))

static const valid_car *find_valid(const char *name)
{
	for (size_t i = 0; i < NVALID; i++)
		if (!strcmp(valid[i].name, name))
			return &valid[i];
	return NULL;
}

static const corrupt_car *find_corrupt(const char *name)
{
	for (size_t i = 0; i < NCORRUPT; i++)
		if (!strcmp(corrupt[i].name, name))
			return &corrupt[i];
	return NULL;
}

static void check_headers(cairn_car_reader *r, const valid_car *v, uint64_t file_size)
{
	const cairn_car_v2_header *h = cairn_car_reader_v2_header(r);
	const cairn_cid *roots = cairn_car_reader_roots(r);
	size_t nroots = 0;

	while (nroots < 3 && v->roots[nroots])
		nroots++;
	assert_int_equal(cairn_car_reader_version(r), v->version);
	assert_int_equal(cairn_car_reader_header_len(r), v->header_len);
	assert_int_equal(cairn_car_reader_root_count(r), nroots);
	for (size_t i = 0; i < nroots; i++) {
		char s[CAIRN_CID_MAX_STRING];
		cairn_cid want;

		assert_true(cairn_cid_to_string(s, &roots[i]) > 0);
		assert_string_equal(s, v->roots[i]);
		assert_int_equal(cairn_cid_parse(&want, v->roots[i], strlen(v->roots[i])), 0);
		assert_true(cairn_cid_equal(&want, &roots[i]));
	}
	if (v->version == 1) {
		assert_null(h);
		assert_int_equal(cairn_car_reader_data_offset(r), 0);
		assert_int_equal(cairn_car_reader_data_end(r), file_size);
		return;
	}
	assert_non_null(h);
	for (int i = 0; i < 16; i++)
		assert_int_equal(h->characteristics[i], 0);
	assert_false(cairn_car_v2_fully_indexed(h));
	assert_int_equal(h->data_offset, v->data_offset);
	assert_int_equal(h->data_size, v->data_size);
	assert_int_equal(h->index_offset, v->index_offset);
	assert_int_equal(cairn_car_reader_data_offset(r), v->data_offset);
	assert_int_equal(cairn_car_reader_data_end(r), v->data_offset + v->data_size);
}

/* ------------------------------------------------------------------ tests */

/* Every .car in the fixture folder is one the tests below know. */
static void test_every_fixture_known(void **state)
{
	DIR *d = opendir(cars);
	struct dirent *e;
	unsigned n = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (len < 4 || strcmp(e->d_name + len - 4, ".car"))
			continue;
		if (!find_valid(e->d_name) && !find_corrupt(e->d_name))
			fail_msg("fixture %s is not covered by test_reader.c", e->d_name);
		n++;
	}
	closedir(d);
	assert_int_equal(n, 19);
}

/* Every valid fixture walked twice (with and without the blocks): every
 * section as its table says, headers as summary.json says. */
static void test_valid_fixtures(void **state)
{
	cairn_buf file = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < NVALID; k++) {
		const valid_car *v = &valid[k];
		cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
		char path[PATH_MAX + 64];
		table t;

		fixture_path(path, sizeof(path), v->name);
		load_file(&file, path);
		load_table(&t, v->name);
		assert_int_equal(t.n, v->blocks);
		assert_int_equal(section_end(&t.rows[t.n - 1]), v->stopped_at);
		opts.zero_length_as_eof = v->zero_eof;
		for (int pass = 0; pass < 3; pass++) {
			cairn_car_reader *r = NULL;
			size_t count;

			/* pass 0: blocks, hashed; 1: no blocks, hashed; 2: no blocks, trusted */
			opts.trusted = pass == 2;
			if (cairn_car_reader_open(&r, path, &opts))
				fail_msg("%s: %s", v->name, cairn_error_last());
			check_headers(r, v, file.len);
			assert_int_equal(walk(r, &t, 0, &file, pass == 0, v->name, &count), 0);
			assert_int_equal(count, t.n);
			/* the end stays the end */
			{
				cairn_car_section s;
				assert_int_equal(cairn_car_reader_next(r, &s, true), 0);
			}
			cairn_car_reader_free(r);
		}
		free_table(&t);
	}
	cairn_buf_free(&file);
}

static void test_corrupt_fixtures(void **state)
{
	cairn_buf file = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < NCORRUPT; k++) {
		const corrupt_car *c = &corrupt[k];
		char path[PATH_MAX + 64];
		cairn_car_reader *r = (cairn_car_reader *)&file; /* must come back NULL */
		int rc;

		fixture_path(path, sizeof(path), c->name);
		load_file(&file, path);
		rc = cairn_car_reader_open(&r, path, NULL);
		if (c->open_fails) {
			if (rc != c->code)
				fail_msg("%s: open gave %d (%s), want %d", c->name, rc, cairn_error_last(),
					 c->code);
			assert_null(r);
		} else {
			table t = {NULL, 0};
			size_t count;

			if (rc)
				fail_msg("%s: %s", c->name, cairn_error_last());
			if (c->good)
				load_table(&t, c->name);
			rc = walk(r, &t, 0, &file, true, c->name, &count);
			if (rc != c->code)
				fail_msg("%s: walk gave %d (%s), want %d", c->name, rc, cairn_error_last(),
					 c->code);
			assert_int_equal(count, c->good);
			cairn_car_reader_free(r);
			free_table(&t);
		}
		assert_int_equal(cairn_error_last_code(), c->code);
		assert_msg(c->name, c->byte);
		if (c->text && !strstr(cairn_error_last(), c->text))
			fail_msg("%s: message \"%s\" lacks \"%s\"", c->name, cairn_error_last(), c->text);
	}
	cairn_buf_free(&file);
}

/* Over the bound first, past the end of the file second: with the bounds
 * lifted, the two length fixtures are corrupt, not too big. */
static void test_length_fixtures_unbounded(void **state)
{
	cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
	char path[PATH_MAX + 64];
	cairn_car_reader *r;
	cairn_car_section s;

	(void)state;
	opts.max_header_size = UINT64_MAX;
	opts.max_section_size = UINT64_MAX;
	fixture_path(path, sizeof(path), "badheaderlength.car");
	assert_int_equal(cairn_car_reader_open(&r, path, &opts), CAIRN_ECORRUPT);
	assert_msg("badheaderlength.car", 0);
	fixture_path(path, sizeof(path), "badsectionlength.car");
	assert_int_equal(cairn_car_reader_open(&r, path, &opts), 0);
	assert_int_equal(cairn_car_reader_version(r), 1);
	assert_int_equal(cairn_car_reader_root_count(r), 0);
	assert_int_equal(cairn_car_reader_header_len(r), 18);
	assert_int_equal(cairn_car_reader_next(r, &s, false), CAIRN_ECORRUPT);
	assert_msg("badsectionlength.car", 18);
	cairn_car_reader_free(r);
}

/* Small hand-made CARs for the defects the fixtures lack. */
static void test_inline_vectors(void **state)
{
	static const struct {
		const char *what, *hex;
		bool trusted, open_fails;
		int code;          /* 0: walks cleanly */
		long long byte;
		int alt_code;      /* also right, if not 0 */
	} vec[] = {
		/* go-car TestInspect "IdentityCID": an identity CID with no block
		 * bytes; fine unhashed, a mismatch hashed */
		{"identity-no-bytes",
		 "2fa265726f6f747381d82a581a0001a90200147b226964656e74697479223a22626c6f636b227d6776657273696f6e01"
		 "1901a90200147b226964656e74697479223a22626c6f636b227d",
		 true, false, 0, -1, 0},
		{"identity-no-bytes",
		 "2fa265726f6f747381d82a581a0001a90200147b226964656e74697479223a22626c6f636b227d6776657273696f6e01"
		 "1901a90200147b226964656e74697479223a22626c6f636b227d",
		 false, false, CAIRN_EMISMATCH, 48, 0},
		/* go-car TestInspectError "BadSectionLength" */
		{"bad-section-length",
		 "11a265726f6f7473806776657273696f6e01e0e0e0e0a7060155122001d448afd928065458cf670b60f5a594d735af01"
		 "72c8d67f22a81680132681ca00000000000000000000",
		 false, false, CAIRN_ETOOBIG, 18, 0},
		/* go-car "BadSectionLength3": roots null, then a dangling 0x80 */
		{"null-roots", "11a265726f6f7473f66776657273696f6e0180", false, true, CAIRN_ECORRUPT, -1, 0},
		/* the single-block CAR of car.md, its length 0x2e cut to 0x20:
		 * shorter than its 36-byte CID */
		{"section-shorter-than-cid",
		 "11a265726f6f7473806776657273696f6e01"
		 "200155122001d448afd928065458cf670b60f5a594d735af0172c8d67f22a81680132681ca00000000000000000000",
		 false, false, CAIRN_ECORRUPT, 18, 0},
		/* the same section with its length as a non-minimal varint ae 00 */
		{"non-minimal-section-length",
		 "11a265726f6f7473806776657273696f6e01"
		 "ae000155122001d448afd928065458cf670b60f5a594d735af0172c8d67f22a81680132681ca00000000000000000000",
		 false, false, CAIRN_ECORRUPT, 18, 0},
		/* and intact: the CAR of car.md's worked example (data only) */
		{"single-block",
		 "11a265726f6f7473806776657273696f6e01"
		 "2e0155122001d448afd928065458cf670b60f5a594d735af0172c8d67f22a81680132681ca00000000000000000000",
		 false, false, 0, -1, 0},
		/* a CID version 2 in a section: reserved, so corrupt here or
		 * not supported, as the CID decoder sees it */
		{"cid-version-2",
		 "11a265726f6f7473806776657273696f6e01"
		 "2e0255122001d448afd928065458cf670b60f5a594d735af0172c8d67f22a81680132681ca00000000000000000000",
		 false, false, CAIRN_ECORRUPT, 18, CAIRN_EUNSUPPORTED},
		/* empty file, zero header length, a lone partial varint */
		{"empty", "", false, true, CAIRN_ECORRUPT, 0, 0},
		{"zero-header-length", "00", false, true, CAIRN_ECORRUPT, 0, 0},
		{"partial-header-varint", "80", false, true, CAIRN_ECORRUPT, 0, 0},
		/* {version: 1} without roots */
		{"no-roots", "0aa16776657273696f6e01", false, true, CAIRN_ECORRUPT, -1, 0},
		/* a section length varint cut by the end of the file */
		{"partial-section-varint", "11a265726f6f7473806776657273696f6e0180", false, false, CAIRN_ECORRUPT,
		 18, 0},
		/* {roots: [], version: 2}: a CARv2 pragma carries nothing but the version */
		{"pragma-with-roots", "11a265726f6f7473806776657273696f6e02", false, true, CAIRN_ECORRUPT, -1, 0},
	};

	(void)state;
	for (size_t k = 0; k < sizeof(vec) / sizeof(vec[0]); k++) {
		cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
		cairn_buf b = CAIRN_BUF_INIT;
		char path[PATH_MAX + 64];
		cairn_car_reader *r;
		cairn_car_section s;
		int rc;

		tmp_path(path, sizeof(path), vec[k].what);
		from_hex(&b, vec[k].hex);
		write_file(path, b.data ? b.data : (const uint8_t *)"", b.len);
		opts.trusted = vec[k].trusted;
		rc = cairn_car_reader_open(&r, path, &opts);
		if (vec[k].open_fails) {
			if (rc != vec[k].code && (!vec[k].alt_code || rc != vec[k].alt_code))
				fail_msg("%s: open gave %d (%s), want %d", vec[k].what, rc, cairn_error_last(),
					 vec[k].code);
		} else {
			if (rc)
				fail_msg("%s: open: %s", vec[k].what, cairn_error_last());
			while ((rc = cairn_car_reader_next(r, &s, true)) == 1)
				;
			cairn_car_reader_free(r);
			if (rc != vec[k].code && (!vec[k].alt_code || rc != vec[k].alt_code))
				fail_msg("%s: walk gave %d (%s), want %d", vec[k].what, rc,
					 rc ? cairn_error_last() : "", vec[k].code);
		}
		if (vec[k].code)
			assert_msg(vec[k].what, vec[k].byte);
		cairn_buf_free(&b);
		unlink(path);
	}
}

/* A CARv2 header that cannot be: each rejected at open, naming its field. */
static void test_bad_v2_headers(void **state)
{
	static const struct {
		uint64_t data_offset, data_size, index_offset;
		long long byte;
	} vec[] = {
		{0, 479907, 0, 27},                 /* an unfinished writer's zero header */
		{50, 479907, 0, 27},                /* inside the header */
		{51, 0, 0, 35},                     /* no data */
		{51, 479907, 479957, 43},           /* index inside the data */
		{51, 479908, 0, 27},                /* data past the end of the file */
		{UINT64_MAX - 10, 479907, 0, 27},   /* offset + size overflows */
		{51, UINT64_MAX - 10, 0, 35},
		{51, 479907, 600000, 43},           /* index past the end of the file */
	};
	cairn_buf file = CAIRN_BUF_INIT;
	char src[PATH_MAX + 64], path[PATH_MAX + 64];

	(void)state;
	fixture_path(src, sizeof(src), "sample-v2-indexless.car");
	tmp_path(path, sizeof(path), "bad-v2-header.car");
	load_file(&file, src);
	for (size_t k = 0; k < sizeof(vec) / sizeof(vec[0]); k++) {
		cairn_car_v2_header h = {{0}, vec[k].data_offset, vec[k].data_size, vec[k].index_offset};
		cairn_car_reader *r;
		int rc;

		cairn_car_v2_header_encode(file.data + CAIRN_CAR_PRAGMA_LEN, &h);
		write_file(path, file.data, file.len);
		rc = cairn_car_reader_open(&r, path, NULL);
		if (rc != CAIRN_ECORRUPT)
			fail_msg("case %zu: open gave %d (%s)", k, rc, rc ? cairn_error_last() : "");
		assert_msg("bad-v2-header.car", vec[k].byte);
	}
	/* The CARv1 inside says version 2. */
	{
		static const uint8_t inner_v2[] = {0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02};
		cairn_car_v2_header h = {{0}, 51, 479907, 0};
		cairn_car_reader *r;

		cairn_car_v2_header_encode(file.data + CAIRN_CAR_PRAGMA_LEN, &h);
		memcpy(file.data + 51, inner_v2, sizeof(inner_v2));
		write_file(path, file.data, file.len);
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), CAIRN_ECORRUPT);
		assert_msg("bad-v2-header.car", 51);
	}
	unlink(path);
	cairn_buf_free(&file);
}

static void test_open_errors(void **state)
{
	char path[PATH_MAX + 64];
	cairn_car_reader *r = (cairn_car_reader *)path;

	(void)state;
	tmp_path(path, sizeof(path), "does-not-exist.car");
	assert_int_equal(cairn_car_reader_open(&r, path, NULL), CAIRN_ENOTFOUND);
	assert_null(r);
	assert_non_null(strstr(cairn_error_last(), "does-not-exist.car"));
	cairn_car_reader_free(NULL);
}

/* open_fd borrows the descriptor and names the file as told. */
static void test_open_fd(void **state)
{
	cairn_buf file = CAIRN_BUF_INIT;
	char path[PATH_MAX + 64];
	cairn_car_reader *r;
	size_t count;
	table t;
	int fd;

	(void)state;
	fixture_path(path, sizeof(path), "sample-rw-bs-v2.car");
	load_file(&file, path);
	load_table(&t, "sample-rw-bs-v2.car");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(cairn_car_reader_open_fd(&r, fd, "rw-bs", NULL), 0);
	assert_int_equal(cairn_car_reader_fd(r), fd);
	check_headers(r, find_valid("sample-rw-bs-v2.car"), file.len);
	assert_int_equal(walk(r, &t, 0, &file, true, "rw-bs", &count), 0);
	assert_int_equal(count, 3);
	cairn_car_reader_free(r);
	/* still open */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	/* a message names the name given */
	assert_int_equal(cairn_car_reader_open_fd(&r, fd, "rw-bs", NULL), 0);
	assert_int_equal(cairn_car_reader_seek(r, 274), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "rw-bs"));
	cairn_car_reader_free(r);
	assert_int_equal(close(fd), 0);
	free_table(&t);
	cairn_buf_free(&file);
}

/* max_header_size and max_section_size, exactly at and one below. */
static void test_bounds(void **state)
{
	const char *names[] = {"sample-v1.car", "sample-wrapped-v2.car", "wikipedia-cryptographic-hash-function.car"};
	cairn_buf file = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		const valid_car *v = find_valid(names[k]);
		cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
		uint64_t hdr = v->header_len - cairn_varint_size(v->header_len - 1), max = 0;
		char path[PATH_MAX + 64];
		cairn_car_reader *r;
		size_t count, first_max = 0;
		table t;

		fixture_path(path, sizeof(path), names[k]);
		load_file(&file, path);
		load_table(&t, names[k]);
		for (size_t i = 0; i < t.n; i++) {
			if (t.rows[i].len > max) {
				max = t.rows[i].len;
				first_max = i;
			}
		}
		/* the header: its DAG-CBOR bytes, without the varint */
		opts.max_header_size = hdr;
		assert_int_equal(cairn_car_reader_open(&r, path, &opts), 0);
		cairn_car_reader_free(r);
		opts.max_header_size = hdr - 1;
		assert_int_equal(cairn_car_reader_open(&r, path, &opts), CAIRN_ETOOBIG);
		assert_msg(names[k], (long long)v->data_offset);
		opts.max_header_size = (cairn_car_options)CAIRN_CAR_OPTIONS_INIT.max_header_size;
		/* the largest section */
		opts.max_section_size = max;
		assert_int_equal(cairn_car_reader_open(&r, path, &opts), 0);
		assert_int_equal(walk(r, &t, 0, &file, true, names[k], &count), 0);
		assert_int_equal(count, t.n);
		cairn_car_reader_free(r);
		opts.max_section_size = max - 1;
		assert_int_equal(cairn_car_reader_open(&r, path, &opts), 0);
		assert_int_equal(walk(r, &t, 0, &file, false, names[k], &count), CAIRN_ETOOBIG);
		assert_int_equal(count, first_max);
		assert_msg(names[k], (long long)t.rows[first_max].abs);
		cairn_car_reader_free(r);
		/* section_read honours it too */
		{
			cairn_buf blk = CAIRN_BUF_INIT;
			cairn_car_section s;
			int fd = open(path, O_RDONLY | O_CLOEXEC);

			assert_true(fd >= 0);
			assert_int_equal(cairn_car_section_read(&s, &blk, fd, names[k], v->data_offset,
								v->data_offset + (v->version == 2 ? v->data_size : file.len),
								t.rows[first_max].rel, &opts),
					 CAIRN_ETOOBIG);
			assert_msg(names[k], (long long)t.rows[first_max].abs);
			opts.max_section_size = max;
			assert_int_equal(cairn_car_section_read(&s, &blk, fd, names[k], v->data_offset,
								v->data_offset + (v->version == 2 ? v->data_size : file.len),
								t.rows[first_max].rel, &opts),
					 0);
			check_section(&s, &t.rows[first_max], &file, true, names[k], first_max);
			close(fd);
			cairn_buf_free(&blk);
		}
		free_table(&t);
	}
	cairn_buf_free(&file);
}

/* Flip one byte inside a block (temp copy): hashed, the walk stops there
 * with CAIRN_EMISMATCH naming the section; trusted, it reads through. */
static void test_trusted(void **state)
{
	const char *names[] = {"sample-v1.car", "sample-wrapped-v2.car"};
	cairn_buf file = CAIRN_BUF_INIT, blk = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		const valid_car *v = find_valid(names[k]);
		cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
		char src[PATH_MAX + 64], path[PATH_MAX + 64];
		const size_t bad = 100;
		cairn_car_reader *r;
		cairn_car_section s;
		uint64_t at;
		size_t count;
		table t;
		int fd;

		fixture_path(src, sizeof(src), names[k]);
		tmp_path(path, sizeof(path), "tampered.car");
		load_file(&file, src);
		load_table(&t, names[k]);
		at = t.rows[bad].abs + cairn_varint_size(t.rows[bad].len) + t.rows[bad].cid_len +
		     t.rows[bad].block_len / 2;
		file.data[at] ^= 0x01;
		write_file(path, file.data, file.len);
		tampered = true;

		for (int want = 0; want < 2; want++) {
			/* hashed: stops at the bad section, with or without the block */
			assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
			if (walk(r, &t, 0, &file, want, "tampered.car", &count) != CAIRN_EMISMATCH)
				fail_msg("%s: %s", names[k], cairn_error_last());
			assert_int_equal(count, bad);
			assert_msg("tampered.car", (long long)t.rows[bad].abs);
			cairn_car_reader_free(r);
		}
		/* trusted: all of it, and the changed byte comes back as it is */
		opts.trusted = true;
		assert_int_equal(cairn_car_reader_open(&r, path, &opts), 0);
		count = 0;
		while (cairn_car_reader_next(r, &s, true) == 1) {
			if (count == bad) {
				assert_int_equal(s.file_offset, t.rows[bad].abs);
				assert_int_equal(s.block[at - s.block_offset], file.data[at]);
				assert_int_equal(cairn_cid_verify(&s.cid, s.block, s.block_len), CAIRN_EMISMATCH);
			}
			count++;
		}
		assert_int_equal(count, t.n);
		cairn_car_reader_free(r);

		/* section_read: the same both ways */
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(cairn_car_section_read(&s, &blk, fd, "tampered.car", v->data_offset,
							v->data_offset + (v->version == 2 ? v->data_size : file.len),
							t.rows[bad].rel, NULL),
				 CAIRN_EMISMATCH);
		assert_msg("tampered.car", (long long)t.rows[bad].abs);
		assert_int_equal(cairn_car_section_read(&s, &blk, fd, "tampered.car", v->data_offset,
							v->data_offset + (v->version == 2 ? v->data_size : file.len),
							t.rows[bad].rel, &opts),
				 0);
		check_section(&s, &t.rows[bad], &file, true, names[k], bad);
		close(fd);
		unlink(path);
		tampered = false;
		free_table(&t);
	}
	cairn_buf_free(&blk);
	cairn_buf_free(&file);
}

/* seek + next at every offset of the tables, in a scrambled order. */
static void test_seek(void **state)
{
	const char *names[] = {"sample-v1.car", "sample-wrapped-v2.car", "sample-rw-bs-v2.car", "carv2-basic.car",
			       "wikipedia-cryptographic-hash-function.car"};
	cairn_buf file = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		const valid_car *v = find_valid(names[k]);
		char path[PATH_MAX + 64];
		uint64_t size;
		cairn_car_reader *r;
		cairn_car_section s;
		table t;

		fixture_path(path, sizeof(path), names[k]);
		load_file(&file, path);
		load_table(&t, names[k]);
		size = v->version == 2 ? v->data_size : file.len;
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		for (size_t j = 0; j < t.n; j++) {
			/* 389 is prime and does not divide 1049: every row once */
			size_t i = (j * 389) % t.n;

			assert_int_equal(cairn_car_reader_seek(r, t.rows[i].rel), 0);
			assert_int_equal(cairn_car_reader_next(r, &s, j & 1), 1);
			check_section(&s, &t.rows[i], &file, j & 1, names[k], i);
			if (i + 1 < t.n) {
				assert_int_equal(cairn_car_reader_next(r, &s, true), 1);
				check_section(&s, &t.rows[i + 1], &file, true, names[k], i + 1);
			} else {
				assert_int_equal(cairn_car_reader_next(r, &s, true), 0);
			}
		}
		/* the end of the data is a place to be; past it is not */
		assert_int_equal(cairn_car_reader_seek(r, size), 0);
		assert_int_equal(cairn_car_reader_next(r, &s, true), 0);
		assert_int_equal(cairn_car_reader_seek(r, size + 1), CAIRN_EINVAL);
		assert_int_equal(cairn_car_reader_seek(r, UINT64_MAX), CAIRN_EINVAL);
		/* back to the first section after it all */
		assert_int_equal(cairn_car_reader_seek(r, t.rows[0].rel), 0);
		assert_int_equal(cairn_car_reader_next(r, &s, true), 1);
		check_section(&s, &t.rows[0], &file, true, names[k], 0);
		cairn_car_reader_free(r);
		free_table(&t);
	}
	cairn_buf_free(&file);
}

/* cairn_car_section_read at every offset of every valid table; one byte
 * off any of them is an error, never a crash. */
static void test_section_read(void **state)
{
	cairn_buf file = CAIRN_BUF_INIT, blk = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < NVALID; k++) {
		const valid_car *v = &valid[k];
		char path[PATH_MAX + 64];
		cairn_car_reader *r;
		cairn_car_section s;
		uint64_t doff, dend;
		table t;
		int fd;

		fixture_path(path, sizeof(path), v->name);
		load_file(&file, path);
		load_table(&t, v->name);
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		fd = cairn_car_reader_fd(r);
		doff = cairn_car_reader_data_offset(r);
		dend = cairn_car_reader_data_end(r);
		for (size_t i = 0; i < t.n; i++) {
			int rc = cairn_car_section_read(&s, &blk, fd, v->name, doff, dend, t.rows[i].rel, NULL);

			if (rc)
				fail_msg("%s row %zu: %s", v->name, i, cairn_error_last());
			assert_ptr_equal(s.block, blk.data);
			assert_int_equal(blk.len, t.rows[i].block_len);
			check_section(&s, &t.rows[i], &file, true, v->name, i);
			rc = cairn_car_section_read(&s, &blk, fd, v->name, doff, dend, t.rows[i].rel + 1, NULL);
			if (rc >= 0)
				fail_msg("%s row %zu: a read one byte in succeeded", v->name, i);
		}
		/* past the data: refused (the code is not the point; either fits) */
		for (int j = 0; j < 2; j++) {
			uint64_t off = j ? UINT64_MAX / 2 : dend - doff;
			int rc = cairn_car_section_read(&s, &blk, fd, v->name, doff, dend, off, NULL);

			assert_true(rc == CAIRN_ECORRUPT || rc == CAIRN_EINVAL);
			assert_non_null(strstr(cairn_error_last(), v->name));
		}
		cairn_car_reader_free(r);
		free_table(&t);
	}
	cairn_buf_free(&blk);
	cairn_buf_free(&file);
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* sample-v1.car cut at every byte of its header, around every section
 * boundary and through every section: never a crash; a clean end exactly
 * when the cut falls on a boundary, an error naming the cut section
 * otherwise. */
static void test_truncation(void **state)
{
	cairn_buf file = CAIRN_BUF_INIT;
	char src[PATH_MAX + 64], path[PATH_MAX + 64];
	uint64_t *cuts;
	size_t ncuts = 0, cap, clean = 0, errors = 0;
	table t;
	int fd;

	(void)state;
	fixture_path(src, sizeof(src), "sample-v1.car");
	tmp_path(path, sizeof(path), "cut.car");
	load_file(&file, src);
	load_table(&t, "sample-v1.car");
	cap = 128 + t.n * 8;
	cuts = malloc(cap * sizeof(*cuts));
	assert_non_null(cuts);
	for (uint64_t c = 0; c <= 80; c++)
		cuts[ncuts++] = c;
	for (size_t i = 0; i < t.n; i++) {
		const row *w = &t.rows[i];
		uint64_t vs = cairn_varint_size(w->len);

		/* in the varint, in the CID, in the block, at and after its end */
		cuts[ncuts++] = w->abs + 1;
		cuts[ncuts++] = w->abs + vs;
		cuts[ncuts++] = w->abs + vs + w->cid_len / 2;
		cuts[ncuts++] = w->abs + vs + w->cid_len;
		cuts[ncuts++] = w->abs + vs + w->cid_len + w->block_len / 2;
		cuts[ncuts++] = section_end(w) - 1;
		cuts[ncuts++] = section_end(w);
		if (section_end(w) < file.len)
			cuts[ncuts++] = section_end(w) + 1;
	}
	/* Largest first: one file, shortened step by step. */
	qsort(cuts, ncuts, sizeof(*cuts), cmp_desc);
	write_file(path, file.data, file.len);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	for (size_t k = 0; k < ncuts; k++) {
		cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
		uint64_t cut = cuts[k];
		size_t whole = 0, count;
		bool boundary = cut == t.rows[0].abs;
		cairn_car_reader *r;
		int rc;

		if (k && cut == cuts[k - 1])
			continue;
		assert_int_equal(ftruncate(fd, (off_t)cut), 0);
		while (whole < t.n && section_end(&t.rows[whole]) <= cut)
			whole++;
		if (whole && section_end(&t.rows[whole - 1]) == cut)
			boundary = true;
		/* every other cut trusted without blocks: the structure alone */
		opts.trusted = k & 1;
		rc = cairn_car_reader_open(&r, path, &opts);
		if (cut < t.rows[0].abs) {
			if (rc != CAIRN_ECORRUPT)
				fail_msg("cut %" PRIu64 ": open gave %d", cut, rc);
			assert_msg("cut.car", -1);
			errors++;
			continue;
		}
		if (rc)
			fail_msg("cut %" PRIu64 ": open: %s", cut, cairn_error_last());
		rc = walk(r, &t, 0, &file, !opts.trusted, "cut.car", &count);
		cairn_car_reader_free(r);
		if (count != whole)
			fail_msg("cut %" PRIu64 ": %zu sections, want %zu", cut, count, whole);
		if (boundary) {
			if (rc != 0)
				fail_msg("cut %" PRIu64 " on a boundary: %d (%s)", cut, rc, cairn_error_last());
			clean++;
		} else {
			if (rc != CAIRN_ECORRUPT)
				fail_msg("cut %" PRIu64 " inside section %zu: %d", cut, whole, rc);
			assert_msg("cut.car", (long long)t.rows[whole].abs);
			errors++;
		}
	}
	close(fd);
	unlink(path);
	/* the header's end and every section's end */
	assert_int_equal(clean, t.n + 1);
	assert_true(errors > 5 * t.n);
	free(cuts);
	free_table(&t);
	cairn_buf_free(&file);
}

static void expect_stats(const cairn_car_stats *st, const table *t, size_t n, uint64_t data_bytes)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += t->rows[i].block_len;
	assert_int_equal(st->blocks, n);
	assert_int_equal(st->block_bytes, bytes);
	if (data_bytes != UINT64_MAX)
		assert_int_equal(st->data_bytes, data_bytes);
}

static void test_verify(void **state)
{
	static const unsigned threads[] = {1, 2, 8, 0};
	static const char *names[] = {"sample-v1.car", "sample-wrapped-v2.car",
				      "sample-v1-with-zero-len-section.car", "carv1-basic.car"};
	cairn_buf file = CAIRN_BUF_INIT;

	(void)state;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		const valid_car *v = find_valid(names[k]);
		cairn_car_options opts = CAIRN_CAR_OPTIONS_INIT;
		char path[PATH_MAX + 64];
		table t;

		fixture_path(path, sizeof(path), names[k]);
		load_table(&t, names[k]);
		opts.zero_length_as_eof = v->zero_eof;
		for (size_t j = 0; j < sizeof(threads) / sizeof(threads[0]); j++) {
			cairn_progress prog;
			cairn_car_stats st;
			cairn_car_reader *r;
			cairn_car_section s;

			assert_int_equal(cairn_car_reader_open(&r, path, &opts), 0);
			cairn_progress_start(&prog, -1, false, "verify", 0);
			if (cairn_car_verify(&st, r, threads[j], &prog, NULL, NULL))
				fail_msg("%s, %u threads: %s", names[k], threads[j], cairn_error_last());
			expect_stats(&st, &t, t.n, v->stopped_at - v->data_offset);
			assert_int_equal(prog.done, st.data_bytes);
			/* the reader is at the end, and still hashes on its own */
			assert_int_equal(cairn_car_reader_next(r, &s, true), 0);
			cairn_car_reader_free(r);
		}
		if (!strcmp(names[k], "sample-v1.car"))
			assert_int_equal(t.n, 1049);
		free_table(&t);
	}

	/* Tampered: two bad blocks; the first in file order is reported. */
	{
		char src[PATH_MAX + 64], path[PATH_MAX + 64];
		const size_t bad[] = {700, 100};
		table t;

		fixture_path(src, sizeof(src), "sample-v1.car");
		tmp_path(path, sizeof(path), "tampered-verify.car");
		load_file(&file, src);
		load_table(&t, "sample-v1.car");
		for (size_t b = 0; b < 2; b++) {
			const row *w = &t.rows[bad[b]];

			file.data[w->abs + cairn_varint_size(w->len) + w->cid_len + w->block_len - 1] ^= 0x80;
			write_file(path, file.data, file.len);
			for (size_t j = 0; j < sizeof(threads) / sizeof(threads[0]); j++) {
				cairn_car_stats st;
				cairn_car_reader *r;
				cairn_car_section s;

				assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
				assert_int_equal(cairn_car_verify(&st, r, threads[j], NULL, NULL, NULL), CAIRN_EMISMATCH);
				assert_int_equal(cairn_error_last_code(), CAIRN_EMISMATCH);
				assert_msg("tampered-verify.car", (long long)w->abs);
				expect_stats(&st, &t, bad[b], UINT64_MAX);
				/* the reader hashes again afterwards (verify reads trusted) */
				assert_int_equal(cairn_car_reader_seek(r, w->rel), 0);
				assert_int_equal(cairn_car_reader_next(r, &s, false), CAIRN_EMISMATCH);
				cairn_car_reader_free(r);
			}
		}
		unlink(path);
		free_table(&t);
	}

	/* A cut section: the sections before it are counted, the error is the cut. */
	{
		char path[PATH_MAX + 64];
		table t;

		fixture_path(path, sizeof(path), "sample-v1-tailing-corrupt-section.car");
		load_table(&t, "sample-v1-tailing-corrupt-section.car");
		for (size_t j = 0; j < sizeof(threads) / sizeof(threads[0]); j++) {
			cairn_car_stats st;
			cairn_car_reader *r;

			assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
			assert_int_equal(cairn_car_verify(&st, r, threads[j], NULL, NULL, NULL), CAIRN_ECORRUPT);
			assert_msg("sample-v1-tailing-corrupt-section.car", 479518);
			expect_stats(&st, &t, 1048, UINT64_MAX);
			cairn_car_reader_free(r);
		}
		free_table(&t);
	}
	cairn_buf_free(&file);
}

/* verify's callback: every section once, in file order, without its block;
 * a non-zero return stops the walk and is what verify returns, and the
 * stats count the sections before the one refused. */
typedef struct {
	const table *t;
	const cairn_buf *file;
	size_t seen, stop_at;
} seen_state;

static int on_section(const cairn_car_section *s, void *payload)
{
	seen_state *st = payload;

	if (st->seen >= st->t->n)
		return CAIRN_ERROR;
	check_section(s, &st->t->rows[st->seen], st->file, false, "verify callback", st->seen);
	if (st->seen == st->stop_at)
		return CAIRN_ECANCELED;
	st->seen++;
	return 0;
}

static void test_verify_callback(void **state)
{
	static const unsigned threads[] = {1, 3};
	cairn_buf file = CAIRN_BUF_INIT;
	char path[PATH_MAX + 64];
	table t;

	(void)state;
	fixture_path(path, sizeof(path), "sample-wrapped-v2.car");
	load_file(&file, path);
	load_table(&t, "sample-wrapped-v2.car");
	for (size_t j = 0; j < 2; j++) {
		seen_state ss = {&t, &file, 0, SIZE_MAX};
		cairn_car_stats st;
		cairn_car_reader *r;

		/* all of it */
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		assert_int_equal(cairn_car_verify(&st, r, threads[j], NULL, on_section, &ss), 0);
		assert_int_equal(ss.seen, t.n);
		expect_stats(&st, &t, t.n, 479907);
		cairn_car_reader_free(r);
		/* stopped at section 500 */
		ss.seen = 0;
		ss.stop_at = 500;
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		assert_int_equal(cairn_car_verify(&st, r, threads[j], NULL, on_section, &ss), CAIRN_ECANCELED);
		assert_int_equal(ss.seen, 500);
		expect_stats(&st, &t, 500, UINT64_MAX);
		cairn_car_reader_free(r);
	}
	free_table(&t);
	cairn_buf_free(&file);
}

/* What a sequential untrusted reader makes of a file: the sections before
 * the first failure, its code and message, and where the last section ends. */
typedef struct {
	uint64_t blocks, block_bytes, data_bytes;
	int rc;
	char msg[512];
} reference;

static void read_reference(reference *ref, const char *path)
{
	cairn_car_reader *r;
	cairn_car_section s;

	memset(ref, 0, sizeof(*ref));
	assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
	while ((ref->rc = cairn_car_reader_next(r, &s, false)) == 1) {
		ref->blocks++;
		ref->block_bytes += s.block_len;
		ref->data_bytes = s.block_offset + s.block_len - cairn_car_reader_data_offset(r);
	}
	if (ref->rc)
		snprintf(ref->msg, sizeof(ref->msg), "%s", cairn_error_last());
	cairn_car_reader_free(r);
}

/* verify reads blocks over 64 KiB that run past its 256 KiB chunks on
 * their own, on the thread that hashes them; the fixtures' blocks are all
 * small. Whatever the path, verify must say what the reader says. */
static void test_verify_large_blocks(void **state)
{
	static const size_t sizes[] = {100, 70000, 300, 300000, 65536, 1u << 20, 200, 262144, 5,
				       600000};
	static const unsigned threads[] = {1, 2, 3};
	const size_t n = sizeof(sizes) / sizeof(sizes[0]);
	cairn_buf file = CAIRN_BUF_INIT;
	uint64_t block_end[sizeof(sizes) / sizeof(sizes[0])];
	char path[PATH_MAX + 64];
	cairn_car_writer_options wo = CAIRN_CAR_WRITER_OPTIONS_INIT;
	cairn_car_writer *w;
	uint8_t *data = malloc(1u << 20);
	cairn_cid cid, root;
	uint64_t x = 1;

	(void)state;
	assert_non_null(data);
	tmp_path(path, sizeof(path), "large-blocks.car");
	wo.version = 1;
	assert_int_equal(cairn_cid_compute(&root, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, "", 0), 0);
	assert_int_equal(cairn_car_writer_open(&w, path, &root, 1, &wo), 0);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < sizes[i]; k++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			data[k] = (uint8_t)(x >> 56);
		}
		assert_int_equal(cairn_cid_compute(&cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256, data,
						   sizes[i]), 0);
		assert_int_equal(cairn_car_writer_put(w, &cid, data, sizes[i]), 0);
	}
	assert_int_equal(cairn_car_writer_finish(w), 0);
	cairn_car_writer_free(w);
	free(data);
	load_file(&file, path);
	{
		cairn_car_reader *r;
		cairn_car_section s;
		size_t i = 0;

		assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
		while (cairn_car_reader_next(r, &s, false) == 1)
			block_end[i++] = s.block_offset + s.block_len;
		assert_int_equal(i, n);
		cairn_car_reader_free(r);
	}
	/* As written; the 1 MiB block spoilt; it and a smaller one before it
	 * spoilt (the first is reported); both mended, cut inside the last block. */
	for (int round = 0; round < 4; round++) {
		reference ref;

		if (round == 1 || round == 3)
			file.data[block_end[5] - 1] ^= 0x01;
		if (round == 2 || round == 3)
			file.data[block_end[3] - 7] ^= 0x80;
		write_file(path, file.data, round == 3 ? block_end[n - 1] - 1000 : file.len);
		read_reference(&ref, path);
		assert_int_equal(ref.rc, round == 0 ? 0 : round == 3 ? CAIRN_ECORRUPT : CAIRN_EMISMATCH);
		for (size_t j = 0; j < sizeof(threads) / sizeof(threads[0]); j++) {
			cairn_car_stats st;
			cairn_car_reader *r;

			assert_int_equal(cairn_car_reader_open(&r, path, NULL), 0);
			assert_int_equal(cairn_car_verify(&st, r, threads[j], NULL, NULL, NULL), ref.rc);
			if (ref.rc)
				assert_string_equal(cairn_error_last(), ref.msg);
			else
				assert_int_equal(st.data_bytes, ref.data_bytes);
			assert_int_equal(st.blocks, ref.blocks);
			assert_int_equal(st.block_bytes, ref.block_bytes);
			cairn_car_reader_free(r);
		}
	}
	unlink(path);
	cairn_buf_free(&file);
}

/* Every allocation of open + walk + verify can fail: CAIRN_ENOMEM each
 * time, never a crash, nothing leaked (LeakSanitizer checks at exit). */
static void test_alloc_failure(void **state)
{
	const char *names[] = {"carv1-basic.car", "sample-rw-bs-v2.car"};

	(void)state;
	for (size_t k = 0; k < 2; k++) {
		char path[PATH_MAX + 64];
		long n;

		fixture_path(path, sizeof(path), names[k]);
		for (n = 1; n < 400; n++) {
			cairn_car_reader *r = NULL;
			cairn_car_section s;
			cairn_car_stats st;
			size_t count = 0;
			int rc;

			cairn_alloc_fail_after(n, false);
			rc = cairn_car_reader_open(&r, path, NULL);
			if (!rc) {
				while ((rc = cairn_car_reader_next(r, &s, true)) == 1)
					count++;
			}
			if (!rc) {
				assert_int_equal(cairn_car_reader_seek(r, 0), 0);
				assert_int_equal(cairn_car_reader_seek(r, cairn_car_reader_header_len(r)), 0);
				rc = cairn_car_verify(&st, r, 2, NULL, NULL, NULL);
			}
			cairn_alloc_fail_after(-1, false);
			cairn_car_reader_free(r);
			if (rc) {
				if (rc != CAIRN_ENOMEM)
					fail_msg("%s, allocation %ld failing: %d (%s)", names[k], n, rc,
						 cairn_error_last());
				continue;
			}
			assert_int_equal(count, find_valid(names[k])->blocks);
			assert_int_equal(st.blocks, count);
			break;
		}
		/* It took a few failures before a run got through. */
		assert_true(n > 3 && n < 400);
	}
	/* Nothing works when nothing can be allocated. */
	{
		char path[PATH_MAX + 64];
		cairn_car_reader *r = (cairn_car_reader *)path;

		fixture_path(path, sizeof(path), "sample-v1.car");
		cairn_alloc_fail_after(1, true);
		assert_int_equal(cairn_car_reader_open(&r, path, NULL), CAIRN_ENOMEM);
		cairn_alloc_fail_after(-1, false);
		assert_null(r);
	}
}

/* ------------------------------------------------------------------- main */

static int rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[PATH_MAX + 256];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	return rmdir(tmpdir);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/cairn-test-car-reader-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return rm_tmpdir();
}

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

int main(void)
{
	const char *env = getenv("CAIRN_FIXTURES");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fixture_known),
		cmocka_unit_test(test_valid_fixtures),
		cmocka_unit_test(test_corrupt_fixtures),
		cmocka_unit_test(test_length_fixtures_unbounded),
		cmocka_unit_test(test_inline_vectors),
		cmocka_unit_test(test_bad_v2_headers),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_open_fd),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_trusted),
		cmocka_unit_test(test_seek),
		cmocka_unit_test(test_section_read),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_verify_callback),
		cmocka_unit_test(test_verify_large_blocks),
		cmocka_unit_test_teardown(test_alloc_failure, teardown),
	};

	if (!env || !*env) {
		fprintf(stderr, "test_reader: set CAIRN_FIXTURES to the shared fixtures folder\n");
		return 77; /* skipped */
	}
	snprintf(cars, sizeof(cars), "%s/car", env);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
