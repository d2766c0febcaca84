/*
 * relay_route.c - via strings and the route table (see relay_route.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "relay_route.h"

struct relay_routes {
	struct relay_route *v;
	size_t n, cap;
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* 1 if `s` starts with `prefix`, ignoring ASCII case. */
static int
has_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* A port: 1-65535, decimal digits only. */
static int
parse_port(const char *via, const char *s, unsigned *port, char *err,
           size_t errlen)
{
	unsigned long v = 0;
	const char *p;

	if (*s == '\0') {
		snprintf(err, errlen, "via '%s': empty port", via);
		return -1;
	}
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			snprintf(err, errlen, "via '%s': port '%s' is not a "
			    "number", via, s);
			return -1;
		}
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			break;
	}
	if (v < 1 || v > 65535) {
		snprintf(err, errlen, "via '%s': port out of range 1-65535",
		    via);
		return -1;
	}
	*port = (unsigned)v;
	return 0;
}

static int
is_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	    inet_pton(AF_INET6, s, buf) == 1;
}

/* A host name (RFC 1123 letters, digits, hyphens, dots, and octets >=
 * 128 for UTF-8 names, labels of 1-63 octets) or an IP address;
 * lower-cased into out. */
static int
check_host(const char *via, const char *s, size_t len, char *out,
           char *err, size_t errlen)
{
	size_t i, label = 0;
	unsigned char c;

	if (len == 0) {
		snprintf(err, errlen, "via '%s': empty host", via);
		return -1;
	}
	if (len > RELAY_HOST_MAX) {
		snprintf(err, errlen, "via '%s': host longer than %d octets",
		    via, RELAY_HOST_MAX);
		return -1;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	if (is_ip(out))
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0) {
				snprintf(err, errlen, "via '%s': empty label "
				    "in host '%s'", via, out);
				return -1;
			}
			label = 0;
			continue;
		}
		if (!(c >= 128 || c == '-' || c == '_' ||
		    (c >= '0' && c <= '9') || (lower(c) >= 'a' &&
		    lower(c) <= 'z'))) {
			snprintf(err, errlen, "via '%s': host '%s' has a bad "
			    "character (0x%02x)", via, out, c);
			return -1;
		}
		if (++label > 63) {
			snprintf(err, errlen, "via '%s': a label of host '%s' "
			    "is longer than 63 octets", via, out);
			return -1;
		}
		out[i] = (char)lower(c);
	}
	return 0;
}

/* "[host]" or "[host]:port" or "host" or "host:port" after "smtp:" or
 * "lmtp:"; `def` is the default port. */
static int
parse_hostport(const char *via, const char *s, struct relay_via *out,
               unsigned def, char *err, size_t errlen)
{
	const char *end, *colon;

	out->port = def;
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL) {
			snprintf(err, errlen, "via '%s': '[' without ']'",
			    via);
			return -1;
		}
		if (check_host(via, s + 1, (size_t)(end - s - 1), out->host,
		    err, errlen) < 0)
			return -1;
		out->literal = 1;
		if (end[1] == '\0')
			goto done;
		if (end[1] != ':') {
			snprintf(err, errlen, "via '%s': '%s' after ']' (a "
			    "port is written ]:25)", via, end + 1);
			return -1;
		}
		if (parse_port(via, end + 2, &out->port, err, errlen) < 0)
			return -1;
		goto done;
	}
	colon = strchr(s, ':');
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		snprintf(err, errlen, "via '%s': an IPv6 address is written "
		    "in brackets, [::1]:25", via);
		return -1;
	}
	if (check_host(via, s, colon != NULL ? (size_t)(colon - s) :
	    strlen(s), out->host, err, errlen) < 0)
		return -1;
	if (colon != NULL &&
	    parse_port(via, colon + 1, &out->port, err, errlen) < 0)
		return -1;
done:
	out->is_ip = is_ip(out->host);
	return 0;
}

int
relay_via_parse(const char *s, struct relay_via *out, char *err,
                size_t errlen)
{
	const char *path;

	memset(out, 0, sizeof(*out));
	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "via is empty (mx, smtp:host, "
		    "smtp:[host]:port, lmtp:host:port or lmtp:unix:/path)");
		return -1;
	}
	if (strcasecmp(s, "mx") == 0) {
		out->kind = RELAY_VIA_MX;
		return 0;
	}
	if (has_prefix(s, "smtp:")) {
		out->kind = RELAY_VIA_SMTP;
		return parse_hostport(s, s + 5, out, 25, err, errlen);
	}
	if (has_prefix(s, "lmtp:unix:")) {
		out->kind = RELAY_VIA_LMTP_UNIX;
		path = s + 10;
		if (*path != '/') {
			snprintf(err, errlen, "via '%s': the socket path must "
			    "be absolute", s);
			return -1;
		}
		if (strlen(path) > RELAY_PATH_MAX) {
			snprintf(err, errlen, "via '%s': socket path longer "
			    "than %d octets", s, RELAY_PATH_MAX);
			return -1;
		}
		strcpy(out->host, path);
		return 0;
	}
	if (has_prefix(s, "lmtp:")) {
		out->kind = RELAY_VIA_LMTP;
		if (parse_hostport(s, s + 5, out, 24, err, errlen) < 0)
			return -1;
		out->literal = 1;
		return 0;
	}
	snprintf(err, errlen, "via '%s': unknown kind (mx, smtp:, lmtp:)", s);
	return -1;
}

char *
relay_via_format(const struct relay_via *v, char *buf, size_t len)
{
	switch (v->kind) {
	case RELAY_VIA_MX:
		snprintf(buf, len, "mx");
		break;
	case RELAY_VIA_SMTP:
		if (v->literal)
			snprintf(buf, len, "smtp:[%s]:%u", v->host, v->port);
		else if (v->port != 25)
			snprintf(buf, len, "smtp:%s:%u", v->host, v->port);
		else
			snprintf(buf, len, "smtp:%s", v->host);
		break;
	case RELAY_VIA_LMTP:
		if (strchr(v->host, ':') != NULL)
			snprintf(buf, len, "lmtp:[%s]:%u", v->host, v->port);
		else
			snprintf(buf, len, "lmtp:%s:%u", v->host, v->port);
		break;
	case RELAY_VIA_LMTP_UNIX:
		snprintf(buf, len, "lmtp:unix:%s", v->host);
		break;
	}
	return buf;
}

static const char *const tls_names[] = { "none", "may", "encrypt", "verify" };

int
relay_tls_policy_parse(const char *s, enum relay_tls_policy *out, char *err,
                       size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof(tls_names) / sizeof(tls_names[0]); i++) {
		if (s != NULL && strcasecmp(s, tls_names[i]) == 0) {
			*out = (enum relay_tls_policy)i;
			return 0;
		}
	}
	snprintf(err, errlen, "tls '%s': not none, may, encrypt or verify",
	    s != NULL ? s : "");
	return -1;
}

const char *
relay_tls_policy_name(enum relay_tls_policy p)
{
	return (unsigned)p < sizeof(tls_names) / sizeof(tls_names[0]) ?
	    tls_names[p] : "?";
}

/* Lower-cases a domain, without one trailing dot, into out (at least
 * RELAY_HOST_MAX + 1 octets); -1 if too long. */
static int
norm_domain(const char *s, char *out)
{
	size_t len = strlen(s), i;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len > RELAY_HOST_MAX)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)lower((unsigned char)s[i]);
	out[len] = '\0';
	return 0;
}

/* A pattern: "*", "*.name" or "name"; names as check_host without IP
 * addresses, plus domain literals "[...]" which match exactly. */
static int
check_pattern(const char *pat, char *err, size_t errlen)
{
	const char *name = pat, *p;
	size_t label = 0;
	unsigned char c;

	if (*pat == '\0') {
		snprintf(err, errlen, "route domain is empty");
		return -1;
	}
	if (strcmp(pat, "*") == 0 || *pat == '[')
		return 0;
	if (strncmp(pat, "*.", 2) == 0)
		name = pat + 2;
	if (*name == '\0') {
		snprintf(err, errlen, "route domain '%s': no name after '*.'",
		    pat);
		return -1;
	}
	for (p = name; *p != '\0'; p++) {
		c = (unsigned char)*p;
		if (c == '*') {
			snprintf(err, errlen, "route domain '%s': '*' only as "
			    "\"*\" or at the start of \"*.name\"", pat);
			return -1;
		}
		if (c <= ' ' || c == 0x7f || c == '@' || c == ',' ||
		    c == ':' || c == '/' || c == '\\') {
			snprintf(err, errlen, "route domain '%s': bad "
			    "character (0x%02x)", pat, c);
			return -1;
		}
		if (c == '.') {
			if (label == 0) {
				snprintf(err, errlen, "route domain '%s': empty "
				    "label", pat);
				return -1;
			}
			label = 0;
		} else if (++label > 63) {
			snprintf(err, errlen, "route domain '%s': a label is "
			    "longer than 63 octets", pat);
			return -1;
		}
	}
	return 0;
}

struct relay_routes *
relay_routes_create(void)
{
	return calloc(1, sizeof(struct relay_routes));
}

void
relay_routes_free(struct relay_routes *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->v[i].pattern);
		free(t->v[i].auth_file);
	}
	free(t->v);
	free(t);
}

int
relay_routes_add(struct relay_routes *t, const struct relay_route_spec *spec,
                 char *err, size_t errlen)
{
	struct relay_route r, *v;
	char pat[RELAY_HOST_MAX + 1];
	size_t i, cap;

	memset(&r, 0, sizeof(r));
	if (spec->domain != NULL && strcmp(spec->domain, "*.") == 0) {
		snprintf(err, errlen, "route domain '*.': no name after '*.'");
		return -1;
	}
	if (spec->domain == NULL || norm_domain(spec->domain, pat) < 0) {
		snprintf(err, errlen, "route domain '%s': longer than %d "
		    "octets", spec->domain != NULL ? spec->domain : "",
		    RELAY_HOST_MAX);
		return -1;
	}
	if (check_pattern(pat, err, errlen) < 0)
		return -1;
	for (i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].pattern, pat) == 0) {
			snprintf(err, errlen, "route domain '%s' is given "
			    "twice", spec->domain);
			return -1;
		}
	}
	if (relay_via_parse(spec->via, &r.via, err, errlen) < 0)
		return -1;
	r.tls = RELAY_TLS_MAY;
	if (spec->tls != NULL &&
	    relay_tls_policy_parse(spec->tls, &r.tls, err, errlen) < 0)
		return -1;
	if (r.via.kind == RELAY_VIA_LMTP_UNIX && r.tls > RELAY_TLS_MAY) {
		snprintf(err, errlen, "route '%s': tls %s over a unix socket",
		    spec->domain, relay_tls_policy_name(r.tls));
		return -1;
	}
	if (t->n == t->cap) {
		cap = t->cap > 0 ? t->cap * 2 : 8;
		if ((v = reallocarray(t->v, cap, sizeof(*v))) == NULL)
			goto nomem;
		t->v = v;
		t->cap = cap;
	}
	if ((r.pattern = strdup(pat)) == NULL)
		goto nomem;
	if (spec->auth_file != NULL &&
	    (r.auth_file = strdup(spec->auth_file)) == NULL) {
		free(r.pattern);
		goto nomem;
	}
	t->v[t->n++] = r;
	return 0;
nomem:
	snprintf(err, errlen, "route '%s': %s", spec->domain, strerror(ENOMEM));
	return -1;
}

const struct relay_route *
relay_routes_match(const struct relay_routes *t, const char *domain)
{
	const struct relay_route *best = NULL, *def = NULL;
	char dom[RELAY_HOST_MAX + 1];
	size_t i, dlen, slen, blen = 0;
	const char *pat;

	if (domain == NULL || norm_domain(domain, dom) < 0)
		dom[0] = '\0';
	dlen = strlen(dom);
	for (i = 0; i < t->n; i++) {
		pat = t->v[i].pattern;
		if (strcmp(pat, "*") == 0) {
			def = &t->v[i];
			continue;
		}
		if (pat[0] != '*') {
			if (dlen > 0 && strcmp(pat, dom) == 0)
				return &t->v[i];
			continue;
		}
		/* "*.suffix": dom ends in ".suffix" with a label before. */
		slen = strlen(pat + 1);
		if (dlen > slen && strcmp(dom + dlen - slen, pat + 1) == 0 &&
		    slen > blen) {
			best = &t->v[i];
			blen = slen;
		}
	}
	return best != NULL ? best : def;
}

size_t
relay_routes_count(const struct relay_routes *t)
{
	return t->n;
}

const struct relay_route *
relay_routes_get(const struct relay_routes *t, size_t i)
{
	return i < t->n ? &t->v[i] : NULL;
}
