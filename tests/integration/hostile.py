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
