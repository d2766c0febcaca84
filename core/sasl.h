/*
 * sasl.h - SASL exchanges and plaintext logins for every protocol: the
 * implementation behind the host table's sasl_* and login members
 * (semantics in sdk/include/postern/sasl.h and host.h).
 *
 * Mechanisms: PLAIN (RFC 4616) and LOGIN (the de-facto one: challenges
 * "Username:" and "Password:"; an initial response is the username).
 * Responses are strict base64 (RFC 4648 section 4): no whitespace, exact
 * padding.  An initial response "=" is an empty one (RFC 4954, RFC 4959);
 * "*" cancels wherever a response is expected, the initial one included.
 *
 * Limits: a response line of at most SASL_MAX_LINE octets, an
 * authentication identity (login name) of SASL_MAX_AUTHCID, a password of
 * SASL_MAX_PASSWORD, an authorization identity of SASL_MAX_AUTHZID.  Past
 * them, or with a NUL inside a name or password, the answer is MALFORMED.
 *
 * No proxy authorization: an authorization identity (PLAIN's authzid) is
 * accepted only when empty or equal to the authentication identity;
 * anything else fails like a wrong password, since no backend can tell us
 * who may act for whom.
 *
 * Passwords go to the auth service (postern/auth.h, looked up on first
 * use) on the auth lane of the job pool (host_jobs(), JOB_LANE_AUTH);
 * copies are wiped once used.  First the penalty table (when one is set)
 * may make the exchange wait for the client's and the account's recent
 * failures, or answer a name and password that failed lately without a
 * hash.  A wrong password is answered FAIL once the failure delay has
 * passed since the check was queued.  No auth service, no job pool, a
 * full auth queue (or the address's share of it, sasl_set_queue), or a
 * backend that cannot answer: TEMPFAIL.
 *
 * Logging: success and failure are logged at info level with conn_log,
 * never the password.  `c` may be NULL (tests): lines are then written
 * without a connection prefix, under the module's name if `m` is given.
 *
 * Loop thread only; the loop is loop_current.
 */
#ifndef CORE_SASL_H
#define CORE_SASL_H

#include <postern/host.h>

#define SASL_MAX_LINE 8192
#define SASL_MAX_AUTHCID 255
#define SASL_MAX_PASSWORD 1024
#define SASL_MAX_AUTHZID 255

/* "PLAIN LOGIN". */
const char *sasl_mechanisms(void);
/* NULL (and no callback) for an unknown mechanism.  `initial` is base64,
 * "=" for an empty response, or NULL for none. */
postern_sasl_t *sasl_start(postern_module_t *m, postern_conn_t *c,
                           const char *mech, const char *initial,
                           size_t initial_len, postern_sasl_fn cb,
                           void *arg);
/* The response to a CONTINUE.  A step while no CONTINUE is outstanding
 * is a protocol module's bug: it is logged and ignored. */
void sasl_step(postern_sasl_t *s, const char *line, size_t len);
/* Ends the exchange at any time: no callback follows; a verification in
 * flight finishes on its thread and is discarded.  NULL is a no-op. */
void sasl_free(postern_sasl_t *s);
/* A plaintext login (IMAP LOGIN, POP3 USER/PASS).  `user` is a C string;
 * `password` has `password_len` octets.  Never NULL. */
postern_sasl_t *sasl_login(postern_module_t *m, postern_conn_t *c,
                           const char *user, const char *password,
                           size_t password_len, postern_sasl_fn cb,
                           void *arg);

/* The core setting `auth_failure_delay`, in milliseconds (default 2000).
 * Set by setup in the master; workers inherit it. */
void sasl_set_failure_delay(unsigned ms);
/* The penalty table every exchange consults (NULL: none).  Set by the
 * master before the workers fork; the caller owns the table. */
struct auth_penalty;
void sasl_set_penalty(struct auth_penalty *t);

/* postern_logins_total{result}; before the workers fork. */
void sasl_metrics_register(void);
/* The worker's auth lane (`auth_threads`, `auth_queue`) and how many of
 * its checks one client address may have queued or running
 * (`auth_queue_per_ip`; 0: no limit).  Past it, a check from an address
 * with failures on record gets TEMPFAIL at once; one from an address
 * without waits for its address's next free place. */
void sasl_set_queue(unsigned threads, unsigned queue, unsigned per_addr);
/* Forgets the cached auth service, so the next exchange looks it up again
 * (tests, after service_reset). */
void sasl_reset(void);

#endif /* CORE_SASL_H */
