/*
 * imap_commands_mailbox.c - the authenticated state (RFC 3501 6.3):
 * SELECT and EXAMINE (with CONDSTORE / QRESYNC, RFC 7162), CREATE,
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST (LIST-EXTENDED RFC 5258,
 * SPECIAL-USE RFC 6154, CHILDREN RFC 3348, LIST-STATUS RFC 5819), LSUB,
 * STATUS (APPEND: imap_append.c).  Every storage call runs on a job,
 * but STATUS and SELECT of a mailbox the store shows unchanged
 * (status_nowait, open_nowait).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"

/* ---- mailbox names ----------------------------------------------------*/

/* A name or pattern as the client sent it to UTF-8, malloc'd: modified
 * UTF-7 decoded, or UTF-8 checked and copied for a session that enabled
 * UTF-8 names (RFC 6855 3, RFC 9051 5.1: "&" is itself then).  NULL
 * when invalid. */
static char *
name_decode(const struct imap_session *s, const char *p, size_t len)
{
	char *out;

	if (!IMAP_UTF8_NAMES(s))
		return imap_utf7_decode(p, len);
	if (!imap_utf8_name_ok(p, len) || (out = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(out, p, len);
	out[len] = '\0';
	return out;
}

char *
imap_mailbox_arg(struct imap_cmd *c, const struct imap_str *arg)
{
	char delim = imap_storage->delimiter;
	char *utf8, *name;
	size_t len;

	if (arg->len == 0 || memchr(arg->s, '\0', arg->len) != NULL) {
		imap_reply(c->s, c->tag, "NO", "[CANNOT] Invalid mailbox name");
		return NULL;
	}
	if ((utf8 = name_decode(c->s, arg->s, arg->len)) == NULL) {
		imap_reply(c->s, c->tag, "NO", "[CANNOT] Mailbox name is not "
		           "valid %s", IMAP_UTF8_NAMES(c->s) ? "UTF-8"
		                                             : "modified UTF-7");
		return NULL;
	}
	name = imap_host->pool_strndup(c->pool, utf8, strlen(utf8));
	free(utf8);
	len = strlen(name);
	/* "INBOX" in any case is INBOX, also as a parent. */
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == delim))
		memcpy(name, "INBOX", 5);
	/* CREATE "a/" means "a" (RFC 3501 6.3.3). */
	while (len > 1 && name[len - 1] == delim)
		name[--len] = '\0';
	return name;
}

/* Pattern matching for LIST: "*" matches anything, "%" anything but the
 * delimiter.  Dynamic programming, so a pattern of many wildcards costs
 * name length times pattern length, never more. */
static int
pattern_match(const char *pat, const char *name, char delim)
{
	size_t m = strlen(pat), n = strlen(name), i, j;
	unsigned char *cur = calloc(m + 1, 1), *nxt = calloc(m + 1, 1);
	int r;

	if (cur == NULL || nxt == NULL)
		abort();
	cur[0] = 1;
	for (i = 1; i <= m && (pat[i - 1] == '*' || pat[i - 1] == '%'); i++)
		cur[i] = 1;
	for (j = 0; j < n; j++) {
		memset(nxt, 0, m + 1);
		for (i = 1; i <= m; i++) {
			char p = pat[i - 1];
			if (p == '*')
				nxt[i] = nxt[i - 1] || cur[i];
			else if (p == '%')
				nxt[i] = nxt[i - 1] ||
				         (cur[i] && name[j] != delim);
			else
				nxt[i] = cur[i - 1] && p == name[j];
		}
		memcpy(cur, nxt, m + 1);
	}
	r = cur[m];
	free(cur);
	free(nxt);
	return r;
}

/* ---- LIST and LSUB ----------------------------------------------------*/

#define LSEL_SUBSCRIBED 0x1u
#define LSEL_RECURSIVE 0x2u
#define LSEL_SPECIAL 0x4u
#define LRET_SUBSCRIBED 0x10u
#define LRET_CHILDREN 0x20u
#define LRET_SPECIAL 0x40u
#define LRET_STATUS 0x80u
#define L_LSUB 0x100u
#define L_EXTENDED 0x200u

#define STATUS_MESSAGES 0x1u
#define STATUS_RECENT 0x2u
#define STATUS_UIDNEXT 0x4u
#define STATUS_UIDVALIDITY 0x8u
#define STATUS_UNSEEN 0x10u
#define STATUS_HIGHESTMODSEQ 0x20u
#define STATUS_SIZE 0x40u
#define STATUS_DELETED 0x80u          /* RFC 9208 4.2, with QUOTA */
#define STATUS_DELETED_STORAGE 0x100u

struct list_arg {
	char **patterns;       /* UTF-8, reference prepended */
	size_t npatterns;
	unsigned opts;         /* LSEL_ / LRET_ / L_ */
	unsigned status_items; /* STATUS_ for RETURN (STATUS ...) */
};

static int
parse_status_items(struct imap_cmd *c, unsigned *items)
{
	struct imap_str it;
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "MESSAGES", STATUS_MESSAGES }, { "RECENT", STATUS_RECENT },
		{ "UIDNEXT", STATUS_UIDNEXT },
		{ "UIDVALIDITY", STATUS_UIDVALIDITY },
		{ "UNSEEN", STATUS_UNSEEN },
		{ "HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ },
		{ "SIZE", STATUS_SIZE },
		{ "DELETED", STATUS_DELETED },
		{ "DELETED-STORAGE", STATUS_DELETED_STORAGE },
	};
	size_t i;

	*items = 0;
	if (imap_arg_char(&c->args, '(') < 0)
		return -1;
	do {
		if (imap_arg_atom(&c->args, &it) < 0)
			return -1;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (imap_str_is(&it, names[i].name))
				break;
		/* DELETED and DELETED-STORAGE: a backend with quotas
		 * (storage 1.3) counts the \Deleted messages */
		if (i == sizeof(names) / sizeof(names[0]) ||
		    (names[i].bit >= STATUS_DELETED &&
		     !IMAP_STORAGE_HAS(quota_get))) {
			c->args.error = "unknown status item";
			return -1;
		}
		/* RFC 9051 E: no \Recent in IMAP4rev2 */
		if (names[i].bit == STATUS_RECENT && IMAP_REV2(c->s)) {
			c->args.error = "RECENT is not an IMAP4rev2 status "
			                "item";
			return -1;
		}
		*items |= names[i].bit;
	} while (imap_arg_try_char(&c->args, ' '));
	return imap_arg_char(&c->args, ')');
}

static void
format_status(const struct imap_session *s, struct imap_buf *out,
              const char *name, unsigned items,
              const struct postern_mailbox_status *st)
{
	const char *sep = "";

	imap_buf_str(out, "* STATUS ");
	imap_buf_mailbox(out, name, IMAP_UTF8_NAMES(s));
	imap_buf_str(out, " (");
#define ITEM(bit, fmt, val)                                             \
	if (items & (bit)) {                                            \
		imap_buf_printf(out, "%s" fmt, sep, val);               \
		sep = " ";                                              \
	}
	ITEM(STATUS_MESSAGES, "MESSAGES %u", st->messages);
	ITEM(STATUS_RECENT, "RECENT %u", st->recent);
	ITEM(STATUS_UIDNEXT, "UIDNEXT %u", st->uidnext);
	ITEM(STATUS_UIDVALIDITY, "UIDVALIDITY %u", st->uidvalidity);
	ITEM(STATUS_UNSEEN, "UNSEEN %u", st->unseen);
	ITEM(STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
	     (unsigned long long)(st->highestmodseq > 0 ? st->highestmodseq
	                                                : 1));
	ITEM(STATUS_SIZE, "SIZE %llu", (unsigned long long)st->total_size);
	ITEM(STATUS_DELETED, "DELETED %u", st->deleted);
	/* in units of 1024 octets, as QUOTA's STORAGE */
	ITEM(STATUS_DELETED_STORAGE, "DELETED-STORAGE %llu",
	     (unsigned long long)(st->deleted_size / 1024));
#undef ITEM
	imap_buf_str(out, ")\r\n");
}

static int
any_pattern(const struct list_arg *a, const char *name, char delim)
{
	size_t i;

	for (i = 0; i < a->npatterns; i++)
		if (pattern_match(a->patterns[i], name, delim))
			return 1;
	return 0;
}

/* 1 if some entry other than e[i] lies below it and passes `mask`. */
static int
has_child(struct postern_mailbox_entry *e, size_t n, size_t i, char delim,
          unsigned need, unsigned refuse)
{
	size_t k, len = strlen(e[i].name);

	for (k = 0; k < n; k++)
		if (k != i && strncmp(e[k].name, e[i].name, len) == 0 &&
		    e[k].name[len] == delim && (e[k].attrs & need) == need &&
		    !(e[k].attrs & refuse))
			return 1;
	return 0;
}

/* RFC 5258 3.5 (RECURSIVEMATCH): 1 if a subscribed mailbox below e[i]
 * does not match the patterns itself, so that only e[i]'s CHILDINFO
 * can tell of it. */
static int
has_unlisted_subscribed_child(const struct list_arg *a,
                              struct postern_mailbox_entry *e, size_t n,
                              size_t i, char delim)
{
	size_t k, len = strlen(e[i].name);

	for (k = 0; k < n; k++)
		if (k != i && strncmp(e[k].name, e[i].name, len) == 0 &&
		    e[k].name[len] == delim &&
		    (e[k].attrs & POSTERN_MBOX_SUBSCRIBED) &&
		    !any_pattern(a, e[k].name, delim))
			return 1;
	return 0;
}

void
imap_buf_mbox_attrs(struct imap_buf *out, unsigned attrs)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ POSTERN_MBOX_NOSELECT, "\\Noselect" },
		{ POSTERN_MBOX_NONEXISTENT, "\\NonExistent" },
		{ POSTERN_MBOX_NOINFERIORS, "\\NoInferiors" },
		{ POSTERN_MBOX_HASCHILDREN, "\\HasChildren" },
		{ POSTERN_MBOX_HASNOCHILDREN, "\\HasNoChildren" },
		{ POSTERN_MBOX_MARKED, "\\Marked" },
		{ POSTERN_MBOX_UNMARKED, "\\Unmarked" },
		{ POSTERN_MBOX_SUBSCRIBED, "\\Subscribed" },
		{ POSTERN_MBOX_ALL, "\\All" },
		{ POSTERN_MBOX_ARCHIVE, "\\Archive" },
		{ POSTERN_MBOX_DRAFTS, "\\Drafts" },
		{ POSTERN_MBOX_FLAGGED, "\\Flagged" },
		{ POSTERN_MBOX_JUNK, "\\Junk" },
		{ POSTERN_MBOX_SENT, "\\Sent" },
		{ POSTERN_MBOX_TRASH, "\\Trash" },
	};
	size_t i;
	int first = 1;

	imap_buf_str(out, "(");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(attrs & names[i].bit))
			continue;
		if (!first)
			imap_buf_str(out, " ");
		imap_buf_str(out, names[i].name);
		first = 0;
	}
	imap_buf_str(out, ")");
}

static void
list_one(struct imap_job *j, struct list_arg *a,
         struct postern_mailbox_entry *e, size_t n, size_t i,
         int childinfo)
{
	struct imap_session *s = j->s;
	char delim = imap_storage->delimiter;
	unsigned attrs = e[i].attrs, shown;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct postern_storage_err err;

	shown = attrs & (POSTERN_MBOX_NOSELECT | POSTERN_MBOX_NOINFERIORS |
	                 POSTERN_MBOX_MARKED | POSTERN_MBOX_UNMARKED |
	                 POSTERN_MBOX_NONEXISTENT |
	                 POSTERN_MBOX_SPECIAL_USE_MASK);
	if (!(attrs & POSTERN_MBOX_NONEXISTENT)) {
		if (has_child(e, n, i, delim, 0, POSTERN_MBOX_NONEXISTENT))
			shown |= POSTERN_MBOX_HASCHILDREN;
		else if (!(attrs & POSTERN_MBOX_NOINFERIORS))
			shown |= POSTERN_MBOX_HASNOCHILDREN;
	}
	if (a->opts & (LSEL_SUBSCRIBED | LRET_SUBSCRIBED))
		shown |= attrs & POSTERN_MBOX_SUBSCRIBED;
	/* RFC 5258 3.4: \NonExistent implies \Noselect, which LIST then
	 * leaves out (LSUB knows only \Noselect, below). */
	if (attrs & POSTERN_MBOX_NONEXISTENT)
		shown &= ~POSTERN_MBOX_NOSELECT;
	if (a->opts & L_LSUB) {
		shown &= ~(POSTERN_MBOX_HASCHILDREN |
		           POSTERN_MBOX_HASNOCHILDREN |
		           POSTERN_MBOX_NONEXISTENT);
		if (attrs & POSTERN_MBOX_NONEXISTENT)
			shown |= POSTERN_MBOX_NOSELECT;
	}
	if ((a->opts & L_EXTENDED) && (a->opts & LSEL_SPECIAL) &&
	    !(attrs & POSTERN_MBOX_SPECIAL_USE_MASK))
		return;
	imap_buf_str(&j->out, (a->opts & L_LSUB) ? "* LSUB " : "* LIST ");
	imap_buf_mbox_attrs(&j->out, shown);
	imap_buf_printf(&j->out, " \"%s%c\" ", delim == '\\' ? "\\" : "",
	                delim);
	imap_buf_mailbox(&j->out, e[i].name, IMAP_UTF8_NAMES(s));
	if (childinfo)
		imap_buf_str(&j->out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	imap_buf_str(&j->out, "\r\n");
	if ((a->opts & LRET_STATUS) &&
	    !(attrs & (POSTERN_MBOX_NOSELECT | POSTERN_MBOX_NONEXISTENT))) {
		memset(&err, 0, sizeof(err));
		if (imap_storage->status_by_name(j->s->store, e[i].name, &st,
		                                 &err) == 0)
			format_status(s, &j->out, e[i].name, a->status_items,
			              &st);
	}
}

/* 1 if `name` is subscribed (an entry with SUBSCRIBED). */
static int
is_subscribed(struct postern_mailbox_entry *e, size_t n, const char *name)
{
	size_t k;

	for (k = 0; k < n; k++)
		if ((e[k].attrs & POSTERN_MBOX_SUBSCRIBED) &&
		    strcmp(e[k].name, name) == 0)
			return 1;
	return 0;
}

/* RFC 3501 6.3.9: a "%" that stops at a level above a subscribed
 * mailbox lists that level, \Noselect, when it is not subscribed
 * itself.  Each such parent once. */
static void
lsub_parents(struct imap_job *j, struct list_arg *a,
             struct postern_mailbox_entry *e, size_t n)
{
	char delim = imap_storage->delimiter;
	char **shown = imap_host->pool_alloc(j->pool, (n + 1) * sizeof(char *));
	size_t nshown = 0, i, k;
	char *parent, *cut;

	for (i = 0; i < n; i++) {
		/* A child the pattern reaches is listed itself. */
		if (!(e[i].attrs & POSTERN_MBOX_SUBSCRIBED) ||
		    any_pattern(a, e[i].name, delim))
			continue;
		parent = imap_host->pool_strndup(j->pool, e[i].name,
		                                 strlen(e[i].name));
		while ((cut = strrchr(parent, delim)) != NULL) {
			*cut = '\0';
			if (!any_pattern(a, parent, delim) ||
			    is_subscribed(e, n, parent))
				continue;
			for (k = 0; k < nshown; k++)
				if (strcmp(shown[k], parent) == 0)
					break;
			if (k < nshown || nshown == n)
				continue;
			shown[nshown++] = imap_host->pool_strndup(
				j->pool, parent, strlen(parent));
			imap_buf_printf(&j->out, "* LSUB (\\Noselect) \"%s%c\" ",
			                delim == '\\' ? "\\" : "", delim);
			imap_buf_mailbox(&j->out, parent,
			                 IMAP_UTF8_NAMES(j->s));
			imap_buf_str(&j->out, "\r\n");
		}
	}
}

static void
list_work(struct imap_job *j)
{
	struct list_arg *a = j->arg;
	struct postern_mailbox_entry *e;
	char delim = imap_storage->delimiter;
	size_t n, i;
	int want_sub;

	j->rc = imap_storage->list(j->s->store, j->pool, &e, &n, &j->err);
	if (j->rc < 0)
		return;
	want_sub = (a->opts & (LSEL_SUBSCRIBED | L_LSUB)) != 0;
	for (i = 0; i < n; i++) {
		if (!any_pattern(a, e[i].name, delim))
			continue;
		if (want_sub) {
			if (e[i].attrs & POSTERN_MBOX_SUBSCRIBED)
				list_one(j, a, e, n, i, 0);
			else if ((a->opts & LSEL_RECURSIVE) &&
			         !(e[i].attrs & POSTERN_MBOX_NONEXISTENT) &&
			         has_unlisted_subscribed_child(a, e, n, i,
			                                       delim))
				list_one(j, a, e, n, i, 1);
			continue;
		}
		if (e[i].attrs & POSTERN_MBOX_NONEXISTENT)
			continue; /* subscribed only: not in a plain LIST */
		list_one(j, a, e, n, i, 0);
	}
	if (a->opts & L_LSUB)
		lsub_parents(j, a, e, n);
}

static void
list_done(struct imap_job *j)
{
	struct list_arg *a = j->arg;

	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "%s completed",
		           (a->opts & L_LSUB) ? "LSUB" : "LIST");
}

static int
list_options(struct imap_cmd *c, unsigned *opts, int selection,
             unsigned *status_items)
{
	struct imap_str o;

	if (imap_arg_char(&c->args, '(') < 0)
		return -1;
	if (imap_arg_try_char(&c->args, ')'))
		return 0;
	do {
		if (imap_arg_atom(&c->args, &o) < 0)
			return -1;
		if (selection && imap_str_is(&o, "SUBSCRIBED"))
			*opts |= LSEL_SUBSCRIBED;
		else if (selection && imap_str_is(&o, "RECURSIVEMATCH"))
			*opts |= LSEL_RECURSIVE;
		else if (selection && imap_str_is(&o, "SPECIAL-USE"))
			*opts |= LSEL_SPECIAL;
		else if (selection && imap_str_is(&o, "REMOTE"))
			; /* no remote mailboxes here */
		else if (!selection && imap_str_is(&o, "SUBSCRIBED"))
			*opts |= LRET_SUBSCRIBED;
		else if (!selection && imap_str_is(&o, "CHILDREN"))
			*opts |= LRET_CHILDREN;
		else if (!selection && imap_str_is(&o, "SPECIAL-USE"))
			*opts |= LRET_SPECIAL;
		else if (!selection && imap_str_is(&o, "STATUS")) {
			*opts |= LRET_STATUS;
			if (imap_arg_sp(&c->args) < 0 ||
			    parse_status_items(c, status_items) < 0)
				return -1;
		} else {
			c->args.error = "unknown LIST option";
			return -1;
		}
	} while (imap_arg_try_char(&c->args, ' '));
	if (imap_arg_char(&c->args, ')') < 0)
		return -1;
	/* RFC 5258 3: RECURSIVEMATCH alone is an error. */
	if (selection && (*opts & LSEL_RECURSIVE) &&
	    !(*opts & LSEL_SUBSCRIBED)) {
		c->args.error = "RECURSIVEMATCH needs another option";
		return -1;
	}
	return 0;
}

/* reference + pattern, decoded from modified UTF-7 (or UTF-8); NULL
 * when either is not valid. */
static char *
list_pattern(struct imap_cmd *c, const struct imap_str *ref,
             const struct imap_str *pat)
{
	char *r = name_decode(c->s, ref->s, ref->len);
	char *p = name_decode(c->s, pat->s, pat->len);
	char *out = NULL;

	if (r != NULL && p != NULL) {
		out = imap_host->pool_printf(c->pool, "%s%s", r, p);
		if (strncasecmp(out, "INBOX", 5) == 0 &&
		    (out[5] == '\0' || out[5] == imap_storage->delimiter))
			memcpy(out, "INBOX", 5);
	}
	free(r);
	free(p);
	return out;
}

static void
list_command(struct imap_cmd *c, int lsub)
{
	struct imap_args *a = &c->args;
	struct imap_job *j;
	struct list_arg *la;
	struct imap_str ref, pat;
	unsigned opts = lsub ? L_LSUB : 0, items = 0;
	char *pats[64];
	size_t np = 0, i;

	if (imap_arg_sp(a) < 0)
		goto bad;
	if (!lsub && imap_arg_peek(a) == '(') {
		opts |= L_EXTENDED;
		if (list_options(c, &opts, 1, &items) < 0 || imap_arg_sp(a) < 0)
			goto bad;
	}
	if (imap_arg_astring(a, &ref) < 0 || imap_arg_sp(a) < 0)
		goto bad;
	if (!lsub && imap_arg_try_char(a, '(')) {
		opts |= L_EXTENDED;
		do {
			if (np == 64 || imap_arg_list_mailbox(a, &pat) < 0)
				goto bad;
			if ((pats[np] = list_pattern(c, &ref, &pat)) != NULL)
				np++;
		} while (imap_arg_try_char(a, ' '));
		if (imap_arg_char(a, ')') < 0)
			goto bad;
	} else {
		if (imap_arg_list_mailbox(a, &pat) < 0)
			goto bad;
		if ((pats[np] = list_pattern(c, &ref, &pat)) != NULL)
			np++;
	}
	/* A pattern that is not modified UTF-7 names no mailbox (every
	 * name is shown encoded): it matches nothing, as Dovecot does, and
	 * is no error. */
	if (!lsub && !imap_arg_at_end(a)) {
		struct imap_str ret;
		if (imap_arg_sp(a) < 0 || imap_arg_atom(a, &ret) < 0 ||
		    !imap_str_is(&ret, "RETURN") || imap_arg_sp(a) < 0 ||
		    list_options(c, &opts, 0, &items) < 0)
			goto bad;
		opts |= L_EXTENDED;
	}
	if (imap_arg_end(a) < 0)
		goto bad;
	if (np == 1 && pats[0][0] == '\0' && !(opts & L_EXTENDED)) {
		/* RFC 3501 6.3.8: the delimiter and root. */
		imap_untagged(c->s, "%s (\\Noselect) \"%s%c\" \"\"",
		              lsub ? "LSUB" : "LIST",
		              imap_storage->delimiter == '\\' ? "\\" : "",
		              imap_storage->delimiter);
		imap_reply(c->s, c->tag, "OK", "%s completed",
		           lsub ? "LSUB" : "LIST");
		return;
	}
	j = imap_job_new(c->s, c->tag, sizeof(*la));
	la = j->arg;
	la->opts = opts;
	la->status_items = items;
	la->npatterns = np;
	la->patterns = imap_host->pool_alloc(j->pool,
	                                     (np + 1) * sizeof(char *));
	for (i = 0; i < np; i++)
		la->patterns[i] = imap_host->pool_strndup(j->pool, pats[i],
		                                          strlen(pats[i]));
	imap_job_run(j, list_work, list_done);
	return;
bad:
	imap_reply(c->s, c->tag, "BAD", "%s: %s", lsub ? "LSUB" : "LIST",
	           a->error != NULL ? a->error : "invalid arguments");
}

void
imap_cmd_list(struct imap_cmd *c)
{
	list_command(c, 0);
}

void
imap_cmd_lsub(struct imap_cmd *c)
{
	list_command(c, 1);
}

/* ---- STATUS -----------------------------------------------------------*/

struct status_arg {
	char *name;
	unsigned items;
	struct postern_mailbox_status st;
};

static void
status_work(struct imap_job *j)
{
	struct status_arg *a = j->arg;

	a->st.size = sizeof(a->st);
	j->rc = imap_storage->status_by_name(j->s->store, a->name, &a->st,
	                                     &j->err);
	if (j->rc == 0)
		format_status(j->s, &j->out, a->name, a->items, &a->st);
}

/* The status came from status_nowait: formatted on the loop. */
static void
status_format(struct imap_job *j)
{
	struct status_arg *a = j->arg;

	j->rc = 0;
	format_status(j->s, &j->out, a->name, a->items, &a->st);
}

/* Whether the store answers at once (storage 1.5): a mailbox polled
 * with nothing new takes no thread hop. */
static int
status_nowait(struct imap_session *s, struct status_arg *a)
{
	if (!IMAP_STORAGE_HAS(status_nowait))
		return 0;
	a->st.size = sizeof(a->st);
	return imap_storage->status_nowait(s->store, a->name, &a->st) == 0;
}

static void
status_done(struct imap_job *j)
{
	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "STATUS completed");
}

void
imap_cmd_status(struct imap_cmd *c)
{
	struct imap_str mbox;
	struct imap_job *j;
	struct status_arg *a;
	unsigned items;
	char *name;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &mbox) < 0 ||
	    imap_arg_sp(&c->args) < 0 || parse_status_items(c, &items) < 0 ||
	    imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "STATUS: %s", c->args.error);
		return;
	}
	if ((name = imap_mailbox_arg(c, &mbox)) == NULL)
		return;
	if (items & STATUS_HIGHESTMODSEQ)
		imap_condstore_enable(c->s);
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	a->name = imap_host->pool_strndup(j->pool, name, strlen(name));
	a->items = items;
	if (status_nowait(c->s, a))
		imap_job_run_here(j, status_format, status_done);
	else
		imap_job_run(j, status_work, status_done);
}

/* ---- CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE -----------------------*/

enum mbox_op { OP_CREATE, OP_DELETE, OP_RENAME, OP_SUBSCRIBE, OP_UNSUBSCRIBE };

struct mbox_arg {
	enum mbox_op op;
	char *name, *to;
	unsigned special_use;  /* CREATE ... (USE (...)), RFC 6154 3 */
	const char *what;
};

static void
mbox_work(struct imap_job *j)
{
	struct mbox_arg *a = j->arg;
	postern_store_t *st = j->s->store;

	switch (a->op) {
	case OP_CREATE:
		j->rc = imap_storage->create(st, a->name, a->special_use,
		                             &j->err);
		break;
	case OP_DELETE:
		j->rc = imap_storage->remove(st, a->name, &j->err);
		break;
	case OP_RENAME:
		j->rc = imap_storage->rename(st, a->name, a->to, &j->err);
		break;
	case OP_SUBSCRIBE:
		j->rc = imap_storage->subscribe(st, a->name, 1, &j->err);
		break;
	case OP_UNSUBSCRIBE:
		j->rc = imap_storage->subscribe(st, a->name, 0, &j->err);
		break;
	}
}

static void
mbox_done(struct imap_job *j)
{
	struct mbox_arg *a = j->arg;

	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "%s completed", a->what);
}

/* CREATE's " (USE (\\Sent \\Archive))" (RFC 6154 section 3). */
static int
create_params(struct imap_cmd *c, unsigned *use)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "\\All", POSTERN_MBOX_ALL },
		{ "\\Archive", POSTERN_MBOX_ARCHIVE },
		{ "\\Drafts", POSTERN_MBOX_DRAFTS },
		{ "\\Flagged", POSTERN_MBOX_FLAGGED },
		{ "\\Junk", POSTERN_MBOX_JUNK },
		{ "\\Sent", POSTERN_MBOX_SENT },
		{ "\\Trash", POSTERN_MBOX_TRASH },
	};
	struct imap_args *a = &c->args;
	struct imap_str w, f;
	size_t i;

	if (imap_arg_char(a, '(') < 0 || imap_arg_atom(a, &w) < 0 ||
	    !imap_str_is(&w, "USE") || imap_arg_sp(a) < 0 ||
	    imap_arg_char(a, '(') < 0) {
		a->error = "expected (USE (...))";
		return -1;
	}
	do {
		if (imap_arg_flag(a, &f) < 0)
			return -1;
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (imap_str_is(&f, names[i].name))
				break;
		if (i == sizeof(names) / sizeof(names[0])) {
			a->error = "unknown special-use attribute";
			return -1;
		}
		*use |= names[i].bit;
	} while (imap_arg_try_char(a, ' '));
	if (imap_arg_char(a, ')') < 0 || imap_arg_char(a, ')') < 0)
		return -1;
	return 0;
}

static void
mbox_command(struct imap_cmd *c, enum mbox_op op)
{
	struct imap_str from, to;
	struct imap_job *j;
	struct mbox_arg *a;
	char *n1, *n2 = NULL;
	unsigned use = 0;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &from) < 0 ||
	    (op == OP_RENAME && (imap_arg_sp(&c->args) < 0 ||
	                         imap_arg_astring(&c->args, &to) < 0)) ||
	    (op == OP_CREATE && imap_arg_try_char(&c->args, ' ') &&
	     create_params(c, &use) < 0) ||
	    imap_arg_end(&c->args) < 0) {
		imap_reply(c->s, c->tag, "BAD", "%s: %s", c->name,
		           c->args.error);
		return;
	}
	if ((n1 = imap_mailbox_arg(c, &from)) == NULL)
		return;
	if (op == OP_RENAME && (n2 = imap_mailbox_arg(c, &to)) == NULL)
		return;
	if (op == OP_CREATE && strcmp(n1, "INBOX") == 0) {
		imap_reply(c->s, c->tag, "NO", "[ALREADYEXISTS] INBOX always "
		                               "exists");
		return;
	}
	j = imap_job_new(c->s, c->tag, sizeof(*a));
	a = j->arg;
	a->op = op;
	a->special_use = use;
	a->what = c->name;
	a->name = imap_host->pool_strndup(j->pool, n1, strlen(n1));
	if (n2 != NULL)
		a->to = imap_host->pool_strndup(j->pool, n2, strlen(n2));
	imap_job_run(j, mbox_work, mbox_done);
}

void
imap_cmd_create(struct imap_cmd *c)
{
	mbox_command(c, OP_CREATE);
}

void
imap_cmd_delete(struct imap_cmd *c)
{
	mbox_command(c, OP_DELETE);
}

void
imap_cmd_rename(struct imap_cmd *c)
{
	mbox_command(c, OP_RENAME);
}

void
imap_cmd_subscribe(struct imap_cmd *c)
{
	mbox_command(c, OP_SUBSCRIBE);
}

void
imap_cmd_unsubscribe(struct imap_cmd *c)
{
	mbox_command(c, OP_UNSUBSCRIBE);
}

/* ---- SELECT and EXAMINE -----------------------------------------------*/

struct select_arg {
	char *name;
	int readonly;
	int had_mailbox;          /* one was selected before: [CLOSED] */
	postern_mailbox_t *old, *mb;
	/* QRESYNC parameters */
	int qresync;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known;  /* known UIDs, or n == 0 */
};

/* The UIDs of `known` (or 1..uidnext-1) that are not in the view. */
static void
format_vanished(struct imap_session *s, struct imap_buf *out,
                const struct select_arg *a, postern_pool_t *pool)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	uint32_t count = imap_storage->count(s->mb), seq, *gone;
	struct imap_range *r;
	size_t nr, i, ngone = 0, cap = 64;
	struct imap_seqset all;
	struct imap_range whole;

	imap_storage->status(s->mb, &st);
	if (st.uidnext <= 1)
		return;
	if (a->known.n == 0) {
		whole.lo = 1;
		whole.hi = st.uidnext - 1;
		all.r = &whole;
		all.n = 1;
	} else
		all = a->known;
	r = imap_host->pool_alloc(pool, all.n * sizeof(*r));
	nr = imap_seqset_normalize(&all, st.uidnext - 1, st.uidnext - 1, r);
	gone = malloc(cap * sizeof(*gone));
	if (gone == NULL)
		abort();
	seq = 1;
	for (i = 0; i < nr; i++) {
		uint32_t u;
		for (u = r[i].lo; u <= r[i].hi && u != 0; u++) {
			const struct postern_message_info *mi = NULL;
			while (seq <= count &&
			       (mi = imap_storage->message(s->mb, seq))->uid < u)
				seq++;
			if (seq <= count && mi != NULL && mi->uid == u)
				continue;
			if (ngone == cap) {
				cap *= 2;
				gone = realloc(gone, cap * sizeof(*gone));
				if (gone == NULL)
					abort();
			}
			gone[ngone++] = u;
			if (u == UINT32_MAX)
				break;
		}
	}
	if (ngone > 0) {
		imap_buf_str(out, "* VANISHED (EARLIER) ");
		imap_buf_uidset(out, gone, ngone);
		imap_buf_str(out, "\r\n");
	}
	free(gone);
}

/* RFC 9051 6.3.2: IMAP4rev2's SELECT says EXISTS and the mailbox's
 * LIST (its name as the server has it), no RECENT nor [UNSEEN n]. */
static void
select_rev2(struct imap_buf *out, const char *name,
            const struct postern_mailbox_status *st)
{
	char delim = imap_storage->delimiter;

	imap_buf_printf(out, "* %u EXISTS\r\n* LIST () \"%s%c\" ",
	                st->messages, delim == '\\' ? "\\" : "", delim);
	imap_buf_mailbox(out, name, 1);
	imap_buf_str(out, "\r\n");
}

/* The untagged responses of SELECT for the view a->mb. */
static void
select_show(struct imap_job *j)
{
	struct select_arg *a = j->arg;
	struct imap_session *s = j->s;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	uint32_t i, count;

	j->rc = 0;
	/* The session's view from here on (the loop waits for us). */
	s->mb = a->mb;
	free(s->mbname);
	if ((s->mbname = strdup(a->name)) == NULL)
		abort();
	s->readonly = a->readonly;
	imap_storage->status(a->mb, &st);
	if (st.readonly)
		s->readonly = a->readonly = 1;
	s->nkeywords_sent = (uint32_t)-1;
	if (a->had_mailbox)
		imap_buf_str(&j->out, "* OK [CLOSED] Previous mailbox closed\r\n");
	/* FLAGS and PERMANENTFLAGS */
	{
		struct postern_sync_changes none = { 0 };
		none.messages = st.messages;
		imap_sync_format(s, &j->out, &none, j->pool);
	}
	if (IMAP_REV2(s))
		select_rev2(&j->out, a->name, &st);
	else {
		imap_buf_printf(&j->out, "* %u EXISTS\r\n* %u RECENT\r\n",
		                st.messages, st.recent);
		if (st.first_unseen_seq != 0)
			imap_buf_printf(&j->out, "* OK [UNSEEN %u] First "
			                "unseen\r\n", st.first_unseen_seq);
	}
	imap_buf_printf(&j->out, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
	                         "* OK [UIDNEXT %u] Predicted next UID\r\n",
	                st.uidvalidity, st.uidnext);
	if (st.modseq_supported)
		/* Mod-sequences are positive (RFC 7162 7): an empty,
		 * never-changed mailbox says 1. */
		imap_buf_printf(&j->out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		                (unsigned long long)(st.highestmodseq > 0
		                                     ? st.highestmodseq : 1));
	else
		imap_buf_str(&j->out, "* OK [NOMODSEQ] No permanent "
		                      "modsequences\r\n");
	if (!a->qresync || a->uidvalidity != st.uidvalidity ||
	    !st.modseq_supported)
		return;
	format_vanished(s, &j->out, a, j->pool);
	count = imap_storage->count(a->mb);
	imap_storage->status(a->mb, &st);
	for (i = 1; i <= count; i++) {
		const struct postern_message_info *mi;
		mi = imap_storage->message(a->mb, i);
		if (mi->modseq > a->modseq &&
		    (a->known.n == 0 ||
		     imap_seqset_contains(&a->known, mi->uid, st.uidnext)))
			imap_format_flags_fetch(s, &j->out, i, 1, &st);
	}
}

static void
select_work(struct imap_job *j)
{
	struct select_arg *a = j->arg;

	if (a->old != NULL)
		imap_storage->close(a->old);
	j->rc = imap_storage->open(j->s->store, a->name,
	                           a->readonly ? POSTERN_OPEN_READONLY : 0,
	                           &a->mb, &j->err);
	if (j->rc == 0)
		select_show(j);
}

/* With no mailbox to close first, the store may open the view at once
 * (storage 1.5): SELECT of a mailbox left untouched takes no job. */
static int
select_nowait(struct imap_session *s, struct select_arg *a)
{
	if (a->old != NULL || !IMAP_STORAGE_HAS(open_nowait))
		return 0;
	return imap_storage->open_nowait(s->store, a->name,
	                                 a->readonly ? POSTERN_OPEN_READONLY
	                                             : 0, &a->mb) == 0;
}

static void
select_done(struct imap_job *j)
{
	struct select_arg *a = j->arg;
	struct imap_session *s = j->s;

	if (j->rc < 0) {
		s->state = IMAP_AUTH;
		imap_reply_storage_err(s, j->tag, &j->err);
		return;
	}
	s->state = IMAP_SELECTED;
	imap_reply(s, j->tag, "OK", "[%s] %s completed",
	           a->readonly ? "READ-ONLY" : "READ-WRITE",
	           a->readonly ? "EXAMINE" : "SELECT");
}

/* (CONDSTORE) or (QRESYNC (uidvalidity modseq [known-uids
 * [(seq-set uid-set)]])) */
static int
select_params(struct imap_cmd *c, struct select_arg *a)
{
	struct imap_args *ar = &c->args;
	struct imap_str p;

	if (imap_arg_char(ar, '(') < 0)
		return -1;
	do {
		if (imap_arg_atom(ar, &p) < 0)
			return -1;
		if (imap_str_is(&p, "CONDSTORE")) {
			c->s->condstore = 1;
			continue;
		}
		if (!imap_str_is(&p, "QRESYNC")) {
			ar->error = "unknown SELECT parameter";
			return -1;
		}
		if (!(c->s->enabled & IMAP_ENABLED_QRESYNC)) {
			ar->error = "QRESYNC was not enabled";
			return -1;
		}
		a->qresync = 1;
		if (imap_arg_sp(ar) < 0 || imap_arg_char(ar, '(') < 0 ||
		    imap_arg_nznumber(ar, &a->uidvalidity) < 0 ||
		    imap_arg_sp(ar) < 0 || imap_arg_number64(ar, &a->modseq) < 0)
			return -1;
		if (imap_arg_try_char(ar, ' ')) {
			if (imap_arg_peek(ar) != '(' &&
			    imap_arg_seqset(ar, &a->known) < 0)
				return -1;
			if (imap_arg_peek(ar) == ' ')
				ar->p++;
			if (imap_arg_try_char(ar, '(')) {
				/* The sequence match data only helps a
				 * server without expunge history: we compute
				 * VANISHED from the known UIDs, so it is
				 * checked for syntax and not needed. */
				struct imap_seqset s1, s2;
				if (imap_arg_seqset(ar, &s1) < 0 ||
				    imap_arg_sp(ar) < 0 ||
				    imap_arg_seqset(ar, &s2) < 0 ||
				    imap_arg_char(ar, ')') < 0)
					return -1;
			}
		}
		if (imap_arg_char(ar, ')') < 0)
			return -1;
	} while (imap_arg_try_char(ar, ' '));
	return imap_arg_char(ar, ')');
}

static void
select_command(struct imap_cmd *c, int readonly)
{
	struct imap_session *s = c->s;
	struct imap_str mbox;
	struct select_arg tmp = { 0 }, *a;
	struct imap_job *j;
	char *name;
	size_t i;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &mbox) < 0 ||
	    (imap_arg_try_char(&c->args, ' ') && select_params(c, &tmp) < 0) ||
	    imap_arg_end(&c->args) < 0) {
		imap_reply(s, c->tag, "BAD", "%s: %s", c->name, c->args.error);
		return;
	}
	if ((name = imap_mailbox_arg(c, &mbox)) == NULL)
		return;
	j = imap_job_new(s, c->tag, sizeof(*a));
	a = j->arg;
	*a = tmp;
	if (tmp.known.n > 0) {
		a->known.r = imap_host->pool_alloc(j->pool, tmp.known.n *
		                                   sizeof(*a->known.r));
		for (i = 0; i < tmp.known.n; i++)
			a->known.r[i] = tmp.known.r[i];
	}
	a->name = imap_host->pool_strndup(j->pool, name, strlen(name));
	a->readonly = readonly;
	imap_unwatch_selected(s);
	a->old = s->mb;
	a->had_mailbox = s->mb != NULL;
	s->mb = NULL;
	s->state = IMAP_AUTH;
	if (select_nowait(s, a))
		imap_job_run_here(j, select_show, select_done);
	else
		imap_job_run(j, select_work, select_done);
}

void
imap_cmd_select(struct imap_cmd *c)
{
	select_command(c, 0);
}

void
imap_cmd_examine(struct imap_cmd *c)
{
	select_command(c, 1);
}
