/* test_pool.c: unit tests for the thread pool: many jobs all run exactly once,
 * wait blocks until they are done, and free drains, stops and accepts NULL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

static void bump(void *arg)
{
	atomic_fetch_add((atomic_long *)arg, 1);
}

static void test_thousand_jobs(void **state)
{
	cairn_pool *pool = NULL;
	atomic_long counter = 0;

	(void)state;
	assert_int_equal(cairn_pool_new(&pool, 4), 0);
	assert_non_null(pool);
	assert_int_equal(cairn_pool_size(pool), 4);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cairn_pool_submit(pool, bump, &counter), 0);
	cairn_pool_wait(pool);
	assert_int_equal(atomic_load(&counter), 1000);
	/* the pool takes more work after a wait */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cairn_pool_submit(pool, bump, &counter), 0);
	cairn_pool_wait(pool);
	assert_int_equal(atomic_load(&counter), 2000);
	/* waiting with nothing queued returns at once */
	cairn_pool_wait(pool);
	cairn_pool_free(pool);
	assert_int_equal(atomic_load(&counter), 2000);
}

typedef struct {
	atomic_long *counter;
	long index;
	long *slots;
} slot_job;

static void fill_slot(void *arg)
{
	slot_job *j = arg;

	j->slots[j->index] += j->index + 1;
	atomic_fetch_add(j->counter, 1);
}

static void test_each_job_runs_once(void **state)
{
	enum { N = 1000 };
	static slot_job jobs[N];
	static long slots[N];
	atomic_long counter = 0;
	cairn_pool *pool = NULL;

	(void)state;
	memset(slots, 0, sizeof(slots));
	assert_int_equal(cairn_pool_new(&pool, 3), 0);
	for (long i = 0; i < N; i++) {
		jobs[i] = (slot_job){&counter, i, slots};
		assert_int_equal(cairn_pool_submit(pool, fill_slot, &jobs[i]), 0);
	}
	cairn_pool_wait(pool);
	for (long i = 0; i < N; i++)
		assert_int_equal(slots[i], i + 1);
	assert_int_equal(atomic_load(&counter), N);
	cairn_pool_free(pool);
}

static void slow_bump(void *arg)
{
	struct timespec ts = {0, 2000000};

	nanosleep(&ts, NULL);
	atomic_fetch_add((atomic_long *)arg, 1);
}

static void test_free_drains_queue(void **state)
{
	cairn_pool *pool = NULL;
	atomic_long counter = 0;

	(void)state;
	assert_int_equal(cairn_pool_new(&pool, 2), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(cairn_pool_submit(pool, slow_bump, &counter), 0);
	/* free waits for what was queued, without a wait first */
	cairn_pool_free(pool);
	assert_int_equal(atomic_load(&counter), 50);
}

static void test_zero_threads_is_nproc(void **state)
{
	cairn_pool *pool = NULL;
	atomic_long counter = 0;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	assert_int_equal(cairn_pool_new(&pool, 0), 0);
	assert_non_null(pool);
	assert_int_equal(cairn_pool_size(pool), (unsigned)(n > 0 ? n : 1));
	for (int i = 0; i < 100; i++)
		assert_int_equal(cairn_pool_submit(pool, bump, &counter), 0);
	cairn_pool_wait(pool);
	assert_int_equal(atomic_load(&counter), 100);
	cairn_pool_free(pool);
}

static void test_one_thread(void **state)
{
	cairn_pool *pool = NULL;
	atomic_long counter = 0;

	(void)state;
	assert_int_equal(cairn_pool_new(&pool, 1), 0);
	assert_int_equal(cairn_pool_size(pool), 1);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cairn_pool_submit(pool, bump, &counter), 0);
	cairn_pool_wait(pool);
	assert_int_equal(atomic_load(&counter), 1000);
	cairn_pool_free(pool);
}

static void test_free_null_and_limits(void **state)
{
	cairn_pool *pool = (cairn_pool *)&pool;

	(void)state;
	cairn_pool_free(NULL);
	assert_int_equal(cairn_pool_new(&pool, 100000), CAIRN_EINVAL);
	assert_null(pool);
}

static void test_allocation_failures(void **state)
{
	cairn_pool *pool = (cairn_pool *)&pool;
	atomic_long counter = 0;

	(void)state;
	cairn_alloc_fail_after(1, false);
	assert_int_equal(cairn_pool_new(&pool, 2), CAIRN_ENOMEM);
	assert_null(pool);
	assert_int_equal(cairn_pool_new(&pool, 2), 0);
	cairn_alloc_fail_after(1, false);
	assert_int_equal(cairn_pool_submit(pool, bump, &counter), CAIRN_ENOMEM);
	assert_int_equal(cairn_pool_submit(pool, bump, &counter), 0);
	cairn_pool_wait(pool);
	assert_int_equal(atomic_load(&counter), 1);
	cairn_pool_free(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thousand_jobs),
		cmocka_unit_test(test_each_job_runs_once),
		cmocka_unit_test(test_free_drains_queue),
		cmocka_unit_test(test_zero_threads_is_nproc),
		cmocka_unit_test(test_one_thread),
		cmocka_unit_test(test_free_null_and_limits),
		cmocka_unit_test_teardown(test_allocation_failures, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
