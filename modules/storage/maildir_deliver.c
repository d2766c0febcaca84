/*
 * maildir_deliver.c - putting messages in: append (cur/, with flags) and
 * delivery (new/), by the maildir rules.
 *
 * The message is written to tmp/ under a unique name and fsynced, with
 * no lock held (a large message never blocks the mailbox); then, under
 * the mailbox lock, it is renamed into new/ or cur/ with ",S=<size>,
 * W=<CRLF size>" in its name (as Dovecot does, so sizes need no stat),
 * the directory is fsynced, and it gets the next UID (uid list appended
 * and fsynced).  Only then does the caller hear "done".  Concurrent saves
 * into one mailbox share that locked part (group commit, below).
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

static unsigned md_counter;

static void
host_part(char *out, size_t len)
{
	char h[256];
	size_t i, n = 0;

	if (gethostname(h, sizeof(h)) < 0)
		strcpy(h, "localhost");
	h[sizeof(h) - 1] = '\0';
	/* The maildir spec's escapes for '/' and ':'. */
	for (i = 0; h[i] != '\0' && n + 5 < len; i++) {
		if (h[i] == '/' || h[i] == ':' || h[i] == ',') {
			n += snprintf(out + n, len - n, "\\%03o",
			              (unsigned char)h[i]);
		} else
			out[n++] = h[i];
	}
	out[n] = '\0';
}

char *
md_unique_base(void)
{
	struct timespec ts;
	uint64_t rnd = 0;
	char host[300], *out;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	host_part(host, sizeof(host));
	if (asprintf(&out, "%lld.M%ldP%ldQ%uR%016llx.%s", (long long)ts.tv_sec,
	             ts.tv_nsec / 1000, (long)getpid(),
	             __atomic_add_fetch(&md_counter, 1, __ATOMIC_RELAXED),
	             (unsigned long long)rnd, host) < 0)
		return NULL;
	return out;
}

int
md_fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		md_log(POSTERN_LOG_ERROR, "open %s: %s", dir, strerror(errno));
		return -1;
	}
	if ((rc = fsync(fd)) < 0)
		md_log(POSTERN_LOG_ERROR, "fsync %s: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

/* What writing learns about the message. */
struct wstat {
	uint64_t raw, crlf, hdr;
	int prev_cr, nl_run, in_hdr;
};

static void
wstat_feed(struct wstat *w, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		w->raw++;
		w->crlf += p[i] == '\n' && !w->prev_cr ? 2 : 1;
		if (w->in_hdr) {
			if (p[i] == '\n') {
				if (++w->nl_run == 2) {
					w->in_hdr = 0;
					w->hdr = w->crlf;
				}
			} else if (p[i] != '\r')
				w->nl_run = 0;
		}
		w->prev_cr = p[i] == '\r';
	}
}

static int
write_body(int out, const struct postern_append *msg, struct wstat *w)
{
	unsigned char buf[65536];
	const unsigned char *p;
	uint64_t off = 0, start = 0;
	ssize_t r, n;

	if (POSTERN_SIZED_HAS(msg, offset)) {
		start = msg->offset;
		if (msg->head_len > 0) {
			wstat_feed(w, msg->head, msg->head_len);
			if (write(out, msg->head, msg->head_len) !=
			    (ssize_t)msg->head_len)
				return -1;
		}
	}
	while (off < msg->length) {
		n = (ssize_t)(msg->length - off);
		if (msg->length - off > sizeof(buf))
			n = (ssize_t)sizeof(buf);
		if (msg->fd >= 0) {
			if ((r = pread(msg->fd, buf, n,
			                (off_t)(start + off))) <= 0)
				return -1;
			p = buf;
			n = r;
		} else
			p = (const unsigned char *)msg->data + start + off;
		wstat_feed(w, p, n);
		if (write(out, p, n) != n)
			return -1;
		off += (uint64_t)n;
	}
	if (w->in_hdr)
		w->hdr = w->crlf; /* no body: all header */
	return 0;
}

/* Writes tmp/<base>; returns base with ",S=..,W=.." and sets *hdr. */
static char *
write_tmp(const char *dir, const struct postern_append *msg, char **tmp,
          uint64_t *hdr)
{
	struct wstat w = { .in_hdr = 1, .nl_run = 1 };
	struct timespec ts[2];
	char *base, *sized = NULL;
	int fd;

	*tmp = NULL;
	if ((base = md_unique_base()) == NULL ||
	    asprintf(tmp, "%s/tmp/%s", dir, base) < 0) {
		free(base);
		*tmp = NULL;
		return NULL;
	}
	fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write_body(fd, msg, &w) < 0 || fsync(fd) < 0) {
		md_log(POSTERN_LOG_ERROR, "write %s: %s", *tmp,
		       strerror(errno));
		goto fail;
	}
	if (msg->internal_date != 0) {
		ts[0].tv_sec = ts[1].tv_sec = msg->internal_date;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		if (futimens(fd, ts) < 0)
			md_log(POSTERN_LOG_WARNING, "futimens %s: %s", *tmp,
			       strerror(errno));
	}
	if (asprintf(&sized, "%s,S=%llu,W=%llu", base,
	             (unsigned long long)w.raw,
	             (unsigned long long)w.crlf) < 0)
		sized = NULL;
	*hdr = w.hdr;
fail:
	if (fd >= 0)
		close(fd);
	if (sized == NULL) {
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
	}
	free(base);
	return sized;
}

/* Letters for the keywords, created in the mailbox as needed. */
static int
keyword_bits(const char *dir, struct md_state *s, const char *const *kws,
             uint32_t n, uint32_t *bits)
{
	uint32_t i, before = s->nkw;
	int idx;

	*bits = 0;
	for (i = 0; i < n; i++) {
		if ((idx = md_keyword_index(s, kws[i], 1)) < 0)
			return -1;
		*bits |= 1u << idx;
	}
	if (s->nkw != before && md_keywords_write(dir, s) < 0)
		return -1;
	return 0;
}

struct save {
	postern_store_t *st;
	const char *dir;
	const struct postern_append *msg;
	int to_new;
	char *tmp, *sized;
	uint64_t hdr;
	/* The commit's outcome, set by whichever thread commits it. */
	struct save *next;
	int done, rc;
	int renamed_into;          /* 0 none, 'n' new/, 'c' cur/ */
	char *path;                /* where it was renamed to (malloc'd) */
	uint32_t uid, uidvalidity;
	uint64_t rawsize;          /* on disk, for the quota */
	struct postern_storage_err err;
};

/* Under the lock: rename one message into place and give it a UID.  The
 * directory fsync and the uid list come after, once for the batch. */
static int
save_locked(struct save *sv, struct md_state *s)
{
	const struct postern_append *msg = sv->msg;
	char *final, path[8192], sub[4200];
	uint32_t kw = 0, flags = msg->flags & 0x1fu;
	struct md_rec *r;

	if (s->nextuid == UINT32_MAX) {
		/* the UID after it would be 0: RFC 3501 wants a new
		 * UIDVALIDITY, which an administrator's rebuild gives */
		md_log(POSTERN_LOG_ERROR, "%s: no UID left to give", sv->dir);
		md_err(&sv->err, POSTERN_SE_LIMIT, "the mailbox has used up "
		       "its UIDs");
		return -1;
	}
	if (keyword_bits(sv->dir, s, msg->keywords, msg->nkeywords, &kw) < 0) {
		md_err(&sv->err, s->nkw >= MD_MAX_KEYWORDS ? POSTERN_SE_LIMIT
		                                           : POSTERN_SE_TEMP,
		       "cannot update the mailbox");
		return -1;
	}
	final = sv->to_new && flags == 0 && kw == 0
	                ? strdup(sv->sized)
	                : md_name_make(sv->sized, flags, kw);
	if (final == NULL) {
		md_err(&sv->err, POSTERN_SE_TEMP, "out of memory");
		return -1;
	}
	sv->renamed_into = strchr(final, ':') == NULL ? 'n' : 'c';
	snprintf(sub, sizeof(sub), "%s/%s", sv->dir,
	         sv->renamed_into == 'n' ? "new" : "cur");
	snprintf(path, sizeof(path), "%s/%s", sub, final);
	if (rename(sv->tmp, path) < 0) {
		md_log(POSTERN_LOG_ERROR, "rename %s to %s: %s", sv->tmp, path,
		       strerror(errno));
		md_err(&sv->err, POSTERN_SE_TEMP, "cannot store the message");
		sv->renamed_into = 0;
		free(final);
		return -1;
	}
	sv->path = strdup(path);
	if ((r = md_state_add(s, final)) == NULL) {
		/* Safe in the maildir; the next scan numbers it. */
		free(final);
		md_err(&sv->err, POSTERN_SE_TEMP, "out of memory");
		return -1;
	}
	r->uid = sv->uid = s->nextuid++;
	r->flags = flags | (sv->renamed_into == 'n' ? MD_REC_NEW : 0);
	r->kw = kw;
	r->modseq = ++s->highestmodseq;
	r->rawsize = msg->length;
	md_file_info(path, final, r);
	sv->rawsize = r->rawsize;
	r->hdr_size = sv->hdr;
	r->tz = msg->internal_tz;
	free(final);
	return 0;
}

/* Fails every message of the batch that has not failed yet. */
static void
batch_fail(struct save *batch, const char *text)
{
	struct save *sv;

	for (sv = batch; sv != NULL; sv = sv->next)
		if (sv->rc == 0) {
			sv->rc = -1;
			md_err(&sv->err, POSTERN_SE_TEMP, "%s", text);
		}
}

/* Whether every save of the batch went through. */
static int
batch_ok(const struct save *batch)
{
	for (; batch != NULL; batch = batch->next)
		if (batch->rc != 0)
			return 0;
	return 1;
}

/* An all-or-nothing batch failed under the lock: the messages renamed
 * into place go again before anyone can number them (readers take the
 * lock), and every save of the batch fails. */
static void
batch_undo(struct save *batch, const char *text)
{
	struct save *sv;

	for (sv = batch; sv != NULL; sv = sv->next)
		if (sv->renamed_into != 0) {
			if (unlink(sv->path) < 0 && errno != ENOENT)
				md_log(POSTERN_LOG_ERROR, "unlink %s: %s",
				       sv->path, strerror(errno));
			sv->renamed_into = 0;
		}
	batch_fail(batch, text);
}

/* The UIDs the batch needs are left (UIDs are never reused). */
static int
batch_uids_left(const struct save *batch, const struct md_state *s)
{
	uint32_t n = 0;

	for (; batch != NULL; batch = batch->next)
		n++;
	return s->nextuid < UINT32_MAX && UINT32_MAX - s->nextuid >= n;
}

/* One commit for a batch of messages to one mailbox: lock, rename each,
 * fsync the directories once, append the UIDs to the uid list with one
 * fdatasync, write the index once.  The state is the one the committing
 * thread's store handle keeps (`st`), so saves in a row read only the
 * index's change log, not the whole index.  With `all`, the batch is
 * one MULTIAPPEND: the first failure undoes the ones before it. */
static void
commit_batch(const char *dir, struct save *batch, postern_store_t *st,
             int all)
{
	struct md_state own = { 0 }, *s = md_store_state_get(st, dir);
	struct save *sv;
	char sub[4200];
	int lk, into_new = 0, into_cur = 0;
	uint32_t from;

	if (s == NULL)
		s = &own;
	if ((lk = md_lock(dir)) < 0) {
		batch_fail(batch, "cannot lock the mailbox");
		goto out;
	}
	if (md_refresh(dir, s, MD_REFRESH_LIGHT) < 0) {
		batch_fail(batch, "cannot update the mailbox");
		goto out;
	}
	if (all && !batch_uids_left(batch, s)) {
		md_err(&batch->err, POSTERN_SE_LIMIT, "the mailbox has too "
		       "few UIDs left");
		batch->rc = -1;
		batch_fail(batch, "the mailbox has too few UIDs left");
		goto out;
	}
	from = s->nrec;
	for (sv = batch; sv != NULL; sv = sv->next) {
		sv->rc = save_locked(sv, s);
		into_new |= sv->renamed_into == 'n';
		into_cur |= sv->renamed_into == 'c';
		sv->uidvalidity = s->uidvalidity;
		if (all && sv->rc < 0) {
			batch_undo(batch, "another message of the APPEND "
			           "failed");
			goto out;
		}
	}
	snprintf(sub, sizeof(sub), "%s/new", dir);
	if (into_new && md_fsync_dir(sub) < 0) {
		(all ? batch_undo : batch_fail)(batch,
		                                "cannot store the message");
		goto out;
	}
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	if (into_cur && md_fsync_dir(sub) < 0) {
		(all ? batch_undo : batch_fail)(batch,
		                                "cannot store the message");
		goto out;
	}
	if (md_uidlist_append(dir, s, from) < 0 ||
	    md_index_write(dir, s) < 0)
		/* The messages are safe in the maildir: the next scan gives
		 * them UIDs; what we would have said cannot be promised.
		 * All or nothing: they go. */
		(all ? batch_undo : batch_fail)(batch,
		                                "cannot record the message");
out:
	md_unlock(lk);
	if (s == &own)
		md_state_free(&own);
	else
		md_store_state_put(st, batch_ok(batch) ? 0 : -1);
}

/*
 * Group commit.  Job threads of this process saving into the same
 * mailbox at the same time share one lock turn, one directory fsync and
 * one uid list fdatasync: the first to arrive commits everything queued
 * for that mailbox while it works, the others wait for their result.
 * Under load (SMTP deliveries to one mailbox) this turns N commits into
 * a few; alone, a save costs what it did before.  Other processes are
 * kept out by the mailbox lock as always.
 */
struct commit_group {
	char *dir;
	struct save *head, **tail;
	int busy;
	unsigned users;            /* threads inside group_commit */
	struct commit_group *next;
};

static pthread_mutex_t group_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t group_cv = PTHREAD_COND_INITIALIZER;
static struct commit_group *groups;

static struct commit_group *
group_get(const char *dir)
{
	struct commit_group *g;

	for (g = groups; g != NULL; g = g->next)
		if (strcmp(g->dir, dir) == 0)
			return g;
	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->dir = strdup(dir)) == NULL) {
		free(g);
		return NULL;
	}
	g->tail = &g->head;
	g->next = groups;
	groups = g;
	return g;
}

/* The last thread out frees the group. */
static void
group_leave(struct commit_group *g)
{
	struct commit_group **pp;

	if (--g->users > 0)
		return;
	for (pp = &groups; *pp != NULL; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	free(g->dir);
	free(g);
}

static void
group_commit(struct save *sv)
{
	struct commit_group *g;
	struct save *batch;

	pthread_mutex_lock(&group_mu);
	if ((g = group_get(sv->dir)) == NULL) {
		pthread_mutex_unlock(&group_mu);
		commit_batch(sv->dir, sv, sv->st, 0); /* alone, no memory */
		return;
	}
	g->users++;
	*g->tail = sv;
	g->tail = &sv->next;
	while (!sv->done) {
		if (g->busy) {
			pthread_cond_wait(&group_cv, &group_mu);
			continue;
		}
		g->busy = 1;
		batch = g->head;
		g->head = NULL;
		g->tail = &g->head;
		pthread_mutex_unlock(&group_mu);
		/* Our own save is in the batch: we hold the queue's head
		 * until it is done. */
		commit_batch(g->dir, batch, sv->st, 0);
		pthread_mutex_lock(&group_mu);
		for (; batch != NULL; batch = batch->next)
			batch->done = 1;
		g->busy = 0;
		pthread_cond_broadcast(&group_cv);
	}
	group_leave(g);
	pthread_mutex_unlock(&group_mu);
}

int
md_save(postern_store_t *st, const char *name,
        const struct postern_append *msg, int to_new, uint32_t *uid,
        uint32_t *uidvalidity, struct postern_storage_err *err)
{
	struct save sv = { .st = st, .msg = msg, .to_new = to_new };
	char *dir;

	if ((dir = md_box_dir_existing(st->root, name, err)) == NULL)
		return -1;
	sv.dir = dir;
	/* the message's length as given (with the trace fields put
	 * before it): what it takes on disk is known once written, the
	 * limit is checked before */
	if (md_quota_check(st->root, msg->length +
	                   (POSTERN_SIZED_HAS(msg, offset) ? msg->head_len
	                                                   : 0),
	                   1, err) < 0) {
		free(dir);
		return -1;
	}
	if ((sv.sized = write_tmp(dir, msg, &sv.tmp, &sv.hdr)) == NULL) {
		md_err(err, POSTERN_SE_TEMP, "cannot write the message");
		free(dir);
		return -1;
	}
	group_commit(&sv);
	*uid = sv.uid;
	*uidvalidity = sv.uidvalidity;
	if (sv.rc < 0) {
		*err = sv.err;
		if (sv.renamed_into == 0)
			unlink(sv.tmp);
	}
	if (sv.renamed_into != 0)
		md_quota_add(st->root, (int64_t)sv.rawsize, 1);
	free(sv.tmp);
	free(sv.sized);
	free(sv.path);
	free(dir);
	return sv.rc;
}

int
md_append(postern_store_t *st, const char *name,
          const struct postern_append *msg, uint32_t *uid,
          uint32_t *uidvalidity, struct postern_storage_err *err)
{
	return md_save(st, name, msg, 0, uid, uidvalidity, err);
}

/* MULTIAPPEND: every message is written to tmp/ and fsynced first, then
 * all are renamed into place and numbered in one turn of the mailbox
 * lock (not through the group commit, whose batches mix other
 * sessions' saves), so other sessions see all of them or none. */
int
md_append_many(postern_store_t *st, const char *name,
               const struct postern_append *const *msgs, size_t n,
               uint32_t *uids, uint32_t *uidvalidity,
               struct postern_storage_err *err)
{
	struct save *sv;
	char *dir;
	uint64_t bytes = 0, stored = 0;
	size_t i;
	int rc = -1;

	if (n == 0) {
		md_err(err, POSTERN_SE_CANNOT, "no message to append");
		return -1;
	}
	if ((dir = md_box_dir_existing(st->root, name, err)) == NULL)
		return -1;
	/* the quota: all of them, before any is written */
	for (i = 0; i < n; i++)
		bytes += msgs[i]->length + (POSTERN_SIZED_HAS(msgs[i], offset) ?
		                            msgs[i]->head_len : 0);
	if (md_quota_check(st->root, bytes, n, err) < 0) {
		free(dir);
		return -1;
	}
	if ((sv = calloc(n, sizeof(*sv))) == NULL) {
		md_err(err, POSTERN_SE_TEMP, "out of memory");
		free(dir);
		return -1;
	}
	for (i = 0; i < n; i++) {
		sv[i].st = st;
		sv[i].dir = dir;
		sv[i].msg = msgs[i];
		sv[i].next = i + 1 < n ? &sv[i + 1] : NULL;
		sv[i].sized = write_tmp(dir, msgs[i], &sv[i].tmp, &sv[i].hdr);
		if (sv[i].sized == NULL) {
			md_err(err, POSTERN_SE_TEMP, "cannot write the message");
			goto out;
		}
	}
	commit_batch(dir, sv, st, 1);
	if (!batch_ok(sv)) {
		for (i = 0; i < n && sv[i].rc == 0; i++)
			;
		*err = sv[i < n ? i : 0].err;
		goto out;
	}
	for (i = 0; i < n; i++) {
		uids[i] = sv[i].uid;
		stored += sv[i].rawsize;
	}
	md_quota_add(st->root, (int64_t)stored, (int64_t)n);
	*uidvalidity = sv[0].uidvalidity;
	rc = 0;
out:
	for (i = 0; i < n; i++) {
		if (sv[i].tmp != NULL && (rc < 0 || sv[i].renamed_into == 0))
			unlink(sv[i].tmp);
		free(sv[i].tmp);
		free(sv[i].sized);
		free(sv[i].path);
	}
	free(sv);
	free(dir);
	return rc;
}
