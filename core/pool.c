/*
 * pool.c - memory pools (see pool.h).
 */
#include "pool.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define POOL_ALIGN alignof(max_align_t)
#define POOL_MIN_BLOCK 256

struct pool_block {
	struct pool_block *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	alignas(max_align_t) unsigned char data[];
};

struct postern_pool {
	size_t block_size;
	size_t allocated;
	struct pool_block *head; /* current block first */
	struct pool_block *big;  /* dedicated blocks for large requests */
};

static struct pool_block *
block_new(size_t size)
{
	struct pool_block *b = xmalloc(sizeof(*b) + size);

	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

postern_pool_t *
pool_create(size_t block_size)
{
	postern_pool_t *p = xcalloc(1, sizeof(*p));

	p->block_size = block_size < POOL_MIN_BLOCK ? POOL_MIN_BLOCK
	                                            : block_size;
	return p;
}

static size_t
align_up(size_t n)
{
	return (n + POOL_ALIGN - 1) & ~(POOL_ALIGN - 1);
}

void *
pool_alloc(postern_pool_t *p, size_t n)
{
	struct pool_block *b = p->head;
	size_t need = align_up(n ? n : 1);
	void *mem;

	if (need > p->block_size / 4) {
		b = block_new(need);
		b->next = p->big;
		p->big = b;
		p->allocated += need;
		memset(b->data, 0, need);
		return b->data;
	}
	if (b == NULL || b->size - b->used < need) {
		b = block_new(p->block_size);
		b->next = p->head;
		p->head = b;
		p->allocated += p->block_size;
	}
	mem = b->data + b->used;
	b->used += need;
	memset(mem, 0, need);
	return mem;
}

char *
pool_strndup(postern_pool_t *p, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = pool_alloc(p, len + 1);

	memcpy(d, s, len);
	return d;
}

char *
pool_strdup(postern_pool_t *p, const char *s)
{
	size_t len = strlen(s);
	char *d = pool_alloc(p, len + 1);

	memcpy(d, s, len);
	return d;
}

char *
pool_vprintf(postern_pool_t *p, const char *fmt, va_list ap)
{
	va_list copy;
	int len;
	char *s;

	va_copy(copy, ap);
	len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len < 0)
		len = 0;
	s = pool_alloc(p, (size_t)len + 1);
	vsnprintf(s, (size_t)len + 1, fmt, ap);
	return s;
}

char *
pool_printf(postern_pool_t *p, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = pool_vprintf(p, fmt, ap);
	va_end(ap);
	return s;
}

static void
free_chain(struct pool_block *b)
{
	while (b != NULL) {
		struct pool_block *next = b->next;
		free(b);
		b = next;
	}
}

void
pool_clear(postern_pool_t *p)
{
	struct pool_block *keep;

	free_chain(p->big);
	p->big = NULL;
	if (p->head == NULL) {
		p->allocated = 0;
		return;
	}
	/* Keep the oldest block (the last in the chain). */
	keep = p->head;
	while (keep->next != NULL) {
		struct pool_block *next = keep->next;
		free(keep);
		keep = next;
	}
	keep->used = 0;
	p->head = keep;
	p->allocated = keep->size;
}

void
pool_destroy(postern_pool_t *p)
{
	if (p == NULL)
		return;
	free_chain(p->big);
	free_chain(p->head);
	free(p);
}

size_t
pool_allocated(const postern_pool_t *p)
{
	return p->allocated;
}
