/*
 * x509_asn1.c - our own ASN.1 templates for TBSCertificate, Certificate and
 * CertificationRequest.
 *
 * Why not d2i_X509: OpenSSL 3.0 decodes the SubjectPublicKeyInfo of every
 * certificate it parses through its provider decoder framework, which costs
 * several ECDSA signatures' worth of CPU per call (measured on this machine:
 * d2i_X509_PUBKEY about 260 us of CPU, an ECDSA P-256 signature about 35 us).
 * The HSM process inspects every TBS it signs and the front checks every
 * certificate it assembles, so both would be bound by public-key decoding.
 * These templates mirror RFC 5280's structures field by field with OpenSSL's
 * own types (X509_NAME, X509_VAL, X509_ALGOR, X509_EXTENSION) and only keep
 * the public key opaque: AlgorithmIdentifier and BIT STRING. The CSR
 * templates serve csr.c for the same reason.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/x509.h>

#include "signer/x509.h"
#include "signer/x509_int.h"

ASN1_SEQUENCE(X509__SPKI) = {
	ASN1_SIMPLE(X509__SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(X509__SPKI, key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(X509__SPKI)

/* RFC 5280 §4.1: the same layout as OpenSSL's internal X509_CINF. */
ASN1_SEQUENCE(X509__TBS) = {
	ASN1_EXP_OPT(X509__TBS, version, ASN1_INTEGER, 0),
	ASN1_SIMPLE(X509__TBS, serial, ASN1_INTEGER),
	ASN1_SIMPLE(X509__TBS, sigalg, X509_ALGOR),
	ASN1_SIMPLE(X509__TBS, issuer, X509_NAME),
	ASN1_SIMPLE(X509__TBS, validity, X509_VAL),
	ASN1_SIMPLE(X509__TBS, subject, X509_NAME),
	ASN1_SIMPLE(X509__TBS, spki, X509__SPKI),
	ASN1_IMP_OPT(X509__TBS, issuer_uid, ASN1_BIT_STRING, 1),
	ASN1_IMP_OPT(X509__TBS, subject_uid, ASN1_BIT_STRING, 2),
	ASN1_EXP_SEQUENCE_OF_OPT(X509__TBS, extensions, X509_EXTENSION, 3),
} static_ASN1_SEQUENCE_END(X509__TBS)

/* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } */
ASN1_SEQUENCE(X509__CERT) = {
	ASN1_SIMPLE(X509__CERT, tbs, X509__TBS),
	ASN1_SIMPLE(X509__CERT, alg, X509_ALGOR),
	ASN1_SIMPLE(X509__CERT, sig, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(X509__CERT)

/* CertificationRequestInfo (RFC 2986 §4.1), as OpenSSL's X509_REQ_INFO:
 * attributes are required by the RFC but omitted by some encoders. */
ASN1_SEQUENCE(X509__CSR_INFO) = {
	ASN1_SIMPLE(X509__CSR_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(X509__CSR_INFO, subject, X509_NAME),
	ASN1_SIMPLE(X509__CSR_INFO, spki, X509__SPKI),
	ASN1_IMP_SET_OF_OPT(X509__CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END(X509__CSR_INFO)

/* CertificationRequest (RFC 2986 §4.2). */
ASN1_SEQUENCE(X509__CSR) = {
	ASN1_SIMPLE(X509__CSR, info, X509__CSR_INFO),
	ASN1_SIMPLE(X509__CSR, alg, X509_ALGOR),
	ASN1_SIMPLE(X509__CSR, sig, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(X509__CSR)

const ASN1_ITEM *
x509__csr_item(void)
{
	return ASN1_ITEM_rptr(X509__CSR);
}

const ASN1_ITEM *
x509__csr_info_item(void)
{
	return ASN1_ITEM_rptr(X509__CSR_INFO);
}

const ASN1_ITEM *
x509__spki_item(void)
{
	return ASN1_ITEM_rptr(X509__SPKI);
}

/*
 * Decode exactly @p len bytes with @p it and require that they re-encode to
 * the same bytes, so that only canonical DER is ever accepted.
 */
static void *
decode_exact(const ASN1_ITEM *it, const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	unsigned char *re = NULL;
	ASN1_VALUE *v = NULL;
	int n;

	if (der == NULL || len == 0 || len > 0x7fffffff)
		return NULL;
	if ((v = ASN1_item_d2i(NULL, &p, (long)len, it)) == NULL || p != der + len)
		goto bad;
	if ((n = ASN1_item_i2d(v, &re, it)) <= 0 || (size_t)n != len ||
	    memcmp(re, der, len) != 0)
		goto bad;
	OPENSSL_free(re);
	return v;
bad:
	OPENSSL_free(re);
	ASN1_item_free(v, it);
	return NULL;
}

X509__TBS *
x509__tbs_decode(const unsigned char *der, size_t len)
{
	return decode_exact(ASN1_ITEM_rptr(X509__TBS), der, len);
}

void
x509__tbs_free(X509__TBS *tbs)
{
	ASN1_item_free((ASN1_VALUE *)tbs, ASN1_ITEM_rptr(X509__TBS));
}

X509__CERT *
x509__cert_decode(const unsigned char *der, size_t len)
{
	return decode_exact(ASN1_ITEM_rptr(X509__CERT), der, len);
}

void
x509__cert_free(X509__CERT *cert)
{
	ASN1_item_free((ASN1_VALUE *)cert, ASN1_ITEM_rptr(X509__CERT));
}
