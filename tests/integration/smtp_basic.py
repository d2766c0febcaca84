#!/usr/bin/env python3
"""SMTP with real clients on loopback: Python's smtplib (EHLO, PIPELINING,
STARTTLS, AUTH PLAIN and LOGIN on 587 and 465, SMTPUTF8, several
recipients, the size limit), BDAT, the relay path, swaks and curl; the
delivered message is byte-identical to what was sent, after our
Return-Path and Received fields."""
import os
import shutil
import smtplib
import subprocess

from smtp_common import (Raw, relayed, smtp_server, stop_clean,
                         strip_trace, tls_context, wait_messages)
from testlib import Runner

R = Runner("smtp_basic")
# The primary domain, by default, is the hostname mx.test.example without
# its first label: <Postmaster> goes to postmaster@test.example.
SRV = smtp_server(R, smtp_extra='max_message_size = "64K";',
                  aliases=[("postmaster@test.example", "alice@example.org")])
MX = SRV.port("mx")
SUB = SRV.port("sub")
SUBS = SRV.port("subs")

MSG = (b"From: carol@remote.example\r\n"
       b"To: alice@example.org\r\n"
       b"Subject: hello\r\n"
       b"\r\n"
       b"Line one.\r\n"
       b".leading dot\r\n"
       b"\r\n"
       b"Last line.\r\n")


def test_ehlo_capabilities(r):
    with smtplib.SMTP("127.0.0.1", MX, timeout=10) as s:
        code, _ = s.ehlo("client.example")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "chunking", "smtputf8", "starttls", "dsn"):
            assert s.has_extn(ext), ext
        assert s.esmtp_features["size"] == str(64 * 1024)
        # mx: no AUTH; submission before TLS: no AUTH either.
        assert not s.has_extn("auth")
    with smtplib.SMTP("127.0.0.1", SUB, timeout=10) as s:
        s.ehlo("client.example")
        assert not s.has_extn("auth")
        s.starttls(context=tls_context())
        s.ehlo("client.example")
        assert s.has_extn("auth")
        assert "PLAIN" in s.esmtp_features["auth"]
        assert not s.has_extn("starttls")


def test_delivery_byte_identical(r):
    with smtplib.SMTP("127.0.0.1", MX, timeout=10) as s:
        s.ehlo("client.example")
        s.sendmail("carol@remote.example", ["alice@example.org"], MSG)
    msgs = wait_messages(SRV, "alice@example.org", 1)
    assert len(msgs) == 1, msgs
    got = msgs[0]
    assert got.startswith(b"Return-Path: <carol@remote.example>\r\n"), got
    assert b"Received: from client.example ([127.0.0.1])" in got, got
    assert b"by mx.test.example (postern) with ESMTP id" in got, got
    assert b"for <alice@example.org>;" in got, got
    assert strip_trace(got) == MSG, (strip_trace(got), MSG)


def test_several_recipients_one_data(r):
    before_a = len(SRV.messages("alice@example.org"))
    before_b = len(SRV.messages("bob@example.org"))
    with smtplib.SMTP("127.0.0.1", MX, timeout=10) as s:
        s.ehlo("client.example")
        refused = s.sendmail("carol@remote.example",
                             ["alice@example.org", "bob@example.org",
                              "nobody@example.org"], MSG)
        assert list(refused) == ["nobody@example.org"], refused
        assert refused["nobody@example.org"][0] == 550
    a = wait_messages(SRV, "alice@example.org", before_a + 1)
    b = wait_messages(SRV, "bob@example.org", before_b + 1)
    assert len(a) == before_a + 1 and len(b) == before_b + 1
    # Several recipients: the Received field names none of them.
    assert b"for <" not in a[-1]
    assert strip_trace(b[-1]) == MSG


def test_pipelining_one_write(r):
    before = len(SRV.messages("bob@example.org"))
    c = Raw(MX)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    c.send("MAIL FROM:<p@remote.example>\r\n"
           "RCPT TO:<bob@example.org>\r\n"
           "RCPT TO:<nosuch@example.org>\r\n"
           "DATA\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.reply()[0] == 550
    assert c.reply()[0] == 354
    c.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    code, text = c.reply()
    assert code == 250 and "queued as" in text[0], (code, text)
    assert c.reply()[0] == 221
    c.close()
    msgs = wait_messages(SRV, "bob@example.org", before + 1)
    assert strip_trace(msgs[-1]) == b"Subject: pipelined\r\n\r\nbody\r\n"


def test_submission_starttls_auth_plain_relay(r):
    n = len(relayed(SRV))
    with smtplib.SMTP("127.0.0.1", SUB, timeout=10) as s:
        s.ehlo("laptop.example")
        s.starttls(context=tls_context())
        s.ehlo("laptop.example")
        s.user, s.password = "alice@example.org", "alice-pw"
        code, _ = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
        assert code == 235
        s.sendmail("alice@example.org", ["dave@far.example"],
                   b"Subject: out\r\n\r\nto the world\r\n",
                   mail_options=["BODY=8BITMIME", "RET=HDRS",
                                 "ENVID=abc+2B1"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                 "ORCPT=rfc822;dave+40far.example"])
    out = relayed(SRV)
    assert len(out) == n + 1, out
    env, msg = out[-1]
    assert "sender alice@example.org\n" in env, env
    assert "body 8BITMIME\n" in env and "ret HDRS\n" in env, env
    assert "envid abc+1\n" in env, env
    assert "auth alice@example.org\n" in env, env
    assert "rcpt dave@far.example notify 6 orcpt rfc822;dave@far.example" \
        in env, env
    assert msg.startswith(b"Received: from laptop.example ([127.0.0.1])")
    assert b"with ESMTPSA" in msg and b"(using TLSv1" in msg, msg
    assert b"Authenticated sender: alice@example.org" in msg, msg
    assert b"Return-Path" not in msg
    assert msg.endswith(b"Subject: out\r\n\r\nto the world\r\n"), msg


def test_submission_auth_login(r):
    before = len(SRV.messages("bob@example.org"))
    with smtplib.SMTP("127.0.0.1", SUB, timeout=10) as s:
        s.starttls(context=tls_context())
        s.ehlo("laptop.example")
        s.user, s.password = "bob@example.org", "bob-pw"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        s.sendmail("bob@example.org", ["bob@example.org"],
                   b"Subject: self\r\n\r\nnote\r\n")
    assert len(wait_messages(SRV, "bob@example.org", before + 1)) == \
        before + 1


def test_submissions_implicit_tls(r):
    before = len(SRV.messages("alice@example.org"))
    with smtplib.SMTP_SSL("127.0.0.1", SUBS, timeout=10,
                          context=tls_context()) as s:
        s.ehlo("laptop.example")
        assert not s.has_extn("starttls")
        s.login("alice@example.org", "alice-pw")
        s.sendmail("alice@example.org", ["alice@example.org"],
                   b"Subject: 465\r\n\r\nimplicit\r\n")
    msgs = wait_messages(SRV, "alice@example.org", before + 1)
    assert b"with ESMTPSA" in msgs[-1]


def test_submission_requires_auth(r):
    with smtplib.SMTP("127.0.0.1", SUB, timeout=10) as s:
        s.starttls(context=tls_context())
        s.ehlo("laptop.example")
        code, msg = s.mail("alice@example.org")
        assert code == 530 and b"5.7.0" in msg, (code, msg)


def test_smtputf8(r):
    before = len(SRV.messages("alice@example.org"))
    body = ("From: j\u00f8rgen@b\u00e6r.example\r\nSubject: "
            "gr\u00fc\u00dfe\r\n\r\nh\u00e9llo w\u00f6rld\r\n").encode()
    with smtplib.SMTP("127.0.0.1", MX, timeout=10) as s:
        s.ehlo("client.example")
        assert s.has_extn("smtputf8")
        s.sendmail("j\u00f8rgen@b\u00e6r.example", ["alice@example.org"],
                   body, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    msgs = wait_messages(SRV, "alice@example.org", before + 1)
    got = msgs[-1]
    assert got.startswith("Return-Path: <j\u00f8rgen@b\u00e6r.example>"
                          .encode())
    assert b"with UTF8SMTP " in got, got
    assert strip_trace(got) == body
    # Without SMTPUTF8 the same sender is refused.
    c = Raw(MX)
    c.reply()
    c.cmd("EHLO client.example")
    code, _ = c.cmd("MAIL FROM:<j\u00f8rgen@b\u00e6r.example>")
    assert code == 553, code
    c.close()


def test_size_limit(r):
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 80
    with smtplib.SMTP("127.0.0.1", MX, timeout=10) as s:
        s.ehlo("client.example")
        # Declared too big: refused at MAIL.
        code, msg = s.mail("c@remote.example", ["SIZE=%d" % len(big)])
        assert code == 552, (code, msg)
    # Not declared: refused after the data, and the session goes on.
    c = Raw(MX)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<c@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(big + b".\r\n")
    code, text = c.reply()
    assert code == 552 and text[0].startswith("5.3.4"), (code, text)
    assert c.cmd("NOOP")[0] == 250
    # The same over BDAT: refused at the chunk that goes over.
    assert c.cmd("MAIL FROM:<c@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    c.send(b"BDAT %d\r\n" % len(big) + big)
    assert c.reply()[0] == 552
    c.send(b"BDAT 3 LAST\r\nabc")
    assert c.reply()[0] == 503
    assert c.cmd("RSET")[0] == 250
    c.close()


def test_bdat(r):
    before = len(SRV.messages("bob@example.org"))
    c = Raw(MX)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<b@remote.example> BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<bob@example.org>")[0] == 250
    part1 = b"Subject: chunks\r\n\r\n.first\r"
    part2 = b"\n.\r\nsecond\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1)
    code, text = c.reply()
    assert code == 250, (code, text)
    c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, text = c.reply()
    assert code == 250 and "queued" in text[0], (code, text)
    # DATA after BDAT in a new transaction works, BDAT 0 LAST too.
    assert c.cmd("MAIL FROM:<b@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<bob@example.org>")[0] == 250
    c.send(b"BDAT 0 LAST\r\n")
    assert c.reply()[0] == 250
    # BDAT without a transaction: the chunk is skipped, not executed.
    c.send(b"BDAT 6 LAST\r\nQUIT\r\n")
    assert c.reply()[0] == 503
    assert c.cmd("NOOP")[0] == 250
    c.close()
    msgs = wait_messages(SRV, "bob@example.org", before + 2)
    assert strip_trace(msgs[before]) == \
        b"Subject: chunks\r\n\r\n.first\r\n.\r\nsecond\r\n"
    assert strip_trace(msgs[before + 1]) == b""


def test_swaks(r):
    if shutil.which("swaks") is None:
        print("swaks missing: not run")
        return
    before = len(SRV.messages("alice@example.org"))
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(SUB), "--tls",
         "--auth", "LOGIN", "--auth-user", "bob@example.org",
         "--auth-password", "bob-pw", "--from", "bob@example.org",
         "--to", "alice@example.org", "--header", "Subject: swaks",
         "--body", "sent by swaks", "--pipeline"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    msgs = wait_messages(SRV, "alice@example.org", before + 1)
    assert b"Subject: swaks" in msgs[-1] and b"sent by swaks" in msgs[-1]


def test_curl(r):
    before = len(SRV.messages("bob@example.org"))
    path = R.write("curl-msg.eml", "From: curl@remote.example\r\n"
                   "Subject: curl\r\n\r\nsent by curl\r\n")
    p = subprocess.run(
        ["curl", "-sS", "--url", "smtp://127.0.0.1:%d/client.example" % MX,
         "--mail-from", "curl@remote.example",
         "--mail-rcpt", "bob@example.org",
         "--mail-rcpt", "alice@example.org", "--upload-file", path],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    msgs = wait_messages(SRV, "bob@example.org", before + 1)
    with open(path, "rb") as f:
        assert strip_trace(msgs[-1]) == f.read()
    # curl over implicit TLS with AUTH.
    p = subprocess.run(
        ["curl", "-sS", "-k", "--url", "smtps://127.0.0.1:%d" % SUBS,
         "--user", "alice@example.org:alice-pw",
         "--mail-from", "alice@example.org",
         "--mail-rcpt", "bob@example.org", "--upload-file", path],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(wait_messages(SRV, "bob@example.org", before + 2)) == \
        before + 2


def test_commands(r):
    c = Raw(MX)
    c.reply()
    assert c.cmd("HELO old.example")[0] == 250
    code, text = c.cmd("VRFY alice@example.org")
    assert code == 252, (code, text)
    assert c.cmd("EXPN staff")[0] == 502
    assert c.cmd("HELP")[0] == 214
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 503
    assert c.cmd("MAIL FROM:<x@remote.example>")[0] == 250
    assert c.cmd("MAIL FROM:<x@remote.example>")[0] == 503
    assert c.cmd("DATA")[0] == 554
    assert c.cmd("RCPT TO:<Postmaster>")[0] == 250
    assert c.cmd("FOO")[0] == 500
    code, text = c.cmd("QUIT")
    assert code == 221
    assert c.closed()


for t in (test_ehlo_capabilities, test_delivery_byte_identical,
          test_several_recipients_one_data, test_pipelining_one_write,
          test_submission_starttls_auth_plain_relay,
          test_submission_auth_login, test_submissions_implicit_tls,
          test_submission_requires_auth, test_smtputf8, test_size_limit,
          test_bdat, test_swaks, test_curl, test_commands):
    R.run(t)
if R.failed:
    print(SRV.log())


def test_server_stops_cleanly(r):
    stop_clean(SRV)


R.run(test_server_stops_cleanly)
R.finish()
