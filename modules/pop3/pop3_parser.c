/*
 * pop3_parser.c - POP3 command lines and the states they are valid in.
 *
 * RFC 1939 section 3: a command is a case-insensitive keyword of three or
 * four characters, then arguments separated by single spaces.  We accept
 * runs of spaces and trailing spaces too (clients in the wild send them),
 * except in PASS, whose argument is the rest of the line as sent.
 */
#include <string.h>
#include <strings.h>

#include "pop3_parser.h"

struct cmd_def {
	const char *name;
	enum pop3_cmd cmd;
};

static const struct cmd_def cmd_defs[] = {
	{ "USER", POP3_CMD_USER }, { "PASS", POP3_CMD_PASS },
	{ "APOP", POP3_CMD_APOP }, { "AUTH", POP3_CMD_AUTH },
	{ "STLS", POP3_CMD_STLS }, { "CAPA", POP3_CMD_CAPA },
	{ "QUIT", POP3_CMD_QUIT }, { "STAT", POP3_CMD_STAT },
	{ "LIST", POP3_CMD_LIST }, { "RETR", POP3_CMD_RETR },
	{ "DELE", POP3_CMD_DELE }, { "NOOP", POP3_CMD_NOOP },
	{ "RSET", POP3_CMD_RSET }, { "TOP", POP3_CMD_TOP },
	{ "UIDL", POP3_CMD_UIDL },
};

const char *
pop3_cmd_name(enum pop3_cmd cmd)
{
	size_t i;

	for (i = 0; i < sizeof(cmd_defs) / sizeof(cmd_defs[0]); i++)
		if (cmd_defs[i].cmd == cmd)
			return cmd_defs[i].name;
	return "?";
}

int
pop3_cmd_allowed(enum pop3_state state, enum pop3_cmd cmd)
{
	switch (cmd) {
	case POP3_CMD_USER:
	case POP3_CMD_PASS:
	case POP3_CMD_APOP:
	case POP3_CMD_AUTH:
	case POP3_CMD_STLS:
		return state == POP3_STATE_AUTHORIZATION;
	case POP3_CMD_CAPA:
	case POP3_CMD_QUIT:
		return state != POP3_STATE_UPDATE;
	case POP3_CMD_STAT:
	case POP3_CMD_LIST:
	case POP3_CMD_RETR:
	case POP3_CMD_DELE:
	case POP3_CMD_NOOP:
	case POP3_CMD_RSET:
	case POP3_CMD_TOP:
	case POP3_CMD_UIDL:
		return state == POP3_STATE_TRANSACTION;
	case POP3_CMD_UNKNOWN:
		break;
	}
	return 0;
}

int
pop3_plaintext_allowed(int configured, int tls_active, int loopback)
{
	return configured || tls_active || loopback;
}

/* ---- tokens ----------------------------------------------------------- */

struct cursor {
	const char *p, *end;
};

static void
skip_spaces(struct cursor *c)
{
	while (c->p < c->end && *c->p == ' ')
		c->p++;
}

/* The next space-separated token, or 0 when none is left. */
static int
next_token(struct cursor *c, const char **tok, size_t *len)
{
	const char *start;

	skip_spaces(c);
	if (c->p == c->end)
		return 0;
	start = c->p;
	while (c->p < c->end && *c->p != ' ')
		c->p++;
	*tok = start;
	*len = (size_t)(c->p - start);
	return 1;
}

static int
at_end(struct cursor *c)
{
	skip_spaces(c);
	return c->p == c->end;
}

/* A decimal number without sign or leading '+', at most POP3_MAX_NUMBER. */
static int
parse_number(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > POP3_MAX_NUMBER)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* A message number: 1..POP3_MAX_NUMBER. */
static int
parse_msg(struct cursor *c, struct pop3_command *out)
{
	const char *tok;
	size_t len;

	if (!next_token(c, &tok, &len) || parse_number(tok, len, &out->msg) < 0
	    || out->msg == 0)
		return -1;
	out->has_msg = 1;
	return 0;
}

static enum pop3_cmd
lookup_keyword(const char *kw, size_t len)
{
	size_t i;

	if (len < 3 || len > POP3_MAX_KEYWORD)
		return POP3_CMD_UNKNOWN;
	for (i = 0; i < sizeof(cmd_defs) / sizeof(cmd_defs[0]); i++)
		if (strlen(cmd_defs[i].name) == len &&
		    strncasecmp(cmd_defs[i].name, kw, len) == 0)
			return cmd_defs[i].cmd;
	return POP3_CMD_UNKNOWN;
}

/* ---- arguments, per command ------------------------------------------- */

static enum pop3_parse_status
bad(const char **why, const char *text)
{
	*why = text;
	return POP3_PARSE_BAD_ARGS;
}

static enum pop3_parse_status
parse_args(struct cursor *c, struct pop3_command *out, const char **why)
{
	const char *tok;
	size_t len;

	switch (out->cmd) {
	case POP3_CMD_USER:
		if (!next_token(c, &out->arg, &out->arg_len) || !at_end(c))
			return bad(why, "USER takes one argument: the name");
		break;
	case POP3_CMD_PASS:
		/* The password is everything after "PASS ", spaces too. */
		if (c->p == c->end || *c->p != ' ' || c->p + 1 == c->end)
			return bad(why, "PASS takes one argument: the password");
		out->arg = c->p + 1;
		out->arg_len = (size_t)(c->end - out->arg);
		break;
	case POP3_CMD_APOP:
		if (!next_token(c, &out->arg, &out->arg_len) ||
		    !next_token(c, &out->arg2, &out->arg2_len) || !at_end(c))
			return bad(why, "APOP takes a name and a digest");
		break;
	case POP3_CMD_AUTH:
		/* AUTH alone lists the mechanisms (RFC 1734's form, which
		 * clients still probe with). */
		if (!next_token(c, &out->arg, &out->arg_len))
			break;
		if (next_token(c, &out->arg2, &out->arg2_len) && !at_end(c))
			return bad(why, "AUTH takes a mechanism and an "
			                "optional initial response");
		break;
	case POP3_CMD_LIST:
	case POP3_CMD_UIDL:
		if (at_end(c))
			break;
		if (parse_msg(c, out) < 0 || !at_end(c))
			return bad(why, "invalid message number");
		break;
	case POP3_CMD_RETR:
	case POP3_CMD_DELE:
		if (parse_msg(c, out) < 0 || !at_end(c))
			return bad(why, "invalid message number");
		break;
	case POP3_CMD_TOP:
		if (parse_msg(c, out) < 0)
			return bad(why, "invalid message number");
		if (!next_token(c, &tok, &len) ||
		    parse_number(tok, len, &out->lines) < 0 || !at_end(c))
			return bad(why, "TOP takes a message number and a "
			                "line count");
		break;
	case POP3_CMD_STLS:
	case POP3_CMD_CAPA:
	case POP3_CMD_QUIT:
	case POP3_CMD_STAT:
	case POP3_CMD_NOOP:
	case POP3_CMD_RSET:
		if (!at_end(c))
			return bad(why, "this command takes no argument");
		break;
	case POP3_CMD_UNKNOWN:
		break;
	}
	return POP3_PARSE_OK;
}

enum pop3_parse_status
pop3_parse(const char *line, size_t len, enum pop3_state state,
           struct pop3_command *out, const char **why)
{
	struct cursor c = { line, line + len };
	const char *kw;
	size_t kwlen;

	memset(out, 0, sizeof(*out));
	*why = "";
	if (!next_token(&c, &kw, &kwlen) ||
	    (out->cmd = lookup_keyword(kw, kwlen)) == POP3_CMD_UNKNOWN) {
		*why = "unknown command";
		return POP3_PARSE_UNKNOWN;
	}
	/* AUTH may carry a long initial response (RFC 5034 section 4);
	 * everything else keeps to RFC 2449's limit. */
	if (len > POP3_MAX_COMMAND && out->cmd != POP3_CMD_AUTH) {
		*why = "command line too long";
		return POP3_PARSE_TOO_LONG;
	}
	if (!pop3_cmd_allowed(state, out->cmd)) {
		*why = state == POP3_STATE_AUTHORIZATION
		           ? "not allowed before login"
		           : "not allowed after login";
		return POP3_PARSE_WRONG_STATE;
	}
	return parse_args(&c, out, why);
}
