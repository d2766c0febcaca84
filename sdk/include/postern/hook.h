/*
 * postern/hook.h - hook points, handlers and verdicts.
 *
 * A hook point is a named place in a module's processing where other
 * modules may look at an object and decide what happens next: the SMTP
 * module defines "smtp.connect", "smtp.rcpt", ... and filter modules
 * register handlers on them.  The module that defines a hook documents the
 * payload type its handlers receive (in its own SDK header).
 *
 * Dispatch runs the handlers in ascending priority (ties: registration
 * order).  Each handler answers at once with a verdict, or with
 * POSTERN_VERDICT_PENDING and later calls host->hook_resume() from the
 * event loop (typically from a job's completion).  Only the first resume of
 * a call counts; later ones are ignored.  A handler that does not answer
 * within its timeout gets its `on_timeout` verdict (TEMPFAIL by default).
 *
 * CONTINUE moves to the next handler; ACCEPT ends this dispatch with
 * success, skipping the remaining handlers of this hook only; every other
 * verdict ends the dispatch with that verdict.  When all handlers
 * continue, the dispatch's result is CONTINUE.
 *
 * A pending handler's `cancel` (or, ABI 1.6, `cancel_call`) callback
 * runs when the dispatching module cancels the call (the client left) and
 * when the handler's timeout strikes, so it can drop its work; its later
 * resume is ignored.  `cancel_call` also gets the `call_data` the handler
 * set in its PENDING verdict, so a module needs no table of its calls in
 * flight.
 *
 * The verdict a handler is given is zeroed with kind CONTINUE: a handler
 * that sets nothing lets the mail through.
 */
#ifndef POSTERN_HOOK_H
#define POSTERN_HOOK_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

enum postern_verdict_kind {
	POSTERN_VERDICT_CONTINUE = 0,
	POSTERN_VERDICT_ACCEPT,
	POSTERN_VERDICT_REJECT,     /* permanent failure (5xx) */
	POSTERN_VERDICT_TEMPFAIL,   /* temporary failure (4xx) */
	POSTERN_VERDICT_DISCARD,    /* accept and drop silently */
	POSTERN_VERDICT_QUARANTINE, /* accept into quarantine */
	POSTERN_VERDICT_PENDING,    /* a handler's answer: resume later */
};

/* Verdict flag: close the client connection after replying. */
#define POSTERN_VERDICT_DISCONNECT 0x1u

struct postern_verdict {
	enum postern_verdict_kind kind;
	unsigned flags;         /* POSTERN_VERDICT_DISCONNECT */
	unsigned code;          /* protocol reply code (e.g. 550), 0: default */
	const char *enhanced;   /* enhanced status ("5.7.1") or NULL */
	const char *text;       /* reply text or NULL; copied by the host
	                           when the handler returns or resumes */
	/* ABI 1.6: with PENDING, handed back to the handler's cancel_call.
	 * Read by the host only from the verdict a handler returns (not
	 * from hook_resume's). */
	void *call_data;
};

/* A handler.  `payload` is the hook's object, `arg` the registration's
 * arg.  Fill *v and return; set v->kind = POSTERN_VERDICT_PENDING to answer
 * later through hook_resume(call, ...).  Runs on the event loop. */
typedef void (*postern_hook_fn)(postern_hook_call_t *call, void *payload,
                                void *arg, struct postern_verdict *v);

struct postern_hook_handler {
	size_t size;            /* sizeof(struct postern_hook_handler) */
	const char *hook;       /* hook point name, e.g. "smtp.rcpt" */
	int priority;           /* lower runs first; 0 is neutral */
	unsigned timeout_ms;    /* for PENDING answers; 0: 30 seconds */
	/* Verdict when the handler times out; CONTINUE lets mail through
	 * (fail open), the default TEMPFAIL holds it (fail closed). */
	enum postern_verdict_kind on_timeout;
	int on_timeout_set;     /* 0: use TEMPFAIL */
	postern_hook_fn fn;
	/* Called if the call is cancelled while this handler is pending.
	 * May be NULL. */
	void (*cancel)(postern_hook_call_t *call, void *arg);
	void *arg;              /* owned by the registering module */
	/* ABI 1.6: called instead of `cancel` when set, with the call_data
	 * of the handler's PENDING verdict.  May be NULL. */
	void (*cancel_call)(postern_hook_call_t *call, void *arg,
	                    void *call_data);
	/* ABI 1.6: what this handler is, when a module registers several
	 * on one hook (filter_milter: the milter's name); shown after the
	 * module's name by posternd -n and in debug logs.  Copied.  May be
	 * NULL. */
	const char *label;
};

/* Called once when a dispatch ends (never called for a cancelled call).
 * `v` is valid only during the call. */
typedef void (*postern_hook_done_fn)(void *arg,
                                     const struct postern_verdict *v);

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_HOOK_H */
