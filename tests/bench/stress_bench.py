#!/usr/bin/env python3
"""imaptest's stress mode against postern and Dovecot in one run: CLIENTS
clients over 50 users for SECS seconds each, the same mbox of messages
to APPEND, on loopback.  Prints commands per second, the mean latency
per command from imaptest's reports (each period weighted by its
count; LOGIN apart, as the password hash dominates it), and the errors
imaptest reported (RFC 2180: a session whose messages another expunges
must not see errors).

    tests/bench/stress_bench.py IMAPTEST [CLIENTS [SECS]]  (stress.sh)

The users' argon2id hashes (t=1, m=STRESS_HASH_MEM, default 8M) are the
same for both servers (Dovecot reads postern's users file).  Password
hashing then takes most of the CPU of both: STRESS_HASH_MEM=64K shows
what the servers do with the logins made cheap.

Never a pass or a failure on a time.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
os.environ.setdefault("top_builddir", os.getcwd())

import testlib                                   # noqa: E402
from dovecot_peer import PERFORMANCE, Dovecot    # noqa: E402
from mailserver import MailServer                # noqa: E402

IMAPTEST = sys.argv[1]
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
SECS = int(sys.argv[3]) if len(sys.argv) > 3 else 30
HASH_MEM = os.environ.get("STRESS_HASH_MEM", "8M")
USERS = 50
PASSWORD = "stress-secret"


def make_mbox(path, n=200):
    with open(path, "wb") as f:
        for i in range(n):
            body = ("line %d of a stress message\n" % i) * (5 + i % 40)
            f.write(("From sender%d@example.net Mon Mar  4 10:00:00 2024\n"
                     "From: Sender %d <sender%d@example.net>\n"
                     "To: someone@example.org\n"
                     "Subject: stress %d\n"
                     "Date: Mon, 4 Mar 2024 10:%02d:00 +0100\n"
                     "Message-ID: <%d.stress@example.net>\n\n%s\n"
                     % (i, i, i, i, i % 60, i, body)).encode())


def start_dovecot(tmp, port, users_file, mode):
    """Dovecot with postern's own argon2id hashes (the same cost for
    both); mode "performance" is the manual's high-performance setup."""
    with open(users_file) as f:
        users = [line.rstrip("\n").split(":", 1) for line in f
                 if ":" in line]
    return Dovecot(tmp, port, users, name="dovecot-" + mode,
                   mail=os.path.join(tmp, "dovecot-" + mode, "mail", "%u"),
                   tuning=PERFORMANCE if mode == "performance" else
                   "").start()


def run_imaptest(port, mbox):
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    p = subprocess.run(
        [IMAPTEST, "host=127.0.0.1", "port=%d" % port,
         "user=stress%d@example.org", "users=%d" % USERS,
         "pass=" + PASSWORD, "mbox=" + mbox, "clients=%d" % CLIENTS,
         "secs=%d" % SECS],
        env=env, capture_output=True, text=True, timeout=SECS + 120)
    return p.stdout + p.stderr


def latencies(lines):
    """Mean latency per command over the whole run: imaptest prints,
    every few seconds, rows of counts and then a row of mean ms per
    command for that period; each period's mean is weighted by its
    count.  Returns {command: (count, mean ms)}."""
    names, sums, counts, period = None, {}, {}, None
    for x in lines:
        v = x.split()
        if x.startswith("Totals:"):
            break
        if v and v[0] == "Logi":
            names = v
            period = [0] * len(names)
        elif names and "ms/cmd" in x:
            for i, name in enumerate(names):
                if i < len(v) and v[i].isdigit() and period[i]:
                    sums[name] = sums.get(name, 0) + int(v[i]) * period[i]
                    counts[name] = counts.get(name, 0) + period[i]
            period = [0] * len(names)
        elif names and len(v) >= len(names) and \
                all(t.isdigit() for t in v[:len(names)]):
            for i in range(len(names)):
                period[i] += int(v[i])
    return {n: (counts[n], sums[n] / counts[n]) for n in counts}


def summarise(name, out):
    lines = out.splitlines()
    errors = [x for x in lines if x.startswith("Error:")]
    # After "Totals:": the command names, two rows of percentages, and
    # the counts.
    totals = []
    if "Totals:" in lines:
        for x in lines[lines.index("Totals:") + 1:]:
            v = x.split()
            if v and all(t.isdigit() for t in v):
                totals = v
                break
    cmds = sum(int(v) for v in totals)
    lat = latencies(lines)
    rest = [(c, ms) for n, (c, ms) in lat.items() if n != "Logi"]
    n_rest = sum(c for c, _ in rest)
    mean_rest = sum(c * ms for c, ms in rest) / n_rest if n_rest else 0
    if os.environ.get("STRESS_SHOW"):
        print(out[-2500:])
    print("%-20s %9.0f cmd/s  %5d errors  mean latency %.1f ms "
          "(LOGIN %.0f ms, every other command %.1f ms)" % (
              name, cmds / SECS, len(errors),
              sum(c * ms for c, ms in lat.values()) /
              max(1, sum(c for c, _ in lat.values())),
              lat.get("Logi", (0, 0))[1], mean_rest))
    print("    ms per command: " + "  ".join(
        "%s %.0f" % (n, ms) for n, (c, ms) in lat.items()))
    for e in errors[:5]:
        print("    " + e[:160])
    return cmds


def main():
    class R:
        tmp = tempfile.mkdtemp(prefix="bench-stress.")
    srv = dconf = None
    try:
        mbox = os.path.join(R.tmp, "stress.mbox")
        make_mbox(mbox)
        os.chmod(R.tmp, 0o755)
        srv = MailServer(R, ["imap"], conf='''
imap = {
  listen = ( { port = %(imap)d; max_per_ip = 0; } );
  commands_per_second = 0;
  max_userip_connections = 0;
};
''', ports=["imap"], workers=2, argon2_memlimit=HASH_MEM)
        for i in range(1, USERS + 1):
            srv.add_user("stress%d@example.org" % i, PASSWORD)
        srv.start()
        users = os.path.join(srv.dir, "etc", "users")
        print("== imaptest stress: %d clients, %d users, %d s each; "
              "argon2id t=1 m=%s for both" % (CLIENTS, USERS, SECS,
                                               HASH_MEM),
              flush=True)
        p = summarise("postern", run_imaptest(srv.port("imap"), mbox))
        for mode in ("stock", "performance"):
            dport = testlib.free_port()
            dconf = start_dovecot(R.tmp, dport, users, mode)
            d = summarise("dovecot " + mode, run_imaptest(dport, mbox))
            dconf.stop()
            dconf = None
            if d:
                print("    throughput postern/dovecot %s: %.2fx"
                      % (mode, p / d))
    finally:
        if srv is not None:
            srv.stop()
        if dconf is not None:
            dconf.stop()
        shutil.rmtree(R.tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
