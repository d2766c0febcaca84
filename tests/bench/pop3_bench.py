"""POP3 retrieval: postern beside Dovecot's POP3 on copies of the same
Maildir.  Run through tests/bench/pop3.sh, which installs Dovecot when it
is missing.

    python3 pop3_bench.py [N [ROUNDS]]

N messages (default 10,000) of 1-16 KiB are written once into a Maildir
(cur/, already \\Seen, so neither server renames a file while it is
timed) and copied for each server.  Each round, for each server in turn:
one session logs in, then RETRs messages 1..N one at a time (send, read
the whole response, send the next) or pipelined (up to WINDOW commands in
flight, RFC 2449 PIPELINING), and QUITs without deleting.  Only the RETRs
are timed; a warm-up session first lets each server build its index.
Prints messages/s and MB/s (message octets, before byte-stuffing) per
run, the median per server and mode, and postern's ratio to Dovecot.

The client is a plain socket loop that counts the "\\r\\n.\\r\\n" ending
each response (byte-stuffing makes it unique), and checks that every
message arrived, with the same number of octets from both servers.
Everything listens on 127.0.0.1; every loop is bounded.
"""
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from mailserver import MailServer
from testlib import free_port

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
WINDOW = 64
USER, PW = "bench@example.org", "bench-pw"
TIMEOUT = 120.0


class Bench:
    """What MailServer wants of its runner: a scratch directory."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="bench-pop3.")
        os.chmod(self.tmp, 0o755)


def make_messages(directory, n):
    """n messages of varied size, some with lines starting with '.'."""
    rnd = random.Random(1939)
    cur = os.path.join(directory, "cur")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(directory, d), exist_ok=True)
    total = 0
    words = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"fox"]
    t0 = 1700000000
    for i in range(n):
        size = rnd.randint(1024, 16384)
        head = (b"From: sender%d@example.net\nTo: bench@example.org\n"
                b"Subject: message %d\nMessage-ID: <%d@bench>\n"
                b"Date: Tue, 14 Nov 2023 22:13:20 +0000\n\n" % (i, i, i))
        lines = []
        length = len(head)
        while length < size:
            line = b" ".join(rnd.choice(words) for _ in range(10))
            if rnd.random() < 0.05:
                line = b"." + line
            lines.append(line)
            length += len(line) + 1
        text = head + b"\n".join(lines) + b"\n"
        name = "%d.M%dP1Q%d.bench,S=%d:2,S" % (t0 + i, i, i, len(text))
        with open(os.path.join(cur, name), "wb") as f:
            f.write(text)
        os.utime(os.path.join(cur, name), (t0 + i, t0 + i))
        total += len(text) + text.count(b"\n")  # CRLF octets
    return total


def chown_tree(path, user):
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", user, path], check=True)


# ---- Dovecot ---------------------------------------------------------------

DOVECOT_CONF = """\
base_dir = %(d)s/run
state_dir = %(d)s/state
log_path = %(d)s/log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:%(d)s/Maildir
mail_max_userip_connections = 100
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %(d)s/passwd
}
userdb {
  driver = static
  args = uid=%(uid)s gid=%(gid)s home=%(d)s/home
}
service pop3-login {
  inet_listener pop3 {
    port = %(port)d
  }
  inet_listener pop3s {
    port = 0
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
"""


class Dovecot:
    def __init__(self, tmp, src):
        self.d = os.path.join(tmp, "dovecot")
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(self.d, sub), exist_ok=True)
        shutil.copytree(src, os.path.join(self.d, "Maildir"))
        user = "nobody" if os.geteuid() == 0 else os.environ.get("USER")
        self.port = free_port()
        self.conf = os.path.join(self.d, "dovecot.conf")
        with open(os.path.join(self.d, "passwd"), "w") as f:
            f.write("%s:{PLAIN}%s\n" % (USER, PW))
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF % dict(d=self.d, port=self.port,
                                        uid=user, gid=user if user !=
                                        "nobody" else "nogroup"))
        chown_tree(os.path.join(self.d, "Maildir"), user)
        chown_tree(os.path.join(self.d, "home"), user)

    def start(self):
        subprocess.run(["dovecot", "-c", self.conf], check=True)
        wait_port(self.port)

    def stop(self):
        subprocess.run(["doveadm", "-c", self.conf, "stop"],
                       capture_output=True)


def wait_port(port, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on %d" % port)


# ---- the client ------------------------------------------------------------

class Session:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), TIMEOUT)
        self.buf = b""
        self.line()

    def line(self):
        end = time.time() + TIMEOUT
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk or time.time() > end:
                raise SystemExit("connection closed: %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        line = self.line()
        if not line.startswith(b"+OK"):
            raise SystemExit("%s: %r" % (text.split()[0], line))
        return line

    def login(self):
        self.cmd("USER " + USER)
        self.cmd("PASS " + PW)

    def quit(self):
        self.s.sendall(b"RSET\r\nQUIT\r\n")
        self.s.close()


END = b"\r\n.\r\n"
RECV = bytearray(1 << 20)


def read_responses(sess, want, tail):
    """Reads until `want` multi-line responses have ended; returns the
    octets read, the new tail (the last 4 octets seen) and the count.
    Counting happens in place in one receive buffer, so the client costs
    little next to the servers."""
    got = 0
    octets = 0
    end = time.time() + TIMEOUT
    if sess.buf:
        data = sess.buf
        sess.buf = b""
        octets += len(data)
        joined = tail + data
        got += joined.count(END)
        tail = joined[-4:]
    while got < want:
        if time.time() > end:
            raise SystemExit("timed out after %d responses" % got)
        n = sess.s.recv_into(RECV)
        if n == 0:
            raise SystemExit("connection closed after %d responses" % got)
        octets += n
        # An end marker may straddle the previous read and this one.
        head = bytes(RECV[:min(n, 4)])
        got += (tail + head).count(END) + RECV.count(END, 0, n)
        tail = (tail + bytes(RECV[max(0, n - 4):n]))[-4:]
    return octets, tail, got


def run_retr(port, n, pipelined):
    sess = Session(port)
    sess.login()
    total = 0
    tail = b""
    t0 = time.perf_counter()
    if not pipelined:
        for i in range(1, n + 1):
            sess.s.sendall(b"RETR %d\r\n" % i)
            octets, tail, _ = read_responses(sess, 1, tail)
            total += octets
    else:
        sent = done = 0
        while done < n:
            batch = []
            while sent < n and sent - done < WINDOW:
                sent += 1
                batch.append(b"RETR %d\r\n" % sent)
            if batch:
                sess.s.sendall(b"".join(batch))
            octets, tail, got = read_responses(sess, 1, tail)
            total += octets
            done += got
    elapsed = time.perf_counter() - t0
    sess.quit()
    return elapsed, total


def warm_up(port):
    sess = Session(port)
    sess.login()
    sess.s.sendall(b"UIDL\r\n")
    read_responses(sess, 1, b"")
    sess.quit()


def main():
    b = Bench()
    src = os.path.join(b.tmp, "src")
    print("pop3 bench: %d messages, %d rounds, pipelining window %d"
          % (N, ROUNDS, WINDOW), flush=True)
    msg_octets = make_messages(src, N)
    print("  %.1f MB of messages (CRLF)" % (msg_octets / 1e6), flush=True)

    srv = MailServer(b, ["pop3"], ports=["pop3"], name="postern", conf="""
pop3 = { listen = ( { port = %(pop3)d; } ); };
""")
    srv.add_user(USER, PW)
    shutil.copytree(src, srv.maildir(USER))
    dv = Dovecot(b.tmp, src)
    srv.start()
    dv.start()
    servers = [("postern", srv.port("pop3")), ("dovecot", dv.port)]
    results = {}
    sizes = {}
    try:
        for _, port in servers:
            warm_up(port)
        for r in range(ROUNDS):
            for mode in ("one by one", "pipelined"):
                for name, port in servers:
                    el, octets = run_retr(port, N, mode == "pipelined")
                    results.setdefault((name, mode), []).append(el)
                    sizes.setdefault(name, set()).add(octets)
                    print("  round %d %-10s %-8s %7.2f s %8.0f msg/s "
                          "%7.1f MB/s" % (r + 1, mode, name, el, N / el,
                                          msg_octets / el / 1e6),
                          flush=True)
    finally:
        srv.stop()
        dv.stop()
    print("\nmedians (%d messages, %.1f MB):" % (N, msg_octets / 1e6))
    print("  %-10s %12s %10s %12s %10s %7s" % ("mode", "postern msg/s",
                                              "MB/s", "dovecot msg/s",
                                              "MB/s", "ratio"))
    for mode in ("one by one", "pipelined"):
        p = statistics.median(results[("postern", mode)])
        d = statistics.median(results[("dovecot", mode)])
        print("  %-10s %12.0f %10.1f %12.0f %10.1f %6.2fx"
              % (mode, N / p, msg_octets / p / 1e6, N / d,
                 msg_octets / d / 1e6, d / p))
    # Both served the same messages: the octets differ only by the
    # "+OK" lines, a few dozen octets per message at most.
    pa, da = max(sizes["postern"]), max(sizes["dovecot"])
    if abs(pa - da) > 64 * N:
        raise SystemExit("postern sent %d octets, dovecot %d" % (pa, da))
    shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
