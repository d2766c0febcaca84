"""What the IMAP integration tests share: a server with the imap module
(plaintext and implicit-TLS listeners, users alice and bob), imaplib
connections, a raw line client for what imaplib will not send, and a
delivery into a Maildir's new/ as an MTA would do it.
"""
import imaplib
import os
import socket
import ssl
import time

from mailserver import MailServer
from testlib import LineClient

PASSWORDS = {"alice@example.org": "alice-secret",
             "bob@example.org": "bob-secret"}


def start_server(runner, imap_conf="", name="srv", workers=1):
    """A running MailServer with imap on ports "imap" (STARTTLS) and
    "imaps" (implicit TLS); `imap_conf` is added inside the imap group."""
    srv = MailServer(runner, ["imap"], name=name, workers=workers, conf='''
imap = {
  listen = ( { port = %(imap)d; }, { port = %(imaps)d; tls = true; } );
  tls = %(tls)s;
''' + imap_conf + '''
};
''', ports=["imap", "imaps"])
    for user, password in PASSWORDS.items():
        srv.add_user(user, password)
    srv.start()
    return srv


def login(srv, user="alice@example.org"):
    m = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=20)
    m.login(user, PASSWORDS[user])
    return m


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_delivered = 0


def deliver(srv, user, data, folder=""):
    """Puts a message into the user's Maildir new/ the way an MTA does:
    written in tmp/, renamed into new/."""
    base = srv.maildir(user)
    if folder:
        base = os.path.join(base, "." + folder)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    # A counter, not the clock alone: two deliveries in one clock tick
    # got one name, and the rename replaced a message (a flaky test).
    global _delivered
    _delivered += 1
    name = "%d.M%dP%dQ%d.test" % (time.time(), time.time_ns() % 1000000,
                                  os.getpid(), _delivered)
    tmp = os.path.join(base, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(base, "new", name))
    if os.geteuid() == 0:
        srv._hand_over()


def message(subject, body="hello\r\n", sender="carol@example.net"):
    return ("From: %s\r\nTo: alice@example.org\r\nSubject: %s\r\n"
            "Date: Mon, 4 Mar 2024 10:00:00 +0100\r\n"
            "Message-ID: <%s@example.net>\r\n\r\n%s"
            % (sender, subject, subject.replace(" ", "."), body)).encode()


class Raw(LineClient):
    """Commands as bytes, exactly as given; replies as text lines."""

    def __init__(self, port, timeout=10.0, greet=True):
        super().__init__(port, timeout)
        self.greeting = self.line() if greet else None

    def cmd(self, tag, text, limit=2000):
        """Sends "tag text" and returns every line up to the tagged one."""
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag, limit)

    def until(self, tag, limit=2000):
        out = []
        for _ in range(limit):
            line = self.line()
            out.append(line)
            if line.startswith(tag + " "):
                return out
        raise AssertionError("no tagged reply for %s in %r" % (tag, out))

    def login(self, user="alice@example.org"):
        r = self.cmd("L", 'LOGIN "%s" "%s"' % (user, PASSWORDS[user]))
        assert r[-1].startswith("L OK"), r
        return r

    def closed(self):
        """True if the server closed the connection (EOF)."""
        self.sock.settimeout(5)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, socket.timeout):
            return False


def finish(runner, srv):
    """Stops the server; a bad exit status or a sanitizer report in its
    log (workers' leaks and UB included) is one more failure."""
    rc = srv.stop()
    with open(srv.conf_path + ".log") as f:
        log = f.read()
    if rc != 0 or "Sanitizer" in log or "runtime error" in log:
        print("FAIL: posternd exit status %s or sanitizer report; log:\n%s"
              % (rc, log[-5000:]))
        runner.failed += 1
    runner.finish()
