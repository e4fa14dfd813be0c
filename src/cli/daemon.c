/* daemon.c: the command line's JSON-RPC client (libcurl) for the daemon
 * that owns the store, and how it is found: Lotus's way, the api file
 * (a multiaddr) and the token file in the store, or $CAIRN_API_INFO.
 *
 * "A daemon runs" means the store's lock is held by another process AND
 * the api file is there. The lock is probed with a shared, non-blocking
 * flock on $REPO/lock, released at once: a daemon killed with -9 leaves
 * its api file behind, but the kernel dropped its lock, so the file is
 * ignored and the command opens the store as usual. The lock held with no
 * api file is another command at work (or a daemon starting): the command
 * then tries the store and says it is in use, as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <curl/curl.h>

#include "daemon.h"
#include "repo.h"

/* A response is bounded: the largest is a block (at most a few MiB, in
 * base64) or the list of every shard. */
#define RESPONSE_MAX ((size_t)1 << 30)

void cli_daemon_json_str(cairn_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	cairn_buf_putc(b, '"');
	for (; *s; s++) {
		uint8_t ch = (uint8_t)*s;

		if (ch == '"' || ch == '\\') {
			cairn_buf_putc(b, '\\');
			cairn_buf_putc(b, ch);
		} else if (ch < 0x20 || ch == 0x7f) {
			char esc[7] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15], 0};

			cairn_buf_puts(b, esc);
		} else {
			cairn_buf_putc(b, ch);
		}
	}
	cairn_buf_putc(b, '"');
}

const char *cli_daemon_str(cli_daemon *d, const cairn_node *obj, const char *key)
{
	const cairn_node *n = cairn_node_map_get(obj, key);
	char *s;

	if (!n || n->kind != CAIRN_KIND_STRING || !(s = cairn_arena_alloc(d->arena, n->v.bytes.len + 1)))
		return NULL;
	memcpy(s, n->v.bytes.ptr, n->v.bytes.len);
	s[n->v.bytes.len] = 0;
	return s;
}

uint64_t cli_daemon_uint(const cairn_node *obj, const char *key)
{
	const cairn_node *n = cairn_node_map_get(obj, key);

	return n && n->kind == CAIRN_KIND_INT && !n->v.i.neg ? n->v.i.mag : 0;
}

/* "/ip4/127.0.0.1/tcp/1234/http" (ip6, dns, dns4, dns6; http or ws) into
 * the endpoint's URL. */
static int multiaddr_url(char *out, size_t cap, const char *ma)
{
	char proto[8], host[256], tail[16] = "";
	unsigned port;
	int n;

	n = sscanf(ma, "/%7[^/]/%255[^/]/tcp/%u/%15[^/\n]", proto, host, &port, tail);
	if (n < 3 || port > 65535 || (n == 4 && strcmp(tail, "http") && strcmp(tail, "ws")))
		return cairn_error_set(CAIRN_EINVAL, "\"%s\" is not a multiaddr cairn can reach "
				       "(want /ip4/ADDR/tcp/PORT/http)", ma);
	if (!strcmp(proto, "ip6"))
		n = snprintf(out, cap, "http://[%s]:%u/rpc/v0", host, port);
	else if (!strcmp(proto, "ip4") || !strncmp(proto, "dns", 3))
		n = snprintf(out, cap, "http://%s:%u/rpc/v0", host, port);
	else
		return cairn_error_set(CAIRN_EINVAL, "\"%s\": unknown address protocol %s", ma, proto);
	if (n < 0 || (size_t)n >= cap)
		return cairn_error_set(CAIRN_EINVAL, "\"%s\": too long", ma);
	return 0;
}

static int start(cli_daemon *out, const char *multiaddr, const char *token, size_t token_len)
{
	int rc;

	if ((rc = multiaddr_url(out->url, sizeof(out->url), multiaddr)))
		return rc;
	if (token_len && !(out->token = cairn_strndup(token, token_len)))
		return CAIRN_ENOMEM;
	if ((rc = cairn_arena_new(&out->arena)))
		return rc;
	return 1;
}

/* The file's first line, trimmed. */
static int read_line(cairn_buf *b, const char *path)
{
	int rc = cairn_file_read_all(b, path, 64 * 1024);

	if (rc)
		return rc;
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r' ||
			  b->data[b->len - 1] == ' '))
		b->len--;
	return cairn_buf_putc(b, 0) ? CAIRN_ENOMEM : 0;
}

int cli_daemon_find(cli_daemon *out, const cli_args *args)
{
	const char *info = getenv("CAIRN_API_INFO");
	char repo[4096], path[4200];
	cairn_buf api = CAIRN_BUF_INIT, token = CAIRN_BUF_INIT;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if (info && *info) {
		const char *colon = strchr(info, ':');

		rc = colon ? start(out, colon + 1, info, (size_t)(colon - info)) : start(out, info, NULL, 0);
		if (rc < 0) {
			cairn_error_prefix("CAIRN_API_INFO: ");
			cli_daemon_close(out);
		}
		return rc;
	}
	if ((rc = cli_repo_path(repo, sizeof(repo), args)))
		return rc;
	snprintf(path, sizeof(path), "%s/lock", repo);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0; /* no store yet, or none made by a daemon */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK) {
		close(fd); /* nobody owns it: any api file is stale */
		return 0;
	}
	close(fd);
	snprintf(path, sizeof(path), "%s/api", repo);
	if (read_line(&api, path)) {
		cairn_buf_free(&api);
		cairn_error_clear();
		return 0;
	}
	snprintf(path, sizeof(path), "%s/token", repo);
	if (read_line(&token, path)) {
		cairn_buf_clear(&token); /* no token: read only, the daemon says so */
		cairn_error_clear();
	}
	rc = start(out, (const char *)api.data, token.len ? (const char *)token.data : NULL,
		   token.len ? token.len - 1 : 0);
	if (rc < 0) {
		cairn_error_prefix("%s/api: ", repo);
		cli_daemon_close(out);
	}
	cairn_buf_free(&api);
	cairn_buf_free(&token);
	if (rc > 0)
		cairn_log(CAIRN_LOG_INFO, "through the daemon at %s", out->url);
	return rc;
}

void cli_daemon_close(cli_daemon *d)
{
	if (d->token) {
		explicit_bzero(d->token, strlen(d->token));
		cairn_free(d->token);
	}
	cairn_arena_free(d->arena);
	memset(d, 0, sizeof(*d));
}

int cli_store_open(cli_store *s, cli_ctx *ctx, const cli_args *args, const char *what,
		   cli_store_mode mode)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->r.lock_fd = -1;
	if ((rc = cli_daemon_find(&s->d, args)) < 0)
		return cli_fail(ctx, what);
	if (rc > 0) {
		s->remote = true;
		return 0;
	}
	/* cli_repo_open cleans up after itself when it fails */
	rc = mode == CLI_STORE_PATH ? cli_repo_path(s->r.path, sizeof(s->r.path), args)
				    : cli_repo_open(&s->r, args);
	return rc ? cli_fail(ctx, what) : 0;
}

void cli_store_close(cli_store *s)
{
	if (s->remote)
		cli_daemon_close(&s->d);
	else
		cli_repo_close(&s->r);
}

int cli_with_store(cli_ctx *ctx, const cli_args *args, const char *what, cli_local_fn local,
		   cli_remote_fn remote)
{
	cli_store s;
	int rc;

	if (cli_store_open(&s, ctx, args, what, CLI_STORE_OPEN))
		return CLI_FAILED;
	rc = s.remote ? remote(ctx, args, &s.d) : local(ctx, args, &s.r);
	cli_store_close(&s);
	return rc;
}

static size_t on_data(char *p, size_t size, size_t n, void *payload)
{
	cairn_buf *b = payload;

	if (b->len + n > RESPONSE_MAX || cairn_buf_append(b, p, n))
		return 0;
	(void)size;
	return n;
}

static int error_code(const cairn_node *err)
{
	const cairn_node *data = cairn_node_map_get(err, "data");
	const cairn_node *name = data ? cairn_node_map_get(data, "cairn") : NULL;

	if (name && name->kind == CAIRN_KIND_STRING)
		for (int c = CAIRN_ERROR; c >= CAIRN_ECANCELED; c--) {
			const char *s = cairn_error_name(c);

			if (strlen(s) == name->v.bytes.len && !memcmp(s, name->v.bytes.ptr, name->v.bytes.len))
				return c;
		}
	return CAIRN_ERROR;
}

int cli_daemon_call(const cairn_node **result, cli_daemon *d, const char *method,
		    const char *params)
{
	static bool curl_ready;
	cairn_buf req = CAIRN_BUF_INIT, resp = CAIRN_BUF_INIT, auth = CAIRN_BUF_INIT;
	struct curl_slist *hdrs = NULL;
	const cairn_node *r, *err;
	cairn_node *root;
	uint8_t *copy;
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURL *curl;
	CURLcode cc;
	int rc;

	*result = NULL;
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = true;
	}
	cairn_buf_printf(&req, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"%s\",\"params\":%s}",
			 ++d->next_id, method, params);
	if (d->token)
		cairn_buf_printf(&auth, "Authorization: Bearer %s", d->token);
	if (req.err || auth.err || !(curl = curl_easy_init())) {
		rc = CAIRN_ENOMEM;
		goto out_nocurl;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	if (d->token)
		hdrs = curl_slist_append(hdrs, (const char *)auth.data);
	curl_easy_setopt(curl, CURLOPT_URL, d->url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)req.data);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req.len);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (cc != CURLE_OK) {
		rc = cairn_error_set(CAIRN_EIO, "the daemon at %s: %s", d->url,
				     cerr[0] ? cerr : curl_easy_strerror(cc));
		goto out;
	}
	/* the tree borrows from its input: keep the input as long as it */
	if (!(copy = cairn_arena_alloc(d->arena, resp.len + 1))) {
		rc = CAIRN_ENOMEM;
		goto out;
	}
	if (resp.len)
		memcpy(copy, resp.data, resp.len);
	if (cairn_dagjson_decode(&root, d->arena, copy, resp.len) || root->kind != CAIRN_KIND_MAP) {
		rc = cairn_error_set(CAIRN_EIO, "the daemon at %s answered HTTP %ld with no JSON-RPC "
				     "response", d->url, status);
		goto out;
	}
	if ((err = cairn_node_map_get(root, "error")) && err->kind == CAIRN_KIND_MAP) {
		const cairn_node *m = cairn_node_map_get(err, "message");
		int len = m && m->kind == CAIRN_KIND_STRING ? (int)m->v.bytes.len : 0;

		rc = status == 401 ? CAIRN_EIO : error_code(err);
		cairn_error_set(rc, "%.*s", len, len ? (const char *)m->v.bytes.ptr : "");
		if (status == 401)
			cairn_error_prefix("the daemon refused the token (%s/token or CAIRN_API_INFO): ",
					   "$REPO");
		goto out;
	}
	if (!(r = cairn_node_map_get(root, "result"))) {
		rc = cairn_error_set(CAIRN_EIO, "the daemon's answer has no result");
		goto out;
	}
	*result = r;
	rc = 0;
out:
	curl_slist_free_all(hdrs);
out_nocurl:
	cairn_buf_free(&req);
	cairn_buf_free(&resp);
	if (auth.data)
		explicit_bzero(auth.data, auth.len);
	cairn_buf_free(&auth);
	return rc;
}
