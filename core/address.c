/*
 * address.c - an envelope address's parts (see address.h).
 *
 * The local part keeps its case where it is given (RFC 5321 section 2.4
 * leaves it to the receiving host), and `user` is the lower-cased form
 * every postern module compares, as Postfix and Dovecot do by default.
 * Only ASCII is lower-cased: a UTF-8 local part (SMTPUTF8) compares as
 * its octets.  A quoted local part has no detail: a delimiter inside
 * quotes is text.
 */
#include "address.h"

#include <string.h>

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
