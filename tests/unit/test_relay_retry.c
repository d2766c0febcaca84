/*
 * test_relay_retry.c - the relay's retry schedule
 * (modules/relay/relay_retry.c): backoff, jitter, the lifetime and
 * delay warnings.
 */
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "relay_retry.h"

static struct relay_retry_policy
policy(unsigned min_s, unsigned max_s, unsigned life, unsigned jitter)
{
	struct relay_retry_policy p;

	relay_retry_defaults(&p);
	p.min_s = min_s;
	p.max_s = max_s;
	p.lifetime_s = life;
	p.jitter_pct = jitter;
	return p;
}

static void
test_defaults(void)
{
	struct relay_retry_policy p;
	char err[128];

	relay_retry_defaults(&p);
	CU_ASSERT_EQUAL(p.lifetime_s, 5 * 86400);
	CU_ASSERT_EQUAL(p.warn_s, 0);
	CU_ASSERT(p.min_s <= p.max_s);
	CU_ASSERT_EQUAL(relay_retry_check(&p, err, sizeof(err)), 0);
}

static void
test_exponential_backoff(void)
{
	struct relay_retry_policy p = policy(60, 4000, 432000, 0);

	CU_ASSERT_EQUAL(relay_retry_delay(&p, 0, 0), 60);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 1, 0), 60);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 2, 0), 120);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 3, 12345), 240);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 6, 0), 1920);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 7, 0), 3840);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 8, 0), 4000);
	/* No overflow however many failures. */
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 1000, 0), 4000);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, UINT32_MAX, UINT32_MAX), 4000);
}

static void
test_jitter(void)
{
	struct relay_retry_policy p = policy(100, 100000, 432000, 20);
	unsigned lo, hi, mid;

	/* 400 s spread over [360, 440]. */
	lo = relay_retry_delay(&p, 3, 0);
	hi = relay_retry_delay(&p, 3, UINT32_MAX);
	mid = relay_retry_delay(&p, 3, UINT32_MAX / 2);
	CU_ASSERT_EQUAL(lo, 360);
	CU_ASSERT_EQUAL(hi, 440);
	CU_ASSERT(mid >= 399 && mid <= 401);
	/* Never below the minimum nor above the maximum. */
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 1, 0), 100);
	p.max_s = 400;
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 10, UINT32_MAX), 400);
	CU_ASSERT_EQUAL(relay_retry_delay(&p, 10, 0), 360);
}

static void
test_next_and_lifetime(void)
{
	struct relay_retry_policy p = policy(2, 8, 30, 0);
	int64_t next = 0;

	CU_ASSERT_EQUAL(relay_retry_next(&p, 1000, 1001, 1, 0, &next),
	    RELAY_RETRY_AGAIN);
	CU_ASSERT_EQUAL(next, 1003);
	CU_ASSERT_EQUAL(relay_retry_next(&p, 1000, 1003, 2, 0, &next),
	    RELAY_RETRY_AGAIN);
	CU_ASSERT_EQUAL(next, 1007);
	CU_ASSERT_EQUAL(relay_retry_next(&p, 1000, 1020, 5, 0, &next),
	    RELAY_RETRY_AGAIN);
	CU_ASSERT_EQUAL(next, 1028);
	/* The last try is at the end of the lifetime, not after it. */
	CU_ASSERT_EQUAL(relay_retry_next(&p, 1000, 1027, 6, 0, &next),
	    RELAY_RETRY_AGAIN);
	CU_ASSERT_EQUAL(next, 1030);
	/* A failure at or after it expires the message. */
	next = 0;
	CU_ASSERT_EQUAL(relay_retry_next(&p, 1000, 1030, 7, 0, &next),
	    RELAY_RETRY_EXPIRED);
	CU_ASSERT_EQUAL(next, 0);
	CU_ASSERT_EQUAL(relay_retry_next(&p, 1000, 99999, 7, 0, &next),
	    RELAY_RETRY_EXPIRED);
	CU_ASSERT_EQUAL(relay_retry_expiry(&p, 1000), 1030);
}

static void
test_default_lifetime_is_five_days(void)
{
	struct relay_retry_policy p;
	int64_t next;

	relay_retry_defaults(&p);
	CU_ASSERT_EQUAL(relay_retry_next(&p, 0, 5 * 86400 - 1, 50, 0, &next),
	    RELAY_RETRY_AGAIN);
	CU_ASSERT_EQUAL(next, 5 * 86400);
	CU_ASSERT_EQUAL(relay_retry_next(&p, 0, 5 * 86400, 51, 0, &next),
	    RELAY_RETRY_EXPIRED);
}

static void
test_delay_warning(void)
{
	struct relay_retry_policy p = policy(60, 600, 3600, 0);

	CU_ASSERT_EQUAL(relay_retry_warn_due(&p, 0, 10000, 0), 0);
	p.warn_s = 1800;
	CU_ASSERT_EQUAL(relay_retry_warn_due(&p, 0, 1799, 0), 0);
	CU_ASSERT_EQUAL(relay_retry_warn_due(&p, 0, 1800, 0), 1);
	CU_ASSERT_EQUAL(relay_retry_warn_due(&p, 0, 1800, 1), 0);
	/* Expired: a bounce, not a warning. */
	CU_ASSERT_EQUAL(relay_retry_warn_due(&p, 0, 3600, 0), 0);
}

static void
test_check(void)
{
	struct relay_retry_policy p = policy(60, 600, 3600, 10);
	char err[128];

	CU_ASSERT_EQUAL(relay_retry_check(&p, err, sizeof(err)), 0);
	p.min_s = 0;
	CU_ASSERT_EQUAL(relay_retry_check(&p, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "minimum"));
	p = policy(600, 60, 3600, 10);
	CU_ASSERT_EQUAL(relay_retry_check(&p, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "maximum"));
	p = policy(60, 600, 300, 10);
	CU_ASSERT_EQUAL(relay_retry_check(&p, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "lifetime"));
	p = policy(60, 600, 3600, 101);
	CU_ASSERT_EQUAL(relay_retry_check(&p, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "jitter"));
	p = policy(60, 600, 3600, 10);
	p.warn_s = 3600;
	CU_ASSERT_EQUAL(relay_retry_check(&p, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "warning"));
}

static CU_TestInfo retry_tests[] = {
	{ "defaults: 5 day lifetime, no warning", test_defaults },
	{ "exponential backoff up to the maximum", test_exponential_backoff },
	{ "jitter spreads within the bounds", test_jitter },
	{ "next attempt and the lifetime", test_next_and_lifetime },
	{ "the default lifetime is 5 days", test_default_lifetime_is_five_days },
	{ "delay warnings", test_delay_warning },
	{ "policy checks name the field", test_check },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "relay_retry", NULL, NULL, NULL, NULL, retry_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
