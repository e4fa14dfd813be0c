/* mount_i.h: what the files of the mount part share (not public): registry
 * entries with a release hook, URL helpers, and the transient store. */
#ifndef CAIRN_MOUNT_I_H
#define CAIRN_MOUNT_I_H

#include <stdatomic.h>

#include "cairn/mount.h"

/* As cairn_mount_registry_add, and `release(ctx)` is called when the
 * registry is freed (once per scheme added). */
int cairn_mount__registry_add(cairn_mount_registry *reg, const char *scheme,
			      const cairn_mount_ops *ops, void *ctx, void (*release)(void *ctx));

/* The length of the scheme at the start of `url` (the part before ':'),
 * or 0 if there is none. */
size_t cairn_mount__scheme_len(const char *url);

/* Decodes %XX escapes of s[0..n) into a new string (cairn_free). CAIRN_EINVAL
 * for a bad escape or an escaped NUL. */
int cairn_mount__unescape(char **out, const char *s, size_t n);

/* --------------------------------------------------------- transients
 *
 * Copies of remote content in one directory under a byte budget. An entry
 * is DOWNLOADING (its bytes reserved) or COMPLETE; `refs` counts the mounts
 * reading it, and only unused COMPLETE entries are ever deleted, least
 * recently read first. All fields but `last_access` change under the
 * store's mutex; entries are freed only with refs == 0, so a mount may keep
 * a pointer to its entry until it releases it.
 */
typedef struct cairn_mount__transient cairn_mount__transient;
typedef struct cairn_mount__tstore cairn_mount__tstore;

/* Writes the content into the open descriptor `fd` (a fresh .partial),
 * calling cairn_mount__tstore_grow before writing past what is reserved.
 * Sets *size_out to the bytes written. */
typedef int (*cairn_mount__fill_fn)(int fd, cairn_mount__tstore *ts, cairn_mount__transient *t,
				    uint64_t *size_out, void *payload);

/* Opens (creating) `dir`, locks it, deletes .partial leftovers, adopts
 * .complete files, and evicts down to `max_bytes` (0: no limit). */
int cairn_mount__tstore_open(cairn_mount__tstore **out, const char *dir, uint64_t max_bytes);
void cairn_mount__tstore_free(cairn_mount__tstore *ts);

/* The transient for `key` (32 hex digits), opened for reading in *fd_out
 * and counted as in use: an existing complete copy of `size` bytes, or a new
 * one made by `fill` (size UINT64_MAX when unknown). While another thread
 * fills the same key, waits for it. `what` names the source in messages.
 * CAIRN_ETOOBIG if it cannot fit in the budget even after evictions. */
int cairn_mount__tstore_acquire(cairn_mount__transient **out, int *fd_out,
				cairn_mount__tstore *ts, const char *key, uint64_t size,
				const char *what, cairn_mount__fill_fn fill, void *payload);
/* Reserves room for `total` bytes in all for a download in progress. */
int cairn_mount__tstore_grow(cairn_mount__tstore *ts, cairn_mount__transient *t, uint64_t total,
			     const char *what);
/* Marks a read (for the LRU order); lock-free. */
void cairn_mount__tstore_touch(cairn_mount__transient *t);
/* Stops using it (the descriptor is closed here). */
void cairn_mount__tstore_release(cairn_mount__tstore *ts, cairn_mount__transient *t, int fd);
const char *cairn_mount__transient_path(const cairn_mount__transient *t);
uint64_t cairn_mount__transient_size(const cairn_mount__transient *t);
/* Deletes the unused complete copies (only the one of `key` unless NULL);
 * returns how many. */
int cairn_mount__tstore_gc(cairn_mount__tstore *ts, const char *key, uint64_t *freed_out);
void cairn_mount__tstore_stats(cairn_mount__tstore *ts, cairn_mount_http_stats *out);

#endif
