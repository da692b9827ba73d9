#!/bin/bash
# Integration test of the DNS listener with NSD as secondary: NSD, keyed
# with TSIG, transfers the zone, then after each change and NOTIFY pulls an
# IXFR (the test server must log IXFRs, not AXFRs) and serves the new serial;
# its copy must equal the test server's zone RR for RR.
set -eu
. "$(dirname "$0")/dns_lib.sh"

require nsd kdig python3
dns_setup

KEY=xfrkey
SECRET=$(head -c 32 /dev/urandom | base64)
NPORT=$(free_port)
[ -n "$NPORT" ] || fail "no free port for nsd"

note "test server with 200 devices, NOTIFY to nsd at port $NPORT"
start_testsrv srv --devices 200 --batch 3 --allow "127.0.0.1,$KEY" \
	--tsig "hmac-sha256:$KEY:$SECRET" --notify "127.0.0.1:$NPORT,$KEY"
PPORT=$SRV_PORT
S0=$(serial_at "$PPORT")
[ -n "$S0" ] || fail "no SOA from the test server"

note "nsd as secondary"
N="$T/nsd"
mkdir -p "$N/xfr"
cat >"$N/nsd.conf" <<EOC
server:
    ip-address: 127.0.0.1@$NPORT
    port: $NPORT
    username: ""
    chroot: ""
    zonesdir: "$N"
    database: ""
    pidfile: "$N/nsd.pid"
    xfrdfile: "$N/xfrd.state"
    xfrdir: "$N/xfr"
    zonelistfile: "$N/zone.list"
    logfile: "$T/nsd.log"
    verbosity: 2
    server-count: 1
    reuseport: no
remote-control:
    control-enable: no
key:
    name: $KEY
    algorithm: hmac-sha256
    secret: "$SECRET"
zone:
    name: iotregistry.test.
    zonefile: "iotregistry.test.zone"
    request-xfr: 127.0.0.1@$PPORT $KEY
    allow-notify: 127.0.0.1 $KEY
    provide-xfr: 127.0.0.1 NOKEY
EOC
nsd -d -c "$N/nsd.conf" 2>>"$T/nsd.log" &
NSD_PID=$!
PIDS="$PIDS $NSD_PID"
wait_until 120 "nsd to serve serial $S0" serial_is "$NPORT" "$S0"
diff <(zone_lines "$PPORT" -y "hmac-sha256:$KEY:$SECRET") <(zone_lines "$NPORT") >"$T/diff.out" ||
	{ head -20 "$T/diff.out"; fail "nsd's copy differs from the primary's zone"; }

for step in add remove add; do
	s=$(serial_at "$PPORT")
	ixfrs=$(grep -c 'IXFR of iotregistry.test.' "$T/srv.log" || true)
	if [ $step = add ]; then kill -USR1 "$SRV_PID"; else kill -USR2 "$SRV_PID"; fi
	wait_until 30 "test server to reach serial $((s + 1))" serial_is "$PPORT" $((s + 1))
	note "$step: serial $((s + 1)); NOTIFY, nsd pulls IXFR"
	wait_until 60 "nsd to serve serial $((s + 1))" serial_is "$NPORT" $((s + 1))
	[ "$(grep -c 'IXFR of iotregistry.test.' "$T/srv.log")" -gt "$ixfrs" ] ||
		fail "serial $((s + 1)) did not reach nsd by IXFR"
	wait_until 30 "the NOTIFY of serial $((s + 1)) to be acknowledged" \
		grep -q "NOTIFY serial $((s + 1)) acknowledged by 127.0.0.1#$NPORT" "$T/srv.log"
done
grep -q 'IXFR fallback' "$T/srv.log" && fail "an IXFR from nsd fell back to AXFR"
diff <(zone_lines "$PPORT" -y "hmac-sha256:$KEY:$SECRET") <(zone_lines "$NPORT") >"$T/diff.out" ||
	{ head -20 "$T/diff.out"; fail "after IXFRs nsd's copy differs from the zone"; }

note "stopping"
stop_pid "$NSD_PID"
stop_pid "$SRV_PID"
grep -q 'dns_testsrv: stopped' "$T/srv.log" || fail "test server did not close its loop cleanly"
echo "PASS"
