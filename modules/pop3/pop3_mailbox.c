/*
 * pop3_mailbox.c - the session's mailbox: jobs on the store, the login
 * that opens INBOX, the TRANSACTION commands, the UPDATE state and the
 * end of a session.
 *
 * RFC 1939 semantics on top of the storage API (postern/storage.h):
 *   - INBOX is opened with POSTERN_OPEN_EXCLUSIVE: one POP3 session per
 *     mailbox ([IN-USE] for the next, RFC 2449), IMAP views unaffected;
 *   - the view is never synced, so the message list is the snapshot at
 *     login, numbered once;
 *   - DELE only marks; QUIT stores \Deleted on exactly the marked UIDs
 *     and expunges exactly those UIDs, so messages another client marked
 *     \Deleted stay where they are; any other end deletes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

#define H pop3_host
#define S pop3_storage

/* ---- jobs ---------------------------------------------------------------- */

/* A job of the session (postern/session.h): the host holds the session
 * while it runs and tells us when the client has gone. */
static void
job_finished(postern_session_t *ss, void *st, void *arg, int status)
{
	struct pop3_session *s = st;

	(void)arg;
	s->job_running = 0;
	/* What the job left open is closed on a job by the host if the
	 * session ends before we close it. */
	H->session_handles(ss, s->store != NULL || s->mbox != NULL ||
	                           pop3_retr_msg_open(s));
	if (status == POSTERN_CLOSED)
		return; /* nobody to answer */
	if (status == POSTERN_ERROR) {
		/* We never cancel our jobs: only the pool's end does. */
		s->err.code = POSTERN_SE_TEMP;
		strcpy(s->err.text, "server shutting down");
		s->job_failed = 1;
	}
	s->job_done(s);
}

static void
job_work(postern_session_t *ss, void *st, void *arg)
{
	struct pop3_session *s = st;

	(void)ss;
	(void)arg;
	s->job_work(s);
}

void
pop3_job_start(struct pop3_session *s, postern_job_work_fn work,
               pop3_job_done_fn done)
{
	s->job_failed = 0;
	memset(&s->err, 0, sizeof(s->err));
	s->job_done = done;
	s->job_running = 1;
	s->job_work = work;
	H->session_job(s->ss, job_work, job_finished, NULL);
}

size_t
pop3_format_storage_error(char *buf, size_t cap, const char *what,
                          const struct postern_storage_err *err)
{
	const char *code;
	int n;

	switch (err->code) {
	case POSTERN_SE_INUSE:
		code = "[IN-USE] ";
		break;
	case POSTERN_SE_TEMP:
	case POSTERN_SE_LIMIT:
	case POSTERN_SE_OVERQUOTA:
		code = "[SYS/TEMP] ";
		break;
	case POSTERN_SE_EXPUNGED:
		code = "";
		break;
	default:
		code = "[SYS/PERM] ";
		break;
	}
	n = snprintf(buf, cap, "-ERR %s%s: %.*s", code, what,
	             (int)sizeof(err->text),
	             err->text[0] != '\0' ? err->text : "storage error");
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

void
pop3_reply_storage_error(struct pop3_session *s, const char *what,
                         const struct postern_storage_err *err)
{
	char line[POP3_ERROR_LINE_MAX];

	pop3_format_storage_error(line, sizeof(line), what, err);
	pop3_reply(s, "%s", line);
}

/* ---- login: open INBOX exclusively (AUTHORIZATION -> TRANSACTION) ------- */

static void
open_work(void *arg)
{
	struct pop3_session *s = arg;

	if (S->store_open(s->userinfo, &s->store, &s->err) < 0) {
		s->store = NULL;
		s->job_failed = 1;
		return;
	}
	if (S->open(s->store, "INBOX", POSTERN_OPEN_EXCLUSIVE, &s->mbox,
	            &s->err) < 0) {
		s->mbox = NULL;
		S->store_close(s->store);
		s->store = NULL;
		s->job_failed = 1;
	}
}

/* Copies the view into the session's numbered snapshot (on the loop:
 * count and message are loop functions). */
static int
take_snapshot(struct pop3_session *s)
{
	uint32_t n = S->count(s->mbox), seq, kept = 0;
	const struct postern_message_info *mi;

	if (pop3_maildrop_init(&s->drop, n) < 0)
		return -1;
	for (seq = 1; seq <= n; seq++) {
		mi = S->message(s->mbox, seq);
		if (mi == NULL || mi->expunged)
			continue;
		kept++;
		pop3_maildrop_set(&s->drop, kept, mi->uid, mi->size, mi->flags,
		                  mi->guid);
	}
	s->drop.count = kept;
	return 0;
}

static void
open_done(struct pop3_session *s)
{
	/* The user's record is no longer needed. */
	H->sasl_free(s->sasl);
	s->sasl = NULL;
	s->userinfo = NULL;
	if (s->job_failed) {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_NOTICE,
		            "pop3: %s: cannot open INBOX: %s", s->login,
		            s->err.text);
		pop3_reply_storage_error(s, "cannot open the mailbox", &s->err);
		s->login = NULL;
		return;
	}
	if (take_snapshot(s) < 0) {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
		            "pop3: %s: out of memory for the message list",
		            s->login);
		pop3_reply(s, "-ERR [SYS/TEMP] out of memory");
		pop3_close(s); /* the host releases the mailbox */
		return;
	}
	s->state = POP3_STATE_TRANSACTION;
	/* The junk budget is given back; CAPA stops counting. */
	H->session_login_ok(s->ss);
	H->conn_log(H->session_conn(s->ss), POSTERN_LOG_INFO,
	            "pop3: %s: logged in, %u messages", s->login,
	            s->drop.count);
	pop3_reply(s, "+OK maildrop has %u messages (%llu octets)",
	           s->drop.count, (unsigned long long)s->drop.total_size);
}

void
pop3_mailbox_open(struct pop3_session *s)
{
	pop3_job_start(s, open_work, open_done);
}

/* ---- TRANSACTION commands ------------------------------------------------ */

/* Message n for LIST, UIDL, DELE: NULL after replying -ERR. */
static struct pop3_msg *
msg_or_error(struct pop3_session *s, uint32_t n)
{
	enum pop3_lookup why;
	struct pop3_msg *m = pop3_maildrop_get(&s->drop, n, &why);

	if (m == NULL)
		pop3_reply(s, why == POP3_MSG_DELETED
		                  ? "-ERR message %u is deleted"
		                  : "-ERR no such message %u", n);
	return m;
}

static void
do_list(struct pop3_session *s, const struct pop3_command *c)
{
	const struct pop3_msg *m;
	uint32_t i;

	if (c->has_msg) {
		if ((m = msg_or_error(s, c->msg)) != NULL)
			pop3_reply(s, "+OK %u %llu", c->msg,
			           (unsigned long long)m->size);
		return;
	}
	pop3_reply(s, "+OK %u messages (%llu octets)",
	           pop3_maildrop_visible(&s->drop),
	           (unsigned long long)pop3_maildrop_visible_size(&s->drop));
	for (i = 0; i < s->drop.count; i++)
		if (!s->drop.msgs[i].deleted)
			pop3_reply(s, "%u %llu", i + 1,
			           (unsigned long long)s->drop.msgs[i].size);
	pop3_reply(s, ".");
}

static void
do_uidl(struct pop3_session *s, const struct pop3_command *c)
{
	const struct pop3_msg *m;
	uint32_t i;

	if (c->has_msg) {
		if ((m = msg_or_error(s, c->msg)) != NULL)
			pop3_reply(s, "+OK %u %s", c->msg, m->uidl);
		return;
	}
	pop3_reply(s, "+OK unique-id listing follows");
	for (i = 0; i < s->drop.count; i++)
		if (!s->drop.msgs[i].deleted)
			pop3_reply(s, "%u %s", i + 1, s->drop.msgs[i].uidl);
	pop3_reply(s, ".");
}

static void
do_dele(struct pop3_session *s, uint32_t n)
{
	switch (pop3_maildrop_dele(&s->drop, n)) {
	case POP3_MSG_OK:
		pop3_reply(s, "+OK message %u deleted", n);
		break;
	case POP3_MSG_DELETED:
		pop3_reply(s, "-ERR message %u already deleted", n);
		break;
	case POP3_MSG_NONE:
		pop3_reply(s, "-ERR no such message %u", n);
		break;
	}
}

/* ---- UPDATE (QUIT in TRANSACTION) ------------------------------------- */

/* The one job of the UPDATE state: \Deleted on exactly the marked UIDs,
 * expunge exactly those, then close the mailbox and the store (the
 * session has nothing more to do with them, and the exclusive lock goes
 * before the client hears "+OK"). */
static void
update_work(void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_update *u = s->update;
	struct postern_sync_changes ch;
	postern_pool_t *pool;
	uint32_t *failed;
	size_t nfailed;

	if (u->nranges > 0) {
		pool = H->pool_create(4096);
		if (S->store(s->mbox, u->ranges, u->nranges,
		             POSTERN_STORE_ADD, POSTERN_MSG_DELETED, NULL, 0, 0,
		             pool, &failed, &nfailed, &s->err) < 0 ||
		    S->expunge(s->mbox, u->ranges, u->nranges, pool, &ch,
		               &s->err) < 0)
			s->job_failed = 1;
		else
			u->expunged = ch.nexpunged;
		H->pool_destroy(pool);
	}
	S->close(s->mbox);
	s->mbox = NULL;
	S->store_close(s->store);
	s->store = NULL;
}

static void
update_done(struct pop3_session *s)
{
	struct pop3_update *u = s->update;

	if (s->job_failed) {
		/* RFC 1939 section 6: -ERR when some deleted messages were
		 * not removed. */
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
		            "pop3: %s: removing %u deleted message(s) "
		            "failed: %s", s->login, s->drop.ndeleted,
		            s->err.text);
		pop3_reply(s, "-ERR [SYS/TEMP] some deleted messages were not "
		              "removed: %s", s->err.text);
	} else {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_INFO,
		            "pop3: %s: %u message(s) deleted", s->login,
		            s->drop.ndeleted);
		pop3_reply(s, "+OK postern POP3 server signing off (%u "
		              "messages deleted)", s->drop.ndeleted);
	}
	free(u->ranges);
	free(u);
	s->update = NULL;
	pop3_close(s);
}

static void
do_quit(struct pop3_session *s)
{
	struct pop3_update *u;

	s->state = POP3_STATE_UPDATE;
	if (pop3_expire_zero) {
		/* EXPIRE 0 (RFC 2449 section 6.7): what was retrieved goes. */
		uint32_t i;

		for (i = 0; i < s->drop.count; i++)
			if (s->drop.msgs[i].retrieved)
				pop3_maildrop_dele(&s->drop, i + 1);
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL || pop3_maildrop_deleted_ranges(&s->drop, &u->ranges,
	                                              &u->nranges) < 0) {
		free(u);
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
		            "pop3: %s: out of memory at QUIT", s->login);
		pop3_reply(s, "-ERR [SYS/TEMP] out of memory: nothing deleted");
		pop3_close(s);
		return;
	}
	s->update = u;
	pop3_job_start(s, update_work, update_done);
}

void
pop3_transaction(struct pop3_session *s, const struct pop3_command *c)
{
	switch (c->cmd) {
	case POP3_CMD_STAT:
		pop3_reply(s, "+OK %u %llu", pop3_maildrop_visible(&s->drop),
		           (unsigned long long)
		           pop3_maildrop_visible_size(&s->drop));
		break;
	case POP3_CMD_LIST:
		do_list(s, c);
		break;
	case POP3_CMD_UIDL:
		do_uidl(s, c);
		break;
	case POP3_CMD_DELE:
		do_dele(s, c->msg);
		break;
	case POP3_CMD_NOOP:
		pop3_reply(s, "+OK");
		break;
	case POP3_CMD_RSET:
		pop3_maildrop_rset(&s->drop);
		pop3_reply(s, "+OK maildrop has %u messages (%llu octets)",
		           s->drop.count,
		           (unsigned long long)s->drop.total_size);
		break;
	case POP3_CMD_QUIT:
		do_quit(s);
		break;
	default:
		/* The parser admits nothing else in TRANSACTION. */
		pop3_reply(s, "-ERR unexpected command");
		break;
	}
}

/* ---- the end of a session --------------------------------------------- */

void
pop3_session_release(postern_session_t *ss, void *st)
{
	struct pop3_session *s = st;

	(void)ss;
	pop3_retr_close_msg(s);
	if (s->mbox != NULL)
		S->close(s->mbox);
	if (s->store != NULL)
		S->store_close(s->store);
	s->mbox = NULL;
	s->store = NULL;
}

void
pop3_session_free(postern_session_t *ss, void *st)
{
	struct pop3_session *s = st;

	(void)ss;
	H->sasl_free(s->sasl);
	pop3_retr_free(s);
	pop3_maildrop_free(&s->drop);
	if (s->update != NULL)
		free(s->update->ranges);
	free(s->update);
	H->pool_destroy(s->pool);
}
