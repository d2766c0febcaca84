/*
 * postern/listen.h - the listener settings every protocol module shares.
 *
 * SMTP, IMAP and POP3 each configure a list of listeners with the same
 * basic keys, plus keys of their own.  A module embeds struct
 * postern_listen_cfg in its own listener struct, puts
 * POSTERN_LISTEN_KEYS() at the top of its listener schema, and turns a
 * parsed element into a struct postern_listen_spec with
 * postern_listen_spec_init():
 *
 *	struct pop3_listen {
 *		struct postern_listen_cfg l;
 *		int plaintext_auth;
 *	};
 *	static const struct postern_cfg_key pop3_listen_keys[] = {
 *		POSTERN_LISTEN_KEYS(struct pop3_listen, l, "pop3"),
 *		{ .name = "plaintext_auth", ... },
 *		{ .name = NULL },
 *	};
 *
 * The keys, in the configuration:
 *	name       = "pop3s";       shown in logs (default: the module's)
 *	address    = "127.0.0.1";   "*" for all, "::1", or a unix path
 *	port       = 995;           required
 *	tls        = true;          implicit TLS (RFC 8314); default false
 *	max_conns  = 1024;          per worker; 0: the host default
 *	max_per_ip = 0;             per address (IPv6: /64), all workers;
 *	                            0: unlimited (the default
 *	                            is the module's: 20 for SMTP, IMAP, POP3)
 *	junk_command_limit = 100;   commands that do nothing (NOOP, CAPA...)
 *	                            per session; 0: unlimited (ABI 1.4)
 *
 * Header only: nothing here is in the host table, so it needs no ABI.
 */
#ifndef POSTERN_LISTEN_H
#define POSTERN_LISTEN_H

#include <stddef.h>

#include <postern/config.h>
#include <postern/conn.h>

#ifdef __cplusplus
extern "C" {
#endif

struct postern_listen_cfg {
	const char *name;
	const char *address;
	long long port;
	int tls;
	long long max_conns;
	long long max_per_ip;
	long long junk_command_limit;
};

#define POSTERN_LISTEN_KEY_(T_, M_, F_, ...)                       \
	{ .offset = offsetof(T_, M_) +                                \
	            offsetof(struct postern_listen_cfg, F_),             \
	  __VA_ARGS__ }

/* Schema entries for the struct postern_listen_cfg member M_ of the
 * struct T_; D_ is the listener's name when the configuration gives none. */
#define POSTERN_LISTEN_KEYS(T_, M_, D_)                          \
	POSTERN_LISTEN_KEYS_PER_IP(T_, M_, D_, "0")

/* The same with P_ (a string) as the default of max_per_ip: a protocol
 * facing the internet sets one, as Postfix and Dovecot do. */
#define POSTERN_LISTEN_KEYS_PER_IP(T_, M_, D_, P_)               \
	POSTERN_LISTEN_KEY_(T_, M_, name, .name = "name",             \
	                    .type = POSTERN_CFG_STRING, .def = (D_),   \
	                    .doc = "listener name in logs"),                \
	POSTERN_LISTEN_KEY_(T_, M_, address, .name = "address",       \
	                    .type = POSTERN_CFG_STRING, .def = "127.0.0.1", \
	                    .doc = "address to listen on, * for all"),      \
	POSTERN_LISTEN_KEY_(T_, M_, port, .name = "port",             \
	                    .type = POSTERN_CFG_INT, .min = 0,              \
	                    .max = 65535, .flags = POSTERN_CFG_REQUIRED,    \
	                    .doc = "TCP port"),                             \
	POSTERN_LISTEN_KEY_(T_, M_, tls, .name = "tls",               \
	                    .type = POSTERN_CFG_BOOL, .def = "false",       \
	                    .doc = "implicit TLS (RFC 8314)"),              \
	POSTERN_LISTEN_KEY_(T_, M_, max_conns, .name = "max_conns",   \
	                    .type = POSTERN_CFG_INT, .def = "0", .min = 0,  \
	                    .max = 1000000,                                 \
	                    .doc = "connections per worker, 0: default"),   \
	POSTERN_LISTEN_KEY_(T_, M_, max_per_ip, .name = "max_per_ip", \
	                    .type = POSTERN_CFG_INT, .def = (P_), .min = 0, \
	                    .max = 1000000,                                 \
	                    .doc = "connections per client address (IPv6: " \
	                           "/64) over all workers (loopback too), " \
	                           "0: unlimited"),                         \
	POSTERN_LISTEN_KEY_(T_, M_, junk_command_limit,                 \
	                    .name = "junk_command_limit",                   \
	                    .type = POSTERN_CFG_INT, .def = "100", .min = 0,\
	                    .max = 1000000,                                 \
	                    .doc = "commands that do nothing (NOOP, HELP, " \
	                           "RSET, CAPA...) a session may send "     \
	                           "before it is closed, 0: unlimited")

/*
 * Fills `spec` from a parsed listener.  `tls` is the module's TLS context
 * (NULL when it has none: the caller reports implicit TLS without a
 * certificate as a configuration error before calling).  `limits` may be
 * NULL for the host defaults.  The caller then calls host->listen().
 */
static inline void
postern_listen_spec_init(struct postern_listen_spec *spec,
                         const struct postern_listen_cfg *lc,
                         postern_tls_t *tls,
                         const struct postern_conn_limits *limits,
                         const struct postern_listener_ops *ops, void *arg)
{
	struct postern_listen_spec s = { .size = sizeof(s) };

	s.name = lc->name;
	s.address = lc->address;
	s.port = (unsigned)lc->port;
	s.tls = lc->tls ? tls : NULL;
	s.max_conns = (unsigned)lc->max_conns;
	s.max_per_ip = (unsigned)lc->max_per_ip;
	if (limits != NULL)
		s.limits = *limits;
	s.limits.size = sizeof(s.limits);
	s.limits.max_junk = lc->junk_command_limit > 0
	                        ? (unsigned)lc->junk_command_limit
	                        : POSTERN_CONN_UNLIMITED;
	s.ops = ops;
	s.arg = arg;
	*spec = s;
}

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_LISTEN_H */
