/* mount.c: the mount registry (URL scheme -> operations) and the wrappers
 * every caller goes through, which check arguments and bounds.
 *
 * Design of the part
 * ------------------
 * A mount is where a shard's bytes live; the DAG store opens it by URL, asks
 * its size and reads it at random offsets, from many threads at once. So a
 * mount is a fixed size plus a positional read that never comes back short:
 * the wrapper refuses a range that runs past the size (CAIRN_ECORRUPT: an
 * offset taken from data that lies), and an implementation that gets fewer
 * bytes than asked says so with the same code, naming the mount and offset.
 *
 *   mount.c      registry, wrappers, URL parsing helpers
 *   file.c       file:// (pread on one descriptor)
 *   http.c       http:// and https:// (libcurl: Range requests, a pool of
 *                easy handles, retries; a transient copy when the server
 *                ignores Range)
 *   transient.c  the transient directory: reservation against a budget,
 *                LRU eviction of unused copies, crash-safe completion
 *   car.c        CAR sections read through a mount (indexing and lookups)
 *
 * Lifetimes: the registry is read-only once filled, so opens need no lock.
 * A scheme's context is borrowed unless it came with a release hook (the
 * HTTP client is reference-counted: the registry and each mount hold one),
 * so freeing the registry never pulls the ground from under an open mount.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mount_i.h"

typedef struct {
	char *scheme;
	const cairn_mount_ops *ops;
	void *ctx;
	void (*release)(void *ctx);
} entry;

struct cairn_mount_registry {
	entry *entries;
	size_t n, cap;
};

static const cairn_mount_options default_opts = CAIRN_MOUNT_OPTIONS_INIT;

int cairn_mount_registry_new(cairn_mount_registry **out)
{
	*out = cairn_calloc(1, sizeof(**out));
	return *out ? 0 : CAIRN_ENOMEM;
}

int cairn_mount_registry_new_default(cairn_mount_registry **out,
				     const cairn_mount_http_options *http_opts)
{
	cairn_mount_registry *reg;
	cairn_mount_http *h = NULL;
	int rc;

	*out = NULL;
	if ((rc = cairn_mount_registry_new(&reg)))
		return rc;
	if (!(rc = cairn_mount_registry_add(reg, "file", &cairn_mount_file_ops, NULL)) &&
	    !(rc = cairn_mount_http_new(&h, http_opts)))
		rc = cairn_mount_http_register(h, reg);
	cairn_mount_http_free(h);
	if (rc) {
		cairn_mount_registry_free(reg);
		return rc;
	}
	*out = reg;
	return 0;
}

size_t cairn_mount__scheme_len(const char *url)
{
	size_t i = 0;

	/* RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
	if (!isalpha((unsigned char)url[0]))
		return 0;
	while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')
		i++;
	return url[i] == ':' ? i : 0;
}

static bool valid_scheme(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 32 || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static entry *find(cairn_mount_registry *reg, const char *scheme, size_t n)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strlen(reg->entries[i].scheme) == n && !strncasecmp(reg->entries[i].scheme, scheme, n))
			return &reg->entries[i];
	return NULL;
}

int cairn_mount__registry_add(cairn_mount_registry *reg, const char *scheme,
			      const cairn_mount_ops *ops, void *ctx, void (*release)(void *ctx))
{
	entry *e;

	if (!reg || !scheme || !ops)
		return cairn_error_set(CAIRN_EINVAL, "mount registry: NULL argument");
	if (!valid_scheme(scheme))
		return cairn_error_set(CAIRN_EINVAL, "mount registry: \"%s\" is not a URL scheme", scheme);
	if (ops->version != CAIRN_MOUNT_OPS_VERSION)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"mount registry: scheme %s: operations version %u (this build knows %u)", scheme,
			ops->version, CAIRN_MOUNT_OPS_VERSION);
	if (!ops->open || !ops->size || !ops->read_at || !ops->close)
		return cairn_error_set(CAIRN_EINVAL,
			"mount registry: scheme %s: open, size, read_at and close are required", scheme);
	if (find(reg, scheme, strlen(scheme)))
		return cairn_error_set(CAIRN_EEXISTS, "mount registry: scheme %s is already registered",
				       scheme);
	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 4;
		entry *p = cairn_realloc(reg->entries, cap * sizeof(*p));

		if (!p)
			return CAIRN_ENOMEM;
		reg->entries = p;
		reg->cap = cap;
	}
	e = &reg->entries[reg->n];
	if (!(e->scheme = cairn_strndup(scheme, strlen(scheme))))
		return CAIRN_ENOMEM;
	for (char *c = e->scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	e->ops = ops;
	e->ctx = ctx;
	e->release = release;
	reg->n++;
	return 0;
}

int cairn_mount_registry_add(cairn_mount_registry *reg, const char *scheme,
			     const cairn_mount_ops *ops, void *ctx)
{
	return cairn_mount__registry_add(reg, scheme, ops, ctx, NULL);
}

void cairn_mount_registry_free(cairn_mount_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n; i++) {
		if (reg->entries[i].release)
			reg->entries[i].release(reg->entries[i].ctx);
		cairn_free(reg->entries[i].scheme);
	}
	cairn_free(reg->entries);
	cairn_free(reg);
}

int cairn_mount_open(cairn_mount **out, cairn_mount_registry *reg, const char *url,
		     const cairn_mount_options *opts)
{
	size_t n;
	entry *e;
	int rc;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "mount: NULL argument");
	*out = NULL;
	if (!reg || !url)
		return cairn_error_set(CAIRN_EINVAL, "mount: NULL argument");
	if (!opts)
		opts = &default_opts;
	if (opts->fetch > CAIRN_MOUNT_FETCH_ALWAYS)
		return cairn_error_set(CAIRN_EINVAL, "%s: unknown fetch policy %d", url, (int)opts->fetch);
	n = cairn_mount__scheme_len(url);
	if (n == 0) {
		if (url[0] != '/')
			return cairn_error_set(CAIRN_EINVAL,
				"\"%s\" is neither a URL nor an absolute path (a file mount needs file:///absolute/path)",
				url);
		if (!(e = find(reg, "file", 4)))
			return cairn_error_set(CAIRN_EUNSUPPORTED,
				"%s: a bare path is a file mount, and no mount is registered for file://", url);
	} else if (!(e = find(reg, url, n))) {
		return cairn_error_set(CAIRN_EUNSUPPORTED, "%s: no mount is registered for %.*s://", url,
				       (int)n, url);
	}
	if ((rc = e->ops->open(out, e->ctx, url, opts))) {
		*out = NULL;
		return rc;
	}
	return 0;
}

uint64_t cairn_mount_size(cairn_mount *m)
{
	return m->ops->size(m);
}

int cairn_mount_read_at(cairn_mount *m, void *buf, size_t n, uint64_t offset)
{
	uint64_t size;

	if (!m || (!buf && n))
		return cairn_error_set(CAIRN_EINVAL, "mount: NULL argument");
	size = m->ops->size(m);
	if (offset > size || n > size - offset)
		return cairn_error_set(CAIRN_ECORRUPT,
			"%s: at byte %llu: unexpected end of data (a read of %zu bytes; the mount has %llu)",
			m->name, (unsigned long long)offset, n, (unsigned long long)size);
	if (n == 0)
		return 0;
	return m->ops->read_at(m, buf, n, offset);
}

int cairn_mount_stat(cairn_mount *m, cairn_mount_status *out)
{
	if (!m || !out)
		return cairn_error_set(CAIRN_EINVAL, "mount: NULL argument");
	if (m->ops->stat)
		return m->ops->stat(m, out);
	memset(out, 0, sizeof(*out));
	out->exists = true;
	out->ready = true;
	out->random = true;
	out->kind = m->kind;
	out->size = m->ops->size(m);
	return 0;
}

int cairn_mount_fd(cairn_mount *m)
{
	return m && m->ops->fd ? m->ops->fd(m) : -1;
}

const char *cairn_mount_name(const cairn_mount *m)
{
	return m->name;
}

cairn_mount_kind cairn_mount_get_kind(const cairn_mount *m)
{
	return m->kind;
}

void cairn_mount_close(cairn_mount *m)
{
	if (m)
		m->ops->close(m);
}

int cairn_mount_stat_url(cairn_mount_status *out, cairn_mount_registry *reg, const char *url)
{
	cairn_mount_options opts = {CAIRN_MOUNT_FETCH_NEVER};
	cairn_mount *m;
	int rc;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "mount: NULL argument");
	memset(out, 0, sizeof(*out));
	rc = cairn_mount_open(&m, reg, url, &opts);
	if (rc == CAIRN_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	rc = cairn_mount_stat(m, out);
	cairn_mount_close(m);
	return rc;
}

/* ------------------------------------------------------------ URL helpers */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int cairn_mount__unescape(char **out, const char *s, size_t n)
{
	char *p;
	size_t j = 0;

	*out = NULL;
	if (!(p = cairn_malloc(n + 1)))
		return CAIRN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			p[j++] = s[i];
			continue;
		}
		if (n - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
			cairn_free(p);
			return cairn_error_set(CAIRN_EINVAL, "at character %zu: bad percent-escape", i);
		}
		p[j] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
		if (p[j] == '\0') {
			cairn_free(p);
			return cairn_error_set(CAIRN_EINVAL, "at character %zu: an escaped NUL (%%00)", i);
		}
		j++;
		i += 2;
	}
	p[j] = '\0';
	*out = p;
	return 0;
}

int cairn_mount_file_url(cairn_buf *out, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!out || !path)
		return cairn_error_set(CAIRN_EINVAL, "mount: NULL argument");
	if (path[0] != '/')
		return cairn_error_set(CAIRN_EINVAL, "%s: a file URL needs an absolute path", path);
	cairn_buf_puts(out, "file://");
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		/* RFC 3986 unreserved characters, '/', and the sub-delimiters a
		 * path may hold as they are; everything else escaped. */
		if (isalnum(*c) || strchr("/-._~!$&'()*+,;=:@", *c)) {
			cairn_buf_putc(out, *c);
		} else {
			cairn_buf_putc(out, '%');
			cairn_buf_putc(out, (uint8_t)hex[*c >> 4]);
			cairn_buf_putc(out, (uint8_t)hex[*c & 15]);
		}
	}
	return out->err;
}
