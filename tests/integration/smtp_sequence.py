#!/usr/bin/env python3
"""SMTP command sequencing (RFC 5321 4.1.4 and 3.3, RFC 3030, RFC 4954,
RFC 2920), the state machine's rules seen from a client: a command out of
sequence gets its exact reply, counts toward max_errors, and the session
goes on to deliver.  RCPT before MAIL, DATA without RCPT, MAIL inside a
transaction, BDAT after DATA, DATA and RCPT after BDAT, a chunk after a
refused one, AUTH before EHLO, commands pipelined after DATA's 354 (they
are message text) and after a refused DATA (they are commands), BURL
where it is not offered (502 in every state; its sequence on submission
is in smtp_burl.py).  The daemon logs its state changes at debug level,
and never an illegal one."""
import signal
import smtplib

from smtp_common import Raw, smtp_server, stop_clean, strip_trace, \
    wait_messages
from testlib import Runner

R = Runner("smtp_sequence")
SRV = smtp_server(R, relay=False, smtp_extra="max_errors = 6;",
                  filter_conf='reject_data_sender = "nodata@x.org";',
                  extra_conf='log_level = "debug";')
MX = SRV.port("mx")
USER = "alice@example.org"


def session():
    c = Raw(MX)
    assert c.reply()[0] == 220
    return c


def expect(c, line, code, text):
    """Sends `line`, checks the whole reply line."""
    got = c.cmd(line)
    assert got == (code, [text]), (line, got)


def test_rcpt_before_mail(r):
    before = len(SRV.messages(USER))
    c = session()
    assert c.cmd("EHLO client.example")[0] == 250
    expect(c, "RCPT TO:<%s>" % USER, 503, "5.5.1 need MAIL first")
    expect(c, "DATA", 503, "5.5.1 need MAIL first")
    # The session goes on: a whole transaction works.
    expect(c, "MAIL FROM:<a@remote.example>", 250,
           "2.1.0 Sender <a@remote.example> OK")
    expect(c, "RCPT TO:<%s>" % USER, 250, "2.1.5 Recipient <%s> OK" % USER)
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: after 503\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == 250
    expect(c, "QUIT", 221, "2.0.0 mx.test.example closing connection")
    assert c.closed()
    msgs = wait_messages(SRV, USER, before + 1)
    assert strip_trace(msgs[-1]) == b"Subject: after 503\r\n\r\nhi\r\n"


def test_before_helo(r):
    c = session()
    expect(c, "MAIL FROM:<a@remote.example>", 503,
           "5.5.1 send HELO or EHLO first")
    expect(c, "AUTH PLAIN", 503, "5.5.1 send EHLO first")
    expect(c, "RCPT TO:<%s>" % USER, 503, "5.5.1 need MAIL first")
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    c.close()


def test_data_without_rcpt(r):
    before = len(SRV.messages(USER))
    c = session()
    c.cmd("EHLO client.example")
    expect(c, "MAIL FROM:<a@remote.example>", 250,
           "2.1.0 Sender <a@remote.example> OK")
    expect(c, "DATA", 554, "5.5.1 no valid recipients")
    # BDAT without a recipient: its chunk is read and skipped.
    c.send("BDAT 6\r\nNOOP\r\n")
    assert c.reply() == (554, ["5.5.1 no valid recipients"])
    # The transaction is still there: RCPT then DATA deliver.
    expect(c, "RCPT TO:<%s>" % USER, 250, "2.1.5 Recipient <%s> OK" % USER)
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: late rcpt\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    msgs = wait_messages(SRV, USER, before + 1)
    assert b"Subject: late rcpt" in msgs[-1]


def test_mail_during_transaction(r):
    before = len(SRV.messages(USER))
    c = session()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<first@remote.example>")[0] == 250
    expect(c, "MAIL FROM:<second@remote.example>", 503,
           "5.5.1 nested MAIL command")
    expect(c, "AUTH PLAIN", 503, "5.5.1 AUTH not allowed during a "
           "transaction")
    assert c.cmd("RCPT TO:<%s>" % USER)[0] == 250
    expect(c, "MAIL FROM:<third@remote.example>", 503,
           "5.5.1 nested MAIL command")
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: nested\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    msgs = wait_messages(SRV, USER, before + 1)
    # The first sender stayed the transaction's.
    assert msgs[-1].startswith(b"Return-Path: <first@remote.example>")


def test_bdat_after_data(r):
    before = len(SRV.messages(USER))
    c = session()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % USER)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: by DATA\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    # The transaction is over: a chunk now is read and refused, and
    # its octets (a command's text) are not run.
    c.send("BDAT 6 LAST\r\nQUIT\r\n")
    assert c.reply() == (503, ["5.5.1 need MAIL first"])
    expect(c, "NOOP", 250, "2.0.0 OK")
    c.close()
    wait_messages(SRV, USER, before + 1)


def test_data_and_rcpt_after_bdat(r):
    before = len(SRV.messages(USER))
    c = session()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % USER)[0] == 250
    part = b"Subject: chunks\r\n\r\n"
    c.send(b"BDAT %d\r\n" % len(part) + part)
    assert c.reply() == (250, ["2.0.0 %d octets received" % len(part)])
    expect(c, "DATA", 503, "5.5.1 DATA after BDAT")
    expect(c, "RCPT TO:<bob@example.org>", 503,
           "5.5.1 RCPT after message data")
    expect(c, "MAIL FROM:<b@remote.example>", 503,
           "5.5.1 nested MAIL command")
    c.send(b"BDAT 5 LAST\r\nend\r\n")
    code, text = c.reply()
    assert code == 250 and "queued" in text[0], (code, text)
    c.close()
    msgs = wait_messages(SRV, USER, before + 1)
    assert strip_trace(msgs[-1]) == b"Subject: chunks\r\n\r\nend\r\n"


def test_refused_chunk(r):
    """RFC 3030 2: after a refused chunk no other is taken, and DATA
    does not take over the transaction."""
    before = len(SRV.messages(USER))
    c = session()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<nodata@x.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % USER)[0] == 250
    c.send(b"BDAT 5\r\nabcde")
    assert c.reply() == (554, ["5.7.1 filter: data refused"])
    expect(c, "DATA", 503, "5.5.1 DATA after BDAT")
    expect(c, "RCPT TO:<bob@example.org>", 503,
           "5.5.1 RCPT after message data")
    c.send(b"BDAT 3\r\nxyz")
    assert c.reply() == (503, ["5.5.1 an earlier chunk failed; RSET"])
    # The LAST chunk ends the transaction, refused too.
    c.send(b"BDAT 3 LAST\r\nxyz")
    assert c.reply() == (503, ["5.5.1 an earlier chunk failed; RSET"])
    expect(c, "RCPT TO:<%s>" % USER, 503, "5.5.1 need MAIL first")
    c.close()
    # New session: RSET after a refused chunk starts over.
    c = session()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<nodata@x.org>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % USER)[0] == 250
    c.send(b"BDAT 2\r\nab")
    assert c.reply()[0] == 554
    expect(c, "RSET", 250, "2.0.0 OK")
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % USER)[0] == 250
    c.send(b"BDAT 10 LAST\r\nSubject:\r\n")
    assert c.reply()[0] == 250
    c.close()
    msgs = wait_messages(SRV, USER, before + 1)
    assert len(msgs) == before + 1


def test_pipelined_after_354(r):
    """RFC 2920: what follows DATA in the same write is the message
    once 354 is said; the commands after its end are run in order."""
    before = len(SRV.messages(USER))
    c = session()
    c.cmd("EHLO client.example")
    c.send("MAIL FROM:<a@remote.example>\r\n"
           "RCPT TO:<%s>\r\n"
           "DATA\r\n"
           "RSET\r\n"
           "MAIL FROM:<inside@remote.example>\r\n"
           ".\r\n"
           "NOOP\r\n"
           "MAIL FROM:<b@remote.example>\r\n"
           "RCPT TO:<%s>\r\n"
           "DATA\r\n" % (USER, USER))
    assert c.reply()[0] == 250      # MAIL
    assert c.reply()[0] == 250      # RCPT
    assert c.reply()[0] == 354      # DATA
    code, text = c.reply()          # the message's end
    assert code == 250 and "queued" in text[0], (code, text)
    assert c.reply() == (250, ["2.0.0 OK"])  # NOOP
    assert c.reply()[0] == 250      # MAIL
    assert c.reply()[0] == 250      # RCPT
    assert c.reply()[0] == 354      # DATA
    c.send(".\r\n")
    assert c.reply()[0] == 250
    c.close()
    msgs = wait_messages(SRV, USER, before + 2)
    assert strip_trace(msgs[before]) == \
        b"RSET\r\nMAIL FROM:<inside@remote.example>\r\n"


def test_pipelined_after_refused_data(r):
    """A DATA refused (no recipient) leaves what follows as commands."""
    c = session()
    c.cmd("EHLO client.example")
    c.send("MAIL FROM:<a@remote.example>\r\n"
           "RCPT TO:<nobody@example.org>\r\n"
           "DATA\r\n"
           "NOOP\r\n"
           "RSET\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 550
    assert c.reply() == (554, ["5.5.1 no valid recipients"])
    assert c.reply() == (250, ["2.0.0 OK"])
    assert c.reply() == (250, ["2.0.0 OK"])
    c.close()


def test_burl_not_offered(r):
    """RFC 4468 3.1: no BURL on an MX (nor without the imap module):
    not announced, and 502 in whatever state, without touching the
    transaction."""
    before = len(SRV.messages(USER))
    burl = "BURL imap://a@h/INBOX;UID=1;URLAUTH=anonymous LAST"
    c = session()
    expect(c, burl, 502, "5.5.1 command not implemented here")   # HELO
    code, lines = c.cmd("EHLO client.example")
    assert code == 250 and not [x for x in lines if "BURL" in x], lines
    code, lines = c.cmd("HELP")
    assert code == 214 and "BURL" not in lines[-1], lines
    expect(c, burl, 502, "5.5.1 command not implemented here")   # READY
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    expect(c, burl, 502, "5.5.1 command not implemented here")   # MAIL
    assert c.cmd("RCPT TO:<%s>" % USER)[0] == 250
    part = b"Subject: no burl\r\n\r\n"
    c.send(b"BDAT %d\r\n" % len(part) + part)
    assert c.reply()[0] == 250
    expect(c, burl, 502, "5.5.1 command not implemented here")   # CHUNKED
    c.send(b"BDAT 3 LAST\r\nx\r\n")
    code, text = c.reply()
    assert code == 250 and "queued" in text[0], (code, text)
    c.close()
    msgs = wait_messages(SRV, USER, before + 1)
    assert strip_trace(msgs[-1]) == b"Subject: no burl\r\n\r\nx\r\n"


def test_smtplib_sequence(r):
    """Python's smtplib sees the same replies."""
    with smtplib.SMTP("127.0.0.1", MX, timeout=10) as s:
        s.ehlo("client.example")
        assert s.docmd("RCPT TO:<%s>" % USER)[0] == 503
        s.mail("a@remote.example")
        assert s.docmd("DATA")[0] == 554
        assert s.rcpt(USER)[0] == 250
        s.data(b"Subject: smtplib\r\n\r\nx\r\n")


def test_errors_count(r):
    """Sequencing errors count toward max_errors (6): the sixth closes
    the session with 421."""
    c = session()
    c.cmd("EHLO client.example")
    for _ in range(5):
        assert c.cmd("RCPT TO:<%s>" % USER)[0] == 503
    assert c.cmd("DATA")[0] == 503
    code, text = c.reply()
    assert code == 421 and "too many errors" in text[0], (code, text)
    assert c.closed()


def test_log(r):
    log = SRV.log()
    assert "illegal state change" not in log
    assert "dropped" not in log
    for change in ("state connect -> helo", "state helo -> helo-hook",
                   "state ready -> mail-check", "state rcpt -> data-hook",
                   "state data -> sync", "state deliver -> ready",
                   "state rcpt -> bdat-hook", "state bdat -> chunked",
                   "state bdat -> chunk-failed"):
        assert change in log, change


for t in (test_rcpt_before_mail, test_before_helo, test_data_without_rcpt,
          test_mail_during_transaction, test_bdat_after_data,
          test_data_and_rcpt_after_bdat, test_refused_chunk,
          test_pipelined_after_354, test_pipelined_after_refused_data,
          test_burl_not_offered, test_smtplib_sequence, test_errors_count,
          test_log):
    R.run(t)
if R.failed:
    print(SRV.log())


def test_server_stops_cleanly(r):
    stop_clean(SRV)


def test_stop_between_chunks(r):
    """A graceful stop between BDAT chunks (CHUNKED) lets the transaction
    finish; an AUTH-less session that only said EHLO goes at once."""
    srv = smtp_server(R, name="chunkstop", relay=False)
    try:
        idle = Raw(srv.port("mx"))
        assert idle.reply()[0] == 220
        assert idle.cmd("EHLO client.example")[0] == 250
        busy = Raw(srv.port("mx"))
        busy.reply()
        busy.cmd("EHLO client.example")
        assert busy.cmd("MAIL FROM:<a@remote.example>")[0] == 250
        assert busy.cmd("RCPT TO:<%s>" % USER)[0] == 250
        part = b"Subject: stop\r\n\r\n"
        busy.send(b"BDAT %d\r\n" % len(part) + part)
        assert busy.reply()[0] == 250
        srv.daemon.signal(signal.SIGTERM)
        code, text = idle.reply()
        assert code == 421 and text[0].startswith("4.3.2"), (code, text)
        busy.send(b"BDAT 6 LAST\r\nlast\r\n")
        code, text = busy.reply()
        assert code == 250 and "queued" in text[0], (code, text)
        code, text = busy.reply()
        assert code == 421 and text[0].startswith("4.3.2"), (code, text)
        msgs = wait_messages(srv, USER, 1)
        assert strip_trace(msgs[0]) == b"Subject: stop\r\n\r\nlast\r\n"
        busy.close()
        srv.daemon.proc.wait(15)
    finally:
        stop_clean(srv)


R.run(test_server_stops_cleanly)
R.run(test_stop_between_chunks)
R.finish()
