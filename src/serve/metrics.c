/* metrics.c: the server's counters (to come: /metrics in Prometheus's text
 * format). */
#include "serve_i.h"

void serve_metrics_bytes(cairn_server *srv, const char *route, uint64_t n)
{
	(void)srv;
	(void)route;
	(void)n;
}
