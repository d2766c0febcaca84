/*
 * postern/conn.h - listeners and connections.
 *
 * A protocol module registers listeners in init; the master binds them and
 * every worker accepts on them.  For each accepted connection the host
 * calls the listener's on_accept in the worker that took it.  From then on
 * the connection is event driven:
 *
 *   - on_read: input arrived (or is still buffered after conn_resume).
 *     Pull it with host->conn_read_line() or conn_peek()/conn_consume()
 *     until they return POSTERN_AGAIN.  Input left unconsumed stays
 *     buffered; once the buffer holds `max_input` bytes the host stops
 *     reading the socket (back-pressure).
 *   - on_drain: everything written so far has reached the kernel; a module
 *     streaming a large reply writes the next piece here.
 *   - on_close: called exactly once, for any reason (peer closed, error,
 *     timeout, conn_close, worker shutdown).  Free the session here; the
 *     connection handle is invalid after on_close returns.
 *
 * Callbacks never nest: the host never calls on_read from inside a host
 * function the module called, and on_close is always deferred to the loop.
 * All calls happen on the worker's single event-loop thread.
 *
 * Writes (conn_write, conn_printf) are queued and sent when the callback
 * returns, so a pipelined burst of replies goes out in one syscall.  A
 * write is never refused for its size (the module decides how much to
 * produce); check conn_output_pending() and wait for on_drain before
 * producing more of a large reply.
 *
 * Output back-pressure (ABI 1.4): while more than the host's
 * `output_high_water` octets (default 256 KiB) wait for a client that
 * does not read, the host hands the module no input: conn_read_line and
 * conn_peek answer POSTERN_AGAIN even for input already buffered, and
 * on_read is not called, until the queue drains under half the mark
 * (then on_read follows).  So a client that pipelines commands without
 * reading the replies costs a bounded amount of memory in every
 * protocol.  Output that cannot drain for the idle timeout closes the
 * connection (reason TIMEOUT, without on_timeout: a goodbye could not
 * reach the client).
 */
#ifndef POSTERN_CONN_H
#define POSTERN_CONN_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of a line returned by conn_read_line. */
#define POSTERN_LINE_CRLF 0x1u    /* ended by CR LF */
#define POSTERN_LINE_BARE_LF 0x2u /* ended by LF without CR */
#define POSTERN_LINE_BARE_CR 0x4u /* contains a CR not followed by LF */
#define POSTERN_LINE_NUL 0x8u     /* contains at least one NUL byte */

struct postern_line {
	const char *data; /* not NUL-terminated; valid until the next read
	                     call or return to the loop */
	size_t len;       /* without the line terminator */
	unsigned flags;   /* POSTERN_LINE_* */
};

/* Why a connection closed, passed to on_close. */
enum postern_close_reason {
	POSTERN_CLOSE_LOCAL = 0,  /* the module called conn_close */
	POSTERN_CLOSE_PEER,       /* the peer closed its side */
	POSTERN_CLOSE_ERROR,      /* socket or TLS error (logged) */
	POSTERN_CLOSE_TIMEOUT,    /* idle timeout expired */
	POSTERN_CLOSE_SHUTDOWN,   /* the worker is stopping */
};

struct postern_conn_ops {
	size_t size; /* sizeof(struct postern_conn_ops) */
	void (*on_read)(postern_conn_t *c, void *arg);   /* required */
	void (*on_drain)(postern_conn_t *c, void *arg);  /* may be NULL */
	void (*on_close)(postern_conn_t *c, void *arg,
	                 enum postern_close_reason why); /* required */
	/* Called when the host's idle timer fires.  Return 1 to close the
	 * connection (reason TIMEOUT) after writing a goodbye, or 0 to keep
	 * it (the timer re-arms).  May be NULL: close. */
	int (*on_timeout)(postern_conn_t *c, void *arg);
	/* Called once when a worker starts a graceful stop, so the protocol
	 * can say goodbye to an idle session ("* BYE", "421") and close it,
	 * or let a transaction in flight finish.  May be NULL: the
	 * connection is closed when the shutdown timeout expires. */
	void (*on_shutdown)(postern_conn_t *c, void *arg);
};

/* A limit that is not enforced (struct postern_conn_limits). */
#define POSTERN_CONN_UNLIMITED ((unsigned)-1)

/* Per-connection limits a module sets in its listener spec.  Zero means
 * the host default shown. */
struct postern_conn_limits {
	size_t size;         /* sizeof(struct postern_conn_limits) */
	size_t max_input;    /* input buffer bytes (default 64 KiB) */
	unsigned idle_ms;    /* idle timeout (default 5 minutes) */
	/* ABI 1.4: junk commands (host->conn_junk_command) allowed before
	 * the session is closed (default 100; POSTERN_CONN_UNLIMITED: no
	 * limit). */
	unsigned max_junk;
};

struct postern_listener_ops {
	size_t size; /* sizeof(struct postern_listener_ops) */
	/* A new connection, in a worker.  Call host->conn_set_ops() before
	 * returning, or the host closes it.  `arg` is the spec's arg. */
	void (*on_accept)(postern_conn_t *c, void *arg);
};

struct postern_listen_spec {
	size_t size;          /* sizeof(struct postern_listen_spec) */
	const char *name;     /* shown in logs, e.g. "submission" */
	const char *address;  /* "127.0.0.1", "::1", "*" (all), or a path
	                         starting with '/' for a unix socket */
	unsigned port;        /* TCP port; ignored for unix sockets */
	postern_tls_t *tls;   /* TLS context for implicit TLS, or NULL */
	unsigned max_conns;   /* per worker, 0 = host default (1024) */
	unsigned max_per_ip;  /* per address (IPv6: /64), over all workers;
	                         0 = unlimited */
	struct postern_conn_limits limits;
	const struct postern_listener_ops *ops;
	void *arg;            /* passed to ops; owned by the module */
};

/* An outbound connection (host->conn_connect, ABI 1.4). */
struct postern_connect_spec {
	size_t size;          /* sizeof(struct postern_connect_spec) */
	const char *name;     /* shown in logs, e.g. "relay" */
	/* A numeric IPv4 or IPv6 address ("192.0.2.7", "2001:db8::1"), or
	 * a path starting with '/' for a unix socket.  No name lookup. */
	const char *address;
	unsigned port;        /* TCP port; ignored for unix sockets */
	unsigned connect_ms;  /* connect timeout (0: 30 seconds) */
	struct postern_conn_limits limits; /* idle_ms applies once connected */
	const struct postern_conn_ops *ops; /* set before connecting */
	void *arg;
};

/* What conn_tls_info reports. */
struct postern_tls_info {
	size_t size;             /* set by the caller before the call */
	const char *version;     /* "TLSv1.3"; static string */
	const char *cipher;      /* "TLS_AES_256_GCM_SHA384"; static string */
	int bits;                /* symmetric key bits */
	int peer_cert_verified;  /* 1 if a client certificate was verified */
};

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_CONN_H */
