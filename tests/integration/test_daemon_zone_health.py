#!/usr/bin/env python3
"""The zone's health in ZONE_STATUS and STATUS, with signature lifetimes cut
to the policy's minimum so that re-signing is due every few seconds: the
scheduler keeps every signature valid while the HSM answers; with the HSM
process stopped (SIGSTOP) the signatures stay inside their refresh margin
and ZONE_STATUS reports the failure; once the HSM process runs again
(SIGCONT) the zone is re-signed and healthy again, and STATUS agrees."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import DEVICE, Daemon, check, main, make_csr, wait_for  # noqa: E402

STATE = {}


def t_resigning_keeps_up(d):
    d.start()
    csr, _ = make_csr(d.base)
    with d.client() as c:
        c.issue(DEVICE, 1, "", csr)
    first = d.zone_status()
    # Every RRset is due 10 s after it was signed: the scheduler re-signs.
    zs = wait_for("a re-signed version", lambda: (lambda z: z if z["resigned"] >= 2 else None)(
        d.zone_status()), 60)
    check(zs["serial"] > first["serial"], "re-signing makes new serials")
    check(zs["health"] == "ok" and zs["failures"] == [],
          "healthy while the HSM keeps up: %r" % zs["failures"])
    check(zs["earliest_expiration"] > time.time(), "no signature has expired")
    check(d.status()["health"] == "ok", "STATUS health ok")


def t_hsm_stopped_is_a_failure(d):
    pid = d.status()["hsm"]["pid"]
    STATE["hsm"] = pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # Due after 10 s, failing after the grace of 3 re-sign intervals (30 s).
        zs = wait_for("a margin failure", lambda: (lambda z: z if z["health"] == "failing"
                                                   else None)(d.zone_status()), 120)
        check(any("refresh margin" in f for f in zs["failures"]),
              "the failure names the refresh margin: %r" % zs["failures"])
    finally:
        os.kill(pid, signal.SIGCONT)


def t_recovers(d):
    zs = wait_for("health back to ok", lambda: (lambda z: z if z["health"] == "ok"
                                                else None)(d.zone_status()), 120)
    check(zs["failures"] == [], "no failure left: %r" % zs["failures"])
    st = d.status()
    check(st["zone"]["health"] == "ok" and st["health"] == "ok",
          "STATUS is healthy again: %r" % st["zone"])
    check(st["hsm"]["pid"] == STATE["hsm"], "the same HSM process")


if __name__ == "__main__":
    daemon = Daemon("zonehealth")
    for old, new in (("  device-ttl: 300 ", "  device-ttl: 60 "),
                     ("  device-signature-validity: 6h ", "  device-signature-validity: 600 "),
                     ("  device-signature-refresh: 3h ", "  device-signature-refresh: 590 "),
                     ("  signature-validity: 14d ", "  signature-validity: 3600 "),
                     ("  signature-refresh: 5d ", "  signature-refresh: 3590 "),
                     ("  ttl: 3600 ", "  ttl: 300 ")):
        daemon.edit(daemon.policy, old, new)
    main([t_resigning_keeps_up, t_hsm_stopped_is_a_failure, t_recovers], daemon)
