#!/usr/bin/env python3
"""IDLE with more idling clients than the kernel's default inotify
instance limit (128 per user): 210 clients of 30 users, on one worker,
log in, SELECT INBOX and IDLE.  A message delivered over SMTP to one
user, and one dropped into another user's new/ by another program,
reach every idler of that user as "* N EXISTS" long before polling
could (the poll interval is set to a minute, the bound is 5 s so that
a loaded machine does not fail it), and nobody else's.  The worker
uses one inotify instance for all of them (counted in /proc), and
nothing falls back to polling."""
import os
import select
import smtplib
import socket
import time

from mailserver import MailServer
from testlib import Runner, process_tree

R = Runner("imap_idle_scale")
USERS = 30
PER_USER = 7
srv = MailServer(R, ["imap", "smtp"], conf='''
imap = {
  listen = ( { port = %(imap)d; max_per_ip = 0; } );
  tls = %(tls)s;
  commands_per_second = 0;
  idle_poll_interval = "60s";
};
smtp = {
  hostname = "mx.test.example";
  listen = ( { port = %(mx)d; mode = "mx"; } );
};
''', ports=["imap", "mx"])
for u in range(USERS):
    srv.add_user("u%d@example.org" % u, "pw%d" % u)
srv.start()


class Idler:
    def __init__(self, user, password):
        self.user = user
        self.sock = socket.create_connection(("127.0.0.1", srv.port("imap")),
                                             10)
        self.buf = b""
        self.expect(b"* OK")
        self.cmd(b"a LOGIN %s %s" % (user.encode(), password.encode()),
                 b"a OK")
        self.cmd(b"b SELECT INBOX", b"b OK")
        self.cmd(b"c IDLE", b"+ ")
        self.sock.setblocking(False)

    def cmd(self, line, want):
        self.sock.sendall(line + b"\r\n")
        self.expect(want)

    def expect(self, want):
        while True:
            line = self.line()
            if line.startswith(want):
                return line

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.user)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_ready(self):
        """Lines that arrived (non-blocking)."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            data = b""
        self.buf += data
        lines = []
        while b"\r\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\r\n")
            lines.append(line)
        return lines


IDLERS = []


def wait_exists(idlers, others, t0, seconds=5.0):
    """Every idler in `idlers` sees EXISTS within `seconds` of t0;
    returns the slowest time.  None of `others` sees anything."""
    waiting = {i.sock.fileno(): i for i in idlers}
    worst = 0.0
    deadline = t0 + seconds
    while waiting and time.time() < deadline:
        ready, _, _ = select.select(list(waiting), [], [],
                                    max(0.0, deadline - time.time()))
        for fd in ready:
            i = waiting[fd]
            if any(b"EXISTS" in line for line in i.read_ready()):
                worst = max(worst, time.time() - t0)
                del waiting[fd]
    assert not waiting, "%d of %d idlers saw no EXISTS within %.1f s" % (
        len(waiting), len(idlers), seconds)
    for o in others:
        assert not any(b"EXISTS" in line for line in o.read_ready()), \
            o.user
    return worst


def inotify_fds():
    """inotify instances open in the posternd process tree."""
    n = 0
    for pid in process_tree(srv.daemon.proc.pid):
        fddir = "/proc/%d/fd" % pid
        try:
            for fd in os.listdir(fddir):
                try:
                    n += "inotify" in os.readlink(os.path.join(fddir, fd))
                except OSError:
                    pass
        except OSError:
            pass
    return n


def test_all_idle(r):
    for u in range(USERS):
        for _ in range(PER_USER):
            IDLERS.append(Idler("u%d@example.org" % u, "pw%d" % u))
    assert len(IDLERS) == USERS * PER_USER > 128
    # One instance for the whole worker, however many views.
    assert inotify_fds() == 1, inotify_fds()


def of(user):
    return [i for i in IDLERS if i.user == user]


def test_smtp_delivery_wakes_its_idlers(r):
    target = "u5@example.org"
    t0 = time.time()
    with smtplib.SMTP("127.0.0.1", srv.port("mx"), timeout=10) as s:
        s.sendmail("a@remote.example", [target],
                   b"Subject: wake up\r\n\r\nhello\r\n")
    worst = wait_exists(of(target), of("u6@example.org"), t0)
    print("SMTP delivery: slowest of %d idlers %.3f s" %
          (PER_USER, worst))


def test_dropped_file_wakes_its_idlers(r):
    target = "u29@example.org"
    new = os.path.join(srv.maildir(target), "new")
    tmpname = os.path.join(srv.maildir(target), "tmp", "1.dropped.test")
    with open(tmpname, "wb") as f:
        f.write(b"Subject: dropped\r\n\r\nby another program\r\n")
    t0 = time.time()
    os.rename(tmpname, os.path.join(new, "1.dropped.test"))
    worst = wait_exists(of(target), of("u28@example.org"), t0)
    print("file in new/: slowest of %d idlers %.3f s" % (PER_USER, worst))


def test_no_polling(r):
    log = srv.log()
    assert "poll for changes instead" not in log, log[-2000:]
    assert "cannot watch" not in log, log[-2000:]


def test_idlers_leave(r):
    for i in IDLERS:
        i.sock.setblocking(True)
        i.sock.settimeout(10)
        i.sock.sendall(b"DONE\r\nz LOGOUT\r\n")
    for i in IDLERS:
        i.expect(b"z OK")
        i.sock.close()
    # The last view gone, the instance is closed too.
    deadline = time.time() + 5
    while inotify_fds() != 0 and time.time() < deadline:
        time.sleep(0.05)
    assert inotify_fds() == 0


for t in (test_all_idle, test_smtp_delivery_wakes_its_idlers,
          test_dropped_file_wakes_its_idlers, test_no_polling,
          test_idlers_leave):
    R.run(t)
if R.failed:
    print(srv.log()[-4000:])
srv.stop()
R.finish()
