/*
 * pop3_session.c - a POP3 connection: greeting, reading and dispatching
 * commands, the AUTHORIZATION state (USER/PASS, AUTH, STLS, CAPA, APOP),
 * limits, and the end of the session.
 *
 * The host's session layer (postern/session.h) owns the rest: the
 * listeners, reading commands in order one at a time (a command that
 * needs a job or a SASL answer holds the session, and pipelined commands,
 * RFC 2449 PIPELINING, wait in the input buffer until it is done), the
 * budgets of invalid commands, failed logins and junk commands, and the
 * idle and shutdown goodbyes.  This file is the parser's glue and the
 * command table.
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

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= 0)
		H->session_reply(s->ss, "%s", buf);
}

void
pop3_close(struct pop3_session *s)
{
	H->session_close(s->ss);
}

/* An invalid command: counted, and too many end the session. */
static void
bad_command(struct pop3_session *s, const char *why)
{
	pop3_reply(s, "-ERR %s", why);
	H->session_error(s->ss);
}

static int
plaintext_ok(struct pop3_session *s)
{
	postern_conn_t *c = H->session_conn(s->ss);

	return c != NULL &&
	       pop3_plaintext_allowed(pop3_set.plaintext_auth,
	                              H->conn_tls_active(c),
	                              H->conn_peer_is_loopback(c));
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
	if (auth && pop3_tls != NULL &&
	    !H->conn_tls_active(H->session_conn(s->ss)))
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
static void sasl_response(postern_session_t *ss, void *st,
                          const struct postern_line *l);

static void
login_failed(struct pop3_session *s, const char *reply)
{
	H->sasl_free(s->sasl);
	s->sasl = NULL;
	pop3_reply(s, "%s", reply);
	H->session_login_failed(s->ss);
	H->session_resume(s->ss);
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
		H->session_take_lines(s->ss, sasl_response);
		H->session_resume(s->ss);
		return;
	case POSTERN_SASL_OK:
		s->userinfo = r->userinfo;
		s->login = H->pool_strndup(s->pool, r->user, strlen(r->user));
		/* The mailbox opens on a job, which holds the session. */
		pop3_mailbox_open(s);
		H->session_resume(s->ss);
		return;
	case POSTERN_SASL_FAIL:
		login_failed(s, "-ERR [AUTH] authentication failed");
		return;
	case POSTERN_SASL_MALFORMED:
		login_failed(s, "-ERR malformed authentication exchange");
		return;
	case POSTERN_SASL_CANCELLED:
		H->sasl_free(s->sasl);
		s->sasl = NULL;
		pop3_reply(s, "-ERR authentication cancelled");
		H->session_resume(s->ss);
		return;
	case POSTERN_SASL_TEMPFAIL:
		H->sasl_free(s->sasl);
		s->sasl = NULL;
		pop3_reply(s, "-ERR [SYS/TEMP] authentication service "
		              "unavailable, try again later");
		H->session_resume(s->ss);
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
	H->session_pause(s->ss);
	s->sasl = H->login(pop3_self, H->session_conn(s->ss), s->user, c->arg,
	                   c->arg_len, login_done, s);
	if (s->sasl == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] cannot check passwords now");
		H->session_resume(s->ss);
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
	H->session_pause(s->ss);
	s->sasl = H->sasl_start(pop3_self, H->session_conn(s->ss), mech,
	                        c->arg2, c->arg2_len, login_done, s);
	if (s->sasl == NULL) {
		H->session_resume(s->ss);
		bad_command(s, "unsupported authentication mechanism");
	}
}

/* A line while an AUTH exchange waits for the client (RFC 5034: base64,
 * or "*" to cancel). */
static void
sasl_response(postern_session_t *ss, void *st, const struct postern_line *l)
{
	struct pop3_session *s = st;

	H->session_take_lines(ss, NULL);
	if (l->flags & (POSTERN_LINE_TOOLONG | POSTERN_LINE_NUL)) {
		/* The exchange cannot go on (RFC 5034 section 4: reject
		 * with -ERR). */
		H->sasl_free(s->sasl);
		s->sasl = NULL;
		bad_command(s, l->flags & POSTERN_LINE_TOOLONG
		                   ? "line too long" : "NUL byte in command");
		return;
	}
	H->session_pause(ss);
	H->sasl_step(s->sasl, l->data, l->len);
}

static void
do_stls(struct pop3_session *s)
{
	if (pop3_tls == NULL) {
		bad_command(s, "STLS is not available");
		return;
	}
	if (H->conn_tls_active(H->session_conn(s->ss))) {
		bad_command(s, "TLS is already active");
		return;
	}
	/* RFC 2595 section 4: everything learnt before is forgotten. */
	s->have_user = 0;
	pop3_reply(s, "+OK begin TLS negotiation");
	if (H->conn_starttls(H->session_conn(s->ss), pop3_tls) != POSTERN_OK) {
		H->conn_log(H->session_conn(s->ss), POSTERN_LOG_ERROR,
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

/* ---- the command table ------------------------------------------------- */

/* AUTH without arguments lists the mechanisms: a command of its own in
 * the table, because it is junk before the login and AUTH is not. */
#define POP3_CMD_AUTH_LIST (POP3_CMD_UIDL + 1)

static void
cmd_user(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	do_user(st, c);
}

static void
cmd_pass(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	do_pass(st, c);
}

static void
cmd_apop(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	(void)c;
	/* Refused at config check: see pop3.c and README.md. */
	bad_command(st, "APOP is not available, use USER/PASS or AUTH");
}

static void
cmd_auth(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	do_auth(st, c);
}

static void
cmd_auth_list(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	(void)c;
	list_mechanisms(st);
}

static void
cmd_stls(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	(void)c;
	do_stls(st);
}

static void
cmd_capa(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	(void)c;
	do_capa(st);
}

static void
cmd_quit(postern_session_t *ss, void *st, void *c)
{
	struct pop3_session *s = st;

	(void)ss;
	if (s->state == POP3_STATE_AUTHORIZATION)
		do_quit_authorization(s);
	else
		pop3_transaction(s, c);
}

static void
cmd_retr(postern_session_t *ss, void *st, void *vc)
{
	const struct pop3_command *c = vc;

	(void)ss;
	pop3_retr_start(st, c->msg, c->cmd == POP3_CMD_TOP, c->lines);
}

static void
cmd_transaction(postern_session_t *ss, void *st, void *c)
{
	(void)ss;
	pop3_transaction(st, c);
}

static const struct postern_command pop3_commands[] = {
	[POP3_CMD_UNKNOWN] = { "?", 0, cmd_transaction },
	[POP3_CMD_USER] = { "USER", POSTERN_CMD_JUNK_UNTIL_LOGIN, cmd_user },
	[POP3_CMD_PASS] = { "PASS", 0, cmd_pass },
	[POP3_CMD_APOP] = { "APOP", 0, cmd_apop },
	[POP3_CMD_AUTH] = { "AUTH", 0, cmd_auth },
	[POP3_CMD_STLS] = { "STLS", 0, cmd_stls },
	[POP3_CMD_CAPA] = { "CAPA", POSTERN_CMD_JUNK_UNTIL_LOGIN, cmd_capa },
	[POP3_CMD_QUIT] = { "QUIT", 0, cmd_quit },
	[POP3_CMD_STAT] = { "STAT", 0, cmd_transaction },
	[POP3_CMD_LIST] = { "LIST", 0, cmd_transaction },
	[POP3_CMD_RETR] = { "RETR", 0, cmd_retr },
	[POP3_CMD_DELE] = { "DELE", 0, cmd_transaction },
	[POP3_CMD_NOOP] = { "NOOP", 0, cmd_transaction },
	[POP3_CMD_RSET] = { "RSET", 0, cmd_transaction },
	[POP3_CMD_TOP] = { "TOP", 0, cmd_retr },
	[POP3_CMD_UIDL] = { "UIDL", 0, cmd_transaction },
	[POP3_CMD_AUTH_LIST] = { "AUTH", POSTERN_CMD_JUNK_UNTIL_LOGIN,
	                         cmd_auth_list },
};

/* A line into a command of the table, or -1 after the -ERR (the host
 * counts it against max_bad_commands). */
static int
pop3_parse_line(postern_session_t *ss, void *st, const struct postern_line *l,
                void *vc)
{
	struct pop3_session *s = st;
	struct pop3_command *c = vc;
	const char *why;

	(void)ss;
	if (l->flags & (POSTERN_LINE_TOOLONG | POSTERN_LINE_NUL)) {
		pop3_reply(s, "-ERR %s", l->flags & POSTERN_LINE_TOOLONG
		                             ? "line too long"
		                             : "NUL byte in command");
		return -1;
	}
	if (pop3_parse(l->data, l->len, s->state, c, &why) != POP3_PARSE_OK) {
		pop3_reply(s, "-ERR %s", why);
		return -1;
	}
	if (c->cmd == POP3_CMD_AUTH && c->arg == NULL)
		return POP3_CMD_AUTH_LIST;
	return (int)c->cmd;
}

/* ---- session callbacks --------------------------------------------------- */

static void
pop3_on_start(postern_session_t *ss, void *st)
{
	struct pop3_session *s = st;

	s->ss = ss;
	s->pool = H->pool_create(1024);
	s->state = POP3_STATE_AUTHORIZATION;
}

static void
pop3_on_close(postern_session_t *ss, void *st, enum postern_close_reason why)
{
	struct pop3_session *s = st;

	if (s->login != NULL)
		H->conn_log(H->session_conn(ss), POSTERN_LOG_INFO,
		            "pop3: %s: session ended (%s), %u retrieved",
		            s->login,
		            why == POSTERN_CLOSE_LOCAL ? "closed"
		            : why == POSTERN_CLOSE_PEER ? "client left"
		            : why == POSTERN_CLOSE_TIMEOUT ? "idle timeout"
		            : why == POSTERN_CLOSE_SHUTDOWN ? "shutdown"
		                                            : "error",
		            s->retrieved);
}

/* RFC 1939 section 3: the autologout timer ("timeout" below) ends a
 * session that is not in UPDATE: nothing it marked is deleted; so does
 * a worker's graceful stop ("goodbye", after the step in flight). */
struct postern_protocol pop3_protocol = {
	.size = sizeof(struct postern_protocol),
	.name = "pop3",
	.max_line = POP3_MAX_LINE,
	.greeting = "+OK postern POP3 server ready",
	.goodbye = "-ERR [SYS/TEMP] server shutting down, try again later",
	.timeout = "-ERR autologout: idle for too long",
	.too_many_errors = "-ERR too many invalid commands, closing",
	.too_many_logins = "-ERR [AUTH] too many failed logins, closing",
	.too_many_junk = "-ERR [SYS/PERM] too many commands before login, "
	                 "closing",
	.session_size = sizeof(struct pop3_session),
	.command_size = sizeof(struct pop3_command),
	.commands = pop3_commands,
	.ncommands = sizeof(pop3_commands) / sizeof(pop3_commands[0]),
	.parse = pop3_parse_line,
	.on_start = pop3_on_start,
	.on_close = pop3_on_close,
	.release = pop3_session_release,
	.free = pop3_session_free,
};
