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

/* ---- An in-memory stand-in for the HSM and a test zone ---- */

struct zone;
struct zone_sigreq;

struct tzs_signer {
	EVP_PKEY *ksk, *zsk;
	uint16_t ksk_tag, zsk_tag;
	size_t calls;      /* batches signed */
	size_t sigs;       /* signatures made */
	size_t last;       /* size of the last batch */
	int fail;          /* when set, the next batch fails */
};

/** Make a KSK and a ZSK (distinct key tags). */
void tzs_signer_init(struct tzs_signer *s);
void tzs_signer_free(struct tzs_signer *s);
/**
 * The zone_sign_fn of the tests: checks that each request names the right
 * role and key tag, that the RRSIG data's key tag and type covered agree
 * (DNSKEY only by the KSK), then signs SHA-256(data) with ECDSA.
 */
int tzs_sign(void *ctx, struct zone_sigreq *reqs, size_t n);

/* A cmocka fixture: a software signer, the zone a test makes (freed at
 * teardown), and the time the test runs at. */
struct tzs_fix {
	struct tzs_signer s;
	struct zone *z;
	int64_t now;
};
int tzs_fix_setup(void **state);
int tzs_fix_teardown(void **state);
/** A zone "iotregistry.test." with the signer's keys (and an optional CA cert). */
struct zone *tzs_zone_new(struct tzs_signer *s, const uint8_t *ca, size_t calen);
/** A self-signed certificate (DER, malloc'd) for CERT records. */
uint8_t *tzs_cert_new(const char *cn, size_t *len);
/** Run ldns-verify-zone on a zone file; fails the test with its output if it refuses. */
void tzs_verify_zone_file(const char *path);
/** Fail the test unless the two files hold the same bytes (names the first difference). */
void tzs_assert_same_file(const char *a, const char *b);
/** Write the zone to DIR/name and run ldns-verify-zone and dnssec-verify on it (both must pass). */
void tzs_verify_zone(const struct zone *z, const char *dir, const char *name);
/** The whole zone as sorted presentation lines (one string, malloc'd). */
char *tzs_zone_text(const struct zone *z);

#endif
