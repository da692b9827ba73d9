/*
 * x509.h - the small X.509 library of regsign (libregsign-x509).
 *
 * The CA keys live in an HSM that another process reaches through PKCS#11, so
 * OpenSSL never holds them as an EVP_PKEY. This library therefore splits
 * certificate and CRL signing in three steps:
 *
 *   1. build the DER TBSCertificate / TBSCertList from a spec (OpenSSL does the
 *      encoding; nothing is ever copied from a CSR except its public key);
 *   2. someone else signs SHA-256(TBS) with ECDSA P-256 and returns a DER
 *      ECDSA-Sig-Value;
 *   3. assemble Certificate / CertificateList = SEQUENCE { tbs, algid, BIT
 *      STRING sig }, parse it back, and check that its TBS re-encodes byte for
 *      byte to what was signed and that the signature verifies.
 *
 * The HSM process also inspects the TBS it is asked to sign
 * (x509_tbs_cert_check_device, x509_tbs_crl_check) so that the issuing-CA key
 * never signs what that role must never sign, whatever the front asks.
 *
 * Only ecdsa-with-SHA256 over P-256 (named curve) is supported for CA keys.
 *
 * Cost (CPU on the 2-core development machine, OpenSSL 3.0): building a
 * device TBS about 90 us, the HSM-side check about 45 us,
 * x509_cert_assemble_der about 180 us (mostly the signature check), csr_parse
 * about 200 us. x509_cert_assemble, which also hands back an X509 parsed by
 * d2i_X509, about 600 us: OpenSSL 3.0 decodes every certificate's public key
 * through its slow provider decoders, which the other paths avoid.
 * In instructions (callgrind; one P-256 signature check is about 835,000):
 * device TBS 88,000 (written as DER; 328,000 through OpenSSL's X509),
 * csr_parse_like 963,000 (csr_parse 1,119,000), x509_cert_assemble_built
 * 886,000 (x509_cert_assemble_der 1,072,000).
 *
 * Conventions: every function returns 0 (X509_OK) or a negative enum x509_err.
 * Byte buffers returned through `unsigned char **` are allocated with malloc()
 * and released by the caller with free(). OpenSSL objects returned through
 * `X509 **` etc. belong to the caller (X509_free, X509_CRL_free, EVP_PKEY_free).
 * Output pointers are written only on success. Times are seconds since the
 * Unix epoch, UTC. The library never prints, never exits and keeps no global
 * state; OpenSSL's error queue may hold details of X509_ERR_CRYPTO failures.
 */
#ifndef REGSIGN_SIGNER_X509_H
#define REGSIGN_SIGNER_X509_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/** Errors of libregsign-x509 (x509 and csr modules). 0 is success. */
enum x509_err {
	X509_OK = 0,
	X509_ERR_INVALID = -1,        /**< bad argument or inconsistent spec */
	X509_ERR_NOMEM = -2,          /**< out of memory */
	X509_ERR_CRYPTO = -3,         /**< OpenSSL failed where it should not */
	X509_ERR_RANDOM = -4,         /**< the CSPRNG failed */
	X509_ERR_NAME = -5,           /**< malformed name text, zone or device id */
	X509_ERR_KEY = -6,            /**< key is not an EC P-256 named-curve key */
	X509_ERR_ISSUER = -7,         /**< issuer certificate unusable (no SKI) */
	X509_ERR_SIGN = -8,           /**< the signing callback failed */
	X509_ERR_SIG_FORMAT = -9,     /**< not a DER ECDSA-Sig-Value for P-256 */
	X509_ERR_SIG_VERIFY = -10,    /**< signature does not verify with issuer key */
	X509_ERR_ASSEMBLY = -11,      /**< assembled object does not parse back to the TBS */

	X509_ERR_CSR_TOO_LARGE = -20, /**< CSR larger than CSR_DER_MAX */
	X509_ERR_CSR_PARSE = -21,     /**< not a PKCS#10 CertificationRequest */
	X509_ERR_CSR_TRAILING = -22,  /**< bytes after the CSR */
	X509_ERR_CSR_NOT_DER = -23,   /**< CSR is BER, not DER */
	X509_ERR_CSR_SIGNATURE = -24, /**< CSR self-signature invalid (no proof of possession) */
	X509_ERR_CSR_KEY_RSA = -25,   /**< RSA key refused */
	X509_ERR_CSR_KEY_EDDSA = -26, /**< Ed25519/Ed448 key refused */
	X509_ERR_CSR_KEY_CURVE = -27, /**< EC key on a curve other than P-256 refused */
	X509_ERR_CSR_KEY_EXPLICIT = -28, /**< EC key with explicit curve parameters refused */
	X509_ERR_CSR_KEY_TYPE = -29,  /**< any other key type refused */

	X509_ERR_TBS_PARSE = -40,     /**< not a canonical DER TBSCertificate/TBSCertList */
	X509_ERR_TBS_SIGALG = -41,    /**< signature algorithm is not ecdsa-with-SHA256 */
	X509_ERR_TBS_VERSION = -42,   /**< not v3 (certificate) / v2 (CRL) */
	X509_ERR_TBS_ISSUER = -43,    /**< issuer name differs from the CA's subject */
	X509_ERR_TBS_VALIDITY = -44,  /**< validity empty, reversed or above the cap */
	X509_ERR_TBS_CA = -45,        /**< basicConstraints missing or CA:true */
	X509_ERR_TBS_KEY_USAGE = -46, /**< keyUsage missing or allows certificate/CRL signing */
	X509_ERR_TBS_EKU = -47,       /**< extendedKeyUsage is not exactly clientAuth */
	X509_ERR_TBS_NAME = -48,      /**< a name is outside the zone or malformed */
	X509_ERR_TBS_NAME_CONSTRAINTS = -49, /**< nameConstraints present */
	X509_ERR_TBS_EXTENSION = -50, /**< unexpected, duplicate or malformed extension */
	X509_ERR_TBS_SERIAL = -51,    /**< serial not positive or longer than 20 bytes */
	X509_ERR_TBS_KEY = -52,       /**< subject key is not EC P-256 by named curve */
};

/** Static English text for an x509_err value; never NULL. */
const char *x509_strerror(int err);

/** Length of the serial numbers this library issues. */
#define X509_SERIAL_LEN 16
/** Largest DER ECDSA-Sig-Value for P-256 (SEQUENCE of two 33-byte INTEGERs). */
#define X509_ECDSA_SIG_MAX 72
/** Length of a SHA-256 digest. */
#define X509_DIGEST_LEN 32
/** Size of a hex SHA-256 string including its terminating NUL. */
#define X509_HEX_SIZE 65
/** Size of a buffer that holds any owner name, including the NUL. */
#define X509_OWNER_NAME_SIZE 254
/** Longest subject CN (RFC 5280 ub-common-name). */
#define X509_CN_MAX 64
/** A sensible size for the optional `detail` buffers below. */
#define X509_DETAIL_SIZE 160

/**
 * Signing callback: sign the SHA-256 @p digest with the CA key.
 * @p sig has room for *@p siglen bytes (at least X509_ECDSA_SIG_MAX); on
 * success write the DER ECDSA-Sig-Value there, set *@p siglen to its length
 * and return 0. Any other return value aborts with X509_ERR_SIGN.
 */
typedef int (*x509_sign_fn)(void *ctx, const unsigned char digest[X509_DIGEST_LEN],
			    unsigned char *sig, size_t *siglen);

/**
 * An x509_sign_fn over an in-memory key: @p ctx is an `EVP_PKEY *` (EC P-256
 * private key). For tests and for anything that is not an HSM.
 */
int x509_sign_with_pkey(void *ctx, const unsigned char digest[X509_DIGEST_LEN],
			unsigned char *sig, size_t *siglen);

/* ---------------------------------------------------------------- helpers */

/**
 * Fill @p serial with CSPRNG bytes and normalize it (x509_serial_normalize).
 * Errors: X509_ERR_RANDOM.
 */
int x509_serial_random(unsigned char serial[X509_SERIAL_LEN]);

/**
 * Make @p serial (random bytes from anywhere) a valid 16-byte positive DER
 * INTEGER: the first byte becomes 0x40..0x7f (top bit clear so the INTEGER is
 * positive, next bit set so it is never shortened). 126 random bits remain.
 */
void x509_serial_normalize(unsigned char serial[X509_SERIAL_LEN]);

/**
 * Parse a distinguished name written OpenSSL-style, in encoding order:
 * "/C=CA/O=Example Registry/CN=IoT Registry Root CA". A backslash escapes the
 * next character ("\/" is a slash). Values are UTF-8. *@p out is a new
 * X509_NAME for the caller. Errors: X509_ERR_NAME, X509_ERR_NOMEM.
 */
int x509_name_parse(const char *text, X509_NAME **out);

/** DER of @p name into a malloc()ed buffer. Errors: X509_ERR_CRYPTO, X509_ERR_NOMEM. */
int x509_name_der(const X509_NAME *name, unsigned char **der, size_t *len);

/**
 * Write the owner name "<index>.<device_id>.<zone without final dot>" into
 * @p buf (@p size bytes, X509_OWNER_NAME_SIZE is always enough). @p index >= 1;
 * @p device_id is lowercase hex, 1..63 digits; @p zone is a host name of LDH
 * labels, with or without the final dot, written lowercase into the result.
 * Errors: X509_ERR_NAME (bad id, index or zone, or the name exceeds 253
 * characters), X509_ERR_INVALID (buffer too small).
 */
int x509_owner_name(uint64_t index, const char *device_id, const char *zone,
		    char *buf, size_t size);

/** SHA-256 of @p len bytes. Errors: X509_ERR_CRYPTO. */
int x509_sha256(const void *data, size_t len, unsigned char out[X509_DIGEST_LEN]);

/** Lowercase hex SHA-256 of @p len bytes, NUL-terminated. Errors: X509_ERR_CRYPTO. */
int x509_sha256_hex(const void *data, size_t len, char out[X509_HEX_SIZE]);

/** Hex SHA-256 of the certificate's DER (its fingerprint). */
int x509_cert_fingerprint(const X509 *cert, char out[X509_HEX_SIZE]);

/** Hex SHA-256 of the certificate's SubjectPublicKeyInfo DER (TLSA 3 1 1 data). */
int x509_cert_spki_fingerprint(const X509 *cert, char out[X509_HEX_SIZE]);

/** Hex SHA-256 of @p key's SubjectPublicKeyInfo DER. */
int x509_pkey_spki_fingerprint(const EVP_PKEY *key, char out[X509_HEX_SIZE]);

/** DER of @p cert into a malloc()ed buffer. Errors: X509_ERR_CRYPTO, X509_ERR_NOMEM. */
int x509_cert_der(const X509 *cert, unsigned char **der, size_t *len);

/** DER of @p crl into a malloc()ed buffer. Errors: X509_ERR_CRYPTO, X509_ERR_NOMEM. */
int x509_crl_der(const X509_CRL *crl, unsigned char **der, size_t *len);

/**
 * Convert a raw PKCS#11 CKM_ECDSA P-256 signature (r || s, 64 bytes) into a
 * DER ECDSA-Sig-Value in @p der (room for *@p derlen bytes, at least
 * X509_ECDSA_SIG_MAX); *@p derlen gets the length.
 * Errors: X509_ERR_INVALID (wrong length, small buffer), X509_ERR_SIG_FORMAT
 * (r or s zero), X509_ERR_NOMEM, X509_ERR_CRYPTO.
 */
int x509_ecdsa_sig_from_raw(const unsigned char *rs, size_t rslen,
			    unsigned char *der, size_t *derlen);

/**
 * Check that @p der is exactly one DER ECDSA-Sig-Value with 0 < r, s < 2^256.
 * Errors: X509_ERR_SIG_FORMAT.
 */
int x509_ecdsa_sig_check(const unsigned char *der, size_t len);

/* ----------------------------------------------------------- certificates */

/** The three kinds of certificate this library issues. */
enum x509_profile {
	/** Self-signed root CA: CA:true; keyCertSign, cRLSign; SKI; AKI = SKI. */
	X509_PROFILE_ROOT = 1,
	/** Issuing CA under the root: CA:true pathlen:0; keyCertSign, cRLSign;
	 *  nameConstraints (critical) permitting only dNSName under the zone and
	 *  excluding every IPv4/IPv6 address; SKI; AKI = root's SKI. */
	X509_PROFILE_ISSUING = 2,
	/** Device: subject CN = owner name if it fits 64 characters, else an
	 *  empty subject and a critical SAN; SAN dNSName = owner name; CA:false;
	 *  digitalSignature; EKU clientAuth; SKI; AKI = issuer's SKI; optional
	 *  CRL distribution point. All criticality as RFC 5280 asks. */
	X509_PROFILE_DEVICE = 3,
};

/**
 * What to certify. Nothing here is taken over or modified by the library.
 * Fields not used by a profile must be zero/NULL.
 */
struct x509_cert_spec {
	enum x509_profile profile;
	/** Serial, e.g. from x509_serial_random; must be a positive 16-byte INTEGER. */
	unsigned char serial[X509_SERIAL_LEN];
	int64_t not_before;            /**< validity start (inclusive) */
	int64_t not_after;             /**< validity end, > not_before */
	/** Public key to certify: EC P-256, named curve (e.g. from csr_parse). */
	const EVP_PKEY *subject_key;
	/** Issuer certificate (ISSUING: the root; DEVICE: the issuing CA). Its
	 *  subject becomes the issuer name and its SKI the AKI. NULL for ROOT. */
	const X509 *issuer;
	/** ROOT and ISSUING: the subject name. Must be NULL for DEVICE. */
	const X509_NAME *subject;
	/** ISSUING: the permitted DNS subtree. DEVICE: the zone of the owner
	 *  name. With or without the final dot. */
	const char *zone;
	uint64_t index;                /**< DEVICE: certificate index, >= 1 */
	const char *device_id;         /**< DEVICE: lowercase hex device id */
	const char *crl_uri;           /**< DEVICE: CRL distribution point URI, or NULL */
	/**
	 * DEVICE, optional: the DER SubjectPublicKeyInfo of subject_key as the
	 * request carried it (csr_parse_like's @p spki; borrowed). When set, the
	 * TBS takes the point from it rather than exporting it from the key,
	 * which costs OpenSSL 3.0 more than building the rest of the TBS. It must
	 * be the SPKI subject_key was made from: id-ecPublicKey with the named
	 * curve P-256 and a 65- or 33-byte point, else X509_ERR_KEY.
	 */
	const unsigned char *subject_spki;
	size_t subject_spki_len;
};

/**
 * Build the DER TBSCertificate for @p spec (signature algorithm
 * ecdsa-with-SHA256). *@p tbs is malloc()ed for the caller.
 * Errors: X509_ERR_INVALID (spec inconsistent, e.g. not_after <= not_before,
 * missing issuer), X509_ERR_NAME, X509_ERR_KEY, X509_ERR_ISSUER,
 * X509_ERR_NOMEM, X509_ERR_CRYPTO.
 */
int x509_cert_tbs_build(const struct x509_cert_spec *spec, unsigned char **tbs,
			size_t *tbslen);

/**
 * Assemble a Certificate from the signed @p tbs and the DER ECDSA-Sig-Value
 * @p sig, then parse it back and check: the TBS re-encodes byte-identical to
 * @p tbs, the outer algorithm equals the TBS's, and the signature verifies
 * with @p issuer_key (the subject key for a self-signed root).
 * *@p cert is a new X509 for the caller; x509_cert_der gives its DER.
 * Errors: X509_ERR_INVALID, X509_ERR_SIG_FORMAT, X509_ERR_ASSEMBLY,
 * X509_ERR_SIG_VERIFY, X509_ERR_NOMEM, X509_ERR_CRYPTO.
 */
int x509_cert_assemble(const unsigned char *tbs, size_t tbslen,
		       const unsigned char *sig, size_t siglen,
		       const EVP_PKEY *issuer_key, X509 **cert);

/**
 * The same assembly and checks as x509_cert_assemble, returning only the
 * certificate's DER (*@p der, malloc()ed for the caller). The parse-back is
 * done with the library's own Certificate template instead of d2i_X509:
 * OpenSSL 3.0 decodes the public key of every certificate it parses, which
 * costs about twice the signature check, and a daemon issuing at the HSM's
 * rate only needs the bytes. Checks: canonical DER that re-encodes byte for
 * byte, TBS exactly @p tbs, both algorithms ecdsa-with-SHA256, signature
 * valid under @p issuer_key. Errors: as x509_cert_assemble.
 */
int x509_cert_assemble_der(const unsigned char *tbs, size_t tbslen,
			   const unsigned char *sig, size_t siglen,
			   const EVP_PKEY *issuer_key, unsigned char **der,
			   size_t *derlen);

/**
 * The certificate's DER for a TBS that x509_cert_tbs_build made (canonical
 * DER by construction; in the daemon the HSM process has also checked it
 * before signing): x509_cert_assemble_der without decoding and re-encoding
 * the certificate, which costs about a fifth of the signature check. What
 * it checks: @p tbs is one DER SEQUENCE whose signature AlgorithmIdentifier
 * is ecdsa-with-SHA256 (the one written outside), and @p sig is a DER ECDSA
 * signature that verifies under @p issuer_key over exactly @p tbs — so a bad
 * HSM signature is still caught. What it leaves out: that @p tbs is a
 * canonical TBSCertificate (a BER TBS, say, would be wrapped as given).
 * The bytes are those x509_cert_assemble_der returns for the same input.
 * Errors: X509_ERR_INVALID, X509_ERR_SIG_FORMAT, X509_ERR_ASSEMBLY (inner
 * algorithm not ecdsa-with-SHA256), X509_ERR_SIG_VERIFY, X509_ERR_NOMEM.
 */
int x509_cert_assemble_built(const unsigned char *tbs, size_t tbslen,
			     const unsigned char *sig, size_t siglen,
			     const EVP_PKEY *issuer_key, unsigned char **der,
			     size_t *derlen);

/**
 * A checker of ECDSA-with-SHA256 signatures by one P-256 public key, for a
 * key that checks many signatures (the issuing CA's, after every signature
 * the HSM makes): the OpenSSL context and the digest are set up once, and
 * each check works on a duplicate of that context, ~25,000 instructions
 * (~3%) cheaper than x509_cert_assemble_built's set-up per call. The check
 * is the same EVP_PKEY_verify on the same key. Any number of threads may
 * call x509_verifier_check on one verifier at once; it never changes.
 */
typedef struct x509_verifier x509_verifier_t;

/**
 * A verifier for @p key (which it keeps a reference of; the caller keeps
 * its own). Errors: X509_ERR_INVALID (NULL), X509_ERR_KEY (not an EC key on
 * the named curve P-256), X509_ERR_NOMEM, X509_ERR_CRYPTO.
 */
int x509_verifier_new(const EVP_PKEY *key, x509_verifier_t **out);

/** Frees @p v; NULL is a no-op. */
void x509_verifier_free(x509_verifier_t *v);

/** The key @p v checks with (borrowed from @p v), or NULL for NULL. */
const EVP_PKEY *x509_verifier_key(const x509_verifier_t *v);

/**
 * X509_OK if @p sig (a DER ECDSA-Sig-Value) is the key's signature over
 * SHA-256(@p data). Errors: X509_ERR_SIG_VERIFY (wrong or undecodable
 * signature, other data, other key), X509_ERR_INVALID, X509_ERR_CRYPTO.
 */
int x509_verifier_check(const x509_verifier_t *v, const unsigned char *data, size_t len,
			const unsigned char *sig, size_t siglen);

/**
 * x509_cert_assemble_built with the signature checked by @p v (the issuer's
 * verifier) instead of a key: the same checks, the same bytes, the same
 * errors.
 */
int x509_cert_assemble_verified(const unsigned char *tbs, size_t tbslen,
				const unsigned char *sig, size_t siglen,
				const x509_verifier_t *v, unsigned char **der,
				size_t *derlen);

/**
 * Build the TBS of @p spec, sign SHA-256(TBS) through @p sign(@p ctx, ...)
 * and assemble (x509_cert_tbs_build + x509_cert_assemble). The issuer key
 * used for the check is spec->subject_key for ROOT, else the issuer's key.
 * Errors: those of both, and X509_ERR_SIGN.
 */
int x509_cert_create(const struct x509_cert_spec *spec, x509_sign_fn sign,
		     void *ctx, X509 **cert);

/* ------------------------------------------------------------------ CRLs */

/** One revoked certificate. */
struct x509_crl_entry {
	const unsigned char *serial;   /**< big-endian positive serial */
	size_t serial_len;             /**< 1..20 */
	int64_t revoked_at;            /**< revocationDate */
	/** CRLReason (RFC 5280 §5.3.1, OpenSSL's CRL_REASON_*), or -1 (or 0,
	 *  unspecified) for no reasonCode extension. */
	int reason;
};

/** What a CRL says. Nothing here is taken over by the library. */
struct x509_crl_spec {
	/** The CA certificate: its subject is the issuer, its SKI the AKI. */
	const X509 *issuer;
	int64_t this_update;
	int64_t next_update;           /**< > this_update */
	/** cRLNumber; the caller keeps it growing from one CRL to the next. */
	uint64_t number;
	const struct x509_crl_entry *entries;
	size_t n_entries;
};

/**
 * Build the DER TBSCertList (v2, ecdsa-with-SHA256, entries sorted by serial,
 * extensions AKI and cRLNumber). *@p tbs is malloc()ed for the caller.
 * Errors: X509_ERR_INVALID, X509_ERR_ISSUER, X509_ERR_NOMEM, X509_ERR_CRYPTO.
 */
int x509_crl_tbs_build(const struct x509_crl_spec *spec, unsigned char **tbs,
		       size_t *tbslen);

/** Like x509_cert_assemble, for a CertificateList. *@p crl is for the caller. */
int x509_crl_assemble(const unsigned char *tbs, size_t tbslen,
		      const unsigned char *sig, size_t siglen,
		      const EVP_PKEY *issuer_key, X509_CRL **crl);

/** x509_crl_tbs_build + sign + x509_crl_assemble with the issuer's key. */
int x509_crl_create(const struct x509_crl_spec *spec, x509_sign_fn sign,
		    void *ctx, X509_CRL **crl);

/* ---------------------------------------------- TBS checks (HSM process) */

/**
 * Decide whether the issuing-CA key may sign @p tbs. Refuses unless @p tbs is
 * exactly one canonical DER TBSCertificate (v3, ecdsa-with-SHA256, positive
 * serial) whose issuer is byte-identical to @p issuer_name_der; whose validity
 * is non-empty and at most @p max_validity_seconds; whose subject key is EC
 * P-256 by named curve (the only device key type); with basicConstraints
 * CA:false; keyUsage present without keyCertSign or cRLSign; EKU exactly
 * clientAuth; a SAN of dNSNames only (at least one); every dNSName and the
 * subject (empty, or a single CN) strictly under @p zone; SAN critical when
 * the subject is empty; no nameConstraints; and no extension other than
 * basicConstraints, keyUsage, extKeyUsage, subjectAltName, SKI, AKI and
 * cRLDistributionPoints, none twice.
 * @p zone may carry a final dot; @p detail (may be NULL) gets a one-line
 * English explanation of a refusal. The caller (who has a clock) checks that
 * notBefore is near the present if it cares; this function has no "now".
 * Errors: X509_ERR_INVALID (NULL input, bad zone, cap <= 0) and the
 * X509_ERR_TBS_* codes.
 */
int x509_tbs_cert_check_device(const unsigned char *tbs, size_t len,
			       const unsigned char *issuer_name_der,
			       size_t issuer_name_len, const char *zone,
			       int64_t max_validity_seconds,
			       char *detail, size_t detail_size);

/**
 * Decide whether a CA key may sign the TBSCertList @p tbs: one canonical DER
 * TBSCertList, v2, ecdsa-with-SHA256, issuer byte-identical to
 * @p issuer_name_der, nextUpdate present and after thisUpdate, a cRLNumber,
 * no extensions but AKI and cRLNumber, entry extensions only reasonCode.
 * Errors: X509_ERR_INVALID and the X509_ERR_TBS_* codes.
 */
int x509_tbs_crl_check(const unsigned char *tbs, size_t len,
		       const unsigned char *issuer_name_der,
		       size_t issuer_name_len, char *detail, size_t detail_size);

#endif /* REGSIGN_SIGNER_X509_H */
