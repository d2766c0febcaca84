#!/usr/bin/env python3
"""The work of tests/bench/hostile.sh: each attack class against posternd
(one worker) and the peers hostile.sh started, with a neighbour probing.

For each server and attack it prints the bytes the attacker got in, the
peak growth of the summed RSS of the server's processes (sampled every
20 ms over the whole process tree: Postfix and Dovecot serve clients in
processes of their own), the neighbour's worst round trip, and how the
attacker's session ended.  Figures only, never a verdict.

An attack class is a function attack_NAME(sock, seconds) that runs on a
connected socket (greeting read) and returns the bytes it sent; ATTACKS
maps it to the protocol it speaks and, optionally, a login to do first.
"""
import argparse
import imaplib
import os
import poplib
import pwd
import smtplib
import socket
import threading
import time

import hostile
from imaptest import deliver
from mailserver import MailServer
from testlib import process_tree

MAX_BYTES = 64 << 20
BODY = b"".join(b"%05d the quick brown fox jumps over the dog\r\n" % i
                for i in range(2000))
MESSAGE = (b"From: carol@example.net\r\nTo: bench@example.org\r\n"
           b"Subject: big\r\n\r\n" + BODY)
# The mailbox: MESSAGE first (FETCH 1), then the MIME bombs.
MESSAGES = [MESSAGE] + [build() for build in hostile.MIME_BOMBS]


class Runner:
    """What MailServer wants of its runner: a scratch directory."""

    def __init__(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="postern-hostile-bench.")


# ---- measuring ---------------------------------------------------------

def rss_each(pids):
    """{pid: (VmRSS KiB, name)} of those still alive."""
    out = {}
    for p in pids:
        name, rss = "?", None
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("Name:"):
                        name = line.split()[1]
                    elif line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
        except OSError:
            continue
        if rss is not None:
            out[p] = (rss, name)
    return out


def rss_kib(pids):
    return sum(r for r, _ in rss_each(pids).values())


class Sampler:
    """The peak of the summed RSS of `root`'s tree while the block runs,
    over what it was at the start; and the process that grew most on its
    own (a worker, or the one that hashes passwords: posternd's
    postern-isolate, Dovecot's auth worker), with its name."""

    def __init__(self, root):
        self.root = root
        self.peak = 0
        self.each_base = {}
        self.each_peak = {}
        self._stop = threading.Event()

    def _sample(self):
        each = rss_each(process_tree(self.root))
        self.peak = max(self.peak, sum(r for r, _ in each.values()))
        for pid, (rss, name) in each.items():
            old = self.each_peak.get(pid, (0, name))[0]
            self.each_peak[pid] = (max(old, rss), name)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.02)

    def largest(self):
        """(growth MiB, name) of the process that grew most."""
        best = (0.0, "-")
        for pid, (peak, name) in self.each_peak.items():
            g = (peak - self.each_base.get(pid, 0)) / 1024.0
            if g > best[0]:
                best = (g, name)
        return best

    def __enter__(self):
        self.each_base = {p: r for p, (r, _) in
                          rss_each(process_tree(self.root)).items()}
        self.base = rss_kib(process_tree(self.root))
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()

    def growth_mib(self):
        return max(0, self.peak - self.base) / 1024.0


class Neighbour:
    """A well-behaved client's round trip every 100 ms; the worst one.  A
    probe that fails counts as 30 s (the client was not served)."""

    def __init__(self, probe):
        self.probe = probe
        self.worst = 0.0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                self.probe()
                took = time.monotonic() - t
            except Exception:  # a figure, not a verdict
                took = 30.0
            self.worst = max(self.worst, took)
            self._stop.wait(0.1)

    def __enter__(self):
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(60)


# ---- neighbours ------------------------------------------------------------

def imap_neighbour(port, user, password):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    m.login(user, password)
    m.select("INBOX")
    return lambda: m.noop(), m.logout


def pop3_neighbour(port, user, password):
    p = poplib.POP3("127.0.0.1", port, timeout=30)
    p.user(user)
    p.pass_(password)
    return lambda: p.noop(), p.quit


def smtp_neighbour(port, user, password):
    def probe():
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("neighbour.example")
    return probe, lambda: None


# ---- attacks ---------------------------------------------------------------

def flood(sock, line, seconds):
    """`line` over and over, never reading; the bytes that went out."""
    return hostile.flood(sock, line, seconds, MAX_BYTES)[0]


def attack_smtp_noop_help(sock, seconds):
    return flood(sock, b"NOOP\r\nHELP\r\n", seconds)


def attack_pop3_capa(sock, seconds):
    return flood(sock, b"CAPA\r\n", seconds)


def attack_imap_preauth(sock, seconds):
    return flood(sock, b"a NOOP\r\nb CAPABILITY\r\n", seconds)


def attack_imap_fetch(sock, seconds):
    return flood(sock, b"f FETCH 1 BODY.PEEK[]\r\n", seconds)


def imap_login(sock, user, password):
    sock.sendall(b'l LOGIN "%s" "%s"\r\ns SELECT INBOX\r\n' %
                 (user.encode(), password.encode()))
    got = b""
    while b"s OK" not in got:
        data = sock.recv(65536)
        if not data:
            raise EOFError(got)
        got += data


def read_until_tag(sock, tag, seconds, max_bytes=MAX_BYTES):
    """Reads answers until the tagged one, `seconds` or `max_bytes`
    (never unbounded: Dovecot may answer a hostile FETCH at length)."""
    end = time.monotonic() + seconds
    got, tail = 0, b""
    sock.settimeout(1.0)
    while time.monotonic() < end and got < max_bytes:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            return got
        got += len(data)
        tail = (tail + data)[-4096:]
        if (b"\r\n" + tag + b" ") in b"\r\n" + tail:
            return got
    return got


def repeat(sock, command, seconds):
    """`command` (tagged c), each answer read, for `seconds`."""
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end:
        sock.sendall(b"c " + command + b"\r\n")
        sent += len(command) + 4
        read_until_tag(sock, b"c", max(end - time.monotonic(), 0.1))
    return sent


def attack_imap_mime_bombs(sock, seconds):
    return repeat(sock, b"FETCH 1:* (ENVELOPE BODYSTRUCTURE)", seconds)


def attack_imap_sections(sock, seconds):
    cmd = b"x FETCH 1 (" + b" ".join([b"BODY.PEEK[TEXT]"] * 3000) + b")\r\n"
    sock.sendall(cmd)
    read_until_tag(sock, b"x", seconds)
    return len(cmd)


def attack_imap_search(sock, seconds):
    keys = b" ".join(b"NOT TEXT absent%d" % i for i in range(120))
    return repeat(sock, b"SEARCH " + keys, seconds)


def attack_imap_append(sock, seconds):
    """A 40 MB literal APPEND."""
    size = 40 << 20
    sock.sendall(b"a APPEND INBOX {%d}\r\n" % size)
    sock.settimeout(10)
    if not sock.recv(4096).startswith(b"+"):
        return 0
    chunk = (b"x" * 998 + b"\r\n") * 64
    sent, end = 0, time.monotonic() + seconds * 4
    while sent < size and time.monotonic() < end:
        n = min(len(chunk), size - sent)
        sock.sendall(chunk[:n])
        sent += n
    sock.sendall(b"\r\n")
    read_until_tag(sock, b"a", seconds)
    return sent


def login_flood(port, opener, seconds, clients=60):
    """`clients` connections from this address doing wrong logins for
    `seconds`, each opening again when the server closes it."""
    end = time.monotonic() + seconds
    sent = [0]

    def one():
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", port), 10) as c:
                    c.settimeout(10)
                    c.recv(4096)
                    while time.monotonic() < end:
                        n = opener(c)
                        if n == 0:
                            break
                        sent[0] += n
            except OSError:
                time.sleep(0.05)

    threads = [threading.Thread(target=one, daemon=True)
               for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return sent[0]


def imap_wrong_login(c):
    line = b'a LOGIN "bench@example.org" "wrong-pw"\r\n'
    c.sendall(line)
    got = b""
    while b"\na " not in b"\n" + got:
        data = c.recv(4096)
        if not data:
            return 0
        got += data
    return len(line)


def pop3_wrong_login(c):
    line = b"USER bench@example.org\r\nPASS wrong-pw\r\n"
    c.sendall(line)
    got = b""
    while got.count(b"\r\n") < 2:
        data = c.recv(4096)
        if not data:
            return 0
        got += data
    return len(line)


def attack_imap_login_flood(sock, seconds):
    return login_flood(sock.getpeername()[1], imap_wrong_login, seconds)


def attack_pop3_login_flood(sock, seconds):
    return login_flood(sock.getpeername()[1], pop3_wrong_login, seconds)


# name: (protocol, function, login or None)
ATTACKS = [
    ("smtp NOOP/HELP flood", "smtp", attack_smtp_noop_help, None),
    ("pop3 CAPA flood", "pop3", attack_pop3_capa, None),
    ("imap NOOP/CAPABILITY pre-auth", "imap", attack_imap_preauth, None),
    ("imap FETCH, never read", "imap", attack_imap_fetch, imap_login),
    ("imap ENVELOPE of MIME bombs", "imap", attack_imap_mime_bombs,
     imap_login),
    ("imap FETCH 3000 sections", "imap", attack_imap_sections, imap_login),
    ("imap SEARCH 120 needles", "imap", attack_imap_search, imap_login),
    ("imap APPEND 40 MB", "imap", attack_imap_append, imap_login),
    ("imap 60 clients, bad LOGIN", "imap", attack_imap_login_flood, None),
    ("pop3 60 clients, bad PASS", "pop3", attack_pop3_login_flood, None),
]

NEIGHBOURS = {"smtp": smtp_neighbour, "pop3": pop3_neighbour,
              "imap": imap_neighbour}


def outcome(sock):
    """How the attacker's session stands after the attack: closed (and
    the last line it got), or still open."""
    tail, closed = hostile.drain(sock, seconds=3.0)
    if not closed:
        return "still open"
    last = tail.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    return "closed: %s" % last[:50].decode("ascii", "replace")


def run(server, ports, root, users, name, proto, fn, login, seconds):
    port = ports.get(proto)
    if port is None:
        return
    user, password = users["bench"]
    nuser, npassword = users["neighbour"]
    try:
        probe, done = NEIGHBOURS[proto](port, nuser, npassword)
    except Exception as e:  # a figure, not a verdict
        print("%-10s %-30s neighbour failed: %s" % (server, name, e))
        return
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.recv(4096)
    if login is not None:
        login(sock, user, password)
    with Sampler(root) as mem, Neighbour(probe) as n:
        sent = fn(sock, seconds)
        time.sleep(0.5)
    how = outcome(sock)
    sock.close()
    try:
        done()
    except Exception:
        pass
    grew, who = mem.largest()
    print("%-10s %-30s %8.1f %10.1f %16s %10.0f  %s" %
          (server, name, sent / 1048576.0, mem.growth_mib(),
           "%.1f %s" % (grew, who[:10]), n.worst * 1000, how), flush=True)


def postern(seconds):
    srv = MailServer(Runner(), ["smtp", "imap", "pop3"], workers=1,
                     name="postern", conf="""
smtp = { hostname = "mx.example.org";
         listen = ( { port = %(smtp)d; mode = "mx"; } ); };
imap = { listen = ( { port = %(imap)d; } ); };
pop3 = { listen = ( { port = %(pop3)d; } ); };
""", ports=["smtp", "imap", "pop3"])
    hostile.argon2_cost(srv, "64M", 2)  # libsodium's INTERACTIVE
    srv.add_user("bench@example.org", "bench-pw")
    srv.add_user("neighbour@example.org", "neighbour-pw")
    for m in MESSAGES:
        deliver(srv, "bench@example.org", m)
    srv.start()
    return srv


def dovecot_deliver(home, mail_user):
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(home, "Maildir", sub), exist_ok=True)
    for i, m in enumerate(MESSAGES):
        name = "%d.M%dP1.bench" % (1000000 + i, i)
        with open(os.path.join(home, "Maildir", "new", name), "wb") as f:
            f.write(m)
    if mail_user and os.geteuid() == 0:
        pw = pwd.getpwnam(mail_user)
        for top, dirs, files in os.walk(home):
            for n in [top] + [os.path.join(top, x) for x in dirs + files]:
                os.lchown(n, pw.pw_uid, pw.pw_gid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--dovecot", help="IMAP,POP3,PIDFILE,HOMES")
    ap.add_argument("--postfix", help="SMTP,PIDFILE")
    ap.add_argument("--mail-user", default="")
    a = ap.parse_args()
    users = {"bench": ("bench@example.org", "bench-pw"),
             "neighbour": ("neighbour@example.org", "neighbour-pw")}

    print("%-10s %-30s %8s %10s %16s %10s  %s" % (
        "server", "attack", "sent MiB", "peak +MiB", "most: +MiB who",
        "worst ms", "attacker"))
    srv = postern(a.seconds)
    try:
        ports = {p: srv.port(p) for p in ("smtp", "imap", "pop3")}
        for name, proto, fn, login in ATTACKS:
            run("posternd", ports, srv.daemon.proc.pid, users, name, proto,
                fn, login, a.seconds)
    finally:
        srv.stop()
    if a.postfix:
        port, pidfile = a.postfix.split(",")
        with open(pidfile) as f:
            root = int(f.read().split()[0])
        for name, proto, fn, login in ATTACKS:
            if proto == "smtp":
                run("postfix", {"smtp": int(port)}, root, users, name,
                    proto, fn, login, a.seconds)
    if a.dovecot:
        imap, pop3, pidfile, homes = a.dovecot.split(",")
        dovecot_deliver(os.path.join(homes, "bench"), a.mail_user)
        with open(pidfile) as f:
            root = int(f.read().split()[0])
        for name, proto, fn, login in ATTACKS:
            if proto in ("imap", "pop3"):
                run("dovecot", {"imap": int(imap), "pop3": int(pop3)}, root,
                    users, name, proto, fn, login, a.seconds)


if __name__ == "__main__":
    main()
