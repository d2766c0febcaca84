/*
 * pop3.c - the POP3 module: descriptor, configuration and listeners.
 *
 *	pop3 = {
 *	  listen = ( { address = "*"; port = 110; },
 *	             { address = "*"; port = 995; tls = true; } );
 *	  tls = { cert = "/etc/postern/cert.pem"; key = "..."; };
 *	  plaintext_auth = false;  # USER/PASS, AUTH before TLS off loopback
 *	  mark_seen = false;       # RETR sets \Seen
 *	  expire = "";             # CAPA EXPIRE: "NEVER", days, "" none
 *	  login_delay = 0;         # CAPA LOGIN-DELAY (seconds), 0 none
 *	  max_failed_logins = 3;
 *	  max_bad_commands = 20;
 *	  idle_timeout = "10m";    # at least 10 minutes (RFC 1939 section 3)
 *	};
 *
 * The rest of the module: pop3.h.
 */
#include <stdlib.h>
#include <string.h>

#include "pop3.h"

const struct postern_host *pop3_host;
postern_module_t *pop3_self;
struct pop3_settings pop3_set;
postern_tls_t *pop3_tls;
const struct postern_storage *pop3_storage;
int pop3_expire_zero;

/* RFC 1939 section 3: an autologout timer of at least 10 minutes. */
#define POP3_MIN_IDLE_MS (10LL * 60 * 1000)
/* RFC 2449 EXPIRE: days up to a sane bound (about 27 years). */
#define POP3_MAX_EXPIRE_DAYS 9999

struct pop3_listen {
	struct postern_listen_cfg l;
};

static const struct postern_cfg_key listen_keys[] = {
	POSTERN_LISTEN_KEYS_PER_IP(struct pop3_listen, l, "pop3", "20"),
	{ .name = NULL },
};

#define KEY(n, t, f, ...)                                                   \
	{ .name = (n), .type = (t),                                        \
	  .offset = offsetof(struct pop3_settings, f), __VA_ARGS__ }

static const struct postern_cfg_key pop3_keys[] = {
	KEY("listen", POSTERN_CFG_LIST, listen, .schema = listen_keys,
	    .doc = "listeners (110 with STLS, 995 with tls = true)"),
	KEY("tls", POSTERN_CFG_GROUP, tls,
	    .doc = "certificate for STLS and implicit TLS"),
	KEY("plaintext_auth", POSTERN_CFG_BOOL, plaintext_auth, .def = "false",
	    .doc = "allow logins without TLS from non-loopback clients"),
	KEY("apop", POSTERN_CFG_BOOL, apop, .def = "false",
	    .doc = "APOP (needs plaintext passwords: not available)"),
	KEY("mark_seen", POSTERN_CFG_BOOL, mark_seen, .def = "false",
	    .doc = "RETR marks the message \\Seen"),
	KEY("expire", POSTERN_CFG_STRING, expire, .def = "",
	    .doc = "CAPA EXPIRE value: NEVER, days, or empty for none"),
	KEY("login_delay", POSTERN_CFG_DURATION, login_delay_ms, .def = "0",
	    .min = 0, .max = 86400000LL * 365,
	    .doc = "CAPA LOGIN-DELAY value, 0 for none"),
	KEY("max_failed_logins", POSTERN_CFG_INT, max_failed_logins,
	    .def = "3", .min = 1, .max = 1000,
	    .doc = "failed logins before the connection is closed"),
	KEY("max_bad_commands", POSTERN_CFG_INT, max_bad_commands,
	    .def = "20", .min = 1, .max = 100000,
	    .doc = "invalid commands before the connection is closed"),
	KEY("idle_timeout", POSTERN_CFG_DURATION, idle_ms, .def = "10m",
	    .min = POP3_MIN_IDLE_MS, .max = 86400000,
	    .doc = "autologout after this long idle (10m at least)"),
	KEY("implementation", POSTERN_CFG_STRING, implementation,
	    .def = "postern", .doc = "CAPA IMPLEMENTATION; empty hides it"),
	{ .name = NULL },
};

/* EXPIRE (RFC 2449 section 6.7): "NEVER" or a number of days. */
static int
check_expire(postern_cfg_t *root)
{
	const char *e = pop3_set.expire;
	char *end;
	long days;

	pop3_expire_zero = 0;
	if (*e == '\0' || strcmp(e, "NEVER") == 0)
		return 0;
	days = strtol(e, &end, 10);
	if (*e < '0' || *e > '9' || *end != '\0' || days < 0 ||
	    days > POP3_MAX_EXPIRE_DAYS) {
		pop3_host->cfg_error(pop3_self,
		                     pop3_host->cfg_lookup(root, "expire"),
		                     "expected \"NEVER\", a number of days "
		                     "(0-%d) or \"\"", POP3_MAX_EXPIRE_DAYS);
		return -1;
	}
	pop3_expire_zero = days == 0;
	return 0;
}

static int
pop3_worker_start(void *arg)
{
	(void)arg;
	pop3_storage = pop3_host->service_lookup(pop3_self,
	                                         POSTERN_STORAGE_SERVICE,
	                                         POSTERN_STORAGE_MAJOR, 0);
	if (pop3_storage == NULL) {
		pop3_host->log(pop3_self, POSTERN_LOG_ERROR,
		               "no storage service: load a storage module "
		               "(storage_maildir) before pop3");
		return -1;
	}
	return 0;
}

static const struct postern_worker_ops worker_ops = {
	.size = sizeof(struct postern_worker_ops),
	.start = pop3_worker_start,
};

static int
pop3_init(const struct postern_host *h, postern_module_t *m)
{
	postern_cfg_t *root;
	size_t n;

	pop3_host = h;
	pop3_self = m;
	root = h->cfg_module(m);
	if (POSTERN_CFG_PARSE(h, m, root, pop3_keys, &pop3_set) < 0)
		return -1;
	if (pop3_set.apop) {
		/* APOP needs the password in plaintext on the server to
		 * compute MD5(timestamp password); the auth service keeps
		 * only argon2id (or crypt) hashes and never the password. */
		h->cfg_error(m, h->cfg_lookup(root, "apop"),
		             "APOP needs plaintext passwords, which the auth "
		             "service does not keep; use USER/PASS or AUTH "
		             "over TLS");
		return -1;
	}
	if (check_expire(root) < 0)
		return -1;
	if (pop3_set.tls != NULL &&
	    (pop3_tls = h->tls_create(m, pop3_set.tls)) == NULL)
		return -1;
	/* The session layer owns listeners, budgets and goodbyes. */
	pop3_protocol.listen_keys = listen_keys;
	pop3_protocol.listen_key_size = sizeof(struct postern_cfg_key);
	pop3_protocol.listen_size = sizeof(struct pop3_listen);
	pop3_protocol.idle_ms = (unsigned)pop3_set.idle_ms;
	pop3_protocol.max_errors = (unsigned)pop3_set.max_bad_commands;
	pop3_protocol.max_login_failures =
		(unsigned)pop3_set.max_failed_logins;
	if (h->session_listen(m, &pop3_protocol, pop3_set.listen,
	                      pop3_tls) < 0)
		return -1;
	n = pop3_set.listen != NULL ? h->cfg_count(pop3_set.listen) : 0;
	if (h->worker_ops(m, &worker_ops, NULL) < 0)
		return -1;
	h->log(m, POSTERN_LOG_INFO, "ready, %zu listener(s)%s", n,
	       pop3_tls != NULL ? ", STLS" : "");
	return 0;
}

POSTERN_MODULE(.name = "pop3", .version = "1.0",
               .kind = POSTERN_KIND_PROTOCOL, .init = pop3_init);
