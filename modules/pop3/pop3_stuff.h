/*
 * pop3_stuff.h - a message as a POP3 multi-line response (RFC 1939
 * section 3): a '.' added before every line that starts with '.', the
 * header and only `n` body lines for TOP, a CRLF added when the message
 * does not end with one, and the terminating ".\r\n".
 *
 * The message arrives in chunks of any size (a line, even its leading
 * '.', may span two chunks), so the filter keeps its place between calls.
 * Pure code: the unit tests and the fuzz harness drive it directly.
 */
#ifndef POP3_STUFF_H
#define POP3_STUFF_H

#include <stddef.h>
#include <stdint.h>

struct pop3_stuffer {
	int at_line_start; /* the next octet begins a line */
	uint64_t line_octets; /* of the current line so far */
	int last_cr;       /* its last octet so far was a CR */
	int in_body;       /* the empty line after the header has passed */
	int top;           /* TOP: stop after `body_lines` body lines */
	uint32_t body_lines;
	int done;          /* TOP has all it wants: ignore the rest */
};

/* RETR: the whole message.  TOP: the header and `lines` body lines. */
void pop3_stuffer_init(struct pop3_stuffer *st, int top, uint32_t lines);

/* The most octets pop3_stuff writes for `len` input octets. */
#define POP3_STUFF_OUT_MAX(len) (2 * (len))

/* Filters `len` octets of the message into `out` (room for
 * POP3_STUFF_OUT_MAX(len)); returns the octets written.  Once st->done is
 * set (TOP), the rest of the message is not needed. */
size_t pop3_stuff(struct pop3_stuffer *st, const char *in, size_t len,
                  char *out);

/* The end of the response: CRLF when the last line lacked one, then
 * ".\r\n".  `out` has room for POP3_STUFF_TAIL_MAX octets. */
#define POP3_STUFF_TAIL_MAX 5
size_t pop3_stuff_finish(struct pop3_stuffer *st, char *out);

#endif /* POP3_STUFF_H */
