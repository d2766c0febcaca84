/*
 * smtp_sender.c - the submission rule that an authenticated client sends
 * only as itself (Postfix's reject_sender_login_mismatch).
 *
 * The MAIL FROM address must resolve, through the auth service's
 * `resolve` (aliases, catch-alls and recipient extensions included), to
 * the authenticated login, or be the login name itself.  So alice may
 * send as alice@example.org, alice+news@example.org and as any alias
 * that delivers to her (sales@example.org), not as bob@example.org nor
 * as an address in a domain that is not ours.  The null sender <> is
 * allowed (bounces, vacation replies).  A catch-all makes its target the
 * owner of every otherwise unknown address of its domain, as it would
 * receive their replies.
 *
 * The listener key `sender_login_match` turns it on (auto: on for
 * submission and submissions, off for mx).  Unauthenticated sessions
 * are not checked here (submission requires AUTH first; trusted networks
 * relay as they are).  resolve may block: it runs as a session job.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_session.h"

struct sender_ctx {
	postern_pool_t *pool;
	const char *address;
	const char *login;
	int status;
	const char **targets;
	size_t ntargets;
};

static void
sender_work(postern_session_t *ss, void *st, void *arg)
{
	struct sender_ctx *r = arg;

	(void)ss;
	(void)st;
	r->status = smtp_auth->resolve(r->address, r->pool, &r->targets,
	                               &r->ntargets);
}

/* 1 if one of the targets is the login (names compare as the passwd
 * backend does: ASCII case-insensitively). */
static int
sender_owned(const struct sender_ctx *r)
{
	size_t i;

	if (r->status != POSTERN_AUTH_YES)
		return 0;
	for (i = 0; i < r->ntargets; i++)
		if (strcasecmp(r->targets[i], r->login) == 0)
			return 1;
	return 0;
}

static void
sender_done(postern_session_t *ss, void *st, void *arg, int status)
{
	struct sender_ctx *r = arg;
	struct smtp_session *s = st;
	struct smtp_event ev = { .kind = SMTP_EV_SENDER, .status = 1 };
	char text[SMTP_PATH_MAX + 160];

	(void)ss;
	if (smtp_session_gone(s, status))
		goto out;
	if (status != POSTERN_OK)
		r->status = POSTERN_AUTH_TEMPFAIL;
	if (sender_owned(r)) {
		smtp_event(s, &ev);
		goto out;
	}
	if (r->status == POSTERN_AUTH_TEMPFAIL) {
		smtp_reply(s, 451, "4.3.0", "Cannot check sender <%s> against "
		           "your login now, try again later", r->address);
	} else {
		smtp_host->conn_log(s->conn, POSTERN_LOG_NOTICE,
		                    "sender <%s> refused: not an address of "
		                    "login %s", r->address, r->login);
		snprintf(text, sizeof(text), "Sender address <%s> is not "
		         "owned by the logged-in user %s", r->address,
		         r->login);
		smtp_reply_error(s, 553, "5.7.1", text);
	}
	ev.status = 0;
	smtp_event(s, &ev);
out:
	smtp_host->pool_destroy(r->pool);
}

void
smtp_sender_check(struct smtp_session *s)
{
	struct smtp_event ok = { .kind = SMTP_EV_SENDER, .status = 1 };
	const char *sender = s->txn.env.sender;
	postern_pool_t *pool;
	struct sender_ctx *r;

	if (!s->lst->sender_login_match || s->auth_user == NULL ||
	    smtp_auth == NULL || sender[0] == '\0' ||
	    strcasecmp(sender, s->auth_user) == 0) {
		smtp_event(s, &ok);
		return;
	}
	r = smtp_job_ctx(sizeof(*r));
	pool = r->pool;
	r->address = smtp_host->pool_strndup(pool, sender, strlen(sender));
	r->login = smtp_host->pool_strndup(pool, s->auth_user,
	                                   strlen(s->auth_user));
	r->status = POSTERN_AUTH_TEMPFAIL;
	smtp_job_start(s, sender_work, sender_done, r);
}
