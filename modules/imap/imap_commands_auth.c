/*
 * imap_commands_auth.c - the not-authenticated state: STARTTLS, LOGIN
 * and AUTHENTICATE (RFC 3501 6.2, SASL-IR RFC 4959), through the host's
 * SASL (which checks passwords on a job thread and delays failures),
 * then the store opened on a job before the OK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

void
imap_cmd_starttls(struct imap_cmd *c)
{
	struct imap_session *s = c->s;

	if (imap_arg_end(&c->args) < 0) {
		imap_reply(s, c->tag, "BAD", "STARTTLS takes no arguments");
		return;
	}
	if (imap_tls == NULL || imap_host->conn_tls_active(s->conn)) {
		imap_reply(s, c->tag, "NO", "TLS is not available here");
		return;
	}
	imap_reply(s, c->tag, "OK", "Begin TLS negotiation now");
	/* The host discards whatever the client pipelined after the
	 * command (RFC 3501 6.2.1 and CVE-2011-0411). */
	if (imap_host->conn_starttls(s->conn, imap_tls) != POSTERN_OK)
		imap_host->session_close(s->ss);
}

/* ---- after the password check ----------------------------------------*/

struct login_arg {
	const struct postern_user *userinfo;
	postern_store_t *store;
	char *user;
};

static void
login_work(struct imap_job *j)
{
	struct login_arg *a = j->arg;

	j->rc = imap_storage->store_open(a->userinfo, &a->store, &j->err);
}

static void
login_done(struct imap_job *j)
{
	struct imap_session *s = j->s;
	struct login_arg *a = j->arg;

	imap_host->sasl_free(s->sasl);
	s->sasl = NULL;
	if (j->rc < 0) {
		imap_log(s, POSTERN_LOG_ERROR,
		         "login %s: cannot open the mail store: %s",
		         a->user, j->err.text);
		imap_reply(s, j->tag, "NO", "[UNAVAILABLE] Mail store not "
		                            "available, try later");
		imap_userip_leave(s);
		return;
	}
	s->store = a->store;
	s->user = strdup(a->user);
	if (s->user == NULL)
		abort();
	s->state = IMAP_AUTH;
	/* The store is closed by imap_release, on a job. */
	imap_host->session_handles(s->ss, 1);
	imap_host->session_login_ok(s->ss);
	imap_session_limits(s, &s->reader.lim);
	imap_log(s, POSTERN_LOG_DEBUG, "store of %s open%s",
	         s->user,
	         imap_host->conn_tls_active(s->conn) ? " (TLS)" :
	                                               "");
	imap_reply(s, j->tag, "OK", "[CAPABILITY %s] Logged in",
	           imap_capabilities(s));
}

/* The user has max_userip_connections from this address already: the
 * login is refused and the connection closed, as Dovecot does (from a
 * job's done, not inside the SASL callback that frees the exchange). */
static void
userip_refused(struct imap_job *j)
{
	struct imap_session *s = j->s;
	struct login_arg *a = j->arg;

	imap_host->sasl_free(s->sasl);
	s->sasl = NULL;
	imap_log(s, POSTERN_LOG_NOTICE,
	         "login %s: %lld sessions from this address "
	         "already (max_userip_connections): refused",
	         a->user, imap_cfg.max_userip_conns);
	imap_reply(s, j->tag, "NO", "[LIMIT] Too many connections of this "
	                            "user from this address");
	imap_host->session_reply(s->ss, "* BYE Too many connections");
	imap_host->session_close(s->ss);
}

void
imap_session_login(struct imap_session *s, const char *tag, const char *user,
                   const struct postern_user *userinfo, postern_sasl_t *sasl)
{
	struct imap_job *j = imap_job_new(s, tag, sizeof(struct login_arg));
	struct login_arg *a = j->arg;

	(void)sasl;
	if (imap_userip_enter(s, user) < 0) {
		a->user = imap_host->pool_strndup(j->pool, user, strlen(user));
		imap_job_run(j, NULL, userip_refused);
		return;
	}
	a->userinfo = userinfo; /* valid until sasl_free, in login_done */
	a->user = imap_host->pool_strndup(j->pool, user, strlen(user));
	imap_job_run(j, login_work, login_done);
}

/* A failed login; too many end the session (the host's budget,
 * max_auth_failures). */
static void
login_failed(struct imap_session *s, const char *status, const char *text)
{
	imap_reply(s, s->sasl_tag, status, "%s", text);
	imap_host->session_login_failed(s->ss);
}

static void auth_line(postern_session_t *ss, void *st,
                      const struct postern_line *l);

static void
sasl_result(void *arg, const struct postern_sasl_result *r)
{
	struct imap_session *s = arg;
	struct imap_buf b = { 0 };

	if (s->conn == NULL)
		return;
	switch (r->status) {
	case POSTERN_SASL_OK:
		/* The store opens on a job, which holds the session. */
		imap_session_login(s, s->sasl_tag, r->user, r->userinfo,
		                   s->sasl);
		imap_host->session_resume(s->ss);
		return;
	case POSTERN_SASL_CONTINUE:
		imap_buf_printf(&b, "+ %s\r\n", r->challenge);
		imap_write_buf(s, &b);
		imap_buf_free(&b);
		imap_command_finish(s); /* next comes the response line */
		imap_host->session_take_lines(s->ss, auth_line);
		imap_host->session_resume(s->ss);
		return;
	case POSTERN_SASL_FAIL:
		login_failed(s, "NO", "[AUTHENTICATIONFAILED] Authentication "
		                      "failed");
		break;
	case POSTERN_SASL_MALFORMED:
		login_failed(s, "BAD", "Malformed authentication data");
		break;
	case POSTERN_SASL_CANCELLED:
		imap_reply(s, s->sasl_tag, "BAD", "Authentication cancelled");
		break;
	case POSTERN_SASL_TEMPFAIL:
		imap_reply(s, s->sasl_tag, "NO", "[UNAVAILABLE] Authentication "
		                                 "service not available");
		break;
	}
	imap_host->sasl_free(s->sasl);
	s->sasl = NULL;
	if (s->conn == NULL)
		return;
	imap_command_finish(s);
	imap_host->session_resume(s->ss);
}

/* The client's response to a "+" challenge.  One that cannot be read
 * (too long, a NUL) cancels the exchange, as "*" would. */
static void
auth_line(postern_session_t *ss, void *st, const struct postern_line *l)
{
	struct imap_session *s = st;

	imap_host->session_take_lines(ss, NULL);
	imap_host->session_pause(ss);
	if (l->flags & (POSTERN_LINE_TOOLONG | POSTERN_LINE_NUL) ||
	    l->len > (size_t)imap_cfg.max_line)
		imap_host->sasl_step(s->sasl, "*", 1);
	else
		imap_host->sasl_step(s->sasl, l->data, l->len);
}

void
imap_cmd_login(struct imap_cmd *c)
{
	struct imap_session *s = c->s;
	struct imap_str user, pass;
	char *u;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &user) < 0 ||
	    imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &pass) < 0 ||
	    imap_arg_end(&c->args) < 0) {
		imap_reply(s, c->tag, "BAD", "LOGIN: %s", c->args.error);
		return;
	}
	if (!imap_plaintext_ok(s)) {
		imap_reply(s, c->tag, "NO", "[PRIVACYREQUIRED] Plaintext "
		                            "authentication disallowed without "
		                            "TLS (use STARTTLS)");
		return;
	}
	if (memchr(user.s, '\0', user.len) != NULL) {
		imap_reply(s, c->tag, "BAD", "NUL in user name");
		return;
	}
	u = imap_host->pool_strndup(c->pool, user.s, user.len);
	snprintf(s->sasl_tag, sizeof(s->sasl_tag), "%s", c->tag);
	imap_host->session_pause(s->ss);
	s->sasl = imap_host->login(imap_self, s->conn, u, pass.s, pass.len,
	                           sasl_result, s);
	if (s->sasl == NULL) {
		imap_host->session_resume(s->ss);
		imap_reply(s, c->tag, "NO", "[UNAVAILABLE] Login not possible "
		                            "now");
	}
}

void
imap_cmd_authenticate(struct imap_cmd *c)
{
	struct imap_session *s = c->s;
	struct imap_str mech, ir = { 0 };
	char *m;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_atom(&c->args, &mech) < 0) {
		imap_reply(s, c->tag, "BAD", "AUTHENTICATE: %s", c->args.error);
		return;
	}
	if (!imap_arg_at_end(&c->args) &&
	    (imap_arg_sp(&c->args) < 0 || imap_arg_atom(&c->args, &ir) < 0 ||
	     imap_arg_end(&c->args) < 0)) {
		imap_reply(s, c->tag, "BAD", "AUTHENTICATE: %s", c->args.error);
		return;
	}
	m = imap_host->pool_strndup(c->pool, mech.s, mech.len);
	if (!imap_plaintext_ok(s) &&
	    (strcasecmp(m, "PLAIN") == 0 || strcasecmp(m, "LOGIN") == 0)) {
		imap_reply(s, c->tag, "NO", "[PRIVACYREQUIRED] Plaintext "
		                            "authentication disallowed without "
		                            "TLS (use STARTTLS)");
		return;
	}
	snprintf(s->sasl_tag, sizeof(s->sasl_tag), "%s", c->tag);
	imap_host->session_pause(s->ss);
	s->sasl = imap_host->sasl_start(imap_self, s->conn, m,
	                                ir.s, ir.len, sasl_result, s);
	if (s->sasl == NULL) {
		imap_host->session_resume(s->ss);
		imap_reply(s, c->tag, "NO", "Unsupported authentication "
		                            "mechanism");
	}
}
