/* fuzz.h: what every libFuzzer target shares: the entry point libFuzzer
 * (or replay.c, outside a fuzzing build) calls, and CHECK. */
#ifndef CAIRN_FUZZ_H
#define CAIRN_FUZZ_H

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* abort() whatever NDEBUG says: a failed check is a finding, as a crash is. */
#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#endif
