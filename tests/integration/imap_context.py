#!/usr/bin/env python3
"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267) against a real posternd:
RETURN (PARTIAL) of SEARCH and SORT, RETURN (UPDATE) with the ADDTO and
REMOVEFROM responses for changes of this session, of another session
and of a delivery, REMOVEFROM before EXPUNGE, CANCELUPDATE, the limit
on searches kept updated (NOUPDATE), and their end with the mailbox.
"""
import re

from imaptest import Raw, deliver, finish, login, start_server
from testlib import Runner

R = Runner("imap_context")
# sort_memory at its least: a SORT kept updated whose keys pass it is
# dropped (test_sort_update_bound)
srv = start_server(R, imap_conf='sort_memory = "64K";')

MSG = "Subject: s%d\r\n\r\nbody %d\r\n"

m = login(srv)
m.create("Ctx")
for i in range(1, 7):
    m.append("Ctx", None, None, (MSG % (i, i)).encode())
m.logout()


def raw_select(box="Ctx"):
    r = Raw(srv.port("imap"))
    r.login()
    assert r.cmd("s", "SELECT " + box)[-1].startswith("s OK")
    return r


r = raw_select()


def ok(cmd, tag="t", conn=None):
    out = (conn or r).cmd(tag, cmd)
    assert out[-1].startswith(tag + " OK"), (cmd, out)
    return out[:-1]


def esearch(lines, tag):
    return [x for x in lines if x.upper().startswith(
        '* ESEARCH (TAG "%s")' % tag.upper())]


def test_capability(R):
    caps = r.cmd("c", "CAPABILITY")[0].split()
    assert "CONTEXT=SEARCH" in caps and "CONTEXT=SORT" in caps, caps


def test_search_partial(R):
    out = ok("SEARCH RETURN (PARTIAL 2:4) ALL", "p1")
    assert esearch(out, "p1") == ['* ESEARCH (TAG "p1") PARTIAL (2:4 2:4)'], out
    out = ok("SEARCH RETURN (PARTIAL 5:3 COUNT) ALL", "p2")
    assert esearch(out, "p2") == \
        ['* ESEARCH (TAG "p2") COUNT 6 PARTIAL (3:5 3:5)'], out
    out = ok("SEARCH RETURN (PARTIAL 6:9) ALL", "p3")
    assert esearch(out, "p3") == ['* ESEARCH (TAG "p3") PARTIAL (6:9 6)'], out
    out = ok("SEARCH RETURN (PARTIAL 7:9) ALL", "p4")
    assert esearch(out, "p4") == ['* ESEARCH (TAG "p4") PARTIAL (7:9 NIL)'], out
    out = ok("UID SEARCH RETURN (PARTIAL 1:2) 2:6", "p5")
    assert esearch(out, "p5") == \
        ['* ESEARCH (TAG "p5") UID PARTIAL (1:2 2:3)'], out


def test_imaplib_partial(R):
    # Python's own client sends the command and keeps the ESEARCH
    m = login(srv)
    m.select("Ctx")
    typ, data = m.uid("SEARCH", "RETURN", "(PARTIAL", "1:2)", "ALL")
    assert typ == "OK", (typ, data)
    typ, data = m.response("ESEARCH")
    assert data and data[-1].endswith(b"UID PARTIAL (1:2 1:2)"), data
    m.logout()


def test_search_partial_bad(R):
    for bad in ("(PARTIAL 1)", "(PARTIAL 1:*)", "(PARTIAL 0:3)",
                "(PARTIAL 1:2 ALL)", "(PARTIAL 1:2 PARTIAL 1:2)",
                "(PARTIAL x:2)", "(PARTIAL 1:99999999999)"):
        out = r.cmd("b", "SEARCH RETURN %s ALL" % bad)
        assert out[-1].startswith("b BAD"), (bad, out)


def test_sort_partial(R):
    out = ok("SORT RETURN (PARTIAL 1:3) (REVERSE SUBJECT) UTF-8 ALL", "q1")
    assert esearch(out, "q1") == ['* ESEARCH (TAG "q1") PARTIAL (1:3 6,5,4)'], \
        out
    out = ok("UID SORT RETURN (PARTIAL 2:2) (SUBJECT) UTF-8 ALL", "q2")
    assert esearch(out, "q2") == ['* ESEARCH (TAG "q2") UID PARTIAL (2:2 2)'], \
        out
    out = r.cmd("b", "SORT RETURN (PARTIAL 1:2 ALL) (SUBJECT) UTF-8 ALL")
    assert out[-1].startswith("b BAD"), out


def test_update_own_changes(R):
    out = ok("SEARCH RETURN (UPDATE) SEEN", "u1")
    assert esearch(out, "u1") == ['* ESEARCH (TAG "u1")'], out
    out = ok("STORE 2,4 +FLAGS (\\Seen)")
    assert esearch(out, "u1") == ['* ESEARCH (TAG "u1") ADDTO (0 2,4)'], out
    out = ok("STORE 2 -FLAGS (\\Seen)")
    assert esearch(out, "u1") == ['* ESEARCH (TAG "u1") REMOVEFROM (0 2)'], out
    # a change that leaves the result alone says nothing
    out = ok("STORE 4 +FLAGS (\\Flagged)")
    assert esearch(out, "u1") == [], out
    ok('CANCELUPDATE "u1"')
    out = ok("STORE 1 +FLAGS (\\Seen)")
    assert esearch(out, "u1") == [], out
    ok("STORE 1:* -FLAGS (\\Seen \\Flagged)")


def test_update_other_session_and_delivery(R):
    out = ok("UID SEARCH RETURN (UPDATE ALL) FLAGGED", "u2")
    assert esearch(out, "u2") == ['* ESEARCH (TAG "u2") UID'], out
    other = raw_select()
    ok("STORE 3 +FLAGS (\\Flagged)", conn=other)
    out = ok("NOOP")
    assert esearch(out, "u2") == ['* ESEARCH (TAG "u2") UID ADDTO (0 3)'], out
    other.cmd("z", "LOGOUT")
    # A message delivered into the mailbox: EXISTS first, then ADDTO.
    out = ok("SEARCH RETURN (UPDATE) BODY delivered", "u3")
    assert esearch(out, "u3") == ['* ESEARCH (TAG "u3")'], out
    deliver(srv, "alice@example.org",
            b"Subject: new\r\n\r\ndelivered here\r\n", folder="Ctx")
    out = ok("NOOP")
    ex = [i for i, x in enumerate(out) if x == "* 7 EXISTS"]
    add = [i for i, x in enumerate(out)
           if x == '* ESEARCH (TAG "u3") ADDTO (0 7)']
    assert ex and add and ex[0] < add[0], out
    ok('CANCELUPDATE "u2" "u3"')


def test_update_expunge(R):
    # Result {5, 6} by sequence number; 5 expunged by another session:
    # REMOVEFROM names 5 before "* 5 EXPUNGE".
    out = ok("SEARCH RETURN (UPDATE) 5:6", "u4")
    assert esearch(out, "u4") == ['* ESEARCH (TAG "u4") ALL 5:6'], out
    other = raw_select()
    ok("STORE 1,5 +FLAGS (\\Deleted)", conn=other)
    ok("EXPUNGE", conn=other)
    other.cmd("z", "LOGOUT")
    out = ok("NOOP")
    rm = [i for i, x in enumerate(out)
          if x == '* ESEARCH (TAG "u4") REMOVEFROM (0 5)']
    exp = [i for i, x in enumerate(out) if x.endswith(" EXPUNGE")]
    assert rm and len(exp) == 2 and rm[0] < exp[0], out
    ok('CANCELUPDATE "u4"')


def test_cancelupdate_bad(R):
    out = r.cmd("b", 'CANCELUPDATE "nosuch"')
    assert out[-1].startswith("b BAD"), out
    out = r.cmd("b", "CANCELUPDATE")
    assert out[-1].startswith("b BAD"), out
    ok("SEARCH RETURN (UPDATE) DELETED", "u5")
    # one unknown tag: nothing is cancelled
    out = r.cmd("b", 'CANCELUPDATE "u5" "nosuch"')
    assert out[-1].startswith("b BAD"), out
    ok('CANCELUPDATE "u5"')


def test_update_refused(R):
    out = r.cmd("b", "SEARCH RETURN (UPDATE SAVE) ALL")
    assert out[-1].startswith("b BAD"), out
    ok("SEARCH RETURN (UPDATE) SEEN", "dup")
    out = r.cmd("dup", "SEARCH RETURN (UPDATE) ALL")
    assert out[-1].startswith("dup BAD"), out
    ok('CANCELUPDATE "dup"')
    out = ok("SEARCH RETURN (PARTIAL 1:2 UPDATE) ALL", "pu")
    assert out[0] == '* NO [NOUPDATE "pu"] updates of a PARTIAL result ' \
                     'are not kept', out
    assert esearch(out, "pu") == ['* ESEARCH (TAG "pu") PARTIAL (1:2 1:2)'], \
        out


def test_sort_update(R):
    # CONTEXT=SORT: each message added or removed as a pair of its
    # position in the sorted result and its number.
    b = raw_select("INBOX")
    ok("CREATE SortCtx", conn=b)
    for subj in ("b", "d", "f"):
        b.send(b"a APPEND SortCtx {%d+}\r\n" % (len(subj) + 15) +
               ("Subject: %s\r\n\r\nx\r\n" % subj).encode() + b"\r\n")
        assert b.until("a")[-1].startswith("a OK")
    ok("SELECT SortCtx", conn=b)
    out = ok("SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNDELETED", "so", conn=b)
    assert esearch(out, "so") == ['* ESEARCH (TAG "so") ALL 1:3'], out
    out = ok("UID SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 UNDELETED",
             "ru", conn=b)
    assert esearch(out, "ru") == ['* ESEARCH (TAG "ru") UID ALL 3,2,1'], out
    # "c" goes between b and d, "a" first
    for subj, seq, pos, rpos in (("c", 4, 2, 3), ("a", 5, 1, 5)):
        b.send(b"a APPEND SortCtx {16+}\r\n" +
               ("Subject: %s\r\n\r\nx\r\n" % subj).encode() + b"\r\n")
        out = b.until("a")
        assert esearch(out, "so") == \
            ['* ESEARCH (TAG "so") ADDTO (%d %d)' % (pos, seq)], out
        assert esearch(out, "ru") == \
            ['* ESEARCH (TAG "ru") UID ADDTO (%d %d)' % (rpos, seq)], out
    # order a(5) b(1) c(4) d(2) f(3): d leaves from position 4
    out = ok("STORE 2 +FLAGS (\\Deleted)", conn=b)
    assert esearch(out, "so") == ['* ESEARCH (TAG "so") REMOVEFROM (4 2)'], \
        out
    assert esearch(out, "ru") == \
        ['* ESEARCH (TAG "ru") UID REMOVEFROM (2 2)'], out
    # b (1) expunged by another session: before its EXPUNGE
    other = raw_select("SortCtx")
    ok("STORE 1 +FLAGS (\\Deleted)", conn=other)
    out = ok("NOOP", conn=b)
    assert esearch(out, "so") == ['* ESEARCH (TAG "so") REMOVEFROM (2 1)'], \
        out
    ok("EXPUNGE", conn=other)
    other.cmd("z", "LOGOUT")
    out = ok("NOOP", conn=b)
    assert esearch(out, "so") == [], out
    # two added in one sync, one pair each, in sort order, one after
    # the other: the view is f(1) c(2) a(3); copies f'(4), c'(5): c'
    # enters a c f at 3, then f' enters a c c' f at 5
    out = ok("COPY 1:2 SortCtx", conn=b)
    assert esearch(out, "so") == \
        ['* ESEARCH (TAG "so") ADDTO (3 5 5 4)'], out
    out = ok("SORT RETURN (ALL) (SUBJECT) UTF-8 UNDELETED", "chk", conn=b)
    assert esearch(out, "chk") == ['* ESEARCH (TAG "chk") ALL 3,2,5,1,4'], \
        out
    b.cmd("z", "LOGOUT")


def test_sort_update_bound(R):
    # A client that makes a message leave and enter a SORT kept updated
    # again and again makes its keys again each time: past sort_memory
    # (64K here, 256 octets a time) the SORT is dropped with NOUPDATE.
    b = raw_select("INBOX")
    ok("CREATE Churn", conn=b)
    data = ("Subject: %s\r\n\r\nx\r\n" % ("S" * 250)).encode()
    b.send(b"a APPEND Churn {%d+}\r\n" % len(data) + data + b"\r\n")
    assert b.until("a")[-1].startswith("a OK")
    ok("SELECT Churn", conn=b)
    ok("SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNDELETED", "ch", conn=b)
    n = 300
    b.send(b"".join(b"t%d STORE 1 %sFLAGS (\\Deleted)\r\n" %
                    (i, b"+" if i % 2 == 0 else b"-")
                    for i in range(2 * n)))
    out = b.until("t%d" % (2 * n - 1), limit=10 * n)
    no = [i for i, x in enumerate(out) if x == '* NO [NOUPDATE "ch"] '
          'the sort keys can no longer be kept']
    adds = [i for i, x in enumerate(out)
            if x.startswith('* ESEARCH (TAG "ch") ADDTO')]
    assert len(no) == 1 and 200 < len(adds) < n, (len(no), len(adds))
    assert adds[-1] < no[0], (adds[-1], no[0])
    b.cmd("z", "LOGOUT")


def test_update_limit(R):
    # A client cannot make the server follow searches without end:
    # past 8 the search is answered, with NOUPDATE.
    for i in range(8):
        out = ok("SEARCH RETURN (UPDATE) SEEN", "k%d" % i)
        assert not [x for x in out if "NOUPDATE" in x], out
    out = ok("SEARCH RETURN (UPDATE) SEEN", "k8")
    assert '* NO [NOUPDATE "k8"] too many searches are kept updated: ' \
           'CANCELUPDATE one first' in out, out
    assert esearch(out, "k8") == ['* ESEARCH (TAG "k8")'], out
    out = ok("STORE 1 +FLAGS (\\Seen)")
    adds = [x for x in out if re.match(r'\* ESEARCH \(TAG "k\d"\) ADDTO', x)]
    assert len(adds) == 8 and not esearch(out, "k8"), out
    ok('CANCELUPDATE "k0"')
    out = ok("SEARCH RETURN (UPDATE) SEEN", "k9")
    assert not [x for x in out if "NOUPDATE" in x], out
    # they end with the mailbox
    ok("SELECT Ctx")
    out = r.cmd("b", 'CANCELUPDATE "k9"')
    assert out[-1].startswith("b BAD"), out
    out = ok("STORE 1 -FLAGS (\\Seen)")
    assert not [x for x in out if "ESEARCH" in x], out


def test_update_cost_bound(R):
    # Eight searches for a text kept updated, then 5 MiB of messages
    # copied in: one sync would read 40 MiB; past 32 MiB the searches
    # left are dropped with NOUPDATE, the others get their ADDTO.
    b = raw_select("INBOX")
    ok("CREATE Big", conn=b)
    big = ("Subject: big\r\n\r\n" + ("y" * 1000 + "\r\n") * 1048 +
           "needle\r\n").encode()
    for _ in range(5):
        b.send(b"a APPEND Big {%d+}\r\n" % len(big) + big + b"\r\n")
        assert b.until("a")[-1].startswith("a OK")
    ok("SELECT Big", conn=b)
    for i in range(8):
        ok("SEARCH RETURN (UPDATE) BODY needle", "c%d" % i, conn=b)
    out = ok("COPY 1:5 Big", conn=b)
    dropped = [x for x in out if x.startswith("* NO [NOUPDATE ") and
               x.endswith("the changes are too many to follow: search "
                          "again")]
    added = [x for x in out if " ADDTO " in x]
    assert dropped and len(dropped) + len(added) == 8, out
    assert len(added) >= 4, out
    b.cmd("z", "LOGOUT")



def test_update_min_max_count(R):
    # RFC 5267 4.3: with MIN, MAX or COUNT (and no ALL) the updates are
    # those values again when they change, not ADDTO / REMOVEFROM
    m = login(srv)
    m.create("Mmc")
    for i in range(1, 4):
        m.append("Mmc", None, None, (MSG % (i, i)).encode())
    c = raw_select("Mmc")
    out = ok("SEARCH RETURN (UPDATE MIN MAX COUNT) ALL", "u1", conn=c)
    assert esearch(out, "u1") == \
        ['* ESEARCH (TAG "u1") MIN 1 MAX 3 COUNT 3'], out
    out = ok("UID SEARCH RETURN (UPDATE COUNT) UNSEEN", "u2", conn=c)
    assert esearch(out, "u2") == ['* ESEARCH (TAG "u2") UID COUNT 3'], out
    m.append("Mmc", None, None, (MSG % (4, 4)).encode())
    out = ok("NOOP", "n1", conn=c)
    assert esearch(out, "u1") == \
        ['* ESEARCH (TAG "u1") MIN 1 MAX 4 COUNT 4'], out
    assert esearch(out, "u2") == ['* ESEARCH (TAG "u2") UID COUNT 4'], out
    assert not [x for x in out if "ADDTO" in x], out
    # a change that leaves the values alone says nothing
    m.select("Mmc")
    m.store("2", "+FLAGS", "(\\Flagged)")
    out = ok("NOOP", "n2", conn=c)
    assert esearch(out, "u1") == [] and esearch(out, "u2") == [], out
    # one seen: u2's count falls
    m.store("3", "+FLAGS", "(\\Seen)")
    out = ok("NOOP", "n3", conn=c)
    assert esearch(out, "u2") == ['* ESEARCH (TAG "u2") UID COUNT 3'], out
    assert esearch(out, "u1") == [], out
    # the first expunged: MIN and MAX in the numbers after EXPUNGE
    m.store("1", "+FLAGS", "(\\Deleted)")
    m.expunge()
    out = ok("NOOP", "n4", conn=c)
    assert "* 1 EXPUNGE" in out, out
    assert esearch(out, "u1") == \
        ['* ESEARCH (TAG "u1") MIN 1 MAX 3 COUNT 3'], out
    assert not [x for x in out if "REMOVEFROM" in x], out
    # ALL beside them: both
    out = ok("SEARCH RETURN (UPDATE ALL COUNT) ALL", "u3", conn=c)
    m.append("Mmc", None, None, (MSG % (5, 5)).encode())
    out = ok("NOOP", "n5", conn=c)
    got = esearch(out, "u3")
    assert '* ESEARCH (TAG "u3") ADDTO (0 4)' in got, out
    assert '* ESEARCH (TAG "u3") COUNT 4' in got, out
    c.cmd("z", "LOGOUT")
    m.logout()


R.run(test_capability)
R.run(test_search_partial)
R.run(test_imaplib_partial)
R.run(test_search_partial_bad)
R.run(test_sort_partial)
R.run(test_update_own_changes)
R.run(test_update_other_session_and_delivery)
R.run(test_update_expunge)
R.run(test_cancelupdate_bad)
R.run(test_update_refused)
R.run(test_sort_update)
R.run(test_sort_update_bound)
R.run(test_update_limit)
R.run(test_update_cost_bound)
R.run(test_update_min_max_count)
r.cmd("z", "LOGOUT")
finish(R, srv)
