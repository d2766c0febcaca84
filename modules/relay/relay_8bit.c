/*
 * relay_8bit.c - the 8BITMIME downgrade (see relay_8bit.h).
 *
 * Three passes over the file, none holding more than one 64 KiB piece:
 * the parser's (which also counts 8-bit octets), the check (8-bit in a
 * header, or where no encoding can go: nothing is written yet), and the
 * output, which copies every range of the message that has no 8-bit
 * octet and re-encodes the bodies that have.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "relay_8bit.h"

#define EB_CHUNK 65536
#define QP_LINE 76          /* RFC 2045 6.7 (5), the '=' of a soft
                               break included */

struct eb {
	const struct postern_host *host;
	int fd;
	off_t base;
	uint64_t len;
	struct relay_out *out;
	char *buf;          /* EB_CHUNK octets */
	char *err;
	size_t errlen;
};

/* ---- reading ---------------------------------------------------------- */

/* Reads [pos, pos + n) of the message into e->buf (n <= EB_CHUNK). */
static int
eb_read(struct eb *e, uint64_t pos, size_t n)
{
	size_t done = 0;
	ssize_t got;

	while (done < n) {
		got = pread(e->fd, e->buf + done, n - done,
		    e->base + (off_t)(pos + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			snprintf(e->err, e->errlen, "8BITMIME downgrade: "
			    "reading the message at offset %llu of %llu: %s",
			    (unsigned long long)(pos + done),
			    (unsigned long long)e->len,
			    got == 0 ? "file ends early" : strerror(errno));
			return -1;
		}
		done += (size_t)got;
	}
	return 0;
}

static int
is_8bit(unsigned char c)
{
	return c >= 0x80 || c == 0;
}

/* 1 if [start, end) holds an octet >= 128 or NUL, 0 if not, -1 on a
 * read error. */
static int
range_8bit(struct eb *e, uint64_t start, uint64_t end)
{
	size_t n, i;

	while (start < end) {
		n = end - start < EB_CHUNK ? (size_t)(end - start) : EB_CHUNK;
		if (eb_read(e, start, n) < 0)
			return -1;
		for (i = 0; i < n; i++)
			if (is_8bit((unsigned char)e->buf[i]))
				return 1;
		start += n;
	}
	return 0;
}

static int
copy_range(struct eb *e, uint64_t start, uint64_t end)
{
	size_t n;

	while (start < end) {
		n = end - start < EB_CHUNK ? (size_t)(end - start) : EB_CHUNK;
		if (eb_read(e, start, n) < 0)
			return -1;
		relay_out_put(e->out, e->buf, n);
		start += n;
	}
	return 0;
}

/* ---- encoders --------------------------------------------------------- */

struct qp_enc {
	struct relay_out *out;
	size_t col;
	int held_ws;    /* a space or tab that may end a line, or 0 */
	int held_cr;    /* a CR that may begin a line break */
};

static void
qp_token(struct qp_enc *q, const char *t, size_t n)
{
	if (q->col + n > QP_LINE - 1) {
		relay_out_put(q->out, "=\r\n", 3);
		q->col = 0;
		/* A line the soft break begins must not read as a boundary
		 * ("--outer") of an enclosing multipart: the original had no
		 * line start here. */
		if (n == 1 && t[0] == '-') {
			relay_out_put(q->out, "=2D", 3);
			q->col = 3;
			return;
		}
	}
	relay_out_put(q->out, t, n);
	q->col += n;
}

static void
qp_hex(struct qp_enc *q, unsigned char c)
{
	char t[3];

	t[0] = '=';
	t[1] = "0123456789ABCDEF"[c >> 4];
	t[2] = "0123456789ABCDEF"[c & 15];
	qp_token(q, t, 3);
}

/* White space held back is literal unless a line end follows. */
static void
qp_release(struct qp_enc *q, int at_line_end)
{
	char c = (char)q->held_ws;

	if (q->held_ws == 0)
		return;
	q->held_ws = 0;
	if (at_line_end)
		qp_hex(q, (unsigned char)c);
	else
		qp_token(q, &c, 1);
}

/* Printable ASCII that stands for itself anywhere on a line. */
static int
qp_literal(unsigned char c)
{
	return c > ' ' && c <= '~' && c != '=';
}

static void
qp_octet(struct qp_enc *q, unsigned char c)
{
	if (q->held_cr) {
		q->held_cr = 0;
		if (c == '\n') {
			qp_release(q, 1);
			relay_out_put(q->out, "\r\n", 2);
			q->col = 0;
			return;
		}
		qp_release(q, 0);
		qp_hex(q, '\r');     /* a bare CR */
	}
	if (c == '\r') {
		q->held_cr = 1;
		return;
	}
	qp_release(q, 0);
	if (c == ' ' || c == '\t')
		q->held_ws = c;
	else if (c == '=' || c == '\n' || c < ' ' || c > '~')
		qp_hex(q, c);       /* a bare LF too: octets come back exact */
	else
		qp_token(q, (const char *)&c, 1);
}

static void
qp_finish(struct qp_enc *q)
{
	if (q->held_cr) {
		q->held_cr = 0;
		qp_release(q, 0);
		qp_hex(q, '\r');
	}
	/* The end of the body is a line end (the boundary's CRLF or the
	 * end of the message). */
	qp_release(q, 1);
}

static int
encode_qp(struct eb *e, uint64_t start, uint64_t end)
{
	struct qp_enc q;
	size_t n, i;

	memset(&q, 0, sizeof(q));
	q.out = e->out;
	while (start < end) {
		n = end - start < EB_CHUNK ? (size_t)(end - start) : EB_CHUNK;
		if (eb_read(e, start, n) < 0)
			return -1;
		for (i = 0; i < n;) {
			size_t run = 0, room = QP_LINE - 1 - q.col;

			/* A run of literal characters that fits the line
			 * goes out in one piece. */
			while (!q.held_cr && !q.held_ws && run < room &&
			    i + run < n && qp_literal((unsigned char)
			    e->buf[i + run]))
				run++;
			if (run > 0) {
				relay_out_put(q.out, e->buf + i, run);
				q.col += run;
				i += run;
				continue;
			}
			qp_octet(&q, (unsigned char)e->buf[i++]);
		}
		start += n;
	}
	qp_finish(&q);
	return 0;
}

static void
b64_out(void *arg, const char *data, size_t len)
{
	relay_out_put(arg, data, len);
}

/* The host's encoder: lines of 76 characters separated by CRLF; the
 * last line ends in CRLF only at the end of the message (in a multipart
 * the boundary's CRLF follows). */
static int
encode_base64(struct eb *e, uint64_t start, uint64_t end)
{
	postern_mime_encoder_t *enc;
	size_t n;
	int rc = 0;

	enc = e->host->mime_encoder_create("base64", b64_out, e->out);
	if (enc == NULL) {
		snprintf(e->err, e->errlen, "8BITMIME downgrade: out of "
		    "memory for the base64 encoder");
		return -1;
	}
	while (start < end) {
		n = end - start < EB_CHUNK ? (size_t)(end - start) : EB_CHUNK;
		if ((rc = eb_read(e, start, n)) < 0)
			break;
		e->host->mime_encoder_feed(enc, e->buf, n);
		start += n;
	}
	if (rc == 0 && e->host->mime_encoder_finish(enc) && end == e->len)
		relay_out_put(e->out, "\r\n", 2);
	e->host->mime_encoder_free(enc);
	return rc;
}

/* ---- the part tree ---------------------------------------------------- */

static int
identity_encoding(const char *enc)
{
	return enc == NULL || strcasecmp(enc, "7bit") == 0 ||
	    strcasecmp(enc, "8bit") == 0 || strcasecmp(enc, "binary") == 0;
}

static int
composite(const struct postern_mime_part *p)
{
	return strcasecmp(p->type, "multipart") == 0 ||
	    strcasecmp(p->type, "message") == 0;
}

static int
cannot(struct eb *e, const struct postern_mime_part *p, const char *why)
{
	snprintf(e->err, e->errlen, "8BITMIME downgrade: the %s/%s part at "
	    "offset %llu %s", p->type, p->subtype,
	    (unsigned long long)p->header_start, why);
	return RELAY_8BIT_CANNOT;
}

/* RELAY_8BIT_CONVERTED when the part can be made 7-bit, else HEADER,
 * CANNOT or IO (with err set). */
static int
check_part(struct eb *e, const struct postern_mime_part *p)
{
	const struct postern_mime_part *c;
	uint64_t pos;
	int r;

	if ((r = range_8bit(e, p->header_start, p->body_start)) != 0) {
		if (r < 0)
			return RELAY_8BIT_IO;
		snprintf(e->err, e->errlen, "8BITMIME downgrade: 8-bit octets "
		    "in the header of the %s/%s part at offset %llu",
		    p->type, p->subtype, (unsigned long long)p->header_start);
		return RELAY_8BIT_HEADER;
	}
	if (!composite(p) || p->nchildren == 0) {
		if ((r = range_8bit(e, p->body_start, p->end)) <= 0)
			return r < 0 ? RELAY_8BIT_IO : RELAY_8BIT_CONVERTED;
		if (composite(p))
			return cannot(e, p, "holds 8-bit octets but no parts "
			    "the parser could read");
		if (!identity_encoding(p->encoding))
			return cannot(e, p, "holds 8-bit octets in a "
			    "quoted-printable or base64 body");
		return RELAY_8BIT_CONVERTED;
	}
	if (p->flags & POSTERN_MIME_TRUNCATED) {
		if ((r = range_8bit(e, p->body_start, p->end)) != 0)
			return r < 0 ? RELAY_8BIT_IO : cannot(e, p,
			    "holds 8-bit octets beyond the parser's limits");
		return RELAY_8BIT_CONVERTED;
	}
	pos = p->body_start;
	for (c = p->children; c != NULL; c = c->next) {
		if ((r = range_8bit(e, pos, c->header_start)) != 0)
			return r < 0 ? RELAY_8BIT_IO : cannot(e, p,
			    "has 8-bit octets outside its body parts");
		if ((r = check_part(e, c)) != RELAY_8BIT_CONVERTED)
			return r;
		pos = c->end;
	}
	if ((r = range_8bit(e, pos, p->end)) != 0)
		return r < 0 ? RELAY_8BIT_IO : cannot(e, p,
		    "has 8-bit octets outside its body parts");
	return RELAY_8BIT_CONVERTED;
}

/* 1 if the line at s (n octets, at least what holds its field name)
 * begins the field `name`. */
static int
field_is(const char *s, size_t n, const char *name)
{
	size_t len = strlen(name);

	if (n <= len || strncasecmp(s, name, len) != 0)
		return 0;
	for (s += len, n -= len; n > 0 && (*s == ' ' || *s == '\t'); n--)
		s++;
	return n > 0 && *s == ':';
}

struct hdr_edit {
	const char *cte;   /* the new Content-Transfer-Encoding, or NULL */
	int root;          /* add MIME-Version, Content-Type if missing */
	int seen_mv, seen_ct;
};

static void
hdr_extra(struct eb *e, struct hdr_edit *h)
{
	if (h->root && !h->seen_mv)
		relay_out_puts(e->out, "MIME-Version: 1.0\r\n");
	if (h->root && !h->seen_ct)
		relay_out_puts(e->out, "Content-Type: text/plain; "
		    "charset=unknown-8bit\r\n");
	if (h->cte != NULL)
		relay_out_printf(e->out, "Content-Transfer-Encoding: %s\r\n",
		    h->cte);
}

/* Copies the part's header without its Content-Transfer-Encoding
 * field(s) when h->cte is set, and adds the new fields before the
 * empty line.  Pieces are read from a line's start whenever a field
 * name could straddle two reads. */
static int
emit_header(struct eb *e, const struct postern_mime_part *p,
            struct hdr_edit *h)
{
	uint64_t pos = p->header_start, end = p->body_start;
	size_t n, i, seg;
	int line_start = 1, drop = 0, ended = 0;
	const char *s, *nl;

	while (pos < end && !ended) {
		n = end - pos < EB_CHUNK ? (size_t)(end - pos) : EB_CHUNK;
		if (eb_read(e, pos, n) < 0)
			return -1;
		for (i = 0; i < n; i += seg) {
			s = e->buf + i;
			nl = memchr(s, '\n', n - i);
			seg = nl != NULL ? (size_t)(nl - s) + 1 : n - i;
			if (nl == NULL && line_start && n - i < 128 &&
			    pos + n < end)
				break;   /* read again from this line */
			if (line_start) {
				if ((seg == 1 && s[0] == '\n') ||
				    (seg == 2 && s[0] == '\r')) {
					hdr_extra(e, h);
					relay_out_put(e->out, s, seg);
					ended = 1;
					i += seg;
					break;
				}
				if (s[0] != ' ' && s[0] != '\t') {
					drop = h->cte != NULL && field_is(s, seg,
					    "Content-Transfer-Encoding");
					h->seen_mv |= field_is(s, seg,
					    "MIME-Version");
					h->seen_ct |= field_is(s, seg,
					    "Content-Type");
				}
			}
			if (!drop)
				relay_out_put(e->out, s, seg);
			line_start = nl != NULL;
		}
		pos += i;
	}
	if (!ended) {
		/* A header without its empty line (nothing follows). */
		if (!line_start)
			relay_out_puts(e->out, "\r\n");
		hdr_extra(e, h);
		relay_out_puts(e->out, "\r\n");
	}
	return 0;
}

static int
emit_part(struct eb *e, const struct postern_mime_part *p, int root)
{
	const struct postern_mime_part *c;
	struct hdr_edit h;
	uint64_t pos;
	int r;

	if ((r = range_8bit(e, p->header_start, p->end)) <= 0)
		return r < 0 ? -1 : copy_range(e, p->header_start, p->end);
	memset(&h, 0, sizeof(h));
	h.root = root;
	if (!composite(p) || p->nchildren == 0) {
		h.cte = strcasecmp(p->type, "text") == 0 ?
		    "quoted-printable" : "base64";
		if (emit_header(e, p, &h) < 0)
			return -1;
		return strcmp(h.cte, "base64") == 0 ?
		    encode_base64(e, p->body_start, p->end) :
		    encode_qp(e, p->body_start, p->end);
	}
	/* A multipart or message: 7bit once its parts are (RFC 2045 6.4,
	 * RFC 2046 5.2.1). */
	if (p->encoding != NULL && strcasecmp(p->encoding, "7bit") != 0)
		h.cte = "7bit";
	if (emit_header(e, p, &h) < 0)
		return -1;
	pos = p->body_start;
	for (c = p->children; c != NULL; c = c->next) {
		if (copy_range(e, pos, c->header_start) < 0 ||
		    emit_part(e, c, 0) < 0)
			return -1;
		pos = c->end;
	}
	return copy_range(e, pos, p->end);
}

int
relay_8bit_scan(int fd, off_t offset, uint64_t len)
{
	struct eb e;
	char err[8];
	int r;

	memset(&e, 0, sizeof(e));
	e.fd = fd;
	e.base = offset;
	e.len = len;
	e.err = err;
	e.errlen = sizeof(err);
	if ((e.buf = malloc(EB_CHUNK)) == NULL)
		return -1;
	r = range_8bit(&e, 0, len);
	free(e.buf);
	return r;
}

/* Parses the message; *any8 tells whether it has an 8-bit octet. */
static struct postern_mime_part *
parse(struct eb *e, postern_pool_t *pool, int *any8)
{
	postern_mime_parser_t *p;
	uint64_t pos = 0;
	size_t n, i;

	*any8 = 0;
	p = e->host->mime_parser_create(pool, NULL);
	while (pos < e->len) {
		n = e->len - pos < EB_CHUNK ? (size_t)(e->len - pos) : EB_CHUNK;
		if (eb_read(e, pos, n) < 0)
			return NULL;
		for (i = 0; i < n && !*any8; i++)
			*any8 = is_8bit((unsigned char)e->buf[i]);
		e->host->mime_parser_feed(p, e->buf, n);
		pos += n;
	}
	return e->host->mime_parser_finish(p);
}

enum relay_8bit_result
relay_8bit_downgrade(const struct postern_host *host, int fd, off_t offset,
                     uint64_t len, struct relay_out *out, char *err,
                     size_t errlen)
{
	struct postern_mime_part *root;
	postern_pool_t *pool = NULL;
	struct eb e;
	char dummy[1];
	int any8, r;

	memset(&e, 0, sizeof(e));
	e.host = host;
	e.fd = fd;
	e.base = offset;
	e.len = len;
	e.out = out;
	e.err = err != NULL ? err : dummy;
	e.errlen = err != NULL ? errlen : sizeof(dummy);
	if ((e.buf = malloc(EB_CHUNK)) == NULL) {
		snprintf(e.err, e.errlen, "8BITMIME downgrade: %s",
		    strerror(ENOMEM));
		return RELAY_8BIT_IO;
	}
	pool = host->pool_create(0);
	r = RELAY_8BIT_IO;
	if ((root = parse(&e, pool, &any8)) == NULL)
		goto done;
	if (!any8) {
		r = copy_range(&e, 0, len) < 0 ? RELAY_8BIT_IO :
		    RELAY_8BIT_UNCHANGED;
	} else if ((r = check_part(&e, root)) == RELAY_8BIT_CONVERTED &&
	    emit_part(&e, root, 1) < 0) {
		r = RELAY_8BIT_IO;
	}
	if ((r == RELAY_8BIT_UNCHANGED || r == RELAY_8BIT_CONVERTED) &&
	    relay_out_finish(out) < 0) {
		snprintf(e.err, e.errlen, "8BITMIME downgrade: writing: %s",
		    strerror(errno));
		r = RELAY_8BIT_IO;
	}
done:
	host->pool_destroy(pool);
	free(e.buf);
	return (enum relay_8bit_result)r;
}
