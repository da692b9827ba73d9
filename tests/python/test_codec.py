"""The Python client's codec against the C codec and docs/PROTOCOL.md.

`test_proto --vectors` (C) prints one JSON line per sample message: its
fields and its frame. For each, the Python decoder must find the same
fields and the Python encoder must produce the same bytes. The byte
examples of docs/PROTOCOL.md §9 must decode and re-encode exactly, and the
Python decoder must refuse the same malformed frames the C one does.
"""

import json
import os
import re
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regsign_client as rc  # noqa: E402

BIN_DIR = os.environ.get("REGSIGN_BIN_DIR")
SOURCE_DIR = os.environ.get("REGSIGN_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))))

BYTES_FIELDS = {"csr_der", "cert_der", "crl_der", "rrset_wire", "rrsig_wire", "records"}


def normalise(fields):
    """JSON from C → Python values: hex → bytes, chain → list of bytes."""
    out = {}
    for k, v in fields.items():
        if k in BYTES_FIELDS and isinstance(v, str):  # IMPORT's reply "records" is a count
            out[k] = bytes.fromhex(v)
        elif k == "chain":
            out[k] = [bytes.fromhex(x) for x in v]
        else:
            out[k] = v
    return out


def load_vectors():
    if not BIN_DIR:
        raise RuntimeError("REGSIGN_BIN_DIR is not set (run through ctest)")
    prog = os.path.join(BIN_DIR, "tests", "test_proto")
    if not os.access(prog, os.X_OK):
        raise RuntimeError("%s is missing: build the test_proto target" % prog)
    out = subprocess.run([prog, "--vectors"], check=True, capture_output=True, timeout=60)
    return [json.loads(line) for line in out.stdout.decode("utf-8").splitlines() if line]


class AgainstC(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.vectors = load_vectors()

    def test_every_type_is_covered(self):
        reqs = {v["op"] for v in self.vectors if v["kind"] == "request"}
        reps = {v["op"] for v in self.vectors if v["kind"] == "reply"}
        self.assertEqual(reqs, set(rc.OP_NAMES))
        self.assertEqual(reps, set(rc.OP_NAMES))
        self.assertEqual(sum(1 for v in self.vectors if v["kind"] == "error"), 1)

    def test_requests(self):
        for v in (v for v in self.vectors if v["kind"] == "request"):
            with self.subTest(op=v["op"]):
                frame = bytes.fromhex(v["frame"])
                fields = normalise(v["fields"])
                op, req_id, got = rc.decode_request(frame)
                self.assertEqual(rc.OPS[op], v["op"])
                self.assertEqual(req_id, v["id"])
                self.assertEqual(got, fields)
                self.assertEqual(rc.encode_request(v["op"], v["id"], **fields), frame)

    def test_replies(self):
        for v in (v for v in self.vectors if v["kind"] != "request"):
            with self.subTest(op=v["op"]):
                frame = bytes.fromhex(v["frame"])
                fields = normalise(v["fields"])
                reply = rc.decode_reply(frame)
                self.assertEqual(reply.id, v["id"])
                self.assertEqual(reply.fields, fields)
                if v["kind"] == "error":
                    self.assertFalse(reply.ok)
                    self.assertEqual(reply.name, "DENIED")
                    enc = rc.encode_error(v["id"], fields["code"], fields["message"])
                else:
                    self.assertTrue(reply.ok)
                    self.assertEqual(rc.OPS[reply.op], v["op"])
                    enc = rc.encode_reply(v["op"], v["id"], **fields)
                self.assertEqual(enc, frame)


def document_examples():
    """Hex examples of PROTOCOL.md §9: each fenced block's hex lines, joined."""
    with open(os.path.join(SOURCE_DIR, "docs", "PROTOCOL.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## 9. Examples"):text.index("## 10.")]
    blocks = []
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        hexlines = [ln for ln in block.splitlines()
                    if re.fullmatch(r"(?:[0-9a-f]{2}\s*)+", ln.strip())]
        blocks.append(bytes.fromhex("".join(hexlines).replace(" ", "")))
    inline = re.search(r"CRL request, id 7 \(no fields\): `([0-9a-f ]+)`", section)
    return blocks, bytes.fromhex(inline.group(1).replace(" ", ""))


class Document(unittest.TestCase):
    def test_examples(self):
        (hello, hello_ok, busy), crl = document_examples()
        self.assertEqual(rc.decode_request(hello), ("HELLO", 1, {
            "min_version": 1, "max_version": 1, "client": "fe"}))
        self.assertEqual(rc.encode_request("HELLO", 1, min_version=1, max_version=1,
                                           client="fe"), hello)
        r = rc.decode_reply(hello_ok)
        self.assertEqual((r.ok, r.id, r.op), (True, 1, "HELLO"))
        self.assertEqual(r.fields, {"version": 1, "max_frame": 262144, "server": "regsignd"})
        self.assertEqual(rc.encode_reply("HELLO", 1, **r.fields), hello_ok)
        self.assertEqual(rc.decode_request(crl), ("CRL", 7, {}))
        r = rc.decode_reply(busy)
        self.assertEqual((r.ok, r.id, r.name, r.message), (False, 7, "BUSY", "busy"))
        self.assertTrue(r.error().retryable)
        self.assertEqual(rc.encode_error(7, "BUSY", "busy"), busy)


class Refusals(unittest.TestCase):
    def frame(self):
        return rc.encode_request("ISSUE", 5, device_id="89", index=1, profile="device",
                                 csr_der=b"\x30\x00")

    def assertRefused(self, name, fn, *args):
        with self.assertRaises(rc.ProtocolError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.name, name)

    def test_truncated(self):
        f = self.frame()
        for cut in range(1, len(f)):
            self.assertRefused("BAD_FRAME", rc.decode_request, f[:-cut])
            if len(f) - cut >= 9:
                lying = struct.pack(">I", len(f) - cut - 4) + f[4:-cut]
                self.assertRefused("BAD_FRAME", rc.decode_request, lying)

    def test_trailing(self):
        f = self.frame()
        self.assertRefused("BAD_FRAME", rc.decode_request, f + b"\0")
        grown = struct.pack(">I", len(f) - 4 + 1) + f[4:] + b"\0"
        self.assertRefused("BAD_FRAME", rc.decode_request, grown)

    def test_sizes(self):
        self.assertRefused("TOO_LARGE", rc.frame_size, b"\x00\x04\x00\x01", rc.REQUEST_MAX)
        self.assertEqual(rc.frame_size(b"\x00\x04\x00\x00"), 4 + 262144)
        self.assertIsNone(rc.frame_size(b"\x00\x00\x00"))
        self.assertRefused("BAD_FRAME", rc.frame_size, b"\x00\x00\x00\x04")
        with self.assertRaises(ValueError):
            rc.encode_request("SIGN_RRSET", 1, zone="z", rrset_wire=b"\0" * 262144)

    def test_field_limits(self):
        with self.assertRaises(ValueError):
            rc.encode_request("ISSUE", 1, device_id="a" * 65)
        body = struct.pack(">I", 65) + b"a" * 65 + b"\0" * 12
        f = struct.pack(">IBI", 5 + len(body), 2, 1) + body
        self.assertRefused("BAD_FRAME", rc.decode_request, f)
        chain9 = struct.pack(">IBIBI", 10, 0x80, 1, 6, 9)
        self.assertRefused("BAD_FRAME", rc.decode_reply, chain9)

    def test_id_zero(self):
        self.assertRefused("BAD_FRAME", rc.decode_request, struct.pack(">IBI", 5, 5, 0))
        with self.assertRaises(ValueError):
            rc.encode_request("CRL", 0)
        # Replies may carry id 0 (an error the server cannot attribute).
        self.assertEqual(rc.decode_reply(rc.encode_error(0, "TOO_LARGE", "x")).id, 0)

    def test_unknown_types(self):
        for t in (0, 13, 0x80, 0xFF):
            self.assertRefused("UNKNOWN_OP", rc.decode_request, struct.pack(">IBI", 5, t, 1))
        self.assertRefused("UNKNOWN_OP", rc.decode_reply, struct.pack(">IBIB", 6, 0x80, 1, 99))
        self.assertRefused("UNKNOWN_OP", rc.decode_reply, struct.pack(">IBI", 5, 3, 1))
        # An unknown error code is still a valid ERROR.
        r = rc.decode_reply(struct.pack(">IBIII", 13, 0x81, 3, 4096, 0))
        self.assertEqual((r.code, r.name), (4096, "UNKNOWN"))
        self.assertFalse(r.error().retryable)

    def test_text(self):
        for bad in (b"a\0b", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff"):
            body = (struct.pack(">I", 0) + struct.pack(">I", 0) + struct.pack(">I", 0)
                    + struct.pack(">I", len(bad)) + bad)
            f = struct.pack(">IBI", 5 + len(body), 3, 1) + body
            self.assertRefused("BAD_FRAME", rc.decode_request, f)
        with self.assertRaises(ValueError):
            rc.encode_request("REVOKE", 1, reason="a\0b")


class ImportRecords(unittest.TestCase):
    def test_layout(self):
        h = bytes(range(32))
        rec = rc.encode_import_record("8912230200031010008f", 1, cert_sha256=h)
        self.assertEqual(len(rec), 72)
        self.assertEqual(rec, struct.pack(">I", 20) + b"8912230200031010008f" +
                         struct.pack(">II", 1, 32) + h + struct.pack(">II", 0, 0))
        with self.assertRaises(ValueError):
            rc.encode_import_record("89", 1, cert_sha256=h[:31])
        with self.assertRaises(ValueError):
            rc.encode_import_record("a" * 65, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
