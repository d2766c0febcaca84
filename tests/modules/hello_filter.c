/*
 * hello_filter.c - a filter module for the example "hello" protocol: it
 * proves hooks end to end in a running daemon.  It answers "hello.line"
 * later (from a timer, as a filter calling out to a service would), and
 * rejects any text that contains "spam".
 */
#include <stdlib.h>
#include <string.h>

#include <postern/postern.h>

static const struct postern_host *host;
static postern_module_t *self;

struct pending {
	postern_hook_call_t *call;
	int spam;
	postern_timer_t *timer;
	struct pending *next;
};

/* Calls we still owe an answer, so a cancel can find its timer. */
static struct pending *pending_calls;

static void
forget(struct pending *p)
{
	struct pending **pp;

	for (pp = &pending_calls; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	free(p);
}

static unsigned
answer(void *arg)
{
	struct pending *p = arg;
	struct postern_verdict v = { .kind = POSTERN_VERDICT_CONTINUE };

	if (p->spam) {
		v.kind = POSTERN_VERDICT_REJECT;
		v.code = 550;
		v.text = "no spam here";
	}
	host->hook_resume(p->call, &v);
	forget(p);
	return 0;
}

static void
on_line(postern_hook_call_t *call, void *payload, void *arg,
        struct postern_verdict *v)
{
	struct pending *p = calloc(1, sizeof(*p));

	(void)arg;
	if (p == NULL) {
		v->kind = POSTERN_VERDICT_TEMPFAIL;
		return;
	}
	p->call = call;
	p->spam = strstr(payload, "spam") != NULL;
	p->timer = host->timer_add(10, answer, p);
	p->next = pending_calls;
	pending_calls = p;
	v->kind = POSTERN_VERDICT_PENDING;
}

/* The client went away while we were thinking: drop our timer. */
static void
on_cancel(postern_hook_call_t *call, void *arg)
{
	struct pending *p;

	(void)arg;
	for (p = pending_calls; p != NULL; p = p->next) {
		if (p->call == call) {
			host->timer_cancel(p->timer);
			forget(p);
			return;
		}
	}
}

static int
filter_init(const struct postern_host *h, postern_module_t *m)
{
	struct postern_hook_handler handler = {
		.size = sizeof(handler),
		.hook = "hello.line",
		.priority = 0,
		.timeout_ms = 5000,
		.fn = on_line,
		.cancel = on_cancel,
	};

	host = h;
	self = m;
	return host->hook_register(self, &handler);
}

static const char *const deps[] = { "hello", NULL };

POSTERN_MODULE(.name = "hello_filter", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = filter_init);
