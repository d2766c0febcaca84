/*
 * filter_sync.c - a synchronous SMTP filter: every handler answers at
 * once.  It shows a filter's whole life: a configuration schema, handlers
 * on three stages, per-transaction state kept from one stage to a later
 * one and dropped at smtp.reset, and changes to the message through the
 * "smtp" service.
 *
 * What it does:
 *	- refuses the recipients listed in `block_rcpts` (550 5.7.1), each
 *	  on its own: the others of the transaction go on; compared as
 *	  user@domain, case and +detail aside (host->address_split);
 *	- remembers whether the Subject holds `tag_word`, and at end of data
 *	  prefixes that Subject with `tag`;
 *	- adds "X-Filter-Sync: checked" to every message it sees whole.
 *
 * Configuration:
 *	filter_sync = {
 *	  block_rcpts = [ "spamtrap@example.org" ];
 *	  tag_word = "lottery";
 *	  tag = "[SPAM?]";
 *	};
 *
 * Build out of tree (see the Makefile beside it):
 *	cc -shared $(pkg-config --cflags --libs postern-sdk) \
 *	   -o filter_sync.so filter_sync.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <postern/postern.h>
#include <postern/smtp.h>

struct settings {
	struct postern_strlist block_rcpts;
	const char *tag_word;
	const char *tag;
};

static const struct postern_cfg_key keys[] = {
	{ .name = "block_rcpts", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct settings, block_rcpts),
	  .doc = "recipients refused with 550 5.7.1" },
	{ .name = "tag_word", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, tag_word), .def = "",
	  .doc = "a Subject holding this word gets the tag" },
	{ .name = "tag", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, tag), .def = "[SPAM?]",
	  .doc = "put before such a Subject" },
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static struct settings cfg;
static const struct postern_smtp_service *smtp;

/*
 * Per-transaction state.  Handlers get the session's id in every payload;
 * a worker runs many sessions at once, so state is looked up by it.  It
 * is made at MAIL and dropped at smtp.reset, which runs exactly once when
 * each transaction ends (message done, RSET, a new MAIL, the client
 * leaving).  A real filter would use a hash table; a list is enough here.
 */
struct txn_state {
	uint64_t session;
	int tag_it;              /* the Subject held tag_word */
	char *subject;           /* its value, as received */
	struct txn_state *next;
};

static struct txn_state *states;

static struct txn_state *
state_find(uint64_t session, int create)
{
	struct txn_state *t;

	for (t = states; t != NULL; t = t->next)
		if (t->session == session)
			return t;
	if (!create || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->session = session;
	t->next = states;
	states = t;
	return t;
}

static void
state_drop(uint64_t session)
{
	struct txn_state **pp, *t;

	for (pp = &states; (t = *pp) != NULL; pp = &t->next)
		if (t->session == session) {
			*pp = t->next;
			free(t->subject);
			free(t);
			return;
		}
}

/* ---- the handlers ---------------------------------------------------- */

/* "user@domain" of an address, without its +detail, lower-cased. */
static const char *
base_address(const char *address, postern_pool_t *pool)
{
	struct postern_address_parts a = { .size = sizeof(a) };

	if (host->address_split(address, "+", pool, &a) < 0)
		return address;
	return host->pool_printf(pool, "%s@%s", a.user, a.domain);
}

static void
on_rcpt(const struct postern_smtp_payload *p, struct postern_verdict *v)
{
	postern_pool_t *pool = smtp->txn_pool(p->txn);
	const char *rcpt = base_address(p->rcpt->address, pool);
	size_t i;

	for (i = 0; i < cfg.block_rcpts.count; i++)
		if (strcasecmp(rcpt, base_address(cfg.block_rcpts.items[i],
		                                  pool)) == 0) {
			v->kind = POSTERN_VERDICT_REJECT;
			v->code = 550;
			v->enhanced = "5.7.1";
			v->text = "recipient refused by policy";
			return;
		}
}

static void
on_header(const struct postern_smtp_payload *p)
{
	struct txn_state *t;

	if (strcasecmp(p->header_name, "Subject") != 0 ||
	    p->header_index != 1 || cfg.tag_word[0] == '\0' ||
	    (t = state_find(p->session->id, 1)) == NULL)
		return;
	free(t->subject);
	t->subject = strdup(p->header_value); /* the payload is not ours */
	t->tag_it = strcasestr(p->header_value, cfg.tag_word) != NULL;
}

static void
on_eod(const struct postern_smtp_payload *p)
{
	struct txn_state *t = state_find(p->session->id, 0);
	const char *text;
	char *tagged;
	size_t n;

	smtp->header_add(p->txn, "X-Filter-Sync", "checked", 0);
	if (t == NULL || !t->tag_it || t->subject == NULL)
		return;
	text = t->subject + strspn(t->subject, " \t");
	n = strlen(cfg.tag) + strlen(text) + 3;
	if ((tagged = malloc(n)) == NULL)
		return;
	snprintf(tagged, n, " %s %s", cfg.tag, text);
	smtp->header_change(p->txn, "Subject", 1, tagged);
	free(tagged);
	host->log(self, POSTERN_LOG_INFO, "filter_sync: session %llu: "
	          "Subject tagged", (unsigned long long)p->session->id);
}

/* One function for every stage: the payload says which it is.  `v`
 * comes zeroed with kind CONTINUE, so doing nothing lets mail through. */
static void
on_stage(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;

	(void)call;
	(void)arg;
	switch (p->stage) {
	case POSTERN_SMTP_RCPT:
		on_rcpt(p, v);
		break;
	case POSTERN_SMTP_HEADER:
		on_header(p);
		break;
	case POSTERN_SMTP_EOD:
		on_eod(p);
		break;
	case POSTERN_SMTP_RESET:
		state_drop(p->session->id);
		break;
	default:
		break;
	}
}

static int
filter_init(const struct postern_host *h, postern_module_t *m)
{
	static const char *const hooks[] = {
		POSTERN_SMTP_HOOK_RCPT, POSTERN_SMTP_HOOK_HEADER,
		POSTERN_SMTP_HOOK_EOD, POSTERN_SMTP_HOOK_RESET,
	};
	struct postern_hook_handler handler = {
		.size = sizeof(handler),
		.fn = on_stage,
	};
	size_t i;

	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), keys, &cfg) < 0)
		return -1;
	/* The service the SMTP module publishes; 1.1 has txn_pool. */
	smtp = h->service_lookup(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                         1);
	if (smtp == NULL)
		return -1; /* logged by the host */
	for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		handler.hook = hooks[i];
		if (h->hook_register(m, &handler) < 0)
			return -1;
	}
	return 0;
}

static void
filter_fini(postern_module_t *m)
{
	(void)m;
	while (states != NULL)
		state_drop(states->session);
}

static const char *const deps[] = { "smtp", NULL };

POSTERN_MODULE(.name = "filter_sync", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = filter_init, .fini = filter_fini);
