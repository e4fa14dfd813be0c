/* test_snapshot.c: unit tests for snapshots on the filesystem of $TMPDIR:
 * contents, exclusions, holes, the manifest, callbacks, the store's lock,
 * names, rolling snapshots, restore, clones and a kill at each step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cairn.h"

typedef struct {
	char dir[1024];
	char store[1100];
	char snaps[1100];
	char log[64];             /* the order callbacks ran in */
} fixture;

static void put(const char *dir, const char *name, const char *data)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static bool exists(const char *dir, const char *name)
{
	char path[PATH_MAX + 128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

static void read_file(char *buf, size_t cap, const char *dir, const char *name)
{
	char path[PATH_MAX + 128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX + 64];
	int fd;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/cairn-test-snap-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
	snprintf(f->snaps, sizeof(f->snaps), "%s/store.snapshots", f->dir);
	mkdir(f->store, 0700);
	snprintf(path, sizeof(path), "%s/dagstore", f->store);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/dagstore/indexes", f->store);
	mkdir(path, 0755);
	put(f->store, "version", "1\n");
	put(f->store, "cairn.db", "not really a database");
	put(f->store, "dagstore/indexes/1.idx", "an index");
	put(f->store, "dagstore/indexes/2.idx.tmp", "half an index");
	put(f->store, "api", "/ip4/127.0.0.1/tcp/1/http\n");
	put(f->store, "lock", "");
	/* 8 MiB with 4 KiB of data in the middle */
	snprintf(path, sizeof(path), "%s/sparse.bin", f->store);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, 8 << 20) < 0 || pwrite(fd, "data", 4, 4 << 20) != 4)
		return -1;
	close(fd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void test_create_list_remove(void **state)
{
	fixture *f = *state;
	cairn_snapshot_report r;
	cairn_snapshot_info *list = NULL;
	char snap[1200], buf[1300];
	struct stat st;
	size_t n = 0;

	assert_int_equal(cairn_snapshot_create(&r, f->store, "one", NULL), 0);
	assert_string_equal(r.name, "one");
	assert_int_equal(r.files, 4); /* version, cairn.db, 1.idx, sparse.bin */
	assert_int_equal(r.files_by[0] + r.files_by[1] + r.files_by[2], r.files);
	snprintf(snap, sizeof(snap), "%s/one", f->snaps);
	read_file(buf, sizeof(buf), snap, "dagstore/indexes/1.idx");
	assert_string_equal(buf, "an index");
	read_file(buf, sizeof(buf), snap, "cairn.db");
	assert_string_equal(buf, "not really a database");
	/* runtime files and temporaries are left out */
	assert_false(exists(snap, "api"));
	assert_false(exists(snap, "lock"));
	assert_false(exists(snap, "dagstore/indexes/2.idx.tmp"));
	assert_true(exists(snap, "snapshot.manifest"));
	/* holes kept: far below the 8 MiB apparent size */
	snprintf(buf, sizeof(buf), "%s/sparse.bin", snap);
	assert_int_equal(stat(buf, &st), 0);
	assert_int_equal(st.st_size, 8 << 20);
	assert_true(st.st_blocks * 512 < (1 << 20));
	/* a sealed file linked or reflinked, never copied */
	assert_true(r.files_by[CAIRN_SNAPSHOT_COPY] <= 3);

	assert_int_equal(cairn_snapshot_list(&list, &n, f->store), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].name, "one");
	assert_true(list[0].complete);
	assert_false(list[0].rolling);
	assert_int_equal(list[0].files, 4);
	cairn_snapshot_list_free(list);

	assert_int_equal(cairn_snapshot_create(NULL, f->store, "one", NULL), CAIRN_EEXISTS);
	assert_int_equal(cairn_snapshot_remove(f->store, "one"), 0);
	assert_int_equal(cairn_snapshot_remove(f->store, "one"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_snapshot_list(&list, &n, f->store), 0);
	assert_int_equal(n, 0);
	assert_null(list);
	/* a generated name */
	assert_int_equal(cairn_snapshot_create(&r, f->store, NULL, NULL), 0);
	assert_int_equal(strlen(r.name), 15);
}

static void test_names_and_stores(void **state)
{
	fixture *f = *state;
	char path[PATH_MAX + 32];

	assert_int_equal(cairn_snapshot_create(NULL, f->store, ".hidden", NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "a/b", NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "", NULL), CAIRN_EINVAL);
	assert_int_equal(cairn_snapshot_restore(NULL, f->store, "none", NULL), CAIRN_ENOTFOUND);
	snprintf(path, sizeof(path), "%s/nostore", f->dir);
	assert_int_equal(cairn_snapshot_create(NULL, path, "x", NULL), CAIRN_ENOTFOUND);
	mkdir(path, 0700);
	assert_int_equal(cairn_snapshot_create(NULL, path, "x", NULL), CAIRN_ENOTFOUND);
	assert_non_null(strstr(cairn_error_last(), "no version file"));
}

static int cb_quiesce(void *p)
{
	fixture *f = p;

	strcat(f->log, "q");
	return strchr(f->log, '!') ? CAIRN_ECANCELED : 0;
}

static void cb_resume(void *p)
{
	strcat(((fixture *)p)->log, "r");
}

static int cb_checkpoint(void *p)
{
	fixture *f = p;

	strcat(f->log, "c");
	return strchr(f->log, '?') ? cairn_error_set(CAIRN_EIO, "checkpoint failed") : 0;
}

static void test_callbacks(void **state)
{
	fixture *f = *state;
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;

	o.quiesce = cb_quiesce;
	o.resume = cb_resume;
	o.checkpoint = cb_checkpoint;
	o.payload = f;
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "a", &o), 0);
	assert_string_equal(f->log, "qcr");
	/* quiesce fails: nothing snapshotted, no resume */
	strcpy(f->log, "!");
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "b", &o), CAIRN_ECANCELED);
	assert_string_equal(f->log, "!q");
	/* checkpoint fails: resumed, nothing left behind */
	strcpy(f->log, "?");
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "b", &o), CAIRN_EIO);
	assert_string_equal(f->log, "?qcr");
	assert_false(exists(f->snaps, "b"));
	assert_false(exists(f->snaps, ".tmp-b"));
}

static void test_lock(void **state)
{
	fixture *f = *state;
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;
	char path[1200];
	long pid = 0;
	int fd;

	assert_int_equal(cairn_snapshot_create(NULL, f->store, "a", NULL), 0);
	snprintf(path, sizeof(path), "%s/lock", f->store);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(cairn_snapshot_store_holder(&pid, f->store), 0);
	assert_int_equal(pid, (long)getpid());
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "b", NULL), CAIRN_EEXISTS);
	assert_non_null(strstr(cairn_error_last(), "in use"));
	assert_int_equal(cairn_snapshot_restore(NULL, f->store, "a", NULL), CAIRN_EEXISTS);
	/* the owner snapshots from inside */
	o.lock_held = true;
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "b", &o), 0);
	close(fd);
	assert_int_equal(cairn_snapshot_store_holder(&pid, f->store), 0);
	assert_int_equal(pid, 0);
}

static void test_rolling(void **state)
{
	fixture *f = *state;
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;
	cairn_snapshot_info *list = NULL;
	cairn_snapshot_report r;
	size_t n = 0;

	assert_int_equal(cairn_snapshot_create(NULL, f->store, "named", NULL), 0);
	o.keep = 2;
	assert_int_equal(cairn_snapshot_create(&r, f->store, "r1", &o), 0);
	assert_int_equal(cairn_snapshot_create(&r, f->store, "r2", &o), 0);
	assert_int_equal(r.pruned, 0);
	assert_int_equal(cairn_snapshot_create(&r, f->store, "r3", &o), 0);
	assert_int_equal(r.pruned, 1);
	assert_int_equal(cairn_snapshot_list(&list, &n, f->store), 0);
	assert_int_equal(n, 3);
	assert_false(exists(f->snaps, "r1"));
	assert_true(exists(f->snaps, "named"));
	assert_true(exists(f->snaps, "r3"));
	cairn_snapshot_list_free(list);
}

static void test_restore_and_clones(void **state)
{
	fixture *f = *state;
	cairn_snapshot_options o = CAIRN_SNAPSHOT_OPTIONS_INIT;
	cairn_snapshot_ephemeral *e = NULL;
	cairn_snapshot_report r;
	char buf[256], dest[1200], epath[PATH_MAX];

	assert_int_equal(cairn_snapshot_create(NULL, f->store, "a", NULL), 0);
	put(f->store, "cairn.db", "changed");
	put(f->store, "new.bin", "new");
	assert_int_equal(cairn_snapshot_restore(&r, f->store, "a", NULL), 0);
	read_file(buf, sizeof(buf), f->store, "cairn.db");
	assert_string_equal(buf, "not really a database");
	assert_false(exists(f->store, "new.bin"));
	assert_false(exists(f->store, "snapshot.manifest"));
	assert_true(exists(f->snaps, "a/snapshot.manifest"));

	/* a clone: a store of its own; --no-reflink copies everything */
	o.no_reflink = o.no_hardlink = true;
	snprintf(dest, sizeof(dest), "%s/clone", f->dir);
	assert_int_equal(cairn_snapshot_clone(&r, f->store, "a", dest, &o), 0);
	assert_int_equal(r.files_by[CAIRN_SNAPSHOT_COPY], r.files);
	read_file(buf, sizeof(buf), dest, "dagstore/indexes/1.idx");
	assert_string_equal(buf, "an index");
	assert_false(exists(dest, "snapshot.manifest"));
	assert_int_equal(cairn_snapshot_clone(NULL, f->store, "a", dest, NULL), CAIRN_EEXISTS);

	assert_int_equal(cairn_snapshot_clone_ephemeral(&e, &r, f->store, "a", NULL), 0);
	snprintf(epath, sizeof(epath), "%s", cairn_snapshot_ephemeral_path(e));
	assert_true(exists(epath, "version"));
	/* in use: the next operation leaves it alone */
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "b", NULL), 0);
	assert_true(exists(epath, "version"));
	assert_int_equal(cairn_snapshot_ephemeral_free(e), 0);
	assert_false(exists(epath, "."));
}

/* A child killed at `step`; returns how it ended. */
static int crash_at(fixture *f, const char *step, bool restore)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		setenv("CAIRN_SNAPSHOT_CRASH_AT", step, 1);
		if (restore)
			cairn_snapshot_restore(NULL, f->store, "a", NULL);
		else
			cairn_snapshot_create(NULL, f->store, "k", NULL);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return status;
}

static void test_crash_steps(void **state)
{
	static const char *const steps[] = {"create-begin", "create-tmpdir", "create-file",
		"create-cloned", "create-manifest", "create-synced", "create-renamed"};
	fixture *f = *state;
	cairn_snapshot_info *list = NULL;
	size_t n = 0;
	char buf[1300];

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int st = crash_at(f, steps[i], false);
		bool published = !strcmp(steps[i], "create-renamed");

		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		assert_int_equal(cairn_snapshot_list(&list, &n, f->store), 0);
		assert_int_equal(n, published ? 1 : 0);
		if (n)
			assert_true(list[0].complete);
		cairn_snapshot_list_free(list);
		/* the next operation removes what was left */
		cairn_snapshot_remove(f->store, "k");
		assert_false(exists(f->snaps, ".tmp-k"));
	}
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "a", NULL), 0);
	put(f->store, "cairn.db", "changed");
	assert_true(WIFSIGNALED(crash_at(f, "restore-synced", true)));
	read_file(buf, sizeof(buf), f->store, "cairn.db");
	assert_string_equal(buf, "changed");
	assert_true(WIFSIGNALED(crash_at(f, "restore-exchanged", true)));
	read_file(buf, sizeof(buf), f->store, "cairn.db");
	assert_string_equal(buf, "not really a database");
	assert_int_equal(cairn_snapshot_create(NULL, f->store, "b", NULL), 0);
	assert_int_equal(cairn_snapshot_list(&list, &n, f->store), 0);
	assert_int_equal(n, 2);
	cairn_snapshot_list_free(list);
	/* only .lock is left beside the snapshots */
	snprintf(buf, sizeof(buf), "ls -A '%s' | grep -v '^[ab]$' | grep -qvx .lock", f->snaps);
	assert_int_not_equal(system(buf), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_and_stores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rolling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_and_clones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_steps, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
