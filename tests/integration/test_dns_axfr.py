"""Zone transfers served from the zone's own wire data, through a real regsignd.

One regsignd on a fresh development setup (SoftHSM token, key ceremony) gets
a few thousand devices by IMPORT, so that an AXFR is many 64 KiB messages.
Checked:
 - kdig AXFR (plain, and TSIG-signed with kdig -y, which checks every
   message's MAC) holds every imported device's CERT and passes
   ldns-verify-zone and dnssec-verify;
 - knotd, started by the e2e helper (tests/e2e/e2e_lib.sh e2e_start_knot) as
   a secondary of regsignd, pulls the zone by AXFR, logs it, and then answers
   the daemon's SOA serial and a device's CERT with the daemon's data; its
   own AXFR equals the daemon's, RR for RR (ldns-read-zone -c);
 - after a revocation and NOTIFY knotd follows by IXFR (the name is gone
   there), and a forced retransfer (knotc zone-retransfer: an AXFR of the
   changed zone) again gives the daemon's zone exactly;
 - restarted with dns.transfer-message-size 4096, the daemon says so in
   ZONE_STATUS and sends the same zone, RR for RR (kdig, plain and with TSIG),
   in several times more messages, each at most 4096 bytes (read off the TCP
   stream), and knotd's retransfer of it is again the daemon's zone.
"""

import base64
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (SOURCE_DIR, ZONE, Daemon, check, main, need_tool, run,  # noqa: E402
                        wait_for)
from net_util import dns_skip_name as skip_name, free_port  # noqa: E402

N_DEV = 3000
STATE = {}
TSIG_NAME = "axfr-key."
TSIG_SECRET = base64.b64encode(hashlib.sha256(b"axfr test key").digest()).decode()
E2E_LIB = os.path.join(SOURCE_DIR, "tests", "e2e", "e2e_lib.sh")


def dev(i):
    return "8a%018x" % (i * 2654435761 % (1 << 72))


def cert_hash(i):
    return hashlib.sha256(b"axfr device %d" % i).digest()


def kdig(port, *args, wait=60):
    p = run([need_tool("kdig"), "@127.0.0.1", "-p", str(port), "+nocomments", "+nostats",
             "+noquestion", "+time=%d" % wait, "+retry=0"] + list(args))
    check(p.returncode == 0, "kdig %s at %d failed: %s%s" % (" ".join(args), port, p.stdout,
                                                               p.stderr[-2000:]))
    return p.stdout


def rr_lines(text):
    return [" ".join(l.split()) for l in text.splitlines()
            if l.strip() and not l.startswith(";")]


def axfr_lines(port, *args):
    """The AXFR at port as RR lines, without TSIG RRs."""
    lines = [l for l in rr_lines(kdig(port, *args, "AXFR", ZONE + ".")) if l.split()[3] != "TSIG"]
    check(len(lines) > 4 and lines[0].split()[3] == "SOA" and lines[-1].split()[3] == "SOA",
          "an AXFR opens and closes with the SOA")
    return lines


def serial_at(port, wait=60):
    for f in (l.split() for l in rr_lines(kdig(port, ZONE + ".", "SOA", wait=wait))):
        if len(f) >= 7 and f[3] == "SOA":
            return int(f[6])
    return None


def serial_or_none(port):
    try:
        return serial_at(port, wait=2)
    except Exception:  # noqa: BLE001 - not answering yet
        return None


def canonical(d, lines, name):
    """The zone's RRs (closing SOA dropped) in ldns's canonical presentation, sorted."""
    path = os.path.join(d.base, name)
    with open(path, "w") as f:
        f.write("\n".join(lines[:-1]) + "\n")
    p = run([need_tool("ldns-read-zone"), "-c", path])
    check(p.returncode == 0, "ldns-read-zone %s: %s" % (path, p.stderr))
    return path, sorted(rr_lines(p.stdout))


def verify(path, what):
    p = run([need_tool("ldns-verify-zone"), path])
    check(p.returncode == 0, "ldns-verify-zone on %s:\n%s%s" % (what, p.stdout[-3000:],
                                                                 p.stderr[-3000:]))
    p = run([need_tool("dnssec-verify"), "-o", ZONE + ".", path])
    check(p.returncode == 0, "dnssec-verify on %s:\n%s%s" % (what, p.stdout[-3000:],
                                                              p.stderr[-3000:]))


def setup(d):
    """A TSIG key (transfers from 127.0.0.1 stay allowed without one, for
    knotd) and NOTIFY to the port knotd will listen on."""
    key = os.path.join(d.dir, "axfr-key.b64")
    with open(key, "w") as f:
        f.write(TSIG_SECRET + "\n")
    STATE["kport"] = free_port()
    d.edit(d.config, 'notify: []\n',
           'tsig-keys:\n'
           '    - name: %s\n'
           '      algorithm: hmac-sha256\n'
           '      secret-file: %s\n'
           '  notify: ["127.0.0.1:%d"]\n' % (TSIG_NAME, key, STATE["kport"]))


def t_start_and_import(d):
    d.start()
    STATE["port"] = d.zone_status()["listen"][0]["port"]
    path = os.path.join(d.base, "devices.txt")
    with open(path, "w") as f:
        for i in range(N_DEV):
            f.write("%s 1 sha256:%s\n" % (dev(i), cert_hash(i).hex()))
    p = run([d.regsign, "-s", d.sock, "import", path, "--chunk", "500"])
    check(p.returncode == 0, "regsign import: %d %s" % (p.returncode, p.stderr))
    STATE["serial"] = d.zone_status()["serial"]
    check(serial_at(STATE["port"]) == STATE["serial"], "the listener serves the import")


def t_axfr_verifies(d):
    lines = axfr_lines(STATE["port"])
    certs = {}
    for f in (l.split() for l in lines):
        if f[3] == "CERT":
            certs[f[0].lower()] = base64.b64decode("".join(f[7:]))
    for i in range(N_DEV):
        owner = "1.%s.%s." % (dev(i), ZONE)
        check(certs.get(owner) == cert_hash(i), "the AXFR holds the CERT of %s" % owner)
    path, canon = canonical(d, lines, "daemon.zone")
    verify(path, "the daemon's AXFR")
    STATE["canon"] = canon
    # Every message of a signed transfer carries a MAC that kdig checks (it
    # fails the transfer otherwise); the data is the same.
    signed = axfr_lines(STATE["port"], "-y", "hmac-sha256:%s:%s" % (TSIG_NAME, TSIG_SECRET))
    check(signed == lines, "a TSIG-signed AXFR serves the same RRs")
    # Fewer, fuller messages: a few thousand devices take several 64 KiB ones.
    p = run([need_tool("kdig"), "@127.0.0.1", "-p", str(STATE["port"]), "+noall", "+stats",
             "AXFR", ZONE + "."])
    stats = [l for l in p.stdout.splitlines() if "messages" in l]
    check(stats, "kdig reports the transfer's size: %s" % p.stdout[-500:])
    msgs = int(stats[0].split("(")[1].split()[0])
    size = int(stats[0].split("Received")[1].split()[0])
    check(msgs >= 3 and size / msgs > 40000,
          "messages filled towards 64 KiB: %d messages, %d bytes" % (msgs, size))


def start_knot(d):
    """knotd by the e2e helper, as a secondary of regsignd; returns its pid."""
    need_tool("knotd")
    kdir = os.path.join(d.base, "e2e")
    os.makedirs(kdir, exist_ok=True)
    p = run(["bash", "-c", '. "$1"; E2E_T=$2; e2e_start_knot "$3" "$4"; echo "$E2E_KNOT_PID"',
             "start-knot", E2E_LIB, kdir, str(STATE["kport"]), str(STATE["port"])])
    check(p.returncode == 0 and p.stdout.strip().isdigit(),
          "e2e_start_knot: %s%s" % (p.stdout, p.stderr))
    STATE["knot_dir"] = kdir
    return int(p.stdout.strip())


def knot_log():
    try:
        with open(os.path.join(STATE["knot_dir"], "knot.log")) as f:
            return f.read()
    except OSError:
        return ""


def axfrs_in():
    """AXFRs knotd finished taking in."""
    return sum(1 for l in knot_log().splitlines() if "AXFR, incoming" in l and "finished" in l)


def t_knot_pulls_axfr(d):
    STATE["knot"] = start_knot(d)
    kport = STATE["kport"]
    wait_for("knotd serves serial %d" % STATE["serial"],
             lambda: serial_or_none(kport) == STATE["serial"], 120)
    check(axfrs_in() == 1, "knotd logs the AXFR from regsignd:\n%s" % knot_log()[-3000:])
    owner = "1.%s.%s." % (dev(7), ZONE)
    got = [l.split() for l in rr_lines(kdig(kport, "+dnssec", owner, "CERT"))]
    certs = [f for f in got if f[0].lower() == owner and f[3] == "CERT"]
    check(len(certs) == 1 and base64.b64decode("".join(certs[0][7:])) == cert_hash(7),
          "knotd answers the device's CERT: %r" % got)
    check(any(f[3] == "RRSIG" and f[4] == "CERT" for f in got), "with its RRSIG: %r" % got)
    _, canon = canonical(d, axfr_lines(kport), "knot.zone")
    check(canon == STATE["canon"], "knotd's copy is the daemon's zone RR for RR")


def t_knot_follows_changes(d):
    kport = STATE["kport"]
    with d.client() as c:
        c.revoke(dev(11), 1)
    serial = d.zone_status()["serial"]
    check(serial != STATE["serial"], "the revocation made a new serial")
    wait_for("knotd serves serial %d after NOTIFY" % serial,
             lambda: serial_or_none(kport) == serial, 120)
    check("IXFR, incoming" in knot_log(), "knotd followed by IXFR:\n%s" % knot_log()[-3000:])
    owner = "1.%s.%s." % (dev(11), ZONE)
    out = run([need_tool("kdig"), "@127.0.0.1", "-p", str(kport), owner, "CERT"]).stdout
    check("NXDOMAIN" in out, "the revoked name is gone at knotd:\n%s" % out)
    # A full transfer of the changed zone (what a new secondary or an IXFR
    # fallback gets) gives the daemon's zone exactly.
    before = axfrs_in()
    p = run(["knotc", "-s", os.path.join(STATE["knot_dir"], "knot", "run", "knot.sock"),
             "zone-retransfer", ZONE + "."])
    check(p.returncode == 0, "knotc zone-retransfer: %s%s" % (p.stdout, p.stderr))
    wait_for("knotd's second AXFR", lambda: axfrs_in() > before, 120)
    path, ours = canonical(d, axfr_lines(STATE["port"]), "daemon2.zone")
    verify(path, "the daemon's AXFR after the revocation")
    _, theirs = canonical(d, axfr_lines(kport), "knot2.zone")
    check(theirs == ours, "knotd's copy after the retransfer is the daemon's zone")
    STATE["canon2"] = ours


def axfr_message_sizes(port, size_limit):
    """One AXFR read off the TCP stream by hand: the length of each message
    (from the two-byte prefix), up to the message holding the closing SOA, and
    the number of RRs."""
    qname = b"".join(bytes([len(l)]) + l.encode() for l in ZONE.split(".") if l) + b"\0"
    query = struct.pack(">HHHHHH", 4242, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 252, 1)
    sizes, soas, rrs = [], 0, 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(struct.pack(">H", len(query)) + query)
        f = s.makefile("rb")
        while soas < 2:
            head = f.read(2)
            check(len(head) == 2, "the AXFR stream ended after %d messages" % len(sizes))
            (n,) = struct.unpack(">H", head)
            msg = f.read(n)
            check(len(msg) == n, "a message cut short")
            check(n <= size_limit, "message %d has %d bytes, more than %d" %
                  (len(sizes), n, size_limit))
            rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
            check(rid == 4242 and flags & 0x000F == 0, "message %d: id %d, rcode %d" %
                  (len(sizes), rid, flags & 0x000F))
            p = 12
            for _ in range(qd):
                p = skip_name(msg, p) + 4
            for _ in range(an):
                p = skip_name(msg, p)
                rtype, _, _, rdlen = struct.unpack(">HHIH", msg[p:p + 10])
                soas += rtype == 6
                p += 10 + rdlen
            rrs += an
            sizes.append(n)
    return sizes, rrs


def t_small_messages(d):
    big, big_rrs = axfr_message_sizes(STATE["port"], 65535)
    d.stop()
    # The same port again, where knotd has its primary.
    d.edit(d.config, 'listen: ["127.0.0.1:0"]', 'listen: ["127.0.0.1:%d"]' % STATE["port"])
    d.edit(d.config, '  notify: ["127.0.0.1:%d"]\n' % STATE["kport"],
           '  notify: ["127.0.0.1:%d"]\n  transfer-message-size: 4096\n' % STATE["kport"])
    d.start()
    st = d.zone_status()
    check(st["listen"][0]["port"] == STATE["port"], "the listener is back on its port")
    check(st["dns"]["transfer_message_size"] == 4096,
          "ZONE_STATUS shows the message size: %r" % st["dns"])
    small, small_rrs = axfr_message_sizes(STATE["port"], 4096)
    check(len(small) >= 3 * len(big),
          "4096-byte messages: %d of them, against %d of up to 64 KiB" % (len(small), len(big)))
    check(small_rrs == big_rrs, "as many RRs: %d against %d" % (small_rrs, big_rrs))
    lines = axfr_lines(STATE["port"])
    path, canon = canonical(d, lines, "daemon-small.zone")
    check(canon == STATE["canon2"], "4096-byte messages carry the same zone, RR for RR")
    verify(path, "the daemon's AXFR in 4096-byte messages")
    signed = axfr_lines(STATE["port"], "-y", "hmac-sha256:%s:%s" % (TSIG_NAME, TSIG_SECRET))
    check(signed == lines, "a TSIG-signed AXFR in 4096-byte messages verifies and is the same")
    # knotd, still the secondary, takes it whole.
    kport = STATE["kport"]
    before = axfrs_in()
    p = run(["knotc", "-s", os.path.join(STATE["knot_dir"], "knot", "run", "knot.sock"),
             "zone-retransfer", ZONE + "."])
    check(p.returncode == 0, "knotc zone-retransfer: %s%s" % (p.stdout, p.stderr))
    wait_for("knotd's AXFR in 4096-byte messages", lambda: axfrs_in() > before, 120)
    _, theirs = canonical(d, axfr_lines(kport), "knot-small.zone")
    check(theirs == canon, "knotd's copy from 4096-byte messages is the daemon's zone")


def t_stop_knot(d):
    pid = STATE.pop("knot", None)
    check(pid is not None, "knotd was started")
    os.kill(pid, signal.SIGTERM)
    end = time.time() + 30
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("knotd (pid %d) did not stop" % pid)


if __name__ == "__main__":
    for tool in ("kdig", "knotd", "knotc", "ldns-verify-zone", "ldns-read-zone",
                 "dnssec-verify"):
        need_tool(tool)
    daemon = Daemon("dns-axfr")
    setup(daemon)
    try:
        main([t_start_and_import, t_axfr_verifies, t_knot_pulls_axfr, t_knot_follows_changes,
              t_small_messages, t_stop_knot], daemon)
    finally:
        if "knot" in STATE:
            try:
                os.kill(STATE["knot"], signal.SIGTERM)
            except ProcessLookupError:
                pass
