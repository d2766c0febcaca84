/*
 * test_address.c - envelope addresses split into local part, user,
 * detail and domain (core/address.c, host->address_split).
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "pool.h"
#include "unit.h"

static postern_pool_t *pool;

static int
split(const char *a, const char *delims, struct postern_address_parts *p)
{
	memset(p, 0, sizeof(*p));
	p->size = sizeof(*p);
	return address_split(a, delims, pool, p);
}

static void
test_parts(void)
{
	struct postern_address_parts p;

	pool = pool_create(1024);
	CU_ASSERT_EQUAL_FATAL(split("Alice+Lists@Example.ORG", "+", &p), 0);
	CU_ASSERT_STRING_EQUAL(p.local, "Alice+Lists");
	CU_ASSERT_STRING_EQUAL(p.user, "alice");
	CU_ASSERT_STRING_EQUAL(p.detail, "Lists");
	CU_ASSERT_STRING_EQUAL(p.domain, "example.org");
	/* The first delimiter splits; several kinds may be given. */
	CU_ASSERT_EQUAL_FATAL(split("bob-a+b@x.org", "+-", &p), 0);
	CU_ASSERT_STRING_EQUAL(p.user, "bob");
	CU_ASSERT_STRING_EQUAL(p.detail, "a+b");
	/* No delimiters: no detail. */
	CU_ASSERT_EQUAL_FATAL(split("bob+a@x.org", NULL, &p), 0);
	CU_ASSERT_STRING_EQUAL(p.user, "bob+a");
	CU_ASSERT_PTR_NULL(p.detail);
	/* A quoted local part keeps its delimiter; the last @ splits. */
	CU_ASSERT_EQUAL_FATAL(split("\"a+b@c\"@X.org", "+", &p), 0);
	CU_ASSERT_STRING_EQUAL(p.local, "\"a+b@c\"");
	CU_ASSERT_PTR_NULL(p.detail);
	CU_ASSERT_STRING_EQUAL(p.domain, "x.org");
	/* UTF-8 is kept as it is; no domain: "". */
	CU_ASSERT_EQUAL_FATAL(split("J\xc3\xb6rg", "+", &p), 0);
	CU_ASSERT_STRING_EQUAL(p.user, "j\xc3\xb6rg");
	CU_ASSERT_STRING_EQUAL(p.domain, "");
	/* An empty detail is a detail. */
	CU_ASSERT_EQUAL_FATAL(split("carol+@x.org", "+", &p), 0);
	CU_ASSERT_STRING_EQUAL(p.detail, "");
	pool_destroy(pool);
}

static void
test_refused(void)
{
	struct postern_address_parts p;

	pool = pool_create(1024);
	CU_ASSERT_EQUAL(split("", "+", &p), -1);
	CU_ASSERT_EQUAL(split("@x.org", "+", &p), -1);
	CU_ASSERT_EQUAL(split("user@", "+", &p), -1);
	CU_ASSERT_EQUAL(address_split(NULL, "+", pool, &p), -1);
	/* A caller's struct smaller than ours is refused, not overrun. */
	p.size = sizeof(size_t);
	CU_ASSERT_EQUAL(address_split("a@b", "+", pool, &p), -1);
	pool_destroy(pool);
}

static void
test_networks(void)
{
	struct postern_network n;

	CU_ASSERT_EQUAL_FATAL(network_parse("192.0.2.77/24", &n), 0);
	CU_ASSERT_EQUAL(n.family, AF_INET);
	CU_ASSERT_EQUAL(n.prefix, 24);
	CU_ASSERT_EQUAL(n.addr[3], 0);      /* host bits cleared */
	CU_ASSERT_EQUAL(network_match(&n, "192.0.2.1"), 1);
	CU_ASSERT_EQUAL(network_match(&n, "192.0.3.1"), 0);
	CU_ASSERT_EQUAL(network_match(&n, "::ffff:192.0.2.200"), 1);
	CU_ASSERT_EQUAL(network_match(&n, "2001:db8::1"), 0);
	CU_ASSERT_EQUAL(network_match(&n, "not an address"), 0);
	CU_ASSERT_EQUAL(network_match(&n, ""), 0);
	CU_ASSERT_EQUAL(network_match(&n, NULL), 0);

	CU_ASSERT_EQUAL_FATAL(network_parse("2001:db8:1::/47", &n), 0);
	CU_ASSERT_EQUAL(n.prefix, 47);
	CU_ASSERT_EQUAL(network_match(&n, "2001:db8:1:ffff::9"), 1);
	CU_ASSERT_EQUAL(network_match(&n, "2001:db8:2::1"), 0);
	CU_ASSERT_EQUAL(network_match(&n, "2001:DB8::5"), 1); /* /47 */
	CU_ASSERT_EQUAL(network_match(&n, "2001:db9::1"), 0);

	/* One address; a /0 holds every address of its family. */
	CU_ASSERT_EQUAL_FATAL(network_parse("127.0.0.1", &n), 0);
	CU_ASSERT_EQUAL(n.prefix, 32);
	CU_ASSERT_EQUAL(network_match(&n, "127.0.0.1"), 1);
	CU_ASSERT_EQUAL(network_match(&n, "127.0.0.2"), 0);
	CU_ASSERT_EQUAL_FATAL(network_parse("0.0.0.0/0", &n), 0);
	CU_ASSERT_EQUAL(network_match(&n, "203.0.113.9"), 1);
	CU_ASSERT_EQUAL_FATAL(network_parse("::/0", &n), 0);
	CU_ASSERT_EQUAL(network_match(&n, "::1"), 1);
	CU_ASSERT_EQUAL(network_match(&n, "127.0.0.1"), 0);

	/* What is not a network. */
	CU_ASSERT_EQUAL(network_parse("192.0.2.0/33", &n), -1);
	CU_ASSERT_EQUAL(network_parse("::/129", &n), -1);
	CU_ASSERT_EQUAL(network_parse("192.0.2.0/", &n), -1);
	CU_ASSERT_EQUAL(network_parse("192.0.2.0/-1", &n), -1);
	CU_ASSERT_EQUAL(network_parse("192.0.2.0/+8", &n), -1);
	CU_ASSERT_EQUAL(network_parse("192.0.2.0/8x", &n), -1);
	CU_ASSERT_EQUAL(network_parse("/8", &n), -1);
	CU_ASSERT_EQUAL(network_parse("example.org", &n), -1);
	CU_ASSERT_EQUAL(network_parse("", &n), -1);
	CU_ASSERT_EQUAL(network_parse("192.0.2.0/99999999999999999999", &n),
	    -1);
}

static CU_TestInfo address_tests[] = {
	{ "local part, user, detail, domain", test_parts },
	{ "what is not an address", test_refused },
	{ "networks: parse and match", test_networks },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "address", NULL, NULL, NULL, NULL, address_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	alarm(60);
	return unit_run(suites);
}
