/* lock.c: read and write locks per sector and file type, as flocks on one
 * file per (sector, type) under <repo>/sectors/locks/, so they hold between
 * processes as well as threads and vanish with a process that dies.
 *
 * Lotus kept these in the miner's memory (index_locks.go), so a worker's
 * lock died with the miner and a miner restart forgot every lock; Curio
 * keeps them as timestamps that expire after five minutes, so a long write
 * can be stolen. A flock is held exactly as long as its holder lives.
 * Several types are locked in type order (unsealed, sealed, cache), so two
 * lockers can never each wait for the other. Lock files are never removed:
 * removing one while another process opens it would split the lock in two.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "sector_i.h"

struct cairn_sector_lock {
	int fds[3];
};

void cairn_sector_lock_release(cairn_sector_lock *l)
{
	if (!l)
		return;
	for (unsigned i = 0; i < 3; i++)
		if (l->fds[i] >= 0)
			close(l->fds[i]);
	cairn_free(l);
}

int cairn_sector_lock_take(cairn_sector_lock **out, cairn_sector_store *st,
			   const cairn_sector_id *sid, unsigned read_ft, unsigned write_ft, bool wait)
{
	char dir[PATH_MAX], name[CAIRN_SECTOR_NAME_MAX];
	cairn_sector_lock *l;
	int rc;

	*out = NULL;
	if (!((read_ft | write_ft) & CAIRN_SECTOR_FT_ALL) || ((read_ft | write_ft) & ~CAIRN_SECTOR_FT_ALL))
		return cairn_error_set(CAIRN_EINVAL, "sector lock: bad file types (read %#x, write %#x)",
				       read_ft, write_ft);
	if (snprintf(dir, sizeof(dir), "%s/sectors/locks", st->repo) >= (int)sizeof(dir))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", st->repo);
	if ((rc = cairn_sector__mkdirs(dir, 0755)))
		return rc;
	if (!(l = cairn_malloc(sizeof(*l))))
		return CAIRN_ENOMEM;
	l->fds[0] = l->fds[1] = l->fds[2] = -1;
	cairn_sector_name(name, sid);
	for (unsigned i = 0; i < 3; i++) {
		unsigned ft = 1u << i;
		char path[PATH_MAX + 64];
		int how, fd;

		if (!((read_ft | write_ft) & ft))
			continue;
		/* Write wins when a type is asked both ways. */
		how = (write_ft & ft) ? LOCK_EX : LOCK_SH;
		snprintf(path, sizeof(path), "%s/%s.%s", dir, name, cairn_sector_ft_name(ft));
		if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
			rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
			goto fail;
		}
		l->fds[i] = fd;
		while (flock(fd, how | (wait ? 0 : LOCK_NB)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EWOULDBLOCK)
				rc = cairn_error_set(CAIRN_EEXISTS, "%s: %s is %s by another process", name,
						     cairn_sector_ft_name(ft),
						     how == LOCK_EX ? "in use" : "being written");
			else
				rc = cairn_error_set(CAIRN_EIO, "%s: flock: %s", path, strerror(errno));
			goto fail;
		}
	}
	*out = l;
	return 0;
fail:
	cairn_sector_lock_release(l);
	return rc;
}
