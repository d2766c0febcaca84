/*
 * test_pool.c - memory pools.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"
#include "unit.h"

static void
test_alloc_is_zeroed_and_aligned(void)
{
	postern_pool_t *p = pool_create(1024);
	int i, ok = 1;

	for (i = 1; i < 200; i++) {
		unsigned char *m = pool_alloc(p, (size_t)i);
		size_t j;

		ok &= ((uintptr_t)m % alignof(max_align_t)) == 0;
		for (j = 0; j < (size_t)i; j++)
			ok &= m[j] == 0;
		memset(m, 0xab, (size_t)i);
	}
	CU_ASSERT(ok);
	pool_destroy(p);
}

static void
test_strings(void)
{
	postern_pool_t *p = pool_create(256);
	char *a = pool_strdup(p, "hello");
	char *b = pool_strndup(p, "world wide", 5);
	char *c = pool_printf(p, "%s %s %d", a, b, 42);

	CU_ASSERT_STRING_EQUAL(a, "hello");
	CU_ASSERT_STRING_EQUAL(b, "world");
	CU_ASSERT_STRING_EQUAL(c, "hello world 42");
	pool_destroy(p);
}

static void
test_large_allocation_gets_own_block(void)
{
	postern_pool_t *p = pool_create(1024);
	char *big = pool_alloc(p, 100000);

	memset(big, 1, 100000);
	CU_ASSERT(pool_allocated(p) >= 100000);
	pool_destroy(p);
}

static void
test_clear_keeps_one_block(void)
{
	postern_pool_t *p = pool_create(1024);
	int i;

	for (i = 0; i < 100; i++)
		pool_alloc(p, 200);
	pool_alloc(p, 50000);
	CU_ASSERT(pool_allocated(p) > 50000);
	pool_clear(p);
	CU_ASSERT_EQUAL(pool_allocated(p), 1024);
	/* And it is usable again. */
	CU_ASSERT_STRING_EQUAL(pool_strdup(p, "again"), "again");
	pool_destroy(p);
	pool_destroy(NULL);
}

/* A limited pool: pool_try_alloc stops at the budget (small and large
 * requests alike), pool_alloc does not but counts, clearing resets. */
static void
test_limited(void)
{
	postern_pool_t *p = pool_create_limited(4096, 64 * 1024);
	size_t got = 0;
	void *m;

	CU_ASSERT(!pool_exhausted(p));
	while ((m = pool_try_alloc(p, 1000)) != NULL)
		got += 1000;
	CU_ASSERT(pool_exhausted(p));
	CU_ASSERT(got >= 56 * 1024 && pool_allocated(p) <= 64 * 1024);
	CU_ASSERT_PTR_NULL(pool_try_alloc(p, 100000));
	CU_ASSERT_PTR_NULL(pool_try_alloc(p, 4000));   /* a new block */
	CU_ASSERT_PTR_NULL(pool_try_alloc(p, (size_t)-1));
	m = pool_alloc(p, 100000);   /* what a caller cannot do without */
	CU_ASSERT_PTR_NOT_NULL(m);
	CU_ASSERT(pool_allocated(p) >= got + 100000);
	pool_clear(p);
	CU_ASSERT(!pool_exhausted(p));
	CU_ASSERT_STRING_EQUAL(pool_try_strndup(p, "abcdef", 3), "abc");
	CU_ASSERT_PTR_NOT_NULL(pool_try_alloc(p, 60 * 1024));
	pool_destroy(p);
	/* no limit: only what cannot be allocated says no */
	p = pool_create(4096);
	CU_ASSERT_PTR_NOT_NULL(pool_try_alloc(p, 1 << 20));
	CU_ASSERT_PTR_NULL(pool_try_alloc(p, (size_t)-1));
	CU_ASSERT(pool_exhausted(p));
	pool_destroy(p);
}

static CU_TestInfo pool_tests[] = {
	{ "allocations are zeroed and aligned",
	  test_alloc_is_zeroed_and_aligned },
	{ "strdup, strndup, printf", test_strings },
	{ "large allocation gets its own block",
	  test_large_allocation_gets_own_block },
	{ "clear keeps one block", test_clear_keeps_one_block },
	{ "a limited pool's budget", test_limited },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "pool", NULL, NULL, NULL, NULL, pool_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
