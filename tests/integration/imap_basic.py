#!/usr/bin/env python3
"""IMAP messages with Python's imaplib against a real posternd: APPEND,
SELECT/EXAMINE, FETCH (every non-MIME item), STORE, SEARCH, ESEARCH,
COPY/MOVE with UIDPLUS, EXPUNGE, CLOSE/UNSELECT, CONDSTORE, QRESYNC,
and two sessions on one mailbox (RFC 3501 5.5 and 7.4.1).
"""
import imaplib
import re
import time

from imaptest import (finish, deliver, login, message, start_server,
                      Raw)
from testlib import Runner

R = Runner("imap_basic")
srv = start_server(R)


def ok(r):
    assert r[0] == "OK", r
    return r[1]


def fetch_one(m, seq, items):
    typ, data = m.fetch(seq, items)
    assert typ == "OK", data
    return data


def test_capability_before_and_after_login(R):
    m = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    caps = m.capabilities
    assert "STARTTLS" in caps and "AUTH=PLAIN" in caps, caps
    assert "IDLE" in caps and "LITERAL+" in caps, caps
    assert "UIDPLUS" not in caps, caps       # only once logged in
    typ, data = m.login("alice@example.org", "alice-secret")
    assert typ == "OK" and b"CAPABILITY" in data[0], data
    typ, data = m.capability()
    caps = data[0].decode().split()
    for c in ("UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC", "ESEARCH",
              "NAMESPACE", "SPECIAL-USE", "LIST-STATUS", "UNSELECT",
              "ENABLE", "ID", "CHILDREN"):
        assert c in caps, (c, caps)
    assert "STARTTLS" not in caps
    m.logout()


def test_wrong_password_then_right(R):
    m = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    try:
        m.login("alice@example.org", "wrong")
        raise AssertionError("login with a wrong password worked")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
    m.login("alice@example.org", "alice-secret")
    m.logout()


def test_authenticate_plain_with_initial_response(R):
    m = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    typ, _ = m.authenticate(
        "PLAIN", lambda _: b"\0alice@example.org\0alice-secret")
    assert typ == "OK"
    assert m.state == "AUTH"
    m.logout()


def test_append_select_fetch(R):
    m = login(srv)
    msg = message("append one", "line one\r\nline two\r\n")
    typ, data = m.append("INBOX", "(\\Flagged $Work)",
                         imaplib.Time2Internaldate(1700000000), msg)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    uidvalidity, uid = data[0].decode().split("APPENDUID ")[1] \
        .split("]")[0].split()
    typ, data = m.select("INBOX")
    assert typ == "OK"
    assert m.untagged_responses.get("UIDVALIDITY") == [uidvalidity.encode()]
    assert "READ-WRITE" in m.untagged_responses
    n = int(data[0])
    data = fetch_one(m, str(n), "(UID FLAGS RFC822.SIZE INTERNALDATE)")
    line = data[0].decode()
    assert "UID %s" % uid in line, line
    assert "RFC822.SIZE %d" % len(msg) in line, line
    assert "\\Flagged" in line and "$Work" in line, line
    assert "14-Nov-2023" in line, line     # 1700000000 = 2023-11-14
    data = fetch_one(m, str(n), "(BODY.PEEK[])")
    assert data[0][1] == msg
    data = fetch_one(m, str(n), "(BODY.PEEK[HEADER])")
    assert data[0][1] == msg.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    data = fetch_one(m, str(n), "(BODY.PEEK[TEXT])")
    assert data[0][1] == b"line one\r\nline two\r\n"
    data = fetch_one(m, str(n), "(BODY.PEEK[TEXT]<5.3>)")
    assert data[0][1] == b"one" and b"BODY[TEXT]<5>" in data[0][0], data
    data = fetch_one(m, str(n), "(BODY.PEEK[HEADER.FIELDS (Subject FROM)])")
    assert data[0][1] == (b"From: carol@example.net\r\n"
                          b"Subject: append one\r\n\r\n"), data
    data = fetch_one(m, str(n), "(BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT "
                                "FROM DATE MESSAGE-ID)])")
    assert data[0][1] == b"To: alice@example.org\r\n\r\n", data
    data = fetch_one(m, str(n), "(RFC822.HEADER)")
    assert data[0][1].endswith(b"\r\n\r\n")
    # PEEK left \Seen alone; BODY[] sets it and says so.
    data = fetch_one(m, str(n), "(FLAGS)")
    assert b"\\Seen" not in data[0], data
    data = fetch_one(m, str(n), "(BODY[])")
    assert b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0]
                                 for x in data), data
    m.logout()


def test_fetch_macros_and_errors(R):
    m = login(srv)
    m.select("INBOX")
    typ, data = m.fetch("1", "FAST")
    assert typ == "OK" and b"RFC822.SIZE" in data[0] and \
        b"INTERNALDATE" in data[0], data
    try:
        m.fetch("999", "(FLAGS)")
        raise AssertionError("FETCH of a sequence number out of range")
    except imaplib.IMAP4.error as e:
        assert "Invalid message sequence" in str(e), e
    try:
        m.fetch("1", "(NOSUCHITEM)")
        raise AssertionError("FETCH with an unknown item")
    except imaplib.IMAP4.error as e:
        assert "unknown fetch item" in str(e), e
    # UID FETCH of UIDs that do not exist is not an error.
    typ, data = m.uid("FETCH", "99999:100000", "(FLAGS)")
    assert typ == "OK" and data == [None], data
    m.logout()


def test_store_flags(R):
    m = login(srv)
    m.append("INBOX", None, None, message("store me"))
    typ, data = m.select("INBOX")
    n = data[0].decode()
    typ, data = m.store(n, "+FLAGS", "(\\Answered custom1)")
    assert typ == "OK" and b"\\Answered" in data[0] and \
        b"custom1" in data[0], data
    typ, data = m.store(n, "-FLAGS", "(custom1)")
    assert b"custom1" not in data[0], data
    typ, data = m.store(n, "FLAGS.SILENT", "(\\Draft)")
    assert typ == "OK" and data == [None], data
    data = fetch_one(m, n, "(FLAGS)")
    assert b"\\Draft" in data[0] and b"\\Answered" not in data[0], data
    try:
        m.store(n, "+FLAGS", "(\\Bogus)")
        raise AssertionError("STORE of an unknown system flag")
    except imaplib.IMAP4.error as e:
        assert "Invalid system flag" in str(e), e
    m.logout()


def test_search_keys(R):
    m = login(srv)
    m.create("Search")
    m.append("Search", "(\\Seen)", imaplib.Time2Internaldate(
        time.mktime((2024, 1, 10, 12, 0, 0, 0, 0, -1))),
        message("small", "x\r\n"))
    m.append("Search", "(\\Flagged kw1)", imaplib.Time2Internaldate(
        time.mktime((2024, 2, 10, 12, 0, 0, 0, 0, -1))),
        message("big", "y" * 5000 + "\r\n"))
    m.append("Search", "(\\Deleted)", imaplib.Time2Internaldate(
        time.mktime((2024, 3, 10, 12, 0, 0, 0, 0, -1))),
        message("third"))
    m.select("Search")

    def s(*keys):
        typ, data = m.search(None, *keys)
        assert typ == "OK", data
        return data[0].decode().split()

    assert s("ALL") == ["1", "2", "3"]
    assert s("SEEN") == ["1"]
    assert s("UNSEEN") == ["2", "3"]
    assert s("FLAGGED") == ["2"]
    assert s("UNFLAGGED") == ["1", "3"]
    assert s("DELETED") == ["3"]
    assert s("UNDELETED") == ["1", "2"]
    assert s("KEYWORD", "kw1") == ["2"]
    assert s("UNKEYWORD", "kw1") == ["1", "3"]
    assert s("LARGER", "1000") == ["2"]
    assert s("SMALLER", "1000") == ["1", "3"]
    assert s("BEFORE", "1-Feb-2024") == ["1"]
    assert s("SINCE", "1-Feb-2024") == ["2", "3"]
    assert s("ON", "10-Feb-2024") == ["2"]
    assert s("NOT", "SEEN") == ["2", "3"]
    assert s("OR", "SEEN", "DELETED") == ["1", "3"]
    assert s("(SEEN", "SMALLER", "1000)") == ["1"]
    assert s("2:*") == ["2", "3"]
    assert s("*") == ["3"]
    assert s("UID", "1:*", "NOT", "1") == ["2", "3"]
    assert s("RECENT") == ["1", "2", "3"]
    assert s("NEW") == ["2", "3"]
    assert s("OLD") == []
    assert s("ANSWERED") == [] and s("UNANSWERED") == ["1", "2", "3"]
    assert s("DRAFT") == [] and s("UNDRAFT") == ["1", "2", "3"]
    typ, data = m.uid("SEARCH", "ALL")
    uids = data[0].decode().split()
    assert len(uids) == 3
    typ, data = m.search("UTF-8", "ALL")
    assert typ == "OK"
    typ, data = m.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0], data
    try:
        m.search(None, "NOSUCHKEY")
        raise AssertionError("SEARCH with an unknown key")
    except imaplib.IMAP4.error as e:
        assert "unknown search key" in str(e), e
    # ESEARCH (RFC 4731)
    typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)",
                                  "ALL")
    assert typ == "OK"
    typ, data = m._untagged_response(typ, data, "ESEARCH")
    assert re.search(rb"MIN 1 MAX 3 COUNT 3", data[0]), data
    typ, data = m._simple_command("UID", "SEARCH", "RETURN", "()",
                                  "FLAGGED")
    typ, data = m._untagged_response(typ, data, "ESEARCH")
    assert re.search(rb"\) UID ALL %s$" % uids[1].encode(), data[0]), data
    m.logout()


def test_copy_move_uidplus(R):
    m = login(srv)
    m.create("Src")
    m.create("Dst")
    for i in range(3):
        m.append("Src", None, None, message("copy %d" % i))
    m.select("Src")
    typ, data = m.copy("1:2", "Dst")
    assert typ == "OK" and b"COPYUID" in data[0], data
    typ, data = m.copy("1", "NoSuchBox")
    assert typ == "NO" and b"TRYCREATE" in data[0], data
    typ, data = m._simple_command("MOVE", "1", "Dst")
    assert typ == "OK", data
    assert m.untagged_responses.get("EXPUNGE") == [b"1"], \
        m.untagged_responses
    assert "COPYUID" in m.untagged_responses
    typ, data = m.status("Dst", "(MESSAGES)")
    assert b"MESSAGES 3" in data[0], data
    typ, data = m.status("Src", "(MESSAGES)")
    assert b"MESSAGES 2" in data[0], data
    # UID MOVE of what is left.
    typ, data = m.uid("SEARCH", "ALL")
    last = data[0].split()[-1].decode()
    typ, data = m.uid("MOVE", last, "Dst")
    assert typ == "OK", data
    m.logout()


def test_expunge_close_unselect(R):
    m = login(srv)
    m.create("Exp")
    for i in range(4):
        m.append("Exp", None, None, message("exp %d" % i))
    m.select("Exp")
    m.store("1,3", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"3", b"1"] or data == [b"1", b"2"], \
        data
    typ, data = m.search(None, "ALL")
    assert data[0] == b"1 2", data
    # UID EXPUNGE only removes the UIDs named.
    m.store("1:2", "+FLAGS", "(\\Deleted)")
    typ, data = m.uid("SEARCH", "ALL")
    u1, u2 = data[0].decode().split()
    typ, data = m.uid("EXPUNGE", u2)
    assert typ == "OK", data
    typ, data = m.uid("SEARCH", "ALL")
    assert data[0].decode() == u1, data
    # UNSELECT keeps \Deleted messages, CLOSE removes them silently.
    typ, data = m._simple_command("UNSELECT")
    assert typ == "OK"
    typ, data = m.status("Exp", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0], data
    m.select("Exp")
    typ, data = m.close()
    assert typ == "OK"
    assert "EXPUNGE" not in m.untagged_responses
    typ, data = m.status("Exp", "(MESSAGES)")
    assert b"MESSAGES 0" in data[0], data
    # EXAMINE is read-only.
    m.append("Exp", None, None, message("ro"))
    typ, data = m.select("Exp", readonly=True)
    assert "READ-ONLY" in m.untagged_responses
    typ, data = m.store("1", "+FLAGS", "(\\Seen)")
    assert typ == "NO" and b"READ-ONLY" in data[0], data
    m.logout()


def test_condstore(R):
    m = login(srv)
    m.create("Cond")
    m.append("Cond", None, None, message("c1"))
    m.append("Cond", None, None, message("c2"))
    typ, data = m._simple_command("SELECT", "Cond", "(CONDSTORE)")
    assert typ == "OK"
    m.state = "SELECTED"   # imaplib does not know SELECT (CONDSTORE)
    hms = int(m.untagged_responses["HIGHESTMODSEQ"][0])
    assert hms > 0
    typ, data = m.fetch("1:*", "(MODSEQ)")
    modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", d).group(1))
               for d in data]
    assert max(modseqs) <= hms, (modseqs, hms)
    m.store("1", "+FLAGS", "(\\Flagged)")
    typ, data = m.fetch("1:*", "(FLAGS) (CHANGEDSINCE %d)" % hms)
    assert len(data) == 1 and data[0].startswith(b"1 "), data
    assert b"MODSEQ" in data[0], data
    # UNCHANGEDSINCE below the message's modseq fails it: MODIFIED.
    typ, data = m._simple_command("STORE", "1", "(UNCHANGEDSINCE 1)",
                                  "+FLAGS", "(\\Seen)")
    assert typ == "OK", data
    typ, data = m._untagged_response(typ, data, "MODIFIED")
    assert data == [b"1"], data
    # UNCHANGEDSINCE 0 fails every message (RFC 7162 3.1.3).
    typ, data = m._simple_command("STORE", "1:2", "(UNCHANGEDSINCE 0)",
                                  "+FLAGS", "(\\Answered)")
    typ, data = m._untagged_response(typ, data, "MODIFIED")
    assert data == [b"1:2"], data
    typ, data = m.search(None, "ANSWERED")
    assert data == [b""], data
    typ, data = m.search(None, "MODSEQ", str(hms + 1))
    assert data[0].startswith(b"1"), data
    typ, data = m.status("Cond", "(HIGHESTMODSEQ)")
    assert b"HIGHESTMODSEQ" in data[0], data
    m.logout()


def test_qresync(R):
    m = login(srv)
    m.create("Qr")
    for i in range(3):
        m.append("Qr", None, None, message("q %d" % i))
    m.select("Qr")
    uv = int(m.untagged_responses["UIDVALIDITY"][0])
    typ, data = m.uid("SEARCH", "ALL")
    uids = data[0].decode().split()
    hms = int(m.untagged_responses["HIGHESTMODSEQ"][0])
    m.store("1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.logout()

    r = Raw(srv.port("imap"))
    r.login()
    out = r.cmd("e", "ENABLE QRESYNC")
    assert "* ENABLED QRESYNC" in out[0] or "QRESYNC" in out[0], out
    out = r.cmd("s", "SELECT Qr (QRESYNC (%d %d %s))" %
                (uv, hms, ",".join(uids)))
    assert out[-1].startswith("s OK"), out
    assert "* VANISHED (EARLIER) %s" % uids[0] in out, out
    # An expunge now comes as VANISHED, not EXPUNGE.
    r.cmd("t", "UID STORE %s +FLAGS (\\Deleted)" % uids[1])
    out = r.cmd("x", "EXPUNGE")
    assert "* VANISHED %s" % uids[1] in out, out
    assert not any("EXPUNGE" in l for l in out[:-1]), out
    out = r.cmd("f", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert any(l.startswith("* VANISHED (EARLIER)") for l in out), out
    r.close()


def test_two_sessions_see_each_other(R):
    a = login(srv)
    b = login(srv)
    a.create("Shared")
    for i in range(3):
        a.append("Shared", None, None, message("shared %d" % i))
    a.select("Shared")
    b.select("Shared")
    # a flags message 2: b hears of it on NOOP.
    a.store("2", "+FLAGS", "(\\Flagged)")
    typ, data = b.noop()
    fetches = b.untagged_responses.get("FETCH", [])
    assert any(b"\\Flagged" in f for f in fetches), b.untagged_responses
    # a expunges message 1: b is not told during FETCH (7.4.1) ...
    a.store("1", "+FLAGS", "(\\Deleted)")
    a.expunge()
    b.untagged_responses.clear()
    typ, data = b.fetch("1:3", "(FLAGS)")
    assert "EXPUNGE" not in b.untagged_responses, b.untagged_responses
    # RFC 2180 4.1.1: the content of the expunged message is gone, but
    # the FETCH says what the index knows and does not fail.
    typ, data = b.fetch("1:3", "(UID RFC822.SIZE BODY.PEEK[HEADER])")
    assert typ == "OK", data
    plain = [d for d in data if isinstance(d, bytes)]
    assert any(d.startswith(b"1 (UID ") and b"RFC822.SIZE" in d
               for d in plain), data
    assert sum(isinstance(d, tuple) for d in data) == 2, data
    assert "EXPUNGE" not in b.untagged_responses, b.untagged_responses
    # ... but on NOOP, and numbers shift only then.
    typ, data = b.noop()
    assert b.untagged_responses.get("EXPUNGE") == [b"1"], \
        b.untagged_responses
    typ, data = b.search(None, "ALL")
    assert data[0] == b"1 2", data
    # A new message from a: EXISTS for b.
    a.append("Shared", None, None, message("shared new"))
    b.untagged_responses.clear()
    b.noop()
    assert b.untagged_responses.get("EXISTS") == [b"3"], \
        b.untagged_responses
    a.logout()
    b.logout()


def test_idle_woken_by_delivery_and_append(R):
    r = Raw(srv.port("imap"))
    r.login()
    r.cmd("s", "SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ "), "no IDLE continuation"
    # A delivery straight into new/ (as an MTA or LDA does).
    deliver(srv, "alice@example.org", message("idle delivery"))
    line = ""
    deadline = time.time() + 10
    while time.time() < deadline:
        line = r.line()
        if line.endswith("EXISTS"):
            break
    assert line.endswith("EXISTS"), line
    # Another session's APPEND wakes it too.
    other = login(srv)
    other.append("INBOX", None, None, message("idle append"))
    other.logout()
    while time.time() < deadline + 10:
        line2 = r.line()
        if line2.endswith("EXISTS"):
            break
    assert line2.endswith("EXISTS") and line2 != line, (line, line2)
    r.send(b"DONE\r\n")
    out = r.until("i")
    assert out[-1] == "i OK IDLE terminated", out
    out = r.cmd("n", "NOOP")
    assert out[-1].startswith("n OK"), out
    r.close()


def test_idle_sees_flags_and_expunge_from_another_session(R):
    other = login(srv)
    other.create("IdleBox")
    for i in range(3):
        other.append("IdleBox", None, None, message("idlebox %d" % i))
    other.select("IdleBox")
    r = Raw(srv.port("imap"))
    r.login()
    r.cmd("s", "SELECT IdleBox")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")

    def wait_for(pred, what):
        deadline = time.time() + 10
        seen = []
        while time.time() < deadline:
            line = r.line()
            seen.append(line)
            if pred(line):
                return seen
        raise AssertionError("no %s in %r" % (what, seen))

    other.store("2", "+FLAGS", "(\\Flagged)")
    wait_for(lambda l: l.startswith("* 2 FETCH (FLAGS (")
             and "\\Flagged" in l, "FETCH FLAGS")
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    wait_for(lambda l: l == "* 1 EXPUNGE", "EXPUNGE")
    r.send(b"DONE\r\n")
    out = r.until("i")
    assert out[-1] == "i OK IDLE terminated", out
    out = r.cmd("f", "FETCH 1:* (FLAGS)")
    assert len(out) == 3 and "\\Flagged" in out[0], out
    other.logout()
    r.close()


def test_noop_check_namespace_id_enable(R):
    m = login(srv)
    typ, data = m.namespace()
    assert typ == "OK" and data[0] == b'(("" "/")) NIL NIL', data
    typ, data = m.xatom("ID", '("name" "imaplib")')
    assert typ == "OK"
    assert b"postern" in m.untagged_responses["ID"][0]
    typ, data = m.enable("CONDSTORE")
    assert typ == "OK"
    m.select("INBOX")
    typ, data = m.check()
    assert typ == "OK"
    typ, data = m.noop()
    assert typ == "OK"
    m.logout()


def test_large_fetch_in_steps_slow_reader(R):
    # More than fetch_batch (256K) of output: the FETCH runs in steps,
    # and waits for the output to drain while the client does not read.
    m = login(srv)
    m.create("Big")
    bodies = []
    for i in range(40):
        body = ("%04d " % i + "z" * 70 + "\r\n") * 1500   # ~115 KB each
        bodies.append(message("big %d" % i, body))
        m.append("Big", None, None, bodies[-1])
    m.logout()
    r = Raw(srv.port("imap"))
    r.login()
    r.cmd("s", "SELECT Big")
    # A small window, so that the reply waits on the client; 4 KiB made
    # loopback TCP crawl (40 KB/s, two minutes) for nothing.
    r.sock.setsockopt(__import__("socket").SOL_SOCKET,
                      __import__("socket").SO_RCVBUF, 16384)
    r.send(b"f FETCH 1:* (BODY.PEEK[])\r\n")
    time.sleep(1.5)                 # the server fills the socket and waits
    got = []
    for i in range(40):
        line = r.line()
        assert line.startswith("* %d FETCH (BODY[] {" % (i + 1)), line
        n = int(line.split("{")[1].rstrip("}"))
        while len(r.buf) < n:
            chunk = r.sock.recv(65536)
            assert chunk, "closed mid-literal"
            r.buf += chunk
        got.append(r.buf[:n])
        r.buf = r.buf[n:]
        assert r.line() == ")", "literal not followed by )"
    out = r.until("f")
    assert out[-1] == "f OK Fetch completed", out
    assert got == bodies
    # The session goes on after the big reply.
    out = r.cmd("n", "NOOP")
    assert out[-1].startswith("n OK"), out
    r.close()


def test_login_with_literals(R):
    r = Raw(srv.port("imap"))
    r.send(b"l LOGIN {17}\r\n")
    assert r.line().startswith("+ "), "no continuation"
    r.send(b"alice@example.org {12+}\r\nalice-secret\r\n")
    out = r.until("l")
    assert out[-1].startswith("l OK"), out
    r.close()


def test_pipelined_commands(R):
    r = Raw(srv.port("imap"))
    r.login()
    r.send(b"p1 SELECT INBOX\r\np2 NOOP\r\np3 UID SEARCH ALL\r\n"
           b"p4 LOGOUT\r\n")
    out = r.until("p4")
    tags = [l.split()[0] for l in out if not l.startswith("*")]
    assert tags == ["p1", "p2", "p3", "p4"], out
    r.close()


def test_line_over_max_line_tagged(R):
    # max_line_length is 64K: a line past it and past 64 KiB is still
    # in the session's input buffer (max_line_length + 4K), so the BAD
    # names its tag; the connection goes on.
    r = Raw(srv.port("imap"))
    r.send(b"t1 NOOP " + b"x" * 66000 + b"\r\n")
    line = r.line()
    assert line.startswith("t1 BAD") and "too long" in line, line
    out = r.cmd("t2", "NOOP")
    assert out[-1].startswith("t2 OK"), out
    r.close()


for t in (test_capability_before_and_after_login,
          test_wrong_password_then_right,
          test_authenticate_plain_with_initial_response,
          test_append_select_fetch, test_fetch_macros_and_errors,
          test_store_flags, test_search_keys, test_copy_move_uidplus,
          test_expunge_close_unselect, test_condstore, test_qresync,
          test_two_sessions_see_each_other,
          test_idle_woken_by_delivery_and_append,
          test_idle_sees_flags_and_expunge_from_another_session,
          test_noop_check_namespace_id_enable,
          test_large_fetch_in_steps_slow_reader, test_login_with_literals,
          test_pipelined_commands, test_line_over_max_line_tagged):
    R.run(t)
finish(R, srv)
