"""Shared helpers for the integration tests: run posternd on loopback,
make certificates, count results.

Every test prints one line per case and closes with "N passed, M failed";
the exit status is 0 only when nothing failed.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

TOP_BUILDDIR = os.environ.get("top_builddir", os.getcwd())
TOP_SRCDIR = os.environ.get("top_srcdir", TOP_BUILDDIR)
POSTERND = os.path.join(TOP_BUILDDIR, "core", "posternd")
# posternd built with --enable-sanitizers links libasan: memory peaks
# include ASan's quarantine of freed blocks.
SANITIZED = "libasan" in subprocess.run(["ldd", POSTERND],
                                        capture_output=True,
                                        text=True).stdout
TEST_MODULES = os.path.join(TOP_BUILDDIR, "tests", "modules", ".libs")
HELLO_SO = os.path.join(TOP_BUILDDIR, "sdk", "examples", "hello", ".libs",
                        "hello.so")
POSTERNCTL = os.path.join(TOP_BUILDDIR, "posternctl", "posternctl")


def module_so(directory, name):
    """Path of a module built in this tree, e.g. module_so("auth",
    "auth_passwd")."""
    return os.path.join(TOP_BUILDDIR, "modules", directory, ".libs",
                        name + ".so")


AUTH_PASSWD_SO = module_so("auth", "auth_passwd")
STORAGE_MAILDIR_SO = module_so("storage", "storage_maildir")


def free_port():
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer(threading.Thread):
    """A scripted TCP server on 127.0.0.1 (a milter, a policy service):
    each connection is handed to serve(conn) on its own thread.  Daemon
    threads: they end with the test."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def serve(self, conn):
        raise NotImplementedError


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1/localhost, made by openssl."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True)
    return cert, key


class Daemon:
    """posternd -f running a configuration; stopped by stop() or on exit."""

    def __init__(self, conf_path, extra_args=(), env=None):
        """`env`: variables added to the daemon's environment."""
        self.conf_path = conf_path
        self.log_path = conf_path + ".log"
        self.log = open(self.log_path, "w")
        self.terminated = False
        self.proc = subprocess.Popen(
            [POSTERND, "-f", "-c", conf_path, *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, **env) if env else None)

    def wait_listening(self, port, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("posternd exited early:\n" +
                                     self.read_log())
            for host in ("127.0.0.1", "::1"):  # a listener on either
                try:
                    with socket.create_connection((host, port), 0.5):
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError("posternd did not listen on %d:\n%s" %
                             (port, self.read_log()))

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def signal(self, signo):
        if signo == signal.SIGTERM:
            self.terminated = True
        self.proc.send_signal(signo)

    def stop(self, timeout=20.0):
        if self.proc.poll() is None:
            # A second SIGTERM means "now": the master kills the
            # workers.  After a test's own SIGTERM, only wait.
            if not self.terminated:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def workers(self):
        """pids of the worker processes (children of the master)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid",
                              str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


def process_tree(root):
    """root and every process below it (workers, their isolation
    processes), from /proc."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def posternd(*args, timeout=30, split=False):
    """Runs posternd to completion; returns (status, stdout+stderr), or
    (status, stdout, stderr) with split=True."""
    p = subprocess.run([POSTERND, *args], capture_output=True, text=True,
                       timeout=timeout)
    if split:
        return p.returncode, p.stdout, p.stderr
    return p.returncode, p.stdout + p.stderr


def posternctl(*args, stdin=None, timeout=60):
    """Runs posternctl; returns (status, stdout, stderr).  `stdin` is
    text for its standard input (None: /dev/null)."""
    p = subprocess.run([POSTERNCTL, *args], capture_output=True, text=True,
                       input=stdin if stdin is not None else "",
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class LineClient:
    """A line-protocol client over a socket (plain or TLS)."""

    def __init__(self, port, timeout=10.0, source=None):
        """`source`: the local address to connect from (e.g. 127.0.0.9,
        to be another client as far as per-address limits go)."""
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def close(self):
        self.sock.close()


class Skip(Exception):
    """Raised by a case that cannot run here (a tool is missing); the
    message says why.  The case is reported as SKIP, neither passed nor
    failed."""


DNSMASQ = "/usr/sbin/dnsmasq"


class Dnsmasq:
    """dnsmasq on a loopback port, authoritative for .test (and for the
    reverse names of `records`; anything else is REFUSED), serving
    dnsmasq options such as "--txt-record=x.test,v=spf1 -all".  Raises
    Skip when dnsmasq is not installed.  `servers` is the value for the
    core's dns_servers setting."""

    def __init__(self, directory, *records):
        if not os.access(DNSMASQ, os.X_OK):
            raise Skip("dnsmasq is not installed (Debian dnsmasq-base)")
        self.port = free_port()
        self.servers = "127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--port=%d" % self.port,
             "--listen-address=127.0.0.1", "--bind-interfaces",
             "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--pid-file=%s/dnsmasq-%d.pid" % (directory, self.port),
             "--local=/test/"] +
            (["--user=nobody"] if os.geteuid() == 0 else []) +
            list(records),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError("dnsmasq did not start on port %d" % self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Runner:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []  # repeated by finish(), after any server log
        self.tmp = tempfile.mkdtemp(prefix="postern-%s." % name)

    def run(self, fn):
        label = fn.__name__.replace("_", " ")
        t0 = time.monotonic()
        try:
            fn(self)
        except Skip as why:
            self.skipped += 1
            print("SKIP: %s: %s" % (label, why), flush=True)
        except Exception:  # report and go on with the next case
            self.failed += 1
            report = "FAIL: %s\n%s" % (label, traceback.format_exc())
            self.failures.append(report)
            print(report, flush=True)
        else:
            self.passed += 1
            # the time, so that slow cases can be found in the logs
            print("PASS: %s (%.1f s)" % (label, time.monotonic() - t0),
                  flush=True)

    def finish(self):
        if self.skipped:
            print("%d skipped (a tool they need is missing)" % self.skipped)
        if self.failures:  # again, so the end of a long log shows them
            print("==== failed cases of %s" % self.name)
            for report in self.failures:
                print(report, end="")
        print("%d passed, %d failed" % (self.passed, self.failed))
        if self.failed == 0:
            subprocess.run(["rm", "-rf", self.tmp])
        sys.exit(1 if self.failed else 0)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path
