/*
 * xalloc.h - allocation that cannot fail.
 *
 * posternd aborts on memory exhaustion instead of threading ENOMEM through
 * every caller: a mail server that cannot allocate cannot keep any promise
 * about mail it accepted, and a clean restart by the master is the safest
 * answer.  Memory comes from jemalloc (linked into posternd).
 *
 * That is for what the server itself sizes.  Memory whose size a client
 * chooses (what a message makes a parser build) must not reach here: it
 * comes from a pool with a budget through pool_try_alloc (pool.h), or
 * from malloc with its failure handled, so that a client who asks for
 * too much gets a poorer answer, never a dead worker.
 */
#ifndef CORE_XALLOC_H
#define CORE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t count, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* CORE_XALLOC_H */
