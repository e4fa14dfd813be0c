/* jwt.c: the JSON-RPC tokens, as Lotus makes them: HS256 JWTs carrying
 * {"Allow": [permissions]}, and the secret that signs them.
 *
 * A token is base64url(header) "." base64url(payload) "." base64url(mac),
 * no padding, the MAC being HMAC-SHA256 over the first two parts with the
 * store's 32-byte secret. Verification recomputes the MAC and compares in
 * constant time before anything else in the token is believed; then the
 * header must say {"alg":"HS256"} (so "none" and the RS/HS confusion are
 * refused) and the payload must be a JSON object whose "Allow" is a list of
 * strings. Names the token does not know are ignored (a newer cairn may
 * add some), "exp" when present must be an integer in the future.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "serve_i.h"

/* Bounds a token before any work is done on it: Lotus's admin token is
 * about 150 bytes. */
#define TOKEN_MAX 4096

static const char *const perm_names[] = {"read", "write", "sign", "admin"};

const char *cairn_perm_name(cairn_perm perm)
{
	for (unsigned i = 0; i < 4; i++)
		if ((unsigned)perm == 1u << i)
			return perm_names[i];
	return NULL;
}

int cairn_perm_parse(unsigned *perms_out, const char *name)
{
	*perms_out = 0;
	for (unsigned i = 0; i < 4; i++) {
		if (name && !strcmp(name, perm_names[i])) {
			*perms_out = (2u << i) - 1;
			return 0;
		}
	}
	return cairn_error_set(CAIRN_EINVAL, "unknown permission \"%s\": want read, write, sign or admin",
			       name ? name : "");
}

static int hs256(uint8_t mac[32], const uint8_t *secret, const char *p, size_t n)
{
	unsigned len = 32;

	if (!HMAC(EVP_sha256(), secret, CAIRN_SERVE_SECRET_SIZE, (const unsigned char *)p, n, mac,
		  &len) || len != 32)
		return cairn_error_set(CAIRN_ERROR, "HMAC-SHA256 failed");
	return 0;
}

int cairn_serve_token_new(char **out, const uint8_t *secret, unsigned perms, int64_t exp)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	cairn_buf payload = CAIRN_BUF_INIT, t = CAIRN_BUF_INIT;
	uint8_t mac[32];
	bool first = true;
	int rc;

	*out = NULL;
	if (!secret || !perms || (perms & ~(unsigned)CAIRN_PERM_ALL))
		return cairn_error_set(CAIRN_EINVAL, "token: no secret, or no valid permission");
	cairn_buf_puts(&payload, "{\"Allow\":[");
	for (unsigned i = 0; i < 4; i++) {
		if (!(perms & (1u << i)))
			continue;
		cairn_buf_printf(&payload, "%s\"%s\"", first ? "" : ",", perm_names[i]);
		first = false;
	}
	cairn_buf_putc(&payload, ']');
	if (exp)
		cairn_buf_printf(&payload, ",\"exp\":%lld", (long long)exp);
	cairn_buf_putc(&payload, '}');
	cairn_base_encode(&t, CAIRN_BASE64URL, (const uint8_t *)header, strlen(header));
	cairn_buf_putc(&t, '.');
	cairn_base_encode(&t, CAIRN_BASE64URL, payload.data, payload.len);
	if ((rc = payload.err ? payload.err : t.err))
		goto out;
	if ((rc = hs256(mac, secret, (const char *)t.data, t.len)))
		goto out;
	cairn_buf_putc(&t, '.');
	cairn_base_encode(&t, CAIRN_BASE64URL, mac, sizeof(mac));
	if ((rc = t.err))
		goto out;
	*out = (char *)cairn_buf_detach(&t, NULL);
out:
	cairn_buf_free(&payload);
	cairn_buf_free(&t);
	return rc;
}

/* Decodes one base64url part of a token and parses it as a JSON object. */
static int part_json(cairn_node **out, cairn_arena *arena, cairn_buf *scratch, const char *p,
		     size_t n, const char *what)
{
	int rc;

	cairn_buf_clear(scratch);
	if ((rc = cairn_base_decode(scratch, CAIRN_BASE64URL, p, n)))
		return rc == CAIRN_ENOMEM ? rc
			: cairn_error_set(CAIRN_ECORRUPT, "token: the %s is not base64url", what);
	if ((rc = cairn_dagjson_decode(out, arena, scratch->data, scratch->len)))
		return rc == CAIRN_ENOMEM ? rc
			: cairn_error_set(CAIRN_ECORRUPT, "token: the %s is not JSON", what);
	if ((*out)->kind != CAIRN_KIND_MAP)
		return cairn_error_set(CAIRN_ECORRUPT, "token: the %s is not a JSON object", what);
	return 0;
}

static bool str_is(const cairn_node *n, const char *s)
{
	return n && n->kind == CAIRN_KIND_STRING && n->v.bytes.len == strlen(s) &&
	       !memcmp(n->v.bytes.ptr, s, n->v.bytes.len);
}

int cairn_serve_token_verify(unsigned *perms_out, const uint8_t *secret, const char *token,
			     size_t len, int64_t now)
{
	const char *dot1, *dot2;
	cairn_buf mac = CAIRN_BUF_INIT, scratch = CAIRN_BUF_INIT;
	cairn_arena *arena = NULL;
	cairn_node *hdr, *pl;
	const cairn_node *allow, *exp;
	uint8_t want[32];
	unsigned perms = 0;
	int rc;

	*perms_out = 0;
	if (!secret || !token)
		return cairn_error_set(CAIRN_EINVAL, "token: no secret or no token");
	if (len > TOKEN_MAX)
		return cairn_error_set(CAIRN_ECORRUPT, "token: longer than %d bytes", TOKEN_MAX);
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return cairn_error_set(CAIRN_ECORRUPT, "token: not a JWT (three parts joined by '.')");
	/* The signature first: nothing of an unsigned token is parsed. */
	if ((rc = cairn_base_decode(&mac, CAIRN_BASE64URL, dot2 + 1, len - (size_t)(dot2 + 1 - token)))) {
		if (rc != CAIRN_ENOMEM)
			rc = cairn_error_set(CAIRN_ECORRUPT, "token: the signature is not base64url");
		goto out;
	}
	if ((rc = hs256(want, secret, token, (size_t)(dot2 - token))))
		goto out;
	if (mac.len != sizeof(want) || CRYPTO_memcmp(mac.data, want, sizeof(want))) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "token: signature verification failed");
		goto out;
	}
	if ((rc = cairn_arena_new(&arena)))
		goto out;
	if ((rc = part_json(&hdr, arena, &scratch, token, (size_t)(dot1 - token), "header")))
		goto out;
	if (!str_is(cairn_node_map_get(hdr, "alg"), "HS256")) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "token: the algorithm is not HS256");
		goto out;
	}
	if ((rc = part_json(&pl, arena, &scratch, dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload")))
		goto out;
	allow = cairn_node_map_get(pl, "Allow");
	if (!allow || allow->kind != CAIRN_KIND_LIST) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "token: the payload has no \"Allow\" list");
		goto out;
	}
	for (size_t i = 0; i < allow->v.list.len; i++) {
		const cairn_node *a = &allow->v.list.items[i];

		if (a->kind != CAIRN_KIND_STRING) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "token: \"Allow\" holds a non-string");
			goto out;
		}
		for (unsigned j = 0; j < 4; j++)
			if (str_is(a, perm_names[j]))
				perms |= 1u << j;
	}
	if ((exp = cairn_node_map_get(pl, "exp"))) {
		if (exp->kind != CAIRN_KIND_INT || exp->v.i.neg || exp->v.i.mag > INT64_MAX) {
			rc = cairn_error_set(CAIRN_ECORRUPT, "token: \"exp\" is not a time");
			goto out;
		}
		if ((int64_t)exp->v.i.mag <= now) {
			rc = cairn_error_set(CAIRN_EINVAL, "token: expired");
			goto out;
		}
	}
	*perms_out = perms;
out:
	cairn_arena_free(arena);
	cairn_buf_free(&mac);
	cairn_buf_free(&scratch);
	return rc;
}

/* ------------------------------------------------------------- secret */

static int read_secret(uint8_t *out, const char *path)
{
	cairn_buf b = CAIRN_BUF_INIT;
	int rc = cairn_file_read_all(&b, path, 4096);

	if (!rc && b.len != CAIRN_SERVE_SECRET_SIZE)
		rc = cairn_error_set(CAIRN_ECORRUPT, "%s: %zu bytes, not a %d-byte secret", path, b.len,
				     CAIRN_SERVE_SECRET_SIZE);
	if (!rc)
		memcpy(out, b.data, CAIRN_SERVE_SECRET_SIZE);
	sodium_memzero(b.data, b.cap);
	cairn_buf_free(&b);
	return rc;
}

int cairn_serve_secret_load(uint8_t secret_out[CAIRN_SERVE_SECRET_SIZE], const char *path)
{
	char tmp[4200], dir[4200], *slash;
	uint8_t fresh[CAIRN_SERVE_SECRET_SIZE];
	int fd, rc;

	if (access(path, F_OK) == 0)
		return read_secret(secret_out, path);
	if (errno != ENOENT)
		return cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	if (sodium_init() < 0)
		return cairn_error_set(CAIRN_ERROR, "libsodium cannot start");
	randombytes_buf(fresh, sizeof(fresh));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= sizeof(tmp))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s: %s", tmp, strerror(errno));
	rc = cairn_file_write_full(fd, fresh, sizeof(fresh), tmp);
	if (!rc)
		rc = cairn_file_fsync(fd, tmp);
	close(fd);
	sodium_memzero(fresh, sizeof(fresh));
	/* link, not rename: it fails when the secret appeared meanwhile, and
	 * then that one is the secret (tokens already made with it stay good). */
	if (!rc && link(tmp, path) < 0 && errno != EEXIST)
		rc = cairn_error_set(CAIRN_EIO, "%s: %s", path, strerror(errno));
	unlink(tmp);
	if (rc)
		return rc;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')))
		*slash = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	if ((rc = cairn_file_fsync_dir(dir)))
		return rc;
	return read_secret(secret_out, path);
}
