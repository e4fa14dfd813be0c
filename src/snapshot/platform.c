/* platform.c: every Linux-specific call of the snapshot part: FICLONE,
 * copy_file_range, SEEK_DATA/SEEK_HOLE, renameat2, syncfs, statfs, file
 * attributes and /proc/locks. The rest of the part is POSIX. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "platform.h"

#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif
#ifndef XFS_SUPER_MAGIC
#define XFS_SUPER_MAGIC 0x58465342
#endif
#ifndef FS_NOCOW_FL
#define FS_NOCOW_FL 0x00800000
#endif

int cairn_snapshot__ficlone(int dst, int src)
{
	return ioctl(dst, FICLONE, src) < 0 ? errno : 0;
}

int cairn_snapshot__copy_range(size_t *done_out, int dst, int src, uint64_t off, size_t len)
{
	loff_t in = (loff_t)off, out = (loff_t)off;
	ssize_t n;

	do
		n = copy_file_range(src, &in, dst, &out, len, 0);
	while (n < 0 && errno == EINTR);
	*done_out = n > 0 ? (size_t)n : 0;
	return n < 0 ? errno : 0;
}

int cairn_snapshot__next_data(uint64_t *data_out, uint64_t *hole_out, int fd, uint64_t off)
{
	off_t d, h;

	d = lseek(fd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return errno;
	h = lseek(fd, d, SEEK_HOLE);
	if (h < 0)
		return errno;
	*data_out = (uint64_t)d;
	*hole_out = (uint64_t)h;
	return 0;
}

int cairn_snapshot__rename_noreplace(int fromdir, const char *from, int todir, const char *to)
{
	return renameat2(fromdir, from, todir, to, RENAME_NOREPLACE) < 0 ? errno : 0;
}

int cairn_snapshot__rename_exchange(int fromdir, const char *from, int todir, const char *to)
{
	return renameat2(fromdir, from, todir, to, RENAME_EXCHANGE) < 0 ? errno : 0;
}

int cairn_snapshot__syncfs(int fd)
{
	return syncfs(fd) < 0 ? errno : 0;
}

void cairn_snapshot__fs_name(char *buf, size_t cap, int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0) {
		snprintf(buf, cap, "unknown");
		return;
	}
	switch ((unsigned long)sf.f_type) {
	case BTRFS_SUPER_MAGIC: snprintf(buf, cap, "btrfs"); break;
	case XFS_SUPER_MAGIC: snprintf(buf, cap, "xfs"); break;
	case EXT4_SUPER_MAGIC: snprintf(buf, cap, "ext4"); break;
	case TMPFS_MAGIC: snprintf(buf, cap, "tmpfs"); break;
	case OVERLAYFS_SUPER_MAGIC: snprintf(buf, cap, "overlay"); break;
	default: snprintf(buf, cap, "0x%lx", (unsigned long)sf.f_type); break;
	}
}

bool cairn_snapshot__nocow(int fd)
{
	int flags = 0;

	return ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_NOCOW_FL);
}

int cairn_snapshot__set_nocow(int fd)
{
	int flags = 0;

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		return errno;
	flags |= FS_NOCOW_FL;
	return ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0 ? errno : 0;
}

/* Whether process `pid` has the file (st) open: /proc/PID/fd links stat
 * to the file itself. */
static bool has_open(long pid, const struct stat *st)
{
	char path[64], fdp[64 + 256];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
	if (!(d = opendir(path)))
		return false;
	while (!found && (de = readdir(d))) {
		struct stat fs;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fdp, sizeof(fdp), "%s/%s", path, de->d_name);
		found = stat(fdp, &fs) == 0 && fs.st_ino == st->st_ino && fs.st_dev == st->st_dev;
	}
	closedir(d);
	return found;
}

/* /proc/locks lines: "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF".
 * The device there is the superblock's, which on btrfs is not the st_dev
 * of a file in a subvolume, so a line is matched by its inode and then
 * confirmed by the process having the very file open. A blocked waiter's
 * line ("1: -> FLOCK ...") is skipped. */
long cairn_snapshot__flock_holder(int fd)
{
	struct stat st;
	char line[256];
	long pid = -1;
	FILE *f;

	if (fstat(fd, &st) < 0 || !(f = fopen("/proc/locks", "re")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long ino;
		char kind[16], mode[16], access[16];
		long p;

		if (strstr(line, "->"))
			continue;
		if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%llu", kind, mode, access, &p,
			   &maj, &min, &ino) != 7)
			continue;
		if (strcmp(kind, "FLOCK") || ino != (unsigned long long)st.st_ino || p <= 0)
			continue;
		if ((maj == major(st.st_dev) && min == minor(st.st_dev)) || has_open(p, &st)) {
			pid = p;
			break;
		}
	}
	fclose(f);
	return pid;
}
