/* car_i.h: what the files of the car part share (not public): parsing the
 * CARv1 header and formatting a location for error messages. */
#ifndef CAIRN_CAR_I_H
#define CAIRN_CAR_I_H

#include "cairn/car.h"

/* Parses a CAR header block (the DAG-CBOR map after the length varint).
 * Sets *version; for version 1, the roots (allocated with cairn_malloc,
 * caller frees; *nroots may be 0). For version 2 (the pragma) there are no
 * roots. `at` is the file offset of the block, for messages. */
int cairn_car__header_parse(unsigned *version, cairn_cid **roots, size_t *nroots,
			    const uint8_t *p, size_t len, const char *name, uint64_t at);

/* Turns hashing on read off or on; returns the old setting. cairn_car_verify
 * reads trusted and hashes on its own threads. */
bool cairn_car__reader_set_trusted(cairn_car_reader *r, bool trusted);
const char *cairn_car__reader_name(const cairn_car_reader *r);

#endif
