/*
 * test_relay_dsn.c - the DSN builder (modules/relay/relay_dsn.c): each
 * report is parsed back with the core's MIME parser (through the host
 * table, as the relay module sees it) and checked part by part and
 * field by field.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "host.h"
#include "relay_dsn.h"

static const struct postern_host *host;
static postern_pool_t *pool;
static char *tmpdir;
static int orig_fd = -1;
static const off_t orig_off = 100;   /* the original sits at an offset */

static const char original[] =
	"Received: from client.example.org by mx.example.com\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: Bob <bob@example.net>\r\n"
	"Subject: Hello\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"\r\n"
	"Hi Bob,\r\n"
	"\r\n"
	"see you.\r\n";
#define ORIG_HEADER_LEN 159   /* through the CRLF of Message-ID */

/* A parsed report. */
static char *text;
static size_t text_len;
static struct postern_mime_part *root;

static void
setup(void)
{
	char pad[orig_off];

	host = host_table();
	pool = host->pool_create(0);
	tmpdir = unit_tmpdir();
	free(unit_write_file(tmpdir, "orig", ""));
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/orig", tmpdir);
		orig_fd = open(path, O_RDWR);
	}
	CU_ASSERT_FATAL(orig_fd >= 0);
	memset(pad, 'x', sizeof(pad));
	CU_ASSERT_EQUAL(write(orig_fd, pad, sizeof(pad)), (ssize_t)sizeof(pad));
	CU_ASSERT_EQUAL(write(orig_fd, original, sizeof(original) - 1),
	    (ssize_t)sizeof(original) - 1);
	text = NULL;
	root = NULL;
}

static void
teardown(void)
{
	close(orig_fd);
	host->pool_destroy(pool);
	unit_rm_rf(tmpdir);
	free(tmpdir);
	free(text);
}

static struct relay_dsn_rcpt rcpts[2];

static struct relay_dsn
base_dsn(void)
{
	struct relay_dsn d;

	memset(rcpts, 0, sizeof(rcpts));
	rcpts[0].final_rcpt = "bob@example.net";
	rcpts[0].orcpt = "rfc822;Bob@Example.NET";
	rcpts[0].action = RELAY_DSN_FAILED;
	rcpts[0].status = "5.1.1";
	rcpts[0].remote_mta = "mx1.example.net";
	rcpts[0].diagnostic = "550 5.1.1 <bob@example.net>: no such user";
	rcpts[0].last_attempt = 1764892800;   /* 2025-12-05 00:00:00 UTC */
	rcpts[1].final_rcpt = "carol@example.net";
	rcpts[1].action = RELAY_DSN_DELAYED;
	rcpts[1].status = "4.4.1";
	rcpts[1].will_retry_until = 1765324800;
	memset(&d, 0, sizeof(d));
	d.reporting_mta = "mx.example.com";
	d.sender = "alice@example.org";
	d.envid = "QQ314159";
	d.arrival = 1764806400;               /* 2025-12-04 00:00:00 UTC */
	d.now = 1764892900;
	d.unique = "4XyZ/q!1";
	d.orig_fd = orig_fd;
	d.orig_offset = orig_off;
	d.orig_len = sizeof(original) - 1;
	d.rcpts = rcpts;
	d.nrcpts = 2;
	return d;
}

/* Builds the report into memory and parses it. */
static enum relay_dsn_result
build(const struct relay_dsn *d)
{
	struct relay_out out;
	enum relay_dsn_result r;
	char err[256];
	postern_mime_parser_t *p;

	relay_out_init_mem(&out);
	r = relay_dsn_write(d, &out, err, sizeof(err));
	free(text);
	text = relay_out_take(&out, &text_len);
	if (r != RELAY_DSN_OK)
		return r;
	p = host->mime_parser_create(pool, NULL);
	host->mime_parser_feed(p, text, text_len);
	root = host->mime_parser_finish(p);
	return r;
}

static struct postern_mime_part *
child(struct postern_mime_part *p, unsigned n)
{
	struct postern_mime_part *c = p->children;

	while (c != NULL && n-- > 0)
		c = c->next;
	return c;
}

/* The value of `name` in the header or field block starting at
 * text[start] (up to the first empty line), or NULL. */
static const char *
field(size_t start, size_t end, const char *name)
{
	struct postern_mime_header_iter it;
	struct postern_mime_field f;

	it.data = text + start;
	it.len = end - start;
	it.pos = 0;
	while (host->mime_header_next(&it, pool, &f))
		if (strcasecmp(f.name, name) == 0)
			return f.value;
	return NULL;
}

/* Offset of the n-th block (0: per-message) of a delivery-status body. */
static size_t
block(struct postern_mime_part *ds, int n)
{
	size_t pos = ds->body_start;
	const char *e;

	while (n-- > 0) {
		e = memmem(text + pos, ds->end - pos, "\r\n\r\n", 4);
		if (e == NULL)
			return ds->end;
		pos = (size_t)(e - text) + 4;
	}
	return pos;
}

static void
check_lines(void)
{
	size_t i, col = 0;

	/* CRLF only, and no line over 998 octets (RFC 5322 2.1.1). */
	for (i = 0; i < text_len; i++) {
		if (text[i] == '\n') {
			CU_ASSERT(i > 0 && text[i - 1] == '\r');
			col = 0;
		} else if (++col > 998) {
			CU_FAIL("line over 998 octets");
			return;
		}
	}
}

static void
test_structure(void)
{
	struct relay_dsn d = base_dsn();
	struct postern_mime_part *h, *ds, *msg;

	d.ret = RELAY_DSN_RET_FULL;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	check_lines();
	CU_ASSERT_STRING_EQUAL(root->type, "multipart");
	CU_ASSERT_STRING_EQUAL(root->subtype, "report");
	CU_ASSERT_STRING_EQUAL(postern_mime_param_get(root->params,
	    root->nparams, "report-type"), "delivery-status");
	CU_ASSERT_EQUAL_FATAL(root->nchildren, 3);
	CU_ASSERT_EQUAL(root->flags & (POSTERN_MIME_NO_END |
	    POSTERN_MIME_NO_BOUNDARY), 0);
	h = child(root, 0);
	ds = child(root, 1);
	msg = child(root, 2);
	CU_ASSERT_STRING_EQUAL(h->type, "text");
	CU_ASSERT_STRING_EQUAL(h->subtype, "plain");
	CU_ASSERT_STRING_EQUAL(ds->type, "message");
	CU_ASSERT_STRING_EQUAL(ds->subtype, "delivery-status");
	CU_ASSERT_STRING_EQUAL(msg->type, "message");
	CU_ASSERT_STRING_EQUAL(msg->subtype, "rfc822");
	CU_ASSERT_EQUAL(msg->nchildren, 1);
	CU_ASSERT_STRING_EQUAL(msg->children->envelope->subject, "Hello");
	/* The original, byte for byte. */
	CU_ASSERT_EQUAL_FATAL(msg->end - msg->body_start,
	    sizeof(original) - 1);
	CU_ASSERT_EQUAL(memcmp(text + msg->body_start, original,
	    sizeof(original) - 1), 0);

	/* The report's own header. */
	CU_ASSERT_STRING_EQUAL(field(0, root->body_start, "From"),
	    "Mail Delivery System <MAILER-DAEMON@mx.example.com>");
	CU_ASSERT_STRING_EQUAL(field(0, root->body_start, "To"),
	    "<alice@example.org>");
	CU_ASSERT_STRING_EQUAL(field(0, root->body_start, "Subject"),
	    "Undelivered Mail Returned to Sender");
	CU_ASSERT_STRING_EQUAL(field(0, root->body_start, "Auto-Submitted"),
	    "auto-replied");
	CU_ASSERT_STRING_EQUAL(field(0, root->body_start, "Date"),
	    "Fri, 05 Dec 2025 00:01:40 +0000");
	CU_ASSERT_PTR_NOT_NULL(field(0, root->body_start, "Message-ID"));
	CU_ASSERT_STRING_EQUAL(root->envelope->subject,
	    "Undelivered Mail Returned to Sender");
	/* The queue id's safe characters are in the boundary. */
	CU_ASSERT_PTR_NOT_NULL(strstr(postern_mime_param_get(root->params,
	    root->nparams, "boundary"), "4XyZq1."));
	/* The human-readable part names each recipient. */
	CU_ASSERT_PTR_NOT_NULL(memmem(text + h->body_start,
	    h->end - h->body_start, "<bob@example.net>: failed (5.1.1)", 33));
	CU_ASSERT_PTR_NOT_NULL(memmem(text + h->body_start,
	    h->end - h->body_start, "mx1.example.net said: 550 5.1.1", 31));
}

static void
test_delivery_status_fields(void)
{
	struct relay_dsn d = base_dsn();
	struct postern_mime_part *ds;
	size_t b0, b1, b2, b3;

	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	ds = child(root, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ds);
	b0 = block(ds, 0);
	b1 = block(ds, 1);
	b2 = block(ds, 2);
	b3 = block(ds, 3);
	CU_ASSERT_STRING_EQUAL(field(b0, b1, "Reporting-MTA"),
	    "dns; mx.example.com");
	CU_ASSERT_STRING_EQUAL(field(b0, b1, "Original-Envelope-Id"),
	    "QQ314159");
	CU_ASSERT_STRING_EQUAL(field(b0, b1, "Arrival-Date"),
	    "Thu, 04 Dec 2025 00:00:00 +0000");
	CU_ASSERT_PTR_NULL(field(b0, b1, "Final-Recipient"));

	CU_ASSERT_STRING_EQUAL(field(b1, b2, "Original-Recipient"),
	    "rfc822;Bob@Example.NET");
	CU_ASSERT_STRING_EQUAL(field(b1, b2, "Final-Recipient"),
	    "rfc822; bob@example.net");
	CU_ASSERT_STRING_EQUAL(field(b1, b2, "Action"), "failed");
	CU_ASSERT_STRING_EQUAL(field(b1, b2, "Status"), "5.1.1");
	CU_ASSERT_STRING_EQUAL(field(b1, b2, "Remote-MTA"),
	    "dns; mx1.example.net");
	CU_ASSERT_STRING_EQUAL(field(b1, b2, "Diagnostic-Code"),
	    "smtp; 550 5.1.1 <bob@example.net>: no such user");
	CU_ASSERT_STRING_EQUAL(field(b1, b2, "Last-Attempt-Date"),
	    "Fri, 05 Dec 2025 00:00:00 +0000");
	CU_ASSERT_PTR_NULL(field(b1, b2, "Will-Retry-Until"));

	CU_ASSERT_PTR_NULL(field(b2, b3, "Original-Recipient"));
	CU_ASSERT_STRING_EQUAL(field(b2, b3, "Final-Recipient"),
	    "rfc822; carol@example.net");
	CU_ASSERT_STRING_EQUAL(field(b2, b3, "Action"), "delayed");
	CU_ASSERT_STRING_EQUAL(field(b2, b3, "Status"), "4.4.1");
	CU_ASSERT_PTR_NULL(field(b2, b3, "Remote-MTA"));
	CU_ASSERT_PTR_NULL(field(b2, b3, "Diagnostic-Code"));
	CU_ASSERT_STRING_EQUAL(field(b2, b3, "Will-Retry-Until"),
	    "Wed, 10 Dec 2025 00:00:00 +0000");
}

static void
test_every_action(void)
{
	static const struct {
		enum relay_dsn_action a;
		const char *name, *status;
	} acts[] = {
		{ RELAY_DSN_FAILED, "failed", "5.0.0" },
		{ RELAY_DSN_DELAYED, "delayed", "4.0.0" },
		{ RELAY_DSN_DELIVERED, "delivered", "2.0.0" },
		{ RELAY_DSN_RELAYED, "relayed", "2.0.0" },
		{ RELAY_DSN_EXPANDED, "expanded", "2.0.0" },
	};
	struct relay_dsn d;
	size_t i;

	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		d = base_dsn();
		d.nrcpts = 1;
		rcpts[0].action = acts[i].a;
		rcpts[0].status = acts[i].status;
		CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
		CU_ASSERT_STRING_EQUAL(field(block(child(root, 1), 1),
		    block(child(root, 1), 2), "Action"), acts[i].name);
		CU_ASSERT_STRING_EQUAL(relay_dsn_action_name(acts[i].a),
		    acts[i].name);
	}
	/* The subject follows the most serious outcome. */
	CU_ASSERT_STRING_EQUAL(root->envelope->subject,
	    "Successful Mail Delivery Report");
	d = base_dsn();
	d.rcpts = &rcpts[1];
	d.nrcpts = 1;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	CU_ASSERT_STRING_EQUAL(root->envelope->subject,
	    "Delayed Mail (still being retried)");
}

static void
test_ret_hdrs(void)
{
	struct relay_dsn d = base_dsn();
	struct postern_mime_part *msg;

	d.ret = RELAY_DSN_RET_HDRS;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	msg = child(root, 2);
	CU_ASSERT_STRING_EQUAL(msg->type, "text");
	CU_ASSERT_STRING_EQUAL(msg->subtype, "rfc822-headers");
	CU_ASSERT_EQUAL_FATAL(msg->end - msg->body_start, ORIG_HEADER_LEN);
	CU_ASSERT_EQUAL(memcmp(text + msg->body_start, original,
	    ORIG_HEADER_LEN), 0);
	CU_ASSERT_PTR_NULL(memmem(text, text_len, "see you", 7));
}

static void
test_ret_default_by_size(void)
{
	struct relay_dsn d = base_dsn();

	d.full_max = sizeof(original) - 1;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	CU_ASSERT_STRING_EQUAL(child(root, 2)->subtype, "rfc822");
	d.full_max = sizeof(original) - 2;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	CU_ASSERT_STRING_EQUAL(child(root, 2)->subtype, "rfc822-headers");
	/* RET=FULL wins over the size. */
	d.ret = RELAY_DSN_RET_FULL;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	CU_ASSERT_STRING_EQUAL(child(root, 2)->subtype, "rfc822");
}

static void
test_header_across_reads(void)
{
	struct relay_dsn d = base_dsn();
	struct postern_mime_part *msg;
	size_t hlen = 65536 - 1, i;
	char *big;

	/* A header whose ending empty line starts at the last octet of the
	 * builder's first 64 KiB read. */
	big = malloc(hlen + 64);
	memcpy(big, "X-Long: ", 8);
	for (i = 8; i < hlen - 2; i++)
		big[i] = (i % 70 == 0) ? ' ' : 'a';
	memcpy(big + hlen - 2, "\r\n\r\nbody\r\n", 10);
	CU_ASSERT_EQUAL_FATAL(pwrite(orig_fd, big, hlen + 8, orig_off),
	    (ssize_t)hlen + 8);
	d.orig_len = hlen + 8;
	d.ret = RELAY_DSN_RET_HDRS;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	msg = child(root, 2);
	CU_ASSERT_EQUAL(msg->end - msg->body_start, hlen);
	CU_ASSERT_EQUAL(memcmp(text + msg->body_start, big, hlen), 0);
	free(big);
}

static void
test_null_sender(void)
{
	struct relay_dsn d = base_dsn();

	d.sender = "";
	CU_ASSERT_EQUAL(build(&d), RELAY_DSN_NULL_SENDER);
	CU_ASSERT_EQUAL(text_len, 0);
	d.sender = NULL;
	CU_ASSERT_EQUAL(build(&d), RELAY_DSN_NULL_SENDER);
	CU_ASSERT_EQUAL(text_len, 0);
}

static void
test_invalid(void)
{
	struct relay_dsn d = base_dsn();
	char err[256];
	struct relay_out out;

	rcpts[1].status = "4.4";
	relay_out_init_mem(&out);
	CU_ASSERT_EQUAL(relay_dsn_write(&d, &out, err, sizeof(err)),
	    RELAY_DSN_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "recipient 2"));
	relay_out_release(&out);
	CU_ASSERT_EQUAL(relay_dsn_status_valid("5.1.1"), 1);
	CU_ASSERT_EQUAL(relay_dsn_status_valid("2.0.0"), 1);
	CU_ASSERT_EQUAL(relay_dsn_status_valid("4.123.456"), 1);
	CU_ASSERT_EQUAL(relay_dsn_status_valid("3.1.1"), 0);
	CU_ASSERT_EQUAL(relay_dsn_status_valid("5.1234.1"), 0);
	CU_ASSERT_EQUAL(relay_dsn_status_valid("5.1.1 "), 0);
	CU_ASSERT_EQUAL(relay_dsn_status_valid("5..1"), 0);
	CU_ASSERT_EQUAL(relay_dsn_status_valid(NULL), 0);
	d = base_dsn();
	d.nrcpts = 0;
	CU_ASSERT_EQUAL(build(&d), RELAY_DSN_INVALID);
	d = base_dsn();
	d.reporting_mta = "";
	CU_ASSERT_EQUAL(build(&d), RELAY_DSN_INVALID);
}

static void
test_short_original(void)
{
	struct relay_dsn d = base_dsn();
	char err[256];
	struct relay_out out;

	d.ret = RELAY_DSN_RET_FULL;
	d.orig_len += 10;
	relay_out_init_mem(&out);
	CU_ASSERT_EQUAL(relay_dsn_write(&d, &out, err, sizeof(err)),
	    RELAY_DSN_IO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "ends early"));
	relay_out_release(&out);
}

static void
test_hostile_text(void)
{
	struct relay_dsn d = base_dsn();
	char diag[3000];
	const char *v;
	size_t i;

	/* A remote reply that tries to add a header line, and one far too
	 * long: both made safe. */
	rcpts[0].diagnostic = "550 no\r\nX-Injected: yes";
	rcpts[1].final_rcpt = "carol\xc3\xa9@example.net";
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	check_lines();
	CU_ASSERT_PTR_NULL(memmem(text, text_len, "\nX-Injected", 11));
	CU_ASSERT_STRING_EQUAL(field(block(child(root, 1), 1),
	    block(child(root, 1), 2), "Diagnostic-Code"),
	    "smtp; 550 no  X-Injected: yes");
	/* 8-bit octets: '?' in the ASCII report, kept in the text part. */
	CU_ASSERT_STRING_EQUAL(field(block(child(root, 1), 2),
	    block(child(root, 1), 3), "Final-Recipient"),
	    "rfc822; carol??@example.net");
	CU_ASSERT_STRING_EQUAL(postern_mime_param_get(child(root, 0)->params,
	    child(root, 0)->nparams, "charset"), "utf-8");

	for (i = 0; i < sizeof(diag) - 1; i++)
		diag[i] = i % 9 == 8 ? ' ' : 'x';
	diag[sizeof(diag) - 1] = '\0';
	d = base_dsn();
	rcpts[0].diagnostic = diag;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	check_lines();
	v = field(block(child(root, 1), 1), block(child(root, 1), 2),
	    "Diagnostic-Code");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT(strlen(v) <= RELAY_DSN_FIELD_MAX + 6);
	CU_ASSERT(strlen(v) > RELAY_DSN_FIELD_MAX - 20);
}

static void
test_8bit_original(void)
{
	struct relay_dsn d = base_dsn();

	d.orig_8bit = 1;
	d.ret = RELAY_DSN_RET_FULL;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	CU_ASSERT_STRING_EQUAL(child(root, 2)->encoding, "8bit");
	CU_ASSERT_STRING_EQUAL(root->encoding, "8bit");
	d.orig_8bit = 0;
	CU_ASSERT_EQUAL_FATAL(build(&d), RELAY_DSN_OK);
	CU_ASSERT_STRING_EQUAL(child(root, 2)->encoding, "7bit");
}

static void
test_to_fd(void)
{
	struct relay_dsn d = base_dsn();
	struct relay_out out;
	char path[512], *back;
	int fd;

	snprintf(path, sizeof(path), "%s/dsn", tmpdir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	relay_out_init_fd(&out, fd);
	CU_ASSERT_EQUAL(relay_dsn_write(&d, &out, NULL, 0), RELAY_DSN_OK);
	close(fd);
	back = unit_read_file(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	CU_ASSERT_PTR_NOT_NULL(strstr(back, "Content-Type: "
	    "message/delivery-status\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(back, "\r\nFinal-Recipient: rfc822; "
	    "bob@example.net\r\n"));
	free(back);
	/* A write error is reported. */
	relay_out_init_fd(&out, -1);
	CU_ASSERT_EQUAL(relay_dsn_write(&d, &out, NULL, 0), RELAY_DSN_IO);
}

static CU_TestInfo dsn_tests[] = {
	{ "multipart/report structure, RET=FULL", test_structure },
	{ "delivery-status fields", test_delivery_status_fields },
	{ "every action", test_every_action },
	{ "RET=HDRS gives the header only", test_ret_hdrs },
	{ "no RET: by size", test_ret_default_by_size },
	{ "a header ending across two reads", test_header_across_reads },
	{ "never to the null sender", test_null_sender },
	{ "invalid arguments", test_invalid },
	{ "a short original is an I/O error", test_short_original },
	{ "network text made safe", test_hostile_text },
	{ "8-bit originals declared 8bit", test_8bit_original },
	{ "written to a file descriptor", test_to_fd },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "relay_dsn", NULL, NULL, setup, teardown, dsn_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
