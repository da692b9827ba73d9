"""Shared helpers of regsignd's integration tests (tests/integration/test_daemon_*.py).

Each test program makes ONE fresh development setup with hsm-setup/dev-setup.sh
(a SoftHSM token, the example key ceremony, regsignd.yaml and policy.yaml) in a
temporary directory, starts the real regsignd on it, and talks to it through
the independent Python client tests/python/regsign_client.py. A missing tool is
a failure with a clear message, never a skip.

Environment (set by ctest, see tests/daemon.cmake): REGSIGN_BIN_DIR (regsignd,
regsign, regsign-ceremony), REGSIGN_SOURCE_DIR, REGSIGN_BUILD_DIR.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SOURCE_DIR = os.environ.get("REGSIGN_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))))
BIN_DIR = os.environ.get("REGSIGN_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
BUILD_DIR = os.environ.get("REGSIGN_BUILD_DIR", os.path.dirname(BIN_DIR))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "python"))

import regsign_client  # noqa: E402  (path set just above)
from regsign_client import Client, RegsignError  # noqa: E402,F401

DEVICE = "8912230200031010008F"   # the seed's ICCID, upper case on purpose
ZONE = "iotregistry.test"


class TestFailure(Exception):
    pass


def check(cond, what):
    """Asserts cond; the message says what was expected."""
    if not cond:
        raise TestFailure(what)


def need_tool(name):
    path = shutil.which(name)
    if path is None:
        raise TestFailure("required tool '%s' is not installed" % name)
    return path


def run(cmd, **kw):
    """Runs a command, returns CompletedProcess (text)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


# ---- CSRs made with the openssl command line ----

def _req(keyfile, subject, exts, workdir):
    out = os.path.join(workdir, "req.der")
    cmd = ["openssl", "req", "-new", "-key", keyfile, "-subj", subject, "-outform", "DER",
           "-out", out]
    for e in exts:
        cmd += ["-addext", e]
    p = run(cmd)
    check(p.returncode == 0, "openssl req failed: %s" % p.stderr)
    with open(out, "rb") as f:
        return f.read()


def make_csr(workdir, kind="p256", subject="/CN=evil.example.com/O=CSR Subject Never Copied",
             exts=("subjectAltName=DNS:evil.example.com,DNS:www.example.org",
                   "basicConstraints=critical,CA:TRUE",
                   "keyUsage=critical,keyCertSign,cRLSign",
                   "extendedKeyUsage=serverAuth,codeSigning")):
    """Returns (csr DER, key file). kind: p256, p384, rsa, explicit."""
    need_tool("openssl")
    fd, key = tempfile.mkstemp(dir=workdir, suffix=".key")
    os.close(fd)
    if kind == "p256":
        cmd = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    elif kind == "p384":
        cmd = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
    elif kind == "rsa":
        cmd = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    elif kind == "explicit":
        cmd = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-pkeyopt", "ec_param_enc:explicit"]
    else:
        raise ValueError(kind)
    p = run(cmd + ["-out", key])
    check(p.returncode == 0, "openssl genpkey (%s) failed: %s" % (kind, p.stderr))
    return _req(key, subject, list(exts), workdir), key


def flip_last_byte(der):
    """A CSR whose signature no longer verifies (the last byte is in it)."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


def der_to_pem(der, label="CERTIFICATE"):
    import base64
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


# ---- the daemon ----

class Daemon:
    """A development setup in a temp dir and the regsignd running on it."""

    def __init__(self, name):
        self.name = name
        need_tool("softhsm2-util")
        need_tool("pkcs11-tool")
        self.regsignd = os.path.join(BIN_DIR, "regsignd")
        self.regsign = os.path.join(BIN_DIR, "regsign")
        check(os.access(self.regsignd, os.X_OK), "%s is not built" % self.regsignd)
        check(os.access(self.regsign, os.X_OK), "%s is not built" % self.regsign)
        self.base = tempfile.mkdtemp(prefix="regsign-%s-" % name)
        self.dir = os.path.join(self.base, "dev")
        env = dict(os.environ, REGSIGN_BIN_DIR=BIN_DIR)
        p = run([os.path.join(SOURCE_DIR, "hsm-setup", "dev-setup.sh"), self.dir], env=env)
        check(p.returncode == 0, "dev-setup.sh failed:\n%s%s" % (p.stdout, p.stderr))
        self.config = os.path.join(self.dir, "regsignd.yaml")
        self.policy = os.path.join(self.dir, "policy.yaml")
        self.sock = os.path.join(self.dir, "regsignd.sock")
        self.audit = os.path.join(self.dir, "state", "audit.jsonl")
        self.out = os.path.join(self.dir, "out")
        self.log = os.path.join(self.base, "regsignd.log")
        self.proc = None
        self.extra_args = []

    def edit(self, path, old, new):
        with open(path) as f:
            text = f.read()
        check(old in text, "%s does not contain %r" % (path, old))
        with open(path, "w") as f:
            f.write(text.replace(old, new, 1))

    def start(self, args=(), env=None, wait=True):
        """Starts regsignd; returns once its socket answers (it is ready).
        Parallel test programs must not fight over the dev setup's DNS port:
        unless a test chose one, the listener takes any free port (ZONE_STATUS
        says which)."""
        with open(self.config) as f:
            if 'listen: ["127.0.0.1:5353"]' in f.read():
                self.edit(self.config, 'listen: ["127.0.0.1:5353"]', 'listen: ["127.0.0.1:0"]')
        logf = open(self.log, "a")
        logf.write("---- start %s\n" % time.strftime("%H:%M:%S"))
        logf.flush()
        self.proc = subprocess.Popen([self.regsignd, "-c", self.config] + self.extra_args +
                                     list(args), stdout=logf, stderr=subprocess.STDOUT,
                                     env=env or os.environ.copy())
        logf.close()
        if wait:
            self.wait_ready()
        return self.proc

    def wait_ready(self, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise TestFailure("regsignd exited with %s before it was ready:\n%s" %
                                  (self.proc.returncode, self.log_text()))
            if os.path.exists(self.sock):
                try:
                    with Client(self.sock, timeout=10) as c:
                        c.hello()
                    return
                except (OSError, regsign_client.ConnectionClosed):
                    pass
            time.sleep(0.05)
        raise TestFailure("regsignd not ready after %ds:\n%s" % (timeout, self.log_text()))

    def check_sanitizers(self):
        """Fails on any sanitizer report in the log (front or HSM process)."""
        text = self.log_text(full=True)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                at = max(0, text.index(marker) - 200)
                raise TestFailure("sanitizer report in the daemon's log:\n%s" %
                                  text[at:at + 4000])

    def wait_exit(self, timeout=60):
        try:
            code = self.proc.wait(timeout)
            self.check_sanitizers()
            return code
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure("regsignd did not exit within %ds:\n%s" % (timeout,
                                                                         self.log_text()))

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def log_text(self, full=False):
        try:
            with open(self.log) as f:
                text = f.read()
            return text if full else text[-8000:]
        except OSError:
            return ""

    def client(self, timeout=60):
        return Client(self.sock, timeout=timeout)

    def status(self):
        with self.client() as c:
            return json.loads(c.status())

    def hsm_pid(self):
        return self.status()["hsm"]["pid"]

    def zone_status(self):
        with self.client() as c:
            return json.loads(c.zone_status())

    def audit_records(self):
        with open(self.audit) as f:
            return [json.loads(line) for line in f if line.strip()]

    def sighup_and_wait(self, timeout=30):
        """SIGHUP; waits for the reload or reload-refused event and returns it."""
        before = len(self.audit_records())
        self.proc.send_signal(signal.SIGHUP)
        end = time.time() + timeout
        while time.time() < end:
            recs = self.audit_records()[before:]
            for r in recs:
                if r.get("type") == "event" and r.get("event") in ("reload", "reload-refused"):
                    return r
            time.sleep(0.05)
        raise TestFailure("no reload event after SIGHUP:\n%s" % self.log_text())

    def fresh_state(self, keep_as):
        """Stops the daemon and sets its state directory (store, audit log, zone
        file) aside as `keep_as` (a path under self.base), so that the next
        start() is a new daemon instance on the same token and CA: another
        registry's signer with the same keys (e.g. to import what it issued)."""
        self.stop()
        state = os.path.join(self.dir, "state")
        os.rename(state, keep_as)
        os.mkdir(state, 0o700)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.environ.get("REGSIGN_TEST_KEEP"):
            print("kept %s" % self.base)
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def wait_for(what, fn, timeout):
    """Polls fn() until it returns something true, and returns that; fails
    naming `what` after `timeout` seconds (a liveness bound)."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise TestFailure("not within %ds: %s" % (timeout, what))


def expect_refusal(fn, name, what):
    """Calls fn(), which must raise RegsignError with code `name`; returns it."""
    try:
        fn()
    except RegsignError as e:
        check(e.name == name, "%s: expected %s, got %s: %s" % (what, name, e.name, e.message))
        return e
    raise TestFailure("%s: expected %s, the daemon accepted it" % (what, name))


def last_denial(d, op=None, since=0, timeout=10):
    """The latest denied request record in the audit log (optionally of op,
    among records after the first `since`). Refusals the server answers by
    itself (framing, unknown peers) may reach the log just after the reply,
    so this waits up to `timeout` seconds for one to appear."""
    end = time.time() + timeout
    while True:
        for r in reversed(d.audit_records()[since:]):
            if r.get("type") == "request" and r.get("decision") == "deny" and \
                    (op is None or r.get("op") == op):
                return r
        if time.time() > end:
            raise TestFailure("no denial%s in the audit log" % (" of " + op if op else ""))
        time.sleep(0.05)


def main(tests, daemon):
    """Runs the tests in order; prints each result; exits 1 if any failed."""
    failed = 0
    try:
        for t in tests:
            start = time.time()
            try:
                t(daemon)
                print("ok   %s (%.1fs)" % (t.__name__, time.time() - start), flush=True)
            except Exception:  # noqa: BLE001 - report every kind of failure
                failed += 1
                print("FAIL %s\n%s" % (t.__name__, traceback.format_exc()), flush=True)
                print("---- regsignd log (tail)\n%s" % daemon.log_text(), flush=True)
        try:
            daemon.stop()
            daemon.check_sanitizers()
        except Exception:  # noqa: BLE001
            failed += 1
            print("FAIL final stop\n%s" % traceback.format_exc(), flush=True)
    finally:
        daemon.cleanup()
    print("%d of %d failed" % (failed, len(tests)) if failed else "all %d passed" % len(tests))
    sys.exit(1 if failed else 0)
