#!/usr/bin/env python3
"""Commands answered on the worker's loop without a job (issue 14): NOOP
with nothing new, FETCH of index items (UID FLAGS RFC822.SIZE ...), and
FETCH of one small message already in the page cache.  They must not
wake a job thread, and they must never answer from a stale view: a
change made by another process or session just before the command is
reported by that very command, held-back expunges come with the next
NOOP, and the content read on the loop is the message, CRLF and all.
"""
import os
import time

from imaptest import Raw, deliver, finish, login, message, start_server
from testlib import Runner

R = Runner("imap_fastpath")
srv = start_server(R, "  commands_per_second = 0;\n")
USER = "alice@example.org"


def job_wakeups(pid):
    """Voluntary context switches of the worker's threads but its loop
    (the job threads sleep until a job comes)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        if int(tid) == pid:
            continue
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def selected(folder="INBOX"):
    c = Raw(srv.port("imap"))
    c.login()
    r = c.cmd("S", "SELECT %s" % folder)
    assert r[-1].startswith("S OK"), r
    return c


def test_no_job_for_current_view(runner):
    for i in range(3):
        deliver(srv, USER, message("fast %d" % i, body="line\r\n" * 40))
    c = selected()
    # The first NOOP after SELECT syncs (what came before the watch is
    # unknown); the first FETCH of the body reads it into memory.
    c.cmd("N0", "NOOP")
    c.cmd("F0", "FETCH 1 BODY.PEEK[]")
    pid = srv.daemon.workers()[0]
    before = job_wakeups(pid)
    for i in range(100):
        assert c.cmd("N%d" % i, "NOOP")[-1].startswith("N%d OK" % i)
        r = c.cmd("U%d" % i, "FETCH 1:3 (UID FLAGS RFC822.SIZE)")
        assert r[-1].startswith("U%d OK" % i) and len(r) == 4, r
        r = c.cmd("B%d" % i, "FETCH 2 BODY.PEEK[]")
        assert r[-1].startswith("B%d OK" % i), r
    woke = job_wakeups(pid) - before
    # 300 commands: through jobs they would wake the threads 300 times.
    assert woke < 30, "job threads woke %d times for 300 commands" % woke
    c.cmd("Z", "LOGOUT")


def test_delivery_seen_by_next_command(runner):
    c = Raw(srv.port("imap"))
    c.login()
    r = c.cmd("S", "SELECT INBOX")
    n = int([x for x in r if x.endswith(" EXISTS")][0].split()[1])
    for i in range(40):
        deliver(srv, USER, message("race %d" % i))
        n += 1
        # No pause: the rename returned, so NOOP must know.
        r = c.cmd("N%d" % i, "NOOP")
        assert "* %d EXISTS" % n in r, (i, n, r)
    c.cmd("Z", "LOGOUT")


def test_flag_change_on_disk_seen_by_fetch(runner):
    deliver(srv, USER, message("flags"), folder="Flags")
    c = selected("Flags")
    c.cmd("N", "NOOP")
    cur = os.path.join(srv.maildir(USER), ".Flags", "cur")
    for i in range(10):
        name = os.listdir(cur)[0]
        base = name.split(":2,")[0]
        flags = name.split(":2,")[1] if ":2," in name else ""
        new = "F" if "F" not in flags else ""
        os.rename(os.path.join(cur, name), os.path.join(
            cur, base + ":2," + "".join(sorted(set(
                flags.replace("F", "") + new)))))
        r = c.cmd("F%d" % i, "FETCH 1 (FLAGS)")
        flagged = [x for x in r if x.startswith("* 1 FETCH")]
        assert flagged, r
        assert ("\\Flagged" in flagged[-1]) == bool(new), (i, name, r)
    c.cmd("Z", "LOGOUT")


def test_other_session_store_and_expunge(runner):
    a = selected()
    b = login(srv)
    b.select("INBOX")
    a.cmd("N", "NOOP")
    for i in range(10):
        b.store("1", "+FLAGS" if i % 2 == 0 else "-FLAGS", "(\\Flagged)")
        r = a.cmd("N%d" % i, "NOOP")
        got = [x for x in r if x.startswith("* 1 FETCH")]
        assert got and ("\\Flagged" in got[-1]) == (i % 2 == 0), (i, r)
    b.store("2", "+FLAGS", "(\\Deleted)")
    b.expunge()
    # FETCH may not announce the expunge (RFC 3501 7.4.1): it answers
    # from what the index still knows, and holds the EXPUNGE back ...
    r = a.cmd("F", "FETCH 2 (UID FLAGS)")
    assert r[-1].startswith("F OK") and not any(
        "EXPUNGE" in x for x in r), r
    # ... which the next NOOP must send, even though nothing changed
    # on disk since the FETCH's sync.
    r = a.cmd("N", "NOOP")
    assert "* 2 EXPUNGE" in r, r
    r = a.cmd("N2", "NOOP")
    assert not any("EXPUNGE" in x for x in r), r
    b.logout()
    a.cmd("Z", "LOGOUT")


def test_loop_content_is_the_message(runner):
    crlf = message("crlf body", body="one\r\ntwo\r\n" * 200)
    bare = message("lf body", body="three\nfour\n" * 200).replace(
        b"\r\n", b"\n")
    deliver(srv, USER, crlf, folder="Content")
    deliver(srv, USER, bare, folder="Content")
    m = login(srv)
    m.select("Content")
    # Which is which: the order of two deliveries in one second is the
    # order of their names.
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    first_is_crlf = b"crlf body" in data[0][1]
    want = {1 if first_is_crlf else 2: crlf,
            2 if first_is_crlf else 1: bare.replace(b"\n", b"\r\n")}
    for round_ in range(3):      # the first read may go through a job
        for seq, body in want.items():
            typ, data = m.fetch(str(seq), "(BODY.PEEK[] RFC822.SIZE)")
            assert typ == "OK" and data[0][1] == body, (seq, data)
            assert b"RFC822.SIZE %d" % len(body) in data[0][0] + data[1], \
                data
            typ, data = m.fetch(str(seq), "(BODY.PEEK[TEXT]<10.20>)")
            text = body[body.index(b"\r\n\r\n") + 4:]
            assert typ == "OK" and data[0][1] == text[10:30], data
    # Not PEEK: \Seen is set, which needs the store (a job).
    typ, data = m.fetch("1", "(BODY[] FLAGS)")
    assert typ == "OK" and b"\\Seen" in b" ".join(
        x if isinstance(x, bytes) else x[0] for x in data), data
    m.logout()


def test_pipelined_burst_all_answered(runner):
    """Commands answered on the loop yield after a few per read callback
    (so a pipelining client cannot hold the worker); none may be lost or
    reordered when the session picks up again."""
    c = selected()
    c.cmd("N", "NOOP")
    burst = b"".join(b"p%d FETCH 1 (UID FLAGS)\r\n" % i for i in range(1000))
    c.send(burst)
    for i in range(1000):
        r = c.until("p%d" % i, limit=10)
        assert r[-1].startswith("p%d OK" % i), (i, r)
    assert c.cmd("Z", "NOOP")[-1].startswith("Z OK")
    c.cmd("L", "LOGOUT")


def backdate(folder_dir, ago):
    """new/ and cur/ changed `ago` seconds back: a directory changed
    less than two seconds ago is read again, never trusted."""
    t = __import__("time").time() - ago
    for sub in ("new", "cur"):
        os.utime(os.path.join(folder_dir, sub), (t, t))


def drop_in_new(box, name):
    """A delivery by another program: tmp/, then a rename into new/."""
    tmp = os.path.join(box, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(message("from elsewhere"))
    os.rename(tmp, os.path.join(box, "new", name))


def status(c, tag, folder):
    r = c.cmd(tag, "STATUS %s (MESSAGES UNSEEN UIDNEXT)" % folder)
    assert r[-1].startswith("%s OK" % tag), r
    line = [x for x in r if x.startswith("* STATUS")][0]
    f = line[line.index("(") + 1:line.rindex(")")].split()
    return dict(zip(f[0::2], map(int, f[1::2])))


def test_status_of_unchanged_mailbox_no_job(runner):
    """STATUS of a mailbox nothing changed since its last STATUS is
    answered on the loop (storage 1.5 status_nowait); a change by
    another process (a delivery, a message read by a mail reader) is
    reported by the very next STATUS."""
    for i in range(3):
        deliver(srv, USER, message("polled %d" % i), folder="Polled")
    box = os.path.join(srv.maildir(USER), ".Polled")
    backdate(box, 10)
    c = Raw(srv.port("imap"))
    c.login()
    first = status(c, "T0", "Polled")
    assert first["MESSAGES"] == 3 and first["UNSEEN"] == 3, first
    pid = srv.daemon.workers()[0]
    before = job_wakeups(pid)
    for i in range(100):
        assert status(c, "T%d" % (i + 1), "Polled") == first
    woke = job_wakeups(pid) - before
    assert woke < 10, "job threads woke %d times for 100 STATUS" % woke
    # Another program delivers.
    drop_in_new(box, "1700000000.P9Q9.other")
    st = status(c, "D1", "Polled")
    assert st["MESSAGES"] == 4 and st["UIDNEXT"] == first["UIDNEXT"] + 1, st
    # postern's own delivery, in another process's session of its own.
    deliver(srv, USER, message("polled 4"), folder="Polled")
    st = status(c, "D2", "Polled")
    assert st["MESSAGES"] == 5 and st["UNSEEN"] == 5, st
    # Settled again (the fast path back), then a flag renamed on disk.
    backdate(box, 9)
    status(c, "D3", "Polled")
    assert status(c, "D4", "Polled")["MESSAGES"] == 5
    new = os.path.join(box, "new")
    name = sorted(os.listdir(new))[0]
    os.rename(os.path.join(new, name),
              os.path.join(box, "cur", name + ":2,S"))
    st = status(c, "D5", "Polled")
    assert st["UNSEEN"] == 4, st
    c.cmd("Z", "LOGOUT")


def exists_of(r):
    return int([x for x in r if x.endswith(" EXISTS")][0].split()[1])


def test_select_of_untouched_mailbox_no_job(runner):
    """SELECT of a mailbox the worker had open a moment ago, nothing
    changed since, takes the kept view back on the loop (storage 1.5
    open_nowait); UNSELECT still closes on a job.  A delivery by
    another program between two SELECTs is in the second."""
    for i in range(3):
        deliver(srv, USER, message("again %d" % i), folder="Again")
    box = os.path.join(srv.maildir(USER), ".Again")
    c = Raw(srv.port("imap"))
    c.login()
    r = c.cmd("S0", "SELECT Again")     # takes \Recent, moves new/
    assert exists_of(r) == 3, r
    backdate(box, 10)
    time.sleep(1.2)                     # an index this young is not kept
    c.cmd("U0", "UNSELECT")
    r = c.cmd("S1", "SELECT Again")     # settles the trusted mtimes
    c.cmd("U1", "UNSELECT")
    pid = srv.daemon.workers()[0]
    before = job_wakeups(pid)
    for i in range(50):
        r = c.cmd("S%d" % (i + 2), "SELECT Again")
        assert r[-1].startswith("S%d OK [READ-WRITE]" % (i + 2)), r
        assert exists_of(r) == 3 and "* 0 RECENT" in r, r
        assert "* OK [UNSEEN 1] First unseen" in r, r
        assert c.cmd("U%d" % (i + 2), "UNSELECT")[-1].startswith(
            "U%d OK" % (i + 2))
    woke = job_wakeups(pid) - before
    # A job wakes its thread about twice (for the work, for the pool's
    # lock): 50 UNSELECT jobs about 100 times, 50 SELECT jobs as many
    # again.
    assert woke < 150, "job threads woke %d times for 50 SELECT" % woke
    drop_in_new(box, "1700000000.P8Q8.other")
    r = c.cmd("S", "SELECT Again")
    assert exists_of(r) == 4 and "* 1 RECENT" in r, r
    c.cmd("Z", "LOGOUT")


R.run(test_no_job_for_current_view)
R.run(test_pipelined_burst_all_answered)
R.run(test_delivery_seen_by_next_command)
R.run(test_flag_change_on_disk_seen_by_fetch)
R.run(test_other_session_store_and_expunge)
R.run(test_loop_content_is_the_message)
R.run(test_status_of_unchanged_mailbox_no_job)
R.run(test_select_of_untouched_mailbox_no_job)
finish(R, srv)
