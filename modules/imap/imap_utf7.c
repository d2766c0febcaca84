/*
 * imap_utf7.c - modified UTF-7 for mailbox names (RFC 3501 section
 * 5.1.3): printable ASCII stands for itself, "&" is "&-", anything else
 * is UTF-16 in base64 (with "," for "/") between "&" and "-".
 */
#include <stdlib.h>
#include <string.h>

#include "imap.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Reads one UTF-8 code point of those before `end`; -1 when invalid. */
static long
utf8_next(const unsigned char **pp, const unsigned char *end)
{
	const unsigned char *p = *pp;
	long cp;
	int n, i;

	if (p[0] < 0x80) {
		*pp = p + 1;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		cp = p[0] & 0x1f;
		n = 1;
	} else if ((p[0] & 0xf0) == 0xe0) {
		cp = p[0] & 0x0f;
		n = 2;
	} else if ((p[0] & 0xf8) == 0xf0) {
		cp = p[0] & 0x07;
		n = 3;
	} else
		return -1;
	for (i = 1; i <= n; i++) {
		if (p + i >= end || (p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
	    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*pp = p + n + 1;
	return cp;
}

char *
imap_utf7_encode(const char *utf8)
{
	const unsigned char *p = (const unsigned char *)utf8;
	const unsigned char *end = p + strlen(utf8);
	size_t cap = strlen(utf8) * 4 + 8, len = 0;
	char *out = malloc(cap);
	unsigned bits = 0, nbits = 0;
	int in_b64 = 0;
	long cp;

	if (out == NULL)
		return NULL;
	while (*p != '\0') {
		if (*p >= 0x20 && *p < 0x7f) {
			if (in_b64) {
				if (nbits > 0)
					out[len++] = b64[(bits << (6 - nbits)) &
					                 0x3f];
				out[len++] = '-';
				in_b64 = 0;
				nbits = 0;
			}
			out[len++] = (char)*p;
			if (*p == '&')
				out[len++] = '-';
			p++;
			continue;
		}
		if ((cp = utf8_next(&p, end)) < 0) {
			free(out);
			return NULL;
		}
		if (!in_b64) {
			out[len++] = '&';
			in_b64 = 1;
			bits = 0;
			nbits = 0;
		}
		{
			unsigned units[2];
			int nu = 1, u;

			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = 0xd800 | (unsigned)(cp >> 10);
				units[1] = 0xdc00 | (unsigned)(cp & 0x3ff);
				nu = 2;
			} else
				units[0] = (unsigned)cp;
			for (u = 0; u < nu; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					out[len++] = b64[(bits >> nbits) & 0x3f];
				}
				bits &= (1u << nbits) - 1;
			}
		}
	}
	if (in_b64) {
		if (nbits > 0)
			out[len++] = b64[(bits << (6 - nbits)) & 0x3f];
		out[len++] = '-';
	}
	out[len] = '\0';
	return out;
}

int
imap_utf8_name_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	long cp;

	while (p < end) {
		/* C0 and C1 controls and DEL: not in a name (RFC 9051 5.1
		 * leaves them out; they could not be quoted either) */
		if ((cp = utf8_next(&p, end)) < 0 || cp < 0x20 ||
		    (cp >= 0x7f && cp < 0xa0))
			return 0;
	}
	return 1;
}

static int
b64_value(char c)
{
	const char *q = c != '\0' ? strchr(b64, c) : NULL;

	return q != NULL ? (int)(q - b64) : -1;
}

static size_t
put_utf8(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

char *
imap_utf7_decode(const char *s, size_t len)
{
	char *out = malloc(len * 2 + 1);
	size_t i = 0, o = 0;
	unsigned long bits, hi;
	unsigned nbits, unit;
	int v, nunits;

	if (out == NULL)
		return NULL;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			goto bad;
		if (c != '&') {
			out[o++] = (char)c;
			i++;
			continue;
		}
		i++;
		if (i < len && s[i] == '-') {
			out[o++] = '&';
			i++;
			continue;
		}
		bits = 0;
		nbits = 0;
		hi = 0;
		nunits = 0;
		while (i < len && s[i] != '-') {
			if ((v = b64_value(s[i++])) < 0)
				goto bad;
			bits = (bits << 6) | (unsigned)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			unit = (unsigned)(bits >> nbits) & 0xffff;
			bits &= (1ul << nbits) - 1;
			nunits++;
			if (hi != 0) {
				if (unit < 0xdc00 || unit > 0xdfff)
					goto bad;
				o += put_utf8(out + o, 0x10000 +
				              ((hi - 0xd800) << 10) +
				              (unit - 0xdc00));
				hi = 0;
			} else if (unit >= 0xd800 && unit <= 0xdbff)
				hi = unit;
			else if (unit >= 0xdc00 && unit <= 0xdfff)
				goto bad;
			else if (unit >= 0x20 && unit < 0x7f)
				goto bad; /* must have been written directly */
			else
				o += put_utf8(out + o, unit);
		}
		if (i >= len || hi != 0 || nunits == 0 || nbits >= 6 ||
		    bits != 0)
			goto bad;
		i++; /* '-' */
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}
