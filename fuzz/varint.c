/* varint.c: fuzz target for the varint decoder: whatever decodes must encode
 * back to exactly the bytes consumed, and a failure is always CAIRN_ECORRUPT. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	/* The input as a run of varints, as a CAR section header reads them. */
	while (off < size) {
		uint8_t out[CAIRN_VARINT_MAX];
		uint64_t v = 0;
		size_t used = 0, n;
		int rc = cairn_varint_decode(&v, &used, data + off, size - off);

		if (rc) {
			if (rc != CAIRN_ECORRUPT || cairn_error_last_code() != CAIRN_ECORRUPT)
				abort();
			if (!strstr(cairn_error_last(), "at byte"))
				abort();
			break;
		}
		if (used < 1 || used > CAIRN_VARINT_MAX || used > size - off)
			abort();
		if (v >> 63)
			abort();
		n = cairn_varint_encode(out, v);
		if (n != used || memcmp(out, data + off, n))
			abort();
		if (cairn_varint_size(v) != n)
			abort();
		/* the same bytes with nothing after them decode the same way */
		{
			uint64_t again = 0;
			size_t used2 = 0;

			if (cairn_varint_decode(&again, &used2, data + off, used) || again != v ||
			    used2 != used)
				abort();
			/* and one byte short, they are truncated */
			if (!cairn_varint_decode(&again, &used2, data + off, used - 1))
				abort();
		}
		off += used;
	}
	return 0;
}
