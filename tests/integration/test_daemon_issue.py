#!/usr/bin/env python3
"""regsignd end to end: issuing, idempotency, revocation, CRL, chain, status and
the audit log, on a fresh SoftHSM token (one dev-setup for the whole program)."""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (DEVICE, ZONE, Daemon, RegsignError, check, der_to_pem,  # noqa: E402
                        expect_refusal, main, make_csr, need_tool, run)

STATE = {}


def t_start_checks(d):
    d.start()
    recs = d.audit_records()
    check(recs[0]["type"] == "event" and recs[0]["event"] == "start",
          "first audit record is the start event: %r" % recs[0])
    check(any(r["type"] == "checkpoint" for r in recs), "a checkpoint is written at start")
    import stat
    mode = stat.S_IMODE(os.stat(d.sock).st_mode)
    check(mode == 0o660, "the socket has mode 0660 (got %o)" % mode)
    st = d.status()
    check(st["hsm"]["state"] == "up", "HSM state up in STATUS: %r" % st["hsm"])
    roles = {k["role"]: k for k in st["keys"]}
    for role in ("issuing-ca", "ksk", "zsk", "audit"):
        check(role in roles and len(roles[role]["fingerprint"]) == 64,
              "STATUS lists key %s with a fingerprint" % role)
    check(len(st["audit"]["head"]) == 64, "STATUS carries the audit head")
    check(st["version"].startswith("regsignd"), "STATUS has the version")
    check(isinstance(st["uptime"], int), "STATUS has the uptime")
    # The issuing CA key's fingerprint is that of the certificate's SPKI.
    p = run(["openssl", "x509", "-in", os.path.join(d.out, "issuing-ca.pem"), "-noout",
             "-pubkey"])
    spki = run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=p.stdout.encode(),
               text=False).stdout
    import hashlib
    check(roles["issuing-ca"]["fingerprint"] == hashlib.sha256(spki).hexdigest(),
          "issuing-ca fingerprint equals SHA-256 of the certificate's SPKI")
    with d.client() as c:
        h = c.hello()
        check(h["version"] == 1 and h["max_frame"] == 262144, "HELLO reply: %r" % h)


def t_issue_verifies(d):
    csr, _ = make_csr(d.base)
    STATE["csr"] = csr
    with d.client() as c:
        r = c.issue(DEVICE, 0, "device", csr)
    check(r["index"] == 1, "index 0 means 1: %r" % r["index"])
    # The HSM process signed with a session copy of the key (hsm.key-copies
    # defaults on; SoftHSM makes them), and the token refused none.
    hsm = d.status()["hsm"]
    check(hsm["key_copies"] >= 1 and hsm["key_copies_refused"] == 0,
          "STATUS shows the session copies in use: %r" % hsm)
    # hsm.sign-ahead (default true) prepared the operations before the first
    # request: this issuance's signatures found theirs initialised.
    check(hsm.get("sign_prepared", 0) >= 1,
          "STATUS shows signatures made on prepared operations: %r" % hsm)
    STATE["cert"] = r["cert_der"]
    STATE["serial"] = r["serial_hex"]
    check(len(r["chain"]) == 2, "chain has the issuing CA and the root")
    work = d.base
    leaf = os.path.join(work, "leaf.pem")
    with open(leaf, "w") as f:
        f.write(der_to_pem(r["cert_der"]))
    with open(os.path.join(work, "chain-issuing.pem"), "w") as f:
        f.write(der_to_pem(r["chain"][0]))
    with open(os.path.join(work, "chain-root.pem"), "w") as f:
        f.write(der_to_pem(r["chain"][1]))
    root = os.path.join(d.out, "root-ca.pem")
    issuing = os.path.join(d.out, "issuing-ca.pem")
    p = run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", root,
             "-untrusted", issuing, leaf])
    check(p.returncode == 0 and "OK" in p.stdout, "openssl verify -x509_strict: %s%s" %
          (p.stdout, p.stderr))
    need_tool("certtool")
    bundle = os.path.join(work, "bundle.pem")
    with open(bundle, "w") as f:
        f.write(der_to_pem(r["cert_der"]) + der_to_pem(r["chain"][0]) +
                der_to_pem(r["chain"][1]))
    p = run(["certtool", "--verify-chain", "--infile", bundle])
    check(p.returncode == 0 and "Chain verification output: Verified" in p.stdout,
          "certtool --verify-chain: %s%s" % (p.stdout[-1500:], p.stderr))
    p = run(["certtool", "--verify", "--load-ca-certificate", root, "--infile", bundle])
    check(p.returncode == 0, "certtool --verify against the root: %s%s" % (p.stdout[-800:],
                                                                           p.stderr))


def t_issue_profile_exact(d):
    """Subject, SAN and extensions are the profile's; nothing comes from the CSR."""
    from_der = run(["openssl", "x509", "-inform", "DER", "-noout", "-text", "-nameopt",
                    "RFC2253"], input=STATE["cert"], text=False)
    text = from_der.stdout.decode()
    owner = "1.%s.%s" % (DEVICE.lower(), ZONE)
    check("Subject: CN=%s\n" % owner in text, "subject is CN=<owner name>: %s" % text)
    check("DNS:%s\n" % owner in text, "SAN is exactly the owner name")
    for bad in ("evil.example.com", "www.example.org", "CSR Subject Never Copied",
                "Code Signing", "TLS Web Server", "Certificate Sign", "CA:TRUE"):
        check(bad not in text, "nothing from the CSR in the certificate (%s found)" % bad)
    check("CA:FALSE" in text and "Digital Signature" in text and
          "TLS Web Client Authentication" in text, "CA:false, digitalSignature, clientAuth")
    # Criticality and the exact set of extensions, from the DER.
    p = run(["openssl", "asn1parse", "-inform", "DER"], input=STATE["cert"], text=False)
    lines = p.stdout.decode().splitlines()
    oids = [l.split(":")[-1] for l in lines if "OBJECT" in l]
    exts = [o for o in oids if o in ("X509v3 Basic Constraints", "X509v3 Key Usage",
                                      "X509v3 Extended Key Usage",
                                      "X509v3 Subject Alternative Name",
                                      "X509v3 Subject Key Identifier",
                                      "X509v3 Authority Key Identifier",
                                      "X509v3 CRL Distribution Points")]
    check(len(exts) == 7 and len(set(exts)) == 7, "exactly the 7 profile extensions: %r" % exts)
    text2 = run(["openssl", "x509", "-inform", "DER", "-noout", "-ext",
                 "basicConstraints,keyUsage"], input=STATE["cert"], text=False).stdout.decode()
    check(text2.count("critical") == 2, "basicConstraints and keyUsage critical: %s" % text2)
    # Validity: notBefore backdated at most 1 h, 365 days as the profile says.
    p = run(["openssl", "x509", "-inform", "DER", "-noout", "-startdate", "-enddate",
             "-dateopt", "iso_8601"], input=STATE["cert"], text=False).stdout.decode()
    import datetime
    vals = dict(l.split("=", 1) for l in p.splitlines())
    nb = datetime.datetime.strptime(vals["notBefore"], "%Y-%m-%d %H:%M:%SZ")
    na = datetime.datetime.strptime(vals["notAfter"], "%Y-%m-%d %H:%M:%SZ")
    now = datetime.datetime.utcnow()
    check(datetime.timedelta(0) <= now - nb <= datetime.timedelta(hours=1, minutes=5),
          "notBefore backdated at most 1 h: %s" % nb)
    check(abs((na - nb) - datetime.timedelta(days=365, hours=1)) < datetime.timedelta(minutes=5),
          "validity 365 d from now (plus the backdate): %s .. %s" % (nb, na))
    serial = int(STATE["serial"], 16)
    check(serial < 2 ** 127 and serial >= 2 ** 120, "16-byte positive serial: %s" % STATE["serial"])


def t_issue_idempotent(d):
    before = len(d.audit_records())
    sigs_before = {k["role"]: k["signatures"] for k in d.status()["keys"]}
    with d.client() as c:
        r = c.issue(DEVICE.lower(), 1, "device", STATE["csr"])
    check(r["cert_der"] == STATE["cert"] and r["serial_hex"] == STATE["serial"],
          "the same request returns the same certificate")
    sigs_after = {k["role"]: k["signatures"] for k in d.status()["keys"]}
    check(sigs_after["issuing-ca"] == sigs_before["issuing-ca"], "no new signature for a repeat")
    check(len(d.audit_records()) == before, "a repeat changes nothing in the audit log")
    other, _ = make_csr(d.base)
    with d.client() as c:
        e = expect_refusal(lambda: c.issue(DEVICE, 1, "device", other), "CONFLICT",
                           "another CSR at a taken index")
    check("index 1" in e.message, "CONFLICT names the index: %s" % e.message)


def t_pipelined_same_request(d):
    """The same new request twice at once: one signature, one certificate."""
    csr, _ = make_csr(d.base)
    with d.client() as c:
        ids = [c.send("ISSUE", device_id=DEVICE, index=7, profile="device", csr_der=csr)
               for _ in range(3)]
        replies = [c.recv() for _ in ids]
    certs = {r.fields["cert_der"] for r in replies if r.ok}
    check(all(r.ok for r in replies), "all three answered OK: %r" % replies)
    check(len(certs) == 1, "one certificate for the three: %d" % len(certs))
    STATE["cert7"] = replies[0].fields


def t_revoke_idempotent(d):
    with d.client() as c:
        r1 = c.revoke(DEVICE, 1, "", "keyCompromise")
        r2 = c.revoke(DEVICE.lower(), 0, STATE["serial"].upper(), "keyCompromise")
    check(r1["serial_hex"] == STATE["serial"].lstrip("0"), "revoked serial: %r" % r1)
    check(r1["revoked_at"] == r2["revoked_at"], "revoking again answers as the first time")
    with d.client() as c:
        expect_refusal(lambda: c.revoke(DEVICE, 1, STATE["cert7"]["serial_hex"], "unspecified"),
                       "CONFLICT", "index and serial of different certificates")
        expect_refusal(lambda: c.revoke(DEVICE, 99, "", "unspecified"), "NOT_FOUND",
                       "revoking an index never issued")
        expect_refusal(lambda: c.revoke(DEVICE, 7, "", "noSuchReason"), "BAD_REQUEST",
                       "unknown reason")
        expect_refusal(lambda: c.revoke(DEVICE, 0, "", "unspecified"), "BAD_REQUEST",
                       "neither index nor serial")


def crl_text(d, der):
    path = os.path.join(d.base, "crl.der")
    with open(path, "wb") as f:
        f.write(der)
    p = run(["openssl", "crl", "-inform", "DER", "-in", path, "-CAfile",
             os.path.join(d.out, "issuing-ca.pem"), "-verify", "-noout", "-text"])
    check(p.returncode == 0 and "verify OK" in p.stderr + p.stdout,
          "openssl crl -verify: %s%s" % (p.stdout, p.stderr))
    return p.stdout


def crl_number(text):
    lines = text.splitlines()
    for i, l in enumerate(lines):
        if "CRL Number" in l:
            return int(lines[i + 1].strip())
    raise AssertionError("no CRL number")


def t_crl(d):
    with d.client() as c:
        der1 = c.crl()
        der1b = c.crl()
    check(der1 == der1b, "a fresh CRL is served from the cache (byte-identical)")
    text = crl_text(d, der1)
    check(STATE["serial"].upper() in text.replace(":", ""), "CRL lists the revoked serial")
    check("Key Compromise" in text, "CRL carries the reason")
    n1 = crl_number(text)
    with d.client() as c:
        c.revoke(DEVICE, 7, "", "cessationOfOperation")
        der2 = c.crl()
    text2 = crl_text(d, der2)
    check(crl_number(text2) > n1, "crlNumber grows after a revocation")
    check(STATE["cert7"]["serial_hex"].upper() in text2.replace(":", ""),
          "the new CRL lists the new revocation")
    check(STATE["serial"].upper() in text2.replace(":", ""), "and still the old one")


def t_reissue(d):
    csr, _ = make_csr(d.base)
    with d.client() as c:
        r = c.issue(DEVICE, 10, "device", csr)
        csr2, _ = make_csr(d.base)
        n = c.reissue(DEVICE, 10, "device", csr2)
    check(n["index"] == 11, "REISSUE takes one above the highest index ever used: %r" % n["index"])
    with d.client() as c:
        e = expect_refusal(lambda: c.reissue(DEVICE, 10, "device", csr2), "NOT_FOUND",
                           "reissuing a replaced certificate")
        der = c.crl()
    check(r["serial_hex"].upper() in crl_text(d, der).replace(":", ""),
          "the replaced certificate is on the CRL (superseded): %s" % e.message)


def t_default_profile(d):
    """An empty profile means the caller's first profile (also through the CLI)."""
    csr, _ = make_csr(d.base)
    with d.client() as c:
        r = c.issue(DEVICE, 20, "", csr)
    check(r["index"] == 20, "ISSUE with an empty profile is served: %r" % r["index"])
    rec = [x for x in d.audit_records() if x["type"] == "request" and x.get("index") == 20]
    check(rec and rec[-1]["rule"] == "profiles.device", "decided under profile device: %r" %
          rec[-1:])
    csr_path = os.path.join(d.base, "cli.csr")
    with open(csr_path, "wb") as f:
        f.write(make_csr(d.base)[0])
    p = run([d.regsign, "-s", d.sock, "issue", "--device", DEVICE, "--index", "21", "--csr",
             csr_path])
    check(p.returncode == 0 and "BEGIN CERTIFICATE" in p.stdout and "index: 21" in p.stdout,
          "regsign issue without --profile: %s%s" % (p.stdout, p.stderr))
    p = run([d.regsign, "-s", d.sock, "issue", "--device", DEVICE, "--index", "21",
             "--profile", "nosuch", "--csr", csr_path])
    check(p.returncode == 1 and "DENIED" in p.stderr,
          "the CLI reports a refusal with exit status 1: %d %s" % (p.returncode, p.stderr))


def t_chain(d):
    with d.client() as c:
        chain = c.chain()
    with open(os.path.join(d.out, "issuing-ca.pem")) as f:
        issuing = f.read()
    check(der_to_pem(chain[0]).split() == issuing.split(), "CHAIN starts with the issuing CA")


def t_audit_verify(d):
    st = d.status()
    head = st["audit"]["head"]
    regsign = d.regsign
    pub = os.path.join(d.out, "audit.pub")
    p = run([regsign, "audit", "verify", "--key", pub, "--head", head, d.audit])
    check(p.returncode == 0, "audit verify passes on the live log: %s%s" % (p.stdout, p.stderr))
    recs = d.audit_records()
    ops = [(r.get("op"), r.get("decision")) for r in recs if r["type"] == "request"]
    check(("issue", "allow") in ops and ("revoke", "allow") in ops and ("crl", "allow") in ops,
          "issue, revoke and CRL signing are audited: %r" % ops)
    check(any(r["type"] == "result" and r.get("serial") == STATE["serial"].lstrip("0")
              for r in recs), "the issue result names the serial")


def tampered(d, name, mutate):
    with open(d.audit, "rb") as f:
        lines = f.read().split(b"\n")[:-1]
    lines = mutate(lines)
    path = os.path.join(d.base, name)
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + (b"\n" if lines else b""))
    return path


def t_audit_tamper(d):
    """The verifier catches a flipped byte, a deleted, a reordered line and truncation."""
    # SIGTERM writes a final checkpoint: the head then covers the whole file.
    code = d.stop()
    check(code == 0, "SIGTERM: exit status 0 (got %r)" % code)
    recs = d.audit_records()
    check(recs[-1]["type"] == "checkpoint" and recs[-2].get("event") == "stop",
          "the log ends with 'stop' and a final checkpoint")
    import hashlib
    with open(d.audit, "rb") as f:
        last = f.read().split(b"\n")[-2]
    head = hashlib.sha256(last).hexdigest()
    pub = os.path.join(d.out, "audit.pub")

    def verify(path):
        return run([d.regsign, "audit", "verify", "--key", pub, "--head", head, path])

    check(verify(d.audit).returncode == 0, "the final log verifies with the final head")
    n = len(recs)
    mid = n // 2

    def flip(lines):
        l = bytearray(lines[mid])
        l[l.index(b'"time":"') + 10] ^= 0x01
        lines[mid] = bytes(l)
        return lines

    cases = {
        "flipped": flip,
        "deleted": lambda lines: lines[:mid] + lines[mid + 1:],
        "reordered": lambda lines: lines[:mid] + [lines[mid + 1], lines[mid]] + lines[mid + 2:],
        "truncated": lambda lines: lines[:-3],
    }
    for name, mutate in cases.items():
        p = verify(tampered(d, name, mutate))
        check(p.returncode != 0, "audit verify catches a %s line: %s" % (name, p.stdout))
    # Restart on the same state: idempotency survives.
    d.start()
    with d.client() as c:
        r = c.issue(DEVICE, 1, "device", STATE["csr"])
    check(r["cert_der"] == STATE["cert"], "after a restart the repeat gets the same certificate")


if __name__ == "__main__":
    need_tool("openssl")
    main([t_start_checks, t_issue_verifies, t_issue_profile_exact, t_issue_idempotent,
          t_pipelined_same_request, t_revoke_idempotent, t_crl, t_reissue, t_default_profile,
          t_chain,
          t_audit_verify, t_audit_tamper], Daemon("issue"))
