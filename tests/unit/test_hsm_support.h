/*
 * Helpers shared by the tests of the HSM process (test_hsmd, test_hsmlimits,
 * test_sandbox_hsmd): DNS bits written independently of the code under test,
 * paths, and running a libuv loop until the HSM process has answered.
 */
#ifndef REGSIGN_TEST_HSM_SUPPORT_H
#define REGSIGN_TEST_HSM_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <uv.h>

/** RFC 4034 Appendix B key tag of a P-256 DNSKEY with @p flags (protocol 3, algorithm 13). */
uint16_t ths_key_tag(EVP_PKEY *k, uint16_t flags);
/** A plain text name ("a.b." or "a.b", no escapes) in wire form; returns its length. */
size_t ths_name_wire(const char *name, uint8_t *out);
/** dir/name into @p out; fails the test when it does not fit. */
void ths_path_in(char *out, size_t size, const char *dir, const char *name);
/**
 * Run @p loop until *flag >= @p want; fails the test, naming @p what, after a
 * generous liveness bound of 120 s.
 */
void ths_run_until(uv_loop_t *loop, const int *flag, int want, const char *what);

#endif
