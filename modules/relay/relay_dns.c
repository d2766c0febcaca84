/*
 * relay_dns.c - c-ares on the host's event loop (see relay_dns.h).
 *
 * c-ares tells us through its socket-state callback which sockets to
 * watch and for what; the watches call ares_process_fd, and one timer
 * set from ares_timeout drives retransmissions and timeouts.  Answers
 * that c-ares produces while we are still inside relay_dns_mx or
 * relay_dns_addr (a bad name, a literal address) go to a ready list that
 * a zero-delay timer delivers, so a callback never runs inside the call
 * that started its lookup.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "relay_dns.h"

#define DNS_ERROR_MAX 256
#define DNS_MAX_ADDRS 64   /* per type: more is a hostile answer */

enum query_kind { Q_MX, Q_ADDR };

struct dns_watch {
	int fd;
	postern_watch_t *w;
};

struct relay_dns_query {
	struct relay_dns *d;
	enum query_kind kind;
	int remaining;        /* c-ares requests not yet answered */
	int cancelled;
	int delivered;
	struct relay_dns_query *ready_next;
	char *name;
	unsigned port;
	relay_dns_mx_fn mx_cb;
	relay_dns_addr_fn addr_cb;
	void *arg;

	enum relay_dns_status status;        /* MX */
	enum relay_dns_status st4, st6;      /* addresses, per type */
	struct relay_dns_mx *mx;
	size_t nmx;
	struct sockaddr_storage *addrs;
	size_t naddrs;
	size_t n6;            /* AAAA addresses at the front */
	char error[DNS_ERROR_MAX];
};

struct relay_dns {
	const struct postern_host *host;
	postern_module_t *m;
	ares_channel ch;
	unsigned families;
	struct dns_watch *watches;
	size_t nwatches, capwatches;
	postern_timer_t *timer;
	int in_timer;         /* inside the timer's callback */
	int in_loop;          /* inside a watch or timer callback */
	int submitting;       /* inside relay_dns_mx or relay_dns_addr */
	int destroying;
	postern_timer_t *ready_timer;
	struct relay_dns_query *ready, **ready_tail;
	size_t pending;
};

static void dns_arm(struct relay_dns *d);

const char *
relay_dns_status_name(enum relay_dns_status s)
{
	switch (s) {
	case RELAY_DNS_OK:
		return "ok";
	case RELAY_DNS_NULL_MX:
		return "null MX";
	case RELAY_DNS_NXDOMAIN:
		return "NXDOMAIN";
	case RELAY_DNS_NODATA:
		return "no data";
	case RELAY_DNS_TEMPFAIL:
		return "temporary failure";
	}
	return "?";
}

static enum relay_dns_status
ares_to_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return RELAY_DNS_OK;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		return RELAY_DNS_NXDOMAIN;
	case ARES_ENODATA:
		return RELAY_DNS_NODATA;
	default:
		return RELAY_DNS_TEMPFAIL;
	}
}

/* ---- sockets and the timer ------------------------------------------ */

static void
dns_watch_cb(postern_watch_t *w, int fd, unsigned events, void *arg)
{
	struct relay_dns *d = arg;
	ares_socket_t r = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;

	(void)w;
	if (events & (POSTERN_WATCH_READ | POSTERN_WATCH_ERROR))
		r = fd;
	if (events & POSTERN_WATCH_WRITE)
		wr = fd;
	d->in_loop++;
	ares_process_fd(d->ch, r, wr);
	d->in_loop--;
	dns_arm(d);
}

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct relay_dns *d = data;
	unsigned ev = (readable ? POSTERN_WATCH_READ : 0) |
	    (writable ? POSTERN_WATCH_WRITE : 0);
	struct dns_watch *v;
	size_t i, cap;

	for (i = 0; i < d->nwatches; i++)
		if (d->watches[i].fd == fd)
			break;
	if (i < d->nwatches) {
		if (ev == 0) {
			d->host->watch_remove(d->watches[i].w);
			d->watches[i] = d->watches[--d->nwatches];
		} else if (d->host->watch_set(d->watches[i].w, ev) < 0) {
			d->host->log(d->m, POSTERN_LOG_ERROR, "dns: cannot watch "
			    "socket %d: %s", fd, strerror(errno));
		}
		return;
	}
	if (ev == 0)
		return;
	if (d->nwatches == d->capwatches) {
		cap = d->capwatches > 0 ? d->capwatches * 2 : 8;
		if ((v = reallocarray(d->watches, cap, sizeof(*v))) == NULL)
			goto fail;
		d->watches = v;
		d->capwatches = cap;
	}
	d->watches[d->nwatches].fd = fd;
	d->watches[d->nwatches].w = d->host->watch_add(fd, ev, dns_watch_cb, d);
	if (d->watches[d->nwatches].w == NULL)
		goto fail;
	d->nwatches++;
	return;
fail:
	/* The query on this socket times out through the timer. */
	d->host->log(d->m, POSTERN_LOG_ERROR, "dns: cannot watch socket %d: %s",
	    fd, strerror(errno));
}

static unsigned
dns_timer_cb(void *arg)
{
	struct relay_dns *d = arg;
	struct timeval tv, *t;
	unsigned ms;

	d->in_timer = 1;
	d->in_loop++;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	d->in_loop--;
	d->in_timer = 0;
	if ((t = ares_timeout(d->ch, NULL, &tv)) == NULL) {
		d->timer = NULL;
		return 0;
	}
	ms = (unsigned)(t->tv_sec * 1000 + t->tv_usec / 1000);
	return ms > 0 ? ms : 1;
}

/* Sets the timer to c-ares's next deadline (none: no timer). */
static void
dns_arm(struct relay_dns *d)
{
	struct timeval tv, *t;
	unsigned ms;

	if (d->in_timer || d->destroying)
		return;  /* dns_timer_cb's return value re-arms it */
	if (d->timer != NULL) {
		d->host->timer_cancel(d->timer);
		d->timer = NULL;
	}
	if ((t = ares_timeout(d->ch, NULL, &tv)) == NULL)
		return;
	ms = (unsigned)(t->tv_sec * 1000 + t->tv_usec / 1000);
	d->timer = d->host->timer_add(ms > 0 ? ms : 1, dns_timer_cb, d);
}

/* ---- completion ------------------------------------------------------ */

static void
query_free(struct relay_dns_query *q)
{
	free(q->name);
	free(q->mx);
	free(q->addrs);
	free(q);
}

static void
query_deliver(struct relay_dns_query *q)
{
	struct relay_dns_mx_result mr;
	struct relay_dns_addr_result ar;

	q->delivered = 1;
	q->d->pending--;
	if (q->kind == Q_MX) {
		memset(&mr, 0, sizeof(mr));
		mr.status = q->status;
		mr.domain = q->name;
		mr.hosts = q->status == RELAY_DNS_OK ? q->mx : NULL;
		mr.nhosts = q->status == RELAY_DNS_OK ? q->nmx : 0;
		mr.error = q->status == RELAY_DNS_OK ? NULL : q->error;
		q->mx_cb(&mr, q->arg);
	} else {
		memset(&ar, 0, sizeof(ar));
		ar.status = q->status;
		ar.host = q->name;
		ar.addrs = q->status == RELAY_DNS_OK ? q->addrs : NULL;
		ar.naddrs = q->status == RELAY_DNS_OK ? q->naddrs : 0;
		ar.error = q->status == RELAY_DNS_OK ? NULL : q->error;
		q->addr_cb(&ar, q->arg);
	}
	query_free(q);
}

static unsigned
dns_ready_cb(void *arg)
{
	struct relay_dns *d = arg;
	struct relay_dns_query *q;

	d->ready_timer = NULL;
	while ((q = d->ready) != NULL) {
		if ((d->ready = q->ready_next) == NULL)
			d->ready_tail = &d->ready;
		if (q->cancelled)
			query_free(q);
		else
			query_deliver(q);
	}
	return 0;
}

/* Called when the last c-ares request of a query has answered. */
static void
query_done(struct relay_dns_query *q)
{
	struct relay_dns *d = q->d;

	if (q->cancelled || d->destroying) {
		if (!q->cancelled)
			d->pending--;
		query_free(q);
		return;
	}
	if (d->in_loop > 0 && d->submitting == 0) {
		query_deliver(q);
		return;
	}
	q->ready_next = NULL;
	*d->ready_tail = q;
	d->ready_tail = &q->ready_next;
	if (d->ready_timer == NULL)
		d->ready_timer = d->host->timer_add(0, dns_ready_cb, d);
}

/* ---- MX -------------------------------------------------------------- */

/* Lower-cases `s` and drops one trailing dot, into a malloc'd string. */
static char *
canon_name(const char *s)
{
	size_t len = strlen(s), i;
	char *c;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if ((c = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		c[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	c[len] = '\0';
	return c;
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct relay_dns_mx *x = a, *y = b;

	return x->preference < y->preference ? -1 :
	    x->preference > y->preference;
}

/* Sorts by preference, shuffles each run of equal preference (RFC 5321
 * section 5.1: the client MUST randomize them). */
static void
mx_order(struct relay_dns_mx *v, size_t n)
{
	struct relay_dns_mx t;
	size_t i, j, k;

	qsort(v, n, sizeof(*v), mx_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && v[j].preference == v[i].preference;
		    j++)
			;
		for (k = j - 1; k > i; k--) {
			size_t r = i + arc4random_uniform((uint32_t)(k - i + 1));

			t = v[k];
			v[k] = v[r];
			v[r] = t;
		}
	}
}

/* The MX records into q->mx: host strings are kept in one block after
 * the array.  Returns the status. */
static enum relay_dns_status
mx_collect(struct relay_dns_query *q, struct ares_mx_reply *list)
{
	struct ares_mx_reply *r;
	size_t n = 0, nnull = 0, strsz = 0, k;
	char *s;

	for (r = list; r != NULL; r = r->next) {
		if (r->host[0] == '\0' || strcmp(r->host, ".") == 0)
			nnull++;
		else
			strsz += strlen(r->host) + 1;
		n++;
	}
	if (nnull == 1 && n == 1) {
		snprintf(q->error, sizeof(q->error), "%s publishes a null MX "
		    "(RFC 7505): it accepts no mail", q->name);
		return RELAY_DNS_NULL_MX;
	}
	if (n == nnull) {
		snprintf(q->error, sizeof(q->error), "MX lookup of %s: only "
		    "null MX records", q->name);
		return RELAY_DNS_NULL_MX;
	}
	if ((q->mx = malloc(n * sizeof(*q->mx) + strsz)) == NULL) {
		snprintf(q->error, sizeof(q->error), "MX lookup of %s: %s",
		    q->name, strerror(ENOMEM));
		return RELAY_DNS_TEMPFAIL;
	}
	s = (char *)(q->mx + n);
	q->nmx = 0;
	for (r = list; r != NULL; r = r->next) {
		char *c;

		if (r->host[0] == '\0' || strcmp(r->host, ".") == 0)
			continue;
		if ((c = canon_name(r->host)) == NULL)
			continue;
		/* A host listed twice keeps its best preference. */
		for (k = 0; k < q->nmx; k++)
			if (strcmp(q->mx[k].host, c) == 0)
				break;
		if (k < q->nmx) {
			if (r->priority < q->mx[k].preference)
				q->mx[k].preference = r->priority;
			free(c);
			continue;
		}
		strcpy(s, c);
		free(c);
		q->mx[q->nmx].host = s;
		q->mx[q->nmx].preference = r->priority;
		q->mx[q->nmx].implicit = 0;
		s += strlen(s) + 1;
		q->nmx++;
	}
	if (q->nmx == 0) {
		snprintf(q->error, sizeof(q->error), "MX lookup of %s: no "
		    "usable host", q->name);
		return RELAY_DNS_TEMPFAIL;
	}
	mx_order(q->mx, q->nmx);
	return RELAY_DNS_OK;
}

static void
mx_implicit(struct relay_dns_query *q)
{
	if ((q->mx = calloc(1, sizeof(*q->mx))) == NULL) {
		q->status = RELAY_DNS_TEMPFAIL;
		snprintf(q->error, sizeof(q->error), "MX lookup of %s: %s",
		    q->name, strerror(ENOMEM));
		return;
	}
	q->mx[0].host = q->name;
	q->mx[0].preference = 0;
	q->mx[0].implicit = 1;
	q->nmx = 1;
	q->status = RELAY_DNS_OK;
}

static void
mx_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct relay_dns_query *q = arg;
	struct ares_mx_reply *list = NULL;
	int rc;

	(void)timeouts;
	q->remaining--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED ||
	    q->cancelled) {
		query_done(q);
		return;
	}
	if (status == ARES_SUCCESS) {
		rc = ares_parse_mx_reply(abuf, alen, &list);
		if (rc == ARES_SUCCESS) {
			q->status = mx_collect(q, list);
			ares_free_data(list);
		} else if (rc == ARES_ENODATA) {
			/* Only a CNAME chain: no MX. */
			mx_implicit(q);
		} else {
			q->status = RELAY_DNS_TEMPFAIL;
			snprintf(q->error, sizeof(q->error), "MX lookup of %s: "
			    "malformed answer (%s)", q->name,
			    ares_strerror(rc));
		}
	} else if (status == ARES_ENODATA) {
		/* The name exists without MX: RFC 5321 section 5.1. */
		mx_implicit(q);
	} else {
		q->status = ares_to_status(status);
		snprintf(q->error, sizeof(q->error), "MX lookup of %s: %s",
		    q->name, status == ARES_ENOTFOUND ? "NXDOMAIN (no such "
		    "domain)" : ares_strerror(status));
	}
	query_done(q);
}

static struct relay_dns_query *
query_new(struct relay_dns *d, enum query_kind kind, const char *name,
          void *arg)
{
	struct relay_dns_query *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->name = canon_name(name != NULL ? name : "")) == NULL) {
		free(q);
		return NULL;
	}
	q->d = d;
	q->kind = kind;
	q->arg = arg;
	d->pending++;
	return q;
}

/* A name c-ares can be asked about: 1-253 octets, labels of 1-63,
 * no control octets, spaces or backslashes (which c-ares would read as
 * escapes). */
static int
name_ok(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == 0x7f || c == '\\')
			return 0;
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (++label > 63) {
			return 0;
		}
	}
	return 1;
}

/* Answers a query from the ready list (never inside the call). */
static void
query_fail_soon(struct relay_dns_query *q, enum relay_dns_status st,
                const char *what)
{
	q->status = st;
	snprintf(q->error, sizeof(q->error), "%s lookup of '%s': %s",
	    q->kind == Q_MX ? "MX" : "address", q->name, what);
	query_done(q);
}

struct relay_dns_query *
relay_dns_mx(struct relay_dns *d, const char *domain, relay_dns_mx_fn cb,
             void *arg)
{
	struct relay_dns_query *q;

	if ((q = query_new(d, Q_MX, domain, arg)) == NULL)
		return NULL;
	q->mx_cb = cb;
	d->submitting++;
	if (!name_ok(q->name)) {
		query_fail_soon(q, RELAY_DNS_NXDOMAIN,
		    "not a valid domain name");
	} else {
		q->remaining = 1;
		/* ares_query, not ares_search: a recipient domain is fully
		 * qualified, the search list must not apply. */
		ares_query(d->ch, q->name, ns_c_in, ns_t_mx, mx_answer, q);
	}
	d->submitting--;
	dns_arm(d);
	return q;
}

/* ---- addresses ------------------------------------------------------- */

static int
addr_add(struct relay_dns_query *q, int family, const void *a)
{
	struct sockaddr_storage *v, ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	size_t i;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)q->port);
		memcpy(&s4->sin_addr, a, sizeof(s4->sin_addr));
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)q->port);
		memcpy(&s6->sin6_addr, a, sizeof(s6->sin6_addr));
	}
	for (i = 0; i < q->naddrs; i++)
		if (memcmp(&q->addrs[i], &ss, sizeof(ss)) == 0)
			return 0;
	if ((v = reallocarray(q->addrs, q->naddrs + 1, sizeof(*v))) == NULL)
		return -1;
	q->addrs = v;
	if (family == AF_INET6) {
		/* AAAA in front of every A, in their own order. */
		memmove(&v[q->n6 + 1], &v[q->n6],
		    (q->naddrs - q->n6) * sizeof(*v));
		v[q->n6++] = ss;
	} else {
		v[q->naddrs] = ss;
	}
	q->naddrs++;
	return 0;
}

static void
addr_finish(struct relay_dns_query *q)
{
	if (q->naddrs > 0) {
		q->status = RELAY_DNS_OK;
		return;
	}
	if (q->st4 == RELAY_DNS_TEMPFAIL || q->st6 == RELAY_DNS_TEMPFAIL)
		q->status = RELAY_DNS_TEMPFAIL;
	else if (q->st4 == RELAY_DNS_NXDOMAIN || q->st6 == RELAY_DNS_NXDOMAIN)
		q->status = RELAY_DNS_NXDOMAIN;
	else
		q->status = RELAY_DNS_NODATA;
	if (q->error[0] == '\0')
		snprintf(q->error, sizeof(q->error), "address lookup of %s: "
		    "%s", q->name, q->status == RELAY_DNS_NXDOMAIN ?
		    "NXDOMAIN (no such host)" : q->status == RELAY_DNS_NODATA ?
		    "no A or AAAA record" : "temporary failure");
}

static void
addr_answer(struct relay_dns_query *q, int family, int status,
            const unsigned char *abuf, int alen)
{
	struct ares_addrttl a4[DNS_MAX_ADDRS];
	struct ares_addr6ttl a6[DNS_MAX_ADDRS];
	enum relay_dns_status *st = family == AF_INET ? &q->st4 : &q->st6;
	int n = DNS_MAX_ADDRS, rc, i;

	q->remaining--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED ||
	    q->cancelled) {
		if (q->remaining == 0)
			query_done(q);
		return;
	}
	if (status == ARES_SUCCESS) {
		rc = family == AF_INET ?
		    ares_parse_a_reply(abuf, alen, NULL, a4, &n) :
		    ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
		status = rc;
	}
	*st = ares_to_status(status);
	if (status == ARES_SUCCESS) {
		for (i = 0; i < n; i++) {
			if (addr_add(q, family, family == AF_INET ?
			    (const void *)&a4[i].ipaddr :
			    (const void *)&a6[i].ip6addr) < 0) {
				*st = RELAY_DNS_TEMPFAIL;
				break;
			}
		}
	} else if (*st == RELAY_DNS_TEMPFAIL) {
		snprintf(q->error, sizeof(q->error), "%s lookup of %s: %s",
		    family == AF_INET ? "A" : "AAAA", q->name,
		    ares_strerror(status));
	}
	if (q->remaining == 0) {
		addr_finish(q);
		query_done(q);
	}
}

static void
a_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	addr_answer(arg, AF_INET, status, abuf, alen);
}

static void
aaaa_answer(void *arg, int status, int timeouts, unsigned char *abuf,
            int alen)
{
	(void)timeouts;
	addr_answer(arg, AF_INET6, status, abuf, alen);
}

static void addr_start(struct relay_dns *d, struct relay_dns_query *q);

struct relay_dns_query *
relay_dns_addr(struct relay_dns *d, const char *host, unsigned port,
               relay_dns_addr_fn cb, void *arg)
{
	struct relay_dns_query *q;

	if ((q = query_new(d, Q_ADDR, host, arg)) == NULL)
		return NULL;
	q->addr_cb = cb;
	q->port = port;
	q->st4 = q->st6 = RELAY_DNS_NODATA;
	d->submitting++;
	addr_start(d, q);
	d->submitting--;
	dns_arm(d);
	return q;
}

static void
addr_start(struct relay_dns *d, struct relay_dns_query *q)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, q->name, a) == 1 ||
	    inet_pton(AF_INET6, q->name, a) == 1) {
		if (addr_add(q, strchr(q->name, ':') != NULL ? AF_INET6 :
		    AF_INET, a) < 0) {
			query_fail_soon(q, RELAY_DNS_TEMPFAIL,
			    strerror(ENOMEM));
			return;
		}
		q->status = RELAY_DNS_OK;
		query_done(q);
		return;
	}
	if (!name_ok(q->name)) {
		query_fail_soon(q, RELAY_DNS_NXDOMAIN,
		    "not a valid host name");
		return;
	}
	/* Both requests are counted before either is sent: c-ares may
	 * answer the first at once. */
	q->remaining = ((d->families & RELAY_DNS_IPV6) != 0) +
	    ((d->families & RELAY_DNS_IPV4) != 0);
	if (d->families & RELAY_DNS_IPV6)
		ares_query(d->ch, q->name, ns_c_in, ns_t_aaaa, aaaa_answer, q);
	if (d->families & RELAY_DNS_IPV4)
		ares_query(d->ch, q->name, ns_c_in, ns_t_a, a_answer, q);
}

/* ---- the resolver ---------------------------------------------------- */

void
relay_dns_cancel(struct relay_dns_query *q)
{
	if (q == NULL || q->cancelled || q->delivered)
		return;
	q->cancelled = 1;
	q->d->pending--;
	/* Freed when its last c-ares request answers, or by the ready
	 * timer if it is on the ready list. */
}

size_t
relay_dns_pending(const struct relay_dns *d)
{
	return d->pending;
}

struct relay_dns *
relay_dns_create(const struct postern_host *host, postern_module_t *m,
                 const struct relay_dns_config *cfg, char *err,
                 size_t errlen)
{
	struct ares_options opts;
	struct relay_dns *d;
	int rc, mask;

	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "dns: %s", strerror(ENOMEM));
		ares_library_cleanup();
		return NULL;
	}
	d->host = host;
	d->m = m;
	d->ready_tail = &d->ready;
	d->families = cfg != NULL && cfg->families != 0 ? cfg->families :
	    RELAY_DNS_IPV4 | RELAY_DNS_IPV6;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = d;
	opts.timeout = cfg != NULL && cfg->timeout_ms != 0 ?
	    (int)cfg->timeout_ms : 2000;
	opts.tries = cfg != NULL && cfg->tries != 0 ? (int)cfg->tries : 3;
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	if ((rc = ares_init_options(&d->ch, &opts, mask)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: cannot set up the resolver (%s)",
		    ares_strerror(rc));
		goto fail;
	}
	if (cfg != NULL && cfg->servers != NULL &&
	    (rc = ares_set_servers_ports_csv(d->ch, cfg->servers)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "dns servers '%s': %s", cfg->servers,
		    rc == ARES_EBADSTR ? "not a list of address[:port]" :
		    ares_strerror(rc));
		ares_destroy(d->ch);
		goto fail;
	}
	return d;
fail:
	free(d);
	ares_library_cleanup();
	return NULL;
}

void
relay_dns_destroy(struct relay_dns *d)
{
	size_t i;

	if (d == NULL)
		return;
	d->destroying = 1;
	/* Every outstanding request answers ARES_EDESTRUCTION and its
	 * query is freed without a callback; sockets are closed, which
	 * removes their watches through dns_sock_state. */
	ares_destroy(d->ch);
	while (d->ready != NULL) {
		struct relay_dns_query *q = d->ready;

		d->ready = q->ready_next;
		query_free(q);
	}
	if (d->ready_timer != NULL)
		d->host->timer_cancel(d->ready_timer);
	if (d->timer != NULL)
		d->host->timer_cancel(d->timer);
	for (i = 0; i < d->nwatches; i++)
		d->host->watch_remove(d->watches[i].w);
	free(d->watches);
	free(d);
	ares_library_cleanup();
}
