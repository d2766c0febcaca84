/*
 * pop3_retr.c - RETR and TOP: a message streamed from the store to the
 * client, one job per piece.
 *
 * Each job (on a pool thread) opens the message the first time, reads up
 * to RETR_OUT_BUDGET octets of it and byte-stuffs them into the session's
 * output buffer; the completion (on the loop) queues that buffer and, if
 * the client keeps up (less than RETR_HIGH_WATER octets still unsent),
 * starts the next job at once, else on the next on_drain.  The message is
 * closed by the job that reaches its end (or TOP's last line), so a small
 * message costs one job: open, read, close.  A read error before the
 * "+OK" is an -ERR; after it the client already has part of the message,
 * so the connection is closed (RFC 1939 has no way to say "truncated").
 */
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

#define H pop3_host
#define S pop3_storage

/* What one read from the store asks for. */
#define RETR_CHUNK (64 * 1024)
/* Octets of input one job handles at most before handing back. */
#define RETR_IN_BUDGET (64 * 1024)
/* Stop producing while this much output waits for the socket. */
#define RETR_HIGH_WATER (512 * 1024)

#define RETR_OUT_CAP (POP3_STUFF_OUT_MAX(RETR_IN_BUDGET) + POP3_STUFF_TAIL_MAX)

struct pop3_retr {
	uint32_t number;        /* message number (for replies) */
	uint32_t uid;
	int top;
	int mark_seen;          /* set \Seen when opening */
	struct pop3_stuffer st;
	postern_msg_t *msg;     /* open message, or NULL */
	uint64_t offset;        /* next octet of the message to read */
	uint64_t size;          /* from msg_open */
	int started;            /* "+OK" sent */
	int finished;           /* the terminating "." is in `out` */
	int waiting_drain;      /* the next job waits for on_drain */
	char in[RETR_CHUNK];
	char out[RETR_OUT_CAP];
	size_t out_len;
};

/* ---- the job ------------------------------------------------------------ */

static void
close_msg(struct pop3_retr *r)
{
	if (r->msg != NULL) {
		S->msg_close(r->msg);
		r->msg = NULL;
	}
}

/* Opens the message; \Seen first when configured, so that the flag is
 * set whether or not the client reads to the end. */
static int
open_msg(struct pop3_session *s, struct pop3_retr *r)
{
	struct postern_msg_size sizes;
	struct postern_uid_range one = { r->uid, r->uid };
	uint32_t *failed;
	size_t nfailed;
	postern_pool_t *pool;

	if (S->msg_open(s->mbox, r->uid, &r->msg, &sizes, &s->err) < 0) {
		r->msg = NULL;
		return -1;
	}
	r->size = sizes.size;
	if (r->mark_seen) {
		pool = H->pool_create(1024);
		if (S->store(s->mbox, &one, 1, POSTERN_STORE_ADD,
		             POSTERN_MSG_SEEN, NULL, 0, 0, pool, &failed,
		             &nfailed, &s->err) < 0)
			H->log(pop3_self, POSTERN_LOG_WARNING,
			       "%s: cannot mark uid %u \\Seen: %s", s->login,
			       r->uid, s->err.text);
		H->pool_destroy(pool);
		memset(&s->err, 0, sizeof(s->err));
	}
	return 0;
}

static void
retr_work(void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_retr *r = s->retr;
	size_t budget = RETR_IN_BUDGET, want;
	ssize_t n;

	r->out_len = 0;
	if (r->msg == NULL && open_msg(s, r) < 0) {
		s->job_failed = 1;
		return;
	}
	while (budget > 0 && !r->st.done) {
		want = budget < RETR_CHUNK ? budget : RETR_CHUNK;
		n = S->msg_read(r->msg, r->offset, r->in, want, &s->err);
		if (n < 0) {
			s->job_failed = 1;
			close_msg(r);
			return;
		}
		if (n == 0)
			break;
		r->out_len += pop3_stuff(&r->st, r->in, (size_t)n,
		                         r->out + r->out_len);
		r->offset += (uint64_t)n;
		budget -= (size_t)n;
	}
	if (budget > 0 || r->st.done) {
		/* The end of the message, or all TOP wanted. */
		r->out_len += pop3_stuff_finish(&r->st, r->out + r->out_len);
		r->finished = 1;
		close_msg(r);
	}
}

/* ---- on the loop -------------------------------------------------------- */

static void retr_done(struct pop3_session *s);

static void
next_piece(struct pop3_session *s)
{
	s->retr->waiting_drain = 0;
	pop3_job_start(s, retr_work, retr_done);
}

static void
retr_done(struct pop3_session *s)
{
	struct pop3_retr *r = s->retr;

	if (s->job_failed) {
		if (!r->started) {
			H->conn_log(s->conn, POSTERN_LOG_NOTICE,
			            "pop3: %s: cannot read message %u (uid %u): "
			            "%s", s->login, r->number, r->uid,
			            s->err.text);
			pop3_reply_storage_error(s, "cannot read the message",
			                         &s->err);
			pop3_resume(s);
			return;
		}
		H->conn_log(s->conn, POSTERN_LOG_ERROR,
		            "pop3: %s: reading message %u (uid %u) failed at "
		            "octet %llu: %s; closing", s->login, r->number,
		            r->uid, (unsigned long long)r->offset, s->err.text);
		pop3_close(s);
		return;
	}
	if (!r->started) {
		r->started = 1;
		if (r->top)
			pop3_reply(s, "+OK top of message follows");
		else
			pop3_reply(s, "+OK %llu octets",
			           (unsigned long long)r->size);
	}
	H->conn_write(s->conn, r->out, r->out_len);
	if (r->finished) {
		pop3_resume(s);
		return;
	}
	if (H->conn_output_pending(s->conn) >= RETR_HIGH_WATER) {
		/* Stay paused; on_drain starts the next piece. */
		r->waiting_drain = 1;
		return;
	}
	next_piece(s);
}

void
pop3_retr_on_drain(struct pop3_session *s)
{
	if (s->retr != NULL && s->retr->waiting_drain && s->job == NULL)
		next_piece(s);
}

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
	if (s->retr == NULL && (s->retr = malloc(sizeof(*s->retr))) == NULL) {
		H->conn_log(s->conn, POSTERN_LOG_ERROR,
		            "pop3: out of memory for RETR");
		pop3_reply(s, "-ERR [SYS/TEMP] out of memory");
		return;
	}
	r = s->retr;
	r->number = n;
	r->uid = m->uid;
	r->top = top;
	r->mark_seen = !top && pop3_set.mark_seen && !m->seen;
	pop3_stuffer_init(&r->st, top, lines);
	r->msg = NULL;
	r->offset = 0;
	r->size = 0;
	r->started = 0;
	r->finished = 0;
	r->waiting_drain = 0;
	r->out_len = 0;
	if (!top) {
		m->retrieved = 1;
		if (r->mark_seen)
			m->seen = 1;
		s->retrieved++;
	}
	pop3_job_start(s, retr_work, retr_done);
}

void
pop3_retr_close_msg(struct pop3_session *s)
{
	if (s->retr != NULL)
		close_msg(s->retr);
}

void
pop3_retr_free(struct pop3_session *s)
{
	free(s->retr);
	s->retr = NULL;
}
