/*
 * csr.h - PKCS#10 certificate signing requests from devices (libregsign-x509).
 *
 * A CSR comes from outside (the device's eSIM, relayed by the operator and
 * the registry front end). Only its public key is ever used; its subject and
 * requested extensions are ignored. csr_parse() refuses anything that is not
 * exactly one DER CertificationRequest of bounded size, whose self-signature
 * verifies (proof of possession) and whose key is EC P-256 by named curve.
 *
 * Errors are the enum x509_err of x509.h (one enum per library); text from
 * x509_strerror().
 */
#ifndef REGSIGN_SIGNER_CSR_H
#define REGSIGN_SIGNER_CSR_H

#include <stddef.h>

#include <openssl/evp.h>

#include "signer/x509.h"

/** Hard upper bound on a CSR's DER size, checked before parsing. */
#define CSR_DER_MAX 4096

/**
 * Parse and verify the DER CSR @p der of @p len bytes.
 *
 * On success *@p key (if @p key is not NULL) is the CSR's public key, a new
 * EVP_PKEY for the caller (EVP_PKEY_free), and *@p spki / *@p spki_len (if
 * @p spki is not NULL) a malloc()ed copy of its SubjectPublicKeyInfo DER.
 * On failure nothing is returned and @p detail (may be NULL; X509_DETAIL_SIZE
 * is a good size) gets a one-line English explanation.
 *
 * Errors, in the order checked:
 * X509_ERR_INVALID (NULL or empty input), X509_ERR_CSR_TOO_LARGE (len >
 * CSR_DER_MAX), X509_ERR_CSR_PARSE (not a CertificationRequest),
 * X509_ERR_CSR_TRAILING (bytes after it), X509_ERR_CSR_NOT_DER (BER encoding:
 * it does not re-encode to the same bytes), X509_ERR_CSR_PARSE (version not
 * v1), X509_ERR_CSR_KEY_RSA,
 * X509_ERR_CSR_KEY_EDDSA, X509_ERR_CSR_KEY_EXPLICIT (EC with explicit
 * parameters, even of P-256), X509_ERR_CSR_KEY_CURVE (another named curve),
 * X509_ERR_CSR_KEY_TYPE (anything else), X509_ERR_CSR_PARSE (the point is
 * not a P-256 point encoding or not on the curve), X509_ERR_CSR_SIGNATURE (not
 * ECDSA with SHA-256/384/512, or the self-signature does not verify),
 * X509_ERR_NOMEM, X509_ERR_CRYPTO.
 */
int csr_parse(const unsigned char *der, size_t len, EVP_PKEY **key,
	      unsigned char **spki, size_t *spki_len,
	      char *detail, size_t detail_size);

/**
 * csr_parse, with the request's key made from the curve parameters of
 * @p like (borrowed, read only: several threads may share it), an EC P-256
 * key such as the issuing CA's public key. OpenSSL 3.0 builds a curve afresh
 * for a key made from the curve's name, which costs about a fifth of the
 * signature check; copying it is five times cheaper. @p like NULL or not a
 * P-256 key: exactly csr_parse. Same results and errors as csr_parse.
 */
int csr_parse_like(const unsigned char *der, size_t len, const EVP_PKEY *like,
		   EVP_PKEY **key, unsigned char **spki, size_t *spki_len,
		   char *detail, size_t detail_size);

#endif /* REGSIGN_SIGNER_CSR_H */
