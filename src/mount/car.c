/* car.c: CARs read through a mount: the DAG store's indexing pass over any
 * shard (local or remote), and single-section reads for lookups. The
 * reading itself is cairn_car_reader's; a mount is only its source.
 *
 * Offsets: a section's `offset` is that of its length varint from the
 * start of the CARv1 payload (what a CARv2 index and go-car store);
 * `file_offset` and `block_offset` are from the start of the mount.
 */
#include "mount_i.h"

#define WINDOW_LOCAL (1u << 20)
#define WINDOW_REMOTE (4u << 20)

static int mount_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	return cairn_mount_read_at(ctx, buf, n, off);
}

void cairn_mount_car_source(cairn_car_source *out, cairn_mount *m, size_t window)
{
	bool local = cairn_mount_get_kind(m) == CAIRN_MOUNT_LOCAL;

	out->read_at = mount_read;
	out->ctx = m;
	out->size = cairn_mount_size(m);
	out->name = cairn_mount_name(m);
	out->window = window ? window : local ? WINDOW_LOCAL : WINDOW_REMOTE;
	out->remote = !local;
}

int cairn_mount_car_open(cairn_car_reader **out, cairn_mount *m, const cairn_car_options *opts,
			 size_t window)
{
	cairn_car_source src;

	if (!out || !m)
		return cairn_error_set(CAIRN_EINVAL, "mount car: NULL argument");
	cairn_mount_car_source(&src, m, window);
	return cairn_car_reader_open_source(out, &src, opts);
}

int cairn_mount_car_foreach(cairn_mount *m, const cairn_car_options *opts,
			    cairn_car_section_fn fn, void *payload)
{
	cairn_car_reader *r;
	cairn_car_section s;
	int rc;

	if (!fn)
		return cairn_error_set(CAIRN_EINVAL, "mount car: NULL argument");
	if ((rc = cairn_mount_car_open(&r, m, opts, 0)))
		return rc;
	/* untrusted (the default): each block is read to be hashed anyway */
	while ((rc = cairn_car_reader_next(r, &s, !(opts && opts->trusted))) == 1)
		if ((rc = fn(&s, payload)))
			break;
	cairn_car_reader_free(r);
	return rc;
}

int cairn_mount_car_section_read(cairn_car_section *out, cairn_buf *block, cairn_mount *m,
				 uint64_t data_offset, uint64_t data_end, uint64_t offset,
				 const cairn_car_options *opts)
{
	cairn_car_source src;

	if (!m)
		return cairn_error_set(CAIRN_EINVAL, "mount car: NULL argument");
	cairn_mount_car_source(&src, m, 0);
	return cairn_car_section_read_source(out, block, &src, data_offset, data_end, offset, opts);
}
