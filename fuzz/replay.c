/* replay.c: runs a fuzz target over every file in the given files and folders,
 * so the corpus is replayed as an ordinary test without libFuzzer. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "fuzz.h"

static const char *ext = "";
static unsigned long count;

static bool wanted(const char *path)
{
	size_t n = strlen(path), e = strlen(ext);

	return e == 0 || (n >= e && !strcmp(path + n - e, ext));
}

static int run(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return 0; /* an empty corpus folder may not exist yet */
	if (S_ISDIR(st.st_mode)) {
		struct dirent *d;
		DIR *dir = opendir(path);
		int rc = 0;

		if (!dir)
			return 1;
		while (!rc && (d = readdir(dir))) {
			char sub[4096];

			if (d->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, d->d_name);
			rc = run(sub);
		}
		closedir(dir);
		return rc;
	}
	if (!wanted(path))
		return 0;
	{
		cairn_buf b = CAIRN_BUF_INIT;

		if (cairn_file_read_all(&b, path, 64u << 20)) {
			fprintf(stderr, "replay: %s\n", cairn_error_last());
			return 1;
		}
		/* A copy of exactly `len` bytes, so ASan catches reads past the end. */
		uint8_t *copy = malloc(b.len ? b.len : 1);
		memcpy(copy, b.data, b.len);
		LLVMFuzzerTestOneInput(copy, b.len);
		free(copy);
		cairn_buf_free(&b);
		count++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--ext=", 6)) {
			ext = argv[i] + 6;
			continue;
		}
		if (run(argv[i]))
			return 1;
	}
	printf("replayed %lu inputs\n", count);
	return 0;
}
