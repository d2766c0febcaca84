#!/bin/sh
#
# smtp.sh - durable SMTP ingest: posternd (smtp + storage_maildir) beside
# Postfix (smtpd + the virtual delivery agent, Maildir), on loopback,
# loaded by Postfix's smtp-source with N messages of 4 KiB at concurrency
# 20 and 100 (one message per connection).  Prints accepted/s (the last
# 250 after DATA) and delivered/s (files in the Maildir), and the ratios
# postern/Postfix.  Never a pass or a failure on a time.
#
#	tests/bench/smtp.sh [N [top_builddir]]
#
# N messages per run (default 20000); top_builddir (or the environment's
# top_builddir, default ./build/plain) is a built tree: nothing is built
# here.  As root it installs postfix when smtp-source is missing
# (DEBIAN_FRONTEND=noninteractive, "No configuration"), and adds its
# private configuration directory to /etc/postfix/main.cf's
# alternate_config_directories, which Postfix requires.
#
# Environment: BENCH_SIZE (octets per message, default 4096),
# BENCH_CONC (default "20 100"), BENCH_TIMEOUT (seconds per run, 600).

set -eu

N=${1:-20000}
top_builddir=${2:-${top_builddir:-./build/plain}}
SIZE=${BENCH_SIZE:-4096}
CONCS=${BENCH_CONC:-20 100}
T=${BENCH_TIMEOUT:-600}
W=/tmp/postern-bench-smtp
PF=$W/pf

die() {
	echo "smtp.sh: $*" >&2
	exit 1
}

case $N in
''|*[!0-9]*) die "N must be a number" ;;
esac
[ -x "$top_builddir/core/posternd" ] ||
	die "$top_builddir/core/posternd missing: build the tree first"
[ "$(id -u)" -eq 0 ] || die "run as root (Postfix needs it)"
top_builddir=$(cd "$top_builddir" && pwd)

. "$(dirname "$0")/peers.sh"
peers_need postfix


# Messages in a Maildir's new/ and cur/, or in relay_spool's directory.
count() {
	if [ -d "$1/new" ] || [ -d "$1/cur" ]; then
		find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l
	else
		find "$1" -name '*.env' 2>/dev/null | wc -l
	fi
}

cleanup() {
	for p in ${PID:-} ${RPID:-}; do
		kill "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }
	done
	postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
}
trap 'st=$?; cleanup; exit $st' EXIT
trap 'exit 1' HUP INT TERM

postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
rm -rf "$W"
mkdir -p "$W/etc/conf.d" "$W/state" "$W/run" "$W/mail" "$PF/etc" \
	"$PF/queue" "$PF/data" "$PF/mail"

# ---- posternd ------------------------------------------------------------

PPORT=$(peers_free_port)
cat >"$W/etc/postern.conf" <<EOF
modules = [ "$top_builddir/modules/auth/.libs/auth_passwd.so",
            "$top_builddir/modules/storage/.libs/storage_maildir.so",
            "$top_builddir/modules/smtp/.libs/smtp.so" ];
state_dir = "$W/state";
run_dir = "$W/run";
user = "root";
allow_root = true;
log_level = "warning";
job_threads = 32;
auth_passwd = { users = "$W/etc/users"; aliases = "$W/etc/aliases"; };
storage_maildir = { location = "$W/mail/%d/%n"; };
smtp = {
  hostname = "bench.example";
  listen = ( { port = $PPORT; mode = "mx"; max_conns = 4096;
              max_per_ip = 0; } );
};
EOF
: >"$W/etc/users"
: >"$W/etc/aliases"
# One mailbox per run, so each run starts from an empty one.
for c in $CONCS; do
	echo "bench-pw" | "$top_builddir/posternctl/posternctl" \
		-c "$W/etc/postern.conf" user add "c$c@bench.example" \
		--password-stdin >/dev/null
done
"$top_builddir/core/posternd" -f -c "$W/etc/postern.conf" \
	>"$W/postern.log" 2>&1 &
PID=$!

# The same SMTP module into a durable queue with no per-mailbox lock
# (the relay_spool test relay: write, fsync, rename), to show what the
# SMTP side sustains apart from the storage backend.  Needs `make check`
# to have built tests/modules.
RELAY_SO=$top_builddir/tests/modules/.libs/relay_spool.so
RPORT=
if [ -f "$RELAY_SO" ]; then
	RPORT=$(peers_free_port)
	mkdir -p "$W/r/etc" "$W/r/state" "$W/r/run" "$W/r/queue"
	cat >"$W/r/etc/postern.conf" <<EOF
modules = [ "$top_builddir/modules/smtp/.libs/smtp.so", "$RELAY_SO" ];
state_dir = "$W/r/state";
run_dir = "$W/r/run";
user = "root";
allow_root = true;
log_level = "warning";
job_threads = 32;
relay_spool = { dir = "$W/r/queue"; };
smtp = {
  hostname = "bench.example";
  trusted_networks = [ "127.0.0.0/8" ];
  listen = ( { port = $RPORT; mode = "mx"; max_conns = 4096;
              max_per_ip = 0; } );
};
EOF
	"$top_builddir/core/posternd" -f -c "$W/r/etc/postern.conf" \
		>"$W/relay.log" 2>&1 &
	RPID=$!
fi

# ---- Postfix: smtpd, then virtual(8) into a Maildir -----------------------

FPORT=$(peers_free_port)
postfix_private "$PF" "$FPORT"
: >"$PF/etc/vmailbox"
for c in $CONCS; do
	echo "c$c@bench.example bench.example/c$c/" >>"$PF/etc/vmailbox"
done
cat >>"$PF/etc/main.cf" <<EOF
relayhost =
virtual_mailbox_domains = bench.example
virtual_mailbox_maps = texthash:$PF/etc/vmailbox
virtual_mailbox_base = $PF/mail
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
virtual_transport = virtual
EOF
chown nobody:nogroup "$PF/mail"
postfix_run "$PF" "$FPORT"

for p in "$PPORT" $RPORT; do
	peers_wait_port "$p"
done

# ---- runs ------------------------------------------------------------------

# run NAME PORT MAILDIR CONC RCPT: prints "accepted/s delivered/s".
run() {
	before=$(count "$3")
	want=$((before + N))
	t0=$(peers_now)
	timeout "$T" smtp-source -s "$4" -m "$N" -l "$SIZE" \
		-f sender@src.example -t "$5" \
		"127.0.0.1:$2" >/dev/null 2>&1 || echo "$1: smtp-source failed" >&2
	t1=$(peers_now)
	t2=$(peers_wait_delivered "$3" "$want" "$T")
	# Delivery cannot end before acceptance did.
	t2=$(echo "$t1 $t2" | awk '{ print ($2 < $1) ? $1 : $2 }')
	got=$(( $(count "$3") - before ))
	[ "$got" -eq "$N" ] || echo "$1: $got of $N delivered" >&2
	echo "$t0 $t1 $t2 $got" | awk '{ printf "%.0f %.0f\n",
		$4 / ($2 - $1), $4 / ($3 - $1) }'
}

echo "SMTP ingest: $N messages of $SIZE octets, one per connection," \
	"durable delivery into Maildir"
printf '%-6s %-10s %12s %12s\n' conc server accepted/s delivered/s
for c in $CONCS; do
	set -- $(run postern "$PPORT" "$W/mail/bench.example/c$c" "$c" \
		"c$c@bench.example")
	pa=$1 pd=$2
	printf '%-6s %-10s %12s %12s\n' "$c" postern "$pa" "$pd"
	set -- $(run postfix "$FPORT" "$PF/mail/bench.example/c$c" "$c" \
		"c$c@bench.example")
	fa=$1 fd=$2
	printf '%-6s %-10s %12s %12s\n' "$c" postfix "$fa" "$fd"
	echo "$c $pa $fa $pd $fd" | awk '{ printf "%-6s %-10s %12.2f %12.2f\n",
		$1, "ratio", $2 / $3, $4 / $5 }'
	if [ -n "$RPORT" ]; then
		set -- $(run postern-relay "$RPORT" "$W/r/queue" "$c" \
			bench@far.example)
		printf '%-6s %-10s %12s %12s\n' "$c" "p-relayq" "$1" "$2"
	fi
done
[ -z "$RPORT" ] || echo "p-relayq: posternd's smtp into the relay_spool" \
	"test queue (fsync per message, no mailbox lock)"
