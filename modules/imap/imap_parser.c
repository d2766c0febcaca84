/*
 * imap_parser.c - the command reader and the argument scanner (see
 * imap_parser.h).  Grammar: RFC 3501 section 9, literals also RFC 7888.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_parser.h"

/* A buffer kept between commands is shrunk back to this. */
#define READER_KEEP 1024

/* ---- the reader -------------------------------------------------------*/

static void reader_save_tag(struct imap_reader *r);

void
imap_reader_init(struct imap_reader *r, const struct imap_reader_limits *lim)
{
	memset(r, 0, sizeof(*r));
	r->lim = *lim;
}

void
imap_reader_free(struct imap_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
	free(r->spills);
	r->spills = NULL;
	r->nspills = r->spills_cap = 0;
}

void
imap_reader_reset(struct imap_reader *r)
{
	if (r->cap > READER_KEEP) {
		/* A big APPEND or a long line: give the memory back, idle
		 * sessions should cost little. */
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	r->len = 0;
	r->line_start = 0;
	r->literal_left = 0;
	r->nul = 0;
	r->cr = 0;
	r->spilling = 0;
	if (r->spills_cap > 4) {
		/* as the buffer: an idle session keeps little */
		free(r->spills);
		r->spills = NULL;
		r->spills_cap = 0;
	}
	r->nspills = 0;
	r->spill_total = 0;
	r->spill_len = 0;
}

enum imap_read
imap_reader_abort(struct imap_reader *r, const char *error)
{
	reader_save_tag(r);
	r->code = NULL;
	r->error = error;
	imap_reader_reset(r);
	r->skipping = 0;
	return IMAP_READ_BAD;
}

int
imap_reader_busy(const struct imap_reader *r)
{
	return r->len > 0 || r->literal_left > 0 || r->skipping;
}

/* Appends, keeping room for a terminating NUL.  -1 when out of memory. */
static int
reader_append(struct imap_reader *r, const char *data, size_t n)
{
	size_t need = r->len + n + 1, cap;
	char *nb;

	if (need > r->cap) {
		cap = r->cap < 256 ? 256 : r->cap;
		while (cap < need)
			cap *= 2;
		if ((nb = realloc(r->buf, cap)) == NULL)
			return -1;
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return 0;
}

static int
is_tag_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){%*\"\\+", c) == NULL;
}

/* Copies the tag the command starts with (for a BAD reply), or "*". */
static void
reader_save_tag(struct imap_reader *r)
{
	size_t i;

	for (i = 0; i < r->len && i < sizeof(r->tag) - 1; i++) {
		if (r->buf[i] == ' ')
			break;
		if (!is_tag_char((unsigned char)r->buf[i]))
			goto star;
	}
	if (i == 0 || i == sizeof(r->tag) - 1 || (i < r->len &&
	                                            r->buf[i] != ' ') ||
	    i == r->len)
		goto star;
	memcpy(r->tag, r->buf, i);
	r->tag[i] = '\0';
	return;
star:
	strcpy(r->tag, "*");
}

static enum imap_read
reader_bad(struct imap_reader *r, const char *code, const char *error)
{
	reader_save_tag(r);
	r->code = code;
	r->error = error;
	imap_reader_reset(r);
	return IMAP_READ_BAD;
}

static enum imap_read
reader_fatal(struct imap_reader *r, const char *error)
{
	r->code = NULL;
	r->error = error;
	strcpy(r->tag, "*");
	imap_reader_reset(r);
	return IMAP_READ_FATAL;
}

/* Finds a literal announcement "{N}" or "{N+}" ending the line
 * buf[start..len).  Returns 1 with *n and *plus set, 0 if the line has
 * none, -1 if the number is too large to represent. */
static int
line_literal(const char *buf, size_t start, size_t len, uint64_t *n,
             int *plus)
{
	size_t i = len, digits_end;
	uint64_t v = 0;

	if (len - start < 3 || buf[len - 1] != '}')
		return 0;
	i = len - 1;
	*plus = 0;
	if (buf[i - 1] == '+') {
		*plus = 1;
		i--;
	}
	digits_end = i;
	while (i > start && buf[i - 1] >= '0' && buf[i - 1] <= '9')
		i--;
	if (i == digits_end || i == start || buf[i - 1] != '{')
		return 0;
	if (digits_end - i > 19)
		return -1;
	for (; i < digits_end; i++)
		v = v * 10 + (uint64_t)(buf[i] - '0');
	*n = v;
	return 1;
}

/* 1 if the command in buf is an APPEND (tag SP "APPEND" SP). */
static int
reader_is_append(const struct imap_reader *r)
{
	const char *sp = memchr(r->buf, ' ', r->len);

	return sp != NULL && (size_t)(r->buf + r->len - sp) > 7 &&
	       strncasecmp(sp + 1, "APPEND ", 7) == 0;
}

/* Notes a literal of `n` octets at the end of buf as spilled. */
static int
reader_spill_add(struct imap_reader *r, uint64_t n)
{
	struct imap_spill *sp;
	size_t cap;

	if (r->nspills == r->spills_cap) {
		cap = r->spills_cap < 4 ? 4 : r->spills_cap * 2;
		if ((sp = realloc(r->spills, cap * sizeof(*sp))) == NULL)
			return -1;
		r->spills = sp;
		r->spills_cap = cap;
	}
	r->spills[r->nspills].pos = r->len;
	r->spills[r->nspills].nul = 0;
	r->spills[r->nspills++].len = n;
	r->spill_total += n;
	return 0;
}

/* A whole line is in buf[line_start..len): a command ends here, or a
 * literal follows. */
static enum imap_read
reader_line_done(struct imap_reader *r)
{
	uint64_t n;
	int plus, rc, spill;

	rc = line_literal(r->buf, r->line_start, r->len, &n, &plus);
	if (rc == 0) {
		if (r->nul)
			return reader_bad(r, NULL, "NUL octet in command");
		return IMAP_READ_COMMAND;
	}
	/* Only an APPEND's messages go elsewhere, together at most
	 * max_literal; any other literal that large is refused. */
	spill = rc > 0 && r->lim.spill_literal > 0 &&
	        n > r->lim.spill_literal;
	if (rc < 0 || n > r->lim.max_literal ||
	    (spill && (n > r->lim.max_literal - r->spill_total ||
	               !reader_is_append(r))) ||
	    (!spill && n > r->lim.max_command - r->len) ||
	    (plus && !r->lim.literal_plus && n > IMAP_LITERAL_MINUS_MAX)) {
		/* A synchronising literal has not been sent yet: refuse it
		 * and the client goes on.  A non-synchronising one is on its
		 * way, and we choose to close rather than read and discard
		 * what may be gigabytes (RFC 7888 section 4 allows both). */
		if (plus)
			return reader_fatal(r, "[TOOBIG] literal too large");
		return reader_bad(r, "TOOBIG", "literal too large");
	}
	if (r->nul && !plus)
		return reader_bad(r, NULL, "NUL octet in command");
	if (spill && reader_spill_add(r, n) < 0)
		return reader_fatal(r, "out of memory");
	r->literal_left = n;
	r->line_start = r->len + n;
	if (spill) {
		r->spilling = 1;
		r->spill_len = n;
		r->line_start = r->len;
	}
	return plus ? IMAP_READ_AGAIN : IMAP_READ_CONTINUE;
}

/* Line mode: copies up to the next LF.  Sets *used. */
static enum imap_read
reader_line(struct imap_reader *r, const char *data, size_t len,
            size_t *used)
{
	const char *lf = memchr(data, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - data) : len;
	size_t linelen = r->len - r->line_start;
	size_t room = r->lim.max_line + 1 - linelen; /* +1: the CR */

	if (n > room || r->len + n > r->lim.max_command) {
		/* Too long: keep what shows the tag, drop the rest up to the
		 * LF, then answer BAD. */
		if (r->len == 0)
			(void)reader_append(r, data, n < 64 ? n : 64);
		reader_save_tag(r);
		r->code = NULL;
		r->error = "command line too long";
		imap_reader_reset(r);
		if (lf == NULL) {
			r->skipping = 1;
			*used = len;
			return IMAP_READ_AGAIN;
		}
		*used = n + 1;
		return IMAP_READ_BAD;
	}
	if (memchr(data, '\0', n) != NULL)
		r->nul = 1;
	*used = len;
	if (reader_append(r, data, n) < 0)
		return reader_fatal(r, "out of memory");
	if (lf == NULL) {
		*used = len;
		return IMAP_READ_AGAIN;
	}
	*used = n + 1;
	if (r->len > r->line_start && r->buf[r->len - 1] == '\r')
		r->buf[--r->len] = '\0';
	return reader_line_done(r);
}

enum imap_read
imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
                 size_t *used)
{
	size_t i = 0, n;
	const char *lf;
	enum imap_read ev;

	while (i < len) {
		if (r->skipping) {
			lf = memchr(data + i, '\n', len - i);
			if (lf == NULL) {
				i = len;
				break;
			}
			r->skipping = 0;
			*used = (size_t)(lf - data) + 1;
			return IMAP_READ_BAD; /* tag and error already set */
		}
		if (r->literal_left > 0 && r->spilling) {
			n = len - i;
			if (n > r->literal_left)
				n = (size_t)r->literal_left;
			r->spill_first = r->literal_left == r->spill_len;
			if (memchr(data + i, '\0', n) != NULL)
				r->spills[r->nspills - 1].nul = 1;
			r->spill_data = data + i;
			r->spill_n = n;
			r->literal_left -= n;
			r->spilling = r->literal_left > 0;
			*used = i + n;
			return IMAP_READ_SPILL;
		}
		if (r->literal_left > 0) {
			n = len - i;
			if (n > r->literal_left)
				n = (size_t)r->literal_left;
			if (reader_append(r, data + i, n) < 0) {
				*used = i + n;
				return reader_fatal(r, "out of memory");
			}
			r->literal_left -= n;
			i += n;
			continue;
		}
		ev = reader_line(r, data + i, len - i, &n);
		i += n;
		if (ev != IMAP_READ_AGAIN) {
			*used = i;
			return ev;
		}
	}
	*used = i;
	return IMAP_READ_AGAIN;
}

/* ---- the argument scanner ---------------------------------------------*/

void
imap_args_init(struct imap_args *a, char *buf, size_t len,
               void *(*alloc)(void *ctx, size_t n), void *ctx)
{
	a->p = buf;
	a->end = buf + len;
	a->error = NULL;
	a->alloc = alloc;
	a->alloc_ctx = ctx;
	a->spill_base = buf;
	a->spills = NULL;
	a->nspills = a->spill_next = 0;
	a->spill_ok = 0;
	a->saved = NULL;
	a->saved_ctx = NULL;
	a->seq_uid = 0;
}

void
imap_args_spills(struct imap_args *a, const struct imap_reader *r)
{
	a->spill_base = r->buf;
	a->spills = r->spills;
	a->nspills = r->nspills;
	a->spill_next = 0;
}

static int
arg_fail(struct imap_args *a, const char *why)
{
	if (a->error == NULL)
		a->error = why;
	return -1;
}

/* ATOM-CHAR of RFC 3501: CHAR except atom-specials. */
static int
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){%*\"\\]", c) == NULL;
}

static int
is_astring_char(unsigned char c)
{
	return is_atom_char(c) || c == ']';
}

int
imap_arg_sp(struct imap_args *a)
{
	if (a->p < a->end && *a->p == ' ') {
		a->p++;
		return 0;
	}
	return arg_fail(a, "expected a space");
}

int
imap_arg_at_end(const struct imap_args *a)
{
	return a->p >= a->end;
}

int
imap_arg_end(struct imap_args *a)
{
	if (a->p >= a->end)
		return 0;
	return arg_fail(a, "unexpected text at the end of the command");
}

int
imap_arg_peek(const struct imap_args *a)
{
	return a->p < a->end ? (unsigned char)*a->p : -1;
}

int
imap_arg_char(struct imap_args *a, int c)
{
	if (a->p < a->end && *a->p == c) {
		a->p++;
		return 0;
	}
	return arg_fail(a, c == '(' ? "expected (" :
	                c == ')' ? "expected )" : "unexpected character");
}

int
imap_arg_try_char(struct imap_args *a, int c)
{
	if (a->p < a->end && *a->p == c) {
		a->p++;
		return 1;
	}
	return 0;
}

static int
arg_span(struct imap_args *a, int (*ok)(unsigned char), struct imap_str *out,
         const char *what)
{
	char *s = a->p;

	while (a->p < a->end && ok((unsigned char)*a->p))
		a->p++;
	if (a->p == s)
		return arg_fail(a, what);
	out->s = s;
	out->len = (size_t)(a->p - s);
	out->literal = 0;
	out->nul = 0;
	return 0;
}

static int
tag_char(unsigned char c)
{
	return is_astring_char(c) && c != '+';
}

int
imap_arg_tag(struct imap_args *a, struct imap_str *out)
{
	return arg_span(a, tag_char, out, "missing or invalid tag");
}

static int
atom_char(unsigned char c)
{
	return is_atom_char(c);
}

int
imap_arg_atom(struct imap_args *a, struct imap_str *out)
{
	return arg_span(a, atom_char, out, "expected an atom");
}

static int
fetch_atom_char(unsigned char c)
{
	return is_atom_char(c) && c != '[';
}

int
imap_arg_fetch_atom(struct imap_args *a, struct imap_str *out)
{
	return arg_span(a, fetch_atom_char, out, "expected a fetch item");
}

/* "..." with \" and \\ escapes, unescaped in place. */
static int
arg_quoted(struct imap_args *a, struct imap_str *out)
{
	char *w, *s;

	s = w = ++a->p;
	for (;;) {
		if (a->p >= a->end)
			return arg_fail(a, "unterminated quoted string");
		if (*a->p == '"')
			break;
		if (*a->p == '\\') {
			a->p++;
			if (a->p >= a->end || (*a->p != '"' && *a->p != '\\'))
				return arg_fail(a, "bad escape in quoted "
				                   "string");
		}
		*w++ = *a->p++;
	}
	a->p++;
	out->s = s;
	out->len = (size_t)(w - s);
	out->literal = 0;
	out->nul = 0;
	return 0;
}

/* {N} or {N+} followed directly by N octets (the reader's layout). */
static int
arg_literal(struct imap_args *a, struct imap_str *out)
{
	uint64_t n = 0;
	int digits = 0;

	a->p++;
	while (a->p < a->end && *a->p >= '0' && *a->p <= '9' && digits < 20) {
		n = n * 10 + (uint64_t)(*a->p++ - '0');
		digits++;
	}
	if (digits == 0)
		return arg_fail(a, "bad literal");
	(void)imap_arg_try_char(a, '+');
	if (imap_arg_char(a, '}') < 0)
		return arg_fail(a, "bad literal");
	if (a->spill_next < a->nspills &&
	    a->p == a->spill_base + a->spills[a->spill_next].pos &&
	    n == a->spills[a->spill_next].len) {
		if (!a->spill_ok)
			return arg_fail(a, "literal too large here");
		out->nul = a->spills[a->spill_next].nul;
		a->spill_next++;
		out->s = NULL;
		out->len = (size_t)n;
		out->literal = 2;
		return 0;
	}
	if (n > (uint64_t)(a->end - a->p))
		return arg_fail(a, "bad literal");
	out->s = a->p;
	out->len = (size_t)n;
	out->literal = 1;
	out->nul = memchr(a->p, '\0', (size_t)n) != NULL;
	a->p += n;
	return 0;
}

int
imap_arg_string(struct imap_args *a, struct imap_str *out)
{
	if (a->p < a->end && *a->p == '"')
		return arg_quoted(a, out);
	if (a->p < a->end && *a->p == '{')
		return arg_literal(a, out);
	return arg_fail(a, "expected a string");
}

static int
astring_char(unsigned char c)
{
	return is_astring_char(c);
}

int
imap_arg_astring(struct imap_args *a, struct imap_str *out)
{
	if (a->p < a->end && (*a->p == '"' || *a->p == '{'))
		return imap_arg_string(a, out);
	return arg_span(a, astring_char, out, "expected a string");
}

static int
list_char(unsigned char c)
{
	return is_astring_char(c) || c == '%' || c == '*';
}

int
imap_arg_list_mailbox(struct imap_args *a, struct imap_str *out)
{
	if (a->p < a->end && (*a->p == '"' || *a->p == '{'))
		return imap_arg_string(a, out);
	return arg_span(a, list_char, out, "expected a mailbox pattern");
}

int
imap_arg_nstring(struct imap_args *a, struct imap_str *out)
{
	if (a->end - a->p >= 3 && strncasecmp(a->p, "NIL", 3) == 0 &&
	    (a->end - a->p == 3 || !is_atom_char((unsigned char)a->p[3]))) {
		a->p += 3;
		out->s = NULL;
		out->len = 0;
		out->literal = 0;
		out->nul = 0;
		return 0;
	}
	return imap_arg_string(a, out);
}

int
imap_arg_flag(struct imap_args *a, struct imap_str *out)
{
	char *s = a->p;

	if (a->p < a->end && *a->p == '\\') {
		a->p++;
		if (a->p < a->end && *a->p == '*') {
			a->p++;
		} else {
			while (a->p < a->end && is_atom_char((unsigned char)*a->p))
				a->p++;
			if (a->p == s + 1)
				return arg_fail(a, "bad flag");
		}
		out->s = s;
		out->len = (size_t)(a->p - s);
		out->literal = 0;
		out->nul = 0;
		return 0;
	}
	return arg_span(a, atom_char, out, "expected a flag");
}

int
imap_arg_number64(struct imap_args *a, uint64_t *out)
{
	uint64_t v = 0;
	char *s = a->p;

	while (a->p < a->end && *a->p >= '0' && *a->p <= '9') {
		if (v > (UINT64_C(9223372036854775807) - 9) / 10)
			return arg_fail(a, "number too large");
		v = v * 10 + (uint64_t)(*a->p++ - '0');
	}
	if (a->p == s)
		return arg_fail(a, "expected a number");
	*out = v;
	return 0;
}

int
imap_arg_number(struct imap_args *a, uint32_t *out)
{
	uint64_t v;

	if (imap_arg_number64(a, &v) < 0)
		return -1;
	if (v > UINT32_MAX)
		return arg_fail(a, "number too large");
	*out = (uint32_t)v;
	return 0;
}

int
imap_arg_nznumber(struct imap_args *a, uint32_t *out)
{
	if (imap_arg_number(a, out) < 0)
		return -1;
	if (*out == 0)
		return arg_fail(a, "zero is not a valid number here");
	return 0;
}

static int
seq_number(struct imap_args *a, uint32_t *out)
{
	if (imap_arg_try_char(a, '*')) {
		*out = IMAP_SEQ_STAR;
		return 0;
	}
	if (imap_arg_nznumber(a, out) < 0)
		return arg_fail(a, "invalid sequence set");
	/* A written 4294967295 is that number, not "*" (the largest
	 * number in use): no UID or sequence number reaches it (the
	 * storage never assigns it, the next UID would wrap), so it is
	 * kept just below IMAP_SEQ_STAR, with the same matches. */
	if (*out == IMAP_SEQ_STAR)
		*out = IMAP_SEQ_STAR - 1;
	return 0;
}

int
imap_arg_seqset(struct imap_args *a, struct imap_seqset *out)
{
	size_t n = 1, i;
	char *q;
	uint32_t lo, hi;

	if (a->saved != NULL && a->p < a->end && *a->p == '$') {
		a->p++;
		if (a->p < a->end && *a->p != ' ' && *a->p != ')')
			return arg_fail(a, "invalid sequence set");
		return a->saved(a->saved_ctx, a->seq_uid, out);
	}
	for (q = a->p; q < a->end && *q != ' ' && *q != ')'; q++)
		if (*q == ',')
			n++;
	out->r = a->alloc(a->alloc_ctx, n * sizeof(*out->r));
	out->n = 0;
	for (i = 0; i < n; i++) {
		if (i > 0 && imap_arg_char(a, ',') < 0)
			return arg_fail(a, "invalid sequence set");
		if (seq_number(a, &lo) < 0)
			return -1;
		hi = lo;
		if (imap_arg_try_char(a, ':') && seq_number(a, &hi) < 0)
			return -1;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		out->r[out->n].lo = lo;
		out->r[out->n++].hi = hi;
	}
	return 0;
}

int
imap_str_is(const struct imap_str *s, const char *word)
{
	size_t n = strlen(word);

	return s->s != NULL && s->len == n && strncasecmp(s->s, word, n) == 0;
}

/* ---- sequence sets ----------------------------------------------------*/

static void
range_resolve(const struct imap_range *in, uint32_t star,
              struct imap_range *out)
{
	uint32_t lo = in->lo == IMAP_SEQ_STAR ? star : in->lo;
	uint32_t hi = in->hi == IMAP_SEQ_STAR ? star : in->hi;

	out->lo = lo < hi ? lo : hi;
	out->hi = lo < hi ? hi : lo;
}

int
imap_seqset_contains(const struct imap_seqset *set, uint32_t n,
                     uint32_t star)
{
	struct imap_range r;
	size_t i;

	for (i = 0; i < set->n; i++) {
		range_resolve(&set->r[i], star, &r);
		if (n >= r.lo && n <= r.hi)
			return 1;
	}
	return 0;
}

int
imap_seqset_exceeds(const struct imap_seqset *set, uint32_t star,
                    uint32_t max)
{
	struct imap_range r;
	size_t i;

	for (i = 0; i < set->n; i++) {
		range_resolve(&set->r[i], star, &r);
		if (r.hi > max || r.lo == 0)
			return 1;
	}
	return 0;
}

static int
range_cmp(const void *x, const void *y)
{
	const struct imap_range *a = x, *b = y;

	return a->lo < b->lo ? -1 : a->lo > b->lo;
}

size_t
imap_seqset_normalize(const struct imap_seqset *set, uint32_t star,
                      uint32_t max, struct imap_range *out)
{
	size_t i, n = 0, m = 0;

	for (i = 0; i < set->n; i++) {
		range_resolve(&set->r[i], star, &out[n]);
		if (out[n].lo == 0)
			out[n].lo = 1;
		if (out[n].lo > max || out[n].hi < out[n].lo)
			continue;
		if (out[n].hi > max)
			out[n].hi = max;
		n++;
	}
	if (n == 0)
		return 0;
	qsort(out, n, sizeof(*out), range_cmp);
	for (i = 1; i < n; i++) {
		if (out[i].lo <= out[m].hi ||
		    (out[m].hi != UINT32_MAX && out[i].lo == out[m].hi + 1)) {
			if (out[i].hi > out[m].hi)
				out[m].hi = out[i].hi;
		} else
			out[++m] = out[i];
	}
	return m + 1;
}
