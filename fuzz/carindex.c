/* carindex.c: fuzz target for CARv2 indexes read in place: opening bounds
 * every count, and in an index that passes its check every entry is found. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"

typedef struct {
	const cairn_car_index *idx;
	bool sorted;
	uint64_t seen;
	cairn_car_index_builder *b; /* rebuilds the index; NULL once an entry cannot be a CID */
} walk;

static int visit(uint64_t code, const uint8_t *digest, size_t dlen, uint64_t offset, void *payload)
{
	walk *w = payload;
	uint64_t offs[64];
	cairn_cid cid;
	int n;

	w->seen++;
	if (dlen + 8 > (32u << 20))
		abort();
	/* Codes over 2^63 and digests over 128 bytes have no CID to look up. */
	if (cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW, code, digest, dlen)) {
		cairn_car_index_builder_free(w->b);
		w->b = NULL;
		return 0;
	}
	n = cairn_car_index_find(w->idx, &cid, offs, 64);
	if (n < 0)
		abort();
	if (w->sorted) {
		bool hit = false;

		if (n < 1)
			abort();
		for (int i = 0; i < n && i < 64; i++)
			hit |= offs[i] == offset;
		if (!hit && n <= 64)
			abort();
	}
	if (w->b && cairn_car_index_builder_add(w->b, &cid, offset))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_car_index *idx, *again;
	cairn_buf out = CAIRN_BUF_INIT;
	walk w = {0};
	int rc;

	rc = cairn_car_index_open_bytes(&idx, data, size, "fuzz");
	if (rc) {
		if (rc != CAIRN_ECORRUPT && rc != CAIRN_EUNSUPPORTED)
			abort();
		return 0;
	}
	if (cairn_car_index_codec(idx) != CAIRN_CAR_INDEX_SORTED &&
	    cairn_car_index_codec(idx) != CAIRN_CAR_INDEX_MH_SORTED)
		abort();
	rc = cairn_car_index_check(idx);
	if (rc && rc != CAIRN_ECORRUPT)
		abort();
	w.idx = idx;
	w.sorted = rc == 0;
	/* Identity entries are kept: an index may hold them. */
	if (cairn_car_index_builder_new(&w.b, cairn_car_index_codec(idx), true))
		abort();
	if (cairn_car_index_foreach(idx, visit, &w))
		abort();
	if (w.seen != cairn_car_index_count(idx))
		abort();
	/* What the builder makes of the same entries is well formed and sorted. */
	if (w.b) {
		if (cairn_car_index_builder_count(w.b) != w.seen)
			abort();
		if (cairn_car_index_builder_encode(w.b, &out))
			abort();
		if (cairn_car_index_open_bytes(&again, out.data, out.len, "rebuilt"))
			abort();
		if (cairn_car_index_check(again) || cairn_car_index_count(again) != w.seen)
			abort();
		/* A sorted index with nothing but non-empty buckets is already
		 * canonical up to the order of equal digests. */
		if (w.sorted && out.len > size)
			abort();
		cairn_car_index_free(again);
	}
	cairn_car_index_builder_free(w.b);
	cairn_buf_free(&out);
	cairn_car_index_free(idx);
	return 0;
}
