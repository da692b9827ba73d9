#!/bin/bash
# bench/run.sh: regsign's benchmark suite against the anchors (issue 5).
#
#   bench/run.sh [--smoke] [--devices N] [--out DIR] [--seconds S] [--clients N]
#                [--keep] [--peers all|token|none] [--only NAME[,NAME...]]
#                [--key-copies on|off] [--cpu-latency on|off]
#
# From a fresh clone: builds (its own build directory, unless REGSIGN_BIN_DIR
# and REGSIGN_BUILD_DIR name a built tree, as under ctest), makes a SoftHSM
# token and a development setup in a temporary directory (hsm-setup/
# dev-setup.sh), and then, for each measurement, takes R (the anchors' raw
# PKCS#11 loop, one thread per core, on the same token) just before and just
# after it. Measurements: the load generator checked against a fake daemon;
# SIGN_RRSET, ISSUE and REVOKE over regsignd's socket (when the daemon is
# built); full signing of N devices through the bulk import path with token
# keys; the peers with file keys (the anchors' peers.sh) and with token keys
# (bench/peers_token.sh) on the same zone; and regsignd's own zone at N
# devices, imported through IMPORT (`regsign import`) into a second daemon
# state: REVOKE at 100/s in it, REVOKE to the new serial on its DNS listener
# (against Knot's dynamic update), REVOKE to NXDOMAIN validated by unbound
# behind a Knot secondary (NOTIFY + IXFR) and the same behind NSD
# (revoke_secondary_nsd, no target), and the restart to the last serial
# served. Issue 6's figures come from two attack tests (tests/attack)
# run on their own fresh setups: hsm_recovery, the time from a network HSM
# (`p11-kit server`) being back to the first successful ISSUE, and
# flood_latency, a well-behaved caller's latency while another floods (not
# in --smoke: minutes each). --only runs just the named measurements (the
# others are reported as not run), e.g. --only restart,revoke_secondary.
#
# Output in DIR (default ./bench-out): raw/ (every tool's own output),
# results.json, table.txt and RESULTS.md (the table with date and machine;
# copy it to bench/RESULTS.md to publish a run). --smoke: tiny sizes and 1 s
# per measurement, for CI; the JSON is the same shape.
#
# --zone-state DIR: instead of a fresh setup and an import, use DIR, a
# private copy of a daemon state with DIR/dev (its token, pin, policy) and
# DIR/zd/regsignd.yaml (its socket, DNS port and NOTIFY port already its
# own), as bench/copy_state.sh makes from a --keep run; only with --only naming
# zone measurements (revoke, revoke_vs_knot_update, revoke_secondary,
# revoke_secondary_nsd, restart). The copy is modified (revocations).
#
# Environment: REGSIGN_ANCHORS (default <repo>/../shared/bench: p11bench.c,
# gen_zone.py, peers.sh, knot_common.sh, openssl-pkcs11.cnf),
# REGSIGN_SOFTHSM_MODULE, REGSIGN_BIN_DIR + REGSIGN_BUILD_DIR (a built tree to
# use instead of building), TMPDIR.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(dirname "$here")
smoke=0 devices=1000000 out=$PWD/bench-out seconds=10 clients=16 keep=0 peers=all only= zstate=
copies=on cpulat=on
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--devices) devices=$2; shift ;;
	--out) out=$2; shift ;;
	--seconds) seconds=$2; shift ;;
	--clients) clients=$2; shift ;;
	--keep) keep=1 ;;
	--peers) peers=$2; shift ;;
	--no-peers) peers=none ;;
	--only) only=,$2,; shift ;;
	--zone-state) zstate=$2; shift ;;
	--key-copies) copies=$2; shift ;;
	--cpu-latency) cpulat=$2; shift ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ $smoke = 1 ]; then
	devices=2000 seconds=1 clients=4
fi
rsec=$([ $smoke = 1 ] && echo 1 || echo 3)   # seconds per R measurement
threads=$(nproc)
module=${REGSIGN_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
anchors=${REGSIGN_ANCHORS:-$(dirname "$src")/shared/bench}

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "run.sh: $*" >&2; }

# ---- tools: a missing one is a failure, never a silent skip ----
for t in cc cmake python3 openssl pkcs11-tool softhsm2-util ldns-signzone ldns-verify-zone \
	dnssec-keygen dnssec-signzone knotd knotc kdig unbound unbound-control unbound-checkconf \
	nsd nsd-checkconf; do
	command -v "$t" >/dev/null || die "$t not found (see bench/README.md for the packages)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
[ -r "$module" ] || die "SoftHSM2 module $module not found (apt-get install softhsm2)"
for f in p11bench.c gen_zone.py peers.sh knot_common.sh openssl-pkcs11.cnf; do
	[ -r "$anchors/$f" ] || die "anchor $anchors/$f not found (set REGSIGN_ANCHORS)"
done
if [ -n "$zstate" ]; then
	[ -r "$zstate/dev/softhsm2.conf" ] && [ -r "$zstate/zd/regsignd.yaml" ] ||
		die "--zone-state $zstate: no dev/softhsm2.conf or zd/regsignd.yaml there"
	zstate=$(cd "$zstate" && pwd)
	[ -n "$only" ] || die "--zone-state needs --only (zone measurements)"
	for m in $(tr , ' ' <<<"$only"); do
		case $m in revoke|revoke_vs_knot_update|revoke_secondary|revoke_secondary_nsd|restart) ;;
		*) die "--zone-state: $m is not a measurement in regsignd's zone" ;;
		esac
	done
fi
engine=$(sed -n 's/^dynamic_path *= *//p' "$anchors/openssl-pkcs11.cnf")
[ -r "$engine" ] || die "OpenSSL pkcs11 engine $engine not found (apt-get install libengine-pkcs11-openssl)"

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/raw"
mkdir -p "$out/raw"
raw=$out/raw
tmp=$(mktemp -d "${TMPDIR:-/tmp}/regsign-bench.XXXXXX")
git -C "$src" describe --always --dirty >"$raw/git.txt" 2>/dev/null || true
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
	done
	if [ $keep = 1 ]; then log "work directory kept: $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# The anchors are copied, so that the run uses one consistent version.
cp -r "$anchors" "$tmp/anchors"
chmod -R u+w "$tmp/anchors"
export REGSIGN_ANCHORS=$tmp/anchors
# Knot's default journal cannot take the signing diff of a 1M-device zone
# (its zone load fails: "not enough space provided", and peers.sh would
# wait an hour for a signed SOA). The copy's Knot template gets room.
if ! grep -q journal-max-usage "$tmp/anchors/knot_common.sh"; then
	sed -i -e 's/^database:$/database:\n    journal-db-max-size: 64G/' \
		-e 's/^    zonefile-sync: -1$/    zonefile-sync: -1\n    journal-max-usage: 32G/' \
		"$tmp/anchors/knot_common.sh"
fi

# ---- build ----
if [ -n "${REGSIGN_BIN_DIR:-}" ] && [ -x "$REGSIGN_BIN_DIR/regsign" ] &&
	[ -n "${REGSIGN_BUILD_DIR:-}" ] && [ -r "$REGSIGN_BUILD_DIR/CMakeCache.txt" ]; then
	bin=$REGSIGN_BIN_DIR build=$REGSIGN_BUILD_DIR
	log "using the built tree $build"
else
	build=${REGSIGN_BENCH_BUILD:-$src/build-benchrun}
	bin=$build/bin
	log "building in $build"
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$raw/build.log" 2>&1 ||
		die "configure failed (see $raw/build.log)"
	targets="regsign regsign-ceremony regsign-zone regsign-hsm"
	# (Not piped into grep -q: under pipefail its early exit fails the pipe.)
	if grep -qw regsignd <<<"$(cmake --build "$build" --target help 2>/dev/null)"; then
		targets="$targets regsignd"
	fi
	# shellcheck disable=SC2086
	cmake --build "$build" -j"$threads" --target $targets >>"$raw/build.log" 2>&1 ||
		die "build failed (see $raw/build.log)"
fi
for p in regsign regsign-ceremony; do
	[ -x "$bin/$p" ] || die "$bin/$p missing: build it"
done
bulk=$bin/regsign-bench-bulk
if [ ! -x "$bulk" ]; then
	# bench/ is not part of the top-level build: build it as a sub-project
	# against the libraries of that tree, with the same sanitizer setting.
	san=$(sed -n 's/^REGSIGN_SANITIZE:BOOL=//p' "$build/CMakeCache.txt")
	cmake -S "$here" -B "$tmp/bench-build" -DREGSIGN_BUILD_DIR="$build" \
		-DREGSIGN_SANITIZE="${san:-OFF}" >"$raw/bench-build.log" 2>&1 &&
		cmake --build "$tmp/bench-build" >>"$raw/bench-build.log" 2>&1 ||
		die "building bench/ failed (see $raw/bench-build.log)"
	bulk=$tmp/bench-build/bin/regsign-bench-bulk
fi
hsmloop=$(dirname "$bulk")/regsign-bench-hsm
[ -x "$hsmloop" ] || die "$hsmloop missing: build bench/ (regsign-bench-hsm)"
stalls=$(dirname "$bulk")/regsign-bench-stalls
[ -x "$stalls" ] || die "$stalls missing: build bench/ (regsign-bench-stalls)"

# ---- token and development setup ----
if [ -n "$zstate" ]; then
	dev=$zstate/dev
else
	dev=$tmp/dev
	REGSIGN_BIN_DIR=$bin REGSIGN_SOFTHSM_MODULE=$module "$src/hsm-setup/dev-setup.sh" "$dev" \
		>"$raw/dev-setup.log" 2>&1 || die "dev-setup failed (see $raw/dev-setup.log)"
fi
export SOFTHSM2_CONF=$dev/softhsm2.conf
token=regsign-dev
pin=$(cat "$dev/pin")
cc -O2 -Wall -I/usr/include/p11-kit-1 -o "$tmp/p11bench" "$tmp/anchors/p11bench.c" -ldl -lpthread \
	>"$raw/p11bench-build.log" 2>&1 || die "cannot build p11bench (see $raw/p11bench-build.log)"
# Ports free for TCP and UDP alike (the DNS listeners take both): the tests'
# one free_port (tests/lib/net.sh).
. "$here/../tests/lib/net.sh"

# The daemon's files, adapted for a benchmark: no rate limit for the
# benchmark caller, and a free port for the DNS listener (5353 may be taken).
if [ -z "$zstate" ]; then
	sed -i '/^[[:space:]]*rate-limit:/d' "$dev/policy.yaml"
	sed -i "s/127.0.0.1:5353/127.0.0.1:$(free_port)/" "$dev/regsignd.yaml"
fi
# --key-copies off: the HSM process signs with the token objects themselves
# (hsm.key-copies: false), to measure what the session copies buy.
case $copies in on|off) ;; *) die "--key-copies on|off" ;; esac
for y in "$dev/regsignd.yaml" ${zstate:+"$zstate/zd/regsignd.yaml"}; do
	[ -f "$y" ] || continue
	sed -i '/^  key-copies:/d' "$y"
	if [ $copies = off ]; then
		sed -i 's/^hsm:$/hsm:\n  key-copies: false/' "$y"
	fi
done
# --cpu-latency on (the default): the daemons hold idle CPUs awake while
# requests are in (cpu-latency, docs/CONFIG.md: at 100 REVOKE/s every hand-off
# otherwise lands on a halted vCPU); off measures without it. A --zone-state
# copy gets the setting too (its config came from a --keep run).
case $cpulat in on|off) ;; *) die "--cpu-latency on|off" ;; esac
for y in "$dev/regsignd.yaml" ${zstate:+"$zstate/zd/regsignd.yaml"}; do
	[ -f "$y" ] || continue
	sed -i '/^cpu-latency:/d' "$y"
	if [ $cpulat = on ]; then
		echo 'cpu-latency: {enabled: true, limit-us: 0}' >>"$y"
	fi
done
echo "key-copies $copies, cpu-latency $cpulat" >"$raw/settings.txt"

# R: the raw PKCS#11 loop, one thread per core, on the daemon's ZSK.
measure_r() {
	"$tmp/p11bench" "$module" "$token" "$pin" bench ec regsign-zsk "$threads" "$rsec" \
		>"$1" 2>&1 || { cat "$1" >&2; die "p11bench failed"; }
}

# measure NAME COMMAND...: R before, the command (its stdout to raw/NAME.out,
# stderr to raw/NAME.err), R after; its status to raw/NAME.status.
only_list=${only#,}
only_list=${only_list%,}
# wanted NAME...: whether --only asks for any of them (everything without --only).
wanted() {
	local n
	[ -z "$only" ] && return 0
	for n in "$@"; do
		case $only in *,"$n",*) return 0 ;; esac
	done
	return 1
}
measure() {
	local name=$1
	shift
	if ! wanted "$name"; then
		echo "not_measurable: not run (--only ${only_list})" >"$raw/$name.status"
		return 0
	fi
	log "measuring $name"
	measure_r "$raw/$name.r_before"
	if "$@" >"$raw/$name.out" 2>"$raw/$name.err"; then
		echo ok >"$raw/$name.status"
	else
		echo "failed: exit $? (see raw/$name.err)" >"$raw/$name.status"
		log "$name failed: $(tail -3 "$raw/$name.err")"
	fi
	measure_r "$raw/$name.r_after"
}
# user + system CPU time of a process, in clock ticks (0 if it is gone)
cpu_ticks() { awk '{print $14 + $15}' "/proc/${1:-0}/stat" 2>/dev/null || echo 0; }
not_measurable() { echo "not_measurable: $2" >"$raw/$1.status"; log "$1: not measurable yet: $2"; }

# ---- 1. the load generator against a fake daemon ----
measure loadgen_check python3 "$here/loadgen_check.py" "$bin/regsign"

# ---- 2. the daemon over its socket ----
# First the HSM process's own ceiling: libregsign-hsm's signing loop on the
# same key and threads as R, with the token object (R through our library)
# and with session copies (hsm.key-copies, the daemon's default).
hsm_loop_run() {
	local c
	for c in off on; do
		"$hsmloop" --module "$module" --token-uri "pkcs11:token=$token" \
			--pin-file "$dev/pin" --key "pkcs11:token=$token;object=regsign-zsk" \
			--threads "$threads" --seconds "$rsec" --key-copies $c --json || return 1
	done
}
measure hsm_loop hsm_loop_run
# The disk's fsync latency where the daemon keeps its state: a durable reply
# waits for at least two (intent, then change), so it bounds REVOKE's p99.
python3 - "$dev/state" >"$raw/fsync.json" <<'EOF'
import json, os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
v = []
for i in range(200):
    os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
    t = time.monotonic()
    os.fsync(fd)
    v.append((time.monotonic() - t) * 1e3)
os.close(fd)
os.unlink(path)
v.sort()
print(json.dumps({"p50": round(v[99], 3), "p99": round(v[197], 3), "max": round(v[-1], 3)}))
EOF
daemon_ops="sign_rrset issue revoke"
# Whether the CLI has `regsign import` (IMPORT): then REVOKE is measured in a
# zone of N devices imported into a second daemon state (section 5).
has_import=0
# (Not piped into grep -q: under pipefail its early exit fails the pipe.)
if [ -x "$bin/regsignd" ] && grep -qw import <<<"$("$bin/regsign" help 2>&1)"; then
	has_import=1
fi
# start_daemon CONFIG SOCKET LOG: regsignd in the background (dpid, its HSM
# process hpid); 0 once its socket answers HELLO.
start_daemon() {
	"$bin/regsignd" -c "$1" >>"$3" 2>&1 &
	dpid=$!
	pids+=("$dpid")
	for _ in $(seq 1 3000); do
		if "$bin/regsign" -s "$2" -t 5 hello >/dev/null 2>&1; then
			hpid=$(cat "/proc/$dpid/task/$dpid/children" 2>/dev/null | awk '{print $1}')
			return 0
		fi
		kill -0 "$dpid" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
# hwm_kb WHEN: "WHEN front_kB hsm_kB": the daemon's two processes' peak RSS.
hwm_kb() {
	local f h
	f=$(awk '/^VmHWM/{print $2}' "/proc/$dpid/status" 2>/dev/null)
	h=$(awk '/^VmHWM/{print $2}' "/proc/$hpid/status" 2>/dev/null)
	echo "$1 front_kB=${f:-?} hsm_kB=${h:-?}"
}
stop_daemon() {
	kill -TERM "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
}
# lg NAME ARGS: the load generator on $sock (its own CPU time on stderr), and
# the CPU time the front and the HSM process spent meanwhile, in clock
# ticks, to raw/NAME.cpu: where a daemon's time goes.
lg() {
	local name=$1 f0 h0 rc=0
	shift
	f0=$(cpu_ticks "$dpid") h0=$(cpu_ticks "$hpid")
	/usr/bin/time -f 'loadgen-cpu: %U %S' "$bin/regsign" -s "$sock" -t 120 bench \
		--json --clients "$clients" --seconds "$seconds" \
		--warmup "$([ $smoke = 1 ] && echo 0.2 || echo 1)" "$@" || rc=$?
	echo "$f0 $h0 $(cpu_ticks "$dpid") $(cpu_ticks "$hpid") $(getconf CLK_TCK)" \
		>"$raw/$name.cpu"
	return $rc
}
# Target 3: a steady 100 revocations/s, latency to the durable reply.
# settle_disk WHY: wait (at most 300 s) until the disk under $tmp has written
# less than 1 MiB/s for 3 s in a row, then sync. After a 1M import the
# daemon's checkpointer copies a WAL of about 500 MB into the database in the
# background; REVOKE measured during that copy measures the copy's fsyncs
# (p99 12 ms against 5 ms settled). Target 3 is a steady 100/s, so the
# revocations wait for it; how long it took is in raw/settle.txt.
settle_disk() {
	local dev stat t0 quiet=0 prev cur
	dev=$(basename "$(df --output=source "$tmp" | tail -1)")
	stat=/sys/class/block/$dev/stat
	t0=$(date +%s)
	if [ -r "$stat" ]; then
		prev=$(awk '{print $7}' "$stat")
		while [ $quiet -lt 3 ] && [ $(($(date +%s) - t0)) -lt 300 ]; do
			sleep 1
			cur=$(awk '{print $7}' "$stat")
			if [ $((cur - prev)) -lt 2048 ]; then quiet=$((quiet + 1)); else quiet=0; fi
			prev=$cur
		done
	fi
	sync
	echo "$1: disk settled after $(($(date +%s) - t0)) s" >>"$raw/settle.txt"
	log "$1: disk settled after $(($(date +%s) - t0)) s"
}
# The load generator at 100/s with the stall probe beside it: what the
# machine itself added to the latencies (raw/revoke_stalls.json; report.py
# keeps the stalls of the measured window, the probe's last --seconds).
revoke_run() {
	local sp rc=0
	"$stalls" >"$raw/revoke_stalls.json" &
	sp=$!
	lg revoke --op revoke --profile device --rate 100 --clients 4 \
		--prepare $(( (seconds + 2) * 100 + 100 )) || rc=$?
	kill -TERM "$sp" 2>/dev/null || true
	wait "$sp" || true
	return $rc
}
measure_revoke() {
	[ -n "${zd:-}" ] && settle_disk "before revoke"
	measure revoke revoke_run
	"$bin/regsign" -s "$sock" zone-status --json >"$raw/zone_status.json" 2>/dev/null || true
}
if [ ! -x "$bin/regsignd" ]; then
	for m in $daemon_ops; do
		not_measurable "$m" "regsignd is not built yet (no $bin/regsignd)"
	done
elif wanted sign_rrset issue || { [ $has_import = 0 ] && wanted revoke; }; then
	sock=$dev/regsignd.sock
	if start_daemon "$dev/regsignd.yaml" "$sock" "$raw/regsignd.log"; then
		measure sign_rrset lg sign_rrset --op sign-rrset
		# The example policy's profile (regsignd wants one named).
		measure issue lg issue --op issue --profile device
		[ $has_import = 0 ] && measure_revoke
	else
		for m in $daemon_ops; do
			echo "failed: regsignd did not answer HELLO (see raw/regsignd.log)" >"$raw/$m.status"
		done
	fi
	stop_daemon
else
	for m in sign_rrset issue; do measure "$m" true; done
fi

# ---- 3. full signing through the bulk import path, token keys ----
zone=$tmp/zone-$devices.zone
if wanted bulk_sign peers_token; then
	python3 "$tmp/anchors/gen_zone.py" "$devices" "$zone"
fi
bulk_run() {
	/usr/bin/time -f 'time: %e %M' "$bulk" --module "$module" --token-uri "pkcs11:token=$token" \
		--pin-file "$dev/pin" --ksk "pkcs11:token=$token;object=regsign-ksk" \
		--zsk "pkcs11:token=$token;object=regsign-zsk" --zone-file "$zone" \
		--threads "$threads" --json "$@"
}
if [ $smoke = 1 ]; then
	# Small enough to verify what was signed, as well as time it.
	measure bulk_sign bulk_run --out "$tmp/bulk-signed.zone"
	if grep -qx ok "$raw/bulk_sign.status" &&
		! ldns-verify-zone "$tmp/bulk-signed.zone" >"$raw/bulk_verify.log" 2>&1; then
		echo "failed: ldns-verify-zone refused the bulk-signed zone" >"$raw/bulk_sign.status"
	fi
else
	measure bulk_sign bulk_run
fi

# ---- 4. the peers on the same zone ----
case $peers in all|token|none) ;; *) die "--peers all|token|none" ;; esac
if [ $peers != none ]; then
	measure peers_token "$here/peers_token.sh" "$zone" "$tmp/peers-token" "$(free_port)" \
		"$token" "$dev/pin" regsign-ksk regsign-zsk 1
else
	not_measurable peers_token "not run (--peers none)"
fi
if [ $peers = all ]; then
	# The anchors' peers.sh generates the same zone (same N, same seed).
	measure peers_file "$tmp/anchors/peers.sh" "$devices" "$tmp/peers-file" "$(free_port)"
else
	not_measurable peers_file "not run (--peers $peers)"
fi

# ---- 5. regsignd's own zone at N devices (targets 3, 5, 6) ----
# A second state directory (same token and keys, its own socket, DNS port
# and NOTIFY target), filled through IMPORT with N devices (records by
# certificate hash), then: REVOKE at 100/s in it; REVOKE to the new serial on
# its DNS listener; REVOKE to NXDOMAIN validated by unbound behind a Knot
# secondary; the restart to the last serial served (last: it stops the daemon).
# Its zone file is written on demand only (zone-file-interval: 0): at 1M
# devices a write takes one core and the disk for 8-11 s on its own thread,
# and revocations during back-to-back writes have a p99 of ~9-12 ms against
# ~6-8 ms without (docs/CONFIG.md, "The zone file"); target 3 is a steady
# state without it.
zone_ms="revoke revoke_vs_knot_update revoke_secondary revoke_secondary_nsd restart"
zname=iotregistry.test.
nrev=$([ $smoke = 1 ] && echo 3 || echo 20)    # revocations timed one by one
nrestart=$([ $smoke = 1 ] && echo 1 || echo 3)
# issue_devices FILE N PREFIX: N certificates issued through the CLI (fresh
# P-256 keys), "<device> 1" lines in FILE for zone_timing.py. The run's time
# is in the ids, so that runs on one --zone-state copy do not collide.
runtag=$(printf '%06x' $(($(date +%s) & 0xffffff)))
issue_devices() {
	local i d
	: >"$1"
	for i in $(seq 1 "$2"); do
		d=$(printf '%s%s%012x' "$3" "$runtag" "$i")
		openssl ecparam -name prime256v1 -genkey -noout -out "$zd/k.pem" 2>/dev/null &&
			openssl req -new -key "$zd/k.pem" -subj "/CN=$d" -out "$zd/r.csr" 2>/dev/null ||
			return 1
		"$bin/regsign" -s "$sock" -t 60 issue --device "$d" --index 1 --profile device \
			--csr "$zd/r.csr" --out "$zd/c.pem" >>"$raw/zone_issue.log" 2>&1 || return 1
		echo "$d 1" >>"$1"
	done
}
soa_at() { kdig +short +timeout=2 +retry=1 @127.0.0.1 -p "$1" "$zname" SOA 2>/dev/null | awk '{print $3}'; }
wait_serial_at() {   # PORT SERIAL SECONDS
	local end=$(($(date +%s) + $3)) s
	while [ "$(date +%s)" -lt "$end" ]; do
		s=$(soa_at "$1")
		[ -n "$s" ] && [ "$s" -ge "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
if ! wanted $zone_ms; then
	:
elif [ ! -x "$bin/regsignd" ]; then
	for m in $zone_ms; do not_measurable "$m" "regsignd is not built yet (no $bin/regsignd)"; done
elif [ $has_import = 0 ]; then
	for m in revoke_vs_knot_update revoke_secondary revoke_secondary_nsd restart; do
		not_measurable "$m" "regsign has no import command (IMPORT): no N-device zone in regsignd"
	done
elif [ -n "$zstate" ]; then
	zd=$zstate/zd
	# The copy's own ports: its DNS listener and where it sends NOTIFY.
	zport=$(sed -n 's/^  listen: \["127.0.0.1:\([0-9]*\)"\]/\1/p' "$zd/regsignd.yaml")
	kport=$(sed -n 's/^  notify: \["127.0.0.1:\([0-9]*\)"\]/\1/p' "$zd/regsignd.yaml")
	uport=$(free_port)
	[ -n "$zport" ] && [ -n "$kport" ] ||
		die "--zone-state: no listen/notify 127.0.0.1 port in $zd/regsignd.yaml"
	sock=$(sed -n 's/^  path: \(.*regsignd.sock\)$/\1/p' "$zd/regsignd.yaml")
	start_daemon "$zd/regsignd.yaml" "$sock" "$raw/zone-regsignd.log" ||
		die "the zone daemon did not answer HELLO (see raw/zone-regsignd.log)"
	log "using the zone state in $zstate (no import)"
	"$bin/regsign" -s "$sock" zone-status --json >"$raw/zone_import_status.json" 2>/dev/null || true
else
	zd=$tmp/zd
	mkdir -p "$zd/state"
	zport=$(free_port) kport=$(free_port) uport=$(free_port)
	sock=$zd/regsignd.sock
	sed -e "s#$dev/state/#$zd/state/#g" -e "s#^\(  path: \).*regsignd.sock#\1$sock#" \
		-e "s#127.0.0.1:[0-9]*\"\]#127.0.0.1:$zport\"]#" \
		-e "s#^\(  notify: \)\[\]#\1[\"127.0.0.1:$kport\"]#" \
		-e "s#^\(  zone-file-interval: \).*#\10#" \
		"$dev/regsignd.yaml" >"$zd/regsignd.yaml"
	grep -q "$zd/state/regsign.db" "$zd/regsignd.yaml" && grep -q "$kport" "$zd/regsignd.yaml" ||
		die "cannot adapt regsignd.yaml for the zone daemon (see $zd/regsignd.yaml)"
	start_daemon "$zd/regsignd.yaml" "$sock" "$raw/zone-regsignd.log" ||
		die "the zone daemon did not answer HELLO (see raw/zone-regsignd.log)"
	# The devices: ids that no load generator run makes (they start "f0").
	python3 - "$devices" "$zd/import.txt" <<'PYEOF'
import hashlib, sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for i in range(n):
        h = hashlib.sha256(b"regsign-bench-%d" % i).hexdigest()
        f.write("f0%018x 1 sha256:%s\n" % (i, h))
PYEOF
	log "importing $devices devices into regsignd's zone (IMPORT)"
	# Target 4's throughput is a ratio to R: R just before and just after
	# the import, as for the other measurements.
	measure_r "$raw/zone_import.r_before"
	/usr/bin/time -f 'time: %e %M' "$bin/regsign" -s "$sock" -t 600 import --json \
		"$zd/import.txt" >"$raw/zone_import.out" 2>"$raw/zone_import.err" ||
		die "regsign import failed (see raw/zone_import.err)"
	measure_r "$raw/zone_import.r_after"
	python3 - "$raw" "$devices" <<'PYEOF' >"$raw/zone_import_ratio.txt"
import re, sys
raw, n = sys.argv[1], int(sys.argv[2])
t = float(re.search(r"time: ([0-9.]+)", open(raw + "/zone_import.err").read()).group(1))
r = [float(re.search(r"sign_per_s=([0-9.]+)", open("%s/zone_import.r_%s" % (raw, w)).read())
           .group(1)) for w in ("before", "after")]
print("import %d devices in %.1f s: %.0f records/s = %.2f R/2 (R %.0f/%.0f, target 0.75)"
      % (n, t, n / t, 2 * n / t / (sum(r) / 2), r[0], r[1]))
PYEOF
	log "$(cat "$raw/zone_import_ratio.txt")"
	"$bin/regsign" -s "$sock" zone-status --json >"$raw/zone_import_status.json" 2>/dev/null || true
	# Target 4 through the daemon: the peak RSS of both processes (VmHWM, kB)
	# right after the import, and again after the zone measurements below
	# (the first change after an import rebuilds the working copy).
	hwm_kb "import" >"$raw/zone_import_hwm.txt"
	log "after the import: $(cat "$raw/zone_import_hwm.txt")"
fi
if [ -n "${zd:-}" ]; then
	measure_revoke
	if wanted revoke_vs_knot_update; then
		issue_devices "$zd/devs-primary.txt" "$nrev" f1 ||
			die "issuing the devices to revoke failed (see raw/zone_issue.log)"
		measure revoke_vs_knot_update python3 "$here/zone_timing.py" revoke \
			--regsign "$bin/regsign" --sock "$sock" --port "$zport" --zone "$zname" \
			--devices "$zd/devs-primary.txt"
	fi
	# unbound validates with the ceremony's DS as its trust anchor; its stub
	# zone points at the secondary's port, where Knot and then NSD listen.
	if wanted revoke_secondary revoke_secondary_nsd; then
		ucopy=$(command -v unbound)
		if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; then
			# Debian's AppArmor profile confines /usr/sbin/unbound to /etc/unbound.
			cp "$ucopy" "$zd/unbound" && ucopy=$zd/unbound
		fi
		cat >"$zd/unbound.conf" <<EOC
server:
    interface: 127.0.0.1@$uport
    port: $uport
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    directory: "$zd"
    pidfile: ""
    use-syslog: no
    logfile: "$raw/unbound.log"
    verbosity: 1
    num-threads: 1
    so-reuseport: no
    do-not-query-localhost: no
    local-zone: "test." nodefault
    trust-anchor-file: "$dev/out/ds.txt"
    trust-anchor-signaling: no
    root-key-sentinel: no
    module-config: "validator iterator"
stub-zone:
    name: "$zname"
    stub-addr: 127.0.0.1@$kport
remote-control:
    control-enable: yes
    control-interface: "$zd/unbound.ctl"
EOC
		unbound-checkconf "$zd/unbound.conf" >"$raw/unbound-checkconf.log" 2>&1 ||
			die "unbound-checkconf refused the configuration (see raw/unbound-checkconf.log)"
		"$ucopy" -d -c "$zd/unbound.conf" >>"$raw/unbound.log" 2>&1 &
		pids+=("$!")
		for _ in $(seq 1 100); do
			unbound-control -c "$zd/unbound.conf" status >/dev/null 2>&1 && break
			sleep 0.2
		done
	fi
	if wanted revoke_secondary; then
		issue_devices "$zd/devs-secondary.txt" "$nrev" f2 ||
			die "issuing the devices to revoke failed (see raw/zone_issue.log)"
		# Knot 3.2 applies every IXFR with passes over the whole zone, whatever
		# its options: zone_update_semcheck adjusts every node and runs the
		# mandatory semantic checks on every node, zone_update_commit adjusts
		# the tree again. Measured (bench/README.md): 0.24-0.39 s of CPU per
		# one-name IXFR at 100,000 devices, 2.9-3.5 s at 1,000,000 (two nodes
		# per device: its name and the empty non-terminal above it);
		# journal-content none/changes/all, semantic-checks off/soft,
		# adjust-threads 2, journal-db-mode asynchronous and journal-max-depth
		# did not move it beyond the noise. journal-content: all (restart from
		# the journal without an AXFR) adds a merge into the stored zone every
		# journal-max-depth (20) changesets, itself O(zone): a 3.9 s refresh at
		# 100,000, 54 s (instead of 12 s) at 1,000,000 on the loaded machine.
		# So: changes only, and a restart of this secondary costs a full AXFR.
		# At any size, Knot plans its own NOTIFY event 1 s after each update,
		# in whole seconds: a NOTIFY from regsignd that lands in that second
		# does not move the zone's timer, and the refresh waits for it (up to
		# 1 s; the p99 near 1 s of a 2,000-device run is this, not the apply).
		mkdir -p "$zd/knot/run" "$zd/knot/db" "$zd/knot/zones"
		cat >"$zd/knot/knot.conf" <<EOC
server:
    rundir: "$zd/knot/run"
    listen: 127.0.0.1@$kport
database:
    storage: "$zd/knot/db"
    journal-db-max-size: 64G
log:
  - target: "$raw/knot-secondary.log"
    any: info
remote:
  - id: regsignd
    address: 127.0.0.1@$zport
acl:
  - id: notify_from_regsignd
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "$zd/knot/zones"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    journal-max-usage: 32G
zone:
  - domain: $zname
    master: regsignd
    acl: [notify_from_regsignd]
EOC
		knotd -c "$zd/knot/knot.conf" >>"$raw/knot-secondary.log" 2>&1 &
		kpid=$!
		pids+=("$kpid")
		want=$(soa_at "$zport")
		wait_serial_at "$kport" "$want" 1800 ||
			die "the Knot secondary did not reach serial $want (see raw/knot-secondary.log)"
		measure revoke_secondary python3 "$here/zone_timing.py" revoke \
			--regsign "$bin/regsign" --sock "$sock" --port "$zport" --zone "$zname" \
			--devices "$zd/devs-secondary.txt" --knot-port "$kport" \
			--unbound-port "$uport" --unbound-conf "$zd/unbound.conf"
		# Stopped before NSD takes its port (and so as not to share the cores).
		kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null || true
	fi
	# The same path with NSD 4 as the secondary (no target: what an operator
	# could run instead of Knot). NSD applies an IXFR as a diff in a reload
	# process and keeps no per-update pass over the whole zone; its reload is
	# otherwise held back up to xfrd-reload-timeout (1 s by default) after the
	# previous one, which alone would cost the 1 s budget, hence 0.
	if wanted revoke_secondary_nsd; then
		issue_devices "$zd/devs-nsd.txt" "$nrev" f3 ||
			die "issuing the devices to revoke failed (see raw/zone_issue.log)"
		mkdir -p "$zd/nsd"
		cat >"$zd/nsd/nsd.conf" <<EOC
server:
    ip-address: 127.0.0.1@$kport
    port: $kport
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$zd/nsd"
    database: ""
    pidfile: "$zd/nsd/nsd.pid"
    xfrdfile: "$zd/nsd/xfrd.state"
    xfrdir: "$zd/nsd"
    zonelistfile: "$zd/nsd/zone.list"
    logfile: "$raw/nsd-secondary.log"
    verbosity: 2
    server-count: 1
    zonefiles-write: 0
    xfrd-reload-timeout: 0
remote-control:
    control-enable: no
zone:
    name: $zname
    zonefile: "$zd/nsd/zone"
    request-xfr: 127.0.0.1@$zport NOKEY
    allow-notify: 127.0.0.1 NOKEY
EOC
		nsd-checkconf "$zd/nsd/nsd.conf" >"$raw/nsd-checkconf.log" 2>&1 ||
			die "nsd-checkconf refused the configuration (see raw/nsd-checkconf.log)"
		nsd -d -c "$zd/nsd/nsd.conf" >>"$raw/nsd-secondary.log" 2>&1 &
		npid=$!
		pids+=("$npid")
		want=$(soa_at "$zport")
		wait_serial_at "$kport" "$want" 1800 ||
			die "the NSD secondary did not reach serial $want (see raw/nsd-secondary.log)"
		# What unbound learnt about the server behind the stub was Knot's.
		for c in "flush_infra all" "flush_zone $zname" flush_bogus flush_negative; do
			# shellcheck disable=SC2086
			unbound-control -c "$zd/unbound.conf" $c >/dev/null 2>&1 || true
		done
		measure revoke_secondary_nsd python3 "$here/zone_timing.py" revoke \
			--regsign "$bin/regsign" --sock "$sock" --port "$zport" --zone "$zname" \
			--devices "$zd/devs-nsd.txt" --knot-port "$kport" --secondary NSD \
			--unbound-port "$uport" --unbound-conf "$zd/unbound.conf"
		kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null || true
	fi
	last=$(soa_at "$zport")
	hwm_kb "after-zone-measurements" >>"$raw/zone_import_hwm.txt"
	stop_daemon
	if wanted restart; then
		[ -n "$last" ] || die "the zone daemon answered no SOA before the restart"
		measure restart python3 "$here/zone_timing.py" restart --regsignd "$bin/regsignd" \
			--regsign "$bin/regsign" --config "$zd/regsignd.yaml" --sock "$sock" \
			--port "$zport" --zone "$zname" --serial "$last" --runs "$nrestart" \
			--log "$raw/zone-regsignd.log"
	fi
fi
# ---- 6. the daemon attacked: HSM recovery, latency under flood (issue 6) ----
# Two attack tests run as ctest runs them (tests/attack.cmake), each on a
# fresh development setup of its own, and write the figures they print to
# raw/NAME.json (--json). hsm_recovery: test_attack_p11kit.py under-load, 30
# times the p11-kit server serving the token and its p11-kit-remote children
# are killed while four clients issue and revoke, stay away 3 s and come
# back; the time from the server being back to the first successful ISSUE
# (goal <= 5 s). flood_latency: test_attack_overload.py served-share, a
# second caller floods at 10x the sustainable rate for 10 s while a
# well-behaved one sends an ISSUE every 100 ms; its latency percentiles.
attack_ms="hsm_recovery flood_latency"
sanitize=$(sed -n 's/^REGSIGN_SANITIZE:BOOL=//p' "$build/CMakeCache.txt")
# attack NAME SCRIPT ARGS...: the test's output to stdout/stderr, its figures
# to raw/NAME.json. The benchmark's SOFTHSM2_CONF is not passed on: the test
# makes its own token.
attack() {
	local name=$1 script=$2
	shift 2
	rm -f "$raw/$name.json"
	env -u SOFTHSM2_CONF REGSIGN_BIN_DIR="$bin" REGSIGN_BUILD_DIR="$build" \
		REGSIGN_SOURCE_DIR="$src" REGSIGN_SOFTHSM_MODULE="$module" \
		REGSIGN_SANITIZE="${sanitize:-OFF}" \
		LSAN_OPTIONS="suppressions=$src/tests/fault/lsan-softhsm.supp:print_suppressions=0" \
		python3 "$src/tests/attack/$script" "$@" --json "$raw/$name.json"
}
if [ $smoke = 1 ]; then
	for m in $attack_ms; do not_measurable "$m" "not run in --smoke"; done
elif ! wanted $attack_ms; then
	:
elif [ ! -x "$bin/regsignd" ] || [ ! -x "$bin/regsign-ceremony" ]; then
	for m in $attack_ms; do
		not_measurable "$m" "regsignd is not built yet (no $bin/regsignd)"
	done
else
	measure hsm_recovery attack hsm_recovery test_attack_p11kit.py under-load
	measure flood_latency attack flood_latency test_attack_overload.py served-share
fi

# Whatever --only left out has a status too.
for m in loadgen_check sign_rrset issue revoke bulk_sign peers_token peers_file restart \
	revoke_secondary revoke_secondary_nsd revoke_vs_knot_update $attack_ms; do
	[ -e "$raw/$m.status" ] || echo "not_measurable: not run (--only ${only_list})" >"$raw/$m.status"
done

# ---- report ----
python3 "$here/report.py" --raw "$raw" --out "$out" --devices "$devices" --smoke "$smoke" \
	--threads "$threads" --src "$src"
cat "$out/table.txt"
