/*
 * postern/auth.h - the auth backend interface: users, passwords, aliases.
 *
 * An auth module (auth_passwd, or a vendor's LDAP or SQL backend)
 * publishes a `struct postern_auth` table as the service
 * POSTERN_AUTH_SERVICE, version POSTERN_AUTH_MAJOR.MINOR.  Protocols do not
 * call it for logins: they use the host's SASL functions (postern/sasl.h),
 * which call `verify` on a job thread and add the failure delay.  SMTP
 * calls `resolve` for recipients; storage receives `struct postern_user`.
 *
 * Every function is blocking: call it only from a job thread (see
 * postern/storage.h for the rule and why).  Backends must be thread-safe.
 * Strings returned come from the caller's pool.
 *
 * Logins under attack: the host calls `verify` only on its auth lane
 * (host->auth_job_submit in postern/host.h: `auth_threads` threads per
 * worker apart from the storage jobs, at most `auth_queue` checks
 * waiting, a temporary failure past that), and only after the failure
 * penalty: a client address or an account with recent failures waits
 * first (auth_penalty_* settings), and a name and password that failed
 * lately is refused without calling `verify` at all.  A backend gets
 * this protection by doing its expensive work (hashing, a directory
 * bind) inside `verify`, and nowhere else on a login's path; work of the
 * same kind it starts itself goes through host->auth_job_submit.
 */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <postern/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POSTERN_AUTH_SERVICE "auth"
#define POSTERN_AUTH_MAJOR 1
#define POSTERN_AUTH_MINOR 0

/* A user as the user database describes it. */
struct postern_user {
	size_t size;          /* sizeof(struct postern_user), set by caller */
	const char *name;     /* canonical login, e.g. "alice@example.org" */
	const char *home;     /* home directory, or NULL */
	const char *mail;     /* mail location ("maildir:~/Maildir"), or
	                         NULL for the storage's default */
	uint32_t uid, gid;    /* from the database; informative: workers
	                         run as one system user and own all mail */
	const char *const *extra; /* "key=value" extra fields */
	size_t nextra;
};

/* Results of lookup, verify and resolve. */
enum postern_auth_status {
	POSTERN_AUTH_TEMPFAIL = -1, /* the backend cannot answer now */
	POSTERN_AUTH_NO = 0,        /* no such user, wrong password, disabled:
	                               never said apart to a client */
	POSTERN_AUTH_YES = 1,
	POSTERN_AUTH_NOT_LOCAL = 2, /* resolve: the domain is not ours */
};

struct postern_auth {
	size_t size;       /* sizeof(struct postern_auth) */
	const char *name;  /* "passwd-file" */

	/* Finds a user by login name (case rules are the backend's:
	 * passwd-file compares whole names case-insensitively and reports
	 * the lower-case form).  YES fills *out. */
	int (*lookup)(const char *name, postern_pool_t *pool,
	              struct postern_user *out);
	/* Checks a password.  YES fills *out.  An unknown user, and a user
	 * whose hash is of a cheaper (migrated) scheme, cost as much time as
	 * a wrong password for a user of the default scheme, so timing does
	 * not tell them apart.  Runs on the auth lane (see above). */
	int (*verify)(const char *name, const char *password, size_t len,
	              postern_pool_t *pool, struct postern_user *out);
	/* Every user's login name. */
	int (*list)(postern_pool_t *pool, const char ***names, size_t *n);
	/* Resolves a recipient address ("Bob@Example.org") through aliases
	 * and catch-alls: YES with *targets (at least one), NO when the
	 * domain is ours but the address is not, NOT_LOCAL when the domain
	 * is not ours.  A target is a local login name, or, for an alias
	 * that forwards, an address in a domain that is not local (to
	 * relay); `lookup` tells them apart. */
	int (*resolve)(const char *address, postern_pool_t *pool,
	               const char ***targets, size_t *n);

	/* ---- administration (posternctl) ------------------------------
	 * Optional: NULL in a read-only backend.  Each returns 0, or -1 with
	 * a message for the administrator in err[errlen]. */

	/* Adds a user, or changes one: `password` (NULL keeps it) is hashed
	 * with the backend's default scheme (argon2id for passwd-file);
	 * `fields` (NULL keeps them) gives home, mail, uid, gid, extra. */
	int (*user_set)(const char *name, const char *password,
	                const struct postern_user *fields, char *err,
	                size_t errlen);
	int (*user_delete)(const char *name, char *err, size_t errlen);
	/* Sets `address` ("sales@example.org", or "@example.org" for a
	 * domain's catch-all) to deliver to `targets` (local users or other
	 * addresses). */
	int (*alias_set)(const char *address, const char *const *targets,
	                 size_t ntargets, char *err, size_t errlen);
	int (*alias_delete)(const char *address, char *err, size_t errlen);
	/* Every alias and its targets (space separated), from `pool`. */
	int (*alias_list)(postern_pool_t *pool, const char ***addresses,
	                  const char ***targets, size_t *n);
};

#ifdef __cplusplus
}
#endif

#endif /* POSTERN_AUTH_H */
