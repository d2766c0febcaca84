/*
 * fuzz_sasl.c - libFuzzer harness for the core's SASL exchanges
 * (core/sasl.c): the base64 decoder, PLAIN's message, LOGIN's two steps
 * and the state machine around them, through the public functions.
 *
 * Input: one octet choosing the mechanism (bit 0: PLAIN or LOGIN) and
 * whether the first line is an initial response (bit 1), then lines
 * separated by LF: the client's responses, in order.  After each one the
 * loop delivers the answer; a response goes in only when a challenge is
 * outstanding, as a protocol module does.
 *
 * The rest of the core sasl.c needs is replaced here: the auth service
 * accepts "user" / "secret" only, and the job pool runs each job on the
 * loop's next turn (as the real one does, never inside job_submit).
 * conn_log discards, the failure delay is 0, the client has no address;
 * the failure penalty (core/auth_penalty.c) is the real one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <postern/auth.h>

#include "conn.h"
#include "host.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "sasl.h"
#include "service.h"

/* ---- what sasl.c needs of the rest of the core ------------------------ */

static int
fake_verify(const char *name, const char *password, size_t len,
            postern_pool_t *pool, struct postern_user *user)
{
	(void)pool;
	(void)user;
	return strcmp(name, "user") == 0 && len == 6 &&
	       memcmp(password, "secret", 6) == 0 ? POSTERN_AUTH_YES
	                                          : POSTERN_AUTH_NO;
}

static const struct postern_auth fake_auth = {
	.size = sizeof(struct postern_auth),
	.name = "fuzz",
	.verify = fake_verify,
};

const void *
service_lookup(const char *requester, const char *name, unsigned major,
               unsigned min_minor, int optional)
{
	(void)requester;
	(void)name;
	(void)major;
	(void)min_minor;
	(void)optional;
	return &fake_auth;
}

struct postern_job {
	postern_job_work_fn work;
	postern_job_done_fn done;
	void *arg;
	int cancelled;
};

static struct postern_job pending;
static int have_pending;
static struct job_pool *fake_jobs = (struct job_pool *)&pending;

struct job_pool *
host_jobs(void)
{
	return fake_jobs;
}

postern_job_t *
job_submit(struct job_pool *p, postern_job_work_fn work,
           postern_job_done_fn done, void *arg)
{
	(void)p;
	if (have_pending)
		abort();   /* sasl.c runs one verification at a time */
	pending.work = work;
	pending.done = done;
	pending.arg = arg;
	pending.cancelled = 0;
	have_pending = 1;
	return &pending;
}

/* The auth lane is the same single slot: sasl.c runs its checks there. */
postern_job_t *
job_submit_lane(struct job_pool *p, enum job_lane_id id,
                postern_job_work_fn work, postern_job_done_fn done,
                void *arg)
{
	(void)id;
	return job_submit(p, work, done, arg);
}

size_t
job_lane_queued(struct job_pool *p, enum job_lane_id id)
{
	(void)p;
	(void)id;
	return (size_t)have_pending;
}

/* No peer address: the failure penalty is keyed by the account alone. */
const struct sockaddr *
conn_peer_addr(postern_conn_t *c, socklen_t *len)
{
	(void)c;
	*len = 0;
	return NULL;
}

int
conn_fd(postern_conn_t *c)
{
	(void)c;
	return -1;
}

void
job_cancel(postern_job_t *job)
{
	job->cancelled = 1;
}

static void
run_pending_job(void)
{
	struct postern_job j = pending;

	if (!have_pending)
		return;
	have_pending = 0;
	if (!j.cancelled)
		j.work(j.arg);
	j.done(j.arg, j.cancelled);
}

void
conn_log(postern_conn_t *c, int level, const char *fmt, ...)
{
	(void)c;
	(void)level;
	(void)fmt;
}

/* ---- the exchange ------------------------------------------------------ */

struct state {
	int answers;
	enum postern_sasl_status last;
	int done;
};

static void
on_answer(void *arg, const struct postern_sasl_result *r)
{
	struct state *st = arg;

	st->answers++;
	st->last = r->status;
	if (r->status != POSTERN_SASL_CONTINUE)
		st->done = 1;
	if (r->status == POSTERN_SASL_OK &&
	    (r->user == NULL || strcmp(r->user, "user") != 0))
		abort();   /* only the one account may log in */
}

/* Turns the loop until an answer came (timers of 0 ms, jobs). */
static void
pump(struct state *st, int before)
{
	int i;

	for (i = 0; i < 8 && st->answers == before; i++) {
		run_pending_job();
		loop_run_once(loop_current, 0);
	}
	if (st->answers == before)
		abort();   /* every response gets an answer */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *lf;
	struct state st = { 0, POSTERN_SASL_CONTINUE, 0 };
	postern_sasl_t *s;
	size_t n;
	int before;

	if (size < 1)
		return 0;
	if (loop_current == NULL) {
		loop_current = loop_create();
		log_set_level(POSTERN_LOG_ERROR);
		sasl_set_failure_delay(0);
	}
	p = (const char *)data + 1;
	end = (const char *)data + size;
	lf = memchr(p, '\n', (size_t)(end - p));
	n = (size_t)((lf != NULL ? lf : end) - p);
	s = sasl_start(NULL, NULL, data[0] & 1 ? "LOGIN" : "PLAIN",
	               data[0] & 2 ? p : NULL, n, on_answer, &st);
	if (s == NULL)
		abort();
	if (data[0] & 2)
		p = lf != NULL ? lf + 1 : end;
	pump(&st, 0);
	while (!st.done && p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((lf != NULL ? lf : end) - p);
		before = st.answers;
		sasl_step(s, p, n);
		pump(&st, before);
		p = lf != NULL ? lf + 1 : end;
	}
	sasl_free(s);
	run_pending_job();   /* a cancelled verification's done */
	return 0;
}
