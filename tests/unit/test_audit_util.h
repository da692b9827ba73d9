/*
 * Helpers shared by the audit tests: temporary directories, an in-memory
 * P-256 audit key with a signing callback like the HSM process's, and
 * line surgery on audit files.
 */
#ifndef REGSIGN_TEST_AUDIT_UTIL_H
#define REGSIGN_TEST_AUDIT_UTIL_H

#include <openssl/evp.h>
#include <stddef.h>

#include "signer/audit.h"
#include "signer/store.h"

/** Make a fresh directory under /tmp; @p out holds at least 64 bytes. */
void tu_tmpdir(char *out);
void tu_rmdir(const char *dir);

/** A new in-memory EC P-256 key; fails the test if it cannot be made. */
EVP_PKEY *tu_key_new(void);

/** Write @p key's public half as PEM SubjectPublicKeyInfo to @p path. */
void tu_key_write_pub(EVP_PKEY *key, const char *path);

/**
 * audit_sign_fn for an EVP_PKEY context: checks the domain prefix like the
 * HSM process does, then ECDSA P-256 over SHA-256(data), as raw r||s.
 */
int tu_sign(void *ctx, const unsigned char *data, size_t len, unsigned char sig_raw[64]);

/** Whole file into a NUL-terminated malloc'ed buffer (fails the test on error). */
char *tu_read(const char *path, size_t *len);
void tu_write(const char *path, const char *data, size_t len);

/** Number of lines ('\n' characters) of @p data. */
size_t tu_count_lines(const char *data, size_t len);

/**
 * Offset and length (newline excluded) of line @p n (1-based) of @p data.
 * Returns 0, or -1 if there is no such line.
 */
int tu_line(const char *data, size_t len, size_t n, size_t *off, size_t *llen);

/**
 * The audit tests' fixture: a state database and an audit log (signed by
 * @c key) in a fresh directory @c dir.
 */
struct tu_audit_fx {
	char dir[64];
	char db[128];
	char log[128];
	store_t *st;
	audit_log_t *a;
	struct audit_open_report rep;
	EVP_PKEY *key;
	struct audit_opts opts;
};

/** A new fixture: directory, paths and key made, nothing opened yet. */
struct tu_audit_fx *tu_audit_fx_new(void);
/** Open the store and the audit log (the report of the opening in @c rep). */
void tu_audit_fx_open(struct tu_audit_fx *f);
/** Close both; like a crash as far as open intents go (none is abandoned). */
void tu_audit_fx_close(struct tu_audit_fx *f);
/** Close what is open, free the key, remove the directory, free @p f. */
void tu_audit_fx_free(struct tu_audit_fx *f);

#endif
