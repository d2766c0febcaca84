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
 */
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "pool.h"
#include "xalloc.h"

#define MAX_ADDRESSES 5000

enum tok_kind { T_WORD, T_QUOTED, T_LITERAL, T_SPECIAL };

struct tok {
	enum tok_kind kind;
	char ch;               /* T_SPECIAL */
	const char *text;      /* T_WORD, T_QUOTED, T_LITERAL (pool) */
	int space_before;      /* white space or a comment preceded it */
	const char *comment;   /* the comment right after it, if any */
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

static size_t
tokenize(const char *s, size_t len, postern_pool_t *pool, struct tok *t)
{
	size_t i = 0, n = 0, start;
	const char *comment;

	for (;;) {
		comment = NULL;
		start = i;
		mime_skip_cfws_comment(s, len, &i, pool, &comment);
		if (n > 0 && comment != NULL)
			t[n - 1].comment = comment;
		if (i >= len)
			break;
		memset(&t[n], 0, sizeof(t[n]));
		t[n].space_before = i > start;
		if (s[i] == '"') {
			t[n].kind = T_QUOTED;
			t[n].text = mime_quoted_string(s, len, &i, pool);
		} else if (s[i] == '[') {
			start = i;
			while (i < len && s[i] != ']')
				i++;
			if (i < len)
				i++;
			t[n].kind = T_LITERAL;
			t[n].text = pool_strndup(pool, s + start, i - start);
		} else if (is_special(s[i])) {
			t[n].kind = T_SPECIAL;
			t[n].ch = s[i++];
		} else {
			start = i;
			while (i < len && is_atom_char(s[i]))
				i++;
			if (i == start)
				i++;    /* a stray ')', ']' or '\\' */
			t[n].kind = T_WORD;
			t[n].text = pool_strndup(pool, s + start, i - start);
		}
		n++;
	}
	return n;
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
	d = pool_alloc(pool, len + 1);
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
	struct tok *t = xcalloc(len + 1, sizeof(*t));
	struct postern_mime_address *out, *a;
	size_t nt, i, j, count = 0, cap = 16;
	int in_group = 0, angle;

	nt = tokenize(value, len, pool, t);
	out = pool_alloc(pool, cap * sizeof(*out));
	for (i = 0; i < nt && count + 2 < MAX_ADDRESSES;) {
		if (count + 2 >= cap) {
			struct postern_mime_address *grown;

			grown = pool_alloc(pool, 2 * cap * sizeof(*out));
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
		if (a->mailbox == NULL && a->host == NULL && a->name == NULL)
			count--;   /* "<>" or garbage alone */
		i = j;
	}
	if (in_group)
		out[count++].group = 1;
	free(t);
	*n = count;
	return count > 0 ? out : NULL;
}
