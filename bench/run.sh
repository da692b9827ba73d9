#!/bin/bash
# bench/run.sh: regsign's benchmark suite against the anchors (issue 5).
#
#   bench/run.sh [--smoke] [--devices N] [--out DIR] [--seconds S] [--clients N]
#                [--keep] [--peers all|token|none]
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
# (bench/peers_token.sh) on the same zone. The rest of issue 5's targets are
# reported as not measurable yet, with the reason.
#
# Output in DIR (default ./bench-out): raw/ (every tool's own output),
# results.json, table.txt and RESULTS.md (the table with date and machine;
# copy it to bench/RESULTS.md to publish a run). --smoke: tiny sizes and 1 s
# per measurement, for CI; the JSON is the same shape.
#
# Environment: REGSIGN_ANCHORS (default <repo>/../shared/bench: p11bench.c,
# gen_zone.py, peers.sh, knot_common.sh, openssl-pkcs11.cnf),
# REGSIGN_SOFTHSM_MODULE, REGSIGN_BIN_DIR + REGSIGN_BUILD_DIR (a built tree to
# use instead of building), TMPDIR.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(dirname "$here")
smoke=0 devices=1000000 out=$PWD/bench-out seconds=10 clients=16 keep=0 peers=all
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
	dnssec-keygen dnssec-signzone knotd knotc kdig; do
	command -v "$t" >/dev/null || die "$t not found (see bench/README.md for the packages)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
[ -r "$module" ] || die "SoftHSM2 module $module not found (apt-get install softhsm2)"
for f in p11bench.c gen_zone.py peers.sh knot_common.sh openssl-pkcs11.cnf; do
	[ -r "$anchors/$f" ] || die "anchor $anchors/$f not found (set REGSIGN_ANCHORS)"
done
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

# ---- token and development setup ----
dev=$tmp/dev
REGSIGN_BIN_DIR=$bin REGSIGN_SOFTHSM_MODULE=$module "$src/hsm-setup/dev-setup.sh" "$dev" \
	>"$raw/dev-setup.log" 2>&1 || die "dev-setup failed (see $raw/dev-setup.log)"
export SOFTHSM2_CONF=$dev/softhsm2.conf
token=regsign-dev
pin=$(cat "$dev/pin")
cc -O2 -Wall -I/usr/include/p11-kit-1 -o "$tmp/p11bench" "$tmp/anchors/p11bench.c" -ldl -lpthread \
	>"$raw/p11bench-build.log" 2>&1 || die "cannot build p11bench (see $raw/p11bench-build.log)"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The daemon's files, adapted for a benchmark: no rate limit for the
# benchmark caller, and a free port for the DNS listener (5353 may be taken).
sed -i '/^[[:space:]]*rate-limit:/d' "$dev/policy.yaml"
sed -i "s/127.0.0.1:5353/127.0.0.1:$(freeport)/" "$dev/regsignd.yaml"

# R: the raw PKCS#11 loop, one thread per core, on the daemon's ZSK.
measure_r() {
	"$tmp/p11bench" "$module" "$token" "$pin" bench ec regsign-zsk "$threads" "$rsec" \
		>"$1" 2>&1 || { cat "$1" >&2; die "p11bench failed"; }
}

# measure NAME COMMAND...: R before, the command (its stdout to raw/NAME.out,
# stderr to raw/NAME.err), R after; its status to raw/NAME.status.
measure() {
	local name=$1
	shift
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
if [ -x "$bin/regsignd" ]; then
	sock=$dev/regsignd.sock
	"$bin/regsignd" -c "$dev/regsignd.yaml" >"$raw/regsignd.log" 2>&1 &
	dpid=$!
	pids+=("$dpid")
	up=0
	for _ in $(seq 1 300); do
		if "$bin/regsign" -s "$sock" -t 5 hello >/dev/null 2>&1; then up=1; break; fi
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.2
	done
	if [ $up = 1 ]; then
		hpid=$(cat "/proc/$dpid/task/$dpid/children" 2>/dev/null | awk '{print $1}')
		# lg NAME ARGS: the load generator (its own CPU time on stderr), and
		# the CPU time the front and the HSM process spent meanwhile, in
		# clock ticks, to raw/NAME.cpu: where a daemon's time goes.
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
		measure sign_rrset lg sign_rrset --op sign-rrset
		# The example policy's profile (regsignd wants one named).
		measure issue lg issue --op issue --profile device
		# Target 3: a steady 100 revocations/s, latency to the durable reply.
		measure revoke lg revoke --op revoke --profile device --rate 100 --clients 4 \
			--prepare $(( (seconds + 2) * 100 + 100 ))
		"$bin/regsign" -s "$sock" zone-status --json >"$raw/zone_status.json" 2>/dev/null || true
	else
		for m in $daemon_ops; do
			echo "failed: regsignd did not answer HELLO (see raw/regsignd.log)" >"$raw/$m.status"
		done
	fi
	kill -TERM "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
else
	for m in $daemon_ops; do
		not_measurable "$m" "regsignd is not built yet (no $bin/regsignd)"
	done
fi

# ---- 3. full signing through the bulk import path, token keys ----
zone=$tmp/zone-$devices.zone
python3 "$tmp/anchors/gen_zone.py" "$devices" "$zone"
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
	measure peers_token "$here/peers_token.sh" "$zone" "$tmp/peers-token" "$(freeport)" \
		"$token" "$dev/pin" regsign-ksk regsign-zsk 1
else
	not_measurable peers_token "not run (--peers none)"
fi
if [ $peers = all ]; then
	# The anchors' peers.sh generates the same zone (same N, same seed).
	measure peers_file "$tmp/anchors/peers.sh" "$devices" "$tmp/peers-file" "$(freeport)"
else
	not_measurable peers_file "not run (--peers $peers)"
fi

# ---- targets that need parts not built yet ----
not_measurable restart "needs regsignd with the zone in its store and a bulk import request (target 5)"
not_measurable revoke_secondary "needs regsignd's zone + NOTIFY/IXFR to a Knot secondary, unbound validating (target 6)"
not_measurable revoke_vs_knot_update "needs regsignd serving a 1M-device zone on its DNS listener (target 3, second half)"

# ---- report ----
python3 "$here/report.py" --raw "$raw" --out "$out" --devices "$devices" --smoke "$smoke" \
	--threads "$threads" --src "$src"
cat "$out/table.txt"
