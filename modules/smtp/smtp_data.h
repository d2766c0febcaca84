/*
 * smtp_data.h - the message reader: the state machine that turns what a
 * client sends after DATA (dot-terminated, dot-stuffed) or in BDAT chunks
 * (counted, RFC 3030) into the message's octets.  Pure: no host, no I/O;
 * the caller feeds bytes as they arrive, in pieces of any size, and gets
 * the cleaned content through a callback.
 *
 * What it enforces (RFC 5321 sections 2.3.8, 4.1.1.4, 4.5.2, 4.5.3.1.6):
 *   - DATA ends only on CRLF "." CRLF, where the first CRLF is a real one:
 *     "\n.\n", "\r.\r", "\n.\r\n" and friends never end a message (the
 *     SMTP smuggling class, CVE-2023-51764 and siblings);
 *   - a leading "." on a line is removed (dot-unstuffing);
 *   - a bare LF or a bare CR is an error (flagged) or, when normalising,
 *     becomes CRLF; either way it never ends the data;
 *   - a NUL byte is an error;
 *   - a line longer than `max_line` octets with its CRLF is an error.
 * Errors do not stop the reader: the caller reads to the end of the data
 * and then rejects the message, so the session stays in step.
 *
 * It also finds where the header section ends (the first empty line), for
 * the header filter stages.
 */
#ifndef SMTP_DATA_H
#define SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Error flags (smtp_data.errors). */
#define SMTP_DATA_ERR_BARE_LF 0x1u
#define SMTP_DATA_ERR_BARE_CR 0x2u
#define SMTP_DATA_ERR_NUL 0x4u
#define SMTP_DATA_ERR_LONG_LINE 0x8u

enum smtp_data_mode {
	SMTP_DATA_DOT,   /* after DATA: ends at CRLF.CRLF, dot-stuffed */
	SMTP_DATA_CHUNK, /* BDAT: raw octets, the caller counts them */
};

/* Receives cleaned content: `len` > 0 octets. */
typedef void (*smtp_data_emit_fn)(void *arg, const char *data, size_t len);

struct smtp_data {
	/* settings */
	enum smtp_data_mode mode;
	int normalise;      /* bare LF/CR become CRLF instead of errors */
	size_t max_line;    /* octets per line with CRLF */
	/* state */
	int state;
	int weak;           /* the line began after a bare LF/CR */
	size_t line_len;    /* octets of the current line so far */
	unsigned errors;    /* SMTP_DATA_ERR_* */
	int done;           /* DOT: the end marker was seen */
	int in_header;      /* still in the header section */
	uint64_t out_len;   /* octets emitted */
	uint64_t header_len; /* octets of the header section incl. the empty
	                        line (valid once in_header is 0) */
	/* output batching */
	smtp_data_emit_fn emit;
	void *emit_arg;
	char buf[4096];
	size_t buf_len;
};

void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode,
                    int normalise, size_t max_line, smtp_data_emit_fn emit,
                    void *arg);

/* Switches a finished or fresh reader to another mode (BDAT after BDAT
 * keeps its line state). */
void smtp_data_set_mode(struct smtp_data *d, enum smtp_data_mode mode);

/* Feeds `len` octets.  Returns how many were consumed: all of them,
 * except in DOT mode once the end marker is seen (d->done set; what
 * follows is the next command).  Output is emitted before it returns. */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len);

/* Ends the message (after BDAT LAST): a CR still pending is a bare CR,
 * and a last line without CRLF gets one, so every stored message ends
 * with CRLF.  Output is emitted before it returns. */
void smtp_data_finish(struct smtp_data *d);

/* Text for the first error set in `errors`, for a reply. */
const char *smtp_data_error_text(unsigned errors);

#endif /* SMTP_DATA_H */
