/* platform.h: the Linux calls snapshots need (FICLONE, copy_file_range,
 * SEEK_DATA/SEEK_HOLE, renameat2, syncfs, statfs, file flags, /proc/locks),
 * all in platform.c so a port touches one file. */
#ifndef CAIRN_SNAPSHOT_PLATFORM_H
#define CAIRN_SNAPSHOT_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* These return 0 or an errno value (never -1 with errno), so callers can
 * sort errors into "not supported here, fall back" and "fail". */

/* Makes `dst` share every extent of `src` (ioctl FICLONE). */
int cairn_snapshot__ficlone(int dst, int src);
/* Copies up to `len` bytes at `off` from src to the same offset of dst;
 * `*done_out` gets the bytes copied (0 at the source's end). */
int cairn_snapshot__copy_range(size_t *done_out, int dst, int src, uint64_t off, size_t len);
/* The next data at or after `off`: `*data_out`, and the hole after it,
 * `*hole_out`. ENXIO: no data after off. EINVAL or EOPNOTSUPP: the
 * filesystem cannot tell (the caller treats the rest as data). */
int cairn_snapshot__next_data(uint64_t *data_out, uint64_t *hole_out, int fd, uint64_t off);
/* renameat2 with RENAME_NOREPLACE (EEXIST when `to` exists) and with
 * RENAME_EXCHANGE (both must exist). */
int cairn_snapshot__rename_noreplace(int fromdir, const char *from, int todir, const char *to);
int cairn_snapshot__rename_exchange(int fromdir, const char *from, int todir, const char *to);
/* syncfs: every dirty page and inode of the filesystem holding fd. Its
 * error is checked (Linux 5.8 and later report writeback errors). */
int cairn_snapshot__syncfs(int fd);
/* The filesystem's name ("btrfs", "xfs", "ext4", "tmpfs", or "0x<magic>"). */
void cairn_snapshot__fs_name(char *buf, size_t cap, int fd);
/* btrfs's NOCOW attribute (chattr +C): read, and set on an empty file. */
bool cairn_snapshot__nocow(int fd);
int cairn_snapshot__set_nocow(int fd);
/* The pid holding a flock on the file (from /proc/locks), or -1 when it
 * cannot be told. Call it when the lock was found taken. */
long cairn_snapshot__flock_holder(int fd);

#endif
