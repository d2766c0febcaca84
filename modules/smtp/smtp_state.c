/*
 * smtp_state.c - the tables of the SMTP state machine (smtp_state.h):
 * each state's name and input, which commands each rest state runs and
 * how it refuses the others, and which state may follow which.  Pure:
 * the session's code is in smtp_machine.c and the handlers' files.
 *
 * To add a command: its verb in smtp_parser.h, its handler in the
 * session's switch, and here its refusal in each rest state where it is
 * out of sequence (elsewhere it runs), as BURL's (RFC 4468) are: BDAT's,
 * in every state.
 */
#include <stddef.h>
#include <stdint.h>

#include "smtp_state.h"

#define B(st) (UINT64_C(1) << (st))

struct state_info {
	const char *name;
	enum smtp_input input;
	int idle;            /* smtp_state_idle */
	int txn;             /* smtp_state_in_txn */
	uint64_t next;       /* states that may follow, B(...) | ... */
};

/* The transaction ends (RSET, HELO, STARTTLS, a refused MAIL, the reply
 * to the message) in READY; STARTTLS and HELO go through their own
 * states. */
#define LEAVE_TXN (B(SMTP_ST_READY) | B(SMTP_ST_HELO_HOOK) | \
                   B(SMTP_ST_TLS_HANDSHAKE))
/* Commands any rest state may start (READY and HELO: the session is
 * the same with or without a transaction). */
#define REST_CMDS (LEAVE_TXN | B(SMTP_ST_BDAT))
/* The end-of-message chain may end (refused, discarded) or deliver
 * from any of its stages. */
#define EOM_END (B(SMTP_ST_DELIVER) | B(SMTP_ST_READY))

static const struct state_info states[SMTP_ST_COUNT] = {
	[SMTP_ST_CONNECT] = { "connect", SMTP_IN_PAUSED, 1, 0,
	                      B(SMTP_ST_REFUSED) | B(SMTP_ST_HELO) },
	[SMTP_ST_REFUSED] = { "refused", SMTP_IN_COMMANDS, 1, 0, 0 },
	[SMTP_ST_HELO] = { "helo", SMTP_IN_COMMANDS, 1, 0, REST_CMDS },
	[SMTP_ST_HELO_HOOK] = { "helo-hook", SMTP_IN_PAUSED, 1, 0,
	                        B(SMTP_ST_READY) | B(SMTP_ST_HELO) },
	/* The host reads nothing before the handshake is over; the first
	 * line after it waits for the starttls stage (smtp_session.c). */
	[SMTP_ST_TLS_HANDSHAKE] = { "tls-handshake", SMTP_IN_RAW, 1, 0,
	                            B(SMTP_ST_TLS_HOOK) },
	[SMTP_ST_TLS_HOOK] = { "tls-hook", SMTP_IN_PAUSED, 1, 0,
	                       B(SMTP_ST_HELO) | B(SMTP_ST_REFUSED) },
	[SMTP_ST_READY] = { "ready", SMTP_IN_COMMANDS, 1, 0,
	                    REST_CMDS | B(SMTP_ST_AUTH_STEP) |
	                    B(SMTP_ST_MAIL_CHECK) },
	[SMTP_ST_AUTH_STEP] = { "auth-step", SMTP_IN_PAUSED, 1, 0,
	                        B(SMTP_ST_AUTH_LINE) | B(SMTP_ST_AUTH_HOOK) |
	                        B(SMTP_ST_READY) },
	[SMTP_ST_AUTH_LINE] = { "auth-line", SMTP_IN_RAW, 0, 0,
	                        B(SMTP_ST_AUTH_STEP) | B(SMTP_ST_READY) },
	[SMTP_ST_AUTH_HOOK] = { "auth-hook", SMTP_IN_PAUSED, 1, 0,
	                        B(SMTP_ST_READY) },
	[SMTP_ST_MAIL_CHECK] = { "mail-check", SMTP_IN_PAUSED, 0, 1,
	                         B(SMTP_ST_MAIL_HOOK) | B(SMTP_ST_READY) },
	[SMTP_ST_MAIL_HOOK] = { "mail-hook", SMTP_IN_PAUSED, 0, 1,
	                        B(SMTP_ST_MAIL) | B(SMTP_ST_READY) },
	[SMTP_ST_MAIL] = { "mail", SMTP_IN_COMMANDS, 0, 1,
	                   REST_CMDS | B(SMTP_ST_RCPT_LOOKUP) },
	[SMTP_ST_RCPT_LOOKUP] = { "rcpt-lookup", SMTP_IN_PAUSED, 0, 1,
	                          B(SMTP_ST_RCPT_HOOK) | B(SMTP_ST_MAIL) |
	                          B(SMTP_ST_RCPT) },
	[SMTP_ST_RCPT_HOOK] = { "rcpt-hook", SMTP_IN_PAUSED, 0, 1,
	                        B(SMTP_ST_MAIL) | B(SMTP_ST_RCPT) },
	[SMTP_ST_RCPT] = { "rcpt", SMTP_IN_COMMANDS, 0, 1,
	                   LEAVE_TXN | B(SMTP_ST_RCPT_LOOKUP) |
	                   B(SMTP_ST_DATA_HOOK) | B(SMTP_ST_BDAT_HOOK) },
	[SMTP_ST_DATA_HOOK] = { "data-hook", SMTP_IN_PAUSED, 0, 1,
	                        B(SMTP_ST_DATA) | B(SMTP_ST_RCPT) },
	[SMTP_ST_DATA] = { "data", SMTP_IN_RAW, 0, 1,
	                   B(SMTP_ST_SYNC) | B(SMTP_ST_READY) },
	/* The first chunk, BDAT's or BURL's, runs the data stage. */
	[SMTP_ST_BDAT_HOOK] = { "bdat-hook", SMTP_IN_PAUSED, 0, 1,
	                        B(SMTP_ST_BDAT) | B(SMTP_ST_BURL) },
	/* A chunk out of sequence is read too, so BDAT may hold no
	 * transaction, and go back to where it came from. */
	[SMTP_ST_BDAT] = { "bdat", SMTP_IN_RAW, 0, 0,
	                   B(SMTP_ST_CHUNKED) | B(SMTP_ST_CHUNK_FAILED) |
	                   B(SMTP_ST_SYNC) | B(SMTP_ST_READY) |
	                   B(SMTP_ST_HELO) | B(SMTP_ST_MAIL) },
	/* BURL is a chunk like BDAT's (RFC 4468 3.2), but only in
	 * sequence: out of it there are no octets to skip. */
	[SMTP_ST_BURL] = { "burl", SMTP_IN_PAUSED, 0, 1,
	                   B(SMTP_ST_CHUNKED) | B(SMTP_ST_CHUNK_FAILED) |
	                   B(SMTP_ST_SYNC) | B(SMTP_ST_READY) },
	[SMTP_ST_CHUNKED] = { "chunked", SMTP_IN_COMMANDS, 0, 1,
	                      REST_CMDS | B(SMTP_ST_BURL) },
	[SMTP_ST_CHUNK_FAILED] = { "chunk-failed", SMTP_IN_COMMANDS, 0, 1,
	                           REST_CMDS },
	[SMTP_ST_SYNC] = { "sync", SMTP_IN_PAUSED, 0, 1,
	                   B(SMTP_ST_EOM_HEADER) | B(SMTP_ST_EOM_EOH) |
	                   B(SMTP_ST_READY) },
	[SMTP_ST_EOM_HEADER] = { "eom-header", SMTP_IN_PAUSED, 0, 1,
	                         B(SMTP_ST_EOM_EOH) | EOM_END },
	[SMTP_ST_EOM_EOH] = { "eom-eoh", SMTP_IN_PAUSED, 0, 1,
	                      B(SMTP_ST_EOM_BODY) | B(SMTP_ST_EOM_EOD) |
	                      EOM_END },
	[SMTP_ST_EOM_BODY] = { "eom-body", SMTP_IN_PAUSED, 0, 1,
	                       B(SMTP_ST_EOM_EOD) | EOM_END },
	[SMTP_ST_EOM_EOD] = { "eom-eod", SMTP_IN_PAUSED, 0, 1, EOM_END },
	[SMTP_ST_DELIVER] = { "deliver", SMTP_IN_PAUSED, 0, 1,
	                      B(SMTP_ST_READY) },
	[SMTP_ST_CLOSED] = { "closed", SMTP_IN_PAUSED, 0, 0, 0 },
};

/* ---- which commands each rest state runs ------------------------------ */

#define RUN { SMTP_RULE_RUN, 0, NULL, NULL }
#define REFUSE(c, e, t) { SMTP_RULE_REFUSE, c, e, t }
#define REFUSE_CHUNK(c, e, t) { SMTP_RULE_REFUSE_CHUNK, c, e, t }

#define NEED_HELO REFUSE(503, "5.5.1", "send HELO or EHLO first")
#define NEED_MAIL REFUSE(503, "5.5.1", "need MAIL first")
#define NESTED_MAIL REFUSE(503, "5.5.1", "nested MAIL command")
#define AUTH_IN_TXN REFUSE(503, "5.5.1", \
                           "AUTH not allowed during a transaction")
#define NO_RCPT REFUSE(554, "5.5.1", "no valid recipients")
#define AFTER_DATA REFUSE(503, "5.5.1", "RCPT after message data")
#define DATA_AFTER_BDAT REFUSE(503, "5.5.1", "DATA after BDAT")
/* A chunk's, BDAT's or BURL's (REFUSE_CHUNK) */
#define CHUNK_NEED_MAIL REFUSE_CHUNK(503, "5.5.1", "need MAIL first")
#define CHUNK_NO_RCPT REFUSE_CHUNK(554, "5.5.1", "no valid recipients")
#define CHUNK_AFTER_FAILED REFUSE_CHUNK(503, "5.5.1", \
                                        "an earlier chunk failed; RSET")

struct state_rules {
	struct smtp_rule dflt;   /* verbs the row does not name */
	struct smtp_rule verb[SMTP_VERB_COUNT];
};

static const struct state_rules rules[SMTP_ST_COUNT] = {
	/* RFC 5321 3.1: after a 554 greeting, 503 until QUIT. */
	[SMTP_ST_REFUSED] = {
		.dflt = REFUSE(503, "5.7.0", "no service for you"),
		.verb = { [SMTP_VERB_QUIT] = RUN, [SMTP_VERB_NOOP] = RUN },
	},
	/* RFC 5321 4.1.4: MAIL after HELO/EHLO; RFC 4954: AUTH after
	 * EHLO.  A chunk out of sequence is read (BDAT's octets; BURL's
	 * URL is not resolved), then refused; its LAST ends the
	 * transaction, as an accepted one would.  RFC 4468 3.1: BURL
	 * goes where BDAT goes. */
	[SMTP_ST_HELO] = {
		.dflt = RUN,
		.verb = {
			[SMTP_VERB_MAIL] = NEED_HELO,
			[SMTP_VERB_RCPT] = NEED_MAIL,
			[SMTP_VERB_DATA] = NEED_MAIL,
			[SMTP_VERB_BDAT] = CHUNK_NEED_MAIL,
			[SMTP_VERB_AUTH] = REFUSE(503, "5.5.1",
			                          "send EHLO first"),
			[SMTP_VERB_BURL] = CHUNK_NEED_MAIL,
		},
	},
	[SMTP_ST_READY] = {
		.dflt = RUN,
		.verb = {
			[SMTP_VERB_RCPT] = NEED_MAIL,
			[SMTP_VERB_DATA] = NEED_MAIL,
			[SMTP_VERB_BDAT] = CHUNK_NEED_MAIL,
			[SMTP_VERB_BURL] = CHUNK_NEED_MAIL,
		},
	},
	/* RFC 5321 3.3: DATA without a recipient is 554 ("no valid
	 * recipients"), or 503; RFC 4468 3.1 and 6: BURL too, and its URL
	 * is not resolved. */
	[SMTP_ST_MAIL] = {
		.dflt = RUN,
		.verb = {
			[SMTP_VERB_MAIL] = NESTED_MAIL,
			[SMTP_VERB_DATA] = NO_RCPT,
			[SMTP_VERB_BDAT] = CHUNK_NO_RCPT,
			[SMTP_VERB_AUTH] = AUTH_IN_TXN,
			[SMTP_VERB_BURL] = CHUNK_NO_RCPT,
		},
	},
	[SMTP_ST_RCPT] = {
		.dflt = RUN,
		.verb = {
			[SMTP_VERB_MAIL] = NESTED_MAIL,
			[SMTP_VERB_AUTH] = AUTH_IN_TXN,
		},
	},
	/* RFC 3030 2: DATA and BDAT are not mixed in a transaction, and
	 * the recipients are all known before the first chunk.  RFC 4468
	 * 3.2: BDAT and BURL chunks mix. */
	[SMTP_ST_CHUNKED] = {
		.dflt = RUN,
		.verb = {
			[SMTP_VERB_MAIL] = NESTED_MAIL,
			[SMTP_VERB_RCPT] = AFTER_DATA,
			[SMTP_VERB_DATA] = DATA_AFTER_BDAT,
			[SMTP_VERB_AUTH] = AUTH_IN_TXN,
		},
	},
	/* RFC 3030 2: after a failed chunk the client must not send
	 * another; one that does has it read and refused. */
	[SMTP_ST_CHUNK_FAILED] = {
		.dflt = RUN,
		.verb = {
			[SMTP_VERB_MAIL] = NESTED_MAIL,
			[SMTP_VERB_RCPT] = AFTER_DATA,
			[SMTP_VERB_DATA] = DATA_AFTER_BDAT,
			[SMTP_VERB_BDAT] = CHUNK_AFTER_FAILED,
			[SMTP_VERB_AUTH] = AUTH_IN_TXN,
			[SMTP_VERB_BURL] = CHUNK_AFTER_FAILED,
		},
	},
};

static const struct smtp_rule not_read = { SMTP_RULE_NOT_READ, 0, NULL,
                                           NULL };

const struct smtp_rule *
smtp_state_rule(enum smtp_state st, enum smtp_verb verb)
{
	const struct state_rules *r;

	if ((unsigned)st >= SMTP_ST_COUNT || (unsigned)verb >= SMTP_VERB_COUNT ||
	    states[st].input != SMTP_IN_COMMANDS)
		return &not_read;
	r = &rules[st];
	return r->verb[verb].kind != SMTP_RULE_DEFAULT ? &r->verb[verb]
	                                               : &r->dflt;
}

/* ---- the states --------------------------------------------------------- */

const char *
smtp_state_name(enum smtp_state st)
{
	return (unsigned)st < SMTP_ST_COUNT ? states[st].name : "?";
}

const char *
smtp_event_name(enum smtp_event_kind ev)
{
	static const char *const names[SMTP_EV_COUNT] = {
		[SMTP_EV_VERDICT] = "verdict",
		[SMTP_EV_SASL] = "sasl",
		[SMTP_EV_SENDER] = "sender-checked",
		[SMTP_EV_RESOLVED] = "rcpt-resolved",
		[SMTP_EV_SPOOLED] = "spooled",
		[SMTP_EV_READ] = "spool-read",
		[SMTP_EV_DELIVERED] = "delivered",
		[SMTP_EV_FETCHED] = "url-fetched",
	};

	return (unsigned)ev < SMTP_EV_COUNT ? names[ev] : "?";
}

enum smtp_input
smtp_state_input(enum smtp_state st)
{
	return (unsigned)st < SMTP_ST_COUNT ? states[st].input
	                                    : SMTP_IN_PAUSED;
}

int
smtp_state_idle(enum smtp_state st)
{
	return (unsigned)st < SMTP_ST_COUNT && states[st].idle;
}

int
smtp_state_in_txn(enum smtp_state st)
{
	return (unsigned)st < SMTP_ST_COUNT && states[st].txn;
}

int
smtp_state_can(enum smtp_state from, enum smtp_state to)
{
	if ((unsigned)from >= SMTP_ST_COUNT || (unsigned)to >= SMTP_ST_COUNT ||
	    from == SMTP_ST_CLOSED)
		return 0;
	return from == to || to == SMTP_ST_CLOSED ||
	       (states[from].next & B(to)) != 0;
}
