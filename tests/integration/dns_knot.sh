#!/bin/bash
# Integration test of the DNS listener with Knot DNS as secondary:
#  - kdig and dig read SOA and AXFR (TSIG-signed) from the test server;
#  - knotd, as a TSIG-keyed secondary, transfers the zone by AXFR, validates
#    it (dnssec-validation), then after each change and NOTIFY pulls IXFR and
#    serves the new serial; its log must show the IXFRs, and its copy must
#    equal the test server's zone RR for RR;
#  - transfers are refused to an address outside the allow-list, without
#    the key, and with a wrong secret.
set -eu
. "$(dirname "$0")/dns_lib.sh"

require knotd kdig dig python3
dns_setup

KEY=xfrkey
SECRET=$(head -c 32 /dev/urandom | base64)
OTHER=$(head -c 32 /dev/urandom | base64)
KPORT=$(free_port)
[ -n "$KPORT" ] || fail "no free port for knotd"

note "test server with 300 devices, NOTIFY to knotd at port $KPORT"
start_testsrv srv --devices 300 --batch 5 --allow "127.0.0.1,$KEY" \
	--tsig "hmac-sha256:$KEY:$SECRET" --tsig "hmac-sha256:otherkey:$OTHER" \
	--notify "127.0.0.1:$KPORT,$KEY"
PPORT=$SRV_PORT
S0=$(serial_at "$PPORT")
[ -n "$S0" ] || fail "no SOA from the test server"

note "kdig and dig against the test server"
kdig @127.0.0.1 -p "$PPORT" +dnssec iotregistry.test. SOA | grep -q 'RRSIG.*SOA 13' ||
	fail "SOA query with DO returned no RRSIG"
n=$(zone_lines "$PPORT" -y "hmac-sha256:$KEY:$SECRET" | wc -l)
# Apex: SOA, NS, 2 DNSKEY, NSEC and 4 RRSIGs; per device CERT, NSEC, 2 RRSIGs.
[ "$n" -eq $((9 + 300 * 4)) ] || fail "AXFR has $n RRs, expected $((9 + 300 * 4))"
dig @127.0.0.1 -p "$PPORT" -y "hmac-sha256:$KEY:$SECRET" iotregistry.test. AXFR >"$T/dig.out" 2>&1 ||
	fail "dig AXFR failed"
grep -q 'XFR size: 1210 records' "$T/dig.out" || { cat "$T/dig.out"; fail "dig AXFR size"; }
grep -qi 'tsig.*bad\|failed' "$T/dig.out" && fail "dig reports a TSIG problem"
dig @127.0.0.1 -p "$PPORT" example.com. SOA | grep -q 'status: REFUSED' ||
	fail "a query for another zone was not REFUSED"

note "refusals"
kdig @127.0.0.1 -p "$PPORT" +time=5 iotregistry.test. AXFR >"$T/r1.out" 2>&1 || true
grep -q REFUSED "$T/r1.out" || { cat "$T/r1.out"; fail "unsigned AXFR was not refused"; }
kdig @127.0.0.1 -p "$PPORT" +time=5 -y "hmac-sha256:$KEY:$(head -c 32 /dev/urandom | base64)" \
	iotregistry.test. AXFR >"$T/r2.out" 2>&1 || true
grep -q BADSIG "$T/r2.out" || { cat "$T/r2.out"; fail "AXFR with a wrong secret: no BADSIG"; }
kdig @127.0.0.1 -p "$PPORT" -b 127.0.0.2 +time=5 -y "hmac-sha256:$KEY:$SECRET" \
	iotregistry.test. AXFR >"$T/r3.out" 2>&1 || true
grep -q REFUSED "$T/r3.out" || { cat "$T/r3.out"; fail "AXFR from 127.0.0.2 was not refused"; }
kdig @127.0.0.1 -p "$PPORT" +time=5 -y "hmac-sha256:otherkey:$OTHER" \
	iotregistry.test. AXFR >"$T/r4.out" 2>&1 || true
grep -q REFUSED "$T/r4.out" || { cat "$T/r4.out"; fail "AXFR with a key the allow-list does not name was not refused"; }
[ "$(grep -c 'transfer of iotregistry.test. refused' "$T/srv.log")" -ge 3 ] ||
	fail "the test server did not log the refusals"

note "knotd as secondary"
mkdir -p "$T/knot/run" "$T/knot/db" "$T/knot/zones"
cat >"$T/knot/knot.conf" <<EOC
server:
    rundir: "$T/knot/run"
    listen: 127.0.0.1@$KPORT
database:
    storage: "$T/knot/db"
    journal-db-max-size: 1G
log:
  - target: "$T/knot.log"
    any: debug
key:
  - id: $KEY
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: primary
    address: 127.0.0.1@$PPORT
    key: $KEY
acl:
  - id: from_primary
    address: 127.0.0.1
    key: $KEY
    action: notify
  - id: local_transfer
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "$T/knot/zones"
    zonefile-sync: -1
    journal-content: changes
    journal-max-usage: 512M
zone:
  - domain: iotregistry.test.
    master: primary
    acl: [from_primary, local_transfer]
    dnssec-validation: on
EOC
knotd -c "$T/knot/knot.conf" 2>>"$T/knot.log" &
KNOT_PID=$!
PIDS="$PIDS $KNOT_PID"
wait_until 120 "knotd to serve serial $S0" serial_is "$KPORT" "$S0"
grep -q 'AXFR, incoming.*finished' "$T/knot.log" || fail "knotd log shows no finished AXFR"
grep -qi 'DNSSEC, validation failed\|validation.*fail' "$T/knot.log" &&
	fail "knotd could not validate the zone"
diff <(zone_lines "$PPORT" -y "hmac-sha256:$KEY:$SECRET") <(zone_lines "$KPORT") >"$T/diff.out" ||
	{ head -20 "$T/diff.out"; fail "knotd's copy differs from the primary's zone"; }

for step in add remove add; do
	s=$(serial_at "$PPORT")
	if [ $step = add ]; then kill -USR1 "$SRV_PID"; else kill -USR2 "$SRV_PID"; fi
	wait_until 30 "test server to reach serial $((s + 1))" serial_is "$PPORT" $((s + 1))
	note "$step: serial $((s + 1)); NOTIFY, knotd pulls IXFR"
	wait_until 60 "knotd to serve serial $((s + 1))" serial_is "$KPORT" $((s + 1))
	# Knot logs the IXFR, then the refresh that applied it.
	[ "$(grep -c 'IXFR, incoming.*finished' "$T/knot.log")" -ge "$((s + 1 - S0))" ] ||
		fail "knotd log shows no finished IXFR for serial $((s + 1))"
	grep -q "zone updated.*serial $s -> $((s + 1))" "$T/knot.log" ||
		fail "knotd log shows no update from $s to $((s + 1))"
	wait_until 30 "the NOTIFY of serial $((s + 1)) to be acknowledged" \
		grep -q "NOTIFY serial $((s + 1)) acknowledged by 127.0.0.1#$KPORT" "$T/srv.log"
done
grep -qi 'fallback to AXFR\|IXFR.*failed' "$T/knot.log" && fail "knotd fell back from IXFR"
grep -q 'IXFR of iotregistry.test.' "$T/srv.log" || fail "test server logged no IXFR"
diff <(zone_lines "$PPORT" -y "hmac-sha256:$KEY:$SECRET") <(zone_lines "$KPORT") >"$T/diff.out" ||
	{ head -20 "$T/diff.out"; fail "after IXFRs knotd's copy differs from the zone"; }
kdig @127.0.0.1 -p "$KPORT" +dnssec iotregistry.test. SOA | grep -q 'RRSIG' ||
	fail "knotd serves the SOA without its RRSIG"

note "stopping"
stop_pid "$KNOT_PID"
stop_pid "$SRV_PID"
grep -q 'dns_testsrv: stopped' "$T/srv.log" || fail "test server did not close its loop cleanly"
echo "PASS"
