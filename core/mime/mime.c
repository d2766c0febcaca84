/*
 * mime.c - the streaming MIME parser (RFC 2045, RFC 2046).
 *
 * The parser sees the message one line at a time, whatever the chunking
 * of mime_parser_feed: a line's octets are collected until its LF, then
 * the line is classified.  It keeps
 *
 *   - the open parts, innermost last: `cur` and its ancestors.  The part
 *     `cur` is either in its header (the octets go to a header buffer
 *     until the empty line) or in its body;
 *   - of a body line, only the first MIME_MAX_BOUNDARY + 4 octets (all a
 *     boundary test needs), so a line of any length costs no memory;
 *   - LF counts, from which each part's line count follows.
 *
 * A line "--boundary" of any open multipart (innermost first, so an
 * outer boundary also closes the parts inside, as RFC 2046 5.1.2 asks)
 * ends every part below that multipart.  The CRLF before the boundary
 * belongs to it, not to the part that ends there.  Whatever is broken
 * (no boundary line, no final boundary, a header without an empty line)
 * just ends the parts where the input ends.
 *
 * Memory: the tree, the header buffer and what the header parsing keeps
 * come from the pool through pool_try_alloc.  When the pool's budget is
 * spent the parse degrades instead of failing: no new part is made (the
 * part that would hold it is flagged POSTERN_MIME_TRUNCATED), header
 * text past that point is not kept, fields that do not fit are left out,
 * and the root is flagged POSTERN_MIME_DEGRADED.
 */
#include <string.h>

#include "mime.h"
#include "pool.h"

#define LINE_KEEP (MIME_MAX_BOUNDARY + 4)

/* A part and what the parser needs while it is open.  `part` comes first
 * so a public part pointer converts back. */
struct node {
	struct postern_mime_part part;
	struct node *last_child;
	const char *boundary;    /* of an open multipart, else NULL */
	size_t boundary_len;
	uint64_t lf_at_body;     /* LFs before body_start */
	uint32_t depth;
	int in_header;
	int closed;              /* multipart: its close delimiter came */
	int in_digest;           /* child of multipart/digest */
};

struct postern_mime_parser {
	postern_pool_t *pool;
	struct postern_mime_limits limits;
	struct node *root;
	struct node *cur;
	uint32_t nparts;
	uint32_t nboundaries;    /* open multiparts with a boundary */

	uint64_t offset;         /* octets fed so far */
	uint64_t lf_total;       /* LFs in them */

	/* the line being read */
	uint64_t line_start;
	uint64_t line_len;       /* so far, terminator included */
	char line[LINE_KEEP];    /* its first octets */
	int line_tail_text;      /* a non-blank octet after line[] */
	int last_cr;             /* the last piece ended with CR */
	size_t header_mark;      /* header buffer length at line start */

	/* the previous line, whose CRLF a boundary line takes */
	uint64_t prev_start;
	uint64_t prev_content_len;
	uint64_t prev_lf_before;

	/* header of `cur` while in_header */
	char *hdr;
	size_t hdr_len, hdr_cap;

	int finished;
};

/* ---- the tree --------------------------------------------------------- */

/* A new part, or NULL over the pool's budget (the root alone is
 * allocated whatever the budget: the tree needs it). */
static struct node *
node_new(postern_mime_parser_t *p, struct node *parent, uint64_t start)
{
	struct node *n = parent == NULL ? pool_alloc(p->pool, sizeof(*n)) :
	                 pool_try_alloc(p->pool, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->part.header_start = start;
	n->part.body_start = start;
	n->part.end = start;
	n->in_header = 1;
	if (parent != NULL) {
		n->part.parent = &parent->part;
		n->depth = parent->depth + 1;
		if (parent->last_child != NULL)
			parent->last_child->part.next = &n->part;
		else
			parent->part.children = &n->part;
		parent->last_child = n;
		parent->part.nchildren++;
	}
	p->nparts++;
	p->hdr_len = 0;
	return n;
}

static struct node *
parent_of(struct node *n)
{
	return (struct node *)n->part.parent;
}

/* ---- headers ---------------------------------------------------------- */

static void
header_append(postern_mime_parser_t *p, const char *data, size_t len)
{
	size_t room = p->limits.max_header - p->hdr_len, cap;
	char *grown;

	if (len > room)
		len = room;    /* fields past the limit are not parsed */
	if (len == 0)
		return;
	if (p->hdr_cap - p->hdr_len < len) {
		cap = p->hdr_cap == 0 ? 1024 : p->hdr_cap;
		while (cap - p->hdr_len < len)
			cap *= 2;
		if ((grown = pool_try_alloc(p->pool, cap)) == NULL) {
			/* over the budget: the rest is not parsed, as
			 * past max_header */
			p->limits.max_header = (uint32_t)p->hdr_len;
			return;
		}
		if (p->hdr_len > 0)
			memcpy(grown, p->hdr, p->hdr_len);
		p->hdr = grown;
		p->hdr_cap = cap;
	}
	memcpy(p->hdr + p->hdr_len, data, len);
	p->hdr_len += len;
}

static int
is_message_type(const struct postern_mime_part *part)
{
	return strcmp(part->type, "message") == 0 &&
	       (strcmp(part->subtype, "rfc822") == 0 ||
	        strcmp(part->subtype, "global") == 0);
}

/* RFC 2046 5.2.1: a message/rfc822 body is not encoded; one that is
 * (base64 does occur) is opaque data, as Dovecot treats it. */
static int
is_identity_encoding(const char *enc)
{
	return strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0 ||
	       strcmp(enc, "binary") == 0;
}

/* The header of `cur` ended: at `body_start` after an empty line
 * (`has_body`), or cut off by a boundary line or the end of input. */
static void
header_end(postern_mime_parser_t *p, uint64_t body_start,
           uint64_t lf_before, int has_body)
{
	struct node *n = p->cur;
	struct postern_mime_part *part = &n->part;
	const char *b;

	n->in_header = 0;
	part->body_start = body_start;
	n->lf_at_body = lf_before;
	mime_header_apply(part, p->hdr, p->hdr_len, n->in_digest, p->pool);
	p->hdr_len = 0;
	if (!has_body)
		return;
	if (strcmp(part->type, "multipart") == 0) {
		b = postern_mime_param_get(part->params, part->nparams,
		                           "boundary");
		if (b == NULL || *b == '\0' ||
		    strlen(b) > MIME_MAX_BOUNDARY) {
			part->flags |= POSTERN_MIME_NO_BOUNDARY;
		} else if (n->depth >= p->limits.max_depth) {
			part->flags |= POSTERN_MIME_TRUNCATED;
		} else {
			n->boundary = b;
			n->boundary_len = strlen(b);
			p->nboundaries++;
		}
	} else if (is_message_type(part) &&
	           is_identity_encoding(part->encoding)) {
		struct node *child;

		if (n->depth >= p->limits.max_depth ||
		    p->nparts >= p->limits.max_parts ||
		    (child = node_new(p, n, body_start)) == NULL) {
			part->flags |= POSTERN_MIME_TRUNCATED;
			return;
		}
		p->cur = child;
		p->cur->part.flags |= POSTERN_MIME_MESSAGE;
	}
}

/* ---- ending parts ----------------------------------------------------- */

/* Ends `n` at `end`, where `lf_before` LFs precede `end` and the line
 * holding `end` started at `tail_start` (a non-empty unterminated last
 * line counts as a line). */
static void
node_end(postern_mime_parser_t *p, struct node *n, uint64_t end,
         uint64_t lf_before, uint64_t tail_start)
{
	struct postern_mime_part *part = &n->part;

	if (n->in_header) {
		/* no empty line: all of it is header, the body is empty */
		if (end < part->header_start)
			end = part->header_start;
		header_end(p, end, lf_before, 0);
	}
	if (end <= part->body_start) {
		part->end = part->body_start;
		part->body_lines = 0;
	} else {
		part->end = end;
		part->body_lines = lf_before - n->lf_at_body +
		                   (end > tail_start ? 1 : 0);
	}
	if (n->boundary != NULL && !n->closed) {
		part->flags |= POSTERN_MIME_NO_END;
		p->nboundaries--;
	}
	n->boundary = NULL;
}

/* Ends the parts below `upto` (exclusive) at the line before the
 * boundary line being processed. */
static void
end_below(postern_mime_parser_t *p, struct node *upto)
{
	uint64_t end = p->prev_start + p->prev_content_len;

	while (p->cur != upto) {
		node_end(p, p->cur, end, p->prev_lf_before, p->prev_start);
		/* an empty part right after a boundary line cannot end
		 * before it starts; its parent then takes it in whole */
		if (p->cur->part.end > end)
			end = p->cur->part.end;
		p->cur = parent_of(p->cur);
	}
}

/* ---- lines ------------------------------------------------------------ */

/* The open multipart whose boundary the current line is, or NULL; *close
 * set for a close delimiter. */
static struct node *
boundary_match(postern_mime_parser_t *p, size_t content_len, int *close)
{
	size_t kept = content_len < LINE_KEEP ? content_len : LINE_KEEP;
	struct node *n;
	size_t i;

	if (kept < 3 || p->line[0] != '-' || p->line[1] != '-')
		return NULL;
	for (n = p->cur; n != NULL; n = parent_of(n)) {
		if (n->boundary == NULL || n->closed ||
		    n->boundary_len + 2 > kept ||
		    memcmp(p->line + 2, n->boundary, n->boundary_len) != 0)
			continue;
		i = 2 + n->boundary_len;
		if (i + 2 <= kept && p->line[i] == '-' &&
		    p->line[i + 1] == '-') {
			*close = 1;
			return n;
		}
		/* only transport padding may follow a delimiter */
		while (i < kept && (p->line[i] == ' ' || p->line[i] == '\t'))
			i++;
		if (i == kept && (kept == content_len ||
		                  !p->line_tail_text)) {
			*close = 0;
			return n;
		}
	}
	return NULL;
}

static void
boundary_line(postern_mime_parser_t *p, struct node *m, int close)
{
	struct node *child;

	end_below(p, m);
	if (m->in_header)   /* cannot be: a multipart is past its header */
		return;
	if (close) {
		m->closed = 1;
		p->nboundaries--;
		return;
	}
	if (p->nparts >= p->limits.max_parts ||
	    (child = node_new(p, m, p->line_start + p->line_len)) == NULL) {
		m->part.flags |= POSTERN_MIME_TRUNCATED;
		return;
	}
	child->in_digest = strcmp(m->part.subtype, "digest") == 0;
	p->cur = child;
}

/* A whole line has been read (or the input ended inside it). */
static void
line_done(postern_mime_parser_t *p, size_t eol_len)
{
	uint64_t content_len = p->line_len - eol_len;
	struct node *m = NULL;
	int close = 0, has_lf = eol_len > 0;

	if (p->nboundaries > 0)
		m = boundary_match(p, content_len, &close);
	if (m != NULL) {
		if (p->cur->in_header)
			p->hdr_len = p->header_mark;  /* not header text */
		boundary_line(p, m, close);
	} else if (p->cur->in_header && content_len == 0 && has_lf) {
		header_end(p, p->line_start + p->line_len, p->lf_total + 1,
		           1);
	}
	p->prev_start = p->line_start;
	p->prev_content_len = content_len;
	p->prev_lf_before = p->lf_total;
	if (has_lf)
		p->lf_total++;
	p->line_start += p->line_len;
	p->line_len = 0;
	p->line_tail_text = 0;
	p->header_mark = p->hdr_len;
}

/* Adds a piece of the current line (up to and including its LF). */
static void
line_add(postern_mime_parser_t *p, const char *data, size_t len)
{
	size_t keep = 0, i;

	if (p->line_len < LINE_KEEP) {
		keep = LINE_KEEP - (size_t)p->line_len;
		if (keep > len)
			keep = len;
		memcpy(p->line + p->line_len, data, keep);
	}
	for (i = keep; i < len && !p->line_tail_text; i++)
		if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r' &&
		    data[i] != '\n')
			p->line_tail_text = 1;
	if (p->cur->in_header)
		header_append(p, data, len);
	p->line_len += len;
}

/* ---- the interface ---------------------------------------------------- */

postern_mime_parser_t *
mime_parser_create(postern_pool_t *pool, const struct postern_mime_limits *l)
{
	postern_mime_parser_t *p = pool_alloc(pool, sizeof(*p));

	p->pool = pool;
	p->limits.size = sizeof(p->limits);
	p->limits.max_depth = MIME_DEFAULT_MAX_DEPTH;
	p->limits.max_parts = MIME_DEFAULT_MAX_PARTS;
	p->limits.max_header = MIME_DEFAULT_MAX_HEADER;
	if (l != NULL) {
		if (POSTERN_SIZED_HAS(l, max_depth) && l->max_depth > 0)
			p->limits.max_depth = l->max_depth;
		if (POSTERN_SIZED_HAS(l, max_parts) && l->max_parts > 0)
			p->limits.max_parts = l->max_parts;
		if (POSTERN_SIZED_HAS(l, max_header) && l->max_header > 0)
			p->limits.max_header = l->max_header;
	}
	p->root = p->cur = node_new(p, NULL, 0);
	p->root->part.flags |= POSTERN_MIME_MESSAGE;
	return p;
}

void
mime_parser_feed(postern_mime_parser_t *p, const void *data, size_t len)
{
	const char *s = data, *lf;
	size_t n;

	if (p->finished)
		return;
	while (len > 0) {
		lf = memchr(s, '\n', len);
		n = lf != NULL ? (size_t)(lf - s) + 1 : len;
		line_add(p, s, n);
		p->offset += n;
		if (lf != NULL) {
			size_t eol = 1;

			/* the CR before the LF may have ended the
			 * previous piece */
			if (n >= 2)
				eol = s[n - 2] == '\r' ? 2 : 1;
			else if (p->line_len >= 2 && p->last_cr)
				eol = 2;
			line_done(p, eol);
		} else {
			p->last_cr = s[n - 1] == '\r';
		}
		s += n;
		len -= n;
	}
}

struct postern_mime_part *
mime_parser_finish(postern_mime_parser_t *p)
{
	uint64_t tail_start;

	if (p->finished)
		return &p->root->part;
	p->finished = 1;
	if (p->line_len > 0)
		line_done(p, 0);
	/* LF-terminated input ends on a line of its own */
	tail_start = p->prev_content_len > 0 && p->prev_start +
	             p->prev_content_len == p->offset ? p->prev_start :
	             p->offset;
	while (p->cur != NULL) {
		node_end(p, p->cur, p->offset, p->lf_total, tail_start);
		p->cur = parent_of(p->cur);
	}
	if (pool_exhausted(p->pool))
		p->root->part.flags |= POSTERN_MIME_DEGRADED;
	return &p->root->part;
}
