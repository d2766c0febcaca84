#!/usr/bin/env python3
"""The relay's CHUNKING (RFC 3030): to a next hop that announces it the
message goes in BDAT chunks, as it is (no dot-stuffing), the last one
marked LAST; a message past the chunk size goes in several; a message
that came without its final CRLF gets one (RFC 5321 section 4.1.1.4);
over LMTP each recipient gets its reply after BDAT LAST (RFC 2033).
"""
import socket
import sys

from relay_common import (MSG, NextHop, relay_server, send, strip_received,
                          wait_log)
from testlib import Runner

R = Runner("relay_chunking")

BDAT_CHUNK_MAX = 4 * 1024 * 1024   # relay_client.c


def route(port, kind="smtp"):
    return ('{ domain = "*"; via = "%s:[127.0.0.1]:%d"; tls = "none"; }'
            % (kind, port))


def test_bdat_one_chunk(r):
    hop = NextHop(chunking=True).start()
    srv = relay_server(r, route(hop.port), name="one")
    try:
        send(srv, ["bob@remote.example"])
        txns = hop.wait(1)
        assert len(txns) == 1, srv.log()[-3000:]
        t = txns[0]
        assert strip_received(t.data) == MSG, t.data
        assert hop.bdats == [(len(t.data), True)], hop.bdats
        assert not any(c.upper() == "DATA" for c in hop.commands), \
            hop.commands
        wait_log(srv, r"status=sent")
    finally:
        srv.stop()
        hop.stop()


def bdat_raw(port, rcpt, body):
    """Submits `body` with one BDAT LAST, as it is."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        f = s.makefile("rb")

        def cmd(line):
            if line is not None:
                s.sendall(line)
            reply = b""
            while True:
                ln = f.readline()
                reply += ln
                if ln[3:4] != b"-":
                    return reply

        cmd(None)
        cmd(b"EHLO client.example\r\n")
        assert cmd(b"MAIL FROM:<alice@sender.example>\r\n")[:1] == b"2"
        assert cmd(b"RCPT TO:<%s>\r\n" % rcpt.encode())[:1] == b"2"
        reply = cmd(b"BDAT %d LAST\r\n" % len(body) + body)
        assert reply[:1] == b"2", reply
        cmd(b"QUIT\r\n")


def test_bdat_without_final_crlf(r):
    hop = NextHop(chunking=True).start()
    srv = relay_server(r, route(hop.port), name="nocrlf")
    try:
        body = MSG + b".last line, no CRLF"
        bdat_raw(srv.port("mx"), "bob@remote.example", body)
        txns = hop.wait(1)
        assert len(txns) == 1, srv.log()[-3000:]
        assert strip_received(txns[0].data) == body + b"\r\n", \
            txns[0].data[-100:]
        assert hop.bdats == [(len(txns[0].data), True)], hop.bdats
    finally:
        srv.stop()
        hop.stop()


def test_bdat_several_chunks(r):
    hop = NextHop(chunking=True).start()
    srv = relay_server(r, route(hop.port), name="big")
    try:
        line = b".%s\r\n" % (b"x" * 70)
        msg = MSG + line * (BDAT_CHUNK_MAX // len(line) + 1000)
        send(srv, ["bob@remote.example"], msg=msg)
        txns = hop.wait(1, timeout=60)
        assert len(txns) == 1, srv.log()[-3000:]
        assert strip_received(txns[0].data) == msg
        assert [last for _, last in hop.bdats] == [False, True], hop.bdats
        assert hop.bdats[0][0] == BDAT_CHUNK_MAX, hop.bdats
        assert sum(n for n, _ in hop.bdats) == len(txns[0].data)
    finally:
        srv.stop()
        hop.stop()


def test_lmtp_bdat_per_recipient(r):
    hop = NextHop(lmtp=True, chunking=True)
    hop.rcpt_reply = lambda addr, n: \
        "550 5.1.1 no such user" if addr.startswith("nobody") else None
    hop.start()
    srv = relay_server(r, route(hop.port, "lmtp"), name="lmtp")
    try:
        send(srv, ["bob@remote.example", "nobody@remote.example",
                   "carol@remote.example"])
        # The message, then the report about nobody@ to the sender.
        txns = hop.wait(2)
        assert len(txns) == 2, srv.log()[-3000:]
        assert txns[0].rcpts == ["bob@remote.example",
                                 "carol@remote.example"], txns[0].rcpts
        assert strip_received(txns[0].data) == MSG
        assert [last for _, last in hop.bdats] == [True, True], hop.bdats
        log = wait_log(srv, r"status=sent", count=2)
        assert "to=<bob@remote.example>" in log
        assert "to=<carol@remote.example>" in log
        wait_log(srv, r"to=<nobody@remote.example>, .*dsn=5\.1\.1, "
                 r"status=bounced")
    finally:
        srv.stop()
        hop.stop()


for t in (test_bdat_one_chunk, test_bdat_without_final_crlf,
          test_bdat_several_chunks, test_lmtp_bdat_per_recipient):
    if len(sys.argv) > 1 and t.__name__ not in sys.argv[1:]:
        continue
    R.run(t)
R.finish()
