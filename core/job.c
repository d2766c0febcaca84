/*
 * job.c - the worker's thread pool (see job.h).
 *
 * One mutex guards the queue, the completion list and every job's state.
 * Threads take jobs from the queue head; finished (or cancelled) jobs go on
 * the completion list, and the first one to land there wakes the loop,
 * which then runs all the `done` callbacks in completion order.
 */
#include "job.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "xalloc.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

struct postern_job {
	struct job_pool *pool;
	enum job_state state;
	int cancelled;
	postern_job_work_fn work;
	postern_job_done_fn done;
	void *arg;
	struct postern_job *next;
};

struct job_list {
	struct postern_job *head, *tail;
};

struct job_pool {
	struct loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t ready;
	struct job_list queue;
	struct job_list finished;
	size_t pending; /* loop thread only */
	int exiting;
	unsigned nthreads;
	pthread_t *threads;
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

static void *
job_thread(void *arg)
{
	struct job_pool *p = arg;
	sigset_t all;

	/* Signals belong to the loop's signalfd, never to a pool thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct postern_job *j;

		while (p->queue.head == NULL && !p->exiting)
			pthread_cond_wait(&p->ready, &p->lock);
		if (p->queue.head == NULL)
			break;
		j = list_pop(&p->queue);
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

struct job_pool *
job_pool_create(struct loop *l, unsigned threads)
{
	struct job_pool *p = xcalloc(1, sizeof(*p));
	unsigned i;
	int err;

	p->loop = l;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->ready, NULL);
	loop_set_wake(l, run_completions, p);
	if (threads == 0)
		threads = 1;
	p->threads = xcalloc(threads, sizeof(*p->threads));
	for (i = 0; i < threads; i++) {
		err = pthread_create(&p->threads[i], NULL, job_thread, p);
		if (err != 0) {
			log_error("jobs: cannot start thread %u of %u: %s",
			          i + 1, threads, strerror(err));
			break;
		}
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		job_pool_destroy(p);
		return NULL;
	}
	return p;
}

postern_job_t *
job_submit(struct job_pool *p, postern_job_work_fn work,
           postern_job_done_fn done, void *arg)
{
	struct postern_job *j = xcalloc(1, sizeof(*j));

	j->pool = p;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->lock);
	j->state = JOB_QUEUED;
	list_push(&p->queue, j);
	pthread_cond_signal(&p->ready);
	pthread_mutex_unlock(&p->lock);
	p->pending++;
	return j;
}

void
job_cancel(postern_job_t *j)
{
	struct job_pool *p = j->pool;

	pthread_mutex_lock(&p->lock);
	if (j->state == JOB_QUEUED) {
		/* Its done still runs from the loop, never from here: the
		 * caller may be holding state done will free. */
		list_unlink(&p->queue, j);
		j->cancelled = 1;
		finish_locked(p, j);
	}
	pthread_mutex_unlock(&p->lock);
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
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	while ((j = list_pop(&p->queue)) != NULL) {
		j->cancelled = 1;
		j->state = JOB_FINISHED;
		list_push(&p->finished, j);
	}
	p->exiting = 1;
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	run_completions(p);
	loop_set_wake(p->loop, NULL, NULL);
	pthread_cond_destroy(&p->ready);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
