"""A complete postern on loopback for the protocol tests: auth_passwd with
users made by posternctl, storage_maildir under a temporary directory, a
self-signed certificate, and whatever protocol modules a test names.

    from mailserver import MailServer
    srv = MailServer(R, ["smtp"], conf='''
    smtp = { listen = ( { port = %(smtp)d; } ); tls = %(tls)s; };
    ''', ports=["smtp"])
    srv.add_user("alice@example.org", "secret")
    srv.start()
    ... srv.port("smtp"), srv.maildir("alice@example.org") ...
    srv.stop()

`storage` is libconfig text added inside the storage_maildir group
(quota limits).  `conf` is libconfig text appended to the configuration, with %(NAME)d
replaced by the port allocated for each name in `ports` and %(tls)s by
the group { cert = ...; key = ...; } of the test certificate.  Protocol
modules are named by their directory under modules/ ("smtp" loads
modules/smtp/.libs/smtp.so).  Users get cheap argon2id parameters, so
logins in tests take milliseconds, and auth_failure_delay is short.
Run as root, the workers run as "nobody" and the server's directory is
handed to it, so a root run checks the access rights a real one needs.
"""
import os
import pwd

from testlib import (AUTH_PASSWD_SO, STORAGE_MAILDIR_SO, Daemon, make_cert,
                     free_port, module_so, posternctl)


class MailServer:
    def __init__(self, runner, modules, conf="", ports=(), workers=1,
                 failure_delay="100ms", name="srv", storage="",
                 argon2_memlimit="8M"):
        self.dir = os.path.join(runner.tmp, name)
        os.makedirs(os.path.join(self.dir, "etc"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        self.mail = os.path.join(self.dir, "mail")
        self.ports = {p: free_port() for p in ports}
        self.cert, self.key = make_cert(self.dir)
        self.daemon = None
        self.runner_tmp = runner.tmp
        self.user = "nobody" if os.geteuid() == 0 else ""
        names = [AUTH_PASSWD_SO, STORAGE_MAILDIR_SO]
        names += [module_so(m, m) if "/" not in m else m for m in modules]
        values = dict(self.ports)
        values["tls"] = '{ cert = "%s"; key = "%s"; }' % (self.cert,
                                                         self.key)
        self.conf_path = os.path.join(self.dir, "etc", "postern.conf")
        with open(self.conf_path, "w") as f:
            f.write("""\
# written by tests/integration/mailserver.py
modules = [ %s ];
state_dir = "%s/state";
run_dir = "%s/run";
workers = %d;
user = "%s";
shutdown_timeout = "5s";
auth_failure_delay = "%s";
auth_passwd = {
  argon2_opslimit = 1;
  argon2_memlimit = "%s";
};
storage_maildir = { location = "%s/%%d/%%n"; %s };
""" % (", ".join('"%s"' % n for n in names), self.dir, self.dir, workers,
                self.user, failure_delay, argon2_memlimit, self.mail,
                storage))
            f.write(conf % values)
        for f in ("users", "aliases"):
            open(os.path.join(self.dir, "etc", f), "a").close()

    def ctl(self, *args, stdin=None):
        status, out, err = posternctl("-c", self.conf_path, *args,
                                      stdin=stdin)
        assert status == 0, (args, status, out, err)
        self._hand_over()
        return out

    def _hand_over(self):
        """Gives the server's files to the workers' user (root runs)."""
        if not self.user:
            return
        pw = pwd.getpwnam(self.user)
        os.chmod(self.runner_tmp, 0o755)
        for top, dirs, files in os.walk(self.dir):
            for n in [top] + [os.path.join(top, f) for f in dirs + files]:
                os.lchown(n, pw.pw_uid, pw.pw_gid)

    def add_user(self, name, password):
        self.ctl("user", "add", name, "--password-stdin",
                 stdin=password + "\n")

    def add_alias(self, address, *targets):
        self.ctl("alias", "add", address, *targets)

    def port(self, name):
        return self.ports[name]

    def maildir(self, user):
        """The user's Maildir (INBOX) path."""
        local, _, domain = user.partition("@")
        return os.path.join(self.mail, domain, local)

    def messages(self, user, folder=""):
        """The contents (bytes) of every message in new/ and cur/ of the
        user's INBOX or of `folder` ("Sent" is .Sent), oldest first."""
        base = self.maildir(user)
        if folder:
            base = os.path.join(base, "." + folder)
        files = []
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if os.path.isdir(d):
                files += [os.path.join(d, n) for n in os.listdir(d)]
        files.sort(key=lambda p: (os.stat(p).st_mtime_ns,
                                  os.path.basename(p)))
        out = []
        for p in files:
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def start(self):
        self._hand_over()
        self.daemon = Daemon(self.conf_path)
        for p in self.ports.values():
            self.daemon.wait_listening(p)
        return self

    def log(self):
        return self.daemon.read_log() if self.daemon else ""

    def stop(self):
        if self.daemon is not None:
            rc = self.daemon.stop()
            self.daemon = None
            return rc
        return 0
