/*
 * test_job.c - the thread pool: work off the loop, completion on it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "job.h"
#include "loop.h"
#include "unit.h"

struct job_probe {
	pthread_t worker_thread;
	pthread_t done_thread;
	int worked;
	int done;
	int cancelled;
	unsigned sleep_us;
};

static void
probe_work(void *arg)
{
	struct job_probe *p = arg;

	if (p->sleep_us)
		usleep(p->sleep_us);
	p->worker_thread = pthread_self();
	p->worked = 1;
}

static void
probe_done(void *arg, int cancelled)
{
	struct job_probe *p = arg;

	p->done_thread = pthread_self();
	p->done++;
	p->cancelled = cancelled;
}

static void
wait_pending_zero(struct loop *l, struct job_pool *jp)
{
	int i;

	for (i = 0; i < 500 && job_pending(jp) > 0; i++)
		loop_run_once(l, 10);
}

static void
test_work_on_thread_done_on_loop(void)
{
	struct loop *l = loop_create();
	struct job_pool *jp = job_pool_create(l, 2);
	struct job_probe p = { .worked = 0 };

	CU_ASSERT_PTR_NOT_NULL_FATAL(jp);
	CU_ASSERT_PTR_NOT_NULL(job_submit(jp, probe_work, probe_done, &p));
	CU_ASSERT_EQUAL(job_pending(jp), 1);
	wait_pending_zero(l, jp);
	CU_ASSERT_EQUAL(p.worked, 1);
	CU_ASSERT_EQUAL(p.done, 1);
	CU_ASSERT_EQUAL(p.cancelled, 0);
	CU_ASSERT(!pthread_equal(p.worker_thread, pthread_self()));
	CU_ASSERT(pthread_equal(p.done_thread, pthread_self()));
	job_pool_destroy(jp);
	loop_destroy(l);
}

static void
test_many_jobs_all_complete_once(void)
{
	struct loop *l = loop_create();
	struct job_pool *jp = job_pool_create(l, 4);
	struct job_probe p[200];
	int i, all_once = 1;

	for (i = 0; i < 200; i++) {
		p[i] = (struct job_probe){ .sleep_us = (unsigned)(i % 7) * 50 };
		job_submit(jp, probe_work, probe_done, &p[i]);
	}
	wait_pending_zero(l, jp);
	for (i = 0; i < 200; i++)
		all_once &= p[i].done == 1 && p[i].worked == 1;
	CU_ASSERT(all_once);
	job_pool_destroy(jp);
	loop_destroy(l);
}

static void
test_cancel_before_start(void)
{
	struct loop *l = loop_create();
	struct job_pool *jp = job_pool_create(l, 1);
	struct job_probe blocker = { .sleep_us = 100000 };
	struct job_probe victim = { .worked = 0 };
	postern_job_t *j;

	/* One thread busy with the blocker: the victim waits in the queue. */
	job_submit(jp, probe_work, probe_done, &blocker);
	usleep(10000);
	j = job_submit(jp, probe_work, probe_done, &victim);
	job_cancel(j);
	CU_ASSERT_EQUAL(victim.done, 0); /* done never runs inside cancel */
	wait_pending_zero(l, jp);
	CU_ASSERT_EQUAL(victim.worked, 0);
	CU_ASSERT_EQUAL(victim.done, 1);
	CU_ASSERT_EQUAL(victim.cancelled, 1);
	CU_ASSERT_EQUAL(blocker.done, 1);
	CU_ASSERT_EQUAL(blocker.cancelled, 0);
	job_pool_destroy(jp);
	loop_destroy(l);
}

static void
test_destroy_completes_everything(void)
{
	struct loop *l = loop_create();
	struct job_pool *jp = job_pool_create(l, 1);
	struct job_probe p[5];
	int i, done_once = 1, some_cancelled = 0;

	for (i = 0; i < 5; i++) {
		p[i] = (struct job_probe){ .sleep_us = 20000 };
		job_submit(jp, probe_work, probe_done, &p[i]);
	}
	job_pool_destroy(jp); /* without running the loop at all */
	for (i = 0; i < 5; i++) {
		done_once &= p[i].done == 1;
		some_cancelled |= p[i].cancelled;
		/* A job that ran is not reported cancelled, and back. */
		CU_ASSERT_EQUAL(p[i].worked, !p[i].cancelled);
	}
	CU_ASSERT(done_once);
	CU_ASSERT(some_cancelled);
	loop_destroy(l);
}

/* A job that blocks its thread until released. */
static int gate_closed, gate_entered;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;

static void
gate_work(void *arg)
{
	pthread_mutex_lock(&gate_lock);
	gate_entered = 1;
	while (gate_closed)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	probe_work(arg);
}

static void
gate_open(void)
{
	pthread_mutex_lock(&gate_lock);
	gate_closed = 0;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

/* The auth lane: its own thread, so general work goes on while it is
 * stuck; at most `max_queued` waiting, then NULL at once. */
static void
test_auth_lane_bounded_and_apart(void)
{
	struct loop *l = loop_create();
	struct job_pool *jp = job_pool_create(l, 1);
	struct job_probe a[4] = { { .worked = 0 } }, g = { .worked = 0 };
	struct job_probe late = { .worked = 0 };
	int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(jp);
	/* Not started: no lane to take the job. */
	CU_ASSERT_PTR_NULL(job_submit_lane(jp, JOB_LANE_AUTH, probe_work,
	                                   probe_done, &a[0]));
	CU_ASSERT_EQUAL(job_lane_start(jp, JOB_LANE_GENERAL, 1, 0), -1);
	CU_ASSERT_EQUAL_FATAL(job_lane_start(jp, JOB_LANE_AUTH, 1, 2), 0);
	CU_ASSERT_EQUAL(job_lane_start(jp, JOB_LANE_AUTH, 1, 2), -1);
	gate_closed = 1;
	CU_ASSERT_PTR_NOT_NULL(job_submit_lane(jp, JOB_LANE_AUTH, gate_work,
	                                       probe_done, &a[0]));
	/* Once the lane's thread holds it, two more may wait. */
	for (i = 0; i < 5000; i++) {
		pthread_mutex_lock(&gate_lock);
		if (gate_entered)
			i = 5000;
		pthread_mutex_unlock(&gate_lock);
		usleep(1000);
	}
	CU_ASSERT_PTR_NOT_NULL(job_submit_lane(jp, JOB_LANE_AUTH, probe_work,
	                                       probe_done, &a[1]));
	CU_ASSERT_PTR_NOT_NULL(job_submit_lane(jp, JOB_LANE_AUTH, probe_work,
	                                       probe_done, &a[2]));
	CU_ASSERT_PTR_NULL(job_submit_lane(jp, JOB_LANE_AUTH, probe_work,
	                                   probe_done, &a[3]));
	/* The general lane is not behind the stuck auth job. */
	CU_ASSERT_PTR_NOT_NULL(job_submit(jp, probe_work, probe_done, &g));
	for (i = 0; i < 500 && g.done == 0; i++)
		loop_run_once(l, 10);
	CU_ASSERT_EQUAL(g.done, 1);
	CU_ASSERT_EQUAL(a[0].done + a[1].done + a[2].done, 0);
	gate_open();
	wait_pending_zero(l, jp);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(a[i].done, 1);
	CU_ASSERT_EQUAL(a[3].done, 0);
	/* Room again once the queue drained. */
	CU_ASSERT_PTR_NOT_NULL(job_submit_lane(jp, JOB_LANE_AUTH, probe_work,
	                                       probe_done, &late));
	wait_pending_zero(l, jp);
	CU_ASSERT_EQUAL(late.done, 1);
	job_pool_destroy(jp);
	loop_destroy(l);
}

static CU_TestInfo job_tests[] = {
	{ "work on a thread, done on the loop",
	  test_work_on_thread_done_on_loop },
	{ "200 jobs all complete once", test_many_jobs_all_complete_once },
	{ "cancel before start", test_cancel_before_start },
	{ "destroy completes everything", test_destroy_completes_everything },
	{ "the auth lane is bounded and apart",
	  test_auth_lane_bounded_and_apart },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "jobs", NULL, NULL, NULL, NULL, job_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
