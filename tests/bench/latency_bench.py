#!/usr/bin/env python3
"""One client's round trip per IMAP command: postern against Dovecot on
copies of one Maildir, on loopback, the same raw-socket client for both.

    tests/bench/latency_bench.py [K [ROUNDS]]     (run by latency.sh)

INBOX holds 2,000 messages of 4 KiB, the folder Big 10,000, the folder
Large one message of 1 MiB and one of 16 MiB (CRLF line ends, as an MTA
delivers them: both servers send the file's octets as they are).  Each round
runs every command K times (default 1000; SELECT and the per-message
pass fewer) on postern, then on Dovecot; a command's figure is the
median of its per-round medians over ROUNDS rounds (default 3).  Prints
microseconds and ratios; never a pass or a failure on a time.
"""
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
os.environ.setdefault("top_builddir", os.getcwd())

import testlib                                   # noqa: E402
from mailserver import MailServer                # noqa: E402
from imap_bench import (Client, USER, PASSWORD,  # noqa: E402
                        start_dovecot, stop_dovecot)

K = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
INBOX_N, BIG_N, PER_MESSAGE = 2000, 10000, 2000


def make_folder(path, n, first):
    """n messages of 4,096 octets (CRLF form) in cur/, Dovecot-named."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i in range(n):
        head = ("From: Sender %d <sender%d@example.net>\r\n"
                "To: Bench <%s>\r\n"
                "Subject: latency message %d\r\n"
                "Date: Mon, 4 Mar 2024 10:%02d:00 +0100\r\n"
                "Message-ID: <%d.%d.lat@example.net>\r\n\r\n"
                % (i, i, USER, i, i % 60, first, i))
        line = "x" * 70 + "\r\n"
        body = line * ((4096 - len(head)) // len(line))
        body += "y" * (4096 - len(head) - len(body) - 2) + "\r\n"
        msg = (head + body).replace("\r\n", "\n").encode()
        crlf = len(msg) + msg.count(b"\n")
        name = "%d.M%dP1.lat,S=%d,W=%d:2,%s" % (
            first + i, i, len(msg), crlf, "S" if i % 3 else "")
        p = os.path.join(path, "cur", name)
        with open(p, "wb") as f:
            f.write(msg)
        os.utime(p, (first + i, first + i))


def make_large(path, sizes, first):
    """One message of each size (octets, CRLF form) in cur/."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i, size in enumerate(sizes):
        head = ("From: Sender <sender@example.net>\r\nTo: Bench <%s>\r\n"
                "Subject: large message %d\r\n\r\n" % (USER, i)).encode()
        line = b"z" * 76 + b"\r\n"
        msg = head + line * ((size - len(head)) // len(line))
        name = "%d.M%dP1.large,S=%d,W=%d:2,S" % (first + i, i, len(msg),
                                                 len(msg))
        with open(os.path.join(path, "cur", name), "wb") as f:
            f.write(msg)


def ok(st, what):
    if " OK" not in st:
        raise RuntimeError("%s: %s" % (what, st))


def sample(c, cmd, k):
    """Median round trip of `cmd` over k runs, in microseconds."""
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        st, _ = c.cmd(cmd)
        times.append(time.perf_counter() - t0)
        ok(st, cmd)
    return statistics.median(times) * 1e6


def one_round(port):
    c = Client(port)
    ok(c.cmd('LOGIN "%s" "%s"' % (USER, PASSWORD))[0], "LOGIN")
    out = {}
    out["SELECT Big (10,000)"] = sample_select(c, max(5, K // 100))
    ok(c.cmd("SELECT INBOX")[0], "SELECT")
    out["NOOP"] = sample(c, "NOOP", K)
    out["FETCH 1 (UID FLAGS)"] = sample(c, "FETCH 1 (UID FLAGS)", K)
    out["FETCH 1 BODY.PEEK[] (4 KiB)"] = sample(c, "FETCH 1 BODY.PEEK[]", K)
    out["STATUS Big"] = sample(c, "STATUS Big (MESSAGES UNSEEN UIDNEXT)", K)
    ok(c.cmd("EXAMINE Large")[0], "EXAMINE Large")
    out["FETCH BODY.PEEK[] (1 MiB)"] = sample(c, "FETCH 1 BODY.PEEK[]",
                                              max(5, K // 10))
    out["FETCH BODY.PEEK[] (16 MiB)"] = sample(c, "FETCH 2 BODY.PEEK[]",
                                               max(3, K // 100))
    ok(c.cmd("SELECT INBOX")[0], "SELECT")
    t0 = time.perf_counter()
    for u in range(1, PER_MESSAGE + 1):
        ok(c.cmd("UID FETCH %d (FLAGS BODY.PEEK[])" % u)[0], "UID FETCH")
    out["UID FETCH per message (msg/s)"] = \
        PER_MESSAGE / (time.perf_counter() - t0)
    c.cmd("LOGOUT")
    c.close()
    return out


def sample_select(c, k):
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        ok(c.cmd("SELECT Big")[0], "SELECT Big")
        times.append(time.perf_counter() - t0)
        ok(c.cmd("UNSELECT")[0], "UNSELECT")
    return statistics.median(times) * 1e6


def main():
    class R:
        tmp = tempfile.mkdtemp(prefix="bench-latency.")
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
        print("== making %d + %d messages" % (INBOX_N, BIG_N), flush=True)
        make_folder(md, INBOX_N, 1700000000)
        make_folder(os.path.join(md, ".Big"), BIG_N, 1710000000)
        make_large(os.path.join(md, ".Large"), (1 << 20, 16 << 20),
                   1720000000)
        dmd = os.path.join(R.tmp, "dovecot-Maildir")
        shutil.copytree(md, dmd)
        srv.start()
        dport = testlib.free_port()
        dconf = start_dovecot(R.tmp, dmd, dport)
        # A first pass each builds the indexes and warms the page cache.
        one_round(srv.port("imap"))
        one_round(dport)
        res = {"postern": [], "dovecot": []}
        for r in range(ROUNDS):
            print("== round %d of %d" % (r + 1, ROUNDS), flush=True)
            res["postern"].append(one_round(srv.port("imap")))
            res["dovecot"].append(one_round(dport))
        print("%-32s %12s %12s %8s" % ("median round trip (us)", "postern",
                                       "dovecot", "ratio"))
        for name in res["postern"][0]:
            p = statistics.median(x[name] for x in res["postern"])
            d = statistics.median(x[name] for x in res["dovecot"])
            rate = name.endswith("(msg/s)")
            ratio = p / d if rate else d / p
            print("%-32s %12.0f %12.0f %7.2fx" % (name, p, d, ratio))
        print("(ratio above 1: postern is faster; K=%d, %d rounds, "
              "interleaved)" % (K, ROUNDS))
    finally:
        if srv is not None:
            srv.stop()
        if dconf is not None:
            stop_dovecot(dconf)
        shutil.rmtree(R.tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
