/*
 * hook.c - hook points, handler chains and their dispatch (see hook.h for
 * the rules callers rely on, postern/hook.h for what modules see).
 *
 * Handles.  The postern_hook_call_t pointers the core hands out are not
 * addresses: each is a slot index and a generation packed into a
 * uintptr_t.  A dispatch owns one (returned by hook_run) and every handler
 * invocation gets its own (passed to fn).  A handle dies when what it
 * names is over: the dispatch when done is called or it is cancelled, a
 * handler's handle when that handler's answer is in (returned, resumed or
 * timed out) or its cancel callback is due.  Looking up a dead handle
 * finds a different generation in the slot, so a late hook_resume or
 * hook_cancel is recognised and ignored without touching freed memory,
 * however late it comes.  Generations come from one global counter, so a
 * reused slot never brings an old handle back to life (until the counter
 * wraps, after 2^32 handles on 64-bit systems).
 *
 * Re-entrancy.  A dispatch is "busy" while a module callback of it runs
 * (a handler's fn, or its cancel callback on timeout).  hook_cancel of a
 * busy dispatch only marks it; whoever made the callback frees it when the
 * callback returns.  hook_resume from inside the handler's own fn records
 * the answer, which is then used as if fn had returned it.  done is always
 * called after the dispatch's handle died, so done may start new
 * dispatches and a stray hook_cancel from done is harmless.
 */
#include "hook.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "xalloc.h"

#define HOOK_DEFAULT_TIMEOUT_MS 30000

/* A handler needs at least everything up to fn; what lies after may be
 * missing in a module built against an older SDK. */
#define HANDLER_MIN_SIZE                                                \
	(offsetof(struct postern_hook_handler, fn) +                    \
	 sizeof(((struct postern_hook_handler *)0)->fn))

struct handler {
	struct postern_hook_handler h; /* copy; h.hook points at hook_name */
	char *hook_name;
	char *owner;   /* "module" or "module/label" */
	uint64_t seq; /* registration order: ties keep it */
	unsigned metric; /* its owner's label in the filter metrics */
};

struct handler_list {
	struct handler **v;
	size_t n, cap;
};

struct postern_hook {
	char *name;
	char *owner;
	struct handler_list handlers; /* by (priority, seq) */
};

enum slot_kind {
	SLOT_FREE = 0,
	SLOT_DISPATCH,
	SLOT_HANDLER,
};

struct slot {
	uintptr_t gen; /* 0 while free */
	enum slot_kind kind;
	struct dispatch *d;
	size_t next_free; /* index + 1 of the next free slot, 0: none */
};

struct dispatch {
	uintptr_t self;           /* the dispatch's handle */
	uintptr_t ticket;         /* the current handler's handle, or 0 */
	struct loop *loop;
	struct postern_hook *hook;
	size_t next;              /* index of the next handler to run */
	struct handler *current;  /* running or pending handler */
	struct loop_timer *timer; /* armed while `current` is pending */
	int waiting;              /* `current` answered PENDING */
	int busy;                 /* inside a module callback */
	int cancelled;            /* hook_cancel arrived while busy */
	int answered;             /* hook_resume came from inside fn */
	void *payload;
	void *call_data;          /* the pending handler's, for cancel */
	uint64_t call_start_us;   /* when `current` was called */
	postern_hook_done_fn done;
	void *arg;
	/* The latest answer; text and enhanced are our copies. */
	enum postern_verdict_kind kind;
	unsigned flags, code;
	char *text, *enhanced;
};

/* Outcomes of running one handler. */
enum step {
	STEP_ANSWERED, /* the dispatch's verdict is set; go on */
	STEP_PENDING,  /* wait for a resume or the timer */
	STEP_GONE,     /* the dispatch was cancelled and freed */
};

#define HANDLE_BITS (sizeof(uintptr_t) * CHAR_BIT / 2)
#define HANDLE_MASK (((uintptr_t)1 << HANDLE_BITS) - 1)

static struct {
	struct postern_hook **hooks;
	size_t nhooks, caphooks;
	struct handler_list orphans; /* handlers on hooks not defined yet */
	uint64_t seq;
	struct slot *slots;
	size_t nslots, capslots;
	size_t free_head; /* index + 1, 0: none */
	uintptr_t gen;    /* never reset: see "Handles" above */
} reg;

static int chain_run(struct dispatch *d);
static const char *verdict_name(enum postern_verdict_kind kind);

/* ---- metrics ------------------------------------------------------------ */

/* Verdicts by kind, and per handler's module: answers, the time from the
 * call to the answer, and timeouts.  Registered once every module has
 * registered its handlers; NULL (counting nothing) before. */
static struct {
	postern_metric_t *verdicts, *calls, *time_us, *timeouts;
} hm;

#define VERDICT_INVALID (POSTERN_VERDICT_QUARANTINE + 1)

static uint64_t
monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Gives `hd` its owner's place among `names` (n so far, at most
 * POSTERN_METRIC_LABELS_MAX; past that its module is not counted). */
static void
owner_label(struct handler *hd, const char **names, size_t *n)
{
	size_t k;

	for (k = 0; k < *n; k++)
		if (strcmp(names[k], hd->owner) == 0)
			break;
	if (k == *n && *n < POSTERN_METRIC_LABELS_MAX)
		names[(*n)++] = hd->owner;
	hd->metric = (unsigned)k;
}

void
hook_metrics_register(void)
{
	static const char *kinds[] = { "continue", "accept", "reject",
		"tempfail", "discard", "quarantine", "invalid", NULL };
	const char *names[POSTERN_METRIC_LABELS_MAX + 1];
	size_t h, i, n = 0;

	for (h = 0; h < reg.nhooks; h++)
		for (i = 0; i < reg.hooks[h]->handlers.n; i++)
			owner_label(reg.hooks[h]->handlers.v[i], names, &n);
	if (n == 0)
		return; /* no filter: no filter metrics */
	names[n] = NULL;
	hm.verdicts = metrics_register("core", "filter_verdicts", "answers "
	                               "of hook handlers (filters), by verdict",
	                               POSTERN_METRIC_COUNTER, "verdict", kinds);
	hm.calls = metrics_register("core", "filter_calls", "hook handler "
	                            "calls answered, by module",
	                            POSTERN_METRIC_COUNTER, "module", names);
	hm.time_us = metrics_register("core", "filter_microseconds", "time "
	                              "from a hook handler's call to its "
	                              "answer, by module",
	                              POSTERN_METRIC_COUNTER, "module", names);
	hm.timeouts = metrics_register("core", "filter_timeouts", "hook "
	                               "handlers that did not answer in "
	                               "time, by module",
	                               POSTERN_METRIC_COUNTER, "module", names);
}

/* One answer of d->current, `kind` (VERDICT_INVALID for a bad one). */
static void
answer_count(struct dispatch *d, const struct handler *hd, unsigned kind)
{
	metrics_add(hm.verdicts, kind, 1);
	metrics_add(hm.calls, hd->metric, 1);
	metrics_add(hm.time_us, hd->metric,
	            monotonic_us() - d->call_start_us);
}

/* ---- handles ---------------------------------------------------------- */

static uintptr_t
slot_alloc(enum slot_kind kind, struct dispatch *d)
{
	size_t i;

	if (reg.free_head != 0) {
		i = reg.free_head - 1;
		reg.free_head = reg.slots[i].next_free;
	} else {
		/* Index + 1 must fit in the low half of a handle. */
		if (reg.nslots + 1 >= HANDLE_MASK) {
			log_error("hook: too many calls in flight");
			abort();
		}
		if (reg.nslots == reg.capslots) {
			reg.capslots = reg.capslots ? reg.capslots * 2 : 64;
			reg.slots = xreallocarray(reg.slots, reg.capslots,
			                          sizeof(*reg.slots));
		}
		i = reg.nslots++;
	}
	reg.gen = (reg.gen + 1) & HANDLE_MASK;
	if (reg.gen == 0)
		reg.gen = 1;
	reg.slots[i].gen = reg.gen;
	reg.slots[i].kind = kind;
	reg.slots[i].d = d;
	reg.slots[i].next_free = 0;
	return (reg.gen << HANDLE_BITS) | (uintptr_t)(i + 1);
}

/* The live slot a handle names, or NULL for a dead or bogus handle. */
static struct slot *
slot_get(uintptr_t handle)
{
	size_t i = (size_t)(handle & HANDLE_MASK);
	uintptr_t gen = handle >> HANDLE_BITS;

	if (i == 0 || i > reg.nslots || gen == 0 || reg.slots[i - 1].gen != gen)
		return NULL;
	return &reg.slots[i - 1];
}

/* Kills a handle; a dead one (or 0) is left alone. */
static void
slot_free(uintptr_t handle)
{
	struct slot *s = slot_get(handle);

	if (s == NULL)
		return;
	s->gen = 0;
	s->kind = SLOT_FREE;
	s->d = NULL;
	s->next_free = reg.free_head;
	reg.free_head = (size_t)(s - reg.slots) + 1;
}

static postern_hook_call_t *
handle_ptr(uintptr_t handle)
{
	return (postern_hook_call_t *)handle;
}

/* ---- registry --------------------------------------------------------- */

static int
handler_before(const struct handler *a, const struct handler *b)
{
	return a->h.priority < b->h.priority ||
	       (a->h.priority == b->h.priority && a->seq < b->seq);
}

/* Inserting in order keeps every chain sorted at all times, so a dispatch
 * is right even before hook_check; a stable sort by priority is exactly
 * this order. */
static void
list_insert(struct handler_list *l, struct handler *hd)
{
	size_t i = l->n;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	while (i > 0 && handler_before(hd, l->v[i - 1])) {
		l->v[i] = l->v[i - 1];
		i--;
	}
	l->v[i] = hd;
	l->n++;
}

static void
handler_free(struct handler *hd)
{
	free(hd->hook_name);
	free(hd->owner);
	free(hd);
}

postern_hook_t *
hook_find(const char *name)
{
	size_t i;

	for (i = 0; i < reg.nhooks; i++)
		if (strcmp(reg.hooks[i]->name, name) == 0)
			return reg.hooks[i];
	return NULL;
}

/* Moves the handlers registered before `hook` existed onto it. */
static void
adopt_orphans(struct postern_hook *hook)
{
	size_t i, kept = 0;

	for (i = 0; i < reg.orphans.n; i++) {
		struct handler *hd = reg.orphans.v[i];

		if (strcmp(hd->hook_name, hook->name) == 0)
			list_insert(&hook->handlers, hd);
		else
			reg.orphans.v[kept++] = hd;
	}
	reg.orphans.n = kept;
}

postern_hook_t *
hook_define(const char *owner, const char *name)
{
	struct postern_hook *hook;

	if (name == NULL || *name == '\0') {
		log_error("module '%s' tried to define a hook without a name",
		          owner);
		return NULL;
	}
	if ((hook = hook_find(name)) != NULL) {
		log_error("module '%s' cannot define hook '%s': module '%s' "
		          "already defines it", owner, name, hook->owner);
		return NULL;
	}
	hook = xcalloc(1, sizeof(*hook));
	hook->name = xstrdup(name);
	hook->owner = xstrdup(owner);
	if (reg.nhooks == reg.caphooks) {
		reg.caphooks = reg.caphooks ? reg.caphooks * 2 : 16;
		reg.hooks = xreallocarray(reg.hooks, reg.caphooks,
		                          sizeof(*reg.hooks));
	}
	reg.hooks[reg.nhooks++] = hook;
	adopt_orphans(hook);
	return hook;
}

/* Checks a handler copied with defaults applied; -1 after logging. */
static int
handler_check(const char *owner, const struct postern_hook_handler *h)
{
	if (h->hook == NULL || *h->hook == '\0') {
		log_error("module '%s' registered a hook handler without a "
		          "hook name", owner);
		return -1;
	}
	if (h->fn == NULL) {
		log_error("module '%s' registered a handler on hook '%s' "
		          "without a function", owner, h->hook);
		return -1;
	}
	if ((unsigned)h->on_timeout > POSTERN_VERDICT_QUARANTINE) {
		log_error("module '%s' registered a handler on hook '%s' with "
		          "an invalid on_timeout verdict (%u)", owner, h->hook,
		          (unsigned)h->on_timeout);
		return -1;
	}
	return 0;
}

int
hook_register(const char *owner, const struct postern_hook_handler *h)
{
	struct postern_hook_handler copy;
	struct postern_hook *hook;
	struct handler *hd;

	if (h == NULL || h->size < HANDLER_MIN_SIZE) {
		log_error("module '%s' registered a hook handler of %zu bytes; "
		          "at least %zu are needed (is its size set?)", owner,
		          h != NULL ? h->size : (size_t)0,
		          (size_t)HANDLER_MIN_SIZE);
		return -1;
	}
	/* Read no further than the module's struct goes: the fields an
	 * older module does not know keep their zero defaults. */
	memset(&copy, 0, sizeof(copy));
	memcpy(&copy, h, h->size < sizeof(copy) ? h->size : sizeof(copy));
	copy.size = sizeof(copy);
	if (!copy.on_timeout_set)
		copy.on_timeout = POSTERN_VERDICT_TEMPFAIL;
	if (copy.timeout_ms == 0)
		copy.timeout_ms = HOOK_DEFAULT_TIMEOUT_MS;
	if (handler_check(owner, &copy) < 0)
		return -1;
	hd = xcalloc(1, sizeof(*hd));
	hd->h = copy;
	hd->hook_name = xstrdup(copy.hook);
	hd->h.hook = hd->hook_name;
	if (copy.label != NULL && copy.label[0] != '\0') {
		hd->owner = xmalloc(strlen(owner) + strlen(copy.label) + 2);
		sprintf(hd->owner, "%s/%s", owner, copy.label);
	} else
		hd->owner = xstrdup(owner);
	hd->h.label = NULL; /* the module's string is not kept */
	hd->seq = reg.seq++;
	hook = hook_find(hd->hook_name);
	list_insert(hook != NULL ? &hook->handlers : &reg.orphans, hd);
	return 0;
}

int
hook_check(void)
{
	size_t i;

	for (i = 0; i < reg.orphans.n; i++)
		log_error("module '%s' registered a handler on hook '%s', "
		          "which no loaded module defines",
		          reg.orphans.v[i]->owner, reg.orphans.v[i]->hook_name);
	return reg.orphans.n == 0 ? 0 : -1;
}

void
hook_print(FILE *f)
{
	const struct handler *hd;
	size_t i, j;

	if (reg.nhooks == 0)
		return;
	fprintf(f, "\n# Hook chains, in the order their handlers run "
	        "(module, priority, timeout, verdict on timeout):\n");
	for (i = 0; i < reg.nhooks; i++) {
		const struct postern_hook *hook = reg.hooks[i];

		fprintf(f, "#   %s (defined by %s):%s\n", hook->name,
		        hook->owner, hook->handlers.n == 0 ? " no handlers" : "");
		for (j = 0; j < hook->handlers.n; j++) {
			hd = hook->handlers.v[j];
			fprintf(f, "#     %zu. %s, priority %d, %u ms, %s\n",
			        j + 1, hd->owner, hd->h.priority,
			        hd->h.timeout_ms, verdict_name(hd->h.on_timeout));
		}
	}
}

int
hook_has_handlers(postern_hook_t *hook)
{
	return hook != NULL && hook->handlers.n > 0;
}

/* ---- dispatch --------------------------------------------------------- */

static const char *
verdict_name(enum postern_verdict_kind kind)
{
	static const char *const names[] = {
		[POSTERN_VERDICT_CONTINUE] = "continue",
		[POSTERN_VERDICT_ACCEPT] = "accept",
		[POSTERN_VERDICT_REJECT] = "reject",
		[POSTERN_VERDICT_TEMPFAIL] = "tempfail",
		[POSTERN_VERDICT_DISCARD] = "discard",
		[POSTERN_VERDICT_QUARANTINE] = "quarantine",
		[POSTERN_VERDICT_PENDING] = "pending",
	};

	if ((unsigned)kind > POSTERN_VERDICT_PENDING)
		return "invalid";
	return names[kind];
}

/* Stores a handler's answer, copying its strings: the handler's buffers
 * may be gone as soon as it returns or resumes.  A verdict a handler
 * cannot give (PENDING from a resume, an unknown kind) fails closed. */
static void
verdict_take(struct dispatch *d, const struct handler *hd,
             const struct postern_verdict *v)
{
	free(d->text);
	free(d->enhanced);
	d->text = d->enhanced = NULL;
	d->flags = d->code = 0;
	if (v == NULL || (unsigned)v->kind > POSTERN_VERDICT_QUARANTINE) {
		answer_count(d, hd, VERDICT_INVALID);
		log_error("hook '%s': module '%s' answered with an invalid "
		          "verdict (%s); treating it as tempfail",
		          d->hook->name, hd->owner,
		          v == NULL ? "none" : verdict_name(v->kind));
		d->kind = POSTERN_VERDICT_TEMPFAIL;
		return;
	}
	d->kind = v->kind;
	answer_count(d, hd, (unsigned)v->kind);
	if (log_enabled(POSTERN_LOG_DEBUG))
		log_debug("hook '%s': module '%s' (handler %zu of %zu): %s%s%s",
		          d->hook->name, hd->owner, d->next,
		          d->hook->handlers.n, verdict_name(v->kind),
		          v->kind != POSTERN_VERDICT_CONTINUE && v->text != NULL
		              ? ": " : "",
		          v->kind != POSTERN_VERDICT_CONTINUE && v->text != NULL
		              ? v->text : "");
	if (v->kind == POSTERN_VERDICT_CONTINUE)
		return;
	d->flags = v->flags;
	d->code = v->code;
	if (v->text != NULL)
		d->text = xstrdup(v->text);
	if (v->enhanced != NULL)
		d->enhanced = xstrdup(v->enhanced);
}

static void
dispatch_free(struct dispatch *d)
{
	if (d->timer != NULL)
		loop_timer_cancel(d->loop, d->timer);
	slot_free(d->ticket);
	slot_free(d->self);
	free(d->text);
	free(d->enhanced);
	free(d);
}

static void
chain_finish(struct dispatch *d)
{
	struct postern_verdict v = {
		.kind = d->kind,
		.flags = d->flags,
		.code = d->code,
		.text = d->text,
		.enhanced = d->enhanced,
	};

	/* The handle dies first: done may cancel it or dispatch again. */
	slot_free(d->self);
	d->self = 0;
	if (d->done != NULL)
		d->done(d->arg, &v);
	dispatch_free(d);
}

/* Drops the dispatch `d`, cancelled while `hd` was pending on `ticket`:
 * the handler's cancel callback runs once the dispatch is freed, so
 * nothing it does can reach it. */
/* Tells a pending handler its call is over without its answer. */
static void
handler_cancel(struct handler *hd, uintptr_t ticket, void *call_data)
{
	if (hd->h.cancel_call != NULL)
		hd->h.cancel_call(handle_ptr(ticket), hd->h.arg, call_data);
	else if (hd->h.cancel != NULL)
		hd->h.cancel(handle_ptr(ticket), hd->h.arg);
}

static void
dispatch_drop(struct dispatch *d, struct handler *hd, uintptr_t ticket)
{
	void *call_data = d->call_data;

	slot_free(ticket);
	if (d->ticket == ticket)
		d->ticket = 0;
	dispatch_free(d);
	if (hd != NULL)
		handler_cancel(hd, ticket, call_data);
}

/* The pending handler's time is up: its handle dies, its cancel callback
 * drops the work, and its on_timeout verdict stands in for the answer. */
static enum step
handler_timeout(struct dispatch *d)
{
	struct handler *hd = d->current;
	uintptr_t ticket = d->ticket;
	struct postern_verdict v = { .kind = hd->h.on_timeout };

	d->waiting = 0;
	d->ticket = 0;
	slot_free(ticket);
	metrics_add(hm.timeouts, hd->metric, 1);
	log_warning("hook '%s': module '%s' did not answer within %u ms; "
	            "%s", d->hook->name, hd->owner, hd->h.timeout_ms,
	            verdict_name(v.kind));
	if (hd->h.cancel != NULL || hd->h.cancel_call != NULL) {
		d->busy++;
		handler_cancel(hd, ticket, d->call_data);
		d->busy--;
		if (d->cancelled) {
			dispatch_free(d);
			return STEP_GONE;
		}
	}
	verdict_take(d, hd, &v);
	return STEP_ANSWERED;
}

/* The timer's argument is the dispatch's handle, not its address: after
 * hook_reset dropped the dispatch (without touching its loop, which may be
 * gone), a timer left armed finds nothing and does nothing. */
static unsigned
on_timer(void *arg)
{
	struct slot *s = slot_get((uintptr_t)arg);
	struct dispatch *d;

	if (s == NULL || s->kind != SLOT_DISPATCH)
		return 0;
	d = s->d;
	d->timer = NULL; /* the loop frees it when we return 0 */
	if (handler_timeout(d) == STEP_ANSWERED)
		chain_run(d);
	return 0;
}

static enum step
handler_wait(struct dispatch *d)
{
	d->waiting = 1;
	if (d->loop == NULL) {
		/* Nothing could ever fire the timeout. */
		log_error("hook '%s': module '%s' answered pending, but this "
		          "dispatch has no event loop", d->hook->name,
		          d->current->owner);
		return handler_timeout(d);
	}
	d->timer = loop_timer_add(d->loop, d->current->h.timeout_ms,
	                          on_timer, (void *)d->self);
	return STEP_PENDING;
}

static enum step
handler_call(struct dispatch *d, struct handler *hd)
{
	struct postern_verdict v;
	uintptr_t ticket;

	memset(&v, 0, sizeof(v));
	v.kind = POSTERN_VERDICT_CONTINUE;
	d->call_data = NULL;
	d->current = hd;
	d->answered = 0;
	d->ticket = ticket = slot_alloc(SLOT_HANDLER, d);
	d->call_start_us = monotonic_us();
	d->busy++;
	hd->h.fn(handle_ptr(ticket), d->payload, hd->h.arg, &v);
	d->busy--;
	if (d->answered) {
		/* Resumed from inside fn: that answer came first and is in
		 * place; whatever fn left in v is ignored. */
		if (d->cancelled) {
			dispatch_free(d);
			return STEP_GONE;
		}
		return STEP_ANSWERED;
	}
	if (v.kind == POSTERN_VERDICT_PENDING) {
		d->call_data = v.call_data;
		if (d->cancelled) {
			dispatch_drop(d, hd, ticket);
			return STEP_GONE;
		}
		return handler_wait(d);
	}
	slot_free(ticket);
	d->ticket = 0;
	if (d->cancelled) {
		dispatch_free(d);
		return STEP_GONE;
	}
	verdict_take(d, hd, &v);
	return STEP_ANSWERED;
}

/* Runs handlers from d->next until one ends the chain or goes pending.
 * Returns 1 while pending, 0 once the dispatch is over (and freed). */
static int
chain_run(struct dispatch *d)
{
	while (d->kind == POSTERN_VERDICT_CONTINUE &&
	       d->next < d->hook->handlers.n) {
		switch (handler_call(d, d->hook->handlers.v[d->next++])) {
		case STEP_PENDING:
			return 1;
		case STEP_GONE:
			return 0;
		case STEP_ANSWERED:
			break;
		}
	}
	chain_finish(d);
	return 0;
}

postern_hook_call_t *
hook_run(struct loop *l, postern_hook_t *hook, void *payload,
         postern_hook_done_fn done, void *arg)
{
	static struct postern_hook none;
	struct dispatch *d = xcalloc(1, sizeof(*d));

	d->loop = l;
	/* An undefined hook (its definition failed) has no handlers. */
	d->hook = hook != NULL ? hook : &none;
	d->payload = payload;
	d->done = done;
	d->arg = arg;
	d->kind = POSTERN_VERDICT_CONTINUE;
	d->self = slot_alloc(SLOT_DISPATCH, d);
	if (chain_run(d) == 0)
		return NULL;
	return handle_ptr(d->self);
}

void
hook_resume(postern_hook_call_t *call, const struct postern_verdict *v)
{
	struct slot *s = slot_get((uintptr_t)call);
	struct dispatch *d;

	if (s == NULL) {
		log_debug("hook: ignoring a resume of a call that is no "
		          "longer pending");
		return;
	}
	if (s->kind != SLOT_HANDLER) {
		log_error("hook: hook_resume was given a dispatch, not the "
		          "call a handler received; ignored");
		return;
	}
	d = s->d;
	slot_free(d->ticket);
	d->ticket = 0;
	verdict_take(d, d->current, v);
	if (!d->waiting) {
		/* From inside the handler's own fn: handler_call takes it
		 * as fn's answer once fn returns. */
		d->answered = 1;
		return;
	}
	d->waiting = 0;
	loop_timer_cancel(d->loop, d->timer);
	d->timer = NULL;
	chain_run(d);
}

void
hook_cancel(postern_hook_call_t *call)
{
	struct slot *s = slot_get((uintptr_t)call);
	struct dispatch *d;

	if (s == NULL)
		return; /* already over: done ran, or cancelled before */
	if (s->kind != SLOT_DISPATCH) {
		log_error("hook: hook_cancel was given a handler's call, not "
		          "a dispatch; ignored");
		return;
	}
	d = s->d;
	if (d->busy) {
		/* A callback of this dispatch is on the stack; it frees the
		 * dispatch when it returns. */
		d->cancelled = 1;
		return;
	}
	dispatch_drop(d, d->current, d->ticket);
}

void
hook_reset(void)
{
	size_t i, j;

	/* Dispatches still pending are dropped without calling into
	 * modules (they may be unloaded already) or their loop (it may be
	 * destroyed already): see on_timer. */
	for (i = 0; i < reg.nslots; i++) {
		struct dispatch *d = reg.slots[i].d;

		if (reg.slots[i].kind != SLOT_DISPATCH)
			continue;
		d->timer = NULL;
		dispatch_free(d);
	}
	for (i = 0; i < reg.nhooks; i++) {
		struct postern_hook *hook = reg.hooks[i];

		for (j = 0; j < hook->handlers.n; j++)
			handler_free(hook->handlers.v[j]);
		free(hook->handlers.v);
		free(hook->name);
		free(hook->owner);
		free(hook);
	}
	for (i = 0; i < reg.orphans.n; i++)
		handler_free(reg.orphans.v[i]);
	free(reg.orphans.v);
	free(reg.hooks);
	free(reg.slots);
	memset(&reg.orphans, 0, sizeof(reg.orphans));
	reg.hooks = NULL;
	reg.nhooks = reg.caphooks = 0;
	reg.slots = NULL;
	reg.nslots = reg.capslots = reg.free_head = 0;
	reg.seq = 0;
	/* reg.gen stays: handles from before the reset stay dead. */
}
