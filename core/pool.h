/*
 * pool.h - memory pools: many allocations, one free.
 *
 * A pool grabs blocks of `block_size` bytes and hands out aligned slices;
 * a request larger than a quarter block gets a block of its own.  Clearing
 * keeps the first block, so a per-transaction pool that is cleared after
 * each transaction usually allocates nothing in steady state.
 *
 * A pool may have a budget (pool_create_limited): the bytes its blocks
 * may hold.  The budget binds pool_try_alloc, which parsers of client
 * data use for everything that grows with their input: past the budget
 * it returns NULL and the parse gives a poorer result (degrades) instead
 * of taking the process down.  pool_alloc ignores the budget (it is for
 * small, bounded needs a caller cannot do without) but its bytes count.
 */
#ifndef CORE_POOL_H
#define CORE_POOL_H

#include <stdarg.h>
#include <stddef.h>

#include <postern/types.h>

postern_pool_t *pool_create(size_t block_size);
/* A pool whose blocks may hold `limit` bytes for pool_try_alloc (0: no
 * limit). */
postern_pool_t *pool_create_limited(size_t block_size, size_t limit);
void *pool_alloc(postern_pool_t *p, size_t n);          /* zeroed */
/* As pool_alloc, but NULL when the block it needs would pass the pool's
 * budget or memory is short; the pool then reports pool_exhausted until
 * it is cleared. */
void *pool_try_alloc(postern_pool_t *p, size_t n);
/* pool_strndup through pool_try_alloc: NULL when over budget. */
char *pool_try_strndup(postern_pool_t *p, const char *s, size_t n);
/* 1 when a pool_try_alloc failed since the pool was created or cleared:
 * what was built from it may be incomplete. */
int pool_exhausted(const postern_pool_t *p);
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
