/*
 * unit.c - the shared CUnit runner and file helpers (see unit.h).
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

int
unit_run(CU_SuiteInfo *suites)
{
	unsigned run, failed, asserts_failed;

	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "unit: cannot initialise CUnit: %s\n",
		        CU_get_error_msg());
		return 1;
	}
	if (CU_register_suites(suites) != CUE_SUCCESS) {
		fprintf(stderr, "unit: cannot register suites: %s\n",
		        CU_get_error_msg());
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	run = CU_get_number_of_tests_run();
	failed = CU_get_number_of_tests_failed();
	asserts_failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	printf("\n%u passed, %u failed\n", run - failed, failed);
	return failed == 0 && asserts_failed == 0 && run > 0 ? 0 : 1;
}

char *
unit_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/postern-unit.XXXXXX", base) < 0)
		abort();
	if (mkdtemp(path) == NULL) {
		fprintf(stderr, "unit: mkdtemp %s: %s\n", path,
		        strerror(errno));
		abort();
	}
	return path;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
unit_rm_rf(const char *path)
{
	if (path != NULL)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *
unit_write_file(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		abort();
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "unit: cannot write %s: %s\n", path,
		        strerror(errno));
		abort();
	}
	fputs(text, f);
	fclose(f);
	return path;
}

char *
unit_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

char *
unit_capture_log(void (*fn)(void *arg), void *arg)
{
	char tmpl[] = "/tmp/postern-log.XXXXXX";
	int fd = mkstemp(tmpl);
	int saved = dup(STDERR_FILENO);
	char *text;

	if (fd < 0 || saved < 0)
		abort();
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	text = unit_read_file(tmpl);
	unlink(tmpl);
	return text;
}

uint64_t
unit_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
