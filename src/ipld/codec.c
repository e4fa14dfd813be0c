/* codec.c: choosing a codec by its multicodec code, and the raw codec, whose
 * block is its own value. */
#include "cairn/ipld.h"

int cairn_raw_decode(cairn_node **out, cairn_arena *arena, const uint8_t *p, size_t len)
{
	cairn_node *n = cairn_arena_alloc(arena, sizeof(*n));

	*out = NULL;
	if (!n)
		return CAIRN_ENOMEM;
	n->kind = CAIRN_KIND_BYTES;
	n->v.bytes.ptr = p;
	n->v.bytes.len = len;
	*out = n;
	return 0;
}

static int unsupported(uint64_t codec)
{
	const char *name = cairn_codec_name(codec);

	return cairn_error_set(CAIRN_EUNSUPPORTED, "codec %s (0x%llx) is not supported",
			       name ? name : "unknown", (unsigned long long)codec);
}

int cairn_ipld_decode(cairn_node **out, cairn_arena *arena, uint64_t codec,
		      const uint8_t *p, size_t len)
{
	switch (codec) {
	case CAIRN_CODEC_DAG_CBOR: return cairn_dagcbor_decode(out, arena, p, len);
	case CAIRN_CODEC_DAG_JSON: return cairn_dagjson_decode(out, arena, p, len);
	case CAIRN_CODEC_DAG_PB: return cairn_dagpb_decode(out, arena, p, len);
	case CAIRN_CODEC_RAW: return cairn_raw_decode(out, arena, p, len);
	default:
		*out = NULL;
		return unsupported(codec);
	}
}

int cairn_ipld_encode(cairn_buf *out, uint64_t codec, const cairn_node *node)
{
	switch (codec) {
	case CAIRN_CODEC_DAG_CBOR: return cairn_dagcbor_encode(out, node);
	case CAIRN_CODEC_DAG_JSON: return cairn_dagjson_encode(out, node);
	case CAIRN_CODEC_DAG_PB: return cairn_dagpb_encode(out, node);
	case CAIRN_CODEC_RAW:
		if (node->kind != CAIRN_KIND_BYTES)
			return cairn_error_set(CAIRN_EINVAL, "raw: only bytes can be encoded, not %s",
					       cairn_kind_name(node->kind));
		return cairn_buf_append(out, node->v.bytes.ptr, node->v.bytes.len);
	default:
		return unsupported(codec);
	}
}
