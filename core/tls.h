/*
 * tls.h - TLS contexts (OpenSSL 3, TLS 1.2 and newer), and one
 * connection's TLS: conn.c moves its octets through the tls_io_*
 * functions and never calls OpenSSL itself.
 */
#ifndef CORE_TLS_H
#define CORE_TLS_H

#include <openssl/ssl.h>

#include <postern/types.h>
#include <postern/conn.h>

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

/* ---- one connection's TLS -------------------------------------------- */

/* What a tls_io_* step came to. */
enum tls_io_result {
	TLS_IO_OK,         /* done: octets moved, handshake finished */
	TLS_IO_WANT_READ,  /* again once the socket is readable */
	TLS_IO_WANT_WRITE, /* again once the socket is writable */
	TLS_IO_EOF,        /* the peer closed (close_notify or plain EOF) */
	TLS_IO_FAILED      /* `reason` says why */
};

/* A TLS session over socket `fd` with context `t`: server side unless
 * tls_io_client says otherwise.  NULL with `reason` set. */
SSL *tls_io_new(postern_tls_t *t, int fd, char *reason, size_t rlen);
/* Makes `ssl` the client side, verifying the server's certificate for
 * `verify_name` (a host name, also sent as SNI, or an IP literal)
 * against the context's CAs, or nothing when it is NULL.  -1: the name
 * cannot be used. */
int tls_io_client(SSL *ssl, const char *verify_name);
/* One handshake step.  On TLS_IO_FAILED, `what` is what failed
 * ("TLS handshake", "TLS certificate verification") and `reason` why. */
enum tls_io_result tls_io_handshake(SSL *ssl, const char **what,
                                    char *reason, size_t rlen);
/* Reads up to len octets (*got of them), writes len octets at most
 * (*sent of them).  A write retried after TLS_IO_WANT_* must be given
 * at least the octets of the first try. */
enum tls_io_result tls_io_read(SSL *ssl, void *buf, size_t len,
                               size_t *got, char *reason, size_t rlen);
enum tls_io_result tls_io_write(SSL *ssl, const void *buf, size_t len,
                                size_t *sent, char *reason, size_t rlen);
/* Decrypted octets OpenSSL holds that the socket no longer shows. */
int tls_io_pending(SSL *ssl);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for log lines.  Static buffer. */
const char *tls_io_describe(SSL *ssl);
/* Fills what `info` (of its own size) has room for. */
void tls_io_info(SSL *ssl, struct postern_tls_info *info);
/* Frees `ssl`, sending close_notify first (best effort) when
 * `notify`. */
void tls_io_free(SSL *ssl, int notify);

#endif /* CORE_TLS_H */
