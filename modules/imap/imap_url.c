/*
 * imap_url.c - IMAP URLs (RFC 5092) naming a message or a part of one on
 * this server, as CATENATE (RFC 4469) takes them: absolute
 * ("imap://user@host/INBOX;UIDVALIDITY=7/;UID=20/;SECTION=1.TEXT"),
 * relative to the server ("/INBOX/;UID=20") or to the selected mailbox
 * ("/;UID=20" is not a form RFC 5092 has; ";UID=20" is).  Percent
 * escapes are undone; keywords are case-insensitive.  A section is any
 * of RFC 3501 (RFC 5092 isection), HEADER.FIELDS (.NOT) lists too,
 * with at most IMAP_FIELDS_MAX names as FETCH takes.  For CATENATE
 * URLAUTH, a message list (";TYPE=LIST", a search) or a server and user
 * other than the session's are refused: they name nothing this command
 * may read.  imap_url_parse_auth takes the URLAUTH form (RFC 4467) of
 * any user of this server, for GENURLAUTH and URLFETCH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "imap.h"
#include "imap_url.h"

static int
url_fail(struct imap_url *u, const char *why)
{
	u->error = why;
	return -1;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s[0..len) with %XX undone, NUL-terminated, from `pool`; NULL when an
 * escape is broken or makes a NUL. */
static char *
pct_decode(const char *s, size_t len, postern_pool_t *pool)
{
	char *out = imap_host->pool_alloc(pool, len + 1), *w = out;
	size_t i;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (s[i] != '%') {
			*w++ = s[i];
			continue;
		}
		if (i + 2 >= len || (hi = hexval(s[i + 1])) < 0 ||
		    (lo = hexval(s[i + 2])) < 0 || (hi == 0 && lo == 0))
			return NULL;
		*w++ = (char)(hi * 16 + lo);
		i += 2;
	}
	*w = '\0';
	return out;
}

/* "KEY=value" at p (after the ';'), case-insensitive key. */
static int
url_key(const char *p, const char *end, const char *key, const char **val)
{
	size_t n = strlen(key);

	if ((size_t)(end - p) <= n || strncasecmp(p, key, n) != 0 ||
	    p[n] != '=')
		return 0;
	*val = p + n + 1;
	return 1;
}

/* A number of up to 10 digits from p to its end (the next '/', ';', '.'
 * or the end), 1..2^32-1 unless zero_ok. */
static int
url_number(const char **pp, const char *end, uint32_t *out, int zero_ok)
{
	const char *p = *pp;
	uint64_t v = 0;
	int digits = 0;

	while (p < end && *p >= '0' && *p <= '9' && digits < 11) {
		v = v * 10 + (uint64_t)(*p++ - '0');
		digits++;
	}
	if (digits == 0 || digits > 10 || v > UINT32_MAX || (!zero_ok && v == 0))
		return -1;
	*out = (uint32_t)v;
	*pp = p;
	return 0;
}

/* One header-fld-name (RFC 3501: an astring, here an atom or a quoted
 * string: a URL holds no literal) at *pp, into the pool; NULL when
 * there is none. */
static char *
url_field_name(const char **pp, postern_pool_t *pool)
{
	const char *p = *pp;
	char *name, *w;

	if (*p == '"') {
		/* Quoted: at most as long as what is left. */
		name = w = imap_host->pool_alloc(pool, strlen(p));
		for (p++; *p != '"'; p++) {
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			else if (*p == '\\' || *p == '\0' || *p == '\r' ||
			         *p == '\n' || (unsigned char)*p >= 0x80)
				return NULL;
			*w++ = *p;
		}
		*w = '\0';
		*pp = p + 1;
		return w == name ? NULL : name;
	}
	/* An atom; "]" is an astring's too. */
	while ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f &&
	       strchr("(){%*\"\\", *p) == NULL)
		p++;
	if (p == *pp)
		return NULL;
	name = imap_host->pool_strndup(pool, *pp, (size_t)(p - *pp));
	*pp = p;
	return name;
}

/* " (" header-fld-name *(SP header-fld-name) ")" at p, to the end of
 * the section: the list of HEADER.FIELDS (.NOT), at most
 * IMAP_FIELDS_MAX names as FETCH takes. */
static int
url_fields(struct imap_url *u, const char *p, postern_pool_t *pool)
{
	char **names;
	size_t n = 0;

	if (p[0] != ' ' || p[1] != '(')
		return url_fail(u, "bad HEADER.FIELDS list");
	p += 2;
	names = imap_host->pool_alloc(pool, IMAP_FIELDS_MAX * sizeof(*names));
	for (;;) {
		if (n == IMAP_FIELDS_MAX)
			return url_fail(u, "too many names in a HEADER.FIELDS "
			                   "list");
		if ((names[n++] = url_field_name(&p, pool)) == NULL)
			return url_fail(u, "bad HEADER.FIELDS list");
		if (*p == ')')
			break;
		if (*p++ != ' ')
			return url_fail(u, "bad HEADER.FIELDS list");
	}
	if (p[1] != '\0')
		return url_fail(u, "text after the HEADER.FIELDS list");
	u->fields.names = names;
	u->fields.nnames = n;
	return 0;
}

/* The section of ";SECTION=" (RFC 5092 isection: RFC 3501's section,
 * percent-decoded): part numbers, then HEADER, TEXT, MIME (after
 * numbers) or HEADER.FIELDS (.NOT) with its list, as FETCH takes them. */
static int
url_section(struct imap_url *u, const char *s, postern_pool_t *pool)
{
	const char *p = s;
	uint32_t n;

	while (*p >= '1' && *p <= '9') {
		if (u->nparts == IMAP_URL_MAX_PARTS ||
		    url_number(&p, p + strlen(p), &n, 0) < 0)
			return url_fail(u, "bad section");
		u->parts[u->nparts++] = n;
		if (*p != '.')
			break;
		p++;
	}
	if (*p == '\0')
		return *s != '\0' && p[-1] != '.' ? 0 :
		       url_fail(u, "bad section");
	if (strcasecmp(p, "HEADER") == 0)
		u->what = IMAP_SECTION_HEADER;
	else if (strcasecmp(p, "TEXT") == 0)
		u->what = IMAP_SECTION_TEXT;
	else if (strcasecmp(p, "MIME") == 0 && u->nparts > 0)
		u->what = IMAP_SECTION_MIME;
	else if (strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0) {
		u->what = IMAP_SECTION_HEADER;
		u->fields.which = 2;
		return url_fields(u, p + 17, pool);
	} else if (strncasecmp(p, "HEADER.FIELDS", 13) == 0) {
		u->what = IMAP_SECTION_HEADER;
		u->fields.which = 1;
		return url_fields(u, p + 13, pool);
	} else
		return url_fail(u, "section not supported in a URL");
	return 0;
}

/* "user@domain", lower-casing the domain (from the pool). */
static char *
url_join(const char *user, const char *domain, postern_pool_t *pool)
{
	size_t ul = strlen(user), dl = strlen(domain), i;
	char *s = imap_host->pool_alloc(pool, ul + dl + 2);

	memcpy(s, user, ul);
	s[ul] = '@';
	for (i = 0; i < dl; i++)
		s[ul + 1 + i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ?
		                       domain[i] - 'A' + 'a' : domain[i]);
	s[ul + 1 + dl] = '\0';
	return s;
}

/* "imap://" iserver "/": its user (";AUTH=" ignored) into u->owner,
 * NULL when none.  The host must be this one (its name, or a loopback
 * name), or, under a user without a domain, the user's mail domain:
 * "imap://alice@example.org/" names the login "alice@example.org", as
 * Dovecot and imaptest write URLs for such logins; whether that user
 * is one of ours is the caller's check (the session's own user, or
 * the auth service's lookup), as for any user a URL names. */
static int
url_server(struct imap_url *u, const char **pp, const char *end,
           postern_pool_t *pool)
{
	const char *p = *pp, *slash, *at, *semi, *colon;
	char host[256], me[256];
	size_t hl;

	if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL)
		return url_fail(u, "no mailbox in the URL");
	if ((at = memchr(p, '@', (size_t)(slash - p))) != NULL) {
		semi = memchr(p, ';', (size_t)(at - p));
		u->owner = pct_decode(p, (size_t)((semi != NULL ? semi : at) -
		                                  p), pool);
		if (u->owner == NULL || u->owner[0] == '\0')
			return url_fail(u, "bad user in the URL");
		p = at + 1;
	}
	/* The host must be this one: its name, or a loopback name. */
	colon = memchr(p, ':', (size_t)(slash - p));
	hl = (size_t)((colon != NULL ? colon : slash) - p);
	if (hl == 0 || hl >= sizeof(host))
		return url_fail(u, "bad host in the URL");
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (gethostname(me, sizeof(me)) < 0)
		me[0] = '\0';
	me[sizeof(me) - 1] = '\0';
	if (strcasecmp(host, me) != 0 && strcasecmp(host, "localhost") != 0 &&
	    strcmp(host, "127.0.0.1") != 0 && strcmp(host, "[::1]") != 0) {
		if (u->owner == NULL || strchr(u->owner, '@') != NULL ||
		    colon != NULL)
			return url_fail(u, "the URL names another server");
		u->owner = url_join(u->owner, host, pool);
	}
	*pp = slash;
	return 0;
}

/* Two digits at s; -1 when not. */
static int
two_digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

int
imap_url_datetime(const char *s, size_t len, int64_t *out)
{
	char buf[64];
	struct tm tm = { 0 };
	const char *p;
	int year, off = 0, sign, oh, om;
	time_t t;

	if (len < 20 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	p = buf;
	if (two_digits(p) < 0 || two_digits(p + 2) < 0 || p[4] != '-' ||
	    p[7] != '-' || (p[10] != 'T' && p[10] != 't') || p[13] != ':' ||
	    p[16] != ':')
		return -1;
	year = two_digits(p) * 100 + two_digits(p + 2);
	tm.tm_year = year - 1900;
	tm.tm_mon = two_digits(p + 5) - 1;
	tm.tm_mday = two_digits(p + 8);
	tm.tm_hour = two_digits(p + 11);
	tm.tm_min = two_digits(p + 14);
	tm.tm_sec = two_digits(p + 17);
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 ||
	    tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
	    tm.tm_sec > 60)
		return -1;
	p += 19;
	if (*p == '.') {         /* time-secfrac: ignored */
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && (oh = two_digits(p + 1)) >= 0 &&
	           p[3] == ':' && (om = two_digits(p + 4)) >= 0 &&
	           p[6] == '\0' && oh < 24 && om < 60) {
		sign = *p == '-' ? -1 : 1;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -1;
	}
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = (int64_t)t - off;
	return 0;
}

/* The access identifier (RFC 4467 3, RFC 5092 access) a[0..len). */
static int
url_access(struct imap_url *u, const char *a, size_t len,
           postern_pool_t *pool)
{
	if (len == 9 && strncasecmp(a, "anonymous", 9) == 0) {
		u->access = IMAP_URL_ACCESS_ANONYMOUS;
		return 0;
	}
	if (len == 8 && strncasecmp(a, "authuser", 8) == 0) {
		u->access = IMAP_URL_ACCESS_AUTHUSER;
		return 0;
	}
	if (len > 5 && strncasecmp(a, "user+", 5) == 0) {
		u->access = IMAP_URL_ACCESS_USER;
		a += 5;
		len -= 5;
	} else if (len > 7 && strncasecmp(a, "submit+", 7) == 0) {
		u->access = IMAP_URL_ACCESS_SUBMIT;
		a += 7;
		len -= 7;
	} else {
		return url_fail(u, "bad access identifier");
	}
	if ((u->access_user = pct_decode(a, len, pool)) == NULL)
		return url_fail(u, "bad access identifier");
	return 0;
}

/* [";EXPIRE=" date-time] ";URLAUTH=" access [":" mech ":" token] to
 * the end. */
static int
url_urlauth(struct imap_url *u, const char *url, const char *p,
            const char *end, postern_pool_t *pool)
{
	const char *val, *q, *t;
	size_t i;

	if (p < end && *p == ';' && url_key(p + 1, end, "EXPIRE", &val)) {
		for (q = val; q < end && *q != ';'; q++)
			;
		if (imap_url_datetime(val, (size_t)(q - val), &u->expire) < 0 ||
		    u->expire <= 0)
			return url_fail(u, "bad EXPIRE");
		p = q;
	}
	if (p >= end || *p != ';' || !url_key(p + 1, end, "URLAUTH", &val))
		return url_fail(u, "not a URLAUTH URL (;URLAUTH=)");
	for (q = val; q < end && *q != ':'; q++)
		;
	if (url_access(u, val, (size_t)(q - val), pool) < 0)
		return -1;
	u->rump_len = (size_t)(q - url);
	if (q == end)
		return 0;
	/* ":" uauth-mechanism ":" enc-urlauth */
	val = q + 1;
	if ((t = memchr(val, ':', (size_t)(end - val))) == NULL || t == val)
		return url_fail(u, "bad URLAUTH verifier");
	for (q = val; q < t; q++)
		if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
		      (*q >= '0' && *q <= '9') || *q == '-' || *q == '.'))
			return url_fail(u, "bad URLAUTH mechanism");
	t++;
	if (end - t < 32)
		return url_fail(u, "URLAUTH token too short");
	for (i = 0; t + i < end; i++)
		if (hexval(t[i]) < 0)
			return url_fail(u, "bad URLAUTH token");
	u->mech = imap_host->pool_strndup(pool, val, (size_t)(t - 1 - val));
	u->token = imap_host->pool_strndup(pool, t, (size_t)(end - t));
	return 0;
}

#define URL_AUTH 0x1  /* the URLAUTH form */

static int url_parse(struct imap_url *u, const char *url, size_t len,
                     const char *user, int selected, unsigned flags,
                     postern_pool_t *pool);

int
imap_url_parse(struct imap_url *u, const char *url, size_t len,
               const char *user, int selected, postern_pool_t *pool)
{
	return url_parse(u, url, len, user, selected, 0, pool);
}

int
imap_url_parse_auth(struct imap_url *u, const char *url, size_t len,
                    postern_pool_t *pool)
{
	return url_parse(u, url, len, NULL, 0, URL_AUTH, pool);
}

/* Either form: `user` (CATENATE's) must own an absolute URL; with
 * URL_AUTH the URL must be absolute with a user and end in URLAUTH. */
static int
url_parse(struct imap_url *u, const char *url, size_t len,
          const char *user, int selected, unsigned flags,
          postern_pool_t *pool)
{
	const char *p = url, *end = url + len, *q, *val;
	char *dec;

	memset(u, 0, sizeof(*u));
	if (memchr(url, '\0', len) != NULL)
		return url_fail(u, "NUL in the URL");
	if (len > 7 && strncasecmp(p, "imap://", 7) == 0) {
		p += 7;
		if (url_server(u, &p, end, pool) < 0)
			return -1;
		if (user != NULL && u->owner != NULL &&
		    strcmp(u->owner, user) != 0)
			return url_fail(u, "the URL names another user");
	}
	if ((flags & URL_AUTH) && u->owner == NULL)
		return url_fail(u, "a URLAUTH URL is absolute and names its "
		                   "user");
	if (p < end && *p == '/') {
		/* enc-mailbox [";UIDVALIDITY=" n] "/" */
		p++;
		for (q = p; q < end && *q != ';' && !(*q == '/' && q + 1 < end &&
		                                     q[1] == ';'); q++)
			;
		if (q == p || (u->mailbox = pct_decode(p, (size_t)(q - p),
		                                      pool)) == NULL)
			return url_fail(u, "bad mailbox in the URL");
		p = q;
		if (p < end && *p == ';') {
			if (!url_key(p + 1, end, "UIDVALIDITY", &val) ||
			    url_number(&val, end, &u->uidvalidity, 0) < 0)
				return url_fail(u, "bad UIDVALIDITY");
			p = val;
		}
		if (p >= end || *p != '/')
			return url_fail(u, "the URL names no message");
		p++;
	} else if (selected) {
		u->mailbox = NULL;      /* the selected mailbox */
	} else {
		return url_fail(u, "a relative URL needs a selected mailbox");
	}
	/* ";UID=" n */
	if (p >= end || *p != ';' || !url_key(p + 1, end, "UID", &val) ||
	    url_number(&val, end, &u->uid, 0) < 0)
		return url_fail(u, "the URL names no message (;UID=)");
	p = val;
	if (p + 1 < end && *p == '/' && p[1] == ';' &&
	    url_key(p + 2, end, "SECTION", &val)) {
		/* It ends at ";" (EXPIRE, URLAUTH) or "/;" (PARTIAL): a
		 * "/" is a bchar, and may be in a field name. */
		for (q = val; q < end && *q != ';' &&
		              !(*q == '/' && q + 1 < end && q[1] == ';'); q++)
			;
		if ((dec = pct_decode(val, (size_t)(q - val), pool)) == NULL ||
		    url_section(u, dec, pool) < 0)
			return url_fail(u, u->error != NULL ? u->error :
			                "bad section");
		u->has_section = 1;
		p = q;
	}
	if (p + 1 < end && *p == '/' && p[1] == ';' &&
	    url_key(p + 2, end, "PARTIAL", &val)) {
		if (url_number(&val, end, &u->pstart, 1) < 0)
			return url_fail(u, "bad PARTIAL");
		u->plen = UINT32_MAX;
		if (val < end && *val == '.' &&
		    (++val, url_number(&val, end, &u->plen, 0) < 0))
			return url_fail(u, "bad PARTIAL");
		u->partial = 1;
		p = val;
	}
	if (flags & URL_AUTH)
		return url_urlauth(u, url, p, end, pool);
	if (p < end)
		return url_fail(u, "URL form not supported (URLAUTH, "
		                   "expiry, or text after the message)");
	return 0;
}
