#!/usr/bin/env python3
"""IMAP security and limits: LOGINDISABLED without TLS, STARTTLS (and
the command injection it must not allow), implicit TLS, huge literals,
NUL octets, over-long lines, failed logins, invalid commands and the
idle timeout.

Loopback counts as secure by default (as Dovecot's
disable_plaintext_auth does for local clients), and these tests can
only connect over loopback; the server here sets loopback_is_secure =
false so that 127.0.0.1 is treated like any remote address.
"""
import imaplib
import ssl
import time

from imaptest import (finish, PASSWORDS, login, start_server, tls_context,
                      Raw)
from testlib import Runner

R = Runner("imap_security")
srv = start_server(R, '''
  loopback_is_secure = false;
  max_auth_failures = 3;
  max_bad_commands = 5;
  max_line_length = "2K";
  max_literal_size = "100K";
  idle_timeout = "3s";
  commands_per_second = 50;
''')


def starttls(r):
    out = r.cmd("tls", "STARTTLS")
    assert out[-1].startswith("tls OK"), out
    assert r.buf == b"", r.buf
    r.sock = tls_context().wrap_socket(r.sock, server_hostname="localhost")


def test_logindisabled_without_tls(R):
    r = Raw(srv.port("imap"))
    assert "LOGINDISABLED" in r.greeting, r.greeting
    assert "AUTH=PLAIN" not in r.greeting, r.greeting
    assert "STARTTLS" in r.greeting, r.greeting
    out = r.cmd("a", 'LOGIN "alice@example.org" "alice-secret"')
    assert out[-1].startswith("a NO [PRIVACYREQUIRED]"), out
    out = r.cmd("b", "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGFsaWNl"
                     "LXNlY3JldA==")
    assert out[-1].startswith("b NO [PRIVACYREQUIRED]"), out
    r.close()


def test_starttls_then_login(R):
    r = Raw(srv.port("imap"))
    starttls(r)
    out = r.cmd("c", "CAPABILITY")
    assert "AUTH=PLAIN" in out[0] and "LOGINDISABLED" not in out[0], out
    assert "STARTTLS" not in out[0], out
    r.login()
    out = r.cmd("s", "SELECT INBOX")
    assert out[-1].startswith("s OK"), out
    out = r.cmd("t", "STARTTLS")
    assert out[-1].startswith("t BAD"), out   # not in this state
    r.close()


def test_starttls_injection_discarded(R):
    r = Raw(srv.port("imap"))
    # The injected command arrives with STARTTLS, before the handshake:
    # it must not be executed (in or out of TLS).
    r.send(b"tls STARTTLS\r\ninj CAPABILITY\r\n")
    out = r.until("tls")
    assert out[-1].startswith("tls OK"), out
    r.buf = b""
    r.sock = tls_context().wrap_socket(r.sock, server_hostname="localhost")
    out = r.cmd("n", "NOOP")
    assert out == ["n OK NOOP completed"], out
    r.close()


def test_imaplib_starttls_and_implicit_tls(R):
    m = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    m.starttls(ssl_context=tls_context())
    m.login("alice@example.org", PASSWORDS["alice@example.org"])
    m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"),
                          ssl_context=tls_context())
    assert "AUTH=PLAIN" in m.capabilities, m.capabilities
    m.login("alice@example.org", PASSWORDS["alice@example.org"])
    m.select("INBOX")
    m.logout()


def test_huge_literal_refused_connection_usable(R):
    r = Raw(srv.port("imaps"), greet=False)
    r.sock = tls_context().wrap_socket(r.sock, server_hostname="localhost")
    r.line()
    r.login()
    out = r.cmd("a", "APPEND INBOX {999999999999}")
    assert out[-1].startswith("a BAD [TOOBIG]"), out
    out = r.cmd("b", "APPEND INBOX {200000}")     # over max_literal_size
    assert out[-1].startswith("b BAD [TOOBIG]"), out
    out = r.cmd("c", "NOOP")
    assert out[-1] == "c OK NOOP completed", out
    # A non-synchronising literal too large: the data is on its way,
    # so the server says BYE and closes (documented choice).
    r.send(b"d APPEND INBOX {999999+}\r\n")
    line = r.line()
    assert line.startswith("* BYE [TOOBIG]"), line
    assert r.closed()


def test_preauth_literal_limit(R):
    # Before login a literal holds a password at most: 8 KiB, whatever
    # max_literal_size allows afterwards.
    r = Raw(srv.port("imap"))
    out = r.cmd("a", "LOGIN {9000}")
    assert out[-1].startswith("a BAD [TOOBIG]"), out
    out = r.cmd("b", "NOOP")
    assert out[-1] == "b OK NOOP completed", out
    r.close()


def test_literal_within_limit(R):
    r = Raw(srv.port("imaps"), greet=False)
    r.sock = tls_context().wrap_socket(r.sock, server_hostname="localhost")
    r.line()
    r.login()
    body = b"Subject: lit\r\n\r\n" + b"x" * 50000 + b"\r\n"
    r.send(b"a APPEND INBOX {%d}\r\n" % len(body))
    assert r.line().startswith("+ "), "no continuation"
    r.send(body + b"\r\n")
    out = r.until("a")
    assert out[-1].startswith("a OK [APPENDUID"), out
    r.send(b"b APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
    out = r.until("b")
    assert out[-1].startswith("b OK [APPENDUID"), out
    r.close()


def test_nul_byte(R):
    r = Raw(srv.port("imap"))
    out = r.cmd("a", b"NO\0OP")
    assert out[-1].startswith("a BAD") and "NUL" in out[-1], out
    out = r.cmd("b", "NOOP")
    assert out[-1] == "b OK NOOP completed", out
    r.close()


def test_long_line(R):
    r = Raw(srv.port("imap"))
    out = r.cmd("a", "NOOP " + "x" * 5000)
    assert out[-1].startswith("a BAD") and "too long" in out[-1], out
    out = r.cmd("b", "NOOP")
    assert out[-1] == "b OK NOOP completed", out
    r.close()


def test_authenticate_bad_response(R):
    r = Raw(srv.port("imaps"), greet=False)
    r.sock = tls_context().wrap_socket(r.sock, server_hostname="localhost")
    r.line()
    r.send(b"a AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith("+"), "no SASL continuation"
    r.send(b"x" * 5000 + b"\r\n")           # over max_line_length
    out = r.until("a")
    assert out[-1].startswith("a BAD"), out
    r.send(b"b AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith("+")
    r.send(b"*\r\n")                        # the client cancels
    out = r.until("b")
    assert out[-1] == "b BAD Authentication cancelled", out
    out = r.cmd("c", "AUTHENTICATE PLAIN "
                     "AGFsaWNlQGV4YW1wbGUub3JnAGFsaWNlLXNlY3JldA==")
    assert out[-1].startswith("c OK"), out
    r.close()


def test_idle_bad_line(R):
    r = Raw(srv.port("imaps"), greet=False)
    r.sock = tls_context().wrap_socket(r.sock, server_hostname="localhost")
    r.line()
    r.login()
    r.cmd("s", "SELECT INBOX")
    r.send(b"i IDLE\r\n")
    assert r.line().startswith("+ ")
    r.send(b"DO\0NE\r\n")
    out = r.until("i")
    assert out[-1].startswith("i BAD"), out
    out = r.cmd("n", "NOOP")
    assert out[-1] == "n OK NOOP completed", out
    r.close()


def test_bad_syntax_keeps_connection(R):
    r = Raw(srv.port("imap"))
    for cmd in ("FOO", "LOGIN", 'LOGIN "unterminated', "FETCH 1:2 FLAGS"):
        out = r.cmd("x", cmd)
        assert out[-1].startswith("x BAD"), (cmd, out)
    out = r.cmd("ok", "NOOP")   # resets the count of BADs in a row
    assert out[-1].startswith("ok OK"), out
    r.send(b"\r\n")              # no tag at all
    assert r.line().startswith("* BAD"), "untagged BAD expected"
    # five BADs on the connection, but not in a row: it goes on
    out = r.cmd("ok2", "NOOP")
    assert out[-1].startswith("ok2 OK"), out
    r.close()


def test_too_many_bad_commands(R):
    r = Raw(srv.port("imap"))
    lines = []
    r.send(b"".join(b"b%d BOGUS\r\n" % i for i in range(10)))
    for _ in range(20):
        try:
            line = r.line()
        except (EOFError, ConnectionResetError):
            break
        lines.append(line)
        if line.startswith("* BYE"):
            break
    assert any(l.startswith("* BYE") for l in lines), lines
    assert sum(1 for l in lines if " BAD " in l) == 5, lines


def test_failed_logins_disconnect(R):
    r = Raw(srv.port("imaps"), greet=False)
    r.sock = tls_context().wrap_socket(r.sock, server_hostname="localhost")
    r.line()
    for i in range(3):
        t0 = time.time()
        out = r.cmd("f%d" % i, 'LOGIN "alice@example.org" "wrong"')
        assert out[-1].startswith("f%d NO [AUTHENTICATIONFAILED]" % i), out
        assert time.time() - t0 >= 0.09    # the host's failure delay
    line = r.line()
    assert line.startswith("* BYE"), line
    assert r.closed()


def test_command_rate_limit(R):
    # 50 a second with bursts of 200: 300 pipelined NOOPs take about
    # (300 - 200) / 50 = 2 s, and every one is answered.  Logged in:
    # before the login, NOOPs are junk (100 at most).
    r = Raw(srv.port("imap"))
    starttls(r)
    r.login()
    t0 = time.time()
    r.send(b"".join(b"r%d NOOP\r\n" % i for i in range(300)))
    for i in range(300):
        line = r.line()
        assert line == "r%d OK NOOP completed" % i, line
    took = time.time() - t0
    assert 1.5 <= took < 10, took
    r.close()


def test_idle_timeout(R):
    r = Raw(srv.port("imap"))
    t0 = time.time()
    line = r.line()      # nothing sent: the server gives up
    assert line.startswith("* BYE") and "idle" in line.lower(), line
    assert 2 <= time.time() - t0 < 15
    r.close()


def test_idle_command_outlives_idle_timeout(R):
    # RFC 2177: a client in IDLE is not logged out before 29 minutes,
    # whatever the idle timeout between commands is.
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"),
                          ssl_context=tls_context())
    m.login("alice@example.org", PASSWORDS["alice@example.org"])
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    time.sleep(4.5)      # past the 3 s idle_timeout
    m.send(b"DONE\r\n")
    line = m.readline()
    while line.startswith(b"*"):
        line = m.readline()
    assert line.startswith(tag + b" OK"), line
    m.logout()


for t in (test_logindisabled_without_tls, test_starttls_then_login,
          test_starttls_injection_discarded,
          test_imaplib_starttls_and_implicit_tls,
          test_huge_literal_refused_connection_usable,
          test_preauth_literal_limit, test_literal_within_limit,
          test_nul_byte, test_long_line,
          test_authenticate_bad_response, test_idle_bad_line,
          test_bad_syntax_keeps_connection, test_too_many_bad_commands,
          test_failed_logins_disconnect, test_command_rate_limit,
          test_idle_timeout,
          test_idle_command_outlives_idle_timeout):
    R.run(t)
finish(R, srv)
