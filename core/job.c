/*
 * job.c - the worker's thread pool (see job.h).
 *
 * One mutex guards the queues, the completion list and every job's state.
 * The pool has lanes: each has its own queue and its own threads, so work
 * on one lane never waits behind another's (a login flood hashing
 * passwords on the auth lane does not delay a SELECT on the general one).
 * Threads take jobs from their lane's queue head; finished (or cancelled)
 * jobs go on the one completion list, and the first one to land there
 * wakes the loop, which then runs all the `done` callbacks in completion
 * order.
 */
#include "job.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "xalloc.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

struct job_lane;

struct postern_job {
	struct job_pool *pool;
	struct job_lane *lane;
	enum job_state state;
	int cancelled;
	postern_job_work_fn work;
	postern_job_done_fn done;
	void *arg;
	uint64_t queued_at; /* ms, loop_clock_ms */
	struct postern_job *next;
};

struct job_list {
	struct postern_job *head, *tail;
};

struct job_lane {
	struct job_pool *pool;
	pthread_cond_t ready;
	struct job_list queue;
	size_t queued;     /* jobs in queue, under the pool's lock */
	size_t max_queued; /* 0: unbounded */
	unsigned nthreads;
	pthread_t *threads;
};

struct job_pool {
	struct loop *loop;
	pthread_mutex_t lock;
	struct job_list finished;
	size_t pending; /* loop thread only */
	int exiting;
	struct job_lane lanes[JOB_LANES];
};

static void
list_push(struct job_list *l, struct postern_job *j)
{
	j->next = NULL;
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct postern_job *
list_pop(struct job_list *l)
{
	struct postern_job *j = l->head;

	if (j != NULL) {
		l->head = j->next;
		if (l->head == NULL)
			l->tail = NULL;
	}
	return j;
}

static void
list_unlink(struct job_list *l, struct postern_job *j)
{
	struct postern_job **pp, *prev = NULL;

	for (pp = &l->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if (*pp != j)
			continue;
		*pp = j->next;
		if (l->tail == j)
			l->tail = prev;
		return;
	}
}

/* Called with the lock held. */
static void
finish_locked(struct job_pool *p, struct postern_job *j)
{
	int was_empty = p->finished.head == NULL;

	j->state = JOB_FINISHED;
	list_push(&p->finished, j);
	if (was_empty)
		loop_wake(p->loop);
}

static postern_metric_t *jobs_run, *jobs_waited, *jobs_queued;

void
job_metrics_register(void)
{
	static const char *const lanes[] = { "general", "auth", NULL };

	jobs_run = metrics_register("core", "jobs", "blocking jobs started "
	                            "on the job threads, by lane",
	                            POSTERN_METRIC_COUNTER, "lane", lanes);
	jobs_waited = metrics_register("core", "job_wait_milliseconds",
	                               "time jobs waited in the queue for a "
	                               "thread, by lane",
	                               POSTERN_METRIC_COUNTER, "lane", lanes);
	jobs_queued = metrics_register("core", "job_queue", "jobs waiting "
	                               "for a thread now, by lane",
	                               POSTERN_METRIC_GAUGE, "lane", lanes);
}

/* Under the pool's lock: the gauge follows the queue it describes. */
static void
lane_count(struct job_pool *p, struct job_lane *lane)
{
	metrics_set(jobs_queued, (unsigned)(lane - p->lanes), lane->queued);
}

static void *
job_thread(void *arg)
{
	struct job_lane *lane = arg;
	struct job_pool *p = lane->pool;
	sigset_t all;

	/* Signals belong to the loop's signalfd, never to a pool thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct postern_job *j;

		while (lane->queue.head == NULL && !p->exiting)
			pthread_cond_wait(&lane->ready, &p->lock);
		if (lane->queue.head == NULL)
			break;
		j = list_pop(&lane->queue);
		lane->queued--;
		lane_count(p, lane);
		metrics_add(jobs_run, (unsigned)(lane - p->lanes), 1);
		metrics_add(jobs_waited, (unsigned)(lane - p->lanes),
		            loop_clock_ms() - j->queued_at);
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&p->lock);
		j->work(j->arg);
		pthread_mutex_lock(&p->lock);
		finish_locked(p, j);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The loop's wake function: run every finished job's done. */
static void
run_completions(void *arg)
{
	struct job_pool *p = arg;
	struct job_list done;
	struct postern_job *j;

	pthread_mutex_lock(&p->lock);
	done = p->finished;
	p->finished.head = p->finished.tail = NULL;
	pthread_mutex_unlock(&p->lock);
	while ((j = list_pop(&done)) != NULL) {
		p->pending--;
		j->done(j->arg, j->cancelled);
		free(j);
	}
}

/* Starts the lane's threads; the number started (0 on failure, logged). */
static unsigned
lane_start(struct job_pool *p, struct job_lane *lane, unsigned threads)
{
	unsigned i;
	int err;

	lane->threads = xcalloc(threads, sizeof(*lane->threads));
	for (i = 0; i < threads; i++) {
		err = pthread_create(&lane->threads[i], NULL, job_thread,
		                     lane);
		if (err != 0) {
			log_error("jobs: cannot start thread %u of %u (lane "
			          "%d): %s", i + 1, threads,
			          (int)(lane - p->lanes), strerror(err));
			break;
		}
		lane->nthreads++;
	}
	return lane->nthreads;
}

struct job_pool *
job_pool_create(struct loop *l, unsigned threads)
{
	struct job_pool *p = xcalloc(1, sizeof(*p));
	size_t i;

	p->loop = l;
	pthread_mutex_init(&p->lock, NULL);
	for (i = 0; i < JOB_LANES; i++) {
		p->lanes[i].pool = p;
		pthread_cond_init(&p->lanes[i].ready, NULL);
	}
	loop_set_wake(l, run_completions, p);
	if (lane_start(p, &p->lanes[JOB_LANE_GENERAL],
	               threads > 0 ? threads : 1) == 0) {
		job_pool_destroy(p);
		return NULL;
	}
	return p;
}

int
job_lane_start(struct job_pool *p, enum job_lane_id id, unsigned threads,
               size_t max_queued)
{
	struct job_lane *lane = &p->lanes[id];

	if (id == JOB_LANE_GENERAL || lane->nthreads > 0 || threads == 0)
		return -1;
	lane->max_queued = max_queued;
	return lane_start(p, lane, threads) > 0 ? 0 : -1;
}

postern_job_t *
job_submit_lane(struct job_pool *p, enum job_lane_id id,
                postern_job_work_fn work, postern_job_done_fn done,
                void *arg)
{
	struct job_lane *lane = &p->lanes[id];
	struct postern_job *j;

	pthread_mutex_lock(&p->lock);
	if (lane->nthreads == 0 ||
	    (lane->max_queued > 0 && lane->queued >= lane->max_queued)) {
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	j = xcalloc(1, sizeof(*j));
	j->pool = p;
	j->lane = lane;
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->state = JOB_QUEUED;
	j->queued_at = loop_clock_ms();
	list_push(&lane->queue, j);
	lane->queued++;
	lane_count(p, lane);
	pthread_cond_signal(&lane->ready);
	pthread_mutex_unlock(&p->lock);
	p->pending++;
	return j;
}

postern_job_t *
job_submit(struct job_pool *p, postern_job_work_fn work,
           postern_job_done_fn done, void *arg)
{
	/* The general lane has no bound: it cannot say no. */
	return job_submit_lane(p, JOB_LANE_GENERAL, work, done, arg);
}

void
job_cancel(postern_job_t *j)
{
	struct job_pool *p = j->pool;

	pthread_mutex_lock(&p->lock);
	if (j->state == JOB_QUEUED) {
		/* Its done still runs from the loop, never from here: the
		 * caller may be holding state done will free. */
		list_unlink(&j->lane->queue, j);
		j->lane->queued--;
		lane_count(p, j->lane);
		j->cancelled = 1;
		finish_locked(p, j);
	}
	pthread_mutex_unlock(&p->lock);
}

size_t
job_lane_queued(struct job_pool *p, enum job_lane_id id)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->lanes[id].queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

size_t
job_pending(struct job_pool *p)
{
	return p->pending;
}

void
job_pool_destroy(struct job_pool *p)
{
	struct postern_job *j;
	struct job_lane *lane;
	unsigned i, k;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (k = 0; k < JOB_LANES; k++) {
		lane = &p->lanes[k];
		while ((j = list_pop(&lane->queue)) != NULL) {
			j->cancelled = 1;
			j->state = JOB_FINISHED;
			list_push(&p->finished, j);
		}
		lane->queued = 0;
		pthread_cond_broadcast(&lane->ready);
	}
	p->exiting = 1;
	pthread_mutex_unlock(&p->lock);
	for (k = 0; k < JOB_LANES; k++) {
		lane = &p->lanes[k];
		for (i = 0; i < lane->nthreads; i++)
			pthread_join(lane->threads[i], NULL);
	}
	run_completions(p);
	loop_set_wake(p->loop, NULL, NULL);
	for (k = 0; k < JOB_LANES; k++) {
		pthread_cond_destroy(&p->lanes[k].ready);
		free(p->lanes[k].threads);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}
