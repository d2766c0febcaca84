/*
 * mime_decode.c - turning encoded text into UTF-8: the content transfer
 * encodings (base64, quoted-printable; RFC 2045 6.7, 6.8), RFC 2047
 * encoded words in header values, and charsets through iconv.
 *
 * Everything streams through small fixed buffers: a decoder is a chain
 * transfer decoding -> charset conversion -> the caller's callback, so a
 * body of any size is decoded in constant memory.  Charset names iconv
 * does not know pass the octets through unchanged (a search then still
 * finds ASCII text), and invalid sequences become U+FFFD.
 *
 * The strings returned (mime_to_utf8, mime_decode_words) are built in
 * a heap buffer at most a few times the input, then copied into the
 * caller's pool through pool_try_alloc: NULL when that pool's budget is
 * spent or memory is short, never an abort.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "mime.h"
#include "pool.h"
#include "xalloc.h"

#define CONV_STAGE 4096   /* input octets converted per iconv pass */
#define CONV_CARRY 16     /* longest incomplete character kept */
#define QP_MAX_WS 256     /* trailing white space held back by QP */
/* Longest encoded word looked for: RFC 2047 says 75 octets, mailers
 * write longer ones. */
#define MAX_WORD 1024

static const char utf8_replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* ---- charset conversion ---------------------------------------------- */

struct conv {
	iconv_t cd;             /* (iconv_t)-1: pass through */
	postern_mime_out_fn out;
	void *arg;
	char stage[CONV_STAGE];
	size_t nstage;          /* octets held from the last pass */
};

/* Charsets that are UTF-8 already, or ASCII (whose 8-bit octets are a
 * mislabel; passing them on keeps UTF-8 text that was sent as such). */
static int
charset_is_passthrough(const char *charset)
{
	static const char *const same[] = {
		"utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968",
		"iso646-us", "us", "7bit", "8bit", "x-unknown", "unknown-8bit",
	};
	size_t i;

	if (charset == NULL || *charset == '\0')
		return 1;
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if (strcasecmp(charset, same[i]) == 0)
			return 1;
	return 0;
}

static void
conv_init(struct conv *c, const char *charset, postern_mime_out_fn out,
          void *arg)
{
	c->cd = (iconv_t)-1;
	c->out = out;
	c->arg = arg;
	c->nstage = 0;
	if (!charset_is_passthrough(charset))
		c->cd = iconv_open("UTF-8", charset);
}

static void
conv_close(struct conv *c)
{
	if (c->cd != (iconv_t)-1)
		iconv_close(c->cd);
	c->cd = (iconv_t)-1;
}

/* Converts what the stage holds; an incomplete character at its end
 * stays for the next pass unless `final`. */
static void
conv_run(struct conv *c, int final)
{
	char obuf[CONV_STAGE], *in = c->stage, *o;
	size_t inleft = c->nstage, oleft;

	while (inleft > 0) {
		o = obuf;
		oleft = sizeof(obuf);
		if (iconv(c->cd, &in, &inleft, &o, &oleft) != (size_t)-1 ||
		    errno == E2BIG) {
			c->out(c->arg, obuf, sizeof(obuf) - oleft);
			continue;
		}
		c->out(c->arg, obuf, sizeof(obuf) - oleft);
		if (errno == EINVAL && !final && inleft < CONV_CARRY)
			break;  /* the rest of the character comes later */
		/* EILSEQ, or an incomplete character at the very end */
		c->out(c->arg, utf8_replacement, 3);
		in++;
		inleft--;
		iconv(c->cd, NULL, NULL, NULL, NULL);
	}
	memmove(c->stage, in, inleft);
	c->nstage = inleft;
	if (final) {
		/* the shift sequence a stateful charset may still owe */
		o = obuf;
		oleft = sizeof(obuf);
		iconv(c->cd, NULL, NULL, &o, &oleft);
		c->out(c->arg, obuf, sizeof(obuf) - oleft);
	}
}

static void
conv_feed(struct conv *c, const char *data, size_t len)
{
	size_t take;

	if (c->cd == (iconv_t)-1) {
		if (len > 0)
			c->out(c->arg, data, len);
		return;
	}
	while (len > 0) {
		take = sizeof(c->stage) - c->nstage;
		if (take > len)
			take = len;
		memcpy(c->stage + c->nstage, data, take);
		c->nstage += take;
		data += take;
		len -= take;
		conv_run(c, 0);
	}
}

static void
conv_finish(struct conv *c)
{
	if (c->cd != (iconv_t)-1)
		conv_run(c, 1);
}

/* ---- a growable output buffer ----------------------------------------- */

struct obuf {
	char *data;
	size_t len, cap;
	int failed;     /* memory was short: the text is incomplete */
};

static void
obuf_append(void *arg, const char *data, size_t len)
{
	struct obuf *b = arg;
	size_t cap;
	char *grown;

	if (b->failed)
		return;
	if (b->cap - b->len < len + 1) {
		cap = b->cap == 0 ? 256 : b->cap;
		while (cap - b->len < len + 1 && cap <= SIZE_MAX / 2)
			cap *= 2;
		if (cap - b->len < len + 1 ||
		    (grown = realloc(b->data, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

/* Moves the buffer into `pool`, NUL-terminated, and frees it; NULL when
 * it failed or the pool's budget is spent. */
static char *
obuf_to_pool(struct obuf *b, postern_pool_t *pool, size_t *out_len)
{
	char *s = NULL;

	if (!b->failed && (s = pool_try_alloc(pool, b->len + 1)) != NULL) {
		/* zeroed: terminated; the value may hold NULs */
		if (b->len > 0)
			memcpy(s, b->data, b->len);
		if (out_len != NULL)
			*out_len = b->len;
	}
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

char *
mime_to_utf8(const char *charset, const void *data, size_t len,
             postern_pool_t *pool, size_t *out_len)
{
	struct obuf b = { NULL, 0, 0, 0 };
	struct conv *c = malloc(sizeof(*c));

	if (out_len != NULL)
		*out_len = 0;
	if (c == NULL)
		return NULL;
	conv_init(c, charset, obuf_append, &b);
	conv_feed(c, data, len);
	conv_finish(c);
	conv_close(c);
	free(c);
	return obuf_to_pool(&b, pool, out_len);
}

/* ---- base64 ------------------------------------------------------------ */

struct b64 {
	uint32_t acc;   /* sextets of the current quantum */
	int n;          /* how many (0..3) */
	int ended;      /* '=' seen: the rest is padding or garbage */
};

/* Decodes into out[] (room for len * 3 / 4 + 3); returns the count.
 * Octets outside the alphabet (line breaks, garbage) are skipped, as
 * RFC 2045 6.8 asks. */
static size_t
b64_decode(struct b64 *st, const unsigned char *in, size_t len,
           unsigned char *out)
{
	size_t i, o = 0;
	int v;

	for (i = 0; i < len && !st->ended; i++) {
		if (in[i] == '=') {
			st->ended = 1;
			break;
		}
		if ((v = b64_value(in[i])) < 0)
			continue;
		st->acc = (st->acc << 6) | (uint32_t)v;
		if (++st->n == 4) {
			out[o++] = (unsigned char)(st->acc >> 16);
			out[o++] = (unsigned char)(st->acc >> 8);
			out[o++] = (unsigned char)st->acc;
			st->acc = 0;
			st->n = 0;
		}
	}
	return o;
}

/* What a partial quantum at the end still holds. */
static size_t
b64_finish(struct b64 *st, unsigned char *out)
{
	size_t o = 0;

	if (st->n == 2) {
		out[o++] = (unsigned char)(st->acc >> 4);
	} else if (st->n == 3) {
		out[o++] = (unsigned char)(st->acc >> 10);
		out[o++] = (unsigned char)(st->acc >> 2);
	}
	st->n = 0;
	st->acc = 0;
	return o;
}

/* ---- quoted-printable ------------------------------------------------- */

static int
hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

enum qp_state {
	QP_TEXT = 0,
	QP_CR,       /* a CR: a line break if LF follows */
	QP_EQ,       /* '=' */
	QP_EQ_HEX,   /* '=' and one hex digit */
	QP_EQ_WS,    /* '=' then white space: a soft break if a line end
	                follows (RFC 2045 6.7 (3)) */
	QP_EQ_CR,    /* '=' (white space) CR: soft break */
};

struct qp {
	enum qp_state state;
	int hex;                 /* the first digit in QP_EQ_HEX */
	char ws[QP_MAX_WS];      /* white space that may be trailing */
	size_t nws;
};

struct sink {
	unsigned char *buf;
	size_t len;
};

static void
put(struct sink *s, const void *data, size_t len)
{
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

static void
qp_flush_ws(struct qp *q, struct sink *s)
{
	put(s, q->ws, q->nws);
	q->nws = 0;
}

/* Decodes one octet; out needs room for QP_MAX_WS + 3 octets. */
static void
qp_octet(struct qp *q, unsigned char ch, struct sink *s)
{
	int v;

	switch (q->state) {
	case QP_CR:
		q->state = QP_TEXT;
		if (ch == '\n') {
			q->nws = 0;     /* trailing white space goes */
			put(s, "\r\n", 2);
			return;
		}
		qp_flush_ws(q, s);
		put(s, "\r", 1);
		break;
	case QP_EQ:
		if ((v = hex_value(ch)) >= 0) {
			q->hex = v;
			q->state = QP_EQ_HEX;
		} else if (ch == '\r') {
			q->state = QP_EQ_CR;
		} else if (ch == '\n') {
			q->state = QP_TEXT;
		} else if (ch == ' ' || ch == '\t') {
			q->ws[0] = (char)ch;
			q->nws = 1;
			q->state = QP_EQ_WS;
		} else {
			put(s, "=", 1);  /* not an escape: keep it */
			q->state = QP_TEXT;
			break;
		}
		return;
	case QP_EQ_HEX:
		q->state = QP_TEXT;
		if ((v = hex_value(ch)) >= 0) {
			unsigned char octet = (unsigned char)(q->hex << 4 | v);

			put(s, &octet, 1);
			return;
		}
		put(s, "=", 1);
		put(s, &"0123456789ABCDEF"[q->hex], 1);
		break;
	case QP_EQ_WS:
		if (ch == ' ' || ch == '\t') {
			if (q->nws < sizeof(q->ws)) {
				q->ws[q->nws++] = (char)ch;
				return;
			}
		} else if (ch == '\r' || ch == '\n') {
			q->nws = 0;
			q->state = ch == '\r' ? QP_EQ_CR : QP_TEXT;
			return;
		}
		put(s, "=", 1);
		qp_flush_ws(q, s);
		q->state = QP_TEXT;
		break;
	case QP_EQ_CR:
		q->state = QP_TEXT;
		if (ch == '\n')
			return;   /* end of the soft line break */
		break;
	case QP_TEXT:
		break;
	}
	/* QP_TEXT */
	if (ch == ' ' || ch == '\t') {
		if (q->nws == sizeof(q->ws))
			qp_flush_ws(q, s);
		q->ws[q->nws++] = (char)ch;
	} else if (ch == '\r') {
		q->state = QP_CR;
	} else if (ch == '\n') {
		q->nws = 0;
		put(s, "\r\n", 2);
	} else {
		qp_flush_ws(q, s);
		if (ch == '=')
			q->state = QP_EQ;
		else
			put(s, &ch, 1);
	}
}

static void
qp_finish(struct qp *q, struct sink *s)
{
	switch (q->state) {
	case QP_EQ:
		put(s, "=", 1);
		break;
	case QP_EQ_HEX:
		put(s, "=", 1);
		put(s, &"0123456789ABCDEF"[q->hex], 1);
		break;
	case QP_CR:
		put(s, "\r", 1);
		break;
	default:
		break;
	}
	q->nws = 0;     /* white space at the end is trailing */
	q->state = QP_TEXT;
}

/* ---- the streaming body decoder --------------------------------------- */

enum transfer { TE_IDENTITY, TE_BASE64, TE_QP };

struct postern_mime_decoder {
	enum transfer te;
	struct b64 b64;
	struct qp qp;
	struct conv conv;
};

postern_mime_decoder_t *
mime_decoder_create(const char *encoding, const char *charset,
                    postern_mime_out_fn out, void *arg)
{
	postern_mime_decoder_t *d = xcalloc(1, sizeof(*d));

	d->te = TE_IDENTITY;
	if (encoding != NULL && strcasecmp(encoding, "base64") == 0)
		d->te = TE_BASE64;
	else if (encoding != NULL &&
	         strcasecmp(encoding, "quoted-printable") == 0)
		d->te = TE_QP;
	conv_init(&d->conv, charset, out, arg);
	return d;
}

void
mime_decoder_feed(postern_mime_decoder_t *d, const void *data, size_t len)
{
	const unsigned char *in = data;
	unsigned char buf[1024 + QP_MAX_WS + 4];
	struct sink s = { buf, 0 };
	size_t take;

	if (d->te == TE_IDENTITY) {
		conv_feed(&d->conv, data, len);
		return;
	}
	while (len > 0) {
		take = len < 1024 ? len : 1024;
		s.len = 0;
		if (d->te == TE_BASE64) {
			s.len = b64_decode(&d->b64, in, take, buf);
		} else {
			size_t i;

			for (i = 0; i < take; i++) {
				qp_octet(&d->qp, in[i], &s);
				if (s.len > 1024) {
					conv_feed(&d->conv, (char *)buf,
					          s.len);
					s.len = 0;
				}
			}
		}
		conv_feed(&d->conv, (char *)buf, s.len);
		in += take;
		len -= take;
	}
}

void
mime_decoder_finish(postern_mime_decoder_t *d)
{
	unsigned char buf[QP_MAX_WS + 4];
	struct sink s = { buf, 0 };

	if (d->te == TE_BASE64)
		s.len = b64_finish(&d->b64, buf);
	else if (d->te == TE_QP)
		qp_finish(&d->qp, &s);
	conv_feed(&d->conv, (char *)buf, s.len);
	conv_finish(&d->conv);
}

void
mime_decoder_free(postern_mime_decoder_t *d)
{
	if (d == NULL)
		return;
	conv_close(&d->conv);
	free(d);
}

/* ---- RFC 2047 encoded words ------------------------------------------- */

struct encoded_word {
	const char *charset;   /* points into the value; not terminated */
	size_t charset_len;
	char enc;              /* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t len;            /* of the whole word */
};

/* An encoded word at s[0..len) (which starts with "=?"), or 0. */
static int
encoded_word_parse(const char *s, size_t len, struct encoded_word *w)
{
	const char *q1, *q2, *end, *star;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	if (len > MAX_WORD)
		len = MAX_WORD;   /* bounds the scans: no quadratic time */
	if ((q1 = memchr(s + 2, '?', len - 2)) == NULL || q1 == s + 2)
		return 0;
	if ((size_t)(q1 - s) + 3 > len || q1[2] != '?')
		return 0;
	w->enc = (char)(q1[1] & ~0x20);
	if (w->enc != 'B' && w->enc != 'Q')
		return 0;
	q2 = q1 + 3;
	for (end = q2; end + 1 < s + len; end++) {
		if (end[0] == '?' && end[1] == '=')
			break;
		if (end[0] == ' ' || end[0] == '\t' || end[0] == '\r' ||
		    end[0] == '\n')
			return 0;  /* an encoded word holds no white space */
	}
	if (end + 1 >= s + len)
		return 0;
	w->charset = s + 2;
	w->charset_len = (size_t)(q1 - w->charset);
	/* RFC 2231 section 5: charset*language */
	if ((star = memchr(w->charset, '*', w->charset_len)) != NULL)
		w->charset_len = (size_t)(star - w->charset);
	w->text = q2;
	w->text_len = (size_t)(end - q2);
	w->len = (size_t)(end + 2 - s);
	return w->charset_len > 0;
}

/* The octets an encoded word's text stands for, appended to b. */
static void
encoded_word_decode(const struct encoded_word *w, struct obuf *b)
{
	unsigned char out[3];
	size_t i;
	int hi, lo;

	if (w->enc == 'B') {
		struct b64 st = { 0, 0, 0 };

		for (i = 0; i < w->text_len; i++) {
			size_t n = b64_decode(&st, (const unsigned char *)
			                      w->text + i, 1, out);

			obuf_append(b, (char *)out, n);
		}
		i = b64_finish(&st, out);
		obuf_append(b, (char *)out, i);
		return;
	}
	for (i = 0; i < w->text_len; i++) {
		char ch = w->text[i];

		if (ch == '_') {
			ch = ' ';
		} else if (ch == '=' && i + 2 < w->text_len &&
		           (hi = hex_value((unsigned char)w->text[i + 1])) >= 0 &&
		           (lo = hex_value((unsigned char)w->text[i + 2])) >= 0) {
			ch = (char)(hi << 4 | lo);
			i += 2;
		}
		obuf_append(b, &ch, 1);
	}
}

/* Converts the octets of a run of words in one charset and appends. */
static void
flush_run(struct obuf *run, const char *charset, size_t charset_len,
          struct obuf *out)
{
	char cs[64];
	struct conv *c;

	if (run->len == 0)
		return;
	if (charset_len >= sizeof(cs))
		charset_len = 0;    /* not a charset name: pass through */
	memcpy(cs, charset, charset_len);
	cs[charset_len] = '\0';
	if ((c = malloc(sizeof(*c))) == NULL) {
		out->failed = 1;
		return;
	}
	conv_init(c, cs, obuf_append, out);
	conv_feed(c, run->data, run->len);
	conv_finish(c);
	conv_close(c);
	free(c);
	run->len = 0;
}

char *
mime_decode_words(const char *value, size_t len, postern_pool_t *pool,
                  size_t *out_len)
{
	struct obuf out = { NULL, 0, 0, 0 }, run = { NULL, 0, 0, 0 };
	struct encoded_word w, prev = { NULL, 0, 0, NULL, 0, 0 };
	size_t i = 0, ws_start = 0;
	int after_word = 0;

	if (out_len != NULL)
		*out_len = 0;
	while (i < len && !out.failed && !run.failed) {
		if (value[i] == '=' && i + 1 < len && value[i + 1] == '?' &&
		    encoded_word_parse(value + i, len - i, &w)) {
			/* words of another charset end the run: a character
			 * may be split between words of the same charset */
			if (after_word && (w.charset_len != prev.charset_len ||
			    strncasecmp(w.charset, prev.charset,
			                w.charset_len) != 0))
				flush_run(&run, prev.charset,
				          prev.charset_len, &out);
			encoded_word_decode(&w, &run);
			prev = w;
			after_word = 1;
			i += w.len;
			ws_start = i;
			continue;
		}
		if (after_word && (value[i] == ' ' || value[i] == '\t' ||
		                   value[i] == '\r' || value[i] == '\n')) {
			i++;    /* white space between two words is dropped */
			continue;
		}
		if (after_word) {
			flush_run(&run, prev.charset, prev.charset_len, &out);
			obuf_append(&out, value + ws_start, i - ws_start);
			after_word = 0;
		}
		obuf_append(&out, value + i, 1);
		i++;
	}
	if (after_word) {
		flush_run(&run, prev.charset, prev.charset_len, &out);
		obuf_append(&out, value + ws_start, i - ws_start);
	}
	out.failed |= run.failed;
	free(run.data);
	return obuf_to_pool(&out, pool, out_len);
}
