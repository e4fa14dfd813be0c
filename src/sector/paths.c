/* paths.c: storage paths: storage.json and each path's sectorstore.json in
 * Lotus's formats, attach/detach/redeclare/list, the space a path has
 * (statfs, usage, reservations), reservations, and the choice of a path.
 *
 * Reservations are files, one per reservation, in the path's
 * .cairn-reservations/ folder, each held under an exclusive flock by the
 * process that made it: a file whose flock can be taken belongs to a dead
 * process and is removed by whoever finds it. A reservation is created
 * under a temporary name, locked, and only then renamed into view, so a
 * visible file is always locked by a live owner or dead. Checking the
 * space and adding the reservation happen under the folder's `lock` file
 * (flock, exclusive), so processes reserving at once never overfill the
 * path. A reservation counts only what its files do not yet take on disk
 * (Lotus's fix in PR #11825), so a file being written is not counted twice.
 * With max_storage, reservations come off the max-based figure too (Lotus
 * subtracted them only from the file system's free space).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cairn/ipld.h"
#include "sector_i.h"

#define META_FILE "sectorstore.json"
#define CONFIG_FILE "storage.json"
#define META_MAX (1u << 20)
#define CONFIG_MAX (16u << 20)

/* ------------------------------------------------------------ JSON out */

/* A string as Go's encoding/json writes it (HTML-safe escapes included),
 * so the files read the same as Lotus's. */
static void json_str(cairn_buf *b, const char *s)
{
	cairn_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			cairn_buf_putc(b, '\\');
			cairn_buf_putc(b, *p);
		} else if (*p == '\n') {
			cairn_buf_puts(b, "\\n");
		} else if (*p == '\r') {
			cairn_buf_puts(b, "\\r");
		} else if (*p == '\t') {
			cairn_buf_puts(b, "\\t");
		} else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
			cairn_buf_printf(b, "\\u%04x", *p);
		} else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
			cairn_buf_printf(b, "\\u202%c", p[2] == 0xa8 ? '8' : '9');
			p += 2;
		} else {
			cairn_buf_putc(b, *p);
		}
	}
	cairn_buf_putc(b, '"');
}

/* A comma list as a JSON array of strings; empty is null (a nil slice). */
static void json_list(cairn_buf *b, const char *list)
{
	if (!list || !*list) {
		cairn_buf_puts(b, "null");
		return;
	}
	cairn_buf_puts(b, "[\n");
	while (*list) {
		size_t n = strcspn(list, ",");
		char item[256];

		snprintf(item, sizeof(item), "%.*s", (int)n, list);
		cairn_buf_puts(b, "    ");
		json_str(b, item);
		list += n;
		if (*list == ',')
			list++;
		cairn_buf_puts(b, *list ? ",\n" : "\n");
	}
	cairn_buf_puts(b, "  ]");
}

/* sectorstore.json as `lotus-miner storage attach --init` writes it:
 * json.MarshalIndent(LocalStorageMeta, "", "  "), no final newline. */
static int meta_write(const char *dir, const sector_path *p)
{
	cairn_buf b = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
	int rc;

	cairn_buf_puts(&b, "{\n  \"ID\": ");
	json_str(&b, p->id);
	cairn_buf_printf(&b, ",\n  \"Weight\": %llu,\n  \"CanSeal\": %s,\n  \"CanStore\": %s,\n"
			 "  \"MaxStorage\": %llu,\n  \"Groups\": ", (unsigned long long)p->weight,
			 p->can_seal ? "true" : "false", p->can_store ? "true" : "false",
			 (unsigned long long)p->max_storage);
	json_list(&b, p->groups);
	cairn_buf_puts(&b, ",\n  \"AllowTo\": ");
	json_list(&b, p->allow_to);
	cairn_buf_puts(&b, ",\n  \"AllowTypes\": ");
	json_list(&b, p->allow_types);
	cairn_buf_puts(&b, ",\n  \"DenyTypes\": ");
	json_list(&b, p->deny_types);
	cairn_buf_puts(&b, ",\n  \"AllowMiners\": null,\n  \"DenyMiners\": null\n}");
	cairn_buf_printf(&path, "%s/" META_FILE, dir);
	rc = b.err ? b.err : path.err ? path.err
				      : cairn_file_replace_atomic((const char *)path.data, b.data, b.len, 0644);
	cairn_buf_free(&b);
	cairn_buf_free(&path);
	return rc;
}

int cairn_sector__config_save(cairn_sector_store *st)
{
	cairn_buf b = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
	int rc;

	/* StorageConfig{StoragePaths []LocalPath{Path}}, MarshalIndent. */
	if (!st->n_paths) {
		cairn_buf_puts(&b, "{\n  \"StoragePaths\": []\n}");
	} else {
		cairn_buf_puts(&b, "{\n  \"StoragePaths\": [\n");
		for (size_t i = 0; i < st->n_paths; i++) {
			cairn_buf_puts(&b, "    {\n      \"Path\": ");
			json_str(&b, st->paths[i].config_path);
			cairn_buf_puts(&b, i + 1 < st->n_paths ? "\n    },\n" : "\n    }\n");
		}
		cairn_buf_puts(&b, "  ]\n}");
	}
	cairn_buf_printf(&path, "%s/" CONFIG_FILE, st->repo);
	rc = b.err ? b.err : path.err ? path.err
				      : cairn_file_replace_atomic((const char *)path.data, b.data, b.len, 0644);
	cairn_buf_free(&b);
	cairn_buf_free(&path);
	return rc;
}

/* ------------------------------------------------------------- JSON in */

static int read_json(cairn_node **out, cairn_arena **arena, cairn_buf *raw, const char *path,
		     size_t max)
{
	int rc;

	*out = NULL;
	*arena = NULL;
	if ((rc = cairn_file_read_all(raw, path, max)))
		return rc;
	if ((rc = cairn_arena_new(arena)))
		return rc;
	if ((rc = cairn_dagjson_decode(out, *arena, raw->data, raw->len)))
		return cairn_error_prefix("%s: ", path);
	if ((*out)->kind != CAIRN_KIND_MAP)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: not a JSON object", path);
	return 0;
}

static int get_uint(uint64_t *out, const cairn_node *map, const char *key, const char *path)
{
	const cairn_node *v = cairn_node_map_get(map, key);

	if (!v || v->kind == CAIRN_KIND_NULL)
		return 0;
	if (v->kind != CAIRN_KIND_INT || v->v.i.neg)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: \"%s\" is not a whole number", path, key);
	*out = v->v.i.mag;
	return 0;
}

static int get_bool(bool *out, const cairn_node *map, const char *key, const char *path)
{
	const cairn_node *v = cairn_node_map_get(map, key);

	if (!v || v->kind == CAIRN_KIND_NULL)
		return 0;
	if (v->kind != CAIRN_KIND_BOOL)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: \"%s\" is not true or false", path, key);
	*out = v->v.b;
	return 0;
}

/* An array of strings into a comma list (NULL for none). */
static int get_list(char **out, const cairn_node *map, const char *key, const char *path)
{
	const cairn_node *v = cairn_node_map_get(map, key);
	cairn_buf b = CAIRN_BUF_INIT;

	*out = NULL;
	if (!v || v->kind == CAIRN_KIND_NULL)
		return 0;
	if (v->kind != CAIRN_KIND_LIST)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: \"%s\" is not a list", path, key);
	for (size_t i = 0; i < v->v.list.len; i++) {
		const cairn_node *s = &v->v.list.items[i];

		if (s->kind != CAIRN_KIND_STRING || memchr(s->v.bytes.ptr, ',', s->v.bytes.len)) {
			cairn_buf_free(&b);
			return cairn_error_set(CAIRN_ECORRUPT, "%s: \"%s\" item %zu is not a name", path,
					       key, i);
		}
		if (i)
			cairn_buf_putc(&b, ',');
		cairn_buf_append(&b, s->v.bytes.ptr, s->v.bytes.len);
	}
	if (b.err) {
		cairn_buf_free(&b);
		return CAIRN_ENOMEM;
	}
	*out = (char *)cairn_buf_detach(&b, NULL);
	return 0;
}

static bool uuid_like(const uint8_t *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
					  (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	}
	return true;
}

/* Reads <p->path>/sectorstore.json into p. */
static int meta_read(sector_path *p)
{
	cairn_buf raw = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
	cairn_arena *arena = NULL;
	cairn_node *m;
	const cairn_node *id;
	struct stat sb;
	int rc;

	cairn_buf_printf(&path, "%s/" META_FILE, p->path);
	if (path.err) {
		rc = path.err;
		goto out;
	}
	const char *mp = (const char *)path.data;
	if ((rc = read_json(&m, &arena, &raw, mp, META_MAX)))
		goto out;
	id = cairn_node_map_get(m, "ID");
	if (!id || id->kind != CAIRN_KIND_STRING || !uuid_like(id->v.bytes.ptr, id->v.bytes.len)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: \"ID\" is not a UUID", mp);
		goto out;
	}
	memcpy(p->id, id->v.bytes.ptr, 36);
	p->id[36] = '\0';
	p->weight = 10;
	if ((rc = get_uint(&p->weight, m, "Weight", mp)) ||
	    (rc = get_bool(&p->can_seal, m, "CanSeal", mp)) ||
	    (rc = get_bool(&p->can_store, m, "CanStore", mp)) ||
	    (rc = get_uint(&p->max_storage, m, "MaxStorage", mp)) ||
	    (rc = get_list(&p->groups, m, "Groups", mp)) ||
	    (rc = get_list(&p->allow_to, m, "AllowTo", mp)) ||
	    (rc = get_list(&p->allow_types, m, "AllowTypes", mp)) ||
	    (rc = get_list(&p->deny_types, m, "DenyTypes", mp)))
		goto out;
	if (stat(p->path, &sb) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", p->path, strerror(errno));
		goto out;
	}
	p->dev = sb.st_dev;
out:
	cairn_arena_free(arena);
	cairn_buf_free(&raw);
	cairn_buf_free(&path);
	return rc;
}

/* ------------------------------------------------------- the path list */

void cairn_sector__path_clear(sector_path *p)
{
	cairn_free(p->path);
	cairn_free(p->config_path);
	cairn_free(p->error);
	cairn_free(p->groups);
	cairn_free(p->allow_to);
	cairn_free(p->allow_types);
	cairn_free(p->deny_types);
	memset(p, 0, sizeof(*p));
}

/* The absolute path for a storage.json entry, and the entry for a path. */
static char *abs_path(const cairn_sector_store *st, const char *config_path)
{
	cairn_buf b = CAIRN_BUF_INIT;

	if (config_path[0] == '/')
		cairn_buf_puts(&b, config_path);
	else
		cairn_buf_printf(&b, "%s/%s", st->repo, config_path);
	return (char *)cairn_buf_detach(&b, NULL);
}

static char *config_path_of(const cairn_sector_store *st, const char *abs)
{
	size_t n = strlen(st->repo);

	if (!strncmp(abs, st->repo, n) && abs[n] == '/' && abs[n + 1])
		return cairn_strndup(abs + n + 1, strlen(abs + n + 1));
	return cairn_strndup(abs, strlen(abs));
}

static int add_path(cairn_sector_store *st, sector_path **out)
{
	sector_path *g = cairn_realloc(st->paths, (st->n_paths + 1) * sizeof(*g));

	if (!g)
		return CAIRN_ENOMEM;
	st->paths = g;
	*out = &g[st->n_paths++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

int cairn_sector__config_load(cairn_sector_store *st)
{
	cairn_buf raw = CAIRN_BUF_INIT, path = CAIRN_BUF_INIT;
	cairn_arena *arena = NULL;
	cairn_node *m;
	const cairn_node *list;
	int rc;

	cairn_buf_printf(&path, "%s/" CONFIG_FILE, st->repo);
	if (path.err)
		return path.err;
	const char *cp = (const char *)path.data;
	rc = read_json(&m, &arena, &raw, cp, CONFIG_MAX);
	if (rc == CAIRN_ENOTFOUND) {
		/* A missing file is the default: no paths. */
		cairn_error_clear();
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	list = cairn_node_map_get(m, "StoragePaths");
	if (!list || list->kind == CAIRN_KIND_NULL)
		goto out;
	if (list->kind != CAIRN_KIND_LIST) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: \"StoragePaths\" is not a list", cp);
		goto out;
	}
	for (size_t i = 0; i < list->v.list.len; i++) {
		const cairn_node *e = &list->v.list.items[i], *pv = cairn_node_map_get(e, "Path");
		sector_path *p;

		if (!pv || pv->kind != CAIRN_KIND_STRING || !pv->v.bytes.len ||
		    memchr(pv->v.bytes.ptr, 0, pv->v.bytes.len)) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "%s: StoragePaths[%zu] has no \"Path\"", cp, i);
			goto out;
		}
		if ((rc = add_path(st, &p)))
			goto out;
		if (!(p->config_path = cairn_strndup((const char *)pv->v.bytes.ptr, pv->v.bytes.len)) ||
		    !(p->path = abs_path(st, p->config_path))) {
			rc = CAIRN_ENOMEM;
			goto out;
		}
		if (meta_read(p)) {
			/* One bad disk does not take the others down: kept with
			 * its error, shown by list, used by nothing. */
			p->error = cairn_strndup(cairn_error_last(), strlen(cairn_error_last()));
			cairn_log(CAIRN_LOG_WARN, "storage path %s: %s", p->path, cairn_error_last());
			cairn_error_clear();
		}
	}
out:
	cairn_arena_free(arena);
	cairn_buf_free(&raw);
	cairn_buf_free(&path);
	return rc;
}

sector_path *cairn_sector__path_by_id(cairn_sector_store *st, const char *id)
{
	for (size_t i = 0; i < st->n_paths; i++)
		if (!st->paths[i].error && !strcasecmp(st->paths[i].id, id))
			return &st->paths[i];
	return NULL;
}

sector_path *cairn_sector__path_find(cairn_sector_store *st, const char *path_or_id)
{
	char real[PATH_MAX];

	for (size_t i = 0; i < st->n_paths; i++) {
		sector_path *p = &st->paths[i];

		if ((p->id[0] && !strcasecmp(p->id, path_or_id)) || !strcmp(p->config_path, path_or_id) ||
		    !strcmp(p->path, path_or_id))
			return p;
	}
	if (realpath(path_or_id, real))
		for (size_t i = 0; i < st->n_paths; i++)
			if (!strcmp(st->paths[i].path, real))
				return &st->paths[i];
	return NULL;
}

/* ----------------------------------------------------------------- stat */

/* Opens the reservations folder of a path and takes its lock. */
static int res_lock(int *fd_out, const sector_path *p, int how)
{
	char dir[PATH_MAX], lock[PATH_MAX + 8];
	int fd;

	*fd_out = -1;
	snprintf(dir, sizeof(dir), "%s/" SECTOR_RESERVATIONS_DIR, p->path);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", dir, strerror(errno));
	snprintf(lock, sizeof(lock), "%s/lock", dir);
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", lock, strerror(errno));
	while (flock(fd, how) < 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		return cairn_error_set(CAIRN_EIO, "%s: flock: %s", lock, strerror(errno));
	}
	*fd_out = fd;
	return 0;
}

/* One line of a reservation file: "<sector name> <type> <bytes>". */
static int64_t res_line_outstanding(const sector_path *p, const char *line)
{
	char name[CAIRN_SECTOR_NAME_MAX + 1], type[16];
	unsigned long long bytes;
	cairn_sector_id sid;
	unsigned ft;
	char *file;
	uint64_t on_disk;

	if (sscanf(line, "%48s %15s %llu", name, type, &bytes) != 3 ||
	    cairn_sector_name_parse(&sid, name) || cairn_sector_ft_parse(&ft, type) ||
	    !cairn_sector_ft_name(ft)) {
		cairn_error_clear();
		return 0;
	}
	if (!(file = cairn_sector__file_path(p->path, ft, &sid)))
		return 0;
	on_disk = cairn_sector__disk_usage(file);
	cairn_free(file);
	return on_disk >= bytes ? 0 : (int64_t)(bytes - on_disk);
}

/* The bytes reserved in a path and not yet on disk; removes the
 * reservations of dead processes on the way. */
static int64_t reserved_bytes(const sector_path *p)
{
	char dir[PATH_MAX];
	int64_t total = 0;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/" SECTOR_RESERVATIONS_DIR, p->path);
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d))) {
		char file[PATH_MAX + 300], buf[1024];
		ssize_t n;
		int fd;

		if (strncmp(e->d_name, "r-", 2))
			continue;
		snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
		if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			/* Nobody holds it: its process is gone. */
			unlink(file);
			close(fd);
			continue;
		}
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *line = buf, *nl; *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl)
				break;
			*nl = '\0';
			total += res_line_outstanding(p, line);
		}
	}
	closedir(d);
	return total;
}

int cairn_sector__path_stat(cairn_storage_stat *out, cairn_sector_store *st, sector_path *p)
{
	struct statvfs vfs;

	(void)st;
	memset(out, 0, sizeof(*out));
	if (statvfs(p->path, &vfs) < 0)
		return cairn_error_set(CAIRN_EIO, "%s: statfs: %s", p->path, strerror(errno));
	out->capacity = (int64_t)((uint64_t)vfs.f_blocks * vfs.f_frsize);
	out->fs_available = (int64_t)((uint64_t)vfs.f_bavail * vfs.f_frsize);
	out->available = out->fs_available;
	if (p->max_storage) {
		/* A walk of the whole path: expensive on big paths, as in Lotus. */
		out->used = (int64_t)cairn_sector__disk_usage(p->path);
		out->max = (int64_t)p->max_storage;
		int64_t room = out->used >= out->max ? 0 : out->max - out->used;
		if (room < out->available)
			out->available = room;
	}
	out->reserved = reserved_bytes(p);
	out->available -= out->reserved;
	if (out->available < 0)
		out->available = 0;
	return 0;
}

/* --------------------------------------------------------- reservations */

struct cairn_sector_reservation {
	int fd;
	char *file;
};

int cairn_sector_reserve(cairn_sector_reservation **out, cairn_sector_store *st,
			 const char *storage_id, const cairn_sector_id *sid, uint64_t ssize,
			 unsigned ft, cairn_sector_path_type type)
{
	static unsigned counter;
	char tmp[PATH_MAX + 64], final[PATH_MAX + 64], name[CAIRN_SECTOR_NAME_MAX];
	cairn_sector_reservation *r = NULL;
	cairn_storage_stat ps;
	cairn_buf lines = CAIRN_BUF_INIT;
	sector_path *p;
	uint64_t need = cairn_sector_space_use(ft, ssize, type), rnd = 0;
	int lock_fd = -1, fd = -1, rc;
	unsigned seq = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	*out = NULL;
	if (!(ft & CAIRN_SECTOR_FT_ALL) || (ft & ~CAIRN_SECTOR_FT_ALL))
		return cairn_error_set(CAIRN_EINVAL, "reserve: bad file types %#x", ft);
	if (!(p = cairn_sector__path_by_id(st, storage_id)))
		return cairn_error_set(CAIRN_ENOTFOUND, "storage path %s is not attached", storage_id);
	cairn_sector_name(name, sid);
	for (unsigned i = 0; i < 3; i++)
		if (ft & (1u << i))
			cairn_buf_printf(&lines, "%s %s %llu\n", name, cairn_sector_ft_name(1u << i),
					 (unsigned long long)cairn_sector_space_use(1u << i, ssize, type));
	if (lines.err)
		return lines.err;
	if ((rc = res_lock(&lock_fd, p, LOCK_EX)))
		goto out;
	if ((rc = cairn_sector__path_stat(&ps, st, p)))
		goto out;
	if (ps.available < 0 || (uint64_t)ps.available < need) {
		rc = cairn_error_set(CAIRN_ETOOBIG,
			"%s: not enough space for %s: %llu bytes needed, %lld available "
			"(%lld reserved)", p->path, name, (unsigned long long)need,
			(long long)ps.available, (long long)ps.reserved);
		goto out;
	}
	if (getrandom(&rnd, sizeof(rnd), 0) < 0)
		rnd = cairn_time_ns();
	snprintf(tmp, sizeof(tmp), "%s/" SECTOR_RESERVATIONS_DIR "/t-%ld-%u-%016llx", p->path,
		 (long)getpid(), seq, (unsigned long long)rnd);
	snprintf(final, sizeof(final), "%s/" SECTOR_RESERVATIONS_DIR "/r-%ld-%u-%016llx", p->path,
		 (long)getpid(), seq, (unsigned long long)rnd);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: flock: %s", tmp, strerror(errno));
		goto out;
	}
	if ((rc = cairn_file_write_full(fd, lines.data, lines.len, tmp)))
		goto out;
	if (rename(tmp, final) < 0) {
		rc = cairn_error_set(CAIRN_EIO, "%s: rename: %s", final, strerror(errno));
		goto out;
	}
	if (!(r = cairn_calloc(1, sizeof(*r))) || !(r->file = cairn_strndup(final, strlen(final)))) {
		unlink(final);
		rc = CAIRN_ENOMEM;
		goto out;
	}
	r->fd = fd;
	fd = -1;
	*out = r;
	r = NULL;
out:
	if (fd >= 0) {
		unlink(tmp);
		close(fd);
	}
	if (r)
		cairn_free(r);
	if (lock_fd >= 0)
		close(lock_fd);
	cairn_buf_free(&lines);
	return rc;
}

void cairn_sector_reservation_release(cairn_sector_reservation *r)
{
	if (!r)
		return;
	/* Unlink first: once the lock goes, a file still there would only be
	 * removed by the next reader. */
	unlink(r->file);
	close(r->fd);
	cairn_free(r->file);
	cairn_free(r);
}

int cairn_sector__best_alloc(sector_path **out, cairn_sector_store *st, uint64_t need,
			     cairn_sector_path_type type)
{
	sector_path *best = NULL;
	unsigned __int128 best_score = 0;

	*out = NULL;
	for (size_t i = 0; i < st->n_paths; i++) {
		sector_path *p = &st->paths[i];
		cairn_storage_stat s;
		unsigned __int128 score;

		if (p->error || !(type == CAIRN_SECTOR_PATH_SEALING ? p->can_seal : p->can_store))
			continue;
		if (cairn_sector__path_stat(&s, st, p)) {
			cairn_log(CAIRN_LOG_WARN, "storage path %s: %s", p->path, cairn_error_last());
			continue;
		}
		if (s.available < 0 || (uint64_t)s.available < need)
			continue;
		/* StorageBestAlloc: most available space times weight. */
		score = (unsigned __int128)(uint64_t)s.available * p->weight;
		if (!best || score > best_score) {
			best = p;
			best_score = score;
		}
	}
	if (!best)
		return cairn_error_set(CAIRN_ENOTFOUND,
			"no good path found: no %s path with %llu bytes available (attach one with "
			"`cairn storage attach --init --%s PATH`)",
			type == CAIRN_SECTOR_PATH_SEALING ? "sealing" : "storage",
			(unsigned long long)need, type == CAIRN_SECTOR_PATH_SEALING ? "seal" : "store");
	*out = best;
	return 0;
}

/* ------------------------------------------------- attach, detach, scan */

static int new_uuid(char out[40])
{
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return cairn_error_set(CAIRN_EIO, "getrandom: %s", strerror(errno));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
	return 0;
}

/* Declares every sector file in a path (Lotus's declareSectors): each
 * entry of a type folder but fetching/ must be a sector name. With
 * drop_missing, index rows of this path whose file is gone go. */
static int scan_path(cairn_sector_store *st, sector_path *p, bool drop_missing, uint64_t *declared,
		     uint64_t *dropped)
{
	int rc = 0;

	for (unsigned i = 0; i < 3 && !rc; i++) {
		unsigned ft = 1u << i;
		char dir[PATH_MAX];
		struct dirent *e;
		DIR *d;

		snprintf(dir, sizeof(dir), "%s/%s", p->path, cairn_sector_ft_name(ft));
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", dir, strerror(errno));
		if (!(d = opendir(dir)))
			return cairn_error_set(CAIRN_EIO, "%s: %s", dir, strerror(errno));
		while (!rc && (e = readdir(d))) {
			cairn_sector_id sid;

			if (e->d_name[0] == '.' || !strcmp(e->d_name, "fetching"))
				continue;
			if (cairn_sector_name_parse(&sid, e->d_name)) {
				rc = cairn_error_set(CAIRN_ECORRUPT,
					"%s/%s: not a sector file: only s-t0<miner>-<number> belongs here",
					dir, e->d_name);
				break;
			}
			if (!(rc = cairn_sector__index_declare(st, p->id, &sid, ft, p->can_store)) && declared)
				(*declared)++;
		}
		closedir(d);
	}
	if (!rc && drop_missing) {
		/* Rows of this path whose file is gone. */
		static const char sql[] =
			"SELECT miner_id, sector_num, sector_filetype FROM sector_location WHERE storage_id = ?1";
		cairn_db_stmt *q;
		cairn_sector_id *gone = NULL;
		unsigned *gone_ft = NULL;
		size_t n = 0, cap = 0;

		if ((rc = cairn_db_prepare(&q, st->db, sql)) || (rc = cairn_db_bind_text(q, 1, p->id))) {
			cairn_db_reset(q);
			return rc;
		}
		while ((rc = cairn_db_step(q)) > 0) {
			cairn_sector_id sid = {(uint64_t)cairn_db_column_int64(q, 0),
					       (uint64_t)cairn_db_column_int64(q, 1)};
			unsigned ft = (unsigned)cairn_db_column_int64(q, 2);
			char *f = cairn_sector_ft_name(ft) ? cairn_sector__file_path(p->path, ft, &sid) : NULL;
			struct stat sb;

			if (f && stat(f, &sb) == 0) {
				cairn_free(f);
				continue;
			}
			cairn_free(f);
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				void *g1 = cairn_realloc(gone, nc * sizeof(*gone));
				if (g1)
					gone = g1;
				void *g2 = g1 ? cairn_realloc(gone_ft, nc * sizeof(*gone_ft)) : NULL;
				if (!g2) {
					rc = CAIRN_ENOMEM;
					break;
				}
				gone_ft = g2;
				cap = nc;
			}
			gone[n] = sid;
			gone_ft[n++] = ft;
		}
		cairn_db_reset(q);
		for (size_t i = 0; !rc && i < n; i++)
			if (!(rc = cairn_sector__index_drop(st, p->id, &gone[i], gone_ft[i])) && dropped)
				(*dropped)++;
		cairn_free(gone);
		cairn_free(gone_ft);
	}
	return rc;
}

int cairn_sector_storage_attach(cairn_sector_store *st, const char *path,
				const cairn_storage_init *init, char *id_out)
{
	char real[PATH_MAX];
	sector_path np = {0}, *p;
	cairn_storage_stat ps;
	struct stat sb;
	int rc;

	if (!*path)
		return cairn_error_set(CAIRN_EINVAL, "an empty storage path");
	if (init) {
		char meta[PATH_MAX];

		if (!init->can_seal && !init->can_store)
			return cairn_error_set(CAIRN_EINVAL,
					       "%s: a storage path must be for sealing (--seal), storing "
					       "(--store), or both", path);
		if ((rc = cairn_sector__mkdirs(path, 0755)))
			return rc;
		snprintf(meta, sizeof(meta), "%s/" META_FILE, path);
		if (stat(meta, &sb) == 0)
			return cairn_error_set(CAIRN_EEXISTS,
				"%s: already initialized (has a sectorstore.json): attach it without --init",
				path);
	}
	if (!realpath(path, real))
		return cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: %s", path,
				       strerror(errno));
	if (!(np.path = cairn_strndup(real, strlen(real))))
		return CAIRN_ENOMEM;
	if (init) {
		if ((rc = new_uuid(np.id)))
			goto fail;
		np.weight = init->weight;
		np.can_seal = init->can_seal;
		np.can_store = init->can_store;
		np.max_storage = init->max_storage;
		if ((rc = meta_write(real, &np)))
			goto fail;
		cairn_sector__path_clear(&np);
		if (!(np.path = cairn_strndup(real, strlen(real))))
			return CAIRN_ENOMEM;
	}
	if ((rc = meta_read(&np)))
		goto fail;
	for (size_t i = 0; i < st->n_paths; i++) {
		if (!strcmp(st->paths[i].path, real) || !strcasecmp(st->paths[i].id, np.id)) {
			rc = cairn_error_set(CAIRN_EEXISTS, "%s: already attached (as %s, id %s)", path,
					     st->paths[i].config_path, np.id);
			goto fail;
		}
	}
	if (!(np.config_path = config_path_of(st, real))) {
		rc = CAIRN_ENOMEM;
		goto fail;
	}
	if ((rc = cairn_sector__path_stat(&ps, st, &np)))
		goto fail;
	if ((rc = add_path(st, &p)))
		goto fail;
	*p = np;
	memset(&np, 0, sizeof(np));
	if ((rc = cairn_sector__config_save(st)) ||
	    (rc = cairn_sector__index_put_path(st, p, &ps)) ||
	    (rc = scan_path(st, p, false, NULL, NULL))) {
		/* Left in storage.json if saved: the next attach says "already
		 * attached" and redeclare completes the scan. */
		return rc;
	}
	if (id_out)
		snprintf(id_out, 40, "%s", p->id);
	return 0;
fail:
	cairn_sector__path_clear(&np);
	return rc;
}

int cairn_sector_storage_detach(cairn_sector_store *st, const char *path_or_id)
{
	sector_path *p = cairn_sector__path_find(st, path_or_id);
	char id[40];
	size_t i;
	int rc;

	if (!p)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: not an attached storage path", path_or_id);
	i = (size_t)(p - st->paths);
	snprintf(id, sizeof(id), "%s", p->id);
	cairn_sector__path_clear(p);
	memmove(st->paths + i, st->paths + i + 1, (st->n_paths - i - 1) * sizeof(*p));
	st->n_paths--;
	if ((rc = cairn_sector__config_save(st)))
		return rc;
	return id[0] ? cairn_sector__index_drop_path(st, id) : 0;
}

int cairn_sector_storage_redeclare(cairn_sector_store *st, const char *path_or_id, bool drop_missing,
				   uint64_t *declared_out, uint64_t *dropped_out)
{
	int rc;

	if (declared_out)
		*declared_out = 0;
	if (dropped_out)
		*dropped_out = 0;
	for (size_t i = 0; i < st->n_paths; i++) {
		sector_path *p = &st->paths[i];
		cairn_storage_stat ps;

		if (path_or_id && p != cairn_sector__path_find(st, path_or_id))
			continue;
		if (p->error) {
			if (path_or_id)
				return cairn_error_set(CAIRN_EIO, "%s: %s", p->path, p->error);
			continue;
		}
		if ((rc = cairn_sector__path_stat(&ps, st, p)) ||
		    (rc = cairn_sector__index_put_path(st, p, &ps)) ||
		    (rc = scan_path(st, p, drop_missing, declared_out, dropped_out)))
			return rc;
		if (path_or_id)
			return 0;
	}
	if (path_or_id)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: not an attached storage path", path_or_id);
	return 0;
}

int cairn_sector_storage_list(cairn_sector_store *st, cairn_storage_fn fn, void *payload)
{
	int rc;

	for (size_t i = 0; i < st->n_paths; i++) {
		sector_path *p = &st->paths[i];
		cairn_storage_info info;

		memset(&info, 0, sizeof(info));
		info.path = p->path;
		info.config_path = p->config_path;
		info.error = p->error;
		if (!p->error) {
			snprintf(info.id, sizeof(info.id), "%s", p->id);
			info.weight = p->weight;
			info.max_storage = p->max_storage;
			info.can_seal = p->can_seal;
			info.can_store = p->can_store;
			if ((rc = cairn_sector__path_stat(&info.stat, st, p)) ||
			    (rc = cairn_sector__index_put_path(st, p, &info.stat)) ||
			    (rc = cairn_sector__index_count(st, p->id, info.sectors)))
				return rc;
		}
		if ((rc = fn(&info, payload)))
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------ the store */

int cairn_sector_store_open(cairn_sector_store **out, const char *repo, cairn_db *db)
{
	cairn_sector_store *st;
	char real[PATH_MAX];
	int rc;

	*out = NULL;
	if (!realpath(repo, real))
		return cairn_error_set(errno == ENOENT ? CAIRN_ENOTFOUND : CAIRN_EIO, "%s: %s", repo,
				       strerror(errno));
	if ((rc = cairn_sector__index_migrate(db)))
		return rc;
	if (!(st = cairn_calloc(1, sizeof(*st))))
		return CAIRN_ENOMEM;
	st->db = db;
	if (!(st->repo = cairn_strndup(real, strlen(real)))) {
		cairn_free(st);
		return CAIRN_ENOMEM;
	}
	if ((rc = cairn_sector__config_load(st))) {
		cairn_sector_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void cairn_sector_store_close(cairn_sector_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_paths; i++)
		cairn_sector__path_clear(&st->paths[i]);
	cairn_free(st->paths);
	cairn_free(st->repo);
	cairn_free(st);
}
