/* test_misc.c: unit tests for the small parts of base: error messages and
 * codes, allocation failure injection, logging, the progress bar and the clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	cairn_log_set_sink(NULL, NULL);
	cairn_log_set_level(CAIRN_LOG_WARN);
	cairn_error_clear();
	return 0;
}

/* ---------------------------------------------------------------- errors */

static void test_error_set_and_clear(void **state)
{
	(void)state;
	cairn_error_clear();
	assert_int_equal(cairn_error_last_code(), 0);
	assert_string_equal(cairn_error_last(), "no error");
	assert_int_equal(cairn_error_set(CAIRN_ECORRUPT, "x.car: at byte %d: %s", 9, "bad"),
			 CAIRN_ECORRUPT);
	assert_int_equal(cairn_error_last_code(), CAIRN_ECORRUPT);
	assert_string_equal(cairn_error_last(), "x.car: at byte 9: bad");
	assert_int_equal(cairn_error_set(CAIRN_EIO, "second"), CAIRN_EIO);
	assert_string_equal(cairn_error_last(), "second");
	assert_int_equal(cairn_error_last_code(), CAIRN_EIO);
	cairn_error_clear();
	assert_int_equal(cairn_error_last_code(), 0);
	assert_string_equal(cairn_error_last(), "no error");
}

static void test_error_prefix(void **state)
{
	(void)state;
	cairn_error_set(CAIRN_ECORRUPT, "at byte 9: truncated");
	assert_int_equal(cairn_error_prefix("%s: ", "x.car"), CAIRN_ECORRUPT);
	assert_string_equal(cairn_error_last(), "x.car: at byte 9: truncated");
	assert_int_equal(cairn_error_prefix("open %d: ", 2), CAIRN_ECORRUPT);
	assert_string_equal(cairn_error_last(), "open 2: x.car: at byte 9: truncated");
	assert_int_equal(cairn_error_last_code(), CAIRN_ECORRUPT);
}

static void test_error_long_message(void **state)
{
	char big[3000];
	const char *m;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cairn_error_set(CAIRN_ETOOBIG, "%s", big), CAIRN_ETOOBIG);
	m = cairn_error_last();
	assert_true(strlen(m) > 100);
	assert_true(strlen(m) < sizeof(big) - 1);
	assert_int_equal(m[0], 'a');
	/* a prefix on a full buffer truncates instead of overflowing */
	assert_int_equal(cairn_error_prefix("%s", big), CAIRN_ETOOBIG);
	assert_true(strlen(cairn_error_last()) < sizeof(big) - 1);
	cairn_error_set(CAIRN_EINVAL, "short");
	assert_int_equal(cairn_error_prefix("%s", big), CAIRN_EINVAL);
	assert_true(strlen(cairn_error_last()) < sizeof(big) - 1);
}

static void test_error_names(void **state)
{
	static const struct {
		int code;
		const char *name;
	} names[] = {
		{CAIRN_OK, "success"},
		{CAIRN_ERROR, "failed"},
		{CAIRN_ENOMEM, "out of memory"},
		{CAIRN_EINVAL, "invalid argument"},
		{CAIRN_ECORRUPT, "corrupt input"},
		{CAIRN_ENOTFOUND, "not found"},
		{CAIRN_EIO, "input/output error"},
		{CAIRN_EMISMATCH, "hash mismatch"},
		{CAIRN_ETOOBIG, "too big"},
		{CAIRN_EUNSUPPORTED, "not supported"},
		{CAIRN_EEXISTS, "already exists"},
		{CAIRN_ECANCELED, "canceled"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(cairn_error_name(names[i].code), names[i].name);
	assert_string_equal(cairn_error_name(-12), "unknown error");
	assert_string_equal(cairn_error_name(5), "unknown error");
}

static void *other_thread(void *arg)
{
	char *out = arg;

	/* a fresh thread starts with no error */
	snprintf(out, 64, "%s|%d", cairn_error_last(), cairn_error_last_code());
	cairn_error_set(CAIRN_EIO, "from the other thread");
	return NULL;
}

static void test_error_is_per_thread(void **state)
{
	pthread_t t;
	char seen[64] = {0};

	(void)state;
	cairn_error_set(CAIRN_EMISMATCH, "main thread");
	assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "no error|0");
	assert_string_equal(cairn_error_last(), "main thread");
	assert_int_equal(cairn_error_last_code(), CAIRN_EMISMATCH);
}

/* ----------------------------------------------------------- allocation */

static void test_alloc_fail_after(void **state)
{
	void *a, *b, *c, *d;

	(void)state;
	cairn_alloc_fail_after(3, false);
	a = cairn_malloc(10);
	b = cairn_calloc(2, 8);
	cairn_error_clear();
	c = cairn_malloc(10);
	d = cairn_malloc(10);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(c);
	assert_non_null(d);
	assert_int_equal(cairn_error_last_code(), CAIRN_ENOMEM);
	assert_string_equal(cairn_error_last(), "out of memory");
	for (int i = 0; i < 16; i++)
		assert_int_equal(((uint8_t *)b)[i], 0);
	cairn_free(a);
	cairn_free(b);
	cairn_free(d);
}

static void test_alloc_fail_sticky(void **state)
{
	void *a, *p;

	(void)state;
	cairn_alloc_fail_after(2, true);
	a = cairn_malloc(1);
	assert_non_null(a);
	for (int i = 0; i < 5; i++) {
		assert_null(cairn_malloc(1));
		assert_null(cairn_calloc(1, 1));
		assert_null(cairn_strndup("abc", 3));
	}
	/* a failed realloc leaves the old block alone */
	p = cairn_realloc(a, 1000);
	assert_null(p);
	cairn_alloc_fail_after(-1, false);
	p = cairn_realloc(a, 1000);
	assert_non_null(p);
	cairn_free(p);
}

static void test_alloc_each_kind(void **state)
{
	char *s;
	uint8_t *p;

	(void)state;
	/* zero sizes still give a pointer that can be freed */
	p = cairn_malloc(0);
	assert_non_null(p);
	cairn_free(p);
	p = cairn_calloc(0, 0);
	assert_non_null(p);
	cairn_free(p);
	s = cairn_strndup("hello world", 5);
	assert_non_null(s);
	assert_string_equal(s, "hello");
	cairn_free(s);
	cairn_alloc_fail_after(1, false);
	assert_null(cairn_realloc(NULL, 10));
	p = cairn_realloc(NULL, 10);
	assert_non_null(p);
	cairn_free(p);
	cairn_free(NULL);
	/* aligned: on the boundary asked for, zeroed, and failing as the rest */
	for (size_t align = 8; align <= 4096; align *= 8) {
		p = cairn_calloc_aligned(3, 200, align);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % align, 0);
		for (size_t i = 0; i < 600; i++)
			assert_int_equal(p[i], 0);
		cairn_free(p);
	}
	p = cairn_calloc_aligned(0, 0, 64);
	assert_non_null(p);
	cairn_free(p);
	assert_null(cairn_calloc_aligned(SIZE_MAX / 2, 4, 64));
	assert_int_equal(cairn_error_last_code(), CAIRN_ENOMEM);
	cairn_alloc_fail_after(1, false);
	assert_null(cairn_calloc_aligned(1, 64, 64));
}

/* The "THPeligible" line of the mapping in /proc/self/smaps that holds
 * `p`: 1 when the kernel may back it with huge pages; -1 when unknown. */
static int thp_eligible(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && sscanf(line, "THPeligible: %d", &v) == 1)
			break;
	}
	fclose(f);
	return v;
}

/* Transparent huge pages on ("always" or "madvise"): only then is the
 * advice visible. */
static bool thp_enabled(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128] = "";
	bool on;

	if (!f)
		return false;
	on = fgets(line, sizeof(line), f) && !strstr(line, "[never]");
	fclose(f);
	return on;
}

static void test_malloc_huge(void **state)
{
	const size_t big = (size_t)9 << 20;
	uint8_t *p;

	(void)state;
	/* small: plain memory, usable */
	p = cairn_malloc_huge(100);
	assert_non_null(p);
	memset(p, 1, 100);
	cairn_free(p);
	/* large: on a 2 MiB boundary, every byte writable, and advised */
	p = cairn_malloc_huge(big);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % ((size_t)2 << 20), 0);
	memset(p, 7, big);
	assert_int_equal(p[big - 1], 7);
	if (thp_enabled())
		assert_int_equal(thp_eligible(p), 1);
	else
		print_message("transparent huge pages off: the advice is not checked\n");
	cairn_free(p);
	/* failing as every allocation does, and counted once, small or large */
	cairn_alloc_fail_after(2, false);
	p = cairn_malloc_huge(100);
	assert_non_null(p);
	cairn_free(p);
	assert_null(cairn_malloc_huge(100));
	cairn_alloc_fail_after(1, false);
	assert_null(cairn_malloc_huge(big));
	assert_int_equal(cairn_error_last_code(), CAIRN_ENOMEM);
}

/* --------------------------------------------------------------- logging */

typedef struct {
	int count;
	cairn_log_level last_level;
	char last[2048];
	void *payload_seen;
} sink_state;

static void capture(cairn_log_level level, const char *msg, void *payload)
{
	sink_state *s = payload;

	s->count++;
	s->last_level = level;
	s->payload_seen = payload;
	snprintf(s->last, sizeof(s->last), "%s", msg);
}

static void test_log_level_parse(void **state)
{
	static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
	cairn_log_level l = CAIRN_LOG_TRACE;

	(void)state;
	for (int i = 0; i <= CAIRN_LOG_TRACE; i++) {
		char digit[2] = {(char)('0' + i), 0};

		l = (cairn_log_level)(4 - i);
		assert_int_equal(cairn_log_level_parse(&l, names[i]), 0);
		assert_int_equal(l, i);
		l = (cairn_log_level)(4 - i);
		assert_int_equal(cairn_log_level_parse(&l, digit), 0);
		assert_int_equal(l, i);
		assert_string_equal(cairn_log_level_name((cairn_log_level)i), names[i]);
	}
	assert_int_equal(cairn_log_level_parse(&l, "warning"), 0);
	assert_int_equal(l, CAIRN_LOG_WARN);
	l = CAIRN_LOG_DEBUG;
	assert_int_equal(cairn_log_level_parse(&l, "verbose"), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "verbose"));
	assert_int_equal(cairn_log_level_parse(&l, "5"), CAIRN_EINVAL);
	assert_int_equal(cairn_log_level_parse(&l, "00"), CAIRN_EINVAL);
	assert_int_equal(cairn_log_level_parse(&l, ""), CAIRN_EINVAL);
	assert_int_equal(cairn_log_level_parse(&l, "ERROR"), CAIRN_EINVAL);
	assert_int_equal(l, CAIRN_LOG_DEBUG);
	assert_string_equal(cairn_log_level_name((cairn_log_level)7), "unknown");
}

static void test_log_sink(void **state)
{
	sink_state s;

	(void)state;
	memset(&s, 0, sizeof(s));
	/* without a sink, lines are dropped */
	cairn_log(CAIRN_LOG_ERROR, "nobody hears this");
	cairn_log_set_sink(capture, &s);
	cairn_log_set_level(CAIRN_LOG_INFO);
	assert_int_equal(cairn_log_get_level(), CAIRN_LOG_INFO);
	assert_true(cairn_log_enabled(CAIRN_LOG_INFO));
	assert_false(cairn_log_enabled(CAIRN_LOG_DEBUG));

	cairn_log(CAIRN_LOG_WARN, "shard %s: %d blocks", "abc", 7);
	assert_int_equal(s.count, 1);
	assert_int_equal(s.last_level, CAIRN_LOG_WARN);
	assert_string_equal(s.last, "shard abc: 7 blocks");
	assert_ptr_equal(s.payload_seen, &s);
	cairn_log(CAIRN_LOG_INFO, "info");
	assert_int_equal(s.count, 2);
	assert_int_equal(s.last_level, CAIRN_LOG_INFO);
	/* below the level: dropped */
	cairn_log(CAIRN_LOG_DEBUG, "debug");
	cairn_log(CAIRN_LOG_TRACE, "trace");
	assert_int_equal(s.count, 2);
	assert_string_equal(s.last, "info");

	cairn_log_set_level(CAIRN_LOG_TRACE);
	cairn_log(CAIRN_LOG_TRACE, "trace");
	assert_int_equal(s.count, 3);
	cairn_log_set_level(CAIRN_LOG_ERROR);
	cairn_log(CAIRN_LOG_WARN, "warn");
	assert_int_equal(s.count, 3);
	cairn_log(CAIRN_LOG_ERROR, "error");
	assert_int_equal(s.count, 4);

	/* a very long line is cut, never overflows */
	{
		char big[4000];

		memset(big, 'z', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		cairn_log(CAIRN_LOG_ERROR, "%s", big);
		assert_int_equal(s.count, 5);
		assert_true(strlen(s.last) > 500);
		assert_true(strlen(s.last) < sizeof(big) - 1);
	}

	cairn_log_set_sink(NULL, NULL);
	cairn_log(CAIRN_LOG_ERROR, "dropped");
	assert_int_equal(s.count, 5);
}

/* -------------------------------------------------------------- progress */

/* Everything written to the pipe so far (the write end must be closed). */
static size_t drain(int fd, char *out, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < cap && (r = read(fd, out + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	return n;
}

static void test_progress_forced_on_pipe(void **state)
{
	cairn_progress p;
	int fds[2];
	char out[4096];
	const char *first, *last;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	cairn_progress_start(&p, fds[1], true, "copy", 100);
	assert_true(p.active);
	assert_int_equal(p.total, 100);
	cairn_progress_update(&p, 50);
	assert_int_equal(p.done, 50);
	/* within 100 ms of the last draw: no redraw */
	cairn_progress_update(&p, 60);
	assert_int_equal(p.done, 60);
	cairn_progress_update(&p, 100);
	cairn_progress_finish(&p);
	assert_false(p.active);
	close(fds[1]);
	assert_true(drain(fds[0], out, sizeof(out)) > 0);
	close(fds[0]);

	first = strstr(out, "\rcopy [###############---------------]  50%");
	assert_non_null(first);
	assert_ptr_equal(first, out);
	last = strstr(out + 1, "\rcopy [##############################] 100%");
	assert_non_null(last);
	assert_null(strstr(out, " 60%"));
	assert_non_null(strstr(out, "\033[K"));
	assert_non_null(strstr(out, "/s)"));
	/* exactly two draws, the last ending the line */
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	{
		int draws = 0;

		for (const char *c = out; *c; c++)
			draws += *c == '\r';
		assert_int_equal(draws, 2);
	}
}

static void test_progress_redraws_after_interval(void **state)
{
	cairn_progress p;
	int fds[2];
	char out[4096];
	struct timespec ts = {0, 120000000};

	(void)state;
	assert_int_equal(pipe(fds), 0);
	cairn_progress_start(&p, fds[1], true, "x", 10);
	cairn_progress_update(&p, 1);
	nanosleep(&ts, NULL);
	cairn_progress_update(&p, 2);
	/* past the total: the bar stays full */
	nanosleep(&ts, NULL);
	cairn_progress_update(&p, 25);
	close(fds[1]);
	drain(fds[0], out, sizeof(out));
	close(fds[0]);
	assert_non_null(strstr(out, "\rx [###---------------------------]  10%"));
	assert_non_null(strstr(out, "\rx [######------------------------]  20%"));
	assert_non_null(strstr(out, "\rx [##############################] 100%"));
	assert_null(strchr(out, '\n'));
}

static void test_progress_unknown_total(void **state)
{
	cairn_progress p;
	int fds[2];
	char out[4096];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	cairn_progress_start(&p, fds[1], true, NULL, 0);
	cairn_progress_update(&p, 1500);
	cairn_progress_finish(&p);
	close(fds[1]);
	drain(fds[0], out, sizeof(out));
	close(fds[0]);
	/* a count and a rate, no bar */
	assert_non_null(strstr(out, "\r 1.5k ("));
	assert_null(strchr(out, '#'));
	assert_null(strchr(out, '%'));
	assert_int_equal(out[strlen(out) - 1], '\n');
}

static void test_progress_silent_when_not_forced(void **state)
{
	cairn_progress p;
	int fds[2];
	char out[256];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	/* a pipe is not a terminal */
	cairn_progress_start(&p, fds[1], false, "quiet", 10);
	assert_false(p.active);
	cairn_progress_update(&p, 5);
	cairn_progress_finish(&p);
	close(fds[1]);
	assert_int_equal(drain(fds[0], out, sizeof(out)), 0);
	close(fds[0]);
	assert_int_equal(p.done, 5);
}

static void test_time_ns_monotonic(void **state)
{
	struct timespec ts = {0, 5000000};
	uint64_t a, b, c;

	(void)state;
	a = cairn_time_ns();
	b = cairn_time_ns();
	assert_true(a > 0);
	assert_true(b >= a);
	for (int i = 0; i < 1000; i++) {
		c = cairn_time_ns();
		assert_true(c >= b);
		b = c;
	}
	nanosleep(&ts, NULL);
	c = cairn_time_ns();
	assert_true(c - a >= 5000000);
	/* and not absurdly more (a minute) */
	assert_true(c - a < 60ull * 1000000000ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_error_set_and_clear, teardown),
		cmocka_unit_test_teardown(test_error_prefix, teardown),
		cmocka_unit_test_teardown(test_error_long_message, teardown),
		cmocka_unit_test_teardown(test_error_names, teardown),
		cmocka_unit_test_teardown(test_error_is_per_thread, teardown),
		cmocka_unit_test_teardown(test_alloc_fail_after, teardown),
		cmocka_unit_test_teardown(test_alloc_fail_sticky, teardown),
		cmocka_unit_test_teardown(test_alloc_each_kind, teardown),
		cmocka_unit_test_teardown(test_malloc_huge, teardown),
		cmocka_unit_test_teardown(test_log_level_parse, teardown),
		cmocka_unit_test_teardown(test_log_sink, teardown),
		cmocka_unit_test_teardown(test_progress_forced_on_pipe, teardown),
		cmocka_unit_test_teardown(test_progress_redraws_after_interval, teardown),
		cmocka_unit_test_teardown(test_progress_unknown_total, teardown),
		cmocka_unit_test_teardown(test_progress_silent_when_not_forced, teardown),
		cmocka_unit_test_teardown(test_time_ns_monotonic, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
