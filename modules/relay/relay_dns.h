/*
 * relay_dns.h - MX and address lookups on the worker's event loop,
 * through c-ares.
 *
 * c-ares's sockets are watched with the host's watch_add/watch_set/
 * watch_remove and its retransmissions driven by one timer_add timer:
 * nothing blocks and no thread is used.  One resolver per worker
 * process, created in the worker's `start` (it needs the loop) and
 * destroyed in its `exit`.
 *
 * Threads.  Every function, and every callback, runs on the event loop
 * of the worker that created the resolver.  A callback is never called
 * from inside the relay_dns_mx/relay_dns_addr call that started it (an
 * answer known at once, a numeric address for instance, is deferred to
 * the loop), so a caller may start a lookup while holding state the
 * callback changes.
 *
 * Memory.  A result and everything it points to belong to the resolver
 * and are valid only while the callback runs: copy what you keep.  The
 * query handle is valid until its callback has returned or until
 * relay_dns_cancel.
 *
 * Errors.  Every outcome is a relay_dns_status; the `error` string of a
 * result names the domain, the record type and c-ares's reason, for the
 * delivery log and the DSN's Diagnostic-Code.
 */
#ifndef RELAY_DNS_H
#define RELAY_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include <postern/host.h>

struct relay_dns;
struct relay_dns_query;

enum relay_dns_status {
	RELAY_DNS_OK = 0,
	/* RFC 7505: the domain publishes a single MX "." (preference 0):
	 * it accepts no mail.  Bounce at once with 5.1.10. */
	RELAY_DNS_NULL_MX,
	/* NXDOMAIN: the name does not exist.  Permanent (5.1.2 for a
	 * recipient domain, 5.4.4 for a next hop). */
	RELAY_DNS_NXDOMAIN,
	/* The name exists but has no record of the type asked for (an MX
	 * host with neither A nor AAAA).  Permanent (5.4.4). */
	RELAY_DNS_NODATA,
	/* SERVFAIL, REFUSED, timeout, unreachable server, malformed answer,
	 * out of memory: try again later (4.4.3). */
	RELAY_DNS_TEMPFAIL,
};

/* Resolver settings; zero or NULL fields take the defaults. */
struct relay_dns_config {
	/* Servers as c-ares's CSV: "127.0.0.1:5353", "[::1]:53,10.0.0.1".
	 * NULL: the servers of /etc/resolv.conf. */
	const char *servers;
	unsigned timeout_ms;   /* first try's timeout: 2000 */
	unsigned tries;        /* tries per server: 3 */
	/* Address families relay_dns_addr looks up: RELAY_DNS_IPV4 |
	 * RELAY_DNS_IPV6 (0 means both).  IPv4 alone for a host without
	 * IPv6 connectivity. */
	unsigned families;
};

#define RELAY_DNS_IPV4 0x1u
#define RELAY_DNS_IPV6 0x2u

/* One MX host, in the order to try them. */
struct relay_dns_mx {
	const char *host;     /* lower case, no trailing dot */
	unsigned preference;
	int implicit;         /* 1: no MX record, the domain itself
	                         (RFC 5321 section 5.1), preference 0 */
};

struct relay_dns_mx_result {
	enum relay_dns_status status;
	const char *domain;            /* as asked */
	/* With RELAY_DNS_OK: the hosts by ascending preference, shuffled
	 * within one preference (RFC 5321 section 5.1), duplicates removed;
	 * at least one.  Otherwise 0 and NULL. */
	const struct relay_dns_mx *hosts;
	size_t nhosts;
	const char *error;             /* NULL with RELAY_DNS_OK */
};

struct relay_dns_addr_result {
	enum relay_dns_status status;
	const char *host;              /* as asked */
	/* With RELAY_DNS_OK: the AAAA addresses then the A addresses (RFC
	 * 6724's default preference), each in the server's order, as
	 * AF_INET6 and AF_INET sockaddrs with the port asked for,
	 * duplicates removed; at least one.  Otherwise 0 and NULL. */
	const struct sockaddr_storage *addrs;
	size_t naddrs;
	const char *error;             /* NULL with RELAY_DNS_OK */
};

typedef void (*relay_dns_mx_fn)(const struct relay_dns_mx_result *r,
                                void *arg);
typedef void (*relay_dns_addr_fn)(const struct relay_dns_addr_result *r,
                                  void *arg);

/* A resolver on the current worker's loop.  `cfg` may be NULL (all
 * defaults); it is not kept.  `m` names the module in log lines (may be
 * NULL).  NULL on failure, with the reason in err (e.g. a malformed
 * server list, or no resolv.conf). */
struct relay_dns *relay_dns_create(const struct postern_host *host,
                                   postern_module_t *m,
                                   const struct relay_dns_config *cfg,
                                   char *err, size_t errlen);
/* Stops every lookup (their callbacks are not called), removes the
 * watches and the timer, frees the resolver.  NULL is a no-op.  Not
 * from inside a callback of this resolver. */
void relay_dns_destroy(struct relay_dns *d);

/* The MX hosts of `domain` (ASCII or A-labels; a trailing dot is
 * ignored).  No MX record but the name exists: one implicit host, the
 * domain.  A CNAME is followed by c-ares.  Returns the query; an
 * invalid domain answers through the callback too, with
 * RELAY_DNS_NXDOMAIN.  NULL only when out of memory (then nothing is
 * called back). */
struct relay_dns_query *relay_dns_mx(struct relay_dns *d, const char *domain,
                                     relay_dns_mx_fn cb, void *arg);

/* The A and AAAA addresses of `host` (a name, taken as fully qualified:
 * no search list, no hosts file; or a literal IPv4/IPv6 address, which
 * is answered without a query), each with `port`.  Any address found is
 * OK even when the other type failed; else a temporary failure of
 * either type is RELAY_DNS_TEMPFAIL, else NXDOMAIN of either is
 * RELAY_DNS_NXDOMAIN, else RELAY_DNS_NODATA. */
struct relay_dns_query *relay_dns_addr(struct relay_dns *d, const char *host,
                                       unsigned port, relay_dns_addr_fn cb,
                                       void *arg);

/* Forgets a lookup: its callback will not be called.  Only before the
 * callback has run (not from inside it). */
void relay_dns_cancel(struct relay_dns_query *q);

/* Lookups started and not yet answered or cancelled (for tests and the
 * worker's exit). */
size_t relay_dns_pending(const struct relay_dns *d);

/* A short name for a status ("ok", "null MX", "NXDOMAIN", "no data",
 * "temporary failure"). */
const char *relay_dns_status_name(enum relay_dns_status s);

#endif /* RELAY_DNS_H */
