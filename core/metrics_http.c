/*
 * metrics_http.c - the Prometheus endpoint (see metrics_http.h).
 */
#include "metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <netinet/in.h>

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "xalloc.h"

struct http_conn {
	int fd;
	struct loop_watch *watch;
	struct loop_timer *timer;
	char req[METRICS_HTTP_REQUEST_MAX];
	size_t len;
	char *out; /* the answer once the request is in */
	size_t outlen, sent;
	struct http_conn *prev, *next; /* oldest first */
};

static struct {
	struct loop *loop;
	int fd;
	struct loop_watch *watch;
	metrics_http_pids_fn pids;
	struct http_conn *head, *tail;
	unsigned nconns;
} srv = { .fd = -1 };

int
metrics_http_parse(const char *text, int allow_remote,
                   struct sockaddr_storage *ss, socklen_t *sslen, char *why,
                   size_t len)
{
	char host[64];
	const char *colon, *h = text;
	size_t hl;
	char *end;
	long port;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(text, ':');
	if (colon == NULL)
		goto bad;
	hl = (size_t)(colon - text);
	if (hl >= 2 && text[0] == '[' && text[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 ||
	    port > 65535)
		goto bad;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*sin);
		if (!allow_remote && (ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			goto remote;
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
		if (!allow_remote && !IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			goto remote;
	} else {
		goto bad;
	}
	return 0;
bad:
	snprintf(why, len, "'%s' is not ADDRESS:PORT (\"127.0.0.1:9105\", "
	         "\"[::1]:9105\")", text);
	return -1;
remote:
	snprintf(why, len, "'%s' is not a loopback address: the counters "
	         "tell who uses the server; set metrics_allow_remote to "
	         "serve them to the network", text);
	return -1;
}

/* ---- answers ---------------------------------------------------------- */

static int
reply(char **out, size_t *outlen, const char *status, const char *type,
      const char *body, size_t blen)
{
	char *head = xasprintf("HTTP/1.0 %s\r\nContent-Type: %s\r\n"
	                       "Content-Length: %zu\r\nConnection: close\r\n"
	                       "\r\n", status, type, blen);
	size_t hl = strlen(head);

	*out = malloc(hl + blen + 1); /* NUL-terminated, for the tests */
	if (*out == NULL) {
		free(head);
		return -1;
	}
	memcpy(*out, head, hl);
	memcpy(*out + hl, body, blen);
	(*out)[hl + blen] = '\0';
	*outlen = hl + blen;
	free(head);
	return 0;
}

static int
reply_text(char **out, size_t *outlen, const char *status, const char *text)
{
	return reply(out, outlen, status, "text/plain; charset=utf-8", text,
	             strlen(text));
}

int
metrics_http_answer(const char *req, size_t len, const pid_t *pids,
                    unsigned npids, char **out, size_t *outlen)
{
	const char *eol = memchr(req, '\n', len), *sp, *path, *pend;
	size_t plen;
	char *body = NULL;
	size_t blen = 0;
	int rc;

	if (eol == NULL || (sp = memchr(req, ' ', (size_t)(eol - req))) ==
	    NULL)
		return reply_text(out, outlen, "400 Bad Request",
		                  "bad request line\n");
	path = sp + 1;
	pend = memchr(path, ' ', (size_t)(eol - path));
	if (pend == NULL || strncmp(pend + 1, "HTTP/1.", 7) != 0)
		return reply_text(out, outlen, "400 Bad Request",
		                  "bad request line\n");
	plen = (size_t)(pend - path);
	if ((size_t)(sp - req) != 3 || memcmp(req, "GET", 3) != 0)
		return reply_text(out, outlen, "405 Method Not Allowed",
		                  "only GET\n");
	if (!(plen == 8 && memcmp(path, "/metrics", 8) == 0) &&
	    !(plen > 8 && memcmp(path, "/metrics?", 9) == 0))
		return reply_text(out, outlen, "404 Not Found",
		                  "the metrics are at /metrics\n");
	if (metrics_format(&body, &blen, pids, npids) < 0)
		return reply_text(out, outlen, "500 Internal Server Error",
		                  "out of memory\n");
	rc = reply(out, outlen, "200 OK", "text/plain; version=0.0.4; "
	           "charset=utf-8", body, blen);
	free(body);
	return rc;
}

/* ---- connections ------------------------------------------------------ */

static void
conn_close(struct http_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv.head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		srv.tail = c->prev;
	srv.nconns--;
	loop_watch_remove(srv.loop, c->watch);
	if (c->timer != NULL)
		loop_timer_cancel(srv.loop, c->timer);
	/* A worker forked meanwhile holds a copy of the fd: shut it down
	 * so that the client sees the end now. */
	shutdown(c->fd, SHUT_RDWR);
	close(c->fd);
	free(c->out);
	free(c);
}

static unsigned
conn_timeout(void *arg)
{
	struct http_conn *c = arg;

	c->timer = NULL;
	conn_close(c);
	return 0;
}

/* The end of the header block: a blank line (CRLF or a bare LF). */
static int
request_complete(const struct http_conn *c)
{
	size_t i;

	for (i = 1; i < c->len; i++)
		if (c->req[i] == '\n' && (c->req[i - 1] == '\n' ||
		    (i >= 2 && c->req[i - 1] == '\r' && c->req[i - 2] == '\n')))
			return 1;
	return 0;
}

static void
conn_write(struct http_conn *c)
{
	ssize_t n;

	while (c->sent < c->outlen) {
		n = write(c->fd, c->out + c->sent, c->outlen - c->sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			loop_watch_set(srv.loop, c->watch, LOOP_WRITE);
			return;
		}
		if (n <= 0)
			break;
		c->sent += (size_t)n;
	}
	conn_close(c);
}

static void
conn_answer(struct http_conn *c, int too_big)
{
	unsigned npids = 0;
	const pid_t *pids = srv.pids != NULL ? srv.pids(&npids) : NULL;
	int rc;

	if (too_big)
		rc = reply_text(&c->out, &c->outlen,
		                "431 Request Header Fields Too Large",
		                "request too large\n");
	else
		rc = metrics_http_answer(c->req, c->len, pids, npids, &c->out,
		                         &c->outlen);
	if (rc < 0) {
		conn_close(c);
		return;
	}
	shutdown(c->fd, SHUT_RD);
	conn_write(c);
}

static void
conn_event(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct http_conn *c = arg;
	ssize_t n;

	(void)w;
	if (c->out != NULL) {
		conn_write(c);
		return;
	}
	if (events & LOOP_ERROR) {
		conn_close(c);
		return;
	}
	n = read(fd, c->req + c->len, sizeof(c->req) - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	if (request_complete(c))
		conn_answer(c, 0);
	else if (c->len == sizeof(c->req))
		conn_answer(c, 1);
}

static void
accept_event(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct http_conn *c;
	int cfd;

	(void)w;
	(void)events;
	(void)arg;
	while ((cfd = accept4(fd, NULL, NULL,
	                      SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		/* The oldest goes: a scraper never waits behind idlers. */
		if (srv.nconns >= METRICS_HTTP_CONNS)
			conn_close(srv.head);
		c = xcalloc(1, sizeof(*c));
		c->fd = cfd;
		c->watch = loop_watch_add(srv.loop, cfd, LOOP_READ, conn_event,
		                          c);
		if (c->watch == NULL) {
			close(cfd);
			free(c);
			continue;
		}
		c->timer = loop_timer_add(srv.loop, METRICS_HTTP_TIMEOUT_MS,
		                          conn_timeout, c);
		c->prev = srv.tail;
		if (srv.tail != NULL)
			srv.tail->next = c;
		else
			srv.head = c;
		srv.tail = c;
		srv.nconns++;
	}
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		log_warning("metrics: accept: %s", strerror(errno));
}

int
metrics_http_start(struct loop *l, const char *text, int allow_remote,
                   metrics_http_pids_fn pids)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char why[256];
	int one = 1;

	if (metrics_http_parse(text, allow_remote, &ss, &sslen, why,
	                       sizeof(why)) < 0) {
		log_error("metrics_listen: %s", why);
		return -1;
	}
	srv.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	                SOCK_CLOEXEC, 0);
	if (srv.fd < 0 ||
	    setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one,
	               sizeof(one)) < 0 ||
	    bind(srv.fd, (struct sockaddr *)&ss, sslen) < 0 ||
	    listen(srv.fd, 16) < 0) {
		log_error("metrics_listen %s: %s", text, strerror(errno));
		metrics_http_stop();
		return -1;
	}
	srv.loop = l;
	srv.pids = pids;
	srv.watch = loop_watch_add(l, srv.fd, LOOP_READ, accept_event, NULL);
	if (srv.watch == NULL) {
		metrics_http_stop();
		return -1;
	}
	log_info("metrics: serving http://%s/metrics", text);
	return 0;
}

void
metrics_http_stop(void)
{
	while (srv.head != NULL)
		conn_close(srv.head);
	if (srv.watch != NULL)
		loop_watch_remove(srv.loop, srv.watch);
	srv.watch = NULL;
	if (srv.fd >= 0)
		close(srv.fd);
	srv.fd = -1;
}

void
metrics_http_forget(void)
{
	struct http_conn *c;

	while ((c = srv.head) != NULL) {
		srv.head = c->next;
		close(c->fd);
		free(c->out);
		free(c);
	}
	if (srv.fd >= 0)
		close(srv.fd);
	memset(&srv, 0, sizeof(srv));
	srv.fd = -1;
}

/* ---- the client ------------------------------------------------------- */

/* Waits for `events` on fd until `deadline` (loop_clock_ms); -1 at the
 * deadline. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	uint64_t now;
	int rc;

	for (;;) {
		now = loop_clock_ms();
		if (now >= deadline)
			return -1;
		rc = poll(&p, 1, (int)(deadline - now));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

static int
fetch_response(int fd, uint64_t deadline, char **resp, size_t *rlen)
{
	size_t cap = 65536;
	char *buf = xmalloc(cap);
	ssize_t n;

	*rlen = 0;
	for (;;) {
		if (*rlen + 1 == cap)
			buf = xrealloc(buf, cap *= 2);
		if (wait_fd(fd, POLLIN, deadline) < 0) {
			free(buf);
			return -1;
		}
		n = read(fd, buf + *rlen, cap - 1 - *rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		*rlen += (size_t)n;
	}
	buf[*rlen] = '\0';
	*resp = buf;
	return 0;
}

int
metrics_http_fetch(const char *text, unsigned timeout_ms, char **body,
                   char *why, size_t len)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	uint64_t deadline = loop_clock_ms() + timeout_ms;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char *resp = NULL, *start;
	size_t rlen;
	int fd;

	if (metrics_http_parse(text, 1, &ss, &sslen, why, len) < 0)
		return -1;
	errno = 0;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0 || ((connect(fd, (struct sockaddr *)&ss, sslen) < 0 &&
	    errno != EINPROGRESS)) || wait_fd(fd, POLLOUT, deadline) < 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1 ||
	    fetch_response(fd, deadline, &resp, &rlen) < 0) {
		snprintf(why, len, "http://%s/metrics: %s", text,
		         errno != 0 ? strerror(errno) : "timed out");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	start = strstr(resp, "\r\n\r\n");
	if (strncmp(resp, "HTTP/1.0 200 ", 13) != 0 || start == NULL) {
		snprintf(why, len, "http://%s/metrics: answered %.40s", text,
		         strtok(resp, "\r\n") != NULL ? resp : "nothing");
		free(resp);
		return -1;
	}
	*body = xstrdup(start + 4);
	free(resp);
	return 0;
}
