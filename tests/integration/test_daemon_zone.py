#!/usr/bin/env python3
"""regsignd's registry zone end to end, on a fresh SoftHSM token (one dev-setup
for the whole program): the DNS listener answers with what ISSUE, REVOKE,
REISSUE, PUBLISH and UNPUBLISH change (kdig against the daemon's own
listener), SIGN_RRSET makes RRSIGs that ldns and BIND verify, the zone file
and the AXFR pass ldns-verify-zone and dnssec-verify after a sequence of
changes, transfers need the TSIG key, NOTIFY reaches the configured
secondary, ZONE_STATUS and STATUS report the zone, and after kill -9 the
restarted daemon serves the same serial and byte-identical signatures without
making a single new HSM signature."""

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (DEVICE, ZONE, Daemon, check, expect_refusal, last_denial,  # noqa: E402
                        main, make_csr, need_tool, run)

STATE = {}
TSIG_NAME = "xfr-key."
TSIG_SECRET = base64.b64encode(bytes(range(32))).decode()


# ---- DNS helpers ----

def kdig(d, *args, tsig=True):
    """kdig against the daemon's listener; returns stdout (fails on a tool error)."""
    port = STATE["port"]
    cmd = [need_tool("kdig"), "@127.0.0.1", "-p", str(port), "+nocomments",
           "+nostats", "+noquestion"]
    if tsig:
        cmd += ["-y", "hmac-sha256:%s:%s" % (TSIG_NAME, TSIG_SECRET)]
    p = run(cmd + list(args))
    check(p.returncode == 0, "kdig %s failed: %s%s" % (" ".join(args), p.stdout, p.stderr))
    return p.stdout


def kdig_status(d, name, rtype):
    """(rcode text, answer lines) of a query with DO."""
    p = run([need_tool("kdig"), "@127.0.0.1", "-p", str(STATE["port"]), "+dnssec",
             name, rtype])
    check(p.returncode == 0, "kdig %s %s failed: %s" % (name, rtype, p.stderr))
    status = None
    for line in p.stdout.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].replace(";", ",").split(",")[0].strip()
    rrs = [line.split() for line in p.stdout.splitlines()
           if line and not line.startswith(";")]
    return status, rrs


def rr_lines(text):
    """The RR lines of a zone text or kdig output, whitespace-normalised."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(";"):
            out.append(" ".join(line.split()))
    return out


def axfr(d):
    """The zone by AXFR, without the transfer's TSIG RR (new MAC and time each time)."""
    text = kdig(d, "AXFR", ZONE + ".")
    lines = [l for l in rr_lines(text) if l.split()[3] != "TSIG"]
    check(len(lines) > 4 and " SOA " in lines[0], "AXFR returns the zone:\n%s" % text)
    return lines


def soa_serial(d):
    for f in (l.split() for l in rr_lines(kdig(d, ZONE + ".", "SOA", tsig=False))):
        if len(f) >= 7 and f[3] == "SOA":
            return int(f[6])
    raise AssertionError("no SOA in the answer")


def canonical_key(name):
    """RFC 4034 6.1 canonical order: labels from the root, lowercase, bytewise."""
    labels = [l for l in name.lower().rstrip(".").split(".") if l]
    return [l.encode() for l in reversed(labels)]


def name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rr_wire(owner, rtype, ttl, rdata):
    return name_wire(owner) + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def verify_zone_file(path, what):
    p = run([need_tool("ldns-verify-zone"), path])
    check(p.returncode == 0, "ldns-verify-zone on %s:\n%s%s" % (what, p.stdout, p.stderr))
    p = run([need_tool("dnssec-verify"), "-o", ZONE + ".", path])
    check(p.returncode == 0, "dnssec-verify on %s:\n%s%s" % (what, p.stdout, p.stderr))


def hsm_signatures(d):
    return {k["role"]: k["signatures"] for k in d.status()["keys"]}


# ---- the secondary that receives NOTIFY ----

def notify_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    return s


def wait_notify(sock, timeout=20):
    """The next NOTIFY (opcode 4) received: (qname, has TSIG)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            data, _ = sock.recvfrom(4096)
        except socket.timeout:
            continue
        if len(data) < 12 or (data[2] >> 3) & 0xF != 4:
            continue
        pos, labels = 12, []
        while data[pos]:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
            pos += 1 + data[pos]
        arcount = struct.unpack("!H", data[10:12])[0]
        return ".".join(labels).lower() + ".", arcount >= 1
    raise AssertionError("no NOTIFY within %ds" % timeout)


def drain(sock):
    while True:
        try:
            sock.recvfrom(4096)
        except socket.timeout:
            return


# ---- tests ----

def t_start(d):
    """The zone is served at start with NS and glue from the configuration."""
    d.start()
    zs = d.zone_status()
    STATE["port"] = zs["listen"][0]["port"]
    check(zs["listen"][0]["address"] == "127.0.0.1" and STATE["port"] > 0,
          "ZONE_STATUS names the listener: %r" % zs["listen"])
    end = time.time() + 30
    while d.zone_status()["serial"] == 0 and time.time() < end:
        time.sleep(0.05)
    check(soa_serial(d) == d.zone_status()["serial"] > 0, "the SOA served is the status serial")
    ns = rr_lines(kdig(d, ZONE + ".", "NS", tsig=False))
    check(any(l.endswith("NS ns1.iotregistry.test.") for l in ns), "NS is ns1: %r" % ns)
    a = rr_lines(kdig(d, "ns1." + ZONE + ".", "A", tsig=False))
    check(any(l.endswith("A 127.0.0.1") for l in a), "the glue A 127.0.0.1 is in the zone: %r" % a)


def t_zone_status_fields(d):
    p = run([d.regsign, "-s", d.sock, "zone-status", "--json"])
    check(p.returncode == 0, "regsign zone-status --json: %s" % p.stderr)
    zs = json.loads(p.stdout)
    check(zs["zone"] == ZONE + ".", "zone name: %r" % zs.get("zone"))
    check(zs["serial"] == soa_serial(d), "serial")
    check(zs["zone_file"]["path"] == os.path.join(d.dir, "state", "zone.db"), "zone file path")
    check(zs["listen"][0]["port"] == STATE["port"], "listener port")
    check(zs["names"] >= 2 and zs["records"] >= 10, "names and record count: %r" % zs)
    check(zs["earliest_expiration"] > time.time() + 3600, "earliest signature expiry")
    check(zs["failures"] == [] and zs["health"] == "ok", "no failures: %r" % zs["failures"])
    st = d.status()
    check(st["zone"]["serial"] == zs["serial"] and st["zone"]["health"] == "ok",
          "STATUS carries the zone: %r" % st["zone"])
    check(st["health"] == "ok", "STATUS health ok")


def t_issue_served(d):
    csr, _ = make_csr(d.base)
    with d.client() as c:
        r = c.issue(DEVICE, 1, "", csr)
    owner = "1.%s.%s." % (DEVICE.lower(), ZONE)
    check(r["zone_serial"] == soa_serial(d), "ISSUE's zone serial is the one served")
    status, rrs = kdig_status(d, owner, "CERT")
    check(status == "NOERROR", "the device name exists: %s" % status)
    want = base64.b64encode(hashlib.sha256(r["cert_der"]).digest()).decode()
    certs = [f for f in rrs if len(f) > 3 and f[3] == "CERT"]
    check(len(certs) == 1 and certs[0][4:7] == ["1", "0", "0"] and certs[0][7] == want,
          "CERT 1 0 0 <SHA-256 of the certificate>: %r (want %s)" % (certs, want))
    sigs = [f for f in rrs if len(f) > 4 and f[3] == "RRSIG" and f[4] == "CERT"]
    check(len(sigs) == 1, "the CERT RRset is signed: %r" % rrs)
    STATE["serial_issue"] = r["zone_serial"]
    res = [x for x in d.audit_records() if x["type"] == "result" and x["op"] == "issue" and
           x.get("device") == DEVICE.lower()]
    check(res and res[-1].get("zone_serial") == r["zone_serial"] and res[-1]["error"] == 0,
          "the audit RESULT names the zone serial that holds the record: %r" % res[-1:])


def t_issue_repeat_same_serial(d):
    csr, _ = make_csr(d.base)
    with d.client() as c:
        r1 = c.issue("89122302000310100090", 1, "", csr)
        r2 = c.issue("89122302000310100090", 1, "", csr)
    check(r1["cert_der"] == r2["cert_der"] and r2["zone_serial"] == r1["zone_serial"],
          "a repeated ISSUE changes nothing and answers with the serial")


def covering_nsec(lines, name):
    """The NSEC RR of the AXFR whose owner < name < next (canonical order)."""
    k = canonical_key(name)
    nsecs = [l.split() for l in lines if l.split()[3] == "NSEC"]
    for f in nsecs:
        owner, nxt = canonical_key(f[0]), canonical_key(f[4])
        if owner < k and (k < nxt or nxt <= owner):
            return f
    return None


def t_revoke_nxdomain(d):
    owner = "1.%s.%s." % (DEVICE.lower(), ZONE)
    before = soa_serial(d)
    with d.client() as c:
        r = c.revoke(DEVICE, index=1, reason="keyCompromise")
    check(r["zone_serial"] > before and r["zone_serial"] == soa_serial(d),
          "REVOKE returns the new serial that is served")
    res = [x for x in d.audit_records() if x["type"] == "result" and x["op"] == "revoke"]
    check(res and res[-1].get("zone_serial") == r["zone_serial"],
          "the revocation's RESULT names its zone serial: %r" % res[-1:])
    status, _ = kdig_status(d, owner, "CERT")
    check(status == "NXDOMAIN", "the revoked name is NXDOMAIN: %s" % status)
    # IXFR from the serial before: the journal's diff removes the CERT.
    ixfr = [l.split() for l in rr_lines(kdig(d, "IXFR=%d" % before, ZONE + "."))
            if l.split()[3] != "TSIG"]
    soas = [int(f[6]) for f in ixfr if f[3] == "SOA"]
    check(soas[0] == r["zone_serial"] and before in soas and len(soas) >= 4,
          "an incremental transfer from %d: SOA serials %r" % (before, soas))
    check(any(f[0] == owner and f[3] == "CERT" for f in ixfr),
          "the IXFR carries the removed CERT of %s" % owner)
    lines = axfr(d)
    f = covering_nsec(lines, owner)
    check(f is not None, "an NSEC of the zone covers %s" % owner)
    check(any(l.split()[0] == f[0] and l.split()[3] == "RRSIG" and l.split()[4] == "NSEC"
              for l in lines), "that NSEC is signed")
    status, rrs = kdig_status(d, f[0], "NSEC")
    check(status == "NOERROR" and any(x[3] == "NSEC" and x[4] == f[4] for x in rrs if len(x) > 4)
          and any(x[3] == "RRSIG" and x[4] == "NSEC" for x in rrs if len(x) > 4),
          "the listener serves the covering NSEC with its RRSIG: %r" % rrs)


def t_reissue_one_serial(d):
    dev = "89122302000310100091"
    csr1, _ = make_csr(d.base)
    csr2, _ = make_csr(d.base)
    with d.client() as c:
        r1 = c.issue(dev, 1, "", csr1)
        r2 = c.reissue(dev, 1, "", csr2)
    check(r2["index"] == 2 and r2["zone_serial"] == r1["zone_serial"] + 1,
          "REISSUE: new index 2, the old name out and the new in one serial (%d -> %d)" %
          (r1["zone_serial"], r2["zone_serial"]))
    st1, _ = kdig_status(d, "1.%s.%s." % (dev, ZONE), "CERT")
    st2, rrs = kdig_status(d, "2.%s.%s." % (dev, ZONE), "CERT")
    want = base64.b64encode(hashlib.sha256(r2["cert_der"]).digest()).decode()
    check(st1 == "NXDOMAIN" and st2 == "NOERROR", "old index gone, new one served")
    check(any(len(f) > 7 and f[3] == "CERT" and f[7] == want for f in rrs),
          "the new record is the new certificate's hash")


def t_pipelined_group_commit(d):
    """Requests that arrive together share serials (group commit) and each
    reply's serial holds its record."""
    n = 40
    csrs = [make_csr(d.base)[0] for _ in range(n)]
    before = soa_serial(d)
    with d.client() as c:
        ids = {c.send("ISSUE", device_id="8912230200031011%04x" % i, index=1, profile="",
                      csr_der=csrs[i]): i for i in range(n)}
        serials = {}
        while len(serials) < n:
            rep = c.recv()
            check(rep.ok, "pipelined ISSUE failed: %r" % (rep.fields,))
            serials[ids[rep.id]] = rep.fields["zone_serial"]
    last = soa_serial(d)
    check(all(before < v <= last for v in serials.values()), "serials in range")
    check(last - before < n, "%d requests share serials: %d new serials" % (n, last - before))
    lines = axfr(d)
    for i in range(n):
        owner = "1.8912230200031011%04x.%s." % (i, ZONE)
        check(any(l.split()[0] == owner and l.split()[3] == "CERT" for l in lines),
              "%s is published" % owner)


def t_publish_refusals(d):
    with d.client() as c:
        since = len(d.audit_records())
        e = expect_refusal(lambda: c.publish("1.%s" % DEVICE.lower(), "TXT", 0, '"x"'),
                           "DENIED", "PUBLISH in the device namespace")
        check("device namespace" in e.message, "says why: %s" % e.message)
        expect_refusal(lambda: c.publish("x.%s" % "8912230200031010009f", "TXT", 0, '"x"'),
                       "DENIED", "PUBLISH under an unissued device id")
        for t, rdata in (("CNAME", "x.example."), ("NS", "ns.example."), ("DNSKEY",
                         "256 3 13 " + "A" * 88), ("CERT", "1 0 0 AAAA"), ("SOA",
                         "a. b. 1 2 3 4 5"), ("DS", "1 13 2 " + "00" * 32)):
            expect_refusal(lambda: c.publish("www._asp", t, 0, rdata), "DENIED",
                           "PUBLISH of type %s" % t)
        expect_refusal(lambda: c.publish("www.example.org.", "TXT", 0, '"x"'), "DENIED",
                       "PUBLISH outside the caller's subtrees")
        expect_refusal(lambda: c.publish("foo", "TXT", 0, '"x"'), "DENIED",
                       "PUBLISH in the zone but outside the caller's subtrees")
        expect_refusal(lambda: c.publish("*._asp", "TXT", 0, '"x"'), "DENIED",
                       "PUBLISH of a wildcard")
        expect_refusal(lambda: c.publish("www._asp", "A", 0, "not-an-address"), "BAD_REQUEST",
                       "PUBLISH with RDATA that does not parse")
        expect_refusal(lambda: c.publish("www._asp", "TXT", 0, '"unterminated'),
                       "BAD_REQUEST", "PUBLISH of an unterminated string")
        expect_refusal(lambda: c.publish("www._asp", "A", 0, "192.0.2.1\n* A 192.0.2.2"),
                       "BAD_REQUEST", "PUBLISH with a second line in the RDATA")
        expect_refusal(lambda: c.unpublish("nothing._asp", "TXT"), "NOT_FOUND",
                       "UNPUBLISH of an absent RRset")
    den = last_denial(d, op="unpublish", since=since)
    check(den["decision"] == "deny", "refusals are audited")
    status, _ = kdig_status(d, "1.%s.%s." % (DEVICE.lower(), ZONE), "TXT")
    check(status == "NXDOMAIN", "nothing was published in the device namespace")


def t_publish_unpublish(d):
    name = "_443._tcp.www._asp.%s." % ZONE
    tlsa = "3 1 1 " + "ab" * 32
    with d.client() as c:
        s1 = c.publish("_443._tcp.www._asp", "TLSA", 600, tlsa)
        check(s1 == soa_serial(d), "PUBLISH returns the served serial")
        s2 = c.publish(name, "TLSA", 600, tlsa)
        check(s2 == s1, "publishing the same RR again changes nothing")
        s3 = c.publish("_asp", "TXT", 0, '"hello world"')
        check(s3 == s1 + 1, "another record, next serial")
    status, rrs = kdig_status(d, name, "TLSA")
    check(status == "NOERROR" and any(f[3] == "TLSA" and f[1] == "600" for f in rrs) and
          any(f[3] == "RRSIG" and f[4] == "TLSA" for f in rrs if len(f) > 4),
          "the TLSA is served, signed, with its TTL: %r" % rrs)
    with d.client() as c:
        s4 = c.unpublish(name, "TLSA", tlsa)
        check(s4 == s3 + 1, "UNPUBLISH makes a new serial")
        expect_refusal(lambda: c.unpublish(name, "TLSA", tlsa), "NOT_FOUND",
                       "UNPUBLISH of what is gone")
        expect_refusal(lambda: c.call("UNPUBLISH", owner="_asp", rrtype="TXT", ttl=5,
                                      rdata=""), "BAD_REQUEST", "UNPUBLISH with a TTL")
    status, _ = kdig_status(d, name, "TLSA")
    check(status == "NXDOMAIN", "the TLSA name is gone: %s" % status)
    recs = [r for r in d.audit_records() if r.get("op") == "publish" and r["type"] == "result"]
    check(len(recs) == 3 and [r.get("zone_serial") for r in recs] == [s1, None, s3],
          "PUBLISH's RESULT records, with the serial of each change (none for the repeat): "
          "%r" % recs)


def t_cli_commands(d):
    """The regsign CLI's zone commands against the daemon."""
    def cli(*args):
        p = run([d.regsign, "-s", d.sock] + list(args))
        check(p.returncode == 0, "regsign %s: %s" % (" ".join(args), p.stderr))
        return p.stdout

    def serial_of(out):
        return int([l for l in out.splitlines() if l.startswith("zone-serial:")][0].split()[1])

    s1 = serial_of(cli("publish", "--owner", "cli._asp", "--type", "TXT", "--ttl", "120",
                       "--rdata", '"from the cli"'))
    status, rrs = kdig_status(d, "cli._asp.%s." % ZONE, "TXT")
    check(status == "NOERROR" and any(f[3] == "TXT" and f[1] == "120" for f in rrs),
          "regsign publish: the TXT is served: %r" % rrs)
    s2 = serial_of(cli("unpublish", "--owner", "cli._asp", "--type", "TXT"))
    check(s2 == s1 + 1, "regsign unpublish makes the next serial")
    csr, _ = make_csr(d.base)
    path = os.path.join(d.base, "cli.csr")
    with open(path, "wb") as f:
        f.write(csr)
    out = cli("issue", "--device", "89122302000310100093", "--csr", path)
    s3 = serial_of(out)
    check(s3 == soa_serial(d), "regsign issue prints the served serial")
    csr2, _ = make_csr(d.base)
    with open(path, "wb") as f:
        f.write(csr2)
    s4 = serial_of(cli("reissue", "--device", "89122302000310100093", "--old-index", "1",
                       "--csr", path))
    check(s4 == s3 + 1, "regsign reissue: one new serial")
    s5 = serial_of(cli("revoke", "--device", "89122302000310100093", "--index", "2",
                       "--reason", "cessationOfOperation"))
    check(s5 == s4 + 1 and kdig_status(d, "2.89122302000310100093.%s." % ZONE, "CERT")[0] ==
          "NXDOMAIN", "regsign revoke removes the name")
    text = cli("zone-status")
    check('"health": "ok"' in text or '"health":"ok"' in text, "regsign zone-status: %s" % text)


def asp_keys(d):
    with open(os.path.join(d.out, "dnskey-asp.test.txt")) as f:
        return [" ".join(l.split()) for l in f.read().splitlines() if "DNSKEY" in l]


def sign_text(d, rrset_text, inception, expiration):
    path = os.path.join(d.base, "rrset.txt")
    with open(path, "w") as f:
        f.write(rrset_text + "\n")
    p = run([d.regsign, "-s", d.sock, "sign-rrset", "--zone", "asp.test.", "--rrset", path,
             "--inception", str(inception), "--expiration", str(expiration)])
    check(p.returncode == 0, "sign-rrset of %r: %s" % (rrset_text, p.stderr))
    return p.stdout.strip()


def t_sign_rrset(d):
    now = int(time.time())
    inc, exp = now - 3600, now + 86400
    keys = asp_keys(d)
    check(len(keys) == 2, "the ceremony wrote asp.test.'s two DNSKEYs")
    before = hsm_signatures(d)
    rrsets = ["\n".join(keys),
              "asp.test. 3600 IN SOA ns.asp.test. hostmaster.asp.test. 1 3600 900 86400 300",
              "asp.test. 300 IN NSEC www.asp.test. SOA RRSIG NSEC DNSKEY",
              "www.asp.test. 300 IN NSEC asp.test. A RRSIG NSEC",
              "www.asp.test. 3600 IN A 192.0.2.1\nwww.asp.test. 3600 IN A 192.0.2.2"]
    zone = []
    for text in rrsets:
        sig = sign_text(d, text, inc, exp)
        check(sig.count("RRSIG") == 1, "one RRSIG per RRset: %r" % sig)
        zone += [text, sig]
    dnskey_sig = zone[1].split()
    ksk_tag = [k for k in keys if " 257 " in k]
    check(dnskey_sig[4] == "DNSKEY", "the DNSKEY RRset got an RRSIG over DNSKEY")
    path = os.path.join(d.base, "asp.test.zone")
    with open(path, "w") as f:
        f.write("\n".join(zone) + "\n")
    anchor = os.path.join(d.base, "asp.test.key")
    with open(anchor, "w") as f:
        f.write(ksk_tag[0] + "\n")
    p = run([need_tool("ldns-verify-zone"), "-k", anchor, path])
    check(p.returncode == 0, "ldns-verify-zone on the signed tiny zone:\n%s%s" %
          (p.stdout, p.stderr))
    p = run([need_tool("dnssec-verify"), "-o", "asp.test.", path])
    check(p.returncode == 0, "dnssec-verify on the signed tiny zone:\n%s%s" %
          (p.stdout, p.stderr))
    after = hsm_signatures(d)
    check(after.get("asp.test./ksk", 0) - before.get("asp.test./ksk", 0) == 1 and
          after.get("asp.test./zsk", 0) - before.get("asp.test./zsk", 0) == 4,
          "the extra zone's KSK signed the DNSKEY RRset, its ZSK the rest: %r" % after)
    # A tampered copy must fail, or the check above proves nothing.
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("192.0.2.2", "192.0.2.3"))
    p = run([need_tool("ldns-verify-zone"), "-k", anchor, path])
    check(p.returncode != 0, "ldns-verify-zone notices a changed A record")


def t_sign_rrset_refusals(d):
    now = int(time.time())
    a1 = rr_wire("www.asp.test.", 1, 3600, bytes([192, 0, 2, 1]))
    txt = rr_wire("www.asp.test.", 16, 3600, b"\x02hi")
    reg = rr_wire("www.%s." % ZONE, 1, 3600, bytes([192, 0, 2, 1]))
    with d.client() as c:
        expect_refusal(lambda: c.sign_rrset(ZONE + ".", reg, now, now + 3600), "DENIED",
                       "SIGN_RRSET for the registry zone")
        expect_refusal(lambda: c.sign_rrset("asp.test.", a1, now, now + 90 * 86400), "DENIED",
                       "SIGN_RRSET beyond the policy's validity")
        expect_refusal(lambda: c.sign_rrset("asp.test.", a1 + txt, now, now + 3600),
                       "BAD_REQUEST", "SIGN_RRSET of two types")
        expect_refusal(lambda: c.sign_rrset("asp.test.", a1 + a1, now, now + 3600),
                       "BAD_REQUEST", "SIGN_RRSET with a duplicate RR")
        expect_refusal(lambda: c.sign_rrset("other.test.", a1, now, now + 3600), "DENIED",
                       "SIGN_RRSET for a zone the policy does not list")
        expect_refusal(lambda: c.sign_rrset("asp.test.", a1[:-2], now, now + 3600),
                       "BAD_REQUEST", "SIGN_RRSET of a truncated RR")


def t_notify_and_tsig(d):
    sock = STATE["notify"]
    drain(sock)
    csr, _ = make_csr(d.base)
    with d.client() as c:
        c.issue("89122302000310100092", 1, "", csr)
    qname, signed = wait_notify(sock)
    check(qname == ZONE + ".", "NOTIFY for the zone: %s" % qname)
    check(signed, "the NOTIFY carries the TSIG of its target's key")
    p = run([need_tool("kdig"), "@127.0.0.1", "-p", str(STATE["port"]), "AXFR", ZONE + "."])
    check("; Transfer failed" in p.stdout or "REFUSED" in p.stdout or p.returncode != 0,
          "an AXFR without the TSIG key is refused:\n%s" % p.stdout[-2000:])
    axfr(d)  # and with it, it works


def t_zone_file_and_axfr_verify(d):
    os.kill(d.proc.pid, signal.SIGUSR1)
    serial = soa_serial(d)
    end = time.time() + 30
    while d.zone_status()["zone_file"]["serial"] != serial and time.time() < end:
        time.sleep(0.05)
    check(d.zone_status()["zone_file"]["serial"] == serial, "SIGUSR1 writes the zone file")
    zf = os.path.join(d.dir, "state", "zone.db")
    verify_zone_file(zf, "the daemon's zone file")
    # BIND's zone checks include the NS glue Knot warned about before.
    p = run([need_tool("named-checkzone"), ZONE + ".", zf])
    check(p.returncode == 0 and "no address records" not in p.stdout + p.stderr,
          "named-checkzone finds the NS and its glue in order:\n%s%s" % (p.stdout, p.stderr))
    path = os.path.join(d.base, "axfr.zone")
    lines = axfr(d)
    with open(path, "w") as f:
        f.write("\n".join(lines[:-1]) + "\n")  # the SOA closes the AXFR: once is enough
    verify_zone_file(path, "the AXFR")
    # Both in ldns's canonical presentation, so that only the data is compared.
    canon = []
    for src in (zf, path):
        p = run([need_tool("ldns-read-zone"), "-c", src])
        check(p.returncode == 0, "ldns-read-zone %s: %s" % (src, p.stderr))
        canon.append(sorted(rr_lines(p.stdout)))
    check(canon[0] == canon[1], "the zone file holds exactly what AXFR serves")


def t_restart_same_zone(d):
    before = axfr(d)
    serial = soa_serial(d)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(30)
    # The HSM process notices its front is gone and exits by itself.
    d.start()
    STATE["port"] = d.zone_status()["listen"][0]["port"]
    check(soa_serial(d) == serial, "same serial after kill -9 and restart")
    after = axfr(d)
    check(after == before, "byte-identical zone and signatures after restart")
    sigs = hsm_signatures(d)
    check(sigs.get("ksk", -1) == 0 and sigs.get("zsk", -1) == 0,
          "the restart made no new DNSSEC signature: %r" % sigs)
    zs = d.zone_status()
    check(zs["health"] == "ok", "the reloaded zone is healthy: %r" % zs["failures"])


def t_start_refusals(d):
    """A configuration the zone cannot be served with stops the start, saying why."""
    d.stop()
    with open(d.config) as f:
        good = f.read()
    cases = (
        ("secret-file: %s" % os.path.join(d.dir, "xfr-key.b64"),
         "secret-file: %s" % os.path.join(d.dir, "missing.b64"), "TSIG key xfr-key."),
        ('      addresses: ["127.0.0.1"]\n', "", "needs its addresses"),
    )
    try:
        for old, new, needle in cases:
            check(old in good, "test bug: %r not in the config" % old)
            with open(d.config, "w") as f:
                f.write(good.replace(old, new, 1))
            mark = len(d.log_text(full=True))
            d.start(wait=False)
            code = d.wait_exit(60)
            log = d.log_text(full=True)[mark:]
            check(code == 1 and needle in log,
                  "regsignd refuses to start (%s): exit %s\n%s" % (needle, code, log[-3000:]))
            check(not os.path.exists(d.sock), "no signing socket without the zone")
    finally:
        with open(d.config, "w") as f:
            f.write(good)
    d.start()
    check(d.zone_status()["health"] == "ok", "starts again with the good configuration")


def setup(d):
    """TSIG for transfers and NOTIFY, and a NOTIFY target the test listens on."""
    key = os.path.join(d.dir, "xfr-key.b64")
    with open(key, "w") as f:
        f.write(TSIG_SECRET + "\n")
    sock = notify_listener()
    STATE["notify"] = sock
    d.edit(d.config, 'notify: []\n  allow-transfer: ["127.0.0.1"]\n',
           'tsig-keys:\n'
           '    - name: %s\n'
           '      algorithm: hmac-sha256\n'
           '      secret-file: %s\n'
           '  notify:\n'
           '    - { address: "127.0.0.1:%d", key: %s }\n'
           '  allow-transfer:\n'
           '    - { address: "127.0.0.1", key: %s }\n'
           % (TSIG_NAME, key, sock.getsockname()[1], TSIG_NAME, TSIG_NAME))


if __name__ == "__main__":
    for tool in ("kdig", "ldns-verify-zone", "ldns-read-zone", "dnssec-verify",
                 "named-checkzone"):
        need_tool(tool)
    daemon = Daemon("zone")
    setup(daemon)
    main([t_start, t_zone_status_fields, t_issue_served, t_issue_repeat_same_serial,
          t_revoke_nxdomain, t_reissue_one_serial, t_pipelined_group_commit,
          t_publish_refusals, t_publish_unpublish,
          t_sign_rrset, t_sign_rrset_refusals, t_cli_commands, t_notify_and_tsig,
          t_zone_file_and_axfr_verify, t_restart_same_zone, t_start_refusals], daemon)
