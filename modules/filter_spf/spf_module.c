/*
 * spf_module.c - filter_spf: checks the SMTP client against the SPF
 * record (RFC 7208) of the MAIL FROM domain (of the HELO name for the
 * null sender, section 2.4; and of the HELO name first with helo_check),
 * acts on the result as the policy says, and records it in the message
 * as Received-SPF (section 9.1) and/or Authentication-Results (RFC 8601).
 *
 *	filter_spf = {
 *	  policy = { fail = "reject"; softfail = "accept";
 *	             temperror = "tempfail"; permerror = "accept"; };
 *	  helo_check = false;
 *	  exempt = [ "192.0.2.0/24" ];
 *	  header = "received-spf";
 *	};
 *
 * The check runs at smtp.mail, answering PENDING while spf_eval.c asks
 * the host's DNS; the result waits in the transaction (txn_slot) for
 * smtp.eod, where the header is added at the top.  Clients that
 * authenticated (submission) and exempt addresses are not checked.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <postern/postern.h>
#include <postern/smtp.h>

#include "spf.h"

enum action { ACT_ACCEPT = 0, ACT_REJECT, ACT_TEMPFAIL };
enum header_kind { HDR_RECEIVED_SPF = 0, HDR_AUTH_RESULTS, HDR_BOTH,
	           HDR_NONE };

static const char *const action_names[] = { "accept", "reject",
	                                     "tempfail", NULL };
static const char *const header_names[] = { "received-spf",
	"authentication-results", "both", "none", NULL };

/* What to do per result, in the order of enum spf_result. */
struct policy {
	int act[SPF_NRESULTS];
};

struct settings {
	struct policy policy;
	int helo_check;
	int check_authenticated;
	struct postern_strlist exempt;
	int header;
	const char *authserv_id;
	long long timeout_ms;
};

#define POLICY_KEY(n, r, d)                                                \
	{ .name = n, .type = POSTERN_CFG_ENUM,                             \
	  .offset = offsetof(struct policy, act) + (r) * sizeof(int),      \
	  .choices = action_names, .def = d,                               \
	  .doc = "on " n ": accept (tag only), reject (5xx) or tempfail "  \
	         "(4xx)" }

static const struct postern_cfg_key policy_keys[] = {
	POLICY_KEY("fail", SPF_FAIL, "reject"),
	POLICY_KEY("softfail", SPF_SOFTFAIL, "accept"),
	POLICY_KEY("neutral", SPF_NEUTRAL, "accept"),
	POLICY_KEY("none", SPF_NONE, "accept"),
	POLICY_KEY("temperror", SPF_TEMPERROR, "tempfail"),
	POLICY_KEY("permerror", SPF_PERMERROR, "accept"),
	POLICY_KEY("pass", SPF_PASS, "accept"),
	{ .name = NULL },
};

static const struct postern_cfg_key module_keys[] = {
	{ .name = "helo_check", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct settings, helo_check), .def = "false",
	  .doc = "check the HELO name first, on its own (RFC 7208 2.3)" },
	{ .name = "check_authenticated", .type = POSTERN_CFG_BOOL,
	  .offset = offsetof(struct settings, check_authenticated),
	  .def = "false",
	  .doc = "check sessions with an authenticated user too" },
	{ .name = "exempt", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct settings, exempt),
	  .doc = "client addresses or networks (CIDR) never checked" },
	{ .name = "header", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct settings, header), .def = "received-spf",
	  .choices = header_names,
	  .doc = "received-spf, authentication-results, both or none" },
	{ .name = "authserv_id", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct settings, authserv_id),
	  .doc = "Authentication-Results id and receiver; default: host name" },
	{ .name = "timeout", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct settings, timeout_ms), .def = "20s",
	  .min = 1000, .max = 300000,
	  .doc = "an evaluation's limit; past it, the temperror policy" },
	/* Last: posternd -n prints it as a group of its own. */
	{ .name = "policy", .type = POSTERN_CFG_GROUP,
	  .offset = offsetof(struct settings, policy), .schema = policy_keys,
	  .doc = "what each SPF result does to the transaction" },
	{ .name = NULL },
};

/* One identity's check. */
struct check {
	int done;
	const char *identity;   /* "mailfrom" or "helo" */
	const char *sender;     /* local@domain as checked */
	const char *domain;
	struct spf_outcome o;   /* strings in the transaction's pool */
};

/* Per transaction, in its pool. */
struct spf_txn {
	postern_pool_t *pool;
	struct spf_ip ip;
	const char *client;     /* as the session gave it */
	const char *helo;
	struct check checks[2]; /* helo (with helo_check), then mailfrom */
	int ncheck, next;
	struct spf_eval *eval;  /* in flight, or NULL */
	postern_hook_call_t *call;
	const struct postern_smtp_payload *p; /* until the call answers */
	char reply[512];
};

static const struct postern_host *host;
static postern_module_t *self;
static const struct postern_smtp_service *svc;
static struct settings cfg;
static struct postern_network *exempts;
static size_t nexempts;
static char receiver[256];

static int
exempt(const char *peer)
{
	size_t i;

	for (i = 0; i < nexempts; i++)
		if (host->network_match(&exempts[i], peer))
			return 1;
	return 0;
}

static char *
pstr(postern_pool_t *pool, const char *s)
{
	return s != NULL ? host->pool_strndup(pool, s, strlen(s)) : NULL;
}

/* Text from DNS made safe for replies and comments: visible ASCII, no
 * parentheses or backslashes, at most `max` octets. */
static void
sanitize(char *out, size_t outlen, const char *s)
{
	size_t n = 0;

	for (; s != NULL && *s != '\0' && n + 1 < outlen; s++)
		out[n++] = (*s >= 0x20 && *s < 0x7f && strchr("()\\", *s) ==
		            NULL) ? *s : '_';
	out[n] = '\0';
}

static void
record(struct spf_txn *t, const struct spf_outcome *o)
{
	struct check *c = &t->checks[t->next++];

	c->done = 1;
	c->o = *o;
	c->o.mechanism = pstr(t->pool, o->mechanism);
	c->o.problem = pstr(t->pool, o->problem);
	c->o.explanation = pstr(t->pool, o->explanation);
	if (t->p != NULL)
		svc->log(self, t->p, POSTERN_LOG_DEBUG,
		         "identity=%s domain=%s client=%s result=%s "
		         "mechanism=%s problem=%s queries=%u", c->identity,
		         c->domain, t->client, spf_result_name(o->result),
		         c->o.mechanism != NULL ? c->o.mechanism : "-",
		         c->o.problem != NULL ? c->o.problem : "-", o->queries);
}

static void on_done(void *arg, const struct spf_outcome *o);

/* Runs the checks left; 1 when one is in flight. */
static int
proceed(struct spf_txn *t)
{
	struct spf_request req;
	struct spf_outcome now;
	struct check *c;

	while (t->next < t->ncheck) {
		c = &t->checks[t->next];
		memset(&req, 0, sizeof(req));
		req.sender = c->sender;
		req.domain = c->domain;
		req.helo = t->helo;
		req.receiver = receiver;
		req.ip = t->ip;
		t->eval = spf_eval_start(host, self, &req, on_done, t, &now);
		if (t->eval != NULL)
			return 1;
		record(t, &now);
	}
	return 0;
}

static const char *
enhanced(enum spf_result r, int act)
{
	int error = r == SPF_TEMPERROR || r == SPF_PERMERROR;

	/* RFC 7372: X.7.23 the check failed, X.7.24 it could not be
	 * made. */
	if (act == ACT_REJECT)
		return error ? "5.7.24" : "5.7.23";
	return error ? "4.7.24" : "4.7.23";
}

/* The verdict the first check whose policy refuses asks for. */
static void
decide(struct spf_txn *t, struct postern_verdict *v)
{
	char expl[400];
	const struct check *c;
	int i, act;

	for (i = 0; i < t->ncheck; i++) {
		c = &t->checks[i];
		act = c->done ? cfg.policy.act[c->o.result] : ACT_ACCEPT;
		if (act == ACT_ACCEPT)
			continue;
		if (c->o.result == SPF_FAIL && c->o.explanation != NULL) {
			sanitize(expl, sizeof(expl), c->o.explanation);
			snprintf(t->reply, sizeof(t->reply), "SPF fail for "
			         "%s: %s", c->sender, expl);
		} else if (c->o.result == SPF_TEMPERROR ||
		           c->o.result == SPF_PERMERROR) {
			sanitize(expl, sizeof(expl), c->o.problem);
			snprintf(t->reply, sizeof(t->reply), "SPF %s checking "
			         "%s for %s: %s", spf_result_name(c->o.result),
			         c->sender, t->client, expl);
		} else
			snprintf(t->reply, sizeof(t->reply), "SPF %s: %s is "
			         "not permitted to send mail as %s",
			         spf_result_name(c->o.result), t->client,
			         c->sender);
		v->kind = act == ACT_REJECT ? POSTERN_VERDICT_REJECT
		                            : POSTERN_VERDICT_TEMPFAIL;
		v->code = act == ACT_REJECT ? 550 : 451;
		v->enhanced = enhanced(c->o.result, act);
		v->text = t->reply;
		if (t->p != NULL)
			svc->log(self, t->p, POSTERN_LOG_INFO,
			         "%s %s: %d %s", c->identity,
			         spf_result_name(c->o.result), v->code,
			         t->reply);
		return;
	}
}

static void
on_done(void *arg, const struct spf_outcome *o)
{
	struct spf_txn *t = arg;
	struct postern_verdict v;

	record(t, o);
	spf_eval_free(t->eval);
	t->eval = NULL;
	if (proceed(t))
		return;
	memset(&v, 0, sizeof(v));
	decide(t, &v);
	t->p = NULL; /* the payload ends with the resume */
	host->hook_resume(t->call, &v);
}

static void
add_check(struct spf_txn *t, const char *identity, const char *sender,
          const char *domain)
{
	struct check *c = &t->checks[t->ncheck++];

	c->identity = identity;
	c->sender = pstr(t->pool, sender);
	c->domain = pstr(t->pool, domain);
}

static void
on_mail(postern_hook_call_t *call, const struct postern_smtp_payload *p,
        struct postern_verdict *v)
{
	struct spf_ip ip;
	struct spf_txn *t;
	const char *sender = p->envelope->sender, *helo = p->session->helo;
	const char *at;
	void **slot;
	char buf[600];

	if ((p->session->auth_user != NULL && !cfg.check_authenticated) ||
	    spf_ip_parse(p->session->peer, &ip) < 0 ||
	    exempt(p->session->peer))
		return;
	if ((slot = svc->txn_slot(p->txn, self)) == NULL)
		return;
	t = host->pool_alloc(svc->txn_pool(p->txn), sizeof(*t));
	t->pool = svc->txn_pool(p->txn);
	t->ip = ip;
	t->client = pstr(t->pool, p->session->peer);
	t->helo = pstr(t->pool, helo);
	t->p = p;
	*slot = t;
	if (cfg.helo_check && helo != NULL && *sender != '\0') {
		snprintf(buf, sizeof(buf), "postmaster@%s", helo);
		add_check(t, "helo", buf, helo);
	}
	if (*sender == '\0') {
		/* Section 2.4: the null sender is checked as
		 * postmaster@ the HELO name. */
		snprintf(buf, sizeof(buf), "postmaster@%s",
		         helo != NULL ? helo : "");
		add_check(t, "helo", buf, helo != NULL ? helo : "");
	} else {
		at = strrchr(sender, '@');
		add_check(t, "mailfrom", sender, at != NULL ? at + 1 : "");
	}
	if (proceed(t)) {
		t->call = call;
		v->kind = POSTERN_VERDICT_PENDING;
		v->call_data = t;
		return;
	}
	decide(t, v);
	t->p = NULL;
}

/* The call was cancelled (client gone) or timed out: stop the lookups;
 * the check in flight stays a temperror for the header. */
static void
on_cancel(postern_hook_call_t *call, void *arg, void *call_data)
{
	struct spf_txn *t = call_data;
	struct check *c;

	(void)call;
	(void)arg;
	spf_eval_free(t->eval);
	t->eval = NULL;
	t->p = NULL;
	if (t->next < t->ncheck) {
		c = &t->checks[t->next];
		c->done = 1;
		c->o.result = SPF_TEMPERROR;
		c->o.problem = "timed out";
	}
}

/* A key-value pair's value (section 9.1): a dot-atom, else quoted; an
 * Authentication-Results property (RFC 8601 pvalue) may hold an '@'. */
static void
kv(char *out, size_t outlen, const char *key, const char *value)
{
	size_t n, i;
	int atom = *value != '\0';

	for (i = 0; value[i] != '\0'; i++)
		if (!isalnum((unsigned char)value[i]) &&
		    strchr("!#$%&'*+-/=?^_`{|}~.", value[i]) == NULL &&
		    !(value[i] == '@' && strncmp(key, "smtp.", 5) == 0))
			atom = 0;
	if (atom) {
		snprintf(out, outlen, "%s=%s;", key, value);
		return;
	}
	n = (size_t)snprintf(out, outlen, "%s=\"", key);
	for (i = 0; value[i] != '\0' && n + 4 < outlen; i++) {
		if ((unsigned char)value[i] < 0x20 ||
		    (unsigned char)value[i] >= 0x7f)
			continue;
		if (value[i] == '"' || value[i] == '\\')
			out[n++] = '\\';
		out[n++] = value[i];
	}
	snprintf(out + n, outlen - n, "\";");
}

static void
cat(char *out, const char *s, size_t outlen)
{
	size_t n = strlen(out);

	snprintf(out + n, outlen - n, "%s", s);
}

/* Appends `tok` to the header value, folding before 78 columns. */
static void
fold_add(char *out, size_t outlen, size_t *col, const char *tok)
{
	size_t len = strlen(out), tl = strlen(tok);

	if (len > 0 && *col + tl + 1 > 76 && len + 3 < outlen) {
		cat(out, "\r\n\t", outlen);
		*col = 8;
	} else if (len > 0) {
		cat(out, " ", outlen);
		(*col)++;
	}
	cat(out, tok, outlen);
	*col += tl;
}

static void
comment(const struct check *c, const struct spf_txn *t, char *out,
        size_t outlen)
{
	char prob[200];

	sanitize(prob, sizeof(prob), c->o.problem);
	switch (c->o.result) {
	case SPF_PASS:
		snprintf(out, outlen, "(%s: domain of %s designates %s as "
		         "permitted sender)", receiver, c->sender, t->client);
		break;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
		snprintf(out, outlen, "(%s: %sdomain of %s does not designate "
		         "%s as permitted sender)", receiver,
		         c->o.result == SPF_SOFTFAIL ? "transitioning " : "",
		         c->sender, t->client);
		break;
	case SPF_NEUTRAL:
		snprintf(out, outlen, "(%s: %s is neither permitted nor denied "
		         "by domain of %s)", receiver, t->client, c->sender);
		break;
	case SPF_NONE:
		snprintf(out, outlen, "(%s: domain of %s does not designate "
		         "permitted sender hosts)", receiver, c->sender);
		break;
	default:
		snprintf(out, outlen, "(%s: error in processing during lookup "
		         "of %s: %s)", receiver, c->sender, prob);
		break;
	}
}

static void
received_spf(const struct spf_txn *t, const struct check *c,
             postern_smtp_txn_t *txn)
{
	char value[2048], tok[600];
	size_t col = sizeof("Received-SPF:");

	value[0] = '\0';
	fold_add(value, sizeof(value), &col, spf_result_name(c->o.result));
	comment(c, t, tok, sizeof(tok));
	fold_add(value, sizeof(value), &col, tok);
	kv(tok, sizeof(tok), "client-ip", t->client);
	fold_add(value, sizeof(value), &col, tok);
	kv(tok, sizeof(tok), "envelope-from", c->sender);
	fold_add(value, sizeof(value), &col, tok);
	if (t->helo != NULL) {
		kv(tok, sizeof(tok), "helo", t->helo);
		fold_add(value, sizeof(value), &col, tok);
	}
	kv(tok, sizeof(tok), "receiver", receiver);
	fold_add(value, sizeof(value), &col, tok);
	kv(tok, sizeof(tok), "identity", c->identity);
	fold_add(value, sizeof(value), &col, tok);
	if (c->o.mechanism != NULL) {
		kv(tok, sizeof(tok), "mechanism", c->o.mechanism);
		fold_add(value, sizeof(value), &col, tok);
	} else if (c->o.problem != NULL && c->o.result != SPF_NONE) {
		sanitize(tok + 300, 300, c->o.problem);
		kv(tok, 300, "problem", tok + 300);
		fold_add(value, sizeof(value), &col, tok);
	}
	svc->header_add(txn, "Received-SPF", value, 1);
}

/* RFC 8601: one "spf=" per check, the identity as its property. */
static void
auth_results(const struct spf_txn *t, postern_smtp_txn_t *txn)
{
	char value[2048], tok[600], prop[520];
	size_t col = sizeof("Authentication-Results:");
	const struct check *c;
	int i;

	value[0] = '\0';
	snprintf(tok, sizeof(tok), "%s;", cfg.authserv_id);
	fold_add(value, sizeof(value), &col, tok);
	for (i = 0; i < t->ncheck; i++) {
		c = &t->checks[i];
		if (!c->done)
			continue;
		if (i > 0)
			cat(value, ";", sizeof(value));
		snprintf(tok, sizeof(tok), "spf=%s",
		         spf_result_name(c->o.result));
		fold_add(value, sizeof(value), &col, tok);
		kv(prop, sizeof(prop), strcmp(c->identity, "helo") == 0
		                       ? "smtp.helo" : "smtp.mailfrom",
		   strcmp(c->identity, "helo") == 0 ? c->domain : c->sender);
		prop[strlen(prop) - 1] = '\0'; /* no ';' inside a resinfo */
		fold_add(value, sizeof(value), &col, prop);
	}
	svc->header_add(txn, "Authentication-Results", value, 1);
}

static void
on_eod(const struct postern_smtp_payload *p)
{
	void **slot = svc->txn_slot(p->txn, self);
	struct spf_txn *t = slot != NULL ? *slot : NULL;
	int i;

	if (t == NULL || cfg.header == HDR_NONE)
		return;
	/* at_top puts each above the last: Received-SPF ends on top. */
	if (cfg.header == HDR_AUTH_RESULTS || cfg.header == HDR_BOTH)
		auth_results(t, p->txn);
	if (cfg.header == HDR_AUTH_RESULTS)
		return;
	for (i = t->ncheck - 1; i >= 0; i--)
		if (t->checks[i].done)
			received_spf(t, &t->checks[i], p->txn);
}

static void
on_stage(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;

	(void)arg;
	if (p->stage == POSTERN_SMTP_MAIL)
		on_mail(call, p, v);
	else if (p->stage == POSTERN_SMTP_EOD)
		on_eod(p);
}

static int
parse_exempt(const struct postern_host *h, postern_module_t *m)
{
	size_t i;

	nexempts = cfg.exempt.count;
	if (nexempts == 0)
		return 0;
	if ((exempts = calloc(nexempts, sizeof(*exempts))) == NULL)
		abort();
	for (i = 0; i < nexempts; i++)
		if (h->network_parse(cfg.exempt.items[i], &exempts[i]) < 0) {
			h->cfg_error(m, h->cfg_lookup(h->cfg_module(m),
			             "exempt"), "filter_spf: '%s' is no "
			             "address or network", cfg.exempt.items[i]);
			return -1;
		}
	return 0;
}

static int
spf_init(const struct postern_host *h, postern_module_t *m)
{
	static const char *const hooks[] = {
		POSTERN_SMTP_HOOK_MAIL, POSTERN_SMTP_HOOK_EOD,
	};
	struct postern_hook_handler handler = {
		.size = sizeof(handler),
		.fn = on_stage,
		.cancel_call = on_cancel,
		.on_timeout_set = 1,
	};
	size_t i;
	int act;

	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), module_keys, &cfg) < 0)
		return -1;
	svc = h->service_lookup(m, POSTERN_SMTP_SERVICE, POSTERN_SMTP_MAJOR,
	                        1);
	if (svc == NULL) {
		h->log(m, POSTERN_LOG_ERROR, "filter_spf: needs the smtp "
		       "module's service 1.1");
		return -1;
	}
	if (parse_exempt(h, m) < 0)
		return -1;
	if (cfg.authserv_id == NULL || *cfg.authserv_id == '\0') {
		if (gethostname(receiver, sizeof(receiver)) < 0)
			snprintf(receiver, sizeof(receiver), "localhost");
		receiver[sizeof(receiver) - 1] = '\0';
		cfg.authserv_id = receiver;
	} else
		snprintf(receiver, sizeof(receiver), "%s", cfg.authserv_id);
	/* A check that outlives its time is a temperror: its policy. */
	act = cfg.policy.act[SPF_TEMPERROR];
	handler.on_timeout = act == ACT_ACCEPT ? POSTERN_VERDICT_CONTINUE
	                     : act == ACT_REJECT ? POSTERN_VERDICT_REJECT
	                                         : POSTERN_VERDICT_TEMPFAIL;
	handler.timeout_ms = (unsigned)cfg.timeout_ms;
	for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		handler.hook = hooks[i];
		if (h->hook_register(m, &handler) < 0)
			return -1;
	}
	return 0;
}

static void
spf_fini(postern_module_t *m)
{
	(void)m;
	free(exempts);
	exempts = NULL;
}

static const char *const deps[] = { "smtp", NULL };

POSTERN_MODULE(.name = "filter_spf", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = spf_init, .fini = spf_fini);
