/* commp.c: the streaming piece commitment (CommP) hasher: payload bytes in,
 * fr32-padded and hashed into a binary Merkle tree, on a pool of threads.
 *
 * Design:
 * - The payload is cut into chunks of CHUNK_IN = 127 * 2^13 bytes. A chunk
 *   pads to exactly 1 MiB: 2^15 leaves, an aligned subtree whose root sits
 *   at level 15. Each chunk is copied into a 1 MiB slot (or read straight
 *   into it: cairn_commp_buffer), fr32-padded in place (backwards) and
 *   reduced in place level by level (cairn_piece__reduce: AVX-512 for the
 *   wide levels where there is one); the slot's first 32 bytes end up as
 *   the subtree root. A slot stays in L2 throughout.
 * - Slots come in batches. With a pool, there are two batches: the caller
 *   fills one while the workers hash the other, so reading the input and
 *   hashing overlap. When the filling batch is full, the hasher waits for
 *   the other, collects its roots and hands over the new one. One thread
 *   means one batch of one slot, hashed in the caller.
 * - Roots go, in payload order, into a stack with at most one pending node
 *   per level (a binary counter): pushing a node at level L hashes it with
 *   the pending left sibling at L, if any, and carries upwards.
 * - At finish the last partial chunk is zero-filled to a whole quad, padded,
 *   and split into aligned power-of-two runs of leaves (its leaf count in
 *   binary), each reduced and pushed at its level. The tree is then closed
 *   with the zero-subtree table: a pending node with no right sibling is
 *   hashed with the zero root of its level. No zero is ever hashed.
 * - cairn_commp_write_file leaves whole chunks to be read by the job that
 *   hashes them (pread), so reading is spread over the cores and the bytes
 *   land in the cache of the core that pads them. A failed read is kept
 *   in its slot and becomes the hasher's sticky error when collected.
 * - The pool starts only when a first batch fills, so small inputs create
 *   no threads. A job that cannot be queued (out of memory) runs inline,
 *   so hashing itself has no failure path.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "piece_i.h"

#define CHUNK_LEVEL 15                          /* leaves per chunk: 2^15 */
#define SLOT_SIZE ((size_t)32 << CHUNK_LEVEL)   /* 1 MiB, padded */
#define CHUNK_IN (SLOT_SIZE / 128 * 127)        /* 1,040,384 payload bytes */
#define SLOTS_PER_THREAD 2

typedef struct slot {
	uint8_t *buf;      /* SLOT_SIZE bytes */
	size_t len;        /* payload bytes in it (or to be read into it) */
	int fd;            /* >= 0: the job reads the chunk from here first */
	uint64_t off;
	const char *what;  /* the file's name, for messages */
	int err;           /* the job's failure, and its message */
	char msg[256];
} slot;

struct cairn_commp {
	unsigned nthreads;
	cairn_pool *pool;      /* started when the first batch fills */
	size_t nslots;         /* per batch */
	slot *slots;           /* nbatches * nslots */
	int nbatches;          /* 2 with threads, else 1 */
	int cur;               /* the batch being filled */
	size_t cur_slot;       /* the slot being filled in it */
	bool busy;             /* the other batch is on the pool */
	bool finished;
	int err;               /* sticky: a read in a job failed */
	char msg[256];
	uint64_t payload;
	uint64_t pending_mask; /* bit L: stack[L] holds a node */
	uint8_t stack[CAIRN_PIECE__MAX_LEVEL + 1][32];
};

/* A full chunk: read it if it is to be read, pad in place and reduce to the
 * root at buf[0..32). A failed read is kept in the slot for collect(). */
static void hash_chunk(void *arg)
{
	slot *s = arg;

	if (s->fd >= 0) {
		s->err = cairn_file_pread_full(s->fd, s->buf, CHUNK_IN, s->off, s->what);
		s->fd = -1;
		if (s->err) {
			snprintf(s->msg, sizeof(s->msg), "%s", cairn_error_last());
			return;
		}
	}
	cairn_fr32_pad(s->buf, s->buf, CHUNK_IN);
	cairn_piece__reduce(s->buf, (size_t)1 << CHUNK_LEVEL);
}

/* H(left || right) into out (which may be either input). */
static void hash_pair(uint8_t out[32], const uint8_t left[32], const uint8_t right[32])
{
	uint8_t pair[64];

	memcpy(pair, left, 32);
	memcpy(pair + 32, right, 32);
	cairn_piece__hash_nodes(pair, pair, 1);
	memcpy(out, pair, 32);
}

static void push(cairn_commp *c, unsigned level, const uint8_t node[32])
{
	uint8_t cur[32];

	memcpy(cur, node, 32);
	while (c->pending_mask & (UINT64_C(1) << level)) {
		hash_pair(cur, c->stack[level], cur);
		c->pending_mask &= ~(UINT64_C(1) << level);
		level++;
	}
	memcpy(c->stack[level], cur, 32);
	c->pending_mask |= UINT64_C(1) << level;
}

static slot *batch(cairn_commp *c, int b)
{
	return c->slots + (size_t)b * c->nslots;
}

/* Hashes the first `n` slots of batch b on the pool (or inline). */
static void start_batch(cairn_commp *c, int b, size_t n)
{
	slot *s = batch(c, b);

	for (size_t i = 0; i < n; i++) {
		if (!c->pool || cairn_pool_submit(c->pool, hash_chunk, &s[i]))
			hash_chunk(&s[i]);
	}
}

/* Waits for the batch on the pool and pushes its roots in order. */
static void collect(cairn_commp *c, int b, size_t n)
{
	slot *s = batch(c, b);

	if (c->pool)
		cairn_pool_wait(c->pool);
	for (size_t i = 0; i < n; i++) {
		/* After a failed read the tree is wrong: keep the first error,
		 * and the hasher refuses all further work. */
		if (s[i].err && !c->err) {
			c->err = s[i].err;
			memcpy(c->msg, s[i].msg, sizeof(c->msg));
		}
		s[i].err = 0;
		if (!c->err)
			push(c, CHUNK_LEVEL, s[i].buf);
		s[i].len = 0;
	}
}

/* The filling batch is full: hand it over and switch to the other. */
static void batch_full(cairn_commp *c)
{
	int other = c->nbatches - 1 - c->cur;

	if (c->nbatches == 1) {
		start_batch(c, c->cur, c->nslots);
		collect(c, c->cur, c->nslots);
		c->cur_slot = 0;
		return;
	}
	/* Start the threads on first need; without them, hash inline. */
	if (!c->pool && cairn_pool_new(&c->pool, c->nthreads))
		c->pool = NULL;
	if (c->busy)
		collect(c, other, c->nslots);
	start_batch(c, c->cur, c->nslots);
	c->busy = true;
	c->cur = other;
	c->cur_slot = 0;
}

int cairn_commp_new(cairn_commp **out, unsigned nthreads)
{
	cairn_commp *c;
	size_t total;

	*out = NULL;
	if (nthreads == 0) {
		/* One per online core, as the pool counts them. */
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n > 0 ? (unsigned)n : 1;
	}
	if (nthreads > 1024)
		return cairn_error_set(CAIRN_EINVAL, "commp: %u threads is too many", nthreads);
	if (!(c = cairn_calloc(1, sizeof(*c))))
		return CAIRN_ENOMEM;
	c->nthreads = nthreads;
	c->nbatches = nthreads > 1 ? 2 : 1;
	c->nslots = nthreads > 1 ? (size_t)nthreads * SLOTS_PER_THREAD : 1;
	total = (size_t)c->nbatches * c->nslots;
	if (!(c->slots = cairn_calloc(total, sizeof(slot))))
		goto oom;
	for (size_t i = 0; i < total; i++) {
		c->slots[i].fd = -1;
		if (!(c->slots[i].buf = cairn_malloc(SLOT_SIZE)))
			goto oom;
	}
	*out = c;
	return 0;
oom:
	cairn_commp_free(c);
	return CAIRN_ENOMEM;
}

static int refuses(const cairn_commp *c, uint64_t n)
{
	if (c->err)
		return cairn_error_set(c->err, "%s", c->msg);
	if (c->finished)
		return cairn_error_set(CAIRN_EINVAL, "commp: write after finish");
	if (n > CAIRN_PIECE_MAX_PAYLOAD - c->payload)
		return cairn_error_set(CAIRN_ETOOBIG,
			"commp: at byte %llu: a payload over %llu bytes has no piece size",
			(unsigned long long)c->payload, (unsigned long long)CAIRN_PIECE_MAX_PAYLOAD);
	return 0;
}

/* Accounts for k bytes just put in the current slot. */
static void advance(cairn_commp *c, size_t k)
{
	slot *s = &batch(c, c->cur)[c->cur_slot];

	s->len += k;
	c->payload += k;
	if (s->len == CHUNK_IN && ++c->cur_slot == c->nslots)
		batch_full(c);
}

int cairn_commp_write(cairn_commp *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	int rc;

	if ((rc = refuses(c, n)))
		return rc;
	while (n) {
		slot *s = &batch(c, c->cur)[c->cur_slot];
		size_t k = CHUNK_IN - s->len;

		if (k > n)
			k = n;
		memcpy(s->buf + s->len, b, k);
		b += k;
		n -= k;
		advance(c, k);
	}
	return c->err ? refuses(c, 0) : 0;
}

int cairn_commp_write_file(cairn_commp *c, int fd, uint64_t off, uint64_t len, const char *what)
{
	int rc;

	if ((rc = refuses(c, len)))
		return rc;
	while (len && !c->err) {
		slot *s = &batch(c, c->cur)[c->cur_slot];
		size_t k = CHUNK_IN - s->len;

		if (k > len)
			k = (size_t)len;
		if (k == CHUNK_IN) {
			/* A whole chunk: the job reads it, on its own core. */
			s->fd = fd;
			s->off = off;
			s->what = what;
		} else if ((rc = cairn_file_pread_full(fd, s->buf + s->len, k, off, what))) {
			return rc;
		}
		off += k;
		len -= k;
		advance(c, k);
	}
	return c->err ? refuses(c, 0) : 0;
}

int cairn_commp_buffer(uint8_t **buf_out, size_t *len_out, cairn_commp *c)
{
	slot *s = &batch(c, c->cur)[c->cur_slot];
	uint64_t room = CAIRN_PIECE_MAX_PAYLOAD - c->payload;
	int rc;

	*buf_out = NULL;
	*len_out = 0;
	if ((rc = refuses(c, 1)))
		return rc;
	*buf_out = s->buf + s->len;
	*len_out = room < CHUNK_IN - s->len ? (size_t)room : CHUNK_IN - s->len;
	return 0;
}

int cairn_commp_commit(cairn_commp *c, size_t n)
{
	slot *s = &batch(c, c->cur)[c->cur_slot];
	int rc;

	if (!n)
		return 0;
	if ((rc = refuses(c, n)))
		return rc;
	if (n > CHUNK_IN - s->len)
		return cairn_error_set(CAIRN_EINVAL,
			"commp: commit of %zu bytes, more than the buffer lent (%zu)", n, CHUNK_IN - s->len);
	advance(c, n);
	return c->err ? refuses(c, 0) : 0;
}

/* The last, partial chunk: zero-fill to a whole quad, pad, and push its
 * leaves as aligned power-of-two runs, largest first. */
static void tail(cairn_commp *c, slot *s)
{
	size_t quads = (s->len + CAIRN_FR32_IN_QUAD - 1) / CAIRN_FR32_IN_QUAD;
	size_t in = quads * CAIRN_FR32_IN_QUAD, leaves = quads * 4, off = 0;

	memset(s->buf + s->len, 0, in - s->len);
	cairn_fr32_pad(s->buf, s->buf, in);
	for (int level = CHUNK_LEVEL; level >= 0; level--) {
		size_t run = (size_t)1 << level;

		if (!(leaves & run))
			continue;
		cairn_piece__reduce(s->buf + 32 * off, run);
		push(c, (unsigned)level, s->buf + 32 * off);
		off += run;
	}
	s->len = 0;
}

int cairn_commp_finish(cairn_piece_info *out, cairn_commp *c)
{
	const uint8_t (*zero)[32] = cairn_piece__zero_table();
	uint8_t cur[32];
	bool have = false;
	size_t full = c->cur_slot;
	slot *s = batch(c, c->cur);
	int rc;

	if (c->err)
		return refuses(c, 0);
	if (c->finished)
		return cairn_error_set(CAIRN_EINVAL, "commp: finish called twice");
	c->finished = true;
	if ((rc = cairn_piece_sizes(out, c->payload)))
		return rc;
	if (c->busy) {
		collect(c, c->nbatches - 1 - c->cur, c->nslots);
		c->busy = false;
	}
	start_batch(c, c->cur, full);
	collect(c, c->cur, full);
	if (c->err)
		return cairn_error_set(c->err, "%s", c->msg);
	if (s[full].len)
		tail(c, &s[full]);
	/* Close the tree: walk up from the leaves carrying the rightmost
	 * partial subtree; a level's pending node is its left sibling, and a
	 * node with none to its right is paired with that level's zero root. */
	for (unsigned level = 0; level < out->height; level++) {
		bool left = c->pending_mask & (UINT64_C(1) << level);

		if (have && left)
			hash_pair(cur, c->stack[level], cur);
		else if (have)
			hash_pair(cur, cur, zero[level]);
		else if (left)
			hash_pair(cur, c->stack[level], zero[level]);
		have = have || left;
	}
	if (have)
		memcpy(out->commp, cur, 32);
	else if (c->pending_mask & (UINT64_C(1) << out->height))
		memcpy(out->commp, c->stack[out->height], 32); /* a whole power of two */
	else
		memcpy(out->commp, zero[out->height], 32);     /* an empty payload */
	return 0;
}

void cairn_commp_free(cairn_commp *c)
{
	if (!c)
		return;
	/* The pool finishes queued jobs before it stops: they use the slots. */
	cairn_pool_free(c->pool);
	if (c->slots)
		for (size_t i = 0; i < (size_t)c->nbatches * c->nslots; i++)
			cairn_free(c->slots[i].buf);
	cairn_free(c->slots);
	cairn_free(c);
}

int cairn_commp_sum(cairn_piece_info *out, const void *p, size_t n, unsigned nthreads)
{
	cairn_commp *c;
	int rc;

	if ((rc = cairn_commp_new(&c, nthreads)))
		return rc;
	if (!(rc = cairn_commp_write(c, p, n)))
		rc = cairn_commp_finish(out, c);
	cairn_commp_free(c);
	return rc;
}

int cairn_piece_sizes(cairn_piece_info *out, uint64_t payload_size)
{
	uint64_t quads, pow = 1;

	if (payload_size > CAIRN_PIECE_MAX_PAYLOAD)
		return cairn_error_set(CAIRN_ETOOBIG,
			"piece: a payload of %llu bytes is over the limit of %llu",
			(unsigned long long)payload_size, (unsigned long long)CAIRN_PIECE_MAX_PAYLOAD);
	/* The smallest power of two of quads that holds the payload; an empty
	 * payload still makes one quad, as data-segment does. */
	quads = (payload_size + CAIRN_FR32_IN_QUAD - 1) / CAIRN_FR32_IN_QUAD;
	while (pow < quads)
		pow <<= 1;
	out->payload_size = payload_size;
	out->padded_size = pow * CAIRN_FR32_OUT_QUAD;
	out->height = (unsigned)(63 - __builtin_clzll(out->padded_size)) - 5;
	out->padding = pow * CAIRN_FR32_IN_QUAD - payload_size;
	return 0;
}
