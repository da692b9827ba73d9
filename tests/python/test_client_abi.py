"""libregsign-client as a C front end sees it: signer/client.h alone (copied
into an empty directory, so no other project header is reachable) must
compile, a program using it must link against the shared library alone and
run, and the library must export nothing but the public regsign_* names.

Arguments: the C compiler, and ON when the build uses the sanitizers.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.environ.get("REGSIGN_SOURCE_DIR")
BUILD_DIR = os.environ.get("REGSIGN_BUILD_DIR")
CC = sys.argv.pop(1) if len(sys.argv) > 1 else "cc"
SANITIZE = sys.argv.pop(1) in ("ON", "1", "TRUE") if len(sys.argv) > 1 else False

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "client.h"

int main(void)
{
	regsign_client *c = NULL;
	struct regsign_reply rep = {0};
	int r;

	if (regsign_client_new(&c) != REGSIGN_CLIENT_OK)
		return 10;
	regsign_client_set_timeout(c, 1000);
	r = regsign_client_connect(c, "/nonexistent/regsignd.sock");
	if (r != REGSIGN_CLIENT_ERR_CONNECT)
		return 11;
	if (strstr(regsign_client_errmsg(c), "/nonexistent/regsignd.sock") == NULL)
		return 12;
	if (regsign_client_status(c, &rep) != REGSIGN_CLIENT_ERR_IO)
		return 13;
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	printf("%s %s %d\n", regsign_code_name(REGSIGN_CODE_CONFLICT),
	       regsign_client_strerror(REGSIGN_CLIENT_ERR_TIMEOUT),
	       regsign_code_retryable(REGSIGN_CODE_UNAVAILABLE));
	return 0;
}
"""


class ClientAbi(unittest.TestCase):
    def setUp(self):
        if not SOURCE_DIR or not BUILD_DIR:
            raise RuntimeError("REGSIGN_SOURCE_DIR / REGSIGN_BUILD_DIR not set (run via ctest)")
        self.lib_dir = os.path.join(BUILD_DIR, "lib")
        self.lib = os.path.join(self.lib_dir, "libregsign-client.so")
        if not os.path.exists(self.lib):
            raise RuntimeError("%s is missing: build regsign-client-shared" % self.lib)
        self.tmp = tempfile.TemporaryDirectory(prefix="regsign-abi-")

    def tearDown(self):
        self.tmp.cleanup()

    def test_header_alone_links_and_runs(self):
        d = self.tmp.name
        shutil.copy(os.path.join(SOURCE_DIR, "signer", "client.h"), d)
        src = os.path.join(d, "fe.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        exe = os.path.join(d, "fe")
        # The sanitizer build's library needs the sanitizer runtimes too.
        extra = ["-fsanitize=address,undefined"] if SANITIZE else []
        cmd = [CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", d, src, "-o", exe,
               "-L", self.lib_dir, "-lregsign-client", "-Wl,-rpath," + self.lib_dir] + extra
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "CONFLICT timed out 1\n")

    def test_exports_only_public_names(self):
        p = subprocess.run(["nm", "-D", "--defined-only", self.lib], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        names = [ln.split()[-1] for ln in p.stdout.splitlines() if ln.strip()]
        names = [n for n in names if "@" not in n and not n.startswith("REGSIGN")]
        self.assertIn("regsign_client_issue", names)
        self.assertIn("regsign_client_recv", names)
        self.assertEqual([n for n in names if not n.startswith("regsign_")], [])
        # The codec stays internal.
        self.assertNotIn("proto_request_decode", names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
