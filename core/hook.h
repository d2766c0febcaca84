/*
 * hook.h - hook points and the dispatch of handler chains
 * (postern/hook.h describes the semantics modules see).
 *
 * The registry is process-global: hook points are defined and handlers
 * registered during module init in the master; workers inherit it.
 */
#ifndef CORE_HOOK_H
#define CORE_HOOK_H

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
int hook_has_handlers(postern_hook_t *hook);
postern_hook_t *hook_find(const char *name);

/* Dispatch on loop `l` (timers for pending handlers); see postern/hook.h
 * for the contract. */
postern_hook_call_t *hook_run(struct loop *l, postern_hook_t *hook,
                              void *payload, postern_hook_done_fn done,
                              void *arg);
void hook_cancel(postern_hook_call_t *call);
void hook_resume(postern_hook_call_t *call, const struct postern_verdict *v);

/* Frees every hook and handler (process exit, tests). */
void hook_reset(void);

#endif /* CORE_HOOK_H */
