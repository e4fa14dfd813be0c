/* error.c: the per-thread error message behind every negative CAIRN_E* code.
 * Messages are formatted into a fixed per-thread buffer, so setting one never allocates. */
#include <stdio.h>
#include <string.h>

#include "cairn/base.h"

#define MSG_MAX 1024

static _Thread_local char msg[MSG_MAX];
static _Thread_local int last_code;

const char *cairn_error_last(void)
{
	return msg[0] ? msg : "no error";
}

int cairn_error_last_code(void)
{
	return last_code;
}

void cairn_error_clear(void)
{
	msg[0] = '\0';
	last_code = 0;
}

const char *cairn_error_name(int code)
{
	switch (code) {
	case CAIRN_OK: return "success";
	case CAIRN_ERROR: return "failed";
	case CAIRN_ENOMEM: return "out of memory";
	case CAIRN_EINVAL: return "invalid argument";
	case CAIRN_ECORRUPT: return "corrupt input";
	case CAIRN_ENOTFOUND: return "not found";
	case CAIRN_EIO: return "input/output error";
	case CAIRN_EMISMATCH: return "hash mismatch";
	case CAIRN_ETOOBIG: return "too big";
	case CAIRN_EUNSUPPORTED: return "not supported";
	case CAIRN_EEXISTS: return "already exists";
	case CAIRN_ECANCELED: return "canceled";
	default: return "unknown error";
	}
}

int cairn_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	last_code = code;
	return code;
}

int cairn_error_prefix(const char *fmt, ...)
{
	char old[MSG_MAX];
	va_list ap;
	int n;

	memcpy(old, msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, "%s", old);
	return last_code;
}
