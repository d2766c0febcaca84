/*
 * test_loop.c - the event loop: timers, deferred calls, fd watches,
 * signals and cross-thread wake-ups.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "unit.h"

static char order[64];
static size_t order_len;

static void
mark(char ch)
{
	if (order_len < sizeof(order) - 1)
		order[order_len++] = ch;
	order[order_len] = '\0';
}

static unsigned
timer_mark(void *arg)
{
	mark((char)(uintptr_t)arg);
	return 0;
}

static void
run_until(struct loop *l, int (*done)(void), unsigned max_ms)
{
	uint64_t end = loop_now_ms(l) + max_ms;

	while (!done() && loop_now_ms(l) < end)
		loop_run_once(l, 10);
}

static int
three_marks(void)
{
	return order_len >= 3;
}

static void
test_timers_fire_in_due_order(void)
{
	struct loop *l = loop_create();

	order_len = 0;
	loop_timer_add(l, 30, timer_mark, (void *)(uintptr_t)'c');
	loop_timer_add(l, 10, timer_mark, (void *)(uintptr_t)'a');
	loop_timer_add(l, 20, timer_mark, (void *)(uintptr_t)'b');
	run_until(l, three_marks, 2000);
	CU_ASSERT_STRING_EQUAL(order, "abc");
	loop_destroy(l);
}

static void
test_equal_timers_fire_in_creation_order(void)
{
	struct loop *l = loop_create();
	const char *s = "abcdefgh";

	order_len = 0;
	for (; *s; s++)
		loop_timer_add(l, 5, timer_mark, (void *)(uintptr_t)*s);
	while (order_len < 8)
		loop_run_once(l, 50);
	CU_ASSERT_STRING_EQUAL(order, "abcdefgh");
	loop_destroy(l);
}

static void
test_timer_cancel_and_reset(void)
{
	struct loop *l = loop_create();
	struct loop_timer *gone, *later;

	order_len = 0;
	gone = loop_timer_add(l, 5, timer_mark, (void *)(uintptr_t)'x');
	later = loop_timer_add(l, 5, timer_mark, (void *)(uintptr_t)'r');
	loop_timer_add(l, 20, timer_mark, (void *)(uintptr_t)'a');
	loop_timer_add(l, 40, timer_mark, (void *)(uintptr_t)'b');
	loop_timer_cancel(l, gone);
	loop_timer_reset(l, later, 30); /* now between a and b */
	run_until(l, three_marks, 2000);
	CU_ASSERT_STRING_EQUAL(order, "arb");
	loop_destroy(l);
}

static int repeats;

static unsigned
timer_repeat(void *arg)
{
	(void)arg;
	return ++repeats < 5 ? 1 : 0;
}

static int
five_repeats(void)
{
	return repeats >= 5;
}

static void
test_repeating_timer(void)
{
	struct loop *l = loop_create();

	repeats = 0;
	loop_timer_add(l, 1, timer_repeat, NULL);
	run_until(l, five_repeats, 2000);
	CU_ASSERT_EQUAL(repeats, 5);
	/* It returned 0 the fifth time: nothing fires any more. */
	loop_run_once(l, 20);
	CU_ASSERT_EQUAL(repeats, 5);
	loop_destroy(l);
}

static void
defer_mark(void *arg)
{
	mark((char)(uintptr_t)arg);
}

static void
defer_again(void *arg)
{
	mark('1');
	loop_defer(arg, defer_mark, (void *)(uintptr_t)'2');
}

static void
test_defer_is_fifo_and_not_reentrant(void)
{
	struct loop *l = loop_create();

	order_len = 0;
	loop_defer(l, defer_again, l);
	loop_defer(l, defer_mark, (void *)(uintptr_t)'b');
	CU_ASSERT_EQUAL(order_len, 0); /* nothing runs inside loop_defer */
	loop_run_once(l, 0);
	/* '2' was queued by a deferred call: it waits one iteration. */
	CU_ASSERT_STRING_EQUAL(order, "1b");
	loop_run_once(l, 0);
	CU_ASSERT_STRING_EQUAL(order, "1b2");
	loop_destroy(l);
}

struct pipe_state {
	int fds[2];
	int reads;
	struct loop_watch *w;
};

static void
on_pipe(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct pipe_state *ps = arg;
	char buf[16];

	(void)w;
	CU_ASSERT(events & LOOP_READ);
	if (read(fd, buf, sizeof(buf)) > 0)
		ps->reads++;
}

static void
test_fd_watch_reads_and_removal(void)
{
	struct loop *l = loop_create();
	struct pipe_state ps = { .reads = 0 };

	CU_ASSERT_EQUAL_FATAL(pipe(ps.fds), 0);
	ps.w = loop_watch_add(l, ps.fds[0], LOOP_READ, on_pipe, &ps);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ps.w);
	loop_run_once(l, 0);
	CU_ASSERT_EQUAL(ps.reads, 0);
	CU_ASSERT_EQUAL(write(ps.fds[1], "x", 1), 1);
	loop_run_once(l, 1000);
	CU_ASSERT_EQUAL(ps.reads, 1);
	loop_watch_remove(l, ps.w);
	CU_ASSERT_EQUAL(write(ps.fds[1], "y", 1), 1);
	loop_run_once(l, 50);
	CU_ASSERT_EQUAL(ps.reads, 1);
	close(ps.fds[0]);
	close(ps.fds[1]);
	loop_destroy(l);
}

/* Two pipes readable in the same iteration; the first callback removes
 * the second watch: the second callback must not run. */
struct pair {
	struct loop *l;
	struct loop_watch *w[2];
	int fired[2];
};

static void
on_pair(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct pair *p = arg;
	int me = w == p->w[0] ? 0 : 1;
	char buf[4];

	(void)events;
	if (read(fd, buf, sizeof(buf)) < 0)
		return;
	p->fired[me]++;
	loop_watch_remove(p->l, p->w[1 - me]);
}

static void
test_watch_removed_mid_iteration_is_skipped(void)
{
	struct pair p = { .l = loop_create() };
	int a[2], b[2];

	CU_ASSERT_EQUAL_FATAL(pipe(a), 0);
	CU_ASSERT_EQUAL_FATAL(pipe(b), 0);
	p.w[0] = loop_watch_add(p.l, a[0], LOOP_READ, on_pair, &p);
	p.w[1] = loop_watch_add(p.l, b[0], LOOP_READ, on_pair, &p);
	CU_ASSERT_EQUAL(write(a[1], "x", 1), 1);
	CU_ASSERT_EQUAL(write(b[1], "x", 1), 1);
	loop_run_once(p.l, 1000);
	CU_ASSERT_EQUAL(p.fired[0] + p.fired[1], 1);
	loop_watch_remove(p.l, p.fired[0] ? p.w[0] : p.w[1]);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	loop_destroy(p.l);
}

static int got_signal;

static void
on_usr1(int signo, void *arg)
{
	(void)arg;
	got_signal = signo;
}

static void
test_signal_through_signalfd(void)
{
	struct loop *l = loop_create();

	got_signal = 0;
	CU_ASSERT_EQUAL_FATAL(loop_signal(l, SIGUSR1, on_usr1, NULL), 0);
	kill(getpid(), SIGUSR1);
	loop_run_once(l, 1000);
	CU_ASSERT_EQUAL(got_signal, SIGUSR1);
	loop_destroy(l);
}

static int woken;

static void
on_wake(void *arg)
{
	(void)arg;
	woken++;
}

static void *
wake_from_thread(void *arg)
{
	usleep(20000);
	loop_wake(arg);
	return NULL;
}

static void
test_wake_from_another_thread(void)
{
	struct loop *l = loop_create();
	pthread_t t;

	woken = 0;
	loop_set_wake(l, on_wake, NULL);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, wake_from_thread, l), 0);
	loop_run_once(l, 2000); /* sleeps in epoll until the wake-up */
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(woken, 1);
	loop_destroy(l);
}

static int before_wait_calls;

static void
on_before_wait(void *arg)
{
	(void)arg;
	before_wait_calls++;
}

static void
test_before_wait_runs_each_iteration(void)
{
	struct loop *l = loop_create();

	before_wait_calls = 0;
	loop_set_before_wait(l, on_before_wait, NULL);
	loop_run_once(l, 0);
	loop_run_once(l, 0);
	CU_ASSERT_EQUAL(before_wait_calls, 2);
	loop_destroy(l);
}

static unsigned
stop_loop(void *arg)
{
	loop_stop(arg);
	return 0;
}

static void
test_run_until_stopped(void)
{
	struct loop *l = loop_create();

	loop_timer_add(l, 10, stop_loop, l);
	CU_ASSERT_EQUAL(loop_run(l), 0);
	loop_destroy(l);
}

static CU_TestInfo loop_tests[] = {
	{ "timers fire in due order", test_timers_fire_in_due_order },
	{ "equal timers fire in creation order",
	  test_equal_timers_fire_in_creation_order },
	{ "timer cancel and reset", test_timer_cancel_and_reset },
	{ "repeating timer", test_repeating_timer },
	{ "defer is FIFO and never re-entrant",
	  test_defer_is_fifo_and_not_reentrant },
	{ "fd watch reads, removal stops events",
	  test_fd_watch_reads_and_removal },
	{ "watch removed mid-iteration is skipped",
	  test_watch_removed_mid_iteration_is_skipped },
	{ "signal through signalfd", test_signal_through_signalfd },
	{ "wake from another thread", test_wake_from_another_thread },
	{ "before-wait runs each iteration",
	  test_before_wait_runs_each_iteration },
	{ "run until stopped", test_run_until_stopped },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "loop", NULL, NULL, NULL, NULL, loop_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
