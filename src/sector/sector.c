/* sector.c: sector names, file types, proof types and sizes, Lotus's
 * overhead tables, and the file helpers the other files of the part share.
 *
 * Design of the part
 * ------------------
 * One machine's sector storage in the layout Lotus defined and providers
 * still run (research notes: ../shared/reference/sector-storage.md):
 *
 *   <repo>/storage.json            {"StoragePaths":[{"Path":...}]}, paths
 *                                  inside the repo relative to it
 *   <path>/sectorstore.json        the path's UUID, weight, roles, limit
 *   <path>/unsealed/s-t0M-N        partial file (partialfile.c)
 *   <path>/sealed/s-t0M-N          sealed replica (written by the proofs)
 *   <path>/cache/s-t0M-N/          p_aux, t_aux, tree files
 *   <path>/<type>/fetching/        copies in flight (move across disks)
 *   <path>/.cairn-reservations/    one file per reservation, under flock
 *   <repo>/sectors/locks/          one lock file per sector and type
 *
 *   sector.c       names, sizes, overheads, file helpers
 *   rleplus.c      go-bitfield's RLE+ codec and run arithmetic
 *   partialfile.c  the unsealed file: data, RLE+ trailer, its length
 *   paths.c        storage.json, sectorstore.json, attach/detach/list,
 *                  statfs and usage, reservations, best path
 *   index.c        the metadata tables (Curio's storage_path and
 *                  sector_location; sectors; sector_pieces)
 *   lock.c         sector locks
 *   piece.c        AddPiece, ReadPiece, CommD, check, move
 *   mount.c        the DAG store mounts sector:// and piece://
 *
 * What Lotus got wrong and cairn does not: holes are punched with
 * PUNCH_HOLE | KEEP_SIZE and the result checked (Lotus passed PUNCH_HOLE
 * alone, which Linux refuses, and ignored the error: nothing was ever
 * freed); a reservation is a file under flock, so a crashed worker's
 * reservation goes with it and processes reserving at once check and
 * reserve under one lock (Lotus's lived in one process's memory); the
 * unsealed file is not preallocated (Lotus fallocated the whole sector,
 * so a sector with one small piece took its full size on disk).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sector_i.h"

void cairn_sector_name(char out[CAIRN_SECTOR_NAME_MAX], const cairn_sector_id *id)
{
	snprintf(out, CAIRN_SECTOR_NAME_MAX, "s-t0%llu-%llu", (unsigned long long)id->miner,
		 (unsigned long long)id->number);
}

/* A decimal without sign or leading zero; *end past it. */
static int parse_dec(uint64_t *out, const char *s, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
		return CAIRN_EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return CAIRN_EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	*end = p;
	return 0;
}

int cairn_sector_name_parse(cairn_sector_id *out, const char *name)
{
	const char *p;

	if (strncmp(name, "s-t0", 4) || parse_dec(&out->miner, name + 4, &p) || *p != '-' ||
	    parse_dec(&out->number, p + 1, &p) || *p)
		return cairn_error_set(CAIRN_EINVAL, "'%s' is not a sector name (s-t0<miner>-<number>)",
				       name);
	return 0;
}

static const char *const ft_names[] = {"unsealed", "sealed", "cache"};

const char *cairn_sector_ft_name(unsigned ft)
{
	switch (ft) {
	case CAIRN_SECTOR_UNSEALED: return ft_names[0];
	case CAIRN_SECTOR_SEALED: return ft_names[1];
	case CAIRN_SECTOR_CACHE: return ft_names[2];
	default: return NULL;
	}
}

int cairn_sector_ft_parse(unsigned *out, const char *s)
{
	unsigned ft = 0;

	while (*s) {
		size_t n = strcspn(s, ",");
		unsigned i;

		for (i = 0; i < 3; i++)
			if (strlen(ft_names[i]) == n && !strncmp(s, ft_names[i], n))
				break;
		if (i == 3)
			return cairn_error_set(CAIRN_EINVAL,
				"unknown sector file type '%.*s' (unsealed, sealed or cache)", (int)n, s);
		ft |= 1u << i;
		s += n;
		if (*s == ',')
			s++;
	}
	if (!ft)
		return cairn_error_set(CAIRN_EINVAL, "no sector file type given");
	*out = ft;
	return 0;
}

static const uint64_t proof_sizes[5] = {
	2048, 8ull << 20, 512ull << 20, 32ull << 30, 64ull << 30,
};

int cairn_sector_proof_size(uint64_t *size_out, unsigned proof)
{
	if (proof > 9)
		return cairn_error_set(CAIRN_EINVAL, "unknown seal proof type %u (0 to 9)", proof);
	*size_out = proof_sizes[proof % 5];
	return 0;
}

int cairn_sector_proof_for_size(unsigned *proof_out, uint64_t size)
{
	for (unsigned i = 0; i < 5; i++) {
		if (proof_sizes[i] == size) {
			*proof_out = 5 + i;
			return 0;
		}
	}
	return cairn_error_set(CAIRN_EINVAL,
		"%llu bytes is not a sector size (2KiB, 8MiB, 512MiB, 32GiB or 64GiB)",
		(unsigned long long)size);
}

int cairn_sector_size_parse(uint64_t *out, const char *s)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {{"", 0}, {"kib", 10}, {"mib", 20}, {"gib", 30}, {"tib", 40}, {"pib", 50}};
	const char *end;
	uint64_t v;

	if (parse_dec(&v, s, &end))
		return cairn_error_set(CAIRN_EINVAL, "'%s' is not a byte count (e.g. 2KiB, 32GiB)", s);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcasecmp(end, units[i].suffix)) {
			if (v > (UINT64_MAX >> units[i].shift))
				break;
			*out = v << units[i].shift;
			return 0;
		}
	}
	return cairn_error_set(CAIRN_EINVAL, "'%s' is not a byte count (e.g. 2KiB, 32GiB)", s);
}

uint64_t cairn_sector_space_use(unsigned ft, uint64_t sector_size, cairn_sector_path_type type)
{
	/* storiface FSOverheadSeal and FsOverheadFinalized (LH), over
	 * FSOverheadDen = 10. */
	static const uint64_t seal[3] = {10, 10, 141}, fin[3] = {10, 10, 1};
	const uint64_t *tab = type == CAIRN_SECTOR_PATH_SEALING ? seal : fin;
	uint64_t need = 0;

	for (unsigned i = 0; i < 3; i++)
		if (ft & (1u << i))
			need += tab[i] * sector_size / 10;
	return need;
}

char *cairn_sector__file_path(const char *dir, unsigned ft, const cairn_sector_id *sid)
{
	char name[CAIRN_SECTOR_NAME_MAX];
	cairn_buf b = CAIRN_BUF_INIT;

	cairn_sector_name(name, sid);
	cairn_buf_printf(&b, "%s/%s/%s", dir, cairn_sector_ft_name(ft), name);
	return (char *)cairn_buf_detach(&b, NULL);
}

int cairn_sector__mkdirs(const char *path, unsigned mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return cairn_error_set(CAIRN_EINVAL, "%s: path too long", path);
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return cairn_error_set(CAIRN_EIO, "%s: cannot create: %s", buf, strerror(errno));
		buf[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/* Depth-bounded walk: a cache directory is one level deep, a path three. */
static uint64_t du(const char *path, unsigned depth)
{
	struct stat st;
	uint64_t total = 0;
	DIR *d;
	struct dirent *e;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return (uint64_t)st.st_blocks * 512;
	if (depth > 16 || !(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, SECTOR_RESERVATIONS_DIR))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub))
			continue;
		total += du(sub, depth + 1);
	}
	closedir(d);
	return total;
}

uint64_t cairn_sector__disk_usage(const char *path)
{
	return du(path, 0);
}
