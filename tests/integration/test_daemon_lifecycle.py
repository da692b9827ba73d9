#!/usr/bin/env python3
"""regsignd's life: SIGHUP reloads (a bad policy is refused and the old one
stays), per-connection queue depth (BUSY), group commit, backpressure on a
client that does not read, SIGTERM finishing requests in flight, and kill -9
of the HSM process (requests in flight get UNAVAILABLE, the daemon exits
non-zero). The HSM is reached through the p11fault module (tests/fault), whose
`delay C_Sign` keeps requests in flight for as long as a test needs."""

import errno
import os
import re
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (BUILD_DIR, DEVICE, Daemon, check, main, make_csr,  # noqa: E402
                        run)
import regsign_client  # noqa: E402

STATE = {}
FAULT = os.path.join(BUILD_DIR, "lib", "libregsign-p11fault.so")


def fault(d, text):
    """Rewrites the p11fault control file atomically."""
    tmp = d.fault_ctl + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, d.fault_ctl)


def t_setup(d):
    check(os.path.exists(FAULT), "the fault module %s is built" % FAULT)
    d.fault_ctl = os.path.join(d.base, "p11fault.ctl")
    fault(d, "# pass-through\n")
    with open(d.config) as f:
        cfg = f.read()
    module = re.search(r"(?m)^  module: (.*)$", cfg).group(1)
    cfg = cfg.replace("  module: %s\n" % module, "  module: %s\n" % FAULT)
    cfg = cfg.replace("  environment:\n", "  environment:\n    P11FAULT_MODULE: %s\n"
                      "    P11FAULT_CONTROL: %s\n" % (module, d.fault_ctl))
    cfg = cfg.replace("queue-depth: 1024", "queue-depth: 4")
    with open(d.config, "w") as f:
        f.write(cfg)
    # No rate limit here: the load tests below send thousands of requests.
    d.edit(d.policy, "    rate-limit: { per-second: 50, burst: 100 }", "    # no rate limit")
    d.extra_args = ["--module-dir", os.path.dirname(FAULT)]
    d.start()
    STATE["csr"], _ = make_csr(d.base)


def t_reload_bad_policy_keeps_old(d):
    import shutil
    old_sha = d.status()["policy"]["sha256"]
    shutil.copy(d.policy, d.policy + ".orig")
    d.edit(d.policy, "  validity: 365d", "  validty: 365d")  # unknown key
    ev = d.sighup_and_wait()
    check(ev["event"] == "reload-refused", "a bad policy is refused: %r" % ev)
    check("validty" in ev.get("detail", ""), "the refusal names the bad key: %r" % ev)
    check(d.status()["policy"]["sha256"] == old_sha, "the old policy stays in force")
    check("policy refused" in d.log_text(), "the refusal is logged")
    with d.client() as c:
        r = c.issue(DEVICE, 1, "device", STATE["csr"])
    check(r["index"] == 1, "issuing works under the old policy")
    shutil.copy(d.policy + ".orig", d.policy)
    d.edit(d.policy, "  name: iotregistry.test.", "  name: other.test.")
    ev = d.sighup_and_wait()
    check(ev["event"] == "reload-refused" and "zone" in ev.get("detail", ""),
          "a policy for another zone is refused: %r" % ev)
    shutil.copy(d.policy + ".orig", d.policy)
    d.edit(d.policy, "max-live-certificates-per-device: 4", "max-live-certificates-per-device: 5")
    ev = d.sighup_and_wait()
    check(ev["event"] == "reload", "a good policy loads: %r" % ev)
    new_sha = d.status()["policy"]["sha256"]
    check(new_sha != old_sha and new_sha in ev.get("detail", ""),
          "STATUS shows the new policy's hash")


def t_queue_depth_busy(d):
    """queue-depth 4: while the HSM is slow, a fifth pipelined request gets BUSY."""
    csrs = [make_csr(d.base)[0] for _ in range(12)]
    fault(d, "delay C_Sign 400\n")
    try:
        with d.client() as c:
            ids = []
            for i in range(12):
                ids.append(c.send("ISSUE", device_id="8911%016d" % i, index=1,
                                  profile="device", csr_der=csrs[i]))
            replies = [c.recv() for _ in ids]
    finally:
        fault(d, "# pass-through\n")
    busy = [r for r in replies if not r.ok and r.name == "BUSY"]
    ok = [r for r in replies if r.ok]
    check(len(ok) >= 4 and len(busy) >= 1, "some answered, the rest BUSY: %d ok, %d busy, %r" %
          (len(ok), len(busy), [r.name for r in replies if not r.ok]))
    check(len(ok) + len(busy) == 12, "every request answered: %r" % replies)


def t_group_commit(d):
    """Requests that arrive together share transactions."""
    before = d.status()["commit"]
    conns = [d.client() for _ in range(4)]
    csrs = [make_csr(d.base)[0] for _ in range(8)]
    n = 0
    try:
        pending = []
        for k, c in enumerate(conns):
            for i in range(4):  # within the queue depth of 4
                c.send("ISSUE", device_id="8922%016d" % (k * 10 + i), index=1,
                       profile="device", csr_der=csrs[(k + i) % 8])
                pending.append(c)
        for c in pending:
            rep = c.recv()
            check(rep.ok, "group issue answered OK: %r" % rep)
            n += 1
    finally:
        for c in conns:
            c.close()
    after = d.status()["commit"]
    items = after["items"] - before["items"]
    txns = after["transactions"] - before["transactions"]
    check(n == 16, "16 certificates issued")
    check(after["largest"] >= 2, "a transaction carried several items: %r" % after)
    check(txns < items, "fewer transactions than items (%d < %d)" % (txns, items))


def t_client_gone(d):
    """A client that closes with requests in flight: they are still carried
    out (a retry gets the same certificate), and the daemon goes on."""
    csrs = [make_csr(d.base)[0] for _ in range(4)]
    c = d.client()
    for i in range(4):
        c.send("ISSUE", device_id="8955%016d" % i, index=1, profile="device", csr_der=csrs[i])
    c.close()
    time.sleep(1)
    with d.client() as c2:
        for i in range(4):
            r = c2.issue("8955%016d" % i, 1, "device", csrs[i])
            check(r["index"] == 1, "the retry is answered")
        certs = {c2.issue("8955%016d" % i, 1, "device", csrs[i])["serial_hex"]
                 for i in range(4)}
    check(len(certs) == 4, "four certificates, each issued once")
    results = [r for r in d.audit_records() if r["type"] == "result" and
               r.get("device", "").startswith("8955")]
    check(len(results) == 4, "each was signed once (4 results): %d" % len(results))


def t_backpressure(d):
    """A client that sends without reading stops being read; others are served."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    s.setblocking(False)
    frame_id = [0]

    def chain_frame():
        frame_id[0] += 1
        return struct.pack(">IBI", 5, 6, frame_id[0])

    sent = 0
    stalled = False
    deadline = time.time() + 20
    batch = b"".join(chain_frame() for _ in range(1000))
    buf = batch
    while time.time() < deadline and sent < 400000:
        try:
            k = s.send(buf)
            sent += k
            buf = buf[k:]
            if not buf:
                buf = b"".join(chain_frame() for _ in range(1000))
        except BlockingIOError:
            # Give the daemon time to read more, if it still reads.
            time.sleep(0.3)
            try:
                k = s.send(buf)
                sent += k
                buf = buf[k:]
                if not buf:
                    buf = b"".join(chain_frame() for _ in range(1000))
            except BlockingIOError:
                stalled = True
                break
    check(stalled, "the daemon stopped reading a client that reads no replies (sent %d bytes)"
          % sent)
    requests = sent // 9
    # Replies waiting are bounded: about the high-water mark (1 MiB) of
    # ~1.2 KB replies plus what the kernel buffers; far fewer than sent.
    st = d.status()
    check(st["requests"]["connections"] >= 2, "the stalled client is still connected")
    # Another client is served meanwhile.
    t0 = time.time()
    with d.client() as c:
        check(c.hello()["version"] == 1, "another client is served")
    check(time.time() - t0 < 5, "promptly")
    # Now read everything: every request sent gets its reply.
    s.setblocking(True)
    s.settimeout(60)
    rx = bytearray()
    got = 0
    while got < requests:
        chunk = s.recv(1 << 20)
        check(chunk, "connection stays open while replies are read (%d of %d)" % (got, requests))
        rx += chunk
        while True:
            size = regsign_client.frame_size(rx)
            if size is None or len(rx) < size:
                break
            rep = regsign_client.decode_reply(bytes(rx[:size]))
            check(rep.ok, "CHAIN answered OK: %r" % rep)
            del rx[:size]
            got += 1
    s.close()
    check(got == requests, "all %d requests answered" % requests)


def t_hsm_recovery(d):
    """The HSM restarts under the HSM process (sessions gone, token away for a
    while): the request waits for the recovery and succeeds, and the daemon
    audits the HSM lost and recovered."""
    before = len(d.audit_records())
    fault(d, "invalidate\ndown-ms 5000\n")
    csr, _ = make_csr(d.base)
    t0 = time.time()
    with d.client() as c:
        r = c.issue("89440000000000000001", 1, "device", csr)
    check(r["index"] == 1, "the request is served after the recovery")
    check(time.time() - t0 >= 3, "it waited for the token to come back")
    fault(d, "# pass-through\n")
    end = time.time() + 15
    events = []
    while time.time() < end:
        events = [x.get("event") for x in d.audit_records()[before:] if x["type"] == "event"]
        if "hsm-lost" in events and "hsm-recovered" in events:
            break
        time.sleep(0.2)
    check("hsm-lost" in events and "hsm-recovered" in events,
          "HSM lost and recovered are audited: %r" % events)
    check(events.index("hsm-lost") < events.index("hsm-recovered"), "in that order")
    hsm = d.status()["hsm"]
    check(hsm["recoveries"] >= 1, "STATUS counts the recovery")
    # The copies died with the sessions; the request after it made them again.
    check(hsm["key_copies"] >= 1, "session copies made again after the recovery: %r" % hsm)


def wait_intents(d, since, n, timeout=30):
    """Waits until n allowed ISSUE intents are in the log after record `since`
    (their requests are then past the first commit, on their way to the HSM)."""
    end = time.time() + timeout
    while time.time() < end:
        recs = [r for r in d.audit_records()[since:] if r["type"] == "request" and
                r.get("op") == "issue" and r.get("decision") == "allow"]
        if len(recs) >= n:
            return
        time.sleep(0.02)
    raise AssertionError("%d intents not recorded in %ds" % (n, timeout))


def t_sigterm_finishes_in_flight(d):
    fault(d, "delay C_Sign 800\n")
    csr, _ = make_csr(d.base)
    c = d.client()
    since = len(d.audit_records())
    rid = c.send("ISSUE", device_id=DEVICE, index=2, profile="device", csr_der=csr)
    wait_intents(d, since, 1)
    time.sleep(0.1)  # the request is at the (slow) HSM now
    d.proc.send_signal(signal.SIGTERM)
    rep = c.recv()
    c.close()
    check(rep.id == rid and rep.ok, "the request in flight at SIGTERM is answered: %r" % rep)
    code = d.wait_exit()
    check(code == 0, "exit status 0 after SIGTERM (got %r)" % code)
    recs = d.audit_records()
    check(recs[-1]["type"] == "checkpoint" and recs[-2].get("event") == "stop",
          "'stop' then a final checkpoint end the log")
    fault(d, "# pass-through\n")
    check(not os.path.exists(d.sock), "the socket is removed at stop")


def t_hsm_killed(d):
    d.start()
    fault(d, "delay C_Sign 3000\n")
    csrs = [make_csr(d.base)[0] for _ in range(3)]
    c = d.client()
    since = len(d.audit_records())
    ids = []
    for i in range(3):
        ids.append(c.send("ISSUE", device_id="8933%016d" % i, index=1, profile="device",
                          csr_der=csrs[i]))
    wait_intents(d, since, 3)
    time.sleep(0.2)  # in the HSM process now (each C_Sign takes 3 s)
    hsm = [int(p) for p in run(["pgrep", "-P", str(d.proc.pid)]).stdout.split()]
    check(len(hsm) == 1, "one HSM process child: %r" % hsm)
    os.kill(hsm[0], signal.SIGKILL)
    replies = [c.recv() for _ in ids]
    c.close()
    for r in replies:
        check(not r.ok and r.name == "UNAVAILABLE", "in-flight request gets UNAVAILABLE: %r" % r)
    code = d.wait_exit()
    check(code != 0, "the daemon exits non-zero when its HSM process dies (got %r)" % code)
    recs = d.audit_records()
    check(any(r.get("event") == "hsm-lost" for r in recs), "the loss is audited")
    results = [r for r in recs if r["type"] == "result" and r.get("error") == 10]
    check(len(results) == 3, "each intent got an UNAVAILABLE result record: %d" % len(results))
    fault(d, "# pass-through\n")
    # Restart: the daemon comes back on the same state.
    d.start()
    with d.client() as c:
        r = c.issue(DEVICE, 1, "device", STATE["csr"])
    check(r["index"] == 1, "after a restart the daemon serves again")
    check(d.stop() == 0, "and stops cleanly")


def t_issuing_key_mismatch(d):
    """At start the issuing CA certificate's key must be the HSM's issuing-ca key."""
    import shutil
    shutil.copy(d.config, d.config + ".orig")
    d.edit(d.config, "out/issuing-ca.pem", "out/root-ca.pem")
    before = len(d.audit_records())
    d.start(wait=False)
    code = d.wait_exit()
    check(code != 0, "the daemon refuses to start (exit %r)" % code)
    # The HSM process checks it too, and may be the first to refuse.
    check(re.search(r"issuing-ca key|key issuing-ca does not match", d.log_text()),
          "and says why:\n%s" % d.log_text())
    check(not os.path.exists(d.sock), "no socket was opened")
    events = [x.get("event") for x in d.audit_records()[before:] if x["type"] == "event"]
    check("start-refused" in events and "start" not in events,
          "the refusal is audited, no start: %r" % events)
    shutil.copy(d.config + ".orig", d.config)
    d.start()


if __name__ == "__main__":
    main([t_setup, t_reload_bad_policy_keeps_old, t_queue_depth_busy, t_group_commit,
          t_client_gone, t_backpressure, t_hsm_recovery, t_sigterm_finishes_in_flight, t_hsm_killed,
          t_issuing_key_mismatch], Daemon("lifecycle"))
