/* fuzz/ws_frame.c: the WebSocket frame reader of `cairn serve`: bytes from
 * a client framed one frame at a time, fragments joined under a bound of
 * 4 KiB; every outcome is a frame, "need more", or a close code. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"
#include "serve/rpc_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	serve_ws_reader r = {0};
	uint8_t *buf = malloc(size ? size : 1);
	size_t off = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r.max = 4096;
	for (;;) {
		const uint8_t *payload;
		size_t used, plen;
		int op = serve__ws_next(&r, buf + off, size - off, &used, &payload, &plen);

		if (op < 0) {
			CHECK(r.close_code == 1002 || r.close_code == 1009 || r.close_code == 1011);
			break;
		}
		if (!used) {
			CHECK(op == 0);
			break;
		}
		CHECK(used <= size - off && plen <= r.max);
		if (op == WS_PING || op == WS_PONG || op == WS_CLOSE)
			CHECK(plen <= 125);
		if (plen)
			CHECK(payload != NULL);
		/* touch every byte, so ASan sees a payload out of bounds */
		for (size_t i = 0; i < plen; i++)
			CHECK(payload[i] == payload[i]);
		off += used;
	}
	serve__ws_reader_free(&r);
	free(buf);
	return 0;
}
