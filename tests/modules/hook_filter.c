/*
 * hook_filter.c - a filter as a module sees hooks.  It defines no hook and
 * registers two handlers on "test.hook", which the test program defines:
 *
 *   priority 10: answers at once with CONTINUE after counting the call in
 *                the payload, an `unsigned *`;
 *   priority 20: answers PENDING, then resumes from a timer
 *                (host->timer_add) with REJECT 550 5.7.1 and a text built
 *                in a stack buffer that is gone by the time the dispatcher
 *                sees the verdict, so the host must have copied it.
 *
 * If the dispatch is cancelled while the second handler waits, its cancel
 * callback stops the timer: nothing of the call is touched afterwards.
 */
#include <stdio.h>

#include <postern/postern.h>

#define HOOK_FILTER_DELAY_MS 5
#define HOOK_FILTER_MAX_PENDING 8

struct hook_filter_wait {
	postern_hook_call_t *call; /* NULL: slot free */
	postern_timer_t *timer;
	unsigned count;            /* the payload's count when we waited */
};

static const struct postern_host *hf_host;
static postern_module_t *hf_self;
static struct hook_filter_wait hf_wait[HOOK_FILTER_MAX_PENDING];

static void
hf_count(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	unsigned *count = payload;

	(*count)++;
	v->kind = POSTERN_VERDICT_CONTINUE;
}

static unsigned
hf_answer(void *arg)
{
	struct hook_filter_wait *w = arg;
	postern_hook_call_t *call = w->call;
	struct postern_verdict v = { 0 };
	char text[64];

	/* Free the slot first: the resume may run the rest of the chain and
	 * the dispatcher's done, which may start another dispatch. */
	w->call = NULL;
	w->timer = NULL;
	snprintf(text, sizeof(text), "rejected by hook_filter (count %u)",
	         w->count);
	v.kind = POSTERN_VERDICT_REJECT;
	v.code = 550;
	v.enhanced = "5.7.1";
	v.text = text;
	hf_host->hook_resume(call, &v);
	return 0;
}

static void
hf_later(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	struct hook_filter_wait *w = NULL;
	size_t i;

	for (i = 0; i < HOOK_FILTER_MAX_PENDING && w == NULL; i++)
		if (hf_wait[i].call == NULL)
			w = &hf_wait[i];
	if (w == NULL) {
		hf_host->log(hf_self, POSTERN_LOG_WARNING,
		             "hook_filter: too many pending calls");
		v->kind = POSTERN_VERDICT_TEMPFAIL;
		return;
	}
	w->call = call;
	w->count = *(unsigned *)payload;
	w->timer = hf_host->timer_add(HOOK_FILTER_DELAY_MS, hf_answer, w);
	v->kind = POSTERN_VERDICT_PENDING;
}

static void
hf_cancel(postern_hook_call_t *call, void *arg)
{
	size_t i;

	for (i = 0; i < HOOK_FILTER_MAX_PENDING; i++) {
		if (hf_wait[i].call != call)
			continue;
		hf_host->timer_cancel(hf_wait[i].timer);
		hf_wait[i].call = NULL;
		hf_wait[i].timer = NULL;
		hf_host->log(hf_self, POSTERN_LOG_INFO,
		             "hook_filter: cancelled");
	}
}

static int
hook_filter_init(const struct postern_host *host, postern_module_t *self)
{
	struct postern_hook_handler h = { .size = sizeof(h) };

	hf_host = host;
	hf_self = self;
	h.hook = "test.hook";
	h.priority = 10;
	h.fn = hf_count;
	if (host->hook_register(self, &h) != 0)
		return -1;
	h.priority = 20;
	h.timeout_ms = 2000;
	h.fn = hf_later;
	h.cancel = hf_cancel;
	if (host->hook_register(self, &h) != 0)
		return -1;
	host->log(self, POSTERN_LOG_INFO, "hook_filter: init");
	return 0;
}

POSTERN_MODULE(.name = "hook_filter", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .init = hook_filter_init);
