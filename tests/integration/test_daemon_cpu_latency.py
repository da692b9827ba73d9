#!/usr/bin/env python3
"""cpu-latency on the real device: with `cpu-latency: {enabled: true,
limit-us: 7, hold: 1s}` the daemon holds a PM QoS CPU latency limit of 7 us
(read back from /dev/cpu_dma_latency, which gives the kernel's value in force)
from a request on, keeps it for the hold after the last answer, releases it
(the kernel's default back), takes it again for the next request, reports it
in STATUS, and withdraws it when it stops. The sandbox is on as in the
development setup, so the writes come after the lockdown from the file opened
before it. Needs root (the device is root's), as CI runs the tests.

Other programs holding a limit would change what the device reads: ctest runs
this test alone with the bench's smoke run, whose daemons use the option
(RESOURCE_LOCK cpu_dma_latency)."""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import Daemon, check, main, wait_for  # noqa: E402

DEVICE = "/dev/cpu_dma_latency"
NONE = 2000000000   # the kernel's default: no limit
LIMIT = 7


def in_force():
    with open(DEVICE, "rb") as f:
        return struct.unpack("i", f.read(4))[0]


def t_setup(d):
    check(os.geteuid() == 0, "this test reads %s, which needs root" % DEVICE)
    check(os.path.exists(DEVICE), "%s exists (Linux PM QoS)" % DEVICE)
    check(in_force() == NONE, "no other program holds a CPU latency limit (%d in force)" %
          in_force())
    with open(d.config, "a") as f:
        f.write("cpu-latency:\n  enabled: true\n  limit-us: %d\n  hold: 1s\n" % LIMIT)
    d.start()
    check("cpu-latency: CPU wake-up latency limited to %d us" % LIMIT in d.log_text(),
          "the daemon says it holds the limit while requests are in:\n%s" % d.log_text())


def t_released_when_idle(d):
    # The start-up's HELLO took it; a second after the last answer it goes.
    wait_for("the limit released after the hold", lambda: in_force() == NONE, 30)


def t_taken_and_held_after_answer(d):
    st = d.status()
    t_answer = time.monotonic()
    got = in_force()
    check(got == LIMIT, "a request takes the limit: %d in force, not %d" % (got, LIMIT))
    cl = st.get("cpu_latency")
    check(cl is not None, "STATUS has cpu_latency: %s" % st)
    check(cl["limit_us"] == LIMIT and cl["hold_ms"] == 1000,
          "STATUS gives the limit and the hold: %s" % cl)
    check(cl["held"] is True, "STATUS, itself a request, sees it held: %s" % cl)
    check(cl["holds"] >= 2, "taken at least at the start and now: %s" % cl)
    # Released once the hold has passed after this answer, not before.
    wait_for("the limit released after the hold", lambda: in_force() == NONE, 30)
    elapsed = time.monotonic() - t_answer
    check(elapsed >= 0.9, "released %.3f s after the answer, before the 1 s hold" % elapsed)


def t_many_requests_one_hold(d):
    holds0 = d.status()["cpu_latency"]["holds"]
    # Requests closer together than the hold keep the same hold going.
    with d.client() as c:
        for _ in range(10):
            c.hello()
            check(in_force() == LIMIT, "held between requests")
            time.sleep(0.1)
    holds1 = d.status()["cpu_latency"]["holds"]
    check(holds1 == holds0, "one hold for requests within the hold of each other "
          "(holds %d -> %d)" % (holds0, holds1))


def t_withdrawn_at_stop(d):
    d.status()
    check(in_force() == LIMIT, "held before the stop")
    check(d.stop() == 0, "regsignd exits 0 on SIGTERM")
    got = in_force()
    check(got == NONE, "the daemon gone, no limit is left in force (%d)" % got)


if __name__ == "__main__":
    main([t_setup, t_released_when_idle, t_taken_and_held_after_answer,
          t_many_requests_one_hold, t_withdrawn_at_stop], Daemon("cpulat"))
