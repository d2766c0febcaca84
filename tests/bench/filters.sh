#!/bin/sh
#
# filters.sh - SMTP ingest with filters: posternd (smtp + storage_maildir)
# with no filter, with opendkim signing through filter_milter, and with
# filter_ratelimit (limits high enough never to refuse: the cost of
# counting), with filter_spf + filter_dnsbl + filter_ratelimit together
# (DNS from a dnsmasq on loopback: an SPF record that passes the client,
# two block lists that do not list it), beside Postfix (smtpd + virtual
# into a Maildir) with no milter and with the same opendkim as
# smtpd_milters.  Loaded by smtp-source with N messages of 4 KiB at
# concurrency 20, one message per connection; prints accepted/s and the
# ratios postern/Postfix.  Never a pass or a failure on a time.
#
#	tests/bench/filters.sh [N [top_builddir]]
#
# N messages per run (default 5000); top_builddir (or the environment's
# top_builddir, default ./build/plain) is a built tree.  As root: Postfix
# and opendkim are installed when missing.
set -eu

N=${1:-5000}
top_builddir=${2:-${top_builddir:-./build/plain}}
CONC=${BENCH_CONC:-20}
T=${BENCH_TIMEOUT:-600}
W=/tmp/postern-bench-filters
PF=$W/pf

die() {
	echo "filters.sh: $*" >&2
	exit 1
}

[ -x "$top_builddir/core/posternd" ] ||
	die "$top_builddir/core/posternd missing: build the tree first"
[ "$(id -u)" -eq 0 ] || die "run as root (Postfix needs it)"
top_builddir=$(cd "$top_builddir" && pwd)
. "$(dirname "$0")/peers.sh"
peers_need postfix
PATH=$PATH:/usr/sbin
command -v opendkim >/dev/null 2>&1 || {
	apt-get install -y -qq opendkim opendkim-tools >/dev/null ||
		die "cannot install opendkim"
}

PIDS=
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }
	done
	for v in none dkim; do
		postfix -c "$PF/$v/etc" stop >/dev/null 2>&1 || true
	done
}
trap 'st=$?; cleanup; exit $st' EXIT
trap 'exit 1' HUP INT TERM

rm -rf "$W"
mkdir -p "$W/opendkim" "$PF"

# ---- opendkim, signing mail from bench.example -----------------------------

opendkim-genkey -D "$W/opendkim" -s bench -d bench.example
DPORT=$(peers_free_port)
printf '%s\n' "Syslog no" "Socket inet:$DPORT@127.0.0.1" \
	"Domain bench.example" "Selector bench" \
	"KeyFile $W/opendkim/bench.private" "Mode s" \
	"Canonicalization relaxed/simple" "RequireSafeKeys false" \
	"Background no" "InternalHosts 127.0.0.1" \
	>"$W/opendkim/opendkim.conf"
opendkim -f -x "$W/opendkim/opendkim.conf" >"$W/opendkim/log" 2>&1 &
PIDS="$PIDS $!"
peers_wait_port "$DPORT"

# ---- dnsmasq: SPF and block lists for the "all filters" run ----------------

command -v dnsmasq >/dev/null 2>&1 || /usr/sbin/dnsmasq --version \
	>/dev/null 2>&1 || apt-get install -y -qq dnsmasq-base >/dev/null ||
	die "cannot install dnsmasq-base"
NSPORT=$(peers_free_port)
/usr/sbin/dnsmasq --no-daemon --port="$NSPORT" --listen-address=127.0.0.1 \
	--bind-interfaces --conf-file=/dev/null --no-resolv --no-hosts \
	--local=/example/ --user=nobody \
	"--txt-record=bench.example,v=spf1 ip4:127.0.0.1 -all" \
	--host-record=2.0.0.127.bl1.example,127.0.0.2 \
	--host-record=2.0.0.127.bl2.example,127.0.0.2 \
	>"$W/dnsmasq.log" 2>&1 &
PIDS="$PIDS $!"
peers_wait_port "$NSPORT"

# ---- posternd, one per variant ---------------------------------------------

# postern NAME MODULES_TAIL EXTRA_CONF: starts one; sets PORT_NAME.
postern() {
	d=$W/$1
	mkdir -p "$d/etc" "$d/state" "$d/run" "$d/mail"
	port=$(peers_free_port)
	{
		echo "modules = [ \"$M/auth/.libs/auth_passwd.so\","
		echo "  \"$M/storage/.libs/storage_maildir.so\","
		echo "  \"$M/smtp/.libs/smtp.so\" $2 ];"
		echo "state_dir = \"$d/state\"; run_dir = \"$d/run\";"
		echo "user = \"root\"; allow_root = true;"
		echo "log_level = \"warning\"; job_threads = 32;"
		echo "auth_passwd = { users = \"$d/etc/users\"; aliases = \"\"; };"
		echo "storage_maildir = { location = \"$d/mail/%d/%n\"; };"
		echo "smtp = { hostname = \"bench.example\";"
		echo "  listen = ( { port = $port; mode = \"mx\";"
		echo "    max_conns = 4096; max_per_ip = 0; } ); };"
		echo "$3"
	} >"$d/etc/postern.conf"
	: >"$d/etc/users"
	echo "bench-pw" | "$top_builddir/posternctl/posternctl" \
		-c "$d/etc/postern.conf" user add "rcpt@bench.example" \
		--password-stdin >/dev/null
	"$top_builddir/core/posternd" -f -c "$d/etc/postern.conf" \
		>"$d/log" 2>&1 &
	PIDS="$PIDS $!"
	peers_wait_port "$port"
	eval "PORT_$1=$port"
}

M=$top_builddir/modules
postern none "" ""
postern dkim ", \"$M/filter_milter/.libs/filter_milter.so\"" \
	"filter_milter = { milters = ( { name = \"opendkim\";
	   socket = \"inet:127.0.0.1:$DPORT\"; } ); };"
postern rate ", \"$M/filter_ratelimit/.libs/filter_ratelimit.so\"" \
	"filter_ratelimit = { limits = (
	   { name = \"c\"; count = \"connections\"; per = \"client\";
	     max = 1000000; window = \"1h\"; },
	   { name = \"m\"; count = \"messages\"; per = \"sender_domain\";
	     max = 1000000; window = \"1h\"; },
	   { name = \"r\"; count = \"recipients\"; per = \"client\";
	     max = 1000000; window = \"1h\"; } ); };"

postern all ", \"$M/filter_spf/.libs/filter_spf.so\",
	\"$M/filter_dnsbl/.libs/filter_dnsbl.so\",
	\"$M/filter_ratelimit/.libs/filter_ratelimit.so\"" \
	"dns_servers = \"127.0.0.1:$NSPORT\";
	 filter_spf = { };
	 filter_dnsbl = { zones = ( { zone = \"bl1.example\"; },
	   { zone = \"bl2.example\"; } ); };
	 filter_ratelimit = { limits = (
	   { name = \"c\"; count = \"connections\"; per = \"client\";
	     max = 1000000; window = \"1h\"; },
	   { name = \"m\"; count = \"messages\"; per = \"sender_domain\";
	     max = 1000000; window = \"1h\"; } ); };"

# ---- Postfix, without and with the same opendkim ---------------------------

# postfix_variant NAME MILTERS: smtpd + virtual into a Maildir.
postfix_variant() {
	d=$PF/$1
	port=$(peers_free_port)
	postfix_private "$d" "$port"
	mkdir -p "$d/mail"
	echo "rcpt@bench.example bench.example/rcpt/" >"$d/etc/vmailbox"
	{
		echo "relayhost ="
		echo "virtual_mailbox_domains = bench.example"
		echo "virtual_mailbox_maps = texthash:$d/etc/vmailbox"
		echo "virtual_mailbox_base = $d/mail"
		echo "virtual_uid_maps = static:$(id -u nobody)"
		echo "virtual_gid_maps = static:$(id -g nobody)"
		echo "virtual_transport = virtual"
		echo "smtpd_milters = $2"
		echo "milter_default_action = accept"
	} >>"$d/etc/main.cf"
	chown nobody:nogroup "$d/mail"
	postfix_run "$d" "$port"
	eval "PORT_pf_$1=$port"
}

# Messages in a Maildir (peers_wait_delivered calls it).
count() {
	find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l
}

# run NAME PORT MAILDIR: prints accepted/s
run() {
	before=$(count "$3")
	t0=$(peers_now)
	timeout "$T" smtp-source -s "$CONC" -m "$N" -l 4096 \
		-f sender@bench.example -t rcpt@bench.example \
		"127.0.0.1:$2" >/dev/null 2>&1 ||
		echo "$1: smtp-source failed" >&2
	t1=$(peers_now)
	peers_wait_delivered "$3" "$((before + N))" "$T" >/dev/null
	echo "$t0 $t1 $N" | awk '{ printf "%.0f\n", $3 / ($2 - $1) }'
}

echo "SMTP ingest with filters: $N messages of 4 KiB, concurrency $CONC," \
	"one per connection, durable delivery into Maildir"
printf '%-24s %12s\n' variant accepted/s
pn=$(run none "$PORT_none" "$W/none/mail/bench.example/rcpt")
printf '%-24s %12s\n' postern "$pn"
pd=$(run dkim "$PORT_dkim" "$W/dkim/mail/bench.example/rcpt")
printf '%-24s %12s\n' postern+opendkim "$pd"
pr=$(run rate "$PORT_rate" "$W/rate/mail/bench.example/rcpt")
printf '%-24s %12s\n' postern+ratelimit "$pr"
pa=$(run all "$PORT_all" "$W/all/mail/bench.example/rcpt")
printf '%-24s %12s\n' postern+spf+dnsbl+rate "$pa"
postfix_variant none ""
fn=$(run postfix "$PORT_pf_none" "$PF/none/mail/bench.example/rcpt")
postfix -c "$PF/none/etc" stop >/dev/null 2>&1 || true
printf '%-24s %12s\n' postfix "$fn"
postfix_variant dkim "inet:127.0.0.1:$DPORT"
fd=$(run postfix+dkim "$PORT_pf_dkim" "$PF/dkim/mail/bench.example/rcpt")
postfix -c "$PF/dkim/etc" stop >/dev/null 2>&1 || true
printf '%-24s %12s\n' postfix+opendkim "$fd"
echo "$pn $fn $pd $fd" | awk '{
	printf "ratio postern/postfix: no filter %.2f, opendkim %.2f\n",
		$1 / $2, $3 / $4 }'
echo "$pa $fn" | awk '{ printf "ratio postern with spf+dnsbl+ratelimit / " \
	"postfix with none: %.2f\n", $1 / $2 }'
# The all-filters run checked SPF: its messages say pass.
f=$(find "$W/all/mail/bench.example/rcpt/new" \
	"$W/all/mail/bench.example/rcpt/cur" -type f 2>/dev/null | head -n 1)
if [ -n "$f" ] && grep -q '^Received-SPF: pass' "$f"; then
	echo "SPF checked: $f"
else
	echo "NOT SPF-checked: $f" >&2
fi
# One message of each signed run, to show the milter did its work.
for d in "$W/dkim/mail/bench.example/rcpt" \
	"$PF/dkim/mail/bench.example/rcpt"; do
	f=$(find "$d/new" "$d/cur" -type f 2>/dev/null | head -n 1)
	if [ -n "$f" ] && grep -q '^DKIM-Signature:' "$f"; then
		echo "signed: $d"
	else
		echo "NOT signed: $d" >&2
	fi
done
