"""Network helpers of the integration and end-to-end tests.

free_port() is the one way the tests pick a loopback port: imported by the
Python tests, and run as a script (printing one port) by the shell libraries
through tests/lib/net.sh. dns_skip_name() is the one hand-written step over a
DNS name in wire form, for the tests and bench scripts that read messages
byte by byte.
"""

import socket
import sys


def free_port(tries=100):
    """A port free right now on 127.0.0.1 for both TCP and UDP.

    DNS servers listen on both, so a port the kernel hands out for TCP is
    kept only if UDP can bind it too. Another process may still take it
    before the server binds; the tests accept that small window.
    """
    for _ in range(tries):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                u.close()
            return port
        finally:
            t.close()
    raise AssertionError("no port free for both TCP and UDP on 127.0.0.1 after %d tries" % tries)


def dns_skip_name(msg, pos):
    """The offset just after the wire-form name at pos (labels, ending in the
    root label or a compression pointer)."""
    while True:
        n = msg[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + n


if __name__ == "__main__":
    try:
        print(free_port())
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
