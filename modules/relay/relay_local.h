/*
 * relay_local.h - queued recipients that are ours: a report (DSN) to a
 * local sender, or an address in a local domain that reached the queue
 * (an alias forward, a filter's addition).  They go to the local
 * mailboxes through the host's local_deliver, never to a next hop.
 */
#ifndef RELAY_LOCAL_H
#define RELAY_LOCAL_H

#include <stddef.h>

struct relay_dlv;
struct rq_msg;
struct relay_local;

/* At worker start: finds the auth service (none: nothing is local). */
void relay_local_start(void);

/* Resolves the pending recipients of q through the auth service: NULL
 * when there is none.  Job thread. */
struct relay_local *relay_local_resolve(const struct rq_msg *q);

/* 1 when recipient i of the message is delivered here. */
int relay_local_is(const struct relay_local *l, size_t i);

/* Delivers d's recipients (all local) and sets their results.  Job
 * thread; d->q's file is read, not changed. */
void relay_local_deliver(struct relay_dlv *d, struct relay_local *l);

void relay_local_free(struct relay_local *l);

#endif /* RELAY_LOCAL_H */
