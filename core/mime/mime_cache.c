/*
 * mime_cache.c - a part tree as a compact byte string and back, for the
 * storage's per-message cache.
 *
 * Format version 1: the magic "PMT" and the version octet, then the root
 * part; a part is
 *
 *   flags, header_start, body_start - header_start, end - body_start,
 *   body_lines, nchildren                                    (varints)
 *   type, subtype, id, description, encoding, disposition,
 *   location, md5                                            (strings)
 *   nparams, then name, value, extended per parameter
 *   ndisposition_params, likewise
 *   nlanguages, then the tags
 *   with POSTERN_MIME_MESSAGE: the ten envelope strings
 *   the children, in order
 *
 * A varint is 7 bits per octet, least significant first; a string is a
 * varint 0 for NULL or length + 1, then the octets.  The reader checks
 * everything against the rest of the input and the tree's own
 * invariants (children inside their parent, in order; a message part's
 * one child starting at its body), so any corrupt entry is refused.
 *
 * Both directions allocate through pool_try_alloc (the writer's buffer
 * through realloc): over the pool's budget they return NULL, as for an
 * entry that cannot be written or read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "pool.h"

#define CACHE_VERSION 1
#define MAX_DEPTH 200          /* guards the reader's recursion */
#define MAX_NODES 100000

/* ---- writing ---------------------------------------------------------- */

struct wbuf {
	unsigned char *data;
	size_t len, cap;
	int failed;     /* memory was short */
};

static void
w_bytes(struct wbuf *w, const void *p, size_t n)
{
	unsigned char *grown;
	size_t cap;

	if (w->failed)
		return;
	if (w->cap - w->len < n) {
		cap = w->cap == 0 ? 512 : w->cap;
		while (cap - w->len < n && cap <= SIZE_MAX / 2)
			cap *= 2;
		if (cap - w->len < n ||
		    (grown = realloc(w->data, cap)) == NULL) {
			w->failed = 1;
			return;
		}
		w->data = grown;
		w->cap = cap;
	}
	memcpy(w->data + w->len, p, n);
	w->len += n;
}

static void
w_varint(struct wbuf *w, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	w_bytes(w, b, n);
}

static void
w_string(struct wbuf *w, const char *s)
{
	size_t n;

	if (s == NULL) {
		w_varint(w, 0);
		return;
	}
	n = strlen(s);
	w_varint(w, (uint64_t)n + 1);
	w_bytes(w, s, n);
}

static void
w_params(struct wbuf *w, const struct postern_mime_param *p, uint32_t n)
{
	uint32_t i;

	w_varint(w, n);
	for (i = 0; i < n; i++) {
		w_string(w, p[i].name);
		w_string(w, p[i].value);
		w_varint(w, p[i].extended ? 1 : 0);
	}
}

static void
w_part(struct wbuf *w, const struct postern_mime_part *p)
{
	const struct postern_mime_envelope *e = p->envelope;
	const struct postern_mime_part *c;
	uint32_t i;

	w_varint(w, p->flags & (e != NULL ? ~0u : ~POSTERN_MIME_MESSAGE));
	w_varint(w, p->header_start);
	w_varint(w, p->body_start - p->header_start);
	w_varint(w, p->end - p->body_start);
	w_varint(w, p->body_lines);
	w_varint(w, p->nchildren);
	w_string(w, p->type);
	w_string(w, p->subtype);
	w_string(w, p->id);
	w_string(w, p->description);
	w_string(w, p->encoding);
	w_string(w, p->disposition);
	w_string(w, p->location);
	w_string(w, p->md5);
	w_params(w, p->params, p->nparams);
	w_params(w, p->disposition_params, p->ndisposition_params);
	w_varint(w, p->nlanguages);
	for (i = 0; i < p->nlanguages; i++)
		w_string(w, p->languages[i]);
	if (e != NULL && (p->flags & POSTERN_MIME_MESSAGE)) {
		w_string(w, e->date);
		w_string(w, e->subject);
		w_string(w, e->from);
		w_string(w, e->sender);
		w_string(w, e->reply_to);
		w_string(w, e->to);
		w_string(w, e->cc);
		w_string(w, e->bcc);
		w_string(w, e->in_reply_to);
		w_string(w, e->message_id);
	}
	for (c = p->children; c != NULL; c = c->next)
		w_part(w, c);
}

void *
mime_serialize(const struct postern_mime_part *root, postern_pool_t *pool,
               size_t *len)
{
	struct wbuf w = { NULL, 0, 0, 0 };
	unsigned char magic[4] = { 'P', 'M', 'T', CACHE_VERSION };
	void *out = NULL;

	*len = 0;
	w_bytes(&w, magic, sizeof(magic));
	w_part(&w, root);
	if (!w.failed && (out = pool_try_alloc(pool, w.len)) != NULL) {
		memcpy(out, w.data, w.len);
		*len = w.len;
	}
	free(w.data);
	return out;
}

/* ---- reading ---------------------------------------------------------- */

struct rbuf {
	const unsigned char *p, *end;
	postern_pool_t *pool;
	uint32_t nodes;
	int bad;
};

static uint64_t
r_varint(struct rbuf *r)
{
	uint64_t v = 0;
	unsigned shift = 0;

	while (!r->bad) {
		if (r->p >= r->end || shift > 63) {
			r->bad = 1;
			break;
		}
		v |= (uint64_t)(*r->p & 0x7f) << shift;
		if ((*r->p++ & 0x80) == 0)
			return v;
		shift += 7;
	}
	return 0;
}

/* A count of items each taking at least one more octet. */
static uint32_t
r_count(struct rbuf *r)
{
	uint64_t n = r_varint(r);

	if (n > (uint64_t)(r->end - r->p) || n > UINT32_MAX)
		r->bad = 1;
	return r->bad ? 0 : (uint32_t)n;
}

static const char *
r_string(struct rbuf *r)
{
	uint64_t n = r_varint(r);
	const char *s;

	if (r->bad || n == 0)
		return NULL;
	n--;
	if (n > (uint64_t)(r->end - r->p) ||
	    memchr(r->p, '\0', (size_t)n) != NULL) {
		r->bad = 1;
		return NULL;
	}
	if ((s = pool_try_strndup(r->pool, (const char *)r->p, (size_t)n)) ==
	    NULL) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	return s;
}

static const struct postern_mime_param *
r_params(struct rbuf *r, uint32_t *n)
{
	struct postern_mime_param *p;
	uint32_t i;

	*n = r_count(r);
	if (*n == 0)
		return NULL;
	if ((p = pool_try_alloc(r->pool, *n * sizeof(*p))) == NULL) {
		r->bad = 1;
		*n = 0;
		return NULL;
	}
	for (i = 0; i < *n && !r->bad; i++) {
		p[i].name = r_string(r);
		p[i].value = r_string(r);
		p[i].extended = r_varint(r) != 0;
		if (p[i].name == NULL || p[i].value == NULL)
			r->bad = 1;
	}
	return p;
}

static void
r_envelope(struct rbuf *r, struct postern_mime_envelope *e)
{
	e->date = r_string(r);
	e->subject = r_string(r);
	e->from = r_string(r);
	e->sender = r_string(r);
	e->reply_to = r_string(r);
	e->to = r_string(r);
	e->cc = r_string(r);
	e->bcc = r_string(r);
	e->in_reply_to = r_string(r);
	e->message_id = r_string(r);
}

static int
add_overflows(uint64_t a, uint64_t b)
{
	return a + b < a;
}

static struct postern_mime_part *r_part(struct rbuf *r,
                                        struct postern_mime_part *parent,
                                        uint64_t min_start, int depth);

/* The children of `p`: in order, inside its body. */
static void
r_children(struct rbuf *r, struct postern_mime_part *p, uint32_t n,
           int depth)
{
	struct postern_mime_part *c, *last = NULL;
	uint64_t min_start = p->body_start;
	uint32_t i;

	for (i = 0; i < n && !r->bad; i++) {
		if ((c = r_part(r, p, min_start, depth + 1)) == NULL)
			return;
		/* a message/rfc822 part holds one message, at its body */
		if (c->end > p->end || ((c->flags & POSTERN_MIME_MESSAGE) &&
		    (n != 1 || c->header_start != p->body_start))) {
			r->bad = 1;
			return;
		}
		if (last != NULL)
			last->next = c;
		else
			p->children = c;
		last = c;
		min_start = c->end;
	}
	p->nchildren = n;
}

static struct postern_mime_part *
r_part(struct rbuf *r, struct postern_mime_part *parent, uint64_t min_start,
       int depth)
{
	struct postern_mime_part *p;
	struct postern_mime_envelope *e;
	const char **langs;
	uint64_t hlen, blen;
	uint32_t nchildren, i;

	if (depth > MAX_DEPTH || ++r->nodes > MAX_NODES) {
		r->bad = 1;
		return NULL;
	}
	if ((p = pool_try_alloc(r->pool, sizeof(*p))) == NULL) {
		r->bad = 1;
		return NULL;
	}
	p->parent = parent;
	p->flags = (unsigned)r_varint(r);
	p->header_start = r_varint(r);
	hlen = r_varint(r);
	blen = r_varint(r);
	p->body_lines = r_varint(r);
	nchildren = r_count(r);
	if (r->bad || p->header_start < min_start ||
	    add_overflows(p->header_start, hlen) ||
	    add_overflows(p->header_start + hlen, blen) ||
	    p->body_lines > blen) {
		r->bad = 1;
		return NULL;
	}
	p->body_start = p->header_start + hlen;
	p->end = p->body_start + blen;
	p->type = r_string(r);
	p->subtype = r_string(r);
	p->id = r_string(r);
	p->description = r_string(r);
	p->encoding = r_string(r);
	p->disposition = r_string(r);
	p->location = r_string(r);
	p->md5 = r_string(r);
	p->params = r_params(r, &p->nparams);
	p->disposition_params = r_params(r, &p->ndisposition_params);
	if ((p->nlanguages = r_count(r)) > 0) {
		p->languages = langs = pool_try_alloc(
			r->pool, p->nlanguages * sizeof(*langs));
		if (langs == NULL)
			r->bad = 1;
		for (i = 0; i < p->nlanguages && !r->bad; i++)
			if ((langs[i] = r_string(r)) == NULL)
				r->bad = 1;
	}
	if (p->type == NULL || p->subtype == NULL || p->encoding == NULL)
		r->bad = 1;
	if (p->flags & POSTERN_MIME_MESSAGE) {
		if ((p->envelope = e = pool_try_alloc(r->pool,
		                                      sizeof(*e))) == NULL)
			r->bad = 1;
		else
			r_envelope(r, e);
	}
	if (r->bad)
		return NULL;
	r_children(r, p, nchildren, depth);
	return r->bad ? NULL : p;
}

struct postern_mime_part *
mime_deserialize(const void *data, size_t len, postern_pool_t *pool)
{
	struct rbuf r = { data, (const unsigned char *)data + len, pool, 0,
	                  0 };
	struct postern_mime_part *root;

	if (data == NULL || len < 4 || memcmp(data, "PMT", 3) != 0 ||
	    r.p[3] != CACHE_VERSION)
		return NULL;
	r.p += 4;
	root = r_part(&r, NULL, 0, 0);
	if (root == NULL || r.bad || r.p != r.end ||
	    !(root->flags & POSTERN_MIME_MESSAGE) || root->header_start != 0)
		return NULL;
	return root;
}
