/* commd.c: the unsealed-sector commitment (CommD) from the sector's pieces,
 * by the stack algorithm of rust-fil-proofs pieces.rs (go-commp-utils
 * PieceAggregateCommP), filled with zero pieces to the sector size.
 *
 * The stack holds (level, comm) with levels strictly decreasing upwards
 * after each reduce, so it never holds more than one entry per level. A
 * piece bigger than the top is aligned by pushing zero pieces of the top's
 * size first: a piece always starts at a multiple of its own size.
 */
#include <string.h>

#include "piece_i.h"

typedef struct {
	unsigned level;
	uint8_t comm[32];
} entry;

typedef struct {
	entry e[CAIRN_PIECE__MAX_LEVEL + 2];
	size_t n;
} stack;

static void hash2(uint8_t out[32], const uint8_t a[32], const uint8_t b[32])
{
	uint8_t pair[64];

	memcpy(pair, a, 32);
	memcpy(pair + 32, b, 32);
	cairn_piece__hash_nodes(pair, pair, 1);
	memcpy(out, pair, 32);
}

/* Pushes and merges equal neighbours. */
static void push(stack *s, unsigned level, const uint8_t comm[32])
{
	s->e[s->n].level = level;
	memcpy(s->e[s->n].comm, comm, 32);
	s->n++;
	while (s->n >= 2 && s->e[s->n - 2].level == s->e[s->n - 1].level) {
		entry *a = &s->e[s->n - 2];

		hash2(a->comm, a->comm, s->e[s->n - 1].comm);
		a->level++;
		s->n--;
	}
}

static int level_of(unsigned *out, uint64_t size)
{
	if (size < 128 || size & (size - 1) || size > (UINT64_C(1) << 63))
		return -1;
	*out = (unsigned)(63 - __builtin_clzll(size)) - 5;
	return 0;
}

int cairn_piece_commd(uint8_t out[32], uint64_t sector_size, const cairn_piece_info *pieces,
		      size_t n)
{
	const uint8_t (*zero)[32] = cairn_piece__zero_table();
	unsigned top, level;
	stack s;

	if (level_of(&top, sector_size))
		return cairn_error_set(CAIRN_EINVAL,
			"commd: sector size %llu is not a power of two from 128 to 2^63",
			(unsigned long long)sector_size);
	for (size_t i = 0; i < n; i++) {
		if (level_of(&level, pieces[i].padded_size) || pieces[i].padded_size > sector_size)
			return cairn_error_set(CAIRN_EINVAL,
				"commd: piece %zu: padded size %llu is not a power of two from 128 to the sector size (%llu)",
				i, (unsigned long long)pieces[i].padded_size, (unsigned long long)sector_size);
	}
	s.n = 0;
	for (size_t i = 0; i < n; i++) {
		level_of(&level, pieces[i].padded_size);
		/* Align: zero pieces of the top's size until the top is as big. */
		while (s.n && s.e[s.n - 1].level < level) {
			unsigned l = s.e[s.n - 1].level;

			push(&s, l, zero[l]);
		}
		/* A bottom entry over the sector size means the pieces overflow it. */
		if (s.n && s.e[0].level > top)
			goto too_big;
		push(&s, level, pieces[i].commp);
		if (s.e[0].level > top || (s.e[0].level == top && s.n > 1))
			goto too_big;
	}
	/* Fill with zero pieces up to one entry of the sector's size. */
	if (s.n == 0)
		push(&s, top, zero[top]);
	while (s.n > 1 || s.e[0].level < top) {
		unsigned l = s.e[s.n - 1].level;

		push(&s, l, zero[l]);
	}
	if (s.e[0].level > top)
		goto too_big;
	memcpy(out, s.e[0].comm, 32);
	return 0;
too_big:
	return cairn_error_set(CAIRN_EINVAL, "commd: the pieces do not fit a sector of %llu bytes",
			       (unsigned long long)sector_size);
}
