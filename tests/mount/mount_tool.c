/* mount_tool.c: drives mounts for tests/mount/http.sh (nginx on loopback):
 * sizes, reads checked against the local file, CAR sections, and scripts of
 * opens and closes that exercise the transient budget.
 *
 *   mount_tool [OPTIONS] size URL
 *   mount_tool [OPTIONS] stat URL
 *   mount_tool [OPTIONS] cat URL [OFFSET LENGTH]
 *   mount_tool [OPTIONS] verify URL FILE [THREADS [READS]]
 *   mount_tool [OPTIONS] sections URL [--zero-eof] [--trusted] [--no-blocks] [--window N]
 *   mount_tool sections-ref PATH [--zero-eof] [--trusted] [--no-blocks]
 *   mount_tool [OPTIONS] script          (commands on standard input, below)
 *
 * OPTIONS: --transients DIR, --budget BYTES, --retries N, --retry-delay MS,
 * --fetch auto|never|always.
 *
 * verify reads every boundary (first and last bytes, past the end) and then
 * READS random ranges on THREADS threads, each compared with FILE; it prints
 * the client's counters. sections prints one line per section (payload
 * offset, file offset, length, CID length, block offset, block length,
 * CID, and a hash of the block when read) and "end <result>"; sections-ref
 * prints the same from the descriptor reader, so outputs compare with diff.
 *
 * Script commands, one a line ('#' starts a comment):
 *   open NAME URL | close NAME | read NAME OFFSET LENGTH FILE | stat NAME
 *   gc | truncate PATH SIZE | files DIR     (prints "complete=N partial=N")
 *   stats                                   (prints the client's counters)
 *   expect-stats KEY=VALUE...               (keys as stats prints them)
 *   expect-error CODE COMMAND...            (CODE: ENOTFOUND, ETOOBIG, ...)
 * Every failure is printed as "error <CODE>: <message>".
 * Exit status: 0 fine, 1 failed, 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "cairn/mount.h"

static cairn_mount_registry *reg;
static cairn_mount_http *http;
static cairn_mount_options mopts = CAIRN_MOUNT_OPTIONS_INIT;

static const struct {
	const char *name;
	int code;
} codes[] = {
	{"ERROR", CAIRN_ERROR},       {"ENOMEM", CAIRN_ENOMEM},     {"EINVAL", CAIRN_EINVAL},
	{"ECORRUPT", CAIRN_ECORRUPT}, {"ENOTFOUND", CAIRN_ENOTFOUND}, {"EIO", CAIRN_EIO},
	{"EMISMATCH", CAIRN_EMISMATCH}, {"ETOOBIG", CAIRN_ETOOBIG}, {"EUNSUPPORTED", CAIRN_EUNSUPPORTED},
	{"EEXISTS", CAIRN_EEXISTS},   {"ECANCELED", CAIRN_ECANCELED},
};

static const char *code_name(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return codes[i].name;
	return "E?";
}

static int code_of(const char *name)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(codes[i].name, name))
			return codes[i].code;
	return 0;
}

static int report(int rc)
{
	printf("error %s: %s\n", code_name(rc), cairn_error_last());
	fflush(stdout);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: mount_tool [OPTIONS] size|stat|cat|verify|sections|script ...\n"
			"       mount_tool sections-ref PATH [--zero-eof] [--trusted] [--no-blocks]\n");
	return 2;
}

static void print_stats(void)
{
	cairn_mount_http_stats s;

	cairn_mount_http_get_stats(http, &s);
	printf("requests=%" PRIu64 " retries=%" PRIu64 " handles=%" PRIu64 " downloads=%" PRIu64
	       " evictions=%" PRIu64 " transients=%" PRIu64 " in_use=%" PRIu64 " bytes=%" PRIu64 "\n",
	       s.requests, s.retries, s.handles_created, s.downloads, s.evictions, s.transients,
	       s.transients_in_use, s.transient_bytes);
}

static int stat_line(cairn_mount *m)
{
	cairn_mount_status st;
	int rc = cairn_mount_stat(m, &st);

	if (rc)
		return rc;
	printf("exists=%d size=%" PRIu64 " ready=%d random=%d transient=%d kind=%s fd=%s\n", st.exists,
	       st.size, st.ready, st.random, st.transient,
	       st.kind == CAIRN_MOUNT_LOCAL ? "local" : "remote", cairn_mount_fd(m) >= 0 ? "yes" : "no");
	return 0;
}

/* ----------------------------------------------------------------- verify */

typedef struct {
	cairn_mount *m;
	const uint8_t *ref;
	uint64_t size;
	unsigned seed;
	int reads;
	int bad;
	char msg[1100];
} vjob;

static void *vmain(void *p)
{
	vjob *j = p;
	size_t cap = 300000;
	uint8_t *buf = malloc(cap);

	for (int i = 0; i < j->reads && !j->bad; i++) {
		uint64_t off = j->size ? (uint64_t)rand_r(&j->seed) % j->size : 0;
		size_t n = (size_t)rand_r(&j->seed) % (i % 10 == 0 ? cap : 5000);
		int rc;

		if (n > j->size - off)
			n = (size_t)(j->size - off);
		if ((rc = cairn_mount_read_at(j->m, buf, n, off))) {
			snprintf(j->msg, sizeof(j->msg), "read %zu at %" PRIu64 ": %s", n, off,
				 cairn_error_last());
			j->bad = rc;
		} else if (memcmp(buf, j->ref + off, n)) {
			snprintf(j->msg, sizeof(j->msg), "read %zu at %" PRIu64 ": wrong bytes", n, off);
			j->bad = CAIRN_ERROR;
		}
	}
	free(buf);
	return NULL;
}

static int verify(const char *url, const char *file, int threads, int reads)
{
	cairn_buf ref = CAIRN_BUF_INIT;
	cairn_mount *m;
	uint8_t buf[16];
	uint64_t size;
	pthread_t th[64];
	vjob jobs[64];
	int rc;

	if ((rc = cairn_file_read_all(&ref, file, (size_t)1 << 31)))
		return report(rc);
	if ((rc = cairn_mount_open(&m, reg, url, &mopts))) {
		cairn_buf_free(&ref);
		return report(rc);
	}
	size = cairn_mount_size(m);
	if (size != ref.len) {
		fprintf(stderr, "verify: size %" PRIu64 ", file has %zu\n", size, ref.len);
		rc = CAIRN_ERROR;
		goto out;
	}
	/* Every boundary first. */
	{
		const uint64_t offs[] = {0, 1, size / 2, size - 1, size};
		const size_t lens[] = {0, 1, 2, 16};

		for (size_t i = 0; i < 5 && !rc; i++)
			for (size_t k = 0; k < 4 && !rc; k++) {
				uint64_t off = offs[i];
				size_t n = lens[k];

				if (off > size)
					continue;
				rc = cairn_mount_read_at(m, buf, n, off);
				if (off + n > size) {
					if (rc != CAIRN_ECORRUPT) {
						fprintf(stderr, "verify: a read of %zu at %" PRIu64 " past the end gave %d\n",
							n, off, rc);
						rc = CAIRN_ERROR;
						goto out;
					}
					rc = 0;
				} else if (rc) {
					report(rc);
					goto out;
				} else if (memcmp(buf, ref.data + off, n)) {
					fprintf(stderr, "verify: wrong bytes at %" PRIu64 "\n", off);
					rc = CAIRN_ERROR;
					goto out;
				}
			}
	}
	if (threads > 64)
		threads = 64;
	for (int i = 0; i < threads; i++) {
		jobs[i] = (vjob){m, ref.data, size, (unsigned)i * 2654435761u + 1, reads / threads, 0, ""};
		pthread_create(&th[i], NULL, vmain, &jobs[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].bad && !rc) {
			fprintf(stderr, "verify: %s\n", jobs[i].msg);
			rc = jobs[i].bad;
		}
	}
	if (!rc) {
		printf("ok %d reads\n", reads);
		print_stats();
	}
out:
	cairn_mount_close(m);
	cairn_buf_free(&ref);
	return rc;
}

/* --------------------------------------------------------------- sections */

typedef struct {
	bool zero, trusted, blocks;
	size_t window;
} sopts;

static uint64_t fnv(const uint8_t *p, uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (uint64_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static void print_section(const cairn_car_section *s)
{
	char cid[CAIRN_CID_MAX_STRING];

	cairn_cid_to_string(cid, &s->cid);
	printf("%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%u\t%" PRIu64 "\t%" PRIu64 "\t%s", s->offset,
	       s->file_offset, s->length, s->cid_len, s->block_offset, s->block_len, cid);
	if (s->block)
		printf("\t%016" PRIx64, fnv(s->block, s->block_len));
	printf("\n");
}

static int end_line(int rc)
{
	if (rc < 0) {
		printf("end %s\n", code_name(rc));
		fprintf(stderr, "%s\n", cairn_error_last());
		return rc;
	}
	printf("end ok\n");
	return 0;
}

static int sections(const char *url, const sopts *so, bool ref)
{
	cairn_car_options o = CAIRN_CAR_OPTIONS_INIT;
	cairn_car_section s;
	int rc;

	o.zero_length_as_eof = so->zero;
	o.trusted = so->trusted;
	if (ref) {
		cairn_car_reader *r;

		if ((rc = cairn_car_reader_open(&r, url, &o)))
			return end_line(rc);
		printf("version %u data %" PRIu64 "-%" PRIu64 " roots %zu\n", cairn_car_reader_version(r),
		       cairn_car_reader_data_offset(r), cairn_car_reader_data_end(r),
		       cairn_car_reader_root_count(r));
		while ((rc = cairn_car_reader_next(r, &s, so->blocks)) == 1)
			print_section(&s);
		cairn_car_reader_free(r);
	} else {
		cairn_car_reader *r;
		cairn_mount *m;

		if ((rc = cairn_mount_open(&m, reg, url, &mopts)))
			return report(rc);
		if ((rc = cairn_mount_car_open(&r, m, &o, so->window))) {
			cairn_mount_close(m);
			return end_line(rc);
		}
		printf("version %u data %" PRIu64 "-%" PRIu64 " roots %zu\n", cairn_car_reader_version(r),
		       cairn_car_reader_data_offset(r), cairn_car_reader_data_end(r),
		       cairn_car_reader_root_count(r));
		while ((rc = cairn_car_reader_next(r, &s, so->blocks)) == 1)
			print_section(&s);
		cairn_car_reader_free(r);
		cairn_mount_close(m);
	}
	return end_line(rc);
}

/* ----------------------------------------------------------------- script */

#define SLOTS 16

static struct {
	char name[32];
	cairn_mount *m;
} slots[SLOTS];

static cairn_mount **slot(const char *name, bool create)
{
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].m && !strcmp(slots[i].name, name))
			return &slots[i].m;
	if (!create)
		return NULL;
	for (int i = 0; i < SLOTS; i++)
		if (!slots[i].m) {
			snprintf(slots[i].name, sizeof(slots[i].name), "%s", name);
			return &slots[i].m;
		}
	return NULL;
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int complete = 0, partial = 0;

	if (!d)
		return cairn_error_set(CAIRN_EIO, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		complete += n > 9 && !strcmp(e->d_name + n - 9, ".complete");
		partial += n > 8 && !strcmp(e->d_name + n - 8, ".partial");
	}
	closedir(d);
	printf("complete=%d partial=%d\n", complete, partial);
	return 0;
}

static int expect_stats(char **argv, int argc)
{
	cairn_mount_http_stats s;

	cairn_mount_http_get_stats(http, &s);
	for (int i = 0; i < argc; i++) {
		char key[32];
		unsigned long long want, got;

		if (sscanf(argv[i], "%31[^=]=%llu", key, &want) != 2)
			return cairn_error_set(CAIRN_EINVAL, "expect-stats: bad pair %s", argv[i]);
		if (!strcmp(key, "requests")) got = s.requests;
		else if (!strcmp(key, "retries")) got = s.retries;
		else if (!strcmp(key, "handles")) got = s.handles_created;
		else if (!strcmp(key, "downloads")) got = s.downloads;
		else if (!strcmp(key, "evictions")) got = s.evictions;
		else if (!strcmp(key, "transients")) got = s.transients;
		else if (!strcmp(key, "in_use")) got = s.transients_in_use;
		else if (!strcmp(key, "bytes")) got = s.transient_bytes;
		else return cairn_error_set(CAIRN_EINVAL, "expect-stats: unknown key %s", key);
		if (got != want)
			return cairn_error_set(CAIRN_ERROR, "expect-stats: %s is %llu, not %llu", key, got, want);
	}
	return 0;
}

static int command(char **argv, int argc)
{
	cairn_mount **m;
	int rc;

	if (!argc)
		return 0;
	if (!strcmp(argv[0], "open") && argc == 3) {
		if (!(m = slot(argv[1], true)) || *m)
			return cairn_error_set(CAIRN_EINVAL, "open: slot %s is taken", argv[1]);
		return cairn_mount_open(m, reg, argv[2], &mopts);
	}
	if (!strcmp(argv[0], "close") && argc == 2) {
		if (!(m = slot(argv[1], false)))
			return cairn_error_set(CAIRN_EINVAL, "close: no mount %s", argv[1]);
		cairn_mount_close(*m);
		*m = NULL;
		return 0;
	}
	if (!strcmp(argv[0], "stat") && argc == 2) {
		if (!(m = slot(argv[1], false)))
			return cairn_error_set(CAIRN_EINVAL, "stat: no mount %s", argv[1]);
		return stat_line(*m);
	}
	if (!strcmp(argv[0], "read") && argc == 5) {
		uint64_t off = strtoull(argv[2], NULL, 10);
		size_t n = (size_t)strtoull(argv[3], NULL, 10);
		cairn_buf ref = CAIRN_BUF_INIT;
		uint8_t *buf;

		if (!(m = slot(argv[1], false)))
			return cairn_error_set(CAIRN_EINVAL, "read: no mount %s", argv[1]);
		if ((rc = cairn_file_read_all(&ref, argv[4], (size_t)1 << 31)))
			return rc;
		if (!(buf = malloc(n + 1))) {
			cairn_buf_free(&ref);
			return CAIRN_ENOMEM;
		}
		rc = cairn_mount_read_at(*m, buf, n, off);
		if (!rc && (off + n > ref.len || memcmp(buf, ref.data + off, n)))
			rc = cairn_error_set(CAIRN_ERROR, "read: bytes at %llu differ from %s",
					     (unsigned long long)off, argv[4]);
		free(buf);
		cairn_buf_free(&ref);
		return rc;
	}
	if (!strcmp(argv[0], "gc") && argc == 1) {
		uint64_t freed;

		rc = cairn_mount_http_gc(http, NULL, &freed);
		printf("gc %d %" PRIu64 "\n", rc, freed);
		return rc < 0 ? rc : 0;
	}
	if (!strcmp(argv[0], "truncate") && argc == 3) {
		if (truncate(argv[1], (off_t)strtoull(argv[2], NULL, 10)) < 0)
			return cairn_error_set(CAIRN_EIO, "%s: %s", argv[1], strerror(errno));
		return 0;
	}
	if (!strcmp(argv[0], "files") && argc == 2)
		return count_files(argv[1]);
	if (!strcmp(argv[0], "stats") && argc == 1) {
		print_stats();
		return 0;
	}
	if (!strcmp(argv[0], "expect-stats"))
		return expect_stats(argv + 1, argc - 1);
	if (!strcmp(argv[0], "expect-error") && argc >= 3) {
		int want = code_of(argv[1]);

		if (!want)
			return cairn_error_set(CAIRN_EINVAL, "expect-error: unknown code %s", argv[1]);
		rc = command(argv + 2, argc - 2);
		if (rc == want) {
			printf("expected error %s: %s\n", argv[1], cairn_error_last());
			return 0;
		}
		if (rc)
			return cairn_error_set(CAIRN_ERROR, "expected %s, got %s: %s", argv[1], code_name(rc),
					       cairn_error_last());
		return cairn_error_set(CAIRN_ERROR, "expected %s, and it worked", argv[1]);
	}
	return cairn_error_set(CAIRN_EINVAL, "unknown command or wrong arguments: %s", argv[0]);
}

static int script(void)
{
	char line[4096];
	int lineno = 0, rc = 0;

	while (fgets(line, sizeof(line), stdin)) {
		char *argv[32], *save = NULL, *tok, *hash;
		int argc = 0;

		lineno++;
		if ((hash = strchr(line, '#')))
			*hash = '\0';
		for (tok = strtok_r(line, " \t\r\n", &save); tok && argc < 32;
		     tok = strtok_r(NULL, " \t\r\n", &save))
			argv[argc++] = tok;
		if ((rc = command(argv, argc))) {
			printf("script line %d: ", lineno);
			report(rc);
			break;
		}
	}
	for (int i = 0; i < SLOTS; i++)
		cairn_mount_close(slots[i].m);
	return rc;
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	cairn_mount_http_options ho = CAIRN_MOUNT_HTTP_OPTIONS_INIT;
	sopts so = {false, false, true, 0};
	const char *cmd;
	int i = 1, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--transients"))
			ho.transients_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--budget"))
			ho.transients_max_bytes = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--retries"))
			ho.retries = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--retry-delay"))
			ho.retry_delay_ms = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--fetch"))
			mopts.fetch = !strcmp(argv[i + 1], "never")  ? CAIRN_MOUNT_FETCH_NEVER :
				      !strcmp(argv[i + 1], "always") ? CAIRN_MOUNT_FETCH_ALWAYS :
								       CAIRN_MOUNT_FETCH_AUTO;
		else
			return usage();
	}
	if (i >= argc)
		return usage();
	cmd = argv[i++];
	if (!strcmp(cmd, "sections-ref") || !strcmp(cmd, "sections")) {
		if (i >= argc)
			return usage();
		for (int k = i + 1; k < argc; k++) {
			if (!strcmp(argv[k], "--zero-eof"))
				so.zero = true;
			else if (!strcmp(argv[k], "--trusted"))
				so.trusted = true;
			else if (!strcmp(argv[k], "--no-blocks"))
				so.blocks = false;
			else if (!strcmp(argv[k], "--window") && k + 1 < argc)
				so.window = (size_t)strtoull(argv[++k], NULL, 10);
			else
				return usage();
		}
		if (!strcmp(cmd, "sections-ref"))
			return sections(argv[i], &so, true) ? 1 : 0;
	}
	if ((rc = cairn_mount_registry_new(&reg)) ||
	    (rc = cairn_mount_registry_add(reg, "file", &cairn_mount_file_ops, NULL)) ||
	    (rc = cairn_mount_http_new(&http, &ho)) || (rc = cairn_mount_http_register(http, reg))) {
		report(rc);
		return 1;
	}
	if (!strcmp(cmd, "size") && i + 1 == argc) {
		cairn_mount *m;

		if (!(rc = cairn_mount_open(&m, reg, argv[i], &mopts))) {
			printf("%" PRIu64 "\n", cairn_mount_size(m));
			cairn_mount_close(m);
		} else {
			report(rc);
		}
	} else if (!strcmp(cmd, "stat") && i + 1 == argc) {
		cairn_mount *m;

		if (!(rc = cairn_mount_open(&m, reg, argv[i], &mopts))) {
			rc = stat_line(m);
			cairn_mount_close(m);
		}
		if (rc)
			report(rc);
	} else if (!strcmp(cmd, "cat") && (i + 1 == argc || i + 3 == argc)) {
		cairn_mount *m;

		if (!(rc = cairn_mount_open(&m, reg, argv[i], &mopts))) {
			uint64_t off = i + 3 == argc ? strtoull(argv[i + 1], NULL, 10) : 0;
			uint64_t n = i + 3 == argc ? strtoull(argv[i + 2], NULL, 10) : cairn_mount_size(m);
			uint8_t *buf = malloc(n + 1);

			if (!buf)
				rc = CAIRN_ENOMEM;
			else if (!(rc = cairn_mount_read_at(m, buf, (size_t)n, off)))
				fwrite(buf, 1, (size_t)n, stdout);
			free(buf);
			cairn_mount_close(m);
		}
		if (rc)
			report(rc);
	} else if (!strcmp(cmd, "verify") && i + 2 <= argc && i + 4 >= argc) {
		rc = verify(argv[i], argv[i + 1], i + 2 < argc ? atoi(argv[i + 2]) : 4,
			    i + 3 < argc ? atoi(argv[i + 3]) : 400);
	} else if (!strcmp(cmd, "sections")) {
		rc = sections(argv[i], &so, false);
	} else if (!strcmp(cmd, "script") && i == argc) {
		rc = script();
	} else {
		rc = usage();
		cairn_mount_registry_free(reg);
		cairn_mount_http_free(http);
		return rc;
	}
	cairn_mount_registry_free(reg);
	cairn_mount_http_free(http);
	return rc ? 1 : 0;
}
