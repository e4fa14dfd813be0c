/* serve.c: the HTTP server of `cairn serve` (libmicrohttpd): the thread
 * pool, the bounds on requests, routing; the routes live beside it.
 *
 * Threads: MHD's internal polling with a pool of one thread per core
 * (MHD_OPTION_THREAD_POOL_SIZE), each thread running its own poll loop
 * over nonblocking sockets. poll, not MHD's edge-triggered epoll: under
 * the load bench (256 connections opened at once) the epoll loops lost
 * their wakeups in about one run of twelve, both threads asleep in
 * epoll_wait while all 256 sockets held a request unread, so the server
 * answered a few hundred requests a second for the whole run; with poll,
 * level-triggered, a socket with a request always wakes its thread (none
 * in 25 runs, at the same rate within the noise). Thread per connection was the other choice; it
 * was not taken because a slow client (a reader draining a CAR at a byte a
 * second, or a slowloris sending headers) would hold a whole thread, so 256
 * of them would mean 256 threads, and a cap on connections would let them
 * lock everyone else out. In the pool a slow client costs a socket and its
 * connection memory only, and the idle timeout closes it. The price: a
 * block read (a pread, or a ranged GET for an HTTP mount) blocks the pool
 * thread that does it, so the pool is sized to the cores, not to 1.
 *
 * Bounds against hostile input:
 *   - connection memory 16 KiB (MHD_OPTION_CONNECTION_MEMORY_LIMIT): the
 *     request line and headers must fit, else MHD answers 414/431;
 *   - idle timeout (default 30 s) and a connection limit (default 1024);
 *   - request bodies are read only by POST /rpc/v0, at most 1 MiB (413);
 *     GET and HEAD take none, other methods get 405;
 *   - the path is decoded strictly (percent escapes must be two hex digits;
 *     %00, control bytes, empty, "." and ".." segments are 400).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc_i.h"

/* 16 KiB holds any sane request line and headers (Apache's limit is 8 KiB
 * a line); MHD refuses more. MHD zeroes it for every request, so more
 * costs on every small GET (32 KiB: 66% of nginx's rate on 1 KiB blocks,
 * 16 KiB: 68%). */
#define CONN_MEMORY (16 * 1024)
#define DEFAULT_LISTEN "127.0.0.1:8080"

/* --------------------------------------------------------- responses */

ssize_t serve_empty_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

enum MHD_Result serve_send_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result serve_send_textf(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return serve_send_text(c, status, msg);
}

/* ------------------------------------------------------- URL decoding */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* MHD's unescape hook, for the path and the query values alike: decodes
 * %XX in place. A bad escape or %00 becomes 0x01, which nothing accepts, so
 * the request fails as malformed rather than being read leniently (MHD's
 * own decoder keeps bad escapes as they are, and %00 would cut the string).
 * '+' is left as it is: no value cairn reads holds one. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;
	const char *r = s;

	(void)cls;
	(void)c;
	while (*r) {
		if (*r != '%') {
			*w++ = *r++;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);

		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			*w++ = '\x01';
			r += 1;
			continue;
		}
		*w++ = (char)(hi * 16 + lo);
		r += 3;
	}
	*w = 0;
	return (size_t)(w - s);
}

static const unsigned request_seen = SERVE_REQ_SEEN;

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	cairn_server *srv = cls;
	bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);

	serve_metrics_begin(c, url);
	(void)version;
	/* JSON-RPC takes POST bodies and WebSocket upgrades; every other
	 * route is GET or HEAD, bodiless */
	if (!strcmp(url, "/rpc/v0"))
		return serve_rpc(c, srv, method, upload_data, upload_data_size, con_cls);
	if (!head && strcmp(method, MHD_HTTP_METHOD_GET))
		return serve_send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served\n");
	/* A response queued on the first call, before MHD has read the whole
	 * request, makes MHD close the connection after it (it cannot know
	 * that no body follows). So the first call only marks the request and
	 * the answer goes on the second: connections stay open for the next
	 * request, which is most of the rate under load. */
	if (*con_cls != &request_seen) {
		*con_cls = (void *)&request_seen;
		return MHD_YES;
	}
	if (!strcmp(url, "/healthz"))
		return serve_send_text(c, MHD_HTTP_OK, "ok\n");
	if (!strcmp(url, "/metrics"))
		return serve_metrics(c, srv, head);
	if (!strncmp(url, "/ipfs/", 6))
		return serve_gateway(c, srv, url, head);
	if (!strncmp(url, "/piece/", 7))
		return serve_piece(c, srv, url, head);
	return serve_send_text(c, MHD_HTTP_NOT_FOUND, "not found: the routes are /ipfs/{cid}, /piece/{pieceCid} and /healthz\n");
}

/* MHD takes one request-completed hook: the metrics' and the RPC's. */
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	serve_rpc_completed(cls, c, con_cls, toe);
	serve_metrics_completed(cls, c, con_cls, toe);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	/* info: a client going away mid-response is routine, not a warning;
	 * a failure to start is reported by cairn_serve_start itself */
	cairn_log(CAIRN_LOG_INFO, "serve: %s", msg);
}

/* --------------------------------------------------------------- start */

/* "1.2.3.4:80" or "[::1]:80" into a socket address. */
static int parse_listen(struct sockaddr_storage *out, bool *v6_out, const char *s)
{
	char host[64];
	const char *colon, *h = s;
	size_t hn;
	char *end;
	unsigned long port;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			goto bad;
		h = s + 1;
		hn = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		hn = (size_t)(colon - s);
	}
	if (hn == 0 || hn >= sizeof(host))
		goto bad;
	memcpy(host, h, hn);
	host[hn] = 0;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port > 65535)
		goto bad;
	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			goto bad;
		*v6_out = true;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)out;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			goto bad;
		*v6_out = false;
	}
	return 0;
bad:
	return cairn_error_set(CAIRN_EINVAL, "listen address \"%s\": want ADDR:PORT (127.0.0.1:8080, "
			       "[::1]:8080) with a numeric address", s);
}

int cairn_serve_start(cairn_server **out, cairn_dagstore *ds, const cairn_serve_options *opts)
{
	cairn_serve_options o = CAIRN_SERVE_OPTIONS_INIT;
	struct sockaddr_storage sa, bound;
	socklen_t blen = sizeof(bound);
	const union MHD_DaemonInfo *info;
	cairn_server *srv;
	/* poll, not epoll (which MHD_USE_AUTO picks): see the top of the file;
	 * suspend/resume: blocking RPC calls run on worker threads (rpc.c);
	 * upgrade: JSON-RPC over WebSockets (ws.c) */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
	bool v6 = false;
	long cores;
	int rc;

	*out = NULL;
	if (!ds)
		return cairn_error_set(CAIRN_EINVAL, "serve: no DAG store");
	if (opts)
		o = *opts;
	if (!o.listen)
		o.listen = DEFAULT_LISTEN;
	if ((rc = parse_listen(&sa, &v6, o.listen)))
		return rc;
	if (!o.threads) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		o.threads = cores > 0 ? (unsigned)cores : 1;
	}
	if (!o.max_connections)
		o.max_connections = 1024;
	if (!o.timeout_s)
		o.timeout_s = 30;
	if (v6)
		flags |= MHD_USE_IPv6;
	if (!(srv = cairn_calloc(1, sizeof(*srv))))
		return CAIRN_ENOMEM;
	srv->ds = ds;
	if (serve_filemap_new(&srv->maps)) {
		cairn_free(srv);
		return CAIRN_ENOMEM;
	}
	if (serve__rpc_init(srv, &o)) {
		serve_filemap_free(srv->maps);
		cairn_free(srv);
		return CAIRN_ENOMEM;
	}
	srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, srv,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, o.threads,
		MHD_OPTION_CONNECTION_LIMIT, o.max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, o.timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_END);
	if (!srv->mhd) {
		serve__rpc_free(srv);
		serve_filemap_free(srv->maps);
		cairn_free(srv);
		return cairn_error_set(CAIRN_EIO, "serve: cannot listen on %s (in use, or not an "
				       "address of this machine?)", o.listen);
	}
	info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_LISTEN_FD);
	if (info && getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) == 0)
		srv->port = ntohs(bound.ss_family == AF_INET6
				  ? ((struct sockaddr_in6 *)&bound)->sin6_port
				  : ((struct sockaddr_in *)&bound)->sin_port);
	cairn_log(CAIRN_LOG_INFO, "serve: listening on %s (port %u), %u threads", o.listen, srv->port,
		  o.threads);
	*out = srv;
	return 0;
}

unsigned cairn_serve_port(const cairn_server *srv)
{
	return srv ? srv->port : 0;
}

void cairn_serve_stop(cairn_server *srv)
{
	if (!srv)
		return;
	/* WebSockets and RPC workers first: MHD must get every upgraded
	 * socket back and every suspended connection resumed before it stops */
	serve__rpc_stop(srv);
	MHD_stop_daemon(srv->mhd);
	serve__rpc_free(srv);
	serve_filemap_free(srv->maps); /* after MHD: its responses held mappings */
	cairn_free(srv);
}
