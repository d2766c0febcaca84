/*
 * relay_out.h - a buffered output sink for what the relay writes (DSNs,
 * 8BITMIME conversions): to a file descriptor, to a growing memory
 * buffer, or to a caller's function.
 *
 * Threads.  No I/O of its own beyond write(2) on the caller's fd: use it
 * on a job thread for a file on disk, or on the loop for memory.  One
 * sink is used by one thread at a time.
 *
 * Errors.  The first failed write is remembered: later puts are dropped
 * and relay_out_finish returns -1 with errno as the failure left it, so a
 * writer can emit everything and check once.
 */
#ifndef RELAY_OUT_H
#define RELAY_OUT_H

#include <stddef.h>
#include <stdint.h>

/* Receives `len` octets; returns 0, or -1 with errno set. */
typedef int (*relay_out_fn)(void *arg, const void *data, size_t len);

#define RELAY_OUT_BUFSIZE 16384

struct relay_out {
	relay_out_fn fn;
	void *arg;
	int fd;               /* for relay_out_init_fd */
	int error;            /* errno of the first failure, or 0 */
	char *mem;            /* relay_out_init_mem: malloc'd */
	size_t mem_len, mem_cap;
	size_t len;           /* octets held in buf */
	uint64_t limit;       /* octets the sink may pass on in all */
	uint64_t total;       /* octets passed on so far */
	char buf[RELAY_OUT_BUFSIZE];
};

/* Writes to `fd` (the caller's; not closed), retrying short writes and
 * EINTR.  A non-blocking fd that would block is an error (EAGAIN). */
void relay_out_init_fd(struct relay_out *o, int fd);
/* Collects into memory; after relay_out_finish, relay_out_take hands the
 * buffer over. */
void relay_out_init_mem(struct relay_out *o);
/* Sends to fn(arg, ...) in pieces of up to RELAY_OUT_BUFSIZE octets. */
void relay_out_init_fn(struct relay_out *o, relay_out_fn fn, void *arg);

/* Bounds what the sink passes on to `limit` octets in all (none by
 * default): a flush that would pass it fails with EFBIG, nothing of it
 * written. */
void relay_out_set_limit(struct relay_out *o, uint64_t limit);

void relay_out_put(struct relay_out *o, const void *data, size_t len);
void relay_out_puts(struct relay_out *o, const char *s);
void relay_out_printf(struct relay_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Flushes what is buffered.  0, or -1 with errno set by the first
 * failure anywhere in the sink's life. */
int relay_out_finish(struct relay_out *o);
/* The memory sink's buffer (malloc'd, NUL-terminated, the caller frees
 * it) and its length; the sink is empty afterwards.  NULL after an
 * allocation failure (ENOMEM from relay_out_finish). */
char *relay_out_take(struct relay_out *o, size_t *len);
/* Frees what a memory sink still holds (safe on any sink). */
void relay_out_release(struct relay_out *o);

#endif /* RELAY_OUT_H */
