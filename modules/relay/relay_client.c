/*
 * relay_client.c - the outbound SMTP (RFC 5321) and LMTP (RFC 2033)
 * client: one session per connection, carrying one delivery at a time
 * and reused for the next delivery to the same destination.
 *
 *   connect -> 220 -> EHLO (LHLO; HELO when EHLO is refused)
 *   -> STARTTLS per the route's policy -> EHLO -> AUTH when the route
 *   has credentials -> [MAIL, RCPT..., DATA (pipelined when offered),
 *   the message dot-stuffed, "." -> reply (LMTP: one per accepted
 *   recipient)]... -> QUIT when idle for reuse_timeout.
 *   With CHUNKING (RFC 3030) the message goes as it is, in BDAT chunks
 *   after the RCPT replies, the last one marked LAST and answered as
 *   the final dot would be.  An 8-bit message for a hop without
 *   8BITMIME is first made 7-bit on a job thread (relay_convert.h).
 *
 * Timeouts per phase are the settings, whose defaults are RFC 5321
 * section 4.5.3.2's: 5 minutes for the greeting and commands, 2 for
 * the DATA reply, 3 per data block, 10 for the final reply.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "relay.h"
#include "relay_convert.h"

#define REPLY_TEXT_MAX 1000
#define REPLY_LINE_MAX 4096
#define TEXT_MAX 2048

#define CAP_PIPELINING 0x01u
#define CAP_SIZE 0x02u
#define CAP_8BITMIME 0x04u
#define CAP_SMTPUTF8 0x08u
#define CAP_DSN 0x10u
#define CAP_STARTTLS 0x20u
#define CAP_AUTH_PLAIN 0x40u
#define CAP_AUTH_LOGIN 0x80u
#define CAP_CHUNKING 0x100u

/* The largest BDAT chunk (RFC 3030): a message of up to this size goes
 * in one; a bigger one in several, each waiting for its reply. */
#define BDAT_CHUNK_MAX (4 * 1024 * 1024)

#define RELAY_MAX_MX 5
#define RELAY_MAX_CANDS 8

struct relay_cand {
	char host[256];      /* the name (for logs and TLS verification) */
	char addr[108];      /* numeric address, or a unix socket path */
	unsigned port;
};

enum phase {
	P_GREETING = 0,
	P_EHLO,
	P_HELO,
	P_STARTTLS,
	P_EHLO_TLS,
	P_AUTH,
	P_AUTH_USER,  /* AUTH LOGIN sent: the user name prompt is due */
	P_AUTH_PASS,  /* user name sent: the password prompt is due */
	P_CONVERT,   /* the 8BITMIME downgrade's job runs */
	P_TXN,       /* MAIL, RCPT..., DATA replies */
	P_BODY,      /* sending the message */
	P_BDAT,      /* waiting for the reply to a BDAT chunk but the last */
	P_DOT,       /* waiting for the final reply(ies) */
	P_RSET,
	P_IDLE,
	P_QUIT,
};

static const char *const phase_names[] = {
	"waiting for the greeting", "after EHLO", "after HELO",
	"after STARTTLS", "after EHLO in TLS", "after AUTH",
	"after AUTH LOGIN user", "after AUTH LOGIN password",
	"converting the message to 7 bits",
	"during the transaction", "sending the message",
	"after a BDAT chunk",
	"after end of data", "after RSET", "while idle", "after QUIT",
};

struct relay_sess {
	postern_conn_t *c;
	struct relay_dest *dest;
	struct relay_dlv *dlv;
	enum phase phase;
	int lmtp;
	int ready_once;      /* reached a transaction at least once */
	unsigned caps;
	uint64_t size_max;
	unsigned msgs;
	char name[300];      /* host[addr]:port for logs */

	/* the reply being read */
	int rcode;
	char rtext[REPLY_TEXT_MAX + 1];
	size_t rlen;
	unsigned nlines;     /* lines of it so far */
	int in_reply;
	int authed;

	/* the transaction */
	size_t ncmds, sent, replied; /* MAIL + RCPTs + DATA */
	size_t naccepted, dot_replies;
	int mail_ok;
	int data_ok;

	/* the body: the queue file's message, or its 7-bit form */
	int body_fd;         /* borrowed, or conv_fd */
	off_t body_off;
	uint64_t body_len;
	int conv_fd;         /* the downgrade's output (owned), or -1 */
	int converted;       /* body_fd is the 7-bit form: no BODY= */
	struct relay_conv *conv;
	uint64_t body_done;  /* octets of body_fd sent */
	int streaming;       /* the host's stream sends the body */
	int body_ended;      /* BDAT: the LAST chunk is out */
	int chunking;        /* this transaction sends BDAT */
	uint64_t body_total; /* BDAT: octets to send, the CRLF added */
	uint64_t body_sent;  /* BDAT: octets of body_total announced */
	uint64_t chunk_file; /* BDAT: the chunk's octets from body_fd */
	int chunk_crlf;      /* ...followed by the CRLF the message lacked */

	TAILQ_ENTRY(relay_sess) link; /* dest->idle */
	int on_idle;

	/* where to connect: MX hosts, then their addresses, in order */
	char mx[RELAY_MAX_MX][256];
	size_t nmx, imx;
	struct relay_cand cands[RELAY_MAX_CANDS];
	size_t ncands, icand;
	unsigned port;
	postern_dns_query_t *q;        /* the DNS lookup in flight */
	int greeted;
	char err[300];
};

static void sess_next(struct relay_sess *s);
static int connect_next(struct relay_sess *s);
static void txn_send(struct relay_sess *s);
static void txn_reset(struct relay_sess *s);

void
relay_result_set(struct relay_result *r, int code, const char *dsn,
                 const char *text)
{
	r->code = code;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	free(r->text);
	r->text = strdup(text != NULL ? text : "");
}

/* ---- small helpers ---------------------------------------------------- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of `len` octets into out (4 * ((len + 2) / 3) + 1 octets). */
static void
b64(const unsigned char *in, size_t len, char *out)
{
	size_t i;
	unsigned v;

	for (i = 0; i + 2 < len; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		*out++ = b64chars[v >> 18];
		*out++ = b64chars[(v >> 12) & 63];
		*out++ = b64chars[(v >> 6) & 63];
		*out++ = b64chars[v & 63];
	}
	if (i < len) {
		v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		*out++ = b64chars[v >> 18];
		*out++ = b64chars[(v >> 12) & 63];
		*out++ = i + 1 < len ? b64chars[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = '\0';
}

/* RFC 3461 xtext of s, appended to the connection's output. */
static void
put_xtext(postern_conn_t *c, const char *s)
{
	char buf[512];
	size_t n = 0;
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		if (n + 4 >= sizeof(buf)) {
			relay_host->conn_write(c, buf, n);
			n = 0;
		}
		if (*p < 0x21 || *p > 0x7e || *p == '+' || *p == '=')
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "+%02X",
			                      *p);
		else
			buf[n++] = (char)*p;
	}
	relay_host->conn_write(c, buf, n);
}

/* "4.4.2" from "451 4.4.2 text" when the reply has one, else the
 * default for the class. */
static void
reply_dsn(const struct relay_sess *s, char *dsn, size_t len)
{
	unsigned a, b, cc;
	int n = 0;

	if (sscanf(s->rtext, "%1u.%3u.%3u%n", &a, &b, &cc, &n) == 3 &&
	    n > 0 && (s->rtext[n] == ' ' || s->rtext[n] == '\0') &&
	    (int)a == s->rcode / 100) {
		snprintf(dsn, len, "%u.%u.%u", a, b, cc);
		return;
	}
	snprintf(dsn, len, "%d.0.0", s->rcode / 100);
}

/* ---- ending deliveries and sessions ----------------------------------- */

/* Every recipient of the delivery still without a result gets one. */
static void
dlv_fill(struct relay_dlv *d, int code, const char *dsn, const char *text)
{
	size_t i;

	for (i = 0; i < d->nres; i++)
		if (d->res[i].code == 0)
			relay_result_set(&d->res[i], code, dsn, text);
}

/* The delivery's body is no longer needed: its 7-bit form goes, or its
 * conversion, still running, is left to end on its own. */
static void
body_release(struct relay_sess *s)
{
	if (s->conv != NULL) {
		relay_conv_detach(s->conv);
		s->conv = NULL;
	}
	if (s->conv_fd >= 0)
		close(s->conv_fd);
	s->conv_fd = -1;
	s->converted = 0;
}

static void
dlv_finish(struct relay_sess *s)
{
	struct relay_dlv *d = s->dlv;

	if (d == NULL)
		return;
	s->dlv = NULL;
	body_release(s);
	relay_dlv_done(d, s->name);
}

/* The session cannot go on: what it carries is deferred (or failed,
 * for a 5xx), and so is everything queued for the destination when the
 * session never got as far as a transaction (the next hop is down). */
static void
sess_fail(struct relay_sess *s, int code, const char *dsn, const char *text)
{
	struct relay_dlv *d;

	if (s->dlv != NULL) {
		dlv_fill(s->dlv, code, dsn, text);
		dlv_finish(s);
	}
	if (!s->ready_once) {
		while ((d = relay_dest_next(s->dest)) != NULL) {
			dlv_fill(d, code >= 500 ? 451 : code, "4.4.1", text);
			relay_dlv_done(d, s->name);
		}
	}
}

static void
sess_quit(struct relay_sess *s)
{
	s->phase = P_QUIT;
	relay_host->conn_printf(s->c, "QUIT\r\n");
	relay_host->conn_close(s->c);
}

/* A protocol failure: defer with the reason, say goodbye. */
static void
sess_abort(struct relay_sess *s, int code, const char *dsn, const char *text)
{
	sess_fail(s, code, dsn, text);
	sess_quit(s);
}

/* A reply that ends the session's usefulness: defer or fail with it. */
static void
sess_reply_fail(struct relay_sess *s, const char *what)
{
	char text[TEXT_MAX], dsn[16];

	reply_dsn(s, dsn, sizeof(dsn));
	snprintf(text, sizeof(text), "host %s said: %d %s (%s)", s->name,
	         s->rcode, s->rtext, what);
	sess_abort(s, s->rcode >= 400 && s->rcode < 600 ? s->rcode : 451,
	           s->rcode >= 400 && s->rcode < 600 ? dsn : "4.5.0", text);
}

static void
sess_free(struct relay_sess *s)
{
	if (s->q != NULL)
		relay_host->dns_cancel(s->q);
	if (s->on_idle)
		TAILQ_REMOVE(&s->dest->idle, s, link);
	relay_dest_sess_gone(s->dest);
	body_release(s);
	free(s);
}

static void
on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	struct relay_sess *s = arg;
	const char *err = relay_host->conn_error(c);
	char text[TEXT_MAX];

	if (!s->greeted && s->icand < s->ncands && !relay_host->stopping()) {
		/* Not even a greeting: the next address (RFC 5321 section
		 * 5.1: the next MX host). */
		if (err != NULL)
			relay_host->log(relay_self, POSTERN_LOG_INFO, "%s (%s); "
			                "trying the next address", err, s->name);
		s->c = NULL;
		if (connect_next(s) == 0)
			return;
		err = s->err;
	}
	if (s->dlv != NULL || !s->ready_once) {
		if (err != NULL)
			snprintf(text, sizeof(text), "%s (%s)", err, s->name);
		else if (why == POSTERN_CLOSE_TIMEOUT)
			snprintf(text, sizeof(text), "conversation with %s "
			         "timed out %s", s->name, phase_names[s->phase]);
		else
			snprintf(text, sizeof(text), "lost connection with %s "
			         "%s", s->name, phase_names[s->phase]);
		/* RFC 3463: 4.4.1 no answer from host, 4.4.2 bad
		 * connection. */
		sess_fail(s, 451, s->greeted ? "4.4.2" : "4.4.1", text);
	}
	sess_free(s);
}

static int
on_timeout(postern_conn_t *c, void *arg)
{
	struct relay_sess *s = arg;

	if (s->phase == P_IDLE)
		relay_host->conn_printf(c, "QUIT\r\n");
	return 1;
}

static void
on_shutdown(postern_conn_t *c, void *arg)
{
	struct relay_sess *s = arg;

	/* A transaction in flight finishes (or times out); idle ones go. */
	if (s->phase == P_IDLE)
		sess_quit(s);
	(void)c;
}

/* ---- the body ---------------------------------------------------------- */

/* The message goes out through the host's stream (postern/stream.h):
 * read from the queue file without blocking the loop, dot-stuffed for
 * DATA (with the CRLF a message lacking one needs, and the final dot),
 * as it is for BDAT, and produced only while the next hop keeps up. */

static void bdat_chunk(struct relay_sess *s);

/* A piece of the body is out (or not): status from the stream. */
static int
body_streamed(struct relay_sess *s, int status)
{
	char text[TEXT_MAX];

	s->streaming = 0;
	if (status == POSTERN_CLOSED)
		return -1; /* on_close says what was lost */
	if (status == POSTERN_OK)
		return 0;
	/* The peer has part of the message: it must not take it as
	 * complete, so the connection drops. */
	snprintf(text, sizeof(text), "cannot read queue file %s",
	         s->dlv != NULL ? s->dlv->q->id : "?");
	relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s", text);
	sess_fail(s, 451, "4.3.0", text);
	relay_host->conn_close(s->c);
	return -1;
}

/* Streams `len` octets of the body from body_done, transformed; done
 * follows.  0, or -1 after failing the session. */
static int
body_stream(struct relay_sess *s, uint64_t len,
            enum postern_stream_transform how,
            postern_stream_done_fn done)
{
	struct postern_stream_source src = {
		.size = sizeof(src),
		.fd = s->body_fd,
		.offset = (uint64_t)s->body_off + s->body_done,
		.length = len,
	};
	struct postern_stream_spec spec = {
		.size = sizeof(spec),
		.transform = how,
	};

	int rc;

	s->streaming = 1;
	/* Not started: CLOSED (on_close follows) or ERROR (logged). */
	rc = relay_host->stream_start(s->c, &src, &spec, done, s);
	if (rc == POSTERN_OK)
		return 0;
	body_streamed(s, rc);
	return -1;
}

/* DATA: the whole message, then its dot. */
static void
data_done(void *arg, int status)
{
	struct relay_sess *s = arg;

	if (body_streamed(s, status) < 0)
		return;
	s->body_done = s->body_len;
	s->phase = P_DOT;
	relay_host->conn_set_idle(s->c, (unsigned)relay_cfg.data_done_timeout);
}

static void
body_send(struct relay_sess *s)
{
	body_stream(s, s->body_len, POSTERN_STREAM_DOTSTUFF, data_done);
}

/* BDAT: a chunk's octets are out. */
static void
bdat_done(void *arg, int status)
{
	struct relay_sess *s = arg;

	if (body_streamed(s, status) < 0)
		return;
	s->body_done += s->chunk_file;
	if (s->chunk_crlf)
		/* Past the stored octets: the CRLF the message lacked
		 * (RFC 5321 section 4.1.1.4). */
		relay_host->conn_write(s->c, "\r\n", 2);
	s->phase = s->body_ended ? P_DOT : P_BDAT;
	relay_host->conn_set_idle(s->c, (unsigned)(s->body_ended
	        ? relay_cfg.data_done_timeout : relay_cfg.data_block_timeout));
}

/* BDAT: the next chunk's command, then its octets as they are (no
 * dot-stuffing). */
static void
bdat_chunk(struct relay_sess *s)
{
	uint64_t left = s->body_total - s->body_sent, size;

	size = left > BDAT_CHUNK_MAX ? BDAT_CHUNK_MAX : left;
	s->body_ended = size == left;
	relay_host->conn_printf(s->c, "BDAT %" PRIu64 "%s\r\n", size,
	                        s->body_ended ? " LAST" : "");
	s->body_sent += size;
	/* The added CRLF is the last 2 octets of the last chunk. */
	s->chunk_file = s->body_len - s->body_done < size
	                        ? s->body_len - s->body_done : size;
	s->chunk_crlf = s->chunk_file < size;
	body_stream(s, s->chunk_file, POSTERN_STREAM_RAW, bdat_done);
}

/* BDAT after the RCPT replies: the size to send is the message's, and
 * 2 more when it does not end with CRLF. */
static void
bdat_start(struct relay_sess *s)
{
	char last[2];

	s->body_total = s->body_len;
	s->body_sent = 0;
	if (s->body_len < 2 ||
	    pread(s->body_fd, last, 2, s->body_off +
	          (off_t)(s->body_len - 2)) != 2 ||
	    memcmp(last, "\r\n", 2) != 0)
		s->body_total += 2;
	s->phase = P_BODY;
	relay_host->conn_set_idle(s->c, (unsigned)relay_cfg.data_block_timeout);
	bdat_chunk(s);
}

/* The reply to a BDAT chunk but the last: on with the next, or the
 * transaction failed (RFC 3030 section 2: the data so far is gone). */
static void
bdat_reply(struct relay_sess *s)
{
	char text[TEXT_MAX], dsn[16];

	if (s->rcode / 100 == 2) {
		s->phase = P_BODY;
		relay_host->conn_set_idle(s->c,
		        (unsigned)relay_cfg.data_block_timeout);
		bdat_chunk(s);
		return;
	}
	reply_dsn(s, dsn, sizeof(dsn));
	snprintf(text, sizeof(text), "host %s said: %d %s (after BDAT)",
	         s->name, s->rcode, s->rtext);
	dlv_fill(s->dlv, s->rcode, dsn, text);
	txn_reset(s);
}

/* ---- the transaction --------------------------------------------------- */

/* The message is 8-bit and the next hop takes only 7 bits: RFC 6152
 * section 3 lets the relay convert it. */
static int
txn_needs_7bit(const struct relay_sess *s)
{
	const struct rq_msg *q = s->dlv->q;

	return (q->body == POSTERN_BODY_8BITMIME ||
	        q->body == POSTERN_BODY_BINARYMIME) &&
	       !(s->caps & CAP_8BITMIME);
}

/* Checks what the next hop must offer for this message (as it will be
 * sent: its 7-bit form once converted); 0 to go on, or -1 after failing
 * the delivery's recipients. */
static int
txn_check(struct relay_sess *s)
{
	struct relay_dlv *d = s->dlv;
	struct rq_msg *q = d->q;
	char text[TEXT_MAX];

	if (q->smtputf8 && !(s->caps & CAP_SMTPUTF8)) {
		/* RFC 6531 section 3.2: no downgrade, a bounce. */
		snprintf(text, sizeof(text), "host %s does not support "
		         "SMTPUTF8, which the message needs", s->name);
		dlv_fill(d, 553, "5.6.7", text);
		return -1;
	}
	if ((s->caps & CAP_SIZE) && s->size_max > 0 &&
	    s->body_len > s->size_max) {
		snprintf(text, sizeof(text), "message of %" PRIu64 " octets%s "
		         "exceeds the %" PRIu64 " of host %s", s->body_len,
		         s->converted ? " (in 7 bits)" : "", s->size_max,
		         s->name);
		dlv_fill(d, 552, "5.3.4", text);
		return -1;
	}
	return 0;
}

static void
send_mail(struct relay_sess *s)
{
	struct rq_msg *q = s->dlv->q;
	postern_conn_t *c = s->c;

	relay_host->conn_printf(c, "MAIL FROM:<%s>", q->sender);
	if (s->caps & CAP_SIZE)
		relay_host->conn_printf(c, " SIZE=%" PRIu64, s->body_len);
	if ((q->body == POSTERN_BODY_8BITMIME ||
	     q->body == POSTERN_BODY_BINARYMIME) && !s->converted &&
	    (s->caps & CAP_8BITMIME))
		relay_host->conn_printf(c, " BODY=8BITMIME");
	if (q->smtputf8)
		relay_host->conn_printf(c, " SMTPUTF8");
	if (s->caps & CAP_DSN) {
		if (q->ret != POSTERN_DSN_RET_UNSPECIFIED)
			relay_host->conn_printf(c, " RET=%s",
			        q->ret == POSTERN_DSN_RET_FULL ? "FULL"
			                                       : "HDRS");
		if (q->envid != NULL) {
			relay_host->conn_printf(c, " ENVID=");
			put_xtext(c, q->envid);
		}
	}
	relay_host->conn_write(c, "\r\n", 2);
}

static void
send_rcpt(struct relay_sess *s, const struct rq_rcpt *r)
{
	postern_conn_t *c = s->c;
	const char *semi;
	static const char *const names[] = { "SUCCESS", "FAILURE", "DELAY" };
	unsigned i, first = 1;

	relay_host->conn_printf(c, "RCPT TO:<%s>", r->address);
	if ((s->caps & CAP_DSN) && r->notify != 0) {
		relay_host->conn_printf(c, " NOTIFY=");
		if (r->notify & POSTERN_DSN_NOTIFY_NEVER) {
			relay_host->conn_printf(c, "NEVER");
		} else {
			for (i = 0; i < 3; i++) {
				if (!(r->notify & (POSTERN_DSN_NOTIFY_SUCCESS
				                   << i)))
					continue;
				relay_host->conn_printf(c, "%s%s",
				                        first ? "" : ",",
				                        names[i]);
				first = 0;
			}
		}
	}
	if ((s->caps & CAP_DSN) && r->orcpt != NULL &&
	    (semi = strchr(r->orcpt, ';')) != NULL) {
		relay_host->conn_printf(c, " ORCPT=%.*s;",
		                        (int)(semi - r->orcpt), r->orcpt);
		put_xtext(c, semi + 1);
	}
	relay_host->conn_write(c, "\r\n", 2);
}

/* Sends command number `i` of the transaction. */
static void
txn_cmd(struct relay_sess *s, size_t i)
{
	struct relay_dlv *d = s->dlv;

	if (i == 0)
		send_mail(s);
	else if (i <= d->nres)
		send_rcpt(s, &d->q->rcpts[d->res[i - 1].rcpt]);
	else
		relay_host->conn_printf(s->c, "DATA\r\n");
}

/* The RCPT replies are in (BDAT's transaction): the body, or RSET. */
static void
txn_rcpts_done(struct relay_sess *s)
{
	if (s->mail_ok && s->naccepted > 0)
		bdat_start(s);
	else
		txn_reset(s);
}

/* Sends what may go now: everything with PIPELINING (RFC 2920), else
 * the next command once the previous one is answered. */
static void
txn_send(struct relay_sess *s)
{
	while (s->sent < s->ncmds &&
	       ((s->caps & CAP_PIPELINING) || s->sent == s->replied))
		txn_cmd(s, s->sent++);
}

/* MAIL, RCPT..., DATA for the session's delivery and body. */
static void
txn_begin(struct relay_sess *s)
{
	s->phase = P_TXN;
	/* With CHUNKING, BDAT waits for the RCPT replies: no DATA. */
	s->chunking = (s->caps & CAP_CHUNKING) != 0;
	s->ncmds = s->dlv->nres + (s->chunking ? 1 : 2);
	s->sent = s->replied = 0;
	s->naccepted = s->dot_replies = 0;
	s->mail_ok = 0;
	s->data_ok = 0;
	s->body_done = 0;
	s->body_ended = 0;
	s->msgs++;
	relay_host->conn_set_idle(s->c, (unsigned)relay_cfg.command_timeout);
	txn_send(s);
}

/* The downgrade's job ended (on the loop). */
static void
conv_done(void *arg, struct relay_conv_result *r)
{
	struct relay_sess *s = arg;
	struct relay_dlv *d = s->dlv;
	char text[TEXT_MAX];

	s->conv = NULL;
	switch (r->res) {
	case RELAY_8BIT_UNCHANGED:
	case RELAY_8BIT_CONVERTED:
		s->conv_fd = r->fd;
		s->converted = 1;
		s->body_fd = r->fd;
		s->body_off = 0;
		s->body_len = r->len;
		if (txn_check(s) == 0) {
			txn_begin(s);
			return;
		}
		break;
	case RELAY_8BIT_HEADER:
	case RELAY_8BIT_CANNOT:
		/* RFC 3463 5.6.3: conversion required but not supported. */
		snprintf(text, sizeof(text), "host %s does not support "
		         "8BITMIME and the message cannot be made 7-bit: %s",
		         s->name, r->err);
		dlv_fill(d, 554, "5.6.3", text);
		break;
	case RELAY_8BIT_IO:
		if (r->too_big) {
			snprintf(text, sizeof(text), "for host %s, which does "
			         "not support 8BITMIME: %s", s->name, r->err);
			dlv_fill(d, 552, "5.3.4", text);
			break;
		}
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s: %s",
		                d->q->id, r->err);
		dlv_fill(d, 451, "4.3.0", r->err);
		break;
	}
	dlv_finish(s);
	sess_next(s);
}

/* Starts the 7-bit conversion of the delivery's message on a job
 * thread; the session waits in P_CONVERT.  Its output is bounded: by
 * the next hop's SIZE, else by what quoted-printable can make of the
 * message (at most 3 octets for 1, plus soft line breaks). */
static void
conv_begin(struct relay_sess *s)
{
	struct rq_msg *q = s->dlv->q;
	uint64_t limit = q->msg_len * 4 + 65536;
	char text[TEXT_MAX];

	if ((s->caps & CAP_SIZE) && s->size_max > 0 && s->size_max < limit)
		limit = s->size_max;
	s->phase = P_CONVERT;
	relay_host->conn_set_idle(s->c, (unsigned)relay_cfg.command_timeout);
	s->conv = relay_conv_start(q->fd, (off_t)q->msg_offset, q->msg_len,
	                           limit, conv_done, s);
	if (s->conv != NULL)
		return;
	snprintf(text, sizeof(text), "8BITMIME downgrade of %s: %s", q->id,
	         strerror(errno));
	relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s", text);
	dlv_fill(s->dlv, 451, "4.3.0", text);
	dlv_finish(s);
	sess_next(s);
}

static void
txn_start(struct relay_sess *s, struct relay_dlv *d)
{
	s->dlv = d;
	s->ready_once = 1;
	s->body_fd = d->q->fd;
	s->body_off = (off_t)d->q->msg_offset;
	s->body_len = d->q->msg_len;
	if (txn_check(s) < 0) {
		dlv_finish(s);
		sess_next(s);
		return;
	}
	if (txn_needs_7bit(s)) {
		conv_begin(s);
		return;
	}
	txn_begin(s);
}

/* After a transaction that did not end with data: RSET, then next. */
static void
txn_reset(struct relay_sess *s)
{
	dlv_finish(s);
	s->phase = P_RSET;
	relay_host->conn_set_idle(s->c, (unsigned)relay_cfg.command_timeout);
	relay_host->conn_printf(s->c, "RSET\r\n");
}

/* A reply to MAIL, a RCPT or DATA. */
static void
txn_reply(struct relay_sess *s)
{
	struct relay_dlv *d = s->dlv;
	size_t i = s->replied++;
	char text[TEXT_MAX], dsn[16];
	struct relay_result *r;

	reply_dsn(s, dsn, sizeof(dsn));
	snprintf(text, sizeof(text), "host %s said: %d %s", s->name, s->rcode,
	         s->rtext);
	if (i == 0) {
		s->mail_ok = s->rcode / 100 == 2;
		if (!s->mail_ok)
			dlv_fill(d, s->rcode, dsn, text);
	} else if (i <= d->nres) {
		r = &d->res[i - 1];
		if (s->mail_ok && s->rcode / 100 == 2) {
			r->accepted = 1;
			s->naccepted++;
		} else if (s->mail_ok) {
			relay_result_set(r, s->rcode, dsn, text);
		}
	} else {
		if (s->rcode == 354 && s->mail_ok && s->naccepted > 0) {
			s->phase = P_BODY;
			relay_host->conn_set_idle(s->c,
			        (unsigned)relay_cfg.data_block_timeout);
			body_send(s);
			return;
		}
		if (s->rcode == 354) {
			/* Pipelined DATA taken with no recipient: an empty
			 * message ends it, then RSET. */
			relay_host->conn_printf(s->c, ".\r\n");
			s->phase = P_DOT;
			s->dot_replies = s->naccepted = 0;
			return;
		}
		if (s->mail_ok)
			dlv_fill(d, s->rcode, dsn, text);
	}
	if (s->chunking && s->replied == s->ncmds) {
		txn_rcpts_done(s);
		return;
	}
	if (s->caps & CAP_PIPELINING) {
		/* Everything was sent: wait for every reply. */
		if (s->replied == s->ncmds)
			txn_reset(s);
		return;
	}
	/* One at a time: stop when MAIL failed, when no recipient was
	 * taken (DATA is not sent), or after DATA's refusal. */
	if (!s->mail_ok || s->replied == s->ncmds ||
	    (!s->chunking && s->replied == s->ncmds - 1 &&
	     s->naccepted == 0)) {
		txn_reset(s);
		return;
	}
	txn_send(s);
}

/* The reply (SMTP) or one of the replies (LMTP) after the final dot. */
static void
dot_reply(struct relay_sess *s)
{
	struct relay_dlv *d = s->dlv;
	char text[TEXT_MAX], dsn[16];
	size_t i, k = 0;

	reply_dsn(s, dsn, sizeof(dsn));
	snprintf(text, sizeof(text), "%d %s", s->rcode, s->rtext);
	if (s->naccepted == 0) {
		/* The empty message after a pipelined DATA. */
		txn_reset(s);
		return;
	}
	for (i = 0; i < d->nres; i++) {
		if (!d->res[i].accepted || d->res[i].code != 0)
			continue;
		if (!s->lmtp) {
			relay_result_set(&d->res[i], s->rcode, dsn, text);
			continue;
		}
		/* LMTP: this reply is for the next accepted recipient
		 * still without one (RFC 2033 section 4.2). */
		relay_result_set(&d->res[i], s->rcode, dsn, text);
		k = 1;
		break;
	}
	s->dot_replies++;
	if (s->lmtp && k && s->dot_replies < s->naccepted)
		return;
	dlv_finish(s);
	sess_next(s);
}

/* ---- session set-up ---------------------------------------------------- */

static void
send_ehlo(struct relay_sess *s)
{
	s->caps = 0;
	s->size_max = 0;
	relay_host->conn_printf(s->c, "%s %s\r\n", s->lmtp ? "LHLO" : "EHLO",
	                        relay_cfg.hostname);
}

/* One line of an EHLO reply (after the first). */
static void
ehlo_keyword(struct relay_sess *s, const char *kw)
{
	const char *arg = strchr(kw, ' ');
	size_t klen = arg != NULL ? (size_t)(arg - kw) : strlen(kw);
	char *end;

#define IS(x) (klen == sizeof(x) - 1 && strncasecmp(kw, x, klen) == 0)
	if (IS("PIPELINING"))
		s->caps |= CAP_PIPELINING;
	else if (IS("8BITMIME"))
		s->caps |= CAP_8BITMIME;
	else if (IS("SMTPUTF8"))
		s->caps |= CAP_SMTPUTF8;
	else if (IS("CHUNKING"))
		s->caps |= CAP_CHUNKING;
	else if (IS("DSN"))
		s->caps |= CAP_DSN;
	else if (IS("STARTTLS"))
		s->caps |= CAP_STARTTLS;
	else if (IS("SIZE")) {
		s->caps |= CAP_SIZE;
		if (arg != NULL)
			s->size_max = strtoull(arg + 1, &end, 10);
	} else if (IS("AUTH") && arg != NULL) {
		const char *p = arg;
		while (p != NULL && *p != '\0') {
			p += strspn(p, " ");
			if (strncasecmp(p, "PLAIN", 5) == 0 &&
			    (p[5] == ' ' || p[5] == '\0'))
				s->caps |= CAP_AUTH_PLAIN;
			if (strncasecmp(p, "LOGIN", 5) == 0 &&
			    (p[5] == ' ' || p[5] == '\0'))
				s->caps |= CAP_AUTH_LOGIN;
			p = strchr(p, ' ');
		}
	}
#undef IS
}

static void
auth_start(struct relay_sess *s, const struct relay_auth *a)
{
	unsigned char raw[1024];
	char enc[1400];
	size_t ul = strlen(a->user), pl = strlen(a->password);

	s->phase = P_AUTH;
	if ((s->caps & CAP_AUTH_PLAIN) && ul + pl + 2 <= sizeof(raw)) {
		raw[0] = '\0';
		memcpy(raw + 1, a->user, ul);
		raw[ul + 1] = '\0';
		memcpy(raw + ul + 2, a->password, pl);
		b64(raw, ul + pl + 2, enc);
		relay_host->conn_printf(s->c, "AUTH PLAIN %s\r\n", enc);
		return;
	}
	s->phase = P_AUTH_USER;
	relay_host->conn_printf(s->c, "AUTH LOGIN\r\n");
}

/* EHLO (or HELO) went well: STARTTLS, AUTH or the first transaction. */
static void
setup_next(struct relay_sess *s)
{
	const struct relay_route *rt = s->dest->route;
	const struct relay_auth *a;
	char text[TEXT_MAX];

	if (s->phase != P_EHLO_TLS && !relay_host->conn_tls_active(s->c) &&
	    rt->tls != RELAY_TLS_NONE) {
		if (s->caps & CAP_STARTTLS) {
			s->phase = P_STARTTLS;
			relay_host->conn_printf(s->c, "STARTTLS\r\n");
			return;
		}
		if (rt->tls == RELAY_TLS_ENCRYPT ||
		    rt->tls == RELAY_TLS_VERIFY) {
			snprintf(text, sizeof(text), "host %s does not offer "
			         "STARTTLS, which the route requires (tls = "
			         "%s)", s->name,
			         relay_tls_policy_name(rt->tls));
			sess_abort(s, 451, "4.7.4", text);
			return;
		}
	}
	if (rt->auth_file != NULL && !s->authed &&
	    (a = relay_auth_for(rt->auth_file)) != NULL) {
		if (!(s->caps & (CAP_AUTH_PLAIN | CAP_AUTH_LOGIN))) {
			snprintf(text, sizeof(text), "host %s offers no AUTH "
			         "PLAIN or LOGIN, and the route has "
			         "credentials", s->name);
			sess_abort(s, 451, "4.7.0", text);
			return;
		}
		auth_start(s, a);
		return;
	}
	sess_next(s);
}

/* A complete reply in a set-up phase. */
static void
setup_reply(struct relay_sess *s)
{
	const struct relay_route *rt = s->dest->route;
	const struct relay_auth *a;
	char enc[1400];
	int tls_needed;

	switch (s->phase) {
	case P_GREETING:
		s->greeted = 1;
		if (s->rcode != 220) {
			sess_reply_fail(s, "greeting");
			return;
		}
		s->phase = P_EHLO;
		send_ehlo(s);
		return;
	case P_EHLO:
	case P_EHLO_TLS:
		if (s->rcode / 100 == 2) {
			setup_next(s);
			return;
		}
		if (s->phase == P_EHLO && !s->lmtp && s->rcode / 100 == 5) {
			s->phase = P_HELO;
			relay_host->conn_printf(s->c, "HELO %s\r\n",
			                        relay_cfg.hostname);
			return;
		}
		sess_reply_fail(s, s->lmtp ? "LHLO" : "EHLO");
		return;
	case P_HELO:
		if (s->rcode / 100 != 2) {
			sess_reply_fail(s, "HELO");
			return;
		}
		s->caps = 0;
		setup_next(s);
		return;
	case P_STARTTLS:
		tls_needed = rt->tls == RELAY_TLS_ENCRYPT ||
		             rt->tls == RELAY_TLS_VERIFY;
		if (s->rcode != 220) {
			if (tls_needed) {
				sess_reply_fail(s, "STARTTLS");
				return;
			}
			s->phase = P_EHLO_TLS; /* may: go on in clear */
			setup_next(s);
			return;
		}
		if (relay_host->conn_starttls_client(s->c, relay_tls_client,
		        rt->tls == RELAY_TLS_VERIFY
		            ? s->cands[s->icand - 1].host : NULL) !=
		    POSTERN_OK) {
			sess_abort(s, 451, "4.7.5", "cannot start TLS");
			return;
		}
		s->phase = P_EHLO_TLS;
		send_ehlo(s);
		return;
	case P_AUTH:
		if (s->rcode != 235) {
			sess_reply_fail(s, "AUTH");
			return;
		}
		s->authed = 1;
		sess_next(s);
		return;
	case P_AUTH_USER:
	case P_AUTH_PASS:
		/* AUTH LOGIN: "Username:", then "Password:" prompts. */
		a = relay_auth_for(rt->auth_file);
		if (s->rcode != 334 || a == NULL) {
			sess_reply_fail(s, "AUTH LOGIN");
			return;
		}
		if (s->phase == P_AUTH_USER) {
			b64((const unsigned char *)a->user, strlen(a->user),
			    enc);
			s->phase = P_AUTH_PASS;
		} else {
			b64((const unsigned char *)a->password,
			    strlen(a->password), enc);
			s->phase = P_AUTH;
		}
		relay_host->conn_printf(s->c, "%s\r\n", enc);
		return;
	default:
		return;
	}
}

/* ---- reading replies --------------------------------------------------- */

static void
reply_complete(struct relay_sess *s)
{
	switch (s->phase) {
	case P_TXN:
		if (s->rcode == 421) {
			sess_reply_fail(s, "transaction");
			return;
		}
		txn_reply(s);
		return;
	case P_DOT:
		dot_reply(s);
		return;
	case P_RSET:
		if (s->rcode / 100 != 2) {
			sess_quit(s);
			return;
		}
		sess_next(s);
		return;
	case P_BDAT:
		bdat_reply(s);
		return;
	case P_BODY:
		/* A reply before the end of data: the peer gave up. */
		sess_reply_fail(s, "while sending the message");
		return;
	case P_CONVERT:
		/* Unasked for (a 421 timeout): it is closing. */
		sess_reply_fail(s, "while the message was converted");
		return;
	case P_IDLE:
		/* 421 while idle: it is closing; let it. */
		sess_quit(s);
		return;
	case P_QUIT:
		return;
	default:
		setup_reply(s);
		return;
	}
}

/* Adds one reply line; 1 when the reply is complete, -1 if malformed. */
static int
reply_line_add(struct relay_sess *s, const char *p, size_t len)
{
	char kw[256];
	int code;
	size_t n;

	if (len < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || (len > 3 && p[3] != ' ' &&
	                                 p[3] != '-'))
		return -1;
	code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (!s->in_reply) {
		s->rcode = code;
		s->rlen = 0;
		s->rtext[0] = '\0';
		s->nlines = 0;
		s->in_reply = 1;
	} else if (code != s->rcode) {
		return -1;
	}
	/* EHLO keywords are on the lines after the first. */
	if ((s->phase == P_EHLO || s->phase == P_EHLO_TLS) && s->nlines > 0 &&
	    len > 4) {
		n = len - 4 < sizeof(kw) - 1 ? len - 4 : sizeof(kw) - 1;
		memcpy(kw, p + 4, n);
		kw[n] = '\0';
		ehlo_keyword(s, kw);
	}
	s->nlines++;
	if (len > 4 && s->rlen < REPLY_TEXT_MAX) {
		n = len - 4;
		if (s->rlen > 0)
			s->rtext[s->rlen++] = ' ';
		if (n > REPLY_TEXT_MAX - s->rlen)
			n = REPLY_TEXT_MAX - s->rlen;
		memcpy(s->rtext + s->rlen, p + 4, n);
		s->rlen += n;
		s->rtext[s->rlen] = '\0';
	}
	if (len > 3 && p[3] == '-')
		return 0;
	s->in_reply = 0;
	return 1;
}

static void
on_read(postern_conn_t *c, void *arg)
{
	struct relay_sess *s = arg;
	struct postern_line line;
	char text[TEXT_MAX];
	int r;

	for (;;) {
		r = relay_host->conn_read_line(c, REPLY_LINE_MAX, &line);
		if (r == POSTERN_AGAIN || r == POSTERN_CLOSED)
			return;
		if (r == POSTERN_TOOLONG ||
		    (r = reply_line_add(s, line.data, line.len)) < 0) {
			snprintf(text, sizeof(text), "host %s sent a malformed "
			         "reply %s", s->name, phase_names[s->phase]);
			relay_host->log(relay_self, POSTERN_LOG_NOTICE, "%s",
			                text);
			sess_abort(s, 451, "4.5.0", text);
			return;
		}
		if (r == 1)
			reply_complete(s);
		if (s->phase == P_QUIT)
			return;
	}
}

static const struct postern_conn_ops client_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = on_read,
	.on_close = on_close,
	.on_timeout = on_timeout,
	.on_shutdown = on_shutdown,
};

/* ---- scheduling -------------------------------------------------------- */

/* The session is free: the next delivery, or idle until reuse_timeout. */
static void
sess_next(struct relay_sess *s)
{
	struct relay_dlv *d;

	if (relay_host->stopping() ||
	    (relay_cfg.max_messages_per_connection > 0 &&
	     s->msgs >= (unsigned)relay_cfg.max_messages_per_connection)) {
		sess_quit(s);
		return;
	}
	/* The delivery the session was opened for goes first. */
	if ((d = s->dlv) != NULL || (d = relay_dest_next(s->dest)) != NULL) {
		txn_start(s, d);
		return;
	}
	s->phase = P_IDLE;
	relay_host->conn_set_idle(s->c, (unsigned)relay_cfg.reuse_timeout);
	TAILQ_INSERT_TAIL(&s->dest->idle, s, link);
	s->on_idle = 1;
}

void
relay_client_give(struct relay_sess *s, struct relay_dlv *d)
{
	TAILQ_REMOVE(&s->dest->idle, s, link);
	s->on_idle = 0;
	txn_start(s, d);
}

void
relay_client_close_idle(struct relay_dest *dest)
{
	struct relay_sess *s;

	while ((s = TAILQ_FIRST(&dest->idle)) != NULL) {
		TAILQ_REMOVE(&dest->idle, s, link);
		s->on_idle = 0;
		sess_quit(s);
	}
}

/* ---- finding and connecting to the next hop ---------------------------- */

/* The session could not start: it fails from the loop, so the scheduler
 * is never re-entered from relay_client_start. */
struct start_fail {
	struct relay_sess *s;
	int code;
	char dsn[16];
	char text[TEXT_MAX];
};

static void
start_failed(void *arg)
{
	struct start_fail *f = arg;

	sess_fail(f->s, f->code, f->dsn, f->text);
	sess_free(f->s);
	free(f);
}

static void
sess_cannot_start(struct relay_sess *s, int code, const char *dsn,
                  const char *text)
{
	struct start_fail *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		abort();
	f->s = s;
	f->code = code;
	snprintf(f->dsn, sizeof(f->dsn), "%s", dsn);
	snprintf(f->text, sizeof(f->text), "%s", text);
	relay_host->defer(start_failed, f);
}

/* Connects to the next candidate address; 0, or -1 when none is left
 * (s->err says why the last one failed). */
static int
connect_next(struct relay_sess *s)
{
	struct postern_connect_spec spec = { .size = sizeof(spec) };
	struct relay_cand *c;

	while (s->icand < s->ncands) {
		c = &s->cands[s->icand++];
		if (c->addr[0] == '/')
			snprintf(s->name, sizeof(s->name), "%s", c->addr);
		else
			snprintf(s->name, sizeof(s->name), "%s[%s]:%u",
			         c->host, c->addr, c->port);
		spec.name = "relay";
		spec.address = c->addr;
		spec.port = c->port;
		spec.connect_ms = (unsigned)relay_cfg.connect_timeout;
		spec.limits.size = sizeof(spec.limits);
		spec.limits.idle_ms = (unsigned)relay_cfg.command_timeout;
		spec.ops = &client_ops;
		spec.arg = s;
		s->phase = P_GREETING;
		s->c = relay_host->conn_connect(relay_self, &spec, s->err,
		                                sizeof(s->err));
		if (s->c != NULL)
			return 0;
	}
	return -1;
}

static void
start_connecting(struct relay_sess *s)
{
	char text[TEXT_MAX];

	if (connect_next(s) == 0)
		return;
	snprintf(text, sizeof(text), "%s", s->err[0] != '\0' ? s->err
	         : "no address to connect to");
	sess_cannot_start(s, 451, "4.4.1", text);
}

static void
cand_add(struct relay_sess *s, const char *host,
         const struct sockaddr_storage *ss, unsigned port)
{
	struct relay_cand *c;
	const void *a;

	if (s->ncands == RELAY_MAX_CANDS)
		return;
	c = &s->cands[s->ncands];
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	if (ss == NULL) {
		snprintf(c->addr, sizeof(c->addr), "%s", host);
	} else {
		a = ss->ss_family == AF_INET6
		        ? (const void *)&((const struct sockaddr_in6 *)ss)
		                             ->sin6_addr
		        : (const void *)&((const struct sockaddr_in *)ss)
		                             ->sin_addr;
		if (inet_ntop(ss->ss_family, a, c->addr, sizeof(c->addr)) ==
		    NULL)
			return;
	}
	s->ncands++;
}

/* A DNS answer that ends the attempt: permanent ones fail the
 * recipients (null MX, no such domain), the rest defer. */
static void
dns_failed(struct relay_sess *s, enum postern_dns_status st, const char *err,
           int recipient_domain)
{
	char text[TEXT_MAX];

	snprintf(text, sizeof(text), "%s", err != NULL ? err : "DNS lookup "
	         "failed");
	switch (st) {
	case POSTERN_DNS_NULL_MX:
		snprintf(text, sizeof(text), "domain %s accepts no mail "
		         "(null MX, RFC 7505)", s->dest->domain);
		sess_cannot_start(s, 556, "5.1.10", text);
		return;
	case POSTERN_DNS_NXDOMAIN:
		sess_cannot_start(s, 550, recipient_domain ? "5.1.2" : "5.4.4",
		                  text);
		return;
	case POSTERN_DNS_NODATA:
		sess_cannot_start(s, 550, "5.4.4", text);
		return;
	default:
		sess_cannot_start(s, 451, "4.4.3", text);
		return;
	}
}

static void addr_next(struct relay_sess *s);

static void
addr_done(const struct postern_dns_result *r, void *arg)
{
	struct relay_sess *s = arg;
	size_t i;

	s->q = NULL;
	if (r->status == POSTERN_DNS_OK) {
		for (i = 0; i < r->nrecords; i++)
			cand_add(s, r->name, &r->records[i]->addr, s->port);
	} else if (s->ncands == 0 && s->imx + 1 >= s->nmx) {
		/* The last host to look up, and nothing found. */
		dns_failed(s, r->status, r->error, 0);
		return;
	} else {
		snprintf(s->err, sizeof(s->err), "%s", r->error);
	}
	s->imx++;
	addr_next(s);
}

/* Looks up the addresses of the next MX host, or connects when every
 * host is looked up (or there are addresses enough). */
static void
addr_next(struct relay_sess *s)
{
	if (s->imx < s->nmx && s->ncands < RELAY_MAX_CANDS) {
		s->q = relay_host->dns_addr(relay_self, s->mx[s->imx],
		                            s->port, addr_done, s);
		if (s->q == NULL)
			sess_cannot_start(s, 451, "4.4.3", "no DNS resolver");
		return;
	}
	start_connecting(s);
}

static void
mx_done(const struct postern_dns_result *r, void *arg)
{
	struct relay_sess *s = arg;
	size_t i;

	s->q = NULL;
	if (r->status == POSTERN_DNS_NODATA) {
		/* The name exists without MX: the domain itself is the one
		 * host (RFC 5321 section 5.1's implicit MX). */
		snprintf(s->mx[0], sizeof(s->mx[0]), "%s", r->name);
		s->nmx = 1;
		addr_next(s);
		return;
	}
	if (r->status != POSTERN_DNS_OK) {
		dns_failed(s, r->status, r->error,
		           s->dest->route->via.kind == RELAY_VIA_MX);
		return;
	}
	for (i = 0; i < r->nrecords && s->nmx < RELAY_MAX_MX; i++)
		snprintf(s->mx[s->nmx++], sizeof(s->mx[0]), "%s",
		         r->records[i]->name);
	addr_next(s);
}

void
relay_client_start(struct relay_dest *dest, struct relay_dlv *first)
{
	const struct relay_via *via = &dest->route->via;
	struct relay_sess *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort(); /* as every allocation in posternd */
	s->dest = dest;
	s->dlv = first;
	s->conv_fd = -1;
	s->lmtp = via->kind == RELAY_VIA_LMTP ||
	          via->kind == RELAY_VIA_LMTP_UNIX;
	dest->nsess++;
	s->port = via->kind == RELAY_VIA_MX ? 25 : via->port;
	snprintf(s->name, sizeof(s->name), "%s",
	         via->kind == RELAY_VIA_MX ? dest->domain : via->host);
	if (via->kind == RELAY_VIA_LMTP_UNIX || via->is_ip) {
		cand_add(s, via->host, NULL, s->port);
		start_connecting(s);
	} else if (via->kind == RELAY_VIA_MX ||
	           (via->kind == RELAY_VIA_SMTP && !via->literal)) {
		s->q = relay_host->dns_lookup(relay_self,
		                              via->kind == RELAY_VIA_MX ?
		                              dest->domain : via->host,
		                              POSTERN_DNS_MX, mx_done, s);
		if (s->q == NULL)
			sess_cannot_start(s, 451, "4.4.3", "no DNS resolver");
	} else {
		snprintf(s->mx[0], sizeof(s->mx[0]), "%s", via->host);
		s->nmx = 1;
		addr_next(s);
	}
}
