/*
 * ft_smtp.c - postern-filter-test's stand-in for the smtp module: the
 * smtp.* hook points, the runs of their chains, and an "smtp" service
 * (version 1.2) that checks each call as the real one does and records
 * it as a line of text instead of changing a message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_test.h"
#include "loop.h"

#define FT_SLOTS 16
#define FT_MAX_EDITS 1000

struct ft_slot {
	postern_module_t *m;
	void *p;
};

struct postern_smtp_txn {
	postern_pool_t *pool;
	struct ft_slot slots[FT_SLOTS];
};

static const char *const hook_names[] = {
	POSTERN_SMTP_HOOK_CONNECT, POSTERN_SMTP_HOOK_HELO,
	POSTERN_SMTP_HOOK_STARTTLS, POSTERN_SMTP_HOOK_AUTH,
	POSTERN_SMTP_HOOK_MAIL, POSTERN_SMTP_HOOK_RCPT,
	POSTERN_SMTP_HOOK_DATA, POSTERN_SMTP_HOOK_HEADER,
	POSTERN_SMTP_HOOK_EOH, POSTERN_SMTP_HOOK_BODY,
	POSTERN_SMTP_HOOK_EOD, POSTERN_SMTP_HOOK_RESET,
	POSTERN_SMTP_HOOK_DISCONNECT,
};
#define NSTAGES (sizeof(hook_names) / sizeof(hook_names[0]))

static const struct postern_host *host;
static postern_module_t *self;
static postern_hook_t *hooks[NSTAGES];
static struct ft_slot session_slots[FT_SLOTS];
static char *edits[FT_MAX_EDITS + 1];
static size_t nedits;
static const struct postern_smtp_payload *live;  /* the stage running */

/* ---- the record of calls ---------------------------------------------- */

static void record(const char *fmt, ...) POSTERN_PRINTF(1, 2);

static void
record(const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (nedits == FT_MAX_EDITS)
		return;
	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		abort();
	va_end(ap);
	edits[nedits++] = line;
}

const char *const *
ft_take_edits(void)
{
	static char *taken[FT_MAX_EDITS + 1];
	static size_t ntaken;
	size_t i;

	for (i = 0; i < ntaken; i++)
		free(taken[i]);
	memcpy(taken, edits, sizeof(edits));
	ntaken = nedits;
	taken[ntaken] = NULL;
	nedits = 0;
	return (const char *const *)taken;
}

/* ---- the service: each call checked, then recorded ------------------- */

static int
field_name_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < 33 || *s > 126 || *s == ':')
			return 0;
	return 1;
}

/* CR and LF only as CRLF followed by a space or a tab (folding). */
static int
field_value_ok(const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '\n')
			return 0;
		if (*s == '\r' && (s[1] != '\n' || (s[2] != ' ' &&
		                                    s[2] != '\t')))
			return 0;
		if (*s == '\r')
			s++;
	}
	return s != NULL;
}

static int
address_ok(const char *s)
{
	if (s == NULL || strlen(s) > 256)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == '<' || *s == '>')
			return 0;
	return 1;
}

/* A call made outside a live handler call, or without a transaction. */
static int
txn_live(postern_smtp_txn_t *t, const char *what)
{
	if (t != NULL && live != NULL && live->txn == t)
		return 1;
	record("refused %s: no transaction, or outside a handler's call",
	       what);
	return 0;
}

static int
refuse(const char *what, const char *why)
{
	record("refused %s: %s", what, why);
	return -1;
}

static int
svc_header_add(postern_smtp_txn_t *t, const char *name, const char *value,
               int at_top)
{
	if (!txn_live(t, "header_add"))
		return -1;
	if (!field_name_ok(name) || !field_value_ok(value))
		return refuse("header_add", "not a field name, or a value "
		              "with a bare CR or LF");
	record("header_add%s %s:%s%s", at_top ? "(top)" : "", name,
	       value[0] == ' ' || value[0] == '\t' ? "" : " ", value);
	return 0;
}

static int
svc_header_change(postern_smtp_txn_t *t, const char *name, size_t index,
                  const char *value)
{
	if (!txn_live(t, "header_change"))
		return -1;
	if (!field_name_ok(name) || index == 0 ||
	    (value != NULL && !field_value_ok(value)))
		return refuse("header_change", "not a field name, index 0, or "
		              "a value with a bare CR or LF");
	if (value == NULL)
		record("header_remove %s[%zu]", name, index);
	else
		record("header_change %s[%zu]:%s%s", name, index,
		       value[0] == ' ' || value[0] == '\t' ? "" : " ", value);
	return 0;
}

static int
svc_rcpt(postern_smtp_txn_t *t, const char *address, const char *what)
{
	if (!txn_live(t, what))
		return -1;
	if (!address_ok(address))
		return refuse(what, "not an address");
	record("%s <%s>", what, address);
	return 0;
}

static int
svc_rcpt_add(postern_smtp_txn_t *t, const char *address)
{
	return svc_rcpt(t, address, "rcpt_add");
}

static int
svc_rcpt_remove(postern_smtp_txn_t *t, const char *address)
{
	return svc_rcpt(t, address, "rcpt_remove");
}

static int
svc_header_insert(postern_smtp_txn_t *t, size_t position, const char *name,
                  const char *value)
{
	if (!txn_live(t, "header_insert"))
		return -1;
	if (!field_name_ok(name) || !field_value_ok(value))
		return refuse("header_insert", "not a field name, or a value "
		              "with a bare CR or LF");
	record("header_insert@%zu %s:%s%s", position, name,
	       value[0] == ' ' || value[0] == '\t' ? "" : " ", value);
	return 0;
}

static int
svc_sender_change(postern_smtp_txn_t *t, const char *address,
                  const char *params)
{
	if (!txn_live(t, "sender_change"))
		return -1;
	if (!(address != NULL && *address == '\0') && !address_ok(address))
		return refuse("sender_change", "not an address");
	record("sender_change <%s>%s%s", address,
	       params != NULL && *params ? " " : "",
	       params != NULL ? params : "");
	return 0;
}

static int
svc_body_replace(postern_smtp_txn_t *t, const void *data, size_t len)
{
	if (!txn_live(t, "body_replace"))
		return -1;
	if (live->stage < POSTERN_SMTP_HEADER ||
	    live->stage > POSTERN_SMTP_EOD || (data == NULL && len > 0))
		return refuse("body_replace", "only from the header, eoh, "
		              "body and eod stages");
	record("body_replace %zu octets", len);
	return 0;
}

static postern_pool_t *
svc_txn_pool(postern_smtp_txn_t *t)
{
	return t != NULL ? t->pool : NULL;
}

static void **
slot_of(struct ft_slot *slots, postern_module_t *m)
{
	size_t i;

	for (i = 0; m != NULL && i < FT_SLOTS; i++) {
		if (slots[i].m == m || slots[i].m == NULL) {
			slots[i].m = m;
			return &slots[i].p;
		}
	}
	return NULL;
}

static void **
svc_txn_slot(postern_smtp_txn_t *t, postern_module_t *m)
{
	return t != NULL ? slot_of(t->slots, m) : NULL;
}

static void **
svc_session_slot(const struct postern_smtp_payload *p, postern_module_t *m)
{
	return p != NULL ? slot_of(session_slots, m) : NULL;
}

static void
svc_log(postern_module_t *m, const struct postern_smtp_payload *p,
        int level, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	host->log(m, level, "conn=%llu peer=%s:%u %s",
	          (unsigned long long)p->session->id, p->session->peer,
	          p->session->peer_port, text);
}

static const struct postern_smtp_service service = {
	.size = sizeof(struct postern_smtp_service),
	.header_add = svc_header_add,
	.header_change = svc_header_change,
	.rcpt_add = svc_rcpt_add,
	.rcpt_remove = svc_rcpt_remove,
	.header_insert = svc_header_insert,
	.sender_change = svc_sender_change,
	.body_replace = svc_body_replace,
	.txn_pool = svc_txn_pool,
	.txn_slot = svc_txn_slot,
	.log = svc_log,
	.session_slot = svc_session_slot,
};

/* ---- transactions and stages ------------------------------------------ */

void
ft_session_begin(void)
{
	memset(session_slots, 0, sizeof(session_slots));
}

postern_smtp_txn_t *
ft_txn_begin(void)
{
	postern_smtp_txn_t *t = calloc(1, sizeof(*t));

	if (t == NULL || (t->pool = host->pool_create(4096)) == NULL)
		abort();
	return t;
}

void
ft_txn_end(postern_smtp_txn_t *t)
{
	if (t == NULL)
		return;
	host->pool_destroy(t->pool);
	free(t);
}

int
ft_stage_has_handlers(enum postern_smtp_stage stage)
{
	return (size_t)stage < NSTAGES && hooks[stage] != NULL &&
	       host->hook_has_handlers(hooks[stage]);
}

struct wait {
	int done;
	struct ft_result *out;
};

static void
stage_done(void *arg, const struct postern_verdict *v)
{
	struct wait *w = arg;
	struct ft_result *r = w->out;

	r->v = *v;
	snprintf(r->text, sizeof(r->text), "%s", v->text != NULL ? v->text :
	         "");
	snprintf(r->enhanced, sizeof(r->enhanced), "%s",
	         v->enhanced != NULL ? v->enhanced : "");
	r->v.text = r->text[0] != '\0' ? r->text : NULL;
	r->v.enhanced = r->enhanced[0] != '\0' ? r->enhanced : NULL;
	w->done = 1;
}

int
ft_run_stage(struct ft_session *s, enum postern_smtp_stage stage,
             struct ft_result *out)
{
	struct wait w = { .done = 0, .out = out };

	memset(out, 0, sizeof(*out));
	if ((size_t)stage >= NSTAGES || hooks[stage] == NULL)
		return -1;
	s->payload.stage = stage;
	s->payload.txn = s->txn;
	s->payload.envelope = s->txn != NULL ? &s->env : NULL;
	live = &s->payload;
	(void)host->hook_run(hooks[stage], &s->payload, stage_done, &w);
	/* The handlers' own timeouts end a wait that never answers. */
	while (!w.done)
		loop_run_once(loop_current, 100);
	live = NULL;
	return 0;
}

/* ---- the module -------------------------------------------------------- */

static int
ft_smtp_init(const struct postern_host *h, postern_module_t *m)
{
	size_t i;

	host = h;
	self = m;
	for (i = 0; i < NSTAGES; i++)
		if ((hooks[i] = h->hook_define(m, hook_names[i])) == NULL)
			return -1;
	return h->service_publish(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                          POSTERN_SMTP_MINOR, &service);
}

const struct postern_module ft_smtp_module = {
	.magic = POSTERN_MODULE_MAGIC,
	.abi_major = POSTERN_ABI_MAJOR,
	.abi_minor = POSTERN_ABI_MINOR,
	.size = sizeof(struct postern_module),
	.name = "smtp",
	.version = "filter-test",
	.kind = POSTERN_KIND_PROTOCOL,
	.init = ft_smtp_init,
};
