/*
 * relay_retry.h - when to try a deferred recipient again, when to give
 * up, when to warn the sender of the delay.
 *
 * After the n-th failed attempt (n = 1 for the first) the delay is
 *     d = min(min_s * 2^(n-1), max_s)
 * spread by +-jitter_pct/2 percent with the caller's random number, then
 * kept within [min_s, max_s] (jitter keeps thousands of messages
 * deferred by one outage from coming back in the same second).  The
 * next attempt is at now + d, but never after arrival + lifetime_s: the
 * last try is at the end of the lifetime, and a failure at or after it
 * expires the message (RFC 5321 section 4.5.4.1: give up after 4-5
 * days, send a failure DSN).
 *
 * Threads and memory.  Pure functions of their arguments: any thread;
 * nothing is allocated.  Times are seconds since the epoch (or any
 * common origin).
 */
#ifndef RELAY_RETRY_H
#define RELAY_RETRY_H

#include <stddef.h>
#include <stdint.h>

struct relay_retry_policy {
	unsigned min_s;        /* first delay: 300 (may be 1, for tests) */
	unsigned max_s;        /* largest delay: 4000 */
	unsigned lifetime_s;   /* give up after: 5 days (432000) */
	unsigned warn_s;       /* delay warning after: 0 = never */
	unsigned jitter_pct;   /* 0..100: 20 */
};

/* Fills in the defaults above. */
void relay_retry_defaults(struct relay_retry_policy *p);

/* Checks a policy: 1 <= min_s <= max_s <= lifetime_s, jitter_pct <= 100,
 * warn_s < lifetime_s when set.  0, or -1 with err naming the field. */
int relay_retry_check(const struct relay_retry_policy *p, char *err,
                      size_t errlen);

enum relay_retry_verdict {
	RELAY_RETRY_AGAIN = 0, /* *next set */
	RELAY_RETRY_EXPIRED,   /* the lifetime is over: bounce (4.4.7) */
};

/* After failure number `failures` (1 for the first) at `now`, of a
 * message that arrived at `arrival`; `rnd` is a uniformly random 32-bit
 * number (0 gives the smallest spread, UINT32_MAX the largest).
 * failures = 0 is taken as 1. */
enum relay_retry_verdict relay_retry_next(const struct relay_retry_policy *p,
                                          int64_t arrival, int64_t now,
                                          unsigned failures, uint32_t rnd,
                                          int64_t *next);

/* The delay before attempt failures+1, before clamping to the lifetime
 * (what relay_retry_next adds to now). */
unsigned relay_retry_delay(const struct relay_retry_policy *p,
                           unsigned failures, uint32_t rnd);

/* 1 when a delay warning is due at `now` for a message that arrived at
 * `arrival` and has not been warned about yet (`warned` 0): warn_s set,
 * now >= arrival + warn_s, and the lifetime not over.  0 otherwise. */
int relay_retry_warn_due(const struct relay_retry_policy *p, int64_t arrival,
                         int64_t now, int warned);

/* The time at which the message expires (arrival + lifetime_s), for
 * the DSN's Will-Retry-Until field. */
int64_t relay_retry_expiry(const struct relay_retry_policy *p,
                           int64_t arrival);

#endif /* RELAY_RETRY_H */
