/*
 * test_auth_penalty.c - the shared table of failed logins
 * (core/auth_penalty.c): the doubling delay and its cap, counting down
 * from the last failure, repeats of one wrong password, expiry, success,
 * accounts across addresses, IPv6 prefixes, a bounded table under a
 * flood of addresses, and sharing across fork.
 *
 * Times are passed in, so nothing here sleeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include "unit.h"
#include "auth_penalty.h"

#define T0 1000000ULL /* any start time */

static struct auth_penalty *
table(size_t slots, unsigned init, unsigned max, unsigned expire)
{
	struct penalty_settings ps = { slots, init, max, expire };
	struct auth_penalty *t = penalty_create(&ps);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

static void
key4(struct auth_penalty *t, const char *ip, const char *name,
     const char *pw, struct penalty_key *k)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
		abort();
	penalty_key(t, (struct sockaddr *)&sin, sizeof(sin), name, pw,
	            strlen(pw), k);
}

static void
key6(struct auth_penalty *t, const char *ip, const char *name,
     const char *pw, struct penalty_key *k)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	if (inet_pton(AF_INET6, ip, &sin6.sin6_addr) != 1)
		abort();
	penalty_key(t, (struct sockaddr *)&sin6, sizeof(sin6), name, pw,
	            strlen(pw), k);
}

static unsigned
check(struct auth_penalty *t, const struct penalty_key *k, uint64_t now,
      int *known)
{
	struct penalty_verdict v;

	penalty_check(t, k, now, &v);
	if (known != NULL)
		*known = v.known_wrong;
	return v.wait_ms;
}

static void
test_delay_doubles_to_the_cap(void)
{
	struct auth_penalty *t = table(1024, 100, 1000, 3600000);
	static const unsigned want[] = { 100, 200, 400, 800, 1000, 1000 };
	struct penalty_key k;
	char pw[16];
	unsigned i, a, c;

	key4(t, "192.0.2.7", "alice@example.org", "x", &k);
	CU_ASSERT_EQUAL(check(t, &k, T0, NULL), 0);
	for (i = 0; i < 6; i++) {
		snprintf(pw, sizeof(pw), "guess%u", i);
		key4(t, "192.0.2.7", "alice@example.org", pw, &k);
		penalty_failed(t, &k, T0 + i);
		CU_ASSERT_EQUAL(check(t, &k, T0 + i, NULL), want[i]);
	}
	/* Many more failures: still the cap, never an overflow. */
	for (i = 0; i < 2000; i++) {
		snprintf(pw, sizeof(pw), "more%u", i);
		key4(t, "192.0.2.7", "alice@example.org", pw, &k);
		penalty_failed(t, &k, T0 + 10);
	}
	CU_ASSERT_EQUAL(check(t, &k, T0 + 10, NULL), 1000);
	penalty_counts(t, &k, T0 + 10, &a, &c);
	CU_ASSERT(a >= 64 && c >= 64);
	/* The wait counts from the last failure. */
	CU_ASSERT_EQUAL(check(t, &k, T0 + 10 + 300, NULL), 700);
	CU_ASSERT_EQUAL(check(t, &k, T0 + 10 + 1000, NULL), 0);
	penalty_destroy(t);
}

static void
test_repeated_password_is_known_and_does_not_grow(void)
{
	struct auth_penalty *t = table(1024, 100, 10000, 3600000);
	struct penalty_key k, other, right;
	unsigned a, c;
	int known;

	key4(t, "192.0.2.7", "alice@example.org", "stale", &k);
	check(t, &k, T0, &known);
	CU_ASSERT_EQUAL(known, 0);
	penalty_failed(t, &k, T0);
	penalty_failed(t, &k, T0 + 1);
	penalty_failed(t, &k, T0 + 2);
	penalty_counts(t, &k, T0 + 2, &a, &c);
	CU_ASSERT_EQUAL(a, 1);
	CU_ASSERT_EQUAL(c, 1);
	CU_ASSERT_EQUAL(check(t, &k, T0 + 2, &known), 100);
	CU_ASSERT_EQUAL(known, 1);
	/* The name is compared in lower case, as backends do. */
	key4(t, "192.0.2.7", "Alice@Example.ORG", "stale", &k);
	check(t, &k, T0 + 2, &known);
	CU_ASSERT_EQUAL(known, 1);
	/* Another password, the right one say, is checked after the wait:
	 * the penalty delays, it does not lock out. */
	key4(t, "192.0.2.7", "alice@example.org", "right", &right);
	CU_ASSERT_EQUAL(check(t, &right, T0 + 2, &known), 100);
	CU_ASSERT_EQUAL(known, 0);
	/* The same password for another account is another pair. */
	key4(t, "192.0.2.7", "bob@example.org", "stale", &other);
	check(t, &other, T0 + 2, &known);
	CU_ASSERT_EQUAL(known, 0);
	/* Believed for PENALTY_TAG_TTL_MS after the last checked failure;
	 * repeats answered without a check do not stretch that (the
	 * password may have become the right one meanwhile). */
	penalty_repeated(t, &k, T0 + 60000);
	check(t, &k, T0 + 2 + PENALTY_TAG_TTL_MS - 1, &known);
	CU_ASSERT_EQUAL(known, 1);
	check(t, &k, T0 + 2 + PENALTY_TAG_TTL_MS, &known);
	CU_ASSERT_EQUAL(known, 0);
	/* Checked and wrong again: believed again. */
	penalty_failed(t, &k, T0 + 2 + PENALTY_TAG_TTL_MS);
	check(t, &k, T0 + 3 + PENALTY_TAG_TTL_MS, &known);
	CU_ASSERT_EQUAL(known, 1);
	penalty_counts(t, &k, T0 + 3 + PENALTY_TAG_TTL_MS, &a, &c);
	CU_ASSERT_EQUAL(a, 1); /* the same pair: no growth */
	penalty_destroy(t);
}

static void
test_expiry_and_success_forget(void)
{
	struct auth_penalty *t = table(1024, 100, 1000, 60000);
	struct penalty_key k, ok;
	unsigned a, c;
	int known;

	key4(t, "192.0.2.7", "alice@example.org", "wrong", &k);
	penalty_failed(t, &k, T0);
	CU_ASSERT_EQUAL(penalty_used(t, T0), 2); /* address and account */
	CU_ASSERT_EQUAL(penalty_used(t, T0 + 59999), 2);
	CU_ASSERT_EQUAL(penalty_used(t, T0 + 60000), 0);
	CU_ASSERT_EQUAL(check(t, &k, T0 + 60000, &known), 0);
	CU_ASSERT_EQUAL(known, 0);

	penalty_failed(t, &k, T0 + 70000);
	penalty_failed(t, &k, T0 + 70001);
	key4(t, "192.0.2.7", "alice@example.org", "right", &ok);
	penalty_succeeded(t, &ok);
	penalty_counts(t, &k, T0 + 70002, &a, &c);
	CU_ASSERT_EQUAL(a, 0);
	CU_ASSERT_EQUAL(c, 0);
	CU_ASSERT_EQUAL(check(t, &k, T0 + 70002, &known), 0);
	CU_ASSERT_EQUAL(known, 0);
	CU_ASSERT_EQUAL(penalty_used(t, T0 + 70002), 0);
	penalty_destroy(t);
}

static void
test_account_counts_across_addresses(void)
{
	struct auth_penalty *t = table(1024, 100, 100000, 3600000);
	struct penalty_key k, fresh;
	char ip[32], pw[16];
	unsigned i;

	for (i = 0; i < 5; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%u", i + 1);
		snprintf(pw, sizeof(pw), "pw%u", i);
		key4(t, ip, "carol@example.org", pw, &k);
		penalty_failed(t, &k, T0);
	}
	/* A new address for the attacked account waits for the account's
	 * five failures; another account from it does not. */
	key4(t, "203.0.113.9", "carol@example.org", "x", &k);
	CU_ASSERT_EQUAL(check(t, &k, T0, NULL), 1600);
	key4(t, "203.0.113.9", "dave@example.org", "x", &fresh);
	CU_ASSERT_EQUAL(check(t, &fresh, T0, NULL), 0);
	penalty_destroy(t);
}

static void
test_ipv6_by_prefix(void)
{
	struct auth_penalty *t = table(1024, 100, 1000, 3600000);
	struct penalty_key k;

	key6(t, "2001:db8:1:2::1", "x@example.org", "a", &k);
	penalty_failed(t, &k, T0);
	/* The same /64, another account: the address's penalty. */
	key6(t, "2001:db8:1:2:ffff::9", "y@example.org", "b", &k);
	CU_ASSERT_EQUAL(check(t, &k, T0, NULL), 100);
	key6(t, "2001:db8:1:3::1", "y@example.org", "b", &k);
	CU_ASSERT_EQUAL(check(t, &k, T0, NULL), 0);

	/* An IPv4-mapped address is its IPv4 address. */
	key4(t, "192.0.2.1", "x@example.org", "a", &k);
	penalty_failed(t, &k, T0);
	key6(t, "::ffff:192.0.2.1", "z@example.org", "c", &k);
	CU_ASSERT_EQUAL(check(t, &k, T0, NULL), 100);
	penalty_destroy(t);
}

static void
test_bounded_under_a_flood_of_addresses(void)
{
	struct auth_penalty *t = table(64, 100, 1000, 3600000);
	struct penalty_key k;
	char ip[32];
	unsigned i, a, c;

	for (i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16 & 255,
		         i >> 8 & 255, i & 255);
		key4(t, ip, "victim@example.org", "guess", &k);
		penalty_failed(t, &k, T0 + i);
	}
	CU_ASSERT(penalty_used(t, T0 + i) <= 64);
	/* The latest attacker is still known: the oldest gave way. */
	penalty_counts(t, &k, T0 + i - 1, &a, &c);
	CU_ASSERT_EQUAL(a, 1);
	CU_ASSERT_EQUAL(c, 1); /* one password, tried from everywhere */
	CU_ASSERT_EQUAL(check(t, &k, T0 + i - 1, NULL), 100);
	penalty_destroy(t);
}

/* A check the full queue refused counts against the address alone, and
 * leaves no tag: the password was never checked, and the right one must
 * not be taken for a known wrong one. */
static void
test_refused_counts_the_address_alone(void)
{
	struct auth_penalty *t = table(1024, 100, 1000, 3600000);
	struct penalty_key k, other;
	struct penalty_verdict v;
	unsigned a, c;

	key4(t, "192.0.2.7", "alice@example.org", "right", &k);
	penalty_check(t, &k, T0, &v);
	CU_ASSERT_EQUAL(v.flagged, 0);
	penalty_refused(t, &k, T0);
	penalty_refused(t, &k, T0);
	penalty_counts(t, &k, T0, &a, &c);
	CU_ASSERT_EQUAL(a, 2);
	CU_ASSERT_EQUAL(c, 0);
	penalty_check(t, &k, T0, &v);
	CU_ASSERT_EQUAL(v.wait_ms, 200);
	CU_ASSERT_EQUAL(v.known_wrong, 0);
	CU_ASSERT_EQUAL(v.flagged, 1);
	/* The same account from elsewhere is clean. */
	key4(t, "198.51.100.1", "alice@example.org", "right", &other);
	penalty_check(t, &other, T0, &v);
	CU_ASSERT_EQUAL(v.wait_ms, 0);
	CU_ASSERT_EQUAL(v.flagged, 0);
	/* A failed account flags every address that logs in to it. */
	key4(t, "203.0.113.1", "alice@example.org", "guess", &other);
	penalty_failed(t, &other, T0);
	key4(t, "198.51.100.1", "alice@example.org", "right", &other);
	penalty_check(t, &other, T0, &v);
	CU_ASSERT_EQUAL(v.flagged, 1);
	CU_ASSERT_EQUAL(v.known_wrong, 0);
	penalty_destroy(t);
}

static void
test_off_when_max_is_zero(void)
{
	struct auth_penalty *t = table(64, 100, 0, 3600000);
	struct penalty_key k;
	int known;

	key4(t, "192.0.2.7", "alice@example.org", "wrong", &k);
	penalty_failed(t, &k, T0);
	penalty_failed(t, &k, T0);
	CU_ASSERT_EQUAL(check(t, &k, T0, &known), 0);
	CU_ASSERT_EQUAL(known, 0);
	CU_ASSERT_EQUAL(penalty_used(t, T0), 0);
	penalty_destroy(t);
}

static void
test_shared_across_fork(void)
{
	struct auth_penalty *t = table(1024, 100, 1000, 3600000);
	struct penalty_key k;
	int status;
	pid_t pid;

	key4(t, "192.0.2.7", "alice@example.org", "wrong", &k);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		/* A worker counts a failure... */
		penalty_failed(t, &k, T0);
		penalty_failed(t, &k, T0 + 1);
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	/* ...and another one sees it. */
	CU_ASSERT_EQUAL(check(t, &k, T0 + 1, NULL), 100);
	penalty_destroy(t);
}

static CU_TestInfo penalty_tests[] = {
	{ "the delay doubles to its cap, counted from the last failure",
	  test_delay_doubles_to_the_cap },
	{ "a repeated wrong password is known and does not grow the delay",
	  test_repeated_password_is_known_and_does_not_grow },
	{ "expiry and success forget", test_expiry_and_success_forget },
	{ "an account counts failures from every address",
	  test_account_counts_across_addresses },
	{ "IPv6 counts by /64, IPv4-mapped as IPv4", test_ipv6_by_prefix },
	{ "the table stays bounded under a flood of addresses",
	  test_bounded_under_a_flood_of_addresses },
	{ "a refusal counts the address alone, without a tag",
	  test_refused_counts_the_address_alone },
	{ "max 0 turns it off", test_off_when_max_is_zero },
	{ "one table for every worker (fork)", test_shared_across_fork },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "auth penalty", NULL, NULL, NULL, NULL, penalty_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
