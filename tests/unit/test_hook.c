/*
 * test_hook.c - hook points and dispatch: order, verdicts, pending
 * handlers, timeouts, cancellation, late resumes and handler sizes.
 *
 * Handlers here are driven by a `struct th` saying what to answer; each
 * appends its name to `trace`, so a test checks which ran, in what order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "hook.h"
#include "loop.h"

struct th {
	const char *name;
	enum postern_verdict_kind kind; /* what fn answers */
	unsigned code;
	const char *text;
	unsigned timeout_ms;
	int on_timeout_set;
	enum postern_verdict_kind on_timeout;
	/* For PENDING: resume after resume_ms (0: never), `resumes` times. */
	unsigned resume_ms;
	int resumes;
	struct postern_verdict resume;
	/* What happened. */
	postern_hook_call_t *call;
	int calls, cancels;
};

static struct loop *loop;
static char trace[256];
static struct {
	int count;
	enum postern_verdict_kind kind;
	unsigned code, flags;
	char text[128], enhanced[32];
	const char *text_ptr;
} got;
static int in_fn;       /* a handler's fn is on the stack */
static int done_in_fn;  /* done was called from inside one */

static void
setup(void)
{
	loop = loop_create();
	loop_current = loop;
	trace[0] = '\0';
	memset(&got, 0, sizeof(got));
	in_fn = done_in_fn = 0;
}

static void
teardown(void)
{
	hook_reset();
	loop_destroy(loop);
	loop_current = NULL;
}

static void
on_done(void *arg, const struct postern_verdict *v)
{
	got.count++;
	got.kind = v->kind;
	got.code = v->code;
	got.flags = v->flags;
	got.text_ptr = v->text;
	snprintf(got.text, sizeof(got.text), "%s", v->text ? v->text : "");
	snprintf(got.enhanced, sizeof(got.enhanced), "%s",
	         v->enhanced ? v->enhanced : "");
	if (in_fn)
		done_in_fn = 1;
}

static unsigned
th_resume_timer(void *arg)
{
	struct th *t = arg;
	int i;

	for (i = 0; i < (t->resumes > 0 ? t->resumes : 1); i++)
		hook_resume(t->call, &t->resume);
	return 0;
}

static void
th_fn(postern_hook_call_t *call, void *payload, void *arg,
      struct postern_verdict *v)
{
	struct th *t = arg;

	strcat(trace, t->name);
	t->call = call;
	t->calls++;
	v->kind = t->kind;
	v->code = t->code;
	v->text = t->text;
	if (t->kind == POSTERN_VERDICT_PENDING && t->resume_ms > 0)
		loop_timer_add(loop, t->resume_ms, th_resume_timer, t);
}

static void
th_cancel(postern_hook_call_t *call, void *arg)
{
	struct th *t = arg;

	CU_ASSERT_PTR_EQUAL(call, t->call);
	t->cancels++;
}

static void
reg(const char *hook, int priority, struct th *t)
{
	struct postern_hook_handler h = {
		.size = sizeof(h),
		.hook = hook,
		.priority = priority,
		.timeout_ms = t->timeout_ms,
		.on_timeout = t->on_timeout,
		.on_timeout_set = t->on_timeout_set,
		.fn = th_fn,
		.cancel = th_cancel,
		.arg = t,
	};

	CU_ASSERT_EQUAL_FATAL(hook_register("test", &h), 0);
}

static void
run_until_done(unsigned max_ms)
{
	uint64_t end = loop_now_ms(loop) + max_ms;

	while (got.count == 0 && loop_now_ms(loop) < end)
		loop_run_once(loop, 10);
}

static void
run_for(unsigned ms)
{
	uint64_t end = loop_now_ms(loop) + ms;

	while (loop_now_ms(loop) < end)
		loop_run_once(loop, 5);
}

/* ---- order and synchronous verdicts ----------------------------------- */

static void
test_priority_order(void)
{
	struct th o = { .name = "o" }, a = { .name = "a" };
	struct th c = { .name = "c" }, d = { .name = "d" };
	postern_hook_t *hook;

	/* Registered before the hook exists: adopted in registration
	 * order, ahead of a later handler of the same priority. */
	reg("t.order", 10, &o);
	hook = hook_define("owner", "t.order");
	CU_ASSERT_PTR_NOT_NULL_FATAL(hook);
	reg("t.order", 20, &c);
	reg("t.order", 10, &a);
	reg("t.order", -5, &d);
	CU_ASSERT_EQUAL(hook_check(), 0);
	CU_ASSERT_TRUE(hook_has_handlers(hook));
	CU_ASSERT_PTR_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	CU_ASSERT_STRING_EQUAL(trace, "doac");
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_CONTINUE);
}

static void
test_accept_ends_chain(void)
{
	struct th a = { .name = "a" };
	struct th b = { .name = "b", .kind = POSTERN_VERDICT_ACCEPT };
	struct th c = { .name = "c", .kind = POSTERN_VERDICT_REJECT };
	postern_hook_t *hook = hook_define("owner", "t.accept");

	reg("t.accept", 1, &a);
	reg("t.accept", 2, &b);
	reg("t.accept", 3, &c);
	CU_ASSERT_PTR_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	CU_ASSERT_STRING_EQUAL(trace, "ab");
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_ACCEPT);
}

static void
test_reject_and_tempfail(void)
{
	struct th a = { .name = "a" };
	struct th r = { .name = "r", .kind = POSTERN_VERDICT_REJECT,
	                .code = 550, .text = "no such user" };
	struct th t = { .name = "t", .kind = POSTERN_VERDICT_TEMPFAIL,
	                .code = 451, .text = "try later" };
	struct th z = { .name = "z", .kind = POSTERN_VERDICT_ACCEPT };
	postern_hook_t *h1 = hook_define("owner", "t.reject");
	postern_hook_t *h2 = hook_define("owner", "t.tempfail");

	reg("t.reject", 0, &a);
	reg("t.reject", 1, &r);
	reg("t.reject", 2, &z);
	reg("t.tempfail", 0, &t);
	reg("t.tempfail", 1, &z);
	CU_ASSERT_PTR_NULL(hook_run(loop, h1, NULL, on_done, NULL));
	CU_ASSERT_STRING_EQUAL(trace, "ar");
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_REJECT);
	CU_ASSERT_EQUAL(got.code, 550);
	CU_ASSERT_STRING_EQUAL(got.text, "no such user");
	CU_ASSERT_PTR_NULL(hook_run(loop, h2, NULL, on_done, NULL));
	CU_ASSERT_STRING_EQUAL(trace, "art");
	CU_ASSERT_EQUAL(got.count, 2);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_TEMPFAIL);
	CU_ASSERT_EQUAL(got.code, 451);
	CU_ASSERT_STRING_EQUAL(got.text, "try later");
	CU_ASSERT_EQUAL(z.calls, 0);
}

static void
test_sync_returns_null_after_done(void)
{
	struct th a = { .name = "a" };
	postern_hook_t *hook = hook_define("owner", "t.sync");
	postern_hook_call_t *call;

	/* No handlers: done(CONTINUE) at once. */
	CU_ASSERT_FALSE(hook_has_handlers(hook));
	call = hook_run(loop, hook, NULL, on_done, NULL);
	CU_ASSERT_PTR_NULL(call);
	CU_ASSERT_EQUAL(got.count, 1);
	reg("t.sync", 0, &a);
	call = hook_run(loop, hook, NULL, on_done, NULL);
	CU_ASSERT_PTR_NULL(call);
	CU_ASSERT_EQUAL(got.count, 2);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_CONTINUE);
	/* Nothing left behind for the loop. */
	run_for(20);
	CU_ASSERT_EQUAL(got.count, 2);
}

/* ---- verdict copies --------------------------------------------------- */

static char sync_buf[64];

static void
fn_text_in_buffer(postern_hook_call_t *call, void *payload, void *arg,
                  struct postern_verdict *v)
{
	snprintf(sync_buf, sizeof(sync_buf), "spam score %d", 12);
	v->kind = POSTERN_VERDICT_REJECT;
	v->code = 554;
	v->enhanced = sync_buf + 32;
	snprintf(sync_buf + 32, 16, "5.7.1");
	v->text = sync_buf;
}

static void
fn_resume_then_clobber(postern_hook_call_t *call, void *payload, void *arg,
                       struct postern_verdict *v)
{
	char text[64], enh[16];
	struct postern_verdict r = { .kind = POSTERN_VERDICT_QUARANTINE,
	                             .code = 250, .text = text,
	                             .enhanced = enh };

	in_fn = 1;
	snprintf(text, sizeof(text), "held for review");
	snprintf(enh, sizeof(enh), "2.6.0");
	/* Answers from inside fn; the chain must not go on (nor done run)
	 * before fn returns. */
	hook_resume(call, &r);
	CU_ASSERT_EQUAL(got.count, 0);
	memset(text, 'X', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memset(enh, 0, sizeof(enh));
	v->kind = POSTERN_VERDICT_PENDING;
	in_fn = 0;
}

static void
test_verdict_text_copied(void)
{
	struct postern_hook_handler h = { .size = sizeof(h), .hook = "t.copy",
	                                  .fn = fn_text_in_buffer };
	postern_hook_t *hook = hook_define("owner", "t.copy");

	CU_ASSERT_EQUAL_FATAL(hook_register("test", &h), 0);
	CU_ASSERT_PTR_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_EQUAL(got.code, 554);
	CU_ASSERT_STRING_EQUAL(got.text, "spam score 12");
	CU_ASSERT_STRING_EQUAL(got.enhanced, "5.7.1");
	CU_ASSERT_PTR_NOT_EQUAL(got.text_ptr, sync_buf);
}

static void
test_resume_inside_fn(void)
{
	struct postern_hook_handler h = { .size = sizeof(h), .hook = "t.early",
	                                  .fn = fn_resume_then_clobber };
	struct th after = { .name = "b" };
	postern_hook_t *hook = hook_define("owner", "t.early");

	CU_ASSERT_EQUAL_FATAL(hook_register("test", &h), 0);
	reg("t.early", 5, &after);
	CU_ASSERT_PTR_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_FALSE(done_in_fn);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_QUARANTINE);
	CU_ASSERT_STRING_EQUAL(got.text, "held for review");
	CU_ASSERT_STRING_EQUAL(got.enhanced, "2.6.0");
	CU_ASSERT_EQUAL(after.calls, 0);
}

/* ---- pending, timeouts, cancellation ---------------------------------- */

static void
test_pending_resume_from_timer(void)
{
	struct th p = { .name = "p", .kind = POSTERN_VERDICT_PENDING,
	                .timeout_ms = 2000, .resume_ms = 10,
	                .resume = { .kind = POSTERN_VERDICT_CONTINUE } };
	struct th r = { .name = "r", .kind = POSTERN_VERDICT_REJECT,
	                .code = 550 };
	postern_hook_t *hook = hook_define("owner", "t.pending");
	postern_hook_call_t *call;

	reg("t.pending", 0, &p);
	reg("t.pending", 1, &r);
	call = hook_run(loop, hook, NULL, on_done, NULL);
	CU_ASSERT_PTR_NOT_NULL(call);
	CU_ASSERT_EQUAL(got.count, 0);
	CU_ASSERT_STRING_EQUAL(trace, "p");
	run_until_done(1000);
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_STRING_EQUAL(trace, "pr");
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_REJECT);
	CU_ASSERT_EQUAL(got.code, 550);
	CU_ASSERT_EQUAL(p.cancels, 0);
	/* The dispatch is over: cancelling it now is a harmless no-op. */
	hook_cancel(call);
	CU_ASSERT_EQUAL(p.cancels, 0);
}

static void
test_pending_resume_ends_chain(void)
{
	struct th p = { .name = "p", .kind = POSTERN_VERDICT_PENDING,
	                .resume_ms = 5, .resumes = 2,
	                .resume = { .kind = POSTERN_VERDICT_ACCEPT,
	                            .text = "ok" } };
	struct th r = { .name = "r", .kind = POSTERN_VERDICT_REJECT };
	postern_hook_t *hook = hook_define("owner", "t.pacc");

	reg("t.pacc", 0, &p);
	reg("t.pacc", 1, &r);
	CU_ASSERT_PTR_NOT_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	run_until_done(1000);
	/* Resumed twice in a row: only the first counts. */
	run_for(20);
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_ACCEPT);
	CU_ASSERT_STRING_EQUAL(got.text, "ok");
	CU_ASSERT_EQUAL(r.calls, 0);
}

static void
test_timeout_default_tempfail(void)
{
	/* Resumes at 100 ms, long after its 20 ms timeout: the late
	 * resume must be ignored (and touch nothing freed: ASan). */
	struct th p = { .name = "p", .kind = POSTERN_VERDICT_PENDING,
	                .timeout_ms = 20, .resume_ms = 100,
	                .resume = { .kind = POSTERN_VERDICT_ACCEPT } };
	struct th r = { .name = "r", .kind = POSTERN_VERDICT_ACCEPT };
	struct th q = { .name = "q", .kind = POSTERN_VERDICT_PENDING,
	                .timeout_ms = 5000 };
	postern_hook_t *hook = hook_define("owner", "t.timeout");
	postern_hook_t *other = hook_define("owner", "t.other");
	postern_hook_call_t *call;

	reg("t.timeout", 0, &p);
	reg("t.timeout", 1, &r);
	reg("t.other", 0, &q);
	CU_ASSERT_PTR_NOT_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	run_until_done(1000);
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_TEMPFAIL);
	CU_ASSERT_EQUAL(p.cancels, 1);
	CU_ASSERT_EQUAL(r.calls, 0);
	/* Another dispatch now waits on q, reusing what p's call used:
	 * p's late resume must not be taken as q's answer. */
	call = hook_run(loop, other, NULL, on_done, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(call);
	CU_ASSERT_EQUAL(q.calls, 1);
	run_for(150);
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_TEMPFAIL);
	/* And once more by hand, long after everything was freed. */
	hook_resume(p.call, &p.resume);
	CU_ASSERT_EQUAL(got.count, 1);
	/* q lives on this stack frame: end its dispatch here. */
	hook_cancel(call);
	CU_ASSERT_EQUAL(q.cancels, 1);
	CU_ASSERT_EQUAL(got.count, 1);
}

static void
test_timeout_configured_continue(void)
{
	struct th p = { .name = "p", .kind = POSTERN_VERDICT_PENDING,
	                .timeout_ms = 20, .on_timeout_set = 1,
	                .on_timeout = POSTERN_VERDICT_CONTINUE };
	struct th r = { .name = "r", .kind = POSTERN_VERDICT_DISCARD };
	postern_hook_t *hook = hook_define("owner", "t.failopen");

	reg("t.failopen", 0, &p);
	reg("t.failopen", 1, &r);
	CU_ASSERT_PTR_NOT_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	run_until_done(1000);
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_STRING_EQUAL(trace, "pr");
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_DISCARD);
	CU_ASSERT_EQUAL(p.cancels, 1);
}

static void
test_cancel(void)
{
	struct th p = { .name = "p", .kind = POSTERN_VERDICT_PENDING,
	                .timeout_ms = 30, .resume_ms = 60,
	                .resume = { .kind = POSTERN_VERDICT_REJECT } };
	struct th r = { .name = "r" };
	postern_hook_t *hook = hook_define("owner", "t.cancel");
	postern_hook_call_t *call;

	reg("t.cancel", 0, &p);
	reg("t.cancel", 1, &r);
	call = hook_run(loop, hook, NULL, on_done, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(call);
	CU_ASSERT_PTR_NOT_EQUAL(call, p.call);
	hook_cancel(call);
	CU_ASSERT_EQUAL(p.cancels, 1);
	CU_ASSERT_EQUAL(got.count, 0);
	/* Past the timeout and the (now late) resume: nothing happens. */
	run_for(100);
	CU_ASSERT_EQUAL(got.count, 0);
	CU_ASSERT_EQUAL(p.cancels, 1);
	CU_ASSERT_EQUAL(r.calls, 0);
	hook_cancel(call);
	CU_ASSERT_EQUAL(p.cancels, 1);
}

/* ---- ABI 1.6: call_data handed back to cancel_call ------------------ */

struct cd_handler {
	int calls;                   /* which call this is: its call_data */
	void *cancelled[4];          /* call_data given to cancel_call */
	int ncancelled, old_cancels;
};

static int cd_items[4];

static void
cd_fn(postern_hook_call_t *call, void *payload, void *arg,
      struct postern_verdict *v)
{
	struct cd_handler *h = arg;

	(void)call;
	(void)payload;
	/* The verdict comes zeroed, with kind CONTINUE. */
	CU_ASSERT_EQUAL(v->kind, POSTERN_VERDICT_CONTINUE);
	CU_ASSERT_PTR_NULL(v->call_data);
	CU_ASSERT_EQUAL(v->code, 0);
	CU_ASSERT_PTR_NULL(v->text);
	v->kind = POSTERN_VERDICT_PENDING;
	v->call_data = &cd_items[h->calls++ % 4];
}

static void
cd_cancel_call(postern_hook_call_t *call, void *arg, void *call_data)
{
	struct cd_handler *h = arg;

	(void)call;
	if (h->ncancelled < 4)
		h->cancelled[h->ncancelled++] = call_data;
}

static void
cd_cancel_old(postern_hook_call_t *call, void *arg)
{
	struct cd_handler *h = arg;

	(void)call;
	h->old_cancels++;
}

static void
test_cancel_call_data(void)
{
	struct cd_handler h = { 0 };
	struct postern_hook_handler reg_h = {
		.size = sizeof(reg_h),
		.hook = "t.cookie",
		.timeout_ms = 20,
		.fn = cd_fn,
		.cancel = cd_cancel_old,
		.cancel_call = cd_cancel_call,
		.arg = &h,
	};
	postern_hook_t *hook = hook_define("owner", "t.cookie");
	postern_hook_call_t *c1, *c2;

	CU_ASSERT_EQUAL_FATAL(hook_register("test", &reg_h), 0);
	c1 = hook_run(loop, hook, NULL, on_done, NULL);
	c2 = hook_run(loop, hook, NULL, on_done, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	/* Cancelled by the dispatcher: the second call's data. */
	hook_cancel(c2);
	CU_ASSERT_EQUAL(h.ncancelled, 1);
	CU_ASSERT_PTR_EQUAL(h.cancelled[0], &cd_items[1]);
	/* Timed out: the first call's data, and its on_timeout answer. */
	run_until_done(200);
	CU_ASSERT_EQUAL(h.ncancelled, 2);
	CU_ASSERT_PTR_EQUAL(h.cancelled[1], &cd_items[0]);
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_EQUAL(got.kind, POSTERN_VERDICT_TEMPFAIL);
	/* cancel_call replaces cancel. */
	CU_ASSERT_EQUAL(h.old_cancels, 0);
}

static postern_hook_call_t *cancel_me;

static void
fn_cancel_own_dispatch(postern_hook_call_t *call, void *payload, void *arg,
                       struct postern_verdict *v)
{
	strcat(trace, "x");
	hook_cancel(cancel_me);
	v->kind = POSTERN_VERDICT_PENDING;
}

static void
test_cancel_from_inside_handler(void)
{
	struct th p = { .name = "p", .kind = POSTERN_VERDICT_PENDING,
	                .resume_ms = 5,
	                .resume = { .kind = POSTERN_VERDICT_CONTINUE } };
	struct th r = { .name = "r" };
	struct postern_hook_handler h = { .size = sizeof(h), .hook = "t.self",
	                                  .priority = 1,
	                                  .fn = fn_cancel_own_dispatch };
	postern_hook_t *hook = hook_define("owner", "t.self");

	/* p goes pending; after its resume, x cancels the dispatch from
	 * inside its fn (as closing a connection would) and answers
	 * pending: no done, no leak, r never runs. */
	reg("t.self", 0, &p);
	CU_ASSERT_EQUAL_FATAL(hook_register("test", &h), 0);
	reg("t.self", 2, &r);
	cancel_me = hook_run(loop, hook, NULL, on_done, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cancel_me);
	run_for(50);
	CU_ASSERT_STRING_EQUAL(trace, "px");
	CU_ASSERT_EQUAL(got.count, 0);
	CU_ASSERT_EQUAL(r.calls, 0);
}

static void
test_reset_drops_pending(void)
{
	struct th p = { .name = "p", .kind = POSTERN_VERDICT_PENDING,
	                .timeout_ms = 20 };
	postern_hook_t *hook = hook_define("owner", "t.reset");
	postern_hook_call_t *call;

	reg("t.reset", 0, &p);
	call = hook_run(loop, hook, NULL, on_done, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(call);
	/* At exit the modules may be unloaded already: no callbacks. */
	hook_reset();
	CU_ASSERT_EQUAL(p.cancels, 0);
	CU_ASSERT_EQUAL(got.count, 0);
	/* The timeout timer is still on the loop; firing, it must find
	 * nothing (ASan: no use after free). */
	run_for(50);
	CU_ASSERT_EQUAL(p.cancels, 0);
	CU_ASSERT_EQUAL(got.count, 0);
	hook_cancel(call);
	hook_resume(p.call, &p.resume);
	CU_ASSERT_EQUAL(p.cancels, 0);
}

/* ---- registry ---------------------------------------------------------- */

static int check_rc;

static void
run_check(void *arg)
{
	check_rc = hook_check();
}

static void
test_undefined_hook_reported(void)
{
	struct th a = { .name = "a" };
	struct postern_hook_handler h = { .size = sizeof(h),
	                                  .hook = "smtp.rcpt", .fn = th_fn,
	                                  .arg = &a };
	char *log;

	CU_ASSERT_EQUAL_FATAL(hook_register("f", &h), 0);
	log = unit_capture_log(run_check, NULL);
	CU_ASSERT_EQUAL(check_rc, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log,
	        "module 'f' registered a handler on hook 'smtp.rcpt', which "
	        "no loaded module defines"));
	free(log);
	/* Once defined, the handler is attached and the check passes. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(hook_define("smtp", "smtp.rcpt"));
	log = unit_capture_log(run_check, NULL);
	CU_ASSERT_EQUAL(check_rc, 0);
	CU_ASSERT_STRING_EQUAL(log, "");
	free(log);
	CU_ASSERT_TRUE(hook_has_handlers(hook_find("smtp.rcpt")));
}

static void
define_twice(void *arg)
{
	postern_hook_t **second = arg;

	*second = hook_define("smtp2", "smtp.helo");
}

static void
test_duplicate_define(void)
{
	postern_hook_t *first = hook_define("smtp", "smtp.helo"), *second;
	char *log;

	CU_ASSERT_PTR_NOT_NULL(first);
	log = unit_capture_log(define_twice, &second);
	CU_ASSERT_PTR_NULL(second);
	CU_ASSERT_PTR_NOT_NULL(strstr(log,
	        "module 'smtp2' cannot define hook 'smtp.helo': module "
	        "'smtp' already defines it"));
	CU_ASSERT_PTR_EQUAL(hook_find("smtp.helo"), first);
	free(log);
}

/* A handler struct as a module built against an SDK before `cancel` and
 * `arg` existed would lay it out. */
struct old_handler {
	size_t size;
	const char *hook;
	int priority;
	unsigned timeout_ms;
	enum postern_verdict_kind on_timeout;
	int on_timeout_set;
	postern_hook_fn fn;
};

static void *old_arg_seen;
static int old_calls;

static void
fn_old(postern_hook_call_t *call, void *payload, void *arg,
       struct postern_verdict *v)
{
	old_arg_seen = arg;
	old_calls++;
	v->kind = POSTERN_VERDICT_PENDING;
}

static void
register_small(void *arg)
{
	struct postern_hook_handler *h = arg;

	check_rc = hook_register("tiny", h);
}

static void
test_small_handler_defaults(void)
{
	struct old_handler old = { .size = sizeof(old), .hook = "t.old",
	                           .priority = 0, .fn = fn_old };
	struct postern_hook_handler tiny = { .size = 8, .hook = "t.old",
	                                     .fn = fn_old };
	postern_hook_t *hook = hook_define("owner", "t.old");
	void *exact;
	char *log;

	/* Exactly the old size on the heap: reading past it is an ASan
	 * error, and the missing fields must come out as their defaults
	 * (arg NULL, cancel NULL, 30 s timeout). */
	exact = malloc(sizeof(old));
	memcpy(exact, &old, sizeof(old));
	old_arg_seen = &old;
	CU_ASSERT_EQUAL_FATAL(hook_register("old", exact), 0);
	free(exact);
	CU_ASSERT_PTR_NOT_NULL(hook_run(loop, hook, NULL, on_done, NULL));
	CU_ASSERT_EQUAL(old_calls, 1);
	CU_ASSERT_PTR_NULL(old_arg_seen);
	/* Not timed out after 50 ms: the default is 30 s, not 0. */
	run_for(50);
	CU_ASSERT_EQUAL(got.count, 0);
	/* teardown's hook_reset drops it. */

	/* A size that does not even reach fn is refused. */
	log = unit_capture_log(register_small, &tiny);
	CU_ASSERT_EQUAL(check_rc, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "module 'tiny' registered a hook "
	                                   "handler of 8 bytes"));
	free(log);
}

static CU_TestInfo hook_tests[] = {
	{ "priority order, stable, adopted before define",
	  test_priority_order },
	{ "accept ends the chain", test_accept_ends_chain },
	{ "reject and tempfail end the chain", test_reject_and_tempfail },
	{ "sync dispatch returns NULL after done",
	  test_sync_returns_null_after_done },
	{ "verdict text is copied", test_verdict_text_copied },
	{ "resume inside fn is its answer", test_resume_inside_fn },
	{ "pending, resumed from a timer", test_pending_resume_from_timer },
	{ "resume ends the chain; second resume ignored",
	  test_pending_resume_ends_chain },
	{ "timeout: tempfail by default, late resume ignored",
	  test_timeout_default_tempfail },
	{ "timeout: configured continue", test_timeout_configured_continue },
	{ "cancel runs the handler's cancel, not done", test_cancel },
	{ "cancel from inside a handler", test_cancel_from_inside_handler },
	{ "cancel_call gets the call's data (ABI 1.6)", test_cancel_call_data },
	{ "reset drops pending dispatches quietly",
	  test_reset_drops_pending },
	{ "undefined hook reported by hook_check",
	  test_undefined_hook_reported },
	{ "duplicate hook_define rejected", test_duplicate_define },
	{ "smaller handler struct gets defaults",
	  test_small_handler_defaults },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "hook", NULL, NULL, setup, teardown, hook_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
