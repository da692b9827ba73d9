/**
 * @file audit.h
 * @brief The tamper-evident audit log of regsignd.
 *
 * Records live in the store (signer/store.h), so a change and the record
 * that describes it commit in the same transaction. Each record is one
 * line of canonical JSON (fixed key order, no whitespace, RFC 8259
 * escaping; the format is specified in signer/audit_record.h) carrying
 * @c prev, the SHA-256 (hex) of the previous record's exact line, so the
 * records form a hash chain. The first record's prev is 64 zeros.
 *
 * Request path of a change:
 *   1. audit_request() with allow=1 records the INTENT (the request, the
 *      caller, the inputs' hashes, the rule and policy that allowed it);
 *      the daemon commits it before it asks the HSM to sign.
 *   2. audit_result() records the RESULT in the same transaction as the
 *      change itself (certificate row, zone change).
 * A refused request is one audit_request() with allow=0 and needs no result.
 * At open, every intent without a result gets an "abandoned" record.
 *
 * Export: after every commit, the committed records are appended in order
 * to the audit file (JSON lines) for auditors. Durability guarantee: the
 * STORE is authoritative and durable before any reply; the file is written
 * after the commit and fsync'd at every checkpoint, at audit_log_flush()
 * and at close (and after every commit with AUDIT_OPT_FSYNC_EACH). After a
 * crash the file may lag behind the store or end in a torn line:
 * audit_log_open() cuts a torn last line (recording an event saying so)
 * and re-exports the missing records from the store.
 *
 * Rotation: when appending would make the file exceed the size limit, the
 * file is renamed PATH.NNNNNNNNNNNN (its first record's seq, 12 digits, so
 * the names sort in order) and a new PATH starts. The chain simply
 * continues: the new file's first prev is the hash of the old file's last
 * line. `regsign audit verify PATH.* PATH` checks them in order.
 *
 * Checkpoints: a record of type "checkpoint" carries the head (hash of the
 * previous line), the record count and per-role signature counts, and an
 * ECDSA P-256 signature by the audit key. The audit head is the SHA-256 of
 * the latest checkpoint's line; an auditor given it (--head) detects a
 * log truncated before that checkpoint.
 *
 * Threading: an audit_log_t is used on the thread that uses its store.
 * Errors: 0 or a negative enum audit_error. AUDIT_EFSYNC / AUDIT_EIO /
 * AUDIT_ECORRUPT are fatal for the daemon (audit_error_is_fatal()). An
 * export failure after a commit is sticky: every later call returns it.
 */
#ifndef REGSIGN_SIGNER_AUDIT_H
#define REGSIGN_SIGNER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "signer/store.h"

/** Errors of the audit library (log, record codec, verifier); 0 is success. */
enum audit_error {
	AUDIT_OK = 0,
	AUDIT_ENOMEM = -1,    /**< out of memory */
	AUDIT_EINVAL = -2,    /**< bad argument (missing field, name too long, bad characters) */
	AUDIT_ESTORE = -3,    /**< a non-fatal store error (see the store's own code) */
	AUDIT_EFSYNC = -4,    /**< fsync failed (store or audit file): exit, never retry */
	AUDIT_EIO = -5,       /**< I/O error (store or audit file): exit */
	AUDIT_EFULL = -6,     /**< disk full */
	AUDIT_ECORRUPT = -7,  /**< the store's audit records are inconsistent */
	AUDIT_EEXPORT = -8,   /**< the audit file disagrees with the store (not a torn line) */
	AUDIT_ENOINTENT = -9, /**< audit_result() for a seq that is not an open intent */
	AUDIT_ESIGN = -10,    /**< the checkpoint signing callback failed */
	AUDIT_ENOTFOUND = -11, /**< no such thing (e.g. no checkpoint yet) */
	AUDIT_EFORMAT = -12,  /**< a line is not a canonical audit record */
	AUDIT_EBADLOG = -13,  /**< verification failed (see the verifier's message) */
	AUDIT_EKEY = -14,     /**< the audit public key cannot be read or is not P-256 */
	AUDIT_ESTALE = -15,   /**< records were added between checkpoint begin and end */
};

/** Static English text for an error code; never NULL. */
const char *audit_strerror(int err);

/** Non-zero for AUDIT_EFSYNC, AUDIT_EIO and AUDIT_ECORRUPT. */
int audit_error_is_fatal(int err);

/** Domain-separation prefix of checkpoint signatures, NUL included (28 bytes). */
#define AUDIT_CHECKPOINT_DOMAIN "regsign-audit-checkpoint-v1"
#define AUDIT_CHECKPOINT_DOMAIN_LEN 28

/**
 * Checkpoint signing callback (the daemon sends it to the HSM process as a
 * CHECKPOINT request for the audit key).
 *
 * @param data AUDIT_CHECKPOINT_DOMAIN (with its NUL) followed by the
 *             checkpoint's line without its "sig" member.
 * @param sig_raw receives the ECDSA P-256 signature over SHA-256(data),
 *             as r || s, 32 bytes each, big-endian.
 * @return 0 on success, anything else fails the checkpoint (AUDIT_ESIGN).
 */
typedef int (*audit_sign_fn)(void *ctx, const unsigned char *data, size_t len,
                             unsigned char sig_raw[64]);

typedef struct audit_log audit_log_t;

/** Option flags. */
enum audit_opt_flags {
	AUDIT_OPT_FSYNC_EACH = 1 << 0, /**< fsync the file after every commit's export */
};

/** Options for audit_log_open(); NULL means no export file. */
struct audit_opts {
	const char *path;       /**< the audit file (JSON lines), NULL for none */
	uint64_t rotate_bytes;  /**< rotate when the file would exceed this; 0 = never */
	unsigned flags;         /**< enum audit_opt_flags */
};

/** What audit_log_open() found and repaired. */
struct audit_open_report {
	uint64_t abandoned;     /**< intents marked abandoned */
	uint64_t reexported;    /**< records written to the file from the store */
	uint64_t torn_bytes;    /**< bytes cut from a torn last line (0 if none) */
};

/**
 * Open the audit log on @p st (which must have no open transaction).
 *
 * Checks the store's last record parses, then repairs the file: a torn
 * last line (no final newline, or not a record) is cut and an event
 * "torn-line-cut" recorded; records the file lacks are re-exported; a file
 * line that differs from the store's record of the same seq, or a file
 * ahead of the store, is AUDIT_EEXPORT (nothing is changed). Open intents
 * get "abandoned" records. Records it adds are committed in its own
 * transaction. Registers commit/rollback hooks on @p st (one log per store).
 *
 * @param out receives the handle (audit_log_close()); @p st must outlive it.
 * @param report if not NULL, receives what was repaired.
 */
int audit_log_open(audit_log_t **out, store_t *st, const struct audit_opts *opts,
                   struct audit_open_report *report);

/** fsync and close the file, unregister the store hooks. NULL is a no-op. */
void audit_log_close(audit_log_t *a);

/** Who asked: from SO_PEERCRED, plus the policy's name for that caller. */
struct audit_caller {
	uint32_t uid;
	uint32_t gid;
	int32_t pid;
	const char *name;        /**< policy caller name, NULL or "" if unknown */
};

/** One hashed input of a request (e.g. name "csr", SHA-256 of its DER). */
struct audit_input {
	const char *name;               /**< [a-z0-9_-], at most 32 characters */
	const unsigned char *sha256;    /**< 32 bytes */
};

#define AUDIT_INPUTS_MAX 4

/** A request and the policy's decision on it. All pointers are borrowed. */
struct audit_request {
	struct audit_caller caller;
	const char *op;           /**< operation, e.g. "issue", "revoke", "connect" */
	const char *device;       /**< device id or NULL */
	uint32_t index;           /**< certificate index or 0 for none */
	const struct audit_input *inputs;
	size_t n_inputs;          /**< at most AUDIT_INPUTS_MAX */
	int allow;                /**< 1: allowed, this is an intent; 0: denied */
	const char *rule;         /**< the policy rule that decided (required) */
	const unsigned char *policy_sha256; /**< SHA-256 of the policy in force, or NULL */
	const char *detail;       /**< free text (e.g. why denied) or NULL */
};

/** The outcome of an intent. All pointers are borrowed. */
struct audit_result {
	const char *op;           /**< same as the intent's */
	const char *device;       /**< or NULL */
	uint32_t index;           /**< or 0 */
	int32_t error;            /**< 0 success, else the daemon's error code */
	const unsigned char *serial; /**< certificate serial bytes or NULL */
	size_t serial_len;
	const unsigned char *cert_sha256; /**< SHA-256 of the certificate DER or NULL */
	int has_zone_serial;
	uint32_t zone_serial;
	const char *detail;       /**< free text or NULL */
};

/**
 * Record a request and its decision. With allow=1 the record is an open
 * intent; @p seq receives its sequence number for audit_result().
 * Inside the caller's transaction if one is open, else committed at once.
 */
int audit_request(audit_log_t *a, const struct audit_request *req, uint64_t *seq);

/**
 * Record the result of the intent @p intent_seq and close it; call it in
 * the transaction of the change. AUDIT_ENOINTENT if @p intent_seq is not
 * an open intent.
 */
int audit_result(audit_log_t *a, uint64_t intent_seq, const struct audit_result *res);

/**
 * Record a daemon event ("start", "stop", "reload", "reload-refused",
 * "hsm-lost", "hsm-recovered", ...): name [a-z0-9-], at most 32 characters.
 */
int audit_event(audit_log_t *a, const char *event, const char *detail);

/** Signatures made by one key role, for checkpoints. */
struct audit_role_count {
	const char *role;         /**< e.g. "issuing-ca", "zsk", "asp.test./zsk"; [a-z0-9._/-], at most 64 */
	uint64_t count;
};

#define AUDIT_ROLES_MAX 16

/**
 * Write a signed checkpoint. Must be called with no open transaction: it
 * commits on its own, then fsyncs the audit file. @p head receives the new
 * audit head (hex, NUL-terminated) if not NULL.
 */
int audit_checkpoint(audit_log_t *a, const struct audit_role_count *counts, size_t n,
                     audit_sign_fn sign, void *sign_ctx, char head[65]);

/** A checkpoint waiting for its signature (see audit_checkpoint_begin()). */
typedef struct audit_checkpoint_pending audit_checkpoint_pending_t;

/**
 * First half of audit_checkpoint() for a daemon whose signer answers
 * asynchronously (the HSM link): build the checkpoint on the current last
 * record and return the bytes to sign (@p msg, valid until _end/_abort,
 * owned by @p out). Nothing is written yet.
 */
int audit_checkpoint_begin(audit_log_t *a, const struct audit_role_count *counts, size_t n,
                           audit_checkpoint_pending_t **out, const unsigned char **msg,
                           size_t *len);

/**
 * Second half: store the signed checkpoint (own transaction; none may be
 * open), fsync the file, give the head. AUDIT_ESTALE (nothing written) if
 * records were committed since _begin: begin again. Frees @p cp always.
 */
int audit_checkpoint_end(audit_log_t *a, audit_checkpoint_pending_t *cp,
                         const unsigned char sig_raw[64], char head[65]);

/** Drop a pending checkpoint without writing it. NULL is a no-op. */
void audit_checkpoint_abort(audit_checkpoint_pending_t *cp);

/**
 * The audit head: hash of the latest checkpoint line (hex) and that
 * checkpoint's seq (either may be NULL). AUDIT_ENOTFOUND before the first.
 */
int audit_head_get(audit_log_t *a, char head[65], uint64_t *seq);

/** Seq of the latest committed record (0 if none). */
uint64_t audit_last_seq(const audit_log_t *a);

/**
 * The committed open intents (intents without a result yet), ascending, in
 * a malloc'ed array the caller frees (NULL when @p n is 0). Kept in memory;
 * at open they are found in the records written since the last checkpoint's
 * lowest open intent (a database of an older version also in its table of
 * open intents) and each gets an "abandoned" record.
 */
int audit_intents_open(const audit_log_t *a, uint64_t **seqs, size_t *n);

/** fsync the audit file now. Returns the sticky export error if any. */
int audit_log_flush(audit_log_t *a);

#endif /* REGSIGN_SIGNER_AUDIT_H */
