/*
 * maildir_cache.c - the per-message cache (cache_get, cache_set): what is
 * costly to recompute, such as a parsed MIME structure.
 *
 * postern.cache is append-only: a 16-byte header (magic, version,
 * UIDVALIDITY) then records { magic, uid, field length, data length,
 * field, data }; the last record for a (uid, field) wins.  Writers append
 * under flock on the file itself; a torn record at the end (a crash mid
 * write) is cut off by the next writer and ignored by readers.  Each view
 * keeps a table of what it has read, and reads only what was appended
 * since.  A new UIDVALIDITY empties the file.
 *
 * Superseded records and those of expunged messages are dead weight; when
 * they are most of a file over CACHE_COMPACT_MIN, the writer that notices
 * rewrites it with the live records only (tmp, rename, under the flock).
 * Readers see a new inode and read it from the start; a writer that
 * locked the old file re-opens the new one.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"

#define CACHE_MAGIC 0x43444d50u  /* "PMDC" */
#define REC_MAGIC 0x43455243u    /* "CREC" */
#define MAX_FIELD 255
#define MAX_DATA (16u << 20)
#define CACHE_COMPACT_MIN (1u << 20)

struct chdr {
	uint32_t magic, version, uidvalidity, pad;
};

struct crec {
	uint32_t magic, uid;
	uint16_t flen, pad;
	uint32_t dlen;
};

struct centry {
	uint32_t uid;
	char *field;
	off_t data;
	uint32_t len;
};

struct md_cache {
	struct centry *e;
	size_t n, cap;
	uint32_t *slot;   /* open addressing: entry index + 1 */
	size_t nslot;     /* a power of two, at least 2 * cap */
	off_t end;        /* read up to here */
	ino_t ino;        /* of the file read: compaction makes a new one */
	int fd;           /* kept open for reads */
	ino_t fd_ino;     /* the file fd is on */
	int wfd;          /* kept open for writes (flock'd only while one
	                     runs): filling the cache of a mailbox, a
	                     first SEARCH TEXT, writes once per message */
	off_t check_at;   /* size at which to count the live records again */
};

static uint32_t
ckey(uint32_t uid, const char *field)
{
	uint32_t h = 2166136261u ^ uid;

	while (*field != '\0')
		h = (h ^ (unsigned char)*field++) * 16777619u;
	return h;
}

static struct centry *
cfind(struct md_cache *c, uint32_t uid, const char *field)
{
	size_t i;

	if (c->nslot == 0)
		return NULL;
	for (i = ckey(uid, field) & (c->nslot - 1); c->slot[i] != 0;
	     i = (i + 1) & (c->nslot - 1)) {
		struct centry *e = &c->e[c->slot[i] - 1];

		if (e->uid == uid && strcmp(e->field, field) == 0)
			return e;
	}
	return NULL;
}

static void
cslot_put(struct md_cache *c, size_t idx)
{
	size_t i = ckey(c->e[idx].uid, c->e[idx].field) & (c->nslot - 1);

	while (c->slot[i] != 0)
		i = (i + 1) & (c->nslot - 1);
	c->slot[i] = idx + 1;
}

static int
cgrow(struct md_cache *c)
{
	struct centry *ne;
	uint32_t *ns;
	size_t ncap = c->cap * 2 + 32, nslot = 64, i;

	while (nslot < ncap * 2)
		nslot *= 2;
	if ((ne = realloc(c->e, ncap * sizeof(*ne))) == NULL)
		return -1;
	c->e = ne;
	if ((ns = calloc(nslot, sizeof(*ns))) == NULL)
		return -1;
	free(c->slot);
	c->slot = ns;
	c->nslot = nslot;
	c->cap = ncap;
	for (i = 0; i < c->n; i++)
		cslot_put(c, i);
	return 0;
}

static int
cadd(struct md_cache *c, uint32_t uid, const char *field, off_t data,
     uint32_t len)
{
	struct centry *e = cfind(c, uid, field);

	if (e == NULL) {
		if (c->n == c->cap && cgrow(c) < 0)
			return -1;
		e = &c->e[c->n];
		if ((e->field = strdup(field)) == NULL)
			return -1;
		e->uid = uid;
		cslot_put(c, c->n++);
	}
	e->data = data;
	e->len = len;
	return 0;
}

void
md_cache_free(postern_mailbox_t *mb)
{
	struct md_cache *c = mb->cache;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		free(c->e[i].field);
	if (c->fd >= 0)
		close(c->fd);
	if (c->wfd >= 0)
		close(c->wfd);
	free(c->e);
	free(c->slot);
	free(c);
	mb->cache = NULL;
}

static void
cache_reset(struct md_cache *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->e[i].field);
	c->n = 0;
	c->end = 0;
	c->check_at = 0;
	if (c->slot != NULL)
		memset(c->slot, 0, c->nslot * sizeof(*c->slot));
}

/* Reads records from c->end on, in the file fd is open on (`sb` its
 * fstat); stops at the first torn one. */
static int
cache_scan_stat(postern_mailbox_t *mb, struct md_cache *c, int fd,
                const struct stat *sbp)
{
	char field[MAX_FIELD + 1];
	struct chdr h;
	struct crec r;
	struct stat sb = *sbp;

	if (sb.st_ino != c->ino || sb.st_size < c->end) {
		/* Compacted, or emptied by a new UIDVALIDITY. */
		cache_reset(c);
		c->ino = sb.st_ino;
	}
	if (c->end == 0) {
		if (pread(fd, &h, sizeof(h), 0) != sizeof(h) ||
		    h.magic != CACHE_MAGIC || h.uidvalidity != mb->uidvalidity)
			return 0;
		c->end = sizeof(h);
	}
	while (c->end + (off_t)sizeof(r) <= sb.st_size) {
		if (pread(fd, &r, sizeof(r), c->end) != sizeof(r) ||
		    r.magic != REC_MAGIC || r.flen > MAX_FIELD ||
		    c->end + (off_t)sizeof(r) + r.flen + r.dlen > sb.st_size ||
		    pread(fd, field, r.flen, c->end + sizeof(r)) != r.flen)
			break;
		field[r.flen] = '\0';
		if (cadd(c, r.uid, field, c->end + sizeof(r) + r.flen,
		         r.dlen) < 0)
			return -1;
		c->end += sizeof(r) + r.flen + r.dlen;
	}
	return 0;
}

static int
cache_scan(postern_mailbox_t *mb, struct md_cache *c, int fd)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return -1;
	return cache_scan_stat(mb, c, fd, &sb);
}

static int
cache_open(postern_mailbox_t *mb, int flags)
{
	if (mb->cache == NULL) {
		if ((mb->cache = calloc(1, sizeof(*mb->cache))) == NULL)
			return -1;
		mb->cache->fd = -1;
		mb->cache->wfd = -1;
	}
	return md_openat(mb, MD_CACHE, flags, 0600);
}

/* The read descriptor, on the file the table describes: a FETCH of many
 * messages costs one pread each, not an open, fstat and close.  A file
 * replaced by compaction stays readable through an old descriptor, at the
 * offsets read from it. */
static int
cache_read_fd(postern_mailbox_t *mb)
{
	struct md_cache *c = mb->cache;
	struct stat sb;
	int fd;

	if (c != NULL && c->fd >= 0 && c->fd_ino == c->ino)
		return c->fd;
	if ((fd = cache_open(mb, O_RDONLY)) < 0)
		return -1;
	c = mb->cache;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = fd;
	if (fstat(fd, &sb) < 0 || cache_scan(mb, c, fd) < 0) {
		c->fd_ino = 0;
		return -1;
	}
	c->fd_ino = sb.st_ino;
	return fd;
}

/* Looks again after a miss: records appended since, or a new file. */
static struct centry *
cache_find_fresh(postern_mailbox_t *mb, uint32_t uid, const char *field)
{
	struct md_cache *c = mb->cache;
	struct stat sb;

	if (md_statat(mb, MD_CACHE, &sb) < 0)
		return NULL;
	if (sb.st_ino != c->ino) {
		close(c->fd);
		c->fd = -1;
		if (cache_read_fd(mb) < 0)
			return NULL;
	} else if (sb.st_size == c->end) {
		return NULL;   /* nothing appended since */
	} else if (cache_scan_stat(mb, c, c->fd, &sb) < 0)
		return NULL;
	return cfind(c, uid, field);
}

int
md_cache_get(postern_mailbox_t *mb, uint32_t uid, const char *field,
             postern_pool_t *pool, const void **data, size_t *len)
{
	struct centry *e;
	void *buf;
	int fd;

	*data = NULL;
	*len = 0;
	if ((fd = cache_read_fd(mb)) < 0)
		return 0;
	if ((e = cfind(mb->cache, uid, field)) == NULL &&
	    (e = cache_find_fresh(mb, uid, field)) == NULL)
		return 0;
	fd = mb->cache->fd;
	buf = md_host->pool_alloc(pool, e->len + 1);
	if (pread(fd, buf, e->len, e->data) != (ssize_t)e->len)
		return 0;
	*data = buf;
	*len = e->len;
	return 1;
}

/* Under the file's flock (`sb`: fd's fstat when it was taken): a header
 * for this UIDVALIDITY, every record read, no torn tail.  The tail is
 * cut only when there is one: a truncate to the same size still costs
 * an inode update. */
static int
cache_prepare(postern_mailbox_t *mb, int fd, struct stat *sb)
{
	struct chdr h = { CACHE_MAGIC, 1, 0, 0 };
	struct chdr old;

	h.uidvalidity = mb->uidvalidity;
	if (pread(fd, &old, sizeof(old), 0) != sizeof(old) ||
	    old.magic != CACHE_MAGIC || old.uidvalidity != mb->uidvalidity) {
		cache_reset(mb->cache);
		if (ftruncate(fd, 0) < 0 ||
		    pwrite(fd, &h, sizeof(h), 0) != sizeof(h) ||
		    fstat(fd, sb) < 0)
			return -1;
	}
	if (cache_scan_stat(mb, mb->cache, fd, sb) < 0)
		return -1;
	if (sb->st_size == mb->cache->end)
		return 0;
	return ftruncate(fd, mb->cache->end);
}

/* Bytes a record takes in the file. */
static off_t
rec_bytes(const struct centry *e)
{
	return (off_t)(sizeof(struct crec) + strlen(e->field) + e->len);
}

/* A record worth keeping: the last for its (uid, field), of a message
 * the view has, or one newer than the view knows. */
static int
rec_live(postern_mailbox_t *mb, const struct centry *e)
{
	return e->uid >= mb->nextuid || md_seq_of_uid(mb, e->uid) != 0;
}

/* Copies the live records of `fd` into a new file and renames it over
 * the cache.  Under the old file's flock. */
static int
cache_compact(postern_mailbox_t *mb, int fd)
{
	struct md_cache *c = mb->cache;
	struct chdr h = { CACHE_MAGIC, 1, 0, 0 };
	struct crec r = { REC_MAGIC, 0, 0, 0, 0 };
	char path[4200], tmp[4300];
	off_t at = sizeof(h);
	void *buf = NULL;
	size_t i;
	int out, rc = -1;

	snprintf(path, sizeof(path), "%s/%s", mb->dir, MD_CACHE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	                0600)) < 0)
		return -1;
	h.uidvalidity = mb->uidvalidity;
	if (pwrite(out, &h, sizeof(h), 0) != sizeof(h))
		goto out;
	for (i = 0; i < c->n; i++) {
		const struct centry *e = &c->e[i];

		if (!rec_live(mb, e))
			continue;
		free(buf);
		if ((buf = malloc(e->len + 1)) == NULL ||
		    pread(fd, buf, e->len, e->data) != (ssize_t)e->len)
			goto out;
		r.uid = e->uid;
		r.flen = (uint16_t)strlen(e->field);
		r.dlen = e->len;
		if (pwrite(out, &r, sizeof(r), at) != sizeof(r) ||
		    pwrite(out, e->field, r.flen, at + sizeof(r)) != r.flen ||
		    pwrite(out, buf, e->len, at + sizeof(r) + r.flen) !=
		            (ssize_t)e->len)
			goto out;
		at += rec_bytes(e);
	}
	rc = rename(tmp, path);
out:
	free(buf);
	close(out);
	if (rc < 0) {
		md_log(POSTERN_LOG_WARNING, "%s: cannot compact: %s", path,
		       strerror(errno));
		unlink(tmp);
	}
	return rc;
}

/* Compacts when dead records are most of a big file.  Returns 1 when
 * the file was replaced (the caller's fd is then the old one).
 * Counting the live records is a pass over all of them, so it is done
 * again only once the file grew by half: filling the cache of a large
 * mailbox (a first SEARCH TEXT, one record per message) stays linear. */
static int
cache_maybe_compact(postern_mailbox_t *mb, int fd)
{
	struct md_cache *c = mb->cache;
	off_t live = sizeof(struct chdr);
	size_t i;

	if (c->end < (off_t)CACHE_COMPACT_MIN || c->end < c->check_at)
		return 0;
	c->check_at = c->end + c->end / 2;
	for (i = 0; i < c->n; i++)
		if (rec_live(mb, &c->e[i]))
			live += rec_bytes(&c->e[i]);
	if (live * 2 > c->end || cache_compact(mb, fd) < 0)
		return 0;
	md_log(POSTERN_LOG_INFO, "%s/%s: compacted %lld to %lld bytes",
	       mb->dir, MD_CACHE, (long long)c->end, (long long)live);
	return 1;
}

/* Drops the write descriptor's flock (cache_unlock) or the descriptor
 * itself (cache_drop: it is on a file compaction replaced, or broken). */
static void
cache_drop_wfd(struct md_cache *c)
{
	if (c->wfd >= 0)
		close(c->wfd);
	c->wfd = -1;
}

static void
cache_unlock(struct md_cache *c)
{
	if (flock(c->wfd, LOCK_UN) < 0)
		cache_drop_wfd(c);
}

/* The kept write descriptor with its flock held, on the file that is
 * current once locked (compaction may have replaced the one opened). */
static int
cache_lock(postern_mailbox_t *mb, struct stat *a)
{
	struct md_cache *c;
	struct stat b;
	int fd, tries;

	for (tries = 0; tries < 10; tries++) {
		c = mb->cache;
		if (c == NULL || c->wfd < 0) {
			if ((fd = cache_open(mb, O_RDWR | O_CREAT)) < 0)
				return -1;
			c = mb->cache;
			c->wfd = fd;
		}
		if (flock(c->wfd, LOCK_EX) < 0) {
			cache_drop_wfd(c);
			return -1;
		}
		if (fstat(c->wfd, a) == 0 && md_statat(mb, MD_CACHE, &b) == 0 &&
		    a->st_ino == b.st_ino)
			return c->wfd;
		cache_drop_wfd(c);
	}
	errno = EAGAIN;
	return -1;
}

/* Opens the cache for writing with its flock held, every record read
 * and no torn tail: the caller appends at mb->cache->end. */
static int
cache_lock_prepared(postern_mailbox_t *mb)
{
	struct stat sb;
	int fd;

	if ((fd = cache_lock(mb, &sb)) < 0)
		return -1;
	if (cache_prepare(mb, fd, &sb) < 0) {
		cache_unlock(mb->cache);
		return -1;
	}
	return fd;
}

/* One record appended with one write, entered in the table as written
 * (the flock is held: nothing else was appended meanwhile). */
int
md_cache_set(postern_mailbox_t *mb, uint32_t uid, const char *field,
             const void *data, size_t len)
{
	struct crec r = { REC_MAGIC, uid, 0, 0, 0 };
	size_t flen = strlen(field);
	struct iovec iov[3];
	ssize_t want;
	off_t at;
	int fd, rc = -1;

	if (flen == 0 || flen > MAX_FIELD || len > MAX_DATA ||
	    md_seq_of_uid(mb, uid) == 0)
		return -1;
	if ((fd = cache_lock_prepared(mb)) < 0)
		goto out;
	r.flen = flen;
	r.dlen = len;
	if (cache_maybe_compact(mb, fd) == 1) {
		/* Append to the new file, under its own lock. */
		cache_drop_wfd(mb->cache);
		if ((fd = cache_lock_prepared(mb)) < 0)
			goto out;
	}
	at = mb->cache->end;
	iov[0].iov_base = &r;
	iov[0].iov_len = sizeof(r);
	iov[1].iov_base = (void *)field;
	iov[1].iov_len = flen;
	iov[2].iov_base = (void *)data;
	iov[2].iov_len = len;
	want = (ssize_t)(sizeof(r) + flen + len);
	if (pwritev(fd, iov, 3, at) == want &&
	    (rc = cadd(mb->cache, uid, field, at + (off_t)(sizeof(r) + flen),
	               (uint32_t)len)) == 0)
		mb->cache->end = at + want;
out:
	if (rc < 0)
		md_log(POSTERN_LOG_WARNING, "%s/%s: cannot write: %s", mb->dir,
		       MD_CACHE, strerror(errno));
	if (fd >= 0)
		cache_unlock(mb->cache);
	return rc;
}
