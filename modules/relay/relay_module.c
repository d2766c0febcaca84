/*
 * relay_module.c - the relay module: configuration, the `relay` service
 * (enqueue), and each worker's scheduler over the queue (see relay.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "relay.h"
#include "relay_dsn.h"
#include "relay_local.h"

#define HASH_BUCKETS 65536
#define TICK_MS 1000
/* A log file without its message, older than this, is debris of an
 * enqueue that failed half-way (or a crash in it). */
#define DEBRIS_AGE_S 3600

const struct postern_host *relay_host;
postern_module_t *relay_self;
struct relay_settings relay_cfg;
struct relay_retry_policy relay_retry;
struct relay_routes *relay_route_table;
postern_tls_t *relay_tls_client;

char relay_queue_dir[3800];
static char system_hostname[256];

/* ---- configuration ---------------------------------------------------- */

struct route_conf {
	const char *domain, *via, *tls, *auth_file;
};

static const struct postern_cfg_key route_keys[] = {
	{ .name = "domain", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct route_conf, domain),
	  .flags = POSTERN_CFG_REQUIRED,
	  .doc = "recipient domain: \"example.net\", \"*.example.net\" or "
	         "\"*\" (the default)" },
	{ .name = "via", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct route_conf, via),
	  .flags = POSTERN_CFG_REQUIRED,
	  .doc = "next hop: mx, smtp:[host]:port, smtp:host, lmtp:host:port "
	         "or lmtp:unix:/path" },
	{ .name = "tls", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct route_conf, tls), .def = "may",
	  .doc = "STARTTLS: none, may, encrypt or verify (CA and host name)" },
	{ .name = "auth_file", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct route_conf, auth_file),
	  .doc = "file with \"user:password\" for AUTH to the next hop; "
	         "must not be readable by others" },
	{ .name = NULL },
};

#define S(f) offsetof(struct relay_settings, f)
static const struct postern_cfg_key relay_keys[] = {
	{ .name = "hostname", .type = POSTERN_CFG_STRING, .offset = S(hostname),
	  .def = "", .doc = "name in EHLO and DSNs (default: the system's)" },
	{ .name = "queue_dir", .type = POSTERN_CFG_STRING,
	  .offset = S(queue_dir), .def = "",
	  .doc = "the queue (default: state_dir/relay)" },
	{ .name = "routes", .type = POSTERN_CFG_LIST, .offset = S(routes),
	  .schema = route_keys,
	  .doc = "where mail goes, by recipient domain: exact, then "
	         "*.wildcard, then \"*\"" },
	{ .name = "tls_ca", .type = POSTERN_CFG_STRING, .offset = S(tls_ca),
	  .doc = "CA file for tls = verify routes (default: the system's)" },
	{ .name = "retry_min", .type = POSTERN_CFG_DURATION,
	  .offset = S(retry_min), .def = "5m", .min = 1000,
	  .max = 86400000LL, .doc = "first delay after a temporary failure" },
	{ .name = "retry_max", .type = POSTERN_CFG_DURATION,
	  .offset = S(retry_max), .def = "4000s", .min = 1000,
	  .max = 86400000LL, .doc = "longest delay between attempts" },
	{ .name = "lifetime", .type = POSTERN_CFG_DURATION,
	  .offset = S(lifetime), .def = "5d", .min = 1000,
	  .max = 60LL * 86400000LL,
	  .doc = "give up (and bounce) after this long in the queue" },
	{ .name = "delay_warning", .type = POSTERN_CFG_DURATION,
	  .offset = S(delay_warning), .def = "0", .min = 0,
	  .max = 60LL * 86400000LL,
	  .doc = "once a recipient has waited this long in the queue, one "
	         "delay report (RFC 3464 \"delayed\") goes to the sender; "
	         "0: none (Postfix's delay_warning_time)" },
	{ .name = "scan_interval", .type = POSTERN_CFG_DURATION,
	  .offset = S(scan_interval), .def = "30s", .min = 100,
	  .max = 3600000LL,
	  .doc = "how often each worker looks for messages it does not "
	         "know (after a restart, from another worker)" },
	{ .name = "max_connections", .type = POSTERN_CFG_INT,
	  .offset = S(max_connections), .def = "100", .min = 1, .max = 10000,
	  .doc = "outbound connections per worker" },
	{ .name = "max_per_destination", .type = POSTERN_CFG_INT,
	  .offset = S(max_per_destination), .def = "20", .min = 1,
	  .max = 10000, .doc = "outbound connections per next hop, per "
	                       "worker" },
	{ .name = "max_active", .type = POSTERN_CFG_INT,
	  .offset = S(max_active), .def = "500", .min = 1, .max = 100000,
	  .doc = "messages a worker works on at once" },
	{ .name = "max_messages_per_connection", .type = POSTERN_CFG_INT,
	  .offset = S(max_messages_per_connection), .def = "100", .min = 0,
	  .max = 1000000, .doc = "then QUIT and reconnect (0: no limit)" },
	{ .name = "connect_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = S(connect_timeout), .def = "30s", .min = 100,
	  .max = 3600000LL, .doc = "TCP connect" },
	{ .name = "command_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = S(command_timeout), .def = "5m", .min = 100,
	  .max = 3600000LL,
	  .doc = "greeting, EHLO, MAIL, RCPT replies (RFC 5321: 5m)" },
	{ .name = "data_init_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = S(data_init_timeout), .def = "2m", .min = 100,
	  .max = 3600000LL, .doc = "the DATA reply (RFC 5321: 2m)" },
	{ .name = "data_block_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = S(data_block_timeout), .def = "3m", .min = 100,
	  .max = 3600000LL,
	  .doc = "progress while sending the message (RFC 5321: 3m)" },
	{ .name = "data_done_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = S(data_done_timeout), .def = "10m", .min = 100,
	  .max = 3600000LL,
	  .doc = "the reply to the final dot (RFC 5321: 10m)" },
	{ .name = "reuse_timeout", .type = POSTERN_CFG_DURATION,
	  .offset = S(reuse_timeout), .def = "5s", .min = 100,
	  .max = 300000LL,
	  .doc = "an idle connection is kept this long for the next "
	         "message to the same next hop" },
	{ .name = NULL },
};
#undef S

/* Credentials read at init, before privileges are dropped. */
struct auth_entry {
	char *file;
	struct relay_auth a;
	struct auth_entry *next;
};

static struct auth_entry *auths;

const struct relay_auth *
relay_auth_for(const char *file)
{
	struct auth_entry *e;

	for (e = auths; e != NULL; e = e->next)
		if (strcmp(e->file, file) == 0)
			return &e->a;
	return NULL;
}

static int
load_auth(postern_cfg_t *node, const char *file)
{
	struct auth_entry *e;
	char line[2048], path[4096], *colon, *nl;
	const char *dir = relay_host->dir(POSTERN_DIR_CONFIG);
	struct stat st;
	FILE *f;

	if (relay_auth_for(file) != NULL)
		return 0;
	if (file[0] != '/' && dir != NULL)
		snprintf(path, sizeof(path), "%s/%s", dir, file);
	else
		snprintf(path, sizeof(path), "%s", file);
	if ((f = fopen(path, "re")) == NULL) {
		relay_host->cfg_error(relay_self, node, "auth_file %s: %s",
		                      path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0007) != 0) {
		relay_host->cfg_error(relay_self, node, "auth_file %s is "
		                      "readable by others (mode %03o): "
		                      "refusing it", path,
		                      (unsigned)st.st_mode & 0777);
		fclose(f);
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL ||
	    (colon = strchr(line, ':')) == NULL || colon == line) {
		relay_host->cfg_error(relay_self, node, "auth_file %s: the "
		                      "first line must be user:password", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	if ((nl = strpbrk(line, "\r\n")) != NULL)
		*nl = '\0';
	*colon = '\0';
	if ((e = calloc(1, sizeof(*e))) == NULL)
		abort();
	e->file = strdup(file);
	e->a.user = strdup(line);
	e->a.password = strdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	e->next = auths;
	auths = e;
	return 0;
}

static int
load_routes(void)
{
	struct route_conf rc;
	struct relay_route_spec spec;
	postern_cfg_t *node;
	char err[512];
	size_t i, n = relay_host->cfg_count(relay_cfg.routes);

	if ((relay_route_table = relay_routes_create()) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		node = relay_host->cfg_elem(relay_cfg.routes, i);
		memset(&rc, 0, sizeof(rc));
		if (POSTERN_CFG_PARSE(relay_host, relay_self, node, route_keys,
		                      &rc) < 0)
			return -1;
		spec.domain = rc.domain;
		spec.via = rc.via;
		spec.tls = rc.tls;
		spec.auth_file = rc.auth_file;
		if (relay_routes_add(relay_route_table, &spec, err,
		                     sizeof(err)) < 0) {
			relay_host->cfg_error(relay_self, node, "%s", err);
			return -1;
		}
		if (rc.auth_file != NULL && load_auth(node, rc.auth_file) < 0)
			return -1;
	}
	if (n == 0)
		relay_host->log(relay_self, POSTERN_LOG_WARNING, "no routes: "
		                "every relayed message will wait in the queue "
		                "until one is configured");
	return 0;
}

/* ---- the scheduler's table of messages ---------------------------------- */

/* A message this worker knows of. */
struct qent {
	char id[RQ_ID_MAX];
	int64_t due;        /* wall-clock ms; INT64_MAX: held or bad */
	int active;         /* claimed by this worker */
	int force;          /* flush: ignore the recipients' next_try */
	int listed;         /* on dueq or laterq */
	int on_due;
	struct qent *hnext;
	TAILQ_ENTRY(qent) link;
};

TAILQ_HEAD(qent_list, qent);

/* A claimed message (file locked). */
struct relay_msg {
	struct qent *e;
	struct rq_msg *q;
	unsigned pending;      /* deliveries in flight */
	unsigned char *tried;  /* per recipient: attempted now */
	char **remote;         /* per recipient: the host that answered */
	unsigned char *warn;   /* per recipient: warned of its delay now */
	struct relay_local *local; /* which recipients are ours, or NULL */
	int64_t now;
};

static struct {
	struct qent *hash[HASH_BUCKETS];
	struct qent_list dueq, laterq;
	size_t nactive;
	struct relay_dest *dests;
	unsigned nsess;
	postern_timer_t *tick;
	int64_t last_scan;
	struct timespec flush_seen;
	int wake_fd[2];
	postern_watch_t *wake_watch;
	pthread_mutex_t lock;    /* guards fresh (job threads push) */
	char (*fresh)[RQ_ID_MAX];
	size_t nfresh, capfresh;
	int started;
} rs = {
	.dueq = TAILQ_HEAD_INITIALIZER(rs.dueq),
	.laterq = TAILQ_HEAD_INITIALIZER(rs.laterq),
	.wake_fd = { -1, -1 },
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static void pump(void);

/* Queues a message under `want` when that is a free id, else under a new
 * one; `id` (RQ_ID_MAX) gets the name.  0, or -1 with errno and err. */
static int
queue_write(const struct postern_relay_envelope *env,
            const struct postern_relay_message *msg, const char *want,
            char *id, char *err, size_t errlen)
{
	int tries;

	for (tries = 0; tries < 10; tries++) {
		if (tries == 0 && want != NULL && rq_id_valid(want))
			snprintf(id, RQ_ID_MAX, "%s", want);
		else
			relay_host->unique_id(id, RQ_ID_MAX);
		if (rq_write(relay_queue_dir, env, msg, id, err, errlen) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* ---- metrics ------------------------------------------------------------ */

/* Per-recipient attempt outcomes, as the log lines' status=. */
enum { ATTEMPT_SENT, ATTEMPT_DEFERRED, ATTEMPT_BOUNCED, ATTEMPT_EXPIRED };
/* The queue's messages: claimed (by the worker that counts them), and
 * as worker 0's scheduler sees the rest (every worker scans the whole
 * queue, so one of them counts it): due now, or waiting for a later
 * attempt (held ones too: a hold is seen when the message is loaded,
 * and a message another worker holds is "later" here). */
enum { QUEUE_ACTIVE, QUEUE_DUE, QUEUE_LATER };

static postern_metric_t *attempts_metric, *queue_metric;

static void
metrics_register(void)
{
	static const char *attempts[] = { "sent", "deferred", "bounced",
		"expired", NULL };
	static const char *states[] = { "active", "due", "later", NULL };

	attempts_metric = relay_host->metric_register(relay_self,
	    "relay_attempts", "delivery attempts per recipient, by outcome "
	    "(local recipients of reports included)",
	    POSTERN_METRIC_COUNTER, "status", attempts);
	queue_metric = relay_host->metric_register(relay_self, "relay_queue",
	    "queued messages: active (being delivered), due, later "
	    "(next attempt later, or held)",
	    POSTERN_METRIC_GAUGE, "state", states);
}

/* Each tick: this worker's claims; worker 0 also counts the lists. */
static void
queue_metrics(void)
{
	struct qent *e;
	uint64_t due = 0, later = 0;

	relay_host->metric_set(queue_metric, QUEUE_ACTIVE, rs.nactive);
	if (relay_host->worker_id() != 0)
		return;
	TAILQ_FOREACH(e, &rs.dueq, link)
		due++;
	TAILQ_FOREACH(e, &rs.laterq, link)
		later++;
	relay_host->metric_set(queue_metric, QUEUE_DUE, due);
	relay_host->metric_set(queue_metric, QUEUE_LATER, later);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned
id_hash(const char *id)
{
	unsigned h = 2166136261u;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % HASH_BUCKETS;
}

static struct qent *
qent_find(const char *id)
{
	struct qent *e;

	for (e = rs.hash[id_hash(id)]; e != NULL; e = e->hnext)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void
qent_unlist(struct qent *e)
{
	if (!e->listed)
		return;
	if (e->on_due)
		TAILQ_REMOVE(&rs.dueq, e, link);
	else
		TAILQ_REMOVE(&rs.laterq, e, link);
	e->listed = e->on_due = 0;
}

static void
qent_schedule(struct qent *e, int64_t due)
{
	qent_unlist(e);
	e->due = due;
	e->listed = 1;
	if (due <= wall_ms()) {
		e->on_due = 1;
		TAILQ_INSERT_TAIL(&rs.dueq, e, link);
	} else {
		TAILQ_INSERT_TAIL(&rs.laterq, e, link);
	}
}

/* Known from now on, due at once (unless already known). */
static struct qent *
qent_add(const char *id)
{
	struct qent *e = qent_find(id);
	unsigned h;

	if (e != NULL)
		return e;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		abort();
	snprintf(e->id, sizeof(e->id), "%s", id);
	h = id_hash(id);
	e->hnext = rs.hash[h];
	rs.hash[h] = e;
	qent_schedule(e, 0);
	return e;
}

static void
qent_forget(struct qent *e)
{
	struct qent **pp;

	qent_unlist(e);
	for (pp = &rs.hash[id_hash(e->id)]; *pp != NULL;
	     pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	free(e);
}

/* ---- destinations ------------------------------------------------------ */

static struct relay_dest *
dest_get(const struct relay_route *rt, const char *domain)
{
	struct relay_dest *d;
	char key[1024], via[512];

	relay_via_format(&rt->via, via, sizeof(via));
	if (rt->via.kind == RELAY_VIA_MX)
		snprintf(key, sizeof(key), "mx:%s|%s", domain, rt->pattern);
	else
		snprintf(key, sizeof(key), "%s|%s", via, rt->pattern);
	for (d = rs.dests; d != NULL; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		abort();
	d->key = strdup(key);
	d->route = rt;
	d->domain = strdup(domain);
	TAILQ_INIT(&d->queue);
	TAILQ_INIT(&d->idle);
	d->next = rs.dests;
	rs.dests = d;
	return d;
}

static void
dest_pump(struct relay_dest *d)
{
	struct relay_dlv *dlv;
	struct relay_sess *s;

	while (d->nqueued > 0) {
		if ((s = TAILQ_FIRST(&d->idle)) != NULL) {
			dlv = relay_dest_next(d);
			relay_client_give(s, dlv);
			continue;
		}
		if (d->nsess >= (unsigned)relay_cfg.max_per_destination ||
		    rs.nsess >= (unsigned)relay_cfg.max_connections)
			return;
		dlv = relay_dest_next(d);
		rs.nsess++;
		relay_client_start(d, dlv);
	}
}

struct relay_dlv *
relay_dest_next(struct relay_dest *dest)
{
	struct relay_dlv *d = TAILQ_FIRST(&dest->queue);

	if (d != NULL) {
		TAILQ_REMOVE(&dest->queue, d, link);
		dest->nqueued--;
	}
	return d;
}

void
relay_dest_sess_gone(struct relay_dest *dest)
{
	struct relay_dest *d;

	dest->nsess--;
	rs.nsess--;
	/* A connection slot is free: whoever waits for one may go. */
	for (d = rs.dests; d != NULL; d = d->next)
		if (d->nqueued > 0)
			dest_pump(d);
}

/* ---- finishing a message ------------------------------------------------ */

struct commit {
	struct relay_msg *m;
	char *lines;
	size_t len;
	int done;             /* every recipient final: remove */
	int rc;               /* -1: the log could not be written */
	int err;
	char dsn_id[RQ_ID_MAX];
	char dsn_err[512];
};

static void msg_free(struct relay_msg *m);

/* Queues (from a job thread) the new message `id` for this worker. */
static void
fresh_push(const char *id)
{
	char one = 1;
	void *v;

	pthread_mutex_lock(&rs.lock);
	if (rs.nfresh == rs.capfresh) {
		rs.capfresh = rs.capfresh ? rs.capfresh * 2 : 64;
		if ((v = realloc(rs.fresh, rs.capfresh * RQ_ID_MAX)) == NULL)
			abort();
		rs.fresh = v;
	}
	snprintf(rs.fresh[rs.nfresh++], RQ_ID_MAX, "%s", id);
	pthread_mutex_unlock(&rs.lock);
	if (rs.wake_fd[1] >= 0 && write(rs.wake_fd[1], &one, 1) < 0 &&
	    errno != EAGAIN)
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "wake-up "
		                "pipe: %s", strerror(errno));
}

/* 1 if the recipient asked for a report of `what`. */
static int
wants(const struct rq_rcpt *r, unsigned what)
{
	if (r->notify & POSTERN_DSN_NOTIFY_NEVER)
		return 0;
	if (r->notify == 0)
		return what == POSTERN_DSN_NOTIFY_FAILURE;
	return (r->notify & what) != 0;
}

/* Writes one report for the recipients just failed (and delivered with
 * NOTIFY=SUCCESS) and queues it.  Job thread. */
static void
commit_dsn(struct commit *c)
{
	struct relay_msg *m = c->m;
	struct rq_msg *q = m->q;
	struct relay_dsn_rcpt *rr;
	struct relay_dsn dsn;
	struct relay_out out;
	struct postern_relay_rcpt to = { .size = sizeof(to) };
	struct postern_relay_envelope env = { .size = sizeof(env) };
	struct postern_relay_message msg = { .size = sizeof(msg) };
	char unique[64], err[400];
	size_t i, n = 0, len;
	char *data;
	enum relay_dsn_result r;

	if (*q->sender == '\0')
		return; /* never to the null sender */

	if ((rr = calloc(q->nrcpts, sizeof(*rr))) == NULL)
		abort();
	for (i = 0; i < q->nrcpts; i++) {
		struct rq_rcpt *rc = &q->rcpts[i];

		if (!m->tried[i])
			continue;
		if (rc->state == RQ_FAILED &&
		    wants(rc, POSTERN_DSN_NOTIFY_FAILURE))
			rr[n].action = RELAY_DSN_FAILED;
		else if (rc->state == RQ_SENT &&
		         wants(rc, POSTERN_DSN_NOTIFY_SUCCESS))
			rr[n].action = RELAY_DSN_DELIVERED;
		else if (rc->state == RQ_PENDING && m->warn[i]) {
			rr[n].action = RELAY_DSN_DELAYED;
			rr[n].will_retry_until = q->arrival +
			                         relay_retry.lifetime_s;
		} else
			continue;
		rr[n].final_rcpt = rc->address;
		rr[n].orcpt = rc->orcpt;
		rr[n].status = rc->dsn[0] != '\0' ? rc->dsn : "5.0.0";
		rr[n].remote_mta = m->remote[i];
		rr[n].diagnostic = rc->text;
		rr[n].last_attempt = rc->last_try;
		n++;
	}
	if (n == 0) {
		free(rr);
		return;
	}
	memset(&dsn, 0, sizeof(dsn));
	snprintf(unique, sizeof(unique), "%s.%lld", q->id, (long long)m->now);
	dsn.reporting_mta = relay_cfg.hostname;
	dsn.sender = q->sender;
	dsn.envid = q->envid;
	dsn.arrival = q->arrival;
	dsn.now = m->now;
	dsn.unique = unique;
	dsn.ret = q->ret == POSTERN_DSN_RET_FULL ? RELAY_DSN_RET_FULL
	          : q->ret == POSTERN_DSN_RET_HDRS ? RELAY_DSN_RET_HDRS
	                                           : RELAY_DSN_RET_DEFAULT;
	dsn.orig_8bit = q->body == POSTERN_BODY_8BITMIME ||
	                q->body == POSTERN_BODY_BINARYMIME;
	dsn.orig_fd = q->fd;
	dsn.orig_offset = (off_t)q->msg_offset;
	dsn.orig_len = q->msg_len;
	dsn.rcpts = rr;
	dsn.nrcpts = n;
	relay_out_init_mem(&out);
	r = relay_dsn_write(&dsn, &out, err, sizeof(err));
	free(rr);
	if (r != RELAY_DSN_OK || (data = relay_out_take(&out, &len)) == NULL) {
		relay_out_release(&out);
		snprintf(c->dsn_err, sizeof(c->dsn_err), "cannot write the "
		         "report: %s", r != RELAY_DSN_OK ? err : "no memory");
		return;
	}
	to.address = q->sender;
	to.notify = POSTERN_DSN_NOTIFY_NEVER;
	env.sender = "";
	env.body = dsn.orig_8bit ? POSTERN_BODY_8BITMIME
	                         : POSTERN_BODY_UNSPECIFIED;
	env.smtputf8 = q->smtputf8;
	env.rcpts = &to;
	env.nrcpts = 1;
	msg.fd = -1;
	msg.data = data;
	msg.length = len;
	if (queue_write(&env, &msg, NULL, c->dsn_id, c->dsn_err,
	                sizeof(c->dsn_err)) < 0)
		c->dsn_id[0] = '\0';
	else
		fresh_push(c->dsn_id);
	free(data);
}

static void
commit_work(void *arg)
{
	struct commit *c = arg;

	c->rc = 0;
	if (c->len > 0) {
		commit_dsn(c);
		if (rq_append(relay_queue_dir, c->m->q->id, c->lines, c->len) < 0) {
			c->rc = -1;
			c->err = errno;
			return;
		}
	}
	if (c->done && rq_remove(relay_queue_dir, c->m->q->id) < 0) {
		c->rc = -1;
		c->err = errno;
	}
}

static void
commit_done(void *arg, int cancelled)
{
	struct commit *c = arg;
	struct relay_msg *m = c->m;
	struct qent *e = m->e;
	int64_t next = INT64_MAX;
	size_t i;

	(void)cancelled;
	if (c->dsn_id[0] != '\0')
		relay_host->log(relay_self, POSTERN_LOG_INFO, "%s: sender "
		                "notification: %s", m->q->id, c->dsn_id);
	else if (c->dsn_err[0] != '\0')
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s: %s",
		                m->q->id, c->dsn_err);
	if (c->rc < 0)
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s: cannot "
		                "record delivery state in %s/q: %s (the "
		                "attempt will be repeated)", m->q->id,
		                relay_queue_dir, strerror(c->err));
	e->active = 0;
	e->force = 0;
	rs.nactive--;
	if (c->done && c->rc == 0) {
		qent_forget(e);
	} else {
		for (i = 0; i < m->q->nrcpts; i++)
			if (m->q->rcpts[i].state == RQ_PENDING &&
			    m->q->rcpts[i].next_try * 1000 < next)
				next = m->q->rcpts[i].next_try * 1000;
		if (c->rc < 0)
			next = wall_ms() + relay_retry.min_s * 1000LL;
		qent_schedule(e, next);
	}
	msg_free(m);
	free(c->lines);
	free(c);
	pump();
}

/* A recipient still deferred after delay_warning gets one report
 * saying so (RFC 3464 "delayed"), when its NOTIFY allows: DELAY asked
 * for, or no NOTIFY at all (RFC 3461 section 4.1 leaves that to us; as
 * Postfix does). */
static int
warn_now(const struct relay_msg *m, const struct rq_rcpt *r)
{
	return relay_cfg.delay_warning > 0 && r->state == RQ_PENDING &&
	       !r->warned && *m->q->sender != '\0' &&
	       (r->notify == 0 || (r->notify & POSTERN_DSN_NOTIFY_DELAY)) &&
	       !(r->notify & POSTERN_DSN_NOTIFY_NEVER) &&
	       (m->now - m->q->arrival) * 1000 >= relay_cfg.delay_warning;
}

/* Every delivery of the message is done: record and release it. */
static void
msg_commit(struct relay_msg *m)
{
	struct commit *c;
	struct rq_rcpt *r;
	char line[RQ_TEXT_MAX + 256];
	size_t i, n;
	FILE *f;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->m = m;
	if ((f = open_memstream(&c->lines, &c->len)) == NULL)
		abort();
	for (i = 0; i < m->q->nrcpts; i++) {
		r = &m->q->rcpts[i];
		if (!m->tried[i])
			continue;
		n = rq_log_line(line, sizeof(line),
		                r->state == RQ_SENT     ? "sent"
		                : r->state == RQ_FAILED ? "failed"
		                                        : "defer",
		                (long)i, r->last_try, r->failures, r->next_try,
		                r->dsn, r->text);
		fwrite(line, 1, n, f);
		if (warn_now(m, r)) {
			m->warn[i] = 1;
			r->warned = 1;
			n = rq_log_line(line, sizeof(line), "warned", (long)i,
			                m->now, r->failures, r->next_try,
			                r->dsn, "delay report sent");
			fwrite(line, 1, n, f);
		}
	}
	fclose(f);
	c->done = rq_done(m->q);
	if (relay_host->job_submit(commit_work, commit_done, c) == NULL) {
		commit_work(c); /* no pool: do it here rather than lose it */
		commit_done(c, 0);
	}
}

static void
dlv_free(struct relay_dlv *d)
{
	size_t i;

	for (i = 0; i < d->nres; i++)
		free(d->res[i].text);
	free(d->res);
	free(d);
}

void
relay_dlv_done(struct relay_dlv *d, const char *relay_name)
{
	struct relay_msg *m = d->msg;
	struct rq_msg *q = m->q;
	struct relay_result *res;
	struct rq_rcpt *r;
	int64_t now = wall_ms() / 1000, next;
	uint32_t rnd;
	const char *status;
	unsigned outcome;
	size_t i;

	for (i = 0; i < d->nres; i++) {
		res = &d->res[i];
		r = &q->rcpts[res->rcpt];
		if (res->code == 0)
			relay_result_set(res, 451, "4.3.0",
			                 "not attempted (the worker is "
			                 "stopping)");
		m->tried[res->rcpt] = 1;
		free(m->remote[res->rcpt]);
		/* A local delivery has no Remote-MTA to report. */
		m->remote[res->rcpt] = d->dest != NULL ? strdup(relay_name)
		                                       : NULL;
		r->last_try = now;
		snprintf(r->dsn, sizeof(r->dsn), "%s", res->dsn);
		free(r->text);
		r->text = strdup(res->text);
		if (res->code / 100 == 2) {
			r->state = RQ_SENT;
			status = "sent";
			outcome = ATTEMPT_SENT;
		} else if (res->code / 100 == 5) {
			r->state = RQ_FAILED;
			status = "bounced";
			outcome = ATTEMPT_BOUNCED;
		} else {
			r->failures++;
			if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
				rnd = (uint32_t)now;
			if (relay_retry_next(&relay_retry, q->arrival, now,
			                     r->failures, rnd, &next) ==
			    RELAY_RETRY_EXPIRED) {
				r->state = RQ_FAILED;
				snprintf(r->dsn, sizeof(r->dsn), "4.4.7");
				status = "expired";
				outcome = ATTEMPT_EXPIRED;
			} else {
				r->next_try = next;
				status = "deferred";
				outcome = ATTEMPT_DEFERRED;
			}
		}
		relay_host->metric_add(attempts_metric, outcome, 1);
		/* One line per attempt, in Postfix's shape, for grep. */
		relay_host->log(relay_self, POSTERN_LOG_INFO,
		                "%s: to=<%s>, relay=%s, delay=%.1f, "
		                "dsn=%s, status=%s (%s)", q->id, r->address,
		                relay_name,
		                (double)(wall_ms() - q->arrival * 1000) /
		                    1000.0,
		                r->dsn, status, r->text);
	}
	dlv_free(d);
	if (--m->pending == 0)
		msg_commit(m);
}

/* ---- claiming a message ------------------------------------------------ */

static void
msg_free(struct relay_msg *m)
{
	size_t i;

	for (i = 0; m->remote != NULL && i < m->q->nrcpts; i++)
		free(m->remote[i]);
	free(m->remote);
	free(m->tried);
	free(m->warn);
	relay_local_free(m->local);
	rq_free(m->q);
	free(m);
}

static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

static void
local_work(void *arg)
{
	struct relay_dlv *d = arg;

	relay_local_deliver(d, d->msg->local);
}

static void
local_done(void *arg, int cancelled)
{
	(void)cancelled; /* results not set say "not attempted" */
	relay_dlv_done(arg, "local");
}

/* A delivery to the local mailboxes: no destination, a job. */
static struct relay_dlv *
local_dlv(struct relay_msg *m, struct rq_msg *q)
{
	struct relay_dlv *d;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->res = calloc(q->nrcpts, sizeof(*d->res))) == NULL)
		abort();
	d->msg = m;
	d->q = q;
	d->started_ms = relay_host->now_ms();
	m->pending++;
	return d;
}

/* Groups the due recipients by destination into deliveries; the local
 * ones into one delivery on a job thread. */
static void
msg_start(struct qent *e, struct rq_msg *q, struct relay_local *local)
{
	struct relay_msg *m;
	struct relay_dlv **by_rcpt, *d, *here = NULL;
	const struct relay_route *rt;
	struct relay_dest *dest;
	int64_t now = wall_ms() / 1000;
	size_t i, j;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->tried = calloc(q->nrcpts, 1)) == NULL ||
	    (m->warn = calloc(q->nrcpts, 1)) == NULL ||
	    (m->remote = calloc(q->nrcpts, sizeof(char *))) == NULL ||
	    (by_rcpt = calloc(q->nrcpts, sizeof(*by_rcpt))) == NULL)
		abort();
	m->e = e;
	m->q = q;
	m->local = local;
	m->now = now;
	m->pending = 1; /* held until every delivery is queued */
	for (i = 0; i < q->nrcpts; i++) {
		struct rq_rcpt *r = &q->rcpts[i];

		if (r->state != RQ_PENDING || (!e->force && r->next_try > now))
			continue;
		if (relay_local_is(local, i)) {
			if (here == NULL)
				here = local_dlv(m, q);
			here->res[here->nres++].rcpt = i;
			continue;
		}
		rt = relay_routes_match(relay_route_table,
		                        rcpt_domain(r->address));
		if (rt == NULL) {
			/* No route: it waits for a configuration that
			 * has one, as the queue's lifetime allows. */
			m->tried[i] = 1;
			r->failures++;
			r->last_try = now;
			r->next_try = now + relay_retry.max_s;
			snprintf(r->dsn, sizeof(r->dsn), "4.4.4");
			free(r->text);
			r->text = strdup("no route for the recipient's domain");
			continue;
		}
		dest = dest_get(rt, rcpt_domain(r->address));
		/* Recipients of one message to one destination travel
		 * together. */
		for (j = 0, d = NULL; j < i && d == NULL; j++)
			if (by_rcpt[j] != NULL && by_rcpt[j]->dest == dest)
				d = by_rcpt[j];
		if (d == NULL) {
			if ((d = calloc(1, sizeof(*d))) == NULL ||
			    (d->res = calloc(q->nrcpts, sizeof(*d->res))) ==
			        NULL)
				abort();
			d->msg = m;
			d->q = q;
			d->dest = dest;
			d->started_ms = relay_host->now_ms();
			m->pending++;
			TAILQ_INSERT_TAIL(&dest->queue, d, link);
			dest->nqueued++;
		}
		d->res[d->nres++].rcpt = i;
		by_rcpt[i] = d;
	}
	free(by_rcpt);
	if (here != NULL &&
	    relay_host->job_submit(local_work, local_done, here) == NULL)
		local_done(here, 1);
	for (dest = rs.dests; dest != NULL; dest = dest->next)
		if (dest->nqueued > 0)
			dest_pump(dest);
	if (--m->pending == 0)
		msg_commit(m);
}

struct claim {
	struct qent *e;
	struct rq_msg *q;
	struct relay_local *local;
	enum rq_load_result r;
	char err[512];
};

static void
claim_work(void *arg)
{
	struct claim *c = arg;

	c->r = rq_load(relay_queue_dir, c->e->id, 1, &c->q, c->err, sizeof(c->err));
	if (c->r == RQ_LOAD_OK)
		c->local = relay_local_resolve(c->q);
}

static void
claim_done(void *arg, int cancelled)
{
	struct claim *c = arg;
	struct qent *e = c->e;
	int64_t now = wall_ms(), next = INT64_MAX;
	size_t i;

	(void)cancelled;
	switch (c->r) {
	case RQ_LOAD_OK:
		if (c->q->bad_lines > 0)
			relay_host->log(relay_self, POSTERN_LOG_WARNING, "%s: "
			                "%zu damaged state log lines ignored",
			                e->id, c->q->bad_lines);
		if (c->q->held || rq_done(c->q)) {
			/* Held, or finished before a crash removed it. */
			if (!c->q->held && rq_remove(relay_queue_dir, e->id) == 0) {
				rq_free(c->q);
				e->active = 0;
				rs.nactive--;
				qent_forget(e);
				break;
			}
			rq_free(c->q);
			e->active = 0;
			rs.nactive--;
			qent_schedule(e, INT64_MAX);
			break;
		}
		for (i = 0; i < c->q->nrcpts; i++)
			if (c->q->rcpts[i].state == RQ_PENDING &&
			    c->q->rcpts[i].next_try * 1000 < next)
				next = c->q->rcpts[i].next_try * 1000;
		if (!e->force && next > now) {
			/* Known from a scan: not due yet. */
			rq_free(c->q);
			e->active = 0;
			rs.nactive--;
			qent_schedule(e, next);
			break;
		}
		msg_start(e, c->q, c->local);
		c->local = NULL; /* the message's now */
		break;
	case RQ_LOAD_BUSY:
		e->active = 0;
		rs.nactive--;
		qent_schedule(e, now + relay_cfg.scan_interval);
		break;
	case RQ_LOAD_GONE:
		e->active = 0;
		rs.nactive--;
		qent_forget(e);
		break;
	case RQ_LOAD_CORRUPT:
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "queue file "
		                "%s/q/%s is damaged, left alone: %s", relay_queue_dir,
		                e->id, c->err);
		e->active = 0;
		rs.nactive--;
		qent_schedule(e, INT64_MAX);
		break;
	case RQ_LOAD_ERROR:
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s", c->err);
		e->active = 0;
		rs.nactive--;
		qent_schedule(e, now + relay_retry.min_s * 1000LL);
		break;
	}
	relay_local_free(c->local);
	free(c);
	pump();
}

/* Claims due messages while there is room. */
static void
pump(void)
{
	struct qent *e;
	struct claim *c;

	if (relay_host->stopping())
		return;
	while (rs.nactive < (size_t)relay_cfg.max_active &&
	       (e = TAILQ_FIRST(&rs.dueq)) != NULL) {
		qent_unlist(e);
		e->active = 1;
		rs.nactive++;
		if ((c = calloc(1, sizeof(*c))) == NULL)
			abort();
		c->e = e;
		if (relay_host->job_submit(claim_work, claim_done, c) == NULL) {
			e->active = 0;
			rs.nactive--;
			qent_schedule(e, wall_ms() + TICK_MS);
			free(c);
			return;
		}
	}
}

/* ---- the periodic work ------------------------------------------------- */

static void
scan_queue(void)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	size_t len;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/q", relay_queue_dir);
	if ((dir = opendir(path)) == NULL) {
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "scan %s: %s",
		                path, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		len = strlen(de->d_name);
		if (rq_id_valid(de->d_name)) {
			qent_add(de->d_name);
			continue;
		}
		if (len != 24 || strcmp(de->d_name + 20, ".log") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/q/%.20s", relay_queue_dir,
		         de->d_name);
		if (stat(path, &st) == 0 || errno != ENOENT)
			continue;
		snprintf(path, sizeof(path), "%s/q/%s", relay_queue_dir, de->d_name);
		if (stat(path, &st) == 0 &&
		    st.st_mtime + DEBRIS_AGE_S < time(NULL))
			unlink(path);
	}
	closedir(dir);
}

/* `posternctl queue flush` touched the flag file: everything now. */
static void
check_flush(void)
{
	char path[4096];
	struct stat st;
	struct qent *e;

	snprintf(path, sizeof(path), "%s/flush", relay_queue_dir);
	if (stat(path, &st) < 0 ||
	    (st.st_mtim.tv_sec == rs.flush_seen.tv_sec &&
	     st.st_mtim.tv_nsec == rs.flush_seen.tv_nsec))
		return;
	/* At start, an old flush is not a request. */
	if (!rs.started) {
		rs.flush_seen = st.st_mtim;
		return;
	}
	rs.flush_seen = st.st_mtim;
	scan_queue();
	while ((e = TAILQ_FIRST(&rs.laterq)) != NULL) {
		e->force = 1;
		qent_schedule(e, 0);
	}
}

static unsigned
tick(void *arg)
{
	struct qent *e, *next;
	int64_t now = wall_ms();

	(void)arg;
	if (relay_host->stopping())
		return 0;
	check_flush();
	if (now - rs.last_scan >= relay_cfg.scan_interval) {
		rs.last_scan = now;
		scan_queue();
	}
	for (e = TAILQ_FIRST(&rs.laterq); e != NULL; e = next) {
		next = TAILQ_NEXT(e, link);
		if (e->due <= now)
			qent_schedule(e, e->due);
	}
	pump();
	queue_metrics();
	return relay_cfg.scan_interval < TICK_MS
	           ? (unsigned)relay_cfg.scan_interval : TICK_MS;
}

/* Messages enqueued by this worker's job threads. */
static void
wake(postern_watch_t *w, int fd, unsigned events, void *arg)
{
	char buf[256];
	size_t i;

	(void)w;
	(void)events;
	(void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&rs.lock);
	for (i = 0; i < rs.nfresh; i++)
		qent_add(rs.fresh[i]);
	rs.nfresh = 0;
	pthread_mutex_unlock(&rs.lock);
	pump();
}

static int
worker_start(void *arg)
{
	char err[512];

	(void)arg;
	/* Made here, as the workers' user, who must own the queue. */
	if (rq_init(relay_queue_dir, err, sizeof(err)) < 0) {
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s", err);
		return -1;
	}
	if (pipe2(rs.wake_fd, O_NONBLOCK | O_CLOEXEC) < 0) {
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "pipe: %s",
		                strerror(errno));
		return -1;
	}
	rs.wake_watch = relay_host->watch_add(rs.wake_fd[0],
	                                      POSTERN_WATCH_READ, wake, NULL);
	rs.last_scan = wall_ms();
	relay_local_start();
	check_flush();
	rs.started = 1;
	scan_queue();
	rs.tick = relay_host->timer_add(TICK_MS, tick, NULL);
	pump();
	return 0;
}

static void
worker_stopping(void *arg)
{
	struct relay_dest *d;

	(void)arg;
	for (d = rs.dests; d != NULL; d = d->next)
		relay_client_close_idle(d);
}

static void
worker_exit(void *arg)
{
	(void)arg;
	if (rs.wake_watch != NULL)
		relay_host->watch_remove(rs.wake_watch);
	rs.wake_watch = NULL;
	if (rs.wake_fd[0] >= 0) {
		close(rs.wake_fd[0]);
		close(rs.wake_fd[1]);
	}
	rs.wake_fd[0] = rs.wake_fd[1] = -1;
}

static const struct postern_worker_ops worker_ops = {
	.size = sizeof(struct postern_worker_ops),
	.start = worker_start,
	.stopping = worker_stopping,
	.exit = worker_exit,
};

/* ---- the relay service --------------------------------------------------- */

int
relay_enqueue(const struct postern_relay_envelope *env,
              const struct postern_relay_message *msg, char *queue_id,
              size_t queue_id_len, char *err, size_t errlen)
{
	char id[RQ_ID_MAX], why[1024];

	if (env->nrcpts == 0) {
		snprintf(err, errlen, "no recipients");
		return POSTERN_RELAY_REJECT;
	}
	if (queue_write(env, msg, POSTERN_SIZED_HAS(env, id) ? env->id : NULL,
	                id, why, sizeof(why)) < 0) {
		relay_host->log(relay_self, POSTERN_LOG_ERROR, "%s", why);
		snprintf(err, errlen, errno == ENOSPC || errno == EDQUOT
		                          ? "queue full: insufficient storage"
		                          : "cannot queue the message");
		return POSTERN_RELAY_TEMPFAIL;
	}
	relay_host->log(relay_self, POSTERN_LOG_INFO, "%s: from=<%s>, "
	                "size=%llu, nrcpt=%zu (queue active)", id,
	                env->sender,
	                (unsigned long long)(msg->head_len + msg->length),
	                env->nrcpts);
	snprintf(queue_id, queue_id_len, "%s", id);
	fresh_push(id);
	return POSTERN_RELAY_OK;
}

static const struct postern_relay relay_table = {
	.size = sizeof(struct postern_relay),
	.name = "relay",
	.enqueue = relay_enqueue,
};

/* ---- init ----------------------------------------------------------------- */

static int
relay_init(const struct postern_host *h, postern_module_t *m)
{
	char err[512];

	relay_host = h;
	relay_self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), relay_keys,
	                      &relay_cfg) < 0)
		return -1;
	if (*relay_cfg.hostname == '\0') {
		if (gethostname(system_hostname, sizeof(system_hostname) - 1) <
		        0 ||
		    system_hostname[0] == '\0')
			strcpy(system_hostname, "localhost");
		relay_cfg.hostname = system_hostname;
	}
	if (*relay_cfg.queue_dir != '\0')
		snprintf(relay_queue_dir, sizeof(relay_queue_dir), "%s",
		         relay_cfg.queue_dir);
	else
		snprintf(relay_queue_dir, sizeof(relay_queue_dir), "%s/relay",
		         h->dir(POSTERN_DIR_STATE));
	relay_retry_defaults(&relay_retry);
	relay_retry.min_s = (unsigned)(relay_cfg.retry_min / 1000);
	relay_retry.max_s = (unsigned)(relay_cfg.retry_max / 1000);
	relay_retry.lifetime_s = (unsigned)(relay_cfg.lifetime / 1000);
	if (relay_retry_check(&relay_retry, err, sizeof(err)) < 0) {
		h->cfg_error(m, h->cfg_module(m), "retry: %s", err);
		return -1;
	}
	if (load_routes() < 0)
		return -1;
	metrics_register();
	if ((relay_tls_client = h->tls_client_create(m, h->cfg_module(m),
	                                             relay_cfg.tls_ca)) ==
	    NULL)
		return -1;
	if (h->service_publish(m, POSTERN_RELAY_SERVICE, POSTERN_RELAY_MAJOR,
	                       POSTERN_RELAY_MINOR, &relay_table) < 0 ||
	    h->service_publish(m, POSTERN_RELAY_ADMIN_SERVICE,
	                       POSTERN_RELAY_ADMIN_MAJOR,
	                       POSTERN_RELAY_ADMIN_MINOR,
	                       &relay_admin_table) < 0)
		return -1;
	return h->worker_ops(m, &worker_ops, NULL);
}

static void
relay_fini(postern_module_t *m)
{
	struct auth_entry *e;

	(void)m;
	relay_routes_free(relay_route_table);
	relay_route_table = NULL;
	while ((e = auths) != NULL) {
		auths = e->next;
		explicit_bzero(e->a.password, strlen(e->a.password));
		free(e->a.password);
		free(e->a.user);
		free(e->file);
		free(e);
	}
}

POSTERN_MODULE(.name = "relay", .version = "1.0",
               .kind = POSTERN_KIND_RELAY, .init = relay_init,
               .fini = relay_fini);
