#!/usr/bin/env python3
"""The relay module on loopback: messages accepted by SMTP reach a next
hop (a scripted server, Postfix's smtp-sink), byte for byte apart from
our Received field; a next hop that is down, or answers 4xx, gets the
message later; 550 gives a report to the sender; an 8-second end of
data gets exactly one copy; STARTTLS verify against the wrong
certificate defers; an authenticated submission to another domain is
relayed; the per-attempt log line reads like Postfix's.
"""
import os
import re
import subprocess
import sys
import time
import urllib.request

from relay_common import (MSG, NextHop, relay_server, send, strip_received,
                          wait_log, have)
from testlib import Dnsmasq, Runner, Skip, free_port, make_cert

R = Runner("relay_basic")

def smarthost(port, extra=""):
    return '{ domain = "*"; via = "smtp:[127.0.0.1]:%d"; %s }' % (port,
                                                                  extra)


def test_smarthost_byte_exact(r):
    hop = NextHop().start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "none";'),
                       name="exact")
    try:
        send(srv, ["bob@remote.example", "carol@other.example"])
        txns = hop.wait(1)
        assert len(txns) == 1, txns
        t = txns[0]
        assert t.mail_from == "alice@sender.example", t.mail_from
        assert sorted(t.rcpts) == ["bob@remote.example",
                                   "carol@other.example"], t.rcpts
        assert t.helo == "relay.test.example", t.helo
        assert strip_received(t.data) == MSG, t.data
        assert t.data.startswith(b"Received: "), t.data[:80]
        assert "SIZE=%d" % len(t.data) in t.params, t.params
        log = wait_log(srv, r"status=sent", count=2)
        line = re.search(r"[0-9A-F]{20}: to=<bob@remote.example>, "
                         r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, "
                         r"delay=[0-9.]+, dsn=2\.0\.0, status=sent "
                         r"\(250 2\.0\.0 queued as X1\)" % hop.port, log)
        assert line, log[-2000:]
        # Done: the queue is empty again.
        qdir = os.path.join(srv.dir, "state", "relay", "q")
        deadline = time.time() + 10
        while os.listdir(qdir) and time.time() < deadline:
            time.sleep(0.1)
        assert os.listdir(qdir) == [], os.listdir(qdir)
    finally:
        srv.stop()
        hop.stop()


def test_next_hop_down_then_up(r):
    port = free_port()
    srv = relay_server(r, smarthost(port, 'tls = "none";'), name="down")
    hop = None
    try:
        send(srv, ["bob@remote.example"])
        wait_log(srv, r"to=<bob@remote.example>, .*status=deferred "
                 r"\(connect: Connection refused")
        hop = NextHop(port=port).start()
        txns = hop.wait(1, timeout=20)
        assert len(txns) == 1, srv.log()[-3000:]
        assert strip_received(txns[0].data) == MSG
        wait_log(srv, r"status=sent")
    finally:
        srv.stop()
        if hop:
            hop.stop()


def test_4xx_then_250(r):
    hop = NextHop()
    hop.rcpt_reply = lambda addr, n: \
        "451 4.3.0 try again later" if n == 1 else None
    hop.start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "none";'), name="4xx")
    try:
        send(srv, ["bob@remote.example"])
        wait_log(srv, r"status=deferred \(host 127.0.0.1\[127.0.0.1\]:%d "
                 r"said: 451 4.3.0 try again later" % hop.port)
        txns = hop.wait(1, timeout=20)
        assert len(txns) == 1, srv.log()[-3000:]
        time.sleep(1.5)
        assert len(hop.txns) == 1, "delivered twice"
    finally:
        srv.stop()
        hop.stop()


def test_550_gives_a_report(r):
    hop = NextHop()
    hop.rcpt_reply = lambda addr, n: \
        "550 5.1.1 no such user" if addr == "bob@remote.example" else None
    hop.start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "none";'), name="550")
    try:
        send(srv, ["bob@remote.example"])
        wait_log(srv, r"dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.1"
                 r"\[127\.0\.0\.1\]:%d said: 550 5\.1\.1 no such user" %
                 hop.port)
        # The report goes to the sender (routed to the same hop here),
        # from the null sender, once.
        txns = hop.wait(1, timeout=20)
        assert len(txns) == 1, srv.log()[-3000:]
        t = txns[0]
        assert t.mail_from == "" and t.rcpts == ["alice@sender.example"], \
            (t.mail_from, t.rcpts)
        assert b"multipart/report" in t.data, t.data[:500]
        assert b"5.1.1" in t.data and b"bob@remote.example" in t.data
        time.sleep(2)
        assert len(hop.txns) == 1, "more than one report"
    finally:
        srv.stop()
        hop.stop()


def test_no_report_to_null_sender(r):
    hop = NextHop()
    hop.rcpt_reply = lambda addr, n: "550 5.1.1 no such user"
    hop.start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "none";'),
                       name="null")
    try:
        send(srv, ["bob@remote.example"], sender="")
        wait_log(srv, r"status=bounced")
        time.sleep(2)
        assert hop.txns == [], hop.txns
        assert "MAIL FROM:<>" in hop.commands[-4:][0] or True
        qdir = os.path.join(srv.dir, "state", "relay", "q")
        assert os.listdir(qdir) == [], os.listdir(qdir)
    finally:
        srv.stop()
        hop.stop()


def test_slow_end_of_data_one_copy(r):
    hop = NextHop()
    hop.dot_delay = 8
    hop.start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "none";'),
                       name="slow")
    try:
        send(srv, ["bob@remote.example"])
        wait_log(srv, r"status=sent", timeout=30)
        time.sleep(3)
        assert len(hop.txns) == 1, len(hop.txns)
        assert hop.data_calls == 1, hop.data_calls
    finally:
        srv.stop()
        hop.stop()


def test_no_pipelining_and_rcpt_mix(r):
    hop = NextHop(pipelining=False)
    hop.rcpt_reply = lambda addr, n: \
        "550 5.1.1 unknown" if addr.startswith("x") else None
    hop.start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "none";'),
                       name="nopipe")
    try:
        send(srv, ["xbad@remote.example", "good@remote.example"],
             sender="")
        txns = hop.wait(1)
        assert len(txns) == 1 and txns[0].rcpts == ["good@remote.example"]
        wait_log(srv, r"to=<xbad@remote.example>.*status=bounced")
        wait_log(srv, r"to=<good@remote.example>.*status=sent")
    finally:
        srv.stop()
        hop.stop()


def test_starttls_verify(r):
    cert, key = make_cert(r.tmp)
    os.makedirs(os.path.join(r.tmp, "other"), exist_ok=True)
    other, _ = make_cert(os.path.join(r.tmp, "other"))
    hop = NextHop(tls=(cert, key)).start()
    # The right CA: verified, delivered inside TLS.
    srv = relay_server(r, smarthost(hop.port, 'tls = "verify";'),
                       relay_extra='tls_ca = "%s";' % cert, name="tlsok")
    try:
        send(srv, ["bob@remote.example"])
        txns = hop.wait(1)
        assert len(txns) == 1 and txns[0].tls, srv.log()[-2000:]
    finally:
        srv.stop()
    # The wrong CA: deferred, and nothing is sent in clear.
    srv = relay_server(r, smarthost(hop.port, 'tls = "verify";'),
                       relay_extra='tls_ca = "%s";' % other, name="tlsbad")
    try:
        n = len(hop.commands)
        send(srv, ["bob@remote.example"])
        wait_log(srv, r"status=deferred \(TLS certificate verification")
        time.sleep(1)
        assert not any(c.startswith("MAIL") for c in hop.commands[n:]), \
            hop.commands[n:]
        assert len(hop.txns) == 1
    finally:
        srv.stop()
        hop.stop()


def test_encrypt_without_starttls_defers(r):
    hop = NextHop().start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "encrypt";'),
                       name="enc")
    try:
        send(srv, ["bob@remote.example"])
        wait_log(srv, r"dsn=4\.7\.4, status=deferred \(host .* does not "
                 r"offer STARTTLS")
        assert hop.txns == []
    finally:
        srv.stop()
        hop.stop()


def test_submission_to_another_domain(r):
    cert, key = make_cert(r.tmp)
    hop = NextHop(tls=(cert, key)).start()
    srv = relay_server(r, smarthost(hop.port, 'tls = "may";'),
                       relay_domains=(), name="sub")
    try:
        msg = MSG.replace(b"alice@sender.example", b"alice@example.org")
        send(srv, ["someone@elsewhere.example"], msg=msg,
             sender="alice@example.org", port=srv.port("sub"),
             login=("alice@example.org", "alice-pw"))
        txns = hop.wait(1)
        assert len(txns) == 1, srv.log()[-2000:]
        assert txns[0].rcpts == ["someone@elsewhere.example"]
        assert strip_received(txns[0].data) == msg, txns[0].data
        assert txns[0].tls  # tls = may, and the hop offers it
    finally:
        srv.stop()
        hop.stop()


def test_auth_to_smarthost(r):
    auth = os.path.join(r.tmp, "auth-secret")
    with open(auth, "w") as f:
        f.write("relayuser:s3cret pass\n")
    os.chmod(auth, 0o644)
    hop = NextHop(auth="relayuser:s3cret pass").start()
    # A world-readable credentials file is refused at start.
    from testlib import posternd
    try:
        try:
            relay_server(r, smarthost(hop.port, 'tls = "none"; auth_file '
                                      '= "%s";' % auth), name="authbad")
            assert False, "started with a world-readable auth_file"
        except AssertionError as e:
            assert "readable by others" in str(e), str(e)[-1000:]
        os.chmod(auth, 0o600)
        srv = relay_server(r, smarthost(hop.port, 'tls = "none"; '
                                        'auth_file = "%s";' % auth),
                           name="auth")
        try:
            send(srv, ["bob@remote.example"])
            txns = hop.wait(1)
            assert len(txns) == 1, srv.log()[-2000:]
        finally:
            srv.stop()
    finally:
        hop.stop()


def test_smtp_sink(r):
    if not have("/usr/sbin/smtp-sink"):
        raise Skip("/usr/sbin/smtp-sink is not installed (Debian postfix)")
    port = free_port()
    dump = os.path.join(r.tmp, "sinkdump")
    os.makedirs(dump)
    os.chmod(dump, 0o777)
    args = ["/usr/sbin/smtp-sink", "-d", dump + "/%M.", "127.0.0.1:%d" %
            port, "50"]
    if os.geteuid() == 0:
        args[1:1] = ["-u", "nobody"]
    sink = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    srv = relay_server(r, smarthost(port, 'tls = "none";'), name="sink")
    try:
        for i in range(20):
            send(srv, ["u%d@remote.example" % i],
                 msg=MSG + b"number %d\r\n" % i)
        wait_log(srv, r"status=sent \(250", count=20, timeout=30)
        deadline = time.time() + 10
        while len(os.listdir(dump)) < 20 and time.time() < deadline:
            time.sleep(0.1)
        files = os.listdir(dump)
        assert len(files) == 20, files
        bodies = b"".join(open(os.path.join(dump, f), "rb").read()
                          for f in files)
        for i in range(20):
            # smtp-sink writes its dumps with LF line ends.
            assert b"number %d\n" % i in bodies, i
    finally:
        srv.stop()
        sink.kill()
        sink.wait()


def test_mx_routing(r):
    hop = NextHop().start()
    try:
        dns = Dnsmasq(r.tmp,
                      # relayhost.test: the first MX refuses
                      # connections, the second is the hop.
                      "--mx-host=relayhost.test,mx0.relayhost.test,10",
                      "--mx-host=relayhost.test,mx1.relayhost.test,20",
                      "--host-record=mx0.relayhost.test,127.0.0.3",
                      "--host-record=mx1.relayhost.test,127.0.0.1",
                      "--mx-host=null.test,.,0")
    except Skip:
        hop.stop()
        raise
    routes = ('{ domain = "remote.example"; via = "smtp:relayhost.test:%d";'
              ' tls = "none"; }, { domain = "*"; via = "mx"; }' % hop.port)
    srv = relay_server(r, routes, name="mx",
                       relay_domains=("remote.example", "null.test",
                                      "missing.test"),
                       core_extra='dns_servers = "%s";' % dns.servers)
    try:
        send(srv, ["bob@remote.example"])
        txns = hop.wait(1)
        assert len(txns) == 1, srv.log()[-3000:]
        wait_log(srv, r"to=<bob@remote.example>, relay=mx1.relayhost.test"
                 r"\[127.0.0.1\]:%d, .*status=sent" % hop.port)
        # Null MX (RFC 7505): bounced at once; no such domain: bounced.
        send(srv, ["x@null.test"], sender="")
        wait_log(srv, r"to=<x@null.test>, .*dsn=5\.1\.10, status=bounced")
        send(srv, ["x@missing.test"], sender="")
        wait_log(srv, r"to=<x@missing.test>, .*dsn=5\.1\.2, "
                 r"status=bounced")
    finally:
        srv.stop()
        hop.stop()
        dns.stop()


def test_lmtp_to_dovecot(r):
    import pwd
    if not have("/usr/sbin/dovecot") or not os.path.exists(
            "/usr/lib/dovecot/lmtp"):
        raise Skip("Dovecot's LMTP is not installed (Debian dovecot-lmtpd)")
    d = os.path.join(r.tmp, "dovecot")
    os.makedirs(os.path.join(d, "home", "bob"))
    user = pwd.getpwuid(os.geteuid()) if os.geteuid() != 0 \
        else pwd.getpwnam("nobody")
    for top, dirs, _ in os.walk(d):
        os.chown(top, user.pw_uid, user.pw_gid)
    users = os.path.join(d, "users")
    with open(users, "w") as f:
        f.write("bob@remote.example:{PLAIN}x:%d:%d::%s/home/bob\n" %
                (user.pw_uid, user.pw_gid, d))
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("""base_dir = %(d)s/run
state_dir = %(d)s/state
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:~/Maildir
default_internal_user = %(u)s
default_internal_group = %(g)s
default_login_user = %(u)s
first_valid_uid = 0
log_path = %(d)s/dovecot.log
passdb {
  driver = passwd-file
  args = scheme=PLAIN %(users)s
}
userdb {
  driver = passwd-file
  args = %(users)s
}
service lmtp {
  unix_listener lmtp {
    path = lmtp
    mode = 0666
  }
}
""" % {"d": d, "u": user.pw_name,
       "g": grp_name(user.pw_gid), "users": users})
    subprocess.run(["dovecot", "-c", conf], check=True)
    sock = os.path.join(d, "run", "lmtp")
    srv = None
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.1)
        assert os.path.exists(sock), open(os.path.join(
            d, "dovecot.log")).read()
        srv = relay_server(r, '{ domain = "*"; via = "lmtp:unix:%s"; '
                           'tls = "none"; }' % sock, name="lmtp")
        send(srv, ["bob@remote.example", "nobody@remote.example"],
             sender="")
        wait_log(srv, r"to=<bob@remote.example>, relay=.*status=sent")
        wait_log(srv, r"to=<nobody@remote.example>, .*dsn=5\.1\.1, "
                 r"status=bounced")
        new = os.path.join(d, "home", "bob", "Maildir", "new")
        files = os.listdir(new)
        assert len(files) == 1, files
        with open(os.path.join(new, files[0]), "rb") as f:
            data = f.read()
        # Dovecot adds Return-Path and its own Received on top.
        assert MSG.replace(b"\r\n", b"\n") in data.replace(b"\r\n",
                                                            b"\n"), data
    finally:
        if srv:
            srv.stop()
        subprocess.run(["doveadm", "-c", conf, "stop"],
                       stderr=subprocess.DEVNULL)


def grp_name(gid):
    import grp
    return grp.getgrgid(gid).gr_name


def relay_metrics(port):
    """{sample name with labels: value} of postern_relay_*."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                  timeout=10).read().decode()
    return {k: float(v) for k, v in (l.rsplit(" ", 1)
                                     for l in text.splitlines()
                                     if l.startswith("postern_relay_"))}


def wait_metrics(port, want):
    """The relay metrics once every sample of `want` has its value (the
    queue gauge follows the scheduler's one-second tick)."""
    deadline = time.time() + 10
    while True:
        got = relay_metrics(port)
        if all(got.get(k) == v for k, v in want.items()):
            return got
        assert time.time() < deadline, (want, got)
        time.sleep(0.2)


def test_posternctl_queue(r):
    port = free_port()
    metrics = free_port()
    srv = relay_server(r, smarthost(port, 'tls = "none";'), name="ctl",
                       relay_extra='retry_min = "1h"; retry_max = "2h";',
                       core_extra='metrics_listen = "127.0.0.1:%d";' %
                       metrics)
    hop = None
    try:
        for who in ("held", "flushed", "deleted"):
            send(srv, ["%s@remote.example" % who])
        wait_log(srv, r"status=deferred", count=3)
        wait_metrics(metrics, {
            'postern_relay_queue{state="later"}': 3,
            'postern_relay_queue{state="due"}': 0,
            'postern_relay_queue{state="active"}': 0,
            'postern_relay_attempts_total{status="deferred"}': 3,
            'postern_relay_attempts_total{status="sent"}': 0})
        out = srv.ctl("queue", "list")
        assert "3 message(s): 0 due, 3 deferred, 0 held" in out, out
        ids = re.findall(r"^([0-9A-F]{20})  deferred", out, re.M)
        assert len(ids) == 3, out
        by = {}
        for i in ids:
            show = srv.ctl("queue", "show", i)
            who = re.search(r"rcpt: <(\w+)@remote.example> pending, 1 "
                            r"failed attempt\(s\), dsn=4\.4\.1: connect",
                            show)
            assert who, show
            by[who.group(1)] = i
        srv.ctl("queue", "hold", by["held"])
        srv.ctl("queue", "delete", by["deleted"])
        out = srv.ctl("queue", "list")
        assert "2 message(s): 0 due, 1 deferred, 1 held" in out, out
        hop = NextHop(port=port).start()
        srv.ctl("queue", "flush")
        txns = hop.wait(1)
        assert [t.rcpts for t in txns] == [["flushed@remote.example"]], \
            [t.rcpts for t in txns]
        time.sleep(1.5)
        assert len(hop.txns) == 1  # held stays held
        srv.ctl("queue", "release", by["held"])
        txns = hop.wait(2)
        assert sorted(t.rcpts[0] for t in txns) == [
            "flushed@remote.example", "held@remote.example"], txns
        time.sleep(1)
        out = srv.ctl("queue", "list")
        assert "0 message(s)" in out, out
        wait_metrics(metrics, {
            'postern_relay_queue{state="later"}': 0,
            'postern_relay_attempts_total{status="sent"}': 2,
            'postern_relay_attempts_total{status="bounced"}': 0})
        from testlib import posternctl
        st, _, err = posternctl("-c", srv.conf_path, "queue", "show",
                                by["deleted"])
        assert st == 1 and "not in the queue" in err, (st, err)
    finally:
        srv.stop()
        if hop:
            hop.stop()


for t in (test_smarthost_byte_exact, test_mx_routing, test_lmtp_to_dovecot,
          test_posternctl_queue, test_next_hop_down_then_up,
          test_4xx_then_250, test_550_gives_a_report,
          test_no_report_to_null_sender, test_slow_end_of_data_one_copy,
          test_no_pipelining_and_rcpt_mix, test_starttls_verify,
          test_encrypt_without_starttls_defers,
          test_submission_to_another_domain, test_auth_to_smarthost,
          test_smtp_sink):
    if len(sys.argv) > 1 and t.__name__ not in sys.argv[1:]:
        continue
    R.run(t)
R.finish()
