/*
 * postern/dns.h - DNS lookups on the worker's event loop (ABI 1.7).
 *
 * One resolver per worker process, made by the host on first use from
 * the core's `dns_servers`, `dns_timeout` and `dns_tries` settings
 * (default: /etc/resolv.conf's servers).  Nothing blocks and no thread is
 * used; the functions are host->dns_lookup, host->dns_addr and
 * host->dns_cancel.
 *
 * Threads.  Every function and every callback runs on a worker's event
 * loop.  A callback is never called from inside the call that started
 * its lookup (an answer known at once, a literal address or an invalid
 * name, is deferred to the loop), so a caller may start a lookup while
 * holding state its callback changes.
 *
 * Memory.  A result and everything it points to belong to the host and
 * are valid only while the callback runs: copy what you keep.  A query
 * handle is valid until its callback has returned or until dns_cancel.
 *
 * Names are asked as given, fully qualified: no search list, no hosts
 * file.  Every name in a result is lower case without a trailing dot.
 *
 * Hostile answers are bounded: at most POSTERN_DNS_MAX_RECORDS records
 * are kept from one answer, and a TXT record longer than
 * POSTERN_DNS_MAX_TXT octets is dropped.
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A lookup in flight (host->dns_lookup, host->dns_addr). */
typedef struct postern_dns_query postern_dns_query_t;

/* Record types, by their numbers in the DNS. */
enum postern_dns_type {
	POSTERN_DNS_A = 1,
	POSTERN_DNS_PTR = 12,
	POSTERN_DNS_MX = 15,
	POSTERN_DNS_TXT = 16,
	POSTERN_DNS_AAAA = 28,
};

enum postern_dns_status {
	POSTERN_DNS_OK = 0,
	/* NXDOMAIN: the name does not exist (or is not a valid name). */
	POSTERN_DNS_NXDOMAIN,
	/* The name exists with no record of the type asked for. */
	POSTERN_DNS_NODATA,
	/* SERVFAIL, REFUSED, timeout, no server, a malformed answer, out of
	 * memory: the answer is unknown, try again later. */
	POSTERN_DNS_TEMPFAIL,
	/* MX only: the domain publishes a null MX (RFC 7505), "it accepts
	 * no mail". */
	POSTERN_DNS_NULL_MX,
};

#define POSTERN_DNS_MAX_RECORDS 64
#define POSTERN_DNS_MAX_TXT 4096

/* One record.  Only the fields of its type are set; the rest are zero. */
struct postern_dns_record {
	unsigned type;                 /* enum postern_dns_type */
	/* A, AAAA: AF_INET or AF_INET6, with the port asked for
	 * (host->dns_addr) or 0 (host->dns_lookup). */
	struct sockaddr_storage addr;
	/* MX: the preference; PTR, MX: the host name. */
	unsigned preference;
	const char *name;
	/* TXT: the record's character-strings joined without separator
	 * (RFC 7208 section 3.3), NUL-terminated; `len` counts octets and
	 * the text may hold a NUL of its own. */
	const char *text;
	size_t len;
};

struct postern_dns_result {
	enum postern_dns_status status;
	const char *name;              /* the name asked, canonical */
	unsigned type;                 /* as asked; 0 for host->dns_addr */
	/* With POSTERN_DNS_OK: at least one record, in this order:
	 *  A, AAAA, TXT, PTR: the server's order, duplicates removed;
	 *  MX: ascending preference, shuffled within one preference (RFC
	 *      5321 section 5.1), a host listed twice kept once with its
	 *      best preference, null MX entries dropped;
	 *  host->dns_addr: the AAAA addresses, then the A addresses.
	 * Otherwise none.  The array holds pointers so that a newer host
	 * can add fields at the end of a record. */
	const struct postern_dns_record *const *records;
	size_t nrecords;
	/* NULL with POSTERN_DNS_OK; else what failed, naming the name, the
	 * type and the reason ("MX lookup of example.org: NXDOMAIN"). */
	const char *error;
};

typedef void (*postern_dns_fn)(const struct postern_dns_result *r,
                               void *arg);

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_DNS_H */
