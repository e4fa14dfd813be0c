/* cairn/base.h: errors, allocation, byte buffers, varints, multibase, file
 * helpers, a thread pool, logging and a terminal progress bar. */
#ifndef CAIRN_BASE_H
#define CAIRN_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CAIRN_BUILDING) && defined(__GNUC__)
#define CAIRN_API __attribute__((visibility("default")))
#else
#define CAIRN_API
#endif

#if defined(__GNUC__)
#define CAIRN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CAIRN_PRINTF(f, a)
#endif

/* ---------------------------------------------------------------- errors
 *
 * Every function that can fail returns 0 (or a count) on success and one of
 * these negative codes on failure. The detail, naming the file and byte
 * offset where it applies, is in a per-thread message read with
 * cairn_error_last(). A raw errno is never returned; it goes in the message.
 */
enum {
	CAIRN_OK = 0,
	CAIRN_ERROR = -1,       /* generic failure */
	CAIRN_ENOMEM = -2,      /* out of memory */
	CAIRN_EINVAL = -3,      /* a bad argument from the caller */
	CAIRN_ECORRUPT = -4,    /* malformed input: the message says where */
	CAIRN_ENOTFOUND = -5,   /* no such item (lets layered stores fall through) */
	CAIRN_EIO = -6,         /* an operating-system call failed */
	CAIRN_EMISMATCH = -7,   /* bytes do not hash to the expected CID */
	CAIRN_ETOOBIG = -8,     /* input over a configured bound */
	CAIRN_EUNSUPPORTED = -9,/* well-formed but not supported (a codec, a hash) */
	CAIRN_EEXISTS = -10,    /* the item already exists */
	CAIRN_ECANCELED = -11,  /* the caller asked to stop */
};

/* The message for the last failure on this thread; never NULL. Borrowed:
 * valid until the next cairn call on this thread. */
CAIRN_API const char *cairn_error_last(void);
/* The code of the last failure on this thread (0 if cleared). */
CAIRN_API int cairn_error_last_code(void);
/* A short fixed name for a code: "corrupt input", "out of memory", ... */
CAIRN_API const char *cairn_error_name(int code);
CAIRN_API void cairn_error_clear(void);
/* Sets the message and returns `code`, so a failure is one line:
 * `return cairn_error_set(CAIRN_ECORRUPT, "varint: at byte %zu: ...", off);` */
CAIRN_API int cairn_error_set(int code, const char *fmt, ...) CAIRN_PRINTF(2, 3);
/* Puts context in front of the current message ("x.car: " + "at byte 9: ...").
 * Returns the current code. */
CAIRN_API int cairn_error_prefix(const char *fmt, ...) CAIRN_PRINTF(1, 2);

/* ------------------------------------------------------------ allocation
 *
 * All of cairn's allocation goes through these, so tests can make the Nth
 * allocation fail. They never abort; NULL means out of memory and the
 * error message is already set (a fixed message that needs no allocation).
 */
CAIRN_API void *cairn_malloc(size_t n);
CAIRN_API void *cairn_calloc(size_t count, size_t size);
/* cairn_calloc at an address that is a multiple of `align` (a power of two,
 * at least sizeof(void *)): for structs that threads write, each on cache
 * lines of its own. Freed with cairn_free. */
CAIRN_API void *cairn_calloc_aligned(size_t count, size_t size, size_t align);
/* cairn_malloc for a large table read at random: from 2 MiB up it is
 * aligned to 2 MiB and advised into huge pages, where one TLB entry maps
 * 2 MiB instead of 4 KiB (a lookup in a 64 MiB table otherwise misses the
 * TLB nearly every time). Freed with cairn_free. */
CAIRN_API void *cairn_malloc_huge(size_t n);
CAIRN_API void *cairn_realloc(void *p, size_t n);
CAIRN_API char *cairn_strndup(const char *s, size_t n);
CAIRN_API void cairn_free(void *p);
/* Test hook: the `n`th allocation from now fails, counting from 1 (and every
 * one after it while `sticky`); n = 0 makes every allocation fail; n < 0
 * turns injection off. */
CAIRN_API void cairn_alloc_fail_after(long n, bool sticky);

/* ---------------------------------------------------------- byte buffers
 *
 * A growable byte buffer with a sticky error: after an allocation fails,
 * appends do nothing and `err` holds CAIRN_ENOMEM, so an encoder can append
 * freely and check once at the end. `data` is always NUL-terminated after a
 * successful append (the NUL is not counted in `len`).
 * Zero-initialize (CAIRN_BUF_INIT) before use; release with cairn_buf_free.
 */
typedef struct cairn_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err;
} cairn_buf;
#define CAIRN_BUF_INIT {NULL, 0, 0, 0}

CAIRN_API int cairn_buf_reserve(cairn_buf *b, size_t extra);
CAIRN_API int cairn_buf_append(cairn_buf *b, const void *p, size_t n);
CAIRN_API int cairn_buf_putc(cairn_buf *b, uint8_t c);
CAIRN_API int cairn_buf_puts(cairn_buf *b, const char *s);
CAIRN_API int cairn_buf_printf(cairn_buf *b, const char *fmt, ...) CAIRN_PRINTF(2, 3);
/* Empties the buffer, keeping its memory and clearing `err`. */
CAIRN_API void cairn_buf_clear(cairn_buf *b);
/* Frees the memory and leaves an empty buffer; NULL is accepted. */
CAIRN_API void cairn_buf_free(cairn_buf *b);
/* Hands the bytes to the caller (free with cairn_free) and empties `b`. */
CAIRN_API uint8_t *cairn_buf_detach(cairn_buf *b, size_t *len_out);

/* ------------------------------------------------------------- varints
 *
 * Unsigned varints as multiformats defines them: LEB128, minimal encoding
 * only, at most 9 bytes, values below 2^63.
 */
#define CAIRN_VARINT_MAX 9

/* Decodes one varint from p[0..len). `used_out` gets its length.
 * Returns 0, or CAIRN_ECORRUPT (truncated, not minimal, over 9 bytes or
 * 2^63); the message gives the byte offset within p. */
CAIRN_API int cairn_varint_decode(uint64_t *value_out, size_t *used_out,
				  const uint8_t *p, size_t len);
/* The same, with values of one and two bytes decoded inline: a CID's
 * version, codec and hash, a CAR section's length, tens of millions of
 * them in a walk. Anything longer, or not minimal, is left to the above. */
static inline int cairn_varint_decode_short(uint64_t *value_out, size_t *used_out,
					    const uint8_t *p, size_t len)
{
	if (len && p[0] < 0x80) {
		*value_out = p[0];
		if (used_out)
			*used_out = 1;
		return 0;
	}
	if (len >= 2 && p[1] < 0x80 && p[1]) {
		*value_out = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
		if (used_out)
			*used_out = 2;
		return 0;
	}
	return cairn_varint_decode(value_out, used_out, p, len);
}
/* Writes v (< 2^63) into out and returns the byte count (1..9), or 0 when
 * v is too large. */
CAIRN_API size_t cairn_varint_encode(uint8_t out[CAIRN_VARINT_MAX], uint64_t v);
CAIRN_API size_t cairn_varint_size(uint64_t v);

/* ------------------------------------------------------------ multibase */
typedef enum cairn_multibase {
	CAIRN_BASE16 = 'f',
	CAIRN_BASE32 = 'b',
	CAIRN_BASE58BTC = 'z',
	CAIRN_BASE64 = 'm',    /* RFC 4648 alphabet, no padding */
	CAIRN_BASE64URL = 'u', /* URL-safe alphabet, no padding */
} cairn_multibase;

/* Appends the encoding of p[0..n) to `out`, without the prefix
 * character; `out` stays NUL-terminated. */
CAIRN_API int cairn_base_encode(cairn_buf *out, cairn_multibase base,
				const uint8_t *p, size_t n);
/* Appends the bytes that s[0..n) encodes. CAIRN_ECORRUPT names the offset
 * of a bad character or a non-canonical tail. */
CAIRN_API int cairn_base_decode(cairn_buf *out, cairn_multibase base,
				const char *s, size_t n);
/* As above with the multibase prefix character. Decoding also accepts the
 * upper-case forms 'B' (base32) and 'F' (base16); `base_out` may be NULL. */
CAIRN_API int cairn_multibase_encode(cairn_buf *out, cairn_multibase base,
				     const uint8_t *p, size_t n);
CAIRN_API int cairn_multibase_decode(cairn_buf *out, cairn_multibase *base_out,
				     const char *s, size_t n);
/* "base32" -> CAIRN_BASE32 and so on; CAIRN_EINVAL for an unknown name. */
CAIRN_API int cairn_multibase_from_name(cairn_multibase *out, const char *name);
CAIRN_API const char *cairn_multibase_name(cairn_multibase base);

/* ---------------------------------------------------------------- files
 *
 * Full-length I/O loops (a short read before `n` bytes is CAIRN_ECORRUPT,
 * "unexpected end of file") and the pieces of a crash-safe write.
 * `what` names the file in messages; it may be NULL.
 */
CAIRN_API int cairn_file_pread_full(int fd, void *buf, size_t n, uint64_t off,
				    const char *what);
CAIRN_API int cairn_file_pwrite_full(int fd, const void *buf, size_t n,
				     uint64_t off, const char *what);
CAIRN_API int cairn_file_write_full(int fd, const void *buf, size_t n,
				    const char *what);
CAIRN_API int cairn_file_fsync(int fd, const char *what);
CAIRN_API int cairn_file_fsync_dir(const char *dir);
/* Starts writing back bytes [off, off + len) of `fd` without waiting, so
 * that a long write's final fsync has little left to do and the page cache
 * does not fill with its dirty pages. Only a hint: nothing where the system
 * has no such call. */
CAIRN_API void cairn_file_start_writeback(int fd, uint64_t off, uint64_t len);
/* Reads a whole file ("-" is standard input) into `out`; CAIRN_ETOOBIG past
 * `max` bytes. */
CAIRN_API int cairn_file_read_all(cairn_buf *out, const char *path, size_t max);
/* Replaces `path` with `data` so that a crash leaves the old or the new
 * content, never a mix: temporary file, fsync, rename, fsync directory. */
CAIRN_API int cairn_file_replace_atomic(const char *path, const void *data,
					size_t n, unsigned mode);

/* ----------------------------------------------------------- thread pool
 *
 * A fixed set of workers taking jobs from one queue. Jobs must not fail
 * through the pool: they record their own results.
 */
typedef struct cairn_pool cairn_pool;
/* nthreads 0 means one per online core. */
CAIRN_API int cairn_pool_new(cairn_pool **out, unsigned nthreads);
CAIRN_API unsigned cairn_pool_size(const cairn_pool *pool);
CAIRN_API int cairn_pool_submit(cairn_pool *pool, void (*fn)(void *arg), void *arg);
/* Blocks until every job submitted so far has finished. */
CAIRN_API void cairn_pool_wait(cairn_pool *pool);
/* Waits for the queued jobs, stops the workers and frees; NULL is accepted. */
CAIRN_API void cairn_pool_free(cairn_pool *pool);

/* --------------------------------------------------------------- logging
 *
 * The library never prints: log lines go to a sink the program installs
 * (the `cairn` command writes them to stderr). Without a sink they are
 * dropped.
 */
typedef enum cairn_log_level {
	CAIRN_LOG_ERROR = 0,
	CAIRN_LOG_WARN,
	CAIRN_LOG_INFO,
	CAIRN_LOG_DEBUG,
	CAIRN_LOG_TRACE,
} cairn_log_level;

typedef void (*cairn_log_sink)(cairn_log_level level, const char *msg, void *payload);
CAIRN_API void cairn_log_set_sink(cairn_log_sink sink, void *payload);
CAIRN_API void cairn_log_set_level(cairn_log_level level);
CAIRN_API cairn_log_level cairn_log_get_level(void);
/* "error", "warn", "info", "debug", "trace" (or 0..4). */
CAIRN_API int cairn_log_level_parse(cairn_log_level *out, const char *name);
CAIRN_API const char *cairn_log_level_name(cairn_log_level level);
CAIRN_API void cairn_log(cairn_log_level level, const char *fmt, ...) CAIRN_PRINTF(2, 3);
#define cairn_log_enabled(lvl) ((lvl) <= cairn_log_get_level())

/* -------------------------------------------------------------- progress
 *
 * A one-line progress bar redrawn on a terminal at most ten times a second.
 * It draws only when `fd` is a terminal (or `force`), so callers can
 * update it unconditionally.
 */
typedef struct cairn_progress {
	int fd;
	bool active;
	const char *label;
	uint64_t total;   /* 0 when unknown: shows a count and a rate */
	uint64_t done;
	uint64_t started_ns;
	uint64_t drawn_ns;
} cairn_progress;

CAIRN_API void cairn_progress_start(cairn_progress *p, int fd, bool force,
				    const char *label, uint64_t total);
CAIRN_API void cairn_progress_update(cairn_progress *p, uint64_t done);
/* Draws the final state and ends the line. */
CAIRN_API void cairn_progress_finish(cairn_progress *p);

/* Monotonic clock in nanoseconds. */
CAIRN_API uint64_t cairn_time_ns(void);

#ifdef __cplusplus
}
#endif
#endif
