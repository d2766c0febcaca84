/*
 * pop3_retr.c - RETR and TOP: messages streamed from the store to the
 * client, one job per piece.
 *
 * A RETR (or TOP) queues its message, then takes every further RETR and
 * TOP the client has already pipelined (up to RETR_BATCH; RFC 2449
 * PIPELINING), so that one job serves many small messages: handing work
 * to a pool thread and back costs more than reading a small message.  The
 * first line read ahead that is something else is held and handled when
 * the batch is done, so replies keep the order of the commands.
 *
 * Each job (on a pool thread) goes through the queue: it opens a message,
 * writes its "+OK" line (or "-ERR" when the store cannot open it, and
 * goes on with the next), reads it in RETR_CHUNK pieces and byte-stuffs
 * them (pop3_stuff.c), adds the terminating ".", closes it, and stops
 * after RETR_IN_BUDGET octets of input.  The completion (on the loop)
 * queues the output and starts the next job at once if the client keeps
 * up (less than RETR_HIGH_WATER octets unsent), else on the next on_drain.
 * A read error in the middle of a message closes the connection: the
 * client already has part of it, and POP3 cannot say "truncated".
 *
 * Read-ahead: clients download in order, one RETR after the other.  When
 * a job has served its queue it also reads the next message (if it is
 * small, not deleted, and RETR need not set \Seen) into the rest of the
 * output buffer, ready to send; the next "RETR n+1" is then answered on
 * the loop at once, and the job that reads n+2 runs while the client is
 * busy with n+1, instead of after its command arrives.  Messages never
 * change once delivered, so what was read ahead is what RETR would read;
 * DELE, RSET and the rest are checked when the RETR comes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

#define H pop3_host
#define S pop3_storage

/* Messages one batch takes at most. */
#define RETR_BATCH 64
/* What one read from the store asks for at most. */
#define RETR_CHUNK (32 * 1024)
/* Octets of message one job reads at most before handing back. */
#define RETR_IN_BUDGET (128 * 1024)
/* Messages larger than this are not read ahead. */
#define RETR_AHEAD_MAX (64 * 1024)
/* Stop producing while this much output waits for the socket. */
#define RETR_HIGH_WATER (512 * 1024)
/* Each message adds one status line (POP3_ERROR_LINE_MAX at most) and a
 * tail to what its octets become. */
#define RETR_OUT_CAP                                                        \
	(POP3_STUFF_OUT_MAX(RETR_IN_BUDGET) +                               \
	 RETR_BATCH * (POP3_ERROR_LINE_MAX + POP3_STUFF_TAIL_MAX))

struct retr_item {
	uint32_t number;  /* message number, for replies and logs */
	uint32_t uid;
	int top;
	uint32_t lines;   /* TOP's body lines */
	int mark_seen;    /* set \Seen when opening */
};

struct pop3_retr {
	struct retr_item q[RETR_BATCH];
	unsigned qhead, qlen;   /* q[qhead] is being sent */
	/* The message at q[qhead], once opened. */
	postern_msg_t *msg;
	struct pop3_stuffer st;
	uint64_t offset;        /* its next octet to read */
	int fatal;              /* a read failed mid-message */
	/* Read-ahead: ahead_number > 0 asks the job for it (ahead_uid);
	 * `ahead` says out[ahead_off, ahead_off + ahead_len) holds the
	 * whole RETR response for it. */
	uint32_t ahead_number;
	uint32_t ahead_uid;
	int ahead;
	size_t ahead_off, ahead_len;
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

static void
out_line(struct pop3_retr *r, const char *text, size_t len)
{
	memcpy(r->out + r->out_len, text, len);
	r->out_len += len;
	r->out[r->out_len++] = '\r';
	r->out[r->out_len++] = '\n';
}

/* Opens q[qhead] and writes its "+OK" line, or its "-ERR" line. */
static int
open_item(struct pop3_session *s, struct pop3_retr *r,
          const struct retr_item *it)
{
	struct postern_msg_size sizes;
	struct postern_uid_range one = { it->uid, it->uid };
	struct postern_storage_err err = { 0 };
	char line[POP3_ERROR_LINE_MAX];
	uint32_t *failed;
	size_t nfailed, n;
	postern_pool_t *pool;

	if (S->msg_open(s->mbox, it->uid, &r->msg, &sizes, &err) < 0) {
		r->msg = NULL;
		H->log(pop3_self, POSTERN_LOG_NOTICE,
		       "%s: cannot open message %u (uid %u): %s", s->login,
		       it->number, it->uid, err.text);
		n = pop3_format_storage_error(line, sizeof(line),
		                              "cannot read the message", &err);
		out_line(r, line, n);
		return -1;
	}
	if (it->mark_seen) {
		pool = H->pool_create(1024);
		if (S->store(s->mbox, &one, 1, POSTERN_STORE_ADD,
		             POSTERN_MSG_SEEN, NULL, 0, 0, pool, &failed,
		             &nfailed, &err) < 0)
			H->log(pop3_self, POSTERN_LOG_WARNING,
			       "%s: cannot mark uid %u \\Seen: %s", s->login,
			       it->uid, err.text);
		H->pool_destroy(pool);
	}
	if (it->top)
		n = (size_t)snprintf(line, sizeof(line),
		                     "+OK top of message follows");
	else
		n = (size_t)snprintf(line, sizeof(line), "+OK %llu octets",
		                     (unsigned long long)sizes.size);
	out_line(r, line, n);
	pop3_stuffer_init(&r->st, it->top, it->lines);
	r->offset = 0;
	return 0;
}

/* After the queue: the whole response for message ahead_number, kept
 * after the output in `out`.  Any failure just means no read-ahead (the
 * RETR, if it comes, reads the message itself and reports). */
static void
read_ahead(struct pop3_session *s, struct pop3_retr *r)
{
	struct postern_msg_size sizes;
	struct postern_storage_err err = { 0 };
	char line[64];
	size_t start = r->out_len, n;
	ssize_t got;

	if (S->msg_open(s->mbox, r->ahead_uid, &r->msg, &sizes, &err) < 0) {
		r->msg = NULL;
		return;
	}
	if (sizes.size > RETR_AHEAD_MAX ||
	    start + POP3_STUFF_OUT_MAX(sizes.size) + sizeof(line) +
	            POP3_STUFF_TAIL_MAX > RETR_OUT_CAP) {
		close_msg(r);
		return;
	}
	n = (size_t)snprintf(line, sizeof(line), "+OK %llu octets",
	                     (unsigned long long)sizes.size);
	out_line(r, line, n);
	pop3_stuffer_init(&r->st, 0, 0);
	r->offset = 0;
	while (r->offset < sizes.size) {
		got = S->msg_read(r->msg, r->offset, r->in, RETR_CHUNK, &err);
		if (got <= 0)
			break;
		r->out_len += pop3_stuff(&r->st, r->in, (size_t)got,
		                         r->out + r->out_len);
		r->offset += (uint64_t)got;
	}
	close_msg(r);
	if (r->offset != sizes.size) {
		r->out_len = start;
		return;
	}
	r->out_len += pop3_stuff_finish(&r->st, r->out + r->out_len);
	r->ahead = 1;
	r->ahead_off = start;
	r->ahead_len = r->out_len - start;
	r->out_len = start;
}

static void
retr_work(void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_retr *r = s->retr;
	size_t budget = RETR_IN_BUDGET, want;
	ssize_t n = 0;

	r->out_len = 0;
	while (r->qhead < r->qlen && budget > 0) {
		const struct retr_item *it = &r->q[r->qhead];

		if (r->msg == NULL && open_item(s, r, it) < 0) {
			r->qhead++;
			continue;
		}
		while (budget > 0 && !r->st.done) {
			want = budget < RETR_CHUNK ? budget : RETR_CHUNK;
			n = S->msg_read(r->msg, r->offset, r->in, want,
			                &s->err);
			if (n <= 0)
				break;
			r->out_len += pop3_stuff(&r->st, r->in, (size_t)n,
			                         r->out + r->out_len);
			r->offset += (uint64_t)n;
			budget -= (size_t)n;
		}
		if (n < 0) {
			r->fatal = 1;
			close_msg(r);
			return;
		}
		if (n > 0 && !r->st.done)
			return; /* budget spent mid-message: the next job */
		/* The end of the message, or all TOP wanted. */
		r->out_len += pop3_stuff_finish(&r->st, r->out + r->out_len);
		close_msg(r);
		r->qhead++;
	}
	if (r->qhead == r->qlen && r->ahead_number > 0)
		read_ahead(s, r);
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

	if (r->out_len > 0)
		H->session_write(s->ss, r->out, r->out_len);
	if (r->fatal || s->job_failed) {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
		            "pop3: %s: reading message %u (uid %u) failed at "
		            "octet %llu: %s; closing", s->login,
		            r->qhead < r->qlen ? r->q[r->qhead].number : 0,
		            r->qhead < r->qlen ? r->q[r->qhead].uid : 0,
		            (unsigned long long)r->offset, s->err.text);
		pop3_close(s);
		return;
	}
	if (r->qhead == r->qlen) {
		/* Its buffers are large: an idle session keeps them only
		 * for a message read ahead. */
		if (!r->ahead)
			pop3_retr_free(s);
		return; /* the host reads the next command */
	}
	if (H->conn_output_pending(H->session_conn(s->ss)) >= RETR_HIGH_WATER) {
		/* Hold the session; on_drain starts the next piece. */
		r->waiting_drain = 1;
		H->session_pause(s->ss);
		return;
	}
	next_piece(s);
}

void
pop3_retr_on_drain(struct pop3_session *s)
{
	if (s->retr != NULL && s->retr->waiting_drain && !s->job_running) {
		next_piece(s); /* the job holds the session now */
		H->session_resume(s->ss);
	}
}

/* Queues message n, or answers -ERR and returns -1. */
static int
enqueue(struct pop3_session *s, uint32_t n, int top, uint32_t lines,
        int reply)
{
	struct pop3_retr *r = s->retr;
	enum pop3_lookup why;
	struct pop3_msg *m = pop3_maildrop_get(&s->drop, n, &why);
	struct retr_item *it;

	if (m == NULL) {
		if (reply)
			pop3_reply(s, why == POP3_MSG_DELETED
			                  ? "-ERR message %u is deleted"
			                  : "-ERR no such message %u", n);
		return -1;
	}
	it = &r->q[r->qlen++];
	it->number = n;
	it->uid = m->uid;
	it->top = top;
	it->lines = lines;
	it->mark_seen = !top && pop3_set.mark_seen && !m->seen;
	if (!top) {
		m->retrieved = 1;
		if (it->mark_seen)
			m->seen = 1;
		s->retrieved++;
	}
	return 0;
}

/* Takes the RETRs and TOPs the client has already sent after this one.
 * The first other line (or one that would be an error) is held. */
static void
gather_pipelined(struct pop3_session *s)
{
	struct pop3_retr *r = s->retr;
	struct postern_line l;
	struct pop3_command c;
	const char *why;

	while (r->qlen < RETR_BATCH &&
	       H->session_read_line(s->ss, &l) == POSTERN_OK) {
		if (!(l.flags & (POSTERN_LINE_NUL | POSTERN_LINE_TOOLONG)) &&
		    pop3_parse(l.data, l.len, s->state, &c, &why) ==
		        POP3_PARSE_OK &&
		    (c.cmd == POP3_CMD_RETR || c.cmd == POP3_CMD_TOP) &&
		    enqueue(s, c.msg, c.cmd == POP3_CMD_TOP, c.lines, 0) == 0)
			continue;
		H->session_hold_line(s->ss, &l);
		return;
	}
}

/* Which message the job should read ahead, after the last one queued:
 * the next number, when RETR (not TOP) came last, it exists and is not
 * deleted, and RETR need not set \Seen (that is a change the client has
 * not asked for yet). */
static void
choose_ahead(struct pop3_session *s, uint32_t last, int last_top)
{
	struct pop3_retr *r = s->retr;
	enum pop3_lookup why;
	struct pop3_msg *m;

	r->ahead_number = 0;
	if (pop3_set.mark_seen || last_top || last >= POP3_MAX_NUMBER)
		return;
	m = pop3_maildrop_get(&s->drop, last + 1, &why);
	if (m == NULL || m->size > RETR_AHEAD_MAX)
		return;
	r->ahead_number = last + 1;
	r->ahead_uid = m->uid;
}

/* RETR n when n was read ahead: sends it now.  1 if it did. */
static int
send_ahead(struct pop3_session *s, uint32_t n)
{
	struct pop3_retr *r = s->retr;
	enum pop3_lookup why;
	struct pop3_msg *m;

	if (r == NULL || !r->ahead || r->ahead_number != n)
		return 0;
	if ((m = pop3_maildrop_get(&s->drop, n, &why)) == NULL ||
	    m->uid != r->ahead_uid)
		return 0;
	if (H->log_enabled(POSTERN_LOG_DEBUG))
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_DEBUG,
		            "pop3: RETR %u answered from the read-ahead", n);
	H->session_write(s->ss, r->out + r->ahead_off, r->ahead_len);
	m->retrieved = 1;
	s->retrieved++;
	r->ahead = 0;
	return 1;
}

void
pop3_retr_start(struct pop3_session *s, uint32_t n, int top, uint32_t lines)
{
	struct pop3_retr *r;
	int served = !top && send_ahead(s, n);

	if (s->retr == NULL && (s->retr = malloc(sizeof(*s->retr))) == NULL) {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
		            "pop3: out of memory for RETR");
		pop3_reply(s, "-ERR [SYS/TEMP] out of memory");
		return;
	}
	r = s->retr;
	r->qhead = r->qlen = 0;
	r->msg = NULL;
	r->fatal = 0;
	r->waiting_drain = 0;
	r->ahead = 0;
	r->ahead_number = 0;
	r->out_len = 0;
	if (!served && enqueue(s, n, top, lines, 1) < 0) {
		pop3_retr_free(s);
		return;
	}
	/* What the client has pipelined meanwhile joins the job, which
	 * then reads the message after the last one ahead.  (After a
	 * read-ahead hit the job may have nothing else to do; its
	 * completion still hands over a line gather_pipelined held.) */
	gather_pipelined(s);
	if (r->qlen > 0)
		choose_ahead(s, r->q[r->qlen - 1].number, r->q[r->qlen - 1].top);
	else
		choose_ahead(s, n, 0);
	pop3_job_start(s, retr_work, retr_done);
}

void
pop3_retr_close_msg(struct pop3_session *s)
{
	if (s->retr != NULL)
		close_msg(s->retr);
}

int
pop3_retr_msg_open(const struct pop3_session *s)
{
	return s->retr != NULL && s->retr->msg != NULL;
}

void
pop3_retr_free(struct pop3_session *s)
{
	free(s->retr);
	s->retr = NULL;
}
