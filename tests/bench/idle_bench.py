#!/usr/bin/env python3
"""IDLE at scale: postern (one worker) and Dovecot (its high-performance
mode: imap processes of 100 clients each; at 1,000 one ran out of its
memory limit) on loopback, each with C
clients of U users logged in, INBOX selected and idling.  Then 20
messages are put into random users' new/ (the way an MTA or an LDA
does: a file renamed from tmp/), and the time until the last idler of
that user has seen "* n EXISTS" is measured.

    tests/bench/idle_bench.py [C...]      (run by tests/bench/idle.sh)

Prints, per C and server: median and worst wake-up over the 20
deliveries, and the memory each idling client costs (posternd's worker
RSS, or the sum over Dovecot's processes, before and with the clients,
divided by C).  postern's users have argon2id at its cheapest cost and
Dovecot's {PLAIN}: logins are not what is measured.  Never a pass or a
failure on a time.
"""
import os
import random
import select
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
from dovecot_peer import PERFORMANCE, Dovecot    # noqa: E402
from mailserver import MailServer                # noqa: E402

SIZES = [int(a) for a in sys.argv[1:]] or [100, 1000, 5000]
USERS = int(os.environ.get("BENCH_USERS", "100"))
DELIVERIES = 20
BATCH = 200


def user(i):
    return "idle%d@example.org" % i


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(root):
    """RSS of `root` and every process below it."""
    return sum(rss_kib(p) for p in testlib.process_tree(root))


class Idler:
    def __init__(self, port, name, password):
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), 60)
        self.sock.setblocking(False)
        self.buf = b""
        self.idling = False
        self.sock.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\nc IDLE\r\n"
                          % (name.encode(), password.encode()))

    def pump(self):
        """Reads what came; the lines."""
        try:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.name)
            self.buf += data
        except BlockingIOError:
            pass
        lines = []
        while b"\r\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\r\n")
            lines.append(line)
            if line.startswith(b"+ "):
                self.idling = True
            if line.startswith((b"a NO", b"b NO", b"c NO", b"a BAD",
                                b"* BYE")):
                raise RuntimeError("%s: %r" % (self.name, line))
        return lines


def ready_fds(fds, timeout):
    """The fds among `fds` with input, waiting up to `timeout` s (poll:
    select cannot take descriptors past 1024)."""
    p = select.poll()
    for fd in fds:
        p.register(fd, select.POLLIN)
    return [fd for fd, _ in p.poll(timeout * 1000)]


def connect_all(port, n, password_of):
    idlers = []
    t0 = time.time()
    for start in range(0, n, BATCH):
        batch = [Idler(port, user(i % USERS), password_of(i % USERS))
                 for i in range(start, min(n, start + BATCH))]
        waiting = {i.sock.fileno(): i for i in batch}
        deadline = time.time() + 120
        while waiting and time.time() < deadline:
            for fd in ready_fds(waiting, 1):
                i = waiting[fd]
                i.pump()
                if i.idling:
                    del waiting[fd]
        if waiting:
            raise RuntimeError("%d clients did not reach IDLE" %
                               len(waiting))
        idlers.extend(batch)
    return idlers, time.time() - t0


def drop(maildir, k):
    tmp = os.path.join(maildir, "tmp", "%d.bench%d.host" % (time.time(), k))
    with open(tmp, "wb") as f:
        f.write(b"Subject: wake %d\r\n\r\nnew mail\r\n" % k)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(maildir, "new", os.path.basename(tmp)))


def wakeups(idlers, maildir_of):
    """Seconds from each drop until the target's last idler saw EXISTS."""
    by_user = {}
    for i in idlers:
        by_user.setdefault(i.name, []).append(i)
    rnd = random.Random(7)
    times = []
    for k in range(DELIVERIES):
        name = user(rnd.randrange(min(USERS, len(idlers))))
        waiting = {i.sock.fileno(): i for i in by_user[name]}
        t0 = time.time()
        drop(maildir_of(name), k)
        deadline = t0 + 60
        while waiting and time.time() < deadline:
            for fd in ready_fds(waiting, 1):
                if any(b"EXISTS" in line for line in waiting[fd].pump()):
                    del waiting[fd]
        times.append(time.time() - t0 if not waiting else float("inf"))
        time.sleep(0.2)
        for i in by_user[name]:     # the rest of its untagged lines
            i.pump()
    return times


def start_dovecot(tmp, port):
    """Dovecot in its high-performance setup, a Maildir for each user."""
    return Dovecot(tmp, port, [(user(u), "{PLAIN}pw%d" % u)
                               for u in range(USERS)],
                   tuning=PERFORMANCE).start()


def report(name, n, times, before, after, elapsed):
    fin = [t for t in times if t != float("inf")]
    lost = len(times) - len(fin)
    print("%-8s %6d clients: wake-up median %7.1f ms, worst %7.1f ms%s; "
          "%5.1f KiB per idling client (%.0f -> %.0f MiB); %d logins "
          "in %.1f s" % (
              name, n, statistics.median(times) * 1000 if fin else -1,
              max(fin) * 1000 if fin else -1,
              " (%d never woke within 60 s)" % lost if lost else "",
              (after - before) / n, before / 1024, after / 1024, n,
              elapsed), flush=True)


def run(name, port, pid_of, n, password_of, maildir_of):
    before = pid_of()
    idlers, elapsed = connect_all(port, n, password_of)
    time.sleep(2)
    after = pid_of()
    times = wakeups(idlers, maildir_of)
    report(name, n, times, before, after, elapsed)
    for i in idlers:
        i.sock.close()
    time.sleep(1)


def main():
    class R:
        tmp = tempfile.mkdtemp(prefix="bench-idle.")
    srv = None
    dconf = None
    try:
        srv = MailServer(R, ["imap"], conf='''
auth_queue = 100000;
auth_queue_per_ip = 0;
auth_threads = 2;
imap = {
  listen = ( { port = %(imap)d; max_conns = 100000; max_per_ip = 0; } );
  commands_per_second = 0;
  max_userip_connections = 0;
};
''', ports=["imap"])
        for u in range(USERS):
            srv.add_user(user(u), "pw%d" % u)
        srv.start()
        worker = srv.daemon.workers()[0]
        dport = testlib.free_port()
        dconf = start_dovecot(R.tmp, dport)
        dpid = dconf.master_pid()
        print("IDLE at scale: %d users; clients spread over them; one "
              "postern worker; Dovecot in high-performance mode" % USERS)
        for n in SIZES:
            run("postern", srv.port("imap"), lambda: rss_kib(worker), n,
                lambda u: "pw%d" % u, srv.maildir)
            run("dovecot", dport, lambda: tree_rss_kib(dpid), n,
                lambda u: "pw%d" % u,
                dconf.maildir)
        log = srv.log()
        print("postern polled: %s" % ("yes" if "poll for changes" in log
                                      else "no"))
        dlog = dconf.log()
        if "notify" in dlog.lower() or "inotify" in dlog.lower():
            print("dovecot log: %s" % [line for line in dlog.splitlines()
                                       if "notify" in line.lower()][:2])
    except Exception:
        if dconf is not None:
            print("dovecot log:\n" + "\n".join(
                dconf.log().splitlines()[-15:]))
        raise
    finally:
        if srv is not None:
            srv.stop()
        if dconf is not None:
            dconf.stop()
        shutil.rmtree(R.tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
