#!/usr/bin/env python3
"""The SMTP filter chain through the conformance filter
tests/modules/smtp_filter.c, answering every stage asynchronously (from a
timer): reject, tempfail, per-recipient reject, header and body verdicts,
discard, quarantine, header and recipient changes applied after the
end-of-data chain, a disconnect verdict, and the cleanup stages (reset,
disconnect) running exactly once."""
import re
import time

from smtp_common import Raw, ehlo_session, send_message, smtp_server, \
    stop_clean, strip_trace, wait_messages
from testlib import Runner

R = Runner("smtp_filter")
SRV = smtp_server(R, relay=False, filter_conf="""
  async_ms = 20;
  reject_helo = "bad.example";
  tempfail_sender = "later@remote.example";
  disconnect_sender = "bye@remote.example";
  reject_rcpt = "blocked@example.org";
  reject_header = "X-Spam";
  discard_subject = "discard me";
  quarantine_subject = "quarantine me";
  reject_body = "EICAR-TEST";
  add_header = "X-Filtered: yes";
  change_subject = "[tagged] changed";
  remove_header = "X-Remove-Me";
  edit_sender = "edit@remote.example";
  add_rcpt = "bob@example.org";
  remove_rcpt = "alice@example.org";
  insert_header = "X-Inserted: second";
  new_sender = "changed@remote.example";
  new_body = "a body from the filter";
  slot_sender = "slot@remote.example";
""")
SRV.add_alias("blocked@example.org", "alice@example.org")
# auth_passwd notices a changed file within a second.
time.sleep(1.5)
MX = SRV.port("mx")


def session():
    return ehlo_session(MX)


send = send_message


def test_helo_mail_rcpt_verdicts(r):
    c = Raw(MX)
    c.reply()
    code, text = c.cmd("EHLO bad.example")
    assert code == 550 and "helo refused" in text[0], (code, text)
    assert c.cmd("EHLO good.example")[0] == 250
    code, text = c.cmd("MAIL FROM:<later@remote.example>")
    assert code == 451 and text[0].startswith("4.7.1"), (code, text)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    code, text = c.cmd("RCPT TO:<blocked@example.org>")
    assert code == 550 and "recipient refused" in text[0], (code, text)
    # The verdict was for that recipient only.
    assert c.cmd("RCPT TO:<bob@example.org>")[0] == 250
    c.cmd("QUIT")
    c.close()


def test_header_and_body_verdicts(r):
    before = len(SRV.messages("alice@example.org"))
    c = session()
    code, text = send(c, "X-Spam: yes\r\nSubject: s\r\n\r\nhi\r\n")
    assert code == 554 and "header refused" in text[0], (code, text)
    code, text = send(c, "Subject: b\r\n\r\nsome EICAR-TEST here\r\n")
    assert code == 550 and "body refused" in text[0], (code, text)
    c.close()
    time.sleep(0.3)
    assert len(SRV.messages("alice@example.org")) == before


def test_discard_and_quarantine(r):
    before = len(SRV.messages("alice@example.org"))
    c = session()
    code, text = send(c, "Subject: please discard me\r\n\r\nx\r\n")
    assert code == 250, (code, text)
    code, text = send(c, "Subject: quarantine me now\r\n\r\nq\r\n")
    assert code == 250, (code, text)
    c.close()
    deadline = time.time() + 10
    while time.time() < deadline and \
            not SRV.messages("alice@example.org", "Quarantine"):
        time.sleep(0.05)
    q = SRV.messages("alice@example.org", "Quarantine")
    assert len(q) == 1 and b"q\r\n" in q[0], q
    assert len(SRV.messages("alice@example.org")) == before


def test_header_changes(r):
    before = len(SRV.messages("alice@example.org"))
    c = session()
    code, _ = send(c, "Subject: original\r\nX-Remove-Me: x\r\n"
                      "From: a@remote.example\r\n\r\nbody stays\r\n")
    assert code == 250
    c.close()
    msgs = wait_messages(SRV, "alice@example.org", before + 1)
    got = strip_trace(msgs[-1])
    assert got == (b"Subject: [tagged] changed\r\n"
                   b"From: a@remote.example\r\n"
                   b"X-Filtered: yes\r\n\r\nbody stays\r\n"), got


def test_recipient_changes(r):
    alice = len(SRV.messages("alice@example.org"))
    bob = len(SRV.messages("bob@example.org"))
    c = session()
    code, _ = send(c, "Subject: edit\r\n\r\nrouted by a filter\r\n",
                   sender="edit@remote.example")
    assert code == 250
    c.close()
    msgs = wait_messages(SRV, "bob@example.org", bob + 1)
    assert len(msgs) == bob + 1
    # The sender changed (Return-Path), a field went in at position 1,
    # and the body is the filter's.
    assert msgs[-1].startswith(b"Return-Path: <changed@remote.example>"), \
        msgs[-1][:200]
    got = strip_trace(msgs[-1])
    assert got == (b"Subject: [tagged] changed\r\nX-Inserted: second\r\n"
                   b"X-Filtered: yes\r\n\r\na body from the filter\r\n"), got
    time.sleep(0.3)
    assert len(SRV.messages("alice@example.org")) == alice


def test_transaction_slot_and_log(r):
    """State a filter kept at MAIL in the transaction's pool and slot is
    there at end of data; its log line carries the connection."""
    before = len(SRV.messages("alice@example.org"))
    c = session()
    code, _ = send(c, "Subject: slot\r\n\r\nx\r\n",
                   sender="slot@remote.example")
    assert code == 250
    c.close()
    msg = wait_messages(SRV, "alice@example.org", before + 1)[-1]
    assert b"X-Slot: slot@remote.example\r\n" in msg, msg[:600]
    assert re.search(r"conn=\d+ peer=127\.0\.0\.1:\d+ smtp_filter: slot "
                     r"held slot@remote\.example", SRV.log())


def test_client_leaves_at_end_of_data(r):
    """The client sends the final dot and leaves while the filters of the
    end-of-data chain are pending: no 250 went out, so nothing may be
    delivered."""
    before = len(SRV.messages("alice@example.org"))
    c = session()
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: left early\r\n\r\nnot to be delivered\r\n.\r\n")
    c.close()
    time.sleep(1.0)
    msgs = SRV.messages("alice@example.org")
    assert len(msgs) == before, [m[-80:] for m in msgs[before:]]


def test_disconnect_verdict(r):
    c = session()
    code, text = c.cmd("MAIL FROM:<bye@remote.example>")
    assert code == 421, (code, text)
    assert c.closed()


def test_cleanup_stages_exactly_once(r):
    c = session()
    send(c, "Subject: one\r\n\r\n1\r\n")
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    c.cmd("QUIT")
    c.close()
    time.sleep(0.5)
    log = SRV.log()
    m = re.findall(r"conn=(\d+) [^\n]*smtp: [0-9A-F]{20}: from=", log)
    sid = m[-1]
    resets = re.findall(r"smtp_filter: reset session %s\n" % sid, log)
    disconnects = re.findall(r"smtp_filter: disconnect session %s\n" % sid,
                             log)
    # One transaction ended by the message, one by RSET, one by QUIT.
    assert len(resets) == 3, (sid, resets)
    assert len(disconnects) == 1, (sid, disconnects)
    for stage in ("connect", "helo", "mail", "rcpt", "data", "eoh", "eod"):
        assert "smtp_filter: %s session %s\n" % (stage, sid) in log, stage


def test_client_leaves_while_filter_thinks(r):
    # The filter is pending on MAIL when the client goes: the call is
    # cancelled, and the server goes on.
    for _ in range(5):
        c = session()
        c.send("MAIL FROM:<a@remote.example>\r\n")
        c.close()
    time.sleep(0.3)
    c = session()
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_starttls_stage_after_handshake(r):
    """smtp.starttls runs once TLS is up and its details are known, not
    on the way out of the STARTTLS command."""
    c = Raw(SRV.port("sub"))
    c.reply()
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    c.starttls()
    assert c.cmd("EHLO client.example")[0] == 250
    c.cmd("QUIT")
    c.close()
    time.sleep(0.3)
    lines = re.findall(r"smtp_filter: starttls session \d+ .*", SRV.log())
    assert lines, SRV.log()[-2000:]
    assert re.search(r"tls=1 TLSv1\.[23]$", lines[-1]), lines


for t in (test_starttls_stage_after_handshake,
          test_helo_mail_rcpt_verdicts, test_header_and_body_verdicts,
          test_discard_and_quarantine, test_header_changes,
          test_recipient_changes, test_disconnect_verdict,
          test_cleanup_stages_exactly_once,
          test_client_leaves_while_filter_thinks,
          test_client_leaves_at_end_of_data,
          test_transaction_slot_and_log):
    R.run(t)
if R.failed:
    print(SRV.log())


def test_server_stops_cleanly(r):
    stop_clean(SRV)


R.run(test_server_stops_cleanly)
R.finish()
