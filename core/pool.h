/*
 * pool.h - memory pools: many allocations, one free.
 *
 * A pool grabs blocks of `block_size` bytes and hands out aligned slices;
 * a request larger than a quarter block gets a block of its own.  Clearing
 * keeps the first block, so a per-transaction pool that is cleared after
 * each transaction usually allocates nothing in steady state.
 */
#ifndef CORE_POOL_H
#define CORE_POOL_H

#include <stdarg.h>
#include <stddef.h>

#include <postern/types.h>

postern_pool_t *pool_create(size_t block_size);
void *pool_alloc(postern_pool_t *p, size_t n);          /* zeroed */
char *pool_strndup(postern_pool_t *p, const char *s, size_t n);
char *pool_strdup(postern_pool_t *p, const char *s);
char *pool_vprintf(postern_pool_t *p, const char *fmt, va_list ap);
char *pool_printf(postern_pool_t *p, const char *fmt, ...)
	POSTERN_PRINTF(2, 3);
void pool_clear(postern_pool_t *p);
void pool_destroy(postern_pool_t *p);
/* Bytes held in blocks, for memory accounting and tests. */
size_t pool_allocated(const postern_pool_t *p);

#endif /* CORE_POOL_H */
