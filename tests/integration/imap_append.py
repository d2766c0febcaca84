#!/usr/bin/env python3
"""APPEND's extensions against a real posternd: MULTIAPPEND (RFC 3502)
with APPENDUID sets (RFC 4315), all or nothing; messages spilled to the
spool (over literal_memory) mixed with small ones; the limits a hostile
client meets (messages per command, octets per command, the worker's
RSS while it sends many large messages).  BINARY (RFC 3516): FETCH
BINARY / BINARY.PEEK / BINARY.SIZE of base64 and quoted-printable parts
(whole, partial, a large one over many FETCH steps with the RSS
bounded), [UNKNOWN-CTE], APPEND of literal8 with NUL octets (in memory
and spooled) read back, NUL refused in plain literals.  CATENATE (RFC
4469) with IMAP URLs (RFC 5092): TEXT and URL parts (sections, partial,
absolute, server-relative and ;UID= forms), [BADURL] for URLs naming
nothing this user may read (another user, another host, a wrong
UIDVALIDITY, a missing message or part, URLAUTH, a path out of the
store), [TOOBIG], all or none with MULTIAPPEND, the part limit, and the
worker's RSS while large messages are put together.

Messages are sent with raw sockets (imaplib sends one literal per
command) and read back with imaplib.
"""
import base64
import imaplib
import os
import re

from hostile import WorkerMemory
from imaptest import (PASSWORDS, Raw, deliver, finish, login, message,
                      start_server)
from testlib import SANITIZED, Runner

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


def mime_message(parts, subject="binary"):
    """A multipart/mixed of (headers, body) parts, as bytes."""
    out = (b"From: carol@example.net\r\nTo: alice@example.org\r\n"
           b"Subject: " + subject.encode() + b"\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           b"preamble\r\n")
    for headers, body in parts:
        out += b"--b1\r\n" + headers + b"\r\n" + body + b"\r\n"
    return out + b"--b1--\r\n"


PAYLOAD = bytes(range(256)) * 3 + b"\x00end\r\nbare\nlf\rcr"
QP_TEXT = b"caf=C3=A9 tr=\r\nop  \r\nline=3D2\r\n"
QP_DECODED = b"caf\xc3\xa9 trop\r\nline=2\r\n"
B64 = base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
BIN_MSG = mime_message([
    (b"Content-Type: text/plain\r\n", b"plain text"),
    (b"Content-Type: application/octet-stream\r\n"
     b"Content-Transfer-Encoding: base64\r\n", B64),
    (b"Content-Type: text/plain; charset=utf-8\r\n"
     b"Content-Transfer-Encoding: quoted-printable\r\n", QP_TEXT),
    (b"Content-Type: application/x-thing\r\n"
     b"Content-Transfer-Encoding: x-uuencode\r\n", b"begin 644 x\r\n"),
])


def binary_select(box="Binary", msg=BIN_MSG):
    m = login(srv)
    m.create(box)
    typ, d = m.append(box, None, None, msg)
    assert typ == "OK", d
    m.select(box)
    return m


def fetch_parts(m, seq, items):
    """FETCH seq (items): {item name: value} of the response."""
    typ, d = m.fetch(seq, "(%s)" % items)
    assert typ == "OK", d
    out, text = {}, b""
    for x in d:
        if isinstance(x, tuple):
            text += x[0]
            key = re.search(rb"(BINARY(?:\.SIZE)?\[[\d.]*\](?:<\d+>)?) "
                            rb"~?\{\d+\}$", x[0])
            out[key.group(1).decode()] = x[1]
        else:
            text += x
    for k, v in re.findall(rb"(BINARY\.SIZE\[[\d.]*\]) (\d+)", text):
        out[k.decode()] = int(v)
    return out, text


def test_binary_capability(R):
    m = login(srv)
    typ, d = m.capability()
    assert b"BINARY" in d[0].split(), d
    m.logout()


def test_fetch_binary_decodes(R):
    m = binary_select()
    got, text = fetch_parts(m, "1", "BINARY.PEEK[1] BINARY.PEEK[2] "
                            "BINARY.SIZE[2] BINARY.PEEK[3] BINARY.SIZE[3]")
    assert got["BINARY[1]"] == b"plain text", got
    assert got["BINARY[2]"] == PAYLOAD, got["BINARY[2]"][:40]
    assert got["BINARY.SIZE[2]"] == len(PAYLOAD), got
    assert got["BINARY[3]"] == QP_DECODED, got["BINARY[3]"]
    assert got["BINARY.SIZE[3]"] == len(QP_DECODED), got
    # the base64 part holds NUL: literal8; the others do not
    assert b"BINARY[2] ~{%d}" % len(PAYLOAD) in text, text[:300]
    assert b"BINARY[1] {10}" in text, text[:300]
    # partial windows, with and without a NUL
    for start, n in ((0, 7), (250, 20), (700, 1000), (5000, 10)):
        got, text = fetch_parts(m, "1", "BINARY.PEEK[2]<%d.%d>" %
                                (start, n))
        want = PAYLOAD[start:start + n]
        assert got["BINARY[2]<%d>" % start] == want, (start, n)
        tilde = b"~{" in text
        assert tilde == (b"\x00" in want), (start, n, text[:100])
    # PEEK leaves \Seen alone, BINARY sets it
    typ, d = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in d[0], d
    typ, d = m.fetch("1", "(BINARY[1])")
    typ, d = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" in d[0], d
    m.logout()


def test_fetch_binary_whole_message(R):
    # RFC 3516: BINARY[] is the message, not decoded (its base64 part
    # stays base64); BINARY.SIZE[] its size; a literal8 only when the
    # window holds a NUL.
    m = binary_select("BinWhole")
    got, text = fetch_parts(m, "1", "BINARY.PEEK[] BINARY.SIZE[]")
    assert got["BINARY[]"] == BIN_MSG, got["BINARY[]"][:80]
    assert got["BINARY.SIZE[]"] == len(BIN_MSG), got
    assert b"BINARY[] {%d}" % len(BIN_MSG) in text, text[:200]
    # a message with a NUL in its body, as a program may deliver it
    nul = (b"From: carol@example.net\r\nSubject: nul\r\n\r\n"
           b"before\x00after\r\n")
    deliver(srv, "alice@example.org", nul, "BinWhole")
    m.noop()
    got, text = fetch_parts(m, "2", "BINARY.PEEK[] BINARY.SIZE[]")
    assert got["BINARY[]"] == nul, got
    assert got["BINARY.SIZE[]"] == len(nul), got
    assert b"BINARY[] ~{%d}" % len(nul) in text, text[:200]
    # windows with and without the NUL
    at = nul.index(b"\x00")
    got, text = fetch_parts(m, "2", "BINARY.PEEK[]<0.%d>" % at)
    assert got["BINARY[]<0>"] == nul[:at] and b"~{" not in text, text
    got, text = fetch_parts(m, "2", "BINARY.PEEK[]<%d.3>" % at)
    assert got["BINARY[]<%d>" % at] == nul[at:at + 3], got
    assert b"~{3}" in text, text
    m.logout()


def test_fetch_binary_unknown_cte(R):
    m = login(srv)
    m.select("Binary")
    typ, d = m.fetch("1", "(BINARY.PEEK[4])")
    assert typ == "NO" and b"[UNKNOWN-CTE]" in d[0], (typ, d)
    typ, d = m.fetch("1", "(BINARY.SIZE[9] BODY.PEEK[4])")
    assert typ == "OK" and b"BINARY.SIZE[9] 0" in d[0][0], d
    m.logout()


def test_fetch_binary_large_part(R):
    """A 20 MiB part in base64 (27 MiB encoded) fetched whole over many
    FETCH steps: byte for byte, and the worker's RSS grows by far less
    than the part (a sanitizer build's own memory included)."""
    payload = os.urandom(20 * MIB)
    big = mime_message([(b"Content-Type: application/octet-stream\r\n"
                         b"Content-Transfer-Encoding: base64\r\n",
                         base64.encodebytes(payload).replace(b"\n",
                                                             b"\r\n"))])
    m = login(srv)
    m.create("BigBinary")
    deliver(srv, "alice@example.org", big, "BigBinary")
    m.select("BigBinary")
    m.fetch("1", "(BODYSTRUCTURE)")     # the structure parsed, cached
    mem = WorkerMemory(srv.daemon)
    got, _ = fetch_parts(m, "1", "BINARY.SIZE[1] BINARY.PEEK[1]")
    growth = mem.growth()
    print("  peak RSS growth %.1f MiB for a 20 MiB part" % (growth / MIB))
    assert got["BINARY.SIZE[1]"] == len(payload)
    assert got["BINARY[1]"] == payload
    # Holding the part would cost it whole (20 MiB): about 5 MiB here;
    # 9 to 11 MiB in a sanitizer build, whose quarantine keeps the
    # freed step buffers (as BODY.PEEK[1] of it).
    bound = len(payload) * 3 // 4 if SANITIZED else len(payload) // 2
    assert growth < bound, "peak grew by %.1f MiB" % (growth / MIB)
    got, _ = fetch_parts(m, "1", "BINARY.PEEK[1]<%d.%d>" % (7 * MIB, 300))
    assert got["BINARY[1]<%d>" % (7 * MIB)] == payload[7 * MIB:7 * MIB + 300]
    # BINARY.SIZE of several large parts: the steps end after 8 MiB
    # measured, not only after their (small) output; every size comes.
    for i in range(3):
        deliver(srv, "alice@example.org", big, "BigBinary")
    m.select("BigBinary")
    typ, d = m.fetch("1:4", "(BINARY.SIZE[1])")
    sizes = re.findall(rb"BINARY\.SIZE\[1\] (\d+)", b" ".join(d))
    assert sizes == [str(len(payload)).encode()] * 4, sizes
    m.logout()


def literal8_append(r, tag, box, data, plain=False):
    r.send(b"%s APPEND %s %s{%d}\r\n" % (tag.encode(), box.encode(),
                                        b"" if plain else b"~",
                                        len(data)))
    line = r.line()
    if not line.startswith("+"):
        return [line]
    r.send(data + b"\r\n")
    return r.until(tag)


def test_append_literal8(R):
    """A message with a binary part holding NUL octets, as literal8 (in
    memory and spooled): stored so that BODY[] holds no NUL, BINARY[]
    gives back what was sent."""
    m = login(srv)
    m.create("Lit8")
    m.logout()
    for size in (300, 200 * 1024):
        raw_part = (PAYLOAD * (size // len(PAYLOAD) + 1))[:size]
        msg = mime_message([(b"Content-Type: text/plain\r\n", b"hi"),
                            (b"Content-Type: application/octet-stream\r\n"
                             b"Content-Transfer-Encoding: binary\r\n",
                             raw_part)])
        r = raw()
        out = literal8_append(r, "a", "Lit8", msg)
        assert out[-1].startswith("a OK [APPENDUID"), out
        _, uids = appenduid(out[-1])
        r.close()
        m = login(srv)
        m.select("Lit8", readonly=True)
        typ, d = m.uid("FETCH", str(uids[0]), "(BODY.PEEK[] BODY.PEEK[2] "
                       "BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1])")
        assert typ == "OK", d
        whole, part2, bin2, bin1 = d[0][1], d[1][1], d[2][1], d[3][1]
        assert b"\x00" not in whole, "a NUL in BODY[]"
        assert base64.b64decode(part2) == raw_part
        assert bin2 == raw_part, (len(bin2), size)
        assert bin1 == b"hi", bin1
        assert (b"BINARY.SIZE[2] %d" % size) in b"".join(
            x if isinstance(x, bytes) else x[0] for x in d), d
        m.logout()


def test_nul_in_plain_literal_refused(R):
    """NUL octets only in literal8: a plain literal with one (in memory
    or spooled) gets BAD, nothing is stored, the session goes on."""
    before = count("Lit8")
    r = raw()
    for size in (100, 100 * 1024):
        msg = message("nul", "x" * size + "\0 y\r\n")
        out = literal8_append(r, "a", "Lit8", msg, plain=True)
        assert out[-1].startswith("a BAD"), out
        assert "literal8" in out[-1], out
    out = r.cmd("n", "NOOP")
    assert out[-1].startswith("n OK"), out
    r.close()
    assert count("Lit8") == before


def test_literal8_elsewhere_refused(R):
    """literal8 is for APPEND only: LOGIN or SELECT with one is BAD."""
    r = raw()
    r.send(b"a SELECT ~{5}\r\n")
    line = r.line()
    if line.startswith("+"):
        r.send(b"INBOX\r\n")
        line = r.line()
    assert line.startswith("a BAD"), line
    r.close()


CAT_SRC = (b"From: src@example.net\r\nSubject: source\r\nMIME-Version: 1.0"
           b"\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
           b"--zz\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
           b"--zz\r\nContent-Type: text/html\r\n\r\n<p>second</p>\r\n"
           b"--zz--\r\n")
SRC_HEADER = CAT_SRC[:CAT_SRC.index(b"\r\n\r\n") + 4]


def cat_source():
    """CatSrc holds CAT_SRC; returns (uidvalidity, uid)."""
    m = login(srv)
    m.create("CatSrc")
    m.create("CatDst")
    typ, d = m.append("CatSrc", None, None, CAT_SRC)
    uidv, uids = appenduid(d[0].decode())
    m.logout()
    return uidv, uids[0]


def catenate(r, tag, box, parts, more=b""):
    """APPEND box CATENATE (parts): ("TEXT", bytes) or ("URL", str)."""
    r.send(b"%s APPEND %s CATENATE (" % (tag.encode(), box.encode()))
    for i, (kind, v) in enumerate(parts):
        sep = b" " if i else b""
        if kind == "URL":
            r.send(sep + b'URL "' + v.encode() + b'"')
        else:
            r.send(sep + b"TEXT {%d+}\r\n" % len(v) + v)
    r.send(b")" + more + b"\r\n")
    return r.until(tag)


def last_message(box):
    m = login(srv)
    typ, d = m.select(box, readonly=True)
    n = int(d[0])
    typ, d = m.fetch(str(n), "(BODY.PEEK[])")
    m.logout()
    return n, d[0][1]


def test_catenate_capability(R):
    m = login(srv)
    typ, d = m.capability()
    assert b"CATENATE" in d[0].split(), d
    m.logout()


def test_catenate_text_and_urls(R):
    uidv, uid = cat_source()
    host = os.uname().nodename
    cases = [
        ([("TEXT", b"Subject: made\r\n\r\n"),
          ("URL", "/CatSrc/;UID=%d/;SECTION=1" % uid),
          ("TEXT", b"\r\n")],
         b"Subject: made\r\n\r\nfirst part\r\n"),
        ([("URL", "/CatSrc;UIDVALIDITY=%d/;UID=%d/;SECTION=HEADER" %
           (uidv, uid)), ("TEXT", b"new body\r\n")],
         SRC_HEADER + b"new body\r\n"),
        ([("URL", "imap://alice%%40example.org@%s/CatSrc/;uid=%d"
           "/;section=2.MIME" % (host, uid)),
          ("TEXT", b"x\r\n")],
         b"Content-Type: text/html\r\n\r\nx\r\n"),
        ([("URL", "imap://localhost/CatSrc/;UID=%d/;PARTIAL=6.3" % uid),
          ("TEXT", b": y\r\n\r\nz\r\n")],
         b"src: y\r\n\r\nz\r\n"),
        ([("URL", "/CatSrc/;UID=%d" % uid)], CAT_SRC),
        ([("URL", "/CatSrc/;UID=%d/;PARTIAL=99999.5" % uid),
          ("TEXT", b"H: 1\r\n\r\nb\r\n")], b"H: 1\r\n\r\nb\r\n"),
    ]
    r = raw()
    for i, (parts, want) in enumerate(cases):
        out = catenate(r, "c%d" % i, "CatDst", parts)
        assert out[-1].startswith("c%d OK [APPENDUID" % i), (i, out)
        n, got = last_message("CatDst")
        assert got == want, (i, got, want)
    # ";UID=n" names a message of the selected mailbox
    out = r.cmd("s", "SELECT CatSrc")
    out = catenate(r, "d", "CatDst", [("URL", ";UID=%d/;SECTION=TEXT" %
                                       uid)])
    assert out[-1].startswith("d OK"), out
    n, got = last_message("CatDst")
    assert got == CAT_SRC[len(SRC_HEADER):], got
    r.close()


def test_catenate_badurl(R):
    """URLs naming nothing this user may read: NO [BADURL url], nothing
    stored, the session goes on."""
    uidv, uid = cat_source()
    m = login(srv, "bob@example.org")
    m.append("INBOX", None, None, message("bob's secret"))
    m.logout()
    bad = ["/CatSrc;UIDVALIDITY=%d/;UID=%d" % (uidv + 1, uid),
           "/CatSrc/;UID=%d" % (uid + 100),
           "/NoSuchBox/;UID=1",
           "/CatSrc/;UID=%d/;SECTION=7" % uid,
           "/CatSrc/;UID=%d/;SECTION=HEADER.FIELDS%%20(From" % uid,
           "/CatSrc/;UID=%d/;SECTION=HEADER.FIELDS%%20From)" % uid,
           "/CatSrc/;UID=%d/;SECTION=HEADER.FIELDS%%20()" % uid,
           "/CatSrc/;UID=%d/;SECTION=HEADER.FIELDS%%20(%s)" % (
               uid, "%20".join(["X"] * 129)),
           "/CatSrc/;UID=%d/;SECTION=1.HEADER.FIELDS%%20(From)" % uid,
           "/CatSrc/;UID=%d;URLAUTH=anonymous" % uid,
           "imap://bob%40example.org@localhost/INBOX/;UID=1",
           "imap://alice%%40example.org@mail.example.com/CatSrc/;UID=%d" %
           uid,
           "/..%2F..%2Fbob/;UID=1",
           "/%2E%2E/;UID=1",
           ";UID=1",               # no mailbox selected
           "http://example.com/x"]
    before, _ = last_message("CatDst")
    r = raw()
    for i, url in enumerate(bad):
        out = catenate(r, "b%d" % i, "CatDst", [("TEXT", b"H: 1\r\n\r\n"),
                                               ("URL", url)])
        assert re.match(r"b%d NO \[BADURL [^\]]+\]" % i, out[-1]), \
            (url, out)
        assert "secret" not in "".join(out)
    # a missing destination is TRYCREATE, whatever the URL says
    out = catenate(r, "t", "NoSuchBox", [("URL", bad[0])])
    assert out[-1].startswith("t NO [TRYCREATE]"), out
    out = r.cmd("n", "NOOP")
    assert out[-1].startswith("n OK"), out
    r.close()
    assert last_message("CatDst")[0] == before


def test_catenate_header_fields(R):
    """HEADER.FIELDS (.NOT) sections and MIME, HEADER, TEXT of parts
    (RFC 5092 isection is RFC 3501's section): the octets FETCH
    BODY.PEEK[section]<partial> gives for the same message."""
    inner = (b"From: inner@example.net\r\nSubject: inside\r\n"
             b"X-Folded: one\r\n two\r\n\r\ninner body\r\n")
    src = (b"From: src@example.net\r\nSubject: nested\r\n"
           b"X-Folded: a\r\n\tb\r\nTo: dst@example.org\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"qq\"\r\n\r\n"
           b"--qq\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
           b"--qq\r\nContent-Type: message/rfc822\r\n\r\n" + inner +
           b"--qq--\r\n")
    m = login(srv)
    m.create("CatFields")
    m.create("CatDst")
    typ, d = m.append("CatFields", None, None, src)
    _, uids = appenduid(d[0].decode())
    uid = uids[0]
    m.select("CatFields", readonly=True)
    cases = [  # (URL section, URL partial, FETCH section, FETCH partial)
        ("HEADER.FIELDS%20(SUBJECT%20FROM)", None,
         "HEADER.FIELDS (SUBJECT FROM)", ""),
        ("header.fields%20(x-folded)", None, "HEADER.FIELDS (X-Folded)", ""),
        ("HEADER.FIELDS.NOT%20(Subject%20To)", None,
         "HEADER.FIELDS.NOT (Subject To)", ""),
        ("HEADER.FIELDS%20(%22Subject%22%20nosuch)", None,
         "HEADER.FIELDS (Subject nosuch)", ""),
        ("HEADER.FIELDS%20(nosuch)", None, "HEADER.FIELDS (nosuch)", ""),
        ("HEADER.FIELDS (From)", None, "HEADER.FIELDS (From)", ""),
        ("HEADER.FIELDS%20(Subject%20X-Folded)", "5.12",
         "HEADER.FIELDS (Subject X-Folded)", "<5.12>"),
        ("HEADER.FIELDS.NOT%20(From)", "9999", "HEADER.FIELDS.NOT (From)",
         "<9999.10>"),
        ("2.HEADER.FIELDS%20(Subject)", None, "2.HEADER.FIELDS (Subject)",
         ""),
        ("2.HEADER.FIELDS.NOT%20(subject)", None,
         "2.HEADER.FIELDS.NOT (subject)", ""),
        ("2.HEADER", None, "2.HEADER", ""),
        ("2.TEXT", None, "2.TEXT", ""),
        ("2.MIME", None, "2.MIME", ""),
        ("1.MIME", None, "1.MIME", ""),
        ("2.1", None, "2.1", ""),
    ]
    r = raw()
    for i, (sect, part, fsect, fpart) in enumerate(cases):
        url = "/CatFields/;UID=%d/;SECTION=%s" % (uid, sect)
        if part:
            url += "/;PARTIAL=" + part
        typ, d = m.uid("FETCH", str(uid), "(BODY.PEEK[%s]%s)" %
                       (fsect, fpart))
        want = d[0][1] if isinstance(d[0], tuple) else b""
        assert want or part, (fsect, d)
        out = catenate(r, "h%d" % i, "CatDst", [("TEXT", b"X-Cat: 1\r\n"),
                                               ("URL", url),
                                               ("TEXT", b"\r\nbody\r\n")])
        assert out[-1].startswith("h%d OK [APPENDUID" % i), (url, out)
        n, got = last_message("CatDst")
        assert got == b"X-Cat: 1\r\n" + want + b"\r\nbody\r\n", \
            (url, got, want)
    r.close()
    m.logout()


def test_catenate_multiappend_all_or_none(R):
    uidv, uid = cat_source()
    before, _ = last_message("CatDst")
    r = raw()
    r.send(b"a APPEND CatDst CATENATE (URL \"/CatSrc/;UID=%d\") "
           b"CATENATE (URL \"/CatSrc/;UID=%d\")\r\n" % (uid, uid + 50))
    out = r.until("a")
    assert re.match(r"a NO \[BADURL", out[-1]), out
    m1 = message("plain one")
    r.send(b"b APPEND CatDst {%d+}\r\n" % len(m1) + m1 +
           b" CATENATE (TEXT {8+}\r\nH: 1\r\n\r\n URL \"/CatSrc/;UID=%d"
           b"/;SECTION=1\")\r\n" % uid)
    out = r.until("b")
    assert out[-1].startswith("b OK [APPENDUID"), out
    _, uids = appenduid(out[-1])
    assert len(uids) == 2, uids
    r.close()
    n, got = last_message("CatDst")
    assert n == before + 2 and got == b"H: 1\r\n\r\nfirst part", got


def test_catenate_limits(R):
    """TOOBIG past max_literal_size (8 MiB here), at most 1000 parts,
    and the worker's RSS while 7 MiB are put together from URLs."""
    big = big_message("cat big", MIB + 1000)
    m = login(srv)
    m.create("CatBig")
    typ, d = m.append("CatBig", None, None, big)
    _, uids = appenduid(d[0].decode())
    m.logout()
    url = ("URL", "/CatBig/;UID=%d" % uids[0])
    r = raw()
    out = catenate(r, "a", "CatDst", [url] * 9)
    assert out[-1].startswith("a NO [TOOBIG]"), out
    out = catenate(r, "b", "CatDst", [("TEXT", b"x")] * 1001)
    assert out[-1].startswith("b NO [LIMIT]"), out
    mem = WorkerMemory(srv.daemon)
    out = catenate(r, "c", "CatDst", [url] * 7)
    assert out[-1].startswith("c OK"), out
    growth = mem.growth()
    print("  peak RSS growth %.1f MiB for 7 MiB put together" %
          (growth / MIB))
    mem.assert_growth_below(4 * MIB)
    r.close()
    n, got = last_message("CatDst")
    assert got == big * 7


R.run(test_capability)
R.run(test_multiappend_small_and_spilled)
R.run(test_multiappend_selected_gets_exists)
R.run(test_all_or_nothing_store_failure)
R.run(test_all_or_nothing_bad_message)
R.run(test_too_big_together)
R.run(test_message_count_limit)
R.run(test_memory_while_sending_large_messages)
R.run(test_binary_capability)
R.run(test_fetch_binary_decodes)
R.run(test_fetch_binary_whole_message)
R.run(test_fetch_binary_unknown_cte)
R.run(test_fetch_binary_large_part)
R.run(test_append_literal8)
R.run(test_nul_in_plain_literal_refused)
R.run(test_literal8_elsewhere_refused)
R.run(test_catenate_capability)
R.run(test_catenate_text_and_urls)
R.run(test_catenate_badurl)
R.run(test_catenate_header_fields)
R.run(test_catenate_multiappend_all_or_none)
R.run(test_catenate_limits)
finish(R, srv)
