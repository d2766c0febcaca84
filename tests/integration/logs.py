#!/usr/bin/env python3
"""The log lines README.md "Logs" promises, from a real server: every
line about a session carries its conn=N, from "connect to" to
"disconnect from" (SMTP, IMAP and POP3 alike); every line about an SMTP
transaction carries the transaction's id, the one the client's 250
names, from the session's lines to the relay's last delivery attempt,
so one grep finds a message's whole story, as Postfix's queue id does.
"""
import imaplib
import poplib
import re
import smtplib
import time

from mailserver import MailServer
from relay_common import RELAY_SO
from smtp_common import wait_messages
from testlib import Runner, free_port

R = Runner("logs")
USER, PASSWORD = "alice@example.org", "alice-pw"
NOWHERE = free_port()  # the relay's next hop: nobody listens there
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                  r"posternd\[\d+\]: (error|warning|notice|info|debug): "
                  r"(.*)$")

SRV = MailServer(R, ["smtp", "imap", "pop3", RELAY_SO], conf="""
smtp = {
  hostname = "mx.test.example";
  relay_domains = [ "remote.example" ];
  listen = ( { name = "mx"; port = %(mx)d; mode = "mx"; } );
};
relay = {
  hostname = "mx.test.example";
  routes = ( { domain = "*"; via = "smtp:[127.0.0.1]:NOWHERE";
               tls = "none"; } );
  retry_min = "1h"; retry_max = "2h";
};
imap = { listen = ( { name = "imap"; address = "127.0.0.1";
                      port = %(imap)d; } ); };
pop3 = { listen = ( { name = "pop3"; address = "127.0.0.1";
                      port = %(pop3)d; } ); };
""".replace("NOWHERE", str(NOWHERE)), ports=["mx", "imap", "pop3"])
SRV.add_user(USER, PASSWORD)
SRV.start()


def lines():
    """The text of each line after the level, with its level."""
    out = []
    for raw in SRV.log().splitlines():
        m = LINE.match(raw)
        assert m, "a line not in the documented format: %r" % raw
        out.append((m.group(1), m.group(2)))
    return out


def wait_for(pattern, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if re.search(pattern, SRV.log(), re.M):
            return
        time.sleep(0.1)
    raise AssertionError("no line matches %r:\n%s" % (pattern,
                                                        SRV.log()[-3000:]))


def session_lines(conn):
    prefix = "conn=%s " % conn
    return [t for _, t in lines() if t.startswith(prefix)]


def test_one_id_from_the_session_to_the_relay(r):
    with smtplib.SMTP("127.0.0.1", SRV.port("mx"), timeout=10) as s:
        s.ehlo("client.example")
        s.mail("carol@remote.example")
        s.rcpt(USER)
        s.rcpt("dave@remote.example")
        code, text = s.rcpt("eve@elsewhere.example")
        assert code == 554, (code, text)  # not a relay domain: denied
        code, text = s.data(b"Subject: logs\r\n\r\nhello\r\n")
    assert code == 250, (code, text)
    m = re.search(rb"queued as ([0-9A-F]{20})$", text)
    assert m, text
    tid = m.group(1).decode()
    wait_messages(SRV, USER, 1)
    wait_for(r"relay: %s: to=<dave@remote\.example>, .*status=deferred"
             % tid)
    about = [t for _, t in lines() if tid in t]
    want = [r"^conn=(\d+) peer=127\.0\.0\.1:\d+: smtp: %s: relay to "
            r"<eve@elsewhere\.example> denied$",
            r"^conn=(\d+) peer=\S+: smtp: %s: to=<alice@example\.org>, "
            r"relay=local, status=sent \(2\.0\.0 delivered\)$",
            r"^conn=(\d+) peer=\S+: smtp: %s: to=<dave@remote\.example>, "
            r"relay=queue, status=queued",
            r"^conn=(\d+) peer=\S+: smtp: %s: from=<carol@remote\.example>"
            r", size=\d+, nrcpt=2: 2 delivered, 0 deferred, 0 failed$",
            r"^relay: %s: from=<carol@remote\.example>, size=\d+, nrcpt=1 "
            r"\(queue active\)$",
            r"^relay: %s: to=<dave@remote\.example>, relay=127\.0\.0\.1"
            r"\[127\.0\.0\.1\]:\d+, delay=[\d.]+, dsn=4\.4\.1, "
            r"status=deferred"]
    conns = set()
    for pattern in want:
        hit = [t for t in about if re.search(pattern % tid, t)]
        assert hit, "no line %r among:\n%s" % (pattern, "\n".join(about))
        c = re.match(r"conn=(\d+)", hit[0])
        if c:
            conns.add(c.group(1))
    assert len(conns) == 1, conns
    conn = conns.pop()
    # The session from its first line to its last, each with conn=N.
    wait_for(r"conn=%s .*: disconnect from mx " % conn)
    mine = session_lines(conn)
    assert re.fullmatch(r"conn=%s peer=127\.0\.0\.1:\d+: connect to mx"
                        % conn, mine[0]), mine
    assert re.fullmatch(r"conn=%s peer=\S+: disconnect from mx \(closed "
                        r"by the (server|client)\) after [\d.]+ s" % conn,
                        mine[-1]), mine
    # Nothing about the recipients is logged without the id.
    for _, t in lines():
        if re.search(r"<(alice@example\.org|dave@remote\.example|"
                     r"eve@elsewhere\.example)>", t):
            assert tid in t, t


def test_imap_and_pop3_sessions_carry_their_conn(r):
    m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
    imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")
    typ, _ = m._simple_command("ID", '("name" "logs-test")')
    assert typ == "OK", typ
    m.login(USER, PASSWORD)
    m.select("INBOX")
    m.logout()
    p = poplib.POP3("127.0.0.1", SRV.port("pop3"), timeout=10)
    p.user(USER)
    try:
        p.pass_("wrong password")
        raise AssertionError("a wrong password logged in")
    except poplib.error_proto:
        pass
    p.quit()
    for proto in ("imap", "pop3"):
        starts = [re.match(r"conn=(\d+) ", t).group(1)
                  for _, t in lines()
                  if re.search(r"^conn=\d+ peer=\S+: connect to %s$" %
                               proto, t)]
        assert starts, proto
        wait_for(r"conn=%s .*: disconnect from %s " % (starts[-1], proto))
        mine = session_lines(starts[-1])
        assert re.search(r"disconnect from %s \(closed by the "
                         r"(server|client)\)" % proto, mine[-1]), mine
    # A module's own line about a session: its prefix, then the protocol.
    imap_conn = [re.match(r"conn=(\d+) ", t).group(1) for _, t in lines()
                 if re.search(r"^conn=\d+ peer=\S+: connect to imap$", t)][-1]
    assert any(re.fullmatch(r"conn=%s peer=\S+: imap: client ID "
                            r"name=logs-test" % imap_conn, t)
               for t in session_lines(imap_conn)), \
        session_lines(imap_conn)
    # The failed login is a line of its session.
    assert any("conn=%s " % starts[-1] in t and
               re.search(r"(?i)fail", t) for _, t in lines()), \
        SRV.log()[-2000:]


for t in (test_one_id_from_the_session_to_the_relay,
          test_imap_and_pop3_sessions_carry_their_conn):
    R.run(t)
rc = SRV.stop()
if rc != 0:
    R.failed += 1
    print("FAIL: posternd exited with %s\n%s" % (rc, SRV.log()))
R.finish()
