/* http.c: http:// and https:// mounts through libcurl: random reads as Range
 * requests, or a local transient copy when the server ignores Range.
 *
 * Threads and connections: a read borrows an easy handle from the client's
 * pool, runs one blocking transfer and gives the handle back; the pool hands
 * out the most recently returned handle first, whose connection (kept alive
 * by curl in the handle) is then reused. A handle is only ever used by one
 * thread at a time, which is all libcurl asks. DNS answers and TLS sessions
 * are shared between handles through a curl share object with a mutex per
 * kind of data; connections are not shared (libcurl does not support
 * sharing them between threads). curl_global_init runs once, under
 * pthread_once, and is never undone (a library must not call
 * curl_global_cleanup while the program may still use curl).
 *
 * Requests: open sends GET "Range: bytes=0-0": 206 with Content-Range
 * A-B/N means ranges work and the size is N; 200 means the server ignores
 * Range (nginx with max_ranges 0, many simple servers), and the body is
 * abandoned after its first bytes. A read is GET "Range: bytes=off-end",
 * written straight into the caller's buffer; it must come back 206 with the
 * same start, the same total as at open, and exactly n bytes.
 *
 * Failures: connection errors, timeouts, stalls and 408/429/5xx are retried
 * (`retries` more times, waiting retry_delay_ms doubling); anything else is
 * answered at once. What a failure returns:
 *   404, 410                      CAIRN_ENOTFOUND  "<url>: not found (HTTP 404)"
 *   other statuses                CAIRN_EIO        "<url>: HTTP 403 Forbidden"
 *   transport (after retries)     CAIRN_EIO        "<url>: <curl's words> (after 3 attempts)"
 *   a URL curl cannot parse       CAIRN_EINVAL; a redirect to another scheme CAIRN_EUNSUPPORTED
 *   206 short, wrong start/total  CAIRN_ECORRUPT   "<url>: at byte <off>: ..."
 *   no room for a transient       CAIRN_ETOOBIG    (transient.c)
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "mount_i.h"

#define MAX_REDIRS 5L
/* A transfer slower than this for stall_timeout_ms is given up (and retried). */
#define STALL_BYTES_PER_S 1024L
/* Fewer callbacks for whole-file downloads; reads keep curl's default. */
#define DOWNLOAD_BUFFER (256L << 10)

struct cairn_mount_http {
	atomic_uint refs;
	cairn_mount_http_options opts;
	char *user_agent;
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_mu;
	CURL **idle;              /* max_idle_handles slots, a stack */
	size_t nidle;
	cairn_mount__tstore *ts;  /* NULL without a transients directory */
	_Atomic uint64_t requests, retries, handles_created;
};

typedef struct {
	cairn_mount base;
	cairn_mount_http *h;
	char *url;                /* as given: what requests go to */
	char *name;               /* without user:password, for messages */
	char *tname;              /* "<name> (transient copy <path>)" */
	uint64_t size;
	bool ranged;              /* reads are Range requests */
	cairn_mount__transient *t;/* or reads come from this copy */
	int fd;
} http_mount;

/* ------------------------------------------------------------ the client */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *ud)
{
	cairn_mount_http *h = ud;

	(void)c;
	(void)access;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_mu[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *ud)
{
	cairn_mount_http *h = ud;

	(void)c;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_mu[data]);
}

static void client_destroy(cairn_mount_http *h)
{
	for (size_t i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	cairn_mount__tstore_free(h->ts);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_mu[i]);
	pthread_mutex_destroy(&h->pool_mu);
	cairn_free(h->idle);
	cairn_free(h->user_agent);
	cairn_free(h);
}

static void client_ref(cairn_mount_http *h)
{
	atomic_fetch_add(&h->refs, 1);
}

static void client_unref(void *ctx)
{
	cairn_mount_http *h = ctx;

	if (h && atomic_fetch_sub(&h->refs, 1) == 1)
		client_destroy(h);
}

void cairn_mount_http_free(cairn_mount_http *h)
{
	client_unref(h);
}

int cairn_mount_http_new(cairn_mount_http **out, const cairn_mount_http_options *opts)
{
	static const cairn_mount_http_options defaults = CAIRN_MOUNT_HTTP_OPTIONS_INIT;
	const char *ua;
	cairn_mount_http *h;
	int rc = 0;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return cairn_error_set(CAIRN_EIO, "http mounts: curl_global_init: %s",
				       curl_easy_strerror(curl_init_rc));
	if (!(h = cairn_calloc(1, sizeof(*h))))
		return CAIRN_ENOMEM;
	atomic_init(&h->refs, 1);
	h->opts = *opts;
	h->opts.transients_dir = NULL; /* not kept: the store has its own copy */
	pthread_mutex_init(&h->pool_mu, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_mu[i], NULL);
	ua = opts->user_agent ? opts->user_agent : "cairn";
	h->opts.user_agent = NULL;
	if (!(h->user_agent = cairn_strndup(ua, strlen(ua))) ||
	    (h->opts.max_idle_handles &&
	     !(h->idle = cairn_calloc(h->opts.max_idle_handles, sizeof(*h->idle))))) {
		client_destroy(h);
		return CAIRN_ENOMEM;
	}
	if (!(h->share = curl_share_init())) {
		client_destroy(h);
		return cairn_error_set(CAIRN_ENOMEM, "http mounts: curl_share_init failed");
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (opts->transients_dir &&
	    (rc = cairn_mount__tstore_open(&h->ts, opts->transients_dir, opts->transients_max_bytes))) {
		client_destroy(h);
		return rc;
	}
	*out = h;
	return 0;
}

static int http_open(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *opts);
static uint64_t http_size(cairn_mount *m);
static int http_read_at(cairn_mount *m, void *buf, size_t n, uint64_t offset);
static int http_stat(cairn_mount *m, cairn_mount_status *out);
static int http_fd(cairn_mount *m);
static void http_close(cairn_mount *m);

static const cairn_mount_ops http_ops = {
	.version = CAIRN_MOUNT_OPS_VERSION,
	.name = "http",
	.open = http_open,
	.size = http_size,
	.read_at = http_read_at,
	.stat = http_stat,
	.fd = http_fd,
	.close = http_close,
};

int cairn_mount_http_register(cairn_mount_http *h, cairn_mount_registry *reg)
{
	static const char *const schemes[] = {"http", "https"};

	if (!h || !reg)
		return cairn_error_set(CAIRN_EINVAL, "http mounts: NULL argument");
	for (size_t i = 0; i < 2; i++) {
		int rc;

		client_ref(h);
		if ((rc = cairn_mount__registry_add(reg, schemes[i], &http_ops, h, client_unref))) {
			client_unref(h);
			return rc;
		}
	}
	return 0;
}

/* A transient's name: the first 16 bytes of the URL's SHA-256, in hex. */
static int transient_key(char key[33], const char *url)
{
	uint8_t digest[CAIRN_MH_DIGEST_MAX];
	int rc;

	if ((rc = cairn_multihash_sum(digest, CAIRN_MH_SHA2_256, url, strlen(url))) < 0)
		return rc;
	for (size_t i = 0; i < 16; i++)
		snprintf(key + 2 * i, 3, "%02x", digest[i]);
	return 0;
}

int cairn_mount_http_gc(cairn_mount_http *h, const char *url, uint64_t *freed_out)
{
	char key[33];
	int rc;

	if (freed_out)
		*freed_out = 0;
	if (!h->ts)
		return 0;
	if (url && (rc = transient_key(key, url)))
		return rc;
	return cairn_mount__tstore_gc(h->ts, url ? key : NULL, freed_out);
}

void cairn_mount_http_get_stats(cairn_mount_http *h, cairn_mount_http_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (h->ts)
		cairn_mount__tstore_stats(h->ts, out);
	out->requests = atomic_load(&h->requests);
	out->retries = atomic_load(&h->retries);
	out->handles_created = atomic_load(&h->handles_created);
}

static CURL *handle_get(cairn_mount_http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->pool_mu);
	if (h->nidle)
		c = h->idle[--h->nidle];
	pthread_mutex_unlock(&h->pool_mu);
	if (!c && (c = curl_easy_init()))
		atomic_fetch_add(&h->handles_created, 1);
	return c;
}

static void handle_put(cairn_mount_http *h, CURL *c)
{
	pthread_mutex_lock(&h->pool_mu);
	if (h->nidle < h->opts.max_idle_handles) {
		h->idle[h->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_mu);
	if (c)
		curl_easy_cleanup(c);
}

/* ------------------------------------------------------------- requests */

typedef enum { R_PROBE, R_HEAD, R_READ, R_DOWNLOAD } rkind;

typedef struct {
	rkind kind;
	cairn_mount_http *h;
	const char *url;
	const char *name;
	CURL *curl;
	uint64_t off;             /* R_READ: the range asked for */
	size_t len;
	uint8_t *buf;             /* R_READ: where the bytes go */
	size_t got;
	bool overflow;            /* more bytes came than were asked for */
	int fd;                   /* R_DOWNLOAD: the .partial */
	const char *fd_name;
	uint64_t written;
	uint64_t expected;        /* UINT64_MAX: unknown */
	cairn_mount__tstore *ts;
	cairn_mount__transient *t;
	int sink_rc;              /* a failure in the write callback */
	unsigned attempts;
	/* the response */
	long status;
	bool aborted;             /* a 200 to a Range request: stopped on purpose */
	bool cr_seen, cr_unsat, cr_total_known;
	uint64_t cr_start, cr_end, cr_total;
	bool cl_known;
	uint64_t content_length;
	char errbuf[CURL_ERROR_SIZE];
} req;

static bool parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return true;
}

/* Content-Range: "bytes A-B/N"; an asterisk stands for an unknown N, or
 * for A-B in the answer to a range past the end. */
static void parse_content_range(req *r, const char *v)
{
	r->cr_seen = true;
	r->cr_unsat = false;
	r->cr_total_known = false;
	if (strncasecmp(v, "bytes", 5))
		goto bad;
	v += 5;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '*') {
		r->cr_unsat = true;
		v++;
	} else if (!parse_u64(&v, &r->cr_start) || *v++ != '-' || !parse_u64(&v, &r->cr_end) ||
		   r->cr_end < r->cr_start) {
		goto bad;
	}
	if (*v++ != '/')
		goto bad;
	if (*v == '*')
		return;
	if (parse_u64(&v, &r->cr_total))
		r->cr_total_known = true;
	return;
bad:
	/* Unparsable: as if absent; the checks then refuse the answer. */
	r->cr_seen = false;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	req *r = ud;
	size_t len = size * n, k;
	char line[256];
	const char *v;

	/* A new response (after a redirect or a 100 Continue): forget the
	 * headers of the one before. */
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
		r->cr_seen = r->cr_unsat = r->cr_total_known = false;
		r->cl_known = false;
		return len;
	}
	k = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
	memcpy(line, p, k);
	while (k && (line[k - 1] == '\r' || line[k - 1] == '\n' || line[k - 1] == ' '))
		k--;
	line[k] = '\0';
	if (!strncasecmp(line, "content-range:", 14)) {
		for (v = line + 14; *v == ' ' || *v == '\t'; v++)
			;
		parse_content_range(r, v);
	} else if (!strncasecmp(line, "content-length:", 15)) {
		for (v = line + 15; *v == ' ' || *v == '\t'; v++)
			;
		r->cl_known = parse_u64(&v, &r->content_length) && *v == '\0';
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	req *r = ud;
	size_t len = size * n;

	if (!r->status)
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
	switch (r->kind) {
	case R_PROBE:
	case R_HEAD:
		if (r->status == 200) {
			/* The whole body is coming: not wanted here. */
			r->aborted = true;
			return 0;
		}
		return len;
	case R_READ:
		if (r->status == 200) {
			r->aborted = true;
			return 0;
		}
		if (r->status != 206)
			return len; /* an error page */
		if (len > r->len - r->got) {
			r->overflow = true;
			return 0;
		}
		memcpy(r->buf + r->got, p, len);
		r->got += len;
		return len;
	case R_DOWNLOAD:
		if (r->status != 200)
			return len;
		if (r->expected != UINT64_MAX && len > r->expected - r->written) {
			r->sink_rc = cairn_error_set(CAIRN_ECORRUPT,
				"%s: at byte %llu: the server sent more than the %llu bytes it announced",
				r->name, (unsigned long long)r->expected, (unsigned long long)r->expected);
			return 0;
		}
		if (r->expected == UINT64_MAX && cairn_mount__transient_size(r->t) < r->written + len &&
		    (r->sink_rc = cairn_mount__tstore_grow(r->ts, r->t, r->written + len, r->name)))
			return 0;
		if ((r->sink_rc = cairn_file_pwrite_full(r->fd, p, len, r->written, r->fd_name)))
			return 0;
		r->written += len;
		return len;
	}
	return 0;
}

static bool transient_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static bool transient_status(long status)
{
	return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
	       status == 504;
}

static void setup(CURL *c, req *r)
{
	const cairn_mount_http_options *o = &r->h->opts;
	char range[64];

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRS);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (o->connect_timeout_ms)
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
	if (o->stall_timeout_ms) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, STALL_BYTES_PER_S);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
				 (long)(o->stall_timeout_ms < 1000 ? 1 : o->stall_timeout_ms / 1000));
	}
	if (o->request_timeout_ms && r->kind != R_DOWNLOAD)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->request_timeout_ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, r->h->user_agent);
	curl_easy_setopt(c, CURLOPT_SHARE, r->h->share);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	switch (r->kind) {
	case R_PROBE:
		curl_easy_setopt(c, CURLOPT_RANGE, "0-0");
		break;
	case R_HEAD:
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
		break;
	case R_READ:
		snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)r->off,
			 (unsigned long long)(r->off + r->len - 1));
		curl_easy_setopt(c, CURLOPT_RANGE, range);
		break;
	case R_DOWNLOAD:
		curl_easy_setopt(c, CURLOPT_BUFFERSIZE, DOWNLOAD_BUFFER);
		break;
	}
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *where(const req *r, char *buf, size_t n)
{
	if (r->kind == R_READ)
		snprintf(buf, n, "at byte %llu: ", (unsigned long long)r->off);
	else
		buf[0] = '\0';
	return buf;
}

/* Runs the request, retrying transient failures. Returns 0 when a response
 * came (r->status; a body cut off on purpose counts), or a code with its
 * message: CAIRN_EIO for transport failures, a write callback's code. */
static int run(req *r)
{
	cairn_mount_http *h = r->h;
	char at[64];

	for (r->attempts = 1;; r->attempts++) {
		CURLcode cc;

		r->status = 0;
		r->got = 0;
		r->overflow = r->aborted = false;
		r->cr_seen = r->cr_unsat = r->cr_total_known = r->cl_known = false;
		r->written = 0;
		r->sink_rc = 0;
		r->errbuf[0] = '\0';
		if (r->kind == R_DOWNLOAD && ftruncate(r->fd, 0) < 0)
			return cairn_error_set(CAIRN_EIO, "%s: truncate: %s", r->fd_name, strerror(errno));
		if (!(r->curl = handle_get(h)))
			return cairn_error_set(CAIRN_ENOMEM, "%s: curl_easy_init failed", r->name);
		setup(r->curl, r);
		cc = curl_easy_perform(r->curl);
		atomic_fetch_add(&h->requests, 1);
		if (!r->status)
			curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status);
		handle_put(h, r->curl);
		r->curl = NULL;
		if (r->sink_rc)
			return r->sink_rc;
		if (cc == CURLE_WRITE_ERROR && (r->aborted || r->overflow))
			cc = CURLE_OK;
		if (cc == CURLE_OK && !transient_status(r->status))
			return 0;
		if (r->attempts > h->opts.retries || (cc != CURLE_OK && !transient_curl(cc))) {
			int code = CAIRN_EIO;

			if (cc == CURLE_OK)
				return 0; /* the caller words the status */
			if (cc == CURLE_URL_MALFORMAT)
				code = CAIRN_EINVAL;
			else if (cc == CURLE_UNSUPPORTED_PROTOCOL)
				code = CAIRN_EUNSUPPORTED; /* a redirect to another scheme */
			return cairn_error_set(code, "%s: %s%s%s%s (after %u attempt%s)", r->name,
					       where(r, at, sizeof(at)), curl_easy_strerror(cc),
					       r->errbuf[0] ? ": " : "", r->errbuf, r->attempts,
					       r->attempts == 1 ? "" : "s");
		}
		{
			uint64_t delay = (uint64_t)h->opts.retry_delay_ms << (r->attempts - 1 < 16 ? r->attempts - 1 : 16);

			if (cc == CURLE_OK)
				cairn_log(CAIRN_LOG_WARN, "%s: %sHTTP %ld; retrying in %llu ms", r->name,
					  where(r, at, sizeof(at)), r->status, (unsigned long long)delay);
			else
				cairn_log(CAIRN_LOG_WARN, "%s: %s%s; retrying in %llu ms", r->name,
					  where(r, at, sizeof(at)), curl_easy_strerror(cc),
					  (unsigned long long)delay);
			atomic_fetch_add(&h->retries, 1);
			sleep_ms(delay);
		}
	}
}

static const char *reason(long status)
{
	switch (status) {
	case 400: return " Bad Request";
	case 401: return " Unauthorized";
	case 403: return " Forbidden";
	case 404: return " Not Found";
	case 405: return " Method Not Allowed";
	case 408: return " Request Timeout";
	case 410: return " Gone";
	case 416: return " Range Not Satisfiable";
	case 429: return " Too Many Requests";
	case 500: return " Internal Server Error";
	case 501: return " Not Implemented";
	case 502: return " Bad Gateway";
	case 503: return " Service Unavailable";
	case 504: return " Gateway Timeout";
	default: return "";
	}
}

/* The error for a status that is not the one hoped for. */
static int status_error(const req *r)
{
	char at[64];

	where(r, at, sizeof(at));
	if (r->status == 404 || r->status == 410)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s: %snot found (HTTP %ld)", r->name, at, r->status);
	if (r->attempts > 1)
		return cairn_error_set(CAIRN_EIO, "%s: %sHTTP %ld%s (after %u attempts)", r->name, at,
				       r->status, reason(r->status), r->attempts);
	return cairn_error_set(CAIRN_EIO, "%s: %sHTTP %ld%s", r->name, at, r->status, reason(r->status));
}

typedef struct {
	bool ranged;
	bool size_known;
	uint64_t size;
} probe_result;

/* Is the resource there, how large, and does the server do ranges? */
static int probe(probe_result *out, cairn_mount_http *h, const char *url, const char *name)
{
	req r = {.kind = R_PROBE, .h = h, .url = url, .name = name};
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = run(&r)))
		return rc;
	switch (r.status) {
	case 206:
		if (!r.cr_seen || r.cr_unsat || r.cr_start != 0)
			return cairn_error_set(CAIRN_ECORRUPT,
				"%s: the answer to a Range request for byte 0 has no matching Content-Range", name);
		out->ranged = true;
		if (r.cr_total_known) {
			out->size_known = true;
			out->size = r.cr_total;
			return 0;
		}
		/* An unknown total: the length may still come from a HEAD. */
		r = (req){.kind = R_HEAD, .h = h, .url = url, .name = name};
		if ((rc = run(&r)))
			return rc;
		if (r.status == 200 && r.cl_known) {
			out->size_known = true;
			out->size = r.content_length;
		} else {
			out->ranged = false; /* no size: only a whole copy tells */
		}
		return 0;
	case 200:
		out->size_known = r.cl_known;
		out->size = r.content_length;
		return 0;
	case 416:
		/* Nothing to read at byte 0: an empty resource. */
		if (r.cr_seen && r.cr_unsat && r.cr_total_known && r.cr_total == 0) {
			out->ranged = out->size_known = true;
			return 0;
		}
		return status_error(&r);
	default:
		return status_error(&r);
	}
}

/* --------------------------------------------------------------- mounts */

static uint64_t http_size(cairn_mount *m)
{
	return ((http_mount *)m)->size;
}

static int ranged_read(http_mount *hm, void *buf, size_t n, uint64_t off)
{
	req r = {.kind = R_READ, .h = hm->h, .url = hm->url, .name = hm->name,
		 .off = off, .len = n, .buf = buf};
	const char *name = hm->name;
	unsigned long long at = off;
	int rc;

	if ((rc = run(&r)))
		return rc;
	if (r.status == 200)
		return cairn_error_set(CAIRN_EIO,
			"%s: at byte %llu: the server no longer honours Range requests (HTTP 200)", name, at);
	if (r.status == 416)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: range not satisfiable (HTTP 416): the resource is shorter than the %llu bytes it had at open",
			name, at, (unsigned long long)hm->size);
	if (r.status != 206)
		return status_error(&r);
	if (!r.cr_seen || r.cr_unsat)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: a 206 answer without Content-Range",
				       name, at);
	if (r.cr_start != off)
		return cairn_error_set(CAIRN_ECORRUPT, "%s: at byte %llu: the server sent bytes from %llu",
				       name, at, (unsigned long long)r.cr_start);
	if (r.cr_total_known && r.cr_total != hm->size)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: the resource has %llu bytes now (%llu at open)", name, at,
			(unsigned long long)r.cr_total, (unsigned long long)hm->size);
	if (r.overflow)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: the server sent more than the %zu bytes asked for", name, at, n);
	if (r.got < n)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: short read: the server sent %zu of the %zu bytes asked for", name,
			at + r.got, r.got, n);
	return 0;
}

static int http_read_at(cairn_mount *m, void *buf, size_t n, uint64_t offset)
{
	http_mount *hm = (http_mount *)m;

	if (hm->t) {
		cairn_mount__tstore_touch(hm->t);
		return cairn_file_pread_full(hm->fd, buf, n, offset, hm->tname);
	}
	if (!hm->ranged)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"%s: the server does not honour Range requests, and this mount was opened without a transient copy",
			hm->name);
	return ranged_read(hm, buf, n, offset);
}

static int http_stat(cairn_mount *m, cairn_mount_status *out)
{
	http_mount *hm = (http_mount *)m;
	probe_result pr;
	int rc;

	memset(out, 0, sizeof(*out));
	out->kind = CAIRN_MOUNT_REMOTE;
	rc = probe(&pr, hm->h, hm->url, hm->name);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	out->exists = true;
	out->ready = true;
	out->random = pr.ranged;
	out->transient = hm->t != NULL;
	out->size = pr.size_known ? pr.size : hm->size;
	return 0;
}

static int http_fd(cairn_mount *m)
{
	http_mount *hm = (http_mount *)m;

	return hm->t ? hm->fd : -1;
}

static void http_close(cairn_mount *m)
{
	http_mount *hm = (http_mount *)m;

	if (hm->t)
		cairn_mount__tstore_release(hm->h->ts, hm->t, hm->fd);
	client_unref(hm->h);
	cairn_free(hm->url);
	cairn_free(hm->name);
	cairn_free(hm->tname);
	cairn_free(hm);
}

/* The URL without "user:password@", for messages and logs. */
static char *redact(const char *url)
{
	const char *auth = strstr(url, "://"), *end, *at = NULL;
	char *out;

	if (!auth)
		return cairn_strndup(url, strlen(url));
	auth += 3;
	end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return cairn_strndup(url, strlen(url));
	if (!(out = cairn_malloc(strlen(url) + 1)))
		return NULL;
	memcpy(out, url, (size_t)(auth - url));
	strcpy(out + (auth - url), at + 1);
	return out;
}

typedef struct {
	http_mount *hm;
	uint64_t expected;
} fill_ctx;

static int fill_download(int fd, cairn_mount__tstore *ts, cairn_mount__transient *t,
			 uint64_t *size_out, void *payload)
{
	fill_ctx *fc = payload;
	req r = {.kind = R_DOWNLOAD, .h = fc->hm->h, .url = fc->hm->url, .name = fc->hm->name,
		 .fd = fd, .fd_name = cairn_mount__transient_path(t), .expected = fc->expected,
		 .ts = ts, .t = t};
	int rc;

	cairn_log(CAIRN_LOG_INFO, "%s: copying to a transient file (%s)", fc->hm->name,
		  fc->expected == UINT64_MAX ? "size unknown" : "size known");
	if ((rc = run(&r)))
		return rc;
	if (r.status != 200)
		return status_error(&r);
	*size_out = r.written;
	return 0;
}

static int open_transient(http_mount *hm, const probe_result *pr)
{
	char key[33];
	fill_ctx fc = {hm, pr->size_known ? pr->size : UINT64_MAX};
	size_t n;
	int rc;

	if (!hm->h->ts)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"%s: the server does not honour Range requests (HTTP 200 to a Range probe), and no transients directory is configured for a local copy",
			hm->name);
	if ((rc = transient_key(key, hm->url)))
		return rc;
	if ((rc = cairn_mount__tstore_acquire(&hm->t, &hm->fd, hm->h->ts, key, fc.expected, hm->name,
					      fill_download, &fc)))
		return rc;
	hm->size = cairn_mount__transient_size(hm->t);
	n = strlen(hm->name) + strlen(cairn_mount__transient_path(hm->t)) + 32;
	if (!(hm->tname = cairn_malloc(n)))
		return CAIRN_ENOMEM;
	snprintf(hm->tname, n, "%s (transient copy %s)", hm->name, cairn_mount__transient_path(hm->t));
	return 0;
}

static int http_open(cairn_mount **out, void *ctx, const char *url, const cairn_mount_options *opts)
{
	cairn_mount_http *h = ctx;
	http_mount *hm;
	probe_result pr;
	int rc;

	*out = NULL;
	if (!(hm = cairn_calloc(1, sizeof(*hm))))
		return CAIRN_ENOMEM;
	hm->fd = -1;
	hm->h = h;
	client_ref(h);
	hm->base.ops = &http_ops;
	hm->base.kind = CAIRN_MOUNT_REMOTE;
	if (!(hm->url = cairn_strndup(url, strlen(url))) || !(hm->name = redact(url))) {
		http_close(&hm->base);
		return CAIRN_ENOMEM;
	}
	hm->base.name = hm->name;
	if ((rc = probe(&pr, h, url, hm->name))) {
		http_close(&hm->base);
		return rc;
	}
	hm->size = pr.size;
	hm->ranged = pr.ranged && pr.size_known;
	if ((opts->fetch == CAIRN_MOUNT_FETCH_AUTO && !hm->ranged) ||
	    opts->fetch == CAIRN_MOUNT_FETCH_ALWAYS) {
		if ((rc = open_transient(hm, &pr))) {
			http_close(&hm->base);
			return rc;
		}
	}
	*out = &hm->base;
	return 0;
}
