/* export.c: the UnixFS exporter: a DAG read from a store back into files,
 * directories and symbolic links, every block hashed before use.
 *
 * Work is a stack of tasks shared by `threads` workers (the caller's thread
 * among them). A task names one block and what it is for:
 *
 *   ENTRY  a directory entry (or the root) to create: a file, a directory
 *          or a symbolic link, decided by the block;
 *   SHARD  a HAMT shard below a directory: its links are entries or more
 *          shards of the same directory;
 *   PART   a block of a file's DAG covering bytes [offset, offset + size)
 *          of the file: its own Data goes there, its children after it.
 *
 * A worker pops a task, reads the block (store get), hashes it against its
 * CID (cairn_cid_verify: once per read, whatever the store; the command
 * opens its CAR trusted so nothing is hashed twice), writes what the block
 * holds and pushes its children. Because a parent gives each child its byte
 * range (blocksizes), the children of a file can be written in any order by
 * any worker: the 1 MiB leaves of a big file go to both cores at once, each
 * doing pread, SHA-256 and pwrite. The stack is LIFO and children are
 * pushed first child on top, so the walk is depth first and a file is
 * written from its start to its end.
 *
 * Buffered writes to one file are serialized by the kernel (the inode
 * lock), so a worker that finds another writing the same file hands its
 * verified piece over, buffer and all, and goes back to hashing; the
 * writer drains those pieces before it returns (write_piece).
 *
 * Memory: per worker one block buffer (the largest block read, at most the
 * CAR's section bound, 8 MiB) and the decoded node; up to 2 x threads
 * blocks handed over for writing; the stack, about 100 bytes per pending
 * task, which depth first keeps to the links of the nodes on the current
 * paths (a 1 TiB ipfs-car file: 2 x 1024 tasks). None of it grows with
 * the file size. A hostile DAG of huge nodes nested deep can make the
 * stack large, bounded by the depth limits times the links a block holds.
 *
 * Output files and directories are shared by tasks through a reference-
 * counted handle holding an open descriptor: entries are created with
 * openat/mkdirat/symlinkat relative to their directory's descriptor, one
 * name at a time, with O_NOFOLLOW, so nothing the exporter writes goes
 * through a symbolic link, whatever the DAG or the existing tree holds.
 * Entry names that are empty, "." or "..", or hold '/' or NUL are refused.
 * A symbolic link is made only when its target cannot lead out of `dest`
 * (symlink_unsafe); a root that is a link is refused. With `overwrite`, an
 * existing file or link in the way is replaced and an existing directory
 * reused (merged into: nothing else is removed); without it, anything in
 * the way is an error (CAIRN_EEXISTS for `dest`; inside a directory made
 * here only a name listed twice can be in the way: CAIRN_ECORRUPT).
 * Modes and times in the Data message are not applied.
 *
 * Failure: the first error stops the workers (tasks left are dropped) and
 * is returned with its message. When `dest` did not exist before, what was
 * created under it is removed, so a failed export leaves nothing behind;
 * with `overwrite` into an existing directory, what was written stays.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/unixfs.h"

/* Levels of a file's DAG below its root node: a balanced DAG of width 174
 * reaches 2^60 bytes in 7 levels, so 64 is only ever met by a hostile one. */
#define FILE_DEPTH_MAX 64
/* HAMT levels within one directory: fanout 256 uses one byte of the 64-bit
 * hash per level (8 levels), and rehashing past that is unheard of. */
#define SHARD_DEPTH_MAX 64
/* Nested directories: each open directory on the current path holds a
 * descriptor, and the default limit is 1024 of them. */
#define DIR_DEPTH_MAX 256

typedef enum { T_ENTRY, T_SHARD, T_PART } task_kind;

/* An output file or directory shared by the tasks that write into it. */
typedef struct handle {
	int fd;
	unsigned refs;       /* under ex->lock */
	bool is_file;
	unsigned dir_depth;  /* a directory's nesting below the root (root: 0) */
	uint64_t fanout;     /* a HAMT directory's fanout (its shards must match) */
	bool writing;        /* a worker is writing into this file (under ex->lock) */
	struct wbuf *q_head, *q_tail; /* pieces waiting for that worker */
	char path[];         /* for messages: dest/a/b, control characters escaped */
} handle;

/* A verified piece of a file waiting to be written: the block buffer it
 * lies in travels with it, and comes back as a spare once written. */
typedef struct wbuf {
	struct wbuf *next;
	cairn_buf buf;
	size_t at, len;      /* the piece: buf.data[at .. at + len) */
	uint64_t offset;     /* where it goes in the file */
} wbuf;

typedef struct task {
	struct task *next;
	task_kind kind;
	unsigned depth;      /* SHARD: shard level; PART: file DAG level */
	handle *h;           /* ENTRY, SHARD: the directory (NULL: the root entry);
			      * PART: the file */
	uint64_t offset;     /* PART */
	uint64_t size;       /* PART: bytes the parent says this block holds */
	size_t name_len;     /* ENTRY */
	uint16_t cid_len;
	uint8_t bytes[];     /* the binary CID, then for ENTRY the name and a NUL */
} task;

typedef struct exporter {
	cairn_store *store;
	const char *dest;
	bool overwrite;
	bool lock_gets;           /* the store is not known to be thread-safe */
	pthread_mutex_t get_lock;
	pthread_mutex_t lock;     /* everything below */
	pthread_cond_t cond;      /* a task was pushed, or the work ended */
	task *stack;
	unsigned busy;            /* workers running a task */
	bool stop;
	int err;                  /* the first failure */
	char msg[2048];
	uint64_t bytes_done;      /* for progress */
	wbuf *spares;             /* written pieces' buffers, for reuse */
	unsigned queued, queue_max; /* pieces waiting in all files, and the bound */
	cairn_unixfs_export_result res;
	bool root_created;        /* dest did not exist and was made here */
	cairn_unixfs_progress_fn progress;
	void *progress_payload;
} exporter;

typedef struct worker {
	exporter *ex;
	cairn_buf block;
	cairn_arena *arena;
	cairn_buf path;           /* the display path of the current entry */
	cairn_unixfs_export_result res;
	uint64_t task_bytes;
} worker;

/* A decoded dag-pb UnixFS node; borrows from the worker's block and arena. */
typedef struct pbnode {
	cairn_unixfs_data d;
	const cairn_node *links; /* the Links list items */
	size_t nlinks;
} pbnode;

/* ------------------------------------------------------------ messages */

static void cid_str(char *out, const cairn_cid *cid)
{
	if (cairn_cid_to_string(out, cid) < 0)
		strcpy(out, "(unprintable CID)");
}

/* Appends a name for a message: control characters (and, `quoted`, the
 * quote and backslash) as escapes, so a hostile name cannot rewrite the
 * terminal or the message. */
static void append_name(cairn_buf *b, const uint8_t *p, size_t n, bool quoted)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c < 0x20 || c == 0x7f)
			cairn_buf_printf(b, "\\x%02x", c);
		else if (quoted && (c == '"' || c == '\\'))
			cairn_buf_printf(b, "\\%c", c);
		else
			cairn_buf_putc(b, c);
	}
}

/* "dir: entry "name" why" for messages about an entry of a directory. */
static int entry_error(int code, const char *dir, const uint8_t *name, size_t n,
		       const char *why)
{
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	append_name(&b, name, n, true);
	rc = cairn_error_set(code, "%s: entry \"%s\" %s", dir,
			     b.data && !b.err ? (const char *)b.data : "", why);
	cairn_buf_free(&b);
	return rc;
}

/* Names a block of the output at `path` (NULL for the root itself). */
static int block_error(int code, const char *path, const cairn_cid *cid, const char *fmt, ...)
	CAIRN_PRINTF(4, 5);
static int block_error(int code, const char *path, const cairn_cid *cid, const char *fmt, ...)
{
	char s[CAIRN_CID_MAX_STRING], why[512];
	va_list ap;

	cid_str(s, cid);
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (path)
		return cairn_error_set(code, "%s: block %s: %s", path, s, why);
	return cairn_error_set(code, "block %s: %s", s, why);
}

static int os_error(const char *path, const char *what)
{
	return cairn_error_set(CAIRN_EIO, "%s: %s: %s", path, what, strerror(errno));
}

/* ------------------------------------------------------------- handles */

static handle *handle_new(const char *path, int fd, bool is_file)
{
	size_t n = strlen(path);
	handle *h = cairn_malloc(sizeof(*h) + n + 1);

	if (!h)
		return NULL;
	h->fd = fd;
	h->refs = 1;
	h->is_file = is_file;
	h->dir_depth = 0;
	h->fanout = 0;
	h->writing = false;
	h->q_head = h->q_tail = NULL;
	memcpy(h->path, path, n + 1);
	return h;
}

/* Drops one reference; the last closes the descriptor. A file's close can
 * report a write the kernel could not complete, so its error counts. */
static int handle_release(exporter *ex, handle *h)
{
	bool last;
	int rc = 0;

	if (!h)
		return 0;
	pthread_mutex_lock(&ex->lock);
	last = --h->refs == 0;
	pthread_mutex_unlock(&ex->lock);
	if (!last)
		return 0;
	if (close(h->fd) < 0 && h->is_file)
		rc = os_error(h->path, "close");
	cairn_free(h);
	return rc;
}

/* --------------------------------------------------------------- tasks */

static task *task_new(task_kind kind, const cairn_cid *cid, const uint8_t *name, size_t name_len)
{
	task *t = cairn_malloc(sizeof(*t) + cid->len + name_len + 1);

	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->cid_len = cid->len;
	memcpy(t->bytes, cid->bytes, cid->len);
	t->name_len = name_len;
	if (name_len)
		memcpy(t->bytes + cid->len, name, name_len);
	t->bytes[cid->len + name_len] = '\0';
	return t;
}

static const char *task_name(const task *t)
{
	return (const char *)t->bytes + t->cid_len;
}

/* A batch of children, pushed at once so the first ends on top. */
typedef struct batch {
	task *head, *tail;
	unsigned n;
} batch;

static void batch_add(batch *b, task *t)
{
	t->next = NULL;
	if (b->tail)
		b->tail->next = t;
	else
		b->head = t;
	b->tail = t;
	b->n++;
}

static void batch_drop(batch *b)
{
	while (b->head) {
		task *t = b->head;

		b->head = t->next;
		cairn_free(t);
	}
	b->tail = NULL;
	b->n = 0;
}

/* Hands the batch to the workers; each task takes a reference on `h`. */
static void batch_push(exporter *ex, batch *b, handle *h)
{
	if (!b->n)
		return;
	pthread_mutex_lock(&ex->lock);
	for (task *t = b->head; t; t = t->next)
		t->h = h;
	if (h)
		h->refs += b->n;
	b->tail->next = ex->stack;
	ex->stack = b->head;
	if (b->n > 1)
		pthread_cond_broadcast(&ex->cond);
	else
		pthread_cond_signal(&ex->cond);
	pthread_mutex_unlock(&ex->lock);
	b->head = b->tail = NULL;
	b->n = 0;
}

/* ----------------------------------------------------------- the block */

/* Reads the block and hashes it against its CID. */
static int fetch(worker *w, const cairn_cid *cid, const char *path)
{
	exporter *ex = w->ex;
	int rc;

	if (ex->lock_gets)
		pthread_mutex_lock(&ex->get_lock);
	rc = cairn_store_get(ex->store, &w->block, cid);
	if (ex->lock_gets)
		pthread_mutex_unlock(&ex->get_lock);
	if (!rc)
		rc = cairn_cid_verify(cid, w->block.data, w->block.len);
	if (rc)
		return path ? cairn_error_prefix("%s: ", path) : rc;
	w->res.blocks++;
	return 0;
}

static int decode_pb(pbnode *n, worker *w, const cairn_cid *cid, const char *path)
{
	const cairn_node *root, *data, *links;
	char s[CAIRN_CID_MAX_STRING];
	int rc;

	cairn_arena_reset(w->arena);
	if ((rc = cairn_dagpb_decode((cairn_node **)&root, w->arena, w->block.data, w->block.len)) ||
	    !(data = cairn_node_map_get(root, "Data")) ||
	    (rc = cairn_unixfs_data_decode(&n->d, w->arena, data->v.bytes.ptr, data->v.bytes.len))) {
		if (!rc)
			return block_error(CAIRN_ECORRUPT, path, cid,
					   "a dag-pb node without Data is not UnixFS");
		cid_str(s, cid);
		return path ? cairn_error_prefix("%s: block %s: ", path, s)
			    : cairn_error_prefix("block %s: ", s);
	}
	links = cairn_node_map_get(root, "Links");
	n->links = links->v.list.items;
	n->nlinks = links->v.list.len;
	return 0;
}

static const cairn_cid *link_cid(const pbnode *n, size_t i)
{
	return cairn_node_map_get(&n->links[i], "Hash")->v.link;
}

/* The link's name, or NULL with *len 0 when it has none. */
static const uint8_t *link_name(const pbnode *n, size_t i, size_t *len)
{
	const cairn_node *name = cairn_node_map_get(&n->links[i], "Name");

	*len = name ? name->v.bytes.len : 0;
	return name ? name->v.bytes.ptr : NULL;
}

/* --------------------------------------------------------------- files */

/* Checks a File (or Raw) node against what its parent says it holds:
 * one blocksize per link, and Data plus the blocksizes equal to the
 * filesize and to `expected` (when `has_expected`). Gives the total. */
static int check_file_node(uint64_t *total_out, const pbnode *n, const cairn_cid *cid,
			   const char *path, uint64_t expected, bool has_expected)
{
	uint64_t total = n->d.data_len;

	if (n->d.nblocksizes != n->nlinks)
		return block_error(CAIRN_ECORRUPT, path, cid,
				   "the file node has %zu links but %zu blocksizes", n->nlinks,
				   n->d.nblocksizes);
	for (size_t i = 0; i < n->d.nblocksizes; i++) {
		if (n->d.blocksizes[i] > (uint64_t)INT64_MAX - total)
			return block_error(CAIRN_ECORRUPT, path, cid,
					   "the blocksizes add up to more than 2^63 bytes");
		total += n->d.blocksizes[i];
	}
	if (n->d.has_filesize && n->d.filesize != total)
		return block_error(CAIRN_ECORRUPT, path, cid,
				   "filesize %llu, but Data and blocksizes hold %llu bytes",
				   (unsigned long long)n->d.filesize, (unsigned long long)total);
	if (has_expected && total != expected)
		return block_error(CAIRN_ECORRUPT, path, cid,
				   "holds %llu bytes, but its parent's blocksizes say %llu",
				   (unsigned long long)total, (unsigned long long)expected);
	*total_out = total;
	return 0;
}

/* Writes a verified piece of the worker's block into a file.
 *
 * Buffered writes to one file are serialized by the kernel (ext4 holds the
 * inode lock for each), so a worker arriving while another writes would
 * wait, or spin, instead of hashing the next leaf. It hands its piece over
 * instead, with the buffer it lies in, and takes a spare buffer for its
 * next block: the worker already writing drains the queue before it goes
 * back to hashing. The queue is bounded (2 pieces per thread); past that
 * the worker writes itself. Memory: at most threads + queue_max blocks. */
static int write_piece(worker *w, handle *f, const uint8_t *p, size_t len, uint64_t offset)
{
	exporter *ex = w->ex;
	cairn_buf tmp;
	wbuf *q;
	int rc = 0;

	w->task_bytes += len;
	if (!len)
		return 0;
	pthread_mutex_lock(&ex->lock);
	if (f->writing && ex->queued < ex->queue_max) {
		if ((q = ex->spares)) {
			ex->spares = q->next;
		} else if (!(q = cairn_calloc(1, sizeof(*q)))) {
			pthread_mutex_unlock(&ex->lock);
			return CAIRN_ENOMEM;
		}
		/* The spare's buffer (empty or used) becomes the worker's. */
		tmp = q->buf;
		q->buf = w->block;
		w->block = tmp;
		q->at = (size_t)(p - q->buf.data);
		q->len = len;
		q->offset = offset;
		q->next = NULL;
		if (f->q_tail)
			f->q_tail->next = q;
		else
			f->q_head = q;
		f->q_tail = q;
		f->refs++;
		ex->queued++;
		pthread_mutex_unlock(&ex->lock);
		return 0;
	}
	if (f->writing) {
		pthread_mutex_unlock(&ex->lock);
		return cairn_file_pwrite_full(f->fd, p, len, offset, f->path);
	}
	f->writing = true;
	pthread_mutex_unlock(&ex->lock);
	rc = cairn_file_pwrite_full(f->fd, p, len, offset, f->path);
	/* Drain what others queued meanwhile. After a failure the pieces are
	 * dropped: the first error is the one returned. Each piece holds a
	 * reference on `f`, and this worker's task holds another, so none of
	 * these releases closes the file. */
	pthread_mutex_lock(&ex->lock);
	while ((q = f->q_head)) {
		f->q_head = q->next;
		if (!f->q_head)
			f->q_tail = NULL;
		pthread_mutex_unlock(&ex->lock);
		if (!rc)
			rc = cairn_file_pwrite_full(f->fd, q->buf.data + q->at, q->len, q->offset,
						    f->path);
		pthread_mutex_lock(&ex->lock);
		q->next = ex->spares;
		ex->spares = q;
		ex->queued--;
		f->refs--;
	}
	f->writing = false;
	pthread_mutex_unlock(&ex->lock);
	return rc;
}

/* Writes the node's own Data at `offset` and pushes its children at theirs. */
static int file_node_write(worker *w, const pbnode *n, handle *f, uint64_t offset, unsigned depth)
{
	uint64_t at = offset + n->d.data_len;
	batch b = {NULL, NULL, 0};

	if (n->nlinks && depth + 1 > FILE_DEPTH_MAX)
		return cairn_error_set(CAIRN_ETOOBIG, "%s: the file's DAG is more than %d levels deep",
				       f->path, FILE_DEPTH_MAX);
	for (size_t i = 0; i < n->nlinks; i++) {
		task *t = task_new(T_PART, link_cid(n, i), NULL, 0);

		if (!t) {
			batch_drop(&b);
			return CAIRN_ENOMEM;
		}
		t->depth = depth + 1;
		t->offset = at;
		t->size = n->d.blocksizes[i];
		at += n->d.blocksizes[i];
		batch_add(&b, t);
	}
	batch_push(w->ex, &b, f);
	/* Last: the block's buffer may leave with the piece. */
	return write_piece(w, f, n->d.data, n->d.data_len, offset);
}

static bool is_file_type(cairn_unixfs_type t)
{
	return t == CAIRN_UNIXFS_FILE || t == CAIRN_UNIXFS_RAW;
}

static int run_part(worker *w, const task *t, const cairn_cid *cid)
{
	handle *f = t->h;
	uint64_t total;
	pbnode n;
	int rc;

	if ((rc = fetch(w, cid, f->path)))
		return rc;
	if (cid->codec == CAIRN_CODEC_RAW) {
		if (w->block.len != t->size)
			return block_error(CAIRN_ECORRUPT, f->path, cid,
					   "a raw leaf of %zu bytes, but its parent's blocksizes say %llu",
					   w->block.len, (unsigned long long)t->size);
		return write_piece(w, f, w->block.data, w->block.len, t->offset);
	}
	if (cid->codec != CAIRN_CODEC_DAG_PB)
		return block_error(CAIRN_EUNSUPPORTED, f->path, cid,
				   "codec 0x%llx in a file (UnixFS uses raw and dag-pb)",
				   (unsigned long long)cid->codec);
	if ((rc = decode_pb(&n, w, cid, f->path)))
		return rc;
	if (!is_file_type(n.d.type))
		return block_error(CAIRN_ECORRUPT, f->path, cid,
				   "a file's DAG holds a node of UnixFS type %d", (int)n.d.type);
	if ((rc = check_file_node(&total, &n, cid, f->path, t->size, true)))
		return rc;
	return file_node_write(w, &n, f, t->offset, t->depth);
}

/* ------------------------------------------------------- creating names */

/* Where an entry is created: its directory's descriptor and the name, or
 * for the root AT_FDCWD and `dest`. */
typedef struct place {
	int dirfd;
	const char *name;
	const char *path;  /* for messages */
	bool root;
} place;

/* EEXIST on an entry inside a directory made by this export can only be
 * a second entry of the same name. */
static int exists_error(const exporter *ex, const place *pl)
{
	if (pl->root || ex->overwrite)
		return cairn_error_set(CAIRN_EEXISTS, "%s: already exists", pl->path);
	return cairn_error_set(CAIRN_ECORRUPT, "%s: the directory lists this name twice", pl->path);
}

/* Removes a non-directory in the way (overwrite only). */
static int remove_in_way(const place *pl)
{
	struct stat st;

	if (unlinkat(pl->dirfd, pl->name, 0) == 0 || errno == ENOENT)
		return 0;
	/* Linux says EISDIR; POSIX allows EPERM. */
	if (errno == EISDIR || (errno == EPERM && fstatat(pl->dirfd, pl->name, &st,
							    AT_SYMLINK_NOFOLLOW) == 0 &&
				S_ISDIR(st.st_mode)))
		return cairn_error_set(CAIRN_EEXISTS, "%s: exists and is a directory", pl->path);
	return os_error(pl->path, "cannot remove");
}

static int create_file(int *fd_out, exporter *ex, const place *pl, uint64_t size)
{
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, fd, rc;

	fd = openat(pl->dirfd, pl->name, flags, 0666);
	if (fd < 0 && errno == EEXIST) {
		if (!ex->overwrite)
			return exists_error(ex, pl);
		if ((rc = remove_in_way(pl)))
			return rc;
		fd = openat(pl->dirfd, pl->name, flags, 0666);
	}
	if (fd < 0)
		return os_error(pl->path, "cannot create");
	if (pl->root)
		ex->root_created = true;
	if (size && ftruncate(fd, (off_t)size) < 0) {
		rc = os_error(pl->path, "cannot set the size");
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

/* Makes (or, overwriting, reuses) a directory and opens it. */
static int create_dir(int *fd_out, exporter *ex, const place *pl)
{
	int fd, rc;

	if (mkdirat(pl->dirfd, pl->name, 0777) == 0) {
		if (pl->root)
			ex->root_created = true;
	} else if (errno != EEXIST) {
		return os_error(pl->path, "cannot create the directory");
	} else if (!ex->overwrite) {
		return exists_error(ex, pl);
	}
	fd = openat(pl->dirfd, pl->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && ex->overwrite && (errno == ENOTDIR || errno == ELOOP)) {
		/* A file or a symbolic link where the directory goes. */
		if ((rc = remove_in_way(pl)))
			return rc;
		if (mkdirat(pl->dirfd, pl->name, 0777) < 0)
			return os_error(pl->path, "cannot create the directory");
		fd = openat(pl->dirfd, pl->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return os_error(pl->path, "cannot open the directory");
	*fd_out = fd;
	return 0;
}

/* A target is written only if it cannot lead out of the export: relative,
 * and any ".." only at its start, no more of them than the directories
 * between the link and the root. A target of names alone, through links
 * that obey the same rule, stays below the link's directory, so the tree
 * never points outside itself however its links are followed. "a/../b" is
 * refused though it stays inside: through a link "a", ".." leaves from
 * where "a" points, which a check on the text cannot know. */
static const char *symlink_unsafe(const uint8_t *p, size_t n, unsigned dir_depth)
{
	unsigned ups = 0;
	bool named = false;

	if (!n)
		return "is empty";
	if (memchr(p, '\0', n))
		return "holds a NUL byte";
	if (n >= PATH_MAX)
		return "is longer than PATH_MAX";
	if (p[0] == '/')
		return "is absolute";
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && p[j] != '/')
			j++;
		if (j - i == 2 && p[i] == '.' && p[i + 1] == '.') {
			if (named)
				return "has \"..\" after a name";
			if (++ups > dir_depth)
				return "leads out of the output directory";
		} else if (j - i && !(j - i == 1 && p[i] == '.')) {
			named = true;
		}
		i = j + 1;
	}
	return NULL;
}

static int create_symlink(worker *w, const place *pl, const pbnode *n, unsigned dir_depth,
			  const cairn_cid *cid)
{
	char target[PATH_MAX];
	const char *why;
	int rc;

	if (pl->root)
		return block_error(CAIRN_EUNSUPPORTED, pl->path, cid,
				   "the root is a symbolic link; only files and directories can be unpacked");
	if ((why = symlink_unsafe(n->d.data, n->d.data_len, dir_depth))) {
		cairn_buf b = CAIRN_BUF_INIT;

		append_name(&b, n->d.data, n->d.data_len < 200 ? n->d.data_len : 200, true);
		rc = cairn_error_set(CAIRN_EUNSUPPORTED,
				     "%s: symbolic link to \"%s\" refused: the target %s", pl->path,
				     b.data ? (const char *)b.data : "", why);
		cairn_buf_free(&b);
		return rc;
	}
	memcpy(target, n->d.data, n->d.data_len);
	target[n->d.data_len] = '\0';
	if (symlinkat(target, pl->dirfd, pl->name) == 0)
		return 0;
	if (errno != EEXIST)
		return os_error(pl->path, "cannot create the symbolic link");
	if (!w->ex->overwrite)
		return exists_error(w->ex, pl);
	if ((rc = remove_in_way(pl)))
		return rc;
	if (symlinkat(target, pl->dirfd, pl->name) < 0)
		return os_error(pl->path, "cannot create the symbolic link");
	return 0;
}

/* ---------------------------------------------------------- directories */

/* An entry name that would leave its directory or cannot be a file name. */
static const char *bad_name(const uint8_t *p, size_t n)
{
	if (!p || !n)
		return "has an empty name";
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		return "is refused: \".\" and \"..\" cannot be entry names";
	if (memchr(p, '/', n))
		return "is refused: a name cannot hold '/'";
	if (memchr(p, '\0', n))
		return "is refused: a name cannot hold a NUL byte";
	return NULL;
}

static int push_entry(batch *b, const handle *dir, const cairn_cid *cid, const uint8_t *name,
		      size_t len)
{
	const char *why = bad_name(name, len);
	task *t;

	if (why)
		return entry_error(CAIRN_ECORRUPT, dir->path, name, len, why);
	if (!(t = task_new(T_ENTRY, cid, name, len)))
		return CAIRN_ENOMEM;
	batch_add(b, t);
	return 0;
}

/* The entries of a plain directory node. */
static int list_dir(worker *w, const pbnode *n, handle *dir)
{
	batch b = {NULL, NULL, 0};
	int rc;

	for (size_t i = 0; i < n->nlinks; i++) {
		size_t len;
		const uint8_t *name = link_name(n, i, &len);

		if ((rc = push_entry(&b, dir, link_cid(n, i), name, len))) {
			batch_drop(&b);
			return rc;
		}
	}
	batch_push(w->ex, &b, dir);
	return 0;
}

/* Hex digits of fanout - 1: the width of the bucket prefix of a HAMT link
 * name (2 for fanout 256). */
static size_t prefix_width(uint64_t fanout)
{
	size_t w = 0;

	for (uint64_t v = fanout - 1; v; v >>= 4)
		w++;
	return w ? w : 1;
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int check_shard(const pbnode *n, const cairn_cid *cid, const char *path, uint64_t fanout)
{
	if (n->d.type != CAIRN_UNIXFS_HAMT_SHARD)
		return block_error(CAIRN_ECORRUPT, path, cid,
				   "a HAMT shard links to a node of UnixFS type %d", (int)n->d.type);
	if (!n->d.has_hash_type || n->d.hash_type != CAIRN_UNIXFS_HAMT_MURMUR3)
		return block_error(CAIRN_EUNSUPPORTED, path, cid,
				   "HAMT hash type 0x%llx (only murmur3-x64-64, 0x22, is known)",
				   (unsigned long long)n->d.hash_type);
	if (!n->d.has_fanout || n->d.fanout < 2 || n->d.fanout > 65536 ||
	    (n->d.fanout & (n->d.fanout - 1)))
		return block_error(CAIRN_ECORRUPT, path, cid,
				   "HAMT fanout %llu (a power of two from 2 to 65536 expected)",
				   (unsigned long long)n->d.fanout);
	if (fanout && n->d.fanout != fanout)
		return block_error(CAIRN_ECORRUPT, path, cid,
				   "HAMT fanout %llu below a shard of fanout %llu",
				   (unsigned long long)n->d.fanout, (unsigned long long)fanout);
	return 0;
}

static int prefix_error(const handle *dir, const cairn_cid *cid, const uint8_t *name, size_t len,
			size_t width)
{
	char s[CAIRN_CID_MAX_STRING];
	cairn_buf b = CAIRN_BUF_INIT;
	int rc;

	cid_str(s, cid);
	append_name(&b, name, len, true);
	rc = cairn_error_set(CAIRN_ECORRUPT,
			     "%s: block %s: HAMT link \"%s\" does not start with a %zu-digit hex bucket below the fanout %llu",
			     dir->path, s, b.data ? (const char *)b.data : "", width,
			     (unsigned long long)dir->fanout);
	cairn_buf_free(&b);
	return rc;
}

/* The links of a HAMT shard: "XX" + name is an entry, "XX" alone a shard
 * one level down (XX: the bucket in hex, as wide as fanout - 1). */
static int list_shard(worker *w, const pbnode *n, const cairn_cid *cid, handle *dir,
		      unsigned depth)
{
	size_t width = prefix_width(dir->fanout);
	batch b = {NULL, NULL, 0};
	int rc = 0;

	for (size_t i = 0; i < n->nlinks && !rc; i++) {
		size_t len;
		const uint8_t *name = link_name(n, i, &len);
		uint64_t bucket = 0;
		task *t;

		for (size_t k = 0; k < width && k < len; k++) {
			int v = hex_value(name[k]);

			if (v < 0) {
				bucket = UINT64_MAX;
				break;
			}
			bucket = bucket << 4 | (unsigned)v;
		}
		if (len < width || bucket >= dir->fanout) {
			rc = prefix_error(dir, cid, name, len, width);
			break;
		}
		if (len == width) {
			if (depth + 1 > SHARD_DEPTH_MAX) {
				rc = cairn_error_set(CAIRN_ETOOBIG,
						     "%s: the HAMT is more than %d levels deep",
						     dir->path, SHARD_DEPTH_MAX);
				break;
			}
			if (!(t = task_new(T_SHARD, link_cid(n, i), NULL, 0))) {
				rc = CAIRN_ENOMEM;
				break;
			}
			t->depth = depth + 1;
			batch_add(&b, t);
			continue;
		}
		rc = push_entry(&b, dir, link_cid(n, i), name + width, len - width);
	}
	if (rc) {
		batch_drop(&b);
		return rc;
	}
	batch_push(w->ex, &b, dir);
	return 0;
}

static int run_shard(worker *w, const task *t, const cairn_cid *cid)
{
	handle *dir = t->h;
	pbnode n;
	int rc;

	if ((rc = fetch(w, cid, dir->path)))
		return rc;
	if (cid->codec != CAIRN_CODEC_DAG_PB)
		return block_error(CAIRN_ECORRUPT, dir->path, cid,
				   "a HAMT shard links to a block of codec 0x%llx",
				   (unsigned long long)cid->codec);
	if ((rc = decode_pb(&n, w, cid, dir->path)) ||
	    (rc = check_shard(&n, cid, dir->path, dir->fanout)))
		return rc;
	return list_shard(w, &n, cid, dir, t->depth);
}

/* -------------------------------------------------------------- entries */

/* A file from a raw block: the block is the content. */
static int entry_raw_file(worker *w, const place *pl)
{
	int fd = -1, rc;

	if ((rc = create_file(&fd, w->ex, pl, 0)))
		return rc;
	w->res.files++;
	rc = cairn_file_pwrite_full(fd, w->block.data, w->block.len, 0, pl->path);
	if (close(fd) < 0 && !rc)
		rc = os_error(pl->path, "close");
	w->task_bytes += w->block.len;
	return rc;
}

static int entry_file(worker *w, const pbnode *n, const place *pl, const cairn_cid *cid)
{
	uint64_t total;
	handle *f;
	int fd = -1, rc, rc2;

	if ((rc = check_file_node(&total, n, cid, pl->path, 0, false)) ||
	    (rc = create_file(&fd, w->ex, pl, total)))
		return rc;
	w->res.files++;
	if (!(f = handle_new(pl->path, fd, true))) {
		close(fd);
		return CAIRN_ENOMEM;
	}
	rc = file_node_write(w, n, f, 0, 0);
	rc2 = handle_release(w->ex, f);
	return rc ? rc : rc2;
}

static int entry_dir(worker *w, const pbnode *n, const place *pl, const task *t,
		     const cairn_cid *cid)
{
	unsigned depth = t->h ? t->h->dir_depth + 1 : 0;
	handle *dir;
	int fd = -1, rc, rc2;

	if (n->d.type == CAIRN_UNIXFS_HAMT_SHARD &&
	    (rc = check_shard(n, cid, pl->path, 0)))
		return rc;
	if (depth > DIR_DEPTH_MAX)
		return cairn_error_set(CAIRN_ETOOBIG, "%s: directories nested more than %d deep",
				       pl->path, DIR_DEPTH_MAX);
	if ((rc = create_dir(&fd, w->ex, pl)))
		return rc;
	w->res.dirs++;
	if (!(dir = handle_new(pl->path, fd, false))) {
		close(fd);
		return CAIRN_ENOMEM;
	}
	dir->dir_depth = depth;
	if (n->d.type == CAIRN_UNIXFS_HAMT_SHARD) {
		dir->fanout = n->d.fanout;
		rc = list_shard(w, n, cid, dir, 0);
	} else {
		rc = list_dir(w, n, dir);
	}
	rc2 = handle_release(w->ex, dir);
	return rc ? rc : rc2;
}

static int run_entry(worker *w, const task *t, const cairn_cid *cid)
{
	exporter *ex = w->ex;
	place pl;
	pbnode n;
	int rc;

	cairn_buf_clear(&w->path);
	if (t->h) {
		cairn_buf_puts(&w->path, t->h->path);
		cairn_buf_putc(&w->path, '/');
		append_name(&w->path, (const uint8_t *)task_name(t), t->name_len, false);
	} else {
		cairn_buf_puts(&w->path, ex->dest);
	}
	if (w->path.err)
		return w->path.err;
	pl.dirfd = t->h ? t->h->fd : AT_FDCWD;
	pl.name = t->h ? task_name(t) : ex->dest;
	pl.path = (const char *)w->path.data;
	pl.root = !t->h;
	if ((rc = fetch(w, cid, pl.path)))
		return rc;
	if (cid->codec == CAIRN_CODEC_RAW)
		return entry_raw_file(w, &pl);
	if (cid->codec != CAIRN_CODEC_DAG_PB)
		return block_error(CAIRN_EUNSUPPORTED, pl.path, cid,
				   "codec 0x%llx is not UnixFS (raw or dag-pb)",
				   (unsigned long long)cid->codec);
	if ((rc = decode_pb(&n, w, cid, pl.path)))
		return rc;
	switch (n.d.type) {
	case CAIRN_UNIXFS_RAW:
	case CAIRN_UNIXFS_FILE:
		return entry_file(w, &n, &pl, cid);
	case CAIRN_UNIXFS_DIRECTORY:
	case CAIRN_UNIXFS_HAMT_SHARD:
		return entry_dir(w, &n, &pl, t, cid);
	case CAIRN_UNIXFS_SYMLINK:
		return create_symlink(w, &pl, &n, t->h ? t->h->dir_depth : 0, cid);
	case CAIRN_UNIXFS_METADATA:
	default:
		return block_error(CAIRN_EUNSUPPORTED, pl.path, cid,
				   "UnixFS Metadata nodes are not supported");
	}
}

/* ------------------------------------------------------------- workers */

static int run_task(worker *w, const task *t)
{
	cairn_cid cid;
	int rc;

	/* The bytes came from a decoded CID: this cannot fail. */
	if ((rc = cairn_cid_decode(&cid, NULL, t->bytes, t->cid_len)))
		return rc;
	switch (t->kind) {
	case T_ENTRY: return run_entry(w, t, &cid);
	case T_SHARD: return run_shard(w, t, &cid);
	case T_PART: return run_part(w, t, &cid);
	}
	return cairn_error_set(CAIRN_ERROR, "unixfs export: internal error: task kind %d", (int)t->kind);
}

/* Records the first failure (its message is this thread's) and stops. */
static void fail_locked(exporter *ex, int rc)
{
	if (!ex->err) {
		ex->err = rc;
		snprintf(ex->msg, sizeof(ex->msg), "%s", cairn_error_last());
	}
	ex->stop = true;
	pthread_cond_broadcast(&ex->cond);
}

/* Takes tasks until none is left and no worker can push more, or until a
 * failure. */
static void work(worker *w)
{
	exporter *ex = w->ex;

	pthread_mutex_lock(&ex->lock);
	for (;;) {
		task *t;
		int rc, rc2;

		while (!ex->stack && ex->busy && !ex->stop)
			pthread_cond_wait(&ex->cond, &ex->lock);
		if (ex->stop || !ex->stack)
			break;
		t = ex->stack;
		ex->stack = t->next;
		ex->busy++;
		pthread_mutex_unlock(&ex->lock);

		w->task_bytes = 0;
		rc = run_task(w, t);
		rc2 = handle_release(ex, t->h);
		cairn_free(t);
		if (!rc)
			rc = rc2;

		pthread_mutex_lock(&ex->lock);
		ex->busy--;
		w->res.bytes += w->task_bytes;
		if (rc)
			fail_locked(ex, rc);
		if (w->task_bytes && ex->progress) {
			/* Under the lock: the callback is called by one thread at a time. */
			ex->bytes_done += w->task_bytes;
			ex->progress(ex->progress_payload, ex->bytes_done);
		}
		if (!ex->stack && !ex->busy)
			pthread_cond_broadcast(&ex->cond);
	}
	pthread_mutex_unlock(&ex->lock);
}

static void work_job(void *arg)
{
	work(arg);
}

static int worker_init(worker *w, exporter *ex)
{
	memset(w, 0, sizeof(*w));
	w->ex = ex;
	return cairn_arena_new(&w->arena);
}

static void worker_fini(worker *w)
{
	exporter *ex = w->ex;

	ex->res.files += w->res.files;
	ex->res.dirs += w->res.dirs;
	ex->res.bytes += w->res.bytes;
	ex->res.blocks += w->res.blocks;
	cairn_buf_free(&w->block);
	cairn_buf_free(&w->path);
	cairn_arena_free(w->arena);
}

/* ------------------------------------------------------------- cleanup */

/* Removes a tree this export made, never following a symbolic link.
 * Best effort: it runs only after a failure, whose message it keeps. */
static void remove_tree(int dirfd, const char *name, unsigned depth)
{
	struct dirent *e;
	DIR *d;
	int fd;

	if (unlinkat(dirfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM))
		return;
	if (depth > DIR_DEPTH_MAX + 1)
		return;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			remove_tree(fd, e->d_name, depth + 1);
	}
	closedir(d);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* ------------------------------------------------------------------ API */

/* Stores whose get is known to be safe from several threads at once (see
 * store.h); any other is read under a lock, hashing still in parallel. */
static bool store_thread_safe(const cairn_store *s)
{
	const char *name = cairn_store_name(s);

	return name && (!strcmp(name, "car") || !strcmp(name, "car-rw") || !strcmp(name, "lmdb"));
}

int cairn_unixfs_export(cairn_unixfs_export_result *out, cairn_store *store,
			const cairn_cid *root, const char *dest,
			const cairn_unixfs_export_options *opts)
{
	static const cairn_unixfs_export_options defaults = {0, false, NULL, NULL};
	cairn_pool *pool = NULL;
	worker *workers = NULL;
	unsigned nthreads, started = 0;
	exporter ex;
	task *t;
	int rc = 0;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!out || !store || !root || !dest || !*dest)
		return cairn_error_set(CAIRN_EINVAL, "unixfs export: NULL or empty argument");
	if (!opts)
		opts = &defaults;
	nthreads = opts->threads;
	if (!nthreads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n > 0 ? (unsigned)n : 1;
	}
	if (nthreads > 256)
		nthreads = 256;

	memset(&ex, 0, sizeof(ex));
	ex.store = store;
	ex.dest = dest;
	ex.overwrite = opts->overwrite;
	ex.lock_gets = nthreads > 1 && !store_thread_safe(store);
	ex.progress = opts->progress;
	ex.progress_payload = opts->progress_payload;
	ex.queue_max = nthreads > 1 ? 2 * nthreads : 0;
	pthread_mutex_init(&ex.lock, NULL);
	pthread_mutex_init(&ex.get_lock, NULL);
	pthread_cond_init(&ex.cond, NULL);

	if (!(t = task_new(T_ENTRY, root, NULL, 0)) ||
	    !(workers = cairn_calloc(nthreads, sizeof(*workers)))) {
		cairn_free(t);
		rc = CAIRN_ENOMEM;
		goto done;
	}
	ex.stack = t;
	for (; started < nthreads; started++) {
		if ((rc = worker_init(&workers[started], &ex))) {
			/* The arena of a worker that failed to start is NULL. */
			started++;
			goto done;
		}
	}
	if (nthreads > 1 && (rc = cairn_pool_new(&pool, nthreads - 1)))
		goto done;
	for (unsigned i = 1; i < nthreads; i++) {
		if ((rc = cairn_pool_submit(pool, work_job, &workers[i]))) {
			pthread_mutex_lock(&ex.lock);
			fail_locked(&ex, rc);
			pthread_mutex_unlock(&ex.lock);
			break;
		}
	}
	work(&workers[0]);
	cairn_pool_free(pool); /* waits for the jobs */
	rc = ex.err;
done:
	for (unsigned i = 0; i < started; i++)
		worker_fini(&workers[i]);
	cairn_free(workers);
	/* Tasks left by a failure still hold their handles. */
	while ((t = ex.stack)) {
		ex.stack = t->next;
		handle_release(&ex, t->h);
		cairn_free(t);
	}
	while (ex.spares) {
		wbuf *q = ex.spares;

		ex.spares = q->next;
		cairn_buf_free(&q->buf);
		cairn_free(q);
	}
	if (rc && ex.err)
		cairn_error_set(ex.err, "%s", ex.msg);
	if (rc && ex.root_created) {
		char msg[sizeof(ex.msg)];

		snprintf(msg, sizeof(msg), "%s", cairn_error_last());
		remove_tree(AT_FDCWD, dest, 0);
		cairn_error_set(rc, "%s", msg);
	}
	pthread_cond_destroy(&ex.cond);
	pthread_mutex_destroy(&ex.get_lock);
	pthread_mutex_destroy(&ex.lock);
	if (!rc)
		*out = ex.res;
	return rc;
}
