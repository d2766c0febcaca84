/*
 * imap_url.c - IMAP URLs (RFC 5092) naming a message or a part of one on
 * this server, as CATENATE (RFC 4469) takes them: absolute
 * ("imap://user@host/INBOX;UIDVALIDITY=7/;UID=20/;SECTION=1.TEXT"),
 * relative to the server ("/INBOX/;UID=20") or to the selected mailbox
 * ("/;UID=20" is not a form RFC 5092 has; ";UID=20" is).  Percent
 * escapes are undone; keywords are case-insensitive.  URLAUTH, a
 * message list (";TYPE=LIST", a search) or a server and user other than
 * the session's are refused: they name nothing this command may read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* The section of ";SECTION=": part numbers, then HEADER, TEXT or
 * MIME (after numbers); HEADER.FIELDS is not taken. */
static int
url_section(struct imap_url *u, const char *s)
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
	else
		return url_fail(u, "section not supported in a URL");
	return 0;
}

/* "imap://" iserver "/": the session's user (";AUTH=" ignored) on this
 * host. */
static int
url_server(struct imap_url *u, const char **pp, const char *end,
           const char *user, postern_pool_t *pool)
{
	const char *p = *pp, *slash, *at, *semi;
	char host[256], *name;

	if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL)
		return url_fail(u, "no mailbox in the URL");
	if ((at = memchr(p, '@', (size_t)(slash - p))) != NULL) {
		semi = memchr(p, ';', (size_t)(at - p));
		name = pct_decode(p, (size_t)((semi != NULL ? semi : at) - p),
		                  pool);
		if (name == NULL || strcmp(name, user) != 0)
			return url_fail(u, "the URL names another user");
		p = at + 1;
	}
	/* The host must be this one: its name, or a loopback name. */
	{
		const char *colon = memchr(p, ':', (size_t)(slash - p));
		size_t hl = (size_t)((colon != NULL ? colon : slash) - p);
		char me[256];

		if (hl == 0 || hl >= sizeof(host))
			return url_fail(u, "bad host in the URL");
		memcpy(host, p, hl);
		host[hl] = '\0';
		if (gethostname(me, sizeof(me)) < 0)
			me[0] = '\0';
		me[sizeof(me) - 1] = '\0';
		if (strcasecmp(host, me) != 0 &&
		    strcasecmp(host, "localhost") != 0 &&
		    strcmp(host, "127.0.0.1") != 0 &&
		    strcmp(host, "[::1]") != 0)
			return url_fail(u, "the URL names another server");
	}
	*pp = slash;
	return 0;
}

int
imap_url_parse(struct imap_url *u, const char *url, size_t len,
               const char *user, int selected, postern_pool_t *pool)
{
	const char *p = url, *end = url + len, *q, *val;
	char *dec;

	memset(u, 0, sizeof(*u));
	if (memchr(url, '\0', len) != NULL)
		return url_fail(u, "NUL in the URL");
	if (len > 7 && strncasecmp(p, "imap://", 7) == 0) {
		p += 7;
		if (url_server(u, &p, end, user, pool) < 0)
			return -1;
	}
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
		for (q = val; q < end && *q != '/'; q++)
			;
		if ((dec = pct_decode(val, (size_t)(q - val), pool)) == NULL ||
		    url_section(u, dec) < 0)
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
	if (p < end)
		return url_fail(u, "URL form not supported (URLAUTH, "
		                   "expiry, or text after the message)");
	return 0;
}
