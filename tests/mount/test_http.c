/* test_http.c: HTTP mounts against a small scripted server on loopback, for
 * the answers a real server rarely gives: short and overlong 206s, wrong
 * Content-Range, 503s then success, dropped connections, a total of "*",
 * chunked bodies, stalls, redirects, a server that stops honouring Range. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cairn.h"
#include "cairn/mount.h"

#define SIZE 100000u
static char root[256];

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)((i * 131 + (i >> 8) * 7 + 3) & 0xff);
}

static uint8_t content[SIZE];

/* ------------------------------------------------------------- the server */

#define MAX_CONNS 256

typedef struct {
	int lfd, port;
	pthread_t accept_th;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_t conn_th[MAX_CONNS];
	int conn_fd[MAX_CONNS];
	int nconns;
	atomic_int requests, flaky_left, drop_left, reads_200;
	char last_path[256];
} server;

static server srv;

typedef struct {
	char method[8];
	char path[256];
	bool has_range;
	uint64_t a, b; /* Range: bytes=a-b */
} request;

static bool send_all(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;

	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);

		if (k <= 0)
			return false;
		c += k;
		n -= (size_t)k;
	}
	return true;
}

static bool sendf(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return send_all(fd, buf, (size_t)n);
}

/* Answers one request; false closes the connection. */
static bool answer(int fd, const request *rq)
{
	const char *p = rq->path;
	bool head = !strcmp(rq->method, "HEAD");
	uint64_t a = rq->a, b = rq->b;

	if (!strcmp(p, "/404"))
		return sendf(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
	if (!strcmp(p, "/403"))
		return sendf(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
	if (!strcmp(p, "/500"))
		return sendf(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
	if (!strcmp(p, "/redirect"))
		return sendf(fd, "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n");
	if (!strcmp(p, "/empty"))
		return sendf(fd, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */0\r\nContent-Length: 0\r\n\r\n");
	if (!strcmp(p, "/flaky") && rq->has_range && rq->a > 0 && atomic_fetch_sub(&srv.flaky_left, 1) > 0)
		return sendf(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
	if (!strcmp(p, "/slow")) {
		sendf(fd, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %llu-%llu/%u\r\nContent-Length: %llu\r\n\r\n",
		      (unsigned long long)a, (unsigned long long)b, SIZE, (unsigned long long)(b - a + 1));
		if (a == 0)
			return send_all(fd, content, 1);
		for (int i = 0; i < 40 && !atomic_load(&srv.stop); i++)
			usleep(100000);
		return false;
	}
	if (!strcmp(p, "/chunked") || !strcmp(p, "/noranges") ||
	    (!strcmp(p, "/became200") && rq->has_range && rq->a > 0) || !rq->has_range) {
		if (!strcmp(p, "/chunked")) {
			/* No length: the body runs to the close. */
			sendf(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
			if (!head)
				send_all(fd, content, SIZE);
			return false;
		}
		if (rq->has_range)
			atomic_fetch_add(&srv.reads_200, 1);
		sendf(fd, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", SIZE);
		return head ? true : send_all(fd, content, SIZE);
	}
	/* Everything else does ranges, each in its own way. */
	if (b >= SIZE)
		b = SIZE - 1;
	if (a >= SIZE)
		return sendf(fd, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%u\r\nContent-Length: 0\r\n\r\n", SIZE);
	{
		uint64_t start = a, end = b, total = SIZE, len;
		char total_s[32];

		if (!strcmp(p, "/short") && a > 0)
			end = a + (b - a) / 2;
		if (!strcmp(p, "/overflow") && a > 0 && end + 10 < SIZE)
			end += 10;
		if (!strcmp(p, "/wrongstart") && a > 0)
			start = a + 1;
		if (!strcmp(p, "/grown") && a > 0)
			total = SIZE + 5;
		len = end - start + 1;
		snprintf(total_s, sizeof(total_s), "%llu", (unsigned long long)total);
		if (!strcmp(p, "/unknown-total"))
			snprintf(total_s, sizeof(total_s), "*");
		if (!strcmp(p, "/drop") && a > 0 && atomic_fetch_sub(&srv.drop_left, 1) > 0) {
			/* Half the body, then the connection goes. */
			sendf(fd, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %llu-%llu/%s\r\nContent-Length: %llu\r\n\r\n",
			      (unsigned long long)start, (unsigned long long)end, total_s, (unsigned long long)len);
			send_all(fd, content + start, (size_t)len / 2);
			return false;
		}
		sendf(fd, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %llu-%llu/%s\r\nContent-Length: %llu\r\n\r\n",
		      (unsigned long long)start, (unsigned long long)end, total_s, (unsigned long long)len);
		if (head)
			return true;
		return send_all(fd, content + start, (size_t)len);
	}
}

static bool parse_request(request *rq, char *hdr)
{
	char *line, *save = NULL, *r;

	memset(rq, 0, sizeof(*rq));
	line = strtok_r(hdr, "\r\n", &save);
	if (!line || sscanf(line, "%7s %255s", rq->method, rq->path) != 2)
		return false;
	while ((line = strtok_r(NULL, "\r\n", &save)))
		if (!strncasecmp(line, "range:", 6) && (r = strstr(line, "bytes="))) {
			unsigned long long a, b;

			if (sscanf(r + 6, "%llu-%llu", &a, &b) == 2) {
				rq->has_range = true;
				rq->a = a;
				rq->b = b;
			}
		}
	return true;
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8192];
	size_t have = 0;

	for (;;) {
		char *end;
		ssize_t k;
		request rq;
		size_t used;

		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			if (have == sizeof(buf) - 1)
				goto out;
			k = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
			if (k <= 0)
				goto out;
			have += (size_t)k;
		}
		*end = '\0';
		used = (size_t)(end - buf) + 4;
		if (!parse_request(&rq, buf))
			goto out;
		atomic_fetch_add(&srv.requests, 1);
		pthread_mutex_lock(&srv.mu);
		snprintf(srv.last_path, sizeof(srv.last_path), "%s", rq.path);
		pthread_mutex_unlock(&srv.mu);
		memmove(buf, buf + used, have - used);
		have -= used;
		if (!answer(fd, &rq))
			goto out;
	}
out:
	shutdown(fd, SHUT_RDWR);
	return NULL;
}

static void *accept_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&srv.stop)) {
		struct pollfd pfd = {srv.lfd, POLLIN, 0};
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if ((fd = accept(srv.lfd, NULL, NULL)) < 0)
			continue;
		/* Headers and body go in two sends: without this, Nagle and the
		 * client's delayed ACK hold each body back 40 ms. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		pthread_mutex_lock(&srv.mu);
		if (srv.nconns == MAX_CONNS) {
			pthread_mutex_unlock(&srv.mu);
			close(fd);
			continue;
		}
		srv.conn_fd[srv.nconns] = fd;
		pthread_create(&srv.conn_th[srv.nconns], NULL, conn_main, (void *)(intptr_t)fd);
		srv.nconns++;
		pthread_mutex_unlock(&srv.mu);
	}
	return NULL;
}

static void server_start(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	memset(&srv, 0, sizeof(srv));
	pthread_mutex_init(&srv.mu, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(srv.lfd >= 0);
	assert_int_equal(bind(srv.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv.lfd, 64), 0);
	assert_int_equal(getsockname(srv.lfd, (struct sockaddr *)&sa, &len), 0);
	srv.port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&srv.accept_th, NULL, accept_main, NULL), 0);
}

static void server_stop(void)
{
	atomic_store(&srv.stop, true);
	pthread_join(srv.accept_th, NULL);
	pthread_mutex_lock(&srv.mu);
	for (int i = 0; i < srv.nconns; i++)
		shutdown(srv.conn_fd[i], SHUT_RDWR);
	pthread_mutex_unlock(&srv.mu);
	for (int i = 0; i < srv.nconns; i++) {
		pthread_join(srv.conn_th[i], NULL);
		close(srv.conn_fd[i]);
	}
	close(srv.lfd);
}

/* ---------------------------------------------------------------- helpers */

static char *url(const char *path)
{
	static _Thread_local char buf[4][300];
	static _Thread_local int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "http://127.0.0.1:%d%s", srv.port, path);
	return buf[i];
}

static cairn_mount_http_options fast_opts(void)
{
	cairn_mount_http_options o = CAIRN_MOUNT_HTTP_OPTIONS_INIT;

	o.retry_delay_ms = 10;
	return o;
}

static cairn_mount_registry *registry(const cairn_mount_http_options *o, cairn_mount_http **h_out)
{
	cairn_mount_registry *reg;
	cairn_mount_http *h;

	assert_int_equal(cairn_mount_registry_new(&reg), 0);
	if (cairn_mount_http_new(&h, o))
		fail_msg("http_new: %s", cairn_error_last());
	assert_int_equal(cairn_mount_http_register(h, reg), 0);
	if (h_out)
		*h_out = h;
	else
		cairn_mount_http_free(h);
	return reg;
}

#define assert_error(expr, code, needle)                                                    \
	do {                                                                                \
		int rc_ = (expr);                                                           \
		if (rc_ != (code) || !strstr(cairn_error_last(), (needle)))                 \
			fail_msg("%s: got %d (%s), wanted %d with \"%s\"", #expr, rc_,     \
				 cairn_error_last(), (code), (needle));                     \
	} while (0)

static void check_reads(cairn_mount *m)
{
	static const uint64_t offs[] = {0, 1, 4095, 4096, 65535, 65536, SIZE - 2, SIZE - 1, SIZE};
	static const size_t lens[] = {0, 1, 2, 4096, 70000};
	uint8_t *buf = malloc(SIZE);

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			int rc = cairn_mount_read_at(m, buf, lens[j], offs[i]);

			if (offs[i] + lens[j] > SIZE) {
				assert_int_equal(rc, CAIRN_ECORRUPT);
				continue;
			}
			if (rc)
				fail_msg("read %zu at %llu: %s", lens[j], (unsigned long long)offs[i],
					 cairn_error_last());
			assert_memory_equal(buf, content + offs[i], lens[j]);
		}
	free(buf);
}

/* ------------------------------------------------------------------ tests */

static void test_ranges(void **state)
{
	cairn_mount_http *h;
	cairn_mount_http_options o = fast_opts();
	cairn_mount_registry *reg = registry(&o, &h);
	cairn_mount_status st;
	cairn_mount_http_stats s;
	cairn_mount *m;

	(void)state;
	assert_int_equal(cairn_mount_open(&m, reg, url("/ok"), NULL), 0);
	assert_int_equal(cairn_mount_size(m), SIZE);
	assert_int_equal(cairn_mount_get_kind(m), CAIRN_MOUNT_REMOTE);
	assert_int_equal(cairn_mount_fd(m), -1);
	assert_string_equal(cairn_mount_name(m), url("/ok"));
	check_reads(m);
	assert_int_equal(cairn_mount_stat(m, &st), 0);
	assert_true(st.exists && st.ready && st.random && !st.transient);
	assert_int_equal(st.size, SIZE);
	/* One handle did it all, on one connection. */
	cairn_mount_http_get_stats(h, &s);
	assert_int_equal(s.handles_created, 1);
	assert_int_equal(s.retries, 0);
	cairn_mount_close(m);

	/* A redirect is followed; the size is the target's. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/redirect"), NULL), 0);
	assert_int_equal(cairn_mount_size(m), SIZE);
	check_reads(m);
	cairn_mount_close(m);

	/* An empty resource: 416 with "* /0" to the probe. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/empty"), NULL), 0);
	assert_int_equal(cairn_mount_size(m), 0);
	assert_int_equal(cairn_mount_read_at(m, NULL, 0, 0), 0);
	cairn_mount_close(m);

	/* A total of "*": the size comes from a HEAD. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/unknown-total"), NULL), 0);
	assert_int_equal(cairn_mount_size(m), SIZE);
	check_reads(m);
	cairn_mount_close(m);
	cairn_mount_registry_free(reg);
	cairn_mount_http_free(h);
}

static void test_errors(void **state)
{
	cairn_mount_http_options o = fast_opts();
	cairn_mount_registry *reg = registry(&o, NULL);
	cairn_mount *m = (cairn_mount *)1;
	uint8_t buf[1000];
	int before;

	(void)state;
	assert_error(cairn_mount_open(&m, reg, url("/404"), NULL), CAIRN_ENOTFOUND, "not found (HTTP 404)");
	assert_non_null(strstr(cairn_error_last(), url("/404")));
	assert_null(m);
	/* Credentials never reach a message. */
	{
		char u[300];

		snprintf(u, sizeof(u), "http://alice:s3cret@127.0.0.1:%d/404", srv.port);
		assert_error(cairn_mount_open(&m, reg, u, NULL), CAIRN_ENOTFOUND, url("/404"));
		assert_null(strstr(cairn_error_last(), "s3cret"));
	}
	/* Not retried. */
	before = atomic_load(&srv.requests);
	assert_error(cairn_mount_open(&m, reg, url("/403"), NULL), CAIRN_EIO, "HTTP 403 Forbidden");
	assert_int_equal(atomic_load(&srv.requests) - before, 1);
	/* Retried twice, then named with the count. */
	before = atomic_load(&srv.requests);
	assert_error(cairn_mount_open(&m, reg, url("/500"), NULL), CAIRN_EIO,
		     "HTTP 500 Internal Server Error (after 3 attempts)");
	assert_int_equal(atomic_load(&srv.requests) - before, 3);

	/* A 206 shorter than asked for: corrupt, naming the URL and offset. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/short"), NULL), 0);
	assert_error(cairn_mount_read_at(m, buf, 1000, 5000), CAIRN_ECORRUPT,
		     "/short: at byte 5500: short read: the server sent 500 of the 1000 bytes");
	cairn_mount_close(m);
	assert_int_equal(cairn_mount_open(&m, reg, url("/overflow"), NULL), 0);
	assert_error(cairn_mount_read_at(m, buf, 1000, 5000), CAIRN_ECORRUPT,
		     "/overflow: at byte 5000: the server sent more than the 1000 bytes");
	cairn_mount_close(m);
	assert_int_equal(cairn_mount_open(&m, reg, url("/wrongstart"), NULL), 0);
	assert_error(cairn_mount_read_at(m, buf, 1000, 5000), CAIRN_ECORRUPT, "at byte 5000: the server sent bytes from 5001");
	cairn_mount_close(m);
	assert_int_equal(cairn_mount_open(&m, reg, url("/grown"), NULL), 0);
	assert_error(cairn_mount_read_at(m, buf, 1000, 5000), CAIRN_ECORRUPT, "has 100005 bytes now (100000 at open)");
	cairn_mount_close(m);
	/* Ranges at open, not later. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/became200"), NULL), 0);
	assert_error(cairn_mount_read_at(m, buf, 1000, 5000), CAIRN_EIO, "no longer honours Range requests");
	cairn_mount_close(m);
	/* Nothing listening. */
	assert_error(cairn_mount_open(&m, reg, "http://127.0.0.1:1/x", NULL), CAIRN_EIO, "127.0.0.1:1/x: ");
	assert_non_null(strstr(cairn_error_last(), "after 3 attempts"));
	/* A URL curl cannot parse: not retried. */
	assert_error(cairn_mount_open(&m, reg, "http://bad host/x", NULL), CAIRN_EINVAL, "http://bad host/x: ");
	assert_non_null(strstr(cairn_error_last(), "(after 1 attempt)"));
	/* A scheme no one registered. */
	assert_error(cairn_mount_open(&m, reg, "ftp://127.0.0.1/x", NULL), CAIRN_EUNSUPPORTED, "ftp://");
	cairn_mount_registry_free(reg);
}

static void test_retries(void **state)
{
	cairn_mount_http *h;
	cairn_mount_http_options o = fast_opts();
	cairn_mount_registry *reg = registry(&o, &h);
	cairn_mount_http_stats s;
	uint8_t buf[3000];
	cairn_mount *m;

	(void)state;
	/* Two 503s, then the bytes. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/flaky"), NULL), 0);
	atomic_store(&srv.flaky_left, 2);
	assert_int_equal(cairn_mount_read_at(m, buf, 3000, 7), 0);
	assert_memory_equal(buf, content + 7, 3000);
	/* Three are one too many. */
	atomic_store(&srv.flaky_left, 3);
	assert_error(cairn_mount_read_at(m, buf, 3000, 7), CAIRN_EIO,
		     "at byte 7: HTTP 503 Service Unavailable (after 3 attempts)");
	atomic_store(&srv.flaky_left, 0);
	cairn_mount_close(m);
	/* A connection lost mid-body is retried. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/drop"), NULL), 0);
	atomic_store(&srv.drop_left, 1);
	assert_int_equal(cairn_mount_read_at(m, buf, 3000, 100), 0);
	assert_memory_equal(buf, content + 100, 3000);
	atomic_store(&srv.drop_left, 5);
	assert_error(cairn_mount_read_at(m, buf, 3000, 100), CAIRN_EIO, "at byte 100: ");
	atomic_store(&srv.drop_left, 0);
	cairn_mount_close(m);
	cairn_mount_http_get_stats(h, &s);
	assert_int_equal(s.retries, 2 + 2 + 1 + 2);
	cairn_mount_registry_free(reg);
	cairn_mount_http_free(h);

	/* A stalled transfer times out (and each retry too). */
	o.retries = 0;
	o.stall_timeout_ms = 1000;
	o.request_timeout_ms = 1500;
	reg = registry(&o, NULL);
	assert_int_equal(cairn_mount_open(&m, reg, url("/slow"), NULL), 0);
	assert_error(cairn_mount_read_at(m, buf, 100, 10), CAIRN_EIO, "at byte 10: Timeout was reached");
	cairn_mount_close(m);
	cairn_mount_registry_free(reg);
}

static void test_transients(void **state)
{
	cairn_mount_http *h;
	cairn_mount_http_options o = fast_opts();
	cairn_mount_registry *reg;
	cairn_mount_options never = {CAIRN_MOUNT_FETCH_NEVER}, always = {CAIRN_MOUNT_FETCH_ALWAYS};
	cairn_mount_status st;
	cairn_mount_http_stats s;
	cairn_mount *m, *m2;
	char dir[300];
	uint8_t buf[10];

	(void)state;
	/* No directory: a server without ranges cannot be served. */
	reg = registry(&o, NULL);
	assert_error(cairn_mount_open(&m, reg, url("/noranges"), NULL), CAIRN_EUNSUPPORTED,
		     "does not honour Range requests");
	cairn_mount_registry_free(reg);

	snprintf(dir, sizeof(dir), "%s/t", root);
	o.transients_dir = dir;
	reg = registry(&o, &h);
	assert_int_equal(cairn_mount_open(&m, reg, url("/noranges"), NULL), 0);
	assert_int_equal(cairn_mount_size(m), SIZE);
	assert_true(cairn_mount_fd(m) >= 0);
	check_reads(m);
	assert_int_equal(cairn_mount_stat(m, &st), 0);
	assert_true(st.exists && st.transient && !st.random);
	/* A second open shares the copy. */
	assert_int_equal(cairn_mount_open(&m2, reg, url("/noranges"), NULL), 0);
	cairn_mount_http_get_stats(h, &s);
	assert_int_equal(s.downloads, 1);
	assert_int_equal(s.transients, 1);
	assert_int_equal(s.transients_in_use, 1);
	assert_int_equal(s.transient_bytes, SIZE);
	/* The mounts hold the client: it goes with the last of them. */
	cairn_mount_registry_free(reg);
	cairn_mount_http_free(h);
	cairn_mount_close(m);
	assert_int_equal(cairn_mount_read_at(m2, buf, 10, SIZE - 10), 0);
	assert_memory_equal(buf, content + SIZE - 10, 10);
	cairn_mount_close(m2);

	/* A later client adopts the copy; no length (a chunked or closing body)
	 * is fine too; FETCH_ALWAYS copies even a ranged resource. */
	reg = registry(&o, &h);
	assert_int_equal(cairn_mount_open(&m, reg, url("/noranges"), NULL), 0);
	cairn_mount_close(m);
	assert_int_equal(cairn_mount_open(&m, reg, url("/chunked"), NULL), 0);
	assert_int_equal(cairn_mount_size(m), SIZE);
	check_reads(m);
	cairn_mount_close(m);
	assert_int_equal(cairn_mount_open(&m, reg, url("/ok"), &always), 0);
	assert_true(cairn_mount_fd(m) >= 0);
	check_reads(m);
	cairn_mount_close(m);
	cairn_mount_http_get_stats(h, &s);
	assert_int_equal(s.downloads, 2);
	assert_int_equal(s.transients, 3);
	/* One URL's copy alone (a recovery), then the rest. */
	assert_int_equal(cairn_mount_http_gc(h, url("/chunked"), NULL), 1);
	assert_int_equal(cairn_mount_http_gc(h, url("/chunked"), NULL), 0);
	cairn_mount_http_get_stats(h, &s);
	assert_int_equal(s.transients, 2);
	assert_int_equal(cairn_mount_http_gc(h, NULL, NULL), 2);

	/* FETCH_NEVER: opens and stats without a download; reads refused. */
	assert_int_equal(cairn_mount_open(&m, reg, url("/noranges"), &never), 0);
	assert_error(cairn_mount_read_at(m, buf, 1, 0), CAIRN_EUNSUPPORTED, "without a transient copy");
	cairn_mount_close(m);
	assert_int_equal(cairn_mount_stat_url(&st, reg, url("/noranges")), 0);
	assert_true(st.exists && !st.random && !st.transient);
	assert_int_equal(st.size, SIZE);
	assert_int_equal(cairn_mount_stat_url(&st, reg, url("/404")), 0);
	assert_false(st.exists);
	cairn_mount_http_get_stats(h, &s);
	assert_int_equal(s.transients, 0);
	assert_int_equal(s.downloads, 2);
	cairn_mount_registry_free(reg);
	cairn_mount_http_free(h);

	/* Too small a budget: a clean ETOOBIG. */
	o.transients_max_bytes = SIZE - 1;
	reg = registry(&o, NULL);
	assert_error(cairn_mount_open(&m, reg, url("/noranges"), NULL), CAIRN_ETOOBIG, "transients budget");
	assert_error(cairn_mount_open(&m, reg, url("/chunked"), NULL), CAIRN_ETOOBIG,
		     "/chunked: a transient copy of at least 100000 bytes (the server gave no size) does not fit in the transients budget of 99999 bytes (0 are held");
	cairn_mount_registry_free(reg);
}

#define THREADS 8
#define READS 150

typedef struct {
	cairn_mount *m;
	unsigned seed;
	int bad;
} reader_arg;

static void *reader(void *p)
{
	reader_arg *a = p;
	uint8_t buf[20000];

	for (int i = 0; i < READS; i++) {
		uint64_t off = (uint64_t)rand_r(&a->seed) % SIZE;
		size_t n = 1 + (size_t)rand_r(&a->seed) % sizeof(buf);

		if (n > SIZE - off)
			n = SIZE - off;
		if (cairn_mount_read_at(a->m, buf, n, off) || memcmp(buf, content + off, n))
			a->bad++;
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	cairn_mount_http *h;
	cairn_mount_http_options o = fast_opts();
	cairn_mount_registry *reg = registry(&o, &h);
	cairn_mount_http_stats s;
	pthread_t t[THREADS];
	reader_arg args[THREADS];
	cairn_mount *m;
	int conns;

	(void)state;
	assert_int_equal(cairn_mount_open(&m, reg, url("/ok"), NULL), 0);
	pthread_mutex_lock(&srv.mu);
	conns = srv.nconns;
	pthread_mutex_unlock(&srv.mu);
	for (int i = 0; i < THREADS; i++) {
		args[i] = (reader_arg){m, (unsigned)i * 31u + 5, 0};
		assert_int_equal(pthread_create(&t[i], NULL, reader, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	cairn_mount_http_get_stats(h, &s);
	/* 1200 reads: at most a handle, and a connection, per thread. */
	assert_true(s.handles_created <= THREADS);
	pthread_mutex_lock(&srv.mu);
	conns = srv.nconns - conns;
	pthread_mutex_unlock(&srv.mu);
	assert_true(conns <= THREADS);
	assert_true(s.requests >= THREADS * READS);
	cairn_mount_close(m);
	cairn_mount_registry_free(reg);
	cairn_mount_http_free(h);
}

static void test_alloc_failure(void **state)
{
	cairn_mount_http_options o = fast_opts();
	char dir[300];
	int ok = 0;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/oom", root);
	o.transients_dir = dir;
	for (long n = 1; n < 200 && !ok; n++) {
		cairn_mount_registry *reg = NULL;
		cairn_mount_http *h = NULL;
		cairn_mount *m = NULL;
		int rc;

		cairn_alloc_fail_after(n, false);
		rc = cairn_mount_registry_new(&reg);
		if (!rc)
			rc = cairn_mount_http_new(&h, &o);
		if (!rc)
			rc = cairn_mount_http_register(h, reg);
		if (!rc)
			rc = cairn_mount_open(&m, reg, url("/noranges"), NULL);
		cairn_alloc_fail_after(-1, false);
		if (rc) {
			assert_int_equal(rc, CAIRN_ENOMEM);
			assert_null(m);
		} else {
			uint8_t b[4];

			assert_int_equal(cairn_mount_read_at(m, b, 4, 0), 0);
			ok = 1;
		}
		cairn_mount_close(m);
		cairn_mount_registry_free(reg);
		cairn_mount_http_free(h);
	}
	assert_true(ok);
}

static int group_setup(void **state)
{
	(void)state;
	for (uint64_t i = 0; i < SIZE; i++)
		content[i] = pattern(i);
	snprintf(root, sizeof(root), "/tmp/cairn-test-mount-http-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	server_start();
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[300];

	(void)state;
	cairn_alloc_fail_after(-1, false);
	server_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_retries),
		cmocka_unit_test(test_transients),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_alloc_failure),
	};

	return cmocka_run_group_tests_name("mount/http", tests, group_setup, group_teardown);
}
