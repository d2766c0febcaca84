#!/bin/sh
# The SDK as a vendor sees it: install postern into a scratch DESTDIR, build
# the example module from sdk/examples/hello with nothing but the installed
# headers and pkg-config, then load it into the installed posternd and talk
# to it.
set -u
: "${top_builddir:?}" "${top_srcdir:?}" "${MAKE:=make}" "${PYTHON3:=python3}"

passed=0
failed=0
check() {
	if [ "$1" -eq 0 ]; then
		passed=$((passed + 1)); echo "PASS: $2"
	else
		failed=$((failed + 1)); echo "FAIL: $2"
	fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/postern-sdk.XXXXXX")
dest="$tmp/dest"

$MAKE -s -C "$top_builddir" install DESTDIR="$dest" >"$tmp/install.log" 2>&1
check $? "make install DESTDIR"

pc=$(find "$dest" -name postern-sdk.pc | head -n 1)
posternd=$(find "$dest" -name posternd -type f | head -n 1)
[ -n "$pc" ] && [ -n "$posternd" ]
check $? "installed tree has postern-sdk.pc and posternd"

# pkg-config reads the .pc from the DESTDIR tree and prefixes its paths.
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$dest"
export PKG_CONFIG_LIBDIR="$(dirname "$pc")"
cp -r "$top_srcdir/sdk/examples/hello" "$tmp/hello"
chmod -R u+w "$tmp/hello"
rm -f "$tmp/hello/hello.so"
# No -I into the source tree: only what pkg-config says.
(cd "$tmp/hello" && $MAKE -s CFLAGS="-O2 -Wall -Wextra -Werror" hello.so) \
	>"$tmp/build.log" 2>&1
check $? "example module builds out of tree from the installed SDK"
cat "$tmp/build.log"

grep -q -- "$top_srcdir" "$tmp/build.log"
[ $? -ne 0 ]
check $? "the build did not reach into the source tree"

port=$($PYTHON3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=""
[ "$(id -u)" -eq 0 ] && user="nobody"
cat >"$tmp/postern.conf" <<CONF
modules = [ "$tmp/hello/hello.so" ];
module_dir = "$tmp";
run_dir = "$tmp/run";
state_dir = "$tmp/state";
workers = 1;
user = "$user";
shutdown_timeout = "2s";
hello = { greeting = "built out of tree";
          listen = ( { address = "127.0.0.1"; port = $port; } ); };
CONF

"$posternd" -t -c "$tmp/postern.conf" >"$tmp/check.log" 2>&1
check $? "installed posternd accepts the module (-t)"
cat "$tmp/check.log"

"$posternd" -f -c "$tmp/postern.conf" >"$tmp/run.log" 2>&1 &
pid=$!
$PYTHON3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port), 2)
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("no listener on %d" % port)
f = s.makefile("rwb")
assert f.readline() == b"+OK built out of tree\r\n"
f.write(b"ECHO vendor\r\nQUIT\r\n"); f.flush()
assert f.readline() == b"+OK vendor\r\n"
assert f.readline() == b"+OK bye\r\n"
PY
check $? "the out-of-tree module serves a client"
kill -TERM "$pid"
wait "$pid"
check $? "posternd stops cleanly"
cat "$tmp/run.log"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && rm -rf "$tmp"
[ "$failed" -eq 0 ]
