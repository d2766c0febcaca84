/*
 * conn.h - client connections: buffered, limited input; queued output;
 * TLS (implicit and STARTTLS).  The functions named like the host table's
 * members (conn_read_line, conn_write, ...) are exactly those members.
 *
 * Every connection runs on loop_current (loop.h) of its process.
 */
#ifndef CORE_CONN_H
#define CORE_CONN_H

#include <postern/host.h>

struct loop;

/* Wraps an accepted socket `fd` (nonblocking is set here) for listener
 * `spec` (limits, TLS, name; the conn keeps a pointer: it must outlive
 * the conn).  Starts the TLS handshake when spec->tls is set, and calls
 * spec->ops->on_accept.  NULL after closing fd when over limits. */
postern_conn_t *conn_accept(int fd, const struct postern_listen_spec *spec);

void conn_set_ops(postern_conn_t *c, const struct postern_conn_ops *ops,
                  void *arg);
int conn_read_line(postern_conn_t *c, size_t max, struct postern_line *line);
/* After conn_read_line said POSTERN_TOOLONG: drops the rest of that
 * line and sets *end to how it ended (POSTERN_LINE_CRLF or
 * POSTERN_LINE_BARE_LF): POSTERN_OK, or POSTERN_AGAIN until its LF has
 * come.  For raw lines whose terminator means something (the session
 * layer's take_lines: SMTP's end of DATA). */
int conn_line_skipped(postern_conn_t *c, unsigned *end);
int conn_peek(postern_conn_t *c, const void **data, size_t *len);
void conn_consume(postern_conn_t *c, size_t n);
int conn_write(postern_conn_t *c, const void *data, size_t len);
int conn_printf(postern_conn_t *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t conn_output_pending(postern_conn_t *c);
/* 1 once closing began (conn_close, a timeout) or the socket went. */
int conn_closing(postern_conn_t *c);
/* The stream attached to the connection (stream.c), or NULL.  While one
 * is, the connection's drains go to it instead of ops->on_drain, and it
 * hears of the connection going (stream_conn_gone) before on_close. */
struct postern_stream *conn_stream(postern_conn_t *c);
void conn_set_stream(postern_conn_t *c, struct postern_stream *st);
void conn_pause(postern_conn_t *c);
void conn_resume(postern_conn_t *c);
int conn_starttls(postern_conn_t *c, postern_tls_t *tls);
void conn_close(postern_conn_t *c);
void conn_set_idle(postern_conn_t *c, unsigned ms);
uint64_t conn_id(postern_conn_t *c);
/* The prefix conn_log writes, copied into buf (host->conn_log_prefix). */
void conn_log_prefix(postern_conn_t *c, char *buf, size_t len);
const char *conn_peer(postern_conn_t *c);
unsigned conn_peer_port(postern_conn_t *c);
const struct sockaddr *conn_peer_addr(postern_conn_t *c, socklen_t *len);
/* The socket, for a look from another thread (poll for a peer that
 * left); never read, write or close it. */
int conn_fd(postern_conn_t *c);
int conn_peer_gone(postern_conn_t *c);
int conn_peer_is_loopback(postern_conn_t *c);
unsigned conn_local_port(postern_conn_t *c);
const char *conn_listener_name(postern_conn_t *c);
int conn_tls_active(postern_conn_t *c);
int conn_tls_info(postern_conn_t *c, struct postern_tls_info *info);
postern_pool_t *conn_pool(postern_conn_t *c);
int conn_junk_command(postern_conn_t *c);
void conn_junk_reset(postern_conn_t *c);
void conn_log(postern_conn_t *c, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Outbound connections (host->conn_connect and friends, ABI 1.4). */
postern_conn_t *conn_connect(const struct postern_connect_spec *spec,
                             char *err, size_t errlen);
int conn_starttls_client(postern_conn_t *c, postern_tls_t *tls,
                         const char *verify_name);
const char *conn_error(postern_conn_t *c);

/* Makes `l` (loop_current) the connections' loop: installs the
 * before-wait callback that flushes output, and ignores SIGPIPE (a peer
 * that resets must not kill the worker).  conn_accept calls it itself
 * when loop_current changed. */
void conn_init(struct loop *l);
/* Closes every connection (conn_close_all) and every socket still
 * lingering after a close; detaches from the loop.  Before loop_destroy. */
void conn_fini(void);

/* Output queued above `octets` stops a connection's input until it
 * drains under half of it (0: the default, 256 KiB).  The `core`
 * setting output_high_water; process-wide. */
void conn_set_output_high_water(size_t octets);

/* Open connections in this process. */
size_t conn_count(void);
/* Graceful stop: calls every connection's on_shutdown (or nothing). */
void conn_shutdown_all(void);
/* Closes every connection now (reason SHUTDOWN); on_close runs for each
 * before this returns. */
void conn_close_all(void);

#endif /* CORE_CONN_H */
