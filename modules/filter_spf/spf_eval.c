/*
 * spf_eval.c - check_host() of RFC 7208 on the host's asynchronous DNS.
 *
 * One lookup is in flight at a time: an evaluation is a small machine
 * that advances through the terms of the record on top of a stack of
 * frames (an include pushes one, a redirect replaces one) until a lookup
 * must be waited for, and goes on from the lookup's callback.  Every
 * lookup counts against the limits of section 4.6.4 (10 terms that query
 * DNS, 10 names per mx and ptr, 2 void lookups) and against MAX_QUERIES,
 * so a hostile record cannot make an evaluation unbounded; the hook's
 * timeout bounds it in time.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "spf.h"

#define MAX_LOOKUPS 10  /* terms that query DNS, section 4.6.4 */
#define MAX_NAMES 10    /* MX and PTR names followed per term */
#define MAX_VOIDS 2     /* lookups answering no record */
/* All lookups: 10 terms of 1 + 10, the exp= and %{p} lookups. */
#define MAX_QUERIES 130
#define NAME_MAX_LEN 2048

enum mech { M_ALL, M_INCLUDE, M_A, M_MX, M_PTR, M_IP4, M_IP6, M_EXISTS };

static const char *const mech_names[] = {
	"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists", NULL
};

/* What the lookup in flight is for. */
enum wait {
	W_RECORD, W_A, W_MX, W_MXADDR, W_EXISTS, W_VPTR, W_VADDR, W_EXP
};

/* Where the PTR validation of section 5.5 stands. */
enum vstate { V_NONE, V_ADDR, V_DONE };

struct term {
	enum spf_result qual;   /* the result when it matches */
	enum mech mech;
	const char *spec;       /* the domain-spec; NULL: current domain */
	int cidr4, cidr6;
	unsigned char net[16];  /* ip4, ip6 */
	const char *text;       /* as written, for the header and logs */
};

struct frame {
	const char *domain;
	struct term *terms;
	size_t nterms, next;
	const char *redirect;   /* domain-specs of the modifiers, or NULL */
	const char *exp;
	int loaded;
	int redirected;         /* reached by redirect= */
	struct frame *up;       /* the frame whose include made this one */
};

struct spf_eval {
	const struct postern_host *h;
	postern_module_t *m;
	postern_pool_t *pool;
	struct spf_macro_ctx ctx;
	spf_done_fn done;
	void *arg;
	postern_dns_query_t *q;
	enum wait waiting;
	struct frame *fr;
	unsigned lookups, voids;
	/* mx: the names of the term being evaluated */
	const char **names;
	size_t nnames, iname;
	int in_term;            /* names holds the current term's names */
	/* section 5.5 validated names, shared by ptr and %{p} */
	enum vstate vstate;
	const char **vnames;
	int *vok;
	size_t nvnames, ivname;
	int in_start, finished;
	struct spf_outcome out;
};

static void
finish(struct spf_eval *e, enum spf_result r, const char *problem)
{
	e->out.result = r;
	if (problem != NULL)
		e->out.problem = e->h->pool_strndup(e->pool, problem,
		                                    strlen(problem));
	e->finished = 1;
}

static void on_dns(const struct postern_dns_result *r, void *arg);
static void run(struct spf_eval *e);
static int parse_ip6(char *tok, struct term *t);

static void
query(struct spf_eval *e, const char *name, unsigned type, enum wait w)
{
	if (++e->out.queries > MAX_QUERIES) {
		finish(e, SPF_PERMERROR, "too many DNS lookups");
		return;
	}
	e->waiting = w;
	e->q = e->h->dns_lookup(e->m, name, type, on_dns, e);
	if (e->q == NULL)
		finish(e, SPF_TEMPERROR, "no DNS resolver");
}

/* The A or AAAA type that holds addresses of the client's family. */
static unsigned
addr_type(const struct spf_eval *e)
{
	return e->ctx.ip.family == AF_INET ? POSTERN_DNS_A
	                                   : POSTERN_DNS_AAAA;
}

/* 1 when a record's address is within `prefix` bits of the client. */
static int
record_match(const struct spf_eval *e, const struct postern_dns_record *rr,
             int cidr4, int cidr6)
{
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;

	if (rr->addr.ss_family == AF_INET) {
		s4 = (const struct sockaddr_in *)&rr->addr;
		return spf_ip_match(&e->ctx.ip, &s4->sin_addr, AF_INET, cidr4);
	}
	if (rr->addr.ss_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)&rr->addr;
		return spf_ip_match(&e->ctx.ip, &s6->sin6_addr, AF_INET6,
		                    cidr6);
	}
	return 0;
}

static int
any_match(const struct spf_eval *e, const struct postern_dns_result *r,
          int cidr4, int cidr6)
{
	size_t i;

	if (r->status != POSTERN_DNS_OK)
		return 0;
	for (i = 0; i < r->nrecords; i++)
		if (record_match(e, r->records[i], cidr4, cidr6))
			return 1;
	return 0;
}

/* 1 when `name` is `domain` or below it (case-insensitive). */
static int
name_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (d > 0 && domain[d - 1] == '.')
		d--;
	if (n < d || strncasecmp(name + n - d, domain, d) != 0)
		return 0;
	return n == d || name[n - d - 1] == '.';
}

/* %{p}: a validated name within the current domain, else any. */
static const char *
pick_ptr(const struct spf_eval *e, const char *domain)
{
	const char *any = NULL;
	size_t i;

	for (i = 0; i < e->nvnames; i++) {
		if (!e->vok[i])
			continue;
		if (name_within(e->vnames[i], domain))
			return e->vnames[i];
		if (any == NULL)
			any = e->vnames[i];
	}
	return any;
}

/*
 * The target name of a term or modifier: its domain-spec expanded
 * within the current frame (section 7), cut to 253 octets, or the
 * current domain.  NULL after finishing with permerror.
 */
static const char *
target(struct spf_eval *e, const char *spec)
{
	char out[NAME_MAX_LEN];
	const char *name;
	int n;

	if (spec == NULL)
		return e->fr->domain;
	e->ctx.domain = e->fr->domain;
	e->ctx.ptr = pick_ptr(e, e->fr->domain);
	n = spf_macro_expand(&e->ctx, spec, strlen(spec), 0, out,
	                     sizeof(out));
	if (n < 0) {
		finish(e, SPF_PERMERROR, "macro expansion failed");
		return NULL;
	}
	name = spf_domain_truncate(out);
	if (!spf_domain_valid(name)) {
		finish(e, SPF_PERMERROR, "a term names an invalid domain");
		return NULL;
	}
	return e->h->pool_strndup(e->pool, name, strlen(name));
}

/* Section 4.6.4: the 11th term that queries DNS is a permerror. */
static int
count_lookup(struct spf_eval *e)
{
	if (++e->lookups <= MAX_LOOKUPS)
		return 0;
	finish(e, SPF_PERMERROR, "more than 10 DNS-querying terms");
	return -1;
}

/* Section 4.6.4: a third lookup without an answer is a permerror. */
static int
count_void(struct spf_eval *e, const struct postern_dns_result *r)
{
	if (r->status != POSTERN_DNS_NXDOMAIN &&
	    r->status != POSTERN_DNS_NODATA)
		return 0;
	if (++e->voids <= MAX_VOIDS)
		return 0;
	finish(e, SPF_PERMERROR, "more than 2 void DNS lookups");
	return -1;
}

static struct frame *
frame_new(struct spf_eval *e, const char *domain, struct frame *up)
{
	struct frame *f = e->h->pool_alloc(e->pool, sizeof(*f));

	f->domain = domain;
	f->up = up;
	return f;
}

static void
next_term(struct spf_eval *e)
{
	e->fr->next++;
	e->in_term = 0;
}

static void frame_result(struct spf_eval *e, enum spf_result r,
                         const char *mech);

static void
matched(struct spf_eval *e, const struct term *t)
{
	e->in_term = 0;
	frame_result(e, t->qual, t->text);
}

/* The frame on top ends with `r`: the evaluation's result, or an
 * include's (section 5.2). */
static void
frame_result(struct spf_eval *e, enum spf_result r, const char *mech)
{
	struct frame *fr = e->fr;
	const char *name;

	if (fr->up != NULL) {
		e->fr = fr->up;
		if (r == SPF_PASS)
			matched(e, &e->fr->terms[e->fr->next]);
		else
			next_term(e);
		return;
	}
	e->out.result = r;
	e->out.mechanism = mech;
	/* Section 6.2: a fail is explained by the exp= of its record. */
	if (r != SPF_FAIL || fr->exp == NULL) {
		e->finished = 1;
		return;
	}
	if ((name = target(e, fr->exp)) == NULL) {
		/* An exp= that cannot be expanded leaves the fail as it
		 * is, without explanation. */
		e->finished = 1;
		e->out.result = SPF_FAIL;
		e->out.problem = NULL;
		return;
	}
	query(e, name, POSTERN_DNS_TXT, W_EXP);
}

static void
got_exp(struct spf_eval *e, const struct postern_dns_result *r)
{
	char out[1024];
	const struct postern_dns_record *rr;

	e->finished = 1;
	if (r->status != POSTERN_DNS_OK || r->nrecords != 1)
		return;
	rr = r->records[0];
	e->ctx.domain = e->fr->domain;
	if (memchr(rr->text, '\0', rr->len) != NULL ||
	    spf_macro_expand(&e->ctx, rr->text, rr->len, 1, out,
	                     sizeof(out)) < 0)
		return;
	e->out.explanation = e->h->pool_strndup(e->pool, out, strlen(out));
}

/* ---- Record syntax (section 4.6, 5, 6) -------------------------- */

/* A domain-spec: a valid macro-string ending in a top label or a macro
 * (section 7.1 domain-end). */
static int
domain_spec_ok(const struct spf_eval *e, const char *s)
{
	char out[NAME_MAX_LEN];
	size_t len = strlen(s), i;
	const char *dot, *top;
	int digits = 1;

	if (len == 0 || spf_macro_expand(&e->ctx, s, len, 0, out,
	                                 sizeof(out)) == SPF_MACRO_SYNTAX)
		return 0;
	if (s[len - 1] == '.')
		len--;
	if (len > 0 && s[len - 1] == '}')
		return 1;
	for (dot = NULL, i = 0; i < len; i++)
		if (s[i] == '.')
			dot = s + i;
	if (dot == NULL || dot + 1 >= s + len)
		return 0;
	top = dot + 1;
	if (top[0] == '-' || s[len - 1] == '-')
		return 0;
	for (; top < s + len; top++) {
		if (!isalnum((unsigned char)*top) && *top != '-')
			return 0;
		if (!isdigit((unsigned char)*top))
			digits = 0;
	}
	return !digits;
}

/* Strips "/N" (and "//N" when `dual`) from the end of s; -1: bad. */
static int
parse_cidr(char *s, int dual, int *c4, int *c6)
{
	char *slash;
	long v;

	*c4 = 32;
	*c6 = 128;
	while ((slash = strrchr(s, '/')) != NULL &&
	       slash[1] != '\0' && strspn(slash + 1, "0123456789") ==
	       strlen(slash + 1)) {
		if (strlen(slash + 1) > 3 ||
		    (slash[1] == '0' && slash[2] != '\0'))
			return -1;
		v = strtol(slash + 1, NULL, 10);
		if (dual && slash > s && slash[-1] == '/') {
			if (v > 128 || *c6 != 128 || *c4 != 32)
				return -1;
			*c6 = (int)v;
			slash[-1] = '\0';
			continue;
		}
		if (v > 32 || *c4 != 32)
			return -1;
		*c4 = (int)v;
		*slash = '\0';
		break;
	}
	return 0;
}

static int
parse_mechanism(struct spf_eval *e, char *tok, struct term *t)
{
	char *arg, *name = tok;
	size_t i, nlen;

	t->qual = SPF_PASS;
	if (strchr("+-~?", *name) != NULL) {
		t->qual = *name == '+' ? SPF_PASS : *name == '-' ? SPF_FAIL
		          : *name == '~' ? SPF_SOFTFAIL : SPF_NEUTRAL;
		name++;
	}
	nlen = strcspn(name, ":/");
	for (i = 0; mech_names[i] != NULL; i++)
		if (strlen(mech_names[i]) == nlen &&
		    strncasecmp(name, mech_names[i], nlen) == 0)
			break;
	if (mech_names[i] == NULL)
		return -1;
	t->mech = (enum mech)i;
	arg = name + nlen;
	switch (t->mech) {
	case M_ALL:
		return *arg == '\0' ? 0 : -1;
	case M_IP4:
		if (*arg != ':' ||
		    parse_cidr(arg + 1, 0, &t->cidr4, &t->cidr6) < 0)
			return -1;
		return inet_pton(AF_INET, arg + 1, t->net) == 1 ? 0 : -1;
	case M_IP6:
		return *arg == ':' ? parse_ip6(name, t) : -1;
	case M_A:
	case M_MX:
		if (parse_cidr(arg, 1, &t->cidr4, &t->cidr6) < 0)
			return -1;
		break;
	default:
		break;
	}
	if (*arg == '\0')
		return t->mech == M_INCLUDE || t->mech == M_EXISTS ? -1 : 0;
	if (*arg != ':' || !domain_spec_ok(e, arg + 1))
		return -1;
	t->spec = arg + 1;
	return 0;
}

/* ip6:NET[/N], N up to 128. */
static int
parse_ip6(char *tok, struct term *t)
{
	char *q = strchr(tok, ':'), *slash;
	long v;

	slash = strrchr(q, '/');
	t->cidr6 = 128;
	if (slash != NULL) {
		if (slash[1] == '\0' || strlen(slash + 1) > 3 ||
		    strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
		    (slash[1] == '0' && slash[2] != '\0'))
			return -1;
		v = strtol(slash + 1, NULL, 10);
		if (v > 128)
			return -1;
		t->cidr6 = (int)v;
		*slash = '\0';
	}
	return inet_pton(AF_INET6, q + 1, t->net) == 1 ? 0 : -1;
}

static int
modifier_name_len(const char *tok)
{
	size_t i = 0;

	if (!isalpha((unsigned char)tok[0]))
		return -1;
	while (isalnum((unsigned char)tok[i]) || strchr("-_.", tok[i]) != NULL)
		if (tok[i++] == '\0')
			return -1;
	return tok[i] == '=' ? (int)i : -1;
}

static int
parse_modifier(struct spf_eval *e, struct frame *f, char *tok, int nlen)
{
	char out[NAME_MAX_LEN];
	const char *v = tok + nlen + 1;
	const char **slot = NULL;

	if (nlen == 8 && strncasecmp(tok, "redirect", 8) == 0)
		slot = &f->redirect;
	else if (nlen == 3 && strncasecmp(tok, "exp", 3) == 0)
		slot = &f->exp;
	if (slot == NULL) /* unknown modifiers: ignored, if well formed */
		return spf_macro_expand(&e->ctx, v, strlen(v), 0, out,
		                        sizeof(out)) == SPF_MACRO_SYNTAX ? -1
		                                                         : 0;
	if (*slot != NULL || !domain_spec_ok(e, v))
		return -1; /* section 6: each at most once */
	*slot = v;
	return 0;
}

/* Parses record `rec` into frame f; -1 with e->out.problem set. */
static int
parse_record(struct spf_eval *e, struct frame *f, char *rec)
{
	char *tok, *save = NULL;
	const char *orig = "";
	size_t cap = 8;
	int nlen;
	struct term *t;

	f->terms = e->h->pool_alloc(e->pool, cap * sizeof(*f->terms));
	tok = strtok_r(rec + 6, " ", &save);
	for (; tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		/* The parsers cut the token: keep it whole for the error. */
		orig = e->h->pool_strndup(e->pool, tok, strlen(tok));
		if ((nlen = modifier_name_len(tok)) > 0) {
			if (parse_modifier(e, f, tok, nlen) < 0)
				goto bad;
			continue;
		}
		if (f->nterms == cap) {
			t = e->h->pool_alloc(e->pool, 2 * cap * sizeof(*t));
			memcpy(t, f->terms, cap * sizeof(*t));
			f->terms = t;
			cap *= 2;
		}
		t = &f->terms[f->nterms];
		t->text = orig;
		if (parse_mechanism(e, tok, t) < 0)
			goto bad;
		f->nterms++;
	}
	return 0;
bad:
	e->out.problem = e->h->pool_printf(e->pool, "bad term '%s' in the "
	                                   "SPF record of %s", orig, f->domain);
	return -1;
}

/* Section 4.5: of the TXT records, exactly one starting "v=spf1". */
static void
got_record(struct spf_eval *e, const struct postern_dns_result *r)
{
	struct frame *fr = e->fr;
	const struct postern_dns_record *rec = NULL;
	size_t i, n = 0;
	char *text;

	if (r->status == POSTERN_DNS_TEMPFAIL) {
		finish(e, SPF_TEMPERROR, r->error);
		return;
	}
	for (i = 0; r->status == POSTERN_DNS_OK && i < r->nrecords; i++) {
		const struct postern_dns_record *rr = r->records[i];

		if (rr->len >= 6 && strncasecmp(rr->text, "v=spf1", 6) == 0 &&
		    (rr->len == 6 || rr->text[6] == ' ')) {
			rec = rr;
			n++;
		}
	}
	if (n == 0) {
		if (fr->up == NULL && !fr->redirected)
			finish(e, SPF_NONE, "no SPF record");
		else
			finish(e, SPF_PERMERROR, e->h->pool_printf(e->pool,
			       "%s has no SPF record", fr->domain));
		return;
	}
	if (n > 1) {
		finish(e, SPF_PERMERROR, "two or more SPF records");
		return;
	}
	if (memchr(rec->text, '\0', rec->len) != NULL) {
		finish(e, SPF_PERMERROR, "a NUL in the SPF record");
		return;
	}
	text = e->h->pool_strndup(e->pool, rec->text, rec->len);
	if (parse_record(e, fr, text) < 0) {
		finish(e, SPF_PERMERROR, NULL);
		return;
	}
	fr->loaded = 1;
}

/* ---- Terms (section 5) ------------------------------------------ */

static int
needs_ptr(const struct term *t)
{
	return t->mech == M_PTR ||
	       (t->spec != NULL && spf_macro_uses_p(t->spec, strlen(t->spec)));
}

/* One step of section 5.5's validation: the PTR names, then their
 * addresses, up to 10 names. */
static void
validate_step(struct spf_eval *e)
{
	char ipbuf[64];

	if (e->vstate == V_NONE) {
		inet_ntop(e->ctx.ip.family, e->ctx.ip.addr, ipbuf,
		          sizeof(ipbuf));
		query(e, ipbuf, POSTERN_DNS_PTR, W_VPTR);
		return;
	}
	if (e->ivname < e->nvnames) {
		query(e, e->vnames[e->ivname], addr_type(e), W_VADDR);
		return;
	}
	e->vstate = V_DONE;
}

static void
got_vptr(struct spf_eval *e, const struct postern_dns_result *r)
{
	size_t i, n;

	e->vstate = V_ADDR;
	if (r->status != POSTERN_DNS_OK)
		return; /* section 5.5: errors make no names */
	n = r->nrecords < MAX_NAMES ? r->nrecords : MAX_NAMES;
	e->vnames = e->h->pool_alloc(e->pool, n * sizeof(*e->vnames));
	e->vok = e->h->pool_alloc(e->pool, n * sizeof(*e->vok));
	for (i = 0; i < n; i++)
		e->vnames[i] = e->h->pool_strndup(e->pool,
		                                  r->records[i]->name,
		                                  strlen(r->records[i]->name));
	e->nvnames = n;
}

static int
ptr_match(const struct spf_eval *e, const char *domain)
{
	size_t i;

	for (i = 0; i < e->nvnames; i++)
		if (e->vok[i] && name_within(e->vnames[i], domain))
			return 1;
	return 0;
}

static void
begin_term(struct spf_eval *e, const struct term *t)
{
	const char *name;

	switch (t->mech) {
	case M_ALL:
		matched(e, t);
		return;
	case M_IP4:
	case M_IP6:
		if (spf_ip_match(&e->ctx.ip, t->net,
		                 t->mech == M_IP4 ? AF_INET : AF_INET6,
		                 t->mech == M_IP4 ? t->cidr4 : t->cidr6))
			matched(e, t);
		else
			next_term(e);
		return;
	default:
		break;
	}
	if (count_lookup(e) < 0 || (name = target(e, t->spec)) == NULL)
		return;
	switch (t->mech) {
	case M_INCLUDE:
		e->fr = frame_new(e, name, e->fr);
		return;
	case M_A:
		query(e, name, addr_type(e), W_A);
		return;
	case M_MX:
		query(e, name, POSTERN_DNS_MX, W_MX);
		return;
	case M_PTR:
		if (ptr_match(e, name))
			matched(e, t);
		else
			next_term(e);
		return;
	default:
		query(e, name, POSTERN_DNS_A, W_EXISTS);
		return;
	}
}

static void
got_mx(struct spf_eval *e, const struct postern_dns_result *r)
{
	size_t i;

	if (r->status == POSTERN_DNS_TEMPFAIL) {
		finish(e, SPF_TEMPERROR, r->error);
		return;
	}
	if (count_void(e, r) < 0)
		return;
	if (r->status != POSTERN_DNS_OK) {
		next_term(e);
		return;
	}
	if (r->nrecords > MAX_NAMES) {
		finish(e, SPF_PERMERROR, "more than 10 MX names");
		return;
	}
	e->names = e->h->pool_alloc(e->pool, r->nrecords * sizeof(char *));
	for (i = 0; i < r->nrecords; i++)
		e->names[i] = e->h->pool_strndup(e->pool, r->records[i]->name,
		                                 strlen(r->records[i]->name));
	e->nnames = r->nrecords;
	e->iname = 0;
	e->in_term = 1;
}

/* A lookup's answer, for the term on top of the current frame. */
static void
got_answer(struct spf_eval *e, const struct postern_dns_result *r)
{
	const struct term *t = &e->fr->terms[e->fr->next];

	if (r->status == POSTERN_DNS_TEMPFAIL) {
		finish(e, SPF_TEMPERROR, r->error);
		return;
	}
	if (e->waiting != W_MXADDR && count_void(e, r) < 0)
		return;
	if (e->waiting == W_EXISTS ? r->status == POSTERN_DNS_OK
	                           : any_match(e, r, t->cidr4, t->cidr6)) {
		matched(e, t);
		return;
	}
	if (e->waiting == W_MXADDR && ++e->iname < e->nnames)
		return; /* advance asks for the next name */
	next_term(e);
}

static void
on_dns(const struct postern_dns_result *r, void *arg)
{
	struct spf_eval *e = arg;

	e->q = NULL;
	switch (e->waiting) {
	case W_RECORD:
		got_record(e, r);
		break;
	case W_MX:
		got_mx(e, r);
		break;
	case W_VPTR:
		got_vptr(e, r);
		break;
	case W_VADDR:
		if (any_match(e, r, 32, 128))
			e->vok[e->ivname] = 1;
		e->ivname++;
		break;
	case W_EXP:
		got_exp(e, r);
		break;
	default:
		got_answer(e, r);
		break;
	}
	run(e);
}

/* Does one thing: starts a lookup, or moves on by a term. */
static void
advance(struct spf_eval *e)
{
	struct frame *fr = e->fr;
	const struct term *t;
	const char *name;

	if (!fr->loaded) {
		query(e, fr->domain, POSTERN_DNS_TXT, W_RECORD);
		return;
	}
	if (fr->next >= fr->nterms) {
		if (fr->redirect == NULL) {
			frame_result(e, SPF_NEUTRAL, "default");
			return;
		}
		/* Section 6.1: the redirect's result is this frame's. */
		if (count_lookup(e) < 0 ||
		    (name = target(e, fr->redirect)) == NULL)
			return;
		e->fr = frame_new(e, name, fr->up);
		e->fr->redirected = 1;
		return;
	}
	t = &fr->terms[fr->next];
	if (e->in_term) { /* mx: the address of the next name */
		query(e, e->names[e->iname], addr_type(e), W_MXADDR);
		return;
	}
	if (needs_ptr(t) && e->vstate != V_DONE) {
		validate_step(e);
		return;
	}
	begin_term(e, t);
}

static void
run(struct spf_eval *e)
{
	while (!e->finished && e->q == NULL)
		advance(e);
	if (e->finished && e->q == NULL && !e->in_start)
		e->done(e->arg, &e->out); /* may free e: nothing after */
}

/* The domain checked first comes from the client: letters, digits,
 * '-', '_' and dots only (an address literal or a stray character
 * makes it no domain, section 4.3). */
static int
ldh(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-_.", *s) == NULL)
			return 0;
	return 1;
}

struct spf_eval *
spf_eval_start(const struct postern_host *h, postern_module_t *m,
               const struct spf_request *req, spf_done_fn done, void *arg,
               struct spf_outcome *now)
{
	static char problem[256];
	struct spf_eval *e;
	postern_pool_t *pool = h->pool_create(8192);
	const char *at;
	char *dom;

	e = h->pool_alloc(pool, sizeof(*e));
	e->h = h;
	e->m = m;
	e->pool = pool;
	e->done = done;
	e->arg = arg;
	e->ctx.ip = req->ip;
	e->ctx.sender = h->pool_strndup(pool, req->sender, strlen(req->sender));
	at = strrchr(e->ctx.sender, '@');
	/* Section 4.3: no local-part means "postmaster". */
	e->ctx.local = at == NULL || at == e->ctx.sender ? "postmaster"
	               : h->pool_strndup(pool, e->ctx.sender,
	                                 (size_t)(at - e->ctx.sender));
	e->ctx.sender_dom = at != NULL ? at + 1 : e->ctx.sender;
	e->ctx.helo = req->helo;
	e->ctx.receiver = req->receiver;
	e->ctx.now = (long long)time(NULL);
	dom = h->pool_strndup(pool, req->domain, strlen(req->domain));
	if (*dom != '\0' && dom[strlen(dom) - 1] == '.')
		dom[strlen(dom) - 1] = '\0';
	e->fr = frame_new(e, dom, NULL);
	e->in_start = 1;
	if (!spf_domain_valid(dom) || !ldh(dom))
		finish(e, SPF_NONE, "not a valid domain");
	run(e);
	e->in_start = 0;
	if (!e->finished || e->q != NULL)
		return e;
	*now = e->out;
	now->mechanism = NULL;
	now->explanation = NULL;
	snprintf(problem, sizeof(problem), "%s",
	         e->out.problem != NULL ? e->out.problem : "");
	now->problem = e->out.problem != NULL ? problem : NULL;
	spf_eval_free(e);
	return NULL;
}

void
spf_eval_free(struct spf_eval *e)
{
	if (e == NULL)
		return;
	if (e->q != NULL)
		e->h->dns_cancel(e->q);
	e->h->pool_destroy(e->pool);
}
