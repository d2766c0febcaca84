"""POP3 with mail clients no one here wrote: curl (pop3:// listing,
retrieving, DELE, STLS with --ssl-reqd, pop3s://) and fetchmail (over
STLS with certificate checks, delivering to an MDA, with `keep` and
without), each checked for byte-identical messages, and that the server's
copies go only when the client was told to delete them.
"""
import os
import pwd
import stat
import subprocess
import time

from mailserver import MailServer
from testlib import Runner

R = Runner("pop3_clients")
USER, PW = "carol@example.org", "carol's pw"
CONF = """
pop3 = {
  listen = ( { port = %(pop3)d; }, { port = %(pop3s)d; tls = true; } );
  tls = %(tls)s;
};
"""
srv = MailServer(R, ["pop3"], conf=CONF, ports=["pop3", "pop3s"])
srv.add_user(USER, PW)
counter = [0]


def deliver(text):
    base = srv.maildir(USER)
    for d in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(base, d), exist_ok=True)
    counter[0] += 1
    name = "%d.M%dP%dQ%d.clients" % (int(time.time()), counter[0],
                                      os.getpid(), counter[0])
    with open(os.path.join(base, "new", name), "wb") as f:
        f.write(text)
    if srv.user:
        pw = pwd.getpwnam(srv.user)
        for top, dirs, files in os.walk(srv.mail):
            for n in [top] + [os.path.join(top, x) for x in dirs + files]:
                os.lchown(n, pw.pw_uid, pw.pw_gid)


def message(i):
    body = b"".join(b"body line %d of %d\n" % (j, i) for j in range(20))
    return (b"From: a@example.net\nTo: carol@example.org\n"
            b"Subject: client test %d\nMessage-ID: <c%d@example.net>\n\n"
            % (i, i) + body + b".starts with a dot\n..and two\nend\n")


def crlf(b):
    return b.replace(b"\n", b"\r\n")


def stored():
    return srv.messages(USER)


MSGS = [message(i) for i in range(1, 6)]
for m in MSGS:
    deliver(m)
srv.start()


def curl(*args, check=True):
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-u",
                        "%s:%s" % (USER, PW), *args],
                       capture_output=True, timeout=60)
    if check:
        assert p.returncode == 0, (args, p.returncode, p.stderr)
    return p


def url(n="", scheme="pop3", port=None):
    return "%s://127.0.0.1:%d/%s" % (scheme, port or srv.port(scheme),
                                     n)


def test_curl_list_and_retrieve(R):
    out = curl(url()).stdout
    lines = out.split(b"\r\n")
    assert lines[:5] == [b"%d %d" % (i + 1, len(crlf(m)))
                         for i, m in enumerate(MSGS)], lines
    for i, m in enumerate(MSGS):
        got = curl(url(i + 1)).stdout
        assert got == crlf(m), (i, got[-80:], crlf(m)[-80:])


def test_curl_stls_and_pop3s(R):
    got = curl("--ssl-reqd", "--cacert", srv.cert, url(2)).stdout
    assert got == crlf(MSGS[1])
    got = curl("--cacert", srv.cert, url(3, scheme="pop3s")).stdout
    assert got == crlf(MSGS[2])
    # A wrong password: curl fails, nothing is read.
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-u",
                        USER + ":wrong", url()], capture_output=True,
                       timeout=60)
    assert p.returncode != 0


def test_curl_dele(R):
    extra = message(99)
    deliver(extra)
    n = len(stored())
    curl("-X", "DELE", "-I", url(n))
    assert len(stored()) == n - 1
    assert extra not in stored()


FETCHMAILRC = """\
set no syslog
set invisible
poll localhost via 127.0.0.1 service %(port)d protocol POP3 timeout 20
  auth password
  user "%(user)s" there with password "%(pw)s" is "%(local)s" here
  %(keep)s
  fetchall
  no rewrite
  sslproto "TLS1.2+"
  sslcertck sslcertfile "%(cert)s" sslcommonname "localhost"
  mda "%(mda)s %(out)s"
"""


def fetchmail(keep, name):
    d = os.path.join(R.tmp, name)
    out = os.path.join(d, "out")
    os.makedirs(out)
    mda = os.path.join(d, "mda.sh")
    with open(mda, "w") as f:
        # One file per message, named in delivery order.
        f.write('#!/bin/sh\nn=$(ls "$1" | wc -l)\n'
                'exec cat > "$1/$(printf %04d $((n + 1)))"\n')
    os.chmod(mda, 0o755)
    rc = os.path.join(d, "fetchmailrc")
    with open(rc, "w") as f:
        f.write(FETCHMAILRC % dict(
            port=srv.port("pop3"), user=USER, pw=PW,
            local=pwd.getpwuid(os.getuid()).pw_name,
            keep="keep" if keep else "nokeep", cert=srv.cert, mda=mda,
            out=out))
    os.chmod(rc, stat.S_IRUSR | stat.S_IWUSR)
    env = dict(os.environ, HOME=d, FETCHMAILHOME=d)
    p = subprocess.run(["fetchmail", "-f", rc, "-i",
                        os.path.join(d, "fetchids"), "-v", "--nodetach"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "STLS" in p.stdout, p.stdout  # it did upgrade
    got = []
    for n in sorted(os.listdir(out)):
        with open(os.path.join(out, n), "rb") as f:
            got.append(f.read())
    return got


def test_fetchmail_keep(R):
    before = stored()
    got = fetchmail(True, "fm-keep")
    # fetchmail hands the MDA LF line endings: byte-identical to the
    # delivered files, in order.
    assert got == [m.replace(b"\r\n", b"\n") for m in before], \
        (len(got), len(before))
    assert stored() == before


def test_fetchmail_delete(R):
    before = stored()
    assert len(before) >= 5
    got = fetchmail(False, "fm-nokeep")
    assert got == [m.replace(b"\r\n", b"\n") for m in before], \
        (len(got), len(before))
    assert stored() == []


for t in (test_curl_list_and_retrieve, test_curl_stls_and_pop3s,
          test_curl_dele, test_fetchmail_keep, test_fetchmail_delete):
    R.run(t)
rc = srv.stop()
if rc != 0:
    R.failed += 1
    print("FAIL: posternd exited with %s\n%s" % (rc, srv.log()))
R.finish()
