#!/bin/bash
# Negative answers validated by real software straight from regsignd's own
# DNS listener, with no secondary in between:
#
#   regsign CLI -> regsignd (fresh dev setup)
#     -> unbound (validator; stub zone at regsignd's listener; trust anchor:
#        ONLY the ceremony's out/ds.txt) -> dig +dnssec
#   and delv (BIND's validating lookup) against regsignd directly.
#
# Asserts rcode and the AD bit through unbound for: an issued device's CERT;
# a never-issued device name (NXDOMAIN); the empty non-terminal <id>.<zone>
# (NODATA); a type absent at an existing name (NODATA); a revoked device
# (NXDOMAIN); a name sorting right after the apex and one after every other
# name (NXDOMAIN); the same answers validate in delv. At regsignd itself: the
# negative answers carry the SOA with the negative TTL and signed NSEC
# records, none without DO, and unbound logged no validation failure.
#
# Run against the code before the NSEC proofs (commit 087f2f6's parent),
# this test fails: unbound answers SERVFAIL already for the issued device
# (its QNAME minimisation asks for the empty non-terminal, which got an
# unprovable NXDOMAIN), and with that case left out, SERVFAIL for the
# never-issued name.
set -eu
. "$(dirname "$0")/e2e_lib.sh"

e2e_require unbound unbound-control unbound-checkconf dig delv openssl python3 \
	pkcs11-tool softhsm2-util awk base64
: "${REGSIGN_BIN_DIR:?REGSIGN_BIN_DIR must point at build/bin}"
src=${REGSIGN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
E2E_BIN=$REGSIGN_BIN_DIR
for p in regsignd regsign regsign-ceremony; do
	[ -x "$E2E_BIN/$p" ] || e2e_fail "$E2E_BIN/$p is not built"
done
e2e_init regsign-e2e-direct
T=$E2E_T
DEV=8912230200031010008f
DEV2=0123456789abcdef0123
NEVER=00000000000000000042
Z=$E2E_ZONE

e2e_dev_setup "$src"

RPORT=$(e2e_free_port)
NPORT=$(e2e_free_port)
UPORT=$(e2e_free_port)
[ -n "$RPORT" ] && [ -n "$NPORT" ] && [ -n "$UPORT" ] || e2e_fail "no free loopback ports"
[ "$RPORT" != "$UPORT" ] || e2e_fail "free_port gave the same port twice"

# NOTIFY goes to a port nobody listens on: there is no secondary here.
e2e_note "regsignd: DNS on 127.0.0.1@$RPORT"
e2e_daemon_config "$T/dev/regsignd.yaml" "$T/regsignd.yaml" "$RPORT" "$NPORT"
SOCK=$T/dev/regsignd.sock
e2e_start_regsignd "$T/regsignd.yaml" "$SOCK" "$T/regsignd.log"
e2e_wait_until 60 "regsignd to answer SOA queries on port $RPORT" e2e_serial_ge "$RPORT" 0

# issue ID INDEX NAME: issue a certificate for a fresh CSR.
issue() {
	e2e_make_csr "$T" "$3"
	"$E2E_BIN/regsign" -s "$SOCK" -t 60 issue --device "$1" --index "$2" \
		--csr "$T/$3.csr" --out "$T/$3.pem" >"$T/$3.issue" 2>&1 ||
		{ cat "$T/$3.issue" >&2; e2e_fail "regsign issue of $2.$1 failed"; }
	ZSERIAL=$(sed -n 's/^zone-serial: //p' "$T/$3.issue")
	[ -n "$ZSERIAL" ] && [ "$ZSERIAL" -gt 0 ] || e2e_fail "issue replied no zone serial"
}

e2e_note "issue $DEV index 1 and 2, $DEV2 index 1; revoke $DEV index 1"
issue "$DEV" 1 dev1
issue "$DEV" 2 dev2
issue "$DEV2" 1 dev3
"$E2E_BIN/regsign" -s "$SOCK" -t 60 revoke --device "$DEV" --index 1 --reason keyCompromise \
	>"$T/revoke.out" 2>&1 || { cat "$T/revoke.out" >&2; e2e_fail "regsign revoke failed"; }
ZR=$(sed -n 's/^zone-serial: //p' "$T/revoke.out")
[ -n "$ZR" ] || { cat "$T/revoke.out" >&2; e2e_fail "revoke replied no zone serial"; }
e2e_serial_ge "$RPORT" "$ZR" || e2e_fail "regsignd replied serial $ZR but serves $(e2e_serial_at "$RPORT")"

e2e_note "unbound: stub zone at regsignd (127.0.0.1@$RPORT), trust anchor the ceremony's DS"
e2e_start_unbound "$UPORT" "$RPORT" "$ANCHOR"

# The denials to check: "NAME TYPE RCODE WHAT".
FIRST='\000'.$Z       # the least name after the apex
LAST=zzzz.$Z          # after every name of the zone (ns1, hex device ids)
CASES="2.$DEV.$Z CERT NOERROR issued-device
1.$NEVER.$Z CERT NXDOMAIN never-issued-device
$DEV.$Z CERT NODATA empty-non-terminal
$DEV2.$Z A NODATA empty-non-terminal-2
2.$DEV.$Z TXT NODATA absent-type
$Z TXT NODATA absent-type-at-apex
1.$DEV.$Z CERT NXDOMAIN revoked-device
$FIRST A NXDOMAIN before-everything
$LAST A NXDOMAIN after-everything
x.y.$DEV.$Z CERT NXDOMAIN below-empty-non-terminal"

# check_unbound NAME TYPE WANT WHAT
check_unbound() {
	local out=$T/u-$4.out rc an
	e2e_dig "$UPORT" "$1" "$2" "$out"
	rc=$(e2e_rcode "$out")
	an=$(e2e_answer_count "$out")
	case $3 in
	NODATA) [ "$rc" = NOERROR ] && [ "$an" = 0 ] ||
		{ cat "$out" >&2; e2e_fail "$4 ($1 $2): want NODATA, got $rc with $an answers"; } ;;
	NOERROR) [ "$rc" = NOERROR ] && [ "$an" -gt 0 ] ||
		{ cat "$out" >&2; e2e_fail "$4 ($1 $2): want an answer, got $rc with $an answers"; } ;;
	*) [ "$rc" = "$3" ] || { cat "$out" >&2; e2e_fail "$4 ($1 $2): want $3, got $rc"; } ;;
	esac
	e2e_has_ad "$out" || { cat "$out" >&2; e2e_fail "$4 ($1 $2): $3 without AD"; }
	echo "    unbound: $4: $1 $2 -> $3, AD"
}

# check_primary NAME TYPE WANT WHAT: regsignd's own answer carries the proof.
check_primary() {
	local out=$T/p-$4.out n_nsec n_sig soattl
	[ "$3" = NOERROR ] && return 0
	e2e_dig "$RPORT" "$1" "$2" "$out"
	grep -q '^;; flags: qr aa' "$out" || { cat "$out" >&2; e2e_fail "$4: regsignd's answer lacks AA"; }
	n_nsec=$(e2e_section "$out" AUTHORITY | awk '$4 == "NSEC"' | wc -l)
	n_sig=$(e2e_section "$out" AUTHORITY | awk '$4 == "RRSIG" && $5 == "NSEC"' | wc -l)
	soattl=$(e2e_section "$out" AUTHORITY | awk '$4 == "SOA" { print $2 }')
	[ "$n_nsec" -ge 1 ] && [ "$n_nsec" -le 2 ] && [ "$n_sig" = "$n_nsec" ] ||
		{ cat "$out" >&2; e2e_fail "$4: regsignd sent $n_nsec NSEC and $n_sig RRSIG NSEC"; }
	[ -z "$(e2e_section "$out" AUTHORITY | awk '$4 == "NSEC" { print $1 }' | sort | uniq -d)" ] ||
		{ cat "$out" >&2; e2e_fail "$4: the same NSEC twice"; }
	[ "$soattl" = 300 ] || { cat "$out" >&2; e2e_fail "$4: negative TTL (SOA TTL) is '$soattl', want 300"; }
	dig @127.0.0.1 -p "$RPORT" +time=5 +tries=2 "$1" "$2" >"$out.nodo" 2>&1 ||
		e2e_fail "dig without DO failed"
	e2e_section "$out.nodo" AUTHORITY | grep -q -e '[[:space:]]NSEC[[:space:]]' -e '[[:space:]]RRSIG[[:space:]]' &&
		{ cat "$out.nodo" >&2; e2e_fail "$4: DNSSEC records without DO"; }
	return 0
}

# delv validates by itself against regsignd, with the ceremony's DS as its
# only trust anchor (static-ds).
awk 'BEGIN { print "trust-anchors {" }
	$4 == "DS" { printf "  %s static-ds %s %s %s \"%s\";\n", $1, $5, $6, $7, $8 }
	END { print "};" }' "$ANCHOR" >"$T/delv-anchor.conf"
grep -q static-ds "$T/delv-anchor.conf" || e2e_fail "could not turn $ANCHOR into a delv anchor"

check_delv() {
	local out=$T/d-$4.out
	delv @127.0.0.1 -p "$RPORT" -a "$T/delv-anchor.conf" +root="$Z" "$1" "$2" >"$out" 2>&1 || true
	case $3 in
	NOERROR) grep -q '^; fully validated' "$out" ;;
	NXDOMAIN) grep -q '^;; resolution failed: ncache nxdomain' "$out" && grep -q '^; negative response, fully validated' "$out" ;;
	NODATA) grep -q '^;; resolution failed: ncache nxrrset' "$out" && grep -q '^; negative response, fully validated' "$out" ;;
	esac || { cat "$out" >&2; e2e_fail "delv: $4 ($1 $2) not validated as $3"; }
	echo "    delv: $4: $1 $2 -> $3, validated"
}

e2e_note "through unbound, at regsignd, and in delv"
while read -r name type want what; do
	check_unbound "$name" "$type" "$want" "$what"
	check_primary "$name" "$type" "$want" "$what"
	check_delv "$name" "$type" "$want" "$what"
done <<<"$CASES"

e2e_note "control: with a DS whose digest is wrong, unbound says SERVFAIL"
e2e_check_wrong_ds "$RPORT" "1.$NEVER.$Z" CERT

grep -qi 'validation failure' "$T/unbound.log" &&
	{ grep -i 'validation failure' "$T/unbound.log" >&2; e2e_fail "unbound logged a validation failure"; }

e2e_note "stopping unbound, regsignd"
e2e_stop unbound "$E2E_UNBOUND_PID"
e2e_stop regsignd "$E2E_REGSIGND_PID"
e2e_sanitizer_check "$T/regsignd.log"
echo "PASS"
