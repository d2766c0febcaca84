/*
 * test_spf_macro.c - filter_spf's DNS-free parts (modules/filter_spf/
 * spf_macro.c): the macro examples of RFC 7208 section 7.4, macro
 * syntax errors, client addresses and CIDR matches, and the domain
 * checks of section 4.3.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <string.h>

#include "spf.h"
#include "unit.h"

static struct spf_macro_ctx ctx;

static void
ctx_v4(void)
{
	memset(&ctx, 0, sizeof(ctx));
	ctx.sender = "strong-bad@email.example.com";
	ctx.local = "strong-bad";
	ctx.sender_dom = "email.example.com";
	ctx.domain = "email.example.com";
	ctx.helo = "mx.example.org";
	ctx.receiver = "mx.example.net";
	ctx.now = 1234567890;
	CU_ASSERT_EQUAL_FATAL(spf_ip_parse("192.0.2.3", &ctx.ip), 0);
}

/* The expansion of `in` (or "<syntax>" / "<toolong>"). */
static const char *
expand(const char *in, int explain)
{
	static char out[512];
	int n = spf_macro_expand(&ctx, in, strlen(in), explain, out,
	                         sizeof(out));

	if (n == SPF_MACRO_SYNTAX)
		return "<syntax>";
	if (n == SPF_MACRO_TOOLONG)
		return "<toolong>";
	CU_ASSERT_EQUAL(strlen(out), (size_t)n);
	return out;
}

static void
test_rfc_examples(void)
{
	ctx_v4();
	CU_ASSERT_STRING_EQUAL(expand("%{s}", 0),
	                       "strong-bad@email.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{o}", 0), "email.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{d}", 0), "email.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{d4}", 0), "email.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{d3}", 0), "email.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{d2}", 0), "example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{d1}", 0), "com");
	CU_ASSERT_STRING_EQUAL(expand("%{dr}", 0), "com.example.email");
	CU_ASSERT_STRING_EQUAL(expand("%{d2r}", 0), "example.email");
	CU_ASSERT_STRING_EQUAL(expand("%{l}", 0), "strong-bad");
	CU_ASSERT_STRING_EQUAL(expand("%{l-}", 0), "strong.bad");
	CU_ASSERT_STRING_EQUAL(expand("%{lr}", 0), "strong-bad");
	CU_ASSERT_STRING_EQUAL(expand("%{lr-}", 0), "bad.strong");
	CU_ASSERT_STRING_EQUAL(expand("%{l1r-}", 0), "strong");
	CU_ASSERT_STRING_EQUAL(expand("%{ir}.%{v}._spf.%{d2}", 0),
	                       "3.2.0.192.in-addr._spf.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{lr-}.lp._spf.%{d2}", 0),
	                       "bad.strong.lp._spf.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", 0),
	                       "bad.strong.lp.3.2.0.192.in-addr._spf."
	                       "example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", 0),
	                       "3.2.0.192.in-addr.strong.lp._spf.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{d2}.trusted-domains.example.net", 0),
	                       "example.com.trusted-domains.example.net");
	CU_ASSERT_EQUAL_FATAL(spf_ip_parse("2001:db8::cb01", &ctx.ip), 0);
	CU_ASSERT_STRING_EQUAL(expand("%{ir}.%{v}._spf.%{d2}", 0),
	                       "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	                       "0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{c}", 1), "2001:db8::cb01");
}

static void
test_escapes_and_explain(void)
{
	ctx_v4();
	CU_ASSERT_STRING_EQUAL(expand("a%%b%_c%-d", 0), "a%b c%20d");
	/* Upper case: URL-escaped. */
	CU_ASSERT_STRING_EQUAL(expand("%{S}", 0),
	                       "strong-bad%40email.example.com");
	CU_ASSERT_STRING_EQUAL(expand("%{h}", 0), "mx.example.org");
	CU_ASSERT_STRING_EQUAL(expand("%{p}", 0), "unknown");
	ctx.ptr = "mail.example.com";
	CU_ASSERT_STRING_EQUAL(expand("%{p2}", 0), "example.com");
	/* c, r, t and spaces only in an explanation. */
	CU_ASSERT_STRING_EQUAL(expand("%{c} via %{r} at %{t}", 1),
	                       "192.0.2.3 via mx.example.net at 1234567890");
	CU_ASSERT_STRING_EQUAL(expand("%{c}", 0), "<syntax>");
	CU_ASSERT_STRING_EQUAL(expand("%{r}", 0), "<syntax>");
	CU_ASSERT_STRING_EQUAL(expand("%{t}", 0), "<syntax>");
	CU_ASSERT_STRING_EQUAL(expand("a b", 0), "<syntax>");
	/* Several delimiters at once. */
	ctx.local = "a.b-c+d";
	CU_ASSERT_STRING_EQUAL(expand("%{l-+}", 0), "a.b.c.d");
	CU_ASSERT_STRING_EQUAL(expand("%{l2r.-+}", 0), "b.a");
}

static void
test_syntax_errors(void)
{
	static const char *const bad[] = {
		"%", "%a", "%{", "%{d", "%{x}", "%{d0}", "%{dq}", "%{}",
		"%{d2r2}", "%{ d}", "a%{d}%", NULL,
	};
	char out[16];
	size_t i;

	ctx_v4();
	for (i = 0; bad[i] != NULL; i++)
		CU_ASSERT_STRING_EQUAL(expand(bad[i], 0), "<syntax>");
	/* Too long for the buffer: not a syntax error. */
	CU_ASSERT_EQUAL(spf_macro_expand(&ctx, "%{s}", 4, 0, out,
	                                 sizeof(out)), SPF_MACRO_TOOLONG);
	CU_ASSERT(spf_macro_uses_p("x.%{p}.y", 8));
	CU_ASSERT(spf_macro_uses_p("%{P2}", 5));
	CU_ASSERT(!spf_macro_uses_p("%%{p}", 5));
	CU_ASSERT(!spf_macro_uses_p("%{d}.p", 6));
}

static void
test_addresses(void)
{
	struct spf_ip ip;
	unsigned char net[16];

	CU_ASSERT_EQUAL(spf_ip_parse("::ffff:192.0.2.9", &ip), 0);
	CU_ASSERT_EQUAL(ip.family, AF_INET);
	CU_ASSERT_EQUAL(ip.addr[3], 9);
	CU_ASSERT_EQUAL(spf_ip_parse("unix", &ip), -1);
	CU_ASSERT_EQUAL(spf_ip_parse("192.0.2.200", &ip), 0);
	inet_pton(AF_INET, "192.0.2.128", net);
	CU_ASSERT(spf_ip_match(&ip, net, AF_INET, 25));
	CU_ASSERT(!spf_ip_match(&ip, net, AF_INET, 32));
	CU_ASSERT(spf_ip_match(&ip, net, AF_INET, 0));
	CU_ASSERT(!spf_ip_match(&ip, net, AF_INET6, 0));
	CU_ASSERT(!spf_ip_match(&ip, net, AF_INET, 33));
	CU_ASSERT_EQUAL(spf_ip_parse("2001:db8::1", &ip), 0);
	inet_pton(AF_INET6, "2001:db8:0:0:8000::", net);
	CU_ASSERT(spf_ip_match(&ip, net, AF_INET6, 64));
	CU_ASSERT(!spf_ip_match(&ip, net, AF_INET6, 65));
}

static void
test_domains(void)
{
	char name[300];

	CU_ASSERT(spf_domain_valid("example.com"));
	CU_ASSERT(spf_domain_valid("example.com."));
	CU_ASSERT(!spf_domain_valid("localhost"));
	CU_ASSERT(!spf_domain_valid("a..example"));
	CU_ASSERT(!spf_domain_valid(".example.com"));
	CU_ASSERT(!spf_domain_valid(""));
	CU_ASSERT(!spf_domain_valid("a b.example"));
	memset(name, 'a', 64);
	strcpy(name + 64, ".example");
	CU_ASSERT(!spf_domain_valid(name));
	name[1] = '.';
	CU_ASSERT(spf_domain_valid(name));
	/* Over 253 octets: labels go from the left. */
	memset(name, 'b', 299);
	name[299] = '\0';
	for (int i = 50; i < 299; i += 50)
		name[i] = '.';
	CU_ASSERT(strlen(spf_domain_truncate(name)) <= 253);
	CU_ASSERT_EQUAL(spf_domain_truncate(name), name + 51);
}

static CU_TestInfo spf_tests[] = {
	{ "RFC 7208 7.4 examples", test_rfc_examples },
	{ "escapes, URL encoding, explain-only letters",
	  test_escapes_and_explain },
	{ "macro syntax errors", test_syntax_errors },
	{ "addresses and CIDR", test_addresses },
	{ "domain checks and truncation", test_domains },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "spf_macro", NULL, NULL, NULL, NULL, spf_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
