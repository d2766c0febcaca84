#!/usr/bin/env python3
"""kill -9 of posternd (master and workers) in the middle of 2,000
relayed messages, then a restart: every message SMTP accepted reaches
the next hop, with its content intact (SHA-256 of each body), and
copies twice only within RFC 5321's window (a handful at most).

Clients send from 8 threads and send again what was not accepted (a
connection dropped by the kill, a 4xx), as a real client would.
"""
import hashlib
import os
import queue
import signal
import smtplib
import sys
import threading
import time

from relay_common import NextHop, relay_server
from testlib import Runner

R = Runner("relay_crash")
TOTAL = int(os.environ.get("RELAY_CRASH_MESSAGES", "2000"))
THREADS = 8


def message(n):
    body = b"".join(b"line %d of message %d %s\r\n" %
                    (i, n, hashlib.sha1(b"%d.%d" % (n, i)).hexdigest()
                     .encode()) for i in range(n % 40 + 1))
    return (b"From: load@sender.example\r\nTo: sink@remote.example\r\n"
            b"Subject: crash test\r\nX-Seq: %d\r\n\r\n" % n) + body


def seq_of(data):
    for line in data.split(b"\r\n"):
        if line.startswith(b"X-Seq: "):
            return int(line[7:])
        if line == b"":
            break
    return None


def body_of(data):
    return data.split(b"\r\n\r\n", 1)[1]


def test_kill_9_during_load(r):
    hop = NextHop().start()
    srv = relay_server(r, '{ domain = "*"; via = "smtp:[127.0.0.1]:%d"; '
                       'tls = "none"; }' % hop.port, name="crash",
                       workers=2, relay_extra='max_per_destination = 10;')
    todo = queue.Queue()
    for n in range(TOTAL):
        todo.put(n)
    acked = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client():
        s = None
        while not stop.is_set():
            try:
                n = todo.get_nowait()
            except queue.Empty:
                break
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", srv.port("mx"),
                                     timeout=30)
                s.sendmail("load@sender.example", ["sink@remote.example"],
                           message(n))
                with lock:
                    acked.add(n)
            except (OSError, smtplib.SMTPException):
                todo.put(n)  # not accepted: send it again
                try:
                    if s is not None:
                        s.close()
                except Exception:
                    pass
                s = None
                time.sleep(0.2)
        if s is not None:
            try:
                s.quit()
            except Exception:
                pass

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    try:
        for t in threads:
            t.start()
        deadline = time.time() + 120
        while len(acked) < TOTAL * 3 // 10 and time.time() < deadline:
            time.sleep(0.01)
        # The master first: it would fork a new worker for one killed
        # before it, and that worker would outlive the test.
        pids = [srv.daemon.proc.pid] + srv.daemon.workers()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        srv.daemon.proc.wait()
        with lock:
            at_kill = len(acked)
        print("killed after %d accepted" % at_kill, flush=True)
        time.sleep(0.5)
        srv.daemon.log.close()
        srv.start()
        for t in threads:
            t.join(300)
        assert len(acked) == TOTAL, len(acked)
        deadline = time.time() + 180
        while time.time() < deadline:
            got = {}
            for t in hop.wait(0):
                n = seq_of(t.data)
                assert n is not None, t.data[:300]
                got.setdefault(n, []).append(body_of(t.data))
            if len(got) == TOTAL:
                break
            time.sleep(0.2)
        time.sleep(1)  # a late duplicate would show now
        got = {}
        for t in hop.wait(0):
            got.setdefault(seq_of(t.data), []).append(body_of(t.data))
        missing = sorted(set(range(TOTAL)) - set(got))
        assert not missing, "%d never delivered, e.g. %s" % (
            len(missing), missing[:10])
        for n, bodies in got.items():
            want = hashlib.sha256(body_of(message(n))).hexdigest()
            for b in bodies:
                assert hashlib.sha256(b).hexdigest() == want, n
        dups = sum(len(b) - 1 for b in got.values())
        print("%d delivered, %d duplicates (RFC 5321 section 6.1 window)"
              % (len(got), dups), flush=True)
        # At most the messages in flight at the kill: the connections
        # of two workers.
        assert dups <= 40, dups
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        srv.stop()
        hop.stop()


R.run(test_kill_9_during_load)
R.finish()
