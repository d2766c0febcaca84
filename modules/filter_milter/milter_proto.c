/*
 * milter_proto.c - the milter wire format: packets out, strings in, the
 * socket syntax, and line ends (milters see LF, messages hold CRLF).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter.h"

static void
mbuf_need(struct mbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 256;

	if (b->len + more <= b->cap)
		return;
	while (cap < b->len + more)
		cap *= 2;
	if ((b->p = realloc(b->p, cap)) == NULL)
		abort(); /* as every allocation in posternd */
	b->cap = cap;
}

void
mbuf_start(struct mbuf *b, char cmd)
{
	b->len = 0;
	mbuf_need(b, 5);
	memset(b->p, 0, 4);
	b->p[4] = (unsigned char)cmd;
	b->len = 5;
}

void
mbuf_add(struct mbuf *b, const void *data, size_t len)
{
	mbuf_need(b, len);
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

void
mbuf_str(struct mbuf *b, const char *s)
{
	mbuf_add(b, s, strlen(s) + 1);
}

void
mbuf_u32(struct mbuf *b, uint32_t v)
{
	unsigned char o[4] = {
		(unsigned char)(v >> 24), (unsigned char)(v >> 16),
		(unsigned char)(v >> 8), (unsigned char)v,
	};

	mbuf_add(b, o, 4);
}

void
mbuf_u16(struct mbuf *b, uint16_t v)
{
	unsigned char o[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	mbuf_add(b, o, 2);
}

void
mbuf_end(struct mbuf *b)
{
	uint32_t n = (uint32_t)(b->len - 4);

	b->p[0] = (unsigned char)(n >> 24);
	b->p[1] = (unsigned char)(n >> 16);
	b->p[2] = (unsigned char)(n >> 8);
	b->p[3] = (unsigned char)n;
}

void
mbuf_free(struct mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

const char *
milter_str(const unsigned char **p, const unsigned char *end)
{
	const unsigned char *s = *p, *nul;

	if (s >= end || (nul = memchr(s, '\0', (size_t)(end - s))) == NULL)
		return NULL;
	*p = nul + 1;
	return (const char *)s;
}

/* "ADDR:PORT" or "[ADDR]:PORT" (the last colon splits, so IPv6 works
 * without brackets too). */
static int
parse_inet(struct milter *m, const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t alen;
	char *end;
	unsigned long port;

	if (colon == NULL || colon == s)
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535 || end == colon + 1)
		return -1;
	alen = (size_t)(colon - s);
	if (s[0] == '[') {
		if (alen < 3 || s[alen - 1] != ']')
			return -1;
		s++;
		alen -= 2;
	}
	if (alen >= sizeof(m->address))
		return -1;
	memcpy(m->address, s, alen);
	m->address[alen] = '\0';
	m->port = (unsigned)port;
	return 0;
}

int
milter_parse_socket(struct milter *m)
{
	const char *s = m->socket;

	if (strncmp(s, "inet:", 5) == 0)
		return parse_inet(m, s + 5);
	if (strncmp(s, "inet6:", 6) == 0)
		return parse_inet(m, s + 6);
	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0)
		s = strchr(s, ':') + 1;
	if (s[0] != '/' || strlen(s) >= sizeof(m->address))
		return -1;
	snprintf(m->address, sizeof(m->address), "%s", s);
	m->port = 0;
	return 0;
}

char *
milter_lf_from_crlf(const char *v)
{
	size_t n = strlen(v), i, k = 0;
	char *out = malloc(n + 1);

	if (out == NULL)
		abort();
	for (i = 0; i < n; i++)
		if (!(v[i] == '\r' && v[i + 1] == '\n'))
			out[k++] = v[i];
	out[k] = '\0';
	return out;
}

char *
milter_crlf_from_lf(const char *v, size_t len)
{
	char *out = malloc(2 * len + 1);
	size_t i, k = 0;

	if (out == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (v[i] == '\r' && i + 1 < len && v[i + 1] == '\n')
			continue; /* the LF brings it back */
		if (v[i] == '\r' || v[i] == '\0')
			goto bad;
		if (v[i] == '\n') {
			/* A fold: the next line must start with white space
			 * (a trailing LF is dropped). */
			if (i + 1 == len)
				break;
			if (v[i + 1] != ' ' && v[i + 1] != '\t')
				goto bad;
			out[k++] = '\r';
		}
		out[k++] = v[i];
	}
	out[k] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}
