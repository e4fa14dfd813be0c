/* metrics.c: the server's counters and GET /metrics in Prometheus's text
 * format (0.0.4): requests by route and status, response bytes by route,
 * latency histograms by route, shards by state, index sizes.
 *
 * The hot path takes no lock and shares no cache line: each thread adds to
 * its own slot (a thread takes the next of NSLOTS slots on its first
 * request; with more threads than slots two share one, still correct since
 * every add is atomic), with relaxed atomics, and a scrape sums the slots.
 * A scrape may see a request's count before its latency: counters are
 * monotonic, never exact at an instant, which Prometheus expects.
 *
 * Latency is from the access handler's first call (the request line and
 * headers received) to MHD's request-completed notification (the last
 * byte handed to the socket, or the connection given up). A request is
 * found again at completion through its socket's descriptor: a connection
 * handles one request at a time and stays on one pool thread, so the slot
 * of its descriptor is written by that thread alone. Requests MHD answers
 * by itself (414, 431, a malformed request line) never reach the handler
 * and are not counted.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve_i.h"

enum { R_IPFS, R_PIECE, R_HEALTHZ, R_METRICS, R_RPC, R_OTHER, NROUTES };
static const char *const route_names[NROUTES] = {"ipfs", "piece", "healthz", "metrics", "rpc",
						  "other"};

/* The statuses counted on their own; anything else is "other". */
static const unsigned codes[] = {200, 206, 304, 400, 401, 403, 404, 405, 406, 408, 412, 413,
				 414, 416, 429, 431, 500, 501, 502, 503};
#define NCODES (sizeof(codes) / sizeof(codes[0]) + 1)

/* Histogram upper bounds, in seconds and in nanoseconds. */
static const char *const le_names[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
				       "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};
static const uint64_t le_ns[] = {500000, 1000000, 2500000, 5000000, 10000000, 25000000,
				 50000000, 100000000, 250000000, 500000000, 1000000000,
				 2500000000ULL, 5000000000ULL, 10000000000ULL};
#define NBUCKETS (sizeof(le_ns) / sizeof(le_ns[0]))

#define NSLOTS 32

typedef struct slot {
	_Alignas(64) atomic_uint_fast64_t req[NROUTES][NCODES];
	atomic_uint_fast64_t bytes[NROUTES];
	atomic_uint_fast64_t bucket[NROUTES][NBUCKETS]; /* not cumulative */
	atomic_uint_fast64_t sum_ns[NROUTES];
	atomic_uint_fast64_t count[NROUTES];
} slot;

static slot slots[NSLOTS];
static atomic_uint next_slot;
static _Thread_local int my_slot = -1;

/* Requests in flight, by socket descriptor (those past FD_MAX go untimed). */
#define FD_MAX 65536
typedef struct inflight {
	uint64_t start_ns;
	uint8_t route;
	uint8_t active;
} inflight;
static inflight *table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	/* calloc'd pages stay untouched (not resident) until a descriptor uses them */
	table = cairn_calloc(FD_MAX, sizeof(*table));
}

static slot *my(void)
{
	if (my_slot < 0)
		my_slot = (int)(atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % NSLOTS);
	return &slots[my_slot];
}

static void add(atomic_uint_fast64_t *a, uint64_t n)
{
	atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned route_of_url(const char *url)
{
	if (!strncmp(url, "/ipfs/", 6))
		return R_IPFS;
	if (!strncmp(url, "/piece/", 7))
		return R_PIECE;
	if (!strcmp(url, "/healthz"))
		return R_HEALTHZ;
	if (!strcmp(url, "/metrics"))
		return R_METRICS;
	if (!strncmp(url, "/rpc/", 5))
		return R_RPC;
	return R_OTHER;
}

static unsigned route_of_name(const char *name)
{
	for (unsigned i = 0; i < NROUTES; i++)
		if (!strcmp(name, route_names[i]))
			return i;
	return R_OTHER;
}

void serve_metrics_bytes(cairn_server *srv, const char *route, uint64_t n)
{
	(void)srv;
	add(&my()->bytes[route_of_name(route)], n);
}

static inflight *slot_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

	pthread_once(&table_once, table_init);
	if (!table || !ci || ci->connect_fd < 0 || ci->connect_fd >= FD_MAX)
		return NULL;
	return &table[ci->connect_fd];
}

void serve_metrics_begin(struct MHD_Connection *c, const char *url)
{
	inflight *f = slot_of(c);

	/* the handler is called again for a request with a body: keep the first */
	if (f && !f->active) {
		f->start_ns = now_ns();
		f->route = (uint8_t)route_of_url(url);
		f->active = 1;
	}
}

void serve_metrics_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			     enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *si = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
	unsigned status = si ? si->http_status : 0, code = NCODES - 1, route = R_OTHER;
	inflight *f = slot_of(c);
	slot *s = my();

	(void)cls;
	(void)con_cls;
	(void)toe;
	for (unsigned i = 0; i + 1 < NCODES; i++)
		if (codes[i] == status)
			code = i;
	if (f && f->active) {
		uint64_t d = now_ns() - f->start_ns;
		unsigned b = 0;

		route = f->route;
		f->active = 0;
		while (b < NBUCKETS && d > le_ns[b])
			b++;
		if (b < NBUCKETS)
			add(&s->bucket[route][b], 1);
		add(&s->sum_ns[route], d);
		add(&s->count[route], 1);
	}
	add(&s->req[route][code], 1);
}

/* ------------------------------------------------------------ scrape */

static uint64_t sum(const atomic_uint_fast64_t *first, size_t stride_bytes)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < NSLOTS; i++) {
		const atomic_uint_fast64_t *a =
			(const atomic_uint_fast64_t *)((const char *)first + i * stride_bytes);

		t += atomic_load_explicit(a, memory_order_relaxed);
	}
	return t;
}
#define SUM(field) sum(&slots[0].field, sizeof(slot))

typedef struct shard_totals {
	uint64_t by_state[6];
	uint64_t index_bytes, blocks, payload;
} shard_totals;

static const cairn_shard_state states[6] = {
	CAIRN_SHARD_NEW, CAIRN_SHARD_INITIALIZING, CAIRN_SHARD_AVAILABLE,
	CAIRN_SHARD_SERVING, CAIRN_SHARD_RECOVERING, CAIRN_SHARD_ERRORED,
};

static int count_shard(const cairn_shard_info *info, void *payload)
{
	shard_totals *t = payload;

	for (unsigned i = 0; i < 6; i++)
		if (states[i] == info->state)
			t->by_state[i]++;
	t->index_bytes += info->index_size;
	t->blocks += info->blocks;
	t->payload += info->data_size;
	return 0;
}

static void help(cairn_buf *b, const char *name, const char *type, const char *text)
{
	cairn_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

enum MHD_Result serve_metrics(struct MHD_Connection *c, cairn_server *srv, bool head)
{
	cairn_buf b = CAIRN_BUF_INIT;
	shard_totals t;
	struct MHD_Response *r;
	enum MHD_Result ret;
	long pages = 0, rss = 0;
	FILE *f;
	int rc;

	(void)head;
	help(&b, "cairn_http_requests_total", "counter",
	     "HTTP requests answered, by route and status.");
	for (unsigned rt = 0; rt < NROUTES; rt++)
		for (unsigned k = 0; k < NCODES; k++) {
			uint64_t v = SUM(req[rt][k]);
			char code[8];

			if (!v)
				continue;
			if (k + 1 < NCODES)
				snprintf(code, sizeof(code), "%u", codes[k]);
			else
				snprintf(code, sizeof(code), "other");
			cairn_buf_printf(&b, "cairn_http_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
					 route_names[rt], code, (unsigned long long)v);
		}
	help(&b, "cairn_http_response_bytes_total", "counter",
	     "Response body bytes handed to the server, by route.");
	for (unsigned rt = 0; rt < NROUTES; rt++)
		cairn_buf_printf(&b, "cairn_http_response_bytes_total{route=\"%s\"} %llu\n",
				 route_names[rt], (unsigned long long)SUM(bytes[rt]));
	help(&b, "cairn_http_request_duration_seconds", "histogram",
	     "From the request's headers received to its response completed, by route.");
	for (unsigned rt = 0; rt < NROUTES; rt++) {
		uint64_t cum = 0, count = SUM(count[rt]);

		if (!count)
			continue;
		for (unsigned k = 0; k < NBUCKETS; k++) {
			cum += SUM(bucket[rt][k]);
			cairn_buf_printf(&b, "cairn_http_request_duration_seconds_bucket{route=\"%s\","
					 "le=\"%s\"} %llu\n", route_names[rt], le_names[k],
					 (unsigned long long)cum);
		}
		cairn_buf_printf(&b, "cairn_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
				 "%llu\n", route_names[rt], (unsigned long long)count);
		cairn_buf_printf(&b, "cairn_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
				 route_names[rt], (double)SUM(sum_ns[rt]) / 1e9);
		cairn_buf_printf(&b, "cairn_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
				 route_names[rt], (unsigned long long)count);
	}
	memset(&t, 0, sizeof(t));
	rc = cairn_dagstore_list(srv->ds, count_shard, &t);
	if (!rc) {
		help(&b, "cairn_dagstore_shards", "gauge", "Shards in the DAG store, by state.");
		for (unsigned i = 0; i < 6; i++)
			cairn_buf_printf(&b, "cairn_dagstore_shards{state=\"%s\"} %llu\n",
					 cairn_shard_state_name(states[i]),
					 (unsigned long long)t.by_state[i]);
		help(&b, "cairn_dagstore_index_bytes", "gauge", "Bytes of the shards' CARv2 index files.");
		cairn_buf_printf(&b, "cairn_dagstore_index_bytes %llu\n", (unsigned long long)t.index_bytes);
		help(&b, "cairn_dagstore_indexed_blocks", "gauge", "Blocks the shards' indexes hold.");
		cairn_buf_printf(&b, "cairn_dagstore_indexed_blocks %llu\n", (unsigned long long)t.blocks);
		help(&b, "cairn_dagstore_payload_bytes", "gauge", "CARv1 payload bytes of the indexed shards.");
		cairn_buf_printf(&b, "cairn_dagstore_payload_bytes %llu\n", (unsigned long long)t.payload);
	} else {
		cairn_log(CAIRN_LOG_WARN, "serve: metrics: listing shards: %s", cairn_error_last());
	}
	if ((f = fopen("/proc/self/statm", "r"))) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	help(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	cairn_buf_printf(&b, "process_resident_memory_bytes %llu\n",
			 (unsigned long long)rss * (unsigned long long)sysconf(_SC_PAGESIZE));
	if (b.err) {
		cairn_buf_free(&b);
		return MHD_NO;
	}
	{
		size_t len = b.len;
		void *data = cairn_buf_detach(&b, &len);

		r = MHD_create_response_from_buffer_with_free_callback(len, data, cairn_free);
		if (!r) {
			cairn_free(data);
			return MHD_NO;
		}
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}
