/* cairn/mount.h: where a DAG-store shard's bytes live, opened by URL and read
 * at random: local files, HTTP(S) with ranges or through a local transient copy. */
#ifndef CAIRN_MOUNT_H
#define CAIRN_MOUNT_H

#include "cairn/car.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ interface
 *
 * A mount is opened from a URL through a registry that maps the URL's scheme
 * to a table of operations. Once open it has a fixed size and is read with
 * cairn_mount_read_at, exactly like pread but never short: every read is
 * checked against the size first.
 *
 * An implementation embeds `cairn_mount` as the first member of its state
 * and sets `ops`, `name` and `kind` in its open. `open`, `size`, `read_at`
 * and `close` are required; `stat` and `fd` may be NULL (the wrappers then
 * answer from what open learned, and -1). The wrappers check arguments and
 * bounds, so `read_at` is only called with 0 < n and offset + n <= size.
 *
 * Every mount must allow concurrent read_at from any number of threads.
 */
#define CAIRN_MOUNT_OPS_VERSION 1

typedef struct cairn_mount cairn_mount;
typedef struct cairn_mount_registry cairn_mount_registry;

typedef enum cairn_mount_kind {
	CAIRN_MOUNT_LOCAL = 1,  /* a local file system: reads are cheap */
	CAIRN_MOUNT_REMOTE = 2, /* over a network: each read is a round trip */
} cairn_mount_kind;

/* When a mount copies its whole content to a local transient file before
 * serving reads, as dagstore's upgrader does. */
typedef enum cairn_mount_fetch {
	CAIRN_MOUNT_FETCH_AUTO = 0, /* only when the source cannot read at an
				     * offset (an HTTP server ignoring Range) */
	CAIRN_MOUNT_FETCH_NEVER,    /* never: such a source then opens, but its
				     * reads fail with CAIRN_EUNSUPPORTED (for
				     * stat without a download) */
	CAIRN_MOUNT_FETCH_ALWAYS,   /* always, for a remote source read many times */
} cairn_mount_fetch;

typedef struct cairn_mount_options {
	cairn_mount_fetch fetch;
} cairn_mount_options;
#define CAIRN_MOUNT_OPTIONS_INIT {CAIRN_MOUNT_FETCH_AUTO}

typedef struct cairn_mount_status {
	bool exists;           /* false: the source is gone (the rest is unset) */
	bool ready;            /* reads are served without a slow step first
				* (false: e.g. a sector that must be unsealed) */
	bool random;           /* reads at any offset go to the source itself */
	bool transient;        /* reads are served from a local transient copy */
	cairn_mount_kind kind;
	uint64_t size;         /* the source's size now (the mount keeps the
				* size it had at open) */
} cairn_mount_status;

typedef struct cairn_mount_ops {
	unsigned version;   /* CAIRN_MOUNT_OPS_VERSION */
	const char *name;   /* "file", "http", ... */
	/* `ctx` is what the scheme was registered with; `url` is the whole URL
	 * (or a bare path, for the scheme bare paths go to). On failure *out is
	 * NULL. */
	int (*open)(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *opts);
	/* The size fixed at open. */
	uint64_t (*size)(cairn_mount *m);
	/* Reads exactly n bytes at offset (in bounds, n > 0); thread-safe. */
	int (*read_at)(cairn_mount *m, void *buf, size_t n, uint64_t offset);
	/* Looks at the source again (a stat, a request). */
	int (*stat)(cairn_mount *m, cairn_mount_status *out);
	/* A descriptor reads can go to with pread (a local file or a
	 * transient), borrowed until close, or -1. */
	int (*fd)(cairn_mount *m);
	void (*close)(cairn_mount *m);
} cairn_mount_ops;

struct cairn_mount {
	const cairn_mount_ops *ops;
	const char *name;       /* for messages: the path or the URL without
				 * its user and password; owned by the mount */
	cairn_mount_kind kind;
};

/* --------------------------------------------------------------- registry
 *
 * Scheme -> operations. Fill it before use: cairn_mount_registry_add is not
 * safe alongside cairn_mount_open, which is safe from any number of
 * threads. Schemes compare without regard to case.
 */
CAIRN_API int cairn_mount_registry_new(cairn_mount_registry **out);
/* A registry with "file", and "http" and "https" over a client made with
 * `http_opts` (NULL: CAIRN_MOUNT_HTTP_OPTIONS_INIT, no transients). */
typedef struct cairn_mount_http_options cairn_mount_http_options;
CAIRN_API int cairn_mount_registry_new_default(cairn_mount_registry **out,
					       const cairn_mount_http_options *http_opts);
/* Maps `scheme` (letters, digits, "+-.", starting with a letter) to `ops`.
 * `ctx` is passed to ops->open; it is borrowed and must outlive the registry
 * and every mount opened through it. CAIRN_EEXISTS if the scheme is taken,
 * CAIRN_EUNSUPPORTED for an ops version this build does not know,
 * CAIRN_EINVAL for a malformed scheme or a table missing a required
 * operation. */
CAIRN_API int cairn_mount_registry_add(cairn_mount_registry *reg, const char *scheme,
				       const cairn_mount_ops *ops, void *ctx);
/* Frees; mounts opened through it stay usable (they hold what they need).
 * NULL is accepted. */
CAIRN_API void cairn_mount_registry_free(cairn_mount_registry *reg);

/* The operations of file mounts, to register as "file". */
CAIRN_API extern const cairn_mount_ops cairn_mount_file_ops;

/* ------------------------------------------------------------- mounts */

/* Opens the mount `url` names. A string with no "scheme:" in front that
 * starts with '/' is taken as a file path (the registry must have "file");
 * a relative path is refused, since a URL kept in a shard registry must not
 * depend on the working directory. `opts` may be NULL.
 * CAIRN_ENOTFOUND: no such file or resource (the message names the URL);
 * CAIRN_EUNSUPPORTED: no mount registered for the scheme (named);
 * CAIRN_EINVAL: a malformed URL; others as the implementation says.
 * On failure *out is NULL. */
CAIRN_API int cairn_mount_open(cairn_mount **out, cairn_mount_registry *reg, const char *url,
			       const cairn_mount_options *opts);
/* The size at open. */
CAIRN_API uint64_t cairn_mount_size(cairn_mount *m);
/* Reads exactly n bytes at `offset`. CAIRN_ECORRUPT when [offset, offset+n)
 * runs past the size ("unexpected end of data", naming the mount and
 * offset) or the source returns fewer bytes than asked; CAIRN_EIO for a
 * failed read or request. n = 0 reads nothing and succeeds when offset <=
 * size. Thread-safe. */
CAIRN_API int cairn_mount_read_at(cairn_mount *m, void *buf, size_t n, uint64_t offset);
/* Looks at the source again; for HTTP this is a request. Without a stat
 * operation: exists, ready and the size at open. */
CAIRN_API int cairn_mount_stat(cairn_mount *m, cairn_mount_status *out);
/* A descriptor that pread can use for this mount's bytes (a local file or a
 * transient copy), borrowed until close; -1 if reads go over a network.
 * Lets callers hand local mounts to cairn_car_reader_open_fd and
 * cairn_car_section_read. */
CAIRN_API int cairn_mount_fd(cairn_mount *m);
/* The name used in messages (a path, or the URL without credentials);
 * borrowed until close. */
CAIRN_API const char *cairn_mount_name(const cairn_mount *m);
CAIRN_API cairn_mount_kind cairn_mount_get_kind(const cairn_mount *m);
/* NULL is accepted. Must not run alongside reads of the same mount. */
CAIRN_API void cairn_mount_close(cairn_mount *m);

/* Opens with CAIRN_MOUNT_FETCH_NEVER and stats: a missing source is
 * exists = false and returns 0, not CAIRN_ENOTFOUND. */
CAIRN_API int cairn_mount_stat_url(cairn_mount_status *out, cairn_mount_registry *reg,
				   const char *url);

/* Appends the file URL for an absolute `path` to `out` ("file:///a%20b.car"
 * for "/a b.car"); CAIRN_EINVAL for a relative path. */
CAIRN_API int cairn_mount_file_url(cairn_buf *out, const char *path);

/* ------------------------------------------------------------ file mounts
 *
 * "file:///abs/path", "file://localhost/abs/path", "file:/abs/path", or a
 * bare absolute path. Percent-escapes in the path are decoded ("%20");
 * a '?' or '#' must be escaped ("%3F", "%23"), since in a URL they start a
 * query or a fragment. Another host is CAIRN_EUNSUPPORTED. Only regular
 * files (CAIRN_EINVAL otherwise). Reads are pread on one descriptor.
 * kind LOCAL; stat looks at the path again (exists = false once it is gone,
 * though the open descriptor still reads the old file).
 */

/* ------------------------------------------------------------ HTTP mounts
 *
 * "http://" and "https://" through libcurl. Open sends one GET with
 * "Range: bytes=0-0":
 *   206 with Content-Range .../N  ranges work: size N, every read a Range
 *                                 request (a HEAD gives the size when the
 *                                 total is "*");
 *   200                           the server ignores Range: the content is
 *                                 copied to a transient file once (below)
 *                                 and reads are served from it;
 *   404, 410                      CAIRN_ENOTFOUND naming the URL;
 *   other                         CAIRN_EIO naming the status and URL.
 * Connection failures, timeouts, 408, 429 and 5xx are retried `retries`
 * times, waiting retry_delay_ms, then twice as long each time; then
 * CAIRN_EIO. A 206 with fewer bytes than asked, or a Content-Range that
 * does not match the request or the size at open, or a 416, is
 * CAIRN_ECORRUPT naming the URL and offset. A URL curl cannot parse is
 * CAIRN_EINVAL. Reads are thread-safe.
 * Redirects are followed (at most 5, http and https only). Messages name
 * the URL without user and password.
 *
 * Connections: requests borrow an easy handle from a pool in the client and
 * give it back (most recently used first), so a thread's next request
 * reuses the open connection; DNS answers and TLS sessions are shared.
 *
 * Transients: `<transients_dir>/<hash>.partial` while downloading (hash:
 * 32 hex digits of the URL's SHA-256), fsynced and renamed to
 * `<hash>.complete`; a complete copy whose size matches is reused by later
 * opens and after a restart (the content behind a URL is taken not to
 * change: shards are content-addressed). Downloads of one URL are made
 * once, concurrent opens waiting for it. All transients stay within
 * transients_max_bytes: a download first reserves its size (in 64 MiB steps
 * when the server gives none), evicting transients no open mount uses,
 * least recently read first; if it still does not fit, open fails with
 * CAIRN_ETOOBIG and leaves nothing behind. A transient in use is never
 * deleted. At creation the client deletes leftover .partial files, adopts
 * the .complete ones (last access = mtime, set at each close), and locks
 * the directory against a second process (CAIRN_EEXISTS).
 */
typedef struct cairn_mount_http cairn_mount_http;

/* Start from CAIRN_MOUNT_HTTP_OPTIONS_INIT: a zero means none (no retries,
 * no wait, no limit, no pool: a new connection for every request). */
struct cairn_mount_http_options {
	const char *transients_dir;     /* NULL: no transients (servers that
					 * ignore Range fail with CAIRN_EUNSUPPORTED);
					 * copied */
	uint64_t transients_max_bytes;  /* 0: no limit */
	unsigned retries;               /* default 2 */
	unsigned retry_delay_ms;        /* first wait; default 250 */
	unsigned connect_timeout_ms;    /* default 10000 (0: curl's, 300 s) */
	unsigned stall_timeout_ms;      /* a transfer under 1 KiB/s this long
					 * fails (and is retried); default 30000 */
	unsigned request_timeout_ms;    /* whole probe or ranged read, not
					 * downloads; default 120000 */
	unsigned max_idle_handles;      /* kept in the pool; default 16 */
	const char *user_agent;         /* NULL: "cairn"; copied */
};
#define CAIRN_MOUNT_HTTP_OPTIONS_INIT {NULL, 0, 2, 250, 10000, 30000, 120000, 16, NULL}

typedef struct cairn_mount_http_stats {
	uint64_t requests;        /* HTTP requests sent, retries included */
	uint64_t retries;
	uint64_t handles_created; /* easy handles made (each holds connections) */
	uint64_t downloads;       /* transient copies completed */
	uint64_t evictions;       /* transients deleted to make room or by gc */
	uint64_t transients;      /* complete transients now */
	uint64_t transients_in_use;
	uint64_t transient_bytes; /* complete transients plus reservations */
} cairn_mount_http_stats;

/* Makes a client. With a transients_dir, creates it if needed, cleans and
 * adopts it as above: CAIRN_EIO if it cannot be used, CAIRN_EEXISTS if
 * another process holds it. */
CAIRN_API int cairn_mount_http_new(cairn_mount_http **out, const cairn_mount_http_options *opts);
/* Registers "http" and "https" with this client; the registry and every
 * mount hold a reference, so the client may be freed at once. */
CAIRN_API int cairn_mount_http_register(cairn_mount_http *h, cairn_mount_registry *reg);
/* Deletes every complete transient no mount uses (dagstore's GC), or with a
 * `url` only that URL's copy if unused (a recovery that must fetch again);
 * `freed_out` (may be NULL) gets the bytes freed. Returns how many were
 * deleted. */
CAIRN_API int cairn_mount_http_gc(cairn_mount_http *h, const char *url, uint64_t *freed_out);
CAIRN_API void cairn_mount_http_get_stats(cairn_mount_http *h, cairn_mount_http_stats *out);
/* Drops the caller's reference; the client goes when its registries and
 * mounts are gone. NULL is accepted. */
CAIRN_API void cairn_mount_http_free(cairn_mount_http *h);

/* ---------------------------------------------------- CARs over a mount
 *
 * A mount as the source of a cairn_car_reader: a CARv1, or the CARv1 inside
 * a CARv2, read through any mount with the reader's checks, bounds, offsets
 * and messages. Reads go through a window of `window` bytes (0: 4 MiB for a
 * remote mount, 1 MiB for a local one) that grows only to the largest
 * section, and never past the payload's end (a CARv2's index is not
 * fetched). The mount must outlive the reader.
 */

/* Fills `out` to read `m`. */
CAIRN_API void cairn_mount_car_source(cairn_car_source *out, cairn_mount *m, size_t window);
/* cairn_car_reader_open_source over `m`. */
CAIRN_API int cairn_mount_car_open(cairn_car_reader **out, cairn_mount *m,
				   const cairn_car_options *opts, size_t window);

/* Opens, calls `fn` for every section (`block` NULL unless opts is
 * untrusted, when each block is hashed first) and frees: the DAG store's
 * indexing pass. `fn` returning non-zero stops and is returned. */
CAIRN_API int cairn_mount_car_foreach(cairn_mount *m, const cairn_car_options *opts,
				      cairn_car_section_fn fn, void *payload);

/* Reads one section at payload offset `offset` into `block` (grown as
 * needed): cairn_car_section_read_source over a mount, for serving blocks
 * found by an index. Two reads at most (head, then the rest of a block over
 * 500 bytes). Thread-safe when the mount is. */
CAIRN_API int cairn_mount_car_section_read(cairn_car_section *out, cairn_buf *block,
					   cairn_mount *m, uint64_t data_offset,
					   uint64_t data_end, uint64_t offset,
					   const cairn_car_options *opts);

#ifdef __cplusplus
}
#endif
#endif
