/*
 * dotstuff.h - a message as an SMTP DATA body or a POP3 multi-line
 * response (RFC 5321 section 4.5.2, RFC 1939 section 3), chunk by chunk:
 * a '.' added before every line that starts with '.', every bare LF sent
 * as CR LF, the header and only `lines` body lines for POP3 TOP, a CRLF
 * added when the message does not end with one, and the closing ".\r\n".
 *
 * The message arrives in chunks of any size (a line, its leading '.', a
 * CR LF pair may span two chunks), so the filter keeps its place between
 * calls.  Pure code, any thread: the stream (stream.c) drives it, the
 * unit tests and the fuzz harness drive it directly.
 */
#ifndef CORE_DOTSTUFF_H
#define CORE_DOTSTUFF_H

#include <stddef.h>
#include <stdint.h>

struct dotstuff {
	int at_line_start;    /* the next octet begins a line */
	uint64_t line_octets; /* of the current line so far, LF excluded */
	int last_cr;          /* the last octet was a CR */
	int in_body;          /* the empty line after the header has passed */
	int top;              /* TOP: stop after `body_lines` body lines */
	uint32_t body_lines;
	int done;             /* TOP has all it wants: ignore the rest */
};

/* The whole message (top 0), or the header and `lines` body lines. */
void dotstuff_init(struct dotstuff *d, int top, uint32_t lines);

/* The most octets dotstuff_feed writes for `len` input octets: a '.' at
 * a line start and a bare LF each become two. */
#define DOTSTUFF_OUT_MAX(len) (2 * (len))

/* Filters `len` octets into `out` (room for DOTSTUFF_OUT_MAX(len));
 * returns the octets written.  Once d->done is set (TOP), the rest of
 * the message is not needed. */
size_t dotstuff_feed(struct dotstuff *d, const char *in, size_t len,
                     char *out);

/* The end: what the last line lacked of its CRLF, then ".\r\n", into
 * `out` (room for DOTSTUFF_TAIL_MAX octets); returns the count. */
#define DOTSTUFF_TAIL_MAX 5
size_t dotstuff_finish(struct dotstuff *d, char *out);

#endif /* CORE_DOTSTUFF_H */
