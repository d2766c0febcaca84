#!/usr/bin/env python3
"""BURL (RFC 4468) end to end against a real posternd with imap and
smtp: a draft stored with imaplib, a submit+ URL from GENURLAUTH, then
smtplib on the submission port sends it with BURL ... LAST and the
recipient gets it byte for byte; BDAT and BURL mixed in one message; a
3 MiB draft; the EHLO keyword only after AUTH on submission; and the
refusals: a tampered URL, another login's or an IMAP user's URL, BURL
before AUTH, before MAIL, on the MX port, DATA after BURL.
"""
import imaplib
import smtplib

from imaptest import PASSWORDS
from mailserver import MailServer
from smtp_common import stop_clean, strip_trace, tls_context, wait_messages
from testlib import Runner

for _name in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands[_name] = ("AUTH", "SELECTED")

R = Runner("smtp_burl")
srv = MailServer(R, ["imap", "smtp"], conf="""
imap = {
  listen = ( { port = %(imap)d; } );
  tls = %(tls)s;
};
smtp = {
  hostname = "mx.test.example";
  tls = %(tls)s;
  listen = (
    { name = "mx"; port = %(mx)d; mode = "mx"; },
    { name = "submission"; port = %(sub)d; mode = "submission"; }
  );
};
""", ports=["imap", "mx", "sub"])
for user, password in PASSWORDS.items():
    srv.add_user(user, password)
srv.start()

ALICE = "alice@example.org"
BOB = "bob@example.org"
BASE = "imap://alice%40example.org@localhost"

DRAFT = (b"From: alice@example.org\r\nTo: bob@example.org\r\n"
         b"Subject: burl\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: 8bit\r\n\r\n"
         b"Bonjour, \xc3\xa7a va ?\r\n.\r\n.leading dot stays\r\n"
         b"last line\r\n")

imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=20)
imap.login(ALICE, PASSWORDS[ALICE])
imap.create("Drafts")


def store_draft(data):
    imap.append("Drafts", None, None, data)
    imap.select("Drafts")
    typ, d = imap.uid("SEARCH", "ALL")
    return int(d[0].split()[-1])


def genurlauth(rump):
    typ, data = imap._simple_command("GENURLAUTH", '"%s"' % rump,
                                     "INTERNAL")
    assert typ == "OK", (typ, data)
    typ, data = imap._untagged_response(typ, data, "GENURLAUTH")
    return data[-1].decode().strip('"')


def submission(user=ALICE):
    s = smtplib.SMTP("127.0.0.1", srv.port("sub"), timeout=20)
    s.ehlo("client.example")
    s.starttls(context=tls_context())
    s.ehlo("client.example")
    if user is not None:
        s.login(user, PASSWORDS[user])
        s.ehlo("client.example")
    return s


def burl_last(data):
    """Stores `data` as a draft and sends it to bob with BURL ... LAST
    (a submit+alice URL); what bob got, trace fields stripped."""
    uid = store_draft(data)
    url = genurlauth("%s/Drafts/;UID=%d;URLAUTH=submit+alice%%40example.org"
                     % (BASE, uid))
    before = len(srv.messages(BOB))
    s = submission()
    s.mail(ALICE)
    s.rcpt(BOB)
    code, msg = s.docmd("BURL", url + " LAST")
    assert code == 250, (code, msg)
    s.quit()
    return strip_trace(received(before + 1))


def received(n):
    msgs = wait_messages(srv, BOB, n)
    assert len(msgs) == n, len(msgs)
    return msgs[-1]


def test_ehlo(R):
    s = submission(None)
    assert not s.has_extn("burl"), s.esmtp_features
    s.login(ALICE, PASSWORDS[ALICE])
    s.ehlo("client.example")
    assert s.esmtp_features.get("burl") == "imap", s.esmtp_features
    s.quit()
    m = smtplib.SMTP("127.0.0.1", srv.port("mx"), timeout=20)
    m.ehlo("client.example")
    assert not m.has_extn("burl"), m.esmtp_features
    code, _ = m.docmd("BURL", BASE + "/Drafts/;UID=1;URLAUTH=anonymous "
                      "LAST")
    assert code == 502, code
    m.quit()


def test_burl_last(R):
    got = burl_last(DRAFT)
    assert got == DRAFT, got


def test_bdat_then_burl(R):
    head = (b"From: alice@example.org\r\nTo: bob@example.org\r\n"
            b"Subject: mixed\r\n\r\n")
    uid = store_draft(DRAFT)
    url = genurlauth("%s/Drafts/;UID=%d/;SECTION=TEXT;URLAUTH=submit+"
                     "alice%%40example.org" % (BASE, uid))
    whole = genurlauth("%s/Drafts/;UID=%d/;PARTIAL=0.6;URLAUTH=authuser"
                       % (BASE, uid))
    s = submission()
    s.mail(ALICE)
    s.rcpt(BOB)
    s.send(b"BDAT %d\r\n" % len(head) + head)
    code, msg = s.getreply()
    assert code == 250, (code, msg)
    code, msg = s.docmd("BURL", whole)      # "From: ": authuser, no LAST
    assert code == 250, (code, msg)
    code, msg = s.docmd("BURL", url + " LAST")
    assert code == 250, (code, msg)
    # DATA after BURL is refused: the next transaction
    s.mail(ALICE)
    s.rcpt(BOB)
    code, msg = s.docmd("BURL", url)
    assert code == 250, (code, msg)
    code, msg = s.docmd("DATA")
    assert code == 503, (code, msg)
    s.rset()
    s.quit()
    got = received(2)
    body = DRAFT.split(b"\r\n\r\n", 1)[1]
    assert strip_trace(got) == head + b"From: " + body, got


def test_refused(R):
    uid = store_draft(DRAFT)
    mk = "%s/Drafts/;UID=%d;URLAUTH=" % (BASE, uid)
    good = genurlauth(mk + "submit+alice%40example.org")
    token = good.rsplit(":", 1)[1]
    bad_token = good[:-1] + ("0" if token[-1] != "0" else "1")
    user_url = genurlauth(mk + "user+alice%40example.org")
    for_bob = genurlauth(mk + "submit+bob%40example.org")
    # BURL before AUTH
    s = submission(None)
    s.mail(ALICE)
    code, _ = s.docmd("BURL", good + " LAST")
    assert code == 530, code
    s.quit()
    s = submission()
    # without MAIL
    code, _ = s.docmd("BURL", good + " LAST")
    assert code == 503, code
    s.quit()
    # each refusal counts as a client error: a session per URL
    for url in (bad_token, user_url, for_bob, good.replace("Drafts", "X"),
                good.replace(";UID=%d;" % uid, ";UID=999;"),
                "imap://x", "http://example.com/", "imap://" + "x" * 400):
        s = submission()
        s.mail(ALICE)
        s.rcpt(BOB)
        code, msg = s.docmd("BURL", url + " LAST")
        assert code == 554 and msg.startswith(b"5.6.6"), (url, code, msg)
        # LAST ended the transaction
        code, _ = s.docmd("RCPT", "TO:<%s>" % BOB)
        assert code == 503, code
        s.quit()
    s = submission()
    # a failed BURL without LAST: later chunks refused until RSET
    s.mail(ALICE)
    s.rcpt(BOB)
    code, _ = s.docmd("BURL", bad_token)
    assert code == 554, code
    code, _ = s.docmd("BURL", good + " LAST")
    assert code == 503, code
    s.rset()
    code, _ = s.docmd("BURL")
    assert code == 501, code
    code, _ = s.docmd("BURL", good + " NOTLAST")
    assert code == 501, code
    s.quit()
    assert len(srv.messages(BOB)) == 2


def test_large_draft(R):
    body = b"".join(b"%07d" % i + b"y" * 56 + b"\r\n" for i in range(48000))
    big = b"Subject: big burl\r\n\r\n" + body
    got = burl_last(big)
    assert got == big, len(got)


R.run(test_ehlo)
R.run(test_burl_last)
R.run(test_bdat_then_burl)
R.run(test_refused)
R.run(test_large_draft)
imap.logout()
R.run(lambda r: stop_clean(srv))
R.finish()
