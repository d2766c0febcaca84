"""What the attack tests (issue 10) measure: a worker's peak memory, and how
long a well-behaved neighbour waits while an attacker works.

    from hostile import WorkerMemory, Neighbour
    mem = WorkerMemory(srv.daemon)          # resets the peak (VmHWM)
    with Neighbour(lambda: imap_noop_round_trip()) as n:
        ... attack, bounded in time and bytes ...
    mem.assert_growth_below(64 << 20)       # peak growth over the baseline
    n.assert_worst_below(1.0)               # seconds, every probe

The peak is VmHWM from /proc/PID/status, reset by writing 5 to
/proc/PID/clear_refs (Linux >= 4.0), so it catches a burst that was freed
again before the test looked.  Every worker of the daemon is watched.

MIME_BOMBS are the messages built to make a MIME parser spend memory or
time out of proportion to their size (hostile_mime.py and the benchmark
tests/bench/hostile_bench.py deliver them).
"""
import select
import socket
import threading
import time


def _status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def reset_peak(pid):
    """Makes VmHWM start again from the current RSS."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


class WorkerMemory:
    """Peak RSS of each worker of `daemon` (a testlib.Daemon), from now."""

    def __init__(self, daemon):
        self.pids = daemon.workers()
        assert self.pids, "the daemon has no workers"
        self.base = {}
        for pid in self.pids:
            reset_peak(pid)
            self.base[pid] = _status_kib(pid, "VmRSS")

    def growth(self):
        """The largest growth of any worker's peak over its baseline, in
        bytes.  A worker that died counts as failure."""
        worst = 0
        for pid in self.pids:
            try:
                peak = _status_kib(pid, "VmHWM")
            except FileNotFoundError:
                raise AssertionError("worker %d died during the attack" %
                                     pid)
            worst = max(worst, (peak - self.base[pid]) * 1024)
        return worst

    def assert_growth_below(self, limit):
        g = self.growth()
        assert g < limit, ("a worker's peak grew by %.1f MiB (limit %.1f "
                           "MiB)" % (g / 1048576, limit / 1048576))
        return g


class Neighbour:
    """Runs `probe()` (one round trip of a logged-in, well-behaved client)
    every `interval` seconds in a thread until the block ends, and keeps
    the worst time one probe took.  A probe that raises is a failure."""

    def __init__(self, probe, interval=0.1):
        self.probe = probe
        self.interval = interval
        self.worst = 0.0
        self.count = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                self.probe()
            except Exception as e:  # reported by assert_worst_below
                self.error = e
                return
            took = time.monotonic() - t
            self.worst = max(self.worst, took)
            self.count += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)
        return False

    def assert_worst_below(self, seconds):
        assert self.error is None, "the neighbour failed: %r" % self.error
        assert self.count > 0, "the neighbour never completed a probe"
        assert self.worst < seconds, ("the neighbour waited %.2f s (limit "
                                      "%.2f s)" % (self.worst, seconds))
        return self.worst


def flood(sock, line, seconds, max_bytes):
    """Sends `line` over and over on `sock` without reading, until
    `seconds` passed, `max_bytes` went out or the server closed.  Returns
    (bytes sent, closed)."""
    sock.setblocking(False)
    chunk = line * max(1, 65536 // len(line))
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and sent < max_bytes:
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            select.select([], [sock], [], 0.05)
        except OSError:  # reset, broken pipe: the server closed
            return sent, True
    return sent, False


def drain(sock, seconds=8.0, keep=4096):
    """Reads what the server sent on `sock` until it closes or `seconds`
    pass.  Returns (the last `keep` bytes, closed)."""
    sock.setblocking(True)
    sock.settimeout(0.5)
    tail = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            return tail, True
        if not data:
            return tail, True
        tail = (tail + data)[-keep:]
    return tail, False


def argon2_cost(srv, memlimit, opslimit):
    """A MailServer hashes cheaply (8M, 1 pass) to keep tests fast; a
    login flood needs a real cost.  Before its users are added."""
    with open(srv.conf_path) as f:
        text = f.read()
    text = text.replace('argon2_opslimit = 1;',
                        'argon2_opslimit = %d;' % opslimit)
    text = text.replace('argon2_memlimit = "8M";',
                        'argon2_memlimit = "%s";' % memlimit)
    with open(srv.conf_path, "w") as f:
        f.write(text)


# ---- messages built against MIME parsers --------------------------------

def folded(name, unit, size):
    """A header field of about `size` octets of `unit`, folded as a
    mailer folds (before 78 columns)."""
    out, line = [name + ":"], len(name) + 1
    total = 0
    while total < size:
        if line + len(unit) > 76:
            out.append("\r\n")
            line = 0
        out.append(" " + unit)
        line += len(unit) + 1
        total += len(unit) + 1
    return "".join(out) + "\r\n"


def envelope_bomb(size):
    return folded("To", '""', size) + folded("Cc", '"",', size)


def params_bomb(count, size, boundary=None):
    """Content-Type with `count` quoted parameters of `size` octets and
    an RFC 2231 parameter in as many sections."""
    ct = "Content-Type: multipart/mixed; boundary=%s" % boundary \
        if boundary else "Content-Type: text/plain; charset=us-ascii"
    for i in range(count):
        ct += ';\r\n p%d="%s"' % (i, "v" * size)
    for i in range(count):
        ct += ";\r\n title*%d*=%s%s" % (
            i, "utf-8''" if i == 0 else "", "%41" * (size // 3))
    return ct + "\r\n"


HEAD = ("From: attacker@example.net\r\nSubject: %s\r\n"
        "Date: Mon, 4 Mar 2024 10:00:00 +0100\r\nMIME-Version: 1.0\r\n")


def msg_to_tokens():
    return (HEAD % "quoted tokens" + envelope_bomb(64 * 1024) +
            "\r\nbody\r\n").encode()


def msg_params():
    return (HEAD % "parameters" + params_bomb(100, 1500) +
            "\r\nbody\r\n").encode()


def msg_attached():
    """Twenty message/rfc822 parts, each with the envelope and parameter
    bombs in its header (BODYSTRUCTURE shows each one's envelope)."""
    inner = (HEAD % "inner" + envelope_bomb(16 * 1024) +
             params_bomb(50, 600) + "\r\ninner body\r\n")
    parts = "".join("--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner
                    for _ in range(20))
    return (HEAD % "attached" +
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts +
            "--b--\r\n").encode()


def msg_deep():
    """Multiparts nested 300 deep (the parser stops at 64)."""
    depth = 300
    text = "Content-Type: text/plain\r\n\r\nleaf\r\n"
    for d in range(depth - 1, -1, -1):
        text = ("Content-Type: multipart/mixed; boundary=d%d\r\n\r\n"
                "--d%d\r\n%s--d%d--\r\n" % (d, d, text, d))
    return (HEAD % "deep" + text).encode()


def msg_many_parts():
    """30,000 small parts, each with parameters (the parser keeps
    10,000)."""
    parts = "".join('--b\r\nContent-Type: text/plain; name="%0100d"; '
                    "a*0=x; a*1=y\r\n\r\nx\r\n" % i for i in range(30000))
    return (HEAD % "many parts" +
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts +
            "--b--\r\n").encode()


MIME_BOMBS = [msg_to_tokens, msg_params, msg_attached, msg_deep,
              msg_many_parts]
