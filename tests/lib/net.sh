# Network helpers shared by the shell test libraries (sourced by
# tests/integration/dns_lib.sh and tests/e2e/e2e_lib.sh). The port picking
# itself lives once, in tests/integration/net_util.py, which the Python
# tests import.

NET_UTIL_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/../integration" && pwd)/net_util.py"

# free_port: print a port free right now on 127.0.0.1 for both TCP and UDP;
# fails (status 1, a message on stderr) when none is found.
free_port() {
	python3 "$NET_UTIL_PY"
}
