/*
 * maildir_watch.c - change notification for every view of a process from
 * one inotify instance.
 *
 * The kernel allows a user few inotify instances (128 by default) and many
 * watches (max_user_watches); Dovecot spends one instance per imap
 * process, and a view per instance would cap a worker at 128 idling
 * clients.  So a process has one instance, made when the first view asks
 * to be watched and closed when the last one stops; each watched mailbox
 * directory has three watches (new/, cur/, and the directory itself for
 * the index's rename) shared by all of its views.  A delivery by this
 * worker or by anyone else renames into new/ and so reaches the idlers of
 * the mailbox through the same instance at once: nothing polls while
 * inotify works.
 *
 * Watches by name (storage 1.6, IMAP NOTIFY) join the same directories
 * without a view: a mailbox's three watches, or, for the list of
 * mailboxes, one watch on the Maildir's root for folders made, removed
 * or renamed and the subscriptions file replaced.  The root is also
 * INBOX's directory, so every watch is added with IN_MASK_ADD: the
 * kernel gives both the same descriptor, and neither may narrow the
 * other's mask (INBOX's views then wake on folder changes too, which a
 * watch may do).
 *
 * When the instance cannot be made or the watch limit is reached, md_watch
 * fails; the caller then polls (IMAP's idle_poll_interval).  Either is
 * logged once per process, naming the limit to raise.
 *
 * Everything here runs on the event loop of the process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "maildir.h"

#define WD_BUCKETS 4096     /* power of two */
#define DIR_BUCKETS 4096

/* A watch by name (storage 1.6). */
struct postern_mbwatch {
	struct md_wdir *d;            /* NULL once removed */
	void (*changed)(void *arg);
	void *arg;
	struct postern_mbwatch *dead_next; /* removed while dispatching */
};

/* One watched mailbox directory (or a store's list) and the views and
 * watches by name on it. */
struct md_wdir {
	char *dir;
	int list;                     /* the root's folders, not a mailbox */
	int wd[3];                    /* new/, cur/, the directory */
	postern_mailbox_t **views;
	size_t nviews, capviews;
	struct postern_mbwatch **named;
	size_t nnamed, capnamed;
	int fired;
	struct md_wdir *fired_next;
	struct md_wdir *dead_next;    /* left while dispatching */
	struct md_wdir *dir_next;     /* by-path chain */
};

/* A watch descriptor's directory; one inode reached by two paths (a
 * symlink) gives two entries the same descriptor, hence a chain. */
struct md_wnode {
	int wd;
	struct md_wdir *d;
	struct md_wnode *next;
};

static struct {
	int fd;
	postern_watch_t *w;
	size_t ndirs;
	struct md_wdir *by_dir[DIR_BUCKETS];
	struct md_wnode *by_wd[WD_BUCKETS];
	struct md_wdir *fired;
	int dispatching;              /* inside the views' callbacks */
	struct md_wdir *dead;         /* left while dispatching */
	struct postern_mbwatch *dead_named; /* removed while dispatching */
	int init_logged, limit_logged;
} W = { .fd = -1 };

static unsigned
dir_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (DIR_BUCKETS - 1);
}

static struct md_wdir *
dir_find(const char *dir, int list)
{
	struct md_wdir *d;

	for (d = W.by_dir[dir_hash(dir)]; d != NULL; d = d->dir_next)
		if (d->list == list && strcmp(d->dir, dir) == 0)
			return d;
	return NULL;
}

static void
wd_link(int wd, struct md_wdir *d)
{
	struct md_wnode *n = malloc(sizeof(*n));

	if (n == NULL)
		abort(); /* as every allocation in posternd */
	n->wd = wd;
	n->d = d;
	n->next = W.by_wd[(unsigned)wd & (WD_BUCKETS - 1)];
	W.by_wd[(unsigned)wd & (WD_BUCKETS - 1)] = n;
}

/* Unlinks d's node for `wd`; 1 when another directory still uses it. */
static int
wd_unlink(int wd, const struct md_wdir *d)
{
	struct md_wnode **p = &W.by_wd[(unsigned)wd & (WD_BUCKETS - 1)], *n;
	int shared = 0;

	while ((n = *p) != NULL) {
		if (n->wd == wd && n->d == d) {
			*p = n->next;
			free(n);
			continue;
		}
		shared |= n->wd == wd;
		p = &n->next;
	}
	return shared;
}

/* ---- events ------------------------------------------------------------ */

static void
mark_fired(struct md_wdir *d)
{
	if (d->fired)
		return;
	d->fired = 1;
	d->fired_next = W.fired;
	W.fired = d;
}

static void
event(const struct inotify_event *e)
{
	struct md_wnode *n, *next;
	size_t i;

	if (e->mask & IN_Q_OVERFLOW) {
		/* Events were lost: every view looks again. */
		for (i = 0; i < DIR_BUCKETS; i++)
			for (struct md_wdir *d = W.by_dir[i]; d != NULL;
			     d = d->dir_next)
				mark_fired(d);
		return;
	}
	for (n = W.by_wd[(unsigned)e->wd & (WD_BUCKETS - 1)]; n != NULL;
	     n = next) {
		next = n->next;
		if (n->wd != e->wd)
			continue;
		mark_fired(n->d);
		/* The kernel dropped the watch (the directory went): its
		 * views sync, find the mailbox gone, and stop watching. */
		if (e->mask & IN_IGNORED)
			for (i = 0; i < 3; i++)
				if (n->d->wd[i] == e->wd)
					n->d->wd[i] = -1;
	}
	if (e->mask & IN_IGNORED) {
		struct md_wnode **p = &W.by_wd[(unsigned)e->wd &
		                               (WD_BUCKETS - 1)];

		while ((n = *p) != NULL) {
			if (n->wd == e->wd) {
				*p = n->next;
				free(n);
			} else {
				p = &n->next;
			}
		}
	}
}

static void dir_free(struct md_wdir *d);

/* Tells each view of each directory that changed, once per read. */
static void
dispatch(void)
{
	postern_mailbox_t **snap = NULL;
	struct postern_mbwatch **nsnap = NULL, *w;
	struct md_wdir *d;
	size_t i, n, cap = 0, ncap = 0;

	W.dispatching = 1;
	while ((d = W.fired) != NULL) {
		W.fired = d->fired_next;
		d->fired = 0;
		/* A callback may stop watching (this view or another): call
		 * those still watching this directory when their turn
		 * comes. */
		n = d->nviews;
		if (n > cap) {
			free(snap);
			if ((snap = malloc(n * sizeof(*snap))) == NULL)
				abort();
			cap = n;
		}
		if (n > 0) /* a directory watched by name only has none */
			memcpy(snap, d->views, n * sizeof(*snap));
		for (i = 0; i < n; i++)
			__atomic_store_n(&snap[i]->stale, 1, __ATOMIC_SEQ_CST);
		for (i = 0; i < n; i++)
			if (snap[i]->wdir == d && snap[i]->changed != NULL)
				snap[i]->changed(snap[i]->changed_arg);
		/* Watches by name removed meanwhile are freed only after
		 * the dispatch: their d is NULL then. */
		n = d->nnamed;
		if (n > ncap) {
			free(nsnap);
			if ((nsnap = malloc(n * sizeof(*nsnap))) == NULL)
				abort();
			ncap = n;
		}
		if (n > 0)
			memcpy(nsnap, d->named, n * sizeof(*nsnap));
		for (i = 0; i < n; i++)
			if (nsnap[i]->d == d)
				nsnap[i]->changed(nsnap[i]->arg);
	}
	free(snap);
	free(nsnap);
	W.dispatching = 0;
	while ((d = W.dead) != NULL) {
		W.dead = d->dead_next;
		dir_free(d);
	}
	while ((w = W.dead_named) != NULL) {
		W.dead_named = w->dead_next;
		free(w);
	}
}

/* Reads what the kernel queued and tells the views. */
static void
drain(int fd)
{
	char buf[16384] __attribute__((aligned(__alignof__(
	    struct inotify_event))));
	const struct inotify_event *e;
	ssize_t len;
	char *p;

	while ((len = read(fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + len; p += sizeof(*e) + e->len) {
			e = (const struct inotify_event *)(void *)p;
			event(e);
		}
	}
	dispatch();
}

static void
watcher_readable(postern_watch_t *w, int fd, unsigned events, void *arg)
{
	(void)w;
	(void)events;
	(void)arg;
	drain(fd);
}

/* ---- the instance ------------------------------------------------------ */

static int
watcher_open(void)
{
	if (W.fd >= 0)
		return 0;
	if ((W.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		if (!W.init_logged)
			md_log(POSTERN_LOG_WARNING, "cannot watch mailboxes: "
			       "inotify_init1: %s (out of inotify instances? "
			       "raise fs.inotify.max_user_instances): "
			       "sessions poll for changes instead",
			       strerror(errno));
		W.init_logged = 1;
		return -1;
	}
	W.w = md_host->watch_add(W.fd, POSTERN_WATCH_READ, watcher_readable,
	                         NULL);
	if (W.w == NULL) {
		close(W.fd);
		W.fd = -1;
		return -1;
	}
	return 0;
}

static void
watcher_close(void)
{
	if (W.fd < 0 || W.ndirs > 0 || W.dispatching)
		return;
	md_host->watch_remove(W.w);
	close(W.fd);
	W.w = NULL;
	W.fd = -1;
}

/* ---- directories ------------------------------------------------------- */

static void
dir_free(struct md_wdir *d)
{
	int i;

	for (i = 0; i < 3; i++)
		if (d->wd[i] >= 0 && !wd_unlink(d->wd[i], d) && W.fd >= 0)
			inotify_rm_watch(W.fd, d->wd[i]);
	free(d->views);
	free(d->named);
	free(d->dir);
	free(d);
	watcher_close();
}

static void
dir_unlink(struct md_wdir *d)
{
	struct md_wdir **p = &W.by_dir[dir_hash(d->dir)];

	while (*p != d)
		p = &(*p)->dir_next;
	*p = d->dir_next;
	W.ndirs--;
}

/* Watches new/, cur/ and the directory; NULL (logged once) when the
 * kernel refuses. */
static struct md_wdir *
dir_add(const char *dir, int list)
{
	static const uint32_t ev = IN_CREATE | IN_DELETE | IN_MOVED_FROM |
	                           IN_MOVED_TO | IN_ATTRIB;
	/* Folders made, removed, renamed; subscriptions replaced. */
	static const uint32_t list_ev = IN_CREATE | IN_DELETE |
	                                IN_MOVED_FROM | IN_MOVED_TO;
	static const char *const sub[3] = { "/new", "/cur", "" };
	char path[4200];
	struct md_wdir *d;
	unsigned h;
	int i;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->dir = strdup(dir)) == NULL)
		abort();
	d->list = list;
	d->wd[0] = d->wd[1] = d->wd[2] = -1;
	for (i = list ? 2 : 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		/* The index is replaced by rename: moves into the
		 * directory.  Its change log is not watched: what it
		 * records that other views show comes with a rename or
		 * unlink in new/ or cur/. */
		d->wd[i] = inotify_add_watch(W.fd, path, IN_MASK_ADD |
		                             (list ? list_ev :
		                              i < 2 ? ev : IN_MOVED_TO));
		if (d->wd[i] < 0)
			goto fail;
		wd_link(d->wd[i], d);
	}
	h = dir_hash(dir);
	d->dir_next = W.by_dir[h];
	W.by_dir[h] = d;
	W.ndirs++;
	return d;
fail:
	if (errno == ENOSPC && !W.limit_logged) {
		md_log(POSTERN_LOG_WARNING, "inotify watch limit reached "
		       "(%zu mailboxes watched by this process; raise "
		       "fs.inotify.max_user_watches): sessions on more "
		       "mailboxes poll for changes instead", W.ndirs);
		W.limit_logged = 1;
	} else if (errno != ENOSPC && errno != ENOENT) {
		md_log(POSTERN_LOG_ERROR, "inotify_add_watch %s: %s", path,
		       strerror(errno));
	}
	d->wd[i] = -1;
	dir_free(d);
	return NULL;
}

/* ---- views --------------------------------------------------------------- */

static void dir_release(struct md_wdir *d);

static void
view_leave(postern_mailbox_t *mb)
{
	struct md_wdir *d = mb->wdir;
	size_t i;

	mb->wdir = NULL;
	for (i = 0; i < d->nviews; i++)
		if (d->views[i] == mb)
			break;
	if (i < d->nviews)
		d->views[i] = d->views[--d->nviews];
	dir_release(d);
}

/* A directory no view or watch by name uses any more goes. */
static void
dir_release(struct md_wdir *d)
{
	if (d->nviews > 0 || d->nnamed > 0)
		return;
	dir_unlink(d);
	if (W.dispatching) {
		d->dead_next = W.dead;
		W.dead = d;
		return;
	}
	dir_free(d);
}

static int
view_join(postern_mailbox_t *mb)
{
	struct md_wdir *d;
	size_t cap;

	if (watcher_open() < 0)
		return -1;
	if ((d = dir_find(mb->dir, 0)) == NULL &&
	    (d = dir_add(mb->dir, 0)) == NULL)
		return -1;
	if (d->nviews == d->capviews) {
		cap = d->capviews > 0 ? d->capviews * 2 : 2;
		d->views = realloc(d->views, cap * sizeof(*d->views));
		if (d->views == NULL)
			abort();
		d->capviews = cap;
	}
	d->views[d->nviews++] = mb;
	mb->wdir = d;
	/* What changed before the watch began is not known. */
	__atomic_store_n(&mb->stale, 1, __ATOMIC_SEQ_CST);
	return 0;
}

int
md_watch(postern_mailbox_t *mb, void (*changed)(void *arg), void *arg)
{
	mb->changed = changed;
	mb->changed_arg = arg;
	if (changed == NULL) {
		if (mb->wdir != NULL)
			view_leave(mb);
		return 0;
	}
	if (mb->wdir != NULL)
		return 0;
	return view_join(mb);
}

size_t
md_watch_dirs(void)
{
	return W.ndirs;
}

/* The kernel queues an event before the change's system call returns,
 * so reading the queue now sees every change completed before this
 * call, whoever made it; the loop may not have got to it yet. */
int
md_sync_needed(postern_mailbox_t *mb)
{
	if (mb->wdir == NULL || W.fd < 0 || W.dispatching)
		return 1;
	drain(W.fd);
	if (mb->wdir == NULL || mb->held)
		return 1;
	return __atomic_load_n(&mb->stale, __ATOMIC_SEQ_CST);
}

/* ---- watches by name (storage 1.6) -------------------------------------- */

postern_mbwatch_t *
md_watch_name(postern_store_t *st, const char *name,
              void (*changed)(void *arg), void *arg)
{
	struct postern_storage_err err;
	struct postern_mbwatch *w;
	struct md_wdir *d;
	char *dir;
	int list = name == NULL;

	if (changed == NULL || watcher_open() < 0)
		return NULL;
	if (list)
		dir = strdup(st->root);
	else
		dir = md_box_dir(st->root, name, &err);
	if (dir == NULL)
		return NULL;
	/* A mailbox that does not exist has no new/ to watch: dir_add
	 * fails (ENOENT, not logged as an error below). */
	d = dir_find(dir, list);
	if (d == NULL)
		d = dir_add(dir, list);
	free(dir);
	if (d == NULL) {
		watcher_close();
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		abort();
	w->d = d;
	w->changed = changed;
	w->arg = arg;
	if (d->nnamed == d->capnamed) {
		size_t cap = d->capnamed > 0 ? d->capnamed * 2 : 2;

		d->named = realloc(d->named, cap * sizeof(*d->named));
		if (d->named == NULL)
			abort();
		d->capnamed = cap;
	}
	d->named[d->nnamed++] = w;
	return w;
}

void
md_unwatch_name(postern_mbwatch_t *w)
{
	struct md_wdir *d;
	size_t i;

	if (w == NULL || (d = w->d) == NULL)
		return;
	w->d = NULL;
	for (i = 0; i < d->nnamed; i++)
		if (d->named[i] == w)
			break;
	if (i < d->nnamed)
		d->named[i] = d->named[--d->nnamed];
	dir_release(d);
	if (W.dispatching) {
		w->dead_next = W.dead_named;
		W.dead_named = w;
		return;
	}
	free(w);
}
