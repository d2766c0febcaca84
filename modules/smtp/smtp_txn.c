/*
 * smtp_txn.c - the mail transaction: MAIL, RCPT, DATA and BDAT, reading
 * the message into the spool, and what happens at its end (filters,
 * delivery, the one reply).
 *
 * Relaying: a recipient the auth service calls NOT_LOCAL is accepted only
 * for an authenticated client, a client in trusted_networks, or a domain
 * in relay_domains, and only when a relay service exists.  Nothing else
 * is ever relayed: no open relay, whatever the configuration omits.
 *
 * One reply for the message (RFC 5321 has no per-recipient reply after
 * DATA): 250 when every recipient has a durable copy; 554 when every one
 * failed for good; otherwise 451, so the client retries: recipients that
 * did get it may then get it twice, which beats losing it for the others
 * (RFC 5321 section 6.1: never lose a message after 250).
 *
 * The phases (smtp_state.h): MAIL_CHECK, MAIL_HOOK, then MAIL; each RCPT
 * through RCPT_LOOKUP and RCPT_HOOK, then RCPT; DATA_HOOK, DATA; or
 * BDAT_HOOK, BDAT (or BURL, smtp_burl.c) and CHUNKED (CHUNK_FAILED)
 * between chunks; at the end
 * SYNC, the end-of-message stages (smtp_filter.c), DELIVER, and READY
 * with the reply.  The commands reach their handlers only in the phases
 * the machine's rules let them (a RCPT before MAIL is refused there).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp_session.h"

/* ---- the transaction -------------------------------------------------- */

static void
txn_begin(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;
	char prefix[128];

	memset(t, 0, sizeof(*t));
	t->s = s;
	t->pool = smtp_host->pool_create(8192);
	t->seq = ++s->ntxn;
	t->edits_tail = &t->edits;
	t->outcome = SMTP_OUT_DELIVER;
	smtp_host->unique_id(t->id, sizeof(t->id));
	smtp_host->conn_log_prefix(s->conn, prefix, sizeof(prefix));
	t->logp = smtp_host->pool_printf(t->pool, "%s: smtp: %s", prefix,
	                                 t->id);
}

void
smtp_log_txn(const char *logp, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_host->vlog_prefixed(logp, level, fmt, ap);
	va_end(ap);
}

void
smtp_txn_free(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;

	smtp_host->pool_destroy(t->pool);
	smtp_host->spool_free(t->spool);
	smtp_host->spool_free(t->body_spool);
	memset(t, 0, sizeof(*t));
	t->s = s;
	s->hfields = NULL;
	s->nhfields = 0;
	s->body_buf = NULL;
}

void
smtp_txn_reset(struct smtp_session *s)
{
	/* Once the client has gone, on_close told the filters. */
	if (s->txn.pool != NULL && s->conn != NULL)
		smtp_stage_cleanup(s, POSTERN_SMTP_RESET);
	smtp_txn_free(s);
}

static char *
txn_strdup(struct postern_smtp_txn *t, const char *s)
{
	return s != NULL ? smtp_host->pool_strndup(t->pool, s, strlen(s))
	                 : NULL;
}

void
smtp_txn_rebuild_envelope(struct postern_smtp_txn *t)
{
	struct postern_relay_rcpt *v;
	size_t i, n = 0;

	v = smtp_host->pool_alloc(t->pool, (t->nrcpts + 1) * sizeof(*v));
	for (i = 0; i < t->nrcpts; i++)
		if (!t->rcpts[i].removed)
			v[n++] = t->rcpts[i].r;
	t->env_rcpts = v;
	t->env.rcpts = v;
	t->env.nrcpts = n;
}

/* Replies "CODE X.Y.Z text" from a result text that starts with its
 * enhanced code. */
static void
reply_coded(struct smtp_session *s, unsigned code, const char *text)
{
	const char *sp = strchr(text, ' ');
	char enh[16];

	if (sp == NULL || (size_t)(sp - text) >= sizeof(enh)) {
		smtp_reply(s, code, NULL, "%s", text);
		return;
	}
	memcpy(enh, text, (size_t)(sp - text));
	enh[sp - text] = '\0';
	smtp_reply(s, code, enh, "%s", sp + 1);
}

/* ---- MAIL ------------------------------------------------------------- */

static struct smtp_param_policy
param_policy(void)
{
	struct smtp_param_policy p = {
		.utf8 = 1,
		/* DSN is the relay's to honour: offered only with one. */
		.dsn = smtp_relay != NULL,
		.binary = 0,
	};

	return p;
}

void
smtp_on_mail_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	if (smtp_reply_verdict(s, ev->verdict, 550, "5.7.1",
	                       "sender refused"))
		smtp_txn_reset(s);
	else
		smtp_reply(s, 250, "2.1.0", "Sender <%s> OK", s->txn.env.sender);
	smtp_enter(s, smtp_rest_state(s));
	smtp_session_resume(s);
}

/* The sender check (smtp_sender.c) refused it (and replied), or the mail
 * stage runs. */
void
smtp_on_sender_checked(struct smtp_session *s, const struct smtp_event *ev)
{
	if (!ev->status) {
		smtp_txn_reset(s);
		smtp_enter(s, smtp_rest_state(s));
		smtp_session_resume(s);
		return;
	}
	smtp_enter(s, SMTP_ST_MAIL_HOOK);
	smtp_stage_run(s, POSTERN_SMTP_MAIL);
}

void
smtp_cmd_mail(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_param_policy pol = param_policy();
	struct smtp_mail_args args;
	struct smtp_error err;
	struct postern_smtp_txn *t = &s->txn;

	if (s->lst->auth == SMTP_AUTH_REQUIRED && s->auth_user == NULL) {
		smtp_reply_error(s, 530, "5.7.0", "authentication required");
		return;
	}
	if (smtp_parse_mail(cmd->arg, cmd->arg_len, &pol, &args, &err) < 0) {
		smtp_reply_error(s, err.code, err.enhanced, err.text);
		return;
	}
	if (args.size > (uint64_t)smtp_cfg.max_message_size) {
		smtp_reply_error(s, 552, "5.3.4", "message size exceeds fixed "
		                 "maximum message size");
		return;
	}
	txn_begin(s);
	t->mail = args;
	t->env.size = sizeof(t->env);
	t->env.sender = t->mail.sender;
	t->env.size_param = args.size;
	t->env.body = args.body;
	t->env.smtputf8 = args.smtputf8;
	t->env.ret = args.ret;
	t->env.envid = args.has_envid ? t->mail.envid : NULL;
	/* Copies: a delivery job may outlive the session. */
	t->env.auth_user = txn_strdup(t, s->auth_user);
	t->env.client_addr = txn_strdup(t, smtp_host->conn_peer(s->conn));
	t->env.client_helo = txn_strdup(t, s->helo);
	t->env.id = txn_strdup(t, t->id);
	smtp_txn_rebuild_envelope(t);
	smtp_enter(s, SMTP_ST_MAIL_CHECK);
	smtp_sender_check(s);
}

/* ---- RCPT ------------------------------------------------------------- */

/* The recipient is refused (and replied): back to MAIL or RCPT. */
static void
rcpt_refused(struct smtp_session *s)
{
	smtp_enter(s, smtp_rest_state(s));
	smtp_session_resume(s);
}

void
smtp_on_rcpt_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	struct postern_smtp_txn *t = &s->txn;

	if (smtp_reply_verdict(s, ev->verdict, 550, "5.7.1",
	                       "recipient refused")) {
		rcpt_refused(s);
		return;
	}
	if (t->nrcpts == t->caprcpts) {
		size_t cap = t->caprcpts ? t->caprcpts * 2 : 8;
		struct smtp_rcpt *nv = smtp_host->pool_alloc(t->pool,
		                                             cap * sizeof(*nv));

		if (t->nrcpts > 0)
			memcpy(nv, t->rcpts, t->nrcpts * sizeof(*nv));
		t->rcpts = nv;
		t->caprcpts = cap;
	}
	t->rcpts[t->nrcpts++] = s->pending_rcpt;
	smtp_txn_rebuild_envelope(t);
	smtp_reply(s, 250, "2.1.5", "Recipient <%s> OK",
	           s->pending_rcpt.r.address);
	smtp_enter(s, SMTP_ST_RCPT);
	smtp_session_resume(s);
}

/* May this session send to a domain that is not ours? */
static int
may_relay(const struct smtp_session *s, const char *domain)
{
	return s->auth_user != NULL || s->trusted ||
	       smtp_domain_relayable(domain);
}

void
smtp_on_rcpt_resolved(struct smtp_session *s, const struct smtp_event *ev)
{
	int status = ev->status;
	struct smtp_rcpt *p = &s->pending_rcpt;
	struct postern_smtp_payload extra = { 0 };
	const char *domain;
	size_t local_len;

	if (s->rcpt_args.postmaster && status != POSTERN_AUTH_YES &&
	    status != POSTERN_AUTH_TEMPFAIL) {
		/* RFC 5321 4.5.1 wants <Postmaster> taken: it is delivered
		 * to postmaster@domain, which must then exist. */
		smtp_log_txn(s->txn.logp, POSTERN_LOG_WARNING,
		             "<Postmaster> refused: no user or alias "
		             "postmaster@%s (nor postmaster@%s)",
		             smtp_cfg.domain, smtp_cfg.hostname);
		smtp_reply_error(s, 550, "5.1.1", "mailbox unavailable");
		rcpt_refused(s);
		return;
	}
	switch (status) {
	case POSTERN_AUTH_YES:
		p->route = SMTP_ROUTE_LOCAL;
		break;
	case POSTERN_AUTH_NO:
		smtp_reply_error(s, 550, "5.1.1", "mailbox unavailable");
		rcpt_refused(s);
		return;
	case POSTERN_AUTH_NOT_LOCAL:
		smtp_address_split(p->r.address, &local_len, &domain);
		if (!may_relay(s, domain)) {
			smtp_log_txn(s->txn.logp, POSTERN_LOG_NOTICE,
			             "relay to <%s> denied", p->r.address);
			smtp_reply_error(s, 554, "5.7.1",
			                 "relay access denied");
			rcpt_refused(s);
			return;
		}
		if (smtp_relay == NULL) {
			smtp_reply_error(s, 550, "5.7.1", "relaying not "
			                 "available: no relay configured");
			rcpt_refused(s);
			return;
		}
		p->route = SMTP_ROUTE_RELAY;
		break;
	default:
		smtp_reply(s, 451, "4.3.0",
		           "temporary recipient lookup failure");
		rcpt_refused(s);
		return;
	}
	extra.rcpt = &p->r;
	smtp_enter(s, SMTP_ST_RCPT_HOOK);
	smtp_stage_run_with(s, POSTERN_SMTP_RCPT, &extra);
}

void
smtp_cmd_rcpt(struct smtp_session *s, const struct smtp_command *cmd)
{
	struct smtp_param_policy pol = param_policy();
	struct postern_smtp_txn *t = &s->txn;
	struct smtp_rcpt_args *a = &s->rcpt_args;
	struct smtp_rcpt *p = &s->pending_rcpt;
	struct smtp_error err;

	if (t->nrcpts >= (size_t)smtp_cfg.max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, and no error counted. */
		smtp_reply(s, 452, "4.5.3", "too many recipients");
		return;
	}
	if (smtp_parse_rcpt(cmd->arg, cmd->arg_len, &pol, t->mail.smtputf8, a,
	                    &err) < 0) {
		smtp_reply_error(s, err.code, err.enhanced, err.text);
		return;
	}
	memset(p, 0, sizeof(*p));
	p->r.size = sizeof(p->r);
	p->r.address = txn_strdup(t, a->address);
	p->r.notify = a->notify;
	p->r.orcpt = a->has_orcpt ? txn_strdup(t, a->orcpt) : NULL;
	smtp_enter(s, SMTP_ST_RCPT_LOOKUP);
	smtp_resolve_rcpt(s);
}

/* ---- reading the message ---------------------------------------------- */

static void
emit_content(void *arg, const char *data, size_t len)
{
	struct smtp_session *s = arg;
	struct postern_smtp_txn *t = &s->txn;

	t->size += len;
	if (t->too_big || t->outcome == SMTP_OUT_REFUSE)
		return;
	if (t->size > (uint64_t)smtp_cfg.max_message_size) {
		t->too_big = 1;
		return;
	}
	smtp_host->spool_append(t->spool, data, len);
}

static void
begin_message(struct smtp_session *s, enum smtp_data_mode mode)
{
	struct postern_smtp_txn *t = &s->txn;

	t->spool = smtp_host->spool_create(NULL);
	smtp_data_init(&t->reader, mode, smtp_cfg.bare_newline,
	               (size_t)smtp_cfg.max_line, emit_content, s);
	t->data_started = 1;
}

/* Keeps a copy of the header section before memory goes to the file:
 * filters and header edits need it whole. */
static void
keep_header(struct postern_smtp_txn *t)
{
	const char *mem;

	if (t->header != NULL || t->header_lost)
		return;
	if (t->reader.in_header || smtp_host->spool_fd(t->spool) >= 0) {
		t->header_lost = 1;
		return;
	}
	t->header_len = (size_t)t->reader.header_len;
	smtp_host->spool_memory(t->spool, &mem);
	t->header = smtp_host->pool_strndup(t->pool, mem,
	                                    t->header_len);
}

static void end_message(struct smtp_session *s);

/* DATA or BDAT: memory went to the spool file. */
void
smtp_on_spilled(struct smtp_session *s, const struct smtp_event *ev)
{
	/* A write error is reported when the message ends; until then the
	 * data is read and dropped. */
	if (!ev->status) {
		s->txn.outcome = SMTP_OUT_REFUSE;
		s->txn.refuse_code = 451;
		s->txn.refuse_enhanced = "4.3.0";
		s->txn.refuse_text = "local error writing the message";
	}
	smtp_session_resume(s);
}

/* 1 when the spool's memory should go to its file now (the header
 * section kept first): spool_memory is reached, and the octets are
 * still wanted. */
static int
spill_due(struct postern_smtp_txn *t)
{
	if (t->too_big || t->outcome == SMTP_OUT_REFUSE ||
	    smtp_host->spool_memory(t->spool, NULL) <
	    (size_t)smtp_cfg.spool_memory)
		return 0;
	keep_header(t);
	return 1;
}

/* After a piece of message data: spill memory to the file if needed. */
static void
spill_if_needed(struct smtp_session *s)
{
	if (spill_due(&s->txn))
		smtp_spool_sync(s, 0);
}

int
smtp_chunk_feed_job(struct postern_smtp_txn *t, const void *data,
                    size_t len)
{
	smtp_data_feed(&t->reader, data, len);
	/* What spill_if_needed has a job do, on the job we are on. */
	return spill_due(t) ? smtp_host->spool_flush(t->spool) : 0;
}

/* The message data is over (its end, or a chunk's): commands again,
 * with their idle timeout. */
static void
leave_data_phase(struct smtp_session *s)
{
	smtp_host->conn_set_idle(s->conn, 0);
}

/* A line after DATA, raw from the session layer, fed to the reader with
 * its terminator as it came: where the data ends depends on it. */
static void
data_line(postern_session_t *ss, void *st, const struct postern_line *l)
{
	struct smtp_session *s = st;
	struct postern_smtp_txn *t = &s->txn;
	const char *end = (l->flags & POSTERN_LINE_CRLF) ? "\r\n" : "\n";

	if (l->flags & POSTERN_LINE_TOOLONG)
		/* Longer than any line the message may have: its octets
		 * are gone, the message fails. */
		t->reader.errors |= SMTP_DATA_ERR_LONG_LINE;
	else
		smtp_data_feed(&t->reader, l->data, l->len);
	smtp_data_feed(&t->reader, end, strlen(end));
	if (t->reader.done) {
		smtp_host->session_take_lines(ss, NULL);
		leave_data_phase(s);
		end_message(s);
		return;
	}
	spill_if_needed(s);
}

/* A piece of a BDAT chunk, counted by the session layer. */
static void
bdat_octets(postern_session_t *ss, void *st, const void *data, size_t len,
            int last)
{
	struct smtp_session *s = st;

	(void)ss;
	/* A refused chunk is read and dropped: it is not commands. */
	if (s->bdat_refusal.code == 0)
		smtp_data_feed(&s->txn.reader, data, len);
	if (last)
		smtp_chunk_end(s);
	else if (s->bdat_refusal.code == 0)
		spill_if_needed(s);
}

/* Reads the chunk the BDAT command announced. */
static void
bdat_read(struct smtp_session *s)
{
	smtp_enter(s, SMTP_ST_BDAT);
	if (s->bdat_size == 0)
		smtp_chunk_end(s);
	else
		smtp_host->session_read_octets(s->ss, s->bdat_size,
		                               bdat_octets);
}

/* The chunk's octets: the client's (BDAT), or its URL's (BURL). */
static void
chunk_read(struct smtp_session *s)
{
	if (s->burl_url == NULL) {
		bdat_read(s);
		return;
	}
	smtp_enter(s, SMTP_ST_BURL);
	smtp_burl_fetch(s);
}

/* ---- DATA ------------------------------------------------------------- */

void
smtp_on_data_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	if (!smtp_reply_verdict(s, ev->verdict, 554, "5.7.1",
	                        "message refused")) {
		begin_message(s, SMTP_DATA_DOT);
		smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
		smtp_enter(s, SMTP_ST_DATA);
		smtp_host->conn_set_idle(s->conn, (unsigned)smtp_cfg.data_ms);
		smtp_host->session_take_lines(s->ss, data_line);
	} else
		smtp_enter(s, smtp_rest_state(s));
	smtp_session_resume(s);
}

/* RCPT only (the machine's rules: 503 before MAIL, 554 without a
 * recipient, 503 after BDAT). */
void
smtp_cmd_data(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (cmd->arg_len > 0) {
		smtp_reply_error(s, 501, "5.5.4", "DATA takes no argument");
		return;
	}
	smtp_enter(s, SMTP_ST_DATA_HOOK);
	smtp_stage_run(s, POSTERN_SMTP_DATA);
}

/* ---- BDAT (RFC 3030) -------------------------------------------------- */

void
smtp_chunk_refuse(struct smtp_session *s, unsigned code,
                  const char *enhanced, const char *text)
{
	s->bdat_refusal.code = code;
	s->bdat_refusal.enhanced = enhanced;
	s->bdat_refusal.text = text;
}

void
smtp_on_bdat_verdict(struct smtp_session *s, const struct smtp_event *ev)
{
	const struct postern_verdict *v = ev->verdict;
	struct postern_smtp_txn *t = &s->txn;

	if (v->kind == POSTERN_VERDICT_REJECT ||
	    v->kind == POSTERN_VERDICT_TEMPFAIL) {
		int temp = v->kind == POSTERN_VERDICT_TEMPFAIL;
		unsigned code = v->code;

		if (temp ? (code < 400 || code > 499)
		         : (code < 500 || code > 599))
			code = temp ? 451 : 554;
		smtp_chunk_refuse(s, code, temp ? "4.7.1" : "5.7.1",
		                  v->text != NULL
		                      ? smtp_host->pool_strndup(t->pool, v->text,
		                                                strlen(v->text))
		                      : "message refused");
		t->bdat_failed = 1;
	} else
		begin_message(s, SMTP_DATA_CHUNK);
	/* Refused or not, this transaction is BDAT's now: no DATA, no
	 * more RCPT (RFC 3030 2). */
	t->bdat = 1;
	smtp_session_resume(s);
	chunk_read(s);
}

void
smtp_chunk_begin(struct smtp_session *s)
{
	if (!s->txn.data_started) {
		smtp_enter(s, SMTP_ST_BDAT_HOOK);
		smtp_stage_run(s, POSTERN_SMTP_DATA);
		return;
	}
	chunk_read(s);
}

/* In any state that reads commands but REFUSED: a chunk out of
 * sequence (the machine's rule says REFUSE_CHUNK) is read, then
 * refused. */
void
smtp_cmd_bdat(struct smtp_session *s, const struct smtp_command *cmd,
              const struct smtp_rule *rule)
{
	struct smtp_error err;

	if (smtp_parse_bdat(cmd->arg, cmd->arg_len, &s->bdat_size,
	                    &s->bdat_last, &err) < 0) {
		/* Without a size the chunk cannot be skipped: whatever
		 * follows is read as commands, and errors add up. */
		smtp_reply_error(s, err.code, err.enhanced, err.text);
		return;
	}
	s->bdat_refusal.code = 0;
	s->burl_url = NULL;
	smtp_host->conn_set_idle(s->conn, (unsigned)smtp_cfg.data_ms);
	if (rule->kind == SMTP_RULE_REFUSE_CHUNK) {
		smtp_chunk_refuse(s, rule->code, rule->enhanced, rule->text);
		bdat_read(s);
		return;
	}
	smtp_chunk_begin(s);
}

void
smtp_chunk_end(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;

	s->burl_url = NULL;  /* in the txn pool, which LAST ends */
	leave_data_phase(s);
	if (s->bdat_refusal.code != 0) {
		smtp_reply_error(s, s->bdat_refusal.code,
		                 s->bdat_refusal.enhanced,
		                 s->bdat_refusal.text);
		/* The last chunk ends the transaction either way. */
		if (s->bdat_last && t->pool != NULL)
			smtp_txn_reset(s);
		smtp_enter(s, smtp_rest_state(s));
		return;
	}
	if (s->bdat_last) {
		smtp_data_finish(&t->reader);
		end_message(s);
		return;
	}
	if (t->too_big) {
		t->bdat_failed = 1;
		smtp_reply_error(s, 552, "5.3.4", "message exceeds fixed "
		                 "maximum message size");
		smtp_enter(s, SMTP_ST_CHUNK_FAILED);
		return;
	}
	smtp_reply(s, 250, "2.0.0", "%llu octets received",
	           (unsigned long long)t->size);
	smtp_enter(s, SMTP_ST_CHUNKED);
}

/* ---- the end of the message ------------------------------------------- */

static void
message_replied(struct smtp_session *s)
{
	int disconnect = s->txn.refuse_disconnect;

	if (s->last_code >= 200 && s->last_code < 600)
		smtp_host->metric_add(smtp_transactions,
		                      s->last_code / 100 - 2, 1);
	smtp_txn_reset(s);
	smtp_enter(s, smtp_rest_state(s));
	if (disconnect)
		smtp_session_close(s);
	smtp_session_resume(s);
}

/* One line per recipient, as Postfix's local(8) and the relay write
 * them (the relay logs its own deliveries), then the message's. */
static void
log_outcome(const struct postern_smtp_txn *t, size_t ok, size_t temp,
            size_t perm)
{
	size_t i;

	for (i = 0; i < t->nrcpts; i++) {
		const struct smtp_rcpt *r = &t->rcpts[i];
		int relayed = r->route == SMTP_ROUTE_RELAY;

		if (r->removed)
			continue;
		smtp_log_txn(t->logp, POSTERN_LOG_INFO,
		             "to=<%s>, relay=%s, status=%s (%s)", r->r.address,
		             relayed ? "queue" : "local",
		             r->result >= 500 ? "bounced"
		             : r->result != 0 ? "deferred"
		             : relayed        ? "queued" : "sent",
		             r->result != 0 ? r->result_text
		             : relayed      ? "for the relay"
		             : t->outcome == SMTP_OUT_QUARANTINE
		                            ? "2.0.0 quarantined"
		                            : "2.0.0 delivered");
	}
	smtp_log_txn(t->logp, POSTERN_LOG_INFO,
	             "from=<%s>, size=%llu, nrcpt=%zu: %zu delivered, %zu "
	             "deferred, %zu failed%s%s%s", t->env.sender,
	             (unsigned long long)t->size, ok + temp + perm, ok, temp,
	             perm,
	             t->outcome == SMTP_OUT_QUARANTINE ? " (quarantined)" : "",
	             /* The relay names it otherwise only when the id was
	              * taken (it never is, short of a clock gone back). */
	             t->queue_id[0] != '\0' && strcmp(t->queue_id, t->id) != 0
	                 ? ", relay queue id " : "",
	             t->queue_id[0] != '\0' && strcmp(t->queue_id, t->id) != 0
	                 ? t->queue_id : "");
}

/* Also once the client has gone (CLOSED): the outcome is logged. */
void
smtp_on_delivered(struct smtp_session *s, const struct smtp_event *ev)
{
	struct postern_smtp_txn *t = &s->txn;
	size_t i, ok = 0, temp = 0, perm = 0;
	const struct smtp_rcpt *first_perm = NULL, *first_temp = NULL;

	for (i = 0; i < t->nrcpts; i++) {
		const struct smtp_rcpt *r = &t->rcpts[i];

		if (r->removed)
			continue;
		if (r->result == 0)
			ok++;
		else if (r->result >= 500) {
			perm++;
			if (first_perm == NULL)
				first_perm = r;
		} else {
			temp++;
			if (first_temp == NULL)
				first_temp = r;
		}
	}
	(void)ev;
	log_outcome(t, ok, temp, perm);
	/* The client left during the delivery: no reply reaches it, and
	 * the transaction goes with the session. */
	if (smtp_host->session_closing(s->ss))
		return;
	if (temp == 0 && perm == 0) {
		smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", t->id);
		smtp_host->conn_junk_reset(s->conn); /* as Postfix */
	}
	else if (temp == 0 && ok == 0)
		reply_coded(s, first_perm->result, first_perm->result_text);
	else if (perm == 0 && ok == 0)
		/* every recipient deferred: the reason they were given
		 * ("452 4.2.2 mailbox full", RFC 3463) */
		reply_coded(s, first_temp->result, first_temp->result_text);
	else {
		if (ok > 0)
			smtp_log_txn(t->logp, POSTERN_LOG_WARNING,
			             "%zu recipient(s) got it but others "
			             "failed: the client's retry will reach "
			             "them again", ok);
		smtp_reply(s, 451, "4.3.0", "temporary local problem, "
		           "try again later");
	}
	message_replied(s);
}

void
smtp_message_filtered(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;

	switch (t->outcome) {
	case SMTP_OUT_REFUSE:
		smtp_reply(s, t->refuse_code, t->refuse_enhanced, "%s",
		           t->refuse_text);
		if (t->refuse_code >= 500)
			smtp_host->session_error(s->ss);
		message_replied(s);
		return;
	case SMTP_OUT_DISCARD:
		smtp_log_txn(t->logp, POSTERN_LOG_NOTICE,
		             "discarded by a filter");
		smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", t->id);
		smtp_host->conn_junk_reset(s->conn);
		message_replied(s);
		return;
	default:
		if (smtp_host->conn_peer_gone(s->conn)) {
			/* No 250 can reach the client, which will send the
			 * message again: delivering it would make two. */
			smtp_log_txn(t->logp, POSTERN_LOG_NOTICE,
			             "not delivered: the client left before "
			             "its reply");
			smtp_txn_reset(s);
			smtp_session_close(s);
			return;
		}
		smtp_enter(s, SMTP_ST_DELIVER);
		smtp_deliver(s);
		return;
	}
}

/* The message is durable (SYNC): the end-of-message stages. */
void
smtp_on_synced(struct smtp_session *s, const struct smtp_event *ev)
{
	if (!ev->status || s->txn.outcome == SMTP_OUT_REFUSE) {
		smtp_reply(s, 451, "4.3.0", "local error writing the message");
		message_replied(s);
		return;
	}
	smtp_filter_message(s);
}

static void
end_message(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;

	if (t->reader.errors != 0) {
		smtp_log_txn(t->logp, POSTERN_LOG_NOTICE, "refused: %s",
		             smtp_data_error_text(t->reader.errors));
		smtp_reply_error(s, 550, "5.6.0",
		                 smtp_data_error_text(t->reader.errors));
		message_replied(s);
		return;
	}
	if (t->too_big) {
		smtp_reply_error(s, 552, "5.3.4", "message exceeds fixed "
		                 "maximum message size");
		message_replied(s);
		return;
	}
	if (t->header == NULL && smtp_host->spool_fd(t->spool) < 0) {
		/* Whole in memory: the header is its start (a message
		 * without an empty line is all header). */
		const char *mem;

		smtp_host->spool_memory(t->spool, &mem);
		t->header_len = t->reader.in_header ? (size_t)t->size
		                                    : (size_t)t->reader.header_len;
		t->header = smtp_host->pool_strndup(
		    t->pool, mem != NULL ? mem : "",
		    t->header_len);
	}
	if (t->header == NULL || t->header_lost) {
		smtp_reply_error(s, 552, "5.3.4", "header section too large");
		message_replied(s);
		return;
	}
	smtp_enter(s, SMTP_ST_SYNC);
	smtp_spool_sync(s, 1);
}
