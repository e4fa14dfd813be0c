/* test_buf.c: unit tests for the growable byte buffer: appends, formatting,
 * the sticky out-of-memory error, clear, detach and free. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cairn.h"

static int teardown(void **state)
{
	(void)state;
	cairn_alloc_fail_after(-1, false);
	return 0;
}

static void test_append(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	assert_int_equal(cairn_buf_append(&b, "abc", 3), 0);
	assert_int_equal(b.len, 3);
	assert_true(b.cap > b.len);
	assert_string_equal((const char *)b.data, "abc");
	assert_int_equal(cairn_buf_append(&b, "\0x", 2), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "abc\0x", 6);
	/* an empty append leaves the bytes and keeps the NUL */
	assert_int_equal(cairn_buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, 5);
	assert_int_equal(b.data[5], 0);
	assert_int_equal(b.err, 0);
	cairn_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void test_empty_append_allocates_nul(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	assert_int_equal(cairn_buf_append(&b, "", 0), 0);
	assert_non_null(b.data);
	assert_string_equal((const char *)b.data, "");
	cairn_buf_free(&b);
}

static void test_growth(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t chunk[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7);
	for (int i = 0; i < 300; i++)
		assert_int_equal(cairn_buf_append(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 300 * sizeof(chunk));
	assert_true(b.cap > b.len);
	for (int i = 0; i < 300; i++)
		assert_memory_equal(b.data + (size_t)i * sizeof(chunk), chunk, sizeof(chunk));
	assert_int_equal(b.data[b.len], 0);
	cairn_buf_free(&b);
}

static void test_putc(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	/* cross several capacity boundaries one byte at a time */
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(cairn_buf_putc(&b, (uint8_t)('a' + i % 26)), 0);
		assert_int_equal(b.len, (size_t)i + 1);
		assert_int_equal(b.data[b.len], 0);
		assert_true(b.cap > b.len);
	}
	for (int i = 0; i < 1000; i++)
		assert_int_equal(b.data[i], 'a' + i % 26);
	assert_int_equal(cairn_buf_putc(&b, 0), 0);
	assert_int_equal(b.len, 1001);
	assert_int_equal(b.data[1000], 0);
	cairn_buf_free(&b);
}

static void test_puts_printf(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;
	char big[500];

	(void)state;
	assert_int_equal(cairn_buf_puts(&b, "x="), 0);
	assert_int_equal(cairn_buf_printf(&b, "%d,%s,%05.1f", 42, "y", 2.5), 0);
	assert_string_equal((const char *)b.data, "x=42,y,002.5");
	assert_int_equal(b.len, strlen("x=42,y,002.5"));
	assert_int_equal(cairn_buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, strlen("x=42,y,002.5"));
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cairn_buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(b.len, 12 + 2 + 499);
	assert_int_equal(b.data[12], '[');
	assert_int_equal(b.data[12 + 500], ']');
	assert_int_equal(b.data[b.len], 0);
	cairn_buf_free(&b);

	/* printf into a fresh buffer */
	assert_int_equal(cairn_buf_printf(&b, "%llu", 18446744073709551615ull), 0);
	assert_string_equal((const char *)b.data, "18446744073709551615");
	cairn_buf_free(&b);
}

static void test_reserve(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	assert_int_equal(cairn_buf_reserve(&b, 1000), 0);
	assert_true(b.cap >= 1001);
	assert_int_equal(b.len, 0);
	/* an impossible size is refused, and sticks */
	assert_int_equal(cairn_buf_reserve(&b, SIZE_MAX), CAIRN_ENOMEM);
	assert_int_equal(b.err, CAIRN_ENOMEM);
	assert_int_equal(cairn_buf_append(&b, "a", 1), CAIRN_ENOMEM);
	assert_int_equal(b.len, 0);
	cairn_buf_free(&b);
	assert_int_equal(b.err, 0);
}

static void test_sticky_enomem(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	assert_int_equal(cairn_buf_puts(&b, "keep"), 0);
	size_t cap = b.cap;

	/* the next allocation fails, and only that one */
	cairn_alloc_fail_after(1, false);
	uint8_t many[200] = {0};
	assert_int_equal(cairn_buf_append(&b, many, sizeof(many)), CAIRN_ENOMEM);
	assert_int_equal(cairn_error_last_code(), CAIRN_ENOMEM);
	assert_int_equal(b.err, CAIRN_ENOMEM);
	/* the bytes already there are kept */
	assert_int_equal(b.len, 4);
	assert_int_equal(b.cap, cap);
	assert_memory_equal(b.data, "keep", 4);
	/* allocation works again, but the buffer stays failed */
	assert_int_equal(cairn_buf_append(&b, many, sizeof(many)), CAIRN_ENOMEM);
	assert_int_equal(cairn_buf_putc(&b, 'x'), CAIRN_ENOMEM);
	assert_int_equal(cairn_buf_puts(&b, "x"), CAIRN_ENOMEM);
	assert_int_equal(cairn_buf_printf(&b, "%d", 1), CAIRN_ENOMEM);
	assert_int_equal(b.len, 4);
	/* clear resets the error and keeps the memory */
	cairn_buf_clear(&b);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_string_equal((const char *)b.data, "");
	assert_int_equal(cairn_buf_append(&b, many, sizeof(many)), 0);
	assert_int_equal(b.len, sizeof(many));
	cairn_buf_free(&b);
}

static void test_first_allocation_fails(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	cairn_alloc_fail_after(1, true);
	assert_int_equal(cairn_buf_putc(&b, 'a'), CAIRN_ENOMEM);
	assert_null(b.data);
	assert_int_equal(cairn_buf_printf(&b, "%s", "abc"), CAIRN_ENOMEM);
	cairn_alloc_fail_after(-1, false);
	assert_int_equal(b.err, CAIRN_ENOMEM);
	cairn_buf_free(&b);
	assert_int_equal(b.err, 0);
	assert_int_equal(cairn_buf_putc(&b, 'a'), 0);
	assert_string_equal((const char *)b.data, "a");
	cairn_buf_free(&b);
}

static void test_detach(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;
	uint8_t *p;
	size_t len = 99;

	(void)state;
	assert_int_equal(cairn_buf_puts(&b, "hello"), 0);
	p = cairn_buf_detach(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 5);
	assert_string_equal((const char *)p, "hello");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_int_equal(b.err, 0);
	cairn_free(p);
	/* the emptied buffer is usable again */
	assert_int_equal(cairn_buf_puts(&b, "again"), 0);
	p = cairn_buf_detach(&b, NULL);
	assert_string_equal((const char *)p, "again");
	cairn_free(p);
	/* detaching an empty buffer gives NULL and length 0 */
	len = 99;
	p = cairn_buf_detach(&b, &len);
	assert_null(p);
	assert_int_equal(len, 0);
	cairn_free(NULL);
}

static void test_free_is_safe(void **state)
{
	cairn_buf b = CAIRN_BUF_INIT;

	(void)state;
	cairn_buf_free(NULL);
	cairn_buf_free(&b);
	cairn_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(cairn_buf_puts(&b, "x"), 0);
	cairn_buf_free(&b);
	cairn_buf_free(&b);
	assert_null(b.data);
	cairn_buf_clear(&b); /* clear of an empty buffer does not touch data */
	assert_int_equal(b.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_append, teardown),
		cmocka_unit_test_teardown(test_empty_append_allocates_nul, teardown),
		cmocka_unit_test_teardown(test_growth, teardown),
		cmocka_unit_test_teardown(test_putc, teardown),
		cmocka_unit_test_teardown(test_puts_printf, teardown),
		cmocka_unit_test_teardown(test_reserve, teardown),
		cmocka_unit_test_teardown(test_sticky_enomem, teardown),
		cmocka_unit_test_teardown(test_first_allocation_fails, teardown),
		cmocka_unit_test_teardown(test_detach, teardown),
		cmocka_unit_test_teardown(test_free_is_safe, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
