/*
 * metrics.h - the registry behind the Prometheus endpoint.
 *
 * Metrics are registered before the workers fork (core and modules'
 * init); each gets fixed cells in a shared mapping with one row per
 * worker.  Writers add to their own row with relaxed atomics: no lock,
 * no wait.  A scrape (in the master) sums the rows.  A worker that
 * restarts under the same id keeps its row's counters, so the sums
 * never go down; its gauges start again from zero.
 */
#ifndef CORE_METRICS_H
#define CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <postern/metrics.h>

#define METRICS_CELLS 2048 /* label values over all metrics */
#define METRICS_WORKERS 64 /* worker ids above share rows */

/* A metric; NULL on error (logged, naming `owner`).  Before
 * metrics_freeze only.  Strings are copied. */
struct postern_metric *metrics_register(const char *owner, const char *name,
                                        const char *help, unsigned kind,
                                        const char *label,
                                        const char *const *values);

/* No registration after this (the fork): every process must agree on
 * the layout. */
void metrics_freeze(void);

/* In a new worker: its adds go to row `worker_id`, whose gauges are
 * zeroed.  -1: the row of the master and of tools. */
void metrics_worker_start(int worker_id);

void metrics_add(struct postern_metric *m, unsigned index, uint64_t n);
void metrics_set(struct postern_metric *m, unsigned index, uint64_t v);

/* The sum over every row of one cell (tests, posternctl). */
uint64_t metrics_value(const struct postern_metric *m, unsigned index);

/* The whole exposition in Prometheus text format 0.0.4, malloc'd into
 * *out (caller frees), with each of `pids`'s resident set size as
 * postern_worker_rss_bytes{worker="i"} (npids 0: none).  0, or -1 when
 * out of memory. */
int metrics_format(char **out, size_t *len, const pid_t *pids,
                   unsigned npids);

/* Escapes a label value (\\, \", \n) or a help text (\\, \n). */
void metrics_escape(FILE *f, const char *s, int quote);

/* Forgets every metric (tests; process teardown). */
void metrics_reset(void);

#endif /* CORE_METRICS_H */
