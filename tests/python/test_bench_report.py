"""bench/report.py: R's two samples and the ratio's range when they disagree.

R is taken for 3 s just before and just after each measurement. On a host
whose speed changes by half within a minute, the two can be far apart; the
ratio then uses their mean, and the table also gives the ratio against each
sample. This checks the sample reading (base_entry), how far apart the
samples are (r_moved) and the range (r_range), with R files written the way
p11bench writes them.
"""

import importlib.util
import os
import tempfile
import unittest

SOURCE_DIR = os.environ.get("REGSIGN_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(
                                os.path.abspath(__file__)))))
spec = importlib.util.spec_from_file_location(
    "report", os.path.join(SOURCE_DIR, "bench", "report.py"))
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def entry(raw, name, before, after):
    with open(os.path.join(raw, name + ".status"), "w") as f:
        f.write("ok\n")
    for suffix, value in ((".r_before", before), (".r_after", after)):
        with open(os.path.join(raw, name + suffix), "w") as f:
            f.write("RESULT raw-pkcs11 ecp256 threads=2 ops=1 sign_per_s=%.1f\n" % value)
    return report.base_entry(raw, name)


class RRange(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.raw = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_samples_far_apart(self):
        e = entry(self.raw, "issue", 32000.0, 20000.0)
        self.assertEqual((e["r_before"], e["r_after"], e["r"]), (32000.0, 20000.0, 26000.0))
        self.assertAlmostEqual(e["r_moved"], 0.6)
        # 0.50 against the mean: 0.41 against the higher sample, 0.65 the lower.
        self.assertEqual(report.r_range(e, 0.5, "R/s"),
                         "; R before/after 60% apart: 0.41-0.65 R/s against each")

    def test_order_does_not_matter(self):
        e = entry(self.raw, "sign_rrset", 20000.0, 32000.0)
        self.assertEqual(report.r_range(e, 1.0, "R"),
                         "; R before/after 60% apart: 0.81-1.30 R against each")

    def test_samples_close(self):
        e = entry(self.raw, "sign_rrset", 22000.0, 24000.0)
        self.assertAlmostEqual(e["r_moved"], 24000.0 / 22000.0 - 1)
        self.assertEqual(report.r_range(e, 0.9, "R"), "")

    def test_no_samples(self):
        with open(os.path.join(self.raw, "revoke.status"), "w") as f:
            f.write("ok\n")
        e = report.base_entry(self.raw, "revoke")
        self.assertNotIn("r_moved", e)
        self.assertEqual(report.r_range(e, 1.0, "R"), "")


if __name__ == "__main__":
    unittest.main()
