/*
 * test_isolate.c - the worker's isolation process (core/isolate.c):
 * calls run in another process, several at once, a child that dies is
 * replaced, limits hold, and without a child calls run in place.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "isolate.h"
#include "unit.h"

static postern_isolated_t *echo_pid, *fails, *slow;

/* Writes its process id, then its input reversed. */
static ssize_t
echo_pid_fn(const void *in, size_t inlen, void *out, size_t outcap)
{
	pid_t pid = getpid();
	const char *p = in;
	char *o = out;
	size_t i;

	if (outcap < sizeof(pid) + inlen)
		return -1;
	memcpy(o, &pid, sizeof(pid));
	for (i = 0; i < inlen; i++)
		o[sizeof(pid) + i] = p[inlen - 1 - i];
	return (ssize_t)(sizeof(pid) + inlen);
}

static ssize_t
fails_fn(const void *in, size_t inlen, void *out, size_t outcap)
{
	(void)in;
	(void)inlen;
	(void)out;
	(void)outcap;
	return -1;
}

/* Holds the call 500 ms and answers how many calls the child was
 * running at most meanwhile: 2 when two channels serve at once.  (The
 * counter lives in the child, shared by its threads.) */
static ssize_t
slow_fn(const void *in, size_t inlen, void *out, size_t outcap)
{
	static int running, most;
	int now;

	(void)in;
	(void)inlen;
	(void)outcap;
	now = __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
	if (now > __atomic_load_n(&most, __ATOMIC_SEQ_CST))
		__atomic_store_n(&most, now, __ATOMIC_SEQ_CST);
	usleep(500000);
	*(char *)out = (char)__atomic_load_n(&most, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&running, 1, __ATOMIC_SEQ_CST);
	return 1;
}

static pid_t
call_pid(const char *text, char *back)
{
	char out[64];
	pid_t pid;
	ssize_t n = isolate_call(echo_pid, text, strlen(text), out,
	                         sizeof(out));

	CU_ASSERT_EQUAL_FATAL(n, (ssize_t)(sizeof(pid) + strlen(text)));
	memcpy(&pid, out, sizeof(pid));
	memcpy(back, out + sizeof(pid), strlen(text));
	back[strlen(text)] = '\0';
	return pid;
}

static void
test_without_child_runs_in_place(void)
{
	char back[16];

	CU_ASSERT_EQUAL(isolate_pid(), 0);
	CU_ASSERT_EQUAL(call_pid("abc", back), getpid());
	CU_ASSERT_STRING_EQUAL(back, "cba");
}

static void
test_calls_run_in_the_child(void)
{
	char back[16], out[4];
	pid_t child;

	CU_ASSERT_EQUAL_FATAL(isolate_start(2), 0);
	child = isolate_pid();
	CU_ASSERT(child > 0 && child != getpid());
	CU_ASSERT_EQUAL(call_pid("hello", back), child);
	CU_ASSERT_STRING_EQUAL(back, "olleh");
	CU_ASSERT_EQUAL(isolate_call(fails, "x", 1, out, sizeof(out)), -1);
	/* Output that does not fit is a failure, not a cut answer. */
	CU_ASSERT_EQUAL(isolate_call(echo_pid, "x", 1, out, 2), -1);
	CU_ASSERT_EQUAL(call_pid("again", back), child);
}

static void
test_input_over_the_limit_fails(void)
{
	char *big = calloc(1, POSTERN_ISOLATE_MAX + 1), out[8];

	CU_ASSERT_EQUAL(isolate_call(echo_pid, big, POSTERN_ISOLATE_MAX + 1,
	                             out, sizeof(out)), -1);
	free(big);
}

struct slow_result {
	ssize_t rc;
	char most;
};

static void *
slow_call(void *arg)
{
	struct slow_result *r = arg;

	r->rc = isolate_call(slow, "", 0, &r->most, 1);
	return NULL;
}

static void
test_two_calls_at_once(void)
{
	struct slow_result res[2];
	pthread_t t[2];
	int i;

	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, slow_call, &res[i]);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CU_ASSERT_EQUAL(res[0].rc, 1);
	CU_ASSERT_EQUAL(res[1].rc, 1);
	/* The later of the two saw both running: not one after the other. */
	CU_ASSERT(res[0].most == 2 || res[1].most == 2);
}

static void
test_a_dead_child_is_replaced(void)
{
	pid_t old = isolate_pid(), now;
	char back[16];

	CU_ASSERT_FATAL(old > 0);
	kill(old, SIGKILL);
	usleep(50000);
	/* The call that finds it dead is tried again with a new child. */
	now = call_pid("xyz", back);
	CU_ASSERT_STRING_EQUAL(back, "zyx");
	CU_ASSERT(now != old && now != getpid());
	CU_ASSERT_EQUAL(isolate_pid(), now);
}

static void
test_stop_reaps_the_child(void)
{
	pid_t child = isolate_pid();
	char back[16];

	isolate_stop();
	CU_ASSERT_EQUAL(isolate_pid(), 0);
	CU_ASSERT_EQUAL(kill(child, 0), -1); /* reaped: gone */
	CU_ASSERT_EQUAL(call_pid("in", back), getpid());
}

static CU_TestInfo isolate_tests[] = {
	{ "without a child, calls run in place",
	  test_without_child_runs_in_place },
	{ "calls run in the child", test_calls_run_in_the_child },
	{ "input over the limit fails", test_input_over_the_limit_fails },
	{ "two calls at once", test_two_calls_at_once },
	{ "a dead child is replaced", test_a_dead_child_is_replaced },
	{ "stop reaps the child", test_stop_reaps_the_child },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "isolate", NULL, NULL, NULL, NULL, isolate_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	echo_pid = isolate_register("echo", echo_pid_fn);
	fails = isolate_register("fails", fails_fn);
	slow = isolate_register("slow", slow_fn);
	return unit_run(suites);
}
