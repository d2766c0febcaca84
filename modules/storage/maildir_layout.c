/*
 * maildir_layout.c - where mail lives: the user's Maildir, Maildir++
 * folder names (".A.B" on disk in modified UTF-7, "A/B" in UTF-8 in the
 * API), and the mailbox list: list, create, remove, rename, subscribe.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"

/* ---- growing strings -------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	char *np;
	size_t ncap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		ncap = (b->len + n + 1) * 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

static char *
buf_done(struct buf *b)
{
	if (b->oom) {
		free(b->p);
		return NULL;
	}
	if (b->p == NULL)
		return strdup("");
	return b->p;
}

/* ---- the location ----------------------------------------------------- */

/* "maildir:~/Maildir:LAYOUT=fs" -> "~/Maildir": what follows a second
 * ':' is Dovecot's options, which mean nothing here. */
static const char *
strip_scheme(const char *loc, size_t *len)
{
	const char *colon;

	if (strncmp(loc, "maildir:", 8) == 0)
		loc += 8;
	colon = strchr(loc, ':');
	*len = colon != NULL ? (size_t)(colon - loc) : strlen(loc);
	return loc;
}

static int
expand_var(struct buf *b, char c, const char *user)
{
	const char *at = strchr(user, '@');

	switch (c) {
	case 'u':
		buf_add(b, user, strlen(user));
		return 0;
	case 'n':
		buf_add(b, user, at != NULL ? (size_t)(at - user)
		                            : strlen(user));
		return 0;
	case 'd':
		if (at != NULL)
			buf_add(b, at + 1, strlen(at + 1));
		return 0;
	case '%':
		buf_addc(b, '%');
		return 0;
	}
	return -1;
}

char *
md_location(const char *def, const struct postern_user *user,
            struct postern_storage_err *err)
{
	const char *loc, *name = user->name != NULL ? user->name : "";
	struct buf b = { 0 };
	size_t len, i = 0;
	char *out;

	if (user->mail != NULL && user->mail[0] != '\0')
		def = user->mail;
	loc = strip_scheme(def, &len);
	if (len > 0 && loc[0] == '~') {
		if (user->home == NULL || user->home[0] != '/') {
			md_err(err, POSTERN_SE_TEMP, "user has no home");
			md_log(POSTERN_LOG_ERROR, "%s: mail location %s needs "
			       "a home directory", name, def);
			return NULL;
		}
		buf_add(&b, user->home, strlen(user->home));
		i = 1;
	}
	for (; i < len; i++) {
		if (loc[i] != '%' || i + 1 >= len) {
			buf_addc(&b, loc[i]);
			continue;
		}
		if (expand_var(&b, loc[++i], name) < 0) {
			md_log(POSTERN_LOG_ERROR, "mail location %s: unknown "
			       "variable %%%c", def, loc[i]);
			free(b.p);
			md_err(err, POSTERN_SE_TEMP, "bad mail location");
			return NULL;
		}
	}
	out = buf_done(&b);
	if (out == NULL || out[0] != '/' || strstr(out, "/../") != NULL) {
		if (out != NULL)
			md_log(POSTERN_LOG_ERROR, "%s: mail location '%s' is "
			       "not an absolute path", name, out);
		free(out);
		md_err(err, POSTERN_SE_TEMP, "bad mail location");
		return NULL;
	}
	return out;
}

/* ---- modified UTF-7 (RFC 3501 5.1.3), as Dovecot names folders -------- */

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
utf8_next(const unsigned char **sp, uint32_t *cp)
{
	const unsigned char *s = *sp;
	int n, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		n = 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		*cp = s[0] & 0x1f;
		n = 2;
	} else if ((s[0] & 0xf0) == 0xe0) {
		*cp = s[0] & 0x0f;
		n = 3;
	} else if ((s[0] & 0xf8) == 0xf0) {
		*cp = s[0] & 0x07;
		n = 4;
	} else
		return -1;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return -1;
	*sp = s + n;
	return 0;
}

/* Encodes a run of UTF-16 units as "&...-". */
static void
b64_run(struct buf *b, const uint16_t *u, size_t n)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t i;

	buf_addc(b, '&');
	for (i = 0; i < n; i++) {
		acc = (acc << 16) | u[i];
		bits += 16;
		while (bits >= 6) {
			bits -= 6;
			buf_addc(b, b64[(acc >> bits) & 0x3f]);
		}
	}
	if (bits > 0)
		buf_addc(b, b64[(acc << (6 - bits)) & 0x3f]);
	buf_addc(b, '-');
}

char *
md_utf8_to_mutf7(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	struct buf b = { 0 };
	uint16_t u[256];
	size_t nu;
	uint32_t cp;

	while (*s != '\0') {
		if (*s >= 0x20 && *s < 0x7f) {
			buf_add(&b, (const char *)s, 1);
			if (*s++ == '&')
				buf_addc(&b, '-');
			continue;
		}
		for (nu = 0; *s != '\0' && (*s < 0x20 || *s >= 0x7f) &&
		     nu < sizeof(u) / sizeof(u[0]) - 1;) {
			if (utf8_next(&s, &cp) < 0) {
				free(b.p);
				return NULL;
			}
			if (cp >= 0x10000) {
				cp -= 0x10000;
				u[nu++] = 0xd800 | (cp >> 10);
				u[nu++] = 0xdc00 | (cp & 0x3ff);
			} else
				u[nu++] = cp;
		}
		b64_run(&b, u, nu);
	}
	return buf_done(&b);
}

static void
put_utf8(struct buf *b, uint32_t cp)
{
	char o[4];

	if (cp < 0x80) {
		o[0] = cp;
		buf_add(b, o, 1);
	} else if (cp < 0x800) {
		o[0] = 0xc0 | (cp >> 6);
		o[1] = 0x80 | (cp & 0x3f);
		buf_add(b, o, 2);
	} else if (cp < 0x10000) {
		o[0] = 0xe0 | (cp >> 12);
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		buf_add(b, o, 3);
	} else {
		o[0] = 0xf0 | (cp >> 18);
		o[1] = 0x80 | ((cp >> 12) & 0x3f);
		o[2] = 0x80 | ((cp >> 6) & 0x3f);
		o[3] = 0x80 | (cp & 0x3f);
		buf_add(b, o, 4);
	}
}

/* Decodes "&...-" starting after '&'; returns the position after '-'. */
static const char *
b64_decode_run(struct buf *b, const char *s)
{
	uint32_t acc = 0, hi = 0;
	int bits = 0;
	const char *p;
	uint16_t unit;

	for (; *s != '-'; s++) {
		if (*s == '\0' || (p = strchr(b64, *s)) == NULL)
			return NULL;
		acc = (acc << 6) | (uint32_t)(p - b64);
		bits += 6;
		if (bits < 16)
			continue;
		bits -= 16;
		unit = (acc >> bits) & 0xffff;
		if (unit >= 0xd800 && unit < 0xdc00) {
			hi = unit;
			continue;
		}
		if (unit >= 0xdc00 && unit < 0xe000) {
			if (hi == 0)
				return NULL;
			put_utf8(b, 0x10000 + ((hi - 0xd800) << 10) +
			                (unit - 0xdc00));
			hi = 0;
			continue;
		}
		put_utf8(b, unit);
	}
	return hi != 0 ? NULL : s + 1;
}

char *
md_mutf7_to_utf8(const char *s)
{
	struct buf b = { 0 };

	while (*s != '\0') {
		if (*s != '&') {
			buf_add(&b, s++, 1);
			continue;
		}
		if (s[1] == '-') {
			buf_addc(&b, '&');
			s += 2;
			continue;
		}
		if ((s = b64_decode_run(&b, s + 1)) == NULL) {
			free(b.p);
			return NULL;
		}
	}
	return buf_done(&b);
}

/* ---- names ------------------------------------------------------------ */

static int
is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* "A/B" -> ".A.B" (modified UTF-7), or NULL for a name Maildir++ cannot
 * hold: empty parts, '.' (the separator on disk), control characters. */
static char *
folder_of(const char *name)
{
	struct buf b = { 0 };
	char *enc, *p;
	const char *s;

	if (name[0] == '\0' || name[0] == '/' ||
	    name[strlen(name) - 1] == '/' || strstr(name, "//") != NULL)
		return NULL;
	for (s = name; *s != '\0'; s++)
		if (*s == '.' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return NULL;
	if ((enc = md_utf8_to_mutf7(name)) == NULL)
		return NULL;
	buf_addc(&b, '.');
	for (p = enc; *p != '\0'; p++)
		buf_addc(&b, *p == '/' ? '.' : *p);
	free(enc);
	return buf_done(&b);
}

/* ".A.B" -> "A/B", or NULL when it is not a folder. */
static char *
name_of(const char *folder)
{
	char *dec, *p;

	if (folder[0] != '.' || folder[1] == '\0' || folder[1] == '.')
		return NULL;
	if ((dec = md_mutf7_to_utf8(folder + 1)) == NULL)
		return NULL;
	for (p = dec; *p != '\0'; p++)
		if (*p == '.')
			*p = '/';
	return dec;
}

char *
md_box_dir(const char *root, const char *name,
           struct postern_storage_err *err)
{
	char *folder, *dir;

	if (is_inbox(name))
		return strdup(root);
	if ((folder = folder_of(name)) == NULL) {
		md_err(err, POSTERN_SE_CANNOT, "invalid mailbox name");
		return NULL;
	}
	if (asprintf(&dir, "%s/%s", root, folder) < 0)
		dir = NULL;
	free(folder);
	if (dir == NULL)
		md_err(err, POSTERN_SE_TEMP, "out of memory");
	return dir;
}

char *
md_box_dir_existing(const char *root, const char *name,
                    struct postern_storage_err *err)
{
	char *dir, path[4200];
	struct stat sb;

	if ((dir = md_box_dir(root, name, err)) == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/cur", dir);
	if (stat(path, &sb) < 0) {
		md_err(err, POSTERN_SE_NONEXISTENT, "no such mailbox");
		free(dir);
		return NULL;
	}
	return dir;
}

static int
mkdir_if(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	md_log(POSTERN_LOG_ERROR, "mkdir %s: %s", path, strerror(errno));
	return -1;
}

static int
mkdir_parents(const char *path)
{
	char *p = strdup(path), *s;
	int rc = 0;

	if (p == NULL)
		return -1;
	for (s = p + 1; rc == 0 && (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		rc = mkdir_if(p);
		*s = '/';
	}
	free(p);
	return rc == 0 ? mkdir_if(path) : -1;
}

int
md_mkmaildir(const char *dir)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char path[4096];
	size_t i;

	if (mkdir_parents(dir) < 0)
		return -1;
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		if (mkdir_if(path) < 0)
			return -1;
	}
	return 0;
}

/* ---- subscriptions ---------------------------------------------------- */

/* Reads `subscriptions` (one name per line; Dovecot 2.3's "V\t2" header
 * line is skipped) into a NULL-terminated malloc'd array. */
static char **
subs_read(const char *root, size_t *n)
{
	char path[4096], *line = NULL, **v = NULL, **nv;
	size_t cap = 0;
	ssize_t len;
	FILE *f;

	*n = 0;
	snprintf(path, sizeof(path), "%s/%s", root, MD_SUBS);
	if ((f = fopen(path, "r")) == NULL)
		return calloc(1, sizeof(char *));
	while ((len = getline(&line, &cap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' ||
		                   line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || strncmp(line, "V\t", 2) == 0)
			continue;
		if ((nv = realloc(v, (*n + 2) * sizeof(*v))) == NULL)
			break;
		v = nv;
		if ((v[*n] = strdup(line)) != NULL)
			(*n)++;
	}
	free(line);
	fclose(f);
	if (v == NULL)
		v = calloc(1, sizeof(char *));
	else
		v[*n] = NULL;
	return v;
}

static void
strv_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

int
md_replace_file(const char *path, int (*fill)(FILE *f, const void *arg),
                const void *arg)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if ((f = fopen(tmp, "w")) == NULL) {
		md_log(POSTERN_LOG_ERROR, "create %s: %s", tmp,
		       strerror(errno));
		return -1;
	}
	if (fill(f, arg) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		md_log(POSTERN_LOG_ERROR, "write %s: %s", tmp,
		       strerror(errno));
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) < 0) {
		md_log(POSTERN_LOG_ERROR, "rename %s: %s", tmp,
		       strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

struct subs_list {
	char **v;
	size_t n;
};

static int
subs_fill(FILE *f, const void *arg)
{
	const struct subs_list *l = arg;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] != NULL)
			fprintf(f, "%s\n", l->v[i]);
	return 0;
}

static int
subs_write(const char *root, char **v, size_t n)
{
	char path[4096];
	struct subs_list l = { v, n };

	snprintf(path, sizeof(path), "%s/%s", root, MD_SUBS);
	return md_replace_file(path, subs_fill, &l);
}

int
md_subscribe(postern_store_t *st, const char *name, int on,
               struct postern_storage_err *err)
{
	char **v, **nv;
	size_t n, i;
	int lk, rc = 0, found = 0;

	if ((lk = md_lock(st->root)) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot lock the mailbox list");
		return -1;
	}
	if ((v = subs_read(st->root, &n)) == NULL)
		rc = -1;
	for (i = 0; rc == 0 && i < n; i++)
		if (strcmp(v[i], name) == 0 ||
		    (is_inbox(name) && is_inbox(v[i]))) {
			found = 1;
			free(v[i]);
			v[i] = NULL; /* subs_write skips holes */
		}
	if (rc == 0 && on) {
		if ((nv = realloc(v, (n + 2) * sizeof(*v))) == NULL ||
		    (nv[n] = strdup(name)) == NULL)
			rc = -1;
		else
			nv[++n] = NULL;
		if (nv != NULL)
			v = nv;
	}
	if (rc == 0 && on != found)
		rc = subs_write(st->root, v, n);
	if (rc < 0)
		md_err(err, POSTERN_SE_TEMP, "cannot save subscriptions");
	for (i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
	md_unlock(lk);
	return rc;
}

/* ---- list ------------------------------------------------------------- */

struct entry {
	char *name;
	unsigned attrs;
};

struct elist {
	struct entry *e;
	size_t n, cap;
};

static struct entry *
elist_find(struct elist *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->e[i].name, name) == 0)
			return &l->e[i];
	return NULL;
}

static struct entry *
elist_add(struct elist *l, const char *name, unsigned attrs)
{
	struct entry *e = elist_find(l, name), *ne;

	if (e != NULL) {
		e->attrs = (e->attrs & ~POSTERN_MBOX_NOSELECT &
		            ~POSTERN_MBOX_NONEXISTENT) | attrs;
		return e;
	}
	if (l->n == l->cap) {
		ne = realloc(l->e, (l->cap * 2 + 8) * sizeof(*ne));
		if (ne == NULL)
			return NULL;
		l->e = ne;
		l->cap = l->cap * 2 + 8;
	}
	e = &l->e[l->n];
	if ((e->name = strdup(name)) == NULL)
		return NULL;
	e->attrs = attrs;
	l->n++;
	return e;
}

static unsigned
special_use_read(const char *dir)
{
	char path[8192], buf[32];
	unsigned v = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/postern.special-use", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = (unsigned)strtoul(buf, NULL, 16);
	}
	return v & POSTERN_MBOX_SPECIAL_USE_MASK;
}

/* Adds the folders found on disk, their implicit parents as \Noselect. */
static int
scan_folders(const char *root, struct elist *l)
{
	char path[4096], *name, *slash;
	struct dirent *de;
	struct stat sb;
	DIR *d;

	if ((d = opendir(root)) == NULL) {
		md_log(POSTERN_LOG_ERROR, "opendir %s: %s", root,
		       strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if ((name = name_of(de->d_name)) == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			elist_add(l, name, special_use_read(path));
		while ((slash = strrchr(name, '/')) != NULL) {
			*slash = '\0';
			if (elist_find(l, name) == NULL)
				elist_add(l, name, POSTERN_MBOX_NOSELECT);
		}
		free(name);
	}
	closedir(d);
	return 0;
}

static void
mark_children(struct elist *l)
{
	size_t i, j, len;

	for (i = 0; i < l->n; i++) {
		if (l->e[i].attrs & POSTERN_MBOX_NONEXISTENT)
			continue;
		len = strlen(l->e[i].name);
		for (j = 0; j < l->n; j++)
			if (j != i && !(l->e[j].attrs &
			                POSTERN_MBOX_NONEXISTENT) &&
			    strncmp(l->e[j].name, l->e[i].name, len) == 0 &&
			    l->e[j].name[len] == '/')
				break;
		l->e[i].attrs |= j < l->n ? POSTERN_MBOX_HASCHILDREN
		                          : POSTERN_MBOX_HASNOCHILDREN;
	}
}

static void
add_subscribed(const char *root, struct elist *l)
{
	struct entry *e;
	char **subs;
	size_t n, i;

	subs = subs_read(root, &n);
	for (i = 0; subs != NULL && i < n; i++) {
		e = elist_find(l, is_inbox(subs[i]) ? "INBOX" : subs[i]);
		if (e == NULL)
			e = elist_add(l, subs[i], POSTERN_MBOX_NONEXISTENT |
			                          POSTERN_MBOX_NOSELECT);
		if (e != NULL)
			e->attrs |= POSTERN_MBOX_SUBSCRIBED;
	}
	strv_free(subs);
}

int
md_list(postern_store_t *st, postern_pool_t *pool,
        struct postern_mailbox_entry **entries, size_t *n,
        struct postern_storage_err *err)
{
	struct elist l = { 0 };
	size_t i;
	int rc = 0;

	*entries = NULL;
	*n = 0;
	elist_add(&l, "INBOX", 0);
	if (scan_folders(st->root, &l) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot list mailboxes");
		rc = -1;
	} else {
		mark_children(&l);
		add_subscribed(st->root, &l);
		*entries = md_host->pool_alloc(pool, (l.n + 1) *
		                                         sizeof(**entries));
		for (i = 0; i < l.n; i++) {
			(*entries)[i].name = md_host->pool_strndup(pool,
			        l.e[i].name, strlen(l.e[i].name));
			(*entries)[i].attrs = l.e[i].attrs;
		}
		*n = l.n;
	}
	for (i = 0; i < l.n; i++)
		free(l.e[i].name);
	free(l.e);
	return rc;
}

/* ---- create, remove, rename ------------------------------------------- */

static int
dir_exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int
special_use_write(const char *dir, unsigned special_use)
{
	char path[8192], buf[32];
	int fd, len, rc = 0;

	snprintf(path, sizeof(path), "%s/postern.special-use", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	               0600)) < 0) {
		md_log(POSTERN_LOG_ERROR, "create %s: %s", path,
		       strerror(errno));
		return -1;
	}
	len = snprintf(buf, sizeof(buf), "%x\n", special_use);
	if (write(fd, buf, len) != len) {
		md_log(POSTERN_LOG_ERROR, "write %s: %s", path,
		       strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

int
md_create(postern_store_t *st, const char *name, unsigned special_use,
          struct postern_storage_err *err)
{
	char *dir;
	int rc = 0;

	if (is_inbox(name)) {
		md_err(err, POSTERN_SE_ALREADYEXISTS, "INBOX always exists");
		return -1;
	}
	if ((dir = md_box_dir(st->root, name, err)) == NULL)
		return -1;
	/* Maildir++ parents are siblings (".A" beside ".A.B"), and an
	 * absent parent is simply \Noselect: nothing to create for them. */
	if (dir_exists(dir)) {
		md_err(err, POSTERN_SE_ALREADYEXISTS, "mailbox exists");
		rc = -1;
	} else if (md_mkmaildir(dir) < 0 ||
	           ((special_use &= POSTERN_MBOX_SPECIAL_USE_MASK) != 0 &&
	            special_use_write(dir, special_use) < 0)) {
		md_err(err, POSTERN_SE_TEMP, "cannot create the mailbox");
		rc = -1;
	}
	free(dir);
	return rc;
}

static int
rm_tree(const char *path)
{
	char sub[4096];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int rc = 0;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlink(path);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (rm_tree(sub) < 0)
			rc = -1;
	}
	closedir(d);
	if (rc == 0 && rmdir(path) < 0)
		rc = -1;
	return rc;
}

int
md_remove(postern_store_t *st, const char *name,
          struct postern_storage_err *err)
{
	char *dir, *gone;
	int rc = 0;

	if (is_inbox(name)) {
		md_err(err, POSTERN_SE_CANNOT, "INBOX cannot be deleted");
		return -1;
	}
	if ((dir = md_box_dir(st->root, name, err)) == NULL)
		return -1;
	if (!dir_exists(dir)) {
		md_err(err, POSTERN_SE_NONEXISTENT, "no such mailbox");
		free(dir);
		return -1;
	}
	/* Rename first so the removal is atomic for readers (Dovecot does
	 * the same with "..DOVECOT-TRASHED"); children (".A.B") are
	 * siblings and stay, and A becomes \Noselect. */
	if (asprintf(&gone, "%s/..postern-deleted.%ld", st->root,
	             (long)getpid()) < 0) {
		free(dir);
		md_err(err, POSTERN_SE_TEMP, "out of memory");
		return -1;
	}
	if (rename(dir, gone) < 0) {
		md_log(POSTERN_LOG_ERROR, "rename %s: %s", dir,
		       strerror(errno));
		md_err(err, POSTERN_SE_TEMP, "cannot delete the mailbox");
		rc = -1;
	} else if (rm_tree(gone) < 0)
		md_log(POSTERN_LOG_WARNING, "remove %s: %s", gone,
		       strerror(errno));
	if (rc == 0)
		/* its messages left the quota: counted again */
		md_quota_forget(st->root);
	free(gone);
	free(dir);
	return rc;
}

/* Renames every folder ".FROM" and ".FROM.*" to ".TO..." */
static int
rename_folders(const char *root, const char *from, const char *to)
{
	char src[4096], dst[4096];
	size_t flen = strlen(from);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if ((d = opendir(root)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, from, flen) != 0 ||
		    (de->d_name[flen] != '\0' && de->d_name[flen] != '.'))
			continue;
		snprintf(src, sizeof(src), "%s/%s", root, de->d_name);
		snprintf(dst, sizeof(dst), "%s/%s%s", root, to,
		         de->d_name + flen);
		if (rename(src, dst) < 0) {
			md_log(POSTERN_LOG_ERROR, "rename %s to %s: %s", src,
			       dst, strerror(errno));
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}

/* RFC 3501 6.3.5: INBOX's messages move to a new mailbox. */
static int
rename_inbox(const char *root, const char *dst)
{
	static const char *const sub[] = { "cur", "new" };
	char sd[4096], from[8192], to[8192];
	struct dirent *de;
	DIR *d;
	size_t i;
	int rc = 0;

	if (md_mkmaildir(dst) < 0)
		return -1;
	for (i = 0; i < 2; i++) {
		snprintf(sd, sizeof(sd), "%s/%s", root, sub[i]);
		if ((d = opendir(sd)) == NULL)
			return -1;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(from, sizeof(from), "%s/%s", sd, de->d_name);
			snprintf(to, sizeof(to), "%s/%s/%s", dst, sub[i],
			         de->d_name);
			if (rename(from, to) < 0)
				rc = -1;
		}
		closedir(d);
	}
	return rc;
}

static int
rename_check(const char *root, const char *from, const char *to,
             char **fdir, char **tdir, struct postern_storage_err *err)
{
	*fdir = *tdir = NULL;
	if (is_inbox(to)) {
		md_err(err, POSTERN_SE_ALREADYEXISTS, "INBOX exists");
		return -1;
	}
	if ((*fdir = md_box_dir(root, from, err)) == NULL ||
	    (*tdir = md_box_dir(root, to, err)) == NULL)
		return -1;
	if (!dir_exists(*fdir)) {
		md_err(err, POSTERN_SE_NONEXISTENT, "no such mailbox");
		return -1;
	}
	if (dir_exists(*tdir)) {
		md_err(err, POSTERN_SE_ALREADYEXISTS, "mailbox exists");
		return -1;
	}
	if (!is_inbox(from) && strncmp(to, from, strlen(from)) == 0 &&
	    to[strlen(from)] == '/') {
		md_err(err, POSTERN_SE_CANNOT, "cannot move into itself");
		return -1;
	}
	return 0;
}

int
md_rename(postern_store_t *st, const char *from, const char *to,
          struct postern_storage_err *err)
{
	char *fdir, *tdir;
	int lk, rc;

	if ((lk = md_lock(st->root)) < 0) {
		md_err(err, POSTERN_SE_TEMP, "cannot lock the mailbox list");
		return -1;
	}
	rc = rename_check(st->root, from, to, &fdir, &tdir, err);
	if (rc == 0) {
		if (is_inbox(from))
			rc = rename_inbox(st->root, tdir);
		else
			rc = rename_folders(st->root,
			                    fdir + strlen(st->root) + 1,
			                    tdir + strlen(st->root) + 1);
		if (rc < 0)
			md_err(err, POSTERN_SE_TEMP, "rename failed");
	}
	md_unlock(lk);
	free(fdir);
	free(tdir);
	return rc;
}
