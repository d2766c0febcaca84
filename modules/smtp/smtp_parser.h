/*
 * smtp_parser.h - the SMTP command parser: pure functions over one command
 * line, with no host and no session, so unit tests and the fuzzer drive
 * them directly.
 *
 * Grammar: RFC 5321 section 4.1 (commands, paths), RFC 1870 (SIZE),
 * RFC 6152 (BODY=8BITMIME), RFC 3461 (NOTIFY, ORCPT, RET, ENVID, xtext),
 * RFC 4954 (AUTH=), RFC 6531 (SMTPUTF8: UTF-8 in addresses), RFC 3030
 * (BDAT), RFC 4468 (BURL).
 */
#ifndef SMTP_PARSER_H
#define SMTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include <postern/relay.h>

/* RFC 5321 section 4.5.3.1: command line 512 octets with CRLF, path 256
 * octets with the angle brackets, local part 64, domain 255. */
#define SMTP_COMMAND_MAX 510
#define SMTP_PATH_MAX 256
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
/* RFC 3461: ENVID at most 100 octets, ORCPT address at most 500. */
#define SMTP_ENVID_MAX 100
#define SMTP_ORCPT_MAX 500

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BURL,       /* RFC 4468 (smtp_burl.c) */
	/* New verbs go above: smtp_state.c sizes its table by it, and a
	 * verb it does not list runs wherever commands are read (a row's
	 * default), so list it where it is out of sequence. */
	SMTP_VERB_COUNT
};

/* A reply for a syntax problem: static strings. */
struct smtp_error {
	unsigned code;
	const char *enhanced;
	const char *text;
};

struct smtp_command {
	enum smtp_verb verb;
	const char *arg;  /* after the verb and its space; "" when none */
	size_t arg_len;
};

/* Splits a command line (without CRLF) into verb and argument.  Returns
 * 0, or -1 with *err set (unknown verb: 500 5.5.1). */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *out,
                       struct smtp_error *err);

/* HELO/EHLO argument: a domain or an address literal.  Returns 0 with
 * the name copied into out (outlen > SMTP_DOMAIN_MAX + 2), or -1. */
int smtp_parse_helo(const char *arg, size_t len, char *out, size_t outlen,
                    struct smtp_error *err);

struct smtp_mail_args {
	char sender[SMTP_PATH_MAX + 1]; /* without <>; "" for <> */
	uint64_t size;                  /* SIZE=, 0: not given */
	enum postern_body_type body;
	int smtputf8;
	enum postern_dsn_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* decoded; "" when not given */
	int has_envid;
};

struct smtp_rcpt_args {
	char address[SMTP_PATH_MAX + 1]; /* without <> */
	unsigned notify;                 /* POSTERN_DSN_NOTIFY_* */
	char orcpt[SMTP_ORCPT_MAX + 32]; /* "type;decoded", "" if none */
	int has_orcpt;
	int postmaster;                  /* <Postmaster> without a domain */
};

/* What the session allows the parameters to use. */
struct smtp_param_policy {
	int utf8;    /* SMTPUTF8 offered */
	int dsn;     /* DSN offered */
	int binary;  /* BODY=BINARYMIME offered */
};

/* "FROM:<path> params" after MAIL.  Returns 0 or -1 with *err. */
int smtp_parse_mail(const char *arg, size_t len,
                    const struct smtp_param_policy *pol,
                    struct smtp_mail_args *out, struct smtp_error *err);

/* "TO:<path> params" after RCPT.  `utf8` says whether the transaction
 * is SMTPUTF8 (UTF-8 is then allowed in the address).  Returns 0 or -1. */
int smtp_parse_rcpt(const char *arg, size_t len,
                    const struct smtp_param_policy *pol, int utf8,
                    struct smtp_rcpt_args *out, struct smtp_error *err);

/* "size [LAST]" after BDAT.  Returns 0 or -1. */
int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, int *last,
                    struct smtp_error *err);

/* "absolute-URI [LAST]" after BURL (RFC 4468 3.5): the URL is
 * arg[0..*url_len), a scheme (RFC 3986 3.1), ':' and printable US-ASCII
 * without spaces.  Returns 0 or -1 (501 5.5.4).  Whether the URL names
 * anything is the resolver's to say. */
int smtp_parse_burl(const char *arg, size_t len, size_t *url_len, int *last,
                    struct smtp_error *err);

/* "mechanism [initial-response]" after AUTH.  mech gets the upper-cased
 * mechanism (mechlen > 20); *ir points into arg (NULL when absent). */
int smtp_parse_auth(const char *arg, size_t len, char *mech, size_t mechlen,
                    const char **ir, size_t *irlen, struct smtp_error *err);

/* Decodes xtext (RFC 3461 section 4): "+XX" hex escapes, printable
 * ASCII otherwise except '+' and '='.  Returns the decoded length, or -1
 * if malformed, if an escape decodes to anything but printable US-ASCII
 * (33..126: no control, space or 8-bit octet), or if longer than
 * outlen - 1 (out is NUL-terminated). */
int smtp_xtext_decode(const char *in, size_t len, char *out, size_t outlen);

/* 1 if s[0..len) is well-formed UTF-8 without C0/C1 controls that have
 * no place in an address. */
int smtp_utf8_valid(const unsigned char *s, size_t len);

/* Splits an address into local part and domain at its last '@' outside
 * quotes; *domain is NULL when there is none. */
void smtp_address_split(const char *addr, size_t *local_len,
                        const char **domain);

#endif /* SMTP_PARSER_H */
