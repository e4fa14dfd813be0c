/* gen_dag.c: writes a CARv2 (with its index) holding a DAG shaped like a
 * chain's state: a persistent tree updated by path copying, one header per epoch.
 *
 * Epoch 0 is a full tree of FANOUT^DEPTH raw leaves under DAG-CBOR nodes of
 * FANOUT links. Each later epoch changes MODS random leaves and copies the
 * paths above them, so consecutive state roots share all but a few hundred
 * blocks, and a header [epoch, parent header, state root] links the epochs
 * into a chain. The root (printed) is the last header: every block is
 * reachable from it, most of them through thousands of parents.
 *
 *   gen_dag OUT.car NBLOCKS [SEED]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

#define FANOUT 8
#define DEPTH 6     /* 262,144 leaves, 37,449 nodes above them */
#define MODS 16

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void head(cairn_buf *b, uint8_t major, uint64_t v)
{
	if (v < 24) {
		cairn_buf_putc(b, (uint8_t)(major << 5 | v));
	} else if (v < 256) {
		cairn_buf_putc(b, (uint8_t)(major << 5 | 24));
		cairn_buf_putc(b, (uint8_t)v);
	} else if (v < 65536) {
		cairn_buf_putc(b, (uint8_t)(major << 5 | 25));
		cairn_buf_putc(b, (uint8_t)(v >> 8));
		cairn_buf_putc(b, (uint8_t)v);
	} else {
		cairn_buf_putc(b, (uint8_t)(major << 5 | 26));
		for (int i = 3; i >= 0; i--)
			cairn_buf_putc(b, (uint8_t)(v >> (8 * i)));
	}
}

static void link(cairn_buf *b, const cairn_cid *c)
{
	cairn_buf_putc(b, 0xd8);
	cairn_buf_putc(b, 42);
	head(b, 2, (uint64_t)c->len + 1);
	cairn_buf_putc(b, 0);
	cairn_buf_append(b, c->bytes, c->len);
}

static cairn_car_writer *w;
static uint64_t written;

static void put(cairn_cid *out, uint64_t codec, const cairn_buf *b)
{
	if (b->err || cairn_cid_compute(out, 1, codec,
					codec == CAIRN_CODEC_RAW ? CAIRN_MH_SHA2_256 : CAIRN_MH_BLAKE2B_256,
					b->data, b->len) ||
	    cairn_car_writer_put(w, out, b->data, b->len)) {
		fprintf(stderr, "gen_dag: %s\n", cairn_error_last());
		exit(1);
	}
	written++;
}

int main(int argc, char **argv)
{
	/* levels[0] is the root level (1 node); levels[DEPTH] the leaves. */
	cairn_cid *levels[DEPTH + 1];
	size_t width[DEPTH + 1];
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_cid header, placeholder;
	char str[CAIRN_CID_MAX_STRING];
	uint64_t target, epoch = 0;
	uint8_t zero[32] = {0};

	if (argc < 3) {
		fprintf(stderr, "usage: gen_dag OUT.car NBLOCKS [SEED]\n");
		return 2;
	}
	target = strtoull(argv[2], NULL, 10);
	rng = (argc > 3 ? strtoull(argv[3], NULL, 10) : 1) * 2654435761u + 1;
	/* The root is known last; a placeholder of the same length first. */
	cairn_cid_from_digest(&placeholder, 1, CAIRN_CODEC_DAG_CBOR, CAIRN_MH_BLAKE2B_256, zero, 32);
	if (cairn_car_writer_open(&w, argv[1], &placeholder, 1, NULL)) {
		fprintf(stderr, "gen_dag: %s\n", cairn_error_last());
		return 1;
	}
	for (int l = 0, n = 1; l <= DEPTH; l++, n *= FANOUT) {
		width[l] = (size_t)n;
		levels[l] = calloc(width[l], sizeof(cairn_cid));
	}
	/* Epoch 0: every leaf, then each level up. */
	for (size_t j = 0; j < width[DEPTH]; j++) {
		cairn_buf_clear(&b);
		cairn_buf_printf(&b, "leaf 0 %zu ", j);
		while (b.len < 40 + rnd() % 120)
			cairn_buf_putc(&b, (uint8_t)rnd());
		put(&levels[DEPTH][j], CAIRN_CODEC_RAW, &b);
	}
	for (int l = DEPTH - 1; l >= 0; l--) {
		for (size_t i = 0; i < width[l]; i++) {
			cairn_buf_clear(&b);
			head(&b, 4, FANOUT);
			for (size_t k = 0; k < FANOUT; k++)
				link(&b, &levels[l + 1][i * FANOUT + k]);
			put(&levels[l][i], CAIRN_CODEC_DAG_CBOR, &b);
		}
	}
	for (;;) {
		cairn_buf_clear(&b);
		head(&b, 4, epoch ? 3 : 2);
		head(&b, 0, epoch);
		if (epoch)
			link(&b, &header);
		link(&b, &levels[0][0]);
		put(&header, CAIRN_CODEC_DAG_CBOR, &b);
		if (written >= target)
			break;
		epoch++;
		{
			size_t changed[MODS];

			for (int m = 0; m < MODS; m++) {
				size_t j = (size_t)(rnd() % width[DEPTH]);

				changed[m] = j;
				cairn_buf_clear(&b);
				cairn_buf_printf(&b, "leaf %llu %zu ", (unsigned long long)epoch, j);
				while (b.len < 40 + rnd() % 120)
					cairn_buf_putc(&b, (uint8_t)rnd());
				put(&levels[DEPTH][j], CAIRN_CODEC_RAW, &b);
			}
			/* Copy the paths, each node once per epoch even where the
			 * paths meet. */
			for (int l = DEPTH - 1; l >= 0; l--) {
				for (int m = 0; m < MODS; m++) {
					size_t i = changed[m] / FANOUT;
					bool dup = false;

					for (int q = 0; q < m; q++)
						dup |= changed[q] == i; /* already moved up */
					changed[m] = i;
					if (dup)
						continue;
					cairn_buf_clear(&b);
					head(&b, 4, FANOUT);
					for (size_t k = 0; k < FANOUT; k++)
						link(&b, &levels[l + 1][i * FANOUT + k]);
					put(&levels[l][i], CAIRN_CODEC_DAG_CBOR, &b);
				}
			}
		}
	}
	if (cairn_car_writer_set_roots(w, &header, 1) || cairn_car_writer_finish(w)) {
		fprintf(stderr, "gen_dag: %s\n", cairn_error_last());
		return 1;
	}
	cairn_car_writer_free(w);
	cairn_cid_to_string(str, &header);
	printf("%s %llu %llu\n", str, (unsigned long long)written, (unsigned long long)epoch);
	for (int l = 0; l <= DEPTH; l++)
		free(levels[l]);
	cairn_buf_free(&b);
	return 0;
}
