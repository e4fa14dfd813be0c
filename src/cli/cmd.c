/* cmd.c: parsing argv against command tables, generating --help from them,
 * and the options every level accepts (--help, --json, --color, --log-level).
 *
 * Options may come before or after positional arguments; "--" ends them.
 * An option given twice takes its last value, so for the options every
 * level accepts the innermost command's wins ("cairn --color car
 * --color=false ls" is colourless). An explicit --color beats NO_COLOR.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

/* The options every command accepts, listed after its own in --help. */
static const cli_opt common_opts[] = {
	{"json", 0, NULL, "print machine-readable JSON"},
	{"color", 0, "WHEN", "colour output: always, never or auto (default auto; --color alone is always)"},
	{"log-level", 0, "LEVEL", "log error, warn, info, debug or trace to stderr (default warn; env CAIRN_LOG)"},
	{"help", 'h', NULL, "show this help"},
	{NULL, 0, NULL, NULL},
};

int cli_color_parse(cli_color *out, const char *v)
{
	if (!strcmp(v, "always") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = CLI_COLOR_ALWAYS;
	else if (!strcmp(v, "never") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = CLI_COLOR_NEVER;
	else if (!strcmp(v, "auto"))
		*out = CLI_COLOR_AUTO;
	else
		return cairn_error_set(CAIRN_EINVAL,
			"invalid --color value '%s' (use always, never, auto, true or false)", v);
	return 0;
}

static size_t opt_count(const cli_opt *opts)
{
	size_t n = 0;

	while (opts && opts[n].name)
		n++;
	return n;
}

const char *cli_opt_value(const cli_args *args, const char *name)
{
	const cli_opt *opts = args->cmd->opts;

	for (size_t i = 0; opts && opts[i].name; i++)
		if (!strcmp(opts[i].name, name))
			return args->values[i];
	return NULL;
}

bool cli_opt_flag(const cli_args *args, const char *name)
{
	return cli_opt_value(args, name) != NULL;
}

int cli_fail(cli_ctx *ctx, const char *what)
{
	if (what)
		fprintf(ctx->err, "cairn: %s: %s\n", what, cairn_error_last());
	else
		fprintf(ctx->err, "cairn: %s\n", cairn_error_last());
	return CLI_FAILED;
}

int cli_usage_error(cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fprintf(ctx->err, "%s: ", ctx->path);
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	fprintf(ctx->err, "\nRun '%s --help' for usage.\n", ctx->path);
	return CLI_USAGE;
}

void cli_json_string(FILE *out, const char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (c < 0x20)
				fprintf(out, "\\u%04x", c);
			else
				fputc(c, out);
		}
	}
	fputc('"', out);
}

const char *cli_paint(const cli_ctx *ctx, const char *sgr, const char *s, char *buf, size_t cap)
{
	if (!ctx->color)
		return s;
	snprintf(buf, cap, "\033[%sm%s\033[0m", sgr, s);
	return buf;
}

static void print_opts(FILE *f, const cli_opt *opts)
{
	for (size_t i = 0; opts && opts[i].name; i++) {
		char left[64];

		if (opts[i].arg)
			snprintf(left, sizeof(left), "--%s%s%s", opts[i].name,
				 strcmp(opts[i].name, "color") ? " " : "[=", opts[i].arg);
		else
			snprintf(left, sizeof(left), "--%s", opts[i].name);
		if (!strcmp(opts[i].name, "color"))
			strncat(left, "]", sizeof(left) - strlen(left) - 1);
		if (opts[i].short_name)
			fprintf(f, "  -%c, %-24s %s\n", opts[i].short_name, left, opts[i].help);
		else
			fprintf(f, "      %-24s %s\n", left, opts[i].help);
	}
}

static void print_help(const cli_ctx *ctx, const cli_cmd *cmd)
{
	FILE *f = ctx->out;

	if (cmd->subs)
		fprintf(f, "Usage: %s <command> [options]\n", ctx->path);
	else
		fprintf(f, "Usage: %s [options]%s%s\n", ctx->path, cmd->usage ? " " : "",
			cmd->usage ? cmd->usage : "");
	fprintf(f, "\n%s\n", cmd->summary);
	if (cmd->description)
		fprintf(f, "\n%s\n", cmd->description);
	if (cmd->subs) {
		fputs("\nCommands:\n", f);
		int width = 10;

		for (const cli_cmd *const *s = cmd->subs; *s; s++)
			if ((int)strlen((*s)->name) > width)
				width = (int)strlen((*s)->name);
		for (const cli_cmd *const *s = cmd->subs; *s; s++)
			fprintf(f, "  %-*s %s\n", width, (*s)->name, (*s)->summary);
	}
	if (opt_count(cmd->opts)) {
		fputs("\nOptions:\n", f);
		print_opts(f, cmd->opts);
	}
	fputs("\nCommon options (accepted at every level; the innermost wins):\n", f);
	print_opts(f, common_opts);
	if (cmd->subs)
		fprintf(f, "\nRun '%s <command> --help' for more on a command.\n", ctx->path);
}

/* Finds an option by long name (n bytes) or short letter. */
static int find_opt(const cli_opt *opts, const char *name, size_t n, char letter)
{
	for (int i = 0; opts && opts[i].name; i++) {
		if (letter ? opts[i].short_name == letter
			   : strlen(opts[i].name) == n && !strncmp(opts[i].name, name, n))
			return i;
	}
	return -1;
}

/* Applies a common option; returns 1 if `help` was asked, 0, or CLI_USAGE. */
static int apply_common(cli_ctx *ctx, int idx, const char *value)
{
	switch (idx) {
	case 0:
		ctx->json = true;
		return 0;
	case 1:
		if (cli_color_parse(&ctx->color_flag, value ? value : "always"))
			return cli_usage_error(ctx, "%s", cairn_error_last());
		ctx->color_flag_set = true;
		return 0;
	case 2:
		if (cairn_log_level_parse(&ctx->log_level, value))
			return cli_usage_error(ctx, "%s", cairn_error_last());
		ctx->log_level_set = true;
		return 0;
	default:
		return 1;
	}
}

static void resolve_color(cli_ctx *ctx)
{
	const char *no_color = getenv("NO_COLOR");

	if (ctx->color_flag_set && ctx->color_flag != CLI_COLOR_AUTO)
		ctx->color = ctx->color_flag == CLI_COLOR_ALWAYS;
	else if (!ctx->color_flag_set && no_color && no_color[0])
		ctx->color = false;
	else
		ctx->color = isatty(fileno(ctx->out));
}

static void log_to_stderr(cairn_log_level level, const char *msg, void *payload)
{
	fprintf((FILE *)payload, "cairn: %s: %s\n", cairn_log_level_name(level), msg);
}

static int parse(cli_ctx *ctx, const cli_cmd *cmd, cli_args *pargs, int argc, char **argv, int i);

/* Parses argv[i..argc) for `cmd`, descending into subcommands. */
static int dispatch(cli_ctx *ctx, const cli_cmd *cmd, int argc, char **argv, int i)
{
	cli_args args;
	int rc;

	memset(&args, 0, sizeof(args));
	args.cmd = cmd;
	/* Positional arguments are at most what is left of argv. */
	args.argv = cairn_calloc((size_t)(argc - i) + 1, sizeof(char *));
	if (!args.argv) {
		fprintf(ctx->err, "cairn: out of memory\n");
		return CLI_FAILED;
	}
	rc = parse(ctx, cmd, &args, argc, argv, i);
	cairn_free(args.argv);
	return rc;
}

/* The body of dispatch: parses into `args` (whose argv has room) and runs. */
static int parse(cli_ctx *ctx, const cli_cmd *cmd, cli_args *pargs, int argc, char **argv, int i)
{
	cli_args args = *pargs;
	bool options_done = false;
	int rc;


	for (; i < argc; i++) {
		char *a = argv[i];
		const cli_opt *table;
		const char *value = NULL, *eq;
		int idx;
		bool common = false;

		if (options_done || a[0] != '-' || a[1] == '\0') {
			/* A group's first positional names its subcommand; the rest
			 * of argv belongs to it. */
			if (cmd->subs) {
				for (const cli_cmd *const *s = cmd->subs; *s; s++) {
					if (!strcmp((*s)->name, a)) {
						size_t len = strlen(ctx->path);
						snprintf(ctx->path + len, sizeof(ctx->path) - len, " %s", (*s)->name);
						return dispatch(ctx, *s, argc, argv, i + 1);
					}
				}
				return cli_usage_error(ctx, "unknown command '%s'", a);
			}
			args.argv[args.argc++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			options_done = true;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2;
			size_t n;

			eq = strchr(name, '=');
			n = eq ? (size_t)(eq - name) : strlen(name);
			table = cmd->opts;
			idx = find_opt(table, name, n, 0);
			if (idx < 0) {
				table = common_opts;
				idx = find_opt(table, name, n, 0);
				common = true;
			}
			if (idx < 0)
				return cli_usage_error(ctx, "unknown option '--%.*s'", (int)n, name);
			if (eq)
				value = eq + 1;
		} else {
			if (a[2] != '\0')
				return cli_usage_error(ctx, "unknown option '%s' (short options take one letter)", a);
			table = cmd->opts;
			idx = find_opt(table, NULL, 0, a[1]);
			if (idx < 0) {
				table = common_opts;
				idx = find_opt(table, NULL, 0, a[1]);
				common = true;
			}
			if (idx < 0)
				return cli_usage_error(ctx, "unknown option '%s'", a);
		}
		if (table[idx].arg && !value && !(common && idx == 1)) {
			if (i + 1 >= argc)
				return cli_usage_error(ctx, "option '--%s' needs a value (%s)",
						       table[idx].name, table[idx].arg);
			value = argv[++i];
		} else if (!table[idx].arg && value) {
			return cli_usage_error(ctx, "option '--%s' takes no value", table[idx].name);
		}
		if (common) {
			rc = apply_common(ctx, idx, value);
			if (rc == 1)
				ctx->help = true;
			else if (rc)
				return rc;
		} else {
			args.values[idx] = value ? value : "";
		}
	}
	resolve_color(ctx);
	if (ctx->help) {
		print_help(ctx, cmd);
		return CLI_OK;
	}
	if (cmd->subs) {
		print_help(ctx, cmd);
		fprintf(ctx->err, "%s: a command is required\n", ctx->path);
		return CLI_USAGE;
	}
	if (args.argc < cmd->min_args)
		return cli_usage_error(ctx, "%s required", cmd->usage ? cmd->usage : "arguments");
	if (cmd->max_args >= 0 && args.argc > cmd->max_args)
		return cli_usage_error(ctx, "too many arguments (at most %d)", cmd->max_args);
	if (ctx->log_level_set)
		cairn_log_set_level(ctx->log_level);
	return cmd->run(ctx, &args);
}

int cli_main(const cli_cmd *root, int argc, char **argv, FILE *out, FILE *err)
{
	cli_ctx ctx;
	const char *env = getenv("CAIRN_LOG");
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.out = out;
	ctx.err = err;
	snprintf(ctx.path, sizeof(ctx.path), "%s", root->name);
	if (env && env[0]) {
		cairn_log_level level;
		if (cairn_log_level_parse(&level, env))
			fprintf(err, "cairn: warning: ignoring CAIRN_LOG: %s\n", cairn_error_last());
		else
			cairn_log_set_level(level);
	}
	cairn_log_set_sink(log_to_stderr, err);
	rc = dispatch(&ctx, root, argc, argv, 1);
	fflush(out);
	return rc;
}
