/*
 * passwd_hash.h - password schemes of the passwd-file: recognising a
 * stored hash, verifying a password against it, making new ones.
 *
 * A stored password is `{SCHEME}hash` (Dovecot's form) or a bare crypt(3)
 * hash recognised by its `$id$` prefix:
 *
 *	ARGON2ID      $argon2id$...   libsodium; what new hashes use
 *	SHA512-CRYPT  $6$...          crypt_r(3), for migrations
 *	SHA256-CRYPT  $5$...          crypt_r(3)
 *	BLF-CRYPT     $2y$ or $2b$    crypt_r(3) (bcrypt)
 *
 * Every function here is thread-safe once pwhash_setup has returned.
 */
#ifndef AUTH_PASSWD_HASH_H
#define AUTH_PASSWD_HASH_H

#include <stddef.h>

enum pwhash_scheme {
	PWHASH_NONE = 0,    /* empty field: the user cannot log in */
	PWHASH_ARGON2ID,
	PWHASH_SHA512_CRYPT,
	PWHASH_SHA256_CRYPT,
	PWHASH_BLF_CRYPT,
	PWHASH_UNKNOWN,     /* not usable: the user cannot log in */
};

/* Room for a hash pwhash_make writes, prefix and NUL included. */
#define PWHASH_MAX 160

/* Initialises libsodium and sets the argon2id cost of new hashes and of
 * the dummy hash.  0, or -1 when libsodium cannot start. */
int pwhash_setup(unsigned long long opslimit, size_t memlimit);

/* The scheme of a stored password field.  *hash is set to the hash
 * proper (after any {SCHEME} prefix).  For PWHASH_UNKNOWN, *reason says
 * why, without quoting the hash. */
enum pwhash_scheme pwhash_scheme(const char *field, const char **hash,
                                 const char **reason);

/* Scheme name as written in braces ("SHA512-CRYPT"). */
const char *pwhash_name(enum pwhash_scheme s);

/* 1 when `password` matches `hash` of scheme `s`, else 0.  Any usable
 * scheme; PWHASH_NONE and PWHASH_UNKNOWN never match. */
int pwhash_verify(enum pwhash_scheme s, const char *hash,
                  const char *password, size_t len);

/* Spends what a wrong password costs against an argon2id hash of the
 * configured cost, and fails: used for unknown users so that timing does
 * not tell them from known ones.  The dummy hash is made on first use
 * (or by pwhash_dummy_prepare, at worker start). */
void pwhash_dummy_prepare(void);
void pwhash_dummy_verify(const char *password, size_t len);

/* Writes "{ARGON2ID}$argon2id$..." for `password` into out[outlen].  0,
 * or -1 (out of memory for the configured memlimit). */
int pwhash_make(const char *password, size_t len, char *out, size_t outlen);

#endif /* AUTH_PASSWD_HASH_H */
