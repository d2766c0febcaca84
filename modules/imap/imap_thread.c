/*
 * imap_thread.c - THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256
 * section 3) over an array of messages' keys.
 *
 * Containers are indexes into one array: the messages first, then the
 * dummies (IDs referred to but not in the mailbox).  Links are parent
 * indexes while the threads are built (steps 1 to 5); the sibling sets
 * are made at the end by one sort, and walked without recursion: a
 * hostile mailbox may hold a chain of 50,000 replies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "imap_sort.h"

#define NONE ((size_t)-1)

/* Loop checks walk at most this many ancestors; deeper, the link is not
 * made (the message starts a thread of its own). */
#define MAX_WALK 4096

struct node {
	const struct imap_sort_msg *m;  /* NULL: a dummy */
	const char *id;
	size_t parent;
	size_t nkids;                   /* while linking: has children */
	size_t first;                   /* dummy: its earliest child */
	size_t into;                    /* a dummy merged into another */
	int removed;
};

struct tree {
	struct node *n;
	size_t count, cap;
	size_t *tab;                    /* ID hash: node indexes */
	size_t tabsize;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* The node of ID id; a dummy is made when `make` and it is new.  Message
 * IDs compare case-sensitively (RFC 5256 3). */
static size_t
id_node(struct tree *t, const char *id, int make)
{
	size_t i = (size_t)hash(id) & (t->tabsize - 1), k;

	while ((k = t->tab[i]) != NONE) {
		if (strcmp(t->n[k].id, id) == 0)
			return k;
		i = (i + 1) & (t->tabsize - 1);
	}
	if (!make || t->count == t->cap)
		return NONE;
	k = t->count++;
	memset(&t->n[k], 0, sizeof(t->n[k]));
	t->n[k].id = id;
	t->n[k].parent = NONE;
	t->tab[i] = k;
	return k;
}

/* 1 when a is b or an ancestor of b (or too deep to tell). */
static int
is_ancestor(const struct tree *t, size_t a, size_t b)
{
	size_t d;

	for (d = 0; b != NONE; d++, b = t->n[b].parent)
		if (b == a || d >= MAX_WALK)
			return 1;
	return 0;
}

static void
link_to(struct tree *t, size_t parent, size_t child)
{
	if (t->n[child].parent != NONE)
		t->n[t->n[child].parent].nkids--;
	t->n[child].parent = parent;
	if (parent != NONE)
		t->n[parent].nkids++;
}

/* A link parent -> child would make a loop when the child is the parent
 * or one of its ancestors; a child without children cannot be. */
static int
makes_loop(const struct tree *t, size_t parent, size_t child)
{
	if (parent == child)
		return 1;
	return t->n[child].nkids > 0 && is_ancestor(t, child, parent);
}

/* Step 1: every message in a container, linked to its references. */
static void
link_messages(struct tree *t, const struct imap_sort_msg *msgs, size_t n)
{
	size_t i, r, me, prev, cur;

	for (i = 0; i < n; i++) {
		const struct imap_sort_msg *m = &msgs[i];

		/* A message without an ID, or whose ID another message
		 * has, gets a container of its own. */
		me = m->msgid != NULL ? id_node(t, m->msgid, 1) : NONE;
		if (me == NONE || t->n[me].m != NULL) {
			me = t->count++;
			memset(&t->n[me], 0, sizeof(t->n[me]));
			t->n[me].parent = NONE;
		}
		t->n[me].m = m;
		/* (A) the references, each the parent of the next */
		prev = NONE;
		for (r = 0; r < m->nrefs; r++) {
			cur = id_node(t, m->refs[r], 1);
			if (cur == NONE)
				break;
			if (prev != NONE && t->n[cur].parent == NONE &&
			    !makes_loop(t, prev, cur))
				link_to(t, prev, cur);
			prev = cur;
		}
		/* (B) the last reference is the message's parent: it
		 * replaces what a truncated References elsewhere said */
		link_to(t, NONE, me);
		if (prev != NONE && !makes_loop(t, prev, me))
			link_to(t, prev, me);
	}
}

/* The date order of RFC 5256: sent date, then mailbox order. */
static int
msg_before(const struct imap_sort_msg *a, const struct imap_sort_msg *b)
{
	if (a->date != b->date)
		return a->date < b->date;
	return a->seq < b->seq;
}

/* What a node sorts by: itself, or a dummy's earliest child. */
static const struct imap_sort_msg *
node_msg(const struct tree *t, size_t k)
{
	if (t->n[k].m != NULL)
		return t->n[k].m;
	return t->n[k].first != NONE ? t->n[t->n[k].first].m : NULL;
}

static void
adopt(struct tree *t, size_t parent, size_t child)
{
	const struct imap_sort_msg *cm = node_msg(t, child);
	size_t f = t->n[parent].first;

	t->n[child].parent = parent;
	t->n[parent].nkids++;
	if (t->n[parent].m == NULL &&
	    (f == NONE || (cm != NULL && msg_before(cm, t->n[f].m))))
		t->n[parent].first = child;
}

/* Step 3: dummies below the root go, their children moving up; a dummy
 * at the root stays only with two children or more. */
static void
prune(struct tree *t)
{
	size_t k, p, q, d;

	for (k = 0; k < t->count; k++) {
		t->n[k].nkids = 0;
		t->n[k].first = NONE;
	}
	/* Each message's new parent: its nearest ancestor that is a
	 * message or a dummy at the root. */
	for (k = 0; k < t->count; k++) {
		if (t->n[k].m == NULL)
			continue;
		p = t->n[k].parent;
		for (d = 0; p != NONE && t->n[p].m == NULL &&
		     t->n[p].parent != NONE && d < MAX_WALK; d++)
			p = t->n[p].parent;
		if (p != NONE && t->n[p].m == NULL && t->n[p].parent != NONE)
			p = NONE;   /* deeper than MAX_WALK: a root */
		t->n[k].parent = NONE;
		if (p != NONE)
			adopt(t, p, k);
	}
	for (k = 0; k < t->count; k++) {
		if (t->n[k].m != NULL)
			continue;
		if (t->n[k].parent != NONE || t->n[k].nkids == 0) {
			t->n[k].removed = 1;
			continue;
		}
		t->n[k].parent = NONE;
		if (t->n[k].nkids == 1) {
			/* its one child is a root */
			if ((q = t->n[k].first) != NONE)
				t->n[q].parent = NONE;
			t->n[k].removed = 1;
		}
	}
}

struct subj {
	const char *s;
	size_t node;
	const struct imap_sort_msg *m;  /* what it sorts by */
};

/* By subject, then in date order. */
static int
subj_cmp(const void *a, const void *b)
{
	const struct subj *x = a, *y = b;
	int c = strcmp(x->s, y->s);

	if (c != 0)
		return c;
	if (x->m == y->m)
		return 0;
	return msg_before(x->m, y->m) ? -1 : 1;
}

/* Step 5: roots with one base subject gathered under one thread. */
static int
group_subjects(struct tree *t)
{
	struct subj *v;
	const struct imap_sort_msg *m;
	size_t k, nv = 0, i, j, best, d;

	if ((v = calloc(t->count + 1, sizeof(*v))) == NULL)
		return -1;
	for (k = 0; k < t->count; k++) {
		if (t->n[k].removed || t->n[k].parent != NONE)
			continue;
		if ((m = node_msg(t, k)) == NULL || m->subject[0] == '\0')
			continue;
		v[nv].s = m->subject;
		v[nv].node = k;
		v[nv].m = m;
		nv++;
	}
	/* Runs of one subject, in root order: the table's entry (A) is
	 * the first dummy, else the first that is not a reply, else the
	 * first. */
	qsort(v, nv, sizeof(*v), subj_cmp);
	for (i = 0; i < nv; i = j) {
		for (j = i + 1; j < nv && strcmp(v[j].s, v[i].s) == 0; j++)
			;
		if (j == i + 1)
			continue;
		best = i;
		for (k = i; k < j; k++)
			if (t->n[v[k].node].m == NULL) {
				best = k;
				break;
			}
		if (t->n[v[best].node].m != NULL)
			for (k = i; k < j; k++)
				if (!t->n[v[k].node].m->is_reply) {
					best = k;
					break;
				}
		d = v[best].node;
		for (k = i; k < j; k++) {
			size_t c = v[k].node;

			if (k == best)
				continue;
			if (t->n[c].m == NULL) {
				/* both dummies: the children move (their
				 * parent links are mended in emit) */
				t->n[d].nkids += t->n[c].nkids;
				if (msg_before(node_msg(t, c), node_msg(t, d)))
					t->n[d].first = t->n[c].first;
				t->n[c].removed = 1;
				t->n[c].into = d;
			} else if (t->n[d].m == NULL ||
			           (!t->n[d].m->is_reply &&
			            t->n[c].m->is_reply)) {
				adopt(t, d, c);
			} else {
				/* a new dummy over both */
				size_t nd = t->count++;

				memset(&t->n[nd], 0, sizeof(t->n[nd]));
				t->n[nd].parent = NONE;
				t->n[nd].first = NONE;
				adopt(t, nd, d);
				adopt(t, nd, c);
				d = nd;
			}
		}
	}
	free(v);
	return 0;
}

/* Sibling sets: nodes ordered by (parent, date, sequence). */
struct sib {
	size_t parent, node;
	const struct imap_sort_msg *m;
};

static int
sib_cmp(const void *a, const void *b)
{
	const struct sib *x = a, *y = b;

	if (x->parent != y->parent)
		return x->parent + 1 < y->parent + 1 ? -1 : 1;
	if (x->m == y->m)
		return 0;
	return msg_before(x->m, y->m) ? -1 : 1;
}

static void
emit_num(struct imap_buf *out, const struct imap_sort_msg *m, int by_uid)
{
	imap_buf_uint(out, by_uid ? m->uid : m->seq);
}

/* Writes every thread: a root and its descendants depth first, a lone
 * child after its parent, several each in parentheses (RFC 5256 4). */
static int
emit(struct imap_buf *out, struct tree *t, int by_uid)
{
	struct sib *s;
	size_t *start, *cnt, ns = 0, k, i;
	struct frame { size_t node, pos; } *st;
	size_t sp;
	int rc = -1;

	s = calloc(t->count + 1, sizeof(*s));
	start = calloc(t->count + 1, sizeof(*start));
	cnt = calloc(t->count + 1, sizeof(*cnt));
	st = calloc(t->count + 1, sizeof(*st));
	if (s == NULL || start == NULL || cnt == NULL || st == NULL)
		goto out;
	for (k = 0; k < t->count; k++) {
		if (t->n[k].removed)
			continue;
		if (t->n[k].parent != NONE && t->n[t->n[k].parent].removed)
			t->n[k].parent = t->n[t->n[k].parent].into;
		s[ns].parent = t->n[k].parent;
		s[ns].node = k;
		s[ns].m = node_msg(t, k);
		ns++;
	}
	qsort(s, ns, sizeof(*s), sib_cmp);
	for (i = 0; i < ns; i++)
		if (s[i].parent != NONE) {
			if (cnt[s[i].parent]++ == 0)
				start[s[i].parent] = i;
		}
	for (i = 0; i < ns && s[i].parent == NONE; i++) {
		imap_buf_str(out, "(");
		sp = 0;
		st[sp].node = s[i].node;
		st[sp].pos = NONE;
		sp++;
		while (sp > 0) {
			struct frame *f = &st[sp - 1];
			size_t x = f->node;

			if (f->pos == NONE) {
				if (t->n[x].m != NULL)
					emit_num(out, t->n[x].m, by_uid);
				while (cnt[x] == 1) {
					x = s[start[x]].node;
					imap_buf_str(out, " ");
					emit_num(out, t->n[x].m, by_uid);
				}
				f->node = x;
				f->pos = 0;
				if (cnt[x] > 1 && t->n[x].m != NULL)
					imap_buf_str(out, " ");
			}
			if (f->pos < cnt[x]) {
				imap_buf_str(out, "(");
				st[sp].node = s[start[x] + f->pos].node;
				st[sp].pos = NONE;
				f->pos++;
				sp++;
				continue;
			}
			imap_buf_str(out, ")");
			sp--;
		}
	}
	rc = 0;
out:
	free(s);
	free(start);
	free(cnt);
	free(st);
	return rc;
}

static int
tree_init(struct tree *t, size_t cap)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->cap = cap;
	for (t->tabsize = 16; t->tabsize < 2 * cap; t->tabsize *= 2)
		;
	t->n = calloc(cap + 1, sizeof(*t->n));
	t->tab = malloc(t->tabsize * sizeof(*t->tab));
	if (t->n == NULL || t->tab == NULL)
		return -1;
	for (i = 0; i < t->tabsize; i++)
		t->tab[i] = NONE;
	return 0;
}

/* ORDEREDSUBJECT: one thread per base subject, its first message by
 * date the parent of the others; threads in the order of their first
 * messages. */
static int
ordered_subject(struct tree *t, const struct imap_sort_msg *msgs, size_t n)
{
	struct subj *v;
	size_t i, j, k, first;

	for (i = 0; i < n; i++) {
		t->n[i].m = &msgs[i];
		t->n[i].parent = NONE;
		t->n[i].first = NONE;
	}
	t->count = n;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		v[i].s = msgs[i].subject;
		v[i].node = i;
		v[i].m = &msgs[i];
	}
	qsort(v, n, sizeof(*v), subj_cmp);
	for (i = 0; i < n; i = j) {
		first = v[i].node;
		for (j = i + 1; j < n && strcmp(v[j].s, v[i].s) == 0; j++)
			if (msg_before(&msgs[v[j].node], &msgs[first]))
				first = v[j].node;
		for (k = i; k < j; k++)
			if (v[k].node != first)
				t->n[v[k].node].parent = first;
	}
	free(v);
	return 0;
}

/* Containers: the messages, the IDs they refer to, and one dummy per
 * subject merge (at most one per root). */
static size_t
containers(const struct imap_sort_msg *msgs, size_t n)
{
	size_t i, cap = 2 * n + 1;

	for (i = 0; i < n; i++)
		cap += msgs[i].nrefs;
	return cap;
}

size_t
imap_thread_memory(const struct imap_sort_msg *msgs, size_t n)
{
	size_t cap = containers(msgs, n), tab;

	for (tab = 16; tab < 2 * cap; tab *= 2)
		;
	/* the nodes and the ID hash; then, in emit, four arrays */
	return (cap + 1) * (sizeof(struct node) + sizeof(struct sib) +
	                    4 * sizeof(size_t)) + tab * sizeof(size_t);
}

int
imap_thread(struct imap_buf *out, const struct imap_sort_msg *msgs,
            size_t n, enum imap_thread_alg alg, int by_uid)
{
	struct tree t;
	int rc = -1;

	if (tree_init(&t, containers(msgs, n)) < 0)
		goto out;
	if (alg == IMAP_THREAD_ORDEREDSUBJECT) {
		if (ordered_subject(&t, msgs, n) < 0)
			goto out;
	} else {
		link_messages(&t, msgs, n);
		prune(&t);
		if (group_subjects(&t) < 0)
			goto out;
	}
	rc = emit(out, &t, by_uid);
out:
	free(t.n);
	free(t.tab);
	return rc;
}
