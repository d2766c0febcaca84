/*
 * imap_sortkey.c - the sort keys of RFC 5256 and RFC 5957: base subject
 * (2.1), sent date (2.2), the first address's mailbox or display name,
 * and the message IDs threading links by.
 */
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "imap_sort.h"

#define IS_WSP(c) ((c) == ' ' || (c) == '\t')

/* i;ascii-casemap: compare with ASCII letters upper-cased; the key is
 * kept upper-cased and cut at IMAP_SORT_KEY_MAX octets. */
static char *
casemap(const char *s, size_t len, postern_pool_t *pool)
{
	char *k;
	size_t i;

	if (len > IMAP_SORT_KEY_MAX)
		len = IMAP_SORT_KEY_MAX;
	if ((k = imap_host->pool_alloc(pool, len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		k[i] = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 32) : s[i];
	k[len] = '\0';
	return k;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; the end of it, or NULL. */
static const char *
blob(const char *p, const char *e)
{
	if (p >= e || *p != '[')
		return NULL;
	for (p++; p < e && *p != ']'; p++)
		if (*p == '[')
			return NULL;
	if (p == e)
		return NULL;
	for (p++; p < e && IS_WSP(*p); p++)
		;
	return p;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static const char *
refwd(const char *p, const char *e)
{
	const char *q;

	if (e - p >= 2 && strncasecmp(p, "re", 2) == 0)
		p += 2;
	else if (e - p >= 2 && strncasecmp(p, "fw", 2) == 0) {
		p += 2;
		if (p < e && (*p == 'd' || *p == 'D'))
			p++;
	} else
		return NULL;
	while (p < e && IS_WSP(*p))
		p++;
	if ((q = blob(p, e)) != NULL)
		p = q;
	return p < e && *p == ':' ? p + 1 : NULL;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP */
static const char *
leader(const char *p, const char *e, int *is_reply)
{
	const char *q = p, *r;

	if (p < e && IS_WSP(*p))
		return p + 1;
	while ((r = blob(q, e)) != NULL)
		q = r;
	if ((r = refwd(q, e)) != NULL) {
		*is_reply = 1;
		return r;
	}
	return NULL;
}

static int
has_nonwsp(const char *p, const char *e)
{
	for (; p < e; p++)
		if (!IS_WSP(*p))
			return 1;
	return 0;
}

/* Steps 2 to 6 of RFC 5256 2.1 on p[0..*len) (white space already one
 * space per run); returns the start, *len its length. */
static const char *
base_of(const char *p, size_t *len, int *is_reply)
{
	const char *e = p + *len, *q;
	int changed;

	for (;;) {
		/* (2) subj-trailer = "(fwd)" / WSP, from the end */
		for (;;) {
			if (e > p && IS_WSP(e[-1]))
				e--;
			else if (e - p >= 5 && strncasecmp(e - 5, "(fwd)", 5)
			                           == 0) {
				e -= 5;
				*is_reply = 1;
			} else
				break;
		}
		/* (3) to (5): leaders and blobs from the start */
		do {
			changed = 0;
			while ((q = leader(p, e, is_reply)) != NULL) {
				p = q;
				changed = 1;
			}
			if ((q = blob(p, e)) != NULL && has_nonwsp(q, e)) {
				p = q;
				changed = 1;
			}
		} while (changed);
		/* (6) "[fwd:" subject "]" */
		if (e - p >= 6 && strncasecmp(p, "[fwd:", 5) == 0 &&
		    e[-1] == ']') {
			p += 5;
			e--;
			*is_reply = 1;
			continue;
		}
		break;
	}
	*len = (size_t)(e - p);
	return p;
}

char *
imap_sort_base_subject(const char *raw, int *is_reply, postern_pool_t *pool)
{
	char *dec, *w;
	const char *r, *b;
	size_t len, n = 0;
	int space = 0;

	*is_reply = 0;
	if (raw == NULL)
		raw = "";
	/* (1) RFC 2047 words to UTF-8; tabs and folding to one space */
	dec = imap_host->mime_decode_words(raw, strlen(raw), pool, &len);
	if (dec == NULL)
		return NULL;
	w = dec;
	for (r = dec; r < dec + len; r++) {
		if (*r == ' ' || *r == '\t' || *r == '\r' || *r == '\n') {
			space = 1;
			continue;
		}
		if (space && n > 0)
			w[n++] = ' ';
		space = 0;
		w[n++] = *r;
	}
	if (space)
		w[n++] = ' ';
	len = n;
	b = base_of(w, &len, is_reply);
	return casemap(b, len, pool);
}

char *
imap_sort_address(const char *raw, int display, postern_pool_t *pool)
{
	struct postern_mime_address *a;
	size_t n, i, len;
	char *s;

	if (raw == NULL ||
	    (a = imap_host->mime_parse_addresses(raw, strlen(raw), pool,
	                                         &n)) == NULL)
		return casemap("", 0, pool);
	/* The first address, a group's start marker too: its mailbox is
	 * the group's name (as Dovecot sorts). */
	i = 0;
	if (n == 0 || a[i].mailbox == NULL)
		return casemap("", 0, pool);
	if (!display || a[i].group)
		return casemap(a[i].mailbox, strlen(a[i].mailbox), pool);
	if (a[i].name != NULL && a[i].name[0] != '\0') {
		s = imap_host->mime_decode_words(a[i].name, strlen(a[i].name),
		                                 pool, &len);
		if (s != NULL)
			return casemap(s, len, pool);
	}
	len = strlen(a[i].mailbox) + 1 +
	      (a[i].host != NULL ? strlen(a[i].host) : 0);
	if ((s = imap_host->pool_alloc(pool, len + 1)) == NULL)
		return NULL;
	strcpy(s, a[i].mailbox);
	if (a[i].host != NULL) {
		strcat(s, "@");
		strcat(s, a[i].host);
	}
	return casemap(s, strlen(s), pool);
}

int64_t
imap_sort_sent_date(const char *raw, int64_t internal)
{
	int64_t when;

	if (raw == NULL ||
	    imap_host->mime_parse_date(raw, strlen(raw), &when, NULL) < 0)
		return internal;
	return when;
}

size_t
imap_sort_msgids(const char *raw, const char **out, size_t max,
                 postern_pool_t *pool)
{
	const char *p, *q;
	size_t n = 0, octets = 0, l;

	if (raw == NULL || max == 0)
		return 0;
	for (p = raw; (p = strchr(p, '<')) != NULL; p = q + 1) {
		q = p + 1;
		while (*q != '\0' && *q != '>' && *q != '<' && !IS_WSP(*q) &&
		       *q != '\r' && *q != '\n')
			q++;
		if (*q != '>') {
			/* not an ID: look again from here */
			q = p;
			continue;
		}
		if (q == p + 1 || (size_t)(q - p + 1) > IMAP_SORT_KEY_MAX)
			continue;
		l = (size_t)(q - p + 1);
		/* keep the last ones: drop the oldest */
		while (n > 0 &&
		       (n == max || octets + l > IMAP_SORT_REFS_OCTETS)) {
			octets -= strlen(out[0]);
			memmove(out, out + 1, (n - 1) * sizeof(*out));
			n--;
		}
		out[n] = imap_host->pool_strndup(pool, p, l);
		if (out[n] == NULL)
			break;
		octets += l;
		n++;
	}
	return n;
}
