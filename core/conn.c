/*
 * conn.c - client connections (see conn.h and postern/conn.h).
 *
 * A connection owns its socket, one contiguous input buffer (4 KiB,
 * growing to the listener's max_input) and an output queue of chunks.
 * Everything happens on loop_current:
 *
 *   - fd events read into the input buffer and call on_read, or write
 *     out what the socket would not take before;
 *   - module calls (conn_write, conn_consume, conn_close, ...) only change
 *     state and put the connection on the "pending" list, which the
 *     loop's before-wait callback works through: it flushes output (so
 *     replies to pipelined commands leave in one syscall), calls on_drain
 *     and adjusts which events the socket is watched for;
 *   - on_read after conn_resume (or decrypted TLS input left stranded in
 *     OpenSSL) comes from a deferred call working through the "ready"
 *     list; on_close comes from one working through the "dead" list.
 *
 * The lists are global and nothing deferred ever holds a connection
 * pointer, so a connection can be freed at any time without leaving a
 * dangling callback behind.  Module callbacks therefore never nest: no
 * host function the module calls ever calls back into it.
 *
 * A closed connection is first "released" (socket closed or handed to a
 * short lingering drain, watch removed, limits uncounted), then
 * "finalized" from the dead list: on_close, then free.  Its timer is
 * only ever cancelled at finalize, never from its own callback.
 *
 * Beside it: TLS goes through tls.c (tls_io_*: this file calls no
 * OpenSSL function), and a client is admitted under its listener's
 * max_conns and max_per_ip by listener.c (listener_admit).
 */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "listener.h"
#include "log.h"
#include "loop.h"
#include "pool.h"
#include "stream.h"
#include "tls.h"
#include "xalloc.h"

#define CONN_IN_INITIAL 4096
#define CONN_MAX_INPUT_DEFAULT (64 * 1024)
#define CONN_IDLE_DEFAULT_MS (5 * 60 * 1000)
#define CONN_OUT_CHUNK 16384
#define CONN_IOV_MAX 64
#define CONN_POOL_BLOCK 4096
/* Closing with output queued: give up when the peer has not read
 * anything for this long. */
#define CONN_CLOSE_LINGER_MS 5000
/* After the last byte went out and our side was shut down, unread input
 * is drained for this long, so closing does not turn into a RST that
 * destroys the goodbye before the peer read it. */
#define CONN_DRAIN_LINGER_MS 2000
/* STARTTLS: at most this much is drained from the socket before the
 * go-ahead; a client still sending is broken and fails the handshake. */
#define CONN_STARTTLS_DRAIN_MAX (64 * 1024)
/* Flush rounds (write, on_drain, write...) per call before yielding. */
#define CONN_FLUSH_ROUNDS 16
/* Output queued above this stops input (conn_set_output_high_water). */
#define CONN_OUT_HIGH_DEFAULT (256 * 1024)
/* Junk commands a session may send (limits.max_junk 0). */
#define CONN_JUNK_DEFAULT 100

enum conn_state {
	CS_PLAIN = 0,
	CS_STARTTLS,  /* sending the plaintext go-ahead; not reading */
	CS_HANDSHAKE, /* the TLS handshake in progress */
	CS_TLS,
	CS_CONNECTING, /* outbound: connect() in progress */
};

struct out_chunk {
	struct out_chunk *next;
	size_t start, end, cap;
	char data[];
};

struct postern_conn {
	uint64_t id;
	int fd;
	enum conn_state state;
	const struct postern_listen_spec *spec;
	const struct postern_conn_ops *ops;
	void *arg;
	postern_pool_t *pool;
	struct loop_watch *watch;
	unsigned watch_events;
	struct loop_timer *timer;

	/* peer */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char peer_text[INET6_ADDRSTRLEN];
	unsigned peer_port, local_port;
	char log_prefix[96];
	unsigned ticket;        /* listener_admit's */

	/* input: [in_start, in_end) is buffered; in_scan bytes of it are
	 * known to hold no LF */
	char *in;
	size_t in_start, in_end, in_cap, in_max, in_scan;
	int skip_line; /* discarding the rest of an over-long line */
	int skip_cr;   /* the last octet it discarded was a CR */
	/* How the last over-long line ended (POSTERN_LINE_CRLF or
	 * _BARE_LF), once its LF was seen: conn_line_skipped. */
	unsigned skip_end;

	/* output */
	struct out_chunk *out_head, *out_tail;
	size_t out_len;
	size_t plain_left; /* CS_STARTTLS: bytes still to go in plaintext */
	postern_tls_t *starttls;
	/* A stream writing to it (stream.c): it takes the drains. */
	struct postern_stream *stream;

	/* TLS */
	SSL *ssl;
	int hs_want_write;     /* handshake waits for writability */
	int read_want_write;   /* a TLS read waits for writability */
	int write_want_read;   /* a TLS write waits for readability */

	/* idle timeout: the timer re-checks last_activity when it fires */
	unsigned idle_ms;
	uint64_t last_activity;
	uint64_t accepted_ms;   /* 0: an outgoing connection */

	/* junk commands since the last conn_junk_reset */
	unsigned junk;
	/* outbound connections (conn_connect) */
	char *error;           /* why it failed, for conn_error */
	unsigned connected_idle_ms; /* idle timeout once connected */

	unsigned paused : 1;
	unsigned throttled : 1;   /* output over the high-water mark: input
	                             waits until it drains under the low */
	unsigned closing : 1;     /* conn_close or timeout: flushing */
	unsigned dead : 1;        /* released; on_close is due */
	unsigned read_eof : 1;
	unsigned write_blocked : 1;
	unsigned drain_due : 1;   /* on_drain when the queue empties */
	unsigned in_timer : 1;    /* inside our own timer callback */
	unsigned shutdown_called : 1;
	unsigned on_pending : 1, on_ready : 1;
	enum postern_close_reason why;

	TAILQ_ENTRY(postern_conn) all_link;
	TAILQ_ENTRY(postern_conn) pending_link; /* also the dead list */
	TAILQ_ENTRY(postern_conn) ready_link;
};

TAILQ_HEAD(conn_list, postern_conn);

/* A socket drained for a moment after its connection was closed. */
struct drain {
	int fd;
	struct loop_watch *watch;
	struct loop_timer *timer;
	int in_timer;
	TAILQ_ENTRY(drain) link;
};

TAILQ_HEAD(drain_list, drain);

static struct {
	struct loop *loop; /* where the before-wait callback is installed */
	uint64_t next_id;
	size_t count;
	struct conn_list all, pending, ready, dead;
	size_t nready;
	int ready_scheduled, dead_scheduled;
	struct drain_list lingers;
	size_t out_high; /* output high-water mark; the low is half */
} cs = {
	.next_id = 1,
	.out_high = CONN_OUT_HIGH_DEFAULT,
	.all = TAILQ_HEAD_INITIALIZER(cs.all),
	.pending = TAILQ_HEAD_INITIALIZER(cs.pending),
	.ready = TAILQ_HEAD_INITIALIZER(cs.ready),
	.dead = TAILQ_HEAD_INITIALIZER(cs.dead),
	.lingers = TAILQ_HEAD_INITIALIZER(cs.lingers),
};

static void conn_before_wait(void *arg);
static void conn_flush(postern_conn_t *c);
static void conn_read_input(postern_conn_t *c);
static void conn_update_watch(postern_conn_t *c);

/* ---- small helpers ---------------------------------------------------- */

static uint64_t
now_ms(void)
{
	return loop_now_ms(loop_current);
}

static size_t
in_buffered(const postern_conn_t *c)
{
	return c->in_end - c->in_start;
}

static void
mark_pending(postern_conn_t *c)
{
	if (c->on_pending || c->dead)
		return;
	c->on_pending = 1;
	TAILQ_INSERT_TAIL(&cs.pending, c, pending_link);
}

static void
unmark_pending(postern_conn_t *c)
{
	if (!c->on_pending)
		return;
	c->on_pending = 0;
	TAILQ_REMOVE(&cs.pending, c, pending_link);
}

static void conn_run_ready(void *arg);

static void
mark_ready(postern_conn_t *c)
{
	if (c->on_ready || c->dead)
		return;
	c->on_ready = 1;
	cs.nready++;
	TAILQ_INSERT_TAIL(&cs.ready, c, ready_link);
	if (!cs.ready_scheduled) {
		cs.ready_scheduled = 1;
		loop_defer(loop_current, conn_run_ready, NULL);
	}
}

static void
unmark_ready(postern_conn_t *c)
{
	if (!c->on_ready)
		return;
	c->on_ready = 0;
	cs.nready--;
	TAILQ_REMOVE(&cs.ready, c, ready_link);
}

/* ---- lingering close -------------------------------------------------- */

static void
linger_free(struct drain *lg)
{
	TAILQ_REMOVE(&cs.lingers, lg, link);
	loop_watch_remove(loop_current, lg->watch);
	if (lg->timer != NULL && !lg->in_timer)
		loop_timer_cancel(loop_current, lg->timer);
	close(lg->fd);
	free(lg);
}

static void
linger_io(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct drain *lg = arg;
	char buf[4096];
	ssize_t n;

	(void)w;
	(void)events;
	n = read(fd, buf, sizeof(buf));
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
		return;
	linger_free(lg);
}

static unsigned
linger_timer(void *arg)
{
	struct drain *lg = arg;

	lg->in_timer = 1;
	lg->timer = NULL;
	linger_free(lg);
	return 0;
}

/* Takes over `fd`, whose write side is shut: reads and drops what the
 * peer still sends until it closes or CONN_DRAIN_LINGER_MS passes. */
static void
linger_start(int fd)
{
	struct drain *lg = xcalloc(1, sizeof(*lg));

	lg->fd = fd;
	lg->watch = loop_watch_add(loop_current, fd, LOOP_READ, linger_io, lg);
	if (lg->watch == NULL) {
		close(fd);
		free(lg);
		return;
	}
	lg->timer = loop_timer_add(loop_current, CONN_DRAIN_LINGER_MS,
	                           linger_timer, lg);
	TAILQ_INSERT_TAIL(&cs.lingers, lg, link);
}

/* ---- closing ---------------------------------------------------------- */

static void
out_free(postern_conn_t *c)
{
	while (c->out_head != NULL) {
		struct out_chunk *ch = c->out_head;
		c->out_head = ch->next;
		free(ch);
	}
	c->out_tail = NULL;
	c->out_len = 0;
}

static void
conn_free(postern_conn_t *c)
{
	if (c->timer != NULL && !c->in_timer)
		loop_timer_cancel(loop_current, c->timer);
	out_free(c);
	free(c->in);
	free(c->error);
	pool_destroy(c->pool);
	free(c);
}

static void
conn_finalize(postern_conn_t *c)
{
	TAILQ_REMOVE(&cs.dead, c, pending_link);
	TAILQ_REMOVE(&cs.all, c, all_link);
	cs.count--;
	/* A stream reports the end before the module hears of it. */
	if (c->stream != NULL)
		stream_conn_gone(c->stream);
	c->stream = NULL;
	if (c->ops != NULL)
		c->ops->on_close(c, c->arg, c->why);
	conn_free(c);
}

static void
conn_run_dead(void *arg)
{
	postern_conn_t *c;

	(void)arg;
	/* An on_close may close another connection: it joins this list
	 * and is finalized in this same pass. */
	while ((c = TAILQ_FIRST(&cs.dead)) != NULL)
		conn_finalize(c);
	cs.dead_scheduled = 0;
}

/*
 * Releases everything tied to the socket and queues on_close.  With
 * `graceful`, the write side is shut and the socket lingers to drain
 * input; otherwise it is closed at once.
 */
/* The session's last line, as its first said "connect". */
static void
log_disconnect(const postern_conn_t *c, enum postern_close_reason why)
{
	static const char *const reasons[] = {
		[POSTERN_CLOSE_LOCAL] = "closed by the server",
		[POSTERN_CLOSE_PEER] = "closed by the client",
		[POSTERN_CLOSE_ERROR] = "error",
		[POSTERN_CLOSE_TIMEOUT] = "timeout",
		[POSTERN_CLOSE_SHUTDOWN] = "shutdown",
	};

	if (c->accepted_ms == 0 || !log_enabled(POSTERN_LOG_INFO))
		return;
	log_write(POSTERN_LOG_INFO, c->log_prefix, "disconnect from %s (%s) "
	          "after %.3f s", c->spec->name,
	          (unsigned)why < sizeof(reasons) / sizeof(reasons[0])
	              ? reasons[why] : "?",
	          (double)(now_ms() - c->accepted_ms) / 1000.0);
}

static void
conn_release(postern_conn_t *c, enum postern_close_reason why, int graceful)
{
	if (c->dead)
		return;
	log_disconnect(c, why);
	c->dead = 1;
	c->closing = 1;
	c->why = why;
	unmark_pending(c);
	unmark_ready(c);
	loop_watch_remove(loop_current, c->watch);
	c->watch = NULL;
	if (c->ssl != NULL) {
		tls_io_free(c->ssl, graceful && c->state == CS_TLS);
		c->ssl = NULL;
	}
	if (graceful && shutdown(c->fd, SHUT_WR) == 0)
		linger_start(c->fd);
	else
		close(c->fd);
	c->fd = -1;
	listener_leave(c->spec, c->ticket);
	c->ticket = 0;
	out_free(c);
	TAILQ_INSERT_TAIL(&cs.dead, c, pending_link);
	if (!cs.dead_scheduled) {
		cs.dead_scheduled = 1;
		loop_defer(loop_current, conn_run_dead, NULL);
	}
}

static void
conn_abort(postern_conn_t *c, enum postern_close_reason why)
{
	conn_release(c, why, 0);
}

/* Starts a graceful close: what is queued goes out first, for at most
 * CONN_CLOSE_LINGER_MS without progress. */
static void
conn_begin_close(postern_conn_t *c, enum postern_close_reason why)
{
	if (c->closing || c->dead)
		return;
	c->closing = 1;
	c->why = why;
	c->last_activity = now_ms();
	if (c->timer != NULL && !c->in_timer)
		loop_timer_reset(loop_current, c->timer, CONN_CLOSE_LINGER_MS);
	unmark_ready(c);
	mark_pending(c);
}

/* A socket error: logged (the reason says what), then closed. */
static void conn_set_error(postern_conn_t *c, const char *what,
                           const char *reason);

static void
conn_fail(postern_conn_t *c, const char *what, const char *reason)
{
	conn_set_error(c, what, reason);
	conn_log(c, POSTERN_LOG_INFO, "%s: %s", what, reason);
	conn_abort(c, POSTERN_CLOSE_ERROR);
}

/* ---- output ----------------------------------------------------------- */

/*
 * Back-pressure on output.  A client that sends commands and never reads
 * the replies would make the queue grow without bound, whatever protocol
 * the module speaks; so the host stops handing it input while more than
 * cs.out_high octets wait: conn_read_line and conn_peek answer
 * POSTERN_AGAIN (input already buffered included), on_read is not
 * called and the socket is not read.  Once the queue drains under half
 * of the mark, input flows again.  A module may still write as much as
 * it likes inside one callback (a large reply); the check comes before
 * the next input.  With TLS the queue is the same: OpenSSL holds at most
 * the one record it is retrying, which stays queued here until written.
 */
static void
out_check_high(postern_conn_t *c)
{
	if (c->throttled || c->out_len <= cs.out_high)
		return;
	c->throttled = 1;
	unmark_ready(c);
	mark_pending(c);
	if (log_enabled(POSTERN_LOG_DEBUG))
		conn_log(c, POSTERN_LOG_DEBUG, "%zu octets of output queued: "
		         "input waits until the client reads", c->out_len);
}

static void
out_check_low(postern_conn_t *c)
{
	if (!c->throttled || c->out_len > cs.out_high / 2)
		return;
	c->throttled = 0;
	/* Input buffered meanwhile raises no event: deliver it. */
	if (in_buffered(c) > 0 ||
	    (c->state == CS_TLS && tls_io_pending(c->ssl) > 0))
		mark_ready(c);
	mark_pending(c);
}

static void
out_append(postern_conn_t *c, const void *data, size_t len)
{
	struct out_chunk *ch = c->out_tail;
	const char *p = data;
	size_t n;

	c->out_len += len;
	if (ch != NULL && ch->cap > ch->end) {
		n = ch->cap - ch->end < len ? ch->cap - ch->end : len;
		memcpy(ch->data + ch->end, p, n);
		ch->end += n;
		p += n;
		len -= n;
	}
	if (len == 0)
		return;
	n = len > CONN_OUT_CHUNK ? len : CONN_OUT_CHUNK;
	ch = xmalloc(sizeof(*ch) + n);
	ch->next = NULL;
	ch->start = 0;
	ch->end = len;
	ch->cap = n;
	memcpy(ch->data, p, len);
	if (c->out_tail != NULL)
		c->out_tail->next = ch;
	else
		c->out_head = ch;
	c->out_tail = ch;
}

/* Drops `n` bytes sent from the head of the queue. */
static void
out_advance(postern_conn_t *c, size_t n)
{
	c->out_len -= n;
	while (n > 0) {
		struct out_chunk *ch = c->out_head;
		size_t len = ch->end - ch->start;

		if (n < len) {
			ch->start += n;
			return;
		}
		n -= len;
		c->out_head = ch->next;
		if (c->out_head == NULL)
			c->out_tail = NULL;
		free(ch);
	}
}

/* 1: all sent (or the plaintext part, in CS_STARTTLS); 0: would block;
 * -1: failed (logged, closed). */
static int
send_plain(postern_conn_t *c)
{
	struct iovec iov[CONN_IOV_MAX];
	struct msghdr msg;
	struct out_chunk *ch;
	size_t limit;
	ssize_t n;
	int i;

	for (;;) {
		limit = c->state == CS_STARTTLS ? c->plain_left : SIZE_MAX;
		for (i = 0, ch = c->out_head;
		     ch != NULL && i < CONN_IOV_MAX && limit > 0;
		     ch = ch->next, i++) {
			size_t len = ch->end - ch->start;
			if (len > limit)
				len = limit;
			iov[i].iov_base = ch->data + ch->start;
			iov[i].iov_len = len;
			limit -= len;
		}
		if (i == 0)
			return 1;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)i;
		/* MSG_NOSIGNAL: a peer gone away is an error, not SIGPIPE. */
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			conn_fail(c, "write", strerror(errno));
			return -1;
		}
		out_advance(c, (size_t)n);
		if (c->state == CS_STARTTLS)
			c->plain_left -= (size_t)n;
		c->last_activity = now_ms();
	}
}

static int
send_tls(postern_conn_t *c)
{
	char reason[256];
	size_t sent;

	while (c->out_head != NULL) {
		struct out_chunk *ch = c->out_head;

		/* A retry after WANT_* must not be shorter than the first
		 * try: the head chunk only ever grows, so it is not. */
		switch (tls_io_write(c->ssl, ch->data + ch->start,
		                     ch->end - ch->start, &sent, reason,
		                     sizeof(reason))) {
		case TLS_IO_OK:
			c->write_want_read = 0;
			out_advance(c, sent);
			c->last_activity = now_ms();
			continue;
		case TLS_IO_WANT_WRITE:
			c->write_want_read = 0;
			return 0;
		case TLS_IO_WANT_READ:
			c->write_want_read = 1;
			return 0;
		default:
			conn_fail(c, "TLS write", reason);
			return -1;
		}
	}
	return 1;
}

static void conn_start_handshake(postern_conn_t *c);
static void conn_connected(postern_conn_t *c);

/*
 * Sends what is queued until the socket blocks, calling on_drain each
 * time the queue empties (the module may queue more there), then
 * finishes a graceful close or a STARTTLS switch once everything is out.
 */
static void
conn_flush(postern_conn_t *c)
{
	int round, r;

	for (round = 0; round < CONN_FLUSH_ROUNDS; round++) {
		if (c->dead)
			return;
		if (c->state == CS_HANDSHAKE || c->state == CS_CONNECTING) {
			/* Nothing can go out yet; closing now has nothing to
			 * say, so it does not wait for the handshake. */
			if (c->closing)
				conn_abort(c, c->why);
			return;
		}
		r = c->state == CS_TLS ? send_tls(c) : send_plain(c);
		if (r < 0)
			return;
		out_check_low(c);
		if (r == 0) {
			c->write_blocked = 1;
			return;
		}
		c->write_blocked = 0;
		if (c->state == CS_STARTTLS && !c->closing) {
			conn_start_handshake(c);
			return;
		}
		if (c->closing) {
			conn_release(c, c->why, 1);
			return;
		}
		if (!c->drain_due || c->out_len > 0)
			return;
		c->drain_due = 0;
		if (c->stream != NULL)
			stream_on_drain(c->stream);
		else if (c->ops != NULL && c->ops->on_drain != NULL)
			c->ops->on_drain(c, c->arg);
		if (c->out_len == 0)
			return;
	}
	/* Still writable with more to send: let the loop come back on
	 * the WRITE event instead of starving everyone else. */
	c->write_blocked = 1;
}

/* ---- input ------------------------------------------------------------ */

/* Makes room at the end of the input buffer: reuses consumed space,
 * grows up to in_max.  Returns the free bytes (0: back-pressure). */
static size_t
in_room(postern_conn_t *c)
{
	size_t have = in_buffered(c);

	if (have == 0)
		c->in_start = c->in_end = 0;
	/* A full end always compacts: under 4 bytes in_cap / 4 is 0, and a
	 * buffer that never did would have no room while still wanting
	 * input, spinning on a readable socket (found by fuzz_lines). */
	if (c->in_start > 0 && (c->in_end == c->in_cap ||
	                        c->in_cap - c->in_end < c->in_cap / 4)) {
		memmove(c->in, c->in + c->in_start, have);
		c->in_start = 0;
		c->in_end = have;
	}
	if (c->in_end == c->in_cap && c->in_cap < c->in_max) {
		size_t cap = c->in_cap * 2;
		if (cap > c->in_max)
			cap = c->in_max;
		c->in = xrealloc(c->in, cap);
		c->in_cap = cap;
	}
	return c->in_cap - c->in_end;
}

/* Drops `n` buffered bytes (at most what is buffered). */
static void
in_drop(postern_conn_t *c, size_t n)
{
	c->in_start += n;
	c->in_scan = 0;
	if (c->in_start == c->in_end)
		c->in_start = c->in_end = 0;
	/* Space freed may let reading resume after back-pressure. */
	mark_pending(c);
}

static void
in_discard_all(postern_conn_t *c)
{
	c->in_start = c->in_end = c->in_scan = 0;
	c->skip_line = 0;
	c->skip_cr = 0;
}

/* Drops the rest of an over-long line: 1 once its LF went (skip_end
 * says how it ended), 0 when the input ran out first. */
static int
skip_rest(postern_conn_t *c)
{
	const char *p = c->in + c->in_start;
	size_t have = in_buffered(c);
	const char *lf = memchr(p, '\n', have);

	if (lf == NULL) {
		if (have > 0)
			c->skip_cr = p[have - 1] == '\r';
		in_drop(c, have);
		return 0;
	}
	c->skip_end = (lf > p ? lf[-1] == '\r' : c->skip_cr)
	                  ? POSTERN_LINE_CRLF : POSTERN_LINE_BARE_LF;
	in_drop(c, (size_t)(lf - p) + 1);
	c->skip_line = 0;
	c->skip_cr = 0;
	return 1;
}

static int
want_input(const postern_conn_t *c)
{
	return !c->dead && !c->closing && !c->paused && !c->throttled &&
	       !c->read_eof &&
	       (c->state == CS_PLAIN || c->state == CS_TLS) &&
	       (in_buffered(c) < c->in_max);
}

static void
conn_deliver(postern_conn_t *c)
{
	if (c->dead || c->closing || c->paused || c->throttled ||
	    c->ops == NULL)
		return;
	c->ops->on_read(c, c->arg);
}

static void
read_plain(postern_conn_t *c)
{
	size_t room = in_room(c);
	ssize_t n;

	if (room == 0)
		return;
	n = read(c->fd, c->in + c->in_end, room);
	if (n > 0) {
		c->in_end += (size_t)n;
		c->last_activity = now_ms();
		conn_deliver(c);
		return;
	}
	if (n == 0) {
		c->read_eof = 1;
		if (!c->closing)
			conn_abort(c, POSTERN_CLOSE_PEER);
		return;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return;
	conn_fail(c, "read", strerror(errno));
}

static void
read_tls(postern_conn_t *c)
{
	char reason[256];
	enum tls_io_result r = TLS_IO_OK;
	size_t room, n;
	int got = 0;

	/* Drain OpenSSL while there is room: decrypted bytes it holds are
	 * invisible to epoll and would be stranded otherwise. */
	while ((room = in_room(c)) > 0) {
		r = tls_io_read(c->ssl, c->in + c->in_end, room, &n, reason,
		                sizeof(reason));
		if (r != TLS_IO_OK)
			break;
		c->in_end += n;
		got = 1;
	}
	c->read_want_write = r == TLS_IO_WANT_WRITE;
	if (got) {
		c->last_activity = now_ms();
		conn_deliver(c);
	}
	if (c->dead || r == TLS_IO_OK || r == TLS_IO_WANT_READ ||
	    r == TLS_IO_WANT_WRITE)
		return;
	if (r == TLS_IO_EOF) {
		c->read_eof = 1;
		if (!c->closing)
			conn_abort(c, POSTERN_CLOSE_PEER);
		return;
	}
	conn_fail(c, "TLS read", reason);
}

static void
conn_read_input(postern_conn_t *c)
{
	if (!want_input(c))
		return;
	if (c->state == CS_TLS)
		read_tls(c);
	else
		read_plain(c);
}

/* ---- TLS -------------------------------------------------------------- */

static void
conn_handshake(postern_conn_t *c)
{
	char reason[256];
	const char *what;

	switch (tls_io_handshake(c->ssl, &what, reason, sizeof(reason))) {
	case TLS_IO_OK:
		c->state = CS_TLS;
		c->hs_want_write = 0;
		c->last_activity = now_ms();
		conn_log(c, POSTERN_LOG_DEBUG, "TLS established: %s",
		         tls_io_describe(c->ssl));
		/* Output queued meanwhile (an implicit-TLS greeting, a
		 * reply queued after conn_starttls) can go now. */
		mark_pending(c);
		conn_read_input(c);
		return;
	case TLS_IO_WANT_READ:
		c->hs_want_write = 0;
		break;
	case TLS_IO_WANT_WRITE:
		c->hs_want_write = 1;
		break;
	default:
		conn_set_error(c, what, reason);
		conn_log(c, POSTERN_LOG_INFO, "TLS handshake failed: %s",
		         c->error);
		conn_abort(c, POSTERN_CLOSE_ERROR);
		break;
	}
}

static int
conn_ssl_new(postern_conn_t *c, postern_tls_t *tls)
{
	char reason[256];

	if ((c->ssl = tls_io_new(tls, c->fd, reason, sizeof(reason))) ==
	    NULL) {
		conn_log(c, POSTERN_LOG_ERROR, "TLS setup (cert %s): %s",
		         tls->cert_file, reason);
		conn_set_error(c, "TLS setup", reason);
		return -1;
	}
	c->state = CS_HANDSHAKE;
	c->hs_want_write = 0;
	return 0;
}

/* STARTTLS: the go-ahead is out; everything from here on is TLS. */
static void
conn_start_handshake(postern_conn_t *c)
{
	in_discard_all(c);
	if (conn_ssl_new(c, c->starttls) < 0) {
		conn_abort(c, POSTERN_CLOSE_ERROR);
		return;
	}
	c->starttls = NULL;
	conn_handshake(c);
}

/* ---- events ----------------------------------------------------------- */

static void
conn_update_watch(postern_conn_t *c)
{
	unsigned ev = 0;

	if (c->dead)
		return;
	if (c->state == CS_HANDSHAKE) {
		ev = c->hs_want_write ? LOOP_WRITE : LOOP_READ;
	} else if (c->state == CS_CONNECTING) {
		ev = LOOP_WRITE;
	} else {
		if (want_input(c))
			ev |= c->state == CS_TLS && c->read_want_write
			          ? LOOP_WRITE
			          : LOOP_READ;
		if (c->write_blocked)
			ev |= c->state == CS_TLS && c->write_want_read
			          ? LOOP_READ
			          : LOOP_WRITE;
		/* Decrypted input waiting in OpenSSL raises no event. */
		if (c->state == CS_TLS && want_input(c) &&
		    tls_io_pending(c->ssl) > 0)
			mark_ready(c);
	}
	if (ev != c->watch_events &&
	    loop_watch_set(loop_current, c->watch, ev) == 0)
		c->watch_events = ev;
}

/* A hang-up or error reported while we were not reading: nothing else
 * would notice it, and the level-triggered event would spin. */
static void
conn_hangup(postern_conn_t *c)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
	    soerr != 0) {
		conn_fail(c, "socket", strerror(soerr));
		return;
	}
	/* After conn_close the module asked for it: keep its reason. */
	conn_abort(c, c->closing ? c->why : POSTERN_CLOSE_PEER);
}

static void
conn_io(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	postern_conn_t *c = arg;
	int tls = c->state == CS_TLS;

	(void)w;
	(void)fd;
	if (c->dead)
		return;
	if (c->state == CS_CONNECTING) {
		conn_connected(c);
	} else if (c->state == CS_HANDSHAKE) {
		conn_handshake(c);
	} else {
		if (c->write_blocked &&
		    ((events & (LOOP_WRITE | LOOP_ERROR)) ||
		     (tls && c->write_want_read && (events & LOOP_READ)))) {
			c->write_blocked = 0;
			conn_flush(c);
		}
		if ((events & (LOOP_READ | LOOP_ERROR)) ||
		    (tls && c->read_want_write && (events & LOOP_WRITE)))
			conn_read_input(c);
		if (!c->dead && (events & LOOP_ERROR) && !want_input(c) &&
		    !c->write_blocked)
			conn_hangup(c);
	}
	conn_update_watch(c);
}

static void
conn_before_wait(void *arg)
{
	postern_conn_t *c;

	(void)arg;
	/* Entries added while working (an on_drain writing to another
	 * connection) are handled in this same pass. */
	while ((c = TAILQ_FIRST(&cs.pending)) != NULL) {
		unmark_pending(c);
		if (!c->write_blocked &&
		    (c->out_len > 0 || c->closing || c->state == CS_STARTTLS))
			conn_flush(c);
		conn_update_watch(c);
	}
}

static void
conn_run_ready(void *arg)
{
	postern_conn_t *c;
	size_t n;

	(void)arg;
	cs.ready_scheduled = 0;
	/* Only those ready now: an on_read that pauses and resumes again
	 * waits for the next pass instead of spinning here. */
	n = cs.nready;
	while (n-- > 0 && (c = TAILQ_FIRST(&cs.ready)) != NULL) {
		unmark_ready(c);
		if (c->state == CS_TLS && want_input(c) &&
		    tls_io_pending(c->ssl) > 0)
			conn_read_input(c); /* delivers */
		else if (in_buffered(c) > 0)
			conn_deliver(c);
		mark_pending(c);
	}
}

static unsigned
idle_ms(const postern_conn_t *c)
{
	if (c->idle_ms != 0)
		return c->idle_ms;
	if (c->spec->limits.idle_ms != 0)
		return c->spec->limits.idle_ms;
	return CONN_IDLE_DEFAULT_MS;
}

static unsigned
conn_timer_check(postern_conn_t *c)
{
	uint64_t now = now_ms(), due;
	int close_it = 1;

	if (c->dead)
		return 0;
	if (c->closing) {
		due = c->last_activity + CONN_CLOSE_LINGER_MS;
		if (now < due)
			return (unsigned)(due - now);
		conn_log(c, POSTERN_LOG_INFO, "closing: peer read nothing "
		         "for %u ms, %zu bytes unsent", CONN_CLOSE_LINGER_MS,
		         c->out_len);
		conn_abort(c, c->why);
		return 0;
	}
	due = c->last_activity + idle_ms(c);
	if (now < due) {
		/* A quiet moment: give back a buffer grown by a burst. */
		if (in_buffered(c) == 0 && c->in_cap > CONN_IN_INITIAL) {
			c->in = xrealloc(c->in, CONN_IN_INITIAL);
			c->in_cap = CONN_IN_INITIAL;
			c->in_start = c->in_end = c->in_scan = 0;
		}
		return (unsigned)(due - now);
	}
	if (c->state == CS_CONNECTING) {
		conn_set_error(c, "connect", "timed out");
		conn_log(c, POSTERN_LOG_INFO, "connect: timed out");
		conn_abort(c, POSTERN_CLOSE_TIMEOUT);
		return 0;
	}
	if (c->state == CS_HANDSHAKE || c->state == CS_STARTTLS ||
	    c->ops == NULL) {
		conn_set_error(c, "TLS setup", "timed out");
		conn_log(c, POSTERN_LOG_INFO, "idle timeout during TLS setup");
		conn_abort(c, POSTERN_CLOSE_TIMEOUT);
		return 0;
	}
	/* Nothing went out for the idle timeout: a goodbye would only
	 * queue behind what the client does not read. */
	if (c->throttled || (c->write_blocked && c->out_len > 0)) {
		conn_log(c, POSTERN_LOG_NOTICE, "closing: the client read "
		         "nothing for %u ms, %zu octets of output unsent",
		         idle_ms(c), c->out_len);
		conn_abort(c, POSTERN_CLOSE_TIMEOUT);
		return 0;
	}
	if (c->ops->on_timeout != NULL)
		close_it = c->ops->on_timeout(c, c->arg);
	if (c->dead)
		return 0;
	if (!c->closing && close_it)
		conn_begin_close(c, POSTERN_CLOSE_TIMEOUT);
	if (c->closing)
		return CONN_CLOSE_LINGER_MS;
	c->last_activity = now;
	return idle_ms(c);
}

static unsigned
conn_timer(void *arg)
{
	postern_conn_t *c = arg;
	unsigned again;

	c->in_timer = 1;
	again = conn_timer_check(c);
	c->in_timer = 0;
	if (again == 0)
		c->timer = NULL; /* the loop frees it */
	return again;
}

/* ---- setup ------------------------------------------------------------ */

void
conn_init(struct loop *l)
{
	/* Made before the workers fork (listener_share_setup); a single
	 * process (tests) makes its own. */
	listener_share_setup();
	signal(SIGPIPE, SIG_IGN);
	cs.loop = l;
	/* Deferred calls scheduled on a previous loop died with it. */
	cs.ready_scheduled = 0;
	cs.dead_scheduled = 0;
	loop_set_before_wait(l, conn_before_wait, NULL);
}

void
conn_fini(void)
{
	conn_close_all();
	while (!TAILQ_EMPTY(&cs.lingers))
		linger_free(TAILQ_FIRST(&cs.lingers));
	listener_admit_reset();
	if (cs.loop != NULL && cs.loop == loop_current)
		loop_set_before_wait(cs.loop, NULL, NULL);
	cs.loop = NULL;
}

static void
peer_describe(postern_conn_t *c)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->peer;
	const struct sockaddr_in6 *sin6 =
		(const struct sockaddr_in6 *)&c->peer;
	const char *open = "", *close = "";

	switch (c->peer.ss_family) {
	case AF_INET:
		inet_ntop(AF_INET, &sin->sin_addr, c->peer_text,
		          sizeof(c->peer_text));
		c->peer_port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d;
		 * they are shown (and logged) as plain IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12],
			          c->peer_text, sizeof(c->peer_text));
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, c->peer_text,
			          sizeof(c->peer_text));
			open = "[";
			close = "]";
		}
		c->peer_port = ntohs(sin6->sin6_port);
		break;
	default:
		snprintf(c->peer_text, sizeof(c->peer_text), "unix");
		snprintf(c->log_prefix, sizeof(c->log_prefix),
		         "conn=%llu peer=unix", (unsigned long long)c->id);
		return;
	}
	snprintf(c->log_prefix, sizeof(c->log_prefix),
	         "conn=%llu peer=%s%s%s:%u", (unsigned long long)c->id, open,
	         c->peer_text, close, c->peer_port);
}

/* Socket options, peer address, limits.  -1 (logged) to refuse. */
static int
conn_setup_socket(postern_conn_t *c)
{
	int flags, one = 1;

	flags = fcntl(c->fd, F_GETFL);
	if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_error("listener %s: fcntl(fd %d, O_NONBLOCK): %s",
		          c->spec->name, c->fd, strerror(errno));
		return -1;
	}
	c->peer_len = sizeof(c->peer);
	if (getpeername(c->fd, (struct sockaddr *)&c->peer, &c->peer_len) < 0) {
		/* ENOTCONN: the client is already gone. */
		log_info("listener %s: getpeername(fd %d): %s", c->spec->name,
		         c->fd, strerror(errno));
		return -1;
	}
	peer_describe(c);
	c->local_port = socket_local_port(c->fd);
	/* Replies are batched here; Nagle would only delay them. */
	if (c->peer.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return listener_admit(c->spec, &c->peer, c->peer_text, c->peer_port,
	                      c->fd, &c->ticket);
}

postern_conn_t *
conn_accept(int fd, const struct postern_listen_spec *spec)
{
	postern_conn_t *c;

	if (cs.loop != loop_current)
		conn_init(loop_current);
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->spec = spec;
	c->id = cs.next_id++;
	if (conn_setup_socket(c) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	c->in_max = spec->limits.max_input ? spec->limits.max_input
	                                   : CONN_MAX_INPUT_DEFAULT;
	c->in_cap = c->in_max < CONN_IN_INITIAL ? c->in_max : CONN_IN_INITIAL;
	c->in = xmalloc(c->in_cap);
	c->pool = pool_create(CONN_POOL_BLOCK);
	c->last_activity = now_ms();
	c->watch_events = LOOP_READ;
	c->watch = loop_watch_add(loop_current, fd, LOOP_READ, conn_io, c);
	if (c->watch == NULL || (spec->tls != NULL &&
	                         conn_ssl_new(c, spec->tls) < 0)) {
		if (c->watch != NULL)
			loop_watch_remove(loop_current, c->watch);
		listener_leave(c->spec, c->ticket);
		close(fd);
		free(c->in);
		pool_destroy(c->pool);
		free(c);
		return NULL;
	}
	c->timer = loop_timer_add(loop_current, idle_ms(c), conn_timer, c);
	TAILQ_INSERT_TAIL(&cs.all, c, all_link);
	cs.count++;
	c->accepted_ms = c->last_activity;
	log_write(POSTERN_LOG_INFO, c->log_prefix, "connect to %s%s",
	          spec->name, spec->tls != NULL ? " (TLS)" : "");
	spec->ops->on_accept(c, spec->arg);
	if (c->ops == NULL && !c->dead) {
		conn_log(c, POSTERN_LOG_ERROR, "listener %s: on_accept did "
		         "not set the connection's ops; closing", spec->name);
		conn_abort(c, POSTERN_CLOSE_ERROR);
	}
	return c;
}

/* ---- the host functions ----------------------------------------------- */

void
conn_set_ops(postern_conn_t *c, const struct postern_conn_ops *ops,
             void *arg)
{
	c->ops = ops;
	c->arg = arg;
}

int
conn_read_line(postern_conn_t *c, size_t max, struct postern_line *line)
{
	const char *p, *lf;
	size_t have, n, len;
	unsigned flags;

	if (c->closing || c->dead)
		return POSTERN_CLOSED;
	if (c->throttled)
		return POSTERN_AGAIN; /* until the client reads its replies */
	if (c->skip_line && !skip_rest(c))
		return POSTERN_AGAIN;
	p = c->in + c->in_start;
	have = in_buffered(c);
	lf = memchr(p + c->in_scan, '\n', have - c->in_scan);
	if (lf == NULL) {
		c->in_scan = have;
		/* Too long already, or the buffer cannot take the rest:
		 * report once, drop the rest up to its LF. */
		if (have >= c->in_max || (have >= 2 && have - 2 >= max)) {
			c->skip_cr = p[have - 1] == '\r';
			in_drop(c, have);
			c->skip_line = 1;
			c->skip_end = 0;
			return POSTERN_TOOLONG;
		}
		return POSTERN_AGAIN;
	}
	n = (size_t)(lf - p);
	len = n;
	flags = POSTERN_LINE_BARE_LF;
	if (n > 0 && p[n - 1] == '\r') {
		len--;
		flags = POSTERN_LINE_CRLF;
	}
	in_drop(c, n + 1);
	if (len > max) {
		c->skip_end = flags;
		return POSTERN_TOOLONG;
	}
	if (memchr(p, '\0', len) != NULL)
		flags |= POSTERN_LINE_NUL;
	if (memchr(p, '\r', len) != NULL)
		flags |= POSTERN_LINE_BARE_CR;
	line->data = p;
	line->len = len;
	line->flags = flags;
	return POSTERN_OK;
}

int
conn_line_skipped(postern_conn_t *c, unsigned *end)
{
	if (c->closing || c->dead)
		return POSTERN_CLOSED;
	if (c->throttled || (c->skip_line && !skip_rest(c)))
		return POSTERN_AGAIN;
	*end = c->skip_end;
	return POSTERN_OK;
}

int
conn_peek(postern_conn_t *c, const void **data, size_t *len)
{
	if (c->closing || c->dead)
		return POSTERN_CLOSED;
	if (c->throttled)
		return POSTERN_AGAIN;
	/* The tail of an over-long line is nobody's data. */
	if (c->skip_line && !skip_rest(c))
		return POSTERN_AGAIN;
	if (in_buffered(c) == 0)
		return POSTERN_AGAIN;
	*data = c->in + c->in_start;
	*len = in_buffered(c);
	return POSTERN_OK;
}

void
conn_consume(postern_conn_t *c, size_t n)
{
	if (c->dead)
		return;
	if (n > in_buffered(c))
		n = in_buffered(c);
	in_drop(c, n);
}

int
conn_write(postern_conn_t *c, const void *data, size_t len)
{
	if (c->closing || c->dead)
		return POSTERN_CLOSED;
	if (len == 0)
		return POSTERN_OK;
	out_append(c, data, len);
	c->drain_due = 1;
	mark_pending(c);
	out_check_high(c);
	return POSTERN_OK;
}

int
conn_closing(postern_conn_t *c)
{
	return c->closing || c->dead;
}

struct postern_stream *
conn_stream(postern_conn_t *c)
{
	return c->stream;
}

void
conn_set_stream(postern_conn_t *c, struct postern_stream *st)
{
	c->stream = st;
}

int
conn_printf(postern_conn_t *c, const char *fmt, ...)
{
	char buf[1024], *p = buf;
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return POSTERN_ERROR;
	if ((size_t)n >= sizeof(buf)) {
		p = xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	r = conn_write(c, p, (size_t)n);
	if (p != buf)
		free(p);
	return r;
}

size_t
conn_output_pending(postern_conn_t *c)
{
	return c->out_len;
}

void
conn_pause(postern_conn_t *c)
{
	if (c->dead || c->paused)
		return;
	c->paused = 1;
	unmark_ready(c);
	mark_pending(c);
}

void
conn_resume(postern_conn_t *c)
{
	if (c->dead || !c->paused)
		return;
	c->paused = 0;
	if (!c->throttled && (in_buffered(c) > 0 ||
	                      (c->state == CS_TLS && tls_io_pending(c->ssl) > 0)))
		mark_ready(c);
	mark_pending(c);
}

/* Reads and drops what the client sent after STARTTLS and before our
 * go-ahead: it was sent in plaintext, so it must not be taken as
 * anything (CVE-2011-0411).  The go-ahead is not out yet, so a client
 * that follows the protocol cannot have sent its ClientHello. */
static void
starttls_drain(postern_conn_t *c)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	while (total < CONN_STARTTLS_DRAIN_MAX) {
		n = read(c->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	if (total > 0)
		conn_log(c, POSTERN_LOG_INFO, "STARTTLS: discarded %zu bytes "
		         "sent before the handshake", total);
}

int
conn_starttls(postern_conn_t *c, postern_tls_t *tls)
{
	if (c->closing || c->dead)
		return POSTERN_CLOSED;
	if (c->state != CS_PLAIN || tls == NULL)
		return POSTERN_ERROR;
	if (in_buffered(c) > 0)
		conn_log(c, POSTERN_LOG_INFO, "STARTTLS: discarded %zu "
		         "buffered bytes", in_buffered(c));
	in_discard_all(c);
	starttls_drain(c);
	/* Only what is queued now goes out in plaintext; anything written
	 * after this call waits for the handshake. */
	c->plain_left = c->out_len;
	c->starttls = tls;
	c->state = CS_STARTTLS;
	unmark_ready(c);
	mark_pending(c);
	return POSTERN_OK;
}

void
conn_close(postern_conn_t *c)
{
	conn_begin_close(c, POSTERN_CLOSE_LOCAL);
}

void
conn_set_idle(postern_conn_t *c, unsigned ms)
{
	uint64_t now = now_ms(), due;

	c->idle_ms = ms;
	if (c->dead || c->closing || c->in_timer || c->timer == NULL)
		return;
	due = c->last_activity + idle_ms(c);
	loop_timer_reset(loop_current, c->timer,
	                 due > now ? (unsigned)(due - now) : 0);
}

uint64_t
conn_id(postern_conn_t *c)
{
	return c->id;
}

void
conn_log_prefix(postern_conn_t *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c->log_prefix);
}

const char *
conn_peer(postern_conn_t *c)
{
	return c->peer_text;
}

unsigned
conn_peer_port(postern_conn_t *c)
{
	return c->peer_port;
}

int
conn_fd(postern_conn_t *c)
{
	return c->fd;
}

/* Asks the kernel: a paused connection's socket is not read, so the
 * peer's FIN would otherwise go unseen until the next write. */
int
conn_peer_gone(postern_conn_t *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };

	if (c->dead || c->read_eof || c->fd < 0)
		return 1;
	return poll(&p, 1, 0) > 0 &&
	       (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

const struct sockaddr *
conn_peer_addr(postern_conn_t *c, socklen_t *len)
{
	if (len != NULL)
		*len = c->peer_len;
	return (const struct sockaddr *)&c->peer;
}

int
conn_peer_is_loopback(postern_conn_t *c)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->peer;
	const struct sockaddr_in6 *sin6 =
		(const struct sockaddr_in6 *)&c->peer;

	switch (c->peer.ss_family) {
	case AF_UNIX:
		return 1;
	case AF_INET:
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	case AF_INET6:
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		       sin6->sin6_addr.s6_addr[12] == 127;
	default:
		return 0;
	}
}

unsigned
conn_local_port(postern_conn_t *c)
{
	return c->local_port;
}

const char *
conn_listener_name(postern_conn_t *c)
{
	return c->spec->name;
}

int
conn_tls_active(postern_conn_t *c)
{
	return c->state == CS_TLS && c->ssl != NULL;
}

int
conn_tls_info(postern_conn_t *c, struct postern_tls_info *info)
{
	if (!conn_tls_active(c))
		return POSTERN_ERROR;
	tls_io_info(c->ssl, info);
	return POSTERN_OK;
}

postern_pool_t *
conn_pool(postern_conn_t *c)
{
	return c->pool;
}

int
conn_junk_command(postern_conn_t *c)
{
	unsigned max = c->spec->limits.max_junk != 0
	                   ? c->spec->limits.max_junk
	                   : CONN_JUNK_DEFAULT;

	if (max == POSTERN_CONN_UNLIMITED)
		return POSTERN_OK;
	if (c->junk < max) {
		c->junk++;
		return POSTERN_OK;
	}
	conn_log(c, POSTERN_LOG_NOTICE, "%u commands that do nothing "
	         "(junk_command_limit): closing", c->junk + 1);
	return POSTERN_TOOLONG;
}

void
conn_junk_reset(postern_conn_t *c)
{
	c->junk = 0;
}

void
conn_set_output_high_water(size_t octets)
{
	cs.out_high = octets > 0 ? octets : CONN_OUT_HIGH_DEFAULT;
}

void
conn_log(postern_conn_t *c, int level, const char *fmt, ...)
{
	va_list ap;

	/* NULL: a caller acting for no connection (a CLI, a test). */
	va_start(ap, fmt);
	log_vwrite(level, c != NULL ? c->log_prefix : NULL, fmt, ap);
	va_end(ap);
}

/* ---- all connections -------------------------------------------------- */

size_t
conn_count(void)
{
	return cs.count;
}

void
conn_shutdown_all(void)
{
	postern_conn_t *c;

	TAILQ_FOREACH(c, &cs.all, all_link) {
		if (c->dead || c->shutdown_called || c->ops == NULL)
			continue;
		c->shutdown_called = 1;
		if (c->ops->on_shutdown != NULL)
			c->ops->on_shutdown(c, c->arg);
	}
}

void
conn_close_all(void)
{
	postern_conn_t *c;

	TAILQ_FOREACH(c, &cs.all, all_link)
		if (!c->dead)
			conn_abort(c, POSTERN_CLOSE_SHUTDOWN);
	conn_run_dead(NULL);
	while (!TAILQ_EMPTY(&cs.lingers))
		linger_free(TAILQ_FIRST(&cs.lingers));
}

/* ---- outbound connections (conn_connect, client STARTTLS) ------------- */

/* Every outbound connection shares this spec: it carries no limits (the
 * module that connects counts its own connections), so it is never
 * counted by listener_admit. */
static const struct postern_listen_spec conn_out_spec = {
	.size = sizeof(struct postern_listen_spec),
	.name = "outbound",
};

#define CONN_CONNECT_DEFAULT_MS 30000

static void
conn_set_error(postern_conn_t *c, const char *what, const char *reason)
{
	if (c->error != NULL)
		return; /* the first cause is the one worth telling */
	if (asprintf(&c->error, "%s: %s", what, reason) < 0)
		c->error = NULL;
}

/* The socket became writable: the connect finished, one way or the
 * other. */
static void
conn_connected(postern_conn_t *c)
{
	int soerr = 0, one = 1;
	socklen_t len = sizeof(soerr);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0) {
		conn_fail(c, "connect", strerror(soerr));
		return;
	}
	c->state = CS_PLAIN;
	c->idle_ms = c->connected_idle_ms;
	c->last_activity = now_ms();
	c->local_port = socket_local_port(c->fd);
	if (c->peer.ss_family != AF_UNIX)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_log(c, POSTERN_LOG_DEBUG, "connected");
	mark_pending(c); /* output queued while connecting */
}

/* Fills c->peer from a numeric address or a unix socket path. */
static int
conn_target(postern_conn_t *c, const struct postern_connect_spec *spec,
            char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->peer;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->peer;
	struct sockaddr_un *sun = (struct sockaddr_un *)&c->peer;
	const char *a = spec->address;

	memset(&c->peer, 0, sizeof(c->peer));
	if (a == NULL) {
		snprintf(err, errlen, "connect: no address");
		return -1;
	}
	if (a[0] == '/') {
		if (strlen(a) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "connect to %s: path too long",
			         a);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, a, strlen(a) + 1);
		c->peer_len = sizeof(*sun);
		return 0;
	}
	if (spec->port == 0 || spec->port > 65535) {
		snprintf(err, errlen, "connect to %s: bad port %u", a,
		         spec->port);
		return -1;
	}
	if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)spec->port);
		c->peer_len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)spec->port);
		c->peer_len = sizeof(*sin6);
		return 0;
	}
	snprintf(err, errlen, "connect to %s: not a numeric address", a);
	return -1;
}

postern_conn_t *
conn_connect(const struct postern_connect_spec *spec, char *err,
             size_t errlen)
{
	postern_conn_t *c;
	int r;

	if (cs.loop != loop_current)
		conn_init(loop_current);
	if (spec->ops == NULL) {
		snprintf(err, errlen, "connect: no connection callbacks");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	if (conn_target(c, spec, err, errlen) < 0) {
		free(c);
		return NULL;
	}
	c->spec = &conn_out_spec;
	c->id = cs.next_id++;
	peer_describe(c);
	c->fd = socket(c->peer.ss_family,
	               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "connect to %s: socket: %s",
		         spec->address, strerror(errno));
		free(c);
		return NULL;
	}
	r = connect(c->fd, (struct sockaddr *)&c->peer, c->peer_len);
	if (r < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect to %s: %s", spec->address,
		         strerror(errno));
		close(c->fd);
		free(c);
		return NULL;
	}
	c->state = CS_CONNECTING;
	c->ops = spec->ops;
	c->arg = spec->arg;
	c->in_max = spec->limits.max_input ? spec->limits.max_input
	                                   : CONN_MAX_INPUT_DEFAULT;
	c->in_cap = c->in_max < CONN_IN_INITIAL ? c->in_max : CONN_IN_INITIAL;
	c->in = xmalloc(c->in_cap);
	c->pool = pool_create(CONN_POOL_BLOCK);
	c->connected_idle_ms = spec->limits.idle_ms;
	c->idle_ms = spec->connect_ms ? spec->connect_ms
	                              : CONN_CONNECT_DEFAULT_MS;
	c->last_activity = now_ms();
	c->watch_events = LOOP_WRITE;
	c->watch = loop_watch_add(loop_current, c->fd, LOOP_WRITE, conn_io,
	                          c);
	if (c->watch == NULL) {
		snprintf(err, errlen, "connect to %s: cannot watch the socket",
		         spec->address);
		close(c->fd);
		free(c->in);
		pool_destroy(c->pool);
		free(c);
		return NULL;
	}
	c->timer = loop_timer_add(loop_current, c->idle_ms, conn_timer, c);
	TAILQ_INSERT_TAIL(&cs.all, c, all_link);
	cs.count++;
	return c;
}

int
conn_starttls_client(postern_conn_t *c, postern_tls_t *tls,
                     const char *verify_name)
{
	if (c->closing || c->dead)
		return POSTERN_CLOSED;
	if (c->spec != &conn_out_spec || c->state != CS_PLAIN || tls == NULL)
		return POSTERN_ERROR;
	/* Whatever arrived before the handshake came in plaintext. */
	in_discard_all(c);
	unmark_ready(c);
	if (conn_ssl_new(c, tls) < 0) {
		conn_abort(c, POSTERN_CLOSE_ERROR);
		return POSTERN_OK;
	}
	if (tls_io_client(c->ssl, verify_name) < 0) {
		conn_set_error(c, "TLS setup", "bad host name");
		conn_abort(c, POSTERN_CLOSE_ERROR);
		return POSTERN_OK;
	}
	conn_handshake(c);
	if (!c->dead)
		mark_pending(c);
	return POSTERN_OK;
}

const char *
conn_error(postern_conn_t *c)
{
	return c->error;
}
