/*
 * mime_address.c - RFC 5322 address lists (section 3.4) with groups, in
 * the shape IMAP's ENVELOPE wants (RFC 3501 7.4.2).
 *
 * The value is first cut into tokens (atoms, quoted strings, domain
 * literals, the specials < > @ , ; : .), comments dropped (the last one
 * after an address with no display name becomes the name, as old
 * "user@host (Real Name)" mail expects).  Then each comma-separated item
 * is a group start "name:", a group end ";", or a mailbox:
 * [phrase] "<" [route ":"] local "@" domain ">" or local "@" domain.
 * Obsolete syntax (RFC 5322 4.4: routes, empty list elements, CFWS
 * anywhere, a phrase with dots) is accepted; what still does not parse
 * gives the parts it has (mailbox or host NULL), never an error.
 *
 * Time and memory are linear in the value: each token is copied once at
 * its own size, and each item's scans cover only that item.  The tokens
 * and copies come from the pool through pool_try_alloc; past its budget
 * the list ends with the addresses read so far.
 */
#include <string.h>

#include "mime.h"
#include "pool.h"

#define MAX_ADDRESSES 5000
/* Tokens read from one value: 5000 addresses of a dozen tokens each;
 * what follows is not looked at. */
#define MAX_TOKENS 65536

enum tok_kind { T_WORD, T_QUOTED, T_LITERAL, T_SPECIAL };

struct tok {
	const char *text;      /* T_WORD, T_QUOTED, T_LITERAL (pool) */
	const char *comment;   /* the comment right after it, if any */
	unsigned char kind;    /* enum tok_kind */
	char ch;               /* T_SPECIAL */
	unsigned char space_before; /* white space or a comment preceded it */
};

/* The token array, grown in the pool by doubling (so its copies add up
 * to twice its final size). */
struct toks {
	struct tok *t;
	size_t n, cap;
};

static int
is_special(char ch)
{
	return strchr("<>@,;:.", ch) != NULL && ch != '\0';
}

static int
is_atom_char(char ch)
{
	return (unsigned char)ch > ' ' && ch != 0x7f && ch != '"' &&
	       ch != '(' && ch != ')' && ch != '[' && ch != ']' &&
	       ch != '\\' && !is_special(ch);
}

/* A new token at the end of ts, or NULL over the pool's budget. */
static struct tok *
tok_add(struct toks *ts, postern_pool_t *pool)
{
	struct tok *grown;
	size_t cap;

	if (ts->n == ts->cap) {
		cap = ts->cap == 0 ? 64 : ts->cap * 2;
		if ((grown = pool_try_alloc(pool, cap * sizeof(*grown))) ==
		    NULL)
			return NULL;
		if (ts->n > 0)
			memcpy(grown, ts->t, ts->n * sizeof(*grown));
		ts->t = grown;
		ts->cap = cap;
	}
	return memset(&ts->t[ts->n], 0, sizeof(ts->t[0]));
}

/* Cuts s[0..len) into tokens; stops at MAX_TOKENS or when the pool's
 * budget is spent. */
static void
tokenize(const char *s, size_t len, postern_pool_t *pool, struct toks *ts)
{
	size_t i = 0, start;
	const char *comment;
	struct tok *t;

	while (ts->n < MAX_TOKENS) {
		comment = NULL;
		start = i;
		mime_skip_cfws_comment(s, len, &i, pool, &comment);
		if (ts->n > 0 && comment != NULL)
			ts->t[ts->n - 1].comment = comment;
		if (i >= len || (t = tok_add(ts, pool)) == NULL)
			return;
		t->space_before = i > start;
		if (s[i] == '"') {
			t->kind = T_QUOTED;
			t->text = mime_quoted_string(s, len, &i, pool);
		} else if (s[i] == '[') {
			start = i;
			while (i < len && s[i] != ']')
				i++;
			if (i < len)
				i++;
			t->kind = T_LITERAL;
			t->text = pool_try_strndup(pool, s + start, i - start);
		} else if (is_special(s[i])) {
			t->kind = T_SPECIAL;
			t->ch = s[i++];
		} else {
			start = i;
			while (i < len && is_atom_char(s[i]))
				i++;
			if (i == start)
				i++;    /* a stray ')', ']' or '\\' */
			t->kind = T_WORD;
			t->text = pool_try_strndup(pool, s + start, i - start);
		}
		if (t->kind != T_SPECIAL && t->text == NULL)
			return;   /* over the budget */
		ts->n++;
	}
}

static int
is_sp(const struct tok *t, char ch)
{
	return t->kind == T_SPECIAL && t->ch == ch;
}

/* Joins tokens [a, b) as text: with `spaces`, a space wherever the
 * source had white space (a phrase); without, tightly (a local part or
 * a domain).  NULL for an empty range. */
static char *
join(const struct tok *t, size_t a, size_t b, int spaces,
     postern_pool_t *pool)
{
	size_t i, n, len = 0;
	char *d;

	if (a >= b)
		return NULL;
	for (i = a; i < b; i++)
		len += (t[i].kind == T_SPECIAL ? 1 : strlen(t[i].text)) + 1;
	if ((d = pool_try_alloc(pool, len + 1)) == NULL)
		return NULL;
	for (len = 0, i = a; i < b; i++) {
		if (spaces && i > a && t[i].space_before)
			d[len++] = ' ';
		if (t[i].kind == T_SPECIAL) {
			d[len++] = t[i].ch;
		} else {
			n = strlen(t[i].text);
			memcpy(d + len, t[i].text, n);
			len += n;
		}
	}
	return d;
}

/* local "@" domain in tokens [a, b). */
static void
addr_spec(const struct tok *t, size_t a, size_t b, postern_pool_t *pool,
          struct postern_mime_address *out)
{
	size_t at;

	for (at = a; at < b && !is_sp(&t[at], '@'); at++)
		;
	out->mailbox = join(t, a, at, 0, pool);
	out->host = at < b ? join(t, at + 1, b, 0, pool) : NULL;
}

/* One mailbox in tokens [a, b). */
static void
mailbox(const struct tok *t, size_t a, size_t b, postern_pool_t *pool,
        struct postern_mime_address *out)
{
	size_t lt, gt, colon;

	for (lt = a; lt < b && !is_sp(&t[lt], '<'); lt++)
		;
	if (lt == b) {
		addr_spec(t, a, b, pool, out);
		if (b > a && t[b - 1].comment != NULL)
			out->name = t[b - 1].comment;
		return;
	}
	out->name = join(t, a, lt, 1, pool);
	for (gt = lt + 1; gt < b && !is_sp(&t[gt], '>'); gt++)
		;
	/* obs-route: "@a,@b:" before the address */
	colon = lt + 1;
	if (colon < gt && is_sp(&t[colon], '@')) {
		while (colon < gt && !is_sp(&t[colon], ':'))
			colon++;
		if (colon < gt) {
			out->route = join(t, lt + 1, colon, 0, pool);
			colon++;
		} else {
			colon = lt + 1;
		}
	}
	addr_spec(t, colon, gt, pool, out);
}

struct postern_mime_address *
mime_parse_addresses(const char *value, size_t len, postern_pool_t *pool,
                     size_t *n)
{
	struct toks ts = { NULL, 0, 0 };
	const struct tok *t;
	struct postern_mime_address *out, *a;
	size_t nt, i, j, count = 0, cap = 16;
	int in_group = 0, angle;

	*n = 0;
	tokenize(value, len, pool, &ts);
	t = ts.t;
	nt = ts.n;
	if ((out = pool_try_alloc(pool, cap * sizeof(*out))) == NULL)
		return NULL;
	/* over the budget, the addresses so far (a group left open is
	 * closed below) */
	for (i = 0; i < nt && count + 2 < MAX_ADDRESSES &&
	     !pool_exhausted(pool);) {
		if (count + 2 >= cap) {
			struct postern_mime_address *grown;

			grown = pool_try_alloc(pool, 2 * cap * sizeof(*out));
			if (grown == NULL)
				break;
			memcpy(grown, out, count * sizeof(*out));
			out = grown;
			cap *= 2;
		}
		if (is_sp(&t[i], ',')) {
			i++;
			continue;
		}
		if (is_sp(&t[i], ';')) {
			if (in_group) {
				a = &out[count++];
				a->group = 1;
				in_group = 0;
			}
			i++;
			continue;
		}
		/* the item: up to ',' or ';' outside <>, or a group's ':' */
		angle = 0;
		for (j = i; j < nt; j++) {
			if (is_sp(&t[j], '<'))
				angle = 1;
			else if (is_sp(&t[j], '>'))
				angle = 0;
			else if (!angle && (is_sp(&t[j], ',') ||
			                    is_sp(&t[j], ';')))
				break;
			else if (!angle && !in_group && is_sp(&t[j], ':'))
				break;
		}
		a = &out[count++];
		if (j < nt && is_sp(&t[j], ':')) {
			a->group = 1;
			a->mailbox = join(t, i, j, 1, pool);
			if (a->mailbox == NULL)
				a->mailbox = "";
			in_group = 1;
			i = j + 1;
			continue;
		}
		mailbox(t, i, j, pool, a);
		if (pool_exhausted(pool) || (a->mailbox == NULL &&
		    a->host == NULL && a->name == NULL))
			count--;   /* "<>" or garbage alone, or cut short */
		i = j;
	}
	if (in_group)
		out[count++].group = 1;
	*n = count;
	return count > 0 ? out : NULL;
}
