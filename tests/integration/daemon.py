#!/usr/bin/env python3
"""posternd as a daemon: configuration checks, the master/worker model,
privilege drop, TLS, reload, respawn and graceful stop, driven by real
clients (Python sockets and ssl, openssl) on 127.0.0.1.

The example module sdk/examples/hello serves a small line protocol and
tests/modules/hello_filter filters it through the "hello.line" hook.
"""
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time

from testlib import (HELLO_SO, POSTERND, TEST_MODULES, TOP_BUILDDIR, Daemon,
                     LineClient, Runner, Skip, free_port, make_cert,
                     posternd)

R = Runner("daemon")
IS_ROOT = os.geteuid() == 0
PORT = free_port()
TLS_PORT = free_port()
CERT, KEY = make_cert(R.tmp)


def config(greeting="hello from postern", extra="", modules=None):
    if modules is None:
        modules = '"%s", "hello_filter"' % HELLO_SO
    return """# written by tests/integration/daemon.py
modules = [ %s ];
module_dir = "%s";
state_dir = "%s/state";
run_dir = "%s/run";
workers = 2;
user = "%s";
shutdown_timeout = "3s";
log_level = "debug";
hello = {
  greeting = "%s";
  listen = ( { address = "127.0.0.1"; port = %d; },
             { address = "127.0.0.1"; port = %d; tls = true; } );
  tls = { cert = "%s"; key = "%s"; };
};
%s""" % (modules, TEST_MODULES, R.tmp, R.tmp,
         "nobody" if IS_ROOT else "", greeting, PORT, TLS_PORT, CERT, KEY,
         extra)


MAIN = R.write("etc/postern.conf", config())


def test_version(r):
    status, out = posternd("-V")
    assert status == 0, out
    assert "posternd " in out and "module ABI 1." in out, out


def test_check_accepts_a_good_configuration(r):
    status, out = posternd("-t", "-c", MAIN)
    assert status == 0, out
    assert "configuration OK (2 module(s))" in out, out


def test_syntax_error_names_file_and_line(r):
    path = r.write("bad/syntax.conf", "workers = 2;\n\nuser = ;\n")
    status, out = posternd("-t", "-c", path)
    assert status == 1, out
    assert path + ":3:" in out, out


def test_unknown_key_in_confd_names_that_file(r):
    main = r.write("confd/postern.conf", config())
    extra = r.write("confd/conf.d/20-extra.conf",
                    "# comment\nwrokers = 4;\n")
    status, out = posternd("-t", "-c", main)
    assert status == 1, out
    assert "%s:2: key 'wrokers': unknown key" % extra in out, out


def test_wrong_type_and_range_are_reported_together(r):
    text = config().replace("workers = 2;", 'workers = "many";')
    text = text.replace("port = %d; }," % PORT, "port = 70000; },")
    path = r.write("types/postern.conf", text)
    status, out = posternd("-t", "-c", path)
    assert status == 1, out
    assert "key 'workers'" in out and "expected an integer" in out, out
    assert "hello.listen.[0].port" in out and "out of range" in out, out


def test_listener_check_of_a_protocol(r):
    """The session layer asks the protocol about each parsed listener
    (protocol->listen_check): smtp refuses implicit-TLS submission
    without tls = true, naming the element."""
    smtp_so = os.path.join(TOP_BUILDDIR, "modules", "smtp", ".libs",
                           "smtp.so")
    text = config(modules='"%s"' % smtp_so, extra="""
smtp = {
  listen = ( { port = %d; mode = "submissions"; } );
};
""" % free_port())
    path = r.write("listen_check/postern.conf", text)
    status, out = posternd("-t", "-c", path)
    assert status == 1, out
    assert "smtp.listen.[0]" in out, out
    assert "mode submissions needs tls = true" in out, out


def test_confd_overrides_main_file(r):
    main = r.write("override/postern.conf", config())
    r.write("override/conf.d/10-greeting.conf",
            'hello = { greeting = "from conf.d"; };\n')
    status, out = posternd("-n", "-c", main)
    assert status == 0, out
    assert 'greeting = "from conf.d"' in out, out
    assert "port = %d" % PORT in out, out  # the group merged, not replaced


def test_effective_config_has_defaults_and_parses_back(r):
    status, out, err = posternd("-n", "-a", "-c", MAIN, split=True)
    assert status == 0, err
    assert "shutdown_timeout" in out and "job_threads" in out, out
    assert "idle_timeout" in out, out  # the module's default
    again = r.write("effective/postern.conf", out)
    status, out2 = posternd("-t", "-c", again)
    assert status == 0, out2


def test_effective_config_without_a_flag_shows_what_differs(r):
    """posternd -n, like doveconf -n: only what the files set apart from
    the defaults (a group with nothing else set is left out); -a adds
    the rest.  What it prints is a configuration that gives the same."""
    status, out, err = posternd("-n", "-c", MAIN, split=True)
    assert status == 0, err
    assert "workers = 2;" in out and "shutdown_timeout" in out, out
    assert "job_threads" not in out and "auth_queue" not in out, out
    assert "hello = {" in out and 'greeting = "hello from postern"' in out
    again = r.write("differs/postern.conf", out)
    status, out2, err = posternd("-n", "-a", "-c", again, split=True)
    status, out1, err = posternd("-n", "-a", "-c", MAIN, split=True)
    assert out1 == out2, (out1, out2)


def test_missing_module_is_named(r):
    path = r.write("missing/postern.conf",
                   config(modules='"no_such_module"'))
    status, out = posternd("-t", "-c", path)
    assert status == 1, out
    assert "no_such_module" in out, out


def test_handler_on_undefined_hook_is_an_error(r):
    # hello_filter without hello: its dependency is missing.
    path = r.write("nohook/postern.conf", config(modules='"hello_filter"'))
    status, out = posternd("-t", "-c", path)
    assert status == 1, out
    assert "hello" in out, out


def test_refuses_root_workers(r):
    if not IS_ROOT:
        return  # only root can be refused root
    text = config().replace('user = "nobody";', 'user = "root";')
    path = r.write("root/postern.conf", text)
    status, out = posternd("-f", "-c", path, timeout=10)
    assert status == 1, out
    assert "refusing to run workers as root" in out, out


def test_serves_lines_jobs_and_hooks(r):
    d = Daemon(MAIN)
    try:
        d.wait_listening(PORT)
        c = LineClient(PORT)
        assert c.line() == "+OK hello from postern"
        c.send(b"ECHO one\r\n")
        assert c.line() == "+OK one"
        # Pipelined: the job and the filter pause the connection, and
        # the replies still come back in order.
        c.send(b"SLOW two\r\nECHO three\r\nECHO spam!\r\nECHO four\r\n")
        assert c.line() == "+OK two"
        assert c.line() == "+OK three"
        assert c.line() == "-ERR no spam here"
        assert c.line() == "+OK four"
        c.send(b"ECHO " + b"x" * 5000 + b"\r\nECHO after\r\n")
        assert c.line() == "-ERR line too long"
        assert c.line() == "+OK after"
        c.send(b"ECHO a\x00b\r\nNOPE\r\nQUIT\r\n")
        assert c.line() == "-ERR NUL byte in command"
        assert c.line() == "-ERR unknown command"
        assert c.line() == "+OK bye"
        c.close()
    finally:
        assert d.stop() == 0, d.read_log()


def test_workers_drop_privileges(r):
    d = Daemon(MAIN)
    try:
        d.wait_listening(PORT)
        pids = d.workers()
        assert len(pids) == 2, pids
        want = pwd.getpwnam("nobody").pw_uid if IS_ROOT else os.geteuid()
        # The master listens before it forks: a worker just forked has
        # not dropped yet.  Each must have within 10 s.
        deadline = time.time() + 10
        for pid in pids:
            while True:
                with open("/proc/%d/status" % pid) as f:
                    uids = [line.split()[1:] for line in f
                            if line.startswith("Uid:")][0]
                if all(int(u) == want for u in uids):
                    break
                assert time.time() < deadline, (pid, uids)
                time.sleep(0.05)
    finally:
        d.stop()


def tls_context():
    ctx = ssl.create_default_context(cafile=CERT)
    ctx.check_hostname = True
    return ctx


def test_starttls_discards_pipelined_plaintext(r):
    d = Daemon(MAIN)
    try:
        d.wait_listening(PORT)
        c = LineClient(PORT)
        assert c.line().startswith("+OK")
        # The injected command rides in the same packet as STARTTLS; it
        # must never be executed, neither before nor inside TLS.
        c.send(b"STARTTLS\r\nECHO injected\r\n")
        assert c.line() == "+OK begin TLS"
        assert c.buf == b""
        c.sock = tls_context().wrap_socket(c.sock,
                                           server_hostname="localhost")
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        c.send(b"ECHO inside\r\n")
        assert c.line() == "+OK inside"
        c.send(b"STARTTLS\r\n")
        assert c.line() == "-ERR TLS not available"
        c.close()
        assert "injected" not in d.read_log().replace(
            "ECHO injected", "")
    finally:
        d.stop()


def test_implicit_tls_and_old_protocols_refused(r):
    d = Daemon(MAIN)
    try:
        d.wait_listening(TLS_PORT)
        c = LineClient(TLS_PORT)
        c.sock = tls_context().wrap_socket(c.sock,
                                           server_hostname="localhost")
        assert c.line() == "+OK hello from postern"
        c.send(b"ECHO secure\r\n")
        assert c.line() == "+OK secure"
        c.close()
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            c = LineClient(TLS_PORT)
            old.wrap_socket(c.sock)
        except (ssl.SSLError, OSError):
            pass
        else:
            raise AssertionError("TLS 1.1 handshake succeeded")
    finally:
        d.stop()


def test_reload_applies_new_settings_without_dropping_clients(r):
    path = r.write("reload/postern.conf", config())
    d = Daemon(path)
    try:
        d.wait_listening(PORT)
        master = d.proc.pid
        old = LineClient(PORT)
        assert old.line() == "+OK hello from postern"
        r.write("reload/postern.conf", config(greeting="reloaded"))
        d.signal(signal.SIGHUP)
        reloaded = time.time()
        deadline = time.time() + 15
        greeting = None
        while time.time() < deadline:
            c = LineClient(PORT)
            greeting = c.line()
            c.close()
            if greeting == "+OK reloaded":
                break
            time.sleep(0.1)
        assert greeting == "+OK reloaded", d.read_log()
        assert d.proc.pid == master and d.proc.poll() is None
        # The connection from before the reload is still served by an
        # old worker (draining), until shutdown_timeout (3s) runs out.
        old.send(b"ECHO still here\r\n")
        assert old.line() == "+OK still here"
        assert old.line() == "-ERR server shutting down"
        assert time.time() - reloaded < 8
        # A broken configuration is refused and the server goes on.
        r.write("reload/postern.conf", config() + "\nbroken = ;\n")
        d.signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "reload refused" not in d.read_log():
            assert time.time() < deadline, d.read_log()
            time.sleep(0.1)
        c = LineClient(PORT)
        assert c.line() == "+OK reloaded"
        c.close()
        old.close()
    finally:
        assert d.stop() == 0, d.read_log()


def test_master_replaces_a_dead_worker(r):
    d = Daemon(MAIN)
    try:
        d.wait_listening(PORT)
        victim = d.workers()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 10
        while time.time() < deadline:
            pids = d.workers()
            if len(pids) == 2 and victim not in pids:
                break
            time.sleep(0.1)
        assert len(pids) == 2 and victim not in pids, d.read_log()
        for _ in range(10):  # both workers answer
            c = LineClient(PORT)
            assert c.line().startswith("+OK")
            c.close()
        assert "starting another" in d.read_log()
    finally:
        d.stop()


def test_graceful_stop_says_goodbye(r):
    d = Daemon(MAIN)
    c = None
    try:
        d.wait_listening(PORT)
        c = LineClient(PORT)
        assert c.line().startswith("+OK")
        t0 = time.time()
        d.signal(signal.SIGTERM)
        assert c.line() == "-ERR server shutting down"
        assert d.proc.wait(10) == 0, d.read_log()
        assert time.time() - t0 < 5
        assert "posternd stopped" in d.read_log()
    finally:
        if c is not None:
            c.close()
        d.stop()


# ---- under a service manager (systemd) ----------------------------------

def notifications(sock, want, timeout=15.0):
    """The datagrams a service manager would get, until one carries
    `want` (e.g. "READY=1"); each as a dict."""
    got = []
    sock.settimeout(timeout)
    while True:
        fields = dict(line.split("=", 1) for line in
                      sock.recv(4096).decode().split("\n") if "=" in line)
        got.append(fields)
        if want in ["%s=%s" % kv for kv in fields.items()]:
            return got


def test_service_manager_notifications(r):
    """sd_notify(3) through $NOTIFY_SOCKET, as a Type=notify unit needs:
    READY=1 with MAINPID once the listeners are bound; RELOADING=1 then
    READY=1 around a reload (same pid); STOPPING=1 on SIGTERM.  Both a
    path and an abstract socket name."""
    for name in (os.path.join(r.tmp, "notify.sock"),
                 "@postern-test-%d" % os.getpid()):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind("\0" + name[1:] if name.startswith("@") else name)
        if name.startswith("/"):
            os.chmod(name, 0o666)
        d = Daemon(MAIN, env={"NOTIFY_SOCKET": name})
        try:
            ready = notifications(s, "READY=1")[-1]
            assert ready["MAINPID"] == str(d.proc.pid), ready
            d.wait_listening(PORT)
            d.signal(signal.SIGHUP)
            got = notifications(s, "READY=1")
            assert "RELOADING" in got[0] and "MONOTONIC_USEC" in got[0], got
            assert got[-1]["MAINPID"] == str(d.proc.pid), got
            d.signal(signal.SIGTERM)
            got = notifications(s, "STOPPING=1")
            assert len(got) == 1, got
            assert d.proc.wait(15) == 0
        finally:
            d.stop()
            s.close()


def test_pid_file_in_foreground(r):
    """run_dir/posternd.pid holds the master's pid with -f too (systemd's
    PIDFile=), through a reload, and goes at a clean stop."""
    pidfile = os.path.join(R.tmp, "run", "posternd.pid")
    d = Daemon(MAIN)
    try:
        d.wait_listening(PORT)
        with open(pidfile) as f:
            assert f.read().strip() == str(d.proc.pid)
        d.signal(signal.SIGHUP)
        time.sleep(1)
        with open(pidfile) as f:
            assert f.read().strip() == str(d.proc.pid)
        d.signal(signal.SIGTERM)
        assert d.proc.wait(15) == 0
        assert not os.path.exists(pidfile)
    finally:
        d.stop()


def test_systemd_unit_verifies(r):
    """systemd/posternd.service, as built, passes systemd-analyze verify
    once pointed at this build's posternd."""
    unit = os.path.join(TOP_BUILDDIR, "systemd", "posternd.service")
    if shutil.which("systemd-analyze") is None:
        raise Skip("systemd-analyze is not installed (Debian systemd)")
    with open(unit) as f:
        text = f.read()
    assert "Type=notify" in text and "KillMode=mixed" in text
    installed = [line.split("=", 1)[1].split()[0]
                 for line in text.splitlines()
                 if line.startswith("ExecStart=")][0]
    path = r.write("unit/posternd.service",
                   text.replace(installed, os.path.abspath(POSTERND)))
    p = subprocess.run(["systemd-analyze", "verify", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


for case in [test_version,
             test_check_accepts_a_good_configuration,
             test_syntax_error_names_file_and_line,
             test_unknown_key_in_confd_names_that_file,
             test_wrong_type_and_range_are_reported_together,
             test_listener_check_of_a_protocol,
             test_confd_overrides_main_file,
             test_effective_config_has_defaults_and_parses_back,
             test_effective_config_without_a_flag_shows_what_differs,
             test_missing_module_is_named,
             test_handler_on_undefined_hook_is_an_error,
             test_refuses_root_workers,
             test_serves_lines_jobs_and_hooks,
             test_workers_drop_privileges,
             test_starttls_discards_pipelined_plaintext,
             test_implicit_tls_and_old_protocols_refused,
             test_reload_applies_new_settings_without_dropping_clients,
             test_master_replaces_a_dead_worker,
             test_graceful_stop_says_goodbye,
             test_service_manager_notifications,
             test_pid_file_in_foreground,
             test_systemd_unit_verifies]:
    R.run(case)
R.finish()
