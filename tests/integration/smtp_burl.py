#!/usr/bin/env python3
"""BURL (RFC 4468) end to end against a real posternd with imap and smtp:
a draft stored with imaplib, a submit+ URL from GENURLAUTH, then smtplib
on the submission port sends it with BURL ... LAST and the recipient
gets it byte for byte; BDAT and BURL mixed in one message; a 3 MiB
draft, and an 8 MiB one with the worker's memory peak measured; the EHLO
keyword ("BURL" before AUTH, "BURL imap" after, none on the MX); the
refusals: a tampered URL, another login's or an IMAP user's URL (554
5.6.6), past max_message_size (552), before AUTH (530), before MAIL and
without a recipient (503, 554), on the MX (502), after a failed chunk
(503), a first chunk the data stage refuses (not fetched); the state
machine's changes in the log; and a client that leaves during the
fetch (nothing delivered, nothing leaks: ASan's exit check).
"""
import base64
import imaplib
import smtplib
import time

from hostile import WorkerMemory
from imaptest import PASSWORDS
from mailserver import MailServer
from smtp_common import (Raw, SMTP_FILTER_SO, stop_clean, strip_trace,
                         tls_context, wait_messages)
from testlib import SANITIZED, Runner

for _name in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands[_name] = ("AUTH", "SELECTED")

MIB = 1 << 20
R = Runner("smtp_burl")
# "opt": a submission listener where AUTH is optional and the sender is
# not checked against the login (the 530 case, and a sender the test
# filter refuses at the data stage).
srv = MailServer(R, ["imap", "smtp", SMTP_FILTER_SO], conf="""
imap = {
  listen = ( { port = %(imap)d; } );
  tls = %(tls)s;
};
smtp = {
  hostname = "mx.test.example";
  tls = %(tls)s;
  max_message_size = "12M";
  max_errors = 50;
  listen = (
    { name = "mx"; port = %(mx)d; mode = "mx"; },
    { name = "submission"; port = %(sub)d; mode = "submission"; },
    { name = "opt"; port = %(opt)d; mode = "submission"; auth = "optional";
      sender_login_match = "off"; plaintext_auth = true; }
  );
};
smtp_filter = { reject_data_sender = "nodata@example.org"; };
log_level = "debug";
""", ports=["imap", "mx", "sub", "opt"])
for user, password in PASSWORDS.items():
    srv.add_user(user, password)
srv.start()

ALICE = "alice@example.org"
BOB = "bob@example.org"
BASE = "imap://alice%40example.org@localhost"
SUBMIT = "URLAUTH=submit+alice%40example.org"

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


def draft_url(data, section=""):
    """A submit+alice URL of `data`, stored as a new draft."""
    uid = store_draft(data)
    return genurlauth("%s/Drafts/;UID=%d%s;%s" % (BASE, uid, section,
                                                 SUBMIT))


def submission(user=ALICE):
    s = smtplib.SMTP("127.0.0.1", srv.port("sub"), timeout=30)
    s.ehlo("client.example")
    s.starttls(context=tls_context())
    s.ehlo("client.example")
    if user is not None:
        s.login(user, PASSWORDS[user])
        s.ehlo("client.example")
    return s


def raw_submission(port="sub"):
    """A Raw client on `port`, over TLS, logged in as alice."""
    c = Raw(srv.port(port), timeout=30)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    c.starttls()
    assert c.cmd("EHLO client.example")[0] == 250
    token = base64.b64encode(b"\0" + ALICE.encode() + b"\0" +
                             PASSWORDS[ALICE].encode()).decode()
    assert c.cmd("AUTH PLAIN " + token)[0] == 235
    return c


def received(n):
    msgs = wait_messages(srv, BOB, n)
    assert len(msgs) == n, (len(msgs), n)
    return msgs[-1]


def burl_last(url):
    """Sends bob the URL's octets with BURL ... LAST; what bob got, trace
    fields stripped."""
    before = len(srv.messages(BOB))
    s = submission()
    s.mail(ALICE)
    s.rcpt(BOB)
    code, msg = s.docmd("BURL", url + " LAST")
    assert code == 250 and b"queued" in msg, (code, msg)
    s.quit()
    return strip_trace(received(before + 1))


def test_ehlo(r):
    s = submission(None)
    # RFC 4468 3.1: no arguments before AUTH, "imap" after.
    assert s.esmtp_features.get("burl") == "", s.esmtp_features
    s.login(ALICE, PASSWORDS[ALICE])
    s.ehlo("client.example")
    assert s.esmtp_features.get("burl") == "imap", s.esmtp_features
    code, msg = s.docmd("HELP")
    assert code == 214 and b"BURL" in msg, msg
    s.quit()
    m = smtplib.SMTP("127.0.0.1", srv.port("mx"), timeout=20)
    m.ehlo("client.example")
    assert not m.has_extn("burl"), m.esmtp_features
    code, msg = m.docmd("BURL", BASE + "/Drafts/;UID=1;URLAUTH=anonymous "
                        "LAST")
    assert (code, msg) == (502, b"5.5.1 command not implemented here"), \
        (code, msg)
    m.mail("a@remote.example")
    m.rcpt(BOB)
    code, _ = m.docmd("BURL", BASE + "/Drafts/;UID=1;URLAUTH=anonymous")
    assert code == 502, code
    m.quit()


def test_burl_last(r):
    got = burl_last(draft_url(DRAFT))
    assert got == DRAFT, got


def test_bdat_and_burl(r):
    """RFC 4468 3.2: BDAT and BURL chunks interleave; the URLs name a
    partial and a section; DATA after a BURL chunk is refused."""
    head = (b"From: alice@example.org\r\nTo: bob@example.org\r\n"
            b"Subject: mixed\r\n\r\n")
    uid = store_draft(DRAFT)
    text = genurlauth("%s/Drafts/;UID=%d/;SECTION=TEXT;%s"
                      % (BASE, uid, SUBMIT))
    partial = genurlauth("%s/Drafts/;UID=%d/;PARTIAL=0.6;URLAUTH=authuser"
                         % (BASE, uid))
    before = len(srv.messages(BOB))
    s = submission()
    s.mail(ALICE)
    s.rcpt(BOB)
    s.send(b"BDAT %d\r\n" % len(head) + head)
    code, msg = s.getreply()
    assert code == 250, (code, msg)
    code, msg = s.docmd("BURL", partial)      # "From: "
    assert (code, msg) == (250, b"2.0.0 %d octets received"
                           % (len(head) + 6)), (code, msg)
    s.send(b"BDAT 2\r\n> ")
    assert s.getreply()[0] == 250
    code, msg = s.docmd("BURL", text + " LAST")
    assert code == 250 and b"queued" in msg, (code, msg)
    # The next transaction: DATA after BURL is refused.
    s.mail(ALICE)
    s.rcpt(BOB)
    code, msg = s.docmd("BURL", text)
    assert code == 250, (code, msg)
    code, msg = s.docmd("DATA")
    assert (code, msg) == (503, b"5.5.1 DATA after BDAT"), (code, msg)
    code, msg = s.docmd("RCPT", "TO:<%s>" % ALICE)
    assert code == 503, (code, msg)
    s.rset()
    s.quit()
    got = received(before + 1)
    body = DRAFT.split(b"\r\n\r\n", 1)[1]
    assert strip_trace(got) == head + b"From: > " + body, got
    time.sleep(0.2)
    assert len(srv.messages(BOB)) == before + 1


def test_large_draft(r):
    """3 MiB: more than spool_memory, so the fetch spills to the spool
    file from its job; delivered byte for byte."""
    body = b"".join(b"%07d" % i + b"y" * 56 + b"\r\n" for i in range(48000))
    big = b"Subject: big burl\r\n\r\n" + body
    got = burl_last(draft_url(big))
    assert got == big, len(got)


def test_memory_bounded(r):
    """An 8 MiB draft sent with BURL: the worker's memory peak grows by
    far less than the message (the fetch goes to the spool file as it
    comes).  Under ASan the peak holds its quarantine: reported only."""
    body = b"".join(b"%07d" % i + b"z" * 120 + b"\r\n"
                    for i in range(8 * MIB // 129))
    big = b"Subject: 8 MiB burl\r\n\r\n" + body
    url = draft_url(big)
    mem = WorkerMemory(srv.daemon)
    got = burl_last(url)
    growth = mem.growth()
    print("  worker peak grew %.1f MiB for an %.1f MiB BURL"
          % (growth / MIB, len(big) / MIB))
    assert got == big, len(got)
    if not SANITIZED:
        mem.assert_growth_below(4 * MIB)


def test_refused_urls(r):
    """Whatever is wrong with a URL, 554 5.6.6 (RFC 4468 6), and the
    LAST chunk ended the transaction."""
    uid = store_draft(DRAFT)
    mk = "%s/Drafts/;UID=%d;URLAUTH=" % (BASE, uid)
    good = genurlauth(mk + "submit+alice%40example.org")
    token = good.rsplit(":", 1)[1]
    bad_token = good[:-1] + ("0" if token[-1] != "0" else "1")
    user_url = genurlauth(mk + "user+alice%40example.org")
    for_bob = genurlauth(mk + "submit+bob%40example.org")
    before = len(srv.messages(BOB))
    s = submission()
    for url in (bad_token, user_url, for_bob, good.replace("Drafts", "X"),
                good.replace(";UID=%d;" % uid, ";UID=999;"),
                "imap://x", "http://example.com/", "imap://" + "x" * 400):
        s.mail(ALICE)
        s.rcpt(BOB)
        code, msg = s.docmd("BURL", url + " LAST")
        assert (code, msg) == (554, b"5.6.6 IMAP URL resolution failed"), \
            (url, code, msg)
        code, _ = s.docmd("RCPT", "TO:<%s>" % BOB)
        assert code == 503, code
    s.quit()
    # RFC 4468 3.2: a failed BURL fails the message; later chunks are
    # refused until RSET, and a LAST one ends the transaction.
    s = submission()
    s.mail(ALICE)
    s.rcpt(BOB)
    code, _ = s.docmd("BURL", bad_token)
    assert code == 554, code
    code, msg = s.docmd("BURL", good + " LAST")
    assert (code, msg) == (503, b"5.5.1 an earlier chunk failed; RSET"), \
        (code, msg)
    code, _ = s.docmd("RCPT", "TO:<%s>" % BOB)
    assert code == 503, code
    s.mail(ALICE)
    s.rcpt(BOB)
    code, _ = s.docmd("BURL", bad_token)
    assert code == 554, code
    s.send(b"BDAT 3\r\nabc")
    assert s.getreply()[0] == 503
    s.rset()
    for bad in ("", good + " NOTLAST", good + " LAST LAST", "no-scheme"):
        s.mail(ALICE)
        s.rcpt(BOB)
        code, msg = s.docmd("BURL", bad)
        assert code == 501, (bad, code, msg)
        s.rset()
    # After RSET a good one goes.
    s.mail(ALICE)
    s.rcpt(BOB)
    code, msg = s.docmd("BURL", good + " LAST")
    assert code == 250, (code, msg)
    s.quit()
    assert strip_trace(received(before + 1)) == DRAFT


def test_too_big(r):
    """max_message_size (12M) counts what the chunks before brought:
    552 5.3.4, and the message fails."""
    body = b"".join(b"%07d" % i + b"w" * 56 + b"\r\n" for i in range(100000))
    url = draft_url(b"Subject: 6 MiB\r\n\r\n" + body)
    s = submission()
    s.mail(ALICE)
    s.rcpt(BOB)
    code, msg = s.docmd("BURL", url)
    assert code == 250, (code, msg)
    code, msg = s.docmd("BURL", url + " LAST")
    assert (code, msg) == (552, b"5.3.4 message exceeds fixed maximum "
                           b"message size"), (code, msg)
    code, _ = s.docmd("RCPT", "TO:<%s>" % BOB)
    assert code == 503, code
    s.quit()


def test_sequence(r):
    """The machine's rules for BURL, from a client: before MAIL, without
    a recipient (RFC 4468 3.1 and 6, pipelined as in its example), before
    AUTH on a listener that took MAIL without it (RFC 4954 6)."""
    url = draft_url(DRAFT)
    c = Raw(srv.port("sub"), timeout=30)
    assert c.reply()[0] == 220
    assert c.cmd("BURL %s LAST" % url) == (503, ["5.5.1 need MAIL first"])
    c.close()
    c = raw_submission()
    assert c.cmd("BURL %s LAST" % url) == (503, ["5.5.1 need MAIL first"])
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<nobody@example.org>\r\n"
           "BURL %s LAST\r\n" % (ALICE, url))
    assert c.reply()[0] == 250
    assert c.reply()[0] == 550
    assert c.reply() == (554, ["5.5.1 no valid recipients"])
    # LAST ended the transaction (the client may start the next one).
    assert c.cmd("RCPT TO:<%s>" % BOB) == (503, ["5.5.1 need MAIL first"])
    # Without LAST it goes on: a recipient, then the BURL.
    assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250
    assert c.cmd("BURL %s" % url) == (554, ["5.5.1 no valid recipients"])
    assert c.cmd("RCPT TO:<%s>" % BOB)[0] == 250
    code, text = c.cmd("BURL %s LAST" % url)
    assert code == 250 and "queued" in text[0], (code, text)
    c.close()
    o = Raw(srv.port("opt"), timeout=30)
    assert o.reply()[0] == 220
    ehlo = o.cmd("EHLO client.example")
    assert "BURL" in ehlo[1], ehlo
    assert o.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250
    assert o.cmd("RCPT TO:<%s>" % BOB)[0] == 250
    assert o.cmd("BURL %s LAST" % url) == (530, ["5.7.0 authentication "
                                                 "required"])
    o.close()


def test_data_stage_refuses(r):
    """A first chunk the data stage refuses is not fetched: its refusal,
    then 503 for the next chunk."""
    url = draft_url(DRAFT)
    c = Raw(srv.port("opt"), timeout=30)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    token = base64.b64encode(b"\0" + ALICE.encode() + b"\0" +
                             PASSWORDS[ALICE].encode()).decode()
    assert c.cmd("AUTH PLAIN " + token)[0] == 235
    assert c.cmd("MAIL FROM:<nodata@example.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % BOB)[0] == 250
    code, text = c.cmd("BURL %s" % url)
    assert code == 554 and text[0].startswith("5.7.1"), (code, text)
    assert c.cmd("BURL %s LAST" % url) == \
        (503, ["5.5.1 an earlier chunk failed; RSET"])
    assert c.cmd("RCPT TO:<%s>" % BOB) == \
        (503, ["5.5.1 need MAIL first"])
    c.close()


def test_client_leaves_during_fetch(r):
    """The client sends BURL ... LAST for 6 MiB and goes: the job's done
    is told (the session is closing), nothing is delivered, and the
    worker serves the next client."""
    body = b"".join(b"%07d" % i + b"v" * 56 + b"\r\n" for i in range(100000))
    url = draft_url(b"Subject: gone\r\n\r\n" + body)
    before = len(srv.messages(BOB))
    start = len(srv.log())
    for _ in range(3):
        c = raw_submission()
        assert c.cmd("MAIL FROM:<%s>" % ALICE)[0] == 250
        assert c.cmd("RCPT TO:<%s>" % BOB)[0] == 250
        c.send("BURL %s LAST\r\n" % url)
        time.sleep(0.01)
        c.close()
    # Where the close came during the fetch (nearly always: 6 MiB takes
    # tens of ms), the job's done says so; otherwise the session saw it
    # at once.  Either way, nothing arrives.
    gone = ("BURL: the client left during the fetch",
            "client left during a transaction")
    deadline = time.time() + 10
    while time.time() < deadline and \
            sum(srv.log()[start:].count(g) for g in gone) < 3:
        time.sleep(0.05)
    log = srv.log()[start:]
    print("  %d of 3 left during the fetch" % log.count(gone[0]))
    assert sum(log.count(g) for g in gone) == 3, log[-3000:]
    time.sleep(0.3)
    assert len(srv.messages(BOB)) == before
    got = burl_last(draft_url(DRAFT))
    assert got == DRAFT


def test_log(r):
    log = srv.log()
    assert "illegal state change" not in log
    assert "dropped" not in log
    for change in ("state bdat-hook -> burl", "state burl -> chunked",
                   "state chunked -> burl", "state burl -> sync",
                   "state burl -> chunk-failed", "state burl -> ready",
                   "BURL resolved", "BURL failed"):
        assert change in log, change


for t in (test_ehlo, test_burl_last, test_bdat_and_burl, test_large_draft,
          test_memory_bounded, test_refused_urls, test_too_big,
          test_sequence, test_data_stage_refuses,
          test_client_leaves_during_fetch, test_log):
    R.run(t)
imap.logout()
if R.failed:
    print(srv.log()[-20000:])
R.run(lambda r: stop_clean(srv))
R.finish()
