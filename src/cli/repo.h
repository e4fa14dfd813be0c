/* repo.h: finding the store directory the way every command does (--repo,
 * then $CAIRN_PATH, then ~/.cairn) and opening the parts of it the CLI uses. */
#ifndef CAIRN_CLI_REPO_H
#define CAIRN_CLI_REPO_H

#include <pthread.h>

#include "cmd.h"

#define CLI_OPT_REPO {"repo", 'r', "DIR", "the store directory (default $CAIRN_PATH, else ~/.cairn)"}

/* Writes the store directory into `buf`. */
int cli_repo_path(char *buf, size_t cap, const cli_args *args);
/* Opens the block store of the repo at `repo` (its blocks/ folder). With
 * `create`, makes the folders; without, CAIRN_ENOTFOUND says how to start. */
int cli_repo_blocks_open(cairn_store **out, const char *repo, bool create);

/* The store as one process owns it: the format version checked (or
 * written, on first use), an exclusive lock held until cli_repo_close, the
 * metadata database and the DAG store opened. */
#define CLI_REPO_FORMAT 1

typedef struct cli_repo {
	char path[4096];
	int lock_fd;
	cairn_db *db;
	cairn_sector_store *sectors;
	cairn_dagstore *dagstore;
	cairn_deals *deals;
	pthread_rwlock_t writes;  /* the daemon's: see cli_repo_write_begin */
} cli_repo;

int cli_repo_open(cli_repo *out, const cli_args *args);
void cli_repo_close(cli_repo *r);

/* In the daemon, JSON-RPC calls run at once on threads of their own. A
 * call that changes the store outside the DAG store (a deal import, a
 * piece added, a sector moved, a storage path attached) runs between
 * write_begin and write_end; a snapshot runs between quiesce and resume,
 * which waits for those calls to end, keeps new ones waiting, and pauses the
 * DAG store's writers (cairn_dagstore_quiesce). So a snapshot never holds
 * half of a sector's piece or a deal without its shard. */
void cli_repo_write_begin(cli_repo *r);
void cli_repo_write_end(cli_repo *r);
int cli_repo_quiesce(cli_repo *r);
void cli_repo_resume(cli_repo *r);

/* The secret that signs JSON-RPC tokens: $REPO/keystore/jwt-secret (the
 * folder 0700, the file 0600), made on first use. */
int cli_repo_secret(uint8_t out[CAIRN_SERVE_SECRET_SIZE], const char *repo);
/* Writes $REPO/token (mode 0600): an admin token, as Lotus writes its
 * own when the daemon starts; `path` gets the file's name. */
int cli_repo_token_write(char *path, size_t cap, const char *repo, const uint8_t *secret);

#endif
