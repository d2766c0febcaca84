/*
 * job.h - the worker's thread pool for blocking work.
 *
 * A job's `work` runs on a pool thread; its `done` runs afterwards on the
 * loop thread, exactly once.  Completions are handed back through the
 * loop's wake-up eventfd, so the loop never blocks waiting for a thread.
 */
#ifndef CORE_JOB_H
#define CORE_JOB_H

#include <postern/host.h>

struct loop;
struct job_pool;

/* Starts `threads` threads (at least 1) that complete jobs on loop `l`.
 * Block signals before calling: the threads inherit the mask. */
struct job_pool *job_pool_create(struct loop *l, unsigned threads);
/* Cancels queued jobs, waits for running ones, runs every pending done
 * (cancelled = 1 for those that never ran), joins the threads, frees. */
void job_pool_destroy(struct job_pool *p);

postern_job_t *job_submit(struct job_pool *p, postern_job_work_fn work,
                          postern_job_done_fn done, void *arg);
void job_cancel(postern_job_t *job);
/* Jobs submitted whose done has not run yet. */
size_t job_pending(struct job_pool *p);

#endif /* CORE_JOB_H */
