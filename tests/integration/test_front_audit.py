#!/usr/bin/env python3
"""The front's request path records the same decisions whatever it skips
formatting: a real regsignd on a fresh SoftHSM token, SIGN_RRSET and ISSUE
allowed and refused, and each audit record's rule and detail compared with the
exact texts (the policy makes an allow's message only where the record uses
it, and a refusal's only when it refuses)."""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (DEVICE, Daemon, check, expect_refusal, last_denial,  # noqa: E402
                        main, make_csr)


def name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def a_rrset(owner, addr):
    rdata = bytes(int(x) for x in addr.split("."))
    return name_wire(owner) + struct.pack("!HHIH", 1, 1, 3600, len(rdata)) + rdata


def records_of(d, op, since):
    return [r for r in d.audit_records()[since:] if r.get("op") == op]


def t_start(d):
    d.start()


def t_sign_rrset_allowed(d):
    since = len(d.audit_records())
    now = int(time.time())
    with d.client() as c:
        sig = c.sign_rrset("asp.test.", a_rrset("WWW.asp.test.", "192.0.2.1"), now - 3600,
                           now + 86400)
    check(len(sig) > 64, "SIGN_RRSET answered an RRSIG")
    recs = records_of(d, "sign-rrset", since)
    req = [r for r in recs if r["type"] == "request"]
    check(len(req) == 1 and req[0]["decision"] == "allow", "one allowed request: %r" % recs)
    check(req[0]["rule"] == "extra-zones[asp.test.]", "the zone's rule: %r" % req[0])
    check(req[0]["detail"] == "www.asp.test. A in zone asp.test.",
          "the detail names owner, type and zone: %r" % req[0])
    check(any(r["type"] == "result" for r in recs), "a result follows: %r" % recs)


def t_sign_rrset_refusals(d):
    now = int(time.time())
    cases = [
        # (zone, owner, inception, expiration, rule, the message's exact text)
        ("asp.test.", "www.asp.test.", now, now + 31 * 86400,
         "extra-zones[asp.test.].max-validity",
         "signature validity from %d to %d is longer than 30d" % (now, now + 31 * 86400)),
        ("asp.test.", "www.asp.test.", now + 7200, now + 86400,
         "extra-zones[asp.test.].max-inception-skew", None),
        ("asp.test.", "www.asp.test.", now + 10, now + 10, "builtin.validity-order",
         "expiration %d is not after inception %d" % (now + 10, now + 10)),
        ("iotregistry.test.", "x.iotregistry.test.", now, now + 3600, "builtin.registry-zone",
         "zone 'iotregistry.test.' is the registry zone or inside it; only regsignd signs it"),
        ("nowhere.test.", "www.nowhere.test.", now, now + 3600, "extra-zones",
         "zone 'nowhere.test.' is not an extra zone"),
    ]
    for zone, owner, inc, exp, rule, text in cases:
        since = len(d.audit_records())
        with d.client() as c:
            e = expect_refusal(lambda: c.sign_rrset(zone, a_rrset(owner, "192.0.2.7"), inc, exp),
                               "DENIED", "SIGN_RRSET %s %s..%s" % (zone, inc, exp))
        den = last_denial(d, "sign-rrset", since)
        check(den["rule"] == rule, "rule %s: %r" % (rule, den))
        if text is not None:
            want = "%s (%s)" % (text, rule)
            check(den["detail"] == want, "refusal text %r: %r" % (want, den))
            check(e.message == want, "the reply carries it: %r" % e.message)


def t_issue_allowed(d):
    since = len(d.audit_records())
    csr, _ = make_csr(d.base)
    with d.client() as c:
        r = c.issue(DEVICE, 1, "device", csr)
    check(len(r["cert_der"]) > 200, "ISSUE answered a certificate")
    req = [x for x in records_of(d, "issue", since) if x["type"] == "request"]
    check(len(req) == 1 and req[0]["decision"] == "allow", "one allowed ISSUE: %r" % req)
    check(req[0]["rule"] == "profiles.device", "the profile's rule: %r" % req[0])
    check(req[0]["detail"] == "certificate 1.%s under profile 'device' allowed" % DEVICE.lower(),
          "the allow's message is the detail: %r" % req[0])


def t_issue_refusals(d):
    csr, _ = make_csr(d.base)
    since = len(d.audit_records())
    with d.client() as c:
        e = expect_refusal(lambda: c.issue("8912230200031010008Z", 1, "device", csr), "BAD_REQUEST",
                           "a device id that is not hex")
    den = last_denial(d, "issue", since)
    want = "device id '8912230200031010008Z' may hold only hex digits (device-id)"
    check(den["rule"] == "device-id" and den["detail"] == want and e.message == want,
          "not hex: %r / %r" % (den, e.message))
    since = len(d.audit_records())
    with d.client() as c:
        expect_refusal(lambda: c.issue(DEVICE, 2, "nosuchprofile", csr), "DENIED",
                       "unknown profile")
    den = last_denial(d, "issue", since)
    check(den["rule"] == "profiles" and
          den["detail"] == "there is no profile 'nosuchprofile' (profiles)",
          "unknown profile: %r" % den)


if __name__ == "__main__":
    main([t_start, t_sign_rrset_allowed, t_sign_rrset_refusals, t_issue_allowed,
          t_issue_refusals], Daemon("front-audit"))
