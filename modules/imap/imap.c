/*
 * imap.c - the IMAP module: configuration, the listeners (the host's
 * session layer makes them from the schema below), and the storage
 * service every session reads mail through.  Sessions live in
 * imap_session.c; see imap.h for the map of the module.
 */
#include <stddef.h>
#include <string.h>

#include <postern/postern.h>

#include "imap.h"
#include "imap_mime.h"
#include "imap_sort.h"

const struct postern_host *imap_host;
postern_module_t *imap_self;
struct imap_settings imap_cfg;
const struct postern_storage *imap_storage;
postern_tls_t *imap_tls;
const struct postern_auth *imap_auth;

struct imap_listen {
	struct postern_listen_cfg l;
};

static const struct postern_cfg_key listen_keys[] = {
	POSTERN_LISTEN_KEYS_PER_IP(struct imap_listen, l, "imap", "20"),
	{ .name = NULL },
};

static const struct postern_cfg_key imap_keys[] = {
	{ .name = "listen", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct imap_settings, listen),
	  .schema = listen_keys, .doc = "listeners (143, and 993 with tls)" },
	{ .name = "tls", .type = POSTERN_CFG_GROUP,
	  .offset = offsetof(struct imap_settings, tls),
	  .doc = "certificate for STARTTLS and implicit TLS" },
	{ .name = "max_line_length", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, max_line), .def = "64K",
	  .min = 1024, .max = 1048576,
	  .doc = "longest command line, literals excluded" },
	{ .name = "max_literal_size", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, max_literal), .def = "50M",
	  .min = 1024, .max = 1073741824LL,
	  .doc = "largest literal, so the largest APPEND (also a "
	          "MULTIAPPEND's spooled messages together and a "
	          "CATENATE's result)" },
	{ .name = "message_memory", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, message_memory),
	  .def = "16M", .min = 1048576, .max = 1073741824LL,
	  .doc = "memory one message's MIME parse may use in FETCH and "
	         "SEARCH; past it the answer is poorer (NIL fields)" },
	{ .name = "idle_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct imap_settings, idle_ms), .def = "30m",
	  .min = 1000, .max = 86400000,
	  .doc = "close a silent client after (IDLE: 30m at least)" },
	{ .name = "max_bad_commands", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, max_bad_commands),
	  .def = "20", .min = 1, .max = 100000,
	  .doc = "BAD replies in a row before disconnecting" },
	{ .name = "max_auth_failures", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, max_auth_failures),
	  .def = "3", .min = 1, .max = 1000,
	  .doc = "failed logins before disconnecting" },
	{ .name = "idle_poll_interval", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct imap_settings, idle_poll_ms),
	  .def = "15s", .min = 1000, .max = 3600000,
	  .doc = "how often IDLE looks for changes when the mailbox cannot "
	         "be watched (inotify's limits reached: logged once); with "
	         "inotify, changes come at once and nothing polls" },
	{ .name = "commands_per_second", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, commands_per_sec),
	  .def = "1000", .min = 0, .max = 1000000,
	  .doc = "sustained commands per connection, 0: no limit" },
	{ .name = "plaintext_auth", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct imap_settings, plaintext_auth),
	  .def = "false",
	  .doc = "allow LOGIN and AUTHENTICATE without TLS" },
	{ .name = "loopback_is_secure", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct imap_settings, loopback_secure),
	  .def = "true",
	  .doc = "allow logins without TLS from loopback" },
	{ .name = "literal_plus", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct imap_settings, literal_plus),
	  .def = "true",
	  .doc = "LITERAL+ (true) or LITERAL- (false), RFC 7888" },
	{ .name = "fetch_batch", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, fetch_batch),
	  .def = "256K", .min = 4096, .max = 67108864LL,
	  .doc = "FETCH output produced per step (back-pressure)" },
	{ .name = "max_fetch_items", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, max_fetch_items),
	  .def = "100", .min = 8, .max = 100000,
	  .doc = "items in one FETCH (more: NO [LIMIT])" },
	{ .name = "max_search_keys", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, max_search_keys),
	  .def = "256", .min = 8, .max = 1000000,
	  .doc = "search keys in one SEARCH (more: NO [LIMIT])" },
	{ .name = "max_search_needle", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, max_search_needle),
	  .def = "16K", .min = 1024, .max = 16777216LL,
	  .doc = "octets of all strings of one SEARCH (more: NO [LIMIT])" },
	{ .name = "literal_memory", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, literal_memory),
	  .def = "256K", .min = 8192, .max = 67108864LL,
	  .doc = "larger APPEND literals are spooled to a file; other "
	         "commands refuse them (BAD [TOOBIG])" },
	{ .name = "heavy_jobs", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, heavy_jobs),
	  .def = "2", .min = 1, .max = 1024,
	  .doc = "FETCH and SEARCH steps on the job pool at once per "
	         "worker; below job_threads, so short commands find a "
	         "free thread" },
	{ .name = "sort_memory", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, sort_memory),
	  .def = "128M", .min = 65536, .max = 17179869184LL,
	  .doc = "sort keys one SORT or THREAD holds (more: NO [LIMIT])" },
	{ .name = "sort_cache", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct imap_settings, sort_cache),
	  .def = "64M", .min = 0, .max = 17179869184LL,
	  .doc = "sort keys kept per worker for the next SORT or THREAD "
	         "of any session, 0: none" },
	{ .name = "notify_max_mailboxes", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, notify_max_mailboxes),
	  .def = "256", .min = 1, .max = 100000,
	  .doc = "mailboxes one NOTIFY watches (more: NO or * OK "
	         "[NOTIFICATIONOVERFLOW])" },
	{ .name = "max_userip_connections", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct imap_settings, max_userip_conns),
	  .def = "10", .min = 0, .max = 100000,
	  .doc = "logged-in sessions of one user from one address, "
	         "0: no limit" },
	{ .name = NULL },
};

/* The protocol's limits from the configuration. */
static void
protocol_setup(void)
{
	struct postern_protocol *p = &imap_protocol;

	imap_protocol_init();
	p->listen_keys = listen_keys;
	p->listen_key_size = sizeof(struct postern_cfg_key);
	p->listen_size = sizeof(struct imap_listen);
	p->idle_ms = (unsigned)imap_cfg.idle_ms;
	/* A command line is cut by the reader (imap_parser.c), which
	 * answers one over max_line_length BAD with its tag: the host
	 * hands over every line its input buffer holds. */
	p->max_input = (size_t)imap_cfg.max_line + 4096;
	if (p->max_input < 65536)
		p->max_input = 65536;
	p->max_line = p->max_input;
	p->max_errors = (unsigned)imap_cfg.max_bad_commands;
	p->max_login_failures = (unsigned)imap_cfg.max_auth_failures;
}

/* Services are all published before the workers fork. */
static int
worker_start(void *arg)
{
	(void)arg;
	imap_storage = imap_host->service_lookup(imap_self,
	                                         POSTERN_STORAGE_SERVICE,
	                                         POSTERN_STORAGE_MAJOR, 1);
	if (imap_storage == NULL) {
		imap_host->log(imap_self, POSTERN_LOG_ERROR,
		               "no storage service 1.1: load a storage module "
		               "(storage_maildir)");
		return -1;
	}
	/* Optional: URLFETCH of another user's URL needs it. */
	imap_auth = imap_host->service_find(imap_self, POSTERN_AUTH_SERVICE,
	                                    POSTERN_AUTH_MAJOR, 0);
	return 0;
}

/* The loop ended: no job runs any more. */
static void
worker_exit(void *arg)
{
	(void)arg;
	imap_sortcache_free();
}

static const struct postern_worker_ops worker_ops = {
	.size = sizeof(struct postern_worker_ops),
	.start = worker_start,
	.exit = worker_exit,
};

static int
imap_init(const struct postern_host *h, postern_module_t *m)
{
	imap_host = h;
	imap_self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), imap_keys, &imap_cfg) < 0)
		return -1;
	if (imap_cfg.tls != NULL &&
	    (imap_tls = h->tls_create(m, imap_cfg.tls)) == NULL)
		return -1;
	imap_mime_init(h, m);
	if (imap_userip_init() < 0)
		return -1;
	protocol_setup();
	if (h->session_listen(m, &imap_protocol, imap_cfg.listen,
	                      imap_tls) < 0)
		return -1;
	/* URLAUTH URLs for a submission server (BURL, RFC 4468): resolved
	 * here, by the code URLFETCH uses. */
	if (h->service_publish(m, POSTERN_URLAUTH_SERVICE,
	                       POSTERN_URLAUTH_MAJOR, POSTERN_URLAUTH_MINOR,
	                       &imap_urlauth_service) < 0)
		return -1;
	return h->worker_ops(m, &worker_ops, NULL);
}

POSTERN_MODULE(.name = "imap", .version = "1.0",
               .kind = POSTERN_KIND_PROTOCOL, .init = imap_init);
