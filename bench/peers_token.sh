#!/bin/bash
# The peer signers with their keys in a SoftHSM token, on one unsigned zone:
#  - ldns-signzone through OpenSSL's pkcs11 engine (libengine-pkcs11-openssl),
#    with the token's KSK and ZSK named by PKCS#11 URIs;
#  - Knot DNS with a pkcs11 keystore (Knot makes its own KSK and ZSK in the
#    token at start): start to first signed SOA, then a full re-sign.
# Then, on Knot's signed zone, the time from a dynamic update deleting one
# device name to the new serial served (median of five, and the maximum).
# Prints RESULT lines in the form of the anchors' peers.sh. Each signed zone
# is checked with ldns-verify-zone (ldns) or by Knot serving a signed SOA.
#
# Usage: peers_token.sh UNSIGNED WORKDIR PORT TOKEN PINFILE KSKLABEL ZSKLABEL
#        [KNOT_THREADS=1]
# Environment: SOFTHSM2_CONF (the token's SoftHSM configuration),
#   REGSIGN_ANCHORS (the anchors' directory: openssl-pkcs11.cnf, knot_common.sh),
#   REGSIGN_SOFTHSM_MODULE (default /usr/lib/softhsm/libsofthsm2.so),
#   REGSIGN_PEERS (default "ldns knot": which of the two to run).
set -eu
ZONE=$1 W=$2 KP=$3 TOKEN=$4 PINFILE=$5 KSK=$6 ZSK=$7 TH=${8:-1}
MOD=${REGSIGN_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
A=${REGSIGN_ANCHORS:?set REGSIGN_ANCHORS to the anchors directory}
: "${SOFTHSM2_CONF:?set SOFTHSM2_CONF to the token configuration}"
. "$A/knot_common.sh"
PIN=$(cat "$PINFILE")
N=$(grep -c ' CERT ' "$ZONE")
mkdir -p "$W"
res() { echo "RESULT $*"; }
rate() { python3 -c "print(round($1/$2))"; }

# ldns-signzone, pkcs11 engine. The PIN goes into the URI because that is
# the only way ldns-signzone takes it; this is a benchmark token.
ldns_run() {
	local out=$W/ldns-token.zone
	/usr/bin/time -f '%e %M' -o "$W/time.out" env OPENSSL_CONF="$A/openssl-pkcs11.cnf" \
		ldns-signzone -E pkcs11 \
		-k "13,pkcs11:token=$TOKEN;object=$ZSK;pin-value=$PIN" \
		-K "13,pkcs11:token=$TOKEN;object=$KSK;pin-value=$PIN" \
		-o iotregistry.test. -f "$out" "$ZONE" >"$W/ldns.out" 2>&1 ||
		{ echo "FAILED: ldns-signzone (pkcs11 engine)"; cat "$W/ldns.out"; return 1; }
	read -r w m <"$W/time.out"
	ldns-verify-zone "$out" >"$W/verify.out" 2>&1 ||
		{ echo "FAILED: ldns-verify-zone of ldns-signzone's output"; cat "$W/verify.out"; return 1; }
	local sigs
	sigs=$(awk '$4=="RRSIG"' "$out" | wc -l)
	res "ldns-signzone-pkcs11 N=$N wall_s=$w maxrss_kb=$m signatures=$sigs" \
		"records_per_s=$(rate "$N" "$w") sign_per_s=$(rate "$sigs" "$w")"
	rm -f "$out"
}

# Knot with a pkcs11 keystore in the same token.
knot_run() {
	local K=$W/knot-token t0 t1 kp
	rm -rf "$K"
	knot_conf "$K" "$KP" on "$TH"
	# knot_conf writes the policy without a keystore; add one in the token.
	python3 - "$K/knot.conf" "pkcs11:token=$TOKEN;pin-value=$PIN $MOD" <<'EOF'
import sys
path, cfg = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace("policy:\n", 'keystore:\n  - id: token\n    backend: pkcs11\n'
                    '    config: "%s"\npolicy:\n' % cfg, 1)
text = text.replace("    algorithm: ecdsap256sha256\n",
                    "    algorithm: ecdsap256sha256\n    keystore: token\n", 1)
# The default journal cannot hold the signing diff of a 1M-device zone
# (the zone load then fails with "not enough space provided").
if "journal-max-usage" not in text:
    text = text.replace("database:\n", "database:\n    journal-db-max-size: 64G\n", 1)
    text = text.replace("    zonefile-sync: -1\n",
                        "    zonefile-sync: -1\n    journal-max-usage: 32G\n", 1)
open(path, "w").write(text)
EOF
	cp "$ZONE" "$K/zones/iotregistry.test.zone"
	t0=$(date +%s.%N)
	knotd -c "$K/knot.conf" >"$K/knotd.out" 2>&1 &
	kp=$!
	if ! knot_wait_soa "$KP" signed 3600; then
		echo "FAILED: knot (pkcs11 keystore) did not sign"; tail -5 "$K/knot.log"
		kill "$kp"; wait "$kp" || true; return 1
	fi
	t1=$(date +%s.%N)
	res "knot-pkcs11-start-to-signed threads=$TH N=$N wall_s=$(python3 -c "print(round($t1-$t0,3))")" \
		"maxrss_kb=$(awk '/VmHWM/{print $2}' /proc/$kp/status)" \
		"records_per_s=$(rate "$N" "$(python3 -c "print($t1-$t0)")")"
	t0=$(date +%s.%N)
	knotc -c "$K/knot.conf" -b -t 3600 zone-sign iotregistry.test. >/dev/null
	t1=$(date +%s.%N)
	res "knot-pkcs11-full-resign threads=$TH N=$N wall_s=$(python3 -c "print(round($t1-$t0,3))")" \
		"maxrss_kb=$(awk '/VmHWM/{print $2}' /proc/$kp/status)" \
		"records_per_s=$(rate "$N" "$(python3 -c "print($t1-$t0)")")"
	knot_update "$kp"
	knotc -c "$K/knot.conf" stop >/dev/null
	wait "$kp" || true
	rm -rf "$K"
}

# The reference of issue 5 target 3: one device name deleted through Knot's
# dynamic update, from sending the update to the new serial served (Knot
# re-signs the changed NSEC and SOA with the token's keys). Five deletions.
knot_update() {
	local kp=$1 names i s0 t0 t1 all=""
	# Over TCP with a long timeout: at 1M devices one update takes Knot
	# ~20 s, and knsupdate's UDP retries would only queue duplicates.
	names=$(awk '$4 == "CERT" { print $1 }' "$ZONE" | head -5)
	for name in $names; do
		s0=$(knot_serial "$KP")
		t0=$(date +%s.%N)
		printf 'server 127.0.0.1 %s\nzone iotregistry.test.\nupdate delete %s\nsend\n' \
			"$KP" "$name" | knsupdate -v -t 600 >/dev/null ||
			{ echo "FAILED: knsupdate"; return 1; }
		for i in $(seq 1 120000); do
			[ "$(knot_serial "$KP")" != "$s0" ] && break
			sleep 0.005
		done
		t1=$(date +%s.%N)
		[ "$(knot_serial "$KP")" != "$s0" ] || { echo "FAILED: no new serial after update"; return 1; }
		all="$all $(python3 -c "print(round($t1-$t0,4))")"
	done
	res "knot-pkcs11-ddns-delete threads=$TH N=$N wall_s=$(echo $all | tr ' ' '\n' | sort -n |
		awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}') max_s=$(echo $all | tr ' ' '\n' |
		sort -n | tail -1) samples=$(echo $all | tr ' ' ',')"
}

for p in ${REGSIGN_PEERS:-ldns knot}; do
	"${p}_run"
done
