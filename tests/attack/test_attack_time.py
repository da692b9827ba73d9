#!/usr/bin/env python3
"""The daemon at faked dates (attack 7 of brief O), with libfaketime
(Debian package faketime / libfaketime).

For each date (just past 2^31 s, 2040, late 2105 and past 2^32 s in 2106),
a whole development setup (token, key ceremony, CA certificates) is made and
the daemon run with the clock faked to that date (the clock still runs).
Checks: ISSUE works; the certificate's validity starts at the faked now
minus the policy's backdate and lasts the profile's validity, each time
encoded as RFC 5280 §4.1.2.5 says (UTCTime through 2049, GeneralizedTime
from 2050); REVOKE reports the faked time; the CRL's thisUpdate is the faked
date; the audit log's times are the faked date and it verifies
(`regsign audit verify`, also at the faked date); once the zone is wired and
the zone file exists, `ldns-verify-zone` at the same faked date passes on it.
Then the clock jumps (forward a day, back an hour) under a running daemon:
issuing keeps working, the audit log and the zone still verify.
"""

import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_lib import (AttackDaemon, TestFailure, check, device_id, make_csr,  # noqa: E402
                        asan_options, need_tool, preload_env, run, sanitized)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
DATES = ["2038-01-19 03:14:10", "2038-01-20 12:00:00", "2040-06-01 12:00:00",
         "2105-12-01 00:00:00", "2106-02-01 00:00:00", "2106-03-01 00:00:00"]
VALIDITY = 365 * 86400   # profile 'device' of the example policy
BACKDATE = 3600


def clean_stale_faketime():
    """libfaketime names its semaphore and shared memory after the pid of the
    process that made them (/dev/shm/sem.faketime_sem_<pid>,
    /dev/shm/faketime_shm_<pid>) and removes them only at a normal exit. A
    process killed under it (these tests kill daemons) leaves them behind,
    and a later process given the same pid then fails in sem_open or, worse,
    attaches to the stale segment and runs at another faked time. Remove the
    ones whose process is gone before starting anything under libfaketime."""
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return
    for name in names:
        for prefix in ("sem.faketime_sem_", "faketime_shm_"):
            if not name.startswith(prefix) or not name[len(prefix):].isdigit():
                continue
            if os.path.exists("/proc/%s" % name[len(prefix):]):
                continue
            try:
                os.unlink(os.path.join("/dev/shm", name))
            except OSError:
                pass


def fake_env(date, tools=False):
    """The environment of a program run at the faked date. tools: for the
    programs of the setup (dev-setup, regsign-ceremony, openssl,
    pkcs11-tool): in the sanitizer build their leaks are not counted here."""
    check(os.path.exists(FAKETIME_LIB), "%s is missing (apt-get install faketime)" %
          FAKETIME_LIB)
    clean_stale_faketime()
    env = preload_env(os.environ, [FAKETIME_LIB])
    env.update(FAKETIME="@" + date, TZ="UTC", FAKETIME_DONT_RESET="1")
    if tools and sanitized():
        asan_options(env, "detect_leaks=0")
    return env


# ---- DER, just enough to read a certificate's validity and a CRL's thisUpdate ----

def tlv(data, pos):
    tag = data[pos]
    n = data[pos + 1]
    hl = 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[pos + 2:pos + 2 + k], "big")
        hl = 2 + k
    return tag, pos + hl, n


def children(data, pos, n):
    out = []
    end = pos + n
    while pos < end:
        tag, c, ln = tlv(data, pos)
        out.append((tag, c, ln))
        pos = c + ln
    return out


def der_time(tag, raw):
    s = raw.decode()
    if tag == 0x17:
        year = int(s[:2])
        year += 2000 if year < 50 else 1900
        s = "%d%s" % (year, s[2:])
    elif tag != 0x18:
        raise TestFailure("not a Time: tag 0x%02x" % tag)
    check(s.endswith("Z") and len(s) == 15, "time in YYYYMMDDHHMMSSZ form: %r" % raw)
    dt = datetime.datetime.strptime(s, "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    return dt


def cert_validity(der):
    _, c, n = tlv(der, 0)
    tbs_tag, tc, tn = children(der, c, n)[0]
    f = children(der, tc, tn)
    if f[0][0] == 0xA0:
        f = f[1:]
    _, vc, vn = f[3]     # serial, signature, issuer, validity
    (t1, c1, n1), (t2, c2, n2) = children(der, vc, vn)
    return (t1, der_time(t1, der[c1:c1 + n1])), (t2, der_time(t2, der[c2:c2 + n2]))


def crl_this_update(der):
    _, c, n = tlv(der, 0)
    _, tc, tn = children(der, c, n)[0]
    f = children(der, tc, tn)
    if f[0][0] == 0x02:
        f = f[1:]        # version
    t, c1, n1 = f[2]     # signature, issuer, thisUpdate
    return t, der_time(t, der[c1:c1 + n1])


def expect_encoding(tag, dt, what):
    want = 0x17 if dt.year < 2050 else 0x18
    check(tag == want, "%s %s encoded as %s (RFC 5280: %s)" %
          (what, dt.isoformat(), "UTCTime" if tag == 0x17 else "GeneralizedTime",
           "UTCTime" if want == 0x17 else "GeneralizedTime"))


def one_date(date):
    env = fake_env(date)
    tools = fake_env(date, tools=True)
    saved = dict(os.environ)
    # dev-setup (token, ceremony, CA certificates) runs at the faked date too:
    # a CA made today would have expired long before 2105.
    os.environ.clear()
    os.environ.update(tools)
    try:
        d = AttackDaemon("attack-time")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        fake_now = datetime.datetime.strptime(date, "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=datetime.timezone.utc)
        d.start(env=env)
        csr, _ = make_csr(d.base)
        dev = device_id(90, int(date[:4]))
        with d.client() as c:
            rep = c.issue(dev, 1, "device", csr)
            (tb, nb), (ta, na) = cert_validity(rep["cert_der"])
            # The faked clock runs from the start of the setup: allow for it.
            slack = datetime.timedelta(minutes=10)
            check(abs(nb - (fake_now - datetime.timedelta(seconds=BACKDATE))) <= slack,
                  "%s: notBefore %s is the faked now minus the backdate" % (date, nb))
            life = (na - nb).total_seconds()
            check(abs(life - VALIDITY) <= 2 * BACKDATE, "%s: validity %s .. %s lasts the "
                  "profile's 365 d (%.0f s)" % (date, nb, na, life))
            expect_encoding(tb, nb, "%s: notBefore" % date)
            expect_encoding(ta, na, "%s: notAfter" % date)
            # openssl agrees and the chain verifies at the faked date.
            path = os.path.join(d.base, "cert.der")
            with open(path, "wb") as f:
                f.write(rep["cert_der"])
            p = run(["openssl", "x509", "-inform", "DER", "-in", path, "-out",
                     path + ".pem"])
            check(p.returncode == 0, "openssl reads the certificate: %s" % p.stderr)
            chain = os.path.join(d.out, "issuing-ca.pem")
            p = run(["openssl", "verify", "-CAfile", os.path.join(d.out, "root-ca.pem"),
                     "-untrusted", chain, path + ".pem"], env=tools)
            check(p.returncode == 0, "%s: the certificate verifies at the faked date: %s%s" %
                  (date, p.stdout, p.stderr))
            rv = c.revoke(dev, 1, reason="keyCompromise")
            check(abs(rv["revoked_at"] - fake_now.timestamp()) <= slack.total_seconds(),
                  "%s: revoked_at %d is the faked now" % (date, rv["revoked_at"]))
            crl = c.crl()
            t, this_update = crl_this_update(crl)
            check(abs(this_update - fake_now) <= slack, "%s: CRL thisUpdate %s" %
                  (date, this_update))
            expect_encoding(t, this_update, "%s: CRL thisUpdate" % date)
            head = json_status(c)["audit"]["head"]
        years = {r["time"][:4] for r in d.audit_records()}
        check(years == {date[:4]}, "%s: audit times in the faked year: %r" % (date, years))
        d.audit_verify(head)
        p = run([d.regsign, "audit", "verify", "--key", os.path.join(d.out, "audit.pub"),
                 "--head", head, d.audit], env=env)
        check(p.returncode == 0, "%s: audit verify at the faked date: %s%s" %
              (date, p.stdout, p.stderr))
        # The zone at the faked date: written on SIGUSR1, checked by
        # ldns-verify-zone with the same faked clock (RRSIG times are serial
        # numbers modulo 2^32, RFC 4034 §3.1.5).
        zone = verify_zone(d, date, fake_now)
        check(d.stop() == 0, "%s: SIGTERM: exit 0" % date)
        d.check_sanitizers()
        print("     %s: certificate %s .. %s (%s/%s), CRL %s, zone file %s" %
              (date, nb.isoformat(), na.isoformat(),
               "UTC" if tb == 0x17 else "Gen", "UTC" if ta == 0x17 else "Gen",
               this_update.isoformat(), "verified" if zone else "missing"),
              flush=True)
    except Exception:
        print("---- regsignd log (tail)\n%s" % d.log_text(), flush=True)
        raise
    finally:
        d.cleanup()


def rrsig_times(path):
    """(owner, covered type, expiration, inception) of each RRSIG in the file,
    the times as 32-bit serial numbers."""
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) > 9 and p[3] == "RRSIG":
                def ser(t):
                    dt = datetime.datetime.strptime(t, "%Y%m%d%H%M%S").replace(
                        tzinfo=datetime.timezone.utc)
                    return int(dt.timestamp()) % (1 << 32)
                out.append((p[0], p[4], ser(p[8]), ser(p[9])))
    return out


def serial_lt(a, b):
    """RFC 1982 serial-number comparison in 32 bits (RFC 4034 §3.1.5)."""
    return a != b and ((b - a) % (1 << 32)) < (1 << 31)


def verify_zone(d, date, fake_now):
    """ldns-verify-zone at the faked date, after the daemon wrote its zone
    file. Every RRSIG's times must also hold in serial arithmetic: inception
    before now before expiration. ldns 1.8.3 compares the times as signed
    32-bit integers (ldns_rrsig_check_timestamps: `expiration - inception <
    0`, an int32 overflow), so it refuses a signature whose validity spans
    2^31 s (2038-01-19 03:14:08) although RFC 4034 §3.1.5 makes it valid: on
    that date, and only for such signatures, its one complaint is accepted
    when the serial arithmetic checks them."""
    path = d.write_zone_file()
    now = int(fake_now.timestamp()) % (1 << 32)
    times = rrsig_times(path)
    check(times, "%s: the zone file has signatures" % date)
    span = 0
    for owner, covered, exp, inc in times:
        check(serial_lt(inc, now) and serial_lt(now, exp), "%s: RRSIG %s %s inception %d, "
              "expiration %d, now %d in serial arithmetic" % (date, owner, covered, inc, exp,
                                                              now))
        span += inc < (1 << 31) <= exp
    clean_stale_faketime()
    p = run([need_tool("faketime"), "-f", "@" + date, need_tool("ldns-verify-zone"), path])
    if p.returncode == 0:
        return True
    errors = [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("Error")]
    ldns_2038 = "expiration date earlier than inception date"
    check(span and errors and all(ldns_2038 in e for e in errors),
          "%s: ldns-verify-zone: %s%s" % (date, p.stdout, p.stderr))
    print("     %s: ldns-verify-zone refuses the %d signatures spanning 2^31 s (its int32 "
          "comparison); serial arithmetic checks them" % (date, span))
    return True


def json_status(c):
    import json
    return json.loads(c.status())


def t_dates(_):
    for date in DATES:
        one_date(date)


def t_clock_jumps(_):
    """The clock jumps forward a day, then back an hour, under a running
    daemon: it keeps issuing and its audit log verifies."""
    stamp_dir = None
    d = AttackDaemon("attack-time-jump")
    try:
        # libfaketime runs inside both sandboxed processes and re-reads the
        # file (replaced by rename) at every clock read: its directory is
        # given to both as an extra read-only path, as an operator would.
        stamp_dir = os.path.join(d.base, "faketime")
        os.makedirs(stamp_dir, exist_ok=True)
        os.chmod(stamp_dir, 0o755)
        d.set_config(d.config_text().rstrip("\n") + "\n"
                     "sandbox:\n"
                     "  front:\n"
                     "    read: [%s]\n"
                     "  hsm:\n"
                     "    read: [%s]\n" % (stamp_dir, stamp_dir))
        stamp = os.path.join(stamp_dir, "faketime.rc")
        with open(stamp, "w") as f:
            f.write("+0\n")
        env = preload_env(os.environ, [FAKETIME_LIB])
        # libfaketime re-reads the offset from the file (no caching). Only the
        # wall clock steps, as an operator's or NTP's step does: a monotonic
        # clock never goes back, and libuv's timers (the zone's tick) run on it.
        env.update(FAKETIME_TIMESTAMP_FILE=stamp, FAKETIME_NO_CACHE="1", TZ="UTC",
                   FAKETIME_DONT_FAKE_MONOTONIC="1")
        d.start(env=env)
        csrs = [make_csr(d.base)[0] for _ in range(3)]
        results = []
        for i, offset in enumerate(("+0", "+1d", "+23h")):
            with open(stamp + ".tmp", "w") as f:
                f.write(offset + "\n")
            os.rename(stamp + ".tmp", stamp)
            time.sleep(0.5)
            with d.client() as c:
                rep = c.issue(device_id(91, i), 1, "device", csrs[i])
                (_, nb), _ = cert_validity(rep["cert_der"])
                results.append(nb)
        real = datetime.datetime.now(datetime.timezone.utc)
        check(results[1] - results[0] >= datetime.timedelta(hours=23),
              "after a jump forward a day, notBefore moved with it: %r" % results)
        check(results[2] < results[1], "after a jump back an hour, notBefore moved back: %r" %
              results)
        check(abs(results[0] - (real - datetime.timedelta(seconds=BACKDATE))) <
              datetime.timedelta(minutes=10), "the unjumped clock was the real one")
        head = None
        with d.client() as c:
            head = json_status(c)["audit"]["head"]
        d.audit_verify(head)
        # The zone, signed across the jumps, verifies at the daemon's clock once
        # its tick (every second) has re-signed what ran out during the day
        # forward: right after the step back too (the last re-sign's time is
        # then in the future). A liveness bound, not a target.
        end = time.time() + 30
        while True:
            try:
                check(d.verify_zone_if_present(faketime="+23h"), "the zone file is written")
                break
            except TestFailure:
                if time.time() > end:
                    raise
                time.sleep(0.5)
        check(d.stop() == 0, "SIGTERM after the jumps: exit 0")
        d.check_sanitizers()
        print("     notBefore across jumps: %s" % ", ".join(r.isoformat() for r in results))
    except Exception:
        print("---- regsignd log (tail)\n%s" % d.log_text(), flush=True)
        raise
    finally:
        d.cleanup()


if __name__ == "__main__":
    import traceback
    failed = 0
    for t in (t_dates, t_clock_jumps):
        t0 = time.time()
        try:
            t(None)
            print("ok   %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
        except Exception:  # noqa: BLE001
            failed += 1
            print("FAIL %s\n%s" % (t.__name__, traceback.format_exc()), flush=True)
    print("%d of 2 failed" % failed if failed else "all 2 passed")
    sys.exit(1 if failed else 0)
