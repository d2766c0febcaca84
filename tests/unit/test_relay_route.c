/*
 * test_relay_route.c - via strings and route matching
 * (modules/relay/relay_route.c).
 */
#include <string.h>

#include "unit.h"
#include "relay_route.h"

static char err[256];

static void
test_via_kinds(void)
{
	struct relay_via v;

	CU_ASSERT_EQUAL_FATAL(relay_via_parse("mx", &v, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(v.kind, RELAY_VIA_MX);
	CU_ASSERT_EQUAL_FATAL(relay_via_parse("MX", &v, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(v.kind, RELAY_VIA_MX);

	CU_ASSERT_EQUAL_FATAL(relay_via_parse("smtp:[10.0.0.5]:2525", &v, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(v.kind, RELAY_VIA_SMTP);
	CU_ASSERT_STRING_EQUAL(v.host, "10.0.0.5");
	CU_ASSERT_EQUAL(v.port, 2525);
	CU_ASSERT_EQUAL(v.literal, 1);
	CU_ASSERT_EQUAL(v.is_ip, 1);

	CU_ASSERT_EQUAL_FATAL(relay_via_parse("smtp:[::1]:25", &v, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(v.host, "::1");
	CU_ASSERT_EQUAL(v.port, 25);
	CU_ASSERT_EQUAL(v.literal, 1);
	CU_ASSERT_EQUAL(v.is_ip, 1);

	CU_ASSERT_EQUAL_FATAL(relay_via_parse("SMTP:[Relay.Example.NET]", &v,
	    err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(v.host, "relay.example.net");
	CU_ASSERT_EQUAL(v.port, 25);
	CU_ASSERT_EQUAL(v.literal, 1);
	CU_ASSERT_EQUAL(v.is_ip, 0);

	CU_ASSERT_EQUAL_FATAL(relay_via_parse("smtp:example.net", &v, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(v.host, "example.net");
	CU_ASSERT_EQUAL(v.port, 25);
	CU_ASSERT_EQUAL(v.literal, 0);
	CU_ASSERT_EQUAL_FATAL(relay_via_parse("smtp:example.net:587", &v, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(v.port, 587);
	CU_ASSERT_EQUAL(v.literal, 0);

	CU_ASSERT_EQUAL_FATAL(relay_via_parse("lmtp:127.0.0.1:24", &v, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(v.kind, RELAY_VIA_LMTP);
	CU_ASSERT_STRING_EQUAL(v.host, "127.0.0.1");
	CU_ASSERT_EQUAL(v.port, 24);
	CU_ASSERT_EQUAL(v.literal, 1);
	CU_ASSERT_EQUAL_FATAL(relay_via_parse("lmtp:[::1]:2424", &v, err,
	    sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(v.host, "::1");
	CU_ASSERT_EQUAL(v.port, 2424);
	CU_ASSERT_EQUAL_FATAL(relay_via_parse("lmtp:mail.internal", &v, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(v.port, 24);

	CU_ASSERT_EQUAL_FATAL(relay_via_parse("lmtp:unix:/run/dovecot/lmtp",
	    &v, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(v.kind, RELAY_VIA_LMTP_UNIX);
	CU_ASSERT_STRING_EQUAL(v.host, "/run/dovecot/lmtp");
	CU_ASSERT_EQUAL(v.port, 0);
}

static void
bad_via(const char *via, const char *needle)
{
	struct relay_via v;

	err[0] = '\0';
	CU_ASSERT_EQUAL(relay_via_parse(via, &v, err, sizeof(err)), -1);
	if (strstr(err, needle) == NULL)
		fprintf(stderr, "via '%s': error '%s' lacks '%s'\n", via, err,
		    needle);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
}

static void
test_via_errors(void)
{
	bad_via("", "empty");
	bad_via("smtp:", "empty host");
	bad_via("smtp:[10.0.0.5", "without ']'");
	bad_via("smtp:[10.0.0.5]:0", "out of range");
	bad_via("smtp:[10.0.0.5]:65536", "out of range");
	bad_via("smtp:[10.0.0.5]:99999999999999999999", "out of range");
	bad_via("smtp:[10.0.0.5]:2x", "not a number");
	bad_via("smtp:[10.0.0.5]25", "after ']'");
	bad_via("smtp:[10.0.0.5]:", "empty port");
	bad_via("smtp:::1", "brackets");
	bad_via("smtp:a..b", "empty label");
	bad_via("smtp:a b", "bad character");
	bad_via("smtp:host/x", "bad character");
	bad_via("lmtp:unix:relative/path", "absolute");
	bad_via("lmtp:unix:/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "longer");
	bad_via("uucp:host", "unknown kind");
	bad_via("smtp:"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".b", "63");
	/* The message names the via. */
	bad_via("smtp:[1.2.3.4]:70000", "smtp:[1.2.3.4]:70000");
}

static void
test_via_format_roundtrip(void)
{
	static const char *const vias[] = {
		"mx", "smtp:[10.0.0.5]:25", "smtp:[::1]:2525",
		"smtp:example.net", "smtp:example.net:587",
		"lmtp:127.0.0.1:24", "lmtp:[::1]:24",
		"lmtp:unix:/run/dovecot/lmtp", NULL,
	};
	struct relay_via v, w;
	char buf[300];
	int i;

	for (i = 0; vias[i] != NULL; i++) {
		CU_ASSERT_EQUAL_FATAL(relay_via_parse(vias[i], &v, err,
		    sizeof(err)), 0);
		relay_via_format(&v, buf, sizeof(buf));
		CU_ASSERT_STRING_EQUAL(buf, vias[i]);
		CU_ASSERT_EQUAL_FATAL(relay_via_parse(buf, &w, err,
		    sizeof(err)), 0);
		CU_ASSERT_EQUAL(memcmp(&v, &w, sizeof(v)), 0);
	}
}

static void
test_tls_policy(void)
{
	enum relay_tls_policy p;

	CU_ASSERT_EQUAL(relay_tls_policy_parse("none", &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p, RELAY_TLS_NONE);
	CU_ASSERT_EQUAL(relay_tls_policy_parse("May", &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p, RELAY_TLS_MAY);
	CU_ASSERT_EQUAL(relay_tls_policy_parse("encrypt", &p, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(p, RELAY_TLS_ENCRYPT);
	CU_ASSERT_EQUAL(relay_tls_policy_parse("VERIFY", &p, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(p, RELAY_TLS_VERIFY);
	CU_ASSERT_EQUAL(relay_tls_policy_parse("dane", &p, err, sizeof(err)),
	    -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "'dane'"));
	CU_ASSERT_STRING_EQUAL(relay_tls_policy_name(RELAY_TLS_VERIFY),
	    "verify");
}

static struct relay_routes *
table(void)
{
	static const struct relay_route_spec specs[] = {
		{ "example.net", "smtp:[10.0.0.5]:25", "verify", "/etc/a" },
		{ "*.example.net", "smtp:[10.0.0.6]:25", NULL, NULL },
		{ "*.deep.example.net", "smtp:[10.0.0.7]:25", "none", NULL },
		{ "*.net", "smtp:[10.0.0.8]:25", NULL, NULL },
		{ "Lists.Example.ORG.", "lmtp:unix:/run/lmtp", NULL, NULL },
		{ "bücher.example", "smtp:[10.0.0.9]:25", NULL, NULL },
		{ "*", "mx", "may", NULL },
	};
	struct relay_routes *t = relay_routes_create();
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		if (relay_routes_add(t, &specs[i], err, sizeof(err)) < 0)
			fprintf(stderr, "%s\n", err);
	}
	CU_ASSERT_EQUAL(relay_routes_count(t), 7);
	return t;
}

static const char *
match(struct relay_routes *t, const char *domain)
{
	const struct relay_route *r = relay_routes_match(t, domain);

	return r != NULL ? r->pattern : "(none)";
}

static void
test_match_order(void)
{
	struct relay_routes *t = table();
	const struct relay_route *r;

	/* Exact first, case-insensitive, trailing dot ignored. */
	CU_ASSERT_STRING_EQUAL(match(t, "example.net"), "example.net");
	CU_ASSERT_STRING_EQUAL(match(t, "EXAMPLE.Net."), "example.net");
	/* A wildcard matches below, not the name itself. */
	CU_ASSERT_STRING_EQUAL(match(t, "a.example.net"), "*.example.net");
	CU_ASSERT_STRING_EQUAL(match(t, "b.a.example.net"), "*.example.net");
	/* The longest suffix wins. */
	CU_ASSERT_STRING_EQUAL(match(t, "x.deep.example.net"),
	    "*.deep.example.net");
	CU_ASSERT_STRING_EQUAL(match(t, "deep.example.net"), "*.example.net");
	CU_ASSERT_STRING_EQUAL(match(t, "other.net"), "*.net");
	/* A suffix must start at a label. */
	CU_ASSERT_STRING_EQUAL(match(t, "badexample.net"), "*.net");
	CU_ASSERT_STRING_EQUAL(match(t, "net"), "*");
	/* Then the default. */
	CU_ASSERT_STRING_EQUAL(match(t, "example.com"), "*");
	CU_ASSERT_STRING_EQUAL(match(t, "lists.example.org"),
	    "lists.example.org");
	/* UTF-8 compared as given. */
	CU_ASSERT_STRING_EQUAL(match(t, "bücher.example"), "bücher.example");
	CU_ASSERT_STRING_EQUAL(match(t, "xn--bcher-kva.example"), "*");
	CU_ASSERT_STRING_EQUAL(match(t, ""), "*");

	r = relay_routes_match(t, "example.net");
	CU_ASSERT_EQUAL(r->tls, RELAY_TLS_VERIFY);
	CU_ASSERT_STRING_EQUAL(r->auth_file, "/etc/a");
	CU_ASSERT_EQUAL(r->via.kind, RELAY_VIA_SMTP);
	r = relay_routes_match(t, "a.example.net");
	CU_ASSERT_EQUAL(r->tls, RELAY_TLS_MAY);
	CU_ASSERT_PTR_NULL(r->auth_file);
	r = relay_routes_match(t, "x.deep.example.net");
	CU_ASSERT_EQUAL(r->tls, RELAY_TLS_NONE);
	r = relay_routes_match(t, "example.com");
	CU_ASSERT_EQUAL(r->via.kind, RELAY_VIA_MX);
	CU_ASSERT_STRING_EQUAL(relay_routes_get(t, 0)->pattern, "example.net");
	CU_ASSERT_PTR_NULL(relay_routes_get(t, 7));
	relay_routes_free(t);
}

static void
test_no_default(void)
{
	struct relay_routes *t = relay_routes_create();
	struct relay_route_spec s = { "*.example.net", "mx", NULL, NULL };

	CU_ASSERT_EQUAL(relay_routes_add(t, &s, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(relay_routes_match(t, "example.net"));
	CU_ASSERT_PTR_NULL(relay_routes_match(t, "example.org"));
	CU_ASSERT_PTR_NOT_NULL(relay_routes_match(t, "a.example.net"));
	relay_routes_free(t);
	relay_routes_free(NULL);
}

static void
bad_route(const char *domain, const char *via, const char *tls,
          const char *needle)
{
	struct relay_routes *t = relay_routes_create();
	struct relay_route_spec s = { "dup.example", "mx", NULL, NULL };
	struct relay_route_spec b = { domain, via, tls, NULL };

	CU_ASSERT_EQUAL(relay_routes_add(t, &s, err, sizeof(err)), 0);
	err[0] = '\0';
	CU_ASSERT_EQUAL(relay_routes_add(t, &b, err, sizeof(err)), -1);
	if (strstr(err, needle) == NULL)
		fprintf(stderr, "route '%s': error '%s' lacks '%s'\n", domain,
		    err, needle);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
	CU_ASSERT_EQUAL(relay_routes_count(t), 1);
	relay_routes_free(t);
}

static void
test_route_errors(void)
{
	bad_route("", "mx", NULL, "empty");
	bad_route("*.", "mx", NULL, "no name");
	bad_route("a.*.example", "mx", NULL, "'*'");
	bad_route("*example.net", "mx", NULL, "'*'");
	bad_route("a..b", "mx", NULL, "empty label");
	bad_route("a b", "mx", NULL, "bad character");
	bad_route("DUP.example", "mx", NULL, "twice");
	bad_route("ok.example", "bogus", NULL, "unknown kind");
	bad_route("ok.example", "mx", "sometimes", "'sometimes'");
	bad_route("ok.example", "lmtp:unix:/run/l", "verify", "unix socket");
}

static CU_TestInfo route_tests[] = {
	{ "via kinds", test_via_kinds },
	{ "via errors say what is wrong", test_via_errors },
	{ "via formatted back", test_via_format_roundtrip },
	{ "TLS policies", test_tls_policy },
	{ "exact, then wildcard (longest), then default", test_match_order },
	{ "no default route", test_no_default },
	{ "route errors", test_route_errors },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "relay_route", NULL, NULL, NULL, NULL, route_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
