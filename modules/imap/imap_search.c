/*
 * imap_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4) with every
 * search key, ESEARCH results (RFC 4731) and MODSEQ (RFC 7162).
 *
 * The keys are parsed on the loop into a tree (AND of a list, OR, NOT,
 * leaves); the tree is evaluated on a job thread, message by message,
 * cheapest facts first: flags, sizes, dates and sets come from the
 * view; a header key reads the message's header once; BODY and TEXT go
 * through imap_mime_search_text (decoded text).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"
#include "imap_mime.h"
#include "imap_search.h"

/* Nesting of parentheses, NOT and OR (a stack bound for the parser). */
#define SEARCH_MAX_DEPTH 64

/* A job evaluates messages until it has read about this many octets of
 * them (a message whose content it did not read counts
 * SEARCH_MSG_COST), then the SEARCH goes back to the end of the job
 * queue: a SEARCH of a large mailbox holds a pool thread for a step,
 * not for minutes, and other sessions' jobs get their turn between. */
#define SEARCH_STEP_OCTETS (8u << 20)
#define SEARCH_MSG_COST 256u

/* Header keys look at this much of a header at most (as TEXT does in
 * imap_mime.c): a message that is nearly all header would otherwise be
 * held whole. */
#define SEARCH_MAX_HEADER (1u << 20)

enum skind {
	SK_ALL,
	SK_FLAG_SET,    /* flag bit set */
	SK_FLAG_UNSET,
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_NEW,         /* RECENT and UNSEEN */
	SK_OLD,         /* not RECENT */
	SK_SEQSET,
	SK_UIDSET,
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE,      /* internal date */
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE,  /* Date: header */
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER,      /* field contains */
	SK_BODY,
	SK_TEXT,
	SK_MODSEQ,
	SK_OLDER,       /* WITHIN: internal date at or before num */
	SK_YOUNGER,     /* internal date after num */
	SK_NOT,
	SK_OR,
	SK_AND,
};

struct skey {
	enum skind kind;
	uint32_t flag;
	uint64_t num;          /* sizes, modseq */
	int64_t day;           /* days since the epoch */
	const char *field, *str;
	struct imap_seqset set;
	size_t ti;             /* BODY, TEXT: index of its needle */
	struct skey *a, *b;    /* NOT: a; OR: a, b; AND: list in a */
	struct skey *next;     /* siblings in an AND list */
};

#define RET_MIN IMAP_RET_MIN
#define RET_MAX IMAP_RET_MAX
#define RET_ALL IMAP_RET_ALL
#define RET_COUNT IMAP_RET_COUNT
#define RET_SAVE IMAP_RET_SAVE
#define RET_PARTIAL IMAP_RET_PARTIAL
#define RET_UPDATE IMAP_RET_UPDATE

/* A parsed search program and where its evaluation stands. */
struct imap_search_prog {
	struct skey *root;
	struct imap_mime_needle *needles; /* BODY and TEXT, distinct */
	size_t nneedles;
	uint32_t next_seq;    /* where the next step starts (0: first) */
};

struct search_arg {
	struct imap_search_prog *prog;
	int by_uid;
	int esearch;
	unsigned ret;
	struct imap_partial part;
	int uses_modseq;
	uint32_t *hits;       /* sequence numbers (or UIDs) found */
	size_t nhits;
	uint32_t *uids;       /* their UIDs, for RETURN (SAVE) and
	                         (UPDATE) */
	uint64_t view_modseq; /* the view's when it was searched */
	int finished;
	uint64_t max_modseq;  /* of every hit */
	uint64_t first_modseq, last_modseq; /* of the MIN and MAX hits */
};

/* RFC 7162 3.1.5: with only MIN and/or MAX returned, the MODSEQ of
 * ESEARCH is the highest of the messages returned; with ALL or COUNT,
 * of every message found. */
static uint64_t
esearch_modseq(const struct search_arg *a)
{
	uint64_t v = 0;

	if (a->ret & (RET_ALL | RET_COUNT))
		return a->max_modseq;
	if (a->ret & RET_MIN)
		v = a->first_modseq;
	if ((a->ret & RET_MAX) && a->last_modseq > v)
		v = a->last_modseq;
	return v;
}

/* ---- parsing ----------------------------------------------------------*/

/* What parsing one SEARCH counts against its limits, and its BODY and
 * TEXT needles (each distinct one once). */
struct sparse {
	struct imap_cmd *c;
	size_t nkeys, needle_bytes;
	const char *limit;          /* the limit passed, for NO [LIMIT] */
	struct imap_mime_needle *needles;
	size_t nneedles;
};

static int parse_key(struct sparse *ps, struct skey **out, int depth);

static struct skey *
key_new(struct imap_cmd *c, enum skind kind)
{
	struct skey *k = imap_host->pool_alloc(c->pool, sizeof(*k));

	k->kind = kind;
	return k;
}

static int
search_string(struct sparse *ps, const char **out)
{
	struct imap_cmd *c = ps->c;
	struct imap_str s;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &s) < 0)
		return -1;
	if (memchr(s.s, '\0', s.len) != NULL) {
		c->args.error = "NUL in search string";
		return -1;
	}
	ps->needle_bytes += s.len;
	if (ps->needle_bytes > (size_t)imap_cfg.max_search_needle) {
		ps->limit = "search strings too long";
		c->args.error = ps->limit;
		return -1;
	}
	*out = imap_host->pool_strndup(c->pool, s.s, s.len);
	return 0;
}

/* The BODY / TEXT key k gets the index of its needle; the same needle
 * asked twice is looked for once. */
static void
text_needle(struct sparse *ps, struct skey *k)
{
	int with_header = k->kind == SK_TEXT;
	size_t i;

	for (i = 0; i < ps->nneedles; i++)
		if (ps->needles[i].with_header == with_header &&
		    strcmp(ps->needles[i].needle, k->str) == 0)
			break;
	if (i == ps->nneedles) {
		/* at most max_search_keys of them: room made at the start */
		ps->needles[i].needle = k->str;
		ps->needles[i].with_header = with_header;
		ps->nneedles++;
	}
	k->ti = i;
}

/* date = d-Mon-yyyy, quoted or not; as days since the epoch. */
static int
search_date(struct imap_cmd *c, int64_t *day)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct imap_str s;
	char buf[32], mon[4];
	struct tm tm = { 0 };
	int d, y, i;

	if (imap_arg_sp(&c->args) < 0 || imap_arg_astring(&c->args, &s) < 0)
		return -1;
	if (s.len >= sizeof(buf))
		goto bad;
	memcpy(buf, s.s, s.len);
	buf[s.len] = '\0';
	if (sscanf(buf, "%2d-%3s-%4d", &d, mon, &y) != 3)
		goto bad;
	for (i = 0; i < 12; i++)
		if (strcasecmp(mon, months[i]) == 0)
			break;
	if (i == 12 || d < 1 || d > 31 || y < 1900 || y > 9999)
		goto bad;
	tm.tm_mday = d;
	tm.tm_mon = i;
	tm.tm_year = y - 1900;
	*day = (int64_t)timegm(&tm) / 86400;
	return 0;
bad:
	c->args.error = "invalid date";
	return -1;
}

static const struct {
	const char *name;
	enum skind kind;
	uint32_t flag;
} simple_keys[] = {
	{ "ALL", SK_ALL, 0 },
	{ "ANSWERED", SK_FLAG_SET, POSTERN_MSG_ANSWERED },
	{ "DELETED", SK_FLAG_SET, POSTERN_MSG_DELETED },
	{ "DRAFT", SK_FLAG_SET, POSTERN_MSG_DRAFT },
	{ "FLAGGED", SK_FLAG_SET, POSTERN_MSG_FLAGGED },
	{ "RECENT", SK_FLAG_SET, POSTERN_MSG_RECENT },
	{ "SEEN", SK_FLAG_SET, POSTERN_MSG_SEEN },
	{ "UNANSWERED", SK_FLAG_UNSET, POSTERN_MSG_ANSWERED },
	{ "UNDELETED", SK_FLAG_UNSET, POSTERN_MSG_DELETED },
	{ "UNDRAFT", SK_FLAG_UNSET, POSTERN_MSG_DRAFT },
	{ "UNFLAGGED", SK_FLAG_UNSET, POSTERN_MSG_FLAGGED },
	{ "UNSEEN", SK_FLAG_UNSET, POSTERN_MSG_SEEN },
	{ "NEW", SK_NEW, 0 },
	{ "OLD", SK_OLD, 0 },
};

static const struct {
	const char *name;
	enum skind kind;
} date_keys[] = {
	{ "BEFORE", SK_BEFORE }, { "ON", SK_ON }, { "SINCE", SK_SINCE },
	{ "SENTBEFORE", SK_SENTBEFORE }, { "SENTON", SK_SENTON },
	{ "SENTSINCE", SK_SENTSINCE },
};

static const char *const header_keys[] = { "FROM", "TO", "CC", "BCC",
	"SUBJECT" };

/* A parenthesised list or the rest of the command: an AND. */
static int
parse_list(struct sparse *ps, struct skey **out, int depth, int paren)
{
	struct imap_cmd *c = ps->c;
	struct skey *and = key_new(c, SK_AND), **tail = &and->a, *k;

	do {
		if (parse_key(ps, &k, depth + 1) < 0)
			return -1;
		*tail = k;
		tail = &k->next;
	} while (imap_arg_try_char(&c->args, ' ') &&
	         !(paren && imap_arg_peek(&c->args) == ')'));
	if (paren && imap_arg_char(&c->args, ')') < 0)
		return -1;
	*out = and;
	return 0;
}

static int
parse_key(struct sparse *ps, struct skey **out, int depth)
{
	struct imap_cmd *c = ps->c;
	struct imap_args *a = &c->args;
	struct imap_str w;
	struct skey *k;
	size_t i;
	int ch, r;

	if (depth > SEARCH_MAX_DEPTH) {
		a->error = "search keys nested too deeply";
		return -1;
	}
	/* Counted before the key is parsed: thousands of keys cost no
	 * more than the limit. */
	if (++ps->nkeys > (size_t)imap_cfg.max_search_keys) {
		ps->limit = "too many search keys";
		a->error = ps->limit;
		return -1;
	}
	if (imap_arg_try_char(a, '('))
		return parse_list(ps, out, depth, 1);
	ch = imap_arg_peek(a);
	if ((ch >= '1' && ch <= '9') || ch == '*' ||
	    (ch == '$' && a->saved != NULL)) {
		int was = a->seq_uid;

		k = key_new(c, SK_SEQSET);
		a->seq_uid = 0;    /* "$" as sequence numbers here */
		r = imap_arg_seqset(a, &k->set);
		a->seq_uid = was;
		*out = k;
		return r;
	}
	if (imap_arg_atom(a, &w) < 0)
		return -1;
	for (i = 0; i < sizeof(simple_keys) / sizeof(simple_keys[0]); i++)
		if (imap_str_is(&w, simple_keys[i].name)) {
			/* RFC 9051 E: IMAP4rev2 has no \Recent, and its
			 * grammar no RECENT, NEW or OLD */
			if (IMAP_REV2(c->s) &&
			    (simple_keys[i].flag == POSTERN_MSG_RECENT ||
			     simple_keys[i].kind == SK_NEW ||
			     simple_keys[i].kind == SK_OLD)) {
				a->error = "RECENT, NEW and OLD are not "
				           "IMAP4rev2 search keys";
				return -1;
			}
			k = key_new(c, simple_keys[i].kind);
			k->flag = simple_keys[i].flag;
			*out = k;
			return 0;
		}
	for (i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++)
		if (imap_str_is(&w, date_keys[i].name)) {
			k = key_new(c, date_keys[i].kind);
			*out = k;
			return search_date(c, &k->day);
		}
	for (i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++)
		if (imap_str_is(&w, header_keys[i])) {
			k = key_new(c, SK_HEADER);
			k->field = header_keys[i];
			*out = k;
			return search_string(ps, &k->str);
		}
	if (imap_str_is(&w, "HEADER")) {
		k = key_new(c, SK_HEADER);
		*out = k;
		if (search_string(ps, &k->field) < 0)
			return -1;
		return search_string(ps, &k->str);
	}
	if (imap_str_is(&w, "BODY") || imap_str_is(&w, "TEXT")) {
		k = key_new(c, w.len == 4 && strncasecmp(w.s, "BODY", 4) == 0
		                   ? SK_BODY : SK_TEXT);
		*out = k;
		if (search_string(ps, &k->str) < 0)
			return -1;
		text_needle(ps, k);
		return 0;
	}
	if (imap_str_is(&w, "KEYWORD") || imap_str_is(&w, "UNKEYWORD")) {
		struct imap_str f;
		k = key_new(c, w.len == 7 ? SK_KEYWORD : SK_UNKEYWORD);
		if (imap_arg_sp(a) < 0 || imap_arg_atom(a, &f) < 0)
			return -1;
		k->str = imap_host->pool_strndup(c->pool, f.s, f.len);
		*out = k;
		return 0;
	}
	if (imap_str_is(&w, "LARGER") || imap_str_is(&w, "SMALLER")) {
		k = key_new(c, w.len == 6 ? SK_LARGER : SK_SMALLER);
		*out = k;
		return imap_arg_sp(a) < 0 ? -1 : imap_arg_number64(a, &k->num);
	}
	if (imap_str_is(&w, "UID")) {
		int was = a->seq_uid;

		k = key_new(c, SK_UIDSET);
		*out = k;
		if (imap_arg_sp(a) < 0)
			return -1;
		a->seq_uid = 1;
		r = imap_arg_seqset(a, &k->set);
		a->seq_uid = was;
		return r;
	}
	if (imap_str_is(&w, "NOT")) {
		k = key_new(c, SK_NOT);
		*out = k;
		return imap_arg_sp(a) < 0 ? -1 : parse_key(ps, &k->a, depth + 1);
	}
	if (imap_str_is(&w, "OR")) {
		k = key_new(c, SK_OR);
		*out = k;
		if (imap_arg_sp(a) < 0 || parse_key(ps, &k->a, depth + 1) < 0 ||
		    imap_arg_sp(a) < 0)
			return -1;
		return parse_key(ps, &k->b, depth + 1);
	}
	if (imap_str_is(&w, "OLDER") || imap_str_is(&w, "YOUNGER")) {
		/* RFC 5032: an interval in seconds before now, taken when
		 * the command is read. */
		uint64_t secs;
		k = key_new(c, w.len == 5 ? SK_OLDER : SK_YOUNGER);
		*out = k;
		if (imap_arg_sp(a) < 0 || imap_arg_number64(a, &secs) < 0)
			return -1;
		if (secs == 0 || secs > 0xffffffffu) {
			a->error = "WITHIN interval out of range";
			return -1;
		}
		k->num = (uint64_t)time(NULL) - secs;
		return 0;
	}
	if (imap_str_is(&w, "MODSEQ")) {
		/* MODSEQ ["/flags/\\Seen" priv|shared|all] n */
		struct imap_str entry, type;
		k = key_new(c, SK_MODSEQ);
		*out = k;
		imap_condstore_enable(c->s);
		if (imap_arg_sp(a) < 0)
			return -1;
		if (imap_arg_peek(a) == '"') {
			if (imap_arg_string(a, &entry) < 0 ||
			    imap_arg_sp(a) < 0 || imap_arg_atom(a, &type) < 0 ||
			    imap_arg_sp(a) < 0)
				return -1;
		}
		return imap_arg_number64(a, &k->num);
	}
	a->error = "unknown search key";
	return -1;
}

/* ---- evaluation -------------------------------------------------------*/

/* What is known of the message being tested; loaded on first need. */
struct msg_ctx;
static const struct imap_mime *load_mime(struct msg_ctx *m);

struct msg_ctx {
	struct imap_job *j;
	uint32_t seq, count, uidmax;
	const struct postern_message_info *mi;
	const struct postern_mailbox_status *st;
	char *header;            /* the header, NUL-terminated */
	size_t header_len;
	int header_loaded;
	const struct imap_mime *mime;
	int mime_loaded;
	struct imap_msg_ref msg; /* opened once for all the keys: msg_end */
	const struct imap_search_prog *a;
	struct imap_mime_needle *texts; /* the needles' answers */
	int texts_loaded;
};

/* Every BODY and TEXT needle of the command over one decoding of the
 * message: the first such key asks, the others read the answer. */
static int
load_texts(struct msg_ctx *m)
{
	if (m->texts_loaded)
		return m->texts != NULL ? 0 : -1;
	m->texts_loaded = 1;
	if (load_mime(m) == NULL)
		return -1;
	m->texts = imap_host->pool_alloc(m->j->pool, m->a->nneedles *
	                                             sizeof(*m->texts));
	memcpy(m->texts, m->a->needles, m->a->nneedles * sizeof(*m->texts));
	if (imap_mime_search_texts(imap_storage, m->j->s->mb, m->mi->uid,
	                           m->mime, &m->msg, m->texts,
	                           m->a->nneedles,
	                           &m->j->cancelled, m->j->pool,
	                           &m->j->err) < 0) {
		m->texts = NULL;
		return -1;
	}
	return 0;
}

static int
load_header(struct msg_ctx *m)
{
	struct imap_job *j = m->j;
	postern_msg_t *msg;
	uint64_t got = 0, want;
	ssize_t n;

	if (m->header_loaded)
		return m->header != NULL ? 0 : -1;
	m->header_loaded = 1;
	if (m->msg.msg == NULL &&
	    imap_storage->msg_open(j->s->mb, m->mi->uid, &m->msg.msg,
	                           &m->msg.sizes, &j->err) < 0)
		return -1;
	msg = m->msg.msg;
	want = m->msg.sizes.header_size < SEARCH_MAX_HEADER ?
	       m->msg.sizes.header_size : SEARCH_MAX_HEADER;
	m->header = imap_host->pool_alloc(j->pool, want + 1);
	while (got < want) {
		n = imap_storage->msg_read(msg, got, m->header + got,
		                           want - got, &j->err);
		if (n <= 0)
			break;
		got += (uint64_t)n;
	}
	if (got < want) {
		m->header = NULL;
		return -1;
	}
	m->header_len = got;
	return 0;
}

static const struct imap_mime *
load_mime(struct msg_ctx *m)
{
	if (!m->mime_loaded) {
		m->mime_loaded = 1;
		m->mime = imap_mime_load(imap_storage, m->j->s->mb, m->mi->uid,
		                         &m->msg, m->j->pool, &m->j->err);
	}
	return m->mime;
}

static int
has_keyword(const struct msg_ctx *m, const char *kw)
{
	uint32_t i;

	for (i = 0; i < m->mi->nkeywords; i++) {
		uint32_t idx = m->mi->keywords[i];
		if (idx < m->st->nkeywords &&
		    strcasecmp(m->st->keywords[idx], kw) == 0)
			return 1;
	}
	return 0;
}

static int64_t
internal_day(const struct postern_message_info *mi)
{
	int64_t t = mi->internal_date + (int64_t)mi->internal_tz * 60;

	return t >= 0 ? t / 86400 : (t - 86399) / 86400;
}

/* 1 match, 0 no match, -1 error (j->err set). */
static int
eval(struct msg_ctx *m, const struct skey *k)
{
	const struct postern_message_info *mi = m->mi;
	const struct skey *c;
	int r;
	int64_t day, sent;
	int tz;

	switch (k->kind) {
	case SK_ALL:
		return 1;
	case SK_FLAG_SET:
		return (mi->flags & k->flag) != 0;
	case SK_FLAG_UNSET:
		return (mi->flags & k->flag) == 0;
	case SK_KEYWORD:
		return has_keyword(m, k->str);
	case SK_UNKEYWORD:
		return !has_keyword(m, k->str);
	case SK_NEW:
		return (mi->flags & POSTERN_MSG_RECENT) &&
		       !(mi->flags & POSTERN_MSG_SEEN);
	case SK_OLD:
		return !(mi->flags & POSTERN_MSG_RECENT);
	case SK_SEQSET:
		return imap_seqset_contains(&k->set, m->seq, m->count);
	case SK_UIDSET:
		return imap_seqset_contains(&k->set, mi->uid, m->uidmax);
	case SK_LARGER:
		return mi->size > k->num;
	case SK_SMALLER:
		return mi->size < k->num;
	case SK_MODSEQ:
		return mi->modseq >= k->num;
	case SK_OLDER:
		return mi->internal_date <= (int64_t)k->num;
	case SK_YOUNGER:
		return mi->internal_date > (int64_t)k->num;
	case SK_BEFORE:
		return internal_day(mi) < k->day;
	case SK_ON:
		return internal_day(mi) == k->day;
	case SK_SINCE:
		return internal_day(mi) >= k->day;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if (load_mime(m) == NULL)
			return -1;
		/* RFC 3501 6.4.4: the date of the Date header alone, as
		 * written in its own zone: time and zone are ignored. */
		if ((sent = imap_mime_date(m->mime, &tz)) < 0)
			return 0;
		sent += (int64_t)tz * 60;
		day = sent >= 0 ? sent / 86400 : (sent - 86399) / 86400;
		return k->kind == SK_SENTBEFORE ? day < k->day :
		       k->kind == SK_SENTON ? day == k->day : day >= k->day;
	case SK_HEADER:
		if (load_header(m) < 0)
			return -1;
		r = imap_mime_header_matches(m->header, m->header_len,
		                             k->field, k->str, m->j->pool);
		if (r < 0) {
			m->j->err.code = POSTERN_SE_NOTSUPPORTED;
			snprintf(m->j->err.text, sizeof(m->j->err.text),
			         "header search is not available");
		}
		return r;
	case SK_BODY:
	case SK_TEXT:
		if (load_texts(m) < 0)
			return -1;
		return m->texts[k->ti].found;
	case SK_NOT:
		r = eval(m, k->a);
		return r < 0 ? r : !r;
	case SK_OR:
		r = eval(m, k->a);
		if (r != 0)
			return r;
		return eval(m, k->b);
	case SK_AND:
		for (c = k->a; c != NULL; c = c->next)
			if ((r = eval(m, c)) <= 0)
				return r;
		return 1;
	}
	return 0;
}

/* m for message seq of the view; info receives a copy of its index
 * entry (message() reuses one struct, and the keys may call the store
 * again), its keywords from j->pool. */
static void
msg_start(struct msg_ctx *m, struct imap_job *j,
          const struct imap_search_prog *p, uint32_t seq, uint32_t count,
          uint32_t uidmax, const struct postern_mailbox_status *st,
          struct postern_message_info *info)
{
	postern_mailbox_t *mb = j->s->mb;

	memset(m, 0, sizeof(*m));
	m->j = j;
	m->a = p;
	m->seq = seq;
	m->count = count;
	m->st = st;
	m->uidmax = uidmax;
	*info = *imap_storage->message(mb, seq);
	info->keywords = imap_host->pool_alloc(
		j->pool, (info->nkeywords + 1) * sizeof(uint32_t));
	if (info->nkeywords > 0)
		memcpy((uint32_t *)info->keywords,
		       imap_storage->message(mb, seq)->keywords,
		       info->nkeywords * sizeof(uint32_t));
	m->mi = info;
}

/* Closes what the keys opened of the message. */
static void
msg_end(struct msg_ctx *m)
{
	if (m->msg.msg != NULL)
		imap_storage->msg_close(m->msg.msg);
	m->msg.msg = NULL;
}

int
imap_search_match(struct imap_session *s, struct imap_search_prog *p,
                  uint32_t seq, postern_pool_t *pool, uint64_t *cost,
                  struct postern_storage_err *err)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct postern_message_info info;
	uint32_t count = imap_storage->count(s->mb), uidmax;
	struct imap_job j;
	struct msg_ctx m;
	int r;

	/* the evaluation's view of a job: this session, this pool */
	memset(&j, 0, sizeof(j));
	j.s = s;
	j.pool = pool;
	imap_storage->status(s->mb, &st);
	uidmax = count > 0 ? imap_storage->message(s->mb, count)->uid : 0;
	msg_start(&m, &j, p, seq, count, uidmax, &st, &info);
	if (info.expunged)
		return 0;
	if ((r = eval(&m, p->root)) < 0)
		*err = j.err;
	msg_end(&m);
	*cost += m.header_loaded || m.mime_loaded ? info.size : SEARCH_MSG_COST;
	return r;
}

/* ---- copying a program --------------------------------------------------*/

static const char *
copy_str(const char *str, postern_pool_t *pool)
{
	return str != NULL ? imap_host->pool_strndup(pool, str, strlen(str))
	                   : NULL;
}

static struct skey *
copy_key(const struct skey *k, postern_pool_t *pool)
{
	struct skey *c, **tail;
	const struct skey *sub;

	if (k == NULL)
		return NULL;
	c = imap_host->pool_alloc(pool, sizeof(*c));
	*c = *k;
	c->next = NULL;
	c->field = copy_str(k->field, pool);
	c->str = copy_str(k->str, pool);
	if (k->set.n > 0) {
		c->set.r = imap_host->pool_alloc(pool, k->set.n *
		                                       sizeof(*c->set.r));
		memcpy(c->set.r, k->set.r, k->set.n * sizeof(*c->set.r));
	}
	if (k->kind == SK_AND) {
		tail = &c->a;
		for (sub = k->a; sub != NULL; sub = sub->next) {
			*tail = copy_key(sub, pool);
			tail = &(*tail)->next;
		}
		return c;
	}
	c->a = copy_key(k->a, pool);
	c->b = copy_key(k->b, pool);
	return c;
}

struct imap_search_prog *
imap_search_prog_copy(const struct imap_search_prog *p, postern_pool_t *pool)
{
	struct imap_search_prog *c = imap_host->pool_alloc(pool, sizeof(*c));
	size_t i;

	c->root = copy_key(p->root, pool);
	c->nneedles = p->nneedles;
	c->needles = imap_host->pool_alloc(pool, (p->nneedles + 1) *
	                                         sizeof(*c->needles));
	for (i = 0; i < p->nneedles; i++) {
		c->needles[i] = p->needles[i];
		c->needles[i].needle = copy_str(p->needles[i].needle, pool);
	}
	c->next_seq = 0;
	return c;
}

/* 1 when the client left: no one wants the answer. */
static int
left(struct imap_job *j, uint32_t seq, uint32_t count)
{
	if (!imap_job_cancelled(j))
		return 0;
	imap_log(j->s, POSTERN_LOG_INFO, "search of %s stopped at "
	         "message %u of %u: the client left", j->s->user, seq,
	         count);
	return 1;
}

int
imap_search_step(struct imap_job *j, struct imap_search_prog *p,
                 imap_search_hit_fn *hit, void *arg)
{
	struct imap_session *s = j->s;
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct msg_ctx m;
	struct postern_message_info info;
	uint32_t seq, count = imap_storage->count(s->mb), uidmax;
	postern_pool_t *keep, *scratch;
	uint64_t cost = 0;
	int r;

	imap_storage->status(s->mb, &st);
	uidmax = count > 0 ? imap_storage->message(s->mb, count)->uid : 0;
	/* The view changes only by a sync, which comes after the last
	 * step: every step sees the same messages. */
	if (p->next_seq == 0)
		p->next_seq = 1;
	/* What one message needs (its header, MIME tree, decoded text)
	 * comes from a scratch pool cleared after it, not from the job's
	 * pool, which would hold every message's until the end. */
	keep = j->pool;
	scratch = imap_host->pool_create_limited(
		16384, (size_t)imap_cfg.message_memory);
	r = 1;
	for (seq = p->next_seq; seq <= count; seq++) {
		j->pool = keep;
		imap_host->pool_clear(scratch);
		j->pool = scratch;
		if (cost >= SEARCH_STEP_OCTETS) {
			p->next_seq = seq;
			r = 0;
			break;
		}
		if (left(j, seq, count)) {
			r = -1;
			break;
		}
		msg_start(&m, j, p, seq, count, uidmax, &st, &info);
		if (m.mi->expunged)
			continue;
		r = eval(&m, p->root);
		msg_end(&m);
		cost += m.header_loaded || m.mime_loaded ? m.mi->size
		                                         : SEARCH_MSG_COST;
		if (left(j, seq, count)) {
			r = -1;  /* the answer may be cut short: unused */
			break;
		}
		if (r < 0) {
			if (j->err.code == POSTERN_SE_EXPUNGED) {
				r = 1;
				continue;
			}
			break;
		}
		if (r == 1 && hit(j, arg, seq, m.mi, &cost) < 0) {
			r = -1;
			break;
		}
		r = 1;
	}
	j->pool = keep;
	imap_host->pool_destroy(scratch);
	return r;
}

static int
search_hit(struct imap_job *j, void *arg, uint32_t seq,
           const struct postern_message_info *mi, uint64_t *cost)
{
	struct search_arg *a = arg;

	(void)j;
	(void)cost;
	if (a->nhits == 0)
		a->first_modseq = mi->modseq;
	a->last_modseq = mi->modseq;
	if (a->uids != NULL)
		a->uids[a->nhits] = mi->uid;
	a->hits[a->nhits++] = a->by_uid ? mi->uid : seq;
	if (mi->modseq > a->max_modseq)
		a->max_modseq = mi->modseq;
	return 0;
}

static void
search_work(struct imap_job *j)
{
	struct search_arg *a = j->arg;
	int r;

	if (a->hits == NULL) {
		size_t n = (size_t)imap_storage->count(j->s->mb) + 1;

		struct postern_mailbox_status st = { .size = sizeof(st) };

		a->hits = imap_host->pool_alloc(j->pool, n * sizeof(*a->hits));
		if (a->ret & (RET_SAVE | RET_UPDATE))
			a->uids = imap_host->pool_alloc(j->pool,
			                                n * sizeof(*a->uids));
		/* the view does not change before the last step's sync */
		imap_storage->status(j->s->mb, &st);
		a->view_modseq = st.highestmodseq;
	}
	r = imap_search_step(j, a->prog, search_hit, a);
	if (r == 0) {
		/* Another step; no sync before the last. */
		j->sync = 0;
		j->rc = 0;
		return;
	}
	a->finished = 1;
	if (r < 0) {
		j->rc = -1;
		return;
	}
	j->rc = 0;
	/* Kept before this job's sync formats its changes: they are the
	 * first updates (RFC 5267 4.3). */
	if ((a->ret & RET_UPDATE) && (a->ret & RET_PARTIAL))
		/* a window of the result has no updates to follow that a
		 * client could apply; RFC 5267 4.3 lets us decline */
		imap_update_refuse(&j->out, j->tag, "updates of a PARTIAL "
		                   "result are not kept");
	else if (a->ret & RET_UPDATE)
		imap_update_add(j->s, &j->out, j->tag, a->prog, a->by_uid,
		                a->uids, a->nhits, a->view_modseq, NULL,
		                a->ret);
	if (!a->esearch) {
		size_t i;
		imap_buf_str(&j->out, "* SEARCH");
		for (i = 0; i < a->nhits; i++)
			imap_buf_printf(&j->out, " %u", a->hits[i]);
		if (a->uses_modseq && a->nhits > 0)
			imap_buf_printf(&j->out, " (MODSEQ %llu)",
			                (unsigned long long)a->max_modseq);
		imap_buf_str(&j->out, "\r\n");
		return;
	}
	/* RFC 5182 2.4: SAVE alone answers no ESEARCH */
	if (a->ret == RET_SAVE)
		return;
	imap_esearch_format(&j->out, j->tag, a->by_uid, a->ret, &a->part,
	                    a->hits, a->nhits);
	if (a->uses_modseq && a->nhits > 0)
		imap_buf_printf(&j->out, " MODSEQ %llu",
		                (unsigned long long)esearch_modseq(a));
	imap_buf_str(&j->out, "\r\n");
}

/* PARTIAL (RFC 5267 4.4): "(lo:hi set)" of the results at positions
 * lo..hi, NIL when none is. */
static void
partial_format(struct imap_buf *out, const struct imap_partial *part,
               const uint32_t *nums, size_t n)
{
	size_t hi = part->hi < n ? part->hi : n;

	imap_buf_printf(out, " PARTIAL (%u:%u ", part->lo, part->hi);
	if (part->lo > n)
		imap_buf_str(out, "NIL");
	else
		imap_buf_uidset(out, nums + part->lo - 1, hi - part->lo + 1);
	imap_buf_str(out, ")");
}

void
imap_esearch_format(struct imap_buf *out, const char *tag, int by_uid,
                    unsigned ret, const struct imap_partial *part,
                    const uint32_t *nums, size_t n)
{
	imap_buf_str(out, "* ESEARCH (TAG ");
	imap_buf_string(out, tag, strlen(tag));
	imap_buf_str(out, ")");
	if (by_uid)
		imap_buf_str(out, " UID");
	if ((ret & IMAP_RET_MIN) && n > 0)
		imap_buf_printf(out, " MIN %u", nums[0]);
	if ((ret & IMAP_RET_MAX) && n > 0)
		imap_buf_printf(out, " MAX %u", nums[n - 1]);
	if (ret & IMAP_RET_COUNT)
		imap_buf_printf(out, " COUNT %zu", n);
	if ((ret & IMAP_RET_ALL) && n > 0) {
		imap_buf_str(out, " ALL ");
		imap_buf_uidset(out, nums, n);
	}
	if (ret & IMAP_RET_PARTIAL)
		partial_format(out, part, nums, n);
}

void
imap_job_next_step(struct imap_job *j, void (*work)(struct imap_job *),
                   void (*done)(struct imap_job *))
{
	struct imap_job *next;
	postern_pool_t *p;

	/* The next step takes over the state (in j's pool). */
	next = imap_job_new(j->s, j->tag, 0);
	next->arg = j->arg;
	p = next->pool;
	next->pool = j->pool;
	j->pool = p;
	next->sync = 1;
	next->sync_flags = POSTERN_SYNC_NO_EXPUNGE;
	imap_job_run_heavy(next, work, done);
}

/* ---- SEARCHRES (RFC 5182) ---------------------------------------------*/

void
imap_searchres_free(struct imap_session *s)
{
	free(s->searchres);
	s->searchres = NULL;
	s->nsearchres = 0;
}

/* RETURN (SAVE): the result becomes "$"; with MIN and/or MAX but not
 * ALL or COUNT, only those (2.4); a failed SEARCH leaves "$" empty. */
static void
searchres_save(struct imap_session *s, const struct search_arg *a, int ok)
{
	size_t n = 0;

	imap_searchres_free(s);
	if (!ok || a->nhits == 0)
		return;
	if ((s->searchres = malloc(2 * sizeof(uint32_t) +
	                           a->nhits * sizeof(uint32_t))) == NULL)
		return;
	if (a->ret & RET_PARTIAL) {
		/* RFC 9394 3.1: the saved result is the partial one */
		if (a->part.lo <= a->nhits) {
			n = (a->part.hi < a->nhits ? a->part.hi : a->nhits) -
			    a->part.lo + 1;
			memcpy(s->searchres, a->uids + a->part.lo - 1,
			       n * sizeof(uint32_t));
		}
	} else if ((a->ret & (RET_MIN | RET_MAX)) &&
	    !(a->ret & (RET_ALL | RET_COUNT))) {
		if (a->ret & RET_MIN)
			s->searchres[n++] = a->uids[0];
		if ((a->ret & RET_MAX) && (n == 0 || a->nhits > 1))
			s->searchres[n++] = a->uids[a->nhits - 1];
	} else {
		memcpy(s->searchres, a->uids, a->nhits * sizeof(uint32_t));
		n = a->nhits;
	}
	s->nsearchres = n;
}

/* "$" of a command: the saved UIDs still in the view, as UIDs or as
 * their sequence numbers; expunged ones are gone from it (2.1). */
static int
searchres_resolve(void *ctx, int uid, struct imap_seqset *out)
{
	struct imap_cmd *c = ctx;
	struct imap_session *s = c->s;
	size_t i, n = 0;
	uint32_t seq, v;

	out->r = imap_host->pool_alloc(c->pool, (s->nsearchres + 1) *
	                                        sizeof(*out->r));
	for (i = 0; i < s->nsearchres && s->mb != NULL; i++) {
		if ((seq = imap_storage->seq_of_uid(s->mb,
		                                    s->searchres[i])) == 0)
			continue;
		v = uid ? s->searchres[i] : seq;
		if (n > 0 && out->r[n - 1].hi + 1 == v) {
			out->r[n - 1].hi = v;
			continue;
		}
		out->r[n].lo = out->r[n].hi = v;
		n++;
	}
	out->n = n;
	return 0;
}

void
imap_searchres_attach(struct imap_cmd *c)
{
	static const char *const resets[] = { "SELECT", "EXAMINE", "CLOSE",
		"UNSELECT" };
	size_t i;

	for (i = 0; i < sizeof(resets) / sizeof(resets[0]); i++)
		if (strcmp(c->name, resets[i]) == 0) {
			imap_searchres_free(c->s);
			/* RFC 5267 4.3: they end with the mailbox */
			imap_updates_free(c->s);
		}
	c->args.saved = searchres_resolve;
	c->args.saved_ctx = c;
	c->args.seq_uid = c->uid;
}

static void
search_done(struct imap_job *j)
{
	struct search_arg *a = j->arg;

	if (!a->finished) {
		imap_job_next_step(j, search_work, search_done);
		return;
	}
	if (a->ret & RET_SAVE)
		searchres_save(j->s, a, j->rc == 0);
	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "Search completed");
}

static int
uses_modseq(const struct skey *k)
{
	const struct skey *c;

	if (k == NULL)
		return 0;
	if (k->kind == SK_MODSEQ)
		return 1;
	if (k->kind == SK_AND) {
		for (c = k->a; c != NULL; c = c->next)
			if (uses_modseq(c))
				return 1;
		return 0;
	}
	return uses_modseq(k->a) || uses_modseq(k->b);
}

/* partial-range = number ":" number, both above 0 (RFC 5267 4.4); a
 * range given high first means the same. */
static int
parse_partial(struct imap_args *a, struct imap_partial *part)
{
	struct imap_str w;
	uint64_t v[2] = { 0, 0 };
	size_t i, k = 0;

	if (imap_arg_sp(a) < 0 || imap_arg_atom(a, &w) < 0)
		return -1;
	for (i = 0; i < w.len; i++) {
		if (w.s[i] == ':' && k == 0 && i > 0) {
			k = 1;
			continue;
		}
		if (w.s[i] < '0' || w.s[i] > '9' ||
		    (v[k] = v[k] * 10 + (uint64_t)(w.s[i] - '0')) >
		    0xffffffffu)
			break;
	}
	if (i < w.len || k == 0 || v[0] == 0 || v[1] == 0) {
		a->error = "PARTIAL needs a range n:m of positions above 0";
		return -1;
	}
	part->lo = (uint32_t)(v[0] < v[1] ? v[0] : v[1]);
	part->hi = (uint32_t)(v[0] < v[1] ? v[1] : v[0]);
	return 0;
}

int
imap_search_parse_return(struct imap_cmd *c, unsigned *ret,
                         struct imap_partial *part)
{
	struct imap_args *a = &c->args;
	struct imap_str w;
	unsigned bit;

	*ret = 0;
	if (imap_arg_sp(a) < 0 || imap_arg_char(a, '(') < 0)
		return -1;
	if (imap_arg_try_char(a, ')')) {
		*ret = RET_ALL;
		return 0;
	}
	do {
		if (imap_arg_atom(a, &w) < 0)
			return -1;
		bit = 0;
		if (imap_str_is(&w, "MIN"))
			bit = RET_MIN;
		else if (imap_str_is(&w, "MAX"))
			bit = RET_MAX;
		else if (imap_str_is(&w, "ALL"))
			bit = RET_ALL;
		else if (imap_str_is(&w, "COUNT"))
			bit = RET_COUNT;
		else if (imap_str_is(&w, "SAVE"))
			bit = RET_SAVE;
		else if (imap_str_is(&w, "UPDATE"))
			bit = RET_UPDATE;
		else if (imap_str_is(&w, "PARTIAL")) {
			bit = RET_PARTIAL;
			if (!(*ret & bit) && parse_partial(a, part) < 0)
				return -1;
		} else if (!imap_str_is(&w, "CONTEXT")) {
			a->error = "unknown RETURN option";
			return -1;
		}
		if (*ret & bit & (RET_PARTIAL | RET_UPDATE)) {
			a->error = "RETURN option given twice";
			return -1;
		}
		*ret |= bit;
	} while (imap_arg_try_char(a, ' '));
	if (imap_arg_char(a, ')') < 0)
		return -1;
	/* RFC 5267 4.4: PARTIAL is a part of what ALL would return */
	if ((*ret & RET_PARTIAL) && (*ret & RET_ALL)) {
		a->error = "PARTIAL and ALL exclude each other";
		return -1;
	}
	if (*ret == 0 || *ret == RET_UPDATE)
		*ret |= RET_ALL;
	return 0;
}

int
imap_search_charset(struct imap_cmd *c, const struct imap_str *cs)
{
	if (imap_str_is(cs, "UTF-8") || imap_str_is(cs, "US-ASCII"))
		return 0;
	imap_reply(c->s, c->tag, "NO", "[BADCHARSET (UTF-8 US-ASCII)] "
	           "Unsupported charset");
	return -1;
}

struct imap_search_prog *
imap_search_parse(struct imap_cmd *c)
{
	struct imap_search_prog *p;
	struct sparse ps = { 0 };
	struct skey *root;

	ps.c = c;
	ps.needles = imap_host->pool_alloc(c->pool,
	                                   (size_t)imap_cfg.max_search_keys *
	                                   sizeof(*ps.needles));
	if (parse_list(&ps, &root, 0, 0) < 0 || imap_arg_end(&c->args) < 0) {
		if (ps.limit != NULL)
			imap_reply(c->s, c->tag, "NO", "[LIMIT] %s: %s",
			           c->name, ps.limit);
		else
			imap_reply(c->s, c->tag, "BAD", "%s: %s", c->name,
			           c->args.error != NULL ? c->args.error
			                                 : "invalid arguments");
		return NULL;
	}
	/* The tree lives in the command's pool until the command ends. */
	p = imap_host->pool_alloc(c->pool, sizeof(*p));
	p->root = root;
	p->needles = ps.needles;
	p->nneedles = ps.nneedles;
	return p;
}

int
imap_search_uses_modseq(const struct imap_search_prog *p)
{
	return uses_modseq(p->root);
}

void
imap_cmd_search(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_search_prog *prog;
	struct search_arg *sa;
	struct imap_job *j;
	struct imap_str w, cs;
	struct imap_partial part = { 0, 0 };
	char *save;
	unsigned ret = 0;
	int esearch = 0;

	if (imap_arg_sp(a) < 0)
		goto bad;
	save = a->p;
	if (imap_arg_atom(a, &w) == 0 && imap_str_is(&w, "RETURN")) {
		if (imap_search_parse_return(c, &ret, &part) < 0 ||
		    imap_arg_sp(a) < 0)
			goto bad;
		/* "$" would follow two results at once (RFC 5267 4.3
		 * updates one, RFC 5182 fixes the other) */
		if ((ret & RET_SAVE) && (ret & RET_UPDATE)) {
			imap_reply(c->s, c->tag, "BAD", "SEARCH: RETURN "
			           "(SAVE) and (UPDATE) exclude each other");
			return;
		}
		if ((ret & RET_UPDATE) && imap_update_find(c->s, c->tag)) {
			imap_reply(c->s, c->tag, "BAD", "SEARCH: the tag of "
			           "a search kept updated is reused");
			return;
		}
		esearch = 1;
		save = a->p;
	} else if (IMAP_REV2(c->s)) {
		/* RFC 9051 6.4.4: IMAP4rev2 answers with ESEARCH (ALL) */
		esearch = 1;
		ret = RET_ALL;
	}
	a->p = save;
	a->error = NULL;
	if (imap_arg_atom(a, &w) == 0 && imap_str_is(&w, "CHARSET")) {
		if (imap_arg_sp(a) < 0 || imap_arg_astring(a, &cs) < 0 ||
		    imap_arg_sp(a) < 0)
			goto bad;
		/* RFC 6855 3: after UTF8=ACCEPT strings are UTF-8, a
		 * charset would contradict that */
		if (c->s->enabled & IMAP_ENABLED_UTF8) {
			a->error = "no CHARSET after ENABLE UTF8=ACCEPT";
			goto bad;
		}
		if (imap_search_charset(c, &cs) < 0)
			goto failed;
	} else {
		a->p = save;
		a->error = NULL;
	}
	if ((prog = imap_search_parse(c)) == NULL)
		goto failed;
	j = imap_job_new(c->s, c->tag, sizeof(*sa));
	sa = j->arg;
	sa->prog = prog;
	sa->by_uid = c->uid;
	sa->esearch = esearch;
	sa->ret = ret;
	sa->part = part;
	sa->uses_modseq = imap_search_uses_modseq(prog);
	j->sync = 1;
	j->sync_flags = POSTERN_SYNC_NO_EXPUNGE;
	imap_job_run_heavy(j, search_work, search_done);
	return;
bad:
	imap_reply(c->s, c->tag, "BAD", "SEARCH: %s",
	           a->error != NULL ? a->error : "invalid arguments");
failed:
	/* RFC 5182 2.1: a SEARCH RETURN (SAVE) that fails empties "$" */
	if (ret & RET_SAVE)
		imap_searchres_free(c->s);
}
