/* snapshot.c: snapshots of a store directory, clones, rollback and rolling
 * snapshots: the locks, the manifest, and the order of the steps.
 *
 * Layout beside a store S (same parent, so the same filesystem):
 *   S.snapshots/.lock               flock: one snapshot operation at a time
 *   S.snapshots/NAME/               a snapshot: S's files + snapshot.manifest
 *   S.snapshots/.tmp-NAME/          a snapshot being made
 *   S.snapshots/.restore-PID/       a rollback: the new tree, then the old
 *   S.snapshots/.rm-NAME/           a snapshot being removed
 *   S.snapshots/.ephemeral-NAME-PID/ an ephemeral clone; its `.ephemeral`
 *                                   file is held (flock) by its owner
 * Every dot-name but .lock is garbage once its operation is gone: the next
 * operation removes it first, under .lock (so never one in progress), and
 * an ephemeral clone only when neither its marker nor its store lock is
 * held.
 *
 * Manifest (text, one record a line, written last into the temporary
 * directory, so a snapshot without "end" was never published):
 *   cairn-snapshot 1
 *   name NAME
 *   created UNIX_SECONDS
 *   rolling 0|1
 *   fs btrfs
 *   pause_ns N
 *   files N dirs N bytes N reflink N hardlink N copy N copied N
 *   d MODE PATH                     a directory (octal mode)
 *   f MODE SIZE METHOD PATH         a file and how it was made
 *   l PATH                          a symbolic link
 *   x PATH                          another filesystem, left out
 *   end
 *
 * Steps of create, each a place to crash (CAIRN_SNAPSHOT_CRASH_AT) that
 * leaves no snapshot or a whole one, and the store as it was:
 *   create-begin     locks taken, leftovers removed
 *   create-tmpdir    .tmp-NAME made
 *   create-file      the first file cloned
 *   create-cloned    every file cloned, writers still paused
 *   create-manifest  manifest written
 *   create-synced    syncfs and fsync of .tmp-NAME done
 *   create-renamed   published as NAME, parent fsynced
 *   create-pruned    rolling snapshots beyond --keep removed
 * Steps of restore (old store or new one, never a mix, never none):
 *   restore-begin    the store's lock taken
 *   restore-file     the first file cloned into .restore-PID
 *   restore-cloned   the snapshot cloned into .restore-PID
 *   restore-synced   .restore-PID synced
 *   restore-exchanged  renameat2(RENAME_EXCHANGE) done, parents fsynced
 *   restore-removed  the old tree deleted
 * And rm-renamed, clone-file, clone-cloned, clone-renamed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform.h"
#include "snapshot_i.h"

#define MANIFEST_MAX (256u << 20)
#define COPY_BUF (1u << 20)

const char *cairn_snapshot_method_name(cairn_snapshot_method method)
{
	switch (method) {
	case CAIRN_SNAPSHOT_REFLINK: return "reflink";
	case CAIRN_SNAPSHOT_HARDLINK: return "hardlink";
	case CAIRN_SNAPSHOT_COPY: return "copy";
	}
	return "unknown";
}

void cairn_snapshot__crash_point(const char *step)
{
	const char *at = getenv("CAIRN_SNAPSHOT_CRASH_AT");

	if (at && !strcmp(at, step))
		kill(getpid(), SIGKILL);
}

/* snprintf for paths and names, whose truncation is an error to report
 * rather than a path to act on. */
static int fmt(char *buf, size_t cap, const char *f, ...) CAIRN_PRINTF(3, 4);
static int fmt(char *buf, size_t cap, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, cap, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", buf);
	return 0;
}

static int sys_error(const char *what, const char *path, int e)
{
	if (e == ENOSPC || e == EDQUOT)
		return cairn_error_set(CAIRN_EIO, "%s: %s: %s (the filesystem is full)", path, what,
				       strerror(e));
	return cairn_error_set(CAIRN_EIO, "%s: %s: %s", path, what, strerror(e));
}

static int check_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > CAIRN_SNAPSHOT_NAME_MAX || name[0] == '.')
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			goto bad;
	}
	return 0;
bad:
	return cairn_error_set(CAIRN_EINVAL, "'%s': not a snapshot name (letters, digits, '.', "
			       "'_' and '-', not starting with '.', at most %d bytes)",
			       name ? name : "", CAIRN_SNAPSHOT_NAME_MAX);
}

/* ------------------------------------------------------------ the places */

/* A store as the snapshot functions see it: its canonical path, its
 * parent and base name (for the swap), its snapshots directory. */
typedef struct place {
	char store[PATH_MAX];
	char parent[PATH_MAX];
	char base[NAME_MAX + 1];
	char snapdir[PATH_MAX + 16];
	int snapfd;               /* the snapshots directory */
	int snaplock;             /* its .lock, held LOCK_EX */
	int storelock;            /* the store's lock, when taken */
	dev_t dev;
} place;

static void place_close(place *p)
{
	if (p->storelock >= 0)
		close(p->storelock);
	if (p->snaplock >= 0)
		close(p->snaplock);
	if (p->snapfd >= 0)
		close(p->snapfd);
	p->storelock = p->snaplock = p->snapfd = -1;
}

static int place_resolve(place *p, const char *store)
{
	char path[PATH_MAX + 16];
	const char *slash;
	struct stat st;

	memset(p, 0, sizeof(*p));
	p->snapfd = p->snaplock = p->storelock = -1;
	if (!store || !store[0])
		return cairn_error_set(CAIRN_EINVAL, "no store directory given");
	if (!realpath(store, p->store))
		return errno == ENOENT
			? cairn_error_set(CAIRN_ENOTFOUND, "%s: no such store directory", store)
			: sys_error("resolve", store, errno);
	snprintf(path, sizeof(path), "%s/version", p->store);
	if (stat(path, &st) < 0)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: not a cairn store (no version file)",
				       store);
	p->dev = st.st_dev;
	slash = strrchr(p->store, '/');
	if (!slash || !slash[1])
		return cairn_error_set(CAIRN_EINVAL, "%s: the root directory cannot be a store", store);
	snprintf(p->parent, sizeof(p->parent), "%.*s", slash == p->store ? 1 : (int)(slash - p->store),
		 p->store);
	snprintf(p->base, sizeof(p->base), "%s", slash + 1);
	if ((size_t)snprintf(p->snapdir, sizeof(p->snapdir), "%s.snapshots", p->store) >=
	    sizeof(p->snapdir))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", p->store);
	return 0;
}

/* Opens (creating) the snapshots directory and takes its .lock. */
static int place_open(place *p, bool create)
{
	struct stat st;

	p->snapfd = open(p->snapdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->snapfd < 0 && errno == ENOENT && create) {
		if (mkdir(p->snapdir, 0700) < 0 && errno != EEXIST)
			return sys_error("mkdir", p->snapdir, errno);
		if (cairn_file_fsync_dir(p->parent))
			return cairn_error_last_code();
		p->snapfd = open(p->snapdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (p->snapfd < 0)
		return errno == ENOENT
			? cairn_error_set(CAIRN_ENOTFOUND, "%s has no snapshots yet (cairn snapshot "
					  "create)", p->store)
			: sys_error("open", p->snapdir, errno);
	if (fstat(p->snapfd, &st) < 0)
		return sys_error("stat", p->snapdir, errno);
	if (st.st_dev != p->dev)
		cairn_log(CAIRN_LOG_WARN, "snapshot: %s is on another filesystem than the store: "
			  "files are copied, not shared", p->snapdir);
	p->snaplock = openat(p->snapfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p->snaplock < 0)
		return sys_error("open", ".lock", errno);
	while (flock(p->snaplock, LOCK_EX) < 0)
		if (errno != EINTR)
			return sys_error("flock", ".lock", errno);
	return 0;
}

/* Takes the store's lock as cairn_repo does: exclusive, not waiting. */
static int place_lock_store(place *p)
{
	char path[PATH_MAX + 8];
	long pid;

	snprintf(path, sizeof(path), "%s/lock", p->store);
	p->storelock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (p->storelock < 0)
		return sys_error("open", path, errno);
	if (flock(p->storelock, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return sys_error("flock", path, errno);
	pid = cairn_snapshot__flock_holder(p->storelock);
	if (pid > 0)
		return cairn_error_set(CAIRN_EEXISTS, "%s is in use by another process (pid %ld): "
				       "stop it first", p->store, pid);
	return cairn_error_set(CAIRN_EEXISTS, "%s is in use by another process: stop it first",
			       p->store);
}

/* Whether the flock on `name` below dirfd is free (and so its owner gone). */
static bool lock_free(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	bool free_ = true;

	if (fd < 0)
		return true;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		free_ = false;
	close(fd);
	return free_;
}

/* Removes what interrupted operations left; .lock is held. */
static void place_cleanup(place *p)
{
	int fd = dup(p->snapfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char names[64][NAME_MAX + 1];
	size_t n = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	/* Collected first (a few at a time) so removal does not disturb the
	 * directory stream; the rest wait for the next operation. */
	while ((de = readdir(d)) && n < 64) {
		const char *s = de->d_name;

		if (s[0] != '.' || !strcmp(s, ".") || !strcmp(s, "..") || !strcmp(s, ".lock"))
			continue;
		snprintf(names[n++], NAME_MAX + 1, "%s", s);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(names[i], ".ephemeral-", 11)) {
			char marker[NAME_MAX + 16], lock[NAME_MAX + 8];

			fmt(marker, sizeof(marker), "%s/.ephemeral", names[i]);
			fmt(lock, sizeof(lock), "%s/lock", names[i]);
			if (!lock_free(p->snapfd, marker) || !lock_free(p->snapfd, lock))
				continue;
		}
		cairn_log(CAIRN_LOG_INFO, "snapshot: removing %s/%s, left by an interrupted operation",
			  p->snapdir, names[i]);
		if (cairn_snapshot__rm_tree(p->snapfd, names[i], p->dev))
			cairn_log(CAIRN_LOG_WARN, "snapshot: %s/%s: %s", p->snapdir, names[i],
				  cairn_error_last());
	}
	if (n)
		fsync(p->snapfd);
}

/* ------------------------------------------------------------ manifests */

typedef struct manifest {
	cairn_snapshot_info info;
	uint64_t dirs;
} manifest;

static const char *next_line(const char **pp, const char *end, size_t *len_out)
{
	const char *p = *pp, *nl;

	if (p >= end)
		return NULL;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		return NULL; /* a line without its newline: cut short */
	*len_out = (size_t)(nl - p);
	*pp = nl + 1;
	return p;
}

/* Reads NAME's manifest below the snapshots directory; complete is false
 * when it is missing, cut short or malformed. */
static int manifest_read(manifest *m, int snapfd, const char *name)
{
	char path[NAME_MAX + 64], line[512];
	cairn_buf b = CAIRN_BUF_INIT;
	const char *p, *end, *l;
	unsigned long long files = 0, dirs = 0, bytes = 0, by[3] = {0, 0, 0}, copied = 0;
	size_t len;
	int fd, rc = 0, i = 0;
	ssize_t r;
	bool ended = false;

	memset(m, 0, sizeof(*m));
	snprintf(m->info.name, sizeof(m->info.name), "%s", name);
	snprintf(path, sizeof(path), "%s/" CAIRN_SNAPSHOT_MANIFEST, name);
	fd = openat(snapfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : sys_error("open", path, errno);
	for (;;) {
		if ((rc = cairn_buf_reserve(&b, 65536)))
			break;
		r = read(fd, b.data + b.len, 65536);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = sys_error("read", path, errno);
			break;
		}
		if (r == 0)
			break;
		b.len += (size_t)r;
		if (b.len > MANIFEST_MAX) {
			rc = cairn_error_set(CAIRN_ETOOBIG, "%s: over %u bytes", path, MANIFEST_MAX);
			break;
		}
	}
	close(fd);
	if (rc) {
		cairn_buf_free(&b);
		return rc;
	}
	p = (const char *)b.data;
	end = p + b.len;
	while ((l = next_line(&p, end, &len))) {
		long long v;

		if (ended)
			goto bad; /* nothing may follow "end" */
		snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), l);
		switch (i++) {
		case 0:
			if (strcmp(line, "cairn-snapshot 1"))
				goto bad;
			continue;
		case 1:
			if (strncmp(line, "name ", 5))
				goto bad;
			continue;
		case 2:
			if (sscanf(line, "created %lld", &v) != 1)
				goto bad;
			m->info.created = v;
			continue;
		case 3:
			if (sscanf(line, "rolling %lld", &v) != 1)
				goto bad;
			m->info.rolling = v != 0;
			continue;
		case 4:
			continue; /* fs */
		case 5:
			if (sscanf(line, "pause_ns %lld", &v) != 1)
				goto bad;
			m->info.pause_ns = (uint64_t)v;
			continue;
		case 6:
			if (sscanf(line, "files %llu dirs %llu bytes %llu reflink %llu hardlink %llu "
				   "copy %llu copied %llu", &files, &dirs, &bytes, &by[0], &by[1],
				   &by[2], &copied) != 7)
				goto bad;
			continue;
		default:
			if (!strcmp(line, "end"))
				ended = true;
			else if (len < 3 || !strchr("dflx", line[0]) || line[1] != ' ')
				goto bad;
		}
	}
	if (!ended || p != end)
		goto bad;
	m->info.complete = true;
	m->info.files = files;
	m->info.bytes = bytes;
	for (int k = 0; k < 3; k++)
		m->info.files_by[k] = by[k];
	m->dirs = dirs;
bad:
	cairn_buf_free(&b);
	return 0;
}

/* Writes the manifest into the temporary directory. Not fsynced here: the
 * syncfs that follows covers it. */
static int manifest_write(int dirfd, const char *name, bool rolling, uint64_t pause_ns,
			  const cairn_snapshot_report *rep, const cairn_buf *body)
{
	cairn_buf h = CAIRN_BUF_INIT;
	int fd, rc;

	cairn_buf_printf(&h, "cairn-snapshot 1\nname %s\ncreated %lld\nrolling %d\nfs %s\n"
			 "pause_ns %llu\nfiles %llu dirs %llu bytes %llu reflink %llu "
			 "hardlink %llu copy %llu copied %llu\n", name, (long long)time(NULL),
			 rolling ? 1 : 0, rep->fs, (unsigned long long)pause_ns,
			 (unsigned long long)rep->files, (unsigned long long)rep->dirs,
			 (unsigned long long)(rep->bytes_by[0] + rep->bytes_by[1] + rep->bytes_by[2]),
			 (unsigned long long)rep->files_by[0], (unsigned long long)rep->files_by[1],
			 (unsigned long long)rep->files_by[2], (unsigned long long)rep->bytes_copied);
	cairn_buf_append(&h, body->data, body->len);
	cairn_buf_puts(&h, "end\n");
	if (h.err) {
		rc = h.err;
		cairn_buf_free(&h);
		return rc;
	}
	fd = openat(dirfd, CAIRN_SNAPSHOT_MANIFEST, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0) {
		rc = sys_error("create", CAIRN_SNAPSHOT_MANIFEST, errno);
	} else {
		rc = cairn_file_write_full(fd, h.data, h.len, CAIRN_SNAPSHOT_MANIFEST);
		if (close(fd) < 0 && !rc)
			rc = sys_error("close", CAIRN_SNAPSHOT_MANIFEST, errno);
	}
	cairn_buf_free(&h);
	return rc;
}

/* ----------------------------------------------------------- tree clone */

/* Clones the directory sdir into the new directory `dname` below ddirfd,
 * filling `rep`; the manifest lines go to `body`. */
static int clone_into(cairn_snapshot_report *rep, cairn_buf *body, tree_kind kind,
		      const char *crash_file, const cairn_snapshot_options *opts, int sdir,
		      int ddir, dev_t dev)
{
	snap_tree t;
	char rel[4096] = "";
	struct stat st;
	int rc;

	memset(&t, 0, sizeof(t));
	t.kind = kind;
	t.no_reflink = opts && opts->no_reflink;
	t.no_hardlink = opts && opts->no_hardlink;
	t.root_dev = dev;
	t.rep = rep;
	t.manifest = body;
	t.crash_file = crash_file;
	if (!(t.buf = cairn_malloc(COPY_BUF)))
		return CAIRN_ENOMEM;
	cairn_snapshot__fs_name(rep->fs, sizeof(rep->fs), ddir);
	rc = cairn_snapshot__tree(&t, sdir, ddir, rel, 0);
	cairn_free(t.buf);
	if (!rc && fstat(sdir, &st) == 0 && fchmod(ddir, st.st_mode & 07777) < 0)
		rc = sys_error("chmod", "the new directory", errno);
	return rc;
}

/* syncfs, then fsync of the directory itself: the clone is on disk before
 * the rename that publishes it. */
static int sync_tree(cairn_snapshot_report *rep, int dirfd, const char *what)
{
	uint64_t t0 = cairn_time_ns();
	int e = cairn_snapshot__syncfs(dirfd);

	if (e)
		return sys_error("syncfs", what, e);
	if (fsync(dirfd) < 0)
		return sys_error("fsync", what, errno);
	rep->sync_ns += cairn_time_ns() - t0;
	return 0;
}

/* ---------------------------------------------------------------- create */

/* file:// URLs of shards outside the store: their data is not in the
 * snapshot; say so rather than let a rollback surprise anyone. */
static void warn_external(cairn_db *db, const place *p)
{
	static const char sql[] = "SELECT key, url FROM dagstore_shards WHERE url LIKE 'file://%'";
	cairn_db_stmt *st = NULL;
	size_t n = strlen(p->store);
	int warned = 0;

	if (cairn_db_prepare(&st, db, sql)) {
		cairn_error_clear(); /* no DAG store in this database */
		return;
	}
	while (cairn_db_step(st) == 1) {
		const char *key = cairn_db_column_text(st, 0), *url = cairn_db_column_text(st, 1);
		const char *path = url ? url + 7 : "";

		if (!strncmp(path, p->store, n) && path[n] == '/')
			continue;
		if (warned++ < 3)
			cairn_log(CAIRN_LOG_WARN, "snapshot: shard %s reads %s, outside the store: "
				  "its data is not in the snapshot", key ? key : "?", url ? url : "?");
	}
	if (warned > 3)
		cairn_log(CAIRN_LOG_WARN, "snapshot: %d more shards read files outside the store",
			  warned - 3);
	cairn_db_reset(st);
}

static int checkpoint(const cairn_snapshot_options *opts, const place *p)
{
	int rc;

	if (opts->db && strcmp(cairn_db_backend(opts->db), "sqlite"))
		return cairn_error_set(CAIRN_EUNSUPPORTED, "%s: the metadata is in %s, which cannot "
				       "be snapshotted yet (only SQLite stores can)", p->store,
				       cairn_db_backend(opts->db));
	if (opts->checkpoint)
		return opts->checkpoint(opts->payload);
	if (!opts->db)
		return 0;
	warn_external(opts->db, p);
	/* TRUNCATE: the log copied into cairn.db and emptied, so the snapshot
	 * needs no recovery at open. The -wal is cloned too, in case a reader
	 * kept part of the log from being copied back. */
	if ((rc = cairn_db_exec(opts->db, "PRAGMA wal_checkpoint(TRUNCATE)")))
		return cairn_error_prefix("%s: checkpoint: ", p->store);
	return 0;
}

static int rolling_prune(cairn_snapshot_report *rep, place *p, unsigned keep);

static int pick_name(char *out, size_t cap, int snapfd, const char *name)
{
	struct stat st;
	char base[64];
	time_t now = time(NULL);
	struct tm tm;

	if (name) {
		snprintf(out, cap, "%s", name);
		if (fstatat(snapfd, out, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return cairn_error_set(CAIRN_EEXISTS, "snapshot %s exists: pick another name "
					       "or remove it first (cairn snapshot rm %s)", name, name);
		return 0;
	}
	gmtime_r(&now, &tm);
	strftime(base, sizeof(base), "%Y%m%d-%H%M%S", &tm);
	snprintf(out, cap, "%s", base);
	for (int i = 2; fstatat(snapfd, out, &st, AT_SYMLINK_NOFOLLOW) == 0; i++)
		snprintf(out, cap, "%s-%d", base, i);
	return 0;
}

int cairn_snapshot_create(cairn_snapshot_report *report_out, const char *store, const char *name,
			  const cairn_snapshot_options *opts)
{
	static const cairn_snapshot_options defaults = CAIRN_SNAPSHOT_OPTIONS_INIT;
	cairn_snapshot_report rep;
	cairn_buf body = CAIRN_BUF_INIT;
	char tmp[NAME_MAX + 1], nm[CAIRN_SNAPSHOT_NAME_MAX + 16];
	uint64_t t0 = cairn_time_ns(), paused = 0;
	int storefd = -1, tmpfd = -1, rc, e;
	bool made_tmp = false, quiesced = false;
	place p;

	memset(&rep, 0, sizeof(rep));
	if (!opts)
		opts = &defaults;
	if (name && (rc = check_name(name)))
		return rc;
	if ((rc = place_resolve(&p, store)) || (rc = place_open(&p, true)))
		goto out;
	place_cleanup(&p);
	if ((rc = pick_name(nm, sizeof(nm), p.snapfd, name)))
		goto out;
	fmt(rep.name, sizeof(rep.name), "%s", nm);
	fmt(rep.path, sizeof(rep.path), "%s/%s", p.snapdir, nm);
	if (!opts->lock_held && (rc = place_lock_store(&p)))
		goto out;
	cairn_snapshot__crash_point("create-begin");
	storefd = open(p.store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (storefd < 0) {
		rc = sys_error("open", p.store, errno);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), ".tmp-%s", nm);
	if (mkdirat(p.snapfd, tmp, 0700) < 0) {
		rc = sys_error("mkdir", tmp, errno);
		goto out;
	}
	made_tmp = true;
	tmpfd = openat(p.snapfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmpfd < 0) {
		rc = sys_error("open", tmp, errno);
		goto out;
	}
	cairn_snapshot__crash_point("create-tmpdir");

	/* Writers are paused only for the clone loop: with reflinks that is
	 * tens of milliseconds for 2,000 files; the manifest and the syncs
	 * come after they resume. */
	if (opts->quiesce && (rc = opts->quiesce(opts->payload)))
		goto out;
	quiesced = true;
	paused = cairn_time_ns();
	if (!(rc = checkpoint(opts, &p)))
		rc = clone_into(&rep, &body, TREE_SNAPSHOT, "create-file", opts, storefd, tmpfd, p.dev);
	if (!rc)
		cairn_snapshot__crash_point("create-cloned");
	if (opts->resume)
		opts->resume(opts->payload);
	quiesced = false;
	rep.pause_ns = cairn_time_ns() - paused;
	if (rc) {
		cairn_error_prefix("snapshot %s of %s: ", nm, p.store);
		goto out;
	}

	if ((rc = manifest_write(tmpfd, nm, opts->keep > 0, rep.pause_ns, &rep, &body)))
		goto out;
	cairn_snapshot__crash_point("create-manifest");
	if ((rc = sync_tree(&rep, tmpfd, tmp)))
		goto out;
	cairn_snapshot__crash_point("create-synced");
	e = cairn_snapshot__rename_noreplace(p.snapfd, tmp, p.snapfd, nm);
	if (e) {
		rc = e == EEXIST ? cairn_error_set(CAIRN_EEXISTS, "snapshot %s exists", nm)
				 : sys_error("rename", rep.path, e);
		goto out;
	}
	made_tmp = false;
	if (fsync(p.snapfd) < 0) {
		rc = sys_error("fsync", p.snapdir, errno);
		goto out;
	}
	cairn_snapshot__crash_point("create-renamed");
	if (opts->keep && (rc = rolling_prune(&rep, &p, opts->keep)))
		goto out;
	cairn_snapshot__crash_point("create-pruned");
out:
	if (quiesced && opts->resume)
		opts->resume(opts->payload);
	if (made_tmp && p.snapfd >= 0) {
		int saved = cairn_error_last_code();
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", cairn_error_last());
		if (cairn_snapshot__rm_tree(p.snapfd, tmp, p.dev))
			cairn_log(CAIRN_LOG_WARN, "snapshot: %s/%s: %s (removed at the next snapshot)",
				  p.snapdir, tmp, cairn_error_last());
		fsync(p.snapfd);
		cairn_error_set(saved, "%s", msg);
	}
	if (tmpfd >= 0)
		close(tmpfd);
	if (storefd >= 0)
		close(storefd);
	place_close(&p);
	cairn_buf_free(&body);
	rep.total_ns = cairn_time_ns() - t0;
	if (report_out)
		*report_out = rep;
	return rc;
}

/* ------------------------------------------------------------------ list */

static int cmp_info(const void *a, const void *b)
{
	const cairn_snapshot_info *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Every snapshot below snapfd (names not starting with '.'), sorted. */
static int list_at(cairn_snapshot_info **list_out, size_t *n_out, int snapfd)
{
	int fd = dup(snapfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	cairn_snapshot_info *list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	*list_out = NULL;
	*n_out = 0;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return sys_error("open", "snapshots directory", errno);
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		struct stat st;
		manifest m;

		if (de->d_name[0] == '.' || check_name(de->d_name)) {
			cairn_error_clear();
			continue;
		}
		if (fstatat(snapfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if ((rc = manifest_read(&m, snapfd, de->d_name)))
			break;
		if (n == cap) {
			cairn_snapshot_info *g = cairn_realloc(list, (cap = cap ? cap * 2 : 16) * sizeof(*g));

			if (!g) {
				rc = CAIRN_ENOMEM;
				break;
			}
			list = g;
		}
		list[n++] = m.info;
	}
	closedir(d);
	if (rc) {
		cairn_free(list);
		return rc;
	}
	if (n)
		qsort(list, n, sizeof(*list), cmp_info);
	*list_out = list;
	*n_out = n;
	return 0;
}

int cairn_snapshot_list(cairn_snapshot_info **list_out, size_t *n_out, const char *store)
{
	place p;
	int rc;

	*list_out = NULL;
	*n_out = 0;
	if ((rc = place_resolve(&p, store)))
		return rc;
	p.snapfd = open(p.snapdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p.snapfd < 0)
		return errno == ENOENT ? 0 : sys_error("open", p.snapdir, errno);
	rc = list_at(list_out, n_out, p.snapfd);
	place_close(&p);
	return rc;
}

void cairn_snapshot_list_free(cairn_snapshot_info *list)
{
	cairn_free(list);
}

/* ---------------------------------------------------------------- remove */

/* Renamed out of sight first, so a crash midway never leaves a snapshot
 * that lists as whole but misses files. */
static int remove_at(place *p, const char *name)
{
	char trash[NAME_MAX + 1];
	int e;

	snprintf(trash, sizeof(trash), ".rm-%s", name);
	e = cairn_snapshot__rename_noreplace(p->snapfd, name, p->snapfd, trash);
	if (e == ENOENT)
		return cairn_error_set(CAIRN_ENOTFOUND, "no snapshot %s in %s (cairn snapshot list)",
				       name, p->snapdir);
	if (e)
		return sys_error("rename", name, e);
	if (fsync(p->snapfd) < 0)
		return sys_error("fsync", p->snapdir, errno);
	cairn_snapshot__crash_point("rm-renamed");
	if (cairn_snapshot__rm_tree(p->snapfd, trash, p->dev))
		return cairn_error_prefix("snapshot %s: ", name);
	fsync(p->snapfd);
	return 0;
}

int cairn_snapshot_remove(const char *store, const char *name)
{
	place p;
	int rc;

	if ((rc = check_name(name)))
		return rc;
	if (!(rc = place_resolve(&p, store)) && !(rc = place_open(&p, false))) {
		place_cleanup(&p);
		rc = remove_at(&p, name);
	}
	place_close(&p);
	return rc;
}

static int rolling_prune(cairn_snapshot_report *rep, place *p, unsigned keep)
{
	cairn_snapshot_info *list = NULL;
	size_t n = 0, rolling = 0;
	int rc;

	if ((rc = list_at(&list, &n, p->snapfd)))
		return rc;
	for (size_t i = 0; i < n; i++)
		rolling += list[i].rolling;
	/* Oldest first: the list is sorted by creation time. */
	for (size_t i = 0; i < n && rolling > keep && !rc; i++) {
		if (!list[i].rolling || !strcmp(list[i].name, rep->name))
			continue;
		if (!(rc = remove_at(p, list[i].name))) {
			rep->pruned++;
			rolling--;
		}
	}
	cairn_free(list);
	return rc;
}

/* ----------------------------------------------------- clone and restore */

/* Opens snapshot `name` after checking that its manifest is whole. */
static int open_snapshot(int *fd_out, manifest *m, place *p, const char *name)
{
	int rc;

	*fd_out = -1;
	if ((rc = manifest_read(m, p->snapfd, name)))
		return rc;
	*fd_out = openat(p->snapfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd_out < 0)
		return errno == ENOENT ? cairn_error_set(CAIRN_ENOTFOUND, "no snapshot %s in %s "
							 "(cairn snapshot list)", name, p->snapdir)
				       : sys_error("open", name, errno);
	if (!m->info.complete) {
		close(*fd_out);
		*fd_out = -1;
		return cairn_error_set(CAIRN_ECORRUPT, "snapshot %s: its manifest is missing or cut "
				       "short: the snapshot is damaged (remove it)", name);
	}
	return 0;
}

/* The clone has exactly the files the manifest lists. */
static int check_count(const cairn_snapshot_report *rep, const manifest *m, const char *name)
{
	if (rep->files != m->info.files)
		return cairn_error_set(CAIRN_ECORRUPT, "snapshot %s: %llu files found, the manifest "
				       "lists %llu: the snapshot is damaged", name,
				       (unsigned long long)rep->files,
				       (unsigned long long)m->info.files);
	return 0;
}

int cairn_snapshot_clone(cairn_snapshot_report *report_out, const char *store, const char *name,
			 const char *dest, const cairn_snapshot_options *opts)
{
	cairn_snapshot_report rep;
	cairn_buf body = CAIRN_BUF_INIT;
	char parent[PATH_MAX], tmp[NAME_MAX + 1];
	const char *slash, *base;
	uint64_t t0 = cairn_time_ns();
	int snapfd = -1, pfd = -1, tmpfd = -1, rc, e;
	bool made_tmp = false;
	struct stat st;
	manifest m;
	place p;

	memset(&rep, 0, sizeof(rep));
	if ((rc = check_name(name)))
		return rc;
	if (!dest || !dest[0])
		return cairn_error_set(CAIRN_EINVAL, "no destination directory given");
	if ((rc = place_resolve(&p, store)) || (rc = place_open(&p, false)))
		goto out;
	place_cleanup(&p);
	if ((rc = open_snapshot(&snapfd, &m, &p, name)))
		goto out;
	if (lstat(dest, &st) == 0) {
		rc = cairn_error_set(CAIRN_EEXISTS, "%s exists: a clone makes a new directory", dest);
		goto out;
	}
	slash = strrchr(dest, '/');
	while (slash && slash > dest && !slash[1]) /* "dir/" */
		slash = NULL;
	if (slash)
		snprintf(parent, sizeof(parent), "%.*s", slash == dest ? 1 : (int)(slash - dest), dest);
	else
		snprintf(parent, sizeof(parent), ".");
	base = slash ? slash + 1 : dest;
	if (!base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
		rc = cairn_error_set(CAIRN_EINVAL, "%s: not a directory name to create", dest);
		goto out;
	}
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fstat(pfd, &st) < 0) {
		rc = sys_error("open", parent, errno);
		goto out;
	}
	snprintf(rep.name, sizeof(rep.name), "%s", name);
	if (!realpath(parent, rep.path))
		snprintf(rep.path, sizeof(rep.path), "%s", parent);
	snprintf(rep.path + strlen(rep.path), sizeof(rep.path) - strlen(rep.path), "/%s", base);
	/* A fixed temporary name: what a crash left is removed by the next
	 * clone to the same place. */
	if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.clone-tmp", base) >= sizeof(tmp)) {
		rc = cairn_error_set(CAIRN_EINVAL, "%s: name too long", dest);
		goto out;
	}
	if ((rc = cairn_snapshot__rm_tree(pfd, tmp, st.st_dev)))
		goto out;
	if (mkdirat(pfd, tmp, 0700) < 0) {
		rc = sys_error("mkdir", tmp, errno);
		goto out;
	}
	made_tmp = true;
	tmpfd = openat(pfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmpfd < 0) {
		rc = sys_error("open", tmp, errno);
		goto out;
	}
	if ((rc = clone_into(&rep, &body, TREE_CLONE, "clone-file", opts, snapfd, tmpfd, p.dev)) ||
	    (rc = check_count(&rep, &m, name))) {
		cairn_error_prefix("clone of snapshot %s into %s: ", name, dest);
		goto out;
	}
	cairn_snapshot__crash_point("clone-cloned");
	if ((rc = sync_tree(&rep, tmpfd, tmp)))
		goto out;
	e = cairn_snapshot__rename_noreplace(pfd, tmp, pfd, base);
	if (e) {
		rc = e == EEXIST || e == ENOTEMPTY
			? cairn_error_set(CAIRN_EEXISTS, "%s exists: a clone makes a new directory", dest)
			: sys_error("rename", dest, e);
		goto out;
	}
	made_tmp = false;
	if (fsync(pfd) < 0)
		rc = sys_error("fsync", parent, errno);
	cairn_snapshot__crash_point("clone-renamed");
out:
	if (made_tmp)
		cairn_snapshot__rm_tree(pfd, tmp, st.st_dev);
	if (tmpfd >= 0)
		close(tmpfd);
	if (pfd >= 0)
		close(pfd);
	if (snapfd >= 0)
		close(snapfd);
	place_close(&p);
	cairn_buf_free(&body);
	rep.total_ns = cairn_time_ns() - t0;
	if (report_out)
		*report_out = rep;
	return rc;
}

struct cairn_snapshot_ephemeral {
	char path[PATH_MAX + 32];
	char snapdir[PATH_MAX + 16];
	char dname[NAME_MAX + 1];
	int marker;
	dev_t dev;
};

int cairn_snapshot_clone_ephemeral(cairn_snapshot_ephemeral **out, cairn_snapshot_report *report_out,
				   const char *store, const char *name,
				   const cairn_snapshot_options *opts)
{
	cairn_snapshot_ephemeral *e = NULL;
	cairn_snapshot_report rep;
	cairn_buf body = CAIRN_BUF_INIT;
	uint64_t t0 = cairn_time_ns();
	int snapfd = -1, dfd = -1, rc;
	bool made = false;
	manifest m;
	place p;

	*out = NULL;
	memset(&rep, 0, sizeof(rep));
	if ((rc = check_name(name)))
		return rc;
	if ((rc = place_resolve(&p, store)) || (rc = place_open(&p, false)))
		goto out;
	place_cleanup(&p);
	if ((rc = open_snapshot(&snapfd, &m, &p, name)))
		goto out;
	if (!(e = cairn_calloc(1, sizeof(*e)))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	e->marker = -1;
	e->dev = p.dev;
	snprintf(e->snapdir, sizeof(e->snapdir), "%s", p.snapdir);
	snprintf(e->dname, sizeof(e->dname), ".ephemeral-%s-%ld", name, (long)getpid());
	fmt(e->path, sizeof(e->path), "%s/%s", p.snapdir, e->dname);
	if (mkdirat(p.snapfd, e->dname, 0700) < 0) {
		rc = sys_error("mkdir", e->path, errno);
		goto out;
	}
	made = true;
	dfd = openat(p.snapfd, e->dname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = sys_error("open", e->path, errno);
		goto out;
	}
	/* The marker, held until the clone is removed: the next cleanup
	 * leaves the clone alone while its owner lives. */
	e->marker = openat(dfd, ".ephemeral", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (e->marker < 0 || flock(e->marker, LOCK_EX) < 0) {
		rc = sys_error("lock", ".ephemeral", errno);
		goto out;
	}
	/* No sync: the clone does not outlive its owner. */
	if ((rc = clone_into(&rep, &body, TREE_CLONE, "clone-file", opts, snapfd, dfd, p.dev)) ||
	    (rc = check_count(&rep, &m, name)))
		cairn_error_prefix("ephemeral clone of snapshot %s: ", name);
	snprintf(rep.name, sizeof(rep.name), "%s", name);
	fmt(rep.path, sizeof(rep.path), "%s", e->path);
out:
	if (rc && made)
		cairn_snapshot__rm_tree(p.snapfd, e->dname, p.dev);
	if (rc && e) {
		if (e->marker >= 0)
			close(e->marker);
		cairn_free(e);
		e = NULL;
	}
	if (dfd >= 0)
		close(dfd);
	if (snapfd >= 0)
		close(snapfd);
	place_close(&p);
	cairn_buf_free(&body);
	rep.total_ns = cairn_time_ns() - t0;
	if (report_out)
		*report_out = rep;
	*out = e;
	return rc;
}

const char *cairn_snapshot_ephemeral_path(const cairn_snapshot_ephemeral *e)
{
	return e ? e->path : NULL;
}

int cairn_snapshot_ephemeral_free(cairn_snapshot_ephemeral *e)
{
	int fd, rc = 0;

	if (!e)
		return 0;
	fd = open(e->snapdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		rc = sys_error("open", e->snapdir, errno);
	else
		rc = cairn_snapshot__rm_tree(fd, e->dname, e->dev);
	if (fd >= 0)
		close(fd);
	close(e->marker);
	cairn_free(e);
	return rc;
}

int cairn_snapshot_restore(cairn_snapshot_report *report_out, const char *store, const char *name,
			   const cairn_snapshot_options *opts)
{
	cairn_snapshot_report rep;
	cairn_buf body = CAIRN_BUF_INIT;
	char tmp[64];
	uint64_t t0 = cairn_time_ns();
	int snapfd = -1, storefd = -1, parentfd = -1, tmpfd = -1, newlock = -1, rc, e;
	bool made_tmp = false, mounted = false;
	struct stat st;
	manifest m;
	place p;

	memset(&rep, 0, sizeof(rep));
	if ((rc = check_name(name)))
		return rc;
	if ((rc = place_resolve(&p, store)) || (rc = place_open(&p, false)))
		goto out;
	place_cleanup(&p);
	if ((rc = open_snapshot(&snapfd, &m, &p, name)))
		goto out;
	snprintf(rep.name, sizeof(rep.name), "%s", name);
	snprintf(rep.path, sizeof(rep.path), "%s", p.store);
	if (fstat(p.snapfd, &st) < 0 || st.st_dev != p.dev) {
		rc = cairn_error_set(CAIRN_EUNSUPPORTED, "%s is on another filesystem than %s: a "
				     "rollback swaps directories, which needs one filesystem",
				     p.snapdir, p.store);
		goto out;
	}
	storefd = open(p.store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	parentfd = open(p.parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (storefd < 0 || parentfd < 0) {
		rc = sys_error("open", storefd < 0 ? p.store : p.parent, errno);
		goto out;
	}
	if ((rc = cairn_snapshot__has_mount(&mounted, storefd, p.dev)))
		goto out;
	if (mounted) {
		rc = cairn_error_set(CAIRN_EUNSUPPORTED, "%s has another filesystem mounted inside: "
				     "unmount it before a rollback", p.store);
		goto out;
	}
	if ((rc = place_lock_store(&p))) {
		cairn_error_prefix("cannot roll back: ");
		goto out;
	}
	cairn_snapshot__crash_point("restore-begin");
	snprintf(tmp, sizeof(tmp), ".restore-%ld", (long)getpid());
	if (mkdirat(p.snapfd, tmp, 0700) < 0) {
		rc = sys_error("mkdir", tmp, errno);
		goto out;
	}
	made_tmp = true;
	tmpfd = openat(p.snapfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmpfd < 0) {
		rc = sys_error("open", tmp, errno);
		goto out;
	}
	if ((rc = clone_into(&rep, &body, TREE_CLONE, "restore-file", opts, snapfd, tmpfd, p.dev)) ||
	    (rc = check_count(&rep, &m, name))) {
		cairn_error_prefix("rollback of %s to snapshot %s: ", p.store, name);
		goto out;
	}
	/* The new tree's lock is held from before the swap, so no process
	 * opens the store between the swap and the end of this call. */
	newlock = openat(tmpfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (newlock < 0 || flock(newlock, LOCK_EX | LOCK_NB) < 0) {
		rc = sys_error("lock", "the new store's lock", errno);
		goto out;
	}
	cairn_snapshot__crash_point("restore-cloned");
	if ((rc = sync_tree(&rep, tmpfd, tmp)))
		goto out;
	cairn_snapshot__crash_point("restore-synced");
	e = cairn_snapshot__rename_exchange(p.snapfd, tmp, parentfd, p.base);
	if (e) {
		rc = e == EINVAL || e == EOPNOTSUPP
			? cairn_error_set(CAIRN_EUNSUPPORTED, "%s: the filesystem cannot swap "
					  "directories (renameat2 RENAME_EXCHANGE): %s", p.store,
					  strerror(e))
			: sys_error("renameat2 RENAME_EXCHANGE", p.store, e);
		goto out;
	}
	/* From here the old store is at .restore-PID: removing it is all
	 * that is left, and a crash leaves that to the next operation. */
	if (fsync(parentfd) < 0 || fsync(p.snapfd) < 0) {
		rc = sys_error("fsync", p.parent, errno);
		made_tmp = false;
		goto out;
	}
	cairn_snapshot__crash_point("restore-exchanged");
	close(tmpfd);
	tmpfd = -1;
	if (cairn_snapshot__rm_tree(p.snapfd, tmp, p.dev))
		cairn_log(CAIRN_LOG_WARN, "snapshot: the old store, %s/%s: %s (removed at the next "
			  "snapshot operation)", p.snapdir, tmp, cairn_error_last());
	made_tmp = false;
	fsync(p.snapfd);
	cairn_snapshot__crash_point("restore-removed");
out:
	if (made_tmp)
		cairn_snapshot__rm_tree(p.snapfd, tmp, p.dev);
	if (newlock >= 0)
		close(newlock);
	if (tmpfd >= 0)
		close(tmpfd);
	if (parentfd >= 0)
		close(parentfd);
	if (storefd >= 0)
		close(storefd);
	if (snapfd >= 0)
		close(snapfd);
	place_close(&p);
	cairn_buf_free(&body);
	rep.total_ns = cairn_time_ns() - t0;
	if (report_out)
		*report_out = rep;
	(void)opts;
	return rc;
}

int cairn_snapshot_dir(char *buf, size_t cap, const char *store)
{
	place p;
	int rc;

	if ((rc = place_resolve(&p, store)))
		return rc;
	if ((size_t)snprintf(buf, cap, "%s", p.snapdir) >= cap)
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", p.snapdir);
	return 0;
}

int cairn_snapshot_store_holder(long *pid_out, const char *store)
{
	char path[PATH_MAX + 8];
	place p;
	int fd, rc;

	*pid_out = 0;
	if ((rc = place_resolve(&p, store)))
		return rc;
	snprintf(path, sizeof(path), "%s/lock", p.store);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : sys_error("open", path, errno);
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		flock(fd, LOCK_UN);
	else
		*pid_out = cairn_snapshot__flock_holder(fd);
	close(fd);
	return 0;
}
