"""Shared helpers of the attack tests (tests/attack/test_attack_*.py).

They build on tests/integration/daemon_lib.py (one fresh dev-setup per test
program, the real regsignd on it, the stdlib client of docs/PROTOCOL.md) and
add what attacking the running daemon needs: a pool of CSRs made ahead of the
load, a ledger of what the daemon acknowledged, checks of that ledger against
the restarted daemon and its audit log, the fault-injection module in the
configuration, and kill -9 of the daemon with its HSM process.

A missing tool is a failure with a clear message, never a skip. Long variants
run only when REGSIGN_ATTACK_LONG=1.
"""

import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from daemon_lib import (BIN_DIR, BUILD_DIR, SOURCE_DIR, ZONE, Daemon,  # noqa: E402,F401
                        TestFailure, check, main, make_csr, need_tool, run)
import regsign_client  # noqa: E402
from net_util import free_port  # noqa: E402,F401 (a DNS port: free for TCP and UDP)
from regsign_client import Client, ConnectionClosed, RegsignError  # noqa: E402,F401

LONG = os.environ.get("REGSIGN_ATTACK_LONG", "") not in ("", "0")
FAULT_MODULE = os.path.join(BUILD_DIR, "lib", "libregsign-p11fault.so")
SOFTHSM_MODULE = os.environ.get("REGSIGN_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")

# Errors a connection can end in when the daemon dies under it.
CONN_ERRORS = (ConnectionClosed, ConnectionResetError, BrokenPipeError,
               ConnectionRefusedError, FileNotFoundError, socket.timeout)


def variant_args(state):
    """The command line without `--json FILE`: the variant's name and options.
    The file name, if any, goes to state["json_out"], where the test writes
    its figures for bench/run.sh."""
    args = sys.argv[1:]
    if "--json" in args:
        i = args.index("--json")
        check(i + 1 < len(args), "--json needs a file name")
        state["json_out"] = args[i + 1]
        del args[i:i + 2]
    return args


def sanitized():
    """True in the REGSIGN_SANITIZE=ON build (tests/attack.cmake says so)."""
    return os.environ.get("REGSIGN_SANITIZE") in ("1", "ON", "TRUE")


def asan_options(env, *opts):
    """Appends ASan options to env's ASAN_OPTIONS."""
    old = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = ":".join([o for o in [old] + list(opts) if o])


def preload_env(base_env, libs):
    """base_env with `libs` preloaded. An ASan-built program refuses to run
    when its runtime is not first in the library list; preloading libasan
    itself would also put it into every other program started with this
    environment (bash under libasan and libfaketime deadlocks at start), so
    in the sanitizer build the order check is switched off instead."""
    env = dict(base_env)
    env["LD_PRELOAD"] = ":".join(libs)
    if sanitized():
        asan_options(env, "verify_asan_link_order=0")
    return env


def pids_children(pid):
    """PIDs of the direct children of pid (from /proc, no tools needed)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name in parentheses.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def rss_kib(pid):
    """Resident set size of pid in KiB (VmRSS), or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---- CSRs ----

def _one_csr(workdir, i):
    key = os.path.join(workdir, "k%05d.pem" % i)
    out = os.path.join(workdir, "r%05d.der" % i)
    p = run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-subj", "/CN=device %d" % i, "-outform", "DER",
             "-out", out])
    check(p.returncode == 0, "openssl req failed: %s" % p.stderr)
    with open(out, "rb") as f:
        return f.read(), key


def csr_pool(workdir, n):
    """n CSRs, each with its own P-256 key: a list of (der, key file). Made
    in parallel with the openssl command line, before any load starts."""
    need_tool("openssl")
    d = tempfile.mkdtemp(prefix="csrs-", dir=workdir)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        return list(ex.map(lambda i: _one_csr(d, i), range(n)))


# ---- the daemon ----

class AttackDaemon(Daemon):
    """daemon_lib.Daemon with what the attacks need on top."""

    def __init__(self, name, rate_limit=False):
        super().__init__(name)
        need_tool("openssl")
        # Parallel test programs must not fight over the DNS port once the
        # zone is served; give each its own.
        self.dns_port = free_port()
        self.edit(self.config, 'listen: ["127.0.0.1:5353"]',
                  'listen: ["127.0.0.1:%d"]' % self.dns_port)
        if not rate_limit:
            self.edit(self.policy, "    rate-limit: { per-second: 50, burst: 100 }",
                      "    # no rate limit: the attacks send thousands of requests")
        self.fault_ctl = None
        self.hsm_pids = []

    def config_text(self):
        with open(self.config) as f:
            return f.read()

    def set_config(self, text):
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config)

    def set_queue_depth(self, n):
        cfg = re.sub(r"(?m)^  queue-depth: \d+$", "  queue-depth: %d" % n, self.config_text())
        self.set_config(cfg)

    def use_fault_module(self, extra_env=None):
        """Puts libregsign-p11fault.so in front of SoftHSM (tests/fault/README.md).
        config_load's module allow-list is /usr/lib, /usr/lib64, /usr/local/lib
        plus each `--module-dir DIR` given to regsignd: the build's lib dir is
        passed that way."""
        check(os.path.exists(FAULT_MODULE), "the fault module %s is built" % FAULT_MODULE)
        self.fault_ctl = os.path.join(self.base, "p11fault.ctl")
        self.fault("# pass-through\n")
        cfg = self.config_text()
        module = re.search(r"(?m)^  module: (.*)$", cfg).group(1)
        cfg = cfg.replace("  module: %s\n" % module, "  module: %s\n" % FAULT_MODULE)
        env = "    P11FAULT_MODULE: %s\n    P11FAULT_CONTROL: %s\n" % (module, self.fault_ctl)
        for k, v in (extra_env or {}).items():
            env += "    %s: %s\n" % (k, v)
        cfg = cfg.replace("  environment:\n", "  environment:\n" + env)
        self.set_config(cfg)
        self.extra_args = ["--module-dir", os.path.dirname(FAULT_MODULE)]

    def fault(self, text):
        """Rewrites the p11fault control file atomically (write, then rename)."""
        tmp = self.fault_ctl + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.fault_ctl)

    def fault_stats(self):
        path = self.fault_ctl + ".stats"
        stats = {}
        try:
            with open(path) as f:
                for line in f:
                    k, _, v = line.strip().partition(" ")
                    if v:
                        stats[k] = int(v)
        except OSError:
            pass
        return stats

    def start(self, args=(), env=None, wait=True, timeout=60):
        proc = super().start(args, env, wait=False)
        if wait:
            self.wait_ready(timeout)
        return proc

    def kill9(self, hsm_grace=30):
        """SIGKILL the front process. Its HSM process must notice the closed
        socketpair and exit by itself within hsm_grace seconds (an orphan
        holding the token would keep the next daemon from its keys)."""
        kids = pids_children(self.proc.pid)
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        end = time.time() + hsm_grace
        left = [p for p in kids if pid_alive(p)]
        while left and time.time() < end:
            time.sleep(0.02)
            left = [p for p in kids if pid_alive(p)]
        for p in left:
            # Our daemon's own child, by PID: clean up before failing.
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        check(not left, "the HSM process %r outlived its killed front by %ds" % (left, hsm_grace))
        self.check_sanitizers()

    def audit_quiet(self, timeout=60):
        """Waits until the live audit log stops growing: its head unchanged over
        half a second and the file ending in a whole line. A run of lines goes
        out in one write(), and a reader racing that write can see it cut; the
        requests a flood left in flight are still being audited after it."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            head = self.status()["audit"]["head"]
            with open(self.audit, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                whole = size == 0
                if size > 0:
                    f.seek(size - 1)
                    whole = f.read(1) == b"\n"
            if head == last and whole:
                return head
            last = head
            time.sleep(0.5)
        raise TestFailure("the audit log did not settle within %ds" % timeout)

    def audit_verify(self, head=None):
        """`regsign audit verify --key out/audit.pub [--head H]` on the audit file(s),
        once the live log is quiet (audit_quiet)."""
        if self.proc is not None and self.proc.poll() is None:
            self.audit_quiet()
        files = sorted(f for f in os.listdir(os.path.dirname(self.audit))
                       if f.startswith(os.path.basename(self.audit) + "."))
        files = [os.path.join(os.path.dirname(self.audit), f) for f in files] + [self.audit]
        cmd = [self.regsign, "audit", "verify", "--key", os.path.join(self.out, "audit.pub")]
        if head:
            cmd += ["--head", head]
        p = run(cmd + files)
        check(p.returncode == 0, "regsign audit verify failed (exit %d): %s%s" %
              (p.returncode, p.stdout, p.stderr))

    def zone_file(self):
        m = re.search(r"(?m)^  zone-file: (.*)$", self.config_text())
        return m.group(1).strip() if m else None

    def write_zone_file(self, timeout=30):
        """SIGUSR1 makes the running daemon write state.zone-file now; returns
        once a new file is in place (it is replaced atomically by rename)."""
        path = self.zone_file()

        def stamp():
            try:
                st = os.stat(path)
                return (st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                return None
        before = stamp()
        self.proc.send_signal(signal.SIGUSR1)
        end = time.time() + timeout
        while stamp() in (before, None):
            check(time.time() < end, "no new zone file %s %ds after SIGUSR1" % (path, timeout))
            check(self.proc.poll() is None, "the daemon exited after SIGUSR1")
            time.sleep(0.02)
        return path

    def verify_zone_if_present(self, faketime=None, write=True):
        """With the daemon running, has it write the zone file (SIGUSR1); then,
        when the configured zone file exists, ldns-verify-zone must pass on it
        (at the faked date if given, as `faketime -f` takes it)."""
        if write and self.proc is not None and self.proc.poll() is None:
            self.write_zone_file()
        path = self.zone_file()
        if not path or not os.path.exists(path):
            return False
        cmd = [need_tool("ldns-verify-zone"), path]
        if faketime:
            cmd = [need_tool("faketime"), "-f", faketime] + cmd
        p = run(cmd)
        check(p.returncode == 0, "ldns-verify-zone %s failed: %s%s" % (path, p.stdout,
                                                                      p.stderr))
        return True

    def zone_device_records(self):
        """{(device, index): [rdata of its CERT records]} from the zone file."""
        out = {}
        zone = "." + ZONE + "."
        with open(self.zone_file()) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 5 or line.startswith(";"):
                    continue
                owner = parts[0].lower()
                if not owner.endswith(zone):
                    continue
                labels = owner[:-len(zone)].split(".")
                if len(labels) != 2 or not labels[0].isdigit():
                    continue
                rtype_at = 3 if parts[2].upper() == "IN" else 2
                if parts[rtype_at].upper() != "CERT":
                    continue
                out.setdefault((labels[1], int(labels[0])), []).append(
                    " ".join(parts[rtype_at + 1:]))
        return out


# ---- what the daemon acknowledged ----

class Ledger:
    """What clients sent and what the daemon answered, across restarts.

    issued[(dev, idx)] = (csr, serial_hex, cert_der)   acknowledged ISSUE
    revoked[(dev, idx)] = (serial_hex, revoked_at)     acknowledged REVOKE
    unsure: (op, dev, idx, csr) sent without a reply (connection lost)
    refused: (op, dev, idx, error name)
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.issued = {}
        self.revoked = {}
        self.unsure = []
        self.refused = []
        self.csr_of = {}

    def ack_issue(self, dev, idx, csr, rep):
        with self.lock:
            old = self.issued.get((dev, idx))
            if old is not None:
                check(old[1] == rep["serial_hex"] and old[2] == rep["cert_der"],
                      "%s/%d acknowledged twice with different certificates" % (dev, idx))
            self.issued[(dev, idx)] = (csr, rep["serial_hex"], rep["cert_der"])

    def ack_revoke(self, dev, idx, rep):
        with self.lock:
            old = self.revoked.get((dev, idx))
            if old is not None:
                check(old == (rep["serial_hex"], rep["revoked_at"]),
                      "%s/%d: revocation acknowledged twice differently: %r vs %r" %
                      (dev, idx, old, rep))
            self.revoked[(dev, idx)] = (rep["serial_hex"], rep["revoked_at"])


def _pipelined(c, calls, window=64):
    """Sends calls [(op, fields)] over one connection with at most `window`
    outstanding; returns the replies in the order of `calls`."""
    replies = [None] * len(calls)
    ids = {}
    sent = 0
    done = 0
    while done < len(calls):
        while sent < len(calls) and sent - done < window:
            op, fields = calls[sent]
            ids[c.send(op, **fields)] = sent
            sent += 1
        rep = c.recv()
        check(rep.id in ids, "reply to an unknown request id %r" % rep.id)
        replies[ids.pop(rep.id)] = rep
        done += 1
    return replies


def check_ledger(d, ledger, unsure_retry=True, only=None):
    """Asks the (restarted) daemon about every acknowledged change (or those
    of the devices in `only`): re-ISSUE with the same CSR returns the same
    certificate, REVOKE again answers as the first time. Requests left
    without a reply are then retried: whatever the daemon answers must agree
    with the rest, and becomes acknowledged. Returns how many acknowledged
    changes were checked."""
    issued = sorted(i for i in ledger.issued.items() if only is None or i[0][0] in only)
    revoked = sorted(i for i in ledger.revoked.items() if only is None or i[0][0] in only)
    calls = [("ISSUE", dict(device_id=dev, index=idx, profile="device", csr_der=csr))
             for (dev, idx), (csr, _, _) in issued]
    calls += [("REVOKE", dict(device_id=dev, index=idx, serial_hex="", reason="keyCompromise"))
              for (dev, idx), _ in revoked]
    with d.client() as c:
        replies = _pipelined(c, calls)
    for ((dev, idx), (csr, serial, der)), rep in zip(issued, replies[:len(issued)]):
        check(rep.ok, "%s/%d: re-ISSUE of an acknowledged certificate refused: %s %s" %
              (dev, idx, rep.name, rep.message))
        check(rep.fields["serial_hex"] == serial and rep.fields["cert_der"] == der,
              "%s/%d: acknowledged certificate %s is not what the daemon now has (%s)" %
              (dev, idx, serial, rep.fields["serial_hex"]))
    for ((dev, idx), (serial, at)), rep in zip(revoked, replies[len(issued):]):
        check(rep.ok, "%s/%d: REVOKE again of an acknowledged revocation refused: %s %s" %
              (dev, idx, rep.name, rep.message))
        check(rep.fields["serial_hex"] == serial and rep.fields["revoked_at"] == at,
              "%s/%d: acknowledged revocation (%s at %d) answered differently: %r" %
              (dev, idx, serial, at, rep.fields))
    if unsure_retry and ledger.unsure:
        # Issues first: a revocation left unsure may follow an issue left unsure.
        unsure = sorted(ledger.unsure, key=lambda u: u[0] != "issue")
        with d.client() as c:
            for op, dev, idx, csr in unsure:
                if op == "issue":
                    ledger.ack_issue(dev, idx, csr, c.issue(dev, idx, "device", csr))
                    continue
                try:
                    ledger.ack_revoke(dev, idx, c.revoke(dev, idx, reason="keyCompromise"))
                except RegsignError as e:
                    check(e.name == "NOT_FOUND" and (dev, idx) not in ledger.issued,
                          "%s/%d: retried REVOKE refused: %s" % (dev, idx, e))
        ledger.unsure = []
    return len(calls)


def audit_invariants(d, ledger):
    """The audit file agrees with the ledger: each device/index has at most
    one successful issue result, and it carries the acknowledged serial; each
    acknowledged revocation has a successful revoke result for its serial."""
    issue_ok = {}
    revoke_ok = {}
    for r in d.audit_records():
        if r.get("type") != "result" or r.get("error") != 0:
            continue
        key = (r.get("device"), r.get("index"))
        if r.get("op") == "issue":
            check(key not in issue_ok, "device %s index %s issued twice: serials %s and %s" %
                  (key[0], key[1], issue_ok.get(key), r.get("serial")))
            issue_ok[key] = r.get("serial")
        elif r.get("op") == "revoke":
            check(key not in revoke_ok, "device %s index %s revoked twice" % key)
            revoke_ok[key] = r.get("serial")
    for key, (_, serial, _) in ledger.issued.items():
        check(issue_ok.get(key) == serial, "acknowledged issue %s/%d (%s) has no matching audit "
              "result (found %s)" % (key[0], key[1], serial, issue_ok.get(key)))
    for key, (serial, _) in ledger.revoked.items():
        check(revoke_ok.get(key) == serial, "acknowledged revocation %s/%d has no audit result" %
              key)
    return len(issue_ok), len(revoke_ok)


def check_zone_against_ledger(d, ledger):
    """The zone file (just written) publishes every acknowledged certificate
    not revoked, as the seed's `CERT 1 0 0 <base64 SHA-256 of the DER>`, and
    no acknowledged revoked one. Returns (published, removed) counts."""
    import base64
    import hashlib
    recs = d.zone_device_records()
    published = removed = 0
    for (dev, idx), (_, serial, der) in ledger.issued.items():
        got = recs.get((dev, idx))
        if (dev, idx) in ledger.revoked:
            check(got is None, "revoked %s/%d is still in the zone: %r" % (dev, idx, got))
            removed += 1
            continue
        want = "1 0 0 " + base64.b64encode(hashlib.sha256(der).digest()).decode()
        check(got is not None, "acknowledged %s/%d (%s) is not in the zone" % (dev, idx, serial))
        # ldns writes certificate type 1 by its mnemonic (RFC 4398 §2.1).
        check(any(re.sub(r"^PKIX ", "1 ", r).split() == want.split() for r in got),
              "%s/%d: zone has %r, the certificate's record is %r" % (dev, idx, got, want))
        published += 1
    return published, removed


def store_certs(d):
    """(device, idx) -> serial hex of every row in the store's certs table,
    read-only (the daemon may be running: SQLite WAL lets a reader in)."""
    import sqlite3
    path = re.search(r"(?m)^  database: (.*)$", d.config_text()).group(1).strip()
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    try:
        rows = db.execute("SELECT device, idx, hex(serial) FROM certs").fetchall()
    finally:
        db.close()
    out = {}
    for dev, idx, serial in rows:
        check((dev, idx) not in out, "two certificates for %s/%d in the store" % (dev, idx))
        out[(dev, idx)] = serial.lower().lstrip("0")
    return out


def device_id(round_no, k):
    """A well-formed 20-digit device id, distinct per (round, k)."""
    return "89%06d%012d" % (round_no % 1000000, k)


def hsm_state(d):
    with d.client(timeout=30) as c:
        return json.loads(c.status())["hsm"]["state"]


def wait_for(pred, timeout, what, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise TestFailure("timed out after %ss: %s" % (timeout, what))


def pick(seq, rnd=random):
    return seq[rnd.randrange(len(seq))]


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


# ---- load ----

class Load:
    """Client threads sending ISSUE (a new device each time) and, for some of
    the certificates, REVOKE, each on its own connection, until stop().
    Every request must get a reply: OK, or an error whose name is in
    `allowed` (anything else, or a lost connection, is recorded in
    self.errors). Results go to the ledger: acknowledged changes, requests
    left without a reply (ledger.unsure, which check_ledger retries), and
    refused ones in self.refused_issues [(dev, idx, name)]."""

    def __init__(self, d, ledger, csrs, clients=4, allowed=("UNAVAILABLE",), tag=1,
                 revoke_share=0.3, timeout=90, pause=0.0):
        self.d = d
        self.ledger = ledger
        self.csrs = csrs
        self.allowed = set(allowed)
        self.tag = tag
        self.revoke_share = revoke_share
        self.timeout = timeout
        self.pause = pause
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.counts = {}
        self.refused_issues = []
        self.log = []   # (time, op, result name)
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _count(self, op, name):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.log.append((time.time(), op, name))

    def _run(self, client_no):
        rnd = random.Random(client_no * 7919 + self.tag)
        try:
            self._session(client_no, rnd, [0])
        except Exception as e:  # noqa: BLE001 - a lost connection or a wrong answer
            self.errors.append("client %d: %r" % (client_no, e))

    def _session(self, client_no, rnd, k):
        """One connection's requests until stop(); k[0] counts this client's
        devices across connections. A lost connection raises (after the
        request without a reply went to ledger.unsure)."""
        with self.d.client(timeout=self.timeout) as c:
            while not self.stopping.is_set():
                k[0] += 1
                dev = device_id(self.tag, client_no * 1000000 + k[0])
                csr = self.csrs[(client_no * 31 + k[0]) % len(self.csrs)][0]
                try:
                    rep = c.issue(dev, 1, "device", csr)
                except RegsignError as e:
                    self._count("issue", e.name)
                    with self.lock:
                        self.refused_issues.append((dev, 1, e.name))
                    if e.name not in self.allowed:
                        self.errors.append("ISSUE %s: %s" % (dev, e))
                    continue
                except CONN_ERRORS:
                    # No reply: done or not, the ledger retries it later.
                    with self.ledger.lock:
                        self.ledger.unsure.append(("issue", dev, 1, csr))
                    raise
                self._count("issue", "OK")
                self.ledger.ack_issue(dev, 1, csr, rep)
                if rnd.random() < self.revoke_share:
                    try:
                        self.ledger.ack_revoke(dev, 1, c.revoke(dev, 1,
                                                                reason="keyCompromise"))
                        self._count("revoke", "OK")
                    except RegsignError as e:
                        self._count("revoke", e.name)
                        if e.name not in self.allowed:
                            self.errors.append("REVOKE %s: %s" % (dev, e))
                    except CONN_ERRORS:
                        with self.ledger.lock:
                            self.ledger.unsure.append(("revoke", dev, 1, None))
                        raise
                if self.pause:
                    time.sleep(self.pause)

    def stop(self, timeout=120):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout)
            if t.is_alive():
                self.errors.append("a client thread got no answer for %ds" % timeout)
        return self

    def ok_since(self, t0):
        with self.lock:
            return sum(1 for t, _, name in self.log if t >= t0 and name == "OK")


def check_refused_not_done(d, refused):
    """Requests answered with an error changed nothing (PROTOCOL §5): no
    certificate for their device/index is in the store."""
    stored = store_certs(d)
    for dev, idx, name in refused:
        check((dev, idx) not in stored, "ISSUE %s/%d was answered %s, yet the store holds its "
              "certificate %s" % (dev, idx, name, stored.get((dev, idx))))
