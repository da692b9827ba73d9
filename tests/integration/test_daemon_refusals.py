#!/usr/bin/env python3
"""regsignd refusals: each is refused with a clear error AND leaves an audit
line (decision deny, the rule that decided). One dev-setup for the program."""

import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (DEVICE, Daemon, SOURCE_DIR, check, expect_refusal,  # noqa: E402
                        flip_last_byte, last_denial, main, make_csr, run)
import regsign_client  # noqa: E402

STATE = {}


def t_start(d):
    d.extra_args = ["--checkpoint-interval", "1"]
    d.start()
    STATE["csr"], _ = make_csr(d.base)


def denied(d, op, rule_part, what, since=0):
    rec = last_denial(d, op, since)
    check(rule_part in rec["rule"], "%s: audit rule %r contains %r" % (what, rec["rule"],
                                                                       rule_part))
    return rec


def t_unknown_profile(d):
    with d.client() as c:
        e = expect_refusal(lambda: c.issue(DEVICE, 1, "server", STATE["csr"]), "DENIED",
                           "unknown profile")
    check("server" in e.message, "message names the profile: %s" % e.message)
    denied(d, "issue", "profiles", "unknown profile")


def t_bad_csr_signature(d):
    with d.client() as c:
        e = expect_refusal(lambda: c.issue(DEVICE, 1, "device", flip_last_byte(STATE["csr"])),
                           "BAD_REQUEST", "CSR with a bad signature")
    check("signature" in e.message.lower(), "message says signature: %s" % e.message)
    rec = denied(d, "issue", "builtin.csr", "bad CSR signature")
    check(rec["inputs"][0]["name"] == "csr", "the audit line carries the CSR's hash")


def t_key_types(d):
    for kind, word in (("rsa", "rsa"), ("p384", "curve"), ("explicit", "explicit")):
        csr, _ = make_csr(d.base, kind)
        with d.client() as c:
            e = expect_refusal(lambda: c.issue(DEVICE, 1, "device", csr), "BAD_REQUEST",
                               "%s key" % kind)
        check(word in e.message.lower(), "%s: message says %s: %s" % (kind, word, e.message))
        rec = last_denial(d, "issue")
        check("key-algorithms" in rec["rule"] or "explicit" in rec["rule"],
              "%s: refused by the key-algorithm rule: %s" % (kind, rec["rule"]))


def t_bad_device_id(d):
    for dev, what in (("8912230200031010008G", "not hex"), ("89122302", "too short"),
                      ("../../etc", "path"), ("8912230200031010008f" * 3, "too long")):
        with d.client() as c:
            expect_refusal(lambda: c.issue(dev, 1, "device", STATE["csr"]), "BAD_REQUEST",
                           "device id %s" % what)
        denied(d, "issue", "device-id", "device id %s" % what)


def t_index_taken(d):
    with d.client() as c:
        c.issue(DEVICE, 1, "device", STATE["csr"])
        other, _ = make_csr(d.base)
        expect_refusal(lambda: c.issue(DEVICE, 1, "device", other), "CONFLICT",
                       "index taken by another CSR")
    denied(d, "issue", "index-taken", "index taken")


def t_live_cap(d):
    """max-live-certificates-per-device: 4 in the example policy."""
    dev = "89000000000000000001"
    with d.client() as c:
        for i in range(1, 5):
            csr, _ = make_csr(d.base)
            c.issue(dev, i, "device", csr)
        csr, _ = make_csr(d.base)
        expect_refusal(lambda: c.issue(dev, 5, "device", csr), "DENIED", "fifth live certificate")
    denied(d, "issue", "max-live-certificates", "live cap")


def raw_exchange(d, data, expect_close):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(d.sock)
    s.sendall(data)
    buf = b""
    while True:
        size = regsign_client.frame_size(buf) if len(buf) >= 4 else None
        if size is not None and len(buf) >= size:
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    reply = regsign_client.decode_reply(buf[:regsign_client.frame_size(buf)])
    closed = False
    if expect_close:
        s.settimeout(10)
        try:
            closed = s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            closed = True
    s.close()
    return reply, closed


def t_oversized_frame(d):
    since = len(d.audit_records())
    data = struct.pack(">IBI", 262144 + 1, 2, 5)  # length above the maximum, nothing more
    reply, closed = raw_exchange(d, data, True)
    check(not reply.ok and reply.name == "TOO_LARGE" and reply.id == 0,
          "oversized frame: TOO_LARGE with id 0: %r" % reply)
    check(closed, "the connection is closed after TOO_LARGE")
    denied(d, "frame", "max-frame", "oversized frame", since)
    since = len(d.audit_records())
    reply, closed = raw_exchange(d, struct.pack(">I", 3) + b"abc", True)
    check(reply.name == "BAD_FRAME" and reply.id == 0 and closed,
          "length below 5: BAD_FRAME id 0 and closed: %r" % reply)
    denied(d, "frame", "framing", "short frame", since)


def t_malformed_frame(d):
    # ISSUE whose device_id string claims more bytes than the frame holds.
    body = struct.pack(">I", 1000) + b"8912"
    frame = struct.pack(">IBI", 5 + len(body), 2, 9) + body
    with d.client() as c:
        c.send_raw(frame)
        c.outstanding[9] = "ISSUE"
        rep = c.recv()
        check(not rep.ok and rep.name == "BAD_FRAME" and rep.id == 9,
              "lying inner length: BAD_FRAME with the request's id: %r" % rep)
        # The connection stays usable after a malformed (but delimited) frame.
        check(c.hello()["version"] == 1, "connection usable after BAD_FRAME")
    denied(d, "issue", "builtin.protocol", "malformed frame")


def t_unknown_op(d):
    frame = struct.pack(">IBI", 5, 77, 11)
    with d.client() as c:
        c.send_raw(frame)
        c.outstanding[11] = "HELLO"
        rep = c.recv()
        check(not rep.ok and rep.name == "UNKNOWN_OP" and rep.id == 11,
              "unknown type: UNKNOWN_OP with its id: %r" % rep)
        check(c.hello()["version"] == 1, "connection usable after UNKNOWN_OP")
    denied(d, "frame", "builtin.protocol.operation", "unknown op")


def t_wrong_uid_policy(d):
    """A policy whose callers are all other uids: this uid is refused at connect."""
    import re
    import shutil
    shutil.copy(d.policy, d.policy + ".orig")
    uid, gid = os.getuid(), os.getgid()
    with open(d.policy) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^(    uid: )%d\b" % uid, r"\g<1>%d" % (uid + 4242), text)
    check(n == 1, "the frontend caller's uid is in the policy")
    text, n = re.subn(r"(?m)^(    gid: )%d\b" % gid, r"\g<1>%d" % (gid + 4242), text)
    with open(d.policy, "w") as f:
        f.write(text)
    since = len(d.audit_records())
    ev = d.sighup_and_wait()
    check(ev["event"] == "reload", "the edited policy loads: %r" % ev)
    try:
        with d.client() as c:
            c.hello()
        raise AssertionError("a peer that is no caller got an answer")
    except (regsign_client.ConnectionClosed, ConnectionResetError, BrokenPipeError):
        pass
    rec = last_denial(d, "connect", since)
    check(rec["caller"]["uid"] == uid and rec["rule"] == "callers",
          "connect refusal audited with the peer's uid: %r" % rec)
    shutil.copy(d.policy + ".orig", d.policy)
    check(d.sighup_and_wait()["event"] == "reload", "the original policy loads again")
    with d.client() as c:
        check(c.hello()["version"] == 1, "the caller is back")


def t_wrong_uid_setpriv(d):
    """As root: a client running as another uid (same group, so the 0660 socket
    lets it connect) is refused by SO_PEERCRED before anything is read."""
    if os.getuid() != 0:
        # Without root no other uid can be taken; t_wrong_uid_policy covers it.
        print("     (not root: setpriv variant covered by t_wrong_uid_policy)")
        return
    before = len(d.audit_records())
    os.chmod(d.base, 0o755)
    os.chmod(d.dir, 0o750)  # group root may traverse to the socket
    code = ("import sys; sys.path.insert(0, %r); import regsign_client as r\n"
            "c = r.Client(%r)\n"
            "try:\n    c.hello(); print('answered')\n"
            "except (r.ConnectionClosed, ConnectionResetError, BrokenPipeError):\n"
            "    print('closed')\n") % (
                os.path.join(SOURCE_DIR, "tests", "python"), d.sock)
    p = run(["setpriv", "--reuid=65534", "--regid=0", "--clear-groups", sys.executable, "-c",
             code])
    check(p.stdout.strip() == "closed", "uid 65534 is closed without an answer: %s%s" %
          (p.stdout, p.stderr))
    rec = last_denial(d, "connect", before)
    check(rec["caller"]["uid"] == 65534 and rec["rule"] == "callers",
          "the refused connection is audited with uid 65534: %r" % rec)


def t_rate_limit(d):
    import shutil
    shutil.copy(d.policy, d.policy + ".orig")
    d.edit(d.policy, "rate-limit: { per-second: 50, burst: 100 }",
           "rate-limit: { per-second: 1, burst: 3 }")
    check(d.sighup_and_wait()["event"] == "reload", "rate-limited policy loads")
    limited = 0
    with d.client() as c:
        ids = [c.send("CHAIN") for _ in range(10)]
        for _ in ids:
            rep = c.recv()
            if not rep.ok:
                check(rep.name == "RATE_LIMITED", "refusal is RATE_LIMITED: %r" % rep)
                limited += 1
    check(limited >= 6, "at least 6 of 10 immediate requests rate-limited: %d" % limited)
    denied(d, "chain", "rate-limit", "rate limit")
    shutil.copy(d.policy + ".orig", d.policy)
    check(d.sighup_and_wait()["event"] == "reload", "the original policy loads again")


def t_not_allowed_operation(d):
    """The operator caller (gid 990) lacks issue; here: a policy without 'issue'."""
    import shutil
    shutil.copy(d.policy, d.policy + ".orig")
    d.edit(d.policy, "operations: [issue, revoke,", "operations: [revoke,")
    check(d.sighup_and_wait()["event"] == "reload", "policy without issue loads")
    with d.client() as c:
        e = expect_refusal(lambda: c.issue(DEVICE, 2, "device", STATE["csr"]), "DENIED",
                           "operation not granted")
    check("operations" in e.message, "the message names the rule: %s" % e.message)
    denied(d, "issue", "operations", "operation not granted")
    shutil.copy(d.policy + ".orig", d.policy)
    check(d.sighup_and_wait()["event"] == "reload", "the original policy loads again")


def t_periodic_checkpoint(d):
    """With --checkpoint-interval 1, new records are covered by a checkpoint
    within a few seconds, and STATUS names it as the head."""
    import hashlib
    import time
    with open(d.audit, "rb") as f:
        before = len(f.read().split(b"\n")[:-1])
    with d.client() as c:
        expect_refusal(lambda: c.issue(DEVICE, 1, "nosuch", STATE["csr"]), "DENIED", "a record")
    import json
    # Wait (a liveness bound) until a periodic checkpoint covers the refusal.
    # The daemon skips a tick when nothing was written since the last
    # checkpoint, so the count is the one at start plus at least this one.
    def covered(lines):
        # lines[before] is the refusal's record; a checkpoint must follow it.
        return any(b'"type":"checkpoint"' in l for l in lines[before + 1:])
    end = time.time() + 15
    while time.time() < end:
        with open(d.audit, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        if covered(lines) and json.loads(lines[-1])["type"] == "checkpoint":
            break
        time.sleep(0.2)
    check(covered(lines), "a periodic checkpoint follows the refusal")
    check(json.loads(lines[-1])["type"] == "checkpoint", "the latest record is a checkpoint")
    n = sum(1 for l in lines if b'"type":"checkpoint"' in l)
    check(n >= 2, "checkpoints at start and periodically: %d" % n)
    head = hashlib.sha256(lines[-1]).hexdigest()
    got = d.status()["audit"]["head"]
    if got != head:
        # Another checkpoint may have landed between reading the file and STATUS.
        with open(d.audit, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        head = hashlib.sha256(lines[-1]).hexdigest()
    check(got == head, "STATUS's head is the latest checkpoint")


def t_audit_still_verifies(d):
    head = d.status()["audit"]["head"]
    p = run([d.regsign, "audit", "verify", "--key", os.path.join(d.out, "audit.pub"),
             "--head", head, d.audit])
    check(p.returncode == 0, "the audit log with all these refusals verifies: %s%s" %
          (p.stdout, p.stderr))
    check(d.stop() == 0, "SIGTERM: exit 0")


if __name__ == "__main__":
    main([t_start, t_unknown_profile, t_bad_csr_signature, t_key_types, t_bad_device_id,
          t_index_taken, t_live_cap, t_oversized_frame, t_malformed_frame, t_unknown_op,
          t_wrong_uid_policy, t_wrong_uid_setpriv, t_rate_limit, t_not_allowed_operation,
          t_periodic_checkpoint, t_audit_still_verifies], Daemon("refusals"))
