/* car_i.h: what the files of the car part share (not public): parsing the
 * CARv1 header and section heads, and the reader's state, which verify reads. */
#ifndef CAIRN_CAR_I_H
#define CAIRN_CAR_I_H

#include "cairn/car.h"

/* Parses a CAR header block (the DAG-CBOR map after the length varint).
 * Sets *version; for version 1, the roots (allocated with cairn_malloc,
 * caller frees; *nroots may be 0). For version 2 (the pragma) there are no
 * roots. `at` is the file offset of the block, for messages. */
int cairn_car__header_parse(unsigned *version, cairn_cid **roots, size_t *nroots,
			    const uint8_t *p, size_t len, const char *name, uint64_t at);

/* A length varint plus the longest CID cairn accepts. */
#define CAIRN_CAR__SECTION_HEAD_MAX (CAIRN_VARINT_MAX + CAIRN_CID_MAX_BYTES)

struct cairn_car_reader {
	int fd;                /* -1 when reading a source */
	bool own_fd;
	cairn_car_source src;  /* read_at NULL when reading fd */
	char *name;
	cairn_car_options opts;
	unsigned version;
	cairn_car_v2_header v2;
	cairn_cid *roots;
	size_t nroots;
	uint64_t file_size;
	uint64_t limit;        /* reads stop here: the size, then the payload's end */
	uint64_t bytes_read;
	uint64_t data_offset;  /* start of the CARv1 payload */
	uint64_t data_end;     /* end of the CARv1 payload */
	uint64_t header_len;   /* CARv1 header, varint included */
	uint64_t pos;          /* absolute offset of the next section */
	uint8_t *win;
	size_t win_cap, win_len;
	uint64_t win_start;
	size_t read_min;       /* the least a window refill reads */
	size_t window;         /* read_min between blocks */
};

/* Reads up to n bytes at `off` from the descriptor or the source into buf,
 * *got of them: fewer only at the end (or where a file shrank under the
 * reader). Thread-safe. */
int cairn_car__read_at(const cairn_car_reader *r, void *buf, size_t n, uint64_t off, size_t *got);

/* Parses the length varint and CID of a section from `p` (avail bytes, at
 * file offset `at`) and checks them against the payload's end; fills `s`
 * but its block, and the head's length (varint and CID). The messages name
 * `name` and the offset. */
int cairn_car__parse_head(cairn_car_section *s, size_t *head_len, const uint8_t *p, size_t avail,
			  uint64_t at, uint64_t data_offset, uint64_t data_end, const char *name,
			  const cairn_car_options *opts);

#endif
