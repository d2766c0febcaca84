/*
 * mime_header.c - header fields (RFC 5322 2.2: unfolding), the RFC 2045
 * lexical tokens, the Content-* fields of a part (RFC 2045, 2183, 3282,
 * 2557, 1864), RFC 2231 parameter continuations and charsets, and the
 * fields IMAP's ENVELOPE reports.
 *
 * Everything is lenient the way a mail store has to be: a field it cannot
 * parse is left out (or replaced by the RFC's default), never an error.
 *
 * Time and memory are linear in the input: every scan moves forward, and
 * what is allocated for a token is the token's size (never "the rest of
 * the field").  Allocations that grow with the input use pool_try_alloc:
 * past the pool's budget a field is left out, as if it could not be
 * parsed.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "pool.h"
#include "xalloc.h"

#define MAX_PARAMS 64          /* parameters kept per field */
#define MAX_SECTIONS 100       /* RFC 2231 continuations per parameter */
#define MAX_LANGUAGES 32

static int
is_wsp(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int
is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* NULL when the pool's budget is spent (so for every copy below). */
static char *
lower_dup(postern_pool_t *pool, const char *s, size_t len)
{
	char *d = pool_try_alloc(pool, len + 1);
	size_t i;

	if (d == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		d[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	return d;
}

/* ---- header fields ---------------------------------------------------- */

/* The end of the line starting at `pos` (after its LF, or len). */
static size_t
line_end(const char *s, size_t len, size_t pos)
{
	const char *lf = memchr(s + pos, '\n', len - pos);

	return lf != NULL ? (size_t)(lf - s) + 1 : len;
}

/* Copies s[0..len) without line breaks (CR and LF of folds removed),
 * trimmed of white space at both ends. */
static char *
unfold(postern_pool_t *pool, const char *s, size_t len, size_t *out_len)
{
	char *d = pool_try_alloc(pool, len + 1);
	size_t i, n = 0;

	*out_len = 0;
	if (d == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		if (s[i] != '\r' && s[i] != '\n')
			d[n++] = s[i];
	while (n > 0 && is_wsp(d[n - 1]))
		n--;
	d[n] = '\0';
	i = 0;
	while (i < n && is_wsp(d[i]))
		i++;
	if (i > 0)
		memmove(d, d + i, n - i + 1);
	*out_len = n - i;
	return d;
}

int
mime_header_next(struct postern_mime_header_iter *it, postern_pool_t *pool,
                 struct postern_mime_field *field)
{
	const char *s = it->data;
	size_t start, end, colon, name_end;

	while (it->pos < it->len) {
		start = it->pos;
		if (s[start] == '\n' || (s[start] == '\r' &&
		    start + 1 < it->len && s[start + 1] == '\n')) {
			it->pos = it->len;  /* the empty line ends the header */
			return 0;
		}
		/* the field: its first line and every folded line after */
		end = line_end(s, it->len, start);
		while (end < it->len && is_wsp(s[end]))
			end = line_end(s, it->len, end);
		it->pos = end;
		for (colon = start; colon < end && s[colon] != ':' &&
		     s[colon] != '\n'; colon++)
			;
		if (colon == end || s[colon] != ':' || is_wsp(s[start]))
			continue;   /* no name: not a field */
		name_end = colon;
		while (name_end > start && is_wsp(s[name_end - 1]))
			name_end--;   /* obs-optional: WSP before the colon */
		if (name_end == start)
			continue;
		field->name = pool_try_strndup(pool, s + start,
		                               name_end - start);
		field->value = unfold(pool, s + colon + 1, end - colon - 1,
		                      &field->value_len);
		if (field->name == NULL || field->value == NULL) {
			/* over the pool's budget: the header ends here */
			it->pos = it->len;
			return 0;
		}
		field->offset = start;
		return 1;
	}
	return 0;
}

/* ---- RFC 5322 / RFC 2045 lexical tokens ------------------------------- */

void
mime_skip_cfws_comment(const char *s, size_t len, size_t *i,
                       postern_pool_t *pool, const char **comment)
{
	size_t depth, start;

	for (;;) {
		while (*i < len && is_space(s[*i]))
			(*i)++;
		if (*i >= len || s[*i] != '(')
			return;
		depth = 0;
		start = *i + 1;
		while (*i < len) {
			if (s[*i] == '\\' && *i + 1 < len) {
				*i += 2;
				continue;
			}
			if (s[*i] == '(')
				depth++;
			else if (s[*i] == ')' && --depth == 0)
				break;
			(*i)++;
		}
		if (comment != NULL && pool != NULL) {
			size_t end = *i < len ? *i : len, n;
			char *c = unfold(pool, s + start, end - start, &n);

			if (c != NULL && n > 0)
				*comment = c;
		}
		if (*i < len)
			(*i)++;    /* the closing parenthesis */
	}
}

void
mime_skip_cfws(const char *s, size_t len, size_t *i)
{
	mime_skip_cfws_comment(s, len, i, NULL, NULL);
}

/* The octets of the quoted string at s[*i] == '"' (unescaped, without
 * CR and LF), into d when d is not NULL; *i is left after it. */
static size_t
quoted_string_scan(const char *s, size_t len, size_t *i, char *d)
{
	size_t n = 0;

	(*i)++;   /* the opening quote */
	while (*i < len && s[*i] != '"') {
		if (s[*i] == '\\' && *i + 1 < len)
			(*i)++;
		if (s[*i] != '\r' && s[*i] != '\n') {
			if (d != NULL)
				d[n] = s[*i];
			n++;
		}
		(*i)++;
	}
	if (*i < len)
		(*i)++;   /* the closing quote */
	return n;
}

/* Two passes, measuring then copying: the copy is the string's size,
 * not the rest of the field's (which made a field of many quoted
 * strings cost the square of its length). */
char *
mime_quoted_string(const char *s, size_t len, size_t *i,
                   postern_pool_t *pool)
{
	size_t start = *i, n = quoted_string_scan(s, len, i, NULL);
	char *d = pool_try_alloc(pool, n + 1);

	if (d == NULL)
		return NULL;
	*i = start;
	quoted_string_scan(s, len, i, d);
	return d;
}

/* RFC 2045 token characters: printable ASCII but tspecials and space.
 * 8-bit octets are accepted too (they occur; refusing them loses the
 * field). */
static int
is_token_char(char ch)
{
	if ((unsigned char)ch <= ' ' || ch == 0x7f)
		return 0;
	return strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

static size_t
token_len(const char *s, size_t len, size_t i)
{
	size_t start = i;

	while (i < len && is_token_char(s[i]))
		i++;
	return i - start;
}

/* ---- parameters and RFC 2231 ------------------------------------------ */

/* A parameter as written: name with its RFC 2231 marks split off. */
struct raw_param {
	char *base;      /* lower case, no '*' */
	size_t base_len;
	size_t group;    /* the first raw parameter with the same base */
	int section;     /* -1: not a continuation */
	int extended;    /* value in charset'language'%XX form */
	char *value;
	int used;
};

static int
hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)(ch | 0x20);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* RFC 2231 extended values: %XX octets, decoded in place. */
static void
percent_decode(char *s)
{
	char *d = s;
	int hi, lo;

	for (; *s != '\0'; s++) {
		if (*s == '%' && (hi = hex_digit(s[1])) >= 0 &&
		    (lo = hex_digit(s[2])) >= 0) {
			*d++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* Splits "name*2*" into base "name", section 2, extended. */
static void
raw_param_name(struct raw_param *rp, char *name)
{
	size_t len = strlen(name);
	char *star;

	rp->section = -1;
	rp->extended = 0;
	if (len > 0 && name[len - 1] == '*') {
		rp->extended = 1;
		name[--len] = '\0';
	}
	if ((star = strchr(name, '*')) != NULL) {
		char *end;
		long n = strtol(star + 1, &end, 10);

		if (end != star + 1 && *end == '\0' && n >= 0 &&
		    n < MAX_SECTIONS) {
			rp->section = (int)n;
			*star = '\0';
		}
	}
	rp->base = name;
	rp->base_len = strlen(name);
}

/* Reads "; name=value" pairs from s[*i..len); stops early when the
 * pool's budget is spent. */
static size_t
read_raw_params(const char *s, size_t len, size_t i, postern_pool_t *pool,
                struct raw_param *out, size_t max)
{
	size_t n = 0, tl;
	char *name, *value;

	while (i < len && n < max) {
		mime_skip_cfws(s, len, &i);
		if (i >= len)
			break;
		if (s[i] != ';') {
			/* garbage: skip to the next parameter */
			while (i < len && s[i] != ';')
				i++;
			continue;
		}
		i++;
		mime_skip_cfws(s, len, &i);
		if ((tl = token_len(s, len, i)) == 0)
			continue;
		if ((name = lower_dup(pool, s + i, tl)) == NULL)
			break;
		i += tl;
		mime_skip_cfws(s, len, &i);
		if (i >= len || s[i] != '=')
			continue;
		i++;
		mime_skip_cfws(s, len, &i);
		if (i < len && s[i] == '"') {
			value = mime_quoted_string(s, len, &i, pool);
		} else {
			/* a token, or (leniently) anything up to ';', white
			 * space or a comment */
			size_t start = i;

			while (i < len && s[i] != ';' && s[i] != '(' &&
			       !is_space(s[i]))
				i++;
			value = pool_try_strndup(pool, s + start, i - start);
		}
		if (value == NULL)
			break;
		raw_param_name(&out[n], name);
		out[n].value = value;
		out[n].used = 0;
		n++;
	}
	return n;
}

/* Numbers the raw parameters by base name, so that the joining below
 * compares integers: a name is compared with each earlier one once. */
static void
group_params(struct raw_param *raw, size_t nraw)
{
	size_t j, k;

	for (j = 0; j < nraw; j++) {
		raw[j].group = j;
		for (k = 0; k < j; k++)
			if (raw[k].group == k &&
			    raw[k].base_len == raw[j].base_len &&
			    memcmp(raw[k].base, raw[j].base,
			           raw[j].base_len) == 0) {
				raw[j].group = k;
				break;
			}
	}
}

/* The value of an RFC 2231 extended first section: charset'lang'text;
 * *charset set (from pool; left NULL over the budget), the text
 * returned. */
static char *
split_charset(char *v, postern_pool_t *pool, const char **charset)
{
	char *q1 = strchr(v, '\''), *q2;

	if (q1 == NULL || (q2 = strchr(q1 + 1, '\'')) == NULL)
		return v;
	*charset = pool_try_strndup(pool, v, (size_t)(q1 - v));
	return q2 + 1;
}

/* Joins the sections of raw[first]'s group, in order up to the first
 * missing one (the rest are dropped).  -1 over the pool's budget. */
static int
join_sections(struct raw_param *raw, size_t nraw, size_t first,
              postern_pool_t *pool, struct postern_mime_param *out)
{
	const char *charset = NULL;
	size_t j, total = 0, plen[MAX_SECTIONS];
	int sec, nsec, extended = 0;
	char *joined, *part, *piece[MAX_SECTIONS];
	struct raw_param *by_section[MAX_SECTIONS];

	memset(by_section, 0, sizeof(by_section));
	for (j = first; j < nraw; j++) {
		if (raw[j].group != raw[first].group || raw[j].used ||
		    raw[j].section < 0)
			continue;
		raw[j].used = 1;
		if (by_section[raw[j].section] == NULL)  /* first wins */
			by_section[raw[j].section] = &raw[j];
	}
	for (nsec = 0; nsec < MAX_SECTIONS && by_section[nsec] != NULL;
	     nsec++) {
		part = by_section[nsec]->value;
		if (by_section[nsec]->extended) {
			if (nsec == 0)
				part = split_charset(part, pool, &charset);
			percent_decode(part);
			extended = 1;
		}
		piece[nsec] = part;
		plen[nsec] = strlen(part);
		total += plen[nsec];
	}
	if ((joined = pool_try_alloc(pool, total + 1)) == NULL)
		return -1;
	for (total = 0, sec = 0; sec < nsec; sec++) {
		memcpy(joined + total, piece[sec], plen[sec]);
		total += plen[sec];
	}
	out->name = raw[first].base;
	out->extended = extended;
	out->value = extended && charset != NULL ?
		mime_to_utf8(charset, joined, total, pool, NULL) : joined;
	return out->value != NULL ? 0 : -1;
}

/* The value raw[j] stands for (joining continuations, decoding RFC 2231
 * values) into *v; -1 over the pool's budget. */
static int
param_value(struct raw_param *raw, size_t nraw, size_t j,
            postern_pool_t *pool, struct postern_mime_param *v)
{
	const char *charset = NULL;
	char *text;

	if (raw[j].section >= 0)
		return join_sections(raw, nraw, j, pool, v);
	raw[j].used = 1;
	v->name = raw[j].base;
	if (!raw[j].extended) {
		v->value = raw[j].value;
		v->extended = 0;
		return 0;
	}
	text = split_charset(raw[j].value, pool, &charset);
	percent_decode(text);
	v->extended = 1;
	v->value = charset != NULL ?
		mime_to_utf8(charset, text, strlen(text), pool, NULL) : text;
	return v->value != NULL ? 0 : -1;
}

/* Parameters of s[i..len) into an array from the pool.  The first
 * occurrence of a name wins, except that an RFC 2231 value (name*= or
 * continuations) replaces a plain one: a mailer sends both so that old
 * readers get the plain one.  Over the pool's budget, the parameters
 * that do not fit are left out. */
static void
parse_params(const char *s, size_t len, size_t i, postern_pool_t *pool,
             const struct postern_mime_param **params, uint32_t *nparams)
{
	struct raw_param raw[MAX_PARAMS * 2];
	size_t group_of[MAX_PARAMS];   /* the group of out[k] */
	struct postern_mime_param *out, v;
	size_t nraw, j, k, n = 0;

	*params = NULL;
	*nparams = 0;
	nraw = read_raw_params(s, len, i, pool, raw, MAX_PARAMS * 2);
	if (nraw == 0)
		return;
	group_params(raw, nraw);
	if ((out = pool_try_alloc(pool, nraw * sizeof(*out))) == NULL)
		return;
	for (j = 0; j < nraw && n < MAX_PARAMS; j++) {
		if (raw[j].used)
			continue;
		for (k = 0; k < n && group_of[k] != raw[j].group; k++)
			;
		if (k < n && (out[k].extended || (raw[j].section < 0 &&
		                                  !raw[j].extended))) {
			raw[j].used = 1;
			continue;   /* a repeated name: the first counts */
		}
		if (param_value(raw, nraw, j, pool, &v) < 0)
			continue;   /* over the budget: left out */
		if (k == n)
			group_of[n++] = raw[j].group;
		out[k] = v;
	}
	*params = out;
	*nparams = (uint32_t)n;
}

/* ---- Content-* fields ------------------------------------------------- */

void
mime_part_set_default_type(struct postern_mime_part *part, int in_digest,
                           postern_pool_t *pool)
{
	/* static: the default needs no memory, over the budget too */
	static const struct postern_mime_param us_ascii = {
		"charset", "us-ascii", 0
	};

	(void)pool;
	if (in_digest) {
		part->type = "message";
		part->subtype = "rfc822";
		part->params = NULL;
		part->nparams = 0;
		return;
	}
	part->type = "text";
	part->subtype = "plain";
	part->params = &us_ascii;
	part->nparams = 1;
}

/* Content-Type: type "/" subtype *(";" parameter).  An invalid value
 * gives the default (RFC 2045 5.2). */
static void
parse_content_type(struct postern_mime_part *part, const char *v,
                   size_t len, int in_digest, postern_pool_t *pool)
{
	size_t i = 0, ti, tl, sl;
	char *type, *subtype;

	mime_skip_cfws(v, len, &i);
	tl = token_len(v, len, i);
	if (tl == 0)
		goto invalid;
	ti = i;
	i += tl;
	mime_skip_cfws(v, len, &i);
	if (i >= len || v[i] != '/')
		goto invalid;
	i++;
	mime_skip_cfws(v, len, &i);
	if ((sl = token_len(v, len, i)) == 0)
		goto invalid;
	/* over the budget, the default rather than half a type */
	if ((type = lower_dup(pool, v + ti, tl)) == NULL ||
	    (subtype = lower_dup(pool, v + i, sl)) == NULL)
		goto invalid;
	part->type = type;
	part->subtype = subtype;
	i += sl;
	parse_params(v, len, i, pool, &part->params, &part->nparams);
	return;
invalid:
	mime_part_set_default_type(part, in_digest, pool);
}

static void
parse_disposition(struct postern_mime_part *part, const char *v, size_t len,
                  postern_pool_t *pool)
{
	size_t i = 0, tl;

	mime_skip_cfws(v, len, &i);
	if ((tl = token_len(v, len, i)) == 0 ||
	    (part->disposition = lower_dup(pool, v + i, tl)) == NULL)
		return;
	parse_params(v, len, i + tl, pool, &part->disposition_params,
	             &part->ndisposition_params);
}

/* Content-Language: a comma-separated list of tags (RFC 3282). */
static void
parse_languages(struct postern_mime_part *part, const char *v, size_t len,
                postern_pool_t *pool)
{
	const char **tags = pool_try_alloc(pool,
	                                   MAX_LANGUAGES * sizeof(*tags));
	size_t i = 0, tl;
	uint32_t n = 0;

	while (tags != NULL && i < len && n < MAX_LANGUAGES) {
		mime_skip_cfws(v, len, &i);
		if (i >= len)
			break;
		if ((tl = token_len(v, len, i)) == 0) {
			i++;    /* a comma, or garbage */
			continue;
		}
		if ((tags[n] = pool_try_strndup(pool, v + i, tl)) == NULL)
			break;
		n++;
		i += tl;
	}
	part->languages = n > 0 ? tags : NULL;
	part->nlanguages = n;
}

static const char *
first_token_lower(const char *v, size_t len, postern_pool_t *pool)
{
	size_t i = 0, tl;

	mime_skip_cfws(v, len, &i);
	tl = token_len(v, len, i);
	return tl > 0 ? lower_dup(pool, v + i, tl) : NULL;
}

/* Keeps the first occurrence of an envelope field. */
static void
envelope_field(struct postern_mime_envelope *env, const char *name,
               const char *value)
{
	static const struct {
		const char *name;
		size_t offset;
	} fields[] = {
		{ "date", offsetof(struct postern_mime_envelope, date) },
		{ "subject", offsetof(struct postern_mime_envelope, subject) },
		{ "from", offsetof(struct postern_mime_envelope, from) },
		{ "sender", offsetof(struct postern_mime_envelope, sender) },
		{ "reply-to",
		  offsetof(struct postern_mime_envelope, reply_to) },
		{ "to", offsetof(struct postern_mime_envelope, to) },
		{ "cc", offsetof(struct postern_mime_envelope, cc) },
		{ "bcc", offsetof(struct postern_mime_envelope, bcc) },
		{ "in-reply-to",
		  offsetof(struct postern_mime_envelope, in_reply_to) },
		{ "message-id",
		  offsetof(struct postern_mime_envelope, message_id) },
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char **slot;

		if (strcasecmp(name, fields[i].name) != 0)
			continue;
		slot = (const char **)((char *)env + fields[i].offset);
		if (*slot == NULL)
			*slot = value;
		return;
	}
}

static void
set_once(const char **slot, const char *value)
{
	if (*slot == NULL)
		*slot = value;
}

void
mime_header_apply(struct postern_mime_part *part, const char *hdr,
                  size_t len, int in_digest, postern_pool_t *pool)
{
	struct postern_mime_header_iter it = { hdr, len, 0 };
	struct postern_mime_envelope *env = NULL;
	struct postern_mime_field f;
	const char *n;
	int have_type = 0;

	/* over the budget a message has no envelope (IMAP: all NIL) */
	if (part->flags & POSTERN_MIME_MESSAGE)
		part->envelope = env = pool_try_alloc(pool, sizeof(*env));
	while (mime_header_next(&it, pool, &f)) {
		n = f.name;
		if (env != NULL)
			envelope_field(env, n, f.value);
		if (strncasecmp(n, "content-", 8) != 0)
			continue;
		n += 8;
		if (strcasecmp(n, "type") == 0 && !have_type) {
			parse_content_type(part, f.value, f.value_len,
			                   in_digest, pool);
			have_type = 1;
		} else if (strcasecmp(n, "transfer-encoding") == 0) {
			if (part->encoding == NULL)
				part->encoding = first_token_lower(
					f.value, f.value_len, pool);
		} else if (strcasecmp(n, "disposition") == 0) {
			if (part->disposition == NULL)
				parse_disposition(part, f.value, f.value_len,
				                  pool);
		} else if (strcasecmp(n, "language") == 0) {
			if (part->languages == NULL)
				parse_languages(part, f.value, f.value_len,
				                pool);
		} else if (strcasecmp(n, "id") == 0) {
			set_once(&part->id, f.value);
		} else if (strcasecmp(n, "description") == 0) {
			set_once(&part->description, f.value);
		} else if (strcasecmp(n, "location") == 0) {
			set_once(&part->location, f.value);
		} else if (strcasecmp(n, "md5") == 0) {
			set_once(&part->md5, f.value);
		}
	}
	if (!have_type)
		mime_part_set_default_type(part, in_digest, pool);
	if (part->encoding == NULL)
		part->encoding = "7bit";
}
