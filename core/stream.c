/*
 * stream.c - source -> transform -> connection, with back-pressure
 * (postern/stream.h).
 *
 * A stream is attached to its connection (conn_set_stream) from
 * stream_start until done: the connection hands it its drains (the
 * queue emptied: read and write the next pieces) and tells it when it
 * goes (before on_close).  Each pump writes pieces while less than
 * POSTERN_STREAM_HIGH_WATER octets wait unsent, so the memory a stream
 * costs is its chunk (twice for dot-stuffing: the stuffed copy) and the
 * mark, however large the message and however slow the client.
 *
 * Reads.  A file region is read on the loop with preadv2(RWF_NOWAIT),
 * which answers from the page cache or gives up (EAGAIN) instead of
 * waiting for the disk; then, and for a module's reader, the read goes
 * to a job thread and the pump resumes on its completion.  A file is
 * read through a duplicate of the module's descriptor, so a stream whose
 * connection went can let a read in flight finish into its own buffer
 * and report at once.
 *
 * Lifetime.  The stream is freed once done has run, no job reads for it
 * and no deferred call holds it.  done never runs inside stream_start
 * (a small message that is all written there reports from a deferred
 * call), and runs at most once: the connection going first turns it
 * into POSTERN_CLOSED.
 */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/uio.h>

#include "conn.h"
#include "dotstuff.h"
#include "host.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "xalloc.h"

struct postern_stream {
	postern_conn_t *conn;        /* NULL once it went */
	struct postern_stream_source src; /* fd: our duplicate, or -1 */
	enum postern_stream_transform transform;
	postern_stream_done_fn done;
	void *arg;
	uint64_t pos;                /* source octets read so far */
	struct dotstuff ds;
	int starting;                /* inside stream_start: no done */
	int finished;                /* done has run */
	int deferred;                /* a deferred report holds it */
	int deferred_status;
	int reading;                 /* a job reads for it */
	int no_nowait;               /* RWF_NOWAIT refused: jobs only */
	ssize_t got;                 /* the job's result */
	int err;                     /* its errno */
	char *in;                    /* POSTERN_STREAM_CHUNK */
	char *out;                   /* DOTSTUFF: the stuffed copy */
};

static void pump(struct postern_stream *st);

static void
maybe_free(struct postern_stream *st)
{
	if (!st->finished || st->reading || st->deferred)
		return;
	if (st->src.fd >= 0)
		close(st->src.fd);
	free(st->in);
	free(st->out);
	free(st);
}

/* Reports once: detaches from the connection first, so the module may
 * start another stream on it (or close it) from done. */
static void
report(struct postern_stream *st, int status)
{
	if (st->finished)
		return;
	st->finished = 1;
	if (st->conn != NULL) {
		conn_set_stream(st->conn, NULL);
		st->conn = NULL;
	}
	st->done(st->arg, status);
	maybe_free(st);
}

static void
report_deferred(void *arg)
{
	struct postern_stream *st = arg;

	st->deferred = 0;
	if (st->finished) {
		/* The connection went first and reported it. */
		maybe_free(st);
		return;
	}
	report(st, st->deferred_status);
}

/* The end, now or (inside stream_start) from the loop soon. */
static void
end(struct postern_stream *st, int status)
{
	if (!st->starting) {
		report(st, status);
		return;
	}
	if (st->deferred)
		return;
	st->deferred = 1;
	st->deferred_status = status;
	loop_defer(loop_current, report_deferred, st);
}

static void
read_failed(struct postern_stream *st, const char *why)
{
	conn_log(st->conn, POSTERN_LOG_ERROR, "stream: reading octet %" PRIu64
	         " of %" PRIu64 " failed: %s", st->pos, st->src.length, why);
	end(st, POSTERN_ERROR);
}

/* Writes what `len` source octets become. */
static void
put(struct postern_stream *st, const char *data, size_t len)
{
	size_t n;

	st->pos += len;
	if (st->transform != POSTERN_STREAM_DOTSTUFF) {
		conn_write(st->conn, data, len);
		return;
	}
	n = dotstuff_feed(&st->ds, data, len, st->out);
	conn_write(st->conn, st->out, n);
}

/* Everything is read: the closing dot, then the report. */
static void
finish(struct postern_stream *st)
{
	size_t n;

	if (st->transform == POSTERN_STREAM_DOTSTUFF) {
		n = dotstuff_finish(&st->ds, st->out);
		conn_write(st->conn, st->out, n);
	}
	end(st, POSTERN_OK);
}

static size_t
want(const struct postern_stream *st)
{
	uint64_t left = st->src.length - st->pos;

	return left < POSTERN_STREAM_CHUNK ? (size_t)left
	                                   : POSTERN_STREAM_CHUNK;
}

/* ---- reading on a job thread ------------------------------------------- */

static void
job_work(void *arg)
{
	struct postern_stream *st = arg;
	size_t n = want(st);

	errno = 0;
	if (st->src.fd >= 0)
		st->got = pread(st->src.fd, st->in, n,
		                (off_t)(st->src.offset + st->pos));
	else
		st->got = st->src.read(st->src.read_arg, st->pos, st->in, n);
	st->err = errno;
}

static void
job_done(void *arg, int cancelled)
{
	struct postern_stream *st = arg;

	st->reading = 0;
	if (st->finished) {
		maybe_free(st); /* reported when the connection went */
		return;
	}
	if (st->conn == NULL) {
		/* The connection went while the module's reader ran. */
		report(st, POSTERN_CLOSED);
		return;
	}
	if (cancelled) {
		read_failed(st, "the worker is stopping");
		return;
	}
	if (st->got <= 0) {
		read_failed(st, st->got == 0 ? "the source ended early"
		                : st->err != 0 ? strerror(st->err)
		                               : "the reader failed");
		return;
	}
	put(st, st->in, (size_t)st->got);
	pump(st);
}

static void
read_on_job(struct postern_stream *st)
{
	st->reading = 1;
	if (host_jobs() == NULL) {
		st->reading = 0;
		read_failed(st, "no job threads");
		return;
	}
	job_submit(host_jobs(), job_work, job_done, st);
}

/* ---- reading on the loop ----------------------------------------------- */

/* The next piece without waiting: its length, 0 when a job reads it
 * (or the stream failed: st->finished or a deferred report says so). */
static size_t
read_now(struct postern_stream *st)
{
	struct iovec iov = { st->in, want(st) };
	ssize_t n;

	if (st->src.fd < 0 && (st->src.flags & POSTERN_STREAM_IN_MEMORY)) {
		n = st->src.read(st->src.read_arg, st->pos, st->in,
		                 iov.iov_len);
		if (n > 0)
			return (size_t)n;
		read_failed(st, n == 0 ? "the source ended early"
		                       : "the reader failed");
		return 0;
	}
	if (st->src.fd < 0 || st->no_nowait) {
		read_on_job(st);
		return 0;
	}
	n = preadv2(st->src.fd, &iov, 1, (off_t)(st->src.offset + st->pos),
	            RWF_NOWAIT);
	if (n > 0)
		return (size_t)n;
	if (n == 0) {
		read_failed(st, "the file ended early");
		return 0;
	}
	if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
		st->no_nowait = 1;  /* an old kernel or file system */
	else if (errno != EAGAIN && errno != EINTR) {
		read_failed(st, strerror(errno));
		return 0;
	}
	read_on_job(st);
	return 0;
}

/* ---- the pump ----------------------------------------------------------- */

static int
ended(const struct postern_stream *st)
{
	return st->pos == st->src.length ||
	       (st->transform == POSTERN_STREAM_DOTSTUFF && st->ds.done);
}

/* Writes pieces while the client keeps up; on_drain comes back. */
static void
pump(struct postern_stream *st)
{
	size_t n;

	while (st->conn != NULL && !st->finished && !st->deferred &&
	       !st->reading) {
		if (conn_closing(st->conn))
			return; /* stream_conn_gone follows */
		if (ended(st)) {
			finish(st);
			return;
		}
		if (conn_output_pending(st->conn) >= POSTERN_STREAM_HIGH_WATER)
			return;
		if ((n = read_now(st)) == 0)
			return;
		put(st, st->in, n);
	}
}

void
stream_on_drain(struct postern_stream *st)
{
	pump(st);
}

void
stream_conn_gone(struct postern_stream *st)
{
	st->conn = NULL;
	/* A reader in flight uses the module's state: report after it. */
	if (st->reading && st->src.fd < 0)
		return;
	report(st, POSTERN_CLOSED);
}

int
stream_start(postern_conn_t *c, const struct postern_stream_source *src,
             const struct postern_stream_spec *spec,
             postern_stream_done_fn done, void *arg)
{
	struct postern_stream *st;
	char head[32];
	int n;

	if (src == NULL || spec == NULL || done == NULL ||
	    src->size < sizeof(*src) || spec->size < sizeof(*spec) ||
	    (src->fd < 0 && src->read == NULL) ||
	    (unsigned)spec->transform > POSTERN_STREAM_LITERAL) {
		conn_log(c, POSTERN_LOG_ERROR, "stream_start: bad source or "
		         "spec");
		return POSTERN_ERROR;
	}
	if (conn_closing(c))
		return POSTERN_CLOSED;
	if (conn_stream(c) != NULL) {
		conn_log(c, POSTERN_LOG_ERROR, "stream_start: a stream runs "
		         "on this connection already");
		return POSTERN_ERROR;
	}
	st = xcalloc(1, sizeof(*st));
	st->src = *src;
	st->src.size = sizeof(st->src);
	if (src->fd >= 0 &&
	    (st->src.fd = fcntl(src->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		conn_log(c, POSTERN_LOG_ERROR, "stream_start: dup: %s",
		         strerror(errno));
		free(st);
		return POSTERN_ERROR;
	}
	st->transform = spec->transform;
	st->done = done;
	st->arg = arg;
	st->conn = c;
	st->in = xmalloc(POSTERN_STREAM_CHUNK);
	if (st->transform == POSTERN_STREAM_DOTSTUFF) {
		st->out = xmalloc(DOTSTUFF_OUT_MAX(POSTERN_STREAM_CHUNK) +
		                  DOTSTUFF_TAIL_MAX);
		dotstuff_init(&st->ds, spec->top, spec->lines);
	}
	if (st->transform == POSTERN_STREAM_LITERAL) {
		n = snprintf(head, sizeof(head), "{%" PRIu64 "}\r\n",
		             src->length);
		conn_write(c, head, (size_t)n);
	}
	conn_set_stream(c, st);
	st->starting = 1;
	pump(st);
	st->starting = 0;
	return POSTERN_OK;
}
