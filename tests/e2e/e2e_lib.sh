# Shared helpers of the end-to-end test (tests/e2e/e2e_unbound.sh) and of the
# demo (scripts/demo.sh). Sourced by bash; needs `set -eu` in the caller.
#
# The whole path is real software on loopback: regsignd (hidden primary) ->
# knotd (secondary, AXFR then IXFR after NOTIFY) -> unbound (validating
# resolver whose only trust anchor is the key ceremony's DS). Every server is
# started here, recorded by PID and stopped by PID; all files live in one
# temporary directory, E2E_T. A missing tool is a failure, never a skip.

# shellcheck source=../lib/net.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/net.sh"

E2E_ZONE=iotregistry.test.
E2E_PIDS=""
E2E_T=""
E2E_KEEP=${REGSIGN_TEST_KEEP:-}

e2e_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

e2e_note() { echo "--- $*"; }

# e2e_require TOOL...: each must be on PATH (Debian packages named on failure).
e2e_require() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 ||
			e2e_fail "required tool '$t' is not installed (Debian: knot, knot-dnsutils," \
				"bind9-dnsutils, unbound, openssl, softhsm2, opensc, python3;" \
				"see scripts/install-deps.sh)"
	done
}

# e2e_init PREFIX: the temporary directory and the EXIT trap that stops what
# was started. Sets E2E_T.
e2e_init() {
	E2E_T=$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")
	chmod 0700 "$E2E_T"
	trap e2e_cleanup EXIT
	# Without these bash would die of the signal without running the EXIT
	# trap, and the servers (which ignore SIGINT as background jobs) would
	# stay behind.
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}

# Stops every process still recorded, by PID, then removes E2E_T (kept when
# REGSIGN_TEST_KEEP is set, or shown in part when the run failed).
e2e_cleanup() {
	local rc=$? p f
	local end=$(($(date +%s) + 30)) left
	for p in $E2E_PIDS; do
		kill -TERM "$p" 2>/dev/null || true
	done
	# A server that ignores SIGTERM for 30 s is killed, so that a failed run
	# never leaves processes behind.
	while :; do
		left=""
		for p in $E2E_PIDS; do
			kill -0 "$p" 2>/dev/null && left="$left $p"
		done
		[ -n "$left" ] && [ "$(date +%s)" -lt "$end" ] || break
		sleep 0.2
	done
	for p in $left; do
		echo "pid $p ignored SIGTERM for 30 s; killing it" >&2
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in $E2E_PIDS; do
		wait "$p" 2>/dev/null || true
	done
	E2E_PIDS=""
	if [ $rc -ne 0 ] && [ -n "$E2E_T" ]; then
		for f in "$E2E_T"/*.log; do
			[ -f "$f" ] || continue
			echo "=== $f (last 40 lines)" >&2
			tail -n 40 "$f" >&2
		done
	fi
	if [ -n "$E2E_T" ]; then
		if [ -n "$E2E_KEEP" ]; then
			echo "files kept in $E2E_T" >&2
		else
			rm -rf "$E2E_T"
		fi
	fi
	exit $rc
}

# e2e_track PID: remember a process to stop at exit.
e2e_track() { E2E_PIDS="$E2E_PIDS $1"; }

# e2e_stop NAME PID: SIGTERM one process started here; its exit must be clean.
e2e_stop() {
	local name=$1 p=$2 rc=0
	kill -TERM "$p" 2>/dev/null || e2e_fail "$name (pid $p) is no longer running"
	wait "$p" || rc=$?
	E2E_PIDS=$(echo "$E2E_PIDS" | tr ' ' '\n' | grep -vx "$p" | tr '\n' ' ')
	[ $rc -eq 0 ] || e2e_fail "$name (pid $p) exited with status $rc"
}

# A port free right now on 127.0.0.1 for both TCP and UDP: free_port of
# tests/lib/net.sh under this library's prefix (scripts/demo.sh uses it).
e2e_free_port() {
	free_port
}

# e2e_wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds. The
# bound is a generous liveness bound, not a performance claim.
e2e_wait_until() {
	local limit=$1 what=$2 end
	shift 2
	end=$(($(date +%s) + limit))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || e2e_fail "timed out after ${limit}s waiting for $what"
		sleep 0.2
	done
}

# e2e_alive NAME PID: fails when a server we started has died.
e2e_alive() {
	kill -0 "$2" 2>/dev/null || e2e_fail "$1 (pid $2) died; see its log"
}

# e2e_serial_at PORT: the SOA serial served at 127.0.0.1@PORT (empty if none).
e2e_serial_at() {
	dig @127.0.0.1 -p "$1" +short +time=2 +tries=1 "$E2E_ZONE" SOA 2>/dev/null |
		awk 'NF == 7 { print $3 }'
}

# e2e_serial_ge PORT N: the server at PORT serves serial N or later (RFC 1982
# arithmetic is not needed for the few changes a run makes).
e2e_serial_ge() {
	local s
	s=$(e2e_serial_at "$1")
	[ -n "$s" ] && [ "$s" -ge "$2" ]
}

# ---- regsignd ----

# e2e_dev_setup SRC: a fresh development setup (SoftHSM token, the example
# key ceremony) in $E2E_T/dev; sets ANCHOR to the ceremony's DS file.
e2e_dev_setup() {
	e2e_note "fresh development setup (SoftHSM token, example key ceremony)"
	REGSIGN_BIN_DIR=$E2E_BIN "$1/hsm-setup/dev-setup.sh" "$E2E_T/dev" >"$E2E_T/dev-setup.out" 2>&1 ||
		{ cat "$E2E_T/dev-setup.out" >&2; e2e_fail "dev-setup.sh failed"; }
	ANCHOR=$E2E_T/dev/out/ds.txt
	[ "$(grep -c '[[:space:]]DS[[:space:]]' "$ANCHOR")" -ge 1 ] || e2e_fail "$ANCHOR holds no DS record"
}

# e2e_daemon_config SRC DST LISTEN_PORT NOTIFY_PORT: a copy of a dev-setup
# regsignd.yaml whose DNS listener is 127.0.0.1@LISTEN_PORT and whose NOTIFY
# goes to 127.0.0.1@NOTIFY_PORT. The source file is never modified, so the
# demo leaves ./var/dev as it found it.
e2e_daemon_config() {
	local src=$1 dst=$2 lport=$3 nport=$4
	awk -v l="$lport" -v n="$nport" '
		/^[^[:space:]#]/ { in_dns = ($1 == "dns:") }
		in_dns && /^[[:space:]]+listen:/ { sub(/listen:.*/, "listen: [\"127.0.0.1:" l "\"]"); nl++ }
		in_dns && /^[[:space:]]+notify:/ { sub(/notify:.*/, "notify: [\"127.0.0.1:" n "\"]"); nn++ }
		{ print }
		END { exit (nl == 1 && nn == 1) ? 0 : 1 }
	' "$src" >"$dst" ||
		e2e_fail "$src has no one-line dns.listen and dns.notify to point at loopback ports"
}

# e2e_start_regsignd CONFIG SOCKET LOG: starts regsignd (E2E_REGSIGND_PID) and
# returns once its socket answers HELLO.
e2e_start_regsignd() {
	local conf=$1 sock=$2 log=$3
	"$E2E_BIN/regsignd" -c "$conf" >>"$log" 2>&1 &
	E2E_REGSIGND_PID=$!
	e2e_track "$E2E_REGSIGND_PID"
	local end=$(($(date +%s) + 120))
	until "$E2E_BIN/regsign" -s "$sock" -t 10 hello >/dev/null 2>&1; do
		e2e_alive regsignd "$E2E_REGSIGND_PID"
		[ "$(date +%s)" -lt "$end" ] || e2e_fail "regsignd not ready on $sock after 120s"
		sleep 0.2
	done
}

# e2e_sanitizer_check LOG: no AddressSanitizer/UBSan/LSan report in LOG.
e2e_sanitizer_check() {
	if grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$1"; then
		grep -n -A20 -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' \
			-e 'runtime error:' "$1" | head -60 >&2
		e2e_fail "sanitizer report in $1"
	fi
}

# ---- knotd, the secondary ----

# e2e_start_knot PORT PRIMARY_PORT: knotd on 127.0.0.1@PORT as a secondary of
# regsignd at 127.0.0.1@PRIMARY_PORT (E2E_KNOT_PID). It accepts NOTIFY from
# the primary and transfers to loopback (for the test's own comparison). The
# journal holds changesets only and is capped well above what a run makes but
# far below Knot's multi-gigabyte defaults, which a temp dir need not map.
e2e_start_knot() {
	local port=$1 primary=$2 d=$E2E_T/knot
	mkdir -p "$d/run" "$d/db" "$d/zones"
	cat >"$d/knot.conf" <<EOC
server:
    rundir: "$d/run"
    listen: 127.0.0.1@$port
database:
    storage: "$d/db"
    journal-db-max-size: 256M
    timer-db-max-size: 16M
    kasp-db-max-size: 16M
    catalog-db-max-size: 16M
log:
  - target: "$E2E_T/knot.log"
    any: info
remote:
  - id: regsignd
    address: 127.0.0.1@$primary
acl:
  - id: notify_from_regsignd
    address: 127.0.0.1
    action: notify
  - id: transfer_to_loopback
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "$d/zones"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    journal-max-usage: 64M
    journal-max-depth: 1000
zone:
  - domain: $E2E_ZONE
    master: regsignd
    acl: [notify_from_regsignd, transfer_to_loopback]
EOC
	knotd -c "$d/knot.conf" >>"$E2E_T/knot.log" 2>&1 &
	E2E_KNOT_PID=$!
	e2e_track "$E2E_KNOT_PID"
}

# ---- unbound, the validating resolver ----

# e2e_unbound_binary: sets E2E_UNBOUND_BIN, the unbound to run. Debian's
# AppArmor profile for /usr/sbin/unbound lets it read only /etc/unbound and
# /var/lib/unbound, so where AppArmor is on, a copy in the temp dir runs
# instead: the profile is attached by path, and a private instance on a
# loopback port needs none of the system service's confinement.
e2e_unbound_binary() {
	E2E_UNBOUND_BIN=$(command -v unbound)
	if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] &&
		[ -e /etc/apparmor.d/usr.sbin.unbound ]; then
		[ -x "$E2E_T/unbound-unconfined" ] || cp "$E2E_UNBOUND_BIN" "$E2E_T/unbound-unconfined" ||
			e2e_fail "cannot copy $E2E_UNBOUND_BIN into $E2E_T"
		E2E_UNBOUND_BIN=$E2E_T/unbound-unconfined
	fi
}

# e2e_start_unbound PORT KNOT_PORT ANCHOR [NAME]: unbound on 127.0.0.1@PORT
# with the DS records of the file ANCHOR as its only trust anchor, reaching
# the registry zone through a stub zone at Knot (E2E_UNBOUND_PID; files
# E2E_T/NAME.*, NAME defaults to unbound). Control goes
# through a Unix socket in the temp dir, so unbound-control needs no keys and
# no other local user can reach it. unbound's built-in `test.` local zone
# would answer for the registry itself, hence `nodefault`.
e2e_start_unbound() {
	local port=$1 knot=$2 anchor=$3 name=${4:-unbound}
	E2E_UNBOUND_CONF=$E2E_T/$name.conf
	cat >"$E2E_UNBOUND_CONF" <<EOC
server:
    interface: 127.0.0.1@$port
    port: $port
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "$E2E_T"
    pidfile: ""
    use-syslog: no
    logfile: "$E2E_T/$name.log"
    log-time-ascii: yes
    verbosity: 1
    val-log-level: 2
    num-threads: 1
    so-reuseport: no
    do-not-query-localhost: no
    local-zone: "test." nodefault
    trust-anchor-file: "$anchor"
    trust-anchor-signaling: no
    root-key-sentinel: no
    module-config: "validator iterator"
stub-zone:
    name: "$E2E_ZONE"
    stub-addr: 127.0.0.1@$knot
remote-control:
    control-enable: yes
    control-interface: "$E2E_T/$name.ctl"
EOC
	unbound-checkconf "$E2E_UNBOUND_CONF" >"$E2E_T/$name-checkconf.out" 2>&1 ||
		{ cat "$E2E_T/$name-checkconf.out" >&2; e2e_fail "unbound-checkconf refused $E2E_UNBOUND_CONF"; }
	e2e_unbound_binary
	"$E2E_UNBOUND_BIN" -d -c "$E2E_UNBOUND_CONF" >>"$E2E_T/$name-stderr.log" 2>&1 &
	E2E_UNBOUND_PID=$!
	e2e_track "$E2E_UNBOUND_PID"
	e2e_wait_until 60 "$name's control socket" \
		unbound-control -c "$E2E_UNBOUND_CONF" status
}

# e2e_check_wrong_ds UPSTREAM_PORT NAME TYPE: the control of every AD check.
# A second unbound, forwarding to UPSTREAM_PORT with a DS whose digest has one
# digit changed, must answer NAME TYPE SERVFAIL without AD: the AD bits came
# from the ceremony's DS ($ANCHOR) and nothing else. The first unbound's
# E2E_UNBOUND_CONF/_PID are kept.
e2e_check_wrong_ds() {
	local good_conf=$E2E_UNBOUND_CONF good_pid=$E2E_UNBOUND_PID bport
	awk '{ d = $NF; c = substr(d, length(d)); $NF = substr(d, 1, length(d) - 1) (c == "0" ? "1" : "0"); print }' \
		"$ANCHOR" >"$E2E_T/ds-wrong.txt"
	cmp -s "$ANCHOR" "$E2E_T/ds-wrong.txt" && e2e_fail "could not make a wrong DS"
	bport=$(e2e_free_port)
	e2e_start_unbound "$bport" "$1" "$E2E_T/ds-wrong.txt" unbound-wrong-ds
	e2e_dig "$bport" "$2" "$3" "$E2E_T/qbad.out"
	[ "$(e2e_rcode "$E2E_T/qbad.out")" = SERVFAIL ] ||
		{ cat "$E2E_T/qbad.out" >&2; e2e_fail "$2 $3: a wrong trust anchor did not make the answer bogus"; }
	e2e_has_ad "$E2E_T/qbad.out" && e2e_fail "$2 $3: AD set under a wrong trust anchor"
	e2e_stop unbound-wrong-ds "$E2E_UNBOUND_PID"
	E2E_UNBOUND_CONF=$good_conf
	E2E_UNBOUND_PID=$good_pid
}

# e2e_unbound_flush: forget everything unbound holds about the registry zone
# (positive and negative answers, NSEC records, the zone's keys), as a cache
# that has waited out the TTLs would.
e2e_unbound_flush() {
	unbound-control -c "$E2E_UNBOUND_CONF" flush_zone "$E2E_ZONE" >/dev/null ||
		e2e_fail "unbound-control flush_zone failed"
	unbound-control -c "$E2E_UNBOUND_CONF" flush_negative >/dev/null ||
		e2e_fail "unbound-control flush_negative failed"
}

# ---- queries ----

# e2e_dig PORT NAME TYPE OUT: dig +dnssec through 127.0.0.1@PORT into OUT.
e2e_dig() {
	dig @127.0.0.1 -p "$1" +dnssec +time=5 +tries=2 "$2" "$3" >"$4" 2>&1 ||
		{ cat "$4" >&2; e2e_fail "dig $2 $3 at port $1 failed"; }
}

# e2e_rcode OUT: the answer's status (NOERROR, NXDOMAIN, SERVFAIL, ...).
e2e_rcode() { sed -n 's/.*status: \([A-Z]*\),.*/\1/p' "$1" | head -n1; }

# e2e_has_ad OUT: the header's flags include ad (validated by the resolver).
e2e_has_ad() { grep -q '^;; flags:[a-z ]* ad[ ;]' "$1"; }

# e2e_answer_count OUT: the header's ANSWER count.
e2e_answer_count() { sed -n 's/.*ANSWER: \([0-9]*\),.*/\1/p' "$1" | head -n1; }

# e2e_section OUT NAME: the records of one section (ANSWER, AUTHORITY), one
# per line, as dig prints them.
e2e_section() {
	awk -v s=";; $2 SECTION:" '$0 == s { on = 1; next } /^;; / || /^$/ { on = 0 } on' "$1"
}

# ---- devices ----

# e2e_make_csr DIR NAME: an EC P-256 key made on the spot (standing in for
# the device's eSIM) and its PKCS#10 request, DIR/NAME.key and DIR/NAME.csr.
e2e_make_csr() {
	openssl ecparam -name prime256v1 -genkey -noout -out "$1/$2.key" 2>/dev/null ||
		e2e_fail "openssl ecparam failed"
	openssl req -new -key "$1/$2.key" -subj "/CN=$2" -out "$1/$2.csr" 2>/dev/null ||
		e2e_fail "openssl req failed"
}

# e2e_cert_b64_sha256 PEM: base64 of the SHA-256 of the certificate's DER,
# the payload a `seed` style CERT record carries.
e2e_cert_b64_sha256() {
	openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -binary | base64
}

# e2e_cert_payload OUT NAME: the base64 payload of NAME's CERT record in the
# answer section of OUT (the fourth field on of the RDATA, spaces removed).
e2e_cert_payload() {
	e2e_section "$1" ANSWER |
		awk -v n="$2" '$1 == n && $4 == "CERT" { s = ""; for (i = 8; i <= NF; i++) s = s $i; print s }'
}
