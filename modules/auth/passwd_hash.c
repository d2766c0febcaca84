/*
 * passwd_hash.c - password schemes: argon2id through libsodium, the
 * crypt(3) family through libxcrypt's crypt_r.
 *
 * Passwords are copied only where crypt_r needs a NUL-terminated string,
 * and those copies are wiped before they are freed.  Comparisons of
 * crypt output are constant-time.
 */
#include "passwd_hash.h"

#include <crypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#define ARGON2ID_TAG "{ARGON2ID}"

struct scheme_info {
	enum pwhash_scheme scheme;
	const char *name;
	const char *prefix[2]; /* what the hash proper starts with */
};

static const struct scheme_info schemes[] = {
	{ PWHASH_ARGON2ID, "ARGON2ID", { "$argon2id$", NULL } },
	{ PWHASH_SHA512_CRYPT, "SHA512-CRYPT", { "$6$", NULL } },
	{ PWHASH_SHA256_CRYPT, "SHA256-CRYPT", { "$5$", NULL } },
	{ PWHASH_BLF_CRYPT, "BLF-CRYPT", { "$2y$", "$2b$" } },
};
#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

static unsigned long long cost_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
static size_t cost_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];
static int dummy_ok;

int
pwhash_setup(unsigned long long opslimit, size_t memlimit)
{
	if (sodium_init() < 0)
		return -1;
	cost_ops = opslimit;
	cost_mem = memlimit;
	return 0;
}

const char *
pwhash_name(enum pwhash_scheme s)
{
	size_t i;

	for (i = 0; i < NSCHEMES; i++)
		if (schemes[i].scheme == s)
			return schemes[i].name;
	return s == PWHASH_NONE ? "none" : "unknown";
}

static int
has_prefix(const struct scheme_info *si, const char *hash)
{
	size_t i;

	for (i = 0; i < 2 && si->prefix[i] != NULL; i++)
		if (strncmp(hash, si->prefix[i], strlen(si->prefix[i])) == 0)
			return 1;
	return 0;
}

/* Beyond the prefix, is it a hash the scheme's verifier will take?  For
 * crypt, libxcrypt itself says (a damaged salt, a disabled method). */
static int
well_formed(const struct scheme_info *si, const char *hash)
{
	if (si->scheme == PWHASH_ARGON2ID)
		return strlen(hash) < crypto_pwhash_STRBYTES &&
		       strchr(hash, ' ') == NULL;
	switch (crypt_checksalt(hash)) {
	case CRYPT_SALT_OK:
	case CRYPT_SALT_METHOD_LEGACY:
	case CRYPT_SALT_TOO_CHEAP:
		return 1;
	default:
		return 0;
	}
}

static enum pwhash_scheme
by_prefix(const char *hash, const char **reason)
{
	size_t i;

	for (i = 0; i < NSCHEMES; i++) {
		if (!has_prefix(&schemes[i], hash))
			continue;
		if (!well_formed(&schemes[i], hash)) {
			*reason = "malformed hash";
			return PWHASH_UNKNOWN;
		}
		return schemes[i].scheme;
	}
	*reason = "unrecognised password hash (no {SCHEME} prefix and no "
	          "known $id$ form)";
	return PWHASH_UNKNOWN;
}

enum pwhash_scheme
pwhash_scheme(const char *field, const char **hash, const char **reason)
{
	const char *end;
	size_t i, len;

	*hash = field;
	*reason = NULL;
	if (*field == '\0')
		return PWHASH_NONE;
	if (*field != '{')
		return by_prefix(field, reason);
	end = strchr(field, '}');
	if (end == NULL) {
		*reason = "unterminated {SCHEME} prefix";
		return PWHASH_UNKNOWN;
	}
	len = (size_t)(end - field - 1);
	*hash = end + 1;
	for (i = 0; i < NSCHEMES; i++) {
		if (strlen(schemes[i].name) != len ||
		    strncasecmp(schemes[i].name, field + 1, len) != 0)
			continue;
		if (!has_prefix(&schemes[i], *hash) ||
		    !well_formed(&schemes[i], *hash)) {
			*reason = "hash does not match its {SCHEME}";
			return PWHASH_UNKNOWN;
		}
		return schemes[i].scheme;
	}
	*reason = "unknown password scheme";
	return PWHASH_UNKNOWN;
}

static int
crypt_verify(const char *hash, const char *password, size_t len)
{
	struct crypt_data *cd;
	char *copy;
	const char *out;
	size_t hlen = strlen(hash);
	int ok = 0;

	/* crypt(3) stops at a NUL: such a password would match a prefix. */
	if (memchr(password, '\0', len) != NULL)
		return 0;
	cd = calloc(1, sizeof(*cd)); /* ~32 KiB: not on a job's stack */
	copy = malloc(len + 1);
	if (cd != NULL && copy != NULL) {
		memcpy(copy, password, len);
		copy[len] = '\0';
		out = crypt_r(copy, hash, cd);
		ok = out != NULL && out[0] != '*' && strlen(out) == hlen &&
		     sodium_memcmp(out, hash, hlen) == 0;
		sodium_memzero(copy, len);
	}
	if (cd != NULL)
		sodium_memzero(cd, sizeof(*cd));
	free(copy);
	free(cd);
	return ok;
}

int
pwhash_verify(enum pwhash_scheme s, const char *hash, const char *password,
              size_t len)
{
	switch (s) {
	case PWHASH_ARGON2ID:
		return crypto_pwhash_str_verify(hash, password, len) == 0;
	case PWHASH_SHA512_CRYPT:
	case PWHASH_SHA256_CRYPT:
	case PWHASH_BLF_CRYPT:
		return crypt_verify(hash, password, len);
	default:
		return 0;
	}
}

static void
dummy_make(void)
{
	unsigned char secret[32];

	/* A password nobody knows: the dummy can never match. */
	randombytes_buf(secret, sizeof(secret));
	dummy_ok = crypto_pwhash_str(dummy_hash, (const char *)secret,
	                             sizeof(secret), cost_ops, cost_mem) == 0;
	sodium_memzero(secret, sizeof(secret));
}

void
pwhash_dummy_prepare(void)
{
	pthread_once(&dummy_once, dummy_make);
}

void
pwhash_dummy_verify(const char *password, size_t len)
{
	unsigned char out[32], salt[crypto_pwhash_SALTBYTES] = { 0 };

	int rc;

	pwhash_dummy_prepare();
	if (dummy_ok)
		rc = crypto_pwhash_str_verify(dummy_hash, password, len);
	else /* no dummy (memory was short then): the same work anyway */
		rc = crypto_pwhash(out, sizeof(out), password, len, salt,
		                   cost_ops, cost_mem,
		                   crypto_pwhash_ALG_ARGON2ID13);
	/* Whatever the outcome, the answer is "no". */
	(void)rc;
	sodium_memzero(out, sizeof(out));
}

int
pwhash_make(const char *password, size_t len, char *out, size_t outlen)
{
	size_t tag = strlen(ARGON2ID_TAG);

	if (outlen < tag + crypto_pwhash_STRBYTES)
		return -1;
	memcpy(out, ARGON2ID_TAG, tag);
	if (crypto_pwhash_str(out + tag, password, len, cost_ops,
	                      cost_mem) != 0)
		return -1;
	return 0;
}
