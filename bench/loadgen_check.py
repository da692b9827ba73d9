#!/usr/bin/env python3
"""Checks `regsign bench` (the load generator) against a fake daemon.

The fake daemon speaks the real protocol (tests/python/regsign_client.py,
written from docs/PROTOCOL.md) and counts what it is asked, so that the
generator's own figures can be compared with the truth:

- every reply is counted exactly once (ok + refused = what the fake saw in
  the measured phase; for revoke, the prepared issues are apart);
- replies answered out of order are matched to the right request (the fake
  answers each batch of requests it reads in reverse order);
- refusals are counted by code (the fake refuses every 7th SIGN_RRSET with
  BUSY, and REVOKE of a certificate it never issued with NOT_FOUND);
- "hsm_signatures" is the STATUS difference (the fake counts a signature
  per SIGN_RRSET, two per ISSUE and two per REVOKE);
- request fields are what the options say (zone, RRset wire, CSR DER that
  OpenSSL parses, device ids of 20 hex digits, index 1, the reason).

Usage: loadgen_check.py REGSIGN_BINARY [--json OUT]. Prints one line per
case and exits non-zero on the first failed check; --json writes a summary
for bench/run.sh.
"""

import json
import os
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import regsign_client as rc  # noqa: E402


def dname_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class Fake:
    """A threaded fake regsignd on a Unix socket."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.counts = {}
        self.refused = {}
        self.signatures = 0
        self.issued = set()
        self.bad = []
        self.csrs = set()
        self.reorders = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                buf = bytearray()
                while True:
                    chunk = self.request.recv(1 << 16)
                    if not chunk:
                        return
                    buf += chunk
                    frames = []
                    while True:
                        size = rc.frame_size(buf, rc.REQUEST_MAX)
                        if size is None or len(buf) < size:
                            break
                        frames.append(bytes(buf[:size]))
                        del buf[:size]
                    # Answer in reverse order: the generator must match by id.
                    if len(frames) > 1:
                        with outer.lock:
                            outer.reorders += 1
                    out = b"".join(outer.answer(*rc.decode_request(f))
                                   for f in reversed(frames))
                    if out:
                        self.request.sendall(out)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def check(self, cond, what):
        if not cond:
            with self.lock:
                if len(self.bad) < 10:
                    self.bad.append(what)

    def answer(self, op, req_id, f):
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + 1
            n = self.counts[op]
        if op == "HELLO":
            self.check(f["client"] == "regsign-bench", "HELLO client %r" % f["client"])
            return rc.encode_reply(op, req_id, version=1, max_frame=262144, server="fake")
        if op == "STATUS":
            with self.lock:
                doc = {"keys": [{"role": "zsk", "signatures": self.signatures},
                                {"role": "issuing-ca", "signatures": 0}],
                       "hsm": {"state": "up"}}
            return rc.encode_reply(op, req_id, json=json.dumps(doc))
        if op == "SIGN_RRSET":
            wire = f["rrset_wire"]
            self.check(f["zone"] == "asp.test.", "zone %r" % f["zone"])
            self.check(wire[0:1] == b"\x02" or wire[0:1] == b"\x03" or wire[0:1] == b"\x04",
                       "RRset owner label b<i>")
            self.check(b"\x03asp\x04test\x00" in wire, "RRset owner not under asp.test.")
            self.check(f["expiration"] > f["inception"], "RRSIG times")
            if n % 7 == 0:
                with self.lock:
                    self.refused["BUSY"] = self.refused.get("BUSY", 0) + 1
                return rc.encode_error(req_id, "BUSY", "fake is busy")
            with self.lock:
                self.signatures += 1
            rdata = (struct.pack(">HBBIIIH", 16, 13, 3, 300, f["expiration"], f["inception"], 1)
                     + dname_wire("asp.test.") + bytes(64))
            return rc.encode_reply(op, req_id, rrsig_wire=wire[:wire.index(b"\0") + 1]
                                   + struct.pack(">HHIH", 46, 1, 300, len(rdata)) + rdata)
        if op == "ISSUE":
            dev = f["device_id"]
            self.check(len(dev) == 20 and all(c in "0123456789abcdef" for c in dev),
                       "device id %r" % dev)
            self.check(f["index"] == 1, "index %r" % f["index"])
            with self.lock:
                self.issued.add(dev)
                self.signatures += 2
                if len(self.csrs) < 64:
                    self.csrs.add(f["csr_der"])
            return rc.encode_reply(op, req_id, cert_der=b"\x30\x03abc", chain=[b"\x30\x00"],
                                   serial_hex="%x" % n, zone_serial=n, index=1)
        if op == "REVOKE":
            dev = f["device_id"]
            self.check(f["reason"] == "cessationOfOperation", "reason %r" % f["reason"])
            with self.lock:
                known = dev in self.issued
                if known:
                    self.issued.discard(dev)
                    self.signatures += 2
                else:
                    self.refused["NOT_FOUND"] = self.refused.get("NOT_FOUND", 0) + 1
            if not known:
                return rc.encode_error(req_id, "NOT_FOUND", "no such certificate")
            return rc.encode_reply(op, req_id, serial_hex="1", revoked_at=1700000000,
                                   zone_serial=n)
        return rc.encode_error(req_id, "INTERNAL", "unexpected %s" % op)


def run_bench(prog, sock, *args):
    cmd = [prog, "-s", sock, "bench", "--json", "--warmup", "0"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise SystemExit("FAIL: %s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise SystemExit("FAIL: output is not JSON (%s): %r" % (e, p.stdout))


def expect(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


def csr_parses(der):
    p = subprocess.run(["openssl", "req", "-inform", "DER", "-noout", "-verify"],
                       input=der, capture_output=True, timeout=30)
    return p.returncode == 0


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: loadgen_check.py REGSIGN_BINARY [--json OUT]")
    prog = sys.argv[1]
    out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    summary = {}
    with tempfile.TemporaryDirectory(prefix="regsign-loadgen-") as d:
        sock = os.path.join(d, "fake.sock")
        fake = Fake(sock)
        try:
            # Closed loop, pipelined: counts, reordering, refusals by code.
            r = run_bench(prog, sock, "--op", "sign-rrset", "--clients", "3",
                          "--window", "16", "--seconds", "1")
            seen = fake.counts.get("SIGN_RRSET", 0)
            expect(r["ok"] + r["refused"] == seen,
                   "sign-rrset: ok %d + refused %d != %d answered" % (r["ok"], r["refused"], seen))
            expect(r["errors"].get("BUSY", 0) == fake.refused.get("BUSY", 0),
                   "sign-rrset: BUSY %r vs %r" % (r["errors"], fake.refused))
            expect(r["hsm_signatures"] == r["ok"], "sign-rrset: signatures %r != ok %d"
                   % (r["hsm_signatures"], r["ok"]))
            expect(fake.reorders > 0, "the fake never answered out of order")
            expect(0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
                   <= r["latency_ms"]["p999"] <= r["latency_ms"]["max"], "latency order")
            expect(r["failed_clients"] == 0, "sign-rrset: failed clients: %s" % r["first_error"])
            print("ok sign-rrset: %d ok, %d BUSY, %.0f ops/s against the fake"
                  % (r["ok"], r["refused"], r["ops_per_s"]))
            summary["sign_rrset"] = r

            # Issue: device ids, CSRs that OpenSSL verifies, two signatures each.
            base = fake.signatures
            r = run_bench(prog, sock, "--op", "issue", "--clients", "2", "--window", "8",
                          "--seconds", "0.5", "--pool", "4")
            expect(r["ok"] == fake.counts.get("ISSUE", 0), "issue: ok %d != %d answered"
                   % (r["ok"], fake.counts.get("ISSUE", 0)))
            expect(r["hsm_signatures"] == 2 * r["ok"] == fake.signatures - base,
                   "issue: signatures %r" % r["hsm_signatures"])
            expect(len(fake.csrs) == 4, "issue: %d distinct CSRs, pool was 4" % len(fake.csrs))
            expect(all(csr_parses(c) for c in fake.csrs), "issue: a CSR does not verify")
            print("ok issue: %d ok, CSRs verify, %.2f signatures/op"
                  % (r["ok"], r["signatures_per_op"]))
            summary["issue"] = r

            # Revoke, open loop: prepared untimed, then revoked at a rate.
            issues_before = fake.counts.get("ISSUE", 0)
            r = run_bench(prog, sock, "--op", "revoke", "--clients", "2", "--rate", "200",
                          "--seconds", "0.5", "--prepare", "150")
            expect(fake.counts.get("ISSUE", 0) - issues_before == 150 == r["prepared"],
                   "revoke: prepared %r" % r["prepared"])
            expect(r["hsm_signatures"] == 2 * r["ok"], "revoke: signatures exclude preparation")
            expect(90 <= r["ok"] <= 110, "revoke: %d at 200/s for 0.5 s" % r["ok"])
            expect(r["refused"] == 0, "revoke: refused %r" % r["errors"])
            print("ok revoke: %d prepared, %d revoked at 200/s, p99 %.3f ms"
                  % (r["prepared"], r["ok"], r["latency_ms"]["p99"]))
            summary["revoke"] = r

            # Revoke, closed loop, more than prepared: runs out, says so.
            r = run_bench(prog, sock, "--op", "revoke", "--clients", "2", "--seconds", "2",
                          "--prepare", "40")
            expect(r["ok"] == 40 and r["exhausted_clients"] == 2, "revoke: exhaustion %r" % r)
            print("ok revoke: pool of 40 exhausted and reported")

            # Fewer certificates than clients: the idle clients prepare none.
            r = run_bench(prog, sock, "--op", "revoke", "--clients", "4", "--seconds", "0.5",
                          "--prepare", "2")
            expect(r["prepared"] == 2 and r["ok"] == 2 and r["exhausted_clients"] == 4,
                   "revoke: --prepare 2 with 4 clients: %r" % r)
            print("ok revoke: fewer certificates than clients")
            expect(not fake.bad, "request fields: %s" % fake.bad)
        finally:
            fake.stop()
    if out:
        with open(out, "w") as f:
            json.dump({"status": "ok", "cases": summary}, f, indent=1)
    print("loadgen check passed")


if __name__ == "__main__":
    main()
