/*
 * test_mime.c - the core MIME parser (core/mime*.c) on a corpus of
 * messages built here: simple and nested multiparts, message/rfc822,
 * digests, preamble and epilogue, broken, missing and final-less
 * boundaries, missing headers, 8-bit and NUL octets, long headers and
 * lines, RFC 2231 parameters; chunking at every offset gives the same
 * tree; limits.  Then the helpers: header fields, RFC 2047 words, body
 * decoders and charsets, address lists, dates, and the serialized form
 * (round trip; truncated and corrupted input refused without a crash).
 * Last, hostile input: memory linear in the input (counted in pool
 * octets, not timed) and a limited pool's budget honoured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mime/mime.h"
#include "pool.h"

static postern_pool_t *pool;

/* ---- helpers ---------------------------------------------------------- */

static struct postern_mime_part *
parse_chunked(const char *msg, size_t len, size_t chunk)
{
	postern_mime_parser_t *p = mime_parser_create(pool, NULL);
	size_t i, n;

	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		mime_parser_feed(p, msg + i, n);
	}
	return mime_parser_finish(p);
}

static struct postern_mime_part *
parse(const char *msg)
{
	return parse_chunked(msg, strlen(msg), strlen(msg) + 1);
}

/* "type/subtype[hs,bs,end,lines](children)" for the whole tree. */
static void
describe_into(const struct postern_mime_part *p, char *buf, size_t size)
{
	const struct postern_mime_part *c;
	size_t len = strlen(buf);

	snprintf(buf + len, size - len, "%s/%s[%llu,%llu,%llu,%llu]",
	         p->type, p->subtype, (unsigned long long)p->header_start,
	         (unsigned long long)p->body_start,
	         (unsigned long long)p->end,
	         (unsigned long long)p->body_lines);
	if (p->children == NULL)
		return;
	strncat(buf, "(", size - strlen(buf) - 1);
	for (c = p->children; c != NULL; c = c->next) {
		describe_into(c, buf, size);
		if (c->next != NULL)
			strncat(buf, " ", size - strlen(buf) - 1);
	}
	strncat(buf, ")", size - strlen(buf) - 1);
}

static const char *
describe(const struct postern_mime_part *p)
{
	static char buf[4096];

	buf[0] = '\0';
	describe_into(p, buf, sizeof(buf));
	return buf;
}

static const struct postern_mime_part *
child(const struct postern_mime_part *p, unsigned n)
{
	const struct postern_mime_part *c = p->children;

	while (c != NULL && --n > 0)
		c = c->next;
	return c;
}

static const char *
param(const struct postern_mime_part *p, const char *name)
{
	return postern_mime_param_get(p->params, p->nparams, name);
}

/* The serialized bytes, to compare two trees field by field. */
static int
same_tree(const struct postern_mime_part *a, const struct postern_mime_part *b)
{
	size_t la, lb;
	void *sa = mime_serialize(a, pool, &la);
	void *sb = mime_serialize(b, pool, &lb);

	return la == lb && memcmp(sa, sb, la) == 0;
}

/* ---- the corpus ------------------------------------------------------- */

static const char simple[] =
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.com\r\n"
	"Subject: hello\r\n"
	"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
	"Message-ID: <1@example.org>\r\n"
	"\r\n"
	"line one\r\n"
	"line two\r\n";

static const char mixed[] =
	"Subject: mixed\r\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--XX\r\n"
	"\r\n"
	"first\r\n"
	"--XX\r\n"
	"Content-Type: text/html; charset=UTF-8\r\n"
	"Content-Transfer-Encoding: Quoted-Printable\r\n"
	"\r\n"
	"<p>x</p>\r\n"
	"\r\n"
	"--XX--\r\n"
	"epilogue\r\n";

static const char nested[] =
	"Content-Type: multipart/mixed; boundary=outer\r\n"
	"\r\n"
	"--outer\r\n"
	"Content-Type: multipart/alternative; boundary=inner\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"plain\r\n"
	"--inner\r\n"
	"Content-Type: text/html\r\n"
	"\r\n"
	"<b>html</b>\r\n"
	"--inner--\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inside\r\n"
	"From: Carol <carol@example.net>\r\n"
	"Content-Type: multipart/mixed; boundary=deep\r\n"
	"\r\n"
	"--deep\r\n"
	"\r\n"
	"deep text\r\n"
	"--deep--\r\n"
	"--outer--\r\n";

static void
test_simple(void)
{
	struct postern_mime_part *r = parse(simple);

	CU_ASSERT_STRING_EQUAL(describe(r), "text/plain[0,139,159,2]");
	CU_ASSERT_STRING_EQUAL(param(r, "charset"), "us-ascii");
	CU_ASSERT_STRING_EQUAL(r->encoding, "7bit");
	CU_ASSERT(r->flags & POSTERN_MIME_MESSAGE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->envelope);
	CU_ASSERT_STRING_EQUAL(r->envelope->subject, "hello");
	CU_ASSERT_STRING_EQUAL(r->envelope->from, "Alice <alice@example.org>");
	CU_ASSERT_STRING_EQUAL(r->envelope->message_id, "<1@example.org>");
	CU_ASSERT_PTR_NULL(r->envelope->cc);
	CU_ASSERT_PTR_NULL(r->envelope->in_reply_to);
}

static void
test_mixed(void)
{
	struct postern_mime_part *r = parse(mixed);
	const struct postern_mime_part *a, *b;

	/* the CRLF before each boundary belongs to the boundary; the
	 * preamble and epilogue belong to no child */
	CU_ASSERT_STRING_EQUAL(describe(r),
		"multipart/mixed[0,64,212,12]("
		"text/plain[80,82,87,1] "
		"text/html[95,182,192,1])");
	a = child(r, 1);
	b = child(r, 2);
	CU_ASSERT_EQUAL(r->nchildren, 2);
	CU_ASSERT_EQUAL(memcmp(mixed + a->body_start, "first\r\n--XX", 11),
	                0);
	CU_ASSERT_EQUAL(a->body_lines, 1);
	CU_ASSERT_STRING_EQUAL(param(a, "charset"), "us-ascii");
	CU_ASSERT_EQUAL(memcmp(mixed + b->header_start, "Content-Type: text/html",
	                       23), 0);
	CU_ASSERT_EQUAL(memcmp(mixed + b->body_start, "<p>x</p>\r\n\r\n--",
	                       14), 0);
	CU_ASSERT_EQUAL(b->end - b->body_start, strlen("<p>x</p>\r\n"));
	CU_ASSERT_EQUAL(b->body_lines, 1);
	CU_ASSERT_STRING_EQUAL(b->subtype, "html");
	CU_ASSERT_STRING_EQUAL(param(b, "charset"), "UTF-8");
	CU_ASSERT_STRING_EQUAL(b->encoding, "quoted-printable");
	CU_ASSERT_EQUAL(r->end, strlen(mixed));
	CU_ASSERT_FALSE(r->flags & POSTERN_MIME_NO_END);
}

static void
test_nested(void)
{
	struct postern_mime_part *r = parse(nested);
	const struct postern_mime_part *alt, *msg, *inner, *deep;

	CU_ASSERT_EQUAL_FATAL(r->nchildren, 2);
	alt = child(r, 1);
	msg = child(r, 2);
	CU_ASSERT_STRING_EQUAL(alt->subtype, "alternative");
	CU_ASSERT_EQUAL(alt->nchildren, 2);
	CU_ASSERT_STRING_EQUAL(child(alt, 1)->subtype, "plain");
	CU_ASSERT_EQUAL(child(alt, 1)->end - child(alt, 1)->body_start, 5);
	CU_ASSERT_STRING_EQUAL(child(alt, 2)->subtype, "html");
	CU_ASSERT_STRING_EQUAL(msg->type, "message");
	CU_ASSERT_EQUAL_FATAL(msg->nchildren, 1);
	inner = msg->children;
	CU_ASSERT(inner->flags & POSTERN_MIME_MESSAGE);
	CU_ASSERT_EQUAL(inner->header_start, msg->body_start);
	CU_ASSERT_EQUAL(inner->end, msg->end);
	CU_ASSERT_STRING_EQUAL(inner->envelope->subject, "inside");
	CU_ASSERT_STRING_EQUAL(inner->subtype, "mixed");
	CU_ASSERT_EQUAL_FATAL(inner->nchildren, 1);
	deep = inner->children;
	CU_ASSERT_EQUAL(memcmp(nested + deep->body_start, "deep text", 9), 0);
	CU_ASSERT_EQUAL(deep->end - deep->body_start, 9);
	/* message/rfc822 lines: the whole embedded message */
	CU_ASSERT_EQUAL(msg->body_lines, 8);
	CU_ASSERT_EQUAL(msg->end, (uint64_t)(strstr(nested, "\r\n--outer--") -
	                                     nested));
}

static void
test_digest(void)
{
	static const char msg[] =
		"Content-Type: multipart/digest; boundary=d\r\n"
		"\r\n"
		"--d\r\n"
		"\r\n"
		"Subject: one\r\n"
		"\r\n"
		"body one\r\n"
		"--d\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"not a message\r\n"
		"--d--\r\n";
	struct postern_mime_part *r = parse(msg);
	const struct postern_mime_part *a = child(r, 1), *b = child(r, 2);

	CU_ASSERT_STRING_EQUAL(a->type, "message");
	CU_ASSERT_STRING_EQUAL(a->subtype, "rfc822");
	CU_ASSERT_EQUAL(a->nparams, 0);
	CU_ASSERT_EQUAL_FATAL(a->nchildren, 1);
	CU_ASSERT_STRING_EQUAL(a->children->envelope->subject, "one");
	CU_ASSERT_STRING_EQUAL(a->children->type, "text");
	CU_ASSERT_STRING_EQUAL(b->type, "text");
	CU_ASSERT_EQUAL(b->nchildren, 0);
}

static void
test_broken_boundaries(void)
{
	/* no final boundary: the parts end where the input ends */
	static const char nofinal[] =
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\n\r\nonly\r\n";
	/* the boundary never comes: no children, all preamble */
	static const char never[] =
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"text\r\n--c\r\nmore\r\n";
	/* multipart without a boundary parameter */
	static const char noparam[] =
		"Content-Type: multipart/mixed\r\n\r\n--b\r\ntext\r\n";
	/* an outer boundary closes the inner multipart */
	static const char outer[] =
		"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
		"--o\r\n"
		"Content-Type: multipart/mixed; boundary=i\r\n\r\n"
		"--i\r\n\r\ninner\r\n"
		"--o\r\n\r\nsecond\r\n--o--\r\n";
	/* "--b" followed by text is not a boundary; padding is */
	static const char padding[] =
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b \t\r\n\r\n--bx\r\n--b\r\n\r\ntwo\r\n--b--  \r\n";
	/* empty parts: a boundary right after a boundary, or after a
	 * header's empty line (found by fuzz_mime) */
	static const char empty[] =
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\n--b\r\nX: y\r\n\r\n--b\r\n\r\n--b--\r\n";
	struct postern_mime_part *r;
	const struct postern_mime_part *c;
	size_t len;
	void *ser;

	r = parse(empty);
	CU_ASSERT_EQUAL_FATAL(r->nchildren, 3);
	for (c = r->children; c != NULL; c = c->next) {
		CU_ASSERT_EQUAL(c->end, c->body_start);
		CU_ASSERT_EQUAL(c->body_lines, 0);
		CU_ASSERT(c->end <= r->end);
	}
	CU_ASSERT_STRING_EQUAL(child(r, 2)->type, "text");
	ser = mime_serialize(r, pool, &len);
	CU_ASSERT_PTR_NOT_NULL(mime_deserialize(ser, len, pool));

	r = parse(nofinal);
	CU_ASSERT(r->flags & POSTERN_MIME_NO_END);
	CU_ASSERT_EQUAL_FATAL(r->nchildren, 1);
	CU_ASSERT_EQUAL(r->children->end, strlen(nofinal));
	CU_ASSERT_EQUAL(r->children->body_lines, 1);

	r = parse(never);
	CU_ASSERT_EQUAL(r->nchildren, 0);
	CU_ASSERT(r->flags & POSTERN_MIME_NO_END);
	CU_ASSERT_EQUAL(r->body_lines, 3);

	r = parse(noparam);
	CU_ASSERT_EQUAL(r->nchildren, 0);
	CU_ASSERT(r->flags & POSTERN_MIME_NO_BOUNDARY);

	r = parse(outer);
	CU_ASSERT_EQUAL_FATAL(r->nchildren, 2);
	CU_ASSERT_EQUAL(child(r, 1)->nchildren, 1);
	CU_ASSERT(child(r, 1)->flags & POSTERN_MIME_NO_END);
	CU_ASSERT_EQUAL(memcmp(outer + child(r, 2)->body_start, "second", 6),
	                0);

	r = parse(padding);
	CU_ASSERT_EQUAL_FATAL(r->nchildren, 2);
	CU_ASSERT_EQUAL(child(r, 1)->body_lines, 1);   /* "--bx" */
	CU_ASSERT_FALSE(r->flags & POSTERN_MIME_NO_END);
}

static void
test_missing_headers(void)
{
	struct postern_mime_part *r;

	r = parse("");
	CU_ASSERT_STRING_EQUAL(describe(r), "text/plain[0,0,0,0]");
	CU_ASSERT_PTR_NULL(r->envelope->subject);

	/* header only, no empty line, no final CRLF */
	r = parse("Subject: x\r\nFrom: y");
	CU_ASSERT_STRING_EQUAL(describe(r), "text/plain[0,19,19,0]");
	CU_ASSERT_STRING_EQUAL(r->envelope->from, "y");

	/* no header at all */
	r = parse("\r\nbody\r\nmore");
	CU_ASSERT_STRING_EQUAL(describe(r), "text/plain[0,2,12,2]");

	/* a part cut short by a boundary in its header */
	r = parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	          "--b\r\nContent-Type: text/html\r\n--b--\r\n");
	CU_ASSERT_EQUAL_FATAL(r->nchildren, 1);
	CU_ASSERT_STRING_EQUAL(r->children->subtype, "html");
	CU_ASSERT_EQUAL(r->children->end, r->children->body_start);

	/* an invalid Content-Type is text/plain; charset=us-ascii */
	r = parse("Content-Type: garbage\r\n\r\nx");
	CU_ASSERT_STRING_EQUAL(r->type, "text");
	CU_ASSERT_STRING_EQUAL(param(r, "charset"), "us-ascii");
}

static void
test_params(void)
{
	static const char msg[] =
		"Content-Type: Application/X-Stuff; (comment) NAME=\"a \\\"q\\\" b\";\r\n"
		" title*0*=us-ascii'en'This%20is%20; title*1=\" even more\";\r\n"
		" title*2*=%2A%2A%2Afun%2A%2A%2A; junk; x=y;\r\n"
		" latin*=iso-8859-1''caf%E9; c=v(comment)\r\n"
		"Content-Disposition: ATTACHMENT; filename=\"fallback.txt\";\r\n"
		" filename*=utf-8''%E2%82%AC.txt; size=1; SIZE=2;\r\n"
		"Content-Language: en-US, (c) fr\r\n"
		"Content-ID: <id@x>\r\n"
		"Content-Description: =?utf-8?q?desc?=\r\n"
		"Content-Location: http://x/y\r\n"
		"Content-MD5: Q2hlY2s=\r\n"
		"Content-Transfer-Encoding: BASE64 (c)\r\n"
		"\r\n";
	struct postern_mime_part *r = parse(msg);

	CU_ASSERT_STRING_EQUAL(r->type, "application");
	CU_ASSERT_STRING_EQUAL(r->subtype, "x-stuff");
	CU_ASSERT_EQUAL(r->nparams, 5);
	CU_ASSERT_STRING_EQUAL(param(r, "c"), "v");
	CU_ASSERT_STRING_EQUAL(param(r, "name"), "a \"q\" b");
	CU_ASSERT_STRING_EQUAL(param(r, "title"),
	                       "This is  even more***fun***");
	CU_ASSERT_STRING_EQUAL(param(r, "x"), "y");
	CU_ASSERT_STRING_EQUAL(param(r, "latin"), "caf\xc3\xa9");
	CU_ASSERT(r->params[1].extended);
	CU_ASSERT_FALSE(r->params[0].extended);
	CU_ASSERT_STRING_EQUAL(r->disposition, "attachment");
	CU_ASSERT_EQUAL(r->ndisposition_params, 2);
	/* the RFC 2231 value replaces the plain one; a repeated name
	 * keeps its first value */
	CU_ASSERT_STRING_EQUAL(postern_mime_param_get(r->disposition_params,
	                       r->ndisposition_params, "FILENAME"),
	                       "\xe2\x82\xac.txt");
	CU_ASSERT_STRING_EQUAL(postern_mime_param_get(r->disposition_params,
	                       r->ndisposition_params, "size"), "1");
	CU_ASSERT_EQUAL_FATAL(r->nlanguages, 2);
	CU_ASSERT_STRING_EQUAL(r->languages[0], "en-US");
	CU_ASSERT_STRING_EQUAL(r->languages[1], "fr");
	CU_ASSERT_STRING_EQUAL(r->id, "<id@x>");
	CU_ASSERT_STRING_EQUAL(r->description, "=?utf-8?q?desc?=");
	CU_ASSERT_STRING_EQUAL(r->location, "http://x/y");
	CU_ASSERT_STRING_EQUAL(r->md5, "Q2hlY2s=");
	CU_ASSERT_STRING_EQUAL(r->encoding, "base64");
}

static void
test_eightbit_nul_long(void)
{
	char *msg = malloc(200000), *p = msg;
	struct postern_mime_part *r;
	int i;

	p += sprintf(p, "Subject: caf\xc3\xa9 \x01\r\nX-Long: a");
	for (i = 0; i < 3000; i++)
		p += sprintf(p, "\r\n b%d", i);   /* 3000 folded lines */
	p += sprintf(p, "\r\nContent-Type: multipart/mixed; boundary=b\r\n"
	             "\r\n--b\r\n\r\n");
	/* a body line far longer than any boundary, starting like one */
	*p++ = '-';
	*p++ = '-';
	*p++ = 'b';
	for (i = 0; i < 5000; i++)
		*p++ = ' ';
	*p++ = 'x';
	p += sprintf(p, "\r\n8bit \xff\xfe and a NUL:");
	*p++ = '\0';
	p += sprintf(p, "!\r\n--b--\r\n");
	r = parse_chunked(msg, (size_t)(p - msg), 4096);
	CU_ASSERT_STRING_EQUAL(r->subtype, "mixed");
	CU_ASSERT_EQUAL_FATAL(r->nchildren, 1);
	CU_ASSERT_EQUAL(r->children->body_lines, 2);
	CU_ASSERT_STRING_EQUAL(r->envelope->subject, "caf\xc3\xa9 \x01");
	free(msg);
}

/* Every split point, and octet by octet: the same tree. */
static void
test_chunking(void)
{
	const char *corpus[] = { simple, mixed, nested,
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
		"\r\nx\r\n--b--", "a\r\n\r\r\n\n--b\r\n" };
	size_t c, i, len;

	for (c = 0; c < sizeof(corpus) / sizeof(corpus[0]); c++) {
		struct postern_mime_part *whole = parse(corpus[c]);

		len = strlen(corpus[c]);
		CU_ASSERT(same_tree(whole, parse_chunked(corpus[c], len, 1)));
		for (i = 1; i < len; i++) {
			postern_mime_parser_t *p =
				mime_parser_create(pool, NULL);

			mime_parser_feed(p, corpus[c], i);
			mime_parser_feed(p, corpus[c] + i, len - i);
			if (!same_tree(whole, mime_parser_finish(p))) {
				CU_FAIL("split changes the tree");
				fprintf(stderr, "corpus %zu split %zu\n", c,
				        i);
				break;
			}
		}
		pool_clear(pool);
	}
}

static void
test_limits(void)
{
	struct postern_mime_limits lim = { sizeof(lim), 3, 4, 0 };
	char msg[4096], *p = msg;
	postern_mime_parser_t *parser;
	struct postern_mime_part *r, *q;
	int i, depth;

	for (i = 0; i < 6; i++)
		p += sprintf(p, "Content-Type: multipart/mixed; boundary=b%d"
		             "\r\n\r\n--b%d\r\n", i, i);
	p += sprintf(p, "\r\nleaf\r\n");
	parser = mime_parser_create(pool, &lim);
	mime_parser_feed(parser, msg, (size_t)(p - msg));
	r = mime_parser_finish(parser);
	for (depth = 0, q = r; q->children != NULL; q = q->children)
		depth++;
	CU_ASSERT_EQUAL(depth, 3);
	CU_ASSERT(q->flags & POSTERN_MIME_TRUNCATED);

	p = msg;
	p += sprintf(p, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (i = 0; i < 10; i++)
		p += sprintf(p, "--b\r\n\r\npart %d\r\n", i);
	p += sprintf(p, "--b--\r\n");
	parser = mime_parser_create(pool, &lim);
	mime_parser_feed(parser, msg, (size_t)(p - msg));
	r = mime_parser_finish(parser);
	CU_ASSERT_EQUAL(r->nchildren, 3);   /* 4 parts with the root */
	CU_ASSERT(r->flags & POSTERN_MIME_TRUNCATED);
	CU_ASSERT_FALSE(r->flags & POSTERN_MIME_NO_END);
	CU_ASSERT_EQUAL(child(r, 3)->end - child(r, 3)->body_start, 6);
}

/* Fields past max_header are not parsed; the offsets stay exact. */
static void
test_header_limit(void)
{
	struct postern_mime_limits lim = { sizeof(lim), 0, 0, 100 };
	static char msg[4096];
	postern_mime_parser_t *parser;
	struct postern_mime_part *r;
	char *p = msg;
	int i;

	p += sprintf(p, "Content-Type: text/html\r\n");
	for (i = 0; i < 20; i++)
		p += sprintf(p, "X-Filler-%02d: some text\r\n", i);
	p += sprintf(p, "Subject: too late\r\n\r\nbody\r\n");
	parser = mime_parser_create(pool, &lim);
	mime_parser_feed(parser, msg, (size_t)(p - msg));
	r = mime_parser_finish(parser);
	CU_ASSERT_STRING_EQUAL(r->subtype, "html");
	CU_ASSERT_PTR_NULL(r->envelope->subject);
	CU_ASSERT_EQUAL(r->body_start, (uint64_t)(strstr(msg, "body") - msg));
	CU_ASSERT_EQUAL(r->end - r->body_start, 6);
	/* the default keeps them */
	CU_ASSERT_STRING_EQUAL(parse(msg)->envelope->subject, "too late");
}

/* Input is CRLF, but bare LF line ends still give a sound tree. */
static void
test_bare_lf(void)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=b\n\n"
		"--b\n\none\n--b\nContent-Type: text/html\n\ntwo\n--b--\n";
	struct postern_mime_part *r = parse(msg);

	CU_ASSERT_STRING_EQUAL(describe(r),
		"multipart/mixed[0,43,91,8](text/plain[47,48,51,1] "
		"text/html[56,81,84,1])");
}

/* ---- helpers ---------------------------------------------------------- */

static void
test_header_iter(void)
{
	static const char hdr[] =
		"Subject: a\r\n  folded\r\n\tagain \r\n"
		"no colon here\r\n"
		"X-Empty:\r\n"
		"Name  : spaced\r\n"
		"\r\n"
		"Body: not a field\r\n";
	struct postern_mime_header_iter it = { hdr, sizeof(hdr) - 1, 0 };
	struct postern_mime_field f;

	CU_ASSERT_EQUAL_FATAL(mime_header_next(&it, pool, &f), 1);
	CU_ASSERT_STRING_EQUAL(f.name, "Subject");
	CU_ASSERT_STRING_EQUAL(f.value, "a  folded\tagain");
	CU_ASSERT_EQUAL(f.offset, 0);
	CU_ASSERT_EQUAL_FATAL(mime_header_next(&it, pool, &f), 1);
	CU_ASSERT_STRING_EQUAL(f.name, "X-Empty");
	CU_ASSERT_STRING_EQUAL(f.value, "");
	CU_ASSERT_EQUAL_FATAL(mime_header_next(&it, pool, &f), 1);
	CU_ASSERT_STRING_EQUAL(f.name, "Name");
	CU_ASSERT_STRING_EQUAL(f.value, "spaced");
	CU_ASSERT_EQUAL(mime_header_next(&it, pool, &f), 0);
}

static const char *
words(const char *s)
{
	return mime_decode_words(s, strlen(s), pool, NULL);
}

static void
test_encoded_words(void)
{
	CU_ASSERT_STRING_EQUAL(words("=?utf-8?B?w6l0w6k=?="),
	                       "\xc3\xa9t\xc3\xa9");
	CU_ASSERT_STRING_EQUAL(words("=?ISO-8859-1?Q?caf=E9_cr=E8me?="),
	                       "caf\xc3\xa9 cr\xc3\xa8me");
	/* adjacent words join; the space between them goes */
	CU_ASSERT_STRING_EQUAL(words("=?utf-8?q?a?= \r\n =?utf-8?q?b?= c"),
	                       "ab c");
	/* a character split between two words of one charset */
	CU_ASSERT_STRING_EQUAL(words("=?utf-8?B?ww==?= =?utf-8?q?=A4?="),
	                       "\xc3\xa4");
	/* several charsets in one value, with text around */
	CU_ASSERT_STRING_EQUAL(words("Re: =?koi8-r?B?8NLJ18XU?= and "
	                             "=?iso-8859-7?Q?=E1?= end"),
	                       "Re: \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5"
	                       "\xd1\x82 and \xce\xb1 end");
	/* a stateful charset */
	CU_ASSERT_STRING_EQUAL(words("=?ISO-2022-JP?B?GyRCJEgbKEI=?="),
	                       "\xe3\x81\xa8");
	/* RFC 2231 language in the charset; lower-case encoding letter */
	CU_ASSERT_STRING_EQUAL(words("=?US-ASCII*EN?q?Keith?="), "Keith");
	/* not encoded words: kept as they are */
	CU_ASSERT_STRING_EQUAL(words("=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
	CU_ASSERT_STRING_EQUAL(words("=?utf-8?q?a b?="), "=?utf-8?q?a b?=");
	CU_ASSERT_STRING_EQUAL(words("a =?bogus-charset?q?x?= b"), "a x b");
	CU_ASSERT_STRING_EQUAL(words("plain"), "plain");
}

struct collect {
	char buf[8192];
	size_t len;
};

static void
collect(void *arg, const char *data, size_t len)
{
	struct collect *c = arg;

	if (c->len + len < sizeof(c->buf)) {
		memcpy(c->buf + c->len, data, len);
		c->len += len;
		c->buf[c->len] = '\0';
	}
}

/* Decodes `in` fed in pieces of `chunk` octets. */
static const char *
decode(const char *enc, const char *charset, const char *in, size_t chunk,
       struct collect *c)
{
	postern_mime_decoder_t *d;
	size_t i, n, len = strlen(in);

	c->len = 0;
	c->buf[0] = '\0';
	d = mime_decoder_create(enc, charset, collect, c);
	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		mime_decoder_feed(d, in + i, n);
	}
	mime_decoder_finish(d);
	mime_decoder_free(d);
	return c->buf;
}

/* Encodes `in` (len octets) fed in pieces of `chunk`. */
static const char *
encode(const char *in, size_t len, size_t chunk, struct collect *c,
       int *any)
{
	postern_mime_encoder_t *e;
	size_t i, n;

	c->len = 0;
	c->buf[0] = '\0';
	e = mime_encoder_create("base64", collect, c);
	for (i = 0; i < len; i += n) {
		n = len - i < chunk ? len - i : chunk;
		mime_encoder_feed(e, in + i, n);
	}
	*any = mime_encoder_finish(e);
	mime_encoder_free(e);
	return c->buf;
}

static void
test_encoder(void)
{
	static struct collect c, back;
	char in[200];
	size_t chunk, i;
	int any;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (char)(i * 7 + 1);
	CU_ASSERT_PTR_NULL(mime_encoder_create("quoted-printable", collect,
	                                       &c));
	for (chunk = 1; chunk <= 256; chunk *= 4) {
		CU_ASSERT_STRING_EQUAL(encode("hello world", 11, chunk, &c,
		                              &any), "aGVsbG8gd29ybGQ=");
		CU_ASSERT_EQUAL(any, 1);
		CU_ASSERT_STRING_EQUAL(encode("ab", 2, chunk, &c, &any),
		                       "YWI=");
		CU_ASSERT_STRING_EQUAL(encode("", 0, chunk, &c, &any), "");
		CU_ASSERT_EQUAL(any, 0);
		/* 200 octets: lines of 76, CRLF between, none after */
		encode(in, sizeof(in), chunk, &c, &any);
		CU_ASSERT_EQUAL(c.len, 76 + 2 + 76 + 2 + 76 + 2 + 40);
		CU_ASSERT(memcmp(c.buf + 76, "\r\n", 2) == 0);
		CU_ASSERT(c.buf[c.len - 1] != '\n');
		(void)decode("base64", NULL, c.buf, 64, &back);
		CU_ASSERT_EQUAL(back.len, sizeof(in));
		CU_ASSERT(memcmp(back.buf, in, sizeof(in)) == 0);
	}
}

static void
test_decoders(void)
{
	static struct collect c;
	size_t chunk;

	for (chunk = 1; chunk <= 64; chunk *= 4) {
		CU_ASSERT_STRING_EQUAL(decode("base64", NULL,
		                       "aGVsbG8g\r\nd29y\r\nbGQ=\r\n", chunk,
		                       &c), "hello world");
		CU_ASSERT_STRING_EQUAL(decode("BASE64", "iso-8859-1",
		                       "Y2Fm6Q", chunk, &c),
		                       "caf\xc3\xa9");
		CU_ASSERT_STRING_EQUAL(decode("quoted-printable", "utf-8",
		                       "soft=\r\nbreak =3D x  \r\n"
		                       "pad= \t\r\nded =C3=A9\r\nend=", chunk,
		                       &c),
		                       "softbreak = x\r\npadded \xc3\xa9\r\n"
		                       "end=");
		CU_ASSERT_STRING_EQUAL(decode("quoted-printable",
		                       "windows-1252", "=80 =zz =4", chunk,
		                       &c), "\xe2\x82\xac =zz =4");
		/* an unknown charset passes through */
		CU_ASSERT_STRING_EQUAL(decode("7bit", "x-no-such", "ab\xff",
		                       chunk, &c), "ab\xff");
		/* invalid input in a known charset: U+FFFD */
		CU_ASSERT_STRING_EQUAL(decode("8bit", "shift_jis",
		                       "a\x81\x20z", chunk, &c),
		                       "a\xef\xbf\xbd z");
		/* a UTF-16 character split across feeds */
		CU_ASSERT_STRING_EQUAL(decode("base64", "utf-16be",
		                       "AGEgrA==", chunk, &c),
		                       "a\xe2\x82\xac");
	}
	CU_ASSERT_STRING_EQUAL(mime_to_utf8("iso-8859-15", "\xa4", 1, pool,
	                                    NULL), "\xe2\x82\xac");
}

static void
test_addresses(void)
{
	static const char list[] =
		"\"Doe, John\" <john@example.org>, plain@example.com,\r\n"
		" Friends: ann@a.example, \"Bob B.\" <bob@b.example>;,"
		" undisclosed-recipients:;, <@r1.example,@r2.example:x@y>,"
		" joe@host (Joe Q. Public), Mary Smith <mary>, , <>, "
		"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>";
	struct postern_mime_address *a;
	size_t n;

	a = mime_parse_addresses(list, strlen(list), pool, &n);
	CU_ASSERT_EQUAL_FATAL(n, 12);   /* "<>" and the empty item go */
	CU_ASSERT_STRING_EQUAL(a[0].name, "Doe, John");
	CU_ASSERT_STRING_EQUAL(a[0].mailbox, "john");
	CU_ASSERT_STRING_EQUAL(a[0].host, "example.org");
	CU_ASSERT_PTR_NULL(a[1].name);
	CU_ASSERT_STRING_EQUAL(a[1].mailbox, "plain");
	CU_ASSERT(a[2].group);
	CU_ASSERT_STRING_EQUAL(a[2].mailbox, "Friends");
	CU_ASSERT_PTR_NULL(a[2].host);
	CU_ASSERT_STRING_EQUAL(a[3].host, "a.example");
	CU_ASSERT_STRING_EQUAL(a[4].name, "Bob B.");
	CU_ASSERT(a[5].group);
	CU_ASSERT_PTR_NULL(a[5].mailbox);
	CU_ASSERT_STRING_EQUAL(a[6].mailbox, "undisclosed-recipients");
	CU_ASSERT(a[7].group && a[7].mailbox == NULL);
	CU_ASSERT_STRING_EQUAL(a[8].route, "@r1.example,@r2.example");
	CU_ASSERT_STRING_EQUAL(a[8].mailbox, "x");
	CU_ASSERT_STRING_EQUAL(a[8].host, "y");
	CU_ASSERT_STRING_EQUAL(a[9].name, "Joe Q. Public");
	CU_ASSERT_STRING_EQUAL(a[9].host, "host");
	CU_ASSERT_STRING_EQUAL(a[10].name, "Mary Smith");
	CU_ASSERT_STRING_EQUAL(a[10].mailbox, "mary");
	CU_ASSERT_PTR_NULL(a[10].host);
	CU_ASSERT_STRING_EQUAL(a[11].name, "Pete");
	CU_ASSERT_STRING_EQUAL(a[11].mailbox, "pete");
	CU_ASSERT_STRING_EQUAL(a[11].host, "silly.test");
	CU_ASSERT_FALSE(a[11].group);
	CU_ASSERT_PTR_NULL(mime_parse_addresses("", 0, pool, &n));
	CU_ASSERT_EQUAL(n, 0);
	/* a group never closed is closed at the end */
	a = mime_parse_addresses("g: a@b", 6, pool, &n);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT(a[2].group && a[2].mailbox == NULL);
}

static int64_t
date(const char *s, int *tz)
{
	int64_t t;

	if (mime_parse_date(s, strlen(s), &t, tz) < 0)
		return -1;
	return t;
}

static void
test_dates(void)
{
	int tz;

	CU_ASSERT_EQUAL(date("Tue, 1 Jul 2003 10:52:37 +0200", &tz),
	                1057049557);
	CU_ASSERT_EQUAL(tz, 120);
	CU_ASSERT_EQUAL(date("1 Jul 03 08:52 GMT", &tz), 1057049520);
	CU_ASSERT_EQUAL(date("Thu, 13 Feb 69 23:32:54 -0330", &tz),
	                -27723426);
	CU_ASSERT_EQUAL(tz, -210);
	CU_ASSERT_EQUAL(date(" Fri (c), 21 Nov 1997 09 : 55 : 06 EST", &tz),
	                880124106);
	CU_ASSERT_EQUAL(tz, -300);
	CU_ASSERT_EQUAL(date("29 Feb 2024 00:00:00 +0000", NULL), 1709164800);
	CU_ASSERT_EQUAL(date("30 Feb 2024 00:00:00 +0000", NULL), -1);
	CU_ASSERT_EQUAL(date("Mon, 32 Jan 2024 00:00 +0000", NULL), -1);
	CU_ASSERT_EQUAL(date("yesterday", NULL), -1);
	CU_ASSERT_EQUAL(date("1 Jan 2024 25:00 +0000", NULL), -1);
	CU_ASSERT_EQUAL(date("", NULL), -1);
}

static void
test_serialize(void)
{
	const char *corpus[] = { simple, mixed, nested };
	struct postern_mime_part *r, *back;
	unsigned char *data, *copy;
	char *expect;
	size_t c, len, i;
	int bit;

	for (c = 0; c < sizeof(corpus) / sizeof(corpus[0]); c++) {
		r = parse(corpus[c]);
		data = mime_serialize(r, pool, &len);
		back = mime_deserialize(data, len, pool);
		CU_ASSERT_PTR_NOT_NULL_FATAL(back);
		CU_ASSERT(same_tree(r, back));
		expect = strdup(describe(r));
		CU_ASSERT_STRING_EQUAL(describe(back), expect);
		free(expect);
		/* every truncation is refused */
		for (i = 0; i < len; i++)
			CU_ASSERT_PTR_NULL(mime_deserialize(data, i, pool));
		/* any flipped bit: refused or a valid tree, never a crash
		 * (ASan watches) */
		copy = malloc(len);
		for (i = 0; i < len; i++) {
			for (bit = 0; bit < 8; bit++) {
				memcpy(copy, data, len);
				copy[i] ^= (unsigned char)(1u << bit);
				back = mime_deserialize(copy, len, pool);
				if (back != NULL)
					(void)describe(back);
			}
		}
		free(copy);
		/* another version is absent */
		data[3]++;
		CU_ASSERT_PTR_NULL(mime_deserialize(data, len, pool));
		pool_clear(pool);
	}
	CU_ASSERT_PTR_NULL(mime_deserialize(NULL, 0, pool));
	CU_ASSERT_PTR_NULL(mime_deserialize("PMT\001", 4, pool));
}

/* ---- hostile input: linear memory, and the budget --------------------- */

/* Text of `n` octets or a little more: `unit` repeated, folded before
 * 76 columns as a mailer would, so that the field stays a field. */
static char *
repeat_folded(const char *prefix, const char *unit, size_t n)
{
	size_t ul = strlen(unit), cap = n + n / 60 * 3 + strlen(prefix) + 64;
	size_t len, col = 0;
	char *s = malloc(cap);

	CU_ASSERT_FATAL(s != NULL);
	len = (size_t)snprintf(s, cap, "%s", prefix);
	while (len < n) {
		if (col + ul > 70) {
			memcpy(s + len, "\r\n ", 3);
			len += 3;
			col = 1;
		}
		memcpy(s + len, unit, ul);
		len += ul;
		col += ul;
	}
	s[len] = '\0';
	return s;
}

/* Pool bytes the envelope To of `msg` costs: the parse, then the
 * address list as IMAP's ENVELOPE asks for it. */
static size_t
to_bytes(const char *msg)
{
	postern_pool_t *p = pool_create(4096);
	postern_mime_parser_t *mp = mime_parser_create(p, NULL);
	const struct postern_mime_part *root, *m;
	size_t n = 0, bytes;

	mime_parser_feed(mp, msg, strlen(msg));
	root = mime_parser_finish(mp);
	/* the message itself, or the one its message/rfc822 part holds */
	m = root;
	while (m->envelope == NULL || m->envelope->to == NULL)
		m = m->children;
	mime_parse_addresses(m->envelope->to, strlen(m->envelope->to), p, &n);
	CU_ASSERT(n >= 1);
	bytes = pool_allocated(p);
	pool_destroy(p);
	return bytes;
}

static char *
to_message(const char *unit, size_t n)
{
	char *to = repeat_folded("To: ", unit, n), *msg;
	size_t len = strlen(to) + 64;

	msg = malloc(len);
	CU_ASSERT_FATAL(msg != NULL);
	snprintf(msg, len, "%s\r\nSubject: x\r\n\r\nbody\r\n", to);
	free(to);
	return msg;
}

/* A To: of n octets of `unit`: the memory must grow like n, not n^2
 * (each "" token once cost the rest of the field).  Counted in pool
 * octets, so no timing: 4x the field must cost about 4x, and at most
 * 96 octets per octet of field (an address of 3 octets, "",, makes a
 * 40-octet struct in an array grown by doubling). */
static void
check_to_linear(const char *unit)
{
	char *small = to_message(unit, 8192), *large = to_message(unit, 32768);
	size_t bs = to_bytes(small), bl = to_bytes(large);

	CU_ASSERT(bl <= 96 * strlen(large));
	CU_ASSERT(bl <= bs * 9 / 2);
	if (bl > 96 * strlen(large) || bl > bs * 9 / 2)
		fprintf(stderr, "To of \"%s\": %zu octets for 8 KiB, %zu for "
		        "32 KiB\n", unit, bs, bl);
	free(small);
	free(large);
}

static void
test_hostile_addresses_linear(void)
{
	check_to_linear("\"\" ");
	check_to_linear("\"\",");
	check_to_linear("(c) a ");
	check_to_linear("[1.2] ");
	check_to_linear("g: \"\"; ");
	check_to_linear("\"a\\\"b\" <x@[1]> ");
}

/* The same through a message/rfc822 part, whose header BODYSTRUCTURE
 * shows as an envelope. */
static void
test_hostile_attached_message_linear(void)
{
	char *to = repeat_folded("To: ", "\"\" ", 32768), *msg;
	size_t len = strlen(to) + 512, bytes;

	msg = malloc(len);
	CU_ASSERT_FATAL(msg != NULL);
	snprintf(msg, len, "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	         "--b\r\nContent-Type: message/rfc822\r\n\r\n%s\r\n"
	         "Subject: inner\r\n\r\ntext\r\n--b--\r\n", to);
	bytes = to_bytes(msg);
	CU_ASSERT(bytes <= 48 * strlen(msg));
	free(to);
	free(msg);
}

/* Pool bytes of parsing a message whose one Content-Type field is
 * `ct` (n octets). */
static size_t
content_type_bytes(const char *ct, const struct postern_mime_part **out,
                   postern_pool_t *p)
{
	postern_mime_parser_t *mp = mime_parser_create(p, NULL);
	size_t len = strlen(ct) + 64;
	char *msg = malloc(len);

	CU_ASSERT_FATAL(msg != NULL);
	snprintf(msg, len, "Content-Type: %s\r\n\r\nbody\r\n", ct);
	mime_parser_feed(mp, msg, strlen(msg));
	*out = mime_parser_finish(mp);
	free(msg);
	return pool_allocated(p);
}

/* Content-Type `first`, then parameters NAME<i>MARK=VALUE for i in
 * from..to-1 (VALUE quoted with `quoted`), into out; its length. */
static size_t
params_field(char *out, const char *first, const char *name,
             const char *mark, int quoted, size_t from, size_t to,
             const char *value)
{
	const char *q = quoted ? "\"" : "";
	size_t len = (size_t)sprintf(out, "%s", first), i;

	for (i = from; i < to; i++)
		len += (size_t)sprintf(out + len, ";\r\n %s%zu%s=%s%s%s", name,
		                       i, mark, q, value, q);
	return len;
}

/* The part with Content-Type ct[0..len), from a fresh pool (freed at the
 * next call) that may hold 8 octets per octet of the field. */
static const struct postern_mime_part *
parse_params_linear(const char *ct, size_t len)
{
	static postern_pool_t *p;
	const struct postern_mime_part *part;

	pool_destroy(p);
	p = pool_create(4096);
	CU_ASSERT(content_type_bytes(ct, &part, p) <= 8 * len);
	return part;
}

/* Content-Type parameters (128 kept) and RFC 2231 continuations (100
 * sections): each quoted value once cost the rest of the field, 128
 * times the field in all. */
static void
test_hostile_parameters_linear(void)
{
	char value[1024], *big = malloc(200 * 1200);
	const struct postern_mime_part *part;
	const char *v;
	size_t len;

	CU_ASSERT_FATAL(big != NULL);
	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	/* 128 quoted parameters of 1 KiB */
	len = params_field(big, "text/plain", "p", "", 1, 0, 128, value);
	part = parse_params_linear(big, len);
	CU_ASSERT_EQUAL(part->nparams, 64);   /* MAX_PARAMS */
	/* RFC 2231: one parameter in 100 quoted sections */
	len = params_field(big, "text/plain", "name*", "", 1, 0, 100, value);
	part = parse_params_linear(big, len);
	CU_ASSERT_EQUAL(part->nparams, 1);
	v = postern_mime_param_get(part->params, part->nparams, "name");
	CU_ASSERT(v != NULL && strlen(v) == 100 * 1023);
	/* and extended sections with a charset */
	len = params_field(big, "text/plain; title*0*=iso-8859-1'en'%E9",
	                   "title*", "*", 0, 1, 100, value);
	part = parse_params_linear(big, len);
	v = postern_mime_param_get(part->params, part->nparams, "title");
	CU_ASSERT(v != NULL && strncmp(v, "\xc3\xa9vvv", 5) == 0);
	free(big);
}

/* Every part of a degraded tree still has what IMAP prints. */
static int
tree_is_whole(const struct postern_mime_part *p, unsigned *nparts)
{
	const struct postern_mime_part *c;

	(*nparts)++;
	if (p->type == NULL || p->subtype == NULL || p->encoding == NULL)
		return 0;
	for (c = p->children; c != NULL; c = c->next)
		if (c->parent != p || !tree_is_whole(c, nparts))
			return 0;
	return 1;
}

/* A message built to need far more than its budget: a To: of 200 KB of
 * "" tokens, a Content-Type of long parameters, 4000 parts.  Under a
 * 1 MiB budget the parse degrades (flagged, fewer parts) and stays
 * within it; the helpers give NULL or fewer addresses; nothing aborts. */
static void
test_budget_degrades(void)
{
	const size_t budget = 1024 * 1024;
	char *to = repeat_folded("To: ", "\"\" ", 200 * 1024), *msg, *big;
	postern_pool_t *p = pool_create_limited(16384, budget);
	postern_mime_parser_t *mp;
	const struct postern_mime_part *root;
	struct postern_mime_address *a;
	size_t len, i, n, vlen;
	unsigned nparts = 0;
	void *ser;

	len = strlen(to) + 4000 * 300 + 200000;
	msg = malloc(len);
	CU_ASSERT_FATAL(msg != NULL);
	n = (size_t)snprintf(msg, len, "%s\r\nContent-Type: multipart/mixed;"
	                     " boundary=b", to);
	for (i = 0; i < 120; i++)
		n += (size_t)snprintf(msg + n, len - n, ";\r\n p%zu=\"%01000d\"",
		                      i, 0);
	n += (size_t)snprintf(msg + n, len - n, "\r\n\r\n");
	for (i = 0; i < 4000; i++)
		n += (size_t)snprintf(msg + n, len - n, "--b\r\nContent-Type: "
		                      "text/plain; name=\"%0200zu\"\r\n\r\n"
		                      "x\r\n", i);
	n += (size_t)snprintf(msg + n, len - n, "--b--\r\n");
	mp = mime_parser_create(p, NULL);
	mime_parser_feed(mp, msg, n);
	root = mime_parser_finish(mp);
	CU_ASSERT(root->flags & POSTERN_MIME_DEGRADED);
	CU_ASSERT(pool_exhausted(p));
	CU_ASSERT(pool_allocated(p) <= budget);
	CU_ASSERT(tree_is_whole(root, &nparts));
	CU_ASSERT(nparts > 1 && nparts < 4001);
	CU_ASSERT(root->flags & POSTERN_MIME_TRUNCATED);
	ser = mime_serialize(root, p, &len);
	CU_ASSERT(ser == NULL || mime_deserialize(ser, len, pool) != NULL);
	CU_ASSERT(pool_allocated(p) <= budget);

	/* the helpers, on a budget too small for their input */
	pool_clear(p);
	CU_ASSERT(!pool_exhausted(p));
	pool_destroy(p);
	p = pool_create_limited(4096, 64 * 1024);
	a = mime_parse_addresses(to + 4, strlen(to) - 4, p, &n);
	CU_ASSERT(pool_exhausted(p));
	CU_ASSERT(n == 0 || a != NULL);
	CU_ASSERT(pool_allocated(p) <= 64 * 1024);
	big = repeat_folded("", "=?utf-8?q?abc?= x ", 256 * 1024);
	CU_ASSERT_PTR_NULL(mime_decode_words(big, strlen(big), p, &vlen));
	CU_ASSERT_EQUAL(vlen, 0);
	CU_ASSERT_PTR_NULL(mime_to_utf8("iso-8859-1", big, strlen(big), p,
	                                &vlen));
	CU_ASSERT(pool_allocated(p) <= 64 * 1024);
	/* and a small value still fits and decodes */
	pool_clear(p);
	CU_ASSERT_STRING_EQUAL(mime_decode_words("=?utf-8?q?caf=C3=A9?=",
	                                         21, p, &vlen), "caf\xc3\xa9");
	pool_destroy(p);
	free(big);
	free(msg);
	free(to);
}

static int
suite_init(void)
{
	pool = pool_create(16384);
	return 0;
}

static int
suite_clean(void)
{
	pool_destroy(pool);
	return 0;
}

static CU_TestInfo parser_tests[] = {
	{ "simple message and its envelope fields", test_simple },
	{ "multipart: offsets, preamble, epilogue", test_mixed },
	{ "nested multiparts and message/rfc822", test_nested },
	{ "multipart/digest defaults", test_digest },
	{ "broken, missing and final-less boundaries",
	  test_broken_boundaries },
	{ "missing headers, empty message", test_missing_headers },
	{ "parameters: RFC 2231, comments, quoting", test_params },
	{ "8-bit, NUL, long headers and lines", test_eightbit_nul_long },
	{ "chunking at every offset", test_chunking },
	{ "depth and part limits", test_limits },
	{ "header size limit", test_header_limit },
	{ "bare LF line ends", test_bare_lf },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo helper_tests[] = {
	{ "header fields and unfolding", test_header_iter },
	{ "RFC 2047 encoded words", test_encoded_words },
	{ "base64, quoted-printable, charsets", test_decoders },
	{ "base64 encoder: lines of 76, no CRLF after", test_encoder },
	{ "address lists with groups", test_addresses },
	{ "dates", test_dates },
	{ "serialization round trip and corruption", test_serialize },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo hostile_tests[] = {
	{ "address lists: memory linear in the field",
	  test_hostile_addresses_linear },
	{ "an attached message's header: linear",
	  test_hostile_attached_message_linear },
	{ "parameters and RFC 2231 sections: linear",
	  test_hostile_parameters_linear },
	{ "a limited pool: the parse degrades within the budget",
	  test_budget_degrades },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "mime parser", suite_init, suite_clean, NULL, NULL, parser_tests },
	{ "mime helpers", suite_init, suite_clean, NULL, NULL, helper_tests },
	{ "mime on hostile input", suite_init, suite_clean, NULL, NULL,
	  hostile_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
