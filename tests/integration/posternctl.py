#!/usr/bin/env python3
"""posternctl against the auth_passwd module: users and aliases added,
listed, changed and removed through the files, passwords only from
standard input, and the exit status and message of every kind of error.
"""
import os
import pwd
import re
import stat
import time

from testlib import (AUTH_PASSWD_SO, STORAGE_MAILDIR_SO, TEST_MODULES,
                     Daemon, Runner, Skip, posternctl, posternd)

R = Runner("posternctl")

USERS_HEAD = "# users of example.org\n# keep this comment\n"
ALIASES_HEAD = "# aliases\n"


def config(directory, modules=None):
    if modules is None:
        modules = '"%s"' % AUTH_PASSWD_SO
    os.makedirs(directory, exist_ok=True)
    return R.write(os.path.join(directory, "postern.conf"), """\
# written by tests/integration/posternctl.py
modules = [ %s ];
module_dir = "%s";
state_dir = "%s/state";
run_dir = "%s/run";
auth_passwd = {
  argon2_opslimit = 1;
  argon2_memlimit = "8M";
  domains = [ "example.net" ];
};
""" % (modules, TEST_MODULES, R.tmp, R.tmp))


CONF = config(os.path.join(R.tmp, "etc"))
USERS = os.path.join(R.tmp, "etc", "users")
ALIASES = os.path.join(R.tmp, "etc", "aliases")
with open(USERS, "w") as f:
    f.write(USERS_HEAD)
os.chmod(USERS, 0o640)
with open(ALIASES, "w") as f:
    f.write(ALIASES_HEAD)


def ctl(*args, stdin=None):
    return posternctl("-c", CONF, *args, stdin=stdin)


def ok(*args, stdin=None):
    status, out, err = ctl(*args, stdin=stdin)
    assert status == 0, (args, status, out, err)
    return out


def read(path):
    with open(path) as f:
        return f.read()


def hash_of(name):
    for line in read(USERS).splitlines():
        if line.startswith(name + ":"):
            return line.split(":")[1]
    return None


def test_the_configuration_checks(r):
    status, out = posternd("-t", "-c", CONF)
    assert status == 0, out


def test_user_add_writes_an_argon2id_hash(r):
    ok("user", "add", "Alice@Example.org", "--home", "/srv/alice",
       "--mail", "maildir:~/Maildir", "--password-stdin",
       stdin="s3cret pass\n")
    text = read(USERS)
    assert text.startswith(USERS_HEAD), text
    assert re.search(r"^alice@example\.org:\{ARGON2ID\}\$argon2id\$v=19\$"
                     r"[^:]+::::/srv/alice::userdb_mail=maildir:~/Maildir$",
                     text, re.M), text
    assert "s3cret" not in text
    # The workers read the file as another user: its mode is kept.
    assert stat.S_IMODE(os.stat(USERS).st_mode) == 0o640


def test_user_add_twice_fails(r):
    status, out, err = ctl("user", "add", "alice@example.org",
                           "--password-stdin", stdin="x\n")
    assert status == 1, (status, err)
    assert "already exists" in err, err


def test_user_list(r):
    ok("user", "add", "bob@example.org", "--password-stdin", stdin="b\n")
    out = ok("user", "list")
    assert out == "alice@example.org\nbob@example.org\n", out


def test_user_passwd_changes_the_hash(r):
    before = hash_of("alice@example.org")
    ok("user", "passwd", "alice@example.org", "--password-stdin",
       stdin="another one\n")
    after = hash_of("alice@example.org")
    assert before and after and before != after
    assert after.startswith("{ARGON2ID}$argon2id$"), after
    # The other fields stay.
    assert "/srv/alice::userdb_mail=maildir:~/Maildir" in read(USERS)
    assert read(USERS).startswith(USERS_HEAD)


def test_user_passwd_of_an_unknown_user(r):
    status, out, err = ctl("user", "passwd", "nobody@example.org",
                           "--password-stdin", stdin="x\n")
    assert status == 1, (status, err)
    assert "nobody@example.org: no such user" in err, err


def test_password_only_from_stdin_or_a_terminal(r):
    status, out, err = ctl("user", "add", "carol@example.org")
    assert status == 1, (status, err)
    assert "not a terminal" in err and "--password-stdin" in err, err
    status, out, err = ctl("user", "add", "carol@example.org",
                           "--password-stdin", stdin="")
    assert status == 1, (status, err)
    assert "no password" in err, err
    status, out, err = ctl("user", "add", "carol@example.org",
                           "--password-stdin", stdin="\n")
    assert status == 1 and "empty password" in err, err
    assert "carol" not in read(USERS)


def test_user_del(r):
    ok("user", "del", "bob@example.org")
    assert "bob@" not in read(USERS)
    status, out, err = ctl("user", "del", "bob@example.org")
    assert status == 1, (status, err)
    assert "%s: no user 'bob@example.org'" % USERS in err, err
    assert read(USERS).startswith(USERS_HEAD)


def test_aliases(r):
    ok("alias", "add", "Sales@Example.org", "alice@example.org")
    ok("alias", "add", "sales@example.org", "bob@remote.net",
       "alice@example.org")
    ok("alias", "add", "@example.net", "alice@example.org")
    out = ok("alias", "list")
    assert out == ("@example.net: alice@example.org\n"
                   "sales@example.org: alice@example.org, "
                   "bob@remote.net\n"), out
    text = read(ALIASES)
    assert text.startswith(ALIASES_HEAD), text
    ok("alias", "del", "@example.net")
    assert ok("alias", "list") == ("sales@example.org: alice@example.org, "
                                   "bob@remote.net\n")
    status, out, err = ctl("alias", "del", "nope@example.org")
    assert status == 1, (status, err)
    assert "%s: no alias 'nope@example.org'" % ALIASES in err, err
    status, out, err = ctl("alias", "add", "x@example.org", "|/bin/sh")
    assert status == 1 and "not supported" in err, err


def test_bad_usage_exits_2(r):
    for args in ([], ["user"], ["user", "frob"], ["user", "add"],
                 ["user", "add", "a@b", "c@d"],
                 ["user", "add", "a@b", "--bogus"],
                 ["user", "del", "a@b", "--password-stdin"],
                 ["alias", "add", "a@b"], ["mailbox", "list"]):
        status, out, err = ctl(*args)
        assert status == 2, (args, status, err)
        assert "usage: posternctl" in err, (args, err)
    status, out, err = posternctl("-x")
    assert status == 2, (status, err)


def test_mailbox_list_without_storage(r):
    status, out, err = ctl("mailbox", "list", "alice@example.org")
    assert status == 1, (status, err)
    assert "no storage module is loaded" in err, err


def test_mailbox_list_through_storage(r):
    conf = config(os.path.join(R.tmp, "storage"),
                  modules='"%s", "%s"' % (AUTH_PASSWD_SO, STORAGE_MAILDIR_SO))
    home = os.path.join(R.tmp, "home", "erin")
    status, out, err = posternctl("-c", conf, "user", "add",
                                  "erin@example.org", "--home", home,
                                  "--password-stdin", stdin="pw\n")
    assert status == 0, err
    status, out, err = posternctl("-c", conf, "mailbox", "list",
                                  "erin@example.org")
    assert status == 0, (status, err)
    assert re.search(r"^INBOX( |$)", out, re.M), out
    status, out, err = posternctl("-c", conf, "mailbox", "list",
                                  "nobody@example.org")
    assert status == 1 and "nobody@example.org: no such user" in err, err


def test_without_an_auth_module(r):
    conf = r.write("noauth/postern.conf", "modules = [ ];\n")
    status, out, err = posternctl("-c", conf, "user", "list")
    assert status == 1, (status, err)
    assert "no auth module is loaded" in err and conf in err, err


def test_a_broken_configuration_names_file_and_line(r):
    path = r.write("broken/postern.conf", "modules = [ ];\nworkers = ;\n")
    status, out, err = posternctl("-c", path, "user", "list")
    assert status == 1, (status, err)
    assert path + ":2:" in err, err
    status, out, err = posternctl("-c", os.path.join(R.tmp, "none.conf"),
                                  "user", "list")
    assert status == 1 and "none.conf" in err, err


def test_posternd_workers_read_what_posternctl_wrote(r):
    """The files posternctl writes are what a worker loads at start (as
    `user`, so a root run checks the access the files keep)."""
    etc = os.path.join(R.tmp, "daemon")
    conf = config(etc)
    with open(conf, "a") as f:
        f.write('workers = 1;\nlog_level = "info";\nuser = "%s";\n' %
                ("nobody" if os.geteuid() == 0 else ""))
    users = os.path.join(etc, "users")
    with open(users, "w") as f:
        f.write("# for the workers\n")
    os.chmod(users, 0o644)
    os.chmod(R.tmp, 0o755)
    status, out, err = posternctl("-c", conf, "user", "add",
                                  "dave@example.org", "--password-stdin",
                                  stdin="pw\n")
    assert status == 0, err
    d = Daemon(conf)
    try:
        deadline = time.time() + 15
        want = "%s: 1 user(s), 0 alias(es), 2 local domain(s)" % users
        while want not in d.read_log() and time.time() < deadline:
            assert d.proc.poll() is None, d.read_log()
            time.sleep(0.1)
        assert want in d.read_log(), d.read_log()
    finally:
        d.stop()


def test_a_new_users_file_is_readable_by_the_workers(r):
    """Run as root, `user add` on a fresh install makes the users file
    with the workers' group, so a daemon running as `user` reads it."""
    if os.geteuid() != 0:
        raise Skip("not root: no privilege drop to check")
    etc = os.path.join(R.tmp, "fresh")
    conf = config(etc)
    with open(conf, "a") as f:
        f.write('workers = 1;\nlog_level = "info";\nuser = "nobody";\n')
    os.chmod(R.tmp, 0o755)
    os.chmod(etc, 0o755)
    users = os.path.join(etc, "users")
    status, out, err = posternctl("-c", conf, "user", "add",
                                  "erin@example.org", "--password-stdin",
                                  stdin="pw\n")
    assert status == 0, err
    st = os.stat(users)
    nobody = pwd.getpwnam("nobody")
    assert st.st_gid == nobody.pw_gid, (st.st_gid, nobody.pw_gid)
    assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
    d = Daemon(conf)
    try:
        deadline = time.time() + 15
        want = "%s: 1 user(s), 0 alias(es), 2 local domain(s)" % users
        while want not in d.read_log() and time.time() < deadline:
            assert d.proc.poll() is None, d.read_log()
            time.sleep(0.1)
        assert want in d.read_log(), d.read_log()
    finally:
        d.stop()


for case in (test_the_configuration_checks,
             test_user_add_writes_an_argon2id_hash,
             test_user_add_twice_fails,
             test_user_list,
             test_user_passwd_changes_the_hash,
             test_user_passwd_of_an_unknown_user,
             test_password_only_from_stdin_or_a_terminal,
             test_user_del,
             test_aliases,
             test_bad_usage_exits_2,
             test_mailbox_list_without_storage,
             test_mailbox_list_through_storage,
             test_without_an_auth_module,
             test_a_broken_configuration_names_file_and_line,
             test_posternd_workers_read_what_posternctl_wrote,
             test_a_new_users_file_is_readable_by_the_workers):
    R.run(case)
R.finish()
