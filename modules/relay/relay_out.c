/*
 * relay_out.c - the buffered output sink (see relay_out.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_out.h"

static int
out_fd_write(void *arg, const void *data, size_t len)
{
	struct relay_out *o = arg;
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(o->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
out_mem_write(void *arg, const void *data, size_t len)
{
	struct relay_out *o = arg;
	size_t cap;
	char *m;

	if (o->mem_cap - o->mem_len <= len) {
		cap = o->mem_cap > 0 ? o->mem_cap : 4096;
		while (cap - o->mem_len <= len) {
			if (cap > SIZE_MAX / 2) {
				errno = ENOMEM;
				return -1;
			}
			cap *= 2;
		}
		if ((m = realloc(o->mem, cap)) == NULL)
			return -1;
		o->mem = m;
		o->mem_cap = cap;
	}
	memcpy(o->mem + o->mem_len, data, len);
	o->mem_len += len;
	o->mem[o->mem_len] = '\0';
	return 0;
}

void
relay_out_init_fn(struct relay_out *o, relay_out_fn fn, void *arg)
{
	o->fn = fn;
	o->arg = arg;
	o->fd = -1;
	o->error = 0;
	o->mem = NULL;
	o->mem_len = o->mem_cap = 0;
	o->len = 0;
	o->limit = UINT64_MAX;
	o->total = 0;
}

void
relay_out_init_fd(struct relay_out *o, int fd)
{
	relay_out_init_fn(o, out_fd_write, o);
	o->fd = fd;
}

void
relay_out_init_mem(struct relay_out *o)
{
	relay_out_init_fn(o, out_mem_write, o);
}

void
relay_out_set_limit(struct relay_out *o, uint64_t limit)
{
	o->limit = limit;
}

static void
out_flush(struct relay_out *o)
{
	if (o->len > 0 && o->error == 0 && o->len > o->limit - o->total)
		o->error = EFBIG;
	if (o->len > 0 && o->error == 0 && o->fn(o->arg, o->buf, o->len) < 0)
		o->error = errno != 0 ? errno : EIO;
	if (o->error == 0)
		o->total += o->len;
	o->len = 0;
}

void
relay_out_put(struct relay_out *o, const void *data, size_t len)
{
	const char *p = data;
	size_t n;

	if (o->error != 0)
		return;
	while (len > 0) {
		if (o->len == sizeof(o->buf))
			out_flush(o);
		n = sizeof(o->buf) - o->len;
		if (n > len)
			n = len;
		memcpy(o->buf + o->len, p, n);
		o->len += n;
		p += n;
		len -= n;
	}
}

void
relay_out_puts(struct relay_out *o, const char *s)
{
	relay_out_put(o, s, strlen(s));
}

void
relay_out_printf(struct relay_out *o, const char *fmt, ...)
{
	va_list ap;
	char small[512], *big;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->error = EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		relay_out_put(o, small, (size_t)n);
		return;
	}
	if ((big = malloc((size_t)n + 1)) == NULL) {
		o->error = ENOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	relay_out_put(o, big, (size_t)n);
	free(big);
}

int
relay_out_finish(struct relay_out *o)
{
	out_flush(o);
	if (o->error != 0) {
		errno = o->error;
		return -1;
	}
	return 0;
}

char *
relay_out_take(struct relay_out *o, size_t *len)
{
	char *m;

	if (o->mem == NULL && o->error == 0 && out_mem_write(o, "", 0) < 0)
		o->error = ENOMEM;
	m = o->mem;
	if (len != NULL)
		*len = o->mem_len;
	o->mem = NULL;
	o->mem_len = o->mem_cap = 0;
	return m;
}

void
relay_out_release(struct relay_out *o)
{
	free(o->mem);
	o->mem = NULL;
	o->mem_len = o->mem_cap = 0;
}
