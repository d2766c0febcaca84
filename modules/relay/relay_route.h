/*
 * relay_route.h - next hops ("via" strings) and the route table that
 * picks one by recipient domain.
 *
 *   via                       kind                  lookups
 *   mx                        RELAY_VIA_MX          MX of the recipient
 *                                                   domain, else A/AAAA
 *   smtp:[host]:port          RELAY_VIA_SMTP        none: `host` is
 *   smtp:[host]               (literal = 1)         connected to as
 *   smtp:[::1]:25                                   given (a name is
 *                                                   resolved to A/AAAA,
 *                                                   never MX; Postfix's
 *                                                   [brackets])
 *   smtp:host[:port]          RELAY_VIA_SMTP        MX of `host`
 *                             (literal = 0)
 *   lmtp:host:port            RELAY_VIA_LMTP        A/AAAA of host
 *   lmtp:[::1]:24             (port default 24)
 *   lmtp:unix:/path           RELAY_VIA_LMTP_UNIX   none
 *
 * The SMTP port defaults to 25.  Keywords ("mx", "smtp", "lmtp",
 * "unix") are case-insensitive; host names are kept lower-cased.
 *
 * Matching (relay_routes_match), by recipient domain compared
 * ASCII-case-insensitively, ignoring one trailing dot, with IDNA and
 * UTF-8 domains compared octet for octet as given (no conversion
 * between U-labels and A-labels):
 *   1. an exact pattern "example.net";
 *   2. a wildcard "*.example.net", which matches any name below
 *      example.net ("a.example.net", "b.a.example.net") but NOT
 *      example.net itself, as Postfix's transport map ".example.net";
 *      among several wildcards the longest suffix wins;
 *   3. the default "*".
 *
 * Threads and memory.  Pure data: a table is built at configuration
 * time (malloc) and read by any thread afterwards; the relay module owns
 * the configuration keys and calls relay_routes_add per entry.  A match
 * points into the table, valid until relay_routes_free.
 *
 * Errors.  Parsing functions return -1 with a message in err that names
 * what is wrong ("via 'smtp:[10.0.0.5]:99999': port out of range
 * 1-65535"), 0 on success.
 */
#ifndef RELAY_ROUTE_H
#define RELAY_ROUTE_H

#include <stddef.h>

enum relay_via_kind {
	RELAY_VIA_MX = 0,
	RELAY_VIA_SMTP,
	RELAY_VIA_LMTP,
	RELAY_VIA_LMTP_UNIX,
};

enum relay_tls_policy {
	RELAY_TLS_NONE = 0,  /* never STARTTLS */
	RELAY_TLS_MAY,       /* STARTTLS when offered, no verification;
	                        the default */
	RELAY_TLS_ENCRYPT,   /* STARTTLS required, no verification */
	RELAY_TLS_VERIFY,    /* STARTTLS required, chain and host name
	                        verified; a failure defers, never clear */
};

#define RELAY_HOST_MAX 255
#define RELAY_PATH_MAX 107   /* sun_path less its NUL */

struct relay_via {
	enum relay_via_kind kind;
	/* SMTP and LMTP: a host name (lower case) or a literal IPv4/IPv6
	 * address, without brackets.  LMTP_UNIX: the socket's path.  Empty
	 * for MX. */
	char host[RELAY_PATH_MAX + 1];
	unsigned port;       /* SMTP and LMTP; 0 otherwise */
	/* SMTP: 1 for [host] (connect to the host itself, no MX lookup).
	 * LMTP: always 1.  MX, LMTP_UNIX: 0. */
	int literal;
	int is_ip;           /* host is a literal IPv4 or IPv6 address */
};

/* Parses a via string.  0, or -1 with err set. */
int relay_via_parse(const char *s, struct relay_via *out, char *err,
                    size_t errlen);
/* Writes the canonical text of a via ("smtp:[10.0.0.5]:25",
 * "lmtp:unix:/run/dovecot/lmtp", "mx") into buf, for logs; returns buf.
 * Parsing it gives the same via. */
char *relay_via_format(const struct relay_via *v, char *buf, size_t len);

/* "none", "may", "encrypt", "verify" (case-insensitive).  0, or -1
 * with err set. */
int relay_tls_policy_parse(const char *s, enum relay_tls_policy *out,
                           char *err, size_t errlen);
const char *relay_tls_policy_name(enum relay_tls_policy p);

/* One route, as configured. */
struct relay_route_spec {
	const char *domain;    /* "example.net", "*.example.net" or "*" */
	const char *via;       /* see above */
	const char *tls;       /* NULL: "may" */
	const char *auth_file; /* NULL: no AUTH; the relay reads the file */
};

struct relay_route {
	char *pattern;         /* as configured, lower-cased */
	struct relay_via via;
	enum relay_tls_policy tls;
	char *auth_file;       /* NULL when none */
};

struct relay_routes;

/* An empty table (NULL only when out of memory). */
struct relay_routes *relay_routes_create(void);
void relay_routes_free(struct relay_routes *t); /* NULL: no-op */

/* Adds a route.  -1 with err set for a bad pattern (empty, "*" inside a
 * name, "*." alone, a label over 63 or a name over 255 octets, white
 * space or a control octet), a bad via or TLS policy, a pattern already
 * in the table, an LMTP_UNIX route with tls other than none/may, or
 * ENOMEM.  The spec's strings are copied. */
int relay_routes_add(struct relay_routes *t,
                     const struct relay_route_spec *spec, char *err,
                     size_t errlen);

/* The route for a recipient domain, or NULL when nothing matches (no
 * default route: the relay refuses or defers as it decides). */
const struct relay_route *relay_routes_match(const struct relay_routes *t,
                                             const char *domain);

/* Routes in the table, in the order added (for posternctl and -n). */
size_t relay_routes_count(const struct relay_routes *t);
const struct relay_route *relay_routes_get(const struct relay_routes *t,
                                           size_t i);

#endif /* RELAY_ROUTE_H */
