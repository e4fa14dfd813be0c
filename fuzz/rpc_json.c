/* fuzz/rpc_json.c: the JSON-RPC request parser of `cairn serve` (bodies and
 * WebSocket messages): any input is parsed or refused with a JSON-RPC code,
 * never a crash, and what it accepts is well formed. */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz.h"
#include "serve/rpc_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a server with no methods of the caller's, for the method lookup */
	static serve_rpc_state rpc;
	static cairn_server srv = {.rpc = &rpc};
	serve_rpc_req *reqs;
	cairn_arena *arena;
	size_t n;
	bool batch;
	char msg[256];
	int code;

	if (cairn_arena_new(&arena))
		return 0;
	code = serve__rpc_parse(&reqs, &n, &batch, arena, data, size, msg, sizeof(msg));
	if (code) {
		CHECK(code == RPC_PARSE_ERROR || code == RPC_INVALID_REQUEST ||
		      code == RPC_INTERNAL_ERROR);
		CHECK(reqs == NULL && n == 0 && msg[0]);
	} else {
		CHECK(n >= 1 && n <= SERVE_RPC_MAX_BATCH && (batch || n == 1));
		for (size_t i = 0; i < n; i++) {
			const serve_rpc_req *r = &reqs[i];

			CHECK(r->params && r->params->kind == CAIRN_KIND_LIST);
			if (r->err) {
				CHECK(r->err < 0 && r->msg[0]);
				continue;
			}
			CHECK(r->method && r->method[0] && strlen(r->method) <= 128);
			CHECK(!r->id || r->id->kind == CAIRN_KIND_INT ||
			      r->id->kind == CAIRN_KIND_STRING || r->id->kind == CAIRN_KIND_NULL);
			(void)serve__rpc_slow(&srv, r);
		}
	}
	cairn_arena_free(arena);
	return 0;
}
