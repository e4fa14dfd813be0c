/* verify.c: hashing every block of a CAR against its CID on all cores, one
 * batch of sections read while the previous one is hashed. */
#include <stdio.h>
#include <string.h>

#include "car_i.h"

#define BATCH_BYTES (16u << 20)

typedef struct {
	cairn_cid cid;
	uint64_t file_offset;
	size_t at;          /* where the block starts in the batch buffer */
	size_t len;
} item;

typedef struct batch batch;

typedef struct {
	batch *b;
	size_t from, to;
	int rc;
	size_t bad;         /* first failing item */
	char msg[512];
} stripe;

struct batch {
	const char *name;   /* the CAR, for messages */
	uint8_t *buf;
	size_t cap, used;
	item *items;
	size_t nitems, items_cap;
	stripe stripes[64];
	unsigned nstripes;
};

static void hash_stripe(void *arg)
{
	stripe *s = arg;

	s->rc = 0;
	for (size_t i = s->from; i < s->to; i++) {
		const item *it = &s->b->items[i];
		int rc = cairn_cid_verify(&it->cid, s->b->buf + it->at, it->len);

		if (rc) {
			/* The message is per thread: keep it for the reader's thread. */
			s->rc = rc;
			s->bad = i;
			snprintf(s->msg, sizeof(s->msg), "%s: section at byte %llu: %s", s->b->name,
				 (unsigned long long)it->file_offset, cairn_error_last());
			return;
		}
	}
}

static int add_item(batch *b, const cairn_car_section *sec)
{
	item *it;

	if (b->nitems == b->items_cap) {
		size_t cap = b->items_cap ? b->items_cap * 2 : 4096;
		item *p = cairn_realloc(b->items, cap * sizeof(*p));
		if (!p)
			return CAIRN_ENOMEM;
		b->items = p;
		b->items_cap = cap;
	}
	if (b->used + sec->block_len > b->cap) {
		/* Only a section larger than the whole batch gets here (the
		 * caller starts a new batch when one does not fit). */
		uint8_t *p = cairn_realloc(b->buf, b->used + (size_t)sec->block_len);
		if (!p)
			return CAIRN_ENOMEM;
		b->buf = p;
		b->cap = b->used + (size_t)sec->block_len;
	}
	it = &b->items[b->nitems++];
	it->cid = sec->cid;
	it->file_offset = sec->file_offset;
	it->at = b->used;
	it->len = (size_t)sec->block_len;
	if (it->len)
		memcpy(b->buf + b->used, sec->block, it->len);
	b->used += it->len;
	return 0;
}

/* Splits a batch into one stripe per thread, by bytes, and queues them. */
static int start(cairn_pool *pool, batch *b, unsigned threads)
{
	size_t per = b->used / threads + 1, i = 0;
	int rc;

	b->nstripes = 0;
	while (i < b->nitems && b->nstripes < 64) {
		stripe *s = &b->stripes[b->nstripes++];
		size_t bytes = 0;

		s->b = b;
		s->from = i;
		s->rc = 0;
		while (i < b->nitems && (bytes < per || b->nstripes == threads))
			bytes += b->items[i++].len + 64; /* + per-CID cost */
		s->to = i;
	}
	for (unsigned k = 0; k < b->nstripes; k++)
		if ((rc = cairn_pool_submit(pool, hash_stripe, &b->stripes[k])))
			return rc;
	return 0;
}

/* After cairn_pool_wait: the first failure of the batch, in file order. */
static int finish(batch *b, cairn_car_stats *out)
{
	for (unsigned k = 0; k < b->nstripes; k++) {
		stripe *s = &b->stripes[k];

		if (s->rc) {
			out->blocks += s->bad;
			for (size_t i = 0; i < s->bad; i++)
				out->block_bytes += b->items[i].len;
			return cairn_error_set(s->rc, "%s", s->msg);
		}
	}
	out->blocks += b->nitems;
	out->block_bytes += b->used;
	return 0;
}

int cairn_car_verify(cairn_car_stats *out, cairn_car_reader *r, unsigned threads,
		     cairn_progress *progress, cairn_car_section_fn fn, void *payload)
{
	batch batches[2];
	batch *fill = &batches[0], *hashing = NULL;
	cairn_pool *pool = NULL;
	cairn_car_section sec;
	bool was_trusted = cairn_car__reader_set_trusted(r, true);
	int rc, more = 1;

	memset(out, 0, sizeof(*out));
	memset(batches, 0, sizeof(batches));
	if ((rc = cairn_pool_new(&pool, threads)))
		goto done;
	threads = cairn_pool_size(pool);
	if (threads > 64)
		threads = 64; /* stripes per batch */
	for (int k = 0; k < 2; k++) {
		if (!(batches[k].buf = cairn_malloc(BATCH_BYTES))) {
			rc = CAIRN_ENOMEM;
			goto done;
		}
		batches[k].cap = BATCH_BYTES;
		batches[k].name = cairn_car__reader_name(r);
	}
	while (more) {
		uint64_t walked = 0;

		fill->used = fill->nitems = 0;
		/* Fill while the other batch is being hashed. */
		while (fill->used < BATCH_BYTES) {
			more = cairn_car_reader_next(r, &sec, true);
			if (more < 0) {
				rc = more;
				break;
			}
			if (more == 0)
				break;
			if (fn) {
				const uint8_t *block = sec.block;

				sec.block = NULL;
				rc = fn(&sec, payload);
				sec.block = block;
				if (rc) {
					more = -1;
					break;
				}
			}
			if ((rc = add_item(fill, &sec)))
				break;
			walked = sec.block_offset + sec.block_len;
		}
		if (hashing) {
			cairn_pool_wait(pool);
			int hrc = finish(hashing, out);
			if (hrc) {
				rc = hrc; /* an earlier block failed first */
				goto done;
			}
		}
		if (rc) {
			/* A read failure comes after every block already in the
			 * batch: hash those first, so the first error in file
			 * order is the one reported. */
			int hrc = 0;

			if (fill->nitems && !(hrc = start(pool, fill, threads))) {
				cairn_pool_wait(pool);
				hrc = finish(fill, out);
			}
			if (hrc)
				rc = hrc;
			goto done;
		}
		if (fill->nitems && (rc = start(pool, fill, threads)))
			goto done;
		if (walked) {
			out->data_bytes = walked - cairn_car_reader_data_offset(r);
			if (progress)
				cairn_progress_update(progress, out->data_bytes);
		}
		hashing = fill->nitems ? fill : NULL;
		fill = fill == &batches[0] ? &batches[1] : &batches[0];
	}
	if (hashing) {
		cairn_pool_wait(pool);
		rc = finish(hashing, out);
	}
done:
	if (pool) {
		cairn_pool_wait(pool);
		cairn_pool_free(pool);
	}
	for (int k = 0; k < 2; k++) {
		cairn_free(batches[k].buf);
		cairn_free(batches[k].items);
	}
	cairn_car__reader_set_trusted(r, was_trusted);
	return rc;
}
