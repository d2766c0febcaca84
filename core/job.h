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

/* Lanes: each has its own queue and threads.  The general lane is
 * unbounded; the auth lane (password verification, job_lane_start'ed by
 * the worker with `auth_threads` and `auth_queue`) is bounded so that a
 * login flood is refused at once rather than queued without end. */
enum job_lane_id {
	JOB_LANE_GENERAL = 0,
	JOB_LANE_AUTH,
};
#define JOB_LANES 2

/* postern_jobs_total, job_wait_milliseconds_total, job_queue, each by
 * lane; before the workers fork. */
void job_metrics_register(void);

/* Starts `threads` threads (at least 1) that complete jobs on loop `l`.
 * Block signals before calling: the threads inherit the mask. */
struct job_pool *job_pool_create(struct loop *l, unsigned threads);
/* Cancels queued jobs, waits for running ones, runs every pending done
 * (cancelled = 1 for those that never ran), joins the threads, frees. */
void job_pool_destroy(struct job_pool *p);

/* Starts a lane other than the general one with `threads` (> 0) threads
 * and at most `max_queued` jobs waiting (0: unbounded).  0, or -1 when the
 * lane runs already, is the general one, or no thread could start. */
int job_lane_start(struct job_pool *p, enum job_lane_id id, unsigned threads,
                   size_t max_queued);

/* Queues on the general lane; never NULL. */
postern_job_t *job_submit(struct job_pool *p, postern_job_work_fn work,
                          postern_job_done_fn done, void *arg);
/* Queues on lane `id`: NULL (nothing queued, nothing called back) when
 * the lane has not been started or already holds `max_queued` jobs that
 * have not started. */
postern_job_t *job_submit_lane(struct job_pool *p, enum job_lane_id id,
                               postern_job_work_fn work,
                               postern_job_done_fn done, void *arg);
void job_cancel(postern_job_t *job);
/* Jobs waiting (not started) on lane `id`. */
size_t job_lane_queued(struct job_pool *p, enum job_lane_id id);
/* Jobs submitted whose done has not run yet. */
size_t job_pending(struct job_pool *p);

#endif /* CORE_JOB_H */
