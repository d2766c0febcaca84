/*
 * listener.c - listening sockets (see listener.h).
 *
 * Modules register listeners during init; each keeps a private copy of
 * its spec (strings duplicated) that outlives the module's own, and that
 * connections point to.  The master binds them all (or takes over the
 * sockets inherited across a reload); every worker watches each with
 * EPOLLEXCLUSIVE and accepts in bounded batches.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "shared_count.h"
#include "xalloc.h"

#define LISTEN_BACKLOG 511
/* Connections accepted per readiness event: enough to drain a burst,
 * few enough that one busy listener cannot starve established
 * connections. */
#define ACCEPT_BATCH 64
/* Out of file descriptors: stop accepting this long instead of spinning
 * on a listening socket that stays readable. */
#define ACCEPT_PAUSE_MS 100
/* max_conns when a listener does not say. */
#define MAX_CONNS_DEFAULT 1024

struct postern_listener {
	struct postern_listen_spec spec; /* private copy; strings below */
	char *owner;
	char *name;
	char *address;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int dual_stack; /* "*": [::] accepting IPv4 too */
	int fd;
	unsigned port; /* bound */
	struct loop *loop;
	struct loop_watch *watch;
	struct loop_timer *pause;
	unsigned index; /* in ls, the label of its metric */
	unsigned protocol; /* the label of its owner in `sessions` */
};

static struct {
	postern_listener_t **items;
	size_t n;
} ls;

static postern_metric_t *accepted;
static postern_metric_t *sessions;

/* Collects the distinct values of one label: the listener's name, or
 * its owner (the protocol module).  Sets each listener's index to its
 * value's; past the label's limit a value is not counted.  The count. */
static size_t
label_values(const char **names, int by_owner)
{
	size_t i, k, n = 0;
	const char *v;

	for (i = 0; i < ls.n; i++) {
		v = by_owner ? ls.items[i]->owner : ls.items[i]->name;
		for (k = 0; k < n; k++)
			if (strcmp(names[k], v) == 0)
				break;
		if (k == n && n < POSTERN_METRIC_LABELS_MAX)
			names[n++] = v;
		if (by_owner)
			ls.items[i]->protocol = (unsigned)k;
		else
			ls.items[i]->index = (unsigned)k;
	}
	names[n] = NULL;
	return n;
}

/* Connections accepted, labelled by listener name, and connections
 * open, by protocol: made once every module has added its listeners.
 * Listeners of one name (a module's unnamed ones take its name) share
 * a label value. */
void
listener_metrics_register(void)
{
	const char *names[POSTERN_METRIC_LABELS_MAX + 1];

	if (label_values(names, 0) == 0)
		return;
	accepted = metrics_register("core", "connections", "connections "
	                            "accepted, by listener",
	                            POSTERN_METRIC_COUNTER, "listener", names);
	label_values(names, 1);
	sessions = metrics_register("core", "sessions", "connections open "
	                            "now, by protocol (the listener's module)",
	                            POSTERN_METRIC_GAUGE, "protocol", names);
}

/* A connection of listener spec `spec` opened (+1) or closed (-1).
 * Specs that are no listener's are not counted. */
void
listener_sessions_add(const struct postern_listen_spec *spec, int delta)
{
	size_t i;

	for (i = 0; i < ls.n; i++)
		if (&ls.items[i]->spec == spec) {
			/* Unsigned wrap-around: the endpoint's sum is right. */
			metrics_add(sessions, ls.items[i]->protocol,
			            (uint64_t)(int64_t)delta);
			return;
		}
}

/* ---- registration ----------------------------------------------------- */

/* Fills l->addr from the address text and port; -1 if it is none of
 * "*", an IPv4 or IPv6 literal, or an absolute unix socket path. */
static int
listener_parse(postern_listener_t *l)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;
	struct sockaddr_un *sun = (struct sockaddr_un *)&l->addr;
	const char *a = l->address;

	memset(&l->addr, 0, sizeof(l->addr));
	if (a[0] == '/') {
		if (strlen(a) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, a, strlen(a) + 1);
		l->addr_len = sizeof(*sun);
		return 0;
	}
	if (l->spec.port > 65535)
		return -1;
	if (strcmp(a, "*") == 0) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)l->spec.port);
		l->addr_len = sizeof(*sin6);
		l->dual_stack = 1;
		return 0;
	}
	if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)l->spec.port);
		l->addr_len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)l->spec.port);
		l->addr_len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static void
listener_free(postern_listener_t *l)
{
	free(l->owner);
	free(l->name);
	free(l->address);
	free(l);
}

/* Copies `spec` as far as the module's struct reaches (an older module's
 * spec may be shorter; the rest stays zero, meaning defaults). */
static void
spec_copy(struct postern_listen_spec *dst,
          const struct postern_listen_spec *src)
{
	size_t n = src->size < sizeof(*dst) ? src->size : sizeof(*dst);
	size_t lim = offsetof(struct postern_listen_spec, limits);

	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, n);
	dst->size = sizeof(*dst);
	memset(&dst->limits, 0, sizeof(dst->limits));
	if (n >= lim + sizeof(dst->limits.size)) {
		size_t ln = src->limits.size < sizeof(dst->limits)
		                ? src->limits.size
		                : sizeof(dst->limits);
		if (n < lim + ln)
			ln = n - lim;
		memcpy(&dst->limits, &src->limits, ln);
	}
	dst->limits.size = sizeof(dst->limits);
}

postern_listener_t *
listener_add(const char *owner, const struct postern_listen_spec *spec)
{
	postern_listener_t *l;
	char key[sizeof(((struct inherited_fd *)0)->key)];
	size_t i;

	if (spec == NULL || spec->size < offsetof(struct postern_listen_spec,
	                                          arg) ||
	    spec->address == NULL || spec->ops == NULL ||
	    spec->ops->on_accept == NULL) {
		log_error("module %s: listener spec incomplete (size, "
		          "address and ops->on_accept are required)", owner);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	spec_copy(&l->spec, spec);
	l->owner = xstrdup(owner);
	l->name = xstrdup(spec->name != NULL ? spec->name : owner);
	l->address = xstrdup(spec->address);
	l->spec.name = l->name;
	l->spec.address = l->address;
	l->fd = -1;
	if (listener_parse(l) < 0) {
		log_error("module %s: listener %s: bad address '%s' port %u "
		          "(expected *, an IP address and a port up to 65535, "
		          "or a unix socket path starting with /)", owner,
		          l->name, l->address, spec->port);
		listener_free(l);
		return NULL;
	}
	/* Port 0 (tests) means any free port: never a clash. */
	snprintf(key, sizeof(key), "%s", listener_key(l));
	for (i = 0; i < ls.n && (l->spec.port != 0 || l->address[0] == '/');
	     i++) {
		if (strcmp(listener_key(ls.items[i]), key) == 0) {
			log_error("module %s: listener %s: address %s already "
			          "used by listener %s (module %s)", owner,
			          l->name, key, ls.items[i]->name,
			          ls.items[i]->owner);
			listener_free(l);
			return NULL;
		}
	}
	ls.items = xreallocarray(ls.items, ls.n + 1, sizeof(*ls.items));
	ls.items[ls.n++] = l;
	return l;
}

const char *
listener_key(const postern_listener_t *l)
{
	static char key[sizeof(((struct inherited_fd *)0)->key)];
	char host[INET6_ADDRSTRLEN];
	const struct sockaddr_in6 *sin6 =
		(const struct sockaddr_in6 *)&l->addr;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;

	switch (l->addr.ss_family) {
	case AF_UNIX:
		snprintf(key, sizeof(key), "unix:%s", l->address);
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(key, sizeof(key), "[%s]:%u", host, l->spec.port);
		break;
	default:
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(key, sizeof(key), "%s:%u", host, l->spec.port);
		break;
	}
	return key;
}

/* ---- binding (master) ------------------------------------------------- */

static int
set_fd_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	int fdfl = fcntl(fd, F_GETFD);

	if (fl < 0 || fdfl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

unsigned
socket_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* A socket file left by an earlier run would make bind fail; anything
 * else at that path is not ours to remove. */
static int
unlink_stale_socket(postern_listener_t *l)
{
	struct stat st;

	if (lstat(l->address, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	return unlink(l->address);
}

static int
listener_bind(postern_listener_t *l)
{
	int fd, one = 1, v6only = !l->dual_stack;
	const char *what;

	fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	                                   SOCK_CLOEXEC, 0);
	if (fd < 0) {
		what = "socket";
		goto fail;
	}
	what = "setsockopt";
	if (l->addr.ss_family == AF_UNIX) {
		if (unlink_stale_socket(l) < 0) {
			what = "remove stale socket";
			goto fail;
		}
	} else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	                      sizeof(one)) < 0) {
		goto fail;
	}
	if (l->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
	               sizeof(v6only)) < 0)
		goto fail;
	what = "bind";
	if (bind(fd, (struct sockaddr *)&l->addr, l->addr_len) < 0)
		goto fail;
	what = "listen";
	if (listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	l->fd = fd;
	l->port = socket_local_port(fd);
	return 0;
fail:
	log_error("listener %s (module %s): %s %s: %s", l->name, l->owner,
	          what, listener_key(l), strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Takes an inherited socket with this listener's key, if any. */
static int
listener_inherit(postern_listener_t *l, struct inherited_fd *inherited,
                 size_t n)
{
	const char *key = listener_key(l);
	size_t i;

	for (i = 0; i < n; i++) {
		if (inherited[i].used || strcmp(inherited[i].key, key) != 0)
			continue;
		if (set_fd_flags(inherited[i].fd) < 0) {
			log_error("listener %s: inherited fd %d for %s: %s",
			          l->name, inherited[i].fd, key,
			          strerror(errno));
			return -1;
		}
		inherited[i].used = 1;
		l->fd = inherited[i].fd;
		l->port = socket_local_port(l->fd);
		return 1;
	}
	return 0;
}

int
listener_bind_all(struct inherited_fd *inherited, size_t n)
{
	size_t i;
	int r;

	for (i = 0; i < ls.n; i++) {
		postern_listener_t *l = ls.items[i];

		if (l->fd >= 0)
			continue;
		r = listener_inherit(l, inherited, n);
		if (r < 0)
			return -1;
		if (r == 0 && listener_bind(l) < 0)
			return -1;
		log_debug("listener %s: %s on fd %d", l->name,
		          listener_key(l), l->fd);
	}
	return 0;
}

size_t
listener_count(void)
{
	return ls.n;
}

postern_listener_t *
listener_at(size_t i)
{
	return i < ls.n ? ls.items[i] : NULL;
}

int
listener_fd(const postern_listener_t *l)
{
	return l->fd;
}

unsigned
listener_port(const postern_listener_t *l)
{
	return l->port;
}

/* ---- accepting (workers) ---------------------------------------------- */

static void listener_on_ready(struct loop_watch *w, int fd,
                              unsigned events, void *arg);

static int
listener_watch(postern_listener_t *l)
{
	l->watch = loop_watch_add_exclusive(l->loop, l->fd, listener_on_ready,
	                                    l);
	if (l->watch == NULL) {
		log_error("listener %s: cannot watch fd %d for %s", l->name,
		          l->fd, listener_key(l));
		return -1;
	}
	return 0;
}

static unsigned
listener_unpause(void *arg)
{
	postern_listener_t *l = arg;

	if (listener_watch(l) < 0)
		return ACCEPT_PAUSE_MS; /* try again later */
	l->pause = NULL;
	return 0;
}

/* EPOLLEXCLUSIVE watches cannot be modified, only removed and added. */
static void
listener_pause(postern_listener_t *l, int err)
{
	log_warning("listener %s: accept on %s: %s; pausing for %u ms",
	            l->name, listener_key(l), strerror(err), ACCEPT_PAUSE_MS);
	loop_watch_remove(l->loop, l->watch);
	l->watch = NULL;
	l->pause = loop_timer_add(l->loop, ACCEPT_PAUSE_MS, listener_unpause,
	                          l);
}

static void
listener_on_ready(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	postern_listener_t *l = arg;
	int i, cfd;

	(void)w;
	(void)events;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd >= 0) {
			metrics_add(accepted, l->index, 1);
			conn_accept(cfd, &l->spec);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case EOPNOTSUPP:
		case ENETUNREACH:
			/* The client's problem (accept(2) passes on pending
			 * network errors): take the next one. */
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			listener_pause(l, errno);
			return;
		default:
			log_error("listener %s: accept on fd %d (%s): %s",
			          l->name, fd, listener_key(l),
			          strerror(errno));
			return;
		}
	}
}

int
listener_start_all(struct loop *lp)
{
	size_t i;

	for (i = 0; i < ls.n; i++) {
		postern_listener_t *l = ls.items[i];

		if (l->fd < 0 || l->watch != NULL || l->pause != NULL)
			continue;
		l->loop = lp;
		if (listener_watch(l) < 0)
			return -1;
	}
	return 0;
}

static void
listener_unwatch(postern_listener_t *l)
{
	if (l->loop == NULL)
		return;
	/* A loop already destroyed took its timers along; its watches are
	 * not ours to touch any more. */
	if (l->loop != loop_current) {
		l->watch = NULL;
		l->pause = NULL;
		l->loop = NULL;
		return;
	}
	loop_watch_remove(l->loop, l->watch);
	l->watch = NULL;
	if (l->pause != NULL)
		loop_timer_cancel(l->loop, l->pause);
	l->pause = NULL;
	l->loop = NULL;
}

void
listener_stop_all(struct loop *lp)
{
	size_t i;

	for (i = 0; i < ls.n; i++)
		if (ls.items[i]->loop == lp)
			listener_unwatch(ls.items[i]);
}

void
listener_reset(void)
{
	size_t i;

	for (i = 0; i < ls.n; i++) {
		postern_listener_t *l = ls.items[i];

		listener_unwatch(l);
		/* A unix socket's file stays: workers reset too, and the
		 * master may still be serving it. */
		if (l->fd >= 0)
			close(l->fd);
		listener_free(l);
	}
	free(ls.items);
	ls.items = NULL;
	ls.n = 0;
}

/* ---- admission: max_conns and max_per_ip ----------------------------- */

/* Connections open per listener spec in this worker. */
struct spec_count {
	const struct postern_listen_spec *spec;
	unsigned n;
};

static struct {
	struct postern_counts *per_ip; /* max_per_ip, over all workers */
	struct spec_count *specs;
	size_t nspecs;
} adm;

int
listener_share_setup(void)
{
	if (adm.per_ip == NULL)
		adm.per_ip = shared_count_create();
	return adm.per_ip != NULL ? 0 : -1;
}

static struct spec_count *
spec_count(const struct postern_listen_spec *spec)
{
	size_t i;

	for (i = 0; i < adm.nspecs; i++)
		if (adm.specs[i].spec == spec)
			return &adm.specs[i];
	adm.specs = xreallocarray(adm.specs, adm.nspecs + 1,
	                          sizeof(*adm.specs));
	adm.specs[adm.nspecs].spec = spec;
	adm.specs[adm.nspecs].n = 0;
	return &adm.specs[adm.nspecs++];
}

/* The address a client is counted under: IPv4-mapped IPv6 counts as the
 * IPv4 address, so a dual-stack listener cannot be used to double the
 * limit, and IPv6 counts by its /64 (one customer's network: whoever
 * has one has 2^64 addresses).  0 for unix sockets (not counted). */
static int
ip_key(const struct sockaddr_storage *peer, unsigned char addr[16])
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	memset(addr, 0, 16);
	switch (peer->ss_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)peer;
		memcpy(addr, &sin->sin_addr, 4);
		return AF_INET;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)peer;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(addr, &sin6->sin6_addr.s6_addr[12], 4);
			return AF_INET;
		}
		memcpy(addr, &sin6->sin6_addr, 8);
		return AF_INET6;
	default:
		return 0;
	}
}

/* Takes a place for `peer` under the listener's max_per_ip, counted over
 * every worker.  0, or -1 with *held (how many the address has) set. */
static int
ip_take(const struct postern_listen_spec *spec,
        const struct sockaddr_storage *peer, unsigned *ticket,
        unsigned *held)
{
	struct {
		const struct postern_listen_spec *spec;
		int family;
		unsigned char addr[16];
	} key;

	memset(&key, 0, sizeof(key));
	key.spec = spec;
	key.family = ip_key(peer, key.addr);
	if (key.family == 0 || adm.per_ip == NULL)
		return 0;
	return shared_count_take(adm.per_ip, &key, sizeof(key),
	                         spec->max_per_ip, ticket, held);
}

int
listener_admit(const struct postern_listen_spec *spec,
               const struct sockaddr_storage *peer, const char *peer_text,
               unsigned peer_port, int fd, unsigned *ticket)
{
	unsigned max = spec->max_conns ? spec->max_conns : MAX_CONNS_DEFAULT;
	struct spec_count *sc = spec_count(spec);
	unsigned held = 0;

	*ticket = 0;
	if (sc->n >= max) {
		log_notice("listener %s: %u connections (max_conns), "
		           "refusing %s port %u (fd %d)", spec->name, sc->n,
		           peer_text, peer_port, fd);
		return -1;
	}
	/* Addresses are only counted where a limit applies. */
	if (spec->max_per_ip > 0 && ip_take(spec, peer, ticket, &held) < 0) {
		log_notice("listener %s: %u connections from %s (max_per_ip, "
		           "all workers), refusing port %u (fd %d)", spec->name,
		           held, peer_text, peer_port, fd);
		return -1;
	}
	sc->n++;
	listener_sessions_add(spec, 1);
	return 0;
}

void
listener_leave(const struct postern_listen_spec *spec, unsigned ticket)
{
	struct spec_count *sc = spec_count(spec);

	if (sc->n > 0) {
		sc->n--;
		listener_sessions_add(spec, -1);
	}
	shared_count_put(adm.per_ip, ticket);
}

void
listener_admit_reset(void)
{
	free(adm.specs);
	adm.specs = NULL;
	adm.nspecs = 0;
}
