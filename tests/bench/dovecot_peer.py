"""Dovecot from Debian as the peer of the IMAP benchmarks, configured
once (../shared/PEERS.md's fair comparison: loopback, no TLS, plaintext
LOGIN, passwd-file users, Maildir, the same hashes as postern where the
login's cost is measured).

    conf = Dovecot(tmp, port, users).start()
    ...
    d.stop()

users: (name, password field) pairs, the field as passwd-file takes it
("{PLAIN}secret", or an argon2id hash in crypt form).  mail: the
mail_location's directory, %u for the user's name.  tuning: extra
configuration text, e.g. PERFORMANCE (the manual's high-performance
setup: long-lived login and imap processes serving many clients).
"""
import os
import pwd
import socket
import subprocess
import time

PERFORMANCE = """
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 20000
}
service imap {
  service_count = 0
  client_limit = 1000
  vsz_limit = 1G
}
default_client_limit = 40000
default_process_limit = 1000
"""

CONF = """\
base_dir = %(dv)s/run
state_dir = %(dv)s/state
log_path = %(dv)s/dovecot.log
ssl = no
protocols = imap
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:%(mail)s
first_valid_uid = 0
mail_max_userip_connections = 100000
passdb {
  driver = passwd-file
  args = username_format=%%u %(dv)s/passwd
}
userdb {
  driver = static
  args = uid=%(uid)d gid=%(gid)d home=%(home)s
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
"""


class Dovecot:
    def __init__(self, tmp, port, users, mail=None, tuning="",
                 name="dovecot"):
        self.dir = os.path.join(tmp, name)
        self.port = port
        self.users = list(users)
        self.mail = mail or os.path.join(self.dir, "home", "%u", "Maildir")
        self.tuning = tuning
        self.conf = os.path.join(self.dir, "dovecot.conf")
        owner = "nobody" if os.geteuid() == 0 else \
            pwd.getpwuid(os.getuid())[0]
        self.owner = pwd.getpwnam(owner)

    def maildir(self, user):
        return self.mail.replace("%u", user)

    def log(self):
        with open(os.path.join(self.dir, "dovecot.log")) as f:
            return f.read()

    def master_pid(self):
        """The master's pid (written a moment after it listens)."""
        path = os.path.join(self.dir, "run", "master.pid")
        for _ in range(100):
            try:
                with open(path) as f:
                    return int(f.read())
            except (OSError, ValueError):
                time.sleep(0.1)
        raise RuntimeError("dovecot wrote no %s" % path)

    def start(self):
        for d in ("run", "state", "home"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for name, field in self.users:
                f.write("%s:%s::::::\n" % (name, field))
                os.makedirs(os.path.join(self.dir, "home", name),
                            exist_ok=True)
                for sub in ("cur", "new", "tmp"):
                    os.makedirs(os.path.join(self.maildir(name), sub),
                                exist_ok=True)
        # (values are not %-expanded again: "%u" reaches Dovecot as is)
        home = os.path.join(self.dir, "home", "%u")
        with open(self.conf, "w") as f:
            f.write(CONF % {"dv": self.dir, "mail": self.mail,
                            "uid": self.owner.pw_uid,
                "gid": self.owner.pw_gid, "home": home, "port": self.port})
            f.write(self.tuning)
        # The mail (a copy of postern's Maildir, or under the home) is
        # the Dovecot user's.
        roots = {os.path.join(self.dir, "home")}
        for name, _ in self.users:
            roots.add(self.maildir(name))
        subprocess.run(["chown", "-R", "%d:%d" % (self.owner.pw_uid,
                                                  self.owner.pw_gid)]
                       + sorted(roots), check=True)
        os.chmod(os.path.dirname(self.dir), 0o755)
        subprocess.run(["dovecot", "-c", self.conf], check=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not listen on %d:\n%s"
                           % (self.port, self.log()[-2000:]))

    def stop(self):
        subprocess.run(["doveadm", "-c", self.conf, "stop"],
                       capture_output=True)
