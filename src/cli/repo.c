/* repo.c: the store directory of the command line: where it is, and its
 * block store (an LMDB environment in blocks/). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "repo.h"

int cli_repo_path(char *buf, size_t cap, const cli_args *args)
{
	const char *flag = cli_opt_value(args, "repo");
	const char *env = getenv("CAIRN_PATH");
	const char *home = getenv("HOME");
	int n;

	if (flag && flag[0])
		n = snprintf(buf, cap, "%s", flag);
	else if (env && env[0])
		n = snprintf(buf, cap, "%s", env);
	else if (home && home[0])
		n = snprintf(buf, cap, "%s/.cairn", home);
	else
		return cairn_error_set(CAIRN_EINVAL, "no store directory: give --repo or set CAIRN_PATH");
	if (n < 0 || (size_t)n >= cap)
		return cairn_error_set(CAIRN_EINVAL, "store directory path is too long");
	return 0;
}

int cli_repo_blocks_open(cairn_store **out, const char *repo, bool create)
{
	cairn_store_lmdb_options opts = CAIRN_STORE_LMDB_OPTIONS_INIT;
	char dir[4096];
	struct stat st;

	*out = NULL;
	if (snprintf(dir, sizeof(dir), "%s/blocks", repo) >= (int)sizeof(dir))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", repo);
	if (stat(dir, &st) < 0) {
		if (errno != ENOENT)
			return cairn_error_set(CAIRN_EIO, "%s: %s", dir, strerror(errno));
		if (!create)
			return cairn_error_set(CAIRN_ENOTFOUND,
				"%s: no block store here yet (put a block with `cairn block put`, or give --repo)",
				repo);
		if (mkdir(repo, 0700) < 0 && errno != EEXIST)
			return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", repo, strerror(errno));
	}
	return cairn_store_lmdb_open(out, dir, &opts);
}
