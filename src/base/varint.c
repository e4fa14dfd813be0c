/* varint.c: multiformats unsigned varints (LEB128), strict: minimal encoding,
 * at most 9 bytes, values below 2^63, as the unsigned-varint spec requires. */
#include "cairn/base.h"

int cairn_varint_decode(uint64_t *value_out, size_t *used_out,
			const uint8_t *p, size_t len)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < CAIRN_VARINT_MAX; i++) {
		uint8_t b;

		if (i >= len)
			return cairn_error_set(CAIRN_ECORRUPT,
				"varint: at byte %zu: truncated (input ends inside it)", i);
		b = p[i];
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			/* A final zero byte after the first adds nothing: a longer
			 * encoding of a smaller number, which the spec forbids. */
			if (b == 0 && i > 0)
				return cairn_error_set(CAIRN_ECORRUPT,
					"varint: at byte %zu: not minimally encoded", i);
			*value_out = v;
			if (used_out)
				*used_out = i + 1;
			return 0;
		}
	}
	/* Nine bytes carry 63 bits, so every varint that ends in time is
	 * below 2^63: the bound and the length limit are one check. */
	return cairn_error_set(CAIRN_ECORRUPT, "varint: at byte %d: longer than %d bytes",
			       CAIRN_VARINT_MAX - 1, CAIRN_VARINT_MAX);
}

size_t cairn_varint_size(uint64_t v)
{
	size_t n = 1;

	if (v >> 63)
		return 0;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t cairn_varint_encode(uint8_t out[CAIRN_VARINT_MAX], uint64_t v)
{
	size_t n = 0;

	if (v >> 63)
		return 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}
