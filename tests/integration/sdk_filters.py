#!/usr/bin/env python3
"""The two example filters as a vendor gets them: postern is installed
into a scratch DESTDIR, each example is copied from the installed guide
(share/doc/postern-sdk/examples) and built there with its Makefile and
pkg-config alone, then both are loaded beside the smtp module:
filter_sync (refuses listed recipients, tags a Subject, adds a field) and
filter_policy (asks a Postfix-style policy service at RCPT, here a
scripted one on loopback, and answers when it replies; a silent service
hits the timeout and fails open, a client that leaves cancels)."""
import os
import shutil
import subprocess
import time

from smtp_common import ehlo_session, send_message, smtp_server, \
    stop_clean, strip_trace, wait_messages
from testlib import LoopbackServer, Runner, TOP_BUILDDIR, TOP_SRCDIR

R = Runner("sdk_filters")
MAKE = os.environ.get("MAKE", "make")


def build_examples():
    dest = os.path.join(R.tmp, "dest")
    p = subprocess.run([MAKE, "-s", "-C", TOP_BUILDDIR, "install",
                        "DESTDIR=" + dest], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    pc = docs = None
    for root, dirs, files in os.walk(dest):
        if "postern-sdk.pc" in files:
            pc = root
        if root.endswith(os.path.join("doc", "postern-sdk")):
            docs = root
    assert pc and docs, "no postern-sdk.pc or doc/postern-sdk installed"
    assert os.path.exists(os.path.join(docs, "README.md"))
    env = dict(os.environ, PKG_CONFIG_PATH=pc, PKG_CONFIG_LIBDIR=pc,
               PKG_CONFIG_SYSROOT_DIR=dest)
    global FILTER_TEST, ENV
    FILTER_TEST = None
    for root, dirs, files in os.walk(dest):
        if "postern-filter-test" in files:
            FILTER_TEST = os.path.join(root, "postern-filter-test")
    assert FILTER_TEST, "postern-filter-test was not installed"
    ENV = env
    built = {}
    for name in ("filter_sync", "filter_policy"):
        src = os.path.join(docs, "examples", name)
        work = os.path.join(R.tmp, name)
        shutil.copytree(src, work)
        p = subprocess.run([MAKE, "-s", "CFLAGS=-O2 -Wall -Wextra -Werror",
                            name + ".so"], cwd=work, env=env,
                           capture_output=True, text=True)
        assert p.returncode == 0, (name, p.stdout, p.stderr)
        # Nothing came from the source tree.
        assert TOP_SRCDIR not in p.stdout + p.stderr
        built[name] = os.path.join(work, name + ".so")
    return built


class PolicyService(LoopbackServer):
    """A Postfix-style policy service: the answer depends on the
    recipient's local part."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def serve(self, conn):
        with conn:
            data = b""
            while b"\n\n" not in data:
                more = conn.recv(4096)
                if not more:
                    return
                data += more
            attrs = dict(line.split("=", 1) for line in
                         data.decode().split("\n") if "=" in line)
            self.requests.append(attrs)
            rcpt = attrs.get("recipient", "")
            if rcpt.startswith("policy-reject@"):
                action = "REJECT not on my watch"
            elif rcpt.startswith("policy-defer@"):
                action = "DEFER_IF_PERMIT greylisted, come back later"
            elif rcpt.startswith("policy-slow@"):
                time.sleep(3)
                return
            else:
                action = "PREPEND X-Policy: seen"
            conn.sendall(("action=%s\n\n" % action).encode())


BUILT = build_examples()
POLICY = PolicyService()
POLICY.start()
ALIASES = [(a + "@example.org", "alice@example.org") for a in
           ("spamtrap", "policy-reject", "policy-defer", "policy-slow")]
SRV = smtp_server(R, relay=False, aliases=ALIASES,
                  extra_modules=[BUILT["filter_sync"],
                                 BUILT["filter_policy"]],
                  extra_conf="""
filter_sync = { block_rcpts = [ "spamtrap@example.org" ];
                tag_word = "lottery"; tag = "[SPAM?]"; };
filter_policy = { address = "127.0.0.1"; port = %d; timeout = "1s";
                  on_failure = "continue"; };
""" % POLICY.port)
MX = SRV.port("mx")


def test_sync_filter(r):
    before = len(SRV.messages("alice@example.org"))
    c = ehlo_session(MX)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    code, text = c.cmd("RCPT TO:<spamtrap@example.org>")
    assert code == 550 and "5.7.1 recipient refused by policy" in text[0]
    # Compared as user@domain: case and +detail aside.
    code, text = c.cmd("RCPT TO:<SpamTrap+x@Example.org>")
    assert code == 550, (code, text)
    assert c.cmd("RCPT TO:<alice@example.org>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: win the lottery\r\n\r\nnow\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    got = strip_trace(wait_messages(SRV, "alice@example.org",
                                    before + 1)[-1])
    # PREPEND from the policy service went to the top.
    assert got == (b"X-Policy: seen\r\nSubject: [SPAM?] win the lottery\r\n"
                   b"X-Filter-Sync: checked\r\n\r\nnow\r\n"), got


def test_policy_verdicts(r):
    c = ehlo_session(MX)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    code, text = c.cmd("RCPT TO:<policy-reject@example.org>")
    assert code == 550 and "not on my watch" in text[0], (code, text)
    code, text = c.cmd("RCPT TO:<policy-defer@example.org>")
    assert code == 450 and "greylisted" in text[0], (code, text)
    c.cmd("QUIT")
    c.close()
    req = [q for q in POLICY.requests
           if q.get("recipient") == "policy-reject@example.org"][-1]
    assert req["request"] == "smtpd_access_policy"
    assert req["sender"] == "a@remote.example"
    assert req["client_address"] == "127.0.0.1"
    assert req["helo_name"] == "client.example"


def test_silent_service_fails_open(r):
    before = len(SRV.messages("alice@example.org"))
    c = ehlo_session(MX)
    t0 = time.time()
    code, _ = send_message(c, "Subject: s\r\n\r\nx\r\n",
                           rcpts=("policy-slow@example.org",))
    assert code == 250
    assert 0.8 < time.time() - t0 < 3, time.time() - t0
    c.close()
    assert len(wait_messages(SRV, "alice@example.org", before + 1)) == \
        before + 1
    assert "did not answer within 1000 ms; continue" in SRV.log()


def test_client_leaves_while_asking(r):
    for _ in range(3):
        c = ehlo_session(MX)
        assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
        c.send("RCPT TO:<policy-slow@example.org>\r\n")
        c.close()
    time.sleep(0.3)
    c = ehlo_session(MX)
    assert c.cmd("NOOP")[0] == 250
    c.close()


def test_harness_runs_example_script(r):
    """`make check` in the installed example: postern-filter-test runs
    filter_sync.so on its scripted session, no daemon, every expectation
    holding."""
    work = os.path.dirname(BUILT["filter_sync"])
    env = {k: v for k, v in ENV.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.run([MAKE, "-s", "--no-print-directory", "check",
                        "POSTERN_FILTER_TEST=" + FILTER_TEST], cwd=work,
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert ("smtp.rcpt <SpamTrap+tag@Example.ORG>: reject 550 5.7.1 "
            "recipient refused by policy") in out, out
    assert "  + header_change Subject[1]: [SPAM?] win the lottery" in out
    assert "\nok\n" in out and "FAILED" not in out, out


def test_harness_reports_a_broken_expectation(r):
    work = os.path.dirname(BUILT["filter_sync"])
    script = os.path.join(work, "broken.test")
    with open(script, "w") as f:
        f.write("mail <a@remote.example>\n"
                "rcpt <spamtrap@example.org>\n"
                "expect continue\n"
                "rcpt <alice@example.org>\n"
                "expect-log nothing like this\n")
    p = subprocess.run([FILTER_TEST, "-c", "filter_sync.conf", "-s", script,
                        "./filter_sync.so"], cwd=work, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert ("FAILED (line 3): expected continue, the verdict was reject"
            in p.stdout), p.stdout
    assert "FAILED (line 5): no line logged contains" in p.stdout
    # A script it cannot read is a usage error, not a failed test.
    with open(script, "w") as f:
        f.write("frobnicate\n")
    p = subprocess.run([FILTER_TEST, "-s", script, "./filter_sync.so"],
                       cwd=work, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown command 'frobnicate'" in \
        p.stderr, (p.returncode, p.stderr)


for t in (test_harness_runs_example_script,
          test_harness_reports_a_broken_expectation, test_sync_filter,
          test_policy_verdicts,
          test_silent_service_fails_open, test_client_leaves_while_asking):
    R.run(t)
if R.failed:
    print(SRV.log())


def test_server_stops_cleanly(r):
    stop_clean(SRV)


R.run(test_server_stops_cleanly)
R.finish()
