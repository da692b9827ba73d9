"""The `regsign` CLI (C, over libregsign-client) against a fake server
written with the Python codec: every command's request fields, output and
exit status, refusals, and connection failures. It is also a cross-check of
the C client against the independent Python codec over a real socket.

Also checks the Python Client's own pipelining against the same server.
"""

import base64
import json
import os
import re
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regsign_client as rc  # noqa: E402

BIN_DIR = os.environ.get("REGSIGN_BIN_DIR")


def regsign_path():
    if not BIN_DIR:
        raise RuntimeError("REGSIGN_BIN_DIR is not set (run through ctest)")
    prog = os.path.join(BIN_DIR, "regsign")
    if not os.access(prog, os.X_OK):
        raise RuntimeError("%s is missing: build the regsign target" % prog)
    return prog


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True,
                          capture_output=True, timeout=60).stdout


def pem_blocks(text, label):
    """DER bytes of every PEM block with this label in text."""
    pattern = r"-----BEGIN %s-----\n(.*?)-----END %s-----" % (label, label)
    return [base64.b64decode(b) for b in re.findall(pattern, text, re.S)]


def dname_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class FakeServer:
    """Answers every request through self.handler(op, id, fields) → frame
    bytes, or None for no reply, or "close" to hang up. Records requests."""

    def __init__(self, path):
        self.requests = []
        self.handler = None
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                buf = bytearray()
                while True:
                    size = rc.frame_size(buf, rc.REQUEST_MAX)
                    if size is None or len(buf) < size:
                        chunk = self.request.recv(1 << 16)
                        if not chunk:
                            return
                        buf += chunk
                        continue
                    op, req_id, fields = rc.decode_request(bytes(buf[:size]))
                    del buf[:size]
                    outer.requests.append((op, req_id, fields))
                    out = outer.handler(op, req_id, fields)
                    if out == "close":
                        return
                    if out is not None:
                        self.request.sendall(out)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prog = regsign_path()
        cls.tmp = tempfile.TemporaryDirectory(prefix="regsign-cli-")
        d = cls.tmp.name
        cls.sock = os.path.join(d, "regsignd.sock")
        cls.server = FakeServer(cls.sock)
        # A real CSR and certificate, so the CLI's PEM is checked by OpenSSL.
        cls.key = os.path.join(d, "dev.key")
        cls.csr_pem = os.path.join(d, "dev.csr")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-subj", "/CN=device", "-keyout", cls.key, "-out", cls.csr_pem)
        cls.csr_der = openssl("req", "-in", cls.csr_pem, "-outform", "DER")
        cls.csr_der_path = os.path.join(d, "dev.csr.der")
        with open(cls.csr_der_path, "wb") as f:
            f.write(cls.csr_der)
        cert_pem = os.path.join(d, "dev.pem")
        openssl("req", "-x509", "-key", cls.key, "-subj", "/CN=1.89.iotregistry.test",
                "-days", "1", "-out", cert_pem)
        cls.cert_der = openssl("x509", "-in", cert_pem, "-outform", "DER")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.server.requests.clear()
        self.server.handler = self.answer

    def answer(self, op, req_id, f):
        """Default behaviour of the fake daemon."""
        if op == "HELLO":
            return rc.encode_reply(op, req_id, version=1, max_frame=262144, server="fake 9")
        if op in ("ISSUE", "REISSUE"):
            index = f.get("index") or 1 if op == "ISSUE" else f["old_index"] + 1
            return rc.encode_reply(op, req_id, cert_der=self.cert_der,
                                   chain=[b"\x30\x01\xaa", b"\x30\x01\xbb"],
                                   serial_hex="5f0e", zone_serial=2024, index=index)
        if op == "REVOKE":
            return rc.encode_reply(op, req_id, serial_hex=f["serial_hex"].lower() or "77",
                                   revoked_at=1700000000, zone_serial=2025)
        if op == "CRL":
            return rc.encode_reply(op, req_id, crl_der=b"\x30\x03crl")
        if op == "CHAIN":
            return rc.encode_reply(op, req_id, chain=[self.cert_der, b"\x30\x00"])
        if op in ("STATUS", "ZONE_STATUS"):
            return rc.encode_reply(op, req_id, json='{"op":"%s","keys":[{"role":"zsk"}],'
                                                    '"empty":{}}' % op)
        if op in ("PUBLISH", "UNPUBLISH"):
            return rc.encode_reply(op, req_id, zone_serial=4242)
        if op == "SIGN_RRSET":
            rdata = (struct.pack(">HBBIIIH", 1, 13, 3, 3600, 1800000000, 1700000000, 12345)
                     + dname_wire("asp.test.") + bytes(range(64)))
            rr = (dname_wire("www.asp.test.") + struct.pack(">HHIH", 46, 1, 3600, len(rdata))
                  + rdata)
            return rc.encode_reply(op, req_id, rrsig_wire=rr)
        return rc.encode_error(req_id, "INTERNAL", "unexpected")

    def run_cli(self, *args, sock=True, env=None, text=True):
        """Runs regsign; fails the test on any sanitizer report, since an
        ASan exit status could pass for the CLI's own."""
        cmd = [self.prog] + (["-s", self.sock] if sock else []) + list(args)
        if env is None:
            env = dict(os.environ)
            env.pop("REGSIGN_SOCKET", None)
        p = subprocess.run(cmd, capture_output=True, text=text, timeout=60, env=env)
        err = p.stderr if text else p.stderr.decode("utf-8", "replace")
        self.assertNotIn("Sanitizer", err)
        self.assertNotIn("runtime error", err)
        return p

    def only_request(self):
        self.assertEqual(len(self.server.requests), 1)
        return self.server.requests[0]

    # ---- commands ----

    def test_hello(self):
        p = self.run_cli("hello")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("server: fake 9", p.stdout)
        self.assertIn("max-frame: 262144", p.stdout)
        op, _, f = self.only_request()
        self.assertEqual((op, f["min_version"], f["max_version"]), ("HELLO", 1, 1))

    def test_issue_pem_csr(self):
        p = self.run_cli("issue", "--device", "8912230200031010008f", "--index", "3",
                         "--profile", "device", "--csr", self.csr_pem)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(pem_blocks(p.stdout, "CERTIFICATE"), [self.cert_der])
        self.assertIn("serial: 5f0e\nindex: 3\nzone-serial: 2024\n", p.stdout)
        op, _, f = self.only_request()
        self.assertEqual(op, "ISSUE")
        self.assertEqual(f, {"device_id": "8912230200031010008f", "index": 3,
                             "profile": "device", "csr_der": self.csr_der})
        # OpenSSL reads what the CLI printed.
        subj = openssl("x509", "-noout", "-subject", data=p.stdout.encode())
        self.assertIn(b"1.89.iotregistry.test", subj)

    def test_issue_der_csr_out_file_with_chain(self):
        out = os.path.join(self.tmp.name, "out.pem")
        p = self.run_cli("issue", "--device", "89", "--csr", self.csr_der_path, "--out", out,
                         "--with-chain")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("BEGIN", p.stdout)
        self.assertIn("index: 1\n", p.stdout)
        with open(out) as fh:
            blocks = pem_blocks(fh.read(), "CERTIFICATE")
        self.assertEqual(blocks, [self.cert_der, b"\x30\x01\xaa", b"\x30\x01\xbb"])
        op, _, f = self.only_request()
        self.assertEqual((f["index"], f["profile"], f["csr_der"]), (0, "", self.csr_der))

    def test_issue_refused(self):
        self.server.handler = lambda op, i, f: rc.encode_error(
            i, "DENIED", "rule callers[0].profiles: profile x not allowed")
        p = self.run_cli("issue", "--device", "89", "--profile", "x", "--csr", self.csr_pem)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.stderr.strip(),
                         "regsign: DENIED: rule callers[0].profiles: profile x not allowed")

    def test_reissue(self):
        p = self.run_cli("reissue", "--device", "89", "--old-index", "4", "--csr", self.csr_pem)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("index: 5\n", p.stdout)
        op, _, f = self.only_request()
        self.assertEqual((op, f["old_index"]), ("REISSUE", 4))
        # --old-index is required; --index is not reissue's option.
        self.assertEqual(self.run_cli("reissue", "--device", "89", "--csr",
                                      self.csr_pem).returncode, 2)
        self.assertEqual(self.run_cli("reissue", "--device", "89", "--index", "4", "--csr",
                                      self.csr_pem).returncode, 2)

    def test_revoke(self):
        p = self.run_cli("revoke", "--device", "89", "--serial", "0A1B", "--reason",
                         "keyCompromise")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("serial: 0a1b\n", p.stdout)
        self.assertIn("revoked-at: 2023-11-14T22:13:20Z (1700000000)\n", p.stdout)
        self.assertIn("zone-serial: 2025\n", p.stdout)
        op, _, f = self.only_request()
        self.assertEqual(f, {"device_id": "89", "index": 0, "serial_hex": "0A1B",
                             "reason": "keyCompromise"})
        self.server.requests.clear()
        p = self.run_cli("revoke", "--device", "89", "--index", "2", "--reason", "superseded")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.only_request()[2]["index"], 2)

    def test_revoke_usage(self):
        for args in (["--device", "89", "--reason", "x"],
                     ["--device", "89", "--index", "1"],
                     ["--index", "1", "--reason", "x"],
                     ["--device", "89", "--index", "zero", "--reason", "x"],
                     ["--device", "89", "--index", "1", "--reason", "x", "extra"]):
            p = self.run_cli("revoke", *args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("usage: regsign revoke", p.stderr)
        self.assertEqual(self.server.requests, [])

    def test_crl_and_chain(self):
        p = self.run_cli("crl")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(pem_blocks(p.stdout, "X509 CRL"), [b"\x30\x03crl"])
        p = self.run_cli("crl", "--der", text=False)
        self.assertEqual((p.returncode, p.stdout), (0, b"\x30\x03crl"))
        p = self.run_cli("chain")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(pem_blocks(p.stdout, "CERTIFICATE"), [self.cert_der, b"\x30\x00"])
        self.assertEqual(self.run_cli("chain", "--der").returncode, 2)

    def test_status(self):
        p = self.run_cli("status")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout),
                         {"op": "STATUS", "keys": [{"role": "zsk"}], "empty": {}})
        self.assertIn('\n  "keys": [\n    {\n      "role": "zsk"', p.stdout)
        p = self.run_cli("zone-status", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, '{"op":"ZONE_STATUS","keys":[{"role":"zsk"}],"empty":{}}\n')

    def test_publish_unpublish(self):
        p = self.run_cli("publish", "--owner", "x._asp", "--type", "TXT", "--ttl", "300",
                         "--rdata", '"hello world"')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "zone-serial: 4242\n")
        self.assertEqual(self.only_request(), ("PUBLISH", 1, {
            "owner": "x._asp", "rrtype": "TXT", "ttl": 300, "rdata": '"hello world"'}))
        self.server.requests.clear()
        p = self.run_cli("unpublish", "--owner", "x._asp", "--type", "TXT")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.only_request()[2], {"owner": "x._asp", "rrtype": "TXT",
                                                  "ttl": 0, "rdata": ""})
        self.assertEqual(self.run_cli("unpublish", "--owner", "a", "--type", "TXT", "--ttl",
                                      "5").returncode, 2)
        self.assertEqual(self.run_cli("publish", "--owner", "a", "--type", "TXT").returncode, 2)

    def test_sign_rrset(self):
        rrset = os.path.join(self.tmp.name, "rrset.zone")
        with open(rrset, "w") as fh:
            fh.write("; two A records, one relative name\n"
                     "www 3600 IN A 192.0.2.1\n"
                     "www.asp.test. 3600 IN A 192.0.2.2\n")
        before = int(time.time())
        p = self.run_cli("sign-rrset", "--zone", "asp.test.", "--rrset", rrset,
                         "--inception", "20240101000000", "--expiration", "+3600")
        self.assertEqual(p.returncode, 0, p.stderr)
        op, _, f = self.only_request()
        self.assertEqual((op, f["zone"], f["inception"]), ("SIGN_RRSET", "asp.test.", 1704067200))
        self.assertTrue(before + 3600 <= f["expiration"] <= int(time.time()) + 3600)
        want = b"".join(dname_wire("www.asp.test.") + struct.pack(">HHIH", 1, 1, 3600, 4)
                        + bytes([192, 0, 2, last]) for last in (1, 2))
        self.assertEqual(f["rrset_wire"], want)
        words = p.stdout.split()
        self.assertEqual(words[:9], ["www.asp.test.", "3600", "IN", "RRSIG", "A", "13", "3",
                                     "3600", "20270115080000"])
        self.assertIn("asp.test.", words)

    # ---- failures ----

    def test_no_socket(self):
        p = self.run_cli("status", sock=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("REGSIGN_SOCKET", p.stderr)
        env = dict(os.environ, REGSIGN_SOCKET=self.sock)
        p = self.run_cli("status", "--json", sock=False, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_connect_failure(self):
        missing = os.path.join(self.tmp.name, "missing.sock")
        p = self.run_cli("-s", missing, "status", sock=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn(missing, p.stderr)

    def test_server_hangs_up(self):
        self.server.handler = lambda op, i, f: "close"
        p = self.run_cli("chain")
        self.assertEqual(p.returncode, 3)
        self.assertIn("closed", p.stderr)

    def test_malformed_reply(self):
        self.server.handler = lambda op, i, f: struct.pack(">IBIB", 6, 0x80, i, 99)
        p = self.run_cli("status")
        self.assertEqual(p.returncode, 3)
        self.assertIn("malformed", p.stderr)

    def test_timeout(self):
        self.server.handler = lambda op, i, f: None
        start = time.monotonic()
        p = self.run_cli("-t", "1", "crl")
        self.assertEqual(p.returncode, 3)
        self.assertIn("timed out", p.stderr)
        self.assertLess(time.monotonic() - start, 30)

    def test_local_errors_and_usage(self):
        p = self.run_cli("issue", "--device", "89", "--csr", "/nonexistent.csr")
        self.assertEqual(p.returncode, 4)
        self.assertIn("/nonexistent.csr", p.stderr)
        notcsr = os.path.join(self.tmp.name, "not.csr")
        with open(notcsr, "w") as fh:
            fh.write("hello\n")
        self.assertEqual(self.run_cli("issue", "--device", "89", "--csr", notcsr).returncode, 4)
        p = self.run_cli("issue", "--device", "x" * 100, "--csr", self.csr_pem)
        self.assertEqual(p.returncode, 4)
        self.assertIn("field longer", p.stderr)
        self.assertEqual(self.run_cli("frobnicate").returncode, 2)
        self.assertEqual(self.run_cli().returncode, 2)
        p = self.run_cli("help")
        self.assertEqual(p.returncode, 0)
        for cmd in ("issue", "revoke", "reissue", "crl", "chain", "status", "zone-status",
                    "publish", "unpublish", "sign-rrset"):
            self.assertRegex(p.stdout, r"\n  %s " % cmd)
        self.assertEqual(self.server.requests, [])


class PythonClientTest(unittest.TestCase):
    """The Python Client itself: pipelining, refusals, raw frames."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="regsign-py-")
        self.sock = os.path.join(self.tmp.name, "s.sock")
        self.server = FakeServer(self.sock)
        self.server.handler = self.answer

    def tearDown(self):
        self.server.stop()
        self.tmp.cleanup()

    @staticmethod
    def answer(op, req_id, f):
        if op == "ISSUE" and f["device_id"] == "refuse":
            return rc.encode_error(req_id, "RATE_LIMITED", "slow down")
        if op == "ISSUE":
            return rc.encode_reply(op, req_id, cert_der=f["csr_der"], chain=[],
                                   serial_hex="%x" % req_id, zone_serial=f["index"], index=1)
        return rc.encode_reply("PUBLISH", req_id, zone_serial=7)

    def test_pipelined_and_refused(self):
        with rc.Client(self.sock, timeout=30) as c:
            ids = [c.send("ISSUE", device_id="89", index=n, profile="", csr_der=b"%d" % n)
                   for n in range(1, 201)]
            got = {}
            for _ in ids:
                r = c.recv()
                self.assertTrue(r.ok)
                got[r.id] = r.fields
            self.assertEqual(sorted(got), ids)
            for n, i in enumerate(ids, 1):
                self.assertEqual(got[i]["zone_serial"], n)
                self.assertEqual(got[i]["cert_der"], b"%d" % n)
            self.assertEqual(c.outstanding, {})
            with self.assertRaises(rc.RegsignError) as cm:
                c.issue("refuse", 1, "", b"")
            self.assertEqual((cm.exception.name, cm.exception.message), ("RATE_LIMITED",
                                                                         "slow down"))
            self.assertTrue(cm.exception.retryable)
            self.assertEqual(c.publish("a", "TXT", 1, "x"), 7)

    def test_raw_frames(self):
        with rc.Client(self.sock, timeout=30) as c:
            c.send_raw(rc.encode_request("PUBLISH", 9, owner="a", rrtype="TXT", ttl=1,
                                         rdata="x"))
            r = rc.decode_reply(c.recv_frame())
            self.assertEqual((r.ok, r.id, r.fields), (True, 9, {"zone_serial": 7}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
