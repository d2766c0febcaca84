/*
 * tls_io.c - one connection's TLS over OpenSSL (see tls.h): the
 * handshake, reads and writes as conn.c needs them, with OpenSSL's
 * error codes turned into what the connection does next and its error
 * queue into a reason for the log.  Kept apart from the contexts
 * (tls.c), which need the configuration, so the connection code builds
 * and is fuzzed without it.
 */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The OpenSSL error behind a failed call, for log lines; clears the
 * queue. */
static const char *
io_reason(char *buf, size_t len, int sslerr)
{
	unsigned long e = ERR_peek_error();

	if (e != 0)
		ERR_error_string_n(e, buf, len);
	else if (sslerr == SSL_ERROR_SYSCALL && errno != 0)
		snprintf(buf, len, "%s", strerror(errno));
	else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
		snprintf(buf, len, "connection closed by peer");
	else
		snprintf(buf, len, "SSL error %d", sslerr);
	ERR_clear_error();
	return buf;
}

SSL *
tls_io_new(postern_tls_t *t, int fd, char *reason, size_t rlen)
{
	SSL *ssl;

	ERR_clear_error();
	ssl = SSL_new(t->ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		io_reason(reason, rlen, SSL_ERROR_SSL);
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

int
tls_io_client(SSL *ssl, const char *verify_name)
{
	struct in6_addr ip;
	int numeric;

	SSL_set_connect_state(ssl);
	if (verify_name == NULL) {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	numeric = inet_pton(AF_INET, verify_name, &ip) == 1 ||
	          inet_pton(AF_INET6, verify_name, &ip) == 1;
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	if (numeric)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		                                     verify_name) == 1 ? 0 : -1;
	if (SSL_set1_host(ssl, verify_name) != 1 ||
	    SSL_set_tlsext_host_name(ssl, verify_name) != 1)
		return -1;
	return 0;
}

enum tls_io_result
tls_io_handshake(SSL *ssl, const char **what, char *reason, size_t rlen)
{
	long v;
	int r, err;

	ERR_clear_error();
	errno = 0;
	r = SSL_is_server(ssl) ? SSL_accept(ssl) : SSL_connect(ssl);
	if (r == 1)
		return TLS_IO_OK;
	err = SSL_get_error(ssl, r);
	if (err == SSL_ERROR_WANT_READ)
		return TLS_IO_WANT_READ;
	if (err == SSL_ERROR_WANT_WRITE)
		return TLS_IO_WANT_WRITE;
	io_reason(reason, rlen, err);
	*what = "TLS handshake";
	/* A client that refused the server's certificate says which
	 * check failed, not just that the handshake did. */
	if (!SSL_is_server(ssl) &&
	    (v = SSL_get_verify_result(ssl)) != X509_V_OK) {
		*what = "TLS certificate verification";
		snprintf(reason, rlen, "%s", X509_verify_cert_error_string(v));
	}
	return TLS_IO_FAILED;
}

enum tls_io_result
tls_io_read(SSL *ssl, void *buf, size_t len, size_t *got, char *reason,
            size_t rlen)
{
	int n, err;

	*got = 0;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	n = SSL_read(ssl, buf, (int)len);
	if (n > 0) {
		*got = (size_t)n;
		return TLS_IO_OK;
	}
	err = SSL_get_error(ssl, n);
	if (err == SSL_ERROR_WANT_READ)
		return TLS_IO_WANT_READ;
	if (err == SSL_ERROR_WANT_WRITE)
		return TLS_IO_WANT_WRITE;
	if (err == SSL_ERROR_ZERO_RETURN ||
	    (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)) {
		ERR_clear_error();
		return TLS_IO_EOF;
	}
	io_reason(reason, rlen, err);
	return TLS_IO_FAILED;
}

enum tls_io_result
tls_io_write(SSL *ssl, const void *buf, size_t len, size_t *sent,
             char *reason, size_t rlen)
{
	int n, err;

	*sent = 0;
	if (len > INT_MAX / 2)
		len = INT_MAX / 2;
	ERR_clear_error();
	errno = 0;
	n = SSL_write(ssl, buf, (int)len);
	if (n > 0) {
		*sent = (size_t)n;
		return TLS_IO_OK;
	}
	err = SSL_get_error(ssl, n);
	if (err == SSL_ERROR_WANT_WRITE)
		return TLS_IO_WANT_WRITE;
	if (err == SSL_ERROR_WANT_READ)
		return TLS_IO_WANT_READ;
	io_reason(reason, rlen, err);
	return TLS_IO_FAILED;
}

int
tls_io_pending(SSL *ssl)
{
	return SSL_pending(ssl);
}

const char *
tls_io_describe(SSL *ssl)
{
	static char buf[128];
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);

	snprintf(buf, sizeof(buf), "%s %s", SSL_get_version(ssl),
	         cipher != NULL ? SSL_CIPHER_get_name(cipher) : "?");
	return buf;
}

/* True when `info` (of the caller's size) has room for `field`. */
#define INFO_HAS(info, field)                                              \
	((info)->size >= offsetof(struct postern_tls_info, field) +        \
	                     sizeof((info)->field))

void
tls_io_info(SSL *ssl, struct postern_tls_info *info)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);

	if (INFO_HAS(info, version))
		info->version = SSL_get_version(ssl);
	if (INFO_HAS(info, cipher))
		info->cipher = cipher != NULL ? SSL_CIPHER_get_name(cipher)
		                              : "";
	if (INFO_HAS(info, bits))
		info->bits = cipher != NULL ? SSL_CIPHER_get_bits(cipher, NULL)
		                            : 0;
	if (INFO_HAS(info, peer_cert_verified))
		info->peer_cert_verified =
			SSL_get0_peer_certificate(ssl) != NULL &&
			SSL_get_verify_result(ssl) == X509_V_OK;
}

void
tls_io_free(SSL *ssl, int notify)
{
	if (ssl == NULL)
		return;
	if (notify) {
		ERR_clear_error();
		SSL_shutdown(ssl); /* close_notify, best effort */
		ERR_clear_error();
	}
	SSL_free(ssl);
}
