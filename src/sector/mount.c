/* mount.c: DAG-store mounts that read a shard out of the unsealed copy of
 * its sector, unpadding on the fly: sector://<miner>/<number>/<offset>/<size>
 * (a piece by where it lies, offset and size padded, as a deal records it)
 * and piece://<piece CID> (a piece found in the sector index).
 *
 * Lotus's mount (markets/dagstore, lotus://<pieceCID>) asked the miner for
 * an unsealed copy and unsealed one through the scheduler when none was
 * there. Unsealing needs the proofs library, so here a piece without an
 * unsealed copy fails to open with "no unsealed copy", and the DAG store
 * records its shard Errored with that message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sector_i.h"

typedef struct {
	cairn_mount base;
	cairn_sector_reader *r;
	char *name;
} sector_mount;

static uint64_t sm_size(cairn_mount *m)
{
	return cairn_sector_reader_size(((sector_mount *)m)->r);
}

static int sm_read_at(cairn_mount *m, void *buf, size_t n, uint64_t offset)
{
	return cairn_sector_reader_read_at(((sector_mount *)m)->r, buf, n, offset);
}

static int sm_stat(cairn_mount *m, cairn_mount_status *out)
{
	memset(out, 0, sizeof(*out));
	out->exists = true;
	out->ready = true;
	out->random = true;
	out->kind = CAIRN_MOUNT_LOCAL;
	out->size = sm_size(m);
	return 0;
}

static void sm_close(cairn_mount *m)
{
	sector_mount *sm = (sector_mount *)m;

	cairn_sector_reader_close(sm->r);
	cairn_free(sm->name);
	cairn_free(sm);
}

/* One decimal path segment of a sector:// URL. */
static int segment(uint64_t *out, const char **p, bool last)
{
	char *end;

	if (**p < '0' || **p > '9')
		return CAIRN_EINVAL;
	errno = 0;
	*out = strtoull(*p, &end, 10);
	if (errno || (last ? *end != '\0' : *end != '/'))
		return CAIRN_EINVAL;
	*p = last ? end : end + 1;
	return 0;
}

static int sm_open(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *opts)
{
	cairn_sector_store *st = ctx;
	cairn_sector_reader *r = NULL;
	sector_mount *sm;
	int rc;

	(void)opts; /* reads are local: never a transient */
	*out = NULL;
	if (!strncasecmp(url, "sector://", 9)) {
		const char *p = url + 9;
		cairn_sector_id sid;
		uint64_t off, size;

		if (segment(&sid.miner, &p, false) || segment(&sid.number, &p, false) ||
		    segment(&off, &p, false) || segment(&size, &p, true))
			return cairn_error_set(CAIRN_EINVAL,
				"%s: not a sector URL (sector://<miner>/<number>/<offset>/<size>)", url);
		rc = cairn_sector_reader_open(&r, st, &sid, off, size, UINT64_MAX);
	} else if (!strncasecmp(url, "piece://", 8)) {
		cairn_cid cid;

		if (cairn_cid_parse(&cid, url + 8, strlen(url + 8)))
			return cairn_error_prefix("%s: ", url);
		rc = cairn_sector_reader_open_cid(&r, st, &cid);
	} else {
		return cairn_error_set(CAIRN_EINVAL, "%s: not a sector or piece URL", url);
	}
	if (rc)
		return rc;
	if (!(sm = cairn_calloc(1, sizeof(*sm))) || !(sm->name = cairn_strndup(url, strlen(url)))) {
		cairn_free(sm);
		cairn_sector_reader_close(r);
		return CAIRN_ENOMEM;
	}
	sm->base.ops = &cairn_sector_mount_ops;
	sm->base.name = sm->name;
	sm->base.kind = CAIRN_MOUNT_LOCAL;
	sm->r = r;
	*out = &sm->base;
	return 0;
}

const cairn_mount_ops cairn_sector_mount_ops = {
	.version = CAIRN_MOUNT_OPS_VERSION,
	.name = "sector",
	.open = sm_open,
	.size = sm_size,
	.read_at = sm_read_at,
	.stat = sm_stat,
	.fd = NULL,
	.close = sm_close,
};

int cairn_sector_mount_register(cairn_mount_registry *reg, cairn_sector_store *st)
{
	int rc;

	if ((rc = cairn_mount_registry_add(reg, "sector", &cairn_sector_mount_ops, st)))
		return rc;
	return cairn_mount_registry_add(reg, "piece", &cairn_sector_mount_ops, st);
}
