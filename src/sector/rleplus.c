/* rleplus.c: go-bitfield's RLE+ bitfield encoding (the partial file's
 * trailer), and the arithmetic of sorted runs the partial file keeps.
 *
 * Encoding (go-bitfield rle/rleplus_writer.go, rleplus_reader.go): a bit
 * stream packed LSB first into bytes:
 *   2 bits   version, 00
 *   1 bit    value of the first run
 *   per run  "1" (length 1) | "01" + 4 bits (2..15) | "00" + LEB128 varint,
 *            each byte 8 bits (16 and more)
 * Runs alternate in value; a trailing run of zeros is not written and
 * neither are trailing zero bytes, so the empty set is zero bytes. A reader
 * past the end reads zero bits, which decode as a varint 0: the end.
 */
#include <string.h>

#include "sector_i.h"
#include "sector_runs.h"

typedef struct {
	cairn_buf *out;
	uint64_t acc;
	unsigned nbits;
} bitw;

static void put(bitw *w, uint64_t v, unsigned n)
{
	w->acc |= v << w->nbits;
	w->nbits += n;
	while (w->nbits >= 8) {
		cairn_buf_putc(w->out, (uint8_t)w->acc);
		w->acc >>= 8;
		w->nbits -= 8;
	}
}

static void put_len(bitw *w, uint64_t len)
{
	if (len == 1) {
		put(w, 1, 1);
	} else if (len < 16) {
		put(w, 2, 2); /* "01": bits 0 then 1, LSB first */
		put(w, len, 4);
	} else {
		put(w, 0, 2);
		while (len >= 0x80) {
			put(w, (len & 0x7f) | 0x80, 8);
			len >>= 7;
		}
		put(w, len, 8);
	}
}

int cairn_rleplus_encode(cairn_buf *out, const cairn_run *runs, size_t n)
{
	bitw w = {out, 0, 0};
	size_t start = out->len;
	uint64_t at = 0;

	for (size_t i = 0; i < n; i++) {
		if (!runs[i].len || runs[i].off + runs[i].len < runs[i].off ||
		    (i && runs[i].off <= runs[i - 1].off + runs[i - 1].len))
			return cairn_error_set(CAIRN_EINVAL,
				"rle+: run %zu is empty, overflows, or is not after the one before", i);
	}
	if (!n)
		return out->err;
	put(&w, 0, 2);
	put(&w, runs[0].off == 0, 1);
	for (size_t i = 0; i < n; i++) {
		if (runs[i].off > at)
			put_len(&w, runs[i].off - at);
		put_len(&w, runs[i].len);
		at = runs[i].off + runs[i].len;
	}
	if (w.nbits)
		cairn_buf_putc(out, (uint8_t)w.acc);
	while (out->len > start && out->data[out->len - 1] == 0)
		out->len--;
	return out->err;
}

typedef struct {
	const uint8_t *p;
	size_t len;
	uint64_t pos; /* in bits */
} bitr;

static unsigned get(bitr *r, unsigned n)
{
	unsigned v = 0;

	for (unsigned i = 0; i < n; i++, r->pos++) {
		uint64_t byte = r->pos >> 3;

		if (byte < r->len && (r->p[byte] >> (r->pos & 7)) & 1)
			v |= 1u << i;
	}
	return v;
}

#define corrupt(r, ...) cairn_error_set(CAIRN_ECORRUPT, __VA_ARGS__)

int cairn_rleplus_decode(cairn_run **runs_out, size_t *n_out, const uint8_t *p, size_t len,
			 uint64_t max_bits)
{
	bitr r = {p, len, 0};
	cairn_run *runs = NULL;
	size_t n = 0, cap = 0;
	uint64_t at = 0;
	bool val;
	int rc = 0;

	*runs_out = NULL;
	*n_out = 0;
	if (len && p[len - 1] == 0)
		return cairn_error_set(CAIRN_ECORRUPT,
			"rle+: at byte %zu: a trailing zero byte (not minimally encoded)", len - 1);
	if (get(&r, 2) != 0)
		return cairn_error_set(CAIRN_ECORRUPT, "rle+: at byte 0: version %u, not 0",
				       (unsigned)(p[0] & 3));
	val = get(&r, 1);
	for (;;) {
		uint64_t run_at = r.pos >> 3, l;

		if (get(&r, 1)) {
			l = 1;
		} else if (get(&r, 1)) {
			l = get(&r, 4);
		} else {
			unsigned s = 0;

			l = 0;
			for (unsigned i = 0;; i++) {
				unsigned b = get(&r, 8);

				if (i == 9 && b > 1) {
					rc = corrupt(&r, "rle+: at byte %llu: run too long",
						     (unsigned long long)run_at);
					goto fail;
				}
				if (b < 0x80) {
					if (b == 0 && s > 0) {
						rc = corrupt(&r, "rle+: at byte %llu: invalid run (varint ends in a zero byte)",
							     (unsigned long long)run_at);
						goto fail;
					}
					l |= (uint64_t)b << s;
					break;
				}
				l |= (uint64_t)(b & 0x7f) << s;
				s += 7;
			}
		}
		if (l == 0)
			break;
		if (at + l < at) {
			rc = corrupt(&r, "rle+: at byte %llu: runs add up past 2^64",
				     (unsigned long long)run_at);
			goto fail;
		}
		if (val) {
			if (at + l > max_bits) {
				rc = corrupt(&r, "rle+: at byte %llu: bits set up to %llu, past the limit of %llu",
					     (unsigned long long)run_at, (unsigned long long)(at + l),
					     (unsigned long long)max_bits);
				goto fail;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				cairn_run *g = cairn_realloc(runs, ncap * sizeof(*runs));

				if (!g) {
					rc = CAIRN_ENOMEM;
					goto fail;
				}
				runs = g;
				cap = ncap;
			}
			runs[n].off = at;
			runs[n].len = l;
			n++;
		}
		at += l;
		val = !val;
	}
	*runs_out = runs;
	*n_out = n;
	return 0;
fail:
	cairn_free(runs);
	return rc;
}

/* ------------------------------------------------------------- run sets */

static int reserve(cairn_runs *s, size_t need)
{
	if (need <= s->cap)
		return 0;
	size_t ncap = s->cap ? s->cap : 8;
	while (ncap < need)
		ncap *= 2;
	cairn_run *g = cairn_realloc(s->v, ncap * sizeof(*g));
	if (!g)
		return CAIRN_ENOMEM;
	s->v = g;
	s->cap = ncap;
	return 0;
}

int cairn_sector__runs_add(cairn_runs *s, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;
	size_t i = 0, j;

	if (!len)
		return 0;
	/* Runs that touch or overlap [off, end) merge into one. */
	while (i < s->n && s->v[i].off + s->v[i].len < off)
		i++;
	j = i;
	while (j < s->n && s->v[j].off <= end) {
		if (s->v[j].off < off)
			off = s->v[j].off;
		if (s->v[j].off + s->v[j].len > end)
			end = s->v[j].off + s->v[j].len;
		j++;
	}
	if (i == j) {
		if (reserve(s, s->n + 1))
			return CAIRN_ENOMEM;
		memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
		s->n++;
	} else {
		memmove(s->v + i + 1, s->v + j, (s->n - j) * sizeof(*s->v));
		s->n -= j - i - 1;
	}
	s->v[i].off = off;
	s->v[i].len = end - off;
	return 0;
}

int cairn_sector__runs_sub(cairn_runs *s, uint64_t off, uint64_t len)
{
	uint64_t end = off + len;

	if (!len)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		uint64_t a = s->v[i].off, b = a + s->v[i].len;

		if (b <= off || a >= end)
			continue;
		if (a < off && b > end) {
			/* Split in two. */
			if (reserve(s, s->n + 1))
				return CAIRN_ENOMEM;
			memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
			s->n++;
			s->v[i].len = off - a;
			s->v[i + 1].off = end;
			s->v[i + 1].len = b - end;
			return 0;
		}
		if (a < off) {
			s->v[i].len = off - a;
		} else if (b > end) {
			s->v[i].off = end;
			s->v[i].len = b - end;
		} else {
			memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
			s->n--;
			i--;
		}
	}
	return 0;
}

bool cairn_sector__runs_covers(const cairn_runs *s, uint64_t off, uint64_t len)
{
	if (!len)
		return true;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].off <= off && s->v[i].off + s->v[i].len >= off + len)
			return true;
	return false;
}
