/*
 * relay_dsn.h - delivery status notifications (RFC 3464 with RFC 3461's
 * RET and ENVID, RFC 6522's multipart/report).
 *
 * The report is a message from the null sender (the relay must send it
 * with MAIL FROM:<>) to the original envelope sender:
 *
 *   From: Mail Delivery System <MAILER-DAEMON@reporting_mta>
 *   To: <sender>   Subject: by the first recipient's action
 *   Auto-Submitted: auto-replied (RFC 3834)   MIME-Version: 1.0
 *   Content-Type: multipart/report; report-type=delivery-status;
 *                 boundary="..."
 *   1. text/plain: what happened, recipient by recipient
 *   2. message/delivery-status: Reporting-MTA, Original-Envelope-Id,
 *      Arrival-Date; then per recipient Original-Recipient (ORCPT),
 *      Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 *      Last-Attempt-Date, Will-Retry-Until
 *   3. message/rfc822 (the whole original: RET=FULL, or no RET and a
 *      message no larger than full_max) or text/rfc822-headers (its
 *      header: RET=HDRS, or no RET and a larger message)
 *
 * Every line ends in CRLF.  Text that came from the network (remote
 * replies, addresses) is made safe for a header field: control octets
 * become spaces, 8-bit octets become '?' in the ASCII-only
 * delivery-status part, long values are folded, and a value is cut at
 * RELAY_DSN_FIELD_MAX octets.
 *
 * An SMTPUTF8 sender (UTF-8 in its address) makes the report's To field
 * UTF-8 and its parts 8bit: send such a report with SMTPUTF8 (the
 * delivery-status part stays ASCII; RFC 6533's message/global-
 * delivery-status is not produced).
 *
 * The original is read with pread(2) from fd + offset, in pieces: it is
 * never held whole in memory.
 *
 * Threads.  Blocking file I/O: call it from a job thread (or on the loop
 * for a small message in memory through a memory sink).  No host
 * function is called; nothing global is touched.
 */
#ifndef RELAY_DSN_H
#define RELAY_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "relay_out.h"

#define RELAY_DSN_FIELD_MAX 900

/* RFC 3464 section 2.3.3. */
enum relay_dsn_action {
	RELAY_DSN_FAILED = 0,
	RELAY_DSN_DELAYED,
	RELAY_DSN_DELIVERED,
	RELAY_DSN_RELAYED,
	RELAY_DSN_EXPANDED,
};

/* RFC 3461 section 4.3. */
enum relay_dsn_ret {
	RELAY_DSN_RET_DEFAULT = 0, /* none given: full when small enough */
	RELAY_DSN_RET_FULL,
	RELAY_DSN_RET_HDRS,
};

struct relay_dsn_rcpt {
	/* The address the relay delivered (or failed) to, without angle
	 * brackets: "bob@example.net".  Required. */
	const char *final_rcpt;
	/* The ORCPT parameter as received, address type included
	 * ("rfc822;Bob@example.net"), xtext already decoded; NULL when
	 * none was given. */
	const char *orcpt;
	enum relay_dsn_action action;
	/* The enhanced status code "5.1.1" (class.subject.detail).
	 * Required; checked. */
	const char *status;
	/* The remote host ("mx.example.net"), or NULL (no connection). */
	const char *remote_mta;
	/* The remote reply ("550 5.1.1 <bob@example.net>: no such user",
	 * lines of a multi-line reply joined with a space), written as
	 * "smtp; ..."; NULL for none. */
	const char *diagnostic;
	int64_t last_attempt;      /* seconds since the epoch; 0: omitted */
	int64_t will_retry_until;  /* DELAYED only; 0: omitted */
};

struct relay_dsn {
	/* Our host name: Reporting-MTA and the From address's domain. */
	const char *reporting_mta;
	/* The envelope sender of the original, to whom the report goes.
	 * NULL or "" (the null sender): no report (RELAY_DSN_NULL_SENDER). */
	const char *sender;
	const char *envid;         /* ENVID (xtext decoded), or NULL */
	int64_t arrival;           /* when we accepted the original */
	int64_t now;               /* Date of the report */
	/* Message-ID of the report, with angle brackets; NULL: one made of
	 * `now`, the boundary and reporting_mta. */
	const char *message_id;
	/* A string for the boundary and the Message-ID (the queue id, say:
	 * letters, digits, '.', '-', '_' are kept, the rest dropped); 128
	 * random bits are added, so no line of the original can match the
	 * boundary by chance.  May be NULL. */
	const char *unique;
	enum relay_dsn_ret ret;
	/* RET=DEFAULT: the whole message when orig_len <= full_max, else
	 * its header.  0: 64 KiB (as Postfix's bounce_size_limit
	 * 50000). */
	uint64_t full_max;
	/* The original was received with BODY=8BITMIME (or BINARYMIME):
	 * the message/rfc822 part is declared 8bit (RFC 6152). */
	int orig_8bit;
	/* The original message, CRLF, at orig_fd from orig_offset. */
	int orig_fd;
	off_t orig_offset;
	uint64_t orig_len;

	const struct relay_dsn_rcpt *rcpts;
	size_t nrcpts;
};

enum relay_dsn_result {
	RELAY_DSN_OK = 0,
	/* The sender is the null sender: never report to it (RFC 3461
	 * section 6.2, RFC 5321 section 4.5.5); drop and log. */
	RELAY_DSN_NULL_SENDER,
	/* A bad argument (no recipient, a status that is not x.y.z, a
	 * missing reporting_mta...): err says which. */
	RELAY_DSN_INVALID,
	/* Reading the original failed (or it ended early) or writing
	 * failed: err says which, errno is set.  The output is partial:
	 * discard it. */
	RELAY_DSN_IO,
};

/* Writes the whole report to `out` and flushes it (relay_out_finish).
 * err (may be NULL) gets the reason for anything but RELAY_DSN_OK. */
enum relay_dsn_result relay_dsn_write(const struct relay_dsn *dsn,
                                      struct relay_out *out, char *err,
                                      size_t errlen);

/* "failed", "delayed", "delivered", "relayed", "expanded". */
const char *relay_dsn_action_name(enum relay_dsn_action a);

/* 1 if `s` is a valid enhanced status code (RFC 3463: class 2, 4 or 5;
 * subject 1-3 digits; detail 1-3 digits). */
int relay_dsn_status_valid(const char *s);

#endif /* RELAY_DSN_H */
