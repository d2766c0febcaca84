/*
 * metrics_http.h - the Prometheus endpoint, served by the master.
 *
 * The master runs no mail sessions, so a slow or hostile scraper never
 * holds up mail: it only costs the master a few bounded connections.
 * GET /metrics answers the registry's text (metrics.h); any other path
 * is 404, any other method 405.  A request has METRICS_HTTP_REQUEST_MAX
 * bytes and METRICS_HTTP_TIMEOUT_MS to arrive and be answered; at
 * METRICS_HTTP_CONNS connections the oldest is dropped for a new one, so
 * that idle connections cannot lock out the next scrape.
 */
#ifndef CORE_METRICS_HTTP_H
#define CORE_METRICS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define METRICS_HTTP_REQUEST_MAX 2048
#define METRICS_HTTP_TIMEOUT_MS 5000
#define METRICS_HTTP_CONNS 16

struct loop;

/* The worker processes, for their memory use; *n of them (0 when none),
 * pid 0 where a worker is not running. */
typedef const pid_t *(*metrics_http_pids_fn)(unsigned *n);

/* Parses "127.0.0.1:9105" or "[::1]:9105" into *ss; with !allow_remote
 * the address must be a loopback one.  0, or -1 with why[len] set. */
int metrics_http_parse(const char *text, int allow_remote,
                       struct sockaddr_storage *ss, socklen_t *sslen,
                       char *why, size_t len);

/* Binds `text` (already checked by metrics_http_parse) and serves it on
 * `l`.  0, or -1 logged. */
int metrics_http_start(struct loop *l, const char *text, int allow_remote,
                       metrics_http_pids_fn pids);

/* Closes the listener and every connection (before a re-exec, or at
 * exit). */
void metrics_http_stop(void);

/* In a new worker: closes the master's endpoint sockets it inherited,
 * without touching the master's loop (shared across the fork). */
void metrics_http_forget(void);

/* The client side, for posternctl stats: GETs /metrics from `text` (an
 * address as metrics_listen) within `timeout_ms`; the body, malloc'd
 * into *body (caller frees).  0, or -1 with why[len] set. */
int metrics_http_fetch(const char *text, unsigned timeout_ms, char **body,
                       char *why, size_t len);

/* What answers `req` (the request up to its blank line): the status line
 * and headers and body, malloc'd into *out (caller frees; NUL after
 * *outlen bytes).  0, or -1
 * when out of memory.  Exposed for the tests. */
int metrics_http_answer(const char *req, size_t len, const pid_t *pids,
                        unsigned npids, char **out, size_t *outlen);

#endif /* CORE_METRICS_HTTP_H */
