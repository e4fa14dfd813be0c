/* alloc.c: the one door through which cairn allocates, so tests can make any
 * allocation fail and see that every caller reports CAIRN_ENOMEM cleanly. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cairn/base.h"

/* Countdown to the injected failure; -1 means off. */
static atomic_long fail_countdown = -1;
static atomic_bool fail_sticky;

static bool should_fail(void)
{
	long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);

	if (n < 0)
		return false;
	if (n == 0)
		return true;
	n = atomic_fetch_sub(&fail_countdown, 1) - 1;
	if (n == 0 && !atomic_load(&fail_sticky)) {
		atomic_store(&fail_countdown, -1);
		return true;
	}
	return n == 0;
}

void cairn_alloc_fail_after(long n, bool sticky)
{
	atomic_store(&fail_sticky, sticky);
	atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

static void *oom(void)
{
	/* A fixed message: formatting one must not need memory. */
	cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return NULL;
}

void *cairn_malloc(size_t n)
{
	void *p;

	if (should_fail())
		return oom();
	p = malloc(n ? n : 1);
	return p ? p : oom();
}

void *cairn_calloc(size_t count, size_t size)
{
	void *p;

	if (should_fail())
		return oom();
	p = calloc(count ? count : 1, size ? size : 1);
	return p ? p : oom();
}

void *cairn_calloc_aligned(size_t count, size_t size, size_t align)
{
	void *p;

	if (should_fail())
		return oom();
	if (!count || !size)
		count = size = 1;
	if (count > SIZE_MAX / size || posix_memalign(&p, align, count * size))
		return oom();
	return memset(p, 0, count * size);
}

/* 2 MiB: the huge page of x86-64 and of arm64 with 4 KiB pages. */
#define HUGE_PAGE ((size_t)2 << 20)

void *cairn_malloc_huge(size_t n)
{
	void *p;

	if (should_fail())
		return oom();
	if (n < HUGE_PAGE)
		return (p = malloc(n ? n : 1)) ? p : oom();
	if (posix_memalign(&p, HUGE_PAGE, n))
		return oom();
	/* Advice only: where transparent huge pages are off, or none is free,
	 * the table is in small pages and only slower. */
	(void)madvise(p, n & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
	return p;
}

void *cairn_realloc(void *old, size_t n)
{
	void *p;

	if (should_fail())
		return oom();
	p = realloc(old, n ? n : 1);
	return p ? p : oom();
}

char *cairn_strndup(const char *s, size_t n)
{
	char *p = cairn_malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void cairn_free(void *p)
{
	free(p);
}
