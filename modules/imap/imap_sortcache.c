/*
 * imap_sortcache.c - sort and thread keys kept in the worker for every
 * session: webmail opens a connection per page and sorts the same
 * mailbox each time, so the keys outlive the session that made them.
 *
 * A mailbox (user, UIDVALIDITY) holds a hash of UID -> entry; an entry
 * is the keys' strings in one block and their offsets.  UIDs are never
 * reused within a UIDVALIDITY, so an entry is never wrong for its
 * message; an expunged message's entry only waits: trim forgets a
 * mailbox whose entries outnumber its messages twice over, and the
 * memory cap forgets the mailbox used least recently.  One mutex: a
 * lookup is a hash probe and a copy.
 *
 * Ranks (imap_sort.h) are kept for the RANK_SLOTS criteria of the
 * mailbox sorted by most recently: webmail users switch between a few
 * columns.  An entry's rank[k] is its place in the last SORT by slot
 * k's criteria made from keys; it holds while its rank_gen[k] is the
 * slot's generation.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "imap_sort.h"

#define RANK_SLOTS 4

enum { S_SUBJECT, S_FROM, S_TO, S_CC, S_DFROM, S_DTO, S_MSGID, S_N };

struct entry {
	uint32_t uid;
	unsigned have;
	int is_reply;
	int64_t arrival, date;
	uint64_t size;
	uint32_t off[S_N];          /* into blob; msgid UINT32_MAX: none */
	uint32_t *refs;             /* offsets of References */
	size_t nrefs;
	char *blob;
	size_t blob_len;
	size_t fields_len;          /* the blob up to the message IDs */
	uint32_t rank[RANK_SLOTS];
	uint32_t rank_gen[RANK_SLOTS];  /* 0: no rank */
};

struct rank_slot {
	unsigned char sig[IMAP_SORT_SIG_MAX];
	size_t siglen;              /* 0: slot unused */
	uint32_t gen;
	uint64_t used;
};

struct box {
	char *user;
	uint32_t uidvalidity;
	struct entry **tab;         /* open addressing by UID */
	size_t cap, n;
	size_t bytes;
	uint64_t used;
	struct rank_slot ranks[RANK_SLOTS];
	uint32_t rank_gens;         /* generations given out */
	struct box *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct box *boxes;
static size_t total;
static uint64_t clock_;

static size_t
entry_bytes(const struct entry *e)
{
	return sizeof(*e) + sizeof(struct entry *) * 2 + e->blob_len +
	       e->nrefs * sizeof(*e->refs);
}

static void
entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	free(e->blob);
	free(e->refs);
	free(e);
}

static void
box_unlink_free(struct box *b)
{
	struct box **pp;
	size_t i;

	for (pp = &boxes; *pp != NULL; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	for (i = 0; i < b->cap; i++)
		entry_free(b->tab[i]);
	total -= b->bytes;
	free(b->tab);
	free(b->user);
	free(b);
}

static struct box *
box_find(const char *user, uint32_t uidvalidity)
{
	struct box *b;

	for (b = boxes; b != NULL; b = b->next)
		if (b->uidvalidity == uidvalidity &&
		    strcmp(b->user, user) == 0)
			return b;
	return NULL;
}

static struct entry **
slot(struct box *b, uint32_t uid)
{
	size_t i = ((size_t)uid * 2654435761u) & (b->cap - 1);

	while (b->tab[i] != NULL && b->tab[i]->uid != uid)
		i = (i + 1) & (b->cap - 1);
	return &b->tab[i];
}

/* Message mi's entry of the mailbox, when it is mi's (same size and
 * INTERNALDATE); under the lock. */
static struct entry *
entry_of(const char *user, uint32_t uidvalidity,
         const struct postern_message_info *mi, struct box **bp)
{
	struct box *b;
	struct entry *e;

	if ((b = box_find(user, uidvalidity)) == NULL || b->cap == 0)
		return NULL;
	b->used = ++clock_;
	e = *slot(b, mi->uid);
	if (e == NULL || e->size != mi->size ||
	    e->arrival != mi->internal_date)
		return NULL;
	*bp = b;
	return e;
}

int
imap_sortcache_get(const char *user, uint32_t uidvalidity,
                   const struct postern_message_info *mi, unsigned need,
                   struct imap_sort_msg *m, postern_pool_t *pool,
                   size_t *bytes)
{
	struct box *b;
	struct entry *e;
	char *base;
	const char **refs = NULL;
	size_t i, len;
	int hit = 0, with_refs = (need & IMAP_SORT_REFS) != 0;

	pthread_mutex_lock(&lock);
	if ((e = entry_of(user, uidvalidity, mi, &b)) == NULL ||
	    (e->have & need) != need)
		goto out;
	/* SORT copies the fields, THREAD=REFERENCES the IDs too */
	len = with_refs ? e->blob_len : e->fields_len;
	base = imap_host->pool_alloc(pool, len);
	if (with_refs && e->nrefs > 0)
		refs = imap_host->pool_alloc(pool, e->nrefs * sizeof(*refs));
	if (base == NULL || (with_refs && e->nrefs > 0 && refs == NULL))
		goto out;
	memcpy(base, e->blob, len);
	*bytes += len + (refs != NULL ? e->nrefs * sizeof(*refs) : 0);
	m->date = e->date;
	m->is_reply = e->is_reply;
	m->subject = base + e->off[S_SUBJECT];
	m->from = base + e->off[S_FROM];
	m->to = base + e->off[S_TO];
	m->cc = base + e->off[S_CC];
	m->dfrom = base + e->off[S_DFROM];
	m->dto = base + e->off[S_DTO];
	hit = 1;
	if (!with_refs)
		goto out;
	m->msgid = e->off[S_MSGID] != UINT32_MAX ? base + e->off[S_MSGID]
	                                         : NULL;
	for (i = 0; i < e->nrefs; i++)
		refs[i] = base + e->refs[i];
	m->refs = refs;
	m->nrefs = e->nrefs;
out:
	pthread_mutex_unlock(&lock);
	return hit;
}

/* The rank slot of criteria `sig`, or NULL. */
static struct rank_slot *
rank_slot(struct box *b, const unsigned char *sig, size_t siglen)
{
	size_t k;

	for (k = 0; k < RANK_SLOTS; k++)
		if (b->ranks[k].siglen == siglen &&
		    memcmp(b->ranks[k].sig, sig, siglen) == 0)
			return &b->ranks[k];
	return NULL;
}

int
imap_sortcache_rank(const char *user, uint32_t uidvalidity,
                    const struct postern_message_info *mi,
                    const unsigned char *sig, size_t siglen,
                    uint32_t *gen, uint32_t *rank)
{
	struct box *b;
	struct entry *e;
	struct rank_slot *r;
	size_t k;
	int hit = 0;

	pthread_mutex_lock(&lock);
	if ((e = entry_of(user, uidvalidity, mi, &b)) == NULL ||
	    siglen == 0 || (r = rank_slot(b, sig, siglen)) == NULL)
		goto out;
	k = (size_t)(r - b->ranks);
	if (e->rank_gen[k] == r->gen && (*gen == 0 || *gen == r->gen)) {
		r->used = clock_;
		*gen = r->gen;
		*rank = e->rank[k];
		hit = 1;
	}
out:
	pthread_mutex_unlock(&lock);
	return hit;
}

void
imap_sortcache_set_ranks(const char *user, uint32_t uidvalidity,
                         const unsigned char *sig, size_t siglen,
                         const uint32_t *uids, size_t n)
{
	struct box *b;
	struct entry *e;
	struct rank_slot *r;
	size_t i, k;

	if (siglen == 0 || siglen > IMAP_SORT_SIG_MAX)
		return;
	pthread_mutex_lock(&lock);
	if ((b = box_find(user, uidvalidity)) == NULL || b->cap == 0)
		goto out;
	if ((r = rank_slot(b, sig, siglen)) == NULL) {
		r = &b->ranks[0];
		for (k = 1; k < RANK_SLOTS; k++)
			if (b->ranks[k].used < r->used)
				r = &b->ranks[k];
	}
	/* a new generation forgets the slot's earlier ranks at once (0
	 * is "none", skipped when the counter wraps) */
	if (++b->rank_gens == 0)
		b->rank_gens = 1;
	memcpy(r->sig, sig, siglen);
	r->siglen = siglen;
	r->gen = b->rank_gens;
	r->used = ++clock_;
	k = (size_t)(r - b->ranks);
	for (i = 0; i < n; i++)
		if ((e = *slot(b, uids[i])) != NULL) {
			e->rank[k] = (uint32_t)i;
			e->rank_gen[k] = r->gen;
		}
out:
	pthread_mutex_unlock(&lock);
}

static struct entry *
entry_make(const struct imap_sort_msg *m, unsigned have)
{
	const char *s[S_N] = { m->subject, m->from, m->to, m->cc, m->dfrom,
	                       m->dto, m->msgid };
	struct entry *e = calloc(1, sizeof(*e));
	size_t len = 0, i, l;

	if (e == NULL)
		return NULL;
	for (i = 0; i < S_N; i++)
		len += s[i] != NULL ? strlen(s[i]) + 1 : 0;
	for (i = 0; i < m->nrefs; i++)
		len += strlen(m->refs[i]) + 1;
	e->blob = malloc(len + 1);
	e->refs = m->nrefs > 0 ? malloc(m->nrefs * sizeof(*e->refs)) : NULL;
	if (e->blob == NULL || (m->nrefs > 0 && e->refs == NULL)) {
		entry_free(e);
		return NULL;
	}
	for (i = 0; i < S_N; i++) {
		if (i == S_MSGID)
			e->fields_len = e->blob_len;
		if (s[i] == NULL) {
			e->off[i] = UINT32_MAX;
			continue;
		}
		l = strlen(s[i]) + 1;
		e->off[i] = (uint32_t)e->blob_len;
		memcpy(e->blob + e->blob_len, s[i], l);
		e->blob_len += l;
	}
	for (i = 0; i < m->nrefs; i++) {
		l = strlen(m->refs[i]) + 1;
		e->refs[i] = (uint32_t)e->blob_len;
		memcpy(e->blob + e->blob_len, m->refs[i], l);
		e->blob_len += l;
	}
	e->nrefs = m->nrefs;
	e->uid = m->uid;
	e->have = have;
	e->is_reply = m->is_reply;
	e->arrival = m->arrival;
	e->date = m->date;
	e->size = m->size;
	return e;
}

static int
box_grow(struct box *b)
{
	struct entry **old = b->tab;
	size_t oldcap = b->cap, i;

	b->cap = oldcap == 0 ? 1024 : oldcap * 2;
	if ((b->tab = calloc(b->cap, sizeof(*b->tab))) == NULL) {
		b->tab = old;
		b->cap = oldcap;
		return -1;
	}
	for (i = 0; i < oldcap; i++)
		if (old[i] != NULL)
			*slot(b, old[i]->uid) = old[i];
	b->bytes += (b->cap - oldcap) * sizeof(*b->tab);
	total += (b->cap - oldcap) * sizeof(*b->tab);
	free(old);
	return 0;
}

/* Room for `need` more octets: the least recently used mailboxes other
 * than `keep` go.  0 when there is room. */
static int
make_room(struct box *keep, size_t need)
{
	struct box *b, *lru;

	while (total + need > (size_t)imap_cfg.sort_cache) {
		lru = NULL;
		for (b = boxes; b != NULL; b = b->next)
			if (b != keep && (lru == NULL || b->used < lru->used))
				lru = b;
		if (lru == NULL)
			return -1;
		box_unlink_free(lru);
	}
	return 0;
}

void
imap_sortcache_put(const char *user, uint32_t uidvalidity,
                   const struct imap_sort_msg *m, unsigned have)
{
	struct box *b;
	struct entry *e, **sp;

	if (imap_cfg.sort_cache == 0 || (e = entry_make(m, have)) == NULL)
		return;
	pthread_mutex_lock(&lock);
	if ((b = box_find(user, uidvalidity)) == NULL) {
		if ((b = calloc(1, sizeof(*b))) == NULL ||
		    (b->user = strdup(user)) == NULL) {
			free(b);
			goto drop;
		}
		b->uidvalidity = uidvalidity;
		b->next = boxes;
		boxes = b;
	}
	b->used = ++clock_;
	if (make_room(b, entry_bytes(e)) < 0)
		goto drop;
	if ((b->n + 1) * 2 > b->cap && box_grow(b) < 0)
		goto drop;
	sp = slot(b, m->uid);
	if (*sp != NULL) {
		b->bytes -= entry_bytes(*sp);
		total -= entry_bytes(*sp);
		entry_free(*sp);
		b->n--;
	}
	*sp = e;
	b->n++;
	b->bytes += entry_bytes(e);
	total += entry_bytes(e);
	pthread_mutex_unlock(&lock);
	return;
drop:
	pthread_mutex_unlock(&lock);
	entry_free(e);
}

void
imap_sortcache_trim(const char *user, uint32_t uidvalidity, uint32_t count)
{
	struct box *b;

	pthread_mutex_lock(&lock);
	if ((b = box_find(user, uidvalidity)) != NULL &&
	    b->n > 2 * (size_t)count + 1024)
		box_unlink_free(b);
	pthread_mutex_unlock(&lock);
}

void
imap_sortcache_free(void)
{
	pthread_mutex_lock(&lock);
	while (boxes != NULL)
		box_unlink_free(boxes);
	pthread_mutex_unlock(&lock);
}
