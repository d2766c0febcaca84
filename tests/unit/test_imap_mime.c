/*
 * test_imap_mime.c - the IMAP module's MIME structure code
 * (modules/imap/imap_mime.c, compiled in) over the core's host table and
 * the maildir storage module: exact ENVELOPE and BODYSTRUCTURE / BODY
 * strings for a corpus of messages, body sections' byte ranges, header
 * matching through RFC 2047 words, text search in quoted-printable and
 * base64 bodies in other charsets, and the structure cache round trip
 * ("mime.v1"), a corrupt entry included.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <postern/postern.h>

#include "unit.h"
#include "conf.h"
#include "hook.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "pool.h"
#include "service.h"
#include "imap_mime.h"

#ifndef STORAGE_MODULE_DIR
#error "STORAGE_MODULE_DIR must name the directory of storage_maildir.so"
#endif

static struct loader *ld;
static struct conf *cf;
static const struct postern_storage *S;
static char *tmp;
static postern_pool_t *pool;
static postern_store_t *store;
static postern_mailbox_t *inbox;
static struct postern_user user;

static void
quiet(int level, const char *prefix, const char *msg, void *arg)
{
	(void)level;
	(void)prefix;
	(void)msg;
	(void)arg;
}

static int
suite_init(void)
{
	char text[] = "storage_maildir = { location = \"~/Maildir\"; };";
	struct postern_storage_err err = { 0 };

	tmp = unit_tmpdir();
	if ((cf = conf_load_string(text, "test.conf")) == NULL)
		return -1;
	host_set_conf(cf);
	log_set_sink(quiet, NULL);
	ld = loader_create(host_table(), STORAGE_MODULE_DIR);
	if (loader_load(ld, "storage_maildir") < 0)
		return -1;
	host_set_init_phase(1);
	if (loader_init_all(ld) < 0) {
		host_set_init_phase(0);
		return -1;
	}
	host_set_init_phase(0);
	S = service_lookup("test", POSTERN_STORAGE_SERVICE,
	                   POSTERN_STORAGE_MAJOR, POSTERN_STORAGE_MINOR, 0);
	if (S == NULL)
		return -1;
	imap_mime_init(host_table(), NULL);
	pool = pool_create(16384);
	user.size = sizeof(user);
	user.name = "alice@example.org";
	user.home = tmp;
	if (S->store_open(&user, &store, &err) < 0 ||
	    S->open(store, "INBOX", 0, &inbox, &err) < 0)
		return -1;
	return 0;
}

static int
suite_clean(void)
{
	if (inbox != NULL)
		S->close(inbox);
	if (store != NULL)
		S->store_close(store);
	pool_destroy(pool);
	hook_reset();
	service_reset();
	loader_destroy(ld);
	log_set_sink(NULL, NULL);
	host_set_conf(NULL);
	conf_free(cf);
	unit_rm_rf(tmp);
	free(tmp);
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

/* Appends `text` to INBOX and returns its UID, the view synced. */
static uint32_t
add(const char *text)
{
	struct postern_append a = { .size = sizeof(a), .fd = -1 };
	struct postern_storage_err err = { 0 };
	struct postern_sync_changes ch;
	uint32_t uid = 0, uidv = 0;

	a.data = text;
	a.length = strlen(text);
	CU_ASSERT_EQUAL(S->append(store, "INBOX", &a, &uid, &uidv, &err), 0);
	CU_ASSERT_EQUAL(S->sync(inbox, 0, pool, &ch, &err), 0);
	return uid;
}

static const struct imap_mime *
load(uint32_t uid)
{
	struct postern_storage_err err = { 0 };
	const struct imap_mime *m = imap_mime_load(S, inbox, uid, NULL, pool,
	                                           &err);

	CU_ASSERT_PTR_NOT_NULL(m);
	return m;
}

static const struct imap_mime *
load_text(const char *text)
{
	return load(add(text));
}

static void
check_str(const char *got, const char *want)
{
	CU_ASSERT_STRING_EQUAL(got, want);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n got: %s\nwant: %s\n", got, want);
}

/* ---- the corpus ------------------------------------------------------- */

static const char simple[] =
	"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
	"From: \"Doe, John\" <john@example.org>\r\n"
	"To: Friends: ann@a.example, Bob <bob@b.example>;, carl@c.example\r\n"
	"Cc: undisclosed-recipients:;\r\n"
	"Subject: =?iso-8859-1?q?caf=E9?= \"quoted\" \\ back\r\n"
	"Message-ID: <1234@example.org>\r\n"
	"In-Reply-To: <0@example.org>\r\n"
	"\r\n"
	"Hello\r\n"
	"world\r\n";

static const char mixed[] =
	"From: a@example.org\r\n"
	"Sender: \r\n"
	"Reply-To: r@example.org\r\n"
	"Subject: caf\xc3\xa9\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"--XX\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Le caf=E9 est tr=\r\n"
	"=E8s chaud.\r\n"
	"--XX\r\n"
	"Content-Type: image/png; name=\"a.png\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-ID: <img1>\r\n"
	"Content-Description: a picture\r\n"
	"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.png\r\n"
	"Content-Language: en, de\r\n"
	"Content-Location: http://x.example/a.png\r\n"
	"Content-MD5: Q2hlY2s=\r\n"
	"\r\n"
	"iVBORw0KGgo=\r\n"
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: inner@example.net\r\n"
	"Subject: inside\r\n"
	"Content-Type: text/plain; charset=koi8-r\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"8NLJ18XU\r\n"
	"--XX--\r\n";

static void
test_envelope(void)
{
	const struct imap_mime *m = load_text(simple);

	check_str(imap_mime_envelope(m, pool),
		"(\"Tue, 1 Jul 2003 10:52:37 +0200\" "
		"\"=?iso-8859-1?q?caf=E9?= \\\"quoted\\\" \\\\ back\" "
		"((\"Doe, John\" NIL \"john\" \"example.org\")) "
		"((\"Doe, John\" NIL \"john\" \"example.org\")) "
		"((\"Doe, John\" NIL \"john\" \"example.org\")) "
		"((NIL NIL \"Friends\" NIL)(NIL NIL \"ann\" \"a.example\")"
		"(\"Bob\" NIL \"bob\" \"b.example\")(NIL NIL NIL NIL)"
		"(NIL NIL \"carl\" \"c.example\")) "
		"((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
		"NIL \"<0@example.org>\" \"<1234@example.org>\")");
	CU_ASSERT_EQUAL(imap_mime_date(m, NULL), 1057049557);
	check_str(imap_mime_bodystructure(m, 1, pool),
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 14 2 NIL NIL NIL NIL)");
	check_str(imap_mime_bodystructure(m, 0, pool),
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 14 2)");
}

static void
test_bodystructure(void)
{
	const struct imap_mime *m = load_text(mixed);

	/* an empty Sender is From; 8-bit text is a literal */
	check_str(imap_mime_envelope(m, pool),
		"(NIL {5}\r\ncaf\xc3\xa9 "
		"((NIL NIL \"a\" \"example.org\")) "
		"((NIL NIL \"a\" \"example.org\")) "
		"((NIL NIL \"r\" \"example.org\")) NIL NIL NIL NIL NIL)");
	CU_ASSERT_EQUAL(imap_mime_date(m, NULL), -1);
	check_str(imap_mime_bodystructure(m, 1, pool),
		"((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
		"\"quoted-printable\" 30 2 NIL NIL NIL NIL)"
		"(\"image\" \"png\" (\"name\" \"a.png\") \"<img1>\" "
		"\"a picture\" \"base64\" 12 \"Q2hlY2s=\" (\"attachment\" "
		"(\"filename*\" \"utf-8''%E2%82%AC.png\")) (\"en\" \"de\") "
		"\"http://x.example/a.png\")"
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 129 "
		"(NIL \"inside\" ((NIL NIL \"inner\" \"example.net\")) "
		"((NIL NIL \"inner\" \"example.net\")) "
		"((NIL NIL \"inner\" \"example.net\")) NIL NIL NIL NIL NIL) "
		"(\"text\" \"plain\" (\"charset\" \"koi8-r\") NIL NIL "
		"\"base64\" 8 1 NIL NIL NIL NIL) 6 NIL NIL NIL NIL) "
		"\"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)");
	check_str(imap_mime_bodystructure(m, 0, pool),
		"((\"text\" \"plain\" (\"charset\" \"iso-8859-1\") NIL NIL "
		"\"quoted-printable\" 30 2)"
		"(\"image\" \"png\" (\"name\" \"a.png\") \"<img1>\" "
		"\"a picture\" \"base64\" 12)"
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 129 "
		"(NIL \"inside\" ((NIL NIL \"inner\" \"example.net\")) "
		"((NIL NIL \"inner\" \"example.net\")) "
		"((NIL NIL \"inner\" \"example.net\")) NIL NIL NIL NIL NIL) "
		"(\"text\" \"plain\" (\"charset\" \"koi8-r\") NIL NIL "
		"\"base64\" 8 1) 6) \"mixed\")");
}

/* The shape of Dovecot's own BODYSTRUCTURE test (lib-imap): a folded
 * boundary, an unknown text subtype with every extension field, a
 * message/rfc822 holding a multipart with prologue and epilogue, a text
 * part without parameters, an invalid transfer encoding. */
static const char dovecot_like[] =
	"From: user@example.org\r\n"
	"Date: Mon, 2 Jan 2023 10:00:00 +0100\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"part\r\n"
	" one\"\r\n"
	"\r\n"
	"Prologue text\r\n"
	"\r\n"
	"--part one\r\n"
	"Content-Type: text/x-custom; charset=us-ascii; opt=\"with\\\"quote\"\r\n"
	"Content-ID: <c1@example.org>\r\n"
	"Content-MD5: Zm9vYmFy\r\n"
	"Content-Disposition: inline; size=5\r\n"
	"Content-Description: some description\r\n"
	"Content-Language: en, fi\r\n"
	"Content-Location: http://example.org/c.txt\r\n"
	"\r\n"
	"howdy\r\n"
	"\r\n"
	"--part one\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"From: inner@example.org\r\n"
	"To: t1@example.org, t2@example.org\r\n"
	"Date: Tue, 3 Jan 2023 11:00:00 +0000\r\n"
	"Subject: inner msg\r\n"
	"Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
	"\r\n"
	"Inner prologue\r\n"
	"--alt\r\n"
	"Content-Type: text/html\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"<p>hi there</p>\r\n"
	"\r\n"
	"--alt\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Transfer-Encoding: ?bogus\r\n"
	"\r\n"
	"hi there again\r\n"
	"\r\n"
	"--alt--\r\n"
	"Inner epilogue\r\n"
	"\r\n"
	"--part one--\r\n"
	"Epilogue\r\n";

static void
test_dovecot_shape(void)
{
	const struct imap_mime *m = load_text(dovecot_like);

	check_str(imap_mime_bodystructure(m, 1, pool),
		"((\"text\" \"x-custom\" (\"charset\" \"us-ascii\" \"opt\" "
		"\"with\\\"quote\") \"<c1@example.org>\" \"some description\" "
		"\"7bit\" 7 1 \"Zm9vYmFy\" (\"inline\" (\"size\" \"5\")) "
		"(\"en\" \"fi\") \"http://example.org/c.txt\")"
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 389 "
		"(\"Tue, 3 Jan 2023 11:00:00 +0000\" \"inner msg\" "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"t1\" \"example.org\")(NIL NIL \"t2\" "
		"\"example.org\")) NIL NIL NIL NIL) "
		"((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"8bit\" 17 1 NIL NIL NIL NIL)"
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 16 1 NIL NIL NIL NIL) \"alternative\" "
		"(\"boundary\" \"alt\") NIL NIL NIL) 21 NIL NIL NIL NIL) "
		"\"mixed\" (\"boundary\" \"part one\") NIL NIL NIL)");
	check_str(imap_mime_bodystructure(m, 0, pool),
		"((\"text\" \"x-custom\" (\"charset\" \"us-ascii\" \"opt\" "
		"\"with\\\"quote\") \"<c1@example.org>\" \"some description\" "
		"\"7bit\" 7 1)"
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 389 "
		"(\"Tue, 3 Jan 2023 11:00:00 +0000\" \"inner msg\" "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"inner\" \"example.org\")) "
		"((NIL NIL \"t1\" \"example.org\")(NIL NIL \"t2\" "
		"\"example.org\")) NIL NIL NIL NIL) "
		"((\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"8bit\" 17 1)"
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 16 1) \"alternative\") 21) \"mixed\")");
}

static void
test_odd_structures(void)
{
	const struct imap_mime *m;

	/* a multipart without parts shows one empty text/plain part */
	m = load_text("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	              "no parts\r\n");
	check_str(imap_mime_bodystructure(m, 0, pool),
		"((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 0 0) \"mixed\")");
	/* nested alternative closed by the outer boundary, a digest, no
	 * final outer boundary */
	m = load_text("Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	              "--o\r\n"
	              "Content-Type: multipart/alternative; boundary=i\r\n"
	              "\r\n--i\r\n\r\nplain\r\n--i\r\n"
	              "Content-Type: text/html; charset=\"utf-8\"\r\n\r\n"
	              "<p>\r\n--o\r\n"
	              "Content-Type: multipart/digest; boundary=d\r\n\r\n"
	              "--d\r\n\r\nSubject: d1\r\n\r\nx\r\n--d--\r\n");
	check_str(imap_mime_bodystructure(m, 0, pool),
		"(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 5 1)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL "
		"NIL \"7bit\" 3 1) \"alternative\")((\"message\" \"rfc822\" "
		"NIL NIL NIL \"7bit\" 16 (NIL \"d1\" NIL NIL NIL NIL NIL NIL "
		"NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL "
		"NIL \"7bit\" 1 1) 3) \"digest\") \"mixed\")");
	/* a base64 message/rfc822 is opaque: a basic part */
	m = load_text("Content-Type: message/rfc822\r\n"
	              "Content-Transfer-Encoding: base64\r\n\r\n"
	              "U3ViamVjdDogeA0KDQp5DQo=\r\n");
	check_str(imap_mime_bodystructure(m, 0, pool),
		"(\"message\" \"rfc822\" NIL NIL NIL \"base64\" 26)");
	/* no header at all, an address without a domain, a long value */
	m = load_text("To: Mary <mary>\r\n\r\n");
	check_str(imap_mime_envelope(m, pool),
		"(NIL NIL NIL NIL NIL ((\"Mary\" NIL \"mary\" "
		"\"MISSING_DOMAIN\")) NIL NIL NIL NIL)");
	/* a comment as the name, empty groups, an obsolete route */
	m = load_text("From: u@d (Real Name)\r\nCc: team:;, list: (c) ;\r\n"
	              "To: <@hop:x@y>\r\n\r\n");
	check_str(imap_mime_envelope(m, pool),
		"(NIL NIL ((\"Real Name\" NIL \"u\" \"d\")) "
		"((\"Real Name\" NIL \"u\" \"d\")) "
		"((\"Real Name\" NIL \"u\" \"d\")) "
		"((NIL \"@hop\" \"x\" \"y\")) "
		"((NIL NIL \"team\" NIL)(NIL NIL NIL NIL)"
		"(NIL NIL \"list\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)");
	/* a name with a line break inside a quoted string stays quoted
	 * once unfolded */
	m = load_text("From: \"a\r\n b\" <x@y>\r\nSubject: two\r\n words\r\n"
	              "\r\nbody");
	check_str(imap_mime_envelope(m, pool),
		"(NIL \"two words\" ((\"a b\" NIL \"x\" \"y\")) "
		"((\"a b\" NIL \"x\" \"y\")) ((\"a b\" NIL \"x\" \"y\")) "
		"NIL NIL NIL NIL NIL)");
	check_str(imap_mime_bodystructure(m, 1, pool),
		"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		"\"7bit\" 4 1 NIL NIL NIL NIL)");
}

/* The section's octets as a string, or "-1". */
static const char *
section(const char *msg, const struct imap_mime *m, const char *spec,
        enum imap_section_what what)
{
	uint32_t parts[8];
	size_t n = 0;
	uint64_t start, len;
	char *end;

	while (*spec != '\0' && n < 8) {
		parts[n++] = (uint32_t)strtoul(spec, &end, 10);
		spec = *end == '.' ? end + 1 : end;
	}
	if (imap_mime_section(m, parts, n, what, &start, &len) < 0)
		return "-1";
	return pool_strndup(pool, msg + start, (size_t)len);
}

static void
test_sections(void)
{
	const struct imap_mime *m = load_text(mixed);
	const char *hdr_end = strstr(mixed, "\r\n\r\n") + 4, *inner;

	check_str(section(mixed, m, "", IMAP_SECTION_ALL), mixed);
	CU_ASSERT_EQUAL(strlen(section(mixed, m, "", IMAP_SECTION_HEADER)),
	                (size_t)(hdr_end - mixed));
	check_str(section(mixed, m, "", IMAP_SECTION_TEXT), hdr_end);
	check_str(section(mixed, m, "1", IMAP_SECTION_ALL),
	          "Le caf=E9 est tr=\r\n=E8s chaud.");
	check_str(section(mixed, m, "1", IMAP_SECTION_MIME),
	          "Content-Type: text/plain; charset=iso-8859-1\r\n"
	          "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	check_str(section(mixed, m, "2", IMAP_SECTION_ALL), "iVBORw0KGgo=");
	check_str(section(mixed, m, "3", IMAP_SECTION_MIME),
	          "Content-Type: message/rfc822\r\n\r\n");
	check_str(section(mixed, m, "3", IMAP_SECTION_HEADER),
	          "From: inner@example.net\r\nSubject: inside\r\n"
	          "Content-Type: text/plain; charset=koi8-r\r\n"
	          "Content-Transfer-Encoding: base64\r\n\r\n");
	check_str(section(mixed, m, "3", IMAP_SECTION_TEXT), "8NLJ18XU");
	/* 3.1: the single part of the attached message: its body, with
	 * the message header as MIME header */
	check_str(section(mixed, m, "3.1", IMAP_SECTION_ALL), "8NLJ18XU");
	check_str(section(mixed, m, "3.1", IMAP_SECTION_MIME),
	          section(mixed, m, "3", IMAP_SECTION_HEADER));
	inner = strstr(mixed, "From: inner");
	check_str(section(mixed, m, "3", IMAP_SECTION_ALL),
	          pool_strndup(pool, inner, (size_t)(strstr(inner,
	                       "\r\n--XX--") - inner)));
	/* no such parts */
	check_str(section(mixed, m, "4", IMAP_SECTION_ALL), "-1");
	check_str(section(mixed, m, "0", IMAP_SECTION_ALL), "-1");
	check_str(section(mixed, m, "1.1", IMAP_SECTION_ALL), "-1");
	check_str(section(mixed, m, "3.2", IMAP_SECTION_ALL), "-1");
	check_str(section(mixed, m, "1", IMAP_SECTION_HEADER), "-1");
	check_str(section(mixed, m, "", IMAP_SECTION_MIME), "-1");

	/* a non-multipart message: part 1 is its body */
	m = load_text(simple);
	check_str(section(simple, m, "1", IMAP_SECTION_ALL),
	          "Hello\r\nworld\r\n");
	check_str(section(simple, m, "2", IMAP_SECTION_ALL), "-1");
}

static void
test_header_match(void)
{
	static const char hdr[] =
		"Subject: =?iso-8859-1?q?CAF=C9?= au lait\r\n"
		"From: =?utf-8?B?w4lsaXNl?= <e@x>\r\n"
		"X-Empty:\r\n"
		"To: <user-to (comment)@ (comment) domain.org>\r\n"
		"\r\n"
		"Body: nope\r\n";
	size_t len = sizeof(hdr) - 1;

	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "subject",
	                "caf\xc3\xa9 AU", pool), 1);
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "SUBJECT",
	                "th\xc3\xa9", pool), 0);
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "from",
	                "\xc3\xa9lise", pool), 1);
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "from", "e@X",
	                pool), 1);
	/* addresses without their comments */
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "to",
	                "user-to@domain.org", pool), 1);
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "subject",
	                "caf@au", pool), 0);
	/* an empty needle matches a present field, even an empty one */
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "x-empty", "",
	                pool), 1);
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "cc", "", pool),
	                0);
	/* the body is not the header */
	CU_ASSERT_EQUAL(imap_mime_header_matches(hdr, len, "body", "",
	                pool), 0);
}

static int
search(uint32_t uid, const struct imap_mime *m, const char *needle,
       int with_header)
{
	struct postern_storage_err err = { 0 };

	return imap_mime_search_text(S, inbox, uid, m, needle, with_header,
	                             pool, &err);
}

static void
test_search_text(void)
{
	uint32_t uid = add(mixed);
	const struct imap_mime *m = load(uid);

	/* quoted-printable Latin-1, across a soft line break */
	CU_ASSERT_EQUAL(search(uid, m, "TR\xc3\x88S CHAUD", 0), 1);
	CU_ASSERT_EQUAL(search(uid, m, "caf\xc3\xa9 est", 0), 1);
	/* base64 KOI8-R in the attached message, case folded */
	CU_ASSERT_EQUAL(search(uid, m, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2"
	                       "\xd0\x95\xd0\xa2", 0), 1);
	/* the attached message's header is body text of this one */
	CU_ASSERT_EQUAL(search(uid, m, "inside", 0), 1);
	/* the top header only with TEXT */
	CU_ASSERT_EQUAL(search(uid, m, "r@example.org", 0), 0);
	CU_ASSERT_EQUAL(search(uid, m, "r@example.org", 1), 1);
	/* encoded octets are not text; a PNG is not searched */
	CU_ASSERT_EQUAL(search(uid, m, "=E9", 0), 0);
	CU_ASSERT_EQUAL(search(uid, m, "iVBOR", 0), 0);
	CU_ASSERT_EQUAL(search(uid, m, "not there", 1), 0);
	CU_ASSERT_EQUAL(search(uid, m, "", 0), 1);

	uid = add(simple);
	m = load(uid);
	CU_ASSERT_EQUAL(search(uid, m, "CAF\xc3\x89 \"QUOTED\"", 1), 1);
	CU_ASSERT_EQUAL(search(uid, m, "hello\r\nWORLD", 0), 1);
	CU_ASSERT_EQUAL(search(uid, m, "caf", 0), 0);
}

/* A needle across the read blocks and scan steps of a large body. */
static void
test_search_large(void)
{
	size_t i, n = 200000;
	char *msg = malloc(n + 200), *p = msg;
	const struct imap_mime *m;
	uint32_t uid;

	p += sprintf(p, "Subject: big\r\n\r\n");
	for (i = 0; i < n; i++) {
		/* lines of 76 octets */
		if (i % 78 == 76) {
			*p++ = '\r';
			*p++ = '\n';
			i++;
		} else {
			*p++ = (char)('a' + i % 7);
		}
	}
	*p = '\0';
	/* across the first 64 KiB read of the body (it starts at 16) */
	memcpy(msg + 16 + 65536 - 3, "NeEdLe", 6);
	uid = add(msg);
	m = load(uid);
	CU_ASSERT_EQUAL(search(uid, m, "needle", 0), 1);
	CU_ASSERT_EQUAL(search(uid, m, "needles", 0), 0);
	free(msg);
}

static void
test_cache(void)
{
	uint32_t uid = add(mixed);
	const void *data;
	size_t len;
	char *first;
	const struct imap_mime *m;

	CU_ASSERT_EQUAL(S->cache_get(inbox, uid, "mime.v1", pool, &data,
	                             &len), 0);
	m = load(uid);
	first = pool_strndup(pool, imap_mime_bodystructure(m, 1, pool),
	                     100000);
	/* the first load cached the structure */
	CU_ASSERT_EQUAL_FATAL(S->cache_get(inbox, uid, "mime.v1", pool,
	                                   &data, &len), 1);
	CU_ASSERT(len > 4 && memcmp(data, "PMT", 3) == 0);
	check_str(imap_mime_bodystructure(load(uid), 1, pool), first);
	/* a corrupt entry is absent: parsed again, and replaced */
	CU_ASSERT_EQUAL(S->cache_set(inbox, uid, "mime.v1", "PMT\001junk",
	                             8), 0);
	check_str(imap_mime_bodystructure(load(uid), 1, pool), first);
	CU_ASSERT_EQUAL_FATAL(S->cache_get(inbox, uid, "mime.v1", pool,
	                                   &data, &len), 1);
	CU_ASSERT(len > 8);
	/* a message that is gone cannot be loaded */
	{
		struct postern_storage_err err = { 0 };

		CU_ASSERT_PTR_NULL(imap_mime_load(S, inbox, 99999, NULL, pool,
		                                  &err));
		CU_ASSERT_NOT_EQUAL(err.code, POSTERN_SE_OK);
	}
}

/* ---- an IMAP grammar check of the output ------------------------------ */

/* The output parsed back: a list or an atom (NIL, a number, a string). */
enum sx_kind { SX_LIST, SX_NIL, SX_NUMBER, SX_STRING };

struct sx {
	enum sx_kind kind;
	const char *at;        /* where it starts in the output */
	struct sx *items[64];
	size_t n;
};

static struct sx *
sx_parse(const char **p, int *bad)
{
	struct sx *x = pool_alloc(pool, sizeof(*x));
	const char *s = *p;

	x->at = s;
	if (*s == '(') {
		x->kind = SX_LIST;
		s++;
		while (*s != ')' && !*bad) {
			if (*s == '\0' || x->n == 64) {
				*bad = 1;
				break;
			}
			x->items[x->n++] = sx_parse(&s, bad);
			if (*s == ' ')
				s++;
			else if (*s != ')' && *s != '(' &&
			         x->items[x->n - 1]->kind != SX_LIST)
				*bad = 1;
		}
		if (*s == ')')
			s++;
	} else if (strncmp(s, "NIL", 3) == 0) {
		x->kind = SX_NIL;
		s += 3;
	} else if (*s >= '0' && *s <= '9') {
		x->kind = SX_NUMBER;
		while (*s >= '0' && *s <= '9')
			s++;
	} else if (*s == '"') {
		x->kind = SX_STRING;
		for (s++; *s != '"'; s++) {
			if (*s == '\0' || *s == '\r' || *s == '\n' ||
			    (unsigned char)*s >= 0x80) {
				*bad = 1;
				break;
			}
			if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			else if (*s == '\\')
				*bad = 1;
		}
		if (*s == '"')
			s++;
	} else if (*s == '{') {
		char *end;
		unsigned long n = strtoul(s + 1, &end, 10);

		x->kind = SX_STRING;
		if (strncmp(end, "}\r\n", 3) != 0 || strlen(end + 3) < n)
			*bad = 1;
		else
			s = end + 3 + n;
	} else {
		*bad = 1;
	}
	*p = s;
	return x;
}

static int
is_nstring(const struct sx *x)
{
	return x->kind == SX_NIL || x->kind == SX_STRING;
}

static int
is_params(const struct sx *x)
{
	size_t i;

	if (x->kind == SX_NIL)
		return 1;
	if (x->kind != SX_LIST || x->n == 0 || x->n % 2 != 0)
		return 0;
	for (i = 0; i < x->n; i++)
		if (x->items[i]->kind != SX_STRING)
			return 0;
	return 1;
}

static int
is_address_list(const struct sx *x)
{
	size_t i, j;

	if (x->kind == SX_NIL)
		return 1;
	if (x->kind != SX_LIST || x->n == 0)
		return 0;
	for (i = 0; i < x->n; i++) {
		if (x->items[i]->kind != SX_LIST || x->items[i]->n != 4)
			return 0;
		for (j = 0; j < 4; j++)
			if (!is_nstring(x->items[i]->items[j]))
				return 0;
	}
	return 1;
}

static int
is_envelope(const struct sx *x)
{
	size_t i;

	if (x->kind != SX_LIST || x->n != 10)
		return 0;
	for (i = 2; i < 8; i++)
		if (!is_address_list(x->items[i]))
			return 0;
	return is_nstring(x->items[0]) && is_nstring(x->items[1]) &&
	       is_nstring(x->items[8]) && is_nstring(x->items[9]);
}

/* Extension data from item i: the optional, in-order fields [first]
 * (md5 or params) then disposition, language, location; any prefix of
 * them may be present (RFC 3501 body-ext-1part, body-ext-mpart). */
static int
is_extension(const struct sx *x, size_t i, int first_is_params)
{
	const struct sx *d, *l;
	size_t k;

	if (i >= x->n)
		return 1;
	if (first_is_params ? !is_params(x->items[i]) :
	                      !is_nstring(x->items[i]))
		return 0;
	if (++i >= x->n)
		return 1;
	d = x->items[i];
	if (d->kind != SX_NIL && (d->kind != SX_LIST || d->n != 2 ||
	    d->items[0]->kind != SX_STRING || !is_params(d->items[1])))
		return 0;
	if (++i >= x->n)
		return 1;
	l = x->items[i];
	if (l->kind == SX_LIST) {
		for (k = 0; k < l->n; k++)
			if (l->items[k]->kind != SX_STRING)
				return 0;
	} else if (!is_nstring(l)) {
		return 0;
	}
	if (++i >= x->n)
		return 1;
	return is_nstring(x->items[i]) && i + 1 == x->n;
}

static int
is_quoted(const struct sx *x, const char *word)
{
	size_t n = strlen(word);

	return x->kind == SX_STRING && x->at[0] == '"' &&
	       strncasecmp(x->at + 1, word, n) == 0 && x->at[n + 1] == '"';
}

/* RFC 3501's body; without `extended` (BODY) no extension data. */
static int
is_body(const struct sx *x, int extended)
{
	size_t i = 0, need;
	int msg;

	if (x->kind != SX_LIST || x->n == 0)
		return 0;
	if (x->items[0]->kind == SX_LIST) {
		while (i < x->n && x->items[i]->kind == SX_LIST)
			if (!is_body(x->items[i++], extended))
				return 0;
		if (i == x->n || x->items[i]->kind != SX_STRING)
			return 0;
		i++;
		return extended ? is_extension(x, i, 1) : i == x->n;
	}
	if (x->n < 7 || x->items[0]->kind != SX_STRING ||
	    x->items[1]->kind != SX_STRING || !is_params(x->items[2]) ||
	    !is_nstring(x->items[3]) || !is_nstring(x->items[4]) ||
	    x->items[5]->kind != SX_STRING || x->items[6]->kind != SX_NUMBER)
		return 0;
	msg = is_quoted(x->items[0], "message") &&
	      (is_quoted(x->items[1], "rfc822") ||
	       is_quoted(x->items[1], "global")) &&
	      x->n >= 10 && x->items[7]->kind == SX_LIST;
	if (msg) {
		if (!is_envelope(x->items[7]) ||
		    !is_body(x->items[8], extended) ||
		    x->items[9]->kind != SX_NUMBER)
			return 0;
		need = 10;
	} else if (is_quoted(x->items[0], "text")) {
		if (x->n < 8 || x->items[7]->kind != SX_NUMBER)
			return 0;
		need = 8;
	} else {
		need = 7;
	}
	return extended ? is_extension(x, need, 0) : x->n == need;
}

static int
check_grammar(const char *bs, int extended, const char *env)
{
	const char *p = bs;
	int bad = 0;
	struct sx *x = sx_parse(&p, &bad);

	if (bad || *p != '\0' || !is_body(x, extended))
		return 0;
	p = env;
	x = sx_parse(&p, &bad);
	return !bad && *p == '\0' && is_envelope(x);
}

static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Damaged copies of the corpus: whatever the parser makes of them, the
 * output is valid IMAP (balanced, well-formed strings and literals, the
 * fields RFC 3501 7.4.2 lists in their places). */
static void
test_grammar_on_damaged_input(void)
{
	static const char *const corpus[] = { simple, mixed, dovecot_like };
	static const char noise[] = "\r\n-\"\\;=:<>@,()\x80\xff\0 ";
	uint32_t seed = 12345, uid;
	const struct imap_mime *m;
	char *msg;
	size_t c, len, k, pos;
	int round;

	for (round = 0; round < 150; round++) {
		c = (size_t)round % 3;
		len = strlen(corpus[c]);
		msg = pool_alloc(pool, len + 1);
		memcpy(msg, corpus[c], len);
		for (k = 0; k < 1 + next_rand(&seed) % 8; k++) {
			pos = next_rand(&seed) % len;
			switch (next_rand(&seed) % 3) {
			case 0:   /* an octet of noise */
				msg[pos] = noise[next_rand(&seed) %
				                 (sizeof(noise) - 1)];
				break;
			case 1:   /* cut the message short */
				len = pos + 1;
				break;
			default:  /* drop a stretch */
				memmove(msg + pos, msg + pos + (len - pos) / 4,
				        len - pos - (len - pos) / 4);
				len -= (len - pos) / 4;
				break;
			}
		}
		msg[len] = '\0';
		if (strlen(msg) == 0)
			continue;
		uid = add(msg);
		if ((m = load(uid)) == NULL)
			continue;
		if (!check_grammar(imap_mime_bodystructure(m, 1, pool), 1,
		                   imap_mime_envelope(m, pool)) ||
		    !check_grammar(imap_mime_bodystructure(m, 0, pool), 0,
		                   imap_mime_envelope(m, pool))) {
			CU_FAIL("invalid IMAP output");
			fprintf(stderr, "round %d: %s\n", round,
			        imap_mime_bodystructure(m, 1, pool));
			return;
		}
		CU_PASS("valid");
		pool_clear(pool);
	}
}

static CU_TestInfo tests[] = {
	{ "ENVELOPE with groups, quoting, Date", test_envelope },
	{ "BODYSTRUCTURE and BODY of a mixed message", test_bodystructure },
	{ "the shape of Dovecot's BODYSTRUCTURE test", test_dovecot_shape },
	{ "empty multipart, encoded message, broken addresses",
	  test_odd_structures },
	{ "body sections by part number", test_sections },
	{ "header match through RFC 2047", test_header_match },
	{ "text search in QP and base64 bodies", test_search_text },
	{ "text search in a large body", test_search_large },
	{ "structure cache round trip through maildir", test_cache },
	{ "valid IMAP output for damaged messages",
	  test_grammar_on_damaged_input },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "imap_mime", suite_init, suite_clean, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
