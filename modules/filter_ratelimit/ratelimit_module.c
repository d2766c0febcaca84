/*
 * ratelimit_module.c - filter_ratelimit: limits on how many connections,
 * messages and recipients a client address, an authenticated user or a
 * sender domain may make over a sliding window, holding over every worker
 * (host->rates_*), with 4xx answers, as Postfix's anvil limits do.
 *
 *	filter_ratelimit = {
 *	  limits = (
 *	    { name = "conn-per-ip"; count = "connections"; per = "client";
 *	      max = 60; window = "1m"; },
 *	    { name = "mail-per-domain"; count = "messages";
 *	      per = "sender_domain"; max = 1000; window = "1h"; },
 *	    { name = "rcpt-per-user"; count = "recipients"; per = "user";
 *	      max = 500; window = "1h"; }
 *	  );
 *	  exempt = [ "192.0.2.10" ];   # client addresses never limited
 *	};
 *
 * count: "connections" (at connect: 421 and the connection closes),
 * "messages" (each MAIL FROM: 450 4.7.1), "recipients" (each RCPT TO:
 * 450 4.7.1, that recipient only).  per: "client" (the address; IPv6 by
 * its /64, which one client holds whole), "user" (the authenticated
 * login; sessions without one are not counted) or "sender_domain" (of
 * MAIL FROM, lower-cased; "<>" for the null sender).  What a refused
 * command would have counted is not counted.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <postern/postern.h>
#include <postern/smtp.h>

enum rl_count { RL_CONNECTIONS = 0, RL_MESSAGES, RL_RECIPIENTS };
enum rl_per { RL_CLIENT = 0, RL_USER, RL_SENDER_DOMAIN };

static const char *const count_names[] = { "connections", "messages",
	                                    "recipients", NULL };
static const char *const per_names[] = { "client", "user",
	                                  "sender_domain", NULL };

struct limit {
	const char *name;
	int count;              /* enum rl_count */
	int per;                /* enum rl_per */
	long long max;
	long long window_ms;
	postern_rates_t *rates;
};

struct settings {
	postern_cfg_t *limits;
	struct postern_strlist exempt;
};

static const struct postern_cfg_key limit_keys[] = {
	{ .name = "name", .type = POSTERN_CFG_STRING,
	  .offset = offsetof(struct limit, name),
	  .flags = POSTERN_CFG_REQUIRED, .doc = "shown in logs and replies" },
	{ .name = "count", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct limit, count), .choices = count_names,
	  .flags = POSTERN_CFG_REQUIRED,
	  .doc = "connections, messages or recipients" },
	{ .name = "per", .type = POSTERN_CFG_ENUM,
	  .offset = offsetof(struct limit, per), .choices = per_names,
	  .flags = POSTERN_CFG_REQUIRED,
	  .doc = "client, user or sender_domain" },
	{ .name = "max", .type = POSTERN_CFG_INT,
	  .offset = offsetof(struct limit, max), .min = 1, .max = 1000000,
	  .flags = POSTERN_CFG_REQUIRED, .doc = "events allowed per window" },
	{ .name = "window", .type = POSTERN_CFG_DURATION,
	  .offset = offsetof(struct limit, window_ms), .def = "1m",
	  .min = 1000, .max = 7 * 86400000LL, .doc = "the sliding window" },
	{ .name = NULL },
};

static const struct postern_cfg_key module_keys[] = {
	{ .name = "limits", .type = POSTERN_CFG_LIST,
	  .offset = offsetof(struct settings, limits), .schema = limit_keys,
	  .doc = "the limits; each counts on its own" },
	{ .name = "exempt", .type = POSTERN_CFG_STRLIST,
	  .offset = offsetof(struct settings, exempt),
	  .doc = "client addresses never limited" },
	{ .name = NULL },
};

static const struct postern_host *host;
static postern_module_t *self;
static struct settings cfg;
static struct limit *limits;
static size_t nlimits;

/* The client's address as the key: IPv6 by its /64. */
static size_t
client_key(const char *peer, char *out, size_t outlen)
{
	struct in6_addr a6;

	if (inet_pton(AF_INET6, peer, &a6) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED(&a6)) {
		memset(a6.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen) != NULL)
			return strlen(out);
	}
	snprintf(out, outlen, "%s", peer);
	return strlen(out);
}

/* The key `l` counts under for this payload; 0: not counted. */
static size_t
key_of(const struct limit *l, const struct postern_smtp_payload *p,
       char *out, size_t outlen)
{
	const char *at, *s;
	size_t n = 0;

	switch (l->per) {
	case RL_CLIENT:
		return client_key(p->session->peer, out, outlen);
	case RL_USER:
		if (p->session->auth_user == NULL)
			return 0;
		snprintf(out, outlen, "%s", p->session->auth_user);
		return strlen(out);
	default:
		if (p->envelope == NULL)
			return 0;
		s = p->envelope->sender;
		if (*s == '\0') {
			snprintf(out, outlen, "<>");
			return 2;
		}
		at = strrchr(s, '@');
		for (s = at != NULL ? at + 1 : s; *s != '\0' && n + 1 < outlen;
		     s++)
			out[n++] = (char)tolower((unsigned char)*s);
		out[n] = '\0';
		return n;
	}
}

static int
exempt(const char *peer)
{
	size_t i;

	for (i = 0; i < cfg.exempt.count; i++)
		if (strcmp(cfg.exempt.items[i], peer) == 0)
			return 1;
	return 0;
}

static void
refuse(const struct limit *l, const struct postern_smtp_payload *p,
       const char *key, unsigned rate, struct postern_verdict *v)
{
	static char text[200];

	host->log(self, POSTERN_LOG_NOTICE, "filter_ratelimit: %s: session "
	          "%llu: %s %s %s: %u in %lld ms, over %lld",
	          l->name, (unsigned long long)p->session->id,
	          count_names[l->count], per_names[l->per], key, rate,
	          l->window_ms, l->max);
	v->kind = POSTERN_VERDICT_TEMPFAIL;
	v->enhanced = "4.7.1";
	v->code = 450;
	snprintf(text, sizeof(text), "too many %s from you (%s), try again "
	         "later", count_names[l->count], l->name);
	v->text = text; /* copied by the host when the handler returns */
	if (l->count == RL_CONNECTIONS) {
		v->code = 421;
		v->enhanced = "4.7.0";
		v->flags = POSTERN_VERDICT_DISCONNECT;
	}
}

static void
on_stage(postern_hook_call_t *call, void *payload, void *arg,
         struct postern_verdict *v)
{
	const struct postern_smtp_payload *p = payload;
	int count = p->stage == POSTERN_SMTP_CONNECT ? RL_CONNECTIONS
	            : p->stage == POSTERN_SMTP_MAIL ? RL_MESSAGES
	                                            : RL_RECIPIENTS;
	char key[512];
	unsigned rate;
	size_t i, n;

	(void)call;
	(void)arg;
	if (exempt(p->session->peer))
		return;
	for (i = 0; i < nlimits; i++) {
		if (limits[i].count != count ||
		    (n = key_of(&limits[i], p, key, sizeof(key))) == 0)
			continue;
		if (host->rates_hit(limits[i].rates, key, n, 1,
		                    (unsigned)limits[i].max, &rate) !=
		    POSTERN_OK) {
			refuse(&limits[i], p, key, rate, v);
			return;
		}
	}
}

static int
ratelimit_init(const struct postern_host *h, postern_module_t *m)
{
	static const char *const hooks[] = {
		POSTERN_SMTP_HOOK_CONNECT, POSTERN_SMTP_HOOK_MAIL,
		POSTERN_SMTP_HOOK_RCPT,
	};
	struct postern_hook_handler handler = {
		.size = sizeof(handler),
		.fn = on_stage,
		/* Before filters that cost more than a counter. */
		.priority = -100,
	};
	size_t i;

	host = h;
	self = m;
	if (POSTERN_CFG_PARSE(h, m, h->cfg_module(m), module_keys, &cfg) < 0)
		return -1;
	nlimits = cfg.limits != NULL ? h->cfg_count(cfg.limits) : 0;
	if (nlimits == 0) {
		h->cfg_error(m, h->cfg_module(m), "filter_ratelimit: no limits "
		             "listed");
		return -1;
	}
	if ((limits = calloc(nlimits, sizeof(*limits))) == NULL)
		return -1;
	for (i = 0; i < nlimits; i++) {
		if (POSTERN_CFG_PARSE(h, m, h->cfg_elem(cfg.limits, i),
		                      limit_keys, &limits[i]) < 0)
			return -1;
		limits[i].rates = h->rates_create(
		    m, (unsigned)limits[i].window_ms);
		if (limits[i].rates == NULL)
			return -1;
	}
	for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		handler.hook = hooks[i];
		if (h->hook_register(m, &handler) < 0)
			return -1;
	}
	return 0;
}

static void
ratelimit_fini(postern_module_t *m)
{
	(void)m;
	free(limits);
	limits = NULL;
}

static const char *const deps[] = { "smtp", NULL };

POSTERN_MODULE(.name = "filter_ratelimit", .version = "1.0",
               .kind = POSTERN_KIND_FILTER, .depends = deps,
               .init = ratelimit_init, .fini = ratelimit_fini);
