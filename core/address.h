/*
 * address.h - an envelope address's parts, as filters and auth backends
 * compare them: the local part, its user and +detail (subaddress, RFC
 * 5233), and the domain, the case-insensitive parts lower-cased; and
 * client addresses against configured networks (CIDR).
 */
#ifndef CORE_ADDRESS_H
#define CORE_ADDRESS_H

#include <postern/host.h>

/* host->address_split (postern/host.h says what it promises). */
int address_split(const char *address, const char *delimiters,
                  postern_pool_t *pool, struct postern_address_parts *out);

/* host->network_parse and network_match. */
int network_parse(const char *text, struct postern_network *out);
int network_match(const struct postern_network *net, const char *address);

#endif /* CORE_ADDRESS_H */
