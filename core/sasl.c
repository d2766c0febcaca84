/*
 * sasl.c - SASL PLAIN and LOGIN, and plaintext logins, for every
 * protocol (see sasl.h).
 *
 * An exchange answers through one path only: sasl_reply stores the status
 * and arms a loop timer (0 ms, or the failure delay), whose callback calls
 * the protocol.  So the callback never runs inside sasl_start, sasl_step
 * or sasl_login, there is at most one answer in flight, and sasl_free
 * stops it by cancelling the timer.
 *
 * Passwords are checked by the auth service on the job pool's auth lane
 * (its own threads and a bounded queue: a login flood neither delays
 * storage work nor queues without end; a full queue is TEMPFAIL at once).
 * The job owns copies of the name and password and a pool for the user
 * record, because sasl_free may come while the thread still reads them:
 * the exchange then only clears the job's back pointer, and the job's
 * done frees what the job took.
 *
 * Before a password is checked, the penalty table (auth_penalty.h) says
 * how long this client and this account must wait for their recent
 * failures: the exchange waits on a timer first, and a name and password
 * that failed lately from the same address or for the same account is
 * answered FAIL after that wait without spending a hash.  The failure
 * delay is counted from the moment the check was queued, so a wrong
 * password is answered at the same time whatever the hash cost (as long
 * as it costs less than the delay).
 */
#include "sasl.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <postern/auth.h>

#include "auth_penalty.h"
#include "base64.h"
#include "conn.h"
#include "host.h"
#include "job.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "pool.h"
#include "service.h"
#include "xalloc.h"

#define SASL_DEFAULT_DELAY_MS 2000
#define SASL_USER_POOL 1024

/* Base64 of the challenges the LOGIN mechanism sends. */
#define LOGIN_ASK_USER "VXNlcm5hbWU6" /* "Username:" */
#define LOGIN_ASK_PASS "UGFzc3dvcmQ6" /* "Password:" */

enum sasl_mech {
	MECH_PLAIN,
	MECH_LOGIN,
	MECH_PASSWORD, /* sasl_login: no exchange, name and password given */
};

static const char *const mech_names[] = {
	[MECH_PLAIN] = "PLAIN",
	[MECH_LOGIN] = "LOGIN",
	[MECH_PASSWORD] = "password",
};

enum sasl_state {
	ST_BUSY, /* an answer is scheduled or a verification runs */
	ST_WAIT, /* CONTINUE was delivered: a response is expected */
	ST_DONE, /* a final status was delivered */
};

struct sasl_verify;

struct postern_sasl {
	postern_module_t *m;
	postern_conn_t *conn;
	enum sasl_mech mech;
	postern_sasl_fn cb;
	void *arg;
	enum sasl_state state;
	int have_user;               /* LOGIN: the username arrived */
	char *authcid;               /* LOGIN: the username, until used */
	struct sasl_verify *verify;  /* in flight, or NULL */
	struct loop_timer *timer;    /* answer or penalty wait scheduled */
	uint64_t fail_from;          /* failure delay counted from here */
	struct postern_sasl_result res; /* what the timer delivers */
	postern_pool_t *pool;        /* OK: the user record's memory */
	struct postern_user user;
};

/* One call of the backend's verify, on a pool thread. */
struct sasl_verify {
	struct postern_sasl *s; /* NULL once the exchange was freed */
	postern_job_t *job;
	const struct postern_auth *auth;
	char *name;
	char *password;
	size_t len;
	postern_pool_t *pool;
	struct postern_user user;
	struct penalty_key key;
	int in_flight; /* counted in sasl_g.flights */
	int flagged;   /* failures on record for the address or account */
	int fd;        /* the client's socket, to see it left; -1: none */
	int gone;      /* it had left when the check's turn came */
	int rc;
};

/* Checks queued or running per client address, so that one address
 * cannot fill the auth queue and turn everyone else's logins into
 * temporary failures.  At most threads + queue checks are in flight in
 * a worker, so that many entries always do. */
struct flight {
	uint64_t addr;
	unsigned n;
};

static struct {
	unsigned delay_ms;
	int looked_up;
	const struct postern_auth *auth;
	struct auth_penalty *penalty;
	struct flight *flights;
	size_t nflights;
	unsigned per_addr;
	size_t flagged_max; /* queued checks past which a flagged one is
	                       refused (0: no such limit) */
} sasl_g = { .delay_ms = SASL_DEFAULT_DELAY_MS };

void
sasl_set_failure_delay(unsigned ms)
{
	sasl_g.delay_ms = ms;
}

void
sasl_set_penalty(struct auth_penalty *t)
{
	sasl_g.penalty = t;
}

void
sasl_set_queue(unsigned threads, unsigned queue, unsigned per_addr)
{
	free(sasl_g.flights);
	sasl_g.flights = NULL;
	sasl_g.nflights = 0;
	sasl_g.per_addr = per_addr;
	sasl_g.flagged_max = queue > 1 ? queue / 2 : queue;
	if (per_addr == 0 || (size_t)threads + queue == 0)
		return;
	sasl_g.nflights = (size_t)threads + queue;
	sasl_g.flights = xcalloc(sasl_g.nflights, sizeof(*sasl_g.flights));
}

/* Counts a check from `addr` in flight: 0, or -1 when the address has
 * its share in flight already.  Address 0 (unknown) is not limited. */
static int
flight_take(uint64_t addr)
{
	struct flight *f, *empty = NULL;
	size_t i;

	if (addr == 0 || sasl_g.flights == NULL)
		return 0;
	for (i = 0; i < sasl_g.nflights; i++) {
		f = &sasl_g.flights[i];
		if (f->n > 0 && f->addr == addr) {
			if (f->n >= sasl_g.per_addr)
				return -1;
			f->n++;
			return 0;
		}
		if (f->n == 0 && empty == NULL)
			empty = f;
	}
	/* No room cannot happen (the lane refuses first); if it did, the
	 * lane's own bound still holds. */
	if (empty != NULL) {
		empty->addr = addr;
		empty->n = 1;
	}
	return 0;
}

static void
flight_put(uint64_t addr)
{
	size_t i;

	for (i = 0; addr != 0 && i < sasl_g.nflights; i++)
		if (sasl_g.flights[i].n > 0 && sasl_g.flights[i].addr == addr) {
			sasl_g.flights[i].n--;
			return;
		}
}

void
sasl_reset(void)
{
	sasl_g.looked_up = 0;
	sasl_g.auth = NULL;
}

const char *
sasl_mechanisms(void)
{
	return "PLAIN LOGIN";
}

/* ---- logging ---------------------------------------------------------- */

static void
sasl_log(struct postern_sasl *s, int level, const char *fmt, ...)
	POSTERN_PRINTF(3, 4);

/* conn_log needs a connection; tests run exchanges without one. */
static void
sasl_log(struct postern_sasl *s, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	if (s->conn == NULL) {
		log_vwrite(level, s->m != NULL ? s->m->name : NULL, fmt, ap);
		va_end(ap);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conn_log(s->conn, level, "%s", msg);
}

/* ---- base64 (RFC 4648 section 4, strict) ------------------------------ */

/* Decodes one quantum of 4 characters into out[]; the number of octets,
 * or -1.  Padding is allowed only in the last quantum, and the bits it
 * leaves over must be zero: one text per octet string, nothing to smuggle. */
static int
b64_quantum(const unsigned char *in, int last, unsigned char *out)
{
	int v[4], i, pad = 0;

	for (i = 0; i < 4; i++) {
		if (in[i] == '=' && last && i >= 2 &&
		    (i == 3 || in[3] == '=')) {
			v[i] = 0;
			pad++;
		} else if ((v[i] = b64_value(in[i])) < 0)
			return -1;
	}
	if ((pad == 1 && (v[2] & 0x03) != 0) ||
	    (pad == 2 && (v[1] & 0x0f) != 0))
		return -1;
	out[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
	out[1] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
	out[2] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	return 3 - pad;
}

/* Decodes `len` characters into a new NUL-terminated buffer (*out, *outlen
 * octets before the NUL).  -1 for anything that is not canonical base64. */
static int
b64_decode(const char *in, size_t len, char **out, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	unsigned char *buf;
	size_t i, n = 0;
	int k;

	if (len % 4 != 0)
		return -1;
	buf = xmalloc(len / 4 * 3 + 1);
	for (i = 0; i < len; i += 4) {
		if ((k = b64_quantum(p + i, i + 4 == len, buf + n)) < 0) {
			explicit_bzero(buf, len / 4 * 3 + 1);
			free(buf);
			return -1;
		}
		n += (size_t)k;
	}
	buf[n] = '\0';
	*out = (char *)buf;
	*outlen = n;
	return 0;
}

/* Wipes and frees a decoded response (it may hold a password). */
static void
wipe_free(char *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/* ---- answers ---------------------------------------------------------- */

static unsigned
sasl_fire(void *arg)
{
	struct postern_sasl *s = arg;
	struct postern_sasl_result r = s->res;

	s->timer = NULL;
	s->state = r.status == POSTERN_SASL_CONTINUE ? ST_WAIT : ST_DONE;
	/* The callback may free the exchange: nothing touches it after. */
	if (s->cb != NULL)
		s->cb(s->arg, &r);
	return 0;
}

/* Schedules the answer: the only way a status reaches the protocol. */
static void
sasl_reply(struct postern_sasl *s, enum postern_sasl_status status,
           unsigned delay_ms)
{
	s->state = ST_BUSY;
	s->res.status = status;
	s->timer = loop_timer_add(loop_current, delay_ms, sasl_fire, s);
}

static void
sasl_continue(struct postern_sasl *s, const char *challenge)
{
	s->res.challenge = challenge;
	sasl_reply(s, POSTERN_SASL_CONTINUE, 0);
}

static void
sasl_malformed(struct postern_sasl *s, const char *why)
{
	sasl_log(s, POSTERN_LOG_INFO, "authentication failed (%s): %s",
	         mech_names[s->mech], why);
	sasl_reply(s, POSTERN_SASL_MALFORMED, 0);
}

/* What is left of the failure delay counted from `from` (0: now).  A
 * check's result is handled in a later loop iteration than the one that
 * queued it, whose clock has passed `from`: a timer armed for what is
 * left fires at from + delay, not before. */
static unsigned
fail_delay_left(uint64_t from)
{
	uint64_t now = loop_now_ms(loop_current), spent;

	spent = from != 0 && now > from ? now - from : 0;
	return spent >= sasl_g.delay_ms ? 0
	                                : sasl_g.delay_ms - (unsigned)spent;
}

/* FAIL in `delay` ms. */
static void
sasl_fail_in(struct postern_sasl *s, unsigned delay)
{
	sasl_reply(s, POSTERN_SASL_FAIL, delay);
}

static void
sasl_fail(struct postern_sasl *s)
{
	sasl_fail_in(s, fail_delay_left(0));
}

/* A wrong password answered in `delay` ms: counted for the penalty as
 * of then, so the next attempt's wait starts when this answer goes. */
static void
sasl_fail_counted(struct postern_sasl *s, const struct penalty_key *k,
                  unsigned delay)
{
	penalty_failed(sasl_g.penalty, k, loop_now_ms(loop_current) + delay);
	sasl_fail_in(s, delay);
}

/* ---- verification on the job pool ------------------------------------- */

static const struct postern_auth *
auth_service(void)
{
	const struct postern_auth *a;

	/* Services are published during init, before the workers fork, so
	 * one look-up per process is the final answer (and one log line). */
	if (sasl_g.looked_up)
		return sasl_g.auth;
	sasl_g.looked_up = 1;
	a = service_lookup("core", POSTERN_AUTH_SERVICE, POSTERN_AUTH_MAJOR,
	                   0, 0);
	if (a == NULL)
		return NULL;
	if (a->size < offsetof(struct postern_auth, verify) +
	    sizeof(a->verify) || a->verify == NULL) {
		log_error("sasl: auth service '%s' has no verify function: "
		          "every login will be refused (temporary failure)",
		          a->name != NULL ? a->name : "?");
		return NULL;
	}
	sasl_g.auth = a;
	return a;
}

static void
verify_free(struct sasl_verify *v)
{
	if (v->in_flight)
		flight_put(v->key.addr);
	wipe_free(v->password, v->len);
	free(v->name);
	pool_destroy(v->pool);
	free(v);
}

/* The client closed its side: whatever it sent, no answer will reach
 * it.  A session waiting for its check is not reading, so the loop has
 * not seen the close; this look costs nothing next to a hash. */
static int
peer_left(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return fd >= 0 && poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void
verify_work(void *arg)
{
	struct sasl_verify *v = arg;

	/* A flood that leaves must not leave its queued hashes behind for
	 * the users logging in after it. */
	if (peer_left(v->fd)) {
		v->gone = 1;
		explicit_bzero(v->password, v->len);
		return;
	}
	v->user.size = sizeof(v->user);
	v->rc = v->auth->verify(v->name, v->password, v->len, v->pool,
	                        &v->user);
	/* The thread's copy is no longer needed: do not keep it around
	 * until the loop gets to done. */
	explicit_bzero(v->password, v->len);
}

static postern_metric_t *logins;
enum { LOGIN_SUCCESS, LOGIN_FAILURE, LOGIN_TEMPFAIL };

void
sasl_metrics_register(void)
{
	static const char *const results[] = {
		"success", "failure", "tempfail", NULL,
	};

	logins = metrics_register("core", "logins", "password checks by the "
	                          "auth backend, by result",
	                          POSTERN_METRIC_COUNTER, "result", results);
}

/* YES: the exchange takes the user record and its pool. */
static void
verify_yes(struct postern_sasl *s, struct sasl_verify *v)
{
	s->pool = v->pool;
	v->pool = NULL;
	s->user = v->user;
	if (s->user.name == NULL)
		s->user.name = pool_strdup(s->pool, v->name);
	s->res.user = s->user.name;
	s->res.userinfo = &s->user;
	sasl_log(s, POSTERN_LOG_INFO, "login: user=%s (%s)", s->res.user,
	         mech_names[s->mech]);
	sasl_reply(s, POSTERN_SASL_OK, 0);
}

static void
verify_result(struct postern_sasl *s, struct sasl_verify *v, int cancelled)
{
	if (!cancelled && v->gone) {
		sasl_log(s, POSTERN_LOG_INFO, "authentication of user=%s (%s): "
		         "the client left before its turn: not checked",
		         v->name, mech_names[s->mech]);
		sasl_reply(s, POSTERN_SASL_TEMPFAIL, 0);
	} else if (!cancelled && v->rc == POSTERN_AUTH_YES) {
		penalty_succeeded(sasl_g.penalty, &v->key);
		metrics_add(logins, LOGIN_SUCCESS, 1);
		verify_yes(s, v);
	} else if (!cancelled && v->rc == POSTERN_AUTH_NO) {
		sasl_log(s, POSTERN_LOG_INFO,
		         "authentication failed: user=%s (%s)", v->name,
		         mech_names[s->mech]);
		metrics_add(logins, LOGIN_FAILURE, 1);
		sasl_fail_counted(s, &v->key, fail_delay_left(s->fail_from));
	} else {
		sasl_log(s, POSTERN_LOG_WARNING, "authentication of user=%s "
		         "(%s): %s", v->name, mech_names[s->mech],
		         cancelled ? "verification cancelled (shutdown)"
		         : v->rc == POSTERN_AUTH_TEMPFAIL
		         ? "the auth backend cannot answer now"
		         : "the auth backend gave an invalid answer");
		metrics_add(logins, LOGIN_TEMPFAIL, 1);
		sasl_reply(s, POSTERN_SASL_TEMPFAIL, 0);
	}
}

static void
verify_done(void *arg, int cancelled)
{
	struct sasl_verify *v = arg;
	struct postern_sasl *s = v->s;

	if (s != NULL) {
		s->verify = NULL;
		verify_result(s, v, cancelled);
	}
	verify_free(v);
}

static unsigned verify_waited(void *arg);

/* How often a check held back by its address's auth_queue_per_ip share
 * looks again for a free place. */
#define SASL_FLIGHT_RETRY_MS 50

/* Queues the check on the auth lane, or answers TEMPFAIL when the lane
 * is full (or absent). */
static void
verify_submit(struct postern_sasl *s, struct sasl_verify *v)
{
	const char *why = "the password check queue is full (auth_queue)";

	/* The clock read now, not the loop's cached one: a failure must
	 * not be answered before the delay from this moment. */
	s->fail_from = loop_clock_ms();
	if (flight_take(v->key.addr) < 0) {
		/* An address without failures (a client opening several
		 * sessions at once, users behind one NAT) waits its turn
		 * instead of being refused; its sessions are bounded by the
		 * listener's max_per_ip, and each holds one check. */
		if (!v->flagged) {
			s->timer = loop_timer_add(loop_current,
			                          SASL_FLIGHT_RETRY_MS,
			                          verify_waited, s);
			return;
		}
		why = "this address failed lately and has auth_queue_per_ip "
		      "password checks waiting already";
	} else {
		v->in_flight = 1;
		/* Half the queue stays for addresses and accounts without
		 * failures: a flood of wrong logins, once it has failed,
		 * cannot take every place from users logging in. */
		if (v->flagged && sasl_g.flagged_max > 0 &&
		    job_lane_queued(host_jobs(), JOB_LANE_AUTH) >=
		    sasl_g.flagged_max)
			why = "half the password check queue is full, and "
			      "this address or account failed lately";
		else if ((v->job = job_submit_lane(host_jobs(),
		                                   JOB_LANE_AUTH, verify_work,
		                                   verify_done, v)) != NULL)
			return;
	}
	sasl_log(s, POSTERN_LOG_WARNING, "authentication of user=%s (%s): "
	         "%s: temporary failure", v->name, mech_names[s->mech], why);
	/* A client that hammers a full queue backs off like one that
	 * fails, instead of taking every place that frees. */
	penalty_refused(sasl_g.penalty, &v->key, loop_now_ms(loop_current));
	s->verify = NULL;
	verify_free(v);
	sasl_reply(s, POSTERN_SASL_TEMPFAIL, 0);
}

/* The penalty wait is over. */
static unsigned
verify_waited(void *arg)
{
	struct postern_sasl *s = arg;

	s->timer = NULL;
	verify_submit(s, s->verify);
	return 0;
}

/* A name and password that failed lately: FAIL after the penalty wait
 * and the failure delay, without a hash. */
static void
verify_known_wrong(struct postern_sasl *s, struct sasl_verify *v,
                   unsigned wait)
{
	sasl_log(s, POSTERN_LOG_INFO, "authentication failed: user=%s (%s): "
	         "the same password failed lately, not checked again",
	         v->name, mech_names[s->mech]);
	wait += fail_delay_left(0);
	penalty_repeated(sasl_g.penalty, &v->key,
	                 loop_now_ms(loop_current) + wait);
	sasl_fail_in(s, wait);
	s->verify = NULL;
	verify_free(v);
}

/* Checks `password` for `name` (both copied) on the auth lane, after the
 * wait the penalty table asks for. */
static void
verify_start(struct postern_sasl *s, const char *name, const char *password,
             size_t len)
{
	const struct postern_auth *auth = auth_service();
	struct sasl_verify *v;
	const struct sockaddr *sa = NULL;
	socklen_t salen = 0;
	struct penalty_verdict pv;

	if (auth == NULL || host_jobs() == NULL) {
		sasl_log(s, auth == NULL ? POSTERN_LOG_DEBUG : POSTERN_LOG_ERROR,
		         "authentication of user=%s (%s): %s", name,
		         mech_names[s->mech], auth == NULL
		         ? "no auth service" : "no job pool in this process");
		sasl_reply(s, POSTERN_SASL_TEMPFAIL, 0);
		return;
	}
	v = xcalloc(1, sizeof(*v));
	v->s = s;
	v->auth = auth;
	v->name = xstrdup(name);
	v->password = xmalloc(len + 1);
	memcpy(v->password, password, len);
	v->password[len] = '\0';
	v->len = len;
	v->pool = pool_create(SASL_USER_POOL);
	s->state = ST_BUSY;
	s->verify = v;
	v->fd = s->conn != NULL ? conn_fd(s->conn) : -1;
	if (s->conn != NULL)
		sa = conn_peer_addr(s->conn, &salen);
	penalty_key(sasl_g.penalty, sa, salen, name, password, len, &v->key);
	penalty_check(sasl_g.penalty, &v->key, loop_now_ms(loop_current),
	              &pv);
	v->flagged = pv.flagged;
	if (pv.known_wrong)
		verify_known_wrong(s, v, pv.wait_ms);
	else if (pv.wait_ms > 0) {
		sasl_log(s, POSTERN_LOG_DEBUG, "authentication of user=%s "
		         "(%s): %u ms penalty for recent failures", name,
		         mech_names[s->mech], pv.wait_ms);
		s->timer = loop_timer_add(loop_current, pv.wait_ms,
		                          verify_waited, s);
	} else
		verify_submit(s, v);
}

/* ---- mechanisms ------------------------------------------------------- */

/* A name or password: no NUL inside, at most `max` octets. */
static int
valid_secret(const char *p, size_t len, size_t max)
{
	return len <= max && memchr(p, '\0', len) == NULL;
}

struct plain_msg {
	const char *zid, *cid, *pw; /* zid and cid end at their NUL */
	size_t zlen, clen, plen;
};

/* RFC 4616: [authzid] NUL authcid NUL passwd, authcid and passwd not
 * empty.  A third NUL would sit inside the password.  NULL, or what is
 * wrong. */
static const char *
plain_parse(const char *msg, size_t len, struct plain_msg *pm)
{
	const char *end = msg + len, *nul;

	pm->zid = msg;
	if ((nul = memchr(msg, '\0', len)) == NULL)
		return "no NUL after the authorization id";
	pm->zlen = (size_t)(nul - msg);
	pm->cid = nul + 1;
	if ((nul = memchr(pm->cid, '\0', (size_t)(end - pm->cid))) == NULL)
		return "no NUL after the login name";
	pm->clen = (size_t)(nul - pm->cid);
	pm->pw = nul + 1;
	pm->plen = (size_t)(end - pm->pw);
	if (pm->zlen > SASL_MAX_AUTHZID)
		return "authorization id too long";
	if (pm->clen == 0 || pm->clen > SASL_MAX_AUTHCID)
		return "login name empty or too long";
	if (pm->plen == 0 ||
	    !valid_secret(pm->pw, pm->plen, SASL_MAX_PASSWORD))
		return "password empty, too long or with a NUL";
	return NULL;
}

static void
plain_response(struct postern_sasl *s, const char *msg, size_t len)
{
	struct plain_msg pm;
	const char *err;

	if ((err = plain_parse(msg, len, &pm)) != NULL)
		sasl_malformed(s, err);
	else if (pm.zlen != 0 && (pm.zlen != pm.clen ||
	         memcmp(pm.zid, pm.cid, pm.clen) != 0)) {
		sasl_log(s, POSTERN_LOG_INFO, "authentication failed: user=%s "
		         "may not act as %s (PLAIN)", pm.cid, pm.zid);
		sasl_fail(s);
	} else
		verify_start(s, pm.cid, pm.pw, pm.plen);
}

static void
login_response(struct postern_sasl *s, const char *msg, size_t len)
{
	if (s->have_user) {
		if (!valid_secret(msg, len, SASL_MAX_PASSWORD))
			sasl_malformed(s, "password too long or with a NUL");
		else
			verify_start(s, s->authcid, msg, len);
	} else if (!valid_secret(msg, len, SASL_MAX_AUTHCID))
		sasl_malformed(s, "login name too long or with a NUL");
	else {
		s->authcid = xstrndup(msg, len);
		s->have_user = 1;
		sasl_continue(s, LOGIN_ASK_PASS);
	}
}

/* A client's response, base64 or "*"; `initial`: it came with the
 * mechanism's name, where "=" stands for an empty one. */
static void
sasl_response(struct postern_sasl *s, const char *line, size_t len,
              int initial)
{
	char *msg;
	size_t n;

	if (len == 1 && line[0] == '*') {
		sasl_log(s, POSTERN_LOG_DEBUG, "authentication cancelled by "
		         "the client (%s)", mech_names[s->mech]);
		sasl_reply(s, POSTERN_SASL_CANCELLED, 0);
		return;
	}
	if (len > SASL_MAX_LINE) {
		sasl_malformed(s, "response too long");
		return;
	}
	if (initial && len == 1 && line[0] == '=')
		len = 0;
	if (b64_decode(line, len, &msg, &n) < 0) {
		sasl_malformed(s, "response is not valid base64");
		return;
	}
	if (s->mech == MECH_PLAIN)
		plain_response(s, msg, n);
	else
		login_response(s, msg, n);
	wipe_free(msg, n + 1);
}

/* ---- the host functions ----------------------------------------------- */

static struct postern_sasl *
sasl_new(postern_module_t *m, postern_conn_t *c, enum sasl_mech mech,
         postern_sasl_fn cb, void *arg)
{
	struct postern_sasl *s;

	/* Answers come from the loop's timers: without a loop (the master,
	 * during init) there is no one to deliver them. */
	if (loop_current == NULL) {
		log_write(POSTERN_LOG_ERROR, m != NULL ? m->name : NULL,
		          "sasl: authentication outside a worker's loop");
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->conn = c;
	s->mech = mech;
	s->cb = cb;
	s->arg = arg;
	s->state = ST_BUSY;
	return s;
}

postern_sasl_t *
sasl_start(postern_module_t *m, postern_conn_t *c, const char *mech,
           const char *initial, size_t initial_len, postern_sasl_fn cb,
           void *arg)
{
	struct postern_sasl *s;
	enum sasl_mech which;

	if (mech != NULL && strcasecmp(mech, "PLAIN") == 0)
		which = MECH_PLAIN;
	else if (mech != NULL && strcasecmp(mech, "LOGIN") == 0)
		which = MECH_LOGIN;
	else
		return NULL;
	if ((s = sasl_new(m, c, which, cb, arg)) == NULL)
		return NULL;
	if (initial != NULL)
		sasl_response(s, initial, initial_len, 1);
	else
		sasl_continue(s, which == MECH_PLAIN ? "" : LOGIN_ASK_USER);
	return s;
}

void
sasl_step(postern_sasl_t *s, const char *line, size_t len)
{
	if (s == NULL)
		return;
	if (s->state != ST_WAIT) {
		sasl_log(s, POSTERN_LOG_ERROR, "sasl_step called with no "
		         "challenge outstanding (%s): ignored",
		         mech_names[s->mech]);
		return;
	}
	if (line == NULL) {
		line = "";
		len = 0;
	}
	s->res.challenge = NULL;
	sasl_response(s, line, len, 0);
}

void
sasl_free(postern_sasl_t *s)
{
	if (s == NULL)
		return;
	if (s->timer != NULL)
		loop_timer_cancel(loop_current, s->timer);
	if (s->verify != NULL && s->verify->job == NULL) {
		/* Still in its penalty wait (the timer is cancelled). */
		verify_free(s->verify);
	} else if (s->verify != NULL) {
		/* The job may be running: its done frees its copies. */
		s->verify->s = NULL;
		job_cancel(s->verify->job);
	}
	if (s->authcid != NULL)
		wipe_free(s->authcid, strlen(s->authcid));
	pool_destroy(s->pool);
	free(s);
}

postern_sasl_t *
sasl_login(postern_module_t *m, postern_conn_t *c, const char *user,
           const char *password, size_t password_len, postern_sasl_fn cb,
           void *arg)
{
	struct postern_sasl *s;

	if ((s = sasl_new(m, c, MECH_PASSWORD, cb, arg)) == NULL)
		return NULL;
	if (user == NULL || strnlen(user, SASL_MAX_AUTHCID + 1) >
	    SASL_MAX_AUTHCID)
		sasl_malformed(s, "login name missing or too long");
	else if (password == NULL && password_len > 0)
		sasl_malformed(s, "password missing");
	else if (password_len > 0 &&
	         !valid_secret(password, password_len, SASL_MAX_PASSWORD))
		sasl_malformed(s, "password too long or with a NUL");
	else
		verify_start(s, user, password != NULL ? password : "",
		             password_len);
	return s;
}
