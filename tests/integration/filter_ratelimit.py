#!/usr/bin/env python3
"""filter_ratelimit on a posternd with two workers: messages per sender
domain, recipients per authenticated user and connections per client
address, each counted over both workers (clients land on either), with
450 4.7.1 past a message or recipient limit and 421 (and the connection
closed) past the connection limit; other keys keep their own counts.
The metrics endpoint counts the filter's answers and their time."""
import smtplib
import urllib.request

from smtp_common import Raw, ehlo_session, smtp_server, stop_clean, \
    tls_context
from testlib import Runner, free_port

R = Runner("filter_ratelimit")
METRICS = free_port()
# Windows of a day: no window boundary falls inside the test.
SRV = smtp_server(R, relay=False, workers=2,
                  extra_modules=["filter_ratelimit"], extra_conf="""
metrics_listen = "127.0.0.1:%d";
filter_ratelimit = {
  limits = (
    { name = "mail-per-domain"; count = "messages"; per = "sender_domain";
      max = 3; window = "1d"; },
    { name = "rcpt-per-user"; count = "recipients"; per = "user";
      max = 4; window = "1d"; },
    { name = "conn-per-ip"; count = "connections"; per = "client";
      max = 8; window = "1d"; }
  );
};
""" % METRICS)
MX = SRV.port("mx")
connections = 0


def session():
    global connections
    connections += 1
    return ehlo_session(MX)


def test_messages_per_sender_domain(r):
    # Each MAIL on its own connection: they spread over both workers.
    for i in range(3):
        c = session()
        assert c.cmd("MAIL FROM:<u%d@One.Example>" % i)[0] == 250
        c.cmd("QUIT")
        c.close()
    c = session()
    code, text = c.cmd("MAIL FROM:<late@one.example>")
    assert code == 450 and "4.7.1" in text[0], (code, text)
    assert "mail-per-domain" in text[0], text
    # Another domain has its own count; the session goes on.
    assert c.cmd("MAIL FROM:<a@two.example>")[0] == 250
    c.cmd("QUIT")
    c.close()
    assert "filter_ratelimit: mail-per-domain" in SRV.log()


def test_recipients_per_user(r):
    global connections
    connections += 1
    with smtplib.SMTP("127.0.0.1", SRV.port("sub"), timeout=10) as s:
        s.starttls(context=tls_context())
        s.ehlo("laptop.example")
        s.login("bob@example.org", "bob-pw")
        assert s.mail("bob@example.org")[0] == 250
        for _ in range(4):
            assert s.rcpt("alice@example.org")[0] == 250
        code, msg = s.rcpt("alice@example.org")
        assert code == 450 and b"rcpt-per-user" in msg, (code, msg)
        s.rset()


def test_connections_per_client(r):
    """The ninth connection of the day (ours, plus the one or two the
    test harness made to see the server was up) gets 421 and is closed;
    they spread over both workers."""
    global connections
    open_ = []
    refused = None
    while refused is None and connections < 12:
        c = Raw(MX)
        connections += 1
        code, text = c.reply()
        if code == 220:
            open_.append(c)
            continue
        refused = (code, text)
        assert code == 421 and "conn-per-ip" in text[0], (code, text)
        assert c.closed()
    assert refused is not None, "no connection refused"
    assert 6 <= connections <= 9, connections
    for o in open_:
        o.close()


def test_metrics_count_the_filter(r):
    """Every answer above went through the hook: postern_filter_*."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % METRICS,
                                  timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    mod = '{module="filter_ratelimit"}'
    # Refusals seen above: 1 MAIL, 1 RCPT (450) and connections (421).
    assert samples['postern_filter_verdicts_total{verdict="tempfail"}'] \
        >= 3, text
    assert samples['postern_filter_verdicts_total{verdict="continue"}'] \
        >= 10, text
    calls = samples["postern_filter_calls_total" + mod]
    answers = sum(v for k, v in samples.items()
                  if k.startswith("postern_filter_verdicts_total"))
    assert calls == answers, text
    assert samples["postern_filter_microseconds_total" + mod] > 0, text
    assert samples["postern_filter_timeouts_total" + mod] == 0, text


for t in (test_messages_per_sender_domain, test_recipients_per_user,
          test_connections_per_client, test_metrics_count_the_filter):
    R.run(t)
if R.failed:
    print(SRV.log())


def test_server_stops_cleanly(r):
    stop_clean(SRV)


R.run(test_server_stops_cleanly)
R.finish()
