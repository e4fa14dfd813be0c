/* test_commp.c: unit tests for CommP, piece CIDs and CommD: every vector of
 * the research notes (§3.2, §3.3) and go-commp-utils' CommD of a real
 * sector, on both SHA backends, against a plain reference tree, with writes
 * split everywhere and on several threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn.h"
#include "piece/piece_i.h"

#define CHUNK (127u << 13) /* the hasher's batch slot: 2^15 leaves */
#define GiB (UINT64_C(1) << 30)

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd() >> 56);
}

static void v1_string(char *out, const uint8_t commp[32])
{
	cairn_cid c;

	assert_int_equal(cairn_piece_cid_v1(&c, commp), 0);
	assert_true(cairn_cid_to_string(out, &c) > 0);
}

static void v2_string(char *out, const cairn_piece_info *info)
{
	cairn_cid c;

	assert_int_equal(cairn_piece_cid_v2(&c, info), 0);
	assert_true(cairn_cid_to_string(out, &c) > 0);
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* The tree as the notes define it, with nothing clever: the whole padded
 * piece in memory, every zero hashed. */
static void reference(cairn_piece_info *out, const uint8_t *p, size_t n)
{
	size_t quads = 1, leaves;
	uint8_t *buf;

	while (quads * 127 < n)
		quads *= 2;
	buf = calloc(quads, 128);
	memcpy(buf, p, n);
	assert_int_equal(cairn_fr32_pad(buf, buf, quads * 127), 0);
	for (leaves = quads * 4; leaves > 1; leaves /= 2) {
		for (size_t i = 0; i < leaves / 2; i++) {
			uint8_t d[32];
			SHA256_CTX ctx;

			SHA256_Init(&ctx);
			SHA256_Update(&ctx, buf + 64 * i, 64);
			SHA256_Final(d, &ctx);
			d[31] &= 0x3f;
			memcpy(buf + 32 * i, d, 32);
		}
	}
	memcpy(out->commp, buf, 32);
	out->payload_size = n;
	out->padded_size = quads * 128;
	free(buf);
}

static void check_same(const cairn_piece_info *a, const cairn_piece_info *b)
{
	assert_memory_equal(a->commp, b->commp, 32);
	assert_int_equal(a->payload_size, b->payload_size);
	assert_int_equal(a->padded_size, b->padded_size);
}

/* Runs `fn` once per SHA backend this machine has. */
static void each_backend(void (*fn)(void))
{
	cairn_piece__sha_select(CAIRN_PIECE__SHA_OPENSSL);
	fn();
	if (cairn_piece__sha_select(CAIRN_PIECE__SHA_SHANI) == CAIRN_PIECE__SHA_SHANI)
		fn();
	else
		print_message("no SHA-NI on this CPU: its path is not tested\n");
	if (cairn_piece__sha_select(CAIRN_PIECE__SHA_AVX512) == CAIRN_PIECE__SHA_AVX512)
		fn();
	else
		print_message("no AVX-512 on this CPU: its path is not tested\n");
	cairn_piece__sha_select(CAIRN_PIECE__SHA_AUTO);
}

/* ------------------------------------------------------------ vectors */

typedef struct {
	const char *data; /* "zero", "cc", "cat", "508" */
	size_t size;
	uint64_t padded;
	const char *v1;
	const char *v2; /* NULL when the notes do not give it */
} vector;

static const vector vectors[] = {
	{"zero", 96, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy", NULL},
	{"zero", 126, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy", NULL},
	{"zero", 127, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
	 "bafkzcibcaabdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"},
	{"zero", 192, 256, "baga6ea4seaqgiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy", NULL},
	{"zero", 254, 256, "baga6ea4seaqgiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy", NULL},
	{"zero", 255, 512, "baga6ea4seaqfpirydiugkk7up5v666wkm6n6jlw6lby2wxht5mwaqekerdfykjq", NULL},
	{"zero", 508, 512, "baga6ea4seaqfpirydiugkk7up5v666wkm6n6jlw6lby2wxht5mwaqekerdfykjq", NULL},
	{"zero", 509, 1024, "baga6ea4seaqb66wjlfkrbye6uqoemcyxmqylwmrm235uclwfpsyx3ge2imidoly", NULL},
	{"zero", 1016, 1024, "baga6ea4seaqb66wjlfkrbye6uqoemcyxmqylwmrm235uclwfpsyx3ge2imidoly", NULL},
	{"zero", 1017, 2048, "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy", NULL},
	{"zero", 1024, 2048, "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy", NULL},
	{"cc", 96, 128, "baga6ea4seaqhwcjhi4krhl3ht6dewnwevkpxbepxy7p7onwgz65t52typbsysby", NULL},
	{"cc", 126, 128, "baga6ea4seaqapbh46gdnszvb7fcinevsy5bzg3b4higkh7groptswf6zas6jamy", NULL},
	{"cc", 127, 128, "baga6ea4seaqmfldjtozgne6adk7eve2vdxte7vzlivae7nzsbrawobo546zkijq", NULL},
	{"cc", 1024, 2048, "baga6ea4seaqdlpnhgsndrgjeu4p46hahlsr4lybg6du4d56ooppdpxhcofxeuoi", NULL},
	{"cat", 127, 128, "baga6ea4seaqozp3abki6vgdf7ztbipcycmxfyt2o64cpuyvdkczsjxsg7bqmioi", NULL},
	{"508", 508, 512, "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
	 "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"},
	{"508", 1016, 1024, "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
	 "bafkzcibcaac542av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa"},
	{"508", 512, 1024, "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
	 "bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4"},
	{"508", 513, 1024, "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
	 "bafkzcibd64bqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4"},
	/* Under 127 bytes: what @web3-storage/data-segment gives (commp.mjs). */
	{"zero", 0, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
	 "bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"},
	{"zero", 1, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
	 "bafkzcibcpybdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"},
	{"zero", 64, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
	 "bafkzcibch4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"},
	{"zero", 65, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
	 "bafkzcibchybdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"},
	{"zero", 126, 128, "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
	 "bafkzcibcaebdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy"},
	{"zero", 128, 256, "baga6ea4seaqgiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy",
	 "bafkzcibcpybwiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy"},
};

static size_t vector_data(uint8_t *buf, const vector *v)
{
	static const char cat[] = "i am the biggest cat, what do you think about that";

	memset(buf, 0, v->size);
	if (!strcmp(v->data, "cc")) {
		memset(buf, 0xcc, v->size);
	} else if (!strcmp(v->data, "cat")) {
		memcpy(buf, cat, strlen(cat));
	} else if (!strcmp(v->data, "508")) {
		for (size_t i = 0; i < 508 && i < v->size; i++)
			buf[i] = (uint8_t)(i / 127);
	}
	return v->size;
}

static void run_vectors(void)
{
	uint8_t buf[2048];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const vector *v = &vectors[i];
		cairn_piece_info info, ref;
		char s[CAIRN_CID_MAX_STRING];
		size_t n = vector_data(buf, v);

		assert_int_equal(cairn_commp_sum(&info, buf, n, 1), 0);
		assert_int_equal(info.payload_size, n);
		assert_int_equal(info.padded_size, v->padded);
		assert_int_equal(info.padding, v->padded / 128 * 127 - n);
		v1_string(s, info.commp);
		assert_string_equal(s, v->v1);
		if (v->v2) {
			v2_string(s, &info);
			assert_string_equal(s, v->v2);
		}
		reference(&ref, buf, n);
		check_same(&info, &ref);
	}
}

static void test_vectors(void **state)
{
	(void)state;
	each_backend(run_vectors);
}

/* Piece CIDs of empty sectors straight from the zero table, and the raw
 * zero commitments the notes list. */
static void test_zero_pieces(void **state)
{
	static const struct {
		uint64_t size;
		const char *prefix, *suffix;
	} z[] = {
		{128, "3731bb99", "8333"},
		{256, "642a607e", "750f"},
		{2048, "fc7e9282", "f833"},
		{32 * GiB, "077e5fde", "a63e"},
		{64 * GiB, "e64005a6", "ce02"},
	};
	uint8_t commp[32];
	char h[65], s[CAIRN_CID_MAX_STRING];
	cairn_piece_info info;

	(void)state;
	for (size_t i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
		assert_int_equal(cairn_piece_zero_commp(commp, z[i].size), 0);
		hex(h, commp, 32);
		assert_memory_equal(h, z[i].prefix, 8);
		assert_string_equal(h + 64 - strlen(z[i].suffix), z[i].suffix);
	}
	assert_int_equal(cairn_piece_zero_commp(info.commp, 32 * GiB), 0);
	v1_string(s, info.commp);
	assert_string_equal(s, "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq");
	assert_int_equal(cairn_piece_sizes(&info, 32 * GiB / 128 * 127), 0);
	assert_int_equal(info.padded_size, 32 * GiB);
	v2_string(s, &info);
	assert_string_equal(s, "bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq");
	assert_int_equal(cairn_piece_zero_commp(info.commp, 64 * GiB), 0);
	assert_int_equal(cairn_piece_sizes(&info, 64 * GiB / 128 * 127), 0);
	v2_string(s, &info);
	assert_string_equal(s, "bafkzcibcaap6mqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq");
	/* Zero pieces of 128 bytes hash like 127 zero bytes of payload. */
	{
		uint8_t zeros[127] = {0};

		assert_int_equal(cairn_commp_sum(&info, zeros, 127, 1), 0);
		assert_int_equal(cairn_piece_zero_commp(commp, 128), 0);
		assert_memory_equal(info.commp, commp, 32);
	}
	assert_int_equal(cairn_piece_zero_commp(commp, 96), CAIRN_EINVAL);
	assert_int_equal(cairn_piece_zero_commp(commp, 16), CAIRN_EINVAL);
	assert_int_equal(cairn_piece_zero_commp(commp, UINT64_C(1) << 63), 0);
}

/* go-fil-commcid TestTreeHeight, and the size rules for small payloads. */
static void test_sizes(void **state)
{
	static const struct {
		uint64_t payload, padded, padding;
		unsigned height;
	} t[] = {
		{127, 128, 0, 2},
		{512, 1024, 504, 5},
		{32 * GiB, 64 * GiB, 33822867456u, 31},
		{32 * GiB / 128 * 127, 32 * GiB, 0, 30},
		{0, 128, 127, 2},
		{1, 128, 126, 2},
		{128, 256, 126, 3},
		{CAIRN_PIECE_MAX_PAYLOAD, UINT64_C(1) << 63, 0, 58},
	};
	cairn_piece_info info;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(cairn_piece_sizes(&info, t[i].payload), 0);
		assert_int_equal(info.payload_size, t[i].payload);
		assert_int_equal(info.padded_size, t[i].padded);
		assert_int_equal(info.height, t[i].height);
		assert_int_equal(info.padding, t[i].padding);
	}
	assert_int_equal(cairn_piece_sizes(&info, CAIRN_PIECE_MAX_PAYLOAD + 1), CAIRN_ETOOBIG);
}

/* ------------------------------------------------------- the SHA paths */

static void test_backends_agree(void **state)
{
	uint8_t in[64 * 1024], a[32 * 1024], b[32 * 1024], c[64 * 1024];

	(void)state;
	if (!cairn_piece__shani_usable()) {
		print_message("no SHA-NI on this CPU: skipped\n");
		skip();
	}
	for (int r = 0; r < 100; r++) {
		size_t n = r < 40 ? (size_t)r : (size_t)(1 + rnd() % 1024);

		fill_random(in, 64 * n);
		cairn_piece__hash_nodes_openssl(a, in, n);
		cairn_piece__hash_nodes_shani(b, in, n);
		assert_memory_equal(a, b, 32 * n);
		/* In place, as the tree is reduced. */
		memcpy(c, in, 64 * n);
		cairn_piece__hash_nodes_shani(c, c, n);
		assert_memory_equal(a, c, 32 * n);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(a[32 * i + 31] >> 6, 0);
	}
}

/* The wide path reduces runs of 32 leaves and more to 16 nodes; the last
 * levels and the root must match plain OpenSSL levels, in place. */
static void test_wide_reduce(void **state)
{
	size_t max = 1 << 12;
	uint8_t *in = malloc(32 * max), *a = malloc(32 * max), *b = malloc(32 * max);

	(void)state;
	if (!cairn_piece__avx512_usable()) {
		print_message("no AVX-512 on this CPU: skipped\n");
		free(in), free(a), free(b);
		skip();
	}
	for (size_t leaves = 32; leaves <= max; leaves *= 2) {
		for (int r = 0; r < 3; r++) {
			fill_random(in, 32 * leaves);
			memcpy(a, in, 32 * leaves);
			for (size_t n = leaves; n > 16; n /= 2)
				cairn_piece__hash_nodes_openssl(a, a, n / 2);
			memcpy(b, in, 32 * leaves);
			cairn_piece__reduce_avx512(b, leaves);
			assert_memory_equal(a, b, 16 * 32);
		}
	}
	cairn_piece__sha_select(CAIRN_PIECE__SHA_AVX512);
	for (size_t leaves = 1; leaves <= max; leaves *= 2) {
		fill_random(in, 32 * leaves);
		memcpy(a, in, 32 * leaves);
		for (size_t n = leaves; n > 1; n /= 2)
			cairn_piece__hash_nodes_openssl(a, a, n / 2);
		memcpy(b, in, 32 * leaves);
		cairn_piece__reduce(b, leaves);
		assert_memory_equal(a, b, 32);
	}
	cairn_piece__sha_select(CAIRN_PIECE__SHA_AUTO);
	free(in);
	free(a);
	free(b);
}

/* -------------------------------------------------------- streaming */

static void commp_in_writes(cairn_piece_info *out, const uint8_t *p, size_t n,
			    const size_t *cuts, size_t ncuts, unsigned threads)
{
	cairn_commp *c;
	size_t off = 0, i = 0;

	assert_int_equal(cairn_commp_new(&c, threads), 0);
	while (off < n) {
		size_t k = cuts[i++ % ncuts];

		if (k > n - off)
			k = n - off;
		assert_int_equal(cairn_commp_write(c, p + off, k), 0);
		off += k;
	}
	assert_int_equal(cairn_commp_finish(out, c), 0);
	cairn_commp_free(c);
}

static void run_every_split(void)
{
	uint8_t buf[1100];
	cairn_piece_info whole, part;

	fill_random(buf, sizeof(buf));
	assert_int_equal(cairn_commp_sum(&whole, buf, sizeof(buf), 1), 0);
	for (size_t cut = 0; cut <= sizeof(buf); cut++) {
		size_t cuts[2] = {cut ? cut : 1, sizeof(buf)};

		commp_in_writes(&part, buf, sizeof(buf), cuts, 2, 1);
		check_same(&whole, &part);
	}
	/* Byte by byte. */
	{
		size_t one = 1;

		commp_in_writes(&part, buf, sizeof(buf), &one, 1, 1);
		check_same(&whole, &part);
	}
}

static void test_every_split(void **state)
{
	(void)state;
	each_backend(run_every_split);
}

/* Sizes around the hasher's chunk and batch edges, on 1, 2 and 3 threads,
 * with random cuts, against the reference. */
static void run_large(void)
{
	const size_t sizes[] = {
		CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 4 * CHUNK, 4 * CHUNK + 127,
		8 * CHUNK, 9 * CHUNK + 5000, 13 * CHUNK + 77,
	};
	size_t max = 13 * CHUNK + 77, cuts[16];
	uint8_t *buf = malloc(max);

	fill_random(buf, max);
	for (int i = 0; i < 16; i++)
		cuts[i] = 1 + rnd() % (i % 3 ? 3 * CHUNK : 1000);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		cairn_piece_info ref, got;

		reference(&ref, buf, sizes[i]);
		for (unsigned th = 1; th <= 3; th++) {
			commp_in_writes(&got, buf, sizes[i], cuts, 16, th);
			check_same(&ref, &got);
		}
	}
	free(buf);
}

static void test_large(void **state)
{
	(void)state;
	each_backend(run_large);
}

static void test_random_sizes(void **state)
{
	size_t max = 3 * CHUNK;
	uint8_t *buf = malloc(max);

	(void)state;
	fill_random(buf, max);
	for (int r = 0; r < 30; r++) {
		size_t n = r < 10 ? (size_t)(rnd() % 2000) : (size_t)(rnd() % max);
		cairn_piece_info ref, got;

		reference(&ref, buf, n);
		assert_int_equal(cairn_commp_sum(&got, buf, n, 2), 0);
		check_same(&ref, &got);
	}
	free(buf);
}

/* Zero-copy writes: fill the lent buffer in random amounts. */
static void test_buffer_commit(void **state)
{
	size_t n = 5 * CHUNK + 999, off = 0;
	uint8_t *data = malloc(n);
	cairn_piece_info ref, got;
	cairn_commp *c;

	(void)state;
	fill_random(data, n);
	reference(&ref, data, n);
	for (unsigned th = 1; th <= 2; th++) {
		off = 0;
		assert_int_equal(cairn_commp_new(&c, th), 0);
		while (off < n) {
			uint8_t *buf;
			size_t room, k;

			assert_int_equal(cairn_commp_buffer(&buf, &room, c), 0);
			assert_true(room >= 1 && room <= CHUNK);
			k = 1 + rnd() % room;
			if (k > n - off)
				k = n - off;
			memcpy(buf, data + off, k);
			assert_int_equal(cairn_commp_commit(c, k), 0);
			off += k;
			/* Ordinary writes mix in. */
			if (off < n && rnd() % 4 == 0) {
				assert_int_equal(cairn_commp_write(c, data + off, 1), 0);
				off++;
			}
		}
		assert_int_equal(cairn_commp_commit(c, 0), 0);
		{
			uint8_t *buf;
			size_t room;

			assert_int_equal(cairn_commp_buffer(&buf, &room, c), 0);
			assert_int_equal(cairn_commp_commit(c, room + 1), CAIRN_EINVAL);
		}
		assert_int_equal(cairn_commp_finish(&got, c), 0);
		check_same(&ref, &got);
		{
			uint8_t *buf;
			size_t room;

			assert_int_equal(cairn_commp_buffer(&buf, &room, c), CAIRN_EINVAL);
			assert_null(buf);
			assert_int_equal(cairn_commp_commit(c, 1), CAIRN_EINVAL);
		}
		cairn_commp_free(c);
	}
	free(data);
}

/* Files read by the hashing threads, mixed with ordinary writes; a file
 * that ends early is a sticky error. */
static void test_write_file(void **state)
{
	size_t n = 11 * CHUNK + 4321;
	uint8_t *data = malloc(n);
	char path[] = "/tmp/cairn-test-commp-XXXXXX";
	int fd = mkstemp(path);
	cairn_piece_info ref, got;
	cairn_commp *c;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	fill_random(data, n);
	assert_int_equal(cairn_file_write_full(fd, data, n, "test file"), 0);
	reference(&ref, data, n);
	for (unsigned th = 1; th <= 3; th++) {
		/* 1000 bytes written, then the file from there in three calls. */
		assert_int_equal(cairn_commp_new(&c, th), 0);
		assert_int_equal(cairn_commp_write(c, data, 1000), 0);
		assert_int_equal(cairn_commp_write_file(c, fd, 1000, 3 * CHUNK, "test file"), 0);
		assert_int_equal(cairn_commp_write_file(c, fd, 1000 + 3 * CHUNK, 5, "test file"), 0);
		assert_int_equal(cairn_commp_write_file(c, fd, 1005 + 3 * CHUNK, n - 1005 - 3 * CHUNK,
							"test file"), 0);
		assert_int_equal(cairn_commp_finish(&got, c), 0);
		cairn_commp_free(c);
		check_same(&ref, &got);
	}
	/* Past the end of the file: found by a thread, reported later. */
	for (unsigned th = 1; th <= 2; th++) {
		int rc;

		assert_int_equal(cairn_commp_new(&c, th), 0);
		rc = cairn_commp_write_file(c, fd, n - 5 * CHUNK, 10 * CHUNK, "test file");
		if (rc == 0)
			rc = cairn_commp_finish(&got, c);
		assert_int_equal(rc, CAIRN_ECORRUPT);
		assert_non_null(strstr(cairn_error_last(), "test file"));
		assert_non_null(strstr(cairn_error_last(), "unexpected end of file"));
		assert_int_equal(cairn_commp_write(c, data, 1), CAIRN_ECORRUPT);
		assert_int_equal(cairn_commp_finish(&got, c), CAIRN_ECORRUPT);
		cairn_commp_free(c);
	}
	/* A bad descriptor. */
	assert_int_equal(cairn_commp_new(&c, 2), 0);
	assert_int_not_equal(cairn_commp_write_file(c, -5, 0, 100, NULL), 0);
	cairn_commp_free(c);
	close(fd);
	free(data);
}

static void test_hasher_errors(void **state)
{
	cairn_commp *c;
	cairn_piece_info info;

	(void)state;
	assert_int_equal(cairn_commp_new(&c, 1), 0);
	assert_int_equal(cairn_commp_finish(&info, c), 0);
	assert_int_equal(cairn_commp_finish(&info, c), CAIRN_EINVAL);
	assert_int_equal(cairn_commp_write(c, "x", 1), CAIRN_EINVAL);
	cairn_commp_free(c);
	cairn_commp_free(NULL);
	assert_int_equal(cairn_commp_new(&c, 5000), CAIRN_EINVAL);
	assert_null(c);
	/* Every allocation of new, failing in turn. */
	for (long k = 1; k < 20; k++) {
		int rc;

		cairn_alloc_fail_after(k, false);
		rc = cairn_commp_new(&c, 2);
		cairn_alloc_fail_after(-1, false);
		if (rc == 0) {
			cairn_commp_free(c);
			break;
		}
		assert_int_equal(rc, CAIRN_ENOMEM);
		assert_null(c);
	}
	/* No pool can start (every allocation fails from the first batch on):
	 * the batches are hashed in the caller, with the same result. */
	{
		size_t n = 9 * CHUNK + 3;
		uint8_t *buf = malloc(n);
		cairn_piece_info ref;

		fill_random(buf, n);
		reference(&ref, buf, n);
		assert_int_equal(cairn_commp_new(&c, 2), 0);
		cairn_alloc_fail_after(0, true);
		assert_int_equal(cairn_commp_write(c, buf, n), 0);
		assert_int_equal(cairn_commp_finish(&info, c), 0);
		cairn_alloc_fail_after(-1, false);
		cairn_commp_free(c);
		check_same(&ref, &info);
		free(buf);
	}
}

/* ----------------------------------------------------------- piece CIDs */

static void test_cid_decode(void **state)
{
	static const char *const v2s[] = {
		"bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
		"bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4",
		"bafkzcibd64bqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4",
		"bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
		"bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
	};
	static const uint64_t payloads[] = {508, 512, 513, 32 * GiB / 128 * 127, 0};
	cairn_piece_info info;
	cairn_cid cid, back;
	char s[CAIRN_CID_MAX_STRING];

	(void)state;
	for (size_t i = 0; i < sizeof(v2s) / sizeof(v2s[0]); i++) {
		assert_int_equal(cairn_cid_parse(&cid, v2s[i], strlen(v2s[i])), 0);
		assert_int_equal(cairn_piece_cid_decode(&info, &cid), 0);
		assert_int_equal(info.payload_size, payloads[i]);
		assert_int_equal(cairn_piece_cid_v2(&back, &info), 0);
		assert_true(cairn_cid_equal(&cid, &back));
	}
	/* A v1 gives the CommP and no sizes. */
	assert_int_equal(cairn_cid_parse(&cid, "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi", 64), 0);
	assert_int_equal(cairn_piece_cid_decode(&info, &cid), 0);
	assert_int_equal(info.padded_size, 0);
	v1_string(s, info.commp);
	assert_string_equal(s, "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi");
	/* Not a piece CID. */
	assert_int_equal(cairn_cid_parse(&cid, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", 59), 0);
	assert_int_equal(cairn_piece_cid_decode(&info, &cid), CAIRN_EINVAL);
	/* Malformed digests, built by hand. */
	{
		uint8_t d[64] = {0};
		struct {
			size_t len;
			uint8_t b0, b1, b2;
			int rc;
		} bad[] = {
			{34, 0x00, 0x01, 0, CAIRN_ECORRUPT},      /* height 1 */
			{34, 0x00, 59, 0, CAIRN_EUNSUPPORTED},    /* height 59 */
			{34, 0x7f, 0x03, 0, CAIRN_ECORRUPT},      /* padding 127 of 254: half */
			{35, 0x80, 0x01, 0x02, CAIRN_ECORRUPT},   /* padding 128 at height 2 */
			{35, 0x80, 0x00, 0x02, CAIRN_ECORRUPT},   /* non-minimal varint */
			{33, 0x00, 0x02, 0, CAIRN_ECORRUPT},      /* short */
			{36, 0x00, 0x02, 0, CAIRN_ECORRUPT},      /* long */
			{34, 0x00, 0x02, 0, 0},                   /* padding 0 at height 2 */
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			memset(d, 0, sizeof(d));
			d[0] = bad[i].b0;
			d[1] = bad[i].b1;
			d[2] = bad[i].b2;
			assert_int_equal(cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW,
				CAIRN_MH_FR32_SHA256_TRUNC254_PADBINTREE, d, bad[i].len), 0);
			assert_int_equal(cairn_piece_cid_decode(&info, &cid), bad[i].rc);
		}
		/* Padding 126 of 254 at height 3 is fine; 127 at height 2 too. */
		d[0] = 126, d[1] = 3;
		assert_int_equal(cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW,
			CAIRN_MH_FR32_SHA256_TRUNC254_PADBINTREE, d, 34), 0);
		assert_int_equal(cairn_piece_cid_decode(&info, &cid), 0);
		assert_int_equal(info.payload_size, 128);
		d[0] = 127, d[1] = 2;
		assert_int_equal(cairn_cid_from_digest(&cid, 1, CAIRN_CODEC_RAW,
			CAIRN_MH_FR32_SHA256_TRUNC254_PADBINTREE, d, 34), 0);
		assert_int_equal(cairn_piece_cid_decode(&info, &cid), 0);
		assert_int_equal(info.payload_size, 0);
	}
	/* Building refuses what parsing would. */
	memset(&info, 0, sizeof(info));
	info.height = 1;
	assert_int_equal(cairn_piece_cid_v2(&cid, &info), CAIRN_EINVAL);
	info.height = 2;
	info.padding = 128;
	assert_int_equal(cairn_piece_cid_v2(&cid, &info), CAIRN_EINVAL);
}

/* ----------------------------------------------------------------- CommD */

static void piece_from_v1(cairn_piece_info *p, const char *cid, uint64_t size)
{
	cairn_cid c;

	assert_int_equal(cairn_cid_parse(&c, cid, strlen(cid)), 0);
	assert_int_equal(cairn_piece_cid_decode(p, &c), 0);
	p->padded_size = size;
}

static void test_commd(void **state)
{
	/* go-commp-utils commd_test.go: sector f01392893:139074. */
	static const struct {
		const char *cid;
		uint64_t mib;
	} deals[] = {
		{"baga6ea4seaqknzm22isnhsxt2s4dnw45kfywmhenngqq3nc7jvecakoca6ksyhy", 256},
		{"baga6ea4seaqnq6o5wuewdpviyoafno4rdpqnokz6ghvg2iyeyfbqxgcwdlj2egi", 1024},
		{"baga6ea4seaqpixk4ifbkzato3huzycj6ty6gllqwanhdpsvxikawyl5bg2h44mq", 512},
		{"baga6ea4seaqaxwe5dy6nt3ko5tngtmzvpqxqikw5mdwfjqgaxfwtzenc6bgzajq", 512},
		{"baga6ea4seaqpy33nbesa4d6ot2ygeuy43y4t7amc4izt52mlotqenwcmn2kyaai", 1024},
		{"baga6ea4seaqphvv4x2s2v7ykgc3ugs2kkltbdeg7icxstklkrgqvv72m2v3i2aa", 256},
		{"baga6ea4seaqf5u55znk6jwhdsrhe37emzhmehiyvjxpsww274f6fiy3h4yctady", 512},
		{"baga6ea4seaqa3qbabsbmvk5er6rhsjzt74beplzgulthamm22jue4zgqcuszofi", 1024},
		{"baga6ea4seaqiekvf623muj6jpxg6vsqaikyw3r4ob5u7363z7zcaixqvfqsc2ji", 256},
		{"baga6ea4seaqhsewv65z2d4m5o4vo65vl5o6z4bcegdvgnusvlt7rao44gro36pi", 512},
	};
	cairn_piece_info p[12];
	uint8_t commd[32];
	char s[CAIRN_CID_MAX_STRING];

	(void)state;
	for (size_t i = 0; i < 10; i++)
		piece_from_v1(&p[i], deals[i].cid, deals[i].mib << 20);
	/* As the Go test gives it, with the zero pieces filling the sector... */
	assert_int_equal(cairn_piece_zero_commp(p[10].commp, 8 * GiB), 0);
	p[10].padded_size = 8 * GiB;
	assert_int_equal(cairn_piece_zero_commp(p[11].commp, 16 * GiB), 0);
	p[11].padded_size = 16 * GiB;
	assert_int_equal(cairn_piece_commd(commd, 32 * GiB, p, 12), 0);
	v1_string(s, commd);
	assert_string_equal(s, "baga6ea4seaqiw3gbmstmexb7sqwkc5r23o3i7zcyx5kr76pfobpykes3af62kca");
	/* ...and without them: cairn fills the sector itself. */
	memset(commd, 0, 32);
	assert_int_equal(cairn_piece_commd(commd, 32 * GiB, p, 10), 0);
	v1_string(s, commd);
	assert_string_equal(s, "baga6ea4seaqiw3gbmstmexb7sqwkc5r23o3i7zcyx5kr76pfobpykes3af62kca");
	/* The empty sector. */
	assert_int_equal(cairn_piece_commd(commd, 32 * GiB, NULL, 0), 0);
	v1_string(s, commd);
	assert_string_equal(s, "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq");
	/* One piece filling the sector is its own CommD. */
	assert_int_equal(cairn_piece_commd(commd, 256 << 20, p, 1), 0);
	assert_memory_equal(commd, p[0].commp, 32);
	/* go-commp-utils commp_test.go: a 128-byte piece zero-padded to 512
	 * bytes equals the CommP of its data zero-filled to 4 * 127 bytes. */
	{
		uint8_t data[508] = {0};
		cairn_piece_info small, big;

		for (int i = 0; i < 127; i++)
			data[i] = (uint8_t)(i * 13 + 7);
		assert_int_equal(cairn_commp_sum(&small, data, 127, 1), 0);
		assert_int_equal(cairn_commp_sum(&big, data, 508, 1), 0);
		assert_int_equal(cairn_piece_commd(commd, 512, &small, 1), 0);
		assert_memory_equal(commd, big.commp, 32);
	}
	/* A piece after a smaller one is aligned to its own size: 128 then 256
	 * in 512 is [a, 0, b, b]. */
	{
		uint8_t data[127 * 4], a_pad[127 * 4] = {0};
		cairn_piece_info pieces[2], whole;

		fill_random(data, sizeof(data));
		assert_int_equal(cairn_commp_sum(&pieces[0], data, 127, 1), 0);
		assert_int_equal(cairn_commp_sum(&pieces[1], data + 127, 254, 1), 0);
		memcpy(a_pad, data, 127);
		memcpy(a_pad + 254, data + 127, 254);
		assert_int_equal(cairn_commp_sum(&whole, a_pad, sizeof(a_pad), 1), 0);
		assert_int_equal(cairn_piece_commd(commd, 512, pieces, 2), 0);
		assert_memory_equal(commd, whole.commp, 32);
	}
	/* Errors. */
	assert_int_equal(cairn_piece_commd(commd, 1000, NULL, 0), CAIRN_EINVAL);
	assert_int_equal(cairn_piece_commd(commd, 64, NULL, 0), CAIRN_EINVAL);
	p[0].padded_size = 100;
	assert_int_equal(cairn_piece_commd(commd, 32 * GiB, p, 1), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "piece 0"));
	p[0].padded_size = 64 * GiB;
	assert_int_equal(cairn_piece_commd(commd, 32 * GiB, p, 1), CAIRN_EINVAL);
	p[0].padded_size = 256 << 20;
	/* 5888 MiB of deals do not fit 4 GiB. */
	assert_int_equal(cairn_piece_commd(commd, 4 * GiB, p, 10), CAIRN_EINVAL);
	assert_non_null(strstr(cairn_error_last(), "do not fit"));
	/* Two sector-sized pieces. */
	p[1].padded_size = 256 << 20;
	assert_int_equal(cairn_piece_commd(commd, 256 << 20, p, 2), CAIRN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_zero_pieces),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_backends_agree),
		cmocka_unit_test(test_wide_reduce),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_random_sizes),
		cmocka_unit_test(test_buffer_commit),
		cmocka_unit_test(test_write_file),
		cmocka_unit_test(test_hasher_errors),
		cmocka_unit_test(test_cid_decode),
		cmocka_unit_test(test_commd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
