#!/usr/bin/env python3
"""Times regsignd's zone from the outside, for bench/run.sh (issue 5, targets 3, 5, 6).

    zone_timing.py restart --regsignd B --regsign B --config C --sock S --port P
                           --serial N [--runs K] [--log F]
        Starts regsignd K times (it must not be running) and times process
        start -> the SOA serial N answered on its DNS listener, then reads
        what the start cost in HSM signatures (ZONE_STATUS "signatures" and
        STATUS's per-key counters of the zone keys) and stops it again.

    zone_timing.py revoke --regsign B --sock S --port P --devices F
                          [--knot-port K --unbound-port U --unbound-conf C --zone Z
                           --secondary NAME]
        For each "<device> <index>" line of F: REVOKE through the CLI, then
        the time from the request to the reply (durable), to the new serial
        answered on regsignd's DNS listener (port P), and with --knot-port to
        the serial at the secondary listening there (Knot, or whichever
        --secondary names: run.sh also puts NSD on that port) and to NXDOMAIN
        validated (AD) by unbound, its cache flushed for the name once the
        secondary has the serial.

Each prints one JSON object on its last line. DNS is spoken directly over
UDP (2 ms polling), so the figures have a few ms of resolution; the CLI's
own start (a few ms) is inside every "from the request" figure.
"""

import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
from net_util import dns_skip_name as skip_name  # noqa: E402

POLL = 0.002


def qname_wire(name):
    out = b""
    for lab in name.rstrip(".").split("."):
        if lab:
            out += bytes([len(lab)]) + lab.encode()
    return out + b"\0"


def query(port, name, qtype, do=False, timeout=0.5):
    """One UDP query to 127.0.0.1@port: (rcode, ad, first answer rdata of qtype) or None."""
    qid = random.randrange(65536)
    flags = 0x0100 if do else 0  # RD towards the resolver only
    ar = 1 if do else 0
    msg = struct.pack(">HHHHHH", qid, flags | (0x20 if do else 0), 1, 0, 0, ar)
    msg += qname_wire(name) + struct.pack(">HH", qtype, 1)
    if do:
        msg += b"\0" + struct.pack(">HHIH", 41, 4096, 0x8000, 0)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(msg, ("127.0.0.1", port))
        while True:
            data, _ = s.recvfrom(65535)
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                break
    except OSError:
        return None
    finally:
        s.close()
    _, fl, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    pos = 12
    for _ in range(qd):
        pos = skip_name(data, pos) + 4
    rdata = None
    for _ in range(an):
        pos = skip_name(data, pos)
        t, _, _, rdl = struct.unpack(">HHIH", data[pos:pos + 10])
        pos += 10
        if t == qtype and rdata is None:
            rdata = (pos, data)
        pos += rdl
    return fl & 0xF, bool(fl & 0x20), rdata


def soa_serial(port, zone):
    r = query(port, zone, 6)
    if r is None or r[0] != 0 or r[2] is None:
        return None
    pos, data = r[2]
    pos = skip_name(data, skip_name(data, pos))
    return struct.unpack(">I", data[pos:pos + 4])[0]


def serial_ge(a, b):
    """RFC 1982: a >= b."""
    return a == b or 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def wait_serial(port, zone, serial, deadline):
    while time.monotonic() < deadline:
        s = soa_serial(port, zone)
        if s is not None and serial_ge(s, serial):
            return time.monotonic()
        time.sleep(POLL)
    return None


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] if v else None


def cli_json(regsign, sock, *args):
    out = subprocess.run([regsign, "-s", sock, "-t", "60"] + list(args) + ["--json"],
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout) if out.returncode == 0 else None


def cmd_restart(a):
    runs, zsig, ksig = [], [], []
    names = None
    zone = None
    for _ in range(a.runs):
        log = open(a.log, "ab") if a.log else subprocess.DEVNULL
        t0 = time.monotonic()
        p = subprocess.Popen([a.regsignd, "-c", a.config], stdout=log, stderr=log)
        try:
            deadline = t0 + a.timeout
            t1 = None
            while time.monotonic() < deadline and p.poll() is None:
                # The zone's name is not known yet: ask for any SOA answer's
                # serial through the zone named by --zone.
                s = soa_serial(a.port, a.zone)
                if s is not None and serial_ge(s, a.serial):
                    t1 = time.monotonic()
                    break
                time.sleep(POLL)
            if t1 is None:
                raise SystemExit("restart: serial %d not served within %d s (exit %s)"
                                 % (a.serial, a.timeout, p.poll()))
            runs.append(t1 - t0)
            zs = None
            for _ in range(600):
                zs = cli_json(a.regsign, a.sock, "zone-status")
                if zs is not None:
                    break
                time.sleep(0.1)
            st = cli_json(a.regsign, a.sock, "status")
            if zs is None or st is None:
                raise SystemExit("restart: no ZONE_STATUS/STATUS answer after the start")
            names, zone = zs.get("names"), zs.get("zone")
            zsig.append(zs.get("signatures"))
            ksig.append(sum(k.get("signatures", 0) for k in st.get("keys", [])
                            if k.get("role") in ("ksk", "zsk")))
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=600)
            if log is not subprocess.DEVNULL:
                log.close()
    print(json.dumps({"runs_s": runs, "median_s": pct(runs, 0.5), "max_s": max(runs),
                      "serial": a.serial, "zone": zone, "names": names,
                      "zone_signatures_at_start": zsig, "zone_key_signatures_at_start": ksig,
                      "verified_at_start": 0,
                      "verified_note": "the load path verifies no signature (zonepub_load: "
                                       "zone_load_finish without verification)"}))


def cmd_revoke(a):
    devs = [l.split() for l in open(a.devices) if l.strip()]
    rows = []
    for dev, idx in devs:
        name = "%s.%s.%s" % (idx, dev, a.zone.rstrip("."))
        t0 = time.monotonic()
        out = subprocess.run([a.regsign, "-s", a.sock, "-t", "60", "revoke", "--device", dev,
                              "--index", idx, "--reason", "keyCompromise"],
                             capture_output=True, text=True, timeout=120)
        t_ack = time.monotonic()
        serial = None
        for line in out.stdout.splitlines():
            if line.startswith("zone-serial:"):
                serial = int(line.split(":", 1)[1])
        if out.returncode != 0 or serial is None:
            raise SystemExit("revoke %s failed: %s %s" % (name, out.stdout, out.stderr))
        row = {"name": name, "serial": serial, "ack_s": t_ack - t0}
        deadline = t0 + a.timeout
        t = wait_serial(a.port, a.zone, serial, deadline)
        if t is None:
            raise SystemExit("serial %d of %s not served by regsignd" % (serial, name))
        row["primary_s"] = t - t0
        if a.knot_port:
            t = wait_serial(a.knot_port, a.zone, serial, deadline)
            if t is None:
                raise SystemExit("serial %d not at the %s secondary in %d s"
                                 % (serial, a.secondary, a.timeout))
            row["secondary_s"] = t - t0
            while True:
                for c in (["flush", name], ["flush_negative"]):
                    subprocess.run(["unbound-control", "-c", a.unbound_conf] + c,
                                   capture_output=True, timeout=30, check=True)
                r = query(a.unbound_port, name, 37, do=True, timeout=5)
                if r is not None and r[0] == 3 and r[1]:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("%s: no validated NXDOMAIN from unbound (last %r)"
                                     % (name, r and r[:2]))
                time.sleep(POLL)
            t = time.monotonic()
            row["nxdomain_s"] = t - t0
            row["nxdomain_after_ack_s"] = t - t_ack
        rows.append(row)
    res = {"n": len(rows), "rows": rows}
    if a.knot_port:
        res["secondary"] = a.secondary
    for k in ("ack_s", "primary_s", "secondary_s", "nxdomain_s", "nxdomain_after_ack_s"):
        v = [r[k] for r in rows if k in r]
        if v:
            res[k] = {"p50": pct(v, 0.5), "p99": pct(v, 0.99), "max": max(v)}
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("restart")
    r.add_argument("--regsignd", required=True)
    r.add_argument("--regsign", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--sock", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--serial", type=int, required=True)
    r.add_argument("--zone", default="iotregistry.test.")
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--timeout", type=int, default=900)
    r.add_argument("--log")
    v = sub.add_parser("revoke")
    v.add_argument("--regsign", required=True)
    v.add_argument("--sock", required=True)
    v.add_argument("--port", type=int, required=True)
    v.add_argument("--devices", required=True)
    v.add_argument("--zone", default="iotregistry.test.")
    v.add_argument("--knot-port", type=int)
    v.add_argument("--unbound-port", type=int)
    v.add_argument("--unbound-conf")
    v.add_argument("--secondary", default="Knot")
    v.add_argument("--timeout", type=int, default=120)
    a = ap.parse_args()
    if a.cmd == "restart":
        cmd_restart(a)
    else:
        if a.knot_port and not (a.unbound_port and a.unbound_conf):
            ap.error("--knot-port needs --unbound-port and --unbound-conf")
        cmd_revoke(a)


if __name__ == "__main__":
    sys.exit(main())
