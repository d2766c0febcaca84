/*
 * imap_notify.c - NOTIFY (RFC 5465): the changes of mailboxes other
 * than the selected one as unsolicited STATUS, of the mailbox list and
 * the subscriptions as LIST, and of the selected mailbox as the same
 * EXISTS / EXPUNGE / FETCH a NOOP would show, sent whenever the
 * session is between commands (RFC 5465 5: at any time), not only in
 * IDLE.
 *
 * Each mailbox a filter with message events names is watched through
 * the store by name (storage 1.6 watch_name: on maildir the worker's
 * one inotify instance, no polling), and so is the mailbox list when
 * any filter names mailboxes other than the selected one (a mailbox
 * made, removed or renamed under "personal", "subtree" or
 * "subscribed" joins or leaves the set).  A watch only marks the
 * mailbox pending; a short timer then starts one job that asks the
 * store for the status of every pending mailbox (and the list, when it
 * changed), compares it with what was last seen and writes what the
 * client asked for.  So a burst of deliveries is one STATUS, and what
 * a session holds is bounded by the mailboxes it watches:
 * `notify_max_mailboxes` (NOTIFY SET past it: NO
 * [NOTIFICATIONOVERFLOW]; a mailbox made later past it: * OK
 * [NOTIFICATIONOVERFLOW] and the session's notifications end, as
 * NOTIFY NONE).  A client that does not read its output gets nothing
 * more once IMAP_NOTIFY_OUT_WAIT octets wait (the changes stay marked,
 * one flag per mailbox); past IMAP_NOTIFY_OUT_MAX, it gets the
 * overflow and its notifications end.
 *
 * The state belongs to the session: the loop changes it only while no
 * job of the session runs (watch callbacks only set `pending` flags),
 * the one notify job reads and updates the mailboxes' last status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

#define NE_NEW 0x01u        /* MessageNew */
#define NE_EXPUNGE 0x02u    /* MessageExpunge */
#define NE_FLAGS 0x04u      /* FlagChange */
#define NE_ANNOTATION 0x08u /* AnnotationChange (not supported) */
#define NE_NAME 0x10u       /* MailboxName */
#define NE_SUBS 0x20u       /* SubscriptionChange */
#define NE_MBMETA 0x40u     /* MailboxMetadataChange (not supported) */
#define NE_SRVMETA 0x80u    /* ServerMetadataChange (not supported) */
#define NE_MESSAGE (NE_NEW | NE_EXPUNGE | NE_FLAGS)
#define NE_LIST (NE_NAME | NE_SUBS)
#define NE_UNSUPPORTED (NE_ANNOTATION | NE_MBMETA | NE_SRVMETA)

/* Output waiting for the client: past WAIT, notifications wait for it
 * to drain; past MAX between commands, they overflow. */
#define IMAP_NOTIFY_OUT_WAIT (64u * 1024)
#define IMAP_NOTIFY_OUT_MAX (1024u * 1024)
/* Names kept to tell MailboxName and SubscriptionChange: past it the
 * list is too large to follow (overflow). */
#define IMAP_NOTIFY_MAX_NAMES 10000
/* How long a change waits for others to join it. */
#define IMAP_NOTIFY_DELAY_MS 20

static const char *const event_names[] = {
	"MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange",
	"MailboxName", "SubscriptionChange", "MailboxMetadataChange",
	"ServerMetadataChange",
};

enum nf_kind { NF_INBOXES, NF_PERSONAL, NF_SUBSCRIBED, NF_SUBTREE,
	       NF_MAILBOXES };

struct nf_filter {
	enum nf_kind kind;
	unsigned events;
	char **names;               /* SUBTREE, MAILBOXES (malloc'd) */
	size_t nnames;
};

/* A watched mailbox other than the selected one. */
struct nf_box {
	struct imap_session *s;
	char *name;                 /* UTF-8, malloc'd */
	unsigned events;
	postern_mbwatch_t *watch;   /* NULL: cannot be watched */
	int pending;                /* set on the loop by the watch */
	int known;                  /* the fields below are set */
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t hms;
};

/* A name of the list as last seen (MailboxName, SubscriptionChange). */
struct nf_name {
	char *name;
	unsigned attrs;
};

struct imap_notify {
	int sel_set;                /* selected or selected-delayed given */
	int sel_delayed;
	unsigned sel_events;
	char *fetch_text;           /* MessageNew's fetch-att, as sent
	                               (malloc'd), or NULL */
	struct nf_filter *filters;
	size_t nfilters;
	unsigned events;            /* of every filter but the selected */
	int status;                 /* NOTIFY SET STATUS */
	struct nf_box **boxes;
	size_t nboxes;
	struct nf_name *names;      /* sorted by name */
	size_t nnames;
	postern_mbwatch_t *list_watch;
	int list_pending, sel_pending;
	postern_timer_t *timer;
	int running;                /* a notify job is out */
};

/* ---- freeing ------------------------------------------------------------*/

static void
box_free(struct nf_box *b)
{
	if (b == NULL)
		return;
	if (b->watch != NULL)
		imap_storage->unwatch_name(b->watch);
	free(b->name);
	free(b);
}

static void
names_free(struct nf_name *n, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(n[i].name);
	free(n);
}

static void
notify_free(struct imap_notify *n)
{
	size_t i, k;

	if (n == NULL)
		return;
	if (n->timer != NULL)
		imap_host->timer_cancel(n->timer);
	if (n->list_watch != NULL)
		imap_storage->unwatch_name(n->list_watch);
	for (i = 0; i < n->nboxes; i++)
		box_free(n->boxes[i]);
	free(n->boxes);
	for (i = 0; i < n->nfilters; i++) {
		for (k = 0; k < n->filters[i].nnames; k++)
			free(n->filters[i].names[k]);
		free(n->filters[i].names);
	}
	free(n->filters);
	names_free(n->names, n->nnames);
	free(n->fetch_text);
	free(n);
}

void
imap_notify_free(struct imap_session *s)
{
	notify_free(s->notify);
	s->notify = NULL;
}

/* ---- matching ------------------------------------------------------------*/

static int
filter_match(const struct nf_filter *f, const char *name, unsigned attrs)
{
	char delim = imap_storage->delimiter;
	size_t i, len;

	switch (f->kind) {
	case NF_INBOXES:
		return strcmp(name, "INBOX") == 0;
	case NF_PERSONAL:
		return 1;
	case NF_SUBSCRIBED:
		return (attrs & POSTERN_MBOX_SUBSCRIBED) != 0;
	case NF_SUBTREE:
		for (i = 0; i < f->nnames; i++) {
			len = strlen(f->names[i]);
			if (strncmp(name, f->names[i], len) == 0 &&
			    (name[len] == '\0' || name[len] == delim))
				return 1;
		}
		return 0;
	case NF_MAILBOXES:
		for (i = 0; i < f->nnames; i++)
			if (strcmp(name, f->names[i]) == 0)
				return 1;
		return 0;
	}
	return 0;
}

/* The events the filters ask for `name` (the first filter that
 * matches it: RFC 5465 6, a mailbox is in one). */
static unsigned
events_of(const struct imap_notify *n, const char *name, unsigned attrs)
{
	size_t i;

	for (i = 0; i < n->nfilters; i++)
		if (filter_match(&n->filters[i], name, attrs))
			return n->filters[i].events;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct nf_name *)a)->name,
	              ((const struct nf_name *)b)->name);
}

static const struct nf_name *
name_find(const struct nf_name *v, size_t n, const char *name)
{
	struct nf_name key = { .name = (char *)name };

	return n == 0 ? NULL : bsearch(&key, v, n, sizeof(*v), name_cmp);
}

/* ---- output ---------------------------------------------------------------*/

static int
is_selected(const struct imap_session *s, const char *name)
{
	return s->mb != NULL && s->mbname != NULL &&
	       strcmp(s->mbname, name) == 0;
}

static void
format_status(struct imap_session *s, struct imap_buf *out,
              const struct nf_box *b, const struct postern_mailbox_status *st)
{
	imap_buf_str(out, "* STATUS ");
	imap_buf_mailbox(out, b->name, IMAP_UTF8_NAMES(s));
	imap_buf_printf(out, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u "
	                "UNSEEN %u", st->messages, st->uidnext,
	                st->uidvalidity, st->unseen);
	/* RFC 5465 5.3: FlagChange of a mailbox not selected is told by
	 * its HIGHESTMODSEQ. */
	if ((b->events & NE_FLAGS) && st->modseq_supported)
		imap_buf_printf(out, " HIGHESTMODSEQ %llu",
		                (unsigned long long)(st->highestmodseq > 0 ?
		                                     st->highestmodseq : 1));
	imap_buf_str(out, ")\r\n");
}

/* What changed since the status last seen is worth telling. */
static int
status_news(const struct nf_box *b, const struct postern_mailbox_status *st)
{
	if (!b->known)
		return 0;
	if (st->uidvalidity != b->uidvalidity)
		return 1;
	if ((b->events & NE_NEW) && st->uidnext != b->uidnext)
		return 1;
	if ((b->events & NE_EXPUNGE) && st->messages != b->messages)
		return 1;
	if ((b->events & NE_FLAGS) &&
	    (st->unseen != b->unseen || st->highestmodseq != b->hms))
		return 1;
	return 0;
}

static void
box_remember(struct nf_box *b, const struct postern_mailbox_status *st)
{
	b->known = 1;
	b->messages = st->messages;
	b->uidnext = st->uidnext;
	b->uidvalidity = st->uidvalidity;
	b->unseen = st->unseen;
	b->hms = st->highestmodseq;
}

static void
format_list(struct imap_session *s, struct imap_buf *out, const char *name,
            unsigned attrs, const char *oldname)
{
	char delim = imap_storage->delimiter;

	imap_buf_str(out, "* LIST ");
	imap_buf_mbox_attrs(out, attrs);
	imap_buf_printf(out, " \"%s%c\" ", delim == '\\' ? "\\" : "", delim);
	imap_buf_mailbox(out, name, IMAP_UTF8_NAMES(s));
	if (oldname != NULL) {
		/* RFC 5258 / RFC 5465 5.4: a rename's old name */
		imap_buf_str(out, " (\"OLDNAME\" (");
		imap_buf_mailbox(out, oldname, IMAP_UTF8_NAMES(s));
		imap_buf_str(out, "))");
	}
	imap_buf_str(out, "\r\n");
}

/* ---- the job ---------------------------------------------------------------*/

struct notify_run {
	struct imap_notify *n;      /* the one being set (SET), or s's */
	int set;                    /* NOTIFY SET: the first round */
	int list;                   /* read the list */
	struct nf_box **pending;    /* boxes to look at */
	size_t npending;
	/* A list read: the new set of boxes and names, swapped in on the
	 * loop; boxes left out are freed there. */
	struct nf_box **boxes;
	size_t nboxes;
	struct nf_name *names;
	size_t nnames;
	int names_read;
	int overflow;
	uint32_t sel_uidmax;        /* the last UID before the sync */
};

static struct nf_box *
box_find(struct nf_box **v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i]->name, name) == 0)
			return v[i];
	return NULL;
}

/* The LIST responses for what changed between the names last seen and
 * now (RFC 5465 5.4, 5.5): a mailbox made, one gone (\NonExistent), a
 * subscription changed; a name gone and one come in the same round
 * are a rename, told with OLDNAME. */
static int
exists(const struct nf_name *e)
{
	return e != NULL && !(e->attrs & POSTERN_MBOX_NONEXISTENT);
}

static void
list_diff(struct imap_session *s, struct imap_notify *n,
          struct imap_buf *out, const struct nf_name *now, size_t nnow)
{
	const struct nf_name *old = n->names, *o, *gone = NULL, *came = NULL;
	size_t i, ngone = 0, ncame = 0;
	int renamed = 0;

	for (i = 0; i < n->nnames; i++)
		if (exists(&old[i]) && !exists(name_find(now, nnow,
		                                         old[i].name))) {
			gone = &old[i];
			ngone++;
		}
	for (i = 0; i < nnow; i++)
		if (exists(&now[i]) && !exists(name_find(old, n->nnames,
		                                         now[i].name))) {
			came = &now[i];
			ncame++;
		}
	if (ngone == 1 && ncame == 1) {
		renamed = 1;
		if ((events_of(n, came->name, came->attrs) |
		     events_of(n, gone->name, gone->attrs)) & NE_NAME)
			format_list(s, out, came->name, came->attrs,
			            gone->name);
	}
	for (i = 0; i < n->nnames && !renamed; i++)
		if (exists(&old[i]) &&
		    !exists(name_find(now, nnow, old[i].name)) &&
		    (events_of(n, old[i].name, old[i].attrs) & NE_NAME))
			format_list(s, out, old[i].name,
			            POSTERN_MBOX_NONEXISTENT, NULL);
	for (i = 0; i < nnow; i++) {
		o = name_find(old, n->nnames, now[i].name);
		if (exists(&now[i]) && !exists(o)) {
			if (!renamed &&
			    (events_of(n, now[i].name, now[i].attrs) &
			     NE_NAME))
				format_list(s, out, now[i].name,
				            now[i].attrs, NULL);
			continue;
		}
		/* a name unsubscribed no longer matches "subscribed" */
		if (o != NULL &&
		    ((o->attrs ^ now[i].attrs) & POSTERN_MBOX_SUBSCRIBED) &&
		    (events_of(n, now[i].name, now[i].attrs |
		               POSTERN_MBOX_SUBSCRIBED) & NE_SUBS))
			format_list(s, out, now[i].name, now[i].attrs, NULL);
	}
}

/* Reads the list: the boxes the filters now name (existing ones kept,
 * new ones made), and the names for the next diff. */
static void
list_read(struct imap_job *j, struct notify_run *r)
{
	struct imap_session *s = j->s;
	struct imap_notify *n = r->n;
	struct postern_mailbox_entry *e;
	struct nf_box *b;
	unsigned ev;
	size_t i, cnt, max = (size_t)imap_cfg.notify_max_mailboxes;

	if (imap_storage->list(s->store, j->pool, &e, &cnt, &j->err) < 0) {
		j->rc = -1;
		return;
	}
	r->boxes = calloc(max + 1, sizeof(*r->boxes));
	if (r->boxes == NULL)
		abort();
	for (i = 0; i < cnt && !r->overflow; i++) {
		if (e[i].attrs & (POSTERN_MBOX_NOSELECT |
		                  POSTERN_MBOX_NONEXISTENT))
			continue;
		ev = events_of(n, e[i].name, e[i].attrs) & NE_MESSAGE;
		if (ev == 0)
			continue;
		if (r->nboxes == max) {
			r->overflow = 1;
			break;
		}
		b = box_find(n->boxes, n->nboxes, e[i].name);
		if (b == NULL) {
			if ((b = calloc(1, sizeof(*b))) == NULL ||
			    (b->name = strdup(e[i].name)) == NULL)
				abort();
			b->s = s;
		}
		b->events = ev;
		r->boxes[r->nboxes++] = b;
	}
	if (!(n->events & NE_LIST) || r->overflow)
		return;
	if (cnt > IMAP_NOTIFY_MAX_NAMES) {
		r->overflow = 1;
		return;
	}
	r->names = calloc(cnt + 1, sizeof(*r->names));
	if (r->names == NULL)
		abort();
	for (i = 0; i < cnt; i++) {
		if ((r->names[i].name = strdup(e[i].name)) == NULL)
			abort();
		r->names[i].attrs = e[i].attrs;
	}
	r->nnames = cnt;
	qsort(r->names, cnt, sizeof(*r->names), name_cmp);
	r->names_read = 1;
	if (!r->set)
		list_diff(s, n, &j->out, r->names, r->nnames);
}

/* The status of one box: a STATUS when it brings news (or for NOTIFY
 * SET STATUS), remembered for the next time. */
static void
box_look(struct imap_job *j, struct notify_run *r, struct nf_box *b)
{
	struct postern_mailbox_status st = { .size = sizeof(st) };
	struct postern_storage_err err;

	memset(&err, 0, sizeof(err));
	if (imap_storage->status_by_name(j->s->store, b->name, &st,
	                                 &err) < 0)
		return; /* gone: the list's watch tells */
	if (!is_selected(j->s, b->name) &&
	    ((r->set && r->n->status) || status_news(b, &st)))
		format_status(j->s, &j->out, b, &st);
	box_remember(b, &st);
}

static void
notify_work(struct imap_job *j)
{
	struct notify_run *r = j->arg;
	struct imap_session *s = j->s;
	size_t i;

	j->rc = 0;
	if (r->list) {
		list_read(j, r);
		if (j->rc < 0 || r->overflow)
			return;
	}
	/* Boxes new to the set: their first status, no news yet. */
	for (i = 0; i < r->nboxes; i++)
		if (!r->boxes[i]->known)
			box_look(j, r, r->boxes[i]);
	for (i = 0; i < r->npending; i++)
		box_look(j, r, r->pending[i]);
	if (s->mb != NULL && imap_storage->count(s->mb) > 0)
		r->sel_uidmax = imap_storage->message(
			s->mb, imap_storage->count(s->mb))->uid;
}

static void notify_kick(struct imap_session *s);

/* Swaps in what a list read found: boxes left out unwatched and freed,
 * new ones watched. */
static void
boxes_swap(struct imap_session *s, struct imap_notify *n,
           struct notify_run *r)
{
	size_t i;

	for (i = 0; i < n->nboxes; i++)
		if (box_find(r->boxes, r->nboxes, n->boxes[i]->name) == NULL)
			box_free(n->boxes[i]);
	free(n->boxes);
	n->boxes = r->boxes;
	n->nboxes = r->nboxes;
	r->boxes = NULL;
	r->nboxes = 0;
	for (i = 0; i < n->nboxes; i++)
		if (n->boxes[i]->watch == NULL)
			n->boxes[i]->watch = imap_storage->watch_name(
				s->store, n->boxes[i]->name,
				imap_notify_box_changed, n->boxes[i]);
	if (r->names_read) {
		names_free(n->names, n->nnames);
		n->names = r->names;
		n->nnames = r->nnames;
		r->names = NULL;
		r->nnames = 0;
	}
}

/* Boxes a list read made that were not swapped in. */
static void
run_cleanup_boxes(struct notify_run *r)
{
	size_t i;

	if (r->boxes == NULL)
		return;
	for (i = 0; i < r->nboxes; i++)
		if (box_find(r->n->boxes, r->n->nboxes,
		             r->boxes[i]->name) != r->boxes[i])
			box_free(r->boxes[i]);
	free(r->boxes);
	r->boxes = NULL;
	r->nboxes = 0;
}

static void
run_cleanup(struct imap_job *j)
{
	struct notify_run *r = j->arg;

	run_cleanup_boxes(r);
	names_free(r->names, r->nnames);
	r->names = NULL;
	free(r->pending);
	if (r->set)
		notify_free(r->n);
}

static void
overflow(struct imap_session *s)
{
	imap_log(s, POSTERN_LOG_INFO, "NOTIFY of %s: overflow, "
	         "notifications end", s->user);
	imap_untagged(s, "OK [NOTIFICATIONOVERFLOW] Too many changes to "
	              "follow: NOTIFY SET again");
	imap_notify_free(s);
}

static void
round_done(struct imap_job *j)
{
	struct notify_run *r = j->arg;
	struct imap_session *s = j->s;
	struct imap_notify *n = s->notify;

	if (n == NULL || n != r->n)
		return;
	n->running = 0;
	if (r->list && j->rc == 0 && !r->overflow)
		boxes_swap(s, n, r);
	/* What the list read made and was not swapped in goes now,
	 * while n is there to tell which boxes are its. */
	run_cleanup_boxes(r);
	if (r->overflow) {
		overflow(s);
		return;
	}
	notify_kick(s);
}

/* The end of NOTIFY's FETCH of new messages: its items were in the
 * command pool, which no command uses meanwhile. */
static void
fetch_new_done(struct imap_session *s)
{
	if (!s->in_command)
		imap_host->pool_clear(s->cmd_pool);
}

/* The selected mailbox's part: the sync (RFC 5465 5.2, 5.3: EXPUNGE
 * at once for "selected", held back for "selected-delayed"), then
 * MessageNew's fetch-att, a FETCH of the messages past the last UID
 * before the sync (told after their EXISTS). */
static void
sel_done(struct imap_job *j)
{
	struct notify_run *r = j->arg;
	struct imap_session *s = j->s;
	uint32_t uidmax = r->sel_uidmax, count;
	struct imap_notify *n;

	round_done(j);
	if ((n = s->notify) == NULL || n != r->n || n->fetch_text == NULL ||
	    s->mb == NULL || s->closed)
		return;
	count = imap_storage->count(s->mb);
	if (count == 0 || imap_storage->message(s->mb, count)->uid <= uidmax)
		return;
	if (imap_fetch_untagged(s, n->fetch_text, uidmax,
	                        fetch_new_done) < 0)
		imap_log(s, POSTERN_LOG_WARNING, "NOTIFY: fetch-att %s "
		         "no longer parses", n->fetch_text);
}

static void
round_start(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	struct notify_run *r;
	struct imap_job *j;
	size_t i;

	j = imap_job_new(s, "*", sizeof(*r));
	r = j->arg;
	r->n = n;
	r->list = n->list_pending;
	n->list_pending = 0;
	r->pending = calloc(n->nboxes + 1, sizeof(*r->pending));
	if (r->pending == NULL)
		abort();
	for (i = 0; i < n->nboxes; i++)
		if (n->boxes[i]->pending) {
			n->boxes[i]->pending = 0;
			r->pending[r->npending++] = n->boxes[i];
		}
	j->cleanup = run_cleanup;
	if (n->sel_pending && s->mb != NULL && n->sel_set &&
	    (n->sel_events & NE_MESSAGE)) {
		j->sync = 1;
		j->sync_flags = n->sel_delayed ? POSTERN_SYNC_NO_EXPUNGE : 0;
	}
	n->sel_pending = 0;
	n->running = 1;
	imap_job_run(j, notify_work, j->sync ? sel_done : round_done);
}

/* Between commands, with nothing of the session's in flight. */
static int
session_quiet(struct imap_session *s)
{
	return !s->closed && s->conn != NULL && s->job == NULL &&
	       !s->in_command && s->sasl == NULL && s->spool == NULL &&
	       !imap_reader_busy(&s->reader);
}

static void
drained(struct imap_session *s)
{
	notify_kick(s);
}

static unsigned
timer_fired(void *arg)
{
	struct imap_session *s = arg;
	struct imap_notify *n = s->notify;
	size_t pend;

	if (n == NULL)
		return 0;
	n->timer = NULL;
	if (n->running || !session_quiet(s))
		return 0; /* the command's end kicks again */
	pend = imap_host->conn_output_pending(s->conn);
	if (pend > IMAP_NOTIFY_OUT_MAX) {
		overflow(s);
		return 0;
	}
	if (pend > IMAP_NOTIFY_OUT_WAIT) {
		if (s->on_drain == NULL)
			s->on_drain = drained;
		return 0;
	}
	round_start(s);
	return 0;
}

static int
anything_pending(const struct imap_notify *n)
{
	size_t i;

	if (n->list_pending || n->sel_pending)
		return 1;
	for (i = 0; i < n->nboxes; i++)
		if (n->boxes[i]->pending)
			return 1;
	return 0;
}

static void
notify_kick(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	if (n == NULL || n->timer != NULL || n->running || s->closed ||
	    !anything_pending(n))
		return;
	n->timer = imap_host->timer_add(IMAP_NOTIFY_DELAY_MS, timer_fired, s);
}

void
imap_notify_kick(struct imap_session *s)
{
	/* A mailbox selected since NOTIFY SET is watched from now on. */
	if (imap_notify_wants_selected(s) && s->mb != NULL &&
	    s->watched == 0 && s->job == NULL && !s->closed)
		imap_watch_selected(s);
	notify_kick(s);
}

void
imap_notify_box_changed(void *arg)
{
	struct nf_box *b = arg;

	b->pending = 1;
	notify_kick(b->s);
}

static void
list_changed(void *arg)
{
	struct imap_session *s = arg;

	if (s->notify == NULL)
		return;
	s->notify->list_pending = 1;
	notify_kick(s);
}

int
imap_notify_selected_changed(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	if (n == NULL || !n->sel_set || !(n->sel_events & NE_MESSAGE))
		return 0;
	n->sel_pending = 1;
	notify_kick(s);
	return 1;
}

int
imap_notify_wants_selected(const struct imap_session *s)
{
	const struct imap_notify *n = s->notify;

	return n != NULL && n->sel_set && (n->sel_events & NE_MESSAGE);
}

/* ---- NOTIFY ---------------------------------------------------------------*/

static int
parse_events(struct imap_cmd *c, struct imap_notify *n, unsigned *ev,
             int selected)
{
	struct imap_args *a = &c->args;
	struct imap_str w;
	size_t i;

	*ev = 0;
	if (imap_arg_peek(a) != '(') {
		if (imap_arg_atom(a, &w) < 0 || !imap_str_is(&w, "NONE")) {
			a->error = "events must be a list or NONE";
			return -1;
		}
		return 0;
	}
	a->p++;
	do {
		if (imap_arg_atom(a, &w) < 0)
			return -1;
		for (i = 0; i < 8; i++)
			if (imap_str_is(&w, event_names[i]))
				break;
		if (i == 8) {
			a->error = "unknown event";
			return -1;
		}
		*ev |= 1u << i;
		if (i == 0 && imap_arg_peek(a) == ' ' &&
		    a->p + 1 < a->end && a->p[1] == '(') {
			/* MessageNew's fetch-att: the selected mailbox's,
			 * checked as FETCH parses them, kept as sent */
			char *from;

			a->p++;
			from = a->p;
			if (!selected) {
				a->error = "fetch attributes are for the "
				           "selected mailbox only";
				return -1;
			}
			if (n->fetch_text != NULL) {
				a->error = "fetch attributes given twice";
				return -1;
			}
			if (imap_fetch_check_items(c) < 0)
				return -1;
			n->fetch_text = strndup(from, (size_t)(a->p - from));
			if (n->fetch_text == NULL)
				abort();
		}
	} while (imap_arg_try_char(a, ' '));
	if (imap_arg_char(a, ')') < 0)
		return -1;
	/* RFC 5465 5.2, 5.3, 5.4: MessageNew and MessageExpunge go
	 * together, FlagChange needs them, for the selected mailbox
	 * (numbers would drift otherwise). */
	if (selected && (*ev & (NE_NEW | NE_EXPUNGE)) &&
	    (*ev & (NE_NEW | NE_EXPUNGE)) != (NE_NEW | NE_EXPUNGE)) {
		a->error = "MessageNew and MessageExpunge go together";
		return -1;
	}
	if (selected && (*ev & (NE_FLAGS | NE_ANNOTATION)) &&
	    !(*ev & NE_NEW)) {
		a->error = "FlagChange needs MessageNew and MessageExpunge";
		return -1;
	}
	return 0;
}

static int
parse_names(struct imap_cmd *c, struct nf_filter *f)
{
	struct imap_args *a = &c->args;
	struct imap_str w;
	int list = imap_arg_try_char(a, '(');
	char *name;

	do {
		if (imap_arg_astring(a, &w) < 0)
			return -1;
		if ((name = imap_mailbox_arg(c, &w)) == NULL)
			return -2; /* answered */
		if (f->nnames >= 1000) {
			a->error = "too many mailbox names";
			return -1;
		}
		f->names = realloc(f->names, (f->nnames + 1) *
		                                sizeof(*f->names));
		if (f->names == NULL || (name = strdup(name)) == NULL)
			abort();
		f->names[f->nnames++] = name;
	} while (list && imap_arg_try_char(a, ' '));
	if (list && imap_arg_char(a, ')') < 0)
		return -1;
	return 0;
}

/* One event group: "(" filter-mailboxes SP events ")". */
static int
parse_group(struct imap_cmd *c, struct imap_notify *n, unsigned *all)
{
	struct imap_args *a = &c->args;
	struct nf_filter f = { 0 };
	struct imap_str w;
	unsigned ev;
	int rc = -1;

	if (imap_arg_char(a, '(') < 0 || imap_arg_atom(a, &w) < 0 ||
	    imap_arg_sp(a) < 0)
		return -1;
	if (imap_str_is(&w, "selected") || imap_str_is(&w, "selected-delayed")) {
		if (n->sel_set) {
			a->error = "selected given twice";
			return -1;
		}
		n->sel_set = 1;
		n->sel_delayed = imap_str_is(&w, "selected-delayed");
		if (parse_events(c, n, &n->sel_events, 1) < 0)
			return -1;
		*all |= n->sel_events;
		return imap_arg_char(a, ')');
	}
	if (imap_str_is(&w, "inboxes"))
		f.kind = NF_INBOXES;
	else if (imap_str_is(&w, "personal"))
		f.kind = NF_PERSONAL;
	else if (imap_str_is(&w, "subscribed"))
		f.kind = NF_SUBSCRIBED;
	else if (imap_str_is(&w, "subtree"))
		f.kind = NF_SUBTREE;
	else if (imap_str_is(&w, "mailboxes"))
		f.kind = NF_MAILBOXES;
	else {
		a->error = "unknown mailbox filter";
		return -1;
	}
	if (f.kind == NF_SUBTREE || f.kind == NF_MAILBOXES) {
		if ((rc = parse_names(c, &f)) < 0 || imap_arg_sp(a) < 0)
			goto fail;
	}
	if (parse_events(c, n, &ev, 0) < 0 || imap_arg_char(a, ')') < 0)
		goto fail;
	f.events = ev;
	*all |= ev;
	n->events |= ev;
	n->filters = realloc(n->filters, (n->nfilters + 1) *
	                                    sizeof(*n->filters));
	if (n->filters == NULL)
		abort();
	n->filters[n->nfilters++] = f;
	return 0;
fail:
	while (f.nnames > 0)
		free(f.names[--f.nnames]);
	free(f.names);
	return rc == -2 ? -2 : -1;
}

static void
set_done(struct imap_job *j)
{
	struct notify_run *r = j->arg;
	struct imap_session *s = j->s;
	struct imap_notify *n = r->n;

	if (j->rc < 0) {
		imap_reply_storage_err(s, j->tag, &j->err);
		return;
	}
	if (r->overflow) {
		imap_reply(s, j->tag, "NO", "[NOTIFICATIONOVERFLOW] More "
		           "than %lld mailboxes to watch",
		           imap_cfg.notify_max_mailboxes);
		return;
	}
	imap_notify_free(s);
	r->set = 0;                 /* the session's now */
	s->notify = n;
	boxes_swap(s, n, r);
	if (n->nfilters > 0)
		n->list_watch = imap_storage->watch_name(s->store, NULL,
		                                         list_changed, s);
	if (n->sel_set && (n->sel_events & NE_MESSAGE))
		imap_watch_selected(s);
	imap_reply(s, j->tag, "OK", "NOTIFY completed");
}

void
imap_cmd_notify(struct imap_cmd *c)
{
	struct imap_args *a = &c->args;
	struct imap_session *s = c->s;
	struct imap_notify *n;
	struct notify_run *r;
	struct imap_job *j;
	struct imap_str w;
	unsigned all = 0;
	char bad[160];
	size_t i;
	int rc = 0;

	if (imap_arg_sp(a) < 0 || imap_arg_atom(a, &w) < 0) {
		imap_reply(s, c->tag, "BAD", "NOTIFY needs SET or NONE");
		return;
	}
	if (imap_str_is(&w, "NONE")) {
		if (imap_arg_end(a) < 0) {
			imap_reply(s, c->tag, "BAD", "NOTIFY NONE takes nothing "
			           "more");
			return;
		}
		imap_notify_free(s);
		imap_reply(s, c->tag, "OK", "NOTIFY completed");
		return;
	}
	if (!imap_str_is(&w, "SET") || imap_arg_sp(a) < 0) {
		imap_reply(s, c->tag, "BAD", "NOTIFY needs SET or NONE");
		return;
	}
	if (!IMAP_STORAGE_HAS(watch_name)) {
		imap_reply(s, c->tag, "NO", "[CANNOT] The store cannot "
		           "watch mailboxes");
		return;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		abort();
	if (imap_arg_peek(a) != '(') {
		if (imap_arg_atom(a, &w) < 0 || !imap_str_is(&w, "STATUS") ||
		    imap_arg_sp(a) < 0)
			rc = -1;
		n->status = 1;
	}
	while (rc == 0) {
		if ((rc = parse_group(c, n, &all)) < 0 || imap_arg_at_end(a))
			break;
		if (imap_arg_sp(a) < 0)
			rc = -1;
	}
	if (rc == 0 && imap_arg_end(a) < 0)
		rc = -1;
	if (rc < 0) {
		if (rc == -1)
			imap_reply(s, c->tag, "BAD", "NOTIFY: %s",
			           a->error != NULL ? a->error
			                            : "invalid arguments");
		notify_free(n);
		return;
	}
	if (all & NE_UNSUPPORTED) {
		/* RFC 5465 5.9: the events we do not support, named */
		snprintf(bad, sizeof(bad), "NO [BADEVENT (MessageNew "
		         "MessageExpunge FlagChange MailboxName "
		         "SubscriptionChange)] Not supported:");
		for (i = 0; i < 8; i++)
			if (all & NE_UNSUPPORTED & (1u << i)) {
				strncat(bad, " ", sizeof(bad) - strlen(bad) - 1);
				strncat(bad, event_names[i],
				        sizeof(bad) - strlen(bad) - 1);
			}
		imap_reply(s, c->tag, bad, "%s", "");
		notify_free(n);
		return;
	}
	j = imap_job_new(s, c->tag, sizeof(*r));
	r = j->arg;
	r->n = n;
	r->set = 1;
	r->list = n->nfilters > 0;
	j->cleanup = run_cleanup;
	imap_job_run(j, notify_work, set_done);
}
