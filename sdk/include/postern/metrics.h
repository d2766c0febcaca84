/*
 * postern/metrics.h - counters and gauges for the Prometheus endpoint
 * (ABI 1.8).
 *
 * A module registers its metrics while it initialises (in the master,
 * before the workers fork); each worker then adds to its own row of a
 * shared table with relaxed atomics, so counting never takes a lock and
 * never waits.  The master sums the rows when the endpoint is scraped.
 *
 * Names: the host prefixes "postern_" and, for a counter, appends
 * "_total": "smtp_transactions" is exported as
 * postern_smtp_transactions_total.  A name is [a-z0-9_], 1 to 63 long,
 * starting with a letter.  A metric has no label, or one label with a
 * fixed set of values given at registration (at most 32); label_index
 * picks one of them (0 without a label).
 */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A registered metric: host-owned, valid for the process's life. */
typedef struct postern_metric postern_metric_t;

enum postern_metric_kind {
	POSTERN_METRIC_COUNTER = 0, /* only goes up: metric_add */
	POSTERN_METRIC_GAUGE = 1,   /* a level: metric_set, metric_add */
};

#define POSTERN_METRIC_LABELS_MAX 32
#define POSTERN_METRIC_NAME_MAX 63

/* The host functions (struct postern_host, ABI 1.8):
 *
 * metric_register(m, name, help, kind, label, values): init only (the
 *   master, before the workers fork; NULL after).  `help` is one line of
 *   text; `label` is the label's name, or NULL for a metric without one;
 *   `values` the label's values, NULL-terminated (NULL when label is).
 *   The host copies every string.  NULL (logged, naming the module) on a
 *   bad name, a name already registered, too many values, or a full
 *   table.  A module counts nothing when it gets NULL: add/set with a
 *   NULL metric are no-ops.
 *
 * metric_add(mt, label_index, n): adds n to this worker's row.  Any
 *   thread of a worker (loop and job threads), never blocks.  An index
 *   past the label's values is ignored.
 *
 * metric_set(mt, label_index, v): a gauge's level in this worker; the
 *   endpoint reports the sum over the workers.  Any thread. */

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_METRICS_H */
