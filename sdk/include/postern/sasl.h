/*
 * postern/sasl.h - SASL authentication, shared by every protocol.
 *
 * The host implements the mechanisms (PLAIN, RFC 4616; LOGIN, as clients
 * use it) once, for SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH, and plain
 * logins (IMAP LOGIN, POP3 USER/PASS) through the same path.  Passwords are
 * checked by the auth service (postern/auth.h) on a job thread; a failure
 * is answered only after `auth_failure_delay` (core setting), so guessing
 * is slow while the event loop keeps serving everyone else.
 *
 * An exchange: sasl_start with the mechanism and the initial response if
 * the client sent one; then, each time the callback says CONTINUE, send
 * the challenge (base64, may be "") and pass the client's next line to
 * sasl_step.  The callback always runs later on the event loop, never
 * inside the host function that caused it, and at most once per start or
 * step.  sasl_free ends the exchange at any time (the callback is not
 * called afterwards).  Whether plaintext mechanisms may be offered on an
 * unencrypted connection is the protocol's policy; the host does not
 * decide it.
 *
 * The functions live in the host table from ABI 1.2.
 */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct postern_sasl postern_sasl_t;

enum postern_sasl_status {
	POSTERN_SASL_CONTINUE = 0, /* send the challenge, read a response */
	POSTERN_SASL_OK,           /* authenticated: `user` is set */
	POSTERN_SASL_FAIL,         /* wrong credentials (after the delay) */
	POSTERN_SASL_MALFORMED,    /* not valid base64 or not the mechanism's
	                              syntax, or too long */
	POSTERN_SASL_CANCELLED,    /* the client sent "*" */
	POSTERN_SASL_TEMPFAIL,     /* no auth service, or it cannot answer */
};

struct postern_user;

struct postern_sasl_result {
	enum postern_sasl_status status;
	const char *challenge;  /* CONTINUE: base64 text to send */
	const char *user;       /* OK: the canonical login name */
	const struct postern_user *userinfo; /* OK: the user's record */
	/* Strings and userinfo stay valid until sasl_free. */
};

typedef void (*postern_sasl_fn)(void *arg,
                                const struct postern_sasl_result *r);

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_SASL_H */
