#!/usr/bin/env python3
"""A property test of the registry zone through the real daemon.

A seeded random sequence of ISSUE, REVOKE, REISSUE, PUBLISH and UNPUBLISH
(a few hundred operations) runs against regsignd on a fresh development setup,
while a model in this program records which device names must be published.
The device ids are chosen to sort next to each other and at both ends of the
zone (common prefixes, digits against letters, short and long), some are sent
in upper case, and devices lose their only certificate now and then.

After every operation the zone is transferred from the daemon's own DNS
listener (dig AXFR) and its NSEC chain, followed from the apex, must visit the
owner names in exactly ldns's own canonical order (`ldns-read-zone -z`, not
this program's comparator). After every K operations it is also checked:
  - the NSEC chain is exactly the owner names in RFC 4034 section 6.1
    canonical order, computed here with our own key (labels from the root,
    escapes decoded, ASCII lowercased, compared as bytes), wrapping to the apex;
  - each NSEC's type bitmap lists exactly the types at its owner + NSEC + RRSIG;
  - every device the model says is live has its CERT record and no other
    device name is there (revoked and reissued-away names are gone);
  - ldns-verify-zone and BIND's dnssec-verify pass on the transferred zone;
  - IXFR from the serial of the previous check, applied to the previous AXFR,
    gives the new AXFR exactly;
  - a revoked name, a never-issued one and names after the last are NXDOMAIN
    at the listener, with a signed NSEC that covers them; the empty
    non-terminal of a device is NODATA with the NSEC before it.

Seed: printed at start; REGSIGN_NSEC_SEED=<n> replays a run. Operation count:
REGSIGN_NSEC_OPS (default 300), check interval REGSIGN_NSEC_EVERY (default 20).
"""

import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import ZONE, Daemon, check, main, make_csr, need_tool, run  # noqa: E402

APEX = ZONE + "."
# Device ids (18 to 32 hex digits) that sort next to each other: common
# prefixes, a prefix of another, digits against letters, the least possible
# id (first name after the apex) and the longest.
IDS = ["0" * 18, "0" * 19, "0" * 32, "0" * 17 + "1", "1" + "0" * 17, "1a" + "0" * 16,
       "1b" + "0" * 16, "9" * 18, "a" + "0" * 17, "a" + "0" * 18, "aa" + "0" * 16,
       "f" * 18, "f" * 20, "f" * 32, "8912230200031010008f", "8912230200031010008e",
       "89122302000310100090", "89122302000310100090a"]
MAX_LIVE = 4
STATE = {}


# ---- canonical order (RFC 4034 section 6.1), written here independently ----

def labels_of(name):
    """The labels of a presentation-form name as bytes (\\DDD and \\X decoded)."""
    out, cur, i = [], bytearray(), 0
    name = name if name.endswith(".") else name + "."
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            if name[i + 1:i + 4].isdigit() and len(name[i + 1:i + 4]) == 3:
                cur.append(int(name[i + 1:i + 4]))
                i += 4
            else:
                cur.append(ord(name[i + 1]))
                i += 2
            continue
        if ch == ".":
            if cur or not out:
                out.append(bytes(cur))
            cur = bytearray()
            i += 1
            continue
        cur.append(ord(ch))
        i += 1
    return [l for l in out if l]


def canonical_key(name):
    """Labels from the root, ASCII-lowercased; Python compares the list of
    bytes exactly as RFC 4034 asks (a label that is a prefix sorts first,
    fewer labels first)."""
    return [bytes(b + 32 if 65 <= b <= 90 else b for b in l) for l in reversed(labels_of(name))]


def norm_name(name):
    return name.lower() if name.endswith(".") else name.lower() + "."


# ---- DNS through dig ----

def dig(*args):
    p = run([need_tool("dig"), "@127.0.0.1", "-p", str(STATE["port"]), "+time=20", "+tries=1"] +
            list(args))
    check(p.returncode == 0, "dig %s failed: %s%s" % (" ".join(args), p.stdout, p.stderr))
    return p.stdout


def rr_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(";"):
            f = line.split()
            f[0] = norm_name(f[0])
            out.append(" ".join(f))
    return out


def axfr():
    lines = rr_lines(dig("+nocmd", "+nocomments", "+nostats", "+noquestion", "AXFR", APEX))
    check(len(lines) > 4 and lines[0].split()[3] == "SOA" and lines[-1] == lines[0],
          "AXFR starts and ends with the SOA: %r" % lines[:3])
    return lines[:-1]


def serial_of(lines):
    return int(lines[0].split()[6])


def ixfr(old_serial):
    """The IXFR from old_serial as a list of (removed, added) diffs; fails on an AXFR."""
    lines = rr_lines(dig("+nocmd", "+nocomments", "+nostats", "+noquestion",
                         "IXFR=%d" % old_serial, APEX))
    check(len(lines) >= 1 and lines[0].split()[3] == "SOA", "IXFR starts with an SOA")
    new_serial = int(lines[0].split()[6])
    if new_serial == old_serial:
        return new_serial, []
    check(len(lines) >= 2 and lines[1].split()[3] == "SOA" and
          int(lines[1].split()[6]) == old_serial,
          "an incremental transfer from %d (not an AXFR): %r" % (old_serial, lines[:2]))
    body = lines[1:-1]
    diffs, i = [], 0
    while i < len(body):
        rem, add = [body[i]], []
        i += 1
        while body[i].split()[3] != "SOA":
            rem.append(body[i])
            i += 1
        add.append(body[i])
        i += 1
        while i < len(body) and body[i].split()[3] != "SOA":
            add.append(body[i])
            i += 1
        diffs.append((rem, add))
    check(lines[-1] == lines[0], "IXFR ends with the new SOA")
    return new_serial, diffs


def query(name, rtype, do=True):
    """(rcode, answer lines, authority lines) of one query with DO."""
    out = dig("+dnssec" if do else "+nodnssec", "+norec", name, rtype)
    rcode = out.split("status: ")[1].split(",")[0]
    sec, ans, auth = None, [], []
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            sec = ans
        elif line.startswith(";; AUTHORITY SECTION"):
            sec = auth
        elif line.startswith(";;") or not line.strip():
            sec = None if line.startswith(";;") else sec
        elif sec is not None and not line.startswith(";"):
            f = line.split()
            f[0] = norm_name(f[0])
            sec.append(f)
    return rcode, ans, auth


# ---- the model ----

class Model:
    def __init__(self):
        self.live = {}       # id (lowercase) -> set of live indexes
        self.highest = {}    # id -> highest index ever used
        self.revoked = set() # (id, index)
        self.published = {}  # owner (relative) -> rdata

    def live_pairs(self):
        return [(i, n) for i, s in self.live.items() for n in sorted(s)]

    def owner(self, dev, idx):
        return "%d.%s.%s" % (idx, dev, APEX)


def op_issue(d, m, rng, c):
    # The dev policy allows 4 live certificates per device.
    free = [i for i in IDS if len(m.live.get(i, ())) < MAX_LIVE]
    if not free:
        return op_revoke(d, m, rng, c)
    dev = rng.choice(free)
    idx = m.highest.get(dev, 0) + 1
    sent = dev.upper() if rng.random() < 0.3 else dev
    r = c.issue(sent, idx, "", rng.choice(STATE["csrs"]))
    check(r["index"] == idx if "index" in r else True, "ISSUE used index %d" % idx)
    m.live.setdefault(dev, set()).add(idx)
    m.highest[dev] = idx
    return "issue %s %d -> %d" % (sent, idx, r["zone_serial"])


def op_revoke(d, m, rng, c):
    pairs = m.live_pairs()
    if not pairs:
        return op_issue(d, m, rng, c)
    dev, idx = rng.choice(pairs)
    r = c.revoke(dev.upper() if rng.random() < 0.3 else dev, index=idx)
    m.live[dev].discard(idx)
    m.revoked.add((dev, idx))
    return "revoke %s %d -> %d" % (dev, idx, r["zone_serial"])


def op_reissue(d, m, rng, c):
    pairs = m.live_pairs()
    if not pairs:
        return op_issue(d, m, rng, c)
    dev, idx = rng.choice(pairs)
    r = c.reissue(dev, idx, "", rng.choice(STATE["csrs"]))
    new = m.highest[dev] + 1
    check(r["index"] == new, "REISSUE of %s %d: new index %d, want %d" % (dev, idx, r["index"], new))
    m.live[dev].discard(idx)
    m.live[dev].add(new)
    m.revoked.add((dev, idx))
    m.highest[dev] = new
    return "reissue %s %d -> %d at %d" % (dev, idx, new, r["zone_serial"])


def op_publish(d, m, rng, c):
    if m.published and rng.random() < 0.5:
        owner = rng.choice(sorted(m.published))
        s = c.unpublish(owner, "TXT", m.published.pop(owner))
        return "unpublish %s -> %d" % (owner, s)
    owner = rng.choice(["www._asp", "a._asp", "_asp", "z.y._asp", "x%d._asp" % rng.randrange(50)])
    if owner in m.published:
        return "publish (skipped: present)"
    rdata = '"v%d"' % rng.randrange(1000)
    s = c.publish(owner, "TXT", 300, rdata)
    m.published[owner] = rdata
    return "publish %s -> %d" % (owner, s)


# ---- the checks ----

def check_zone(d, m, lines, what):
    owners, types, nsec = {}, {}, {}
    for l in lines:
        f = l.split()
        owners.setdefault(f[0], True)
        if f[3] == "NSEC":
            check(f[0] not in nsec, "%s: two NSEC records at %s" % (what, f[0]))
            nsec[f[0]] = (norm_name(f[4]), set(f[5:]))
        elif f[3] != "RRSIG":
            types.setdefault(f[0], set()).add(f[3])
    order = sorted(owners, key=canonical_key)
    check(order[0] == APEX, "%s: the apex sorts first" % what)
    check(set(nsec) == set(owners), "%s: an NSEC at every owner name and nowhere else: %r" %
          (what, sorted(set(nsec) ^ set(owners))))
    for i, o in enumerate(order):
        want = order[(i + 1) % len(order)]
        check(nsec[o][0] == want, "%s: NSEC at %s points to %s, canonical order says %s" %
              (what, o, nsec[o][0], want))
        check(nsec[o][1] == types.get(o, set()) | {"NSEC", "RRSIG"},
              "%s: NSEC type bitmap at %s is %r, the types there are %r" %
              (what, o, sorted(nsec[o][1]), sorted(types.get(o, set()))))
    # Device names: exactly the model's live ones, each with a CERT.
    devnames = set()
    for o in owners:
        labs = labels_of(o)
        if len(labs) == 4 and all(chr(b) in "0123456789abcdef" for b in labs[1]):
            devnames.add(o)
    want = {m.owner(i, n) for i, n in m.live_pairs()}
    check(devnames == want, "%s: device names served %r, the model has %r" %
          (what, sorted(devnames ^ want)[:6], len(want)))
    for o in want:
        check("CERT" in types.get(o, set()), "%s: %s has no CERT" % (what, o))
    for dev, idx in m.revoked:
        if idx not in m.live.get(dev, set()):
            check(m.owner(dev, idx) not in owners, "%s: revoked %s is still served" %
                  (what, m.owner(dev, idx)))
    for owner, rdata in m.published.items():
        check(rdata in " ".join(l for l in lines if l.split()[0] == owner + "." + APEX and
                                l.split()[3] == "TXT"),
              "%s: published %s TXT %s is served" % (what, owner, rdata))


def ldns_order(d, lines):
    """The owner names in ldns's own canonical order: `ldns-read-zone -z`
    sorts the zone with ldns_rr_compare (RFC 4034 section 6.1), names
    lowercased (-z implies -c)."""
    path = os.path.join(d.base, "order.zone")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = run([need_tool("ldns-read-zone"), "-z", path])
    check(p.returncode == 0, "ldns-read-zone -z: %s" % p.stderr)
    order = []
    for l in p.stdout.splitlines():
        if not l.strip() or l.startswith(";"):
            continue
        o = l.split()[0].lower()
        if not order or order[-1] != o:
            order.append(o)
    return order


def check_ldns_order(d, lines, what):
    """The NSEC chain, followed from the apex, visits the names in exactly
    ldns's canonical order."""
    nsec = {}
    for l in lines:
        f = l.split()
        if f[3] == "NSEC":
            nsec[f[0].lower()] = norm_name(f[4]).lower()
    want = ldns_order(d, lines)
    chain, at = [], want[0]
    while True:
        chain.append(at)
        check(at in nsec, "%s: no NSEC at %s" % (what, at))
        at = nsec[at]
        if at == want[0] or len(chain) > len(want):
            break
    check(chain == want, "%s: the NSEC chain differs from ldns's canonical order at %r" %
          (what, next(((a, b) for a, b in zip(chain, want) if a != b), (len(chain), len(want)))))


def verify_zone(d, lines, what):
    path = os.path.join(d.base, "axfr.zone")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = run([need_tool("ldns-verify-zone"), path])
    check(p.returncode == 0, "%s: ldns-verify-zone: %s%s" % (what, p.stdout, p.stderr))
    p = run([need_tool("dnssec-verify"), "-o", APEX, path])
    check(p.returncode == 0, "%s: dnssec-verify: %s%s" % (what, p.stdout, p.stderr))


def check_ixfr(old_lines, new_lines, what):
    old_serial, new_serial = serial_of(old_lines), serial_of(new_lines)
    got_serial, diffs = ixfr(old_serial)
    check(got_serial == new_serial, "%s: IXFR brings serial %d, the AXFR has %d" %
          (what, got_serial, new_serial))
    zone = set(old_lines)
    check(len(zone) == len(old_lines), "%s: the AXFR repeats an RR" % what)
    for rem, add in diffs:
        for rr in rem:
            check(rr in zone, "%s: IXFR removes %s, which is not there" % (what, rr))
            zone.discard(rr)
        for rr in add:
            check(rr not in zone, "%s: IXFR adds %s, which is there" % (what, rr))
            zone.add(rr)
    check(zone == set(new_lines), "%s: IXFR from %d applied to the old AXFR differs from the "
          "new AXFR: %r" % (what, old_serial, sorted(zone ^ set(new_lines))[:6]))
    return len(diffs)


def covers(owner, nxt, name):
    o, n, k = canonical_key(owner), canonical_key(nxt), canonical_key(name)
    return o < k < n if o < n else (k > o or k < n)


def check_denials(d, m, rng, what):
    gone = [(i, n) for i, n in sorted(m.revoked) if n not in m.live.get(i, set())]
    for dev, idx in rng.sample(gone, min(3, len(gone))):
        name = m.owner(dev, idx)
        rcode, ans, auth = query(name, "CERT")
        if not m.live.get(dev):
            # No certificate left: the device's own name is gone too.
            check(rcode == "NXDOMAIN", "%s: revoked %s: %s" % (what, name, rcode))
        else:
            check(rcode == "NXDOMAIN", "%s: revoked %s next to live ones: %s" % (what, name, rcode))
        nsecs = [f for f in auth if f[3] == "NSEC"]
        check(any(covers(f[0], norm_name(f[4]), name) for f in nsecs),
              "%s: no NSEC in the answer covers %s: %r" % (what, name, nsecs))
        check(len([f for f in auth if f[3] == "RRSIG" and f[4] == "NSEC"]) == len(nsecs),
              "%s: every NSEC of the denial of %s is signed" % (what, name))
    # Names no device ever had, and names sorting after every other one (the
    # last NSEC covers them, its next name wrapping to the apex).
    for name in ("%d.%s.%s" % (rng.randrange(1, 9), rng.choice(IDS)[:-1] + "7", APEX),
                 "zzzz.%s" % APEX, "%s.zzzz.%s" % (rng.choice(IDS), APEX)):
        if name in {m.owner(i, n) for i, n in m.live_pairs()}:
            continue
        rcode, ans, auth = query(name, "CERT")
        nsecs = [f for f in auth if f[3] == "NSEC"]
        check(rcode == "NXDOMAIN" and any(covers(f[0], norm_name(f[4]), name) for f in nsecs),
              "%s: %s is NXDOMAIN with a covering NSEC: %s %r" % (what, name, rcode, nsecs))
    ents = [i for i, s in m.live.items() if s]
    if ents:
        ent = "%s.%s" % (rng.choice(ents), APEX)
        rcode, ans, auth = query(ent, "CERT")
        nsecs = [f for f in auth if f[3] == "NSEC"]
        check(rcode == "NOERROR" and not ans and len(nsecs) == 1 and
              covers(nsecs[0][0], norm_name(nsecs[0][4]), ent) and
              canonical_key(norm_name(nsecs[0][4]))[:len(canonical_key(ent))] ==
              canonical_key(ent),
              "%s: the empty non-terminal %s is a NODATA proven by the NSEC before it: %s %r" %
              (what, ent, rcode, nsecs))


# ---- the test ----

def t_start(d):
    d.start()
    with d.client() as c:
        zs = json.loads(c.zone_status())
    STATE["port"] = zs["listen"][0]["port"]
    end = time.time() + 30
    while time.time() < end:
        with d.client() as c:
            if json.loads(c.zone_status())["serial"] > 0:
                break
        time.sleep(0.05)
    STATE["csrs"] = [make_csr(d.base)[0] for _ in range(6)]


def t_random_sequence(d):
    seed = int(os.environ.get("REGSIGN_NSEC_SEED", "0")) or random.SystemRandom().randrange(1, 2**63)
    nops = int(os.environ.get("REGSIGN_NSEC_OPS", "300"))
    every = int(os.environ.get("REGSIGN_NSEC_EVERY", "20"))
    print("seed %d (REGSIGN_NSEC_SEED=%d replays), %d operations, checks every %d" %
          (seed, seed, nops, every), flush=True)
    rng = random.Random(seed)
    m = Model()
    ops = [(op_issue, 45), (op_revoke, 25), (op_reissue, 20), (op_publish, 10)]
    prev = axfr()
    check_zone(d, m, prev, "at start")
    history, checks, ndiffs, steps = [], 0, 0, 0
    check_ldns_order(d, prev, "at start")
    with d.client(timeout=120) as c:
        for i in range(1, nops + 1):
            fn = rng.choices([o for o, _ in ops], [w for _, w in ops])[0]
            history.append(fn(d, m, rng, c))
            what = "after operation %d (%s; seed %d)" % (i, history[-1], seed)
            # After every step: the chain against ldns's own ordering.
            cur = axfr()
            check_ldns_order(d, cur, what)
            steps += 1
            if i % every and i != nops:
                continue
            check_zone(d, m, cur, what)
            verify_zone(d, cur, what)
            ndiffs += check_ixfr(prev, cur, what)
            check_denials(d, m, rng, what)
            prev = cur
            checks += 1
    print("%d checks, %d IXFR diffs applied, %d live devices, %d names at the end" %
          (checks, ndiffs, len(m.live_pairs()), len({l.split()[0] for l in prev})), flush=True)
    check(ndiffs > 0 and checks >= nops // every and steps == nops, "the checks ran")


if __name__ == "__main__":
    main([t_start, t_random_sequence], Daemon("nsec-prop"))
