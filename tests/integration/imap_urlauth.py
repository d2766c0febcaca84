#!/usr/bin/env python3
"""URLAUTH (RFC 4467) against a real posternd, with Python's imaplib:
GENURLAUTH and URLFETCH of whole messages, sections and partials (the
octets FETCH BODY.PEEK[section]<partial> gives), a tampered token, a
URL of another user or for another user, submit+ URLs, RESETKEY of one
mailbox and of all, expiry, anonymous and authuser access, a mailbox
deleted and created again, a UIDVALIDITY that does not match, the
limits (URLs per command, URL length), a 3 MiB part sent in steps,
and the keys kept across a restart in a file only the owner reads.
"""
import imaplib
import os
import re
import stat
import time

from imaptest import PASSWORDS, Raw, finish, login, start_server
from testlib import Runner

# imaplib sends what it knows of; these are RFC 4467's
for _name in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands[_name] = ("AUTH", "SELECTED")

R = Runner("imap_urlauth")
srv = start_server(R)

ALICE = "alice@example.org"
BOB = "bob@example.org"
BASE = "imap://alice%40example.org@localhost"

MULTI = (b"From: carol@example.net\r\nTo: alice@example.org\r\n"
         b"Subject: parts\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
         b"preamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
         b"first part, plain text\r\n--XX\r\n"
         b"Content-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\n"
         b"AAECAwQFBgcICQ==\r\n--XX--\r\n")


def q(s):
    return '"%s"' % s


def genurlauth(m, *urls, mech="INTERNAL"):
    """The URLs GENURLAUTH gives, or (typ, data) when it is not OK."""
    args = []
    for u in urls:
        args += [q(u), mech]
    typ, data = m._simple_command("GENURLAUTH", *args)
    if typ != "OK":
        return typ, data
    typ, data = m._untagged_response(typ, data, "GENURLAUTH")
    return re.findall(r'"([^"]*)"', data[-1].decode())


def urlfetch(m, *urls):
    """[(url, octets or None)] in the order URLFETCH answered."""
    typ, data = m._simple_command("URLFETCH", *[q(u) for u in urls])
    assert typ == "OK", (typ, data)
    typ, data = m._untagged_response(typ, data, "URLFETCH")
    out = []
    for item in data:
        if isinstance(item, tuple):
            head, body = item
            out.append((re.match(rb'"([^"]*)"', head).group(1).decode(),
                        body))
        elif item:
            head = item.decode()
            mo = re.match(r'"([^"]*)" NIL$', head)
            assert mo, head
            out.append((mo.group(1), None))
    return out


def fetch_one(m, url):
    res = urlfetch(m, url)
    assert len(res) == 1 and res[0][0] == url, res
    return res[0][1]


a = login(srv)
b = login(srv, BOB)
a.append("INBOX", None, None, MULTI)
a.append("INBOX", None, None, b"Subject: two\r\n\r\nsecond message\r\n")
a.select("INBOX")
typ, data = a.status("INBOX", "(UIDVALIDITY)")
UIDVALIDITY = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))


def test_capability(R):
    typ, data = a.capability()
    assert b"URLAUTH" in data[0].split(), data
    # not before login
    r = Raw(srv.port("imap"))
    caps = r.cmd("c", "CAPABILITY")[0]
    assert "URLAUTH" not in caps.split(), caps
    out = r.cmd("u", 'URLFETCH "%s/INBOX/;UID=1;URLAUTH=anonymous"' % BASE)
    assert out[-1].startswith("u BAD"), out


def test_whole_message(R):
    rump = "%s/INBOX;UIDVALIDITY=%d/;UID=1;URLAUTH=user+%s" % (
        BASE, UIDVALIDITY, "alice%40example.org")
    url, = genurlauth(a, rump)
    assert url.startswith(rump + ":INTERNAL:"), url
    assert re.fullmatch(r"[0-9a-f]{40}", url.split(":")[-1]), url
    assert fetch_one(a, url) == MULTI
    # URLFETCH does not set \Seen (it is BODY.PEEK)
    typ, data = a.uid("FETCH", "1", "(FLAGS)")
    assert b"\\Seen" not in data[0], data
    # the same token again (no new key), in one command with another
    url2, url3 = genurlauth(a, rump, rump.replace("UID=1", "UID=2"))
    assert url2 == url, (url, url2)
    res = urlfetch(a, url, url3)
    assert res == [(url, MULTI),
                   (url3, b"Subject: two\r\n\r\nsecond message\r\n")], res


def test_sections_and_partials(R):
    for section, partial, item in (
            ("1", None, "1]"), ("2", None, "2]"), ("HEADER", None, "HEADER]"),
            ("TEXT", None, "TEXT]"), ("1.MIME", None, "1.MIME]"),
            ("2.MIME", None, "2.MIME]"), (None, "5.20", "]<5.20>"),
            ("1", "6.4", "1]<6.4>"), ("TEXT", "1000.5", "TEXT]<1000.5>"),
            ("2", "3", "2]<3.999999>"),
            (None, "0", "]<0.%d>" % len(MULTI))):
        rump = BASE + "/INBOX/;UID=1"
        if section:
            rump += "/;SECTION=" + section
        if partial:
            rump += "/;PARTIAL=" + partial
        rump += ";URLAUTH=authuser"
        url, = genurlauth(a, rump)
        got = fetch_one(a, url)
        typ, data = a.uid("FETCH", "1", "(BODY.PEEK[%s)" % item)
        want = data[0][1] if isinstance(data[0], tuple) else b""
        assert got == want, (rump, got, want)
    # a section the message does not have: NIL
    url, = genurlauth(a, BASE + "/INBOX/;UID=1/;SECTION=7;URLAUTH=authuser")
    assert fetch_one(a, url) is None


NESTED = (b"From: src@example.net\r\nSubject: nested\r\n"
          b"X-Folded: a\r\n\tb\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=\"qq\"\r\n\r\n"
          b"--qq\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
          b"--qq\r\nContent-Type: message/rfc822\r\n\r\n"
          b"From: inner@example.net\r\nSubject: inside\r\n"
          b"X-Folded: one\r\n two\r\n\r\ninner body\r\n--qq--\r\n")


def test_header_fields(R):
    """RFC 5092 isection is RFC 3501's section: HEADER.FIELDS (.NOT)
    lists, percent-encoded or not, any case, and HEADER, TEXT, MIME of
    parts, as FETCH BODY.PEEK gives them; broken lists refused."""
    typ, d = a.append("INBOX", None, None, NESTED)
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", d[0]).group(1))
    for section, partial, item in (
            ("HEADER.FIELDS%20(SUBJECT%20FROM)", None,
             "HEADER.FIELDS (SUBJECT FROM)]"),
            ("HEADER.FIELDS (Subject From)", None,
             "HEADER.FIELDS (Subject From)]"),
            ("header.fields.not%20(x-folded)", None,
             "HEADER.FIELDS.NOT (X-Folded)]"),
            ("HEADER.FIELDS%20(%22X-Folded%22%20To)", None,
             "HEADER.FIELDS (X-Folded To)]"),
            ("HEADER.FIELDS%20(nosuch)", None, "HEADER.FIELDS (nosuch)]"),
            ("HEADER.FIELDS%20(Subject%20X-Folded)", "4.9",
             "HEADER.FIELDS (Subject X-Folded)]<4.9>"),
            ("2.HEADER.FIELDS%20(Subject%20X-Folded)", None,
             "2.HEADER.FIELDS (Subject X-Folded)]"),
            ("2.HEADER.FIELDS.NOT%20(Subject)", "3",
             "2.HEADER.FIELDS.NOT (Subject)]<3.99999>"),
            ("2.HEADER", None, "2.HEADER]"), ("2.TEXT", None, "2.TEXT]"),
            ("2.MIME", None, "2.MIME]"), ("1.MIME", None, "1.MIME]"),
            ("2.1", None, "2.1]")):
        rump = BASE + "/INBOX/;UID=%d/;SECTION=%s" % (uid, section)
        if partial:
            rump += "/;PARTIAL=" + partial
        rump += ";URLAUTH=authuser"
        url, = genurlauth(a, rump)
        got = fetch_one(b, url)
        typ, data = a.uid("FETCH", str(uid), "(BODY.PEEK[%s)" % item)
        want = data[0][1] if isinstance(data[0], tuple) else b""
        assert got == want, (rump, got, want)
        assert want or partial, (item, data)
    # broken or over-long lists: GENURLAUTH refuses them, URLFETCH NIL
    for section in ("HEADER.FIELDS%20(From", "HEADER.FIELDS%20From)",
                    "HEADER.FIELDS%20()", "HEADER.FIELDS%20(From%20)",
                    "HEADER.FIELDS%20((From))", "HEADER.FIELDS(From)",
                    "HEADER.FIELDS%20(From)x", "HEADER.FIELDS%20(%22From)",
                    "HEADER.FIELDS%20(" + "%20".join(["X"] * 129) + ")",
                    "MIME"):
        rump = BASE + "/INBOX/;UID=%d/;SECTION=%s;URLAUTH=authuser" % (
            uid, section)
        typ, data = genurlauth(a, rump)
        assert typ == "NO", (section, typ, data)
        assert fetch_one(b, rump + ":INTERNAL:" + "0" * 40) is None
    # 128 names is FETCH's limit too
    rump = BASE + "/INBOX/;UID=%d/;SECTION=HEADER.FIELDS%%20(%s)" \
        ";URLAUTH=authuser" % (uid, "%20".join(["X"] * 127 + ["From"]))
    url, = genurlauth(a, rump)
    assert fetch_one(b, url) == b"From: src@example.net\r\n\r\n"


def test_unknown_user_same_answer(R):
    """A URL of a user that does not exist and one of an existing user
    with a wrong token get the same NIL and the same tagged answer (the
    timing is measured by tests/bench/urlauth_timing.py)."""
    url, = genurlauth(a, BASE + "/INBOX/;UID=2;URLAUTH=authuser")
    token = url.split(":")[-1]
    wrong = url[:-len(token)] + ("1" if token[0] == "0" else "0") + \
        token[1:]
    ghost = url.replace("alice%40example.org", "nobody%40example.org")
    nodomain = url.replace("alice%40example.org@localhost",
                           "ghost@example.org")
    r = Raw(srv.port("imap"))
    r.login(BOB)
    answers = []
    for u in (wrong, ghost, nodomain):
        out = r.cmd("f", 'URLFETCH "%s"' % u)
        answers.append([line.replace(u, "URL") for line in out])
    assert answers[0] == ['* URLFETCH "URL" NIL', answers[0][1]], answers
    assert answers[0][1].startswith("f OK"), answers
    assert answers[1] == answers[0] and answers[2] == answers[0], answers
    r.cmd("z", "LOGOUT")


def test_tampered(R):
    url, = genurlauth(a, BASE + "/INBOX/;UID=1;URLAUTH=anonymous")
    token = url.split(":")[-1]
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad in (url[:-len(token)] + flipped,
                url[:-len(token)] + token[:-1],          # short
                url[:-len(token)] + token + "0",         # long
                url.replace("UID=1", "UID=2"),           # other message
                url.replace("anonymous", "authuser"),    # other access
                url.replace(":INTERNAL:", ":XSAMPLE:"),
                url.replace("INBOX", "Other"),
                "imap://bob%40example.org@localhost" +
                url[len(BASE):],                         # other owner
                "not a url", ""):
        assert fetch_one(b, bad) is None, bad
    # upper-case hex is the same token (HEXDIG)
    assert fetch_one(b, url[:-len(token)] + token.upper()) == MULTI


def test_access(R):
    mk = BASE + "/INBOX/;UID=2;URLAUTH="
    anon, auth, u_bob, u_alice, submit = genurlauth(
        a, mk + "anonymous", mk + "authuser", mk + "user+bob%40example.org",
        mk + "user+alice%40example.org", mk + "submit+alice%40example.org")
    two = b"Subject: two\r\n\r\nsecond message\r\n"
    # bob reads alice's mailbox through the URLs that let him
    assert fetch_one(b, anon) == two
    assert fetch_one(b, auth) == two
    assert fetch_one(b, u_bob) == two
    assert fetch_one(b, u_alice) is None
    # alice herself only through hers: user+bob is bob's
    assert fetch_one(a, u_bob) is None
    assert fetch_one(a, u_alice) == two
    # submit+ is a submission server's (BURL), no IMAP session's
    assert fetch_one(a, submit) is None
    assert fetch_one(b, submit) is None


def test_genurlauth_refused(R):
    rump = BASE + "/INBOX/;UID=1;URLAUTH=anonymous"
    # alice's URL in the user@domain form imaptest and Dovecot write
    url, = genurlauth(a, "imap://alice@example.org/INBOX/;UID=2;"
                      "URLAUTH=authuser")
    assert fetch_one(b, url) == b"Subject: two\r\n\r\nsecond message\r\n"
    typ, data = genurlauth(a, "imap://bob@example.org/INBOX/;UID=2;"
                           "URLAUTH=authuser")
    assert typ == "NO", (typ, data)
    # another user's URL, a URL with a token, another mechanism
    other = "imap://bob%40example.org@localhost/INBOX/;UID=1;" \
            "URLAUTH=anonymous"
    typ, data = genurlauth(a, other)
    assert typ == "NO", (typ, data)
    url, = genurlauth(a, rump)
    typ, data = genurlauth(a, url)
    assert typ == "NO", (typ, data)
    typ, data = genurlauth(a, rump, mech="XSAMPLE")
    assert typ == "NO", (typ, data)
    for bad in ("/INBOX/;UID=1;URLAUTH=anonymous",      # relative
                BASE + "/INBOX/;UID=1",                 # no URLAUTH
                "imap://alice%40example.org@mail.example.com/INBOX/"
                ";UID=1;URLAUTH=anonymous",             # another host
                BASE + "/Nosuch/;UID=1;URLAUTH=anonymous"):
        typ, data = genurlauth(a, bad)
        assert typ == "NO", (bad, typ, data)
    r = Raw(srv.port("imap"))
    r.login()
    for bad in ("GENURLAUTH", 'GENURLAUTH "%s"' % rump,
                'GENURLAUTH "%s" INTERNAL extra' % rump, "URLFETCH",
                "RESETKEY INBOX (x)"):
        out = r.cmd("g", bad)
        assert out[-1].startswith("g BAD"), (bad, out)
    out = r.cmd("g", "RESETKEY INBOX XSAMPLE")
    assert out[-1].startswith("g NO"), out
    r.cmd("z", "LOGOUT")


def test_resetkey(R):
    inbox, = genurlauth(a, BASE + "/INBOX/;UID=1;URLAUTH=authuser")
    a.create("Keep")
    a.append("Keep", None, None, b"Subject: keep\r\n\r\nkept\r\n")
    keep, = genurlauth(a, BASE + "/Keep/;UID=1;URLAUTH=authuser")
    assert fetch_one(b, inbox) == MULTI
    assert fetch_one(b, keep) == b"Subject: keep\r\n\r\nkept\r\n"
    typ, data = a._simple_command("RESETKEY", "INBOX", "INTERNAL")
    assert typ == "OK" and b"URLMECH INTERNAL" in data[0], (typ, data)
    assert fetch_one(b, inbox) is None
    assert fetch_one(b, keep) == b"Subject: keep\r\n\r\nkept\r\n"
    again, = genurlauth(a, BASE + "/INBOX/;UID=1;URLAUTH=authuser")
    assert again != inbox
    assert fetch_one(b, again) == MULTI
    # RESETKEY without arguments: every key of the user
    typ, data = a._simple_command("RESETKEY")
    assert typ == "OK", (typ, data)
    assert fetch_one(b, again) is None
    assert fetch_one(b, keep) is None
    assert fetch_one(b, inbox) is None


def test_expiry(R):
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    later = time.strftime("%Y-%m-%dT%H:%M:%S+02:00",
                          time.gmtime(time.time() + 7200 + 3600))
    old, short, ok = genurlauth(
        a, BASE + "/INBOX/;UID=2;EXPIRE=%s;URLAUTH=authuser" % past,
        BASE + "/INBOX/;UID=2;EXPIRE=%s;URLAUTH=authuser" % soon,
        BASE + "/INBOX/;UID=2;EXPIRE=%s;URLAUTH=authuser" % later)
    two = b"Subject: two\r\n\r\nsecond message\r\n"
    assert fetch_one(b, old) is None
    assert fetch_one(b, short) == two
    assert fetch_one(b, ok) == two
    time.sleep(4)
    assert fetch_one(b, short) is None
    assert fetch_one(b, ok) == two


def test_recreated_mailbox(R):
    a.create("Gone")
    a.append("Gone", None, None, b"Subject: g\r\n\r\ngone\r\n")
    url, = genurlauth(a, BASE + "/Gone/;UID=1;URLAUTH=authuser")
    typ, data = a.status("Gone", "(UIDVALIDITY)")
    uv = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
    wrong, = genurlauth(a, BASE + "/Gone;UIDVALIDITY=%d/;UID=1;"
                        "URLAUTH=authuser" % (uv + 1))
    assert fetch_one(b, url) == b"Subject: g\r\n\r\ngone\r\n"
    assert fetch_one(b, wrong) is None
    a.delete("Gone")
    assert fetch_one(b, url) is None
    a.create("Gone")
    a.append("Gone", None, None, b"Subject: g\r\n\r\nanother\r\n")
    # the same name and UID, another incarnation: the old key is void
    assert fetch_one(b, url) is None


def test_limits(R):
    url, = genurlauth(a, BASE + "/INBOX/;UID=2;URLAUTH=authuser")
    res = urlfetch(b, *([url] * 64))
    assert len(res) == 64 and all(d is not None for _, d in res), len(res)
    typ, data = b._simple_command("URLFETCH", *[q(url)] * 65)
    assert typ == "NO" and b"[LIMIT]" in data[-1], (typ, data)
    # a URL over 2048 octets: NIL (echoed as a literal, > 1 KiB)
    r = Raw(srv.port("imap"))
    r.login(BOB)
    long_url = url + "x" * 2100
    out = r.cmd("l", 'URLFETCH "%s"' % long_url)
    assert out[0] == "* URLFETCH {%d}" % len(long_url), out[:1]
    assert out[1] == long_url + " NIL" and out[2].startswith("l OK"), out
    r.cmd("z", "LOGOUT")
    long_rump = BASE + "/INBOX/;UID=2/;SECTION=" + "1." * 1100 + \
        "1;URLAUTH=authuser"
    typ, data = genurlauth(a, long_rump)
    assert typ == "NO" and b"[LIMIT]" in data[-1], (typ, data)
    # nothing leaks: a NIL for a message that is not there
    url, = genurlauth(a, BASE + "/INBOX/;UID=999;URLAUTH=authuser")
    assert fetch_one(b, url) is None


def test_large_part(R):
    body = b"".join(b"%07d" % i + b"x" * 56 + b"\r\n" for i in range(48000))
    big = b"Subject: big\r\n\r\n" + body
    a.append("INBOX", None, None, big)
    typ, data = a.uid("SEARCH", "SUBJECT", "big")
    uid = int(data[0].split()[-1])
    url, = genurlauth(a, BASE + "/INBOX/;UID=%d/;SECTION=TEXT;"
                      "URLAUTH=authuser" % uid)
    small, = genurlauth(a, BASE + "/INBOX/;UID=2;URLAUTH=authuser")
    res = urlfetch(b, url, small, url)
    assert [u for u, _ in res] == [url, small, url], res
    assert res[0][1] == body and res[2][1] == body
    assert res[1][1] == b"Subject: two\r\n\r\nsecond message\r\n"


def test_restart_keeps_keys(R):
    m = login(srv)
    url, = genurlauth(m, BASE + "/INBOX/;UID=2;URLAUTH=authuser")
    m.logout()
    path = os.path.join(srv.maildir(ALICE), "postern-urlauth-keys")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    with open(path) as f:
        text = f.read()
    assert re.fullmatch(r"(\d+ [0-9a-f]{64} .+\n)+", text), text
    srv.stop()
    srv.start()
    m = login(srv, BOB)
    assert fetch_one(m, url) == b"Subject: two\r\n\r\nsecond message\r\n"
    m.logout()


R.run(test_capability)
R.run(test_whole_message)
R.run(test_sections_and_partials)
R.run(test_header_fields)
R.run(test_unknown_user_same_answer)
R.run(test_tampered)
R.run(test_access)
R.run(test_genurlauth_refused)
R.run(test_resetkey)
R.run(test_expiry)
R.run(test_recreated_mailbox)
R.run(test_limits)
R.run(test_large_part)
for m in (a, b):
    try:
        m.logout()
    except (imaplib.IMAP4.error, OSError):
        pass
R.run(test_restart_keeps_keys)
finish(R, srv)
