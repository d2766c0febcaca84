/*
 * pop3_retr.c - RETR and TOP: a message opened through the store, then
 * streamed to the client by the host (postern/stream.h: dot-stuffing,
 * TOP's line limit, the closing ".", back-pressure).
 *
 * Opening.  A message the store has in memory (msg_open_nowait: a small
 * file in the page cache) is opened on the loop, and the host's stream
 * reads it there too: a RETR of a cached message costs no thread hop at
 * all, so pipelined RETRs need no batching into one job (the reason
 * this file used to batch and read ahead).  Otherwise, and when RETR
 * must set \Seen (a blocking store), a job opens it.  A large file with
 * CRLF line ends the stream then reads itself (storage 1.8 msg_source),
 * on the loop while the page cache has it; any other on job threads, a
 * chunk at a time through msg_read, while the client keeps up.
 *
 * The session is held (no command read) and referenced while the stream
 * runs: the reader may still run on a job after the connection went, and
 * the store must outlive it.  A read error in the middle of a message
 * closes the connection: the client already has part of it, and POP3
 * cannot say "truncated".
 *
 * A message opened on a job is closed on a job (msg_close may block):
 * by the next RETR's job, or by protocol->release; one opened on the
 * loop is closed on the loop as soon as it is sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

#define H pop3_host
#define S pop3_storage

struct pop3_retr {
	uint32_t number;        /* message number, for replies and logs */
	uint32_t uid;
	int top;
	uint32_t lines;         /* TOP's body lines */
	int mark_seen;          /* set \Seen when opening */
	postern_msg_t *msg;     /* open, or NULL */
	int msg_nowait;         /* opened on the loop: close it there */
	postern_msg_t *stale;   /* opened on a job and sent: the next job
	                           closes it */
	struct postern_msg_size sizes;
	int streaming;          /* the host's stream runs */
	struct postern_storage_err err; /* a read's, from the job */
};

static void
close_msg(struct pop3_retr *r, postern_msg_t **m)
{
	(void)r;
	if (*m != NULL) {
		S->msg_close(*m);
		*m = NULL;
	}
}

/* The stream's reader: the message in CRLF form. */
static ssize_t
retr_read(void *arg, uint64_t offset, void *buf, size_t len)
{
	struct pop3_retr *r = arg;

	return S->msg_read(r->msg, offset, buf, len, &r->err);
}

static void
retr_streamed(void *arg, int status)
{
	struct pop3_session *s = arg;
	struct pop3_retr *r = s->retr;

	r->streaming = 0;
	if (status == POSTERN_ERROR) {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
		            "pop3: %s: reading message %u (uid %u) failed: %s; "
		            "closing", s->login, r->number, r->uid,
		            r->err.text[0] != '\0' ? r->err.text : "see above");
		pop3_close(s);
	}
	if (r->msg_nowait)
		close_msg(r, &r->msg);
	else {
		r->stale = r->msg; /* a job closes it */
		r->msg = NULL;
	}
	H->session_resume(s->ss);
	H->session_unref(s->ss);
}

/* The message is open: its status line, then the stream. */
static void
retr_send(struct pop3_session *s)
{
	struct pop3_retr *r = s->retr;
	struct postern_stream_source src;
	struct postern_stream_spec spec = {
		.size = sizeof(spec),
		.transform = POSTERN_STREAM_DOTSTUFF,
		.top = r->top,
		.lines = r->lines,
	};
	int rc;

	/* A file the stream can read itself (storage 1.8): on the loop
	 * while the page cache has it, no copy through the store. */
	postern_msg_stream_source(S, r->msg, 0, r->sizes.size, retr_read, r,
	                          &src);
	if (r->msg_nowait && src.read != NULL)
		src.flags |= POSTERN_STREAM_IN_MEMORY;
	if (r->top)
		pop3_reply(s, "+OK top of message follows");
	else
		pop3_reply(s, "+OK %llu octets",
		           (unsigned long long)r->sizes.size);
	memset(&r->err, 0, sizeof(r->err));
	H->session_pause(s->ss);
	H->session_ref(s->ss);
	r->streaming = 1;
	/* Not started: CLOSED (the client is going) or ERROR (logged). */
	rc = H->stream_start(H->session_conn(s->ss), &src, &spec,
	                     retr_streamed, s);
	if (rc != POSTERN_OK)
		retr_streamed(s, rc);
}

/* ---- the job: open (and mark \Seen) ------------------------------------ */

static void
open_work(void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_retr *r = s->retr;
	struct postern_uid_range one = { r->uid, r->uid };
	struct postern_storage_err err = { 0 };
	uint32_t *failed;
	size_t nfailed;
	postern_pool_t *pool;

	close_msg(r, &r->stale);
	if (S->msg_open(s->mbox, r->uid, &r->msg, &r->sizes, &s->err) < 0) {
		r->msg = NULL;
		s->job_failed = 1;
		return;
	}
	if (!r->mark_seen)
		return;
	pool = H->pool_create(1024);
	if (S->store(s->mbox, &one, 1, POSTERN_STORE_ADD, POSTERN_MSG_SEEN,
	             NULL, 0, 0, pool, &failed, &nfailed, &err) < 0)
		H->log(pop3_self, POSTERN_LOG_WARNING,
		       "%s: cannot mark uid %u \\Seen: %s", s->login, r->uid,
		       err.text);
	H->pool_destroy(pool);
}

static void
open_done(struct pop3_session *s)
{
	struct pop3_retr *r = s->retr;

	if (s->job_failed || r->msg == NULL) {
		H->log(pop3_self, POSTERN_LOG_NOTICE,
		       "%s: cannot open message %u (uid %u): %s", s->login,
		       r->number, r->uid, s->err.text);
		pop3_reply_storage_error(s, "cannot read the message",
		                         &s->err);
		return;
	}
	r->msg_nowait = 0;
	retr_send(s);
}

/* ---- on the loop -------------------------------------------------------- */

void
pop3_retr_start(struct pop3_session *s, uint32_t n, int top, uint32_t lines)
{
	enum pop3_lookup why;
	struct pop3_msg *m = pop3_maildrop_get(&s->drop, n, &why);
	struct pop3_retr *r;

	if (m == NULL) {
		pop3_reply(s, why == POP3_MSG_DELETED
		                  ? "-ERR message %u is deleted"
		                  : "-ERR no such message %u", n);
		return;
	}
	if (s->retr == NULL && (s->retr = calloc(1, sizeof(*s->retr))) == NULL) {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
		            "pop3: out of memory for RETR");
		pop3_reply(s, "-ERR [SYS/TEMP] out of memory");
		return;
	}
	r = s->retr;
	r->number = n;
	r->uid = m->uid;
	r->top = top;
	r->lines = lines;
	r->mark_seen = !top && pop3_set.mark_seen && !m->seen;
	if (!top) {
		m->retrieved = 1;
		if (r->mark_seen)
			m->seen = 1;
		s->retrieved++;
	}
	/* In memory and nothing to change in the store: on the loop. */
	if (!r->mark_seen && r->stale == NULL &&
	    POSTERN_SIZED_HAS(S, msg_open_nowait) &&
	    S->msg_open_nowait(s->mbox, r->uid, &r->msg, &r->sizes) == 0) {
		r->msg_nowait = 1;
		retr_send(s);
		return;
	}
	r->msg = NULL;
	pop3_job_start(s, open_work, open_done);
}

void
pop3_retr_close_msg(struct pop3_session *s)
{
	if (s->retr != NULL) {
		close_msg(s->retr, &s->retr->msg);
		close_msg(s->retr, &s->retr->stale);
	}
}

int
pop3_retr_msg_open(const struct pop3_session *s)
{
	return s->retr != NULL &&
	       (s->retr->msg != NULL || s->retr->stale != NULL);
}

void
pop3_retr_free(struct pop3_session *s)
{
	free(s->retr);
	s->retr = NULL;
}
