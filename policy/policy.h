/*
 * policy: regsign's signing policy, loaded from one YAML file, and the pure
 * decision functions that answer "may this caller do this?" and "what
 * exactly may be issued?".
 *
 * A struct policy is immutable once loaded: the daemon swaps whole objects on
 * SIGHUP, and any number of threads may ask the same object at once. The
 * decision functions do no I/O and read no clock; every input, including the
 * current time, is an argument, so every decision can be replayed by an
 * auditor from the audit record and the policy file whose SHA-256 it names.
 *
 * The file format is documented in policy/README.md and in the commented
 * policy/policy.example.yaml.
 *
 * Example (the front process handling an ISSUE request):
 *
 * @code
 *   struct policy_decision d;
 *   const struct policy_caller *caller;
 *   struct policy_issue_request req = {
 *       .profile = "device", .device_id = "8912230200031010008F",
 *       .index = 1, .key_algorithm = "ec-p256", .live_certificates = 0,
 *   };
 *   struct policy_issue_grant grant;
 *
 *   if (policy_caller_find(pol, peer_uid, peer_gid, &caller, &d) != POLICY_ALLOW ||
 *       policy_check_issue(pol, caller, &req, &grant, &d) != POLICY_ALLOW) {
 *       audit_deny(d.code, d.rule, d.message);   // reply with d.message
 *       return;
 *   }
 *   // grant.device_id is "8912230200031010008f"; grant.profile->validity ...
 * @endcode
 */
#ifndef REGSIGN_POLICY_POLICY_H
#define REGSIGN_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/yconf.h"

/** Operations of the signing socket a caller may be granted. */
enum policy_op {
    POLICY_OP_ISSUE = 0,
    POLICY_OP_REVOKE,
    POLICY_OP_REISSUE,
    POLICY_OP_CRL,
    POLICY_OP_CHAIN,
    POLICY_OP_STATUS,
    POLICY_OP_PUBLISH,
    POLICY_OP_UNPUBLISH,
    POLICY_OP_SIGN_RRSET,
    POLICY_OP_ZONE_STATUS,
    POLICY_OP_IMPORT,
    POLICY_OP_COUNT
};

/** Record styles of the registry zone (bits of policy_zone.record_styles). */
enum policy_style {
    POLICY_STYLE_SEED = 1u << 0,      /**< CERT 1 0 0 <base64 SHA-256 of DER> */
    POLICY_STYLE_CERT_PKIX = 1u << 1, /**< CERT 1 0 0 <DER certificate> */
    POLICY_STYLE_DANCE = 1u << 2,     /**< TLSA 3 1 1 at <prefix>.<n>.<id>.<zone> */
};

/**
 * How much of its own fresh signing the zone verifies when it commits a
 * change (zone.verify-signatures; index into the policy file's choices).
 * docs/CONFIG.md states the trade-off.
 */
enum policy_verify {
    POLICY_VERIFY_ALL = 0,      /**< every new signature and every kept NSEC */
    POLICY_VERIFY_SAMPLED = 1,  /**< one new signature per key per group (default) */
    POLICY_VERIFY_NONE = 2,     /**< the structural checks only */
};

/** Key algorithms a profile may allow (bits of policy_profile.key_algorithms). */
enum policy_key_algorithm {
    POLICY_KEY_EC_P256 = 1u << 0,
};

/** Who may revoke or reissue a certificate. */
enum policy_scope {
    POLICY_SCOPE_OWN = 0, /**< only certificates the same caller had issued */
    POLICY_SCOPE_ANY = 1, /**< any certificate */
};

/** Why a decision denied; POLICY_ALLOW (0) when it allowed. */
enum policy_code {
    POLICY_ALLOW = 0,
    POLICY_DENY_CALLER,        /**< peer uid/gid matches no caller */
    POLICY_DENY_OPERATION,     /**< caller lacks the operation */
    POLICY_DENY_PROFILE,       /**< no such profile, or not the caller's */
    POLICY_DENY_DEVICE_ID,     /**< malformed device id */
    POLICY_DENY_INDEX,         /**< certificate index out of range */
    POLICY_DENY_LIMIT,         /**< too many live certificates for the device */
    POLICY_DENY_KEY_ALGORITHM, /**< key algorithm not allowed */
    POLICY_DENY_REASON,        /**< revocation reason not allowed */
    POLICY_DENY_NOT_OWNER,     /**< certificate was issued to another caller */
    POLICY_DENY_NAME,          /**< owner name refused (subtree, namespace, wildcard) */
    POLICY_DENY_TYPE,          /**< record type refused */
    POLICY_DENY_ZONE,          /**< zone not signable for this caller */
    POLICY_DENY_TIME,          /**< signature validity period refused */
    POLICY_DENY_RATE,          /**< rate limit reached */
    POLICY_DENY_ARGUMENT,      /**< input malformed (unparsable name, NULL, ...) */
};

/** Stable short name of a code for logs and audit records ("deny-operation"). */
const char *policy_code_name(enum policy_code code);

/** Name of an operation as written in policy files ("sign-rrset"); NULL if out of range. */
const char *policy_op_name(enum policy_op op);

/** Operation named @p name, or -1. */
int policy_op_from_name(const char *name);

/**
 * RFC 5280 CRLReason code of a reason name as written in policy files
 * ("keyCompromise" is 1), or -1 for an unknown name.
 */
int policy_reason_from_name(const char *name);

/** Name of an RFC 5280 CRLReason code, or NULL for codes policy files cannot name. */
const char *policy_reason_name(int code);

/**
 * Writes @p a, @p b, @p c, @p d and @p e (NULL: nothing) one after the other
 * to @p buf, cut to @p len bytes with its NUL exactly as
 * snprintf(buf, len, "%s%s%s%s%s", ...) would, and returns @p buf (@p len 0:
 * nothing is written). Rule names and refusal texts are built on every
 * request, and snprintf's format parsing was most of their cost.
 */
char *policy_text_join(char *buf, size_t len, const char *a, const char *b, const char *c,
                       const char *d, const char *e);

#define POLICY_RULE_MAX 160
#define POLICY_MESSAGE_MAX 320

/**
 * The outcome of one decision. @c rule names the part of the policy that
 * decided ("callers.frontend.operations", "profiles.device.key-algorithms";
 * fixed rules of regsign itself are "builtin.<what>"). @c message says in
 * one sentence what was allowed or what was wrong; text taken from requests
 * appears in it shortened, with unprintable bytes replaced by '?'.
 */
struct policy_decision {
    enum policy_code code;
    char rule[POLICY_RULE_MAX];
    char message[POLICY_MESSAGE_MAX];
};

/** The registry zone's settings; all durations in seconds. */
struct policy_zone {
    const char *name;          /**< absolute, lowercase: "iotregistry.test." */
    uint32_t record_styles;    /**< enum policy_style bits, never SEED|CERT_PKIX */
    const char *dance_prefix;  /**< one label, e.g. "_device" */
    int64_t device_ttl;
    int64_t device_signature_validity;
    int64_t device_signature_refresh; /**< re-sign when less than this is left */
    int64_t signature_validity;
    int64_t signature_refresh;
    int64_t inception_offset;  /**< inception = now - offset */
    int64_t soa_minimum;
    int64_t ttl;
    int verify_signatures;     /**< enum policy_verify */
};

/** One certificate profile. */
struct policy_profile {
    const char *name;
    uint32_t key_algorithms;   /**< enum policy_key_algorithm bits */
    int64_t validity;          /**< seconds from notBefore + backdate */
    int64_t backdate;          /**< notBefore = now - backdate; at most 3600 */
    const char *crl_distribution_point; /**< URI, or NULL for none */
    int64_t max_live_certificates;
};

/** One caller of the signing socket. */
struct policy_caller {
    const char *name;
    bool has_uid, has_gid;
    uint32_t uid, gid;
    uint32_t operations;       /**< bit (1u << enum policy_op) per operation */
    enum policy_scope revoke, reissue;
    int64_t rate_per_second;   /**< 0: no rate limit */
    int64_t rate_burst;
    /**
     * Open connections of this caller at most; 0: not set, the daemon derives
     * one from its global connection cap (half of it), so that one caller
     * cannot hold every connection slot.
     */
    int64_t max_connections;
    /**
     * Requests of this caller inside the daemon (waiting for service or being
     * served) at most, past which it is answered BUSY; 0: not set, the daemon
     * derives one from its global in-flight cap (half of it).
     */
    int64_t max_queued;
};

/** Device id rules. */
struct policy_device_id {
    int64_t min_length, max_length; /**< hex digits */
    int64_t max_index;              /**< highest certificate index */
};

struct policy;

/**
 * Loads and validates the policy file at @p path.
 * @param out  receives a new policy the caller frees with policy_free().
 * @param err  receives "file:line:col: what" on failure; may be NULL.
 * @return YCONF_OK, or a yconf_err (YCONF_ESCHEMA for a broken rule).
 */
int policy_load(const char *path, struct policy **out, char *err, size_t errlen);

/** As policy_load() for @p len bytes at @p buf named @p name (tests, fuzzing). */
int policy_parse(const char *name, const void *buf, size_t len, struct policy **out,
                 char *err, size_t errlen);

/** Frees a policy. NULL is a no-op. */
void policy_free(struct policy *pol);

/** SHA-256 of the exact file bytes (32 bytes, owned by the policy). */
const uint8_t *policy_sha256(const struct policy *pol);

/** The same digest as 64 lowercase hex digits (owned by the policy). */
const char *policy_sha256_hex(const struct policy *pol);

/** File name given at load (owned by the policy). */
const char *policy_file(const struct policy *pol);

/** Registry zone settings (owned by the policy). */
const struct policy_zone *policy_zone(const struct policy *pol);

/** Device id rules (owned by the policy). */
const struct policy_device_id *policy_device_id(const struct policy *pol);

/** CRL nextUpdate distance in seconds. */
int64_t policy_crl_next_update(const struct policy *pol);

/** Profile named @p name, or NULL. */
const struct policy_profile *policy_profile_find(const struct policy *pol,
                                                 const char *name);

/** Number of callers, and caller @p i (NULL past the end), for listings. */
size_t policy_caller_count(const struct policy *pol);
const struct policy_caller *policy_caller_at(const struct policy *pol, size_t i);

/**
 * The @p i-th profile the policy lists for @p caller, in file order, or NULL past the
 * end (and for a NULL caller). Profile 0 is what an ISSUE without a profile means.
 */
const struct policy_profile *policy_caller_profile(const struct policy_caller *caller,
                                                   size_t i);

/** Caller named @p name, or NULL (to find the caller recorded on a certificate). */
const struct policy_caller *policy_caller_by_name(const struct policy *pol,
                                                  const char *name);

/*
 * Decision functions. Each fills @p d and returns d->code: POLICY_ALLOW or
 * the reason for refusal. A caller pointer must come from the same policy
 * object it is used with (after a reload, find the caller again). A NULL pointer argument is a refusal with
 * POLICY_DENY_ARGUMENT, never a crash. Pointers returned through out
 * arguments are owned by the policy.
 */

/**
 * Finds the caller for a peer's uid and gid. A caller naming both uid and gid
 * matches only when both match and wins over one naming the uid alone, which
 * wins over one naming the gid alone (the policy never holds two callers of
 * the same identity). Rule "callers.<name>", or "callers" on refusal.
 */
enum policy_code policy_caller_find(const struct policy *pol, uint32_t uid, uint32_t gid,
                                    const struct policy_caller **caller,
                                    struct policy_decision *d);

/** May @p caller perform @p op? Rule "callers.<name>.operations". */
enum policy_code policy_check_operation(const struct policy *pol,
                                        const struct policy_caller *caller,
                                        enum policy_op op, struct policy_decision *d);

/**
 * The caller that policy_caller_find would pick for @p uid / @p gid, or NULL,
 * without writing a decision: for the request path, which needs the texts only
 * when it refuses (then it asks policy_caller_find for them).
 */
const struct policy_caller *policy_caller_lookup(const struct policy *pol, uint32_t uid,
                                                 uint32_t gid);

/**
 * True exactly when policy_check_operation(pol, @p caller, @p op, d) would
 * allow, for a non-NULL policy; writes no decision (see policy_caller_lookup).
 */
bool policy_caller_may(const struct policy_caller *caller, enum policy_op op);

#define POLICY_DEVICE_ID_MAX 63

/** What an issue or reissue request asks for. */
struct policy_issue_request {
    const char *profile;       /**< profile name */
    const char *device_id;     /**< hex digits, any case */
    int64_t index;             /**< certificate index n (>= 1) */
    const char *key_algorithm; /**< "ec-p256", "ec-p384", "rsa", "ec-explicit", ... */
    int64_t live_certificates; /**< live certificates the device already has */
};

/** What the policy grants when it allows an issue. */
struct policy_issue_grant {
    const struct policy_profile *profile;
    char device_id[POLICY_DEVICE_ID_MAX + 1]; /**< normalised: lowercase hex */
};

/**
 * Checks an ISSUE: operation, profile (exists and is the caller's), device id
 * (hex, length range; folded to lowercase into @p grant), index (1 ..
 * device-id.max-index), live certificate count (below the profile's
 * max-live-certificates-per-device) and key algorithm.
 */
enum policy_code policy_check_issue(const struct policy *pol,
                                    const struct policy_caller *caller,
                                    const struct policy_issue_request *req,
                                    struct policy_issue_grant *grant,
                                    struct policy_decision *d);

/**
 * Checks a REISSUE of a certificate first issued to the caller named
 * @p issued_to: operation, the caller's reissue scope (own or any), then the
 * same checks as policy_check_issue() for the new certificate (@p req's live
 * count excludes the certificate being replaced).
 */
enum policy_code policy_check_reissue(const struct policy *pol,
                                      const struct policy_caller *caller,
                                      const char *issued_to,
                                      const struct policy_issue_request *req,
                                      struct policy_issue_grant *grant,
                                      struct policy_decision *d);

/**
 * Checks a REVOKE of a certificate issued to the caller named @p issued_to
 * with RFC 5280 reason code @p reason: operation, reason listed in
 * revocation.reasons, revoke scope.
 */
enum policy_code policy_check_revoke(const struct policy *pol,
                                     const struct policy_caller *caller,
                                     const char *issued_to, int reason,
                                     struct policy_decision *d);

/**
 * Checks PUBLISH or UNPUBLISH (@p op) of the RRset @p owner / @p type, both
 * in presentation form ("www._asp.iotregistry.test.", "TXT" or "TYPE16").
 * The owner must be absolute, at or under one of the caller's
 * publish-subtrees, contain no wildcard label and lie outside the device
 * namespace (no label of only hex digits, at least device-id.min-length
 * long, directly below the zone); the type must not be one regsign manages
 * or that changes trust (SOA NS DS CNAME DNAME DNSKEY CDS CDNSKEY NSEC NSEC3
 * NSEC3PARAM RRSIG SIG KEY NXT CERT, and meta types).
 */
enum policy_code policy_check_publish(const struct policy *pol,
                                      const struct policy_caller *caller,
                                      enum policy_op op, const char *owner,
                                      const char *type, struct policy_decision *d);

/**
 * Checks SIGN_RRSET of an RRset at @p owner in extra zone @p zone with an
 * RRSIG from @p inception to @p expiration, at time @p now (all seconds
 * since the epoch): operation; zone listed in extra-zones (and in the
 * caller's own extra-zones list if it has one), never the registry zone;
 * owner at or under the zone; expiration after inception and after now;
 * expiration - inception at most max-validity; inception at most
 * max-inception-skew after now.
 */
enum policy_code policy_check_sign_rrset(const struct policy *pol,
                                         const struct policy_caller *caller,
                                         const char *zone, const char *owner,
                                         int64_t inception, int64_t expiration,
                                         int64_t now, struct policy_decision *d);

/**
 * As policy_check_sign_rrset, with the same code and rule, and the same
 * message on refusal; on POLICY_ALLOW the message is left empty: for a caller
 * that records only the rule of an allow (SIGN_RRSET's audit record), so that
 * the allow path formats nothing it would throw away.
 */
enum policy_code policy_check_sign_rrset_rule(const struct policy *pol,
                                              const struct policy_caller *caller,
                                              const char *zone, const char *owner,
                                              int64_t inception, int64_t expiration,
                                              int64_t now, struct policy_decision *d);

/**
 * Writes the owner name "<index>.<device_id>.<zone>" of a certificate.
 * @return YCONF_OK, or YCONF_EINVAL if @p len is too small.
 */
int policy_device_owner(const struct policy *pol, const char *device_id, int64_t index,
                        char *buf, size_t len);

#endif /* REGSIGN_POLICY_POLICY_H */
