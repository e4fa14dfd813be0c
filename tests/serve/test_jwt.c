/* test_jwt.c: the JSON-RPC tokens: made and checked as Lotus's HS256 JWTs,
 * refused when forged, tampered, malformed or expired; the secret file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn.h"

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";

static void test_roundtrip(void **state)
{
	unsigned perms;
	char *t;

	(void)state;
	assert_int_equal(cairn_perm_parse(&perms, "write"), 0);
	assert_int_equal(perms, CAIRN_PERM_READ | CAIRN_PERM_WRITE);
	assert_int_equal(cairn_serve_token_new(&t, secret, perms, 0), 0);
	/* Lotus's header and payload, byte for byte */
	assert_memory_equal(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37);
	assert_int_equal(cairn_serve_token_verify(&perms, secret, t, strlen(t), 0), 0);
	assert_int_equal(perms, CAIRN_PERM_READ | CAIRN_PERM_WRITE);
	cairn_free(t);
	assert_int_equal(cairn_perm_parse(&perms, "admin"), 0);
	assert_int_equal(perms, CAIRN_PERM_ALL);
	assert_int_equal(cairn_perm_parse(&perms, "root"), CAIRN_EINVAL);
	assert_string_equal(cairn_perm_name(CAIRN_PERM_SIGN), "sign");
}

static void test_refused(void **state)
{
	uint8_t other[32];
	unsigned perms = 99;
	char *t, *bad;
	size_t n;

	(void)state;
	memcpy(other, secret, 32);
	other[0] ^= 1;
	assert_int_equal(cairn_serve_token_new(&t, secret, CAIRN_PERM_READ, 0), 0);
	n = strlen(t);
	/* another secret */
	assert_int_equal(cairn_serve_token_verify(&perms, other, t, n, 0), CAIRN_ECORRUPT);
	assert_int_equal(perms, 0);
	assert_non_null(strstr(cairn_error_last(), "signature"));
	/* every single-character change is refused */
	bad = strdup(t);
	for (size_t i = 0; i < n; i++) {
		char c = bad[i];

		bad[i] = c == 'A' ? 'B' : 'A';
		assert_int_not_equal(cairn_serve_token_verify(&perms, secret, bad, n, 0), 0);
		bad[i] = c;
	}
	/* cut short, extra part, empty */
	assert_int_not_equal(cairn_serve_token_verify(&perms, secret, t, n - 1, 0), 0);
	assert_int_not_equal(cairn_serve_token_verify(&perms, secret, "a.b.c.d", 7, 0), 0);
	assert_int_not_equal(cairn_serve_token_verify(&perms, secret, "", 0, 0), 0);
	assert_int_not_equal(cairn_serve_token_verify(&perms, secret, "..", 2, 0), 0);
	free(bad);
	cairn_free(t);
	/* expiry */
	assert_int_equal(cairn_serve_token_new(&t, secret, CAIRN_PERM_ALL, 1000), 0);
	assert_int_equal(cairn_serve_token_verify(&perms, secret, t, strlen(t), 999), 0);
	assert_int_equal(perms, CAIRN_PERM_ALL);
	assert_int_equal(cairn_serve_token_verify(&perms, secret, t, strlen(t), 1000), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "expired"));
	cairn_free(t);
	/* no permissions, or unknown bits: not a token to make */
	assert_int_equal(cairn_serve_token_new(&t, secret, 0, 0), CAIRN_EINVAL);
	assert_int_equal(cairn_serve_token_new(&t, secret, 16, 0), CAIRN_EINVAL);
}

static void test_secret_file(void **state)
{
	char dir[] = "/tmp/cairn-jwt-XXXXXX", path[64];
	uint8_t a[32], b[32];
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/jwt-secret", dir);
	assert_int_equal(cairn_serve_secret_load(a, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 32);
	assert_int_equal(cairn_serve_secret_load(b, path), 0);
	assert_memory_equal(a, b, 32);
	/* a file of the wrong size is refused, not used */
	assert_int_equal(truncate(path, 31), 0);
	assert_int_equal(cairn_serve_secret_load(b, path), CAIRN_ECORRUPT);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_secret_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
