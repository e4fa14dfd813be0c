/* ipld_i.h: helpers shared by the files of the ipld part (not public).
 * UTF-8 checking, map-key orders and the depth limit live here. */
#ifndef CAIRN_IPLD_I_H
#define CAIRN_IPLD_I_H

#include <string.h>

#include "cairn/ipld.h"

/* Length of the valid UTF-8 prefix of p[0..n): equals n when all of it is
 * valid (no overlongs, no surrogates, nothing above U+10FFFF). */
size_t cairn_ipld__utf8_valid_prefix(const uint8_t *p, size_t n);

/* DAG-CBOR orders map keys by length first, then bytes (RFC 7049 canonical). */
static inline int cairn_ipld__key_cmp_cbor(const uint8_t *a, size_t alen,
					   const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return alen ? memcmp(a, b, alen) : 0;
}

/* DAG-JSON (and DAG-PB link names) order by bytes alone. */
static inline int cairn_ipld__key_cmp_bytes(const uint8_t *a, size_t alen,
					    const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* Sorted copies of a map's entries (pointers into the map), for encoders
 * given maps in any order. `out` must hold map.len pointers. Returns
 * CAIRN_EINVAL, naming the key, if two keys are equal. */
int cairn_ipld__sort_entries(const cairn_map_entry **out, const cairn_node *map,
			     bool cbor_order);

/* Sets CAIRN_ECORRUPT with "<codec>: at byte <at>: <what>" and returns it. */
int cairn_ipld__corrupt(const char *codec, size_t at, const char *fmt, ...) CAIRN_PRINTF(3, 4);

/* In-place link scanners behind cairn_block_links(). */
int cairn_ipld__dagcbor_links(const uint8_t *p, size_t len, cairn_link_fn fn, void *payload);
int cairn_ipld__dagpb_links(const uint8_t *p, size_t len, cairn_link_fn fn, void *payload);
int cairn_ipld__dagcbor_link_bytes(const uint8_t *p, size_t len, cairn_link_bytes_fn fn,
				   void *payload);

#endif
