/*
 * test_imap_search.c - SEARCH parsing and evaluation (modules/imap/
 * imap_search.c) over an in-memory mailbox.
 *
 * The module's search code runs unchanged: this program provides what
 * it calls around it.  A fake store (count, message, status, msg_open
 * and msg_read over a table of messages), jobs that run at once on this
 * thread (imap_job_run calls work then done), replies captured into a
 * buffer, and a tiny imap_mime stand-in: header matching is a
 * case-insensitive substring search of the raw field (decoding is the
 * MIME side's and tested there), the Date is taken from a table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "unit.h"
#include "host.h"
#include "imap.h"
#include "imap_mime.h"
#include "imap_sort.h"

const struct postern_host *imap_host;
postern_module_t *imap_self;
struct imap_settings imap_cfg;
const struct postern_storage *imap_storage;
postern_tls_t *imap_tls;

/* ---- the fake mailbox -------------------------------------------------*/

struct fake_msg {
	uint32_t uid, flags;
	uint32_t kw;            /* bit i: keyword i */
	uint64_t size, modseq;
	int64_t idate;          /* internal date, UTC seconds */
	int16_t tz;
	int64_t sent;           /* Date: header, or -1 */
	const char *header;
	const char *body;
	int expunged;
	int sent_tz;            /* Date: header's zone, minutes east */
};

static const char *const keywords[] = { "$Junk", "work" };

/* 2024-01-10 12:00 UTC = 1704888000; a day is 86400. */
#define DAY 86400
#define JAN10 1704888000LL
static struct fake_msg msgs[] = {
	{ 3, POSTERN_MSG_SEEN, 0, 500, 10, JAN10, 0, JAN10,
	  "From: Carol <carol@example.net>\r\nSubject: lunch\r\n\r\n",
	  "pizza today", 0, 0 },
	{ 5, POSTERN_MSG_FLAGGED | POSTERN_MSG_RECENT, 2, 5000, 20,
	  JAN10 + 31 * DAY, 60, JAN10 - 5 * DAY,
	  "From: dave@example.com\r\nSubject: report\r\nCc: boss\r\n\r\n",
	  "quarterly numbers", 0, 0 },
	{ 9, POSTERN_MSG_DELETED | POSTERN_MSG_RECENT | POSTERN_MSG_SEEN, 1,
	  1200, 30, JAN10 + 60 * DAY, -300, -1,
	  "Subject: spam\r\n\r\n", "buy now", 0, 0 },
	{ 12, POSTERN_MSG_ANSWERED | POSTERN_MSG_DRAFT, 3, 80, 40,
	  JAN10 + 61 * DAY, 0, JAN10 + 61 * DAY,
	  "From: carol@example.net\r\nSubject: Re: lunch\r\n\r\n",
	  "yes pizza", 0, 13 * 60 },
};
#define NMSGS (sizeof(msgs) / sizeof(msgs[0]))

static struct postern_message_info info;
static uint32_t info_kw[8];

static uint32_t
fake_count(postern_mailbox_t *mb)
{
	(void)mb;
	return NMSGS;
}

static const struct postern_message_info *
fake_message(postern_mailbox_t *mb, uint32_t seq)
{
	const struct fake_msg *m;
	uint32_t i;

	(void)mb;
	if (seq == 0 || seq > NMSGS)
		return NULL;
	m = &msgs[seq - 1];
	/* One struct reused, as the real store does: the module must copy
	 * what it keeps across calls. */
	memset(&info, 0xa5, sizeof(info));
	info.uid = m->uid;
	info.flags = m->flags;
	info.nkeywords = 0;
	for (i = 0; i < 2; i++)
		if (m->kw & (1u << i))
			info_kw[info.nkeywords++] = i;
	info.keywords = info_kw;
	info.size = m->size;
	info.internal_date = m->idate;
	info.internal_tz = m->tz;
	info.modseq = m->modseq;
	info.guid = "g";
	info.expunged = m->expunged;
	return &info;
}

static void
fake_status(postern_mailbox_t *mb, struct postern_mailbox_status *st)
{
	(void)mb;
	memset((char *)st + sizeof(st->size), 0,
	       sizeof(*st) - sizeof(st->size));
	st->messages = NMSGS;
	st->keywords = keywords;
	st->nkeywords = 2;
	st->modseq_supported = 1;
}

struct postern_msg {
	const struct fake_msg *m;
};

static int
fake_msg_open(postern_mailbox_t *mb, uint32_t uid, postern_msg_t **out,
              struct postern_msg_size *sz, struct postern_storage_err *err)
{
	size_t i;

	(void)mb;
	for (i = 0; i < NMSGS; i++)
		if (msgs[i].uid == uid) {
			*out = calloc(1, sizeof(**out));
			(*out)->m = &msgs[i];
			sz->header_size = strlen(msgs[i].header);
			sz->size = sz->header_size + strlen(msgs[i].body);
			return 0;
		}
	err->code = POSTERN_SE_EXPUNGED;
	return -1;
}

static ssize_t
fake_msg_read(postern_msg_t *msg, uint64_t off, void *buf, size_t len,
              struct postern_storage_err *err)
{
	size_t hl = strlen(msg->m->header), total = hl + strlen(msg->m->body);
	size_t n = 0;

	(void)err;
	while (n < len && off + n < total) {
		uint64_t o = off + n;
		((char *)buf)[n++] = o < hl ? msg->m->header[o]
		                            : msg->m->body[o - hl];
	}
	return (ssize_t)n;
}

static void
fake_msg_close(postern_msg_t *msg)
{
	free(msg);
}

static const struct postern_storage fake_storage = {
	.size = sizeof(struct postern_storage),
	.name = "fake",
	.delimiter = '/',
	.count = fake_count,
	.message = fake_message,
	.status = fake_status,
	.msg_open = fake_msg_open,
	.msg_read = fake_msg_read,
	.msg_close = fake_msg_close,
};

/* ---- the imap_mime stand-in ------------------------------------------*/

struct imap_mime {
	const struct fake_msg *m;
};

void
imap_mime_init(const struct postern_host *host, postern_module_t *self)
{
	(void)host;
	(void)self;
}

const struct imap_mime *
imap_mime_load(const struct postern_storage *st, postern_mailbox_t *mb,
               uint32_t uid, struct imap_msg_ref *msg, postern_pool_t *pool,
               struct postern_storage_err *err)
{
	struct imap_mime *x;
	size_t i;

	(void)st;
	(void)mb;
	(void)msg;
	for (i = 0; i < NMSGS; i++)
		if (msgs[i].uid == uid) {
			x = imap_host->pool_alloc(pool, sizeof(*x));
			x->m = &msgs[i];
			return x;
		}
	err->code = POSTERN_SE_EXPUNGED;
	return NULL;
}

void
imap_condstore_enable(struct imap_session *s)
{
	s->condstore = 1;
}

int64_t
imap_mime_date(const struct imap_mime *m, int *tz_minutes)
{
	if (tz_minutes != NULL)
		*tz_minutes = m->m->sent_tz;
	return m->m->sent;
}

int
imap_mime_header_matches(const char *hdr, size_t len, const char *field,
                         const char *needle, postern_pool_t *pool)
{
	size_t fl = strlen(field), nl = strlen(needle), i, k;

	(void)pool;
	for (i = 0; i + fl + 1 <= len; i++) {
		if ((i > 0 && hdr[i - 1] != '\n') ||
		    strncasecmp(hdr + i, field, fl) != 0 || hdr[i + fl] != ':')
			continue;
		for (k = i + fl + 1; k + nl <= len && hdr[k] != '\r'; k++)
			if (strncasecmp(hdr + k, needle, nl) == 0)
				return 1;
		if (nl == 0)
			return 1;
	}
	return 0;
}

/* Counts the decodings: the module asks once per message for every
 * BODY and TEXT key of the command. */
static unsigned text_decodings;

int
imap_mime_search_texts(const struct postern_storage *st,
                       postern_mailbox_t *mb, uint32_t uid,
                       const struct imap_mime *m, struct imap_msg_ref *msg,
                       struct imap_mime_needle *needles, size_t n,
                       const int *cancel, postern_pool_t *pool,
                       struct postern_storage_err *err)
{
	size_t i;

	(void)msg;
	(void)cancel;
	(void)st;
	(void)mb;
	(void)uid;
	(void)pool;
	(void)err;
	text_decodings++;
	for (i = 0; i < n; i++)
		needles[i].found =
			strcasestr(m->m->body, needles[i].needle) != NULL ||
			(needles[i].with_header &&
			 strcasestr(m->m->header, needles[i].needle) != NULL);
	return 0;
}

/* ---- jobs and replies, at once ---------------------------------------*/

void
imap_job_run_heavy(struct imap_job *j, void (*work)(struct imap_job *),
                   void (*done)(struct imap_job *))
{
	imap_job_run(j, work, done);
}

int
imap_job_cancelled(struct imap_job *j)
{
	return j->cancelled;
}

static struct imap_buf captured;

struct imap_job *
imap_job_new(struct imap_session *s, const char *tag, size_t argsize)
{
	struct imap_job *j = calloc(1, sizeof(*j));

	j->s = s;
	j->pool = imap_host->pool_create(4096);
	snprintf(j->tag, sizeof(j->tag), "%s", tag);
	if (argsize > 0)
		j->arg = imap_host->pool_alloc(j->pool, argsize);
	return j;
}

void
imap_job_run(struct imap_job *j, void (*work)(struct imap_job *),
             void (*done)(struct imap_job *))
{
	if (work != NULL)
		work(j);
	imap_buf_add(&captured, j->out.p != NULL ? j->out.p : "", j->out.len);
	if (done != NULL)
		done(j);
	imap_buf_free(&j->out);
	imap_host->pool_destroy(j->pool);
	free(j);
}

void
imap_log(const struct imap_session *s, int level, const char *fmt, ...)
{
	(void)s;
	(void)level;
	(void)fmt;
}

void
imap_reply(struct imap_session *s, const char *tag, const char *status,
           const char *fmt, ...)
{
	va_list ap;
	char text[512];

	(void)s;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	imap_buf_printf(&captured, "%s %s %s\r\n", tag, status, text);
}

void
imap_reply_storage_err(struct imap_session *s, const char *tag,
                       const struct postern_storage_err *err)
{
	imap_reply(s, tag, "NO", "%s", err->text);
}

void
imap_sync_format(struct imap_session *s, struct imap_buf *out,
                 const struct postern_sync_changes *ch, postern_pool_t *pool)
{
	(void)s;
	(void)out;
	(void)ch;
	(void)pool;
}

/* A SORT's order kept updated (imap_sort.c, not linked here): no SEARCH
 * makes one, so imap_context.c never reaches these with one. */
void
imap_sort_live_free(struct imap_sort_live *l)
{
	CU_ASSERT_PTR_NULL(l);
}

size_t
imap_sort_live_remove(struct imap_sort_live *l, const uint32_t *uids,
                      size_t n, uint32_t *pos, uint32_t *out)
{
	(void)l;
	(void)uids;
	(void)n;
	(void)pos;
	(void)out;
	CU_FAIL("a SORT's order in a SEARCH test");
	return 0;
}

void
imap_sort_live_ends(const struct imap_sort_live *l, uint32_t *first,
                    uint32_t *last)
{
	(void)l;
	*first = *last = 0;
	CU_FAIL("a SORT's order in a SEARCH test");
}

int
imap_sort_live_add(struct imap_session *s, struct imap_sort_live *l,
                   const uint32_t *uids, size_t n, postern_pool_t *scratch,
                   uint64_t *cost, uint32_t *pos, uint32_t *out,
                   struct postern_storage_err *err)
{
	(void)s;
	(void)l;
	(void)uids;
	(void)n;
	(void)scratch;
	(void)cost;
	(void)pos;
	(void)out;
	(void)err;
	CU_FAIL("a SORT's order in a SEARCH test");
	return -1;
}

/* ---- running a SEARCH -------------------------------------------------*/

static void *
pool_alloc_cb(void *ctx, size_t n)
{
	return imap_host->pool_alloc(ctx, n);
}

/* Runs "t <cmd> <args>" and returns what the client would read. */
static const char *
run(int uid, const char *args)
{
	static char buf[4096];
	struct imap_session s = { 0 };
	struct imap_cmd c = { 0 };
	postern_pool_t *pool = imap_host->pool_create(4096);

	captured.len = 0;
	imap_buf_str(&captured, "");
	s.mb = (postern_mailbox_t *)&s; /* any non-NULL handle */
	snprintf(buf, sizeof(buf), " %s", args);
	c.s = &s;
	c.pool = pool;
	c.uid = uid;
	c.name = "SEARCH";
	strcpy(c.tag, "t");
	imap_args_init(&c.args, buf, strlen(buf), pool_alloc_cb, pool);
	imap_cmd_search(&c);
	imap_host->pool_destroy(pool);
	return captured.p;
}

#define EXPECT(uid, args, want)                                            \
	do {                                                               \
		const char *got_ = run((uid), (args));                    \
		if (strcmp(got_, (want)) != 0)                             \
			fprintf(stderr, "SEARCH %s\n got: %s\nwant: %s\n", \
			        (args), got_, (want));                     \
		CU_ASSERT_STRING_EQUAL(got_, (want));                      \
	} while (0)

#define OK "t OK Search completed\r\n"

static void
test_flags(void)
{
	EXPECT(0, "ALL", "* SEARCH 1 2 3 4\r\n" OK);
	EXPECT(0, "SEEN", "* SEARCH 1 3\r\n" OK);
	EXPECT(0, "UNSEEN", "* SEARCH 2 4\r\n" OK);
	EXPECT(0, "FLAGGED", "* SEARCH 2\r\n" OK);
	EXPECT(0, "DELETED", "* SEARCH 3\r\n" OK);
	EXPECT(0, "UNDELETED", "* SEARCH 1 2 4\r\n" OK);
	EXPECT(0, "ANSWERED", "* SEARCH 4\r\n" OK);
	EXPECT(0, "DRAFT", "* SEARCH 4\r\n" OK);
	EXPECT(0, "UNDRAFT", "* SEARCH 1 2 3\r\n" OK);
	EXPECT(0, "RECENT", "* SEARCH 2 3\r\n" OK);
	EXPECT(0, "NEW", "* SEARCH 2\r\n" OK);
	EXPECT(0, "OLD", "* SEARCH 1 4\r\n" OK);
	EXPECT(0, "KEYWORD work", "* SEARCH 2 4\r\n" OK);
	EXPECT(0, "KEYWORD $junk", "* SEARCH 3 4\r\n" OK);
	EXPECT(0, "UNKEYWORD work", "* SEARCH 1 3\r\n" OK);
	EXPECT(0, "KEYWORD nosuch", "* SEARCH\r\n" OK);
}

static void
test_sizes_sets_uid(void)
{
	EXPECT(0, "LARGER 1000", "* SEARCH 2 3\r\n" OK);
	EXPECT(0, "SMALLER 500", "* SEARCH 4\r\n" OK);
	EXPECT(0, "2:3", "* SEARCH 2 3\r\n" OK);
	EXPECT(0, "*", "* SEARCH 4\r\n" OK);
	EXPECT(0, "UID 5:9", "* SEARCH 2 3\r\n" OK);
	EXPECT(0, "UID 10:*", "* SEARCH 4\r\n" OK);
	/* n:* with n above every UID is the last message; a written
	 * 4294967295 is no "*" (RFC 3501 6.4.8, 9051 6.4.4.1). */
	EXPECT(0, "UID 13:*", "* SEARCH 4\r\n" OK);
	EXPECT(0, "UID 13:4294967295", "* SEARCH\r\n" OK);
	EXPECT(1, "ALL", "* SEARCH 3 5 9 12\r\n" OK);
	EXPECT(1, "1,3", "* SEARCH 3 9\r\n" OK);
	EXPECT(0, "MODSEQ 25", "* SEARCH 3 4 (MODSEQ 40)\r\n" OK);
}

static void
test_dates(void)
{
	EXPECT(0, "ON 10-Jan-2024", "* SEARCH 1\r\n" OK);
	EXPECT(0, "BEFORE 10-Jan-2024", "* SEARCH\r\n" OK);
	EXPECT(0, "SINCE 10-Feb-2024", "* SEARCH 2 3 4\r\n" OK);
	EXPECT(0, "BEFORE \"11-Mar-2024\"", "* SEARCH 1 2 3\r\n" OK);
	/* Message 3 is at 12:00 UTC -0500: its own date is still 10 Mar. */
	EXPECT(0, "ON 10-Mar-2024", "* SEARCH 3\r\n" OK);
	EXPECT(0, "SENTBEFORE 10-Jan-2024", "* SEARCH 2\r\n" OK);
	EXPECT(0, "SENTON 10-Jan-2024", "* SEARCH 1\r\n" OK);
	EXPECT(0, "SENTSINCE 1-Feb-2024", "* SEARCH 4\r\n" OK);
	/* Message 4 was sent 11 Mar 12:00 UTC, 12 Mar 01:00 +1300: the
	 * Date header's own date counts (RFC 3501 6.4.4). */
	EXPECT(0, "SENTON 12-Mar-2024", "* SEARCH 4\r\n" OK);
	EXPECT(0, "SENTON 11-Mar-2024", "* SEARCH\r\n" OK);
	EXPECT(0, "SENTBEFORE 12-Mar-2024", "* SEARCH 1 2\r\n" OK);
}

static void
test_headers_and_text(void)
{
	EXPECT(0, "FROM carol", "* SEARCH 1 4\r\n" OK);
	EXPECT(0, "SUBJECT LUNCH", "* SEARCH 1 4\r\n" OK);
	EXPECT(0, "CC boss", "* SEARCH 2\r\n" OK);
	EXPECT(0, "HEADER Cc \"\"", "* SEARCH 2\r\n" OK);
	EXPECT(0, "TO anybody", "* SEARCH\r\n" OK);
	EXPECT(0, "BODY pizza", "* SEARCH 1 4\r\n" OK);
	EXPECT(0, "BODY lunch", "* SEARCH\r\n" OK);
	EXPECT(0, "TEXT lunch", "* SEARCH 1 4\r\n" OK);
	EXPECT(0, "CHARSET UTF-8 BODY {5}pizza", "* SEARCH 1 4\r\n" OK);
}

static void
test_logic(void)
{
	EXPECT(0, "NOT SEEN", "* SEARCH 2 4\r\n" OK);
	EXPECT(0, "OR FLAGGED DRAFT", "* SEARCH 2 4\r\n" OK);
	EXPECT(0, "SEEN RECENT", "* SEARCH 3\r\n" OK);
	EXPECT(0, "(SEEN RECENT) OR 1 4", "* SEARCH\r\n" OK);
	EXPECT(0, "OR (SEEN RECENT) NOT (OR 1 3)", "* SEARCH 2 3 4\r\n" OK);
	EXPECT(0, "NOT NOT NOT DELETED", "* SEARCH 1 2 4\r\n" OK);
	EXPECT(0, "OR OR 1 2 3", "* SEARCH 1 2 3\r\n" OK);
}

static void
test_esearch(void)
{
	EXPECT(0, "RETURN (MIN MAX COUNT) UNSEEN",
	       "* ESEARCH (TAG \"t\") MIN 2 MAX 4 COUNT 2\r\n" OK);
	EXPECT(1, "RETURN () ALL",
	       "* ESEARCH (TAG \"t\") UID ALL 3,5,9,12\r\n" OK);
	EXPECT(1, "RETURN (ALL) 1:2",
	       "* ESEARCH (TAG \"t\") UID ALL 3,5\r\n" OK);
	EXPECT(0, "RETURN (COUNT) KEYWORD nosuch",
	       "* ESEARCH (TAG \"t\") COUNT 0\r\n" OK);
	EXPECT(0, "RETURN (MIN) KEYWORD nosuch",
	       "* ESEARCH (TAG \"t\")\r\n" OK);
	/* RFC 7162 3.1.5: MIN/MAX alone give the MODSEQ of what they
	 * return, ALL and COUNT that of every message found. */
	EXPECT(0, "RETURN (MIN) MODSEQ 15",
	       "* ESEARCH (TAG \"t\") MIN 2 MODSEQ 20\r\n" OK);
	EXPECT(0, "RETURN (MIN MAX) 2:3 MODSEQ 15",
	       "* ESEARCH (TAG \"t\") MIN 2 MAX 3 MODSEQ 30\r\n" OK);
	EXPECT(0, "RETURN (MIN COUNT) MODSEQ 15",
	       "* ESEARCH (TAG \"t\") MIN 2 COUNT 3 MODSEQ 40\r\n" OK);
}

static void
test_errors(void)
{
	EXPECT(0, "BOGUS", "t BAD SEARCH: unknown search key\r\n");
	EXPECT(0, "OR SEEN", "t BAD SEARCH: expected a space\r\n");
	EXPECT(0, "(SEEN", "t BAD SEARCH: expected )\r\n");
	EXPECT(0, "SINCE 32-Jan-2024", "t BAD SEARCH: invalid date\r\n");
	EXPECT(0, "CHARSET KOI8-R ALL",
	       "t NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n");
	EXPECT(0, "RETURN (BOGUS) ALL",
	       "t BAD SEARCH: unknown RETURN option\r\n");
	EXPECT(0, "", "t BAD SEARCH: expected an atom\r\n");
}

static void
test_deep_nesting_refused(void)
{
	char q[512];
	size_t i;

	for (i = 0; i < 100; i++)
		memcpy(q + i * 4, "NOT ", 4);
	memcpy(q + 400, "ALL", 4);
	CU_ASSERT(strstr(run(0, q), "nested too deeply") != NULL);
	/* 60 levels are fine. */
	memcpy(q + 240, "ALL", 4);
	CU_ASSERT(strstr(run(0, q), "* SEARCH 1 2 3 4") != NULL);
}

/* More keys or longer strings than the settings allow: NO [LIMIT],
 * found before the rest of the command is parsed. */
static void
test_limits(void)
{
	char *q = malloc(20000);
	size_t i;

	for (i = 0; i < 300; i++)
		memcpy(q + i * 4, "ALL ", 4);
	memcpy(q + 1196, "ALL", 4);
	EXPECT(0, q, "t NO [LIMIT] SEARCH: too many search keys\r\n");
	memcpy(q + 1020, "ALL", 4);   /* 256 keys */
	EXPECT(0, q, "* SEARCH 1 2 3 4\r\n" OK);
	/* run() takes 4 KiB of command: a smaller limit for the test. */
	imap_cfg.max_search_needle = 1024;
	memcpy(q, "BODY pizza TEXT ", 16);
	memset(q + 16, 'x', 1020);
	q[1036] = '\0';
	EXPECT(0, q, "t NO [LIMIT] SEARCH: search strings too long\r\n");
	q[1030] = '\0';
	EXPECT(0, q, "* SEARCH\r\n" OK);
	imap_cfg.max_search_needle = 16384;
	free(q);
}

/* Each message is decoded once for all its BODY and TEXT keys. */
static void
test_text_decoded_once(void)
{
	text_decodings = 0;
	EXPECT(0, "TEXT pizza BODY pizza TEXT lunch TEXT pizza",
	       "* SEARCH 1 4\r\n" OK);
	CU_ASSERT_EQUAL(text_decodings, 4);
	text_decodings = 0;
	EXPECT(0, "OR BODY quarterly TEXT lunch NOT BODY zzz",
	       "* SEARCH 1 2 4\r\n" OK);
	CU_ASSERT_EQUAL(text_decodings, 4);
}

static CU_TestInfo search_tests[] = {
	{ "flags and keywords", test_flags },
	{ "sizes, sets, UIDs, MODSEQ", test_sizes_sets_uid },
	{ "internal and sent dates", test_dates },
	{ "headers, BODY, TEXT", test_headers_and_text },
	{ "NOT, OR, lists", test_logic },
	{ "ESEARCH results", test_esearch },
	{ "errors", test_errors },
	{ "nesting bound", test_deep_nesting_refused },
	{ "key and string limits", test_limits },
	{ "one decoding per message", test_text_decoded_once },
	CU_TEST_INFO_NULL,
};

static int
suite_init(void)
{
	imap_host = host_table();
	imap_storage = &fake_storage;
	imap_cfg.max_search_keys = 256;
	imap_cfg.max_search_needle = 16384;
	return 0;
}

static int
suite_fini(void)
{
	imap_buf_free(&captured);
	return 0;
}

static CU_SuiteInfo suites[] = {
	{ "imap search", suite_init, suite_fini, NULL, NULL, search_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
