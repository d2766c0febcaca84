/*
 * maildir_index.c - the per-mailbox index, the lock, and the scan that
 * keeps them true to new/ and cur/.
 *
 * postern.index is one file: a header, then fixed 64-byte records (one per
 * message, ascending UID: uid, flags, keywords, sizes, internal date,
 * modseq, header size), then the file names.  Opening a mailbox reads it
 * and stats new/ and cur/: when their mtimes are those recorded, nothing
 * else is read.  A checksum covers the whole file; a bad one (or a short
 * file) means "rebuild": the UIDs come back from dovecot-uidlist, and
 * only when that is gone too does the mailbox get a new UIDVALIDITY.
 * Changes go to a change log beside it (postern.index.log, below), and
 * it is replaced whole (write tmp, rename) under the lock only when that
 * log grows; both are a cache of the uid list and the file names, so
 * they need no fsync.
 *
 * A state kept between refreshes (a view's, a store handle's) is not
 * read again while the index is the same file: only the log's entries
 * after the point the last refresh reached (index_read, log_replay).
 *
 * postern.lock is flock()ed exclusively by whoever reads or changes the
 * state (views syncing, appends, deliveries in several processes).
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

#define MD_INDEX_MAGIC 0x49444d50u /* "PMDI" */
#define MD_INDEX_VERSION 2u
/* Mod-sequences are 63-bit (RFC 7162); one near the top would wrap to 0
 * as changes add to it. */
#define MD_MODSEQ_MAX ((uint64_t)INT64_MAX / 2)

struct md_ihdr {
	uint32_t magic, version, hdr_size, rec_size;
	uint32_t uidvalidity, nextuid;
	uint64_t highestmodseq;
	uint32_t nrec, first_recent_uid;
	int64_t new_mtime, cur_mtime;
	uint64_t uidlist_size;
	uint32_t names_size, checksum;
};

/* ---- file names ------------------------------------------------------- */

size_t
md_base_len(const char *name)
{
	const char *c = strchr(name, ':');

	return c != NULL ? (size_t)(c - name) : strlen(name);
}

void
md_name_flags(const char *name, uint32_t *flags, uint32_t *kw)
{
	const char *p = strstr(name, ":2,");

	*flags = 0;
	*kw = 0;
	if (p == NULL)
		return;
	for (p += 3; *p != '\0'; p++) {
		switch (*p) {
		case 'S': *flags |= POSTERN_MSG_SEEN; break;
		case 'R': *flags |= POSTERN_MSG_ANSWERED; break;
		case 'F': *flags |= POSTERN_MSG_FLAGGED; break;
		case 'T': *flags |= POSTERN_MSG_DELETED; break;
		case 'D': *flags |= POSTERN_MSG_DRAFT; break;
		default:
			if (*p >= 'a' && *p <= 'z')
				*kw |= 1u << (*p - 'a');
		}
	}
}

char *
md_name_make(const char *name, uint32_t flags, uint32_t kw)
{
	char info[64], *out;
	size_t n = 0;
	int i;

	/* Letters in ASCII order, as the maildir spec asks. */
	if (flags & POSTERN_MSG_DRAFT)
		info[n++] = 'D';
	if (flags & POSTERN_MSG_FLAGGED)
		info[n++] = 'F';
	if (flags & POSTERN_MSG_ANSWERED)
		info[n++] = 'R';
	if (flags & POSTERN_MSG_SEEN)
		info[n++] = 'S';
	if (flags & POSTERN_MSG_DELETED)
		info[n++] = 'T';
	for (i = 0; i < MD_MAX_KEYWORDS; i++)
		if (kw & (1u << i))
			info[n++] = 'a' + i;
	info[n] = '\0';
	if (asprintf(&out, "%.*s:2,%s", (int)md_base_len(name), name,
	             info) < 0)
		return NULL;
	return out;
}

static uint64_t
name_field(const char *name, const char *key)
{
	size_t blen = md_base_len(name);
	const char *p = name;

	while ((p = strstr(p, key)) != NULL && (size_t)(p - name) < blen) {
		if (p[strlen(key)] >= '0' && p[strlen(key)] <= '9')
			return strtoull(p + strlen(key), NULL, 10);
		p++;
	}
	return UINT64_MAX;
}

/* Counts LFs without a CR before them: each costs one more octet when
 * read as CRLF. */
static int
count_bare_lf(const char *path, uint64_t *n)
{
	char buf[65536];
	ssize_t r, i;
	int fd, prev_cr = 0;

	*n = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < r; i++) {
			if (buf[i] == '\n' && !prev_cr)
				(*n)++;
			prev_cr = buf[i] == '\r';
		}
	close(fd);
	return r < 0 ? -1 : 0;
}

int
md_file_info(const char *path, const char *name, struct md_rec *r)
{
	uint64_t s = name_field(name, ",S="), w = name_field(name, ",W=");
	uint64_t lfs;
	struct stat sb;

	if (stat(path, &sb) < 0)
		return -1;
	/* Dovecot's received date is the file's mtime. */
	r->idate = sb.st_mtime;
	r->rawsize = s != UINT64_MAX ? s : (uint64_t)sb.st_size;
	if (w != UINT64_MAX)
		r->size = w;
	else if (count_bare_lf(path, &lfs) == 0)
		r->size = (uint64_t)sb.st_size + lfs;
	else
		return -1;
	return 0;
}

/* ---- the lock --------------------------------------------------------- */

int
md_lock(const char *dir)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_LOCK);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		md_log(POSTERN_LOG_ERROR, "open %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		md_log(POSTERN_LOG_ERROR, "flock %s: %s", path,
		       strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void
md_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock */
}

/* ---- state ------------------------------------------------------------ */

static int64_t
stat_ctime(const struct stat *sb)
{
	return (int64_t)sb->st_ctim.tv_sec * 1000000000 + sb->st_ctim.tv_nsec;
}

/* The index file's ctime (ns), -1 without one. */
static int64_t
index_ctime(const char *dir)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_INDEX);
	return stat(path, &sb) == 0 ? stat_ctime(&sb) : -1;
}

uint64_t
md_state_gen(void)
{
	static uint64_t last;

	return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

void
md_state_free(struct md_state *s)
{
	uint32_t i;

	for (i = 0; i < s->nrec; i++)
		free(s->names[i]);
	for (i = 0; i < s->nkw; i++)
		free(s->kwnames[i]);
	free(s->names);
	free(s->recs);
	free(s->gone);
	memset(s, 0, sizeof(*s));
}

/* ---- parked states ------------------------------------------------------ */

/* SELECT of a 10,000-message mailbox read and checked its 1 MB index
 * every time; a state kept from the last close makes the next open a
 * log replay.  Bounded by count and by records, oldest out first.
 *
 * A parked state is adopted only while its index file is untouched
 * since the state read or wrote it whole: a change by anyone changes the
 * ctime, and then the next open reads and checks the whole file, as it
 * would without parking (a byte damaged in place is found there).  File
 * times are coarse (a few ms), so an index changed less than a second
 * before the close is not trusted to show a later change: its state is
 * not parked (git's "racy" entries, the same way). */
#define PARK_MAX 16
#define PARK_MAX_RECS 400000u

static struct {
	pthread_mutex_t mu;
	struct {
		char *dir;
		struct md_state s;
		struct md_vrecs r;
		uint64_t when;
	} e[PARK_MAX];
	uint32_t recs;
	uint64_t clock;
} park = { .mu = PTHREAD_MUTEX_INITIALIZER };

void
md_vrecs_free(struct md_vrecs *r)
{
	uint32_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i].name);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static void
park_drop(int i)
{
	park.recs -= park.e[i].s.nrec + park.e[i].r.n;
	md_state_free(&park.e[i].s);
	md_vrecs_free(&park.e[i].r);
	free(park.e[i].dir);
	park.e[i].dir = NULL;
}

/* The slot for a new entry: a free one, else the oldest emptied. */
static int
park_slot(void)
{
	int i, old = 0;

	for (i = 0; i < PARK_MAX; i++) {
		if (park.e[i].dir == NULL)
			return i;
		if (park.e[i].when < park.e[old].when)
			old = i;
	}
	park_drop(old);
	return old;
}

void
md_state_park(const char *dir, struct md_state *s, struct md_vrecs *r)
{
	struct timespec now;
	char *copy;
	int i;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!s->loaded || s->dirty || s->nrec + r->n > PARK_MAX_RECS / 2 ||
	    s->idx_ctime <= 0 || index_ctime(dir) != s->idx_ctime ||
	    (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - s->idx_ctime <
	    1000000000 || (copy = strdup(dir)) == NULL) {
		md_state_free(s);
		md_vrecs_free(r);
		return;
	}
	pthread_mutex_lock(&park.mu);
	for (i = 0; i < PARK_MAX; i++)
		if (park.e[i].dir != NULL && strcmp(park.e[i].dir, dir) == 0)
			park_drop(i);
	while (park.recs + s->nrec + r->n > PARK_MAX_RECS && park.recs > 0) {
		int old = -1;
		for (i = 0; i < PARK_MAX; i++)
			if (park.e[i].dir != NULL &&
			    (old < 0 || park.e[i].when < park.e[old].when))
				old = i;
		park_drop(old);
	}
	i = park_slot();
	park.e[i].dir = copy;
	park.e[i].s = *s;
	park.e[i].r = *r;
	park.e[i].when = ++park.clock;
	park.recs += s->nrec + r->n;
	pthread_mutex_unlock(&park.mu);
	memset(s, 0, sizeof(*s));
	memset(r, 0, sizeof(*r));
}

int
md_state_adopt_if(const char *dir, struct md_state *s, struct md_vrecs *r,
                  int (*ready)(const char *, const struct md_state *,
                               const struct md_vrecs *, void *),
                  void *arg)
{
	int64_t ctime = index_ctime(dir);
	int i, rc = 0;

	pthread_mutex_lock(&park.mu);
	for (i = 0; i < PARK_MAX; i++) {
		if (park.e[i].dir == NULL || strcmp(park.e[i].dir, dir) != 0)
			continue;
		if (park.e[i].s.idx_ctime != ctime) {
			park_drop(i);
			break;
		}
		if (ready != NULL &&
		    !ready(dir, &park.e[i].s, &park.e[i].r, arg))
			break;
		*s = park.e[i].s;
		*r = park.e[i].r;
		park.recs -= s->nrec + r->n;
		memset(&park.e[i].s, 0, sizeof(park.e[i].s));
		memset(&park.e[i].r, 0, sizeof(park.e[i].r));
		free(park.e[i].dir);
		park.e[i].dir = NULL;
		rc = 1;
		break;
	}
	pthread_mutex_unlock(&park.mu);
	return rc;
}

void
md_state_adopt(const char *dir, struct md_state *s, struct md_vrecs *r)
{
	md_state_adopt_if(dir, s, r, NULL, NULL);
}

void
md_state_parked_free(void)
{
	int i;

	pthread_mutex_lock(&park.mu);
	for (i = 0; i < PARK_MAX; i++)
		if (park.e[i].dir != NULL)
			park_drop(i);
	pthread_mutex_unlock(&park.mu);
}

static void
state_clear_recs(struct md_state *s)
{
	uint32_t i;

	for (i = 0; i < s->nrec; i++)
		free(s->names[i]);
	s->nrec = 0;
}

/* An index or log found unusable: what its header said is not kept for
 * the rebuild (a next UID from it would carry the damage over), but a
 * sane highest mod-sequence is, so that mod-sequences never go back. */
static void
state_forget(struct md_state *s)
{
	state_clear_recs(s);
	s->nextuid = 0;
	if (s->highestmodseq > MD_MODSEQ_MAX)
		s->highestmodseq = 0;
	s->first_recent_uid = 0;
	s->idx_size = 0;
}

/* md_state_add for a name already malloc'd: the state takes it (and
 * frees it on failure).  Loading 100,000 records makes one allocation
 * each instead of a copy and a copy of the copy. */
static struct md_rec *
state_add_owned(struct md_state *s, char *name)
{
	struct md_rec *nr;
	char **nn;
	uint32_t ncap;

	if (name == NULL)
		return NULL;
	if (s->nrec == s->cap) {
		ncap = s->cap * 2 + 64;
		if ((nr = realloc(s->recs, ncap * sizeof(*nr))) == NULL) {
			free(name);
			return NULL;
		}
		s->recs = nr;
		if ((nn = realloc(s->names, ncap * sizeof(*nn))) == NULL) {
			free(name);
			return NULL;
		}
		s->names = nn;
		s->cap = ncap;
	}
	s->names[s->nrec] = name;
	nr = &s->recs[s->nrec++];
	memset(nr, 0, sizeof(*nr));
	nr->mark = MD_MARK_CHANGED;
	return nr;
}

struct md_rec *
md_state_add(struct md_state *s, const char *name)
{
	return state_add_owned(s, strdup(name));
}

long
md_state_find(const struct md_state *s, uint32_t uid)
{
	long lo = 0, hi = (long)s->nrec - 1, mid;

	while (lo <= hi) {
		mid = (lo + hi) / 2;
		if (s->recs[mid].uid == uid)
			return mid;
		if (s->recs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* ---- the index file --------------------------------------------------- */

static uint32_t
fnv1a(uint32_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n-- > 0)
		h = (h ^ *c++) * 16777619u;
	return h;
}

/* The index checksum: four independent multiply-xor lanes over 8-byte
 * words, several times faster than a byte-wise hash on 10 MB indexes. */
static uint32_t
index_sum(const unsigned char *p, size_t n)
{
	uint64_t h[4] = { 0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full,
	                  0x165667b19e3779f9ull, 0x27d4eb2f165667c5ull };
	uint64_t w, r;
	int i;

	for (; n >= 32; p += 32, n -= 32)
		for (i = 0; i < 4; i++) {
			memcpy(&w, p + 8 * i, 8);
			h[i] = (h[i] ^ w) * 0xff51afd7ed558ccdull;
			h[i] ^= h[i] >> 29;
		}
	r = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7) ^ n;
	for (; n > 0; p++, n--)
		r = (r ^ *p) * 0x100000001b3ull;
	r ^= r >> 32;
	return (uint32_t)r;
}

/* Writes the index whole (tmp, rename) and drops the change log, which
 * followed the index replaced. */
static int
index_write_whole(const char *dir, struct md_state *s)
{
	char path[4096], tmp[4200];
	struct md_ihdr h = { 0 };
	size_t names = 0, off, total;
	unsigned char *buf;
	struct stat sb;
	uint32_t i;
	int fd, rc = 0;

	for (i = 0; i < s->nrec; i++)
		names += strlen(s->names[i]);
	total = sizeof(h) + s->nrec * sizeof(struct md_rec) + names;
	if ((buf = malloc(total)) == NULL)
		return -1;
	h.magic = MD_INDEX_MAGIC;
	h.version = MD_INDEX_VERSION;
	h.hdr_size = sizeof(h);
	h.rec_size = sizeof(struct md_rec);
	h.uidvalidity = s->uidvalidity;
	h.nextuid = s->nextuid;
	h.highestmodseq = s->highestmodseq;
	h.nrec = s->nrec;
	h.first_recent_uid = s->first_recent_uid;
	h.new_mtime = s->new_mtime;
	h.cur_mtime = s->cur_mtime;
	h.uidlist_size = s->uidlist_size;
	h.names_size = names;
	off = sizeof(h) + s->nrec * sizeof(struct md_rec);
	for (i = 0; i < s->nrec; i++) {
		s->recs[i].mark = 0;
		s->recs[i].name_off = off - sizeof(h) -
		                      s->nrec * sizeof(struct md_rec);
		s->recs[i].name_len = strlen(s->names[i]);
		memcpy(buf + off, s->names[i], s->recs[i].name_len);
		off += s->recs[i].name_len;
	}
	if (s->nrec > 0)
		memcpy(buf + sizeof(h), s->recs,
		       s->nrec * sizeof(struct md_rec));
	h.checksum = index_sum(buf + sizeof(h), total - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	snprintf(path, sizeof(path), "%s/%s", dir, MD_INDEX);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, total) != (ssize_t)total ||
	    fstat(fd, &sb) < 0) {
		md_log(POSTERN_LOG_ERROR, "write %s: %s", tmp,
		       strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) < 0) {
		md_log(POSTERN_LOG_ERROR, "rename %s: %s", tmp,
		       strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(tmp);
	else {
		/* A crash before this unlink leaves a log that names the old
		 * index (its checksum and size): it is not replayed. */
		snprintf(tmp, sizeof(tmp), "%s/%s", dir, MD_INDEX_LOG);
		if (unlink(tmp) < 0 && errno != ENOENT)
			md_log(POSTERN_LOG_WARNING, "unlink %s: %s", tmp,
			       strerror(errno));
		s->dirty = 0;
		s->full = 0;
		s->ngone = 0;
		s->idx_size = total;
		s->idx_sum = h.checksum;
		s->idx_dev = (uint64_t)sb.st_dev;
		s->idx_ino = (uint64_t)sb.st_ino;
		/* The rename may change the ctime: the file's, after it
		 * (under the lock, so no one else has written it since). */
		s->idx_ctime = index_ctime(dir);
		s->log_size = 0;
		s->log_ino = 0;
	}
	free(buf);
	return rc;
}

/* The file whole, and its stat (*sb), or NULL with errno set. */
static unsigned char *
read_whole(const char *path, size_t *len, struct stat *sb)
{
	unsigned char *buf = NULL;
	ssize_t r;
	size_t got = 0;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, sb) == 0 && (buf = malloc(sb->st_size + 1)) != NULL)
		while (got < (size_t)sb->st_size &&
		       (r = read(fd, buf + got, sb->st_size - got)) > 0)
			got += (size_t)r;
	saved = errno;
	close(fd);
	errno = saved;
	*len = got;
	return buf;
}

/* pread of all `len` octets, or -1; with `nowait`, -1 rather than
 * waiting for the disk. */
static int
pread_all(int fd, void *buf, size_t len, uint64_t off, int nowait)
{
	struct iovec iov = { buf, len };

	return preadv2(fd, &iov, 1, (off_t)off, nowait ? RWF_NOWAIT : 0) ==
	       (ssize_t)len ? 0 : -1;
}

/* Whether the index is still the file the state was read from or wrote
 * last: same inode, same size, same checksum in its header.  Replacing
 * it is the only way the index changes (write a new file, rename). */
static int
index_same(const char *dir, const struct md_state *s, int nowait)
{
	char path[4096];
	struct md_ihdr h;
	struct stat sb;
	int fd, same;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_INDEX);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC |
	                     (nowait ? O_NONBLOCK : 0))) < 0)
		return 0;
	same = fstat(fd, &sb) == 0 && (uint64_t)sb.st_dev == s->idx_dev &&
	       (uint64_t)sb.st_ino == s->idx_ino &&
	       (uint64_t)sb.st_size == s->idx_size &&
	       pread_all(fd, &h, sizeof(h), 0, nowait) == 0 &&
	       h.magic == MD_INDEX_MAGIC && h.version == MD_INDEX_VERSION &&
	       h.checksum == s->idx_sum && h.uidvalidity == s->uidvalidity;
	close(fd);
	return same;
}

/* Checks the header and the sizes against the file's length. */
static int
index_valid(const unsigned char *buf, size_t len, struct md_ihdr *h)
{
	size_t need;

	if (len < sizeof(*h))
		return 0;
	memcpy(h, buf, sizeof(*h));
	if (h->magic != MD_INDEX_MAGIC || h->version != MD_INDEX_VERSION ||
	    h->hdr_size != sizeof(*h) || h->rec_size != sizeof(struct md_rec))
		return 0;
	need = sizeof(*h) + (size_t)h->nrec * sizeof(struct md_rec) +
	       h->names_size;
	if (len != need || h->uidvalidity == 0)
		return 0;
	return index_sum(buf + sizeof(*h), len - sizeof(*h)) == h->checksum;
}

static int
index_load_recs(struct md_state *s, const unsigned char *buf,
                const struct md_ihdr *h)
{
	const unsigned char *names = buf + sizeof(*h) +
	                             (size_t)h->nrec * sizeof(struct md_rec);
	struct md_rec r, *nr;
	uint32_t i;

	for (i = 0; i < h->nrec; i++) {
		memcpy(&r, buf + sizeof(*h) + i * sizeof(r), sizeof(r));
		if ((uint64_t)r.name_off + r.name_len > h->names_size ||
		    r.name_len == 0 || (i > 0 && r.uid <= s->recs[i - 1].uid))
			return -1;
		nr = state_add_owned(s, strndup((const char *)names +
		                                r.name_off, r.name_len));
		if (nr == NULL)
			return -1;
		*nr = r;
		nr->mark = 0;
	}
	return 0;
}

/*
 * Whether the header fields agree with the records: every UID below the
 * next UID (else the next message would reuse one, and a client cache
 * keyed by UID would show the wrong message), no record changed after
 * the highest mod-sequence (else CONDSTORE's CHANGEDSINCE would miss it),
 * and that one far from wrapping.
 * The files are checksummed, so this fails only on a bug or a forged file;
 * either way the state is not used.  The records are sorted by UID.
 */
static int
state_consistent(const struct md_state *s)
{
	uint32_t i;

	if (s->nextuid == 0 || s->highestmodseq > MD_MODSEQ_MAX ||
	    (s->nrec > 0 && s->recs[s->nrec - 1].uid >= s->nextuid))
		return 0;
	for (i = 0; i < s->nrec; i++)
		if (s->recs[i].modseq > s->highestmodseq)
			return 0;
	return 1;
}

/* ---- the change log --------------------------------------------------- */

/*
 * postern.index.log holds what changed since the index was written, so
 * that an append or a flag change writes a few hundred bytes instead of
 * the whole index: a header naming the index it follows (its checksum and
 * size), then entries, each with its own checksum.  A change is one or
 * more REC (a record, new or changed, and its file name) and EXPUNGE (the
 * UIDs gone) entries closed by a COMMIT entry (the header fields); only
 * changes with their COMMIT are replayed, so a torn tail (a crash in the
 * middle of a write) is ignored whole.
 */
#define MD_LOG_MAGIC 0x4c444d50u /* "PMDL" */
#define MD_LOG_VERSION 1u
#define MD_LOG_REC 1u
#define MD_LOG_EXPUNGE 2u
#define MD_LOG_COMMIT 3u
/* The index is rewritten whole once the log passes both a quarter of it
 * (replaying costs no more than a quarter of a read again) and this. */
#define MD_LOG_MIN (64 * 1024)

struct md_lhdr {
	uint32_t magic, version;
	uint32_t idx_sum, pad;
	uint64_t idx_size;
};

struct md_lent {
	uint32_t type, len; /* len: the payload after this */
	uint32_t sum, pad;  /* sum: of type, len and the payload */
};

struct md_lcommit {
	uint32_t uidvalidity, nextuid;
	uint64_t highestmodseq;
	uint32_t first_recent_uid, pad;
	int64_t new_mtime, cur_mtime;
	uint64_t uidlist_size;
};

/* A COMMIT entry's length: every change ends with one, so the state's
 * log_size is always just past one (or the log's header). */
#define MD_LOG_COMMIT_LEN (sizeof(struct md_lent) + sizeof(struct md_lcommit))

struct lbuf {
	unsigned char *p;
	size_t len, cap;
	int failed;
};

static int state_sort(struct md_state *s);

static uint32_t
lent_sum(const struct md_lent *e, const void *payload)
{
	uint32_t h = fnv1a(2166136261u, &e->type, sizeof(e->type));

	h = fnv1a(h, &e->len, sizeof(e->len));
	return fnv1a(h, payload, e->len);
}

static void
lbuf_put(struct lbuf *b, const void *p, size_t n)
{
	unsigned char *np;
	size_t ncap;

	if (b->failed || n == 0)
		return;
	if (b->len + n > b->cap) {
		for (ncap = b->cap * 2 + 4096; ncap < b->len + n; ncap *= 2)
			;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* One entry whose payload is a then b. */
static void
lbuf_entry(struct lbuf *b, uint32_t type, const void *a, size_t alen,
           const void *c, size_t clen)
{
	struct md_lent e = { .type = type, .len = alen + clen };
	size_t at = b->len;

	lbuf_put(b, &e, sizeof(e));
	lbuf_put(b, a, alen);
	lbuf_put(b, c, clen);
	if (b->failed)
		return;
	e.sum = lent_sum(&e, b->p + at + sizeof(e));
	memcpy(b->p + at, &e, sizeof(e));
}

/* The entries for what changed since the state was read. */
static int
log_entries(struct md_state *s, struct lbuf *b)
{
	struct md_lcommit c = { 0 };
	struct md_rec r;
	uint32_t i;

	for (i = 0; i < s->nrec; i++) {
		if (!(s->recs[i].mark & MD_MARK_CHANGED))
			continue;
		r = s->recs[i];
		r.mark = 0;
		r.name_off = 0;
		r.name_len = strlen(s->names[i]);
		lbuf_entry(b, MD_LOG_REC, &r, sizeof(r), s->names[i],
		           r.name_len);
	}
	if (s->ngone > 0)
		lbuf_entry(b, MD_LOG_EXPUNGE, s->gone,
		           s->ngone * sizeof(*s->gone), NULL, 0);
	c.uidvalidity = s->uidvalidity;
	c.nextuid = s->nextuid;
	c.highestmodseq = s->highestmodseq;
	c.first_recent_uid = s->first_recent_uid;
	c.new_mtime = s->new_mtime;
	c.cur_mtime = s->cur_mtime;
	c.uidlist_size = s->uidlist_size;
	lbuf_entry(b, MD_LOG_COMMIT, &c, sizeof(c), NULL, 0);
	return b->failed ? -1 : 0;
}

/*
 * Appends the changes to the log.  Called under the mailbox lock, like
 * every reader, so nobody sees a half-written entry but after a crash.
 *
 * No fsync, as the index had none: the index and its log are a cache of
 * what is durable elsewhere.  A message's file and its directory are
 * fsynced before, and its UID is in dovecot-uidlist, fdatasynced before
 * the log is written; flags are in the file names.  If a crash loses the
 * log's tail, the COMMIT that recorded the uid list's size is lost with
 * it, so the size the index knows differs from the list's and the next
 * refresh merges the list (UIDs kept); the directory mtimes recorded are
 * lost too, so new/ and cur/ are read again and renamed files found.
 */
static int
log_append(const char *dir, struct md_state *s, const struct lbuf *b)
{
	struct md_lhdr h = { 0 };
	struct md_lent last;
	struct stat sb;
	char path[4096];
	off_t at = (off_t)s->log_size;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_INDEX_LOG);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		md_log(POSTERN_LOG_ERROR, "open %s: %s", path,
		       strerror(errno));
		return -1;
	}
	if (at == 0) {
		/* A log for another index (or none): start it over. */
		h.magic = MD_LOG_MAGIC;
		h.version = MD_LOG_VERSION;
		h.idx_sum = s->idx_sum;
		h.idx_size = s->idx_size;
		if (ftruncate(fd, 0) < 0 ||
		    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
			rc = -1;
		at = sizeof(h);
	}
	/* Over a torn tail, if any; what stays after it is cut. */
	if (rc == 0 && (pwrite(fd, b->p, b->len, at) != (ssize_t)b->len ||
	                ftruncate(fd, at + (off_t)b->len) < 0 ||
	                fstat(fd, &sb) < 0))
		rc = -1;
	if (rc < 0)
		md_log(POSTERN_LOG_ERROR, "write %s: %s", path,
		       strerror(errno));
	else {
		/* Where the next refresh goes on reading, and what it checks
		 * is still there. */
		memcpy(&last, b->p + b->len - MD_LOG_COMMIT_LEN, sizeof(last));
		s->log_size = (uint64_t)at + b->len;
		s->log_ino = (uint64_t)sb.st_ino;
		s->log_last_sum = last.sum;
	}
	close(fd);
	return rc;
}

int
md_index_write(const char *dir, struct md_state *s)
{
	struct lbuf b = { 0 };
	uint64_t after;
	uint32_t i;
	int rc;

	if (s->full || s->idx_size == 0)
		rc = index_write_whole(dir, s);
	else if (log_entries(s, &b) < 0)
		rc = index_write_whole(dir, s);
	else {
		after = (s->log_size > 0 ? s->log_size :
		                           sizeof(struct md_lhdr)) + b.len;
		if (after > MD_LOG_MIN && after > s->idx_size / 4)
			rc = index_write_whole(dir, s); /* compaction */
		else if ((rc = log_append(dir, s, &b)) < 0)
			rc = index_write_whole(dir, s); /* it drops the log */
		else {
			for (i = 0; i < s->nrec; i++)
				s->recs[i].mark = 0;
			s->ngone = 0;
			s->dirty = 0;
		}
	}
	free(b.p);
	s->gen = md_state_gen(); /* it was written because it changed */
	if (rc < 0)
		s->loaded = 0; /* what is on disk is not this state */
	return rc;
}

/* Applies a REC entry: a new record, or one replacing its UID's. */
static int
replay_rec(struct md_state *s, const unsigned char *p, uint32_t len,
           int *sorted)
{
	struct md_rec r, *nr;
	char *name;
	long i;

	if (len <= sizeof(r))
		return -1;
	memcpy(&r, p, sizeof(r));
	if (r.uid == 0 || r.name_len != len - sizeof(r))
		return -1;
	if ((name = strndup((const char *)p + sizeof(r), r.name_len)) == NULL)
		return -1;
	r.mark = 0;
	if (!*sorted && state_sort(s) < 0) {
		free(name);
		return -1;
	}
	*sorted = 1;
	if ((i = md_state_find(s, r.uid)) >= 0) {
		free(s->names[i]);
		s->names[i] = name;
		s->recs[i] = r;
		return 0;
	}
	if ((nr = state_add_owned(s, name)) == NULL)
		return -1;
	if (s->nrec > 1 && r.uid < s->recs[s->nrec - 2].uid)
		*sorted = 0;
	*nr = r;
	return 0;
}

/* Applies an EXPUNGE entry: marks the records, dropped at the end. */
static int
replay_expunge(struct md_state *s, const unsigned char *p, uint32_t len,
               int *sorted)
{
	uint32_t uid, k;
	long i;

	if (len % sizeof(uid) != 0)
		return -1;
	if (!*sorted && state_sort(s) < 0)
		return -1;
	*sorted = 1;
	for (k = 0; k < len / sizeof(uid); k++) {
		memcpy(&uid, p + k * sizeof(uid), sizeof(uid));
		if ((i = md_state_find(s, uid)) >= 0)
			s->recs[i].mark |= MD_MARK_GONE;
	}
	return 0;
}

static void
replay_commit(struct md_state *s, const unsigned char *p)
{
	struct md_lcommit c;

	memcpy(&c, p, sizeof(c));
	s->nextuid = c.nextuid;
	s->highestmodseq = c.highestmodseq;
	s->first_recent_uid = c.first_recent_uid;
	s->new_mtime = c.new_mtime;
	s->cur_mtime = c.cur_mtime;
	s->uidlist_size = c.uidlist_size;
}

/* Where the entries from `start` in buf end, up to the last whole change,
 * entries checked. */
static size_t
log_valid_end(const struct md_state *s, const unsigned char *buf, size_t len,
              size_t start)
{
	struct md_lcommit c;
	struct md_lent e;
	size_t off = start, end = off;

	while (len - off >= sizeof(e)) {
		memcpy(&e, buf + off, sizeof(e));
		if (e.type < MD_LOG_REC || e.type > MD_LOG_COMMIT ||
		    e.len > len - off - sizeof(e) ||
		    lent_sum(&e, buf + off + sizeof(e)) != e.sum)
			break;
		if (e.type == MD_LOG_COMMIT) {
			if (e.len != sizeof(c))
				break;
			memcpy(&c, buf + off + sizeof(e), sizeof(c));
			if (c.uidvalidity != s->uidvalidity)
				break;
		}
		off += sizeof(e) + e.len;
		if (e.type == MD_LOG_COMMIT)
			end = off;
	}
	return end;
}

/* Applies the whole changes in buf from `start` (buf holds the log from
 * file offset `base`): 0, or -1 on a bad entry (logged). */
static int
log_apply(const char *path, struct md_state *s, const unsigned char *buf,
          size_t len, size_t start, uint64_t base)
{
	struct md_lent e;
	size_t off, end = log_valid_end(s, buf, len, start);
	uint32_t i, k;
	int sorted = 1, rc = 0, gone = 0;

	for (off = start; off < end; off += sizeof(e) + e.len) {
		memcpy(&e, buf + off, sizeof(e));
		if (e.type == MD_LOG_REC)
			rc = replay_rec(s, buf + off + sizeof(e), e.len,
			                &sorted);
		else if (e.type == MD_LOG_EXPUNGE) {
			rc = replay_expunge(s, buf + off + sizeof(e), e.len,
			                    &sorted);
			gone = 1;
		} else
			replay_commit(s, buf + off + sizeof(e));
		if (rc < 0)
			break;
	}
	if (rc == 0 && !sorted)
		rc = state_sort(s);
	for (i = k = 0; gone && i < s->nrec; i++) {
		if (s->recs[i].mark & MD_MARK_GONE) {
			free(s->names[i]);
			continue;
		}
		s->recs[k] = s->recs[i];
		s->names[k++] = s->names[i];
	}
	if (gone)
		s->nrec = k;
	if (rc == 0 && end > start && !state_consistent(s)) {
		md_log(POSTERN_LOG_WARNING, "replay %s: a record's UID is not "
		       "below the next UID (%u), or a mod-sequence is past "
		       "the highest or near wrapping", path, s->nextuid);
		off = end;
		rc = -1;
	}
	if (rc < 0) {
		md_log(POSTERN_LOG_WARNING, "replay %s: bad entry at offset "
		       "%llu", path, (unsigned long long)(base + off));
		return -1;
	}
	s->log_size = base + end;
	if (end > start) {
		s->gen = md_state_gen();
		memcpy(&e, buf + end - MD_LOG_COMMIT_LEN, sizeof(e));
		s->log_last_sum = e.sum;
	}
	return 0;
}

/* The log from file offset `from` to `size`; NULL with errno set. */
static unsigned char *
log_read_from(int fd, uint64_t from, uint64_t size, size_t *len)
{
	unsigned char *buf;
	size_t want = size - from, got = 0;
	ssize_t r = 0;

	if ((buf = malloc(want + 1)) == NULL)
		return NULL;
	while (got < want &&
	       (r = pread(fd, buf + got, want - got, from + got)) > 0)
		got += (size_t)r;
	if (r < 0) {
		free(buf);
		return NULL;
	}
	*len = got;
	return buf;
}

/* Whether buf starts with the COMMIT entry whose checksum is `sum`. */
static int
log_commit_at(const unsigned char *buf, size_t len, uint32_t sum)
{
	struct md_lent e;

	if (len < MD_LOG_COMMIT_LEN)
		return 0;
	memcpy(&e, buf, sizeof(e));
	return e.type == MD_LOG_COMMIT && e.sum == sum &&
	       e.len == sizeof(struct md_lcommit) &&
	       lent_sum(&e, buf + sizeof(e)) == sum;
}

/*
 * Replays the log over the state.  With log_size 0 (an index just read
 * whole) the whole log, when its header names that index.  Otherwise the
 * state is in step with the log up to log_size: only what follows is
 * read, once the log is checked to be the one read then (same inode and
 * header, no shorter, the COMMIT ending at log_size still there).
 * Returns 0, 1 when it is not (the index must be read again whole), or
 * -1 (logged).
 */
static int
log_replay(const char *dir, struct md_state *s)
{
	char path[4096];
	unsigned char *buf;
	struct md_lhdr h;
	struct stat sb;
	uint64_t from = sizeof(h);
	size_t len, skip = 0;
	int fd, rc, tail = s->log_size > 0;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_INDEX_LOG);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return tail;
		md_log(POSTERN_LOG_ERROR, "open %s: %s", path,
		       strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		md_log(POSTERN_LOG_ERROR, "fstat %s: %s", path,
		       strerror(errno));
		close(fd);
		return -1;
	}
	rc = tail;
	if (tail && ((uint64_t)sb.st_ino != s->log_ino ||
	             (uint64_t)sb.st_size < s->log_size ||
	             s->log_size < sizeof(h)))
		goto done; /* another log, or cut: not the one we followed */
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    h.magic != MD_LOG_MAGIC || h.version != MD_LOG_VERSION ||
	    h.idx_sum != s->idx_sum || h.idx_size != s->idx_size)
		goto done; /* it follows another index: ignored */
	if (tail && s->log_size > sizeof(h)) {
		from = s->log_size - MD_LOG_COMMIT_LEN;
		skip = MD_LOG_COMMIT_LEN;
	}
	if ((buf = log_read_from(fd, from, (uint64_t)sb.st_size, &len)) ==
	    NULL) {
		md_log(POSTERN_LOG_ERROR, "read %s: %s", path,
		       strerror(errno));
		close(fd);
		return -1;
	}
	if (skip > 0 && !log_commit_at(buf, len, s->log_last_sum))
		rc = 1; /* rewritten since */
	else {
		if (!tail)
			s->log_size = sizeof(h);
		s->log_ino = (uint64_t)sb.st_ino;
		rc = log_apply(path, s, buf, len, skip, from);
		if (rc < 0 && tail)
			rc = 1; /* a full read decides what to rebuild */
	}
	free(buf);
done:
	close(fd);
	return rc;
}

/*
 * Brings the state in step with the index and its log: 0 loaded, 1
 * absent, -1 corrupt (logged).  A state that was in step before (loaded,
 * nothing unwritten) whose index is still the same file reads only the
 * log's new entries; anything else reads both whole, into a fresh state,
 * as the first refresh of a mailbox does.
 */
static int
index_read(const char *dir, struct md_state *s)
{
	char path[4096];
	unsigned char *buf;
	struct md_ihdr h;
	struct stat sb;
	size_t len;
	int rc = 0;

	if (s->loaded && !s->dirty && index_same(dir, s, 0)) {
		s->full = 0;
		s->ngone = 0;
		if (log_replay(dir, s) == 0)
			return 0;
	}
	md_state_free(s);
	snprintf(path, sizeof(path), "%s/%s", dir, MD_INDEX);
	if ((buf = read_whole(path, &len, &sb)) == NULL)
		return errno == ENOENT ? 1 : -1;
	if (!index_valid(buf, len, &h) || (s->uidvalidity = h.uidvalidity,
	                                   index_load_recs(s, buf, &h)) < 0) {
		md_log(POSTERN_LOG_WARNING, "%s: corrupt or truncated index "
		       "(%zu bytes), rebuilding it", path, len);
		state_clear_recs(s);
		rc = -1;
	} else {
		s->nextuid = h.nextuid;
		s->highestmodseq = h.highestmodseq;
		s->first_recent_uid = h.first_recent_uid;
		s->new_mtime = h.new_mtime;
		s->cur_mtime = h.cur_mtime;
		s->uidlist_size = h.uidlist_size;
		s->idx_size = len;
		s->idx_sum = h.checksum;
		s->idx_dev = (uint64_t)sb.st_dev;
		s->idx_ino = (uint64_t)sb.st_ino;
		s->idx_ctime = stat_ctime(&sb);
		s->gen = md_state_gen();
		if (!state_consistent(s)) {
			md_log(POSTERN_LOG_WARNING, "%s: a record's UID is not "
			       "below the next UID (%u), or a mod-sequence is "
			       "past the highest or near wrapping; rebuilding "
			       "the index", path,
			       s->nextuid);
			state_forget(s);
			rc = -1;
		} else if (log_replay(dir, s) < 0) {
			md_log(POSTERN_LOG_WARNING, "%s: unusable change log, "
			       "rebuilding the index", path);
			state_forget(s);
			rc = -1;
		}
	}
	free(buf);
	return rc;
}

/* ---- scanning new/ and cur/ ------------------------------------------- */

struct found {
	char *name;
	int in_new;
};

struct scan {
	uint32_t *table; /* base hash -> record index + 1 */
	uint32_t mask;
	unsigned char *seen;
	struct found *f;
	size_t nf, capf;
};

static uint32_t
base_hash(const char *name)
{
	return fnv1a(2166136261u, name, md_base_len(name));
}

/* Whether file name `a` has the base `b` (its first blen octets): the
 * lookups of a scan measure the name looked for once, not each
 * candidate (a readdir of 100,000 files makes as many lookups). */
static int
has_base(const char *a, const char *b, size_t blen)
{
	return strncmp(a, b, blen) == 0 && (a[blen] == ':' || a[blen] == '\0');
}

/* An open-addressing table of names[0..n) by base name: slot h holds an
 * index + 1, 0 when empty; probe from the base's hash & *mask on.  Used by
 * the scan (the records' names) and the rebuild (the uid list's). */
static uint32_t *
base_table(char *const *names, size_t n, uint32_t *mask)
{
	uint32_t size = 64, h, *slot;
	size_t i;

	while (size < n * 2)
		size *= 2;
	*mask = size - 1;
	if ((slot = calloc(size, sizeof(*slot))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		for (h = base_hash(names[i]) & *mask; slot[h] != 0;)
			h = (h + 1) & *mask;
		slot[h] = (uint32_t)i + 1;
	}
	return slot;
}

static int
scan_table(struct scan *sc, const struct md_state *s)
{
	sc->table = base_table(s->names, s->nrec, &sc->mask);
	sc->seen = calloc(s->nrec + 1, 1);
	return sc->table == NULL || sc->seen == NULL ? -1 : 0;
}

static long
scan_lookup(const struct scan *sc, const struct md_state *s,
            const char *name)
{
	size_t blen = md_base_len(name);
	uint32_t h;

	for (h = fnv1a(2166136261u, name, blen) & sc->mask; sc->table[h] != 0;
	     h = (h + 1) & sc->mask)
		if (has_base(s->names[sc->table[h] - 1], name, blen))
			return (long)sc->table[h] - 1;
	return -1;
}

/* A record's file was renamed (flags changed by someone else). */
static int
rec_renamed(struct md_state *s, uint32_t i, const char *name, int in_new)
{
	char *copy = strdup(name);
	uint32_t flags, kw;

	if (copy == NULL)
		return -1;
	free(s->names[i]);
	s->names[i] = copy;
	md_name_flags(name, &flags, &kw);
	if (in_new)
		flags |= MD_REC_NEW;
	if ((s->recs[i].flags & ~0x20u) != flags || s->recs[i].kw != kw) {
		s->recs[i].flags = flags;
		s->recs[i].kw = kw;
		s->recs[i].modseq = ++s->highestmodseq;
	}
	md_rec_touch(s, i);
	s->dirty = 1;
	return 0;
}

static int
scan_one(struct scan *sc, struct md_state *s, const char *name, int in_new)
{
	struct found *nf;
	long i = scan_lookup(sc, s, name);

	if (i >= 0) {
		if (sc->seen[i] && in_new)
			return 0; /* caught mid-rename: cur/ wins */
		sc->seen[i] = 1;
		if (strcmp(s->names[i], name) == 0 &&
		    !!(s->recs[i].flags & MD_REC_NEW) == in_new)
			return 0;
		return rec_renamed(s, i, name, in_new);
	}
	if (sc->nf == sc->capf) {
		sc->capf = sc->capf * 2 + 64;
		if ((nf = realloc(sc->f, sc->capf * sizeof(*nf))) == NULL)
			return -1;
		sc->f = nf;
	}
	if ((sc->f[sc->nf].name = strdup(name)) == NULL)
		return -1;
	sc->f[sc->nf++].in_new = in_new;
	return 0;
}

static int
scan_dir(const char *dir, const char *sub, struct scan *sc,
         struct md_state *s)
{
	char path[4096];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL) {
		md_log(POSTERN_LOG_ERROR, "opendir %s: %s", path,
		       strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			rc = scan_one(sc, s, de->d_name, sub[0] == 'n');
	closedir(d);
	return rc;
}

static int
found_cmp(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->name,
	              ((const struct found *)b)->name);
}

/* Adds a file found on disk with UID `uid`. */
static int
add_found(const char *dir, struct md_state *s, const struct found *f,
          uint32_t uid)
{
	char path[8192];
	struct md_rec *r;
	uint32_t flags, kw;

	if (uid == 0 || uid == UINT32_MAX) {
		/* the next UID would wrap to 0 and UIDs repeat: a corrupt
		 * index or log, or UIDs used up (RFC 3501 then wants a new
		 * UIDVALIDITY) */
		md_log(POSTERN_LOG_ERROR, "%s: no UID left for %s (next UID "
		       "%u): the index is corrupt or the UIDs are used up",
		       dir, f->name, uid);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s/%s", dir,
	         f->in_new ? "new" : "cur", f->name);
	if ((r = md_state_add(s, f->name)) == NULL)
		return -1;
	md_name_flags(f->name, &flags, &kw);
	r->uid = uid;
	r->flags = flags | (f->in_new ? MD_REC_NEW : 0);
	r->kw = kw;
	r->modseq = ++s->highestmodseq;
	if (md_file_info(path, f->name, r) < 0) {
		/* Gone between readdir and stat: an expunge raced us. */
		free(s->names[--s->nrec]);
		return 0;
	}
	if (uid >= s->nextuid)
		s->nextuid = uid + 1;
	s->dirty = 1;
	return 0;
}

/* The uid list by base name, for a rebuild that meets every file of a
 * large mailbox: a linear search per file would make it quadratic. */
struct ul_table {
	uint32_t mask;
	uint32_t *slot;      /* line index + 1, 0 empty */
	unsigned char *used; /* a file already took this line's UID */
};

static int
ul_table_build(struct ul_table *t, const struct md_uidlist *ul)
{
	memset(t, 0, sizeof(*t));
	if (ul == NULL)
		return 0;
	t->slot = base_table(ul->bases, ul->n, &t->mask);
	t->used = calloc(ul->n + 1, 1);
	return t->slot == NULL || t->used == NULL ? -1 : 0;
}

static void
ul_table_free(struct ul_table *t)
{
	free(t->slot);
	free(t->used);
}

/* The UID the uid list gives `name`, once: a second file with the same
 * base (a crash between link and unlink) gets a fresh UID instead. */
static uint32_t
ul_take(struct ul_table *t, const struct md_uidlist *ul, const char *name)
{
	size_t blen = md_base_len(name);
	uint32_t h, line;

	if (t->slot == NULL)
		return 0;
	for (h = fnv1a(2166136261u, name, blen) & t->mask; t->slot[h] != 0;
	     h = (h + 1) & t->mask) {
		line = t->slot[h] - 1;
		if (!has_base(ul->bases[line], name, blen))
			continue;
		if (t->used[line])
			return 0;
		t->used[line] = 1;
		return ul->uids[line];
	}
	return 0;
}

/* md_state_find over the first `n` records only (sorted by UID). */
static int
uid_known(const struct md_state *s, uint32_t n, uint32_t uid)
{
	long lo = 0, hi = (long)n - 1, mid;

	while (lo <= hi) {
		mid = (lo + hi) / 2;
		if (s->recs[mid].uid == uid)
			return 1;
		if (s->recs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}

struct sort_item {
	struct md_rec r;
	char *name;
};

static int
item_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct sort_item *)a)->r.uid;
	uint32_t y = ((const struct sort_item *)b)->r.uid;

	return x < y ? -1 : x > y;
}

static int
state_sort(struct md_state *s)
{
	struct sort_item *it;
	uint32_t i;

	if (s->nrec < 2)
		return 0;
	if ((it = malloc(s->nrec * sizeof(*it))) == NULL)
		return -1;
	for (i = 0; i < s->nrec; i++) {
		it[i].r = s->recs[i];
		it[i].name = s->names[i];
	}
	qsort(it, s->nrec, sizeof(*it), item_cmp);
	for (i = 0; i < s->nrec; i++) {
		s->recs[i] = it[i].r;
		s->names[i] = it[i].name;
	}
	free(it);
	return 0;
}

/* Gives the new files UIDs: the uid list's when it knows them, fresh
 * ones (appended to the list) otherwise. */
static int
assign_uids(const char *dir, struct md_state *s, struct scan *sc,
            const struct md_uidlist *ul)
{
	struct ul_table t;
	uint32_t uid, first_fresh, known = s->nrec;
	size_t i;
	int rc = 0;

	if (sc->nf == 0)
		return 0;
	if (ul_table_build(&t, ul) < 0) {
		ul_table_free(&t);
		return -1;
	}
	qsort(sc->f, sc->nf, sizeof(*sc->f), found_cmp);
	/* Records before `known` are sorted by UID; those added here are
	 * not yet, but each uid list line is taken at most once. */
	for (i = 0; rc == 0 && i < sc->nf; i++)
		if ((uid = ul_take(&t, ul, sc->f[i].name)) != 0 &&
		    !uid_known(s, known, uid)) {
			rc = add_found(dir, s, &sc->f[i], uid);
			sc->f[i].in_new |= 2; /* done */
		}
	ul_table_free(&t);
	if (rc == 0 && state_sort(s) < 0)
		rc = -1;
	first_fresh = s->nrec;
	for (i = 0; rc == 0 && i < sc->nf; i++)
		if (!(sc->f[i].in_new & 2))
			rc = add_found(dir, s, &sc->f[i], s->nextuid);
	if (rc == 0)
		rc = md_uidlist_append(dir, s, first_fresh);
	return rc;
}

static void
scan_free(struct scan *sc)
{
	size_t i;

	for (i = 0; i < sc->nf; i++)
		free(sc->f[i].name);
	free(sc->f);
	free(sc->table);
	free(sc->seen);
}

/* Notes an expunged UID for the change log; without memory for it the
 * index is rewritten whole instead. */
static void
state_gone(struct md_state *s, uint32_t uid)
{
	uint32_t *ng, ncap;

	if (s->full)
		return;
	if (s->ngone == s->capgone) {
		ncap = s->capgone * 2 + 64;
		if ((ng = realloc(s->gone, ncap * sizeof(*ng))) == NULL) {
			s->full = 1;
			return;
		}
		s->gone = ng;
		s->capgone = ncap;
	}
	s->gone[s->ngone++] = uid;
}

void
md_state_keep(struct md_state *s, const unsigned char *seen)
{
	uint32_t i, k = 0;

	for (i = 0; i < s->nrec; i++) {
		if (!seen[i]) {
			state_gone(s, s->recs[i].uid);
			free(s->names[i]);
			s->dirty = 1;
			continue;
		}
		s->recs[k] = s->recs[i];
		s->names[k++] = s->names[i];
	}
	s->nrec = k;
}

#define SCAN_NEW 0x1
#define SCAN_CUR 0x2
#define SCAN_KEEP 0x4 /* a file not found stays (it may be in cur/) */

/* Matches the records with the files in new/ and cur/ (those of `which`;
 * the records of a directory not read are taken as they are).  Returns
 * 1 when SCAN_KEEP kept records whose files were not found. */
static int
scan(const char *dir, struct md_state *s, const struct md_uidlist *ul,
     int which)
{
	struct scan sc = { 0 };
	uint32_t i;
	int rc, in_new, missing = 0;

	rc = scan_table(&sc, s);
	for (i = 0; rc == 0 && i < s->nrec; i++) {
		in_new = !!(s->recs[i].flags & MD_REC_NEW);
		if (!(which & (in_new ? SCAN_NEW : SCAN_CUR)))
			sc.seen[i] = 1;
	}
	if (rc == 0 && (which & SCAN_CUR))
		rc = scan_dir(dir, "cur", &sc, s);
	if (rc == 0 && (which & SCAN_NEW))
		rc = scan_dir(dir, "new", &sc, s);
	if (rc == 0 && !(which & SCAN_KEEP))
		md_state_keep(s, sc.seen); /* the rest: expunged elsewhere */
	for (i = 0; rc == 0 && (which & SCAN_KEEP) && i < s->nrec; i++)
		if (!sc.seen[i])
			missing = 1;
	if (rc == 0)
		rc = assign_uids(dir, s, &sc, ul);
	scan_free(&sc);
	return rc < 0 ? -1 : missing;
}

/* ---- refresh ---------------------------------------------------------- */

static int64_t
mtime_ns(const char *dir, const char *sub)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (stat(path, &sb) < 0)
		return -1;
	return (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

/* A directory changed less than two seconds ago may change again within
 * the same timestamp: such an mtime is not trusted next time. */
static int64_t
trusted(int64_t mt)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec - mt <
	    2000000000LL)
		return 0;
	return mt;
}

/* Modseqs of a mailbox whose index was lost start above any it can have
 * given before: microseconds since the epoch times 1024 (a billion
 * changes a second, below 2^63, CONDSTORE's limit, until 2255). */
static uint64_t
modseq_floor(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return ((uint64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000) << 10;
}

#define MD_UIDVALIDITY "postern-uidvalidity"

/* A new mailbox's UIDVALIDITY: the time, but above any this user's
 * Maildir gave before (kept in MD_UIDVALIDITY at its top), so that a
 * mailbox deleted and created again in the same second still gets
 * another one (RFC 3501 2.3.1.1).  Without that file: the time. */
static uint32_t
new_uidvalidity(const char *dir)
{
	const char *base = strrchr(dir, '/');
	char path[8192], num[16];
	uint32_t v = (uint32_t)time(NULL), last;
	ssize_t n;
	int fd;

	/* INBOX is the Maildir's top; a folder ".A.B" lies in it. */
	base = base != NULL ? base + 1 : dir;
	if (base[0] == '.')
		snprintf(path, sizeof(path), "%.*s" MD_UIDVALIDITY,
		         (int)(base - dir), dir);
	else
		snprintf(path, sizeof(path), "%s/" MD_UIDVALIDITY, dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		md_log(POSTERN_LOG_WARNING, "%s: %s", path, strerror(errno));
		return v;
	}
	if (flock(fd, LOCK_EX) == 0 &&
	    (n = pread(fd, num, sizeof(num) - 1, 0)) >= 0) {
		num[n] = '\0';
		last = (uint32_t)strtoul(num, NULL, 10);
		if (last >= v && last < UINT32_MAX)
			v = last + 1;
		n = snprintf(num, sizeof(num), "%u\n", v);
		if (pwrite(fd, num, (size_t)n, 0) != n ||
		    ftruncate(fd, n) < 0)
			md_log(POSTERN_LOG_WARNING, "%s: %s", path,
			       strerror(errno));
	}
	close(fd);
	return v;
}

/* Where the UIDs come from when the index cannot say. */
static void
rebuild_origin(const char *dir, struct md_state *s, int had_index, int urc,
               const struct md_uidlist *ul)
{
	if (urc == 0 && (ul->uidvalidity != s->uidvalidity || !had_index)) {
		state_clear_recs(s); /* another list: records mean nothing */
		s->uidvalidity = ul->uidvalidity;
		s->nextuid = ul->nextuid > 0 ? ul->nextuid : 1;
		if (had_index)
			md_log(POSTERN_LOG_WARNING, "%s: %s has a new "
			       "UIDVALIDITY %u, rebuilding the index", dir,
			       MD_UIDLIST, ul->uidvalidity);
	} else if (urc != 0 && !had_index) {
		s->uidvalidity = new_uidvalidity(dir);
		s->nextuid = 1;
		if (urc < 0)
			md_log(POSTERN_LOG_WARNING, "%s: %s unusable, new "
			       "UIDVALIDITY %u", dir, MD_UIDLIST,
			       s->uidvalidity);
	}
	if (urc == 0 && ul->nextuid > s->nextuid)
		s->nextuid = ul->nextuid;
	/* A uid list without an index: a used mailbox lost its index. */
	if (!had_index && urc != 1 && s->highestmodseq < modseq_floor())
		s->highestmodseq = modseq_floor();
	if (s->first_recent_uid == 0)
		s->first_recent_uid = 1;
}

/* The index is gone or bad, or the uid list changed under us: UIDs come
 * from the list; without one, they start over (new UIDVALIDITY). */
static int
rebuild(const char *dir, struct md_state *s, int had_index)
{
	struct md_uidlist ul;
	int rc, urc = md_uidlist_read(dir, &ul);
	uint32_t i;

	rebuild_origin(dir, s, had_index, urc, &ul);
	for (i = 0; i < s->nrec; i++)
		if (s->recs[i].modseq > s->highestmodseq)
			s->highestmodseq = s->recs[i].modseq;
	rc = scan(dir, s, urc == 0 ? &ul : NULL, SCAN_NEW | SCAN_CUR);
	/* The list must hold what we now know, in our order. */
	if (rc == 0 && (urc != 0 || ul.torn))
		rc = md_uidlist_rewrite(dir, s);
	if (rc == 0 && !had_index && s->nrec > 0)
		md_log(POSTERN_LOG_NOTICE, "%s: index rebuilt: %u messages, "
		       "%s", dir, s->nrec, urc == 0 ? "UIDs kept from "
		       MD_UIDLIST : "new UIDs");
	s->dirty = 1;
	s->full = 1; /* the log would repeat most of the index */
	md_uidlist_free(&ul);
	return rc;
}

static int
uidlist_size(const char *dir, uint64_t *size)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_UIDLIST);
	if (stat(path, &sb) < 0)
		return -1;
	*size = (uint64_t)sb.st_size;
	return 0;
}

/* Moves new/ files into cur/ ("first seen"), as a read-write view does.
 * Returns 1 when no record is left in new/. */
static int
move_new(const char *dir, struct md_state *s)
{
	char from[8192], to[8192], *name;
	uint32_t i;
	int none = 1;

	for (i = 0; i < s->nrec; i++) {
		if (!(s->recs[i].flags & MD_REC_NEW))
			continue;
		none = 0;
		name = md_name_make(s->names[i], s->recs[i].flags,
		                    s->recs[i].kw);
		if (name == NULL)
			continue;
		snprintf(from, sizeof(from), "%s/new/%s", dir, s->names[i]);
		snprintf(to, sizeof(to), "%s/cur/%s", dir, name);
		if (rename(from, to) == 0) {
			free(s->names[i]);
			s->names[i] = name;
			s->recs[i].flags &= ~MD_REC_NEW;
			md_rec_touch(s, i);
			s->dirty = 1;
		} else
			free(name);
	}
	return none;
}

static int
refresh(const char *dir, struct md_state *s, unsigned how)
{
	int64_t nm, cm;
	uint64_t ulsize;
	int irc, rc = 0, ulrc, nonew = 0;
	int light = !!(how & MD_REFRESH_LIGHT);

	irc = index_read(dir, s);
	md_keywords_read(dir, s);
	nm = mtime_ns(dir, "new");
	cm = mtime_ns(dir, "cur");
	if (nm < 0 || cm < 0) {
		md_log(POSTERN_LOG_ERROR, "%s: new/ or cur/ is missing", dir);
		return -1;
	}
	ulrc = uidlist_size(dir, &ulsize);
	if (irc != 0 || ulrc < 0 || ulsize != s->uidlist_size) {
		/* The list as read now; rebuild's own writes to it update
		 * this.  Without it every later refresh would merge again. */
		s->uidlist_size = ulrc == 0 ? ulsize : 0;
		rc = rebuild(dir, s, irc == 0);
	}
	else if (light) {
		/* Adding a message reads no directory: a delivery into a
		 * mailbox nobody reads would otherwise read all of new/ each
		 * time.  What other programs put in new/ or cur/ gets its UID
		 * from the next full refresh, after ours (UIDs follow
		 * discovery, as in Dovecot).  Both recorded mtimes stay, so
		 * that refresh reads both directories. */
		nm = s->new_mtime;
		cm = s->cur_mtime;
	} else if (nm != s->new_mtime || cm != s->cur_mtime)
		rc = scan(dir, s, NULL, (nm != s->new_mtime ? SCAN_NEW : 0) |
		                        (cm != s->cur_mtime ? SCAN_CUR : 0));
	if (rc < 0)
		return -1;
	/* Compared as stored: an mtime that stays untrusted (0) is no
	 * change, so concurrent syncs do not rewrite the index for it (and
	 * wake each other's watches). */
	if (!light) {
		nm = trusted(nm);
		cm = trusted(cm);
	}
	if (nm != s->new_mtime || cm != s->cur_mtime) {
		s->new_mtime = nm;
		s->cur_mtime = cm;
		s->dirty = 1;
	}
	/* Records reach new/ only by being read, replayed or written,
	 * each of which gives the state a new gen: with the gen at which
	 * none was left, the pass over every record is skipped. */
	if ((how & MD_REFRESH_RW) && (s->nonew_gen == 0 ||
	                              s->nonew_gen != s->gen))
		nonew = move_new(dir, s);
	if (s->dirty && md_index_write(dir, s) < 0)
		return -1;
	if (nonew)
		s->nonew_gen = s->gen;
	return 0;
}

/* ---- the cheap check: has anything changed? ---------------------------- */

/* The log is the one the state followed, ending where it stopped: same
 * inode and length, its header naming the index, the COMMIT read last
 * still at its end (log_replay's tests; a longer log has news). */
static int
log_unchanged(const char *dir, const struct md_state *s)
{
	unsigned char last[MD_LOG_COMMIT_LEN];
	char path[4096];
	struct md_lhdr h;
	struct stat sb;
	int fd, same;

	snprintf(path, sizeof(path), "%s/%s", dir, MD_INDEX_LOG);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return errno == ENOENT && s->log_size == 0;
	same = s->log_size >= sizeof(h) && fstat(fd, &sb) == 0 &&
	       (uint64_t)sb.st_ino == s->log_ino &&
	       (uint64_t)sb.st_size == s->log_size &&
	       pread_all(fd, &h, sizeof(h), 0, 1) == 0 &&
	       h.magic == MD_LOG_MAGIC && h.version == MD_LOG_VERSION &&
	       h.idx_sum == s->idx_sum && h.idx_size == s->idx_size &&
	       (s->log_size == sizeof(h) ||
	        (s->log_size >= sizeof(h) + sizeof(last) &&
	         pread_all(fd, last, sizeof(last),
	                   s->log_size - sizeof(last), 1) == 0 &&
	         log_commit_at(last, sizeof(last), s->log_last_sum)));
	close(fd);
	return same;
}

/* What refresh() would find, less the keywords file (names only: no
 * record changes with it).  The directories' mtimes are compared as
 * stored, so one changed less than two seconds before the last refresh
 * (stored 0, untrusted) always counts as changed. */
int
md_state_unchanged(const char *dir, const struct md_state *s)
{
	uint64_t ulsize;

	if (!s->loaded || s->dirty || s->gen == 0 || s->new_mtime <= 0 ||
	    s->cur_mtime <= 0)
		return 0;
	return mtime_ns(dir, "new") == s->new_mtime &&
	       mtime_ns(dir, "cur") == s->cur_mtime &&
	       uidlist_size(dir, &ulsize) == 0 && ulsize == s->uidlist_size &&
	       index_same(dir, s, 1) && log_unchanged(dir, s);
}

int
md_refresh(const char *dir, struct md_state *s, unsigned how)
{
	int rc = refresh(dir, s, how);

	/* After a failure part of the state may be unwritten or half
	 * read: the next refresh reads everything again. */
	s->loaded = rc == 0;
	return rc;
}
