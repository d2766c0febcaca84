/*
 * filter_policy.c - an asynchronous SMTP filter: at each RCPT it asks a
 * policy service over TCP, the way Postfix's check_policy_service does
 * (the same protocol, so policyd-spf, postgrey or a policyd of your own
 * answer it), and the session waits for the answer without blocking
 * anyone else on the worker.
 *
 * It shows how a handler answers later: it returns PENDING with its own
 * state in `call_data`, opens a connection on the event loop
 * (host->conn_connect), and calls host->hook_resume when the answer
 * comes.  If the client leaves or the handler's timeout strikes first,
 * the host calls `cancel_call` with that same state, and the filter
 * drops the connection; a resume after that would be ignored.
 *
 * The protocol (Postfix SMTPD_POLICY_README): "name=value" lines and an
 * empty line; the answer is "action=ACTION" and an empty line.  Actions
 * understood: OK and DUNNO (go on), REJECT [text], DEFER [text] (also
 * DEFER_IF_PERMIT), "4NN text" and "5NN text", DISCARD, and
 * "PREPEND Name: value" (a header field put at the top).
 *
 * Configuration:
 *	filter_policy = {
 *	  address = "127.0.0.1";     # numeric; the service's port:
 *	  port = 10031;
 *	  timeout = "10s";           # for the whole question
 *	  on_failure = "continue";   # service down or silent: "continue"
 *	};                           # (fail open) or "tempfail"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <postern/postern.h>
#include <postern/smtp.h>

struct settings {
	const char *address;
	long long port;
	long long timeout_ms;
	int on_failure;            /* 0: continue, 1: tempfail */
};

static const char *const failures[] = { "continue", "tempfail", NULL };

static const struct postern_cfg_key keys[] = {
	{ .name = "address", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, address), .def = "127.0.0.1",
	  .doc = "the policy service's numeric address" },
	{ .name = "port", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct settings, port), .def = "10031",
	  .min = 1, .max = 65535, .doc = "its TCP port" },
	{ .name = "timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct settings, timeout_ms), .def = "10s",
	  .min = 100, .max = 600000, .doc = "for the whole question" },
	{ .name = "on_failure", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct settings, on_failure),
	  .def = "continue", .choices = failures,
	  .doc = "when the service fails: continue or tempfail" },
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static struct settings cfg;
static const struct postern_smtp_service *smtp;

/* One question in flight.  Freed in on_close, which always comes once
 * the connection exists. */
struct question {
	postern_hook_call_t *call;  /* NULL once answered or cancelled */
	postern_smtp_txn_t *txn;    /* for PREPEND, while the call lives */
	postern_conn_t *conn;
	char action[1024];
};

static void
failure_verdict(struct postern_verdict *v)
{
	v->kind = cfg.on_failure ? POSTERN_VERDICT_TEMPFAIL
	                         : POSTERN_VERDICT_CONTINUE;
	v->code = 451;
	v->enhanced = "4.3.0";
	v->text = "policy service unavailable, try again later";
}

/* "action=..." into a verdict. */
static void
action_verdict(struct question *q, struct postern_verdict *v)
{
	const char *a = q->action, *text;
	char name[256];
	const char *colon;

	text = strchr(a, ' ') != NULL ? strchr(a, ' ') + 1 : NULL;
	if (strncasecmp(a, "OK", 2) == 0 || strncasecmp(a, "DUNNO", 5) == 0)
		return;
	if (strncasecmp(a, "REJECT", 6) == 0) {
		v->kind = POSTERN_VERDICT_REJECT;
		v->code = 550;
		v->enhanced = "5.7.1";
		v->text = text != NULL ? text : "recipient refused by policy";
	} else if (strncasecmp(a, "DEFER", 5) == 0) {
		v->kind = POSTERN_VERDICT_TEMPFAIL;
		v->code = 450;
		v->enhanced = "4.7.1";
		v->text = text != NULL ? text : "try again later";
	} else if ((a[0] == '4' || a[0] == '5') && strlen(a) > 3 &&
	           a[3] == ' ') {
		v->kind = a[0] == '5' ? POSTERN_VERDICT_REJECT
		                      : POSTERN_VERDICT_TEMPFAIL;
		v->code = (unsigned)atoi(a);
		v->text = a + 4;
	} else if (strncasecmp(a, "DISCARD", 7) == 0) {
		v->kind = POSTERN_VERDICT_DISCARD;
	} else if (strncasecmp(a, "PREPEND ", 8) == 0 &&
	           (colon = strchr(a + 8, ':')) != NULL &&
	           (size_t)(colon - a - 8) < sizeof(name)) {
		memcpy(name, a + 8, (size_t)(colon - a - 8));
		name[colon - a - 8] = '\0';
		if (smtp->header_add(q->txn, name, colon + 1, 1) < 0)
			host->log(self, POSTERN_LOG_WARNING, "filter_policy: "
			          "cannot prepend '%s'", a + 8);
	} else {
		host->log(self, POSTERN_LOG_WARNING, "filter_policy: unknown "
		          "action '%s'", a);
		failure_verdict(v);
	}
}

/* Answers the waiting RCPT once, then lets the connection go. */
static void
answer(struct question *q, int failed)
{
	struct postern_verdict v = { .kind = POSTERN_VERDICT_CONTINUE };
	postern_hook_call_t *call = q->call;

	if (call == NULL)
		return;
	if (failed)
		failure_verdict(&v);
	else
		action_verdict(q, &v);
	q->call = NULL;
	host->hook_resume(call, &v); /* copies the text */
	host->conn_close(q->conn);
}

static void
on_read(postern_conn_t *c, void *arg)
{
	struct question *q = arg;
	struct postern_line line;
	int rc;

	while ((rc = host->conn_read_line(c, 1000, &line)) == POSTERN_OK ||
	       rc == POSTERN_TOOLONG) {
		if (rc == POSTERN_TOOLONG) {
			answer(q, 1);
			return;
		}
		if (line.len == 0) { /* the empty line ends the answer */
			answer(q, q->action[0] == '\0');
			return;
		}
		if (line.len > 7 && strncasecmp(line.data, "action=", 7) == 0)
			snprintf(q->action, sizeof(q->action), "%.*s",
			         (int)line.len - 7, line.data + 7);
	}
}

static void
on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	struct question *q = arg;

	(void)why;
	if (q->call != NULL) {
		const char *err = host->conn_error(c);

		host->log(self, POSTERN_LOG_WARNING, "filter_policy: %s:%lld: "
		          "%s", cfg.address, cfg.port,
		          err != NULL ? err : "closed without an answer");
		answer(q, 1);
	}
	free(q);
}

static const struct postern_conn_ops question_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = on_read,
	.on_close = on_close,
};

/* The client left, or `timeout` passed: the answer is not wanted. */
static void
on_cancel(postern_hook_call_t *call, void *arg, void *call_data)
{
	struct question *q = call_data;

	(void)call;
	(void)arg;
	q->call = NULL;
	host->conn_close(q->conn); /* on_close frees q */
}

static void
on_rcpt(postern_hook_call_t *call, void *payload, void *arg,
        struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;
	struct postern_connect_spec spec = { .size = sizeof(spec) };
	struct question *q;
	char err[256];

	(void)arg;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		failure_verdict(v);
		return;
	}
	spec.name = "policy";
	spec.address = cfg.address;
	spec.port = (unsigned)cfg.port;
	spec.connect_ms = (unsigned)cfg.timeout_ms;
	spec.ops = &question_ops;
	spec.arg = q;
	if ((q->conn = host->conn_connect(self, &spec, err, sizeof(err))) ==
	    NULL) {
		host->log(self, POSTERN_LOG_WARNING, "filter_policy: %s",
		          err);
		free(q);
		failure_verdict(v);
		return;
	}
	/* Everything the service needs is copied into the request now:
	 * the payload is only ours until we answer. */
	host->conn_printf(q->conn,
	                  "request=smtpd_access_policy\nprotocol_state=RCPT\n"
	                  "protocol_name=%s\nhelo_name=%s\n"
	                  "client_address=%s\nsender=%s\nrecipient=%s\n"
	                  "sasl_username=%s\n\n",
	                  p->session->esmtp ? "ESMTP" : "SMTP",
	                  p->session->helo != NULL ? p->session->helo : "",
	                  p->session->peer, p->envelope->sender,
	                  p->rcpt->address,
	                  p->session->auth_user != NULL
	                      ? p->session->auth_user : "");
	q->call = call;
	q->txn = p->txn;
	v->kind = POSTERN_VERDICT_PENDING;
	v->call_data = q; /* given back to on_cancel */
}

static int
filter_init(const struct postern_host *h, postern_module_t *m)
{
	struct postern_hook_handler handler = {
		.size = sizeof(handler),
		.hook = POSTERN_SMTP_HOOK_RCPT,
		.fn = on_rcpt,
		.cancel_call = on_cancel,
		.on_timeout_set = 1,
	};

	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), keys, &cfg) < 0)
		return -1;
	smtp = h->service_lookup(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                         0);
	if (smtp == NULL)
		return -1;
	handler.timeout_ms = (unsigned)cfg.timeout_ms;
	handler.on_timeout = cfg.on_failure ? POSTERN_VERDICT_TEMPFAIL
	                                    : POSTERN_VERDICT_CONTINUE;
	return h->hook_register(m, &handler);
}

static const char *const deps[] = { "smtp", NULL };

POSTERN_MODULE(.name = "filter_policy", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = filter_init);
