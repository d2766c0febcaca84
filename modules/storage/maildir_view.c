/*
 * maildir_view.c - open mailboxes (views): open, close, status, the
 * message list, sync, and the changes a session makes (store, expunge,
 * copy and move), plus watch.
 *
 * A view is a private copy of the index records.  It changes only when
 * the session asks: sync takes the lock, refreshes the index from the
 * disk and compares it with the copy, UID by UID, reporting expunges
 * first (with the sequence numbers a client sees as they are announced),
 * then flag changes (the records whose modseq moved), then new messages.
 * The view also keeps the index state itself (mb->state) between
 * operations, so a refresh reads only the change log's new entries, and
 * the comparison is skipped when that state did not change.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

#define FLAG_MASK 0x1fu /* POSTERN_MSG_* a client can set */

static void
view_free_recs(postern_mailbox_t *mb)
{
	uint32_t i;

	for (i = 0; i < mb->n; i++)
		free(mb->v[i].name);
	free(mb->v);
	mb->v = NULL;
	mb->n = mb->cap = 0;
}

static void
view_set_keywords(postern_mailbox_t *mb, const struct md_state *s)
{
	uint32_t i;

	for (i = 0; i < s->nkw; i++) {
		if (i < mb->nkw && mb->kwnames[i] != NULL &&
		    s->kwnames[i] != NULL &&
		    strcmp(mb->kwnames[i], s->kwnames[i]) == 0)
			continue;
		if (i < mb->nkw)
			free(mb->kwnames[i]);
		mb->kwnames[i] = s->kwnames[i] != NULL ? strdup(s->kwnames[i])
		                                       : strdup("");
	}
	for (; i < mb->nkw; i++) {
		free(mb->kwnames[i]);
		mb->kwnames[i] = NULL;
	}
	mb->nkw = s->nkw;
}

/* Header sizes learnt by reading messages go into the index, so they
 * are computed once per message, not once per session. */
static int
merge_hdr_sizes(postern_mailbox_t *mb, struct md_state *s)
{
	uint32_t i;
	long j;

	if (!mb->hdr_dirty)
		return 0;
	mb->hdr_dirty = 0;
	for (i = 0; i < mb->n; i++)
		if (mb->v[i].r.hdr_size != 0 &&
		    (j = md_state_find(s, mb->v[i].r.uid)) >= 0 &&
		    s->recs[j].hdr_size == 0) {
			s->recs[j].hdr_size = mb->v[i].r.hdr_size;
			md_rec_touch(s, j);
			s->dirty = 1;
		}
	return s->dirty ? md_index_write(mb->dir, s) : 0;
}

/* Under the lock: brings the state up to date and, with `recent` (for
 * callers that then show the new messages), finds the \Recent
 * messages, taking them for a read-write view: *recent is the first such
 * UID. */
static int
view_refresh(postern_mailbox_t *mb, struct md_state *s, uint32_t *recent)
{
	/* Without `recent` (store): no \Recent taken, nothing moved out of
	 * new/, and only a light refresh (store_msg handles the rest). */
	int rw = recent != NULL && !(mb->mode & POSTERN_OPEN_READONLY);
	uint32_t dummy;
	unsigned how = rw ? MD_REFRESH_RW : 0;

	if (recent == NULL) {
		recent = &dummy;
		how = MD_REFRESH_LIGHT;
	}
	*recent = UINT32_MAX;
	if (md_refresh(mb->dir, s, how) < 0 ||
	    merge_hdr_sizes(mb, s) < 0)
		return -1;
	if (s->first_recent_uid < s->nextuid) {
		/* A read-only view (EXAMINE) shows \Recent but leaves it to
		 * the next read-write one (RFC 3501 6.3.2: no change to the
		 * mailbox's state, \Recent included). */
		*recent = s->first_recent_uid;
		if (rw) {
			/* Writing moves no file into new/. */
			int nonew = s->nonew_gen == s->gen;

			s->first_recent_uid = s->nextuid;
			if (md_index_write(mb->dir, s) < 0)
				return -1;
			if (nonew)
				s->nonew_gen = s->gen;
		}
	}
	mb->uidvalidity = s->uidvalidity;
	mb->nextuid = s->nextuid;
	mb->highestmodseq = s->highestmodseq;
	view_set_keywords(mb, s);
	return 0;
}

/* Locks the mailbox and brings the view's state (mb->state) up to date:
 * every view operation starts so.  Returns the lock, or -1 with *err set
 * and nothing held. */
static int
view_begin(postern_mailbox_t *mb, uint32_t *recent,
           struct postern_storage_err *err)
{
	int lk;

	if ((lk = md_lock(mb->dir)) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot lock the mailbox");
		return -1;
	}
	if (view_refresh(mb, &mb->state, recent) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot read the mailbox");
		md_unlock(lk);
		md_state_free(&mb->state);
		return -1;
	}
	return lk;
}

/* Unlocks; after a failure the state may not be what the files hold,
 * so it goes and the next operation reads everything again. */
static void
view_end(postern_mailbox_t *mb, int lk, int rc)
{
	if (rc < 0)
		md_state_free(&mb->state);
	md_unlock(lk);
}

static int
vrec_set(struct md_vrec *v, const struct md_rec *r, const char *name)
{
	char *copy = strdup(name);

	if (copy == NULL)
		return -1;
	free(v->name);
	v->name = copy;
	v->r = *r;
	return 0;
}

/* ---- open and close --------------------------------------------------- */

static int
excl_lock(postern_mailbox_t *mb, struct postern_storage_err *err)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", mb->dir, MD_EXCL);
	mb->exclfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (mb->exclfd < 0) {
		md_log(POSTERN_LOG_ERROR, "open %s: %s", path, strerror(errno));
		md_err(err, POSTERN_SE_TEMP, "cannot lock the mailbox");
		return -1;
	}
	if (flock(mb->exclfd, LOCK_EX | LOCK_NB) < 0) {
		md_err(err, POSTERN_SE_INUSE, "mailbox in use");
		return -1;
	}
	return 0;
}

/* 1 when the parked records can become the view of `s` in place: each
 * of the state's records up to the old last UID is among them (new
 * messages only come after it), so the merge in view_reuse never writes
 * over a record it has not read yet. */
static int
reusable(const struct md_vrecs *old, const struct md_state *s)
{
	uint32_t i, k = 0, last;

	if (old->v == NULL || old->n == 0)
		return 0;
	last = old->v[old->n - 1].r.uid;
	for (i = 0; i < s->nrec && s->recs[i].uid <= last; i++) {
		while (k < old->n && old->v[k].r.uid < s->recs[i].uid)
			k++;
		if (k == old->n || old->v[k].r.uid != s->recs[i].uid)
			return 0;
		k++;
	}
	return 1;
}

/* The view from the parked records: their memory (already touched: no
 * page faults) and their names where the file kept its name. */
static int
view_reuse(postern_mailbox_t *mb, struct md_vrecs *old)
{
	const struct md_state *s = &mb->state;
	struct md_vrec *v;
	uint32_t i, k = 0, cap = old->cap;
	char *name;

	if (cap < s->nrec + 1) {
		if ((v = realloc(old->v, (s->nrec + 1) * sizeof(*v))) == NULL)
			return -1;
		old->v = v;
		cap = s->nrec + 1;
	}
	v = old->v;
	for (i = 0; i < s->nrec; i++) {
		while (k < old->n && v[k].r.uid < s->recs[i].uid) {
			free(v[k].name);
			v[k++].name = NULL;
		}
		name = NULL;
		if (k < old->n && v[k].r.uid == s->recs[i].uid) {
			name = v[k].name;
			v[k++].name = NULL;
			if (strcmp(name, s->names[i]) != 0) {
				free(name);
				name = NULL;
			}
		}
		if (name == NULL && (name = strdup(s->names[i])) == NULL)
			break;
		memset(&v[i], 0, sizeof(v[i]));
		v[i].r = s->recs[i];
		v[i].name = name;
	}
	for (; k < old->n; k++)
		free(v[k].name);
	mb->v = v;
	mb->n = i;
	mb->cap = cap;
	memset(old, 0, sizeof(*old));
	return i == s->nrec ? 0 : -1;
}

/* The parked records are the state's, untouched since they were parked
 * (nothing replayed or written since): they become the view as they
 * are, and only the \Recent marks, a suffix of the view in both, are
 * redone.  No pass over the records: SELECT of a large mailbox that was
 * open a moment ago costs what a small one does. */
static int
view_take_exact(postern_mailbox_t *mb, struct md_vrecs *old,
                uint32_t recent)
{
	const struct md_state *s = &mb->state;
	uint32_t lo = 0, hi, mid, i;

	if (old->v == NULL || old->gen == 0 || old->gen != s->gen ||
	    old->n != s->nrec || old->cap < s->nrec + 1)
		return 0;
	mb->v = old->v;
	mb->n = old->n;
	mb->cap = old->cap;
	mb->counts = old->counts; /* the same records: the same counts */
	memset(old, 0, sizeof(*old));
	for (hi = mb->n; lo < hi;) {
		mid = lo + (hi - lo) / 2;
		if (mb->v[mid].r.uid < recent)
			lo = mid + 1;
		else
			hi = mid;
	}
	mb->nrecent = mb->n - lo;
	for (i = mb->n; i > 0 && (i > lo || mb->v[i - 1].recent); i--)
		mb->v[i - 1].recent = i > lo;
	return 1;
}

static int
view_load(postern_mailbox_t *mb, struct md_vrecs *old,
          struct postern_storage_err *err)
{
	const struct md_state *s = &mb->state;
	uint32_t recent, i;
	int lk, rc = -1;

	if ((lk = view_begin(mb, &recent, err)) < 0) {
		md_vrecs_free(old);
		return -1;
	}
	if (view_take_exact(mb, old, recent)) {
		rc = 0;
	} else if (reusable(old, s)) {
		rc = view_reuse(mb, old);
		for (i = 0; i < mb->n; i++) {
			mb->v[i].recent = s->recs[i].uid >= recent;
			mb->nrecent += mb->v[i].recent;
		}
		if (rc < 0)
			md_err(err, POSTERN_SE_TEMP, "out of memory");
	} else if ((mb->v = calloc(s->nrec + 1, sizeof(*mb->v))) == NULL) {
		md_err(err, POSTERN_SE_TEMP, "out of memory");
	} else {
		for (rc = 0, i = 0; rc == 0 && i < s->nrec; i++, mb->n++) {
			rc = vrec_set(&mb->v[i], &s->recs[i], s->names[i]);
			mb->v[i].recent = s->recs[i].uid >= recent;
			mb->nrecent += mb->v[i].recent;
		}
		mb->cap = s->nrec + 1;
	}
	mb->state_gen = s->gen;
	md_unlock(lk);
	md_vrecs_free(old);
	return rc;
}

void
md_close(postern_mailbox_t *mb)
{
	uint32_t i;
	int lk;

	if (mb == NULL)
		return;
	if (mb->hdr_dirty && (lk = md_lock(mb->dir)) >= 0) {
		if (md_refresh(mb->dir, &mb->state, 0) == 0)
			merge_hdr_sizes(mb, &mb->state);
		md_unlock(lk);
	}
	md_watch(mb, NULL, NULL);
	md_cache_free(mb);
	if (mb->exclfd >= 0)
		close(mb->exclfd);
	if (mb->dirfd >= 0)
		close(mb->dirfd);
	if (mb->dir != NULL) {
		struct md_vrecs recs = { mb->v, mb->n, mb->cap,
		                         mb->held ? 0 : mb->state_gen,
		                         mb->counts };

		mb->v = NULL;
		mb->n = mb->cap = 0;
		md_state_park(mb->dir, &mb->state, &recs);
	}
	md_state_free(&mb->state);
	view_free_recs(mb);
	for (i = 0; i < mb->nkw; i++)
		free(mb->kwnames[i]);
	free(mb->dir);
	free(mb);
}

int
md_open(postern_store_t *st, const char *name, unsigned mode,
        postern_mailbox_t **out, struct postern_storage_err *err)
{
	struct md_vrecs old = { 0 };
	postern_mailbox_t *mb;

	*out = NULL;
	if ((mb = calloc(1, sizeof(*mb))) == NULL) {
		md_err(err, POSTERN_SE_TEMP, "out of memory");
		return -1;
	}
	mb->st = st;
	mb->mode = mode;
	mb->exclfd = -1;
	mb->dirfd = -1;
	if ((mb->dir = md_box_dir_existing(st->root, name, err)) == NULL)
		goto fail;
	if ((mode & POSTERN_OPEN_EXCLUSIVE) && excl_lock(mb, err) < 0)
		goto fail;
	md_state_adopt(mb->dir, &mb->state, &old);
	if (view_load(mb, &old, err) < 0)
		goto fail;
	*out = mb;
	return 0;
fail:
	md_close(mb);
	return -1;
}

/* The parked state and records can become a view with no refresh and
 * no write: nothing changed on disk since (md_state_unchanged), the
 * records are the state's (view_take_exact's test), and a read-write
 * open has no \Recent to take and nothing to move out of new/. */
static int
open_ready(const char *dir, const struct md_state *s,
           const struct md_vrecs *r, void *arg)
{
	unsigned mode = *(const unsigned *)arg;

	if (r->v == NULL || r->gen == 0 || r->gen != s->gen ||
	    r->n != s->nrec || r->cap < s->nrec + 1)
		return 0;
	if (!(mode & POSTERN_OPEN_READONLY) &&
	    (s->first_recent_uid < s->nextuid || s->nonew_gen != s->gen))
		return 0;
	return md_state_unchanged(dir, s);
}

/* SELECT of a mailbox this process had open a moment ago, untouched
 * since: the parked view taken back on the loop, no lock, no job. */
int
md_open_nowait(postern_store_t *st, const char *name, unsigned mode,
               postern_mailbox_t **out)
{
	struct postern_storage_err err;
	struct md_vrecs old = { 0 };
	postern_mailbox_t *mb;
	struct md_state *s;
	uint32_t recent;

	*out = NULL;
	if ((mode & POSTERN_OPEN_EXCLUSIVE) ||
	    (mb = calloc(1, sizeof(*mb))) == NULL)
		return 1;
	mb->st = st;
	mb->mode = mode;
	mb->exclfd = -1;
	mb->dirfd = -1;
	s = &mb->state;
	if ((mb->dir = md_box_dir(st->root, name, &err)) == NULL ||
	    !md_state_adopt_if(mb->dir, s, &old, open_ready, &mode)) {
		md_close(mb);
		return 1;
	}
	/* Keyword names are not in the check: read as a refresh would. */
	if (md_keywords_read(mb->dir, s) < 0) {
		md_vrecs_free(&old);
		md_close(mb);
		return 1;
	}
	recent = s->first_recent_uid < s->nextuid ? s->first_recent_uid
	                                          : UINT32_MAX;
	mb->uidvalidity = s->uidvalidity;
	mb->nextuid = s->nextuid;
	mb->highestmodseq = s->highestmodseq;
	view_set_keywords(mb, s);
	view_take_exact(mb, &old, recent);
	mb->state_gen = s->gen;
	*out = mb;
	return 0;
}

/* ---- what the view shows ---------------------------------------------- */

/* The caller's struct may come from an older SDK and be shorter than
 * ours: fill a whole one, then copy only the part the caller has. */
static void
md_status_copy(struct postern_mailbox_status *caller,
               const struct postern_mailbox_status *full)
{
	size_t size = caller->size;

	if (size > sizeof(*full))
		size = sizeof(*full);
	if (size <= sizeof(caller->size))
		return;
	memcpy((char *)caller + sizeof(caller->size),
	       (const char *)full + sizeof(full->size),
	       size - sizeof(caller->size));
}

/* Counts records r[0..n) (of `stride` octets, an md_rec first), the
 * \Recent ones as those from UID `recent` on. */
static void
count_recs(const void *recs, size_t stride, uint32_t n, uint32_t recent,
           struct md_counts *c)
{
	const struct md_rec *r;
	uint32_t i;

	memset(c, 0, sizeof(*c));
	c->messages = n;
	for (i = 0; i < n; i++) {
		r = (const struct md_rec *)((const char *)recs + i * stride);
		c->total_size += r->size;
		if (r->flags & POSTERN_MSG_DELETED) {
			c->deleted++;
			c->deleted_size += r->size;
		}
		c->recent += r->uid >= recent;
		if (r->flags & POSTERN_MSG_SEEN)
			continue;
		c->unseen++;
		if (c->first_unseen_seq == 0)
			c->first_unseen_seq = i + 1;
	}
}

static void
counts_out(const struct md_counts *c, struct postern_mailbox_status *out)
{
	out->messages = c->messages;
	out->recent = c->recent;
	out->total_size = c->total_size;
	out->deleted = c->deleted;
	out->deleted_size = c->deleted_size;
	out->unseen = c->unseen;
	out->first_unseen_seq = c->first_unseen_seq;
}

/* The view's counts, counted once per change of its records (SELECT of
 * a large mailbox reopened untouched counts nothing). */
void
md_status(postern_mailbox_t *mb, struct postern_mailbox_status *caller)
{
	struct postern_mailbox_status st = { .size = sizeof(st) }, *out = &st;

	if (mb->counts.gen == 0 || mb->counts.messages != mb->n) {
		count_recs(mb->v, sizeof(*mb->v), mb->n, UINT32_MAX,
		           &mb->counts);
		mb->counts.gen = 1;
	}
	counts_out(&mb->counts, out);
	out->uidvalidity = mb->uidvalidity;
	out->uidnext = mb->nextuid;
	out->highestmodseq = mb->highestmodseq;
	out->recent = mb->nrecent;
	out->readonly = !!(mb->mode & POSTERN_OPEN_READONLY);
	out->modseq_supported = 1;
	out->keywords = (const char *const *)mb->kwnames;
	out->nkeywords = mb->nkw;
	out->keywords_full = mb->nkw >= MD_MAX_KEYWORDS;
	md_status_copy(caller, &st);
}

uint32_t
md_count(postern_mailbox_t *mb)
{
	return mb->n;
}

const struct postern_message_info *
md_message(postern_mailbox_t *mb, uint32_t seq)
{
	struct postern_message_info *mi = &mb->info;
	const struct md_vrec *v;
	size_t glen;
	uint32_t i;

	if (seq == 0 || seq > mb->n)
		return NULL;
	v = &mb->v[seq - 1];
	memset(mi, 0, sizeof(*mi));
	mi->uid = v->r.uid;
	mi->flags = (v->r.flags & FLAG_MASK) |
	            (v->recent ? POSTERN_MSG_RECENT : 0);
	for (i = 0; i < MD_MAX_KEYWORDS; i++)
		if ((v->r.kw & (1u << i)) && i < mb->nkw)
			mb->kwidx[mi->nkeywords++] = i;
	mi->keywords = mb->kwidx;
	mi->size = v->r.size;
	mi->internal_date = v->r.idate;
	mi->internal_tz = v->r.tz;
	mi->modseq = v->r.modseq;
	/* The unique part of the name: stable across flag changes. */
	glen = strcspn(v->name, ",:");
	if (glen >= sizeof(mb->guid))
		glen = sizeof(mb->guid) - 1;
	memcpy(mb->guid, v->name, glen);
	mb->guid[glen] = '\0';
	mi->guid = mb->guid;
	mi->expunged = v->expunged;
	return mi;
}

uint32_t
md_seq_of_uid(postern_mailbox_t *mb, uint32_t uid)
{
	uint32_t lo = 0, hi = mb->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (mb->v[mid].r.uid == uid)
			return mid + 1;
		if (mb->v[mid].r.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* ---- sync ------------------------------------------------------------- */

struct diff {
	uint32_t *exp_seqs, *exp_uids, nexp;
	uint32_t *chg, nchg;
	int grew;
};

/* Replaces the view's records with the state's, keeping held-back
 * expunges when `hold`, and says what changed. */
static int
view_diff(postern_mailbox_t *mb, const struct md_state *s, uint32_t recent,
          int hold, struct diff *d)
{
	struct md_vrec *nv;
	uint32_t i = 0, j = 0, k = 0, oldrecent = mb->nrecent;
	uint32_t maxuid = mb->n > 0 ? mb->v[mb->n - 1].r.uid : 0;

	if ((nv = calloc(mb->n + s->nrec + 1, sizeof(*nv))) == NULL ||
	    (d->exp_seqs = calloc(mb->n + 1, sizeof(uint32_t))) == NULL ||
	    (d->exp_uids = calloc(mb->n + 1, sizeof(uint32_t))) == NULL ||
	    (d->chg = calloc(mb->n + 1, sizeof(uint32_t))) == NULL) {
		free(nv);
		return -1;
	}
	mb->nrecent = 0;
	mb->held = 0;
	while (i < mb->n) {
		while (j < s->nrec && s->recs[j].uid < mb->v[i].r.uid)
			j++; /* unknown to the view: only after a rebuild */
		if (j < s->nrec && s->recs[j].uid == mb->v[i].r.uid) {
			nv[k] = mb->v[i];
			if (nv[k].r.modseq != s->recs[j].modseq ||
			    ((nv[k].r.flags ^ s->recs[j].flags) & FLAG_MASK) ||
			    nv[k].r.kw != s->recs[j].kw)
				d->chg[d->nchg++] = k + 1;
			if (strcmp(nv[k].name, s->names[j]) != 0)
				vrec_set(&nv[k], &s->recs[j], s->names[j]);
			else
				nv[k].r = s->recs[j];
			j++;
		} else if (hold) {
			nv[k] = mb->v[i];
			nv[k].expunged = 1;
			mb->held = 1;
		} else {
			d->exp_seqs[d->nexp] = k + 1;
			d->exp_uids[d->nexp++] = mb->v[i].r.uid;
			free(mb->v[i++].name);
			continue;
		}
		mb->nrecent += nv[k].recent;
		i++;
		k++;
	}
	for (j = 0; j < s->nrec; j++) {
		if (s->recs[j].uid <= maxuid)
			continue;
		if (vrec_set(&nv[k], &s->recs[j], s->names[j]) < 0)
			break;
		nv[k].recent = s->recs[j].uid >= recent;
		mb->nrecent += nv[k].recent;
		d->grew = 1;
		k++;
	}
	free(mb->v);
	mb->v = nv;
	mb->n = k;
	mb->cap = mb->n + s->nrec + 1;
	mb->counts.gen = 0;
	if (mb->nrecent > oldrecent)
		d->grew = 1;
	return 0;
}

static void
diff_free(struct diff *d)
{
	free(d->exp_seqs);
	free(d->exp_uids);
	free(d->chg);
}

static uint32_t *
pool_copy(postern_pool_t *pool, const uint32_t *v, uint32_t n)
{
	uint32_t *out = md_host->pool_alloc(pool, (n + 1) * sizeof(*out));

	if (n > 0)
		memcpy(out, v, n * sizeof(*out));
	return out;
}

static void
diff_out(postern_mailbox_t *mb, const struct diff *d, postern_pool_t *pool,
         struct postern_sync_changes *out)
{
	memset(out, 0, sizeof(*out));
	out->nexpunged = d->nexp;
	out->expunged_seqs = pool_copy(pool, d->exp_seqs, d->nexp);
	out->expunged_uids = pool_copy(pool, d->exp_uids, d->nexp);
	out->nchanged = d->nchg;
	out->changed_seqs = pool_copy(pool, d->chg, d->nchg);
	out->messages = mb->n;
	out->recent = mb->nrecent;
	out->new_messages = d->grew;
	out->highestmodseq = mb->highestmodseq;
}

/* Compares the (locked, refreshed) state with the view and reports. */
static int
view_apply(postern_mailbox_t *mb, const struct md_state *s, uint32_t recent,
           int hold, postern_pool_t *pool,
           struct postern_sync_changes *out,
           struct postern_storage_err *err)
{
	struct diff d = { 0 };
	int rc = 0;

	/* Nothing read, replayed or written since the last comparison:
	 * the records are the view's (most syncs, on a large mailbox). */
	if (s->gen != 0 && s->gen == mb->state_gen && (!mb->held || hold)) {
		if (out != NULL)
			diff_out(mb, &d, pool, out);
		return 0;
	}
	if (view_diff(mb, s, recent, hold, &d) < 0) {
		md_err(err, POSTERN_SE_TEMP, "out of memory");
		rc = -1;
	} else {
		mb->state_gen = s->gen;
		if (out != NULL)
			diff_out(mb, &d, pool, out);
	}
	diff_free(&d);
	return rc;
}

int
md_sync(postern_mailbox_t *mb, unsigned flags, postern_pool_t *pool,
        struct postern_sync_changes *out, struct postern_storage_err *err)
{
	uint32_t recent;
	int lk, rc;

	/* Cleared before reading: a change from here on marks it again. */
	__atomic_store_n(&mb->stale, 0, __ATOMIC_SEQ_CST);
	if ((lk = view_begin(mb, &recent, err)) < 0) {
		__atomic_store_n(&mb->stale, 1, __ATOMIC_SEQ_CST);
		return -1;
	}
	rc = view_apply(mb, &mb->state, recent,
	                !!(flags & POSTERN_SYNC_NO_EXPUNGE), pool, out, err);
	view_end(mb, lk, rc);
	if (rc < 0)
		__atomic_store_n(&mb->stale, 1, __ATOMIC_SEQ_CST);
	return rc;
}

/* ---- store ------------------------------------------------------------ */

struct store_req {
	enum postern_store_op op;
	uint32_t flags, kw;
	uint64_t unchangedsince;
};

static uint32_t
apply_op(enum postern_store_op op, uint32_t old, uint32_t val)
{
	switch (op) {
	case POSTERN_STORE_SET:
		return val;
	case POSTERN_STORE_ADD:
		return old | val;
	case POSTERN_STORE_REMOVE:
		return old & ~val;
	}
	return old;
}

/* Renames the file of state record j to carry its new flags; 1 when
 * the file is not where the state says. */
static int
store_one(postern_mailbox_t *mb, struct md_state *s, uint32_t j,
          const struct store_req *rq)
{
	struct md_rec *r = &s->recs[j];
	uint32_t nf = apply_op(rq->op, r->flags & FLAG_MASK, rq->flags);
	uint32_t nk = apply_op(rq->op, r->kw, rq->kw);
	char from[8192], to[8192], *name;

	if (nf == (r->flags & FLAG_MASK) && nk == r->kw)
		return 0;
	if ((name = md_name_make(s->names[j], nf, nk)) == NULL)
		return -1;
	snprintf(from, sizeof(from), "%s/%s/%s", mb->dir,
	         (r->flags & MD_REC_NEW) ? "new" : "cur", s->names[j]);
	snprintf(to, sizeof(to), "%s/cur/%s", mb->dir, name);
	if (rename(from, to) < 0) {
		free(name);
		if (errno == ENOENT)
			return 1; /* renamed or removed by someone else */
		md_log(POSTERN_LOG_ERROR, "rename %s: %s", from,
		       strerror(errno));
		return -1;
	}
	free(s->names[j]);
	s->names[j] = name;
	r->flags = nf;
	r->kw = nk;
	r->modseq = ++s->highestmodseq;
	md_rec_touch(s, j);
	s->dirty = 1;
	return 0;
}

static int
store_keywords(postern_mailbox_t *mb, struct md_state *s,
               enum postern_store_op op, const char *const *kws,
               uint32_t n, uint32_t *bits)
{
	uint32_t i, before = s->nkw;
	int idx;

	*bits = 0;
	for (i = 0; i < n; i++) {
		idx = md_keyword_index(s, kws[i], op != POSTERN_STORE_REMOVE);
		if (idx >= 0)
			*bits |= 1u << idx;
		else if (op != POSTERN_STORE_REMOVE)
			return -1;
	}
	if (s->nkw != before && md_keywords_write(mb->dir, s) < 0)
		return -1;
	return 0;
}

/* The state came from a light refresh (cur/ not read): a file another
 * program renamed is found by a full refresh, once per STORE. */
static int
store_refresh(postern_mailbox_t *mb, struct md_state *s, int *refreshed)
{
	if (*refreshed)
		return -1;
	*refreshed = 1;
	if (s->dirty && md_index_write(mb->dir, s) < 0)
		return -1;
	return md_refresh(mb->dir, s, 0);
}

static int
store_msg(postern_mailbox_t *mb, struct md_state *s, uint32_t i,
          const struct store_req *rq, uint32_t *fl, size_t *nfailed,
          int *refreshed)
{
	long j;
	int rc;

	do {
		if ((j = md_state_find(s, mb->v[i].r.uid)) < 0)
			return 0; /* expunged: the next sync says so */
		if (rq->unchangedsince > 0 &&
		    s->recs[j].modseq > rq->unchangedsince) {
			fl[(*nfailed)++] = mb->v[i].r.uid;
			return 0;
		}
		rc = store_one(mb, s, j, rq);
	} while (rc == 1 && store_refresh(mb, s, refreshed) == 0);
	if (rc == 1)
		return 0; /* gone after all */
	if (rc == 0)
		rc = vrec_set(&mb->v[i], &s->recs[j], s->names[j]);
	return rc;
}

static int
store_locked(postern_mailbox_t *mb, struct md_state *s,
             const struct postern_uid_range *uids, size_t nranges,
             struct store_req *rq, postern_pool_t *pool, uint32_t **failed,
             size_t *nfailed)
{
	uint32_t i, *fl = md_host->pool_alloc(pool, (mb->n + 1) * 4);
	int rc = 0, refreshed = 0;

	*failed = fl;
	*nfailed = 0;
	mb->counts.gen = 0;
	for (i = 0; rc == 0 && i < mb->n; i++)
		if (!mb->v[i].expunged &&
		    postern_uid_ranges_have(uids, nranges, mb->v[i].r.uid))
			rc = store_msg(mb, s, i, rq, fl, nfailed, &refreshed);
	if (s->dirty && md_index_write(mb->dir, s) < 0)
		rc = -1;
	mb->highestmodseq = s->highestmodseq;
	return rc;
}

int
md_store(postern_mailbox_t *mb, const struct postern_uid_range *uids,
         size_t nranges, enum postern_store_op op, uint32_t flags,
         const char *const *keywords, uint32_t nkeywords,
         uint64_t unchangedsince, postern_pool_t *pool, uint32_t **failed,
         size_t *nfailed, struct postern_storage_err *err)
{
	struct store_req rq = { op, flags & FLAG_MASK, 0, unchangedsince };
	struct md_state *s = &mb->state;
	int lk, rc = -1;

	*failed = NULL;
	*nfailed = 0;
	if (mb->mode & POSTERN_OPEN_READONLY) {
		md_err(err, POSTERN_SE_NOPERM, "mailbox is read-only");
		return -1;
	}
	if ((lk = view_begin(mb, NULL, err)) < 0)
		return -1;
	if (store_keywords(mb, s, op, keywords, nkeywords, &rq.kw) < 0)
		md_err(err, POSTERN_SE_LIMIT, "too many keywords");
	else if ((rc = store_locked(mb, s, uids, nranges, &rq, pool, failed,
	                            nfailed)) < 0)
		md_err(err, POSTERN_SE_TEMP, "cannot change flags");
	view_set_keywords(mb, s);
	view_end(mb, lk, rc);
	return rc;
}

/* ---- expunge ---------------------------------------------------------- */

/* Rewrites the uid list once expunged lines outnumber the live ones. */
static int
maybe_compact_uidlist(postern_mailbox_t *mb, struct md_state *s)
{
	uint64_t live = 32;
	uint32_t i;

	for (i = 0; i < s->nrec; i++)
		live += strlen(s->names[i]) + 12;
	if (s->uidlist_size <= 2 * live)
		return 0;
	return md_uidlist_rewrite(mb->dir, s);
}

static int
expunge_locked(postern_mailbox_t *mb, struct md_state *s,
               const struct postern_uid_range *uids, size_t nranges,
               int deleted_only)
{
	unsigned char *keep = malloc(s->nrec + 1);
	char path[8192];
	uint32_t j, gone = 0;
	uint64_t bytes = 0;
	int rc = 0;

	if (keep == NULL)
		return -1;
	for (j = 0; j < s->nrec; j++) {
		keep[j] = 1;
		if ((deleted_only &&
		     !(s->recs[j].flags & POSTERN_MSG_DELETED)) ||
		    md_seq_of_uid(mb, s->recs[j].uid) == 0 ||
		    (uids != NULL && !postern_uid_ranges_have(uids, nranges,
		                                s->recs[j].uid)))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", mb->dir,
		         (s->recs[j].flags & MD_REC_NEW) ? "new" : "cur",
		         s->names[j]);
		if (unlink(path) < 0 && errno != ENOENT) {
			md_log(POSTERN_LOG_ERROR, "unlink %s: %s", path,
			       strerror(errno));
			rc = -1;
			continue;
		}
		keep[j] = 0;
		gone++;
		bytes += s->recs[j].rawsize;
	}
	md_quota_add(mb->st->root, -(int64_t)bytes, -(int64_t)gone);
	if (gone > 0) {
		md_state_keep(s, keep);
		s->highestmodseq++; /* an expunge is a change (RFC 7162) */
		if (maybe_compact_uidlist(mb, s) < 0 ||
		    md_index_write(mb->dir, s) < 0)
			rc = -1;
	}
	free(keep);
	mb->highestmodseq = s->highestmodseq;
	return rc;
}

static int
expunge(postern_mailbox_t *mb, const struct postern_uid_range *uids,
        size_t nranges, int deleted_only, postern_pool_t *pool,
        struct postern_sync_changes *out, struct postern_storage_err *err)
{
	uint32_t recent;
	int lk, rc = -1;

	memset(out, 0, sizeof(*out));
	if (mb->mode & POSTERN_OPEN_READONLY) {
		md_err(err, POSTERN_SE_NOPERM, "mailbox is read-only");
		return -1;
	}
	if ((lk = view_begin(mb, &recent, err)) < 0)
		return -1;
	if (expunge_locked(mb, &mb->state, uids, nranges, deleted_only) < 0)
		md_err(err, POSTERN_SE_TEMP, "cannot expunge");
	else
		rc = view_apply(mb, &mb->state, recent, 0, pool, out, err);
	view_end(mb, lk, rc);
	return rc;
}

int
md_expunge(postern_mailbox_t *mb, const struct postern_uid_range *uids,
           size_t nranges, postern_pool_t *pool,
           struct postern_sync_changes *out,
           struct postern_storage_err *err)
{
	return expunge(mb, uids, nranges, 1, pool, out, err);
}

int
md_expunge_uids(postern_mailbox_t *mb, const struct postern_uid_range *uids,
                size_t nranges, postern_pool_t *pool,
                struct postern_sync_changes *out,
                struct postern_storage_err *err)
{
	return expunge(mb, uids, nranges, 0, pool, out, err);
}

/* ---- status_by_name --------------------------------------------------- */

/* The state's status, its records counted once per gen (\Recent as the
 * next read-write view would see it).  An up-to-date state (refreshed,
 * nothing unwritten). */
static void
state_status(struct md_state *s, struct postern_mailbox_status *caller)
{
	struct postern_mailbox_status st = { .size = sizeof(st) }, *out = &st;

	if (s->counts.gen != s->gen || s->gen == 0) {
		count_recs(s->recs, sizeof(*s->recs), s->nrec,
		           s->first_recent_uid, &s->counts);
		s->counts.gen = s->gen;
	}
	counts_out(&s->counts, out);
	out->uidvalidity = s->uidvalidity;
	out->uidnext = s->nextuid;
	out->highestmodseq = s->highestmodseq;
	out->modseq_supported = 1;
	out->readonly = 1;
	md_status_copy(caller, &st);
}

/* From the index alone: no view, no copy of the records.  The state is
 * the one the store handle keeps (as for saves), so a client polling
 * STATUS on one mailbox reads only what changed since its last poll. */
int
md_status_by_name(postern_store_t *st, const char *name,
                  struct postern_mailbox_status *out,
                  struct postern_storage_err *err)
{
	struct md_state own = { 0 }, *s = NULL;
	char *dir;
	int lk, rc = -1;

	if ((dir = md_box_dir_existing(st->root, name, err)) == NULL)
		return -1;
	if ((s = md_store_state_get(st, dir)) == NULL)
		s = &own;
	if ((lk = md_lock(dir)) < 0)
		md_err(err, POSTERN_SE_TEMP, "cannot lock the mailbox");
	else {
		if (md_refresh(dir, s, 0) < 0)
			md_err(err, POSTERN_SE_TEMP, "cannot read the mailbox");
		else {
			state_status(s, out);
			rc = 0;
		}
		md_unlock(lk);
	}
	if (s == &own)
		md_state_free(&own);
	else
		md_store_state_put(st, rc);
	free(dir);
	return rc;
}

/* From the store handle's kept state, when it is this mailbox's, was
 * counted, and the files show nothing changed since: a client polling
 * STATUS of an idle mailbox costs a few stat()s, no lock, no job. */
int
md_status_nowait(postern_store_t *st, const char *name,
                 struct postern_mailbox_status *out)
{
	struct postern_storage_err err;
	struct md_state *s;
	char *dir;
	int rc = 1;

	if ((dir = md_box_dir(st->root, name, &err)) == NULL)
		return 1;
	if ((s = md_store_state_peek(st, dir)) != NULL) {
		if (s->gen != 0 && s->counts.gen == s->gen &&
		    md_state_unchanged(dir, s)) {
			state_status(s, out);
			rc = 0;
		}
		md_store_state_put(st, 0);
	}
	free(dir);
	return rc;
}

/* ---- finding a message's file ----------------------------------------- */

void
md_view_path(postern_mailbox_t *mb, uint32_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%s", mb->dir,
	         (mb->v[i].r.flags & MD_REC_NEW) ? "new" : "cur",
	         mb->v[i].name);
}

/* "cur/name" or "new/name" of the view record's file. */
static void
view_relpath(postern_mailbox_t *mb, uint32_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s",
	         (mb->v[i].r.flags & MD_REC_NEW) ? "new" : "cur",
	         mb->v[i].name);
}

int
md_dirfd(postern_mailbox_t *mb)
{
	if (mb->dirfd < 0)
		mb->dirfd = open(mb->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return mb->dirfd;
}

int
md_openat(postern_mailbox_t *mb, const char *rel, int flags, mode_t mode)
{
	char path[8192];
	int dfd = md_dirfd(mb);

	if (dfd >= 0)
		return openat(dfd, rel, flags | O_CLOEXEC, mode);
	snprintf(path, sizeof(path), "%s/%s", mb->dir, rel);
	return open(path, flags | O_CLOEXEC, mode);
}

int
md_statat(postern_mailbox_t *mb, const char *rel, struct stat *sb)
{
	char path[8192];
	int dfd = md_dirfd(mb);

	if (dfd >= 0)
		return fstatat(dfd, rel, sb, 0);
	snprintf(path, sizeof(path), "%s/%s", mb->dir, rel);
	return stat(path, sb);
}

int
md_view_openat(postern_mailbox_t *mb, uint32_t i, int flags)
{
	char rel[4096];

	view_relpath(mb, i, rel, sizeof(rel));
	return md_openat(mb, rel, flags, 0);
}

/* Takes the current file names from the disk without changing what the
 * view shows (flag changes are for sync to announce). */
static int
view_renames(postern_mailbox_t *mb)
{
	const struct md_state *s = &mb->state;
	uint32_t i;
	long j;
	int lk, rc;

	if ((lk = md_lock(mb->dir)) < 0)
		return -1;
	rc = md_refresh(mb->dir, &mb->state, 0);
	for (i = 0; rc == 0 && i < mb->n; i++) {
		if ((j = md_state_find(s, mb->v[i].r.uid)) < 0 ||
		    strcmp(s->names[j], mb->v[i].name) == 0)
			continue;
		free(mb->v[i].name);
		if ((mb->v[i].name = strdup(s->names[j])) == NULL)
			rc = -1;
		mb->v[i].r.flags = (mb->v[i].r.flags & ~MD_REC_NEW) |
		                   (s->recs[j].flags & MD_REC_NEW);
	}
	view_end(mb, lk, rc);
	return rc;
}

int
md_view_open_file(postern_mailbox_t *mb, uint32_t uid)
{
	char path[8192];
	uint32_t seq = md_seq_of_uid(mb, uid);
	int fd, tries;

	for (tries = 0; seq != 0 && tries < 2; tries++) {
		if ((fd = md_view_openat(mb, seq - 1, O_RDONLY)) >= 0)
			return fd;
		if (errno != ENOENT) {
			md_view_path(mb, seq - 1, path, sizeof(path));
			md_log(POSTERN_LOG_ERROR, "open %s: %s", path,
			       strerror(errno));
			return -1;
		}
		if (tries == 0 && view_renames(mb) < 0)
			return -1;
	}
	return -1;
}
