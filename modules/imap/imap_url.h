/*
 * imap_url.h - IMAP URLs (RFC 5092) of a message or part on this server
 * (imap_url.c), and CATENATE (RFC 4469) putting a message together from
 * text and such URLs (imap_catenate.c).
 */
#ifndef IMAP_URL_H
#define IMAP_URL_H

#include "imap.h"
#include "imap_mime.h"

#define IMAP_URL_MAX_PARTS 32

/* Who may use a URLAUTH-authorized URL (RFC 4467 3, its "access"). */
enum imap_url_access {
	IMAP_URL_ACCESS_NONE = 0,    /* not a URLAUTH URL */
	IMAP_URL_ACCESS_ANONYMOUS,   /* anyone */
	IMAP_URL_ACCESS_AUTHUSER,    /* any logged-in user */
	IMAP_URL_ACCESS_USER,        /* "user+name": that user */
	IMAP_URL_ACCESS_SUBMIT,      /* "submit+name": a submission server
	                                acting for that user (BURL) */
};

struct imap_url {
	char *mailbox;           /* UTF-8, from the pool; NULL: the
	                            selected mailbox (";UID=n") */
	uint32_t uidvalidity;    /* 0: not given */
	uint32_t uid;
	int has_section;
	uint32_t parts[IMAP_URL_MAX_PARTS];
	size_t nparts;
	enum imap_section_what what;
	struct imap_fields fields; /* HEADER.FIELDS (.NOT): what = HEADER,
	                              names from the pool */
	int partial;
	uint32_t pstart, plen;
	const char *error;       /* after -1: what is wrong (static) */
	/* imap_url_parse_auth only (RFC 4467, RFC 5092 authimapurl): */
	char *owner;             /* the URL's user, decoded (pool) */
	int64_t expire;          /* ";EXPIRE=": seconds since the epoch;
	                            0: none */
	enum imap_url_access access;
	char *access_user;       /* USER, SUBMIT: the name, decoded */
	size_t rump_len;         /* url[0..rump_len): the rump URL, what
	                            the token is computed over */
	char *mech;              /* ":mech:token", or NULL: a rump URL */
	char *token;             /* hex digits, as sent (pool) */
};

/* Parses url[0..len) for the session's `user` (an absolute URL must name
 * that user, if any, and this host); `selected`: a mailbox is selected,
 * so ";UID=n" may name a message of it.  Strings from `pool`.  0, or -1
 * with u->error set. */
int imap_url_parse(struct imap_url *u, const char *url, size_t len,
                   const char *user, int selected, postern_pool_t *pool);

/* Parses a URLAUTH URL (RFC 5092 authimapurl, with or without its
 * ":mechanism:token"): absolute, naming its user (any user: the caller
 * checks who may use it) and this host, a message or part, then
 * [";EXPIRE=" date-time] ";URLAUTH=" access.  Strings from `pool`.  0,
 * or -1 with u->error set. */
int imap_url_parse_auth(struct imap_url *u, const char *url, size_t len,
                        postern_pool_t *pool);

/* An RFC 3339 date-time ("2026-12-06T00:30:00Z", "...+02:00", with or
 * without fractional seconds) as seconds since the epoch, into *out;
 * 0, or -1 when it is not one. */
int imap_url_datetime(const char *s, size_t len, int64_t *out);

/* One part of a CATENATE: TEXT (its octets in the reader's buffer at
 * `data`, or with data NULL at `offset` in the command's spool file) or
 * a URL (its text in the command's pool). */
struct imap_cat_part {
	int is_url;
	const char *data;
	uint64_t offset, len;
	const char *url;
	size_t url_len;
};

/* Why imap_catenate failed, beyond err: the index of the part whose URL
 * names nothing this user may read (BADURL), or TOOBIG. */
struct imap_cat_fail {
	long badurl;             /* -1: none */
	int toobig;
};

/* Writes the message parts[0..n) make into a new spool (*out, the
 * caller frees it), reading TEXT from `spool_fd` when spooled and URLs
 * through the session's store (another mailbox is opened read-only for
 * the call; ";UID=n" reads the selected one).  The message holds at
 * most max_literal_size octets.  0, or -1 with err and *fail set.
 * Blocking: on the APPEND's job, the session's one job. */
int imap_catenate(struct imap_session *s, const struct imap_cat_part *parts,
                  size_t n, int spool_fd, postern_spool_t **out,
                  struct imap_cat_fail *fail,
                  struct postern_storage_err *err);

/* The MIME structure of the message a URL named last (imap_catenate.c):
 * the next URL of the same message does not load it again. */
struct imap_url_mime {
	postern_pool_t *pool;    /* limited to message_memory; NULL */
	const struct imap_mime *mime;
	postern_mailbox_t *mb;
	uint32_t uid;
};

/* What a URL names in its message, as imap_url_read reads it: a range
 * of the message, or the HEADER.FIELDS (.NOT) result of a header range
 * (not a range of the message: walked as FETCH walks it). */
struct imap_url_span {
	uint64_t len;            /* octets of what the URL names */
	uint64_t start;          /* where they begin: in the message, or
	                            with fields in the filtered result */
	uint64_t hstart, hlen;   /* fields: the header range */
	struct imap_fields fields; /* which 0: a plain range; names are
	                              the URL's (its pool) */
	struct imap_fields_walk walk; /* fields: where reading is */
};

/* What the URL names in message `msg` (open, of `sz`) of view `mb`,
 * into *sp: the octets FETCH BODY[section]<partial> would send.  0, or
 * -1 with err set (NONEXISTENT: no such section).  Blocking: job
 * threads. */
int imap_url_range(struct imap_url_mime *m, postern_mailbox_t *mb,
                   postern_msg_t *msg, const struct imap_url *u,
                   const struct postern_msg_size *sz,
                   struct imap_url_span *sp,
                   struct postern_storage_err *err);
/* Up to n octets of what *sp names, from offset `off` of it (reads in
 * increasing order are cheapest: a HEADER.FIELDS walk goes on where it
 * stopped) into buf.  The count read (0 at the end), or -1 with err
 * set.  Blocking: job threads. */
ssize_t imap_url_read(struct imap_url_span *sp, postern_msg_t *msg,
                      uint64_t off, char *buf, size_t n,
                      struct postern_storage_err *err);
void imap_url_mime_free(struct imap_url_mime *m);

/* ---- URLAUTH's INTERNAL mechanism (imap_urlauth_token.c) ---------------*/

#define IMAP_URLAUTH_MECH "INTERNAL"
/* A token: HMAC-SHA1 (RFC 2104) in lower-case hex. */
#define IMAP_URLAUTH_TOKEN_HEX 40

/* The token of the rump URL rump[0..len) under `key` into
 * out[IMAP_URLAUTH_TOKEN_HEX + 1] (NUL-terminated); 0, or -1. */
int imap_urlauth_token(const unsigned char *key, size_t keylen,
                       const char *rump, size_t len, char *out);
/* 1 when token[0..tlen) (hex, either case) is the token of rump under
 * `key`, compared in constant time; 0 otherwise. */
int imap_urlauth_verify(const unsigned char *key, size_t keylen,
                        const char *rump, size_t len, const char *token,
                        size_t tlen);

/* A key no store holds, random per process, POSTERN_ACCESS_KEY_LEN
 * octets: verifying against it costs what verifying against a real key
 * costs, so a URL whose owner or key does not exist is not answered
 * sooner (the answer is then ignored: such a URL is NIL). */
const unsigned char *imap_urlauth_dummy_key(void);

#endif /* IMAP_URL_H */
