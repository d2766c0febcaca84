#!/usr/bin/env python3
"""Real IMAP clients against posternd: curl (imap:// and imaps://: list,
fetch by UID, search, upload), mbsync (isync) synchronising a
mailbox to a local Maildir and back, flags included, and fetchmail
taking the unseen messages of a folder.
"""
import os
import subprocess

from imaptest import (finish, PASSWORDS, deliver, login, message,
                      start_server)
from testlib import Runner

R = Runner("imap_clients")
srv = start_server(R)
USER = "alice@example.org"


def curl(*args, data=None):
    p = subprocess.run(["curl", "-sS", "--max-time", "20",
                        "-u", "%s:%s" % (USER, PASSWORDS[USER]), *args],
                       capture_output=True, input=data, timeout=60)
    assert p.returncode == 0, (args, p.returncode, p.stderr)
    return p.stdout


def url(path="", tls=False):
    if tls:
        return "imaps://127.0.0.1:%d/%s" % (srv.port("imaps"), path)
    return "imap://127.0.0.1:%d/%s" % (srv.port("imap"), path)


def test_curl_list_fetch_search(R):
    # One at a time, so the UIDs follow the order of delivery.
    deliver(srv, USER, message("curl one", "first body\r\n"))
    m = login(srv)
    m.select("INBOX")
    m.logout()
    deliver(srv, USER, message("curl two", "second body\r\n"))
    out = curl(url())
    assert b'"INBOX"' in out or b" INBOX" in out, out
    out = curl(url("INBOX;UID=1"))
    assert out == message("curl one", "first body\r\n"), out
    out = curl(url("INBOX;UID=2;SECTION=TEXT"))
    assert out == b"second body\r\n", out
    out = curl(url("INBOX?ALL"))
    assert out.strip() == b"* SEARCH 1 2", out
    out = curl("-k", url("INBOX;UID=2", tls=True))
    assert out == message("curl two", "second body\r\n"), out


def test_curl_upload_and_custom_request(R):
    msg = message("uploaded by curl")
    path = os.path.join(R.tmp, "upload.eml")
    with open(path, "wb") as f:
        f.write(msg)
    curl("-T", path, url("INBOX"))
    m = login(srv)
    typ, data = m.select("INBOX")
    n = data[0].decode()
    typ, data = m.fetch(n, "(BODY.PEEK[])")
    assert data[0][1] == msg, data
    m.logout()
    out = curl(url("INBOX"), "-X", "FETCH 1:* (FLAGS)")
    assert out.count(b"FETCH (FLAGS") == int(n), out
    out = curl(url(), "-X", "STATUS INBOX (MESSAGES)")
    assert b"MESSAGES %s" % n.encode() in out, out


def mbsync_config(local):
    path = os.path.join(R.tmp, "mbsyncrc")
    with open(path, "w") as f:
        f.write("""\
IMAPAccount postern
Host localhost
Port %d
User %s
Pass %s
SSLType IMAPS
CertificateFile %s
SystemCertificates no

IMAPStore remote
Account postern

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""" % (srv.port("imaps"), USER, PASSWORDS[USER], srv.cert, local, local))
    return path


def mbsync(cfg):
    p = subprocess.run(["mbsync", "-c", cfg, "-a"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr,
                               srv.log()[-2000:])
    return p


def local_messages(local, folder):
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(local, folder, sub)
        if not os.path.isdir(d):
            continue
        for n in os.listdir(d):
            with open(os.path.join(d, n), "rb") as f:
                out[os.path.join(sub, n)] = f.read()
    return out


def test_mbsync_both_ways(R):
    local = os.path.join(R.tmp, "local")
    os.makedirs(local)
    cfg = mbsync_config(local)
    m = login(srv)
    m.create("Projects")
    m.append("Projects", "(\\Flagged)", None, message("mbsync far"))
    m.logout()
    mbsync(cfg)
    inbox = local_messages(local, "INBOX")
    remote = login(srv)
    typ, data = remote.status("INBOX", "(MESSAGES)")
    count = int(data[0].split(b"MESSAGES ")[1].split(b")")[0])
    assert len(inbox) == count, (len(inbox), count)
    proj = local_messages(local, "Projects")
    assert len(proj) == 1, proj
    name, body = list(proj.items())[0]
    assert b"Subject: mbsync far" in body
    assert name.split(":2,")[1].find("F") >= 0, name   # \Flagged came
    # Near side: a new message, and the far one marked seen.
    newdir = os.path.join(local, "Projects", "new")
    with open(os.path.join(newdir, "1.local.test"), "wb") as f:
        f.write(message("mbsync near").replace(b"\r\n", b"\n"))
    base = os.path.join(local, "Projects")
    os.rename(os.path.join(base, name), os.path.join(
        base, "cur", os.path.basename(name).split(":2,")[0] + ":2,FS"))
    mbsync(cfg)
    remote.select("Projects")
    typ, data = remote.search(None, "ALL")
    assert data[0] == b"1 2", data
    typ, data = remote.fetch("1:2", "(FLAGS BODY.PEEK[HEADER.FIELDS "
                                    "(SUBJECT)])")
    text = b" ".join(x[0] + x[1] if isinstance(x, tuple) else x
                     for x in data)
    assert b"mbsync near" in text, text
    assert b"\\Seen" in data[0][0], data
    # Deleting on the far side propagates with Expunge Both.
    remote.store("1", "+FLAGS", "(\\Deleted)")
    remote.expunge()
    remote.logout()
    mbsync(cfg)
    proj = local_messages(local, "Projects")
    assert len(proj) == 1, proj
    assert b"mbsync near" in list(proj.values())[0]


def test_fetchmail(R):
    # fetchmail over IMAPS takes every unseen message of INBOX, hands it
    # to an MDA, and marks it seen (--keep leaves it on the server).
    m = login(srv)
    m.create("Fetch")
    m.append("Fetch", None, None, message("for fetchmail 1"))
    m.append("Fetch", None, None, message("for fetchmail 2"))
    m.append("Fetch", "(\\Seen)", None, message("already seen"))
    out = os.path.join(R.tmp, "fetched")
    rc = os.path.join(R.tmp, "fetchmailrc")
    with open(rc, "w") as f:
        f.write('poll 127.0.0.1 service %d protocol IMAP\n'
                '  user "%s" password "%s" is "%s" here\n'
                '  folder "Fetch" ssl no sslcertck keep\n'
                '  mda "cat >> %s"\n'
                % (srv.port("imaps"), USER, PASSWORDS[USER],
                   os.environ.get("USER", "root"), out))
    os.chmod(rc, 0o600)
    p = subprocess.run(["fetchmail", "-f", rc, "--nosyslog",
                        "--pidfile", os.path.join(R.tmp, "fm.pid")],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=R.tmp))
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    with open(out, "rb") as f:
        got = f.read()
    assert b"for fetchmail 1" in got and b"for fetchmail 2" in got, got
    assert b"already seen" not in got, got
    m.select("Fetch")
    typ, data = m.search(None, "UNSEEN")
    assert data == [b""], data
    m.logout()


for t in (test_curl_list_fetch_search, test_curl_upload_and_custom_request,
          test_mbsync_both_ways, test_fetchmail):
    R.run(t)
finish(R, srv)
