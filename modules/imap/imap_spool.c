/*
 * imap_spool.c - what the APPEND jobs that make a message (CATENATE,
 * the base64 of binary parts) share: writing a spool whose memory goes
 * to its file as it grows, and reading a spool file back.
 */
#include <errno.h>
#include <unistd.h>

#include "imap.h"

/* Octets a spool being written keeps in memory before its file gets
 * them. */
#define IMAP_SPOOL_MEMORY (256 * 1024)

int
imap_spool_put(postern_spool_t *sp, const void *data, size_t len)
{
	imap_host->spool_append(sp, data, len);
	if (imap_host->spool_memory(sp, NULL) >= IMAP_SPOOL_MEMORY &&
	    imap_host->spool_flush(sp) < 0)
		return -1;
	return 0;
}

int
imap_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, (char *)buf + got, len - got,
		          (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}
