/*
 * relay_retry.c - the retry schedule (see relay_retry.h).
 */
#include <stdio.h>

#include "relay_retry.h"

void
relay_retry_defaults(struct relay_retry_policy *p)
{
	p->min_s = 300;
	p->max_s = 4000;
	p->lifetime_s = 5 * 86400;
	p->warn_s = 0;
	p->jitter_pct = 20;
}

int
relay_retry_check(const struct relay_retry_policy *p, char *err,
                  size_t errlen)
{
	if (p->min_s < 1) {
		snprintf(err, errlen, "retry minimum must be at least 1 s");
		return -1;
	}
	if (p->max_s < p->min_s) {
		snprintf(err, errlen, "retry maximum %u s is below the "
		    "minimum %u s", p->max_s, p->min_s);
		return -1;
	}
	if (p->lifetime_s < p->max_s) {
		snprintf(err, errlen, "queue lifetime %u s is below the "
		    "retry maximum %u s", p->lifetime_s, p->max_s);
		return -1;
	}
	if (p->jitter_pct > 100) {
		snprintf(err, errlen, "retry jitter %u%% is over 100%%",
		    p->jitter_pct);
		return -1;
	}
	if (p->warn_s != 0 && p->warn_s >= p->lifetime_s) {
		snprintf(err, errlen, "delay warning after %u s comes at or "
		    "after the lifetime %u s", p->warn_s, p->lifetime_s);
		return -1;
	}
	return 0;
}

unsigned
relay_retry_delay(const struct relay_retry_policy *p, unsigned failures,
                  uint32_t rnd)
{
	uint64_t d, spread, off;
	unsigned n;

	if (failures == 0)
		failures = 1;
	d = p->min_s;
	/* Doubling stops at the maximum, so no shift overflows. */
	for (n = 1; n < failures && d < p->max_s; n++)
		d *= 2;
	if (d > p->max_s)
		d = p->max_s;
	/* Spread over [d - d*j/2, d + d*j/2] with rnd. */
	spread = d * p->jitter_pct / 100;
	off = spread * rnd / UINT32_MAX;
	d = d - spread / 2 + off;
	if (d < p->min_s)
		d = p->min_s;
	if (d > p->max_s)
		d = p->max_s;
	return (unsigned)d;
}

int64_t
relay_retry_expiry(const struct relay_retry_policy *p, int64_t arrival)
{
	return arrival + (int64_t)p->lifetime_s;
}

enum relay_retry_verdict
relay_retry_next(const struct relay_retry_policy *p, int64_t arrival,
                 int64_t now, unsigned failures, uint32_t rnd,
                 int64_t *next)
{
	int64_t expiry = relay_retry_expiry(p, arrival);
	int64_t t;

	if (now >= expiry)
		return RELAY_RETRY_EXPIRED;
	t = now + relay_retry_delay(p, failures, rnd);
	*next = t < expiry ? t : expiry;
	return RELAY_RETRY_AGAIN;
}

int
relay_retry_warn_due(const struct relay_retry_policy *p, int64_t arrival,
                     int64_t now, int warned)
{
	if (warned || p->warn_s == 0)
		return 0;
	return now >= arrival + (int64_t)p->warn_s &&
	    now < relay_retry_expiry(p, arrival);
}
