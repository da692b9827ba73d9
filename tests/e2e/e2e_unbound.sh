#!/bin/bash
# End to end with real DNS software, all on loopback, all started here:
#
#   regsign CLI -> regsignd (fresh dev setup, hidden primary)
#     -> knotd (secondary: AXFR at start, IXFR after each NOTIFY)
#       -> unbound (validator; trust anchor: ONLY the ceremony's out/ds.txt)
#         -> dig +dnssec
#
# Asserts, through unbound:
#  - an issued device's CERT record validates (AD) and its payload is the
#    SHA-256 of the issued certificate's DER;
#  - after its revocation (unbound's cache flushed) the same name is NXDOMAIN
#    with AD, proven by a signed NSEC;
#  - the device's empty non-terminal <id>.<zone>, which has no NSEC of its
#    own, gets a provable NODATA (NOERROR, no answer, AD) while another
#    certificate of the device keeps it in the tree, and that certificate
#    still validates;
# and on the way: Knot took one AXFR and then only IXFRs after NOTIFY, its
# copy equals regsignd's zone, unbound logged no validation failure, every
# server exits cleanly (regsignd's log free of sanitizer reports).
set -eu
. "$(dirname "$0")/e2e_lib.sh"

e2e_require knotd unbound unbound-control unbound-checkconf dig openssl python3 \
	pkcs11-tool softhsm2-util awk base64
: "${REGSIGN_BIN_DIR:?REGSIGN_BIN_DIR must point at build/bin}"
src=${REGSIGN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
E2E_BIN=$REGSIGN_BIN_DIR
for p in regsignd regsign regsign-ceremony; do
	[ -x "$E2E_BIN/$p" ] || e2e_fail "$E2E_BIN/$p is not built"
done
e2e_init regsign-e2e
T=$E2E_T
DEV=8912230200031010008f
Z=$E2E_ZONE

e2e_dev_setup "$src"

RPORT=$(e2e_free_port)
KPORT=$(e2e_free_port)
UPORT=$(e2e_free_port)
[ -n "$RPORT" ] && [ -n "$KPORT" ] && [ -n "$UPORT" ] || e2e_fail "no free loopback ports"
[ "$RPORT" != "$KPORT" ] && [ "$KPORT" != "$UPORT" ] && [ "$RPORT" != "$UPORT" ] ||
	e2e_fail "free_port gave the same port twice"

e2e_note "regsignd: DNS on 127.0.0.1@$RPORT, NOTIFY to knotd at 127.0.0.1@$KPORT"
e2e_daemon_config "$T/dev/regsignd.yaml" "$T/regsignd.yaml" "$RPORT" "$KPORT"
SOCK=$T/dev/regsignd.sock
e2e_start_regsignd "$T/regsignd.yaml" "$SOCK" "$T/regsignd.log"
e2e_wait_until 60 "regsignd to answer SOA queries on port $RPORT" e2e_serial_ge "$RPORT" 0
S0=$(e2e_serial_at "$RPORT")

e2e_note "knotd as secondary (serial $S0 by AXFR)"
e2e_start_knot "$KPORT" "$RPORT"
e2e_wait_until 120 "knotd to serve serial $S0" e2e_serial_ge "$KPORT" "$S0"
grep -q 'AXFR, incoming.*finished' "$T/knot.log" || e2e_fail "knotd's log shows no finished AXFR"

e2e_note "unbound validating with the ceremony's DS as its only trust anchor"
e2e_start_unbound "$UPORT" "$KPORT" "$ANCHOR"
e2e_dig "$UPORT" "$Z" SOA "$T/q-soa.out"
[ "$(e2e_rcode "$T/q-soa.out")" = NOERROR ] && e2e_has_ad "$T/q-soa.out" ||
	{ cat "$T/q-soa.out" >&2; e2e_fail "the zone's SOA does not validate through unbound"; }

# issue DIR INDEX NAME: issue a certificate for a fresh CSR; sets ZSERIAL.
issue() {
	e2e_make_csr "$T" "$3"
	"$E2E_BIN/regsign" -s "$SOCK" -t 60 issue --device "$DEV" --index "$2" \
		--csr "$T/$3.csr" --out "$T/$3.pem" >"$T/$3.issue" 2>&1 ||
		{ cat "$T/$3.issue" >&2; e2e_fail "regsign issue of $2.$DEV failed"; }
	grep -qx "index: $2" "$T/$3.issue" || e2e_fail "issue did not use index $2"
	ZSERIAL=$(sed -n 's/^zone-serial: //p' "$T/$3.issue")
	[ -n "$ZSERIAL" ] && [ "$ZSERIAL" -gt 0 ] || e2e_fail "issue replied no zone serial"
}

# follow SERIAL WHAT: regsignd serves SERIAL, NOTIFY brings knotd to it.
follow() {
	e2e_serial_ge "$RPORT" "$1" || e2e_fail "regsignd replied serial $1 but serves $(e2e_serial_at "$RPORT")"
	# Knot's SOA refresh is an hour, so reaching the serial within the bound
	# means the NOTIFY arrived.
	e2e_wait_until 120 "knotd to reach serial $1 ($2)" e2e_serial_ge "$KPORT" "$1"
}

e2e_note "issue $DEV index 1"
issue "$T" 1 dev1
Z1=$ZSERIAL
follow "$Z1" "issue of index 1"
grep -qi "notify, incoming.*serial $Z1" "$T/knot.log" ||
	e2e_fail "knotd's log shows no NOTIFY for serial $Z1"
grep -q 'IXFR, incoming.*finished' "$T/knot.log" || e2e_fail "knotd's log shows no finished IXFR"

e2e_note "through unbound: 1.$DEV.$Z CERT validates and is the certificate's hash"
e2e_dig "$UPORT" "1.$DEV.$Z" CERT "$T/q1.out"
[ "$(e2e_rcode "$T/q1.out")" = NOERROR ] || { cat "$T/q1.out" >&2; e2e_fail "1.$DEV: not NOERROR"; }
e2e_has_ad "$T/q1.out" || { cat "$T/q1.out" >&2; e2e_fail "1.$DEV: no AD bit"; }
want=$(e2e_cert_b64_sha256 "$T/dev1.pem")
got=$(e2e_cert_payload "$T/q1.out" "1.$DEV.$Z")
[ -n "$got" ] || { cat "$T/q1.out" >&2; e2e_fail "1.$DEV: no CERT record in the answer"; }
[ "$got" = "$want" ] || e2e_fail "1.$DEV: CERT payload $got is not SHA-256 $want of the certificate"
e2e_section "$T/q1.out" ANSWER | grep -q "[[:space:]]RRSIG[[:space:]]CERT 13 " ||
	e2e_fail "1.$DEV: the answer carries no RRSIG CERT"

e2e_note "the README's freshness bounds hold at the primary: TTL 300, RRSIG at most 6 h, SOA minimum 300"
e2e_dig "$RPORT" "1.$DEV.$Z" CERT "$T/p1.out"
now=$(date -u +%s)
ttl=$(e2e_section "$T/p1.out" ANSWER | awk '$4 == "CERT" { print $2; exit }')
[ "$ttl" = 300 ] || e2e_fail "device record TTL is '$ttl', the README says 300"
exp=$(e2e_section "$T/p1.out" ANSWER | awk '$4 == "RRSIG" && $5 == "CERT" { print $9; exit }')
exp_s=$(date -u -d "${exp:0:4}-${exp:4:2}-${exp:6:2} ${exp:8:2}:${exp:10:2}:${exp:12:2}" +%s) ||
	e2e_fail "cannot read the RRSIG expiration '$exp'"
left=$((exp_s - now))
[ "$left" -gt 3600 ] && [ "$left" -le $((6 * 3600 + 60)) ] ||
	e2e_fail "device RRSIG expires in ${left}s; the README promises at most 6 h (and the refresh keeps it above 3 h)"
e2e_dig "$RPORT" "$Z" SOA "$T/psoa.out"
soamin=$(e2e_section "$T/psoa.out" ANSWER | awk '$4 == "SOA" { print $11; exit }')
[ "$soamin" = 300 ] || e2e_fail "SOA minimum is '$soamin', the README says 300"
echo "    device TTL $ttl s, device RRSIG expires in $left s, SOA minimum $soamin s"

e2e_note "issue $DEV index 2 (shares the empty non-terminal $DEV.$Z)"
issue "$T" 2 dev2
Z2=$ZSERIAL
[ "$Z2" -gt "$Z1" ] || e2e_fail "zone serial did not grow: $Z1 then $Z2"
follow "$Z2" "issue of index 2"

e2e_note "revoke index 1"
"$E2E_BIN/regsign" -s "$SOCK" -t 60 revoke --device "$DEV" --index 1 --reason keyCompromise \
	>"$T/revoke.out" 2>&1 || { cat "$T/revoke.out" >&2; e2e_fail "regsign revoke failed"; }
Z3=$(sed -n 's/^zone-serial: //p' "$T/revoke.out")
[ -n "$Z3" ] && [ "$Z3" -gt "$Z2" ] || { cat "$T/revoke.out" >&2; e2e_fail "revoke replied no newer zone serial"; }
follow "$Z3" "revocation of index 1"
nax=$(grep -c 'AXFR, incoming.*finished' "$T/knot.log" || true)
nix=$(grep -c 'IXFR, incoming.*finished' "$T/knot.log" || true)
[ "$nax" -eq 1 ] || e2e_fail "knotd took $nax AXFRs; after the first only IXFRs were expected"
[ "$nix" -ge 3 ] || e2e_fail "knotd logged $nix finished IXFRs for 3 changes"
grep -qi 'fallback to AXFR' "$T/knot.log" && e2e_fail "knotd fell back from IXFR to AXFR"

e2e_note "flush unbound's cache of $Z"
e2e_unbound_flush

e2e_note "through unbound: 1.$DEV.$Z is NXDOMAIN, proven (AD)"
e2e_dig "$UPORT" "1.$DEV.$Z" CERT "$T/q1r.out"
[ "$(e2e_rcode "$T/q1r.out")" = NXDOMAIN ] || { cat "$T/q1r.out" >&2; e2e_fail "revoked 1.$DEV: not NXDOMAIN"; }
e2e_has_ad "$T/q1r.out" || { cat "$T/q1r.out" >&2; e2e_fail "revoked 1.$DEV: NXDOMAIN without AD"; }
e2e_section "$T/q1r.out" AUTHORITY | grep -q '[[:space:]]NSEC[[:space:]]' ||
	{ cat "$T/q1r.out" >&2; e2e_fail "revoked 1.$DEV: no NSEC in the authority section"; }
e2e_section "$T/q1r.out" AUTHORITY | grep -q '[[:space:]]RRSIG[[:space:]]NSEC 13 ' ||
	{ cat "$T/q1r.out" >&2; e2e_fail "revoked 1.$DEV: the NSEC is not signed"; }

e2e_note "through unbound: the empty non-terminal $DEV.$Z is a proven NODATA"
e2e_dig "$UPORT" "$DEV.$Z" CERT "$T/qent.out"
[ "$(e2e_rcode "$T/qent.out")" = NOERROR ] || { cat "$T/qent.out" >&2; e2e_fail "$DEV.$Z: not NOERROR"; }
[ "$(e2e_answer_count "$T/qent.out")" = 0 ] || { cat "$T/qent.out" >&2; e2e_fail "$DEV.$Z: has an answer"; }
e2e_has_ad "$T/qent.out" || { cat "$T/qent.out" >&2; e2e_fail "$DEV.$Z: NODATA without AD"; }
e2e_section "$T/qent.out" AUTHORITY | grep -q '[[:space:]]NSEC[[:space:]]' ||
	{ cat "$T/qent.out" >&2; e2e_fail "$DEV.$Z: no NSEC in the authority section"; }

e2e_note "through unbound: 2.$DEV.$Z still validates"
e2e_dig "$UPORT" "2.$DEV.$Z" CERT "$T/q2.out"
[ "$(e2e_rcode "$T/q2.out")" = NOERROR ] && e2e_has_ad "$T/q2.out" ||
	{ cat "$T/q2.out" >&2; e2e_fail "2.$DEV: not a validated answer"; }
[ "$(e2e_cert_payload "$T/q2.out" "2.$DEV.$Z")" = "$(e2e_cert_b64_sha256 "$T/dev2.pem")" ] ||
	e2e_fail "2.$DEV: CERT payload is not the SHA-256 of its certificate"

e2e_note "control: with a DS whose digest is wrong, the same answer is bogus (SERVFAIL)"
e2e_check_wrong_ds "$KPORT" "2.$DEV.$Z" CERT

e2e_note "knotd's copy equals regsignd's zone"
zone_lines() {
	dig @127.0.0.1 -p "$1" +nocmd +nocomments +nostats +time=10 "$Z" AXFR |
		grep -v -e '^;' -e '^$' | awk '{ $2 = ""; print }' | sort -u
}
zone_lines "$RPORT" >"$T/zone-primary.txt"
zone_lines "$KPORT" >"$T/zone-knot.txt"
[ -s "$T/zone-primary.txt" ] || e2e_fail "AXFR from regsignd gave nothing"
diff "$T/zone-primary.txt" "$T/zone-knot.txt" >"$T/zone.diff" ||
	{ head -20 "$T/zone.diff" >&2; e2e_fail "knotd's copy differs from regsignd's zone"; }
grep -q "^1\.$DEV\.$Z" "$T/zone-knot.txt" && e2e_fail "the revoked name is still in knotd's copy"

grep -qi 'validation failure' "$T/unbound.log" &&
	{ grep -i 'validation failure' "$T/unbound.log" >&2; e2e_fail "unbound logged a validation failure"; }

e2e_note "stopping unbound, knotd, regsignd"
e2e_stop unbound "$E2E_UNBOUND_PID"
e2e_stop knotd "$E2E_KNOT_PID"
e2e_stop regsignd "$E2E_REGSIGND_PID"
e2e_sanitizer_check "$T/regsignd.log"
echo "PASS"
