#!/usr/bin/env python3
"""A posternd gateway (smtp + relay, "A") delivering to a second,
complete posternd ("B": auth, storage, smtp for far.example): messages
reach B's mailbox byte for byte apart from the trace fields (Return-Path,
Received), sent with BDAT since B announces CHUNKING, with the DSN
parameters passed on (seen by a tap between A and B); with the route's
STARTTLS policy "encrypt" the hop is made inside TLS (B's Received says
ESMTPS); an authenticated submission on A's submission port reaches B
the same way.
"""
import socket
import sys
import threading

from mailserver import MailServer
from relay_common import RELAY_SO, MSG, relay_server, send, wait_log
from smtp_common import wait_messages
from testlib import Runner, free_port

R = Runner("relay_posternd")

FAR_MSG = MSG.replace(b"bob@remote.example", b"bob@far.example")


def server_b(r, name):
    """B: a full server, its relay there for the reports it sends
    (which is also what makes its SMTP announce DSN); they go nowhere."""
    b = MailServer(r, ["smtp", RELAY_SO], conf="""
smtp = {
  hostname = "b.test.example";
  tls = %(tls)s;
  listen = ( { name = "mx"; port = %(mx)d; mode = "mx"; } );
};
relay = {
  hostname = "b.test.example";
  routes = ( { domain = "*"; via = "smtp:[127.0.0.1]:NOWHERE";
               tls = "none"; } );
};
""".replace("NOWHERE", str(free_port())), ports=["mx"], name=name)
    b.add_user("bob@far.example", "bob-pw")
    b.start()
    return b


def server_a(r, port, name, tls):
    return relay_server(r, '{ domain = "far.example"; via = '
                        '"smtp:[127.0.0.1]:%d"; tls = "%s"; }' %
                        (port, tls),
                        relay_domains=("far.example",), name=name)


class Tap:
    """A TCP relay in front of B that records what A sends (in clear)."""

    def __init__(self, port):
        self.to = port
        self.sent = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.to))
            threading.Thread(target=self._pipe, args=(c, u, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, False),
                             daemon=True).start()

    def _pipe(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    with self.lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def strip_trace(data):
    """The message without the trace fields at its top (RFC 5321 4.4),
    and the list of those fields."""
    lines = data.split(b"\r\n")
    trace, i = [], 0
    while i < len(lines) and (lines[i].startswith(b"Received:") or
                              lines[i].startswith(b"Return-Path:")):
        field = lines[i]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field += b"\r\n" + lines[i]
            i += 1
        trace.append(field)
    return b"\r\n".join(lines[i:]), trace


def check_arrival(a, b, msg, tls):
    got = wait_messages(b, "bob@far.example", 1, timeout=20)
    assert len(got) == 1, (got, a.log()[-2000:], b.log()[-2000:])
    body, trace = strip_trace(got[0])
    assert body == msg, got[0]
    # B's Received (first) names the hop from A, in TLS or not.
    by_b = [t for t in trace if b"by b.test.example" in t]
    assert len(by_b) == 1, trace
    assert (b"with ESMTPS" in by_b[0]) == tls, by_b[0]
    wait_log(a, r"to=<bob@far.example>, relay=127\.0\.0\.1.*status=sent")


def test_gateway_to_posternd(r):
    b = server_b(r, "b1")
    tap = Tap(b.port("mx"))
    a = server_a(r, tap.port, "a1", "none")
    try:
        send(a, ["bob@far.example"], msg=FAR_MSG,
             mail_options=["RET=HDRS", "ENVID=env+2B1"],
             rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                           "ORCPT=rfc822;bob+2Bx@far.example"])
        check_arrival(a, b, FAR_MSG, tls=False)
        sent = tap.sent.decode("latin-1")
        # The DSN parameters go on (RFC 3461 section 4), and the message
        # goes with BDAT since B announces CHUNKING, not dot-stuffed.
        assert " RET=HDRS" in sent and " ENVID=env+2B1" in sent, sent
        assert " NOTIFY=SUCCESS,FAILURE" in sent, sent
        assert " ORCPT=rfc822;bob+2Bx@far.example" in sent, sent
        assert "\r\nBDAT " in sent and "\r\nDATA\r\n" not in sent, sent
        assert "\r\n.a line with a leading dot" in sent, sent
    finally:
        a.stop()
        b.stop()
        tap.close()


def test_gateway_to_posternd_encrypt(r):
    b = server_b(r, "b2")
    a = server_a(r, b.port("mx"), "a2", "encrypt")
    try:
        send(a, ["bob@far.example"], msg=FAR_MSG)
        check_arrival(a, b, FAR_MSG, tls=True)
    finally:
        a.stop()
        b.stop()


def test_submission_to_posternd(r):
    b = server_b(r, "b3")
    a = server_a(r, b.port("mx"), "a3", "encrypt")
    try:
        msg = FAR_MSG.replace(b"alice@sender.example", b"alice@example.org")
        send(a, ["bob@far.example"], msg=msg, sender="alice@example.org",
             port=a.port("sub"), login=("alice@example.org", "alice-pw"))
        check_arrival(a, b, msg, tls=True)
    finally:
        a.stop()
        b.stop()


for t in (test_gateway_to_posternd, test_gateway_to_posternd_encrypt,
          test_submission_to_posternd):
    if len(sys.argv) > 1 and t.__name__ not in sys.argv[1:]:
        continue
    R.run(t)
R.finish()
