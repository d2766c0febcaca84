/*
 * postern/host.h - the host table: every service posternd offers modules.
 *
 * A module receives `const struct postern_host *host` in init and keeps it
 * for its lifetime; it calls the host only through this table (modules do
 * not link against posternd).  The table starts with its size and only ever
 * grows at the end; every member the module's headers show (those of the
 * minor it targets, postern/module.h) is there and not NULL, because a
 * host refuses a module built for a newer minor than its own.
 *
 * Threads: unless a member says otherwise, call it only on the event-loop
 * thread of the process (the master during init, the worker afterwards).
 * From a job thread a module may call: the log functions; the pool
 * functions on a pool no other thread uses meanwhile (pools have no
 * locks: one owner at a time); and whatever member says "any thread" or
 * "job threads".
 *
 * Phases: "init" means during the module's init callback in the master;
 * "worker" means in a worker process, from worker start on.
 */
#ifndef POSTERN_HOST_H
#define POSTERN_HOST_H

#include <stdarg.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <postern/types.h>
#include <postern/metrics.h>
#include <postern/module.h>
#include <postern/config.h>
#include <postern/conn.h>
#include <postern/hook.h>
#include <postern/sasl.h>
#include <postern/mime.h>
#include <postern/dns.h>
#include <postern/session.h>
#include <postern/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Directories the host knows about (host->dir). */
enum postern_dir {
	POSTERN_DIR_CONFIG = 0, /* directory of the main configuration file */
	POSTERN_DIR_STATE,      /* `state_dir`: persistent data (queues...) */
	POSTERN_DIR_RUN,        /* `run_dir`: pid file, sockets */
	POSTERN_DIR_MODULES,    /* `module_dir` */
};

/* Lifecycle callbacks of a module in each worker process. */
struct postern_worker_ops {
	size_t size; /* sizeof(struct postern_worker_ops) */
	/* The worker's loop exists; privileges are dropped.  Open files,
	 * start timers here.  Return -1 (after logging) to stop the worker. */
	int (*start)(void *arg);
	/* A graceful stop began: no new connections will arrive. */
	void (*stopping)(void *arg);
	/* The loop has ended; release what start took.  Runs before fini. */
	void (*exit)(void *arg);
};

/* Timer callback: return 0 to drop the timer, or N > 0 to fire again in
 * N milliseconds.  The handle is invalid once the timer is dropped. */
typedef unsigned (*postern_timer_fn)(void *arg);

/* Watch events. */
#define POSTERN_WATCH_READ 0x1u
#define POSTERN_WATCH_WRITE 0x2u
#define POSTERN_WATCH_ERROR 0x4u /* reported only: hang-up or error */

typedef void (*postern_watch_fn)(postern_watch_t *w, int fd,
                                 unsigned events, void *arg);

/* Job callbacks.  `work` runs on a pool thread: it may block, and may call
 * only what the "Threads" paragraph above allows a job.  `done` runs afterwards on the
 * event loop, exactly once, with cancelled = 1 if job_cancel came before
 * `work` started (then `work` never ran).  Free `arg` in `done`. */
typedef void (*postern_job_work_fn)(void *arg);
typedef void (*postern_job_done_fn)(void *arg, int cancelled);

/* A function for isolate_register: see there. */
typedef ssize_t (*postern_isolated_fn)(const void *in, size_t inlen,
                                       void *out, size_t outcap);
struct postern_append; /* postern/storage.h */

/* What local_deliver did for one recipient (see there). */
struct postern_local_result {
	size_t size;             /* sizeof(struct postern_local_result) */
	unsigned code;           /* 0, or the worst 4xx/5xx */
	const char *text;        /* with a code: "4.2.2 mailbox full" */
	const char **forwards;   /* targets that are no local user */
	size_t nforwards;
	const char **delivered;  /* logins that have the message, so far */
	size_t ndelivered;
};

/* The largest input or output of an isolated call. */
#define POSTERN_ISOLATE_MAX 65536

struct postern_host {
	size_t size;         /* sizeof(struct postern_host) in the host */
	uint16_t abi_major;  /* the host's ABI */
	uint16_t abi_minor;
	const char *version; /* posternd's version, e.g. "0.1.0" */

	/* ---- Logging (ABI 1.0) -------------------------------------- */

	/* Logs a line prefixed with the module's name.  `m` may be NULL.
	 * Any thread. */
	void (*log)(postern_module_t *m, int level, const char *fmt, ...)
		POSTERN_PRINTF(3, 4);
	void (*vlog)(postern_module_t *m, int level, const char *fmt,
	             va_list ap);
	/* Logs a line carrying the connection's id and peer address (a NULL
	 * connection logs without them). */
	void (*conn_log)(postern_conn_t *c, int level, const char *fmt, ...)
		POSTERN_PRINTF(3, 4);
	/* 1 if a line at `level` would be written: skip costly formatting. */
	int (*log_enabled)(int level);

	/* ---- Configuration (ABI 1.0; postern/config.h) --------------- */

	/* The top-level group named after the module, or NULL if the
	 * configuration has none. */
	postern_cfg_t *(*cfg_module)(postern_module_t *m);
	/* A node below `node` by dotted path ("tls.cert"), or NULL.  A NULL
	 * `node` means the root. */
	postern_cfg_t *(*cfg_lookup)(postern_cfg_t *node, const char *path);
	/* See POSTERN_CFG_PARSE in postern/config.h.  Init only. */
	int (*cfg_parse)(postern_module_t *m, postern_cfg_t *node,
	                 const struct postern_cfg_key *schema,
	                 size_t key_size, void *out);
	/* Elements of a list, array or group node (0 for a scalar). */
	size_t (*cfg_count)(postern_cfg_t *node);
	postern_cfg_t *(*cfg_elem)(postern_cfg_t *node, size_t i);
	/* The node's full path, e.g. "smtp.listen.[1].port".  Host-owned. */
	const char *(*cfg_path)(postern_cfg_t *node);
	/* Reports a configuration problem as `FILE:LINE: key 'path': ...`
	 * and makes the configuration check fail.  `node` may be NULL. */
	void (*cfg_error)(postern_module_t *m, postern_cfg_t *node,
	                  const char *fmt, ...) POSTERN_PRINTF(3, 4);
	/* One of the host's directories (enum postern_dir).  Host-owned. */
	const char *(*dir)(enum postern_dir which);

	/* ---- Memory pools (ABI 1.0) ---------------------------------- */

	/* A pool hands out memory that is freed all at once by
	 * pool_clear (keeps the first block for reuse) or pool_destroy.
	 * Allocations are aligned for any type.  Allocation failure aborts
	 * the process (as every allocation in posternd does): a mail server
	 * out of memory cannot promise anything it accepted.  Any thread,
	 * one thread per pool at a time. */
	postern_pool_t *(*pool_create)(size_t block_size);
	void *(*pool_alloc)(postern_pool_t *p, size_t n);    /* zeroed */
	char *(*pool_strndup)(postern_pool_t *p, const char *s, size_t n);
	char *(*pool_printf)(postern_pool_t *p, const char *fmt, ...)
		POSTERN_PRINTF(2, 3);
	void (*pool_clear)(postern_pool_t *p);
	void (*pool_destroy)(postern_pool_t *p); /* NULL is a no-op */

	/* ---- Worker lifecycle (ABI 1.0) ------------------------------ */

	/* Registers callbacks run in every worker.  Init only. */
	int (*worker_ops)(postern_module_t *m,
	                  const struct postern_worker_ops *ops, void *arg);
	/* 0..workers-1 in a worker, -1 in the master. */
	int (*worker_id)(void);
	/* 1 once this worker's graceful stop has begun. */
	int (*stopping)(void);

	/* ---- Event loop: timers, fd watches, deferred calls (ABI 1.0) - */

	postern_timer_t *(*timer_add)(unsigned ms, postern_timer_fn fn,
	                              void *arg);
	/* Cancels a timer that is still armed.  Not from its own callback
	 * (return 0 there instead). */
	void (*timer_cancel)(postern_timer_t *t);
	/* Monotonic milliseconds, cached once per loop iteration. */
	uint64_t (*now_ms)(void);
	/* Watches `fd` (owned by the caller, who closes it after
	 * watch_remove). */
	postern_watch_t *(*watch_add)(int fd, unsigned events,
	                              postern_watch_fn fn, void *arg);
	int (*watch_set)(postern_watch_t *w, unsigned events);
	void (*watch_remove)(postern_watch_t *w);
	/* Runs fn(arg) on the loop soon, after the current callback. */
	void (*defer)(void (*fn)(void *arg), void *arg);

	/* ---- Async jobs (ABI 1.0) ------------------------------------ */

	/* Queues blocking work for the worker's thread pool (`job_threads`
	 * setting).  The handle is valid until `done` runs. */
	postern_job_t *(*job_submit)(postern_job_work_fn work,
	                             postern_job_done_fn done, void *arg);
	/* If the job has not started, it will not: done(arg, 1) follows on
	 * the loop.  If it is running, it finishes and done(arg, 0) runs. */
	void (*job_cancel)(postern_job_t *job);

	/* ---- TLS (ABI 1.0) ------------------------------------------- */

	/* Builds a server TLS context from a group with keys `cert` (PEM,
	 * may hold the chain), `key`, `ca` (optional, to verify client
	 * certificates), `min_version` ("TLSv1.2" default, or "TLSv1.3"),
	 * `ciphers` (TLS 1.2) and `ciphersuites` (TLS 1.3).  Relative file
	 * names are in the configuration's directory.  Reports errors
	 * through cfg_error and returns NULL.  Init only; host-owned. */
	postern_tls_t *(*tls_create)(postern_module_t *m, postern_cfg_t *node);

	/* ---- Listeners and connections (ABI 1.0; postern/conn.h) ----- */

	/* Registers a listener; the master binds it.  Init only.  The spec
	 * is copied (strings too); `ops` and `arg` must outlive the
	 * process. */
	postern_listener_t *(*listen)(postern_module_t *m,
	                              const struct postern_listen_spec *spec);
	/* Sets the connection's callbacks.  Call from on_accept. */
	void (*conn_set_ops)(postern_conn_t *c,
	                     const struct postern_conn_ops *ops, void *arg);
	/* Takes the next line from the input buffer.  POSTERN_OK: *line is
	 * set and consumed.  POSTERN_AGAIN: no complete line yet.
	 * POSTERN_TOOLONG: a line longer than `max` bytes (terminator
	 * excluded) arrived; the host discards it up to and including its
	 * LF, so the next call returns the following line.  POSTERN_CLOSED:
	 * the connection is closing. */
	int (*conn_read_line)(postern_conn_t *c, size_t max,
	                      struct postern_line *line);
	/* Looks at buffered input without consuming it (for literals and
	 * binary chunks).  POSTERN_OK with *len > 0, or POSTERN_AGAIN. */
	int (*conn_peek)(postern_conn_t *c, const void **data, size_t *len);
	/* Drops `n` bytes (at most what conn_peek returned). */
	void (*conn_consume)(postern_conn_t *c, size_t n);
	/* Queues output.  POSTERN_OK, or POSTERN_CLOSED (output dropped). */
	int (*conn_write)(postern_conn_t *c, const void *data, size_t len);
	int (*conn_printf)(postern_conn_t *c, const char *fmt, ...)
		POSTERN_PRINTF(2, 3);
	/* Bytes queued but not yet sent. */
	size_t (*conn_output_pending)(postern_conn_t *c);
	/* Stops calling on_read (and reading the socket) until conn_resume;
	 * use while an async step of a command is in flight. */
	void (*conn_pause)(postern_conn_t *c);
	/* Resumes reading; on_read follows from the loop if input is
	 * buffered. */
	void (*conn_resume)(postern_conn_t *c);
	/* Starts TLS on a plaintext connection: sends what is queued (the
	 * protocol's "go ahead" reply) in plaintext, DISCARDS every input
	 * byte already buffered or received before the handshake (RFC 3207
	 * section 6, CVE-2011-0411), then handshakes.  on_read resumes with
	 * data read inside TLS; a failed handshake closes the connection
	 * (reason ERROR).  Returns POSTERN_OK or POSTERN_ERROR (already TLS). */
	int (*conn_starttls)(postern_conn_t *c, postern_tls_t *tls);
	/* Sends what is queued, then closes.  on_close follows. */
	void (*conn_close)(postern_conn_t *c);
	/* Sets the idle timeout (0: the listener's default). */
	void (*conn_set_idle)(postern_conn_t *c, unsigned ms);
	/* A process-unique id, also in every conn_log line. */
	uint64_t (*conn_id)(postern_conn_t *c);
	/* Peer address as text ("192.0.2.7", "2001:db8::1", "unix").
	 * Host-owned, valid until on_close returns. */
	const char *(*conn_peer)(postern_conn_t *c);
	unsigned (*conn_peer_port)(postern_conn_t *c);
	/* The raw peer address; *len set to its length. */
	const struct sockaddr *(*conn_peer_addr)(postern_conn_t *c,
	                                         socklen_t *len);
	/* 1 for 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and unix sockets. */
	int (*conn_peer_is_loopback)(postern_conn_t *c);
	/* The local port and listener name the connection came in on. */
	unsigned (*conn_local_port)(postern_conn_t *c);
	const char *(*conn_listener_name)(postern_conn_t *c);
	/* 1 once TLS is established (implicit or after STARTTLS). */
	int (*conn_tls_active)(postern_conn_t *c);
	/* Fills `info` (set info->size first).  POSTERN_ERROR without TLS. */
	int (*conn_tls_info)(postern_conn_t *c, struct postern_tls_info *info);
	/* A pool freed after on_close returns. */
	postern_pool_t *(*conn_pool)(postern_conn_t *c);

	/* ---- Hooks (ABI 1.0; postern/hook.h) ------------------------- */

	/* Defines a hook point owned by `m`.  Init only. */
	postern_hook_t *(*hook_define)(postern_module_t *m, const char *name);
	/* Registers a handler (copied).  Init only.  A handler on a hook no
	 * loaded module defines is an error once all modules are
	 * initialised. */
	int (*hook_register)(postern_module_t *m,
	                     const struct postern_hook_handler *handler);
	/* 1 if any handler is registered on the hook. */
	int (*hook_has_handlers)(postern_hook_t *hook);
	/* Dispatches.  When every handler answers at once, done(arg, v) is
	 * called before hook_run returns and the result is NULL.  Otherwise
	 * returns the pending call, and done runs later on the loop. */
	postern_hook_call_t *(*hook_run)(postern_hook_t *hook, void *payload,
	                                 postern_hook_done_fn done, void *arg);
	/* Cancels a pending call: done is not called. */
	void (*hook_cancel)(postern_hook_call_t *call);
	/* A pending handler's answer.  Only the first resume counts. */
	void (*hook_resume)(postern_hook_call_t *call,
	                    const struct postern_verdict *v);

#if POSTERN_ABI_TARGET_MINOR >= 1
	/* ---- Service registry (ABI 1.1) ------------------------------ */

	/* Publishes a named table (e.g. "storage", version 1.0) that other
	 * modules look up.  The table must start with its size and outlive
	 * the process.  One publisher per name.  Init only. */
	int (*service_publish)(postern_module_t *m, const char *name,
	                       unsigned major, unsigned minor,
	                       const void *table);
	/* The table published under `name` when its major equals `major`
	 * and its minor is at least `min_minor`; NULL otherwise (logged).
	 * Declare the publisher in `depends` so it initialises first. */
	const void *(*service_lookup)(postern_module_t *m, const char *name,
	                              unsigned major, unsigned min_minor);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 2
	/* ---- SASL and logins (ABI 1.2; postern/sasl.h) --------------- */

	/* The mechanisms offered, space separated ("PLAIN LOGIN"). */
	const char *(*sasl_mechanisms)(void);
	/* Starts an exchange.  `initial` is the initial response (base64,
	 * "=" for an empty one), or NULL when the client sent none.  NULL
	 * if the mechanism is unknown (nothing is called back).  Worker. */
	postern_sasl_t *(*sasl_start)(postern_module_t *m, postern_conn_t *c,
	                              const char *mech, const char *initial,
	                              size_t initial_len, postern_sasl_fn cb,
	                              void *arg);
	/* The client's response to a CONTINUE (base64; "*" cancels). */
	void (*sasl_step)(postern_sasl_t *s, const char *line, size_t len);
	/* Ends the exchange; no callback follows.  NULL is a no-op. */
	void (*sasl_free)(postern_sasl_t *s);
	/* A plaintext login (IMAP LOGIN, POP3 USER/PASS) through the same
	 * checks, callback and failure delay; free it with sasl_free. */
	postern_sasl_t *(*login)(postern_module_t *m, postern_conn_t *c,
	                         const char *user, const char *password,
	                         size_t password_len, postern_sasl_fn cb,
	                         void *arg);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 3
	/* ---- MIME (ABI 1.3; postern/mime.h) -------------------------- */
	/* Pure computation: callable from any thread, job threads included
	 * (unlike the rest of this table).  Everything returned comes from
	 * the pool passed in. */

	/* A streaming parser whose tree and buffers come from `pool`.
	 * `limits` may be NULL (defaults). */
	postern_mime_parser_t *(*mime_parser_create)(
		postern_pool_t *pool, const struct postern_mime_limits *limits);
	/* Feeds the next octets of the message, in any chunking. */
	void (*mime_parser_feed)(postern_mime_parser_t *p, const void *data,
	                         size_t len);
	/* Ends the input and returns the root of the tree (never NULL; an
	 * empty message is a text/plain root of length 0).  The parser may
	 * not be fed afterwards. */
	struct postern_mime_part *(*mime_parser_finish)(
		postern_mime_parser_t *p);

	/* The next field of a header: 1 with *field set (name and value
	 * from `pool`), 0 at the end (or, with a limited pool, when its
	 * budget is spent).  Lines without a colon are skipped. */
	int (*mime_header_next)(struct postern_mime_header_iter *it,
	                        postern_pool_t *pool,
	                        struct postern_mime_field *field);
	/* RFC 2047: the value with its encoded words decoded and converted
	 * to UTF-8 (white space between adjacent words dropped), other text
	 * kept as it is.  NUL-terminated; *out_len (may be NULL) set.
	 * NULL (and *out_len 0) when memory or the pool's budget is
	 * short. */
	char *(*mime_decode_words)(const char *value, size_t len,
	                           postern_pool_t *pool, size_t *out_len);
	/* An RFC 5322 address list (obsolete syntax tolerated) into an
	 * array from `pool`; *n set (0 and NULL for no address). */
	struct postern_mime_address *(*mime_parse_addresses)(
		const char *value, size_t len, postern_pool_t *pool, size_t *n);
	/* An RFC 5322 date-time (obsolete forms tolerated): 0 with *when
	 * (seconds since the epoch, UTC) and *tz_minutes (east of UTC; may
	 * be NULL) set, or -1 when it is not a date. */
	int (*mime_parse_date)(const char *value, size_t len, int64_t *when,
	                       int *tz_minutes);
	/* Converts `len` octets in `charset` to UTF-8 (NUL-terminated, from
	 * `pool`, *out_len set).  Invalid sequences become U+FFFD; an unknown
	 * charset passes the octets through as they are.  NULL when memory
	 * or the pool's budget is short. */
	char *(*mime_to_utf8)(const char *charset, const void *data,
	                      size_t len, postern_pool_t *pool,
	                      size_t *out_len);

	/* A streaming body decoder: undoes `encoding` (base64,
	 * quoted-printable; anything else passes through) then converts
	 * from `charset` to UTF-8 (NULL: no conversion), sending the output
	 * to out(arg, ...) in pieces as it goes.  Free with
	 * mime_decoder_free. */
	postern_mime_decoder_t *(*mime_decoder_create)(
		const char *encoding, const char *charset,
		postern_mime_out_fn out, void *arg);
	void (*mime_decoder_feed)(postern_mime_decoder_t *d, const void *data,
	                          size_t len);
	/* Flushes what is held back (a partial base64 quantum, pending
	 * white space, an incomplete character). */
	void (*mime_decoder_finish)(postern_mime_decoder_t *d);
	void (*mime_decoder_free)(postern_mime_decoder_t *d); /* NULL: no-op */

	/* A part tree as a compact, versioned byte string (from `pool`), to
	 * keep in a cache; NULL when memory or the pool's budget is
	 * short. */
	void *(*mime_serialize)(const struct postern_mime_part *root,
	                        postern_pool_t *pool, size_t *len);
	/* The tree back, or NULL when the data is not a valid serialization
	 * of this version (every length, offset and count is checked: a
	 * corrupt cache entry is "absent", never a crash). */
	struct postern_mime_part *(*mime_deserialize)(const void *data,
	                                              size_t len,
	                                              postern_pool_t *pool);

	/* ---- Optional services (ABI 1.3) ----------------------------- */

	/* As service_lookup, for a service the module can do without (SMTP
	 * without a relay, a gateway without storage): NULL when no module
	 * publishes it, and nothing logged.  A version that does not fit is
	 * still logged as an error. */
	const void *(*service_find)(postern_module_t *m, const char *name,
	                            unsigned major, unsigned min_minor);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 4
	/* ---- Memory budgets (ABI 1.4) -------------------------------- */

	/* A pool (freed with pool_destroy) whose blocks may hold at most
	 * `limit` bytes (0: no limit) for what the host's parsers allocate
	 * from it: the MIME functions above then degrade instead of
	 * growing past it (mime_header_next ends early; mime_decode_words,
	 * mime_to_utf8 and mime_serialize return NULL; mime_parse_addresses
	 * returns the addresses so far; a tree loses parts and fields and
	 * its root carries POSTERN_MIME_DEGRADED).  The module's own
	 * pool_alloc calls always succeed and count toward the limit.
	 * pool_clear resets the "degraded" state.  Meant for the scratch
	 * pool of one message built from client data. */
	postern_pool_t *(*pool_create_limited)(size_t block_size,
	                                       size_t limit);

	/* ---- Session budgets (ABI 1.4) ------------------------------- */

	/* Counts a command that costs the client nothing and is no error
	 * (SMTP NOOP, HELP, RSET, VRFY; POP3 CAPA and IMAP CAPABILITY, NOOP,
	 * ID before the login) against the connection's junk-command budget:
	 * the listener's limits.max_junk (default 100, as Postfix's
	 * smtpd_junk_command_limit).  POSTERN_OK while within it, and the
	 * command is served; POSTERN_TOOLONG when this one is over it (the
	 * host logged it, naming the connection): answer with the
	 * protocol's "too many commands" error and conn_close.  A module
	 * never counts errors here (it has its own error budget). */
	int (*conn_junk_command)(postern_conn_t *c);
	/* Gives the whole budget back: a delivered message (SMTP, as
	 * Postfix), a successful login (POP3, IMAP). */
	void (*conn_junk_reset)(postern_conn_t *c);

	/* ---- Password checks (ABI 1.4) ------------------------------- */

	/* Queues a password check (or any work that costs what one does:
	 * a hash, a bind to a directory) on the worker's auth lane: its own
	 * `auth_threads` threads, apart from job_submit's, so a login flood
	 * never delays storage work, with at most `auth_queue` checks
	 * waiting.  NULL when the lane is full (or outside a worker): then
	 * nothing runs and nothing is called back, and the caller answers
	 * a temporary failure at once (IMAP NO [UNAVAILABLE], POP3 -ERR
	 * [SYS/TEMP], SMTP 454 4.7.0).  Otherwise as job_submit: `work` on
	 * a lane thread, `done` on the loop, job_cancel works on the
	 * handle.  The host's SASL functions already call an auth backend's
	 * `verify` through this lane, after the failure penalty; a module
	 * that checks passwords on its own path uses this.  Worker. */
	postern_job_t *(*auth_job_submit)(postern_job_work_fn work,
	                                  postern_job_done_fn done, void *arg);

	/* ---- Spools (ABI 1.4) ---------------------------------------- */

	/* A message on its way in (SMTP DATA, IMAP APPEND): octets held in
	 * memory until the holder moves them with spool_flush to an
	 * unlinked temporary file (O_TMPFILE) in `dir` (NULL: state_dir),
	 * so how much memory a message costs is the holder's choice.  The
	 * spool is not durable: a crash leaves nothing behind.  A spool is
	 * used by one thread at a time (the loop appends, a job flushes
	 * while its session is paused); any thread may call these.  The
	 * caller owns the spool and frees it with spool_free (NULL: no-op). */
	postern_spool_t *(*spool_create)(const char *dir);
	/* Appends to the memory part (copied).  Never blocks. */
	void (*spool_append)(postern_spool_t *sp, const void *data,
	                     size_t len);
	/* Moves the memory part to the end of the file, creating it on the
	 * first call.  Blocking: job threads.  0, or -1 with errno set (the
	 * memory part is kept). */
	int (*spool_flush)(postern_spool_t *sp);
	/* Octets appended so far (file and memory). */
	uint64_t (*spool_size)(const postern_spool_t *sp);
	/* The memory part: the last octets appended, not yet in the file.
	 * *data (may be NULL) is valid until the next append or flush. */
	size_t (*spool_memory)(const postern_spool_t *sp, const char **data);
	/* The file (octets [0, size - memory)), or -1 before the first
	 * flush.  Owned by the spool: read it with pread, do not close. */
	int (*spool_fd)(const postern_spool_t *sp);
	void (*spool_free)(postern_spool_t *sp);

	/* ---- Outbound connections and client TLS (ABI 1.4) ---------- */

	/* Starts a non-blocking connect to spec->address (postern/conn.h;
	 * the spec is copied).  Returns the connection at once, or NULL
	 * with `err` (errlen bytes) saying why (bad address, no socket).
	 * The connection then behaves as an accepted one with spec->ops:
	 * on_read when the peer's first bytes arrive (a greeting), output
	 * queued before the connect completes goes out after it.  A connect
	 * that fails or does not complete within spec->connect_ms ends in
	 * on_close (reason ERROR or TIMEOUT); conn_error says why.  Worker,
	 * event loop only. */
	postern_conn_t *(*conn_connect)(postern_module_t *m,
	                                const struct postern_connect_spec *spec,
	                                char *err, size_t errlen);
	/* A client TLS context: peers are verified against the PEM CA file
	 * `ca_file` (relative: in the configuration's directory), or the
	 * system's default CAs when NULL; verification is only enforced by
	 * conn_starttls_client with a name.  Errors are reported through
	 * cfg_error against `node` (may be NULL) and give NULL.  Init only;
	 * host-owned. */
	postern_tls_t *(*tls_client_create)(postern_module_t *m,
	                                    postern_cfg_t *node,
	                                    const char *ca_file);
	/* Client STARTTLS on a plaintext outbound connection, once the peer
	 * said go ahead: every input byte buffered so far is discarded
	 * (RFC 3207 section 6), the handshake starts now, and output queued
	 * afterwards goes out inside TLS.  With `verify_name` (not NULL),
	 * the peer's certificate must chain to the context's CAs and match
	 * the name (SNI is sent too), or the handshake fails and the
	 * connection closes (reason ERROR, conn_error says why); with NULL,
	 * any certificate is taken (opportunistic TLS).  POSTERN_OK, or
	 * POSTERN_ERROR (already TLS, not an outbound connection). */
	int (*conn_starttls_client)(postern_conn_t *c, postern_tls_t *tls,
	                            const char *verify_name);
	/* Why the connection failed (connect refused, timed out, TLS
	 * verification), or NULL when it did not.  Host-owned, valid until
	 * on_close returns. */
	const char *(*conn_error)(postern_conn_t *c);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 5
	/* ---- Isolated work (ABI 1.5) --------------------------------- */

	/* Registers `fn` to run in the worker's isolation process: a child
	 * of each worker, holding no sockets, where work whose memory a
	 * client decides runs without growing the worker (a password hash:
	 * argon2id holds its whole memory cost while it runs, so a login
	 * flood would otherwise grow every worker by that much per auth
	 * thread).  The child runs `auth_threads` calls at once.  `fn`
	 * gets the input, writes at most `outcap` octets to `out`, and
	 * returns how many, or -1.  It runs in another process: it sees
	 * the module's memory as it was when the worker started, must not
	 * call the host, and must not keep state between calls.  `name`
	 * is for logs (a static string).  Init only; NULL when called
	 * elsewhere or too many functions are registered (logged). */
	postern_isolated_t *(*isolate_register)(postern_module_t *m,
	                                        const char *name,
	                                        postern_isolated_fn fn);
	/* Runs `f` on in[inlen] (at most POSTERN_ISOLATE_MAX octets) in the
	 * isolation process and waits for it: blocking, for job and auth
	 * lane threads.  Returns the output's length (the octets are in
	 * out[outcap]), or -1 when `fn` failed, the process died or did not
	 * answer within a minute (it is then started again), or the input
	 * is too long: answer a temporary failure.  Outside a worker (init,
	 * posternctl), `fn` runs in the calling thread.  The host wipes its
	 * copies of `in` and `out`; the caller wipes its own. */
	ssize_t (*isolate_call)(postern_isolated_t *f, const void *in,
	                        size_t inlen, void *out, size_t outcap);

	/* ---- Counters shared by all workers (ABI 1.5) ---------------- */

	/* A table of counters summed over every worker, for limits that
	 * must hold however the kernel spreads clients over the workers
	 * (sessions per user and address).  A key (any octets) hashes, with
	 * a random seed, to one of 16384 buckets of one counter per worker;
	 * a worker's counters are zeroed when it starts, so one that died
	 * leaves nothing counted.  Keys sharing a bucket share a limit:
	 * rare, and it can only refuse early.  Init only; host-owned, for
	 * the process's life.  NULL when it cannot be mapped (logged). */
	postern_counts_t *(*counts_create)(postern_module_t *m);
	/* Counts one more under key[len] if the sum over the workers stays
	 * at or below `max`: POSTERN_OK and *ticket, for counts_put.  Over
	 * the limit: POSTERN_ERROR, nothing counted.  Worker, any thread. */
	int (*counts_take)(postern_counts_t *t, const void *key, size_t len,
	                   unsigned max, unsigned *ticket);
	/* Gives back what counts_take counted (ticket 0: nothing).  In the
	 * worker that took it. */
	void (*counts_put)(postern_counts_t *t, unsigned ticket);

	/* ---- Local delivery (ABI 1.5) -------------------------------- */

	/* Puts `msg` in the mailbox `mailbox` (NULL: INBOX; a missing one
	 * is made, as a Junk mailbox, for a quarantine) of every target
	 * that is a local user: `targets` as the auth service's `resolve`
	 * gave them for one recipient.  Targets that are no user are alias
	 * forwards: they come back in res->forwards for the caller to
	 * relay (or refuse).  Pass the same `res` (zeroed, size set) for
	 * every recipient of one message: a login already in
	 * res->delivered is not given the message twice.  Returns
	 * res->code: 0 when every user target has it (durably), else the
	 * worst outcome, 4xx or 5xx with res->text ("4.2.2 mailbox full").
	 * What res points to is in `pool`.  Blocking: job threads. */
	unsigned (*local_deliver)(postern_module_t *m,
	                          const char *const *targets, size_t ntargets,
	                          const struct postern_append *msg,
	                          const char *mailbox, postern_pool_t *pool,
	                          struct postern_local_result *res);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 6
	/* ---- Connections (ABI 1.6) ------------------------------------ */

	/* 1 when the peer has closed its side of the connection (or it
	 * failed), even while the connection is paused and its input is
	 * not read; 0 while it is there.  A module asks before it commits
	 * to something the peer must be told about (SMTP: before a message
	 * whose reply the client waits for is delivered; nobody would read
	 * the 250 and the client will send it again).  Event loop. */
	int (*conn_peer_gone)(postern_conn_t *c);

	/* ---- Rates shared by all workers (ABI 1.6) -------------------- */

	/* A table of event rates over a sliding window of `window_ms`,
	 * summed over every worker, for rate limits that must hold however
	 * the kernel spreads clients over the workers (messages per sender
	 * domain per hour).  A key (any octets) hashes, with a random seed,
	 * to one of 65536 buckets; keys sharing one share a limit (rare,
	 * and it can only refuse early).  The window slides as two fixed
	 * ones, the previous weighted by how much of it is still within
	 * the window: good to a few percent.  Init only; host-owned, for
	 * the process's life.  NULL when it cannot be mapped (logged). */
	postern_rates_t *(*rates_create)(postern_module_t *m,
	                                 unsigned window_ms);
	/* Adds `cost` events under key[len] if the rate with them stays at
	 * or below `max`: POSTERN_OK.  Over: POSTERN_ERROR, nothing added.
	 * *rate (may be NULL) gets the rate before.  Any process, any
	 * thread. */
	int (*rates_hit)(postern_rates_t *t, const void *key, size_t len,
	                 unsigned cost, unsigned max, unsigned *rate);

	/* ---- Addresses (ABI 1.6) -------------------------------------- */

	/* Splits an envelope address (without <>) into its parts, strings
	 * from `pool`: local part as given; user, the local part up to the
	 * first of `delimiters` (a subaddress, RFC 5233: "+"; NULL or "":
	 * none), lower-cased; detail after it (NULL without one); domain
	 * lower-cased ("" for an address without '@').  ASCII only is
	 * lower-cased; a quoted local part has no detail.  Set out->size
	 * first.  0, or -1 (empty, no local part, an empty domain).  Any
	 * thread. */
	int (*address_split)(const char *address, const char *delimiters,
	                     postern_pool_t *pool,
	                     struct postern_address_parts *out);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 7
	/* ---- DNS (ABI 1.7; postern/dns.h says what results hold) ------ */

	/* The records of `type` (enum postern_dns_type) for `name`, on the
	 * worker's resolver; `cb` is called once, on the loop, never from
	 * inside this call.  With POSTERN_DNS_PTR, `name` may be an IPv4
	 * or IPv6 address: its in-addr.arpa or ip6.arpa name is asked.
	 * Returns the query; NULL (and nothing is called back) only when no
	 * resolver can be made (logged once) or outside a worker.  Worker
	 * event loop. */
	postern_dns_query_t *(*dns_lookup)(postern_module_t *m,
	                                   const char *name, unsigned type,
	                                   postern_dns_fn cb, void *arg);
	/* The AAAA and A addresses of `host` (a literal address is answered
	 * without a query), as records whose addr carries `port`.  Any
	 * address found is OK even when the other type failed; else a
	 * temporary failure of either is TEMPFAIL, else NXDOMAIN of either
	 * is NXDOMAIN, else NODATA.  As dns_lookup otherwise. */
	postern_dns_query_t *(*dns_addr)(postern_module_t *m,
	                                 const char *host, unsigned port,
	                                 postern_dns_fn cb, void *arg);
	/* Forgets a lookup: its callback will not be called.  Only before
	 * the callback has run, not from inside it.  NULL is a no-op. */
	void (*dns_cancel)(postern_dns_query_t *q);

	/* ---- Networks (ABI 1.7) --------------------------------------- */

	/* Parses "192.0.2.0/24", "2001:db8::/32" or a single address (a
	 * /32 or /128) into *out; the bits past the prefix are cleared.  0,
	 * or -1 when `text` is none of these.  Any thread. */
	int (*network_parse)(const char *text, struct postern_network *out);
	/* 1 when `address` (text, as a session's peer) lies in `net`, else
	 * 0 (text that is no address included).  An IPv4-mapped IPv6
	 * address (::ffff:192.0.2.1) is taken as its IPv4 address.  Any
	 * thread. */
	int (*network_match)(const struct postern_network *net,
	                     const char *address);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 8
	/* ---- Metrics (ABI 1.8; postern/metrics.h says the rules) ------- */

	/* A counter or gauge for the Prometheus endpoint.  Init only;
	 * host-owned, for the process's life; NULL on error (logged). */
	postern_metric_t *(*metric_register)(postern_module_t *m,
	                                     const char *name,
	                                     const char *help, unsigned kind,
	                                     const char *label,
	                                     const char *const *values);
	/* Adds n under the label's value label_index (0 without a label).
	 * Any thread; never blocks.  NULL metric: nothing. */
	void (*metric_add)(postern_metric_t *mt, unsigned label_index,
	                   uint64_t n);
	/* Sets a gauge's level in this worker.  Any thread; never blocks.
	 * NULL metric: nothing. */
	void (*metric_set)(postern_metric_t *mt, unsigned label_index,
	                   uint64_t v);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 9
	/* ---- Sessions (ABI 1.9; postern/session.h says the model) ----- */

	/* Registers one listener per element of `list` (the module's
	 * `listen` list; NULL: none), each parsed with p->listen_keys, whose
	 * connections become sessions of `p`.  Implicit TLS (tls = true)
	 * without `tls` (the module's context, may be NULL) is a
	 * configuration error naming the element.  `p` must outlive the
	 * process.  0, or -1 after reporting.  Init only. */
	int (*session_listen)(postern_module_t *m,
	                      const struct postern_protocol *p,
	                      postern_cfg_t *list, postern_tls_t *tls);
	/* The protocol's state (session_size octets, zeroed at accept). */
	void *(*session_state)(postern_session_t *s);
	/* The connection, or NULL once it has gone (replies are dropped
	 * then).  Host-owned. */
	postern_conn_t *(*session_conn)(postern_session_t *s);
	/* The parsed listener element (p->listen_size octets, starting with
	 * its struct postern_listen_cfg) the client came in on.
	 * Host-owned, for the process's life. */
	const void *(*session_listener)(postern_session_t *s);
	/* Queues the formatted text and CRLF (any length); nothing once the
	 * session is closing. */
	void (*session_reply)(postern_session_t *s, const char *fmt, ...)
		POSTERN_PRINTF(2, 3);
	/* Queues octets as they are; nothing once the session is closing. */
	void (*session_write)(postern_session_t *s, const void *data,
	                      size_t len);
	/* Ends the session once what is queued is sent; reads nothing
	 * more.  Again, or after the client left: nothing. */
	void (*session_close)(postern_session_t *s);
	/* 1 once session_close was called or the client has gone. */
	int (*session_closing)(postern_session_t *s);
	/* Counts an invalid command (the caller has answered it).
	 * POSTERN_OK within p->max_errors; POSTERN_TOOLONG when this one
	 * spends it: the host logged it, sent p->too_many_errors and
	 * closes.  A line protocol->parse refused is counted already. */
	int (*session_error)(postern_session_t *s);
	/* The same for a failed login (p->max_login_failures,
	 * p->too_many_logins); the caller has answered it. */
	int (*session_login_failed)(postern_session_t *s);
	/* A login succeeded: the junk budget is given back, and commands
	 * flagged POSTERN_CMD_JUNK_UNTIL_LOGIN stop counting. */
	void (*session_login_ok)(postern_session_t *s);
	/* Holds the session: no command is read until as many
	 * session_resume calls (a login, a filter in flight).  Jobs hold it
	 * on their own.  On the last resume a line held back comes first,
	 * then buffered input; if the worker began stopping meanwhile, the
	 * session gets p->goodbye instead. */
	void (*session_pause)(postern_session_t *s);
	void (*session_resume)(postern_session_t *s);
	/* Lines go to fn, raw, instead of through parse and the command
	 * table (SMTP DATA, a SASL response), until called with NULL. */
	void (*session_take_lines)(postern_session_t *s,
	                           postern_session_line_fn fn);
	/* The next `n` octets of input go to fn, piece by piece, then
	 * lines again (an IMAP literal, an SMTP BDAT chunk).  n > 0. */
	void (*session_read_octets)(postern_session_t *s, uint64_t n,
	                            postern_session_octets_fn fn);
	/* Reads ahead the next buffered line as the parser would get it
	 * (POSTERN_LINE_TOOLONG included): POSTERN_OK, or POSTERN_AGAIN
	 * when none is complete (or the session is closing).  To gather
	 * pipelined commands into one job. */
	int (*session_read_line)(postern_session_t *s, struct postern_line *l);
	/* Gives back one line read ahead (copied): it is handled first
	 * when the session next reads commands.  One at a time. */
	void (*session_hold_line)(postern_session_t *s,
	                          const struct postern_line *l);
	/* Runs work(s, st, arg) on a pool thread, then done(s, st, arg,
	 * status) on the loop, exactly once, never from inside this call.
	 * The session is held (no command read) and kept (not freed) from
	 * here until done has returned; then reading goes on unless done
	 * started another job, paused or closed.  `arg` is the caller's. */
	void (*session_job)(postern_session_t *s, postern_session_work_fn work,
	                    postern_session_done_fn done, void *arg);
	/* open = 1: the protocol holds handles only blocking calls close;
	 * protocol->release then runs on a job once the connection has
	 * gone and no job runs.  open = 0: it closed them itself. */
	void (*session_handles)(postern_session_t *s, int open);
	/* Keeps the session past its connection until session_unref (a
	 * lookup or a filter call holding it); the last unref may free it
	 * (protocol->free). */
	void (*session_ref)(postern_session_t *s);
	void (*session_unref)(postern_session_t *s);

	/* ---- Ids and log prefixes (ABI 1.9) --------------------------- */

	/* Writes a new id into buf (at least POSTERN_ID_SIZE octets):
	 * POSTERN_ID_LEN uppercase hex digits and a NUL.  Ids sort by the
	 * time they were made (to 1/16 s) and no two are alike among the
	 * processes and restarts of one machine.  SMTP names each
	 * transaction with one and the relay queues it under the same, so
	 * one grep finds every line about a message.  Any thread. */
	void (*unique_id)(char *buf, size_t len);
	/* Copies the prefix conn_log writes ("conn=12 peer=192.0.2.7:4711")
	 * into buf (truncated to len).  A session keeps it for the lines its
	 * job threads log (vlog_prefixed, ABI 1.10), whose connection may
	 * be gone by then.  Event loop. */
	void (*conn_log_prefix)(postern_conn_t *c, char *buf, size_t len);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 10
	/* ---- MIME body encoding (ABI 1.10; postern/mime.h) ----------- */

	/* A streaming body encoder: gives `encoding` ("base64", the only
	 * one so far; NULL for any other, or out of memory) to the octets
	 * fed, sending the text to out(arg, ...) in pieces as it goes:
	 * lines of 76 characters separated by CRLF, the last one without
	 * it (the caller adds the CRLF the end of the body needs, or lets
	 * a boundary's follow).  Pure computation: any thread, one at a
	 * time per encoder.  Free with mime_encoder_free. */
	postern_mime_encoder_t *(*mime_encoder_create)(const char *encoding,
		postern_mime_out_fn out, void *arg);
	void (*mime_encoder_feed)(postern_mime_encoder_t *e,
	                          const void *data, size_t len);
	/* Sends the last line; 1 when any text was sent (the body was not
	 * empty), else 0. */
	int (*mime_encoder_finish)(postern_mime_encoder_t *e);
	void (*mime_encoder_free)(postern_mime_encoder_t *e); /* NULL: no-op */

	/* ---- Logging with a kept prefix (ABI 1.10) --------------------- */

	/* Logs a line starting "prefix: " (a session's conn_log_prefix with
	 * its protocol, a transaction's id), formatted once, from any
	 * thread, however long the connection has been gone. */
	void (*vlog_prefixed)(const char *prefix, int level, const char *fmt,
	                      va_list ap);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 11
	/* ---- Sessions: errors in a row (ABI 1.11) ---------------------- */

	/* A command succeeded: the invalid commands session_error counted
	 * so far are forgiven, for a protocol whose max_errors counts them
	 * in a row (IMAP's max_bad_commands).  Event loop. */
	void (*session_error_reset)(postern_session_t *s);
#endif

#if POSTERN_ABI_TARGET_MINOR >= 12
	/* ---- Streams (ABI 1.12; postern/stream.h says the model) ------- */

	/* Streams `src` through `spec`'s transform to `c`, with
	 * back-pressure, and calls done(arg, status) once at the end (never
	 * from inside this call).  One stream per connection at a time;
	 * while it runs, the connection's drains go to the stream (the
	 * module's on_drain is not called) and the module writes nothing
	 * to the connection.  POSTERN_OK (done will follow),
	 * POSTERN_CLOSED (the connection is closing: no done), or
	 * POSTERN_ERROR (a bad spec, a stream already running, no
	 * descriptor left; logged; no done).  Event loop. */
	int (*stream_start)(postern_conn_t *c,
	                    const struct postern_stream_source *src,
	                    const struct postern_stream_spec *spec,
	                    postern_stream_done_fn done, void *arg);
#endif
};

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_HOST_H */
