/*
 * xalloc.c - allocation that cannot fail (see xalloc.h for why).
 */
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void __attribute__((noreturn))
out_of_memory(size_t n)
{
	char msg[96];
	int len = snprintf(msg, sizeof(msg),
	                   "posternd: out of memory allocating %zu bytes\n", n);

	/* No stdio buffering, no allocation: just say it and stop. */
	if (len > 0 && write(STDERR_FILENO, msg, (size_t)len) < 0)
		abort();
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		out_of_memory(n);
	return p;
}

void *
xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory(count * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		out_of_memory(n);
	return q;
}

void *
xreallocarray(void *p, size_t count, size_t size)
{
	if (size != 0 && count > (size_t)-1 / size)
		out_of_memory((size_t)-1);
	return xrealloc(p, count * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		out_of_memory(strlen(fmt));
	va_end(ap);
	return s;
}
