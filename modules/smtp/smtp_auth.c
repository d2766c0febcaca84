/*
 * smtp_auth.c - AUTH (RFC 4954) through the host's shared SASL (PLAIN,
 * LOGIN; initial responses), then the smtp.auth filter stage.
 *
 * States: AUTH_STEP (a step is checked), AUTH_LINE (334 said, the
 * response line expected), AUTH_HOOK (the auth stage), then READY.
 *
 * Policy: AUTH only on listeners that allow it, only outside a
 * transaction (the machine's rule: READY only), once per session, and only over TLS unless the listener
 * says plaintext_auth (538 5.7.11 otherwise).  A failure says 535 5.7.8
 * and never which part was wrong; the host adds the failure delay.
 * Response lines come raw from the session layer (session_take_lines).
 */
#include <string.h>

#include "smtp_session.h"


static void
auth_end(struct smtp_session *s)
{
	smtp_host->sasl_free(s->sasl);
	s->sasl = NULL;
	smtp_enter(s, SMTP_ST_READY);
}

/* A response line (RFC 4954: base64, or "*" to cancel). */
static void
auth_response(postern_session_t *ss, void *st, const struct postern_line *l)
{
	struct smtp_session *s = st;

	smtp_host->session_take_lines(ss, NULL);
	/* The session's lines may be as long as a message line. */
	if ((l->flags & (POSTERN_LINE_TOOLONG | POSTERN_LINE_NUL)) ||
	    l->len > SMTP_AUTH_LINE_MAX) {
		smtp_reply_error(s, 500, "5.5.6", "authentication exchange "
		                 "line too long or malformed");
		auth_end(s);
		return;
	}
	smtp_enter(s, SMTP_ST_AUTH_STEP);
	smtp_session_wait(s, SMTP_WAIT_SASL);
	smtp_host->sasl_step(s->sasl, l->data, l->len);
}

void
smtp_on_auth_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	const struct postern_verdict *v = ev->verdict;

	smtp_enter(s, SMTP_ST_READY);
	if (v->kind == POSTERN_VERDICT_REJECT ||
	    v->kind == POSTERN_VERDICT_TEMPFAIL) {
		smtp_host->conn_log(s->conn, POSTERN_LOG_NOTICE,
		                    "smtp: AUTH as %s refused by a filter",
		                    s->auth_user);
		s->auth_user = NULL;
		smtp_reply_verdict(s, v, 535, "5.7.8",
		                   "authentication refused");
		smtp_host->session_error(s->ss);
	} else {
		smtp_host->conn_log(s->conn, POSTERN_LOG_INFO,
		                    "smtp: authenticated as %s", s->auth_user);
		smtp_reply(s, 235, "2.7.0", "Authentication successful");
	}
	smtp_session_resume(s);
}

static void
sasl_done(void *arg, const struct postern_sasl_result *r)
{
	struct smtp_event ev = { .kind = SMTP_EV_SASL, .sasl = r };

	smtp_event(arg, &ev);
}

void
smtp_on_sasl(struct smtp_session *s, const struct smtp_event *ev)
{
	const struct postern_sasl_result *r = ev->sasl;

	switch (r->status) {
	case POSTERN_SASL_CONTINUE:
		smtp_reply(s, 334, NULL, "%s", r->challenge);
		smtp_enter(s, SMTP_ST_AUTH_LINE);
		smtp_host->session_take_lines(s->ss, auth_response);
		smtp_session_resume(s);
		return;
	case POSTERN_SASL_OK:
		s->auth_user = smtp_host->pool_strndup(s->pool, r->user,
		                                       strlen(r->user));
		smtp_host->sasl_free(s->sasl);
		s->sasl = NULL;
		smtp_enter(s, SMTP_ST_AUTH_HOOK);
		smtp_stage_run(s, POSTERN_SMTP_AUTH);
		return;
	case POSTERN_SASL_FAIL:
		smtp_host->conn_log(s->conn, POSTERN_LOG_NOTICE,
		                    "smtp: AUTH failed");
		smtp_reply_error(s, 535, "5.7.8",
		                 "authentication credentials invalid");
		break;
	case POSTERN_SASL_MALFORMED:
		smtp_reply_error(s, 501, "5.5.2",
		                 "cannot decode the response");
		break;
	case POSTERN_SASL_CANCELLED:
		smtp_reply_error(s, 501, "5.0.0", "authentication cancelled");
		break;
	case POSTERN_SASL_TEMPFAIL:
		smtp_reply(s, 454, "4.7.0",
		           "temporary authentication failure");
		break;
	}
	auth_end(s);
	smtp_session_resume(s);
}

void
smtp_cmd_auth(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_error err;
	char mech[32];
	const char *ir;
	size_t irlen;

	/* Before EHLO and in a transaction the machine refused it. */
	if (s->lst->auth == SMTP_AUTH_OFF) {
		smtp_reply_error(s, 503, "5.5.1", "AUTH not available here");
		return;
	}
	if (!s->esmtp) {
		smtp_reply_error(s, 503, "5.5.1", "send EHLO first");
		return;
	}
	if (s->auth_user != NULL) {
		smtp_reply_error(s, 503, "5.5.1", "already authenticated");
		return;
	}
	if (!s->tls && !s->lst->plaintext_auth) {
		smtp_reply_error(s, 538, "5.7.11", "encryption required for "
		                 "requested authentication mechanism");
		return;
	}
	if (smtp_parse_auth(cmd->arg, cmd->arg_len, mech, sizeof(mech), &ir,
	                    &irlen, &err) < 0) {
		smtp_reply_error(s, err.code, err.enhanced, err.text);
		return;
	}
	smtp_enter(s, SMTP_ST_AUTH_STEP);
	smtp_session_wait(s, SMTP_WAIT_SASL);
	/* The host never calls back inside sasl_start. */
	s->sasl = smtp_host->sasl_start(smtp_self, s->conn, mech, ir, irlen,
	                                sasl_done, s);
	if (s->sasl == NULL) {
		smtp_enter(s, SMTP_ST_READY);
		smtp_session_resume(s);
		smtp_reply_error(s, 504, "5.5.4",
		                 "unrecognized authentication type");
	}
}
