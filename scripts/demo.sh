#!/bin/bash
# The main job on a development machine, from a clone (README's first command):
#
#  1. build regsignd, regsign and regsign-ceremony into ./build/bin;
#  2. make the development setup in ./var/dev, or reuse it untouched when it
#     exists (a SoftHSM token whose keys come from the example key ceremony);
#  3. start regsignd on it, a Knot secondary and a validating unbound, all on
#     loopback ports, from a temporary directory;
#  4. issue a certificate for the seed's demo device, show its record served by
#     regsignd, pulled by Knot (IXFR after NOTIFY) and validated by unbound
#     with the ceremony's DS as its only trust anchor;
#  5. revoke it and show the NSEC-proven NXDOMAIN, validated too;
#  6. stop everything it started (by PID).
#
# Running it again reuses ./var/dev and issues the next free index (indexes
# are never reused). ./var/dev/regsignd.yaml is not modified: the daemon runs
# on a copy whose DNS listener and NOTIFY target are the demo's free ports.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

step() { printf '\n==> %s\n' "$*"; }
show() { sed 's/^/    /'; }

DEVICE=8912230200031010008f   # the seed's device (an ICCID)

# Two settings for the test that runs this script (tests/e2e/demo_twice.sh):
# REGSIGN_DEMO_BIN_DIR uses the programs already built there instead of
# building ./build, REGSIGN_DEMO_DIR puts the setup elsewhere than ./var/dev.
if [ -n "${REGSIGN_DEMO_BIN_DIR:-}" ]; then
	export REGSIGN_BIN_DIR=$REGSIGN_DEMO_BIN_DIR
else
	step "building the daemon, the CLI and the ceremony tool into build/bin"
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j "$(nproc)" --target regsignd regsign regsign-ceremony >/dev/null
	export REGSIGN_BIN_DIR=$top/build/bin
fi

dev=${REGSIGN_DEMO_DIR:-$top/var/dev}
step "development setup in $dev"
./hsm-setup/dev-setup.sh "$dev" | show

step "what the key ceremony made (in $dev/out)"
openssl x509 -in "$dev/out/root-ca.pem" -noout -subject -fingerprint -sha256 | show
openssl x509 -in "$dev/out/issuing-ca.pem" -noout -subject -fingerprint -sha256 | show
openssl verify -x509_strict -CAfile "$dev/out/root-ca.pem" "$dev/out/issuing-ca.pem" | show
echo "    DS for the parent zone, the trust anchor of everything below:"
show <"$dev/out/ds.txt"

# shellcheck source=../tests/e2e/e2e_lib.sh
. "$top/tests/e2e/e2e_lib.sh"
E2E_BIN=$REGSIGN_BIN_DIR
e2e_require knotd unbound unbound-control unbound-checkconf dig openssl python3 base64
e2e_init regsign-demo
T=$E2E_T
Z=$E2E_ZONE
SOCK=$dev/regsignd.sock

if "$E2E_BIN/regsign" -s "$SOCK" -t 5 hello >/dev/null 2>&1; then
	e2e_fail "a regsignd already answers on $SOCK; stop it before running the demo"
fi

RPORT=$(e2e_free_port)
KPORT=$(e2e_free_port)
UPORT=$(e2e_free_port)
[ -n "$RPORT" ] && [ -n "$KPORT" ] && [ -n "$UPORT" ] || e2e_fail "no free loopback ports"

step "starting regsignd (hidden primary: DNS on 127.0.0.1 port $RPORT, NOTIFY to Knot)"
e2e_daemon_config "$dev/regsignd.yaml" "$T/regsignd.yaml" "$RPORT" "$KPORT"
e2e_start_regsignd "$T/regsignd.yaml" "$SOCK" "$T/regsignd.log"
e2e_wait_until 60 "regsignd's DNS listener" e2e_serial_ge "$RPORT" 0
echo "    regsignd pid $E2E_REGSIGND_PID, socket $SOCK, zone serial $(e2e_serial_at "$RPORT")"

step "starting knotd as secondary (port $KPORT) and unbound as validating resolver (port $UPORT)"
e2e_start_knot "$KPORT" "$RPORT"
e2e_wait_until 120 "knotd to load the zone" e2e_serial_ge "$KPORT" "$(e2e_serial_at "$RPORT")"
echo "    knotd pid $E2E_KNOT_PID: $(grep -m1 -o 'AXFR, incoming.*finished.*' "$T/knot.log" || echo 'zone loaded')"
e2e_start_unbound "$UPORT" "$KPORT" "$dev/out/ds.txt"
echo "    unbound pid $E2E_UNBOUND_PID, trust anchor: $dev/out/ds.txt only"

step "a device makes a key pair and a CSR (openssl stands in for its eSIM)"
e2e_make_csr "$T" device
openssl req -in "$T/device.csr" -noout -subject | show

# The first free index: an index that an earlier run used answers CONFLICT.
# Such a certificate is revoked again in case that run stopped before its own
# revocation (revoking a revoked certificate changes nothing).
step "regsign issue --device $DEVICE (first free index)"
n=1
while :; do
	if "$E2E_BIN/regsign" -s "$SOCK" -t 60 issue --device "$DEVICE" --index "$n" \
		--csr "$T/device.csr" --out "$T/device.pem" >"$T/issue.out" 2>"$T/issue.err"; then
		break
	fi
	grep -q CONFLICT "$T/issue.err" || { cat "$T/issue.err" >&2; e2e_fail "regsign issue failed"; }
	"$E2E_BIN/regsign" -s "$SOCK" -t 60 revoke --device "$DEVICE" --index "$n" \
		--reason cessationOfOperation >/dev/null 2>&1 || true
	n=$((n + 1))
	[ "$n" -le 65535 ] || e2e_fail "no free index left for $DEVICE"
done
if [ "$n" -eq 2 ]; then
	echo "    index 1 was used by an earlier run; indexes are never reused"
elif [ "$n" -gt 2 ]; then
	echo "    indexes 1 to $((n - 1)) were used by earlier runs; indexes are never reused"
fi
show <"$T/issue.out"
NAME=$n.$DEVICE.$Z
ZS=$(sed -n 's/^zone-serial: //p' "$T/issue.out")
openssl x509 -in "$T/device.pem" -noout -subject -issuer -ext subjectAltName 2>/dev/null | show
HASH=$(e2e_cert_b64_sha256 "$T/device.pem")
echo "    SHA-256 of the certificate (DER), base64: $HASH"

step "its record, served by regsignd itself"
dig @127.0.0.1 -p "$RPORT" +dnssec +noall +answer "$NAME" CERT | show

step "through Knot (NOTIFY, then IXFR to serial $ZS) and unbound (validating)"
e2e_wait_until 120 "knotd to reach serial $ZS" e2e_serial_ge "$KPORT" "$ZS"
grep -o "IXFR, incoming.*finished.*" "$T/knot.log" | tail -n1 | show
e2e_dig "$UPORT" "$NAME" CERT "$T/q1.out"
grep '^;; ->>HEADER\|^;; flags' "$T/q1.out" | show
e2e_section "$T/q1.out" ANSWER | show
e2e_has_ad "$T/q1.out" || e2e_fail "unbound did not validate $NAME (no AD bit)"
[ "$(e2e_cert_payload "$T/q1.out" "$NAME")" = "$HASH" ] ||
	e2e_fail "the CERT record is not the SHA-256 of the issued certificate"
echo "    => validated (ad), and the payload is the certificate's SHA-256"
exp=$(e2e_section "$T/q1.out" ANSWER | awk '$4 == "RRSIG" && $5 == "CERT" { print $9; exit }')
[ -z "$exp" ] || echo "    its RRSIG expires at $exp (UTC, YYYYMMDDhhmmss): a replay of this answer" \
	"validates until then at most"

step "regsign revoke --device $DEVICE --index $n"
"$E2E_BIN/regsign" -s "$SOCK" -t 60 revoke --device "$DEVICE" --index "$n" \
	--reason cessationOfOperation >"$T/revoke.out" 2>&1 ||
	{ cat "$T/revoke.out" >&2; e2e_fail "regsign revoke failed"; }
show <"$T/revoke.out"
ZR=$(sed -n 's/^zone-serial: //p' "$T/revoke.out")
e2e_wait_until 120 "knotd to reach serial $ZR" e2e_serial_ge "$KPORT" "$ZR"

step "the same query through unbound, its cache flushed (as after the 300 s TTL)"
e2e_unbound_flush
e2e_dig "$UPORT" "$NAME" CERT "$T/q2.out"
grep '^;; ->>HEADER\|^;; flags' "$T/q2.out" | show
e2e_section "$T/q2.out" AUTHORITY | grep -e '[[:space:]]NSEC[[:space:]]' -e 'RRSIG[[:space:]]NSEC' | show
[ "$(e2e_rcode "$T/q2.out")" = NXDOMAIN ] || e2e_fail "$NAME is not NXDOMAIN after revocation"
e2e_has_ad "$T/q2.out" || e2e_fail "the NXDOMAIN for $NAME did not validate"
echo "    => NXDOMAIN, validated (ad): a signed NSEC says no name exists between its owner"
echo "       and its next name, and $NAME sorts between them"

step "stopping unbound, knotd and regsignd"
e2e_stop unbound "$E2E_UNBOUND_PID"
e2e_stop knotd "$E2E_KNOT_PID"
e2e_stop regsignd "$E2E_REGSIGND_PID"
e2e_sanitizer_check "$T/regsignd.log"
echo "    all stopped. The setup stays in $dev; run ./scripts/demo.sh again for the next index."
