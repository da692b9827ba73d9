#!/usr/bin/env python3
"""A network-style HSM that restarts (attack 3 of brief O).

The development SoftHSM token is served by `p11-kit server` (Debian p11-kit)
and regsignd's HSM process reaches it through p11-kit-client.so
(p11-kit-modules), the way it would reach a network HSM. The server AND its
per-connection `p11-kit-remote` children are killed with SIGKILL (killing
only the server leaves existing sessions working and tests nothing), stay
away for a while, and the server is started again on the same socket. Each
time: the daemon does not crash, every request gets OK or UNAVAILABLE,
service comes back by itself; the time from the server being back to the
first successful ISSUE is printed (goal: at most 5 s; the test asserts a
generous liveness bound). Afterwards nothing acknowledged is lost, nothing
refused was done, nothing was done twice, the zone and the audit log verify,
and the audit log records the HSM lost and recovered.

Default: 3 restarts (REGSIGN_ATTACK_LONG=1: 15) with no request in flight at
the kill (one is sent while the HSM is away).

`under-load`: 30 restarts (60) killed while four clients issue and revoke.
Now and then a PKCS#11 call in flight when the server dies never returns
(p11-kit-client.so waits for ever). The HSM process's watchdog ends it with
status 3 once the recovery that call holds off has waited recover-timeout (2 s
here) plus 1 s, or at the latest when the call reaches hsm.call-timeout (here
8 s); the front logs and
audits that and exits 1, and a small restart loop standing in for systemd's
Restart=on-failure (RestartSec=1) starts regsignd again. So here the daemon
may restart; the test asserts: no process hangs (every HSM process but the
current one is gone within a generous bound, none outlives its front),
requests are answered (OK or UNAVAILABLE) or their connection drops (the
clients reconnect; a dropped request is retried at the end and must agree
with the rest), nothing acknowledged is lost and nothing is in the store or
the audit log twice, and an ISSUE succeeds within a generous bound after the
server is back. It prints the recovery time of each restart (goal 5 s after
the HSM is back), how many went through a watchdog restart, and each exit.

`--json FILE` (either variant; bench/run.sh's hsm_recovery uses it): the
recovery figures printed are also written to FILE as one JSON object.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_lib import (CONN_ERRORS, LONG, SOFTHSM_MODULE, AttackDaemon,  # noqa: E402
                        Ledger, Load, RegsignError, TestFailure, audit_invariants, check,
                        check_ledger,
                        check_refused_not_done, check_zone_against_ledger, csr_pool, main,
                        need_tool, pid_alive,
                        pids_children, preload_env, run, sanitized, wait_for, variant_args)

RESTARTS = 15 if LONG else 3
# Under load the known bug (see tests/attack.cmake) shows about once in
# fifteen restarts: the variant that shows it runs this many.
LOAD_RESTARTS = 60 if LONG else 30
AWAY_S = 3.0          # longer than the daemon's 2 s HSM poll, so STATUS/audit see it
BACK_BOUND_S = 30.0   # liveness bound; the goal (5 s) is printed, see the docstring
# Under load: the HSM process's watchdog bound (must exceed recover-timeout,
# 2 s here; a call may wait for one recovery and then make its own), the
# restart loop's pause (systemd's RestartSec), and how long an old HSM
# process may take to be gone.
CALL_TIMEOUT_S = 8
RESTART_SEC = 1.0
HANG_BOUND_S = 60.0
STATE = {"servers": []}


def write_figures(fig):
    """The printed recovery figures, as JSON, to the --json file if one was
    asked for (bench/run.sh records them)."""
    path = STATE.get("json_out")
    if path:
        with open(path, "w") as f:
            json.dump(fig, f, sort_keys=True)
            f.write("\n")


def client_module():
    p = run(["pkg-config", "--variable=p11_module_path", "p11-kit-1"])
    d = p.stdout.strip() if p.returncode == 0 and p.stdout.strip() else \
        "/usr/lib/x86_64-linux-gnu/pkcs11"
    path = os.path.join(d, "p11-kit-client.so")
    check(os.path.exists(path), "%s is missing (apt-get install p11-kit-modules)" % path)
    return path


def is_hsm_process(pid):
    """pid is still one of our HSM processes (not a reused PID)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"--hsm-process" in f.read()
    except OSError:
        return False


class P11KitDaemon(AttackDaemon):
    daemon_env = None
    under_load = False

    def start(self, args=(), env=None, wait=True, timeout=60):
        proc = super().start(args, env or self.daemon_env, wait, timeout)
        self.hsm_pids += pids_children(proc.pid)
        return proc

    def cleanup(self):
        # An HSM process hung in the module (the known bug) outlives its
        # front: end it by its PID after the front is gone.
        try:
            super().cleanup()
        finally:
            for pid in self.hsm_pids:
                if pid_alive(pid) and is_hsm_process(pid):
                    print("cleanup: HSM process %d outlived its front; killed" % pid)
                    os.kill(pid, signal.SIGKILL)
            stop_server(kill_children=True)


def start_server(d):
    """p11-kit server in the foreground, serving the dev token on d.p11sock."""
    env = dict(os.environ, SOFTHSM2_CONF=os.path.join(d.dir, "softhsm2.conf"))
    log = open(os.path.join(d.base, "p11-kit-server.log"), "a")
    proc = subprocess.Popen([need_tool("p11-kit"), "server", "-f", "-n", d.p11sock,
                             "--provider", SOFTHSM_MODULE, "pkcs11:token=regsign-dev"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    STATE["servers"].append(proc)
    STATE["server"] = proc
    # Ready when the socket accepts a connection.
    import socket

    def ready():
        check(proc.poll() is None, "p11-kit server exited: %s" % open(
            os.path.join(d.base, "p11-kit-server.log")).read())
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(d.p11sock)
            return True
        except OSError:
            return False
        finally:
            s.close()
    wait_for(ready, 30, "p11-kit server listening on %s" % d.p11sock)
    return proc


def server_family():
    """PIDs of the running server and of its children (p11-kit-remote)."""
    proc = STATE.get("server")
    if proc is None or proc.poll() is not None:
        return []
    return [proc.pid] + pids_children(proc.pid)


def stop_server(kill_children=True):
    """SIGKILL the server we started and, by PID, its children."""
    proc = STATE.get("server")
    if proc is None:
        return []
    fam = server_family() if kill_children else [proc.pid]
    for pid in fam:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    end = time.time() + 10
    while any(pid_alive(p) for p in fam[1:]) and time.time() < end:
        time.sleep(0.02)
    STATE["server"] = None
    return fam


class Supervisor:
    """A restart loop standing in for systemd's Restart=on-failure: when
    regsignd exits non-zero it is started again RESTART_SEC later (also when
    that start fails, e.g. while the HSM is still away). Exit 0 ends the loop."""

    def __init__(self, d):
        self.d = d
        self.stopping = threading.Event()
        self.exits = []      # (time, exit status)
        self.starts = []     # time of each restart
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while not self.stopping.is_set():
            proc = self.d.proc
            code = proc.poll()
            if code is None:
                time.sleep(0.05)
                continue
            self.exits.append((time.time(), code))
            if code == 0:
                return
            time.sleep(RESTART_SEC)
            if self.stopping.is_set():
                return
            self.starts.append(time.time())
            try:
                self.d.start()
            except TestFailure:
                # It exited again before it was ready: the loop sees that.
                pass

    def stop(self):
        self.stopping.set()
        self.thread.join(120)
        check(not self.thread.is_alive(), "the restart loop ended")


class ReconnectingLoad(Load):
    """Load whose clients reconnect when the daemon goes away under them (it
    may be restarted): a request without a reply goes to ledger.unsure and is
    retried at the end; wrong answers are still errors."""

    def _run(self, client_no):
        rnd = __import__("random").Random(client_no * 7919 + self.tag)
        k = [0]
        while not self.stopping.is_set():
            try:
                self._session(client_no, rnd, k)
            except CONN_ERRORS:
                # The daemon went away (or is not back yet): reconnect.
                self._count("conn", "DROPPED")
                time.sleep(0.1)
            except Exception as e:  # noqa: BLE001 - a wrong answer
                self.errors.append("client %d: %r" % (client_no, e))
                return

def t_setup(d):
    d.p11sock = os.path.join(d.base, "p11.sock")
    start_server(d)
    cfg = d.config_text()
    module = re.search(r"(?m)^  module: (.*)$", cfg).group(1)
    cfg = cfg.replace("  module: %s\n" % module, "  module: %s\n" % client_module())
    cfg = cfg.replace("  environment:\n", "  environment:\n    P11_KIT_SERVER_ADDRESS: "
                      "unix:path=%s\n" % d.p11sock)
    cfg = re.sub(r"(?m)^  recover-timeout: .*$", "  recover-timeout: 2s", cfg)
    if d.under_load:
        cfg = cfg.replace("  recover-timeout: 2s\n", "  recover-timeout: 2s\n"
                          "  call-timeout: %ds\n" % CALL_TIMEOUT_S)
        check("call-timeout" in cfg, "hsm.call-timeout set in the configuration")
    d.set_config(cfg)
    if sanitized():
        # The HSM process dlcloses the module at exit, before LeakSanitizer
        # looks; then memory that only the module's own globals pointed to
        # looks leaked ("<unknown module>"). Preloaded, p11-kit-client.so
        # stays mapped and LeakSanitizer sees those pointers. What it does
        # leak itself when its server dies is suppressed (lsan-p11kit.supp).
        d.daemon_env = preload_env(os.environ, [client_module()])
        d.daemon_env["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "lsan-p11kit.supp")
    d.start()
    kids = pids_children(STATE["server"].pid)
    check(kids, "the HSM process's connection has a p11-kit-remote child of the server")
    STATE["csrs"] = csr_pool(d.base, 32)
    STATE["ledger"] = Ledger()
    STATE["refused"] = []
    with d.client() as c:
        c.issue("89123400000000000001", 1, "device", STATE["csrs"][0][0])


def hsm_events(d):
    return [r.get("event") for r in d.audit_records()
            if r.get("type") == "event" and r.get("event", "").startswith("hsm-")]


def restarts(d, n, under_load):
    """n times: kill the server and its p11-kit-remote children (under load:
    while four clients issue and revoke; idle: with no request in flight,
    and one request sent while it is away), start it again, and measure the
    time from the server being back to the first successful ISSUE."""
    times = []
    events0 = len(hsm_events(d))
    for i in range(n):
        STATE["tag"] = STATE.get("tag", 40) + 1
        load = Load(d, STATE["ledger"], STATE["csrs"], clients=4, tag=STATE["tag"]).start()
        time.sleep(0.5)
        if not under_load:
            load.stop()
        rec0 = d.status()["hsm"]["recoveries"]
        fam = stop_server(kill_children=True)
        check(len(fam) >= 2, "killed the server and its p11-kit-remote children: %r" % fam)
        if under_load:
            time.sleep(AWAY_S)
        else:
            # A request while the HSM is away: UNAVAILABLE (or OK, if it
            # waits long enough), never a hang or another error.
            t0 = time.time()
            dev = "8912350000%06d%04d" % (STATE["tag"], i)
            with d.client(timeout=BACK_BOUND_S) as c:
                try:
                    STATE["ledger"].ack_issue(dev, 1, STATE["csrs"][0][0],
                                              c.issue(dev, 1, "device", STATE["csrs"][0][0]))
                except RegsignError as e:
                    check(e.name == "UNAVAILABLE", "ISSUE while the HSM is away: %s" % e)
                    STATE["refused"].append((dev, 1, e.name))
            time.sleep(max(0.0, AWAY_S - (time.time() - t0)))
            load = Load(d, STATE["ledger"], STATE["csrs"], clients=4, tag=STATE["tag"] + 500)
        start_server(d)
        back = time.time()
        if not under_load:
            load.start()
        try:
            wait_for(lambda: load.ok_since(back) >= 1, BACK_BOUND_S,
                     "a successful ISSUE after the p11-kit server is back")
        except TestFailure:
            load.stopping.set()
            raise TestFailure("no service %.0f s after the HSM returned (restart %d): %r; "
                              "HSM process %r, STATUS hsm %r\n%s" %
                              (BACK_BOUND_S, i + 1, load.counts, pids_children(d.proc.pid),
                               status_hsm(d), d.log_text()))
        first = min(t for t, _, name in load.log if t >= back and name == "OK")
        times.append(first - back)
        time.sleep(0.5)
        load.stop()
        check(not load.errors, "restart %d: wrong answers or lost requests: %r" %
              (i + 1, load.errors[:5]))
        check(d.proc.poll() is None, "the daemon survived the restart of its HSM")
        STATE["refused"] += load.refused_issues
        check(d.status()["hsm"]["recoveries"] > rec0, "STATUS counts the recovery")
        print("     restart %d (%s): %r, first success %.2f s after the server was back" %
              (i + 1, "under load" if under_load else "idle", load.counts, times[-1]),
              flush=True)
    print("     recovery after the HSM was back: max %.2f s, mean %.2f s (goal <= 5 s)%s" %
          (max(times), sum(times) / len(times),
           "" if max(times) <= 5.0 else "  ** GOAL MISSED **"))
    write_figures({"variant": "idle", "restarts": n, "away_s": AWAY_S, "times_s": times,
                   "max_s": max(times), "mean_s": sum(times) / len(times)})

    def lost_then_recovered():
        ev = hsm_events(d)[events0:]
        return "hsm-lost" in ev and "hsm-recovered" in ev[ev.index("hsm-lost"):]
    try:
        wait_for(lost_then_recovered, 10, "hsm-lost then hsm-recovered audited")
    except TestFailure:
        raise TestFailure("the audit log records the HSM lost, then recovered: %r" %
                          hsm_events(d)[events0:])


def retry(fn, bound=BACK_BOUND_S):
    """fn() once the daemon answers (it may be restarting)."""
    end = time.time() + bound
    while True:
        try:
            return fn()
        except CONN_ERRORS + (TestFailure,):
            if time.time() > end:
                raise
            time.sleep(0.1)


def hsm_pid_now(d):
    return retry(lambda: d.hsm_pid())


def restarts_under_load(d, n):
    """n times, while four reconnecting clients issue and revoke: kill the
    server and its p11-kit-remote children, wait AWAY_S, start it again, and
    measure the time from the server being back to the first successful
    ISSUE. regsignd may restart meanwhile (the HSM process's watchdog)."""
    sup = Supervisor(d).start()
    times, via_restart, seen_hsm = [], 0, set()
    seen_hsm.add(hsm_pid_now(d))
    try:
        for i in range(n):
            STATE["tag"] = STATE.get("tag", 40) + 1
            load = ReconnectingLoad(d, STATE["ledger"], STATE["csrs"], clients=4,
                                    tag=STATE["tag"], timeout=BACK_BOUND_S * 3).start()
            time.sleep(0.5)
            starts0 = len(sup.starts)
            fam = stop_server(kill_children=True)
            check(len(fam) >= 2, "killed the server and its p11-kit-remote children: %r" % fam)
            time.sleep(AWAY_S)
            start_server(d)
            back = time.time()
            try:
                wait_for(lambda: load.ok_since(back) >= 1, BACK_BOUND_S,
                         "a successful ISSUE after the p11-kit server is back")
            except TestFailure:
                load.stopping.set()
                raise TestFailure("no service %.0f s after the HSM returned (restart %d): %r; "
                                  "exits %r, processes %r\n%s" %
                                  (BACK_BOUND_S, i + 1, load.counts, sup.exits,
                                   pids_children(d.proc.pid), d.log_text()))
            first = min(t for t, _, name in load.log if t >= back and name == "OK")
            times.append(first - back)
            time.sleep(0.5)
            load.stop(timeout=BACK_BOUND_S * 4)
            check(not load.errors, "restart %d: wrong answers or clients stuck: %r" %
                  (i + 1, load.errors[:5]))
            STATE["refused"] += load.refused_issues
            restarted = len(sup.starts) > starts0
            via_restart += restarted
            # No process hangs: the running daemon answers, and every HSM
            # process but the current one is gone.
            current = hsm_pid_now(d)
            seen_hsm.add(current)
            d.hsm_pids = sorted(set(d.hsm_pids) | seen_hsm)
            wait_for(lambda: not [p for p in seen_hsm if p != current and pid_alive(p) and
                                  is_hsm_process(p)], HANG_BOUND_S,
                     "every earlier HSM process has exited (none hangs)")
            print("     restart %d (under load): %r, first success %.2f s after the server "
                  "was back%s" % (i + 1, load.counts, times[-1],
                                  " (regsignd restarted by the loop)" if restarted else ""),
                  flush=True)
    finally:
        sup.stop()
    STATE["exits"] = sup.exits
    print("     recovery after the HSM was back: max %.2f s, mean %.2f s (goal <= 5 s)%s; "
          "%d of %d through a restart of regsignd; exits %r" %
          (max(times), sum(times) / len(times),
           "" if max(times) <= 5.0 else "  ** GOAL MISSED **", via_restart, n,
           [c for _, c in sup.exits]))
    write_figures({"variant": "under-load", "restarts": n, "away_s": AWAY_S, "times_s": times,
                   "max_s": max(times), "mean_s": sum(times) / len(times),
                   "via_regsignd_restart": via_restart, "exits": [c for _, c in sup.exits]})
    check(all(c in (1,) for _, c in sup.exits),
          "regsignd only ever exited 1 (its HSM process died): %r" % sup.exits)
    log = d.log_text(full=True)
    if via_restart:
        check(any(m in log for m in ("HSM process ended by its watchdog",
                                     "HSM process exited with status",
                                     "HSM process killed by signal")),
              "the front logged why its HSM process ended")
        ev = hsm_events(d)
        check("hsm-watchdog" in ev or "hsm-lost" in ev,
              "the audit log records the HSM process's end: %r" % ev)


def status_hsm(d):
    try:
        with d.client(timeout=5) as c:
            import json
            return json.loads(c.status())["hsm"]
    except Exception as e:  # noqa: BLE001 - diagnosis only
        return repr(e)


def t_restart_idle(d):
    restarts(d, RESTARTS, under_load=False)


def t_restart_under_load(d):
    restarts_under_load(d, LOAD_RESTARTS)


def t_nothing_lost_nothing_twice(d):
    ledger = STATE["ledger"]
    check_refused_not_done(d, STATE["refused"])
    issues, revokes = audit_invariants(d, ledger)
    check(d.stop() == 0, "SIGTERM: exit 0")
    d.start()
    n = check_ledger(d, ledger)
    check(d.verify_zone_if_present(), "the zone file is written and verifies")
    check_zone_against_ledger(d, ledger)
    d.audit_verify(d.status()["audit"]["head"])
    print("     %d acknowledged changes intact after restart; %d refused changed nothing; "
          "audit: %d issued, %d revoked" % (n, len(STATE["refused"]), issues, revokes))
    check(d.stop() == 0, "SIGTERM: exit 0")


if __name__ == "__main__":
    if variant_args(STATE) == ["under-load"]:
        daemon = P11KitDaemon("attack-p11kit-load")
        daemon.under_load = True
        main([t_setup, t_restart_under_load, t_nothing_lost_nothing_twice], daemon)
    main([t_setup, t_restart_idle, t_nothing_lost_nothing_twice],
         P11KitDaemon("attack-p11kit"))
