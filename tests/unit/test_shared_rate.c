/*
 * test_shared_rate.c - rates every worker shares (core/shared_rate.c):
 * limits, the sliding window, and a child process's events counted in
 * its parent's table.  Times are given, not read from a clock.
 */
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include "shared_rate.h"
#include "unit.h"

#define MIN 60000u /* a one-minute window */

static void
test_limit(void)
{
	struct postern_rates *t = shared_rate_create(MIN);
	unsigned i, rate = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(shared_rate_hit(t, "a", 1, 1, 10, 1000, NULL),
		                0);
	CU_ASSERT_EQUAL(shared_rate_hit(t, "a", 1, 1, 10, 1000, &rate), -1);
	CU_ASSERT_EQUAL(rate, 10);
	/* Another key has its own count. */
	CU_ASSERT_EQUAL(shared_rate_hit(t, "b", 1, 1, 10, 1000, NULL), 0);
	/* A cost counts whole or not at all. */
	CU_ASSERT_EQUAL(shared_rate_hit(t, "b", 1, 10, 10, 1000, &rate), -1);
	CU_ASSERT_EQUAL(rate, 1);
	CU_ASSERT_EQUAL(shared_rate_hit(t, "b", 1, 9, 10, 1000, NULL), 0);
}

static void
test_window_slides(void)
{
	struct postern_rates *t = shared_rate_create(MIN);
	unsigned rate = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* 100 events at the end of window 0. */
	CU_ASSERT_EQUAL(shared_rate_hit(t, "k", 1, 100, 100, MIN - 1, NULL),
	                0);
	/* A quarter into window 1: three quarters of them still count. */
	CU_ASSERT_EQUAL(shared_rate_hit(t, "k", 1, 0, 1000, MIN + MIN / 4,
	                                &rate), 0);
	CU_ASSERT_EQUAL(rate, 75);
	CU_ASSERT_EQUAL(shared_rate_hit(t, "k", 1, 26, 100, MIN + MIN / 4,
	                                NULL), -1);
	CU_ASSERT_EQUAL(shared_rate_hit(t, "k", 1, 25, 100, MIN + MIN / 4,
	                                NULL), 0);
	/* Two windows later nothing is left. */
	CU_ASSERT_EQUAL(shared_rate_hit(t, "k", 1, 0, 1000, 3 * MIN + 1,
	                                &rate), 0);
	CU_ASSERT_EQUAL(rate, 0);
}

static void
test_shared_with_children(void)
{
	struct postern_rates *t = shared_rate_create(MIN);
	unsigned rate = 0;
	int i, status;
	pid_t pid;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < 3; i++) {
		if ((pid = fork()) == 0)
			_exit(shared_rate_hit(t, "ip", 2, 5, 100, 500, NULL) == 0
			          ? 0 : 1);
		CU_ASSERT_FATAL(pid > 0);
		CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CU_ASSERT_EQUAL(shared_rate_hit(t, "ip", 2, 0, 100, 500, &rate), 0);
	CU_ASSERT_EQUAL(rate, 15);
}

static CU_TestInfo rate_tests[] = {
	{ "a limit per key, costs whole", test_limit },
	{ "the window slides", test_window_slides },
	{ "children's events count in the parent", test_shared_with_children },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "shared_rate", NULL, NULL, NULL, NULL, rate_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
