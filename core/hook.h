/*
 * hook.h - hook points and the dispatch of handler chains
 * (postern/hook.h describes the semantics modules see).
 *
 * The registry is process-global: hook points are defined and handlers
 * registered during module init in the master; workers inherit it.
 * Chains are kept sorted by priority (ties: registration order) as
 * handlers arrive, also those registered before their hook is defined.
 *
 * Call handles.  A postern_hook_call_t is an opaque, generation-checked
 * handle, never dereferenced: hook_run returns the dispatch's handle, and
 * each handler invocation receives a handle of its own.
 *  - The dispatch handle is live until done is called or hook_cancel.
 *  - A handler's handle is live while its answer is outstanding: until fn
 *    returns a verdict other than PENDING, or (after PENDING) until the
 *    first hook_resume, its timeout, or the dispatch's cancellation.  A
 *    handler's cancel callback receives its (already dead) handle, to
 *    find the work it must drop.
 *  - hook_resume and hook_cancel on a dead handle are ignored, safely, at
 *    any later time: a job that finishes after its handler timed out may
 *    still resume.  So only the first resume counts.
 *  - hook_resume from inside the handler's own fn (before it returns) is
 *    taken as the handler's answer, as if fn had returned it; whatever fn
 *    then leaves in *v is ignored.  The chain continues after fn returns,
 *    so done never runs inside fn.
 *  - hook_resume from anywhere else runs the rest of the chain, and the
 *    dispatcher's done, before it returns.  A handler must not touch the
 *    payload after resuming.
 *  - done runs after the dispatch handle died: it may start another
 *    dispatch, and a hook_cancel of the finished call is a no-op.
 *  - hook_cancel while a callback of that dispatch runs (say a handler's
 *    fn closes the connection) takes effect when the callback returns.
 * Verdict text and enhanced codes are copied when a handler returns or
 * resumes; the done callback's verdict is valid only during the call.
 */
#ifndef CORE_HOOK_H
#define CORE_HOOK_H

#include <stdio.h>

#include <postern/hook.h>

struct loop;

/* `owner` names the defining module in messages.  -1/NULL after logging
 * (duplicate definition). */
postern_hook_t *hook_define(const char *owner, const char *name);
/* Copies the handler; `size` is handler->size as the module built it
 * (fields past it take their defaults). */
int hook_register(const char *owner, const struct postern_hook_handler *h);
/* After all modules' init: every handler's hook must be defined.  Sorts
 * handlers by priority (stable).  -1 after logging each problem. */
int hook_check(void);
/* Every hook point and its handlers in running order, as comments (for
 * posternd -n). */
void hook_print(FILE *f);

/* postern_filter_verdicts_total{verdict}, and calls, time and timeouts
 * of hook handlers by module: after the modules' init (their handlers
 * are registered), before the workers fork. */
void hook_metrics_register(void);
int hook_has_handlers(postern_hook_t *hook);
postern_hook_t *hook_find(const char *name);

/* Dispatch on loop `l` (timers for pending handlers); see postern/hook.h
 * for the contract.  Returns NULL when done was already called (every
 * handler answered at once), else the pending dispatch's handle.  With
 * `l` NULL a PENDING answer times out at once (logged).  A NULL `hook`
 * has no handlers: done(CONTINUE) at once. */
postern_hook_call_t *hook_run(struct loop *l, postern_hook_t *hook,
                              void *payload, postern_hook_done_fn done,
                              void *arg);
void hook_cancel(postern_hook_call_t *call);
void hook_resume(postern_hook_call_t *call, const struct postern_verdict *v);

/* Frees every hook and handler (process exit, tests).  Dispatches still
 * pending are dropped silently: neither done nor any handler's cancel
 * callback runs, and their loop is not touched (it may be gone; a timer
 * left armed on it finds the dispatch gone and does nothing).  So it may
 * run before or after the modules are unloaded and the loop destroyed. */
void hook_reset(void);

#endif /* CORE_HOOK_H */
