#!/usr/bin/env python3
"""The core's stream primitive (postern/stream.h) from the protocols'
side: a stored message streamed to a connection with dot-stuffing and
back-pressure.

    POP3   RETR and TOP of a 6 MiB message (dot lines, a last line
           without CRLF) byte-exact through poplib; pipelined RETRs of
           small messages in order
    POP3   a client that stops reading while a 48 MiB message streams:
           the worker's peak RSS stays far below the message's size, a
           neighbour on the same worker is answered within a second,
           and the message arrives whole once the client reads again
    POP3   a client that goes away mid-stream: the worker lives on and
           the maildrop's lock is released (the next login works)
    relay  a 6 MiB message with dot lines to the next hop, by DATA and
           by BDAT (two chunks), byte-exact
"""
import poplib
import socket
import time

from hostile import Neighbour, WorkerMemory
from imaptest import deliver
from mailserver import MailServer
from relay_common import NextHop, relay_server, send, strip_received
from testlib import Runner

R = Runner("stream")
USER, PASSWORD = "alice@example.org", "alice-pw"
NEIGHBOUR, NEIGHBOUR_PW = "bob@example.org", "bob-pw"
LATENCY = 1.0


def big_body(octets):
    """Lines of varied length, every 7th starting with a dot."""
    lines, size, i = [], 0, 0
    while size < octets:
        line = b"%07d %s" % (i, b"x" * (i % 97))
        if i % 7 == 0:
            line = b"." + line
        if i % 501 == 0:
            line = b".."
        lines.append(line)
        size += len(line) + 2
        i += 1
    return b"\r\n".join(lines) + b"\r\n"


HEADER = (b"From: carol@example.net\r\nTo: alice@example.org\r\n"
          b"Subject: big\r\n\r\n")
BIG = HEADER + big_body(6 << 20) + b".last line without CRLF"
HUGE = HEADER + big_body(48 << 20)

SRV = MailServer(R, ["pop3"], workers=1, conf="""
pop3 = { listen = ( { port = %(pop3)d; } ); };
""", ports=["pop3"])
SRV.add_user(USER, PASSWORD)
SRV.add_user(NEIGHBOUR, NEIGHBOUR_PW)
deliver(SRV, USER, BIG)
deliver(SRV, USER, HUGE)
for k in range(20):
    deliver(SRV, USER, HEADER + b".%d\r\nsmall %d\r\n" % (k, k))
deliver(SRV, NEIGHBOUR, HEADER + b"hello\r\n")
SRV.start()
# Message numbers follow the store's order: found by size.
NUM = {}
SMALL = []


def numbers():
    p = poplib.POP3("127.0.0.1", SRV.port("pop3"), timeout=30)
    p.user(USER)
    p.pass_(PASSWORD)
    for entry in p.list()[1]:
        n, size = map(int, entry.split())
        if size == len(BIG):
            NUM["big"] = n
        elif size == len(HUGE):
            NUM["huge"] = n
        else:
            SMALL.append(n)
    p.quit()
    assert len(SMALL) == 20 and len(NUM) == 2, (NUM, SMALL)


numbers()


def login(user=USER, password=PASSWORD):
    p = poplib.POP3("127.0.0.1", SRV.port("pop3"), timeout=30)
    p.user(user)
    p.pass_(password)
    return p


def test_pop3_retr_big(r):
    p = login()
    resp, lines, octets = p.retr(NUM["big"])
    got = b"\r\n".join(lines)
    # poplib drops the final CRLF; the server added one to the last line.
    assert got == BIG, "RETR differs (got %d octets, want %d)" % (
        len(got), len(BIG))
    assert resp.startswith(b"+OK %d octets" % len(BIG)), resp
    resp, lines, octets = p.top(NUM["big"], 3)
    body = BIG.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert b"\r\n".join(lines) == HEADER + b"\r\n".join(body[:3]), lines[:8]
    p.quit()


def test_pop3_pipelined_small(r):
    s = socket.create_connection(("127.0.0.1", SRV.port("pop3")), timeout=30)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (USER.encode(), PASSWORD.encode()))
    f.readline()
    assert f.readline().startswith(b"+OK")
    s.sendall(b"".join(b"RETR %d\r\n" % n for n in SMALL) +
              b"TOP %d 0\r\nNOOP\r\n" % SMALL[0])
    seen = set()
    for n in SMALL:
        assert f.readline().startswith(b"+OK"), n
        got = b""
        while not got.endswith(b"\r\n.\r\n"):
            line = f.readline()
            assert line, "EOF in RETR %d" % n
            got += line
        k = int(got[len(HEADER) + 2:].split(b"\r\n")[0])
        want = HEADER + b"..%d\r\nsmall %d\r\n.\r\n" % (k, k)
        assert got == want, (n, got)
        seen.add(k)
    assert seen == set(range(20)), seen
    assert f.readline().startswith(b"+OK")
    got = b""
    while not got.endswith(b"\r\n.\r\n"):
        got += f.readline()
    assert got == HEADER + b".\r\n", got
    assert f.readline().startswith(b"+OK"), "NOOP after the RETRs"
    s.sendall(b"QUIT\r\n")
    f.close()
    s.close()


def test_pop3_stalled_reader(r):
    nb = login(NEIGHBOUR, NEIGHBOUR_PW)

    def probe():
        assert nb.noop().startswith(b"+OK")
    mem = WorkerMemory(SRV.daemon)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(30)
    s.connect(("127.0.0.1", SRV.port("pop3")))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"USER %s\r\nPASS %s\r\nRETR %d\r\nNOOP\r\n" %
              (USER.encode(), PASSWORD.encode(), NUM["huge"]))
    with Neighbour(probe) as n:
        time.sleep(3.0)    # reads nothing meanwhile
    growth = mem.growth()
    worst = n.worst
    f.readline()
    f.readline()
    head = f.readline()
    assert head == b"+OK %d octets\r\n" % len(HUGE), head
    size, bad = 0, 0
    want = HUGE.split(b"\r\n")
    i = 0
    deadline = time.time() + 60
    while time.time() < deadline:
        line = f.readline()
        assert line, "EOF in the middle of the RETR"
        if line == b".\r\n":
            break
        if line.startswith(b".."):
            line = line[1:]
        if i < len(want) and line[:-2] != want[i]:
            bad += 1
        i += 1
        size += len(line)
    assert bad == 0 and size == len(HUGE), (bad, size, len(HUGE))
    assert f.readline().startswith(b"+OK"), "NOOP after the RETR"
    f.close()
    s.close()
    nb.quit()
    print("  48 MiB RETR stalled 3 s: worker peak +%.1f MiB, neighbour "
          "worst %.0f ms" % (growth / 1048576, worst * 1000))
    # The message is 48 MiB: the stream keeps a chunk and its mark, the
    # store a window of the mapping.
    assert growth < (16 << 20), "worker grew by %.1f MiB" % (
        growth / 1048576)
    n.assert_worst_below(LATENCY)


def test_pop3_client_leaves_mid_stream(r):
    for round in range(3):
        s = socket.create_connection(("127.0.0.1", SRV.port("pop3")),
                                     timeout=30)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"USER %s\r\nPASS %s\r\nRETR %d\r\n" %
                  (USER.encode(), PASSWORD.encode(), NUM["huge"]))
        f.readline()
        f.readline()
        assert f.readline().startswith(b"+OK")
        f.read(100000 * (round + 1))
        f.close()   # the socket closes with its last reference
        s.close()
    # The lock on the maildrop went with the session: a new login works
    # (poplib raises on -ERR [IN-USE]), bounded retries while the
    # release job runs.
    deadline = time.time() + 10
    while True:
        try:
            p = login()
            break
        except poplib.error_proto as e:
            assert b"IN-USE" in e.args[0] and time.time() < deadline, e
            time.sleep(0.2)
    assert p.stat()[0] == 22
    p.quit()
    assert ": error: " not in SRV.log(), SRV.log()[-3000:]
    assert SRV.daemon.workers(), "the worker died"


RELAY_MSG = (b"From: alice@sender.example\r\nTo: bob@remote.example\r\n"
             b"Subject: big relay\r\n\r\n" + big_body(6 << 20))


def relay_big(r, chunking, name):
    hop = NextHop(chunking=chunking, size=30000000).start()
    srv = relay_server(r, '{ domain = "*"; via = "smtp:[127.0.0.1]:%d"; '
                       'tls = "none"; }' % hop.port, name=name)
    try:
        send(srv, ["bob@remote.example"], msg=RELAY_MSG)
        txns = hop.wait(1, timeout=60)
        assert len(txns) == 1, srv.log()[-3000:]
        assert strip_received(txns[0].data) == RELAY_MSG, \
            "relayed message differs (%d octets, want %d)" % (
                len(strip_received(txns[0].data)), len(RELAY_MSG))
        return hop
    finally:
        srv.stop()
        hop.stop()


def test_relay_data_big(r):
    relay_big(r, False, "data")


def test_relay_bdat_big(r):
    hop = relay_big(r, True, "bdat")
    assert len(hop.bdats) == 2 and hop.bdats[-1][1], hop.bdats


R.run(test_pop3_retr_big)
R.run(test_pop3_pipelined_small)
R.run(test_pop3_stalled_reader)
R.run(test_pop3_client_leaves_mid_stream)
R.run(test_relay_data_big)
R.run(test_relay_bdat_big)
if R.failed:
    print(SRV.log()[-5000:])
SRV.stop()
R.finish()
