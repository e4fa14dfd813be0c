/* snapshot_i.h: what the files of the snapshot part share: the state of
 * one tree clone (copy.c) and the fault hook (snapshot.c). */
#ifndef CAIRN_SNAPSHOT_I_H
#define CAIRN_SNAPSHOT_I_H

#include <sys/types.h>

#include "cairn/snapshot.h"

#define CAIRN_SNAPSHOT_MANIFEST "snapshot.manifest"

typedef enum {
	TREE_SNAPSHOT, /* a live store into a snapshot: runtime files left out */
	TREE_CLONE,    /* a snapshot into a store: the manifest left out */
} tree_kind;

/* One tree clone. The sticky flags turn a call off for the rest of the
 * tree once it has said "not supported between these filesystems", so a
 * store of 2,000 files on ext4 costs one failed FICLONE, not 2,000. */
typedef struct snap_tree {
	tree_kind kind;
	bool no_reflink, no_hardlink;
	bool ficlone_off, cfr_off, link_off;
	dev_t root_dev;
	cairn_snapshot_report *rep;
	cairn_buf *manifest;      /* lines appended as files are cloned */
	uint8_t *buf;             /* read/write fallback, COPY_BUF bytes */
	const char *crash_file;   /* fault hook step after the first file */
	bool crash_file_done;
} snap_tree;

/* Clones the directory `sdir` into the (empty) directory `ddir`, which is
 * `rel` below the root ("" at the root), appending manifest lines. On
 * failure the caller removes what was made. */
int cairn_snapshot__tree(snap_tree *t, int sdir, int ddir, char *rel, size_t rel_len);
/* Removes `name` below `dirfd` and everything in it, never crossing into
 * another filesystem than `dev` (a mount point inside stops it). */
int cairn_snapshot__rm_tree(int dirfd, const char *name, dev_t dev);
/* Whether a directory below `dirfd` (recursively) is on another device. */
int cairn_snapshot__has_mount(bool *out, int dirfd, dev_t dev);
/* The fault hook: SIGKILL when CAIRN_SNAPSHOT_CRASH_AT names `step`. */
void cairn_snapshot__crash_point(const char *step);

#endif
