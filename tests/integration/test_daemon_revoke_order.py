#!/usr/bin/env python3
"""REVOKE's order of events in regsignd (issue 5, target 3), on a fresh SoftHSM
token: a revocation named by index hands its zone change to the zone thread
while its INTENT record commits, but the HSM is asked for the change's
signatures only once that INTENT is durable. The daemon runs at log level
debug, where each revocation logs its stage times (`trace revoke`: when the
INTENT's COMMIT returned) and each published serial the HSM batch's
(`trace hsm`: when it was sent); one revocation at a time, so the batch is
that revocation's. And the refusals of the first pass (unknown index, a
reason the policy does not allow while the name is in the zone, a repeat of
a revocation) answer with their own code or the first answer, publish no new
serial, leave the name as it was, and leave the zone working."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import Daemon, check, expect_refusal, main, make_csr  # noqa: E402

DEV = "89122302000310200"  # + 3 hex digits per device
N = 8


def served_serial(d):
    with d.client() as c:
        return d_json(c.zone_status())["serial"]


def d_json(x):
    import json
    return json.loads(x) if isinstance(x, (str, bytes)) else x


def issue(d, device, index=1):
    csr, _ = make_csr(d.base)
    with d.client() as c:
        return c.issue(device, index, "", csr)


def traces(d, what):
    """{serial: {key: int}} of the log's `trace <what>` lines."""
    out = {}
    for line in d.log_text(full=True).splitlines():
        if "trace %s " % what not in line:
            continue
        kv = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line.split("trace %s " % what)[1])}
        out[kv["serial"]] = kv
    return out


def t_start(d):
    d.edit(d.config, "  level: info", "  level: debug")
    d.start()


def t_hsm_after_intent_durable(d):
    serials = []
    for i in range(N):
        issue(d, DEV + "%03x" % i)
    for i in range(N):
        before = served_serial(d)
        with d.client() as c:
            r = c.revoke(DEV + "%03x" % i, index=1, reason="cessationOfOperation")
        check(r["zone_serial"] > before, "REVOKE %d publishes a new serial (%d after %d)" %
              (i, r["zone_serial"], before))
        serials.append(r["zone_serial"])
    # The trace lines of the last serial may follow its reply by a moment.
    end = time.time() + 10
    while time.time() < end and not all(s in traces(d, "hsm") for s in serials):
        time.sleep(0.05)
    rev, hsm = traces(d, "revoke"), traces(d, "hsm")
    for s in serials:
        check(s in rev and s in hsm, "serial %d has its revoke and hsm trace lines" % s)
        t = rev[s]
        check(t["early"] == 1, "serial %d: the zone change started beside the INTENT: %r" % (s, t))
        durable = t["t0"] + t["idurable"]
        check(t["idurable"] > 0 and hsm[s]["sent"] >= durable,
              "serial %d: the HSM was asked at %d us, the INTENT durable at %d us" %
              (s, hsm[s]["sent"], durable))


def refused_keeps_zone(d, fn, code, what):
    before = served_serial(d)
    e = expect_refusal(fn, code, what)
    time.sleep(0.2)
    check(served_serial(d) == before, "%s publishes no serial (%d, then %d)" %
          (what, before, served_serial(d)))
    return e


def t_refusals_publish_nothing(d):
    dev = DEV + "f00"
    issue(d, dev)
    with d.client() as c:
        # Unknown index: the first pass refuses, the zone has no such name.
        refused_keeps_zone(d, lambda: c.revoke(dev, index=7, reason="superseded"), "NOT_FOUND",
                           "REVOKE of an index never issued")
        # A reason the policy does not list, with the name in the zone: the
        # zone had built its removal meanwhile; it must never be published.
        refused_keeps_zone(d, lambda: c.revoke(dev, index=1, reason="privilegeWithdrawn"),
                           "DENIED", "REVOKE with a reason the policy does not allow")
    with d.client() as c:
        st = d_json(c.zone_status())
    # A refused revocation is no failure of the zone: the version built for
    # it meanwhile is withdrawn before signing, quietly.
    check(st.get("health") == "ok" and not st.get("failures"),
          "the zone stays healthy after the refusals: %r / %r"
          % (st.get("health"), st.get("failures")))
    log = d.log_text(full=True)
    check("withdrawn before signing" in log and "zone change:" not in log,
          "the withdrawal is logged as such, not as a zone failure")
    # The name is still there: a new change on top of the zone removes it.
    before = served_serial(d)
    with d.client() as c:
        r1 = c.revoke(dev, index=1, reason="keyCompromise")
    check(r1["zone_serial"] > before, "the zone still publishes after the refusals (%d after %d)"
          % (r1["zone_serial"], before))
    recs = len(d.audit_records())
    # A repeat: the first answer, no new serial, no new record.
    with d.client() as c:
        r2 = c.revoke(dev, index=1, reason="keyCompromise")
    check(r2["revoked_at"] == r1["revoked_at"] and r2["zone_serial"] == served_serial(d) and
          served_serial(d) == r1["zone_serial"],
          "a repeated REVOKE answers as the first and publishes nothing: %r / %r" % (r1, r2))
    results = [x for x in d.audit_records()[recs:] if x.get("type") == "result"]
    check(not any(x.get("op") == "revoke" and x.get("zone_serial") for x in results),
          "a repeated REVOKE writes no new zone RESULT: %r" % results)
    check(st.get("serial") == before, "ZONE_STATUS after the refusals names the same serial")


def t_stop(d):
    check(d.stop() == 0, "regsignd exits 0 on SIGTERM")


if __name__ == "__main__":
    daemon = Daemon("revoke-order")
    main([t_start, t_hsm_after_intent_durable, t_refusals_publish_nothing, t_stop], daemon)
