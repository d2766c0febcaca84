/*
 * pop3_stuff.c - byte-stuffing and TOP's line counting, chunk by chunk.
 *
 * Whole lines are copied with memcpy; only line starts and line ends are
 * looked at one octet at a time, so a large message costs about a memchr
 * and a memcpy per line.
 */
#include <string.h>

#include "pop3_stuff.h"

void
pop3_stuffer_init(struct pop3_stuffer *st, int top, uint32_t lines)
{
	memset(st, 0, sizeof(*st));
	st->at_line_start = 1;
	st->top = top;
	st->body_lines = lines;
}

/* A line ended (its LF was just written); `empty` when it held nothing
 * but its terminator. */
static void
end_of_line(struct pop3_stuffer *st, int empty)
{
	if (!st->in_body) {
		if (empty) {
			st->in_body = 1;
			if (st->top && st->body_lines == 0)
				st->done = 1;
		}
	} else if (st->top && --st->body_lines == 0)
		st->done = 1;
	st->at_line_start = 1;
	st->line_octets = 0;
	st->last_cr = 0;
}

size_t
pop3_stuff(struct pop3_stuffer *st, const char *in, size_t len, char *out)
{
	const char *p = in, *end = in + len, *lf;
	size_t n, w = 0;
	uint64_t before_lf;

	while (p < end && !st->done) {
		if (st->at_line_start && *p == '.')
			out[w++] = '.';
		st->at_line_start = 0;
		lf = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((lf != NULL ? lf + 1 : end) - p);
		memcpy(out + w, p, n);
		w += n;
		if (lf == NULL) {
			st->line_octets += n;
			st->last_cr = p[n - 1] == '\r';
			p += n;
			continue;
		}
		/* The line is empty when only a CR (or nothing) came before
		 * its LF, in this chunk or the ones before. */
		before_lf = st->line_octets + n - 1;
		if (n >= 2)
			st->last_cr = p[n - 2] == '\r';
		p += n;
		end_of_line(st, before_lf == 0 || (before_lf == 1 &&
		                                   st->last_cr));
	}
	return w;
}

size_t
pop3_stuff_finish(struct pop3_stuffer *st, char *out)
{
	size_t w = 0;

	if (!st->at_line_start) {
		out[w++] = '\r';
		out[w++] = '\n';
	}
	memcpy(out + w, ".\r\n", 3);
	st->at_line_start = 1;
	return w + 3;
}
