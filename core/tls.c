/*
 * tls.c - TLS contexts (see tls.h; a connection's TLS I/O is tls_io.c).
 *
 * Building a context is split from reading the configuration so it can be
 * tested, and reused, without a configuration: tls_create_ctx takes plain
 * settings, tls_create parses a group into them.
 *
 * Every context is built in the master before the workers fork, so the
 * session ticket keys OpenSSL generates per context are the same in every
 * worker: a client resumes with whichever worker accepts it.
 */
#include "tls.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "conf.h"
#include "xalloc.h"

/* Identifies our sessions in the cache; required once client
 * certificates are requested, or resumption fails. */
static const unsigned char tls_sid_ctx[] = "postern";

/* TLS 1.2 ciphers when none are configured: forward secret or not, but
 * never anonymous, export grade, RC4, 3DES or MD5. */
#define TLS_DEFAULT_CIPHERS "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!PSK:!SRP"

#define TLS_SESSION_CACHE_SIZE 20480
#define TLS_SESSION_TIMEOUT 3600 /* seconds */

static struct postern_tls *tls_list;

/* Formats "what: reason", the reason being OpenSSL's oldest queued error
 * (the root cause; later ones only add context), and clears the queue. */
static void
tls_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_error();
	char reason[256];

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "unknown error");
	ERR_clear_error();
	snprintf(err, errlen, "%s: %s", what, reason);
}

static int
tls_min_version(const char *name, int *version)
{
	if (name == NULL || strcmp(name, "TLSv1.2") == 0)
		*version = TLS1_2_VERSION;
	else if (strcmp(name, "TLSv1.3") == 0)
		*version = TLS1_3_VERSION;
	else
		return -1;
	return 0;
}

/* Accepts every client certificate: a certificate is only ever asked
 * for, never required, and conn_tls_info reports whether it verified. */
static int
tls_verify_any(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	return 1;
}

static int
tls_load_ca(SSL_CTX *ctx, const char *ca, char *err, size_t errlen,
            const char **which)
{
	STACK_OF(X509_NAME) *names;
	char what[600];

	*which = "ca";
	snprintf(what, sizeof(what), "cannot load CA file %s", ca);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		tls_err(err, errlen, what);
		return -1;
	}
	names = SSL_load_client_CA_file(ca);
	if (names == NULL) {
		tls_err(err, errlen, what);
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_any);
	return 0;
}

static int
tls_load_keys(SSL_CTX *ctx, const struct tls_settings *s, char *err,
              size_t errlen, const char **which)
{
	char what[2200];

	*which = "cert";
	if (SSL_CTX_use_certificate_chain_file(ctx, s->cert) != 1) {
		snprintf(what, sizeof(what), "cannot load certificate %s",
		         s->cert);
		tls_err(err, errlen, what);
		return -1;
	}
	/* OpenSSL refuses a key that does not match the certificate here
	 * already; SSL_CTX_check_private_key below says so plainly. */
	*which = "key";
	if (SSL_CTX_use_PrivateKey_file(ctx, s->key, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();
		if (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
			snprintf(what, sizeof(what),
			         "key %s does not match certificate %s",
			         s->key, s->cert);
		else
			snprintf(what, sizeof(what), "cannot load key %s",
			         s->key);
		tls_err(err, errlen, what);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(what, sizeof(what),
		         "key %s does not match certificate %s", s->key,
		         s->cert);
		tls_err(err, errlen, what);
		return -1;
	}
	return 0;
}

static int
tls_set_protocol(SSL_CTX *ctx, const struct tls_settings *s, char *err,
                 size_t errlen, const char **which)
{
	char what[600];
	int version;

	*which = "min_version";
	if (tls_min_version(s->min_version, &version) < 0) {
		snprintf(err, errlen,
		         "min_version '%s': expected TLSv1.2 or TLSv1.3",
		         s->min_version);
		return -1;
	}
	if (SSL_CTX_set_min_proto_version(ctx, version) != 1) {
		tls_err(err, errlen, "cannot set the minimum TLS version");
		return -1;
	}
	*which = "ciphers";
	if (SSL_CTX_set_cipher_list(ctx, s->ciphers != NULL
	                                     ? s->ciphers
	                                     : TLS_DEFAULT_CIPHERS) != 1) {
		snprintf(what, sizeof(what), "bad ciphers '%s'",
		         s->ciphers != NULL ? s->ciphers : TLS_DEFAULT_CIPHERS);
		tls_err(err, errlen, what);
		return -1;
	}
	*which = "ciphersuites";
	if (s->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, s->ciphersuites) != 1) {
		snprintf(what, sizeof(what), "bad ciphersuites '%s'",
		         s->ciphersuites);
		tls_err(err, errlen, what);
		return -1;
	}
	return 0;
}

static void
tls_set_options(SSL_CTX *ctx)
{
	/* No compression (CRIME), no renegotiation (a client-driven CPU
	 * sink, and a source of mid-stream surprises), our cipher order.
	 * A peer dropping TCP without close_notify is ordinary for mail
	 * and the protocols frame their own data: treat it as EOF. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	                             SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* conn.c writes from a queue that only grows at the tail and may
	 * pass a longer length on retry; idle connections keep no buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT);
	SSL_CTX_set_session_id_context(ctx, tls_sid_ctx,
	                               sizeof(tls_sid_ctx) - 1);
}

/* tls_create_ctx, also saying which setting failed (`*which`, the
 * configuration key's name; NULL when none in particular). */
static postern_tls_t *
tls_build(const struct tls_settings *s, char *err, size_t errlen,
          const char **which)
{
	postern_tls_t *t;
	SSL_CTX *ctx;

	*which = NULL;
	if (s->cert == NULL || s->key == NULL) {
		snprintf(err, errlen, "a certificate and a key are required");
		return NULL;
	}
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_err(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	tls_set_options(ctx);
	if (tls_set_protocol(ctx, s, err, errlen, which) < 0 ||
	    tls_load_keys(ctx, s, err, errlen, which) < 0 ||
	    (s->ca != NULL && tls_load_ca(ctx, s->ca, err, errlen,
	                                  which) < 0)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	t->cert_file = xstrdup(s->cert);
	t->next = tls_list;
	tls_list = t;
	return t;
}

postern_tls_t *
tls_create_ctx(const struct tls_settings *s, char *err, size_t errlen)
{
	const char *which;

	return tls_build(s, err, errlen, &which);
}

postern_tls_t *
tls_client_ctx(const char *ca, char *err, size_t errlen)
{
	postern_tls_t *t;
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_err(err, errlen, "cannot create a TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	                             SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
	               : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_err(err, errlen, ca != NULL ? ca : "default CA paths");
		SSL_CTX_free(ctx);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	t->cert_file = xstrdup(ca != NULL ? ca : "(client)");
	t->next = tls_list;
	tls_list = t;
	return t;
}

/* The group as conf_parse fills it: min_version is an enum index. */
struct tls_conf {
	const char *cert, *key, *ca;
	int min_version;
	const char *ciphers, *ciphersuites;
};

static const char *const tls_versions[] = { "TLSv1.2", "TLSv1.3", NULL };

static const struct postern_cfg_key tls_keys[] = {
	{ .name = "cert", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct tls_conf, cert),
	  .flags = POSTERN_CFG_REQUIRED,
	  .doc = "PEM certificate file, followed by its chain" },
	{ .name = "key", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct tls_conf, key),
	  .flags = POSTERN_CFG_REQUIRED,
	  .doc = "PEM private key file" },
	{ .name = "ca", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct tls_conf, ca),
	  .doc = "CA file to verify client certificates (optional)" },
	{ .name = "min_version", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct tls_conf, min_version),
	  .def = "TLSv1.2", .choices = tls_versions,
	  .doc = "oldest TLS version accepted" },
	{ .name = "ciphers", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct tls_conf, ciphers),
	  .doc = "TLS 1.2 cipher list (OpenSSL syntax)" },
	{ .name = "ciphersuites", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct tls_conf, ciphersuites),
	  .doc = "TLS 1.3 cipher suites (OpenSSL syntax)" },
	{ .name = NULL },
};

/* A relative path names a file in the configuration's directory, as
 * every path a module reads does (auth_passwd's users, for one). */
static const char *
conf_relative(struct conf *c, const char *path, char *buf, size_t size)
{
	const char *dir = conf_dir(c);

	if (path == NULL || path[0] == '/' || dir == NULL)
		return path;
	if ((size_t)snprintf(buf, size, "%s/%s", dir, path) >= size)
		return path; /* too long: fails to load, naming the key */
	return buf;
}

postern_tls_t *
tls_create(struct conf *c, postern_cfg_t *node)
{
	struct tls_conf tc;
	struct tls_settings s;
	postern_tls_t *t;
	postern_cfg_t *at;
	const char *which;
	char err[1024], cert[4096], key[4096], ca[4096];

	memset(&tc, 0, sizeof(tc));
	if (node == NULL) {
		conf_error(c, NULL, "TLS: no configuration group given");
		return NULL;
	}
	if (conf_parse(c, node, NULL, tls_keys, sizeof(struct postern_cfg_key),
	               &tc, 0) != 0)
		return NULL;
	s.cert = conf_relative(c, tc.cert, cert, sizeof(cert));
	s.key = conf_relative(c, tc.key, key, sizeof(key));
	s.ca = conf_relative(c, tc.ca, ca, sizeof(ca));
	s.min_version = tc.min_version >= 0 && tc.min_version < 2
	                    ? tls_versions[tc.min_version]
	                    : NULL;
	s.ciphers = tc.ciphers;
	s.ciphersuites = tc.ciphersuites;
	t = tls_build(&s, err, sizeof(err), &which);
	if (t == NULL) {
		/* Point at the key that failed when the file has it. */
		at = which != NULL ? conf_lookup(node, which) : NULL;
		conf_error(c, at != NULL ? at : node, "%s", err);
	}
	return t;
}

void
tls_free(postern_tls_t *t)
{
	postern_tls_t **pp;

	if (t == NULL)
		return;
	for (pp = &tls_list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	/* Connections still using the context hold their own reference. */
	SSL_CTX_free(t->ctx);
	free(t->cert_file);
	free(t);
}

void
tls_free_all(void)
{
	while (tls_list != NULL)
		tls_free(tls_list);
}
