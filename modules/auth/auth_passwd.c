/*
 * auth_passwd.c - the passwd-file auth backend: users, passwords and
 * aliases from two text files, published as the "auth" service.
 *
 * Configuration:
 *	auth_passwd = {
 *	  users = "users";            # relative: to the configuration dir
 *	  aliases = "aliases";        # "" for none
 *	  domains = [ "example.org" ]; # local besides users' and aliases'
 *	  recipient_delimiter = "+";  # alice+lists@ reaches alice@; "": off
 *	  argon2_opslimit = 2;        # cost of new hashes and of the dummy
 *	  argon2_memlimit = "64M";
 *	};
 *
 * The argon2id cost defaults to libsodium's INTERACTIVE (2 passes, 64
 * MiB), not MODERATE (3 passes, 256 MiB, ~0.7 s): mail clients log in
 * often and many at once (IMAP clients keep several connections, phones
 * reconnect all day), each worker hashes on `job_threads` threads at a
 * time, and MODERATE would need 256 MiB per thread per worker.
 * INTERACTIVE is what libsodium recommends for online logins.
 *
 * Files are read at worker start and read again when they change: a
 * lookup checks the files' identity (inode, size, mtime, ctime) at most
 * once a second and, if it changed, builds a new table and swaps it in
 * under a rwlock.  Job threads hold a reference to the table they use, so
 * a slow password check never holds the lock and a swap never frees a
 * table in use.  posternctl runs no worker: the first call loads the
 * table then.
 *
 * Names and addresses are case-insensitive in whole, local part included
 * (as Postfix does by default); the canonical login is lower case.
 *
 * Logins: a user with a bare `nologin` extra field (or `nologin=yes`)
 * cannot log in but still receives mail.  An unknown user, a user without
 * a usable hash, and a wrong password all cost one argon2id verification
 * of the configured cost (a dummy hash made at worker start), so timing
 * does not tell them apart.  A migrated crypt hash (SHA512-CRYPT,
 * BLF-CRYPT...) costs what its own parameters say, a few milliseconds
 * for SHA512-CRYPT: its check is followed by the dummy argon2id one, so
 * such a user is not told apart either (nor picked out as the one with
 * the weaker hash).
 *
 * Resolving: an alias wins over a user of the same address; targets are
 * followed recursively (at most RESOLVE_DEPTH levels, RESOLVE_STEPS
 * expansions); an address reached again on its own path is not expanded
 * further but delivered to its mailbox if it is a user (the Postfix rule
 * that makes `alice@x: alice@x, bob@x` work).  A domain's catch-all
 * `@domain` applies only to addresses that are neither an alias nor a
 * user.  A target in a domain that is not local is returned as it is
 * (a forward, for the relay): the caller tells it from a login with
 * `lookup`.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <postern/postern.h>

#include "passwd_file.h"
#include "passwd_hash.h"

#define RELOAD_INTERVAL_MS 1000
#define RESOLVE_DEPTH 20
#define RESOLVE_STEPS 1000
#define KEY_MAX 330 /* a name (320 bytes at most) and its NUL */

struct settings {
	const char *users;
	const char *aliases;
	struct postern_strlist domains;
	const char *delimiters;
	long long opslimit;
	long long memlimit;
};

static const struct postern_cfg_key ap_keys[] = {
	{ .name = "users", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, users), .def = "users",
	  .doc = "passwd-file of users (relative: to the configuration "
	         "directory)" },
	{ .name = "aliases", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, aliases), .def = "aliases",
	  .doc = "aliases file (relative: to the configuration directory; "
	         "\"\": none)" },
	{ .name = "domains", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct settings, domains), .def = "[]",
	  .doc = "local domains besides those of users and aliases" },
	{ .name = "recipient_delimiter", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, delimiters), .def = "+",
	  .doc = "characters that start an address extension (Postfix's "
	         "recipient_delimiter): alice+tag@ resolves as alice@ when "
	         "no user or alias has the whole name; \"\": off" },
	{ .name = "argon2_opslimit", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct settings, opslimit), .def = "2",
	  .min = 1, .max = 100,
	  .doc = "argon2id passes for new hashes (2: INTERACTIVE)" },
	{ .name = "argon2_memlimit", .type = POSTERN_CFG_SIZE,
	  .offset = offsetof(struct settings, memlimit), .def = "64M",
	  .min = 8192, .max = 4096LL * 1024 * 1024,
	  .doc = "argon2id memory for new hashes (64M: INTERACTIVE)" },
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static struct settings set;
static char *users_path, *aliases_path;
static char **domains;
static size_t ndomains;

/* The current table: the pointer under table_lock, its life by refs. */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct pf_table *table;

/* One reloader at a time; what it last tried, so a file that cannot be
 * read is reported once, not every second. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_check_ms;
static int tried, check_now;
static struct pf_stamp tried_users, tried_aliases;

void
auth_passwd_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	host->vlog(self, level, fmt, ap);
	va_end(ap);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the table -------------------------------------------------------- */

static void
table_put(struct pf_table *t)
{
	if (t != NULL && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		pf_table_free(t);
}

static void
table_swap(struct pf_table *nt)
{
	struct pf_table *old;

	pthread_rwlock_wrlock(&table_lock);
	old = table;
	table = nt;
	pthread_rwlock_unlock(&table_lock);
	table_put(old);
}

static int
due(uint64_t now)
{
	return check_now || !tried || now - last_check_ms >= RELOAD_INTERVAL_MS;
}

static void
reload_locked(void)
{
	struct pf_stamp us, as;
	struct pf_table *nt;

	check_now = 0;
	last_check_ms = mono_ms();
	(void)pf_stat(users_path, &us);
	(void)pf_stat(aliases_path, &as);
	if (tried && pf_stamp_equal(&us, &tried_users) &&
	    pf_stamp_equal(&as, &tried_aliases))
		return;
	tried = 1;
	tried_users = us;
	tried_aliases = as;
	if ((nt = pf_table_load(users_path, aliases_path,
	                        (const char *const *)domains,
	                        ndomains)) == NULL)
		return;
	/* What was read may be newer than what was stat'ed. */
	tried_users = nt->ustamp;
	tried_aliases = nt->astamp;
	if (!nt->ustamp.exists)
		auth_passwd_log(POSTERN_LOG_WARNING, "%s: no such file: no "
		                "user can log in", users_path);
	auth_passwd_log(POSTERN_LOG_INFO, "%s: %zu user(s), %zu alias(es), "
	                "%zu local domain(s)", users_path, nt->nusers,
	                nt->naliases, nt->ndomains);
	table_swap(nt);
}

/* Reads the files again if they changed.  While another thread reloads,
 * callers go on with the current table instead of waiting. */
static void
maybe_reload(void)
{
	int have;

	pthread_rwlock_rdlock(&table_lock);
	have = table != NULL;
	pthread_rwlock_unlock(&table_lock);
	if (have) {
		if (pthread_mutex_trylock(&reload_lock) != 0)
			return;
	} else
		pthread_mutex_lock(&reload_lock);
	if (due(mono_ms()))
		reload_locked();
	pthread_mutex_unlock(&reload_lock);
}

/* The current table with a reference (table_put it), or NULL when the
 * files could never be read. */
static struct pf_table *
table_get(void)
{
	struct pf_table *t;

	maybe_reload();
	pthread_rwlock_rdlock(&table_lock);
	t = table;
	if (t != NULL)
		__atomic_add_fetch(&t->refs, 1, __ATOMIC_ACQ_REL);
	pthread_rwlock_unlock(&table_lock);
	return t;
}

/* After an edit: the next call reads the files whatever the clock says
 * (a rename within the same second may keep size and mtime). */
static void
reload_soon(void)
{
	pthread_mutex_lock(&reload_lock);
	check_now = 1;
	pthread_mutex_unlock(&reload_lock);
}

/* ---- lookups ---------------------------------------------------------- */

static void
fill_user(const struct pf_table *t, const struct pf_user *u,
          postern_pool_t *pool, struct postern_user *out)
{
	const char **extra;
	size_t i;

	extra = host->pool_alloc(pool, (u->nextra + 1) * sizeof(*extra));
	for (i = 0; i < u->nextra; i++)
		extra[i] = host->pool_strndup(pool, t->strs[u->extra + i],
		                              strlen(t->strs[u->extra + i]));
	out->name = host->pool_strndup(pool, u->name, strlen(u->name));
	out->home = u->home != NULL ?
	    host->pool_strndup(pool, u->home, strlen(u->home)) : NULL;
	out->mail = u->mail != NULL ?
	    host->pool_strndup(pool, u->mail, strlen(u->mail)) : NULL;
	out->uid = u->uid;
	out->gid = u->gid;
	out->extra = extra;
	out->nextra = u->nextra;
}

static int
ap_lookup(const char *name, postern_pool_t *pool, struct postern_user *out)
{
	char key[KEY_MAX];
	struct pf_table *t;
	const struct pf_user *u;
	int rc = POSTERN_AUTH_NO;

	if (pf_lower(name, key, sizeof(key)) < 0)
		return POSTERN_AUTH_NO;
	if ((t = table_get()) == NULL)
		return POSTERN_AUTH_TEMPFAIL;
	if ((u = pf_find_user(t, key)) != NULL) {
		fill_user(t, u, pool, out);
		rc = POSTERN_AUTH_YES;
	}
	table_put(t);
	return rc;
}

static int
usable(const struct pf_user *u)
{
	return u != NULL && u->scheme != PWHASH_NONE &&
	       u->scheme != PWHASH_UNKNOWN;
}

/*
 * The hash runs in the worker's isolation process (host->isolate_call),
 * so that what argon2id holds while it runs never grows the worker.
 * Request: the scheme (one octet; PWHASH_NONE for a user who cannot log
 * in), the hash and a NUL, then the password.  Reply: one octet, 1 when
 * the password matches.
 */
static postern_isolated_t *verify_fn;

static ssize_t
verify_isolated(const void *in, size_t inlen, void *out, size_t outcap)
{
	const char *req = in, *hash = req + 1, *nul, *password;
	enum pwhash_scheme s;
	size_t len;
	int ok;

	if (inlen < 2 || outcap < 1 ||
	    (nul = memchr(hash, '\0', inlen - 1)) == NULL)
		return -1;
	s = (enum pwhash_scheme)(unsigned char)req[0];
	password = nul + 1;
	len = inlen - (size_t)(password - req);
	/* Every answer costs an argon2id check of the configured cost, so
	 * that timing tells neither unknown users nor migrated hashes. */
	if (s != PWHASH_ARGON2ID)
		pwhash_dummy_verify(password, len);
	ok = s != PWHASH_NONE && s != PWHASH_UNKNOWN &&
	     pwhash_verify(s, hash, password, len);
	*(unsigned char *)out = (unsigned char)ok;
	return 1;
}

/* 1 match, 0 no match, -1 the check could not run. */
static int
check_password(const struct pf_user *u, const char *password, size_t len)
{
	size_t hlen = usable(u) ? strlen(u->hash) : 0;
	size_t need = 1 + hlen + 1 + len;
	unsigned char *req, ok = 0;
	ssize_t n;

	if (need > POSTERN_ISOLATE_MAX)
		return 0; /* no password or hash is that long */
	req = malloc(need);
	if (req == NULL)
		return -1;
	req[0] = (unsigned char)(usable(u) ? u->scheme : PWHASH_NONE);
	if (hlen > 0)
		memcpy(req + 1, u->hash, hlen);
	req[1 + hlen] = '\0';
	memcpy(req + 2 + hlen, password, len);
	n = host->isolate_call(verify_fn, req, need, &ok, sizeof(ok));
	sodium_memzero(req, need);
	free(req);
	return n == 1 ? ok == 1 : -1;
}

static int
ap_verify(const char *name, const char *password, size_t len,
          postern_pool_t *pool, struct postern_user *out)
{
	char key[KEY_MAX];
	struct pf_table *t;
	const struct pf_user *u = NULL;
	int rc = POSTERN_AUTH_NO, match;

	if ((t = table_get()) == NULL)
		return POSTERN_AUTH_TEMPFAIL;
	if (pf_lower(name, key, sizeof(key)) == 0)
		u = pf_find_user(t, key);
	match = check_password(u, password, len);
	if (match < 0)
		rc = POSTERN_AUTH_TEMPFAIL;
	else if (!match || !usable(u))
		rc = POSTERN_AUTH_NO;
	else if (u->nologin)
		auth_passwd_log(POSTERN_LOG_NOTICE, "user '%s': right "
		                "password, but logins are disabled (nologin)",
		                u->name);
	else {
		fill_user(t, u, pool, out);
		rc = POSTERN_AUTH_YES;
	}
	table_put(t);
	return rc;
}

static int
ap_list(postern_pool_t *pool, const char ***names, size_t *n)
{
	struct pf_table *t;
	const char **v;
	size_t i;

	if ((t = table_get()) == NULL)
		return POSTERN_AUTH_TEMPFAIL;
	v = host->pool_alloc(pool, (t->nusers + 1) * sizeof(*v));
	for (i = 0; i < t->nusers; i++)
		v[i] = host->pool_strndup(pool, t->users[i].name,
		                          strlen(t->users[i].name));
	*names = v;
	*n = t->nusers;
	table_put(t);
	return POSTERN_AUTH_YES;
}

/* ---- resolve ---------------------------------------------------------- */

struct expand {
	const struct pf_table *t;
	const char *out[RESOLVE_STEPS];
	size_t n;
	const char *path[RESOLVE_DEPTH]; /* aliases being expanded */
	size_t depth;
	unsigned steps;
	int cut; /* a limit was hit */
};

static void
add_result(struct expand *e, const char *name)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->out[i], name) == 0)
			return;
	if (e->n < RESOLVE_STEPS)
		e->out[e->n++] = name;
}

static int
on_path(const struct expand *e, const char *addr)
{
	size_t i;

	for (i = 0; i < e->depth; i++)
		if (strcmp(e->path[i], addr) == 0)
			return 1;
	return 0;
}

/* "alice+tag@example.org" -> "alice@example.org" in buf, or NULL when
 * the local part has no extension (Postfix's recipient_delimiter; the
 * first delimiter character found starts the extension). */
static const char *
strip_extension(const char *addr, char *buf, size_t size)
{
	const char *at = strchr(addr, '@');
	size_t cut;

	if (at == NULL || set.delimiters == NULL || set.delimiters[0] == '\0')
		return NULL;
	cut = strcspn(addr, set.delimiters);
	if (cut == 0 || addr + cut >= at ||
	    (size_t)snprintf(buf, size, "%.*s%s", (int)cut, addr, at) >= size)
		return NULL;
	return buf;
}

static const struct pf_alias *
catchall(const struct pf_table *t, const char *addr)
{
	char key[KEY_MAX];
	const char *at = strchr(addr, '@');

	if (at == NULL || at == addr ||
	    (size_t)snprintf(key, sizeof(key), "%s", at) >= sizeof(key))
		return NULL;
	return pf_find_alias(t, key);
}

static void
expand(struct expand *e, const char *addr)
{
	const struct pf_user *u = pf_find_user(e->t, addr);
	const struct pf_alias *a;
	const char *at = strchr(addr, '@'), *base;
	char buf[KEY_MAX];
	size_t i;

	if (++e->steps > RESOLVE_STEPS) {
		e->cut = 1;
		return;
	}
	if (on_path(e, addr)) {
		if (u != NULL)
			add_result(e, u->name);
		return;
	}
	a = pf_find_alias(e->t, addr);
	if (a == NULL && u != NULL) {
		add_result(e, u->name);
		return;
	}
	if (a == NULL && at != NULL && pf_is_local_domain(e->t, at + 1) &&
	    (base = strip_extension(addr, buf, sizeof(buf))) != NULL) {
		/* Before the catch-all, as Postfix orders it. */
		expand(e, base);
		return;
	}
	if (a == NULL)
		a = catchall(e->t, addr);
	if (a == NULL) {
		/* Not ours to know: a forward for the relay. */
		if (at != NULL && !pf_is_local_domain(e->t, at + 1))
			add_result(e, addr);
		return;
	}
	if (e->depth == RESOLVE_DEPTH) {
		e->cut = 1;
		return;
	}
	e->path[e->depth++] = addr;
	for (i = 0; i < a->ntargets; i++)
		expand(e, e->t->strs[a->targets + i]);
	e->depth--;
}

static int
resolve_in(const struct pf_table *t, const char *key, postern_pool_t *pool,
           const char ***users, size_t *n)
{
	struct expand *e;
	const char *at = strchr(key, '@');
	const char **v;
	size_t i;

	if (at != NULL && !pf_is_local_domain(t, at + 1))
		return POSTERN_AUTH_NOT_LOCAL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return POSTERN_AUTH_TEMPFAIL;
	e->t = t;
	expand(e, key);
	if (e->cut)
		auth_passwd_log(POSTERN_LOG_WARNING, "resolving '%s': aliases "
		                "nest deeper than %d or expand to more than %d "
		                "addresses; the rest is ignored", key,
		                RESOLVE_DEPTH, RESOLVE_STEPS);
	v = host->pool_alloc(pool, (e->n + 1) * sizeof(*v));
	for (i = 0; i < e->n; i++)
		v[i] = host->pool_strndup(pool, e->out[i], strlen(e->out[i]));
	*users = v;
	*n = e->n;
	free(e);
	return *n > 0 ? POSTERN_AUTH_YES : POSTERN_AUTH_NO;
}

static int
ap_resolve(const char *address, postern_pool_t *pool, const char ***users,
           size_t *n)
{
	char key[KEY_MAX];
	struct pf_table *t;
	int rc;

	*users = NULL;
	*n = 0;
	if (pf_lower(address, key, sizeof(key)) < 0 ||
	    pf_check_name(key, 0) != NULL)
		return POSTERN_AUTH_NO;
	if ((t = table_get()) == NULL)
		return POSTERN_AUTH_TEMPFAIL;
	rc = resolve_in(t, key, pool, users, n);
	table_put(t);
	return rc;
}

/* ---- administration --------------------------------------------------- */

struct user_edit {
	const char *name;
	const char *hash; /* new password field, or NULL to keep */
	const struct postern_user *fields;
};

static int
bad_value(const char *s, int colon_ok)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f ||
		    (*s == ':' && !colon_ok))
			return 1;
	return 0;
}

static int
check_fields(const struct postern_user *f, char *err, size_t errlen)
{
	size_t i;

	if (bad_value(f->home, 0)) {
		snprintf(err, errlen, "home '%s': blank, control character or "
		         "':' not allowed", f->home);
		return -1;
	}
	if (bad_value(f->mail, 1)) {
		snprintf(err, errlen, "mail location '%s': blank or control "
		         "character not allowed", f->mail);
		return -1;
	}
	for (i = 0; i < f->nextra; i++) {
		if (f->extra[i][0] == '\0' || bad_value(f->extra[i], 1)) {
			snprintf(err, errlen, "extra field '%s': empty, or "
			         "blank or control character", f->extra[i]);
			return -1;
		}
	}
	return 0;
}

static int
is_mail_field(const char *s)
{
	return strncmp(s, "userdb_mail=", 12) == 0 ||
	       strncmp(s, "mail=", 5) == 0;
}

/* The extra fields of `f` as one string (malloc'd). */
static char *
join_extra(const struct postern_user *f)
{
	size_t i, len = 1;
	char *s;

	for (i = 0; i < f->nextra; i++)
		len += strlen(f->extra[i]) + 1;
	if (f->mail != NULL)
		len += strlen("userdb_mail=") + strlen(f->mail) + 1;
	if ((s = calloc(1, len)) == NULL)
		abort();
	for (i = 0; i < f->nextra; i++) {
		/* `mail` is the one mail location: no stale copy. */
		if (f->mail != NULL && is_mail_field(f->extra[i]))
			continue;
		if (*s != '\0')
			strcat(s, " ");
		strcat(s, f->extra[i]);
	}
	if (f->mail != NULL) {
		if (*s != '\0')
			strcat(s, " ");
		strcat(s, "userdb_mail=");
		strcat(s, f->mail);
	}
	return s;
}

static int
build_user(void *arg, const char *old, char **line, char *err,
           size_t errlen)
{
	const struct user_edit *ue = arg;
	const struct postern_user *f = ue->fields;
	char *copy = strdup(old != NULL ? old : ""), *fl[8], *extra = NULL;
	char uid[16], gid[16];
	size_t len;

	if (copy == NULL)
		abort();
	if (old == NULL && ue->hash == NULL) {
		snprintf(err, errlen, "%s: no user '%s' (a new user needs a "
		         "password)", users_path, ue->name);
		free(copy);
		return -1;
	}
	pf_split_user(copy, fl);
	if (f != NULL) {
		snprintf(uid, sizeof(uid), f->uid ? "%u" : "", f->uid);
		snprintf(gid, sizeof(gid), f->gid ? "%u" : "", f->gid);
		fl[2] = uid;
		fl[3] = gid;
		fl[5] = (char *)(f->home != NULL ? f->home : "");
		fl[7] = extra = join_extra(f);
	}
	if (asprintf(line, "%s:%s:%s:%s:%s:%s:%s:%s", ue->name,
	             ue->hash != NULL ? ue->hash : fl[1], fl[2], fl[3], fl[4],
	             fl[5], fl[6], fl[7]) < 0)
		abort();
	/* Empty trailing fields are optional: leave them out. */
	len = strlen(*line);
	while (len > 0 && (*line)[len - 1] == ':')
		(*line)[--len] = '\0';
	free(extra);
	free(copy);
	return 0;
}

static int
ap_user_set(const char *name, const char *password,
            const struct postern_user *fields, char *err, size_t errlen)
{
	struct user_edit ue = { NULL, NULL, fields };
	char key[KEY_MAX], hash[PWHASH_MAX];
	const char *why;
	int rc;

	if (pf_lower(name, key, sizeof(key)) < 0)
		why = "too long";
	else
		why = pf_check_name(key, 0);
	if (why != NULL) {
		snprintf(err, errlen, "user name '%s': %s", name, why);
		return -1;
	}
	if (fields != NULL && check_fields(fields, err, errlen) < 0)
		return -1;
	if (password != NULL &&
	    pwhash_make(password, strlen(password), hash, sizeof(hash)) < 0) {
		snprintf(err, errlen, "cannot hash the password with argon2id "
		         "(argon2_memlimit %lld bytes: out of memory?)",
		         set.memlimit);
		return -1;
	}
	ue.name = key;
	ue.hash = password != NULL ? hash : NULL;
	rc = pf_edit(users_path, PF_USERS, key, build_user, &ue, err, errlen);
	sodium_memzero(hash, sizeof(hash));
	reload_soon();
	return rc;
}

struct del_edit {
	const char *what; /* "user", "alias" */
	const char *key;
	const char *path;
};

static int
build_delete(void *arg, const char *old, char **line, char *err,
             size_t errlen)
{
	const struct del_edit *de = arg;

	if (old == NULL) {
		snprintf(err, errlen, "%s: no %s '%s'", de->path, de->what,
		         de->key);
		return -1;
	}
	*line = NULL;
	return 0;
}

static int
ap_user_delete(const char *name, char *err, size_t errlen)
{
	char key[KEY_MAX];
	struct del_edit de = { "user", key, users_path };
	int rc;

	if (pf_lower(name, key, sizeof(key)) < 0) {
		snprintf(err, errlen, "%s: no user '%s'", users_path, name);
		return -1;
	}
	rc = pf_edit(users_path, PF_USERS, key, build_delete, &de, err,
	             errlen);
	reload_soon();
	return rc;
}

struct alias_edit {
	const char *address;
	const char *const *targets;
	size_t ntargets;
};

static int
build_alias(void *arg, const char *old, char **line, char *err,
            size_t errlen)
{
	const struct alias_edit *ae = arg;
	size_t i, len = strlen(ae->address) + 2;
	char *s;

	(void)old;
	(void)err;
	(void)errlen;
	for (i = 0; i < ae->ntargets; i++)
		len += strlen(ae->targets[i]) + 2;
	if ((s = calloc(1, len + 1)) == NULL)
		abort();
	strcat(s, ae->address);
	strcat(s, ":");
	for (i = 0; i < ae->ntargets; i++) {
		strcat(s, i == 0 ? " " : ", ");
		strcat(s, ae->targets[i]);
	}
	for (i = 0; s[i] != '\0'; i++)
		s[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	*line = s;
	return 0;
}

static int
check_alias(const char *address, const char *const *targets,
            size_t ntargets, char *err, size_t errlen)
{
	const char *why;
	size_t i;

	if (aliases_path == NULL) {
		snprintf(err, errlen, "no aliases file (auth_passwd.aliases "
		         "is empty)");
		return -1;
	}
	if ((why = pf_check_name(address, 1)) != NULL) {
		snprintf(err, errlen, "alias '%s': %s", address, why);
		return -1;
	}
	if (ntargets == 0) {
		snprintf(err, errlen, "alias '%s': no targets", address);
		return -1;
	}
	for (i = 0; i < ntargets; i++) {
		why = pf_check_name(targets[i], 0);
		if (why == NULL && (*targets[i] == '|' || *targets[i] == '/'))
			why = "pipes and files are not supported";
		if (why != NULL) {
			snprintf(err, errlen, "alias '%s': target '%s': %s",
			         address, targets[i], why);
			return -1;
		}
	}
	return 0;
}

static int
ap_alias_set(const char *address, const char *const *targets,
             size_t ntargets, char *err, size_t errlen)
{
	char key[KEY_MAX];
	struct alias_edit ae = { key, targets, ntargets };
	int rc;

	if (pf_lower(address, key, sizeof(key)) < 0) {
		snprintf(err, errlen, "alias '%.40s...': too long", address);
		return -1;
	}
	if (check_alias(key, targets, ntargets, err, errlen) < 0)
		return -1;
	rc = pf_edit(aliases_path, PF_ALIASES, key, build_alias, &ae, err,
	             errlen);
	reload_soon();
	return rc;
}

static int
ap_alias_delete(const char *address, char *err, size_t errlen)
{
	char key[KEY_MAX];
	struct del_edit de = { "alias", key, aliases_path };
	int rc;

	if (aliases_path == NULL) {
		snprintf(err, errlen, "no aliases file (auth_passwd.aliases "
		         "is empty)");
		return -1;
	}
	if (pf_lower(address, key, sizeof(key)) < 0) {
		snprintf(err, errlen, "%s: no alias '%s'", aliases_path,
		         address);
		return -1;
	}
	rc = pf_edit(aliases_path, PF_ALIASES, key, build_delete, &de, err,
	             errlen);
	reload_soon();
	return rc;
}

static const char *
join_targets(const struct pf_table *t, const struct pf_alias *a,
             postern_pool_t *pool)
{
	size_t i, len = 1;
	char *s;

	for (i = 0; i < a->ntargets; i++)
		len += strlen(t->strs[a->targets + i]) + 1;
	s = host->pool_alloc(pool, len);
	for (i = 0; i < a->ntargets; i++) {
		if (i > 0)
			strcat(s, " ");
		strcat(s, t->strs[a->targets + i]);
	}
	return s;
}

static int
ap_alias_list(postern_pool_t *pool, const char ***addresses,
              const char ***targets, size_t *n)
{
	struct pf_table *t;
	const char **av, **tv;
	size_t i;

	if ((t = table_get()) == NULL)
		return -1;
	av = host->pool_alloc(pool, (t->naliases + 1) * sizeof(*av));
	tv = host->pool_alloc(pool, (t->naliases + 1) * sizeof(*tv));
	for (i = 0; i < t->naliases; i++) {
		av[i] = host->pool_strndup(pool, t->aliases[i].address,
		                           strlen(t->aliases[i].address));
		tv[i] = join_targets(t, &t->aliases[i], pool);
	}
	*addresses = av;
	*targets = tv;
	*n = t->naliases;
	table_put(t);
	return 0;
}

static const struct postern_auth auth_table = {
	.size = sizeof(struct postern_auth),
	.name = "passwd-file",
	.lookup = ap_lookup,
	.verify = ap_verify,
	.list = ap_list,
	.resolve = ap_resolve,
	.user_set = ap_user_set,
	.user_delete = ap_user_delete,
	.alias_set = ap_alias_set,
	.alias_delete = ap_alias_delete,
	.alias_list = ap_alias_list,
};

/* ---- worker ----------------------------------------------------------- */

static int
ap_start(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&reload_lock);
	check_now = 1;
	reload_locked();
	pthread_mutex_unlock(&reload_lock);
	return 0;
}

static void
ap_exit(void *arg)
{
	(void)arg;
	table_swap(NULL);
}

static const struct postern_worker_ops ap_worker_ops = {
	.size = sizeof(struct postern_worker_ops),
	.start = ap_start,
	.exit = ap_exit,
};

/* ---- init ------------------------------------------------------------- */

static char *
full_path(const char *name)
{
	const char *dir = host->dir(POSTERN_DIR_CONFIG);
	char *p;

	if (name[0] == '/' || dir == NULL || *dir == '\0')
		p = strdup(name);
	else if (asprintf(&p, "%s/%s", dir, name) < 0)
		p = NULL;
	if (p == NULL)
		abort();
	return p;
}

static int
check_domains(void)
{
	postern_cfg_t *node = host->cfg_lookup(host->cfg_module(self),
	                                       "domains");
	size_t i;
	int bad = 0;

	domains = calloc(set.domains.count + 1, sizeof(*domains));
	if (domains == NULL)
		abort();
	for (i = 0; i < set.domains.count; i++) {
		const char *d = set.domains.items[i];
		char *copy = strdup(d);

		if (copy == NULL)
			abort();
		pf_lower(d, copy, strlen(d) + 1);
		domains[ndomains++] = copy;
		if (*d == '\0' || strchr(d, '@') != NULL ||
		    pf_check_name(d, 0) != NULL) {
			host->cfg_error(self, host->cfg_elem(node, i),
			                "'%s' is not a domain name", d);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

static int
check_settings(void)
{
	postern_cfg_t *group = host->cfg_module(self);

	if (*set.users == '\0') {
		host->cfg_error(self, host->cfg_lookup(group, "users"),
		                "the users file must be named");
		return -1;
	}
	users_path = full_path(set.users);
	if (*set.aliases != '\0')
		aliases_path = full_path(set.aliases);
	if (check_domains() < 0)
		return -1;
	if (access(users_path, F_OK) < 0 && errno == ENOENT)
		host->log(self, POSTERN_LOG_NOTICE, "%s does not exist yet: "
		          "no user can log in until `posternctl user add` "
		          "creates it", users_path);
	return 0;
}

static void ap_fini(postern_module_t *m);

static int
ap_init(const struct postern_host *h, postern_module_t *m)
{
	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), ap_keys, &set) != 0)
		return -1;
	if (check_settings() < 0)
		goto fail;
	if (pwhash_setup((unsigned long long)set.opslimit,
	                 (size_t)set.memlimit) < 0) {
		h->log(m, POSTERN_LOG_ERROR, "libsodium failed to initialise");
		goto fail;
	}
	/* The dummy costs one hash: made here, once, so that every
	 * worker's isolation process has it from its first check. */
	pwhash_dummy_prepare();
	verify_fn = h->isolate_register(m, "auth_passwd verify",
	                                verify_isolated);
	if (verify_fn == NULL)
		goto fail;
	if (h->worker_ops(m, &ap_worker_ops, NULL) < 0 ||
	    h->service_publish(m, POSTERN_AUTH_SERVICE, POSTERN_AUTH_MAJOR,
	                       POSTERN_AUTH_MINOR, &auth_table) < 0)
		goto fail;
	return 0;
fail:
	ap_fini(m);
	return -1;
}

static void
ap_fini(postern_module_t *m)
{
	size_t i;

	(void)m;
	table_swap(NULL);
	for (i = 0; i < ndomains; i++)
		free(domains[i]);
	free(domains);
	domains = NULL;
	ndomains = 0;
	free(users_path);
	free(aliases_path);
	users_path = aliases_path = NULL;
	tried = 0;
}

POSTERN_MODULE(.name = "auth_passwd", .version = "1.0",
               .kind = POSTERN_KIND_AUTH, .init = ap_init, .fini = ap_fini);
