/*
 * imap_buf.c - growable output buffers and the IMAP forms of strings,
 * flags and UID sets.  Used on job threads as well as on the loop, so
 * the memory is plain malloc (a failure aborts, as the host's pools do:
 * a server out of memory cannot keep any promise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"

static void
buf_reserve(struct imap_buf *b, size_t more)
{
	size_t cap;

	if (b->len + more + 1 <= b->cap)
		return;
	cap = b->cap < 512 ? 512 : b->cap;
	while (cap < b->len + more + 1)
		cap *= 2;
	b->p = realloc(b->p, cap);
	if (b->p == NULL)
		abort();
	b->cap = cap;
}

void
imap_buf_add(struct imap_buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

char *
imap_buf_room(struct imap_buf *b, size_t n)
{
	buf_reserve(b, n);
	return b->p + b->len;
}

void
imap_buf_commit(struct imap_buf *b, size_t n)
{
	b->len += n;
	b->p[b->len] = '\0';
}

void
imap_buf_uint(struct imap_buf *b, uint32_t v)
{
	char tmp[10], *p;
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	p = imap_buf_room(b, n + 1);
	while (n > 0)
		*p++ = tmp[--n];
	imap_buf_commit(b, (size_t)(p - (b->p + b->len)));
}

void
imap_buf_str(struct imap_buf *b, const char *s)
{
	imap_buf_add(b, s, strlen(s));
}

void
imap_buf_printf(struct imap_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	buf_reserve(b, 128);
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* "s" with " and \\ escaped (the caller checked it may be quoted). */
static void
buf_quoted(struct imap_buf *b, const char *s, size_t len)
{
	size_t i;

	buf_reserve(b, len * 2 + 2);
	b->p[b->len++] = '"';
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			b->p[b->len++] = '\\';
		b->p[b->len++] = s[i];
	}
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
}

void
imap_buf_string(struct imap_buf *b, const char *s, size_t len)
{
	size_t i;
	int quotable = len < 1024;

	for (i = 0; i < len && quotable; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			quotable = 0;
	}
	if (!quotable) {
		imap_buf_printf(b, "{%zu}\r\n", len);
		imap_buf_add(b, s, len);
		return;
	}
	buf_quoted(b, s, len);
}

void
imap_buf_utf8_string(struct imap_buf *b, const char *s, size_t len)
{
	/* RFC 6855 3.1, RFC 9051 4.3: a quoted string may hold UTF-8 for
	 * a client that enabled it; anything else goes as a literal */
	if (len < 1024 && imap_utf8_name_ok(s, len))
		buf_quoted(b, s, len);
	else
		imap_buf_string(b, s, len);
}

void
imap_buf_nstring(struct imap_buf *b, const char *s)
{
	if (s == NULL)
		imap_buf_str(b, "NIL");
	else
		imap_buf_string(b, s, strlen(s));
}

void
imap_buf_mailbox(struct imap_buf *b, const char *name, int utf8)
{
	char *enc;

	if (utf8) {
		imap_buf_utf8_string(b, name, strlen(name));
		return;
	}
	if ((enc = imap_utf7_encode(name)) == NULL) {
		/* The store gave a name that is not UTF-8: show it as is
		 * rather than drop it from a listing. */
		imap_buf_string(b, name, strlen(name));
		return;
	}
	imap_buf_string(b, enc, strlen(enc));
	free(enc);
}

void
imap_buf_flags(struct imap_buf *b, uint32_t flags, const uint32_t *kw,
               uint32_t nkw, const char *const *keywords, uint32_t nkeywords)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ POSTERN_MSG_SEEN, "\\Seen" },
		{ POSTERN_MSG_ANSWERED, "\\Answered" },
		{ POSTERN_MSG_FLAGGED, "\\Flagged" },
		{ POSTERN_MSG_DELETED, "\\Deleted" },
		{ POSTERN_MSG_DRAFT, "\\Draft" },
		{ POSTERN_MSG_RECENT, "\\Recent" },
	};
	size_t i;
	int first = 1;

	imap_buf_add(b, "(", 1);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(flags & names[i].bit))
			continue;
		if (!first)
			imap_buf_add(b, " ", 1);
		imap_buf_str(b, names[i].name);
		first = 0;
	}
	for (i = 0; i < nkw; i++) {
		if (kw[i] >= nkeywords)
			continue;
		if (!first)
			imap_buf_add(b, " ", 1);
		imap_buf_str(b, keywords[kw[i]]);
		first = 0;
	}
	imap_buf_add(b, ")", 1);
}

void
imap_buf_uidset(struct imap_buf *b, const uint32_t *uids, size_t n)
{
	size_t i = 0, j;

	while (i < n) {
		j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (i > 0)
			imap_buf_add(b, ",", 1);
		if (j == i)
			imap_buf_printf(b, "%u", uids[i]);
		else
			imap_buf_printf(b, "%u:%u", uids[i], uids[j]);
		i = j + 1;
	}
}

void
imap_buf_free(struct imap_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
