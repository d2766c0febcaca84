/*
 * isolate.h - the worker's isolation process: a child of each worker
 * that runs work whose memory a client decides (a password hash:
 * argon2id holds 64 MiB while it runs), so that a login flood grows that
 * child, never the worker and the sessions it serves.
 *
 * Modules register functions at init (isolate_register, in the master,
 * before workers fork), so the child, forked from the worker, has them
 * at the same addresses.  A call sends its input over one of the
 * worker's channels (a SOCK_SEQPACKET pair per child thread) and blocks
 * the calling thread until the answer.  A child that dies or hangs is
 * killed and forked again at the next call; the calls in flight fail.
 */
#ifndef POSTERN_CORE_ISOLATE_H
#define POSTERN_CORE_ISOLATE_H

#include <stddef.h>
#include <sys/types.h>

#include <postern/host.h>

/* Init only (the master, before workers fork).  NULL when the table is
 * full or fn is NULL (logged). */
postern_isolated_t *isolate_register(const char *name,
                                     postern_isolated_fn fn);

/* In a worker, before it starts threads: forks the child with
 * `threads` threads (one per channel).  0, or -1 (logged); the worker
 * then runs calls in-process, as outside a worker. */
int isolate_start(unsigned threads);

/* Kills and reaps the child; calls after this run in-process. */
void isolate_stop(void);

/* Runs f on `in` in the child and copies its output (at most outcap
 * octets) to `out`.  The output's length, or -1: the function failed,
 * the child died or took longer than ISOLATE_TIMEOUT_MS, or the input
 * is over POSTERN_ISOLATE_MAX.  Before isolate_start (master,
 * posternctl, tests) f runs in the calling thread.  Any thread. */
ssize_t isolate_call(postern_isolated_t *f, const void *in, size_t inlen,
                     void *out, size_t outcap);

/* The child's pid, or 0 (for tests and logs). */
pid_t isolate_pid(void);

#endif /* POSTERN_CORE_ISOLATE_H */
