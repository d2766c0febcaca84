#!/usr/bin/env python3
"""Issue 10, MIME class: messages built to make the MIME parser spend
memory or time out of proportion to their size, delivered into a mailbox
as an MTA would, then FETCH ENVELOPE, BODYSTRUCTURE, BODY[HEADER.FIELDS
(TO)] and SEARCH FROM/TO on them.  For each: the worker's peak RSS grows
less than 64 MiB, a logged-in neighbour's NOOP is answered within a
second throughout, and the answers are well-formed IMAP.

Before the fix a To: of 64 KB of "" tokens made one FETCH ENVELOPE cost
about 1 GiB (each quoted string copied the rest of the field).
"""
import imaplib
import os
import re

import hostile
from hostile import Neighbour, WorkerMemory
from imaptest import deliver, finish, login, start_server
from testlib import Runner

GROWTH_LIMIT = 64 << 20
imaplib._MAXLINE = 64 << 20   # a BODYSTRUCTURE of 10,000 parts is long
NEIGHBOUR_LIMIT = 1.0

# Under AddressSanitizer (--enable-sanitizers) freed memory waits in a
# quarantine of 256 MiB, which a peak would count: keep it small, so
# that what is measured is what the worker holds.
os.environ["ASAN_OPTIONS"] = ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=4",
                  "thread_local_quarantine_size_kb=64"]))

R = Runner("hostile_mime")
srv = start_server(R)


MESSAGES = hostile.MIME_BOMBS
for build in MESSAGES:
    deliver(srv, "alice@example.org", build(), folder="Hostile")

attacker = login(srv)
attacker.create("Hostile")   # the folder exists already: NO is fine
typ, _ = attacker.select("Hostile")
assert typ == "OK"
neighbour = login(srv, "bob@example.org")
neighbour.select("INBOX")

# The store numbers the messages in its own order: find each by subject.
SEQ = {}
typ, data = attacker.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
for x in data:
    if isinstance(x, tuple):
        SEQ[x[1].decode().split(":", 1)[1].strip()] = \
            int(x[0].split()[0])
assert len(SEQ) == len(MESSAGES), SEQ


def probe():
    typ, data = neighbour.noop()
    assert typ == "OK", data


# ---- well-formed IMAP ------------------------------------------------------

ATOM_END = b' ()"{\r\n'


def parse_value(s, i):
    """Index after the value at s[i] (an atom, quoted string, literal or
    parenthesized list); AssertionError when it is not valid IMAP."""
    c = s[i:i + 1]
    if c == b"(":
        i += 1
        while s[i:i + 1] != b")":
            assert i < len(s), "unterminated list"
            i = parse_value(s, i)
            if s[i:i + 1] == b" ":
                i += 1
        return i + 1
    if c == b'"':
        i += 1
        while s[i:i + 1] != b'"':
            assert i < len(s), "unterminated quoted string"
            ch = s[i]
            assert ch not in (0x0d, 0x0a) and ch < 0x80, \
                "CR, LF or 8-bit in a quoted string at %d" % i
            if ch == 0x5c:
                assert s[i + 1:i + 2] in (b'"', b"\\"), "bad escape"
                i += 1
            i += 1
        return i + 1
    if c == b"{":
        m = re.compile(rb"\{(\d+)\}\r\n").match(s, i)
        assert m, "bad literal at %d: %r" % (i, s[i:i + 20])
        return m.end() + int(m.group(1))
    start = i
    depth = 0   # BODY[HEADER.FIELDS (TO)] holds spaces inside brackets
    while i < len(s) and (depth > 0 or s[i:i + 1] not in ATOM_END):
        if s[i:i + 1] == b"[":
            depth += 1
        elif s[i:i + 1] == b"]":
            depth -= 1
        i += 1
    assert i > start, "empty atom at %d: %r" % (i, s[i:i + 20])
    return i


def assert_fetch_valid(data):
    """imaplib's FETCH data back into wire form, parsed to the end."""
    wire = b""
    for x in data:
        if isinstance(x, tuple):
            wire += x[0] + b"\r\n" + x[1]
        else:
            wire += x
    end = 0
    while end < len(wire):   # one "n (...)" per message
        m = re.compile(rb"\d+ \(").match(wire, end)
        assert m, "not a FETCH response: %r" % wire[end:end + 100]
        end = parse_value(wire, m.end() - 1)
    return wire


def attack(commands):
    """Runs `commands` (callables) with the memory and the neighbour
    watched."""
    base = WorkerMemory(srv.daemon)
    growth = 0
    with Neighbour(probe) as n:
        for c in commands:
            # each command's peak over the baseline (a new WorkerMemory
            # restarts the peak, the baseline stays the first one's)
            one = WorkerMemory(srv.daemon)
            c()
            g = base.growth()
            print("  %-48s peak +%.1f MiB" % (c.what, one.growth() / 1048576),
                  flush=True)
            growth = max(growth, g)
    assert growth < GROWTH_LIMIT, (
        "a worker's peak grew by %.1f MiB (limit %.1f MiB)"
        % (growth / 1048576, GROWTH_LIMIT / 1048576))
    worst = n.assert_worst_below(NEIGHBOUR_LIMIT)
    print("  peak growth %.1f MiB, neighbour worst %.3f s"
          % (growth / 1048576, worst), flush=True)


def fetch(seq, items, expect=None):
    def run():
        typ, data = attacker.fetch(str(seq), items)
        assert typ == "OK", data
        wire = assert_fetch_valid(data)
        if expect is not None:
            assert re.search(expect, wire), wire[:300]
    run.what = "FETCH %s %s" % (seq, items)
    return run


def search(*keys):
    def run():
        typ, data = attacker.search(None, *keys)
        assert typ == "OK", data
        assert re.fullmatch(rb"[0-9 ]*", data[0]), data
    run.what = "SEARCH " + " ".join(keys)
    return run


def every_item(seq, expect_env=None):
    return [fetch(seq, "(ENVELOPE)", expect_env),
            fetch(seq, "(BODYSTRUCTURE)"),
            fetch(seq, "(BODY)"),
            fetch(seq, "(BODY.PEEK[HEADER.FIELDS (TO)])"),
            search("FROM", "attacker"), search("TO", "nobody"),
            search("HEADER", "Content-Type", "zzz")]


def test_to_of_quoted_tokens(R):
    # The To: is one address whose local part is every "" joined; Cc:
    # gives the first addresses of its list.
    attack(every_item(SEQ["quoted tokens"], rb"ENVELOPE \("))


def test_content_type_parameters(R):
    attack(every_item(SEQ["parameters"]) + [fetch(SEQ["parameters"], "(BODYSTRUCTURE)",
                                  rb'"p0" \{1500\}\r\nv{1500} ')])


def test_attached_messages(R):
    attack(every_item(SEQ["attached"]) + [fetch(SEQ["attached"], "(BODY.PEEK[1.HEADER.FIELDS (TO)])")])


def test_deep_nesting(R):
    attack(every_item(SEQ["deep"]))


def test_many_parts(R):
    attack(every_item(SEQ["many parts"]) + [fetch(SEQ["many parts"], "(BODY.PEEK[9999.MIME])")])


def test_all_at_once_again_and_again(R):
    # From the cache after the first time, when the tree was cached.
    # Eight times: each lands on whichever job thread is free, and an
    # allocator arena per thread kept each one's peak (+115 MiB).
    attack([fetch("1:5", "(ENVELOPE BODYSTRUCTURE)")] * 8 +
           [search("TEXT", "nothing-like-this")])


for t in (test_to_of_quoted_tokens, test_content_type_parameters,
          test_attached_messages, test_deep_nesting, test_many_parts,
          test_all_at_once_again_and_again):
    R.run(t)
for c in (attacker, neighbour):
    try:
        c.logout()
    except imaplib.IMAP4.abort:
        pass
finish(R, srv)
