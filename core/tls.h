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
};

/* Builds a context from a group (keys: cert, key, ca, min_version,
 * ciphers, ciphersuites; see host->tls_create).  Errors go through
 * conf_error (`FILE:LINE: key 'x.tls.cert': cannot read ...`); NULL then. */
postern_tls_t *tls_create(struct conf *c, postern_cfg_t *node);
void tls_free(postern_tls_t *t);
/* Frees every context created (process exit). */
void tls_free_all(void);

#endif /* CORE_TLS_H */
