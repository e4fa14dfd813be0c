/* sector_runs.h: a sorted set of disjoint, non-touching runs of bits (the
 * written ranges of a partial file), with the operations it needs. */
#ifndef CAIRN_SECTOR_RUNS_H
#define CAIRN_SECTOR_RUNS_H

#include "cairn/sector.h"

typedef struct cairn_runs {
	cairn_run *v;
	size_t n, cap;
} cairn_runs;

/* Union with [off, off+len); CAIRN_ENOMEM leaves the set unchanged. */
int cairn_sector__runs_add(cairn_runs *s, uint64_t off, uint64_t len);
/* Difference with [off, off+len). */
int cairn_sector__runs_sub(cairn_runs *s, uint64_t off, uint64_t len);
/* Every bit of [off, off+len) set (runs never touch, so one run holds it). */
bool cairn_sector__runs_covers(const cairn_runs *s, uint64_t off, uint64_t len);

#endif
