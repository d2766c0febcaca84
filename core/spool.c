/*
 * spool.c - where a message waits between its arrival and its delivery
 * (SMTP DATA, IMAP APPEND): in memory while it is small, then in an
 * unlinked temporary file (O_TMPFILE in the spool's directory, state_dir
 * by default), so a crash leaves nothing behind.  The spool is not
 * durable and need not be: the storage makes its own copy durable.
 *
 * Appends touch memory only (the event loop may make them); moving the
 * memory to the file is blocking and belongs on a job thread, with the
 * holder paused, so a spool is never used by two threads at once.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "xalloc.h"

struct postern_spool {
	char *dir;            /* where the file goes (malloc'd) */
	char *mem;            /* the part not yet in the file */
	size_t mem_len, mem_cap;
	int fd;               /* -1 until the first flush */
	uint64_t file_len;    /* octets in the file */
};

postern_spool_t *
spool_create(const char *dir)
{
	postern_spool_t *sp = xcalloc(1, sizeof(*sp));

	if (dir == NULL)
		dir = host_table()->dir(POSTERN_DIR_STATE);
	sp->dir = xstrdup(dir);
	sp->fd = -1;
	return sp;
}

void
spool_append(postern_spool_t *sp, const void *data, size_t len)
{
	size_t cap;

	if (sp->mem_len + len > sp->mem_cap) {
		cap = sp->mem_cap ? sp->mem_cap : 16384;
		while (cap < sp->mem_len + len)
			cap *= 2;
		sp->mem = xrealloc(sp->mem, cap);
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
	if (snprintf(path, sizeof(path), "%s/spool.XXXXXX", dir) >=
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
spool_flush(postern_spool_t *sp)
{
	size_t done = 0;
	ssize_t n;

	if (sp->fd < 0 && (sp->fd = spool_open(sp->dir)) < 0)
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
	if (sp->mem_cap > 65536) {
		/* What went to the file need not stay reserved. */
		free(sp->mem);
		sp->mem = NULL;
		sp->mem_cap = 0;
	}
	return 0;
}

uint64_t
spool_size(const postern_spool_t *sp)
{
	return sp->file_len + sp->mem_len;
}

size_t
spool_memory(const postern_spool_t *sp, const char **data)
{
	if (data != NULL)
		*data = sp->mem;
	return sp->mem_len;
}

int
spool_fd(const postern_spool_t *sp)
{
	return sp->fd;
}

void
spool_free(postern_spool_t *sp)
{
	if (sp == NULL)
		return;
	if (sp->fd >= 0)
		close(sp->fd);
	free(sp->mem);
	free(sp->dir);
	free(sp);
}
