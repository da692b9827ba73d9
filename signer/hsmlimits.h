/**
 * @file hsmlimits.h
 * @brief Hard limits per key role, enforced by the HSM process on every item it signs.
 *
 * Whatever the front process asks, a key signs only what its role may sign:
 *
 * | role              | kind        | limit                                              |
 * | ----------------- | ----------- | -------------------------------------------------- |
 * | issuing-ca        | TBS_CERT    | device TBSCertificate (x509_tbs_cert_check_device:  |
 * |                   |             | CA:false, own issuer, validity cap, EKU clientAuth, |
 * |                   |             | names under the registry zone), DER signature       |
 * | issuing-ca        | TBS_CRL     | TBSCertList of its issuer (x509_tbs_crl_check), DER |
 * | zsk               | RRSIG_DATA  | signer = registry zone, type covered != DNSKEY      |
 * | ksk               | RRSIG_DATA  | signer = registry zone, type covered == DNSKEY      |
 * | audit             | CHECKPOINT  | data starts with HSMLIMITS_CHECKPOINT_PREFIX        |
 * | <zone>/zsk        | RRSIG_DATA  | signer = <zone>, type covered != DNSKEY             |
 * | <zone>/ksk        | RRSIG_DATA  | signer = <zone>, type covered == DNSKEY             |
 * | root, root-ca     | —           | never                                               |
 * | anything else     | —           | never                                               |
 *
 * For RRSIG data (RFC 4034 §3.1.8.1: RRSIG RDATA without the signature, then the RRset
 * in canonical form) the whole input is parsed with a bounded parser: algorithm 13, key
 * tag equal to the tag of the role's own DNSKEY (flags 256 for a ZSK, 257 for a KSK,
 * computed from the key's public key), and every RR of the set has the same owner at or
 * under the signer's zone (the apex for DNSKEY), the type covered, class IN, the
 * original TTL, and a label count not below the RRSIG's labels field; nothing may follow
 * the last RR. DNSSEC signatures must be RAW, X.509 ones DER.
 *
 * An hsmlimits object is built once at start-up and then only read: checks may run on
 * many threads at once.
 */
#ifndef REGSIGN_SIGNER_HSMLIMITS_H
#define REGSIGN_SIGNER_HSMLIMITS_H

#include <stddef.h>
#include <stdint.h>

/** Domain-separation prefix of audit checkpoints (28 bytes, NUL included). */
#define HSMLIMITS_CHECKPOINT_PREFIX "regsign-audit-checkpoint-v1"
#define HSMLIMITS_CHECKPOINT_PREFIX_LEN (sizeof(HSMLIMITS_CHECKPOINT_PREFIX))

/** Role names of the registry's online keys. */
#define HSMLIMITS_ROLE_ISSUING_CA "issuing-ca"
#define HSMLIMITS_ROLE_KSK "ksk"
#define HSMLIMITS_ROLE_ZSK "zsk"
#define HSMLIMITS_ROLE_AUDIT "audit"

/** Errors. A refusal is not a failure of the module but is reported the same way. */
enum hsmlimits_err {
	HSMLIMITS_OK = 0,
	HSMLIMITS_ERR_NOMEM = -1,
	HSMLIMITS_ERR_ARG = -2,     /**< bad argument (zone name, key, role) */
	HSMLIMITS_ERR_KEY = -3,     /**< a public key that is not EC P-256 */
	HSMLIMITS_REFUSED = -4,     /**< the item breaks its role's hard limits */
};

typedef struct hsmlimits hsmlimits_t;

struct hsmlimits_config {
	/** The registry zone, absolute, e.g. "iotregistry.test." */
	const char *zone;
	/** DER Name of the issuing CA's subject (the issuer of every device certificate). */
	const uint8_t *issuer_name_der;
	size_t issuer_name_len;
	/** Hard cap of a device certificate's validity, in seconds (> 0). */
	int64_t max_validity;
};

/** @return a static English description of an enum hsmlimits_err value. */
const char *hsmlimits_strerror(int err);

/**
 * Makes a limits object; cfg's data are copied.
 * @return 0, HSMLIMITS_ERR_NOMEM, HSMLIMITS_ERR_ARG (zone not an absolute name,
 *         no issuer name, max_validity <= 0).
 */
int hsmlimits_new(const struct hsmlimits_config *cfg, hsmlimits_t **out);

/** Frees it; NULL is a no-op. */
void hsmlimits_free(hsmlimits_t *l);

/**
 * Registers an extra zone whose keys are "<zone>/ksk" and "<zone>/zsk".
 * @return 0, HSMLIMITS_ERR_ARG (not absolute, the registry zone itself, twice),
 *         HSMLIMITS_ERR_NOMEM.
 */
int hsmlimits_zone_add(hsmlimits_t *l, const char *zone);

/**
 * Tells the limits the public key of a role (DER SubjectPublicKeyInfo), from which the
 * DNSKEY key tag of ksk/zsk roles is computed. A DNSSEC role without a key refuses all.
 * @return 0, HSMLIMITS_ERR_ARG (unknown role, root role, role of an unregistered zone,
 *         set twice), HSMLIMITS_ERR_KEY (not EC P-256), HSMLIMITS_ERR_NOMEM.
 */
int hsmlimits_key_set(hsmlimits_t *l, const char *role, const uint8_t *spki, size_t len);

/**
 * The DNSKEY key tag computed for a role's key (for tests and STATUS).
 * @return 0, HSMLIMITS_ERR_ARG (no DNSSEC key for that role).
 */
int hsmlimits_key_tag(const hsmlimits_t *l, const char *role, uint16_t *tag);

/**
 * Decides whether @p role may sign @p data of @p kind in @p format.
 * @param reason receives a one-line English reason on refusal (may be NULL)
 * @return 0 when allowed, HSMLIMITS_REFUSED otherwise (also for an unknown role),
 *         HSMLIMITS_ERR_NOMEM.
 */
int hsmlimits_check(const hsmlimits_t *l, const char *role, int kind, int format,
                    const uint8_t *data, size_t len, char *reason, size_t reason_len);

#endif
