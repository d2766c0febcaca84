/*
 * shared_count.h - counters every worker shares: how many connections
 * one address holds on a listener (max_per_ip), how many sessions a user
 * has from one address (IMAP's max_userip_connections), summed over all
 * workers so that a limit holds however the kernel spreads the clients.
 *
 * A table is a fixed shared mapping made before the workers fork.  A key
 * (any octets) hashes, with a random seed per table, to a bucket; a
 * bucket has one counter per worker, and a worker zeroes its own column
 * when it starts, so a worker that died leaves no phantom counts behind.
 * Keys that share a bucket share one limit: rare with the seed and
 * SHARED_COUNT_BUCKETS buckets, and it can only refuse early, never let
 * more in.  Any process, any thread: counters are atomic.
 */
#ifndef CORE_SHARED_COUNT_H
#define CORE_SHARED_COUNT_H

#include <stddef.h>
#include <stdint.h>

#define SHARED_COUNT_BUCKETS 16384
#define SHARED_COUNT_WORKERS 64   /* worker ids above share columns */

/* The SDK's postern_counts_t (host->counts_create) is this table. */
struct postern_counts;

/* A new table, or NULL (logged).  Made in the master before the workers
 * fork (or in a single process: tests).  Tables are kept until exit:
 * shared_count_worker_start zeroes the columns of every one. */
struct postern_counts *shared_count_create(void);

/* In a new worker, before it accepts: counts from now on go to the
 * column of `worker_id`, which is zeroed in every table. */
void shared_count_worker_start(int worker_id);

/* Counts one more under key[len] when the sum over the workers stays at
 * or below `max`: then 0 and *ticket (give it back with
 * shared_count_put).  Over the limit: -1, nothing counted, and *total
 * (may be NULL) says how many the bucket held. */
int shared_count_take(struct postern_counts *t, const void *key, size_t len,
                      unsigned max, unsigned *ticket, unsigned *total);

/* Gives back what a take counted; ticket 0 is nothing. */
void shared_count_put(struct postern_counts *t, unsigned ticket);

/* What the shared tables (these, shared_rate.h) hash keys with: a random
 * seed per table, and FNV-1a over the seed and the key. */
uint64_t shared_seed(void);
uint64_t shared_hash(uint64_t seed, const void *key, size_t len);

#endif /* CORE_SHARED_COUNT_H */
