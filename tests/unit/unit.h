/*
 * unit.h - what every CUnit test program shares: the runner and a few
 * file helpers.  A test program defines its suites and calls unit_run():
 *
 *	static CU_TestInfo loop_tests[] = {
 *		{ "timers fire in order", test_timer_order },
 *		CU_TEST_INFO_NULL,
 *	};
 *	static CU_SuiteInfo suites[] = {
 *		{ "loop", NULL, NULL, NULL, NULL, loop_tests },
 *		CU_SUITE_INFO_NULL,
 *	};
 *	int main(void) { return unit_run(suites); }
 */
#ifndef TESTS_UNIT_H
#define TESTS_UNIT_H

#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>

/* Runs every suite verbosely, prints CUnit's summary and a closing line
 * "N passed, M failed"; returns the process exit status (0 when no test
 * and no assertion failed). */
int unit_run(CU_SuiteInfo *suites);

/* A fresh directory under $TMPDIR (or /tmp); removed by unit_rm_rf. */
char *unit_tmpdir(void);
void unit_rm_rf(const char *path);
/* Writes `text` to `dir/name`, creating it; returns the full path
 * (malloc'd). */
char *unit_write_file(const char *dir, const char *name, const char *text);
/* Reads a whole file into a NUL-terminated malloc'd string, or NULL. */
char *unit_read_file(const char *path);

/* Monotonic milliseconds, read now (not the loop's cached time). */
uint64_t unit_mono_ms(void);

/* Turns loop `l` (core/loop.h) until `expr` holds or `ms` passed. */
#define UNIT_PUMP_UNTIL(l, expr, ms)                                       \
	do {                                                               \
		uint64_t end_ = unit_mono_ms() + (ms);                     \
		while (!(expr) && unit_mono_ms() < end_)                   \
			loop_run_once((l), 5);                             \
	} while (0)

/* Captures what the core logs (stderr) while `fn(arg)` runs, into a
 * malloc'd NUL-terminated string. */
char *unit_capture_log(void (*fn)(void *arg), void *arg);

#endif /* TESTS_UNIT_H */
