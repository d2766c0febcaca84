#!/usr/bin/env python3
"""filter_spf on a posternd whose DNS is a dnsmasq serving .test SPF
records: pass (ip4, include, redirect, a, a/24, mx, ptr, exists with
%{i}), fail with the exp= explanation in the 550, softfail accepted and
recorded, the limits of RFC 7208 4.6.4 (10 lookups, 2 void lookups) and
two records as permerror, no record as none, the null sender checked by
its HELO name, authenticated and exempt clients not checked, and a DNS
that does not answer as temperror (451).  Clients connect from
127.0.0.1, and from 127.0.0.2 and 127.0.0.3 (loopback too) to be
another address."""
import socket
import time

from smtp_common import Raw, smtp_server, stop_clean, tls_context, \
    wait_messages
from testlib import Dnsmasq, Runner, Skip, free_port
import smtplib

R = Runner("filter_spf")

RECORDS = [
    "--txt-record=pass.test,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all "
    "exp=explain.fail.test",
    "--txt-record=explain.fail.test,%{i} is not allowed to send for %{d}",
    "--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all",
    "--txt-record=inc.test,v=spf1 include:other.test -all",
    "--txt-record=other.test,v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.0/30 "
    "-all",
    "--txt-record=redir.test,v=spf1 ?ip4:192.0.2.9 redirect=pass.test",
    "--txt-record=redirfail.test,v=spf1 redirect=fail.test",
    "--txt-record=a.test,v=spf1 a:host.a.test -all",
    "--txt-record=acidr.test,v=spf1 a:host.a.test/24 -all",
    "--host-record=host.a.test,127.0.0.1",
    "--txt-record=mx.test,v=spf1 mx -all",
    "--mx-host=mx.test,mail.mx.test,10",
    "--host-record=mail.mx.test,127.0.0.1",
    "--txt-record=ptr.test,v=spf1 ptr -all",
    "--host-record=host.ptr.test,127.0.0.1",
    "--ptr-record=1.0.0.127.in-addr.arpa,host.ptr.test",
    "--txt-record=exists.test,v=spf1 exists:%{i}.ok.exists.test -all",
    "--host-record=127.0.0.1.ok.exists.test,127.0.0.2",
    "--txt-record=limit.test,v=spf1 " + " ".join(["a:h.lim.test"] * 11) +
    " +all",
    "--txt-record=limit10.test,v=spf1 " + " ".join(["a:h.lim.test"] * 10) +
    " +all",
    "--host-record=h.lim.test,192.0.2.1",
    "--host-record=m.mx10.test,127.0.0.1",
    "--mx-host=mx11.test,m0.mx11.test,0",
    "--mx-host=mx11.test,m1.mx11.test,1",
    "--mx-host=mx11.test,m2.mx11.test,2",
    "--mx-host=mx11.test,m3.mx11.test,3",
    "--mx-host=mx11.test,m4.mx11.test,4",
    "--mx-host=mx11.test,m5.mx11.test,5",
    "--mx-host=mx11.test,m6.mx11.test,6",
    "--mx-host=mx11.test,m7.mx11.test,7",
    "--mx-host=mx11.test,m8.mx11.test,8",
    "--mx-host=mx11.test,m9.mx11.test,9",
    "--mx-host=mx11.test,m10.mx11.test,10",
    "--mx-host=mx10.test,m0.mx10.test,0",
    "--mx-host=mx10.test,m1.mx10.test,1",
    "--mx-host=mx10.test,m2.mx10.test,2",
    "--mx-host=mx10.test,m3.mx10.test,3",
    "--mx-host=mx10.test,m4.mx10.test,4",
    "--mx-host=mx10.test,m5.mx10.test,5",
    "--mx-host=mx10.test,m6.mx10.test,6",
    "--mx-host=mx10.test,m7.mx10.test,7",
    "--mx-host=mx10.test,m8.mx10.test,8",
    "--mx-host=mx10.test,m.mx10.test,20",
    "--txt-record=void.test,v=spf1 a:n1.void.test a:n2.void.test "
    "a:n3.void.test +all",
    "--txt-record=void2.test,v=spf1 a:n1.void.test a:n2.void.test +all",
    "--txt-record=two.test,v=spf1 +all",
    "--txt-record=two.test,v=spf1 -all",
    "--txt-record=nospf.test,hello world",
    "--txt-record=loop.test,v=spf1 include:loop.test +all",
    "--txt-record=mx11.test,v=spf1 mx +all",
    "--txt-record=mx10.test,v=spf1 mx -all",
    "--txt-record=ip6.test,v=spf1 ip6:2001:db8::/32 ip4:127.0.0.0/29 -all",
    "--txt-record=macro.test,v=spf1 exists:%{l1r+}.%{d2}.m.test -all",
    "--host-record=good.macro.test.m.test,192.0.2.1",
    "--txt-record=badmacro.test,v=spf1 exists:%{q}.x.test +all",
    "--txt-record=bad.test,v=spf1 a:1.2.3.4 -all",
    "--txt-record=helo.test,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=badhelo.test,v=spf1 -all",
]

CONF = """
dns_servers = "%s";
dns_timeout = "1s";
dns_tries = 1;
filter_spf = {
  policy = { permerror = "reject"; };
  exempt = [ "127.0.0.3" ];
  header = "both";
  authserv_id = "mx.test.example";
};
"""

try:
    DNS = Dnsmasq(R.tmp, *RECORDS)
except Skip as why:
    DNS = None
    SKIP = why

if DNS is not None:
    SRV = smtp_server(R, relay=False, extra_modules=["filter_spf"],
                      extra_conf=CONF % DNS.servers)
    MX = SRV.port("mx")


class From(Raw):
    """A Raw client from another loopback address."""

    def __init__(self, port, source):
        self.sock = socket.create_connection(("127.0.0.1", port), 10.0,
                                             (source, 0))
        self.buf = b""


def session(source="127.0.0.1", helo="client.test", port=None):
    c = From(port or MX, source)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO %s" % helo)[0] == 250
    return c


def mail(sender, source="127.0.0.1", helo="client.test"):
    """The reply to MAIL FROM on a fresh session."""
    c = session(source, helo)
    try:
        return c.cmd("MAIL FROM:<%s>" % sender)
    finally:
        c.cmd("QUIT")
        c.close()


def deliver(sender, source="127.0.0.1", helo="client.test", srv=None):
    """Sends a message to alice; the header section as delivered."""
    srv = srv or SRV
    before = len(srv.messages("alice@example.org"))
    c = session(source, helo, port=srv.port("mx"))
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: spf\r\n\r\nhello\r\n.\r\n")
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    c.close()
    msgs = wait_messages(srv, "alice@example.org", before + 1)
    assert len(msgs) == before + 1
    head = msgs[-1].split(b"\r\n\r\n", 1)[0].decode()
    return head.replace("\r\n\t", " ").replace("\r\n ", " ")


def field(head, name):
    for ln in head.split("\r\n"):
        if ln.lower().startswith(name.lower() + ":"):
            return ln[len(name) + 1:].strip()
    raise AssertionError("no %s in %r" % (name, head))


def ok(sender, **kw):
    code, text = mail(sender, **kw)
    assert code == 250, (sender, code, text)


def refused(sender, code, enhanced, **kw):
    got, text = mail(sender, **kw)
    assert got == code and text[0].startswith(enhanced), (sender, got,
                                                           text)
    return text[0]


def test_pass_ip4_delivered_with_headers(r):
    head = deliver("someone@pass.test")
    spf = field(head, "Received-SPF")
    assert spf.startswith("pass "), spf
    for kv in ("client-ip=127.0.0.1;", 'envelope-from="someone@pass.test";'
               if '"' in spf else "envelope-from=someone@pass.test;",
               "helo=client.test;", "identity=mailfrom;",
               "receiver=mx.test.example;"):
        assert kv in spf, (kv, spf)
    assert "mechanism=" in spf and "ip4:127.0.0.1" in spf, spf
    ar = field(head, "Authentication-Results")
    assert ar.startswith("mx.test.example;"), ar
    assert "spf=pass smtp.mailfrom=someone@pass.test" in ar, ar
    # The trace field is at the top, above the message's own.
    assert head.index("Received-SPF") < head.index("Subject:")


def test_fail_rejected_with_explanation(r):
    text = refused("x@fail.test", 550, "5.7.23", source="127.0.0.2")
    assert "127.0.0.2 is not allowed to send for fail.test" in text, text
    # The redirect target's exp= explains its fail.
    text = refused("x@redirfail.test", 550, "5.7.23", source="127.0.0.2")
    assert "is not allowed to send for fail.test" in text, text


def test_softfail_accepted_and_recorded(r):
    spf = field(deliver("x@soft.test"), "Received-SPF")
    assert spf.startswith("softfail "), spf
    assert "~all" in spf, spf


def test_include_and_redirect(r):
    assert field(deliver("x@inc.test"), "Received-SPF").startswith("pass ")
    # other.test's 127.0.0.0/30 holds .2, not .4.
    ok("x@inc.test", source="127.0.0.2")
    refused("x@inc.test", 550, "5.7.23", source="127.0.0.4")
    spf = field(deliver("x@redir.test"), "Received-SPF")
    assert spf.startswith("pass "), spf
    refused("x@redir.test", 550, "5.7.23", source="127.0.0.2")


def test_a_and_mx(r):
    ok("x@a.test")
    refused("x@a.test", 550, "5.7.23", source="127.0.0.2")
    ok("x@acidr.test", source="127.0.0.2")
    ok("x@mx.test")
    refused("x@mx.test", 550, "5.7.23", source="127.0.0.2")


def test_ptr(r):
    spf = field(deliver("x@ptr.test"), "Received-SPF")
    assert spf.startswith("pass "), spf
    # 127.0.0.2 has no PTR name (the lookup fails): no match.
    refused("x@ptr.test", 550, "5.7.23", source="127.0.0.2")


def test_exists_with_macro(r):
    ok("x@exists.test")
    refused("x@exists.test", 550, "5.7.23", source="127.0.0.2")


def test_lookup_limit(r):
    # Ten lookups are allowed; the eleventh is a permerror.
    ok("x@limit10.test")
    text = refused("x@limit.test", 550, "5.7.24")
    assert "permerror" in text, text


def test_include_loop_and_mx_names(r):
    # An include of itself stops at the 10-lookup limit.
    text = refused("x@loop.test", 550, "5.7.24")
    assert "more than 10" in text, text
    # Ten MX names are followed (the tenth, m.mx10.test, has an
    # address); eleven are a permerror.
    ok("x@mx10.test")
    text = refused("x@mx11.test", 550, "5.7.24")
    assert "MX" in text, text


def test_ip6_and_macros(r):
    ok("x@ip6.test", source="127.0.0.7")
    refused("x@ip6.test", 550, "5.7.23", source="127.0.0.8")
    # %{l1r+} of good+tag is "good"; %{d2} of macro.test itself.
    ok("good+tag@macro.test")
    refused("bad+tag@macro.test", 550, "5.7.23")
    refused("x@badmacro.test", 550, "5.7.24")


def test_void_lookup_limit(r):
    ok("x@void2.test")
    text = refused("x@void.test", 550, "5.7.24")
    assert "void" in text, text


def test_two_records_and_bad_syntax(r):
    text = refused("x@two.test", 550, "5.7.24")
    assert "two or more" in text, text
    refused("x@bad.test", 550, "5.7.24")


def test_no_record_is_none(r):
    head = deliver("x@nospf.test")
    assert field(head, "Received-SPF").startswith("none "), head
    assert "spf=none" in field(head, "Authentication-Results")
    ok("x@nothing-here.test")


def test_null_sender_uses_helo(r):
    head = deliver("", helo="helo.test")
    spf = field(head, "Received-SPF")
    assert spf.startswith("pass ") and "identity=helo;" in spf, spf
    assert "spf=pass smtp.helo=helo.test" in field(
        head, "Authentication-Results")
    refused("", 550, "5.7.23", helo="badhelo.test")


def test_authenticated_and_exempt_not_checked(r):
    with smtplib.SMTP("127.0.0.1", SRV.port("sub"), timeout=10) as s:
        s.starttls(context=tls_context())
        s.ehlo("laptop.example")
        s.login("bob@example.org", "bob-pw")
        # Checked, example.org (not served by dnsmasq) would be a
        # temperror: 451.
        assert s.mail("bob@example.org")[0] == 250
        s.rset()
    ok("x@fail.test", source="127.0.0.3")
    head = deliver("x@fail.test", source="127.0.0.3")
    assert "Received-SPF" not in head, head


def test_temperror_when_dns_is_down(r):
    srv = smtp_server(R, name="nodns", relay=False,
                      extra_modules=["filter_spf"],
                      extra_conf=CONF % ("127.0.0.1:%d" % free_port()))
    try:
        c = session(port=srv.port("mx"))
        code, text = c.cmd("MAIL FROM:<x@pass.test>")
        assert code == 451 and text[0].startswith("4.7.24"), (code, text)
        c.cmd("QUIT")
        c.close()
    finally:
        stop_clean(srv)


def test_helo_check_and_authentication_results(r):
    """helo_check: the HELO name is checked first, on its own; with
    header = "authentication-results" only that field is added."""
    conf = CONF.replace('header = "both";', 'header = "authentication-'
                        'results"; helo_check = true;').replace(
        'permerror = "reject";', 'softfail = "tempfail";')
    srv = smtp_server(R, name="helo", relay=False,
                      extra_modules=["filter_spf"],
                      extra_conf=conf % DNS.servers)
    try:
        c = session(helo="badhelo.test", port=srv.port("mx"))
        code, text = c.cmd("MAIL FROM:<x@pass.test>")
        assert code == 550 and text[0].startswith("5.7.23"), (code, text)
        assert "postmaster@badhelo.test" in text[0], text
        code, text = c.cmd("MAIL FROM:<x@soft.test>")
        assert code == 550, (code, text)
        c.close()
        c = session(helo="helo.test", port=srv.port("mx"))
        code, text = c.cmd("MAIL FROM:<x@soft.test>")
        assert code == 451 and text[0].startswith("4.7.23"), (code, text)
        c.close()
        head = deliver("x@pass.test", helo="helo.test", srv=srv)
        assert "Received-SPF" not in head, head
        ar = field(head, "Authentication-Results")
        assert ar == ("mx.test.example; spf=pass smtp.helo=helo.test; "
                      "spf=pass smtp.mailfrom=x@pass.test"), ar
    finally:
        stop_clean(srv)


def test_timeout_and_client_gone(r):
    """A DNS server that never answers: the check's time (1 s) runs out
    and the temperror policy answers 451; a client that leaves during a
    check cancels its lookups; the server stops cleanly after both."""
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    servers = "127.0.0.1:%d" % mute.getsockname()[1]
    conf = CONF.replace("exempt", 'timeout = "1s"; exempt').replace(
        'dns_timeout = "1s";', 'dns_timeout = "10s";')
    srv = smtp_server(R, name="mute", relay=False,
                      extra_modules=["filter_spf"],
                      extra_conf=conf % servers)
    try:
        c = session(port=srv.port("mx"))
        c.send("MAIL FROM:<x@pass.test>\r\n")
        c.close()
        c = session(port=srv.port("mx"))
        t0 = time.monotonic()
        code, text = c.cmd("MAIL FROM:<x@pass.test>")
        assert code == 451, (code, text)
        assert time.monotonic() - t0 < 5
        assert c.cmd("NOOP")[0] == 250
        c.close()
    finally:
        stop_clean(srv)
        mute.close()


CASES = (test_pass_ip4_delivered_with_headers,
         test_fail_rejected_with_explanation,
         test_softfail_accepted_and_recorded, test_include_and_redirect,
         test_a_and_mx, test_ptr, test_exists_with_macro,
         test_lookup_limit, test_include_loop_and_mx_names,
         test_ip6_and_macros, test_void_lookup_limit,
         test_two_records_and_bad_syntax, test_no_record_is_none,
         test_null_sender_uses_helo,
         test_authenticated_and_exempt_not_checked,
         test_temperror_when_dns_is_down,
         test_helo_check_and_authentication_results,
         test_timeout_and_client_gone)

if DNS is None:
    def test_skipped(r):
        raise SKIP
    R.run(test_skipped)
    R.finish()

for t in CASES:
    R.run(t)
if R.failed:
    print(SRV.log())


def test_server_stops_cleanly(r):
    stop_clean(SRV)
    DNS.stop()


R.run(test_server_stops_cleanly)
R.finish()
