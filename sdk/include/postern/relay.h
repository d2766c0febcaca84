/*
 * postern/relay.h - the relay queue service: mail for other domains.
 *
 * A relay module (the outbound queue: SMTP/LMTP client, retries, bounces)
 * publishes a `struct postern_relay` table as the service
 * POSTERN_RELAY_SERVICE, version POSTERN_RELAY_MAJOR.MINOR.  The SMTP
 * module hands it every recipient that is not delivered locally; when no
 * module publishes it, SMTP refuses such recipients at RCPT (550 5.7.1).
 *
 * `enqueue` is blocking: call it only from a job thread
 * (host->job_submit), never from the event loop.  It returns only once
 * the message is durably queued (fsynced): SMTP answers "250" after DATA
 * on the strength of it.  A relay must be thread-safe: several sessions
 * enqueue at once, from different pool threads.
 *
 * Memory: everything the caller passes is the caller's, valid only during
 * the call; the relay copies what it keeps.
 */
#ifndef POSTERN_RELAY_H
#define POSTERN_RELAY_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POSTERN_RELAY_SERVICE "relay"
#define POSTERN_RELAY_MAJOR 1
#define POSTERN_RELAY_MINOR 1 /* 1.1: postern_relay_envelope.id */

/* DSN NOTIFY (RFC 3461 section 4.1), as bits; 0 means "not given" (the
 * relay then applies the default: FAILURE, and DELAY at its discretion).
 * NEVER is exclusive of the others. */
#define POSTERN_DSN_NOTIFY_NEVER 0x1u
#define POSTERN_DSN_NOTIFY_SUCCESS 0x2u
#define POSTERN_DSN_NOTIFY_FAILURE 0x4u
#define POSTERN_DSN_NOTIFY_DELAY 0x8u

/* MAIL FROM BODY= (RFC 6152, RFC 3030). */
enum postern_body_type {
	POSTERN_BODY_UNSPECIFIED = 0, /* no BODY parameter: 7BIT by RFC */
	POSTERN_BODY_7BIT,
	POSTERN_BODY_8BITMIME,
	POSTERN_BODY_BINARYMIME,
};

/* MAIL FROM RET= (RFC 3461 section 4.3). */
enum postern_dsn_ret {
	POSTERN_DSN_RET_UNSPECIFIED = 0,
	POSTERN_DSN_RET_FULL,
	POSTERN_DSN_RET_HDRS,
};

/* One recipient of the envelope. */
struct postern_relay_rcpt {
	size_t size;         /* sizeof(struct postern_relay_rcpt) */
	/* The forward-path without angle brackets, as the client gave it
	 * (quoted local parts keep their quotes); UTF-8 when the
	 * transaction is SMTPUTF8.  Never NULL. */
	const char *address;
	unsigned notify;     /* POSTERN_DSN_NOTIFY_* bits, 0: not given */
	/* ORCPT (RFC 3461 section 4.2) with its xtext decoded:
	 * "rfc822;bob@example.org", or NULL when not given. */
	const char *orcpt;
};

/* The envelope of one message. */
struct postern_relay_envelope {
	size_t size;          /* sizeof(struct postern_relay_envelope) */
	/* The reverse-path without angle brackets; "" for the null
	 * reverse-path <> (bounces).  Never NULL. */
	const char *sender;
	uint64_t size_param;  /* MAIL FROM SIZE= (RFC 1870), 0: not given */
	enum postern_body_type body;
	int smtputf8;         /* MAIL FROM SMTPUTF8 (RFC 6531) */
	enum postern_dsn_ret ret;
	const char *envid;    /* ENVID, xtext decoded, or NULL */
	const struct postern_relay_rcpt *rcpts; /* nrcpts entries */
	size_t nrcpts;
	/* The SASL identity the client authenticated as, or NULL. */
	const char *auth_user;
	/* The client's address as text ("192.0.2.7") and its EHLO/HELO
	 * argument; either may be NULL for a message made locally. */
	const char *client_addr;
	const char *client_helo;
	/* 1.1: the transaction's id (host->unique_id), or NULL.  The relay
	 * queues the message under it when it is free, so the lines about
	 * the message share one id from SMTP's to the last delivery's.
	 * Check with POSTERN_SIZED_HAS(env, id). */
	const char *id;
};

/* The message: `head` (in memory: trace headers, possibly a rewritten
 * header section), then `length` octets of content, read with pread from
 * `fd` at `offset` (the relay does not close fd), or, with fd < 0, taken
 * from `data`.  The whole is RFC 5322 text with CRLF line endings, not
 * dot-stuffed. */
struct postern_relay_message {
	size_t size;          /* sizeof(struct postern_relay_message) */
	const void *head;     /* may be NULL when head_len is 0 */
	size_t head_len;
	int fd;
	uint64_t offset;
	const void *data;
	uint64_t length;
};

/* What enqueue returns. */
enum postern_relay_status {
	POSTERN_RELAY_OK = 0,        /* durably queued; queue_id is set */
	POSTERN_RELAY_TEMPFAIL = -1, /* try again later (disk full, I/O) */
	POSTERN_RELAY_REJECT = -2,   /* will never take it (policy) */
};

struct postern_relay {
	size_t size;          /* sizeof(struct postern_relay) */
	const char *name;     /* the relay's name, for logs */

	/*
	 * Queues the message for every recipient of `env`.  Blocking (job
	 * thread).  On POSTERN_RELAY_OK the message is on disk and fsynced,
	 * and `queue_id` (queue_id_len bytes, at least 64 are passed) holds
	 * a NUL-terminated id for logs and the client's reply.  Otherwise
	 * `err` (errlen bytes, may be 0) holds a reason fit for a client,
	 * without internal paths.
	 */
	int (*enqueue)(const struct postern_relay_envelope *env,
	               const struct postern_relay_message *msg,
	               char *queue_id, size_t queue_id_len, char *err,
	               size_t errlen);
};

/*
 * The queue's administration (posternctl queue ...): a relay publishes a
 * `struct postern_relay_admin` as POSTERN_RELAY_ADMIN_SERVICE.  Every
 * function blocks on the queue's files: call it from a command-line tool
 * or a job thread, never from an event loop.  `err` (errlen bytes) gets
 * the reason of a -1.
 */
#define POSTERN_RELAY_ADMIN_SERVICE "relay_admin"
#define POSTERN_RELAY_ADMIN_MAJOR 1
#define POSTERN_RELAY_ADMIN_MINOR 0

/* One queued message, as `list` reports it (valid during the call). */
struct postern_relay_queued {
	size_t size;          /* sizeof(struct postern_relay_queued) */
	const char *id;
	int64_t arrival;      /* seconds since the epoch */
	const char *sender;   /* "" for <> */
	uint64_t length;      /* message octets */
	size_t nrcpts, pending, sent, failed;
	unsigned failures;    /* most failed attempts of a recipient */
	int64_t next_try;     /* earliest pending recipient's (0: now) */
	int held;
	/* The file cannot be read or parsed: `error` says why, the other
	 * fields but id are zero.  Damaged messages are never delivered. */
	const char *error;
};

struct postern_relay_admin {
	size_t size;          /* sizeof(struct postern_relay_admin) */
	/* Calls fn for every queued message, oldest first. */
	int (*list)(void (*fn)(const struct postern_relay_queued *q,
	                       void *arg),
	            void *arg, char *err, size_t errlen);
	/* Writes the envelope and each recipient's state, as text, to fn
	 * (one line per call, without its LF). */
	int (*show)(const char *id, void (*fn)(const char *line, void *arg),
	            void *arg, char *err, size_t errlen);
	/* Keeps the message from delivery until release. */
	int (*hold)(const char *id, char *err, size_t errlen);
	/* Ends a hold; the message is tried at once. */
	int (*release)(const char *id, char *err, size_t errlen);
	/* Removes the message without a report; -1 while a worker is
	 * delivering it (try again). */
	int (*remove)(const char *id, char *err, size_t errlen);
	/* Asks every worker to try every deferred message now. */
	int (*flush)(char *err, size_t errlen);
};

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_RELAY_H */
