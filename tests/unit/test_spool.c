/*
 * test_spool.c - spools (core/spool.c): memory, then an unlinked file;
 * what the host table's spool_* promise SMTP DATA and IMAP APPEND.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "unit.h"

static char dir[] = "/tmp/postern-test-spool.XXXXXX";

/* Entries of the spool directory besides . and .. */
static int
entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_memory_then_file(void)
{
	postern_spool_t *sp = spool_create(dir);
	const char *mem;
	char buf[64];

	spool_append(sp, "hello ", 6);
	CU_ASSERT_EQUAL(spool_size(sp), 6);
	CU_ASSERT_EQUAL(spool_memory(sp, &mem), 6);
	CU_ASSERT(memcmp(mem, "hello ", 6) == 0);
	CU_ASSERT_EQUAL(spool_fd(sp), -1);
	CU_ASSERT_EQUAL(spool_flush(sp), 0);
	CU_ASSERT(spool_fd(sp) >= 0);
	CU_ASSERT_EQUAL(spool_memory(sp, NULL), 0);
	spool_append(sp, "world", 5);
	CU_ASSERT_EQUAL(spool_size(sp), 11);
	CU_ASSERT_EQUAL(spool_memory(sp, &mem), 5);
	CU_ASSERT_EQUAL(spool_flush(sp), 0);
	CU_ASSERT_EQUAL(pread(spool_fd(sp), buf, sizeof(buf), 0), 11);
	CU_ASSERT(memcmp(buf, "hello world", 11) == 0);
	/* unlinked: nothing is left in the directory, even now */
	CU_ASSERT_EQUAL(entries(), 0);
	spool_free(sp);
	spool_free(NULL);
}

static void
test_large_and_flush_failure(void)
{
	postern_spool_t *sp = spool_create(dir);
	char *big = malloc(1 << 20), *back = malloc(1 << 20);
	int i;

	memset(big, 'x', 1 << 20);
	for (i = 0; i < 8; i++) {
		big[0] = (char)('a' + i);
		spool_append(sp, big, 1 << 20);
		CU_ASSERT_EQUAL(spool_flush(sp), 0);
	}
	CU_ASSERT_EQUAL(spool_size(sp), 8u << 20);
	CU_ASSERT_EQUAL(pread(spool_fd(sp), back, 1 << 20, 5 << 20),
	                1 << 20);
	CU_ASSERT_EQUAL(back[0], 'f');
	spool_free(sp);
	/* a directory that is not there: -1, the memory kept */
	sp = spool_create("/nonexistent/postern");
	spool_append(sp, "abc", 3);
	CU_ASSERT_EQUAL(spool_flush(sp), -1);
	CU_ASSERT_EQUAL(spool_memory(sp, NULL), 3);
	spool_free(sp);
	free(big);
	free(back);
}

static CU_TestInfo spool_tests[] = {
	{ "memory, then an unlinked file", test_memory_then_file },
	{ "megabytes; a failing flush keeps the memory",
	  test_large_and_flush_failure },
	CU_TEST_INFO_NULL,
};

static int
suite_init(void)
{
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
suite_fini(void)
{
	return rmdir(dir);
}

static CU_SuiteInfo suites[] = {
	{ "spool", suite_init, suite_fini, NULL, NULL, spool_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
