# peers.sh - Postfix and Dovecot from Debian on loopback, in private
# directories, for the benchmarks to run beside postern.  Sourced (not run)
# by tests/bench/*.sh:
#
#	. "$(dirname "$0")/peers.sh"
#	peers_need dovecot-imapd
#	peers_mail_user                  # MUSER MGROUP MUID MGID
#	dovecot_start DIR USERS [imap=PORT] [pop3=PORT] [lmtp=NAME] \
#	    [mode=stock|performance]     # LMTP socket: DIR/run/NAME
#	postfix_start DIR PORT LMTP_SOCKET USERS DOMAIN
#	postfix_private DIR PORT; cat >>DIR/etc/main.cf ...; postfix_run DIR PORT
#	peers_now; peers_wait_delivered DIR N SECONDS   # caller defines count DIR
#	...
#	postfix_stop DIR; dovecot_stop DIR
#
# USERS is a Dovecot passwd-file the caller writes, one line per user:
#	alice@example.org:{PLAIN}secret:UID:GID::/home/dir
# Dovecot's mail location is maildir:~/Maildir.  Everything listens on
# 127.0.0.1 only; nothing touches the system's own Postfix or Dovecot
# except one line Postfix insists on: /etc/postfix/main.cf must list a
# private configuration directory in alternate_config_directories.
# See ../shared/PEERS.md for why each setting is there.

peers_die() {
	echo "peers.sh: $*" >&2
	exit 1
}

# Installs the Debian packages named when missing (root only).
peers_need() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" -eq 0 ] || peers_die "install$missing first"
	echo "peers.sh: installing$missing" >&2
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections
	DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -qq >&2
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
		--no-install-recommends $missing >&2 ||
		peers_die "apt-get install$missing failed"
}

# The system user that owns benchmark mail: nobody as root (Dovecot will
# not serve mail as root), else whoever runs the script.
peers_mail_user() {
	if [ "$(id -u)" -eq 0 ]; then
		MUSER=nobody
	else
		MUSER=$(id -un)
	fi
	MGROUP=$(id -gn "$MUSER")
	MUID=$(id -u "$MUSER")
	MGID=$(id -g "$MUSER")
}

# dovecot_start DIR USERS [imap=PORT] [pop3=PORT] [lmtp=NAME] [mode=M]
# mode=stock: one process per connection, as Debian ships it;
# mode=performance: the "high-performance" setup of Dovecot's manual
# (login and imap/pop3 processes each serving many connections).
dovecot_start() {
	dir=$1 users=$2
	shift 2
	imap=0 pop3=0 lmtp="" mode=stock
	for a in "$@"; do
		case $a in
		imap=*) imap=${a#imap=} ;;
		pop3=*) pop3=${a#pop3=} ;;
		lmtp=*) lmtp=${a#lmtp=} ;;
		mode=*) mode=${a#mode=} ;;
		*) peers_die "dovecot_start: unknown argument $a" ;;
		esac
	done
	mkdir -p "$dir/run" "$dir/state"
	protocols=""
	[ "$imap" != 0 ] && protocols="$protocols imap"
	[ "$pop3" != 0 ] && protocols="$protocols pop3"
	[ -n "$lmtp" ] && protocols="$protocols lmtp"
	peers_mail_user
	cat >"$dir/dovecot.conf" <<EOF
# written by tests/bench/peers.sh
base_dir = $dir/run
state_dir = $dir/state
protocols =$protocols
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_max_userip_connections = 10000
default_internal_user = $MUSER
default_internal_group = $MGROUP
default_login_user = $MUSER
first_valid_uid = 0
log_path = $dir/dovecot.log
passdb {
  driver = passwd-file
  args = scheme=PLAIN $users
}
userdb {
  driver = passwd-file
  args = $users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop3
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    path = ${lmtp:-lmtp-unused}
    mode = 0666
  }
}
EOF
	if [ "$mode" = performance ]; then
		cat >>"$dir/dovecot.conf" <<EOF
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 10000
}
service pop3-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 10000
}
service imap {
  service_count = 0
  client_limit = 1000
}
service pop3 {
  service_count = 0
  client_limit = 1000
}
default_client_limit = 20000
default_process_limit = 1000
EOF
	fi
	dovecot -c "$dir/dovecot.conf" ||
		peers_die "dovecot did not start; see $dir/dovecot.log"
	for port in $imap $pop3; do
		[ "$port" = 0 ] || peers_wait_port "$port"
	done
	if [ -n "$lmtp" ]; then
		n=0
		while [ ! -S "$dir/run/$lmtp" ] && [ $n -lt 100 ]; do
			sleep 0.1
			n=$((n + 1))
		done
		[ -S "$dir/run/$lmtp" ] ||
			peers_die "dovecot lmtp socket $dir/run/$lmtp missing"
	fi
}

dovecot_stop() {
	[ -f "$1/dovecot.conf" ] &&
		doveadm -c "$1/dovecot.conf" stop >/dev/null 2>&1 || true
}

# postfix_register DIR: Postfix runs with `-c DIR` only when
# /etc/postfix/main.cf lists DIR in alternate_config_directories.  Adds
# it there once, keeps the entries of other benchmarks whose directories
# still exist, and leaves exactly one such line.
postfix_register() {
	main=/etc/postfix/main.cf
	touch "$main"
	dirs=$({ sed -n 's/^alternate_config_directories[ \t]*=//p' "$main" |
		tr ', ' '\n\n'; echo "$1"; } |
		while read -r d; do [ -n "$d" ] && [ -d "$d" ] && echo "$d"; done |
		sort -u | paste -sd, -)
	sed -i '/^alternate_config_directories[ \t]*=/d' "$main"
	printf 'alternate_config_directories = %s\n' "$dirs" >>"$main"
}

# postfix_private DIR PORT: a private Postfix in DIR (its own queue and
# log, smtpd on 127.0.0.1:PORT, no chroot), with the settings every
# benchmark shares in DIR/etc/main.cf.  The caller appends where mail
# goes, then calls postfix_run DIR PORT.
postfix_private() {
	dir=$1 port=$2
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
	chown postfix:postfix "$dir/data"
	postfix_register "$dir/etc"
	cat >"$dir/etc/main.cf" <<EOF
# written by tests/bench/peers.sh
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/postfix.log
maillog_file_prefixes = $dir
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.example
mydestination =
mynetworks = 127.0.0.0/8
default_process_limit = 200
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
EOF
	# chroot off (column 5): the private queue has no chroot files.
	awk -v port="$port" '
		/^smtp[ \t]+inet/ { $1 = "127.0.0.1:" port }
		/^[a-z0-9.:]+[ \t]+(inet|unix|fifo|pass|unix-dgram)/ {
			$5 = "n"
		}
		{ print }' /etc/postfix/master.cf >"$dir/etc/master.cf"
}

postfix_run() {
	postfix -c "$1/etc" check >/dev/null 2>&1 || true
	postfix -c "$1/etc" start >/dev/null 2>&1 ||
		peers_die "postfix did not start; see $1/postfix.log"
	peers_wait_port "$2"
}

# postfix_start DIR PORT LMTP_SOCKET USERS DOMAIN: Postfix's smtpd on
# 127.0.0.1:PORT accepting mail for DOMAIN's users (the passwd-file
# USERS given to dovecot_start) and delivering it to Dovecot's LMTP.
postfix_start() {
	dir=$1 port=$2 lmtp=$3 users=$4 domain=$5
	postfix_private "$dir" "$port"
	cat >>"$dir/etc/main.cf" <<EOF
relay_domains =
virtual_mailbox_domains = $domain
virtual_mailbox_maps = texthash:$dir/etc/vmailbox
virtual_transport = lmtp:unix:$lmtp
smtpd_recipient_restrictions = permit_mynetworks, reject
EOF
	sed -n 's/^\([^#: ]*@[^:]*\):.*/\1 ok/p' "$users" >"$dir/etc/vmailbox"
	postfix_run "$dir" "$port"
}

postfix_stop() {
	[ -d "$1/etc" ] && postfix -c "$1/etc" stop >/dev/null 2>&1 || true
}

peers_now() {
	date +%s.%N
}

# peers_wait_delivered DIR N SECONDS: waits until the caller's `count DIR`
# reaches N, or nothing arrived for 10 seconds, or SECONDS passed; prints
# the time of the last arrival.
peers_wait_delivered() {
	end=$(( $(date +%s) + $3 ))
	last=$(count "$1")
	seen=$(peers_now)
	idle=$(date +%s)
	while [ "$last" -lt "$2" ] && [ "$(date +%s)" -lt "$end" ] &&
	      [ $(( $(date +%s) - idle )) -lt 10 ]
	do
		sleep 0.05
		n=$(count "$1")
		if [ "$n" -ne "$last" ]; then
			last=$n
			seen=$(peers_now)
			idle=$(date +%s)
		fi
	done
	echo "$seen"
}

peers_wait_port() {
	n=0
	while [ $n -lt 100 ]; do
		python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$1" 2>/dev/null &&
			return 0
		sleep 0.1
		n=$((n + 1))
	done
	peers_die "nothing listens on 127.0.0.1:$1"
}

# A free TCP port on 127.0.0.1.
peers_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
