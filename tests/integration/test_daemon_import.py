"""IMPORT (bulk import of device records) through a real regsignd on SoftHSM.

Certificates to import must chain to the daemon's issuing CA. They are made
the way a migrating registry has them: a first daemon instance on the same
token issues them (ISSUE), then its state is set aside and a new instance
with an empty store, same keys and CA, imports them together with
hash-only records. Checked: chunked import with every kind of bad chunk
refused by name and the import completing after the resend; the zone
verifies (ldns-verify-zone) and every CERT holds the record's hash; REVOKE of
hash-only and certificate records; REISSUE at max index + 1; one INTENT and
one RESULT tying the import to its records; restart; a second import
refused; DENIED without the operation; abandoned imports discarded and
audited; the regsign CLI (file:line errors, serial on stdout).

With --memory N [N ...] it instead measures, for each N, a fresh daemon
importing N hash-only records through `regsign import`: wall time, CPU of
the CLI, and peak RSS (VmHWM) of the front and the HSM process, printed as
JSON lines (issue #5 target 4: at most 600 bytes per record, both processes).

With the argument --crl-hash-only it checks only that a revoked hash-only
record adds no CRL entry and that the REVOKE reply names no certificate
serial.
"""

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
from daemon_lib import (Daemon, RegsignError, check, expect_refusal, last_denial,  # noqa: E402
                        main, make_csr, need_tool, run, wait_for, ZONE)
import regsign_client as rc  # noqa: E402

STATE = {}
N_HASH = 1985          # hash-only records of the main import
N_CERT = 15            # records with the certificate (issued by instance 1)


def hash_dev(i):
    return "8a%018x" % i


def cert_dev(i):
    return "8c%018x" % i


def fake_hash(dev, idx):
    return hashlib.sha256(("cert of %s %d" % (dev, idx)).encode()).digest()


def rec(dev, idx, sha=b"", spki=b"", der=b""):
    return rc.encode_import_record(dev, idx, cert_sha256=sha, spki_sha256=spki, cert_der=der)


def audit_line(dev, idx, sha):
    return "%s %d %s\n" % (dev.lower(), idx, sha.hex())


def cli(d, *args, stdin=None):
    return run([d.regsign, "-s", d.sock] + list(args), input=stdin)


def serial_at_or_after(a, b):
    """True if zone serial a is b or later (RFC 1982 serial arithmetic)."""
    return (a - b) % (1 << 32) < (1 << 31)


def zone_file_lines(d):
    """Has the daemon write its zone file now (SIGUSR1) and returns its RR lines.

    The file wanted is one that holds the zone as served when asked: written
    at that serial or a later one. The serial may move on before the write
    (the file thread writes the serial committed when it starts), so an equal
    serial is not what to wait for."""
    zs = d.zone_status()
    serial, path = zs["serial"], zs["zone_file"]["path"]
    os.kill(d.proc.pid, signal.SIGUSR1)
    wait_for("SIGUSR1 wrote the zone file at serial %d or later" % serial,
             lambda: serial_at_or_after(d.zone_status()["zone_file"]["serial"], serial), 60)
    p = run([need_tool("ldns-verify-zone"), path])
    check(p.returncode == 0, "ldns-verify-zone on the imported zone:\n%s%s" %
          (p.stdout[-2000:], p.stderr[-2000:]))
    with open(path) as f:
        return [" ".join(l.split()) for l in f if l.strip() and not l.startswith(";")]


def cert_records(lines):
    """{owner: CERT rdata bytes} of the zone text."""
    out = {}
    for l in lines:
        f = l.split()
        if len(f) >= 8 and f[3] == "CERT":
            out[f[0].lower()] = base64.b64decode("".join(f[7:]))
    return out


def audit_since(d, n):
    return d.audit_records()[n:]


# ---- instance 1: certificates issued by the same CA ----

def t_issue_certs(d):
    csr, _ = make_csr(d.base)
    STATE["certs"] = {}
    with d.client() as c:
        for i in range(N_CERT + 2):
            r = c.issue(cert_dev(i), 1, "device", csr)
            STATE["certs"][cert_dev(i)] = r["cert_der"]
    check(len(STATE["certs"]) == N_CERT + 2, "instance 1 issued the certificates")


def t_cli_errors_named_by_line(d):
    path = os.path.join(d.base, "bad.txt")
    h = fake_hash("x", 1).hex()
    with open(path, "w") as f:
        f.write("# a comment\n\n8a0000000000000000aa 1 sha256:%s\n8a0000000000000000ab 1 sha1:00\n"
                % h)
    p = cli(d, "import", path)
    check(p.returncode == 4 and "%s:4:" % path in p.stderr,
          "a malformed line is a local error naming file:line: %d %s" % (p.returncode, p.stderr))
    with open(path, "w") as f:
        f.write("8a0000000000000000aa 1 sha256:%s\n# x\n8a00000000000000zzab 1 sha256:%s\n"
                % (h, h))
    p = cli(d, "import", path)
    check(p.returncode == 1 and "%s:3: BAD_REQUEST" % path in p.stderr and "hex digits" in p.stderr,
          "the daemon's refusal is named by file:line: %d %s" % (p.returncode, p.stderr))


def t_new_instance(d):
    d.fresh_state(os.path.join(d.base, "state-instance1"))
    d.start()
    # Ready means the socket answers; the first version of a fresh zone (the
    # apex with NS and glue from the configuration) is published just after.
    def apex_served():
        zs = d.zone_status()
        return zs if zs["serial"] >= 1 and zs["health"] == "ok" else None
    zs = wait_for("a fresh instance serves an apex-only zone", apex_served, 60)
    check(zs["names"] >= 1, "the fresh zone has its apex: %r" % zs["names"])


# ---- instance 2: the CLI imports a file ----

def t_cli_import(d):
    path = os.path.join(d.base, "import.txt")
    certdir = os.path.join(d.base, "certs")
    os.makedirs(certdir, exist_ok=True)
    lines = ["# migrated registry, %d records" % 205]
    for i in range(200):
        lines.append("%s %d sha256:%s" % (hash_dev(i).upper(), 1, fake_hash(hash_dev(i), 1).hex()))
    for i in range(5):
        dev = cert_dev(i)
        with open(os.path.join(certdir, dev + ".der"), "wb") as f:
            f.write(STATE["certs"][dev])
        lines.append("%s 1 cert:certs/%s.der   # relative to the file" % (dev, dev))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = cli(d, "import", path, "--chunk", "64", "--json")
    check(p.returncode == 0, "regsign import: %d %s" % (p.returncode, p.stderr))
    out = json.loads(p.stdout)
    check(out["records"] == 205 and out["zone_serial"] == d.zone_status()["serial"],
          "the CLI prints the records and the serial: %r" % out)
    check("records accepted" in p.stderr or "sent" in p.stderr, "progress on stderr")
    certs = cert_records(zone_file_lines(d))
    for i in range(200):
        owner = "1.%s.%s." % (hash_dev(i), ZONE)
        check(certs.get(owner) == fake_hash(hash_dev(i), 1), "CERT of %s" % owner)
    for i in range(5):
        owner = "1.%s.%s." % (cert_dev(i), ZONE)
        check(certs.get(owner) == hashlib.sha256(STATE["certs"][cert_dev(i)]).digest(),
              "CERT of %s is the certificate's hash" % owner)


def t_second_instance(d):
    d.fresh_state(os.path.join(d.base, "state-instance2"))
    d.start()


# ---- instance 3: the protocol, chunk by chunk ----

def t_denied_without_operation(d):
    with open(d.policy) as f:
        good = f.read()
    check("zone-status, import]" in good, "dev-setup.sh lets the frontend caller import")
    try:
        d.edit(d.policy, "zone-status, import]", "zone-status]")
        check(d.sighup_and_wait()["event"] == "reload", "policy without import loaded")
        with d.client() as c:
            expect_refusal(lambda: c.import_chunk(5, 1, rec(hash_dev(0), 1, fake_hash("a", 1))),
                           "DENIED", "IMPORT by a caller without the operation")
        check(last_denial(d, "import") is not None, "the denial is audited")
    finally:
        with open(d.policy, "w") as f:
            f.write(good)
        check(d.sighup_and_wait()["event"] == "reload", "policy with import back")


def main_records():
    """(records bytes, audit lines) of the main import: hash-only, then certificates."""
    recs, lines = [], []
    for i in range(N_HASH):
        idx = 2 if i % 10 == 9 else 1      # some devices get index 2 ...
        dev = hash_dev(i // 10 * 10 if idx == 2 else i)   # ... on a device that has 1
        sha = fake_hash(dev, idx)
        recs.append(rec(dev, idx, sha))
        lines.append(audit_line(dev, idx, sha))
    for i in range(N_CERT):
        der = STATE["certs"][cert_dev(i)]
        recs.append(rec(cert_dev(i), 1, der=der))
        lines.append(audit_line(cert_dev(i), 1, hashlib.sha256(der).digest()))
    return recs, lines


def t_import_with_bad_chunks(d):
    recs, lines = main_records()
    STATE["lines"] = lines
    first, second, last = recs[:1000], recs[1000:N_HASH], recs[N_HASH:]
    audit0 = len(d.audit_records())
    c = d.client(timeout=600)
    r = c.import_chunk(77, 1, b"".join(first), idle_timeout=120)
    check(r["records"] == 1000 and r["zone_serial"] == 0, "chunk 1 accepted: %r" % r)
    good = b"".join(second)
    wrong_ca = open(STATE["foreign"], "rb").read()
    raw31 = (struct.pack(">I", 20) + hash_dev(5000).encode() + struct.pack(">II", 1, 31) +
             b"\1" * 31 + struct.pack(">II", 0, 0))
    bad = [
        ("bad device id", recs[1000:1002] + [rec("8a00000000000000zz00", 1, fake_hash("z", 1))],
         "chunk 2 record 3", "hex digits"),
        ("index 0", [rec(hash_dev(5001), 0, fake_hash("z", 1))], "chunk 2 record 1", "index 0"),
        ("short id", [rec("8a01", 1, fake_hash("z", 1))], "record 1", "hex digits"),
        ("duplicate of chunk 1", [recs[5]], "record 1", "duplicates import record 6"),
        ("duplicate in the chunk", recs[1000:1003] + [recs[1001]], "record 4",
         "duplicates import record 1002"),
        ("hash of 31 bytes", [raw31], "record 1", "malformed record"),
        ("no hash, no certificate", [rec(hash_dev(5002), 1)], "record 1",
         "neither a certificate nor"),
        ("garbage certificate", [rec(hash_dev(5003), 1, der=b"\x30\x03\x02\x01\x01")],
         "record 1", "does not parse"),
        ("foreign CA", [rec(hash_dev(5004), 1, der=wrong_ca)], "record 1",
         "not issued by this registry"),
        ("certificate of another name", [rec(hash_dev(5005), 1, der=STATE["certs"][cert_dev(0)])],
         "record 1", "does not name"),
        ("hash not of the certificate", [rec(cert_dev(0), 1, sha=b"\2" * 32,
                                             der=STATE["certs"][cert_dev(0)])],
         "record 1", "not the SHA-256 of the certificate"),
    ]
    for what, chunk, where, why in bad:
        e = expect_refusal(lambda: c.import_chunk(77, 2, b"".join(chunk)), "BAD_REQUEST", what)
        check(where in e.message and why in e.message, "%s is named: %s" % (what, e.message))
    e = expect_refusal(lambda: c.import_chunk(77, 3, good), "CONFLICT", "chunk out of sequence")
    check("expected 2" in e.message, "out of sequence says what is expected: %s" % e.message)
    expect_refusal(lambda: c.import_chunk(78, 2, good), "CONFLICT", "another import id")
    with d.client() as other:
        e = expect_refusal(lambda: other.import_chunk(79, 1, rec(hash_dev(6000), 1, b"\3" * 32)),
                           "BUSY", "a second import while one is open")
        check("import 77" in e.message, "BUSY names the import in progress: %s" % e.message)
    # The refused chunks changed nothing: the same chunk 2 goes through now.
    r = c.import_chunk(77, 2, good)
    check(r["records"] == N_HASH, "chunk 2 accepted after the refusals: %r" % r)
    r = c.import_chunk(77, 3, b"".join(last), final=True)
    check(r["records"] == N_HASH + N_CERT and r["zone_serial"] > 0, "final chunk: %r" % r)
    STATE["serial"] = r["zone_serial"]
    zs = d.zone_status()
    check(zs["serial"] == r["zone_serial"], "the reply's serial is served")
    check(zs["names"] >= N_HASH + N_CERT, "ZONE_STATUS counts the imported names: %r" % zs["names"])
    recs_after = audit_since(d, audit0)
    intents = [x for x in recs_after if x.get("op") == "import" and x.get("type") == "request"
               and x.get("decision") == "allow"]
    results = [x for x in recs_after if x.get("op") == "import" and x.get("type") == "result"]
    check(len(intents) == 1 and len(results) == 1,
          "one INTENT and one RESULT for the import: %d %d" % (len(intents), len(results)))
    digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    check(intents[0]["inputs"][0]["sha256"] == digest, "the INTENT names the records' hash")
    res = results[0]
    check(res["error"] == 0 and res["zone_serial"] == r["zone_serial"] and digest in res["detail"]
          and ("%d devices" % (N_HASH + N_CERT)) in res["detail"],
          "the RESULT has count, serial and hash: %r" % res)
    denials = [x for x in recs_after if x.get("op") == "import" and x.get("decision") == "deny"]
    check(len(denials) >= len(bad), "each refused chunk is audited as a denial")
    c.close()


def t_zone_holds_the_hashes(d):
    certs = cert_records(zone_file_lines(d))
    recs, lines = main_records()
    for l in lines:
        dev, idx, sha = l.split()
        owner = "%s.%s.%s." % (idx, dev, ZONE)
        check(certs.get(owner) == bytes.fromhex(sha), "CERT rdata of %s is its hash" % owner)
    STATE["zone_lines"] = len(certs)


def t_revoke_imported(d):
    with d.client() as c:
        h = c.revoke(hash_dev(1), 1, reason="cessationOfOperation")
        check(h["zone_serial"] > STATE["serial"], "hash-only record revoked in a new serial")
        x = c.revoke(cert_dev(1), 1, reason="keyCompromise")
        crl = c.crl()
        again = c.revoke(hash_dev(1), 1, reason="cessationOfOperation")
        check(again["revoked_at"] == h["revoked_at"], "revoking again answers as the first time")
    der = STATE["certs"][cert_dev(1)]
    p = run("openssl x509 -inform DER -noout -serial", shell=True, input=der, text=False)
    serial = p.stdout.decode().strip().split("=")[1].lower().lstrip("0")
    check(x["serial_hex"] == serial, "REVOKE of a certificate record names its serial")
    crl_text = run("openssl crl -inform DER -noout -text", shell=True, input=crl,
                   text=False).stdout.decode()
    check(serial.upper() in crl_text.replace(":", "").upper(), "the CRL holds the certificate")
    certs = cert_records(zone_file_lines(d))
    check("1.%s.%s." % (hash_dev(1), ZONE) not in certs and
          "1.%s.%s." % (cert_dev(1), ZONE) not in certs, "both names left the zone")
    res = [x for x in d.audit_records() if x.get("op") == "revoke" and x.get("type") == "result"]
    check(any(x.get("device") == hash_dev(1) for x in res), "the hash-only revocation is audited")


def t_reissue_imported(d):
    csr, _ = make_csr(d.base)
    dev = hash_dev(10)       # imported at indexes 1 and 2
    with d.client() as c:
        r = c.reissue(dev, 1, "device", csr)
    check(r["index"] == 3, "REISSUE of an imported device takes max + 1: %r" % r["index"])
    certs = cert_records(zone_file_lines(d))
    check("3.%s.%s." % (dev, ZONE) in certs and "1.%s.%s." % (dev, ZONE) not in certs,
          "the reissued certificate replaced index 1")


def t_second_import_refused(d):
    with d.client() as c:
        e = expect_refusal(lambda: c.import_chunk(90, 1, rec(hash_dev(7000), 1, b"\4" * 32)),
                           "CONFLICT", "an import into a zone that holds devices")
    check("without devices" in e.message, "the first chunk says why: %s" % e.message)


def t_import_after_all_revoked(d):
    """A registry whose devices are all revoked takes an import again, but never
    an index used before; a zone holding devices is refused at the last chunk too."""
    d.fresh_state(os.path.join(d.base, "state-instance4"))
    d.start()
    csr, _ = make_csr(d.base)
    with d.client() as c:
        c.issue(hash_dev(1), 1, "device", csr)
        c.revoke(hash_dev(1), 1, reason="superseded")
        e = expect_refusal(lambda: c.import_chunk(91, 1, rec(hash_dev(1), 1, b"\4" * 32),
                                                  final=True),
                           "CONFLICT", "an import of an index used before")
        check("never reused" in e.message, "a used index is named: %s" % e.message)
        c.import_chunk(92, 1, rec(hash_dev(2), 1, b"\4" * 32))
        # Meanwhile a device is issued: the zone holds one when the last chunk comes.
        with d.client() as other:
            other.issue(hash_dev(3), 1, "device", csr)
        e = expect_refusal(lambda: c.import_chunk(92, 2, rec(hash_dev(4), 1, b"\5" * 32),
                                                  final=True),
                           "CONFLICT", "the last chunk into a zone that holds devices")
        check("without devices" in e.message, "the last chunk says why: %s" % e.message)


def wait_event(d, since, needle, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        for x in audit_since(d, since):
            if x.get("type") == "event" and x.get("event") == "import-abandoned" and \
                    needle in x.get("detail", ""):
                return x
        time.sleep(0.1)
    raise AssertionError("no import-abandoned event (%s)" % needle)


def t_abandoned(d):
    since = len(d.audit_records())
    c = d.client()
    c.import_chunk(100, 1, rec(hash_dev(8000), 1, b"\6" * 32))
    c.close()
    wait_event(d, since, "connection closed")
    with d.client() as c:
        c.import_chunk(101, 1, rec(hash_dev(8001), 1, b"\7" * 32), idle_timeout=1)
        wait_event(d, since, "no chunk for 1 seconds")
        e = expect_refusal(lambda: c.import_chunk(101, 2, rec(hash_dev(8002), 1, b"\7" * 32)),
                           "CONFLICT", "a chunk of a discarded import")
        check("expected 1" in e.message, "the discarded import is gone: %s" % e.message)
    with d.client() as c:   # nothing left open: a new import may start
        r = c.import_chunk(102, 1, rec(hash_dev(8003), 1, b"\7" * 32))
        check(r["records"] == 1, "a new import starts after the abandoned ones")


def t_restart_keeps_everything(d):
    serial = d.zone_status()["serial"]
    d.stop()
    d.start()
    zs = d.zone_status()
    check(zs["serial"] == serial, "same serial after restart")
    certs = cert_records(zone_file_lines(d))
    check(certs.get("1.%s.%s." % (hash_dev(2), ZONE)) == fake_hash(hash_dev(2), 1),
          "imported records are served after restart")
    with d.client() as c:
        r = c.revoke(hash_dev(3), 1, reason="superseded")
        check(r["zone_serial"] > serial, "an imported record revokes after restart")
        expect_refusal(lambda: c.revoke(hash_dev(99999), 1), "NOT_FOUND", "unknown device")


# ---- known bug: hash-only revocations must not reach the CRL ----

def t_crl_hash_only(d):
    with d.client() as c:
        c.import_chunk(1, 1, rec(hash_dev(1), 1, fake_hash(hash_dev(1), 1)), final=True)
        r = c.revoke(hash_dev(1), 1, reason="keyCompromise")
        crl = c.crl()
    text = run("openssl crl -inform DER -noout -text", shell=True, input=crl,
               text=False).stdout.decode()
    check("No Revoked Certificates" in text, "a hash-only revocation adds no CRL entry:\n%s" % text)
    check(r["serial_hex"] == "", "the REVOKE reply says there is no certificate serial")


def vm_hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for %d" % pid)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(d, n):
    """One fresh instance, n hash-only records through the CLI; returns the figures."""
    d.stop(timeout=900)
    d.fresh_state(os.path.join(d.base, "state-%d" % n))
    d.start()
    front, hsm = d.proc.pid, d.hsm_pid()
    before = (vm_hwm(front), vm_hwm(hsm))
    path = os.path.join(d.base, "mem-%d.txt" % n)
    with open(path, "w") as f:
        for i in range(n):
            dev = "8e%018x" % i
            f.write("%s 1 sha256:%s\n" % (dev, hashlib.sha256(dev.encode()).hexdigest()))
    c0 = (cpu_s(front), cpu_s(hsm))
    t0 = time.time()
    r0 = os.times()
    p = cli(d, "-t", "3600", "import", path, "--chunk", "3000", "--json")
    r1 = os.times()
    wall = time.time() - t0
    check(p.returncode == 0, "regsign import of %d: %s" % (n, p.stderr[-2000:]))
    out = json.loads(p.stdout)
    after = (vm_hwm(front), vm_hwm(hsm))
    c1 = (cpu_s(front), cpu_s(hsm))
    os.unlink(path)
    return {"records": n, "zone_serial": out["zone_serial"], "wall_s": round(wall, 1),
            "cli_cpu_s": round((r1.children_user - r0.children_user) +
                               (r1.children_system - r0.children_system), 2),
            "front_cpu_s": round(c1[0] - c0[0], 1), "hsm_cpu_s": round(c1[1] - c0[1], 1),
            "front_hwm_start": before[0], "hsm_hwm_start": before[1],
            "front_hwm": after[0], "hsm_hwm": after[1],
            "bytes_per_record": round((after[0] + after[1]) / n, 1)}


def memory_main(sizes):
    d = Daemon("import-mem")
    try:
        d.start()
        for n in sizes:
            print(json.dumps(measure(d, n)), flush=True)
        d.stop(timeout=900)   # the zone file of a big zone is written on the way down
    finally:
        d.cleanup()
    sys.exit(0)


def setup_foreign(d):
    """A self-signed certificate naming a would-be device: not from our CA."""
    key = os.path.join(d.base, "foreign.key")
    out = os.path.join(d.base, "foreign.der")
    name = "1.%s.%s" % (hash_dev(5004), ZONE)
    p = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-subj", "/CN=" + name, "-addext",
             "subjectAltName=DNS:" + name, "-days", "30", "-outform", "DER", "-out", out])
    check(p.returncode == 0, "openssl req -x509: %s" % p.stderr)
    STATE["foreign"] = out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        memory_main([int(x) for x in sys.argv[2:]] or [100000])
    for tool in ("ldns-verify-zone", "openssl"):
        need_tool(tool)
    daemon = Daemon("import")
    if sys.argv[1:] == ["--crl-hash-only"]:
        daemon.start()
        main([t_crl_hash_only], daemon)
    daemon.start()
    setup_foreign(daemon)
    main([t_issue_certs, t_new_instance, t_cli_errors_named_by_line, t_cli_import,
          t_second_instance, t_denied_without_operation, t_abandoned,
          t_import_with_bad_chunks, t_zone_holds_the_hashes, t_revoke_imported,
          t_reissue_imported, t_second_import_refused, t_restart_keeps_everything,
          t_import_after_all_revoked], daemon)
