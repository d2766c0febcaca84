#!/usr/bin/env python3
"""filter_dnsbl against dnsmasq on loopback serving three lists: clients
come from different 127.0.0.x addresses, so each is listed differently.

  bl.test  (weight 2): lists .2 (with a TXT reason), .4, .6, and ::1;
                       answers .5 with 127.255.255.254 (an error code)
  bl2.test (weight 1): lists .3 with 127.0.0.2 and .2 with 127.0.0.9,
                       outside its codes (127.0.0.2-127.0.0.3)
  wl.test (weight -5): allows .4

With threshold 2: .2 is refused at each RCPT with the TXT reason, .3
(score 1) and .4 (2 - 5) are accepted with an X-DNSBL header, .5 and .1
are clean, .6 is exempt, an authenticated .2 is let through.  A second
server judges at connect with tempfail, over IPv6 (::1)."""
import smtplib

from smtp_common import Raw, smtp_server, stop_clean, tls_context
from testlib import Dnsmasq, Runner, Skip

R = Runner("filter_dnsbl")


def rev6(addr):
    import ipaddress
    return ".".join(reversed(ipaddress.ip_address(addr).exploded
                             .replace(":", "")))


try:
    DNS = Dnsmasq(
        R.tmp,
        "--host-record=2.0.0.127.bl.test,127.0.0.2",
        "--txt-record=2.0.0.127.bl.test,Listed for spam; see "
        "http://bl.test/q?127.0.0.2",
        "--host-record=4.0.0.127.bl.test,127.0.0.2",
        "--host-record=6.0.0.127.bl.test,127.0.0.2",
        "--host-record=5.0.0.127.bl.test,127.255.255.254",
        "--host-record=%s.bl.test,127.0.0.2" % rev6("::1"),
        "--host-record=3.0.0.127.bl2.test,127.0.0.2",
        "--host-record=2.0.0.127.bl2.test,127.0.0.9",
        "--host-record=4.0.0.127.wl.test,127.0.0.2")
except Skip as e:
    DNS = None
    SKIP_WHY = str(e)

ZONES = """
  zones = (
    { zone = "bl.test"; weight = 2; },
    { zone = "bl2.test"; weight = 1; codes = [ "127.0.0.2-127.0.0.3" ]; },
    { zone = "wl.test"; weight = -5; txt = false; }
  );
"""

SRV = None
if DNS is not None:
    SRV = smtp_server(R, relay=False, extra_modules=["filter_dnsbl"],
                      extra_conf="""
dns_servers = "%s";
filter_dnsbl = {
  %s
  threshold = 2;
  exempt = [ "127.0.0.6/32" ];
};
""" % (DNS.servers, ZONES))


def client(source):
    c = Raw(SRV.port("mx"), source=source)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    return c


def send_from(source, subject):
    """Sends one message from `source`; the delivered copy."""
    before = len(SRV.messages("alice@example.org"))
    c = client(source)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    code, text = c.cmd("RCPT TO:<alice@example.org>")
    assert code == 250, (source, code, text)
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: %s\r\n\r\nhello\r\n.\r\n" % subject)
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    c.close()
    deadline = 50
    while len(SRV.messages("alice@example.org")) <= before and deadline:
        import time
        time.sleep(0.1)
        deadline -= 1
    msgs = SRV.messages("alice@example.org")
    assert len(msgs) == before + 1, (source, len(msgs))
    assert ("Subject: %s" % subject).encode() in msgs[-1]
    return msgs[-1]


def header(msg, name=b"X-DNSBL"):
    for line in msg.split(b"\r\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line.decode()
        if line == b"":
            return None
    return None


def test_listed_client_refused_at_rcpt(r):
    c = client("127.0.0.2")
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    for rcpt in ("alice@example.org", "bob@example.org"):
        code, text = c.cmd("RCPT TO:<%s>" % rcpt)
        assert code == 550 and text[0].startswith("5.7.1"), (code, text)
        assert "client [127.0.0.2] blocked using bl.test" in text[0], text
        # bl2.test's answer is outside its codes: not named.
        assert "bl2.test" not in text[0], text
    # The session goes on; DATA has no recipient.
    assert c.cmd("DATA")[0] == 554
    c.cmd("QUIT")
    c.close()
    assert "filter_dnsbl: client 127.0.0.2: score 2" in SRV.log()


def test_txt_in_reply(r):
    SRV2 = smtp_server(R, name="txt", relay=False,
                       extra_modules=["filter_dnsbl"], extra_conf="""
dns_servers = "%s";
filter_dnsbl = {
  zones = ( { zone = "bl.test"; } );
  reject_text = "blocked by %%%%z: %%%%t";
};
""" % DNS.servers)
    try:
        c = Raw(SRV2.port("mx"), source="127.0.0.2")
        c.reply()
        c.cmd("EHLO x.example")
        c.cmd("MAIL FROM:<a@remote.example>")
        code, text = c.cmd("RCPT TO:<alice@example.org>")
        assert code == 550, (code, text)
        assert text[0] == ("5.7.1 blocked by bl.test: Listed for spam; "
                           "see http://bl.test/q?127.0.0.2"), text
        c.close()
    finally:
        stop_clean(SRV2)


def test_below_threshold_tagged(r):
    msg = send_from("127.0.0.3", "score one")
    h = header(msg)
    assert h == "X-DNSBL: score=1 threshold=2 bl2.test=127.0.0.2", h


def test_allow_list_outweighs(r):
    msg = send_from("127.0.0.4", "allowed")
    h = header(msg)
    assert h == ("X-DNSBL: score=-3 threshold=2 bl.test=127.0.0.2 "
                 "wl.test=127.0.0.2"), h


def test_error_code_and_clean_not_counted(r):
    for source in ("127.0.0.5", "127.0.0.1"):
        msg = send_from(source, "clean " + source)
        assert header(msg) is None, msg


def test_exempt_not_looked_up(r):
    msg = send_from("127.0.0.6", "exempt")
    assert header(msg) is None, msg


def test_authenticated_let_through(r):
    with smtplib.SMTP("127.0.0.1", SRV.port("sub"), timeout=10,
                      source_address=("127.0.0.2", 0)) as s:
        s.starttls(context=tls_context())
        s.ehlo("laptop.example")
        s.login("bob@example.org", "bob-pw")
        assert s.mail("bob@example.org")[0] == 250
        assert s.rcpt("alice@example.org")[0] == 250
        s.rset()


def test_connect_stage_tempfail_ipv6(r):
    srv = smtp_server(R, name="v6", relay=False,
                      extra_modules=["filter_dnsbl"],
                      mx_extra='address = "::1";', extra_conf="""
dns_servers = "%s";
filter_dnsbl = {
  %s
  threshold = 2;
  stage = "connect";
  action = "tempfail";
};
""" % (DNS.servers, ZONES))
    try:
        c = Raw(srv.port("mx"), host="::1")
        code, text = c.reply()
        # A temporary refusal at connect: 421 instead of the greeting,
        # and the connection closes (RFC 5321 section 3.1: the server's
        # name first, as in a greeting).
        assert code == 421 and text[0].startswith("mx.test.example "), \
            (code, text)
        assert "client [::1] blocked using bl.test" in text[0], text
        assert c.closed()
        assert "filter_dnsbl: client ::1: score 2" in srv.log()
    finally:
        stop_clean(srv)


if DNS is None:
    def test_skipped(r):
        raise Skip(SKIP_WHY)
    R.run(test_skipped)
else:
    for t in (test_listed_client_refused_at_rcpt, test_txt_in_reply,
              test_below_threshold_tagged, test_allow_list_outweighs,
              test_error_code_and_clean_not_counted,
              test_exempt_not_looked_up, test_authenticated_let_through,
              test_connect_stage_tempfail_ipv6):
        R.run(t)
    if R.failed:
        print(SRV.log())

    def test_server_stops_cleanly(r):
        stop_clean(SRV)
    R.run(test_server_stops_cleanly)
    DNS.stop()
R.finish()
