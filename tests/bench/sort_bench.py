#!/usr/bin/env python3
"""SORT / THREAD benchmark: postern and Dovecot on copies of one Maildir
of N messages (threads of replies with References, Re:/Fwd: subjects,
some without a Date), on loopback, with imap_bench's raw client.

    tests/bench/sort_bench.py N          (run by tests/bench/sort.sh)

For each server: the first run of each command after the Maildir is
first opened (nothing cached), then RUNS repeated runs in a new session
(median).  Never a pass or a failure on a time.
"""
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
os.environ.setdefault("top_builddir", os.getcwd())

import testlib                                          # noqa: E402
from imap_bench import (PASSWORD, USER, WORDS, Client,  # noqa: E402
                        start_dovecot, stop_dovecot)
from mailserver import MailServer                       # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
COMMANDS = (
    ("SORT (DATE)", "SORT (DATE) UTF-8 ALL"),
    ("SORT (SUBJECT)", "SORT (SUBJECT) UTF-8 ALL"),
    ("THREAD REFERENCES", "THREAD REFERENCES UTF-8 ALL"),
    ("SEARCH TEXT", "SEARCH TEXT needleword"),
)


def make_maildir(path, n):
    """n messages in cur/: threads of 1-20 messages, replies carrying
    References to their ancestors, one in 50 without a Date."""
    rnd = random.Random(7)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    base = 1700000000
    threads = []
    for i in range(n):
        if not threads or rnd.random() < 0.3:
            threads.append([rnd.choice(WORDS) + " " + rnd.choice(WORDS)
                            + " %d" % len(threads), []])
        th = rnd.choice(threads[-50:])
        subject, ids = th
        prefix = rnd.choice(("Re: ", "RE: ", "Fwd: ", "[list] Re: "))
        refs = ("References: %s\n" % " ".join(ids[-10:])) if ids else ""
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(
            30, 300)))
        if i % 97 == 0:
            words += " needleword"
        body = "\n".join(words[k:k + 72] for k in range(0, len(words), 72))
        date = ("" if i % 50 == 0 else
                "Date: %s\n" % time.strftime(
                    "%a, %d %b %Y %H:%M:%S +0000",
                    time.gmtime(base + rnd.randint(0, 86400 * 300))))
        msgid = "<%d.sort@example.net>" % i
        msg = ("From: Sender %d <sender%d@example.net>\n"
               "To: Bench <%s>\n"
               "Subject: %s%s\n%s"
               "Message-ID: %s\n%s"
               "\n%s\n" % (i % 300, i % 300, USER,
                           prefix if ids else "", subject, date, msgid,
                           refs, body)).encode()
        ids.append(msgid)
        crlf = len(msg) + msg.count(b"\n")
        name = "%d.M%dP1.bench,S=%d,W=%d:2,%s" % (
            base + i, i, len(msg), crlf, "S" if i % 3 else "")
        p = os.path.join(path, "cur", name)
        with open(p, "wb") as f:
            f.write(msg)
        os.utime(p, (base + i, base + i))


def session(port):
    c = Client(port)
    # a first SEARCH TEXT parses every message: minutes at 50,000
    c.sock.settimeout(600)
    st, _ = c.cmd('LOGIN "%s" "%s"' % (USER, PASSWORD))
    assert " OK" in st, st
    st, _ = c.cmd("SELECT INBOX")
    assert " OK" in st, st
    return c


def timed(c, cmd):
    t0 = time.perf_counter()
    st, octets = c.cmd(cmd)
    return time.perf_counter() - t0, st, octets


def run(port):
    """{name: (first, repeated median, status, octets)}."""
    out = {}
    c = session(port)
    first = {name: timed(c, cmd) for name, cmd in COMMANDS}
    c.cmd("LOGOUT")
    c.close()
    again = {name: [] for name, _ in COMMANDS}
    for _ in range(RUNS):
        c = session(port)
        for name, cmd in COMMANDS:
            again[name].append(timed(c, cmd))
        c.cmd("LOGOUT")
        c.close()
    for name, _ in COMMANDS:
        t, st, octets = first[name]
        out[name] = (t, statistics.median(x[0] for x in again[name]),
                     st, octets, again[name][-1][2])
    return out


def main():
    class R:
        tmp = tempfile.mkdtemp(prefix="bench-sort.")
    srv = dconf = None
    try:
        srv = MailServer(R, ["imap"], conf='''
imap = {
  listen = ( { port = %(imap)d; } );
  commands_per_second = 0;
};
''', ports=["imap"])
        srv.add_user(USER, PASSWORD)
        md = srv.maildir(USER)
        print("== %d messages" % N, flush=True)
        make_maildir(md, N)
        dmd = os.path.join(R.tmp, "dovecot-Maildir")
        shutil.copytree(md, dmd)
        srv.start()
        dport = testlib.free_port()
        dconf = start_dovecot(R.tmp, dmd, dport)
        # The first SELECT builds each server's index (not timed).
        for port in (srv.port("imap"), dport):
            session(port).close()
        p = run(srv.port("imap"))
        d = run(dport)
        print("%-20s %11s %11s %7s %11s %11s %7s" % (
            "", "postern 1st", "dovecot 1st", "ratio", "postern", "dovecot",
            "ratio"))
        for name, _ in COMMANDS:
            pf, pr, pst, po, po2 = p[name]
            df, dr, dst, do, do2 = d[name]
            ok = " OK" in pst and " OK" in dst
            print("%-20s %11.4f %11.4f %7s %11.4f %11.4f %7s" % (
                name, pf, df, "%.2fx" % (df / pf) if ok else "-",
                pr, dr, "%.2fx" % (dr / pr) if ok else "-"))
            if po != do or po2 != do2:
                print("    answers differ in size: postern %d, dovecot %d "
                      "octets" % (po2, do2))
            if not ok:
                print("    postern: %s / dovecot: %s" % (pst, dst))
        print("(times in seconds; ratio: Dovecot's time / postern's, above "
              "1 postern is faster)", flush=True)
    finally:
        if srv is not None:
            srv.stop()
        if dconf is not None:
            stop_dovecot(dconf)
        shutil.rmtree(R.tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
