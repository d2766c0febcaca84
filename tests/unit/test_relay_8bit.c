/*
 * test_relay_8bit.c - the 8BITMIME downgrade (modules/relay/relay_8bit.c).
 *
 * Each converted message is parsed back with the core's MIME parser and
 * every leaf decoded with the core's decoders (through the host table):
 * the decoded octets must equal those of the original, part for part,
 * and the output must be 7-bit with lines inside RFC 2045's limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "host.h"
#include "relay_8bit.h"

static const struct postern_host *host;
static postern_pool_t *pool;
static char *tmpdir;
static int fd = -1;
static const off_t base = 37;

static char *out;
static size_t out_len;
static char err[512];

static void
setup(void)
{
	char path[512];

	host = host_table();
	pool = host->pool_create(0);
	tmpdir = unit_tmpdir();
	snprintf(path, sizeof(path), "%s/msg", tmpdir);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	out = NULL;
}

static void
teardown(void)
{
	close(fd);
	host->pool_destroy(pool);
	unit_rm_rf(tmpdir);
	free(tmpdir);
	free(out);
	out = NULL;
}

/* Puts `len` octets of msg in the file after `base` octets of noise
 * (8-bit, so reading outside the range would show) and converts. */
static enum relay_8bit_result
convert(const char *msg, size_t len)
{
	struct relay_out o;
	enum relay_8bit_result r;
	char noise[base];

	memset(noise, 0xff, sizeof(noise));
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 0), 0);
	CU_ASSERT_EQUAL_FATAL(pwrite(fd, noise, sizeof(noise), 0),
	    (ssize_t)sizeof(noise));
	CU_ASSERT_EQUAL_FATAL(pwrite(fd, msg, len, base), (ssize_t)len);
	CU_ASSERT_EQUAL_FATAL(pwrite(fd, noise, sizeof(noise),
	    base + (off_t)len), (ssize_t)sizeof(noise));
	relay_out_init_mem(&o);
	err[0] = '\0';
	r = relay_8bit_downgrade(host, fd, base, len, &o, err, sizeof(err));
	free(out);
	out = relay_out_take(&o, &out_len);
	return r;
}

static struct postern_mime_part *
parse(const char *msg, size_t len)
{
	postern_mime_parser_t *p = host->mime_parser_create(pool, NULL);

	host->mime_parser_feed(p, msg, len);
	return host->mime_parser_finish(p);
}

struct buf {
	char *data;
	size_t len;
};

static void
buf_out(void *arg, const char *data, size_t len)
{
	struct buf *b = arg;

	b->data = realloc(b->data, b->len + len + 1);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static struct buf
decode(const char *msg, const struct postern_mime_part *p)
{
	struct buf b = { NULL, 0 };
	postern_mime_decoder_t *d;

	d = host->mime_decoder_create(p->encoding, NULL, buf_out, &b);
	host->mime_decoder_feed(d, msg + p->body_start,
	    p->end - p->body_start);
	host->mime_decoder_finish(d);
	host->mime_decoder_free(d);
	return b;
}

/* The two trees have the same shape and every leaf decodes to the same
 * octets; returns the leaves compared. */
static int
same_content(const char *a, const struct postern_mime_part *pa,
             const char *b, const struct postern_mime_part *pb)
{
	const struct postern_mime_part *ca, *cb;
	struct buf da, db;
	int n = 0;

	CU_ASSERT_STRING_EQUAL(pa->type, pb->type);
	CU_ASSERT_STRING_EQUAL(pa->subtype, pb->subtype);
	CU_ASSERT_EQUAL_FATAL(pa->nchildren, pb->nchildren);
	if (pa->nchildren == 0) {
		da = decode(a, pa);
		db = decode(b, pb);
		CU_ASSERT_EQUAL(da.len, db.len);
		if (da.len == db.len && da.len > 0)
			CU_ASSERT_EQUAL(memcmp(da.data, db.data, da.len), 0);
		free(da.data);
		free(db.data);
		return 1;
	}
	if (strcmp(pa->type, "multipart") == 0)
		CU_ASSERT_STRING_EQUAL(postern_mime_param_get(pa->params,
		    pa->nparams, "boundary"), postern_mime_param_get(pb->params,
		    pb->nparams, "boundary"));
	for (ca = pa->children, cb = pb->children; ca != NULL && cb != NULL;
	    ca = ca->next, cb = cb->next)
		n += same_content(a, ca, b, cb);
	return n;
}

/* 7-bit, no NUL, CRLF only, lines of at most 998 octets, and lines of
 * at most 76 inside quoted-printable and base64 bodies. */
static void
check_7bit(const struct postern_mime_part *p)
{
	size_t i, col = 0, max = 998;

	for (i = 0; i < out_len; i++) {
		unsigned char c = (unsigned char)out[i];

		CU_ASSERT(c != 0 && c < 0x80);
		if (c == '\n') {
			CU_ASSERT(i > 0 && out[i - 1] == '\r');
			col = 0;
		} else if (c != '\r' && ++col > max) {
			CU_FAIL("line too long");
			break;
		}
	}
	for (; p != NULL; p = p->next) {
		if (p->nchildren > 0) {
			check_7bit(p->children);
			continue;
		}
		if (strcmp(p->encoding, "quoted-printable") != 0 &&
		    strcmp(p->encoding, "base64") != 0)
			continue;
		col = 0;
		for (i = p->body_start; i < p->end; i++) {
			if (out[i] == '\n')
				col = 0;
			else if (out[i] != '\r' && ++col > 76)
				CU_FAIL("encoded line over 76 characters");
		}
	}
}

/* Converts msg, checks the result, returns the leaves compared. */
static int
roundtrip(const char *msg, size_t len)
{
	struct postern_mime_part *orig, *conv;

	if (convert(msg, len) != RELAY_8BIT_CONVERTED)
		fprintf(stderr, "not converted: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	orig = parse(msg, len);
	conv = parse(out, out_len);
	check_7bit(conv);
	return same_content(msg, orig, out, conv);
}

static void
test_7bit_unchanged(void)
{
	static const char msg[] =
		"From: a@example.org\r\nSubject: plain\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\n"
		"Only ASCII = here.   \r\nA second line\r\n";

	CU_ASSERT_EQUAL(convert(msg, sizeof(msg) - 1), RELAY_8BIT_UNCHANGED);
	CU_ASSERT_EQUAL_FATAL(out_len, sizeof(msg) - 1);
	CU_ASSERT_EQUAL(memcmp(out, msg, out_len), 0);
	CU_ASSERT_EQUAL(relay_8bit_scan(fd, base, sizeof(msg) - 1), 0);
}

static void
test_plain_message(void)
{
	static const char msg[] =
		"From: a@example.org\r\nSubject: no MIME here\r\n\r\n"
		"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln\r\n";
	struct postern_mime_part *conv;

	CU_ASSERT_EQUAL(relay_8bit_scan(fd, base, 0), 0);
	CU_ASSERT_EQUAL(roundtrip(msg, sizeof(msg) - 1), 1);
	conv = parse(out, out_len);
	CU_ASSERT_STRING_EQUAL(conv->encoding, "quoted-printable");
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nMIME-Version: 1.0\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nContent-Type: text/plain; "
	    "charset=unknown-8bit\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nGr=C3=BC=C3=9Fe aus "
	    "K=C3=B6ln\r\n"));
	/* The header is kept as it was, fields added at its end. */
	CU_ASSERT_EQUAL(strncmp(out, msg, 44), 0);
	CU_ASSERT_EQUAL(relay_8bit_scan(fd, base, sizeof(msg) - 1), 1);
}

static void
test_awkward_text(void)
{
	char msg[4096];
	size_t n, i;

	n = (size_t)snprintf(msg, sizeof(msg),
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "Content-transfer-encoding  : 8bit\r\n"
	    "  (folded)\r\n"
	    "Subject: awkward\r\n\r\n"
	    "caf\xc3\xa9 = 1  \r\n"
	    "tab at end\t\r\n"
	    "bare\rCR and bare\nLF and =3D\r\n");
	/* A long line of 8-bit text, a NUL, a line of 75 and 76 and 77
	 * characters, and no final line break. */
	for (i = 0; i < 300; i++)
		msg[n++] = (char)(i % 3 == 0 ? 0xe2 : i % 3 == 1 ? 0x82 : 0xac);
	msg[n++] = '\0';
	memcpy(msg + n, "\r\n", 2);
	n += 2;
	for (i = 0; i < 75 + 76 + 77; i++)
		msg[n++] = (i == 75 || i == 75 + 76) ? '\n' : 'x';
	msg[n++] = ' ';
	CU_ASSERT_EQUAL(roundtrip(msg, n), 1);
	/* Both Content-Transfer-Encoding fields (one folded) replaced. */
	CU_ASSERT_PTR_NULL(strstr(out, "8bit"));
	CU_ASSERT_PTR_NULL(strstr(out, "(folded)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Transfer-Encoding: "
	    "quoted-printable\r\nSubject: awkward\r\n") == NULL ?
	    strstr(out, "Subject: awkward\r\nContent-Transfer-Encoding: "
	    "quoted-printable\r\n\r\n") : out);
	/* Trailing white space is encoded, not left to be stripped. */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "caf=C3=A9 =3D 1 =20\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "tab at end=09\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "bare=0DCR and bare=0ALF"));
}

static const char multipart[] =
	"From: a@example.org\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"This is the preamble.\r\n"
	"--outer\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"Dies ist ein S\xe4tzchen.\r\n"
	"--outer\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"Seven bits only.\r\n"
	"--outer\r\n"
	"Content-Type: multipart/alternative; boundary=inner\r\n"
	"\r\n"
	"--inner\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: binary\r\n"
	"\r\n"
	"<p>\xe2\x82\xac 5</p>\r\n"
	"--inner\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"=E2=82=AC 5\r\n"
	"--inner--\r\n"
	"--outer\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Transfer-Encoding: binary\r\n"
	"\r\n"
	"\x00\x01\x02\xff\xfe\r\n\x80"
	"\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"Content-Transfer-Encoding: 8bit\r\n"
	"\r\n"
	"From: b@example.net\r\n"
	"Subject: inner message\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"\xc3\xa5ngstr\xc3\xb6m\r\n"
	"--outer--\r\n"
	"The epilogue.\r\n";

static void
test_multipart(void)
{
	struct postern_mime_part *conv;
	const struct postern_mime_part *p;

	CU_ASSERT_EQUAL(roundtrip(multipart, sizeof(multipart) - 1), 6);
	conv = parse(out, out_len);
	CU_ASSERT_STRING_EQUAL(conv->encoding, "7bit");
	p = conv->children;
	CU_ASSERT_STRING_EQUAL(p->encoding, "quoted-printable");
	p = p->next;
	CU_ASSERT_STRING_EQUAL(p->encoding, "7bit");
	p = p->next;
	CU_ASSERT_STRING_EQUAL(p->children->encoding, "quoted-printable");
	CU_ASSERT_STRING_EQUAL(p->children->next->encoding,
	    "quoted-printable");
	p = p->next;
	CU_ASSERT_STRING_EQUAL(p->encoding, "base64");
	p = p->next;
	CU_ASSERT_STRING_EQUAL(p->subtype, "rfc822");
	CU_ASSERT_STRING_EQUAL(p->encoding, "7bit");
	CU_ASSERT_STRING_EQUAL(p->children->encoding, "quoted-printable");
	CU_ASSERT_STRING_EQUAL(p->children->envelope->subject,
	    "inner message");
	/* What had no 8-bit octet is copied as it was: the preamble, the
	 * epilogue, the 7-bit parts, the boundaries. */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nThis is the preamble.\r\n"
	    "--outer\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--outer\r\nContent-Type: "
	    "text/plain\r\n\r\nSeven bits only.\r\n--outer\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--inner\r\nContent-Type: "
	    "text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
	    "quoted-printable\r\n\r\n=E2=82=AC 5\r\n--inner--\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--outer--\r\nThe epilogue.\r\n"));
	CU_ASSERT_EQUAL(strncmp(out + out_len - 26, "--outer--\r\n"
	    "The epilogue.\r\n", 26), 0);
}

static void
test_soft_break_no_boundary(void)
{
	char msg[1024];
	size_t n, i;

	/* A long 8-bit line holding the enclosing boundary where the
	 * encoder breaks it (after 75 characters): the continuation must
	 * not start a delimiter line. */
	n = (size_t)sprintf(msg,
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
	    "--outer\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	    "\xc3\xa9");
	for (i = 0; i < 69; i++)
		msg[n++] = 'x';
	n += (size_t)sprintf(msg + n, "--outer-- and more text\r\n"
	    "--outer\r\n\r\nsecond\r\n--outer--\r\n");
	CU_ASSERT_EQUAL(roundtrip(msg, n), 2);
	CU_ASSERT_PTR_NULL(strstr(out, "=\r\n--outer"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "=\r\n=2D-outer-- and more"));
}

static void
test_large_and_straddling(void)
{
	size_t n = 0, i, fill;
	char *msg = malloc(400000);

	/* A header field whose name straddles the first 64 KiB read, and
	 * a 300 KB body of 8-bit text across several reads. */
	n += (size_t)sprintf(msg, "MIME-Version: 1.0\r\nX-Fill: ");
	fill = 65536 - 10 - n - 2;
	for (i = 0; i < fill; i++)
		msg[n + i] = i % 900 == 898 ? '\r' : i % 900 == 899 ? '\n' :
		    i % 900 == 0 && i > 0 ? ' ' : 'f';
	n += fill;
	n += (size_t)sprintf(msg + n, "\r\nContent-Transfer-Encoding: 8bit\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (i = 0; i < 300000; i++)
		msg[n++] = i % 61 == 60 ? '\n' : i % 7 == 0 ? '\xc3' :
		    i % 7 == 1 ? '\xa9' : (char)('a' + i % 26);
	CU_ASSERT_EQUAL(roundtrip(msg, n), 1);
	CU_ASSERT_PTR_NULL(strstr(out, "8bit"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
	    "\r\n\r\n"));
	free(msg);
}

static void
test_8bit_header(void)
{
	static const char top[] =
		"From: a@example.org\r\nSubject: Gr\xc3\xbc\xc3\x9f" "e\r\n\r\n"
		"body \xc3\xa9\r\n";
	static const char nested[] =
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\n"
		"Content-Type: text/plain; name=\"r\xc3\xa9sum\xc3\xa9.txt\"\r\n"
		"\r\n"
		"x\r\n"
		"--b--\r\n";

	CU_ASSERT_EQUAL(convert(top, sizeof(top) - 1), RELAY_8BIT_HEADER);
	CU_ASSERT_EQUAL(out_len, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "header"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "offset 0"));
	CU_ASSERT_EQUAL(convert(nested, sizeof(nested) - 1),
	    RELAY_8BIT_HEADER);
	CU_ASSERT_EQUAL(out_len, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "text/plain part at offset 69"));
}

static void
test_cannot(void)
{
	static const char b64[] =
		"MIME-Version: 1.0\r\n"
		"Content-Type: application/pdf\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n"
		"JVBERi0x\xff\xfe\r\n";
	static const char preamble[] =
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"pr\xc3\xa9" "ambule\r\n"
		"--b\r\n\r\nx\r\n--b--\r\n";

	CU_ASSERT_EQUAL(convert(b64, sizeof(b64) - 1), RELAY_8BIT_CANNOT);
	CU_ASSERT_EQUAL(out_len, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "application/pdf"));
	CU_ASSERT_EQUAL(convert(preamble, sizeof(preamble) - 1),
	    RELAY_8BIT_CANNOT);
	CU_ASSERT_EQUAL(out_len, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "outside its body parts"));
}

static void
test_io_errors(void)
{
	struct relay_out o;
	static const char msg[] = "Subject: x\r\n\r\n\xc3\xa9\r\n";

	CU_ASSERT_EQUAL(convert(msg, sizeof(msg) - 1), RELAY_8BIT_CONVERTED);
	/* Reading past the end of the file. */
	relay_out_init_mem(&o);
	CU_ASSERT_EQUAL(relay_8bit_downgrade(host, fd, base, 1000000, &o,
	    err, sizeof(err)), RELAY_8BIT_IO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "ends early"));
	relay_out_release(&o);
	/* A failing output. */
	relay_out_init_fd(&o, -1);
	CU_ASSERT_EQUAL(relay_8bit_downgrade(host, fd, base, sizeof(msg) - 1,
	    &o, err, sizeof(err)), RELAY_8BIT_IO);
	CU_ASSERT_EQUAL(relay_8bit_scan(-1, 0, 10), -1);
}

/* The sink's limit (the relay's bound on a downgrade's output): a flush
 * past it fails with EFBIG and passes nothing on; up to it, all. */
static void
test_output_limit(void)
{
	struct relay_out o;
	static const char msg[] = "Subject: x\r\n\r\n\xc3\xa9\r\n";
	char *m;
	size_t n;

	CU_ASSERT_EQUAL(convert(msg, sizeof(msg) - 1), RELAY_8BIT_CONVERTED);
	relay_out_init_mem(&o);
	relay_out_set_limit(&o, out_len);
	CU_ASSERT_EQUAL(relay_8bit_downgrade(host, fd, base, sizeof(msg) - 1,
	    &o, err, sizeof(err)), RELAY_8BIT_CONVERTED);
	CU_ASSERT_EQUAL(o.total, out_len);
	m = relay_out_take(&o, &n);
	CU_ASSERT(n == out_len && memcmp(m, out, n) == 0);
	free(m);
	relay_out_init_mem(&o);
	relay_out_set_limit(&o, out_len - 1);
	CU_ASSERT_EQUAL(relay_8bit_downgrade(host, fd, base, sizeof(msg) - 1,
	    &o, err, sizeof(err)), RELAY_8BIT_IO);
	CU_ASSERT_EQUAL(o.error, EFBIG);
	CU_ASSERT_EQUAL(o.total, 0);
	CU_ASSERT_EQUAL(relay_out_finish(&o), -1);
	relay_out_release(&o);
}

static CU_TestInfo eb_tests[] = {
	{ "a 7-bit message passes unchanged", test_7bit_unchanged },
	{ "a message without MIME gains it", test_plain_message },
	{ "awkward text decodes back exactly", test_awkward_text },
	{ "multiparts, binary and message/rfc822", test_multipart },
	{ "a soft break never starts a boundary", test_soft_break_no_boundary },
	{ "large bodies, fields across reads", test_large_and_straddling },
	{ "8-bit headers cannot be converted", test_8bit_header },
	{ "8-bit where no encoding can go", test_cannot },
	{ "read and write errors", test_io_errors },
	{ "the output's limit", test_output_limit },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "relay_8bit", NULL, NULL, setup, teardown, eb_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
