#!/usr/bin/env python3
"""A bad signature in a running daemon's zone is found and repaired by the
background verification. A restart loads the zone from the state database
without verifying a signature (issue 5, target 5), so a signature spoilt in
the database while the daemon is stopped is served after the start: the
background pass must find it, say so (the log, ZONE_STATUS's counters and
health), re-sign the RRset in a new serial, store the repair, and come back
to healthy; the zone file written afterwards passes ldns-verify-zone and
dnssec-verify."""

import os
import signal
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import DEVICE, Daemon, check, main, make_csr, need_tool, run, wait_for  # noqa: E402

STATE = {}
ZONE = "iotregistry.test"


def db_path(d):
    return os.path.join(d.dir, "state", "regsign.db")


def device_row(db):
    """The stored name of the device: (key, data)."""
    rows = [(k, v) for k, v in db.execute("SELECT key, data FROM zone_names")
            if k[:1] == b"n" and DEVICE.lower().encode() in k]
    check(len(rows) == 1, "one stored zone name of the device: %d" % len(rows))
    return rows[0]


def t_start(d):
    d.start()
    csr, _ = make_csr(d.base)
    with d.client() as c:
        c.issue(DEVICE, 1, "", csr)
    zs = d.zone_status()
    check(zs["health"] == "ok" and zs["verify_failures"] == 0,
          "healthy before anything is spoilt: %r" % zs["failures"])
    STATE["serial"] = zs["serial"]
    check(d.stop() == 0, "regsignd exits 0 on SIGTERM")


def t_spoil_a_signature(d):
    db = sqlite3.connect(db_path(d))
    key, data = device_row(db)
    # The node's last bytes are its last RRset's signature (r || s): the
    # stored form stays well formed, only the signature no longer verifies.
    bad = data[:-1] + bytes([data[-1] ^ 0x01])
    db.execute("UPDATE zone_names SET data = ? WHERE key = ?", (bad, key))
    db.commit()
    db.close()
    STATE["key"], STATE["bad"] = key, bad


def t_found_and_repaired(d):
    d.start()
    zs = wait_for("the background pass to find the bad signature",
                  lambda: (lambda z: z if z["verify_failures"] >= 1 else None)(d.zone_status()), 120)
    check(DEVICE.lower() in zs["verify_last_failure"].lower(),
          "the failure names the device's owner: %r" % zs["verify_last_failure"])
    check("signature verification failed" in d.log_text(full=True),
          "the log says a signature failed verification")
    # Re-signed in a serial after the one stored before the start, and a
    # later pass found the zone clean.
    zs = wait_for("re-signed and a clean pass",
                  lambda: (lambda z: z if z["health"] == "ok" and z["serial"] > STATE["serial"]
                           and not z["verify_failing"] else None)(d.zone_status()), 180)
    check(zs["verify_repairs"] >= 1, "the repair is counted: %r" % zs["verify_repairs"])
    check(zs["failures"] == [], "no failure left: %r" % zs["failures"])
    db = sqlite3.connect(db_path(d))
    _, data = device_row(db)
    db.close()
    check(data != STATE["bad"], "the repaired name is stored again")


def t_zone_file_verifies(d):
    serial = d.zone_status()["serial"]
    os.kill(d.proc.pid, signal.SIGUSR1)
    wait_for("the zone file at serial %d" % serial,
             lambda: d.zone_status()["zone_file"]["serial"] >= serial, 60)
    zf = os.path.join(d.dir, "state", "zone.db")
    p = run([need_tool("ldns-verify-zone"), zf])
    check(p.returncode == 0, "ldns-verify-zone on the repaired zone:\n%s%s" % (p.stdout, p.stderr))
    p = run([need_tool("dnssec-verify"), "-o", ZONE + ".", zf])
    check(p.returncode == 0, "dnssec-verify on the repaired zone:\n%s%s" % (p.stdout, p.stderr))


def t_stop(d):
    check(d.stop() == 0, "regsignd exits 0 on SIGTERM")


if __name__ == "__main__":
    daemon = Daemon("verify-repair")
    main([t_start, t_spoil_a_signature, t_found_and_repaired, t_zone_file_verifies, t_stop],
         daemon)
