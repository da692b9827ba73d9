"""Network helpers of the integration and end-to-end tests.

free_port() is the one way the tests pick a loopback port: imported by the
Python tests, and run as a script (printing one port) by the shell libraries
through tests/lib/net.sh.
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


if __name__ == "__main__":
    try:
        print(free_port())
    except AssertionError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
