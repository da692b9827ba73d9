#!/usr/bin/env python3
"""Open-loop flood of regsignd's socket, for test_attack_overload.py.

    flood.py SOCKET CSR_DIR RATE SECONDS CONNECTIONS SILENT

Sends ISSUE requests (a new device id each, CSRs from CSR_DIR/*.der) at RATE
per second spread over CONNECTIONS pipelining connections, whatever the
daemon answers, reading replies as they come; SILENT further connections
send CHAIN requests and never read a byte. A frame that a connection cannot
take (its send buffer is full: the daemon stopped reading it) is not sent
and counted as held back. At the end prints one JSON object: sent, held
back, replies by code name, connections closed by the daemon.

Runs as another uid than the test (setpriv), so it needs only the standard
library and regsign_client.py next to it.
"""

import glob
import json
import os
import selectors
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regsign_client as rc  # noqa: E402

DEV_LEN = struct.pack(">I", 20)  # device ids "8977" + 16 digits


def main():
    path, csr_dir, rate, seconds, nconn, nsilent = sys.argv[1:7]
    rate, seconds, nconn, nsilent = float(rate), float(seconds), int(nconn), int(nsilent)
    csrs = []
    for f in sorted(glob.glob(os.path.join(csr_dir, "*.der"))):
        with open(f, "rb") as fh:
            csrs.append(fh.read())
    stats = {"sent": 0, "held_back": 0, "replies": {}, "closed": 0, "silent_sent": 0,
             "silent_stalled": 0, "connect_failed": 0}
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(nconn):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            stats["connect_failed"] += 1
            continue
        s.setblocking(False)
        st = {"sock": s, "rx": bytearray(), "tx": b"", "open": True}
        conns.append(st)
        sel.register(s, selectors.EVENT_READ, st)
    silent = []
    for _ in range(nsilent):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            stats["connect_failed"] += 1
            continue
        s.setblocking(False)
        silent.append({"sock": s, "stalled": False})
    tails = [struct.pack(">I", 1) + struct.pack(">I", 6) + b"device" +
             struct.pack(">I", len(c)) + c for c in csrs]
    chain = b"".join(struct.pack(">IBI", 5, 6, i + 1) for i in range(1024))
    start = time.time()
    due = 0.0
    k = 0
    rid = 0
    while time.time() - start < seconds:
        now = time.time() - start
        # Open loop: the number of requests due by now, whatever came back.
        target = int(now * rate)
        while due < target:
            due += 1
            live = [c for c in conns if c["open"]]
            if not live:
                break
            c = live[k % len(live)]
            k += 1
            rid = rid % 0xFFFFFFF0 + 1
            # ISSUE fields are device_id, index, profile, csr_der (PROTOCOL.md
            # §4): the fields after the device id are encoded once per CSR.
            body = DEV_LEN + b"8977%016d" % k + tails[k % len(tails)]
            frame = struct.pack(">IBI", 5 + len(body), 2, rid) + body
            if len(c["tx"]) > 256 * 1024:
                stats["held_back"] += 1
                continue
            c["tx"] += frame
            stats["sent"] += 1
        for c in conns:
            if c["open"] and c["tx"]:
                try:
                    n = c["sock"].send(c["tx"])
                    c["tx"] = c["tx"][n:]
                except BlockingIOError:
                    pass
                except OSError:
                    c["open"] = False
                    stats["closed"] += 1
        for s in silent:
            if s["stalled"]:
                continue
            # As fast as the daemon takes them, until it stops reading.
            for _ in range(16):
                try:
                    n = s["sock"].send(chain)
                    stats["silent_sent"] += n // 9
                except BlockingIOError:
                    s["stalled"] = True
                    break
                except OSError:
                    break
        for key, _ in sel.select(timeout=0.002):
            c = key.data
            try:
                chunk = c["sock"].recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                if c["open"]:
                    c["open"] = False
                    stats["closed"] += 1
                sel.unregister(c["sock"])
                continue
            c["rx"] += chunk
            while True:
                size = rc.frame_size(c["rx"])
                if size is None or len(c["rx"]) < size:
                    break
                rep = rc.decode_reply(bytes(c["rx"][:size]))
                del c["rx"][:size]
                name = "OK" if rep.ok else rep.name
                stats["replies"][name] = stats["replies"].get(name, 0) + 1
    stats["silent_stalled"] = sum(1 for s in silent if s["stalled"])
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
