/*
 * pop3_parser.h - POP3 command lines (RFC 1939, 2449, 2595, 5034) and the
 * protocol states that decide which command may come when.
 *
 * Pure code: no host calls, so the unit tests and the fuzz harness drive
 * it directly.  A parsed command points into the line it came from; it is
 * valid as long as that line is.
 */
#ifndef POP3_PARSER_H
#define POP3_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* RFC 2449 section 4: a command line is at most 255 octets with its CRLF. */
#define POP3_MAX_COMMAND 253
/* RFC 1939 section 3: each argument is at most 40 characters.  USER names
 * here are e-mail addresses, which can be longer: we allow what fits in a
 * command line and leave the rest to the auth service. */
#define POP3_MAX_KEYWORD 4
/* Message numbers and TOP line counts fit in 31 bits. */
#define POP3_MAX_NUMBER 2147483647u

enum pop3_state {
	POP3_STATE_AUTHORIZATION = 0, /* greeting sent, no mailbox yet */
	POP3_STATE_TRANSACTION,       /* mailbox open and locked */
	POP3_STATE_UPDATE,            /* QUIT received: deleting, then bye */
};

enum pop3_cmd {
	POP3_CMD_UNKNOWN = 0,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_APOP,
	POP3_CMD_AUTH,
	POP3_CMD_STLS,
	POP3_CMD_CAPA,
	POP3_CMD_QUIT,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
};

enum pop3_parse_status {
	POP3_PARSE_OK = 0,
	POP3_PARSE_UNKNOWN,     /* not a POP3 command */
	POP3_PARSE_BAD_ARGS,    /* known command, wrong arguments */
	POP3_PARSE_WRONG_STATE, /* known command, not in this state */
	POP3_PARSE_TOO_LONG,    /* over POP3_MAX_COMMAND (not AUTH) */
};

struct pop3_command {
	enum pop3_cmd cmd;
	/* LIST, UIDL with an argument; RETR, DELE, TOP: 1..2^31-1. */
	int has_msg;
	uint32_t msg;
	uint32_t lines;     /* TOP: body lines, 0.. */
	/* USER: the name; PASS: the password (rest of the line, spaces
	 * included: RFC 1939 section 7); AUTH: the mechanism; APOP: the
	 * name.  NULL when absent. */
	const char *arg;
	size_t arg_len;
	/* AUTH: the initial response; APOP: the digest.  NULL when absent. */
	const char *arg2;
	size_t arg2_len;
};

/* Parses one command line (without its CRLF) for a session in `state`.
 * Fills *out (out->cmd is set whenever the keyword is known, even when
 * the status is not OK) and returns a status; *why is a short text for
 * the -ERR reply. */
enum pop3_parse_status pop3_parse(const char *line, size_t len,
                                  enum pop3_state state,
                                  struct pop3_command *out,
                                  const char **why);

/* 1 when `cmd` is valid in `state` (RFC 1939 sections 4-6, CAPA in both
 * AUTHORIZATION and TRANSACTION, STLS and AUTH in AUTHORIZATION). */
int pop3_cmd_allowed(enum pop3_state state, enum pop3_cmd cmd);

/* The keyword, upper case ("RETR"); "?" for UNKNOWN. */
const char *pop3_cmd_name(enum pop3_cmd cmd);

/* Whether USER/PASS and the SASL mechanisms (all of which send the
 * password as it is) may be used on a connection: always over TLS and
 * from loopback, elsewhere only when the administrator allows it. */
int pop3_plaintext_allowed(int configured, int tls_active, int loopback);

#endif /* POP3_PARSER_H */
