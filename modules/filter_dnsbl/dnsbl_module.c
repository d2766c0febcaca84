/*
 * dnsbl_module.c - filter_dnsbl: DNS block and allow lists (RFC 5782)
 * for the client's address, IPv4 and IPv6, over several zones with
 * weights and a threshold, as Postfix's postscreen_dnsbl_sites does.
 *
 *	filter_dnsbl = {
 *	  zones = (
 *	    { zone = "zen.spamhaus.org"; weight = 2;
 *	      codes = [ "127.0.0.2-127.0.0.11" ]; },
 *	    { zone = "bl.spamcop.net"; weight = 1; },
 *	    { zone = "list.dnswl.org"; weight = -3;
 *	      codes = [ "127.0.0.0/16" ]; ipv6 = false; }
 *	  );
 *	  threshold = 2;       # listed when the weights sum to this or more
 *	  action = "reject";   # reject, tempfail or tag
 *	  stage = "rcpt";      # connect, helo, mail or rcpt
 *	};
 *
 * The lookups start when the client connects, one per zone, on the
 * worker's resolver (host->dns_lookup), so they are usually answered by
 * the time the verdict is due at `stage`; a handler that must wait
 * answers PENDING and resumes when the last zone has answered.  A zone
 * that does not answer (timeout, SERVFAIL) counts as not listing the
 * client: a list that is down must not stop mail.  A listed client's
 * TXT record, when the zone has one, goes into the reply.
 *
 * A zone's answer counts when one of its A records is among `codes`
 * (default: any 127.0.0.0/8 address but 127.255.255.0/24, which
 * Spamhaus and others use to say "query refused", not "listed").
 *
 * Sessions with an authenticated user and clients in `exempt` are not
 * judged.  With action "tag", or whenever a listed client's score is
 * below the threshold, the message gets a header naming the zones and
 * the score (`header`, "" for none).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <postern/postern.h>
#include <postern/smtp.h>

#define DNSBL_MAX_ZONES 32
#define DNSBL_TEXT_MAX 400

enum dnsbl_action { ACT_REJECT = 0, ACT_TEMPFAIL, ACT_TAG };
enum dnsbl_stage { STAGE_CONNECT = 0, STAGE_HELO, STAGE_MAIL, STAGE_RCPT };

static const char *const action_names[] = { "reject", "tempfail", "tag",
	                                     NULL };
static const char *const stage_names[] = { "connect", "helo", "mail",
	                                    "rcpt", NULL };

struct zone {
	const char *zone;
	long long weight;
	struct postern_strlist codes;
	int ipv6;
	int txt;
	/* parsed codes: IPv4 ranges [lo, hi], host order */
	struct {
		uint32_t lo, hi;
	} *ranges;
	size_t nranges;
};

struct settings {
	postern_cfg_t *zones;
	long long threshold;
	int action;
	int stage;
	const char *header;
	struct postern_strlist exempt;
	long long timeout_ms;
	const char *reject_text;
};

static int check_range(const void *field, char *err, size_t errlen);

static const struct postern_cfg_key zone_keys[] = {
	{ .name = "zone", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct zone, zone),
	  .flags = POSTERN_CFG_REQUIRED,
	  .doc = "the list's DNS zone (\"zen.spamhaus.org\")" },
	{ .name = "weight", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct zone, weight), .def = "1",
	  .min = -1000, .max = 1000,
	  .doc = "added to the score when the zone lists the client; "
	         "negative for allow lists" },
	{ .name = "codes", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct zone, codes), .validate = check_range,
	  .doc = "answers that count, as addresses, ranges "
	         "(\"127.0.0.2-127.0.0.11\") or networks (\"127.0.0.0/24\"); "
	         "default: 127.0.0.0/8 but 127.255.255.0/24" },
	{ .name = "ipv6", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct zone, ipv6), .def = "true",
	  .doc = "ask about IPv6 clients too (false for IPv4-only lists)" },
	{ .name = "txt", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct zone, txt), .def = "true",
	  .doc = "fetch the TXT record of a listing for the reply" },
	{ .name = NULL },
};

static const struct postern_cfg_key module_keys[] = {
	{ .name = "zones", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct settings, zones), .schema = zone_keys,
	  .doc = "the lists to ask, each with its weight" },
	{ .name = "threshold", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct settings, threshold), .def = "1",
	  .min = 1, .max = 100000,
	  .doc = "score at which the action is taken" },
	{ .name = "action", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct settings, action), .def = "reject",
	  .choices = action_names,
	  .doc = "reject (554 at connect, 550 later), tempfail (421 and "
	         "close at connect, 450 later), or tag (accept with a "
	         "header)" },
	{ .name = "stage", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct settings, stage), .def = "rcpt",
	  .choices = stage_names,
	  .doc = "when the verdict is given: connect (before the greeting), "
	         "helo, mail, or rcpt (each recipient; the log then names "
	         "sender and recipient, as Postfix's default)" },
	{ .name = "header", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, header), .def = "X-DNSBL",
	  .doc = "header field naming the zones that list the client and "
	         "the score; \"\" for none" },
	{ .name = "exempt", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct settings, exempt),
	  .doc = "client addresses or networks (CIDR) never looked up" },
	{ .name = "timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct settings, timeout_ms), .def = "10s",
	  .min = 100, .max = 120000,
	  .doc = "longest wait for the lists at `stage`; then the client "
	         "is let through" },
	{ .name = "reject_text", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, reject_text),
	  .def = "Service unavailable; client [%c] blocked using %z",
	  .doc = "reply text: %c the client address, %z the zones, %t the "
	         "first zone's TXT record" },
	{ .name = NULL },
};

/* One session's lookups and what they found. */
struct dnsbl_sess {
	char peer[INET6_ADDRSTRLEN];
	size_t pending;                  /* lookups not answered */
	struct lookup {
		struct dnsbl_sess *s;
		size_t zone;
		postern_dns_query_t *q;
	} lookups[DNSBL_MAX_ZONES * 2];  /* A, then TXT of listed zones */
	int listed[DNSBL_MAX_ZONES];     /* 1: the zone lists the client */
	char code[DNSBL_MAX_ZONES][16];  /* the A answer that counted */
	char *txt;                       /* the first listing's TXT */
	long long score;
	postern_hook_call_t *call;       /* a verdict waiting for the end */
	char text[DNSBL_TEXT_MAX];       /* reply text, for the host */
	char zones_text[DNSBL_TEXT_MAX]; /* "zone1, zone2" */
};

static const struct postern_host *host;
static postern_module_t *self;
static const struct postern_smtp_service *svc;
static struct settings cfg;
static struct zone *zones;
static size_t nzones;
static struct postern_network *exempt;
static size_t nexempt;

/* ---- configuration -------------------------------------------------- */

/* "a.b.c.d", "a.b.c.d-e.f.g.h" or "a.b.c.d/n" as [lo, hi]. */
static int
parse_range(const char *text, uint32_t *lo, uint32_t *hi)
{
	struct postern_network n;
	struct in_addr a, b;
	const char *dash = strchr(text, '-');
	char first[INET_ADDRSTRLEN];
	uint32_t mask;

	if (dash != NULL) {
		if ((size_t)(dash - text) >= sizeof(first))
			return -1;
		memcpy(first, text, (size_t)(dash - text));
		first[dash - text] = '\0';
		if (inet_pton(AF_INET, first, &a) != 1 ||
		    inet_pton(AF_INET, dash + 1, &b) != 1)
			return -1;
		*lo = ntohl(a.s_addr);
		*hi = ntohl(b.s_addr);
		return *lo <= *hi ? 0 : -1;
	}
	if (host->network_parse(text, &n) < 0 || n.family != AF_INET)
		return -1;
	memcpy(&a, n.addr, 4);
	*lo = ntohl(a.s_addr);
	mask = n.prefix == 0 ? 0 : 0xffffffffu << (32 - n.prefix);
	*hi = *lo | ~mask;
	return 0;
}

static int
check_range(const void *field, char *err, size_t errlen)
{
	const struct postern_strlist *l = field;
	uint32_t lo, hi;
	size_t i;

	for (i = 0; i < l->count; i++) {
		if (parse_range(l->items[i], &lo, &hi) < 0) {
			snprintf(err, errlen, "'%s' is not an IPv4 address, "
			         "range (a-b) or network (a/n)", l->items[i]);
			return -1;
		}
	}
	return 0;
}

static int
zone_load(struct zone *z, postern_module_t *m, postern_cfg_t *node)
{
	size_t i;

	if (POSTERN_CFG_PARSE(host, m, node, zone_keys, z) < 0)
		return -1;
	if (z->zone[0] == '\0' || strlen(z->zone) > 200) {
		host->cfg_error(m, node, "filter_dnsbl: zone '%s' is not a "
		                "domain name", z->zone);
		return -1;
	}
	if (z->codes.count == 0) {
		/* RFC 5782 section 2.1: listings are 127.0.0.0/8; the
		 * 127.255.255.x block is the lists' error codes. */
		if ((z->ranges = calloc(2, sizeof(*z->ranges))) == NULL)
			return -1;
		z->ranges[0].lo = 0x7f000000u;
		z->ranges[0].hi = 0x7ffeffffu;
		z->ranges[1].lo = 0x7fff0000u;
		z->ranges[1].hi = 0x7ffffeffu;
		z->nranges = 2;
		return 0;
	}
	if ((z->ranges = calloc(z->codes.count, sizeof(*z->ranges))) == NULL)
		return -1;
	for (i = 0; i < z->codes.count; i++)
		(void)parse_range(z->codes.items[i], &z->ranges[i].lo,
		                  &z->ranges[i].hi);
	z->nranges = z->codes.count;
	return 0;
}

/* ---- lookups -------------------------------------------------------- */

/* The name to ask: the address's octets (IPv4) or nibbles (IPv6) in
 * reverse, then the zone (RFC 5782 section 2.1 and 2.4).  0, or -1
 * for an address this zone is not asked about. */
static int
query_name(const char *peer, const struct zone *z, char *out, size_t outlen)
{
	unsigned char a[16];
	char *p = out;
	int i;

	if (inet_pton(AF_INET, peer, a) == 1) {
		snprintf(out, outlen, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0],
		         z->zone);
		return 0;
	}
	if (!z->ipv6 || inet_pton(AF_INET6, peer, a) != 1 ||
	    outlen < 64 + strlen(z->zone) + 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		*p++ = "0123456789abcdef"[a[i] & 0xf];
		*p++ = '.';
		*p++ = "0123456789abcdef"[a[i] >> 4];
		*p++ = '.';
	}
	strcpy(p, z->zone);
	return 0;
}

static int
code_counts(const struct zone *z, const struct postern_dns_record *rec)
{
	const struct sockaddr_in *sin = (const void *)&rec->addr;
	uint32_t a;
	size_t i;

	if (rec->type != POSTERN_DNS_A)
		return 0;
	a = ntohl(sin->sin_addr.s_addr);
	for (i = 0; i < z->nranges; i++)
		if (a >= z->ranges[i].lo && a <= z->ranges[i].hi)
			return 1;
	return 0;
}

static void give_verdict(struct dnsbl_sess *s, struct postern_verdict *v);

/* The last answer is in: a waiting verdict can be given. */
static void
lookups_done(struct dnsbl_sess *s)
{
	struct postern_verdict v;
	postern_hook_call_t *call = s->call;

	if (s->pending > 0 || call == NULL)
		return;
	s->call = NULL;
	memset(&v, 0, sizeof(v));
	give_verdict(s, &v);
	host->hook_resume(call, &v);
}

static void
on_txt(const struct postern_dns_result *r, void *arg)
{
	struct lookup *l = arg;
	struct dnsbl_sess *s = l->s;

	l->q = NULL;
	s->pending--;
	if (r->status == POSTERN_DNS_OK && s->txt == NULL &&
	    (s->txt = strdup(r->records[0]->text)) != NULL) {
		/* Only printable text goes into a reply line. */
		for (char *c = s->txt; *c != '\0'; c++)
			if ((unsigned char)*c < ' ' || *c == 0x7f)
				*c = ' ';
	}
	lookups_done(s);
}

static void
on_a(const struct postern_dns_result *r, void *arg)
{
	struct lookup *l = arg;
	struct dnsbl_sess *s = l->s;
	const struct zone *z = &zones[l->zone];
	struct lookup *t;
	size_t i;

	l->q = NULL;
	s->pending--;
	if (r->status == POSTERN_DNS_TEMPFAIL)
		host->log(self, POSTERN_LOG_INFO, "%s: %s (not "
		          "counted)", z->zone, r->error);
	for (i = 0; i < r->nrecords && !s->listed[l->zone]; i++) {
		if (!code_counts(z, r->records[i]))
			continue;
		s->listed[l->zone] = 1;
		s->score += z->weight;
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
		          &r->records[i]->addr)->sin_addr, s->code[l->zone],
		          sizeof(s->code[l->zone]));
	}
	if (s->listed[l->zone] && z->txt && z->weight > 0) {
		t = &s->lookups[nzones + l->zone];
		t->s = s;
		t->zone = l->zone;
		t->q = host->dns_lookup(self, r->name, POSTERN_DNS_TXT, on_txt,
		                        t);
		if (t->q != NULL)
			s->pending++;
	}
	lookups_done(s);
}

static int
is_exempt(const char *peer)
{
	size_t i;

	for (i = 0; i < nexempt; i++)
		if (host->network_match(&exempt[i], peer))
			return 1;
	return 0;
}

/* Starts the session's lookups; NULL when none applies. */
static struct dnsbl_sess *
sess_start(const struct postern_smtp_payload *p)
{
	struct dnsbl_sess *s;
	char name[300];
	struct lookup *l;
	size_t i;

	if (is_exempt(p->session->peer))
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	snprintf(s->peer, sizeof(s->peer), "%s", p->session->peer);
	/* An IPv4 client on an IPv6 socket is asked about as IPv4. */
	if (strncmp(s->peer, "::ffff:", 7) == 0 && strchr(s->peer, '.'))
		memmove(s->peer, s->peer + 7, strlen(s->peer + 7) + 1);
	for (i = 0; i < nzones; i++) {
		if (query_name(s->peer, &zones[i], name, sizeof(name)) < 0)
			continue;
		l = &s->lookups[i];
		l->s = s;
		l->zone = i;
		l->q = host->dns_lookup(self, name, POSTERN_DNS_A, on_a, l);
		if (l->q != NULL)
			s->pending++;
	}
	return s;
}

static void
sess_free(struct dnsbl_sess *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < sizeof(s->lookups) / sizeof(s->lookups[0]); i++)
		host->dns_cancel(s->lookups[i].q);
	free(s->txt);
	free(s);
}

/* ---- verdicts -------------------------------------------------------- */

static void
zones_text(struct dnsbl_sess *s)
{
	size_t i, n = 0;

	s->zones_text[0] = '\0';
	for (i = 0; i < nzones; i++) {
		if (!s->listed[i] || zones[i].weight <= 0)
			continue;
		n += (size_t)snprintf(s->zones_text + n,
		                      n < sizeof(s->zones_text) ?
		                      sizeof(s->zones_text) - n : 0,
		                      "%s%s", n > 0 ? ", " : "", zones[i].zone);
		if (n >= sizeof(s->zones_text))
			break;
	}
}

/* reject_text with %c, %z and %t filled in. */
static void
reply_text(struct dnsbl_sess *s)
{
	const char *f = cfg.reject_text, *add;
	size_t n = 0, len;

	for (; *f != '\0' && n + 1 < sizeof(s->text); f++) {
		if (*f != '%' || f[1] == '\0') {
			s->text[n++] = *f;
			continue;
		}
		f++;
		add = *f == 'c' ? s->peer : *f == 'z' ? s->zones_text :
		      *f == 't' ? (s->txt != NULL ? s->txt : "") :
		      *f == '%' ? "%" : "";
		len = strlen(add);
		if (len > sizeof(s->text) - n - 1)
			len = sizeof(s->text) - n - 1;
		memcpy(s->text + n, add, len);
		n += len;
	}
	s->text[n] = '\0';
}

static void
give_verdict(struct dnsbl_sess *s, struct postern_verdict *v)
{
	if (s->score < cfg.threshold || cfg.action == ACT_TAG)
		return;
	zones_text(s);
	reply_text(s);
	v->text = s->text; /* copied by the host */
	if (cfg.action == ACT_TEMPFAIL) {
		v->kind = POSTERN_VERDICT_TEMPFAIL;
		v->code = 450;
		v->enhanced = "4.7.1";
		if (cfg.stage == STAGE_CONNECT) {
			/* RFC 5321 3.1: 421 in place of the greeting. */
			v->code = 421;
			v->flags = POSTERN_VERDICT_DISCONNECT;
		}
	} else {
		v->kind = POSTERN_VERDICT_REJECT;
		v->code = cfg.stage == STAGE_CONNECT ? 554 : 550;
		v->enhanced = "5.7.1";
	}
	host->log(self, POSTERN_LOG_NOTICE, "client %s: "
	          "score %lld (threshold %lld), listed by %s: %s", s->peer,
	          s->score, cfg.threshold, s->zones_text,
	          cfg.action == ACT_TEMPFAIL ? "tempfail" : "reject");
}

static struct dnsbl_sess **
slot(const struct postern_smtp_payload *p)
{
	return (struct dnsbl_sess **)svc->session_slot(p, self);
}

/* The verdict now, or PENDING until the last lookup has answered. */
static void
judge(struct dnsbl_sess *s, postern_hook_call_t *call,
      struct postern_verdict *v)
{
	if (s->pending > 0) {
		s->call = call;
		v->kind = POSTERN_VERDICT_PENDING;
		v->call_data = s;
		return;
	}
	give_verdict(s, v);
}

static void
on_connect(postern_hook_call_t *call, void *payload, void *arg,
           struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;
	struct dnsbl_sess **sp = slot(p);

	(void)arg;
	if (sp == NULL || (*sp = sess_start(p)) == NULL)
		return;
	if (cfg.stage == STAGE_CONNECT)
		judge(*sp, call, v);
}

/* The stage where the verdict is given (not connect). */
static void
on_judge(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;
	struct dnsbl_sess **sp = slot(p);

	(void)arg;
	if (sp != NULL && *sp != NULL && p->session->auth_user == NULL)
		judge(*sp, call, v);
}

/* The client left, or the wait timed out: the client goes on unjudged. */
static void
on_cancel(postern_hook_call_t *call, void *arg, void *call_data)
{
	struct dnsbl_sess *s = call_data;

	(void)arg;
	if (s != NULL && s->call == call)
		s->call = NULL;
}

/* A listed client's message says so, whatever the verdict was. */
static void
on_eod(postern_hook_call_t *call, void *payload, void *arg,
       struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;
	struct dnsbl_sess **sp = slot(p);
	struct dnsbl_sess *s;
	char value[DNSBL_TEXT_MAX + 64];
	size_t i, n;
	int any = 0;

	(void)call;
	(void)arg;
	(void)v;
	if (sp == NULL || (s = *sp) == NULL || cfg.header[0] == '\0' ||
	    p->session->auth_user != NULL)
		return;
	n = (size_t)snprintf(value, sizeof(value), "score=%lld threshold="
	                     "%lld", s->score, cfg.threshold);
	for (i = 0; i < nzones && n < sizeof(value); i++) {
		if (!s->listed[i])
			continue;
		any = 1;
		n += (size_t)snprintf(value + n, sizeof(value) - n, " %s=%s",
		                      zones[i].zone, s->code[i]);
	}
	if (any)
		svc->header_add(p->txn, cfg.header, value, 1);
}

static void
on_disconnect(postern_hook_call_t *call, void *payload, void *arg,
              struct postern_verdict *v)
{
	struct dnsbl_sess **sp = slot(payload);

	(void)call;
	(void)arg;
	(void)v;
	if (sp != NULL)
		sess_free(*sp);
}

/* ---- module ---------------------------------------------------------- */

static int
register_handler(postern_module_t *m, const char *hook, postern_hook_fn fn,
                 int wait)
{
	struct postern_hook_handler handler = {
		.size = sizeof(handler),
		.hook = hook,
		.fn = fn,
		/* After the rate limiter, before filters that read data. */
		.priority = -50,
		.timeout_ms = (unsigned)cfg.timeout_ms,
		.on_timeout = POSTERN_VERDICT_CONTINUE,
		.on_timeout_set = 1,
		.cancel_call = wait ? on_cancel : NULL,
	};

	return host->hook_register(m, &handler);
}

static int
load_exempt(postern_module_t *m)
{
	size_t i;

	nexempt = cfg.exempt.count;
	if (nexempt == 0)
		return 0;
	if ((exempt = calloc(nexempt, sizeof(*exempt))) == NULL)
		return -1;
	for (i = 0; i < nexempt; i++) {
		if (host->network_parse(cfg.exempt.items[i], &exempt[i]) < 0) {
			host->cfg_error(m, host->cfg_lookup(host->cfg_module(m),
			                "exempt"), "filter_dnsbl: '%s' is not "
			                "an address or a network",
			                cfg.exempt.items[i]);
			return -1;
		}
	}
	return 0;
}

static int
dnsbl_init(const struct postern_host *h, postern_module_t *m)
{
	static const char *const judge_hooks[] = {
		NULL, POSTERN_SMTP_HOOK_HELO, POSTERN_SMTP_HOOK_MAIL,
		POSTERN_SMTP_HOOK_RCPT,
	};
	size_t i;

	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), module_keys, &cfg) < 0)
		return -1;
	svc = h->service_lookup(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                        2);
	if (svc == NULL)
		return -1; /* logged by the host */
	nzones = cfg.zones != NULL ? h->cfg_count(cfg.zones) : 0;
	if (nzones == 0 || nzones > DNSBL_MAX_ZONES) {
		h->cfg_error(m, h->cfg_module(m), "filter_dnsbl: list 1 to %d "
		             "zones (zones = ( { zone = \"...\"; } ))",
		             DNSBL_MAX_ZONES);
		return -1;
	}
	if ((zones = calloc(nzones, sizeof(*zones))) == NULL)
		return -1;
	for (i = 0; i < nzones; i++)
		if (zone_load(&zones[i], m, h->cfg_elem(cfg.zones, i)) < 0)
			return -1;
	if (load_exempt(m) < 0)
		return -1;
	if (register_handler(m, POSTERN_SMTP_HOOK_CONNECT, on_connect,
	                     cfg.stage == STAGE_CONNECT) < 0 ||
	    (cfg.stage != STAGE_CONNECT &&
	     register_handler(m, judge_hooks[cfg.stage], on_judge, 1) < 0) ||
	    register_handler(m, POSTERN_SMTP_HOOK_EOD, on_eod, 0) < 0 ||
	    register_handler(m, POSTERN_SMTP_HOOK_DISCONNECT, on_disconnect,
	                     0) < 0)
		return -1;
	return 0;
}

static void
dnsbl_fini(postern_module_t *m)
{
	size_t i;

	(void)m;
	for (i = 0; i < nzones; i++)
		free(zones[i].ranges);
	free(zones);
	zones = NULL;
	free(exempt);
	exempt = NULL;
}

static const char *const deps[] = { "smtp", NULL };

POSTERN_MODULE(.name = "filter_dnsbl", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = dnsbl_init, .fini = dnsbl_fini);
