/* buf.c: a growable byte buffer whose first allocation failure sticks, so
 * encoders append without checking and test `err` once at the end. */
#include <stdio.h>
#include <string.h>

#include "cairn/base.h"

int cairn_buf_reserve(cairn_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (extra > SIZE_MAX - b->len - 1)
		return b->err = cairn_error_set(CAIRN_ENOMEM, "buffer size overflow");
	need = b->len + extra + 1; /* room for the NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = cairn_realloc(b->data, cap);
	if (!p)
		return b->err = CAIRN_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int cairn_buf_append(cairn_buf *b, const void *p, size_t n)
{
	if (cairn_buf_reserve(b, n))
		return b->err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cairn_buf_putc(cairn_buf *b, uint8_t c)
{
	if (b->len + 1 < b->cap && !b->err) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return 0;
	}
	return cairn_buf_append(b, &c, 1);
}

int cairn_buf_puts(cairn_buf *b, const char *s)
{
	return cairn_buf_append(b, s, strlen(s));
}

int cairn_buf_printf(cairn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return b->err = cairn_error_set(CAIRN_EINVAL, "bad format string");
	if (cairn_buf_reserve(b, (size_t)n))
		return b->err;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void cairn_buf_clear(cairn_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

void cairn_buf_free(cairn_buf *b)
{
	if (!b)
		return;
	cairn_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

uint8_t *cairn_buf_detach(cairn_buf *b, size_t *len_out)
{
	uint8_t *p = b->data;

	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
	return p;
}
