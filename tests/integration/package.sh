#!/bin/sh
# package.sh - builds the Debian packages from a copy of the tree, installs
# them, checks the configuration, runs the packaged posternd on loopback,
# delivers a message over SMTP and reads it back over IMAP, then purges the
# packages and checks the postern user, /etc/postern and /var/lib/postern
# are gone.  Slow (a full build) and it changes the system, so it runs only
# as root with POSTERN_PACKAGE_TEST=1 and Debian's packaging tools.
set -eu
srcdir=${srcdir:-.}
skip() { echo "SKIP: $*"; exit 77; }
[ "${POSTERN_PACKAGE_TEST:-}" = 1 ] ||
	skip "POSTERN_PACKAGE_TEST is not 1 (the test builds and installs packages)"
[ "$(id -u)" -eq 0 ] || skip "not root (dpkg -i needs it)"
command -v dpkg-buildpackage >/dev/null || skip "dpkg-buildpackage missing (dpkg-dev)"
command -v dh >/dev/null || skip "debhelper missing"

tmp=$(mktemp -d /tmp/postern-package.XXXXXX)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && sleep 1
	dpkg --purge postern postern-dev >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ver=$(sed -n '1s/^postern (\([^)]*\)).*/\1/p' "$srcdir/debian/changelog")
mkdir "$tmp/postern-$ver"
(cd "$srcdir" && tar -cf - --exclude=./build --exclude=.git .) |
	tar -xf - -C "$tmp/postern-$ver"
(cd "$tmp/postern-$ver" && [ ! -f Makefile ] || make distclean >/dev/null)
(cd "$tmp/postern-$ver" &&
	DEB_BUILD_OPTIONS="nocheck parallel=2" timeout 1200 \
	dpkg-buildpackage -us -uc -b >"$tmp/build.log" 2>&1) ||
	{ tail -30 "$tmp/build.log"; echo "FAIL: dpkg-buildpackage"; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	"$tmp/postern_${ver}_"*.deb "$tmp/postern-dev_${ver}_"*.deb >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; echo "FAIL: install"; exit 1; }
/usr/sbin/posternd -t
getent passwd postern >/dev/null || { echo "FAIL: no postern user"; exit 1; }

ports=$(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
set -- $ports
cat >/etc/postern/conf.d/99-package-test.conf <<CONF
modules = [ "auth_passwd", "storage_maildir", "smtp", "imap" ];
smtp = { listen = ( { name = "mx"; address = "127.0.0.1"; port = $1; mode = "mx"; } ); };
imap = { listen = ( { name = "imap"; address = "127.0.0.1"; port = $2; } ); };
metrics_listen = "127.0.0.1:$3";
CONF
/usr/sbin/posternd -t
echo secret-pw | /usr/sbin/posternctl user add alice@example.org --password-stdin
# posternctl makes the users file for the workers' group to read.
[ "$(stat -c %G:%a /etc/postern/users)" = postern:640 ] ||
	{ echo "FAIL: users file is $(stat -c %U:%G:%a /etc/postern/users)"; exit 1; }
/usr/sbin/posternd -f >"$tmp/posternd.log" 2>&1 &
pid=$!
python3 - "$1" "$2" "$3" <<'PY'
import imaplib, smtplib, socket, sys, time, urllib.request
smtp, imap, metrics = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
end = time.time() + 20
while True:
    try:
        socket.create_connection(("127.0.0.1", imap), 1).close(); break
    except OSError:
        if time.time() > end: sys.exit("FAIL: posternd did not listen")
        time.sleep(0.2)
with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as s:
    s.sendmail("bob@example.net", ["alice@example.org"],
               "Subject: package test\r\n\r\nhello from the package\r\n")
end = time.time() + 10
while True:
    m = imaplib.IMAP4("127.0.0.1", imap, timeout=10)
    m.login("alice@example.org", "secret-pw")
    typ, data = m.select("INBOX")
    if int(data[0]) >= 1:
        typ, msg = m.fetch("1", "(BODY[])")
        assert b"hello from the package" in msg[0][1], msg
        m.logout(); break
    m.logout()
    if time.time() > end: sys.exit("FAIL: message not delivered")
    time.sleep(0.3)
print("delivered and read back")
text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics,
                              timeout=10).read().decode()
def sample(name):
    return sum(float(l.split()[-1]) for l in text.splitlines()
               if l.startswith(name + "{") or l.startswith(name + " "))
assert sample("postern_local_deliveries_total") >= 1, text
assert sample("postern_logins_total") >= 1, text
print("metrics scraped")
PY
kill "$pid"; wait "$pid" || true; pid=""
dpkg --purge postern postern-dev >/dev/null
fail=0
for d in /etc/postern /var/lib/postern; do
	[ ! -e "$d" ] || { echo "FAIL: $d left after purge"; fail=1; }
done
! getent passwd postern >/dev/null || { echo "FAIL: postern user left"; fail=1; }
[ $fail -eq 0 ] && echo "1 passed, 0 failed" || { echo "0 passed, 1 failed"; exit 1; }
