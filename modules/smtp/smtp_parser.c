/*
 * smtp_parser.c - the SMTP command parser (see smtp_parser.h).
 *
 * Every function reads a bounded input it is given a length for (lines
 * are not NUL-terminated and may hold NULs), writes only into buffers of
 * the sizes it is given, and reports what was wrong as an SMTP reply.
 */
#include "smtp_parser.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Replies for syntax errors (RFC 5321 4.2.2, RFC 3463). */
#define ERR(e, c, x, t)                                                  \
	do {                                                             \
		(e)->code = (c);                                         \
		(e)->enhanced = (x);                                     \
		(e)->text = (t);                                         \
	} while (0)

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO },
	{ "MAIL", SMTP_VERB_MAIL }, { "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA }, { "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT }, { "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN }, { "HELP", SMTP_VERB_HELP },
	{ "STARTTLS", SMTP_VERB_STARTTLS }, { "AUTH", SMTP_VERB_AUTH },
	{ "BURL", SMTP_VERB_BURL },
};

int
smtp_parse_command(const char *line, size_t len, struct smtp_command *out,
                   struct smtp_error *err)
{
	size_t i, n;

	for (n = 0; n < len && line[n] != ' '; n++)
		;
	out->verb = SMTP_VERB_UNKNOWN;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == n &&
		    strncasecmp(line, verbs[i].name, n) == 0) {
			out->verb = verbs[i].verb;
			break;
		}
	}
	if (out->verb == SMTP_VERB_UNKNOWN) {
		ERR(err, 500, "5.5.1", "command not recognized");
		return -1;
	}
	/* Trailing spaces are common (and harmless); drop them. */
	while (len > n && line[len - 1] == ' ')
		len--;
	out->arg = n < len ? line + n + 1 : "";
	out->arg_len = n < len ? len - n - 1 : 0;
	return 0;
}

/* ---- characters ------------------------------------------------------- */

/* RFC 5322 atext. */
static int
is_atext(unsigned char c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static int
is_ldh(unsigned char c)
{
	return isalnum(c) || c == '-';
}

/* Length of the UTF-8 sequence at s (len bytes left), or 0 if it is not
 * a well-formed non-ASCII character. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
	    (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

int
smtp_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if (s[i] < 0x80) {
			if (s[i] < 0x20 || s[i] == 0x7f)
				return 0;
			i++;
			continue;
		}
		if ((n = utf8_seq(s + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* ---- paths ------------------------------------------------------------ */

/* Each scanner returns the length of what it matched at s (0: no match). */

static size_t
scan_dot_string(const unsigned char *s, size_t len, int utf8)
{
	size_t i = 0, atom = 0, n;

	while (i < len) {
		if (is_atext(s[i])) {
			i++;
			atom++;
		} else if (utf8 && s[i] >= 0x80 &&
		           (n = utf8_seq(s + i, len - i)) > 0) {
			i += n;
			atom++;
		} else if (s[i] == '.' && atom > 0 && i + 1 < len) {
			i++;
			atom = 0;
		} else
			break;
	}
	/* An atom may not be empty: no leading, trailing or double dot. */
	if (atom == 0)
		return 0;
	return i;
}

static size_t
scan_quoted_string(const unsigned char *s, size_t len, int utf8)
{
	size_t i = 1, n;

	if (len < 2 || s[0] != '"')
		return 0;
	while (i < len) {
		if (s[i] == '"')
			return i + 1;
		if (s[i] == '\\') {
			if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
				return 0;
			i += 2;
		} else if (s[i] >= 32 && s[i] <= 126) {
			i++;
		} else if (utf8 && s[i] >= 0x80 &&
		           (n = utf8_seq(s + i, len - i)) > 0) {
			i += n;
		} else
			return 0;
	}
	return 0;
}

static size_t
scan_domain(const unsigned char *s, size_t len, int utf8)
{
	size_t i = 0, label = 0, n;
	int last_hyphen = 0;

	while (i < len) {
		if (is_ldh(s[i])) {
			/* RFC 1035: labels of 63 octets at most. */
			if ((label == 0 && s[i] == '-') || label == 63)
				return 0;
			last_hyphen = s[i] == '-';
			i++;
			label++;
		} else if (utf8 && s[i] >= 0x80 &&
		           (n = utf8_seq(s + i, len - i)) > 0) {
			last_hyphen = 0;
			i += n;
			label++;
		} else if (s[i] == '.' && label > 0 && !last_hyphen) {
			i++;
			label = 0;
		} else
			break;
	}
	if (label == 0 || last_hyphen || i > SMTP_DOMAIN_MAX)
		return 0;
	return i;
}

/* "[" IPv4 / "IPv6:" ... / tag ":" dcontent "]": the general form is
 * accepted loosely (printable, no brackets, no backslash). */
static size_t
scan_address_literal(const unsigned char *s, size_t len)
{
	size_t i;

	if (len < 3 || s[0] != '[')
		return 0;
	for (i = 1; i < len && s[i] != ']'; i++)
		if (s[i] < 33 || s[i] > 126 || s[i] == '[' || s[i] == '\\')
			return 0;
	if (i >= len || i == 1)
		return 0;
	return i + 1;
}

/* Mailbox = Local-part "@" (Domain / address-literal). */
static size_t
scan_mailbox(const unsigned char *s, size_t len, int utf8)
{
	size_t local, dom;

	local = s[0] == '"' ? scan_quoted_string(s, len, utf8)
	                    : scan_dot_string(s, len, utf8);
	if (local == 0 || local > SMTP_LOCAL_MAX || local >= len ||
	    s[local] != '@')
		return 0;
	if (local + 1 < len && s[local + 1] == '[')
		dom = scan_address_literal(s + local + 1, len - local - 1);
	else
		dom = scan_domain(s + local + 1, len - local - 1, utf8);
	if (dom == 0)
		return 0;
	return local + 1 + dom;
}

/* A-d-l = At-domain *( "," At-domain ): a source route, accepted and
 * ignored (RFC 5321 section 4.1.2 and appendix C). */
static size_t
scan_source_route(const unsigned char *s, size_t len)
{
	size_t i = 0, d;

	for (;;) {
		if (i >= len || s[i] != '@')
			return 0;
		if ((d = scan_domain(s + i + 1, len - i - 1, 0)) == 0)
			return 0;
		i += 1 + d;
		if (i < len && s[i] == ':')
			return i + 1;
		if (i >= len || s[i] != ',')
			return 0;
		i++;
	}
}

enum path_kind {
	PATH_REVERSE,   /* MAIL: "<>" allowed */
	PATH_FORWARD,   /* RCPT: "<Postmaster>" allowed */
};

/* Parses "<...>" at the start of s; copies the mailbox (or "" for <>)
 * into out.  Returns the bytes consumed, or 0 if malformed.
 * *postmaster is set for a bare <Postmaster>. */
static size_t
parse_path(const char *str, size_t len, enum path_kind kind, int utf8,
           char *out, size_t outlen, int *postmaster)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 1, route = 0, mb;

	*postmaster = 0;
	if (len < 2 || s[0] != '<')
		return 0;
	if (s[1] == '>') {
		if (kind != PATH_REVERSE)
			return 0;
		out[0] = '\0';
		return 2;
	}
	if (kind == PATH_FORWARD && len >= 12 &&
	    strncasecmp(str + 1, "postmaster>", 11) == 0) {
		memcpy(out, "postmaster", 11);
		*postmaster = 1;
		return 12;
	}
	if (s[1] == '@' && (route = scan_source_route(s + 1, len - 1)) == 0)
		return 0;
	i += route;
	if (i >= len || (mb = scan_mailbox(s + i, len - i, utf8)) == 0)
		return 0;
	if (i + mb >= len || s[i + mb] != '>' || mb + 2 > SMTP_PATH_MAX ||
	    mb + 1 > outlen)
		return 0;
	memcpy(out, str + i, mb);
	out[mb] = '\0';
	return i + mb + 1;
}

void
smtp_address_split(const char *addr, size_t *local_len, const char **domain)
{
	const char *p, *at = NULL;
	int quoted = 0;

	for (p = addr; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '@')
			at = p;
	}
	*local_len = at != NULL ? (size_t)(at - addr) : strlen(addr);
	*domain = at != NULL ? at + 1 : NULL;
}

/* ---- xtext and parameters --------------------------------------------- */

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 3461: upper-case hex only */
}

int
smtp_xtext_decode(const char *in, size_t len, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (o + 1 >= outlen)
			return -1;
		if (c == '+') {
			if (i + 2 >= len)
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			/* What it encodes must be printable US-ASCII too
			 * (RFC 3461 4, 4.2): a control, a space or 8 bits
			 * would go into a DSN's header fields as they are.
			 * '+' and '=' are fine: they are what +2B and +3D
			 * are for. */
			if (c < 33 || c > 126)
				return -1;
		} else if (c < 33 || c > 126 || c == '=')
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

struct param {
	const char *key, *value; /* value NULL when absent */
	size_t key_len, value_len;
};

/* Splits the next " KEY[=VALUE]" off *s.  Returns 1 with *p, 0 at the
 * end, -1 if malformed. */
static int
next_param(const char **s, const char *end, int utf8, struct param *p)
{
	const unsigned char *q = (const unsigned char *)*s;
	const unsigned char *e = (const unsigned char *)end;
	size_t n;

	while (q < e && *q == ' ')
		q++;
	if (q == e) {
		*s = (const char *)q;
		return 0;
	}
	p->key = (const char *)q;
	if (!isalnum(*q))
		return -1;
	while (q < e && (isalnum(*q) || *q == '-'))
		q++;
	p->key_len = (size_t)((const char *)q - p->key);
	p->value = NULL;
	p->value_len = 0;
	if (q < e && *q == '=') {
		p->value = (const char *)++q;
		while (q < e && *q != ' ') {
			if (*q >= 33 && *q <= 126 && *q != '=')
				q++;
			else if (utf8 && *q >= 0x80 &&
			         (n = utf8_seq(q, (size_t)(e - q))) > 0)
				q += n;
			else
				return -1;
		}
		p->value_len = (size_t)((const char *)q - p->value);
		if (p->value_len == 0)
			return -1;
	}
	if (q < e && *q != ' ')
		return -1;
	*s = (const char *)q;
	return 1;
}

static int
key_is(const struct param *p, const char *name)
{
	return strlen(name) == p->key_len &&
	       strncasecmp(p->key, name, p->key_len) == 0;
}

static int
value_is(const struct param *p, const char *v)
{
	return p->value != NULL && strlen(v) == p->value_len &&
	       strncasecmp(p->value, v, p->value_len) == 0;
}

static int
parse_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
ascii_only(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* Skips "FROM:" / "TO:" and the spaces some clients put after the colon
 * (RFC 5321 forbids them, but every MTA accepts them). */
static const char *
skip_keyword(const char *arg, size_t len, const char *kw)
{
	size_t n = strlen(kw);
	const char *p;

	if (len < n || strncasecmp(arg, kw, n) != 0)
		return NULL;
	for (p = arg + n; p < arg + len && *p == ' '; p++)
		;
	return p;
}

static int
mail_param(const struct param *p, const struct smtp_param_policy *pol,
           struct smtp_mail_args *out, struct smtp_error *err)
{
	if (key_is(p, "SIZE")) {
		if (p->value == NULL ||
		    parse_number(p->value, p->value_len, &out->size) < 0)
			goto syntax;
	} else if (key_is(p, "BODY")) {
		if (value_is(p, "7BIT"))
			out->body = POSTERN_BODY_7BIT;
		else if (value_is(p, "8BITMIME"))
			out->body = POSTERN_BODY_8BITMIME;
		else if (pol->binary && value_is(p, "BINARYMIME"))
			out->body = POSTERN_BODY_BINARYMIME;
		else
			goto unknown_value;
	} else if (key_is(p, "SMTPUTF8") && pol->utf8) {
		if (p->value != NULL)
			goto syntax;
		out->smtputf8 = 1;
	} else if (key_is(p, "RET") && pol->dsn) {
		if (value_is(p, "FULL"))
			out->ret = POSTERN_DSN_RET_FULL;
		else if (value_is(p, "HDRS"))
			out->ret = POSTERN_DSN_RET_HDRS;
		else
			goto syntax;
	} else if (key_is(p, "ENVID") && pol->dsn) {
		if (p->value == NULL || out->has_envid ||
		    smtp_xtext_decode(p->value, p->value_len, out->envid,
		                      sizeof(out->envid)) < 0)
			goto syntax;
		out->has_envid = 1;
	} else if (key_is(p, "AUTH")) {
		/* RFC 4954 section 5: the submitter's identity; we trust
		 * only our own authentication, so it is checked for syntax
		 * and not passed on. */
		char tmp[SMTP_PATH_MAX + 1];

		if (p->value == NULL ||
		    smtp_xtext_decode(p->value, p->value_len, tmp,
		                      sizeof(tmp)) < 0)
			goto syntax;
	} else {
		ERR(err, 555, "5.5.4", "MAIL FROM parameter not recognized");
		return -1;
	}
	return 0;
unknown_value:
	ERR(err, 555, "5.5.4", "BODY value not supported");
	return -1;
syntax:
	ERR(err, 501, "5.5.4", "syntax error in MAIL FROM parameters");
	return -1;
}

int
smtp_parse_mail(const char *arg, size_t len,
                const struct smtp_param_policy *pol,
                struct smtp_mail_args *out, struct smtp_error *err)
{
	const char *p, *end = arg + len;
	struct param prm;
	size_t used;
	int pm, rc;

	memset(out, 0, sizeof(*out));
	if ((p = skip_keyword(arg, len, "FROM:")) == NULL) {
		ERR(err, 501, "5.5.4", "syntax: MAIL FROM:<address>");
		return -1;
	}
	/* UTF-8 in the path needs SMTPUTF8 among the parameters, which come
	 * after it: try ASCII first, UTF-8 only if the session offers it
	 * and the parameter is there (checked below). */
	used = parse_path(p, (size_t)(end - p), PATH_REVERSE, pol->utf8,
	                  out->sender, sizeof(out->sender), &pm);
	if (used == 0) {
		ERR(err, 501, "5.1.7", "bad sender address syntax");
		return -1;
	}
	p += used;
	if (p < end && *p != ' ') {
		ERR(err, 501, "5.1.7", "bad sender address syntax");
		return -1;
	}
	while ((rc = next_param(&p, end, pol->utf8, &prm)) > 0)
		if (mail_param(&prm, pol, out, err) < 0)
			return -1;
	if (rc < 0) {
		ERR(err, 501, "5.5.4", "syntax error in MAIL FROM parameters");
		return -1;
	}
	if (!out->smtputf8 && !ascii_only(out->sender)) {
		ERR(err, 553, "5.6.7", "non-ASCII address without SMTPUTF8");
		return -1;
	}
	return 0;
}

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY. */
static int
parse_notify(const struct param *p, unsigned *out)
{
	const char *s = p->value, *end = p->value + p->value_len, *comma;
	unsigned bits = 0, bit;
	size_t n;

	while (s < end) {
		comma = memchr(s, ',', (size_t)(end - s));
		n = comma != NULL ? (size_t)(comma - s) : (size_t)(end - s);
		if (n == 5 && strncasecmp(s, "NEVER", 5) == 0)
			bit = POSTERN_DSN_NOTIFY_NEVER;
		else if (n == 7 && strncasecmp(s, "SUCCESS", 7) == 0)
			bit = POSTERN_DSN_NOTIFY_SUCCESS;
		else if (n == 7 && strncasecmp(s, "FAILURE", 7) == 0)
			bit = POSTERN_DSN_NOTIFY_FAILURE;
		else if (n == 5 && strncasecmp(s, "DELAY", 5) == 0)
			bit = POSTERN_DSN_NOTIFY_DELAY;
		else
			return -1;
		if (bits & bit)
			return -1;
		bits |= bit;
		if (comma == NULL)
			break;
		s = comma + 1;
		if (s == end)
			return -1;
	}
	if ((bits & POSTERN_DSN_NOTIFY_NEVER) && bits != POSTERN_DSN_NOTIFY_NEVER)
		return -1;
	*out = bits;
	return 0;
}

/* ORCPT=addr-type ";" xtext: kept as "type;decoded". */
static int
parse_orcpt(const struct param *p, char *out, size_t outlen)
{
	const char *semi = memchr(p->value, ';', p->value_len);
	size_t tlen, i;

	if (semi == NULL || semi == p->value)
		return -1;
	tlen = (size_t)(semi - p->value);
	if (tlen + 2 > outlen)
		return -1;
	for (i = 0; i < tlen; i++)
		if (!isalnum((unsigned char)p->value[i]) && p->value[i] != '-')
			return -1;
	memcpy(out, p->value, tlen + 1);
	if (smtp_xtext_decode(semi + 1,
	                      p->value_len - tlen - 1, out + tlen + 1,
	                      outlen - tlen - 1) <= 0)
		return -1;
	return 0;
}

static int
rcpt_param(const struct param *p, const struct smtp_param_policy *pol,
           struct smtp_rcpt_args *out, struct smtp_error *err)
{
	if (key_is(p, "NOTIFY") && pol->dsn) {
		if (p->value == NULL || out->notify != 0 ||
		    parse_notify(p, &out->notify) < 0)
			goto syntax;
	} else if (key_is(p, "ORCPT") && pol->dsn) {
		if (p->value == NULL || out->has_orcpt ||
		    parse_orcpt(p, out->orcpt, sizeof(out->orcpt)) < 0)
			goto syntax;
		out->has_orcpt = 1;
	} else {
		ERR(err, 555, "5.5.4", "RCPT TO parameter not recognized");
		return -1;
	}
	return 0;
syntax:
	ERR(err, 501, "5.5.4", "syntax error in RCPT TO parameters");
	return -1;
}

int
smtp_parse_rcpt(const char *arg, size_t len,
                const struct smtp_param_policy *pol, int utf8,
                struct smtp_rcpt_args *out, struct smtp_error *err)
{
	const char *p, *end = arg + len;
	struct param prm;
	size_t used;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((p = skip_keyword(arg, len, "TO:")) == NULL) {
		ERR(err, 501, "5.5.4", "syntax: RCPT TO:<address>");
		return -1;
	}
	used = parse_path(p, (size_t)(end - p), PATH_FORWARD, pol->utf8,
	                  out->address, sizeof(out->address),
	                  &out->postmaster);
	if (used == 0 || (p + used < end && p[used] != ' ')) {
		ERR(err, 501, "5.1.3", "bad recipient address syntax");
		return -1;
	}
	if (!utf8 && !ascii_only(out->address)) {
		ERR(err, 553, "5.6.7", "non-ASCII address without SMTPUTF8");
		return -1;
	}
	p += used;
	while ((rc = next_param(&p, end, utf8, &prm)) > 0)
		if (rcpt_param(&prm, pol, out, err) < 0)
			return -1;
	if (rc < 0) {
		ERR(err, 501, "5.5.4", "syntax error in RCPT TO parameters");
		return -1;
	}
	return 0;
}

int
smtp_parse_helo(const char *arg, size_t len, char *out, size_t outlen,
                struct smtp_error *err)
{
	const unsigned char *s = (const unsigned char *)arg;
	size_t n;

	if (len == 0) {
		ERR(err, 501, "5.5.4", "syntax: EHLO hostname");
		return -1;
	}
	if (s[0] == '[')
		n = scan_address_literal(s, len);
	else
		n = scan_domain(s, len, 1);
	/* Some clients append a trailing dot or a comment: accept a domain
	 * followed by anything printable, but keep only the name. */
	if (n == 0 || (n < len && s[n] != ' ' && s[n] != '.') ||
	    n + 1 > outlen) {
		ERR(err, 501, "5.5.4", "invalid domain name");
		return -1;
	}
	memcpy(out, arg, n);
	out[n] = '\0';
	return 0;
}

/* A chunk's arguments, BDAT's and BURL's: "first [LAST]" (RFC 3030 3,
 * RFC 4468 3.5).  The first one's length in *n; 0, or -1 when anything
 * but " LAST" follows it. */
static int
split_last(const char *arg, size_t len, size_t *n, int *last)
{
	const char *sp = memchr(arg, ' ', len);

	*n = sp != NULL ? (size_t)(sp - arg) : len;
	*last = sp != NULL;
	return sp == NULL || (len - *n - 1 == 4 &&
	                      strncasecmp(sp + 1, "LAST", 4) == 0) ? 0 : -1;
}

int
smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, int *last,
                struct smtp_error *err)
{
	size_t n;

	if (split_last(arg, len, &n, last) < 0 ||
	    parse_number(arg, n, size) < 0) {
		ERR(err, 501, "5.5.4", "syntax: BDAT size [LAST]");
		return -1;
	}
	return 0;
}

/* absolute-URI = scheme ":" hier-part [ "?" query ]; scheme = ALPHA
 * *( ALPHA / DIGIT / "+" / "-" / "." ).  The rest is only checked for
 * octets no URI has (controls, spaces, 8-bit): the resolver parses it. */
static int
absolute_uri(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !isalpha((unsigned char)s[0]))
		return 0;
	for (i = 1; i < len && s[i] != ':'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' &&
		    s[i] != '-' && s[i] != '.')
			return 0;
	if (i == len)
		return 0;
	for (; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

int
smtp_parse_burl(const char *arg, size_t len, size_t *url_len, int *last,
                struct smtp_error *err)
{
	if (split_last(arg, len, url_len, last) < 0 ||
	    !absolute_uri(arg, *url_len)) {
		ERR(err, 501, "5.5.4", "syntax: BURL absolute-URI [LAST]");
		return -1;
	}
	return 0;
}

int
smtp_parse_auth(const char *arg, size_t len, char *mech, size_t mechlen,
                const char **ir, size_t *irlen, struct smtp_error *err)
{
	size_t i;

	for (i = 0; i < len && arg[i] != ' '; i++) {
		if (i + 1 >= mechlen ||
		    !(isalnum((unsigned char)arg[i]) || arg[i] == '-' ||
		      arg[i] == '_'))
			goto syntax;
		mech[i] = (char)toupper((unsigned char)arg[i]);
	}
	if (i == 0)
		goto syntax;
	mech[i] = '\0';
	*ir = NULL;
	*irlen = 0;
	if (i < len) {
		*ir = arg + i + 1;
		*irlen = len - i - 1;
		if (*irlen == 0 || memchr(*ir, ' ', *irlen) != NULL)
			goto syntax;
	}
	return 0;
syntax:
	ERR(err, 501, "5.5.4", "syntax: AUTH mechanism [initial-response]");
	return -1;
}
