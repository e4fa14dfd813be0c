/* cmd.h: the command-line framework: commands and their options as tables
 * that drive both parsing and --help, with the options every level accepts. */
#ifndef CAIRN_CLI_CMD_H
#define CAIRN_CLI_CMD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cairn.h"

/* Exit statuses, as git and go-car's car use them. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

#define CLI_MAX_OPTS 32

typedef struct cli_opt {
	const char *name;  /* long name, without "--" */
	char short_name;   /* 0 for none */
	const char *arg;   /* metavariable for an option with a value; NULL for a flag */
	const char *help;
} cli_opt;

typedef struct cli_ctx cli_ctx;
typedef struct cli_cmd cli_cmd;

/* What parsing produced: the options seen and the positional arguments. */
typedef struct cli_args {
	const cli_cmd *cmd;
	const char *values[CLI_MAX_OPTS]; /* by index in cmd->opts; "" for a flag seen */
	int argc;
	char **argv;                      /* positional arguments only */
} cli_args;

struct cli_cmd {
	const char *name;
	const char *summary;      /* one line, for the parent's list */
	const char *usage;        /* positional part: "CID..." */
	const char *description;  /* paragraphs for --help; may be NULL */
	const cli_opt *opts;      /* terminated by {NULL}; may be NULL */
	int min_args, max_args;   /* max_args < 0: unlimited */
	int (*run)(cli_ctx *ctx, const cli_args *args);
	const cli_cmd *const *subs; /* a group: NULL-terminated; run is NULL */
};

typedef enum { CLI_COLOR_AUTO, CLI_COLOR_ALWAYS, CLI_COLOR_NEVER } cli_color;

struct cli_ctx {
	FILE *out;
	FILE *err;
	bool json;
	cli_color color_flag;    /* from --color flags; AUTO when none given */
	bool color_flag_set;
	bool color;              /* resolved: flag, then NO_COLOR, then isatty */
	cairn_log_level log_level;
	bool log_level_set;
	bool help;               /* --help seen at this level or above */
	char path[256];          /* "cairn cid inspect", for messages */
};

/* Parses argv (argv[0] is the program) against the table rooted at `root`
 * and runs the command found. Returns the exit status. */
int cli_main(const cli_cmd *root, int argc, char **argv, FILE *out, FILE *err);

/* The value of option `name`, or NULL if it was not given. */
const char *cli_opt_value(const cli_args *args, const char *name);
bool cli_opt_flag(const cli_args *args, const char *name);

/* Prints "cairn: <what>: <cairn_error_last()>" and returns CLI_FAILED. */
int cli_fail(cli_ctx *ctx, const char *what);
/* Prints "<path>: <message>" and a pointer to --help; returns CLI_USAGE. */
int cli_usage_error(cli_ctx *ctx, const char *fmt, ...) CAIRN_PRINTF(2, 3);

/* Writes `s` as a JSON string literal (quotes and escapes). */
void cli_json_string(FILE *out, const char *s, size_t n);

/* Wraps `s` in an ANSI colour when colour is on ("1" bold, "32" green...). */
const char *cli_paint(const cli_ctx *ctx, const char *sgr, const char *s, char *buf, size_t cap);

/* Resolves --color[=WHEN] values; CAIRN_EINVAL for an unknown one. */
int cli_color_parse(cli_color *out, const char *value);

/* ------------------------------------------------ output files (io.c)
 *
 * A file written under a temporary name beside it, fsynced and renamed into
 * place by cli_out_commit, so a failed or killed command leaves the old
 * file or none, never half of one. With `stream`, "-" is standard output
 * and an existing device or pipe (/dev/null, a FIFO) is written in place:
 * a rename would replace it with a regular file. */
typedef struct cli_out {
	char tmp[PATH_MAX];  /* "" when there is none */
	const char *path;    /* for messages */
	int fd;
	bool in_place;       /* standard output or a device: no rename */
	bool own_fd;         /* ours to close */
} cli_out;

/* `ctx` is used only with `stream`, and may be NULL otherwise. */
int cli_out_open(cli_ctx *ctx, cli_out *o, const char *path, bool stream);
/* Closes the descriptor and gives the temporary name to a writer that
 * opens the file itself (not for streams). */
const char *cli_out_release(cli_out *o);
int cli_out_commit(cli_out *o);
/* Removes the temporary file; after a commit it does nothing. */
void cli_out_abort(cli_out *o);
/* Writes `data` as the whole of `path`, through a temporary name. */
int cli_out_write_file(const char *path, const void *data, size_t n);

/* ------------------------------------------- exports (cmd_export.c)
 *
 * What `cairn export` and `cairn chain export-range` share: where the
 * blocks come from (--from CAR [--trusted], else --repo), the bounds on the
 * work (--workers, --memory), and the run itself, which SIGINT and SIGTERM
 * cancel so that no half-written CAR is left. */

/* --workers and --memory into `opts`, which keeps its values for an option
 * not given. CLI_OK, or the usage status after the message. */
int cli_export_limits(cli_ctx *ctx, cairn_export_options *opts, const cli_args *args);
/* --from with --repo, or --trusted without --from: CLI_USAGE after the
 * message; else CLI_OK. */
int cli_export_source_check(cli_ctx *ctx, const cli_args *args);
/* Opens the store the blocks come from: the CAR of --from (hashes checked
 * unless --trusted), else the blocks of the repo. 0 or a negative code,
 * with the message set, for cli_fail. */
int cli_export_source_open(cairn_store **out, const cli_args *args);
/* An export's progress bar, on standard error when it is a terminal. */
typedef struct cli_export_ui {
	cairn_progress progress;
	const char *name;
	bool bytes;
	char label[64];  /* the bar's label, rewritten as the bytes grow */
} cli_export_ui;
/* Starts the bar, labelled "<name> blocks" or, with `bytes`, "<name>
 * [<bytes written>] blocks", and points opts->progress at it. `ui` must
 * outlive the export and `name` the bar; cairn_progress_finish ends it. */
void cli_export_progress_start(cli_export_ui *ui, cairn_export_options *opts, const char *name,
			       bool bytes);
/* One export as a command runs it: `what` names it in messages ("export"),
 * `opts` and `store` are the caller's to fill, `stats` cli_export_run's. */
typedef struct cli_export_job {
	const char *what;
	cairn_export_options opts;
	cairn_store *store;        /* freed by cli_export_job_free */
	cairn_export_stats stats;
	cli_export_ui ui;          /* cli_export_progress_start(&ui, &opts, ...) */
} cli_export_job;
/* Exports the DAG below `roots` out of job->store into `path`, with
 * SIGINT and SIGTERM cancelling it (their handlers are put back after),
 * then ends the progress bar. CLI_OK, or CLI_FAILED after the message:
 * "cairn: <what>: ..." when the export cannot start, "cairn: <path>: ..."
 * when it fails (and there is no CAR at `path`). */
int cli_export_run(cli_ctx *ctx, cli_export_job *job, const cairn_cid *roots, size_t nroots,
		   const char *path);
void cli_export_job_free(cli_export_job *job);

/* A byte count: digits with an optional binary suffix (KiB, MiB, GiB, TiB,
 * case-insensitive). CAIRN_EINVAL otherwise, with no message set. */
int cli_parse_size(uint64_t *out, const char *s);

#endif
