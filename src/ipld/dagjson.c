/* dagjson.c: placeholder until the codec lands. */
#include "cairn/ipld.h"
int cairn_dagjson_decode(cairn_node **out, cairn_arena *arena, const uint8_t *p, size_t len)
{ (void)arena; (void)p; (void)len; *out = NULL; return cairn_error_set(CAIRN_EUNSUPPORTED, "dag-json: not yet"); }
int cairn_dagjson_encode(cairn_buf *out, const cairn_node *node)
{ (void)out; (void)node; return cairn_error_set(CAIRN_EUNSUPPORTED, "dag-json: not yet"); }
int cairn_dagjson_encode_pretty(cairn_buf *out, const cairn_node *node)
{ (void)out; (void)node; return cairn_error_set(CAIRN_EUNSUPPORTED, "dag-json: not yet"); }
