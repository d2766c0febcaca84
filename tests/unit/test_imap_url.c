/*
 * test_imap_url.c - IMAP URLs as CATENATE takes them (imap_url.c, RFC
 * 5092): every form, percent escapes, keywords in any case, and what
 * must be refused (other users and hosts, URLAUTH, broken escapes, NUL,
 * numbers out of range, sections a URL may not name here).
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
		"/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(From)",
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

static CU_TestInfo tests[] = {
	{ "every form, escapes, keywords in any case", test_forms },
	{ "other users and hosts, URLAUTH, bad escapes and numbers",
	  test_refused },
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
