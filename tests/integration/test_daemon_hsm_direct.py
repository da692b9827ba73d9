#!/usr/bin/env python3
"""The HSM process's hard limits hold even when it is asked directly over its
socketpair, bypassing the front process's policy: the issuing-CA key refuses a
CA:true TBSCertificate, the ZSK refuses RRSIG data over the DNSKEY RRset, the
audit key signs only checkpoints, a root role is never served. Positive
controls (the same data, within the limits) are signed, so each refusal is for
the reason tested. The internal protocol is spoken from its description in
signer/hsmproto.h."""

import base64
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import DEVICE, Daemon, check, main, make_csr  # noqa: E402

STATE = {}

HELLO, SIGN, SIGN_REPLY = 0x01, 0x02, 0x82
KIND_TBS_CERT, KIND_TBS_CRL, KIND_RRSIG, KIND_CHECKPOINT = 1, 2, 3, 4
RAW, DER = 1, 2
OK, REFUSED = 0, 1


# ---- a minimal DER walker (enough to edit basicConstraints in a TBS) ----

def der_read(b, i):
    tag = b[i]
    n = b[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[j:j + k], "big")
        j += k
    return tag, b[j:j + n], j + n


def der_len(n):
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_children(content):
    out, i = [], 0
    while i < len(content):
        tag, val, j = der_read(content, i)
        out.append((tag, val, content[i:j]))
        i = j
    return out


def tbs_of(cert):
    _, cert_body, _ = der_read(cert, 0)
    return der_children(cert_body)[0][2]


def tbs_with_ca_true(tbs):
    """The TBS with basicConstraints CA:FALSE replaced by CA:TRUE."""
    _, body, _ = der_read(tbs, 0)
    parts = []
    for tag, val, raw in der_children(body):
        if tag == 0xA3:  # [3] extensions
            _, exts, _ = der_read(val, 0)
            new_exts = []
            for _, ext, ext_raw in der_children(exts):
                kids = der_children(ext)
                if kids[0][1] == bytes.fromhex("551d13"):  # basicConstraints
                    bc = der_tlv(0x30, der_tlv(0x01, b"\xff"))
                    ext_raw = der_tlv(0x30, kids[0][2] + kids[1][2] +
                                      der_tlv(0x04, bc))
                new_exts.append(ext_raw)
            raw = der_tlv(0xA3, der_tlv(0x30, b"".join(new_exts)))
        parts.append(raw)
    return der_tlv(0x30, b"".join(parts))


# ---- DNSSEC data ----

def name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def key_tag(rdata):
    acc = 0
    for i, b in enumerate(rdata):
        acc += b if i & 1 else b << 8
    acc += (acc >> 16) & 0xFFFF
    return acc & 0xFFFF


def dnskeys(d):
    keys = []
    with open(os.path.join(d.out, "dnskey.txt")) as f:
        for line in f:
            f_ = line.split()
            flags, proto, alg, key = int(f_[4]), int(f_[5]), int(f_[6]), "".join(f_[7:])
            keys.append(struct.pack(">HBB", flags, proto, alg) + base64.b64decode(key))
    return keys


def rrsig_data(zone, type_covered, tag, rrs, ttl=3600):
    """RRSIG RDATA without signature + the RRset in canonical form (RFC 4034 §3.1.8.1)."""
    now = int(time.time())
    labels = len(zone.rstrip(".").split("."))
    out = struct.pack(">HBBIIIH", type_covered, 13, labels, ttl, now + 86400, now - 3600, tag)
    out += name_wire(zone)
    for rdata in sorted(rrs):
        out += name_wire(zone) + struct.pack(">HHIH", type_covered, 1, ttl, len(rdata)) + rdata
    return out


# ---- the HSM process over a socketpair ----

class HsmProcess:
    def __init__(self, d):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = parent
        self.sock.settimeout(60)
        self.proc = subprocess.Popen([d.regsignd, "--hsm-process", "--fd", str(child.fileno()),
                                      "-c", d.config], pass_fds=(child.fileno(),),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        child.close()
        self.next_id = 1
        typ, _, results = self.recv()
        check(typ == HELLO and results[0][0] == OK, "HSM process says HELLO OK: %r" % (results,))

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            check(chunk, "the HSM process closed the socketpair")
            buf += chunk
        return buf

    def recv(self):
        hdr = self.recv_exact(16)
        version, typ, _, rid, count, length = struct.unpack(">BBHIII", hdr)
        check(version == 1, "protocol version 1")
        body = self.recv_exact(length)
        results, i = [], 0
        for _ in range(count):
            status = body[i]
            rlen = body[i + 1]
            reason = body[i + 2:i + 2 + rlen].decode()
            i += 2 + rlen
            vlen = struct.unpack(">H", body[i:i + 2])[0]
            value = body[i + 2:i + 2 + vlen]
            i += 2 + vlen
            results.append((status, reason, value))
        check(i == length, "reply body used exactly")
        return typ, rid, results

    def sign(self, items):
        """items: [(role, kind, format, data)] -> [(status, reason, value)]."""
        body = b""
        for role, kind, fmt, data in items:
            body += bytes([len(role)]) + role.encode() + bytes([kind, fmt])
            body += struct.pack(">I", len(data)) + data
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(struct.pack(">BBHIII", 1, SIGN, 0, rid, len(items), len(body)) + body)
        typ, got, results = self.recv()
        check(typ == SIGN_REPLY and got == rid and len(results) == len(items),
              "SIGN reply with the request's id and one result per item")
        return results

    def close(self):
        self.sock.close()
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return self.proc.returncode, out.decode(errors="replace")


def t_setup(d):
    d.start()
    csr, _ = make_csr(d.base)
    with d.client() as c:
        STATE["cert"] = c.issue(DEVICE, 1, "device", csr)["cert_der"]
    check(d.stop() == 0, "daemon stopped")
    STATE["hsm"] = HsmProcess(d)


def t_ca_true_refused(d):
    h = STATE["hsm"]
    tbs = tbs_of(STATE["cert"])
    bad = tbs_with_ca_true(tbs)
    check(bad != tbs and b"\x01\x01\xff" in bad, "the edited TBS says CA:TRUE")
    res = h.sign([("issuing-ca", KIND_TBS_CERT, DER, tbs),
                  ("issuing-ca", KIND_TBS_CERT, DER, bad)])
    check(res[0][0] == OK and len(res[0][2]) > 60, "control: the device TBS is signed: %r" %
          (res[0][:2],))
    check(res[1][0] == REFUSED, "a CA:true TBS is refused: %r" % (res[1][:2],))
    check("CA" in res[1][1] or "basic" in res[1][1].lower(),
          "the reason names CA/basicConstraints: %r" % res[1][1])


def t_zsk_dnskey_refused(d):
    h = STATE["hsm"]
    keys = dnskeys(d)
    ksk = [k for k in keys if k[1] == 1][0]  # flags 257: low byte 0x01
    zsk = [k for k in keys if k[1] == 0][0]
    data_zsk = rrsig_data("iotregistry.test.", 48, key_tag(zsk), keys)
    data_ksk = rrsig_data("iotregistry.test.", 48, key_tag(ksk), keys)
    res = h.sign([("ksk", KIND_RRSIG, RAW, data_ksk), ("zsk", KIND_RRSIG, RAW, data_zsk)])
    check(res[0][0] == OK and len(res[0][2]) == 64, "control: the KSK signs the DNSKEY RRset: %r"
          % (res[0][:2],))
    check(res[1][0] == REFUSED, "the ZSK refuses the DNSKEY RRset: %r" % (res[1][:2],))
    check("DNSKEY" in res[1][1], "the reason names DNSKEY: %r" % res[1][1])


def t_other_roles_refused(d):
    h = STATE["hsm"]
    prefix = b"regsign-audit-checkpoint-v1\0"
    res = h.sign([("audit", KIND_CHECKPOINT, RAW, prefix + b'{"seq":1}'),
                  ("audit", KIND_CHECKPOINT, RAW, b'{"seq":1}'),
                  ("audit", KIND_TBS_CERT, DER, tbs_of(STATE["cert"])),
                  ("issuing-ca", KIND_CHECKPOINT, RAW, prefix + b"x"),
                  ("root-ca", KIND_TBS_CERT, DER, tbs_of(STATE["cert"]))])
    check(res[0][0] == OK, "control: the audit key signs a checkpoint: %r" % (res[0][:2],))
    for i, what in ((1, "checkpoint without its prefix"), (2, "a certificate by the audit key"),
                    (3, "a checkpoint by the issuing CA"), (4, "anything by a root role")):
        check(res[i][0] == REFUSED, "%s is refused: %r" % (what, res[i][:2]))


def t_close(d):
    code, out = STATE["hsm"].close()
    check(code == 0, "the HSM process exits 0 when the socketpair closes: %r %s" % (code, out))
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check(marker not in out, "no sanitizer report from the HSM process:\n%s" % out)


if __name__ == "__main__":
    main([t_setup, t_ca_true_refused, t_zsk_dnskey_refused, t_other_roles_refused, t_close],
         Daemon("hsm-direct"))
