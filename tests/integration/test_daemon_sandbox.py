#!/usr/bin/env python3
"""The shipped regsignd under its sandbox (signer/sandbox.h, docs/CONFIG.md), on a
fresh development setup. Normal build only (sanitizer builds compile the filters
off).

As root (CI runs as root) the test makes two throwaway system users, one for the
front process and one for the HSM process (removed at the end), gives each the
files it must own (the state and socket directories; the token directory and the
pin file), and configures `sandbox.front.user` / `sandbox.hsm.user`. It then checks
from /proc of both processes: every uid and gid is the configured user's, the only
supplementary group is its group, NoNewPrivs 1, Seccomp 2 (filter), core limit 0,
and /proc/PID/status owned by root although the process is not (PR_SET_DUMPABLE 0).
Landlock is not visible in /proc; the hook programs of tests/sandbox prove that
it refuses (test_sandbox), and here every operation below has to work within its
rules.

Then everything the daemon does must still work sandboxed: ISSUE, REVOKE, PUBLISH,
SIGN_RRSET, CRL, AXFR from its DNS listener, SIGHUP reload of a policy file
replaced by rename, an audit checkpoint (SIGTERM writes the final one), and
`regsign audit verify` on the audit log afterwards. A control run with
`sandbox.enabled: false` shows Seccomp 0 and NoNewPrivs 0, so the checks above see
the sandbox and not something else. Not as root: the same without the users.
"""

import json
import os
import pwd
import grp
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (DEVICE, ZONE, Daemon, TestFailure, check, main,  # noqa: E402
                        make_csr, need_tool, run)

STATE = {"users": []}
SUFFIX = "%d" % (os.getpid() % 100000)
FRONT_USER = "rsg-front-" + SUFFIX
HSM_USER = "rsg-hsm-" + SUFFIX


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def core_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4]
    return None


def thread_priorities(pid):
    """(tid, nice) of every thread of @pid."""
    out = []
    for t in os.listdir("/proc/%d/task" % pid):
        tid = int(t)
        try:
            out.append((tid, os.getpriority(os.PRIO_PROCESS, tid)))
        except OSError:
            continue
    return out


def make_user(name):
    p = run(["useradd", "--system", "--no-create-home", "--user-group",
             "--shell", "/usr/sbin/nologin", name])
    check(p.returncode == 0, "useradd %s: %s" % (name, p.stderr))
    STATE["users"].append(name)
    return pwd.getpwnam(name)


def remove_users():
    for name in STATE["users"]:
        run(["userdel", name])
        try:
            grp.getgrnam(name)
            run(["groupdel", name])
        except KeyError:
            pass
    STATE["users"] = []


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), uid, gid, follow_symlinks=False)


class SandboxDaemon(Daemon):
    def cleanup(self):
        try:
            super().cleanup()
        finally:
            remove_users()


def free_low_port():
    """A free UDP and TCP port below 1024 on 127.0.0.1 (root only)."""
    import random
    import socket
    for _ in range(200):
        port = random.randint(600, 1000)
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return port
    raise TestFailure("no free port below 1024")


def check_proc(pid, what, pw, caps="0000000000000000"):
    st = proc_status(pid)
    check(st.get("NoNewPrivs") == "1", "%s: NoNewPrivs 1, got %r" % (what, st.get("NoNewPrivs")))
    check(st.get("Seccomp") == "2", "%s: Seccomp 2 (filter), got %r" % (what, st.get("Seccomp")))
    check(core_limit(pid) == "0", "%s: core file size limit 0, got %r" % (what, core_limit(pid)))
    if pw is None:
        return st
    uids = st["Uid"].split()
    gids = st["Gid"].split()
    check(uids == [str(pw.pw_uid)] * 4, "%s: every uid is %s's %d: %r" %
          (what, pw.pw_name, pw.pw_uid, uids))
    check(gids == [str(pw.pw_gid)] * 4, "%s: every gid is %d: %r" % (what, pw.pw_gid, gids))
    check(st.get("Groups", "").split() == [str(pw.pw_gid)],
          "%s: the one supplementary group is %d: %r" % (what, pw.pw_gid, st.get("Groups")))
    check(st.get("CapEff") == caps and st.get("CapPrm") == caps and
          st.get("CapInh") == "0000000000000000",
          "%s: capabilities left exactly %s: eff %r prm %r inh %r" %
          (what, caps, st.get("CapEff"), st.get("CapPrm"), st.get("CapInh")))
    # PR_SET_DUMPABLE 0: the kernel makes /proc/PID/* root's, not the process user's.
    owner = os.stat("/proc/%d/status" % pid).st_uid
    check(owner == 0, "%s: /proc/PID/status owned by root (not dumpable), got uid %d" %
          (what, owner))
    return st


# ---- tests ----

def t_setup_users(d):
    """As root: throwaway users own what each process writes after the change."""
    STATE["root"] = os.geteuid() == 0
    extra = ""
    if STATE["root"]:
        need_tool("useradd")
        fpw = make_user(FRONT_USER)
        hpw = make_user(HSM_USER)
        STATE["front_pw"], STATE["hsm_pw"] = fpw, hpw
        # The temp dirs are root's 0700: let both users through.
        os.chmod(d.base, 0o755)
        os.chmod(d.dir, 0o755)
        # Front: the socket's directory (d.dir) and the state directory.
        os.chown(d.dir, fpw.pw_uid, fpw.pw_gid)
        chown_tree(os.path.join(d.dir, "state"), fpw.pw_uid, fpw.pw_gid)
        # HSM: SoftHSM's token directory and the pin file (read at each login).
        chown_tree(os.path.join(d.dir, "tokens"), hpw.pw_uid, hpw.pw_gid)
        os.chown(os.path.join(d.dir, "pin"), hpw.pw_uid, hpw.pw_gid)
        # A DNS listener below 1024: bound after the change of user, with
        # CAP_NET_BIND_SERVICE the only capability the front keeps.
        STATE["low_port"] = free_low_port()
        text = open(d.config).read()
        text = re.sub(r'listen: \["127\.0\.0\.1:\d+"\]',
                      'listen: ["127.0.0.1:%d"]' % STATE["low_port"], text)
        with open(d.config, "w") as f:
            f.write(text)
        extra = ("sandbox:\n  front:\n    user: %s\n    group: %s\n"
                 "  hsm:\n    user: %s\n" % (FRONT_USER, FRONT_USER, HSM_USER))
    else:
        STATE["front_pw"] = STATE["hsm_pw"] = None
        extra = "sandbox:\n  enabled: true\n"
    with open(d.config, "a") as f:
        f.write("\n" + extra)
    print("     running as %s" % ("root: users %s, %s" % (FRONT_USER, HSM_USER)
                                  if STATE["root"] else "non-root: no change of user"))


def t_config_errors(d):
    """The sandbox section and hsm.call-timeout are parsed strictly: errors name
    file:line:column; an unknown user is fatal at start with a clear message."""
    base = open(d.config).read()
    base = re.sub(r"(?ms)^sandbox:\n(  .*\n)*", "", base)
    cases = [
        ("sandbox:\n  enabld: true\n", r"bad\.yaml:\d+:\d+: .*enabld"),
        ("sandbox:\n  hsm:\n    write: [relative/dir]\n",
         r"bad\.yaml:\d+:\d+: .*absolute path"),
        ("sandbox:\n  hsm:\n    connect: [carrier-pigeon]\n", r"bad\.yaml:\d+:\d+: "),
        ("sandbox:\n  front:\n    group: nogroup\n", r"bad\.yaml:\d+:\d+: .*needs a user"),
        ("sandbox:\n  landlock: sometimes\n", r"bad\.yaml:\d+:\d+: "),
        ("sandbox:\n  front:\n    user: no-such-user-rsg\n",
         r"cannot apply the sandbox: unknown or unusable user"),
    ]
    bad = os.path.join(d.dir, "bad.yaml")
    for extra, want in cases:
        with open(bad, "w") as f:
            f.write(base + "\n" + extra)
        p = run([d.regsignd, "-c", bad], timeout=60)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and re.search(want, out),
              "regsignd refuses %r with %r, got exit %d:\n%s" % (extra, want, p.returncode, out))
    text = base.replace("  recover-timeout:", "  call-timeout: 5s\n  recover-timeout:") \
        if "  recover-timeout:" in base else base.replace("  sessions:", "  call-timeout: 5s\n"
                                                           "  recover-timeout: 10s\n  sessions:")
    with open(bad, "w") as f:
        f.write(text)
    p = run([d.regsignd, "-c", bad], timeout=60)
    check(p.returncode != 0 and re.search(r"bad\.yaml:\d+:\d+: .*call-timeout.*longer",
                                          p.stdout + p.stderr),
          "call-timeout not above recover-timeout is refused: %s%s" % (p.stdout, p.stderr))
    os.unlink(bad)


def t_start_sandboxed(d):
    d.start()
    front, hsm = d.proc.pid, d.hsm_pid()
    check(hsm and hsm != front, "the HSM process has its own PID: %r" % hsm)
    STATE["hsm_pid"] = hsm
    check_proc(front, "front", STATE["front_pw"],
               caps="0000000000000400" if STATE["root"] else "0000000000000000")
    check_proc(hsm, "HSM process", STATE["hsm_pw"])
    if STATE["root"]:
        with d.client() as c:
            zs = json.loads(c.zone_status())
        check(zs["listen"][0]["port"] == STATE["low_port"],
              "the DNS listener took port %d below 1024 as user %s: %r" %
              (STATE["low_port"], FRONT_USER, zs["listen"]))
    log = d.log_text(full=True)
    check("sandbox applied to the front process" in log, "the front logs its sandbox:\n%s" % log)


def t_issue_revoke(d):
    csr = make_csr(d.base)[0]
    with d.client() as c:
        rep = c.issue(DEVICE, 1, "device", csr)
        check(rep["cert_der"] and rep["serial_hex"], "ISSUE answered with a certificate")
        rep2 = c.issue(DEVICE, 2, "device", make_csr(d.base)[0])
        rv = c.revoke(DEVICE, 2, "", "keyCompromise")
        check(rv["serial_hex"] == rep2["serial_hex"].lstrip("0"), "REVOKE answered: %r" % rv)
        STATE["revoked"] = rep2["serial_hex"]


def t_publish(d):
    with d.client() as c:
        serial = c.publish("_asp", "TXT", 0, '"sandboxed"')
        check(serial, "PUBLISH answered with a zone serial: %r" % serial)


def t_sign_rrset(d):
    now = int(time.time())
    path = os.path.join(d.base, "rrset.txt")
    with open(path, "w") as f:
        f.write("www.asp.test. 3600 IN A 192.0.2.1\n")
    p = run([d.regsign, "-s", d.sock, "sign-rrset", "--zone", "asp.test.", "--rrset", path,
             "--inception", str(now - 3600), "--expiration", str(now + 86400)])
    check(p.returncode == 0 and "RRSIG" in p.stdout, "SIGN_RRSET: %s%s" % (p.stdout, p.stderr))


def t_crl(d):
    with d.client() as c:
        der = c.crl()
    path = os.path.join(d.base, "crl.der")
    with open(path, "wb") as f:
        f.write(der)
    p = run(["openssl", "crl", "-inform", "DER", "-in", path, "-CAfile",
             os.path.join(d.out, "issuing-ca.pem"), "-verify", "-noout", "-text"])
    check(p.returncode == 0 and "verify OK" in p.stderr + p.stdout,
          "openssl crl -verify: %s%s" % (p.stdout, p.stderr))
    check(STATE["revoked"].upper().lstrip("0") in p.stdout.upper().replace(":", ""),
          "the CRL lists the revoked serial")


def t_axfr(d):
    with d.client() as c:
        zs = json.loads(c.zone_status())
    port = zs["listen"][0]["port"]
    p = run([need_tool("kdig"), "@127.0.0.1", "-p", str(port), "AXFR", ZONE + "."])
    check(p.returncode == 0, "kdig AXFR: %s" % p.stderr)
    check(" SOA " in p.stdout.replace("\t", " ") and "sandboxed" in p.stdout,
          "the AXFR holds the zone with the published TXT:\n%s" % p.stdout[-3000:])
    check("1.%s.%s." % (DEVICE.lower(), ZONE) in p.stdout,
          "the AXFR holds the issued device")


def t_sighup_reload_renamed_policy(d):
    """The policy is replaced by rename (a new inode) and reloaded under Landlock."""
    with open(d.policy) as f:
        text = f.read()
    tmp = d.policy + ".new"
    with open(tmp, "w") as f:
        f.write(text + "\n# replaced by rename\n")
    if STATE["root"]:
        os.chmod(tmp, 0o644)
    os.rename(tmp, d.policy)
    ev = d.sighup_and_wait()
    check(ev.get("event") == "reload", "SIGHUP reloaded the renamed policy: %r\n%s" %
          (ev, d.log_text()))
    with d.client() as c:
        c.issue(DEVICE, 3, "device", make_csr(d.base)[0])


def t_zone_file_write(d):
    """SIGUSR1: the zone file (temporary, fsync, rename) in the state directory."""
    zone = re.search(r"(?m)^  zone-file: (.*)$", open(d.config).read()).group(1).strip()
    # Twice: the second write replaces the first one's file, which the file
    # thread then frees a slice at a time (open, lease, ftruncate, fdatasync).
    freed0 = d.zone_status()["zone_file"]["freed"]
    replaced = 0
    for n in (1, 2):
        before = os.stat(zone).st_ino if os.path.exists(zone) else 0
        replaced += os.stat(zone).st_size if os.path.exists(zone) else 0
        d.proc.send_signal(signal.SIGUSR1)
        end = time.time() + 30
        while time.time() < end:
            if os.path.exists(zone) and os.stat(zone).st_ino != before:
                break
            time.sleep(0.05)
        check(os.path.exists(zone) and os.stat(zone).st_ino != before,
              "SIGUSR1 wrote the zone file under the sandbox (write %d):\n%s" %
              (n, d.log_text()))
    # Every version replaced (nobody else holds it) is freed in the end, under
    # the filter and Landlock; zone-status counts the bytes.
    end = time.time() + 30
    while time.time() < end and d.zone_status()["zone_file"]["freed"] - freed0 < replaced:
        time.sleep(0.1)
    freed = d.zone_status()["zone_file"]["freed"] - freed0
    check(replaced > 0 and freed == replaced,
          "zone-status zone_file.freed grew by the replaced files' %d bytes, not %d" %
          (replaced, freed))
    check(d.proc.poll() is None, "the daemon still runs")
    # The file thread lowered its own priority under the seccomp filter
    # (setpriority is allowed with nice 19 only): one thread of the front at
    # nice 19, the rest as they were.
    lowered = [(tid, nice) for tid, nice in thread_priorities(d.proc.pid) if nice == 19]
    check(len(lowered) == 1, "one front thread (the zone file's) at nice 19: %r" %
          thread_priorities(d.proc.pid))
    check(os.getpriority(os.PRIO_PROCESS, d.proc.pid) == 0, "the front's main thread keeps nice 0")
    check("cannot lower its priority" not in d.log_text(full=True),
          "no priority warning:\n%s" % d.log_text())
    # The processes kept their sandbox through all the work (no SIGSYS so far).
    check_proc(d.proc.pid, "front after the work", STATE["front_pw"],
               caps="0000000000000400" if STATE["root"] else "0000000000000000")
    check_proc(STATE["hsm_pid"], "HSM process after the work", STATE["hsm_pw"])


def t_stop_checkpoint_verify(d):
    n0 = sum(1 for r in d.audit_records() if r.get("type") == "checkpoint")
    code = d.stop()
    check(code == 0, "SIGTERM: exit 0, got %r:\n%s" % (code, d.log_text()))
    log = d.log_text(full=True)
    check("SIGSYS" not in log and "Bad system call" not in log, "no seccomp kill:\n%s" % log)
    n1 = sum(1 for r in d.audit_records() if r.get("type") == "checkpoint")
    check(n1 > n0, "the final audit checkpoint was written (%d -> %d)" % (n0, n1))
    p = run([d.regsign, "audit", "verify", "--key", os.path.join(d.out, "audit.pub"), d.audit])
    check(p.returncode == 0, "regsign audit verify: %s%s" % (p.stdout, p.stderr))


def t_control_unsandboxed(d):
    """sandbox.enabled: false: the same /proc fields show no sandbox."""
    text = open(d.config).read()
    text = re.sub(r"(?ms)^sandbox:\n(  .*\n)*", "sandbox:\n  enabled: false\n", text)
    with open(d.config, "w") as f:
        f.write(text)
    if STATE["root"]:
        # Running as root again: give the files back.
        chown_tree(d.dir, 0, 0)
    d.start()
    for pid, what in ((d.proc.pid, "front"), (d.hsm_pid(), "HSM process")):
        st = proc_status(pid)
        check(st.get("Seccomp") == "0" and st.get("NoNewPrivs") == "0",
              "%s without the sandbox: Seccomp 0, NoNewPrivs 0: %r %r" %
              (what, st.get("Seccomp"), st.get("NoNewPrivs")))
    check("sandbox disabled by the configuration" in d.log_text(full=True),
          "the daemon says the sandbox is off")
    check(d.stop() == 0, "SIGTERM: exit 0")


# ---- the HSM process's watchdog (a wedged module), under the sandbox ----

FAULT_MODULE = os.path.join(os.environ.get("REGSIGN_BUILD_DIR", ""), "lib",
                            "libregsign-p11fault.so")


def use_fault_module(d, call_timeout):
    """libregsign-p11fault.so in front of SoftHSM (tests/fault/README.md), a
    1 s recover-timeout and the given hsm.call-timeout."""
    check(os.path.exists(FAULT_MODULE), "the fault module %s is built" % FAULT_MODULE)
    d.ctl = os.path.join(d.base, "p11fault.ctl")
    fault(d, "# pass-through\n")
    text = open(d.config).read()
    if "P11FAULT_MODULE" not in text:
        module = re.search(r"(?m)^  module: (.*)$", text).group(1)
        text = text.replace("  module: %s\n" % module, "  module: %s\n" % FAULT_MODULE)
        text = text.replace("  environment:\n", "  environment:\n    P11FAULT_MODULE: %s\n"
                            "    P11FAULT_CONTROL: %s\n" % (module, d.ctl))
    text = re.sub(r"(?m)^  recover-timeout: .*\n(  call-timeout: .*\n)?",
                  "  recover-timeout: 1s\n  call-timeout: %ds\n" % call_timeout, text)
    text = re.sub(r"(?ms)^sandbox:\n(  .*\n)*", "sandbox:\n  enabled: true\n", text)
    with open(d.config, "w") as f:
        f.write(text)
    d.extra_args = ["--module-dir", os.path.dirname(FAULT_MODULE)]


def fault(d, text):
    with open(d.ctl + ".tmp", "w") as f:
        f.write(text)
    os.rename(d.ctl + ".tmp", d.ctl)


def issue_in_background(d, dev, idx):
    """An ISSUE on its own thread; returns (thread, result list)."""
    import threading
    out = []
    csr = make_csr(d.base)[0]

    def go():
        try:
            with d.client(timeout=120) as c:
                out.append(("OK", c.issue(dev, idx, "device", csr)))
        except Exception as e:  # noqa: BLE001 - whatever ended it is the result
            out.append(("ERR", e))
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, out


def pid_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def t_watchdog_wedged_module(d):
    """A C_Sign that takes 20 s (a wedged module) with hsm.call-timeout 3s: the
    HSM process ends itself with status 3 within a few seconds, the front logs
    and audits why and exits 1 (for its supervisor to restart), the ISSUE in
    flight is not answered with success, and a restart serves again."""
    use_fault_module(d, 3)
    d.start()
    hsm = d.hsm_pid()
    fault(d, "delay C_Sign 20000\n")
    t0 = time.time()
    t, out = issue_in_background(d, "89123400000000000077", 1)
    code = d.wait_exit(30)
    took = time.time() - t0
    t.join(30)
    check(code == 1, "the front exits 1 when its HSM process is ended: %r" % code)
    check(took < 15, "the watchdog ended the wedged call in %.1f s (bound 3 s + checks)" % took)
    check(out and out[0][0] == "ERR", "the ISSUE in flight got no success: %r" % out)
    log = d.log_text(full=True)
    check("watchdog: a PKCS#11 call on worker" in log,
          "the HSM process said why it exits:\n%s" % log)
    check("HSM process ended by its watchdog" in log, "the front logged the watchdog exit")
    ev = [r for r in d.audit_records() if r.get("type") == "event"]
    names = [r.get("event") for r in ev]
    check("hsm-watchdog" in names and "hsm-lost" in names,
          "the audit log records hsm-watchdog and hsm-lost: %r" % names[-6:])
    check(pid_gone(hsm), "the HSM process %d is gone" % hsm)
    print("     wedged C_Sign ended after %.1f s; front exit %d" % (took, code))
    # What systemd's Restart=on-failure does next: start again; it serves.
    fault(d, "# pass-through\n")
    d.start()
    with d.client() as c:
        c.issue("89123400000000000078", 1, "device", make_csr(d.base)[0])
    check(d.stop() == 0, "SIGTERM: exit 0")
    p = run([d.regsign, "audit", "verify", "--key", os.path.join(d.out, "audit.pub"), d.audit])
    check(p.returncode == 0, "regsign audit verify: %s%s" % (p.stdout, p.stderr))


def t_front_gone_worker_stuck(d):
    """The front is killed while a worker is stuck in C_Sign (30 s; the watchdog
    bound is 120 s): the HSM process sees EOF and exits within a few seconds
    without waiting for the stuck worker."""
    use_fault_module(d, 120)
    d.start()
    hsm = d.hsm_pid()
    fault(d, "delay C_Sign 30000\n")
    t, _ = issue_in_background(d, "89123400000000000079", 1)
    time.sleep(1.0)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    t0 = time.time()
    while not pid_gone(hsm) and time.time() - t0 < 20:
        time.sleep(0.05)
    took = time.time() - t0
    check(pid_gone(hsm), "the HSM process exited after its front died (still there after "
          "%.1f s)" % took)
    check(took < 10, "it did not wait for the stuck worker (%.1f s, grace 2 s)" % took)
    t.join(30)
    fault(d, "# pass-through\n")
    print("     HSM process gone %.1f s after its front, with a worker stuck" % took)


if __name__ == "__main__":
    need_tool("openssl")
    main([t_setup_users, t_config_errors, t_start_sandboxed, t_issue_revoke, t_publish, t_sign_rrset, t_crl,
          t_axfr, t_sighup_reload_renamed_policy, t_zone_file_write, t_stop_checkpoint_verify,
          t_control_unsandboxed, t_watchdog_wedged_module, t_front_gone_worker_stuck],
         SandboxDaemon("sandbox"))
