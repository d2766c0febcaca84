/*
 * maildir_read.c - reading messages: msg_open, msg_read, msg_close.
 *
 * A small file is read whole at open (one pread: no mapping to set up and
 * tear down, which on a worker with job threads means a TLB shootdown per
 * message); a larger one is mapped read-only.  A file that already has
 * CRLF line endings (its CRLF size equals its size on disk) is copied out
 * as is; one with bare LFs (as Dovecot and Postfix write them) is
 * converted while reading, a line at a time with memchr, with a cursor so
 * that sequential reads (FETCH BODY[], POP3 RETR) cost one pass.
 *
 * The pages of a mapped file count in the worker's RSS once touched:
 * reading a 50 MB message through would hold 50 MB.  The pages behind a
 * sequential reader are given back (MADV_DONTNEED: they come again from
 * the page cache if read again), and so are those a scan at open
 * touched, so a reader holds about MSG_KEEP_MAPPED of the file.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

/* Files up to this size are read into memory rather than mapped. */
#define MSG_READ_WHOLE (256u * 1024)
/* Mapped pages behind the reader kept before they are given back. */
#define MSG_KEEP_MAPPED (1u << 20)

struct postern_msg {
	unsigned char *map;    /* the file's bytes, mapped or read */
	int mapped;
	int fd;                /* a mapped CRLF file's, for msg_source;
	                          or -1 */
	size_t rawlen;
	uint64_t size;
	int exact;             /* no bare LF: read the bytes as they are */
	uint64_t out, raw;     /* cursor: output offset of raw byte `raw` */
	size_t released;       /* mapped pages below this were given back */
};

/* Gives back the mapped pages of raw bytes [from, to) (whole pages). */
static void
msg_drop(struct postern_msg *m, size_t from, size_t to)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	from = (from + page - 1) & ~(page - 1);
	to &= ~(page - 1);
	if (m->mapped && to > from)
		(void)madvise(m->map + from, to - from, MADV_DONTNEED);
}

/* A reader read raw bytes [from, raw): what lies well behind it goes.
 * A reader that went back (a second pass over a part: IMAP BINARY and
 * HEADER.FIELDS measure first, then send) touches given-back pages
 * again: they go again behind it. */
static void
msg_release(struct postern_msg *m, size_t from, size_t raw)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (m->mapped && from < m->released)
		m->released = from & ~(page - 1);
	if (!m->mapped || raw < m->released + 2 * MSG_KEEP_MAPPED)
		return;
	raw = (raw - MSG_KEEP_MAPPED) & ~(page - 1);
	msg_drop(m, m->released, raw);
	m->released = raw;
}

uint64_t
md_header_size(const unsigned char *p, size_t len)
{
	uint64_t out = 0;
	int prev_cr = 0, nl_run = 1;
	size_t i;

	for (i = 0; i < len; i++) {
		out += p[i] == '\n' && !prev_cr ? 2 : 1;
		if (p[i] == '\n') {
			if (++nl_run == 2)
				return out;
		} else if (p[i] != '\r')
			nl_run = 0;
		prev_cr = p[i] == '\r';
	}
	return out; /* no body: it is all header */
}

static uint64_t
crlf_size(const unsigned char *p, size_t len)
{
	uint64_t out = len;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			out++;
	return out;
}

static int
msg_map(struct postern_msg *m, int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return -1;
	m->rawlen = (size_t)sb.st_size;
	if (m->rawlen == 0)
		return 0;
	if (m->rawlen <= MSG_READ_WHOLE) {
		if ((m->map = malloc(m->rawlen)) == NULL)
			return -1;
		if (pread(fd, m->map, m->rawlen, 0) == (ssize_t)m->rawlen)
			return 0;
		if (errno == 0)
			errno = EIO; /* shorter than fstat said */
		free(m->map);
		m->map = NULL;
		return -1;
	}
	m->mapped = 1;
	m->map = mmap(NULL, m->rawlen, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m->map == MAP_FAILED) {
		m->map = NULL;
		return -1;
	}
	return 0;
}

/* The sizes of an open message, learning the header's on first use. */
static void
msg_sizes(postern_mailbox_t *mb, uint32_t seq, struct postern_msg *m,
          struct postern_msg_size *sizes)
{
	struct md_rec *r = &mb->v[seq - 1].r;

	/* The name's sizes are trusted only while the file agrees. */
	m->size = r->rawsize == m->rawlen ? r->size
	                                  : crlf_size(m->map, m->rawlen);
	m->exact = m->size == m->rawlen;
	if (r->hdr_size == 0 || r->rawsize != m->rawlen) {
		r->hdr_size = md_header_size(m->map, m->rawlen);
		mb->hdr_dirty = 1;
		/* the scans read the file (crlf_size) or its header */
		msg_drop(m, 0, m->rawlen);
	}
	sizes->size = m->size;
	sizes->header_size = r->hdr_size;
}

/* Only a file read whole and found in the page cache: the path lookup
 * of a mailbox just listed is in the dentry cache, and preadv2 with
 * RWF_NOWAIT gives up instead of waiting for the disk. */
int
md_msg_open_nowait(postern_mailbox_t *mb, uint32_t uid, postern_msg_t **out,
                   struct postern_msg_size *sizes)
{
	uint32_t seq = md_seq_of_uid(mb, uid);
	struct postern_msg *m;
	struct iovec iov;
	struct stat sb;
	int fd;

	*out = NULL;
	if (seq == 0 || mb->v[seq - 1].expunged ||
	    mb->v[seq - 1].r.rawsize > MSG_READ_WHOLE)
		return 1;
	if ((fd = md_view_openat(mb, seq - 1, O_RDONLY | O_NONBLOCK)) < 0)
		return 1;       /* renamed meanwhile: the job looks for it */
	if (fstat(fd, &sb) < 0 || sb.st_size == 0 ||
	    (size_t)sb.st_size > MSG_READ_WHOLE ||
	    (m = calloc(1, sizeof(*m))) == NULL) {
		close(fd);
		return 1;
	}
	m->rawlen = (size_t)sb.st_size;
	m->fd = -1;
	if ((m->map = malloc(m->rawlen)) == NULL) {
		free(m);
		close(fd);
		return 1;
	}
	iov.iov_base = m->map;
	iov.iov_len = m->rawlen;
	if (preadv2(fd, &iov, 1, 0, RWF_NOWAIT) != (ssize_t)m->rawlen) {
		free(m->map);
		free(m);
		close(fd);
		return 1;
	}
	close(fd);
	msg_sizes(mb, seq, m, sizes);
	*out = m;
	return 0;
}

int
md_msg_open(postern_mailbox_t *mb, uint32_t uid, postern_msg_t **out,
            struct postern_msg_size *sizes, struct postern_storage_err *err)
{
	uint32_t seq = md_seq_of_uid(mb, uid);
	struct postern_msg *m;
	int fd;

	*out = NULL;
	if (seq == 0 || mb->v[seq - 1].expunged ||
	    (fd = md_view_open_file(mb, uid)) < 0) {
		md_err(err, POSTERN_SE_EXPUNGED, "message was expunged");
		return -1;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL || msg_map(m, fd) < 0) {
		md_log(POSTERN_LOG_ERROR, "map message %u in %s: %s", uid,
		       mb->dir, strerror(errno));
		md_err(err, POSTERN_SE_TEMP, "cannot read the message");
		close(fd);
		free(m);
		return -1;
	}
	msg_sizes(mb, seq, m, sizes);
	/* A mapped file with CRLF line ends stays open: a stream reads it
	 * itself (md_msg_source). */
	m->fd = -1;
	if (m->mapped && m->exact)
		m->fd = fd;
	else
		close(fd);
	*out = m;
	return 0;
}

/* A bare LF: one not preceded by CR, which reads as CR LF. */
static int
bare_lf(const struct postern_msg *m, size_t i)
{
	return m->map[i] == '\n' && (i == 0 || m->map[i - 1] != '\r');
}

/* Moves the cursor to the raw byte whose output covers `offset`. */
static void
seek_out(struct postern_msg *m, uint64_t offset)
{
	unsigned w;

	if (offset < m->out)
		m->out = m->raw = 0;
	while (m->raw < m->rawlen) {
		w = bare_lf(m, m->raw) ? 2 : 1;
		if (m->out + w > offset)
			break;
		m->out += w;
		m->raw++;
	}
}

static size_t
read_convert(struct postern_msg *m, uint64_t offset, unsigned char *buf,
             size_t len)
{
	const unsigned char *p = m->map, *lf;
	size_t n = 0, end, k;

	seek_out(m, offset);
	if (offset > m->out && m->raw < m->rawlen) {
		/* Halfway through an expanded LF: its CR went last time. */
		buf[n++] = '\n';
		m->out += 2;
		m->raw++;
	}
	while (n < len && m->raw < m->rawlen) {
		/* The bytes up to the next LF go out as they are. */
		lf = memchr(p + m->raw, '\n', m->rawlen - m->raw);
		end = lf != NULL ? (size_t)(lf - p) : m->rawlen;
		k = end - m->raw < len - n ? end - m->raw : len - n;
		memcpy(buf + n, p + m->raw, k);
		n += k;
		m->raw += k;
		m->out += k;
		if (m->raw < end || lf == NULL || n == len)
			break;
		if (!bare_lf(m, m->raw)) {
			buf[n++] = '\n';
			m->out++;
		} else {
			buf[n++] = '\r';
			if (n == len)
				break; /* cursor stays before this LF */
			buf[n++] = '\n';
			m->out += 2;
		}
		m->raw++;
	}
	return n;
}

ssize_t
md_msg_read(postern_msg_t *msg, uint64_t offset, void *buf, size_t len,
            struct postern_storage_err *err)
{
	size_t before;

	(void)err;
	if (offset >= msg->size || len == 0)
		return 0;
	if (msg->exact) {
		if (len > msg->size - offset)
			len = msg->size - offset;
		memcpy(buf, msg->map + offset, len);
		msg_release(msg, (size_t)offset, (size_t)(offset + len));
		return (ssize_t)len;
	}
	before = (size_t)msg->raw;
	len = read_convert(msg, offset, buf, len);
	/* The cursor went back: the read began somewhere below. */
	msg_release(msg, (size_t)msg->raw < before ? 0 : before,
	            (size_t)msg->raw);
	return (ssize_t)len;
}

/* A file with CRLF line ends is read by the stream itself (no copy
 * through the mapping, and on the loop when cached); one read whole is
 * in memory; a mapped one with bare LFs goes through msg_read's
 * conversion on a job. */
int
md_msg_source(postern_msg_t *msg, int *fd, uint64_t *offset)
{
	if (!msg->mapped)
		return POSTERN_MSG_SOURCE_IN_MEMORY;
	if (msg->fd < 0)
		return POSTERN_MSG_SOURCE_READER;
	*fd = msg->fd;
	*offset = 0;
	return POSTERN_MSG_SOURCE_FILE;
}

void
md_msg_close(postern_msg_t *msg)
{
	if (msg == NULL)
		return;
	if (msg->mapped)
		munmap(msg->map, msg->rawlen);
	else
		free(msg->map);
	if (msg->fd >= 0)
		close(msg->fd);
	free(msg);
}
