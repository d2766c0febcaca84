"""What the SMTP integration tests share: a MailServer with the smtp
module on three listeners (mx, submission, submissions), two users, and
optionally the relay_spool test relay and the smtp_filter test filter.
"""
import os
import re
import socket
import ssl
import time

from mailserver import MailServer
from testlib import TEST_MODULES

RELAY_SPOOL_SO = os.path.join(TEST_MODULES, "relay_spool.so")
SMTP_FILTER_SO = os.path.join(TEST_MODULES, "smtp_filter.so")

USERS = {"alice@example.org": "alice-pw", "bob@example.org": "bob-pw"}


def smtp_server(runner, name="srv", relay=True, smtp_extra="",
                filter_conf=None, extra_conf="", mx_extra="", aliases=(),
                extra_modules=(), workers=1):
    """A started MailServer.  srv.relay_dir is where relay_spool writes
    (None without relay).  `aliases` are (address, target) pairs made
    before the start (auth_passwd looks for changed files once a second,
    so an alias made later may not be seen at once).  `extra_modules`
    are loaded after smtp (their configuration goes in extra_conf)."""
    modules = ["smtp"] + list(extra_modules)
    conf = ""
    relay_dir = None
    if relay:
        relay_dir = os.path.join(runner.tmp, name + "-relay")
        os.makedirs(relay_dir, exist_ok=True)
        modules.append(RELAY_SPOOL_SO)
        conf += 'relay_spool = { dir = "%s"; };\n' % relay_dir
    if filter_conf is not None:
        modules.append(SMTP_FILTER_SO)
        conf += "smtp_filter = { %s };\n" % filter_conf
    conf += """
smtp = {
  hostname = "mx.test.example";
  tls = %%(tls)s;
  %s
  listen = (
    { name = "mx"; port = %%(mx)d; mode = "mx"; %s },
    { name = "submission"; port = %%(sub)d; mode = "submission"; },
    { name = "submissions"; port = %%(subs)d; mode = "submissions";
      tls = true; }
  );
};
%s
""" % (smtp_extra, mx_extra, extra_conf)
    srv = MailServer(runner, modules, conf=conf,
                     ports=["mx", "sub", "subs"], name=name,
                     workers=workers)
    srv.relay_dir = relay_dir
    if relay_dir is not None and srv.user:
        os.chmod(relay_dir, 0o777)
    for user, password in USERS.items():
        srv.add_user(user, password)
    for address, target in aliases:
        srv.add_alias(address, target)
    srv.start()
    return srv


def ehlo_session(port):
    """A Raw client past its greeting and EHLO."""
    c = Raw(port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    return c


def send_message(c, body, sender="a@remote.example",
                 rcpts=("alice@example.org",)):
    """MAIL, RCPTs (each must be taken), DATA and the body on c; the
    reply to the final dot."""
    assert c.cmd("MAIL FROM:<%s>" % sender)[0] == 250
    for rc in rcpts:
        assert c.cmd("RCPT TO:<%s>" % rc)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(body + ".\r\n")
    return c.reply()


def wait_messages(srv, user, count, timeout=10.0):
    """The user's messages once there are `count` (bounded wait)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        msgs = srv.messages(user)
        if len(msgs) >= count:
            return msgs
        time.sleep(0.05)
    return srv.messages(user)


def relayed(srv):
    """(envelope text, message bytes) of every message relay_spool got."""
    out = []
    if srv.relay_dir is None:
        return out
    for name in sorted(os.listdir(srv.relay_dir)):
        if not name.endswith(".env"):
            continue
        base = os.path.join(srv.relay_dir, name[:-4])
        with open(base + ".env") as f:
            env = f.read()
        with open(base + ".msg", "rb") as f:
            msg = f.read()
        out.append((env, msg))
    return out


def strip_trace(msg):
    """The message without our Return-Path and Received fields (the first
    fields, Received folded over several lines)."""
    lines = msg.split(b"\r\n")
    i = 0
    if lines and lines[0].startswith(b"Return-Path:"):
        i = 1
    if i < len(lines) and lines[i].startswith(b"Received:"):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\r\n".join(lines[i:])


class Raw:
    """A raw SMTP client over a socket, for what smtplib will not send."""

    def __init__(self, port, timeout=10.0, tls=False, source=None,
                 host="127.0.0.1"):
        """`source`: the client's own address (another 127.x.y.z, to
        look like another client)."""
        self.sock = socket.create_connection(
            (host, port), timeout,
            source_address=(source, 0) if source else None)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed; buffered %r" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """A whole (multi-line) reply: (code, [texts])."""
        texts = []
        while True:
            ln = self.line()
            texts.append(ln[4:])
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), texts

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def starttls(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock)

    def closed(self, timeout=5.0):
        """True once the server closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def stop_clean(srv):
    """Stops the server; fails on a crash, a sanitizer report or an exit
    status other than 0."""
    daemon = srv.daemon
    rc = srv.stop()
    with open(daemon.log_path) as f:
        log = f.read()
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error",
                "killed by signal"):
        assert bad not in log, "%s in the log:\n%s" % (bad, log[-4000:])
    assert not re.search(r"exited with status [1-9]", log), log[-4000:]
    assert rc == 0, (rc, log[-4000:])
