/*
 * dns.h - the worker's resolver: c-ares on the event loop, behind
 * host->dns_lookup, dns_addr and dns_cancel (postern/dns.h says what
 * they promise).
 *
 * The resolver is made on the first lookup of a process, on the loop
 * that is current then, from the settings dns_configure last gave; it
 * lives until dns_shutdown.
 */
#ifndef CORE_DNS_H
#define CORE_DNS_H

#include <stddef.h>

#include <postern/dns.h>

struct dns_settings {
	const char *servers;    /* c-ares CSV; NULL or "": resolv.conf */
	unsigned timeout_ms;    /* first try's timeout; 0: 2000 */
	unsigned tries;         /* tries per server; 0: 3 */
};

/* Keeps a copy of `s` for the resolver made next.  0, or -1 with the
 * reason in err when the server list is malformed (checked here, so a
 * bad setting is refused at startup rather than at the first lookup). */
int dns_configure(const struct dns_settings *s, char *err, size_t errlen);

postern_dns_query_t *dns_lookup(postern_module_t *m, const char *name,
                                unsigned type, postern_dns_fn cb, void *arg);
postern_dns_query_t *dns_addr(postern_module_t *m, const char *host,
                              unsigned port, postern_dns_fn cb, void *arg);
void dns_cancel(postern_dns_query_t *q);

/* Lookups started and neither answered nor cancelled. */
size_t dns_pending(void);

/* Stops every lookup (no callback is called), closes the sockets and
 * frees the resolver.  Not from inside a DNS callback. */
void dns_shutdown(void);

#endif /* CORE_DNS_H */
