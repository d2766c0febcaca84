/*
 * test_stream.c - the stream primitive (core/stream.c) on a real loop:
 * a listener on 127.0.0.1, a client socket in this process, a stream
 * started on the accepted connection.  A file region (RAW, LITERAL,
 * DOTSTUFF), a module's reader in memory and on a job thread, a file
 * shorter than promised (POSTERN_ERROR), a client that reads nothing
 * (the queue stays under the mark plus a chunk or two) and then leaves
 * (POSTERN_CLOSED, before on_close).  alarm() bounds every test.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "conn.h"
#include "host.h"
#include "job.h"
#include "listener.h"
#include "loop.h"
#include "stream.h"

#define TEST_ALARM_S 60

static struct {
	postern_conn_t *c;
	int closes;
	int dones, status;
	int done_before_close;   /* done ran while the conn was open */
	size_t max_pending;
} S;

static struct loop *L;
static postern_listener_t *LS;
static struct job_pool *J;
static unsigned port;
static char path[] = "/tmp/postern-test-stream.XXXXXX";

#define PUMP_UNTIL(expr, ms) UNIT_PUMP_UNTIL(L, expr, ms)

static void
t_on_read(postern_conn_t *c, void *arg)
{
	(void)c;
	(void)arg;
}

static void
t_on_drain(postern_conn_t *c, void *arg)
{
	(void)c;
	(void)arg;
}

static void
t_on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	(void)c;
	(void)arg;
	(void)why;
	S.closes++;
	S.c = NULL;
}

static const struct postern_conn_ops t_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = t_on_read,
	.on_drain = t_on_drain,
	.on_close = t_on_close,
};

static void
t_on_accept(postern_conn_t *c, void *arg)
{
	(void)arg;
	S.c = c;
	conn_set_ops(c, &t_ops, NULL);
}

static const struct postern_listener_ops t_lops = {
	.size = sizeof(struct postern_listener_ops),
	.on_accept = t_on_accept,
};

static void
done(void *arg, int status)
{
	(void)arg;
	S.dones++;
	S.status = status;
	S.done_before_close = S.closes == 0;
}

/* A connected client (its socket) once the server has accepted it. */
static int
setup(void)
{
	struct postern_listen_spec spec;
	struct sockaddr_in sa;
	int fd;

	alarm(TEST_ALARM_S);
	memset(&S, 0, sizeof(S));
	memset(&spec, 0, sizeof(spec));
	spec.size = sizeof(spec);
	spec.name = "test";
	spec.address = "127.0.0.1";
	spec.limits.size = sizeof(spec.limits);
	spec.ops = &t_lops;
	L = loop_create();
	loop_current = L;
	conn_init(L);
	J = job_pool_create(L, 2);
	host_set_jobs(J);
	LS = listener_add("test", &spec);
	if (LS == NULL || listener_bind_all(NULL, 0) < 0 ||
	    listener_start_all(L) < 0)
		return -1;
	port = listener_port(LS);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	PUMP_UNTIL(S.c != NULL, 2000);
	return S.c != NULL ? fd : -1;
}

static void
teardown(int fd)
{
	if (fd >= 0)
		close(fd);
	conn_close_all();
	listener_stop_all(L);
	listener_reset();
	host_set_jobs(NULL);
	job_pool_destroy(J);
	conn_fini();
	loop_destroy(L);
	loop_current = NULL;
	L = NULL;
	unlink(path);
	alarm(0);
}

/* Writes `len` octets of `data` to a new temporary file; its fd. */
static int
temp_file(const char *data, size_t len)
{
	int fd;

	strcpy(path, "/tmp/postern-test-stream.XXXXXX");
	fd = mkstemp(path);
	if (fd >= 0 && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads from the client socket while turning the loop, until `want`
 * octets came, EOF, or 20 s; returns what came (malloc'd). */
static char *
client_read(int fd, size_t want, size_t *got)
{
	char *buf = malloc(want + 1);
	uint64_t end = unit_mono_ms() + 20000;
	ssize_t n;

	*got = 0;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (*got < want && unit_mono_ms() < end) {
		loop_run_once(L, 1);
		n = read(fd, buf + *got, want - *got);
		if (n == 0)
			break;
		if (n > 0)
			*got += (size_t)n;
	}
	return buf;
}

static char *
pattern(size_t len)
{
	char *p = malloc(len);
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (char)('a' + (i * 7 + i / 1000) % 26);
	for (i = 0; i + 1 < len; i += 80) {
		p[i] = '\r';
		p[i + 1] = '\n';
	}
	return p;
}

static void
run_file(enum postern_stream_transform how, size_t len)
{
	char *data = pattern(len), *got, head[32];
	struct postern_stream_source src = { .size = sizeof(src) };
	struct postern_stream_spec spec = { .size = sizeof(spec) };
	int cfd = setup(), ffd = temp_file(data, len);
	size_t n, hl = 0;

	CU_ASSERT_FATAL(cfd >= 0 && ffd >= 0);
	src.fd = ffd;
	src.offset = 7;               /* a region, not the whole file */
	src.length = len - 7;
	spec.transform = how;
	CU_ASSERT(stream_start(S.c, &src, &spec, done, NULL) == POSTERN_OK);
	close(ffd);                   /* the stream has its own */
	CU_ASSERT(S.dones == 0);      /* never from inside stream_start */
	if (how == POSTERN_STREAM_LITERAL)
		hl = (size_t)snprintf(head, sizeof(head), "{%zu}\r\n",
		                      len - 7);
	got = client_read(cfd, hl + len - 7, &n);
	PUMP_UNTIL(S.dones > 0, 2000);
	CU_ASSERT(S.dones == 1 && S.status == POSTERN_OK);
	CU_ASSERT(n == hl + len - 7);
	CU_ASSERT(memcmp(got, head, hl) == 0);
	CU_ASSERT(memcmp(got + hl, data + 7, len - 7) == 0);
	free(got);
	free(data);
	teardown(cfd);
}

static void
test_raw_file(void)
{
	run_file(POSTERN_STREAM_RAW, 3u << 20);
	run_file(POSTERN_STREAM_RAW, 10);
}

static void
test_literal_file(void)
{
	run_file(POSTERN_STREAM_LITERAL, (1u << 20) + 3);
}

/* A reader over a string; `fail_at`: -1 from that offset on. */
struct reader {
	const char *data;
	size_t len;
	size_t fail_at;
	int calls;
};

static ssize_t
read_str(void *arg, uint64_t off, void *buf, size_t len)
{
	struct reader *r = arg;

	r->calls++;
	if (off >= r->fail_at)
		return -1;
	if (off >= r->len)
		return 0;
	if (len > r->len - off)
		len = r->len - off;
	if (len > 5)
		len = 5;              /* short reads: chunk boundaries */
	memcpy(buf, r->data + off, len);
	return (ssize_t)len;
}

static void
run_dotstuff(unsigned flags)
{
	const char *msg = "A: 1\r\n\r\n.dot\nbare\r\n..two\r\nend";
	const char *want = "A: 1\r\n\r\n..dot\r\nbare\r\n...two\r\nend\r\n"
	                   ".\r\n";
	struct reader r = { msg, strlen(msg), (size_t)-1, 0 };
	struct postern_stream_source src = {
		.size = sizeof(src), .fd = -1, .length = strlen(msg),
		.read = read_str, .read_arg = &r, .flags = flags,
	};
	struct postern_stream_spec spec = {
		.size = sizeof(spec), .transform = POSTERN_STREAM_DOTSTUFF,
	};
	int cfd = setup();
	size_t n;
	char *got;

	CU_ASSERT_FATAL(cfd >= 0);
	CU_ASSERT(stream_start(S.c, &src, &spec, done, NULL) == POSTERN_OK);
	got = client_read(cfd, strlen(want), &n);
	PUMP_UNTIL(S.dones > 0, 2000);
	CU_ASSERT(S.dones == 1 && S.status == POSTERN_OK);
	CU_ASSERT(n == strlen(want) && memcmp(got, want, n) == 0);
	CU_ASSERT(r.calls > 1);
	/* Another stream may follow on the same connection. */
	r.calls = 0;
	S.dones = 0;
	spec.top = 1;
	spec.lines = 1;
	CU_ASSERT(stream_start(S.c, &src, &spec, done, NULL) == POSTERN_OK);
	free(got);
	want = "A: 1\r\n\r\n..dot\r\n.\r\n";
	got = client_read(cfd, strlen(want), &n);
	PUMP_UNTIL(S.dones > 0, 2000);
	CU_ASSERT(S.dones == 1 && S.status == POSTERN_OK);
	CU_ASSERT(n == strlen(want) && memcmp(got, want, n) == 0);
	free(got);
	teardown(cfd);
}

static void
test_reader_in_memory(void)
{
	run_dotstuff(POSTERN_STREAM_IN_MEMORY);
}

static void
test_reader_on_jobs(void)
{
	run_dotstuff(0);
}

static void
test_read_error(void)
{
	char *data = pattern(100000);
	struct postern_stream_source src = { .size = sizeof(src) };
	struct postern_stream_spec spec = { .size = sizeof(spec) };
	struct reader r = { data, 100000, 70000, 0 };
	int cfd = setup(), ffd = temp_file(data, 100000);
	size_t n;
	char *got;

	CU_ASSERT_FATAL(cfd >= 0 && ffd >= 0);
	/* The file is shorter than the region promised. */
	src.fd = ffd;
	src.length = 200000;
	CU_ASSERT(stream_start(S.c, &src, &spec, done, NULL) == POSTERN_OK);
	close(ffd);
	got = client_read(cfd, 100000, &n);
	PUMP_UNTIL(S.dones > 0, 5000);
	CU_ASSERT(S.dones == 1 && S.status == POSTERN_ERROR);
	CU_ASSERT(n == 100000);
	free(got);
	/* A reader that fails midway, on a job. */
	S.dones = 0;
	memset(&src, 0, sizeof(src));
	src.size = sizeof(src);
	src.fd = -1;
	src.length = 100000;
	src.read = read_str;
	src.read_arg = &r;
	CU_ASSERT(stream_start(S.c, &src, &spec, done, NULL) == POSTERN_OK);
	got = client_read(cfd, 70000, &n);
	PUMP_UNTIL(S.dones > 0, 20000);
	CU_ASSERT(S.dones == 1 && S.status == POSTERN_ERROR);
	CU_ASSERT(n == 70000);
	free(got);
	free(data);
	teardown(cfd);
}

static void
test_stalled_client_leaves(void)
{
	size_t len = 32u << 20, most = 0, p;
	char *data = pattern(len);
	struct postern_stream_source src = { .size = sizeof(src) };
	struct postern_stream_spec spec = {
		.size = sizeof(spec), .transform = POSTERN_STREAM_DOTSTUFF,
	};
	int cfd = setup(), ffd = temp_file(data, len), rcv = 4096;
	uint64_t end;

	CU_ASSERT_FATAL(cfd >= 0 && ffd >= 0);
	setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	src.fd = ffd;
	src.length = len;
	CU_ASSERT(stream_start(S.c, &src, &spec, done, NULL) == POSTERN_OK);
	close(ffd);
	/* The client reads nothing: the queue stays bounded. */
	end = unit_mono_ms() + 1500;
	while (unit_mono_ms() < end && S.c != NULL) {
		loop_run_once(L, 5);
		p = conn_output_pending(S.c);
		most = p > most ? p : most;
	}
	CU_ASSERT(S.dones == 0);
	CU_ASSERT(most < POSTERN_STREAM_HIGH_WATER +
	                 2 * POSTERN_STREAM_CHUNK + 16);
	/* It leaves: the stream says so once, before on_close. */
	close(cfd);
	PUMP_UNTIL(S.closes > 0 && S.dones > 0, 10000);
	CU_ASSERT(S.dones == 1 && S.status == POSTERN_CLOSED);
	CU_ASSERT(S.done_before_close);
	free(data);
	teardown(-1);
}

static CU_TestInfo stream_tests[] = {
	{ "a file region as it is", test_raw_file },
	{ "a file region as a literal", test_literal_file },
	{ "dot-stuffing a reader in memory, then TOP", test_reader_in_memory },
	{ "dot-stuffing a reader on job threads", test_reader_on_jobs },
	{ "a read error midway is reported", test_read_error },
	{ "a client that reads nothing, then leaves",
	  test_stalled_client_leaves },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "stream", NULL, NULL, NULL, NULL, stream_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	return unit_run(suites);
}
