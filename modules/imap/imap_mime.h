/*
 * imap_mime.h - what the IMAP module needs of a message's MIME structure:
 * ENVELOPE, BODYSTRUCTURE, body sections by part number, and the decoded
 * text SEARCH looks in.  Built on the host's MIME parser (postern/mime.h),
 * with the parsed structure kept in the storage's per-message cache so a
 * FETCH does not parse the message again.
 *
 * Threads: imap_mime_load and imap_mime_search_text read the message and
 * are blocking (job threads only, with the session's one job on the
 * mailbox); the rest are memory-only and may run anywhere.  Everything
 * returned comes from the caller's pool.
 */
#ifndef IMAP_MIME_H
#define IMAP_MIME_H

#include <postern/postern.h>

/* A message's parsed structure.  Opaque outside imap_mime.c. */
struct imap_mime;

/* Sets the host table the functions below use (call once in init). */
void imap_mime_init(const struct postern_host *host,
                    postern_module_t *self);

/* The structure of message `uid` of the view: from the storage cache, or
 * by reading and parsing the message (then cached).  NULL with *err set
 * when the message cannot be read.  Blocking.
 *
 * `ref` lets a caller that reads the message again (SEARCH: the
 * header, the structure, then the text) open it once: NULL, and the
 * message is opened and closed here; otherwise ref->msg is used when
 * set, and when it is NULL a message opened here is left in it, with
 * its sizes, for the caller to close (msg_close).  The same holds for
 * imap_mime_search_texts. */
struct imap_msg_ref {
	postern_msg_t *msg;
	struct postern_msg_size sizes;
};
const struct imap_mime *imap_mime_load(const struct postern_storage *st,
                                       postern_mailbox_t *mb, uint32_t uid,
                                       struct imap_msg_ref *ref,
                                       postern_pool_t *pool,
                                       struct postern_storage_err *err);

/* The structure from the storage cache only: NULL when it is not
 * there (nothing is read or parsed).  Blocking (one cache read). */
const struct imap_mime *imap_mime_load_cached(const struct postern_storage *st,
                                              postern_mailbox_t *mb,
                                              uint32_t uid,
                                              postern_pool_t *pool);

/* FETCH ENVELOPE: the parenthesized list of RFC 3501 section 7.4.2
 * (date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to,
 * message-id), NUL-terminated. */
char *imap_mime_envelope(const struct imap_mime *m, postern_pool_t *pool);

/* FETCH BODYSTRUCTURE (extended = 1) or BODY (extended = 0),
 * NUL-terminated. */
char *imap_mime_bodystructure(const struct imap_mime *m, int extended,
                              postern_pool_t *pool);

/* What of a part a body section names (RFC 3501 6.4.5). */
enum imap_section_what {
	IMAP_SECTION_ALL = 0, /* BODY[1.2]: the part's content */
	IMAP_SECTION_HEADER,  /* BODY[HEADER], BODY[1.2.HEADER] */
	IMAP_SECTION_TEXT,    /* BODY[TEXT], BODY[1.2.TEXT] */
	IMAP_SECTION_MIME,    /* BODY[1.2.MIME]: the part's MIME header */
};

/* The octets of a body section within the message (CRLF form):
 * `parts` are the part numbers (nparts 0: the message itself);
 * HEADER and TEXT of a message/rfc822 part are those of the message it
 * holds.  Returns 0 with *start and *len set, or -1 when there is no
 * such part (FETCH then returns an empty string). */
int imap_mime_section(const struct imap_mime *m, const uint32_t *parts,
                      size_t nparts, enum imap_section_what what,
                      uint64_t *start, uint64_t *len);

/* HEADER.FIELDS (names) and HEADER.FIELDS.NOT (names) of a header
 * range (RFC 3501 6.4.5), as FETCH and IMAP URLs (CATENATE, URLFETCH)
 * send them: the fields kept, each with its continuation lines, then an
 * empty line.  A field's name ends at its first colon, trailing blanks
 * dropped; names are compared without regard to case. */
#define IMAP_FIELDS_MAX 128       /* names in one list */
#define IMAP_FIELDS_MAX_NAME 256  /* a longer field name is nobody's */
struct imap_fields {
	int which;               /* 0: none, 1: HEADER.FIELDS,
	                            2: HEADER.FIELDS.NOT */
	char *const *names;      /* the caller's */
	size_t nnames;
};

/* The header range [start, end) of an open message, read through a
 * small buffer (16 KiB: put it where there is room, a job thread's
 * stack or the heap).  Set st, msg, err and end; at = len = 0. */
struct imap_hbuf {
	const struct postern_storage *st;
	postern_msg_t *msg;
	struct postern_storage_err *err;
	uint64_t end;            /* end of the header range */
	uint64_t at;             /* buf holds [at, at + len) */
	size_t len;
	char buf[16384];
};

/* Where a walk is: resumable, so a result can be sent in steps without
 * being held.  Start with { .pos = start of the header range }. */
struct imap_fields_walk {
	uint64_t pos;            /* next octet of the message */
	uint64_t out;            /* octets of the result before pos */
	int keep;                /* the current field is kept */
	int in_line;             /* pos is inside a line already decided */
	int ending;              /* the final CRLF: 1 before its CR, 2 before
	                            its LF, 3 done */
};

/* Walks on until the result reaches `to` or ends; the octets of the
 * result at offsets in [from, to) are written to dst in order and
 * counted in *ndst (dst NULL: only counting; then ndst may be NULL).
 * dst needs room for to - max(from, w->out) octets.  0, or -1 on a
 * read error (h->err set).  Blocking. */
int imap_fields_walk(struct imap_hbuf *h, const struct imap_fields *f,
                     struct imap_fields_walk *w, char *dst, size_t *ndst,
                     uint64_t from, uint64_t to);

/* BINARY (RFC 3516): the content of the part `parts` (nparts 0: the
 * whole message) as imap_mime_section(IMAP_SECTION_ALL) gives it, and
 * its Content-Transfer-Encoding (lower case; "7bit" for the whole
 * message, a multipart or a message/rfc822 part, and when absent).
 * -1 when there is no such part. */
int imap_mime_part_content(const struct imap_mime *m, const uint32_t *parts,
                           size_t nparts, const char **encoding,
                           uint64_t *start, uint64_t *len);

/* The header fields ENVELOPE reports, raw (unfolded, RFC 2047 words
 * not decoded); NULL when the structure has none.  SORT's keys. */
const struct postern_mime_envelope *
imap_mime_fields(const struct imap_mime *m);

/* The Date header as seconds since the epoch (UTC), its zone in
 * *tz_minutes (east of UTC) when that is not NULL, or -1 when missing
 * or unparseable. */
int64_t imap_mime_date(const struct imap_mime *m, int *tz_minutes);

/* SEARCH HEADER, FROM, TO, CC, BCC, SUBJECT: 1 if the value of header
 * field `field` (case-insensitive name) in the header hdr[0..len)
 * contains `needle` after RFC 2047 decoding to UTF-8, compared without
 * regard to case.  An empty needle matches any message that has the
 * field.  Memory-only. */
int imap_mime_header_matches(const char *hdr, size_t len, const char *field,
                             const char *needle, postern_pool_t *pool);

/* SEARCH BODY (with_header 0) and TEXT (with_header 1): 1 if the
 * decoded text (quoted-printable and base64 undone, charsets converted
 * to UTF-8; headers RFC 2047 decoded) contains `needle`, compared without
 * regard to case; 0 if not; -1 with *err set when the message cannot be
 * read.  Blocking. */
int imap_mime_search_text(const struct postern_storage *st,
                          postern_mailbox_t *mb, uint32_t uid,
                          const struct imap_mime *m, const char *needle,
                          int with_header, postern_pool_t *pool,
                          struct postern_storage_err *err);

/* Several BODY / TEXT needles over one decoding of the message: each
 * needle's `found` is set to 1 or 0 as imap_mime_search_text would
 * answer it.  Returns 0, or -1 with *err set.  Blocking.  `cancel`
 * (may be NULL) is read between blocks: once it is non-zero the search
 * stops and the answers are not to be used. */
struct imap_mime_needle {
	const char *needle;
	int with_header;   /* TEXT (1) or BODY (0) */
	int found;
};
int imap_mime_search_texts(const struct postern_storage *st,
                           postern_mailbox_t *mb, uint32_t uid,
                           const struct imap_mime *m,
                           struct imap_msg_ref *ref,
                           struct imap_mime_needle *needles, size_t n,
                           const int *cancel, postern_pool_t *pool,
                           struct postern_storage_err *err);

#endif /* IMAP_MIME_H */
