/*
 * dns.c - c-ares on the worker's event loop (see postern/dns.h, dns.h).
 *
 * c-ares tells us through its socket-state callback which sockets to
 * watch and for what; the watches call ares_process_fd, and one timer
 * set from ares_timeout drives retransmissions and timeouts.  Answers
 * known while we are still inside dns_lookup or dns_addr (a bad name, a
 * literal address) go to a ready list that a zero-delay timer delivers,
 * so a callback never runs inside the call that started its lookup.
 *
 * Memory: answers are bounded (POSTERN_DNS_MAX_RECORDS records of at most
 * POSTERN_DNS_MAX_TXT octets), so their copies come from xmalloc.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "xalloc.h"

#define DNS_ERROR_MAX 320

struct dns_watch {
	int fd;
	struct loop_watch *w;
};

struct postern_dns_query {
	struct resolver *r;
	postern_module_t *m;
	unsigned type;        /* asked; 0: addresses (A and AAAA) */
	int remaining;        /* c-ares requests not yet answered */
	int cancelled;
	int delivered;
	struct postern_dns_query *ready_next;
	char *name;
	unsigned port;
	postern_dns_fn cb;
	void *arg;

	enum postern_dns_status status;
	enum postern_dns_status st4, st6;    /* addresses, per type */
	struct postern_dns_record **recs;
	size_t nrecs;
	size_t n6;            /* addresses: AAAA records at the front */
	char error[DNS_ERROR_MAX];
};

struct resolver {
	struct loop *loop;
	ares_channel ch;
	struct dns_watch *watches;
	size_t nwatches, capwatches;
	struct loop_timer *timer;
	int in_timer;         /* inside the timer's callback */
	int in_loop;          /* inside a watch or timer callback */
	int submitting;       /* inside dns_lookup or dns_addr */
	int destroying;
	struct loop_timer *ready_timer;
	struct postern_dns_query *ready, **ready_tail;
	size_t pending;
};

static struct {
	char *servers;
	unsigned timeout_ms;
	unsigned tries;
	struct resolver *r;
	int failed_logged;
} dns;

static void dns_arm(struct resolver *r);

static const char *
type_name(unsigned type)
{
	switch (type) {
	case POSTERN_DNS_A:
		return "A";
	case POSTERN_DNS_AAAA:
		return "AAAA";
	case POSTERN_DNS_MX:
		return "MX";
	case POSTERN_DNS_TXT:
		return "TXT";
	case POSTERN_DNS_PTR:
		return "PTR";
	case 0:
		return "address";
	}
	return "?";
}

static enum postern_dns_status
ares_to_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return POSTERN_DNS_OK;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		return POSTERN_DNS_NXDOMAIN;
	case ARES_ENODATA:
		return POSTERN_DNS_NODATA;
	default:
		return POSTERN_DNS_TEMPFAIL;
	}
}

/* ---- sockets and the timer ------------------------------------------ */

static void
dns_watch_cb(struct loop_watch *w, int fd, unsigned events, void *arg)
{
	struct resolver *r = arg;
	ares_socket_t rd = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;

	(void)w;
	if (events & (LOOP_READ | LOOP_ERROR))
		rd = fd;
	if (events & LOOP_WRITE)
		wr = fd;
	r->in_loop++;
	ares_process_fd(r->ch, rd, wr);
	r->in_loop--;
	dns_arm(r);
}

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	unsigned ev = (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);
	size_t i, cap;

	for (i = 0; i < r->nwatches; i++)
		if (r->watches[i].fd == fd)
			break;
	if (i < r->nwatches) {
		if (ev == 0) {
			loop_watch_remove(r->loop, r->watches[i].w);
			r->watches[i] = r->watches[--r->nwatches];
		} else if (loop_watch_set(r->loop, r->watches[i].w, ev) < 0) {
			log_error("dns: cannot watch socket %d: %s", fd,
			          strerror(errno));
		}
		return;
	}
	if (ev == 0)
		return;
	if (r->nwatches == r->capwatches) {
		cap = r->capwatches > 0 ? r->capwatches * 2 : 8;
		r->watches = xreallocarray(r->watches, cap,
		                           sizeof(*r->watches));
		r->capwatches = cap;
	}
	r->watches[r->nwatches].fd = fd;
	r->watches[r->nwatches].w = loop_watch_add(r->loop, fd, ev,
	                                           dns_watch_cb, r);
	if (r->watches[r->nwatches].w == NULL) {
		/* The query on this socket times out through the timer. */
		log_error("dns: cannot watch socket %d: %s", fd,
		          strerror(errno));
		return;
	}
	r->nwatches++;
}

static unsigned
timeval_ms(const struct timeval *t)
{
	unsigned ms = (unsigned)(t->tv_sec * 1000 + t->tv_usec / 1000);

	return ms > 0 ? ms : 1;
}

static unsigned
dns_timer_cb(void *arg)
{
	struct resolver *r = arg;
	struct timeval tv, *t;

	r->in_timer = 1;
	r->in_loop++;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	r->in_loop--;
	r->in_timer = 0;
	if ((t = ares_timeout(r->ch, NULL, &tv)) == NULL) {
		r->timer = NULL;
		return 0;
	}
	return timeval_ms(t);
}

/* Sets the timer to c-ares's next deadline (none: no timer). */
static void
dns_arm(struct resolver *r)
{
	struct timeval tv, *t;

	if (r->in_timer || r->destroying)
		return;  /* dns_timer_cb's return value re-arms it */
	if (r->timer != NULL) {
		loop_timer_cancel(r->loop, r->timer);
		r->timer = NULL;
	}
	if ((t = ares_timeout(r->ch, NULL, &tv)) != NULL)
		r->timer = loop_timer_add(r->loop, timeval_ms(t),
		                          dns_timer_cb, r);
}

/* ---- records --------------------------------------------------------- */

static void
query_free(struct postern_dns_query *q)
{
	size_t i;

	for (i = 0; i < q->nrecs; i++) {
		free((char *)q->recs[i]->name);
		free((char *)q->recs[i]->text);
		free(q->recs[i]);
	}
	free(q->recs);
	free(q->name);
	free(q);
}

/* Lower-cases `s[0..len)` and drops one trailing dot, into a new string. */
static char *
canon_name(const char *s, size_t len)
{
	size_t i;
	char *c;

	if (len > 0 && s[len - 1] == '.')
		len--;
	c = xmalloc(len + 1);
	for (i = 0; i < len; i++)
		c[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	c[len] = '\0';
	return c;
}

/* Adds a record at position `at` (the end: q->nrecs).  0, or -1 when
 * the answer already holds as many as are kept. */
static int
rec_insert(struct postern_dns_query *q, size_t at,
           struct postern_dns_record *rec)
{
	if (q->nrecs >= POSTERN_DNS_MAX_RECORDS) {
		free((char *)rec->name);
		free((char *)rec->text);
		free(rec);
		return -1;
	}
	q->recs = xreallocarray(q->recs, q->nrecs + 1, sizeof(*q->recs));
	memmove(&q->recs[at + 1], &q->recs[at],
	        (q->nrecs - at) * sizeof(*q->recs));
	q->recs[at] = rec;
	q->nrecs++;
	return 0;
}

static struct postern_dns_record *
rec_new(unsigned type)
{
	struct postern_dns_record *rec = xcalloc(1, sizeof(*rec));

	rec->type = type;
	return rec;
}

/* A name record (PTR, MX); one already there is not added twice (an MX
 * keeps its best preference). */
static void
rec_add_name(struct postern_dns_query *q, unsigned type, const char *name,
             unsigned preference)
{
	struct postern_dns_record *rec;
	char *c = canon_name(name, strlen(name));
	size_t i;

	for (i = 0; i < q->nrecs; i++) {
		if (strcmp(q->recs[i]->name, c) == 0) {
			if (preference < q->recs[i]->preference)
				q->recs[i]->preference = preference;
			free(c);
			return;
		}
	}
	rec = rec_new(type);
	rec->name = c;
	rec->preference = preference;
	(void)rec_insert(q, q->nrecs, rec);
}

/* An address record; AAAA ones go in front of every A (RFC 6724's
 * default preference), each type in the server's order. */
static void
rec_add_addr(struct postern_dns_query *q, int family, const void *a)
{
	struct postern_dns_record *rec;
	struct sockaddr_storage ss;
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
	for (i = 0; i < q->nrecs; i++)
		if (memcmp(&q->recs[i]->addr, &ss, sizeof(ss)) == 0)
			return;
	rec = rec_new(family == AF_INET ? POSTERN_DNS_A : POSTERN_DNS_AAAA);
	rec->addr = ss;
	if (family == AF_INET6) {
		if (rec_insert(q, q->n6, rec) == 0)
			q->n6++;
	} else {
		(void)rec_insert(q, q->nrecs, rec);
	}
}

/* ---- completion ------------------------------------------------------ */

static void
query_deliver(struct postern_dns_query *q)
{
	struct postern_dns_result res;
	int ok = q->status == POSTERN_DNS_OK;

	q->delivered = 1;
	q->r->pending--;
	memset(&res, 0, sizeof(res));
	res.status = q->status;
	res.name = q->name;
	res.type = q->type;
	res.records = ok ? (const struct postern_dns_record *const *)q->recs
	                 : NULL;
	res.nrecords = ok ? q->nrecs : 0;
	res.error = ok ? NULL : q->error;
	q->cb(&res, q->arg);
	query_free(q);
}

static unsigned
dns_ready_cb(void *arg)
{
	struct resolver *r = arg;
	struct postern_dns_query *q;

	r->ready_timer = NULL;
	while ((q = r->ready) != NULL) {
		if ((r->ready = q->ready_next) == NULL)
			r->ready_tail = &r->ready;
		if (q->cancelled)
			query_free(q);
		else
			query_deliver(q);
	}
	return 0;
}

/* Called when the last c-ares request of a query has answered. */
static void
query_done(struct postern_dns_query *q)
{
	struct resolver *r = q->r;

	if (q->status != POSTERN_DNS_OK && q->error[0] == '\0')
		snprintf(q->error, sizeof(q->error), "%s lookup of %s: %s",
		         type_name(q->type), q->name,
		         q->status == POSTERN_DNS_NXDOMAIN ? "NXDOMAIN (no "
		         "such name)" : q->status == POSTERN_DNS_NODATA ?
		         "no such record" : q->status == POSTERN_DNS_NULL_MX ?
		         "null MX" : "temporary failure");
	if (q->cancelled || r->destroying) {
		if (!q->cancelled)
			r->pending--;
		query_free(q);
		return;
	}
	if (r->in_loop > 0 && r->submitting == 0) {
		query_deliver(q);
		return;
	}
	q->ready_next = NULL;
	*r->ready_tail = q;
	r->ready_tail = &q->ready_next;
	if (r->ready_timer == NULL)
		r->ready_timer = loop_timer_add(r->loop, 0, dns_ready_cb, r);
}

/* Answers a query from the ready list (never inside the call). */
static void
query_fail_soon(struct postern_dns_query *q, enum postern_dns_status st,
                const char *what)
{
	q->status = st;
	snprintf(q->error, sizeof(q->error), "%s lookup of '%s': %s",
	         type_name(q->type), q->name, what);
	query_done(q);
}

/* A request's own end: c-ares gave up on it (the resolver is going, or
 * the query was cancelled). */
static int
request_dropped(struct postern_dns_query *q, int status)
{
	return status == ARES_EDESTRUCTION || status == ARES_ECANCELLED ||
	       q->cancelled;
}

static void
answer_failed(struct postern_dns_query *q, int status)
{
	q->status = ares_to_status(status);
	snprintf(q->error, sizeof(q->error), "%s lookup of %s: %s",
	         type_name(q->type), q->name, status == ARES_ENOTFOUND ?
	         "NXDOMAIN (no such name)" : status == ARES_ENODATA ?
	         "no such record" : ares_strerror(status));
}

/* ---- MX -------------------------------------------------------------- */

static int
mx_cmp(const void *a, const void *b)
{
	const struct postern_dns_record *x = *(const void *const *)a;
	const struct postern_dns_record *y = *(const void *const *)b;

	return x->preference < y->preference ? -1 :
	       x->preference > y->preference;
}

/* Sorts by preference, shuffles each run of equal preference (RFC 5321
 * section 5.1: the client MUST randomize them). */
static void
mx_order(struct postern_dns_record **v, size_t n)
{
	struct postern_dns_record *t;
	size_t i, j, k;

	qsort(v, n, sizeof(*v), mx_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && v[j]->preference == v[i]->preference;
		     j++)
			;
		for (k = j - 1; k > i; k--) {
			size_t s = i + arc4random_uniform((uint32_t)(k - i + 1));

			t = v[k];
			v[k] = v[s];
			v[s] = t;
		}
	}
}

static void
mx_parse(struct postern_dns_query *q, const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *list = NULL, *mx;
	size_t nnull = 0, n = 0;
	int rc;

	if ((rc = ares_parse_mx_reply(abuf, alen, &list)) != ARES_SUCCESS) {
		/* ENODATA: a CNAME chain without MX. */
		if (rc == ARES_ENODATA)
			q->status = POSTERN_DNS_NODATA;
		else
			snprintf(q->error, sizeof(q->error), "MX lookup of "
			         "%s: malformed answer (%s)", q->name,
			         ares_strerror(rc));
		return;
	}
	for (mx = list; mx != NULL; mx = mx->next, n++) {
		if (mx->host[0] == '\0' || strcmp(mx->host, ".") == 0)
			nnull++;
		else
			rec_add_name(q, POSTERN_DNS_MX, mx->host,
			             mx->priority);
	}
	ares_free_data(list);
	if (n > 0 && nnull == n) {
		q->status = POSTERN_DNS_NULL_MX;
		snprintf(q->error, sizeof(q->error), "%s publishes a null MX "
		         "(RFC 7505): it accepts no mail", q->name);
		return;
	}
	if (q->nrecs == 0)
		return;
	mx_order(q->recs, q->nrecs);
	q->status = POSTERN_DNS_OK;
}

/* ---- TXT and PTR ----------------------------------------------------- */

/* Each record's strings joined; a record longer than POSTERN_DNS_MAX_TXT
 * is marked (len SIZE_MAX) and dropped whole, as are duplicates. */
static void
txt_parse(struct postern_dns_query *q, const unsigned char *abuf, int alen)
{
	struct ares_txt_ext *list = NULL, *t;
	struct postern_dns_record *cur = NULL;
	size_t i;
	int rc;

	if ((rc = ares_parse_txt_reply_ext(abuf, alen, &list)) !=
	    ARES_SUCCESS) {
		snprintf(q->error, sizeof(q->error), "TXT lookup of %s: "
		         "malformed answer (%s)", q->name, ares_strerror(rc));
		return;
	}
	for (t = list; t != NULL; t = t->next) {
		if (t->record_start || cur == NULL) {
			if (cur != NULL && rec_insert(q, q->nrecs, cur) < 0) {
				cur = NULL;   /* freed: the answer is full */
				break;
			}
			cur = rec_new(POSTERN_DNS_TXT);
			cur->text = xcalloc(1, 1);
		}
		if (cur->len == SIZE_MAX)
			continue;
		if (cur->len + t->length > POSTERN_DNS_MAX_TXT) {
			cur->len = SIZE_MAX;  /* too long: dropped below */
			continue;
		}
		cur->text = xrealloc((char *)cur->text,
		                     cur->len + t->length + 1);
		memcpy((char *)cur->text + cur->len, t->txt, t->length);
		cur->len += t->length;
		((char *)cur->text)[cur->len] = '\0';
	}
	if (cur != NULL)
		(void)rec_insert(q, q->nrecs, cur);
	ares_free_data(list);
	/* Records that were too long leave, and so do exact duplicates. */
	for (i = 0; i < q->nrecs;) {
		struct postern_dns_record *rec = q->recs[i];
		size_t j;
		int dup = 0;

		for (j = 0; j < i && rec->len != SIZE_MAX; j++)
			if (q->recs[j]->len == rec->len &&
			    memcmp(q->recs[j]->text, rec->text, rec->len) == 0)
				dup = 1;
		if (rec->len != SIZE_MAX && !dup) {
			i++;
			continue;
		}
		free((char *)rec->text);
		free(rec);
		memmove(&q->recs[i], &q->recs[i + 1],
		        (q->nrecs - i - 1) * sizeof(*q->recs));
		q->nrecs--;
	}
	q->status = q->nrecs > 0 ? POSTERN_DNS_OK : POSTERN_DNS_NODATA;
}

static void
ptr_parse(struct postern_dns_query *q, const unsigned char *abuf, int alen)
{
	struct in6_addr any;
	struct hostent *he = NULL;
	int rc, i;

	memset(&any, 0, sizeof(any));
	rc = ares_parse_ptr_reply(abuf, alen, &any, sizeof(any), AF_INET6,
	                          &he);
	if (rc != ARES_SUCCESS) {
		if (rc == ARES_ENODATA)
			q->status = POSTERN_DNS_NODATA;
		else
			snprintf(q->error, sizeof(q->error), "PTR lookup of "
			         "%s: malformed answer (%s)", q->name,
			         ares_strerror(rc));
		return;
	}
	/* c-ares puts every PTR name among the aliases. */
	for (i = 0; he->h_aliases != NULL && he->h_aliases[i] != NULL; i++)
		rec_add_name(q, POSTERN_DNS_PTR, he->h_aliases[i], 0);
	if (q->nrecs == 0 && he->h_name != NULL)
		rec_add_name(q, POSTERN_DNS_PTR, he->h_name, 0);
	ares_free_hostent(he);
	q->status = q->nrecs > 0 ? POSTERN_DNS_OK : POSTERN_DNS_NODATA;
}

/* A and AAAA asked alone (dns_lookup), as records without a port. */
static void
addrs_parse(struct postern_dns_query *q, int family,
            const unsigned char *abuf, int alen)
{
	struct ares_addrttl a4[POSTERN_DNS_MAX_RECORDS];
	struct ares_addr6ttl a6[POSTERN_DNS_MAX_RECORDS];
	int n = POSTERN_DNS_MAX_RECORDS, rc, i;

	rc = family == AF_INET ? ares_parse_a_reply(abuf, alen, NULL, a4, &n)
	                       : ares_parse_aaaa_reply(abuf, alen, NULL, a6,
	                                               &n);
	if (rc != ARES_SUCCESS) {
		answer_failed(q, rc);
		return;
	}
	for (i = 0; i < n; i++)
		rec_add_addr(q, family, family == AF_INET ?
		             (const void *)&a4[i].ipaddr :
		             (const void *)&a6[i].ip6addr);
	q->status = q->nrecs > 0 ? POSTERN_DNS_OK : POSTERN_DNS_NODATA;
}

static void
lookup_answer(void *arg, int status, int timeouts, unsigned char *abuf,
              int alen)
{
	struct postern_dns_query *q = arg;

	(void)timeouts;
	q->remaining--;
	if (request_dropped(q, status)) {
		query_done(q);
		return;
	}
	q->status = POSTERN_DNS_TEMPFAIL;   /* until a parser says more */
	if (status != ARES_SUCCESS)
		answer_failed(q, status);
	else if (q->type == POSTERN_DNS_MX)
		mx_parse(q, abuf, alen);
	else if (q->type == POSTERN_DNS_TXT)
		txt_parse(q, abuf, alen);
	else if (q->type == POSTERN_DNS_PTR)
		ptr_parse(q, abuf, alen);
	else
		addrs_parse(q, q->type == POSTERN_DNS_A ? AF_INET : AF_INET6,
		            abuf, alen);
	query_done(q);
}

/* ---- starting lookups ------------------------------------------------ */

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

/* "192.0.2.1" -> "1.2.0.192.in-addr.arpa", an IPv6 address -> its 32
 * nibbles under ip6.arpa (RFC 3596).  NULL when not an address. */
static char *
reverse_name(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];
	char buf[80], *p = buf;
	int i;

	if (inet_pton(AF_INET, s, a) == 1) {
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u.in-addr.arpa", a[3],
		         a[2], a[1], a[0]);
		return xstrdup(buf);
	}
	if (inet_pton(AF_INET6, s, a) != 1)
		return NULL;
	for (i = 15; i >= 0; i--) {
		*p++ = "0123456789abcdef"[a[i] & 0xf];
		*p++ = '.';
		*p++ = "0123456789abcdef"[a[i] >> 4];
		*p++ = '.';
	}
	strcpy(p, "ip6.arpa");
	return xstrdup(buf);
}

static struct resolver *resolver_get(postern_module_t *m);

static struct postern_dns_query *
query_new(postern_module_t *m, unsigned type, const char *name,
          postern_dns_fn cb, void *arg)
{
	struct postern_dns_query *q;
	struct resolver *r;

	if ((r = resolver_get(m)) == NULL)
		return NULL;
	if (name == NULL)
		name = "";
	q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->m = m;
	q->type = type;
	q->name = canon_name(name, strlen(name));
	q->cb = cb;
	q->arg = arg;
	q->status = POSTERN_DNS_TEMPFAIL;
	r->pending++;
	return q;
}

postern_dns_query_t *
dns_lookup(postern_module_t *m, const char *name, unsigned type,
           postern_dns_fn cb, void *arg)
{
	struct postern_dns_query *q;
	struct resolver *r;
	char *rev;

	if ((q = query_new(m, type, name, cb, arg)) == NULL)
		return NULL;
	r = q->r;
	r->submitting++;
	if (type == POSTERN_DNS_PTR && (rev = reverse_name(q->name)) != NULL) {
		free(q->name);
		q->name = rev;
	}
	if (type != POSTERN_DNS_A && type != POSTERN_DNS_AAAA &&
	    type != POSTERN_DNS_MX && type != POSTERN_DNS_TXT &&
	    type != POSTERN_DNS_PTR) {
		query_fail_soon(q, POSTERN_DNS_TEMPFAIL, "record type not "
		                "supported");
	} else if (!name_ok(q->name)) {
		query_fail_soon(q, POSTERN_DNS_NXDOMAIN, "not a valid domain "
		                "name");
	} else {
		q->remaining = 1;
		/* ares_query, not ares_search: names are fully qualified,
		 * the search list must not apply. */
		ares_query(r->ch, q->name, ns_c_in, (int)type, lookup_answer,
		           q);
	}
	r->submitting--;
	dns_arm(r);
	return q;
}

/* ---- addresses of a host (A and AAAA) -------------------------------- */

static void
addr_finish(struct postern_dns_query *q)
{
	if (q->nrecs > 0) {
		q->status = POSTERN_DNS_OK;
		return;
	}
	if (q->st4 == POSTERN_DNS_TEMPFAIL || q->st6 == POSTERN_DNS_TEMPFAIL)
		q->status = POSTERN_DNS_TEMPFAIL;
	else if (q->st4 == POSTERN_DNS_NXDOMAIN ||
	         q->st6 == POSTERN_DNS_NXDOMAIN)
		q->status = POSTERN_DNS_NXDOMAIN;
	else
		q->status = POSTERN_DNS_NODATA;
	if (q->error[0] == '\0')
		snprintf(q->error, sizeof(q->error), "address lookup of %s: "
		         "%s", q->name, q->status == POSTERN_DNS_NXDOMAIN ?
		         "NXDOMAIN (no such host)" : q->status ==
		         POSTERN_DNS_NODATA ? "no A or AAAA record" :
		         "temporary failure");
}

static void
addr_answer(struct postern_dns_query *q, int family, int status,
            const unsigned char *abuf, int alen)
{
	struct ares_addrttl a4[POSTERN_DNS_MAX_RECORDS];
	struct ares_addr6ttl a6[POSTERN_DNS_MAX_RECORDS];
	enum postern_dns_status *st = family == AF_INET ? &q->st4 : &q->st6;
	int n = POSTERN_DNS_MAX_RECORDS, i;

	q->remaining--;
	if (request_dropped(q, status)) {
		if (q->remaining == 0)
			query_done(q);
		return;
	}
	if (status == ARES_SUCCESS)
		status = family == AF_INET ?
		    ares_parse_a_reply(abuf, alen, NULL, a4, &n) :
		    ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
	*st = ares_to_status(status);
	if (status == ARES_SUCCESS) {
		for (i = 0; i < n; i++)
			rec_add_addr(q, family, family == AF_INET ?
			             (const void *)&a4[i].ipaddr :
			             (const void *)&a6[i].ip6addr);
	} else if (*st == POSTERN_DNS_TEMPFAIL) {
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

postern_dns_query_t *
dns_addr(postern_module_t *m, const char *host, unsigned port,
         postern_dns_fn cb, void *arg)
{
	unsigned char a[sizeof(struct in6_addr)];
	struct postern_dns_query *q;
	struct resolver *r;

	if ((q = query_new(m, 0, host, cb, arg)) == NULL)
		return NULL;
	r = q->r;
	q->port = port;
	q->st4 = q->st6 = POSTERN_DNS_NODATA;
	r->submitting++;
	if (inet_pton(AF_INET, q->name, a) == 1 ||
	    inet_pton(AF_INET6, q->name, a) == 1) {
		rec_add_addr(q, strchr(q->name, ':') != NULL ? AF_INET6 :
		             AF_INET, a);
		q->status = POSTERN_DNS_OK;
		query_done(q);
	} else if (!name_ok(q->name)) {
		query_fail_soon(q, POSTERN_DNS_NXDOMAIN, "not a valid host "
		                "name");
	} else {
		/* Both requests are counted before either is sent: c-ares
		 * may answer the first at once. */
		q->remaining = 2;
		ares_query(r->ch, q->name, ns_c_in, ns_t_aaaa, aaaa_answer, q);
		ares_query(r->ch, q->name, ns_c_in, ns_t_a, a_answer, q);
	}
	r->submitting--;
	dns_arm(r);
	return q;
}

void
dns_cancel(postern_dns_query_t *q)
{
	if (q == NULL || q->cancelled || q->delivered)
		return;
	q->cancelled = 1;
	q->r->pending--;
	/* Freed when its last c-ares request answers, or by the ready
	 * timer if it is on the ready list. */
}

size_t
dns_pending(void)
{
	return dns.r != NULL ? dns.r->pending : 0;
}

/* ---- the resolver ---------------------------------------------------- */

/* A channel with the configured servers; 0 or -1 with err set. */
static int
channel_open(ares_channel *ch, void *state_data, char *err, size_t errlen)
{
	struct ares_options opts;
	int rc, mask;

	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = state_data;
	opts.timeout = dns.timeout_ms != 0 ? (int)dns.timeout_ms : 2000;
	opts.tries = dns.tries != 0 ? (int)dns.tries : 3;
	mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	if ((rc = ares_init_options(ch, &opts, mask)) != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: cannot set up the resolver (%s)",
		         ares_strerror(rc));
		return -1;
	}
	if (dns.servers != NULL &&
	    (rc = ares_set_servers_ports_csv(*ch, dns.servers)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "dns_servers '%s': %s", dns.servers,
		         rc == ARES_EBADSTR ? "not a list of address[:port]" :
		         ares_strerror(rc));
		ares_destroy(*ch);
		return -1;
	}
	return 0;
}

int
dns_configure(const struct dns_settings *s, char *err, size_t errlen)
{
	ares_channel ch;
	int rc;

	free(dns.servers);
	dns.servers = s->servers != NULL && s->servers[0] != '\0' ?
	              xstrdup(s->servers) : NULL;
	dns.timeout_ms = s->timeout_ms;
	dns.tries = s->tries;
	dns.failed_logged = 0;
	if (dns.servers == NULL)
		return 0;
	/* Tried once here so that a bad list is refused at startup. */
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	if (channel_open(&ch, NULL, err, errlen) < 0) {
		ares_library_cleanup();
		return -1;
	}
	ares_destroy(ch);
	ares_library_cleanup();
	return 0;
}

static struct resolver *
resolver_get(postern_module_t *m)
{
	struct resolver *r;
	char err[DNS_ERROR_MAX];
	int rc;

	if (dns.r != NULL)
		return dns.r;
	if (loop_current == NULL) {
		log_write(POSTERN_LOG_ERROR, m != NULL ? m->name : NULL,
		          "dns: lookups run on a worker's event loop only");
		return NULL;
	}
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, sizeof(err), "c-ares: %s", ares_strerror(rc));
		goto fail;
	}
	r = xcalloc(1, sizeof(*r));
	r->loop = loop_current;
	r->ready_tail = &r->ready;
	if (channel_open(&r->ch, r, err, sizeof(err)) < 0) {
		free(r);
		ares_library_cleanup();
		goto fail;
	}
	dns.r = r;
	return r;
fail:
	/* Logged once: every lookup fails the same way until a reload. */
	if (!dns.failed_logged)
		log_error("%s", err);
	dns.failed_logged = 1;
	return NULL;
}

void
dns_shutdown(void)
{
	struct resolver *r = dns.r;
	size_t i;

	if (r == NULL)
		return;
	r->destroying = 1;
	/* Every outstanding request answers ARES_EDESTRUCTION and its
	 * query is freed without a callback; sockets are closed, which
	 * removes their watches through dns_sock_state. */
	ares_destroy(r->ch);
	while (r->ready != NULL) {
		struct postern_dns_query *q = r->ready;

		r->ready = q->ready_next;
		query_free(q);
	}
	if (r->ready_timer != NULL)
		loop_timer_cancel(r->loop, r->ready_timer);
	if (r->timer != NULL)
		loop_timer_cancel(r->loop, r->timer);
	for (i = 0; i < r->nwatches; i++)
		loop_watch_remove(r->loop, r->watches[i].w);
	free(r->watches);
	free(r);
	dns.r = NULL;
	ares_library_cleanup();
}
