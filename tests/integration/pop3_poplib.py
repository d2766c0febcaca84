"""POP3 with Python's poplib against a real posternd on loopback: every
RFC 1939 command, CAPA, SASL PLAIN and LOGIN, STLS and implicit TLS,
wrong passwords, [IN-USE], the snapshot and deletion semantics next to
another client changing the Maildir, pipelining, limits, and the
configuration checks.

Messages are put into the Maildir directly (new/ files), and another
client's work is simulated on disk as any IMAP server does it: a flag
change renames a file in cur/, an expunge removes it.
"""
import base64
import os
import poplib
import pwd
import socket
import ssl
import subprocess
import time

from mailserver import MailServer
from testlib import LineClient, Runner, posternd

R = Runner("pop3_poplib")
ALICE, ALICE_PW = "alice@example.org", "alice pw"
BOB, BOB_PW = "bob@example.org", "bob-secret"

CONF = """
pop3 = {
  listen = ( { port = %(pop3)d; }, { port = %(pop3s)d; tls = true; } );
  tls = %(tls)s;
  max_failed_logins = 3;
  max_bad_commands = 8;
  expire = "NEVER";
  login_delay = "15m";
};
"""
srv = MailServer(R, ["pop3"], conf=CONF, ports=["pop3", "pop3s"])
srv.add_user(ALICE, ALICE_PW)
srv.add_user(BOB, BOB_PW)

counter = [0]


def deliver(srv, user, text, sub="new", info=""):
    """Writes a message file into the user's Maildir as a delivery agent
    would; returns its path."""
    base = srv.maildir(user)
    for d in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(base, d), exist_ok=True)
    counter[0] += 1
    name = "%d.M%dP%dQ%d.testhost" % (int(time.time()), counter[0],
                                       os.getpid(), counter[0])
    if sub == "cur":
        name += ":2," + info
    path = os.path.join(base, sub, name)
    with open(path, "wb") as f:
        f.write(text)
    if srv.user:
        pw = pwd.getpwnam(srv.user)
        for top, dirs, files in os.walk(srv.mail):
            for n in [top] + [os.path.join(top, x) for x in dirs + files]:
                os.lchown(n, pw.pw_uid, pw.pw_gid)
    return path


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(i, body_lines=3, extra=b""):
    body = b"".join(b"line %d of message %d\n" % (j, i)
                    for j in range(body_lines))
    return (b"From: sender@example.net\nTo: alice@example.org\n"
            b"Subject: test %d\nMessage-ID: <%d@example.net>\n\n" % (i, i)
            + body + extra)


def connect(port=None):
    return poplib.POP3("127.0.0.1", port or srv.port("pop3"), timeout=10)


def login(user=ALICE, pw=ALICE_PW):
    p = connect()
    p.user(user)
    p.pass_(pw)
    return p


def drop(p):
    """Ends a session without QUIT (poplib's file keeps the socket open
    after a plain close)."""
    p.sock.shutdown(socket.SHUT_RDWR)
    p.close()


def tls_context():
    ctx = ssl.create_default_context(cafile=srv.cert)
    return ctx


def files(user):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(srv.maildir(user), sub)
        if os.path.isdir(d):
            out += [os.path.join(d, n) for n in os.listdir(d)]
    return out


def clear(user):
    for f in files(user):
        os.unlink(f)


def expect_err(fn, code=None):
    try:
        r = fn()
    except poplib.error_proto as e:
        text = e.args[0]
        if code is not None:
            assert code.encode() in text, text
        return text
    raise AssertionError("expected -ERR, got %r" % (r,))


msgs = [message(1), message(2, extra=b".dotted line\n..two dots\n."),
        message(3, body_lines=50)]
paths = [deliver(srv, ALICE, m) for m in msgs]
srv.start()


def test_greeting_and_capa(R):
    p = connect()
    assert p.getwelcome().startswith(b"+OK"), p.getwelcome()
    caps = p.capa()
    for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
              "USER", "STLS"):
        assert c in caps, (c, caps)
    assert caps["SASL"] == ["PLAIN", "LOGIN"], caps
    assert caps["EXPIRE"] == ["NEVER"], caps
    assert caps["LOGIN-DELAY"] == ["900"], caps
    assert caps["IMPLEMENTATION"] == ["postern"], caps
    p.quit()


def test_wrong_password_and_auth_code(R):
    p = connect()
    p.user(ALICE)
    t = expect_err(lambda: p.pass_("wrong"), "[AUTH]")
    assert b"authentication failed" in t
    # PASS without USER again is refused: USER starts over.
    expect_err(lambda: p.pass_(ALICE_PW))
    p.user(ALICE)
    assert p.pass_(ALICE_PW).startswith(b"+OK")
    p.quit()


def test_too_many_failed_logins(R):
    p = connect()
    for _ in range(2):
        p.user(ALICE)
        expect_err(lambda: p.pass_("nope"), "[AUTH]")
    p.user(ALICE)
    expect_err(lambda: p.pass_("nope"), "[AUTH]")
    # The third failure ends the session.
    assert b"too many failed logins" in p.file.readline()
    assert p.file.readline() == b""
    p.close()


def test_stat_list_uidl(R):
    p = login()
    count, size = p.stat()
    assert count == 3, count
    want = [len(crlf(m)) for m in msgs]
    assert size == sum(want), (size, want)
    resp, lines, _ = p.list()
    assert lines == [b"%d %d" % (i + 1, n) for i, n in enumerate(want)], \
        lines
    assert p.list(2) == b"+OK 2 %d" % want[1]
    resp, uidls, _ = p.uidl()
    names = [os.path.basename(x).split(",")[0].split(":")[0] for x in paths]
    assert uidls == [b"%d %s" % (i + 1, n.encode())
                     for i, n in enumerate(names)], (uidls, names)
    assert p.uidl(3) == b"+OK 3 " + names[2].encode()
    expect_err(lambda: p.list(4))
    expect_err(lambda: p.uidl(0))
    p.quit()


def test_retr_byte_identical_and_stuffing(R):
    p = login()
    for i, m in enumerate(msgs):
        resp, lines, octets = p.retr(i + 1)
        assert resp.startswith(b"+OK %d octets" % len(crlf(m))), resp
        got = b"\r\n".join(lines) + b"\r\n"
        want = crlf(m) if m.endswith(b"\n") else crlf(m) + b"\r\n"
        assert got == want, (got, want)
    # On the wire: dotted lines are stuffed, and the message had no final
    # newline, so one is added before the terminating dot.
    p._putcmd("RETR 2")
    raw = []
    while True:
        line = p.file.readline()
        raw.append(line)
        if line == b".\r\n":
            break
    assert b"..dotted line\r\n" in raw and b"...two dots\r\n" in raw, raw
    assert raw[-2] == b"..\r\n", raw[-3:]
    p.quit()


def test_top(R):
    p = login()
    resp, lines, _ = p.top(3, 2)
    header = crlf(msgs[2]).split(b"\r\n\r\n")[0].split(b"\r\n")
    assert lines == header + [b"", b"line 0 of message 3",
                              b"line 1 of message 3"], lines
    resp, lines, _ = p.top(1, 0)
    header1 = crlf(msgs[0]).split(b"\r\n\r\n")[0].split(b"\r\n")
    assert lines == header1 + [b""], lines
    expect_err(lambda: p.top(9, 1))
    p.quit()


def test_dele_rset_noop_and_quit_deletes(R):
    p = login()
    assert p.noop().startswith(b"+OK")
    assert p.dele(1).startswith(b"+OK")
    expect_err(lambda: p.dele(1))
    expect_err(lambda: p.retr(1))
    expect_err(lambda: p.list(1))
    assert p.stat() == (2, sum(len(crlf(m)) for m in msgs[1:]))
    assert b"1 " not in b"".join(p.list()[1][:1])
    assert p.rset().startswith(b"+OK")
    assert p.stat()[0] == 3
    p.dele(3)
    before = len(files(ALICE))
    # A dropped connection deletes nothing.
    drop(p)
    time.sleep(0.3)
    assert len(files(ALICE)) == before, files(ALICE)
    p = login()
    assert p.stat()[0] == 3
    p.dele(3)
    resp = p.quit()
    assert resp.startswith(b"+OK") and b"1 messages deleted" in resp, resp
    assert len(files(ALICE)) == before - 1
    p = login()
    assert p.stat()[0] == 2
    assert p.retr(2)[1] == crlf(msgs[1]).rstrip(b"\r\n").split(b"\r\n")
    p.quit()
    msgs.pop()
    paths.pop()


def test_in_use(R):
    a = login()
    b = connect()
    b.user(ALICE)
    t = expect_err(lambda: b.pass_(ALICE_PW), "[IN-USE]")
    assert t.startswith(b"-ERR [IN-USE]"), t
    # Still in AUTHORIZATION: another user logs in on the same session.
    b.user(BOB)
    assert b.pass_(BOB_PW).startswith(b"+OK")
    b.quit()
    a.quit()
    # Once the first session has ended, the mailbox is free again.
    c = login()
    c.quit()


def test_snapshot_and_other_clients(R):
    p = login()
    n, _ = p.stat()
    uidls = p.uidl()[1]
    # A new delivery during the session stays out of it.
    newp = deliver(srv, ALICE, message(10))
    assert p.stat()[0] == n
    assert p.list()[1][-1].startswith(b"%d " % n)
    p.quit()
    p = login()
    assert p.stat()[0] == n + 1
    uidls2 = p.uidl()[1]
    assert uidls2[:n] == uidls, (uidls, uidls2)
    p.quit()
    # An IMAP client sets flags (renames in cur/): the UIDL stays.
    cur = files(ALICE)
    for f in cur:
        base = os.path.basename(f).split(":")[0]
        os.rename(f, os.path.join(srv.maildir(ALICE), "cur",
                                  base + ":2,FS"))
    p = login()
    assert p.uidl()[1] == uidls2
    # An IMAP client expunges a message during the session: RETR of it
    # fails, the others still work, and DELE + QUIT of it is fine.
    gone = [f for f in files(ALICE)
            if os.path.basename(f).startswith(
                os.path.basename(newp).split(",")[0])]
    assert len(gone) == 1, gone
    os.unlink(gone[0])
    t = expect_err(lambda: p.retr(n + 1))
    assert b"-ERR" in t
    assert p.retr(1)[0].startswith(b"+OK")
    p.dele(n + 1)
    assert p.quit().startswith(b"+OK")
    p = login()
    assert p.stat()[0] == n
    p.quit()


def test_deleted_over_pop3_is_gone_on_disk(R):
    base = deliver(srv, ALICE, message(20))
    key = os.path.basename(base).split(",")[0]
    p = login()
    n = p.stat()[0]
    p.dele(n)
    p.quit()
    assert not any(os.path.basename(f).startswith(key)
                   for f in files(ALICE))


def raw_session(port=None):
    c = LineClient(port or srv.port("pop3"))
    assert c.line().startswith("+OK")
    return c


def test_pipelining(R):
    c = raw_session()
    c.send(("USER %s\r\nPASS %s\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\nRETR 1\r\n"
            "NOOP\r\nTOP 1 0\r\nDELE 1\r\nRSET\r\nQUIT\r\n"
            % (ALICE, ALICE_PW)).encode())
    assert c.line().startswith("+OK")          # USER
    assert c.line().startswith("+OK")          # PASS
    assert c.line().startswith("+OK ")         # STAT
    assert c.line().startswith("+OK 1 ")       # LIST 1
    assert c.line().startswith("+OK 1 ")       # UIDL 1
    assert c.line().startswith("+OK")          # RETR 1
    n = 0
    while c.line() != ".":
        n += 1
        assert n < 1000
    assert c.line() == "+OK"                   # NOOP
    assert c.line().startswith("+OK")          # TOP
    while c.line() != ".":
        n += 1
        assert n < 2000
    assert c.line().startswith("+OK")          # DELE
    assert c.line().startswith("+OK")          # RSET
    assert c.line().startswith("+OK")          # QUIT
    c.close()


def test_pipelined_retr_batch(R):
    """A burst of RETRs and TOPs goes to the store in batches; a deleted
    or missing message in the middle answers -ERR in its place, and the
    first other command waits for the batch."""
    p = login()
    n = p.stat()[0]
    assert n >= 2, n
    want = [b"\r\n".join(p.retr(i)[1]) for i in (1, 2)]
    p.dele(2)
    st = p.stat()
    burst = (["RETR 1", "RETR 2", "TOP 1 0", "RETR %d" % (n + 5)] +
             ["RETR 1"] * 70 + ["STAT", "RETR 1", "NOOP"])
    p.sock.sendall(("\r\n".join(burst) + "\r\n").encode())
    assert b"\r\n".join(p._getlongresp()[1]) == want[0]
    expect_err(p._getresp)                  # RETR 2: deleted
    assert p._getlongresp()[0].startswith(b"+OK")
    expect_err(p._getresp)                  # no such message
    for _ in range(70):
        assert b"\r\n".join(p._getlongresp()[1]) == want[0]
    assert p._getresp() == b"+OK %d %d" % st   # STAT
    assert b"\r\n".join(p._getlongresp()[1]) == want[0]
    assert p._getresp() == b"+OK"           # NOOP
    p.stat()
    p.rset()
    p.quit()


def test_read_ahead_respects_dele_and_rset(R):
    """RETR n reads n+1 ahead; DELE, RSET and TOP in between still
    count, and what comes from the read-ahead is the message itself."""
    for i in range(3):
        deliver(srv, ALICE, message(40 + i))
    p = login()
    n = p.stat()[0]
    assert n >= 3, n
    first = [p.retr(i)[1] for i in range(1, n + 1)]
    p.quit()
    p = login()
    assert p.retr(1)[1] == first[0]
    p.dele(2)                                # 2 was read ahead
    expect_err(lambda: p.retr(2))
    p.rset()
    assert p.retr(2)[1] == first[1]          # read again, not ahead
    assert p.top(3, 0)[1] == first[2][:first[2].index(b"") + 1]
    assert p.retr(3)[1] == first[2]
    assert p.list(3).startswith(b"+OK 3 ")
    p.quit()


def test_large_message_streams(R):
    """A message of several MB goes out in many pieces (jobs, and waits
    for the socket to drain) with dots stuffed across piece boundaries."""
    line = b"." + b"x" * 1021 + b"\n"     # 1 KiB lines starting with '.'
    big = (b"From: big@example.net\nSubject: big\n\n" + line * 6000 +
           b"end")
    deliver(srv, BOB, big)
    p = login(BOB, BOB_PW)
    n = p.stat()[0]
    s = p.sock
    s.sendall(b"RETR %d\r\n" % n)
    time.sleep(0.5)                         # let the server fill up
    resp, lines, octets = p._getlongresp()
    assert resp == b"+OK %d octets" % len(crlf(big)), resp
    assert b"\r\n".join(lines) + b"\r\n" == crlf(big) + b"\r\n"
    p.dele(n)
    p.quit()


def sasl_plain(user, pw):
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            pw.encode()).decode()


def test_sasl_plain_initial_response(R):
    p = connect()
    assert p._shortcmd("AUTH PLAIN " + sasl_plain(ALICE, ALICE_PW)) \
        .startswith(b"+OK")
    assert p.stat()[0] >= 1
    p.quit()


def test_sasl_plain_continuation_and_failure(R):
    p = connect()
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0] == b"+ "
    p._putcmd(sasl_plain(ALICE, "bad"))
    t = expect_err(lambda: p._getresp(), "[AUTH]")
    assert t.startswith(b"-ERR [AUTH]")
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0] == b"+ "
    p._putcmd("*")
    t = expect_err(lambda: p._getresp())
    assert b"cancel" in t
    expect_err(lambda: p._shortcmd("AUTH CRAM-MD5"))
    expect_err(lambda: p._shortcmd("AUTH PLAIN !!notbase64"))
    p.quit()


def test_sasl_login(R):
    p = connect()
    p._putcmd("AUTH LOGIN")
    line = p._getline()[0]
    assert base64.b64decode(line[2:]) == b"Username:", line
    p._putcmd(base64.b64encode(BOB.encode()).decode())
    line = p._getline()[0]
    assert base64.b64decode(line[2:]) == b"Password:", line
    p._putcmd(base64.b64encode(BOB_PW.encode()).decode())
    assert p._getresp().startswith(b"+OK")
    p.quit()


def test_auth_lists_mechanisms(R):
    p = connect()
    resp, lines, _ = p._longcmd("AUTH")
    assert lines == [b"PLAIN", b"LOGIN"], lines
    p.quit()


def test_stls(R):
    p = connect()
    p.stls(tls_context())
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps, caps
    expect_err(lambda: p._shortcmd("STLS"))
    p.user(ALICE)
    p.pass_(ALICE_PW)
    assert p.stat()[0] >= 1
    p.quit()


def test_stls_discards_pipelined_input(R):
    raw = socket.create_connection(("127.0.0.1", srv.port("pop3")), 10)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"+OK")
    # Commands after STLS in the same packet must not run (RFC 2595 and
    # CVE-2011-0411): they are discarded before the handshake.
    raw.sendall(b"STLS\r\nUSER " + ALICE.encode() + b"\r\n")
    assert f.readline().startswith(b"+OK")
    tls = tls_context().wrap_socket(raw, server_hostname="localhost")
    tf = tls.makefile("rb")
    tls.sendall(b"NOOP\r\n")
    # NOOP is not valid before login: -ERR.  Had the USER been kept and
    # answered, "+OK send PASS" would come first.
    assert tf.readline().startswith(b"-ERR"), "pipelined USER ran"
    tls.sendall(b"PASS " + ALICE_PW.encode() + b"\r\n")
    assert tf.readline().startswith(b"-ERR"), "USER survived STLS"
    tls.close()


def test_implicit_tls(R):
    p = poplib.POP3_SSL("127.0.0.1", srv.port("pop3s"), timeout=10,
                        context=tls_context())
    assert "STLS" not in p.capa()
    p.user(BOB)
    p.pass_(BOB_PW)
    p.stat()
    p.quit()


def test_nul_long_lines_and_bad_commands(R):
    c = raw_session()
    c.send(b"NO\0OP\r\n")
    assert c.line().startswith("-ERR"), "NUL"
    c.send(b"USER " + b"a" * 9000 + b"\r\n")
    assert "too long" in c.line()
    c.send(b"USER " + b"a" * 300 + b"\r\n")
    assert "too long" in c.line()
    c.send(b"CAPA\r\n")                  # still serving
    assert c.line().startswith("+OK")
    while c.line() != ".":
        pass
    c.send(b"RETR 1\r\nXYZZY\r\nLIST\r\n")
    for _ in range(3):
        assert c.line().startswith("-ERR")
    # max_bad_commands = 8: the 8th invalid command closes.
    c.send(b"BAD\r\nBAD\r\nBAD\r\n")
    for _ in range(2):
        assert c.line().startswith("-ERR unknown")
    assert "too many" in c.line()
    try:
        extra = c.line()
    except EOFError:
        extra = None
    assert extra is None, extra
    c.close()


def test_transaction_rejects_auth_commands(R):
    p = login()
    expect_err(lambda: p.user(ALICE))
    expect_err(lambda: p._shortcmd("STLS"))
    expect_err(lambda: p._shortcmd("APOP a b"))
    caps = p.capa()
    assert "TOP" in caps and "STLS" not in caps
    p.quit()


def test_apop_off(R):
    p = connect()
    assert b"<" not in p.getwelcome()  # no APOP timestamp
    expect_err(lambda: p._shortcmd("APOP alice 0123456789abcdef"))
    p.quit()


def run_check(conf_extra):
    """posternd -t on the test server's configuration plus a conf.d file
    (a later file's values replace the earlier ones)."""
    d = os.path.join(R.tmp, "check")
    os.makedirs(os.path.join(d, "conf.d"), exist_ok=True)
    path = os.path.join(d, "postern.conf")
    with open(srv.conf_path) as f:
        base = f.read()
    with open(path, "w") as f:
        f.write(base)
    with open(os.path.join(d, "conf.d", "90-test.conf"), "w") as f:
        f.write(conf_extra)
    return posternd("-t", "-c", path)


def test_config_checks(R):
    status, out = run_check("pop3 = { apop = true; };\n")
    assert status != 0 and "APOP needs plaintext passwords" in out, out
    status, out = run_check('pop3 = { idle_timeout = "5m"; };\n')
    assert status != 0 and "idle_timeout" in out, out
    status, out = run_check('pop3 = { expire = "soon"; };\n')
    assert status != 0 and "expire" in out, out
    status, out = run_check('pop3 = { expire = "30"; };\n')
    assert status == 0, out


def test_mark_seen_and_expire_zero(R):
    other = MailServer(R, ["pop3"], name="seen", conf="""
pop3 = { listen = ( { port = %(pop3)d; } ); mark_seen = true;
         expire = "0"; };
""", ports=["pop3"])
    other.add_user(ALICE, ALICE_PW)
    for i in range(3):
        deliver(other, ALICE, message(30 + i))
    other.start()
    try:
        p = poplib.POP3("127.0.0.1", other.port("pop3"), timeout=10)
        assert p.capa()["EXPIRE"] == ["0"]
        p.user(ALICE)
        p.pass_(ALICE_PW)
        p.retr(2)
        p.top(3, 1)
        drop(p)              # no QUIT: nothing deleted, \Seen kept
        time.sleep(0.3)
        cur = os.path.join(other.maildir(ALICE), "cur")
        seen = [n for n in os.listdir(cur) if n.endswith(":2,S")]
        assert len(seen) == 1, os.listdir(cur)
        p = poplib.POP3("127.0.0.1", other.port("pop3"), timeout=10)
        p.user(ALICE)
        p.pass_(ALICE_PW)
        assert p.stat()[0] == 3
        p.retr(1)
        p.top(3, 0)
        resp = p.quit()      # EXPIRE 0: the retrieved one goes
        assert b"1 messages deleted" in resp, resp
        assert len(other.messages(ALICE)) == 2
    finally:
        other.stop()


for t in (test_greeting_and_capa, test_wrong_password_and_auth_code,
          test_too_many_failed_logins, test_stat_list_uidl,
          test_retr_byte_identical_and_stuffing, test_top,
          test_dele_rset_noop_and_quit_deletes, test_in_use,
          test_snapshot_and_other_clients,
          test_deleted_over_pop3_is_gone_on_disk, test_pipelining,
          test_pipelined_retr_batch, test_read_ahead_respects_dele_and_rset,
          test_large_message_streams,
          test_sasl_plain_initial_response,
          test_sasl_plain_continuation_and_failure, test_sasl_login,
          test_auth_lists_mechanisms, test_stls,
          test_stls_discards_pipelined_input, test_implicit_tls,
          test_nul_long_lines_and_bad_commands,
          test_transaction_rejects_auth_commands, test_apop_off,
          test_config_checks, test_mark_seen_and_expire_zero):
    R.run(t)
rc = srv.stop()
if rc != 0:
    R.failed += 1
    print("FAIL: posternd exited with %s\n%s" % (rc, srv.log()))
R.finish()
