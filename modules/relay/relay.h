/*
 * relay.h - what the relay module's files share: settings, the
 * scheduler's destinations and deliveries, the SMTP/LMTP client.
 *
 * Runtime model.  Every worker process runs a scheduler over the one
 * queue directory (relay_queue.h).  A message is claimed by the worker
 * that locks its file (flock), so it is attempted by exactly one worker
 * at a time; the lock is held from loading to the state log update.
 * A claimed message's pending recipients are grouped by next hop into
 * deliveries (struct relay_dlv), queued on their destination (struct
 * relay_dest), and sent by client sessions (relay_client.c) that each
 * carry one delivery at a time and are reused for the next one.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <stdint.h>
#include <sys/queue.h>

#include <postern/postern.h>
#include <postern/relay.h>

#include "relay_queue.h"
#include "relay_retry.h"
#include "relay_route.h"

extern const struct postern_host *relay_host;
extern postern_module_t *relay_self;

struct relay_auth {
	char *user;
	char *password;
};

struct relay_settings {
	const char *hostname;
	const char *queue_dir;
	postern_cfg_t *routes;
	const char *tls_ca;
	long long retry_min, retry_max, lifetime, delay_warning;
	long long scan_interval;
	long long max_connections, max_per_destination, max_active;
	long long connect_timeout, command_timeout, data_init_timeout;
	long long data_block_timeout, data_done_timeout, reuse_timeout;
	long long max_messages_per_connection;
};

extern struct relay_settings relay_cfg;
extern char relay_queue_dir[3800];   /* the queue's directory */
/* relay_admin.c: the relay_admin service's table. */
extern const struct postern_relay_admin relay_admin_table;
extern struct relay_retry_policy relay_retry;
extern struct relay_routes *relay_route_table;
extern postern_tls_t *relay_tls_client;

/* One recipient's outcome in a delivery. */
struct relay_result {
	size_t rcpt;         /* index in the message */
	int code;            /* 0: not attempted; else the reply code */
	char dsn[16];        /* enhanced status */
	char *text;          /* reply or reason (malloc'd) */
	int accepted;        /* RCPT got 2xx (SMTP/LMTP) */
};

struct relay_msg;        /* a claimed message (relay_module.c) */

/* The relay service's enqueue (relay_module.c), also for the alias
 * forwards of local recipients. */
int relay_enqueue(const struct postern_relay_envelope *env,
                  const struct postern_relay_message *msg, char *queue_id,
                  size_t queue_id_len, char *err, size_t errlen);
struct relay_dest;
struct relay_sess;

/* The recipients of one message that go through one destination. */
struct relay_dlv {
	struct relay_msg *msg;
	struct rq_msg *q;    /* msg's queue data (borrowed) */
	struct relay_dest *dest;
	struct relay_result *res;
	size_t nres;
	uint64_t started_ms;
	TAILQ_ENTRY(relay_dlv) link; /* dest's queue */
};

TAILQ_HEAD(relay_dlv_list, relay_dlv);
TAILQ_HEAD(relay_sess_list, relay_sess);

/* One next hop: a route's via, or a domain's MX. */
struct relay_dest {
	char *key;
	const struct relay_route *route;
	char *domain;               /* the recipient domain (MX, logs) */
	struct relay_dlv_list queue;
	struct relay_sess_list idle;
	unsigned nsess;             /* open sessions (busy and idle) */
	unsigned nqueued;
	struct relay_dest *next;
};

/* relay_module.c: the client reports a delivery's end (every result
 * set, 2xx/4xx/5xx or code 0 for "not attempted"); the delivery is
 * freed by the scheduler. */
void relay_dlv_done(struct relay_dlv *d, const char *relay_name);
/* The client's session ended; idle or busy count changes. */
void relay_dest_sess_gone(struct relay_dest *dest);
/* A next delivery for a session of `dest` that is free, or NULL. */
struct relay_dlv *relay_dest_next(struct relay_dest *dest);

/* relay_client.c */
/* Opens a session for `dest` carrying `first`.  On failure to even
 * start, the delivery is finished (deferred) before this returns. */
void relay_client_start(struct relay_dest *dest, struct relay_dlv *first);
/* Hands an idle session its next delivery. */
void relay_client_give(struct relay_sess *s, struct relay_dlv *d);
/* Closes every idle session of `dest` (graceful stop). */
void relay_client_close_idle(struct relay_dest *dest);

/* Sets a result (text copied). */
void relay_result_set(struct relay_result *r, int code, const char *dsn,
                      const char *text);

/* Credentials for a route's auth_file, loaded at init. */
const struct relay_auth *relay_auth_for(const char *file);

#endif /* RELAY_RELAY_H */
