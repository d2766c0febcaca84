#!/usr/bin/env python3
"""Many IMAP sessions on one mailbox at once (imaplib, one thread each):
APPEND, STORE, SEARCH, FETCH, EXPUNGE, IDLE and NOOP interleaved, and
clients that vanish in the middle of a command.  Every reply must be
well formed, every session must see a consistent mailbox (EXISTS
matches SEARCH ALL after NOOP), and the server must neither crash nor
leak (the sanitizer build checks the log).  Bounded: a fixed number of
rounds per thread and a deadline.
"""
import imaplib
import random
import socket
import threading
import time

from imaptest import finish, login, message, start_server
from testlib import Runner

R = Runner("imap_concurrency")
srv = start_server(R, "  commands_per_second = 0;\n", workers=2)
THREADS = 8
ROUNDS = 25
DEADLINE = time.time() + 120


def worker(n, errors, appended):
    rnd = random.Random(n)
    try:
        m = login(srv)
        m.select("Busy")
        for i in range(ROUNDS):
            if time.time() > DEADLINE:
                break
            op = rnd.choice(("append", "store", "search", "fetch",
                             "expunge", "noop"))
            if op == "append":
                typ, _ = m.append("Busy", None, None,
                                  message("t%d r%d" % (n, i)))
                assert typ == "OK"
                appended[n] += 1
            elif op == "store":
                typ, data = m.uid("STORE", "1:*", "+FLAGS",
                                  "(\\Seen t%d)" % (n % 3))
                assert typ == "OK", data
                if rnd.random() < 0.3:
                    m.uid("STORE", "%d:*" % rnd.randint(1, 50), "+FLAGS",
                          "(\\Deleted)")
            elif op == "search":
                typ, data = m.uid("SEARCH", "OR", "SEEN", "UNDELETED")
                assert typ == "OK", data
            elif op == "fetch":
                typ, data = m.uid("FETCH", "1:*",
                                  "(FLAGS RFC822.SIZE BODY.PEEK[HEADER])")
                # A message another session expunged (its number held
                # back, RFC 3501 7.4.1) gives what the index knows and
                # the FETCH does not fail: RFC 2180 4.1.1.
                assert typ == "OK", data
            elif op == "expunge":
                typ, data = m.expunge()
                assert typ == "OK", data
            else:
                typ, _ = m.noop()
                assert typ == "OK"
        # Consistency: after a NOOP, EXISTS is what SEARCH ALL finds.
        typ, data = m.select("Busy")
        exists = int(data[0])
        typ, data = m.search(None, "ALL")
        assert len(data[0].split()) == exists, (exists, data)
        m.logout()
    except Exception as e:  # reported by the main thread
        errors.append("thread %d: %r" % (n, e))


def vanishing_client(n):
    """Sends half a command, or a command and leaves without reading."""
    for i in range(10):
        s = socket.create_connection(("127.0.0.1", srv.port("imap")), 10)
        s.sendall(b'a LOGIN "alice@example.org" "alice-secret"\r\n'
                  b"b SELECT Busy\r\nc FETCH 1:* (BODY.PEEK[])\r\n")
        if i % 2:
            s.sendall(b"d APPEND Busy {100}\r\npartial")
        time.sleep(0.02 * (i % 3))
        s.close()


def test_many_sessions_one_mailbox(R):
    m = login(srv)
    m.create("Busy")
    for i in range(10):
        m.append("Busy", None, None, message("seed %d" % i))
    m.logout()
    errors, appended = [], [0] * THREADS
    threads = [threading.Thread(target=worker, args=(n, errors, appended))
               for n in range(THREADS)]
    threads += [threading.Thread(target=vanishing_client, args=(n,))
                for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    # The server still answers, and the mailbox adds up.
    m = login(srv)
    typ, data = m.select("Busy")
    assert typ == "OK"
    typ, data = m.search(None, "ALL")
    n = len(data[0].split())
    assert 0 <= n <= 10 + sum(appended), (n, appended)
    m.logout()


def test_shutdown_says_bye(R):
    # A graceful stop: an idle session and one in IDLE both get BYE.
    from imaptest import Raw
    idle = Raw(srv.port("imap"))
    idle.login()
    idle.cmd("s", "SELECT Busy")
    idle.send(b"i IDLE\r\n")
    assert idle.line().startswith("+ ")
    plain = Raw(srv.port("imap"))
    rc = srv.stop()
    assert rc == 0, rc
    for r in (idle, plain):
        lines = []
        try:
            for _ in range(20):
                lines.append(r.line())
        except EOFError:
            pass
        assert any(l.startswith("* BYE") for l in lines), lines


R.run(test_many_sessions_one_mailbox)
R.run(test_shutdown_says_bye)
finish(R, srv)
