#!/usr/bin/env python3
"""APPEND's extensions against a real posternd: MULTIAPPEND (RFC 3502)
with APPENDUID sets (RFC 4315), all or nothing; messages spilled to the
spool (over literal_memory) mixed with small ones; the limits a hostile
client meets (messages per command, octets per command, the worker's
RSS while it sends many large messages).

Messages are sent with raw sockets (imaplib sends one literal per
command) and read back with imaplib.
"""
import imaplib
import os
import re

from hostile import WorkerMemory
from imaptest import PASSWORDS, Raw, finish, login, message, start_server
from testlib import Runner

MIB = 1 << 20
LITERAL_MEMORY = 64 * 1024
MAX_LITERAL = 8 * MIB

os.environ["ASAN_OPTIONS"] = ":".join(
    x for x in (os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=4")
    if x)

R = Runner("imap_append")
srv = start_server(R, '''
  literal_memory = "64K";
  max_literal_size = "8M";
  commands_per_second = 0;
''')


def big_message(subject, size, seed=0):
    line = bytes((97 + (i * 7 + seed) % 26) for i in range(76)) + b"\r\n"
    return message(subject, (line * (size // len(line))).decode())


def raw():
    r = Raw(srv.port("imap"), timeout=30)
    r.login()
    return r


def multiappend(r, tag, mailbox, parts, sync=True):
    """APPEND of several messages: parts are (options, data) pairs, sent
    as synchronising literals (each waiting for "+"), or all at once as
    LITERAL+.  Returns the reply lines; stops at a refused literal
    (r.sent: how many were sent)."""
    r.send(b"%s APPEND %s" % (tag.encode(), mailbox.encode()))
    r.sent = 0
    for opts, data in parts:
        r.send(b" " + (opts.encode() + b" " if opts else b"") +
               b"{%d%s}\r\n" % (len(data), b"" if sync else b"+"))
        if sync:
            line = r.line()
            if not line.startswith("+"):
                return [line]
        r.send(data)
        r.sent += 1
    r.send(b"\r\n")
    return r.until(tag)


def appenduid(line):
    m = re.search(r"\[APPENDUID (\d+) ([\d:,]+)\]", line)
    assert m, line
    uids = []
    for part in m.group(2).split(","):
        lo, _, hi = part.partition(":")
        uids += range(int(lo), int(hi or lo) + 1)
    return int(m.group(1)), uids


def count(mailbox):
    m = login(srv)
    typ, d = m.select(mailbox, readonly=True)
    m.logout()
    return int(d[0])


def test_capability(R):
    m = login(srv)
    typ, d = m.capability()
    assert b"MULTIAPPEND" in d[0].split(), d
    m.logout()


def test_multiappend_small_and_spilled(R):
    """Three messages, the middle one over literal_memory (spooled), and
    a fourth also spooled: each comes back byte for byte, with its
    flags and date, under the UIDs APPENDUID names."""
    m = login(srv)
    m.create("Multi")
    m.logout()
    msgs = [("(\\Seen)", message("multi one")),
            ("", big_message("multi two", 300 * 1024, 1)),
            ('(\\Flagged $Work) "05-Mar-2024 10:11:12 +0100"',
             message("multi three")),
            ("", big_message("multi four", 200 * 1024, 2))]
    for sync in (True, False):
        r = raw()
        out = multiappend(r, "a", "Multi", msgs, sync)
        r.close()
        assert out[-1].startswith("a OK"), out
        uidvalidity, uids = appenduid(out[-1])
        assert len(uids) == 4 and uids == sorted(uids), uids
        m = login(srv)
        m.select("Multi", readonly=True)
        for (opts, data), uid in zip(msgs, uids):
            typ, d = m.uid("FETCH", str(uid),
                           "(FLAGS INTERNALDATE BODY.PEEK[])")
            assert typ == "OK" and d[0] is not None, (uid, d)
            assert d[0][1] == data, "message %d differs" % uid
            if "\\Seen" in opts:
                assert b"\\Seen" in d[0][0], d[0][0]
            if "$Work" in opts:
                assert b"\\Flagged" in d[0][0] and b"$Work" in d[0][0]
                assert b"05-Mar-2024 10:11:12 +0100" in d[0][0], d[0][0]
        typ, d = m.status("Multi", "(UIDVALIDITY)")
        assert ("UIDVALIDITY %d" % uidvalidity).encode() in d[0], d
        m.logout()


def test_multiappend_selected_gets_exists(R):
    """In the selected mailbox the new messages are announced with
    EXISTS before the tagged OK."""
    r = raw()
    out = r.cmd("s", "SELECT Multi")
    n = int([l for l in out if l.endswith(" EXISTS")][0].split()[1])
    out = multiappend(r, "a", "Multi", [("", message("sel 1")),
                                       ("", message("sel 2"))])
    assert out[-1].startswith("a OK [APPENDUID"), out
    assert "* %d EXISTS" % (n + 2) in out, out
    r.close()


def test_all_or_nothing_store_failure(R):
    """The second message needs a 27th keyword the store cannot make:
    the first, already written, must not appear."""
    m = login(srv)
    m.create("Atomic")
    m.logout()
    kws = " ".join("kw%d" % i for i in range(26))
    r = raw()
    out = multiappend(r, "a", "Atomic", [("(%s)" % kws, message("ok"))])
    assert out[-1].startswith("a OK"), out
    out = multiappend(r, "b", "Atomic", [
        ("(\\Seen)", message("first of the failing")),
        ("(kw27)", message("second of the failing")),
        ("", big_message("third of the failing", 100 * 1024))])
    assert out[-1].startswith("b NO"), out
    r.close()
    assert count("Atomic") == 1
    m = login(srv)
    m.select("Atomic", readonly=True)
    typ, d = m.search(None, "SUBJECT", "failing")
    assert d[0] == b"", d
    m.logout()
    # nothing left behind in tmp/ or cur/
    base = os.path.join(srv.maildir("alice@example.org"), ".Atomic")
    assert os.listdir(os.path.join(base, "tmp")) == [], \
        os.listdir(os.path.join(base, "tmp"))
    assert len(os.listdir(os.path.join(base, "cur"))) == 1


def test_all_or_nothing_bad_message(R):
    """An empty third message, a bad date in the second, a missing
    mailbox: NO or BAD, and none of the messages is stored."""
    before = count("Multi")
    r = raw()
    out = multiappend(r, "a", "Multi", [("", message("e1")),
                                       ("", message("e2")), ("", b"")])
    assert out[-1].startswith("a NO"), out
    out = multiappend(r, "b", "Multi", [
        ("", message("d1")), ('"31-Foo-2024 10:00:00 +0000"',
                              message("d2"))])
    assert out[-1].startswith("b BAD"), out
    out = multiappend(r, "c", "NoSuchBox", [("", message("t1")),
                                           ("", message("t2"))])
    assert out[-1].startswith("c NO [TRYCREATE]"), out
    out = r.cmd("d", "NOOP")
    assert out[-1].startswith("d OK"), out
    r.close()
    assert count("Multi") == before


def test_too_big_together(R):
    """Messages of one APPEND hold at most max_literal_size together:
    the literal past it is refused from its announcement (BAD [TOOBIG]
    before it is sent, or BYE for LITERAL+), and nothing is stored."""
    before = count("Multi")
    part = big_message("toobig", 3 * MIB)
    r = raw()
    out = multiappend(r, "a", "Multi", [("", part)] * 3)
    assert re.match(r"a BAD \[TOOBIG\]", out[-1]), out
    assert r.sent == 2, r.sent
    out = r.cmd("b", "NOOP")
    assert out[-1].startswith("b OK"), out
    r.close()
    r = raw()
    r.send(b"a APPEND Multi {%d+}\r\n" % len(part) + part +
           b" {%d+}\r\n" % len(part) + part + b" {%d+}\r\n" % len(part))
    line = r.line()
    assert line.startswith("* BYE [TOOBIG]"), line
    r.close()
    assert count("Multi") == before


def test_message_count_limit(R):
    """More than 1000 messages in one APPEND: NO [LIMIT], none stored."""
    before = count("Multi")
    one = message("tiny")
    r = raw()
    r.send(b"a APPEND Multi" + (b" {%d+}\r\n" % len(one) + one) * 1001 +
           b"\r\n")
    out = r.until("a")
    assert out[-1].startswith("a NO [LIMIT]"), out
    r.close()
    assert count("Multi") == before


def test_memory_while_sending_large_messages(R):
    """Seven messages of 1 MiB (each over literal_memory) in one APPEND,
    sent as fast as the socket takes them: the worker's RSS grows by
    far less than what the client sent, and all seven arrive."""
    mem = WorkerMemory(srv.daemon)
    data = [big_message("mem %d" % i, MIB, i) for i in range(7)]
    r = raw()
    out = multiappend(r, "a", "Multi", [("", d) for d in data], sync=False)
    assert out[-1].startswith("a OK"), out
    r.close()
    growth = mem.growth()
    print("  peak RSS growth %.1f MiB for 7 MiB sent" % (growth / MIB))
    mem.assert_growth_below(4 * MIB)
    _, uids = appenduid(out[-1])
    m = login(srv)
    m.select("Multi", readonly=True)
    typ, d = m.uid("FETCH", str(uids[-1]), "(BODY.PEEK[])")
    assert d[0][1] == data[-1]
    m.logout()


R.run(test_capability)
R.run(test_multiappend_small_and_spilled)
R.run(test_multiappend_selected_gets_exists)
R.run(test_all_or_nothing_store_failure)
R.run(test_all_or_nothing_bad_message)
R.run(test_too_big_together)
R.run(test_message_count_limit)
R.run(test_memory_while_sending_large_messages)
finish(R, srv)
