#!/usr/bin/env python3
"""IMAP4rev2 (RFC 9051) and UTF8=ACCEPT (RFC 6855) against a real
posternd: both announced, ENABLE of each (and refused once a mailbox is
selected), a rev2 session without \\Recent (SELECT, FETCH FLAGS, the
updates of a NOOP, SEARCH RECENT/NEW/OLD and STATUS RECENT refused),
SEARCH answered with ESEARCH, SELECT's LIST, mailbox names in UTF-8 in
and out (and modified UTF-7 for an IMAP4rev1 session on the same
mailboxes), SEARCH CHARSET refused after UTF8=ACCEPT, APPEND UTF8, and
an IMAP4rev1 session beside them that sees what it always saw.
"""
import re

from imaptest import Raw, deliver, finish, message, start_server
from testlib import Runner

R = Runner("imap_rev2")
srv = start_server(R)
USER = "alice@example.org"


def raw(enable=None):
    r = Raw(srv.port("imap"))
    r.login()
    if enable:
        out = r.cmd("e", "ENABLE " + enable)
        assert out[-1].startswith("e OK"), out
    return r


def ok(r, text, tag="t"):
    out = r.cmd(tag, text)
    assert out[-1].startswith(tag + " OK"), (text, out)
    return out[:-1]


def bad(r, text, tag="t"):
    out = r.cmd(tag, text)
    assert out[-1].startswith(tag + " BAD"), (text, out)
    return out


def test_capability(R):
    r = Raw(srv.port("imap"))
    caps = r.cmd("c", "CAPABILITY")[0].split()
    assert "IMAP4rev1" in caps and "IMAP4rev2" in caps, caps
    r.login()
    caps = r.cmd("c", "CAPABILITY")[0].split()
    for c in ("IMAP4rev1", "IMAP4rev2", "UTF8=ACCEPT", "ENABLE"):
        assert c in caps, (c, caps)
    r.close()


def test_enable(R):
    r = raw()
    assert ok(r, "ENABLE IMAP4rev2 UTF8=ACCEPT X-UNKNOWN") == \
        ["* ENABLED UTF8=ACCEPT IMAP4rev2"]
    # what is on already is not enabled again (RFC 5161 3.1)
    assert ok(r, "ENABLE IMAP4rev2") == ["* ENABLED"]
    r.close()
    # once a mailbox is selected, what changes names and \Recent is BAD
    # and enables nothing; CONDSTORE is taken as before
    r = raw()
    ok(r, "SELECT INBOX")
    bad(r, "ENABLE IMAP4rev2")
    bad(r, "ENABLE UTF8=ACCEPT CONDSTORE")
    out = ok(r, "SEARCH ALL")
    assert out[0].startswith("* SEARCH"), out
    assert ok(r, "ENABLE CONDSTORE") == ["* ENABLED CONDSTORE"]
    r.close()


def test_rev2_select_no_recent(R):
    deliver(srv, USER, message("rev2 one"))
    deliver(srv, USER, message("rev2 two"))
    r = raw("IMAP4rev2")
    out = ok(r, "SELECT INBOX")
    assert not [l for l in out if "RECENT" in l or "[UNSEEN" in l], out
    assert '* LIST () "/" "INBOX"' in out, out
    assert "* 2 EXISTS" in out, out
    # the messages are this session's recent ones, but rev2 has no
    # \Recent to show
    out = ok(r, "FETCH 1:* (FLAGS)")
    assert out == ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"], out
    deliver(srv, USER, message("rev2 three"))
    out = ok(r, "NOOP")
    assert out == ["* 3 EXISTS"], out
    # the view is current and watched now: FETCH of FLAGS is answered
    # on the loop (imap_fastpath.py), without \Recent too
    assert ok(r, "FETCH 3 FLAGS") == ["* 3 FETCH (FLAGS ())"]
    out = ok(r, "UID FETCH 1:* FLAGS")
    assert len(out) == 3 and all("(FLAGS () UID " in l for l in out), out
    # a rev1 session on the same mailbox still has RECENT
    r1 = raw()
    out = ok(r1, "SELECT INBOX")
    assert "* 0 RECENT" in out and '* LIST () "/" "INBOX"' not in out, out
    deliver(srv, USER, message("rev1 four"))
    out = ok(r1, "NOOP")
    assert out == ["* 4 EXISTS", "* 1 RECENT"], out
    out = ok(r1, "FETCH 4 FLAGS")
    assert out == ["* 4 FETCH (FLAGS (\\Recent))"], out
    # reselecting says [CLOSED] first
    out = ok(r, "EXAMINE INBOX")
    assert out[0].startswith("* OK [CLOSED]"), out
    assert '* LIST () "/" "INBOX"' in out, out
    r.close()
    r1.close()


def test_rev2_search(R):
    r = raw("IMAP4rev2")
    ok(r, "SELECT INBOX")
    assert ok(r, "SEARCH ALL", "s1") == ['* ESEARCH (TAG "s1") ALL 1:4']
    out = ok(r, "UID SEARCH SUBJECT rev2", "s2")
    assert re.match(r'^\* ESEARCH \(TAG "s2"\) UID ALL \d+:\d+$', out[0]), \
        out
    assert ok(r, "SEARCH SUBJECT nowhere", "s3") == ['* ESEARCH (TAG "s3")']
    assert ok(r, "UID SEARCH SUBJECT nowhere", "s4") == \
        ['* ESEARCH (TAG "s4") UID']
    # what RETURN asks for is answered as before
    assert ok(r, "SEARCH RETURN (COUNT) ALL", "s5") == \
        ['* ESEARCH (TAG "s5") COUNT 4']
    for key in ("RECENT", "NEW", "OLD", "NOT (OR SEEN RECENT)"):
        bad(r, "SEARCH " + key)
        bad(r, "UID SEARCH " + key)
    bad(r, "SORT (DATE) UTF-8 NEW")
    bad(r, "STATUS INBOX (MESSAGES RECENT)")
    bad(r, 'LIST "" "*" RETURN (STATUS (RECENT))')
    out = ok(r, "STATUS INBOX (MESSAGES SIZE DELETED)")
    assert re.match(r'^\* STATUS "INBOX" \(MESSAGES 4 SIZE \d+ DELETED 0\)$',
                    out[0]), out
    r.close()
    # rev1 alone: * SEARCH and RECENT as always
    r1 = raw()
    ok(r1, "SELECT INBOX")
    assert ok(r1, "SEARCH ALL") == ["* SEARCH 1 2 3 4"]
    assert ok(r1, "SEARCH OLD") == ["* SEARCH 1 2 3 4"]
    out = ok(r1, "STATUS INBOX (RECENT)")
    assert out == ['* STATUS "INBOX" (RECENT 0)'], out
    r1.close()


def names(lines, verb="LIST"):
    out = []
    for line in lines:
        m = re.match(r'^\* %s \([^)]*\) "/" (.*)$' % verb, line)
        if m:
            out.append(m.group(1))
    return out


def test_utf8_names(R):
    for enable in ("IMAP4rev2", "UTF8=ACCEPT"):
        r = raw(enable)
        r1 = raw()
        ok(r, 'CREATE "Entwürfe"')
        ok(r, 'CREATE "a&b/Grüße"')
        # "&" is itself in UTF-8: "&APw-" is a name of five characters
        ok(r, 'CREATE "x&APw-"')
        out = names(ok(r, 'LIST "" "*"'))
        for n in ('"Entwürfe"', '"a&b"', '"a&b/Grüße"', '"x&APw-"'):
            assert n in out, (n, out)
        out = names(ok(r1, 'LIST "" "*"'))
        for n in ('"Entw&APw-rfe"', '"a&-b"', '"a&-b/Gr&APwA3w-e"',
                  '"x&-APw-"'):
            assert n in out, (n, out)
        # patterns in UTF-8, and STATUS, SUBSCRIBE, LSUB, SELECT
        assert names(ok(r, 'LIST "" "Entw*"')) == ['"Entwürfe"']
        assert names(ok(r, 'LIST "a&b/" "%"')) == ['"a&b/Grüße"']
        ok(r, 'SUBSCRIBE "a&b/Grüße"')
        assert names(ok(r, 'LSUB "" "*"'), "LSUB") == ['"a&b/Grüße"']
        assert names(ok(r1, 'LSUB "" "*"'), "LSUB") == \
            ['"a&-b/Gr&APwA3w-e"']
        out = ok(r, 'STATUS "Entwürfe" (MESSAGES)')
        assert out == ['* STATUS "Entwürfe" (MESSAGES 0)'], out
        out = ok(r1, 'STATUS "Entw&APw-rfe" (MESSAGES)')
        assert out == ['* STATUS "Entw&APw-rfe" (MESSAGES 0)'], out
        ok(r, 'SELECT "Entwürfe"')
        ok(r, "UNSELECT")
        # not UTF-8, or a control character: no such name
        out = r.cmd("t", b'CREATE "bad\xff"')
        assert out[-1].startswith("t NO"), out
        out = r.cmd("t", b'CREATE "bad\xc3"')
        assert out[-1].startswith("t NO"), out
        out = r.cmd("t", b'CREATE {4+}\r\nb\x01ad')
        assert out[-1].startswith("t NO"), out
        for n in ("Entwürfe", "a&b/Grüße", "x&APw-"):
            ok(r, 'DELETE "%s"' % n)
        r.close()
        r1.close()


SUBJECT = "Grüße aus Köln"
UTF8_MSG = ("From: Jörg <joerg@example.org>\r\nTo: alice@example.org\r\n"
            "Subject: %s\r\nMessage-ID: <u8@example.org>\r\n"
            "Date: Mon, 4 Mar 2024 10:00:00 +0100\r\n\r\n"
            "Hallo\r\n" % SUBJECT).encode()


def test_utf8_accept(R):
    r = raw("UTF8=ACCEPT")
    ok(r, 'CREATE "Intl"')
    ok(r, 'SELECT "Intl"')
    # APPEND UTF8 (literal8), RFC 6855 4
    r.send(b"a APPEND Intl UTF8 (~{%d}\r\n" % len(UTF8_MSG))
    assert r.line().startswith("+"), "no continuation"
    r.send(UTF8_MSG + b")\r\n")
    out = r.until("a")
    assert out[-1].startswith("a OK"), out
    r.send(b"a APPEND Intl (\\Seen) UTF8 (~{%d+}\r\n" % len(UTF8_MSG) +
           UTF8_MSG + b")\r\n")
    out = r.until("a")
    assert out[-1].startswith("a OK"), out
    # two over literal_memory (256K) in one MULTIAPPEND: spooled
    big = UTF8_MSG + b"y" * 300000 + b"\r\n"
    part = b"UTF8 (~{%d+}\r\n" % len(big) + big + b")"
    r.send(b"m APPEND Big " + part + b" " + part + b"\r\n")
    out = r.until("m")
    assert out[-1].startswith("m NO [TRYCREATE]"), out
    ok(r, "CREATE Big")
    r.send(b"m APPEND Big " + part + b" " + part + b"\r\n")
    out = r.until("m")
    assert out[-1].startswith("m OK [APPENDUID"), out
    out = ok(r, 'STATUS Big (MESSAGES SIZE)')
    assert out == ['* STATUS "Big" (MESSAGES 2 SIZE %d)' % (2 * len(big))], \
        out
    ok(r, "DELETE Big")
    # and as a CATENATE part
    r.send(b"a APPEND Intl CATENATE (UTF8 (~{%d+}\r\n" % len(UTF8_MSG) +
           UTF8_MSG + b") TEXT {6+}\r\nmore\r\n)\r\n")
    out = r.until("a")
    assert out[-1].startswith("a OK"), out
    # a quoted UTF-8 string finds it; a CHARSET is refused (RFC 6855 3)
    assert ok(r, 'SEARCH SUBJECT "Grüße"') == ["* SEARCH 1 2 3"]
    bad(r, 'SEARCH CHARSET UTF-8 SUBJECT "Grüße"')
    # the header as it is, no downgrade
    out = ok(r, "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert "Subject: " + SUBJECT in out, out
    ok(r, "CLOSE")
    r.close()
    # without UTF8=ACCEPT: UTF8 is BAD, SEARCH CHARSET as before
    for enable in (None, "IMAP4rev2"):
        r = raw(enable)
        out = r.cmd("a", b"APPEND Intl UTF8 (~{5+}\r\nab\r\n\r\n)")
        assert out[-1].startswith("a BAD"), out
        out = r.cmd("a", b"APPEND Intl CATENATE "
                    b"(UTF8 (~{5+}\r\nab\r\n\r\n))")
        assert out[-1].startswith("a BAD"), out
        ok(r, "SELECT Intl")
        out = ok(r, 'SEARCH CHARSET UTF-8 SUBJECT "Grüße"')
        assert out[0] in ("* SEARCH 1 2 3", '* ESEARCH (TAG "t") ALL 1:3'), \
            out
        r.close()


for t in (test_capability, test_enable, test_rev2_select_no_recent,
          test_rev2_search, test_utf8_names, test_utf8_accept):
    R.run(t)
finish(R, srv)
