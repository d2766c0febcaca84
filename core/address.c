/*
 * address.c - an envelope address's parts (see address.h).
 *
 * The local part keeps its case where it is given (RFC 5321 section 2.4
 * leaves it to the receiving host), and `user` is the lower-cased form
 * every postern module compares, as Postfix and Dovecot do by default.
 * Only ASCII is lower-cased: a UTF-8 local part (SMTPUTF8) compares as
 * its octets.  A quoted local part has no detail: a delimiter inside
 * quotes is text.
 *
 * Networks: an address is matched against a CIDR network with the bits
 * past the prefix cleared on both sides.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "pool.h"

static char *
lower_copy(postern_pool_t *pool, const char *s, size_t n)
{
	char *out = pool_strndup(pool, s, n);
	size_t i;

	for (i = 0; i < n; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
	return out;
}

int
address_split(const char *address, const char *delimiters,
              postern_pool_t *pool, struct postern_address_parts *out)
{
	const char *at, *delim = NULL;
	size_t local_len, i;
	struct postern_address_parts p = { .size = sizeof(p) };

	if (address == NULL || pool == NULL || out == NULL ||
	    out->size < sizeof(p) || *address == '\0')
		return -1;
	at = strrchr(address, '@');
	if (at == address)
		return -1; /* "@domain": no local part */
	local_len = at != NULL ? (size_t)(at - address) : strlen(address);
	if (at != NULL && at[1] == '\0')
		return -1; /* "user@": no domain */
	p.local = pool_strndup(pool, address, local_len);
	if (address[0] != '"' && delimiters != NULL)
		for (i = 0; i < local_len && delim == NULL; i++)
			if (strchr(delimiters, address[i]) != NULL &&
			    address[i] != '\0')
				delim = address + i;
	if (delim != NULL) {
		p.user = lower_copy(pool, address, (size_t)(delim - address));
		p.detail = pool_strndup(pool, delim + 1,
		                        local_len - (size_t)(delim - address) -
		                            1);
	} else
		p.user = lower_copy(pool, address, local_len);
	p.domain = at != NULL ? lower_copy(pool, at + 1, strlen(at + 1))
	                      : pool_strndup(pool, "", 0);
	/* As much as the caller's struct holds (a newer SDK's is larger). */
	p.size = out->size;
	memcpy(out, &p, out->size < sizeof(p) ? out->size : sizeof(p));
	return 0;
}

/* ---- networks ------------------------------------------------------- */

/* Clears the bits of a[] past `bits`. */
static void
prefix_clear(unsigned char *a, size_t len, unsigned bits)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		a[i] &= (unsigned char)(0xff00u >> bits);
		bits = 0;
	}
}

int
network_parse(const char *text, struct postern_network *out)
{
	const char *slash;
	char buf[INET6_ADDRSTRLEN + 1], *end;
	unsigned max;
	size_t n;
	long prefix;

	if (text == NULL || out == NULL)
		return -1;
	slash = strchr(text, '/');
	n = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, text, n);
	buf[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		errno = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (*end != '\0' || errno != 0 || prefix < 0 ||
		    prefix > (long)max)
			return -1;
		out->prefix = (unsigned)prefix;
	}
	prefix_clear(out->addr, sizeof(out->addr), out->prefix);
	return 0;
}

int
network_match(const struct postern_network *net, const char *address)
{
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};
	struct postern_network a;

	if (net == NULL || network_parse(address, &a) < 0)
		return 0;
	if (a.family == AF_INET6 && memcmp(a.addr, v4mapped, 12) == 0) {
		memmove(a.addr, a.addr + 12, 4);
		memset(a.addr + 4, 0, 12);
		a.family = AF_INET;
	}
	if (a.family != net->family)
		return 0;
	prefix_clear(a.addr, sizeof(a.addr), net->prefix);
	return memcmp(a.addr, net->addr, sizeof(a.addr)) == 0;
}
