/*
 * Helpers shared by the zonesigner unit tests: temporary directories,
 * running an external tool, and an in-memory KSK/ZSK pair that stands in for
 * the HSM (it signs SHA-256 of the RRSIG data and returns raw r||s).
 */
#ifndef REGSIGN_TEST_ZONE_SUPPORT_H
#define REGSIGN_TEST_ZONE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/** Make a fresh directory under $TMPDIR; returns a malloc'd path. Fails the test on error. */
char *tzs_tmpdir(void);
/** Remove a directory made by tzs_tmpdir and everything in it. */
void tzs_rmtree(const char *dir);
/** Fail the test (with a clear message) when an external tool is missing from PATH. */
void tzs_require_tool(const char *tool);
/**
 * Run a shell command; returns its exit status (or -1) and, if @p out is not
 * NULL, its standard output and error as a malloc'd string.
 */
int tzs_run(const char *cmd, char **out);
/** Read a whole file into a malloc'd NUL-terminated string (NULL on error). */
char *tzs_slurp(const char *path);
/** A new EC P-256 key pair (fails the test on error). */
EVP_PKEY *tzs_p256_new(void);
/** ECDSA-sign SHA-256(data) with @p key into 64 raw bytes r||s; 0 or -1. */
int tzs_p256_sign(EVP_PKEY *key, const uint8_t *data, size_t len, uint8_t sig[64]);
/** Verify a raw r||s signature of SHA-256(data); 1 valid, 0 not. */
int tzs_p256_verify(EVP_PKEY *key, const uint8_t *data, size_t len, const uint8_t sig[64]);

#endif
