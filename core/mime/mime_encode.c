/*
 * mime_encode.c - the streaming body encoder of postern/mime.h
 * (host->mime_encoder_*): base64 in lines of 76 characters (RFC 2045
 * 6.8), for whoever must give a body a transfer encoding (the relay's
 * 8BITMIME downgrade, IMAP's APPEND of binary parts).  Lines are
 * separated by CRLF; the last one ends without it, as the caller knows
 * whether a boundary's CRLF or the end of the message follows.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

#define B64_IN_LINE 57           /* octets of a 76-character line */

struct postern_mime_encoder {
	postern_mime_out_fn out;
	void *arg;
	unsigned char in[B64_IN_LINE];
	size_t nin;
	int lines;                   /* lines sent so far */
};

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

postern_mime_encoder_t *
mime_encoder_create(const char *encoding, postern_mime_out_fn out, void *arg)
{
	postern_mime_encoder_t *e;

	if (encoding == NULL || strcasecmp(encoding, "base64") != 0 ||
	    out == NULL)
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->out = out;
	e->arg = arg;
	return e;
}

/* One line of e->in[0..nin), after a CRLF when it is not the first. */
static void
encoder_line(postern_mime_encoder_t *e)
{
	char line[2 + 4 * (B64_IN_LINE / 3)];
	size_t k, n = 0;
	unsigned v;

	if (e->lines++ > 0) {
		line[n++] = '\r';
		line[n++] = '\n';
	}
	for (k = 0; k < e->nin; k += 3) {
		v = (unsigned)e->in[k] << 16;
		if (k + 1 < e->nin)
			v |= (unsigned)e->in[k + 1] << 8;
		if (k + 2 < e->nin)
			v |= e->in[k + 2];
		line[n++] = b64_alphabet[v >> 18 & 63];
		line[n++] = b64_alphabet[v >> 12 & 63];
		line[n++] = k + 1 < e->nin ? b64_alphabet[v >> 6 & 63] : '=';
		line[n++] = k + 2 < e->nin ? b64_alphabet[v & 63] : '=';
	}
	e->nin = 0;
	e->out(e->arg, line, n);
}

void
mime_encoder_feed(postern_mime_encoder_t *e, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t n;

	while (len > 0) {
		n = B64_IN_LINE - e->nin < len ? B64_IN_LINE - e->nin : len;
		memcpy(e->in + e->nin, p, n);
		e->nin += n;
		p += n;
		len -= n;
		if (e->nin == B64_IN_LINE)
			encoder_line(e);
	}
}

int
mime_encoder_finish(postern_mime_encoder_t *e)
{
	if (e->nin > 0)
		encoder_line(e);
	return e->lines > 0;
}

void
mime_encoder_free(postern_mime_encoder_t *e)
{
	free(e);
}
