/*
 * test_smtp_parser.c - the SMTP command parser (modules/smtp/
 * smtp_parser.c): verbs, paths (quoted local parts, source routes,
 * address literals, UTF-8), ESMTP parameters (SIZE, BODY, SMTPUTF8, DSN
 * with xtext, AUTH=), BDAT and AUTH arguments, and the limits.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "smtp_parser.h"

static const struct smtp_param_policy all = { .utf8 = 1, .dsn = 1 };
static const struct smtp_param_policy bare = { 0 };

static int
mail(const char *arg, const struct smtp_param_policy *pol,
     struct smtp_mail_args *out, struct smtp_error *err)
{
	return smtp_parse_mail(arg, strlen(arg), pol, out, err);
}

static int
rcpt(const char *arg, int utf8, struct smtp_rcpt_args *out,
     struct smtp_error *err)
{
	return smtp_parse_rcpt(arg, strlen(arg), &all, utf8, out, err);
}

static void
test_verbs(void)
{
	struct smtp_command c;
	struct smtp_error e;

	CU_ASSERT_EQUAL(smtp_parse_command("ehlo x.org", 10, &c, &e), 0);
	CU_ASSERT_EQUAL(c.verb, SMTP_VERB_EHLO);
	CU_ASSERT_EQUAL(c.arg_len, 5);
	CU_ASSERT_EQUAL(memcmp(c.arg, "x.org", 5), 0);
	CU_ASSERT_EQUAL(smtp_parse_command("QUIT", 4, &c, &e), 0);
	CU_ASSERT_EQUAL(c.verb, SMTP_VERB_QUIT);
	CU_ASSERT_EQUAL(c.arg_len, 0);
	CU_ASSERT_EQUAL(smtp_parse_command("StartTLS  ", 10, &c, &e), 0);
	CU_ASSERT_EQUAL(c.verb, SMTP_VERB_STARTTLS);
	CU_ASSERT_EQUAL(c.arg_len, 0);
	CU_ASSERT_EQUAL(smtp_parse_command("MAILX FROM:<>", 13, &c, &e), -1);
	CU_ASSERT_EQUAL(e.code, 500);
	CU_ASSERT_EQUAL(smtp_parse_command("", 0, &c, &e), -1);
	CU_ASSERT_EQUAL(smtp_parse_command("BDAT 10 LAST", 12, &c, &e), 0);
	CU_ASSERT_EQUAL(c.verb, SMTP_VERB_BDAT);
}

static void
test_mail_paths(void)
{
	struct smtp_mail_args m;
	struct smtp_error e;

	CU_ASSERT_EQUAL(mail("FROM:<alice@example.org>", &bare, &m, &e), 0);
	CU_ASSERT_STRING_EQUAL(m.sender, "alice@example.org");
	CU_ASSERT_EQUAL(mail("from:<>", &bare, &m, &e), 0);
	CU_ASSERT_STRING_EQUAL(m.sender, "");
	/* A space after the colon: tolerated as every MTA does. */
	CU_ASSERT_EQUAL(mail("FROM: <a@b.c>", &bare, &m, &e), 0);
	CU_ASSERT_STRING_EQUAL(m.sender, "a@b.c");
	CU_ASSERT_EQUAL(mail("FROM:<\"john doe\"@example.org>", &bare, &m, &e),
	                0);
	CU_ASSERT_STRING_EQUAL(m.sender, "\"john doe\"@example.org");
	CU_ASSERT_EQUAL(mail("FROM:<\"a\\\"b\"@example.org>", &bare, &m, &e),
	                0);
	/* A source route is accepted and dropped. */
	CU_ASSERT_EQUAL(mail("FROM:<@relay.org,@b.org:x@y.org>", &bare, &m, &e),
	                0);
	CU_ASSERT_STRING_EQUAL(m.sender, "x@y.org");
	CU_ASSERT_EQUAL(mail("FROM:<x@[192.0.2.1]>", &bare, &m, &e), 0);
	CU_ASSERT_EQUAL(mail("FROM:<x@[IPv6:2001:db8::1]>", &bare, &m, &e), 0);
	/* Malformed ones. */
	CU_ASSERT_EQUAL(mail("FROM:alice@example.org", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(e.code, 501);
	CU_ASSERT_STRING_EQUAL(e.enhanced, "5.1.7");
	CU_ASSERT_EQUAL(mail("FROM:<alice>", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a..b@example.org>", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<.a@example.org>", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@-x.org>", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@x-.org>", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@x..org>", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a b@x.org>", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@x.org", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@x.org>junk", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("TO:<a@x.org>", &bare, &m, &e), -1);
}

static void
test_path_limits(void)
{
	struct smtp_mail_args m;
	struct smtp_error e;
	char buf[600];

	/* Local part: 64 octets allowed, 65 not. */
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "FROM:<");
	memset(buf + 6, 'a', 64);
	strcat(buf, "@x.org>");
	CU_ASSERT_EQUAL(mail(buf, &bare, &m, &e), 0);
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "FROM:<");
	memset(buf + 6, 'a', 65);
	strcat(buf, "@x.org>");
	CU_ASSERT_EQUAL(mail(buf, &bare, &m, &e), -1);
	/* A path of 256 octets with its brackets is the most. */
	for (int d = 61; d <= 62; d++) {
		char *p = buf;

		memset(buf, 0, sizeof(buf));
		p += sprintf(p, "FROM:<");
		memset(p, 'a', 64);
		p += 64;
		*p++ = '@';
		memset(p, 'b', 63);
		p += 63;
		*p++ = '.';
		memset(p, 'c', 63);
		p += 63;
		*p++ = '.';
		memset(p, 'd', (size_t)d);
		p += d;
		*p++ = '>';
		CU_ASSERT_EQUAL(mail(buf, &bare, &m, &e), d == 61 ? 0 : -1);
	}
	/* A domain label is 63 octets at most. */
	memset(buf, 0, sizeof(buf));
	strcpy(buf, "FROM:<a@");
	memset(buf + 8, 'b', 64);
	strcat(buf, ".org>");
	CU_ASSERT_EQUAL(mail(buf, &bare, &m, &e), -1);
}

static void
test_mail_params(void)
{
	struct smtp_mail_args m;
	struct smtp_error e;

	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> SIZE=12345 BODY=8BITMIME", &all, &m,
	                     &e), 0);
	CU_ASSERT_EQUAL(m.size, 12345);
	CU_ASSERT_EQUAL(m.body, POSTERN_BODY_8BITMIME);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> body=7bit", &all, &m, &e), 0);
	CU_ASSERT_EQUAL(m.body, POSTERN_BODY_7BIT);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> BODY=BINARYMIME", &all, &m, &e), -1);
	CU_ASSERT_EQUAL(e.code, 555);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> SIZE=", &all, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> SIZE=12x", &all, &m, &e), -1);
	CU_ASSERT_EQUAL(e.code, 501);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> SIZE=99999999999999999999999", &all,
	                     &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> FOO=bar", &all, &m, &e), -1);
	CU_ASSERT_EQUAL(e.code, 555);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> RET=HDRS ENVID=QQ+2B314", &all, &m,
	                     &e), 0);
	CU_ASSERT_EQUAL(m.ret, POSTERN_DSN_RET_HDRS);
	CU_ASSERT_STRING_EQUAL(m.envid, "QQ+314");
	/* DSN not offered: its parameters are unknown. */
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> RET=FULL", &bare, &m, &e), -1);
	CU_ASSERT_EQUAL(e.code, 555);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> ENVID=a+zz", &all, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> AUTH=<>", &all, &m, &e), 0);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> AUTH=alice+40example.org", &all, &m,
	                     &e), 0);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c>  SIZE=1", &all, &m, &e), 0);
}

static void
test_smtputf8(void)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	struct smtp_error e;

	CU_ASSERT_EQUAL(mail("FROM:<j\xc3\xb8rgen@b\xc3\xa6r.example> SMTPUTF8",
	                     &all, &m, &e), 0);
	CU_ASSERT_EQUAL(m.smtputf8, 1);
	/* Without the parameter, a UTF-8 address is refused with 553. */
	CU_ASSERT_EQUAL(mail("FROM:<j\xc3\xb8rgen@b.example>", &all, &m, &e),
	                -1);
	CU_ASSERT_EQUAL(e.code, 553);
	/* Not offered at all: the address is a syntax error. */
	CU_ASSERT_EQUAL(mail("FROM:<j\xc3\xb8rgen@b.example>", &bare, &m, &e),
	                -1);
	CU_ASSERT_EQUAL(mail("FROM:<a@b.c> SMTPUTF8", &bare, &m, &e), -1);
	/* Broken UTF-8: overlong, lone continuation, surrogate. */
	CU_ASSERT_EQUAL(mail("FROM:<\xc0\xafx@b.c> SMTPUTF8", &all, &m, &e),
	                -1);
	CU_ASSERT_EQUAL(mail("FROM:<\x80x@b.c> SMTPUTF8", &all, &m, &e), -1);
	CU_ASSERT_EQUAL(mail("FROM:<\xed\xa0\x80x@b.c> SMTPUTF8", &all, &m,
	                     &e), -1);
	CU_ASSERT_EQUAL(rcpt("TO:<\xe7\x94\xa8\xe6\x88\xb7@example.org>", 1, &r,
	                     &e), 0);
	CU_ASSERT_EQUAL(rcpt("TO:<\xe7\x94\xa8\xe6\x88\xb7@example.org>", 0, &r,
	                     &e), -1);
	CU_ASSERT_EQUAL(e.code, 553);
	CU_ASSERT_EQUAL(smtp_utf8_valid((const unsigned char *)"ok", 2), 1);
	CU_ASSERT_EQUAL(smtp_utf8_valid((const unsigned char *)"\x01", 1), 0);
}

static void
test_rcpt(void)
{
	struct smtp_rcpt_args r;
	struct smtp_error e;

	CU_ASSERT_EQUAL(rcpt("TO:<bob@example.org>", 0, &r, &e), 0);
	CU_ASSERT_STRING_EQUAL(r.address, "bob@example.org");
	CU_ASSERT_EQUAL(rcpt("To:<Postmaster>", 0, &r, &e), 0);
	CU_ASSERT_EQUAL(r.postmaster, 1);
	CU_ASSERT_EQUAL(rcpt("TO:<>", 0, &r, &e), -1);
	CU_ASSERT_EQUAL(e.code, 501);
	CU_ASSERT_STRING_EQUAL(e.enhanced, "5.1.3");
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> NOTIFY=SUCCESS,FAILURE "
	                     "ORCPT=rfc822;bob+40x.org", 0, &r, &e), 0);
	CU_ASSERT_EQUAL(r.notify,
	                POSTERN_DSN_NOTIFY_SUCCESS | POSTERN_DSN_NOTIFY_FAILURE);
	CU_ASSERT_STRING_EQUAL(r.orcpt, "rfc822;bob@x.org");
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> NOTIFY=NEVER", 0, &r, &e), 0);
	CU_ASSERT_EQUAL(r.notify, POSTERN_DSN_NOTIFY_NEVER);
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> NOTIFY=NEVER,DELAY", 0, &r, &e),
	                -1);
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> NOTIFY=SUCCESS,SUCCESS", 0, &r,
	                     &e), -1);
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> NOTIFY=", 0, &r, &e), -1);
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> NOTIFY=SUCCESS,", 0, &r, &e), -1);
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> ORCPT=bob@x.org", 0, &r, &e), -1);
	CU_ASSERT_EQUAL(rcpt("TO:<bob@x.org> X=1", 0, &r, &e), -1);
	CU_ASSERT_EQUAL(e.code, 555);
}

static void
test_xtext(void)
{
	char out[16];

	CU_ASSERT_EQUAL(smtp_xtext_decode("a+2Bb", 5, out, sizeof(out)), 3);
	CU_ASSERT_STRING_EQUAL(out, "a+b");
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+2", 3, out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+2b", 4, out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("a=b", 3, out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("0123456789abcdef", 16, out,
	                                  sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("", 0, out, sizeof(out)), 0);
	/* RFC 3461 4: what an escape decodes to is printable US-ASCII. */
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+3Db", 5, out, sizeof(out)), 3);
	CU_ASSERT_STRING_EQUAL(out, "a=b");
	CU_ASSERT_EQUAL(smtp_xtext_decode("+21+7E", 6, out, sizeof(out)), 2);
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+20b", 5, out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+0Db", 5, out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+00b", 5, out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+7Fb", 5, out, sizeof(out)), -1);
	CU_ASSERT_EQUAL(smtp_xtext_decode("a+80b", 5, out, sizeof(out)), -1);
}

/* RFC 4468 3.5: "BURL" SP absolute-URI [SP end-marker]. */
static void
test_burl_args(void)
{
	static const char *const bad[] = {
		"", " LAST", "LAST", "imap", "1map://x", "im_ap://x", ":x",
		"imap://x LAST LAST", "imap://x last2", "imap://x  LAST",
		"imap://x\x01", "imap://\xc3\xa7", "imap://x NOTLAST",
	};
	struct smtp_error e;
	struct smtp_command c;
	size_t n, i;
	int last;
	const char *url = "imap://alice@h/Drafts;UID=3;URLAUTH=submit+alice"
	                  ":INTERNAL:0123456789abcdef0123456789abcdef01234567";
	char line[256];

	CU_ASSERT_EQUAL(smtp_parse_burl(url, strlen(url), &n, &last, &e), 0);
	CU_ASSERT_EQUAL(n, strlen(url));
	CU_ASSERT_EQUAL(last, 0);
	snprintf(line, sizeof(line), "%s last", url);
	CU_ASSERT_EQUAL(smtp_parse_burl(line, strlen(line), &n, &last, &e), 0);
	CU_ASSERT_EQUAL(n, strlen(url));
	CU_ASSERT_EQUAL(last, 1);
	/* Any scheme parses: what does not resolve gets 554 later. */
	CU_ASSERT_EQUAL(smtp_parse_burl("http://example.com/", 19, &n, &last,
	                                &e), 0);
	CU_ASSERT_EQUAL(smtp_parse_burl("x+1.-y:z LAST", 13, &n, &last, &e),
	                0);
	CU_ASSERT_EQUAL(n, 8);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = smtp_parse_burl(bad[i], strlen(bad[i]), &n, &last,
		                         &e);

		if (rc != -1)
			fprintf(stderr, "BURL %s parsed\n", bad[i]);
		CU_ASSERT_EQUAL(rc, -1);
		CU_ASSERT_EQUAL(e.code, 501);
	}
	/* NUL inside the URL */
	CU_ASSERT_EQUAL(smtp_parse_burl("imap://a\0b", 10, &n, &last, &e), -1);
	CU_ASSERT_EQUAL(smtp_parse_command("burl imap://x LAST", 18, &c, &e),
	                0);
	CU_ASSERT_EQUAL(c.verb, SMTP_VERB_BURL);
	CU_ASSERT_EQUAL(c.arg_len, 13);
}

static void
test_helo_bdat_auth(void)
{
	struct smtp_error e;
	char name[300], mech[32];
	uint64_t size;
	int last;
	const char *ir;
	size_t irlen;

	CU_ASSERT_EQUAL(smtp_parse_helo("mail.example.org", 16, name,
	                                sizeof(name), &e), 0);
	CU_ASSERT_STRING_EQUAL(name, "mail.example.org");
	CU_ASSERT_EQUAL(smtp_parse_helo("[192.0.2.1]", 11, name, sizeof(name),
	                                &e), 0);
	CU_ASSERT_EQUAL(smtp_parse_helo("", 0, name, sizeof(name), &e), -1);
	CU_ASSERT_EQUAL(smtp_parse_helo("bad_name!", 9, name, sizeof(name),
	                                &e), -1);
	CU_ASSERT_EQUAL(smtp_parse_bdat("100 LAST", 8, &size, &last, &e), 0);
	CU_ASSERT_EQUAL(size, 100);
	CU_ASSERT_EQUAL(last, 1);
	CU_ASSERT_EQUAL(smtp_parse_bdat("0", 1, &size, &last, &e), 0);
	CU_ASSERT_EQUAL(last, 0);
	CU_ASSERT_EQUAL(smtp_parse_bdat("x", 1, &size, &last, &e), -1);
	CU_ASSERT_EQUAL(smtp_parse_bdat("10 FIRST", 8, &size, &last, &e), -1);
	test_burl_args();
	CU_ASSERT_EQUAL(smtp_parse_auth("plain AHVAcA==", 14, mech,
	                                sizeof(mech), &ir, &irlen, &e), 0);
	CU_ASSERT_STRING_EQUAL(mech, "PLAIN");
	CU_ASSERT_EQUAL(irlen, 8);
	CU_ASSERT_EQUAL(smtp_parse_auth("LOGIN", 5, mech, sizeof(mech), &ir,
	                                &irlen, &e), 0);
	CU_ASSERT_PTR_NULL(ir);
	CU_ASSERT_EQUAL(smtp_parse_auth("", 0, mech, sizeof(mech), &ir, &irlen,
	                                &e), -1);
	CU_ASSERT_EQUAL(smtp_parse_auth("PLAIN a b", 9, mech, sizeof(mech),
	                                &ir, &irlen, &e), -1);
}

static void
test_address_split(void)
{
	size_t n;
	const char *d;

	smtp_address_split("bob@example.org", &n, &d);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_STRING_EQUAL(d, "example.org");
	smtp_address_split("\"a@b\"@example.org", &n, &d);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_STRING_EQUAL(d, "example.org");
	smtp_address_split("postmaster", &n, &d);
	CU_ASSERT_PTR_NULL(d);
}

static CU_TestInfo parser_tests[] = {
	{ "verbs", test_verbs },
	{ "MAIL paths", test_mail_paths },
	{ "path limits", test_path_limits },
	{ "MAIL parameters", test_mail_params },
	{ "SMTPUTF8 addresses", test_smtputf8 },
	{ "RCPT and DSN", test_rcpt },
	{ "xtext", test_xtext },
	{ "HELO, BDAT, AUTH arguments", test_helo_bdat_auth },
	{ "address split", test_address_split },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "smtp_parser", NULL, NULL, NULL, NULL, parser_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
