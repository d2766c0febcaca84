#!/usr/bin/env python3
"""The Prometheus endpoint (metrics_listen), served by the master: real
SMTP, IMAP and POP3 traffic (a failed login among it) moves the counters
it answers, whose text is parsed strictly here (format 0.0.4); posternctl
stats prints the same samples; other paths are 404, an oversized request
is refused, and idle or slow clients never keep a scrape from answering.
Non-loopback addresses are refused unless metrics_allow_remote is set."""
import imaplib
import os
import poplib
import re
import smtplib
import socket
import subprocess
import time

from mailserver import MailServer
from smtp_common import wait_messages
from testlib import Runner, free_port, posternctl, posternd

R = Runner("metrics")
USER, PASSWORD = "alice@example.org", "alice-pw"
METRICS = free_port()

SRV = MailServer(R, ["smtp", "imap", "pop3"], conf="""
metrics_listen = "127.0.0.1:%(metrics)d";
smtp = {
  hostname = "mx.test.example";
  listen = ( { name = "mx"; port = %(mx)d; mode = "mx"; } );
};
imap = { listen = ( { name = "imap"; address = "127.0.0.1";
                      port = %(imap)d; } ); };
pop3 = { listen = ( { name = "pop3"; address = "127.0.0.1";
                      port = %(pop3)d; } ); };
""".replace("%(metrics)d", str(METRICS)), ports=["mx", "imap", "pop3"])
SRV.add_user(USER, PASSWORD)
SRV.start()
SRV.daemon.wait_listening(METRICS)

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"(%s)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*=%s"
                    r"(?:,[a-zA-Z_][a-zA-Z0-9_]*=%s)*)?)\})? "
                    r"(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|\+Inf|-Inf)$"
                    % (NAME, LABEL_VALUE, LABEL_VALUE))


def parse(text):
    """Prometheus text format 0.0.4, strictly: every sample after its
    family's # HELP and # TYPE, counters named *_total, no family twice,
    no sample twice, the text ends with a newline.  {(name, labels):
    value} with labels a sorted tuple of (name, value)."""
    assert text.endswith("\n"), text[-80:]
    samples, helps, types, seen_families = {}, {}, {}, []
    for line in text[:-1].split("\n"):
        assert line, "an empty line in the exposition"
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and help_, line
            assert name not in helps, "HELP twice: " + name
            helps[name] = help_
            seen_families.append(name)
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert helps.get(name) is not None and name not in types, line
            assert kind in ("counter", "gauge"), line
            if kind == "counter":
                assert name.endswith("_total"), line
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name = m.group(1)
        assert name.startswith("postern_"), line
        assert name == seen_families[-1] and name in types, \
            "sample outside its family: " + line
        labels = []
        if m.group(2):
            for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)=(%s)'
                                  % LABEL_VALUE, m.group(2)):
                labels.append((lm.group(1), lm.group(2)[1:-1]))
        key = (name, tuple(sorted(labels)))
        assert key not in samples, "sample twice: " + line
        value = float(m.group(3))
        assert value >= 0, line
        samples[key] = value
    return samples


def http(request, port=METRICS):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b


def scrape():
    resp = http(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.0 200 OK", lines
    assert "Content-Type: text/plain; version=0.0.4; charset=utf-8" \
        in lines, lines
    assert "Content-Length: %d" % len(body) in lines, lines
    return parse(body.decode())


def get(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def settled():
    """A scrape once the start's probes of the ports (wait_listening)
    have all been accepted: the counters unchanged for a second (a
    sanitizer build on a busy machine can take longer than a tenth of
    one to accept the last probe)."""
    def conns(samples):
        return {k: v for k, v in samples.items()
                if k[0] == "postern_connections_total"}
    last, same = scrape(), 0
    for _ in range(150):
        time.sleep(0.1)
        now = scrape()
        same = same + 1 if conns(now) == conns(last) else 0
        if same == 10:
            return now
        last = now
    raise AssertionError("the counters never settle")


def test_counters_move_with_real_traffic(R):
    before = settled()
    with smtplib.SMTP("127.0.0.1", SRV.port("mx"), timeout=10) as s:
        s.sendmail("carol@remote.example", [USER],
                   b"Subject: metrics\r\n\r\nbody\r\n")
    wait_messages(SRV, USER, 1)
    m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
    try:
        m.login(USER, "wrong password")
        raise AssertionError("a wrong password logged in")
    except imaplib.IMAP4.error:
        pass
    m.logout()
    m = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
    m.login(USER, PASSWORD)
    m.logout()
    p = poplib.POP3("127.0.0.1", SRV.port("pop3"), timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()
    after = scrape()

    def moved(name, **labels):
        return get(after, name, **labels) - get(before, name, **labels)
    assert moved("postern_connections_total", listener="mx") == 1
    assert moved("postern_connections_total", listener="imap") == 2
    assert moved("postern_connections_total", listener="pop3") == 1
    assert moved("postern_logins_total", result="success") == 2
    assert moved("postern_logins_total", result="failure") == 1
    assert moved("postern_logins_total", result="tempfail") == 0
    assert moved("postern_smtp_transactions_total", reply="2xx") == 1
    assert moved("postern_smtp_transactions_total", reply="5xx") == 0
    assert moved("postern_local_deliveries_total", result="delivered") == 1
    assert moved("postern_jobs_total", lane="auth") >= 3
    assert get(after, "postern_job_queue", lane="general") == 0
    assert get(after, "postern_worker_rss_bytes", worker="0") > 1 << 20


def test_sessions_gauge_follows_open_connections(R):
    def level(proto):
        return get(scrape(), "postern_sessions", protocol=proto)

    def wait_level(want):
        deadline = time.time() + 10
        while time.time() < deadline:
            now = {p: level(p) for p in want}
            if now == want:
                return
            time.sleep(0.05)
        raise AssertionError("sessions %r, wanted %r" % (now, want))
    wait_level({"smtp": 0, "imap": 0, "pop3": 0})
    s = smtplib.SMTP("127.0.0.1", SRV.port("mx"), timeout=10)
    i1 = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
    i2 = imaplib.IMAP4("127.0.0.1", SRV.port("imap"), timeout=10)
    p = poplib.POP3("127.0.0.1", SRV.port("pop3"), timeout=10)
    wait_level({"smtp": 1, "imap": 2, "pop3": 1})
    i1.logout()
    p.quit()
    wait_level({"smtp": 1, "imap": 1, "pop3": 0})
    s.quit()
    i2.logout()
    wait_level({"smtp": 0, "imap": 0, "pop3": 0})


def test_posternctl_stats(R):
    status, out, err = posternctl("-c", SRV.conf_path, "stats")
    assert status == 0, (status, out, err)
    lines = out.splitlines()
    assert lines and not any(l.startswith("#") for l in lines), out
    # the same samples as the endpoint's, without HELP and TYPE
    assert any(l.startswith('postern_logins_total{result="failure"} ')
               for l in lines), out
    text = http(b"GET /metrics HTTP/1.0\r\n\r\n").partition(
        b"\r\n\r\n")[2].decode()
    names = {l.split(" ")[0].split("{")[0] for l in lines}
    assert names == {l.split(" ")[0].split("{")[0]
                     for l in text.splitlines() if l[:1] != "#"}, out


def test_other_paths_methods_and_sizes(R):
    assert http(b"GET / HTTP/1.0\r\n\r\n").startswith(
        b"HTTP/1.0 404 "), "/"
    assert http(b"GET /metricsx HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.0 404 ")
    assert http(b"POST /metrics HTTP/1.0\r\n\r\n").startswith(
        b"HTTP/1.0 405 ")
    assert http(b"garbage\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    big = b"GET /metrics HTTP/1.0\r\nX: " + b"a" * 5000 + b"\r\n\r\n"
    try:
        resp = http(big)
    except ConnectionResetError:
        resp = b"HTTP/1.0 431 (reset after)"
    assert resp.startswith(b"HTTP/1.0 431 "), resp[:80]
    scrape()


def test_slow_and_idle_clients_never_block_a_scrape(R):
    idle = [socket.create_connection(("127.0.0.1", METRICS), timeout=10)
            for _ in range(40)]
    slow = socket.create_connection(("127.0.0.1", METRICS), timeout=10)
    slow.sendall(b"GET /met")  # slowloris: never finishes its request
    try:
        t0 = time.monotonic()
        scrape()
        assert time.monotonic() - t0 < 2, "a scrape waited behind idlers"
        # the idlers were dropped to make room, or time out: none waits
        # forever for its turn
        idle[0].settimeout(10)
        assert idle[0].recv(10) == b""
    finally:
        for s in idle + [slow]:
            s.close()
    scrape()


def test_remote_address_needs_allow_remote(R):
    for addr, extra, ok in (("192.0.2.1:9105", "", False),
                            ("0.0.0.0:9105", "", False),
                            ("[::]:9105", "", False),
                            ("127.0.0.1", "", False),
                            ("127.0.0.1:70000", "", False),
                            ("[::1]:9105", "", True),
                            ("0.0.0.0:9105",
                             "metrics_allow_remote = true;", True)):
        conf = R.write("remote/postern.conf", 'modules = [];\n'
                       'state_dir = "%s";\nmetrics_listen = "%s";\n%s\n'
                       % (R.tmp, addr, extra))
        status, out, err = posternd("-t", "-c", conf, split=True)
        assert (status == 0) == ok, (addr, status, out, err)
        if not ok:
            assert "metrics_listen" in err, err


def test_documented(R):
    status, out, err = posternd("-n", "-a", "-v", "-c", SRV.conf_path, split=True)
    assert status == 0, err
    assert "metrics_listen" in out and "metrics_allow_remote" in out, out


for t in (test_counters_move_with_real_traffic,
          test_sessions_gauge_follows_open_connections, test_posternctl_stats,
          test_other_paths_methods_and_sizes,
          test_slow_and_idle_clients_never_block_a_scrape,
          test_remote_address_needs_allow_remote, test_documented):
    R.run(t)
rc = SRV.stop()
if rc != 0:
    R.failed += 1
    print("FAIL: posternd exited with %s\n%s" % (rc, SRV.log()))
R.finish()
