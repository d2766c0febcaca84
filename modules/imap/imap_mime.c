/*
 * imap_mime.c - a message's MIME structure as IMAP shows it: ENVELOPE and
 * BODYSTRUCTURE / BODY (RFC 3501 7.4.2, with RFC 9051's clarifications),
 * body sections by part number (RFC 3501 6.4.5), HEADER.FIELDS (.NOT)
 * filtered as a stream (FETCH's and IMAP URLs'), and the decoded text
 * and headers SEARCH looks in.  The parsing is the host's (postern/mime.h);
 * the parsed tree is kept in the storage cache as "mime.v1".
 *
 * Output follows what Dovecot sends for the same messages: lower-case
 * type names and parameter names as the host parser gives them, full
 * extension data in BODYSTRUCTURE, ("charset" "us-ascii") for a text part
 * without parameters, a 0-length text/plain part standing in for a
 * multipart without parts (the grammar needs one), and
 * "MISSING_MAILBOX" / "MISSING_DOMAIN" for address parts a broken
 * address lacks (a NIL host would turn it into a group marker).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_mime.h"

#define CACHE_FIELD "mime.v1"
#define READ_BLOCK 65536
#define MAX_SEARCH_HEADER (1024 * 1024)   /* header octets searched */
#define MATCH_STEP 16384   /* folded text collected per substring scan */

struct imap_mime {
	const struct postern_mime_part *root;
};

static const struct postern_host *host;
static postern_module_t *module;

void
imap_mime_init(const struct postern_host *h, postern_module_t *self)
{
	host = h;
	module = self;
}

static int
host_has_mime(void)
{
	return host != NULL;
}

/* ---- output buffer ---------------------------------------------------- */

struct out {
	char *data;
	size_t len, cap;
};

/* Room for n more octets (and the NUL out_add keeps after them). */
static char *
out_reserve(struct out *o, size_t n)
{
	if (o->cap - o->len < n + 1) {
		while (o->cap - o->len < n + 1)
			o->cap = o->cap == 0 ? 1024 : o->cap * 2;
		if ((o->data = realloc(o->data, o->cap)) == NULL)
			abort();   /* as every allocation in postern */
	}
	return o->data + o->len;
}

static void
out_add(struct out *o, const char *s, size_t n)
{
	memcpy(out_reserve(o, n), s, n);
	o->len += n;
	o->data[o->len] = '\0';
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

/* Moves the text into the pool. */
static char *
out_finish(struct out *o, postern_pool_t *pool)
{
	char *s = host->pool_alloc(pool, o->len + 1);

	if (o->len > 0)
		memcpy(s, o->data, o->len);
	free(o->data);
	return s;
}

/* An IMAP string: quoted when it can be, a literal when it holds CR, LF,
 * 8-bit octets (RFC 3501 4.3: a quoted string is 7-bit without CR/LF) or
 * is long. */
static void
out_string(struct out *o, const char *s)
{
	size_t i, n = strlen(s);
	int literal = n > 1024;
	char num[32];

	for (i = 0; i < n && !literal; i++)
		if ((unsigned char)s[i] >= 0x80 || s[i] == '\r' ||
		    s[i] == '\n')
			literal = 1;
	if (literal) {
		snprintf(num, sizeof(num), "{%zu}\r\n", n);
		out_str(o, num);
		out_add(o, s, n);
		return;
	}
	out_add(o, "\"", 1);
	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out_add(o, "\\", 1);
		out_add(o, s + i, 1);
	}
	out_add(o, "\"", 1);
}

static void
out_nstring(struct out *o, const char *s)
{
	if (s == NULL)
		out_str(o, "NIL");
	else
		out_string(o, s);
}

/* ---- ENVELOPE --------------------------------------------------------- */

static int
is_blank(const char *s)
{
	if (s == NULL)
		return 1;
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0';
}

/* An address list, or NIL when it has no address. */
static void
out_addresses(struct out *o, const char *value, postern_pool_t *pool)
{
	struct postern_mime_address *a;
	size_t n = 0, i;

	a = value != NULL ? host->mime_parse_addresses(value, strlen(value),
	                                               pool, &n) : NULL;
	if (n == 0) {
		out_str(o, "NIL");
		return;
	}
	out_add(o, "(", 1);
	for (i = 0; i < n; i++) {
		out_add(o, "(", 1);
		if (a[i].group) {
			/* start: (NIL NIL "name" NIL); end: all NIL */
			out_str(o, "NIL NIL ");
			out_nstring(o, a[i].mailbox);
			out_str(o, " NIL)");
			continue;
		}
		out_nstring(o, a[i].name);
		out_add(o, " ", 1);
		out_nstring(o, a[i].route);
		out_add(o, " ", 1);
		out_string(o, a[i].mailbox != NULL ? a[i].mailbox :
		              "MISSING_MAILBOX");
		out_add(o, " ", 1);
		out_string(o, a[i].host != NULL ? a[i].host :
		              "MISSING_DOMAIN");
		out_add(o, ")", 1);
	}
	out_add(o, ")", 1);
}

static void
out_envelope(struct out *o, const struct postern_mime_envelope *e,
             postern_pool_t *pool)
{
	static const struct postern_mime_envelope none;
	const char *from;

	if (e == NULL)
		e = &none;
	from = e->from;
	out_add(o, "(", 1);
	out_nstring(o, e->date);
	out_add(o, " ", 1);
	out_nstring(o, e->subject);
	out_add(o, " ", 1);
	out_addresses(o, from, pool);
	/* RFC 3501: an absent or empty Sender or Reply-To is From */
	out_add(o, " ", 1);
	out_addresses(o, is_blank(e->sender) ? from : e->sender, pool);
	out_add(o, " ", 1);
	out_addresses(o, is_blank(e->reply_to) ? from : e->reply_to, pool);
	out_add(o, " ", 1);
	out_addresses(o, e->to, pool);
	out_add(o, " ", 1);
	out_addresses(o, e->cc, pool);
	out_add(o, " ", 1);
	out_addresses(o, e->bcc, pool);
	out_add(o, " ", 1);
	out_nstring(o, e->in_reply_to);
	out_add(o, " ", 1);
	out_nstring(o, e->message_id);
	out_add(o, ")", 1);
}

char *
imap_mime_envelope(const struct imap_mime *m, postern_pool_t *pool)
{
	struct out o = { NULL, 0, 0 };

	out_envelope(&o, m->root->envelope, pool);
	return out_finish(&o, pool);
}

/* ---- BODYSTRUCTURE ---------------------------------------------------- */

static int
is_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* RFC 2231 form of a non-ASCII value: utf-8''%XX... */
static void
out_param_2231(struct out *o, const struct postern_mime_param *p)
{
	static const char hex[] = "0123456789ABCDEF";
	struct out v = { NULL, 0, 0 };
	const unsigned char *s;
	char esc[3];

	out_add(&v, p->name, strlen(p->name));
	out_add(&v, "*", 1);
	out_string(o, v.data);
	v.len = 0;
	out_add(&v, "utf-8''", 7);
	for (s = (const unsigned char *)p->value; *s != '\0'; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("!#$&+-.^_`|~", *s)) {
			out_add(&v, (const char *)s, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[*s >> 4];
		esc[2] = hex[*s & 15];
		out_add(&v, esc, 3);
	}
	out_add(o, " ", 1);
	out_string(o, v.data);
	free(v.data);
}

static void
out_params(struct out *o, const struct postern_mime_param *p, uint32_t n)
{
	uint32_t i;

	if (n == 0) {
		out_str(o, "NIL");
		return;
	}
	out_add(o, "(", 1);
	for (i = 0; i < n; i++) {
		if (i > 0)
			out_add(o, " ", 1);
		/* a decoded RFC 2231 value is UTF-8: give it back in RFC
		 * 2231 form rather than as raw 8-bit */
		if (p[i].extended && is_8bit(p[i].value) &&
		    strspn(p[i].name, "abcdefghijklmnopqrstuvwxyz0123456789-_.")
		    == strlen(p[i].name)) {
			out_param_2231(o, &p[i]);
			continue;
		}
		out_string(o, p[i].name);
		out_add(o, " ", 1);
		out_string(o, p[i].value);
	}
	out_add(o, ")", 1);
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
out_ext_common(struct out *o, const struct postern_mime_part *p)
{
	uint32_t i;

	out_add(o, " ", 1);
	if (p->disposition == NULL) {
		out_str(o, "NIL");
	} else {
		out_add(o, "(", 1);
		out_string(o, p->disposition);
		out_add(o, " ", 1);
		out_params(o, p->disposition_params, p->ndisposition_params);
		out_add(o, ")", 1);
	}
	out_add(o, " ", 1);
	if (p->nlanguages == 0) {
		out_str(o, "NIL");
	} else {
		out_add(o, "(", 1);
		for (i = 0; i < p->nlanguages; i++) {
			if (i > 0)
				out_add(o, " ", 1);
			out_string(o, p->languages[i]);
		}
		out_add(o, ")", 1);
	}
	out_add(o, " ", 1);
	out_nstring(o, p->location);
}

static void
out_number(struct out *o, uint64_t n)
{
	char num[32];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)n);
	out_str(o, num);
}

static int
is_multipart(const struct postern_mime_part *p)
{
	return strcmp(p->type, "multipart") == 0;
}

/* A message/rfc822 part shown with its envelope and body (RFC 9051 adds
 * message/global); one whose message was not parsed (encoded, or a
 * limit) is shown as a basic part. */
static int
is_message_part(const struct postern_mime_part *p)
{
	return strcmp(p->type, "message") == 0 && p->children != NULL &&
	       (strcmp(p->subtype, "rfc822") == 0 ||
	        strcmp(p->subtype, "global") == 0);
}

static void out_body(struct out *o, const struct postern_mime_part *p,
                     int extended, postern_pool_t *pool);

static void
out_multipart(struct out *o, const struct postern_mime_part *p,
              int extended, postern_pool_t *pool)
{
	const struct postern_mime_part *c;

	out_add(o, "(", 1);
	if (p->children == NULL)   /* the grammar needs one body */
		out_str(o, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") "
		           "NIL NIL \"7bit\" 0 0)");
	for (c = p->children; c != NULL; c = c->next)
		out_body(o, c, extended, pool);
	out_add(o, " ", 1);
	out_string(o, p->subtype);
	if (extended) {
		out_add(o, " ", 1);
		out_params(o, p->params, p->nparams);
		out_ext_common(o, p);
	}
	out_add(o, ")", 1);
}

static void
out_body(struct out *o, const struct postern_mime_part *p, int extended,
         postern_pool_t *pool)
{
	if (is_multipart(p)) {
		out_multipart(o, p, extended, pool);
		return;
	}
	out_add(o, "(", 1);
	out_string(o, p->type);
	out_add(o, " ", 1);
	out_string(o, p->subtype);
	out_add(o, " ", 1);
	if (p->nparams == 0 && strcmp(p->type, "text") == 0)
		/* RFC 2046 4.1.2's default, spelt out as Dovecot does */
		out_str(o, "(\"charset\" \"us-ascii\")");
	else
		out_params(o, p->params, p->nparams);
	out_add(o, " ", 1);
	out_nstring(o, p->id);
	out_add(o, " ", 1);
	out_nstring(o, p->description);
	out_add(o, " ", 1);
	out_string(o, p->encoding);
	out_add(o, " ", 1);
	out_number(o, p->end - p->body_start);
	if (is_message_part(p)) {
		out_add(o, " ", 1);
		out_envelope(o, p->children->envelope, pool);
		out_add(o, " ", 1);
		out_body(o, p->children, extended, pool);
		out_add(o, " ", 1);
		out_number(o, p->body_lines);
	} else if (strcmp(p->type, "text") == 0) {
		out_add(o, " ", 1);
		out_number(o, p->body_lines);
	}
	if (extended) {
		out_add(o, " ", 1);
		out_nstring(o, p->md5);
		out_ext_common(o, p);
	}
	out_add(o, ")", 1);
}

char *
imap_mime_bodystructure(const struct imap_mime *m, int extended,
                        postern_pool_t *pool)
{
	struct out o = { NULL, 0, 0 };

	out_body(&o, m->root, extended, pool);
	return out_finish(&o, pool);
}

/* ---- sections ---------------------------------------------------------- */

static const struct postern_mime_part *
nth_child(const struct postern_mime_part *p, uint32_t n)
{
	const struct postern_mime_part *c = p->children;

	if (n == 0)
		return NULL;
	while (c != NULL && --n > 0)
		c = c->next;
	return c;
}

/* Part number n inside `p`.  `as_message`: p is a message whose body the
 * number addresses (the root, or what a message/rfc822 part holds): a
 * non-multipart message has one part, 1, the message itself seen as a
 * part (its header as MIME header, its body as content). */
static const struct postern_mime_part *
part_step(const struct postern_mime_part *p, uint32_t n, int as_message)
{
	if (is_multipart(p))
		return nth_child(p, n);
	if (as_message)
		return n == 1 ? p : NULL;
	if (is_message_part(p))
		return part_step(p->children, n, 1);
	return NULL;
}

int
imap_mime_section(const struct imap_mime *m, const uint32_t *parts,
                  size_t nparts, enum imap_section_what what,
                  uint64_t *start, uint64_t *len)
{
	const struct postern_mime_part *p = m->root, *msg;
	size_t i;

	for (i = 0; i < nparts; i++)
		if ((p = part_step(p, parts[i], i == 0)) == NULL)
			return -1;
	switch (what) {
	case IMAP_SECTION_ALL:
		*start = nparts == 0 ? p->header_start : p->body_start;
		*len = p->end - *start;
		return 0;
	case IMAP_SECTION_MIME:
		if (nparts == 0)
			return -1;
		*start = p->header_start;
		*len = p->body_start - p->header_start;
		return 0;
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_TEXT:
		if (nparts == 0)
			msg = p;
		else if (is_message_part(p))
			msg = p->children;
		else
			return -1;
		if (what == IMAP_SECTION_HEADER) {
			*start = msg->header_start;
			*len = msg->body_start - msg->header_start;
		} else {
			*start = msg->body_start;
			*len = msg->end - msg->body_start;
		}
		return 0;
	}
	return -1;
}

/* ---- HEADER.FIELDS (.NOT) ---------------------------------------------- */

/*
 * The header range is walked a line at a time through a small buffer,
 * never held.  A line is a field's first line, a continuation (it
 * begins with a blank: kept with its field), or the empty line that
 * ends the header.
 */

/* The octet at `pos`: 0..255, -1 past the range, -2 on a read error
 * (h->err set). */
static int
hbyte(struct imap_hbuf *h, uint64_t pos)
{
	size_t want;
	ssize_t n;

	if (pos >= h->end)
		return -1;
	if (pos < h->at || pos >= h->at + h->len) {
		want = h->end - pos < sizeof(h->buf) ? (size_t)(h->end - pos)
		                                     : sizeof(h->buf);
		n = h->st->msg_read(h->msg, pos, h->buf, want, h->err);
		if (n <= 0) {
			if (n == 0) {
				h->err->code = POSTERN_SE_CORRUPT;
				snprintf(h->err->text, sizeof(h->err->text),
				         "message shorter than its size");
			}
			return -2;
		}
		h->at = pos;
		h->len = (size_t)n;
	}
	return (unsigned char)h->buf[pos - h->at];
}

static int
field_listed(const struct imap_fields *f, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < f->nnames; i++)
		if (strlen(f->names[i]) == len &&
		    strncasecmp(f->names[i], name, len) == 0)
			return 1;
	return 0;
}

/* One octet of the result: written when it falls in [from, ...). */
static void
fields_put(struct imap_fields_walk *w, int c, char *dst, size_t *ndst,
           uint64_t from)
{
	if (dst != NULL && w->out >= from)
		dst[(*ndst)++] = (char)c;
	w->out++;
}

/* At a field's first line: is it kept?  -1 on a read error. */
static int
fields_decide(struct imap_hbuf *h, const struct imap_fields *f,
              uint64_t pos)
{
	uint64_t q, name_end = pos;
	char name[IMAP_FIELDS_MAX_NAME];
	int b;

	for (q = pos;; q++) {
		if ((b = hbyte(h, q)) == -2)
			return -1;
		if (b == -1 || b == '\n')
			return 0;          /* no colon: not a field */
		if (b == ':')
			break;
		if (b != ' ' && b != '\t')
			name_end = q + 1;
	}
	if (name_end - pos > sizeof(name))
		return f->which == 2;      /* longer than any listed name */
	for (q = pos; q < name_end; q++)
		name[q - pos] = (char)hbyte(h, q);
	return field_listed(f, name, (size_t)(name_end - pos)) ==
	       (f->which == 1);
}

int
imap_fields_walk(struct imap_hbuf *h, const struct imap_fields *f,
                 struct imap_fields_walk *w, char *dst, size_t *ndst,
                 uint64_t from, uint64_t to)
{
	size_t scratch = 0;
	int c, c1, c2, r;

	if (ndst == NULL)
		ndst = &scratch;
	while (w->ending < 3 && w->out < to) {
		if (w->ending) {
			fields_put(w, w->ending++ == 1 ? '\r' : '\n', dst, ndst,
			           from);
			continue;
		}
		if ((c = hbyte(h, w->pos)) == -2)
			return -1;
		if (w->in_line) {
			if (c == -1 || c == '\n')
				w->in_line = 0;
			if (c >= 0) {
				if (w->keep)
					fields_put(w, c, dst, ndst, from);
				w->pos++;
			}
			continue;
		}
		if ((c1 = hbyte(h, w->pos + 1)) == -2 ||
		    (c2 = hbyte(h, w->pos + 2)) == -2)
			return -1;
		/* The end, or the empty line (a line of at most two octets
		 * that starts with CR or LF). */
		if (c == -1 || ((c == '\r' || c == '\n') &&
		                (c == '\n' || c1 == -1 || c1 == '\n' ||
		                 c2 == -1))) {
			w->ending = 1;
			continue;
		}
		if (c != ' ' && c != '\t') {
			if ((r = fields_decide(h, f, w->pos)) < 0)
				return -1;
			w->keep = r;
		}
		w->in_line = 1;
	}
	return 0;
}

int
imap_mime_part_content(const struct imap_mime *m, const uint32_t *parts,
                       size_t nparts, const char **encoding,
                       uint64_t *start, uint64_t *len)
{
	const struct postern_mime_part *p = m->root;
	size_t i;

	for (i = 0; i < nparts; i++)
		if ((p = part_step(p, parts[i], i == 0)) == NULL)
			return -1;
	*encoding = "7bit";
	if (nparts > 0 && !is_multipart(p) && !is_message_part(p) &&
	    p->encoding != NULL)
		*encoding = p->encoding;
	return imap_mime_section(m, parts, nparts, IMAP_SECTION_ALL, start,
	                         len);
}

const struct postern_mime_envelope *
imap_mime_fields(const struct imap_mime *m)
{
	return m->root->envelope;
}

int64_t
imap_mime_date(const struct imap_mime *m, int *tz_minutes)
{
	const struct postern_mime_envelope *e = m->root->envelope;
	int64_t when;

	if (e == NULL || e->date == NULL ||
	    host->mime_parse_date(e->date, strlen(e->date), &when,
	    tz_minutes) < 0)
		return -1;
	return when;
}

/* ---- loading ----------------------------------------------------------- */

static void
set_err(struct postern_storage_err *err, enum postern_storage_error code,
        const char *text)
{
	err->code = code;
	snprintf(err->text, sizeof(err->text), "%s", text);
}

const struct imap_mime *
imap_mime_load_cached(const struct postern_storage *st, postern_mailbox_t *mb,
                      uint32_t uid, postern_pool_t *pool)
{
	struct imap_mime *m;
	const void *data;
	size_t len;

	if (!host_has_mime() || st->cache_get == NULL ||
	    st->cache_get(mb, uid, CACHE_FIELD, pool, &data, &len) != 1 ||
	    (m = host->pool_alloc(pool, sizeof(*m))) == NULL ||
	    (m->root = host->mime_deserialize(data, len, pool)) == NULL)
		return NULL;
	return m;
}

/* ref->msg open, or opened into it (the caller closes it). */
static int
msg_borrow(const struct postern_storage *st, postern_mailbox_t *mb,
           uint32_t uid, struct imap_msg_ref *ref,
           struct postern_storage_err *err)
{
	if (ref->msg != NULL)
		return 0;
	return st->msg_open(mb, uid, &ref->msg, &ref->sizes, err);
}

const struct imap_mime *
imap_mime_load(const struct postern_storage *st, postern_mailbox_t *mb,
               uint32_t uid, struct imap_msg_ref *ref, postern_pool_t *pool,
               struct postern_storage_err *err)
{
	struct imap_mime *m;
	postern_mime_parser_t *parser;
	struct imap_msg_ref own = { .msg = NULL };
	struct imap_msg_ref *r = ref != NULL ? ref : &own;
	const void *data;
	void *ser;
	size_t len;
	uint64_t off = 0;
	ssize_t n;
	char *buf;

	if (!host_has_mime()) {
		set_err(err, POSTERN_SE_NOTSUPPORTED,
		        "This server cannot parse MIME structure");
		return NULL;
	}
	m = host->pool_alloc(pool, sizeof(*m));
	if (st->cache_get != NULL &&
	    st->cache_get(mb, uid, CACHE_FIELD, pool, &data, &len) == 1 &&
	    (m->root = host->mime_deserialize(data, len, pool)) != NULL)
		return m;
	if (msg_borrow(st, mb, uid, r, err) < 0)
		return NULL;
	parser = host->mime_parser_create(pool, NULL);
	if ((buf = malloc(READ_BLOCK)) == NULL)
		abort();
	while ((n = st->msg_read(r->msg, off, buf, READ_BLOCK, err)) > 0) {
		host->mime_parser_feed(parser, buf, (size_t)n);
		off += (uint64_t)n;
	}
	free(buf);
	if (own.msg != NULL)
		st->msg_close(own.msg);
	if (n < 0) {
		host->log(module, POSTERN_LOG_WARNING,
		          "imap_mime: reading message uid %u failed at "
		          "octet %llu: %s", uid, (unsigned long long)off,
		          err->text);
		return NULL;
	}
	m->root = host->mime_parser_finish(parser);
	if (m->root->flags & POSTERN_MIME_DEGRADED) {
		/* the tree depends on the budget: parsed again next time
		 * rather than cached */
		host->log(module, POSTERN_LOG_NOTICE,
		          "imap_mime: message uid %u: the MIME structure "
		          "needs more than the memory budget "
		          "(imap.message_memory); answering from part of it",
		          uid);
		return m;
	}
	if (st->cache_set != NULL &&
	    (ser = host->mime_serialize(m->root, pool, &len)) != NULL) {
		if (st->cache_set(mb, uid, CACHE_FIELD, ser, len) < 0)
			host->log(module, POSTERN_LOG_DEBUG,
			          "imap_mime: caching the structure of uid "
			          "%u failed; it will be parsed again", uid);
	}
	return m;
}

/* ---- searching ---------------------------------------------------------- */

/*
 * Comparison "without regard to case" on UTF-8: both sides are folded
 * to lower case first.  The folding covers ASCII, Latin-1, Latin
 * Extended-A, Greek and Cyrillic, the scripts whose case a search in
 * mail commonly meets; other characters compare as they are.
 */
static uint32_t
fold_char(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c < 0x80)
		return c;
	if ((c >= 0xc0 && c <= 0xde && c != 0xd7) ||   /* Latin-1 */
	    (c >= 0x391 && c <= 0x3ab && c != 0x3a2) || /* Greek */
	    (c >= 0x410 && c <= 0x42f))                 /* Cyrillic */
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 &&
	    c != 0x138 && c != 0x149 && c != 0x17f) {
		/* Latin Extended-A: pairs, upper case first; the pairs
		 * shift by one between U+0138 and U+0149 and after U+0178 */
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
			return (c & 1) ? c + 1 : c;
		if (c == 0x178)
			return 0xff;
		return (c & 1) ? c : c + 1;
	}
	return c;
}

/* Appends the fold of UTF-8 in[0..len) to o; an incomplete sequence at
 * the end is left: returns how many octets were used.  A folded
 * character never takes more octets than the original (fold_char maps
 * only within the 1- and 2-octet ranges), so the room is made once and
 * the text, mostly ASCII, is written without a call per character. */
static size_t
fold_utf8(struct out *o, const unsigned char *in, size_t len)
{
	unsigned char *w = (unsigned char *)out_reserve(o, len);
	size_t i = 0, n, k;
	uint32_t c;

	while (i < len) {
		unsigned char b = in[i];

		if (b < 0x80) {
			*w++ = b >= 'A' && b <= 'Z' ? b + 32 : b;
			i++;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			c = b & 0x1f;
			n = 2;
		} else if ((b & 0xf0) == 0xe0) {
			c = b & 0x0f;
			n = 3;
		} else if ((b & 0xf8) == 0xf0) {
			c = b & 0x07;
			n = 4;
		} else {
			*w++ = b;   /* invalid: as it is */
			i++;
			continue;
		}
		if (i + n > len)
			break;   /* the rest comes with the next piece */
		for (k = 1; k < n && (in[i + k] & 0xc0) == 0x80; k++)
			c = c << 6 | (in[i + k] & 0x3f);
		if (k < n) {
			*w++ = b;   /* a broken sequence: its first octet */
			i++;
			continue;
		}
		c = fold_char(c);
		if (c < 0x80) {
			*w++ = (unsigned char)c;
		} else if (c < 0x800) {
			*w++ = (unsigned char)(0xc0 | c >> 6);
			*w++ = (unsigned char)(0x80 | (c & 0x3f));
		} else {
			memcpy(w, in + i, n);
			w += n;
		}
		i += n;
	}
	o->len = (size_t)((char *)w - o->data);
	o->data[o->len] = '\0';
	return i;
}

static char *
fold_string(const char *s, size_t len)
{
	struct out o = { NULL, 0, 0 };

	fold_utf8(&o, (const unsigned char *)s, len);
	out_add(&o, "", 0);
	return o.data;
}

/* A streaming substring search of several needles over one folded
 * text: the window keeps the last (longest needle not found) - 1 octets
 * so a match across pieces is found.  While the message's own header
 * is fed, only the TEXT needles look (BODY does not search it). */
struct matcher {
	struct imap_mime_needle *n;
	char **fneedle;       /* folded, malloc'd */
	size_t *nlen;
	size_t count, left;   /* needles; those not found yet */
	size_t maxlen;        /* longest needle not found yet */
	int header_mode;
	struct out window;
	unsigned char pending[4];
	size_t npending;
};

static int
matcher_done(const struct matcher *mt)
{
	return mt->left == 0;
}

/* Looks for each needle in the window, then keeps only the octets a
 * match starting there could still need. */
static void
matcher_scan(struct matcher *mt)
{
	size_t i, keep = 0;

	for (i = 0; i < mt->count; i++) {
		if (mt->n[i].found ||
		    (mt->header_mode && !mt->n[i].with_header))
			continue;
		if (mt->window.len >= mt->nlen[i] &&
		    memmem(mt->window.data, mt->window.len, mt->fneedle[i],
		           mt->nlen[i]) != NULL) {
			mt->n[i].found = 1;
			mt->left--;
			continue;
		}
		if (mt->nlen[i] > keep)
			keep = mt->nlen[i];
	}
	keep = keep > 0 ? keep - 1 : 0;
	if (keep < mt->window.len) {
		memmove(mt->window.data,
		        mt->window.data + mt->window.len - keep, keep);
		mt->window.len = keep;
	}
	mt->maxlen = keep + 1;
}

static void
matcher_feed(void *arg, const char *data, size_t len)
{
	struct matcher *mt = arg;
	size_t used;
	const unsigned char *in = (const unsigned char *)data;

	while (len > 0 && !matcher_done(mt)) {
		if (mt->npending > 0) {
			/* complete a character split between pieces */
			mt->pending[mt->npending++] = *in++;
			len--;
			used = fold_utf8(&mt->window, mt->pending,
			                 mt->npending);
			if (used == mt->npending || mt->npending == 4) {
				/* complete, or never will be: as it is */
				out_add(&mt->window, (char *)mt->pending +
				        used, mt->npending - used);
				mt->npending = 0;
			}
			continue;
		}
		used = fold_utf8(&mt->window, in, len);
		if (used < len) {
			mt->npending = len - used;
			memcpy(mt->pending, in + used, mt->npending);
		}
		len = 0;
	}
	/* scan in large steps: the kept tail is rescanned each time */
	if (!matcher_done(mt) && mt->window.len >= 2 * mt->maxlen &&
	    mt->window.len >= MATCH_STEP)
		matcher_scan(mt);
}

/* Fold-aware substring test on a whole string. */
static int
contains_folded(const char *hay, size_t len, const char *folded_needle)
{
	char *h = fold_string(hay, len);
	int found = strstr(h, folded_needle) != NULL;

	free(h);
	return found;
}

/* An address field matches by its addresses too, as "name <box@host>"
 * with comments, quoting and folding gone (Dovecot's SEARCH FROM, TO,
 * CC, BCC): "a (c)@ (c) b" is the address a@b. */
static int
addresses_match(const char *value, size_t len, const char *fneedle,
                postern_pool_t *pool)
{
	struct postern_mime_address *ad;
	const char *name;
	char *one;
	size_t n, i, nlen;
	int found = 0;

	ad = host->mime_parse_addresses(value, len, pool, &n);
	for (i = 0; ad != NULL && i < n && !found; i++) {
		if (ad[i].group || ad[i].mailbox == NULL)
			continue;
		name = ad[i].name == NULL ? NULL :
		       host->mime_decode_words(ad[i].name, strlen(ad[i].name),
		                               pool, &nlen);
		one = host->pool_printf(pool, "%s%s<%s@%s>",
		                        name != NULL ? name : "",
		                        name != NULL ? " " : "", ad[i].mailbox,
		                        ad[i].host != NULL ? ad[i].host : "");
		/* NULL: over the message's memory budget, no match */
		found = one != NULL && contains_folded(one, strlen(one),
		                                       fneedle);
	}
	return found;
}

static int
is_address_field(const char *name)
{
	static const char *const fields[] = { "from", "to", "cc", "bcc",
		"sender", "reply-to" };
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcasecmp(name, fields[i]) == 0)
			return 1;
	return 0;
}

int
imap_mime_header_matches(const char *hdr, size_t len, const char *field,
                         const char *needle, postern_pool_t *pool)
{
	struct postern_mime_header_iter it = { hdr, len, 0 };
	struct postern_mime_field f;
	char *fneedle = fold_string(needle, strlen(needle));
	const char *value;
	size_t vlen;
	int found = 0;

	while (!found && host->mime_header_next(&it, pool, &f)) {
		if (strcasecmp(f.name, field) != 0)
			continue;
		if (*fneedle == '\0') {
			found = 1;
			break;
		}
		value = host->mime_decode_words(f.value, f.value_len, pool,
		                                &vlen);
		/* NULL: over the message's memory budget, no match */
		found = value != NULL && contains_folded(value, vlen, fneedle);
		if (!found && is_address_field(field))
			found = addresses_match(f.value, f.value_len, fneedle,
			                        pool);
	}
	free(fneedle);
	return found;
}

/* Reads [start, start + len) of the message and feeds it to fn. */
static int
read_range(const struct postern_storage *st, postern_msg_t *msg,
           uint64_t start, uint64_t len, char *buf,
           void (*fn)(void *arg, const char *data, size_t len), void *arg,
           int (*done)(void *done_arg), void *done_arg,
           struct postern_storage_err *err)
{
	ssize_t n;
	size_t want;

	while (len > 0 && !done(done_arg)) {
		want = len < READ_BLOCK ? (size_t)len : READ_BLOCK;
		if ((n = st->msg_read(msg, start, buf, want, err)) < 0)
			return -1;
		if (n == 0)
			break;   /* shorter than the structure says */
		fn(arg, buf, (size_t)n);
		start += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

struct search {
	const struct postern_storage *st;
	postern_msg_t *msg;
	postern_pool_t *pool;
	struct matcher mt;
	int any_text;        /* a TEXT needle: the root header is searched */
	const int *cancel;
	struct out header;
	char *buf;
	struct postern_storage_err *err;
};

/* Stops reading: every needle was found, or the job was cancelled. */
static int
search_found(void *arg)
{
	struct search *s = arg;

	return matcher_done(&s->mt) ||
	       (s->cancel != NULL &&
	        __atomic_load_n(s->cancel, __ATOMIC_RELAXED));
}

static void
collect_header(void *arg, const char *data, size_t len)
{
	struct search *s = arg;

	if (s->header.len + len <= MAX_SEARCH_HEADER)
		out_add(&s->header, data, len);
}

/* A header's fields, RFC 2047 decoded, one "name: value" line each. */
static int
search_header(struct search *s, const struct postern_mime_part *p)
{
	struct postern_mime_header_iter it;
	struct postern_mime_field f;
	const char *value;
	size_t vlen;

	s->header.len = 0;
	if (read_range(s->st, s->msg, p->header_start,
	               p->body_start - p->header_start, s->buf,
	               collect_header, s, search_found, s, s->err) < 0)
		return -1;
	it.data = s->header.data != NULL ? s->header.data : "";
	it.len = s->header.len;
	it.pos = 0;
	while (!matcher_done(&s->mt) &&
	       host->mime_header_next(&it, s->pool, &f)) {
		value = host->mime_decode_words(f.value, f.value_len,
		                                s->pool, &vlen);
		if (value == NULL)
			break;   /* over the message's memory budget */
		matcher_feed(&s->mt, f.name, strlen(f.name));
		matcher_feed(&s->mt, ": ", 2);
		matcher_feed(&s->mt, value, vlen);
		matcher_feed(&s->mt, "\n", 1);
	}
	return 0;
}

static void
decoded_out(void *arg, const char *data, size_t len)
{
	matcher_feed(arg, data, len);
}

static void
feed_decoder(void *arg, const char *data, size_t len)
{
	host->mime_decoder_feed(arg, data, len);
}

/* A leaf part's body, decoded and converted when it is text. */
static int
search_body(struct search *s, const struct postern_mime_part *p)
{
	postern_mime_decoder_t *d;
	const char *charset = NULL;
	int rc;

	if (strcmp(p->type, "text") != 0 && strcmp(p->type, "message") != 0)
		return 0;   /* images and the like hold no text to find */
	if (strcmp(p->type, "text") == 0)
		charset = postern_mime_param_get(p->params, p->nparams,
		                                 "charset");
	d = host->mime_decoder_create(p->encoding, charset, decoded_out,
	                              &s->mt);
	rc = read_range(s->st, s->msg, p->body_start, p->end - p->body_start,
	                s->buf, feed_decoder, d, search_found, s, s->err);
	if (rc == 0)
		host->mime_decoder_finish(d);
	host->mime_decoder_free(d);
	/* a part boundary is not text: no match across it */
	matcher_feed(&s->mt, "\n", 1);
	return rc;
}

/* `root`: p is the message itself, whose header only TEXT searches;
 * an attached message's header is body text of the one holding it. */
static int
search_part(struct search *s, const struct postern_mime_part *p, int root)
{
	const struct postern_mime_part *c;

	if (matcher_done(&s->mt))
		return 0;
	if ((p->flags & POSTERN_MIME_MESSAGE) && root && s->any_text) {
		s->mt.header_mode = 1;
		if (search_header(s, p) < 0)
			return -1;
		/* what the header leaves in the window is no body text */
		matcher_scan(&s->mt);
		s->mt.window.len = 0;
		s->mt.npending = 0;
		s->mt.header_mode = 0;
	} else if ((p->flags & POSTERN_MIME_MESSAGE) && !root &&
	           search_header(s, p) < 0) {
		return -1;
	}
	if (p->children == NULL)
		return matcher_done(&s->mt) ? 0 : search_body(s, p);
	for (c = p->children; c != NULL && !matcher_done(&s->mt);
	     c = c->next)
		if (search_part(s, c, 0) < 0)
			return -1;
	return 0;
}

int
imap_mime_search_texts(const struct postern_storage *st,
                       postern_mailbox_t *mb, uint32_t uid,
                       const struct imap_mime *m, struct imap_msg_ref *ref,
                       struct imap_mime_needle *needles, size_t n,
                       const int *cancel, postern_pool_t *pool,
                       struct postern_storage_err *err)
{
	struct search s;
	struct imap_msg_ref own = { .msg = NULL };
	struct imap_msg_ref *r = ref != NULL ? ref : &own;
	size_t i;
	int rc;

	memset(&s, 0, sizeof(s));
	if (msg_borrow(st, mb, uid, r, err) < 0)
		return -1;
	s.msg = r->msg;
	s.st = st;
	s.pool = pool;
	s.err = err;
	s.cancel = cancel;
	s.mt.n = needles;
	s.mt.count = n;
	s.mt.fneedle = calloc(n + 1, sizeof(*s.mt.fneedle));
	s.mt.nlen = calloc(n + 1, sizeof(*s.mt.nlen));
	if (s.mt.fneedle == NULL || s.mt.nlen == NULL)
		abort();
	for (i = 0; i < n; i++) {
		s.mt.fneedle[i] = fold_string(needles[i].needle,
		                              strlen(needles[i].needle));
		s.mt.nlen[i] = strlen(s.mt.fneedle[i]);
		needles[i].found = s.mt.nlen[i] == 0;
		if (!needles[i].found)
			s.mt.left++;
		if (s.mt.nlen[i] > s.mt.maxlen)
			s.mt.maxlen = s.mt.nlen[i];
		if (needles[i].with_header)
			s.any_text = 1;
	}
	if ((s.buf = malloc(READ_BLOCK)) == NULL)
		abort();
	rc = search_part(&s, m->root, 1);
	if (rc == 0 && !matcher_done(&s.mt))
		matcher_scan(&s.mt);
	free(s.buf);
	free(s.header.data);
	free(s.mt.window.data);
	for (i = 0; i < n; i++)
		free(s.mt.fneedle[i]);
	free(s.mt.fneedle);
	free(s.mt.nlen);
	if (own.msg != NULL)
		st->msg_close(own.msg);
	if (rc < 0) {
		host->log(module, POSTERN_LOG_WARNING,
		          "imap_mime: reading message uid %u for SEARCH "
		          "failed: %s", uid, err->text);
		return -1;
	}
	return 0;
}

int
imap_mime_search_text(const struct postern_storage *st,
                      postern_mailbox_t *mb, uint32_t uid,
                      const struct imap_mime *m, const char *needle,
                      int with_header, postern_pool_t *pool,
                      struct postern_storage_err *err)
{
	struct imap_mime_needle n = { needle, with_header, 0 };

	if (imap_mime_search_texts(st, mb, uid, m, NULL, &n, 1, NULL, pool,
	                           err) < 0)
		return -1;
	return n.found;
}
