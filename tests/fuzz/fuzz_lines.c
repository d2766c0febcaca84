/*
 * fuzz_lines.c - libFuzzer harness for the core's network line reader:
 * conn_read_line, conn_peek and conn_consume in core/conn.c.
 *
 * Input: two parameter bytes, then the byte stream a client sends.  The
 * parameters (u = byte0 | byte1 << 8) give conn_read_line's max
 * (1 + u % 600) and a seed (u / 600) for a small PRNG, which picks the
 * listener's max_input, the sizes of the writes and, on every call the
 * module makes, whether it reads a line or peeks and consumes (and how
 * much).  The PRNG is also stirred by the stream's length, so the same
 * parameters over different streams still chunk differently.
 *
 * The stream goes through a real connection: conn_accept on one end of a
 * socketpair, the other end written in pieces, the loop turned with
 * loop_run_once until the host has read each piece.  The module side
 * (on_read) checks every answer against a model that knows the whole
 * stream: `pos` is where the host's buffer must start, everything before
 * it having been consumed or discarded as part of an over-long line.  Any
 * difference aborts, which libFuzzer reports with the input.
 *
 * The loop is created once and reused: creating one per input would
 * cost an epoll fd and a few allocations each time for nothing.  Every
 * input's connection is closed and freed (on_close) before the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "conn.h"
#include "log.h"
#include "loop.h"
#include "stream.h"

/* conn.c calls the stream layer (stream.c) only for a connection with a
 * stream attached; the harness attaches none. */
void
stream_on_drain(struct postern_stream *st)
{
	(void)st;
	abort();
}

void
stream_conn_gone(struct postern_stream *st)
{
	(void)st;
	abort();
}

/* The host's max_input when the spec leaves it 0 (conn.c's
 * CONN_MAX_INPUT_DEFAULT, which is private to it). */
#define HOST_MAX_INPUT_DEFAULT (64 * 1024)
#define LINE_MAX_LIMIT 600

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(expr)                                                        \
	do {                                                               \
		if (!(expr))                                               \
			fail(__LINE__, #expr);                             \
	} while (0)

static struct {
	const unsigned char *in; /* the stream the client sends */
	size_t len;
	size_t written;  /* sent so far */
	size_t pos;      /* where the host's buffer must start */
	size_t consumed; /* returned as lines, or consumed after a peek */
	size_t discarded; /* dropped as part of over-long lines */
	size_t max;      /* conn_read_line's max */
	size_t in_max;   /* the host's buffer limit for this connection */
	uint64_t rng;
	int settled;     /* every byte written has reached the host */
	int in_read, closes;
	postern_conn_t *c;
} F;

static struct loop *L;
static struct postern_listen_spec spec;

static void
fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_lines.c:%d: invariant failed: %s "
	        "(max %zu, max_input %zu, pos %zu, written %zu, len %zu)\n",
	        line, what, F.max, F.in_max, F.pos, F.written, F.len);
	abort();
}

/* xorshift64*: small, fast and reproducible. */
static uint64_t
rnd(void)
{
	F.rng ^= F.rng >> 12;
	F.rng ^= F.rng << 25;
	F.rng ^= F.rng >> 27;
	return F.rng * 2685821657736338717ull;
}

static size_t
rnd_below(size_t n)
{
	return (size_t)(rnd() % n);
}

/* ---- the model ---------------------------------------------------------- */

/* The first LF at or after `from` in the whole stream, or F.len. */
static size_t
next_lf(size_t from)
{
	const unsigned char *lf;

	if (from >= F.len)
		return F.len;
	lf = memchr(F.in + from, '\n', F.len - from);
	return lf != NULL ? (size_t)(lf - F.in) : F.len;
}

/*
 * Whether the line starting at `from` (the host's buffer start: after a
 * partial consume that is mid-line) is one the host must reject.  With
 * its LF, when the text without CR LF is over max, or when the bytes
 * before the LF fill the buffer.  Without an LF (the stream ends first),
 * once the host cannot tell it apart from an over-long line: max + 2
 * bytes hold more than max even if the last is the CR of a CR LF.
 */
static int
too_long(size_t from)
{
	size_t lf = next_lf(from), n = lf - from, text;

	if (lf < F.len) {
		text = n > 0 && F.in[lf - 1] == '\r' ? n - 1 : n;
		return text > F.max || n >= F.in_max;
	}
	return n >= F.max + 2 || n >= F.in_max;
}

/* The rest of an over-long line is discarded, up to and with its LF
 * (which may not have been sent yet). */
static void
model_discard_line(void)
{
	size_t lf = next_lf(F.pos);
	size_t end = lf < F.len ? lf + 1 : F.len;

	F.discarded += end - F.pos;
	F.pos = end;
}

static void
check_line(const struct postern_line *line)
{
	size_t lf = next_lf(F.pos), n, i;
	unsigned want;
	int crlf, bare_cr = 0, nul = 0;

	CHECK(!too_long(F.pos));
	CHECK(lf < F.written); /* the host cannot invent an LF */
	n = lf - F.pos;
	crlf = n > 0 && F.in[lf - 1] == '\r';
	CHECK(line->len == n - (size_t)crlf);
	CHECK(line->len <= F.max);
	CHECK(line->data != NULL || line->len == 0);
	if (line->len > 0) {
		CHECK(memcmp(line->data, F.in + F.pos, line->len) == 0);
		CHECK(memchr(line->data, '\n', line->len) == NULL);
	}
	/* Flags from the stream itself, byte by byte, not from the
	 * returned copy: a CR is bare when the next byte sent is not LF. */
	for (i = 0; i < line->len; i++) {
		if (F.in[F.pos + i] == '\0')
			nul = 1;
		if (F.in[F.pos + i] == '\r' && F.in[F.pos + i + 1] != '\n')
			bare_cr = 1;
	}
	want = crlf ? POSTERN_LINE_CRLF : POSTERN_LINE_BARE_LF;
	if (nul)
		want |= POSTERN_LINE_NUL;
	if (bare_cr)
		want |= POSTERN_LINE_BARE_CR;
	CHECK(line->flags == want);
	F.consumed += n + 1;
	F.pos = lf + 1;
}

/* 1 while there may be more to take, 0 on AGAIN. */
static int
step_read_line(postern_conn_t *c)
{
	struct postern_line line;
	int st;

	memset(&line, 0, sizeof(line));
	st = conn_read_line(c, F.max, &line);
	switch (st) {
	case POSTERN_OK:
		check_line(&line);
		return 1;
	case POSTERN_TOOLONG:
		CHECK(F.pos < F.written);
		CHECK(too_long(F.pos));
		model_discard_line();
		return 1;
	case POSTERN_AGAIN:
		/* Once the host holds everything sent, AGAIN means there is
		 * no complete line, and no over-long one either. */
		if (F.settled && F.pos < F.written) {
			CHECK(next_lf(F.pos) >= F.written);
			CHECK(F.written < F.len || !too_long(F.pos));
		}
		return 0;
	default:
		CHECK(!"conn_read_line: unexpected status");
		return 0;
	}
}

static int
step_peek(postern_conn_t *c)
{
	const void *data = NULL;
	const unsigned char *lf;
	size_t len = 0, k;
	int st;

	st = conn_peek(c, &data, &len);
	if (st == POSTERN_AGAIN) {
		if (F.settled)
			CHECK(F.pos >= F.written);
		return 0;
	}
	CHECK(st == POSTERN_OK);
	CHECK(len > 0 && data != NULL);
	CHECK(F.pos + len <= F.written);
	CHECK(memcmp(data, F.in + F.pos, len) == 0);
	switch (rnd_below(4)) {
	case 0: /* a line-oriented module: through the first LF */
		lf = memchr(data, '\n', len);
		k = lf != NULL ? (size_t)(lf - (const unsigned char *)data) + 1
		               : len;
		break;
	case 1: /* a literal or a DATA chunk: some of it */
		k = 1 + rnd_below(len);
		break;
	case 2:
		k = len;
		break;
	default: /* more than buffered takes what is there */
		k = len + 1 + rnd_below(8);
		break;
	}
	conn_consume(c, k);
	if (k > len)
		k = len;
	F.consumed += k;
	F.pos += k;
	return 1;
}

/* Takes input the way the PRNG says until the host says AGAIN.  Every
 * step either returns AGAIN or moves pos by at least one byte, so more
 * steps than bytes is a loop that does not progress. */
static void
take_input(postern_conn_t *c)
{
	size_t steps = 0;
	int more;

	do {
		CHECK(steps++ <= F.len + 2);
		if (rnd_below(2) == 0)
			more = step_read_line(c);
		else
			more = step_peek(c);
	} while (more);
}

/* ---- the module --------------------------------------------------------- */

static void
f_on_read(postern_conn_t *c, void *arg)
{
	CHECK(c == F.c && arg == &F);
	CHECK(!F.in_read); /* callbacks never nest */
	CHECK(F.closes == 0);
	F.in_read = 1;
	take_input(c);
	F.in_read = 0;
}

static void
f_on_close(postern_conn_t *c, void *arg, enum postern_close_reason why)
{
	CHECK(c == F.c && arg == &F);
	CHECK(!F.in_read);
	F.closes++;
	CHECK(F.closes == 1);
}

static const struct postern_conn_ops f_ops = {
	.size = sizeof(struct postern_conn_ops),
	.on_read = f_on_read,
	.on_close = f_on_close,
};

static void
f_on_accept(postern_conn_t *c, void *arg)
{
	CHECK(F.c == NULL);
	F.c = c;
	conn_set_ops(c, &f_ops, &F);
}

static const struct postern_listener_ops f_lops = {
	.size = sizeof(struct postern_listener_ops),
	.on_accept = f_on_accept,
};

/* ---- driving ------------------------------------------------------------ */

static int
unread(int fd)
{
	int n = 0;

	if (ioctl(fd, FIONREAD, &n) < 0)
		abort();
	return n;
}

/* Turns the loop until the host has read everything sent on `fd`'s
 * socket.  It reads at least a byte per turn (the module always takes
 * what it can, so the buffer never stays full); more turns than bytes
 * is a spin or a stall. */
static void
settle(int fd)
{
	int left = unread(fd), turns = 0, limit = 2 * left + 16;

	while (left > 0) {
		CHECK(turns++ < limit);
		loop_run_once(L, 0);
		left = unread(fd);
	}
	loop_run_once(L, 0); /* before-wait and deferred calls */
}

static size_t
chunk_size(void)
{
	size_t left = F.len - F.written;
	size_t n;

	switch (rnd_below(8)) {
	case 0:
		n = 1;
		break;
	case 1: case 2: case 3: case 4:
		n = 1 + rnd_below(16);
		break;
	case 5: case 6:
		n = 1 + rnd_below(256);
		break;
	default:
		n = left;
		break;
	}
	return n < left ? n : left;
}

static size_t
pick_max_input(void)
{
	switch (rnd_below(4)) {
	case 0:
		return 0; /* the host default */
	case 1:
		return 1 + rnd_below(8); /* absurdly small, still legal */
	case 2:
		return 16 + rnd_below(1024);
	default:
		return F.max + rnd_below(4); /* around the line limit */
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Connection logging is not what is tested, and costs time. */
	log_set_level(POSTERN_LOG_ERROR);
	L = loop_create();
	if (L == NULL)
		abort();
	loop_current = L;
	conn_init(L);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned u;
	int sv[2], server;
	size_t n;
	ssize_t w;
	int turns;

	if (size < 2)
		return 0;
	u = (unsigned)data[0] | (unsigned)data[1] << 8;
	memset(&F, 0, sizeof(F));
	F.in = data + 2;
	F.len = size - 2;
	F.max = 1 + u % LINE_MAX_LIMIT;
	F.rng = ((uint64_t)(u / LINE_MAX_LIMIT) + 1) * 0x9e3779b97f4a7c15ull ^
	        ((uint64_t)F.len << 32);
	if (F.rng == 0)
		F.rng = 1;

	memset(&spec, 0, sizeof(spec));
	spec.size = sizeof(spec);
	spec.name = "fuzz";
	spec.address = "/nonexistent"; /* never bound: conn_accept only */
	spec.limits.size = sizeof(spec.limits);
	spec.limits.max_input = pick_max_input();
	spec.ops = &f_lops;
	spec.arg = &F;
	F.in_max = spec.limits.max_input != 0 ? spec.limits.max_input
	                                      : HOST_MAX_INPUT_DEFAULT;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	server = sv[0];
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
		abort();
	CHECK(conn_accept(server, &spec) != NULL);
	CHECK(F.c != NULL);

	while (F.written < F.len) {
		n = chunk_size();
		w = send(sv[1], F.in + F.written, n, MSG_NOSIGNAL);
		if (w < 0) {
			/* The socket is full: the host must make room. */
			CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
			CHECK(unread(server) > 0);
		} else {
			F.written += (size_t)w;
		}
		settle(server);
	}

	/* Everything is in the host now: what it still holds must be
	 * exactly the stream after pos, an unterminated line not yet too
	 * long. */
	F.settled = 1;
	while (rnd_below(2) == 0 ? step_read_line(F.c) : step_peek(F.c))
		;
	while (step_read_line(F.c))
		;
	{
		const void *rest = NULL;
		size_t rest_len = 0;
		int st = conn_peek(F.c, &rest, &rest_len);

		if (F.pos >= F.len) {
			CHECK(st == POSTERN_AGAIN);
			rest_len = 0;
		} else {
			CHECK(st == POSTERN_OK);
			CHECK(rest_len == F.len - F.pos);
			CHECK(memcmp(rest, F.in + F.pos, rest_len) == 0);
			CHECK(memchr(rest, '\n', rest_len) == NULL);
		}
		/* Consumed, discarded and still buffered add up to the
		 * stream: nothing lost, nothing twice. */
		CHECK(F.consumed + F.discarded + rest_len == F.len);
	}

	/* Close, from either side, and turn the loop until on_close has
	 * freed the connection and its socket is gone (a local close
	 * lingers until the peer's EOF). */
	if (rnd_below(2) == 0) {
		conn_close(F.c);
		close(sv[1]);
	} else {
		close(sv[1]);
	}
	for (turns = 0; F.closes == 0 || fcntl(server, F_GETFD) != -1;
	     turns++) {
		CHECK(turns < 64);
		loop_run_once(L, 0);
	}
	CHECK(errno == EBADF);
	CHECK(conn_count() == 0);
	return 0;
}
