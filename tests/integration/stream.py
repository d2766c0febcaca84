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
    IMAP   FETCH BODY[], BODY[TEXT] and a partial of the 6 MiB message
           (the long ranges go through the stream) byte-exact through
           imaplib, with small messages and other items around them in
           one FETCH; \\Seen set and said; the same of a file with
           bare LFs (read through the store's conversion)
    IMAP   a client that stops reading during a 48 MiB BODY[]: peak RSS
           bounded, a neighbour answered, the literal whole afterwards
           and the command's tagged OK after it
    IMAP   a client that goes away mid-literal: the worker lives on,
           no error logged, the next session fetches
"""
import imaplib
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

SRV = MailServer(R, ["pop3", "imap"], workers=1, conf="""
log_level = "debug";
pop3 = { listen = ( { port = %(pop3)d; } ); };
imap = { listen = ( { port = %(imap)d; } ); };
""", ports=["pop3", "imap"])
SRV.add_user(USER, PASSWORD)
SRV.add_user(NEIGHBOUR, NEIGHBOUR_PW)
deliver(SRV, USER, BIG)
deliver(SRV, USER, HUGE)
for k in range(20):
    deliver(SRV, USER, HEADER + b".%d\r\nsmall %d\r\n" % (k, k))
deliver(SRV, NEIGHBOUR, HEADER + b"hello\r\n")
# Stored with bare LFs, as Dovecot and Postfix write: read through the
# store's conversion, not as a file.
deliver(SRV, USER, BIG.replace(b"\r\n", b"\n"), folder="Lf")
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


def small_window_client(service):
    """A raw client with a 64 KiB receive buffer (so that not reading
    soon stops the server's output), past the greeting."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(30)
    s.connect(("127.0.0.1", SRV.port(service)))
    f = s.makefile("rb")
    f.readline()
    return s, f


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
    s, f = small_window_client("pop3")
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


# ---- IMAP FETCH --------------------------------------------------------

def imap_login(user=USER, password=PASSWORD):
    m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=60)
    m.login(user, password)
    return m


def imap_numbers(m):
    """Sequence numbers of the big, huge and two small messages."""
    typ, data = m.fetch("1:*", "(RFC822.SIZE)")
    seqs = {}
    for line in data:
        n, _, rest = line.partition(b" ")
        size = int(rest.split(b"RFC822.SIZE ")[1].rstrip(b")"))
        if size == len(BIG):
            seqs["big"] = int(n)
        elif size == len(HUGE):
            seqs["huge"] = int(n)
        else:
            seqs.setdefault("small", []).append(int(n))
    return seqs


def test_imap_fetch_big(r):
    m = imap_login()
    m.select("INBOX")
    seqs = imap_numbers(m)
    big, small = seqs["big"], seqs["small"][0]
    text = BIG.split(b"\r\n\r\n", 1)[1]
    typ, data = m.fetch("%d,%d" % (small, big),
                        "(UID BODY[] BODY.PEEK[TEXT] BODY.PEEK[]<1000.3000000> "
                        "RFC822.SIZE BODY.PEEK[]<5.10>)")
    assert typ == "OK", data
    # Each message's items come in one response, its literals in order:
    # imaplib gives a tuple per literal, the first one's text names the
    # message.
    msgs, cur = {}, None
    for item in data:
        if not isinstance(item, tuple):
            continue
        if item[0][:1].isdigit():
            cur = msgs.setdefault(int(item[0].split()[0]), [])
        cur.append(item[1])
    assert sorted(msgs) == sorted([big, small]), msgs.keys()
    mine, theirs = msgs[big], msgs[small]
    assert len(mine) == 4, len(mine)
    assert mine[0] == BIG, "BODY[] differs (%d octets, want %d)" % (
        len(mine[0]), len(BIG))
    assert mine[1] == text, "BODY[TEXT] differs"
    assert mine[2] == BIG[1000:3001000], "partial differs"
    assert mine[3] == BIG[5:15], mine[3]
    assert len(theirs) == 4 and theirs[0].startswith(HEADER), theirs
    assert theirs[2] == b"" and theirs[3] == theirs[0][5:15], theirs
    # BODY[] set \Seen, and the response said so.
    typ, data = m.fetch(str(big), "(FLAGS)")
    assert b"\\Seen" in data[0], data
    # The long ranges went through the host's stream, the short ones not.
    log = SRV.log()
    for length, start in ((len(BIG), 0), (len(text), len(HEADER)),
                          (3000000, 1000)):
        assert "streams %d octets of uid " % length in log and \
            " from %d" % start in log, (length, log[-2000:])
    assert "streams 10 octets" not in log
    m.store(str(big), "-FLAGS", "(\\Seen)")
    assert m.noop()[0] == "OK"
    m.select("Lf")
    typ, data = m.fetch("1", "(BODY.PEEK[] BODY.PEEK[]<7.2000000>)")
    assert typ == "OK" and data[0][1] == BIG, "BODY[] of the LF file"
    assert data[1][1] == BIG[7:2000007], "partial of the LF file"
    assert "streams 2000000 octets of uid 1 from 7" in SRV.log()
    m.logout()


def imap_read_literal(f, n):
    got, left = [], n
    while left > 0:
        chunk = f.read(min(left, 1 << 20))
        assert chunk, "EOF in the middle of the literal"
        got.append(chunk)
        left -= len(chunk)
    return b"".join(got)


def test_imap_stalled_reader(r):
    nb = imap_login(NEIGHBOUR, NEIGHBOUR_PW)
    nb.select("INBOX")

    def probe():
        assert nb.noop()[0] == "OK"
    m = imap_login()
    m.select("INBOX")
    huge = imap_numbers(m)["huge"]
    m.logout()
    mem = WorkerMemory(SRV.daemon)
    s, f = small_window_client("imap")
    s.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n"
              b"c FETCH %d (BODY.PEEK[])\r\nd NOOP\r\n" %
              (USER.encode(), PASSWORD.encode(), huge))
    with Neighbour(probe) as n:
        time.sleep(3.0)    # reads nothing meanwhile
    growth = mem.growth()
    while True:
        line = f.readline()
        assert line, "EOF before the FETCH"
        if line.startswith(b"* %d FETCH" % huge):
            break
    assert line.endswith(b"BODY[] {%d}\r\n" % len(HUGE)), line
    got = imap_read_literal(f, len(HUGE))
    assert got == HUGE, "the literal differs"
    assert f.readline() == b")\r\n"
    assert f.readline().startswith(b"c OK"), "FETCH's tagged reply"
    while True:
        line = f.readline()
        assert line, "EOF before NOOP's reply"
        if line.startswith(b"d "):
            break
    assert line.startswith(b"d OK"), line
    f.close()
    s.close()
    nb.logout()
    print("  48 MiB FETCH BODY[] stalled 3 s: worker peak +%.1f MiB, "
          "neighbour worst %.0f ms" % (growth / 1048576, n.worst * 1000))
    assert growth < (16 << 20), "worker grew by %.1f MiB" % (
        growth / 1048576)
    n.assert_worst_below(LATENCY)


def test_imap_client_leaves_mid_stream(r):
    m = imap_login()
    m.select("INBOX")
    huge = imap_numbers(m)["huge"]
    m.logout()
    for round in range(3):
        s = socket.create_connection(("127.0.0.1", SRV.port("imap")),
                                     timeout=30)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n"
                  b"c FETCH %d (BODY.PEEK[] BODY.PEEK[TEXT])\r\n" %
                  (USER.encode(), PASSWORD.encode(), huge))
        f.read(300000 * (round + 1))
        f.close()
        s.close()
    m = imap_login()
    m.select("INBOX")
    typ, data = m.fetch(str(huge), "(BODY.PEEK[]<0.200>)")
    assert typ == "OK" and data[0][1] == HUGE[:200], data
    m.logout()
    assert ": error: " not in SRV.log(), SRV.log()[-3000:]
    assert SRV.daemon.workers(), "the worker died"


R.run(test_pop3_retr_big)
R.run(test_pop3_pipelined_small)
R.run(test_pop3_stalled_reader)
R.run(test_pop3_client_leaves_mid_stream)
R.run(test_imap_fetch_big)
R.run(test_imap_stalled_reader)
R.run(test_imap_client_leaves_mid_stream)
R.run(test_relay_data_big)
R.run(test_relay_bdat_big)
if R.failed:
    print(SRV.log()[-5000:])
SRV.stop()
R.finish()
