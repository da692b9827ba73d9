#!/usr/bin/env python3
"""HSM faults under load through the fault-injection PKCS#11 module (attack 2
of brief O; the module is tests/fault/p11fault.c, in front of SoftHSM).

While four clients issue and revoke without pause, the "HSM" fails C_Sign and
C_SignInit with each recoverable CKR_ code, has all its sessions invalidated,
and goes away for a while (shorter and longer than hsm.recover-timeout).
Throughout: the daemon does not crash, every request gets a reply and each
reply is OK or UNAVAILABLE, a request refused changed nothing, nothing is
done twice (audit log and store), every acknowledged change survives a
restart, service comes back by itself, STATUS shows the HSM's state while it
is away, and the audit log records the HSM lost and recovered.

config_load's module allow-list is /usr/lib, /usr/lib64, /usr/local/lib plus
every `regsignd --module-dir DIR`; the test passes the build's lib dir.
"""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_lib import (LONG, AttackDaemon, Ledger, Load, TestFailure,  # noqa: E402
                        audit_invariants, check, check_ledger, check_refused_not_done,
                        check_zone_against_ledger, csr_pool, main, wait_for)

# The codes libregsign-hsm treats as "sessions, login or device lost"
# (pkcs11/hsm.h): each must be survived by recovery and one retry.
RECOVERABLE = ["CKR_SESSION_HANDLE_INVALID", "CKR_SESSION_CLOSED", "CKR_DEVICE_ERROR",
               "CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "CKR_USER_NOT_LOGGED_IN",
               "CKR_KEY_HANDLE_INVALID", "CKR_OBJECT_HANDLE_INVALID",
               "CKR_CRYPTOKI_NOT_INITIALIZED"]
PHASE_S = 6.0 if LONG else 1.5
STATE = {}


def t_setup(d):
    d.use_fault_module()
    d.fault("count *\n")
    # A short recovery deadline: a request waits at most about this long for
    # the HSM, then gets UNAVAILABLE (30 s in the development setup).
    cfg = re.sub(r"(?m)^  recover-timeout: .*$", "  recover-timeout: 2s", d.config_text())
    d.set_config(cfg)
    d.start()
    STATE["csrs"] = csr_pool(d.base, 32)
    STATE["ledger"] = Ledger()
    STATE["refused"] = []
    STATE["tag"] = 20


def under_load(d, control, settle=PHASE_S, after=None, allowed=("UNAVAILABLE",)):
    """Runs the load, writes `control` to the fault module, lets it run for
    `settle` seconds (calling after(load) if given), lifts the fault, and
    checks every reply. Returns the Load."""
    STATE["tag"] += 1
    load = Load(d, STATE["ledger"], STATE["csrs"], clients=4, allowed=allowed,
                tag=STATE["tag"]).start()
    time.sleep(0.3)
    before = d.fault_stats().get("injected", 0)
    d.fault("count *\n" + control)
    time.sleep(settle)
    if after:
        after(load)
    d.fault("count *\n")
    # Service is back: new requests succeed again while the load goes on.
    t_back = time.time()
    wait_for(lambda: load.ok_since(t_back) >= 4, 60,
             "the daemon serves again after '%s'" % control.strip().replace("\n", "; "))
    load.stop()
    check(not load.errors, "'%s': wrong answers or lost requests: %r" %
          (control.strip(), load.errors[:5]))
    check(d.proc.poll() is None, "the daemon survived '%s'" % control.strip())
    STATE["refused"] += load.refused_issues
    STATE["injected"] = d.fault_stats().get("injected", 0) - before
    return load


def t_each_recoverable_code(d):
    summary = []
    for code in RECOVERABLE:
        for fn in ("C_Sign", "C_SignInit"):
            load = under_load(d, "%s %s 3\n" % (fn, code), settle=0.5)
            check(STATE["injected"] >= 1, "%s %s: the fault was injected (%d)" %
                  (fn, code, STATE["injected"]))
            summary.append("%s/%s %s" % (fn, code[4:], load.counts))
    st = d.status()
    check(st["hsm"]["state"] == "up", "the HSM is up after the faults: %r" % st["hsm"])
    check(st["hsm"]["recoveries"] >= len(RECOVERABLE), "each fault caused a recovery: %r" %
          st["hsm"])
    stats = d.fault_stats()
    # "mixup" (a C_Sign by another thread than the C_SignInit before it) is by
    # design since hsm.sign-ahead (default true): an idle worker initialises the
    # operation that another worker's request then consumes, the session handed
    # over under the pool's lock. Two threads on one session at once is "overlap".
    check(stats.get("overlap", 0) == 0,
          "no session used by two threads at once: %r" % stats)
    print("     %d codes x C_Sign/C_SignInit survived; e.g. %s" % (len(RECOVERABLE),
                                                                    summary[0]))


def t_every_call_fails_for_a_while(d):
    """Every C_Sign fails for longer than recover-timeout: callers get
    UNAVAILABLE, none hang, and service returns when the HSM does."""
    load = under_load(d, "C_Sign CKR_DEVICE_ERROR inf\n", settle=max(PHASE_S, 5.0))
    check(load.counts.get("UNAVAILABLE", 0) >= 1,
          "requests got UNAVAILABLE while every signature failed: %r" % load.counts)


def t_sessions_invalidated(d):
    rec0 = d.status()["hsm"]["recoveries"]
    for _ in range(3 if not LONG else 10):
        under_load(d, "invalidate\ndelay C_Sign 2\n", settle=0.7)
    st = d.status()
    check(st["hsm"]["recoveries"] > rec0, "invalidated sessions were recovered: %r" % st["hsm"])


def t_token_down_short(d):
    """Away for 1 s (< recover-timeout 2 s): requests wait and succeed."""
    load = under_load(d, "invalidate\ndown-ms 1000\n", settle=1.5)
    check(load.counts.get("OK", 0) >= 4, "requests succeeded across a short absence: %r" %
          load.counts)


def hsm_events(d):
    return [r.get("event") for r in d.audit_records()
            if r.get("type") == "event" and r.get("event", "").startswith("hsm-")]


def lost_then_recovered(ev):
    return "hsm-lost" in ev and "hsm-recovered" in ev[ev.index("hsm-lost"):]


def t_token_down_long(d):
    """Token away for 6 s (recover-timeout 2 s): requests get UNAVAILABLE,
    STATUS shows the HSM not up, the audit log records lost and recovered,
    and service returns by itself; the time to the first success after the
    token is back is printed."""
    # Let the daemon's 2 s HSM poll record the earlier phases' events first.
    time.sleep(2.5)
    events0 = len(hsm_events(d))
    seen_states = set()

    def watch(load):
        end = time.time() + 5.5
        while time.time() < end:
            with d.client(timeout=10) as c:
                seen_states.add(json.loads(c.status())["hsm"]["state"])
            time.sleep(0.1)

    STATE["tag"] += 1
    load = Load(d, STATE["ledger"], STATE["csrs"], clients=4, tag=STATE["tag"]).start()
    time.sleep(0.3)
    d.fault("count *\ninvalidate\ndown-ms 6000\n")
    t_down = time.time()
    watch(load)
    back_at = t_down + 6.0
    wait_for(lambda: load.ok_since(back_at) >= 1, 60, "service back after the token returned")
    first_ok = min(t for t, _, name in load.log if t >= back_at and name == "OK")
    load.stop()
    check(not load.errors, "token away: wrong answers or lost requests: %r" % load.errors[:5])
    STATE["refused"] += load.refused_issues
    check(load.counts.get("UNAVAILABLE", 0) >= 1, "UNAVAILABLE while the token was away: %r"
          % load.counts)
    check(seen_states - {"up"}, "STATUS showed the HSM not up while it was away: %r" %
          seen_states)
    wait_for(lambda: d.status()["hsm"]["state"] == "up", 30, "STATUS shows the HSM up again")
    try:
        wait_for(lambda: lost_then_recovered(hsm_events(d)[events0:]), 10,
                 "hsm-lost then hsm-recovered in the audit log")
    except TestFailure:
        raise TestFailure("the audit log records the HSM lost, then recovered: %r" %
                          hsm_events(d)[events0:])
    print("     token away 6 s: %r; states seen %s; first success %.2f s after the token "
          "returned" % (load.counts, sorted(seen_states), first_ok - back_at))
    check(first_ok - back_at <= 5.0, "service back within 5 s of the HSM (%.2f s)" %
          (first_ok - back_at))


def t_short_loss_audited(d):
    """A loss that recovery repairs in milliseconds is still an HSM loss: the
    audit log must record it (and its recovery), not only losses that last
    across the daemon's 2 s STATUS poll."""
    events0 = len(hsm_events(d))
    rec0 = d.status()["hsm"]["recoveries"]
    under_load(d, "invalidate\n", settle=0.3)
    wait_for(lambda: d.status()["hsm"]["recoveries"] > rec0, 10, "a recovery happened")
    time.sleep(4.5)  # two poll periods
    ev = hsm_events(d)[events0:]
    check("hsm-lost" in ev and "hsm-recovered" in ev,
          "a recovered loss (recoveries %d -> %d) is in the audit log: events %r" %
          (rec0, d.status()["hsm"]["recoveries"], ev))


def t_nothing_lost_nothing_twice(d):
    ledger = STATE["ledger"]
    check_refused_not_done(d, STATE["refused"])
    issues, revokes = audit_invariants(d, ledger)
    check(d.stop() == 0, "SIGTERM: exit 0")
    d.fault("# pass-through\n")
    d.start()
    n = check_ledger(d, ledger)
    check(d.verify_zone_if_present(), "the zone file is written and verifies")
    check_zone_against_ledger(d, ledger)
    check_refused_not_done(d, STATE["refused"])
    d.audit_verify(d.status()["audit"]["head"])
    print("     %d acknowledged changes intact after restart; %d refused requests changed "
          "nothing; audit: %d issued, %d revoked" % (n, len(STATE["refused"]), issues, revokes))
    check(d.stop() == 0, "SIGTERM: exit 0")


if __name__ == "__main__":
    if sys.argv[1:] == ["short-loss-audited"]:
        main([t_setup, t_short_loss_audited, t_nothing_lost_nothing_twice],
             AttackDaemon("attack-hsmloss"))
    main([t_setup, t_each_recoverable_code, t_every_call_fails_for_a_while,
          t_sessions_invalidated, t_token_down_short, t_token_down_long,
          t_nothing_lost_nothing_twice], AttackDaemon("attack-hsmfault"))
