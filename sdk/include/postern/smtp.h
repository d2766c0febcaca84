/*
 * postern/smtp.h - filtering mail in flight: the SMTP module's hook points,
 * the payload their handlers receive, and the "smtp" service a filter
 * calls to change the message.
 *
 * The SMTP module defines one hook point per stage of a session (see
 * postern/hook.h for handlers, priorities, timeouts and verdicts).  A
 * filter module registers handlers on the stages it cares about and lists
 * "smtp" in its `depends`.  Every handler receives a
 * `struct postern_smtp_payload *` as its payload.
 *
 *   stage             when                           verdict applies to
 *   smtp.connect      after accept, before greeting  the session (a reject
 *                                                    answers 554 and waits
 *                                                    for QUIT)
 *   smtp.helo         HELO/EHLO                      that command
 *   smtp.starttls     TLS is up after STARTTLS       the session
 *   smtp.auth         AUTH succeeded                 that AUTH (535 on
 *                                                    reject)
 *   smtp.mail         MAIL FROM                      the transaction
 *   smtp.rcpt         each RCPT TO                   that recipient only
 *   smtp.data         DATA or the first BDAT         the message (before
 *                                                    354 for DATA)
 *   smtp.header       each header field, in order    the message
 *   smtp.eoh          end of the header section      the message
 *   smtp.body         each body chunk (<= 64 KiB)    the message
 *   smtp.eod          end of data                    the message
 *   smtp.reset        transaction ends (RSET, MAIL   cleanup only
 *                     again, HELO, end of message)
 *   smtp.disconnect   the session ends               cleanup only
 *
 * header, eoh, body and eod run one after the other once the whole
 * message has arrived (and was spooled), so a handler may be slow without
 * holding the client's data stream; the message's reply waits for them.
 * The body stage runs only when a handler is registered on it.
 *
 * Verdicts: CONTINUE goes on to the next handler; ACCEPT ends that stage's
 * chain (the rest of its handlers are skipped), not the later stages;
 * REJECT answers 5xx (the handler's code, enhanced code and text, or
 * 550 5.7.1; 554 at connect and data); TEMPFAIL answers 4xx (451 4.7.1 by default); DISCARD makes
 * the message vanish after a success reply (no recipient gets it);
 * QUARANTINE accepts it but delivers it to the local recipients'
 * mailbox "Quarantine" instead of INBOX (relayed recipients' copies are
 * dropped, as with DISCARD: there is no quarantine store for them).  A
 * handler's reply code must agree with its verdict (5xx for REJECT, 4xx
 * for TEMPFAIL), else the default is used.  The DISCONNECT flag closes
 * the connection after the reply (421 for TEMPFAIL, as RFC 5321 wants).
 * reset and disconnect run exactly once per transaction and session, and
 * their verdicts are ignored.  A handler that answers PENDING and never
 * resumes gets its registration's on_timeout verdict; the session waits
 * meanwhile without blocking anyone.
 *
 * Lifetime: the payload and everything it points to belong to the SMTP
 * module and are valid until the handler answers (returns a verdict, or
 * resumes a PENDING call) or its cancel callback runs.  Copy what you
 * keep.  Every call happens on the event loop.
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <postern/types.h>
#include <postern/relay.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POSTERN_SMTP_HOOK_CONNECT "smtp.connect"
#define POSTERN_SMTP_HOOK_HELO "smtp.helo"
#define POSTERN_SMTP_HOOK_STARTTLS "smtp.starttls"
#define POSTERN_SMTP_HOOK_AUTH "smtp.auth"
#define POSTERN_SMTP_HOOK_MAIL "smtp.mail"
#define POSTERN_SMTP_HOOK_RCPT "smtp.rcpt"
#define POSTERN_SMTP_HOOK_DATA "smtp.data"
#define POSTERN_SMTP_HOOK_HEADER "smtp.header"
#define POSTERN_SMTP_HOOK_EOH "smtp.eoh"
#define POSTERN_SMTP_HOOK_BODY "smtp.body"
#define POSTERN_SMTP_HOOK_EOD "smtp.eod"
#define POSTERN_SMTP_HOOK_RESET "smtp.reset"
#define POSTERN_SMTP_HOOK_DISCONNECT "smtp.disconnect"

enum postern_smtp_stage {
	POSTERN_SMTP_CONNECT = 0,
	POSTERN_SMTP_HELO,
	POSTERN_SMTP_STARTTLS,
	POSTERN_SMTP_AUTH,
	POSTERN_SMTP_MAIL,
	POSTERN_SMTP_RCPT,
	POSTERN_SMTP_DATA,
	POSTERN_SMTP_HEADER,
	POSTERN_SMTP_EOH,
	POSTERN_SMTP_BODY,
	POSTERN_SMTP_EOD,
	POSTERN_SMTP_RESET,
	POSTERN_SMTP_DISCONNECT,
};

/* The transaction a filter changes through the "smtp" service. */
typedef struct postern_smtp_txn postern_smtp_txn_t;

/* What is known about the client session. */
struct postern_smtp_session_info {
	size_t size;            /* sizeof(struct postern_smtp_session_info) */
	uint64_t id;            /* the connection id, as in the logs */
	const char *peer;       /* client address as text; never NULL */
	unsigned peer_port;
	const char *listener;   /* listener name ("mx", "submission") */
	const char *helo;       /* HELO/EHLO argument, or NULL before it */
	int esmtp;              /* 1 after EHLO, 0 after HELO or before */
	int tls;                /* 1 once TLS is active */
	const char *tls_version; /* "TLSv1.3", or NULL without TLS */
	const char *tls_cipher;  /* or NULL without TLS */
	const char *auth_user;  /* the authenticated identity, or NULL */
};

struct postern_smtp_payload {
	size_t size;            /* sizeof(struct postern_smtp_payload) */
	enum postern_smtp_stage stage;
	const struct postern_smtp_session_info *session; /* never NULL */

	/* From MAIL on: the transaction and its envelope (sender, MAIL
	 * parameters, the recipients accepted so far); NULL before MAIL and
	 * in connect, helo, starttls, auth, reset and disconnect (the
	 * cleanup stages run detached from the session: key per-session
	 * state on session->id).  The txn handle stays a valid pointer
	 * until the session ends, but the service refuses it (-1) outside
	 * a live call. */
	postern_smtp_txn_t *txn;
	const struct postern_relay_envelope *envelope;

	/* rcpt: the recipient being judged (not yet in the envelope). */
	const struct postern_relay_rcpt *rcpt;

	/* header: one header field as received.  `header_name` without the
	 * colon; `header_value` after the colon, folding kept (CRLF SP),
	 * leading space kept, without the final CRLF.  `header_index` is
	 * 1-based among the fields of that name (for header_change). */
	const char *header_name;
	const char *header_value;
	size_t header_index;

	/* body: `chunk_len` octets of the body (after the blank line), CRLF
	 * line endings, not dot-stuffed; chunks may split lines. */
	const void *chunk;
	size_t chunk_len;
	/* eod: the message's size in octets as received (before changes). */
	uint64_t message_size;
};

/*
 * The service "smtp" (version 1.2) that the SMTP module publishes: what a
 * filter calls to change a transaction it was handed.  Every function is
 * called on the event loop, only while the handler's call is live
 * (before it answers, or before it resumes a PENDING call), and from
 * stages that have a transaction (mail on).  Changes are recorded and
 * applied after the end-of-data chain has run, in the order they were
 * made; a message rejected, tempfailed or discarded keeps none.  Strings
 * are copied.  Each returns 0, or -1 on bad arguments (NULL, a name that
 * is not a field name, a value with a bare CR or LF, an address that is
 * not a valid mailbox), when there is no transaction, or past the
 * transaction's budget of changes (1,000 changes or 1 MiB of names and
 * values, over all filters; logged once).
 */
#define POSTERN_SMTP_SERVICE "smtp"
#define POSTERN_SMTP_MAJOR 1
#define POSTERN_SMTP_MINOR 2

struct postern_smtp_service {
	size_t size;            /* sizeof(struct postern_smtp_service) */
	/* Adds "name: value" at the end of the header section (or at its
	 * top with `at_top`, where trace fields go).  A `value` may be
	 * folded with CRLF followed by space or tab. */
	int (*header_add)(postern_smtp_txn_t *txn, const char *name,
	                  const char *value, int at_top);
	/* Replaces the value of the `index`-th (1-based) field called
	 * `name` (case-insensitive); a NULL value removes the field.  A
	 * field that does not exist is not an error (nothing changes). */
	int (*header_change)(postern_smtp_txn_t *txn, const char *name,
	                     size_t index, const char *value);
	/* Adds a recipient (an address without angle brackets); it is
	 * routed as any recipient: local, or relayed when a relay exists. */
	int (*rcpt_add)(postern_smtp_txn_t *txn, const char *address);
	/* Removes a recipient (compared case-insensitively). */
	int (*rcpt_remove)(postern_smtp_txn_t *txn, const char *address);

	/* ---- version 1.1: look up with minor 1, or check `size` ---- */

	/* Inserts "name: value" before the field at `position` (0: at the
	 * very top) among the fields as they stand when this change is
	 * applied; past the last field it is appended. */
	int (*header_insert)(postern_smtp_txn_t *txn, size_t position,
	                     const char *name, const char *value);
	/* Replaces the envelope sender ("" for the null sender <>).
	 * `params` (may be NULL: the MAIL parameters stay) are MAIL FROM
	 * parameters as on the command line ("RET=HDRS ENVID=x"), checked
	 * as the client's would be; they replace RET and ENVID. */
	int (*sender_change)(postern_smtp_txn_t *txn, const char *address,
	                     const char *params);
	/* Replaces the message body (what follows the header section's
	 * empty line): the first call in a transaction starts the new
	 * body, later ones append to it.  `data` is CRLF text, not
	 * dot-stuffed.  Only from the header, eoh, body and eod stages
	 * (the message has arrived); the new body may not pass the
	 * module's max_message_size (-1, and the original body stays).
	 * The new body is held in memory until delivery. */
	int (*body_replace)(postern_smtp_txn_t *txn, const void *data,
	                    size_t len);
	/* Memory for the transaction's life: freed when it ends (after
	 * smtp.reset's handlers ran).  NULL without a transaction. */
	postern_pool_t *(*txn_pool)(postern_smtp_txn_t *txn);
	/* The calling module's own pointer in the transaction (NULL until
	 * it sets it), for state kept from one stage to the next without a
	 * table of its own: `*svc->txn_slot(txn, self) = state;` with state
	 * from txn_pool.  NULL without a transaction, or when more than 16
	 * modules asked. */
	void **(*txn_slot)(postern_smtp_txn_t *txn, postern_module_t *m);
	/* Logs as host->log does, the line starting "conn=N peer=ADDR:PORT"
	 * like the SMTP module's own, so grep on a connection finds the
	 * filters' lines too.  Any stage (the cleanup ones included). */
	void (*log)(postern_module_t *m,
	            const struct postern_smtp_payload *p, int level,
	            const char *fmt, ...) POSTERN_PRINTF(4, 5);

	/* ---- version 1.2: look up with minor 2, or check `size` ---- */

	/* The calling module's own pointer in the session of payload `p`
	 * (NULL until it sets it), for state kept from connect to
	 * disconnect, as txn_slot is for a transaction.  Any stage; in
	 * reset and disconnect (which run detached from the session) it
	 * holds the value as it was when the stage began, and setting it
	 * there changes nothing: free the state in disconnect.  NULL when
	 * more than 16 modules asked. */
	void **(*session_slot)(const struct postern_smtp_payload *p,
	                       postern_module_t *m);
};

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_SMTP_H */
