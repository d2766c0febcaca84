/*
 * tls.h - server TLS contexts (OpenSSL 3, TLS 1.2 and newer).
 */
#ifndef CORE_TLS_H
#define CORE_TLS_H

#include <openssl/ssl.h>

#include <postern/types.h>

struct conf;

struct postern_tls {
	SSL_CTX *ctx;
	char *cert_file; /* kept for log lines */
	struct postern_tls *next; /* every context, for tls_free_all */
};

/* What a server context is built from.  Only cert and key are required;
 * NULL elsewhere means the default. */
struct tls_settings {
	const char *cert;         /* PEM: the certificate, then its chain */
	const char *key;          /* PEM private key */
	const char *ca;           /* CA file to verify client certificates */
	const char *min_version;  /* "TLSv1.2" (default) or "TLSv1.3" */
	const char *ciphers;      /* TLS 1.2 cipher list (OpenSSL syntax) */
	const char *ciphersuites; /* TLS 1.3 suites (OpenSSL syntax) */
};

/* Builds a server context from `s`, with no configuration involved.
 * NULL on failure, with `err` (errlen bytes) saying what failed: the file
 * involved and OpenSSL's reason. */
postern_tls_t *tls_create_ctx(const struct tls_settings *s, char *err,
                              size_t errlen);

/* Builds a context from a group (keys: cert, key, ca, min_version,
 * ciphers, ciphersuites; see host->tls_create).  Errors go through
 * conf_error (`FILE:LINE: key 'x.tls.cert': cannot read ...`); NULL then. */
postern_tls_t *tls_create(struct conf *c, postern_cfg_t *node);
/* A client context (outbound STARTTLS): TLS 1.2 or newer, peers
 * verified against the PEM file `ca` or, when NULL, the system's
 * default CA paths (enforced per connection by conn_starttls_client).
 * NULL on failure, with `err` saying what failed. */
postern_tls_t *tls_client_ctx(const char *ca, char *err, size_t errlen);
void tls_free(postern_tls_t *t);
/* Frees every context created (process exit). */
void tls_free_all(void);

#endif /* CORE_TLS_H */
