/*
 * test_tls.c - TLS contexts, implicit TLS and STARTTLS.
 *
 * The suite makes a self-signed P-256 certificate (and a second,
 * unrelated key) in a temporary directory.  Connection tests run the
 * server loop on the main thread and a blocking OpenSSL client on a
 * pthread; the client's sockets have timeouts, every test has an alarm(),
 * so nothing can hang.
 */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "tls.h"

#define TEST_ALARM_S 30
#define MAX_LINES 32

static char *tmpdir, *cert_file, *key_file, *other_key_file, *junk_file;

/* ---- certificates ------------------------------------------------------- */

static int
write_pem_key(const char *path, EVP_PKEY *pk)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	return ok ? 0 : -1;
}

static int
make_cert(const char *cert_path, const char *key_path)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;
	int rc = -1;

	if (pk == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                           (const unsigned char *)"localhost", -1, -1,
	                           0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, pk, EVP_sha256()) == 0)
		goto out;
	f = fopen(cert_path, "w");
	if (f == NULL)
		goto out;
	rc = PEM_write_X509(f, x) ? 0 : -1;
	fclose(f);
	if (rc == 0)
		rc = write_pem_key(key_path, pk);
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

static int
suite_init(void)
{
	EVP_PKEY *other;

	tmpdir = unit_tmpdir();
	if (asprintf(&cert_file, "%s/cert.pem", tmpdir) < 0 ||
	    asprintf(&key_file, "%s/key.pem", tmpdir) < 0 ||
	    asprintf(&other_key_file, "%s/other.pem", tmpdir) < 0)
		return -1;
	junk_file = unit_write_file(tmpdir, "junk.pem", "not a certificate\n");
	if (make_cert(cert_file, key_file) < 0)
		return -1;
	other = EVP_EC_gen("P-256");
	if (other == NULL || write_pem_key(other_key_file, other) < 0)
		return -1;
	EVP_PKEY_free(other);
	return 0;
}

static int
suite_cleanup(void)
{
	tls_free_all();
	unit_rm_rf(tmpdir);
	free(tmpdir);
	free(cert_file);
	free(key_file);
	free(other_key_file);
	free(junk_file);
	return 0;
}

/* ---- tls_create_ctx ----------------------------------------------------- */

static postern_tls_t *
ctx_with(const char *cert, const char *key, const char *min_version,
         const char *ciphers, char *err, size_t errlen)
{
	struct tls_settings s = { .cert = cert, .key = key,
	                          .min_version = min_version,
	                          .ciphers = ciphers };

	err[0] = '\0';
	return tls_create_ctx(&s, err, errlen);
}

static void
test_ctx_ok(void)
{
	struct tls_settings s = { .cert = cert_file, .key = key_file,
	                          .ca = cert_file };
	char err[512] = "";
	postern_tls_t *t;
	uint64_t opts;

	t = tls_create_ctx(&s, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_EQUAL(SSL_CTX_get_min_proto_version(t->ctx), TLS1_2_VERSION);
	opts = SSL_CTX_get_options(t->ctx);
	CU_ASSERT(opts & SSL_OP_NO_COMPRESSION);
	CU_ASSERT(opts & SSL_OP_NO_RENEGOTIATION);
	CU_ASSERT(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
	CU_ASSERT(SSL_CTX_get_verify_mode(t->ctx) & SSL_VERIFY_PEER);
	tls_free(t);

	t = ctx_with(cert_file, key_file, "TLSv1.3", NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(SSL_CTX_get_min_proto_version(t->ctx), TLS1_3_VERSION);
	/* left for tls_free_all (suite cleanup; ASan sees any leak) */
}

static void
test_ctx_missing_cert(void)
{
	char err[512], path[600];

	snprintf(path, sizeof(path), "%s/absent-cert.pem", tmpdir);
	CU_ASSERT_PTR_NULL(ctx_with(path, key_file, NULL, NULL, err,
	                            sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	fprintf(stderr, "[%s] ", err);
}

static void
test_ctx_missing_key(void)
{
	char err[512], path[600];

	snprintf(path, sizeof(path), "%s/absent-key.pem", tmpdir);
	CU_ASSERT_PTR_NULL(ctx_with(cert_file, path, NULL, NULL, err,
	                            sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	fprintf(stderr, "[%s] ", err);
}

static void
test_ctx_bad_cert(void)
{
	char err[512];

	CU_ASSERT_PTR_NULL(ctx_with(junk_file, key_file, NULL, NULL, err,
	                            sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, junk_file));
	fprintf(stderr, "[%s] ", err);
}

static void
test_ctx_key_mismatch(void)
{
	char err[512];

	CU_ASSERT_PTR_NULL(ctx_with(cert_file, other_key_file, NULL, NULL, err,
	                            sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "does not match"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, other_key_file));
	fprintf(stderr, "[%s] ", err);
}

static void
test_ctx_bad_settings(void)
{
	char err[512];

	CU_ASSERT_PTR_NULL(ctx_with(cert_file, key_file, "TLSv1.1", NULL, err,
	                            sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "TLSv1.1"));
	CU_ASSERT_PTR_NULL(ctx_with(cert_file, key_file, NULL, "NO-SUCH-CIPHER",
	                            err, sizeof(err)));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "NO-SUCH-CIPHER"));
	CU_ASSERT_PTR_NULL(ctx_with(NULL, key_file, NULL, NULL, err,
	                            sizeof(err)));
	CU_ASSERT(err[0] != '\0');
}

/* ---- the server --------------------------------------------------------- */

static struct {
	postern_tls_t *tls;    /* for STARTTLS */
	int greet;
	postern_conn_t *c;
	int accepted, closes;
	enum postern_close_reason why;
	int n;
	char text[MAX_LINES][128];
	int tls_at[MAX_LINES]; /* conn_tls_active when the line came */
	int starttls_rc, starttls_again;
	int info_rc;
	char version[32], cipher[128];
	int bits;
} S;

static struct loop *L;
static postern_listener_t *LS;
static unsigned port;

#define PUMP_UNTIL(expr, ms) UNIT_PUMP_UNTIL(L, expr, ms)

static void
record_info(postern_conn_t *c)
{
	struct postern_tls_info info;

	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	S.info_rc = conn_tls_info(c, &info);
	if (S.info_rc != POSTERN_OK)
		return;
	snprintf(S.version, sizeof(S.version), "%s", info.version);
	snprintf(S.cipher, sizeof(S.cipher), "%s", info.cipher);
	S.bits = info.bits;
}

static void
command(postern_conn_t *c, const char *text)
{
	struct postern_line more;

	if (strcmp(text, "STARTTLS") == 0) {
		conn_printf(c, "220 go ahead\r\n");
		S.starttls_rc = conn_starttls(c, S.tls);
		/* Whatever followed STARTTLS is gone. */
		S.starttls_again = conn_read_line(c, 512, &more);
		/* Queued after the switch: must go out inside TLS. */
		conn_printf(c, "250 queued after STARTTLS\r\n");
	} else if (strcmp(text, "QUIT") == 0) {
		conn_printf(c, "221 bye\r\n");
		conn_close(c);
	} else {
		if (conn_tls_active(c))
			record_info(c);
		conn_printf(c, "250 %s tls=%d\r\n", text,
		            conn_tls_active(c));
	}
}

static void
t_on_read(postern_conn_t *c, void *arg)
{
	struct postern_line line;
	int st;

	while ((st = conn_read_line(c, 512, &line)) == POSTERN_OK) {
		size_t n = line.len < 127 ? line.len : 127;
		char text[128];

		memcpy(text, line.data, n);
		text[n] = '\0';
		if (S.n < MAX_LINES) {
			memcpy(S.text[S.n], text, n + 1);
			S.tls_at[S.n] = conn_tls_active(c);
		}
		S.n++; /* counts every line, keeps the first MAX_LINES */
		command(c, text);
	}
}

static void
t_on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	S.closes++;
	S.why = why;
	if (S.c == c)
		S.c = NULL;
}

static const struct postern_conn_ops t_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = t_on_read,
	.on_close = t_on_close,
};

static void
t_on_accept(postern_conn_t *c, void *arg)
{
	S.accepted++;
	S.c = c;
	conn_set_ops(c, &t_ops, NULL);
	if (S.greet)
		conn_printf(c, "220 hi\r\n");
}

static const struct postern_listener_ops t_lops = {
	.size = sizeof(struct postern_listener_ops),
	.on_accept = t_on_accept,
};

/* A server on 127.0.0.1, implicit TLS when `tls` is set. */
static int
setup_limits(postern_tls_t *implicit, size_t max_input)
{
	struct postern_listen_spec spec;
	char err[512];

	alarm(TEST_ALARM_S);
	memset(&S, 0, sizeof(S));
	S.greet = 1;
	S.tls = ctx_with(cert_file, key_file, NULL, NULL, err, sizeof(err));
	if (S.tls == NULL)
		return -1;
	memset(&spec, 0, sizeof(spec));
	spec.size = sizeof(spec);
	spec.name = implicit ? "smtps" : "smtp";
	spec.address = "127.0.0.1";
	spec.tls = implicit;
	spec.limits.size = sizeof(spec.limits);
	spec.limits.max_input = max_input;
	spec.ops = &t_lops;
	L = loop_create();
	loop_current = L;
	conn_init(L);
	LS = listener_add("test", &spec);
	if (LS == NULL || listener_bind_all(NULL, 0) < 0 ||
	    listener_start_all(L) < 0)
		return -1;
	port = listener_port(LS);
	return 0;
}

static int
setup(postern_tls_t *implicit)
{
	return setup_limits(implicit, 0);
}

static void
teardown(void)
{
	conn_close_all();
	listener_stop_all(L);
	listener_reset();
	conn_fini();
	loop_destroy(L);
	loop_current = NULL;
	alarm(0);
}

/* ---- the client (a thread) ---------------------------------------------- */

enum client_mode {
	C_IMPLICIT,        /* TLS at once: PING, QUIT */
	C_STARTTLS,        /* STARTTLS + INJECTED in one write, then HELLO */
	C_STARTTLS_LATE,   /* INJECTED a moment after STARTTLS */
	C_OLD_TLS,         /* a client that stops at TLS 1.1 */
	C_BULK,            /* BULK_LINES lines and QUIT in one record */
};

#define BULK_LINES 1700 /* 7 bytes each: one 12 KB TLS record */

struct client {
	enum client_mode mode;
	int max_version;   /* 0: any */
	atomic_int done;
	int ok;            /* reached the end of its script */
	int handshake_ok;
	char greeting[128], go_ahead[128], after[128], reply[128], bye[128];
	int bulk_replies;
};

static int
client_socket(void)
{
	struct sockaddr_in sin;
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads one plaintext line byte by byte, so no TLS byte is taken. */
static int
plain_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		if (recv(fd, buf + n, 1, 0) != 1)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return 0;
}

static int
tls_line(SSL *ssl, char *buf, size_t size)
{
	size_t n = 0;
	int r;

	buf[0] = '\0';
	while (n + 1 < size && strstr(buf, "\n") == NULL) {
		r = SSL_read(ssl, buf + n, (int)(size - 1 - n));
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
	}
	return 0;
}

static SSL_CTX *
client_ctx(const struct client *cl)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	if (cl->mode == C_OLD_TLS) {
		/* Below what the system configuration allows by default,
		 * so the server, not our own library, must refuse it. */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
	} else if (cl->max_version != 0) {
		SSL_CTX_set_max_proto_version(ctx, cl->max_version);
	}
	return ctx;
}

static int
client_plain_part(struct client *cl, int fd)
{
	static const char both[] = "STARTTLS\r\nINJECTED\r\n";

	if (plain_line(fd, cl->greeting, sizeof(cl->greeting)) < 0)
		return -1;
	if (cl->mode == C_STARTTLS) {
		/* One write: the server reads both lines together. */
		if (send(fd, both, sizeof(both) - 1, MSG_NOSIGNAL) < 0)
			return -1;
	} else {
		if (send(fd, "STARTTLS\r\n", 10, MSG_NOSIGNAL) < 0)
			return -1;
		usleep(50 * 1000);
		if (send(fd, "INJECTED\r\n", 10, MSG_NOSIGNAL) < 0)
			return -1;
	}
	return plain_line(fd, cl->go_ahead, sizeof(cl->go_ahead));
}

/* Sends the bulk in one SSL_write, then reads replies until "221". */
static int
client_bulk(struct client *cl, SSL *ssl)
{
	char *out = malloc(BULK_LINES * 7 + 7), buf[4096], *p;
	size_t n = 0, i;
	int r;

	for (i = 0; i < BULK_LINES; i++)
		n += (size_t)sprintf(out + n, "L%04zu\r\n", i);
	n += (size_t)sprintf(out + n, "QUIT\r\n");
	r = SSL_write(ssl, out, (int)n);
	free(out);
	if (r != (int)n)
		return -1;
	for (;;) {
		r = SSL_read(ssl, buf, sizeof(buf) - 1);
		if (r <= 0)
			return -1;
		buf[r] = '\0';
		for (p = buf; (p = strstr(p, "250 L")) != NULL; p++)
			cl->bulk_replies++;
		if (strstr(buf, "221 bye") != NULL)
			return 0;
	}
}

static void
client_script(struct client *cl, SSL_CTX *ctx, int fd)
{
	SSL *ssl;
	const char *cmd = cl->mode == C_IMPLICIT ? "PING\r\n" : "HELLO\r\n";

	if (cl->mode == C_STARTTLS || cl->mode == C_STARTTLS_LATE)
		if (client_plain_part(cl, fd) < 0)
			return;
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		return;
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		goto out;
	cl->handshake_ok = 1;
	if ((cl->mode == C_IMPLICIT || cl->mode == C_BULK) &&
	    tls_line(ssl, cl->greeting, sizeof(cl->greeting)) < 0)
		goto out;
	if (cl->mode == C_BULK) {
		cl->ok = client_bulk(cl, ssl) == 0;
		goto out;
	}
	if (cl->mode == C_STARTTLS &&
	    tls_line(ssl, cl->after, sizeof(cl->after)) < 0)
		goto out;
	if (SSL_write(ssl, cmd, (int)strlen(cmd)) <= 0 ||
	    tls_line(ssl, cl->reply, sizeof(cl->reply)) < 0 ||
	    SSL_write(ssl, "QUIT\r\n", 6) <= 0 ||
	    tls_line(ssl, cl->bye, sizeof(cl->bye)) < 0)
		goto out;
	cl->ok = 1;
out:
	SSL_free(ssl);
}

static void *
client_main(void *arg)
{
	struct client *cl = arg;
	SSL_CTX *ctx = client_ctx(cl);
	int fd = client_socket();

	if (ctx != NULL && fd >= 0)
		client_script(cl, ctx, fd);
	if (fd >= 0)
		close(fd);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	atomic_store(&cl->done, 1);
	return NULL;
}

/* Runs the client against the server loop until both are done. */
static void
run_client(struct client *cl, int closes)
{
	pthread_t th;

	atomic_init(&cl->done, 0);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, client_main, cl) == 0);
	PUMP_UNTIL(atomic_load(&cl->done) && S.closes >= closes, 15000);
	pthread_join(th, NULL);
}

/* ---- connection tests --------------------------------------------------- */

static void
implicit_tls(int max_version, const char *want_version)
{
	struct client cl = { .mode = C_IMPLICIT, .max_version = max_version };
	char err[512];
	postern_tls_t *t = ctx_with(cert_file, key_file, NULL, NULL, err,
	                            sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_FATAL(setup(t) == 0);
	run_client(&cl, 1);
	CU_ASSERT(cl.handshake_ok);
	CU_ASSERT(cl.ok);
	CU_ASSERT_STRING_EQUAL(cl.greeting, "220 hi\r\n");
	CU_ASSERT_STRING_EQUAL(cl.reply, "250 PING tls=1\r\n");
	CU_ASSERT_STRING_EQUAL(cl.bye, "221 bye\r\n");
	CU_ASSERT_EQUAL(S.n, 2);
	CU_ASSERT(S.tls_at[0]);
	CU_ASSERT_EQUAL(S.closes, 1);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_LOCAL);
	CU_ASSERT_EQUAL(S.info_rc, POSTERN_OK);
	CU_ASSERT_STRING_EQUAL(S.version, want_version);
	CU_ASSERT(S.cipher[0] != '\0');
	CU_ASSERT(S.bits >= 128);
	teardown();
}

static void
test_implicit_tls13(void)
{
	implicit_tls(0, "TLSv1.3");
}

static void
test_implicit_tls12(void)
{
	implicit_tls(TLS1_2_VERSION, "TLSv1.2");
}

static void
test_starttls_injection(void)
{
	struct client cl = { .mode = C_STARTTLS };
	int i;

	CU_ASSERT_FATAL(setup(NULL) == 0);
	run_client(&cl, 1);
	CU_ASSERT_STRING_EQUAL(cl.greeting, "220 hi\r\n");
	CU_ASSERT_STRING_EQUAL(cl.go_ahead, "220 go ahead\r\n");
	CU_ASSERT(cl.handshake_ok);
	CU_ASSERT(cl.ok);
	CU_ASSERT_STRING_EQUAL(cl.after, "250 queued after STARTTLS\r\n");
	CU_ASSERT_STRING_EQUAL(cl.reply, "250 HELLO tls=1\r\n");
	CU_ASSERT_EQUAL(S.starttls_rc, POSTERN_OK);
	CU_ASSERT_EQUAL(S.starttls_again, POSTERN_AGAIN);
	/* Exactly STARTTLS (plain), HELLO and QUIT (both inside TLS). */
	CU_ASSERT_EQUAL_FATAL(S.n, 3);
	CU_ASSERT_STRING_EQUAL(S.text[0], "STARTTLS");
	CU_ASSERT_EQUAL(S.tls_at[0], 0);
	CU_ASSERT_STRING_EQUAL(S.text[1], "HELLO");
	CU_ASSERT_EQUAL(S.tls_at[1], 1);
	for (i = 0; i < S.n; i++)
		CU_ASSERT_PTR_NULL(strstr(S.text[i], "INJECTED"));
	CU_ASSERT_EQUAL(S.info_rc, POSTERN_OK);
	teardown();
}

static void
test_starttls_injection_late(void)
{
	struct client cl = { .mode = C_STARTTLS_LATE };
	int i;

	/* INJECTED arrives after the go-ahead: it is not a ClientHello, so
	 * the handshake fails; it must still never reach on_read. */
	CU_ASSERT_FATAL(setup(NULL) == 0);
	run_client(&cl, 1);
	CU_ASSERT_STRING_EQUAL(cl.go_ahead, "220 go ahead\r\n");
	CU_ASSERT_EQUAL(S.closes, 1);
	for (i = 0; i < S.n; i++)
		CU_ASSERT_PTR_NULL(strstr(S.text[i], "INJECTED"));
	if (!cl.handshake_ok)
		CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_ERROR);
	teardown();
}

static void
test_tls_pending_not_stranded(void)
{
	struct client cl = { .mode = C_BULK };
	char err[512];
	postern_tls_t *t = ctx_with(cert_file, key_file, NULL, NULL, err,
	                            sizeof(err));

	/* A 12 KB record into a 1 KiB buffer: most of it waits decrypted
	 * inside OpenSSL, where epoll cannot see it. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_FATAL(setup_limits(t, 1024) == 0);
	run_client(&cl, 1);
	CU_ASSERT(cl.ok);
	CU_ASSERT_EQUAL(S.n, BULK_LINES + 1);
	CU_ASSERT_EQUAL(cl.bulk_replies, BULK_LINES);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_LOCAL);
	teardown();
}

static struct client old_client;

static void
run_old_client(void *arg)
{
	run_client(&old_client, 1);
}

static void
test_old_tls_refused(void)
{
	char err[512], *log;
	postern_tls_t *t = ctx_with(cert_file, key_file, NULL, NULL, err,
	                            sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_FATAL(setup(t) == 0);
	memset(&old_client, 0, sizeof(old_client));
	old_client.mode = C_OLD_TLS;
	log = unit_capture_log(run_old_client, NULL);
	CU_ASSERT_EQUAL(old_client.handshake_ok, 0);
	CU_ASSERT_EQUAL(S.accepted, 1);
	CU_ASSERT_EQUAL(S.closes, 1);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_ERROR);
	CU_ASSERT_EQUAL(S.n, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "TLS handshake failed"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "conn="));
	fprintf(stderr, "[%s] ", log);
	free(log);
	teardown();
}

static void
test_starttls_twice(void)
{
	char err[512];
	postern_tls_t *t = ctx_with(cert_file, key_file, NULL, NULL, err,
	                            sizeof(err));
	struct client cl = { .mode = C_IMPLICIT };

	/* Already TLS: conn_starttls refuses. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_FATAL(setup(t) == 0);
	run_client(&cl, 1);
	CU_ASSERT(cl.ok);
	teardown();
	CU_ASSERT_FATAL(setup(t) == 0);
	S.greet = 0;
	{
		int sv[2];
		struct postern_listen_spec spec;
		postern_conn_t *c;

		memset(&spec, 0, sizeof(spec));
		spec.size = sizeof(spec);
		spec.name = "pair";
		spec.address = "127.0.0.1";
		spec.tls = t;
		spec.ops = &t_lops;
		CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
		c = conn_accept(sv[0], &spec);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		CU_ASSERT_EQUAL(conn_starttls(c, t), POSTERN_ERROR);
		CU_ASSERT_EQUAL(conn_tls_active(c), 0); /* handshake pending */
		conn_close_all();
		close(sv[1]);
	}
	teardown();
}

/* tls_create: relative file names are in the configuration's directory
 * (a file named there, as posternd -c DIR/postern.conf loads it). */
static void
test_create_relative_paths(void)
{
	char *text, *name;
	struct conf *c;
	postern_tls_t *t;

	if (asprintf(&name, "%s/postern.conf", tmpdir) < 0)
		abort();
	text = "tls = { cert = \"cert.pem\"; key = \"key.pem\"; };\n"
	       "bad = { cert = \"cert.pem\"; key = \"absent.pem\"; };\n";
	c = conf_load_string(text, name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	t = tls_create(c, conf_lookup(conf_root(c), "tls"));
	CU_ASSERT_PTR_NOT_NULL(t);
	CU_ASSERT_EQUAL(conf_errors(c), 0);
	CU_ASSERT_PTR_NULL(tls_create(c, conf_lookup(conf_root(c), "bad")));
	CU_ASSERT_EQUAL(conf_errors(c), 1);
	conf_free(c);
	free(name);
	/* t is left for tls_free_all (suite cleanup) */
}

static CU_TestInfo tls_tests[] = {
	{ "context: defaults and options", test_ctx_ok },
	{ "context: missing certificate named", test_ctx_missing_cert },
	{ "context: missing key named", test_ctx_missing_key },
	{ "context: unreadable certificate named", test_ctx_bad_cert },
	{ "context: key not matching the certificate", test_ctx_key_mismatch },
	{ "context: bad version, ciphers, missing cert",
	  test_ctx_bad_settings },
	{ "tls_create: relative paths in the configuration's directory",
	  test_create_relative_paths },
	{ "implicit TLS 1.3: lines both ways, info", test_implicit_tls13 },
	{ "implicit TLS 1.2 client", test_implicit_tls12 },
	{ "STARTTLS discards plaintext sent with it", test_starttls_injection },
	{ "STARTTLS: plaintext after the go-ahead never read",
	  test_starttls_injection_late },
	{ "TLS 1.1 client refused, logged", test_old_tls_refused },
	{ "decrypted input beyond max_input not stranded",
	  test_tls_pending_not_stranded },
	{ "STARTTLS refused when already TLS", test_starttls_twice },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "tls", suite_init, suite_cleanup, NULL, NULL, tls_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return unit_run(suites);
}
