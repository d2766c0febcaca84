/*
 * smtp_spool.c - where a message waits between its arrival and its
 * delivery: in memory while it is small, then in an unlinked temporary
 * file (O_TMPFILE under state_dir), so a crash leaves nothing behind.
 * The spool is not durable and need not be: "250" is answered only once
 * every delivery made its own copy durable.
 *
 * Appends happen on the event loop (memory only); moving memory to the
 * file is blocking and runs on a job thread, with the session paused, so
 * a spool is never used by two threads at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp_session.h"

struct smtp_spool *
smtp_spool_new(void)
{
	struct smtp_spool *sp = calloc(1, sizeof(*sp));

	if (sp == NULL)
		abort(); /* as every allocation in posternd */
	sp->fd = -1;
	return sp;
}

void
smtp_spool_append(struct smtp_spool *sp, const char *data, size_t len)
{
	size_t cap;

	if (sp->mem_len + len > sp->mem_cap) {
		cap = sp->mem_cap ? sp->mem_cap : 16384;
		while (cap < sp->mem_len + len)
			cap *= 2;
		sp->mem = realloc(sp->mem, cap);
		if (sp->mem == NULL)
			abort();
		sp->mem_cap = cap;
	}
	memcpy(sp->mem + sp->mem_len, data, len);
	sp->mem_len += len;
}

static int
spool_open(const char *dir)
{
	char path[4096];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* A file system without O_TMPFILE: a named file, unlinked at once. */
	if (snprintf(path, sizeof(path), "%s/smtp-spool.XXXXXX", dir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
		return -1;
	unlink(path);
	return fd;
}

int
smtp_spool_flush(struct smtp_spool *sp, const char *dir)
{
	size_t done = 0;
	ssize_t n;

	if (sp->fd < 0 && (sp->fd = spool_open(dir)) < 0)
		return -1;
	while (done < sp->mem_len) {
		n = pwrite(sp->fd, sp->mem + done, sp->mem_len - done,
		           (off_t)(sp->file_len + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	sp->file_len += sp->mem_len;
	sp->mem_len = 0;
	return 0;
}

uint64_t
smtp_spool_size(const struct smtp_spool *sp)
{
	return sp->file_len + sp->mem_len;
}

void
smtp_spool_free(struct smtp_spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp->mem);
	free(sp);
}
