/**
 * @file audit_verify.h
 * @brief Offline verification of regsignd's audit files.
 *
 * Checks, for every line of the given files taken in order as one log:
 * it is a canonical record (signer/audit_record.h), its seq is the previous
 * one plus 1 (the first is 1, its prev 64 zeros), its prev is the SHA-256
 * of the previous line, a result or abandonment refers to an open intent,
 * and each checkpoint's head/count match its place and (with a key) its
 * signature verifies. With a head, the log must contain the checkpoint
 * whose line hashes to it, which catches a log truncated before it.
 *
 * The first failure stops verification; audit_verifier_error() then names
 * it as "FILE:LINE: what is wrong".
 *
 * Errors: enum audit_error (signer/audit.h): AUDIT_EBADLOG when the log
 * does not verify, AUDIT_EKEY for an unusable key, AUDIT_EIO/ENOMEM.
 */
#ifndef REGSIGN_SIGNER_AUDIT_VERIFY_H
#define REGSIGN_SIGNER_AUDIT_VERIFY_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "signer/audit.h"

typedef struct audit_verifier audit_verifier_t;

/** Verification flags. */
enum audit_verify_flags {
	/**
	 * The log may start after seq 1 (older rotated files archived away):
	 * the first record's prev is taken on trust, and results may refer to
	 * intents before it.
	 */
	AUDIT_VERIFY_PARTIAL = 1 << 0,
};

/** What a verification saw. */
struct audit_verify_summary {
	uint64_t records;
	uint64_t checkpoints;
	uint64_t first_seq;
	uint64_t last_seq;
	char last_checkpoint[65];   /**< hash of the last checkpoint line, "" if none */
	int signatures_checked;     /**< 1 if a key was given */
	int head_reached;           /**< 1 if the --head checkpoint was found */
};

/**
 * New verifier. @p key (may be NULL: signatures are then not checked) is
 * up-referenced, the caller keeps its own reference. @p head (may be NULL)
 * is the expected audit head, 64 hex digits.
 */
int audit_verifier_new(audit_verifier_t **out, EVP_PKEY *key, const char *head, unsigned flags);

/** Free the verifier. NULL is a no-op. */
void audit_verifier_free(audit_verifier_t *v);

/** Start the next file of the log; @p name is used in messages (copied). */
int audit_verifier_file_begin(audit_verifier_t *v, const char *name);

/** Feed the next @p len bytes of the current file (any chunking). */
int audit_verifier_feed(audit_verifier_t *v, const char *data, size_t len);

/** The current file ended: a last line without newline is an error. */
int audit_verifier_file_end(audit_verifier_t *v);

/** All files given: checks the head was reached and the log was not empty. */
int audit_verifier_finish(audit_verifier_t *v);

/** "FILE:LINE: what is wrong" after a failure, else NULL. Owned by @p v. */
const char *audit_verifier_error(const audit_verifier_t *v);

/** Copy out what was verified so far. */
void audit_verifier_summary(const audit_verifier_t *v, struct audit_verify_summary *out);

/** Read an audit public key (PEM SubjectPublicKeyInfo, EC P-256). AUDIT_EKEY otherwise. */
int audit_verify_key_load(const char *pem_path, EVP_PKEY **out);

/**
 * Verify @p n files as one log. On AUDIT_EBADLOG (or a read error) @p err
 * receives the message. @p sum (may be NULL) receives the summary.
 */
int audit_verify_files(const char *const *paths, size_t n, EVP_PKEY *key, const char *head,
                       unsigned flags, char *err, size_t errlen,
                       struct audit_verify_summary *sum);

#endif /* REGSIGN_SIGNER_AUDIT_VERIFY_H */
