/*
 * relay_dsn.c - the DSN builder (see relay_dsn.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay_dsn.h"

#define DSN_CHUNK 65536
#define DSN_FOLD 76          /* fold header lines beyond this column */
#define DSN_UNIQUE_MAX 32

struct dsn_ctx {
	const struct relay_dsn *dsn;
	struct relay_out *out;
	char boundary[80];
	char *err;
	size_t errlen;
};

const char *
relay_dsn_action_name(enum relay_dsn_action a)
{
	switch (a) {
	case RELAY_DSN_FAILED:
		return "failed";
	case RELAY_DSN_DELAYED:
		return "delayed";
	case RELAY_DSN_DELIVERED:
		return "delivered";
	case RELAY_DSN_RELAYED:
		return "relayed";
	case RELAY_DSN_EXPANDED:
		return "expanded";
	}
	return NULL;
}

/* 1-3 digits, then the character `end`; advances *s past it. */
static int
status_digits(const char **s, char end)
{
	int n = 0;

	while (**s >= '0' && **s <= '9') {
		(*s)++;
		n++;
	}
	if (n < 1 || n > 3 || **s != end)
		return 0;
	if (end != '\0')
		(*s)++;
	return 1;
}

int
relay_dsn_status_valid(const char *s)
{
	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	s += 2;
	return status_digits(&s, '.') && status_digits(&s, '\0');
}

/* Copies `in` into buf (RELAY_DSN_FIELD_MAX + 1 octets), control octets
 * as spaces and, when `ascii`, octets >= 128 as '?'; cut at the
 * maximum. */
static const char *
safe(const char *in, int ascii, char *buf)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i < RELAY_DSN_FIELD_MAX; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < ' ' || c == 0x7f)
			c = ' ';
		else if (ascii && c >= 0x80)
			c = '?';
		buf[i] = (char)c;
	}
	buf[i] = '\0';
	return buf;
}

static int
has_8bit(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* "Name: value" with the (already safe) value folded at white space so
 * that lines stay near DSN_FOLD columns (RFC 5322 2.2.3). */
static void
put_field(struct relay_out *o, const char *name, const char *value)
{
	size_t col = strlen(name) + 2, len;
	const char *p = value, *sp;

	relay_out_printf(o, "%s: ", name);
	while (*p != '\0') {
		/* The next word and the white space before it. */
		sp = p;
		while (*sp == ' ')
			sp++;
		sp += strcspn(sp, " ");
		len = (size_t)(sp - p);
		if (col + len > DSN_FOLD && col > strlen(name) + 2 &&
		    *p == ' ') {
			relay_out_puts(o, "\r\n");
			col = 0;
		}
		relay_out_put(o, p, len);
		col += len;
		p = sp;
	}
	relay_out_puts(o, "\r\n");
}

static void
fmt_date(int64_t t, char *buf, size_t len)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The most serious action decides the subject and the introduction. */
static enum relay_dsn_action
worst_action(const struct relay_dsn *dsn)
{
	size_t i;
	int delayed = 0;

	for (i = 0; i < dsn->nrcpts; i++) {
		if (dsn->rcpts[i].action == RELAY_DSN_FAILED)
			return RELAY_DSN_FAILED;
		if (dsn->rcpts[i].action == RELAY_DSN_DELAYED)
			delayed = 1;
	}
	return delayed ? RELAY_DSN_DELAYED : RELAY_DSN_DELIVERED;
}

static int
dsn_invalid(struct dsn_ctx *c, const char *what, size_t i)
{
	snprintf(c->err, c->errlen, "DSN: %s (recipient %zu)", what, i + 1);
	return -1;
}

static int
dsn_check(struct dsn_ctx *c)
{
	const struct relay_dsn *dsn = c->dsn;
	size_t i;

	if (dsn->reporting_mta == NULL || dsn->reporting_mta[0] == '\0') {
		snprintf(c->err, c->errlen, "DSN: no reporting MTA name");
		return -1;
	}
	if (dsn->nrcpts == 0 || dsn->rcpts == NULL) {
		snprintf(c->err, c->errlen, "DSN: no recipient to report on");
		return -1;
	}
	if (dsn->orig_fd < 0) {
		snprintf(c->err, c->errlen, "DSN: no original message");
		return -1;
	}
	for (i = 0; i < dsn->nrcpts; i++) {
		const struct relay_dsn_rcpt *r = &dsn->rcpts[i];

		if (r->final_rcpt == NULL || r->final_rcpt[0] == '\0')
			return dsn_invalid(c, "no final recipient", i);
		if (relay_dsn_action_name(r->action) == NULL)
			return dsn_invalid(c, "unknown action", i);
		if (!relay_dsn_status_valid(r->status))
			return dsn_invalid(c, "status is not an enhanced "
			    "status code (class.subject.detail)", i);
	}
	return 0;
}

static void
make_boundary(struct dsn_ctx *c)
{
	const char *u = c->dsn->unique != NULL ? c->dsn->unique : "";
	char clean[DSN_UNIQUE_MAX + 1];
	unsigned char rnd[16];
	size_t n = 0, i;
	char *p;

	for (i = 0; u[i] != '\0' && n < DSN_UNIQUE_MAX; i++) {
		char ch = u[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		    ch == '_')
			clean[n++] = ch;
	}
	clean[n] = '\0';
	arc4random_buf(rnd, sizeof(rnd));
	p = c->boundary + snprintf(c->boundary, sizeof(c->boundary), "%s%s",
	    clean, n > 0 ? "." : "");
	for (i = 0; i < sizeof(rnd); i++)
		p += snprintf(p, 3, "%02x", rnd[i]);
	strcat(c->boundary, "/report");
}

static void
put_header(struct dsn_ctx *c, enum relay_dsn_action worst)
{
	const struct relay_dsn *dsn = c->dsn;
	struct relay_out *o = c->out;
	char date[64], mta[RELAY_DSN_FIELD_MAX + 1];
	char to[RELAY_DSN_FIELD_MAX + 1];

	safe(dsn->reporting_mta, 1, mta);
	fmt_date(dsn->now, date, sizeof(date));
	relay_out_printf(o, "From: Mail Delivery System "
	    "<MAILER-DAEMON@%s>\r\n", mta);
	relay_out_printf(o, "To: <%s>\r\n", safe(dsn->sender, 0, to));
	relay_out_printf(o, "Subject: %s\r\n",
	    worst == RELAY_DSN_FAILED ? "Undelivered Mail Returned to Sender" :
	    worst == RELAY_DSN_DELAYED ? "Delayed Mail (still being retried)" :
	    "Successful Mail Delivery Report");
	relay_out_printf(o, "Date: %s\r\n", date);
	if (dsn->message_id != NULL)
		relay_out_printf(o, "Message-ID: %s\r\n",
		    safe(dsn->message_id, 1, to));
	else
		relay_out_printf(o, "Message-ID: <%s@%s>\r\n", c->boundary,
		    mta);
	relay_out_puts(o, "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n");
	relay_out_printf(o, "\tboundary=\"%s\"\r\n", c->boundary);
	relay_out_printf(o, "Content-Transfer-Encoding: %s\r\n\r\n",
	    dsn->orig_8bit || has_8bit(dsn->sender) ? "8bit" : "7bit");
	relay_out_puts(o, "This is a MIME-encapsulated message.\r\n\r\n");
}

static void
put_human(struct dsn_ctx *c, enum relay_dsn_action worst)
{
	const struct relay_dsn *dsn = c->dsn;
	struct relay_out *o = c->out;
	char a[RELAY_DSN_FIELD_MAX + 1], b[RELAY_DSN_FIELD_MAX + 1];
	int utf8 = 0;
	size_t i;

	for (i = 0; i < dsn->nrcpts; i++)
		utf8 |= has_8bit(dsn->rcpts[i].final_rcpt) |
		    has_8bit(dsn->rcpts[i].diagnostic);
	relay_out_printf(o, "--%s\r\n", c->boundary);
	relay_out_puts(o, "Content-Description: Notification\r\n");
	relay_out_printf(o, "Content-Type: text/plain; charset=%s\r\n",
	    utf8 ? "utf-8" : "us-ascii");
	if (utf8)
		relay_out_puts(o, "Content-Transfer-Encoding: 8bit\r\n");
	relay_out_printf(o, "\r\nThis is the mail system at host %s.\r\n\r\n",
	    safe(dsn->reporting_mta, 1, a));
	if (worst == RELAY_DSN_FAILED)
		relay_out_puts(o, "Your message could not be delivered to one "
		    "or more recipients.\r\nIt is attached below.\r\n");
	else if (worst == RELAY_DSN_DELAYED)
		relay_out_puts(o, "Your message could not be delivered yet to "
		    "one or more recipients.\r\nDelivery will be tried again; "
		    "you need not send it again.\r\n");
	else
		relay_out_puts(o, "Your message was delivered to the "
		    "recipients below, as you asked.\r\n");
	relay_out_puts(o, "\r\n");
	for (i = 0; i < dsn->nrcpts; i++) {
		const struct relay_dsn_rcpt *r = &dsn->rcpts[i];

		relay_out_printf(o, "<%s>: %s (%s)\r\n",
		    safe(r->final_rcpt, 0, a), relay_dsn_action_name(r->action),
		    r->status);
		if (r->diagnostic != NULL)
			relay_out_printf(o, "    %s%s%s\r\n",
			    r->remote_mta != NULL ? safe(r->remote_mta, 1, b) :
			    "", r->remote_mta != NULL ? " said: " : "",
			    safe(r->diagnostic, 0, a));
	}
	relay_out_puts(o, "\r\n");
}

static void
put_status(struct dsn_ctx *c)
{
	const struct relay_dsn *dsn = c->dsn;
	struct relay_out *o = c->out;
	char v[RELAY_DSN_FIELD_MAX + 32], s[RELAY_DSN_FIELD_MAX + 1];
	char date[64];
	size_t i;

	relay_out_printf(o, "--%s\r\n", c->boundary);
	relay_out_puts(o, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	snprintf(v, sizeof(v), "dns; %s", safe(dsn->reporting_mta, 1, s));
	put_field(o, "Reporting-MTA", v);
	if (dsn->envid != NULL)
		put_field(o, "Original-Envelope-Id", safe(dsn->envid, 1, s));
	if (dsn->arrival != 0) {
		fmt_date(dsn->arrival, date, sizeof(date));
		put_field(o, "Arrival-Date", date);
	}
	for (i = 0; i < dsn->nrcpts; i++) {
		const struct relay_dsn_rcpt *r = &dsn->rcpts[i];

		relay_out_puts(o, "\r\n");
		if (r->orcpt != NULL)
			put_field(o, "Original-Recipient",
			    safe(r->orcpt, 1, s));
		snprintf(v, sizeof(v), "rfc822; %s",
		    safe(r->final_rcpt, 1, s));
		put_field(o, "Final-Recipient", v);
		put_field(o, "Action", relay_dsn_action_name(r->action));
		put_field(o, "Status", r->status);
		if (r->remote_mta != NULL) {
			snprintf(v, sizeof(v), "dns; %s",
			    safe(r->remote_mta, 1, s));
			put_field(o, "Remote-MTA", v);
		}
		if (r->diagnostic != NULL) {
			snprintf(v, sizeof(v), "smtp; %s",
			    safe(r->diagnostic, 1, s));
			put_field(o, "Diagnostic-Code", v);
		}
		if (r->last_attempt != 0) {
			fmt_date(r->last_attempt, date, sizeof(date));
			put_field(o, "Last-Attempt-Date", date);
		}
		if (r->action == RELAY_DSN_DELAYED &&
		    r->will_retry_until != 0) {
			fmt_date(r->will_retry_until, date, sizeof(date));
			put_field(o, "Will-Retry-Until", date);
		}
	}
	relay_out_puts(o, "\r\n");
}

/* Copies the original, or only its header (through the line break of
 * its last field) when `hdrs`, from the fd in pieces.  In a header, CRs
 * at the end of a piece are held back until the next piece shows
 * whether they begin the empty line that ends it. */
static int
put_original(struct dsn_ctx *c, int hdrs)
{
	const struct relay_dsn *dsn = c->dsn;
	char *buf;
	uint64_t pos = 0;
	size_t want, n, i, keep, held = 0, cr;
	ssize_t got;
	int breaks = 0;   /* line breaks in a row, CRs aside */

	if ((buf = malloc(DSN_CHUNK)) == NULL) {
		snprintf(c->err, c->errlen, "DSN: %s", strerror(ENOMEM));
		return -1;
	}
	while (pos < dsn->orig_len) {
		want = dsn->orig_len - pos < DSN_CHUNK ?
		    (size_t)(dsn->orig_len - pos) : DSN_CHUNK;
		got = pread(dsn->orig_fd, buf, want,
		    dsn->orig_offset + (off_t)pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			snprintf(c->err, c->errlen, "DSN: reading the original "
			    "at offset %llu of %llu: %s",
			    (unsigned long long)pos,
			    (unsigned long long)dsn->orig_len,
			    got == 0 ? "file ends early" : strerror(errno));
			free(buf);
			return -1;
		}
		n = (size_t)got;
		pos += n;
		if (!hdrs) {
			relay_out_put(c->out, buf, n);
			continue;
		}
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				if (++breaks == 2)
					break;
			} else if (buf[i] != '\r') {
				breaks = 0;
			}
		}
		keep = i < n ? i : n;
		for (cr = 0; keep > 0 && buf[keep - 1] == '\r'; cr++)
			keep--;
		if (i < n && keep == 0) {
			/* The held CRs began the empty line. */
			held = 0;
			break;
		}
		for (; held > 0; held--)
			relay_out_put(c->out, "\r", 1);
		relay_out_put(c->out, buf, keep);
		if (i < n)
			break;
		held = cr;
	}
	free(buf);
	for (; held > 0; held--)
		relay_out_put(c->out, "\r", 1);
	return 0;
}

enum relay_dsn_result
relay_dsn_write(const struct relay_dsn *dsn, struct relay_out *out,
                char *err, size_t errlen)
{
	struct dsn_ctx c;
	enum relay_dsn_action worst;
	char dummy[1];
	uint64_t full_max;
	int full;

	memset(&c, 0, sizeof(c));
	c.dsn = dsn;
	c.out = out;
	c.err = err != NULL ? err : dummy;
	c.errlen = err != NULL ? errlen : sizeof(dummy);
	if (dsn->sender == NULL || dsn->sender[0] == '\0') {
		snprintf(c.err, c.errlen, "DSN: the sender is the null sender: "
		    "no report is sent to it");
		return RELAY_DSN_NULL_SENDER;
	}
	if (dsn_check(&c) < 0)
		return RELAY_DSN_INVALID;
	make_boundary(&c);
	worst = worst_action(dsn);
	full_max = dsn->full_max != 0 ? dsn->full_max : 65536;
	full = dsn->ret == RELAY_DSN_RET_FULL ||
	    (dsn->ret == RELAY_DSN_RET_DEFAULT && dsn->orig_len <= full_max);

	put_header(&c, worst);
	put_human(&c, worst);
	put_status(&c);
	relay_out_printf(out, "--%s\r\n", c.boundary);
	relay_out_printf(out, "Content-Description: %s%s\r\n",
	    worst == RELAY_DSN_FAILED ? "Undelivered " : "",
	    full ? "Message" : "Message Headers");
	relay_out_printf(out, "Content-Type: %s\r\n",
	    full ? "message/rfc822" : "text/rfc822-headers");
	if (dsn->orig_8bit)
		relay_out_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
	relay_out_puts(out, "\r\n");
	if (put_original(&c, !full) < 0)
		return RELAY_DSN_IO;
	relay_out_printf(out, "\r\n--%s--\r\n", c.boundary);
	if (relay_out_finish(out) < 0) {
		snprintf(c.err, c.errlen, "DSN: writing the report: %s",
		    strerror(errno));
		return RELAY_DSN_IO;
	}
	return RELAY_DSN_OK;
}
