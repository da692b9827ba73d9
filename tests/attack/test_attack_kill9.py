#!/usr/bin/env python3
"""kill -9 of regsignd at random moments during a stream of issuances and
revocations (attack 1 of brief O).

Each round restarts the daemon on the same state, checks everything the
daemon ever acknowledged (re-ISSUE with the same CSR returns the same
certificate; REVOKE again gives the first revocation's answer), retries what
was left without a reply, and checks that nothing was done twice (the audit
log has at most one successful issue per device/index; the store holds one
row per device/index), that `regsign audit verify --key out/audit.pub --head
<STATUS head>` passes, and that the zone file the daemon writes on SIGUSR1
passes `ldns-verify-zone` and publishes exactly the acknowledged certificates
not revoked. Then three clients send a stream of
ISSUE/REVOKE (and idempotent replays) and the daemon is killed with SIGKILL
after a random delay.

Every fifth round the restart itself is first killed during start-up.
50 rounds; REGSIGN_ATTACK_LONG=1 runs 300. REGSIGN_ATTACK_SEED fixes the
random moments (the seed is printed so a failure can be replayed).
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_lib import (CONN_ERRORS, LONG, AttackDaemon, Ledger, RegsignError,  # noqa: E402
                        audit_invariants, check, check_ledger, check_zone_against_ledger,
                        csr_pool, device_id, main, store_certs)

ROUNDS = 300 if LONG else 50
CLIENTS = 3
PER_CLIENT = 400         # most requests a client tries per round: it is killed first
POOL = 64                # distinct CSRs (each round has new device ids)
STATE = {}


def stream(d, ledger, rnd, round_no, client_no, csrs, errors):
    """One client: issue, sometimes revoke at once, sometimes replay an issue."""
    try:
        with d.client(timeout=30) as c:
            for k in range(PER_CLIENT):
                dev = device_id(round_no, client_no * 100 + k)
                csr = csrs[(client_no * 17 + k) % len(csrs)][0]
                op = ("issue", dev, 1, csr)
                try:
                    rep = c.issue(dev, 1, "device", csr)
                except RegsignError as e:
                    # BUSY at worst; a refusal changed nothing (PROTOCOL §5).
                    with ledger.lock:
                        ledger.refused.append(("issue", dev, 1, e.name))
                    continue
                except CONN_ERRORS:
                    with ledger.lock:
                        ledger.unsure.append(op)
                    return
                ledger.ack_issue(dev, 1, csr, rep)
                choice = rnd.random()
                if choice < 0.5:
                    try:
                        ledger.ack_revoke(dev, 1, c.revoke(dev, 1, reason="keyCompromise"))
                    except RegsignError as e:
                        with ledger.lock:
                            ledger.refused.append(("revoke", dev, 1, e.name))
                    except CONN_ERRORS:
                        with ledger.lock:
                            ledger.unsure.append(("revoke", dev, 1, None))
                        return
                elif choice < 0.65:
                    try:
                        ledger.ack_issue(dev, 1, csr, c.issue(dev, 1, "device", csr))
                    except CONN_ERRORS:
                        return
    except CONN_ERRORS:
        return
    except Exception as e:  # noqa: BLE001 - the main thread reports it
        errors.append(e)


def t_setup(d):
    d.start()
    seed = int(os.environ.get("REGSIGN_ATTACK_SEED", str(int(time.time()))))
    print("     seed %d (REGSIGN_ATTACK_SEED=%d replays it)" % (seed, seed), flush=True)
    STATE["rnd"] = random.Random(seed)
    # Every (device, index) of a round gets its own CSR; rounds reuse the pool
    # with new device ids (the same key under two devices is allowed).
    STATE["csrs"] = csr_pool(d.base, POOL)
    STATE["ledger"] = Ledger()


def check_round(d, ledger, round_no):
    # Every acknowledged change is asked about after each restart; the long
    # mode asks about the last round's devices only, and about all of them
    # every tenth round, so that its cost grows linearly.
    only = None
    if LONG and round_no % 10 != 0:
        only = {dev for (dev, _) in list(ledger.issued) + list(ledger.revoked)
                if dev.startswith("89%06d" % (round_no - 1))}
        only |= {u[1] for u in ledger.unsure}
    checked = check_ledger(d, ledger, only=only)
    head = d.status()["audit"]["head"]
    d.audit_verify(head)
    issues, revokes = audit_invariants(d, ledger)
    stored = store_certs(d)
    for key, (_, serial, _) in ledger.issued.items():
        check(stored.get(key) == serial.lstrip("0"),
              "round %d: acknowledged %s/%d (%s) is not in the store (%s)" %
              (round_no, key[0], key[1], serial, stored.get(key)))
    zone = d.verify_zone_if_present()
    check(zone, "round %d: the daemon wrote its zone file on SIGUSR1" % round_no)
    published, removed = check_zone_against_ledger(d, ledger)
    return checked, issues, revokes, (published, removed)


def t_kill9_rounds(d):
    rnd = STATE["rnd"]
    ledger = STATE["ledger"]
    kills_in_flight = 0
    zone_names = (0, 0)
    startup_kills = 0
    for round_no in range(1, ROUNDS + 1):
        if round_no > 1 and round_no % 5 == 0:
            # Every fifth round the first start is killed during start-up
            # (start event, first checkpoint, audit repair of the last kill).
            d.start(wait=False)
            time.sleep(rnd.uniform(0.0, 0.25))
            d.kill9()
            startup_kills += 1
        if round_no > 1:
            d.start()
        checked, issues, revokes, zone_names = check_round(d, ledger, round_no)
        errors = []
        threads = [threading.Thread(target=stream, args=(d, ledger, random.Random(rnd.random()),
                                                         round_no, i, STATE["csrs"], errors))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.005, 0.3))
        d.kill9()
        for t in threads:
            t.join(60)
            check(not t.is_alive(), "a client thread hangs after the daemon died")
        check(not errors, "round %d: a client saw a wrong answer: %r" % (round_no, errors))
        kills_in_flight += bool(ledger.unsure)
        if round_no % 10 == 0 or round_no == 1:
            print("     round %d: %d acknowledged changes re-checked, %d issued and %d "
                  "revoked in the audit log, zone verified with %d published and %d removed, "
                  "%d left unsure at this kill" % (round_no, checked, issues, revokes,
                                                   zone_names[0], zone_names[1],
                                                   len(ledger.unsure)), flush=True)
    d.start()
    check_round(d, ledger, ROUNDS + 1)
    check(len(ledger.issued) >= ROUNDS, "the stream got work done between kills: %d issued" %
          len(ledger.issued))
    check(kills_in_flight >= ROUNDS // 2, "some kills hit requests in flight (%d of %d)" %
          (kills_in_flight, ROUNDS))
    print("     %d rounds: %d certificates and %d revocations acknowledged, %d kills with "
          "requests in flight, %d kills during start-up" %
          (ROUNDS, len(ledger.issued), len(ledger.revoked), kills_in_flight, startup_kills))


def t_final_stop(d):
    check(d.stop() == 0, "SIGTERM after the last round: exit 0")
    d.audit_verify()


if __name__ == "__main__":
    main([t_setup, t_kill9_rounds, t_final_stop], AttackDaemon("attack-kill9"))
