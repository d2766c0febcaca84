#!/usr/bin/env python3
"""The three protocols on one server, as the full profile runs them: a
message sent over SMTP is retrieved byte-identical over POP3 and IMAP; an
IMAP IDLE is woken by an SMTP delivery from another connection; a POP3
deletion disappears for IMAP and an IMAP expunge for POP3; POP3 holds its
mailbox while IMAP keeps working."""
import imaplib
import poplib
import smtplib

from mailserver import MailServer
from smtp_common import strip_trace, wait_messages
from testlib import Runner

R = Runner("cross_protocol")
USER, PASSWORD = "alice@example.org", "alice-pw"

SRV = MailServer(R, ["smtp", "imap", "pop3"], conf="""
smtp = {
  hostname = "mx.test.example";
  tls = %(tls)s;
  listen = ( { name = "mx"; port = %(mx)d; mode = "mx"; } );
};
imap = {
  tls = %(tls)s;
  listen = ( { name = "imap"; address = "127.0.0.1"; port = %(imap)d; } );
};
pop3 = {
  tls = %(tls)s;
  listen = ( { name = "pop3"; address = "127.0.0.1"; port = %(pop3)d; } );
};
""", ports=["mx", "imap", "pop3"])
SRV.add_user(USER, PASSWORD)
SRV.start()

MSG = (b"From: carol@remote.example\r\n"
       b"To: alice@example.org\r\n"
       b"Subject: across\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"Content-Transfer-Encoding: 8bit\r\n"
       b"\r\n"
       b"..a line that starts with a dot\r\n"
       b"\xc3\xa9t\xc3\xa9 \r\n"
       b".\r\n"
       b"last\r\n")


def send(msg=MSG, subject=None):
    if subject is not None:
        msg = msg.replace(b"Subject: across", b"Subject: " + subject)
    with smtplib.SMTP("127.0.0.1", SRV.port("mx"), timeout=10) as s:
        s.ehlo("client.example")
        s.sendmail("carol@remote.example", [USER], msg)


def imap():
    m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
    m.login(USER, PASSWORD)
    return m


def pop3():
    p = poplib.POP3("127.0.0.1", SRV.port("pop3"), timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def test_smtp_to_pop3_and_imap_byte_identical(r):
    send()
    delivered = wait_messages(SRV, USER, 1)
    assert len(delivered) == 1, delivered
    stored = delivered[0]
    assert strip_trace(stored) == MSG, stored
    p = pop3()
    count, size = p.stat()
    assert count == 1 and size == len(stored), (count, size, len(stored))
    _, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == stored
    p.quit()
    m = imap()
    m.select("INBOX")
    typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK", data
    assert data[0][1] == stored, data
    assert b"RFC822.SIZE %d" % len(stored) in data[0][0], data
    m.logout()


def test_idle_woken_by_smtp(r):
    m = imap()
    typ, data = m.select("INBOX")
    before = int(data[0])
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+"), "no continuation for IDLE"
    send(subject=b"wake up")
    m.sock.settimeout(10)
    line = m.readline()
    assert line == b"* %d EXISTS\r\n" % (before + 1), line
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            break
    assert b"OK" in line, line
    m.logout()


def test_pop3_delete_seen_by_imap_and_back(r):
    send(subject=b"to delete over pop3")
    send(subject=b"to expunge over imap")
    m = imap()
    m.select("INBOX")
    typ, data = m.search(None, "ALL")
    n = len(data[0].split())
    m.logout()
    p = pop3()
    count, _ = p.stat()
    assert count == n, (count, n)
    p.dele(count - 1)  # "to delete over pop3"
    p.quit()
    m = imap()
    m.select("INBOX")
    typ, data = m.search(None, 'SUBJECT "to delete over pop3"')
    assert data[0] == b"", data
    typ, data = m.search(None, 'SUBJECT "to expunge over imap"')
    seq = data[0].split()[-1]
    m.store(seq, "+FLAGS", "\\Deleted")
    m.expunge()
    m.logout()
    p = pop3()
    count, _ = p.stat()
    assert count == n - 2, (count, n)
    for i in range(1, count + 1):
        _, lines, _ = p.top(i, 0)
        assert b"Subject: to expunge over imap" not in lines, lines
    p.quit()


def test_pop3_in_use_while_imap_works(r):
    p = pop3()
    try:
        q = poplib.POP3("127.0.0.1", SRV.port("pop3"), timeout=10)
        q.user(USER)
        try:
            q.pass_(PASSWORD)
            raise AssertionError("a second POP3 session got the mailbox")
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0], e
        try:
            q.quit()
        except (poplib.error_proto, OSError, EOFError):
            pass
        m = imap()
        typ, _ = m.select("INBOX")
        assert typ == "OK"
        send(subject=b"while pop3 holds it")
        m.noop()
        m.logout()
    finally:
        p.quit()


R.run(test_smtp_to_pop3_and_imap_byte_identical)
R.run(test_idle_woken_by_smtp)
R.run(test_pop3_delete_seen_by_imap_and_back)
R.run(test_pop3_in_use_while_imap_works)
SRV.stop()
R.finish()
