#!/usr/bin/env python3
"""Reports to local senders land in their mailboxes (issue 11): a local
user sends on submission to another domain; the next hop refuses the
recipient with 550; the report (RFC 3464 multipart/report, action
failed) is delivered to the sender's INBOX by the relay through the
host's local delivery, not sent to the next hop.  NOTIFY=SUCCESS to a
hop that accepts, or to a local recipient, gives an "Action: delivered"
report in the INBOX too.
A queued recipient in a local domain that does not exist bounces with
5.1.1, and a report about a report is never made."""
import re
import smtplib
import time

from relay_common import MSG, NextHop, relay_server, wait_log
from testlib import Runner, make_cert

R = Runner("relay_local")
ALICE = ("alice@example.org", "alice-pw")


def smarthost(port):
    return ('{ domain = "*"; via = "smtp:[127.0.0.1]:%d"; tls = "none"; }'
            % port)


def submit(srv, rcpts, rcpt_options=()):
    msg = MSG.replace(b"alice@sender.example", b"alice@example.org")
    with smtplib.SMTP("127.0.0.1", srv.port("sub"), timeout=30) as s:
        s.starttls()
        s.login(*ALICE)
        return s.sendmail(ALICE[0], rcpts, msg,
                          rcpt_options=list(rcpt_options))


def inbox_reports(srv, timeout=20.0):
    """alice's messages once one is a report (bounded wait)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = srv.messages(ALICE[0])
        if any(b"multipart/report" in m for m in msgs):
            return msgs
        time.sleep(0.1)
    return srv.messages(ALICE[0])


def test_550_report_in_the_senders_inbox(r):
    cert, key = make_cert(r.tmp)
    hop = NextHop(tls=(cert, key))
    hop.rcpt_reply = lambda addr, n: "550 5.1.1 no such user here"
    hop.start()
    srv = relay_server(r, smarthost(hop.port), relay_domains=(),
                       name="bounce")
    try:
        submit(srv, ["bob@remote.example"])
        wait_log(srv, r"to=<bob@remote\.example>.*dsn=5\.1\.1, "
                 r"status=bounced")
        # The transaction's id leads every line about the message, the
        # session's and the relay's (which queued it under that id):
        # one grep finds them all.
        m = re.search(r"conn=\d+ peer=\S+: smtp: ([0-9A-F]{20}): "
                      r"from=<alice@example\.org>, size=\d+, nrcpt=1: 1 "
                      r"delivered, 0 deferred, 0 failed\n", srv.log())
        assert m, srv.log()[-3000:]
        assert re.search(r"relay: %s: to=<bob@remote\.example>" %
                         m.group(1), srv.log()), srv.log()[-3000:]
        assert re.search(r"smtp: %s: to=<bob@remote\.example>, "
                         r"relay=queue, status=queued" % m.group(1),
                         srv.log()), srv.log()[-3000:]
        msgs = inbox_reports(srv)
        assert len(msgs) == 1, (len(msgs), srv.log()[-3000:])
        m = msgs[0]
        assert m.startswith(b"Return-Path: <>\r\n"), m[:200]
        assert b"multipart/report; report-type=delivery-status" in m, \
            m[:600]
        assert b"Action: failed" in m and b"Status: 5.1.1" in m, m
        assert b"Final-Recipient: rfc822; bob@remote.example" in m, m
        assert b"Subject: relay test" in m  # the original's headers
        wait_log(srv, r"to=<alice@example\.org>, relay=local, .*"
                 r"status=sent")
        time.sleep(1.0)
        # The report went to the mailbox, never to the next hop.
        assert hop.txns == [], [t.rcpts for t in hop.txns]
    finally:
        srv.stop()
        hop.stop()


def test_success_report_in_the_senders_inbox(r):
    hop = NextHop().start()
    srv = relay_server(r, smarthost(hop.port), relay_domains=(),
                       name="success")
    try:
        submit(srv, ["carol@remote.example"],
               rcpt_options=["NOTIFY=SUCCESS"])
        assert len(hop.wait(1)) == 1
        msgs = inbox_reports(srv)
        assert len(msgs) == 1, (len(msgs), srv.log()[-3000:])
        assert b"Action: delivered" in msgs[0], msgs[0]
        assert b"Final-Recipient: rfc822; carol@remote.example" in \
            msgs[0], msgs[0]
        assert len(hop.txns) == 1
    finally:
        srv.stop()
        hop.stop()


def test_report_to_unknown_local_sender_is_dropped(r):
    """A sender in our domain that has no mailbox: its report bounces
    5.1.1 at the local delivery, and no report of the report is made
    (the report's sender is <>)."""
    hop = NextHop()
    hop.rcpt_reply = lambda addr, n: "550 5.1.1 no such user here"
    hop.start()
    srv = relay_server(r, smarthost(hop.port), name="ghost")
    try:
        with smtplib.SMTP("127.0.0.1", srv.port("mx"), timeout=30) as s:
            s.sendmail("ghost@example.org", ["bob@remote.example"], MSG)
        wait_log(srv, r"to=<ghost@example\.org>, relay=local, .*"
                 r"dsn=5\.1\.1, status=bounced")
        time.sleep(1.5)
        assert srv.log().count("sender notification") == 1, \
            srv.log()[-3000:]
        assert hop.txns == []
    finally:
        srv.stop()
        hop.stop()


def test_success_report_of_a_local_delivery(r):
    """NOTIFY=SUCCESS to a local recipient: the message is in the
    recipient's INBOX, and the sender gets an "Action: delivered"
    report (here alice writes to herself: two messages)."""
    hop = NextHop().start()
    srv = relay_server(r, smarthost(hop.port), relay_domains=(),
                       name="local-success")
    try:
        submit(srv, ["alice@example.org"], rcpt_options=["NOTIFY=SUCCESS"])
        deadline = time.time() + 20
        while time.time() < deadline and len(srv.messages(ALICE[0])) < 2:
            time.sleep(0.1)
        msgs = srv.messages(ALICE[0])
        assert len(msgs) == 2, (len(msgs), srv.log()[-3000:])
        reports = [m for m in msgs if b"multipart/report" in m]
        assert len(reports) == 1, msgs
        assert b"Action: delivered" in reports[0], reports[0]
        assert b"Status: 2.0.0" in reports[0], reports[0]
        assert b"Remote-MTA" not in reports[0], reports[0]
        plain = [m for m in msgs if b"multipart/report" not in m][0]
        assert b"Subject: relay test" in plain
        assert plain.startswith(b"Return-Path: <alice@example.org>\r\n")
        assert hop.txns == []
    finally:
        srv.stop()
        hop.stop()


def test_one_delay_warning(r):
    """delay_warning = 1s and a next hop that answers 451: once the
    recipient has waited a second, one "Action: delayed" report lands in
    the sender's INBOX, with Will-Retry-Until; later retries make no
    other (the queue log remembers it)."""
    hop = NextHop()
    hop.rcpt_reply = lambda addr, n: "451 4.3.0 try again later"
    hop.start()
    srv = relay_server(r, smarthost(hop.port), relay_domains=(),
                       name="delay", relay_extra='delay_warning = "1s";')
    try:
        submit(srv, ["dave@remote.example"])
        msgs = inbox_reports(srv)
        assert len(msgs) == 1, (len(msgs), srv.log()[-3000:])
        m = msgs[0]
        assert b"Action: delayed" in m and b"Status: 4.3.0" in m, m
        assert b"Will-Retry-Until:" in m, m
        assert b"Delayed Mail" in m, m[:800]
        # More attempts (retry_max 2s), no second warning.
        wait_log(srv, r"to=<dave@remote\.example>.*status=deferred",
                 count=4, timeout=30)
        assert len(srv.messages(ALICE[0])) == 1
    finally:
        srv.stop()
        hop.stop()


for t in (test_550_report_in_the_senders_inbox,
          test_one_delay_warning,
          test_success_report_of_a_local_delivery,
          test_success_report_in_the_senders_inbox,
          test_report_to_unknown_local_sender_is_dropped):
    R.run(t)
R.finish()
