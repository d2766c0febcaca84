/*
 * relay_local.c - queued recipients that are ours (see relay_local.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <postern/auth.h>
#include <postern/storage.h>

#include "relay.h"
#include "relay_local.h"
#include "relay_queue.h"

struct local_rcpt {
	int asked;              /* pending when the message was claimed */
	int rc;                 /* the auth service's resolve */
	const char **targets;
	size_t ntargets;
};

struct relay_local {
	postern_pool_t *pool;
	struct local_rcpt *r;   /* one per recipient */
	size_t n;
};

static const struct postern_auth *auth;

void
relay_local_start(void)
{
	auth = relay_host->service_find(relay_self, POSTERN_AUTH_SERVICE,
	                                POSTERN_AUTH_MAJOR, 0);
}

struct relay_local *
relay_local_resolve(const struct rq_msg *q)
{
	struct relay_local *l;
	size_t i;

	if (auth == NULL)
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->r = calloc(q->nrcpts, sizeof(*l->r))) == NULL)
		abort();
	l->n = q->nrcpts;
	l->pool = relay_host->pool_create(4096);
	for (i = 0; i < q->nrcpts; i++)
		if (q->rcpts[i].state == RQ_PENDING) {
			l->r[i].asked = 1;
			l->r[i].rc = auth->resolve(q->rcpts[i].address,
			                           l->pool, &l->r[i].targets,
			                           &l->r[i].ntargets);
		}
	return l;
}

int
relay_local_is(const struct relay_local *l, size_t i)
{
	/* NO: the domain is ours and the address is not (bounced here);
	 * TEMPFAIL: asked again at the next attempt, here. */
	return l != NULL && i < l->n && l->r[i].asked &&
	       l->r[i].rc != POSTERN_AUTH_NOT_LOCAL;
}

/* Queues the alias forwards of recipient i as a message of their own,
 * with the recipient's DSN requests.  0, or -1. */
static int
forward(const struct rq_msg *q, size_t i, const char **to, size_t n)
{
	struct postern_relay_envelope env = { .size = sizeof(env) };
	struct postern_relay_message msg = { .size = sizeof(msg) };
	struct postern_relay_rcpt *rc;
	char id[64], err[256];
	size_t k;
	int st;

	if ((rc = calloc(n, sizeof(*rc))) == NULL)
		abort();
	for (k = 0; k < n; k++) {
		rc[k].size = sizeof(rc[k]);
		rc[k].address = to[k];
		rc[k].notify = q->rcpts[i].notify;
		rc[k].orcpt = q->rcpts[i].orcpt;
	}
	env.sender = q->sender;
	env.size_param = q->size_param;
	env.body = q->body;
	env.smtputf8 = q->smtputf8;
	env.ret = q->ret;
	env.envid = q->envid;
	env.rcpts = rc;
	env.nrcpts = n;
	msg.fd = q->fd;
	msg.offset = q->msg_offset;
	msg.length = q->msg_len;
	st = relay_enqueue(&env, &msg, id, sizeof(id), err, sizeof(err));
	if (st == POSTERN_RELAY_OK)
		relay_host->log(relay_self, POSTERN_LOG_INFO, "%s: to=<%s> "
		                "forwarded as %s", q->id, q->rcpts[i].address,
		                id);
	free(rc);
	return st == POSTERN_RELAY_OK ? 0 : -1;
}

/* "4.2.2 mailbox full" into its status and its words. */
static void
set_from_text(struct relay_result *res, unsigned code, const char *text)
{
	char dsn[16];
	const char *sp = text != NULL ? strchr(text, ' ') : NULL;

	if (sp == NULL || (size_t)(sp - text) >= sizeof(dsn)) {
		relay_result_set(res, (int)code, code >= 500 ? "5.0.0"
		                                              : "4.0.0",
		                 text != NULL ? text : "local delivery failed");
		return;
	}
	memcpy(dsn, text, (size_t)(sp - text));
	dsn[sp - text] = '\0';
	relay_result_set(res, (int)code, dsn, sp + 1);
}

void
relay_local_deliver(struct relay_dlv *d, struct relay_local *l)
{
	struct postern_local_result res = { .size = sizeof(res) };
	struct postern_append msg = { .size = sizeof(msg) };
	const struct rq_msg *q = d->q;
	const struct local_rcpt *r;
	struct relay_result *out;
	unsigned code;
	size_t k;
	char *head;

	/* Where a reply to the message goes, as a local delivery agent
	 * writes it (RFC 5321 section 4.4). */
	head = relay_host->pool_printf(l->pool, "Return-Path: <%s>\r\n",
	                               q->sender);
	msg.fd = q->fd;
	msg.offset = q->msg_offset;
	msg.length = q->msg_len;
	msg.head = head;
	msg.head_len = strlen(head);
	for (k = 0; k < d->nres; k++) {
		out = &d->res[k];
		r = &l->r[out->rcpt];
		if (r->rc == POSTERN_AUTH_NO) {
			relay_result_set(out, 550, "5.1.1", "no such user here");
			continue;
		}
		if (r->rc != POSTERN_AUTH_YES) {
			relay_result_set(out, 451, "4.3.0",
			                 "user lookup failed, try later");
			continue;
		}
		code = relay_host->local_deliver(relay_self, r->targets,
		                                 r->ntargets, &msg, NULL,
		                                 l->pool, &res);
		if (code == 0 && res.nforwards > 0 &&
		    forward(q, out->rcpt, res.forwards, res.nforwards) < 0) {
			code = 451;
			res.text = "4.3.0 cannot queue the alias forward";
		}
		if (code == 0)
			relay_result_set(out, 250, "2.0.0",
			                 "delivered to a local mailbox");
		else
			set_from_text(out, code, res.text);
	}
}

void
relay_local_free(struct relay_local *l)
{
	if (l == NULL)
		return;
	relay_host->pool_destroy(l->pool);
	free(l->r);
	free(l);
}
