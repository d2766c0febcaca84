/*
 * smtp_state.h - the phases of an SMTP session and of its transaction,
 * as one state machine:
 *
 *   - enum smtp_state names every phase: the rest states where commands
 *     are read (HELO, READY, MAIL, RCPT, CHUNKED...), the states where the
 *     session waits for one asynchronous step (a filter stage, a lookup,
 *     a spool write, a delivery: the session is paused and pipelined
 *     commands wait in the input buffer), and the states where input is
 *     not commands (DATA lines, BDAT octets, an AUTH response);
 *   - smtp_state_rule() says, for a rest state and a command, whether the
 *     command runs or which reply refuses it (RFC 5321 4.1.4 and 3.1,
 *     RFC 3030, RFC 4954, RFC 4468): the session dispatches every
 *     command through
 *     it (smtp_session.c) before its handler;
 *   - smtp_state_can() says which phase may follow which: smtp_enter()
 *     (smtp_machine.c) goes through it for every change, logs the change
 *     at debug level, and aborts on an illegal one in a sanitizer build;
 *   - enum smtp_event names what an asynchronous step reports (a verdict,
 *     a lookup's status, a spool write...): smtp_event() hands it to the
 *     handler of the current state (smtp_machine.c's table), which
 *     decides what comes next.
 *
 * This file and smtp_state.c are pure (no host): the tables are unit
 * tested (tests/unit/test_smtp_state.c).  The module's README draws the
 * machine.
 */
#ifndef SMTP_STATE_H
#define SMTP_STATE_H

#include "smtp_parser.h"

enum smtp_state {
	/* the session */
	SMTP_ST_CONNECT = 0,   /* connect stage running; no greeting yet */
	SMTP_ST_REFUSED,       /* 554 greeting or refused TLS: QUIT, NOOP */
	SMTP_ST_HELO,          /* greeted by us, waiting for HELO/EHLO */
	SMTP_ST_HELO_HOOK,     /* helo stage running */
	SMTP_ST_TLS_HANDSHAKE, /* 220 to STARTTLS said; the line after the
	                          handshake runs the starttls stage */
	SMTP_ST_TLS_HOOK,      /* starttls stage running */
	SMTP_ST_READY,         /* HELO/EHLO done, no transaction */
	SMTP_ST_AUTH_STEP,     /* a SASL step is being checked */
	SMTP_ST_AUTH_LINE,     /* 334 said: a response line is expected */
	SMTP_ST_AUTH_HOOK,     /* auth stage running */
	/* the transaction (MAIL accepted, or being checked) */
	SMTP_ST_MAIL_CHECK,    /* the sender against the login (a job) */
	SMTP_ST_MAIL_HOOK,     /* mail stage running */
	SMTP_ST_MAIL,          /* in a transaction, no recipient yet */
	SMTP_ST_RCPT_LOOKUP,   /* the recipient's lookup (a job) */
	SMTP_ST_RCPT_HOOK,     /* rcpt stage running */
	SMTP_ST_RCPT,          /* in a transaction with recipients */
	SMTP_ST_DATA_HOOK,     /* data stage running, before 354 */
	SMTP_ST_DATA,          /* reading DATA lines (raw) */
	SMTP_ST_BDAT_HOOK,     /* data stage running for a first chunk */
	SMTP_ST_BDAT,          /* reading a BDAT chunk (octets) */
	SMTP_ST_BURL,          /* a BURL chunk fetched from its URL into
	                          the message (a job, RFC 4468) */
	SMTP_ST_CHUNKED,       /* between BDAT chunks */
	SMTP_ST_CHUNK_FAILED,  /* a chunk was refused: RSET (or the LAST
	                          chunk) ends the transaction */
	SMTP_ST_SYNC,          /* the spool made durable (a job) */
	SMTP_ST_EOM_HEADER,    /* header stage running, field by field */
	SMTP_ST_EOM_EOH,       /* eoh stage running */
	SMTP_ST_EOM_BODY,      /* body stage: a chunk read, or running */
	SMTP_ST_EOM_EOD,       /* eod stage running */
	SMTP_ST_DELIVER,       /* the delivery job */
	SMTP_ST_CLOSED,        /* the session is closing: nothing moves */
	SMTP_ST_COUNT
};

/* What a state does with command lines. */
enum smtp_input {
	SMTP_IN_COMMANDS = 0,  /* dispatched through smtp_state_rule */
	SMTP_IN_PAUSED,        /* none: the session waits for a step */
	SMTP_IN_RAW,           /* raw lines or octets, not commands */
};

enum smtp_rule_kind {
	SMTP_RULE_DEFAULT = 0, /* (in the table: the row's default) */
	SMTP_RULE_RUN,         /* the command's handler runs */
	SMTP_RULE_REFUSE,      /* the reply below, counted as an error */
	SMTP_RULE_REFUSE_CHUNK, /* a chunk: the handler takes it, then
	                           replies the reply below, and its LAST
	                           ends the transaction (BDAT: the octets
	                           are read, their size is the only way to
	                           skip them; BURL: the URL is not
	                           resolved) */
	SMTP_RULE_NOT_READ,    /* no command is read in this state */
};

struct smtp_rule {
	enum smtp_rule_kind kind;
	unsigned code;         /* REFUSE*: the reply */
	const char *enhanced;
	const char *text;
};

/* What an asynchronous step reports to the machine (smtp_event). */
enum smtp_event_kind {
	SMTP_EV_VERDICT = 0,   /* a filter stage's chain answered: verdict */
	SMTP_EV_SASL,          /* the SASL exchange moved: sasl */
	SMTP_EV_SENDER,        /* sender checked: status 1 ok, 0 refused
	                          (the refusal is replied) */
	SMTP_EV_RESOLVED,      /* recipient looked up: status POSTERN_AUTH_* */
	SMTP_EV_SPOOLED,       /* spool written: status 1 ok, 0 failed */
	SMTP_EV_READ,          /* spool read for the body stage: n octets,
	                          -1 on failure */
	SMTP_EV_DELIVERED,     /* the delivery job finished (also once the
	                          client has gone: the outcome is logged) */
	SMTP_EV_FETCHED,       /* a BURL chunk's URL was resolved into the
	                          message: status POSTERN_URLAUTH_*; n the
	                          octets taken, -1 if the spool file could
	                          not be written */
	SMTP_EV_COUNT
};

/* "ready", "data-hook"...: logs. */
const char *smtp_state_name(enum smtp_state st);
const char *smtp_event_name(enum smtp_event_kind ev);
enum smtp_input smtp_state_input(enum smtp_state st);
/* 1 in the states a worker's graceful stop may end at once (after the
 * step in flight): no transaction, no AUTH exchange, no chunk being
 * read.  Elsewhere the session finishes what the client started. */
int smtp_state_idle(enum smtp_state st);
/* 1 when the state holds a transaction (MAIL accepted). */
int smtp_state_in_txn(enum smtp_state st);
/* Whether `verb` runs in `st`, or its refusal.  Never NULL; states that
 * read no commands give SMTP_RULE_NOT_READ. */
const struct smtp_rule *smtp_state_rule(enum smtp_state st,
                                        enum smtp_verb verb);
/* 1 if `from` may be followed by `to` (the same state always may;
 * SMTP_ST_CLOSED follows any; nothing follows SMTP_ST_CLOSED). */
int smtp_state_can(enum smtp_state from, enum smtp_state to);

#endif /* SMTP_STATE_H */
