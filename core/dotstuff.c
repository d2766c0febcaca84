/*
 * dotstuff.c - dot-stuffing, bare LF to CR LF, and TOP's line counting,
 * chunk by chunk (dotstuff.h).
 *
 * Whole runs up to the next LF are copied with memcpy; only line starts
 * and line ends are looked at one octet at a time, so a large message
 * costs about a memchr and a memcpy per line.
 */
#include "dotstuff.h"

#include <string.h>

void
dotstuff_init(struct dotstuff *d, int top, uint32_t lines)
{
	memset(d, 0, sizeof(*d));
	d->at_line_start = 1;
	d->top = top;
	d->body_lines = lines;
}

/* A line ended (its LF was just written); `empty` when it held nothing
 * but its terminator. */
static void
end_of_line(struct dotstuff *d, int empty)
{
	if (!d->in_body) {
		if (empty) {
			d->in_body = 1;
			if (d->top && d->body_lines == 0)
				d->done = 1;
		}
	} else if (d->top && --d->body_lines == 0) {
		d->done = 1;
	}
	d->at_line_start = 1;
	d->line_octets = 0;
	d->last_cr = 0;
}

size_t
dotstuff_feed(struct dotstuff *d, const char *in, size_t len, char *out)
{
	const char *p = in, *end = in + len, *lf;
	size_t n, w = 0;

	while (p < end && !d->done) {
		if (d->at_line_start && *p == '.')
			out[w++] = '.';
		d->at_line_start = 0;
		lf = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((lf != NULL ? lf : end) - p);
		if (n > 0) {
			memcpy(out + w, p, n);
			w += n;
			d->line_octets += n;
			d->last_cr = p[n - 1] == '\r';
			p += n;
		}
		if (lf == NULL)
			break;
		/* A bare LF goes out as CR LF: the peer sees one kind of
		 * line end only. */
		if (!d->last_cr)
			out[w++] = '\r';
		out[w++] = '\n';
		p++;
		/* Empty: nothing, or only the CR of its CRLF, before LF. */
		end_of_line(d, d->line_octets == 0 ||
		                   (d->line_octets == 1 && d->last_cr));
	}
	return w;
}

size_t
dotstuff_finish(struct dotstuff *d, char *out)
{
	size_t w = 0;

	if (!d->at_line_start) {
		if (!d->last_cr)
			out[w++] = '\r';
		out[w++] = '\n';
	}
	memcpy(out + w, ".\r\n", 3);
	d->at_line_start = 1;
	d->last_cr = 0;
	d->line_octets = 0;
	return w + 3;
}
