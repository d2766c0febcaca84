#!/usr/bin/env python3
"""The relay's 8BITMIME downgrade (RFC 6152 section 3): an 8-bit
message (BODY=8BITMIME) relayed to a next hop that does not announce
8BITMIME arrives 7-bit, sent without BODY=, its 8-bit parts
quoted-printable and decoding to exactly the original text; a message
with 8-bit octets in a header cannot be converted and bounces with
5.6.3; an SMTPUTF8 message to a hop without SMTPUTF8 bounces with 5.6.7.
"""
import email
import email.policy
import sys
import time

from relay_common import (NextHop, relay_server, send as send_to,
                          strip_received, wait_log)
from testlib import Runner

R = Runner("relay_8bit")

TEXT = "Grüße aus Köln, naïve café\r\n=trailing space \r\n.dot\r\nend €\r\n"
PART = "Ünïcödé in a part\r\nsecond line ß\r\n"

PLAIN = ("From: alice@sender.example\r\nTo: bob@remote.example\r\n"
         "Subject: 8-bit text\r\nMessage-ID: <8a@sender.example>\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\n" + TEXT).encode()

MULTI = ("From: alice@sender.example\r\nTo: bob@remote.example\r\n"
         "Subject: 8-bit multipart\r\nMessage-ID: <8b@sender.example>\r\n"
         "MIME-Version: 1.0\r\n"
         'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
         "preamble\r\n--b1\r\n"
         "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
         "plain ascii part\r\n--b1\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\n" + PART +
         "--b1--\r\nepilogue\r\n").encode()

HEADER8 = ("From: alice@sender.example\r\nTo: bob@remote.example\r\n"
           "Subject: Grüße\r\n\r\nbody é\r\n").encode()


def route(port):
    return ('{ domain = "*"; via = "smtp:[127.0.0.1]:%d"; tls = "none"; }'
            % port)


def send(srv, msg, options=("BODY=8BITMIME",)):
    send_to(srv, ["bob@remote.example"], msg, mail_options=list(options))


def leaves(msg):
    """(content type, decoded text) of each leaf part."""
    return [(p.get_content_type(), p.get_payload(decode=True))
            for p in msg.walk() if not p.is_multipart()]


def check_7bit(t, original):
    assert "BODY=" not in t.params.upper(), t.params
    assert all(b < 128 and b != 0 for b in t.data), t.data
    got = email.message_from_bytes(strip_received(t.data),
                                   policy=email.policy.compat32)
    want = email.message_from_bytes(original, policy=email.policy.compat32)
    assert leaves(got) == leaves(want), (leaves(got), leaves(want))
    return got


def test_downgrade_to_7bit_hop(r):
    hop = NextHop(eightbit=False).start()
    srv = relay_server(r, route(hop.port), name="down")
    try:
        send(srv, PLAIN)
        send(srv, MULTI)
        txns = hop.wait(2)
        assert len(txns) == 2, srv.log()[-3000:]
        by = {int(b"Subject: 8-bit multipart" in t.data): t for t in txns}
        got = check_7bit(by[0], PLAIN)
        assert got["Content-Transfer-Encoding"] == "quoted-printable", \
            by[0].data
        assert got.get_payload(decode=True).decode() == TEXT
        got = check_7bit(by[1], MULTI)
        parts = got.get_payload()
        assert parts[0].get("Content-Transfer-Encoding") is None
        assert parts[1]["Content-Transfer-Encoding"] == \
            "quoted-printable", by[1].data
        # The CRLF before a boundary line is the boundary's (RFC 2046).
        assert parts[1].get_payload(decode=True).decode() == PART[:-2]
        # The headers and the 7-bit part are as they were.
        assert strip_received(by[1].data).startswith(MULTI[:MULTI.index(
            b"Content-Transfer-Encoding: 8bit")]), by[1].data[:600]
        wait_log(srv, r"status=sent", count=2)
    finally:
        srv.stop()
        hop.stop()


def test_8bit_hop_gets_it_unchanged(r):
    hop = NextHop(eightbit=True).start()
    srv = relay_server(r, route(hop.port), name="same")
    try:
        send(srv, PLAIN)
        txns = hop.wait(1)
        assert len(txns) == 1, srv.log()[-3000:]
        assert "BODY=8BITMIME" in txns[0].params, txns[0].params
        assert strip_received(txns[0].data) == PLAIN, txns[0].data
    finally:
        srv.stop()
        hop.stop()


def test_7bit_form_past_size_bounces(r):
    # 1,200 octets fit the hop's SIZE of 2,000; their quoted-printable
    # form (=C3=A9 for each "é") does not.
    msg = PLAIN.split(b"\r\n\r\n")[0] + b"\r\n\r\n" + \
        ("é" * 30 + "\r\n").encode() * 20
    hop = NextHop(eightbit=False, size=2000).start()
    srv = relay_server(r, route(hop.port), name="size")
    try:
        send(srv, msg)
        wait_log(srv, r"to=<bob@remote.example>, .*dsn=5\.3\.4, "
                 r"status=bounced \(for host .* which does not support "
                 r"8BITMIME: 8BITMIME downgrade: the 7-bit form exceeds "
                 r"2000 octets")
        assert not [t for t in hop.txns
                    if "bob@remote.example" in t.rcpts], hop.txns
    finally:
        srv.stop()
        hop.stop()


def test_8bit_header_bounces_5_6_3(r):
    hop = NextHop(eightbit=False).start()
    srv = relay_server(r, route(hop.port), name="hdr")
    try:
        send(srv, HEADER8)
        wait_log(srv, r"to=<bob@remote.example>, .*dsn=5\.6\.3, "
                 r"status=bounced \(host .* does not support 8BITMIME "
                 r"and the message cannot be made 7-bit")
        time.sleep(1)
        assert not [t for t in hop.txns
                    if "bob@remote.example" in t.rcpts], hop.txns
    finally:
        srv.stop()
        hop.stop()


def test_smtputf8_bounces_5_6_7(r):
    hop = NextHop(smtputf8=False).start()
    srv = relay_server(r, route(hop.port), name="utf8")
    try:
        send(srv, PLAIN, options=("BODY=8BITMIME", "SMTPUTF8"))
        wait_log(srv, r"to=<bob@remote.example>, .*dsn=5\.6\.7, "
                 r"status=bounced")
    finally:
        srv.stop()
        hop.stop()


for t in (test_downgrade_to_7bit_hop, test_8bit_hop_gets_it_unchanged,
          test_7bit_form_past_size_bounces, test_8bit_header_bounces_5_6_3, test_smtputf8_bounces_5_6_7):
    if len(sys.argv) > 1 and t.__name__ not in sys.argv[1:]:
        continue
    R.run(t)
R.finish()
