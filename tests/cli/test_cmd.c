/* test_cmd.c: the command-line framework: option parsing at every level,
 * --color resolution, --help generation and usage errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"

/* What the leaf command saw, for the tests to check. */
static struct {
	int calls;
	bool color, json;
	int argc;
	char argv[8][64];
	const char *name_value;
	bool flag;
} seen;

static const cli_opt leaf_opts[] = {
	{"name", 'n', "NAME", "a name"},
	{"flag", 'f', NULL, "a flag"},
	{NULL, 0, NULL, NULL},
};

static int run_leaf(cli_ctx *ctx, const cli_args *args)
{
	seen.calls++;
	seen.color = ctx->color;
	seen.json = ctx->json;
	seen.argc = args->argc;
	for (int i = 0; i < args->argc && i < 8; i++)
		snprintf(seen.argv[i], sizeof(seen.argv[i]), "%s", args->argv[i]);
	seen.name_value = cli_opt_value(args, "name");
	seen.flag = cli_opt_flag(args, "flag");
	return CLI_OK;
}

static const cli_cmd leaf = {
	.name = "ls", .summary = "List things.", .usage = "[ARG...]",
	.opts = leaf_opts, .min_args = 0, .max_args = 3, .run = run_leaf,
};
static const cli_cmd *const group_subs[] = {&leaf, NULL};
static const cli_cmd group = {.name = "car", .summary = "CAR things.", .subs = group_subs};
static const cli_cmd *const root_subs[] = {&group, NULL};
static const cli_cmd root = {.name = "cairn", .summary = "Root.", .subs = root_subs};

static char out_text[8192], err_text[8192];

static int run(const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	FILE *out = tmpfile(), *err = tmpfile();
	size_t n;
	int rc;

	argv[argc++] = "cairn";
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	memset(&seen, 0, sizeof(seen));
	rc = cli_main(&root, argc, argv, out, err);
	rewind(out);
	rewind(err);
	n = fread(out_text, 1, sizeof(out_text) - 1, out);
	out_text[n] = '\0';
	n = fread(err_text, 1, sizeof(err_text) - 1, err);
	err_text[n] = '\0';
	fclose(out);
	fclose(err);
	return rc;
}

static void test_color_innermost_wins(void **state)
{
	(void)state;
	unsetenv("NO_COLOR");
	assert_int_equal(run("--color", "car", "--color=false", "ls", NULL), CLI_OK);
	assert_false(seen.color);
	assert_int_equal(run("--color=never", "car", "ls", "--color", NULL), CLI_OK);
	assert_true(seen.color);
	assert_int_equal(run("--color=always", "car", "ls", NULL), CLI_OK);
	assert_true(seen.color);
	assert_int_equal(run("car", "--color=true", "ls", "--color=no", NULL), CLI_OK);
	assert_false(seen.color);
	/* Output is a file, not a terminal: auto means no colour. */
	assert_int_equal(run("car", "ls", "--color=auto", NULL), CLI_OK);
	assert_false(seen.color);
}

static void test_no_color_env(void **state)
{
	(void)state;
	setenv("NO_COLOR", "1", 1);
	assert_int_equal(run("car", "ls", NULL), CLI_OK);
	assert_false(seen.color);
	/* An explicit flag beats NO_COLOR. */
	assert_int_equal(run("car", "ls", "--color", NULL), CLI_OK);
	assert_true(seen.color);
	/* An empty NO_COLOR is no NO_COLOR; still a file, so no colour. */
	setenv("NO_COLOR", "", 1);
	assert_int_equal(run("--color=always", "car", "ls", NULL), CLI_OK);
	assert_true(seen.color);
	unsetenv("NO_COLOR");
}

static void test_bad_color_is_usage_error(void **state)
{
	(void)state;
	assert_int_equal(run("car", "ls", "--color=purple", NULL), CLI_USAGE);
	assert_int_equal(seen.calls, 0);
	assert_non_null(strstr(err_text, "invalid --color value 'purple'"));
	assert_non_null(strstr(err_text, "cairn car ls --help"));
}

static void test_options_and_positionals(void **state)
{
	(void)state;
	assert_int_equal(run("car", "ls", "a", "--name", "x", "b", "-f", NULL), CLI_OK);
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.argc, 2);
	assert_string_equal(seen.argv[0], "a");
	assert_string_equal(seen.argv[1], "b");
	assert_string_equal(seen.name_value, "x");
	assert_true(seen.flag);

	assert_int_equal(run("car", "ls", "--name=y=z", NULL), CLI_OK);
	assert_string_equal(seen.name_value, "y=z");
	assert_false(seen.flag);

	/* After "--" everything is positional, even what looks like an option. */
	assert_int_equal(run("car", "ls", "--", "--flag", "-n", NULL), CLI_OK);
	assert_int_equal(seen.argc, 2);
	assert_string_equal(seen.argv[0], "--flag");
	assert_false(seen.flag);

	/* A lone "-" is an argument (standard input). */
	assert_int_equal(run("car", "ls", "-", NULL), CLI_OK);
	assert_int_equal(seen.argc, 1);
	assert_string_equal(seen.argv[0], "-");

	assert_int_equal(run("car", "--json", "ls", NULL), CLI_OK);
	assert_true(seen.json);
}

static void test_usage_errors(void **state)
{
	(void)state;
	assert_int_equal(run("car", "ls", "--nope", NULL), CLI_USAGE);
	assert_non_null(strstr(err_text, "unknown option '--nope'"));
	assert_int_equal(run("car", "ls", "--name", NULL), CLI_USAGE);
	assert_non_null(strstr(err_text, "needs a value"));
	assert_int_equal(run("car", "ls", "--flag=1", NULL), CLI_USAGE);
	assert_non_null(strstr(err_text, "takes no value"));
	assert_int_equal(run("car", "ls", "1", "2", "3", "4", NULL), CLI_USAGE);
	assert_non_null(strstr(err_text, "too many arguments"));
	assert_int_equal(run("car", "rm", NULL), CLI_USAGE);
	assert_non_null(strstr(err_text, "unknown command 'rm'"));
	assert_int_equal(run("car", NULL), CLI_USAGE);
	assert_non_null(strstr(err_text, "a command is required"));
	assert_int_equal(run("--log-level=loud", "car", "ls", NULL), CLI_USAGE);
	assert_int_equal(run("-xy", NULL), CLI_USAGE);
	assert_int_equal(seen.calls, 0);
}

static void test_help(void **state)
{
	(void)state;
	assert_int_equal(run("car", "ls", "--help", NULL), CLI_OK);
	assert_int_equal(seen.calls, 0);
	assert_non_null(strstr(out_text, "Usage: cairn car ls [options] [ARG...]"));
	assert_non_null(strstr(out_text, "-n, --name NAME"));
	assert_non_null(strstr(out_text, "-f, --flag"));
	assert_non_null(strstr(out_text, "--color[=WHEN]"));
	/* --help before the subcommand shows the subcommand's help. */
	assert_int_equal(run("-h", "car", "ls", NULL), CLI_OK);
	assert_non_null(strstr(out_text, "Usage: cairn car ls"));
	assert_int_equal(run("car", "-h", NULL), CLI_OK);
	assert_non_null(strstr(out_text, "Commands:\n  ls"));
}

static void test_log_level(void **state)
{
	(void)state;
	cairn_log_set_level(CAIRN_LOG_WARN);
	assert_int_equal(run("--log-level", "debug", "car", "ls", NULL), CLI_OK);
	assert_int_equal(cairn_log_get_level(), CAIRN_LOG_DEBUG);
	setenv("CAIRN_LOG", "error", 1);
	assert_int_equal(run("car", "ls", NULL), CLI_OK);
	assert_int_equal(cairn_log_get_level(), CAIRN_LOG_ERROR);
	/* The flag beats the environment. */
	assert_int_equal(run("car", "ls", "--log-level=info", NULL), CLI_OK);
	assert_int_equal(cairn_log_get_level(), CAIRN_LOG_INFO);
	unsetenv("CAIRN_LOG");
}

static void test_json_string(void **state)
{
	FILE *f = tmpfile();
	char text[64];
	size_t n;

	(void)state;
	cli_json_string(f, "a\"b\\c\n\x01", 7);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	assert_string_equal(text, "\"a\\\"b\\\\c\\n\\u0001\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_color_innermost_wins),
		cmocka_unit_test(test_no_color_env),
		cmocka_unit_test(test_bad_color_is_usage_error),
		cmocka_unit_test(test_options_and_positionals),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_json_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
