/*
 * spf_macro.c - the pieces of RFC 7208 that need no DNS: client
 * addresses and CIDR matches, domain name checks (section 4.3) and the
 * macro language (section 7).  Nothing here calls the host, so the unit
 * test links it alone.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "spf.h"

#define VALUE_MAX 1024

static const char *const result_names[SPF_NRESULTS] = {
	"none", "neutral", "pass", "fail", "softfail", "temperror",
	"permerror",
};

const char *
spf_result_name(enum spf_result r)
{
	return (unsigned)r < SPF_NRESULTS ? result_names[r] : "permerror";
}

/* 0 and *ip set, or -1: not an address.  IPv4-mapped IPv6 is IPv4, as
 * the client it stands for (section 5 treats it so for ip4 and a). */
int
spf_ip_parse(const char *text, struct spf_ip *ip)
{
	struct in6_addr a6;

	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, text, ip->addr) == 1) {
		ip->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		ip->family = AF_INET;
		memcpy(ip->addr, a6.s6_addr + 12, 4);
		return 0;
	}
	ip->family = AF_INET6;
	memcpy(ip->addr, a6.s6_addr, 16);
	return 0;
}

/* 1 when the first `prefix` bits of `net` (of `family`) are ip's. */
int
spf_ip_match(const struct spf_ip *ip, const void *net, int family,
             int prefix)
{
	const unsigned char *n = net;
	int bytes = prefix / 8, bits = prefix % 8;
	unsigned char mask;

	if (ip->family != family || prefix < 0 ||
	    prefix > (family == AF_INET ? 32 : 128))
		return 0;
	if (memcmp(ip->addr, n, (size_t)bytes) != 0)
		return 0;
	if (bits == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - bits));
	return (ip->addr[bytes] & mask) == (n[bytes] & mask);
}

/*
 * Section 4.3: a domain with a label over 63 octets, an empty label (but
 * for a final dot), over 253 octets, or a single label is no domain to
 * check.  Octets outside visible ASCII could not have come from the
 * record syntax either.
 */
int
spf_domain_valid(const char *name)
{
	size_t len = strlen(name), label = 0, labels = 0, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (label == 0 || label > 63)
				return 0;
			labels++;
			label = 0;
			continue;
		}
		if ((unsigned char)name[i] <= 0x20 ||
		    (unsigned char)name[i] >= 0x7f)
			return 0;
		label++;
	}
	return labels >= 2;
}

/* Section 7.3: an expanded name over 253 octets loses labels on the
 * left until it fits. */
const char *
spf_domain_truncate(const char *name)
{
	while (strlen(name) > 253 && strchr(name, '.') != NULL)
		name = strchr(name, '.') + 1;
	return name;
}

static void
ip_dotted(const struct spf_ip *ip, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	if (ip->family == AF_INET) {
		inet_ntop(AF_INET, ip->addr, out, (socklen_t)outlen);
		return;
	}
	/* Section 7.3: IPv6 as 32 dot-separated nibbles. */
	for (i = 0; i < 16 && n + 4 < outlen; i++) {
		out[n++] = hex[ip->addr[i] >> 4];
		out[n++] = '.';
		out[n++] = hex[ip->addr[i] & 0xf];
		out[n++] = '.';
	}
	out[n > 0 ? n - 1 : 0] = '\0';
}

/* The value of macro letter `c` (lower case); -1: not a letter here. */
static int
macro_value(const struct spf_macro_ctx *ctx, int c, int explain,
            char *out, size_t outlen)
{
	const char *v = NULL;

	switch (c) {
	case 's':
		v = ctx->sender;
		break;
	case 'l':
		v = ctx->local;
		break;
	case 'o':
		v = ctx->sender_dom;
		break;
	case 'd':
		v = ctx->domain;
		break;
	case 'p':
		v = ctx->ptr != NULL ? ctx->ptr : "unknown";
		break;
	case 'h':
		v = ctx->helo;
		break;
	case 'v':
		v = ctx->ip.family == AF_INET ? "in-addr" : "ip6";
		break;
	case 'i':
		ip_dotted(&ctx->ip, out, outlen);
		return 0;
	case 'c':
		if (!explain)
			return -1;
		inet_ntop(ctx->ip.family, ctx->ip.addr, out, (socklen_t)outlen);
		return 0;
	case 'r':
		if (!explain)
			return -1;
		v = ctx->receiver;
		break;
	case 't':
		if (!explain)
			return -1;
		snprintf(out, outlen, "%lld", ctx->now);
		return 0;
	default:
		return -1;
	}
	snprintf(out, outlen, "%s", v != NULL ? v : "unknown");
	return 0;
}

/*
 * Applies the transformers to `val` in place: split on `delims` (none
 * given: "."), reverse with `rev`, keep the `keep` rightmost parts (0:
 * all), and join with dots.
 */
static void
transform(char *val, const char *delims, int keep, int rev)
{
	static char out[VALUE_MAX];
	char *parts[VALUE_MAX / 2 + 1];
	int n = 0, i, first, step, last, count;
	size_t len = 0, pl;
	char *p = val, *e;

	if (*delims == '\0')
		delims = ".";
	for (;;) {
		parts[n++] = p;
		e = p + strcspn(p, delims);
		if (*e == '\0')
			break;
		*e = '\0';
		p = e + 1;
	}
	/* The rightmost `keep` of the (possibly reversed) parts. */
	count = keep > 0 && keep < n ? keep : n;
	first = rev ? count - 1 : n - count;
	step = rev ? -1 : 1;
	last = rev ? -1 : n;
	for (i = first; i != last; i += step) {
		pl = strlen(parts[i]);
		if (len + pl + 1 >= sizeof(out))
			break;
		if (len > 0)
			out[len++] = '.';
		memcpy(out + len, parts[i], pl);
		len += pl;
	}
	out[len] = '\0';
	memcpy(val, out, len + 1);
}

static int
put(char *out, size_t outlen, size_t *n, const char *s, size_t len)
{
	if (*n + len >= outlen)
		return -1;
	memcpy(out + *n, s, len);
	*n += len;
	out[*n] = '\0';
	return 0;
}

/* Section 7.3: an upper-case letter URL-escapes all but unreserved. */
static int
put_escaped(char *out, size_t outlen, size_t *n, const char *s)
{
	char buf[4];

	for (; *s != '\0'; s++) {
		if (isalnum((unsigned char)*s) || strchr("-._~", *s) != NULL) {
			if (put(out, outlen, n, s, 1) < 0)
				return -1;
			continue;
		}
		snprintf(buf, sizeof(buf), "%%%02X", (unsigned char)*s);
		if (put(out, outlen, n, buf, 3) < 0)
			return -1;
	}
	return 0;
}

/* One "%{...}" at s (len past it); returns octets read or -1. */
static int
expand_one(const struct spf_macro_ctx *ctx, const char *s, size_t len,
           int explain, char *out, size_t outlen, size_t *n, int *toolong)
{
	char val[VALUE_MAX], delims[8] = "";
	size_t i = 3, nd = 0;
	int letter, keep = 0, rev = 0, digits = 0;

	if (len < 4 || !isalpha((unsigned char)s[2]))
		return -1;
	letter = s[2];
	if (macro_value(ctx, tolower(letter), explain, val, sizeof(val)) < 0)
		return -1;
	while (i < len && isdigit((unsigned char)s[i]) && digits < 4) {
		keep = keep * 10 + (s[i++] - '0');
		digits++;
	}
	if (digits > 0 && keep == 0)
		return -1; /* zero parts: nothing left to expand */
	if (i < len && (s[i] == 'r' || s[i] == 'R')) {
		rev = 1;
		i++;
	}
	while (i < len && strchr(".-+,/_=", s[i]) != NULL && s[i] != '\0') {
		if (nd + 1 < sizeof(delims) && strchr(delims, s[i]) == NULL)
			delims[nd++] = s[i];
		delims[nd] = '\0';
		i++;
	}
	delims[nd] = '\0';
	if (i >= len || s[i] != '}')
		return -1;
	transform(val, delims, keep, rev);
	if ((isupper(letter) ? put_escaped(out, outlen, n, val)
	                     : put(out, outlen, n, val, strlen(val))) < 0)
		*toolong = 1;
	return (int)i + 1;
}

/*
 * Expands the macro-string s[len] (an explain-string when `explain`:
 * spaces and the c, r, t letters allowed) into out[outlen].  Returns
 * the length, SPF_MACRO_SYNTAX or SPF_MACRO_TOOLONG.  The syntax is
 * checked whole even when the output is already too long.
 */
int
spf_macro_expand(const struct spf_macro_ctx *ctx, const char *s,
                 size_t len, int explain, char *out, size_t outlen)
{
	size_t i = 0, n = 0;
	int used, toolong = 0;

	if (outlen == 0)
		return SPF_MACRO_TOOLONG;
	out[0] = '\0';
	while (i < len) {
		if (s[i] != '%') {
			if (((unsigned char)s[i] < 0x21 ||
			     (unsigned char)s[i] > 0x7e) &&
			    !(explain && s[i] == ' '))
				return SPF_MACRO_SYNTAX;
			if (put(out, outlen, &n, s + i, 1) < 0)
				toolong = 1;
			i++;
			continue;
		}
		if (i + 1 >= len)
			return SPF_MACRO_SYNTAX;
		switch (s[i + 1]) {
		case '%':
			used = put(out, outlen, &n, "%", 1);
			break;
		case '_':
			used = put(out, outlen, &n, " ", 1);
			break;
		case '-':
			used = put(out, outlen, &n, "%20", 3);
			break;
		case '{':
			used = expand_one(ctx, s + i, len - i, explain, out,
			                  outlen, &n, &toolong);
			if (used < 0)
				return SPF_MACRO_SYNTAX;
			i += (size_t)used;
			continue;
		default:
			return SPF_MACRO_SYNTAX;
		}
		if (used < 0)
			toolong = 1;
		i += 2;
	}
	return toolong ? SPF_MACRO_TOOLONG : (int)n;
}

/* 1 when s[len] asks for %{p}: the caller validates the PTR name first,
 * a costly step taken only for records that want it. */
int
spf_macro_uses_p(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i + 2 < len; i++) {
		if (s[i] != '%')
			continue;
		if (s[i + 1] == '{' && (s[i + 2] == 'p' || s[i + 2] == 'P'))
			return 1;
		i++; /* "%%" and the like: the next octet is not a '%' */
	}
	return 0;
}
