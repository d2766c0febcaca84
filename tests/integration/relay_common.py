"""What the relay integration tests share: a posternd with smtp and relay
(relay_server), and a scripted SMTP/LMTP next hop on loopback
(NextHop) that records every transaction and answers as a test tells
it to (4xx then 250, 550, a slow end of data, STARTTLS).
"""
import asyncio
import os
import re
import shutil
import smtplib
import socket
import ssl
import threading
import time

from mailserver import MailServer
from testlib import module_so

RELAY_SO = module_so("relay", "relay")

MSG = (b"From: alice@sender.example\r\nTo: bob@remote.example\r\n"
       b"Subject: relay test\r\nMessage-ID: <1@sender.example>\r\n\r\n"
       b"first line\r\n.a line with a leading dot\r\n..two dots\r\n"
       b"last line\r\n")


def send(srv, rcpts, msg=MSG, sender="alice@sender.example", port=None,
         login=None, **kw):
    with smtplib.SMTP("127.0.0.1", port or srv.port("mx"), timeout=30) as s:
        if login:
            s.starttls()
            s.login(*login)
        return s.sendmail(sender, rcpts, msg, **kw)


class Txn:
    """One transaction the next hop accepted."""

    def __init__(self, mail_from, params, rcpts, data, tls, helo):
        self.mail_from = mail_from
        self.params = params
        self.rcpts = rcpts
        self.data = data
        self.tls = tls
        self.helo = helo


class NextHop:
    """An SMTP (or LMTP) server in a thread.  `rcpt_reply(addr, n)` and
    `data_reply(txn, n)` (n counts calls from 1) return a reply line or
    None for the default 250; `dot_delay` seconds pass before the final
    reply.  `tls` is (cert, key) to offer STARTTLS."""

    def __init__(self, port=0, lmtp=False, tls=None, pipelining=True,
                 eightbit=True, smtputf8=True, auth=None, chunking=False,
                 size=10000000):
        self.lmtp = lmtp
        self.tls = tls
        self.pipelining = pipelining
        self.eightbit = eightbit
        self.smtputf8 = smtputf8
        self.auth = auth          # "user:password" required when set
        self.chunking = chunking  # announce CHUNKING, take BDAT
        self.size = size          # announced in SIZE
        self.bdats = []           # (size, last) of every BDAT
        self.rcpt_reply = None
        self.data_reply = None
        self.dot_delay = 0
        self.txns = []
        self.commands = []
        self.connections = 0
        self.rcpt_calls = 0
        self.data_calls = 0
        self.lock = threading.Lock()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        sock.close()
        self.loop = None
        self.server = None
        self.thread = None

    def start(self):
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._session, "127.0.0.1",
                                     self.port, reuse_address=True))
            ready.set()
            self.loop.run_forever()
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def stop(self):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop = None

    def wait(self, count, timeout=20.0):
        """The transactions once there are `count` (bounded wait)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.txns) >= count:
                    return list(self.txns)
            time.sleep(0.05)
        with self.lock:
            return list(self.txns)

    async def _session(self, reader, writer):
        with self.lock:
            self.connections += 1
        state = {"tls": False, "helo": None, "authed": False}
        try:
            await self._converse(reader, writer, state)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _converse(self, reader, writer, state):
        def send(line):
            writer.write(line.encode() + b"\r\n")

        async def finish(data):
            """The end of a message's data: record it, reply."""
            if self.dot_delay:
                await asyncio.sleep(self.dot_delay)
            txn = Txn(mail, params, [r[0] for r in rcpts], data,
                      state["tls"], state["helo"])
            with self.lock:
                self.data_calls += 1
                n = self.data_calls
            reply = self.data_reply(txn, n) if self.data_reply else None
            if reply is None or reply.startswith("2"):
                with self.lock:
                    self.txns.append(txn)
            if self.lmtp:
                for _ in rcpts:
                    send(reply or "250 2.0.0 delivered")
            else:
                send(reply or "250 2.0.0 queued as X%d" % n)

        send("220 nexthop.test ESMTP ready")
        await writer.drain()
        mail, params, rcpts = None, "", []
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.lock:
                self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                state["helo"] = line.split(" ", 1)[1] if " " in line else ""
                caps = ["nexthop.test", "SIZE %d" % self.size, "DSN",
                        "ENHANCEDSTATUSCODES"]
                if self.pipelining:
                    caps.append("PIPELINING")
                if self.eightbit:
                    caps.append("8BITMIME")
                if self.smtputf8:
                    caps.append("SMTPUTF8")
                if self.chunking:
                    caps.append("CHUNKING")
                if self.tls and not state["tls"]:
                    caps.append("STARTTLS")
                if self.auth:
                    caps.append("AUTH PLAIN LOGIN")
                for c in caps[:-1]:
                    send("250-" + c)
                send("250 " + caps[-1])
            elif verb == "HELO":
                send("250 nexthop.test")
            elif verb == "STARTTLS" and self.tls and not state["tls"]:
                send("220 2.0.0 go ahead")
                await writer.drain()
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*self.tls)
                await writer.start_tls(ctx)
                state["tls"] = True
                continue
            elif verb == "AUTH" and self.auth:
                import base64
                parts = line.split()
                want = self.auth.split(":", 1)
                if len(parts) >= 3 and parts[1].upper() == "PLAIN":
                    got = base64.b64decode(parts[2]).split(b"\0")
                    ok = [g.decode() for g in got[1:]] == want
                elif len(parts) == 2 and parts[1].upper() == "LOGIN":
                    send("334 VXNlcm5hbWU6")
                    await writer.drain()
                    u = base64.b64decode((await reader.readline()).strip())
                    send("334 UGFzc3dvcmQ6")
                    await writer.drain()
                    p = base64.b64decode((await reader.readline()).strip())
                    ok = [u.decode(), p.decode()] == want
                else:
                    ok = False
                state["authed"] = ok
                send("235 2.7.0 ok" if ok else "535 5.7.8 bad")
            elif verb == "MAIL":
                if self.auth and not state["authed"]:
                    send("530 5.7.0 authentication required")
                else:
                    m = re.match(r"MAIL FROM:<(.*?)>(.*)", line, re.I)
                    mail, params, rcpts = m.group(1), m.group(2).strip(), []
                    send("250 2.1.0 ok")
            elif verb == "RCPT":
                m = re.match(r"RCPT TO:<(.*?)>(.*)", line, re.I)
                with self.lock:
                    self.rcpt_calls += 1
                    n = self.rcpt_calls
                reply = self.rcpt_reply(m.group(1), n) \
                    if self.rcpt_reply else None
                if mail is None:
                    reply = "503 5.5.1 no MAIL"
                if reply is None:
                    rcpts.append((m.group(1), m.group(2).strip()))
                    reply = "250 2.1.5 ok"
                send(reply)
            elif verb == "DATA":
                if mail is None or not rcpts:
                    send("554 5.5.1 no valid recipients")
                    continue
                send("354 go ahead")
                await writer.drain()
                data = bytearray()   # bytes += would be quadratic
                while True:
                    chunk = await reader.readline()
                    if not chunk:
                        return
                    if chunk == b".\r\n":
                        break
                    if chunk.startswith(b"."):
                        chunk = chunk[1:]
                    data += chunk
                await finish(bytes(data))
                mail, rcpts = None, []
            elif verb == "BDAT" and self.chunking:
                m = re.match(r"BDAT (\d+)( LAST)?$", line, re.I)
                size, last = int(m.group(1)), bool(m.group(2))
                with self.lock:
                    self.bdats.append((size, last))
                chunk = await reader.readexactly(size)
                if mail is None or not rcpts:
                    send("503 5.5.1 no valid recipients")
                    mail, rcpts = None, []
                    state.pop("bdat", None)
                elif not last:
                    state["bdat"] = state.get("bdat", b"") + chunk
                    send("250 2.0.0 %d octets" % size)
                else:
                    await finish(state.pop("bdat", b"") + chunk)
                    mail, rcpts = None, []
            elif verb == "RSET":
                mail, rcpts = None, []
                state.pop("bdat", None)
                send("250 2.0.0 ok")
            elif verb == "NOOP":
                send("250 2.0.0 ok")
            elif verb == "QUIT":
                send("221 2.0.0 bye")
                await writer.drain()
                return
            else:
                send("502 5.5.2 unknown command")
            await writer.drain()


def relay_server(runner, routes, name="srv", relay_extra="", smtp_extra="",
                 relay_domains=("remote.example", "other.example"),
                 workers=1, core_extra=""):
    """A started MailServer with smtp (mx, submission) and relay.
    `routes` is libconfig text for relay.routes; `core_extra` top-level
    settings (dns_servers)."""
    conf = core_extra + """
smtp = {
  hostname = "mx.test.example";
  tls = %%(tls)s;
  relay_domains = [ %s ];
  %s
  listen = (
    { name = "mx"; port = %%(mx)d; mode = "mx"; },
    { name = "submission"; port = %%(sub)d; mode = "submission"; }
  );
};
relay = {
  hostname = "relay.test.example";
  routes = ( %s );
  %s
};
""" % (", ".join('"%s"' % d for d in relay_domains), smtp_extra, routes,
       relay_extra + "".join(
           ' %s = "%s";' % (k, v) for k, v in (
               ("retry_min", "1s"), ("retry_max", "2s"),
               ("scan_interval", "1s")) if k not in relay_extra))
    srv = MailServer(runner, ["smtp", RELAY_SO], conf=conf,
                     ports=["mx", "sub"], name=name, workers=workers)
    srv.add_user("alice@example.org", "alice-pw")
    srv.start()
    return srv


def wait_log(srv, pattern, timeout=20.0, count=1):
    """The log once `pattern` (a regex) matched `count` times."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = srv.log()
        if len(re.findall(pattern, log)) >= count:
            return log
        time.sleep(0.1)
    raise AssertionError("no %r (x%d) in the log:\n%s" %
                         (pattern, count, srv.log()[-4000:]))


def strip_received(data):
    """The message without its first Received field (ours)."""
    lines = data.split(b"\r\n")
    i = 0
    if lines and lines[0].startswith(b"Received:"):
        i = 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\r\n".join(lines[i:])


def have(tool):
    return shutil.which(tool) is not None or os.path.exists(tool)
