#!/usr/bin/env python3
"""The session layer (postern/session.h, ABI 1.9) from a module's side:
tests/modules/session_tiny serves a tiny protocol written on session.h
alone, and a Python socket client drives it.  Covers the command table,
the budgets, raw lines and octets, read-ahead with a held line, jobs
bound to the session (a job whose client left is told so, and the
handles close on a job after it), the idle and the shutdown goodbyes.
"""
import os
import signal
import shutil
import socket
import tempfile
import time

from testlib import (TEST_MODULES, Daemon, LineClient, Runner, free_port)

R = Runner("session_layer")
PORT = free_port()
# Written by the worker, which may run as nobody: outside R.tmp (0700).
HANDLES = tempfile.mkdtemp(prefix="postern-session-handles.")
os.chmod(HANDLES, 0o777)


def config(idle="1m"):
    return """# written by tests/integration/session_layer.py
modules = [ "session_tiny" ];
module_dir = "%s";
state_dir = "%s/state";
run_dir = "%s/run";
workers = 1;
user = "%s";
shutdown_timeout = "3s";
log_level = "debug";
session_tiny = {
  listen = ( { address = "127.0.0.1"; port = %d;
               junk_command_limit = 5; } );
  idle_timeout = "%s";
  max_errors = 3;
  handle_dir = "%s";
};
""" % (TEST_MODULES, R.tmp, R.tmp, "nobody" if os.geteuid() == 0 else "",
       PORT, idle, HANDLES)


MAIN = R.write("etc/postern.conf", config())
IDLE = R.write("idle/postern.conf", config(idle="300ms"))


def client():
    c = LineClient(PORT)
    assert c.line() == "* tiny ready"
    return c


def closed(c):
    """True when the server closed the connection (EOF)."""
    try:
        c.line()
    except (EOFError, ConnectionResetError):
        return True
    return False


def wait_for(d, text, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in d.read_log():
            return
        time.sleep(0.05)
    raise AssertionError("%r not logged:\n%s" % (text, d.read_log()))


def with_daemon(conf=MAIN):
    def wrap(fn):
        def run(r):
            d = Daemon(conf)
            try:
                d.wait_listening(PORT)
                fn(r, d)
            finally:
                status = d.stop()
                with open(d.log_path) as f:
                    assert status == 0, f.read()
        run.__name__ = fn.__name__
        return run
    return wrap


@with_daemon()
def test_commands_pipelined_answer_in_order(r, d):
    c = client()
    # More than max_commands_per_read (4) in one burst, with jobs in
    # between: every reply, in order.
    burst = b"".join(b"ECHO %d\r\n" % i for i in range(10))
    c.send(burst + b"SLOW 20\r\nECHO after\r\n" + burst)
    for i in range(10):
        assert c.line() == "+ %d" % i
    assert c.line() == "+ slept"
    assert c.line() == "+ after"
    for i in range(10):
        assert c.line() == "+ %d" % i
    c.send(b"QUIT\r\n")
    assert c.line() == "+ bye"
    assert closed(c)


@with_daemon()
def test_read_ahead_and_held_line(r, d):
    c = client()
    c.send(b"BATCH\r\nECHO a\r\nECHO b\r\nNOPE\r\nECHO c\r\n")
    assert c.line() == "+ batch 2"
    assert c.line() == "+ a"
    assert c.line() == "+ b"
    # The line read ahead that was no ECHO was handled next, in order.
    assert c.line() == "- unknown command"
    assert c.line() == "+ c"
    c.close()


@with_daemon()
def test_raw_octets_and_lines(r, d):
    c = client()
    body = bytes(range(256)) * 40  # binary, CR and LF included
    c.send(b"LIT %d\r\n" % len(body))
    c.send(body[:1000])
    time.sleep(0.1)
    c.send(body[1000:] + b"ECHO back to lines\r\n")
    assert c.line() == "+ %d octets, sum %d" % (len(body), sum(body))
    assert c.line() == "+ back to lines"
    c.send(b"DATA\r\nQUIT\r\nNOOP\r\n..x\r\n.\r\nECHO done\r\n")
    assert c.line() == "+ 3 lines"
    assert c.line() == "+ done"
    c.close()


def pattern(n):
    unit = b"0123456789abcdef\r\n"
    return (unit * (n // len(unit) + 1))[:n]


def read_exact(c, n):
    """n octets after what LineClient buffered (bounded by its timeout)."""
    while len(c.buf) < n:
        chunk = c.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("closed after %d of %d octets" % (len(c.buf), n))
        c.buf += chunk
    data, c.buf = c.buf[:n], c.buf[n:]
    return data


@with_daemon()
def test_stream_to_the_client(r, d):
    """host->stream_start (ABI 1.12) from a module: a literal of 3 MiB from
    a reader on job threads, pipelined commands answered after it in
    order; then a client that leaves in the middle of 48 MiB."""
    c = client()
    n = 3 * 1024 * 1024 + 5
    c.send(b"SEND %d\r\nECHO after\r\nSEND 7\r\n" % n)
    assert c.line() == "{%d}" % n
    assert read_exact(c, n) == pattern(n)
    assert c.line() == "+ sent"
    assert c.line() == "+ after"
    assert c.line() == "{7}"
    assert read_exact(c, 7) == pattern(7)
    assert c.line() == "+ sent"
    c.send(b"SEND 50000000\r\n")
    assert c.line() == "{50000000}"
    read_exact(c, 100000)
    c.close()
    # The session ends (its stream told, its hold and reference given
    # back) and the worker serves the next client.
    wait_for(d, "tiny: connection closed")
    c = client()
    c.send(b"ECHO still here\r\n")
    assert c.line() == "+ still here"
    c.close()


@with_daemon()
def test_error_budget_ends_the_session(r, d):
    c = client()
    c.send(b"NOPE\r\nSLOW x\r\n" + b"ECHO " + b"y" * 400 + b"\r\n")
    assert c.line() == "- unknown command"
    assert c.line() == "- unknown command"
    assert c.line() == "- bad line"
    assert c.line() == "- too many errors"
    assert closed(c)
    wait_for(d, "3 invalid commands: disconnecting")


@with_daemon()
def test_login_and_junk_budgets(r, d):
    c = client()
    c.send(b"LOGIN no\r\nLOGIN nope\r\nECHO never\r\n")
    assert c.line() == "- bad password"
    assert c.line() == "- bad password"
    assert c.line() == "- too many failed logins"
    assert closed(c)
    c = client()
    c.send(b"NOOP\r\n" * 5)
    for _ in range(5):
        assert c.line() == "+ ok"
    c.send(b"NOOP\r\n")
    assert c.line() == "- too much junk"
    assert closed(c)
    # A login gives the junk budget back.
    c = client()
    c.send(b"NOOP\r\n" * 4 + b"LOGIN secret\r\n" + b"NOOP\r\n" * 4)
    for _ in range(4):
        assert c.line() == "+ ok"
    assert c.line() == "+ welcome"
    for _ in range(4):
        assert c.line() == "+ ok"
    c.close()


@with_daemon()
def test_job_whose_client_left_is_told_and_handles_close(r, d):
    c = client()
    c.send(b"OPEN\r\n")
    assert c.line() == "+ open"
    names = os.listdir(HANDLES)
    assert len(names) == 1, names
    # The client leaves while a job runs: the job finishes, is told the
    # client has gone, and only then are the handles released (on a
    # job, not while one runs).
    c.send(b"SLOW 400\r\n")
    time.sleep(0.1)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    wait_for(d, "tiny: SLOW done: client gone")
    wait_for(d, "tiny: released")
    log = d.read_log()
    assert "client here" not in log, log
    assert "WHILE A JOB RAN" not in log, log
    assert log.index("tiny: SLOW done") < log.index("tiny: released"), log
    assert os.listdir(HANDLES) == [], os.listdir(HANDLES)


@with_daemon()
def test_handles_released_when_client_leaves_idle(r, d):
    c = client()
    c.send(b"OPEN\r\n")
    assert c.line() == "+ open"
    assert len(os.listdir(HANDLES)) == 1
    c.send(b"QUIT\r\n")
    assert c.line() == "+ bye"
    wait_for(d, "tiny: released")
    assert os.listdir(HANDLES) == []


@with_daemon(IDLE)
def test_idle_goodbye_waits_for_a_job(r, d):
    c = client()
    # A job longer than the idle timeout: no goodbye while it runs.
    c.send(b"SLOW 700\r\n")
    assert c.line() == "+ slept"
    t0 = time.time()
    assert c.line() == "- idle"
    assert time.time() - t0 < 3
    assert closed(c)


@with_daemon()
def test_shutdown_goodbye_after_the_step_in_flight(r, d):
    idle = client()
    busy = client()
    busy.send(b"SLOW 500\r\nECHO not read\r\n")
    time.sleep(0.1)
    d.signal(signal.SIGTERM)
    assert idle.line() == "- shutting down"
    assert busy.line() == "+ slept"
    assert busy.line() == "- shutting down"
    assert closed(busy)
    assert d.proc.wait(10) == 0, d.read_log()


for t in (test_commands_pipelined_answer_in_order,
          test_read_ahead_and_held_line,
          test_raw_octets_and_lines,
          test_stream_to_the_client,
          test_error_budget_ends_the_session,
          test_login_and_junk_budgets,
          test_job_whose_client_left_is_told_and_handles_close,
          test_handles_released_when_client_leaves_idle,
          test_idle_goodbye_waits_for_a_job,
          test_shutdown_goodbye_after_the_step_in_flight):
    R.run(t)
shutil.rmtree(HANDLES)
R.finish()
