#!/usr/bin/env python3
"""Bad input replayed against the running daemon (attack 5 of brief O).

Frames: every request type (and reply types and unknown types sent as
requests) truncated, cut off mid-frame, oversized, with lying inner lengths
(a string count past the end, 2^32-1, one short, over the field's maximum),
bytes left over, text that is not UTF-8 or holds NUL, id 0, length below 5.
CSRs: explicit curve parameters, a wrong signature, huge extensions, BER and
other non-DER encodings that still carry a valid self-signature (the
signature is made again over the re-encoded request), trailing garbage
after and inside the CSR, a certificate, random bytes, a truncated CSR.

Each is refused with the code PROTOCOL.md gives and a clear message, leaves
a deny line in the audit log, and after each one a well-behaved client on
another connection is still served (HELLO and a real ISSUE). The daemon
must not crash (its log is checked for sanitizer reports at the end).
"""

import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_lib import (AttackDaemon, TestFailure, check, csr_pool, device_id,  # noqa: E402
                        main, make_csr, run)
import regsign_client as rc  # noqa: E402

STATE = {"n": 0, "denials": 0}
MAX_FRAME = 262144


# ---- helpers ----

def denials(d):
    return sum(1 for r in d.audit_records()
               if r.get("type") == "request" and r.get("decision") == "deny")


def expect_denial_line(d, before, what, op=None, timeout=10):
    """A new deny record appears in the audit log (the refusal is audited)."""
    end = time.time() + timeout
    while True:
        recs = [r for r in d.audit_records()
                if r.get("type") == "request" and r.get("decision") == "deny"]
        if len(recs) > before:
            rec = recs[-1]
            if op is not None:
                check(rec.get("op") == op, "%s: audit op %r, expected %r" % (what, rec.get("op"),
                                                                            op))
            check(rec.get("rule") and rec.get("detail"), "%s: audit line names rule and why: %r"
                  % (what, rec))
            return rec
        if time.time() > end:
            raise TestFailure("%s: no deny line in the audit log" % what)
        time.sleep(0.02)


def good_request(d, what):
    """A well-behaved caller on its own connection is served after each attack."""
    STATE["n"] += 1
    csr = STATE["csrs"][STATE["n"] % len(STATE["csrs"])][0]
    dev = device_id(7, STATE["n"])
    try:
        with d.client(timeout=30) as c:
            check(c.hello()["version"] == 1, "HELLO answered")
            rep = c.issue(dev, 1, "device", csr)
            check(rep["index"] == 1, "ISSUE answered")
    except (OSError, rc.ConnectionClosed, rc.RegsignError) as e:
        raise TestFailure("after %s a good client is not served: %r\n%s" %
                          (what, e, d.log_text()))
    check(d.proc.poll() is None, "the daemon is still running after %s" % what)


def connect(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(d.sock)
    return s


def read_reply(s, allow_close=False):
    """The next reply frame on raw socket s (None if it closed first and
    allow_close)."""
    buf = b""
    while True:
        if len(buf) >= 4:
            size = rc.frame_size(buf)
            if len(buf) >= size:
                return rc.decode_reply(buf[:size])
        chunk = s.recv(65536)
        if not chunk:
            check(allow_close, "the connection closed without a reply")
            return None
        buf += chunk


def closed_soon(s, timeout=10):
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, socket.timeout):
        return False


def raw_case(d, what, frame, code, rid, op=None, closes=False):
    """Sends frame on a fresh connection; expects ERROR `code` with id `rid`,
    a deny audit line, and (closes) the connection closed after it."""
    before = denials(d)
    s = connect(d)
    try:
        s.sendall(frame)
        rep = read_reply(s)
        check(not rep.ok and rep.name == code and rep.id == rid,
              "%s: expected %s id %d, got %r" % (what, code, rid, rep))
        check(rep.message and len(rep.message) > 5, "%s: the error says why: %r" %
              (what, rep.message))
        if closes:
            check(closed_soon(s), "%s: the connection is closed after %s" % (what, code))
        else:
            # The connection stays usable: a HELLO on it is answered.
            s.sendall(rc.encode_request("HELLO", 4242, min_version=1, max_version=1,
                                        client="after"))
            rep2 = read_reply(s)
            check(rep2.ok and rep2.id == 4242, "%s: connection usable afterwards: %r" %
                  (what, rep2))
    finally:
        s.close()
    expect_denial_line(d, before, what, op)
    good_request(d, what)
    return rep


# ---- frames ----

SAMPLE = {
    "HELLO": dict(min_version=1, max_version=1, client="attack"),
    "ISSUE": dict(device_id="8912230200031010008f", index=1, profile="device",
                  csr_der=b"\x30\x03\x02\x01\x00"),
    "REVOKE": dict(device_id="8912230200031010008f", index=1, serial_hex="01",
                   reason="unspecified"),
    "REISSUE": dict(device_id="8912230200031010008f", old_index=1, profile="device",
                    csr_der=b"\x30\x03\x02\x01\x00"),
    "CRL": {}, "CHAIN": {}, "STATUS": {}, "ZONE_STATUS": {},
    "PUBLISH": dict(owner="x._asp", rrtype="TXT", ttl=60, rdata='"a"'),
    "UNPUBLISH": dict(owner="x._asp", rrtype="TXT", ttl=0, rdata=""),
    "SIGN_RRSET": dict(zone="asp.test.", rrset_wire=b"\x00", inception=1, expiration=2),
}

AUDIT_OP = {"HELLO": "hello", "ISSUE": "issue", "REVOKE": "revoke", "REISSUE": "reissue",
            "CRL": "crl", "CHAIN": "chain", "STATUS": "status", "ZONE_STATUS": "zone-status",
            "PUBLISH": "publish", "UNPUBLISH": "unpublish", "SIGN_RRSET": "sign-rrset"}


def fields_parts(op, fields):
    """The body as a list of (name, kind, encoded bytes) per field."""
    parts = []
    for name, kind, maximum in rc.REQUEST_FIELDS[op]:
        parts.append((name, kind, rc._encode_fields([(name, kind, maximum)],
                                                    {name: fields.get(name)})))
    return parts


def frame_of(ftype, rid, body):
    return struct.pack(">IBI", 5 + len(body), ftype, rid) + body


def t_setup(d):
    d.start()
    STATE["csrs"] = csr_pool(d.base, 8)


def t_frames_truncated_and_extra(d):
    n = 0
    for op, fields in SAMPLE.items():
        t = rc.OPS[op]
        body = b"".join(p[2] for p in fields_parts(op, fields))
        if body:
            raw_case(d, "%s one byte short" % op, frame_of(t, 21, body[:-1]), "BAD_FRAME", 21,
                     AUDIT_OP[op])
            raw_case(d, "%s fields missing" % op, frame_of(t, 22, body[:3]), "BAD_FRAME", 22,
                     AUDIT_OP[op])
            n += 2
        raw_case(d, "%s one byte extra" % op, frame_of(t, 23, body + b"\x00"), "BAD_FRAME", 23,
                 AUDIT_OP[op])
        n += 1
    print("     %d truncated/extra frames refused" % n)


def t_frames_lying_lengths(d):
    n = 0
    for op, fields in SAMPLE.items():
        t = rc.OPS[op]
        parts = fields_parts(op, fields)
        for i, (name, kind, enc) in enumerate(parts):
            if kind not in ("text", "string"):
                continue
            real = struct.unpack(">I", enc[:4])[0]
            lies = [real + 1, 0xFFFFFFFF, 0x7FFFFFFF, MAX_FRAME]
            if real > 0:
                lies.append(real - 1)
            for lie in lies:
                bad = struct.pack(">I", lie) + enc[4:]
                body = b"".join(p[2] for p in parts[:i]) + bad + \
                    b"".join(p[2] for p in parts[i + 1:])
                raw_case(d, "%s.%s claims %d bytes (has %d)" % (op, name, lie, real),
                         frame_of(t, 31, body), "BAD_FRAME", 31, AUDIT_OP[op])
                n += 1
    print("     %d lying inner lengths refused" % n)


def t_frames_field_contents(d):
    """A field over its maximum, text not UTF-8 or with a NUL: BAD_FRAME."""
    n = 0
    for op, fields in SAMPLE.items():
        t = rc.OPS[op]
        parts = fields_parts(op, fields)
        for i, (name, kind, maximum) in enumerate(rc.REQUEST_FIELDS[op]):
            if kind not in ("text", "string"):
                continue
            variants = []
            if maximum is not None and maximum + 1 + 64 < MAX_FRAME:
                variants.append(("over its maximum", b"a" * (maximum + 1)))
            if kind == "text":
                variants += [("not UTF-8", b"ab\xff\xfe"), ("with a NUL", b"ab\x00cd"),
                             ("an overlong UTF-8 slash", b"\xc0\xaf")]
            for why, value in variants:
                bad = struct.pack(">I", len(value)) + value
                body = b"".join(p[2] for p in parts[:i]) + bad + \
                    b"".join(p[2] for p in parts[i + 1:])
                raw_case(d, "%s.%s %s" % (op, name, why), frame_of(t, 41, body), "BAD_FRAME",
                         41, AUDIT_OP[op])
                n += 1
    print("     %d bad field contents refused" % n)


def t_frames_oversized_and_short(d):
    for op in list(SAMPLE) + ["0x80", "0x81", "0"]:
        t = rc.OPS.get(op, None)
        t = int(op, 16) if t is None else t
        for length in (MAX_FRAME + 1, 0x7FFFFFFF, 0xFFFFFFFF):
            # The length alone (and a few bytes): the server must not wait for the body.
            raw_case(d, "type %s length %d" % (op, length),
                     struct.pack(">IBI", length, t, 51) + b"\x00" * 16, "TOO_LARGE", 0,
                     "frame", closes=True)
    for length in range(5):
        raw_case(d, "length %d" % length, struct.pack(">I", length) + b"\x00" * 8, "BAD_FRAME", 0,
                 "frame", closes=True)
    # Exactly at the maximum: read whole, then refused for its content.
    body = struct.pack(">I", MAX_FRAME - 9) + b"\x30" * (MAX_FRAME - 9)
    raw_case(d, "CHAIN of the maximum length with leftover bytes", frame_of(6, 52, body),
             "BAD_FRAME", 52, "chain")
    # Sent slowly, a byte at a time: reassembled and answered.
    s = connect(d)
    frame = rc.encode_request("HELLO", 53, min_version=1, max_version=1, client="slow")
    for i in range(len(frame)):
        s.sendall(frame[i:i + 1])
        time.sleep(0.002)
    rep = read_reply(s)
    s.close()
    check(rep.ok and rep.id == 53, "a frame sent byte by byte is answered: %r" % rep)


def t_frames_ids_and_types(d):
    raw_case(d, "HELLO with id 0", rc.encode_request("HELLO", 1, min_version=1, max_version=1,
                                                     client="x")[:5] + b"\x00\x00\x00\x00" +
             rc.encode_request("HELLO", 1, min_version=1, max_version=1, client="x")[9:],
             "BAD_FRAME", 0, "hello")
    for t in (0, 13, 0x7F, 0x80, 0x81, 0xFF):
        raw_case(d, "request type %d" % t, frame_of(t, 61, b""), "UNKNOWN_OP", 61, "frame")
        raw_case(d, "request type %d with a body" % t, frame_of(t, 62, b"\x00" * 100),
                 "UNKNOWN_OP", 62, "frame")
    # HELLO without a common version: VERSION (not a policy refusal).
    with d.client() as c:
        try:
            c.hello(min_version=2, max_version=9)
            raise TestFailure("HELLO 2..9 accepted")
        except rc.RegsignError as e:
            check(e.name == "VERSION", "HELLO 2..9: VERSION, got %s" % e.name)
        try:
            c.hello(min_version=5, max_version=1)
            raise TestFailure("HELLO 5..1 accepted")
        except rc.RegsignError as e:
            check(e.name == "VERSION", "HELLO 5..1: VERSION, got %s" % e.name)
    good_request(d, "HELLO without a common version")


def t_frames_cut_midway(d):
    """A frame cut off: the peer half-closes, or goes silent. Neither may
    stall the daemon or cost it more than that connection."""
    n = 0
    for op, fields in SAMPLE.items():
        frame = rc.encode_request(op, 71, **fields)
        for cut in sorted({2, 4, 7, len(frame) // 2, len(frame) - 1}):
            if cut <= 0 or cut >= len(frame):
                continue
            s = connect(d)
            s.sendall(frame[:cut])
            s.shutdown(socket.SHUT_WR)
            # read_reply returns None once the daemon closed the connection
            # (it times out, failing the test, if the daemon keeps it open).
            rep = read_reply(s, allow_close=True)
            check(rep is None or (not rep.ok and rep.id == 0),
                  "%s cut at %d: no reply, or an id-0 error: %r" % (op, cut, rep))
            s.close()
            n += 1
        good_request(d, "%s cut off" % op)
    # Silent peers holding half a frame each: others are still served.
    silent = []
    for i in range(20):
        s = connect(d)
        s.sendall(rc.encode_request("ISSUE", 72, **SAMPLE["ISSUE"])[:10])
        silent.append(s)
    good_request(d, "20 silent half-frames")
    for s in silent:
        s.close()
    good_request(d, "the silent peers gone")
    print("     %d cut frames, the daemon serves on" % n)


# ---- CSRs ----

def der_tlv(data, pos):
    """(tag, header length, content length) of the DER TLV at data[pos]."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7F
    return tag, 2 + n, int.from_bytes(data[pos + 2:pos + 2 + n], "big")


def der_len(n, long_bytes=None):
    """A length: minimal DER, or long form with long_bytes bytes (non-minimal)."""
    if long_bytes is None:
        if n < 0x80:
            return bytes([n])
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(b)]) + b
    return bytes([0x80 | long_bytes]) + n.to_bytes(long_bytes, "big")


def der_wrap(tag, content, long_bytes=None, indefinite=False):
    if indefinite:
        return bytes([tag, 0x80]) + content + b"\x00\x00"
    return bytes([tag]) + der_len(len(content), long_bytes) + content


def csr_parts(der):
    """(CertificationRequestInfo TLV, signatureAlgorithm TLV, signature TLV)."""
    tag, hl, _ = der_tlv(der, 0)
    check(tag == 0x30, "a CSR is a SEQUENCE")
    pos = hl
    out = []
    for _ in range(3):
        _, h, n = der_tlv(der, pos)
        out.append(der[pos:pos + h + n])
        pos += h + n
    return out


def sign_bits(d, data, key):
    """BIT STRING of an ECDSA-with-SHA256 signature of data by key (openssl)."""
    path = os.path.join(d.base, "tbs.bin")
    with open(path, "wb") as f:
        f.write(data)
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, "-binary", path],
                       capture_output=True)
    check(p.returncode == 0, "openssl dgst -sign: %s" % p.stderr)
    return der_wrap(0x03, b"\x00" + p.stdout)


def resigned(d, cri, alg, key, outer_long=None):
    return der_wrap(0x30, cri + alg + sign_bits(d, cri, key), outer_long)


def bad_csrs(d):
    """(what, csr DER) pairs, each of which must be refused with BAD_REQUEST."""
    good, key = make_csr(d.base)
    cri, alg, sig = csr_parts(good)
    _, hl, n = der_tlv(cri, 0)
    cri_content = cri[hl:]
    # The control: re-signing the unchanged CRI makes a CSR the daemon accepts.
    yield ("control", resigned(d, cri, alg, key))
    yield ("outer length in non-minimal long form",
           der_wrap(0x30, cri + alg + sig, long_bytes=3))
    yield ("CertificationRequestInfo length non-minimal, re-signed",
           resigned(d, der_wrap(0x30, cri_content, long_bytes=4), alg, key))
    yield ("CertificationRequestInfo of indefinite length (BER), re-signed",
           resigned(d, der_wrap(0x30, cri_content, indefinite=True), alg, key))
    check(cri_content[:3] == b"\x02\x01\x00", "the CRI starts with version 0")
    yield ("version INTEGER with a leading zero byte, re-signed",
           resigned(d, der_wrap(0x30, b"\x02\x02\x00\x00" + cri_content[3:]), alg, key))
    yield ("version 1 (not v1), re-signed",
           resigned(d, der_wrap(0x30, b"\x02\x01\x01" + cri_content[3:]), alg, key))
    yield ("signature BIT STRING with 3 unused bits",
           der_wrap(0x30, cri + alg + sig[:2] + b"\x03" + sig[3:]) if sig[1] < 0x80 else None)
    yield ("trailing garbage after the CSR", good + b"\x00\x00")
    yield ("trailing CSR after the CSR", good + good)
    yield ("garbage inside the outer SEQUENCE after the signature",
           der_wrap(0x30, cri + alg + sig + b"\x05\x00"))
    yield ("wrong signature (last byte flipped)", good[:-1] + bytes([good[-1] ^ 1]))
    yield ("signature of another key", resigned(d, cri, alg, make_csr(d.base)[1]))
    yield ("truncated by 10 bytes", good[:-10])
    yield ("just a SEQUENCE header", good[:4])
    yield ("empty", b"")
    yield ("random bytes", os.urandom(300))
    yield ("explicit curve parameters", make_csr(d.base, "explicit")[0])
    yield ("P-384 key", make_csr(d.base, "p384")[0])
    yield ("RSA key", make_csr(d.base, "rsa")[0])
    with open(os.path.join(d.out, "issuing-ca.pem")) as f:
        pem = f.read()
    import base64
    b64 = "".join(line for line in pem.splitlines() if "-----" not in line)
    yield ("a certificate, not a CSR", base64.b64decode(b64))
    for size in (5000, 15000):
        yield ("a %d-byte extension" % size,
               make_csr(d.base, exts=("nsComment=" + "A" * size,))[0])
    many = tuple("1.2.3.4.%d=ASN1:UTF8String:%s" % (i, "x" * 40) for i in range(120))
    yield ("120 private extensions", make_csr(d.base, exts=many)[0])


def t_csrs(d):
    n = 0
    for what, csr in bad_csrs(d):
        if csr is None:
            continue
        STATE["n"] += 1
        dev = device_id(8, STATE["n"])
        before = denials(d)
        with d.client() as c:
            try:
                rep = c.issue(dev, 1, "device", csr)
                ok, err = True, None
            except rc.RegsignError as e:
                ok, err = False, e
        if what == "control":
            check(ok, "the re-signed unchanged CSR is accepted (the test's signing works): %r"
                  % err)
            continue
        check(not ok, "CSR %s: accepted (serial %s)" % (what, rep["serial_hex"] if ok else ""))
        if len(csr) > 16384:
            check(err.name == "BAD_FRAME", "CSR %s over the field limit: BAD_FRAME, got %s" %
                  (what, err.name))
        else:
            check(err.name == "BAD_REQUEST", "CSR %s: BAD_REQUEST, got %s: %s" %
                  (what, err.name, err.message))
        check(len(err.message) > 10, "CSR %s: the message says why: %r" % (what, err.message))
        rec = expect_denial_line(d, before, "CSR " + what, "issue")
        if err.name == "BAD_REQUEST":
            check(rec.get("inputs") and rec["inputs"][0]["name"] == "csr",
                  "CSR %s: the audit line carries the CSR's hash: %r" % (what, rec))
        good_request(d, "CSR " + what)
        n += 1
    print("     %d bad CSRs refused" % n)


def t_csr_extensions_ignored(d):
    """Extensions under the size bound are no reason to refuse, but none of
    them may reach the certificate: it is built from the policy alone."""
    many = tuple("1.2.3.4.%d=ASN1:UTF8String:%s" % (i, "x" * 40) for i in range(50))
    csr, _ = make_csr(d.base, exts=many + ("basicConstraints=critical,CA:TRUE",
                                           "subjectAltName=DNS:evil.example.com"))
    check(len(csr) < 4096, "the CSR stays under the daemon's CSR bound (%d)" % len(csr))
    with d.client() as c:
        rep = c.issue(device_id(9, 1), 1, "device", csr)
    path = os.path.join(d.base, "ext.der")
    with open(path, "wb") as f:
        f.write(rep["cert_der"])
    p = run(["openssl", "x509", "-inform", "DER", "-in", path, "-noout", "-text"])
    check(p.returncode == 0, "the certificate parses: %s" % p.stderr)
    for bad in ("1.2.3.4.", "evil.example.com", "CA:TRUE"):
        check(bad not in p.stdout, "the certificate carries %r from the CSR:\n%s" %
              (bad, p.stdout))


def t_field_contents(d):
    """Well-formed frames with bad meaning in other requests."""
    cases = [
        ("REVOKE", dict(device_id="8912230200031010008f", index=0, serial_hex="",
                        reason="unspecified"), "BAD_REQUEST", "revoke"),
        ("REVOKE", dict(device_id="8912230200031010008f", index=0, serial_hex="xyz",
                        reason="unspecified"), "BAD_REQUEST", "revoke"),
        ("REVOKE", dict(device_id="8912230200031010008f", index=1, serial_hex="",
                        reason="bogusReason"), "BAD_REQUEST", "revoke"),
        ("REVOKE", dict(device_id="../../x", index=1, serial_hex="", reason="unspecified"),
         "BAD_REQUEST", "revoke"),
        ("ISSUE", dict(device_id="8912230200031010008f", index=0xFFFFFFFF, profile="device",
                       csr_der=STATE["csrs"][0][0]), "BAD_REQUEST", "issue"),
        ("REISSUE", dict(device_id="8912230200031010008f", old_index=0, profile="device",
                         csr_der=STATE["csrs"][0][0]), "BAD_REQUEST", "reissue"),
    ]
    # SIGN_RRSET with lying lengths inside rrset_wire (DNS wire format), and
    # PUBLISH with unparseable RDATA: BAD_REQUEST once these operations are
    # served; until then the daemon says it does not serve them.
    owner = b"\x01a\x03asp\x04test\x00"
    for what, wire in (("rdlength past the end", owner + struct.pack(">HHIH", 16, 1, 60, 200) +
                        b"\x01x"),
                       ("label past the end", b"\x3fabc"),
                       ("compression pointer", b"\xc0\x00" + struct.pack(">HHIH", 16, 1, 60, 0)),
                       ("empty", b"")):
        cases.append(("SIGN_RRSET", dict(zone="asp.test.", rrset_wire=wire, inception=1,
                                         expiration=2), "BAD_REQUEST", "sign-rrset"))
    cases.append(("PUBLISH", dict(owner="x._asp", rrtype="TXT", ttl=60, rdata='"unterminated'),
                  "BAD_REQUEST", "publish"))
    cases.append(("PUBLISH", dict(owner="x._asp", rrtype="TYPE99999", ttl=60, rdata="x"),
                  "BAD_REQUEST", "publish"))
    for op, fields, code, aop in cases:
        before = denials(d)
        with d.client() as c:
            try:
                c.call(op, **fields)
                raise TestFailure("%s %r accepted" % (op, fields))
            except rc.RegsignError as e:
                not_served = e.name == "UNKNOWN_OP" and "not served" in e.message
                check(e.name == code or not_served, "%s %r: %s, got %s: %s" %
                      (op, fields, code, e.name, e.message))
        expect_denial_line(d, before, "%s bad content" % op, aop)
        good_request(d, "%s bad content" % op)


def t_end(d):
    head = d.status()["audit"]["head"]
    d.audit_verify(head)
    d.check_sanitizers()
    check(d.stop() == 0, "SIGTERM after the attacks: exit 0")


if __name__ == "__main__":
    main([t_setup, t_frames_truncated_and_extra, t_frames_lying_lengths,
          t_frames_field_contents, t_frames_oversized_and_short, t_frames_ids_and_types,
          t_frames_cut_midway, t_csrs, t_csr_extensions_ignored, t_field_contents, t_end],
         AttackDaemon("attack-badinput"))
