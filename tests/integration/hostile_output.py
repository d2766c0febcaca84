#!/usr/bin/env python3
"""Clients that send commands and never read the replies (issue 10).

Each case floods one protocol on a server with ONE worker, for a few
seconds and a bounded number of bytes, while a logged-in IMAP neighbour
sends NOOPs on the same worker.  It asserts that the worker's peak RSS
grew by less than 64 MiB (the host stops reading a connection whose
output is over `output_high_water`), that the neighbour was always
answered within a second, and that the attacker got a protocol error
or was closed (the junk-command budget, or output that did not drain for
the idle timeout).

    SMTP   NOOP/HELP before MAIL (junk budget: 421 4.7.0)
    SMTP   the same with junk_command_limit = 0 (back-pressure alone;
           closed when its output stalls for the idle timeout)
    POP3   CAPA before the login (junk budget: -ERR)
    IMAP   NOOP/CAPABILITY before the login (junk budget: * BYE)
    IMAP   a logged-in client pipelining FETCHes of a 96 KiB message
           (each one answered in a single FETCH step, so only the core's
           back-pressure bounds it; closed at the idle timeout)

and that max_per_ip defaults to 20 on the SMTP, POP3 and IMAP listeners.
"""
import imaplib
import os
import socket
import subprocess
import time

from hostile import Neighbour, WorkerMemory, drain, flood
from imaptest import deliver
from mailserver import MailServer
from testlib import Runner

R = Runner("hostile_output")
USER, PASSWORD = "alice@example.org", "alice-pw"
NEIGHBOUR, NEIGHBOUR_PW = "bob@example.org", "bob-pw"
LIMIT = 64 << 20          # worker peak growth
LATENCY = 1.0             # neighbour's worst round trip, seconds
SECONDS = 3.0             # each flood at most
MAX_BYTES = 24 << 20      # each flood sends at most

SRV = MailServer(R, ["smtp", "imap", "pop3"], workers=1, conf="""
smtp = {
  hostname = "mx.example.org";
  idle_timeout = "3s";
  listen = ( { name = "mx"; port = %(mx)d; mode = "mx"; },
             { name = "mx-nojunk"; port = %(mx2)d; mode = "mx";
               junk_command_limit = 0; } );
};
imap = {
  idle_timeout = "3s";
  # The command rate limit is a defence of its own: off, so that only
  # what this test is about stands between the flood and the worker.
  commands_per_second = 0;
  listen = ( { port = %(imap)d; } );
};
pop3 = { listen = ( { port = %(pop3)d; } ); };
""", ports=["mx", "mx2", "imap", "pop3"])
SRV.add_user(USER, PASSWORD)
SRV.add_user(NEIGHBOUR, NEIGHBOUR_PW)
BODY = b"".join(b"%05d the quick brown fox jumps over the dog\r\n" % i
                for i in range(2000))
deliver(SRV, USER, b"From: carol@example.net\r\nTo: alice@example.org\r\n"
        b"Subject: big\r\n\r\n" + BODY)
SRV.start()


def neighbour():
    """A logged-in IMAP client on the same worker; its probe is a NOOP."""
    m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
    m.login(NEIGHBOUR, NEIGHBOUR_PW)
    m.select("INBOX")

    def probe():
        typ, _ = m.noop()
        assert typ == "OK", typ
    return m, probe


def attack(name, port, line, expect=None, login=None, stall=0.5):
    """One flood on `port` with the neighbour probing throughout; then
    `stall` seconds more without reading (past the idle timeout, for a
    close by stalled output) before reading what the server sent."""
    m, probe = neighbour()
    mem = WorkerMemory(SRV.daemon)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.recv(4096)  # the greeting
    if login is not None:
        login(s)
    with Neighbour(probe) as n:
        sent, closed = flood(s, line, SECONDS, MAX_BYTES)
        # The server may still be working through what it read: the
        # neighbour keeps probing meanwhile.
        time.sleep(stall)
    growth = mem.growth()
    worst = n.worst
    tail, eof = drain(s)
    s.close()
    m.logout()
    print("  %s: sent %.1f MiB, worker peak +%.1f MiB, neighbour worst "
          "%.0f ms, %s" % (name, sent / 1048576, growth / 1048576,
                          worst * 1000,
                          "closed" if closed or eof else "still open"))
    mem.assert_growth_below(LIMIT)
    n.assert_worst_below(LATENCY)
    assert closed or eof, "the attacker was never closed"
    if expect is not None:
        assert expect in tail, "no %r in what the attacker got: %r" % (
            expect, tail[-300:])
    return tail


def test_smtp_noop_help_flood(r):
    attack("smtp NOOP/HELP", SRV.port("mx"), b"NOOP\r\nHELP\r\n",
           expect=b"421 4.7.0")
    assert "junk_command_limit" in SRV.log()


def test_smtp_flood_back_pressure_alone(r):
    attack("smtp HELP, no junk limit", SRV.port("mx2"), b"HELP\r\n",
           stall=4.0)
    assert "octets of output unsent" in SRV.log()


def test_pop3_capa_flood(r):
    attack("pop3 CAPA", SRV.port("pop3"), b"CAPA\r\n",
           expect=b"-ERR [SYS/PERM] too many commands")


def test_imap_preauth_flood(r):
    attack("imap NOOP/CAPABILITY", SRV.port("imap"),
           b"a NOOP\r\nb CAPABILITY\r\n",
           expect=b"* BYE Too many commands before login")


def imap_login(s):
    s.sendall(b'l LOGIN "%s" "%s"\r\ns SELECT INBOX\r\n' %
              (USER.encode(), PASSWORD.encode()))
    got = b""
    while b"s OK" not in got:
        data = s.recv(65536)
        assert data, got
        got += data


def test_imap_fetch_without_reading(r):
    attack("imap FETCH", SRV.port("imap"), b"f FETCH 1 BODY.PEEK[]\r\n",
           login=imap_login, stall=4.0)
    assert "octets of output unsent" in SRV.log()


def test_well_behaved_pipelining_unharmed(r):
    """A client that pipelines many commands and reads its replies gets
    every one of them (input pauses and resumes, nothing is lost)."""
    s = socket.create_connection(("127.0.0.1", SRV.port("imap")),
                                 timeout=10)
    s.recv(4096)
    imap_login(s)
    n = 60
    s.sendall(b"".join(b"f%d FETCH 1 BODY.PEEK[]\r\n" % i
                       for i in range(n)))
    got = bytearray()
    while b"f%d OK" % (n - 1) not in got[-200:]:
        data = s.recv(1 << 20)
        assert data, got[-300:]
        got += data
    assert got.count(b" OK Fetch completed") == n
    assert got.count(BODY) == n
    s.close()


def test_max_per_ip_default(r):
    """Without max_per_ip in the configuration, each listener takes 20
    connections from one address (loopback is not exempt); the 21st is
    closed at once, and the others are served."""
    for name in ("mx", "pop3", "imap"):
        held = []
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", SRV.port(name)),
                                             timeout=10)
                assert s.recv(4096), name  # its greeting
                held.append(s)
            s = socket.create_connection(("127.0.0.1", SRV.port(name)),
                                         timeout=10)
            try:
                extra = s.recv(4096)
            except ConnectionResetError:
                extra = b""
            s.close()
            assert extra == b"", (name, extra)
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)  # the server sees them go
    assert "connections from 127.0.0.1 (max_per_ip, all workers)" in \
        SRV.log()


def holders(port):
    """pids of the processes holding established connections on `port`
    (ss -p)."""
    import re
    out = subprocess.run(["ss", "-Htnp", "state", "established",
                          "sport", "=", ":%d" % port],
                         capture_output=True, text=True).stdout
    return set(int(p) for p in re.findall(r"pid=(\d+)", out))


def test_max_per_ip_counts_over_all_workers(r):
    """max_per_ip = 5 with 4 workers: whichever worker accepts, one
    address holds 5 connections in all, not 5 per worker.  The worker
    that took the first 3 is made to stop accepting (SIGUSR2: it drains,
    keeping its sessions), so the next ones go to the other workers:
    they must take 2 more, no more."""
    import signal
    srv = MailServer(R, ["pop3"], workers=4, name="four", conf="""
pop3 = { listen = ( { port = %(pop3)d; max_per_ip = 5; } ); };
""", ports=["pop3"])
    srv.start()
    port = srv.port("pop3")
    held = []

    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        held.append(s)
        try:
            return s.recv(4096).startswith(b"+OK")
        except (ConnectionResetError, socket.timeout):
            return False

    try:
        assert all(connect() for _ in range(3))
        first = holders(port)
        assert len(first) >= 1, first
        for pid in first:
            os.kill(pid, signal.SIGUSR2)
        time.sleep(0.5)
        more = sum(connect() for _ in range(8))
        others = holders(port) - first
        print("    first 3 held by %s; then %d of 8 served, by %s" %
              (sorted(first), more, sorted(others)))
        assert others, "no other worker accepted"
        assert more == 2, more
    finally:
        for s in held:
            s.close()
        srv.stop()


def test_max_userip_connections_default(r):
    """Ten IMAP sessions of one user from one address (Dovecot's
    mail_max_userip_connections default); the eleventh login is refused
    NO [LIMIT] and closed; once one logs out, a new one gets in."""
    sessions = []
    try:
        for _ in range(10):
            m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
            m.login(USER, PASSWORD)
            sessions.append(m)
        extra = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
        try:
            extra.login(USER, PASSWORD)
            raise AssertionError("an 11th session logged in")
        except imaplib.IMAP4.error as e:
            assert "[LIMIT]" in str(e), e
        sessions.pop().logout()
        time.sleep(0.2)
        m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
        m.login(USER, PASSWORD)
        sessions.append(m)
    finally:
        for m in sessions:
            m.logout()
    assert "(max_userip_connections): refused" in SRV.log()


for t in (test_smtp_noop_help_flood, test_smtp_flood_back_pressure_alone,
          test_pop3_capa_flood, test_imap_preauth_flood,
          test_imap_fetch_without_reading,
          test_well_behaved_pipelining_unharmed, test_max_per_ip_default,
          test_max_per_ip_counts_over_all_workers,
          test_max_userip_connections_default):
    R.run(t)
if R.failed:
    print(SRV.log()[-5000:])
SRV.stop()
R.finish()
