/* data.c: the UnixFS Data protobuf message (unixfs.proto, proto2):
 *   1 Type (enum)  2 Data (bytes)  3 filesize  4 blocksizes (repeated)
 *   5 hashType  6 fanout  7 mode  8 mtime { 1 Seconds (int64), 2 FractionalNanoseconds (fixed32) }
 */
#include <string.h>

#include "cairn/unixfs.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Protobuf varints are not the strict unsigned-varint of multiformats:
 * non-minimal forms are legal. Up to 10 bytes, the last holding one bit. */
static int pb_varint(uint64_t *v, const uint8_t *p, size_t len, size_t *off)
{
	uint64_t x = 0;

	*v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (*off >= len)
			return cairn_error_set(CAIRN_ECORRUPT,
					       "unixfs data: at byte %zu: truncated varint", *off);
		b = p[(*off)++];
		if (shift == 63 && b > 1)
			break;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return cairn_error_set(CAIRN_ECORRUPT, "unixfs data: at byte %zu: varint over 64 bits", *off);
}

static int skip_field(unsigned wt, const uint8_t *p, size_t len, size_t *off)
{
	uint64_t n;
	int rc;

	switch (wt) {
	case WT_VARINT:
		return pb_varint(&n, p, len, off);
	case WT_I64:
		n = 8;
		break;
	case WT_I32:
		n = 4;
		break;
	case WT_LEN:
		if ((rc = pb_varint(&n, p, len, off)))
			return rc;
		break;
	default:
		return cairn_error_set(CAIRN_ECORRUPT, "unixfs data: at byte %zu: wire type %u",
				       *off, wt);
	}
	if (n > len - *off)
		return cairn_error_set(CAIRN_ECORRUPT,
				       "unixfs data: at byte %zu: field runs past the end", *off);
	*off += n;
	return 0;
}

static int decode_mtime(cairn_unixfs_data *d, const uint8_t *p, size_t len, size_t base)
{
	size_t off = 0;
	int rc;

	while (off < len) {
		uint64_t key, v;

		if ((rc = pb_varint(&key, p, len, &off)))
			return rc;
		if (key == (1 << 3 | WT_VARINT)) {
			if ((rc = pb_varint(&v, p, len, &off)))
				return rc;
			d->mtime_secs = (int64_t)v;
		} else if (key == (2 << 3 | WT_I32)) {
			if (len - off < 4)
				return cairn_error_set(CAIRN_ECORRUPT,
						       "unixfs data: at byte %zu: truncated mtime",
						       base + off);
			d->mtime_nsecs = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
					 (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
			off += 4;
		} else if ((rc = skip_field(key & 7, p, len, &off))) {
			return rc;
		}
	}
	d->has_mtime = true;
	return 0;
}

/* Appends one blocksize, growing the arena array by doubling. */
static int push_blocksize(cairn_unixfs_data *d, size_t *cap, cairn_arena *arena, uint64_t v)
{
	if (d->nblocksizes == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		uint64_t *n = cairn_arena_alloc(arena, ncap * sizeof(*n));

		if (!n)
			return CAIRN_ENOMEM;
		if (d->nblocksizes)
			memcpy(n, d->blocksizes, d->nblocksizes * sizeof(*n));
		d->blocksizes = n;
		*cap = ncap;
	}
	d->blocksizes[d->nblocksizes++] = v;
	return 0;
}

int cairn_unixfs_data_decode(cairn_unixfs_data *out, cairn_arena *arena, const uint8_t *p,
			     size_t len)
{
	size_t off = 0, cap = 0;
	bool has_type = false;
	int rc;

	memset(out, 0, sizeof(*out));
	while (off < len) {
		size_t at = off;
		uint64_t key, v, n;
		unsigned field, wt;

		if ((rc = pb_varint(&key, p, len, &off)))
			return rc;
		field = (unsigned)(key >> 3);
		wt = key & 7;
		if (field == 2 || field == 8 || (field == 4 && wt == WT_LEN)) {
			if (wt != WT_LEN)
				goto bad_type;
			if ((rc = pb_varint(&n, p, len, &off)))
				return rc;
			if (n > len - off)
				return cairn_error_set(CAIRN_ECORRUPT,
						       "unixfs data: at byte %zu: field %u runs past the end",
						       at, field);
			if (field == 2) {
				out->data = p + off;
				out->data_len = (size_t)n;
				out->has_data = true;
			} else if (field == 8) {
				if ((rc = decode_mtime(out, p + off, (size_t)n, off)))
					return rc;
			} else {
				size_t end = off + (size_t)n;

				while (off < end) {
					if ((rc = pb_varint(&v, p, end, &off)) ||
					    (rc = push_blocksize(out, &cap, arena, v)))
						return rc;
				}
				continue;
			}
			off += (size_t)n;
			continue;
		}
		if (field >= 1 && field <= 7) {
			if (wt != WT_VARINT)
				goto bad_type;
			if ((rc = pb_varint(&v, p, len, &off)))
				return rc;
			switch (field) {
			case 1:
				if (v > CAIRN_UNIXFS_HAMT_SHARD)
					return cairn_error_set(CAIRN_ECORRUPT,
							       "unixfs data: at byte %zu: unknown type %llu",
							       at, (unsigned long long)v);
				out->type = (cairn_unixfs_type)v;
				has_type = true;
				break;
			case 3: out->filesize = v; out->has_filesize = true; break;
			case 4: if ((rc = push_blocksize(out, &cap, arena, v))) return rc; break;
			case 5: out->hash_type = v; out->has_hash_type = true; break;
			case 6: out->fanout = v; out->has_fanout = true; break;
			case 7: out->mode = (uint32_t)v; out->has_mode = true; break;
			}
			continue;
		}
		if ((rc = skip_field(wt, p, len, &off)))
			return rc;
		continue;
bad_type:
		return cairn_error_set(CAIRN_ECORRUPT, "unixfs data: at byte %zu: field %u has wire type %u",
				       at, field, wt);
	}
	if (!has_type)
		return cairn_error_set(CAIRN_ECORRUPT, "unixfs data: no Type field");
	return 0;
}

/* Protobuf varints carry all 64 bits (10 bytes at most); the multiformats
 * encoder stops at 2^63, so this one is its own. */
static void put_varint(cairn_buf *out, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	cairn_buf_append(out, tmp, n);
}

static void put_key(cairn_buf *out, unsigned field, unsigned wt)
{
	cairn_buf_putc(out, (uint8_t)(field << 3 | wt));
}

int cairn_unixfs_data_encode(cairn_buf *out, const cairn_unixfs_data *d)
{
	put_key(out, 1, WT_VARINT);
	put_varint(out, (uint64_t)d->type);
	if (d->has_data) {
		put_key(out, 2, WT_LEN);
		put_varint(out, d->data_len);
		cairn_buf_append(out, d->data, d->data_len);
	}
	if (d->has_filesize) {
		put_key(out, 3, WT_VARINT);
		put_varint(out, d->filesize);
	}
	for (size_t i = 0; i < d->nblocksizes; i++) {
		put_key(out, 4, WT_VARINT);
		put_varint(out, d->blocksizes[i]);
	}
	if (d->has_hash_type) {
		put_key(out, 5, WT_VARINT);
		put_varint(out, d->hash_type);
	}
	if (d->has_fanout) {
		put_key(out, 6, WT_VARINT);
		put_varint(out, d->fanout);
	}
	if (d->has_mode) {
		put_key(out, 7, WT_VARINT);
		put_varint(out, d->mode);
	}
	if (d->has_mtime) {
		cairn_buf tmp = {0};
		uint8_t ns[4];

		put_key(&tmp, 1, WT_VARINT);
		put_varint(&tmp, (uint64_t)d->mtime_secs);
		if (d->mtime_nsecs) {
			put_key(&tmp, 2, WT_I32);
			ns[0] = (uint8_t)d->mtime_nsecs;
			ns[1] = (uint8_t)(d->mtime_nsecs >> 8);
			ns[2] = (uint8_t)(d->mtime_nsecs >> 16);
			ns[3] = (uint8_t)(d->mtime_nsecs >> 24);
			cairn_buf_append(&tmp, ns, 4);
		}
		put_key(out, 8, WT_LEN);
		put_varint(out, tmp.len);
		cairn_buf_append(out, tmp.data, tmp.len);
		if (tmp.err)
			out->err = tmp.err;
		cairn_buf_free(&tmp);
	}
	return out->err;
}
