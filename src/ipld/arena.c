/* arena.c: a bump allocator for decoded trees, freed all at once: a block
 * decodes into thousands of nodes, and one free per node would dominate. */
#include "cairn/ipld.h"

#define CHUNK_MIN 4096

typedef struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(16) uint8_t data[];
} chunk;

struct cairn_arena {
	chunk *head;
};

int cairn_arena_new(cairn_arena **out)
{
	*out = cairn_calloc(1, sizeof(**out));
	return *out ? 0 : CAIRN_ENOMEM;
}

void *cairn_arena_alloc(cairn_arena *a, size_t n)
{
	chunk *c = a->head;
	size_t size;

	if (n > SIZE_MAX - sizeof(chunk) - 15) {
		cairn_error_set(CAIRN_ENOMEM, "out of memory");
		return NULL;
	}
	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	if (c && c->size - c->used >= n) {
		void *p = c->data + c->used;
		c->used += n;
		return p;
	}
	/* Double with each chunk, so a big tree needs few of them. */
	size = c ? c->size * 2 : CHUNK_MIN;
	if (size < n)
		size = n;
	if (size > SIZE_MAX - sizeof(chunk)) {
		cairn_error_set(CAIRN_ENOMEM, "out of memory");
		return NULL;
	}
	c = cairn_malloc(sizeof(chunk) + size);
	if (!c)
		return NULL;
	c->size = size;
	c->used = n;
	c->next = a->head;
	a->head = c;
	return c->data;
}

void cairn_arena_reset(cairn_arena *a)
{
	chunk *c = a->head;

	if (!c)
		return;
	/* Keep the newest (largest) chunk. */
	while (c->next) {
		chunk *next = c->next->next;
		cairn_free(c->next);
		c->next = next;
	}
	c->used = 0;
}

void cairn_arena_free(cairn_arena *a)
{
	chunk *c;

	if (!a)
		return;
	c = a->head;
	while (c) {
		chunk *next = c->next;
		cairn_free(c);
		c = next;
	}
	cairn_free(a);
}
