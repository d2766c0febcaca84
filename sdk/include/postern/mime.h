/*
 * postern/mime.h - the host's MIME parser and header helpers (ABI 1.3).
 *
 * One parser for every module that looks inside a message: IMAP (FETCH
 * BODYSTRUCTURE, ENVELOPE, BODY[section], SEARCH) and filters.  The
 * functions live in the host table (postern/host.h, members mime_*,
 * ABI 1.3).
 *
 * Threads.  Every function here is pure computation on the caller's
 * memory: no I/O, no global state, no event loop.  They may be called from
 * any thread, job threads included.  A parser or decoder handle is used
 * by one thread at a time.
 *
 * Memory.  A parser, its part tree and every string in it come from the
 * pool passed to mime_parser_create and live as long as that pool; the
 * parser's working buffers too (nothing to free, finished or not).  The
 * helpers that return strings or arrays allocate them from the pool they
 * are given.  A body decoder (mime_decoder_create) holds a charset
 * converter outside any pool and is released with mime_decoder_free.
 *
 * Input.  A message is RFC 5322 octets with CRLF line endings (what
 * postern_storage's msg_read returns).  A bare LF is accepted as a line
 * end; offsets always count the octets as given.
 *
 * Standards.  RFC 5322 (header fields, addresses, dates, with the
 * obsolete syntax of its section 4), RFC 2045 and 2046 (structure,
 * defaults, transfer encodings, boundaries), RFC 2047 (encoded words),
 * RFC 2231 (parameter continuations, charsets and languages), RFC 2183
 * (Content-Disposition), RFC 3282 (Content-Language), RFC 2557
 * (Content-Location), RFC 1864 (Content-MD5), RFC 6532 (message/global).
 *
 * Robustness.  Nothing a message contains makes the parser fail: missing
 * or broken headers, a boundary that never comes, a missing final
 * boundary, NUL bytes and 8-bit text all yield the best structure (as
 * Dovecot does).  Limits on nesting depth, part count and header size
 * stop the tree from growing; a part where a limit cut the parsing short
 * is flagged POSTERN_MIME_TRUNCATED and its body is treated as opaque.
 * Time and memory are linear in the input.  With a pool made by
 * pool_create_limited (ABI 1.4), memory is bounded by its budget too:
 * past it the results degrade (fewer parts and fields, NULL strings as
 * each function documents) and the root is flagged
 * POSTERN_MIME_DEGRADED; nothing aborts.
 */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A streaming parser (opaque). */
typedef struct postern_mime_parser postern_mime_parser_t;
/* A streaming body decoder (opaque). */
typedef struct postern_mime_decoder postern_mime_decoder_t;
/* A streaming body encoder (opaque; ABI 1.10). */
typedef struct postern_mime_encoder postern_mime_encoder_t;

/* A Content-Type or Content-Disposition parameter. */
struct postern_mime_param {
	const char *name;  /* lower case, without the RFC 2231 '*' marks */
	/* RFC 2231 continuations joined; an extended value (name*=) is
	 * percent-decoded and converted from its charset to UTF-8. */
	const char *value;
	int extended;      /* 1 when the value came in the name*= form */
};

/* The header fields of a message (the root part, and the message a
 * message/rfc822 part holds) that IMAP's ENVELOPE reports: the first
 * occurrence of each, unfolded (CRLF removed), leading and trailing
 * white space trimmed, otherwise as in the message (RFC 2047 words are
 * not decoded).  NULL when the field is absent. */
struct postern_mime_envelope {
	const char *date;
	const char *subject;
	const char *from;
	const char *sender;
	const char *reply_to;
	const char *to;
	const char *cc;
	const char *bcc;
	const char *in_reply_to;
	const char *message_id;
};

/* Part flags. */
#define POSTERN_MIME_MESSAGE 0x01u     /* a message: has `envelope` */
#define POSTERN_MIME_TRUNCATED 0x02u   /* a limit stopped the parsing */
#define POSTERN_MIME_NO_BOUNDARY 0x04u /* multipart without a boundary */
#define POSTERN_MIME_NO_END 0x08u      /* multipart whose close delimiter
                                          never came */
/* On the root (ABI 1.4): the pool's budget (pool_create_limited) ran out
 * during the parse, so parts, fields or parameters may be missing.  The
 * tree is valid but depends on the budget: do not cache it. */
#define POSTERN_MIME_DEGRADED 0x10u

/*
 * One node of the tree.  Offsets count from the first octet fed.
 *
 *   header_start .. body_start   the part's header with the empty line
 *                                that ends it (empty range if none)
 *   body_start .. end            the body; in a multipart, the CRLF
 *                                before a boundary belongs to the
 *                                boundary, not to the part (RFC 2046)
 *
 * A multipart's children are its body parts, in order.  A message/rfc822
 * (or message/global) part has exactly one child: the message it holds,
 * whose header_start is the part's body_start and which carries
 * POSTERN_MIME_MESSAGE and `envelope` (as the root does).
 *
 * Strings: type, subtype, encoding, disposition and parameter names are
 * lower case; the rest are unfolded and trimmed field values as they
 * appear (NULL when the field is absent).  Defaults (RFC 2045 5.2, RFC
 * 2046 5.1.5) are filled in: text/plain with charset=us-ascii, or
 * message/rfc822 inside multipart/digest; encoding "7bit".
 */
struct postern_mime_part {
	struct postern_mime_part *parent;   /* NULL for the root */
	struct postern_mime_part *children; /* first child */
	struct postern_mime_part *next;     /* next sibling */
	uint32_t nchildren;
	unsigned flags;                     /* POSTERN_MIME_* */

	uint64_t header_start;
	uint64_t body_start;
	uint64_t end;
	uint64_t body_lines;  /* lines of the body (a last line without
	                         CRLF counts) */

	const char *type;     /* "text" */
	const char *subtype;  /* "plain" */
	const struct postern_mime_param *params; /* Content-Type's */
	uint32_t nparams;
	const char *id;          /* Content-ID */
	const char *description; /* Content-Description */
	const char *encoding;    /* Content-Transfer-Encoding */
	const char *disposition; /* Content-Disposition's type, or NULL */
	const struct postern_mime_param *disposition_params;
	uint32_t ndisposition_params;
	const char *const *languages; /* Content-Language tags */
	uint32_t nlanguages;
	const char *location;    /* Content-Location */
	const char *md5;         /* Content-MD5 */

	/* Set when flags has POSTERN_MIME_MESSAGE. */
	const struct postern_mime_envelope *envelope;
};

/* Limits on what one message may make the parser build.  Zero in a field
 * means the default given. */
struct postern_mime_limits {
	size_t size;           /* sizeof(struct postern_mime_limits) */
	uint32_t max_depth;    /* nesting of multiparts and messages: 64 */
	uint32_t max_parts;    /* parts in the tree: 10000 */
	uint32_t max_header;   /* octets of one part's header kept: 256 KiB
	                          (the offsets stay exact beyond it) */
};

/* One header field, from mime_header_next. */
struct postern_mime_field {
	const char *name;  /* as written, NUL-terminated (from the pool) */
	const char *value; /* unfolded, trimmed, NUL-terminated (pool) */
	size_t value_len;  /* the value may hold NUL octets */
	uint64_t offset;   /* of the field's first octet in the header */
};

/* Iterates over the fields of a header held in data[0..len) (the empty
 * line that ends it may or may not be included).  Set data and len,
 * zero pos, then call mime_header_next until it returns 0. */
struct postern_mime_header_iter {
	const char *data;
	size_t len;
	size_t pos;
};

/* An address of an address list (RFC 5322 3.4), in IMAP's terms (RFC
 * 3501 7.4.2): a group is a start marker (mailbox = the group's name,
 * host NULL) then its members then an end marker (mailbox and host
 * NULL).  Strings are unquoted, comments removed, RFC 2047 words left as
 * they are (decode the name with mime_decode_words when showing it). */
struct postern_mime_address {
	const char *name;    /* display name, or NULL */
	const char *route;   /* obsolete source route "@a,@b", or NULL */
	const char *mailbox; /* local part; NULL in a group end marker or
	                        when missing */
	const char *host;    /* domain; NULL for group markers or when
	                        missing */
	int group;           /* 1 in group start and end markers */
};

/* Where a body decoder sends its output. */
typedef void (*postern_mime_out_fn)(void *arg, const char *data,
                                    size_t len);

/* Looks a parameter up by name (ASCII case-insensitive; the names in a
 * part are lower case); NULL if absent. */
static inline const char *
postern_mime_param_get(const struct postern_mime_param *params, uint32_t n,
                       const char *name)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		const char *a = params[i].name, *b = name;

		while (*a != '\0' && *a == (*b >= 'A' && *b <= 'Z' ?
		                             *b + ('a' - 'A') : *b)) {
			a++;
			b++;
		}
		if (*a == '\0' && *b == '\0')
			return params[i].value;
	}
	return NULL;
}

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_MIME_H */
