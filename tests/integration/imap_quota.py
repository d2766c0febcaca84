#!/usr/bin/env python3
"""QUOTA (RFC 9208) against a real posternd whose storage_maildir has
limits (10 KiB, 4 messages): the capabilities, GETQUOTAROOT and
GETQUOTA with the usage as messages come and go, SETQUOTA refused,
[OVERQUOTA] on APPEND and COPY past a limit (a MOVE goes through),
STATUS DELETED and DELETED-STORAGE, an SMTP delivery to a full
mailbox answered 452 4.2.2, then taken once there is room, and a
MULTIAPPEND checked as a whole.
"""
import imaplib
import smtplib

from imaptest import PASSWORDS, Raw, finish
from mailserver import MailServer
from testlib import Runner

R = Runner("imap_quota")
srv = MailServer(R, ["imap", "smtp"], storage="""
  quota_storage = "10K";
  quota_messages = 4;
""", conf="""
imap = {
  listen = ( { port = %(imap)d; } );
  tls = %(tls)s;
};
smtp = {
  hostname = "mx.test.example";
  tls = %(tls)s;
  listen = ( { name = "mx"; port = %(mx)d; mode = "mx"; } );
};
""", ports=["imap", "mx"])
for user, password in PASSWORDS.items():
    srv.add_user(user, password)
srv.start()


def raw(user="alice@example.org"):
    r = Raw(srv.port("imap"))
    r.login(user)
    return r


r = raw()


def cmd(text, tag="t", conn=None):
    return (conn or r).cmd(tag, text)


def ok(text, tag="t", conn=None):
    out = cmd(text, tag, conn)
    assert out[-1].startswith(tag + " OK"), (text, out)
    return out[:-1]


def message(octets, subject="q"):
    head = "Subject: %s\r\n\r\n" % subject
    body = "x" * (octets - len(head) - 2) + "\r\n"
    return (head + body).encode()


def append(box, data, tag="a", conn=None):
    conn = conn or r
    conn.send(("%s APPEND %s {%d+}\r\n" % (tag, box, len(data))).encode() +
              data + b"\r\n")
    return conn.until(tag)


def test_capability(R):
    caps = cmd("CAPABILITY", "c")[0].split()
    for c in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"):
        assert c in caps, caps
    assert "QUOTASET" not in caps, caps


def test_getquotaroot_empty(R):
    out = ok("GETQUOTAROOT INBOX")
    assert out == ['* QUOTAROOT "INBOX" ""',
                   '* QUOTA "" (STORAGE 0 10 MESSAGE 0 4)'], out


def test_imaplib(R):
    # Python's own client: getquotaroot and getquota parse the replies
    m = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10)
    m.login("bob@example.org", PASSWORDS["bob@example.org"])
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK" and data == [[b'"INBOX" ""'],
                                    [b'"" (STORAGE 0 10 MESSAGE 0 4)']], data
    typ, data = m.getquota('""')
    assert typ == "OK" and data == [b'"" (STORAGE 0 10 MESSAGE 0 4)'], data
    typ, data = m.setquota('""', "(STORAGE 20)")
    assert typ == "NO", (typ, data)
    m.logout()


def test_usage_follows_appends(R):
    assert append("INBOX", message(3000))[-1].startswith("a OK")
    assert append("INBOX", message(2100))[-1].startswith("a OK")
    out = ok('GETQUOTA ""')
    # 5100 octets less the CRs the Maildir does not keep: 4 KiB
    assert out == ['* QUOTA "" (STORAGE 4 10 MESSAGE 2 4)'], out


def test_unknown_root_and_mailbox(R):
    out = cmd('GETQUOTA "user.bob"', "n")
    assert out[-1].startswith("n NO [NONEXISTENT]"), out
    out = cmd("GETQUOTAROOT Nosuch", "n")
    assert out[-1].startswith("n NO [NONEXISTENT]"), out
    for bad in ("GETQUOTA", "GETQUOTAROOT", 'GETQUOTA "" extra',
                'SETQUOTA ""', 'SETQUOTA "" (STORAGE)',
                'SETQUOTA "" (STORAGE x)', 'SETQUOTA "" STORAGE 1'):
        out = cmd(bad, "b")
        assert out[-1].startswith("b BAD"), (bad, out)


def test_setquota_refused(R):
    out = cmd('SETQUOTA "" (STORAGE 100000)', "s")
    assert out[-1].startswith("s NO [NOPERM]"), out
    out = cmd('SETQUOTA "" ()', "s")
    assert out[-1].startswith("s NO [NOPERM]"), out
    out = ok('GETQUOTA ""')
    assert out == ['* QUOTA "" (STORAGE 4 10 MESSAGE 2 4)'], out


def test_overquota_append_copy_move(R):
    ok("CREATE Other")
    assert append("Other", message(500))[-1].startswith("a OK")
    assert append("INBOX", message(500))[-1].startswith("a OK")
    # four messages: the fifth is refused, APPEND and COPY alike
    out = append("INBOX", message(100))
    assert out[-1].startswith("a NO [OVERQUOTA]"), out
    ok("SELECT INBOX")
    out = cmd("COPY 1 Other", "k")
    assert out[-1].startswith("k NO [OVERQUOTA]"), out
    # a move changes nothing of the usage
    ok("MOVE 3 Other")
    out = ok("GETQUOTAROOT Other")
    assert out == ['* QUOTAROOT "Other" ""',
                   '* QUOTA "" (STORAGE 5 10 MESSAGE 4 4)'], out


def test_status_deleted(R):
    out = ok("STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)")
    assert out == ['* STATUS "INBOX" (MESSAGES 2 DELETED 0 '
                   'DELETED-STORAGE 0)'], out
    ok("STORE 1 +FLAGS (\\Deleted)")
    out = ok("STATUS INBOX (DELETED DELETED-STORAGE)")
    assert out == ['* STATUS "INBOX" (DELETED 1 DELETED-STORAGE 2)'], out


def smtp_send(subject):
    with smtplib.SMTP("127.0.0.1", srv.port("mx"), timeout=10) as s:
        s.ehlo("client.example")
        s.sendmail("carol@remote.example", ["alice@example.org"],
                   message(300, subject))


def test_smtp_full_mailbox(R):
    try:
        smtp_send("full")
        raise AssertionError("a delivery to a full mailbox was taken")
    except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused) as e:
        code, text = (e.smtp_code, e.smtp_error) if hasattr(
            e, "smtp_code") else list(e.recipients.values())[0]
        assert code == 452 and text.startswith(b"4.2.2"), (code, text)
    # room again after an expunge: the delivery goes through
    ok("EXPUNGE")
    smtp_send("room")
    out = ok('GETQUOTA ""')
    assert out[0].endswith("MESSAGE 4 4)"), out


def test_storage_limit(R):
    b = raw("bob@example.org")
    out = append("INBOX", message(11000), conn=b)
    assert out[-1].startswith("a NO [OVERQUOTA]"), out
    assert append("INBOX", message(9000), conn=b)[-1].startswith("a OK")
    out = append("INBOX", message(2000), conn=b)
    assert out[-1].startswith("a NO [OVERQUOTA]"), out
    b.cmd("z", "LOGOUT")



def test_multiappend_counts_all(R):
    """MULTIAPPEND (RFC 3502) is checked as a whole: five messages
    where four fit are refused, none stored; three go, and count."""
    b = raw("bob@example.org")
    ok("SELECT INBOX", conn=b)
    ok("STORE 1:* +FLAGS (\\Deleted)", conn=b)
    ok("EXPUNGE", conn=b)
    one = message(300, "multi")
    for n, want in ((5, "a NO [OVERQUOTA]"), (3, "a OK [APPENDUID")):
        b.send(b"a APPEND INBOX" + (b" {%d+}\r\n" % len(one) + one) * n +
               b"\r\n")
        out = b.until("a")
        assert out[-1].startswith(want), (n, out)
        quota = ok('GETQUOTA ""', conn=b)
        assert quota[0].endswith("MESSAGE %d 4)" % (0 if n == 5 else 3)), \
            quota
    b.cmd("z", "LOGOUT")


R.run(test_capability)
R.run(test_getquotaroot_empty)
R.run(test_imaplib)
R.run(test_usage_follows_appends)
R.run(test_unknown_root_and_mailbox)
R.run(test_setquota_refused)
R.run(test_overquota_append_copy_move)
R.run(test_status_deleted)
R.run(test_smtp_full_mailbox)
R.run(test_storage_limit)
R.run(test_multiappend_counts_all)
r.cmd("z", "LOGOUT")
finish(R, srv)
