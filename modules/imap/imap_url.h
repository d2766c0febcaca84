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

struct imap_url {
	char *mailbox;           /* UTF-8, from the pool; NULL: the
	                            selected mailbox (";UID=n") */
	uint32_t uidvalidity;    /* 0: not given */
	uint32_t uid;
	int has_section;
	uint32_t parts[IMAP_URL_MAX_PARTS];
	size_t nparts;
	enum imap_section_what what;
	int partial;
	uint32_t pstart, plen;
	const char *error;       /* after -1: what is wrong (static) */
};

/* Parses url[0..len) for the session's `user` (an absolute URL must name
 * that user, if any, and this host); `selected`: a mailbox is selected,
 * so ";UID=n" may name a message of it.  Strings from `pool`.  0, or -1
 * with u->error set. */
int imap_url_parse(struct imap_url *u, const char *url, size_t len,
                   const char *user, int selected, postern_pool_t *pool);

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

#endif /* IMAP_URL_H */
