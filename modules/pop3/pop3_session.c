/*
 * pop3_session.c - a POP3 connection: greeting, reading and dispatching
 * commands, the AUTHORIZATION state (USER/PASS, AUTH, STLS, CAPA, APOP),
 * limits, and the end of the session.
 *
 * Commands are handled in order, one at a time: a command that needs a
 * job or a SASL answer pauses the connection, and pipelined commands
 * (RFC 2449 PIPELINING) wait in the host's input buffer until it is done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

#define H pop3_host

void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	if (s->conn == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = (int)sizeof(buf) - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	H->conn_write(s->conn, buf, (size_t)n);
}

void
pop3_close(struct pop3_session *s)
{
	if (s->conn == NULL || s->closing)
		return;
	s->closing = 1;
	H->conn_close(s->conn);
}

void
pop3_pause(struct pop3_session *s)
{
	s->busy = 1;
	if (s->conn != NULL)
		H->conn_pause(s->conn);
}

static void handle_input(struct pop3_session *s, int rc,
                         const struct postern_line *l);

void
pop3_resume(struct pop3_session *s)
{
	s->busy = 0;
	if (s->conn == NULL || s->closing)
		return;
	if (s->shutting_down) {
		/* The worker is stopping: the step in flight is done, and
		 * leaving now deletes nothing (no UPDATE state). */
		pop3_reply(s, "-ERR [SYS/TEMP] server shutting down, try "
		              "again later");
		pop3_close(s);
		return;
	}
	if (s->held) {
		/* The line read ahead while gathering pipelined RETRs. */
		s->held = 0;
		handle_input(s, s->held_rc, &s->held_line);
		if (s->busy || s->closing || s->conn == NULL)
			return;
	}
	H->conn_resume(s->conn);
}

/* An invalid command: counted, and too many end the session. */
static void
bad_command(struct pop3_session *s, const char *why)
{
	pop3_reply(s, "-ERR %s", why);
	if (++s->bad_commands >= (unsigned)pop3_set.max_bad_commands) {
		H->conn_log(s->conn, POSTERN_LOG_NOTICE,
		            "pop3: %u invalid commands: disconnecting",
		            s->bad_commands);
		pop3_reply(s, "-ERR too many invalid commands, closing");
		pop3_close(s);
	}
}

static int
plaintext_ok(struct pop3_session *s)
{
	return pop3_plaintext_allowed(pop3_set.plaintext_auth,
	                              H->conn_tls_active(s->conn),
	                              H->conn_peer_is_loopback(s->conn));
}

/* ---- CAPA (RFC 2449) --------------------------------------------------- */

static void
do_capa(struct pop3_session *s)
{
	int auth = s->state == POP3_STATE_AUTHORIZATION;

	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	if (auth && plaintext_ok(s)) {
		pop3_reply(s, "USER");
		if (*H->sasl_mechanisms() != '\0')
			pop3_reply(s, "SASL %s", H->sasl_mechanisms());
	}
	if (auth && pop3_tls != NULL && !H->conn_tls_active(s->conn))
		pop3_reply(s, "STLS");
	if (*pop3_set.expire != '\0')
		pop3_reply(s, "EXPIRE %s", pop3_set.expire);
	if (pop3_set.login_delay_ms > 0)
		pop3_reply(s, "LOGIN-DELAY %lld",
		           pop3_set.login_delay_ms / 1000);
	if (*pop3_set.implementation != '\0')
		pop3_reply(s, "IMPLEMENTATION %s", pop3_set.implementation);
	pop3_reply(s, ".");
}

/* ---- logins: USER/PASS and AUTH (RFC 1939, RFC 5034) ------------------ */

static void login_done(void *arg, const struct postern_sasl_result *r);

static void
login_failed(struct pop3_session *s, const char *reply)
{
	H->sasl_free(s->sasl);
	s->sasl = NULL;
	pop3_reply(s, "%s", reply);
	if (++s->failed_logins >= (unsigned)pop3_set.max_failed_logins) {
		H->conn_log(s->conn, POSTERN_LOG_NOTICE,
		            "pop3: %u failed logins: disconnecting",
		            s->failed_logins);
		pop3_reply(s, "-ERR [AUTH] too many failed logins, closing");
		pop3_close(s);
	}
	pop3_resume(s);
}

/* The host's answer to PASS, to AUTH or to a SASL response line. */
static void
login_done(void *arg, const struct postern_sasl_result *r)
{
	struct pop3_session *s = arg;

	switch (r->status) {
	case POSTERN_SASL_CONTINUE:
		/* RFC 5034 section 4: "+ " and the base64 challenge. */
		pop3_reply(s, "+ %s", r->challenge);
		s->sasl_reading = 1;
		pop3_resume(s);
		return;
	case POSTERN_SASL_OK:
		s->sasl_reading = 0;
		H->conn_junk_reset(s->conn);
		s->userinfo = r->userinfo;
		s->login = strdup(r->user);
		if (s->login == NULL) {
			login_failed(s, "-ERR [SYS/TEMP] out of memory");
			return;
		}
		/* Stays paused: the mailbox opens on a job. */
		pop3_mailbox_open(s);
		return;
	case POSTERN_SASL_FAIL:
		s->sasl_reading = 0;
		login_failed(s, "-ERR [AUTH] authentication failed");
		return;
	case POSTERN_SASL_MALFORMED:
		s->sasl_reading = 0;
		login_failed(s, "-ERR malformed authentication exchange");
		return;
	case POSTERN_SASL_CANCELLED:
		s->sasl_reading = 0;
		H->sasl_free(s->sasl);
		s->sasl = NULL;
		pop3_reply(s, "-ERR authentication cancelled");
		pop3_resume(s);
		return;
	case POSTERN_SASL_TEMPFAIL:
		s->sasl_reading = 0;
		H->sasl_free(s->sasl);
		s->sasl = NULL;
		pop3_reply(s, "-ERR [SYS/TEMP] authentication service "
		              "unavailable, try again later");
		pop3_resume(s);
		return;
	}
}

static const char plaintext_refused[] =
	"-ERR [AUTH] plaintext authentication is not allowed on an "
	"unencrypted connection: use STLS first";

static void
do_user(struct pop3_session *s, const struct pop3_command *c)
{
	if (!plaintext_ok(s)) {
		pop3_reply(s, "%s", plaintext_refused);
		return;
	}
	memcpy(s->user, c->arg, c->arg_len);
	s->user[c->arg_len] = '\0';
	s->have_user = 1;
	pop3_reply(s, "+OK send PASS");
}

static void
do_pass(struct pop3_session *s, const struct pop3_command *c)
{
	if (!s->have_user) {
		bad_command(s, "USER first");
		return;
	}
	/* RFC 1939 section 7: after PASS, good or bad, USER starts over. */
	s->have_user = 0;
	pop3_pause(s);
	s->sasl = H->login(pop3_self, s->conn, s->user, c->arg, c->arg_len,
	                   login_done, s);
	if (s->sasl == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] cannot check passwords now");
		pop3_resume(s);
	}
}

/* AUTH without arguments: the mechanisms, one per line (what RFC 1734
 * clients probe with before RFC 5034's CAPA SASL). */
static void
list_mechanisms(struct pop3_session *s)
{
	const char *p = H->sasl_mechanisms();
	size_t n;

	pop3_reply(s, "+OK");
	while (plaintext_ok(s) && *p != '\0') {
		n = strcspn(p, " ");
		if (n > 0)
			pop3_reply(s, "%.*s", (int)n, p);
		p += n;
		p += strspn(p, " ");
	}
	pop3_reply(s, ".");
}

static void
do_auth(struct pop3_session *s, const struct pop3_command *c)
{
	char mech[64];

	if (c->arg == NULL) {
		list_mechanisms(s);
		return;
	}
	if (!plaintext_ok(s)) {
		pop3_reply(s, "%s", plaintext_refused);
		return;
	}
	if (c->arg_len >= sizeof(mech)) {
		bad_command(s, "unsupported authentication mechanism");
		return;
	}
	memcpy(mech, c->arg, c->arg_len);
	mech[c->arg_len] = '\0';
	s->have_user = 0;
	pop3_pause(s);
	s->sasl = H->sasl_start(pop3_self, s->conn, mech, c->arg2,
	                        c->arg2_len, login_done, s);
	if (s->sasl == NULL) {
		pop3_resume(s);
		bad_command(s, "unsupported authentication mechanism");
	}
}

/* A line while an AUTH exchange waits for the client (RFC 5034: base64,
 * or "*" to cancel). */
static void
sasl_response(struct pop3_session *s, const struct postern_line *l)
{
	s->sasl_reading = 0;
	pop3_pause(s);
	H->sasl_step(s->sasl, l->data, l->len);
}

static void
do_stls(struct pop3_session *s)
{
	if (pop3_tls == NULL) {
		bad_command(s, "STLS is not available");
		return;
	}
	if (H->conn_tls_active(s->conn)) {
		bad_command(s, "TLS is already active");
		return;
	}
	/* RFC 2595 section 4: everything learnt before is forgotten. */
	s->have_user = 0;
	pop3_reply(s, "+OK begin TLS negotiation");
	if (H->conn_starttls(s->conn, pop3_tls) != POSTERN_OK) {
		H->conn_log(s->conn, POSTERN_LOG_ERROR,
		            "pop3: STLS: cannot start TLS");
		pop3_close(s);
	}
}

static void
do_quit_authorization(struct pop3_session *s)
{
	pop3_reply(s, "+OK postern POP3 server signing off");
	pop3_close(s);
}

/* ---- dispatch ----------------------------------------------------------- */

/* Before the login, CAPA, USER and AUTH's mechanism list cost the
 * client nothing and are no errors: a flood of them counts against the
 * host's junk-command budget.  0 after the goodbye when it is spent. */
static int
junk_allowed(struct pop3_session *s, const struct pop3_command *c)
{
	if (s->state != POP3_STATE_AUTHORIZATION ||
	    (c->cmd != POP3_CMD_CAPA && c->cmd != POP3_CMD_USER &&
	     !(c->cmd == POP3_CMD_AUTH && c->arg == NULL)))
		return 1;
	if (H->conn_junk_command(s->conn) == POSTERN_OK)
		return 1;
	pop3_reply(s, "-ERR [SYS/PERM] too many commands before login, "
	              "closing");
	pop3_close(s);
	return 0;
}

static void
command(struct pop3_session *s, const struct postern_line *l)
{
	struct pop3_command c;
	const char *why;

	switch (pop3_parse(l->data, l->len, s->state, &c, &why)) {
	case POP3_PARSE_OK:
		break;
	case POP3_PARSE_UNKNOWN:
	case POP3_PARSE_BAD_ARGS:
	case POP3_PARSE_WRONG_STATE:
	case POP3_PARSE_TOO_LONG:
		bad_command(s, why);
		return;
	}
	if (!junk_allowed(s, &c))
		return;
	switch (c.cmd) {
	case POP3_CMD_USER:
		do_user(s, &c);
		break;
	case POP3_CMD_PASS:
		do_pass(s, &c);
		break;
	case POP3_CMD_APOP:
		/* Refused at config check: see pop3.c and README.md. */
		bad_command(s, "APOP is not available, use USER/PASS or AUTH");
		break;
	case POP3_CMD_AUTH:
		do_auth(s, &c);
		break;
	case POP3_CMD_STLS:
		do_stls(s);
		break;
	case POP3_CMD_CAPA:
		do_capa(s);
		break;
	case POP3_CMD_QUIT:
		if (s->state == POP3_STATE_AUTHORIZATION)
			do_quit_authorization(s);
		else
			pop3_transaction(s, &c);
		break;
	case POP3_CMD_RETR:
		pop3_retr_start(s, c.msg, 0, 0);
		break;
	case POP3_CMD_TOP:
		pop3_retr_start(s, c.msg, 1, c.lines);
		break;
	default:
		pop3_transaction(s, &c);
		break;
	}
}

/* ---- connection callbacks ---------------------------------------------- */

/* One result of conn_read_line (POSTERN_OK or POSTERN_TOOLONG). */
static void
handle_input(struct pop3_session *s, int rc, const struct postern_line *l)
{
	if (rc == POSTERN_TOOLONG || (l->flags & POSTERN_LINE_NUL)) {
		if (s->sasl_reading) {
			/* The exchange cannot go on (RFC 5034 section 4:
			 * reject with -ERR). */
			s->sasl_reading = 0;
			H->sasl_free(s->sasl);
			s->sasl = NULL;
		}
		bad_command(s, rc == POSTERN_TOOLONG ? "line too long"
		                                     : "NUL byte in command");
		return;
	}
	if (s->sasl_reading)
		sasl_response(s, l);
	else
		command(s, l);
}

static void
on_read(postern_conn_t *conn, void *arg)
{
	struct pop3_session *s = arg;
	struct postern_line l;
	int rc;

	while (!s->busy && !s->closing) {
		rc = H->conn_read_line(conn, POP3_MAX_LINE, &l);
		if (rc == POSTERN_AGAIN || rc == POSTERN_CLOSED)
			return;
		handle_input(s, rc, &l);
	}
}

int
pop3_hold_line(struct pop3_session *s, int rc, const struct postern_line *l)
{
	if (s->held_buf == NULL &&
	    (s->held_buf = malloc(POP3_MAX_LINE)) == NULL)
		return -1;
	s->held = 1;
	s->held_rc = rc;
	s->held_line.flags = rc == POSTERN_OK ? l->flags : 0;
	s->held_line.len = rc == POSTERN_OK ? l->len : 0;
	if (s->held_line.len > 0)
		memcpy(s->held_buf, l->data, s->held_line.len);
	s->held_line.data = s->held_buf;
	return 0;
}

static void
on_drain(postern_conn_t *conn, void *arg)
{
	(void)conn;
	pop3_retr_on_drain(arg);
}

static void
on_close(postern_conn_t *conn, void *arg, enum postern_close_reason why)
{
	struct pop3_session *s = arg;

	(void)conn;
	if (s->login != NULL)
		H->conn_log(conn, POSTERN_LOG_INFO,
		            "pop3: %s: session ended (%s), %u retrieved",
		            s->login,
		            why == POSTERN_CLOSE_LOCAL ? "closed"
		            : why == POSTERN_CLOSE_PEER ? "client left"
		            : why == POSTERN_CLOSE_TIMEOUT ? "idle timeout"
		            : why == POSTERN_CLOSE_SHUTDOWN ? "shutdown"
		                                            : "error",
		            s->retrieved);
	s->conn = NULL;
	/* A job still running (it may read s->userinfo, which the SASL
	 * exchange owns) finishes first; its completion tears the session
	 * down, SASL exchange included. */
	if (s->job == NULL)
		pop3_session_teardown(s);
}

/* RFC 1939 section 3: the autologout timer.  A session ending this way
 * is not in UPDATE: nothing it marked is deleted. */
static int
on_timeout(postern_conn_t *conn, void *arg)
{
	struct pop3_session *s = arg;

	(void)conn;
	if (s->job != NULL)
		return 0; /* a step in flight: let it finish */
	pop3_reply(s, "-ERR autologout: idle for too long");
	s->closing = 1;
	return 1;
}

static void
on_shutdown(postern_conn_t *conn, void *arg)
{
	struct pop3_session *s = arg;

	(void)conn;
	if (s->busy) {
		/* A job or a login in flight: goodbye when it is done. */
		s->shutting_down = 1;
		return;
	}
	pop3_reply(s, "-ERR [SYS/TEMP] server shutting down, try again "
	              "later");
	pop3_close(s);
}

static const struct postern_conn_ops conn_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = on_read,
	.on_drain = on_drain,
	.on_close = on_close,
	.on_timeout = on_timeout,
	.on_shutdown = on_shutdown,
};

void
pop3_on_accept(postern_conn_t *c, void *arg)
{
	struct pop3_session *s = calloc(1, sizeof(*s));

	(void)arg;
	if (s == NULL) {
		/* Without ops set, the host closes the connection. */
		H->conn_log(c, POSTERN_LOG_ERROR, "pop3: out of memory");
		return;
	}
	s->conn = c;
	s->state = POP3_STATE_AUTHORIZATION;
	H->conn_set_ops(c, &conn_ops, s);
	pop3_reply(s, "+OK postern POP3 server ready");
}
