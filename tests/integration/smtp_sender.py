#!/usr/bin/env python3
"""The submission rule that an authenticated client sends only as itself
(smtp listener key sender_login_match, Postfix's
reject_sender_login_mismatch): on by default on submission, off on mx;
the login's own address, its extensions and the aliases that deliver to
it are accepted, anything else is 553 5.7.1 and the session goes on."""
import smtplib
import time

from smtp_common import (Raw, smtp_server, stop_clean, tls_context,
                         wait_messages)
from testlib import Runner

R = Runner("smtp_sender")
# mx: AUTH allowed (in clear, for the test) and the rule left at auto.
SRV = smtp_server(R, mx_extra='auth = "optional"; plaintext_auth = true;')
SRV.add_alias("sales@example.org", "alice@example.org", "bob@example.org")
SRV.add_alias("support@example.org", "bob@example.org")
SRV.add_alias("forward@example.org", "someone@far.example")
# auth_passwd notices a changed file within a second.
time.sleep(1.5)
SUB = SRV.port("sub")
MX = SRV.port("mx")

ALICE_PLAIN = "AGFsaWNlQGV4YW1wbGUub3JnAGFsaWNlLXB3"   # alice@example.org


def submission(user="alice@example.org", password="alice-pw"):
    s = smtplib.SMTP("127.0.0.1", SUB, timeout=10)
    s.starttls(context=tls_context())
    s.ehlo("laptop.example")
    s.login(user, password)
    return s


def test_own_addresses_accepted(r):
    with submission() as s:
        for sender in ("alice@example.org", "Alice@Example.ORG",
                       "alice+lists@example.org", "sales@example.org", ""):
            code, msg = s.mail(sender)
            assert code == 250, (sender, code, msg)
            s.rset()


def test_other_addresses_refused(r):
    # A session per address: each refusal counts toward max_errors.
    for sender in ("bob@example.org", "support@example.org",
                   "alice@far.example", "forward@example.org",
                   "nobody@example.org"):
        with submission() as s:
            code, msg = s.mail(sender)
            assert code == 553, (sender, code, msg)
            assert msg.startswith(b"5.7.1"), msg
            assert b"not owned by the logged-in user alice@example.org" \
                in msg, msg
            # The transaction was reset: no RCPT without a new MAIL.
            assert s.rcpt("bob@example.org")[0] == 503
            # The session goes on with a sender of its own.
            assert s.mail("alice@example.org")[0] == 250
    # bob owns support@ and sales@, not alice@.
    with submission("bob@example.org", "bob-pw") as s:
        assert s.mail("support@example.org")[0] == 250
        s.rset()
        assert s.mail("sales@example.org")[0] == 250
        s.rset()
        assert s.mail("alice@example.org")[0] == 553


def test_message_as_alias_delivered(r):
    before = len(SRV.messages("bob@example.org"))
    with submission() as s:
        s.sendmail("sales@example.org", ["bob@example.org"],
                   b"From: sales@example.org\r\nSubject: as sales\r\n\r\n"
                   b"hello\r\n")
    msgs = wait_messages(SRV, "bob@example.org", before + 1)
    assert len(msgs) == before + 1
    assert any(b"Subject: as sales" in m for m in msgs)


def test_pipelined_after_refusal(r):
    c = Raw(SUB)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO laptop.example")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    c.starttls()
    assert c.cmd("EHLO laptop.example")[0] == 250
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN)[0] == 235
    # The check waits on a job: what the client pipelined behind it is
    # answered in order, against the refused transaction.
    c.send("MAIL FROM:<bob@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
           "DATA\r\nNOOP\r\n")
    code, text = c.reply()
    assert code == 553 and text[0].startswith("5.7.1"), (code, text)
    assert c.reply()[0] == 503
    assert c.reply()[0] == 503
    assert c.reply()[0] == 250
    c.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()


def test_mx_default_off(r):
    # On mx the rule is off by default: an authenticated client may use
    # any sender there.
    c = Raw(MX)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("AUTH PLAIN " + ALICE_PLAIN)[0] == 235
    assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
    c.close()


def test_mx_turned_on(r):
    srv = smtp_server(R, name="on", mx_extra='auth = "optional"; '
                      'plaintext_auth = true; sender_login_match = "on";')
    try:
        c = Raw(srv.port("mx"))
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.example")[0] == 250
        # Unauthenticated clients are not checked.
        assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 250
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("AUTH PLAIN " + ALICE_PLAIN)[0] == 235
        assert c.cmd("MAIL FROM:<bob@example.org>")[0] == 553
        assert c.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        c.close()
    finally:
        stop_clean(srv)


def test_bad_value_is_a_config_error(r):
    try:
        srv = smtp_server(R, name="bad", mx_extra='sender_login_match = '
                          '"maybe";')
    except Exception as e:  # noqa: BLE001 - the start must fail
        assert "sender_login_match" in str(e), e
        return
    stop_clean(srv)
    raise AssertionError("sender_login_match = \"maybe\" was accepted")


for t in (test_own_addresses_accepted, test_other_addresses_refused,
          test_message_as_alias_delivered, test_pipelined_after_refusal,
          test_mx_default_off, test_mx_turned_on,
          test_bad_value_is_a_config_error):
    R.run(t)
if R.failed:
    print(SRV.log())


def test_server_stops_cleanly(r):
    stop_clean(SRV)


R.run(test_server_stops_cleanly)
R.finish()
