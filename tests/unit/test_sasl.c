/*
 * test_sasl.c - SASL PLAIN and LOGIN and plaintext logins (core/sasl.c),
 * driven through the real host table as a protocol module would.
 *
 * A fake auth service answers verify: alice / "s3cret" is YES (canonical
 * name "alice@example.org", home "/home/alice"), user "temp" is TEMPFAIL,
 * anything else NO.  It counts its calls and the ones made on the main
 * (loop) thread, which must stay zero.  `in_call` is set around every
 * sasl_* call, so a callback that runs nested inside one is caught.  A log
 * sink keeps every line, to check what is logged and that no password
 * ever is.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/auth.h>

#include "unit.h"
#include "auth_penalty.h"
#include "host.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "pool.h"
#include "sasl.h"
#include "service.h"

#define ASK_USER "VXNlcm5hbWU6" /* "Username:" */
#define ASK_PASS "UGFzc3dvcmQ6" /* "Password:" */

static const struct postern_host *H;
static struct loop *loop;
static struct job_pool *jobs;
static pthread_t main_thread;

/* The fake backend's counters (written on pool threads). */
static int verify_calls, verify_on_main, verify_started;
static unsigned verify_sleep_us;

static int in_call;    /* a sasl_* call is on the stack */
static int nested;     /* a callback ran inside one */
static struct {
	int count;
	enum postern_sasl_status status;
	char challenge[64];
	char user[300];
	const struct postern_user *userinfo;
} got;
static char logbuf[65536];

/* ---- the fake auth service -------------------------------------------- */

static int
fake_verify(const char *name, const char *password, size_t len,
            postern_pool_t *pool, struct postern_user *out)
{
	__atomic_add_fetch(&verify_calls, 1, __ATOMIC_SEQ_CST);
	if (pthread_equal(pthread_self(), main_thread))
		__atomic_add_fetch(&verify_on_main, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&verify_started, 1, __ATOMIC_SEQ_CST);
	if (verify_sleep_us > 0)
		usleep(verify_sleep_us);
	if (strcmp(name, "temp") == 0)
		return POSTERN_AUTH_TEMPFAIL;
	if (strcmp(name, "alice") != 0 || len != 6 ||
	    memcmp(password, "s3cret", 6) != 0)
		return POSTERN_AUTH_NO;
	out->name = pool_strdup(pool, "alice@example.org");
	out->home = pool_strdup(pool, "/home/alice");
	out->uid = 1000;
	return POSTERN_AUTH_YES;
}

static const struct postern_auth fake_auth = {
	.size = sizeof(struct postern_auth),
	.name = "fake",
	.verify = fake_verify,
};

/* ---- fixture ---------------------------------------------------------- */

static void
record_line(int level, const char *prefix, const char *msg, void *arg)
{
	size_t len = strlen(logbuf);

	(void)level;
	(void)prefix;
	(void)arg;
	snprintf(logbuf + len, sizeof(logbuf) - len, "%s\n", msg);
}

static void
setup(void)
{
	H = host_table();
	main_thread = pthread_self();
	loop = loop_create();
	loop_current = loop;
	jobs = job_pool_create(loop, 2);
	CU_ASSERT_EQUAL(job_lane_start(jobs, JOB_LANE_AUTH, 1, 4), 0);
	host_set_jobs(jobs);
	service_reset();
	sasl_reset();
	CU_ASSERT_EQUAL(service_publish("fake", POSTERN_AUTH_SERVICE,
	                                POSTERN_AUTH_MAJOR, 0, &fake_auth), 0);
	sasl_set_failure_delay(0);
	verify_calls = verify_on_main = verify_started = 0;
	verify_sleep_us = 0;
	in_call = nested = 0;
	memset(&got, 0, sizeof(got));
	logbuf[0] = '\0';
	log_set_sink(record_line, NULL);
}

static void
teardown(void)
{
	/* Whatever a test left must not call back once it is over. */
	CU_ASSERT_EQUAL(nested, 0);
	CU_ASSERT_EQUAL(verify_on_main, 0);
	job_pool_destroy(jobs);
	host_set_jobs(NULL);
	loop_destroy(loop);
	loop_current = NULL;
	log_set_sink(NULL, NULL);
	service_reset();
	sasl_reset();
	sasl_set_failure_delay(2000);
}

/* ---- helpers ---------------------------------------------------------- */

static void
on_result(void *arg, const struct postern_sasl_result *r)
{
	CU_ASSERT_PTR_EQUAL(arg, &got);
	if (in_call)
		nested = 1;
	got.count++;
	got.status = r->status;
	snprintf(got.challenge, sizeof(got.challenge), "%s",
	         r->challenge != NULL ? r->challenge : "(null)");
	snprintf(got.user, sizeof(got.user), "%s",
	         r->user != NULL ? r->user : "(null)");
	got.userinfo = r->userinfo;
}

/* A base64 encoder of its own, so the decoder is not checked against
 * itself. */
static char *
b64(const char *data, size_t len)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)data;
	char *out = malloc(len / 3 * 4 + 5), *o = out;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		*o++ = abc[p[i] >> 2];
		*o++ = abc[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = abc[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		*o++ = abc[p[i + 2] & 63];
	}
	if (len - i == 1) {
		*o++ = abc[p[i] >> 2];
		*o++ = abc[(p[i] & 3) << 4];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		*o++ = abc[p[i] >> 2];
		*o++ = abc[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = abc[(p[i + 1] & 15) << 2];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static postern_sasl_t *
start(const char *mech, const char *initial)
{
	postern_sasl_t *s;

	in_call = 1;
	s = H->sasl_start(NULL, NULL, mech, initial,
	                  initial != NULL ? strlen(initial) : 0, on_result,
	                  &got);
	in_call = 0;
	return s;
}

/* PLAIN with the message given in clear (length explicit: it has NULs). */
static postern_sasl_t *
start_plain(const char *msg, size_t len)
{
	char *ir = b64(msg, len);
	postern_sasl_t *s = start("PLAIN", ir);

	free(ir);
	return s;
}

static void
step(postern_sasl_t *s, const char *line)
{
	in_call = 1;
	H->sasl_step(s, line, strlen(line));
	in_call = 0;
}

static void
step_clear(postern_sasl_t *s, const char *msg, size_t len)
{
	char *line = b64(msg, len);

	step(s, line);
	free(line);
}

static postern_sasl_t *
login(const char *user, const char *password, size_t len)
{
	postern_sasl_t *s;

	in_call = 1;
	s = H->login(NULL, NULL, user, password, len, on_result, &got);
	in_call = 0;
	return s;
}

static void
sfree(postern_sasl_t *s)
{
	in_call = 1;
	H->sasl_free(s);
	in_call = 0;
}

/* Turns the loop until the callback count reaches `n` (or 3 s passed);
 * then asserts it is exactly `n` and no callback ran nested. */
static void
wait_count(int n)
{
	UNIT_PUMP_UNTIL(loop, got.count >= n, 3000);
	CU_ASSERT_EQUAL(got.count, n);
	CU_ASSERT_EQUAL(nested, 0);
}

/* Turns the loop for `ms` whatever happens. */
static void
pump_for(unsigned ms)
{
	uint64_t end = unit_mono_ms() + ms;

	while (unit_mono_ms() < end)
		loop_run_once(loop, 5);
}

/* Runs a whole one-shot exchange and returns its final status. */
static enum postern_sasl_status
plain_once(const char *msg, size_t len)
{
	postern_sasl_t *s;

	got.count = 0;
	s = start_plain(msg, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(got.count, 0); /* never from inside sasl_start */
	wait_count(1);
	sfree(s);
	return got.status;
}

#define PLAIN_OK "\0alice\0s3cret"
#define LEN(lit) (sizeof(lit) - 1)

/* ---- the table -------------------------------------------------------- */

static void
test_host_members(void)
{
	CU_ASSERT_PTR_NOT_NULL(H->sasl_mechanisms);
	CU_ASSERT_PTR_NOT_NULL(H->sasl_start);
	CU_ASSERT_PTR_NOT_NULL(H->sasl_step);
	CU_ASSERT_PTR_NOT_NULL(H->sasl_free);
	CU_ASSERT_PTR_NOT_NULL(H->login);
	CU_ASSERT_STRING_EQUAL(H->sasl_mechanisms(), "PLAIN LOGIN");
}

static void
test_unknown_mechanism(void)
{
	CU_ASSERT_PTR_NULL(start("CRAM-MD5", NULL));
	CU_ASSERT_PTR_NULL(start("PLAINX", "AGFsaWNlAHMzY3JldA=="));
	CU_ASSERT_PTR_NULL(start(NULL, NULL));
	pump_for(30);
	CU_ASSERT_EQUAL(got.count, 0);
	sfree(NULL); /* a no-op */
}

/* ---- PLAIN ------------------------------------------------------------ */

static void
test_plain_initial(void)
{
	postern_sasl_t *s = start_plain(PLAIN_OK, LEN(PLAIN_OK));

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(got.count, 0);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	CU_ASSERT_STRING_EQUAL(got.user, "alice@example.org");
	CU_ASSERT_PTR_NOT_NULL_FATAL(got.userinfo);
	CU_ASSERT_EQUAL(verify_calls, 1);
	/* Still valid later on, until sasl_free; and no second answer. */
	pump_for(30);
	CU_ASSERT_EQUAL(got.count, 1);
	CU_ASSERT_STRING_EQUAL(got.userinfo->name, "alice@example.org");
	CU_ASSERT_STRING_EQUAL(got.userinfo->home, "/home/alice");
	CU_ASSERT_EQUAL(got.userinfo->uid, 1000);
	sfree(s);
	/* Logged at info with the name, never with the password. */
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "alice@example.org"));
	CU_ASSERT_PTR_NULL(strstr(logbuf, "s3cret"));
}

static void
test_plain_empty_challenge(void)
{
	postern_sasl_t *s = start("PLAIN", NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CONTINUE);
	CU_ASSERT_STRING_EQUAL(got.challenge, "");
	step_clear(s, PLAIN_OK, LEN(PLAIN_OK));
	CU_ASSERT_EQUAL(got.count, 1); /* never from inside sasl_step */
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	CU_ASSERT_STRING_EQUAL(got.user, "alice@example.org");
	sfree(s);
}

static void
test_plain_authzid(void)
{
	CU_ASSERT_EQUAL(plain_once("alice\0alice\0s3cret",
	                           LEN("alice\0alice\0s3cret")),
	                POSTERN_SASL_OK);
	CU_ASSERT_EQUAL(verify_calls, 1);
	/* Acting as someone else is refused without asking the backend. */
	CU_ASSERT_EQUAL(plain_once("bob\0alice\0s3cret",
	                           LEN("bob\0alice\0s3cret")),
	                POSTERN_SASL_FAIL);
	CU_ASSERT_EQUAL(verify_calls, 1);
	CU_ASSERT_EQUAL(plain_once("alic\0alice\0s3cret",
	                           LEN("alic\0alice\0s3cret")),
	                POSTERN_SASL_FAIL);
}

static void
test_plain_bad_base64(void)
{
	static const char *const bad[] = {
		"AGFsaWNlAHMzY3JldA=",     /* padding short */
		"AGFsaWNlAHMzY3JldA===",   /* padding long */
		"AGFsaWNlAHMzY3JldA",      /* padding missing */
		"AGFs aWNlAHMzY3JldA==",   /* a space */
		"AGFsaWNlAHMzY3JldA==\r",  /* a trailing CR */
		"AGFsaWNl\nAHMzY3JldA==",  /* a line break */
		"AGFsaWNl!HMzY3JldA==",    /* not in the alphabet */
		"AGFsaWNlAHMzY3JldA-_",    /* the URL alphabet */
		"AG=saWNlAHMzY3JldA==",    /* padding inside */
		/* A padded quantum, then more: "alic" + "e\0alice\0s3cret"
		 * would be a valid PLAIN message. */
		"YWxpYw==ZQBhbGljZQBzM2NyZXQ=",
		"AGFsaWNlAHMzY3JldB==",    /* non-zero bits in the padding */
		"=",                       /* "=" only as an initial response */
	};
	postern_sasl_t *s;
	size_t i;
	int n = 0;

	/* Sanity: the same message, well encoded, is accepted. */
	CU_ASSERT_EQUAL(plain_once(PLAIN_OK, LEN(PLAIN_OK)), POSTERN_SASL_OK);
	n = got.count = 0;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = start("PLAIN", NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		wait_count(++n);
		step(s, bad[i]);
		wait_count(++n);
		if (got.status != POSTERN_SASL_MALFORMED)
			fprintf(stderr, "vector %zu: '%s' gave %d\n", i,
			        bad[i], got.status);
		CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
		sfree(s);
	}
	/* Bad as an initial response too. */
	got.count = 0;
	s = start("PLAIN", "AGFsaWNl AHMzY3JldA==");
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
	sfree(s);
	CU_ASSERT_EQUAL(verify_calls, 1);
}

static void
test_plain_bad_syntax(void)
{
	static const struct { const char *msg; size_t len; } bad[] = {
		{ "alice s3cret", 12 },               /* no NUL */
		{ "alice\0s3cret", 12 },              /* one NUL */
		{ "\0alice\0s3c\0ret", 14 },          /* NUL in password */
		{ "\0\0s3cret", 8 },                  /* empty login */
		{ "\0alice\0", 7 },                   /* empty password */
		{ "", 0 },                            /* nothing */
		{ "\0\0", 2 },                        /* nothing but NULs */
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(plain_once(bad[i].msg, bad[i].len),
		                POSTERN_SASL_MALFORMED);
	}
	/* "=" is an empty initial response: PLAIN needs its NULs. */
	got.count = 0;
	{
		postern_sasl_t *s = start("PLAIN", "=");

		wait_count(1);
		CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
		sfree(s);
	}
	CU_ASSERT_EQUAL(verify_calls, 0);
}

/* PLAIN "\0" + login + "\0" + password, with parts of given sizes. */
static enum postern_sasl_status
plain_sized(size_t zlen, size_t clen, size_t plen)
{
	size_t len = zlen + 1 + clen + 1 + plen;
	char *msg = malloc(len);
	enum postern_sasl_status st;

	memset(msg, 'z', zlen);
	msg[zlen] = '\0';
	memset(msg + zlen + 1, 'c', clen);
	msg[zlen + 1 + clen] = '\0';
	memset(msg + zlen + 2 + clen, 'p', plen);
	st = plain_once(msg, len);
	free(msg);
	return st;
}

static void
test_limits(void)
{
	char *line;
	postern_sasl_t *s;

	/* At the limits: well-formed, so the backend says NO. */
	CU_ASSERT_EQUAL(plain_sized(0, SASL_MAX_AUTHCID, SASL_MAX_PASSWORD),
	                POSTERN_SASL_FAIL);
	CU_ASSERT_EQUAL(verify_calls, 1);
	/* One past each. */
	CU_ASSERT_EQUAL(plain_sized(0, SASL_MAX_AUTHCID + 1, 6),
	                POSTERN_SASL_MALFORMED);
	CU_ASSERT_EQUAL(plain_sized(0, 5, SASL_MAX_PASSWORD + 1),
	                POSTERN_SASL_MALFORMED);
	CU_ASSERT_EQUAL(plain_sized(SASL_MAX_AUTHZID + 1, 5, 6),
	                POSTERN_SASL_MALFORMED);
	CU_ASSERT_EQUAL(verify_calls, 1);

	/* A line over SASL_MAX_LINE octets (valid base64 otherwise). */
	line = malloc(SASL_MAX_LINE + 5);
	memset(line, 'A', SASL_MAX_LINE + 4);
	line[SASL_MAX_LINE + 4] = '\0';
	got.count = 0;
	s = start("PLAIN", NULL);
	wait_count(1);
	step(s, line);
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "response too long"));
	sfree(s);
	got.count = 0;
	s = start("LOGIN", line);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
	sfree(s);
	free(line);
	CU_ASSERT_EQUAL(verify_calls, 1);
}

static void
test_cancel(void)
{
	postern_sasl_t *s = start("PLAIN", NULL);

	wait_count(1);
	step(s, "*");
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CANCELLED);
	sfree(s);

	/* LOGIN, after the username. */
	got.count = 0;
	s = start("LOGIN", "YWxpY2U=");
	wait_count(1);
	CU_ASSERT_STRING_EQUAL(got.challenge, ASK_PASS);
	step(s, "*");
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CANCELLED);
	sfree(s);

	/* As the initial response. */
	got.count = 0;
	s = start("PLAIN", "*");
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CANCELLED);
	sfree(s);
	CU_ASSERT_EQUAL(verify_calls, 0);
}

/* ---- LOGIN ------------------------------------------------------------ */

static void
test_login_two_steps(void)
{
	postern_sasl_t *s = start("login", NULL); /* any case */

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CONTINUE);
	CU_ASSERT_STRING_EQUAL(got.challenge, ASK_USER);
	step(s, "YWxpY2U="); /* alice */
	CU_ASSERT_EQUAL(got.count, 1);
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CONTINUE);
	CU_ASSERT_STRING_EQUAL(got.challenge, ASK_PASS);
	step(s, "czNjcmV0"); /* s3cret */
	CU_ASSERT_EQUAL(got.count, 2);
	wait_count(3);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	CU_ASSERT_STRING_EQUAL(got.user, "alice@example.org");
	sfree(s);
	CU_ASSERT_EQUAL(verify_calls, 1);
	CU_ASSERT_PTR_NULL(strstr(logbuf, "s3cret"));
}

static void
test_login_initial(void)
{
	postern_sasl_t *s = start("LOGIN", "YWxpY2U=");

	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CONTINUE);
	CU_ASSERT_STRING_EQUAL(got.challenge, ASK_PASS);
	step(s, "czNjcmV0");
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	sfree(s);

	/* "=" is empty only as an initial response: in a step it is
	 * not base64. */
	got.count = 0;
	s = start("LOGIN", NULL);
	wait_count(1);
	step(s, "=");
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
	sfree(s);
	/* As the initial response, an empty username: the password
	 * follows, and the backend says no. */
	got.count = 0;
	s = start("LOGIN", "=");
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_CONTINUE);
	CU_ASSERT_STRING_EQUAL(got.challenge, ASK_PASS);
	step(s, "czNjcmV0");
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_FAIL);
	sfree(s);

	/* A NUL inside the password. */
	got.count = 0;
	s = start("LOGIN", "YWxpY2U=");
	wait_count(1);
	step_clear(s, "s3c\0ret", 7);
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
	sfree(s);
	CU_ASSERT_EQUAL(verify_calls, 2);
}

/* ---- failures --------------------------------------------------------- */

static void
test_wrong_password_delay(void)
{
	postern_sasl_t *s;
	uint64_t t0;

	sasl_set_failure_delay(200);
	s = start("PLAIN", NULL);
	wait_count(1);
	t0 = unit_mono_ms();
	step_clear(s, "\0alice\0wrongpw", LEN("\0alice\0wrongpw"));
	wait_count(2);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_FAIL);
	CU_ASSERT(unit_mono_ms() - t0 >= 200);
	CU_ASSERT_STRING_EQUAL(got.user, "(null)");
	CU_ASSERT_PTR_NULL(got.userinfo);
	sfree(s);
	CU_ASSERT_EQUAL(verify_calls, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "authentication failed: "
	                                      "user=alice"));
	CU_ASSERT_PTR_NULL(strstr(logbuf, "wrongpw"));
}

static void
test_backend_tempfail(void)
{
	CU_ASSERT_EQUAL(plain_once("\0temp\0x", LEN("\0temp\0x")),
	                POSTERN_SASL_TEMPFAIL);
	CU_ASSERT_EQUAL(verify_calls, 1);
}

static void
test_no_auth_service(void)
{
	const char *p;

	service_reset();
	sasl_reset();
	CU_ASSERT_EQUAL(plain_once(PLAIN_OK, LEN(PLAIN_OK)),
	                POSTERN_SASL_TEMPFAIL);
	CU_ASSERT_EQUAL(plain_once(PLAIN_OK, LEN(PLAIN_OK)),
	                POSTERN_SASL_TEMPFAIL);
	CU_ASSERT_EQUAL(verify_calls, 0);
	/* Logged once, not at every attempt. */
	p = strstr(logbuf, "needs service 'auth'");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_PTR_NULL(strstr(p + 1, "needs service 'auth'"));
}

/* ---- ending early ----------------------------------------------------- */

static void
test_free_while_job_runs(void)
{
	postern_sasl_t *s;
	int i;

	verify_sleep_us = 100000;
	s = start_plain(PLAIN_OK, LEN(PLAIN_OK));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (i = 0; i < 300 && !__atomic_load_n(&verify_started,
	                                        __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	CU_ASSERT_EQUAL_FATAL(verify_started, 1);
	sfree(s);
	UNIT_PUMP_UNTIL(loop, job_pending(jobs) == 0, 3000);
	CU_ASSERT_EQUAL(job_pending(jobs), 0);
	pump_for(50);
	CU_ASSERT_EQUAL(got.count, 0);
	CU_ASSERT_EQUAL(verify_calls, 1);

	/* Freed before the job could even start. */
	verify_sleep_us = 0;
	s = start_plain(PLAIN_OK, LEN(PLAIN_OK));
	sfree(s);
	UNIT_PUMP_UNTIL(loop, job_pending(jobs) == 0, 3000);
	pump_for(30);
	CU_ASSERT_EQUAL(got.count, 0);
}

static void
test_free_while_delayed(void)
{
	postern_sasl_t *s;

	sasl_set_failure_delay(200);
	s = start_plain("\0alice\0wrongpw", LEN("\0alice\0wrongpw"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* The backend has answered: the delay timer is armed. */
	UNIT_PUMP_UNTIL(loop, verify_calls == 1 && job_pending(jobs) == 0,
	                3000);
	CU_ASSERT_EQUAL_FATAL(job_pending(jobs), 0);
	CU_ASSERT_EQUAL(got.count, 0);
	sfree(s);
	pump_for(300);
	CU_ASSERT_EQUAL(got.count, 0);
}

static void
test_free_with_answer_scheduled(void)
{
	postern_sasl_t *s = start("LOGIN", NULL);

	sfree(s); /* the CONTINUE was scheduled, not delivered */
	pump_for(30);
	CU_ASSERT_EQUAL(got.count, 0);
}

/* A callback that ends the exchange from inside itself. */
static void
on_result_free(void *arg, const struct postern_sasl_result *r)
{
	postern_sasl_t **sp = arg;

	got.count++;
	got.status = r->status;
	sfree(*sp);
	*sp = NULL;
}

static void
test_free_from_callback(void)
{
	postern_sasl_t *s;
	char *ir = b64(PLAIN_OK, LEN(PLAIN_OK));

	in_call = 1;
	s = H->sasl_start(NULL, NULL, "PLAIN", ir, strlen(ir),
	                  on_result_free, &s);
	in_call = 0;
	free(ir);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	CU_ASSERT_PTR_NULL(s);
}

static void
test_step_out_of_turn(void)
{
	postern_sasl_t *s = start("LOGIN", NULL);

	/* Before the CONTINUE was delivered: ignored. */
	step(s, "YWxpY2U=");
	wait_count(1);
	CU_ASSERT_STRING_EQUAL(got.challenge, ASK_USER);
	pump_for(30);
	CU_ASSERT_EQUAL(got.count, 1);
	step(s, "YWxpY2U=");
	wait_count(2);
	CU_ASSERT_STRING_EQUAL(got.challenge, ASK_PASS);
	step(s, "czNjcmV0");
	wait_count(3);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	/* After the final answer: ignored too. */
	step(s, "czNjcmV0");
	pump_for(30);
	CU_ASSERT_EQUAL(got.count, 3);
	CU_ASSERT_EQUAL(verify_calls, 1);
	sfree(s);
}

/* ---- login() ---------------------------------------------------------- */

static void
test_plain_login(void)
{
	postern_sasl_t *s = login("alice", "s3cret", 6);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(got.count, 0);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	CU_ASSERT_STRING_EQUAL(got.user, "alice@example.org");
	CU_ASSERT_PTR_NOT_NULL(got.userinfo);
	sfree(s);
}

static void
test_plain_login_failures(void)
{
	postern_sasl_t *s;
	char longname[SASL_MAX_AUTHCID + 2];
	uint64_t t0;

	sasl_set_failure_delay(200);
	t0 = unit_mono_ms();
	s = login("alice", "s3cre", 5);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_FAIL);
	CU_ASSERT(unit_mono_ms() - t0 >= 200);
	sfree(s);

	sasl_set_failure_delay(0);
	got.count = 0;
	s = login("alice", "s3c\0ret", 7);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
	sfree(s);

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	got.count = 0;
	s = login(longname, "s3cret", 6);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_MALFORMED);
	sfree(s);

	got.count = 0;
	s = login("temp", "x", 1);
	wait_count(1);
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_TEMPFAIL);
	sfree(s);
	CU_ASSERT_EQUAL(verify_calls, 2);
}

/* ---- logins under attack ---------------------------------------------- */

static int statuses[POSTERN_SASL_TEMPFAIL + 1];

static void
on_status(void *arg, const struct postern_sasl_result *r)
{
	(void)arg;
	statuses[r->status]++;
}

/* Logs alice in with `pw`; the milliseconds until the answer. */
static uint64_t
timed_login(const char *pw)
{
	uint64_t t = unit_mono_ms();
	postern_sasl_t *s;
	int n = got.count;

	s = login("alice", pw, strlen(pw));
	wait_count(n + 1);
	sfree(s);
	return unit_mono_ms() - t;
}

/* The penalty is checked before the hash: a repeated wrong password
 * costs no verify, another password (the right one) is verified after
 * the wait, a success forgets; freeing during the wait is clean. */
static void
test_penalty_before_the_hash(void)
{
	struct penalty_settings ps = { 64, 100, 400, 60000 };
	struct auth_penalty *t = penalty_create(&ps);
	postern_sasl_t *s;
	uint64_t took, since;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	sasl_set_penalty(t);
	/* A wait runs from the failure before it, which came after the
	 * previous login began: bounds measured from there hold however
	 * slowly a loaded machine answers. */
	since = unit_mono_ms();
	timed_login("bad");
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_FAIL);
	CU_ASSERT_EQUAL(verify_calls, 1);
	timed_login("bad");
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_FAIL);
	CU_ASSERT_EQUAL(verify_calls, 1); /* no hash */
	CU_ASSERT(unit_mono_ms() - since >= 100);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "user=alice (password): the "
	                              "same password failed lately, not "
	                              "checked again"));
	since = unit_mono_ms();
	timed_login("worse");
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_FAIL);
	CU_ASSERT_EQUAL(verify_calls, 2);
	/* Two failures: 200 ms, then the right password works. */
	timed_login("s3cret");
	CU_ASSERT_EQUAL(got.status, POSTERN_SASL_OK);
	CU_ASSERT_EQUAL(verify_calls, 3);
	CU_ASSERT(unit_mono_ms() - since >= 200);
	/* The success forgot: "bad" is verified again, at once (with the
	 * failures remembered it would wait 200 ms unverified). */
	took = timed_login("bad");
	CU_ASSERT_EQUAL(verify_calls, 4);
	CU_ASSERT(took < 150);
	/* Freed in its penalty wait: no callback, nothing verified. */
	s = login("alice", "other", 5);
	sfree(s);
	pump_for(250);
	CU_ASSERT_EQUAL(got.count, 5);
	CU_ASSERT_EQUAL(verify_calls, 4);
	sasl_set_penalty(NULL);
	penalty_destroy(t);
}

/* The fixture's auth lane: one thread, four waiting.  Of six logins at
 * once, the one running and the four waiting are verified; the rest get
 * TEMPFAIL at once, before any verify has finished. */
static void
test_full_auth_queue_tempfail(void)
{
	postern_sasl_t *s[6];
	int i, total = 0;

	memset(statuses, 0, sizeof(statuses));
	verify_sleep_us = 200000;
	for (i = 0; i < 6; i++) {
		in_call = 1;
		s[i] = H->login(NULL, NULL, "alice", "no", 2, on_status, NULL);
		in_call = 0;
		if (i == 0)
			UNIT_PUMP_UNTIL(loop, __atomic_load_n(&verify_started,
			                __ATOMIC_SEQ_CST), 3000);
	}
	pump_for(50);
	CU_ASSERT_EQUAL(statuses[POSTERN_SASL_TEMPFAIL], 1);
	CU_ASSERT_EQUAL(statuses[POSTERN_SASL_FAIL], 0);
	for (i = 0; i < 300 && total < 6; i++) {
		loop_run_once(loop, 10);
		total = statuses[POSTERN_SASL_FAIL] +
		        statuses[POSTERN_SASL_TEMPFAIL];
	}
	CU_ASSERT_EQUAL(statuses[POSTERN_SASL_FAIL], 5);
	CU_ASSERT_EQUAL(verify_calls, 5);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "the password check queue is "
	                              "full"));
	for (i = 0; i < 6; i++)
		sfree(s[i]);
}

/* Long enough that none ends while the test fills the lane. */
static void
lane_work(void *arg)
{
	*(pthread_t *)arg = pthread_self();
	usleep(50000);
}

static void
lane_done(void *arg, int cancelled)
{
	(void)arg;
	statuses[cancelled ? POSTERN_SASL_CANCELLED : POSTERN_SASL_OK]++;
}

/* host->auth_job_submit (ABI 1.4): a module's work on the auth lane, off
 * the loop; NULL outside a worker, and when the lane is full. */
static void
test_host_auth_job_submit(void)
{
	pthread_t ran = pthread_self();
	postern_job_t *j[8];
	int i, n = 0;

	memset(statuses, 0, sizeof(statuses));
	CU_ASSERT_PTR_NOT_NULL_FATAL(H->auth_job_submit);
	CU_ASSERT_PTR_NOT_NULL(H->auth_job_submit(lane_work, lane_done, &ran));
	UNIT_PUMP_UNTIL(loop, statuses[POSTERN_SASL_OK] == 1, 3000);
	CU_ASSERT_EQUAL(statuses[POSTERN_SASL_OK], 1);
	CU_ASSERT(!pthread_equal(ran, pthread_self()));
	/* The fixture's lane takes one running and four waiting. */
	for (i = 0; i < 8; i++)
		if ((j[i] = H->auth_job_submit(lane_work, lane_done,
		                               &ran)) != NULL)
			n++;
	CU_ASSERT(n >= 4 && n <= 5);
	UNIT_PUMP_UNTIL(loop, statuses[POSTERN_SASL_OK] == 1 + n, 3000);
	CU_ASSERT_EQUAL(statuses[POSTERN_SASL_OK], 1 + n);
	host_set_jobs(NULL);
	CU_ASSERT_PTR_NULL(H->auth_job_submit(lane_work, lane_done, &ran));
	host_set_jobs(jobs);
}

static CU_TestInfo sasl_tests[] = {
	{ "host table members", test_host_members },
	{ "unknown mechanism: NULL", test_unknown_mechanism },
	{ "PLAIN with initial response", test_plain_initial },
	{ "PLAIN: empty challenge, then response", test_plain_empty_challenge },
	{ "PLAIN authzid: equal ok, other fails", test_plain_authzid },
	{ "strict base64", test_plain_bad_base64 },
	{ "PLAIN syntax", test_plain_bad_syntax },
	{ "limits", test_limits },
	{ "* cancels", test_cancel },
	{ "LOGIN in two steps", test_login_two_steps },
	{ "LOGIN with initial response", test_login_initial },
	{ "wrong password: FAIL after the delay", test_wrong_password_delay },
	{ "backend TEMPFAIL", test_backend_tempfail },
	{ "no auth service: TEMPFAIL", test_no_auth_service },
	{ "free while the job runs", test_free_while_job_runs },
	{ "free while the delay is armed", test_free_while_delayed },
	{ "free with an answer scheduled", test_free_with_answer_scheduled },
	{ "free from the callback", test_free_from_callback },
	{ "step out of turn is ignored", test_step_out_of_turn },
	{ "login()", test_plain_login },
	{ "login() failures", test_plain_login_failures },
	{ "penalty: checked before the hash", test_penalty_before_the_hash },
	{ "a full auth queue: TEMPFAIL at once",
	  test_full_auth_queue_tempfail },
	{ "host auth_job_submit", test_host_auth_job_submit },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "sasl", NULL, NULL, setup, teardown, sasl_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
