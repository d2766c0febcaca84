/*
 * maildir_urlauth.c - URLAUTH mailbox access keys (RFC 4467, storage
 * 1.6 access_key).
 *
 * A user's keys are one file at the top of the Maildir,
 * MD_URLAUTH_KEYS, a line per mailbox:
 *
 *     <uidvalidity> <key, 64 hex digits> <mailbox name, UTF-8>
 *
 * mode 0600, replaced whole (temporary file, fsync, rename) under the
 * flock of MD_URLAUTH_LOCK, so a reader sees the old set or the new.
 * The UIDVALIDITY ties a key to one incarnation of the mailbox: after
 * a DELETE and CREATE, or a RENAME onto the name, the mailbox has
 * another UIDVALIDITY and the old key (and every URL made with it)
 * means nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"

#define MD_URLAUTH_KEYS "postern-urlauth-keys"
#define MD_URLAUTH_LOCK "postern-urlauth-keys.lock"
/* More than any user has mailboxes; a larger file is not read. */
#define MD_URLAUTH_MAX_FILE (4u << 20)

struct key_line {
	uint32_t uidvalidity;
	unsigned char key[POSTERN_ACCESS_KEY_LEN];
	char *name;
};

struct key_set {
	struct key_line *v;
	size_t n, cap;
};

static void
keys_free(struct key_set *ks)
{
	size_t i;

	for (i = 0; i < ks->n; i++) {
		explicit_bzero(ks->v[i].key, sizeof(ks->v[i].key));
		free(ks->v[i].name);
	}
	free(ks->v);
	memset(ks, 0, sizeof(*ks));
}

/* The value of a lower-case hex digit (as keys_fill writes them). */
static int
hex_digit(int c)
{
	static const char digits[] = "0123456789abcdef";
	const char *p = c != '\0' ? strchr(digits, c) : NULL;

	return p != NULL ? (int)(p - digits) : -1;
}

/* Appends a line taking `name` (malloc'd, freed on failure). */
static struct key_line *
keys_push(struct key_set *ks, uint32_t uidvalidity, char *name)
{
	struct key_line *nv;
	size_t cap;

	if (ks->n == ks->cap) {
		cap = ks->cap > 0 ? ks->cap * 2 : 16;
		if ((nv = realloc(ks->v, cap * sizeof(*nv))) == NULL) {
			free(name);
			return NULL;
		}
		ks->v = nv;
		ks->cap = cap;
	}
	nv = &ks->v[ks->n++];
	memset(nv, 0, sizeof(*nv));
	nv->uidvalidity = uidvalidity;
	nv->name = name;
	return nv;
}

/* One line into ks; a malformed one is skipped (and logged). */
static int
keys_add_line(struct key_set *ks, const char *path, const char *line)
{
	unsigned char key[POSTERN_ACCESS_KEY_LEN];
	struct key_line *kl;
	const char *p;
	char *end, *name;
	size_t i;
	unsigned long v;
	int hi, lo;

	v = strtoul(line, &end, 10);
	if (end == line || *end != ' ' || v == 0 || v > UINT32_MAX)
		goto bad;
	p = end + 1;
	for (i = 0; i < POSTERN_ACCESS_KEY_LEN; i++) {
		if ((hi = hex_digit(p[2 * i])) < 0 ||
		    (lo = hex_digit(p[2 * i + 1])) < 0)
			goto bad;
		key[i] = (unsigned char)(hi * 16 + lo);
	}
	p += 2 * POSTERN_ACCESS_KEY_LEN;
	if (*p != ' ' || p[1] == '\0')
		goto bad;
	if ((name = strdup(p + 1)) == NULL ||
	    (kl = keys_push(ks, (uint32_t)v, name)) == NULL) {
		explicit_bzero(key, sizeof(key));
		return -1;
	}
	memcpy(kl->key, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	return 0;
bad:
	md_log(POSTERN_LOG_WARNING, "%s: a malformed line skipped", path);
	return 0;
}

/* The file into ks: 0 (absent is empty), -1 unreadable. */
static int
keys_read(const char *path, struct key_set *ks)
{
	struct stat sb;
	char *buf, *line, *nl;
	ssize_t r;
	int fd, rc = 0;

	memset(ks, 0, sizeof(*ks));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &sb) < 0 || sb.st_size > MD_URLAUTH_MAX_FILE ||
	    (buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		md_log(POSTERN_LOG_ERROR, "%s: cannot read it", path);
		close(fd);
		return -1;
	}
	r = pread(fd, buf, (size_t)sb.st_size, 0);
	close(fd);
	if (r < 0) {
		free(buf);
		return -1;
	}
	buf[r] = '\0';
	for (line = buf; rc == 0 && *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;  /* a torn last line: not written by us */
		*nl = '\0';
		rc = keys_add_line(ks, path, line);
	}
	explicit_bzero(buf, (size_t)r);
	free(buf);
	return rc;
}

static int
keys_fill(FILE *f, const void *arg)
{
	const struct key_set *ks = arg;
	size_t i, k;

	/* Before any key is written: the owner alone reads it. */
	if (fchmod(fileno(f), 0600) < 0)
		return -1;
	for (i = 0; i < ks->n; i++) {
		if (ks->v[i].name == NULL)
			continue;  /* forgotten */
		fprintf(f, "%u ", ks->v[i].uidvalidity);
		for (k = 0; k < POSTERN_ACCESS_KEY_LEN; k++)
			fprintf(f, "%02x", ks->v[i].key[k]);
		fprintf(f, " %s\n", ks->v[i].name);
	}
	return ferror(f) ? -1 : 0;
}

static struct key_line *
keys_find(struct key_set *ks, const char *name)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		if (ks->v[i].name != NULL &&
		    (strcmp(ks->v[i].name, name) == 0 ||
		     (strcasecmp(name, "INBOX") == 0 &&
		      strcasecmp(ks->v[i].name, "INBOX") == 0)))
			return &ks->v[i];
	return NULL;
}

/* Forgets `name`'s key, or every key with `name` NULL. */
static int
keys_reset(struct key_set *ks, const char *name)
{
	struct key_line *kl;
	size_t i;

	if (name == NULL) {
		for (i = 0; i < ks->n; i++) {
			free(ks->v[i].name);
			ks->v[i].name = NULL;
		}
		return 1;
	}
	if ((kl = keys_find(ks, name)) == NULL)
		return 0;
	free(kl->name);
	kl->name = NULL;
	return 1;
}

/* `name`'s key into key[] (made, when `create`, if missing or of an
 * older incarnation): 0, 1 none, -1 (err set).  *dirty: ks changed. */
static int
keys_get(struct key_set *ks, const char *name, uint32_t uidvalidity,
         int create, unsigned char *key, int *dirty,
         struct postern_storage_err *err)
{
	struct key_line *kl = keys_find(ks, name);
	char *copy;

	if (kl != NULL && kl->uidvalidity == uidvalidity) {
		memcpy(key, kl->key, POSTERN_ACCESS_KEY_LEN);
		return 0;
	}
	if (!create)
		return 1;
	if (kl == NULL && ((copy = strdup(name)) == NULL ||
	                   (kl = keys_push(ks, uidvalidity, copy)) == NULL)) {
		md_err(err, POSTERN_SE_TEMP, "out of memory");
		return -1;
	}
	if (getrandom(kl->key, POSTERN_ACCESS_KEY_LEN, 0) !=
	    POSTERN_ACCESS_KEY_LEN) {
		md_err(err, POSTERN_SE_TEMP, "no random octets for a key");
		return -1;
	}
	kl->uidvalidity = uidvalidity;
	memcpy(key, kl->key, POSTERN_ACCESS_KEY_LEN);
	*dirty = 1;
	return 0;
}

int
md_access_key(postern_store_t *st, const char *name, unsigned op,
              unsigned char *key, struct postern_storage_err *err)
{
	struct postern_mailbox_status ms = { .size = sizeof(ms) };
	struct key_set ks;
	char path[4200], lpath[4200];
	int lk, rc = -1, dirty = 0;

	/* A name is a line's end in the file: no line break in it. */
	if (op > POSTERN_ACCESS_KEY_RESET ||
	    (name == NULL && op != POSTERN_ACCESS_KEY_RESET) ||
	    (name != NULL && (name[0] == '\0' || strpbrk(name, "\r\n")))) {
		md_err(err, POSTERN_SE_CANNOT, "bad access_key call");
		return -1;
	}
	/* The mailbox's incarnation (and that it exists). */
	if (name != NULL && md_status_by_name(st, name, &ms, err) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/" MD_URLAUTH_KEYS, st->root);
	snprintf(lpath, sizeof(lpath), "%s/" MD_URLAUTH_LOCK, st->root);
	if ((lk = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    flock(lk, LOCK_EX) < 0) {
		md_log(POSTERN_LOG_ERROR, "%s: %s", lpath, strerror(errno));
		md_err(err, POSTERN_SE_TEMP, "cannot lock the access keys");
		if (lk >= 0)
			close(lk);
		return -1;
	}
	if (keys_read(path, &ks) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot read the access keys");
		goto out;
	}
	if (op == POSTERN_ACCESS_KEY_RESET) {
		dirty = keys_reset(&ks, name);
		rc = 0;
	} else {
		rc = keys_get(&ks, name, ms.uidvalidity,
		              op == POSTERN_ACCESS_KEY_CREATE, key, &dirty,
		              err);
	}
	if (rc >= 0 && dirty && md_replace_file(path, keys_fill, &ks) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot write the access keys");
		if (key != NULL)
			explicit_bzero(key, POSTERN_ACCESS_KEY_LEN);
		rc = -1;
	}
	keys_free(&ks);
out:
	close(lk);  /* and its flock */
	return rc;
}
