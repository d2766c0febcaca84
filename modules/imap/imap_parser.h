/*
 * imap_parser.h - reading IMAP commands off the wire.
 *
 * Two layers, neither of which knows about connections or the host, so
 * the unit tests and the fuzz harness drive them directly:
 *
 *   - the reader (struct imap_reader) cuts the byte stream into whole
 *     commands: lines, and the literals {N} / {N+} announced at their
 *     ends, with every limit applied while the bytes arrive (a literal
 *     too large is refused from its announcement, before anything is
 *     allocated).  Input is fed in pieces as it comes; nothing is ever
 *     scanned twice, so a command arriving byte by byte costs what it
 *     would cost in one piece.
 *
 *   - the argument scanner (struct imap_args) walks one whole command as
 *     a token stream: atoms, quoted strings, literals, numbers, lists,
 *     sequence sets.  Command handlers call it in the order the grammar
 *     of RFC 3501 section 9 says.
 *
 * In the reader's buffer a line is kept without its CRLF, and a
 * literal's octets follow the "}" that announced it directly, so
 * "a LOGIN {3}\r\nbob x\r\n" is held as "a LOGIN {3}bob x".
 */
#ifndef IMAP_PARSER_H
#define IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* RFC 7888 section 4: with LITERAL- a non-synchronising literal holds at
 * most 4096 octets. */
#define IMAP_LITERAL_MINUS_MAX 4096

/* What imap_reader_feed found. */
enum imap_read {
	IMAP_READ_AGAIN = 0, /* all input used; a command is incomplete */
	IMAP_READ_COMMAND,   /* a whole command: r->buf[0..r->len) */
	IMAP_READ_CONTINUE,  /* a synchronising literal was accepted: send
	                        a "+" continuation, then feed on */
	IMAP_READ_BAD,       /* the command was dropped: answer it
	                        "<r->tag> BAD [r->code] r->error" and go on */
	IMAP_READ_FATAL,     /* the stream cannot be followed any more:
	                        "* BYE r->error", close */
	IMAP_READ_SPILL,     /* octets of a spilled literal: store
	                        r->spill_data[0..r->spill_n) elsewhere
	                        (valid until the input is consumed) */
};

struct imap_reader_limits {
	size_t max_line;      /* octets of one line, CRLF excluded */
	uint64_t max_literal; /* octets of one literal */
	size_t max_command;   /* octets of a whole command, literals too */
	int literal_plus;     /* 1: LITERAL+ (any {N+} up to max_literal);
	                         0: LITERAL- (at most 4096) */
	uint64_t spill_literal; /* 0, or: one literal of an APPEND larger
	                         than this is not kept in the buffer but
	                         handed out (IMAP_READ_SPILL); a larger one
	                         in any other command is refused */
};

/* Where a spilled literal would be in the reader's buffer. */
struct imap_spill {
	size_t pos;
	uint64_t len;
	int nul;       /* it holds a NUL octet */
};

struct imap_reader {
	struct imap_reader_limits lim;
	char *buf;             /* the command so far (malloc'd) */
	size_t len, cap;
	size_t line_start;     /* where the current line began in buf */
	uint64_t literal_left; /* literal octets still to come */
	int skipping;          /* dropping input up to the next LF */
	int cr;                /* the last octet of the line was CR */
	int nul;               /* a NUL outside literals in this command */
	const char *error;     /* after BAD or FATAL: what went wrong */
	const char *code;      /* after BAD: response code or NULL */
	char tag[64];          /* after BAD: the command's tag, or "*" */
	/* The spilled literals of this command (an APPEND may carry
	 * several messages, RFC 3502): their octets are not in buf;
	 * spills[i].pos is where in buf the i-th would start.  Together at
	 * most lim.max_literal octets, so at most max_literal /
	 * spill_literal of them. */
	struct imap_spill *spills; /* malloc'd (a few kept between commands) */
	size_t nspills, spills_cap;
	uint64_t spill_total;
	int spilling;
	uint64_t spill_len;     /* of the literal being spilled */
	const char *spill_data; /* after IMAP_READ_SPILL */
	size_t spill_n;
	int spill_first;        /* ... the literal's first octets */
};

void imap_reader_init(struct imap_reader *r,
                      const struct imap_reader_limits *lim);
/* Frees the buffer. */
void imap_reader_free(struct imap_reader *r);
/* Forgets the command returned (after IMAP_READ_COMMAND), keeping a
 * small buffer for the next one. */
void imap_reader_reset(struct imap_reader *r);
/* Consumes up to `len` octets of `data`, sets *used to how many, and
 * returns at the first event.  Call again with the rest. */
enum imap_read imap_reader_feed(struct imap_reader *r, const char *data,
                                size_t len, size_t *used);
/* Drops the command so far, as one whose line was too long to be
 * read (the caller discarded it): IMAP_READ_BAD with `error` and the
 * command's tag when its first line was read, else "*". */
enum imap_read imap_reader_abort(struct imap_reader *r, const char *error);
/* 1 while the reader is inside a command (a line or literal has
 * started): the session is not idle. */
int imap_reader_busy(const struct imap_reader *r);

/* ---- arguments --------------------------------------------------------*/

/* A string of the command: not NUL-terminated, may contain NUL when it
 * came from a literal.  Points into the reader's buffer. */
struct imap_str {
	const char *s;
	size_t len;
	int literal; /* came as a literal (may hold anything) */
	int nul;     /* ... and holds a NUL octet */
};

/* A sequence or UID set: ranges as written, lo <= hi; `*` is
 * IMAP_SEQ_STAR until resolved against the mailbox. */
#define IMAP_SEQ_STAR UINT32_MAX
struct imap_range {
	uint32_t lo, hi;
};
struct imap_seqset {
	struct imap_range *r;
	size_t n;
};

struct imap_args {
	char *p, *end;         /* what is left of the command */
	/* The spilled literals (see the reader), in order, positions
	 * relative to spill_base: a literal at one is taken only when
	 * spill_ok is set (APPEND's messages), and then comes back as
	 * s = NULL, len = its length, literal = 2.  They are met in order:
	 * spill_next is the next one. */
	const char *spill_base;
	const struct imap_spill *spills;
	size_t nspills, spill_next;
	int spill_ok;
	const char *error;     /* first syntax error, for the BAD reply */
	/* Memory for sequence sets and the like, freed by the caller after
	 * the command (a per-command pool). */
	void *(*alloc)(void *ctx, size_t n);
	void *alloc_ctx;
	/* SEARCHRES (RFC 5182): "$" in a sequence set is the saved search
	 * result, given by `saved` (NULL: "$" is a syntax error) as UIDs
	 * when `seq_uid` is set, else as sequence numbers. */
	int (*saved)(void *ctx, int uid, struct imap_seqset *out);
	void *saved_ctx;
	int seq_uid;
};

void imap_args_init(struct imap_args *a, char *buf, size_t len,
                    void *(*alloc)(void *ctx, size_t n), void *ctx);

/* Lets the scanner find the reader's spilled literals (r->buf must be
 * the buffer the scanner walks). */
void imap_args_spills(struct imap_args *a, const struct imap_reader *r);

/* Each returns 0 on success, or -1 with a->error set (the position is
 * then unspecified: the command is answered BAD). */
int imap_arg_sp(struct imap_args *a);            /* one space */
int imap_arg_end(struct imap_args *a);           /* nothing left */
int imap_arg_at_end(const struct imap_args *a);  /* 1 if nothing left */
int imap_arg_peek(const struct imap_args *a);    /* next octet or -1 */
int imap_arg_char(struct imap_args *a, int c);   /* that octet */
int imap_arg_try_char(struct imap_args *a, int c); /* 1 if taken */
int imap_arg_tag(struct imap_args *a, struct imap_str *out);
int imap_arg_atom(struct imap_args *a, struct imap_str *out);
/* An atom that may hold "[" ... "]" as in "BODY[HEADER.FIELDS" - stops
 * at the first "[" (FETCH items scan their sections themselves). */
int imap_arg_fetch_atom(struct imap_args *a, struct imap_str *out);
int imap_arg_string(struct imap_args *a, struct imap_str *out);
int imap_arg_astring(struct imap_args *a, struct imap_str *out);
/* LIST's mailbox argument: an astring that may hold % and *. */
int imap_arg_list_mailbox(struct imap_args *a, struct imap_str *out);
/* NIL gives out->s == NULL. */
int imap_arg_nstring(struct imap_args *a, struct imap_str *out);
/* A flag: "\Seen", "\*" or a keyword atom. */
int imap_arg_flag(struct imap_args *a, struct imap_str *out);
int imap_arg_number(struct imap_args *a, uint32_t *out);   /* 0..2^32-1 */
int imap_arg_nznumber(struct imap_args *a, uint32_t *out); /* 1.. */
int imap_arg_number64(struct imap_args *a, uint64_t *out); /* mod-sequence */
int imap_arg_seqset(struct imap_args *a, struct imap_seqset *out);
/* 1 if the atom equals `word`, ignoring case. */
int imap_str_is(const struct imap_str *s, const char *word);

/* ---- sequence sets ----------------------------------------------------*/

/* 1 if `n` is in the set, `*` meaning `star`. */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n,
                         uint32_t star);
/* The set as sorted, merged, inclusive ranges with `*` resolved to
 * `star` and every value clamped to `max` (ranges wholly above `max`
 * dropped).  `out` holds at least set->n ranges; returns how many. */
size_t imap_seqset_normalize(const struct imap_seqset *set, uint32_t star,
                             uint32_t max, struct imap_range *out);
/* 1 if some number of the set (with `*` as `star`) is above `max`. */
int imap_seqset_exceeds(const struct imap_seqset *set, uint32_t star,
                        uint32_t max);

#endif /* IMAP_PARSER_H */
