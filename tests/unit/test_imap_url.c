/*
 * test_imap_url.c - IMAP URLs as CATENATE takes them (imap_url.c, RFC
 * 5092): every form, percent escapes, keywords in any case, and what
 * must be refused (other users and hosts, URLAUTH, broken escapes, NUL,
 * numbers out of range, sections a URL may not name here); HEADER.FIELDS
 * (.NOT) lists (percent-escaped, any case, quoted names, the limit of
 * names, hostile lists); the
 * URLAUTH form (RFC 4467, RFC 5092 authimapurl) and its INTERNAL
 * tokens (imap_urlauth_token.c) against RFC 2202's HMAC-SHA1 vectors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "host.h"
#include "pool.h"
#include "imap_url.h"

const struct postern_host *imap_host;
postern_module_t *imap_self;
struct imap_settings imap_cfg;
const struct postern_storage *imap_storage;

static postern_pool_t *pool;

static int
suite_init(void)
{
	imap_host = host_table();
	pool = imap_host->pool_create(4096);
	return pool == NULL;
}

static int
suite_clean(void)
{
	imap_host->pool_destroy(pool);
	return 0;
}

static int
parse(struct imap_url *u, const char *url, int selected)
{
	return imap_url_parse(u, url, strlen(url), "alice@example.org",
	                      selected, pool);
}

static void
test_forms(void)
{
	struct imap_url u;
	char url[512], host[256];

	CU_ASSERT_EQUAL(parse(&u, "/INBOX/;UID=20", 0), 0);
	CU_ASSERT_STRING_EQUAL(u.mailbox, "INBOX");
	CU_ASSERT_EQUAL(u.uid, 20);
	CU_ASSERT_EQUAL(u.uidvalidity, 0);
	CU_ASSERT_EQUAL(u.has_section, 0);
	CU_ASSERT_EQUAL(u.partial, 0);

	CU_ASSERT_EQUAL(parse(&u, "/Caf%C3%A9%20Box;uidvalidity=77/;uid=3"
	                      "/;section=1.2.MIME/;partial=10.5", 0), 0);
	CU_ASSERT_STRING_EQUAL(u.mailbox, "Caf\xc3\xa9 Box");
	CU_ASSERT_EQUAL(u.uidvalidity, 77);
	CU_ASSERT_EQUAL(u.uid, 3);
	CU_ASSERT_EQUAL(u.nparts, 2);
	CU_ASSERT_EQUAL(u.parts[1], 2);
	CU_ASSERT_EQUAL(u.what, IMAP_SECTION_MIME);
	CU_ASSERT(u.partial && u.pstart == 10 && u.plen == 5);

	CU_ASSERT_EQUAL(parse(&u, "/a/b/;UID=1/;SECTION=HEADER", 0), 0);
	CU_ASSERT_STRING_EQUAL(u.mailbox, "a/b");
	CU_ASSERT_EQUAL(u.what, IMAP_SECTION_HEADER);
	CU_ASSERT_EQUAL(parse(&u, "/a/;UID=1/;SECTION=2.text/;PARTIAL=0", 0),
	                0);
	CU_ASSERT(u.what == IMAP_SECTION_TEXT && u.nparts == 1);
	CU_ASSERT(u.partial && u.pstart == 0 && u.plen == UINT32_MAX);

	/* the selected mailbox */
	CU_ASSERT_EQUAL(parse(&u, ";UID=9", 1), 0);
	CU_ASSERT_PTR_NULL(u.mailbox);
	CU_ASSERT_EQUAL(parse(&u, ";UID=9", 0), -1);

	/* absolute: this user (";AUTH=" ignored) on this host */
	CU_ASSERT_EQUAL(parse(&u, "imap://localhost/INBOX/;UID=1", 0), 0);
	CU_ASSERT_EQUAL(parse(&u, "IMAP://alice%40example.org;AUTH=*@"
	                      "127.0.0.1:143/INBOX/;UID=1", 0), 0);
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		snprintf(url, sizeof(url), "imap://%s/INBOX/;UID=1", host);
		CU_ASSERT_EQUAL(parse(&u, url, 0), 0);
	}
}

static void
test_refused(void)
{
	static const char *const bad[] = {
		"imap://bob%40example.org@localhost/INBOX/;UID=1",
		"imap://mail.example.com/INBOX/;UID=1",
		"imap://localhost",
		"/INBOX/;UID=1;URLAUTH=anonymous:internal:91354a",
		"/INBOX;UIDVALIDITY=0/;UID=1",
		"/INBOX/;UID=0",
		"/INBOX/;UID=4294967296",
		"/INBOX/;UID=99999999999999999999",
		"/INBOX/;UID=x",
		"/INBOX",
		"/INBOX/",
		"/;UID=1",
		"/IN%0BOX%/;UID=1",
		"/IN%zzBOX/;UID=1",
		"/IN%00BOX/;UID=1",
		"/INBOX/;UID=1/;SECTION=1.",
		"/INBOX/;UID=1/;SECTION=MIME",
		"/INBOX/;UID=1/;SECTION=",
		"/INBOX/;UID=1/;PARTIAL=1.0",
		"/INBOX/;UID=1/;PARTIAL=a",
		"/INBOX/;UID=1/;SECTION=1/x",
		"/INBOX/;UID=1 ",
		"http://example.com/",
		"",
	};
	struct imap_url u;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u.error = NULL;
		if (parse(&u, bad[i], 1) != -1 || u.error == NULL)
			printf("\n  accepted: %s\n", bad[i]);
		CU_ASSERT_EQUAL(parse(&u, bad[i], 1), -1);
		CU_ASSERT_PTR_NOT_NULL(u.error);
	}
	/* a NUL inside the given length */
	CU_ASSERT_EQUAL(imap_url_parse(&u, "/INBOX/;UID=1\0x", 15,
	                               "alice@example.org", 0, pool), -1);
}

/* HEADER.FIELDS (.NOT): RFC 5092's isection is RFC 3501's section,
 * percent-encoded or (in a quoted URL) with plain spaces. */
static void
test_header_fields(void)
{
	struct imap_url u;
	char url[4096];
	size_t i, n;

	CU_ASSERT_EQUAL(parse(&u, "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20"
	                      "(SUBJECT%20From)", 0), 0);
	CU_ASSERT(u.has_section && u.nparts == 0);
	CU_ASSERT_EQUAL(u.what, IMAP_SECTION_HEADER);
	CU_ASSERT_EQUAL(u.fields.which, 1);
	CU_ASSERT_EQUAL(u.fields.nnames, 2);
	CU_ASSERT_STRING_EQUAL(u.fields.names[0], "SUBJECT");
	CU_ASSERT_STRING_EQUAL(u.fields.names[1], "From");
	CU_ASSERT_EQUAL(u.partial, 0);

	/* any case, .NOT, after part numbers, plain spaces, a PARTIAL */
	CU_ASSERT_EQUAL(parse(&u, "/INBOX/;uid=1/;section=2.3.header.fields"
	                      ".not (x-a]b)/;partial=3.4", 0), 0);
	CU_ASSERT(u.nparts == 2 && u.parts[0] == 2 && u.parts[1] == 3);
	CU_ASSERT_EQUAL(u.fields.which, 2);
	CU_ASSERT_EQUAL(u.fields.nnames, 1);
	CU_ASSERT_STRING_EQUAL(u.fields.names[0], "x-a]b");
	CU_ASSERT(u.partial && u.pstart == 3 && u.plen == 4);

	/* quoted names (%22), with escapes; a "/" (a bchar) in a name */
	CU_ASSERT_EQUAL(parse(&u, "/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20("
	                      "%22To%22%20%22a%5C%22b%22%20x/y)", 0), 0);
	CU_ASSERT_EQUAL(u.fields.nnames, 3);
	CU_ASSERT_STRING_EQUAL(u.fields.names[0], "To");
	CU_ASSERT_STRING_EQUAL(u.fields.names[1], "a\"b");
	CU_ASSERT_STRING_EQUAL(u.fields.names[2], "x/y");

	/* the URLAUTH form: the list ends at ";URLAUTH=" */
	CU_ASSERT_EQUAL(imap_url_parse_auth(&u, "imap://alice@localhost/INBOX"
	                                    "/;UID=1/;SECTION=HEADER.FIELDS"
	                                    "%20(From);URLAUTH=authuser",
	                                    strlen("imap://alice@localhost/"
	                                           "INBOX/;UID=1/;SECTION="
	                                           "HEADER.FIELDS%20(From);"
	                                           "URLAUTH=authuser"),
	                                    pool), 0);
	CU_ASSERT(u.fields.which == 1 && u.fields.nnames == 1);
	CU_ASSERT_EQUAL(u.access, IMAP_URL_ACCESS_AUTHUSER);

	/* IMAP_FIELDS_MAX names, as FETCH takes; one more is refused */
	for (n = 0; n < 2; n++) {
		i = (size_t)snprintf(url, sizeof(url), "/INBOX/;UID=1/;SECTION="
		                     "HEADER.FIELDS%%20(");
		for (size_t k = 0; k < IMAP_FIELDS_MAX + n; k++)
			i += (size_t)snprintf(url + i, sizeof(url) - i, "%sF%zu",
			                      k > 0 ? "%20" : "", k);
		snprintf(url + i, sizeof(url) - i, ")");
		CU_ASSERT_EQUAL(parse(&u, url, 0), n == 0 ? 0 : -1);
		if (n == 0)
			CU_ASSERT_EQUAL(u.fields.nnames, IMAP_FIELDS_MAX);
	}
	/* a huge list is refused at the limit, not read to its end */
	{
		size_t len = 1 << 20;
		char *big = malloc(len + 64);

		i = (size_t)snprintf(big, 64, "/INBOX/;UID=1/;SECTION="
		                     "HEADER.FIELDS (");
		while (i + 4 < len) {
			memcpy(big + i, "A%20", 4);
			i += 4;
		}
		memcpy(big + i, "A)", 3);
		u.error = NULL;
		CU_ASSERT_EQUAL(parse(&u, big, 0), -1);
		CU_ASSERT_PTR_NOT_NULL(u.error);
		free(big);
	}
}

static void
test_header_fields_refused(void)
{
	static const char *const bad[] = {
		"HEADER.FIELDS",
		"HEADER.FIELDS%20",
		"HEADER.FIELDS%20(",
		"HEADER.FIELDS%20()",
		"HEADER.FIELDS%20(From",
		"HEADER.FIELDS%20From)",
		"HEADER.FIELDS%20((From))",
		"HEADER.FIELDS%20(From))",
		"HEADER.FIELDS%20(From%20)",
		"HEADER.FIELDS%20(%20From)",
		"HEADER.FIELDS%20(From%20%20To)",
		"HEADER.FIELDS%20(From)x",
		"HEADER.FIELDS%20(From)%20",
		"HEADER.FIELDS(From)",
		"HEADER.FIELDS%09(From)",
		"HEADER.FIELDS%20(Fr%7Bom)",
		"HEADER.FIELDS%20(Fr*om)",
		"HEADER.FIELDS%20(Fr%25om)",
		"HEADER.FIELDS%20(%22From)",
		"HEADER.FIELDS%20(%22%22)",
		"HEADER.FIELDS%20(%22a%0Db%22)",
		"HEADER.FIELDS%20(%22a%5Cb%22)",
		"HEADER.FIELDS%20(%22a%C3%A9%22)",
		"HEADER.FIELDS%20(a%C3%A9)",
		"HEADER.FIELDS%20(a%00)",
		"HEADER.FIELDS%20(a%2)",
		"HEADER.FIELDS.NOTX%20(From)",
		"HEADER.FIELDSX%20(From)",
		"1.HEADER.FIELDS.%20(From)",
		"1..HEADER.FIELDS%20(From)",
		"MIME.FIELDS%20(From)",
	};
	struct imap_url u;
	char url[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(url, sizeof(url), "/INBOX/;UID=1/;SECTION=%s", bad[i]);
		u.error = NULL;
		if (parse(&u, url, 0) != -1 || u.error == NULL)
			printf("\n  accepted: %s\n", url);
		CU_ASSERT_EQUAL(parse(&u, url, 0), -1);
		CU_ASSERT_PTR_NOT_NULL(u.error);
	}
}

static int
parse_auth(struct imap_url *u, const char *url)
{
	return imap_url_parse_auth(u, url, strlen(url), pool);
}

static void
test_auth_forms(void)
{
	static const char rump[] = "imap://joe@localhost/INBOX;UIDVALIDITY="
	                           "385759045/;UID=20/;SECTION=1.2;EXPIRE="
	                           "2026-12-06T01:02:03Z;URLAUTH=user+fred";
	char url[512];
	struct imap_url u;

	CU_ASSERT_EQUAL(parse_auth(&u, rump), 0);
	CU_ASSERT_STRING_EQUAL(u.owner, "joe");
	CU_ASSERT_STRING_EQUAL(u.mailbox, "INBOX");
	CU_ASSERT_EQUAL(u.uidvalidity, 385759045);
	CU_ASSERT_EQUAL(u.uid, 20);
	CU_ASSERT(u.has_section && u.nparts == 2 && u.parts[1] == 2);
	CU_ASSERT_EQUAL(u.expire, 1796518923); /* date -d ... +%s */
	CU_ASSERT_EQUAL(u.access, IMAP_URL_ACCESS_USER);
	CU_ASSERT_STRING_EQUAL(u.access_user, "fred");
	CU_ASSERT_EQUAL(u.rump_len, strlen(rump));
	CU_ASSERT_PTR_NULL(u.mech);

	snprintf(url, sizeof(url), "%s:INTERNAL:"
	         "91354a473744909de610943775f92038", rump);
	CU_ASSERT_EQUAL(parse_auth(&u, url), 0);
	CU_ASSERT_EQUAL(u.rump_len, strlen(rump));
	CU_ASSERT_STRING_EQUAL(u.mech, "INTERNAL");
	CU_ASSERT_STRING_EQUAL(u.token, "91354a473744909de610943775f92038");

	CU_ASSERT_EQUAL(parse_auth(&u, "imap://a%40b.org@localhost/Box/;uid=3"
	                           "/;partial=5.10;urlauth=ANONYMOUS"), 0);
	CU_ASSERT_STRING_EQUAL(u.owner, "a@b.org");
	CU_ASSERT(u.partial && u.pstart == 5 && u.plen == 10);
	CU_ASSERT_EQUAL(u.access, IMAP_URL_ACCESS_ANONYMOUS);
	CU_ASSERT_EQUAL(parse_auth(&u, "imap://a@localhost/Box/;UID=3;"
	                           "URLAUTH=authuser"), 0);
	CU_ASSERT_EQUAL(u.access, IMAP_URL_ACCESS_AUTHUSER);
	CU_ASSERT_EQUAL(parse_auth(&u, "imap://a@localhost/Box/;UID=3;"
	                           "URLAUTH=submit+a%40b.org"), 0);
	CU_ASSERT_EQUAL(u.access, IMAP_URL_ACCESS_SUBMIT);
	CU_ASSERT_STRING_EQUAL(u.access_user, "a@b.org");
	/* an offset in the expiry */
	CU_ASSERT_EQUAL(parse_auth(&u, "imap://a@localhost/Box/;UID=3;EXPIRE="
	                           "2026-12-06T03:02:03.5+02:00;URLAUTH="
	                           "anonymous"), 0);
	CU_ASSERT_EQUAL(u.expire, 1796518923);

	/* a user without a domain at the user's mail domain (Dovecot's
	 * and imaptest's form) */
	CU_ASSERT_EQUAL(parse_auth(&u, "imap://joe@Example.ORG/INBOX/;UID=1;"
	                           "URLAUTH=authuser"), 0);
	CU_ASSERT_STRING_EQUAL(u.owner, "joe@example.org");
	CU_ASSERT_EQUAL(imap_url_parse(&u, "imap://alice@example.org/INBOX/"
	                               ";UID=1", 37, "alice@example.org", 0,
	                               pool), 0);
	CU_ASSERT_EQUAL(imap_url_parse(&u, "imap://bob@example.org/INBOX/"
	                               ";UID=1", 35, "alice@example.org", 0,
	                               pool), -1);

	/* what CATENATE takes is not a URLAUTH URL, and the reverse */
	CU_ASSERT_EQUAL(parse_auth(&u, "imap://a@localhost/Box/;UID=3"), -1);
	CU_ASSERT_EQUAL(parse(&u, rump, 0), -1);
}

static void
test_auth_refused(void)
{
	static const char *const bad[] = {
		"/INBOX/;UID=1;URLAUTH=anonymous",           /* relative */
		"imap://localhost/INBOX/;UID=1;URLAUTH=anonymous", /* no user */
		"imap://a%40b.org@mail.example.com/INBOX/;UID=1;URLAUTH="
		"anonymous",
		"imap://a@mail.example.com:143/INBOX/;UID=1;URLAUTH=anonymous",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=everyone",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=user+",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=user+%00x",
		"imap://a@localhost/INBOX/;UID=1;EXPIRE=tomorrow;"
		"URLAUTH=anonymous",
		"imap://a@localhost/INBOX/;UID=1;EXPIRE=2026-13-01T00:00:00Z;"
		"URLAUTH=anonymous",
		"imap://a@localhost/INBOX/;UID=1;EXPIRE=2026-12-01T00:00:00;"
		"URLAUTH=anonymous",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:"
		"1234",                                      /* < 128 bits */
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:"
		"91354a473744909de610943775f9203g",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=anonymous::"
		"91354a473744909de610943775f92038",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=anonymous:IN/T:"
		"91354a473744909de610943775f92038",
		"imap://a@localhost/INBOX/;UID=1;URLAUTH=anonymous;x",
	};
	struct imap_url u;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		u.error = NULL;
		if (parse_auth(&u, bad[i]) != -1 || u.error == NULL)
			printf("\n  accepted: %s\n", bad[i]);
		CU_ASSERT_EQUAL(parse_auth(&u, bad[i]), -1);
		CU_ASSERT_PTR_NOT_NULL(u.error);
	}
}

/* RFC 2202 test cases 1 and 2 (HMAC-SHA1), then what verify takes. */
static void
test_tokens(void)
{
	unsigned char key1[20];
	char out[IMAP_URLAUTH_TOKEN_HEX + 1];
	static const char want2[] = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79";
	static const char data2[] = "what do ya want for nothing?";
	char tampered[IMAP_URLAUTH_TOKEN_HEX + 1];

	memset(key1, 0x0b, sizeof(key1));
	CU_ASSERT_EQUAL(imap_urlauth_token(key1, sizeof(key1), "Hi There", 8,
	                                   out), 0);
	CU_ASSERT_STRING_EQUAL(out, "b617318655057264e28bc0b6fb378c8ef146be00");
	CU_ASSERT_EQUAL(imap_urlauth_token((const unsigned char *)"Jefe", 4,
	                                   data2, strlen(data2), out), 0);
	CU_ASSERT_STRING_EQUAL(out, want2);

	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jefe", 4,
	                                    data2, strlen(data2), want2, 40), 1);
	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jefe", 4,
	                                    data2, strlen(data2),
	                                    "EFFCDF6AE5EB2FA2D27416D5F184DF9C"
	                                    "259A7C79", 40), 1);
	memcpy(tampered, want2, sizeof(tampered));
	tampered[39] = '8';
	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jefe", 4,
	                                    data2, strlen(data2), tampered,
	                                    40), 0);
	/* another rump, another key, a short or long token */
	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jefe", 4,
	                                    data2, strlen(data2) - 1, want2,
	                                    40), 0);
	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jeff", 4,
	                                    data2, strlen(data2), want2, 40),
	                0);
	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jefe", 4,
	                                    data2, strlen(data2), want2, 39),
	                0);
	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jefe", 4,
	                                    data2, strlen(data2), "effcdf6ae5"
	                                    "eb2fa2d27416d5f184df9c259a7c79"
	                                    "00", 42), 0);
	/* a non-hex octet that lower-cases to a digit's neighbour */
	memcpy(tampered, want2, sizeof(tampered));
	tampered[0] = 'E' + 26; /* not hex */
	CU_ASSERT_EQUAL(imap_urlauth_verify((const unsigned char *)"Jefe", 4,
	                                    data2, strlen(data2), tampered,
	                                    40), 0);
}

static CU_TestInfo tests[] = {
	{ "every form, escapes, keywords in any case", test_forms },
	{ "other users and hosts, URLAUTH, bad escapes and numbers",
	  test_refused },
	{ "HEADER.FIELDS (.NOT) lists: escapes, case, quoting, limits",
	  test_header_fields },
	{ "HEADER.FIELDS lists refused: parens, atoms, quoting",
	  test_header_fields_refused },
	{ "URLAUTH URLs: rump, verifier, access, expiry", test_auth_forms },
	{ "URLAUTH URLs refused", test_auth_refused },
	{ "INTERNAL tokens: RFC 2202 vectors, constant-time verify",
	  test_tokens },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "imap_url", suite_init, suite_clean, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
