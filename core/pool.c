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
	size_t limit;            /* for pool_try_alloc; 0: none */
	int exhausted;           /* a pool_try_alloc failed */
	struct pool_block *head; /* current block first */
	struct pool_block *big;  /* dedicated blocks for large requests */
};

static struct pool_block *
block_new(size_t size, int may_fail)
{
	struct pool_block *b;

	if (size > SIZE_MAX - sizeof(*b)) {
		if (may_fail)
			return NULL;
		b = xmalloc(SIZE_MAX);   /* reports and aborts */
	} else if (may_fail) {
		if ((b = malloc(sizeof(*b) + size)) == NULL)
			return NULL;
	} else {
		b = xmalloc(sizeof(*b) + size);
	}
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

postern_pool_t *
pool_create_limited(size_t block_size, size_t limit)
{
	postern_pool_t *p = pool_create(block_size);

	p->limit = limit;
	return p;
}

static size_t
align_up(size_t n)
{
	if (n > SIZE_MAX - POOL_ALIGN)
		return SIZE_MAX & ~(POOL_ALIGN - 1);  /* cannot be had */
	return (n + POOL_ALIGN - 1) & ~(POOL_ALIGN - 1);
}

/* Whether a new block of `size` bytes stays within the budget. */
static int
within_limit(const postern_pool_t *p, size_t size)
{
	return p->limit == 0 ||
	       (p->allocated <= p->limit && size <= p->limit - p->allocated);
}

/* The allocation behind pool_alloc (may_fail 0: abort on exhaustion)
 * and pool_try_alloc (may_fail 1: NULL past the budget or when malloc
 * fails). */
static void *
alloc(postern_pool_t *p, size_t n, int may_fail)
{
	struct pool_block *b = p->head;
	size_t need = align_up(n ? n : 1);
	void *mem;

	if (need > p->block_size / 4) {
		if ((may_fail && !within_limit(p, need)) ||
		    (b = block_new(need, may_fail)) == NULL)
			goto fail;
		b->next = p->big;
		p->big = b;
		p->allocated += need;
		memset(b->data, 0, need);
		return b->data;
	}
	if (b == NULL || b->size - b->used < need) {
		if ((may_fail && !within_limit(p, p->block_size)) ||
		    (b = block_new(p->block_size, may_fail)) == NULL)
			goto fail;
		b->next = p->head;
		p->head = b;
		p->allocated += p->block_size;
	}
	mem = b->data + b->used;
	b->used += need;
	memset(mem, 0, need);
	return mem;
fail:
	p->exhausted = 1;
	return NULL;
}

void *
pool_alloc(postern_pool_t *p, size_t n)
{
	return alloc(p, n, 0);
}

void *
pool_try_alloc(postern_pool_t *p, size_t n)
{
	return alloc(p, n, 1);
}

char *
pool_try_strndup(postern_pool_t *p, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *d = pool_try_alloc(p, len + 1);

	if (d != NULL)
		memcpy(d, s, len);
	return d;
}

int
pool_exhausted(const postern_pool_t *p)
{
	return p->exhausted;
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
	p->exhausted = 0;
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
