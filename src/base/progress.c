/* progress.c: a one-line progress bar for long work, redrawn at most ten times
 * a second and only on a terminal, so callers update it without checking. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/base.h"

#define REDRAW_NS 100000000ull
#define BAR_WIDTH 30

uint64_t cairn_time_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void human(char *out, size_t cap, double v)
{
	static const char *const units[] = {"", "k", "M", "G", "T", "P"};
	int u = 0;

	while (v >= 1000 && u < 5) {
		v /= 1000;
		u++;
	}
	snprintf(out, cap, u ? "%.1f%s" : "%.0f%s", v, units[u]);
}

static void draw(cairn_progress *p, bool final)
{
	char line[256], done[32], rate[32];
	double secs = (double)(cairn_time_ns() - p->started_ns) / 1e9;
	int n;

	human(done, sizeof(done), (double)p->done);
	human(rate, sizeof(rate), secs > 0 ? (double)p->done / secs : 0);
	if (p->total) {
		double frac = (double)p->done / (double)p->total;
		char bar[BAR_WIDTH + 1];
		int fill = (int)(frac * BAR_WIDTH), i;

		if (frac > 1)
			frac = 1, fill = BAR_WIDTH;
		for (i = 0; i < BAR_WIDTH; i++)
			bar[i] = i < fill ? '#' : '-';
		bar[BAR_WIDTH] = '\0';
		n = snprintf(line, sizeof(line), "\r%s [%s] %3.0f%% %s (%s/s)\033[K%s",
			     p->label, bar, frac * 100, done, rate, final ? "\n" : "");
	} else {
		n = snprintf(line, sizeof(line), "\r%s %s (%s/s)\033[K%s", p->label, done, rate,
			     final ? "\n" : "");
	}
	if (n > 0)
		cairn_file_write_full(p->fd, line, strlen(line), NULL);
	p->drawn_ns = cairn_time_ns();
}

void cairn_progress_start(cairn_progress *p, int fd, bool force, const char *label,
			  uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->active = force || isatty(fd);
	p->label = label ? label : "";
	p->total = total;
	p->started_ns = cairn_time_ns();
}

void cairn_progress_update(cairn_progress *p, uint64_t done)
{
	p->done = done;
	if (p->active && cairn_time_ns() - p->drawn_ns >= REDRAW_NS)
		draw(p, false);
}

void cairn_progress_finish(cairn_progress *p)
{
	if (p->active)
		draw(p, true);
	p->active = false;
}
