/*
 * smtp_deliver.c - recipient lookups (auth resolve) on job threads, and
 * the delivery of a finished message to the storage backend and the
 * relay queue (spool I/O is in smtp_spool.c).
 *
 * The jobs are the session layer's (host->session_job): the session is
 * paused while one runs and kept until it is done, however early the
 * client leaves.  A job's `work` reads only what it was given (its
 * context, in its own pool; the transaction's pool; the spool), never
 * the session.  Its `done` frees the context; when the client has gone
 * (smtp_session_gone) it stops there, and the transaction goes with the
 * session (on_free).  Outputs default to failure, so a job the stopping
 * worker never ran fails safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "smtp_session.h"

/* ---- RCPT: resolve ---------------------------------------------------- */

struct resolve_ctx {
	postern_pool_t *pool;
	const char *address;
	const char *fallback;  /* tried when `address` is not a user */
	int status;
	const char **targets;
	size_t ntargets;
};

static void
resolve_work(postern_session_t *ss, void *st, void *arg)
{
	struct resolve_ctx *r = arg;

	(void)ss;
	(void)st;
	r->status = smtp_auth->resolve(r->address, r->pool, &r->targets,
	                               &r->ntargets);
	if (r->fallback != NULL && (r->status == POSTERN_AUTH_NO ||
	                            r->status == POSTERN_AUTH_NOT_LOCAL))
		r->status = smtp_auth->resolve(r->fallback, r->pool,
		                               &r->targets, &r->ntargets);
}

static void
resolve_done(postern_session_t *ss, void *st, void *arg, int status)
{
	struct resolve_ctx *r = arg;
	struct smtp_session *s = st;
	struct smtp_rcpt *p = &s->pending_rcpt;
	postern_pool_t *pool = r->pool;
	struct smtp_event ev = { .kind = SMTP_EV_RESOLVED };
	size_t i;

	(void)ss;
	if (smtp_session_gone(s, status)) {
		smtp_host->pool_destroy(pool);
		return;
	}
	if (status != POSTERN_OK)
		r->status = POSTERN_AUTH_TEMPFAIL;
	p->targets = NULL;
	p->ntargets = 0;
	if (r->status == POSTERN_AUTH_YES && r->ntargets > 0) {
		p->targets = smtp_host->pool_alloc(
		    s->txn.pool, r->ntargets * sizeof(*p->targets));
		for (i = 0; i < r->ntargets; i++)
			p->targets[i] = smtp_host->pool_strndup(
			    s->txn.pool, r->targets[i], strlen(r->targets[i]));
		p->ntargets = r->ntargets;
	}
	ev.status = r->status;
	smtp_event(s, &ev);
	smtp_host->pool_destroy(pool);
}

void
smtp_resolve_rcpt(struct smtp_session *s)
{
	struct smtp_event ev = {
		.kind = SMTP_EV_RESOLVED, .status = POSTERN_AUTH_NOT_LOCAL,
	};
	struct resolve_ctx *r;
	postern_pool_t *pool;

	/* No user database (a gateway): nothing is local, and there is
	 * nothing to wait for. */
	if (smtp_auth == NULL) {
		s->pending_rcpt.targets = NULL;
		s->pending_rcpt.ntargets = 0;
		smtp_event(s, &ev);
		return;
	}
	r = smtp_job_ctx(sizeof(*r));
	pool = r->pool;
	/* <Postmaster> without a domain is ours (RFC 5321 4.5.1): the
	 * primary domain's postmaster, or the host's as before there was
	 * a primary domain. */
	if (s->rcpt_args.postmaster) {
		r->address = smtp_host->pool_printf(pool, "postmaster@%s",
		                                    smtp_cfg.domain);
		if (strcasecmp(smtp_cfg.domain, smtp_cfg.hostname) != 0)
			r->fallback = smtp_host->pool_printf(
			    pool, "postmaster@%s", smtp_cfg.hostname);
	} else
		r->address = smtp_host->pool_strndup(
		    pool, s->rcpt_args.address, strlen(s->rcpt_args.address));
	r->status = POSTERN_AUTH_TEMPFAIL;
	smtp_job_start(s, resolve_work, resolve_done, r);
}

/* ---- the Received header ---------------------------------------------- */

/* RFC 3848 and RFC 6531 section 3.7.3: the "with" protocol. */
static const char *
with_protocol(const struct smtp_session *s)
{
	static const char *const names[2][2][2][2] = {
		/* [utf8][esmtp][tls][auth] */
		{ { { "SMTP", "SMTP" }, { "SMTP", "SMTP" } },
		  { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } } },
		{ { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
		  { { "UTF8SMTP", "UTF8SMTPA" },
		    { "UTF8SMTPS", "UTF8SMTPSA" } } },
	};

	return names[s->txn.mail.smtputf8 != 0][s->esmtp != 0][s->tls != 0]
	            [s->auth_user != NULL];
}

char *
smtp_received_header(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;
	char date[64], tls[192] = "", auth[320] = "", rcpt[300] = "";
	struct tm tm;
	time_t now = time(NULL);
	size_t i, live = 0;
	const char *only = NULL;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (s->tls)
		snprintf(tls, sizeof(tls), "\r\n\t(using %s with cipher %s "
		         "(%d bits))", s->tls_version, s->tls_cipher,
		         s->tls_bits);
	if (s->auth_user != NULL)
		snprintf(auth, sizeof(auth), "\r\n\t(Authenticated sender: %s)",
		         s->auth_user);
	/* "for" only with one recipient: never disclose the others. */
	for (i = 0; i < t->nrcpts; i++)
		if (!t->rcpts[i].removed) {
			live++;
			only = t->rcpts[i].r.address;
		}
	if (live == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", only);
	return smtp_host->pool_printf(
	    t->pool, "Received: from %s ([%s])\r\n\tby %s (postern) with %s "
	    "id %s%s%s%s;\r\n\t%s\r\n",
	    s->helo[0] != '\0' ? s->helo : "unknown",
	    smtp_host->conn_peer(s->conn), smtp_cfg.hostname,
	    with_protocol(s), t->id, tls, auth, rcpt, date);
}

/* ---- delivery --------------------------------------------------------- */

struct deliver_ctx {
	postern_pool_t *pool;
	struct postern_relay_envelope env;
	struct smtp_rcpt *rcpts;
	size_t nrcpts;
	postern_spool_t *spool;
	uint64_t offset;             /* where the content starts */
	const char *head_local;      /* Return-Path + Received + header */
	size_t head_local_len;
	const char *head_relay;      /* Received + header */
	size_t head_relay_len;
	const char *mailbox;         /* NULL: INBOX; "Quarantine" */
	int relay_held;              /* quarantine: keep off the relay */
	const char *logp;            /* the transaction's log prefix */
	char queue_id[64];
};

static void
set_result(struct smtp_rcpt *r, unsigned code, const char *text)
{
	/* A recipient keeps its worst outcome: permanent beats temporary
	 * beats success. */
	if (code == 0 && r->result != 0)
		return;
	if (r->result >= 500 && code < 500)
		return;
	r->result = code;
	r->result_text = text;
}

static void
content_of(const struct deliver_ctx *d, int *fd, const void **data,
           uint64_t *offset, uint64_t *length)
{
	uint64_t total = smtp_host->spool_size(d->spool);
	const char *mem;

	*offset = d->offset;
	*length = total - d->offset;
	if (smtp_host->spool_fd(d->spool) >= 0) {
		*fd = smtp_host->spool_fd(d->spool);
		*data = NULL;
	} else {
		*fd = -1;
		smtp_host->spool_memory(d->spool, &mem);
		*data = mem + d->offset;
		*offset = 0;
	}
}

/* What goes to the relay: one envelope entry per address, with the
 * index of the recipient it came from (for its result). */
struct relay_list {
	struct postern_relay_rcpt *v;
	size_t *from;
	size_t n;
};

static void
relay_add(struct relay_list *l, const struct smtp_rcpt *r, size_t from,
          const char *address)
{
	l->v[l->n] = r->r;
	l->v[l->n].address = address;
	l->from[l->n] = from;
	l->n++;
}

/* A recipient a filter added: routed now (the session decided the
 * others at RCPT). */
static void
route_added(struct smtp_rcpt *r, postern_pool_t *pool)
{
	int rc = smtp_auth != NULL
	             ? smtp_auth->resolve(r->r.address, pool, &r->targets,
	                                  &r->ntargets)
	             : POSTERN_AUTH_NOT_LOCAL;

	if (rc == POSTERN_AUTH_YES)
		r->route = SMTP_ROUTE_LOCAL;
	else if (rc == POSTERN_AUTH_NOT_LOCAL && smtp_relay != NULL)
		r->route = SMTP_ROUTE_RELAY;
	else {
		r->ntargets = 0;
		r->route = SMTP_ROUTE_LOCAL;
		set_result(r, rc == POSTERN_AUTH_TEMPFAIL ? 451 : 550,
		           rc == POSTERN_AUTH_TEMPFAIL
		               ? "4.3.0 recipient lookup failed"
		               : "5.1.1 added recipient unavailable");
	}
}

static void
deliver_relay(struct deliver_ctx *d, struct relay_list *l)
{
	struct postern_relay_message msg = { .size = sizeof(msg) };
	struct postern_relay_envelope env = d->env;
	char err[256] = "";
	size_t i;
	int rc;

	if (l->n == 0)
		return;
	if (d->relay_held) {
		smtp_log_txn(d->logp, POSTERN_LOG_NOTICE, "quarantined: %zu "
		             "relayed recipient(s) held back", l->n);
		for (i = 0; i < l->n; i++)
			set_result(&d->rcpts[l->from[i]], 0, NULL);
		return;
	}
	env.rcpts = l->v;
	env.nrcpts = l->n;
	content_of(d, &msg.fd, &msg.data, &msg.offset, &msg.length);
	msg.head = d->head_relay;
	msg.head_len = d->head_relay_len;
	rc = smtp_relay->enqueue(&env, &msg, d->queue_id,
	                         sizeof(d->queue_id), err, sizeof(err));
	for (i = 0; i < l->n; i++) {
		struct smtp_rcpt *r = &d->rcpts[l->from[i]];

		if (rc == POSTERN_RELAY_OK)
			set_result(r, 0, NULL);
		else if (rc == POSTERN_RELAY_REJECT)
			set_result(r, 554, "5.7.1 relay refused the message");
		else
			set_result(r, 451, "4.3.0 relay queue unavailable");
	}
	if (rc != POSTERN_RELAY_OK)
		smtp_log_txn(d->logp, POSTERN_LOG_ERROR, "relay %s: %s",
		             rc == POSTERN_RELAY_REJECT ? "refused it" : "failed",
		             err);
}

/* A local recipient: the host delivers to its users; its alias
 * forwards go to the relay. */
static void
deliver_rcpt_local(struct deliver_ctx *d, size_t i, struct relay_list *relay,
                   postern_pool_t *pool, struct postern_local_result *res)
{
	struct postern_append msg = { .size = sizeof(msg) };
	struct smtp_rcpt *r = &d->rcpts[i];
	size_t k;

	content_of(d, &msg.fd, &msg.data, &msg.offset, &msg.length);
	msg.head = d->head_local;
	msg.head_len = d->head_local_len;
	if (smtp_host->local_deliver(smtp_self, r->targets, r->ntargets, &msg,
	                             d->mailbox, pool, res) != 0)
		set_result(r, res->code, res->text);
	else
		set_result(r, 0, NULL);
	for (k = 0; k < res->nforwards; k++) {
		if (smtp_relay != NULL)
			relay_add(relay, r, i, res->forwards[k]);
		else
			set_result(r, 550, "5.7.1 forwarding not available");
	}
}

/* A local recipient whose sender asked for a report of its delivery
 * (NOTIFY=SUCCESS, RFC 3461): the relay, which writes reports, delivers
 * it from its queue and tells the sender.  Not for a quarantined
 * message, which stays off the relay. */
static int
wants_success_report(const struct deliver_ctx *d, const struct smtp_rcpt *r)
{
	return smtp_relay != NULL && !d->relay_held && d->mailbox == NULL &&
	       (r->r.notify & POSTERN_DSN_NOTIFY_SUCCESS) != 0 &&
	       d->env.sender[0] != '\0';
}

static void
deliver_work(postern_session_t *ss, void *st, void *arg)
{
	struct deliver_ctx *d = arg;
	struct relay_list relay = { 0 };
	struct postern_local_result res = { .size = sizeof(res) };
	size_t i, cap = 0;

	(void)ss;
	(void)st;
	for (i = 0; i < d->nrcpts; i++)
		if (d->rcpts[i].added && !d->rcpts[i].removed)
			route_added(&d->rcpts[i], d->pool);
	for (i = 0; i < d->nrcpts; i++)
		cap += d->rcpts[i].route == SMTP_ROUTE_RELAY
		           ? 1 : d->rcpts[i].ntargets;
	relay.v = smtp_host->pool_alloc(d->pool, (cap + 1) *
	                                         sizeof(*relay.v));
	relay.from = smtp_host->pool_alloc(d->pool, (cap + 1) *
	                                            sizeof(*relay.from));
	for (i = 0; i < d->nrcpts; i++) {
		struct smtp_rcpt *r = &d->rcpts[i];

		if (r->removed || r->result != 0)
			continue;
		if (r->route == SMTP_ROUTE_RELAY || wants_success_report(d, r))
			relay_add(&relay, r, i, r->r.address);
		else if (r->ntargets > 0)
			deliver_rcpt_local(d, i, &relay, d->pool, &res);
	}
	deliver_relay(d, &relay);
}

/* Also when the client has gone meanwhile: the outcome is logged (the
 * message may be in mailboxes and the queue by now). */
static void
deliver_done(postern_session_t *ss, void *st, void *arg, int status)
{
	struct deliver_ctx *d = arg;
	struct smtp_session *s = st;
	postern_pool_t *pool = d->pool;
	struct smtp_event ev = { .kind = SMTP_EV_DELIVERED, .status = status };
	size_t i;

	(void)ss;
	if (status == POSTERN_ERROR)
		for (i = 0; i < d->nrcpts; i++)
			set_result(&d->rcpts[i], 451,
			           "4.3.0 delivery interrupted");
	/* So that the session's log line leads to the relay's. */
	snprintf(s->txn.queue_id, sizeof(s->txn.queue_id), "%s",
	         status == POSTERN_ERROR ? "" : d->queue_id);
	smtp_event(s, &ev);
	smtp_host->pool_destroy(pool);
}

void
smtp_deliver(struct smtp_session *s)
{
	struct postern_smtp_txn *t = &s->txn;
	struct deliver_ctx *d = smtp_job_ctx(sizeof(*d));
	const char *received = smtp_received_header(s), *hdr = NULL;
	size_t hdr_len = 0, i;

	smtp_filter_apply_rcpt_edits(t);
	d->spool = t->spool;
	d->offset = 0;
	if (smtp_filter_apply_header_edits(t, &hdr, &hdr_len))
		d->offset = t->header_len;
	if (t->body_spool != NULL && hdr != NULL) {
		d->spool = t->body_spool;
		d->offset = 0;
	} else if (t->body_spool != NULL)
		smtp_log_txn(t->logp, POSTERN_LOG_WARNING, "a filter's new body "
		             "is not used: the header changes could not be "
		             "applied");
	d->head_relay = smtp_host->pool_printf(t->pool, "%s%.*s", received,
	                                       (int)hdr_len,
	                                       hdr != NULL ? hdr : "");
	d->head_relay_len = strlen(received) + hdr_len;
	d->head_local = smtp_host->pool_printf(t->pool,
	                                       "Return-Path: <%s>\r\n%s",
	                                       t->env.sender, d->head_relay);
	d->head_local_len = strlen(d->head_local);
	d->env = t->env;
	d->rcpts = t->rcpts;
	d->nrcpts = t->nrcpts;
	for (i = 0; i < t->nrcpts; i++)
		t->rcpts[i].result = 0;
	d->mailbox = t->outcome == SMTP_OUT_QUARANTINE ? "Quarantine" : NULL;
	d->relay_held = t->outcome == SMTP_OUT_QUARANTINE;
	d->logp = t->logp;
	smtp_job_start(s, deliver_work, deliver_done, d);
}
