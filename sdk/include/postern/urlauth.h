/*
 * postern/urlauth.h - the URLAUTH service: what a URLAUTH-authorized
 * IMAP URL (RFC 4467) of this server names, for a submission server
 * (SMTP BURL, RFC 4468).
 *
 * The IMAP module publishes a `struct postern_urlauth` table as the
 * service POSTERN_URLAUTH_SERVICE, version POSTERN_URLAUTH_MAJOR.MINOR,
 * when the storage service keeps mailbox access keys (storage 1.7).
 * The URL is parsed, its token checked against the mailbox access key
 * and the named message, section and partial read through the storage
 * service, once, in the IMAP module: the same code answers IMAP's
 * URLFETCH, so what BURL takes is exactly what URLFETCH and FETCH
 * BODY[section]<partial> give.  A module that finds no such service
 * (no IMAP module loaded) offers no BURL.
 *
 * `fetch` is blocking: call it only from a job thread (host.h).  It is
 * thread-safe.  Memory: the caller's arguments are read during the call
 * only.
 */
#ifndef POSTERN_URLAUTH_H
#define POSTERN_URLAUTH_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POSTERN_URLAUTH_SERVICE "urlauth"
#define POSTERN_URLAUTH_MAJOR 1
#define POSTERN_URLAUTH_MINOR 0

/* What fetch returns. */
enum postern_urlauth_status {
	POSTERN_URLAUTH_OK = 0,
	/* Nothing the caller may have: a bad or tampered URL, a key reset
	 * since, expired, an access identifier that does not let
	 * `submitter` in, no such mailbox, message or section.  One answer
	 * for all of them, as RFC 4467 asks (URLFETCH's NIL). */
	POSTERN_URLAUTH_INVALID = -1,
	/* What the URL names is larger than `max` (nothing was given to
	 * `out`). */
	POSTERN_URLAUTH_TOOBIG = -2,
	/* The store failed, or `out` returned -1 (octets may have been
	 * given to `out` already). */
	POSTERN_URLAUTH_TEMP = -3,
};

/* Receives the octets, in order, in pieces of any size; -1 stops. */
typedef int (*postern_urlauth_out_fn)(void *arg, const void *data,
                                      size_t len);

struct postern_urlauth {
	size_t size;        /* sizeof(struct postern_urlauth) */

	/* Gives `out` the octets url[0..len) names (a URLAUTH URL with
	 * its ":INTERNAL:token"), for a submission server acting for the
	 * authenticated user `submitter`: the URL's access identifier must
	 * be "submit+<submitter>", "authuser" or "anonymous" (RFC 4467 3;
	 * "user+" URLs are an IMAP user's, not a submission server's).
	 * At most `max` octets; *total says how many were given.
	 * Blocking. */
	enum postern_urlauth_status (*fetch)(const char *url, size_t len,
	                                     const char *submitter,
	                                     uint64_t max,
	                                     postern_urlauth_out_fn out,
	                                     void *arg, uint64_t *total);
};

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_URLAUTH_H */
