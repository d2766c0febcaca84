/*
 * relay_queue.h - the relay's on-disk queue: one file per message and
 * one append-only state log beside it.
 *
 * Layout under the queue directory (`<state_dir>/relay` by default):
 *   tmp/ID       a message being written (never read)
 *   q/ID         a queued message: envelope text, then the message
 *   q/ID.log     its state log, one checksummed line per event
 *   flush        touched by `posternctl queue flush`
 *
 * A message is queued exactly when q/ID exists: enqueue writes tmp/ID
 * and fsyncs it, creates q/ID.log, links tmp/ID to q/ID and fsyncs q/
 * before it returns.  q/ID is removed first when every recipient is
 * done; a log without its message is debris, removed by the scan.
 *
 * q/ID (text up to the "message" line, then the message octets):
 *   postern-queue 1
 *   arrival 1733300000
 *   sender alice@example.org          (values xtext-encoded, see below)
 *   size 1234 | body 8BITMIME | smtputf8 | ret FULL | envid X
 *   auth alice@example.org | client 192.0.2.7 | helo client.example
 *   rcpt NOTIFY-BITS ORCPT|- ADDRESS  (one per recipient, in order)
 *   message LENGTH                    (last line; LENGTH octets follow
 *                                      and end the file)
 * Values have every octet below 0x21, 0x7f, '+' and (alone) '-' written
 * as "+HH" (RFC 3461 xtext), so no value holds a space or a line end;
 * octets above 0x7f (SMTPUTF8 addresses) are kept.  A file that does
 * not parse, or whose size is not the "message" line's offset plus
 * LENGTH, is corrupt: it is reported and left alone, never delivered.
 *
 * q/ID.log: lines "KIND RCPT TIME FAILURES NEXT DSN TEXT HASH":
 *   KIND      sent | failed | defer (per recipient, RCPT its index) or
 *             hold | release (the message, RCPT "-")
 *   TIME      when (seconds since the epoch); NEXT the next attempt
 *   FAILURES  failed attempts so far; DSN the enhanced status code
 *   TEXT      the remote's reply or our reason (never empty: "-")
 *   HASH      8 hex digits, FNV-1a of everything before " HASH"
 * A last line without its LF (a crash while appending) and a line whose
 * hash does not match are ignored: the recipient keeps its earlier
 * state, so at worst an attempt is repeated (RFC 5321 section 6.1's
 * duplicate window), never lost.
 *
 * Threads.  Everything here is blocking file I/O without host calls:
 * job threads, or posternctl.  rq_write is thread-safe.
 */
#ifndef RELAY_QUEUE_H
#define RELAY_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include <postern/relay.h>

#define RQ_ID_MAX 32
#define RQ_TEXT_MAX 512

enum rq_state {
	RQ_PENDING = 0,
	RQ_SENT,
	RQ_FAILED,
};

struct rq_rcpt {
	char *address;
	char *orcpt;        /* NULL when not given */
	unsigned notify;    /* POSTERN_DSN_NOTIFY_* */
	/* from the log */
	enum rq_state state;
	unsigned failures;
	int64_t last_try, next_try;
	char dsn[16];       /* "4.4.1", "" before any attempt */
	char *text;         /* last reply or reason, NULL before any */
	int warned;         /* a delay warning went to the sender */
};

struct rq_msg {
	char id[RQ_ID_MAX];
	int fd;             /* q/ID, open (and locked by rq_load); -1 */
	int64_t arrival;
	char *sender;       /* "" for <> */
	uint64_t size_param;
	enum postern_body_type body;
	int smtputf8;
	enum postern_dsn_ret ret;
	char *envid, *auth_user, *client_addr, *client_helo;
	struct rq_rcpt *rcpts;
	size_t nrcpts;
	uint64_t msg_offset, msg_len; /* the message inside q/ID */
	int held;
	size_t bad_lines;   /* log lines ignored (hash, syntax) */
};

/* Creates dir, dir/q and dir/tmp (mode 0700) as needed.  0, or -1 with
 * err set. */
int rq_init(const char *dir, char *err, size_t errlen);

/* Queues a message (see above) under `id` (rq_id_valid).  0, or -1 with
 * errno set and err (for the log, with paths) filled in; errno EEXIST
 * when the id is taken: choose another. */
int rq_write(const char *dir, const struct postern_relay_envelope *env,
             const struct postern_relay_message *msg, const char *id,
             char *err, size_t errlen);

/* Parses the envelope text at the start of a q/ID file of `file_size`
 * octets (`len` octets of it are in `text`; the whole header must be).
 * 0 with *m filled in (free with rq_free_fields), or -1 with err. */
int rq_parse(const char *text, size_t len, uint64_t file_size,
             struct rq_msg *m, char *err, size_t errlen);

/* Applies a state log's text to m's recipients. */
void rq_apply_log(struct rq_msg *m, const char *text, size_t len);

/* Formats one log line (with its hash and LF) into buf; returns its
 * length, or 0 if it does not fit.  rcpt < 0 writes "-". */
size_t rq_log_line(char *buf, size_t size, const char *kind, long rcpt,
                   int64_t when, unsigned failures, int64_t next,
                   const char *dsn, const char *text);

enum rq_load_result {
	RQ_LOAD_OK = 0,
	RQ_LOAD_BUSY,    /* another process holds it */
	RQ_LOAD_GONE,    /* no such message (done, deleted) */
	RQ_LOAD_CORRUPT, /* err says what */
	RQ_LOAD_ERROR,   /* I/O: err says what */
};

/* Opens q/ID, takes its lock (flock, non-blocking) when `lock`, reads
 * envelope and log.  On RQ_LOAD_OK *out is the message (rq_free). */
enum rq_load_result rq_load(const char *dir, const char *id, int lock,
                            struct rq_msg **out, char *err,
                            size_t errlen);

/* Appends `len` octets of log lines to q/ID.log and fdatasyncs them.
 * 0, or -1 with errno set. */
int rq_append(const char *dir, const char *id, const char *lines,
              size_t len);

/* Removes q/ID, then q/ID.log.  0, or -1 with errno. */
int rq_remove(const char *dir, const char *id);

/* 1 when every recipient is sent or failed. */
int rq_done(const struct rq_msg *m);

/* Closes the message's fd (releasing its lock) and frees it. */
void rq_free(struct rq_msg *m);
void rq_free_fields(struct rq_msg *m);

/* 1 if `name` is a queue id (what rq_write makes). */
int rq_id_valid(const char *name);

#endif /* RELAY_QUEUE_H */
