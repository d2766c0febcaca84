/*
 * imap_sort.c - SORT and UID SORT (RFC 5256, with DISPLAYFROM and
 * DISPLAYTO of RFC 5957 and the RETURN options of ESORT, RFC 5267 3),
 * THREAD and UID THREAD (RFC 5256).
 *
 * The search program is SEARCH's (imap_search.h), evaluated in its
 * steps on heavy jobs; each match's keys are taken then: size and
 * INTERNALDATE from the index; the others from the worker's key cache
 * (imap_sortcache.c), else from the message's parsed structure in the
 * storage cache (one read, no parse; SORT and ORDEREDSUBJECT), else
 * from its header (THREAD=REFERENCES always: References is not in the
 * structure), then kept in the key cache.  The keys live in the
 * command's job pool, counted against sort_memory; sorting and
 * threading run after the last step, on the job thread.  A SORT RETURN
 * (UPDATE) keeps its sorted result and keys (imap_sort_live) for
 * imap_context.c, which puts each message changed in its place.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "imap_mime.h"
#include "imap_search.h"
#include "imap_sort.h"

/* Criteria in one SORT: there are nine keys, each may be reversed;
 * more than this is a client gone wrong. */
#define SORT_MAX_CRITERIA IMAP_SORT_SIG_MAX
/* A match whose keys come from the cached structure costs this much
 * of a search step (as if that many octets were read). */
#define SORT_KEY_COST 4096u
/* The References field is looked for in this much of a header. */
#define SORT_MAX_HEADER (256u << 10)

enum sort_key {
	KEY_ARRIVAL, KEY_CC, KEY_DATE, KEY_FROM, KEY_SIZE, KEY_SUBJECT,
	KEY_TO, KEY_DISPLAYFROM, KEY_DISPLAYTO,
};

static const char *const key_names[] = {
	"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO",
	"DISPLAYFROM", "DISPLAYTO",
};

struct criterion {
	enum sort_key key;
	int reverse;
};

struct sort_arg {
	struct imap_search_prog *prog;
	int thread;                 /* THREAD, else SORT */
	enum imap_thread_alg alg;
	struct criterion crit[SORT_MAX_CRITERIA];
	size_t ncrit;
	unsigned need;              /* IMAP_SORT_* */
	uint32_t uidvalidity;       /* of the view: the key cache's */
	int by_uid;
	int esort;                  /* RETURN given */
	unsigned ret;
	struct imap_partial part;
	postern_pool_t *keep;       /* the keys' pool (the job's) */
	size_t key_bytes;           /* what they take, to sort_memory */
	struct imap_sort_msg *msgs; /* the matches */
	size_t nmsgs;
	int finished;
	uint64_t view_modseq;       /* the view's when it was searched */
	int rankable;               /* a SORT that may keep and use ranks */
	int by_rank;                /* every match so far came by rank */
	uint32_t rank_gen;          /* of those ranks (0: none yet) */
	unsigned char sig[IMAP_SORT_SIG_MAX];  /* the criteria, for ranks */
};

/* ---- keys of one match -------------------------------------------------*/

/* The raw header fields the keys are made of. */
struct fields {
	struct postern_mime_envelope e;
	const char *references;
};

/* From the message's header (read up to SORT_MAX_HEADER): the first of
 * each field, as the MIME parser's envelope takes them.  -1 with j->err
 * set when the message cannot be read. */
static int
header_fields(struct imap_job *j, uint32_t uid, struct fields *f,
              uint64_t *cost)
{
	static const struct { const char *name; size_t off; } names[] = {
		{ "Date", offsetof(struct fields, e.date) },
		{ "Subject", offsetof(struct fields, e.subject) },
		{ "From", offsetof(struct fields, e.from) },
		{ "To", offsetof(struct fields, e.to) },
		{ "Cc", offsetof(struct fields, e.cc) },
		{ "Message-ID", offsetof(struct fields, e.message_id) },
		{ "In-Reply-To", offsetof(struct fields, e.in_reply_to) },
		{ "References", offsetof(struct fields, references) },
	};
	struct postern_mime_header_iter it;
	struct postern_mime_field fl;
	struct postern_msg_size sz;
	postern_msg_t *msg;
	uint64_t got = 0, want;
	ssize_t r = 0;
	const char **slot;
	size_t i;
	char *h;

	if (imap_storage->msg_open(j->s->mb, uid, &msg, &sz, &j->err) < 0)
		return -1;
	want = sz.header_size < SORT_MAX_HEADER ? sz.header_size
	                                        : SORT_MAX_HEADER;
	h = imap_host->pool_alloc(j->pool, want + 1);
	while (h != NULL && got < want &&
	       (r = imap_storage->msg_read(msg, got, h + got, want - got,
	                                   &j->err)) > 0)
		got += (uint64_t)r;
	imap_storage->msg_close(msg);
	*cost += got;
	if (r < 0)
		return -1;
	if (h == NULL)
		return 0;   /* past message_memory: no fields, as if none */
	it.data = h;
	it.len = got;
	it.pos = 0;
	while (imap_host->mime_header_next(&it, j->pool, &fl) > 0)
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			slot = (const char **)((char *)f + names[i].off);
			if (*slot == NULL &&
			    strcasecmp(fl.name, names[i].name) == 0)
				*slot = fl.value;
		}
	return 0;
}

/* A key string into the keys' pool ("" when short of memory: the
 * message sorts first rather than not at all). */
static const char *
keep_str(struct sort_arg *a, const char *s)
{
	const char *k;
	size_t n;

	if (s == NULL)
		return "";
	n = strlen(s);
	a->key_bytes += n + 1;
	k = imap_host->pool_strndup(a->keep, s, n);
	return k != NULL ? k : "";
}

/* The message's own ID (*msgid, NULL when none) and its parents' into
 * ids[IMAP_SORT_MAX_REFS], from `pool`; returns how many parents.  RFC
 * 5256 3 step 1: In-Reply-To's first ID stands for a missing or empty
 * References. */
static size_t
thread_ids(const struct fields *f, const char **msgid, const char **ids,
           postern_pool_t *pool)
{
	size_t n;

	*msgid = imap_sort_msgids(f->e.message_id, ids, 1, pool) == 1
	                 ? ids[0] : NULL;
	n = imap_sort_msgids(f->references, ids, IMAP_SORT_MAX_REFS, pool);
	if (n == 0)
		n = imap_sort_msgids(f->e.in_reply_to, ids, 1, pool);
	return n;
}

static void
make_keys(struct sort_arg *a, struct imap_job *j, struct imap_sort_msg *m,
          const struct fields *f)
{
	const struct postern_mime_envelope *e = &f->e;
	const char *ids[IMAP_SORT_MAX_REFS], *msgid;
	size_t i;

	m->date = imap_sort_sent_date(e->date, m->arrival);
	m->subject = keep_str(a, imap_sort_base_subject(e->subject,
	                                                &m->is_reply,
	                                                j->pool));
	m->from = keep_str(a, imap_sort_address(e->from, 0, j->pool));
	m->to = keep_str(a, imap_sort_address(e->to, 0, j->pool));
	m->cc = keep_str(a, imap_sort_address(e->cc, 0, j->pool));
	m->dfrom = keep_str(a, imap_sort_address(e->from, 1, j->pool));
	m->dto = keep_str(a, imap_sort_address(e->to, 1, j->pool));
	if (!(a->need & IMAP_SORT_REFS))
		return;
	m->nrefs = thread_ids(f, &msgid, ids, j->pool);
	if (msgid != NULL)
		m->msgid = keep_str(a, msgid);
	if (m->nrefs == 0)
		return;
	a->key_bytes += m->nrefs * sizeof(*m->refs);
	m->refs = imap_host->pool_alloc(a->keep, m->nrefs * sizeof(*m->refs));
	if (m->refs == NULL) {
		m->nrefs = 0;
		return;
	}
	for (i = 0; i < m->nrefs; i++)
		m->refs[i] = keep_str(a, ids[i]);
}

/* The header fields of a match: from the cached MIME structure when it
 * is there (References are not in it), else from the header (then
 * *from_header is set). */
static int
load_fields(struct sort_arg *a, struct imap_job *j, uint32_t uid,
            struct fields *f, uint64_t *cost, int *from_header)
{
	const struct imap_mime *mime;
	const struct postern_mime_envelope *e;

	memset(f, 0, sizeof(*f));
	if (!(a->need & IMAP_SORT_REFS) &&
	    (mime = imap_mime_load_cached(imap_storage, j->s->mb, uid,
	                                  j->pool)) != NULL) {
		if ((e = imap_mime_fields(mime)) != NULL)
			f->e = *e;
		*cost += SORT_KEY_COST;
		return 0;
	}
	*from_header = 1;
	return header_fields(j, uid, f, cost);
}

/* NO [LIMIT]: the keys of the mailbox need more than sort_memory. */
static int
too_large(struct imap_job *j, const struct sort_arg *a)
{
	j->err.code = POSTERN_SE_LIMIT;
	snprintf(j->err.text, sizeof(j->err.text), "%s: the sort keys of "
	         "this mailbox need more than imap.sort_memory (%lld octets)",
	         a->thread ? "THREAD" : "SORT", imap_cfg.sort_memory);
	return -1;
}

/* Message m's keys, from the worker's key cache or made and kept
 * there: 0, 1 when the message was expunged by another session
 * meanwhile (left out, as SEARCH leaves it), -1 on error. */
static int
take_keys(struct sort_arg *a, struct imap_job *j, struct imap_sort_msg *m,
          const struct postern_message_info *mi, uint64_t *cost)
{
	const char *ids[IMAP_SORT_MAX_REFS];
	struct imap_sort_msg kept;
	struct fields f;
	int from_header = 0;

	if (a->key_bytes > (size_t)imap_cfg.sort_memory)
		return too_large(j, a);
	if (imap_sortcache_get(j->s->user, a->uidvalidity, mi, a->need, m,
	                       a->keep, &a->key_bytes))
		return 0;
	if (load_fields(a, j, mi->uid, &f, cost, &from_header) < 0)
		return j->err.code == POSTERN_SE_EXPUNGED ? 1 : -1;
	make_keys(a, j, m, &f);
	if (!from_header || (a->need & IMAP_SORT_REFS)) {
		imap_sortcache_put(j->s->user, a->uidvalidity, m, a->need);
		return 0;
	}
	/* A SORT that read the header keeps its thread IDs too (in the
	 * cache only, from the scratch pool): a THREAD=REFERENCES after
	 * it, as webmail's threaded view does, reads no header again. */
	kept = *m;
	kept.nrefs = thread_ids(&f, &kept.msgid, ids, j->pool);
	kept.refs = ids;
	imap_sortcache_put(j->s->user, a->uidvalidity, &kept,
	                   a->need | IMAP_SORT_REFS);
	return 0;
}

/* A match without a rank after matches taken by rank: the keys of
 * those too, after all. */
static int
leave_ranks(struct sort_arg *a, struct imap_job *j, uint64_t *cost)
{
	struct postern_message_info mi;
	size_t i, k = 0;
	int r;

	a->by_rank = 0;
	for (i = 0; i < a->nmsgs; i++) {
		memset(&mi, 0, sizeof(mi));
		mi.uid = a->msgs[i].uid;
		mi.size = a->msgs[i].size;
		mi.internal_date = a->msgs[i].arrival;
		a->msgs[k] = a->msgs[i];
		if ((r = take_keys(a, j, &a->msgs[k], &mi, cost)) < 0)
			return -1;
		k += r == 0;
	}
	a->nmsgs = k;
	return 0;
}

/* imap_search_hit_fn: a match, with its rank when every match so far
 * has one (nothing else is needed to sort them), else with its keys. */
static int
collect(struct imap_job *j, void *arg, uint32_t seq,
        const struct postern_message_info *mi, uint64_t *cost)
{
	struct sort_arg *a = arg;
	struct imap_sort_msg *m = &a->msgs[a->nmsgs];
	int r;

	memset(m, 0, sizeof(*m));
	m->seq = seq;
	m->uid = mi->uid;
	m->arrival = mi->internal_date;
	m->size = mi->size;
	m->date = m->arrival;
	m->subject = m->from = m->to = m->cc = m->dfrom = m->dto = "";
	if (a->need == 0) {
		a->nmsgs++;
		return 0;
	}
	if (a->by_rank) {
		if (imap_sortcache_rank(j->s->user, a->uidvalidity, mi,
		                        a->sig, a->ncrit, &a->rank_gen,
		                        &m->rank)) {
			a->nmsgs++;
			return 0;
		}
		struct imap_sort_msg cur = *m;

		if (leave_ranks(a, j, cost) < 0)
			return -1;
		/* matches expunged meanwhile left: this one's slot moved */
		m = &a->msgs[a->nmsgs];
		*m = cur;
	}
	if ((r = take_keys(a, j, m, mi, cost)) < 0)
		return -1;
	a->nmsgs += r == 0;
	return 0;
}

/* ---- sorting -----------------------------------------------------------*/

/* qsort has no argument for the comparison: the criteria of the SORT
 * being sorted on this thread. */
static __thread const struct sort_arg *sorting;

static int
cmp_num(int64_t x, int64_t y)
{
	return x < y ? -1 : x > y;
}

static int
cmp_key(const struct imap_sort_msg *x, const struct imap_sort_msg *y,
        enum sort_key k)
{
	switch (k) {
	case KEY_ARRIVAL:
		return cmp_num(x->arrival, y->arrival);
	case KEY_DATE:
		return cmp_num(x->date, y->date);
	case KEY_SIZE:
		return x->size < y->size ? -1 : x->size > y->size;
	case KEY_CC:
		return strcmp(x->cc, y->cc);
	case KEY_FROM:
		return strcmp(x->from, y->from);
	case KEY_TO:
		return strcmp(x->to, y->to);
	case KEY_SUBJECT:
		return strcmp(x->subject, y->subject);
	case KEY_DISPLAYFROM:
		return strcmp(x->dfrom, y->dfrom);
	case KEY_DISPLAYTO:
		return strcmp(x->dto, y->dto);
	}
	return 0;
}

/* The criteria in order; equal messages by sequence number (RFC 5256 3,
 * which REVERSE does not turn). */
static int
msg_cmp(const void *a, const void *b)
{
	const struct imap_sort_msg *x = a, *y = b;
	size_t i;
	int c;

	for (i = 0; i < sorting->ncrit; i++) {
		c = cmp_key(x, y, sorting->crit[i].key);
		if (c != 0)
			return sorting->crit[i].reverse ? -c : c;
	}
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* What is sorted: the first criterion's key as numbers that order as
 * the key does (a string's first 16 octets in two), so most
 * comparisons are integer comparisons, and the message for the rest. */
struct sortent {
	uint64_t k, k2;
	const struct imap_sort_msg *m;
};

/* Octets 0-7 of s (big-endian, zero-padded) in *k, 8-15 in *k2. */
static void
string_key(const char *s, uint64_t *k, uint64_t *k2)
{
	size_t i;

	*k = *k2 = 0;
	for (i = 0; i < 16 && s[i] != '\0'; i++) {
		if (i < 8)
			*k |= (uint64_t)(unsigned char)s[i] << (56 - 8 * i);
		else
			*k2 |= (uint64_t)(unsigned char)s[i] << (120 - 8 * i);
	}
}

static void
first_key(struct sortent *e, const struct criterion *c)
{
	const struct imap_sort_msg *m = e->m;
	const char *s = NULL;
	uint64_t k = 0, k2 = 0;

	switch (c->key) {
	case KEY_ARRIVAL:
		k = (uint64_t)m->arrival ^ (1ull << 63);
		break;
	case KEY_DATE:
		k = (uint64_t)m->date ^ (1ull << 63);
		break;
	case KEY_SIZE:
		k = m->size;
		break;
	case KEY_CC: s = m->cc; break;
	case KEY_FROM: s = m->from; break;
	case KEY_TO: s = m->to; break;
	case KEY_SUBJECT: s = m->subject; break;
	case KEY_DISPLAYFROM: s = m->dfrom; break;
	case KEY_DISPLAYTO: s = m->dto; break;
	}
	if (s != NULL)
		string_key(s, &k, &k2);
	e->k = c->reverse ? ~k : k;
	e->k2 = c->reverse ? ~k2 : k2;
}

static int
ent_cmp(const void *a, const void *b)
{
	const struct sortent *x = a, *y = b;

	if (x->k != y->k)
		return x->k < y->k ? -1 : 1;
	if (x->k2 != y->k2)
		return x->k2 < y->k2 ? -1 : 1;
	return msg_cmp(x->m, y->m);
}

/* By k: a stable radix sort, eight passes of a byte (a pass whose byte
 * is the same everywhere is skipped); the result in e. */
static void
radix_sort(struct sortent *e, struct sortent *tmp, size_t n)
{
	struct sortent *from = e, *to = tmp, *t;
	size_t cnt[256], pos, c, i;
	unsigned shift;

	for (shift = 0; shift < 64; shift += 8) {
		memset(cnt, 0, sizeof(cnt));
		for (i = 0; i < n; i++)
			cnt[(from[i].k >> shift) & 0xff]++;
		if (cnt[(from[0].k >> shift) & 0xff] == n)
			continue;
		for (pos = 0, i = 0; i < 256; i++) {
			c = cnt[i];
			cnt[i] = pos;
			pos += c;
		}
		for (i = 0; i < n; i++)
			to[cnt[(from[i].k >> shift) & 0xff]++] = from[i];
		t = from;
		from = to;
		to = t;
	}
	if (from != e)
		memcpy(e, from, n * sizeof(*e));
}

/* The messages in the order of the criteria: by the first key's
 * integer, then each run of equal integers by every criterion. */
static void
sort_msgs(struct imap_job *j, struct sort_arg *a, struct sortent *e)
{
	struct sortent *tmp;
	size_t i, k;

	for (i = 0; i < a->nmsgs; i++) {
		e[i].m = &a->msgs[i];
		if (a->by_rank)
			e[i].k = a->msgs[i].rank;  /* unique: no ties */
		else
			first_key(&e[i], &a->crit[0]);
	}
	if (a->nmsgs < 2)
		return;
	tmp = imap_host->pool_alloc(j->pool, a->nmsgs * sizeof(*tmp));
	radix_sort(e, tmp, a->nmsgs);
	if (a->by_rank)
		return;
	sorting = a;
	for (i = 0; i < a->nmsgs; i = k) {
		for (k = i + 1; k < a->nmsgs && e[k].k == e[i].k; k++)
			;
		if (k - i > 1)
			qsort(e + i, k - i, sizeof(*e), ent_cmp);
	}
	sorting = NULL;
}

/* ---- a SORT kept updated (RFC 5267 4.3, CONTEXT=SORT) ------------------*/

static int
uid_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* The result in sort order with each message's keys (strings in
 * `pool`), the criteria and what making keys needs.  Entries' `seq` is
 * their UID: ties in the criteria order by UID, which the view's
 * sequence numbers follow whatever was expunged since. */
struct imap_sort_live {
	struct sort_arg a;          /* criteria, need, uidvalidity */
	postern_pool_t *pool;
	size_t key_bytes;           /* what the keys took, to sort_memory */
	struct imap_sort_msg *m;    /* malloc'd, in sort order */
	uint32_t n, cap;
};

void
imap_sort_live_ends(const struct imap_sort_live *l, uint32_t *first,
                    uint32_t *last)
{
	*first = l->n > 0 ? l->m[0].uid : 0;
	*last = l->n > 0 ? l->m[l->n - 1].uid : 0;
}

void
imap_sort_live_free(struct imap_sort_live *l)
{
	if (l == NULL)
		return;
	imap_host->pool_destroy(l->pool);
	free(l->m);
	free(l);
}

static const char *
live_str(struct imap_sort_live *l, const char *s)
{
	size_t n = strlen(s);
	const char *k;

	l->key_bytes += n + 1;
	k = imap_host->pool_strndup(l->pool, s, n);
	return k != NULL ? k : "";
}

/* A message's keys into l's pool. */
static void
live_keep(struct imap_sort_live *l, struct imap_sort_msg *to,
          const struct imap_sort_msg *from)
{
	*to = *from;
	to->seq = from->uid;
	to->subject = live_str(l, from->subject);
	to->from = live_str(l, from->from);
	to->to = live_str(l, from->to);
	to->cc = live_str(l, from->cc);
	to->dfrom = live_str(l, from->dfrom);
	to->dto = live_str(l, from->dto);
	to->msgid = NULL;
	to->refs = NULL;
	to->nrefs = 0;
}

/* The sorted result of the SORT's last step, kept updated from now. */
static void
live_start(struct imap_job *j, struct sort_arg *a, const struct sortent *e)
{
	struct imap_sort_live *l;
	uint32_t *uids;
	size_t i;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->m = malloc((a->nmsgs + 1) * sizeof(*l->m))) == NULL ||
	    (uids = malloc((a->nmsgs + 1) * sizeof(*uids))) == NULL) {
		if (l != NULL)
			free(l->m);
		free(l);
		imap_update_refuse(&j->out, j->tag, "out of memory");
		return;
	}
	l->a = *a;
	l->a.prog = NULL;
	l->a.msgs = NULL;
	l->a.keep = NULL;
	l->pool = imap_host->pool_create(4096);
	l->cap = (uint32_t)a->nmsgs + 1;
	for (i = 0; i < a->nmsgs; i++) {
		live_keep(l, &l->m[i], e[i].m);
		uids[i] = e[i].m->uid;
	}
	l->n = (uint32_t)a->nmsgs;
	qsort(uids, a->nmsgs, sizeof(*uids), uid_cmp);
	imap_update_add(j->s, &j->out, j->tag, a->prog, a->by_uid, uids,
	                a->nmsgs, a->view_modseq, l, a->ret);
	free(uids);
}

size_t
imap_sort_live_remove(struct imap_sort_live *l, const uint32_t *uids,
                      size_t n, uint32_t *pos, uint32_t *out)
{
	uint32_t i, k = 0, gone = 0;

	/* one pass: a message leaving at index i is at position i + 1
	 * less those that left before it */
	for (i = 0; i < l->n; i++) {
		if (imap_uid_in(uids, n, l->m[i].uid)) {
			pos[gone] = i + 1 - gone;
			out[gone++] = l->m[i].uid;
			continue;
		}
		l->m[k++] = l->m[i];
	}
	l->n = k;
	return gone;
}

/* The keys of message uid of the view into *m (strings in l's pool).
 * -1 with *err set. */
static int
live_keys(struct imap_session *s, struct imap_sort_live *l, uint32_t uid,
          postern_pool_t *scratch, uint64_t *cost, struct imap_sort_msg *m,
          struct postern_storage_err *err)
{
	uint32_t seq = imap_storage->seq_of_uid(s->mb, uid);
	struct postern_message_info info;
	struct sort_arg a = l->a;
	struct imap_job j;

	if (seq == 0) {
		err->code = POSTERN_SE_EXPUNGED;
		snprintf(err->text, sizeof(err->text), "message gone");
		return -1;
	}
	info = *imap_storage->message(s->mb, seq);
	/* collect() on a job of this session, one message, its keys in
	 * the scratch pool, then kept */
	memset(&j, 0, sizeof(j));
	j.s = s;
	j.pool = scratch;
	a.msgs = m;
	a.nmsgs = 0;
	a.keep = scratch;
	a.key_bytes = 0;
	imap_host->pool_clear(scratch);
	if (l->key_bytes > (size_t)imap_cfg.sort_memory ||
	    collect(&j, &a, seq, &info, cost) < 0 || a.nmsgs == 0) {
		*err = j.err;
		if (err->code == POSTERN_SE_OK) {
			err->code = POSTERN_SE_LIMIT;
			snprintf(err->text, sizeof(err->text), "the sort keys "
			         "need more than imap.sort_memory");
		}
		return -1;
	}
	live_keep(l, m, m);
	return 0;
}

static int
live_cmp(const void *x, const void *y)
{
	return msg_cmp(x, y);
}

int
imap_sort_live_add(struct imap_session *s, struct imap_sort_live *l,
                   const uint32_t *uids, size_t n, postern_pool_t *scratch,
                   uint64_t *cost, uint32_t *pos, uint32_t *out,
                   struct postern_storage_err *err)
{
	struct imap_sort_msg *add, *all;
	size_t i, k = 0, x = 0, y = 0;
	int rc = -1;

	if (n == 0)
		return 0;
	add = malloc(n * sizeof(*add));
	all = malloc((l->n + n + 1) * sizeof(*all));
	if (add == NULL || all == NULL) {
		err->code = POSTERN_SE_LIMIT;
		snprintf(err->text, sizeof(err->text), "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (*cost > IMAP_UPDATE_SYNC_OCTETS) {
			err->code = POSTERN_SE_LIMIT;
			snprintf(err->text, sizeof(err->text), "the changes "
			         "are too many to follow");
			goto out;
		}
		if (live_keys(s, l, uids[i], scratch, cost, &add[i], err) < 0)
			goto out;
	}
	/* in sort order, then merged: entering one after the other in
	 * that order, each is at its final place when it enters */
	sorting = &l->a;
	qsort(add, n, sizeof(*add), live_cmp);
	while (x < l->n || y < n) {
		if (y == n || (x < l->n && msg_cmp(&l->m[x], &add[y]) < 0)) {
			all[k++] = l->m[x++];
			continue;
		}
		pos[y] = (uint32_t)k + 1;
		out[y] = add[y].uid;
		all[k++] = add[y++];
	}
	sorting = NULL;
	free(l->m);
	l->m = all;
	l->n = (uint32_t)k;
	l->cap = (uint32_t)(l->n + 1);
	all = NULL;
	rc = 0;
out:
	free(add);
	free(all);
	return rc;
}

static void
sort_output(struct imap_job *j, struct sort_arg *a)
{
	struct sortent *e;
	uint32_t *nums;
	size_t i;

	e = imap_host->pool_alloc(j->pool, (a->nmsgs + 1) * sizeof(*e));
	sort_msgs(j, a, e);
	nums = imap_host->pool_alloc(j->pool, (a->nmsgs + 1) * sizeof(*nums));
	if (a->rankable && !a->by_rank) {
		for (i = 0; i < a->nmsgs; i++)
			nums[i] = e[i].m->uid;
		imap_sortcache_set_ranks(j->s->user, a->uidvalidity, a->sig,
		                         a->ncrit, nums, a->nmsgs);
	}
	for (i = 0; i < a->nmsgs; i++)
		nums[i] = a->by_uid ? e[i].m->uid : e[i].m->seq;
	if (!a->esort) {
		imap_buf_str(&j->out, "* SORT");
		for (i = 0; i < a->nmsgs; i++) {
			imap_buf_add(&j->out, " ", 1);
			imap_buf_uint(&j->out, nums[i]);
		}
		imap_buf_str(&j->out, "\r\n");
		return;
	}
	/* RFC 5267 3.1: MIN and MAX are the first and last in the sort
	 * order, ALL keeps that order. */
	if ((a->ret & IMAP_RET_UPDATE) && (a->ret & IMAP_RET_PARTIAL))
		imap_update_refuse(&j->out, j->tag, "updates of a PARTIAL "
		                   "result are not kept");
	else if (a->ret & IMAP_RET_UPDATE)
		live_start(j, a, e);
	imap_esearch_format(&j->out, j->tag, a->by_uid, a->ret, &a->part,
	                    nums, a->nmsgs);
	imap_buf_str(&j->out, "\r\n");
}

static void
sort_work(struct imap_job *j)
{
	struct sort_arg *a = j->arg;
	int r;

	a->keep = j->pool;
	if (a->uidvalidity == 0) {
		struct postern_mailbox_status st = { .size = sizeof(st) };

		imap_storage->status(j->s->mb, &st);
		a->uidvalidity = st.uidvalidity;
	}
	if (a->msgs == NULL) {
		size_t n = (size_t)imap_storage->count(j->s->mb) + 1;
		struct postern_mailbox_status st = { .size = sizeof(st) };

		/* the view does not change before the last step's sync */
		imap_storage->status(j->s->mb, &st);
		a->view_modseq = st.highestmodseq;

		a->key_bytes = n * sizeof(*a->msgs);
		if (a->key_bytes > (size_t)imap_cfg.sort_memory) {
			too_large(j, a);
			a->finished = 1;
			j->rc = -1;
			return;
		}
		a->msgs = imap_host->pool_alloc(j->pool, a->key_bytes);
	}
	r = imap_search_step(j, a->prog, collect, a);
	if (r == 0) {
		j->sync = 0;
		j->rc = 0;
		return;
	}
	a->finished = 1;
	j->rc = r < 0 ? -1 : 0;
	if (r < 0)
		return;
	imap_sortcache_trim(j->s->user, a->uidvalidity,
	                    imap_storage->count(j->s->mb));
	if (!a->thread) {
		sort_output(j, a);
		return;
	}
	/* the threading's own arrays count toward sort_memory too */
	if (a->key_bytes + imap_thread_memory(a->msgs, a->nmsgs) >
	    (size_t)imap_cfg.sort_memory) {
		too_large(j, a);
		j->rc = -1;
		return;
	}
	imap_buf_str(&j->out, "* THREAD");
	if (a->nmsgs > 0) {
		imap_buf_str(&j->out, " ");
		if (imap_thread(&j->out, a->msgs, a->nmsgs, a->alg,
		                a->by_uid) < 0) {
			j->err.code = POSTERN_SE_LIMIT;
			snprintf(j->err.text, sizeof(j->err.text),
			         "THREAD: out of memory");
			j->out.len = 0;
			j->rc = -1;
			return;
		}
	}
	imap_buf_str(&j->out, "\r\n");
}

static void
sort_done(struct imap_job *j)
{
	struct sort_arg *a = j->arg;

	if (!a->finished) {
		imap_job_next_step(j, sort_work, sort_done);
		return;
	}
	if (j->rc < 0)
		imap_reply_storage_err(j->s, j->tag, &j->err);
	else
		imap_reply(j->s, j->tag, "OK", "%s completed",
		           a->thread ? "Thread" : "Sort");
}

/* ---- parsing -----------------------------------------------------------*/

/* "(" ["REVERSE" SP] key *(SP ["REVERSE" SP] key) ")" */
static int
parse_criteria(struct imap_cmd *c, struct sort_arg *sa, const char **limit)
{
	struct imap_args *a = &c->args;
	struct imap_str w;
	size_t i;
	int reverse;

	if (imap_arg_char(a, '(') < 0)
		return -1;
	do {
		reverse = 0;
		if (imap_arg_atom(a, &w) < 0)
			return -1;
		if (imap_str_is(&w, "REVERSE")) {
			reverse = 1;
			if (imap_arg_sp(a) < 0 || imap_arg_atom(a, &w) < 0)
				return -1;
		}
		for (i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
			if (imap_str_is(&w, key_names[i]))
				break;
		if (i == sizeof(key_names) / sizeof(key_names[0])) {
			a->error = "unknown sort key";
			return -1;
		}
		if (sa->ncrit == SORT_MAX_CRITERIA) {
			*limit = "too many sort criteria";
			a->error = *limit;
			return -1;
		}
		sa->crit[sa->ncrit].key = (enum sort_key)i;
		sa->crit[sa->ncrit].reverse = reverse;
		sa->sig[sa->ncrit] = (unsigned char)(i << 1 | reverse);
		sa->ncrit++;
		if (i != KEY_ARRIVAL && i != KEY_SIZE)
			sa->need |= IMAP_SORT_FIELDS;
	} while (imap_arg_try_char(a, ' '));
	return imap_arg_char(a, ')');
}

/* SP charset SP search-keys, then the job. */
static void
run(struct imap_cmd *c, struct sort_arg *tmp)
{
	struct imap_args *a = &c->args;
	struct imap_search_prog *prog;
	struct imap_str cs;
	struct imap_job *j;

	if (imap_arg_sp(a) < 0 || imap_arg_astring(a, &cs) < 0 ||
	    imap_arg_sp(a) < 0) {
		imap_reply(c->s, c->tag, "BAD", "%s: %s", c->name,
		           a->error != NULL ? a->error : "invalid arguments");
		return;
	}
	if (imap_search_charset(c, &cs) < 0 ||
	    (prog = imap_search_parse(c)) == NULL)
		return;
	j = imap_job_new(c->s, c->tag, sizeof(*tmp));
	memcpy(j->arg, tmp, sizeof(*tmp));
	((struct sort_arg *)j->arg)->prog = prog;
	((struct sort_arg *)j->arg)->by_uid = c->uid;
	j->sync = 1;
	j->sync_flags = POSTERN_SYNC_NO_EXPUNGE;
	imap_job_run_heavy(j, sort_work, sort_done);
}

void
imap_cmd_sort(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct sort_arg sa;
	struct imap_str w;
	const char *limit = NULL;
	char *save;

	memset(&sa, 0, sizeof(sa));
	if (imap_arg_sp(a) < 0)
		goto bad;
	save = a->p;
	if (imap_arg_atom(a, &w) == 0 && imap_str_is(&w, "RETURN")) {
		if (imap_search_parse_return(c, &sa.ret, &sa.part) < 0 ||
		    imap_arg_sp(a) < 0)
			goto bad;
		if (sa.ret & IMAP_RET_SAVE) {
			imap_reply(c->s, c->tag, "BAD", "SORT: RETURN (SAVE) "
			           "is for SEARCH");
			return;
		}
		sa.esort = 1;
	} else {
		a->p = save;
		a->error = NULL;
	}
	if (parse_criteria(c, &sa, &limit) < 0) {
		if (limit != NULL) {
			imap_reply(c->s, c->tag, "NO", "[LIMIT] SORT: %s",
			           limit);
			return;
		}
		goto bad;
	}
	/* a result kept updated needs every message's keys */
	sa.rankable = sa.need != 0 && !(sa.ret & IMAP_RET_UPDATE);
	sa.by_rank = sa.rankable;
	run(c, &sa);
	return;
bad:
	imap_reply(c->s, c->tag, "BAD", "SORT: %s",
	           a->error != NULL ? a->error : "invalid arguments");
}

void
imap_cmd_thread(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct sort_arg sa;
	struct imap_str w;

	memset(&sa, 0, sizeof(sa));
	sa.thread = 1;
	sa.need = IMAP_SORT_FIELDS;
	if (imap_arg_sp(a) < 0 || imap_arg_atom(a, &w) < 0) {
		imap_reply(c->s, c->tag, "BAD", "THREAD: %s",
		           a->error != NULL ? a->error : "invalid arguments");
		return;
	}
	if (imap_str_is(&w, "ORDEREDSUBJECT"))
		sa.alg = IMAP_THREAD_ORDEREDSUBJECT;
	else if (imap_str_is(&w, "REFERENCES")) {
		sa.alg = IMAP_THREAD_REFERENCES;
		sa.need |= IMAP_SORT_REFS;
	} else {
		imap_reply(c->s, c->tag, "BAD", "THREAD: unknown algorithm");
		return;
	}
	run(c, &sa);
}
