/* cmd_snapshot.c: `cairn snapshot`: copy-on-write snapshots of the store
 * (create, list, rm), clones that open as stores of their own, rollback.
 * With `cairn serve` running, create and list go through it (its
 * Cairn.Snapshot* methods, below), which pauses its own writers. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "repo.h"

static const char *human(char *buf, size_t cap, uint64_t n)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* Says who holds the store, before an operation that needs it free: a
 * running `cairn serve` is named by its api file and the lock's pid. */
static int check_free(cli_ctx *ctx, const char *what, const char *repo, const char *hint)
{
	char api[4200], pidtxt[32] = "";
	struct stat st;
	long pid = 0;

	if (cairn_snapshot_store_holder(&pid, repo))
		return cli_fail(ctx, what);
	if (pid == 0)
		return CLI_OK;
	if (pid > 0)
		snprintf(pidtxt, sizeof(pidtxt), " (pid %ld)", pid);
	snprintf(api, sizeof(api), "%s/api", repo);
	if (stat(api, &st) == 0)
		fprintf(ctx->err, "cairn: %s: the store %s is in use by a running `cairn serve`%s; "
			"stop it %s\n", what, repo, pidtxt, hint);
	else
		fprintf(ctx->err, "cairn: %s: the store %s is in use by another cairn process%s; "
			"wait for it or stop it %s\n", what, repo, pidtxt, hint);
	return CLI_FAILED;
}

static void print_report(cli_ctx *ctx, const char *verb, const cairn_snapshot_report *r)
{
	char shared[32], copied[32];

	human(shared, sizeof(shared), r->bytes_by[CAIRN_SNAPSHOT_REFLINK] +
		      r->bytes_by[CAIRN_SNAPSHOT_HARDLINK]);
	human(copied, sizeof(copied), r->bytes_copied);
	if (ctx->json) {
		fprintf(ctx->out, "{\"%s\":", verb);
		cli_json_string(ctx->out, r->name, strlen(r->name));
		fputs(",\"path\":", ctx->out);
		cli_json_string(ctx->out, r->path, strlen(r->path));
		fprintf(ctx->out, ",\"fs\":\"%s\",\"files\":%llu,\"dirs\":%llu", r->fs,
			(unsigned long long)r->files, (unsigned long long)r->dirs);
		for (int m = 0; m < CAIRN_SNAPSHOT_METHODS; m++)
			fprintf(ctx->out, ",\"%s\":{\"files\":%llu,\"bytes\":%llu}",
				cairn_snapshot_method_name((cairn_snapshot_method)m),
				(unsigned long long)r->files_by[m], (unsigned long long)r->bytes_by[m]);
		fprintf(ctx->out, ",\"bytes_shared\":%llu,\"bytes_copied\":%llu,\"skipped\":%llu,"
			"\"pruned\":%u,\"pause_ms\":%.3f,\"sync_ms\":%.3f,\"total_ms\":%.3f}\n",
			(unsigned long long)(r->bytes_by[CAIRN_SNAPSHOT_REFLINK] +
					     r->bytes_by[CAIRN_SNAPSHOT_HARDLINK]),
			(unsigned long long)r->bytes_copied, (unsigned long long)r->skipped, r->pruned,
			ms(r->pause_ns), ms(r->sync_ns), ms(r->total_ns));
		return;
	}
	fprintf(ctx->out, "%s %s: %s\n", verb, r->name, r->path);
	fprintf(ctx->out, "  %llu files on %s: %llu reflinked, %llu hard-linked, %llu copied\n",
		(unsigned long long)r->files, r->fs,
		(unsigned long long)r->files_by[CAIRN_SNAPSHOT_REFLINK],
		(unsigned long long)r->files_by[CAIRN_SNAPSHOT_HARDLINK],
		(unsigned long long)r->files_by[CAIRN_SNAPSHOT_COPY]);
	fprintf(ctx->out, "  bytes shared %s, copied %s\n", shared, copied);
	if (r->skipped)
		fprintf(ctx->out, "  left out: %llu (see the warnings)\n", (unsigned long long)r->skipped);
	if (r->pruned)
		fprintf(ctx->out, "  rolling snapshots removed: %u\n", r->pruned);
	fprintf(ctx->out, "  writers paused %.1f ms, sync %.1f ms, total %.1f ms\n",
		ms(r->pause_ns), ms(r->sync_ns), ms(r->total_ns));
}

static void set_opts(cairn_snapshot_options *o, const cli_args *args)
{
	/* --no-reflink forces copies: no shared extents and no shared inodes. */
	o->no_reflink = cli_opt_flag(args, "no-reflink");
	o->no_hardlink = o->no_reflink;
}

/* ------------------------------------------------- through the daemon
 *
 * The daemon owns the store (its lock, its database, its DAG store), so it
 * takes the snapshot itself: Cairn.SnapshotCreate [name, keep, no_reflink]
 * (admin) pauses the store's writers through cli_repo_quiesce (the calls
 * that change it, and the DAG store) for the clone loop and checkpoints its database; Cairn.SnapshotList []
 * (read). Results are JSON objects with the report's fields, times in
 * nanoseconds (integers: no float parsing on the way back); the command
 * prints them as it prints its own. Restore has no method: a rollback
 * swaps the store's directory, which needs the daemon stopped. */

static const char *const method_keys[CAIRN_SNAPSHOT_METHODS] = {"Reflink", "Hardlink", "Copy"};

static void report_json(cairn_buf *b, const cairn_snapshot_report *r)
{
	cairn_buf_puts(b, "{\"Name\":");
	cli_daemon_json_str(b, r->name);
	cairn_buf_puts(b, ",\"Path\":");
	cli_daemon_json_str(b, r->path);
	cairn_buf_puts(b, ",\"Fs\":");
	cli_daemon_json_str(b, r->fs);
	cairn_buf_printf(b, ",\"Files\":%llu,\"Dirs\":%llu", (unsigned long long)r->files,
			 (unsigned long long)r->dirs);
	for (int m = 0; m < CAIRN_SNAPSHOT_METHODS; m++)
		cairn_buf_printf(b, ",\"%sFiles\":%llu,\"%sBytes\":%llu", method_keys[m],
				 (unsigned long long)r->files_by[m], method_keys[m],
				 (unsigned long long)r->bytes_by[m]);
	cairn_buf_printf(b, ",\"BytesCopied\":%llu,\"Skipped\":%llu,\"Pruned\":%u,"
			 "\"PauseNs\":%llu,\"SyncNs\":%llu,\"TotalNs\":%llu}",
			 (unsigned long long)r->bytes_copied, (unsigned long long)r->skipped, r->pruned,
			 (unsigned long long)r->pause_ns, (unsigned long long)r->sync_ns,
			 (unsigned long long)r->total_ns);
}

static int report_from(cairn_snapshot_report *r, cli_daemon *d, const cairn_node *o)
{
	const char *name = o ? cli_daemon_str(d, o, "Name") : NULL;
	const char *path = o ? cli_daemon_str(d, o, "Path") : NULL;
	const char *fs = o ? cli_daemon_str(d, o, "Fs") : NULL;
	char key[32];

	memset(r, 0, sizeof(*r));
	if (!name || !path || !fs)
		return cairn_error_set(CAIRN_EIO, "the daemon's snapshot report is not what cairn sends");
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->path, sizeof(r->path), "%s", path);
	snprintf(r->fs, sizeof(r->fs), "%s", fs);
	r->files = cli_daemon_uint(o, "Files");
	r->dirs = cli_daemon_uint(o, "Dirs");
	for (int m = 0; m < CAIRN_SNAPSHOT_METHODS; m++) {
		snprintf(key, sizeof(key), "%sFiles", method_keys[m]);
		r->files_by[m] = cli_daemon_uint(o, key);
		snprintf(key, sizeof(key), "%sBytes", method_keys[m]);
		r->bytes_by[m] = cli_daemon_uint(o, key);
	}
	r->bytes_copied = cli_daemon_uint(o, "BytesCopied");
	r->skipped = cli_daemon_uint(o, "Skipped");
	r->pruned = (unsigned)cli_daemon_uint(o, "Pruned");
	r->pause_ns = cli_daemon_uint(o, "PauseNs");
	r->sync_ns = cli_daemon_uint(o, "SyncNs");
	r->total_ns = cli_daemon_uint(o, "TotalNs");
	return 0;
}

static int daemon_quiesce(void *payload)
{
	return cli_repo_quiesce(payload);
}

static void daemon_resume(void *payload)
{
	cli_repo_resume(payload);
}

int cli_snapshot_rpc_create(cairn_buf *result, const cairn_node *params, void *payload)
{
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;
	cairn_snapshot_report rep;
	cli_repo *r = payload;
	size_t np = params->kind == CAIRN_KIND_LIST ? params->v.list.len : 0;
	const cairn_node *p = np ? params->v.list.items : NULL;
	char name[CAIRN_SNAPSHOT_NAME_MAX + 1];
	bool named = false;
	int rc;

	if (np > 0 && p[0].kind == CAIRN_KIND_STRING) {
		if (p[0].v.bytes.len > CAIRN_SNAPSHOT_NAME_MAX ||
		    memchr(p[0].v.bytes.ptr, 0, p[0].v.bytes.len))
			return cairn_error_set(CAIRN_EINVAL, "not a snapshot name (letters, digits, "
					       "'.', '_' and '-', not starting with '.', at most "
					       "%d bytes)", CAIRN_SNAPSHOT_NAME_MAX);
		memcpy(name, p[0].v.bytes.ptr, p[0].v.bytes.len);
		name[p[0].v.bytes.len] = 0;
		named = true;
	} else if (np > 0 && p[0].kind != CAIRN_KIND_NULL) {
		return cairn_error_set(CAIRN_EINVAL, "param 1: a snapshot name or null");
	}
	if (np > 1 && p[1].kind == CAIRN_KIND_INT && !p[1].v.i.neg && p[1].v.i.mag <= 100000)
		o.keep = (unsigned)p[1].v.i.mag;
	else if (np > 1 && p[1].kind != CAIRN_KIND_NULL)
		return cairn_error_set(CAIRN_EINVAL, "param 2: a count of snapshots to keep "
				       "(0 to 100000) or null");
	if (np > 2 && p[2].kind == CAIRN_KIND_BOOL)
		o.no_reflink = o.no_hardlink = p[2].v.b;
	else if (np > 2 && p[2].kind != CAIRN_KIND_NULL)
		return cairn_error_set(CAIRN_EINVAL, "param 3: no_reflink, true or false");
	/* The daemon holds the lock and has the database open: its DAG store
	 * is paused for the clone loop, the database checkpointed meanwhile. */
	o.lock_held = true;
	o.db = r->db;
	o.quiesce = daemon_quiesce;
	o.resume = daemon_resume;
	o.payload = r;
	if ((rc = cairn_snapshot_create(&rep, r->path, named ? name : NULL, &o)))
		return rc;
	cairn_log(CAIRN_LOG_INFO, "snapshot %s: %llu files, writers paused %.1f ms, total %.1f ms",
		  rep.name, (unsigned long long)rep.files, ms(rep.pause_ns), ms(rep.total_ns));
	report_json(result, &rep);
	return result->err;
}

int cli_snapshot_rpc_list(cairn_buf *result, const cairn_node *params, void *payload)
{
	cairn_snapshot_info *list = NULL;
	cli_repo *r = payload;
	size_t n = 0;
	int rc;

	(void)params;
	if ((rc = cairn_snapshot_list(&list, &n, r->path)))
		return rc;
	cairn_buf_putc(result, '[');
	for (size_t i = 0; i < n; i++) {
		const cairn_snapshot_info *s = &list[i];

		cairn_buf_puts(result, i ? ",{\"Name\":" : "{\"Name\":");
		cli_daemon_json_str(result, s->name);
		cairn_buf_printf(result, ",\"Complete\":%s,\"Rolling\":%s,\"Created\":%lld,"
				 "\"Files\":%llu,\"Bytes\":%llu,\"ReflinkFiles\":%llu,"
				 "\"HardlinkFiles\":%llu,\"CopyFiles\":%llu,\"PauseNs\":%llu}",
				 s->complete ? "true" : "false", s->rolling ? "true" : "false",
				 (long long)s->created, (unsigned long long)s->files,
				 (unsigned long long)s->bytes, (unsigned long long)s->files_by[0],
				 (unsigned long long)s->files_by[1], (unsigned long long)s->files_by[2],
				 (unsigned long long)s->pause_ns);
	}
	cairn_buf_putc(result, ']');
	cairn_snapshot_list_free(list);
	return result->err;
}

static bool node_true(const cairn_node *obj, const char *key)
{
	const cairn_node *n = cairn_node_map_get(obj, key);

	return n && n->kind == CAIRN_KIND_BOOL && n->v.b;
}

static int create_rpc(cli_ctx *ctx, const cli_args *args, cli_daemon *d,
		      const cairn_snapshot_options *o)
{
	cairn_buf p = CAIRN_BUF_INIT;
	cairn_snapshot_report rep;
	const cairn_node *res;
	int rc;

	cairn_buf_putc(&p, '[');
	if (args->argc)
		cli_daemon_json_str(&p, args->argv[0]);
	else
		cairn_buf_puts(&p, "null");
	cairn_buf_printf(&p, ",%u,%s]", o->keep, o->no_reflink ? "true" : "false");
	rc = p.err ? p.err : cli_daemon_call(&res, d, "Cairn.SnapshotCreate", (const char *)p.data);
	cairn_buf_free(&p);
	if (rc || report_from(&rep, d, res))
		return cli_fail(ctx, "snapshot create");
	print_report(ctx, "snapshot", &rep);
	return CLI_OK;
}

/* ---------------------------------------------------------------- create */

static int run_create(cli_ctx *ctx, const cli_args *args)
{
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;
	cairn_db_options dbo = CAIRN_DB_OPTIONS_INIT;
	cairn_snapshot_report rep;
	const char *keep = cli_opt_value(args, "keep");
	char repo[4096], dbpath[4200];
	struct stat st;
	cairn_db *db = NULL;
	cli_store s;
	int rc;

	if (keep) {
		char *end;
		long k = strtol(keep, &end, 10);

		if (*end || k < 1 || k > 100000)
			return cli_usage_error(ctx, "--keep must be a count of snapshots (1 or more), "
					       "not '%s'", keep);
		o.keep = (unsigned)k;
	}
	set_opts(&o, args);
	if (cli_repo_path(repo, sizeof(repo), args))
		return cli_fail(ctx, "snapshot create");
	/* A running `cairn serve` takes it, pausing its own writers. */
	if (cli_store_open(&s, ctx, args, "snapshot create", CLI_STORE_PATH))
		return CLI_FAILED;
	if (s.remote) {
		rc = create_rpc(ctx, args, &s.d, &o);
		cli_store_close(&s);
		return rc;
	}
	cli_store_close(&s); /* it held nothing: the store is checked free below */
	if ((rc = check_free(ctx, "snapshot create", repo, "and run this again")))
		return rc;
	/* The database is opened only to checkpoint it: its log copied into
	 * cairn.db, so the snapshot opens without recovery. */
	snprintf(dbpath, sizeof(dbpath), "%s/cairn.db", repo);
	if (stat(dbpath, &st) == 0 && cairn_db_open(&db, dbpath, &dbo))
		return cli_fail(ctx, "snapshot create");
	o.db = db;
	rc = cairn_snapshot_create(&rep, repo, args->argc ? args->argv[0] : NULL, &o);
	cairn_db_close(db);
	if (rc)
		return cli_fail(ctx, "snapshot create");
	print_report(ctx, "snapshot", &rep);
	return CLI_OK;
}

/* ------------------------------------------------------------------ list */

static void print_list(cli_ctx *ctx, const cairn_snapshot_info *list, size_t n)
{
	char when[32], size[32];

	if (!ctx->json && n)
		fprintf(ctx->out, "%-24s %-20s %8s %10s %8s %8s %8s %s\n", "NAME", "CREATED (UTC)",
			"FILES", "SIZE", "REFLINK", "HARDLINK", "COPY", "");
	for (size_t i = 0; i < n; i++) {
		const cairn_snapshot_info *s = &list[i];
		time_t t = (time_t)s->created;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (ctx->json) {
			fputs("{\"name\":", ctx->out);
			cli_json_string(ctx->out, s->name, strlen(s->name));
			fprintf(ctx->out, ",\"complete\":%s,\"rolling\":%s,\"created\":%lld,"
				"\"files\":%llu,\"bytes\":%llu,\"reflink\":%llu,\"hardlink\":%llu,"
				"\"copy\":%llu,\"pause_ms\":%.3f}\n", s->complete ? "true" : "false",
				s->rolling ? "true" : "false", (long long)s->created,
				(unsigned long long)s->files, (unsigned long long)s->bytes,
				(unsigned long long)s->files_by[0], (unsigned long long)s->files_by[1],
				(unsigned long long)s->files_by[2], ms(s->pause_ns));
			continue;
		}
		if (!s->complete) {
			fprintf(ctx->out, "%-24s damaged: no whole manifest (cairn snapshot rm %s)\n",
				s->name, s->name);
			continue;
		}
		fprintf(ctx->out, "%-24s %-20s %8llu %10s %8llu %8llu %8llu %s\n", s->name, when,
			(unsigned long long)s->files, human(size, sizeof(size), s->bytes),
			(unsigned long long)s->files_by[0], (unsigned long long)s->files_by[1],
			(unsigned long long)s->files_by[2], s->rolling ? "rolling" : "");
	}
}

static int list_rpc(cli_ctx *ctx, cli_daemon *d)
{
	cairn_snapshot_info *list = NULL;
	const cairn_node *res;
	size_t n;

	if (cli_daemon_call(&res, d, "Cairn.SnapshotList", "[]"))
		return cli_fail(ctx, "snapshot list");
	if (res->kind != CAIRN_KIND_LIST) {
		cairn_error_set(CAIRN_EIO, "the daemon's snapshot list is not what cairn sends");
		return cli_fail(ctx, "snapshot list");
	}
	n = res->v.list.len;
	if (n && !(list = cairn_calloc(n, sizeof(*list))))
		return cli_fail(ctx, "snapshot list");
	for (size_t i = 0; i < n; i++) {
		const cairn_node *o = &res->v.list.items[i];
		const char *name = cli_daemon_str(d, o, "Name");
		cairn_snapshot_info *s = &list[i];

		snprintf(s->name, sizeof(s->name), "%s", name ? name : "?");
		s->complete = node_true(o, "Complete");
		s->rolling = node_true(o, "Rolling");
		s->created = (int64_t)cli_daemon_uint(o, "Created");
		s->files = cli_daemon_uint(o, "Files");
		s->bytes = cli_daemon_uint(o, "Bytes");
		for (int m = 0; m < CAIRN_SNAPSHOT_METHODS; m++) {
			char key[32];

			snprintf(key, sizeof(key), "%sFiles", method_keys[m]);
			s->files_by[m] = cli_daemon_uint(o, key);
		}
		s->pause_ns = cli_daemon_uint(o, "PauseNs");
	}
	print_list(ctx, list, n);
	cairn_free(list);
	return CLI_OK;
}

/* Reads the snapshots directory, which needs no lock; through the daemon
 * when one runs all the same, so a remote CAIRN_API_INFO works. */
static int run_list(cli_ctx *ctx, const cli_args *args)
{
	cairn_snapshot_info *list = NULL;
	size_t n = 0;
	cli_store s;
	int rc = CLI_OK;

	if (cli_store_open(&s, ctx, args, "snapshot list", CLI_STORE_PATH))
		return CLI_FAILED;
	if (s.remote) {
		rc = list_rpc(ctx, &s.d);
	} else if (cairn_snapshot_list(&list, &n, s.r.path)) {
		rc = cli_fail(ctx, "snapshot list");
	} else {
		print_list(ctx, list, n);
		cairn_snapshot_list_free(list);
	}
	cli_store_close(&s);
	return rc;
}

/* ------------------------------------------------------------------- rm */

static int run_rm(cli_ctx *ctx, const cli_args *args)
{
	char repo[4096];
	int rc = CLI_OK;

	if (cli_repo_path(repo, sizeof(repo), args))
		return cli_fail(ctx, "snapshot rm");
	for (int i = 0; i < args->argc; i++) {
		if (cairn_snapshot_remove(repo, args->argv[i]))
			rc = cli_fail(ctx, "snapshot rm");
		else if (!ctx->json)
			fprintf(ctx->out, "removed %s\n", args->argv[i]);
	}
	return rc;
}

/* --------------------------------------------------------------- restore */

static int run_restore(cli_ctx *ctx, const cli_args *args)
{
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;
	cairn_snapshot_report rep;
	char repo[4096];
	int rc;

	set_opts(&o, args);
	if (cli_repo_path(repo, sizeof(repo), args))
		return cli_fail(ctx, "snapshot restore");
	if ((rc = check_free(ctx, "snapshot restore", repo,
			     "first: a rollback replaces the store under it")))
		return rc;
	if (cairn_snapshot_restore(&rep, repo, args->argv[0], &o))
		return cli_fail(ctx, "snapshot restore");
	print_report(ctx, "restored", &rep);
	return CLI_OK;
}

/* ----------------------------------------------------------------- clone */

/* Runs argv with CAIRN_PATH set to the clone and returns its exit status
 * (128 + the signal that ended it). Like system(), the parent ignores
 * SIGINT and SIGQUIT meanwhile, so ^C stops the command and the clone is
 * still removed. */
static int run_in(cli_ctx *ctx, const char *path, char **argv)
{
	struct sigaction ign = {0}, oint, oquit;
	int status = 0;
	pid_t pid;

	fflush(ctx->out);
	fflush(ctx->err);
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &oint);
	sigaction(SIGQUIT, &ign, &oquit);
	pid = fork();
	if (pid == 0) {
		sigaction(SIGINT, &oint, NULL);
		sigaction(SIGQUIT, &oquit, NULL);
		setenv("CAIRN_PATH", path, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "cairn: snapshot clone: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		fprintf(ctx->err, "cairn: snapshot clone: fork: %s\n", strerror(errno));
		status = CLI_FAILED << 8;
	} else {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	sigaction(SIGINT, &oint, NULL);
	sigaction(SIGQUIT, &oquit, NULL);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int run_clone(cli_ctx *ctx, const cli_args *args)
{
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;
	cairn_snapshot_ephemeral *e = NULL;
	cairn_snapshot_report rep;
	char repo[4096];
	int rc;

	set_opts(&o, args);
	if (cli_repo_path(repo, sizeof(repo), args))
		return cli_fail(ctx, "snapshot clone");
	if (!cli_opt_flag(args, "ephemeral")) {
		if (args->argc != 2)
			return cli_usage_error(ctx, "give a snapshot and a new directory "
					       "(or --ephemeral -- COMMAND...)");
		if (cairn_snapshot_clone(&rep, repo, args->argv[0], args->argv[1], &o))
			return cli_fail(ctx, "snapshot clone");
		print_report(ctx, "clone", &rep);
		return CLI_OK;
	}
	if (args->argc < 2)
		return cli_usage_error(ctx, "--ephemeral runs a command in the clone: "
				       "cairn snapshot clone NAME --ephemeral -- COMMAND [ARGS...]");
	if (cairn_snapshot_clone_ephemeral(&e, &rep, repo, args->argv[0], &o))
		return cli_fail(ctx, "snapshot clone");
	cairn_log(CAIRN_LOG_INFO, "ephemeral clone of %s at %s", args->argv[0],
		  cairn_snapshot_ephemeral_path(e));
	rc = run_in(ctx, cairn_snapshot_ephemeral_path(e), args->argv + 1);
	if (cairn_snapshot_ephemeral_free(e)) {
		cli_fail(ctx, "snapshot clone: removing the ephemeral clone");
		if (!rc)
			rc = CLI_FAILED;
	}
	return rc;
}

/* ----------------------------------------------------------------- table */

static const cli_opt create_opts[] = {
	CLI_OPT_REPO,
	{"keep", 'k', "N", "a rolling snapshot: keep only the N newest rolling snapshots"},
	{"no-reflink", 0, NULL, "copy every byte: no reflinks and no hard links"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt copy_opts[] = {
	CLI_OPT_REPO,
	{"no-reflink", 0, NULL, "copy every byte: no reflinks and no hard links"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt clone_opts[] = {
	CLI_OPT_REPO,
	{"ephemeral", 'e', NULL, "run COMMAND with CAIRN_PATH set to a clone, then remove it"},
	{"no-reflink", 0, NULL, "copy every byte: no reflinks and no hard links"},
	{NULL, 0, NULL, NULL},
};

static const cli_opt repo_opts[] = {
	CLI_OPT_REPO,
	{NULL, 0, NULL, NULL},
};

static const cli_cmd create_cmd = {
	.name = "create",
	.summary = "Snapshot the store (reflinks where the filesystem has them).",
	.usage = "[NAME]",
	.description =
		"Writes <store>.snapshots/NAME (default: the UTC time, 20260903-101112).\n"
		"Each file is cloned with FICLONE (btrfs, XFS with reflink=1: extents shared,\n"
		"nothing copied); where that is not supported, shard indexes and top-level\n"
		"index runs, which cairn never rewrites, are hard-linked (and made read-only)\n"
		"and other files copied extent by extent, holes kept. The manifest is written\n"
		"last and the snapshot published by one rename: a crash leaves none or a\n"
		"whole one. With `cairn serve` running, it is taken through the daemon,\n"
		"which pauses its writers for the cloning (reads go on). Prints the bytes\n"
		"shared and copied and how long writers were paused. Example:\n"
		"  cairn snapshot create before-upgrade\n"
		"  cairn snapshot create --keep 7        # a rolling daily snapshot",
	.opts = create_opts,
	.min_args = 0,
	.max_args = 1,
	.run = run_create,
};

static const cli_cmd list_cmd = {
	.name = "list",
	.summary = "List the store's snapshots, oldest first.",
	.description = "Works while the store is in use (through `cairn serve` when it runs).\n"
		       "A snapshot without a whole manifest is shown as damaged.",
	.opts = repo_opts,
	.max_args = 0,
	.run = run_list,
};

static const cli_cmd restore_cmd = {
	.name = "restore",
	.summary = "Roll the store back to a snapshot (the snapshot stays).",
	.usage = "NAME",
	.description =
		"Clones the snapshot beside the store and swaps the two in one\n"
		"renameat2(RENAME_EXCHANGE), so there is always a whole store; the old\n"
		"contents are then deleted. Refused while the store is in use (stop\n"
		"`cairn serve` first: the store is replaced under it). Example:\n"
		"  cairn snapshot restore before-upgrade",
	.opts = copy_opts,
	.min_args = 1,
	.max_args = 1,
	.run = run_restore,
};

static const cli_cmd clone_cmd = {
	.name = "clone",
	.summary = "Make a store of its own from a snapshot.",
	.usage = "NAME DIR | NAME --ephemeral -- COMMAND [ARGS...]",
	.description =
		"The clone opens as it is (cairn --repo DIR ...): nothing is indexed or hashed\n"
		"again. On the snapshot's filesystem it shares the snapshot's extents;\n"
		"elsewhere the files are copied. With --ephemeral the clone is made beside\n"
		"the snapshots, COMMAND runs with CAIRN_PATH set to it, and the clone is\n"
		"removed when COMMAND exits (or, if cairn is killed, by the next snapshot\n"
		"command); the exit status is COMMAND's. Example:\n"
		"  cairn snapshot clone nightly --ephemeral -- cairn dagstore list-shards",
	.opts = clone_opts,
	.min_args = 2,
	.max_args = -1,
	.run = run_clone,
};

static const cli_cmd rm_cmd = {
	.name = "rm",
	.summary = "Remove snapshots.",
	.usage = "NAME...",
	.opts = repo_opts,
	.min_args = 1,
	.max_args = -1,
	.run = run_rm,
};

static const cli_cmd *const snapshot_subs[] = {
	&clone_cmd, &create_cmd, &list_cmd, &restore_cmd, &rm_cmd, NULL,
};

const cli_cmd cli_snapshot_cmd = {
	.name = "snapshot",
	.summary = "Snapshot, clone and roll back the store (copy-on-write).",
	.description = "Snapshots live beside the store, in <store>.snapshots/, on the same\n"
		       "filesystem. Linux only.",
	.subs = snapshot_subs,
};
