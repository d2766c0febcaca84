/*
 * relay_8bit.h - 8BITMIME downgrade: a message received with 8-bit
 * content, made 7-bit for a next hop that does not offer 8BITMIME (RFC
 * 6152 section 3).
 *
 * The message is parsed with the host's MIME parser (postern/mime.h,
 * host ABI 1.3) and written out again:
 *   - a leaf part whose body holds an octet >= 128 or NUL, and whose
 *     Content-Transfer-Encoding is 7bit, 8bit, binary or absent, is
 *     re-encoded: a text part as quoted-printable (RFC 2045 6.7: lines of at
 *     most 76 characters with soft breaks, '=' and trailing white space
 *     encoded, CRLF kept as line breaks and a bare CR or LF encoded so
 *     the decoded octets are exactly the original), anything else as
 *     base64; its Content-Transfer-Encoding field is replaced;
 *   - a multipart is walked: preamble, boundary lines and epilogue are
 *     copied as they are, each body part converted;
 *   - a message/rfc822 (or message/global) part is converted
 *     recursively, and its own Content-Transfer-Encoding 8bit/binary
 *     becomes 7bit (RFC 2046 5.2.1 allows no other encoding there);
 *   - a message without MIME-Version whose body is 8-bit gains
 *     "MIME-Version: 1.0" and, without a Content-Type,
 *     "Content-Type: text/plain; charset=unknown-8bit" (RFC 1428);
 *   - every other octet is copied unchanged: a message without 8-bit
 *     octets comes out identical.
 *
 * 8-bit octets in a header (the message's or a part's) cannot be made
 * 7-bit without changing the message's meaning: RELAY_8BIT_HEADER, and
 * the relay bounces the recipient (5.6.7 is SMTPUTF8's; use 5.6.3
 * "conversion required but not supported") or looks for a hop with
 * 8BITMIME/SMTPUTF8.  The same for 8-bit octets in a part that already
 * claims quoted-printable or base64, or inside a multipart the parser
 * could not finish (a nesting or part limit): RELAY_8BIT_CANNOT.  Both
 * are found before anything is written.
 *
 * Memory.  The input is read with pread(2) in pieces of 64 KiB; the
 * parser's tree holds offsets (bounded by its part limit), never
 * bodies; output goes through the caller's sink.  Memory does not grow
 * with the message's size.
 *
 * Threads.  Blocking file I/O and CPU: call it from a job thread.  The
 * host's MIME functions are callable from any thread; no other host
 * function is used.
 */
#ifndef RELAY_8BIT_H
#define RELAY_8BIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <postern/host.h>

#include "relay_out.h"

enum relay_8bit_result {
	RELAY_8BIT_UNCHANGED = 0, /* no 8-bit octet: copied byte for byte */
	RELAY_8BIT_CONVERTED,     /* 8-bit parts re-encoded */
	RELAY_8BIT_HEADER,        /* 8-bit octets in a header: bounce */
	RELAY_8BIT_CANNOT,        /* 8-bit where no encoding can go */
	RELAY_8BIT_IO,            /* read/write failed, or the host has no
	                             MIME parser: err, errno; output partial */
};

/* Converts the message of `len` octets at fd + offset to `out` and
 * flushes it (relay_out_finish).  err (may be NULL) names the problem
 * for any result but UNCHANGED/CONVERTED (for HEADER and CANNOT: which
 * part, at which offset).  With HEADER and CANNOT nothing was written. */
enum relay_8bit_result relay_8bit_downgrade(const struct postern_host *host,
                                            int fd, off_t offset,
                                            uint64_t len,
                                            struct relay_out *out,
                                            char *err, size_t errlen);

/* 1 if any of the `len` octets at fd + offset is >= 128 or NUL, 0 if
 * none, -1 on a read error (errno set).  For a message received without
 * BODY=8BITMIME, which needs no conversion. */
int relay_8bit_scan(int fd, off_t offset, uint64_t len);

#endif /* RELAY_8BIT_H */
