/*
 * smtp_module.c - the SMTP module's descriptor, configuration, the
 * listener schema (the host's session layer makes the listeners from
 * it), hook points and the services it uses (auth, storage, relay) or
 * offers ("smtp", the filters' edit table).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "smtp_session.h"

const struct postern_host *smtp_host;
postern_module_t *smtp_self;
postern_metric_t *smtp_transactions;
struct smtp_settings smtp_cfg;
postern_tls_t *smtp_tls;
postern_hook_t *smtp_hooks[POSTERN_SMTP_DISCONNECT + 1];
const struct postern_auth *smtp_auth;
const struct postern_storage *smtp_storage;
const struct postern_relay *smtp_relay;
const struct postern_urlauth *smtp_urlauth;

static const char *const mode_names[] = {
	"mx", "submission", "submissions", NULL,
};
static const char *const auth_names[] = {
	"auto", "off", "optional", "required", NULL,
};
static const char *const sender_match_names[] = {
	"auto", "off", "on", NULL,
};
static const char *const bare_newline_names[] = {
	"reject", "normalise", NULL,
};

static const struct postern_cfg_key listen_keys[] = {
	POSTERN_LISTEN_KEYS_PER_IP(struct smtp_listener, l, "smtp", "20"),
	{ .name = "mode", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct smtp_listener, mode), .def = "mx",
	  .choices = mode_names,
	  .doc = "mx (25: mail for our domains), submission (587: "
	         "STARTTLS and AUTH), submissions (465: implicit TLS)" },
	{ .name = "auth", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct smtp_listener, auth), .def = "auto",
	  .choices = auth_names,
	  .doc = "AUTH: auto (off for mx, required for submission), off, "
	         "optional, required" },
	{ .name = "plaintext_auth", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct smtp_listener, plaintext_auth),
	  .def = "false",
	  .doc = "allow AUTH without TLS (538 5.7.11 otherwise)" },
	{ .name = "sender_login_match", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct smtp_listener, sender_login_match),
	  .def = "auto", .choices = sender_match_names,
	  .doc = "refuse (553 5.7.1) a MAIL FROM that is not an address "
	         "(aliases included) of the authenticated user: auto (on "
	         "for submission, off for mx), off, on" },
	{ .name = NULL },
};

static const struct postern_cfg_key smtp_keys[] = {
	{ .name = "hostname", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct smtp_settings, hostname), .def = "",
	  .doc = "name in the greeting and Received (empty: the system's)" },
	{ .name = "domain", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct smtp_settings, domain), .def = "",
	  .doc = "primary domain: RCPT TO:<Postmaster> is delivered to "
	         "postmaster@domain (empty: the hostname without its first "
	         "label)" },
	{ .name = "relay_domains", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct smtp_settings, relay_domains),
	  .doc = "domains accepted from anyone and relayed (backup MX, "
	         "gateway)" },
	{ .name = "trusted_networks", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct smtp_settings, trusted_networks),
	  .doc = "client networks (CIDR) allowed to relay without AUTH" },
	{ .name = "max_message_size", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct smtp_settings, max_message_size),
	  .def = "25M", .min = 1024, .max = 4LL << 30,
	  .doc = "largest message accepted (SIZE)" },
	{ .name = "max_recipients", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct smtp_settings, max_recipients),
	  .def = "100", .min = 1, .max = 100000,
	  .doc = "recipients per message (452 4.5.3 beyond)" },
	{ .name = "max_errors", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct smtp_settings, max_errors),
	  .def = "10", .min = 1, .max = 1000,
	  .doc = "client errors before the session is closed (421)" },
	{ .name = "idle_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct smtp_settings, idle_ms), .def = "5m",
	  .min = 1000, .max = 3600000,
	  .doc = "wait for a command at most (RFC 5321 4.5.3.2: 5m)" },
	{ .name = "data_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct smtp_settings, data_ms), .def = "10m",
	  .min = 1000, .max = 3600000,
	  .doc = "wait for message data at most (RFC 5321: 10m)" },
	{ .name = "bare_newline", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct smtp_settings, bare_newline),
	  .def = "reject", .choices = bare_newline_names,
	  .doc = "bare LF or CR in a message: reject it, or normalise "
	         "to CRLF" },
	{ .name = "max_line_length", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct smtp_settings, max_line), .def = "1000",
	  .min = 1000, .max = 1 << 20,
	  .doc = "message line length with CRLF (RFC 5321: 1000)" },
	{ .name = "spool_memory", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct smtp_settings, spool_memory),
	  .def = "256K", .min = 4096, .max = 64 << 20,
	  .doc = "message octets kept in memory before spooling to a file; "
	         "also the largest header section" },
	{ .name = "listen", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct smtp_settings, listen),
	  .schema = listen_keys, .doc = "listeners" },
	{ .name = "tls", .type = POSTERN_CFG_GROUP,
	  .offset = offsetof(struct smtp_settings, tls),
	  .doc = "certificate for STARTTLS and implicit TLS" },
	{ .name = NULL },
};

/* ---- networks and domains ------------------------------------------- */

int
smtp_peer_trusted(postern_conn_t *c)
{
	const struct sockaddr *sa;
	char text[INET6_ADDRSTRLEN];
	const void *addr;
	socklen_t len;
	size_t i;

	sa = smtp_host->conn_peer_addr(c, &len);
	if (sa == NULL || (sa->sa_family != AF_INET &&
	                   sa->sa_family != AF_INET6))
		return 0;
	addr = sa->sa_family == AF_INET ?
	    (const void *)&((const struct sockaddr_in *)sa)->sin_addr :
	    (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (inet_ntop(sa->sa_family, addr, text, sizeof(text)) == NULL)
		return 0;
	for (i = 0; i < smtp_cfg.nnetworks; i++)
		if (smtp_host->network_match(&smtp_cfg.networks[i], text))
			return 1;
	return 0;
}

int
smtp_domain_relayable(const char *domain)
{
	size_t i;

	if (domain == NULL)
		return 0;
	for (i = 0; i < smtp_cfg.relay_domains.count; i++)
		if (strcasecmp(domain, smtp_cfg.relay_domains.items[i]) == 0)
			return 1;
	return 0;
}

static int
load_networks(postern_cfg_t *root)
{
	size_t i, n = smtp_cfg.trusted_networks.count;

	if (n == 0)
		return 0;
	smtp_cfg.networks = calloc(n, sizeof(*smtp_cfg.networks));
	if (smtp_cfg.networks == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (smtp_host->network_parse(smtp_cfg.trusted_networks.items[i],
		                             &smtp_cfg.networks[i]) < 0) {
			smtp_host->cfg_error(
			    smtp_self, smtp_host->cfg_lookup(root,
			                                 "trusted_networks"),
			    "'%s' is not an address or a CIDR network",
			    smtp_cfg.trusted_networks.items[i]);
			return -1;
		}
	}
	smtp_cfg.nnetworks = n;
	return 0;
}

/* ---- listeners ------------------------------------------------------ */

/* One parsed element of smtp.listen (protocol->listen_check): what one
 * key says depends on another. */
static int
listen_check(void *cfg, postern_cfg_t *node)
{
	struct smtp_listener *l = cfg;

	if (l->mode == SMTP_MODE_SUBMISSIONS && !l->l.tls) {
		smtp_host->cfg_error(smtp_self, node,
		                     "mode submissions needs tls = true "
		                     "(RFC 8314 implicit TLS)");
		return -1;
	}
	if (l->auth == SMTP_AUTH_AUTO)
		l->auth = l->mode == SMTP_MODE_MX ? SMTP_AUTH_OFF
		                                  : SMTP_AUTH_REQUIRED;
	l->sender_login_match =
	    l->sender_login_match == SMTP_SENDER_MATCH_ON ||
	    (l->sender_login_match == SMTP_SENDER_MATCH_AUTO &&
	     l->mode != SMTP_MODE_MX);
	return 0;
}

/* ---- worker: the services ------------------------------------------- */

static int
worker_start(void *arg)
{
	(void)arg;
	/* Looked up here, not in init: every module is initialised by now,
	 * whatever the order of `modules`, and each of them is optional (a
	 * gateway has no storage, an access-less relay has no auth). */
	smtp_auth = smtp_host->service_find(smtp_self, POSTERN_AUTH_SERVICE,
	                                    POSTERN_AUTH_MAJOR, 0);
	smtp_storage = smtp_host->service_find(smtp_self,
	                                       POSTERN_STORAGE_SERVICE,
	                                       POSTERN_STORAGE_MAJOR, 1);
	smtp_relay = smtp_host->service_find(smtp_self, POSTERN_RELAY_SERVICE,
	                                     POSTERN_RELAY_MAJOR, 0);
	/* BURL (RFC 4468): URLAUTH URLs resolved by the imap module. */
	smtp_urlauth = smtp_host->service_find(smtp_self,
	                                       POSTERN_URLAUTH_SERVICE,
	                                       POSTERN_URLAUTH_MAJOR, 0);
	if (smtp_relay == NULL)
		smtp_host->log(smtp_self, POSTERN_LOG_INFO,
		               "no relay service: recipients in other domains "
		               "are refused (550 5.7.1)");
	if (smtp_auth == NULL || smtp_storage == NULL)
		smtp_host->log(smtp_self, POSTERN_LOG_INFO,
		               "no %s service: no local delivery",
		               smtp_auth == NULL ? "auth" : "storage");
	return 0;
}

static const struct postern_worker_ops worker_ops = {
	.size = sizeof(struct postern_worker_ops),
	.start = worker_start,
};

/* ---- init ----------------------------------------------------------- */

static const char *const hook_names[] = {
	[POSTERN_SMTP_CONNECT] = POSTERN_SMTP_HOOK_CONNECT,
	[POSTERN_SMTP_HELO] = POSTERN_SMTP_HOOK_HELO,
	[POSTERN_SMTP_STARTTLS] = POSTERN_SMTP_HOOK_STARTTLS,
	[POSTERN_SMTP_AUTH] = POSTERN_SMTP_HOOK_AUTH,
	[POSTERN_SMTP_MAIL] = POSTERN_SMTP_HOOK_MAIL,
	[POSTERN_SMTP_RCPT] = POSTERN_SMTP_HOOK_RCPT,
	[POSTERN_SMTP_DATA] = POSTERN_SMTP_HOOK_DATA,
	[POSTERN_SMTP_HEADER] = POSTERN_SMTP_HOOK_HEADER,
	[POSTERN_SMTP_EOH] = POSTERN_SMTP_HOOK_EOH,
	[POSTERN_SMTP_BODY] = POSTERN_SMTP_HOOK_BODY,
	[POSTERN_SMTP_EOD] = POSTERN_SMTP_HOOK_EOD,
	[POSTERN_SMTP_RESET] = POSTERN_SMTP_HOOK_RESET,
	[POSTERN_SMTP_DISCONNECT] = POSTERN_SMTP_HOOK_DISCONNECT,
};

static char system_hostname[256];

/* mx.example.org -> example.org, as Postfix's mydomain; a name of one or
 * two labels is its own domain. */
static const char *
default_domain(const char *hostname)
{
	const char *dot = strchr(hostname, '.');

	if (dot == NULL || strchr(dot + 1, '.') == NULL)
		return hostname;
	return dot + 1;
}

static int
smtp_init(const struct postern_host *h, postern_module_t *m)
{
	postern_cfg_t *root;
	size_t i;

	smtp_host = h;
	smtp_self = m;
	root = h->cfg_module(m);
	if (POSTERN_CFG_PARSE(h, m, root, smtp_keys, &smtp_cfg) < 0)
		return -1;
	if (*smtp_cfg.hostname == '\0') {
		if (gethostname(system_hostname, sizeof(system_hostname) - 1) <
		        0 ||
		    system_hostname[0] == '\0')
			strcpy(system_hostname, "localhost");
		smtp_cfg.hostname = system_hostname;
	}
	if (*smtp_cfg.domain == '\0')
		smtp_cfg.domain = default_domain(smtp_cfg.hostname);
	if (load_networks(root) < 0)
		return -1;
	if (smtp_cfg.tls != NULL &&
	    (smtp_tls = h->tls_create(m, smtp_cfg.tls)) == NULL)
		return -1;
	for (i = 0; i <= POSTERN_SMTP_DISCONNECT; i++)
		if ((smtp_hooks[i] = h->hook_define(m, hook_names[i])) == NULL)
			return -1;
	if ((smtp_transactions = h->metric_register(m, "smtp_transactions",
	    "messages that got their final reply after DATA or BDAT LAST, "
	    "by reply class", POSTERN_METRIC_COUNTER, "reply",
	    (const char *const[]){ "2xx", "3xx", "4xx", "5xx", NULL })) ==
	    NULL)
		return -1;
	if (h->service_publish(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                       POSTERN_SMTP_MINOR, &smtp_service) < 0)
		return -1;
	/* The session layer owns listeners, reading, budgets and
	 * goodbyes. */
	smtp_protocol.listen_keys = listen_keys;
	smtp_protocol.listen_key_size = sizeof(struct postern_cfg_key);
	smtp_protocol.listen_size = sizeof(struct smtp_listener);
	smtp_protocol.listen_check = listen_check;
	smtp_protocol_setup();
	if (h->session_listen(m, &smtp_protocol, smtp_cfg.listen,
	                      smtp_tls) < 0)
		return -1;
	if (h->worker_ops(m, &worker_ops, NULL) < 0)
		return -1;
	return 0;
}

static void
smtp_fini(postern_module_t *m)
{
	(void)m;
	free(smtp_cfg.networks);
	smtp_cfg.networks = NULL;
}

POSTERN_MODULE(.name = "smtp", .version = "1.0",
               .kind = POSTERN_KIND_PROTOCOL, .init = smtp_init,
               .fini = smtp_fini);
