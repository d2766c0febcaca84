#!/usr/bin/env python3
"""filter_milter against real milters on loopback: a chain of three, in
order: one that is down (default_action accept), tests/milter/test_milter
(built on Debian's libmilter; it rejects, tempfails, rewrites headers,
replaces the body, adds a recipient, changes the sender, discards,
quarantines and stalls on request), and Debian's opendkim, which signs
mail from example.org; the signature is checked with dkimpy (Debian's
python3-dkim) against the public key opendkim-genkey made."""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

from smtp_common import ehlo_session, send_message, smtp_server, \
    stop_clean, strip_trace, wait_messages
from testlib import POSTERND, LoopbackServer, Runner, Skip, TOP_BUILDDIR, free_port

R = Runner("filter_milter")
TEST_MILTER = os.path.join(TOP_BUILDDIR, "tests", "milter", "test_milter")
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
GENKEY = shutil.which("opendkim-genkey") or "/usr/sbin/opendkim-genkey"


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start(argv, log):
    return subprocess.Popen(argv, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)


HAVE_MILTER = os.path.exists(TEST_MILTER)
HAVE_OPENDKIM = os.path.exists(OPENDKIM) and os.path.exists(GENKEY)
procs = []
milter_log = os.path.join(R.tmp, "test_milter.log")
milters = ['{ name = "down"; socket = "inet:127.0.0.1:%d"; '
           'default_action = "accept"; connect_timeout = "2s"; }'
           % free_port()]
if HAVE_MILTER:
    mport = free_port()
    procs.append(start([TEST_MILTER, "inet:%d@127.0.0.1" % mport],
                       milter_log))
    assert wait_port(mport), "test_milter did not start"
    milters.append('{ name = "test"; socket = "inet:127.0.0.1:%d"; '
                   'content_timeout = "2s"; }' % mport)
if HAVE_OPENDKIM:
    dk = os.path.join(R.tmp, "dkim")
    os.makedirs(dk)
    subprocess.run([GENKEY, "-D", dk, "-s", "test", "-d", "example.org"],
                   check=True)
    dport = free_port()
    conf = R.write("dkim/opendkim.conf", """Syslog no
Socket inet:%d@127.0.0.1
Domain example.org
Selector test
KeyFile %s/test.private
Mode s
Canonicalization relaxed/simple
RequireSafeKeys false
Background no
InternalHosts 127.0.0.1
PidFile %s/opendkim.pid
""" % (dport, dk, dk))
    procs.append(start([OPENDKIM, "-f", "-x", conf],
                       os.path.join(dk, "opendkim.log")))
    assert wait_port(dport), "opendkim did not start"
    milters.append('{ name = "opendkim"; socket = "inet:127.0.0.1:%d"; '
                   'default_action = "accept"; }' % dport)

SRV = smtp_server(R, relay=False, extra_modules=["filter_milter"],
                  aliases=[("reject-me@example.org", "alice@example.org")],
                  extra_conf="filter_milter = { milters = ( %s ); };"
                  % ", ".join(milters))
MX = SRV.port("mx")


def need_milter():
    if not HAVE_MILTER:
        raise Skip("tests/milter/test_milter was not built: configure "
                   "found no libmilter (Debian: libmilter-dev)")


def session():
    return ehlo_session(MX)


send = send_message


def milter_said():
    with open(milter_log) as f:
        return f.read()


def test_envelope_verdicts(r):
    need_milter()
    c = session()
    code, text = c.cmd("MAIL FROM:<tempfail@remote.example>")
    assert code == 451, (code, text)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    code, text = c.cmd("RCPT TO:<reject-me@example.org>")
    assert code == 550 and "5.7.1 test milter: recipient refused" in \
        text[0], (code, text)
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    assert c.cmd("RSET")[0] == 250
    c.cmd("QUIT")
    c.close()
    time.sleep(0.3)
    said = milter_said()
    for line in ("connect 127.0.0.1", "hostname [127.0.0.1]",
                 "helo client.example", "mail <tempfail@remote.example>",
                 "rcpt <reject-me@example.org>", "abort", "close"):
        assert line + "\n" in said, (line, said)


def test_message_changes(r):
    need_milter()
    alice = len(SRV.messages("alice@example.org"))
    bob = len(SRV.messages("bob@example.org"))
    c = session()
    code, text = send(c, "Subject: hello\r\nX-Test-Action: rewrite\r\n"
                         "From: a@remote.example\r\n\r\nthe body\r\n")
    assert code == 250, (code, text)
    c.close()
    msgs = wait_messages(SRV, "alice@example.org", alice + 1)
    got = msgs[-1]
    assert got.startswith(b"Return-Path: <changed@remote.example>"), got
    assert strip_trace(got) == (
        b"X-Top: first\r\nSubject: [milter] hello\r\n"
        b"From: a@remote.example\r\nX-Milter: yes\r\n\r\nthe body\r\n"), got
    assert len(wait_messages(SRV, "bob@example.org", bob + 1)) == bob + 1
    said = milter_said()
    for line in ("header Subject", "header X-Test-Action", "eoh",
                 "body 10", "eom rewrite"):
        assert line + "\n" in said, (line, said)
    # The transaction's id, which the session logs and the client's
    # 250 names.
    ids = re.findall(r"macro i ([0-9A-F]{20})\n", said)
    assert ids and re.search(r"smtp: %s: from=" % ids[-1], SRV.log()), \
        said


def test_body_replaced(r):
    need_milter()
    before = len(SRV.messages("alice@example.org"))
    c = session()
    code, _ = send(c, "Subject: b\r\nX-Test-Action: replbody\r\n"
                   "From: a@remote.example\r\n\r\n" +
                   "original line\r\n" * 10000)
    assert code == 250
    c.close()
    msgs = wait_messages(SRV, "alice@example.org", before + 1)
    assert strip_trace(msgs[-1]) == (
        b"Subject: b\r\nX-Test-Action: replbody\r\n"
        b"From: a@remote.example\r\n\r\n"
        b"replaced by milter\r\n"), msgs[-1][-200:]
    # 160,000 octets of body went over in pieces libmilter takes.
    assert "body 65535\n" in milter_said()


def test_reject_discard_quarantine(r):
    need_milter()
    before = len(SRV.messages("alice@example.org"))
    c = session()
    code, text = send(c, "Subject: r\r\nX-Test-Action: reject\r\n\r\nx\r\n")
    assert code == 554 and "5.7.0 test milter: refused" in text[0], text
    code, _ = send(c, "Subject: d\r\nX-Test-Action: discard\r\n\r\nx\r\n")
    assert code == 250
    code, _ = send(c, "Subject: q\r\nX-Test-Action: quarantine\r\n\r\n"
                      "x\r\n")
    assert code == 250
    c.cmd("QUIT")
    c.close()
    q = wait_messages(SRV, "alice@example.org", 1, timeout=5) and \
        SRV.messages("alice@example.org", "Quarantine")
    deadline = time.time() + 5
    while not q and time.time() < deadline:
        time.sleep(0.05)
        q = SRV.messages("alice@example.org", "Quarantine")
    assert q and b"Subject: q" in q[-1], q
    assert len(SRV.messages("alice@example.org")) == before


def test_stalled_milter_gets_default_action(r):
    """content_timeout 2s, default_action tempfail: 451, and the next
    session talks to the milter afresh."""
    need_milter()
    c = session()
    t0 = time.time()
    code, text = send(c, "Subject: s\r\nX-Test-Action: sleep\r\n\r\nx\r\n")
    assert code == 451, (code, text)
    assert time.time() - t0 < 4.5
    c.close()
    before = len(SRV.messages("alice@example.org"))
    c = session()
    code, _ = send(c, "Subject: after\r\n\r\nx\r\n")
    assert code == 250
    c.close()
    assert len(wait_messages(SRV, "alice@example.org", before + 1)) == \
        before + 1
    assert re.search(r"filter_milter: test .*no answer in time", SRV.log())


def test_client_leaves_at_end_of_data(r):
    """The milter is still thinking when the client leaves after its
    final dot: nothing is delivered (no 250 was sent)."""
    need_milter()
    before = len(SRV.messages("alice@example.org"))
    c = session()
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: gone\r\nX-Test-Action: sleep\r\n\r\nx\r\n.\r\n")
    time.sleep(0.3)
    c.close()
    time.sleep(3.0)
    assert len(SRV.messages("alice@example.org")) == before


def test_milter_down_is_skipped(r):
    """The first milter listens nowhere: default_action accept lets mail
    through, and the log says why."""
    before = len(SRV.messages("bob@example.org"))
    c = session()
    code, _ = send(c, "Subject: down\r\n\r\nx\r\n",
                   rcpts=("bob@example.org",))
    assert code == 250
    c.close()
    assert len(wait_messages(SRV, "bob@example.org", before + 1)) == \
        before + 1
    assert re.search(r"filter_milter: down .*default_action accept",
                     SRV.log()), SRV.log()[-3000:]


def dkim_module():
    try:
        import dkim
    except ImportError:
        # Debian's python3-dkim, when python3 here is not Debian's own.
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import dkim
        except ImportError:
            raise Skip("dkimpy missing (Debian: python3-dkim)")
    return dkim


def test_opendkim_signs(r):
    if not HAVE_OPENDKIM:
        raise Skip("opendkim missing (Debian: opendkim, opendkim-tools)")
    dkim = dkim_module()
    before = len(SRV.messages("bob@example.org"))
    c = session()
    code, _ = send(c, "From: Alice <alice@example.org>\r\n"
                      "To: bob@example.org\r\nSubject: signed\r\n"
                      "Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
                      "Message-ID: <dkim-test@example.org>\r\n\r\n"
                      "a signed body\r\n", sender="alice@example.org",
                   rcpts=("bob@example.org",))
    assert code == 250
    c.close()
    msg = wait_messages(SRV, "bob@example.org", before + 1)[-1]
    assert b"DKIM-Signature:" in msg, msg[:800]
    with open(os.path.join(R.tmp, "dkim", "test.txt")) as f:
        txt = "".join(re.findall(r'"([^"]*)"', f.read()))

    def dns(name, timeout=5):
        assert name in (b"test._domainkey.example.org.",
                        "test._domainkey.example.org."), name
        return txt.encode()
    assert dkim.verify(msg, dnsfunc=dns), msg[:1500]
    # A changed body no longer verifies: the check can fail.
    assert not dkim.verify(msg.replace(b"a signed body", b"a forged body"),
                           dnsfunc=dns)


# ---- a milter that breaks the rules --------------------------------------

class FakeMilter(LoopbackServer):
    """A scripted milter on loopback.  At end of message it does what the
    message's X-Fake field says: "flood" (5,000 added fields of 1 KB),
    "garbage" (a reply letter that does not exist), "huge" (a packet
    length of 2 GB), anything else: continue."""

    @staticmethod
    def packet(cmd, data=b""):
        return struct.pack(">I", len(data) + 1) + cmd + data

    def serve(self, conn):
        mode = b""
        buf = b""
        try:
            while True:
                while len(buf) < 4 or len(buf) < 4 + \
                        struct.unpack(">I", buf[:4])[0]:
                    more = conn.recv(65536)
                    if not more:
                        return
                    buf += more
                n = struct.unpack(">I", buf[:4])[0]
                cmd, data, buf = buf[4:5], buf[5:4 + n], buf[4 + n:]
                if cmd == b"O":
                    conn.sendall(self.packet(b"O", struct.pack(
                        ">III", 6, 0x1ff, 0)))
                elif cmd in (b"D", b"A"):
                    pass
                elif cmd == b"Q":
                    return
                elif cmd == b"L":
                    name, value = data.split(b"\0")[:2]
                    if name == b"X-Fake":
                        mode = value.strip()
                    conn.sendall(self.packet(b"c"))
                elif cmd == b"E":
                    if mode == b"flood":
                        hdr = self.packet(b"h", b"X-Flood\0" +
                                          b"v" * 1000 + b"\0")
                        conn.sendall(hdr * 5000)
                    elif mode == b"garbage":
                        conn.sendall(self.packet(b"Z", b"junk"))
                        continue
                    elif mode == b"huge":
                        conn.sendall(struct.pack(">I", 0x7fffffff) + b"c")
                        continue
                    conn.sendall(self.packet(b"c"))
                else:
                    conn.sendall(self.packet(b"c"))
        except OSError:
            return
        finally:
            conn.close()


FAKE = FakeMilter()
FAKE.start()
SRV2 = smtp_server(R, name="srv2", relay=False,
                   extra_modules=["filter_milter"],
                   extra_conf='filter_milter = { milters = ( { name = '
                   '"fake"; socket = "inet:127.0.0.1:%d"; } ); };'
                   % FAKE.port)


def send2(body):
    c = ehlo_session(SRV2.port("mx"))
    code, text = send(c, body)
    c.cmd("QUIT")
    c.close()
    return code, text


def test_flood_of_changes_is_cut(r):
    """5,000 added fields of 1 KB: the first 1,000 are taken, the rest
    refused and logged, and the message goes through."""
    before = len(SRV2.messages("alice@example.org"))
    code, _ = send2("Subject: f\r\nX-Fake: flood\r\n\r\nx\r\n")
    assert code == 250
    msg = wait_messages(SRV2, "alice@example.org", before + 1)[-1]
    n = msg.count(b"X-Flood: ")
    assert 900 <= n <= 1000, n
    assert "more than 1000 changes" in SRV2.log()


def test_broken_milter_gets_default_action(r):
    for mode in ("garbage", "huge"):
        code, text = send2("Subject: g\r\nX-Fake: %s\r\n\r\nx\r\n"
                           % mode)
        assert code == 451, (mode, code, text)
    log = SRV2.log()
    assert "an unknown or misplaced reply" in log, log[-2000:]
    assert "a packet of a wrong size" in log, log[-2000:]
    # and the next session is served by a fresh connection
    before = len(SRV2.messages("alice@example.org"))
    assert send2("Subject: ok\r\n\r\nx\r\n")[0] == 250
    assert len(wait_messages(SRV2, "alice@example.org", before + 1)) == \
        before + 1


def test_chain_shown_by_posternd_n(r):
    """posternd -n lists each hook's handlers in running order, one per
    milter, named after it."""
    p = subprocess.run([POSTERND, "-n", "-c", SRV.conf_path],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    chain = p.stdout[p.stdout.index("#   smtp.eod "):]
    names = re.findall(r"#     \d+\. (filter_milter/\S+),", chain)
    want = ["filter_milter/down"]
    if HAVE_MILTER:
        want.append("filter_milter/test")
    if HAVE_OPENDKIM:
        want.append("filter_milter/opendkim")
    assert names[:len(want)] == want, (names, chain[:800])


for t in (test_envelope_verdicts, test_message_changes, test_body_replaced,
          test_reject_discard_quarantine,
          test_stalled_milter_gets_default_action,
          test_client_leaves_at_end_of_data, test_milter_down_is_skipped,
          test_opendkim_signs, test_flood_of_changes_is_cut,
          test_broken_milter_gets_default_action,
          test_chain_shown_by_posternd_n):
    R.run(t)
if R.failed:
    print(SRV.log())
    if HAVE_MILTER:
        print(milter_said())


def test_server_stops_cleanly(r):
    stop_clean(SRV)
    stop_clean(SRV2)


R.run(test_server_stops_cleanly)
for p in procs:
    p.terminate()
    p.wait(timeout=10)
R.finish()
