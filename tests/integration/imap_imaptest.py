#!/usr/bin/env python3
"""Dovecot's imaptest (its 71 scripted test groups) against a real
posternd with the imap module and a throwaway user: every group and
every command must pass, except the groups named in KNOWN_FAILURES.

imaptest is built through ../shared/tools/imaptest/build.sh (beside the
source tree, as CI has it, or named by $IMAPTEST_BUILD); where that is
missing or fails to build, the case is SKIPPED and says why.
"""
import os
import re
import subprocess

from imaptest import PASSWORDS, finish, start_server
from testlib import Runner, Skip, TOP_SRCDIR

# Groups imaptest still fails, each with the RFC point that is still
# wrong.  A failure in any other group, or a group of this list that
# failed commands beyond its own, fails the test: regressions show.
KNOWN_FAILURES = {
}

TIMEOUT = 600           # seconds for the whole imaptest run
USER = "alice@example.org"    # the throwaway server's own user


def build_script():
    """build.sh named by $IMAPTEST_BUILD, or found in a directory named
    shared/tools/imaptest beside the source tree or one of its parents."""
    env = os.environ.get("IMAPTEST_BUILD")
    if env:
        return env
    d = os.path.abspath(TOP_SRCDIR)
    while True:
        path = os.path.join(d, "..", "shared", "tools", "imaptest",
                            "build.sh")
        if os.path.isfile(path):
            return os.path.normpath(path)
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def imaptest_binary():
    script = build_script()
    if script is None:
        raise Skip("no ../shared/tools/imaptest/build.sh beside the "
                   "source tree (and $IMAPTEST_BUILD unset)")
    try:
        r = subprocess.run(["sh", script], capture_output=True, text=True,
                           timeout=900)
    except subprocess.TimeoutExpired:
        raise Skip("%s did not finish in 900 s" % script)
    binary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or not os.access(binary, os.X_OK):
        raise Skip("%s failed (status %d): %s" % (script, r.returncode,
                                                  r.stderr[-500:].strip()))
    return binary


def failed_groups(output):
    """Names of the groups imaptest reported failing ("*** Test NAME
    command N/M (line L)" lines and their kin)."""
    names = set()
    for m in re.finditer(r"^\*\*\* Test (\S+)", output, re.M):
        names.add(m.group(1))
    return names


def test_imaptest_scripted_groups(R):
    binary = imaptest_binary()
    tests = os.path.join(os.path.dirname(binary), "tests")
    env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/dovecot")
    # Run from our own directory: imaptest writes nothing into the
    # shared tests directory, which must hold only its test files.
    r = subprocess.run([binary, "host=127.0.0.1",
                        "port=%d" % srv.port("imap"), "user=" + USER,
                        "pass=" + PASSWORDS[USER], "test=" + tests],
                       cwd=R.tmp, env=env, capture_output=True, text=True,
                       timeout=TIMEOUT)
    out = r.stdout + r.stderr
    print(out[-20000:])
    summary = [l for l in out.splitlines()
               if re.match(r"^\d+ test groups:|^base protocol:|"
                           r"^extensions:", l)]
    print("imaptest summary:\n  " + "\n  ".join(summary))
    assert summary, "no imaptest summary (status %d)" % r.returncode
    # "Error:" lines are protocol violations imaptest saw outside a
    # group's expectations (a keyword missing from FLAGS, a BAD).
    errors = [l for l in out.splitlines() if l.startswith("Error:")]
    assert not errors or KNOWN_FAILURES, "imaptest errors:\n" + \
        "\n".join(errors[:20])
    failed_cmds = sum(int(m.group(1)) for m in re.finditer(
        r"^(?:base protocol|extensions): (\d+)/\d+ individual", out, re.M))
    assert failed_cmds == 0 or KNOWN_FAILURES, \
        "%d imaptest commands failed" % failed_cmds
    bad = failed_groups(out) - set(KNOWN_FAILURES)
    assert not bad, "imaptest groups failed: %s" % " ".join(sorted(bad))
    fixed = set(KNOWN_FAILURES) - failed_groups(out)
    assert not fixed, ("known failures now pass, drop them from "
                       "KNOWN_FAILURES: %s" % " ".join(sorted(fixed)))


R = Runner("imap_imaptest")
srv = start_server(R, name="imaptest")
R.run(test_imaptest_scripted_groups)
finish(R, srv)      # a bad exit status or sanitizer report fails too
