/* test_dagstore.c: the DAG store through its library API, with real CAR files
 * made here from random raw blocks: registration (batches, idempotence,
 * conflicts), every state transition (observed from inside the mount while it
 * happens), lazy initialization, failures recorded on the shard with their
 * reason, recovery, destroy, damaged or missing index files, every block of
 * every shard read back through acquirers and through the top-level index
 * (blocks held by several shards included), padded Filecoin pieces, reopen,
 * and shards a crash left Initializing or Recovering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

static char tmpdir[PATH_MAX];

/* ---------------------------------------------------------------- helpers */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void tpath(char *out, const char *fmt, ...) CAIRN_PRINTF(2, 3);
static void tpath(char *out, const char *fmt, ...)
{
	char rel[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if (snprintf(out, PATH_MAX, "%s/%s", tmpdir, rel) >= PATH_MAX)
		fail_msg("path too long");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* The pool of blocks CARs are made of. */
#define POOL 400
typedef struct blk {
	uint8_t *data;
	size_t len;
	cairn_cid cid;
} blk;
static blk pool[POOL];

static void pool_make(void)
{
	for (size_t i = 0; i < POOL; i++) {
		/* Mostly small, a few over 64 KiB. */
		size_t len = i % 50 == 7 ? 70000 + rng() % 50000 : 1 + rng() % 3000;

		pool[i].data = malloc(len);
		assert_non_null(pool[i].data);
		for (size_t j = 0; j < len; j++)
			pool[i].data[j] = (uint8_t)rng();
		pool[i].len = len;
		assert_int_equal(cairn_cid_compute(&pool[i].cid, 1, CAIRN_CODEC_RAW, CAIRN_MH_SHA2_256,
						   pool[i].data, len), 0);
	}
}

static void pool_free(void)
{
	for (size_t i = 0; i < POOL; i++) {
		free(pool[i].data);
		pool[i].data = NULL;
	}
}

/* A CAR of the pool's blocks `idx[0..n)` (a repeat is written twice). version
 * 1 or 2; pad_to > 0 zero-pads a CARv1 to that size (a Filecoin piece). */
static void car_make(const char *path, const size_t *idx, size_t n, unsigned version,
		     uint64_t pad_to)
{
	cairn_car_writer_options o = CAIRN_CAR_WRITER_OPTIONS_INIT;
	cairn_car_writer *w;

	o.version = version;
	if (version == 1)
		o.index_codec = 0;
	assert_int_equal(cairn_car_writer_open(&w, path, &pool[idx[0]].cid, 1, &o), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(cairn_car_writer_put(w, &pool[idx[i]].cid, pool[idx[i]].data,
						      pool[idx[i]].len), 0);
	assert_int_equal(cairn_car_writer_finish(w), 0);
	cairn_car_writer_free(w);
	if (pad_to) {
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_true((uint64_t)st.st_size < pad_to);
		assert_int_equal(truncate(path, (off_t)pad_to), 0);
	}
}

static void file_url(char *out, const char *path)
{
	cairn_buf b = {0};

	assert_int_equal(cairn_mount_file_url(&b, path), 0);
	assert_true(b.len < PATH_MAX);
	memcpy(out, b.data, b.len);
	out[b.len] = 0;
	cairn_buf_free(&b);
}

/* Finds `needle` in the file and flips the byte in its middle. */
static void flip_in_file(const char *path, const uint8_t *needle, size_t n)
{
	cairn_buf b = {0};
	int fd;
	size_t at = SIZE_MAX;

	assert_int_equal(cairn_file_read_all(&b, path, SIZE_MAX), 0);
	for (size_t i = 0; i + n <= b.len; i++) {
		if (b.data[i] == needle[0] && !memcmp(b.data + i, needle, n)) {
			at = i + n / 2;
			break;
		}
	}
	assert_true(at != SIZE_MAX);
	b.data[at] ^= 0x5a;
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b.data + at, 1, (off_t)at), 1);
	close(fd);
	cairn_buf_free(&b);
}

static void flip_byte_at(const char *path, off_t at)
{
	uint8_t c;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x01;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* ---------------------------------------------------- the store under test */

static cairn_db *db;
static cairn_dagstore *ds;

/* A mount scheme "hook://PATH" over file mounts whose reads can be watched
 * and failed: how a test sees the state a shard is in while it is read. */
typedef struct hook_mount {
	cairn_mount base;
	cairn_mount *inner;
} hook_mount;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const char *key;         /* the shard to look at during reads */
	int seen_state;          /* its state during the last read, or -1 */
	unsigned seen_refs;
	atomic_int reads;
	bool fail;               /* reads fail with CAIRN_EIO */
	bool gate;               /* reads wait until the gate opens */
	bool waiting;            /* a read is waiting at the gate */
} hook = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, -1, 0, 0, false, false,
	  false};

static int hook_open(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *o)
{
	hook_mount *h;
	int rc;

	(void)ctx;
	*out = NULL;
	if (strncmp(url, "hook://", 7))
		return cairn_error_set(CAIRN_EINVAL, "%s: not a hook URL", url);
	if (!(h = calloc(1, sizeof(*h))))
		return CAIRN_ENOMEM;
	if ((rc = cairn_mount_open(&h->inner, cairn_dagstore_mounts(ds), url + 7, o))) {
		free(h);
		return rc;
	}
	h->base.ops = NULL; /* set by the caller's table below */
	h->base.name = cairn_mount_name(h->inner);
	h->base.kind = CAIRN_MOUNT_LOCAL;
	*out = &h->base;
	return 0;
}

static uint64_t hook_size(cairn_mount *m)
{
	return cairn_mount_size(((hook_mount *)m)->inner);
}

static int hook_read_at(cairn_mount *m, void *buf, size_t n, uint64_t offset)
{
	hook_mount *h = (hook_mount *)m;

	atomic_fetch_add(&hook.reads, 1);
	pthread_mutex_lock(&hook.lock);
	if (hook.key) {
		cairn_shard_info in;

		if (!cairn_dagstore_info(&in, ds, hook.key)) {
			hook.seen_state = (int)in.state;
			hook.seen_refs = in.refs;
			cairn_shard_info_clear(&in);
		}
	}
	while (hook.gate) {
		hook.waiting = true;
		pthread_cond_broadcast(&hook.cond);
		pthread_cond_wait(&hook.cond, &hook.lock);
	}
	hook.waiting = false;
	if (hook.fail) {
		pthread_mutex_unlock(&hook.lock);
		return cairn_error_set(CAIRN_EIO, "%s: injected read failure at %llu", m->name,
				       (unsigned long long)offset);
	}
	pthread_mutex_unlock(&hook.lock);
	return cairn_mount_read_at(h->inner, buf, n, offset);
}

static void hook_close(cairn_mount *m)
{
	hook_mount *h = (hook_mount *)m;

	cairn_mount_close(h->inner);
	free(h);
}

static const cairn_mount_ops hook_ops = {
	.version = CAIRN_MOUNT_OPS_VERSION,
	.name = "hook",
	.open = NULL, /* filled below: the open sets ops */
	.size = hook_size,
	.read_at = hook_read_at,
	.close = hook_close,
};

static int hook_open_set(cairn_mount **out, void *ctx, const char *url,
			 const cairn_mount_options *o)
{
	int rc = hook_open(out, ctx, url, o);

	if (!rc)
		(*out)->ops = &hook_ops;
	return rc;
}

static cairn_mount_ops hook_ops_reg;

static void hook_reset(void)
{
	pthread_mutex_lock(&hook.lock);
	hook.key = NULL;
	hook.seen_state = -1;
	hook.seen_refs = 0;
	hook.fail = false;
	hook.gate = false;
	hook.waiting = false;
	atomic_store(&hook.reads, 0);
	pthread_cond_broadcast(&hook.cond);
	pthread_mutex_unlock(&hook.lock);
}

static void ds_open_opts(const cairn_dagstore_options *o)
{
	char path[PATH_MAX];
	cairn_db_options dbo = CAIRN_DB_OPTIONS_INIT;

	dbo.sync = CAIRN_DB_SYNC_OFF;
	if (!db) {
		tpath(path, "cairn.db");
		assert_int_equal(cairn_db_open(&db, path, &dbo), 0);
	}
	tpath(path, "ds");
	if (cairn_dagstore_open(&ds, db, path, o))
		fail_msg("cairn_dagstore_open: %s", cairn_error_last());
	hook_ops_reg = hook_ops;
	hook_ops_reg.open = hook_open_set;
	assert_int_equal(cairn_mount_registry_add(cairn_dagstore_mounts(ds), "hook", &hook_ops_reg,
						  NULL), 0);
}

static void ds_open(void)
{
	cairn_dagstore_options o = CAIRN_DAGSTORE_OPTIONS_INIT;

	o.no_sync = true;
	ds_open_opts(&o);
}

/* Closes the store; with `db_too` the database as well (a restart). */
static void ds_close(bool db_too)
{
	cairn_dagstore_close(ds);
	ds = NULL;
	if (db_too) {
		cairn_db_close(db);
		db = NULL;
	}
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/cairn-dst-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(tmpdir));
	hook_reset();
	ds_open();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hook_reset();
	ds_close(true);
	rm_tree(tmpdir);
	return 0;
}

static void state_is(const char *key, cairn_shard_state want)
{
	cairn_shard_info in;

	if (cairn_dagstore_info(&in, ds, key))
		fail_msg("info %s: %s", key, cairn_error_last());
	if (in.state != want)
		fail_msg("shard %s is %s (error: %s), expected %s", key,
			 cairn_shard_state_name(in.state), in.error ? in.error : "none",
			 cairn_shard_state_name(want));
	if (want == CAIRN_SHARD_ERRORED) {
		assert_non_null(in.error);
		assert_true(strlen(in.error) > 0);
	} else {
		assert_null(in.error);
	}
	cairn_shard_info_clear(&in);
}

/* The error recorded on an Errored shard (static buffer). */
static const char *error_of(const char *key)
{
	static char buf[2048];
	cairn_shard_info in;

	assert_int_equal(cairn_dagstore_info(&in, ds, key), 0);
	assert_int_equal(in.state, CAIRN_SHARD_ERRORED);
	assert_non_null(in.error);
	snprintf(buf, sizeof(buf), "%s", in.error);
	cairn_shard_info_clear(&in);
	return buf;
}

static void register_one(const char *key, const char *url)
{
	cairn_shard_spec s = {key, url};
	size_t added = 0;

	if (cairn_dagstore_register(ds, &s, 1, &added))
		fail_msg("register %s: %s", key, cairn_error_last());
	assert_int_equal(added, 1);
}

/* Makes a CAR at tmpdir/NAME of blocks idx, registers it as KEY (file URL or
 * hook URL). */
static void shard_make(const char *key, const char *name, const size_t *idx, size_t n,
		       unsigned version, uint64_t pad_to, bool hooked)
{
	char path[PATH_MAX], url[PATH_MAX + 16];

	tpath(path, "%s", name);
	car_make(path, idx, n, version, pad_to);
	if (hooked)
		snprintf(url, sizeof(url), "hook://%s", path);
	else
		file_url(url, path);
	register_one(key, url);
}

/* Reads every block of idx through an acquirer of `key` and checks the bytes;
 * checks blocks not in it are absent. */
static void check_acquired(const char *key, const size_t *idx, size_t n)
{
	cairn_store *s;
	bool in[POOL] = {0};
	cairn_buf b = {0};

	if (cairn_dagstore_acquire(&s, ds, key))
		fail_msg("acquire %s: %s", key, cairn_error_last());
	for (size_t i = 0; i < n; i++)
		in[idx[i]] = true;
	for (size_t i = 0; i < POOL; i++) {
		uint64_t size = 0;

		if (!in[i]) {
			assert_int_equal(cairn_store_has(s, &pool[i].cid), 0);
			assert_int_equal(cairn_store_get(s, &b, &pool[i].cid), CAIRN_ENOTFOUND);
			continue;
		}
		assert_int_equal(cairn_store_has(s, &pool[i].cid), 1);
		if (cairn_store_get(s, &b, &pool[i].cid))
			fail_msg("get block %zu from %s: %s", i, key, cairn_error_last());
		assert_int_equal(b.len, pool[i].len);
		assert_memory_equal(b.data, pool[i].data, pool[i].len);
		assert_int_equal(cairn_store_get_size(s, &size, &pool[i].cid), 0);
		assert_int_equal(size, pool[i].len);
	}
	cairn_buf_free(&b);
	cairn_store_free(s);
}

typedef struct keys {
	char k[16][64];
	size_t n;
} keys;

static int collect_key(const cairn_shard_info *info, void *payload)
{
	keys *ks = payload;

	assert_true(ks->n < 16);
	snprintf(ks->k[ks->n++], sizeof(ks->k[0]), "%s", info->key);
	return 0;
}

/* --------------------------------------------------------------- register */

static void test_register(void **state)
{
	char url[PATH_MAX], url2[PATH_MAX];
	cairn_shard_spec specs[4];
	cairn_shard_info in;
	keys ks = {0};
	size_t added = 99;

	(void)state;
	tpath(url, "a.car");
	file_url(url2, url);
	snprintf(url, sizeof(url), "%s", url2);
	tpath(url2, "b.car");
	{
		char u[PATH_MAX];

		file_url(u, url2);
		snprintf(url2, sizeof(url2), "%s", u);
	}
	/* A batch, out of key order, with a repeat of the same spec. */
	specs[0] = (cairn_shard_spec){"k3", url};
	specs[1] = (cairn_shard_spec){"k1", url2};
	specs[2] = (cairn_shard_spec){"k2", "http://127.0.0.1:1/x.car"};
	specs[3] = (cairn_shard_spec){"k3", url};
	assert_int_equal(cairn_dagstore_register(ds, specs, 4, &added), 0);
	assert_int_equal(added, 3);
	assert_int_equal(cairn_dagstore_list(ds, collect_key, &ks), 0);
	assert_int_equal(ks.n, 3);
	assert_string_equal(ks.k[0], "k1");
	assert_string_equal(ks.k[1], "k2");
	assert_string_equal(ks.k[2], "k3");
	assert_int_equal(cairn_dagstore_info(&in, ds, "k1"), 0);
	assert_string_equal(in.key, "k1");
	assert_string_equal(in.url, url2);
	assert_int_equal(in.state, CAIRN_SHARD_NEW);
	assert_null(in.error);
	assert_int_equal(in.refs, 0);
	assert_int_equal(in.blocks, 0);
	assert_int_equal(in.indexed_at, 0);
	assert_true(in.created_at > 0);
	cairn_shard_info_clear(&in);

	/* Idempotent: the same batch again adds nothing. */
	assert_int_equal(cairn_dagstore_register(ds, specs, 4, &added), 0);
	assert_int_equal(added, 0);

	/* A conflicting URL: CAIRN_EEXISTS and nothing of the batch registered. */
	specs[0] = (cairn_shard_spec){"k4", url};
	specs[1] = (cairn_shard_spec){"k1", url}; /* was url2 */
	specs[2] = (cairn_shard_spec){"k5", url2};
	added = 99;
	assert_int_equal(cairn_dagstore_register(ds, specs, 3, &added), CAIRN_EEXISTS);
	assert_non_null(strstr(cairn_error_last(), "k1"));
	assert_int_equal(added, 0);
	assert_int_equal(cairn_dagstore_info(&in, ds, "k4"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_dagstore_info(&in, ds, "k5"), CAIRN_ENOTFOUND);
	/* A conflict inside one batch too. */
	specs[0] = (cairn_shard_spec){"k6", url};
	specs[1] = (cairn_shard_spec){"k6", url2};
	assert_int_equal(cairn_dagstore_register(ds, specs, 2, &added), CAIRN_EEXISTS);
	assert_int_equal(cairn_dagstore_info(&in, ds, "k6"), CAIRN_ENOTFOUND);

	/* Bad specs. */
	specs[0] = (cairn_shard_spec){"", url};
	assert_int_equal(cairn_dagstore_register(ds, specs, 1, NULL), CAIRN_EINVAL);
	specs[0] = (cairn_shard_spec){NULL, url};
	assert_int_equal(cairn_dagstore_register(ds, specs, 1, NULL), CAIRN_EINVAL);
	specs[0] = (cairn_shard_spec){"k7", "relative/path.car"};
	assert_int_equal(cairn_dagstore_register(ds, specs, 1, NULL), CAIRN_EINVAL);
	specs[0] = (cairn_shard_spec){"k7", NULL};
	assert_int_equal(cairn_dagstore_register(ds, specs, 1, NULL), CAIRN_EINVAL);
	{
		char longkey[CAIRN_SHARD_KEY_MAX + 1];

		memset(longkey, 'x', sizeof(longkey) - 1);
		longkey[sizeof(longkey) - 1] = 0;
		specs[0] = (cairn_shard_spec){longkey, url};
		assert_int_equal(cairn_dagstore_register(ds, specs, 1, NULL), CAIRN_EINVAL);
	}
	assert_int_equal(cairn_dagstore_info(&in, ds, "k7"), CAIRN_ENOTFOUND);
	/* An empty batch. */
	assert_int_equal(cairn_dagstore_register(ds, specs, 0, &added), 0);
	assert_int_equal(added, 0);

	/* Kept across a restart, and still idempotent. */
	ds_close(true);
	ds_open();
	ks.n = 0;
	assert_int_equal(cairn_dagstore_list(ds, collect_key, &ks), 0);
	assert_int_equal(ks.n, 3);
	specs[0] = (cairn_shard_spec){"k2", "http://127.0.0.1:1/x.car"};
	assert_int_equal(cairn_dagstore_register(ds, specs, 1, &added), 0);
	assert_int_equal(added, 0);
	assert_int_equal(cairn_dagstore_info(&in, ds, "nope"), CAIRN_ENOTFOUND);
}

/* A large batch registers in one go, listed in key order afterwards. */
typedef struct walk {
	size_t n;
	char last[16];
	bool sorted;
} walk;

static int walk_one(const cairn_shard_info *in, void *payload)
{
	walk *w = payload;

	if (w->n && strcmp(w->last, in->key) >= 0)
		w->sorted = false;
	snprintf(w->last, sizeof(w->last), "%s", in->key);
	if (in->state != CAIRN_SHARD_NEW)
		w->sorted = false;
	w->n++;
	return 0;
}

static int stop_at_ten(const cairn_shard_info *in, void *payload)
{
	(void)in;
	return ++*(size_t *)payload == 10 ? 42 : 0;
}

static void test_register_many(void **state)
{
	enum { N = 5000 };
	static char kbuf[N][16], ubuf[N][40];
	cairn_shard_spec *specs = calloc(N, sizeof(*specs));
	walk w = {0, "", true};
	size_t added = 0, calls = 0;

	(void)state;
	assert_non_null(specs);
	for (size_t i = 0; i < N; i++) {
		snprintf(kbuf[i], sizeof(kbuf[i]), "p%05zu", (i * 7919) % N);
		snprintf(ubuf[i], sizeof(ubuf[i]), "file:///pieces/%zu.car", (i * 7919) % N);
		specs[i].key = kbuf[i];
		specs[i].url = ubuf[i];
	}
	assert_int_equal(cairn_dagstore_register(ds, specs, N, &added), 0);
	assert_int_equal(added, N);
	assert_int_equal(cairn_dagstore_register(ds, specs, N, &added), 0);
	assert_int_equal(added, 0);
	free(specs);
	assert_int_equal(cairn_dagstore_list(ds, walk_one, &w), 0);
	assert_int_equal(w.n, N);
	assert_true(w.sorted);
	ds_close(true);
	ds_open();
	w = (walk){0, "", true};
	assert_int_equal(cairn_dagstore_list(ds, walk_one, &w), 0);
	assert_int_equal(w.n, N);
	assert_true(w.sorted);
	/* Non-zero from the callback stops the walk and is returned. */
	assert_int_equal(cairn_dagstore_list(ds, stop_at_ten, &calls), 42);
	assert_int_equal(calls, 10);
}

/* ------------------------------------------------------------ transitions */

static void test_transitions(void **state)
{
	size_t a[20], b[10];
	cairn_store *s1, *s2;
	cairn_shard_info in;
	char path[PATH_MAX];
	keys ks = {0};
	cairn_buf buf = {0};

	(void)state;
	for (size_t i = 0; i < 20; i++)
		a[i] = i;
	for (size_t i = 0; i < 10; i++)
		b[i] = 100 + i;
	shard_make("sa", "a.car", a, 20, 1, 0, true);
	shard_make("sb", "b.car", b, 10, 2, 0, false);
	state_is("sa", CAIRN_SHARD_NEW);

	/* Things a New shard refuses. */
	assert_int_equal(cairn_dagstore_recover(ds, "sa"), CAIRN_EINVAL);
	assert_int_equal(cairn_dagstore_has(ds, &pool[0].cid), 0);
	assert_int_equal(cairn_dagstore_initialize(ds, "nope"), CAIRN_ENOTFOUND);

	/* New -> Initializing (seen during the reads) -> Available. */
	pthread_mutex_lock(&hook.lock);
	hook.key = "sa";
	pthread_mutex_unlock(&hook.lock);
	if (cairn_dagstore_initialize(ds, "sa"))
		fail_msg("initialize: %s", cairn_error_last());
	assert_true(atomic_load(&hook.reads) > 0);
	assert_int_equal(hook.seen_state, CAIRN_SHARD_INITIALIZING);
	state_is("sa", CAIRN_SHARD_AVAILABLE);
	assert_int_equal(cairn_dagstore_info(&in, ds, "sa"), 0);
	assert_int_equal(in.blocks, 20);
	assert_true(in.data_size > 0);
	assert_true(in.index_size > 0);
	assert_true(in.indexed_at > 0);
	assert_int_equal(in.refs, 0);
	tpath(path, "ds/indexes/%u.idx", in.id);
	assert_true(exists(path));
	assert_int_equal(file_size(path), (off_t)in.index_size);
	cairn_shard_info_clear(&in);
	/* A second initialize of an Available shard rebuilds it. */
	assert_int_equal(cairn_dagstore_initialize(ds, "sa"), 0);
	state_is("sa", CAIRN_SHARD_AVAILABLE);
	/* Recover is only for Errored shards. */
	assert_int_equal(cairn_dagstore_recover(ds, "sa"), CAIRN_EINVAL);
	state_is("sa", CAIRN_SHARD_AVAILABLE);

	/* Available -> Serving (refs counted) -> Available. */
	if (cairn_dagstore_acquire(&s1, ds, "sa"))
		fail_msg("acquire: %s", cairn_error_last());
	assert_int_equal(cairn_dagstore_info(&in, ds, "sa"), 0);
	assert_int_equal(in.state, CAIRN_SHARD_SERVING);
	assert_int_equal(in.refs, 1);
	cairn_shard_info_clear(&in);
	assert_int_equal(cairn_dagstore_acquire(&s2, ds, "sa"), 0);
	assert_int_equal(cairn_dagstore_info(&in, ds, "sa"), 0);
	assert_int_equal(in.state, CAIRN_SHARD_SERVING);
	assert_int_equal(in.refs, 2);
	cairn_shard_info_clear(&in);
	/* Reads through the acquirer see the state Serving. */
	hook_reset();
	pthread_mutex_lock(&hook.lock);
	hook.key = "sa";
	pthread_mutex_unlock(&hook.lock);
	assert_int_equal(cairn_store_get(s1, &buf, &pool[3].cid), 0);
	assert_memory_equal(buf.data, pool[3].data, pool[3].len);
	assert_int_equal(hook.seen_state, CAIRN_SHARD_SERVING);
	assert_int_equal(hook.seen_refs, 2);
	hook_reset();
	/* In use: no destroy, no re-initialize. */
	assert_int_equal(cairn_dagstore_destroy(ds, "sa"), CAIRN_EINVAL);
	assert_int_equal(cairn_dagstore_initialize(ds, "sa"), CAIRN_EINVAL);
	cairn_store_free(s1);
	assert_int_equal(cairn_dagstore_info(&in, ds, "sa"), 0);
	assert_int_equal(in.state, CAIRN_SHARD_SERVING);
	assert_int_equal(in.refs, 1);
	cairn_shard_info_clear(&in);
	assert_int_equal(cairn_dagstore_destroy(ds, "sa"), CAIRN_EINVAL);
	cairn_store_free(s2);
	state_is("sa", CAIRN_SHARD_AVAILABLE);
	assert_int_equal(cairn_dagstore_info(&in, ds, "sa"), 0);
	assert_int_equal(in.refs, 0);
	cairn_shard_info_clear(&in);

	/* Lazy initialization: acquire of a New shard indexes it first. */
	state_is("sb", CAIRN_SHARD_NEW);
	check_acquired("sb", b, 10);
	state_is("sb", CAIRN_SHARD_AVAILABLE);
	check_acquired("sa", a, 20);

	/* Top-level reads over both. */
	for (size_t i = 0; i < 20; i++) {
		char key[CAIRN_SHARD_KEY_MAX];

		assert_int_equal(cairn_dagstore_get(ds, &buf, &pool[a[i]].cid, key), 0);
		assert_string_equal(key, "sa");
	}

	/* Destroy: index file, top-level entries and row go. */
	assert_int_equal(cairn_dagstore_info(&in, ds, "sa"), 0);
	tpath(path, "ds/indexes/%u.idx", in.id);
	cairn_shard_info_clear(&in);
	assert_true(exists(path));
	assert_int_equal(cairn_dagstore_destroy(ds, "sa"), 0);
	assert_false(exists(path));
	assert_int_equal(cairn_dagstore_info(&in, ds, "sa"), CAIRN_ENOTFOUND);
	assert_int_equal(cairn_dagstore_destroy(ds, "sa"), CAIRN_ENOTFOUND);
	for (size_t i = 0; i < 20; i++) {
		assert_int_equal(cairn_dagstore_has(ds, &pool[a[i]].cid), 0);
		assert_int_equal(cairn_dagstore_get(ds, &buf, &pool[a[i]].cid, NULL), CAIRN_ENOTFOUND);
		assert_int_equal(cairn_dagstore_lookup(ds, &pool[a[i]].cid, collect_key, &ks), 0);
	}
	assert_int_equal(ks.n, 0);
	assert_int_equal(cairn_dagstore_acquire(&s1, ds, "sa"), CAIRN_ENOTFOUND);
	/* The other shard is untouched. */
	assert_int_equal(cairn_dagstore_has(ds, &pool[b[0]].cid), 1);
	/* Destroy of a New and of an Errored shard works too. */
	shard_make("sc", "c.car", a, 5, 1, 0, false);
	assert_int_equal(cairn_dagstore_destroy(ds, "sc"), 0);
	/* And a destroyed key can be registered again. */
	shard_make("sa", "a2.car", a, 3, 1, 0, false);
	assert_int_equal(cairn_dagstore_initialize(ds, "sa"), 0);
	assert_int_equal(cairn_dagstore_has(ds, &pool[a[2]].cid), 1);
	assert_int_equal(cairn_dagstore_has(ds, &pool[a[3]].cid), 0);

	/* A restart: the destroyed shard stays gone, the others Available. */
	ds_close(true);
	ds_open();
	state_is("sa", CAIRN_SHARD_AVAILABLE);
	state_is("sb", CAIRN_SHARD_AVAILABLE);
	assert_int_equal(cairn_dagstore_has(ds, &pool[a[3]].cid), 0);
	assert_int_equal(cairn_dagstore_has(ds, &pool[b[3]].cid), 1);
	cairn_buf_free(&buf);
}

/* An acquirer of a shard being indexed waits for the outcome. */
typedef struct init_arg {
	const char *key;
	int rc;
	cairn_store *store;
	atomic_bool done;
} init_arg;

static void *init_thread(void *p)
{
	init_arg *a = p;

	a->rc = cairn_dagstore_initialize(ds, a->key);
	atomic_store(&a->done, true);
	return NULL;
}

static void *acquire_thread(void *p)
{
	init_arg *a = p;

	a->rc = cairn_dagstore_acquire(&a->store, ds, a->key);
	atomic_store(&a->done, true);
	return NULL;
}

static void test_acquire_waits(void **state)
{
	size_t a[8];
	pthread_t t1, t2;
	init_arg ia = {"sw", -99, NULL, false}, aa = {"sw", -99, NULL, false};
	struct timespec ms = {0, 20 * 1000 * 1000};

	(void)state;
	for (size_t i = 0; i < 8; i++)
		a[i] = 200 + i;
	shard_make("sw", "w.car", a, 8, 1, 0, true);
	pthread_mutex_lock(&hook.lock);
	hook.gate = true;
	pthread_mutex_unlock(&hook.lock);
	assert_int_equal(pthread_create(&t1, NULL, init_thread, &ia), 0);
	pthread_mutex_lock(&hook.lock);
	while (!hook.waiting)
		pthread_cond_wait(&hook.cond, &hook.lock);
	pthread_mutex_unlock(&hook.lock);
	state_is("sw", CAIRN_SHARD_INITIALIZING);
	/* A second initialize is refused meanwhile; destroy too. */
	assert_int_equal(cairn_dagstore_initialize(ds, "sw"), CAIRN_EINVAL);
	assert_int_equal(cairn_dagstore_destroy(ds, "sw"), CAIRN_EINVAL);
	assert_int_equal(pthread_create(&t2, NULL, acquire_thread, &aa), 0);
	for (int i = 0; i < 5; i++)
		nanosleep(&ms, NULL);
	assert_false(atomic_load(&aa.done));
	pthread_mutex_lock(&hook.lock);
	hook.gate = false;
	pthread_cond_broadcast(&hook.cond);
	pthread_mutex_unlock(&hook.lock);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(ia.rc, 0);
	assert_int_equal(aa.rc, 0);
	assert_non_null(aa.store);
	{
		cairn_shard_info in;

		assert_int_equal(cairn_dagstore_info(&in, ds, "sw"), 0);
		assert_int_equal(in.state, CAIRN_SHARD_SERVING);
		assert_int_equal(in.refs, 1);
		cairn_shard_info_clear(&in);
	}
	cairn_store_free(aa.store);
	state_is("sw", CAIRN_SHARD_AVAILABLE);
}

/* ---------------------------------------------------------------- failures */

static void test_bad_pieces(void **state)
{
	size_t a[30];
	char path[PATH_MAX], bad[PATH_MAX], url[PATH_MAX];
	cairn_store *s;
	cairn_buf buf = {0};
	const char *why;

	(void)state;
	for (size_t i = 0; i < 30; i++)
		a[i] = i;

	/* A block whose bytes do not hash to its CID. */
	shard_make("corrupt", "corrupt.car", a, 30, 1, 0, false);
	tpath(path, "corrupt.car");
	tpath(bad, "corrupt.good");
	car_make(bad, a, 30, 1, 0); /* the good copy, for the repair */
	flip_in_file(path, pool[17].data, pool[17].len);
	assert_true(cairn_dagstore_initialize(ds, "corrupt") < 0);
	why = error_of("corrupt");
	if (!strstr(why, "corrupt.car"))
		fail_msg("the reason does not name the file: %s", why);
	if (!strstr(why, "hash") && !strstr(why, "match"))
		fail_msg("the reason does not say the block is wrong: %s", why);
	/* Its blocks are not served, and acquire says why. */
	assert_int_equal(cairn_dagstore_has(ds, &pool[0].cid), 0);
	assert_int_equal(cairn_dagstore_acquire(&s, ds, "corrupt"), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "Errored"));
	/* Initialize is not the way out: recover is. */
	assert_int_equal(cairn_dagstore_initialize(ds, "corrupt"), CAIRN_EINVAL);
	/* Recover with the file still bad: Errored again, with the reason. */
	assert_true(cairn_dagstore_recover(ds, "corrupt") < 0);
	error_of("corrupt");
	/* Fixed: recover -> Available. */
	assert_int_equal(rename(bad, path), 0);
	if (cairn_dagstore_recover(ds, "corrupt"))
		fail_msg("recover: %s", cairn_error_last());
	state_is("corrupt", CAIRN_SHARD_AVAILABLE);
	check_acquired("corrupt", a, 30);

	/* Truncated in the middle of a section. */
	shard_make("truncated", "truncated.car", a, 30, 1, 0, false);
	tpath(path, "truncated.car");
	assert_int_equal(truncate(path, file_size(path) - (off_t)pool[29].len / 2), 0);
	assert_true(cairn_dagstore_initialize(ds, "truncated") < 0);
	why = error_of("truncated");
	if (!strstr(why, "truncated.car"))
		fail_msg("the reason does not name the file: %s", why);
	/* Cut inside the header. */
	shard_make("cut", "cut.car", a, 3, 1, 0, false);
	tpath(path, "cut.car");
	assert_int_equal(truncate(path, 20), 0);
	assert_true(cairn_dagstore_initialize(ds, "cut") < 0);
	error_of("cut");
	/* Not a CAR at all. */
	tpath(path, "junk.car");
	{
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		fputs("this is not a CAR file at all, only some text\n", f);
		fclose(f);
	}
	file_url(url, path);
	register_one("junk", url);
	assert_true(cairn_dagstore_initialize(ds, "junk") < 0);
	error_of("junk");
	/* A missing file. */
	tpath(path, "missing.car");
	file_url(url, path);
	register_one("missing", url);
	assert_true(cairn_dagstore_initialize(ds, "missing") < 0);
	why = error_of("missing");
	if (!strstr(why, "missing.car"))
		fail_msg("the reason does not name the file: %s", why);
	/* Lazy initialization of a missing one fails the acquire with the reason. */
	tpath(path, "missing2.car");
	file_url(url, path);
	register_one("missing2", url);
	assert_true(cairn_dagstore_acquire(&s, ds, "missing2") < 0);
	why = error_of("missing2");
	/* A scheme nobody registered. */
	register_one("ftp", "ftp://example.com/x.car");
	assert_true(cairn_dagstore_initialize(ds, "ftp") < 0);
	error_of("ftp");
	/* A read failure in the middle. */
	shard_make("eio", "eio.car", a, 30, 1, 0, true);
	pthread_mutex_lock(&hook.lock);
	hook.fail = true;
	pthread_mutex_unlock(&hook.lock);
	assert_true(cairn_dagstore_initialize(ds, "eio") < 0);
	why = error_of("eio");
	if (!strstr(why, "injected read failure"))
		fail_msg("the reason is not the mount's: %s", why);
	/* Recover sees Recovering while it reads; the mount now works. */
	hook_reset();
	pthread_mutex_lock(&hook.lock);
	hook.key = "eio";
	pthread_mutex_unlock(&hook.lock);
	assert_int_equal(cairn_dagstore_recover(ds, "eio"), 0);
	assert_int_equal(hook.seen_state, CAIRN_SHARD_RECOVERING);
	hook_reset();
	state_is("eio", CAIRN_SHARD_AVAILABLE);
	check_acquired("eio", a, 30);

	/* Failures are kept across a restart, reasons included. */
	ds_close(true);
	ds_open();
	error_of("truncated");
	error_of("junk");
	state_is("corrupt", CAIRN_SHARD_AVAILABLE);
	/* Errored shards can be destroyed. */
	assert_int_equal(cairn_dagstore_destroy(ds, "junk"), 0);
	assert_int_equal(cairn_dagstore_destroy(ds, "truncated"), 0);
	/* The blocks of the good shards are served throughout. */
	for (size_t i = 0; i < 30; i++) {
		assert_int_equal(cairn_dagstore_get(ds, &buf, &pool[i].cid, NULL), 0);
		assert_memory_equal(buf.data, pool[i].data, pool[i].len);
	}
	cairn_buf_free(&buf);
}

/* initialize_all over good and bad shards: counts, progress, reasons. */
typedef struct prog {
	uint64_t calls, last_done, failed, blocks;
	bool monotonic;
} prog;

static void on_progress(const cairn_dagstore_progress *p, void *payload)
{
	prog *pr = payload;

	pr->calls++;
	if (p->done != pr->last_done + 1)
		pr->monotonic = false;
	pr->last_done = p->done;
	pr->failed = p->failed;
	pr->blocks = p->blocks;
	assert_non_null(p->key);
	{
		/* By the time it is reported, the outcome is on the shard. */
		cairn_shard_info in;

		assert_int_equal(cairn_dagstore_info(&in, ds, p->key), 0);
		assert_int_equal(in.state, p->result ? CAIRN_SHARD_ERRORED : CAIRN_SHARD_AVAILABLE);
		assert_true(p->result ? in.error != NULL : in.error == NULL);
		cairn_shard_info_clear(&in);
	}
}

static void test_initialize_all(void **state)
{
	size_t idx[40];
	char name[64], key[64], path[PATH_MAX];
	cairn_dagstore_progress out;
	prog pr = {0, 0, 0, 0, true};
	uint64_t want_blocks = 0;

	(void)state;
	for (size_t i = 0; i < 40; i++)
		idx[i] = i * 3;
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "s%02d.car", i);
		snprintf(key, sizeof(key), "s%02d", i);
		shard_make(key, name, idx, (size_t)(10 + i * 2), i % 2 ? 1 : 2, 0, false);
		if (i % 4 != 3)
			want_blocks += (uint64_t)(10 + i * 2);
	}
	/* Every fourth one broken. */
	tpath(path, "s03.car");
	assert_int_equal(truncate(path, file_size(path) - 1), 0);
	tpath(path, "s07.car");
	flip_in_file(path, pool[idx[5]].data, pool[idx[5]].len);
	tpath(path, "s11.car");
	unlink(path);
	/* One Available before: not redone. */
	assert_int_equal(cairn_dagstore_initialize(ds, "s00"), 0);
	want_blocks -= 10;
	assert_int_equal(cairn_dagstore_initialize_all(ds, 3, on_progress, &pr, &out), 0);
	assert_int_equal(out.total, 11);
	assert_int_equal(out.done, 11);
	assert_int_equal(out.failed, 3);
	assert_int_equal(out.blocks, want_blocks);
	assert_int_equal(pr.calls, 11);
	assert_true(pr.monotonic);
	assert_int_equal(pr.failed, 3);
	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof(key), "s%02d", i);
		state_is(key, i % 4 == 3 ? CAIRN_SHARD_ERRORED : CAIRN_SHARD_AVAILABLE);
	}
	assert_non_null(strstr(error_of("s11"), "s11.car"));
	/* Nothing left to do. */
	assert_int_equal(cairn_dagstore_initialize_all(ds, 0, NULL, NULL, &out), 0);
	assert_int_equal(out.total, 0);
	assert_int_equal(out.failed, 0);
	/* NULL out and one thread. */
	shard_make("s12", "s12.car", idx, 5, 1, 0, false);
	assert_int_equal(cairn_dagstore_initialize_all(ds, 1, NULL, NULL, NULL), 0);
	state_is("s12", CAIRN_SHARD_AVAILABLE);
}

/* A missing or damaged index file: acquire fails, the shard is Errored with
 * the reason, recovery rebuilds it. */
static void index_damage(bool remove_it)
{
	size_t a[25];
	char path[PATH_MAX];
	cairn_shard_info in;
	cairn_store *s;
	const char *why;

	for (size_t i = 0; i < 25; i++)
		a[i] = 50 + i;
	shard_make("x", "x.car", a, 25, 1, 0, false);
	assert_int_equal(cairn_dagstore_initialize(ds, "x"), 0);
	assert_int_equal(cairn_dagstore_info(&in, ds, "x"), 0);
	tpath(path, "ds/indexes/%u.idx", in.id);
	cairn_shard_info_clear(&in);
	ds_close(true);
	if (remove_it)
		assert_int_equal(unlink(path), 0);
	else
		flip_byte_at(path, file_size(path) / 2);
	ds_open();
	assert_true(cairn_dagstore_acquire(&s, ds, "x") < 0);
	why = error_of("x");
	if (!strstr(why, "index"))
		fail_msg("the reason does not mention the index: %s", why);
	/* The failure is durable. */
	ds_close(true);
	ds_open();
	error_of("x");
	assert_int_equal(cairn_dagstore_acquire(&s, ds, "x"), CAIRN_EINVAL);
	if (cairn_dagstore_recover(ds, "x"))
		fail_msg("recover: %s", cairn_error_last());
	state_is("x", CAIRN_SHARD_AVAILABLE);
	assert_true(exists(path));
	check_acquired("x", a, 25);
	/* And still after a restart (the checksum is the new file's). */
	ds_close(true);
	ds_open();
	check_acquired("x", a, 25);
	state_is("x", CAIRN_SHARD_AVAILABLE);
}

static void test_index_missing(void **state)
{
	(void)state;
	index_damage(true);
}

static void test_index_corrupt(void **state)
{
	(void)state;
	index_damage(false);
}

/* --------------------------------------------------------------- the reads */

/* Shards over the pool with overlaps: block i is in shard j when (i + j) % 3
 * == 0 or i % 7 == j, so many blocks are in two or three shards; a few
 * blocks are in none. Shard 0 is a CARv1 zero-padded to a power of two (a
 * Filecoin piece), shard 1 a CARv2, shard 2 repeats a block, the rest CARv1. */
#define NSHARDS 6
static size_t shard_blocks[NSHARDS][POOL + 1];
static size_t shard_n[NSHARDS];

static bool in_shard(size_t i, size_t j)
{
	if (i >= 380)
		return false; /* in no shard */
	return (i + j) % 3 == 0 || i % 7 == j;
}

static void make_overlapping(void)
{
	char key[16], name[32];

	for (size_t j = 0; j < NSHARDS; j++) {
		shard_n[j] = 0;
		for (size_t i = 0; i < POOL; i++)
			if (in_shard(i, j))
				shard_blocks[j][shard_n[j]++] = i;
		if (j == 2)
			shard_blocks[j][shard_n[j]++] = shard_blocks[j][0];
		snprintf(key, sizeof(key), "piece-%zu", j);
		snprintf(name, sizeof(name), "piece-%zu.car", j);
		shard_make(key, name, shard_blocks[j], shard_n[j], j == 1 ? 2 : 1,
			   j == 0 ? 8u << 20 : 0, false);
	}
}

static void check_all_reads(void)
{
	cairn_buf buf = {0};

	for (size_t i = 0; i < POOL; i++) {
		char key[CAIRN_SHARD_KEY_MAX];
		keys ks = {0};
		size_t holders = 0;
		uint64_t size = 0;
		int n;

		for (size_t j = 0; j < NSHARDS; j++)
			holders += in_shard(i, j);
		n = cairn_dagstore_lookup(ds, &pool[i].cid, collect_key, &ks);
		assert_int_equal(n, (int)holders);
		assert_int_equal(ks.n, holders);
		/* Exactly the shards holding it, in key order. */
		{
			size_t k = 0;

			for (size_t j = 0; j < NSHARDS; j++) {
				char want[16];

				if (!in_shard(i, j))
					continue;
				snprintf(want, sizeof(want), "piece-%zu", j);
				assert_string_equal(ks.k[k], want);
				k++;
			}
		}
		if (!holders) {
			assert_int_equal(cairn_dagstore_has(ds, &pool[i].cid), 0);
			assert_int_equal(cairn_dagstore_get(ds, &buf, &pool[i].cid, key),
					 CAIRN_ENOTFOUND);
			assert_int_equal(cairn_dagstore_get_trusting_local(ds, &buf, &pool[i].cid,
									   key), CAIRN_ENOTFOUND);
			assert_int_equal(cairn_dagstore_get_size(ds, &size, &pool[i].cid),
					 CAIRN_ENOTFOUND);
			continue;
		}
		assert_int_equal(cairn_dagstore_has(ds, &pool[i].cid), 1);
		if (cairn_dagstore_get(ds, &buf, &pool[i].cid, key))
			fail_msg("get %zu: %s", i, cairn_error_last());
		assert_int_equal(buf.len, pool[i].len);
		assert_memory_equal(buf.data, pool[i].data, pool[i].len);
		{
			bool ok = false;

			for (size_t k = 0; k < ks.n; k++)
				ok |= !strcmp(ks.k[k], key);
			if (!ok)
				fail_msg("get %zu came from %s, which does not hold it", i, key);
		}
		assert_int_equal(cairn_dagstore_get(ds, &buf, &pool[i].cid, NULL), 0);
		/* the serving read: the same bytes, from a holder */
		cairn_buf_clear(&buf);
		assert_int_equal(cairn_dagstore_get_trusting_local(ds, &buf, &pool[i].cid, key), 0);
		assert_int_equal(buf.len, pool[i].len);
		assert_memory_equal(buf.data, pool[i].data, pool[i].len);
		assert_int_equal(cairn_dagstore_get_size(ds, &size, &pool[i].cid), 0);
		assert_int_equal(size, pool[i].len);
	}
	/* A CIDv0-style lookup would need dag-pb; an identity CID is its own data. */
	{
		cairn_cid id;
		static const uint8_t hello[] = "hello identity";

		assert_int_equal(cairn_cid_compute(&id, 1, CAIRN_CODEC_RAW, CAIRN_MH_IDENTITY, hello,
						   sizeof(hello) - 1), 0);
		assert_int_equal(cairn_dagstore_get(ds, &buf, &id, NULL), 0);
		assert_int_equal(buf.len, sizeof(hello) - 1);
		assert_memory_equal(buf.data, hello, sizeof(hello) - 1);
		assert_int_equal(cairn_dagstore_has(ds, &id), 1);
	}
	/* The same multihash under another codec finds the same bytes. */
	{
		cairn_cid other;

		assert_int_equal(cairn_cid_compute(&other, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_SHA2_256,
						   pool[0].data, pool[0].len), 0);
		assert_int_equal(cairn_dagstore_get(ds, &buf, &other, NULL), 0);
		assert_memory_equal(buf.data, pool[0].data, pool[0].len);
	}
	cairn_buf_free(&buf);
	for (size_t j = 0; j < NSHARDS; j++) {
		char key[16];

		snprintf(key, sizeof(key), "piece-%zu", j);
		check_acquired(key, shard_blocks[j], shard_n[j]);
	}
}

static void test_reads(void **state)
{
	cairn_dagstore_progress out;
	cairn_shard_info in;
	cairn_buf buf = {0};

	(void)state;
	make_overlapping();
	assert_int_equal(cairn_dagstore_initialize_all(ds, 4, NULL, NULL, &out), 0);
	assert_int_equal(out.total, NSHARDS);
	assert_int_equal(out.failed, 0);
	for (size_t j = 0; j < NSHARDS; j++) {
		char key[16];

		snprintf(key, sizeof(key), "piece-%zu", j);
		assert_int_equal(cairn_dagstore_info(&in, ds, key), 0);
		assert_int_equal(in.state, CAIRN_SHARD_AVAILABLE);
		assert_int_equal(in.blocks, shard_n[j]);
		cairn_shard_info_clear(&in);
	}
	/* The padded piece: the data ends at the padding. */
	assert_int_equal(cairn_dagstore_info(&in, ds, "piece-0"), 0);
	assert_true(in.data_size < (8u << 20));
	cairn_shard_info_clear(&in);
	check_all_reads();

	/* Reopen keeps everything. */
	ds_close(true);
	ds_open();
	check_all_reads();

	/* Destroying one holder of shared blocks leaves the others serving. */
	assert_int_equal(cairn_dagstore_destroy(ds, "piece-0"), 0);
	for (size_t i = 0; i < POOL; i++) {
		keys ks = {0};
		size_t holders = 0;

		for (size_t j = 1; j < NSHARDS; j++)
			holders += in_shard(i, j);
		assert_int_equal(cairn_dagstore_lookup(ds, &pool[i].cid, collect_key, &ks),
				 (int)holders);
		for (size_t k = 0; k < ks.n; k++)
			assert_string_not_equal(ks.k[k], "piece-0");
		assert_int_equal(cairn_dagstore_has(ds, &pool[i].cid), holders ? 1 : 0);
		if (holders) {
			char key[CAIRN_SHARD_KEY_MAX];

			assert_int_equal(cairn_dagstore_get(ds, &buf, &pool[i].cid, key), 0);
			assert_string_not_equal(key, "piece-0");
			assert_memory_equal(buf.data, pool[i].data, pool[i].len);
		}
	}
	/* gc merges the top-level index, dropping the destroyed records. */
	{
		cairn_dagstore_gc_stats gs;

		assert_int_equal(cairn_dagstore_gc(ds, &gs), 0);
		assert_int_equal(gs.orphans_removed, 0);
	}
	for (size_t i = 0; i < POOL; i++) {
		size_t holders = 0;

		for (size_t j = 1; j < NSHARDS; j++)
			holders += in_shard(i, j);
		assert_int_equal(cairn_dagstore_has(ds, &pool[i].cid), holders ? 1 : 0);
	}
	/* A shard Errored in the middle still lets lookups of the others work. */
	{
		char path[PATH_MAX];

		assert_int_equal(cairn_dagstore_info(&in, ds, "piece-1"), 0);
		tpath(path, "ds/indexes/%u.idx", in.id);
		cairn_shard_info_clear(&in);
		ds_close(true);
		assert_int_equal(unlink(path), 0);
		ds_open();
		for (size_t i = 0; i < POOL; i++) {
			keys ks = {0};
			size_t holders = 0;

			for (size_t j = 2; j < NSHARDS; j++)
				holders += in_shard(i, j);
			if (cairn_dagstore_lookup(ds, &pool[i].cid, collect_key, &ks) != (int)holders)
				fail_msg("lookup of block %zu with piece-1's index gone: %s", i,
					 cairn_error_last());
		}
		error_of("piece-1");
	}
	cairn_buf_free(&buf);
}

typedef struct many_walk_t {
	size_t n;
	char prev[32];
	bool sorted;
} many_walk_t;

static int many_walk(const cairn_shard_info *in, void *payload)
{
	many_walk_t *w = payload;

	if (w->n && strcmp(w->prev, in->key) >= 0)
		w->sorted = false;
	snprintf(w->prev, sizeof(w->prev), "%s", in->key);
	w->n++;
	return 0;
}

/* A block held by more shards than a lookup's first batch of hits; and a
 * get that falls through a holder whose file is gone to one that works. */
static void test_many_holders(void **state)
{
	enum { HOLDERS = 40 };
	char key[32], name[32], path[PATH_MAX];
	cairn_buf buf = {0};
	many_walk_t w = {0, "", true};
	size_t idx[3];

	(void)state;
	for (size_t j = 0; j < HOLDERS; j++) {
		idx[0] = 5;            /* everywhere */
		idx[1] = 10 + j;       /* only here */
		idx[2] = 5;            /* twice in each */
		snprintf(key, sizeof(key), "h%02zu", (j * 17) % HOLDERS);
		snprintf(name, sizeof(name), "h%02zu.car", (j * 17) % HOLDERS);
		shard_make(key, name, idx, 3, 1, 0, false);
	}
	assert_int_equal(cairn_dagstore_initialize_all(ds, 2, NULL, NULL, NULL), 0);
	assert_int_equal(cairn_dagstore_lookup(ds, &pool[5].cid, many_walk, &w), HOLDERS);
	assert_int_equal(w.n, HOLDERS);
	assert_true(w.sorted);
	/* The holders' files go, but for the last one registered. */
	for (size_t j = 0; j + 1 < HOLDERS; j++) {
		snprintf(name, sizeof(name), "h%02zu.car", (j * 17) % HOLDERS);
		tpath(path, "%s", name);
		assert_int_equal(unlink(path), 0);
	}
	/* Reopened, so no mount is cached. */
	ds_close(true);
	ds_open();
	if (cairn_dagstore_get(ds, &buf, &pool[5].cid, key))
		fail_msg("get with most holders gone: %s", cairn_error_last());
	assert_memory_equal(buf.data, pool[5].data, pool[5].len);
	snprintf(name, sizeof(name), "h%02zu", ((size_t)(HOLDERS - 1) * 17) % HOLDERS);
	assert_string_equal(key, name);
	/* A block only a gone holder has: an error, not a wrong answer. */
	assert_true(cairn_dagstore_get(ds, &buf, &pool[10].cid, NULL) < 0);
	/* ... and that holder is Errored, with the reason, so lookups skip
	 * it from now on; recovered once its file is back, it serves again. */
	{
		cairn_shard_info in;

		assert_int_equal(cairn_dagstore_info(&in, ds, "h00"), 0);
		assert_int_equal(in.state, CAIRN_SHARD_ERRORED);
		assert_non_null(in.error);
		assert_non_null(strstr(in.error, "h00.car"));
		cairn_shard_info_clear(&in);
		assert_int_equal(cairn_dagstore_has(ds, &pool[10].cid), 0);
		idx[0] = 5;
		idx[1] = 10;
		idx[2] = 5;
		tpath(path, "h00.car");
		car_make(path, idx, 3, 1, 0);
		assert_int_equal(cairn_dagstore_recover(ds, "h00"), 0);
		if (cairn_dagstore_get(ds, &buf, &pool[10].cid, key))
			fail_msg("get after recovery: %s", cairn_error_last());
		assert_string_equal(key, "h00");
		assert_memory_equal(buf.data, pool[10].data, pool[10].len);
	}
	cairn_buf_free(&buf);
}

/* ---------------------------------------------------------- crash recovery */

static void test_resume(void **state)
{
	size_t a[30];
	char path[PATH_MAX], orphan[PATH_MAX];
	cairn_shard_info in;
	uint32_t id_b;

	(void)state;
	for (size_t i = 0; i < 30; i++)
		a[i] = 300 + i;
	shard_make("ra", "ra.car", a, 10, 1, 0, false);
	shard_make("rb", "rb.car", a + 10, 10, 1, 0, false);
	shard_make("rc", "rc.car", a + 20, 10, 1, 0, false);
	shard_make("rd", "rd.car", a, 30, 1, 0, false);
	assert_int_equal(cairn_dagstore_initialize(ds, "ra"), 0);
	assert_int_equal(cairn_dagstore_initialize(ds, "rb"), 0);
	assert_int_equal(cairn_dagstore_info(&in, ds, "rb"), 0);
	id_b = in.id;
	cairn_shard_info_clear(&in);
	ds_close(false);
	/* A crash during: ra's indexing (index and top-level entries done, row
	 * still Initializing), rb's recovery, rc's first indexing (nothing done).
	 * Plus what a crash leaves in indexes/: a temporary and an orphan. */
	assert_int_equal(cairn_db_exec(db, "UPDATE dagstore_shards SET state = 1 WHERE key = 'ra'"),
			 0);
	assert_int_equal(cairn_db_exec(db, "UPDATE dagstore_shards SET state = 128, "
					   "error = NULL WHERE key = 'rb'"), 0);
	assert_int_equal(cairn_db_exec(db, "UPDATE dagstore_shards SET state = 1 WHERE key = 'rc'"),
			 0);
	tpath(path, "ds/indexes/%u.idx.tmp", id_b);
	{
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		fputs("partial", f);
		fclose(f);
	}
	tpath(orphan, "ds/indexes/9999.idx");
	{
		FILE *f = fopen(orphan, "wb");

		assert_non_null(f);
		fputs("orphan", f);
		fclose(f);
	}
	ds_close(true);
	ds_open();
	state_is("ra", CAIRN_SHARD_AVAILABLE);
	state_is("rb", CAIRN_SHARD_AVAILABLE);
	state_is("rc", CAIRN_SHARD_AVAILABLE);
	state_is("rd", CAIRN_SHARD_NEW); /* never started: stays New */
	assert_false(exists(path));
	assert_false(exists(orphan));
	check_acquired("ra", a, 10);
	check_acquired("rb", a + 10, 10);
	check_acquired("rc", a + 20, 10);
	for (size_t i = 0; i < 30; i++) {
		keys ks = {0};

		assert_int_equal(cairn_dagstore_lookup(ds, &pool[a[i]].cid, collect_key, &ks), 1);
	}
	/* A resumed shard whose data went bad meanwhile ends Errored, not stuck. */
	ds_close(false);
	assert_int_equal(cairn_db_exec(db, "UPDATE dagstore_shards SET state = 1 WHERE key = 'rc'"),
			 0);
	tpath(path, "rc.car");
	assert_int_equal(truncate(path, file_size(path) - 5), 0);
	ds_close(true);
	ds_open();
	error_of("rc");
	state_is("ra", CAIRN_SHARD_AVAILABLE);
	/* The rest is then initialized. */
	assert_int_equal(cairn_dagstore_initialize_all(ds, 2, NULL, NULL, NULL), 0);
	state_is("rd", CAIRN_SHARD_AVAILABLE);
	/* gc finds orphans made while open. */
	{
		cairn_dagstore_gc_stats gs;
		FILE *f = fopen(orphan, "wb");

		assert_non_null(f);
		fclose(f);
		assert_int_equal(cairn_dagstore_gc(ds, &gs), 0);
		assert_int_equal(gs.orphans_removed, 1);
		assert_false(exists(orphan));
	}
}

/* A crash during destroy, after the top-level entries went: the next open
 * finds the shard without them and marks it Errored; recover repairs it. */
static void test_destroy_crash(void **state)
{
	size_t a[10];
	cairn_shard_info in;
	char path[PATH_MAX];

	(void)state;
	for (size_t i = 0; i < 10; i++)
		a[i] = 150 + i;
	shard_make("dc", "dc.car", a, 10, 1, 0, false);
	assert_int_equal(cairn_dagstore_initialize(ds, "dc"), 0);
	assert_int_equal(cairn_dagstore_info(&in, ds, "dc"), 0);
	cairn_shard_info_clear(&in);
	assert_int_equal(cairn_dagstore_destroy(ds, "dc"), 0);
	ds_close(false);
	/* Put the row back as it was: what a crash before the DELETE leaves. */
	assert_int_equal(cairn_db_exec(db, "INSERT INTO dagstore_shards (key, url, state, "
					   "created_at, updated_at) VALUES ('dc', 'file:///nowhere', "
					   "2, 1, 1)"), 0);
	ds_close(true);
	ds_open();
	error_of("dc");
	assert_int_equal(cairn_dagstore_destroy(ds, "dc"), 0);
	assert_int_equal(cairn_dagstore_info(&in, ds, "dc"), CAIRN_ENOTFOUND);
	(void)path;
}

/* One process at a time. */
static void test_second_open(void **state)
{
	cairn_dagstore *other = NULL;
	char path[PATH_MAX];

	(void)state;
	tpath(path, "ds");
	assert_int_equal(cairn_dagstore_open(&other, db, path, NULL), CAIRN_EEXISTS);
	assert_null(other);
}

/* Readers on several threads while shards are indexed and destroyed. */
typedef struct reader_arg {
	atomic_bool *stop;
	unsigned seed;
	uint64_t reads;
	int bad;
} reader_arg;

static void *reader_thread(void *p)
{
	reader_arg *r = p;
	cairn_buf buf = {0};

	while (!atomic_load(r->stop)) {
		size_t i = (size_t)(rand_r(&r->seed) % 380);
		int rc = cairn_dagstore_get(ds, &buf, &pool[i].cid, NULL);

		if (rc == 0 && (buf.len != pool[i].len || memcmp(buf.data, pool[i].data, buf.len)))
			r->bad++;
		else if (rc && rc != CAIRN_ENOTFOUND)
			r->bad++;
		r->reads++;
		if (r->reads % 4 == 0) {
			/* Lookups: never more holders than the model has. */
			keys ks = {0};
			int n = cairn_dagstore_lookup(ds, &pool[i].cid, collect_key, &ks);
			size_t holders = 0;

			for (size_t j = 0; j < NSHARDS; j++)
				holders += in_shard(i, j);
			if (n < 0 || (size_t)n > holders)
				r->bad++;
		}
		if (r->reads % 16 == 0) {
			/* Acquirers of shards that may be mid-indexing or destroyed. */
			char key[16];
			cairn_store *st;

			snprintf(key, sizeof(key), "piece-%u", rand_r(&r->seed) % NSHARDS);
			rc = cairn_dagstore_acquire(&st, ds, key);
			if (!rc) {
				if (cairn_store_has(st, &pool[i].cid) < 0)
					r->bad++;
				cairn_store_free(st);
			} else if (rc != CAIRN_ENOTFOUND) {
				r->bad++;
			}
		}
	}
	cairn_buf_free(&buf);
	return NULL;
}

static void test_concurrent(void **state)
{
	atomic_bool stop = false;
	reader_arg ra[3];
	pthread_t t[3];

	(void)state;
	make_overlapping();
	assert_int_equal(cairn_dagstore_initialize(ds, "piece-3"), 0);
	/* Readers start while the other shards are New: their acquirers
	 * initialize them lazily, racing initialize_all. */
	for (int i = 0; i < 3; i++) {
		ra[i] = (reader_arg){&stop, (unsigned)i + 1, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, reader_thread, &ra[i]), 0);
	}
	assert_int_equal(cairn_dagstore_initialize_all(ds, 2, NULL, NULL, NULL), 0);
	for (size_t j = 0; j < NSHARDS; j++) {
		char key[16];

		snprintf(key, sizeof(key), "piece-%zu", j);
		check_acquired(key, shard_blocks[j], shard_n[j]);
	}
	/* An acquirer of the moment makes a destroy refuse: try again. */
	for (const char *const *k = (const char *const[]){"piece-5", "piece-4", NULL}; *k; k++) {
		int rc;
		struct timespec ms = {0, 1000 * 1000};

		while ((rc = cairn_dagstore_destroy(ds, *k)) == CAIRN_EINVAL)
			nanosleep(&ms, NULL);
		assert_int_equal(rc, 0);
	}
	for (int i = 0; i < 20; i++) {
		struct timespec ms = {0, 5 * 1000 * 1000};

		nanosleep(&ms, NULL); /* readers meet the destroyed shards */
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(ra[i].bad, 0);
		assert_true(ra[i].reads > 0);
	}
}

/* A bound of one open mount: indexing, acquirers and top-level reads share it. */
static void test_max_open(void **state)
{
	cairn_dagstore_options o = CAIRN_DAGSTORE_OPTIONS_INIT;
	cairn_store *s;

	(void)state;
	ds_close(false);
	o.no_sync = true;
	o.max_open = 2;
	ds_open_opts(&o);
	make_overlapping();
	assert_int_equal(cairn_dagstore_initialize_all(ds, 2, NULL, NULL, NULL), 0);
	/* One acquirer holds a slot; cached mounts are evicted for the rest. */
	assert_int_equal(cairn_dagstore_acquire(&s, ds, "piece-2"), 0);
	check_all_reads();
	cairn_store_free(s);
}

/* ---------------------------------------------------------------- quiesce */

typedef struct writer_arg {
	int what;                /* 0 register, 1 initialize_all, 2 destroy, 3 gc */
	const char *key, *url;
	int rc;
	cairn_dagstore_progress p;
	atomic_bool done;
} writer_arg;

static void *writer_thread(void *arg)
{
	writer_arg *w = arg;
	cairn_shard_spec spec = {w->key, w->url};
	cairn_dagstore_gc_stats gs;

	switch (w->what) {
	case 0: w->rc = cairn_dagstore_register(ds, &spec, 1, NULL); break;
	case 1: w->rc = cairn_dagstore_initialize_all(ds, 2, NULL, NULL, &w->p); break;
	case 2: w->rc = cairn_dagstore_destroy(ds, w->key); break;
	default: w->rc = cairn_dagstore_gc(ds, &gs); break;
	}
	atomic_store(&w->done, true);
	return NULL;
}

/* What a snapshot would clone: every file under tmpdir (the CARs, the
 * database and the store) by path, size and mtime, summed so the order of
 * the walk does not matter. The database's -shm is not cloned. */
static uint64_t sig_acc;

static int sig_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	uint64_t h = 1469598103934665603ull;

	(void)ftw;
	if (flag != FTW_F || strstr(path, "-shm"))
		return 0;
	for (const char *c = path; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ull;
	sig_acc += h ^ ((uint64_t)st->st_size * 0x9e3779b97f4a7c15ull) ^
		   ((uint64_t)st->st_mtim.tv_sec << 32) ^ (uint64_t)st->st_mtim.tv_nsec;
	return 0;
}

static uint64_t files_sig(void)
{
	sig_acc = 0;
	assert_int_equal(nftw(tmpdir, sig_entry, 16, FTW_PHYS), 0);
	return sig_acc;
}

/* Every block of shard j through the top-level index and an acquirer. */
static void read_shard(size_t j)
{
	char key[16];
	cairn_buf b = {0};

	for (size_t k = 0; k < shard_n[j]; k++) {
		const blk *x = &pool[shard_blocks[j][k]];

		if (cairn_dagstore_get(ds, &b, &x->cid, NULL))
			fail_msg("get while quiesced: %s", cairn_error_last());
		assert_int_equal(b.len, x->len);
		assert_memory_equal(b.data, x->data, x->len);
		assert_true(cairn_dagstore_lookup(ds, &x->cid, NULL, NULL) >= 1);
	}
	cairn_buf_free(&b);
	snprintf(key, sizeof(key), "piece-%zu", j);
	check_acquired(key, shard_blocks[j], shard_n[j]);
}

/* Quiesce holds every writer at a safe point while reads go on: an
 * indexing in the middle of its piece is not waited for (it stops before
 * it writes), registrations, initialize_all, destroy and gc wait, no file
 * changes, calls nest; resume lets them all finish. A write step that does
 * not end in time makes quiesce fail and leaves nothing paused. */
static void test_quiesce(void **state)
{
	size_t a[30];
	char path[PATH_MAX], url[PATH_MAX + 16];
	writer_arg w[4] = {{0}, {1}, {2}, {3}};
	init_arg ia = {"hq", -99, NULL, false};
	pthread_t t[4], ti;
	struct timespec ms = {0, 10 * 1000 * 1000};
	uint64_t sig0, t0;
	cairn_db_options dbo = CAIRN_DB_OPTIONS_INIT;
	cairn_db *db2;
	int rc;

	(void)state;
	make_overlapping();
	assert_int_equal(cairn_dagstore_initialize(ds, "piece-0"), 0);
	assert_int_equal(cairn_dagstore_initialize(ds, "piece-1"), 0);
	for (size_t i = 0; i < 30; i++)
		a[i] = 300 + i;
	shard_make("hq", "hq.car", a, 30, 1, 0, true);
	tpath(path, "late.car");
	car_make(path, a, 5, 1, 0);
	file_url(url, path);

	/* An indexing stopped in the middle of its piece (a slow remote). */
	pthread_mutex_lock(&hook.lock);
	hook.gate = true;
	pthread_mutex_unlock(&hook.lock);
	assert_int_equal(pthread_create(&ti, NULL, init_thread, &ia), 0);
	pthread_mutex_lock(&hook.lock);
	while (!hook.waiting)
		pthread_cond_wait(&hook.cond, &hook.lock);
	pthread_mutex_unlock(&hook.lock);
	t0 = cairn_time_ns();
	if (cairn_dagstore_quiesce(ds, 5000))
		fail_msg("quiesce: %s", cairn_error_last());
	assert_true(cairn_time_ns() - t0 < 2000000000ull);
	sig0 = files_sig();
	/* The indexing reads on, then waits before it writes its index. */
	pthread_mutex_lock(&hook.lock);
	hook.gate = false;
	pthread_cond_broadcast(&hook.cond);
	pthread_mutex_unlock(&hook.lock);
	w[0].key = "late";
	w[0].url = url;
	w[2].key = "piece-1";
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer_thread, &w[i]), 0);
	/* Nested: the inner pair changes nothing. */
	assert_int_equal(cairn_dagstore_quiesce(ds, 100), 0);
	cairn_dagstore_resume(ds);
	for (int round = 0; round < 10; round++) {
		read_shard(0);
		read_shard(1);
		nanosleep(&ms, NULL);
	}
	for (int i = 0; i < 4; i++)
		if (atomic_load(&w[i].done))
			fail_msg("writer %d finished while quiesced (rc %d)", i, w[i].rc);
	assert_false(atomic_load(&ia.done));
	state_is("hq", CAIRN_SHARD_INITIALIZING);
	state_is("piece-2", CAIRN_SHARD_NEW);
	state_is("piece-1", CAIRN_SHARD_AVAILABLE);
	assert_int_equal(cairn_dagstore_info(&(cairn_shard_info){0}, ds, "late"), CAIRN_ENOTFOUND);
	assert_true(files_sig() == sig0);

	cairn_dagstore_resume(ds);
	pthread_join(ti, NULL);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (w[i].rc)
			fail_msg("writer %d: %s", i, cairn_error_last());
	}
	assert_int_equal(ia.rc, 0);
	state_is("hq", CAIRN_SHARD_AVAILABLE);
	check_acquired("hq", a, 30);
	/* initialize_all claimed what was New when it started (late came
	 * after it, or not: either way every shard ends Available). */
	assert_int_equal(w[1].p.failed, 0);
	assert_true(w[1].p.done >= 4);
	assert_int_equal(cairn_dagstore_info(&(cairn_shard_info){0}, ds, "piece-1"), CAIRN_ENOTFOUND);
	for (size_t j = 2; j < NSHARDS; j++)
		read_shard(j);
	assert_int_equal(cairn_dagstore_initialize_all(ds, 1, NULL, NULL, NULL), 0);
	state_is("late", CAIRN_SHARD_AVAILABLE);

	/* A write step that does not end in time: a register waiting for
	 * another connection's write lock. */
	tpath(path, "cairn.db");
	assert_int_equal(cairn_db_open(&db2, path, &dbo), 0);
	assert_int_equal(cairn_db_begin(db2), 0);
	memset(&w[0], 0, sizeof(w[0]));
	w[0].key = "later";
	w[0].url = url;
	assert_int_equal(pthread_create(&t[0], NULL, writer_thread, &w[0]), 0);
	for (int i = 0; i < 5; i++)
		nanosleep(&ms, NULL);
	rc = cairn_dagstore_quiesce(ds, 50);
	assert_int_equal(rc, CAIRN_ECANCELED);
	if (!strstr(cairn_error_last(), "1 register"))
		fail_msg("the message does not say what was in flight: %s", cairn_error_last());
	assert_int_equal(cairn_db_rollback(db2), 0);
	cairn_db_close(db2);
	pthread_join(t[0], NULL);
	assert_int_equal(w[0].rc, 0);
	/* Nothing stayed paused. */
	assert_int_equal(cairn_dagstore_initialize(ds, "later"), 0);
	assert_int_equal(cairn_dagstore_quiesce(ds, 0), 0);
	cairn_dagstore_resume(ds);
	cairn_dagstore_resume(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transitions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initialize_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_holders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiesce, setup, teardown),
	};
	int rc;

	pool_make();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	pool_free();
	return rc;
}
