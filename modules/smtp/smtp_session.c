/*
 * smtp_session.c - one SMTP session on the host's session layer
 * (postern/session.h): the protocol it runs (command table, parser glue,
 * fixed replies), replies, and the commands that are not part of a mail
 * transaction (HELO, EHLO, STARTTLS, RSET, NOOP, QUIT, VRFY, EXPN, HELP).
 * AUTH is in smtp_auth.c, MAIL/RCPT/DATA/BDAT in smtp_txn.c, BURL in
 * smtp_burl.c.
 *
 * Every command passes the state machine's rule for the session's state
 * (smtp_state.c) before its handler runs: a command out of sequence gets
 * its 503 (or 554) there, counted against max_errors, and the session
 * goes on.  A command the listener does not offer (BURL on an MX) is
 * not implemented there (502), whatever the state.
 *
 * Pipelining (RFC 2920) needs nothing special: replies are queued and the
 * host sends them once per loop turn, and a command that waits for a job
 * or a filter pauses the session, so the next pipelined command is read
 * only after the reply before it was queued.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp_session.h"

#define H smtp_host

/* Entries of the command table past the verbs: the STARTTLS filter
 * stage, run before the first command over TLS. */
#define SMTP_CMD_TLS_STAGE SMTP_VERB_COUNT

/* ---- replies -------------------------------------------------------- */

void
smtp_reply(struct smtp_session *s, unsigned code, const char *enhanced,
           const char *fmt, ...)
{
	char text[512], *p;
	va_list ap;

	s->last_code = code;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Texts from filters and clients (an address) must not break the
	 * reply into lines of their own. */
	for (p = text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	/* Enhanced codes are for clients that said EHLO (RFC 2034). */
	if (enhanced != NULL && !(s->greeted && !s->esmtp))
		H->session_reply(s->ss, "%u %s %s", code, enhanced, text);
	else
		H->session_reply(s->ss, "%u %s", code, text);
}

void
smtp_session_close(struct smtp_session *s)
{
	smtp_enter(s, SMTP_ST_CLOSED);
	H->session_close(s->ss);
}

void
smtp_reply_error(struct smtp_session *s, unsigned code, const char *enhanced,
                 const char *text)
{
	smtp_reply(s, code, enhanced, "%s", text);
	/* Past max_errors the host says too_many_errors and closes. */
	H->session_error(s->ss);
}

/* A handler's code is used only when it agrees with its verdict. */
int
smtp_reply_verdict(struct smtp_session *s, const struct postern_verdict *v,
                   unsigned def5, const char *def5x, const char *deftext)
{
	unsigned code;
	const char *enh, *text;
	int disconnect = (v->flags & POSTERN_VERDICT_DISCONNECT) != 0;

	if (v->kind == POSTERN_VERDICT_REJECT) {
		code = v->code >= 500 && v->code <= 599 ? v->code : def5;
		enh = v->enhanced != NULL && v->enhanced[0] == '5'
		          ? v->enhanced : def5x;
		text = v->text != NULL ? v->text : deftext;
	} else if (v->kind == POSTERN_VERDICT_TEMPFAIL) {
		code = v->code >= 400 && v->code <= 499 ? v->code : 451;
		enh = v->enhanced != NULL && v->enhanced[0] == '4'
		          ? v->enhanced : "4.7.1";
		text = v->text != NULL ? v->text : "try again later";
		/* RFC 5321 3.8: a server that closes says 421. */
		if (disconnect)
			code = 421;
	} else {
		/* DISCARD and QUARANTINE from mail on decide the message's
		 * fate (discard wins); before MAIL there is no message. */
		if (s->txn.pool != NULL &&
		    v->kind == POSTERN_VERDICT_DISCARD)
			s->txn.outcome = SMTP_OUT_DISCARD;
		else if (s->txn.pool != NULL &&
		         v->kind == POSTERN_VERDICT_QUARANTINE &&
		         s->txn.outcome == SMTP_OUT_DELIVER)
			s->txn.outcome = SMTP_OUT_QUARANTINE;
		if (disconnect) {
			smtp_reply(s, 421, "4.7.0", "%s closing",
			           smtp_cfg.hostname);
			smtp_session_close(s);
		}
		return 0;
	}
	smtp_reply(s, code, enh, "%s", text);
	if (disconnect)
		smtp_session_close(s);
	return 1;
}

/* ---- the payload filters see ------------------------------------------ */

/* TLS comes up inside the host (implicit, or after STARTTLS): notice it
 * before each command. */
static void
check_tls(struct smtp_session *s)
{
	struct postern_tls_info ti = { .size = sizeof(ti) };

	if (s->tls || !smtp_host->conn_tls_active(s->conn) ||
	    smtp_host->conn_tls_info(s->conn, &ti) != POSTERN_OK)
		return;
	s->tls = 1;
	snprintf(s->tls_version, sizeof(s->tls_version), "%s",
	         ti.version != NULL ? ti.version : "TLS");
	snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s",
	         ti.cipher != NULL ? ti.cipher : "unknown");
	s->tls_bits = ti.bits;
}

void
smtp_session_update_info(struct smtp_session *s)
{
	struct postern_smtp_session_info *i = &s->info;

	check_tls(s);
	i->size = sizeof(*i);
	i->id = smtp_host->conn_id(s->conn);
	i->peer = smtp_host->conn_peer(s->conn);
	i->peer_port = smtp_host->conn_peer_port(s->conn);
	i->listener = s->lst->l.name;
	i->helo = s->greeted ? s->helo : NULL;
	i->esmtp = s->esmtp;
	i->tls = s->tls;
	i->tls_version = s->tls ? s->tls_version : NULL;
	i->tls_cipher = s->tls ? s->tls_cipher : NULL;
	i->auth_user = s->auth_user;
	memset(&s->payload, 0, sizeof(s->payload));
	s->payload.size = sizeof(s->payload);
	s->payload.session = i;
	if (s->txn.pool != NULL) {
		s->payload.txn = &s->txn;
		s->payload.envelope = &s->txn.env;
	}
}

/* A step is over: when the worker stops, a session without a
 * transaction in flight says goodbye now. */
static void
goodbye_if_stopping(struct smtp_session *s)
{
	if (s->shutting && smtp_state_idle(s->state)) {
		smtp_reply(s, 421, "4.3.2", "%s shutting down",
		           smtp_cfg.hostname);
		smtp_session_close(s);
	}
}

void
smtp_session_wait(struct smtp_session *s, enum smtp_wait what)
{
	if (s->wait == SMTP_WAIT_NONE)
		H->session_pause(s->ss);
	s->wait = what;
}

void
smtp_session_resume(struct smtp_session *s)
{
	int waited = s->wait != SMTP_WAIT_NONE;

	s->wait = SMTP_WAIT_NONE;
	goodbye_if_stopping(s);
	if (waited)
		H->session_resume(s->ss);
}

int
smtp_session_gone(struct smtp_session *s, int status)
{
	return status == POSTERN_CLOSED || H->session_closing(s->ss);
}

/* ---- jobs ------------------------------------------------------------ */

struct job_ctx {
	postern_pool_t *pool;
};

void *
smtp_job_ctx(size_t size)
{
	postern_pool_t *pool = smtp_host->pool_create(4096);
	struct job_ctx *c = smtp_host->pool_alloc(pool, size);

	c->pool = pool;
	return c;
}

void
smtp_job_start(struct smtp_session *s, postern_session_work_fn work,
               postern_session_done_fn done, void *ctx)
{
	smtp_session_wait(s, SMTP_WAIT_JOB);
	smtp_host->session_job(s->ss, work, done, ctx);
}

/* ---- HELO / EHLO ---------------------------------------------------- */

static int
auth_allowed_now(const struct smtp_session *s)
{
	return s->lst->auth != SMTP_AUTH_OFF && s->auth_user == NULL &&
	       (s->tls || s->lst->plaintext_auth);
}

static void
ehlo_reply(struct smtp_session *s)
{
	postern_session_t *ss = s->ss;
	const char *burl;

	H->session_reply(ss, "250-%s Hello %s [%s]", smtp_cfg.hostname,
	                 s->helo, H->conn_peer(s->conn));
	H->session_reply(ss, "250-PIPELINING");
	H->session_reply(ss, "250-SIZE %lld", smtp_cfg.max_message_size);
	H->session_reply(ss, "250-8BITMIME");
	H->session_reply(ss, "250-ENHANCEDSTATUSCODES");
	H->session_reply(ss, "250-CHUNKING");
	if (smtp_relay != NULL)
		H->session_reply(ss, "250-DSN");
	if (smtp_tls != NULL && !s->tls)
		H->session_reply(ss, "250-STARTTLS");
	if (auth_allowed_now(s))
		H->session_reply(ss, "250-AUTH %s", H->sasl_mechanisms());
	if ((burl = smtp_burl_keyword(s)) != NULL)
		H->session_reply(ss, "250-%s", burl);
	H->session_reply(ss, "250 SMTPUTF8");
}

void
smtp_on_helo_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	if (smtp_reply_verdict(s, ev->verdict, 550, "5.7.1",
	                       "HELO refused")) {
		s->greeted = 0;
		s->esmtp = 0;
		H->session_error(s->ss);
	} else if (s->esmtp)
		ehlo_reply(s);
	else
		smtp_reply(s, 250, NULL, "%s", smtp_cfg.hostname);
	smtp_enter(s, smtp_rest_state(s));
	smtp_session_resume(s);
}

static void
cmd_helo(struct smtp_session *s, const struct smtp_command *cmd, int esmtp)
{
	struct smtp_error err;

	if (smtp_parse_helo(cmd->arg, cmd->arg_len, s->helo, sizeof(s->helo),
	                    &err) < 0) {
		smtp_reply_error(s, err.code, err.enhanced, err.text);
		return;
	}
	/* EHLO and HELO start over (RFC 5321 4.1.4). */
	smtp_txn_reset(s);
	s->greeted = 1;
	s->esmtp = esmtp;
	smtp_enter(s, SMTP_ST_HELO_HOOK);
	smtp_stage_run(s, POSTERN_SMTP_HELO);
}

/* ---- STARTTLS ------------------------------------------------------- */

static void
cmd_starttls(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (cmd->arg_len > 0) {
		smtp_reply_error(s, 501, "5.5.4", "STARTTLS takes no argument");
		return;
	}
	if (s->tls) {
		smtp_reply_error(s, 503, "5.5.1", "TLS already active");
		return;
	}
	if (smtp_tls == NULL) {
		smtp_reply_error(s, 454, "4.7.0", "TLS not available");
		return;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* RFC 3207 4.2: forget everything learned before TLS.  The host
	 * discards any plaintext pipelined after the command. */
	smtp_txn_reset(s);
	s->greeted = 0;
	s->esmtp = 0;
	s->helo[0] = '\0';
	s->auth_user = NULL;
	if (smtp_host->conn_starttls(s->conn, smtp_tls) != POSTERN_OK) {
		smtp_host->conn_log(s->conn, POSTERN_LOG_ERROR,
		                    "smtp: STARTTLS could not start");
		smtp_session_close(s);
		return;
	}
	/* The first line over TLS runs the starttls stage (parse_line). */
	smtp_enter(s, SMTP_ST_TLS_HANDSHAKE);
}

void
smtp_on_tls_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	const struct postern_verdict *v = ev->verdict;

	if (v->kind != POSTERN_VERDICT_REJECT &&
	    v->kind != POSTERN_VERDICT_TEMPFAIL)
		smtp_enter(s, SMTP_ST_HELO);
	else {
		/* No reply is due now: refuse every command that follows. */
		smtp_enter(s, SMTP_ST_REFUSED);
		if (v->flags & POSTERN_VERDICT_DISCONNECT) {
			smtp_reply(s, 421, "4.7.0", "%s closing",
			           smtp_cfg.hostname);
			smtp_session_close(s);
		}
	}
	smtp_session_resume(s);
}

/* ---- the other commands -------------------------------------------- */

static void
cmd_simple(struct smtp_session *s, const struct smtp_command *cmd)
{
	switch (cmd->verb) {
	case SMTP_VERB_RSET:
		if (cmd->arg_len > 0) {
			smtp_reply_error(s, 501, "5.5.4",
			                 "RSET takes no argument");
			return;
		}
		smtp_txn_reset(s);
		smtp_enter(s, smtp_rest_state(s));
		smtp_reply(s, 250, "2.0.0", "OK");
		return;
	case SMTP_VERB_NOOP:
		smtp_reply(s, 250, "2.0.0", "OK");
		return;
	case SMTP_VERB_QUIT:
		smtp_reply(s, 221, "2.0.0", "%s closing connection",
		           smtp_cfg.hostname);
		smtp_session_close(s);
		return;
	case SMTP_VERB_VRFY:
		if (cmd->arg_len == 0) {
			smtp_reply_error(s, 501, "5.5.4", "syntax: VRFY address");
			return;
		}
		/* RFC 5321 3.5.3: 252 answers without enumerating users. */
		smtp_reply(s, 252, "2.5.0", "Cannot VRFY user, but will "
		           "accept message and attempt delivery");
		return;
	case SMTP_VERB_EXPN:
		smtp_reply_error(s, 502, "5.5.1", "EXPN not available");
		return;
	case SMTP_VERB_HELP:
		H->session_reply(s->ss, "214-2.0.0 postern SMTP, RFC 5321; "
		                 "commands:");
		smtp_reply(s, 214, "2.0.0", "HELO EHLO MAIL RCPT DATA BDAT "
		           "RSET NOOP QUIT VRFY HELP STARTTLS AUTH%s",
		           smtp_burl_offered(s) ? " BURL" : "");
		return;
	default:
		smtp_reply_error(s, 500, "5.5.1", "command not recognized");
		return;
	}
}

/* ---- the command table ------------------------------------------------ */

static const struct postern_command smtp_commands[SMTP_CMD_TLS_STAGE + 1];

/* 0 for a command this listener does not implement at all: one whose
 * extension it does not offer (RFC 4468 3.1: no BURL on an MX). */
static int
verb_offered(const struct smtp_session *s, enum smtp_verb verb)
{
	return verb != SMTP_VERB_BURL || smtp_burl_offered(s);
}

static void
run_command(postern_session_t *ss, void *st, void *vc)
{
	struct smtp_session *s = st;
	const struct smtp_command *cmd = vc;
	const struct smtp_rule *rule = smtp_state_rule(s->state, cmd->verb);

	(void)ss;
	/* RFC 5321 4.2.4: 502 in any state (but after a refused
	 * greeting, where everything but QUIT and NOOP is 503). */
	if (rule->kind != SMTP_RULE_NOT_READ && s->state != SMTP_ST_REFUSED &&
	    !verb_offered(s, cmd->verb)) {
		smtp_reply_error(s, 502, "5.5.1", "command not implemented "
		                 "here");
		return;
	}
	switch (rule->kind) {
	case SMTP_RULE_NOT_READ:
		/* The host dispatches nothing while the session waits, and
		 * takes DATA and AUTH lines raw: a bug if it comes here. */
		H->conn_log(s->conn, POSTERN_LOG_ERROR, "smtp: %s in state %s",
		            smtp_commands[cmd->verb].name,
		            smtp_state_name(s->state));
		smtp_reply_error(s, 503, "5.5.1", "bad sequence of commands");
		return;
	case SMTP_RULE_REFUSE:
		smtp_reply_error(s, rule->code, rule->enhanced, rule->text);
		return;
	case SMTP_RULE_REFUSE_CHUNK:
		/* A chunk's handler takes it before the refusal. */
		if (cmd->verb != SMTP_VERB_BDAT &&
		    cmd->verb != SMTP_VERB_BURL) {
			smtp_reply_error(s, rule->code, rule->enhanced,
			                 rule->text);
			return;
		}
		break;
	default:
		break;
	}
	switch (cmd->verb) {
	case SMTP_VERB_HELO:
		cmd_helo(s, cmd, 0);
		break;
	case SMTP_VERB_EHLO:
		cmd_helo(s, cmd, 1);
		break;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s, cmd);
		break;
	case SMTP_VERB_AUTH:
		smtp_cmd_auth(s, cmd);
		break;
	case SMTP_VERB_MAIL:
		smtp_cmd_mail(s, cmd);
		break;
	case SMTP_VERB_RCPT:
		smtp_cmd_rcpt(s, cmd);
		break;
	case SMTP_VERB_DATA:
		smtp_cmd_data(s, cmd);
		break;
	case SMTP_VERB_BDAT:
		smtp_cmd_bdat(s, cmd, rule);
		break;
	case SMTP_VERB_BURL:
		smtp_cmd_burl(s, cmd, rule);
		break;
	default:
		cmd_simple(s, cmd);
		break;
	}
	if (s->wait == SMTP_WAIT_NONE)
		goodbye_if_stopping(s);
}

/* After the handshake, when the filters can see what TLS was agreed (not
 * on the way out of the STARTTLS command, which would run it before TLS
 * exists): the line that came is handled after it. */
static void
run_tls_stage(postern_session_t *ss, void *st, void *vc)
{
	struct smtp_session *s = st;

	(void)ss;
	(void)vc;
	smtp_enter(s, SMTP_ST_TLS_HOOK);
	smtp_stage_run(s, POSTERN_SMTP_STARTTLS);
}

/* Postfix's junk commands (smtpd_junk_command_limit, the listener's
 * junk_command_limit): they succeed and cost the client nothing, so a
 * flood of them is no error and would go on for ever.  The budget comes
 * back when a message is delivered. */
#define JUNK POSTERN_CMD_JUNK

static const struct postern_command smtp_commands[SMTP_CMD_TLS_STAGE + 1] = {
	[SMTP_VERB_UNKNOWN] = { "?", 0, run_command },
	[SMTP_VERB_HELO] = { "HELO", JUNK, run_command },
	[SMTP_VERB_EHLO] = { "EHLO", JUNK, run_command },
	[SMTP_VERB_MAIL] = { "MAIL", 0, run_command },
	[SMTP_VERB_RCPT] = { "RCPT", 0, run_command },
	[SMTP_VERB_DATA] = { "DATA", 0, run_command },
	[SMTP_VERB_BDAT] = { "BDAT", 0, run_command },
	[SMTP_VERB_RSET] = { "RSET", JUNK, run_command },
	[SMTP_VERB_NOOP] = { "NOOP", JUNK, run_command },
	[SMTP_VERB_QUIT] = { "QUIT", 0, run_command },
	[SMTP_VERB_VRFY] = { "VRFY", JUNK, run_command },
	[SMTP_VERB_EXPN] = { "EXPN", 0, run_command },
	[SMTP_VERB_HELP] = { "HELP", JUNK, run_command },
	[SMTP_VERB_STARTTLS] = { "STARTTLS", 0, run_command },
	[SMTP_VERB_AUTH] = { "AUTH", 0, run_command },
	[SMTP_VERB_BURL] = { "BURL", 0, run_command },
	[SMTP_CMD_TLS_STAGE] = { "(starttls stage)", 0, run_tls_stage },
};

/* A line into a command of the table, or -1 after the error reply (the
 * host counts it against max_errors). */
static int
parse_line(postern_session_t *ss, void *st, const struct postern_line *l,
           void *vc)
{
	struct smtp_session *s = st;
	struct smtp_command *cmd = vc;
	struct smtp_error err;

	/* TLS comes up inside the host (implicit, or after STARTTLS). */
	check_tls(s);
	if (s->state == SMTP_ST_TLS_HANDSHAKE && s->tls) {
		H->session_hold_line(ss, l);
		return SMTP_CMD_TLS_STAGE;
	}
	/* The session reads lines as long as a message line or an AUTH
	 * response may be: a command has its own bound. */
	if ((l->flags & POSTERN_LINE_TOOLONG) || l->len > SMTP_COMMAND_MAX) {
		smtp_reply(s, 500, "5.5.6", "line too long");
		return -1;
	}
	if (l->flags & POSTERN_LINE_NUL) {
		smtp_reply(s, 500, "5.5.2", "NUL byte in command");
		return -1;
	}
	if (smtp_parse_command(l->data, l->len, cmd, &err) < 0) {
		smtp_reply(s, err.code, err.enhanced, "%s", err.text);
		return -1;
	}
	return (int)cmd->verb;
}

/* ---- session callbacks ------------------------------------------------ */

void
smtp_on_connect_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	const struct postern_verdict *v = ev->verdict;

	if (v->kind == POSTERN_VERDICT_REJECT) {
		/* RFC 5321 3.1: 554 greeting, then 503 until QUIT. */
		smtp_reply(s, 554, NULL, "%s %s", smtp_cfg.hostname,
		           v->text != NULL ? v->text : "no SMTP service here");
		smtp_enter(s, SMTP_ST_REFUSED);
		if (v->flags & POSTERN_VERDICT_DISCONNECT)
			smtp_session_close(s);
	} else if (v->kind == POSTERN_VERDICT_TEMPFAIL) {
		smtp_reply(s, 421, NULL, "%s %s", smtp_cfg.hostname,
		           v->text != NULL ? v->text
		                           : "service not available");
		smtp_session_close(s);
	} else {
		smtp_reply(s, 220, NULL, "%s ESMTP postern", smtp_cfg.hostname);
		smtp_enter(s, SMTP_ST_HELO);
	}
	smtp_session_resume(s);
}

static void
on_start(postern_session_t *ss, void *st)
{
	struct smtp_session *s = st;

	s->ss = ss;
	s->conn = H->session_conn(ss);
	s->pool = H->pool_create(1024);
	s->lst = H->session_listener(ss);
	s->txn.s = s;
	s->trusted = smtp_peer_trusted(s->conn);
	s->state = SMTP_ST_CONNECT;
	smtp_stage_run(s, POSTERN_SMTP_CONNECT);
}

/* The worker stops: an idle session gets the host's goodbye (after the
 * step in flight); a transaction in flight, an AUTH exchange or a chunk
 * being read may finish first (up to shutdown_timeout), then the
 * session says it (goodbye_if_stopping). */
static int
on_shutdown(postern_session_t *ss, void *st)
{
	struct smtp_session *s = st;

	(void)ss;
	if (smtp_state_idle(s->state))
		return 1;
	s->shutting = 1;
	return 0;
}

static void
on_close(postern_session_t *ss, void *st, enum postern_close_reason why)
{
	struct smtp_session *s = st;

	(void)ss;
	if (s->hook_call != NULL) {
		H->hook_cancel(s->hook_call);
		s->hook_call = NULL;
	}
	if (s->sasl != NULL) {
		H->sasl_free(s->sasl);
		s->sasl = NULL;
	}
	if (why == POSTERN_CLOSE_TIMEOUT)
		H->conn_log(s->conn, POSTERN_LOG_INFO, "smtp: timeout (%s)",
		            s->state == SMTP_ST_DATA ||
		                    s->state == SMTP_ST_BDAT
		                ? "message data" : "command");
	if (s->txn.pool != NULL && why != POSTERN_CLOSE_LOCAL)
		H->conn_log(s->conn, POSTERN_LOG_INFO,
		            "smtp: client left during a transaction");
	/* The transaction ends here; what it holds goes in on_free, after
	 * a job still using it (a delivery must finish). */
	if (s->txn.pool != NULL)
		smtp_stage_cleanup(s, POSTERN_SMTP_RESET);
	smtp_stage_cleanup(s, POSTERN_SMTP_DISCONNECT);
	smtp_enter(s, SMTP_ST_CLOSED);
	s->conn = NULL;
}

static void
on_free(postern_session_t *ss, void *st)
{
	struct smtp_session *s = st;

	(void)ss;
	smtp_txn_free(s);
	H->sasl_free(s->sasl);
	H->pool_destroy(s->pool);
}

/* Fixed replies with the host name in them (smtp_protocol_setup). */
static char goodbye[300], timeout[300], too_many_errors[300], too_many_junk[300];

struct postern_protocol smtp_protocol = {
	.size = sizeof(struct postern_protocol),
	.name = "smtp",
	.goodbye = goodbye,
	.timeout = timeout,
	.too_many_errors = too_many_errors,
	.too_many_junk = too_many_junk,
	.session_size = sizeof(struct smtp_session),
	.command_size = sizeof(struct smtp_command),
	.commands = smtp_commands,
	.ncommands = sizeof(smtp_commands) / sizeof(smtp_commands[0]),
	.parse = parse_line,
	.on_start = on_start,
	.on_shutdown = on_shutdown,
	.on_close = on_close,
	.free = on_free,
};

void
smtp_protocol_setup(void)
{
	size_t max = (size_t)smtp_cfg.max_line;

	/* Lines are as long as a message line or an AUTH response may be
	 * (commands have their bound in parse_line); a longer message line
	 * fails the message, which the reader finds as it does a line
	 * longer than max_line_length. */
	smtp_protocol.max_line = max > SMTP_AUTH_LINE_MAX ? max
	                                                  : SMTP_AUTH_LINE_MAX;
	/* The input buffer holds such a line, and a BDAT piece or a
	 * pipelined burst of 64 KiB at least. */
	smtp_protocol.max_input = smtp_protocol.max_line + 2 > 64 * 1024
	                              ? smtp_protocol.max_line + 2
	                              : 64 * 1024;
	smtp_protocol.idle_ms = (unsigned)smtp_cfg.idle_ms;
	smtp_protocol.max_errors = (unsigned)smtp_cfg.max_errors;
	snprintf(goodbye, sizeof(goodbye), "421 4.3.2 %s shutting down",
	         smtp_cfg.hostname);
	snprintf(timeout, sizeof(timeout), "421 4.4.2 %s timeout, closing",
	         smtp_cfg.hostname);
	snprintf(too_many_errors, sizeof(too_many_errors),
	         "421 4.7.0 %s too many errors, closing", smtp_cfg.hostname);
	snprintf(too_many_junk, sizeof(too_many_junk),
	         "421 4.7.0 %s Error: too many commands, closing",
	         smtp_cfg.hostname);
}
