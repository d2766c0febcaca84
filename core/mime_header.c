/*
 * mime_header.c - header fields (RFC 5322 2.2: unfolding), the RFC 2045
 * lexical tokens, the Content-* fields of a part (RFC 2045, 2183, 3282,
 * 2557, 1864), RFC 2231 parameter continuations and charsets, and the
 * fields IMAP's ENVELOPE reports.
 *
 * Everything is lenient the way a mail store has to be: a field it cannot
 * parse is left out (or replaced by the RFC's default), never an error.
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

static char *
lower_dup(postern_pool_t *pool, const char *s, size_t len)
{
	char *d = pool_alloc(pool, len + 1);
	size_t i;

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
	char *d = pool_alloc(pool, len + 1);
	size_t i, n = 0;

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
		field->name = pool_strndup(pool, s + start, name_end - start);
		field->value = unfold(pool, s + colon + 1, end - colon - 1,
		                      &field->value_len);
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

			if (n > 0)
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

char *
mime_quoted_string(const char *s, size_t len, size_t *i,
                   postern_pool_t *pool)
{
	char *d = pool_alloc(pool, len - *i + 1);
	size_t n = 0;

	(*i)++;   /* the opening quote */
	while (*i < len && s[*i] != '"') {
		if (s[*i] == '\\' && *i + 1 < len)
			(*i)++;
		if (s[*i] != '\r' && s[*i] != '\n')
			d[n++] = s[*i];
		(*i)++;
	}
	if (*i < len)
		(*i)++;   /* the closing quote */
	d[n] = '\0';
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
}

/* Reads "; name=value" pairs from s[*i..len). */
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
		name = lower_dup(pool, s + i, tl);
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
			value = pool_strndup(pool, s + start, i - start);
		}
		raw_param_name(&out[n], name);
		out[n].value = value;
		out[n].used = 0;
		n++;
	}
	return n;
}

/* The value of an RFC 2231 extended first section: charset'lang'text;
 * *charset set (from pool), the text returned. */
static char *
split_charset(char *v, postern_pool_t *pool, const char **charset)
{
	char *q1 = strchr(v, '\''), *q2;

	if (q1 == NULL || (q2 = strchr(q1 + 1, '\'')) == NULL)
		return v;
	*charset = pool_strndup(pool, v, (size_t)(q1 - v));
	return q2 + 1;
}

/* Joins the sections of `base` (raw[first] is its first occurrence). */
static void
join_sections(struct raw_param *raw, size_t nraw, size_t first,
              postern_pool_t *pool, struct postern_mime_param *out)
{
	const char *charset = NULL;
	size_t j, total = 0;
	int sec, extended = 0, found;
	char *joined, *part;
	struct { char *text; } piece[MAX_SECTIONS];

	memset(piece, 0, sizeof(piece));
	for (sec = 0; sec < MAX_SECTIONS; sec++) {
		found = 0;
		for (j = first; j < nraw && !found; j++) {
			if (raw[j].used || raw[j].section != sec ||
			    strcmp(raw[j].base, raw[first].base) != 0)
				continue;
			raw[j].used = 1;
			part = raw[j].value;
			if (raw[j].extended) {
				if (sec == 0)
					part = split_charset(part, pool,
					                     &charset);
				percent_decode(part);
				extended = 1;
			}
			piece[sec].text = part;
			total += strlen(part);
			found = 1;
		}
		if (!found)
			break;  /* sections end at the first gap */
	}
	joined = pool_alloc(pool, total + 1);
	for (j = 0; j < MAX_SECTIONS && piece[j].text != NULL; j++)
		strcat(joined, piece[j].text);
	out->name = raw[first].base;
	out->extended = extended;
	out->value = extended && charset != NULL ?
		mime_to_utf8(charset, joined, strlen(joined), pool, NULL) :
		joined;
}

/* The slot for parameter `name` in out[0..*n): the one holding it, or a
 * new one at the end. */
static struct postern_mime_param *
param_slot(struct postern_mime_param *out, size_t *n, const char *name,
           int *existed)
{
	size_t k;

	for (k = 0; k < *n; k++)
		if (strcmp(out[k].name, name) == 0) {
			*existed = 1;
			return &out[k];
		}
	*existed = 0;
	return &out[(*n)++];
}

/* Parameters of s[i..len) into an array from the pool.  The first
 * occurrence of a name wins, except that an RFC 2231 value (name*= or
 * continuations) replaces a plain one: a mailer sends both so that old
 * readers get the plain one. */
static void
parse_params(const char *s, size_t len, size_t i, postern_pool_t *pool,
             const struct postern_mime_param **params, uint32_t *nparams)
{
	struct raw_param *raw = xcalloc(MAX_PARAMS * 2, sizeof(*raw));
	struct postern_mime_param *out, *slot;
	size_t nraw, j, n = 0;
	int existed;

	nraw = read_raw_params(s, len, i, pool, raw, MAX_PARAMS * 2);
	out = pool_alloc(pool, (nraw + 1) * sizeof(*out));
	for (j = 0; j < nraw && n < MAX_PARAMS; j++) {
		if (raw[j].used)
			continue;
		slot = param_slot(out, &n, raw[j].base, &existed);
		if (existed && (slot->extended || (raw[j].section < 0 &&
		                                   !raw[j].extended))) {
			raw[j].used = 1;
			continue;   /* a repeated name: the first counts */
		}
		if (raw[j].section >= 0) {
			join_sections(raw, nraw, j, pool, slot);
		} else if (raw[j].extended) {
			const char *charset = NULL;
			char *v = split_charset(raw[j].value, pool, &charset);

			percent_decode(v);
			slot->name = raw[j].base;
			slot->extended = 1;
			slot->value = charset != NULL ?
				mime_to_utf8(charset, v, strlen(v), pool,
				             NULL) : v;
		} else {
			slot->name = raw[j].base;
			slot->value = raw[j].value;
		}
		raw[j].used = 1;
	}
	free(raw);
	*params = out;
	*nparams = (uint32_t)n;
}

/* ---- Content-* fields ------------------------------------------------- */

void
mime_part_set_default_type(struct postern_mime_part *part, int in_digest,
                           postern_pool_t *pool)
{
	struct postern_mime_param *p;

	if (in_digest) {
		part->type = "message";
		part->subtype = "rfc822";
		part->params = NULL;
		part->nparams = 0;
		return;
	}
	part->type = "text";
	part->subtype = "plain";
	p = pool_alloc(pool, sizeof(*p));
	p->name = "charset";
	p->value = "us-ascii";
	part->params = p;
	part->nparams = 1;
}

/* Content-Type: type "/" subtype *(";" parameter).  An invalid value
 * gives the default (RFC 2045 5.2). */
static void
parse_content_type(struct postern_mime_part *part, const char *v,
                   size_t len, int in_digest, postern_pool_t *pool)
{
	size_t i = 0, tl, sl;

	mime_skip_cfws(v, len, &i);
	tl = token_len(v, len, i);
	if (tl == 0)
		goto invalid;
	part->type = lower_dup(pool, v + i, tl);
	i += tl;
	mime_skip_cfws(v, len, &i);
	if (i >= len || v[i] != '/')
		goto invalid;
	i++;
	mime_skip_cfws(v, len, &i);
	if ((sl = token_len(v, len, i)) == 0)
		goto invalid;
	part->subtype = lower_dup(pool, v + i, sl);
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
	if ((tl = token_len(v, len, i)) == 0)
		return;
	part->disposition = lower_dup(pool, v + i, tl);
	parse_params(v, len, i + tl, pool, &part->disposition_params,
	             &part->ndisposition_params);
}

/* Content-Language: a comma-separated list of tags (RFC 3282). */
static void
parse_languages(struct postern_mime_part *part, const char *v, size_t len,
                postern_pool_t *pool)
{
	const char **tags = pool_alloc(pool, MAX_LANGUAGES * sizeof(*tags));
	size_t i = 0, tl;
	uint32_t n = 0;

	while (i < len && n < MAX_LANGUAGES) {
		mime_skip_cfws(v, len, &i);
		if (i >= len)
			break;
		if ((tl = token_len(v, len, i)) == 0) {
			i++;    /* a comma, or garbage */
			continue;
		}
		tags[n++] = pool_strndup(pool, v + i, tl);
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

	if (part->flags & POSTERN_MIME_MESSAGE)
		part->envelope = env = pool_alloc(pool, sizeof(*env));
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
