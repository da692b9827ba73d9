#!/usr/bin/env python3
"""Storage faults under load (attack 4 of brief O).

ENOSPC for real: the state directory (database, audit log, zone file) lives
on a small ext4 file system on a loop device this test makes (losetup,
mkfs.ext4, mount; root needed; removed again by the mount point and loop
device it made). When the disk is full, changes are refused with a clear
STORAGE error and change nothing, while plain reads (STATUS, CHAIN, HELLO)
keep working; once space is freed, changes work again.

EIO through the LD_PRELOAD shim of tests/faults (libregsign-eio-shim.so) at
each of the calls a commit makes: pwrite and fdatasync of the SQLite WAL,
write and fsync of the audit log export. The fault strikes under load at a
random call after start-up; the daemon must exit non-zero without answering
the request whose commit failed, and the restart (without the shim) must
recover: every acknowledged change is there, every change answered with an
error is not, nothing is there twice, the audit log verifies.

REGSIGN_ATTACK_LONG=1 runs more EIO rounds per call.
"""

import errno
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack_lib import (BUILD_DIR, LONG, AttackDaemon, Ledger, Load,  # noqa: E402
                        RegsignError, TestFailure, audit_invariants, check, check_ledger,
                        check_refused_not_done, check_zone_against_ledger, csr_pool, main,
                        need_tool, preload_env, run)

SHIM = os.path.join(BUILD_DIR, "lib", "libregsign-eio-shim.so")
EIO_ROUNDS = 4 if LONG else 2
# (calls, path substring, first guess of matching calls during start-up,
# matching calls per second under load, roughly). The audit export is
# fsynced at checkpoints: the EIO rounds run with --checkpoint-interval 1.
EIO_CASES = [("pwrite", "regsign.db-wal", 30, 100), ("fdatasync", "regsign.db-wal", 3, 50),
             ("write", "audit.jsonl", 2, 100), ("fsync", "audit.jsonl", 2, 1)]
STATE = {}


class StorageDaemon(AttackDaemon):
    """Cleans up the mount and the loop device it made, whatever happened."""

    def cleanup(self):
        # The daemon first (it holds files on the mount), then the mount and
        # the loop device, then the temp dir that held the image.
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.kill9()
            except TestFailure as e:
                print("cleanup: %s" % e)
        unmount(self)
        super().cleanup()


def unmount(d):
    mnt = STATE.pop("mnt", None)
    if mnt:
        for _ in range(20):
            if run(["umount", mnt]).returncode == 0:
                break
            time.sleep(0.5)
    loop = STATE.pop("loop", None)
    if loop:
        run(["losetup", "-d", loop])


def t_setup(d):
    check(os.getuid() == 0, "the ENOSPC test needs root (losetup, mount); uid is %d" %
          os.getuid())
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        need_tool(tool)
    img = os.path.join(d.base, "state.img")
    with open(img, "wb") as f:
        f.truncate(128 * 1024 * 1024)
    p = run(["losetup", "--find", "--show", img])
    check(p.returncode == 0, "losetup --find --show: %s" % p.stderr)
    STATE["loop"] = p.stdout.strip()
    p = run(["mkfs.ext4", "-q", "-F", "-m", "0", STATE["loop"]])
    check(p.returncode == 0, "mkfs.ext4 %s: %s" % (STATE["loop"], p.stderr))
    mnt = os.path.join(d.base, "mnt")
    os.mkdir(mnt)
    p = run(["mount", STATE["loop"], mnt])
    check(p.returncode == 0, "mount %s %s: %s" % (STATE["loop"], mnt, p.stderr))
    STATE["mnt"] = mnt
    state = os.path.join(mnt, "state")
    os.mkdir(state, 0o700)
    old = os.path.join(d.dir, "state") + "/"
    cfg = d.config_text()
    check(cfg.count(old) == 3, "the three state paths are in the configuration")
    d.set_config(cfg.replace(old, state + "/"))
    d.audit = os.path.join(state, "audit.jsonl")
    d.db = os.path.join(state, "regsign.db")
    d.start()
    STATE["csrs"] = csr_pool(d.base, 32)
    STATE["ledger"] = Ledger()
    STATE["refused"] = []


def fill(path):
    """Fills the file system holding path until write(2) says ENOSPC."""
    chunk = b"\xa5" * (256 * 1024)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (len(chunk), 4096, 512, 1):
            while True:
                try:
                    os.write(fd, chunk[:size])
                except OSError as e:
                    check(e.errno == errno.ENOSPC, "filling: %s" % e)
                    break
        try:
            os.fsync(fd)
        except OSError:
            pass
    finally:
        os.close(fd)


def t_enospc(d):
    ledger = STATE["ledger"]
    csrs = STATE["csrs"]
    with d.client() as c:
        for k in range(5):
            dev = "89111100000000000%03d" % k
            ledger.ack_issue(dev, 1, csrs[k][0], c.issue(dev, 1, "device", csrs[k][0]))
    filler = os.path.join(STATE["mnt"], "filler")
    fill(filler)
    try:
        full_disk(d, ledger, csrs)
    finally:
        if os.path.exists(filler):
            os.unlink(filler)
    # Space comes back: changes work again without a restart.
    back = None
    deadline = time.time() + 30
    n = 0
    with d.client() as c:
        while back is None and time.time() < deadline:
            n += 1
            dev = "89111100000000001%03d" % n
            try:
                ledger.ack_issue(dev, 1, csrs[0][0], c.issue(dev, 1, "device", csrs[0][0]))
                back = time.time()
            except RegsignError as e:
                check(e.name == "STORAGE", "while space returns: %s" % e)
                STATE["refused"].append((dev, 1, "STORAGE"))
                time.sleep(0.2)
    check(back is not None, "changes work again once space is freed (no restart)")
    check(d.stop() == 0, "SIGTERM after the full disk: exit 0")
    d.start()
    check_ledger(d, ledger)
    check_refused_not_done(d, STATE["refused"])
    audit_invariants(d, ledger)
    d.audit_verify(d.status()["audit"]["head"])


def full_disk(d, ledger, csrs):
    """Changes until the disk-full condition bites: some may still fit in
    space SQLite already holds (the WAL); then STORAGE, and it stays so."""
    storage = 0
    first_storage = None
    k = 100
    with d.client() as c:
        while k < 600 and storage < 20:
            k += 1
            dev = "89111100000000000%03d" % k
            csr = csrs[k % len(csrs)][0]
            try:
                rep = c.issue(dev, 1, "device", csr)
            except RegsignError as e:
                check(e.name == "STORAGE", "a full disk is refused with STORAGE, got %s" % e)
                check(len(e.message) > 10, "the STORAGE error says why: %r" % e.message)
                STATE["refused"].append((dev, 1, e.name))
                storage += 1
                first_storage = first_storage or e.message
                rep = None
            if rep is not None:
                check(storage == 0, "an ISSUE succeeded after a STORAGE refusal on a full disk")
                ledger.ack_issue(dev, 1, csr, rep)
                if k % 3 == 0:
                    try:
                        ledger.ack_revoke(dev, 1, c.revoke(dev, 1, reason="keyCompromise"))
                    except RegsignError as e:
                        check(e.name == "STORAGE", "REVOKE on a full disk: STORAGE, got %s" % e)
            # Plain reads keep working whatever changes do.
            check(c.hello()["version"] == 1, "HELLO answered on a full disk")
            check(len(c.chain()) >= 1, "CHAIN answered on a full disk")
            check(json.loads(c.status())["hsm"]["state"] == "up", "STATUS answered on a full "
                  "disk")
    check(storage >= 20, "changes on a full disk get STORAGE (%d of %d)" % (storage, k - 100))
    check(d.proc.poll() is None, "the daemon keeps running on a full disk")
    print("     full disk: %d changes still fitted, then STORAGE: %s" %
          (k - 100 - storage, first_storage))
    # Revocation of an existing certificate is refused the same way.
    with d.client() as c:
        try:
            c.revoke("89111100000000000000", 1, reason="keyCompromise")
            raise TestFailure("REVOKE on a full disk succeeded")
        except RegsignError as e:
            check(e.name == "STORAGE", "REVOKE on a full disk: STORAGE, got %s" % e)
    check_refused_not_done(d, STATE["refused"])


def shim_env(calls, path, after):
    """The daemon's environment with the shim armed."""
    env = preload_env(os.environ, [SHIM])
    env.update(EIO_SHIM_PATH=path, EIO_SHIM_CALLS=calls, EIO_SHIM_AFTER=str(after),
               EIO_SHIM_COUNT="0", EIO_SHIM_VERBOSE="1")
    return env


def start_with_shim(d, calls, path, after):
    """Starts regsignd with the shim armed after `after` matching calls.
    Returns True if it got ready, False if it died during start-up (then it
    must have exited non-zero)."""
    d.start(env=shim_env(calls, path, after), wait=False)
    end = time.time() + 60
    while time.time() < end:
        if d.proc.poll() is not None:
            check(d.proc.returncode != 0, "%s EIO at start-up: exit status non-zero (got %d)" %
                  (calls, d.proc.returncode))
            return False
        if os.path.exists(d.sock):
            try:
                d.wait_ready(timeout=5)
                return True
            except TestFailure:
                if d.proc.poll() is not None:
                    continue
                raise
        time.sleep(0.02)
    raise TestFailure("regsignd with the EIO shim neither ready nor dead after 60 s")


def eio_round(d, calls, path, after, tag):
    ledger = STATE["ledger"]
    if not start_with_shim(d, calls, path, after):
        return "start-up"
    load = Load(d, ledger, STATE["csrs"], clients=3, tag=tag, allowed=("UNAVAILABLE",),
                timeout=60)
    load.start()
    try:
        code = d.proc.wait(60)
    except Exception:  # noqa: BLE001
        load.stop()
        d.kill9()
        raise TestFailure("%s EIO on %s: regsignd still runs 60 s after the fault armed at "
                          "call %d (%r)\n%s" % (calls, path, after, load.counts,
                                                d.log_text()))
    load.stop()
    d.check_sanitizers()
    check(code != 0, "%s EIO on %s: exit status non-zero (got %d)" % (calls, path, code))
    # A connection lost is the expected answer to the request whose commit
    # failed: after an I/O error the state on disk is unknown (after a failed
    # fsync the kernel may have dropped the pages), so no ERROR may be sent
    # for it, since an ERROR says "nothing was changed" (PROTOCOL.md §5).
    # Only UNAVAILABLE is allowed, for requests refused as the daemon went
    # down (they never reached the store).
    ok_errors = ("ConnectionClosed", "ConnectionReset", "BrokenPipe")
    wrong = [e for e in load.errors if not any(w in e for w in ok_errors)]
    check(not wrong, "%s EIO on %s: replies other than OK, UNAVAILABLE or a closed "
          "connection: %r" % (calls, path, wrong[:5]))
    STATE["refused"] += load.refused_issues
    log = d.log_text(full=True)
    check("eio_shim: " in log, "%s EIO on %s: the shim injected the fault" % (calls, path))
    return "load (%d OK)" % load.counts.get("OK", 0)


def t_eio(d, cases=EIO_CASES, rounds=EIO_ROUNDS):
    """In the sanitizer build the dying daemons' logs are checked too: a
    fatal commit error must not leave leaks behind (the in-flight ISSUE
    reservations did until 9345008)."""
    check(os.path.exists(SHIM), "the storage-fault shim %s is built" % SHIM)
    rnd = random.Random(int(os.environ.get("REGSIGN_ATTACK_SEED", str(int(time.time())))))
    check(d.stop() == 0, "stop before the EIO rounds")
    tag = 60
    d.extra_args = ["--checkpoint-interval", "1"]
    for calls, path, guess, rate in cases:
        after = guess
        outcomes = []
        under_load = 0
        tries = 0
        while under_load < rounds:
            tries += 1
            check(tries <= rounds + 12, "%s EIO on %s: could not get past start-up" %
                  (calls, path))
            tag += 1
            how = eio_round(d, calls, path, after + rnd.randrange(1, 1 + 2 * rate), tag)
            outcomes.append(how)
            if how == "start-up":
                after = int(after * 1.6) + 2
            else:
                under_load += 1
            # Restart without the shim: it recovers, and everything checks.
            d.start()
            check_ledger(d, STATE["ledger"])
            check_refused_not_done(d, STATE["refused"])
            audit_invariants(d, STATE["ledger"])
            d.audit_verify(d.status()["audit"]["head"])
            check(d.stop() == 0, "SIGTERM after recovery: exit 0")
        print("     %s EIO on %s: daemon died at %s" % (calls, path, ", ".join(outcomes)),
              flush=True)
    d.extra_args = []


def t_end(d):
    d.start()
    n = check_ledger(d, STATE["ledger"])
    check(d.verify_zone_if_present(), "the zone file is written and verifies")
    check_zone_against_ledger(d, STATE["ledger"])
    print("     %d acknowledged changes intact; %d refused changed nothing" %
          (n, len(STATE["refused"])))
    check(d.stop() == 0, "SIGTERM: exit 0")


if __name__ == "__main__":
    main([t_setup, t_enospc, t_eio, t_end], StorageDaemon("attack-storage"))
