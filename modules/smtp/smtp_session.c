/*
 * smtp_session.c - one SMTP session: connection callbacks, the command
 * loop, replies, and the commands that are not part of a mail
 * transaction (HELO, EHLO, STARTTLS, RSET, NOOP, QUIT, VRFY, EXPN, HELP).
 * AUTH is in smtp_auth.c, MAIL/RCPT/DATA/BDAT in smtp_txn.c.
 *
 * Pipelining (RFC 2920) needs nothing special: replies are queued and the
 * host sends them once per loop turn, and a command that waits for a job
 * or a filter pauses the connection, so the next pipelined command is
 * read only after the reply before it was queued.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp_session.h"

/* RFC 4954 section 4: an AUTH response line may be 12288 octets. */
#define SMTP_AUTH_LINE_MAX 12288


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
		smtp_host->conn_printf(s->conn, "%u %s %s\r\n", code, enhanced,
		                       text);
	else
		smtp_host->conn_printf(s->conn, "%u %s\r\n", code, text);
}

void
smtp_session_close(struct smtp_session *s)
{
	if (!s->closing) {
		s->closing = 1;
		smtp_host->conn_close(s->conn);
	}
}

void
smtp_reply_error(struct smtp_session *s, unsigned code, const char *enhanced,
                 const char *text)
{
	smtp_reply(s, code, enhanced, "%s", text);
	if (++s->errors >= (unsigned)smtp_cfg.max_errors) {
		smtp_host->conn_log(s->conn, POSTERN_LOG_NOTICE,
		                    "smtp: %u errors, closing the session",
		                    s->errors);
		smtp_reply(s, 421, "4.7.0", "%s too many errors, closing",
		           smtp_cfg.hostname);
		smtp_session_close(s);
	}
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

void
smtp_session_resume(struct smtp_session *s)
{
	s->wait = SMTP_WAIT_NONE;
	if (s->closing)
		return;
	/* A stop began while a transaction was in flight: it is over. */
	if (s->shutting && s->txn.pool == NULL &&
	    s->phase == SMTP_PHASE_COMMAND) {
		smtp_reply(s, 421, "4.3.2", "%s shutting down",
		           smtp_cfg.hostname);
		smtp_session_close(s);
		return;
	}
	smtp_host->conn_resume(s->conn);
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
	postern_conn_t *c = s->conn;

	smtp_host->conn_printf(c, "250-%s Hello %s [%s]\r\n",
	                       smtp_cfg.hostname, s->helo,
	                       smtp_host->conn_peer(c));
	smtp_host->conn_printf(c, "250-PIPELINING\r\n");
	smtp_host->conn_printf(c, "250-SIZE %lld\r\n",
	                       smtp_cfg.max_message_size);
	smtp_host->conn_printf(c, "250-8BITMIME\r\n");
	smtp_host->conn_printf(c, "250-ENHANCEDSTATUSCODES\r\n");
	smtp_host->conn_printf(c, "250-CHUNKING\r\n");
	if (smtp_relay != NULL)
		smtp_host->conn_printf(c, "250-DSN\r\n");
	if (smtp_tls != NULL && !s->tls)
		smtp_host->conn_printf(c, "250-STARTTLS\r\n");
	if (auth_allowed_now(s))
		smtp_host->conn_printf(c, "250-AUTH %s\r\n",
		                       smtp_host->sasl_mechanisms());
	smtp_host->conn_printf(c, "250 SMTPUTF8\r\n");
}

static void
after_helo(struct smtp_session *s, const struct postern_verdict *v)
{
	if (smtp_reply_verdict(s, v, 550, "5.7.1", "HELO refused")) {
		s->greeted = 0;
		s->esmtp = 0;
		s->errors++;
	} else if (s->esmtp)
		ehlo_reply(s);
	else
		smtp_reply(s, 250, NULL, "%s", smtp_cfg.hostname);
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
	smtp_stage_run(s, POSTERN_SMTP_HELO, after_helo);
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
	s->tls_hook_due = 1;
}

static void
after_starttls(struct smtp_session *s, const struct postern_verdict *v)
{
	if (v->kind == POSTERN_VERDICT_REJECT ||
	    v->kind == POSTERN_VERDICT_TEMPFAIL) {
		/* No reply is due now: refuse every command that follows. */
		s->phase = SMTP_PHASE_REFUSED;
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
		smtp_host->conn_printf(s->conn, "214-2.0.0 postern SMTP, "
		                       "RFC 5321; commands:\r\n");
		smtp_reply(s, 214, "2.0.0", "HELO EHLO MAIL RCPT DATA BDAT "
		           "RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
		return;
	default:
		smtp_reply_error(s, 500, "5.5.1", "command not recognized");
		return;
	}
}

/* Postfix's junk commands (smtpd_junk_command_limit): they succeed and
 * cost the client nothing, so a flood of them is no error and would go
 * on for ever.  The budget comes back when a message is delivered. */
static int
is_junk(enum smtp_verb verb)
{
	switch (verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
	case SMTP_VERB_RSET:
	case SMTP_VERB_NOOP:
	case SMTP_VERB_VRFY:
	case SMTP_VERB_HELP:
		return 1;
	default:
		return 0;
	}
}

/* 0 after the goodbye when the junk budget is spent. */
static int
junk_allowed(struct smtp_session *s, enum smtp_verb verb)
{
	if (!is_junk(verb) ||
	    smtp_host->conn_junk_command(s->conn) == POSTERN_OK)
		return 1;
	smtp_reply(s, 421, "4.7.0", "%s Error: too many commands, closing",
	           smtp_cfg.hostname);
	smtp_session_close(s);
	return 0;
}

static void
handle_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command cmd;
	struct smtp_error err;

	if (smtp_parse_command(line, len, &cmd, &err) < 0) {
		smtp_reply_error(s, err.code, err.enhanced, err.text);
		return;
	}
	if (!junk_allowed(s, cmd.verb))
		return;
	if (s->phase == SMTP_PHASE_REFUSED && cmd.verb != SMTP_VERB_QUIT &&
	    cmd.verb != SMTP_VERB_NOOP) {
		/* RFC 5321 3.1: after a 554 greeting, 503 until QUIT. */
		smtp_reply_error(s, 503, "5.7.0", "no service for you");
		return;
	}
	switch (cmd.verb) {
	case SMTP_VERB_HELO:
		cmd_helo(s, &cmd, 0);
		return;
	case SMTP_VERB_EHLO:
		cmd_helo(s, &cmd, 1);
		return;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s, &cmd);
		return;
	case SMTP_VERB_AUTH:
		smtp_cmd_auth(s, &cmd);
		return;
	case SMTP_VERB_MAIL:
		smtp_cmd_mail(s, &cmd);
		return;
	case SMTP_VERB_RCPT:
		smtp_cmd_rcpt(s, &cmd);
		return;
	case SMTP_VERB_DATA:
		smtp_cmd_data(s, &cmd);
		return;
	case SMTP_VERB_BDAT:
		smtp_cmd_bdat(s, &cmd);
		return;
	default:
		cmd_simple(s, &cmd);
		return;
	}
}

/* ---- connection callbacks ------------------------------------------- */

static int
read_line(struct smtp_session *s)
{
	struct postern_line line;
	size_t max = s->phase == SMTP_PHASE_AUTH ? SMTP_AUTH_LINE_MAX
	                                         : SMTP_COMMAND_MAX;
	int rc = smtp_host->conn_read_line(s->conn, max, &line);

	if (rc == POSTERN_AGAIN || rc == POSTERN_CLOSED)
		return 0;
	if (rc == POSTERN_TOOLONG) {
		if (s->phase == SMTP_PHASE_AUTH) {
			smtp_auth_response(s, NULL, 0);
			return 1;
		}
		smtp_reply_error(s, 500, "5.5.6", "line too long");
		return 1;
	}
	if (line.flags & POSTERN_LINE_NUL) {
		if (s->phase == SMTP_PHASE_AUTH)
			smtp_auth_response(s, NULL, 0);
		else
			smtp_reply_error(s, 500, "5.5.2",
			                 "NUL byte in command");
		return 1;
	}
	if (s->phase == SMTP_PHASE_AUTH)
		smtp_auth_response(s, line.data, line.len);
	else
		handle_command(s, line.data, line.len);
	return 1;
}

static void
on_read(postern_conn_t *c, void *arg)
{
	struct smtp_session *s = arg;

	(void)c;
	while (!s->closing && s->wait == SMTP_WAIT_NONE) {
		check_tls(s);
		/* After the handshake, when the filters can see what TLS
		 * was agreed (not on the way out of the STARTTLS command,
		 * which would run it before TLS exists). */
		if (s->tls_hook_due && s->tls) {
			s->tls_hook_due = 0;
			smtp_stage_run(s, POSTERN_SMTP_STARTTLS,
			               after_starttls);
			continue;
		}
		if (s->shutting && s->txn.pool == NULL) {
			smtp_reply(s, 421, "4.3.2", "%s shutting down",
			           smtp_cfg.hostname);
			smtp_session_close(s);
			return;
		}
		if (s->phase == SMTP_PHASE_DATA ||
		    s->phase == SMTP_PHASE_BDAT) {
			if (!smtp_read_message(s))
				return;
			continue;
		}
		if (!read_line(s))
			return;
	}
}

static void
on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	struct smtp_session *s = arg;

	(void)c;
	s->closing = 1;
	if (s->hook_call != NULL) {
		smtp_host->hook_cancel(s->hook_call);
		s->hook_call = NULL;
	}
	if (s->sasl != NULL) {
		smtp_host->sasl_free(s->sasl);
		s->sasl = NULL;
	}
	if (s->job != NULL) {
		/* It goes on (a delivery must finish) and frees what the
		 * transaction held when done; the transaction ends here. */
		if (s->txn.pool != NULL)
			smtp_stage_cleanup(s, POSTERN_SMTP_RESET);
		smtp_job_orphan(s);
	}
	if (s->txn.pool != NULL && why != POSTERN_CLOSE_LOCAL)
		smtp_host->conn_log(c, POSTERN_LOG_INFO,
		                    "smtp: client left during a transaction");
	smtp_txn_reset(s);
	smtp_stage_cleanup(s, POSTERN_SMTP_DISCONNECT);
}

static int
on_timeout(postern_conn_t *c, void *arg)
{
	struct smtp_session *s = arg;

	/* A session waiting for a filter or a job is not idle. */
	if (s->wait != SMTP_WAIT_NONE)
		return 0;
	smtp_host->conn_log(c, POSTERN_LOG_INFO, "smtp: timeout (%s)",
	                    s->phase == SMTP_PHASE_DATA ||
	                            s->phase == SMTP_PHASE_BDAT
	                        ? "message data"
	                        : "command");
	smtp_reply(s, 421, "4.4.2", "%s timeout, closing",
	           smtp_cfg.hostname);
	s->closing = 1;
	return 1;
}

static void
on_shutdown(postern_conn_t *c, void *arg)
{
	struct smtp_session *s = arg;

	(void)c;
	/* A transaction in flight may finish (up to shutdown_timeout). */
	s->shutting = 1;
	if (s->txn.pool == NULL && s->wait == SMTP_WAIT_NONE &&
	    s->phase != SMTP_PHASE_AUTH) {
		smtp_reply(s, 421, "4.3.2", "%s shutting down",
		           smtp_cfg.hostname);
		smtp_session_close(s);
	}
}

static const struct postern_conn_ops conn_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = on_read,
	.on_close = on_close,
	.on_timeout = on_timeout,
	.on_shutdown = on_shutdown,
};

static void
after_connect(struct smtp_session *s, const struct postern_verdict *v)
{
	if (v->kind == POSTERN_VERDICT_REJECT) {
		/* RFC 5321 3.1: 554 greeting, then 503 until QUIT. */
		smtp_reply(s, 554, NULL, "%s %s", smtp_cfg.hostname,
		           v->text != NULL ? v->text : "no SMTP service here");
		s->phase = SMTP_PHASE_REFUSED;
		if (v->flags & POSTERN_VERDICT_DISCONNECT)
			smtp_session_close(s);
	} else if (v->kind == POSTERN_VERDICT_TEMPFAIL) {
		smtp_reply(s, 421, NULL, "%s %s", smtp_cfg.hostname,
		           v->text != NULL ? v->text
		                           : "service not available");
		smtp_session_close(s);
	} else
		smtp_reply(s, 220, NULL, "%s ESMTP postern", smtp_cfg.hostname);
	smtp_session_resume(s);
}

void
smtp_on_accept(postern_conn_t *c, void *arg)
{
	postern_pool_t *pool = smtp_host->conn_pool(c);
	struct smtp_session *s = smtp_host->pool_alloc(pool, sizeof(*s));

	s->conn = c;
	s->pool = pool;
	s->lst = arg;
	s->txn.s = s;
	s->trusted = smtp_peer_trusted(c);
	smtp_host->conn_set_ops(c, &conn_ops, s);
	smtp_stage_run(s, POSTERN_SMTP_CONNECT, after_connect);
}
