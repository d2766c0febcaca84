#!/bin/sh
#
# relay.sh - relay throughput end to end: Postfix's smtp-source ->
# posternd (the gateway profile: smtp + relay, queue fsynced before 250)
# -> Postfix's smtp-sink, beside Postfix (smtpd -> its queue -> smtp(8)
# to a relayhost) -> a second smtp-sink, on loopback, with N messages of
# 4 KiB at concurrency 20 and 100 (one message per connection).  Prints
# accepted/s (smtp-source done) and relayed/s (the last message in the
# sink's dump directory), and the ratios postern/Postfix.  Never a pass
# or a failure on a time.
#
#	tests/bench/relay.sh [N [top_builddir]]
#
# N messages per run (default 20000); top_builddir (or the environment's
# top_builddir, default ./build/plain) is a built tree.  Runs as root
# (Postfix needs it); peers.sh adds its private configuration directory
# to /etc/postfix/main.cf's alternate_config_directories, as Postfix
# requires.
#
# Environment: BENCH_SIZE (octets per message, default 4096),
# BENCH_CONC (default "20 100"), BENCH_TIMEOUT (seconds per run, 600).

set -eu

N=${1:-20000}
top_builddir=${2:-${top_builddir:-./build/plain}}
SIZE=${BENCH_SIZE:-4096}
CONCS=${BENCH_CONC:-20 100}
T=${BENCH_TIMEOUT:-600}
W=/tmp/postern-bench-relay
PF=$W/pf

die() {
	echo "relay.sh: $*" >&2
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

count() {
	find "$1" -type f 2>/dev/null | wc -l
}

cleanup() {
	# (set -e: a wait that reports the TERM must not end the cleanup)
	for p in ${PID:-} ${SPID1:-} ${SPID2:-}; do
		kill "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }
	done
	postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
}
# The script's own status, not that of the last child cleanup waited for.
trap 'st=$?; cleanup; exit $st' EXIT
trap 'exit 1' HUP INT TERM

postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
rm -rf "$W"
mkdir -p "$W/etc" "$W/state" "$W/run" "$W/sinkp" "$W/sinkf" "$PF/etc" \
	"$PF/queue" "$PF/data"
chown nobody "$W/sinkp" "$W/sinkf"

# ---- the sinks -------------------------------------------------------------

SINKP=$(peers_free_port)
SINKF=$(peers_free_port)
smtp-sink -u nobody -m 1000 -d "$W/sinkp/%H%M." "127.0.0.1:$SINKP" 1000 &
SPID1=$!
smtp-sink -u nobody -m 1000 -d "$W/sinkf/%H%M." "127.0.0.1:$SINKF" 1000 &
SPID2=$!

# ---- posternd: the gateway profile ---------------------------------------

PPORT=$(peers_free_port)
cat >"$W/etc/postern.conf" <<EOF
modules = [ "$top_builddir/modules/smtp/.libs/smtp.so",
            "$top_builddir/modules/relay/.libs/relay.so" ];
state_dir = "$W/state";
run_dir = "$W/run";
user = "root";
allow_root = true;
log_level = "warning";
job_threads = 32;
smtp = {
  hostname = "bench.example";
  relay_domains = [ "far.example" ];
  listen = ( { port = $PPORT; mode = "mx"; max_conns = 4096;
              max_per_ip = 0; } );
};
relay = {
  hostname = "bench.example";
  routes = ( { domain = "*"; via = "smtp:[127.0.0.1]:$SINKP";
               tls = "none"; } );
};
EOF
"$top_builddir/core/posternd" -f -c "$W/etc/postern.conf" \
	>"$W/postern.log" 2>&1 &
PID=$!

# ---- Postfix: smtpd, its queue, smtp(8) to the relayhost -----------------

FPORT=$(peers_free_port)
postfix_private "$PF" "$FPORT"
cat >>"$PF/etc/main.cf" <<EOF
relay_domains = far.example
relayhost = [127.0.0.1]:$SINKF
smtp_tls_security_level = none
EOF
postfix_run "$PF" "$FPORT"

for p in "$PPORT" "$SINKP" "$SINKF"; do
	peers_wait_port "$p"
done

# ---- runs ------------------------------------------------------------------

# run NAME PORT SINKDIR CONC: prints "accepted/s relayed/s".
run() {
	before=$(count "$3")
	want=$((before + N))
	t0=$(peers_now)
	timeout "$T" smtp-source -s "$4" -m "$N" -l "$SIZE" \
		-f sender@src.example -t "bench@far.example" \
		"127.0.0.1:$2" >/dev/null 2>&1 || echo "$1: smtp-source failed" >&2
	t1=$(peers_now)
	t2=$(peers_wait_delivered "$3" "$want" "$T")
	t2=$(echo "$t1 $t2" | awk '{ print ($2 < $1) ? $1 : $2 }')
	got=$(( $(count "$3") - before ))
	[ "$got" -eq "$N" ] || echo "$1: $got of $N relayed" >&2
	echo "$t0 $t1 $t2 $got" | awk '{ printf "%.0f %.0f\n",
		$4 / ($2 - $1), $4 / ($3 - $1) }'
}

echo "Relay: $N messages of $SIZE octets, one per connection, through a" \
	"durable queue to smtp-sink"
printf '%-6s %-10s %12s %12s\n' conc server accepted/s relayed/s
for c in $CONCS; do
	set -- $(run postern "$PPORT" "$W/sinkp" "$c")
	pa=$1 pd=$2
	printf '%-6s %-10s %12s %12s\n' "$c" postern "$pa" "$pd"
	set -- $(run postfix "$FPORT" "$W/sinkf" "$c")
	fa=$1 fd=$2
	printf '%-6s %-10s %12s %12s\n' "$c" postfix "$fa" "$fd"
	echo "$c $pa $fa $pd $fd" | awk '{ printf "%-6s %-10s %12.2f %12.2f\n",
		$1, "ratio", $2 / $3, $4 / $5 }'
done
