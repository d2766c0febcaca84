/*
 * test_dns.c - the worker's resolver (core/dns.c, ht->dns_lookup and
 * dns_addr) against a real DNS server: dnsmasq on a loopback port,
 * serving MX records of several preferences, a null MX (RFC 7505), names
 * without MX, names that do not exist, A, AAAA, TXT and PTR records.
 * The resolver runs on the core's event loop through the host table, as
 * in a worker.
 *
 * Exits 77 (automake's SKIP) when dnsmasq is not installed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "host.h"
#include "loop.h"
#include "dns.h"

static const char *const dnsmasq_paths[] = {
	"/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq", NULL,
};

static char *tmpdir;
static pid_t dnsmasq_pid = -1;
static unsigned dns_port;
static struct loop *loop;
static const struct postern_host *ht;

/* What a callback saw. */
static struct {
	int calls;
	enum postern_dns_status status;
	char hosts[8][64];        /* MX and PTR names */
	unsigned prefs[8];
	char texts[8][256];       /* TXT */
	size_t lens[8];
	size_t n;
	char error[320];
	struct sockaddr_storage addrs[8];
} got;

static const char *
find_dnsmasq(void)
{
	int i;

	for (i = 0; dnsmasq_paths[i] != NULL; i++)
		if (access(dnsmasq_paths[i], X_OK) == 0)
			return dnsmasq_paths[i];
	return NULL;
}

/* A port free for both UDP and TCP on 127.0.0.1 (dnsmasq takes both). */
static unsigned
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	unsigned port = 0;
	int u, t;

	for (int tries = 0; tries < 20 && port == 0; tries++) {
		u = socket(AF_INET, SOCK_DGRAM, 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    getsockname(u, (struct sockaddr *)&sin, &len) == 0) {
			t = socket(AF_INET, SOCK_STREAM, 0);
			if (bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
				port = ntohs(sin.sin_port);
			close(t);
		}
		close(u);
	}
	return port;
}

static int
port_ready(unsigned port)
{
	struct sockaddr_in sin;
	int s, ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s = socket(AF_INET, SOCK_STREAM, 0);
	ok = connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(s);
	return ok;
}

static int
start_dnsmasq(const char *path)
{
	char portarg[32], logpath[512], pidarg[512];
	static char long_txt[6000];
	uint64_t end;
	char *p;
	int i;

	dns_port = free_port();
	if (dns_port == 0)
		return -1;
	snprintf(portarg, sizeof(portarg), "--port=%u", dns_port);
	snprintf(logpath, sizeof(logpath), "%s/dnsmasq.log", tmpdir);
	snprintf(pidarg, sizeof(pidarg), "--pid-file=%s/dnsmasq.pid",
	    tmpdir);
	/* 5,000 octets in 250-octet strings: over POSTERN_DNS_MAX_TXT. */
	p = long_txt + snprintf(long_txt, sizeof(long_txt),
	    "--txt-record=long.test");
	for (i = 0; i < 20; i++) {
		*p++ = ',';
		memset(p, 'a' + i, 250);
		p += 250;
	}
	*p = '\0';
	if ((dnsmasq_pid = fork()) < 0)
		return -1;
	if (dnsmasq_pid == 0) {
		FILE *f = freopen(logpath, "w", stderr);

		(void)f;
		dup2(2, 1);
		execl(path, "dnsmasq", "--no-daemon", portarg,
		    "--listen-address=127.0.0.1", "--bind-interfaces",
		    "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		    pidarg, "--log-queries", "--local=/test/",
		    /* several preferences, two hosts sharing one */
		    "--mx-host=multi.test,mx10a.multi.test,10",
		    "--mx-host=multi.test,mx10b.multi.test,10",
		    "--mx-host=multi.test,mx5.multi.test,5",
		    "--mx-host=multi.test,mx20.multi.test,20",
		    "--host-record=mx5.multi.test,127.0.0.5,::5",
		    /* RFC 7505 null MX */
		    "--mx-host=null.test,.,0",
		    /* a host with an address and no MX: implicit MX */
		    "--host-record=plain.test,127.0.0.6",
		    "--host-record=six.test,::6",
		    /* TXT: one string, several strings, a duplicate, and a
		     * record too long to keep beside a short one */
		    "--txt-record=txt.test,v=spf1 ip4:192.0.2.0/24 -all",
		    "--txt-record=txt.test,part one ,part two",
		    "--txt-record=txt.test,v=spf1 ip4:192.0.2.0/24 -all",
		    long_txt,
		    "--txt-record=long.test,short",
		    /* PTR: two names for one address */
		    "--ptr-record=7.2.0.192.in-addr.arpa,mail.ptr.test",
		    "--ptr-record=7.2.0.192.in-addr.arpa,other.ptr.test",
		    /* a DNSBL entry */
		    "--host-record=2.0.0.127.bl.test,127.0.0.2",
		    (char *)NULL);
		_exit(127);
	}
	end = unit_mono_ms() + 5000;
	while (unit_mono_ms() < end) {
		if (port_ready(dns_port))
			return 0;
		if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
			dnsmasq_pid = -1;
			return -1;
		}
		usleep(20000);
	}
	return -1;
}

static int
suite_init(void)
{
	const char *path = find_dnsmasq();

	tmpdir = unit_tmpdir();
	if (path == NULL || start_dnsmasq(path) < 0) {
		fprintf(stderr, "cannot start dnsmasq\n");
		return -1;
	}
	return 0;
}

static int
suite_clean(void)
{
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
	}
	unit_rm_rf(tmpdir);
	free(tmpdir);
	return 0;
}

static void
setup_with(const char *servers, unsigned timeout_ms, unsigned tries)
{
	struct dns_settings cfg;
	char servbuf[64], err[320];

	loop = loop_create();
	loop_current = loop;
	ht = host_table();
	memset(&got, 0, sizeof(got));
	memset(&cfg, 0, sizeof(cfg));
	if (servers == NULL) {
		snprintf(servbuf, sizeof(servbuf), "127.0.0.1:%u", dns_port);
		servers = servbuf;
	}
	cfg.servers = servers;
	cfg.timeout_ms = timeout_ms;
	cfg.tries = tries;
	err[0] = '\0';
	if (dns_configure(&cfg, err, sizeof(err)) < 0)
		fprintf(stderr, "dns_configure: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(err[0], '\0');
}

static void
setup(void)
{
	setup_with(NULL, 1000, 2);
}

static void
teardown(void)
{
	dns_shutdown();
	loop_destroy(loop);
	loop_current = NULL;
}

static void
on_result(const struct postern_dns_result *r, void *arg)
{
	const struct postern_dns_record *rec;
	size_t i;

	(void)arg;
	got.calls++;
	got.status = r->status;
	got.n = r->nrecords;
	for (i = 0; i < r->nrecords && i < 8; i++) {
		rec = r->records[i];
		snprintf(got.hosts[i], sizeof(got.hosts[i]), "%s",
		    rec->name != NULL ? rec->name : "");
		got.prefs[i] = rec->preference;
		got.addrs[i] = rec->addr;
		got.lens[i] = rec->len;
		if (rec->text != NULL)
			snprintf(got.texts[i], sizeof(got.texts[i]), "%s",
			    rec->text);
	}
	snprintf(got.error, sizeof(got.error), "%s",
	    r->error != NULL ? r->error : "");
	CU_ASSERT_EQUAL(r->status == POSTERN_DNS_OK, r->error == NULL);
	CU_ASSERT_EQUAL(r->status == POSTERN_DNS_OK, r->nrecords > 0);
}

static void
lookup(const char *name, unsigned type)
{
	memset(&got, 0, sizeof(got));
	CU_ASSERT_PTR_NOT_NULL(ht->dns_lookup(NULL, name, type, on_result,
	    NULL));
	/* Never answered inside the call. */
	CU_ASSERT_EQUAL(got.calls, 0);
	UNIT_PUMP_UNTIL(loop, got.calls > 0, 5000);
	CU_ASSERT_EQUAL(got.calls, 1);
	CU_ASSERT_EQUAL(dns_pending(), 0);
}

static void
mx_lookup(const char *domain)
{
	lookup(domain, POSTERN_DNS_MX);
}

static void
addr_lookup(const char *name, unsigned port)
{
	memset(&got, 0, sizeof(got));
	CU_ASSERT_PTR_NOT_NULL(ht->dns_addr(NULL, name, port, on_result, NULL));
	CU_ASSERT_EQUAL(got.calls, 0);
	UNIT_PUMP_UNTIL(loop, got.calls > 0, 5000);
	CU_ASSERT_EQUAL(got.calls, 1);
}

static void
test_mx_preferences(void)
{
	int seen_a_first = 0, seen_b_first = 0, i;

	/* Two hosts share preference 10: over 40 lookups both orders
	 * show up (a fixed order fails with probability 2^-39). */
	for (i = 0; i < 40; i++) {
		mx_lookup("Multi.Test.");
		CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
		CU_ASSERT_EQUAL_FATAL(got.n, 4);
		CU_ASSERT_STRING_EQUAL(got.hosts[0], "mx5.multi.test");
		CU_ASSERT_EQUAL(got.prefs[0], 5);
		CU_ASSERT_EQUAL(got.prefs[1], 10);
		CU_ASSERT_EQUAL(got.prefs[2], 10);
		CU_ASSERT_STRING_EQUAL(got.hosts[3], "mx20.multi.test");
		CU_ASSERT_EQUAL(got.prefs[3], 20);
		if (strcmp(got.hosts[1], "mx10a.multi.test") == 0)
			seen_a_first++;
		else if (strcmp(got.hosts[1], "mx10b.multi.test") == 0)
			seen_b_first++;
	}
	CU_ASSERT_EQUAL(seen_a_first + seen_b_first, 40);
	CU_ASSERT(seen_a_first > 0);
	CU_ASSERT(seen_b_first > 0);
}

static void
test_null_mx(void)
{
	mx_lookup("null.test");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NULL_MX);
	CU_ASSERT_EQUAL(got.n, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(got.error, "null MX"));
}

static void
test_no_mx(void)
{
	/* The name exists without MX: no data (the relay then takes the
	 * domain itself, RFC 5321's implicit MX). */
	mx_lookup("plain.test");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NODATA);
	CU_ASSERT_EQUAL(got.n, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(got.error, "plain.test"));
}

static void
test_nxdomain(void)
{
	mx_lookup("nowhere.test");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NXDOMAIN);
	CU_ASSERT_PTR_NOT_NULL(strstr(got.error, "nowhere.test"));
	/* An invalid name answers the same way, later, not at once. */
	mx_lookup("bad..name");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NXDOMAIN);
	mx_lookup("");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NXDOMAIN);
}

static void
test_refused_is_temporary(void)
{
	/* dnsmasq has no upstream: REFUSED for names it does not own. */
	mx_lookup("example.org");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_TEMPFAIL);
	CU_ASSERT_NOT_EQUAL(got.error[0], '\0');
}

static void
test_timeout_is_temporary(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char servers[64];
	uint64_t t0;
	int s;

	teardown();
	/* A server that reads and never answers. */
	s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(s, (struct sockaddr *)&sin, &len);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u",
	    ntohs(sin.sin_port));
	setup_with(servers, 200, 2);
	t0 = unit_mono_ms();
	mx_lookup("multi.test");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_TEMPFAIL);
	/* Two tries of 200 ms (the second may double), not forever. */
	CU_ASSERT(unit_mono_ms() - t0 >= 300);
	CU_ASSERT(unit_mono_ms() - t0 < 3000);
	close(s);
}

static void
test_addresses(void)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;
	char buf[64];

	addr_lookup("mx5.multi.test", 2525);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL_FATAL(got.n, 2);
	/* AAAA first. */
	CU_ASSERT_EQUAL_FATAL(got.addrs[0].ss_family, AF_INET6);
	s6 = (const struct sockaddr_in6 *)&got.addrs[0];
	inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "::5");
	CU_ASSERT_EQUAL(ntohs(s6->sin6_port), 2525);
	CU_ASSERT_EQUAL_FATAL(got.addrs[1].ss_family, AF_INET);
	s4 = (const struct sockaddr_in *)&got.addrs[1];
	inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "127.0.0.5");
	CU_ASSERT_EQUAL(ntohs(s4->sin_port), 2525);

	/* Only one type present: the other's NODATA does not matter. */
	addr_lookup("plain.test", 25);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL(got.n, 1);
	CU_ASSERT_EQUAL(got.addrs[0].ss_family, AF_INET);
	addr_lookup("six.test", 25);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL(got.n, 1);
	CU_ASSERT_EQUAL(got.addrs[0].ss_family, AF_INET6);

	/* A name with MX records and no address: no data, permanent. */
	addr_lookup("multi.test", 25);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NODATA);
	CU_ASSERT_EQUAL(got.n, 0);
	addr_lookup("gone.test", 25);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NXDOMAIN);
	addr_lookup("example.org", 25);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_TEMPFAIL);
}

static void
test_literal_addresses(void)
{
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;

	addr_lookup("192.0.2.7", 587);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL_FATAL(got.n, 1);
	s4 = (const struct sockaddr_in *)&got.addrs[0];
	CU_ASSERT_EQUAL(s4->sin_family, AF_INET);
	CU_ASSERT_EQUAL(ntohl(s4->sin_addr.s_addr), 0xc0000207);
	CU_ASSERT_EQUAL(ntohs(s4->sin_port), 587);
	addr_lookup("::1", 24);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	s6 = (const struct sockaddr_in6 *)&got.addrs[0];
	CU_ASSERT_EQUAL(s6->sin6_family, AF_INET6);
	CU_ASSERT(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
}

static void
test_txt(void)
{
	lookup("TXT.test.", POSTERN_DNS_TXT);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	/* The duplicate is dropped; strings of one record are joined. */
	CU_ASSERT_EQUAL_FATAL(got.n, 2);
	CU_ASSERT_STRING_EQUAL(got.texts[0], "v=spf1 ip4:192.0.2.0/24 -all");
	CU_ASSERT_EQUAL(got.lens[0], strlen(got.texts[0]));
	CU_ASSERT_STRING_EQUAL(got.texts[1], "part one part two");
	/* A record over the limit is dropped, its short neighbour kept. */
	lookup("long.test", POSTERN_DNS_TXT);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL(got.n, 1);
	CU_ASSERT_STRING_EQUAL(got.texts[0], "short");
	lookup("plain.test", POSTERN_DNS_TXT);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NODATA);
	lookup("gone.test", POSTERN_DNS_TXT);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NXDOMAIN);
	CU_ASSERT_PTR_NOT_NULL(strstr(got.error, "TXT lookup of gone.test"));
}

static void
test_ptr(void)
{
	int mail = 0, other = 0;
	size_t i;

	/* An address is turned into its in-addr.arpa name. */
	lookup("192.0.2.7", POSTERN_DNS_PTR);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL_FATAL(got.n, 2);
	for (i = 0; i < got.n; i++) {
		mail += strcmp(got.hosts[i], "mail.ptr.test") == 0;
		other += strcmp(got.hosts[i], "other.ptr.test") == 0;
	}
	CU_ASSERT_EQUAL(mail, 1);
	CU_ASSERT_EQUAL(other, 1);
	/* The name itself works too, and IPv6 (from --host-record). */
	lookup("7.2.0.192.in-addr.arpa", POSTERN_DNS_PTR);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL(got.n, 2);
	lookup("::5", POSTERN_DNS_PTR);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL(got.n, 1);
	CU_ASSERT_STRING_EQUAL(got.hosts[0], "mx5.multi.test");
}

static void
test_single_type(void)
{
	const struct sockaddr_in *s4;

	/* A DNSBL-style query: A alone, no port. */
	lookup("2.0.0.127.bl.test", POSTERN_DNS_A);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL_FATAL(got.n, 1);
	s4 = (const struct sockaddr_in *)&got.addrs[0];
	CU_ASSERT_EQUAL(s4->sin_family, AF_INET);
	CU_ASSERT_EQUAL(ntohl(s4->sin_addr.s_addr), 0x7f000002);
	CU_ASSERT_EQUAL(s4->sin_port, 0);
	lookup("3.0.0.127.bl.test", POSTERN_DNS_A);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NXDOMAIN);
	lookup("mx5.multi.test", POSTERN_DNS_AAAA);
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	CU_ASSERT_EQUAL(got.n, 1);
	CU_ASSERT_EQUAL(got.addrs[0].ss_family, AF_INET6);
	lookup("plain.test", POSTERN_DNS_AAAA);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NODATA);
	/* A type the API does not parse: a clear temporary failure. */
	lookup("multi.test", 2 /* NS */);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_TEMPFAIL);
	CU_ASSERT_PTR_NOT_NULL(strstr(got.error, "not supported"));
}

static void
test_cancel(void)
{
	postern_dns_query_t *q1, *q2;
	uint64_t end;

	q1 = ht->dns_lookup(NULL, "multi.test", POSTERN_DNS_MX, on_result,
	    NULL);
	q2 = ht->dns_addr(NULL, "10.1.2.3", 25, on_result, NULL);
	CU_ASSERT_EQUAL(dns_pending(), 2);
	ht->dns_cancel(q1);
	ht->dns_cancel(q2);
	ht->dns_cancel(NULL);
	CU_ASSERT_EQUAL(dns_pending(), 0);
	end = unit_mono_ms() + 300;
	while (unit_mono_ms() < end)
		loop_run_once(loop, 10);
	CU_ASSERT_EQUAL(got.calls, 0);
	/* The resolver goes on. */
	mx_lookup("null.test");
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_NULL_MX);
}

static void
test_destroy_with_pending(void)
{
	ht->dns_lookup(NULL, "multi.test", POSTERN_DNS_MX, on_result, NULL);
	ht->dns_addr(NULL, "mx5.multi.test", 25, on_result, NULL);
	ht->dns_lookup(NULL, "bad..name", POSTERN_DNS_MX, on_result, NULL);
	ht->dns_lookup(NULL, "txt.test", POSTERN_DNS_TXT, on_result, NULL);
	/* teardown destroys it: no callback, nothing leaked (ASan). */
	teardown();
	CU_ASSERT_EQUAL(got.calls, 0);
	setup();
}

static void
test_lookup_from_callback(void)
{
	/* A callback may start the next lookup (MX then addresses, as the
	 * relay does); that one is not answered inside the call either. */
	char host[64];

	mx_lookup("multi.test");
	CU_ASSERT_EQUAL_FATAL(got.status, POSTERN_DNS_OK);
	snprintf(host, sizeof(host), "%s", got.hosts[0]);
	addr_lookup(host, 25);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_OK);
}

static int chained;

static void
on_mx_chain(const struct postern_dns_result *r, void *arg)
{
	(void)arg;
	if (r->status == POSTERN_DNS_NODATA) {
		ht->dns_addr(NULL, "203.0.113.9", 25, on_result, NULL);
		/* A literal: answered later, not inside this call. */
		chained = got.calls == 0 ? 1 : -1;
	}
}

static void
test_chain_in_callback(void)
{
	chained = 0;
	ht->dns_lookup(NULL, "plain.test", POSTERN_DNS_MX, on_mx_chain, NULL);
	UNIT_PUMP_UNTIL(loop, got.calls > 0, 5000);
	CU_ASSERT_EQUAL(chained, 1);
	CU_ASSERT_EQUAL(got.calls, 1);
	CU_ASSERT_EQUAL(got.status, POSTERN_DNS_OK);
}

static int many_ok, many_calls;

static void
on_many(const struct postern_dns_result *r, void *arg)
{
	(void)arg;
	many_calls++;
	if (r->status == POSTERN_DNS_OK && r->nrecords == 4)
		many_ok++;
}

static void
test_many_at_once(void)
{
	int i;

	/* 200 lookups in flight on one channel, all answered once. */
	many_ok = many_calls = 0;
	for (i = 0; i < 200; i++)
		CU_ASSERT_PTR_NOT_NULL(ht->dns_lookup(NULL, "multi.test",
		    POSTERN_DNS_MX, on_many, NULL));
	CU_ASSERT_EQUAL(dns_pending(), 200);
	UNIT_PUMP_UNTIL(loop, many_calls == 200, 10000);
	CU_ASSERT_EQUAL(many_calls, 200);
	CU_ASSERT_EQUAL(many_ok, 200);
	CU_ASSERT_EQUAL(dns_pending(), 0);
}

static void
test_bad_servers(void)
{
	struct dns_settings cfg;
	char err[320];

	memset(&cfg, 0, sizeof(cfg));
	cfg.servers = "not an address";
	CU_ASSERT_EQUAL(dns_configure(&cfg, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an address"));
}

static CU_TestInfo dns_tests[] = {
	{ "MX hosts by preference, shuffled within one", test_mx_preferences },
	{ "null MX is its own status", test_null_mx },
	{ "a name without MX is no data", test_no_mx },
	{ "NXDOMAIN and invalid names are permanent", test_nxdomain },
	{ "REFUSED is temporary", test_refused_is_temporary },
	{ "a silent server times out as temporary", test_timeout_is_temporary },
	{ "A and AAAA addresses", test_addresses },
	{ "literal addresses need no query", test_literal_addresses },
	{ "TXT records joined, bounded, deduplicated", test_txt },
	{ "PTR from an address or a name", test_ptr },
	{ "A or AAAA alone", test_single_type },
	{ "cancelled lookups never call back", test_cancel },
	{ "destroy with lookups pending", test_destroy_with_pending },
	{ "address lookup after an MX lookup", test_lookup_from_callback },
	{ "lookup started inside a callback", test_chain_in_callback },
	{ "200 lookups at once", test_many_at_once },
	{ "a bad server list is refused", test_bad_servers },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "dns", suite_init, suite_clean, setup, teardown, dns_tests },
	CU_SUITE_INFO_NULL,
};

int
main(void)
{
	if (find_dnsmasq() == NULL) {
		printf("SKIP: dnsmasq is not installed (Debian dnsmasq-base)\n");
		return 77;
	}
	return unit_run(suites);
}
