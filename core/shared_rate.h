/*
 * shared_rate.h - event rates every worker shares: how many connections,
 * messages or recipients one client address, user or sender domain made
 * in the last window, summed over all workers, for rate limits that hold
 * however the kernel spreads the clients.
 *
 * A table is a fixed shared mapping made before the workers fork, with
 * one window length.  A key (any octets) hashes, with a random seed per
 * table, to a bucket holding the counts of the current and the previous
 * window; the rate is the current count plus the previous one weighted by
 * how much of it still lies within one window back (the sliding window
 * of two fixed ones, good to a few percent and constant in memory).  Keys
 * that share a bucket share a limit: rare with the seed and
 * SHARED_RATE_BUCKETS buckets, and it can only refuse early.  Any
 * process, any thread: a bucket is one 64-bit word changed by
 * compare-and-swap.
 */
#ifndef CORE_SHARED_RATE_H
#define CORE_SHARED_RATE_H

#include <stddef.h>
#include <stdint.h>

#define SHARED_RATE_BUCKETS 65536
#define SHARED_RATE_MAX 0xffffffu /* counts saturate here */

/* The SDK's postern_rates_t (host->rates_create) is this table. */
struct postern_rates;

/* A new table for windows of `window_ms` (at least 1), or NULL
 * (logged).  Made in the master before the workers fork. */
struct postern_rates *shared_rate_create(uint64_t window_ms);

/* Adds `cost` events under key[len] at time `now_ms` (a monotonic clock
 * every process shares) if the rate with them stays at or below `max`:
 * then 0.  Over: -1, nothing added.  *rate (may be NULL) gets the rate
 * before these events. */
int shared_rate_hit(struct postern_rates *t, const void *key, size_t len,
                    unsigned cost, unsigned max, uint64_t now_ms,
                    unsigned *rate);

#endif /* CORE_SHARED_RATE_H */
