/*
 * smtp_data.c - the message reader state machine (see smtp_data.h).
 *
 * States, for one byte at a time:
 *   BOL       at the start of a line that followed a real CRLF (or the
 *             DATA command itself): "." here may start the end marker
 *   BOL_WEAK  at the start of a line that followed a bare LF or CR: a
 *             "." is unstuffed as usual, but can never end the data
 *   DOT       BOL then "."
 *   DOT_CR    BOL then ".\r"
 *   TEXT      inside a line
 *   CR        a CR was seen in a line (or at its start); LF completes it
 */
#include "smtp_data.h"

#include <string.h>

enum {
	ST_BOL = 0,
	ST_BOL_WEAK,
	ST_DOT,
	ST_DOT_CR,
	ST_TEXT,
	ST_CR,
};

static void
flush(struct smtp_data *d)
{
	if (d->buf_len > 0) {
		d->emit(d->emit_arg, d->buf, d->buf_len);
		d->buf_len = 0;
	}
}

static void
put(struct smtp_data *d, char c)
{
	if (d->buf_len == sizeof(d->buf))
		flush(d);
	d->buf[d->buf_len++] = c;
	d->out_len++;
}

void
smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode, int normalise,
               size_t max_line, smtp_data_emit_fn emit, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->normalise = normalise;
	d->max_line = max_line;
	d->state = ST_BOL;
	d->in_header = 1;
	d->emit = emit;
	d->emit_arg = arg;
}

void
smtp_data_set_mode(struct smtp_data *d, enum smtp_data_mode mode)
{
	d->mode = mode;
}

/* A line ends (after its terminator was emitted); a bare LF or CR makes
 * a "weak" line start, where a "." cannot begin the end marker. */
static void
end_line(struct smtp_data *d, int strong)
{
	/* The first empty line closes the header section. */
	if (d->in_header && d->line_len == 0) {
		d->in_header = 0;
		d->header_len = d->out_len;
	}
	d->line_len = 0;
	d->weak = !strong;
	d->state = ST_BOL;
}

/* The current line got one more input octet. */
static void
count(struct smtp_data *d)
{
	/* max_line includes the CRLF. */
	if (++d->line_len + 2 > d->max_line)
		d->errors |= SMTP_DATA_ERR_LONG_LINE;
}

/* A bare LF or CR ended a line.  Normalising writes CRLF; otherwise the
 * octet is kept as it came (the message will be refused anyway). */
static void
bare_newline(struct smtp_data *d, char c)
{
	if (d->normalise) {
		put(d, '\r');
		put(d, '\n');
	} else {
		d->errors |= c == '\n' ? SMTP_DATA_ERR_BARE_LF
		                       : SMTP_DATA_ERR_BARE_CR;
		put(d, c);
	}
	end_line(d, 0);
}

/* One octet inside a line (or starting one that does not begin with a
 * dot). */
static void
text_byte(struct smtp_data *d, char c)
{
	if (c == '\r') {
		d->state = ST_CR;
		return;
	}
	if (c == '\n') {
		bare_newline(d, '\n');
		return;
	}
	if (c == '\0')
		d->errors |= SMTP_DATA_ERR_NUL;
	count(d);
	put(d, c);
	d->state = ST_TEXT;
}

static void
step(struct smtp_data *d, char c)
{
	switch (d->state) {
	case ST_BOL:
		if (d->mode == SMTP_DATA_DOT && c == '.') {
			count(d);
			d->state = ST_DOT;
			return;
		}
		text_byte(d, c);
		return;
	case ST_DOT:
		if (c == '\r') {
			d->state = ST_DOT_CR;
			return;
		}
		if (c == '\n') {
			/* "." alone before a bare LF: content, kept. */
			put(d, '.');
			bare_newline(d, '\n');
			return;
		}
		/* A stuffed dot: removed (RFC 5321 section 4.5.2). */
		d->state = ST_TEXT;
		text_byte(d, c);
		return;
	case ST_DOT_CR:
		if (c == '\n') {
			if (!d->weak) {
				d->done = 1;
				return;
			}
			/* "." after a bare newline is content, never the
			 * end: the smuggling case. */
			put(d, '.');
			put(d, '\r');
			put(d, '\n');
			end_line(d, 1);
			return;
		}
		put(d, '.');
		bare_newline(d, '\r');
		step(d, c);
		return;
	case ST_CR:
		if (c == '\n') {
			put(d, '\r');
			put(d, '\n');
			end_line(d, 1);
			return;
		}
		bare_newline(d, '\r');
		step(d, c);
		return;
	default:
		text_byte(d, c);
		return;
	}
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len)
{
	size_t i;

	for (i = 0; i < len && !d->done; i++)
		step(d, in[i]);
	flush(d);
	return i;
}

void
smtp_data_finish(struct smtp_data *d)
{
	if (d->state == ST_CR)
		bare_newline(d, '\r');
	else if (d->state != ST_BOL) {
		/* A last line without its CRLF (BDAT allows it): end it. */
		if (d->state == ST_DOT || d->state == ST_DOT_CR)
			put(d, '.');
		put(d, '\r');
		put(d, '\n');
		end_line(d, 1);
	}
	flush(d);
}

const char *
smtp_data_error_text(unsigned errors)
{
	if (errors & SMTP_DATA_ERR_NUL)
		return "message contains a NUL byte";
	if (errors & SMTP_DATA_ERR_BARE_LF)
		return "bare LF in message; lines must end with CRLF";
	if (errors & SMTP_DATA_ERR_BARE_CR)
		return "bare CR in message; lines must end with CRLF";
	if (errors & SMTP_DATA_ERR_LONG_LINE)
		return "message line longer than allowed";
	return "message refused";
}
