/* log.c: levelled log lines handed to a sink the program installs; the
 * library itself never writes to a terminal. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/base.h"

static atomic_int level = CAIRN_LOG_WARN;
static cairn_log_sink sink;
static void *sink_payload;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void cairn_log_set_sink(cairn_log_sink s, void *payload)
{
	sink = s;
	sink_payload = payload;
}

void cairn_log_set_level(cairn_log_level l)
{
	atomic_store(&level, (int)l);
}

cairn_log_level cairn_log_get_level(void)
{
	return (cairn_log_level)atomic_load(&level);
}

int cairn_log_level_parse(cairn_log_level *out, const char *name)
{
	int i;

	for (i = 0; i <= CAIRN_LOG_TRACE; i++) {
		if (!strcmp(name, level_names[i]) || (name[0] == '0' + i && name[1] == '\0')) {
			*out = (cairn_log_level)i;
			return 0;
		}
	}
	if (!strcmp(name, "warning"))
		return *out = CAIRN_LOG_WARN, 0;
	return cairn_error_set(CAIRN_EINVAL,
		"unknown log level '%s' (use error, warn, info, debug or trace)", name);
}

const char *cairn_log_level_name(cairn_log_level l)
{
	return (unsigned)l <= CAIRN_LOG_TRACE ? level_names[l] : "unknown";
}

void cairn_log(cairn_log_level l, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!sink || !cairn_log_enabled(l))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sink(l, line, sink_payload);
}
