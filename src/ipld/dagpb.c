/* dagpb.c: placeholder until the codec lands. */
#include "ipld_i.h"
int cairn_dagpb_decode(cairn_node **out, cairn_arena *arena, const uint8_t *p, size_t len)
{ (void)arena; (void)p; (void)len; *out = NULL; return cairn_error_set(CAIRN_EUNSUPPORTED, "dag-pb: not yet"); }
int cairn_dagpb_encode(cairn_buf *out, const cairn_node *node)
{ (void)out; (void)node; return cairn_error_set(CAIRN_EUNSUPPORTED, "dag-pb: not yet"); }
int cairn_ipld__dagpb_links(const uint8_t *p, size_t len, cairn_link_fn fn, void *payload)
{ (void)p; (void)len; (void)fn; (void)payload; return cairn_error_set(CAIRN_EUNSUPPORTED, "dag-pb: not yet"); }
