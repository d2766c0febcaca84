/*
 * test_conn.c - connections and listeners, driven through a real loop.
 *
 * Each test binds a listener on 127.0.0.1 port 0, connects plain client
 * sockets from this same process and turns the loop with loop_run_once
 * until what it waits for happened (or a deadline passed: the assertion
 * after it then fails).  alarm() bounds every test in case the loop
 * itself hangs.  A tiny "module" (the ops below) records what the host
 * hands it; each test picks how it behaves through S.mode.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "loop.h"

#define TEST_ALARM_S 30
#define MAX_LINES 64
#define BIG_SIZE (8u * 1024 * 1024)
#define STREAM_PIECE (64u * 1024)

enum mode {
	M_LINES = 0, /* read lines until AGAIN; commands below */
	M_HOLD,      /* read nothing: the test peeks and consumes itself */
	M_PAUSE,     /* read one line, then pause */
};

static struct {
	enum mode mode;
	size_t max;            /* conn_read_line's max */
	int echo;              /* reply "+LINE" to every line */
	int no_timeout_cb;     /* ops without on_timeout */
	unsigned set_idle;     /* conn_set_idle in on_accept */
	int timeout_keep;      /* on_timeout answers 0 this many times */

	postern_conn_t *c;     /* the last accepted */
	int accepted, reads, drains, timeouts, shutdowns, closes;
	enum postern_close_reason why;

	int n;                 /* lines (and TOOLONGs) recorded */
	int st[MAX_LINES];
	char text[MAX_LINES][128];
	size_t len[MAX_LINES];
	unsigned flags[MAX_LINES];

	size_t stream_total, stream_sent;

	int after_close_write, after_close_read, closes_at_close;
} S;

static struct loop *L;
static postern_listener_t *LS;
static unsigned port;

#define PUMP_UNTIL(expr, ms) UNIT_PUMP_UNTIL(L, expr, ms)

static void
pump(unsigned ms)
{
	PUMP_UNTIL(0, ms);
}

/* Turns the loop for `ms` and says how many iterations it took.  An
 * idle loop waits 5 ms in each; one that is told about an fd it then
 * does not service (a readable socket it will not read) spins, and
 * takes thousands. */
static unsigned
pump_count(unsigned ms)
{
	uint64_t end = unit_mono_ms() + ms;
	unsigned n = 0;

	while (unit_mono_ms() < end) {
		loop_run_once(L, 5);
		n++;
	}
	return n;
}

#define IDLE_ITERATIONS_MAX 60

/* ---- the module --------------------------------------------------------- */

static unsigned char
pattern(size_t i)
{
	return (unsigned char)((i * 7 + i / 251) % 253);
}

static void
fill_pattern(unsigned char *p, size_t off, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = pattern(off + i);
}

static void
record(int st, const struct postern_line *line)
{
	if (S.n >= MAX_LINES)
		return;
	S.st[S.n] = st;
	if (st == POSTERN_OK) {
		size_t n = line->len < 127 ? line->len : 127;
		memcpy(S.text[S.n], line->data, n);
		S.text[S.n][n] = '\0';
		S.len[S.n] = line->len;
		S.flags[S.n] = line->flags;
	}
	S.n++;
}

static void
stream_next(postern_conn_t *c)
{
	unsigned char *buf;
	size_t n = S.stream_total - S.stream_sent;

	if (n == 0)
		return;
	if (n > STREAM_PIECE)
		n = STREAM_PIECE;
	buf = malloc(n);
	fill_pattern(buf, S.stream_sent, n);
	CU_ASSERT(conn_write(c, buf, n) == POSTERN_OK);
	S.stream_sent += n;
	free(buf);
}

static void
command(postern_conn_t *c, const struct postern_line *line)
{
	struct postern_line dummy;

	if (line->len == 4 && memcmp(line->data, "QUIT", 4) == 0) {
		conn_printf(c, "BYE %s\r\n", "now");
		conn_close(c);
		S.after_close_write = conn_write(c, "x", 1);
		S.after_close_read = conn_read_line(c, 100, &dummy);
		S.closes_at_close = S.closes;
	} else if (line->len == 3 && memcmp(line->data, "BIG", 3) == 0) {
		unsigned char *buf = malloc(BIG_SIZE);
		fill_pattern(buf, 0, BIG_SIZE);
		CU_ASSERT(conn_write(c, buf, BIG_SIZE) == POSTERN_OK);
		free(buf);
	} else if (line->len == 6 && memcmp(line->data, "STREAM", 6) == 0) {
		S.stream_total = BIG_SIZE;
		S.stream_sent = 0;
		stream_next(c);
	} else if (line->len == 8 && memcmp(line->data, "BIGCLOSE", 8) == 0) {
		unsigned char *buf = calloc(1, BIG_SIZE);
		conn_write(c, buf, BIG_SIZE);
		free(buf);
		conn_close(c);
	} else if (S.echo) {
		conn_printf(c, "+%.*s\r\n", (int)line->len, line->data);
	}
}

static void
t_on_read(postern_conn_t *c, void *arg)
{
	struct postern_line line;
	int st;

	CU_ASSERT(arg == &S);
	S.reads++;
	if (S.mode == M_HOLD)
		return;
	while ((st = conn_read_line(c, S.max, &line)) != POSTERN_AGAIN) {
		if (st == POSTERN_CLOSED)
			return;
		record(st, &line);
		if (st == POSTERN_OK)
			command(c, &line);
		if (S.mode == M_PAUSE) {
			conn_pause(c);
			return;
		}
	}
}

static void
t_on_drain(postern_conn_t *c, void *arg)
{
	S.drains++;
	if (S.stream_sent < S.stream_total)
		stream_next(c);
}

static void
t_on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	S.closes++;
	S.why = why;
	/* Still valid here: the host frees it after we return. */
	CU_ASSERT(conn_id(c) > 0);
	if (S.c == c)
		S.c = NULL;
}

static int
t_on_timeout(postern_conn_t *c, void *arg)
{
	S.timeouts++;
	if (S.timeout_keep > 0) {
		S.timeout_keep--;
		return 0;
	}
	conn_printf(c, "BYE idle\r\n");
	return 1;
}

static void
t_on_shutdown(postern_conn_t *c, void *arg)
{
	S.shutdowns++;
}

static const struct postern_conn_ops t_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = t_on_read,
	.on_drain = t_on_drain,
	.on_close = t_on_close,
	.on_timeout = t_on_timeout,
	.on_shutdown = t_on_shutdown,
};

static const struct postern_conn_ops t_ops_plain = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = t_on_read,
	.on_close = t_on_close,
};

static void
t_on_accept(postern_conn_t *c, void *arg)
{
	CU_ASSERT(arg == &S);
	S.accepted++;
	S.c = c;
	conn_set_ops(c, S.no_timeout_cb ? &t_ops_plain : &t_ops, &S);
	if (S.set_idle)
		conn_set_idle(c, S.set_idle);
}

static const struct postern_listener_ops t_lops = {
	.size = sizeof(struct postern_listener_ops),
	.on_accept = t_on_accept,
};

/* ---- fixtures ----------------------------------------------------------- */

struct setup {
	const char *address;
	size_t max_input;
	unsigned idle_ms, max_conns, max_per_ip, max_junk;
};

static struct postern_listen_spec
make_spec(const struct setup *o)
{
	struct postern_listen_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.size = sizeof(spec);
	spec.name = "test";
	spec.address = o->address != NULL ? o->address : "127.0.0.1";
	spec.port = 0;
	spec.max_conns = o->max_conns;
	spec.max_per_ip = o->max_per_ip;
	spec.limits.size = sizeof(spec.limits);
	spec.limits.max_input = o->max_input;
	spec.limits.idle_ms = o->idle_ms;
	spec.limits.max_junk = o->max_junk;
	spec.ops = &t_lops;
	spec.arg = &S;
	return spec;
}

static int
setup(const struct setup *o)
{
	struct postern_listen_spec spec = make_spec(o);

	alarm(TEST_ALARM_S);
	memset(&S, 0, sizeof(S));
	S.max = 512;
	L = loop_create();
	if (L == NULL)
		return -1;
	loop_current = L;
	conn_init(L);
	LS = listener_add("test", &spec);
	if (LS == NULL || listener_bind_all(NULL, 0) < 0 ||
	    listener_start_all(L) < 0)
		return -1;
	port = listener_port(LS);
	return port > 0 || spec.address[0] == '/' ? 0 : -1;
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
	L = NULL;
	alarm(0);
}

#define SETUP(...)                                                         \
	do {                                                               \
		struct setup o_ = { __VA_ARGS__ };                         \
		if (setup(&o_) < 0) {                                      \
			CU_FAIL_FATAL("setup failed");                     \
		}                                                          \
	} while (0)

static int
client_connect_to(int family, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, addr, &sin6->sin6_addr);
		len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, addr, &sin->sin_addr);
		len = sizeof(*sin);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* On loopback the kernel completes this from the backlog. */
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
client_connect(void)
{
	int fd = client_connect_to(AF_INET, "127.0.0.1");

	CU_ASSERT_FATAL(fd >= 0);
	return fd;
}

static void
client_send(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		CU_ASSERT_FATAL(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void
client_sends(int fd, const char *s)
{
	client_send(fd, s, strlen(s));
}

/* Reads (without blocking, turning the loop meanwhile) until `want`
 * bytes, EOF or `ms`.  Returns the bytes read; *eof is set on EOF or
 * reset. */
static size_t
client_read(int fd, char *buf, size_t want, int *eof, unsigned ms)
{
	uint64_t end = unit_mono_ms() + ms;
	size_t got = 0;

	*eof = 0;
	while (got < want && unit_mono_ms() < end) {
		ssize_t n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			*eof = 1;
			break;
		}
		loop_run_once(L, 2);
	}
	return got;
}

/* Reads until EOF (or `ms`); the text (NUL-terminated) into buf. */
static size_t
client_read_all(int fd, char *buf, size_t size, int *eof, unsigned ms)
{
	size_t n = client_read(fd, buf, size - 1, eof, ms);

	buf[n] = '\0';
	return n;
}

/* ---- lines -------------------------------------------------------------- */

static void
test_toolong_once(void)
{
	int fd;

	SETUP(.max_input = 0);
	S.max = 16;
	fd = client_connect();
	client_sends(fd, "0123456789abcdefXYZ\r\nnext\r\n0123456789abcdef\r\n");
	PUMP_UNTIL(S.n >= 3, 2000);
	CU_ASSERT_EQUAL(S.n, 3);
	CU_ASSERT_EQUAL(S.st[0], POSTERN_TOOLONG);
	CU_ASSERT_EQUAL(S.st[1], POSTERN_OK);
	CU_ASSERT_STRING_EQUAL(S.text[1], "next");
	/* Exactly max bytes is not too long. */
	CU_ASSERT_EQUAL(S.st[2], POSTERN_OK);
	CU_ASSERT_EQUAL(S.len[2], 16);
	close(fd);
	teardown();
}

static void
test_toolong_split(void)
{
	int fd;

	SETUP(.max_input = 0);
	S.max = 16;
	fd = client_connect();
	client_sends(fd, "AAAAAAAAAAAAAAAAAAAAAAAA");
	PUMP_UNTIL(S.n >= 1, 2000);
	CU_ASSERT_EQUAL(S.n, 1);
	CU_ASSERT_EQUAL(S.st[0], POSTERN_TOOLONG);
	client_sends(fd, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
	pump(50);
	client_sends(fd, "CCCCCCCCCCCCCCCC");
	pump(50);
	CU_ASSERT_EQUAL(S.n, 1); /* reported once, the rest discarded */
	client_sends(fd, "CC\r\nok\r\n");
	PUMP_UNTIL(S.n >= 2, 2000);
	CU_ASSERT_EQUAL(S.n, 2);
	CU_ASSERT_EQUAL(S.st[1], POSTERN_OK);
	CU_ASSERT_STRING_EQUAL(S.text[1], "ok");
	close(fd);
	teardown();
}

/* How an over-long line ended, for raw lines whose terminator means
 * something (the session layer's take_lines: SMTP's end of DATA): a CR
 * dropped with one read and its LF in the next make CRLF. */
static void
test_toolong_end(void)
{
	struct postern_line l;
	unsigned end = 0;
	int fd;

	SETUP(.max_input = 0);
	S.mode = M_HOLD;
	fd = client_connect();
	client_sends(fd, "AAAAAAAAAAAAAAAAAAAAAAAA");
	PUMP_UNTIL(S.reads >= 1, 2000);
	CU_ASSERT_EQUAL_FATAL(conn_read_line(S.c, 16, &l), POSTERN_TOOLONG);
	CU_ASSERT_EQUAL(conn_line_skipped(S.c, &end), POSTERN_AGAIN);
	client_sends(fd, "BBBB\r");
	PUMP_UNTIL(S.reads >= 2, 2000);
	CU_ASSERT_EQUAL(conn_line_skipped(S.c, &end), POSTERN_AGAIN);
	client_sends(fd, "\nnext\n");
	PUMP_UNTIL(S.reads >= 3, 2000);
	CU_ASSERT_EQUAL(conn_line_skipped(S.c, &end), POSTERN_OK);
	CU_ASSERT_EQUAL(end, POSTERN_LINE_CRLF);
	CU_ASSERT_EQUAL_FATAL(conn_read_line(S.c, 16, &l), POSTERN_OK);
	CU_ASSERT(l.len == 4 && memcmp(l.data, "next", 4) == 0);
	/* Whole in the buffer, ended by a bare LF. */
	client_sends(fd, "0123456789abcdefXYZ\nafter\r\n");
	PUMP_UNTIL(S.reads >= 4, 2000);
	CU_ASSERT_EQUAL_FATAL(conn_read_line(S.c, 16, &l), POSTERN_TOOLONG);
	CU_ASSERT_EQUAL(conn_line_skipped(S.c, &end), POSTERN_OK);
	CU_ASSERT_EQUAL(end, POSTERN_LINE_BARE_LF);
	CU_ASSERT_EQUAL_FATAL(conn_read_line(S.c, 16, &l), POSTERN_OK);
	CU_ASSERT(l.len == 5 && memcmp(l.data, "after", 5) == 0);
	CU_ASSERT_EQUAL(l.flags, POSTERN_LINE_CRLF);
	close(fd);
	teardown();
}

static void
test_toolong_buffer_full(void)
{
	char *big = malloc(10000);
	int fd;

	/* The line limit is above the buffer: a full buffer is the limit. */
	SETUP(.max_input = 4096);
	S.max = 100000;
	memset(big, 'A', 10000);
	fd = client_connect();
	client_send(fd, big, 10000);
	client_sends(fd, "\r\nafter\r\n");
	PUMP_UNTIL(S.n >= 2, 2000);
	CU_ASSERT_EQUAL(S.n, 2);
	CU_ASSERT_EQUAL(S.st[0], POSTERN_TOOLONG);
	CU_ASSERT_EQUAL(S.st[1], POSTERN_OK);
	CU_ASSERT_STRING_EQUAL(S.text[1], "after");
	free(big);
	close(fd);
	teardown();
}

/* Regression (found by tests/fuzz/fuzz_lines): a buffer under 4 bytes
 * never moved its unread tail to the front, so with the buffer's end
 * reached it had no room to read into while still wanting input, and the
 * loop spun on the readable socket without ever reading the rest. */
static void
test_tiny_max_input(void)
{
	int fd;

	SETUP(.max_input = 3);
	fd = client_connect();
	client_sends(fd, "a\nb");
	PUMP_UNTIL(S.n >= 1, 2000);
	CU_ASSERT_EQUAL_FATAL(S.n, 1);
	CU_ASSERT_STRING_EQUAL(S.text[0], "a");
	client_sends(fd, "\n");
	PUMP_UNTIL(S.n >= 2, 2000);
	CU_ASSERT_EQUAL(S.n, 2);
	CU_ASSERT_EQUAL(S.st[1], POSTERN_OK);
	CU_ASSERT_STRING_EQUAL(S.text[1], "b");
	CU_ASSERT(pump_count(100) <= IDLE_ITERATIONS_MAX);
	close(fd);
	teardown();
}

static void
test_crlf_split(void)
{
	int fd;

	SETUP(.max_input = 0);
	fd = client_connect();
	client_sends(fd, "abc\r");
	PUMP_UNTIL(S.reads >= 1, 2000);
	pump(50);
	CU_ASSERT_EQUAL(S.n, 0); /* no LF yet: no line */
	client_sends(fd, "\ndef\r\n");
	PUMP_UNTIL(S.n >= 2, 2000);
	CU_ASSERT_EQUAL(S.n, 2);
	CU_ASSERT_STRING_EQUAL(S.text[0], "abc");
	CU_ASSERT_EQUAL(S.len[0], 3);
	CU_ASSERT_EQUAL(S.flags[0], POSTERN_LINE_CRLF);
	CU_ASSERT_STRING_EQUAL(S.text[1], "def");
	CU_ASSERT_EQUAL(S.flags[1], POSTERN_LINE_CRLF);
	close(fd);
	teardown();
}

static void
test_line_flags(void)
{
	static const char in[] = "a\0b\r\nbare\nx\ry\r\nz\r\r\n";
	int fd;

	SETUP(.max_input = 0);
	fd = client_connect();
	client_send(fd, in, sizeof(in) - 1);
	PUMP_UNTIL(S.n >= 4, 2000);
	CU_ASSERT_EQUAL_FATAL(S.n, 4);
	/* NUL */
	CU_ASSERT_EQUAL(S.len[0], 3);
	CU_ASSERT_EQUAL(S.flags[0], POSTERN_LINE_CRLF | POSTERN_LINE_NUL);
	CU_ASSERT(memcmp(S.text[0], "a\0b", 3) == 0);
	/* bare LF */
	CU_ASSERT_STRING_EQUAL(S.text[1], "bare");
	CU_ASSERT_EQUAL(S.flags[1], POSTERN_LINE_BARE_LF);
	/* bare CR inside, CR LF at the end */
	CU_ASSERT_STRING_EQUAL(S.text[2], "x\ry");
	CU_ASSERT_EQUAL(S.flags[2], POSTERN_LINE_CRLF | POSTERN_LINE_BARE_CR);
	/* CR CR LF: the first CR is bare and part of the line */
	CU_ASSERT_EQUAL(S.len[3], 2);
	CU_ASSERT_EQUAL(S.flags[3], POSTERN_LINE_CRLF | POSTERN_LINE_BARE_CR);
	close(fd);
	teardown();
}

static void
test_pipelined(void)
{
	char buf[256];
	int fd, eof;

	SETUP(.max_input = 0);
	S.echo = 1;
	fd = client_connect();
	client_sends(fd, "one\r\ntwo\r\nthree\r\n");
	PUMP_UNTIL(S.n >= 3, 2000);
	CU_ASSERT_EQUAL(S.n, 3);
	CU_ASSERT_EQUAL(S.reads, 1); /* all three in one on_read */
	CU_ASSERT_STRING_EQUAL(S.text[2], "three");
	client_read(fd, buf, 18, &eof, 2000);
	CU_ASSERT(memcmp(buf, "+one\r\n+two\r\n+three\r\n", 18) == 0);
	close(fd);
	teardown();
}

/* A SOCK_SEQPACKET pair keeps each write a separate record, so the
 * client can see how many writes the replies took. */
static void
test_pipelined_one_write(void)
{
	struct postern_listen_spec spec;
	struct setup o = { .max_input = 0 };
	char buf[256];
	ssize_t n;
	int sv[2];

	SETUP(.max_input = 0);
	S.echo = 1;
	spec = make_spec(&o);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	                           sv) == 0);
	CU_ASSERT_FATAL(conn_accept(sv[0], &spec) != NULL);
	client_sends(sv[1], "a\r\nb\r\nc\r\n");
	PUMP_UNTIL(S.n >= 3, 2000);
	pump(20);
	n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);
	CU_ASSERT_EQUAL(n, 12);
	CU_ASSERT(n == 12 && memcmp(buf, "+a\r\n+b\r\n+c\r\n", 12) == 0);
	n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT);
	CU_ASSERT(n < 0 && errno == EAGAIN);
	conn_close_all();
	close(sv[1]);
	teardown();
}

static void
test_peek_consume(void)
{
	const void *data;
	size_t len = 0;
	int fd;

	SETUP(.max_input = 0);
	S.mode = M_HOLD;
	fd = client_connect();
	client_sends(fd, "HELLO WORLD");
	PUMP_UNTIL(S.reads >= 1, 2000);
	CU_ASSERT_EQUAL_FATAL(conn_peek(S.c, &data, &len), POSTERN_OK);
	CU_ASSERT_EQUAL(len, 11);
	CU_ASSERT(memcmp(data, "HELLO WORLD", 11) == 0);
	conn_consume(S.c, 6);
	CU_ASSERT_EQUAL_FATAL(conn_peek(S.c, &data, &len), POSTERN_OK);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT(memcmp(data, "WORLD", 5) == 0);
	conn_consume(S.c, 100); /* more than buffered: all of it */
	CU_ASSERT_EQUAL(conn_peek(S.c, &data, &len), POSTERN_AGAIN);
	client_sends(fd, "!");
	PUMP_UNTIL(S.reads >= 2, 2000);
	CU_ASSERT_EQUAL_FATAL(conn_peek(S.c, &data, &len), POSTERN_OK);
	CU_ASSERT(len == 1 && memcmp(data, "!", 1) == 0);
	close(fd);
	teardown();
}

/* ---- output ------------------------------------------------------------- */

static int
check_pattern(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != pattern(i))
			return 0;
	return 1;
}

static void
big_output(const char *cmd)
{
	unsigned char *buf = malloc(BIG_SIZE + 1);
	size_t got;
	int fd, eof;

	SETUP(.max_input = 0);
	fd = client_connect();
	client_sends(fd, cmd);
	got = client_read(fd, (char *)buf, BIG_SIZE, &eof, 20000);
	CU_ASSERT_EQUAL(got, BIG_SIZE);
	CU_ASSERT(check_pattern(buf, got));
	PUMP_UNTIL(S.drains >= 1 && S.c != NULL &&
	           conn_output_pending(S.c) == 0 &&
	           S.stream_sent == S.stream_total, 2000);
	CU_ASSERT(S.drains >= 1);
	CU_ASSERT(S.c != NULL && conn_output_pending(S.c) == 0);
	if (S.stream_total > 0)
		/* one on_drain per piece, the last one after the end */
		CU_ASSERT_EQUAL(S.drains, BIG_SIZE / STREAM_PIECE);
	/* Nothing more than what was written. */
	CU_ASSERT_EQUAL(client_read(fd, (char *)buf, 1, &eof, 50), 0);
	free(buf);
	close(fd);
	teardown();
}

static void
test_large_output(void)
{
	big_output("BIG\r\n");
}

static void
test_streamed_output(void)
{
	big_output("STREAM\r\n");
}

/* ---- flow control ------------------------------------------------------- */

static void
test_backpressure(void)
{
	const size_t total = 64 * 1024, max_input = 8192;
	unsigned char *out = malloc(total);
	size_t seen = 0, len = 0;
	const void *data;
	int fd, reads, ok = 1;

	SETUP(.max_input = max_input);
	S.mode = M_HOLD;
	fill_pattern(out, 0, total);
	fd = client_connect();
	client_send(fd, out, total); /* fits in the socket buffers */
	PUMP_UNTIL(S.c != NULL && conn_peek(S.c, &data, &len) == POSTERN_OK &&
	           len >= max_input, 2000);
	CU_ASSERT_EQUAL(len, max_input);
	reads = S.reads;
	/* Full: the socket is no longer watched for input (so the loop
	 * sleeps), and nothing new arrives. */
	CU_ASSERT(pump_count(100) <= IDLE_ITERATIONS_MAX);
	CU_ASSERT_EQUAL(S.reads, reads);
	CU_ASSERT_EQUAL(conn_peek(S.c, &data, &len), POSTERN_OK);
	CU_ASSERT_EQUAL(len, max_input);
	while (seen < total && ok) {
		if (conn_peek(S.c, &data, &len) != POSTERN_OK) {
			reads = S.reads;
			PUMP_UNTIL(S.reads > reads, 2000);
			if (S.reads == reads)
				break;
			continue;
		}
		CU_ASSERT(len <= max_input);
		ok = len <= total - seen &&
		     memcmp(data, out + seen, len) == 0;
		seen += len;
		conn_consume(S.c, len);
	}
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(seen, total);
	free(out);
	close(fd);
	teardown();
}

static void
test_pause_resume(void)
{
	const void *data;
	size_t len = 0;
	int fd;

	SETUP(.max_input = 0);
	S.mode = M_PAUSE;
	fd = client_connect();
	client_sends(fd, "a\r\nb\r\n");
	PUMP_UNTIL(S.n >= 1, 2000);
	pump(50);
	CU_ASSERT_EQUAL(S.n, 1);
	CU_ASSERT_EQUAL(S.reads, 1);
	client_sends(fd, "c\r\n"); /* while paused: not read */
	CU_ASSERT(pump_count(100) <= IDLE_ITERATIONS_MAX);
	CU_ASSERT_EQUAL(S.reads, 1);
	/* Only what was buffered before the pause: "c" is still in the
	 * socket. */
	CU_ASSERT_EQUAL(conn_peek(S.c, &data, &len), POSTERN_OK);
	CU_ASSERT(len == 3 && memcmp(data, "b\r\n", 3) == 0);
	conn_resume(S.c);
	CU_ASSERT_EQUAL(S.reads, 1); /* never from inside conn_resume */
	PUMP_UNTIL(S.n >= 2, 2000);
	CU_ASSERT_EQUAL(S.reads, 2);
	CU_ASSERT_STRING_EQUAL(S.text[1], "b");
	conn_resume(S.c);
	PUMP_UNTIL(S.n >= 3, 2000);
	CU_ASSERT_STRING_EQUAL(S.text[2], "c");
	close(fd);
	teardown();
}

/* ---- output back-pressure ----------------------------------------------- */

#define HIGH_WATER (64u * 1024)

/* Over the high-water mark, buffered input waits (conn_read_line and
 * conn_peek say AGAIN), the socket is not read and the loop does not
 * spin; once the client read its replies, the rest comes in order. */
static void
test_high_water_holds_input(void)
{
	char *buf = malloc(BIG_SIZE);
	const void *data;
	size_t len;
	struct postern_line line;
	int fd, eof, reads;

	conn_set_output_high_water(HIGH_WATER);
	SETUP(.max_input = 0);
	fd = client_connect();
	client_sends(fd, "BIG\r\nx\r\ny\r\n");
	PUMP_UNTIL(S.n >= 1, 2000);
	pump(100);
	CU_ASSERT_EQUAL(S.n, 1);
	CU_ASSERT_FATAL(S.c != NULL);
	CU_ASSERT(conn_output_pending(S.c) > HIGH_WATER);
	CU_ASSERT_EQUAL(conn_read_line(S.c, 100, &line), POSTERN_AGAIN);
	CU_ASSERT_EQUAL(conn_peek(S.c, &data, &len), POSTERN_AGAIN);
	reads = S.reads;
	client_sends(fd, "z\r\n");
	CU_ASSERT(pump_count(100) <= IDLE_ITERATIONS_MAX);
	CU_ASSERT_EQUAL(S.reads, reads);
	CU_ASSERT_EQUAL(client_read(fd, buf, BIG_SIZE, &eof, 20000),
	                BIG_SIZE);
	PUMP_UNTIL(S.n >= 4, 2000);
	CU_ASSERT_EQUAL(S.n, 4);
	CU_ASSERT_STRING_EQUAL(S.text[1], "x");
	CU_ASSERT_STRING_EQUAL(S.text[2], "y");
	CU_ASSERT_STRING_EQUAL(S.text[3], "z");
	free(buf);
	close(fd);
	teardown();
	conn_set_output_high_water(0);
}

/* conn_resume while over the mark delivers nothing until it drains. */
static void
test_high_water_and_pause(void)
{
	char *buf = malloc(BIG_SIZE);
	int fd, eof;

	conn_set_output_high_water(HIGH_WATER);
	SETUP(.max_input = 0);
	S.mode = M_PAUSE;
	fd = client_connect();
	client_sends(fd, "BIG\r\nx\r\n");
	PUMP_UNTIL(S.n >= 1, 2000);
	CU_ASSERT_FATAL(S.c != NULL);
	conn_resume(S.c);
	pump(100);
	CU_ASSERT_EQUAL(S.n, 1);
	CU_ASSERT_EQUAL(client_read(fd, buf, BIG_SIZE, &eof, 20000),
	                BIG_SIZE);
	PUMP_UNTIL(S.n >= 2, 2000);
	CU_ASSERT_EQUAL(S.n, 2);
	CU_ASSERT_STRING_EQUAL(S.text[1], "x");
	free(buf);
	close(fd);
	teardown();
	conn_set_output_high_water(0);
}

/* Output that does not drain for the idle timeout closes the connection
 * at once (reason TIMEOUT), without on_timeout: a goodbye would only
 * queue behind the rest. */
static void
test_high_water_stalled_output_closes(void)
{
	int fd;

	conn_set_output_high_water(HIGH_WATER);
	SETUP(.idle_ms = 200);
	fd = client_connect();
	client_sends(fd, "BIG\r\n");
	PUMP_UNTIL(S.closes == 1, 3000);
	CU_ASSERT_EQUAL(S.closes, 1);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_TIMEOUT);
	CU_ASSERT_EQUAL(S.timeouts, 0);
	close(fd);
	teardown();
	conn_set_output_high_water(0);
}

/* The junk-command budget: max_junk commands pass, the next is over;
 * a reset gives the whole budget back. */
static void
test_junk_budget(void)
{
	int fd, i;

	SETUP(.max_junk = 3);
	fd = client_connect();
	PUMP_UNTIL(S.c != NULL, 2000);
	CU_ASSERT_FATAL(S.c != NULL);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_OK);
	CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_TOOLONG);
	CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_TOOLONG);
	conn_junk_reset(S.c);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_OK);
	CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_TOOLONG);
	close(fd);
	teardown();

	/* 0: the default (100); POSTERN_CONN_UNLIMITED: no limit. */
	SETUP(.max_junk = 0);
	fd = client_connect();
	PUMP_UNTIL(S.c != NULL, 2000);
	CU_ASSERT_FATAL(S.c != NULL);
	for (i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_OK);
	CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_TOOLONG);
	close(fd);
	teardown();
	SETUP(.max_junk = POSTERN_CONN_UNLIMITED);
	fd = client_connect();
	PUMP_UNTIL(S.c != NULL, 2000);
	CU_ASSERT_FATAL(S.c != NULL);
	for (i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(conn_junk_command(S.c), POSTERN_OK);
	close(fd);
	teardown();
}

/* ---- timeouts and closing ----------------------------------------------- */

static void
test_idle_timeout(void)
{
	uint64_t start;
	char buf[64];
	int fd, eof;

	SETUP(.idle_ms = 100);
	S.timeout_keep = 1; /* the first on_timeout keeps it open */
	fd = client_connect();
	start = unit_mono_ms();
	client_read_all(fd, buf, sizeof(buf), &eof, 5000);
	CU_ASSERT(eof);
	CU_ASSERT_STRING_EQUAL(buf, "BYE idle\r\n");
	CU_ASSERT(unit_mono_ms() - start >= 190);
	PUMP_UNTIL(S.closes == 1, 2000);
	CU_ASSERT_EQUAL(S.timeouts, 2);
	CU_ASSERT_EQUAL(S.closes, 1);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_TIMEOUT);
	close(fd);
	teardown();
}

static void
test_idle_timeout_default_close(void)
{
	char buf[64];
	int fd, eof;

	/* No on_timeout: closed.  conn_set_idle overrides the listener. */
	SETUP(.idle_ms = 60000);
	S.no_timeout_cb = 1;
	S.set_idle = 100;
	fd = client_connect();
	client_read_all(fd, buf, sizeof(buf), &eof, 5000);
	CU_ASSERT(eof);
	CU_ASSERT_STRING_EQUAL(buf, "");
	PUMP_UNTIL(S.closes == 1, 2000);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_TIMEOUT);
	close(fd);
	teardown();
}

static void
test_close_peer(void)
{
	int fd;

	SETUP(.max_input = 0);
	fd = client_connect();
	PUMP_UNTIL(S.accepted == 1, 2000);
	CU_ASSERT_EQUAL(conn_count(), 1);
	close(fd);
	PUMP_UNTIL(S.closes >= 1, 2000);
	pump(50);
	CU_ASSERT_EQUAL(S.closes, 1);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_PEER);
	CU_ASSERT_EQUAL(conn_count(), 0);
	teardown();
	CU_ASSERT_EQUAL(S.closes, 1);
}

static void
test_close_local(void)
{
	char buf[64];
	int fd, eof;

	SETUP(.max_input = 0);
	fd = client_connect();
	client_sends(fd, "QUIT\r\n");
	client_read_all(fd, buf, sizeof(buf), &eof, 2000);
	CU_ASSERT(eof);
	CU_ASSERT_STRING_EQUAL(buf, "BYE now\r\n");
	PUMP_UNTIL(S.closes >= 1, 2000);
	pump(50);
	CU_ASSERT_EQUAL(S.closes, 1);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_LOCAL);
	CU_ASSERT_EQUAL(S.closes_at_close, 0); /* deferred, not nested */
	CU_ASSERT_EQUAL(S.after_close_write, POSTERN_CLOSED);
	CU_ASSERT_EQUAL(S.after_close_read, POSTERN_CLOSED);
	CU_ASSERT_EQUAL(conn_count(), 0);
	close(fd);
	teardown();
	CU_ASSERT_EQUAL(S.closes, 1);
}

static void
test_close_linger_bounded(void)
{
	uint64_t start;
	int fd;

	/* The peer never reads 8 MiB queued before conn_close: the host
	 * gives up after a few seconds instead of keeping it forever. */
	SETUP(.max_input = 0);
	fd = client_connect();
	client_sends(fd, "BIGCLOSE\r\n");
	start = unit_mono_ms();
	PUMP_UNTIL(S.closes >= 1, 15000);
	CU_ASSERT_EQUAL(S.closes, 1);
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_LOCAL);
	CU_ASSERT(unit_mono_ms() - start >= 3000);
	close(fd);
	teardown();
}

static void
test_shutdown_and_close_all(void)
{
	int a, b;

	SETUP(.max_input = 0);
	a = client_connect();
	b = client_connect();
	PUMP_UNTIL(S.accepted == 2, 2000);
	CU_ASSERT_EQUAL(conn_count(), 2);
	conn_shutdown_all();
	CU_ASSERT_EQUAL(S.shutdowns, 2);
	conn_shutdown_all(); /* once per connection */
	CU_ASSERT_EQUAL(S.shutdowns, 2);
	conn_close_all();
	CU_ASSERT_EQUAL(S.closes, 2); /* before returning */
	CU_ASSERT_EQUAL(S.why, POSTERN_CLOSE_SHUTDOWN);
	CU_ASSERT_EQUAL(conn_count(), 0);
	pump(20);
	CU_ASSERT_EQUAL(S.closes, 2);
	close(a);
	close(b);
	teardown();
}

/* ---- limits ------------------------------------------------------------- */

/* 1 once the server closed `fd` (EOF or reset). */
static int
client_sees_close(int fd)
{
	char c;
	int eof;

	client_read(fd, &c, 1, &eof, 1000);
	return eof;
}

static void
test_max_per_ip(void)
{
	int a, b, c, d;

	SETUP(.max_per_ip = 2);
	a = client_connect();
	b = client_connect();
	PUMP_UNTIL(S.accepted == 2, 2000);
	c = client_connect();
	CU_ASSERT(client_sees_close(c));
	CU_ASSERT_EQUAL(S.accepted, 2);
	CU_ASSERT_EQUAL(conn_count(), 2);
	/* A slot freed is a slot available again. */
	close(a);
	PUMP_UNTIL(S.closes == 1, 2000);
	d = client_connect();
	PUMP_UNTIL(S.accepted == 3, 2000);
	CU_ASSERT_EQUAL(S.accepted, 3);
	close(b);
	close(c);
	close(d);
	teardown();
}

static void
test_max_conns(void)
{
	int a, b;

	SETUP(.max_conns = 1);
	a = client_connect();
	PUMP_UNTIL(S.accepted == 1, 2000);
	b = client_connect();
	CU_ASSERT(client_sees_close(b));
	CU_ASSERT_EQUAL(S.accepted, 1);
	CU_ASSERT_EQUAL(conn_count(), 1);
	close(a);
	close(b);
	teardown();
}

/* ---- addresses ---------------------------------------------------------- */

static unsigned
client_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	getsockname(fd, (struct sockaddr *)&ss, &len);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void
log_hello(void *arg)
{
	conn_log(arg, POSTERN_LOG_ERROR, "hello %d", 42);
}

static void
check_log_prefix(postern_conn_t *c, const char *peer, unsigned pport)
{
	char want[128];
	char *text = unit_capture_log(log_hello, c);

	snprintf(want, sizeof(want), "conn=%llu peer=%s:%u: hello 42",
	         (unsigned long long)conn_id(c), peer, pport);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
	if (strstr(text, want) == NULL)
		fprintf(stderr, "log was: %s (wanted %s)\n", text, want);
	free(text);
}

static void
test_peer_ipv4(void)
{
	socklen_t len;
	int fd;

	SETUP(.max_input = 0);
	fd = client_connect();
	PUMP_UNTIL(S.accepted == 1, 2000);
	CU_ASSERT_FATAL(S.c != NULL);
	CU_ASSERT_STRING_EQUAL(conn_peer(S.c), "127.0.0.1");
	CU_ASSERT_EQUAL(conn_peer_port(S.c), client_port(fd));
	CU_ASSERT_EQUAL(conn_peer_is_loopback(S.c), 1);
	CU_ASSERT_EQUAL(conn_local_port(S.c), port);
	CU_ASSERT_STRING_EQUAL(conn_listener_name(S.c), "test");
	CU_ASSERT(conn_peer_addr(S.c, &len)->sa_family == AF_INET);
	CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in));
	CU_ASSERT_EQUAL(conn_tls_active(S.c), 0);
	CU_ASSERT_PTR_NOT_NULL(conn_pool(S.c));
	check_log_prefix(S.c, "127.0.0.1", client_port(fd));
	close(fd);
	teardown();
}

static void
test_peer_ipv6(void)
{
	int fd;

	if (setup(&(struct setup){ .address = "::1" }) < 0) {
		/* No IPv6 here: nothing to test. */
		teardown();
		return;
	}
	fd = client_connect_to(AF_INET6, "::1");
	CU_ASSERT_FATAL(fd >= 0);
	PUMP_UNTIL(S.accepted == 1, 2000);
	CU_ASSERT_FATAL(S.c != NULL);
	CU_ASSERT_STRING_EQUAL(conn_peer(S.c), "::1");
	CU_ASSERT_EQUAL(conn_peer_is_loopback(S.c), 1);
	check_log_prefix(S.c, "[::1]", client_port(fd));
	close(fd);
	teardown();
}

static void
test_peer_dual_stack(void)
{
	socklen_t len;
	int fd;

	if (setup(&(struct setup){ .address = "*" }) < 0) {
		teardown();
		return;
	}
	/* An IPv4 client of a [::] socket arrives as ::ffff:127.0.0.1. */
	fd = client_connect();
	PUMP_UNTIL(S.accepted == 1, 2000);
	CU_ASSERT_FATAL(S.c != NULL);
	CU_ASSERT_STRING_EQUAL(conn_peer(S.c), "127.0.0.1");
	CU_ASSERT(conn_peer_addr(S.c, &len)->sa_family == AF_INET6);
	CU_ASSERT_EQUAL(conn_peer_is_loopback(S.c), 1);
	close(fd);
	teardown();
}

static void
test_peer_unix(void)
{
	struct postern_listen_spec spec;
	struct setup o = { .max_input = 0 };
	int sv[2];

	SETUP(.max_input = 0);
	spec = make_spec(&o);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	                           sv) == 0);
	CU_ASSERT_FATAL(conn_accept(sv[0], &spec) != NULL);
	CU_ASSERT_STRING_EQUAL(conn_peer(S.c), "unix");
	CU_ASSERT_EQUAL(conn_peer_port(S.c), 0);
	CU_ASSERT_EQUAL(conn_peer_is_loopback(S.c), 1);
	conn_close_all();
	close(sv[1]);
	teardown();
}

static int
unix_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 &&
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void
test_unix_listener(void)
{
	char *dir = unit_tmpdir(), path[256];
	int round, fd;

	snprintf(path, sizeof(path), "%s/s.sock", dir);
	/* The second round binds over the socket file the first left. */
	for (round = 0; round < 2; round++) {
		struct setup o = { .address = path };
		CU_ASSERT_FATAL(setup(&o) == 0);
		fd = unix_connect(path);
		CU_ASSERT_FATAL(fd >= 0);
		PUMP_UNTIL(S.accepted == 1, 2000);
		CU_ASSERT_FATAL(S.c != NULL);
		CU_ASSERT_STRING_EQUAL(conn_peer(S.c), "unix");
		CU_ASSERT_EQUAL(conn_peer_is_loopback(S.c), 1);
		close(fd);
		teardown();
	}
	unit_rm_rf(dir);
	free(dir);
}

static void
test_accept_emfile(void)
{
	struct rlimit saved, low;
	int fd, next;

	/* With no descriptor left, accept fails with EMFILE: the listener
	 * must back off (not spin on the readable socket) and accept the
	 * connection once descriptors are available again. */
	SETUP(.max_input = 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(fd >= 0);
	next = dup(0);
	CU_ASSERT_FATAL(next >= 0);
	close(next);
	CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &saved) == 0);
	low = saved;
	low.rlim_cur = (rlim_t)next;
	CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET };
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CU_ASSERT(connect(fd, (struct sockaddr *)&sin,
		                  sizeof(sin)) == 0);
	}
	CU_ASSERT(pump_count(100) <= IDLE_ITERATIONS_MAX);
	CU_ASSERT_EQUAL(S.accepted, 0);
	setrlimit(RLIMIT_NOFILE, &saved);
	PUMP_UNTIL(S.accepted == 1, 2000);
	CU_ASSERT_EQUAL(S.accepted, 1);
	close(fd);
	teardown();
}

static void
test_listener_errors(void)
{
	struct setup o = { .address = "256.1.1.1" };
	struct postern_listen_spec spec = make_spec(&o);
	postern_listener_t *a;

	alarm(TEST_ALARM_S);
	CU_ASSERT_PTR_NULL(listener_add("test", &spec));
	spec.address = "localhost"; /* names are not resolved */
	CU_ASSERT_PTR_NULL(listener_add("test", &spec));
	spec.address = "127.0.0.1";
	spec.port = 70000;
	CU_ASSERT_PTR_NULL(listener_add("test", &spec));
	spec.port = 2525;
	a = listener_add("test", &spec);
	CU_ASSERT_PTR_NOT_NULL(a);
	if (a != NULL)
		CU_ASSERT_STRING_EQUAL(listener_key(a), "127.0.0.1:2525");
	CU_ASSERT_PTR_NULL(listener_add("other", &spec)); /* duplicate */
	spec.address = "*";
	a = listener_add("test", &spec);
	if (a != NULL)
		CU_ASSERT_STRING_EQUAL(listener_key(a), "[::]:2525");
	spec.address = "/tmp/postern-test.sock";
	a = listener_add("test", &spec);
	if (a != NULL)
		CU_ASSERT_STRING_EQUAL(listener_key(a),
		                       "unix:/tmp/postern-test.sock");
	CU_ASSERT_EQUAL(listener_count(), 3);
	listener_reset();
	CU_ASSERT_EQUAL(listener_count(), 0);
	alarm(0);
}

static CU_TestInfo conn_tests[] = {
	{ "over-long line: TOOLONG once, next line fine", test_toolong_once },
	{ "over-long line across reads", test_toolong_split },
	{ "line filling the buffer is TOOLONG", test_toolong_buffer_full },
	{ "over-long line: how it ended", test_toolong_end },
	{ "max_input under 4 bytes still reads", test_tiny_max_input },
	{ "CR LF split across reads", test_crlf_split },
	{ "NUL, bare LF, bare CR flagged", test_line_flags },
	{ "pipelined lines all delivered", test_pipelined },
	{ "pipelined replies leave in one write", test_pipelined_one_write },
	{ "peek and consume", test_peek_consume },
	{ "8 MiB written at once, on_drain", test_large_output },
	{ "8 MiB streamed from on_drain", test_streamed_output },
	{ "back-pressure at max_input", test_backpressure },
	{ "pause and resume with buffered input", test_pause_resume },
	{ "over the output high-water mark, input waits",
	  test_high_water_holds_input },
	{ "over the high-water mark, conn_resume delivers nothing",
	  test_high_water_and_pause },
	{ "output stalled for the idle timeout closes",
	  test_high_water_stalled_output_closes },
	{ "junk-command budget and its reset", test_junk_budget },
	{ "idle timeout, on_timeout keeps then closes", test_idle_timeout },
	{ "idle timeout without on_timeout", test_idle_timeout_default_close },
	{ "peer close: on_close once", test_close_peer },
	{ "local close: flushed, on_close once", test_close_local },
	{ "close gives up on a peer that never reads",
	  test_close_linger_bounded },
	{ "shutdown_all and close_all", test_shutdown_and_close_all },
	{ "max_per_ip", test_max_per_ip },
	{ "max_conns", test_max_conns },
	{ "peer address IPv4 and log prefix", test_peer_ipv4 },
	{ "peer address IPv6", test_peer_ipv6 },
	{ "dual-stack listener shows IPv4 peers as IPv4",
	  test_peer_dual_stack },
	{ "unix socket peer", test_peer_unix },
	{ "unix socket listener, stale socket file", test_unix_listener },
	{ "accept backs off on EMFILE", test_accept_emfile },
	{ "listener address checks and keys", test_listener_errors },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "conn", NULL, NULL, NULL, NULL, conn_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return unit_run(suites);
}
