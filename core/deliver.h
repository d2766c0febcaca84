/*
 * deliver.h - local delivery, written once for every module that puts
 * mail in local mailboxes: SMTP at the end of DATA, the relay for its
 * reports (DSNs) and for queued recipients that turn out to be local.
 * See host.h (local_deliver) for the contract.
 */
#ifndef CORE_DELIVER_H
#define CORE_DELIVER_H

#include <postern/host.h>

unsigned local_deliver(postern_module_t *m, const char *const *targets,
                       size_t ntargets, const struct postern_append *msg,
                       const char *mailbox, postern_pool_t *pool,
                       struct postern_local_result *res);

/* postern_local_deliveries_total{result}; before the workers fork. */
void deliver_metrics_register(void);

#endif /* CORE_DELIVER_H */
