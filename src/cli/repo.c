/* repo.c: the store directory of the command line: where it is, its block
 * store (an LMDB environment in blocks/), and the store as one process
 * owns it: version, lock, cairn.db, dagstore/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo.h"

int cli_repo_path(char *buf, size_t cap, const cli_args *args)
{
	const char *flag = cli_opt_value(args, "repo");
	const char *env = getenv("CAIRN_PATH");
	const char *home = getenv("HOME");
	int n;

	if (flag && flag[0])
		n = snprintf(buf, cap, "%s", flag);
	else if (env && env[0])
		n = snprintf(buf, cap, "%s", env);
	else if (home && home[0])
		n = snprintf(buf, cap, "%s/.cairn", home);
	else
		return cairn_error_set(CAIRN_EINVAL, "no store directory: give --repo or set CAIRN_PATH");
	if (n < 0 || (size_t)n >= cap)
		return cairn_error_set(CAIRN_EINVAL, "store directory path is too long");
	return 0;
}

int cli_repo_blocks_open(cairn_store **out, const char *repo, bool create)
{
	cairn_store_lmdb_options opts = CAIRN_STORE_LMDB_OPTIONS_INIT;
	char dir[4096];
	struct stat st;

	*out = NULL;
	if (snprintf(dir, sizeof(dir), "%s/blocks", repo) >= (int)sizeof(dir))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", repo);
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT)
			return cairn_error_set(CAIRN_EIO, "%s: %s", dir, strerror(errno));
		if (!create)
			return cairn_error_set(CAIRN_ENOTFOUND,
				"%s: no block store here yet (put a block with `cairn block put`, or give --repo)",
				repo);
		if (mkdir(repo, 0700) < 0 && errno != EEXIST)
			return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", repo, strerror(errno));
	}
	return cairn_store_lmdb_open(out, dir, &opts);
}

/* The version file: written once, checked at every open, so a store made by
 * a newer cairn is refused rather than misread. */
static int check_version(const char *repo)
{
	char path[4200], buf[32];
	cairn_buf b = {0};
	long v;
	int rc;

	snprintf(path, sizeof(path), "%s/version", repo);
	rc = cairn_file_read_all(&b, path, 64);
	if (rc == CAIRN_ENOTFOUND) {
		cairn_buf_free(&b);
		cairn_error_clear();
		snprintf(buf, sizeof(buf), "%d\n", CLI_REPO_FORMAT);
		return cairn_file_replace_atomic(path, buf, strlen(buf), 0644);
	}
	if (rc) {
		cairn_buf_free(&b);
		return rc;
	}
	cairn_buf_putc(&b, 0);
	v = strtol((const char *)b.data, NULL, 10);
	cairn_buf_free(&b);
	if (v < 1)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: not a cairn store version", path);
	if (v > CLI_REPO_FORMAT)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
				       "%s: the store has format %ld; this cairn knows %d: upgrade cairn",
				       path, v, CLI_REPO_FORMAT);
	return 0;
}

static int add_sector_mounts(cairn_mount_registry *reg, void *sectors)
{
	return cairn_sector_mount_register(reg, sectors);
}

/* Writer-preferring: a snapshot waiting for the calls under way is not
 * overtaken by new ones. glibc's rwlock holds no resources, so a closed
 * repo needs no destroy, and the next open initializes it again. */
static void init_writes(cli_repo *r)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->writes, &a);
	pthread_rwlockattr_destroy(&a);
}

void cli_repo_write_begin(cli_repo *r)
{
	pthread_rwlock_rdlock(&r->writes);
}

void cli_repo_write_end(cli_repo *r)
{
	pthread_rwlock_unlock(&r->writes);
}

/* The calls first, then the DAG store: a deal import under way may still
 * register its shard, which a paused DAG store would keep waiting. */
int cli_repo_quiesce(cli_repo *r)
{
	int rc;

	pthread_rwlock_wrlock(&r->writes);
	if ((rc = cairn_dagstore_quiesce(r->dagstore, 0)))
		pthread_rwlock_unlock(&r->writes);
	return rc;
}

void cli_repo_resume(cli_repo *r)
{
	cairn_dagstore_resume(r->dagstore);
	pthread_rwlock_unlock(&r->writes);
}

int cli_repo_open(cli_repo *out, const cli_args *args)
{
	cairn_db_options dbo = CAIRN_DB_OPTIONS_INIT;
	cairn_dagstore_options dso = CAIRN_DAGSTORE_OPTIONS_INIT;
	char path[4200];
	int rc;

	memset(out, 0, sizeof(*out));
	out->lock_fd = -1;
	init_writes(out);
	if ((rc = cli_repo_path(out->path, sizeof(out->path), args)))
		return rc;
	if (mkdir(out->path, 0700) < 0 && errno != EEXIST)
		return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", out->path, strerror(errno));
	snprintf(path, sizeof(path), "%s/lock", out->path);
	out->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (out->lock_fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	if (flock(out->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = cairn_error_set(CAIRN_EEXISTS,
				     "%s is in use by another cairn process (a running `cairn serve`, "
				     "or another command): wait for it or stop it", out->path);
		goto fail;
	}
	if ((rc = check_version(out->path)))
		goto fail;
	snprintf(path, sizeof(path), "%s/cairn.db", out->path);
	if ((rc = cairn_db_open(&out->db, path, &dbo)))
		goto fail;
	/* the sector store first: shards read from sectors (sector://,
	 * piece://) must be mountable when the DAG store resumes them */
	if ((rc = cairn_sector_store_open(&out->sectors, out->path, out->db)))
		goto fail;
	dso.add_mounts = add_sector_mounts;
	dso.add_mounts_payload = out->sectors;
	snprintf(path, sizeof(path), "%s/dagstore", out->path);
	if ((rc = cairn_dagstore_open(&out->dagstore, out->db, path, &dso)))
		goto fail;
	/* the deals last: on the first start of a store whose sectors hold
	 * pieces, each becomes a shard (once) */
	if ((rc = cairn_deals_open(&out->deals, out->path, out->db, out->sectors, out->dagstore)))
		goto fail;
	return 0;
fail:
	cli_repo_close(out);
	return rc;
}

void cli_repo_close(cli_repo *r)
{
	cairn_deals_close(r->deals);
	r->deals = NULL;
	cairn_dagstore_close(r->dagstore);
	r->dagstore = NULL;
	cairn_sector_store_close(r->sectors);
	r->sectors = NULL;
	cairn_db_close(r->db);
	r->db = NULL;
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	r->lock_fd = -1;
}

int cli_repo_secret(uint8_t out[CAIRN_SERVE_SECRET_SIZE], const char *repo)
{
	char path[4200];

	if ((size_t)snprintf(path, sizeof(path), "%s/keystore", repo) >= sizeof(path))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", repo);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", path, strerror(errno));
	strcat(path, "/jwt-secret");
	return cairn_serve_secret_load(out, path);
}

int cli_repo_token_write(char *path, size_t cap, const char *repo, const uint8_t *secret)
{
	char *token;
	int rc;

	if ((size_t)snprintf(path, cap, "%s/token", repo) >= cap)
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", repo);
	if ((rc = cairn_serve_token_new(&token, secret, CAIRN_PERM_ALL, 0)))
		return rc;
	rc = cairn_file_replace_atomic(path, token, strlen(token), 0600);
	cairn_free(token);
	return rc;
}
