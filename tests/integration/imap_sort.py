#!/usr/bin/env python3
"""SORT (RFC 5256, with SORT=DISPLAY of RFC 5957 and ESORT of RFC 5267),
THREAD=ORDEREDSUBJECT and THREAD=REFERENCES, and the WITHIN search keys
(RFC 5032) against a real posternd: every sort key and REVERSE, UID
SORT and UID THREAD, search keys after the charset, a bad charset, the
limits, and a SORT over thousands of messages that leaves a neighbour's
NOOP prompt.
"""
import imaplib
import os
import re
import time

from hostile import Neighbour, WorkerMemory
from imaptest import Raw, deliver, finish, login, start_server
from testlib import Runner

MIB = 1 << 20

R = Runner("imap_sort")
srv = start_server(R)


def msg(hdrs, body_len):
    return ("".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n" +
            "x" * body_len + "\r\n").encode()


# seq: From / To / Cc / Subject / Date / size / internal date
MSGS = [
    (msg([("From", '"Zed" <b@x.org>'), ("To", "c@x.org"),
          ("Cc", "a@x.org"), ("Subject", "Re: beta"),
          ("Date", "Wed, 3 Jan 2024 10:00:00 +0000"),
          ("Message-ID", "<m1@x.org>")], 2000), "05-Jan-2024 10:00:00 +0000"),
    (msg([("From", '"Alice" <z@x.org>'), ("To", '"Bob" <a@x.org>'),
          ("Subject", "alpha"), ("Message-ID", "<m2@x.org>")], 500),
     "01-Jan-2024 12:00:00 +0000"),
    (msg([("From", "m@x.org"), ("To", '"Yan" <b@x.org>'),
          ("Cc", "c@x.org"), ("Subject", "[list] Fwd: alpha"),
          ("Date", "Sat, 6 Jan 2024 10:00:00 +0000"),
          ("Message-ID", "<m3@x.org>"), ("References", "<m2@x.org>")],
         5000), "03-Jan-2024 10:00:00 +0000"),
    (msg([("From", '"Mallory" <a@x.org>'), ("To", "d@x.org"),
          ("Subject", "gamma (fwd)"), ("Date", "not a date"),
          ("Message-ID", "<m4@x.org>"), ("In-Reply-To", "<m1@x.org>")],
         100), "10-Jan-2024 10:00:00 +0000"),
]

m = login(srv)
m.create("Sort")
# A first message expunged: UIDs are 2..5, not the sequence numbers.
m.append("Sort", None, None, b"Subject: gone\r\n\r\nx\r\n")
for data, idate in MSGS:
    m.append("Sort", None, '"%s"' % idate, data)
m.select("Sort")
m.store("1", "+FLAGS", "\\Deleted")
m.expunge()
m.logout()

r = Raw(srv.port("imap"))
r.login()
assert r.cmd("s", "SELECT Sort")[-1].startswith("s OK")


def untagged(cmd, word):
    out = r.cmd("t", cmd)
    assert out[-1].startswith("t OK"), (cmd, out)
    lines = [x for x in out if x.startswith("* %s" % word)]
    assert len(lines) == 1, (cmd, out)
    return lines[0][len("* %s" % word):].strip()


def sort(crit, keys="ALL", uid=False):
    return untagged("%sSORT (%s) UTF-8 %s" % ("UID " if uid else "", crit,
                                              keys), "SORT")


def test_capability(R):
    caps = r.cmd("c", "CAPABILITY")[0].split()
    for c in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT",
              "THREAD=REFERENCES", "WITHIN"):
        assert c in caps, caps


def test_sort_keys(R):
    want = {
        "ARRIVAL": "2 3 1 4",
        "DATE": "2 1 3 4",        # 2 and 4: no valid Date, INTERNALDATE
        "FROM": "4 1 3 2",        # a, b, m, z: the mailbox only
        "DISPLAYFROM": "2 3 4 1",  # Alice, m@x.org, Mallory, Zed
        "TO": "2 3 1 4",
        "DISPLAYTO": "2 1 4 3",   # Bob, c@x.org, d@x.org, Yan
        "CC": "2 4 1 3",          # none, none, a, c
        "SUBJECT": "2 3 1 4",     # alpha alpha beta gamma (base)
        "SIZE": "4 2 1 3",
    }
    for key, order in want.items():
        got = sort(key)
        assert got == order, (key, got, order)


def test_reverse_and_ties(R):
    # ties stay in sequence order, REVERSE or not
    assert sort("REVERSE SUBJECT") == "4 1 2 3", sort("REVERSE SUBJECT")
    assert sort("SUBJECT REVERSE DATE") == "3 2 1 4"
    assert sort("REVERSE ARRIVAL") == "4 1 3 2"
    assert sort("SUBJECT SIZE") == "2 3 1 4"


def test_uid_sort_and_search_keys(R):
    assert sort("ARRIVAL", uid=True) == "3 4 2 5", sort("ARRIVAL", uid=True)
    assert sort("DATE", 'NOT FROM "mallory"') == "2 1 3"
    assert sort("DATE", "LARGER 1000 SINCE 2-Jan-2024") == "1 3"
    assert sort("SUBJECT", "UID 2:3") == "2 1"
    assert sort("DATE", "SEEN") == ""


def test_esort(R):
    out = r.cmd("e", "SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL")
    assert out[-1].startswith("e OK"), out
    assert out[0] == '* ESEARCH (TAG "e") MIN 2 MAX 4 COUNT 4 ALL 2,1,3:4', \
        out
    out = r.cmd("e", "UID SORT RETURN () (REVERSE SIZE) US-ASCII ALL")
    assert out[0] == '* ESEARCH (TAG "e") UID ALL 4,2:3,5', out
    out = r.cmd("e", "SORT RETURN (COUNT) (DATE) UTF-8 SEEN")
    assert out[0] == '* ESEARCH (TAG "e") COUNT 0', out


def test_thread(R):
    got = untagged("THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD")
    assert got == "(2 3)(1)(4)", got
    got = untagged("THREAD REFERENCES UTF-8 ALL", "THREAD")
    assert got == "(2 3)(1 4)", got
    got = untagged("UID THREAD REFERENCES US-ASCII ALL", "THREAD")
    assert got == "(3 4)(2 5)", got
    # 4's parent left out by the search: 4 alone
    got = untagged("THREAD REFERENCES UTF-8 NOT UID 2", "THREAD")
    assert got == "(2 3)(4)", got
    out = r.cmd("t", "THREAD REFERENCES UTF-8 SEEN")
    assert out[0] == "* THREAD" and out[-1].startswith("t OK"), out


def test_errors(R):
    out = r.cmd("b", "SORT (DATE) KOI8-R ALL")
    assert out[-1].startswith("b NO [BADCHARSET"), out
    out = r.cmd("b", "THREAD REFERENCES ISO-8859-5 ALL")
    assert out[-1].startswith("b NO [BADCHARSET"), out
    for bad in ("SORT (NAME) UTF-8 ALL", "SORT DATE UTF-8 ALL",
                "SORT (DATE) ALL", "SORT (REVERSE) UTF-8 ALL",
                "SORT () UTF-8 ALL", "THREAD SPAGHETTI UTF-8 ALL",
                "SORT RETURN (PARTIAL 1:*) (DATE) UTF-8 ALL"):
        out = r.cmd("b", bad)
        assert out[-1].startswith("b BAD"), (bad, out)
    out = r.cmd("n", "SORT (%s) UTF-8 ALL" % " ".join(["DATE"] * 1000))
    assert out[-1].startswith("n NO [LIMIT]"), out[-1]
    out = r.cmd("n", "SORT (DATE) UTF-8 %s" % " ".join(["ALL"] * 1000))
    assert out[-1].startswith("n NO [LIMIT]"), out[-1]
    # the session goes on
    assert sort("ARRIVAL") == "2 3 1 4"


def test_searchres(R):
    """SEARCHRES (RFC 5182): RETURN (SAVE), "$" in FETCH, UID FETCH,
    SEARCH, UID SEARCH, STORE, COPY, pipelined; MIN/MAX; emptied by a
    failed SEARCH and by SELECT."""
    caps = r.cmd("c", "CAPABILITY")[0].split()
    assert "SEARCHRES" in caps, caps
    # before any SAVE "$" is empty
    out = r.cmd("f", "FETCH $ (UID)")
    assert out == ["f OK Fetch completed"] or (
        len(out) == 1 and out[0].startswith("f OK")), out
    out = r.cmd("s", 'SEARCH RETURN (SAVE) SUBJECT "alpha"')
    assert len(out) == 1 and out[0].startswith("s OK"), out
    out = r.cmd("f", "FETCH $ (UID)")
    assert out[:2] == ["* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)"], out
    out = r.cmd("f", "UID FETCH $ (FLAGS)")
    assert [x.split()[1] for x in out[:-1]] == ["2", "3"], out
    assert untagged("SEARCH $", "SEARCH") == "2 3"
    assert untagged("UID SEARCH UID $", "SEARCH") == "3 4"
    assert untagged("SEARCH NOT $", "SEARCH") == "1 4"
    # pipelined: the FETCH uses what the SEARCH before it saved
    r.send(b'p1 SEARCH RETURN (SAVE) FROM "zed"\r\np2 FETCH $ (UID)\r\n')
    out = r.until("p2")
    assert "* 1 FETCH (UID 2)" in out and out[-1].startswith("p2 OK"), out
    # "$" in the same SEARCH is the value before it
    out = r.cmd("s", "SEARCH RETURN (SAVE ALL) OR $ SUBJECT gamma")
    assert out[0] == '* ESEARCH (TAG "s") ALL 1,4', out
    out = r.cmd("s", "SEARCH RETURN (SAVE MIN) ALL")
    assert out[0] == '* ESEARCH (TAG "s") MIN 1', out
    assert untagged("SEARCH $", "SEARCH") == "1"
    out = r.cmd("s", "SEARCH RETURN (SAVE MIN MAX) ALL")
    assert untagged("SEARCH $", "SEARCH") == "1 4"
    out = r.cmd("k", "STORE $ +FLAGS.SILENT (\\Flagged)")
    assert out[-1].startswith("k OK"), out
    assert untagged("SEARCH FLAGGED", "SEARCH") == "1 4"
    out = r.cmd("k", "STORE $ -FLAGS.SILENT (\\Flagged)")
    # a failed SEARCH RETURN (SAVE) empties it
    out = r.cmd("b", "SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
    assert out[-1].startswith("b NO [BADCHARSET"), out
    assert untagged("SEARCH $", "SEARCH") == ""
    # SORT does not save
    out = r.cmd("b", "SORT RETURN (SAVE) (DATE) UTF-8 ALL")
    assert out[-1].startswith("b BAD"), out
    # SELECT forgets it
    r.cmd("s", "SEARCH RETURN (SAVE) ALL")
    assert r.cmd("s", "SELECT Sort")[-1].startswith("s OK")
    assert untagged("SEARCH $", "SEARCH") == ""
    # "$" must stand alone
    out = r.cmd("b", "FETCH $,1 (UID)")
    assert out[-1].startswith("b BAD"), out


def test_searchres_expunge(R):
    """A saved message expunged is gone from "$" (RFC 5182 2.1)."""
    m = login(srv)
    m.select("Sort")
    m.append("Sort", None, None, msg([("Subject", "doomed")], 10))
    m.append("Sort", None, None, msg([("Subject", "doomed")], 10))
    m.logout()
    assert r.cmd("n", "NOOP")[-1].startswith("n OK")
    out = r.cmd("s", "SEARCH RETURN (SAVE ALL) SUBJECT doomed")
    doomed = out[0].split("ALL ")[1]
    first = doomed.split(":")[0].split(",")[0]
    r.cmd("d", "STORE %s +FLAGS.SILENT (\\Deleted)" % first)
    out = r.cmd("e", "EXPUNGE")
    assert out[-1].startswith("e OK"), out
    out = r.cmd("f", "FETCH $ (UID)")
    assert len(out) == 2 and out[-1].startswith("f OK"), out
    r.cmd("d", "STORE $ +FLAGS.SILENT (\\Deleted)")
    assert r.cmd("e", "EXPUNGE")[-1].startswith("e OK")
    out = r.cmd("f", "FETCH $ (UID)")
    assert len(out) == 1 and out[0].startswith("f OK"), out


def test_within(R):
    m = login(srv)
    m.append("Sort", None, None, msg([("Subject", "fresh")], 10))
    m.logout()
    assert r.cmd("n", "NOOP")[-1].startswith("n OK")
    got = untagged("SEARCH YOUNGER 3600", "SEARCH")
    assert got == "5", got
    got = untagged("SEARCH OLDER 3600", "SEARCH")
    assert got == "1 2 3 4", got
    got = untagged("SEARCH OR YOUNGER 60 LARGER 4000", "SEARCH")
    assert got == "3 5", got
    assert sort("DATE", "OLDER 86400") == "2 1 3 4"
    out = r.cmd("b", "SEARCH YOUNGER 0")
    assert out[-1].startswith("b BAD"), out
    out = r.cmd("b", "SEARCH OLDER x")
    assert out[-1].startswith("b BAD"), out


def test_repeated_sorts_by_rank(R):
    """A repeated SORT sorts the ranks its criteria's last result left
    (imap_sortcache.c): for five criteria (more than the four kept),
    over subsets, after messages arrive and after expunges, every answer
    is the one a model of RFC 5256 gives."""
    import calendar
    import functools

    m = login(srv)
    m.create("Ranks")

    def one(i):
        day, hour = 1 + (i * 11) % 28, (i * 5) % 24
        data = msg([("From", "u%d@x.org" % ((i * 13) % 17)),
                    ("Subject", "%sw%03d" % ("Re: " * (i % 2),
                                             (i * 37) % 50)),
                    ("Date", "Mon, %d Jan 2024 %02d:00:00 +0000"
                     % (day, hour))], (i * 7) % 23)
        keys = {"SUBJECT": "W%03d" % ((i * 37) % 50),
                "FROM": "U%d" % ((i * 13) % 17),
                "DATE": calendar.timegm((2024, 1, day, hour, 0, 0)),
                "SIZE": len(data), "UID": i + 1}
        m.append("Ranks", None, None, data)
        return keys

    box = [one(i) for i in range(120)]
    c = Raw(srv.port("imap"))
    c.login()
    assert c.cmd("s", "SELECT Ranks")[-1].startswith("s OK")

    def model(crit, pick):
        words = crit.split()
        spec, rev = [], False
        for w in words:
            if w == "REVERSE":
                rev = True
                continue
            spec.append((w, rev))
            rev = False

        def cmp(a, b):
            for key, rev in spec:
                x, y = box[a - 1][key], box[b - 1][key]
                if x != y:
                    return (-1 if x < y else 1) * (-1 if rev else 1)
            return -1 if a < b else a > b
        seqs = [i + 1 for i, k in enumerate(box) if pick(k)]
        return " ".join(map(str, sorted(seqs, key=functools.cmp_to_key(cmp))))

    subsets = (("ALL", lambda k: True),
               ("UID 30:90", lambda k: 30 <= k["UID"] <= 90),
               ('NOT FROM "u3@"', lambda k: k["FROM"] != "U3"))
    crits = ("SUBJECT", "REVERSE SUBJECT", "FROM SUBJECT", "DATE",
             "REVERSE FROM REVERSE DATE")

    def check(when):
        for _ in range(2):
            for crit in crits:
                for text, pick in subsets:
                    out = c.cmd("r", "SORT (%s) UTF-8 %s" % (crit, text))
                    assert out[-1].startswith("r OK"), out[-1]
                    got = [x for x in out if x.startswith("* SORT")]
                    got = got[0][len("* SORT"):].strip()
                    assert got == model(crit, pick), (when, crit, text)

    check("first")
    box.extend(one(i) for i in range(120, 140))
    assert c.cmd("n", "NOOP")[-1].startswith("n OK")
    check("after new messages")
    gone = ",".join(str(i + 1) for i in range(0, len(box), 7))
    out = c.cmd("d", "STORE %s +FLAGS.SILENT (\\Deleted)" % gone)
    assert out[-1].startswith("d OK"), out[-1]
    assert c.cmd("x", "EXPUNGE")[-1].startswith("x OK")
    box = [k for i, k in enumerate(box) if i % 7 != 0]
    check("after expunges")
    c.cmd("z", "LOGOUT")
    m.logout()


def test_large_sort_leaves_neighbours_alone(R):
    """3,000 messages in another user's INBOX: SORT and THREAD run on
    the job pool in steps; bob's NOOP stays prompt."""
    n = 3000
    base = srv.maildir("alice@example.org")
    for i in range(n):
        deliver(srv, "alice@example.org", msg([
            ("From", "user%d@x.org" % (i % 97)),
            ("Subject", "%ssubject %d" % ("Re: " * (i % 3), i % 500)),
            ("Date", "Mon, %d Jan 2024 10:%02d:00 +0000"
             % (1 + i % 28, i % 60)),
            ("Message-ID", "<big%d@x.org>" % i),
            ("References", "<big%d@x.org>" % (i // 2))], 200))
    assert len(os.listdir(os.path.join(base, "new"))) >= n
    big = Raw(srv.port("imap"), timeout=60)
    big.login()
    assert big.cmd("s", "SELECT INBOX")[-1].startswith("s OK")
    bob = login(srv, "bob@example.org")
    bob.select("INBOX")
    mem = WorkerMemory(srv.daemon)
    with Neighbour(bob.noop) as nb:
        for cmd in ("SORT (SUBJECT) UTF-8 ALL",
                    "SORT (REVERSE DATE FROM) UTF-8 ALL",
                    "THREAD REFERENCES UTF-8 ALL"):
            t0 = time.time()
            out = big.cmd("x", cmd, limit=10)
            assert out[-1].startswith("x OK"), out[-1]
            print("  %s: %.2f s" % (cmd, time.time() - t0), flush=True)
            if cmd.startswith("SORT"):
                nums = out[0].split()[2:]
                assert len(nums) == n, len(nums)
                assert sorted(map(int, nums)) == list(range(1, n + 1))
    growth = mem.growth()
    print("  peak growth %.1f MiB, neighbour worst %.3f s over %d probes"
          % (growth / MIB, nb.worst, nb.count), flush=True)
    bob.logout()
    mem.assert_growth_below(64 * MIB)
    nb.assert_worst_below(1.0)


def test_sort_memory_limit(R):
    """imap.sort_memory: a SORT whose keys need more is refused with
    NO [LIMIT]; SEARCH on the same mailbox and the session go on."""
    small = start_server(R, 'sort_memory = "64K";', name="small")
    try:
        for i in range(700):
            deliver(small, "alice@example.org", msg([
                ("Subject", "s%d" % i), ("Message-ID", "<s%d@x>" % i)], 10))
        c = Raw(small.port("imap"), timeout=30)
        c.login()
        assert c.cmd("s", "SELECT INBOX")[-1].startswith("s OK")
        for cmd in ("SORT (SUBJECT) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL",
                    "SORT (ARRIVAL) UTF-8 ALL"):
            out = c.cmd("l", cmd)
            assert out[-1].startswith("l NO [LIMIT]"), out[-1]
            assert "sort_memory" in out[-1], out[-1]
        out = c.cmd("q", "SEARCH SUBJECT s699")
        assert re.match(r"\* SEARCH \d+$", out[0]), out
        # 40 messages of 60 References each: their keys fit, the threading's
        # containers for 2,400 IDs do not
        m = login(small)
        m.create("Refs")
        for i in range(40):
            refs = " ".join("<r%d.%d>" % (i, k) for k in range(60))
            m.append("Refs", None, None, msg([
                ("Subject", "r%d" % i), ("Message-ID", "<m%d@x>" % i),
                ("References", refs)], 10))
        m.logout()
        assert c.cmd("s", "SELECT Refs")[-1].startswith("s OK")
        out = c.cmd("l", "SORT (SUBJECT) UTF-8 ALL")
        assert out[-1].startswith("l OK"), out[-1]
        out = c.cmd("l", "THREAD ORDEREDSUBJECT UTF-8 ALL")
        assert out[-1].startswith("l OK"), out[-1]
        out = c.cmd("l", "THREAD REFERENCES UTF-8 ALL")
        assert out[-1].startswith("l NO [LIMIT]"), out[-1]
        c.cmd("z", "LOGOUT")
    finally:
        rc = small.stop()
    assert rc == 0, rc


for t in (test_capability, test_sort_keys, test_reverse_and_ties,
          test_uid_sort_and_search_keys, test_esort, test_thread,
          test_errors, test_searchres, test_searchres_expunge,
          test_within, test_repeated_sorts_by_rank,
          test_large_sort_leaves_neighbours_alone,
          test_sort_memory_limit):
    R.run(t)
r.cmd("z", "LOGOUT")
finish(R, srv)
