/*
 * x509_int.h - helpers shared by the .c files of libregsign-x509. Not a
 * public API: only signer/x509*.c and signer/csr.c include it.
 */
#ifndef REGSIGN_SIGNER_X509_INT_H
#define REGSIGN_SIGNER_X509_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "signer/x509.h"

/** Write a formatted one-line explanation into @p buf if it is not NULL. */
void x509__detail(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * Move an OpenSSL-allocated encoding (from an i2d call that returned @p len)
 * into a malloc()ed copy, so that callers free everything with free().
 * @p ossl is always released. Errors: X509_ERR_CRYPTO (len <= 0), NOMEM.
 */
int x509__der_take(unsigned char *ossl, int len, unsigned char **out,
		   size_t *outlen);

/** Is @p key an EC key on P-256 given by its named curve? 0 or X509_ERR_KEY. */
int x509__key_check_p256(const EVP_PKEY *key);

/** A new ASN1_TIME for @p t (UTCTime to 2049, GeneralizedTime after). */
ASN1_TIME *x509__time_new(int64_t t);

/** Seconds since the epoch of @p t into *@p out. 0 or X509_ERR_CRYPTO. */
int x509__time_get(const ASN1_TIME *t, int64_t *out);

/** A new ASN1_INTEGER from the big-endian positive bytes @p b. */
ASN1_INTEGER *x509__integer_new(const unsigned char *b, size_t len);

/** Set @p alg to ecdsa-with-SHA256 with absent parameters (RFC 5758). */
int x509__algid_set(X509_ALGOR *alg);

/** Is @p alg exactly ecdsa-with-SHA256 with absent parameters? */
int x509__algid_is_ecdsa_sha256(const X509_ALGOR *alg);

/**
 * DER of SEQUENCE { tbs, ecdsa-with-SHA256 AlgorithmIdentifier, BIT STRING
 * sig } into an OpenSSL-allocated buffer (*@p out, OPENSSL_free): the outer
 * form shared by Certificate and CertificateList. @p tbs must be one DER
 * SEQUENCE. Errors: X509_ERR_NOMEM, X509_ERR_CRYPTO.
 */
int x509__signed_wrap(const unsigned char *tbs, size_t tbslen,
		      const unsigned char *sig, size_t siglen,
		      unsigned char **out, size_t *outlen);

/**
 * Does @p tbs (@p tbslen bytes) consist of exactly one DER SEQUENCE header
 * and its content? Used before wrapping so that trailing bytes after the
 * TBS are never silently carried along.
 */
int x509__is_one_sequence(const unsigned char *tbs, size_t tbslen);

/**
 * Is @p name a host name (LDH labels of 1..63 characters, total <= 253,
 * no final dot, no empty label)? Case is not checked.
 */
int x509__hostname_valid(const char *name, size_t len);

/**
 * Is host name @p name (length @p len) strictly below @p zone (no final dot)?
 * Comparison ignores ASCII case, as DNS does.
 */
int x509__name_below_zone(const char *name, size_t len, const char *zone);

/**
 * Copy @p zone without its final dot, lowercased, into @p buf (@p size
 * bytes) and check that it is a host name. 0 or X509_ERR_NAME.
 */
int x509__zone_normalize(const char *zone, char *buf, size_t size);

/**
 * The SKI of @p issuer (owned by it) into *@p keyid, after checking that
 * its key is EC P-256 by named curve. X509_ERR_INVALID for NULL,
 * X509_ERR_ISSUER when the key or the SKI is unsuitable.
 */
int x509__issuer_keyid(const X509 *issuer, const ASN1_OCTET_STRING **keyid);

/**
 * Is the SubjectPublicKeyInfo with algorithm @p alg (and, if @p key is not
 * NULL, the subjectPublicKey bits @p key) EC with the named curve P-256? Read
 * from the AlgorithmIdentifier, because OpenSSL decodes explicit parameters
 * describing P-256 into a key indistinguishable from a named-curve one. The
 * bits, when given, must be one uncompressed (65 bytes) or compressed (33)
 * point encoding; whether the point is on the curve is not checked here.
 * Returns 0 or the distinct X509_ERR_CSR_KEY_* (or CSR_PARSE) refusal, with
 * an explanation in @p detail.
 */
int x509__spki_check_p256(const X509_ALGOR *alg, const ASN1_BIT_STRING *key,
			  char *detail, size_t size);

/* SubjectPublicKeyInfo with the key left undecoded (see x509_asn1.c). */
typedef struct x509__spki_st {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *key;
} X509__SPKI;

/* TBSCertificate (RFC 5280 §4.1) with an undecoded public key. */
typedef struct x509__tbs_st {
	ASN1_INTEGER *version;          /* NULL means v1 */
	ASN1_INTEGER *serial;
	X509_ALGOR *sigalg;
	X509_NAME *issuer;
	X509_VAL *validity;
	X509_NAME *subject;
	X509__SPKI *spki;
	ASN1_BIT_STRING *issuer_uid;
	ASN1_BIT_STRING *subject_uid;
	STACK_OF(X509_EXTENSION) *extensions;
} X509__TBS;

/* Certificate (RFC 5280 §4.1) over X509__TBS. */
typedef struct x509__cert_st {
	X509__TBS *tbs;
	X509_ALGOR *alg;
	ASN1_BIT_STRING *sig;
} X509__CERT;

/* CertificationRequestInfo and CertificationRequest with an undecoded key. */
typedef struct x509__csr_info_st {
	ASN1_INTEGER *version;
	X509_NAME *subject;
	X509__SPKI *spki;
	STACK_OF(X509_ATTRIBUTE) *attributes;
} X509__CSR_INFO;

typedef struct x509__csr_st {
	X509__CSR_INFO *info;
	X509_ALGOR *alg;
	ASN1_BIT_STRING *sig;
} X509__CSR;

/** ASN.1 items of X509__CSR, X509__CSR_INFO and X509__SPKI (for ASN1_item_*). */
const ASN1_ITEM *x509__csr_item(void);
const ASN1_ITEM *x509__csr_info_item(void);
const ASN1_ITEM *x509__spki_item(void);

/** Decode exactly @p len bytes of canonical DER, or NULL. */
X509__TBS *x509__tbs_decode(const unsigned char *der, size_t len);
void x509__tbs_free(X509__TBS *tbs);
/** Decode exactly @p len bytes of canonical DER, or NULL. */
X509__CERT *x509__cert_decode(const unsigned char *der, size_t len);
void x509__cert_free(X509__CERT *cert);

/**
 * x509_cert_tbs_build through OpenSSL's X509 object for every profile. The
 * public call writes device TBSs directly as DER (cheaper); the unit tests
 * hold the two to the same bytes.
 */
int x509__cert_tbs_build_ossl(const struct x509_cert_spec *spec, unsigned char **tbs,
			      size_t *tbslen);

#endif /* REGSIGN_SIGNER_X509_INT_H */
