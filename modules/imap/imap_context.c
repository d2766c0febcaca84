/*
 * imap_context.c - searches kept updated (RFC 5267 4.3, CONTEXT=SEARCH):
 * SEARCH RETURN (UPDATE), the unsolicited ESEARCH ADDTO and REMOVEFROM
 * responses as the mailbox changes, and CANCELUPDATE.
 *
 * A search kept updated holds a copy of its program and its result as
 * UIDs.  Each sync of the session (imap_sync_format, on the session's
 * job) first removes the expunged messages from every result, with
 * REMOVEFROM before their EXPUNGE responses, in the sequence numbers
 * the client still knows; then evaluates again, with SEARCH's own
 * evaluator, only the messages whose mod-sequence rose since the last
 * time (new ones, changed flags, from this session or another) and
 * sends ADDTO / REMOVEFROM after EXISTS.  A SORT kept updated also
 * holds its result in sort order with the messages' keys
 * (imap_sort_live, imap_sort.c): each message added or removed is a
 * pair of its 1-based position in the sorted result (after it was
 * added, before it was removed, one after the other) and its number.
 * A session keeps at most
 * IMAP_MAX_UPDATES of them; past that, and when the mailbox has no
 * mod-sequences, the search is answered with NOUPDATE, which the RFC
 * lets a server say of any search.
 *
 * The list belongs to the session: touched on the loop only while no
 * job of the session runs, else by that job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "imap_search.h"
#include "imap_sort.h"

/* ADDTO and REMOVEFROM give this position: the results of a SEARCH
 * are in no order the position could index (RFC 5267 4.3: "may be 0
 * for SEARCH result additions"). */
#define UPDATE_POSITION 0

struct imap_update {
	struct imap_update *next;
	char tag[IMAP_TAG_MAX];
	int by_uid;
	postern_pool_t *pool;          /* the program's copy */
	struct imap_search_prog *prog;
	uint32_t *uids;                /* the result, ascending (malloc'd) */
	size_t n;
	uint64_t modseq;               /* changes up to it are evaluated */
	struct imap_sort_live *sort;   /* a SORT's order, else NULL */
	/* What RETURN asked (IMAP_RET_MIN, MAX, COUNT, ALL): ADDTO and
	 * REMOVEFROM follow ALL; MIN, MAX and COUNT are sent again, as
	 * "* ESEARCH (TAG t) MIN a MAX b COUNT n", whenever one of them
	 * changes (RFC 5267 4.3), from the values last sent (MIN and MAX
	 * as UIDs, 0 for none). */
	unsigned ret;
	uint32_t sent_min, sent_max;
	size_t sent_count;
};

static void
update_free(struct imap_update *u)
{
	imap_sort_live_free(u->sort);
	imap_host->pool_destroy(u->pool);
	free(u->uids);
	free(u);
}

static void
update_unlink(struct imap_session *s, struct imap_update *u)
{
	struct imap_update **pp;

	for (pp = &s->updates; *pp != NULL; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			s->nupdates--;
			update_free(u);
			return;
		}
}

void
imap_update_refuse(struct imap_buf *out, const char *tag, const char *why)
{
	imap_buf_str(out, "* NO [NOUPDATE ");
	imap_buf_string(out, tag, strlen(tag));
	imap_buf_printf(out, "] %s\r\n", why);
}

/* The UIDs of u's MIN and MAX: the lowest and highest UID of a
 * SEARCH's result (so its lowest and highest number), the first and
 * last of a SORT's order; 0 when it is empty. */
static void
update_ends(const struct imap_update *u, uint32_t *min, uint32_t *max)
{
	if (u->sort != NULL) {
		imap_sort_live_ends(u->sort, min, max);
		return;
	}
	*min = u->n > 0 ? u->uids[0] : 0;
	*max = u->n > 0 ? u->uids[u->n - 1] : 0;
}

/* MIN, MAX and COUNT of a search kept updated, again when one of them
 * changed since they were last sent, in the numbers the client knows
 * after this sync's EXPUNGE and EXISTS. */
static void
update_mmc(struct imap_session *s, struct imap_update *u,
           struct imap_buf *out)
{
	uint32_t min, max;

	if (!(u->ret & (IMAP_RET_MIN | IMAP_RET_MAX | IMAP_RET_COUNT)))
		return;
	update_ends(u, &min, &max);
	if (!((u->ret & IMAP_RET_MIN) && min != u->sent_min) &&
	    !((u->ret & IMAP_RET_MAX) && max != u->sent_max) &&
	    !((u->ret & IMAP_RET_COUNT) && u->n != u->sent_count))
		return;
	u->sent_min = min;
	u->sent_max = max;
	u->sent_count = u->n;
	imap_buf_str(out, "* ESEARCH (TAG ");
	imap_buf_string(out, u->tag, strlen(u->tag));
	imap_buf_printf(out, ")%s", u->by_uid ? " UID" : "");
	if ((u->ret & IMAP_RET_MIN) && min != 0)
		imap_buf_printf(out, " MIN %u", u->by_uid ? min :
		                imap_storage->seq_of_uid(s->mb, min));
	if ((u->ret & IMAP_RET_MAX) && max != 0)
		imap_buf_printf(out, " MAX %u", u->by_uid ? max :
		                imap_storage->seq_of_uid(s->mb, max));
	if (u->ret & IMAP_RET_COUNT)
		imap_buf_printf(out, " COUNT %zu", u->n);
	imap_buf_str(out, "\r\n");
}

void
imap_update_add(struct imap_session *s, struct imap_buf *out,
                const char *tag, const struct imap_search_prog *p,
                int by_uid, const uint32_t *uids, size_t n, uint64_t modseq,
                struct imap_sort_live *sort, unsigned ret)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct imap_update *u, **pp;

	if (s->nupdates >= IMAP_MAX_UPDATES) {
		imap_update_refuse(out, tag, "too many searches are kept "
		                   "updated: CANCELUPDATE one first");
		imap_sort_live_free(sort);
		return;
	}
	imap_storage->status(s->mb, &st);
	if (!st.modseq_supported) {
		imap_update_refuse(out, tag, "changes of this mailbox "
		                   "cannot be followed");
		imap_sort_live_free(sort);
		return;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (u->uids = malloc((n + 1) * sizeof(*u->uids))) == NULL) {
		free(u);
		imap_update_refuse(out, tag, "out of memory");
		imap_sort_live_free(sort);
		return;
	}
	u->sort = sort;
	snprintf(u->tag, sizeof(u->tag), "%s", tag);
	u->by_uid = by_uid;
	u->pool = imap_host->pool_create(1024);
	u->prog = imap_search_prog_copy(p, u->pool);
	if (n > 0)
		memcpy(u->uids, uids, n * sizeof(*uids));
	u->n = n;
	u->modseq = modseq;
	u->ret = ret & (IMAP_RET_MIN | IMAP_RET_MAX | IMAP_RET_COUNT |
	                IMAP_RET_ALL);
	update_ends(u, &u->sent_min, &u->sent_max);
	u->sent_count = n;
	for (pp = &s->updates; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = u;
	s->nupdates++;
}

static struct imap_update *
update_find(struct imap_session *s, const char *tag, size_t len)
{
	struct imap_update *u;

	for (u = s->updates; u != NULL; u = u->next)
		if (strlen(u->tag) == len && memcmp(u->tag, tag, len) == 0)
			return u;
	return NULL;
}

int
imap_update_find(struct imap_session *s, const char *tag)
{
	return update_find(s, tag, strlen(tag)) != NULL;
}

void
imap_updates_free(struct imap_session *s)
{
	struct imap_update *u;

	while ((u = s->updates) != NULL) {
		s->updates = u->next;
		update_free(u);
	}
	s->nupdates = 0;
}

int
imap_uid_in(const uint32_t *a, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (a[mid] == uid)
			return 1;
		if (a[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* How many messages of the view have a UID below uid. */
static uint32_t
count_below(postern_mailbox_t *mb, uint32_t uid)
{
	uint32_t lo = 1, hi = imap_storage->count(mb) + 1, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (imap_storage->message(mb, mid)->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* u's result without the ascending UIDs gone[0..ng) and with the
 * ascending add[0..na) (none in both, none of add already there).  -1
 * when memory is short (u unchanged). */
static int
update_apply(struct imap_update *u, const uint32_t *gone, size_t ng,
             const uint32_t *add, size_t na)
{
	uint32_t *r;
	size_t i = 0, g = 0, k = 0, n = 0;

	if ((r = malloc((u->n + na + 1) * sizeof(*r))) == NULL)
		return -1;
	while (i < u->n || k < na) {
		if (k == na || (i < u->n && u->uids[i] < add[k])) {
			while (g < ng && gone[g] < u->uids[i])
				g++;
			if (g == ng || gone[g] != u->uids[i])
				r[n++] = u->uids[i];
			i++;
		} else
			r[n++] = add[k++];
	}
	free(u->uids);
	u->uids = r;
	u->n = n;
	return 0;
}

/* A SORT's: "* ESEARCH (TAG "t") [UID] WHAT (pos num pos num ...)". */
static void
update_pairs(struct imap_buf *out, const struct imap_update *u,
             const char *what, const uint32_t *pos, const uint32_t *nums,
             size_t n)
{
	size_t i;

	if (n == 0 || out == NULL)
		return;
	imap_buf_str(out, "* ESEARCH (TAG ");
	imap_buf_string(out, u->tag, strlen(u->tag));
	imap_buf_printf(out, ")%s %s (", u->by_uid ? " UID" : "", what);
	for (i = 0; i < n; i++)
		imap_buf_printf(out, "%s%u %u", i > 0 ? " " : "", pos[i],
		                nums[i]);
	imap_buf_str(out, ")\r\n");
}

/* The client's number of uid: nums[i] of uids[i] (ascending, n). */
static uint32_t
num_of(const uint32_t *uids, const uint32_t *nums, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n ? nums[lo] : uid;
}

/* A SORT's REMOVEFROM or ADDTO: the pairs pos[i], the number of
 * moved[i] (of uids/nums), in the order they happen. */
static void
sort_pairs(struct imap_buf *out, const struct imap_update *u,
           const char *what, uint32_t *pos, uint32_t *moved, size_t n,
           const uint32_t *uids, const uint32_t *nums, size_t nuids)
{
	size_t i;

	for (i = 0; i < n; i++)
		moved[i] = num_of(uids, nums, nuids, moved[i]);
	update_pairs(out, u, what, pos, moved, n);
}

/* Takes gone[0..n) (ascending UIDs, their client numbers nums) out of a
 * SORT's order and says so; pos and moved: room for n. */
static void
sort_remove(struct imap_buf *out, struct imap_update *u,
            const uint32_t *gone, const uint32_t *nums, size_t n,
            uint32_t *pos, uint32_t *moved)
{
	size_t k = imap_sort_live_remove(u->sort, gone, n, pos, moved);

	sort_pairs(out, u, "REMOVEFROM", pos, moved, k, gone, nums, n);
}

/* "* ESEARCH (TAG "t") [UID] WHAT (0 set)\r\n" */
static void
update_line(struct imap_buf *out, const struct imap_update *u,
            const char *what, const uint32_t *nums, size_t n)
{
	if (n == 0)
		return;
	imap_buf_str(out, "* ESEARCH (TAG ");
	imap_buf_string(out, u->tag, strlen(u->tag));
	imap_buf_printf(out, ")%s %s (%d ", u->by_uid ? " UID" : "", what,
	                UPDATE_POSITION);
	imap_buf_uidset(out, nums, n);
	imap_buf_str(out, ")\r\n");
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void
imap_update_expunges(struct imap_session *s, struct imap_buf *out,
                     const struct postern_sync_changes *ch,
                     postern_pool_t *pool)
{
	struct imap_update *u, *next;
	uint32_t *ex, *gone, *nums, *pos, *moved;
	size_t i, ng;

	if (s->updates == NULL || ch->nexpunged == 0)
		return;
	ex = imap_host->pool_alloc(pool, ch->nexpunged * sizeof(*ex));
	gone = imap_host->pool_alloc(pool, ch->nexpunged * sizeof(*gone));
	nums = imap_host->pool_alloc(pool, ch->nexpunged * sizeof(*nums));
	pos = imap_host->pool_alloc(pool, ch->nexpunged * sizeof(*pos));
	moved = imap_host->pool_alloc(pool, ch->nexpunged * sizeof(*moved));
	memcpy(ex, ch->expunged_uids, ch->nexpunged * sizeof(*ex));
	qsort(ex, ch->nexpunged, sizeof(*ex), uid_cmp);
	for (u = s->updates; u != NULL; u = next) {
		next = u->next;
		for (ng = 0, i = 0; i < ch->nexpunged; i++) {
			if (!imap_uid_in(u->uids, u->n, ex[i]))
				continue;
			gone[ng] = ex[i];
			/* its number before the expunges: the view's
			 * messages below it and the expunged ones below
			 * it (ex is ascending) */
			nums[ng++] = u->by_uid ? ex[i]
			             : count_below(s->mb, ex[i]) +
			               (uint32_t)i + 1;
		}
		if (ng == 0)
			continue;
		if (u->sort != NULL)
			sort_remove(u->ret & IMAP_RET_ALL ? out : NULL, u,
			            gone, nums, ng, pos, moved);
		else if (u->ret & IMAP_RET_ALL)
			update_line(out, u, "REMOVEFROM", nums, ng);
		if (update_apply(u, gone, ng, NULL, 0) < 0) {
			imap_update_refuse(out, u->tag, "out of memory");
			update_unlink(s, u);
		}
	}
}

/* Evaluates the messages of the view changed since u->modseq; fills
 * add / gone (UIDs) and their numbers for the client.  NULL, or why the
 * search cannot be kept updated any more. */
static const char *
update_eval(struct imap_session *s, struct imap_update *u, uint32_t count,
            postern_pool_t *scratch, uint64_t *cost, uint32_t *add,
            uint32_t *addn, size_t *na, uint32_t *gone, uint32_t *gonen,
            size_t *ng)
{
	const struct postern_message_info *mi;
	struct postern_storage_err err;
	uint32_t seq, uid;
	int r, in;

	*na = *ng = 0;
	for (seq = 1; seq <= count; seq++) {
		mi = imap_storage->message(s->mb, seq);
		if (mi->expunged || mi->modseq <= u->modseq)
			continue;
		uid = mi->uid;
		imap_host->pool_clear(scratch);
		memset(&err, 0, sizeof(err));
		if (*cost > IMAP_UPDATE_SYNC_OCTETS) {
			imap_log(s, POSTERN_LOG_INFO, "search "
			         "update %s of %s stopped: the changes "
			         "are too many to follow", u->tag,
			         s->user);
			return "the changes are too many to follow: search "
			       "again";
		}
		r = imap_search_match(s, u->prog, seq, scratch, cost, &err);
		if (r < 0 && err.code == POSTERN_SE_EXPUNGED)
			continue;  /* its EXPUNGE will follow */
		if (r < 0) {
			imap_log(s, POSTERN_LOG_WARNING,
			         "search update %s of %s stopped: %s",
			         u->tag, s->user, err.text);
			return "the search can no longer be kept updated";
		}
		in = imap_uid_in(u->uids, u->n, uid);
		if (r == 1 && !in) {
			addn[*na] = u->by_uid ? uid : seq;
			add[(*na)++] = uid;
		} else if (r == 0 && in) {
			gonen[*ng] = u->by_uid ? uid : seq;
			gone[(*ng)++] = uid;
		}
	}
	return NULL;
}

/* A SORT's changes: the messages gone taken out of its order, those
 * added put in their place (their keys made), each with its position.
 * NULL, or why the SORT can no longer be kept updated. */
static const char *
sort_changes(struct imap_session *s, struct imap_update *u,
             postern_pool_t *scratch, uint64_t *cost, const uint32_t *add,
             const uint32_t *addn, size_t na, const uint32_t *gone,
             const uint32_t *gonen, size_t ng, uint32_t *pos,
             uint32_t *moved, struct imap_buf *out)
{
	struct postern_storage_err err;

	sort_remove(out, u, gone, gonen, ng, pos, moved);
	memset(&err, 0, sizeof(err));
	if (imap_sort_live_add(s, u->sort, add, na, scratch, cost, pos, moved,
	                       &err) < 0) {
		imap_log(s, POSTERN_LOG_INFO, "sort update %s "
		         "of %s stopped: %s", u->tag, s->user, err.text);
		return "the sort keys can no longer be kept";
	}
	sort_pairs(out, u, "ADDTO", pos, moved, na, add, addn, na);
	return NULL;
}

void
imap_update_changes(struct imap_session *s, struct imap_buf *out,
                    postern_pool_t *pool)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct imap_update *u, *next;
	postern_pool_t *scratch;
	uint32_t count, *add, *addn, *gone, *gonen, *pos, *moved;
	uint64_t cost = 0;
	const char *why;
	size_t na, ng;

	if (s->updates == NULL || s->mb == NULL)
		return;
	imap_storage->status(s->mb, &st);
	count = imap_storage->count(s->mb);
	add = imap_host->pool_alloc(pool, (count + 1) * sizeof(*add));
	addn = imap_host->pool_alloc(pool, (count + 1) * sizeof(*addn));
	gone = imap_host->pool_alloc(pool, (count + 1) * sizeof(*gone));
	gonen = imap_host->pool_alloc(pool, (count + 1) * sizeof(*gonen));
	pos = imap_host->pool_alloc(pool, (count + 1) * sizeof(*pos));
	moved = imap_host->pool_alloc(pool, (count + 1) * sizeof(*moved));
	/* what one message's evaluation reads, cleared after it */
	scratch = imap_host->pool_create_limited(
		16384, (size_t)imap_cfg.message_memory);
	for (u = s->updates; u != NULL; u = next) {
		next = u->next;
		if (st.highestmodseq <= u->modseq)
			continue;
		if ((why = update_eval(s, u, count, scratch, &cost, add, addn,
		                       &na, gone, gonen, &ng)) != NULL) {
			imap_update_refuse(out, u->tag, why);
			update_unlink(s, u);
			continue;
		}
		if (update_apply(u, gone, ng, add, na) < 0) {
			imap_update_refuse(out, u->tag, "out of memory");
			update_unlink(s, u);
			continue;
		}
		u->modseq = st.highestmodseq;
		if (u->sort != NULL &&
		    (why = sort_changes(s, u, scratch, &cost, add, addn, na,
		                        gone, gonen, ng, pos, moved,
		                        u->ret & IMAP_RET_ALL ? out
		                                              : NULL)) != NULL) {
			imap_update_refuse(out, u->tag, why);
			update_unlink(s, u);
			continue;
		}
		if (u->sort != NULL || !(u->ret & IMAP_RET_ALL))
			continue;
		update_line(out, u, "REMOVEFROM", gonen, ng);
		update_line(out, u, "ADDTO", addn, na);
	}
	imap_host->pool_destroy(scratch);
	for (u = s->updates; u != NULL; u = u->next)
		update_mmc(s, u, out);
}

/* CANCELUPDATE 1*(SP quoted) (RFC 5267 4.3): every tag must name a
 * search kept updated, else nothing is cancelled. */
void
imap_cmd_cancelupdate(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_str t;
	char *start = a->p;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		a->p = start;
		do {
			if (imap_arg_sp(a) < 0 || imap_arg_string(a, &t) < 0) {
				imap_reply(c->s, c->tag, "BAD", "CANCELUPDATE: "
				           "%s", a->error != NULL ? a->error :
				           "a quoted tag is expected");
				return;
			}
			if (pass == 0 &&
			    update_find(c->s, t.s, t.len) == NULL) {
				imap_reply(c->s, c->tag, "BAD", "CANCELUPDATE: "
				           "no search of that tag is kept "
				           "updated");
				return;
			}
			if (pass == 1)
				update_unlink(c->s, update_find(c->s, t.s,
				                                t.len));
		} while (imap_arg_peek(a) == ' ');
		if (imap_arg_end(a) < 0) {
			imap_reply(c->s, c->tag, "BAD", "CANCELUPDATE: %s",
			           a->error);
			return;
		}
	}
	imap_reply(c->s, c->tag, "OK", "CANCELUPDATE completed");
}
