#!/usr/bin/env python3
"""IMAP benchmark: postern and Dovecot on copies of one Maildir of N
messages, on loopback, driven by the same raw-socket client.

    tests/bench/imap_bench.py [N [CONNS]]     (run by tests/bench/imap.sh)

Figures (median of RUNS runs, interleaved): login + SELECT, FETCH 1:*
(FLAGS RFC822.SIZE), the same with ENVELOPE, FETCH 1:* BODY.PEEK[], SEARCH TEXT on a
word; then the RSS of posternd's worker with CONNS idle logged-in IMAP
connections.  A figure a server cannot give (postern's ENVELOPE and
SEARCH TEXT need imap_mime.c) is shown as "n/a" with its answer.
Never a pass or a failure on a time.
"""
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
os.environ.setdefault("top_builddir", os.getcwd())

import testlib                                   # noqa: E402
from dovecot_peer import Dovecot                 # noqa: E402
from mailserver import MailServer                # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
USER, PASSWORD = "bench@example.org", "bench-secret"
TAG = b"BQ7"
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet "
         "kilo lima mike november oscar papa quebec romeo sierra tango "
         "uniform victor whiskey xray yankee zulu").split()


def make_maildir(path, n):
    """n messages in cur/ with Dovecot-style names (S= and W= sizes)."""
    rnd = random.Random(42)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    base = 1700000000
    for i in range(n):
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(
            50, 600)))
        if i % 97 == 0:
            words += " needleword"
        body = "\n".join(words[k:k + 72] for k in range(0, len(words), 72))
        msg = ("From: Sender %d <sender%d@example.net>\n"
               "To: Bench <%s>\n"
               "Subject: benchmark message %d\n"
               "Date: Mon, 4 Mar 2024 10:%02d:00 +0100\n"
               "Message-ID: <%d.bench@example.net>\n"
               "\n%s\n" % (i, i, USER, i, i % 60, i, body)).encode()
        crlf = len(msg) + msg.count(b"\n")
        name = "%d.M%dP1.bench,S=%d,W=%d:2,%s" % (
            base + i, i, len(msg), crlf, "S" if i % 3 else "")
        p = os.path.join(path, "cur", name)
        with open(p, "wb") as f:
            f.write(msg)
        os.utime(p, (base + i, base + i))


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 30)
        self.buf = b""
        self.n = 0
        self.read_until_line()

    def read_until_line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(1 << 20)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, text):
        """Sends a command; returns (status line, octets received)."""
        self.n += 1
        tag = TAG + str(self.n).encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        total = 0
        key = b"\r\n" + tag + b" "
        data = b"\r\n" + self.buf
        self.buf = b""
        while True:
            k = data.find(key)
            if k >= 0:
                end = data.find(b"\r\n", k + 2)
                if end >= 0:
                    total += k
                    status = data[k + 2:end]
                    self.buf = data[end + 2:]
                    return status.decode(errors="replace"), total
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("closed during %s" % text)
            if len(data) > 1 << 16:
                keep = data[-256:]
                total += len(data) - 256
                data = keep
            data += chunk

    def close(self):
        self.sock.close()


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def run_suite(port):
    """Times of each step for one server (one run)."""
    out = {}
    t, c = timed(lambda: Client(port))
    t2, (st, _) = timed(lambda: c.cmd('LOGIN "%s" "%s"' % (USER, PASSWORD)))
    assert " OK" in st, st
    t3, (st, _) = timed(lambda: c.cmd("SELECT INBOX"))
    assert " OK" in st, st
    out["login+select"] = (t + t2 + t3, st)
    for name, cmd in (
            ("fetch flags+size", "FETCH 1:* (FLAGS RFC822.SIZE)"),
            ("fetch flags+size+envelope",
             "FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)"),
            ("fetch all bodies", "FETCH 1:* BODY.PEEK[]"),
            ("search text", "SEARCH TEXT needleword")):
        t, (st, octets) = timed(lambda: c.cmd(cmd))
        out[name] = (t, st)
    c.cmd("LOGOUT")
    c.close()
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_connections(srv, port, conns):
    """RSS of the worker before and with `conns` idle, logged-in IMAP
    connections."""
    worker = srv.daemon.workers()[0]
    before = rss_kib(worker)
    socks = []
    t0 = time.time()
    for i in range(conns):
        s = socket.create_connection(("127.0.0.1", port), 30)
        s.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(),
                                             PASSWORD.encode()))
        got = b""
        while b"\r\na OK" not in got:
            chunk = s.recv(4096)
            if not chunk or b"\r\na NO" in got:
                raise RuntimeError("login %d failed: %r" % (i, got))
            got += chunk
        socks.append(s)
    elapsed = time.time() - t0
    time.sleep(1)
    with_conns = rss_kib(worker)
    for x in socks:
        x.close()
    return before, with_conns, elapsed


def start_dovecot(tmp, maildir, port):
    """Dovecot serving USER from `maildir` (a copy of postern's)."""
    return Dovecot(tmp, port, [(USER, "{PLAIN}" + PASSWORD)],
                   mail=maildir).start()


def stop_dovecot(dovecot):
    dovecot.stop()


def main():
    class R:
        tmp = tempfile.mkdtemp(prefix="bench-imap.")
    srv = None
    dconf = None
    try:
        srv = MailServer(R, ["imap"], conf='''
imap = {
  listen = ( { port = %(imap)d; max_conns = 100000; max_per_ip = 0; } );
  commands_per_second = 0;
  max_userip_connections = 0;  # as Dovecot's 100000 above
};
''', ports=["imap"])
        srv.add_user(USER, PASSWORD)
        md = srv.maildir(USER)
        print("== making %d messages" % N, flush=True)
        make_maildir(md, N)
        dmd = os.path.join(R.tmp, "dovecot-Maildir")
        shutil.copytree(md, dmd)
        srv.start()
        dport = testlib.free_port()
        dconf = start_dovecot(R.tmp, dmd, dport)
        # One run each to build the indexes (not timed).
        run_suite(srv.port("imap"))
        run_suite(dport)
        results = {"postern": [], "dovecot": []}
        for _ in range(RUNS):
            results["postern"].append(run_suite(srv.port("imap")))
            results["dovecot"].append(run_suite(dport))
        print("%-28s %12s %12s %8s" % ("", "postern (s)", "dovecot (s)",
                                       "ratio"))
        for name in results["postern"][0]:
            p = [r[name] for r in results["postern"]]
            d = [r[name] for r in results["dovecot"]]
            pok = all(" OK" in x[1] for x in p)
            dok = all(" OK" in x[1] for x in d)
            pm = statistics.median(x[0] for x in p)
            dm = statistics.median(x[0] for x in d)
            ratio = "%.2fx" % (dm / pm) if pok and dok and pm > 0 else "-"
            print("%-28s %12s %12s %8s" % (
                name, "%.4f" % pm if pok else "n/a",
                "%.4f" % dm if dok else "n/a", ratio))
            if not pok:
                print("    postern: %s" % p[0][1])
        print("(ratio: Dovecot's time / postern's; above 1 postern is "
              "faster)")
        before, after, el = idle_connections(srv, srv.port("imap"), CONNS)
        print("postern worker RSS: %.1f MiB idle, %.1f MiB with %d logged-in "
              "idle IMAP connections (+%.1f KiB each; %d logins in %.1f s)"
              % (before / 1024, after / 1024, CONNS,
                 (after - before) / CONNS, CONNS, el))
    finally:
        if srv is not None:
            srv.stop()
        if dconf is not None:
            stop_dovecot(dconf)
        shutil.rmtree(R.tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
