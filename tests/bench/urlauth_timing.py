#!/usr/bin/env python3
"""How long URLFETCH takes to answer NIL for a URLAUTH URL whose user
does not exist, against one of an existing user with a wrong token (RFC
4467: the answer must not tell which users exist; imap_urlauth.c does
the same work on both paths).  Prints figures; never a pass or a
failure on a time (tests/integration/imap_urlauth.py checks that the
answers are the same).

    top_builddir=build/plain tests/bench/urlauth_timing.py \
        [N [ROUNDS [asker-key]]]

Each round sends N URLFETCH commands of each kind, interleaved (ABAB...)
on one connection, and takes each kind's median; the figures are the
medians over ROUNDS rounds (defaults 400 and 5), in microseconds, with
the median of each round's difference between the wrong-token path
and the unknown user's (paired, as the kinds are interleaved).  Also measured:
an existing user's mailbox that has no key, and (for scale) a URL of a
user that exists with the right token.  With "asker-key" the asking
user has access keys of his own (a key file in his store, which the
unknown user's path reads in place of the owner's).
"""
import imaplib
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
os.environ.setdefault("top_builddir", os.getcwd())

from imaptest import Raw, finish, login, start_server  # noqa: E402
from testlib import Runner                              # noqa: E402

imaplib.Commands["GENURLAUTH"] = ("AUTH", "SELECTED")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 400
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
ASKER_KEY = len(sys.argv) > 3 and sys.argv[3] == "asker-key"
BASE = "imap://alice%40example.org@localhost"


def main():
    R = Runner("urlauth_timing")
    srv = start_server(R)
    a = login(srv)
    a.append("INBOX", None, None, b"Subject: t\r\n\r\nbody\r\n")
    a.create("NoKey")
    typ, data = a._simple_command(
        "GENURLAUTH", '"%s/INBOX/;UID=1;URLAUTH=authuser"' % BASE,
        "INTERNAL")
    typ, data = a._untagged_response(typ, data, "GENURLAUTH")
    good = re.findall(r'"([^"]*)"', data[-1].decode())[0]
    a.logout()
    token = good.split(":")[-1]
    wrong = good[:-len(token)] + ("1" if token[0] == "0" else "0") + \
        token[1:]
    kinds = {
        "wrong token, user exists": wrong,
        "user does not exist": wrong.replace("alice%40", "nobody%40"),
        "mailbox without a key": wrong.replace("/INBOX/", "/NoKey/"),
        "right token (reads it)": good,
    }
    r = Raw(srv.port("imap"))
    r.login("bob@example.org")
    if ASKER_KEY:
        # the asker has access keys of his own (a key file to read)
        out = r.cmd("g", 'GENURLAUTH "imap://bob%40example.org@localhost'
                    '/INBOX/;UID=1;URLAUTH=authuser" INTERNAL')
        assert out[-1].startswith("g OK"), out
    cmds = {k: b'u URLFETCH "%s"\r\n' % u.encode() for k, u in kinds.items()}
    # warm up: caches, the decoy key, the auth table
    for k in kinds:
        for _ in range(20):
            r.send(cmds[k])
            r.until("u")
    per_round = {k: [] for k in kinds}
    for _ in range(ROUNDS):
        times = {k: [] for k in kinds}
        for _ in range(N):
            for k in kinds:
                t0 = time.perf_counter()
                r.send(cmds[k])
                out = r.until("u")
                times[k].append(time.perf_counter() - t0)
                assert out[-1].startswith("u OK"), out
        for k in kinds:
            per_round[k].append(statistics.median(times[k]) * 1e6)
    r.cmd("z", "LOGOUT")
    print("URLFETCH answer time, median of %d per round, median of %d "
          "rounds (us):" % (N, ROUNDS))
    fig = {}
    for k in kinds:
        fig[k] = statistics.median(per_round[k])
        print("  %-28s %8.1f   rounds: %s" % (
            k, fig[k], " ".join("%.1f" % v for v in per_round[k])))
    # the kinds are interleaved, so a round's difference is paired: it
    # holds up better than the difference of medians on a loaded machine
    deltas = [w - n for w, n in zip(per_round["wrong token, user exists"],
                                    per_round["user does not exist"])]
    print("  wrong token - no such user: %+.1f us (median of the rounds' "
          "differences; rounds: %s)" % (
              statistics.median(deltas),
              " ".join("%+.1f" % d for d in deltas)))
    finish(R, srv)


main()
