/*
 * maildir_copy.c - COPY and MOVE between mailboxes.
 *
 * Each source file is hard-linked (copied when the file system refuses)
 * into the destination's tmp/ under a new unique name; then, under the
 * destination's lock only, the links are renamed into cur/ with their
 * flags, cur/ is fsynced and UIDs are given in order.  A move then takes
 * the source's lock and unlinks the originals.  No two mailbox locks are
 * ever held at once, so copies in opposite directions cannot deadlock.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

struct cp_item {
	uint32_t vidx;  /* index in the source view */
	char *tmp;      /* dest/tmp/<base> */
	char *base;     /* <base>,S=..,W=.. */
	uint32_t uid;   /* in the destination */
};

struct cp {
	postern_mailbox_t *mb;
	char *ddir;
	struct cp_item *it;
	size_t n;
	int gone; /* a message was expunged under us */
};

static int
copy_data(const char *from, const char *to)
{
	char buf[65536];
	struct timespec ts[2];
	struct stat sb;
	ssize_t r;
	int in, out, rc = 0;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return -1;
	}
	while (rc == 0 && (r = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, r) != r)
			rc = -1;
	if (r < 0 || fsync(out) < 0)
		rc = -1;
	if (rc == 0 && fstat(in, &sb) == 0) {
		ts[0] = sb.st_atim;
		ts[1] = sb.st_mtim; /* the internal date */
		futimens(out, ts);
	}
	close(in);
	close(out);
	if (rc < 0)
		unlink(to);
	return rc;
}

/* Links one source message into dest/tmp. */
static int
link_one(struct cp *c, struct cp_item *it)
{
	const struct md_rec *r = &c->mb->v[it->vidx].r;
	char src[8192], *u = md_unique_base();
	int fd;

	if (u == NULL || asprintf(&it->base, "%s,S=%llu,W=%llu", u,
	                          (unsigned long long)r->rawsize,
	                          (unsigned long long)r->size) < 0) {
		free(u);
		it->base = NULL;
		return -1;
	}
	free(u);
	if (asprintf(&it->tmp, "%s/tmp/%s", c->ddir, it->base) < 0) {
		it->tmp = NULL;
		return -1;
	}
	/* Opening finds the file even if another session renamed it. */
	if ((fd = md_view_open_file(c->mb, r->uid)) < 0) {
		c->gone = 1;
		return -1;
	}
	close(fd);
	md_view_path(c->mb, it->vidx, src, sizeof(src));
	if (link(src, it->tmp) == 0 || copy_data(src, it->tmp) == 0)
		return 0;
	md_log(POSTERN_LOG_ERROR, "link or copy %s to %s: %s", src, it->tmp,
	       strerror(errno));
	return -1;
}

static int
dest_keywords(struct cp *c, struct md_state *ds, uint32_t skw,
              uint32_t *dkw)
{
	uint32_t i, before = ds->nkw;
	int idx;

	*dkw = 0;
	for (i = 0; i < c->mb->nkw; i++) {
		if (!(skw & (1u << i)))
			continue;
		if ((idx = md_keyword_index(ds, c->mb->kwnames[i], 1)) >= 0)
			*dkw |= 1u << idx; /* else: the destination is full */
	}
	if (ds->nkw != before)
		return md_keywords_write(c->ddir, ds);
	return 0;
}

static int
place_one(struct cp *c, struct md_state *ds, struct cp_item *it)
{
	const struct md_rec *sr = &c->mb->v[it->vidx].r;
	char to[8192], *final;
	struct md_rec *r;
	uint32_t kw;

	if (ds->nextuid == UINT32_MAX) {
		md_log(POSTERN_LOG_ERROR, "%s: no UID left to give", c->ddir);
		return -1;
	}
	if (dest_keywords(c, ds, sr->kw, &kw) < 0 ||
	    (final = md_name_make(it->base, sr->flags & 0x1fu, kw)) == NULL)
		return -1;
	snprintf(to, sizeof(to), "%s/cur/%s", c->ddir, final);
	if (rename(it->tmp, to) < 0 || (r = md_state_add(ds, final)) == NULL) {
		md_log(POSTERN_LOG_ERROR, "rename %s: %s", it->tmp,
		       strerror(errno));
		free(final);
		return -1;
	}
	free(final);
	r->uid = it->uid = ds->nextuid++;
	r->flags = sr->flags & 0x1fu;
	r->kw = kw;
	r->modseq = ++ds->highestmodseq;
	r->size = sr->size;
	r->rawsize = sr->rawsize;
	r->hdr_size = sr->hdr_size;
	r->idate = sr->idate;
	r->tz = sr->tz;
	return 0;
}

/* Under the destination's lock: into cur/, UIDs, uid list, index.  The
 * destination's state is the one the store handle keeps for its saves. */
static int
place_all(struct cp *c, uint32_t *uidvalidity)
{
	struct md_state own = { 0 }, *ds;
	char cur[4200];
	uint32_t first;
	size_t i;
	int lk, rc;

	if ((ds = md_store_state_get(c->mb->st, c->ddir)) == NULL)
		ds = &own;
	if ((lk = md_lock(c->ddir)) < 0)
		rc = -1;
	else {
		rc = md_refresh(c->ddir, ds, MD_REFRESH_LIGHT);
		first = ds->nrec;
		for (i = 0; rc == 0 && i < c->n; i++)
			rc = place_one(c, ds, &c->it[i]);
		snprintf(cur, sizeof(cur), "%s/cur", c->ddir);
		if (rc == 0)
			rc = md_fsync_dir(cur);
		if (rc == 0)
			rc = md_uidlist_append(c->ddir, ds, first);
		if (rc == 0)
			rc = md_index_write(c->ddir, ds);
		*uidvalidity = ds->uidvalidity;
		md_unlock(lk);
	}
	if (ds == &own)
		md_state_free(&own);
	else
		md_store_state_put(c->mb->st, rc);
	return rc;
}

static void
cp_free(struct cp *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		if (c->it[i].tmp != NULL)
			unlink(c->it[i].tmp); /* left only after a failure */
		free(c->it[i].tmp);
		free(c->it[i].base);
	}
	free(c->it);
	free(c->ddir);
}

static int
collect(struct cp *c, const struct postern_uid_range *uids, size_t nranges)
{
	postern_mailbox_t *mb = c->mb;
	uint32_t i;

	if ((c->it = calloc(mb->n + 1, sizeof(*c->it))) == NULL)
		return -1;
	for (i = 0; i < mb->n; i++) {
		if (mb->v[i].expunged || !postern_uid_ranges_have(uids, nranges,
		                                    mb->v[i].r.uid))
			continue;
		c->it[c->n].vidx = i;
		if (link_one(c, &c->it[c->n++]) < 0)
			return -1;
	}
	return 0;
}

/* A move: the sources go, and the view hears of it at once. */
static int
move_expunge(struct cp *c, postern_pool_t *pool,
             struct postern_sync_changes *out,
             struct postern_storage_err *err)
{
	postern_mailbox_t *mb = c->mb;
	struct postern_uid_range *r;
	uint32_t i;
	size_t n = 0;
	int rc;

	/* Not through \Deleted: MOVE must not touch the flags others see. */
	if ((r = calloc(c->n + 1, sizeof(*r))) == NULL)
		return -1;
	for (i = 0; i < c->n; i++) {
		r[n].first = r[n].last = mb->v[c->it[i].vidx].r.uid;
		n++;
	}
	rc = md_expunge_uids(mb, r, n, pool, out, err);
	free(r);
	return rc;
}

int
md_copy(postern_mailbox_t *mb, const struct postern_uid_range *uids,
        size_t nranges, const char *dest, int move, postern_pool_t *pool,
        uint32_t **src_uids, uint32_t **dest_uids, size_t *n,
        uint32_t *dest_uidvalidity, struct postern_sync_changes *expunged,
        struct postern_storage_err *err)
{
	struct postern_sync_changes dummy;
	struct cp c = { .mb = mb };
	char path[4200];
	struct stat sb;
	uint64_t bytes = 0;
	size_t i;
	int rc = -1;

	*src_uids = *dest_uids = NULL;
	*n = 0;
	if (move && (mb->mode & POSTERN_OPEN_READONLY)) {
		md_err(err, POSTERN_SE_NOPERM, "mailbox is read-only");
		return -1;
	}
	if ((c.ddir = md_box_dir(mb->st->root, dest, err)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/cur", c.ddir);
	if (stat(path, &sb) < 0)
		md_err(err, POSTERN_SE_NONEXISTENT, "no such mailbox");
	else if (collect(&c, uids, nranges) < 0)
		md_err(err, c.gone ? POSTERN_SE_EXPUNGED : POSTERN_SE_TEMP,
		       c.gone ? "some messages no longer exist"
		              : "cannot copy");
	else {
		for (i = 0; i < c.n; i++)
			bytes += mb->v[c.it[i].vidx].r.rawsize;
		/* a move leaves the usage as it was */
		if (!move && md_quota_check(mb->st->root, bytes, c.n,
		                            err) < 0)
			;
		else if (place_all(&c, dest_uidvalidity) < 0)
			md_err(err, POSTERN_SE_TEMP, "cannot copy");
		else {
			rc = 0;
			md_quota_add(mb->st->root, (int64_t)bytes,
			             (int64_t)c.n);
		}
	}
	if (rc == 0) {
		*src_uids = md_host->pool_alloc(pool, (c.n + 1) * 4);
		*dest_uids = md_host->pool_alloc(pool, (c.n + 1) * 4);
		for (i = 0; i < c.n; i++) {
			(*src_uids)[i] = mb->v[c.it[i].vidx].r.uid;
			(*dest_uids)[i] = c.it[i].uid;
			free(c.it[i].tmp); /* renamed: nothing to unlink */
			c.it[i].tmp = NULL;
		}
		*n = c.n;
		if (move)
			rc = move_expunge(&c, pool, expunged != NULL
			                                    ? expunged : &dummy,
			                  err);
	}
	cp_free(&c);
	return rc;
}
